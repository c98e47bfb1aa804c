/* Integration suite of the zonal and global families: real pergolad
 * processes (tests/harness.c) driven through the client library.
 *
 * Inputs are made by pergola-mkraster (and a GeoJSON and a zones GeoTIFF
 * written here), read back with GDAL, and every expected value is
 * recomputed here, naively, in double:
 *  - per-zone statistics: count, min, max exactly; sum, mean and stddev
 *    within 1e-9 relative (the daemon sums per tile, the reference in
 *    cell order);
 *  - histograms and exact quantiles (u16): equal; equal-interval breaks:
 *    equal to min + (max - min) * i / classes;
 *  - zonal.polygons: each zone's cells from /usr/bin/gdal_rasterize run on
 *    the same GeoJSON into a GeoTIFF of the values' grid;
 *  - global.rescale: every cell equal to the documented formula with the
 *    reference min and max;
 *  - tiling: 16 x 16 tiles against one tile: counts, histograms and exact
 *    quantiles equal, statistics within 1e-12; 1 worker against 2: the
 *    values json_equal (bit-identical).
 * It also measures zonal means over 100 zones of an 8192 x 8192 f32
 * raster against numpy's bincount (printed, not asserted).
 */
#include "harness.h"
#include "pergola/client.h"

#include <check.h>
#include <cpl_conv.h>
#include <cpl_string.h>
#include <errno.h>
#include <gdal.h>
#include <math.h>
#include <ogr_srs_api.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char g_base[128];

#define RUN_TIMEOUT_MS 120000
#define NOZONE INT64_MIN

/* Check's ck_assert reports every passing call to its parent process (a
 * system call): hot loops use this instead. */
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) ck_abort_msg(__VA_ARGS__);                                                    \
    } while (0)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- daemons ---- */

static void daemon_start(th_daemon *d, const char *const *extra)
{
    memset(d, 0, sizeof *d);
    snprintf(d->root, sizeof d->root, "%s/rXXXXXX", g_base);
    ck_assert_msg(mkdtemp(d->root) != NULL, "mkdtemp: %s", strerror(errno));
    ck_assert_msg(th_start(d, extra) == 0, "pergolad did not start (log %s)", d->log);
}

/* A second daemon on the same data root. */
static void daemon_start_on(th_daemon *d, const char *root, const char *const *extra)
{
    memset(d, 0, sizeof *d);
    snprintf(d->root, sizeof d->root, "%s", root);
    ck_assert_msg(th_start(d, extra) == 0, "pergolad did not start (log %s)", d->log);
}

static void daemon_stop(th_daemon *d)
{
    int st = th_stop(d);
    ck_assert_msg(st == 0, "pergolad exited with status %d (log %s)", st, d->log);
}

static void mk(const char *root, const char *name, const char *args)
{
    int rc = th_mkraster(root, name, args);
    ck_assert_msg(rc == 0, "pergola-mkraster %s %s: exit status %d", name, args, rc);
}

static pg_client *client(const th_daemon *d)
{
    pg_error err = {0};
    pg_client *c = pg_client_new(d->address, 10000, &err);
    ck_assert_msg(c != NULL, "cannot connect: %s", err.message);
    return c;
}

static pg_result *run_ok(pg_client *c, const char *graph)
{
    pg_run_opts o = {.timeout_ms = RUN_TIMEOUT_MS};
    pg_result *r = NULL;
    pg_error err = {0};
    int rc = pg_client_run(c, graph, &o, &r, &err);
    ck_assert_msg(rc == 0, "run failed: %s at node '%s': %s\n%s", pg_err_name(rc), err.node,
                  err.message, graph);
    return r;
}

/* Runs GRAPH and expects error CODE at NODE with NEEDLE in the message. */
static void run_err(pg_client *c, const char *graph, int code, const char *node, const char *needle)
{
    pg_run_opts o = {.timeout_ms = RUN_TIMEOUT_MS};
    pg_result *r = NULL;
    pg_error err = {0};
    int rc = pg_client_run(c, graph, &o, &r, &err);
    if (rc == 0) pg_result_destroy(&r);
    ck_assert_msg(rc == code, "expected %s, got %s (%s)", pg_err_name(code), pg_err_name(rc),
                  err.message);
    ck_assert_str_eq(err.node, node);
    ck_assert_msg(strstr(err.message, needle) != NULL, "'%s' does not say '%s'", err.message,
                  needle);
}

/* The value of a one-result run (a new reference). */
static json_t *run_value(pg_client *c, const char *graph)
{
    pg_result *r = run_ok(c, graph);
    json_t *v = json_incref(pg_result_item(r, 0));
    pg_result_destroy(&r);
    return v;
}

/* ---- rasters read with GDAL ---- */

typedef struct img {
    int w, h;
    int has_nodata;
    double nodata;
    double gt[6];
    char *wkt;
    double *v;
} img;

static void img_read(img *im, const char *root, const char *rel)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    GDALDatasetH ds = GDALOpen(p, GA_ReadOnly);
    ck_assert_msg(ds != NULL, "GDAL cannot open %s", p);
    memset(im, 0, sizeof *im);
    im->w = GDALGetRasterXSize(ds);
    im->h = GDALGetRasterYSize(ds);
    GDALRasterBandH b = GDALGetRasterBand(ds, 1);
    im->nodata = GDALGetRasterNoDataValue(b, &im->has_nodata);
    GDALGetGeoTransform(ds, im->gt);
    im->wkt = strdup(GDALGetProjectionRef(ds));
    im->v = malloc(sizeof(double) * (size_t)im->w * (size_t)im->h);
    ck_assert(GDALRasterIO(b, GF_Read, 0, 0, im->w, im->h, im->v, im->w, im->h, GDT_Float64, 0,
                           0) == CE_None);
    GDALClose(ds);
}

