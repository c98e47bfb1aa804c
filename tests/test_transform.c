/* Unit tests for the transform family (ops/transform.c).
 *
 * Nodes are built by hand (no planner), over source nodes whose cells the
 * test holds whole in memory. run_tiled() evaluates a node as the job does:
 * for each output tile it asks need() for each arg's window, builds that
 * tile from the test's copy of the arg (cells outside the arg hold POISON,
 * a valid-looking value the op must never use), and calls compute(). Every
 * output cell is compared with a reference:
 *  - crop, bands, stack, mosaic of aligned rasters: exact, computed here;
 *  - resample nearest: the source cell containing the output cell's centre
 *    (grids chosen so that the arithmetic is exact; on a tie, GDAL takes the
 *    right/lower cell); resample average at integer factors: the mean of the
 *    valid cells of the block, rounded half up for integers: exact;
 *  - reproject (and resample bilinear/cubic): /usr/bin/gdalwarp -et 0 run
 *    here on the same file and the same grid (-tr/-te): exact, cell for
 *    cell, because the op hands GDAL's kernel bitwise the same source
 *    coordinates and kernel scale that gdalwarp computes for a single chunk
 *    (see the top of ops/transform.c). No edge cell may differ either: at
 *    the raster's edge the op's source window is clipped exactly as the
 *    file is.
 * Every warp result is also computed with two other tilings (including
 * 16 x 16 tiles and odd sizes) and must be identical.
 */
#include "bufpool.h"
#include "graph.h"
#include "ops/registry.h"
#include "raster.h"
#include "util.h"

#include <check.h>
#include <cpl_conv.h>
#include <cpl_string.h>
#include <float.h>
#include <gdal.h>
#include <math.h>
#include <ogr_srs_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define POISON 99.0

/* Assertions that cost nothing when they pass: Check's ck_assert reports
 * every passing assertion through its pipe, far too slow per cell. */
#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) ck_abort_msg("failed: %s", #c);                                                  \
    } while (0)
#define CHECK_MSG(c, ...)                                                                          \
    do {                                                                                           \
        if (!(c)) ck_abort_msg(__VA_ARGS__);                                                       \
    } while (0)

static const pg_op_def src_op = {
    .name = "test.source", .family = "test", .result = PG_RESULT_RASTER};

static const pg_op_def *find_op(const char *name)
{
    for (const pg_op_def *d = pg_ops_transform; d->name != NULL; d++)
        if (strcmp(d->name, name) == 0) return d;
    ck_abort_msg("no op %s", name);
    return NULL;
}

static char tmpdir[256];

/* ---- cells as doubles ---- */

static double cget(const void *data, pg_celltype t, size_t i)
{
    switch (t) {
    case PG_U8:
        return ((const uint8_t *)data)[i];
    case PG_I8:
        return ((const int8_t *)data)[i];
    case PG_U16:
        return ((const uint16_t *)data)[i];
    case PG_I16:
        return ((const int16_t *)data)[i];
    case PG_U32:
        return ((const uint32_t *)data)[i];
    case PG_I32:
        return ((const int32_t *)data)[i];
    case PG_F32:
        return ((const float *)data)[i];
    default:
        return ((const double *)data)[i];
    }
}

static void cset(void *data, pg_celltype t, size_t i, double v)
{
    switch (t) {
    case PG_U8:
        ((uint8_t *)data)[i] = (uint8_t)v;
        break;
    case PG_I8:
        ((int8_t *)data)[i] = (int8_t)v;
        break;
    case PG_U16:
        ((uint16_t *)data)[i] = (uint16_t)v;
        break;
    case PG_I16:
        ((int16_t *)data)[i] = (int16_t)v;
        break;
    case PG_U32:
        ((uint32_t *)data)[i] = (uint32_t)v;
        break;
    case PG_I32:
        ((int32_t *)data)[i] = (int32_t)v;
        break;
    case PG_F32:
        ((float *)data)[i] = (float)v;
        break;
    default:
        ((double *)data)[i] = v;
        break;
    }
}

/* Same value, or both NaN. */
static bool same(double a, double b)
{
    return a == b || (isnan(a) && isnan(b));
}

/* ---- pseudo-random values (xorshift64*) ---- */

static uint64_t rng = 88172645463325252ull;

static uint64_t rnd(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 2685821657736338717ull;
}

/* ---- source rasters held by the test ---- */

typedef struct src_r {
    pg_node node;
    double *cells; /* bands * h * w, values of the type */
} src_r;

static char *wkt_of(const char *def)
{
    OGRSpatialReferenceH s = OSRNewSpatialReference(NULL);
    ck_assert_int_eq(OSRSetFromUserInput(s, def), OGRERR_NONE);
    char *w = NULL;
    ck_assert_int_eq(OSRExportToWkt(s, &w), OGRERR_NONE);
    char *r = strdup(w);
    CPLFree(w);
    OSRDestroySpatialReference(s);
    return r;
}

static void src_init(src_r *s, int64_t w, int64_t h, int bands, pg_celltype t, const double *gt,
                     const char *crs)
{
    memset(s, 0, sizeof *s);
    s->node.op = &src_op;
    s->node.name = "src";
    pg_raster_info *ri = &s->node.info;
    ri->width = w;
    ri->height = h;
    ri->bands = bands;
    ri->type = t;
    if (gt != NULL) {
        ri->has_geotransform = true;
        memcpy(ri->geotransform, gt, sizeof ri->geotransform);
    }
    ri->crs_wkt = crs != NULL ? wkt_of(crs) : NULL;
    s->cells = calloc((size_t)(w * h * bands), sizeof(double));
    ck_assert_ptr_nonnull(s->cells);
}

static void src_nodata(src_r *s, double nd)
{
    s->node.info.has_nodata = true;
    s->node.info.nodata = nd;
}

static double *src_at(src_r *s, int b, int64_t x, int64_t y)
{
    const pg_raster_info *ri = &s->node.info;
    return &s->cells[((size_t)b * (size_t)ri->height + (size_t)y) * (size_t)ri->width + (size_t)x];
}

static void src_free(src_r *s)
{
    free(s->cells);
    pg_raster_info_clear(&s->node.info);
}

/* Random values of the type; float types get values in [0, 1000) with 8
 * fractional bits (exact sums); ~1/16 nodata when the source has one. */
static void src_fill_random(src_r *s)
{
    const pg_raster_info *ri = &s->node.info;
    size_t n = (size_t)(ri->width * ri->height * ri->bands);
    for (size_t i = 0; i < n; i++) {
        double v;
        if (pg_celltype_is_float(ri->type)) {
            v = (double)(rnd() % 256000) / 256.0;
        } else {
            double lo = pg_celltype_min(ri->type), hi = pg_celltype_max(ri->type);
            if (hi - lo > 60000) lo = -30000 * (lo < 0), hi = lo + 60000;
            v = lo + (double)(rnd() % (uint64_t)(hi - lo + 1));
        }
        if (ri->has_nodata && rnd() % 16 == 0) v = ri->nodata;
        s->cells[i] = v;
    }
}

/* A smooth field (a terrain-like function of the cell centre's position). */
static void src_fill_smooth(src_r *s)
{
    const pg_raster_info *ri = &s->node.info;
    for (int b = 0; b < ri->bands; b++)
        for (int64_t y = 0; y < ri->height; y++)
            for (int64_t x = 0; x < ri->width; x++) {
                double u = (x + 0.5) / ri->width, v = (y + 0.5) / ri->height;
                double h = 500 + 300 * sin(6.1 * u) * cos(4.3 * v) + 40 * sin(40 * (u + v)) + 7 * b;
                if (!pg_celltype_is_float(ri->type)) h = round(h);
                *src_at(s, b, x, y) =
                    pg_celltype_is_float(ri->type) && ri->type == PG_F32 ? (double)(float)h : h;
            }
}

/* The tile of S over window W: cells outside S hold POISON. */
static pg_tile *src_tile(src_r *s, pg_window w)
{
    const pg_raster_info *ri = &s->node.info;
    pg_tile *t = pg_tile_new(ri->type, ri->bands, w);
    ck_assert_ptr_nonnull(t);
    size_t i = 0;
    for (int b = 0; b < ri->bands; b++)
        for (int64_t y = w.y; y < w.y + w.h; y++)
            for (int64_t x = w.x; x < w.x + w.w; x++, i++) {
                bool in = x >= 0 && y >= 0 && x < ri->width && y < ri->height;
                cset(t->data, ri->type, i, in ? *src_at(s, b, x, y) : POISON);
            }
    return t;
}

/* Writes S as a GeoTIFF (for gdalwarp). */
static void src_write(src_r *s, const char *path)
{
    const pg_raster_info *ri = &s->node.info;
    GDALDriverH drv = GDALGetDriverByName("GTiff");
    GDALDataType gt = (GDALDataType)pg_celltype_to_gdal(ri->type);
    char **opts = NULL;
    if (ri->type == PG_I8) opts = CSLSetNameValue(opts, "PIXELTYPE", "SIGNEDBYTE");
    GDALDatasetH ds = GDALCreate(drv, path, (int)ri->width, (int)ri->height, ri->bands, gt, opts);
    CSLDestroy(opts);
    ck_assert_ptr_nonnull(ds);
    if (ri->has_geotransform) GDALSetGeoTransform(ds, (double *)ri->geotransform);
    if (ri->crs_wkt != NULL) GDALSetProjection(ds, ri->crs_wkt);
    for (int b = 0; b < ri->bands; b++) {
        GDALRasterBandH bh = GDALGetRasterBand(ds, b + 1);
        if (ri->has_nodata) GDALSetRasterNoDataValue(bh, ri->nodata);
        void *buf = src_at(s, b, 0, 0);
        GDALDataType bt = GDT_Float64;
        uint8_t *bytes = NULL;
        if (ri->type == PG_I8) { /* GDAL would clamp negative doubles to 0 */
            size_t n = (size_t)(ri->width * ri->height);
            bytes = malloc(n);
            for (size_t i = 0; i < n; i++)
                bytes[i] = (uint8_t)(int8_t)((double *)buf)[i];
            buf = bytes;
            bt = GDT_Byte;
        }
        ck_assert_int_eq(GDALRasterIO(bh, GF_Write, 0, 0, (int)ri->width, (int)ri->height, buf,
                                      (int)ri->width, (int)ri->height, bt, 0, 0),
                         CE_None);
        free(bytes);
    }
    GDALClose(ds);
}

