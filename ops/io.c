/* The io family: io.load (read any raster GDAL reads) and io.save (write a
 * GeoTIFF or a COG). io.save is a sink: the job drives it through a writer
 * actor (actors/io.c), which writes to a temporary name and renames only
 * when the whole job has succeeded. */
#include "ops/io.h"

#include "graph.h"
#include "nodekey.h"
#include "paths.h"
#include "util.h"

#include <cpl_string.h>
#include <gdal.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- io.load ---- */

static void load_free(pg_node *n)
{
    pg_load_state *s = n->state;
    if (s == NULL) return;
    free(s->path);
    free(s->bands);
    free(s);
    n->state = NULL;
}

/* "band": absent (all bands), an integer, or a list of integers (1-based). */
static int load_bands(const pg_node *n, int count, pg_load_state *s, pg_error *err)
{
    json_t *b = json_object_get(n->params, "band");
    if (b == NULL || json_is_null(b)) {
        s->nbands = count;
        s->bands = malloc(sizeof(int) * (size_t)count);
        if (!s->bands) return pg_error_set(err, PG_ENOMEM, "out of memory");
        for (int i = 0; i < count; i++)
            s->bands[i] = i + 1;
        return 0;
    }
    size_t nb = json_is_array(b) ? json_array_size(b) : 1;
    if (!(json_is_integer(b) || (json_is_array(b) && nb > 0)))
        return pg_error_set(err, PG_EPARAM,
                            "param 'band' must be a band number or a non-empty list of them");
    s->bands = malloc(sizeof(int) * nb);
    if (!s->bands) return pg_error_set(err, PG_ENOMEM, "out of memory");
    s->nbands = (int)nb;
    for (size_t i = 0; i < nb; i++) {
        json_t *v = json_is_array(b) ? json_array_get(b, i) : b;
        json_int_t k = json_is_integer(v) ? json_integer_value(v) : 0;
        if (k < 1 || k > count)
            return pg_error_set(err, PG_EPARAM,
                                "param 'band': %s is not a band of this file "
                                "(it has %d)",
                                json_is_integer(v) ? "that number" : "a non-integer", count);
        s->bands[i] = (int)k;
    }
    return 0;
}