static void img_free(img *im)
{
    free(im->v);
    free(im->wkt);
    memset(im, 0, sizeof *im);
}

static size_t img_cells(const img *im)
{
    return (size_t)im->w * (size_t)im->h;
}

static bool valid(const img *im, double x)
{
    return !isnan(x) && !(im->has_nodata && x == im->nodata);
}

/* ---- reference statistics ---- */

typedef struct zref {
    int64_t zone, count;
    double sum, min, max, mean, sd;
} zref;

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Per zone of ZONE[i] (NOZONE: none), ascending: naive two passes. */
static int64_t ref_zones(const int64_t *zone, const img *v, zref **out)
{
    size_t n = img_cells(v);
    int64_t *zs = malloc(sizeof *zs * (n ? n : 1));
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (zone[i] != NOZONE) zs[m++] = zone[i];
    qsort(zs, m, sizeof *zs, cmp_i64);
    int64_t nz = 0;
    for (size_t i = 0; i < m; i++)
        if (i == 0 || zs[i] != zs[i - 1]) zs[nz++] = zs[i];
    zref *z = calloc((size_t)(nz ? nz : 1), sizeof *z);
    for (int64_t k = 0; k < nz; k++)
        z[k] = (zref){zs[k], 0, 0, INFINITY, -INFINITY, 0, 0};
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < n; i++) {
            if (zone[i] == NOZONE || !valid(v, v->v[i])) continue;
            int64_t *f = bsearch(&zone[i], zs, (size_t)nz, sizeof *zs, cmp_i64);
            zref *r = &z[f - zs];
            double x = v->v[i];
            if (pass == 0) {
                r->count++;
                r->sum += x;
                r->min = fmin(r->min, x);
                r->max = fmax(r->max, x);
            } else {
                r->sd += (x - r->mean) * (x - r->mean);
            }
        }
        for (int64_t k = 0; k < nz; k++) {
            if (z[k].count == 0) continue;
            if (pass == 0)
                z[k].mean = z[k].sum / (double)z[k].count;
            else
                z[k].sd = sqrt(z[k].sd / (double)z[k].count);
        }
    }
    free(zs);
    *out = z;
    return nz;
}

static double jnum(const json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    CHECK(json_is_number(v), "%s is not a number", k);
    return json_number_value(v);
}

static bool close_rel(double got, double want, double tol)
{
    return fabs(got - want) <= tol * fmax(fabs(want), 1.0);
}

static void check_zone(const json_t *o, const zref *r)
{
    CHECK(json_integer_value(json_object_get(o, "count")) == r->count,
          "zone %lld: count %lld, want %lld", (long long)r->zone,
          (long long)json_integer_value(json_object_get(o, "count")), (long long)r->count);
    if (r->count == 0) {
        CHECK(json_is_null(json_object_get(o, "mean")), "zone %lld: mean not null",
              (long long)r->zone);
        return;
    }
    CHECK(jnum(o, "min") == r->min && jnum(o, "max") == r->max, "zone %lld: min/max",
          (long long)r->zone);
    CHECK(close_rel(jnum(o, "sum"), r->sum, 1e-9), "zone %lld: sum %.17g want %.17g",
          (long long)r->zone, jnum(o, "sum"), r->sum);
    CHECK(close_rel(jnum(o, "mean"), r->mean, 1e-9), "zone %lld: mean", (long long)r->zone);
    CHECK(close_rel(jnum(o, "stddev"), r->sd, 1e-9), "zone %lld: stddev %.17g want %.17g",
          (long long)r->zone, jnum(o, "stddev"), r->sd);
}

/* zonal.stats' value against the reference over zones Z and values V. */
static void check_zonal_stats(const json_t *val, const img *z, const img *v)
{
    int64_t *zz = malloc(sizeof *zz * img_cells(z));
    for (size_t i = 0; i < img_cells(z); i++)
        zz[i] = valid(z, z->v[i]) ? (int64_t)z->v[i] : NOZONE;
    zref *ref;
    int64_t nz = ref_zones(zz, v, &ref);
    json_t *list = json_object_get(val, "zones");
    ck_assert_msg(json_array_size(list) == (size_t)nz, "%zu zones, want %lld",
                  json_array_size(list), (long long)nz);
    for (int64_t k = 0; k < nz; k++) {
        json_t *o = json_array_get(list, (size_t)k);
        CHECK(json_integer_value(json_object_get(o, "zone")) == ref[k].zone, "zone order");
        check_zone(o, &ref[k]);
    }
    free(ref);
    free(zz);
}

/* Two values of zone statistics: same zones and counts, numbers within TOL. */
static void zones_close(const json_t *a, const json_t *b, double tol)
{
    json_t *la = json_object_get(a, "zones"), *lb = json_object_get(b, "zones");
    ck_assert_int_eq(json_array_size(la), json_array_size(lb));
    static const char *const keys[] = {"sum", "min", "max", "mean", "stddev"};
    for (size_t i = 0; i < json_array_size(la); i++) {
        json_t *x = json_array_get(la, i), *y = json_array_get(lb, i);
        CHECK(json_equal(json_object_get(x, "zone"), json_object_get(y, "zone")), "zone");
        CHECK(json_equal(json_object_get(x, "count"), json_object_get(y, "count")), "count");
        for (size_t k = 0; k < 5; k++) {
            json_t *u = json_object_get(x, keys[k]), *w = json_object_get(y, keys[k]);
            if (json_is_null(u) || json_is_null(w)) {
                CHECK(json_is_null(u) && json_is_null(w), "null %s", keys[k]);
                continue;
            }
            CHECK(close_rel(json_number_value(u), json_number_value(w), tol), "%s: %.17g vs %.17g",
                  keys[k], json_number_value(u), json_number_value(w));
        }
    }
}