/* Reads a whole GeoTIFF as doubles; *W, *H, *B its size. */
static double *read_tif(const char *path, int *w, int *h, int *b, double gt[6])
{
    GDALDatasetH ds = GDALOpen(path, GA_ReadOnly);
    CHECK_MSG(ds != NULL, "cannot open %s", path);
    *w = GDALGetRasterXSize(ds);
    *h = GDALGetRasterYSize(ds);
    *b = GDALGetRasterCount(ds);
    if (gt != NULL) GDALGetGeoTransform(ds, gt);
    double *d = malloc(sizeof(double) * (size_t)*w * (size_t)*h * (size_t)*b);
    ck_assert_ptr_nonnull(d);
    for (int k = 0; k < *b; k++)
        ck_assert_int_eq(GDALRasterIO(GDALGetRasterBand(ds, k + 1), GF_Read, 0, 0, *w, *h,
                                      d + (size_t)k * (size_t)*w * (size_t)*h, *w, *h, GDT_Float64,
                                      0, 0),
                         CE_None);
    GDALClose(ds);
    return d;
}

/* ---- nodes ---- */

static const pg_plan_env test_env = {.data_root = "/nonexistent",
                                     .max_nodes = 1000,
                                     .max_depth = 100,
                                     .max_cells = (int64_t)1 << 40,
                                     .tile_w = 256,
                                     .tile_h = 256};

typedef struct tnode {
    pg_node n;
    pg_arg args[8];
    pg_error err;
} tnode;

/* Node OP over the sources SRCS[0..NARGS-1]; PARAMS stolen. */
static void tn_init(tnode *t, const char *op, src_r **srcs, int nargs, json_t *params)
{
    memset(t, 0, sizeof *t);
    for (int i = 0; i < nargs; i++)
        t->args[i] = (pg_arg){.node = i, .ref = &srcs[i]->node, .number = 0};
    t->n.op = find_op(op);
    t->n.name = "n";
    t->n.params = params;
    t->n.nargs = nargs;
    t->n.args = t->args;
    t->n.index = nargs;
}

static int tn_plan(tnode *t)
{
    return t->n.op->plan(&t->n, &test_env, &t->err);
}

static void tn_free(tnode *t)
{
    if (t->n.state != NULL) {
        if (t->n.op->free_state != NULL)
            t->n.op->free_state(&t->n);
        else
            free(t->n.state);
        t->n.state = NULL;
    }
    pg_raster_info_clear(&t->n.info);
    json_decref(t->n.params);
}

/* Plans and expects failure CODE with a message containing NEEDLE. */
static void expect_plan_error(const char *op, src_r **srcs, int nargs, json_t *params, int code,
                              const char *needle)
{
    tnode t;
    tn_init(&t, op, srcs, nargs, params);
    int rc = tn_plan(&t);
    CHECK_MSG(rc == code, "%s: expected %s, got %s (%s)", op, pg_err_name(code), pg_err_name(rc),
              t.err.message);
    ck_assert_int_eq(t.err.code, code);
    CHECK_MSG(strstr(t.err.message, needle) != NULL, "%s: message '%s' lacks '%s'", op,
              t.err.message, needle);
    tn_free(&t);
}

/* Evaluates the planned node over tiles of TW x TH (the last ones smaller)
 * as the job does. Returns bands * h * w doubles. */
static double *run_tiled(tnode *t, src_r **srcs, int64_t tw, int64_t th)
{
    const pg_raster_info *ri = &t->n.info;
    double *out = malloc(sizeof(double) * (size_t)(ri->width * ri->height * ri->bands));
    ck_assert_ptr_nonnull(out);
    pg_tiling tl;
    pg_tiling_init(&tl, ri->width, ri->height, tw, th);
    for (int64_t k = 0; k < pg_tiling_count(&tl); k++) {
        pg_window w = pg_tiling_window(&tl, k);
        pg_tile *in[8] = {0};
        for (int i = 0; i < t->n.nargs; i++) {
            pg_window sw = w;
            if (t->n.op->need != NULL) t->n.op->need(&t->n, i, &w, &sw);
            CHECK(sw.w >= 1 && sw.h >= 1);
            in[i] = src_tile(srcs[i], sw);
        }
        pg_tile *o = pg_tile_new(ri->type, ri->bands, w);
        ck_assert_ptr_nonnull(o);
        int rc = t->n.op->compute(&t->n, o, in, &t->err);
        CHECK_MSG(rc == 0, "compute: %s", t->err.message);
        size_t i = 0;
        for (int b = 0; b < ri->bands; b++)
            for (int64_t y = w.y; y < w.y + w.h; y++)
                for (int64_t x = w.x; x < w.x + w.w; x++, i++)
                    out[((size_t)b * (size_t)ri->height + (size_t)y) * (size_t)ri->width +
                        (size_t)x] = cget(o->data, ri->type, i);
        pg_tile_unref(&o);
        for (int a = 0; a < t->n.nargs; a++)
            pg_tile_unref(&in[a]);
    }
    return out;
}

static size_t info_cells(const pg_raster_info *ri)
{
    return (size_t)(ri->width * ri->height * ri->bands);
}

/* The node's result with 256 x 256 tiles, checked against 16 x 16 and
 * 67 x 41 tiles (identical, cell for cell). */
static double *run_checked(tnode *t, src_r **srcs)
{
    double *a = run_tiled(t, srcs, 256, 256);
    const int64_t alt[2][2] = {{16, 16}, {67, 41}};
    for (int k = 0; k < 2; k++) {
        double *b = run_tiled(t, srcs, alt[k][0], alt[k][1]);
        for (size_t i = 0; i < info_cells(&t->n.info); i++)
            CHECK_MSG(same(a[i], b[i]), "%s: cell %zu differs with %lldx%lld tiles: %.17g vs %.17g",
                      t->n.op->name, i, (long long)alt[k][0], (long long)alt[k][1], a[i], b[i]);
        free(b);
    }
    return a;
}

static bool is_nd(const pg_raster_info *ri, double v)
{
    return ri->has_nodata && (v == ri->nodata || (isnan(v) && isnan(ri->nodata)));
}

/* ---- transform.crop ---- */

static const double utm_gt[6] = {500000, 10, 0, 5000000, 0, -10};

START_TEST(test_crop_window)
{
    src_r s;
    src_init(&s, 300, 200, 2, PG_U16, utm_gt, "EPSG:32633");
    src_nodata(&s, 7);
    src_fill_random(&s);
    src_r *srcs[] = {&s};
    tnode t;
    tn_init(&t, "transform.crop", srcs, 1, json_pack("{s:[i,i,i,i]}", "window", 17, 33, 100, 50));
    ck_assert_int_eq(tn_plan(&t), 0);
    const pg_raster_info *ri = &t.n.info;
    ck_assert_int_eq(ri->width, 100);
    ck_assert_int_eq(ri->height, 50);
    ck_assert_int_eq(ri->bands, 2);
    ck_assert_int_eq(ri->type, PG_U16);
    CHECK(ri->has_nodata && ri->nodata == 7);
    CHECK(ri->geotransform[0] == 500170 && ri->geotransform[3] == 4999670);
    CHECK(ri->geotransform[1] == 10 && ri->geotransform[5] == -10);
    double *o = run_checked(&t, srcs);
    for (int b = 0; b < 2; b++)
        for (int y = 0; y < 50; y++)
            for (int x = 0; x < 100; x++)
                CHECK(o[((size_t)b * 50 + y) * 100 + x] == *src_at(&s, b, x + 17, y + 33));
    free(o);
    tn_free(&t);
    src_free(&s);
}
END_TEST

/* Expects the crop of S by PARAMS to be window [x, y, w, h]. */
static void expect_crop(src_r *s, json_t *params, int64_t x, int64_t y, int64_t w, int64_t h)
{
    src_r *srcs[] = {s};
    tnode t;
    tn_init(&t, "transform.crop", srcs, 1, params);
    CHECK_MSG(tn_plan(&t) == 0, "plan: %s", t.err.message);
    const pg_raster_info *ri = &t.n.info, *si = &s->node.info;
    double px = (ri->geotransform[0] - si->geotransform[0]) / si->geotransform[1];
    double py = (ri->geotransform[3] - si->geotransform[3]) / si->geotransform[5];
    CHECK_MSG(px == (double)x && py == (double)y && ri->width == w && ri->height == h,
              "crop is [%g, %g, %lld, %lld], want [%lld, %lld, %lld, %lld]", px, py,
              (long long)ri->width, (long long)ri->height, (long long)x, (long long)y, (long long)w,
              (long long)h);
    double *o = run_tiled(&t, srcs, 16, 16);
    for (int64_t r = 0; r < h; r++)
        for (int64_t c = 0; c < w; c++)
            CHECK(o[r * w + c] == *src_at(s, 0, x + c, y + r));
    free(o);
    tn_free(&t);
}