static int load_plan(pg_node *n, const pg_plan_env *env, pg_error *err)
{
    pg_load_state *s = calloc(1, sizeof *s);
    if (s == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    n->state = s;
    int rc = pg_path_for_read(env->data_root, pg_param_str(n, "path"), &s->path, err);
    if (rc) return rc;
    if (pg_file_identify(s->path, &s->id)) return pg_error_set(err, PG_ENOTFOUND, "file vanished");
    GDALDatasetH ds = pg_gdalio_open(s->path, &s->id, err);
    if (ds == NULL) return err->code; /* PG_EFORMAT, or PG_EPATH for a refused format */
    int count = GDALGetRasterCount(ds);
    if (count < 1)
        return pg_error_set(err, PG_EFORMAT, "'%s' has no raster bands", pg_param_str(n, "path"));
    if ((rc = load_bands(n, count, s, err))) return rc;

    pg_raster_info *ri = &n->info;
    ri->width = GDALGetRasterXSize(ds);
    ri->height = GDALGetRasterYSize(ds);
    ri->bands = s->nbands;
    /* Bands of different types are read as the first band's type, unless
     * that would lose values: then as f64. */
    GDALRasterBandH b0 = GDALGetRasterBand(ds, s->bands[0]);
    GDALDataType gt = GDALGetRasterDataType(b0);
    for (int i = 1; i < s->nbands; i++)
        if (GDALGetRasterDataType(GDALGetRasterBand(ds, s->bands[i])) != gt) gt = GDT_Float64;
    if (pg_celltype_from_gdal(gt, &ri->type) != 0) {
        /* Complex and 64-bit integer types: read as f64. */
        ri->type = PG_F64;
    }
    if (ri->type == PG_U8) {
        const char *pt = GDALGetMetadataItem(b0, "PIXELTYPE", "IMAGE_STRUCTURE");
        if (pt && strcmp(pt, "SIGNEDBYTE") == 0) ri->type = PG_I8;
    }
    int has = 0;
    double nd = GDALGetRasterNoDataValue(b0, &has);
    ri->has_nodata = has && pg_celltype_holds(ri->type, nd);
    ri->nodata = ri->has_nodata ? nd : 0;
    ri->has_geotransform = GDALGetGeoTransform(ds, ri->geotransform) == CE_None;
    const char *wkt = GDALGetProjectionRef(ds);
    ri->crs_wkt = strdup(wkt ? wkt : "");
    if (ri->crs_wkt == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    int bw = 0, bh = 0;
    GDALGetBlockSize(b0, &bw, &bh);
    ri->block_w = bw;
    ri->block_h = bh;
    return 0;
}

static int load_compute(const pg_node *n, pg_tile *out, pg_tile *const *in, pg_error *err)
{
    (void)in;
    const pg_load_state *s = n->state;
    double fill = n->info.has_nodata ? n->info.nodata : 0;
    return pg_gdalio_read(s->path, &s->id, s->bands, s->nbands, out, fill, err);
}

/* The file as plan() identified it, before opening it: a rewritten or
 * touched file gets another key. */
static int load_identity(const pg_node *n, json_t *out, pg_error *err)
{
    const pg_load_state *s = n->state;
    if (s == NULL || s->path == NULL) return pg_error_set(err, PG_EINTERNAL, "not planned");
    json_t *f = pg_nodekey_file(s->path, &s->id, err);
    if (f == NULL) return err->code;
    if (json_object_set_new(out, "file", f)) return pg_error_set(err, PG_ENOMEM, "out of memory");
    return 0;
}

/* ---- io.save ---- */

static void save_free(pg_node *n)
{
    pg_save_state *s = n->state;
    if (s == NULL) return;
    free(s->path);
    free(s->relpath);
    free(s->format);
    CSLDestroy(s->options);
    free(s);
    n->state = NULL;
}

/* "options": {"COMPRESS": "DEFLATE", "ZLEVEL": 6} or ["COMPRESS=DEFLATE"]. */
static int save_options(const pg_node *n, pg_save_state *s, pg_error *err)
{
    json_t *o = json_object_get(n->params, "options");
    if (o == NULL || json_is_null(o)) return 0;
    if (json_is_object(o)) {
        const char *k;
        json_t *v;
        json_object_foreach(o, k, v)
        {
            char buf[64];
            const char *val;
            if (json_is_string(v))
                val = json_string_value(v);
            else if (json_is_integer(v))
                snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v)), val = buf;
            else if (json_is_real(v))
                snprintf(buf, sizeof buf, "%.17g", json_real_value(v)), val = buf;
            else if (json_is_boolean(v))
                val = json_is_true(v) ? "YES" : "NO";
            else
                return pg_error_set(err, PG_EPARAM,
                                    "param 'options': value of '%s' must be a string, number "
                                    "or boolean",
                                    k);
            if (*k == '\0' || strchr(k, '=') != NULL)
                return pg_error_set(err, PG_EPARAM, "param 'options': bad key '%s'", k);
            s->options = CSLSetNameValue(s->options, k, val);
        }
        return 0;
    }
    if (json_is_array(o)) {
        size_t i;
        json_t *v;
        json_array_foreach(o, i, v)
        {
            const char *kv = json_string_value(v);
            if (kv == NULL || strchr(kv, '=') == NULL || kv[0] == '=')
                return pg_error_set(err, PG_EPARAM,
                                    "param 'options': item %zu must be a \"KEY=VALUE\" string", i);
            s->options = CSLAddString(s->options, kv);
        }
        return 0;
    }
    return pg_error_set(err, PG_EPARAM,
                        "param 'options' must be an object of creation options or a list of "
                        "\"KEY=VALUE\" strings");
}