/* ---- zonal.stats, zonal.histogram ---- */

static const char *const TILE16[] = {"--tile-size", "16", "--workers", "2", NULL};
static const char *const TILE_BIG[] = {"--tile-size", "8192", "--workers", "2", NULL};
static const char *const ONE_WORKER[] = {"--tile-size", "16", "--workers", "1", NULL};

START_TEST(test_zonal_stats)
{
    th_daemon d;
    daemon_start(&d, TILE16);
    /* zones: gradient u8 ((x + 2y) mod 251), nodata 5 plus every 7th cell;
     * a checker u8 (0 and 100); values: a dem f32 with nodata every 13th.
     * Blocks of 16, so the daemon's tile size decides the tiling. */
    mk(d.root, "zg.tif",
       "--size 500x300 --type u8 --pattern gradient --nodata 5 --nodata-every 7 "
       "--block 16");
    mk(d.root, "zc.tif", "--size 500x300 --type u8 --pattern checker --block 16");
    mk(d.root, "v.tif",
       "--size 500x300 --type f32 --pattern dem --nodata -9999 --nodata-every 13 "
       "--block 16");
    mk(d.root, "vi.tif", "--size 500x300 --type i16 --pattern random --seed 3 --block 16");
    img zg, zc, v, vi;
    img_read(&zg, d.root, "zg.tif");
    img_read(&zc, d.root, "zc.tif");
    img_read(&v, d.root, "v.tif");
    img_read(&vi, d.root, "vi.tif");
    pg_client *c = client(&d);
    const char *g1 = "{\"nodes\": {\"z\": {\"op\": \"io.load\", \"path\": \"zg.tif\"}, \"v\": "
                     "{\"op\": \"io.load\", \"path\": \"v.tif\"}, \"s\": {\"op\": \"zonal.stats\", "
                     "\"args\": [{\"ref\": \"z\"}, {\"ref\": \"v\"}]}}, \"result\": \"s\"}";
    json_t *a = run_value(c, g1);
    check_zonal_stats(a, &zg, &v);
    ck_assert_int_eq(json_array_size(json_object_get(a, "zones")), 250); /* 251 minus nodata 5 */
    json_t *b = run_value(c, "{\"nodes\": {\"s\": {\"op\": \"zonal.stats\", \"args\": [{\"op\": "
                             "\"io.load\", \"path\": \"zc.tif\"}, {\"op\": \"io.load\", \"path\": "
                             "\"vi.tif\"}]}}, \"result\": \"s\"}");
    check_zonal_stats(b, &zc, &vi);
    ck_assert_int_eq(json_array_size(json_object_get(b, "zones")), 2);
    ck_assert(
        json_is_integer(json_object_get(json_array_get(json_object_get(b, "zones"), 0), "sum")));

    /* the same values on one worker: bit-identical; one big tile: close */
    th_daemon d1, dbig;
    daemon_start_on(&d1, d.root, ONE_WORKER);
    daemon_start_on(&dbig, d.root, TILE_BIG);
    pg_client *c1 = client(&d1), *cb = client(&dbig);
    json_t *a1 = run_value(c1, g1), *ab = run_value(cb, g1);
    ck_assert(json_equal(a, a1));
    zones_close(a, ab, 1e-12);
    check_zonal_stats(ab, &zg, &v);
    json_decref(a1);
    json_decref(ab);

    /* zonal.histogram: counts equal to the reference, and for any tiling */
    const char *gh =
        "{\"nodes\": {\"h\": {\"op\": \"zonal.histogram\", \"bins\": 40, \"range\": "
        "[200, 2000], \"args\": [{\"op\": \"io.load\", \"path\": \"zc.tif\"}, {\"op\": "
        "\"io.load\", \"path\": \"v.tif\"}]}}, \"result\": \"h\"}";
    json_t *h = run_value(c, gh), *hb = run_value(cb, gh);
    ck_assert(json_equal(h, hb));
    json_t *zl = json_object_get(h, "zones");
    ck_assert_int_eq(json_array_size(zl), 2);
    for (size_t k = 0; k < 2; k++) {
        json_t *o = json_array_get(zl, k);
        int64_t zone = json_integer_value(json_object_get(o, "zone"));
        ck_assert_int_eq(zone, k ? 100 : 0);
        int64_t cnt[40] = {0};
        for (size_t i = 0; i < img_cells(&v); i++) {
            double x = v.v[i];
            if ((int64_t)zc.v[i] != zone || !valid(&v, x) || x < 200 || x > 2000) continue;
            int bin = (int)((x - 200) / 45.0); /* the edges 200 + 45 i are exact */
            if (bin == 40 || (bin > 0 && x < 200 + 45.0 * bin)) bin--;
            cnt[bin]++;
        }
        json_t *bins = json_object_get(o, "bins");
        for (int i = 0; i < 40; i++)
            CHECK(json_integer_value(json_array_get(bins, (size_t)i)) == cnt[i],
                  "zone %lld bin %d: %lld want %lld", (long long)zone, i,
                  (long long)json_integer_value(json_array_get(bins, (size_t)i)),
                  (long long)cnt[i]);
    }
    json_decref(h);
    json_decref(hb);

    /* errors name their node */
    run_err(c,
            "{\"nodes\": {\"s\": {\"op\": \"zonal.stats\", \"args\": [{\"op\": \"io.load\", "
            "\"path\": \"v.tif\"}, {\"op\": \"io.load\", \"path\": \"v.tif\"}]}}, \"result\": "
            "\"s\"}",
            PG_ETYPE, "s", "integer");
    run_err(c,
            "{\"nodes\": {\"h\": {\"op\": \"zonal.histogram\", \"args\": [{\"op\": \"io.load\", "
            "\"path\": \"zc.tif\"}, {\"op\": \"io.load\", \"path\": \"v.tif\"}]}}, \"result\": "
            "\"h\"}",
            PG_EPARAM, "h", "'range'");

    json_decref(a);
    json_decref(b);
    pg_client_destroy(&c);
    pg_client_destroy(&c1);
    pg_client_destroy(&cb);
    daemon_stop(&d1);
    daemon_stop(&dbig);
    daemon_stop(&d);
    img_free(&zg);
    img_free(&zc);
    img_free(&v);
    img_free(&vi);
    th_cleanup(&d);
}
END_TEST

