/* Integration suite for the transform ops, through real daemons
 * (tests/harness.c) and the client library, against GDAL's own tools run
 * here on the same files.
 *
 * Tolerances (all comparisons are cell by cell, every cell):
 *  - reproject bilinear EPSG:32633 -> EPSG:4326 of a 2048 x 2048 mkraster
 *    dem, with --tile-size 64 and 4096: both outputs must be byte-identical
 *    to each other (no seams), and equal to gdalwarp -et 0 -r bilinear on
 *    the same grid (-tr/-te from the op's header) exactly, including edge
 *    cells and nodata. Exact because the op hands GDAL's kernel bitwise the
 *    same source coordinates and the same kernel scale gdalwarp computes for
 *    one chunk (gdalwarp is held to one chunk with SRC_FILL_RATIO_HEURISTICS
 *    =NO; its default, approximate transformer (-et 0.125) is reported
 *    against, not asserted: its positions are off by up to 1/8 cell).
 *  - resample average 2x down: exact against gdalwarp -r average.
 *  - mosaic of two overlapping rasters (aligned, and a second one a
 *    fraction of a cell off, nearest): exact against gdalwarp A B (which
 *    also draws later sources over earlier ones where valid).
 *  - crop by an extent in EPSG:4326: the window computed here with OGR
 *    (the extent's edges densified, snapped outward), cells exact against
 *    the file read with GDAL.
 * Timings (whole 2048 x 2048 reproject vs gdalwarp -multi -wo
 * NUM_THREADS=ALL_CPUS, in the same run) are printed, not asserted.
 */
#include "harness.h"
#include "pergola/client.h"

#include <check.h>
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
#define SHORT_MS 10000