START_TEST(test_crop_extent)
{
    src_r s;
    src_init(&s, 300, 200, 1, PG_F32, utm_gt, "EPSG:32633");
    src_fill_random(&s);
    /* In the raster's CRS: x 10.5 .. 33.3 cells, y 99.9 .. 150 cells:
     * outward to [10, 34) x [99, 150). */
    expect_crop(&s, json_pack("{s:[f,f,f,f]}", "extent", 500105.0, 4998500.0, 500333.0, 4999001.0),
                10, 99, 24, 51);
    /* On the grid lines: exactly those cells. */
    expect_crop(&s, json_pack("{s:[f,f,f,f]}", "extent", 500100.0, 4998500.0, 500340.0, 4999010.0),
                10, 99, 24, 51);
    /* Partly outside: clipped. */
    expect_crop(&s, json_pack("{s:[f,f,f,f]}", "extent", 499000.0, 4990000.0, 500055.0, 4999995.0),
                0, 0, 6, 200);

    /* In EPSG:4326: the reference maps 101 points per edge of the extent
     * into UTM with its own transformation, takes their bounding box and
     * snaps it outward to the grid. */
    const double ext[4] = {15.0004, 45.1382, 15.0318, 45.1516};
    OGRSpatialReferenceH geo = OSRNewSpatialReference(NULL), utm = OSRNewSpatialReference(NULL);
    OSRImportFromEPSG(geo, 4326);
    OSRImportFromEPSG(utm, 32633);
    OSRSetAxisMappingStrategy(geo, OAMS_TRADITIONAL_GIS_ORDER);
    OSRSetAxisMappingStrategy(utm, OAMS_TRADITIONAL_GIS_ORDER);
    OGRCoordinateTransformationH ct = OCTNewCoordinateTransformation(geo, utm);
    double mnx = INFINITY, mny = INFINITY, mxx = -INFINITY, mxy = -INFINITY;
    for (int e = 0; e < 4; e++)
        for (int k = 0; k <= 100; k++) {
            double f = k / 100.0;
            double X = e == 0   ? ext[0] + f * (ext[2] - ext[0])
                       : e == 1 ? ext[2]
                       : e == 2 ? ext[0] + f * (ext[2] - ext[0])
                                : ext[0];
            double Y = e == 0   ? ext[1]
                       : e == 1 ? ext[1] + f * (ext[3] - ext[1])
                       : e == 2 ? ext[3]
                                : ext[1] + f * (ext[3] - ext[1]);
            CHECK(OCTTransform(ct, 1, &X, &Y, NULL));
            mnx = fmin(mnx, X), mxx = fmax(mxx, X), mny = fmin(mny, Y), mxy = fmax(mxy, Y);
        }
    OCTDestroyCoordinateTransformation(ct);
    OSRDestroySpatialReference(geo);
    OSRDestroySpatialReference(utm);
    int64_t x0 = (int64_t)floor((mnx - 500000) / 10), x1 = (int64_t)ceil((mxx - 500000) / 10);
    int64_t y0 = (int64_t)floor((5000000 - mxy) / 10), y1 = (int64_t)ceil((5000000 - mny) / 10);
    CHECK(x0 > 0 && y0 > 0 && x1 < 300 && y1 < 200 && x1 - x0 > 100 && y1 - y0 > 50);
    expect_crop(&s,
                json_pack("{s:[f,f,f,f],s:s}", "extent", ext[0], ext[1], ext[2], ext[3], "crs",
                          "EPSG:4326"),
                x0, y0, x1 - x0, y1 - y0);
    /* The same in an OGC URN, as OGC:CRS84 and in a PROJ string. */
    expect_crop(&s,
                json_pack("{s:[f,f,f,f],s:s}", "extent", ext[0], ext[1], ext[2], ext[3], "crs",
                          "urn:ogc:def:crs:OGC:1.3:CRS84"),
                x0, y0, x1 - x0, y1 - y0);
    expect_crop(&s,
                json_pack("{s:[f,f,f,f],s:s}", "extent", ext[0], ext[1], ext[2], ext[3], "crs",
                          "OGC:CRS84"),
                x0, y0, x1 - x0, y1 - y0);
    expect_crop(&s,
                json_pack("{s:[f,f,f,f],s:s}", "extent", ext[0], ext[1], ext[2], ext[3], "crs",
                          "+proj=longlat +datum=WGS84 +no_defs"),
                x0, y0, x1 - x0, y1 - y0);
    src_free(&s);
}
END_TEST

