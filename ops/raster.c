/* Raster sources that need no file: raster.constant. */
#include "graph.h"
#include "crs.h"
#include "ops/registry.h"
#include "raster.h"
#include "util.h"

#include <cpl_error.h>
#include <cpl_string.h>
#include <ctype.h>
#include <float.h>
#include <math.h>
#include <ogr_srs_api.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* V as it will be stored in a cell of type T, in *STORED; false if T cannot
 * represent it. Integer types need the exact value; float types take the
 * nearest value within their finite range (0.1 is a fine f32 constant). */
static bool pg__storable(pg_celltype t, double v, double *stored)
{
    if (t == PG_F64) {
        *stored = v;
        return true;
    }
    if (t == PG_F32) {
        if (!(isnan(v) || isinf(v) || fabs(v) <= FLT_MAX)) return false;
        *stored = (double)(float)v;
        return true;
    }
    *stored = v;
    return pg_celltype_holds(t, v);
}

/* ---- raster.constant ---- */

typedef struct pg__const_state {
    pg_celltype type;
    union {
        uint8_t u8;
        int8_t i8;
        uint16_t u16;
        int16_t i16;
        uint32_t u32;
        int32_t i32;
        float f32;
        double f64;
    } v;
} pg__const_state;

static int pg__const_plan(pg_node *n, const pg_plan_env *env, pg_error *err)
{
    (void)env;
    static const char *const grid_params[] = {"width", "height", "geotransform", "crs"};
    pg_raster_info ri;
    memset(&ri, 0, sizeof ri);

    pg_celltype type = PG_F32;
    const char *tname = pg_param_str(n, "type");
    if (tname != NULL && pg_celltype_parse(tname, &type) != 0)
        return pg_error_set(err, PG_EPARAM, "param 'type': unknown cell type '%s'", tname);
    ri.type = type;
    int64_t bands = pg_param_has(n, "bands") ? pg_param_int(n, "bands") : 1;
    if (bands < 1 || bands > 4096)
        return pg_error_set(err, PG_EPARAM, "param 'bands' must be between 1 and 4096");
    ri.bands = (int)bands;

    double value = pg_param_num(n, "value"), stored;
    if (!pg_param_has(n, "value") || !pg__storable(type, value, &stored))
        return pg_error_set(err, PG_EPARAM, "param 'value' (%.17g) cannot be stored in type %s",
                            value, pg_celltype_name(type));
    if (pg_param_has(n, "nodata")) {
        double nd = pg_param_num(n, "nodata");
        if (!pg__storable(type, nd, &ri.nodata))
            return pg_error_set(err, PG_EPARAM,
                                "param 'nodata' (%.17g) cannot be stored in type %s", nd,
                                pg_celltype_name(type));
        ri.has_nodata = true;
    }

    if (n->nargs == 1) {
        for (size_t i = 0; i < PG_ARRAY_SIZE(grid_params); i++) {
            if (pg_param_has(n, grid_params[i]))
                return pg_error_set(err, PG_EPARAM,
                                    "param '%s' is not allowed with a raster arg (the grid comes "
                                    "from the arg)",
                                    grid_params[i]);
        }
        const pg_raster_info *a = &n->args[0].ref->info;
        ri.width = a->width;
        ri.height = a->height;
        ri.has_geotransform = a->has_geotransform;
        memcpy(ri.geotransform, a->geotransform, sizeof ri.geotransform);
        ri.crs_wkt = a->crs_wkt; /* borrowed until the copy below */
    } else {
        if (!pg_param_has(n, "width") || !pg_param_has(n, "height"))
            return pg_error_set(err, PG_EPARAM,
                                "params 'width' and 'height' are required without a raster arg");
        ri.width = pg_param_int(n, "width");
        ri.height = pg_param_int(n, "height");
        if (ri.width < 1 || ri.height < 1)
            return pg_error_set(err, PG_EPARAM, "params 'width' and 'height' must be >= 1");
        json_t *gt = json_object_get(n->params, "geotransform");
        if (gt != NULL && !json_is_null(gt)) {
            bool ok = json_is_array(gt) && json_array_size(gt) == 6;
            for (size_t i = 0; ok && i < 6; i++) {
                json_t *x = json_array_get(gt, i);
                ok = json_is_number(x) && isfinite(json_number_value(x));
                if (ok) ri.geotransform[i] = json_number_value(x);
            }
            const double *g = ri.geotransform;
            if (!ok || g[1] * g[5] - g[2] * g[4] == 0.0)
                return pg_error_set(err, PG_EPARAM,
                                    "param 'geotransform' must be 6 finite numbers [x0, dx, rx, "
                                    "y0, ry, dy] with a non-zero cell area");
            ri.has_geotransform = true;
        }
    }

    pg__const_state *st = calloc(1, sizeof *st);
    if (st == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    st->type = type;
    switch (type) {
    case PG_U8:
        st->v.u8 = (uint8_t)stored;
        break;
    case PG_I8:
        st->v.i8 = (int8_t)stored;
        break;
    case PG_U16:
        st->v.u16 = (uint16_t)stored;
        break;
    case PG_I16:
        st->v.i16 = (int16_t)stored;
        break;
    case PG_U32:
        st->v.u32 = (uint32_t)stored;
        break;
    case PG_I32:
        st->v.i32 = (int32_t)stored;
        break;
    case PG_F32:
        st->v.f32 = (float)stored;
        break;
    default:
        st->v.f64 = stored;
        break;
    }

    char *crs = NULL;
    const char *crs_def = n->nargs == 0 ? pg_param_str(n, "crs") : NULL;
    if (crs_def != NULL) {
        int rc = pg_crs_param_wkt("crs", crs_def, &crs, err);
        if (rc < 0) {
            free(st);
            return rc;
        }
        ri.crs_wkt = crs;
    }
    pg_raster_info_clear(&n->info);
    int rc = pg_raster_info_copy(&n->info, &ri);
    free(crs);
    if (rc != 0) {
        free(st);
        return pg_error_set(err, PG_ENOMEM, "out of memory");
    }
    free(n->state);
    n->state = st;
    return 0;
}

#define PG__FILL(T, FIELD)                                                                         \
    do {                                                                                           \
        T *d = out->data;                                                                          \
        const T v = st->v.FIELD;                                                                   \
        for (size_t i = 0; i < ncell; i++)                                                         \
            d[i] = v;                                                                              \
    } while (0)

static int pg__const_compute(const pg_node *n, pg_tile *out, pg_tile *const *in, pg_error *err)
{
    (void)in;
    const pg__const_state *st = n->state;
    if (out->type != st->type)
        return pg_error_set(err, PG_EINTERNAL, "raster.constant: output tile of the wrong type");
    const size_t ncell = (size_t)out->bands * (size_t)out->win.w * (size_t)out->win.h;
    switch (st->type) {
    case PG_U8:
        memset(out->data, st->v.u8, ncell);
        break;
    case PG_I8:
        memset(out->data, (uint8_t)st->v.i8, ncell);
        break;
    case PG_U16:
        PG__FILL(uint16_t, u16);
        break;
    case PG_I16:
        PG__FILL(int16_t, i16);
        break;
    case PG_U32:
        PG__FILL(uint32_t, u32);
        break;
    case PG_I32:
        PG__FILL(int32_t, i32);
        break;
    case PG_F32:
        PG__FILL(float, f32);
        break;
    default:
        PG__FILL(double, f64);
        break;
    }
    return 0;
}

static void pg__const_free(pg_node *n)
{
    free(n->state);
    n->state = NULL;
}

static const pg_param_def pg__const_params[] = {
    {.name = "width",
     .type = PG_PARAM_INT,
     .doc = "Columns. Required without a raster arg, not allowed with one.",
     .min = 1,
     .max = INFINITY},
    {.name = "height",
     .type = PG_PARAM_INT,
     .doc = "Rows. Required without a raster arg, not allowed with one.",
     .min = 1,
     .max = INFINITY},
    {.name = "value",
     .type = PG_PARAM_NUMBER,
     .required = true,
     .doc = "The value of every cell. Must be an exact value of an integer 'type' (bad_param "
            "otherwise); rounded to the nearest value of a float type, within its range."},
    {.name = "type",
     .type = PG_PARAM_CELLTYPE,
     .default_json = "\"f32\"",
     .doc = "Cell type: u8, i8, u16, i16, u32, i32, f32 or f64. Default \"f32\"."},
    {.name = "bands",
     .type = PG_PARAM_INT,
     .default_json = "1",
     .doc = "Number of bands, each filled with 'value'. Default 1.",
     .min = 1,
     .max = 4096},
    {.name = "nodata",
     .type = PG_PARAM_NUMBER,
     .doc = "The raster's nodata value (same representability rule as 'value'). Default: none."},
    {.name = "geotransform",
     .type = PG_PARAM_JSON,
     .doc = "GDAL geotransform, 6 numbers [x0, dx, rx, y0, ry, dy]. Default: none (cell "
            "coordinates). Not allowed with a raster arg."},
    {.name = "crs",
     .type = PG_PARAM_STRING,
     .doc = "Coordinate reference system: WKT, PROJJSON, AUTHORITY:CODE (\"EPSG:32633\"), an "
            "OGC URN or a +proj= string; stored as WKT. File names and URLs are refused. "
            "Default: none. Not allowed with a raster arg."},
    {0},
};

const pg_op_def pg_ops_raster[] = {
    {
        .name = "raster.constant",
        .family = "raster",
        .doc = "A raster whose every cell holds one value. Without args, its grid is given by "
               "'width' and 'height' (required) and optionally 'geotransform' and 'crs'. With "
               "one raster arg, it takes that raster's size, geotransform and CRS (a constant "
               "\"like\" another raster, to combine with it cell by cell); then 'width', "
               "'height', 'geotransform' and 'crs' must be absent. Cell type, band count and "
               "nodata always come from the params.",
        .example = "{\"op\": \"raster.constant\", \"width\": 512, \"height\": 512, \"value\": 1, "
                   "\"type\": \"u8\", \"geotransform\": [500000, 10, 0, 4600000, 0, -10], "
                   "\"crs\": \"EPSG:32633\"}",
        .min_args = 0,
        .max_args = 1,
        .arg_kinds = PG_ARGK_RASTER,
        .params = pg__const_params,
        .result = PG_RESULT_RASTER,
        .plan = pg__const_plan,
        .compute = pg__const_compute,
        .free_state = pg__const_free,
    },
    {0},
};