/* Passing ck_asserts go through Check's pipe: per-cell checks use these. */
#define CHECK(c)                                                                                   \
    do {                                                                                           \
        if (!(c)) ck_abort_msg("failed: %s", #c);                                                  \
    } while (0)
#define CHECK_MSG(c, ...)                                                                          \
    do {                                                                                           \
        if (!(c)) ck_abort_msg(__VA_ARGS__);                                                       \
    } while (0)

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static bool same(double a, double b)
{
    return a == b || (isnan(a) && isnan(b));
}

/* ---- daemons ---- */

static void dump_log(const th_daemon *d)
{
    FILE *f = fopen(d->log, "r");
    if (f == NULL) return;
    char buf[4096];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    fprintf(stderr, "---- %s ----\n%s\n---- end ----\n", d->log, buf);
}

/* Starts a daemon on ROOT's data root with --tile-size TILE (NULL: the
 * default). */
static void daemon_start(th_daemon *d, const char *root, const char *tile)
{
    memset(d, 0, sizeof *d);
    snprintf(d->root, sizeof d->root, "%s", root);
    const char *extra[] = {"--tile-size", tile, NULL};
    int rc = th_start(d, tile != NULL ? extra : NULL);
    if (rc != 0) dump_log(d);
    CHECK_MSG(rc == 0, "pergolad did not start (log %s)", d->log);
}

static void daemon_stop(th_daemon *d)
{
    int st = th_stop(d);
    if (st != 0) dump_log(d);
    CHECK_MSG(st == 0, "pergolad exited with status %d (log %s)", st, d->log);
}

static void mk(const char *root, const char *name, const char *args)
{
    int rc = th_mkraster(root, name, args);
    CHECK_MSG(rc == 0, "pergola-mkraster %s %s: exit status %d", name, args, rc);
}

/* Runs GRAPH on D; the result's raster (cells as doubles in *CELLS, the
 * header in *HDR). Returns the run's wall time in ms. */
typedef struct hdr {
    int width, height, bands;
    char type[8];
    int has_nodata;
    double nodata;
    double gt[6];
} hdr;

static double cell_at(const void *p, const char *type, size_t i)
{
    if (!strcmp(type, "u8")) return ((const uint8_t *)p)[i];
    if (!strcmp(type, "i8")) return ((const int8_t *)p)[i];
    if (!strcmp(type, "u16")) return ((const uint16_t *)p)[i];
    if (!strcmp(type, "i16")) return ((const int16_t *)p)[i];
    if (!strcmp(type, "u32")) return ((const uint32_t *)p)[i];
    if (!strcmp(type, "i32")) return ((const int32_t *)p)[i];
    if (!strcmp(type, "f32")) return ((const float *)p)[i];
    return ((const double *)p)[i];
}

static double run_raster(const th_daemon *d, const char *graph, double **cells, hdr *h, void **raw,
                         size_t *rawlen)
{
    pg_error err = {0};
    pg_client *c = pg_client_new(d->address, SHORT_MS, &err);
    CHECK_MSG(c != NULL, "connect: %s", err.message);
    pg_run_opts o = {.timeout_ms = RUN_TIMEOUT_MS};
    pg_result *r = NULL;
    double t0 = now_ms();
    int rc = pg_client_run(c, graph, &o, &r, &err);
    double ms = now_ms() - t0;
    CHECK_MSG(rc == 0, "run failed: %s at node '%s': %s", pg_err_name(rc), err.node, err.message);
    const pg_raster *ra = pg_result_raster(r, 0);
    CHECK(ra != NULL);
    h->width = ra->width;
    h->height = ra->height;
    h->bands = ra->bands;
    snprintf(h->type, sizeof h->type, "%s", ra->type);
    h->has_nodata = ra->has_nodata;
    h->nodata = ra->nodata;
    memcpy(h->gt, ra->geotransform, sizeof h->gt);
    size_t n = (size_t)ra->width * (size_t)ra->height * (size_t)ra->bands;
    *cells = malloc(sizeof(double) * (n ? n : 1));
    CHECK(*cells != NULL);
    for (size_t i = 0; i < n; i++)
        (*cells)[i] = cell_at(ra->data, ra->type, i);
    if (raw != NULL) {
        *raw = malloc(ra->length);
        memcpy(*raw, ra->data, ra->length);
        *rawlen = ra->length;
    }
    pg_result_destroy(&r);
    pg_client_destroy(&c);
    return ms;
}

/* Runs GRAPH on D expecting error CODE at NODE with NEEDLE in the message. */
static void run_error(const th_daemon *d, const char *graph, int code, const char *node,
                      const char *needle)
{
    pg_error err = {0};
    pg_client *c = pg_client_new(d->address, SHORT_MS, &err);
    CHECK_MSG(c != NULL, "connect: %s", err.message);
    pg_run_opts o = {.timeout_ms = RUN_TIMEOUT_MS};
    pg_result *r = NULL;
    int rc = pg_client_run(c, graph, &o, &r, &err);
    CHECK_MSG(rc == code, "want %s, got %s: %s", pg_err_name(code), pg_err_name(rc), err.message);
    CHECK_MSG(strcmp(err.node, node) == 0, "error at node '%s', want '%s'", err.node, node);
    CHECK_MSG(strstr(err.message, needle) != NULL, "message '%s' lacks '%s'", err.message, needle);
    pg_result_destroy(&r);
    pg_client_destroy(&c);
}

/* ---- GDAL side ---- */

static double *read_tif(const char *path, int *w, int *h, double gt[6], int *has_nd, double *nd)
{
    GDALDatasetH ds = GDALOpen(path, GA_ReadOnly);
    CHECK_MSG(ds != NULL, "cannot open %s", path);
    *w = GDALGetRasterXSize(ds);
    *h = GDALGetRasterYSize(ds);
    if (gt != NULL) GDALGetGeoTransform(ds, gt);
    GDALRasterBandH b = GDALGetRasterBand(ds, 1);
    if (has_nd != NULL) *nd = GDALGetRasterNoDataValue(b, has_nd);
    double *d = malloc(sizeof(double) * (size_t)*w * (size_t)*h);
    CHECK(d != NULL);
    CHECK(GDALRasterIO(b, GF_Read, 0, 0, *w, *h, d, *w, *h, GDT_Float64, 0, 0) == CE_None);
    GDALClose(ds);
    return d;
}

/* Runs a GDAL tool (a shell command line); returns its wall time in ms. */
static double tool(const char *cmd)
{
    double t0 = now_ms();
    int rc = system(cmd);
    CHECK_MSG(rc == 0, "failed (%d): %s", rc, cmd);
    return now_ms() - t0;
}

/* -tr/-te giving gdalwarp exactly the grid of H. */
static void grid_args(const hdr *h, char *buf, size_t n)
{
    const double *g = h->gt;
    snprintf(buf, n, "-tr %.17g %.17g -te %.17g %.17g %.17g %.17g", g[1], -g[5], g[0],
             g[3] + g[5] * h->height, g[0] + g[1] * h->width, g[3]);
}

/* Cell-by-cell equality with gdalwarp's output at REF (nodata as NaN or
 * the value): every cell. */
static void assert_equal_to(const char *what, const hdr *h, const double *got, const char *ref)
{
    int rw, rh, has;
    double nd;
    double *r = read_tif(ref, &rw, &rh, NULL, &has, &nd);
    CHECK_MSG(rw == h->width && rh == h->height, "%s: gdalwarp made %dx%d, pergola %dx%d", what, rw,
              rh, h->width, h->height);
    size_t n = (size_t)rw * (size_t)rh, valid = 0;
    for (size_t i = 0; i < n; i++) {
        CHECK_MSG(same(got[i], r[i]), "%s: cell (%zu, %zu): pergola %.17g, gdalwarp %.17g", what,
                  i % (size_t)rw, i / (size_t)rw, got[i], r[i]);
        valid += !(h->has_nodata && same(got[i], h->nodata));
    }
    CHECK_MSG(valid > n / 3, "%s: only %zu valid cells", what, valid);
    free(r);
}

/* ---- reproject ---- */

START_TEST(test_reproject_dem)
{
    char root[256];
    snprintf(root, sizeof root, "%s/reproject", g_base);
    CHECK(mkdir(root, 0755) == 0);
    mk(root, "dem.tif", "--size 2048 --pattern dem --nodata -9999");
    const char *graph = "{\"nodes\": {\"d\": {\"op\": \"io.load\", \"path\": \"dem.tif\"}, "
                        "\"p\": {\"op\": \"transform.reproject\", \"args\": [{\"ref\": \"d\"}], "
                        "\"crs\": \"EPSG:4326\", \"method\": \"bilinear\"}}, \"result\": \"p\"}";
    const char *graph_et = "{\"nodes\": {\"d\": {\"op\": \"io.load\", \"path\": \"dem.tif\"}, "
                           "\"p\": {\"op\": \"transform.reproject\", \"args\": [{\"ref\": "
                           "\"d\"}], \"crs\": \"EPSG:4326\", \"method\": \"bilinear\", "
                           "\"error_threshold\": 0.125}}, \"result\": \"p\"}";
    th_daemon d64, d4096, ddef;
    double *a, *b, *a_et;
    hdr ha, hb, h_et;
    void *rawa, *rawb;
    size_t la, lb;

    daemon_start(&d64, root, "64");
    double ms64 = run_raster(&d64, graph, &a, &ha, &rawa, &la);
    run_raster(&d64, graph_et, &a_et, &h_et, NULL, NULL);
    daemon_stop(&d64);
    daemon_start(&d4096, root, "4096");
    double ms4096 = run_raster(&d4096, graph, &b, &hb, &rawb, &lb);
    daemon_stop(&d4096);

    /* Seams: the two tilings give the same bytes. */
    CHECK(ha.width == hb.width && ha.height == hb.height && !strcmp(ha.type, "f32"));
    CHECK(memcmp(ha.gt, hb.gt, sizeof ha.gt) == 0);
    CHECK(ha.has_nodata && ha.nodata == -9999);
    CHECK(ha.gt[0] > 14.99 && ha.gt[0] < 15.01 && ha.gt[3] > 45.1 && ha.gt[3] < 45.2);
    CHECK_MSG(la == lb && memcmp(rawa, rawb, la) == 0,
              "tile size 64 and 4096 give different cells");

    /* gdalwarp on the same file and grid, exact transformer, one chunk
     * (multi-threaded: the same cells, and its time is reported). */
    char grid[512], cmd[2048], ref[400], src[400];
    grid_args(&ha, grid, sizeof grid);
    snprintf(src, sizeof src, "%s/dem.tif", root);
    snprintf(ref, sizeof ref, "%s/gdalwarp_et0.tif", g_base);
    snprintf(cmd, sizeof cmd,
             "/usr/bin/gdalwarp -q -overwrite -multi -wo NUM_THREADS=ALL_CPUS -t_srs EPSG:4326 "
             "-r bilinear -et 0 -wo SRC_FILL_RATIO_HEURISTICS=NO %s %s %s",
             grid, src, ref);
    double gw0_ms = tool(cmd);
    assert_equal_to("bilinear, tile size 64", &ha, a, ref);
    assert_equal_to("bilinear, tile size 4096", &hb, b, ref);

    /* gdalwarp with its defaults (GDAL's suggested grid, the same as the
     * op's, and its approximate transformer): reported, not asserted. */
    snprintf(ref, sizeof ref, "%s/gdalwarp_default.tif", g_base);
    snprintf(cmd, sizeof cmd,
             "/usr/bin/gdalwarp -q -overwrite -multi -wo NUM_THREADS=ALL_CPUS -t_srs EPSG:4326 "
             "-r bilinear %s %s",
             src, ref);
    double gw_ms = tool(cmd);
    {
        int rw, rh, has;
        double nd, maxd = 0, gt[6];
        double *r = read_tif(ref, &rw, &rh, gt, &has, &nd);
        CHECK_MSG(rw == ha.width && rh == ha.height && memcmp(gt, ha.gt, sizeof gt) == 0,
                  "gdalwarp's suggested grid is not the op's");
        size_t differ = 0, cov = 0, n = (size_t)rw * (size_t)rh;
        for (size_t i = 0; i < n; i++) {
            bool na = a[i] == -9999, nb = r[i] == -9999;
            if (na != nb) {
                cov++;
                continue;
            }
            if (!na && a[i] != r[i]) differ++, maxd = fmax(maxd, fabs(a[i] - r[i]));
        }
        printf("reproject bilinear vs gdalwarp with its default -et 0.125: %zu of %zu cells "
               "differ, by at most %.4g m; %zu edge cells differ in coverage\n",
               differ, n, maxd, cov);
        free(r);
    }

    /* Timing: the whole reproject through a daemon with the default tile
     * size (256) and one worker per core. */
    daemon_start(&ddef, root, NULL);
    double *c;
    hdr hc;
    double ms = run_raster(&ddef, graph, &c, &hc, NULL, NULL);
    free(c);
    double ms_et = run_raster(&ddef, graph_et, &c, &hc, NULL, NULL);
    daemon_stop(&ddef);
    /* Approximate rows: no seams either (tile size 256 vs 64). */
    for (size_t i = 0; i < (size_t)hc.width * (size_t)hc.height; i++)
        CHECK_MSG(same(c[i], a_et[i]),
                  "error_threshold 0.125: tile sizes 256 and 64 differ at cell %zu", i);
    free(c);
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    printf("2048x2048 dem -> EPSG:4326 bilinear (%dx%d out), %ld cpus, wall times (one run "
           "each, same machine, same run):\n"
           "  pergola exact (tile 256)              %7.0f ms\n"
           "  pergola error_threshold 0.125         %7.0f ms\n"
           "  gdalwarp -multi ALL_CPUS -et 0        %7.0f ms\n"
           "  gdalwarp -multi ALL_CPUS (-et 0.125)  %7.0f ms\n"
           "  pergola exact, tile size 64: %.0f ms, tile size 4096 (one tile): %.0f ms\n",
           ha.width, ha.height, cpus, ms, ms_et, gw0_ms, gw_ms, ms64, ms4096);
    free(a);
    free(b);
    free(a_et);
    free(rawa);
    free(rawb);
}
END_TEST

/* ---- resample ---- */

START_TEST(test_resample_average)
{
    char root[256];
    snprintf(root, sizeof root, "%s/resample", g_base);
    CHECK(mkdir(root, 0755) == 0);
    mk(root, "dem.tif", "--size 2048 --pattern dem --nodata -9999 --nodata-every 97");
    const char *graph =
        "{\"nodes\": {\"d\": {\"op\": \"io.load\", \"path\": \"dem.tif\"}, "
        "\"r\": {\"op\": \"transform.resample\", \"args\": [{\"ref\": \"d\"}], "
        "\"width\": 1024, \"height\": 1024, \"method\": \"average\"}}, \"result\": \"r\"}";
    th_daemon d;
    double *a, *b;
    hdr ha, hb;
    daemon_start(&d, root, "48");
    run_raster(&d, graph, &a, &ha, NULL, NULL);
    daemon_stop(&d);
    daemon_start(&d, root, "4096");
    run_raster(&d, graph, &b, &hb, NULL, NULL);
    daemon_stop(&d);
    CHECK(ha.width == 1024 && ha.height == 1024 && ha.gt[1] == 20 && ha.gt[5] == -20);
    CHECK(ha.gt[0] == 500000 && ha.gt[3] == 5000000);
    for (size_t i = 0; i < 1024 * 1024; i++)
        CHECK_MSG(same(a[i], b[i]), "tile sizes 48 and 4096 differ at cell %zu", i);
    char cmd[1024], ref[300];
    snprintf(ref, sizeof ref, "%s/avg.tif", g_base);
    snprintf(cmd, sizeof cmd,
             "/usr/bin/gdalwarp -q -overwrite -r average -ts 1024 1024 -et 0 %s/dem.tif %s", root,
             ref);
    tool(cmd);
    assert_equal_to("resample average 2x down", &ha, a, ref);
    free(a);
    free(b);
}
END_TEST

/* ---- mosaic ---- */

START_TEST(test_mosaic)
{
    char root[256];
    snprintf(root, sizeof root, "%s/mosaic", g_base);
    CHECK(mkdir(root, 0755) == 0);
    /* A 600 x 500 at the origin; B 500 x 400 overlapping A's lower right
     * (300 cells right, 300 down) and reaching past it; C like B but 2.5 m
     * (a quarter cell) further east: not on A's grid. Different nodata
     * values, some nodata cells in each. */
    mk(root, "a.tif",
       "--size 600x500 --pattern random --seed 1 --nodata -1 --nodata-every 7 --origin "
       "500000,5000000");
    mk(root, "b.tif",
       "--size 500x400 --pattern gradient --nodata -2 --nodata-every 5 --origin 503000,4997000");
    mk(root, "c.tif",
       "--size 500x400 --pattern gradient --nodata -2 --nodata-every 5 --origin 503002.5,4997000");
    const char *fmt = "{\"nodes\": {\"m\": {\"op\": \"transform.mosaic\", \"args\": [{\"op\": "
                      "\"io.load\", \"path\": \"a.tif\"}, {\"op\": \"io.load\", \"path\": "
                      "\"%s\"}]}}, \"result\": \"m\"}";
    const char *second[] = {"b.tif", "c.tif"};
    for (int k = 0; k < 2; k++) {
        char graph[600];
        snprintf(graph, sizeof graph, fmt, second[k]);
        th_daemon d;
        double *a, *b;
        hdr ha, hb;
        daemon_start(&d, root, "16");
        run_raster(&d, graph, &a, &ha, NULL, NULL);
        daemon_stop(&d);
        daemon_start(&d, root, "4096");
        run_raster(&d, graph, &b, &hb, NULL, NULL);
        daemon_stop(&d);
        /* The union: x 500000 .. 508000 (8002.5 for C, outward to 8010),
         * y 4993000 .. 5000000; A's cell size and nodata. */
        CHECK_MSG(ha.width == (k == 0 ? 800 : 801) && ha.height == 700, "%dx%d", ha.width,
                  ha.height);
        CHECK(ha.gt[0] == 500000 && ha.gt[3] == 5000000 && ha.gt[1] == 10 && ha.gt[5] == -10);
        CHECK(ha.has_nodata && ha.nodata == -1 && !strcmp(ha.type, "f32"));
        for (size_t i = 0; i < (size_t)ha.width * (size_t)ha.height; i++)
            CHECK_MSG(same(a[i], b[i]), "tile sizes 16 and 4096 differ at cell %zu", i);
        char grid[512], cmd[2048], ref[300];
        grid_args(&ha, grid, sizeof grid);
        snprintf(ref, sizeof ref, "%s/mosaic%d.tif", g_base, k);
        snprintf(cmd, sizeof cmd,
                 "/usr/bin/gdalwarp -q -overwrite -r near -et 0 %s %s/a.tif %s/%s %s", grid, root,
                 root, second[k], ref);
        tool(cmd);
        assert_equal_to(second[k], &ha, a, ref);
        free(a);
        free(b);
    }
    /* A raster in another CRS is refused. */
    mk(root, "z.tif", "--size 50 --crs EPSG:32634");
    th_daemon d;
    daemon_start(&d, root, NULL);
    run_error(&d,
              "{\"nodes\": {\"m\": {\"op\": \"transform.mosaic\", \"args\": [{\"op\": "
              "\"io.load\", \"path\": \"a.tif\"}, {\"op\": \"io.load\", \"path\": \"z.tif\"}]}}, "
              "\"result\": \"m\"}",
              PG_EGRID, "m", "another CRS");
    daemon_stop(&d);
}
END_TEST

/* ---- crop ---- */

START_TEST(test_crop_extent_crs)
{
    char root[256];
    snprintf(root, sizeof root, "%s/crop", g_base);
    CHECK(mkdir(root, 0755) == 0);
    mk(root, "g.tif", "--size 1000x800 --type u16 --pattern random --bands 2");
    const double ext[4] = {15.0021, 45.1301, 15.0623, 45.1479};
    /* The reference window: the extent's edges (1001 points each) in UTM,
     * their bounding box, outward to whole cells. */
    OGRSpatialReferenceH geo = OSRNewSpatialReference(NULL), utm = OSRNewSpatialReference(NULL);
    OSRImportFromEPSG(geo, 4326);
    OSRImportFromEPSG(utm, 32633);
    OSRSetAxisMappingStrategy(geo, OAMS_TRADITIONAL_GIS_ORDER);
    OSRSetAxisMappingStrategy(utm, OAMS_TRADITIONAL_GIS_ORDER);
    OGRCoordinateTransformationH ct = OCTNewCoordinateTransformation(geo, utm);
    double mnx = INFINITY, mny = INFINITY, mxx = -INFINITY, mxy = -INFINITY;
    for (int e = 0; e < 4; e++)
        for (int k = 0; k <= 1000; k++) {
            double f = k / 1000.0;
            double X = (e % 2 == 0) ? ext[0] + f * (ext[2] - ext[0]) : ext[e == 1 ? 2 : 0];
            double Y = (e % 2 == 1) ? ext[1] + f * (ext[3] - ext[1]) : ext[e == 0 ? 1 : 3];
            CHECK(OCTTransform(ct, 1, &X, &Y, NULL));
            mnx = fmin(mnx, X), mxx = fmax(mxx, X), mny = fmin(mny, Y), mxy = fmax(mxy, Y);
        }
    OCTDestroyCoordinateTransformation(ct);
    OSRDestroySpatialReference(geo);
    OSRDestroySpatialReference(utm);
    int x0 = (int)floor((mnx - 500000) / 10), x1 = (int)ceil((mxx - 500000) / 10);
    int y0 = (int)floor((5000000 - mxy) / 10), y1 = (int)ceil((5000000 - mny) / 10);
    CHECK(x0 > 0 && y0 > 0 && x1 < 1000 && y1 < 800 && x1 - x0 > 300 && y1 - y0 > 100);

    char graph[800];
    snprintf(graph, sizeof graph,
             "{\"nodes\": {\"c\": {\"op\": \"transform.crop\", \"args\": [{\"op\": \"io.load\", "
             "\"path\": \"g.tif\"}], \"extent\": [%.17g, %.17g, %.17g, %.17g], \"crs\": "
             "\"EPSG:4326\"}}, \"result\": \"c\"}",
             ext[0], ext[1], ext[2], ext[3]);
    th_daemon d;
    double *a;
    hdr h;
    daemon_start(&d, root, "32");
    run_raster(&d, graph, &a, &h, NULL, NULL);
    CHECK_MSG(h.width == x1 - x0 && h.height == y1 - y0 && h.bands == 2, "%dx%d, want %dx%d",
              h.width, h.height, x1 - x0, y1 - y0);
    CHECK(h.gt[0] == 500000 + 10.0 * x0 && h.gt[3] == 5000000 - 10.0 * y0);
    CHECK(!strcmp(h.type, "u16"));
    /* The cells: the file's window, read with GDAL. */
    char path[400];
    snprintf(path, sizeof path, "%s/g.tif", root);
    GDALDatasetH ds = GDALOpen(path, GA_ReadOnly);
    CHECK(ds != NULL);
    size_t n = (size_t)h.width * (size_t)h.height;
    double *want = malloc(sizeof(double) * n * 2);
    for (int b = 0; b < 2; b++)
        CHECK(GDALRasterIO(GDALGetRasterBand(ds, b + 1), GF_Read, x0, y0, h.width, h.height,
                           want + (size_t)b * n, h.width, h.height, GDT_Float64, 0, 0) == CE_None);
    GDALClose(ds);
    for (size_t i = 0; i < 2 * n; i++)
        CHECK_MSG(a[i] == want[i], "cell %zu: %g, want %g", i, a[i], want[i]);
    free(a);
    free(want);
    /* Refused CRS forms, through the daemon. */
    run_error(&d,
              "{\"nodes\": {\"c\": {\"op\": \"transform.crop\", \"args\": [{\"op\": \"io.load\", "
              "\"path\": \"g.tif\"}], \"extent\": [15, 45, 16, 46], \"crs\": \"/etc/passwd\"}}, "
              "\"result\": \"c\"}",
              PG_EPARAM, "c", "param 'crs'");
    run_error(&d,
              "{\"nodes\": {\"c\": {\"op\": \"transform.crop\", \"args\": [{\"op\": \"io.load\", "
              "\"path\": \"g.tif\"}], \"extent\": [10, 40, 10.1, 40.1], \"crs\": "
              "\"EPSG:4326\"}}, \"result\": \"c\"}",
              PG_EPARAM, "c", "does not overlap");
    run_error(&d,
              "{\"nodes\": {\"p\": {\"op\": \"transform.reproject\", \"args\": [{\"op\": "
              "\"io.load\", \"path\": \"g.tif\"}], \"crs\": \"+init=epsg:4326\"}}, "
              "\"result\": \"p\"}",
              PG_EPARAM, "p", "param 'crs'");
    daemon_stop(&d);
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    GDALAllRegister();
    snprintf(g_base, sizeof g_base, "/tmp/pg-it-transform-XXXXXX");
    if (mkdtemp(g_base) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    Suite *s = suite_create("it_transform");
    TCase *tc = tcase_create("transform");
    tcase_set_timeout(tc, 240);
    tcase_add_test(tc, test_reproject_dem);
    tcase_add_test(tc, test_resample_average);
    tcase_add_test(tc, test_mosaic);
    tcase_add_test(tc, test_crop_extent_crs);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    if (failed == 0) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_base);
        if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", g_base);
    } else {
        fprintf(stderr, "test data and daemon logs kept in %s\n", g_base);
    }
    return failed == 0 ? 0 : 1;
}