/* ---- zonal.polygons ---- */

/* Three polygons in EPSG:32633 over mkraster's default grid (origin
 * 500000, 5000000, cells of 10): "big" crosses many 16-cell tiles, "tri"
 * overlaps it, "hole" has a hole. Coordinates are off the grid. */
static const char *const GEOJSON =
    "{\"type\": \"FeatureCollection\", \"crs\": {\"type\": \"name\", \"properties\": {\"name\": "
    "\"urn:ogc:def:crs:EPSG::32633\"}}, \"features\": ["
    "{\"type\": \"Feature\", \"properties\": {\"name\": \"big\", \"k\": 1}, \"geometry\": "
    "{\"type\": \"Polygon\", \"coordinates\": [[[500123.4,4999871.3],[503345.6,4999702.1],"
    "[503011.7,4997456.2],[500456.7,4997234.5],[500123.4,4999871.3]]]}},"
    "{\"type\": \"Feature\", \"properties\": {\"name\": \"tri\", \"k\": 2}, \"geometry\": "
    "{\"type\": \"Polygon\", \"coordinates\": [[[501234.5,4999950.5],[502999.1,4998001.3],"
    "[500801.2,4997600.7],[501234.5,4999950.5]]]}},"
    "{\"type\": \"Feature\", \"properties\": {\"name\": \"hole\", \"k\": 3}, \"geometry\": "
    "{\"type\": \"Polygon\", \"coordinates\": [[[503400.3,4999900.9],[504950.2,4999900.9],"
    "[504950.2,4996300.1],[503400.3,4996300.1],[503400.3,4999900.9]],[[503700.7,4999500.3],"
    "[504650.9,4999500.3],[504650.9,4996700.6],[503700.7,4996700.6],[503700.7,4999500.3]]]}}"
    "]}\n";

/* The cells of the features WHERE selects: gdal_rasterize into a zeroed
 * GeoTIFF of V's grid. */
static unsigned char *ref_mask(const char *root, const img *v, const char *where)
{
    char tpl[600], cmd[2048];
    snprintf(tpl, sizeof tpl, "%s/mask.tif", root);
    GDALDatasetH ds = GDALCreate(GDALGetDriverByName("GTiff"), tpl, v->w, v->h, 1, GDT_Byte, NULL);
    ck_assert_ptr_nonnull(ds);
    double gt[6];
    memcpy(gt, v->gt, sizeof gt);
    GDALSetGeoTransform(ds, gt);
    GDALSetProjection(ds, v->wkt);
    GDALClose(ds);
    snprintf(cmd, sizeof cmd,
             "/usr/bin/gdal_rasterize -q -burn 1 -where \"%s\" '%s/zones.geojson' '%s'", where,
             root, tpl);
    ck_assert_msg(system(cmd) == 0, "%s failed", cmd);
    ds = GDALOpen(tpl, GA_ReadOnly);
    unsigned char *m = malloc(img_cells(v));
    ck_assert(GDALRasterIO(GDALGetRasterBand(ds, 1), GF_Read, 0, 0, v->w, v->h, m, v->w, v->h,
                           GDT_Byte, 0, 0) == CE_None);
    GDALClose(ds);
    unlink(tpl);
    return m;
}