START_TEST(test_crop_errors)
{
    src_r s, bare;
    src_init(&s, 300, 200, 1, PG_U8, utm_gt, "EPSG:32633");
    src_init(&bare, 30, 20, 1, PG_U8, NULL, NULL);
    src_r *srcs[] = {&s}, *bares[] = {&bare};
    const int E = PG_EPARAM;
    expect_plan_error("transform.crop", srcs, 1, json_object(), E, "'window' and 'extent'");
    expect_plan_error(
        "transform.crop", srcs, 1,
        json_pack("{s:[i,i,i,i],s:[i,i,i,i]}", "window", 0, 0, 1, 1, "extent", 0, 0, 1, 1), E,
        "'window' and 'extent'");
    expect_plan_error("transform.crop", srcs, 1,
                      json_pack("{s:[i,i,i,i]}", "window", 290, 0, 11, 5), E, "param 'window'");
    expect_plan_error("transform.crop", srcs, 1, json_pack("{s:[i,i,i,i]}", "window", -1, 0, 5, 5),
                      E, "param 'window'");
    expect_plan_error("transform.crop", srcs, 1, json_pack("{s:[i,i,i,i]}", "window", 0, 0, 0, 5),
                      E, "param 'window'");
    expect_plan_error("transform.crop", srcs, 1, json_pack("{s:[i,i,f,i]}", "window", 0, 0, 2.5, 5),
                      E, "param 'window'");
    expect_plan_error("transform.crop", srcs, 1, json_pack("{s:[i,i,i]}", "window", 0, 0, 2), E,
                      "param 'window'");
    expect_plan_error("transform.crop", srcs, 1,
                      json_pack("{s:[i,i,i,i],s:s}", "window", 0, 0, 2, 2, "crs", "EPSG:4326"), E,
                      "param 'crs'");
    expect_plan_error("transform.crop", srcs, 1,
                      json_pack("{s:[f,f,f,f]}", "extent", 0.0, 0.0, 10.0, 10.0), E,
                      "does not overlap");
    expect_plan_error(
        "transform.crop", srcs, 1,
        json_pack("{s:[f,f,f,f]}", "extent", 500300.0, 4999000.0, 500100.0, 4999500.0), E,
        "param 'extent'");
    expect_plan_error("transform.crop", srcs, 1, json_pack("{s:[s,i,i,i]}", "extent", "a", 1, 2, 3),
                      E, "param 'extent'");
    expect_plan_error("transform.crop", bares, 1,
                      json_pack("{s:[f,f,f,f]}", "extent", 0.0, 0.0, 10.0, 10.0), E,
                      "geotransform");
    /* CRSs: unknown, and forms that would read files or URLs. */
    const char *bad[] = {"EPSG:999999",
                         "not a crs",
                         "/etc/passwd",
                         "+init=epsg:4326",
                         "https://example.com/crs.wkt",
                         "+proj=longlat +nadgrids=/tmp/x.gsb"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_plan_error(
            "transform.crop", srcs, 1,
            json_pack("{s:[f,f,f,f],s:s}", "extent", 15.0, 45.0, 15.1, 45.1, "crs", bad[i]), E,
            "param 'crs'");
    /* An AUTHORITY:CODE that names no CRS must not be read as a file name:
     * with a file of that name holding a valid WKT in the working
     * directory, it is still refused. */
    char cwd[512];
    CHECK(getcwd(cwd, sizeof cwd) != NULL);
    CHECK(chdir(tmpdir) == 0);
    char *w4326 = wkt_of("EPSG:4326");
    FILE *f = fopen("abc:def", "w");
    CHECK(f != NULL);
    fputs(w4326, f);
    fclose(f);
    free(w4326);
    expect_plan_error(
        "transform.crop", srcs, 1,
        json_pack("{s:[f,f,f,f],s:s}", "extent", 15.0, 45.0, 15.1, 45.1, "crs", "abc:def"), E,
        "param 'crs'");
    CHECK(chdir(cwd) == 0);
    /* An extent in another CRS that does not reach the raster. */
    expect_plan_error(
        "transform.crop", srcs, 1,
        json_pack("{s:[f,f,f,f],s:s}", "extent", 10.0, 40.0, 10.1, 40.1, "crs", "EPSG:4326"), E,
        "does not overlap");
    expect_plan_error(
        "transform.crop", bares, 1,
        json_pack("{s:[f,f,f,f],s:s}", "extent", 10.0, 40.0, 10.1, 40.1, "crs", "EPSG:4326"), E,
        "geotransform");
    src_free(&s);
    src_free(&bare);
}
END_TEST

/* ---- transform.bands ---- */

START_TEST(test_bands)
{
    src_r s;
    src_init(&s, 70, 50, 3, PG_I16, utm_gt, "EPSG:32633");
    src_nodata(&s, -5);
    src_fill_random(&s);
    src_r *srcs[] = {&s};
    tnode t;
    tn_init(&t, "transform.bands", srcs, 1, json_pack("{s:[i,i,i,i]}", "bands", 3, 1, 3, 2));
    ck_assert_int_eq(tn_plan(&t), 0);
    ck_assert_int_eq(t.n.info.bands, 4);
    ck_assert_int_eq(t.n.info.type, PG_I16);
    CHECK(t.n.info.has_nodata && t.n.info.nodata == -5);
    double *o = run_checked(&t, srcs);
    const int map[4] = {2, 0, 2, 1};
    for (int b = 0; b < 4; b++)
        for (int y = 0; y < 50; y++)
            for (int x = 0; x < 70; x++)
                CHECK(o[((size_t)b * 50 + y) * 70 + x] == *src_at(&s, map[b], x, y));
    free(o);
    tn_free(&t);
    /* A single number. */
    tn_init(&t, "transform.bands", srcs, 1, json_pack("{s:i}", "bands", 2));
    ck_assert_int_eq(tn_plan(&t), 0);
    ck_assert_int_eq(t.n.info.bands, 1);
    o = run_tiled(&t, srcs, 32, 32);
    for (int y = 0; y < 50; y++)
        for (int x = 0; x < 70; x++)
            CHECK(o[(size_t)y * 70 + x] == *src_at(&s, 1, x, y));
    free(o);
    tn_free(&t);

    const int E = PG_EPARAM;
    expect_plan_error("transform.bands", srcs, 1, json_pack("{s:[i,i]}", "bands", 1, 4), E,
                      "param 'bands': entry 2");
    expect_plan_error("transform.bands", srcs, 1, json_pack("{s:[i]}", "bands", 0), E,
                      "param 'bands'");
    expect_plan_error("transform.bands", srcs, 1, json_pack("{s:[]}", "bands"), E, "param 'bands'");
    expect_plan_error("transform.bands", srcs, 1, json_pack("{s:[f]}", "bands", 1.5), E,
                      "param 'bands'");
    expect_plan_error("transform.bands", srcs, 1, json_pack("{s:s}", "bands", "1"), E,
                      "param 'bands'");
    src_free(&s);
}
END_TEST

/* ---- transform.stack ---- */

START_TEST(test_stack_types)
{
    /* The union table, written out from the rule (ops/transform.c). */
#define U8 PG_U8
#define I8 PG_I8
#define U16 PG_U16
#define I16 PG_I16
#define U32 PG_U32
#define I32 PG_I32
#define F32 PG_F32
#define F64 PG_F64
    static const pg_celltype want[8][8] = {
        /*         u8   i8   u16  i16  u32  i32  f32  f64 */
        /* u8  */ {U8, I16, U16, I16, U32, I32, F32, F64},
        /* i8  */ {I16, I8, I32, I16, F64, I32, F32, F64},
        /* u16 */ {U16, I32, U16, I32, U32, I32, F32, F64},
        /* i16 */ {I16, I16, I32, I16, F64, I32, F32, F64},
        /* u32 */ {U32, F64, U32, F64, U32, F64, F64, F64},
        /* i32 */ {I32, I32, I32, I32, F64, I32, F64, F64},
        /* f32 */ {F32, F32, F32, F32, F64, F64, F32, F64},
        /* f64 */ {F64, F64, F64, F64, F64, F64, F64, F64},
    };
    for (int a = 0; a < 8; a++)
        for (int b = 0; b < 8; b++) {
            src_r s1, s2;
            src_init(&s1, 4, 3, 1, (pg_celltype)a, utm_gt, "EPSG:32633");
            src_init(&s2, 4, 3, 2, (pg_celltype)b, utm_gt, "EPSG:32633");
            src_r *srcs[] = {&s1, &s2};
            tnode t;
            tn_init(&t, "transform.stack", srcs, 2, json_object());
            ck_assert_int_eq(tn_plan(&t), 0);
            CHECK_MSG(t.n.info.type == want[a][b], "%s + %s -> %s, want %s",
                      pg_celltype_name((pg_celltype)a), pg_celltype_name((pg_celltype)b),
                      pg_celltype_name(t.n.info.type), pg_celltype_name(want[a][b]));
            ck_assert_int_eq(t.n.info.bands, 3);
            CHECK(!t.n.info.has_nodata);
            /* Every value of both types survives: the extremes. */
            for (int k = 0; k < 12; k++) {
                s1.cells[k] =
                    k % 2 ? pg_celltype_min((pg_celltype)a) : pg_celltype_max((pg_celltype)a);
                if (a >= PG_F32) s1.cells[k] = k % 2 ? -FLT_MAX : FLT_MAX;
                if (a == PG_F64) s1.cells[k] = k % 2 ? -DBL_MAX : DBL_MAX;
            }
            for (int k = 0; k < 24; k++) {
                s2.cells[k] =
                    k % 3 ? pg_celltype_min((pg_celltype)b) : pg_celltype_max((pg_celltype)b);
                if (b >= PG_F32) s2.cells[k] = k % 3 ? -FLT_MAX : 0.5;
                if (b == PG_F64) s2.cells[k] = k % 3 ? -DBL_MAX : 1e300;
            }
            double *o = run_tiled(&t, srcs, 16, 16);
            for (int k = 0; k < 12; k++)
                CHECK(o[k] == s1.cells[k]);
            for (int k = 0; k < 24; k++)
                CHECK(o[12 + k] == s2.cells[k]);
            free(o);
            tn_free(&t);
            src_free(&s1);
            src_free(&s2);
        }
}
END_TEST

START_TEST(test_stack_nodata)
{
    src_r a, b, c;
    src_init(&a, 90, 70, 1, PG_U8, utm_gt, "EPSG:32633");
    src_init(&b, 90, 70, 2, PG_I16, utm_gt, "EPSG:32633");
    src_init(&c, 90, 70, 1, PG_F32, utm_gt, "EPSG:32633");
    src_nodata(&a, 255);
    src_nodata(&b, -1);
    src_fill_random(&a);
    src_fill_random(&b);
    src_fill_random(&c);
    for (size_t i = 0; i < 90 * 70; i += 13)
        c.cells[i] = NAN;
    src_r *srcs[] = {&a, &b, &c};
    tnode t;
    tn_init(&t, "transform.stack", srcs, 3, json_object());
    ck_assert_int_eq(tn_plan(&t), 0);
    const pg_raster_info *ri = &t.n.info;
    ck_assert_int_eq(ri->type, PG_F32); /* u8 + i16 -> i16, + f32 -> f32 */
    ck_assert_int_eq(ri->bands, 4);
    CHECK(ri->has_nodata && ri->nodata == 255);
    double *o = run_checked(&t, srcs);
    const size_t plane = 90 * 70;
    size_t nd = 0;
    for (size_t i = 0; i < plane; i++) {
        double va = a.cells[i], vb0 = b.cells[i], vb1 = b.cells[plane + i], vc = c.cells[i];
        double wa = va == 255 ? 255 : va, wb0 = vb0 == -1 ? 255 : vb0, wb1 = vb1 == -1 ? 255 : vb1;
        double wc = isnan(vc) ? 255 : vc;
        CHECK(o[i] == wa && o[plane + i] == wb0 && o[2 * plane + i] == wb1 &&
              o[3 * plane + i] == wc);
        nd += (va == 255) + (vb0 == -1) + (vb1 == -1) + isnan(vc);
    }
    CHECK(nd > 1000);
    free(o);
    tn_free(&t);

    /* Grids must match. */
    src_r d;
    double gt2[6] = {500010, 10, 0, 5000000, 0, -10};
    src_init(&d, 90, 70, 1, PG_U8, gt2, "EPSG:32633");
    src_r *bad[] = {&a, &d};
    expect_plan_error("transform.stack", bad, 2, json_object(), PG_EGRID, "arg 2");
    src_r e;
    src_init(&e, 90, 70, 1, PG_U8, utm_gt, "EPSG:32634");
    src_r *bad2[] = {&a, &e};
    expect_plan_error("transform.stack", bad2, 2, json_object(), PG_EGRID, "arg 2");
    src_free(&a);
    src_free(&b);
    src_free(&c);
    src_free(&d);
    src_free(&e);
}
END_TEST

/* ---- transform.resample ---- */

/* A grid whose arithmetic is exact: power-of-two cell size and origin. */
static const double bin_gt[6] = {1024, 8, 0, 4096, 0, -8};

/* The reference for nearest: the source cell containing output cell (x, y)'s
 * centre, for an output of OW x OH over the source's extent; on a tie (the
 * centre on a cell edge, exact here), the right/lower cell, as GDAL does. */
START_TEST(test_resample_nearest)
{
    static const int64_t sizes[][2] = {{100, 75}, {64, 48}, {600, 450}, {200, 150}, {33, 150}};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        src_r s;
        src_init(&s, 200, 150, 2, PG_F32, bin_gt, "EPSG:32633");
        src_nodata(&s, -9999);
        src_fill_random(&s);
        src_r *srcs[] = {&s};
        int64_t ow = sizes[k][0], oh = sizes[k][1];
        tnode t;
        tn_init(&t, "transform.resample", srcs, 1,
                json_pack("{s:I,s:I}", "width", (json_int_t)ow, "height", (json_int_t)oh));
        CHECK_MSG(tn_plan(&t) == 0, "%s", t.err.message);
        const pg_raster_info *ri = &t.n.info;
        CHECK(ri->width == ow && ri->height == oh && ri->type == PG_F32);
        CHECK(ri->has_nodata && ri->nodata == -9999);
        CHECK(ri->geotransform[0] == 1024 && ri->geotransform[3] == 4096);
        CHECK(ri->geotransform[1] == 8.0 * 200 / ow && ri->geotransform[5] == -8.0 * 150 / oh);
        double *o = run_checked(&t, srcs);
        for (int b = 0; b < 2; b++)
            for (int64_t y = 0; y < oh; y++)
                for (int64_t x = 0; x < ow; x++) {
                    int64_t sx = (int64_t)floor((x + 0.5) * 200.0 / ow);
                    int64_t sy = (int64_t)floor((y + 0.5) * 150.0 / oh);
                    double want = *src_at(&s, b, sx, sy);
                    double got = o[((size_t)b * oh + y) * ow + x];
                    CHECK_MSG(got == want, "%lldx%lld: cell %lld,%lld: %g, want %g", (long long)ow,
                              (long long)oh, (long long)x, (long long)y, got, want);
                }
        free(o);
        tn_free(&t);
        src_free(&s);
    }
}
END_TEST

/* Average at integer factors FX x FY over type T: each output cell is the
 * mean of the valid cells of its block (nodata if none), integers rounded
 * half up. */
