/* The raster model (see raster.h): cell types, raster descriptions, tiling.
 * pg_tile_new/ref/unref live in bufpool.c with the pool they draw from. */
#include "raster.h"

#include <cpl_error.h>
#include <float.h>
#include <gdal.h>
#include <math.h>
#include <ogr_srs_api.h>
#include <stdlib.h>
#include <string.h>

/* One row per pg_celltype, in enum order. */
static const struct {
    const char *name;
    size_t size;
    bool is_float, is_signed;
    double min, max;
} pg__types[PG_CELLTYPE_COUNT] = {
    [PG_U8] = {"u8", 1, false, false, 0.0, 255.0},
    [PG_I8] = {"i8", 1, false, true, -128.0, 127.0},
    [PG_U16] = {"u16", 2, false, false, 0.0, 65535.0},
    [PG_I16] = {"i16", 2, false, true, -32768.0, 32767.0},
    [PG_U32] = {"u32", 4, false, false, 0.0, 4294967295.0},
    [PG_I32] = {"i32", 4, false, true, -2147483648.0, 2147483647.0},
    [PG_F32] = {"f32", 4, true, true, -INFINITY, INFINITY},
    [PG_F64] = {"f64", 8, true, true, -INFINITY, INFINITY},
};

static bool pg__valid(pg_celltype t)
{
    return (unsigned)t < PG_CELLTYPE_COUNT;
}

const char *pg_celltype_name(pg_celltype t)
{
    return pg__valid(t) ? pg__types[t].name : "?";
}

int pg_celltype_parse(const char *name, pg_celltype *t)
{
    if (name == NULL) return -1;
    for (int i = 0; i < PG_CELLTYPE_COUNT; i++) {
        if (strcmp(name, pg__types[i].name) == 0) {
            *t = (pg_celltype)i;
            return 0;
        }
    }
    return -1;
}

size_t pg_celltype_size(pg_celltype t)
{
    return pg__valid(t) ? pg__types[t].size : 0;
}

bool pg_celltype_is_float(pg_celltype t)
{
    return pg__valid(t) && pg__types[t].is_float;
}

bool pg_celltype_is_signed(pg_celltype t)
{
    return pg__valid(t) && pg__types[t].is_signed;
}

double pg_celltype_min(pg_celltype t)
{
    return pg__valid(t) ? pg__types[t].min : NAN;
}

double pg_celltype_max(pg_celltype t)
{
    return pg__valid(t) ? pg__types[t].max : NAN;
}

bool pg_celltype_holds(pg_celltype t, double v)
{
    if (!pg__valid(t)) return false;
    if (t == PG_F64) return true;
    if (isnan(v)) return pg__types[t].is_float;
    if (t == PG_F32) {
        /* Guard the range first: converting an out-of-range double to float
         * is undefined behaviour in C. */
        if (isinf(v)) return true;
        return fabs(v) <= FLT_MAX && (double)(float)v == v;
    }
    return v >= pg__types[t].min && v <= pg__types[t].max && v == trunc(v);
}

double pg_celltype_default_nodata(pg_celltype t)
{
    if (!pg__valid(t) || pg__types[t].is_float) return NAN;
    return pg__types[t].is_signed ? pg__types[t].min : pg__types[t].max;
}

/* GDAL 3.6 has no GDT_Int8: an i8 band is a GDT_Byte band carrying the
 * metadata item PIXELTYPE=SIGNEDBYTE in the IMAGE_STRUCTURE domain. So PG_I8
 * maps to GDT_Byte here, and the io code must set PIXELTYPE=SIGNEDBYTE when it
 * creates an i8 dataset and check it when it opens a GDT_Byte band (which
 * pg_celltype_from_gdal reports as PG_U8). Code that converts i8 cells must
 * not use GDALCopyWords with GDT_Byte (it would read them as unsigned). */
int pg_celltype_to_gdal(pg_celltype t)
{
    switch (t) {
    case PG_U8:
    case PG_I8:
        return GDT_Byte;
    case PG_U16:
        return GDT_UInt16;
    case PG_I16:
        return GDT_Int16;
    case PG_U32:
        return GDT_UInt32;
    case PG_I32:
        return GDT_Int32;
    case PG_F32:
        return GDT_Float32;
    case PG_F64:
        return GDT_Float64;
    default:
        return GDT_Unknown;
    }
}

int pg_celltype_from_gdal(int gdal_type, pg_celltype *t)
{
    switch (gdal_type) {
    case GDT_Byte:
        *t = PG_U8;
        return 0;
#if GDAL_VERSION_NUM >= 3070000
    case GDT_Int8:
        *t = PG_I8;
        return 0;
#endif
    case GDT_UInt16:
        *t = PG_U16;
        return 0;
    case GDT_Int16:
        *t = PG_I16;
        return 0;
    case GDT_UInt32:
        *t = PG_U32;
        return 0;
    case GDT_Int32:
        *t = PG_I32;
        return 0;
    case GDT_Float32:
        *t = PG_F32;
        return 0;
    case GDT_Float64:
        *t = PG_F64;
        return 0;
    default:
        return -1;
    }
}