START_TEST(test_zonal_polygons)
{
    th_daemon d;
    daemon_start(&d, TILE16);
    mk(d.root, "v.tif",
       "--size 600x400 --type f32 --pattern dem --nodata -9999 --nodata-every 11 "
       "--block 16");
    char p[600];
    snprintf(p, sizeof p, "%s/zones.geojson", d.root);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs(GEOJSON, f);
    fclose(f);
    img v;
    img_read(&v, d.root, "v.tif");
    pg_client *c = client(&d);
    const char *g =
        "{\"nodes\": {\"v\": {\"op\": \"io.load\", \"path\": \"v.tif\"}, \"p\": {\"op\": "
        "\"zonal.polygons\", \"path\": \"zones.geojson\", \"field\": \"name\", \"args\": "
        "[{\"ref\": \"v\"}]}}, \"result\": \"p\"}";
    json_t *val = run_value(c, g);
    json_t *list = json_object_get(val, "zones");
    static const char *const names[] = {"big", "hole", "tri"}; /* ascending */
    ck_assert_int_eq(json_array_size(list), 3);
    for (size_t k = 0; k < 3; k++) {
        json_t *o = json_array_get(list, k);
        ck_assert_str_eq(json_string_value(json_object_get(o, "zone")), names[k]);
        char where[64];
        snprintf(where, sizeof where, "name = '%s'", names[k]);
        unsigned char *m = ref_mask(d.root, &v, where);
        int64_t *zz = malloc(sizeof *zz * img_cells(&v));
        for (size_t i = 0; i < img_cells(&v); i++)
            zz[i] = m[i] ? 1 : NOZONE;
        zref *ref;
        ck_assert_int_eq(ref_zones(zz, &v, &ref), 1);
        ck_assert(ref[0].count > 1000); /* really covers cells */
        check_zone(o, &ref[0]);
        free(ref);
        free(zz);
        free(m);
    }
    /* by FID: the same statistics, zones 0, 1, 2 in file order */
    json_t *byfid = run_value(c, "{\"nodes\": {\"p\": {\"op\": \"zonal.polygons\", \"path\": "
                                 "\"zones.geojson\", \"args\": [{\"op\": \"io.load\", \"path\": "
                                 "\"v.tif\"}]}}, \"result\": \"p\"}");
    json_t *lf = json_object_get(byfid, "zones");
    ck_assert_int_eq(json_array_size(lf), 3);
    static const size_t by_name[3] = {0, 2, 1}; /* fid 0 big, 1 tri, 2 hole */
    for (size_t k = 0; k < 3; k++) {
        json_t *o = json_array_get(lf, k), *q = json_array_get(list, by_name[k]);
        ck_assert_int_eq(json_integer_value(json_object_get(o, "zone")), (json_int_t)k);
        ck_assert(json_equal(json_object_get(o, "count"), json_object_get(q, "count")));
        ck_assert(json_equal(json_object_get(o, "sum"), json_object_get(q, "sum")));
    }
    /* one big tile: the same counts */
    th_daemon db;
    daemon_start_on(&db, d.root, TILE_BIG);
    pg_client *cb = client(&db);
    json_t *vb = run_value(cb, g);
    zones_close(val, vb, 1e-12);
    json_decref(vb);
    pg_client_destroy(&cb);
    daemon_stop(&db);
    /* errors */
    run_err(c,
            "{\"nodes\": {\"p\": {\"op\": \"zonal.polygons\", \"path\": \"../zones.geojson\", "
            "\"args\": [{\"op\": \"io.load\", \"path\": \"v.tif\"}]}}, \"result\": \"p\"}",
            PG_EPATH, "p", "zones.geojson");
    run_err(c,
            "{\"nodes\": {\"p\": {\"op\": \"zonal.polygons\", \"path\": \"v.tif\", \"args\": "
            "[{\"op\": \"io.load\", \"path\": \"v.tif\"}]}}, \"result\": \"p\"}",
            PG_EFORMAT, "p", "v.tif");
    run_err(c,
            "{\"nodes\": {\"p\": {\"op\": \"zonal.polygons\", \"path\": \"zones.geojson\", "
            "\"field\": \"nope\", \"args\": [{\"op\": \"io.load\", \"path\": \"v.tif\"}]}}, "
            "\"result\": \"p\"}",
            PG_EPARAM, "p", "'field'");
    json_decref(val);
    json_decref(byfid);
    pg_client_destroy(&c);
    daemon_stop(&d);
    img_free(&v);
    th_cleanup(&d);
}
END_TEST

/* ---- global ops, value args ---- */

static void ref_minmax(const img *v, double *mn, double *mx)
{
    *mn = INFINITY;
    *mx = -INFINITY;
    for (size_t i = 0; i < img_cells(v); i++)
        if (valid(v, v->v[i])) *mn = fmin(*mn, v->v[i]), *mx = fmax(*mx, v->v[i]);
}