static void check_average(pg_celltype type, int fx, int fy, bool cell_size)
{
    src_r s;
    src_init(&s, 240, 120, 1, type, bin_gt, "EPSG:32633");
    src_nodata(&s, type == PG_I8 ? -128 : 0);
    src_fill_random(&s);
    for (int64_t x = 0; x < 8; x++) /* a whole block of nodata */
        for (int64_t y = 0; y < 8; y++)
            *src_at(&s, 0, x, y) = s.node.info.nodata;
    src_r *srcs[] = {&s};
    int64_t ow = 240 / fx, oh = 120 / fy;
    tnode t;
    json_t *p =
        cell_size ? json_pack("{s:[f,f],s:s}", "cell_size", 8.0 * fx, 8.0 * fy, "method", "average")
                  : json_pack("{s:I,s:I,s:s}", "width", (json_int_t)ow, "height", (json_int_t)oh,
                              "method", "average");
    tn_init(&t, "transform.resample", srcs, 1, p);
    CHECK_MSG(tn_plan(&t) == 0, "%s", t.err.message);
    CHECK(t.n.info.width == ow && t.n.info.height == oh);
    double *o = run_checked(&t, srcs);
    const double nd = s.node.info.nodata;
    for (int64_t y = 0; y < oh; y++)
        for (int64_t x = 0; x < ow; x++) {
            double sum = 0;
            int n = 0;
            for (int j = 0; j < fy; j++)
                for (int i = 0; i < fx; i++) {
                    double v = *src_at(&s, 0, x * fx + i, y * fy + j);
                    if (v != nd) sum += v, n++;
                }
            double want = n == 0 ? nd : sum / n;
            if (n > 0 && !pg_celltype_is_float(type)) want = floor(want + 0.5);
            if (n > 0 && type == PG_F32) want = (double)(float)want;
            double got = o[y * ow + x];
            CHECK_MSG(got == want, "%s %dx%d: cell %lld,%lld: %.17g, want %.17g",
                      pg_celltype_name(type), fx, fy, (long long)x, (long long)y, got, want);
        }
    free(o);
    tn_free(&t);
    src_free(&s);
}

START_TEST(test_resample_average)
{
    check_average(PG_U16, 2, 2, false);
    check_average(PG_F32, 2, 2, true);
    check_average(PG_U8, 4, 4, false);
    check_average(PG_F64, 3, 2, true);
    check_average(PG_I16, 2, 3, false);
    check_average(PG_I8, 2, 2, false); /* through GDAL as u8 with the sign bit flipped */
}
END_TEST

/* gdalwarp with ARGS on SRC to a temporary file, read back. */
static double *gdalwarp(const char *args, const char *src, int *w, int *h, int *b)
{
    char out[300], cmd[2048];
    snprintf(out, sizeof out, "%s/warped.tif", tmpdir);
    /* One chunk: gdalwarp otherwise cuts partly covered outputs into
     * chunks (its fill-ratio heuristic) and computes the kernel scale of
     * each chunk from the chunk's own source window, so its cells would
     * depend on its chunking (the op uses the whole-raster scale). */
    snprintf(cmd, sizeof cmd,
             "/usr/bin/gdalwarp -q -overwrite -wo SRC_FILL_RATIO_HEURISTICS=NO %s %s %s", args, src,
             out);
    CHECK_MSG(system(cmd) == 0, "failed: %s", cmd);
    return read_tif(out, w, h, b, NULL);
}

/* -tr and -te that give gdalwarp exactly the node's grid. */
static void grid_args(const pg_raster_info *ri, char *buf, size_t n)
{
    const double *g = ri->geotransform;
    snprintf(buf, n, "-tr %.17g %.17g -te %.17g %.17g %.17g %.17g", g[1], -g[5], g[0],
             g[3] + g[5] * (double)ri->height, g[0] + g[1] * (double)ri->width, g[3]);
}

/* Compares the node's result with gdalwarp's cell for cell: exact. Returns
 * the number of valid cells. */
static size_t compare_exact(const tnode *t, const double *o, const double *ref, int rw, int rh,
                            int rb)
{
    const pg_raster_info *ri = &t->n.info;
    CHECK_MSG(rw == ri->width && rh == ri->height && rb == ri->bands,
              "gdalwarp made %dx%dx%d, the op %lldx%lldx%d", rw, rh, rb, (long long)ri->width,
              (long long)ri->height, ri->bands);
    size_t valid = 0;
    for (size_t i = 0; i < info_cells(ri); i++) {
        if (!same(o[i], ref[i])) {
            char *p = json_dumps(t->n.params, JSON_COMPACT | JSON_SORT_KEYS);
            ck_abort_msg("%s %s (%s) cell %zu (%zu, %zu, band %zu): %.17g, gdalwarp %.17g",
                         t->n.op->name, p, pg_celltype_name(ri->type), i, i % (size_t)rw,
                         (i / (size_t)rw) % (size_t)rh, i / ((size_t)rw * (size_t)rh), o[i],
                         ref[i]);
        }
        valid += !is_nd(ri, o[i]);
    }
    return valid;
}

START_TEST(test_resample_vs_gdalwarp)
{
    src_r s;
    src_init(&s, 257, 193, 1, PG_F32, utm_gt, "EPSG:32633");
    src_nodata(&s, -9999);
    src_fill_smooth(&s);
    for (int64_t x = 100; x < 120; x++) /* a hole */
        for (int64_t y = 40; y < 47; y++)
            *src_at(&s, 0, x, y) = -9999;
    char path[300];
    snprintf(path, sizeof path, "%s/smooth.tif", tmpdir);
    src_write(&s, path);
    src_r *srcs[] = {&s};
    static const char *const methods[] = {"bilinear", "cubic", "cubicspline", "lanczos", "average",
                                          "mode",     "min",   "max",         "med",     "nearest"};
    /* Every method down (scale < 1: widened kernels, block statistics);
     * the first three, the interpolations, also up. */
    static const int64_t sizes[][2] = {{100, 70}, {600, 500}};
    for (size_t m = 0; m < sizeof methods / sizeof methods[0]; m++)
        for (size_t k = 0; k < (m < 3 ? 2u : 1u); k++) {
            tnode t;
            tn_init(&t, "transform.resample", srcs, 1,
                    json_pack("{s:I,s:I,s:s}", "width", (json_int_t)sizes[k][0], "height",
                              (json_int_t)sizes[k][1], "method", methods[m]));
            ck_assert_int_eq(tn_plan(&t), 0);
            double *o = run_checked(&t, srcs);
            char args[600];
            int n = snprintf(args, sizeof args, "-et 0 -r %s ", methods[m]);
            grid_args(&t.n.info, args + n, sizeof args - (size_t)n);
            int rw, rh, rb;
            double *ref = gdalwarp(args, path, &rw, &rh, &rb);
            size_t valid = compare_exact(&t, o, ref, rw, rh, rb);
            CHECK(valid > (size_t)(sizes[k][0] * sizes[k][1]) * 9 / 10);
            free(ref);
            free(o);
            tn_free(&t);
        }
    src_free(&s);
}
END_TEST

START_TEST(test_resample_errors)
{
    src_r s, bare;
    src_init(&s, 300, 200, 1, PG_U8, utm_gt, "EPSG:32633");
    src_init(&bare, 30, 20, 1, PG_U8, NULL, NULL);
    src_r *srcs[] = {&s}, *bares[] = {&bare};
    const int E = PG_EPARAM;
    expect_plan_error("transform.resample", srcs, 1, json_object(), E, "'width'");
    expect_plan_error("transform.resample", srcs, 1,
                      json_pack("{s:i,s:f}", "width", 10, "cell_size", 20.0), E, "'cell_size'");
    expect_plan_error("transform.resample", srcs, 1, json_pack("{s:f}", "cell_size", -2.0), E,
                      "param 'cell_size'");
    expect_plan_error("transform.resample", srcs, 1, json_pack("{s:[f]}", "cell_size", 2.0), E,
                      "param 'cell_size'");
    expect_plan_error("transform.resample", srcs, 1, json_pack("{s:f}", "cell_size", 1e9), E,
                      "param 'cell_size'");
    expect_plan_error("transform.resample", bares, 1, json_pack("{s:f}", "cell_size", 2.0), E,
                      "geotransform");
    expect_plan_error("transform.resample", srcs, 1,
                      json_pack("{s:i,s:s}", "width", 10, "method", "sinc"), E, "param 'method'");
    expect_plan_error("transform.resample", srcs, 1,
                      json_pack("{s:i,s:i}", "width", 10, "nodata", 300), E, "param 'nodata'");
    expect_plan_error("transform.resample", srcs, 1,
                      json_pack("{s:i,s:f}", "width", 10, "nodata", 0.5), E, "param 'nodata'");
    /* Without a geotransform, width/height work in cell space. */
    tnode t;
    tn_init(&t, "transform.resample", bares, 1, json_pack("{s:i}", "width", 15));
    ck_assert_int_eq(tn_plan(&t), 0);
    CHECK(t.n.info.width == 15 && t.n.info.height == 10 && !t.n.info.has_geotransform);
    CHECK(!t.n.info.has_nodata); /* u8 without nodata: none (uncovered cells 0) */
    tn_free(&t);
    src_free(&s);
    src_free(&bare);
}
END_TEST

/* ---- transform.reproject ---- */