static int save_plan(pg_node *n, const pg_plan_env *env, pg_error *err)
{
    pg_save_state *s = calloc(1, sizeof *s);
    if (s == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    n->state = s;
    const char *fmt = pg_param_str(n, "format");
    if (strcmp(fmt, "GTiff") != 0 && strcmp(fmt, "COG") != 0 && strcmp(fmt, "PNG") != 0 &&
        strcmp(fmt, "JPEG") != 0)
        return pg_error_set(err, PG_EPARAM,
                            "param 'format' must be \"GTiff\", \"COG\", \"PNG\" or \"JPEG\", "
                            "not '%s'",
                            fmt);
    s->format = strdup(fmt);
    if (s->format == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    int rc = save_options(n, s, err);
    if (rc) return rc;
    if ((rc = pg_raster_info_copy(&n->info, &n->args[0].ref->info)))
        return pg_error_set(err, PG_ENOMEM, "out of memory");
    if (pg_param_has(n, "type")) {
        s->has_type = true;
        pg_celltype_parse(pg_param_str(n, "type"), &s->type);
        if (n->info.has_nodata && !pg_celltype_holds(s->type, n->info.nodata))
            return pg_error_set(err, PG_EPARAM,
                                "param 'type': %s cannot hold the raster's nodata value %g",
                                pg_celltype_name(s->type), n->info.nodata);
        n->info.type = s->type;
    }
    /* Pictures hold few kinds of cells: say so now, not after the work. */
    const pg_raster_info *ri = &n->info;
    if (strcmp(fmt, "PNG") == 0 &&
        !((ri->type == PG_U8 || ri->type == PG_U16) && ri->bands >= 1 && ri->bands <= 4))
        return pg_error_set(err, PG_EPARAM,
                            "format PNG holds u8 or u16 cells in 1 to 4 bands, not %d band(s) of "
                            "%s: colour it with render.ramp / render.rgb, or set \"type\"",
                            ri->bands, pg_celltype_name(ri->type));
    if (strcmp(fmt, "JPEG") == 0 && !(ri->type == PG_U8 && (ri->bands == 1 || ri->bands == 3)))
        return pg_error_set(err, PG_EPARAM,
                            "format JPEG holds u8 cells in 1 or 3 bands, not %d band(s) of %s: "
                            "colour it with render.rgb, or set \"type\"",
                            ri->bands, pg_celltype_name(ri->type));
    rc = pg_path_for_write(env->data_root, pg_param_str(n, "path"), &s->path, err);
    if (rc) return rc;
    s->relpath = pg_path_relative(env->data_root, s->path);
    if (s->relpath == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    return 0;
}

static const pg_param_def load_params[] = {
    {"path", PG_PARAM_STRING, true, NULL, "file to read, relative to the data root", 0, 0},
    {"band", PG_PARAM_JSON, false, NULL,
     "band number (1-based) or list of band numbers; default: every band", 0, 0},
    {0},
};

static const pg_param_def save_params[] = {
    {"path", PG_PARAM_STRING, true, NULL,
     "file to write, relative to the data root; missing directories are created", 0, 0},
    {"format", PG_PARAM_STRING, false, "\"GTiff\"",
     "\"GTiff\" or \"COG\" (Cloud Optimized GeoTIFF)", 0, 0},
    {"options", PG_PARAM_JSON, false, NULL,
     "GDAL creation options: {\"COMPRESS\": \"DEFLATE\"} or [\"COMPRESS=DEFLATE\"]", 0, 0},
    {"type", PG_PARAM_CELLTYPE, false, NULL, "cell type to write (converted as GDAL does)", 0, 0},
    {0},
};

const pg_op_def pg_ops_io[] = {
    {
        .name = "io.load",
        .family = "io",
        .doc = "Reads a raster file (GeoTIFF, COG, or any format GDAL reads) lazily, one tile "
               "window at a time. The cell type, nodata, geotransform and CRS are the file's.",
        .example = "{\"op\": \"io.load\", \"path\": \"dem.tif\", \"band\": 1}",
        .min_args = 0,
        .max_args = 0,
        .arg_kinds = 0,
        .params = load_params,
        .result = PG_RESULT_RASTER,
        .plan = load_plan,
        .compute = load_compute,
        .free_state = load_free,
        .identity = load_identity,
    },
    {
        .name = "io.save",
        .family = "io",
        .doc = "Writes its raster argument to a GeoTIFF, COG, PNG or JPEG. The file appears only "
               "when the "
               "whole job has succeeded (it is written under a temporary name and renamed); a "
               "failed or cancelled job leaves nothing behind. Answers with the path written.",
        .example = "{\"op\": \"io.save\", \"path\": \"out/sum.tif\", \"options\": "
                   "{\"COMPRESS\": \"DEFLATE\"}, \"args\": [{\"ref\": \"s\"}]}",
        .min_args = 1,
        .max_args = 1,
        .arg_kinds = PG_ARGK_RASTER,
        .params = save_params,
        .result = PG_RESULT_SINK,
        .plan = save_plan,
        .free_state = save_free,
    },
    {0},
};