START_TEST(test_rescale_value_arg)
{
    th_daemon d;
    daemon_start(&d, TILE16);
    mk(d.root, "v.tif",
       "--size 400x300 --type f32 --pattern dem --nodata -9999 --nodata-every 9 "
       "--block 16");
    img v;
    img_read(&v, d.root, "v.tif");
    double mn, mx;
    ref_minmax(&v, &mn, &mx);
    pg_client *c = client(&d);
    /* "st" is both a result and the value arg of "r": the job sweeps it
     * first, binds it, then computes "r" */
    pg_result *r = run_ok(
        c, "{\"nodes\": {\"v\": {\"op\": \"io.load\", \"path\": \"v.tif\"}, \"st\": {\"op\": "
           "\"global.stats\", \"args\": [{\"ref\": \"v\"}]}, \"r\": {\"op\": \"global.rescale\", "
           "\"to\": [0, 255], \"type\": \"u8\", \"args\": [{\"ref\": \"v\"}, {\"ref\": \"st\"}]}}, "
           "\"result\": [\"st\", \"r\"]}");
    ck_assert_int_eq(pg_result_count(r), 2);
    json_t *st = pg_result_item(r, 0);
    ck_assert(jnum(st, "min") == mn && jnum(st, "max") == mx);
    const pg_raster *ra = pg_result_raster(r, 1);
    ck_assert_ptr_nonnull(ra);
    ck_assert_str_eq(ra->type, "u8");
    ck_assert(ra->has_nodata && ra->nodata == 255);
    ck_assert_int_eq(ra->length, img_cells(&v));
    const uint8_t *cells = ra->data;
    const double s = 255.0 / (mx - mn);
    int64_t n0 = 0, n255 = 0;
    for (size_t i = 0; i < img_cells(&v); i++) {
        if (!valid(&v, v.v[i])) {
            CHECK(cells[i] == 255, "cell %zu: %u, want nodata 255", i, cells[i]);
            continue;
        }
        double y = fmin(fmax(0 + (v.v[i] - mn) * s, 0), 255);
        CHECK(cells[i] == (uint8_t)round(y), "cell %zu: %u want %g", i, cells[i], round(y));
        n0 += cells[i] == 0;
        n255 += cells[i] == 255;
    }
    ck_assert(n0 > 0 && n255 > 0); /* the min maps to 0, the max to 255 */
    pg_result_destroy(&r);

    /* a 2%-98% stretch: global.quantiles as the value arg, saved to a file */
    json_t *q = run_value(c, "{\"nodes\": {\"q\": {\"op\": \"global.quantiles\", \"probs\": [0.02, "
                             "0.98], \"args\": [{\"op\": \"io.load\", \"path\": \"v.tif\"}]}}, "
                             "\"result\": \"q\"}");
    double q0 = json_number_value(json_array_get(q, 0)),
           q1 = json_number_value(json_array_get(q, 1));
    ck_assert(q0 > mn && q1 < mx && q0 < q1);
    json_decref(q);
    r = run_ok(c, "{\"nodes\": {\"v\": {\"op\": \"io.load\", \"path\": \"v.tif\"}, \"q\": {\"op\": "
                  "\"global.quantiles\", \"probs\": [0.02, 0.98], \"args\": [{\"ref\": \"v\"}]}, "
                  "\"r\": {\"op\": \"global.rescale\", \"args\": [{\"ref\": \"v\"}, {\"ref\": "
                  "\"q\"}]}, \"out\": {\"op\": \"io.save\", \"path\": \"out/stretch.tif\", "
                  "\"args\": [{\"ref\": \"r\"}]}}, \"result\": \"out\"}");
    pg_result_destroy(&r);
    img o;
    img_read(&o, d.root, "out/stretch.tif");
    ck_assert(o.has_nodata && o.nodata == -9999); /* kept: outside [0, 1] */
    const double s2 = 1.0 / (q1 - q0);
    for (size_t i = 0; i < img_cells(&v); i++) {
        if (!valid(&v, v.v[i])) {
            CHECK(o.v[i] == -9999, "cell %zu not nodata", i);
            continue;
        }
        double y = (double)(float)fmin(fmax((v.v[i] - q0) * s2, 0), 1);
        CHECK(o.v[i] == y, "cell %zu: %.9g want %.9g", i, o.v[i], y);
    }
    img_free(&o);
    /* without "from" and without a value: bad_param naming the node */
    run_err(c,
            "{\"nodes\": {\"r\": {\"op\": \"global.rescale\", \"args\": [{\"op\": \"io.load\", "
            "\"path\": \"v.tif\"}]}}, \"result\": \"r\"}",
            PG_EPARAM, "r", "'from'");
    pg_client_destroy(&c);
    daemon_stop(&d);
    img_free(&v);
    th_cleanup(&d);
}
END_TEST

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