START_TEST(test_reproject_vs_gdalwarp)
{
    /* A 10 m UTM 33N raster near 45N, as in the integration test but
     * smaller; every method, to EPSG:4326 at GDAL's suggested grid, and to
     * a Lambert conformal grid given by cell size and extent. */
    src_r s;
    src_init(&s, 301, 263, 2, PG_F32, utm_gt, "EPSG:32633");
    src_nodata(&s, -9999);
    src_fill_smooth(&s);
    for (int64_t x = 30; x < 60; x++)
        for (int64_t y = 200; y < 210; y++)
            *src_at(&s, 1, x, y) = -9999; /* band 2 only */
    char path[300];
    snprintf(path, sizeof path, "%s/utm.tif", tmpdir);
    src_write(&s, path);
    src_r *srcs[] = {&s};
    static const char *const methods[] = {"nearest", "bilinear", "cubic", "cubicspline", "lanczos",
                                          "average", "mode",     "min",   "max",         "med"};
    for (size_t m = 0; m < sizeof methods / sizeof methods[0]; m++) {
        tnode t;
        tn_init(&t, "transform.reproject", srcs, 1,
                json_pack("{s:s,s:s}", "crs", "EPSG:4326", "method", methods[m]));
        CHECK_MSG(tn_plan(&t) == 0, "%s", t.err.message);
        const pg_raster_info *ri = &t.n.info;
        CHECK(ri->has_nodata && ri->nodata == -9999 && ri->type == PG_F32 && ri->bands == 2);
        CHECK(ri->geotransform[0] > 14.9 && ri->geotransform[0] < 15.1); /* x: longitude */
        double *o = run_checked(&t, srcs);
        char args[700];
        int n = snprintf(args, sizeof args, "-t_srs EPSG:4326 -et 0 -r %s ", methods[m]);
        grid_args(ri, args + n, sizeof args - (size_t)n);
        int rw, rh, rb;
        double *ref = gdalwarp(args, path, &rw, &rh, &rb);
        size_t valid = compare_exact(&t, o, ref, rw, rh, rb);
        CHECK(valid > info_cells(ri) / 2);
        free(ref);
        free(o);
        tn_free(&t);
    }
    /* GDAL's suggested grid is gdalwarp's. */
    {
        tnode t;
        tn_init(&t, "transform.reproject", srcs, 1, json_pack("{s:s}", "crs", "EPSG:4326"));
        ck_assert_int_eq(tn_plan(&t), 0);
        int rw, rh, rb;
        char out[300], cmd[1024];
        snprintf(out, sizeof out, "%s/sugg.tif", tmpdir);
        snprintf(cmd, sizeof cmd, "/usr/bin/gdalwarp -q -overwrite -t_srs EPSG:4326 %s %s", path,
                 out);
        ck_assert_int_eq(system(cmd), 0);
        double gt[6];
        free(read_tif(out, &rw, &rh, &rb, gt));
        CHECK(rw == t.n.info.width && rh == t.n.info.height);
        for (int i = 0; i < 6; i++)
            CHECK_MSG(gt[i] == t.n.info.geotransform[i], "gt[%d] %.17g vs %.17g", i, gt[i],
                      t.n.info.geotransform[i]);
        tn_free(&t);
    }
    /* Another projection, a coarser cell (the kernels widen: the scale is
     * below 1) and a given extent that reaches past the source. */
    static const char *const coarse[] = {"bilinear", "cubic", "average", "nearest"};
    for (size_t m = 0; m < 4; m++) {
        const char *lcc = "+proj=lcc +lat_1=43 +lat_2=47 +lat_0=45 +lon_0=14 +datum=WGS84 "
                          "+units=m +no_defs";
        tnode t;
        tn_init(&t, "transform.reproject", srcs, 1,
                json_pack("{s:s,s:s,s:f,s:[f,f,f,f]}", "crs", lcc, "method", coarse[m], "cell_size",
                          23.0, "extent", 78000.0, 14000.0, 83500.0, 18508.0));
        CHECK_MSG(tn_plan(&t) == 0, "%s", t.err.message);
        CHECK(t.n.info.width == 239 && t.n.info.height == 196);
        double *o = run_checked(&t, srcs);
        char args[900];
        int n = snprintf(args, sizeof args, "-t_srs '%s' -et 0 -r %s ", lcc, coarse[m]);
        grid_args(&t.n.info, args + n, sizeof args - (size_t)n);
        int rw, rh, rb;
        double *ref = gdalwarp(args, path, &rw, &rh, &rb);
        size_t valid = compare_exact(&t, o, ref, rw, rh, rb);
        CHECK(valid > 1000 && valid < info_cells(&t.n.info)); /* partly covered */
        free(ref);
        free(o);
        tn_free(&t);
    }
    src_free(&s);
}
END_TEST

/* Integer types and a source without nodata. i8: GDAL 3.6 has no signed
 * byte type, so gdalwarp warps an i8 file's bytes as unsigned: its nearest
 * result is still the right bytes (read back here as signed), but its
 * interpolations are not; i8 bilinear/cubic are compared with the op's own
 * i16 result on the same values instead (within 1: a rounding tie may
 * fall either way, the Byte and Int16 kernels sum in different orders). */
START_TEST(test_reproject_types)
{
    static const pg_celltype types[] = {PG_I16, PG_U8, PG_I8, PG_U16, PG_I32, PG_F64};
    double *i16_out[3] = {0};
    for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
        src_r s;
        src_init(&s, 120, 90, 1, types[k], utm_gt, "EPSG:32633");
        src_fill_smooth(&s);
        for (size_t i = 0; i < 120 * 90; i++) /* in [-100, 100) for all types but u8, u16 */
            s.cells[i] = fmod(s.cells[i], 200.0) - 100;
        if (types[k] == PG_U8 || types[k] == PG_U16)
            for (size_t i = 0; i < 120 * 90; i++)
                s.cells[i] += 100;
        char path[300];
        snprintf(path, sizeof path, "%s/t.tif", tmpdir);
        src_write(&s, path);
        src_r *srcs[] = {&s};
        for (int m = 0; m < 3; m++) {
            const char *method = m == 0 ? "nearest" : m == 1 ? "bilinear" : "cubic";
            tnode t;
            tn_init(&t, "transform.reproject", srcs, 1,
                    json_pack("{s:s,s:s}", "crs", "EPSG:3035", "method", method));
            CHECK_MSG(tn_plan(&t) == 0, "%s", t.err.message);
            const pg_raster_info *ri = &t.n.info;
            ck_assert_int_eq(ri->type, types[k]);
            /* No source nodata: NaN for floats, none for integers. */
            CHECK(pg_celltype_is_float(types[k]) ? ri->has_nodata && isnan(ri->nodata)
                                                 : !ri->has_nodata);
            double *o = run_checked(&t, srcs);
            if (types[k] == PG_I8 && m > 0) {
                size_t exact = 0, n = info_cells(ri);
                for (size_t i = 0; i < n; i++) {
                    const double w = fmin(127, fmax(-128, i16_out[m][i]));
                    CHECK_MSG(fabs(o[i] - w) <= 1, "i8 %s cell %zu: %g, i16 %g", method, i, o[i],
                              i16_out[m][i]);
                    exact += o[i] == w;
                }
                CHECK(exact >= n - n / 1000);
            } else {
                char args[700];
                int n = snprintf(args, sizeof args, "-t_srs EPSG:3035 -et 0 -r %s %s", method,
                                 pg_celltype_is_float(types[k]) ? "-dstnodata nan " : "");
                grid_args(ri, args + n, sizeof args - (size_t)n);
                int rw, rh, rb;
                double *ref = gdalwarp(args, path, &rw, &rh, &rb);
                if (types[k] == PG_I8)
                    for (int i = 0; i < rw * rh; i++)
                        ref[i] = ref[i] > 127 ? ref[i] - 256 : ref[i];
                compare_exact(&t, o, ref, rw, rh, rb);
                free(ref);
            }
            if (types[k] == PG_I16)
                i16_out[m] = o;
            else
                free(o);
            tn_free(&t);
        }
        src_free(&s);
    }
    for (int m = 0; m < 3; m++)
        free(i16_out[m]);
}
END_TEST

/* A float source without a nodata value (NaN is its nodata): warped without
 * masks (GDAL's mask-free kernels), and again with masks only where a NaN
 * is near. Without NaN cells: exactly plain gdalwarp -et 0 (which has no
 * masks either; its uncovered cells are 0, the op's NaN). With NaN cells:
 * the same for every tiling (run_checked), the same coverage as gdalwarp
 * -srcnodata nan -dstnodata nan (GDAL's masked kernel everywhere) and
 * values within 2^-20 relative of it (the kernels round differently). */
START_TEST(test_reproject_nan_source)
{
    static const char *const methods[] = {"nearest", "bilinear", "cubic", "lanczos"};
    for (int withnan = 0; withnan < 2; withnan++) {
        src_r s;
        src_init(&s, 301, 263, 1, PG_F32, utm_gt, "EPSG:32633");
        src_fill_smooth(&s);
        if (withnan) {
            for (int64_t y = 100; y < 104; y++)
                for (int64_t x = 40; x < 47; x++)
                    *src_at(&s, 0, x, y) = NAN;
            for (int k = 0; k < 40; k++)
                *src_at(&s, 0, (int64_t)(rnd() % 301), (int64_t)(rnd() % 263)) = NAN;
        }
        char path[300];
        snprintf(path, sizeof path, "%s/nan%d.tif", tmpdir, withnan);
        src_write(&s, path);
        src_r *srcs[] = {&s};
        for (size_t m = 0; m < sizeof methods / sizeof methods[0]; m++) {
            tnode t;
            tn_init(&t, "transform.reproject", srcs, 1,
                    json_pack("{s:s,s:s}", "crs", "EPSG:4326", "method", methods[m]));
            CHECK_MSG(tn_plan(&t) == 0, "%s", t.err.message);
            CHECK(t.n.info.has_nodata && isnan(t.n.info.nodata));
            double *o = run_checked(&t, srcs);
            char args[800];
            int n = snprintf(args, sizeof args, "-t_srs EPSG:4326 -et 0 -r %s %s", methods[m],
                             withnan ? "-srcnodata nan -dstnodata nan " : "");
            grid_args(&t.n.info, args + n, sizeof args - (size_t)n);
            int rw, rh, rb;
            double *ref = gdalwarp(args, path, &rw, &rh, &rb);
            CHECK(rw == t.n.info.width && rh == t.n.info.height && rb == 1);
            size_t valid = 0, nanv = 0;
            for (size_t i = 0; i < info_cells(&t.n.info); i++) {
                if (!withnan) {
                    CHECK_MSG(o[i] == ref[i] || (isnan(o[i]) && ref[i] == 0),
                              "%s cell %zu: %.17g, gdalwarp %.17g", methods[m], i, o[i], ref[i]);
                } else {
                    CHECK_MSG(isnan(o[i]) == isnan(ref[i]) &&
                                  (isnan(o[i]) || fabs(o[i] - ref[i]) <= 0x1p-20 * fabs(ref[i])),
                              "%s (NaN cells) cell %zu: %.17g, gdalwarp %.17g", methods[m], i, o[i],
                              ref[i]);
                    nanv += isnan(o[i]);
                }
                valid += !isnan(o[i]);
            }
            CHECK(valid > info_cells(&t.n.info) / 2);
            if (withnan) CHECK(nanv > 0);
            free(ref);
            free(o);
            tn_free(&t);
        }
        src_free(&s);
    }
}
END_TEST