/* DST is overwritten like memcpy would (it may be uninitialised): whatever
 * it owned before is not freed; clear it first if it owned a CRS. */
int pg_raster_info_copy(pg_raster_info *dst, const pg_raster_info *src)
{
    char *crs = NULL;
    if (src->crs_wkt != NULL) {
        crs = strdup(src->crs_wkt);
        if (crs == NULL) return -1;
    }
    *dst = *src;
    dst->crs_wkt = crs;
    return 0;
}

void pg_raster_info_clear(pg_raster_info *ri)
{
    if (ri == NULL) return;
    free(ri->crs_wkt);
    memset(ri, 0, sizeof *ri);
}

static bool pg__crs_empty(const char *s)
{
    return s == NULL || s[0] == '\0';
}

/* Same CRS: both unknown, the same text, or GDAL says the same CRS (WKT1 vs
 * WKT2, pretty vs compact, different names for one CRS). Called at plan time
 * only, so the cost of parsing both is acceptable and nothing is cached. */
static bool pg__same_crs(const char *a, const char *b)
{
    if (pg__crs_empty(a) || pg__crs_empty(b)) return pg__crs_empty(a) && pg__crs_empty(b);
    if (strcmp(a, b) == 0) return true;
    bool same = false;
    OGRSpatialReferenceH sa = OSRNewSpatialReference(NULL);
    OGRSpatialReferenceH sb = OSRNewSpatialReference(NULL);
    if (sa != NULL && sb != NULL) {
        char *pa = (char *)a, *pb = (char *)b; /* OSRImportFromWkt advances them */
        /* An unparseable CRS is simply "not the same"; keep GDAL from
         * printing about it (the handler stack is per thread). */
        CPLPushErrorHandler(CPLQuietErrorHandler);
        if (OSRImportFromWkt(sa, &pa) == OGRERR_NONE && OSRImportFromWkt(sb, &pb) == OGRERR_NONE)
            same = OSRIsSame(sa, sb) != 0;
        CPLPopErrorHandler();
    }
    if (sa != NULL) OSRDestroySpatialReference(sa);
    if (sb != NULL) OSRDestroySpatialReference(sb);
    return same;
}

bool pg_raster_same_grid(const pg_raster_info *a, const pg_raster_info *b)
{
    if (a->width != b->width || a->height != b->height) return false;
    if (a->has_geotransform != b->has_geotransform) return false;
    if (a->has_geotransform) {
        /* Tolerance relative to the cell size, so that geotransforms that
         * went through a text round trip (or a GDAL driver) still match. */
        double cell = 0.0;
        for (int i = 1; i < 6; i++) {
            if (i == 3) continue;
            cell = fmax(cell, fmax(fabs(a->geotransform[i]), fabs(b->geotransform[i])));
        }
        double tol = 1e-9 * cell;
        for (int i = 0; i < 6; i++) {
            if (!(fabs(a->geotransform[i] - b->geotransform[i]) <= tol)) return false;
        }
    }
    return pg__same_crs(a->crs_wkt, b->crs_wkt);
}

size_t pg_raster_window_bytes(const pg_raster_info *ri, const pg_window *w)
{
    if (w->w <= 0 || w->h <= 0 || ri->bands <= 0) return 0;
    return (size_t)ri->bands * (size_t)w->w * (size_t)w->h * pg_celltype_size(ri->type);
}

void pg_tiling_init(pg_tiling *t, int64_t width, int64_t height, int64_t tile_w, int64_t tile_h)
{
    t->width = width > 0 ? width : 0;
    t->height = height > 0 ? height : 0;
    t->tile_w = tile_w > 0 ? tile_w : 1;
    t->tile_h = tile_h > 0 ? tile_h : 1;
    t->cols = (t->width + t->tile_w - 1) / t->tile_w;
    t->rows = (t->height + t->tile_h - 1) / t->tile_h;
}

pg_window pg_tiling_window(const pg_tiling *t, int64_t k)
{
    pg_window w = {0, 0, 0, 0};
    if (k < 0 || k >= pg_tiling_count(t)) return w;
    int64_t row = k / t->cols, col = k % t->cols;
    w.x = col * t->tile_w;
    w.y = row * t->tile_h;
    w.w = t->width - w.x < t->tile_w ? t->width - w.x : t->tile_w;
    w.h = t->height - w.y < t->tile_h ? t->height - w.y : t->tile_h;
    return w;
}