START_TEST(test_global_values)
{
    th_daemon d;
    daemon_start(&d, TILE16);
    mk(d.root, "u.tif",
       "--size 300x200 --type u16 --pattern random --seed 9 --nodata 7 "
       "--nodata-every 5 --block 16");
    img u;
    img_read(&u, d.root, "u.tif");
    double mn, mx;
    ref_minmax(&u, &mn, &mx);
    double *s = malloc(sizeof *s * img_cells(&u));
    int64_t n = 0;
    for (size_t i = 0; i < img_cells(&u); i++)
        if (valid(&u, u.v[i])) s[n++] = u.v[i];
    qsort(s, (size_t)n, sizeof *s, cmp_d);
    pg_client *c = client(&d);
    /* histogram with a stats value arg, quantiles (exact for u16), breaks,
     * in one graph; the stats node is shared by two consumers */
    const char *g = "{\"nodes\": {\"u\": {\"op\": \"io.load\", \"path\": \"u.tif\"}, \"st\": "
                    "{\"op\": \"global.stats\", \"args\": [{\"ref\": \"u\"}]}, \"h\": {\"op\": "
                    "\"global.histogram\", \"bins\": 50, \"args\": [{\"ref\": \"u\"}, {\"ref\": "
                    "\"st\"}]}, \"q\": {\"op\": \"global.quantiles\", \"probs\": [0, 0.1, 0.5, "
                    "0.9, 1], \"args\": [{\"ref\": \"u\"}]}, \"be\": {\"op\": \"global.breaks\", "
                    "\"method\": \"equal_interval\", \"classes\": 4, \"args\": [{\"ref\": "
                    "\"u\"}]}, \"bq\": {\"op\": \"global.breaks\", \"classes\": 4, \"args\": "
                    "[{\"ref\": \"u\"}]}, \"zh\": {\"op\": \"zonal.histogram\", \"bins\": 4, "
                    "\"args\": [{\"op\": \"raster.constant\", \"value\": 1, \"type\": \"u8\", "
                    "\"args\": [{\"ref\": \"u\"}]}, {\"ref\": \"u\"}, {\"ref\": \"st\"}]}}, "
                    "\"result\": [\"h\", \"q\", \"be\", \"bq\", \"zh\"]}";
    pg_result *r = run_ok(c, g);
    json_t *h = pg_result_item(r, 0), *q = pg_result_item(r, 1), *be = pg_result_item(r, 2),
           *bq = pg_result_item(r, 3), *zh = pg_result_item(r, 4);
    /* histogram over [min, max]: every valid cell, counts by the edges */
    json_t *edges = json_object_get(h, "edges"), *bins = json_object_get(h, "bins");
    ck_assert_int_eq(json_array_size(edges), 51);
    ck_assert(json_number_value(json_array_get(edges, 0)) == mn);
    ck_assert(json_number_value(json_array_get(edges, 50)) == mx);
    int64_t cnt[50] = {0};
    for (int64_t i = 0; i < n; i++) {
        int b = 49;
        while (b > 0 && s[i] < json_number_value(json_array_get(edges, (size_t)b)))
            b--;
        cnt[b]++;
    }
    for (int b = 0; b < 50; b++)
        CHECK(json_integer_value(json_array_get(bins, (size_t)b)) == cnt[b], "bin %d", b);
    /* zonal.histogram with one zone and the same stats: the same counts
     * per edge quarter */
    json_t *z0 = json_array_get(json_object_get(zh, "zones"), 0);
    int64_t tot = 0;
    for (size_t b = 0; b < 4; b++)
        tot += json_integer_value(json_array_get(json_object_get(z0, "bins"), b));
    ck_assert_int_eq(tot, n);
    /* quantiles: exact */
    static const double probs[] = {0, 0.1, 0.5, 0.9, 1};
    for (size_t j = 0; j < 5; j++) {
        double hh = (double)(n - 1) * probs[j];
        int64_t lo = (int64_t)floor(hh);
        double want = lo + 1 < n && hh > lo ? s[lo] + (hh - lo) * (s[lo + 1] - s[lo]) : s[lo];
        ck_assert_msg(json_number_value(json_array_get(q, j)) == want, "p=%g: %.17g want %.17g",
                      probs[j], json_number_value(json_array_get(q, j)), want);
    }
    /* breaks: classes - 1 values */
    ck_assert_int_eq(json_array_size(be), 3);
    for (int i = 1; i < 4; i++)
        ck_assert(json_number_value(json_array_get(be, (size_t)i - 1)) ==
                  mn + (mx - mn) * (double)i / 4.0);
    ck_assert_int_eq(json_array_size(bq), 3);
    double hh = (double)(n - 1) * 0.5;
    int64_t lo = (int64_t)floor(hh);
    ck_assert(json_number_value(json_array_get(bq, 1)) ==
              (hh > lo ? s[lo] + (hh - lo) * (s[lo + 1] - s[lo]) : s[lo]));

    /* another tiling, another worker count: identical values */
    th_daemon db;
    daemon_start_on(&db, d.root, TILE_BIG);
    pg_client *cb = client(&db);
    pg_result *rb = run_ok(cb, g);
    ck_assert(json_equal(pg_result_value(r), pg_result_value(rb)));
    pg_result_destroy(&rb);
    pg_client_destroy(&cb);
    daemon_stop(&db);
    /* histogram without range or value: bad_param */
    run_err(c,
            "{\"nodes\": {\"h\": {\"op\": \"global.histogram\", \"args\": [{\"op\": \"io.load\", "
            "\"path\": \"u.tif\"}]}}, \"result\": \"h\"}",
            PG_EPARAM, "h", "'range'");
    pg_result_destroy(&r);
    pg_client_destroy(&c);
    daemon_stop(&d);
    free(s);
    img_free(&u);
    th_cleanup(&d);
}
END_TEST

/* ---- speed: zonal means of 8192 x 8192 f32 over 100 zones, vs numpy ---- */

/* 100 zones: 10 x 10 blocks of 820 cells (the last ones wider), u8. */
static void write_zones_8192(const char *path)
{
    char **opts = NULL;
    opts = CSLSetNameValue(opts, "TILED", "YES");
    opts = CSLSetNameValue(opts, "BLOCKXSIZE", "256");
    opts = CSLSetNameValue(opts, "BLOCKYSIZE", "256");
    GDALDatasetH ds = GDALCreate(GDALGetDriverByName("GTiff"), path, 8192, 8192, 1, GDT_Byte, opts);
    CSLDestroy(opts);
    ck_assert_ptr_nonnull(ds);
    double gt[6] = {500000, 10, 0, 5000000, 0, -10}; /* mkraster's grid */
    GDALSetGeoTransform(ds, gt);
    OGRSpatialReferenceH srs = OSRNewSpatialReference(NULL);
    ck_assert(OSRImportFromEPSG(srs, 32633) == OGRERR_NONE);
    char *wkt = NULL;
    OSRExportToWkt(srs, &wkt);
    GDALSetProjection(ds, wkt);
    CPLFree(wkt);
    OSRDestroySpatialReference(srs);
    uint8_t *row = malloc(8192 * 256);
    for (int y0 = 0; y0 < 8192; y0 += 256) {
        for (int y = 0; y < 256; y++)
            for (int x = 0; x < 8192; x++) {
                int zx = x / 820 > 9 ? 9 : x / 820, zy = (y0 + y) / 820 > 9 ? 9 : (y0 + y) / 820;
                row[(size_t)y * 8192 + (size_t)x] = (uint8_t)(zx + 10 * zy);
            }
        ck_assert(GDALRasterIO(GDALGetRasterBand(ds, 1), GF_Write, 0, y0, 8192, 256, row, 8192, 256,
                               GDT_Byte, 0, 0) == CE_None);
    }
    free(row);
    GDALClose(ds);
}