/* error_threshold: approximate rows, the same for any tiling, within the
 * threshold of the exact positions. */
START_TEST(test_reproject_approx)
{
    src_r s;
    src_init(&s, 400, 300, 1, PG_F64, utm_gt, "EPSG:32633");
    /* Each cell holds its own index: nearest then tells which source cell
     * an output cell took. */
    for (size_t i = 0; i < 400 * 300; i++)
        s.cells[i] = (double)i;
    src_r *srcs[] = {&s};
    tnode ex, ap;
    tn_init(&ex, "transform.reproject", srcs, 1, json_pack("{s:s}", "crs", "EPSG:4326"));
    tn_init(&ap, "transform.reproject", srcs, 1,
            json_pack("{s:s,s:f}", "crs", "EPSG:4326", "error_threshold", 0.125));
    ck_assert_int_eq(tn_plan(&ex), 0);
    ck_assert_int_eq(tn_plan(&ap), 0);
    double *a = run_tiled(&ex, srcs, 64, 64);
    double *b = run_checked(&ap, srcs); /* checks 3 tilings */
    size_t n = info_cells(&ex.n.info), differ = 0, valid = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(a[i]) || isnan(b[i])) {
            /* Only at the footprint's edge may coverage differ. */
            continue;
        }
        valid++;
        if (a[i] == b[i]) continue;
        differ++;
        /* A different cell, then a neighbour of the exact one. */
        int64_t ax = (int64_t)a[i] % 400, ay = (int64_t)a[i] / 400;
        int64_t bx = (int64_t)b[i] % 400, by = (int64_t)b[i] / 400;
        CHECK(llabs(ax - bx) <= 1 && llabs(ay - by) <= 1);
    }
    printf("reproject nearest, error_threshold 0.125 vs exact: %zu of %zu cells took a "
           "neighbouring source cell\n",
           differ, valid);
    CHECK(valid > n / 2 && differ < valid / 20);
    free(a);
    free(b);
    tn_free(&ex);
    tn_free(&ap);
    src_free(&s);
}
END_TEST