START_TEST(test_speed_vs_numpy)
{
    th_daemon d;
    daemon_start(&d, NULL);
    double t0 = now_s();
    mk(d.root, "v8k.tif", "--size 8192 --type f32 --pattern random --seed 1 --block 256");
    char zp[600];
    snprintf(zp, sizeof zp, "%s/z8k.tif", d.root);
    write_zones_8192(zp);
    fprintf(stderr, "speed: inputs written in %.1f s\n", now_s() - t0);
    pg_client *c = client(&d);
    const char *g = "{\"nodes\": {\"s\": {\"op\": \"zonal.stats\", \"args\": [{\"op\": "
                    "\"io.load\", \"path\": \"z8k.tif\"}, {\"op\": \"io.load\", \"path\": "
                    "\"v8k.tif\"}]}}, \"result\": \"s\"}";
    json_t *val = NULL;
    double best = INFINITY;
    for (int i = 0; i < 2; i++) { /* the first run also warms the page cache */
        t0 = now_s();
        json_decref(val);
        val = run_value(c, g);
        best = fmin(best, now_s() - t0);
    }
    ck_assert_int_eq(json_array_size(json_object_get(val, "zones")), 100);

    /* numpy: bincount of the same cells (read with GDAL's Python bindings) */
    char script[600], out[600], cmd[2000];
    snprintf(script, sizeof script, "%s/bincount.py", d.root);
    snprintf(out, sizeof out, "%s/numpy.json", d.root);
    FILE *f = fopen(script, "w");
    ck_assert_ptr_nonnull(f);
    fprintf(f, "import json, sys, time\n"
               "import numpy as np\n"
               "from osgeo import gdal\n"
               "t0 = time.perf_counter()\n"
               "z = gdal.Open(sys.argv[1]).ReadAsArray().ravel()\n"
               "v = gdal.Open(sys.argv[2]).ReadAsArray().ravel()\n"
               "t1 = time.perf_counter()\n"
               "def zmean(z, v):\n"
               "    return np.bincount(z, weights=v, minlength=100) / np.bincount(z, "
               "minlength=100)\n"
               "def best_of(f, runs):\n"
               "    best = 1e9\n"
               "    for _ in range(runs):\n"
               "        t = time.perf_counter()\n"
               "        r = f()\n"
               "        best = min(best, time.perf_counter() - t)\n"
               "    return best, r\n"
               "tb, mean = best_of(lambda: zmean(z, v), 1)\n"
               "zi, vd = z.astype(np.intp), v.astype(np.float64)\n"
               "tk, mean2 = best_of(lambda: zmean(zi, vd), 2)\n"
               "json.dump({'read': t1 - t0, 'bincount': tb, 'kernel': tk, 'mean': "
               "mean.tolist()}, open(sys.argv[3], 'w'))\n");
    fclose(f);
    snprintf(cmd, sizeof cmd, "/usr/bin/python3 '%s' '%s/z8k.tif' '%s/v8k.tif' '%s'", script,
             d.root, d.root, out);
    if (system(cmd) != 0) {
        fprintf(stderr, "speed: numpy (python3-numpy, python3-gdal) not available; skipped\n");
    } else {
        json_error_t je;
        json_t *np = json_load_file(out, 0, &je);
        ck_assert_ptr_nonnull(np);
        json_t *means = json_object_get(np, "mean");
        for (size_t k = 0; k < 100; k++) {
            double a = json_number_value(
                       json_object_get(json_array_get(json_object_get(val, "zones"), k), "mean")),
                   b = json_number_value(json_array_get(means, k));
            CHECK(close_rel(a, b, 1e-9), "zone %zu: mean %.17g, numpy %.17g", k, a, b);
        }
        fprintf(stderr,
                "speed: zonal mean, 100 zones, 8192x8192 f32: pergolad (2 GeoTIFFs read, %ld "
                "workers) %.3f s; numpy, one thread, arrays in memory: bincount (sum + count, "
                "from u8 zones and f32 values) %.3f s, from arrays converted beforehand to "
                "intp and f64 %.3f s; reading both files with GDAL %.3f s\n",
                sysconf(_SC_NPROCESSORS_ONLN), best, jnum(np, "bincount"), jnum(np, "kernel"),
                jnum(np, "read"));
        json_decref(np);
    }
    json_decref(val);
    pg_client_destroy(&c);
    daemon_stop(&d);
    th_cleanup(&d);
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    GDALAllRegister();
    snprintf(g_base, sizeof g_base, "/tmp/pg-itzonal-XXXXXX");
    if (mkdtemp(g_base) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    Suite *s = suite_create("it_zonal");
    TCase *tc = tcase_create("it_zonal");
    tcase_set_timeout(tc, 300);
    tcase_add_test(tc, test_zonal_stats);
    tcase_add_test(tc, test_zonal_polygons);
    tcase_add_test(tc, test_rescale_value_arg);
    tcase_add_test(tc, test_global_values);
    tcase_add_test(tc, test_speed_vs_numpy);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    char cmd[300];
    if (failed == 0) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_base);
        if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", g_base);
    } else {
        fprintf(stderr, "test data and daemon logs kept in %s\n", g_base);
    }
    return failed == 0 ? 0 : 1;
}