START_TEST(test_reproject_errors)
{
    src_r s, nocrs;
    src_init(&s, 300, 200, 1, PG_U8, utm_gt, "EPSG:32633");
    src_init(&nocrs, 30, 20, 1, PG_U8, utm_gt, NULL);
    src_r *srcs[] = {&s}, *nc[] = {&nocrs};
    const int E = PG_EPARAM;
    const char *bad[] = {"EPSG:999999",
                         "nonsense",
                         "/usr/share/proj/proj.db",
                         "+init=epsg:4326",
                         "http://example.com/x",
                         "file:///etc/passwd",
                         "+proj=longlat +geoidgrids=/x"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        expect_plan_error("transform.reproject", srcs, 1, json_pack("{s:s}", "crs", bad[i]), E,
                          "param 'crs'");
    expect_plan_error("transform.reproject", nc, 1, json_pack("{s:s}", "crs", "EPSG:4326"), E,
                      "without a geotransform and a CRS");
    expect_plan_error("transform.reproject", srcs, 1,
                      json_pack("{s:s,s:s}", "crs", "EPSG:4326", "method", "nearest2"), E,
                      "param 'method'");
    expect_plan_error("transform.reproject", srcs, 1,
                      json_pack("{s:s,s:[f,f]}", "crs", "EPSG:4326", "cell_size", 0.0, 1.0), E,
                      "param 'cell_size'");
    expect_plan_error(
        "transform.reproject", srcs, 1,
        json_pack("{s:s,s:[f,f,f,f]}", "crs", "EPSG:4326", "extent", 16.0, 45.0, 15.0, 46.0), E,
        "param 'extent'");
    expect_plan_error("transform.reproject", srcs, 1,
                      json_pack("{s:s,s:[f,f,f]}", "crs", "EPSG:4326", "extent", 16.0, 45.0, 15.0),
                      E, "param 'extent'");
    expect_plan_error("transform.reproject", srcs, 1,
                      json_pack("{s:s,s:i}", "crs", "EPSG:4326", "nodata", -1), E,
                      "param 'nodata'");
    /* WKT and PROJJSON are fine. */
    char *w = wkt_of("EPSG:3035");
    tnode t;
    tn_init(&t, "transform.reproject", srcs, 1, json_pack("{s:s,s:i}", "crs", w, "nodata", 0));
    CHECK_MSG(tn_plan(&t) == 0, "%s", t.err.message);
    CHECK(t.n.info.has_nodata && t.n.info.nodata == 0);
    tn_free(&t);
    free(w);
    src_free(&s);
    src_free(&nocrs);
}
END_TEST

/* The source-window cap: output tiles across the antimeridian of a global
 * source need its whole width. */
START_TEST(test_reproject_window_cap)
{
    src_r s;
    const double geo_gt[6] = {-180, 0.05, 0, 90, 0, -0.05};
    src_init(&s, 7200, 3600, 1, PG_U8, geo_gt, "EPSG:4326");
    src_r *srcs[] = {&s};
    const char *merc = "+proj=merc +lon_0=150 +datum=WGS84 +units=m +no_defs";
    /* Plan-time: the node's own 256 x 256 tiles are checked. */
    expect_plan_error("transform.reproject", srcs, 1,
                      json_pack("{s:s,s:f,s:[f,f,f,f]}", "crs", merc, "cell_size", 5000.0, "extent",
                                2000000.0, -1000000.0, 5000000.0, 1000000.0),
                      PG_EPARAM, "needs a source window");
    /* Away from the antimeridian the same grid size plans. */
    tnode t;
    tn_init(&t, "transform.reproject", srcs, 1,
            json_pack("{s:s,s:f,s:[f,f,f,f]}", "crs", merc, "cell_size", 5000.0, "extent",
                      -2000000.0, -1000000.0, 1000000.0, 1000000.0));
    CHECK_MSG(tn_plan(&t) == 0, "%s", t.err.message);
    tn_free(&t);
    /* Run time: planned with one big tile (under the cap), then asked for
     * a 256 x 256 window across the antimeridian: need() asks for one cell
     * only, compute() fails with the reason. */
    pg_plan_env env = test_env;
    env.tile_w = env.tile_h = 8192;
    tn_init(&t, "transform.reproject", srcs, 1,
            json_pack("{s:s,s:f,s:[f,f,f,f]}", "crs", merc, "cell_size", 5000.0, "extent",
                      2000000.0, -1000000.0, 5000000.0, 1000000.0));
    CHECK_MSG(t.n.op->plan(&t.n, &env, &t.err) == 0, "%s", t.err.message);
    pg_window w = {200, 100, 256, 256}, in;
    t.n.op->need(&t.n, 0, &w, &in);
    CHECK(in.w * in.h <= 1);
    pg_tile *it = src_tile(&s, in);
    pg_tile *o = pg_tile_new(PG_U8, 1, w);
    ck_assert_int_eq(t.n.op->compute(&t.n, o, &it, &t.err), PG_EPARAM);
    CHECK_MSG(strstr(t.err.message, "needs a source window") != NULL, "%s", t.err.message);
    pg_tile_unref(&it);
    pg_tile_unref(&o);
    tn_free(&t);
    src_free(&s);
}
END_TEST

/* ---- transform.mosaic ---- */

START_TEST(test_mosaic)
{
    /* A: u8, nodata 0, at the origin. B: i16 nodata -1, overlapping A's
     * lower right and reaching past it. C: f32 without nodata, on a grid
     * offset by a quarter cell, resampled with nearest. */
    src_r a, b, c;
    src_init(&a, 100, 80, 1, PG_U8, bin_gt, "EPSG:32633");
    const double gb[6] = {1024 + 8 * 60, 8, 0, 4096 - 8 * 50, 0, -8};
    src_init(&b, 90, 70, 1, PG_I16, gb, "EPSG:32633");
    src_nodata(&a, 0);
    src_nodata(&b, -1);
    src_fill_random(&a);
    src_fill_random(&b);
    src_r *srcs[] = {&a, &b};
    tnode t;
    tn_init(&t, "transform.mosaic", srcs, 2, json_object());
    CHECK_MSG(tn_plan(&t) == 0, "%s", t.err.message);
    const pg_raster_info *ri = &t.n.info;
    ck_assert_int_eq(ri->type, PG_I16);
    CHECK(ri->width == 150 && ri->height == 120);
    CHECK(ri->geotransform[0] == 1024 && ri->geotransform[3] == 4096);
    CHECK(ri->has_nodata && ri->nodata == 0); /* A's */
    double *o = run_checked(&t, srcs);
    size_t both = 0, none = 0;
    for (int64_t y = 0; y < 120; y++)
        for (int64_t x = 0; x < 150; x++) {
            double want = 0;
            if (x < 100 && y < 80 && *src_at(&a, 0, x, y) != 0) want = *src_at(&a, 0, x, y);
            int64_t bx = x - 60, by = y - 50;
            bool inb = bx >= 0 && by >= 0 && bx < 90 && by < 70;
            if (inb && *src_at(&b, 0, bx, by) != -1) want = *src_at(&b, 0, bx, by);
            both += inb && x < 100 && y < 80;
            none += !inb && !(x < 100 && y < 80);
            CHECK_MSG(o[y * 150 + x] == want, "cell %lld,%lld: %g, want %g", (long long)x,
                      (long long)y, o[y * 150 + x], want);
        }
    CHECK(both > 1000 && none > 1000);
    free(o);
    tn_free(&t);

    /* C, a quarter cell off, drawn over A. */
    const double gc[6] = {1024 + 8 * 10.25, 8, 0, 4096 - 8 * 20.25, 0, -8};
    src_init(&c, 50, 40, 1, PG_F32, gc, "EPSG:32633");
    src_fill_random(&c);
    for (size_t i = 0; i < 50 * 40; i += 7)
        c.cells[i] = NAN;
    src_r *srcs2[] = {&a, &c};
    tn_init(&t, "transform.mosaic", srcs2, 2, json_object());
    CHECK_MSG(tn_plan(&t) == 0, "%s", t.err.message);
    ck_assert_int_eq(ri->type, PG_F32);
    CHECK(ri->width == 100 && ri->height == 80);
    CHECK(ri->has_nodata && ri->nodata == 0);
    o = run_checked(&t, srcs2);
    for (int64_t y = 0; y < 80; y++)
        for (int64_t x = 0; x < 100; x++) {
            double want = *src_at(&a, 0, x, y);
            /* Nearest: C's cell containing this cell's centre. */
            double cx = x + 0.5 - 10.25, cy = y + 0.5 - 20.25;
            if (cx >= 0 && cy >= 0 && cx < 50 && cy < 40) {
                double v = *src_at(&c, 0, (int64_t)cx, (int64_t)cy);
                if (!isnan(v)) want = v;
            }
            CHECK_MSG(o[y * 100 + x] == want, "cell %lld,%lld: %g, want %g", (long long)x,
                      (long long)y, o[y * 100 + x], want);
        }
    free(o);
    tn_free(&t);

    /* Errors: another CRS, another band count, a rotated grid. */
    src_r d, e, f;
    src_init(&d, 10, 10, 1, PG_U8, bin_gt, "EPSG:32634");
    src_init(&e, 10, 10, 2, PG_U8, bin_gt, "EPSG:32633");
    const double rot[6] = {1024, 8, 1, 4096, 1, -8};
    src_init(&f, 10, 10, 1, PG_U8, rot, "EPSG:32633");
    src_r *bd[] = {&a, &d}, *be[] = {&a, &e}, *bf[] = {&a, &f};
    expect_plan_error("transform.mosaic", bd, 2, json_object(), PG_EGRID, "another CRS");
    expect_plan_error("transform.mosaic", be, 2, json_object(), PG_EGRID, "2 bands");
    expect_plan_error("transform.mosaic", bf, 2, json_object(), PG_EGRID, "north-up");
    expect_plan_error("transform.mosaic", srcs, 2, json_pack("{s:s}", "method", "x"), PG_EPARAM,
                      "param 'method'");
    src_free(&a);
    src_free(&b);
    src_free(&c);
    src_free(&d);
    src_free(&e);
    src_free(&f);
}
END_TEST

/* ---- docs ---- */

START_TEST(test_op_docs)
{
    int count = 0;
    for (const pg_op_def *d = pg_ops_transform; d->name != NULL; d++, count++) {
        CHECK_MSG(d->doc != NULL && strlen(d->doc) > 80, "%s: doc", d->name);
        ck_assert_str_eq(d->family, "transform");
        CHECK(strncmp(d->name, "transform.", 10) == 0);
        CHECK_MSG(strstr(d->doc, "cell type") != NULL || strstr(d->doc, "Output") != NULL,
                  "%s: doc must state the output type", d->name);
        CHECK_MSG(strstr(d->doc, "odata") != NULL, "%s: doc must state nodata", d->name);
        json_error_t je;
        json_t *ex = json_loads(d->example, 0, &je);
        CHECK_MSG(ex != NULL, "%s: example is not JSON: %s", d->name, je.text);
        ck_assert_str_eq(json_string_value(json_object_get(ex, "op")), d->name);
        json_decref(ex);
        ck_assert_ptr_nonnull(d->params);
        for (const pg_param_def *p = d->params; p->name != NULL; p++) {
            CHECK_MSG(p->doc != NULL && p->doc[0], "%s.%s: doc", d->name, p->name);
            if (p->default_json != NULL) {
                json_t *dv = json_loads(p->default_json, JSON_DECODE_ANY, &je);
                CHECK_MSG(dv != NULL, "%s.%s: default", d->name, p->name);
                json_decref(dv);
            }
        }
        CHECK(d->plan != NULL && d->compute != NULL && d->result == PG_RESULT_RASTER);
    }
    ck_assert_int_eq(count, 6);
}
END_TEST

/* ---- speed: printed, not asserted ---- */

/* This thread's CPU time in ns (the machine is shared: wall time would
 * count other processes). */
static uint64_t cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Best of 5 batches, CPU ms per compute() of a 256 x 256 output tile in the
 * middle of the output (need() and tile building not counted). */
static double time_tile(tnode *t, src_r **srcs, int reps)
{
    const pg_raster_info *ri = &t->n.info;
    pg_window w = {ri->width / 2 - 128, ri->height / 2 - 128, 256, 256};
    pg_tile *in[8] = {0};
    for (int i = 0; i < t->n.nargs; i++) {
        pg_window sw = w;
        if (t->n.op->need != NULL) t->n.op->need(&t->n, i, &w, &sw);
        in[i] = src_tile(srcs[i], sw);
    }
    pg_tile *o = pg_tile_new(ri->type, ri->bands, w);
    double best = INFINITY;
    for (int k = 0; k < 5; k++) {
        uint64_t t0 = cpu_ns();
        for (int r = 0; r < reps; r++)
            ck_assert_int_eq(t->n.op->compute(&t->n, o, in, &t->err), 0);
        best = fmin(best, (double)(cpu_ns() - t0) / 1e6 / reps);
    }
    uint64_t t0 = cpu_ns();
    pg_window sw;
    for (int r = 0; r < 20; r++)
        if (t->n.op->need != NULL) t->n.op->need(&t->n, 0, &w, &sw);
    double need_us = (double)(cpu_ns() - t0) / 1e3 / 20;
    char *p = json_dumps(t->n.params, JSON_COMPACT | JSON_SORT_KEYS);
    printf("  %-20s %-40s %8.3f ms per 256x256 tile (need(): %.0f us)\n", t->n.op->name, p, best,
           need_us);
    free(p);
    pg_tile_unref(&o);
    for (int i = 0; i < t->n.nargs; i++)
        pg_tile_unref(&in[i]);
    return best;
}

START_TEST(test_speed)
{
    src_r s, s2;
    src_init(&s, 1024, 1024, 1, PG_F32, utm_gt, "EPSG:32633");
    src_init(&s2, 1024, 1024, 1, PG_F32, utm_gt, "EPSG:32633");
    src_nodata(&s, -9999);
    src_fill_smooth(&s);
    src_fill_smooth(&s2);
    src_r *srcs[] = {&s, &s2};
    struct {
        const char *op;
        int nargs;
        const char *params;
        int reps;
    } cases[] = {
        {"transform.reproject", 1, "{\"crs\": \"EPSG:4326\", \"method\": \"bilinear\"}", 2},
        {"transform.reproject", 1,
         "{\"crs\": \"EPSG:4326\", \"method\": \"bilinear\", \"error_threshold\": 0.125}", 4},
        {"transform.reproject", 1, "{\"crs\": \"EPSG:4326\", \"method\": \"nearest\"}", 2},
        {"transform.resample", 1, "{\"width\": 512, \"method\": \"average\"}", 4},
        {"transform.resample", 1, "{\"width\": 2048, \"method\": \"bilinear\"}", 4},
        {"transform.crop", 1, "{\"window\": [100, 100, 800, 800]}", 200},
        {"transform.stack", 2, "{}", 100},
        {"transform.mosaic", 2, "{}", 100},
    };
    printf("transform speed (CPU time, best of 5):\n");
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        tnode t;
        tn_init(&t, cases[k].op, srcs, cases[k].nargs, json_loads(cases[k].params, 0, NULL));
        CHECK_MSG(tn_plan(&t) == 0, "%s", t.err.message);
        time_tile(&t, srcs, cases[k].reps);
        tn_free(&t);
    }
    /* A float source without a nodata value (NaN-free): GDAL's mask-free
     * kernels. */
    printf("  (float source without nodata, NaN-free:)\n");
    src_r *srcs2[] = {&s2};
    static const char *const nonan[] = {
        "{\"crs\": \"EPSG:4326\", \"method\": \"bilinear\"}",
        "{\"crs\": \"EPSG:4326\", \"method\": \"bilinear\", \"error_threshold\": 0.125}",
        "{\"width\": 2048, \"method\": \"bilinear\"}"};
    for (size_t k = 0; k < 3; k++) {
        tnode t;
        tn_init(&t, k < 2 ? "transform.reproject" : "transform.resample", srcs2, 1,
                json_loads(nonan[k], 0, NULL));
        CHECK_MSG(tn_plan(&t) == 0, "%s", t.err.message);
        time_tile(&t, srcs2, 4);
        tn_free(&t);
    }
    src_free(&s);
    src_free(&s2);
}
END_TEST

int main(void)
{
    GDALAllRegister();
    pg_bufpool_init((size_t)1 << 30);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pg_transform_XXXXXX");
    if (mkdtemp(tmpdir) == NULL) return EXIT_FAILURE;

    Suite *su = suite_create("transform");
    TCase *tc = tcase_create("simple");
    tcase_add_test(tc, test_crop_window);
    tcase_add_test(tc, test_crop_extent);
    tcase_add_test(tc, test_crop_errors);
    tcase_add_test(tc, test_bands);
    tcase_add_test(tc, test_stack_types);
    tcase_add_test(tc, test_stack_nodata);
    tcase_add_test(tc, test_op_docs);
    suite_add_tcase(su, tc);
    TCase *tw = tcase_create("warp");
    tcase_set_timeout(tw, 300);
    tcase_add_test(tw, test_resample_nearest);
    tcase_add_test(tw, test_resample_average);
    tcase_add_test(tw, test_resample_vs_gdalwarp);
    tcase_add_test(tw, test_resample_errors);
    tcase_add_test(tw, test_reproject_vs_gdalwarp);
    tcase_add_test(tw, test_reproject_types);
    tcase_add_test(tw, test_reproject_approx);
    tcase_add_test(tw, test_reproject_nan_source);
    tcase_add_test(tw, test_reproject_errors);
    tcase_add_test(tw, test_reproject_window_cap);
    tcase_add_test(tw, test_mosaic);
    tcase_add_test(tw, test_speed);
    suite_add_tcase(su, tw);
    SRunner *sr = srunner_create(su);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpdir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", tmpdir);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
