/* Integration suite for the focal family: real pergolad processes
 * (tests/harness.c) driven through the client library, inputs made by
 * pergola-mkraster, expected values from GDAL.
 *
 *  - Tiling: focal.mean 3x3 (and a few other focal ops) on a mkraster DEM
 *    with --tile-size 64 and with --tile-size 4096 (one tile): the answers'
 *    cell bytes must be identical. The mean is also checked against a mean
 *    computed here from the file's cells (read with GDAL) in double, within
 *    2^-23 relative (the op sums in another fixed order, then rounds to f32).
 *  - Terrain against /usr/bin/gdaldem -compute_edges on the same file:
 *    slope (degrees and percent) within 1e-3 degrees (percent: 1e-3
 *    relative), aspect within 1e-3 degrees (circular; flat and nodata cells
 *    -9999 in both), hillshade within +-1 (0 = nodata in both), every cell,
 *    edges included, with and without nodata cells, on EPSG:32633.
 *  - Geographic (EPSG:4326): with an explicit "scale", against gdaldem -s on
 *    the same file (gdaldem 3.6 has one scale for both axes); with the
 *    automatic scale (metres per degree at the centre latitude, separately
 *    for x and y), against gdaldem on a copy of the file whose geotransform
 *    is in metres (gdaldem only ever uses cell size * scale). Aspect with the
 *    automatic scale: gdaldem ignores cell sizes in aspect, so its aspect of
 *    the same file is converted to true directions here (the downhill vector
 *    (sin A, cos A) in cell units divided by the cell's metres) and compared
 *    within 1e-3 degrees.
 *    Both the DEM mkraster makes with --crs EPSG:4326 --origin 10,50 --cell
 *    0.0001 (its formula is in CRS units, so that terrain is almost flat:
 *    cell-to-cell steps near the f32 resolution, a test of identical
 *    arithmetic more than of shapes) and the UTM DEM's cells re-tagged onto
 *    that geographic grid (real relief on 7 m x 11 m cells).
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
#include <unistd.h>

static char g_base[128];

#define RUN_TIMEOUT_MS 60000
#define SHORT_MS 10000
#define GDALDEM "/usr/bin/gdaldem"

/* ---- daemons ---- */

static void root_init(th_daemon *d)
{
    memset(d, 0, sizeof *d);
    snprintf(d->root, sizeof d->root, "%s/rXXXXXX", g_base);
    ck_assert_msg(mkdtemp(d->root) != NULL, "mkdtemp: %s", strerror(errno));
}

static void daemon_start(th_daemon *d, const char *const *extra)
{
    int rc = th_start(d, extra);
    ck_assert_msg(rc == 0, "pergolad did not start (log %s)", d->log);
}

static void daemon_finish(th_daemon *d)
{
    int st = th_stop(d);
    ck_assert_msg(st == 0, "pergolad exited with status %d, not 0 (log %s)", st, d->log);
    th_cleanup(d);
}

static void mk(const th_daemon *d, const char *name, const char *args)
{
    int rc = th_mkraster(d->root, name, args);
    ck_assert_msg(rc == 0, "pergola-mkraster %s %s: exit status %d", name, args, rc);
}

static pg_client *connect_client(const char *address)
{
    pg_error err = {0};
    pg_client *c = pg_client_new(address, SHORT_MS, &err);
    ck_assert_msg(c != NULL, "cannot connect to %s: %s", address, err.message);
    return c;
}

static pg_result *run_ok(pg_client *c, const char *graph)
{
    pg_run_opts o = {.timeout_ms = RUN_TIMEOUT_MS};
    pg_result *r = NULL;
    pg_error err = {0};
    int rc = pg_client_run(c, graph, &o, &r, &err);
    ck_assert_msg(rc == 0, "run failed: %s at node '%s': %s", pg_err_name(rc), err.node,
                  err.message);
    return r;
}

static void gdaldem(const th_daemon *d, const char *args)
{
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "cd '%s' && " GDALDEM " %s -compute_edges -q", d->root, args);
    int rc = system(cmd);
    ck_assert_msg(rc == 0, "%s: exit status %d", cmd, rc);
}

/* ---- rasters read with GDAL ---- */

typedef struct img {
    int w, h;
    int has_nodata;
    double nodata;
    double gt[6];
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
    im->v = malloc(sizeof(double) * (size_t)im->w * (size_t)im->h);
    ck_assert(im->v != NULL);
    ck_assert(GDALRasterIO(b, GF_Read, 0, 0, im->w, im->h, im->v, im->w, im->h, GDT_Float64, 0,
                           0) == CE_None);
    GDALClose(ds);
}

static void img_free(img *im)
{
    free(im->v);
    im->v = NULL;
}

/* Copies ROOT/SRC to ROOT/DST with geotransform GT and CRS (NULL: none). */
static void retag(const char *root, const char *src, const char *dst, const double gt[6],
                  const char *crs)
{
    char ps[600], pd[600];
    snprintf(ps, sizeof ps, "%s/%s", root, src);
    snprintf(pd, sizeof pd, "%s/%s", root, dst);
    GDALDatasetH s = GDALOpen(ps, GA_ReadOnly);
    ck_assert(s != NULL);
    GDALDatasetH d = GDALCreateCopy(GDALGetDriverByName("GTiff"), pd, s, FALSE, NULL, NULL, NULL);
    ck_assert(d != NULL);
    GDALClose(s);
    ck_assert(GDALSetGeoTransform(d, (double *)gt) == CE_None);
    if (crs != NULL) {
        OGRSpatialReferenceH srs = OSRNewSpatialReference(NULL);
        ck_assert(OSRSetFromUserInput(srs, crs) == OGRERR_NONE);
        ck_assert(GDALSetSpatialRef(d, srs) == CE_None);
        OSRDestroySpatialReference(srs);
    } else {
        GDALSetProjection(d, "");
    }
    GDALClose(d);
}

/* The focal op's file against gdaldem's: nodata (ND) where the other has
 * nodata, values within TOL (absolute, plus REL relative; CIRC: angles mod
 * 360). */
static void compare(const img *got, const img *want, double nd, double tol, double rel, bool circ,
                    const char *what)
{
    ck_assert_msg(got->w == want->w && got->h == want->h, "%s: size %dx%d, want %dx%d", what,
                  got->w, got->h, want->w, want->h);
    ck_assert_msg(got->has_nodata && got->nodata == nd, "%s: nodata %g (%d), want %g", what,
                  got->nodata, got->has_nodata, nd);
    size_t n = (size_t)got->w * (size_t)got->h, bad = 0, first = 0, nnd = 0;
    double maxd = 0;
    for (size_t i = 0; i < n; i++) {
        const double g = got->v[i], w = want->v[i];
        bool ok;
        if (g == nd || w == nd) {
            ok = g == w;
            nnd += g == nd;
        } else {
            double diff = fabs(g - w);
            if (circ && diff > 180) diff = 360 - diff;
            ok = diff <= tol + rel * fabs(w);
            if (diff > maxd) maxd = diff;
        }
        if (!ok && bad++ == 0) first = i;
    }
    fprintf(stderr, "%-44s %zu cells, %zu nodata, max |diff| %.3g\n", what, n, nnd, maxd);
    ck_assert_msg(bad == 0, "%s: %zu of %zu cells differ; first at (%zu, %zu): got %.9g, want %.9g",
                  what, bad, n, first % (size_t)got->w, first / (size_t)got->w, got->v[first],
                  want->v[first]);
}

static void compare_files(const th_daemon *d, const char *ours, const char *theirs, double nd,
                          double tol, double rel, bool circ)
{
    img a, b;
    img_read(&a, d->root, ours);
    img_read(&b, d->root, theirs);
    char what[600];
    snprintf(what, sizeof what, "%.250s vs %.250s", ours, theirs);
    compare(&a, &b, nd, tol, rel, circ, what);
    img_free(&a);
    img_free(&b);
}

/* Runs NODE (a focal op's JSON, "args" included) over IN and saves it to OUT. */
static void run_save(pg_client *c, const char *in, const char *node, const char *out)
{
    char g[2000];
    snprintf(g, sizeof g,
             "{\"nodes\": {\"a\": {\"op\": \"io.load\", \"path\": \"%s\"}, \"f\": %s, \"o\": "
             "{\"op\": \"io.save\", \"path\": \"%s\", \"args\": [{\"ref\": \"f\"}]}}, "
             "\"result\": \"o\"}",
             in, node, out);
    pg_result *r = run_ok(c, g);
    ck_assert_int_eq(pg_result_item_kind(r, 0), PG_ITEM_PATH);
    pg_result_destroy(&r);
}

/* ---- 1. tiled equals untiled ---- */

static const char *const TILING_GRAPH =
    "{\"nodes\": {\"a\": {\"op\": \"io.load\", \"path\": \"dem.tif\"},"
    " \"n\": {\"op\": \"io.load\", \"path\": \"demnd.tif\"},"
    " \"m1\": {\"op\": \"focal.mean\", \"args\": [{\"ref\": \"a\"}]},"
    " \"m2\": {\"op\": \"focal.mean\", \"args\": [{\"ref\": \"n\"}]},"
    " \"s\": {\"op\": \"focal.stddev\", \"args\": [{\"ref\": \"n\"}], \"shape\": \"circle\","
    " \"radius\": 3},"
    " \"md\": {\"op\": \"focal.median\", \"args\": [{\"ref\": \"n\"}], \"radius\": 2},"
    " \"cv\": {\"op\": \"focal.convolve\", \"args\": [{\"ref\": \"n\"}], \"kernel\": [[1, 2, 1],"
    " [0, 0, 0], [-1, -2, -1]]},"
    " \"sl\": {\"op\": \"focal.slope\", \"args\": [{\"ref\": \"n\"}]},"
    " \"hs\": {\"op\": \"focal.hillshade\", \"args\": [{\"ref\": \"a\"}]},"
    " \"ch\": {\"op\": \"focal.max\", \"shape\": \"circle\", \"radius\": 2, \"args\": [{\"op\":"
    " \"focal.mean\", \"args\": [{\"ref\": \"sl\"}], \"shape\": \"wedge\", \"radius\": 3,"
    " \"start\": 300, \"end\": 30}]}},"
    " \"result\": [\"m1\", \"m2\", \"s\", \"md\", \"cv\", \"sl\", \"hs\", \"ch\"]}";
#define TILING_ITEMS 8

/* The 3x3 mean of the valid cells of IM around (x, y), as the docs define it. */
static double mean3(const img *im, int x, int y, bool *nd)
{
    double s = 0;
    int n = 0;
    const double c = im->v[(size_t)y * (size_t)im->w + (size_t)x];
    *nd = im->has_nodata && c == im->nodata;
    for (int dy = -1; dy <= 1; dy++)
        for (int dx = -1; dx <= 1; dx++) {
            const int xx = x + dx, yy = y + dy;
            if (xx < 0 || yy < 0 || xx >= im->w || yy >= im->h) continue;
            const double v = im->v[(size_t)yy * (size_t)im->w + (size_t)xx];
            if (im->has_nodata && v == im->nodata) continue;
            s += v;
            n++;
        }
    return s / n;
}

START_TEST(test_tiled_untiled)
{
    const char *sizes[2] = {"64", "4096"};
    unsigned char *bytes[2][TILING_ITEMS] = {{0}};
    size_t lens[2][TILING_ITEMS] = {{0}};
    img dem, demnd;
    for (int t = 0; t < 2; t++) {
        th_daemon d;
        root_init(&d);
        /* blocks larger than the raster: the job's tiles follow --tile-size */
        mk(&d, "dem.tif", "--size 1000x700 --pattern dem --block 1024");
        mk(&d, "demnd.tif",
           "--size 1000x700 --pattern dem --block 1024 --nodata -9999 --nodata-every 37");
        if (t == 0) {
            img_read(&dem, d.root, "dem.tif");
            img_read(&demnd, d.root, "demnd.tif");
        }
        const char *extra[] = {"--tile-size", sizes[t], "--workers", "3", NULL};
        daemon_start(&d, extra);
        pg_client *c = connect_client(d.address);
        pg_result *r = run_ok(c, TILING_GRAPH);
        for (int i = 0; i < TILING_ITEMS; i++) {
            ck_assert_int_eq(pg_result_item_kind(r, (size_t)i), PG_ITEM_RASTER);
            const pg_raster *ra = pg_result_raster(r, (size_t)i);
            ck_assert(ra->width == 1000 && ra->height == 700);
            lens[t][i] = ra->length;
            bytes[t][i] = malloc(ra->length);
            ck_assert(bytes[t][i] != NULL);
            memcpy(bytes[t][i], ra->data, ra->length);
        }
        /* the means against the reference */
        for (int k = 0; k < 2; k++) {
            const pg_raster *ra = pg_result_raster(r, (size_t)k);
            const img *im = k == 0 ? &dem : &demnd;
            ck_assert_str_eq(ra->type, "f32");
            const float *got = ra->data;
            size_t bad = 0;
            for (int y = 0; y < 700; y++)
                for (int x = 0; x < 1000; x++) {
                    bool nd;
                    const double want = mean3(im, x, y, &nd);
                    const double g = got[y * 1000 + x];
                    if (nd ? g != -9999 : fabs(g - want) > 0x1p-23 * fabs(want)) {
                        if (bad++ == 0)
                            fprintf(stderr, "mean (%d, %d): got %.9g, want %.9g%s\n", x, y, g, want,
                                    nd ? " (nodata)" : "");
                    }
                }
            ck_assert_msg(bad == 0, "tile size %s: %zu mean cells differ from the reference",
                          sizes[t], bad);
        }
        pg_result_destroy(&r);
        pg_client_destroy(&c);
        daemon_finish(&d);
    }
    static const char *const names[TILING_ITEMS] = {"mean 3x3",   "mean 3x3 (nodata)", "stddev r3",
                                                    "median 5x5", "convolve",          "slope",
                                                    "hillshade",  "max(mean(slope))"};
    for (int i = 0; i < TILING_ITEMS; i++) {
        ck_assert_msg(lens[0][i] == lens[1][i] && memcmp(bytes[0][i], bytes[1][i], lens[0][i]) == 0,
                      "%s: --tile-size 64 and --tile-size 4096 give different bytes", names[i]);
        fprintf(stderr, "%-20s tile 64 == tile 4096: %zu bytes identical\n", names[i], lens[0][i]);
        free(bytes[0][i]);
        free(bytes[1][i]);
    }
    img_free(&dem);
    img_free(&demnd);
}
END_TEST

/* ---- 2. terrain against gdaldem, EPSG:32633 ---- */

static void terrain_vs_gdaldem(const th_daemon *d, pg_client *c, const char *in, const char *tag)
{
    char o[200], g[200], a[400];
#define OURS(NAME) (snprintf(o, sizeof o, "out/%s_%s.tif", tag, NAME), o)
#define THEIRS(NAME) (snprintf(g, sizeof g, "gd_%s_%s.tif", tag, NAME), g)
    run_save(c, in, "{\"op\": \"focal.slope\", \"args\": [{\"ref\": \"a\"}]}", OURS("slope"));
    snprintf(a, sizeof a, "slope %s %s", in, THEIRS("slope"));
    gdaldem(d, a);
    compare_files(d, o, g, -9999, 1e-3, 0, false);

    run_save(c, in,
             "{\"op\": \"focal.slope\", \"args\": [{\"ref\": \"a\"}], \"units\": \"percent\"}",
             OURS("slopep"));
    snprintf(a, sizeof a, "slope -p %s %s", in, THEIRS("slopep"));
    gdaldem(d, a);
    compare_files(d, o, g, -9999, 1e-4, 1e-5, false);

    run_save(c, in, "{\"op\": \"focal.aspect\", \"args\": [{\"ref\": \"a\"}]}", OURS("aspect"));
    snprintf(a, sizeof a, "aspect %s %s", in, THEIRS("aspect"));
    gdaldem(d, a);
    compare_files(d, o, g, -9999, 1e-3, 0, true);

    run_save(c, in, "{\"op\": \"focal.hillshade\", \"args\": [{\"ref\": \"a\"}]}", OURS("hs"));
    snprintf(a, sizeof a, "hillshade %s %s", in, THEIRS("hs"));
    gdaldem(d, a);
    compare_files(d, o, g, 0, 1, 0, false);

    run_save(c, in,
             "{\"op\": \"focal.hillshade\", \"args\": [{\"ref\": \"a\"}], \"z_factor\": 2.5, "
             "\"azimuth\": 200, \"altitude\": 30}",
             OURS("hs2"));
    snprintf(a, sizeof a, "hillshade -z 2.5 -az 200 -alt 30 %s %s", in, THEIRS("hs2"));
    gdaldem(d, a);
    compare_files(d, o, g, 0, 1, 0, false);
#undef OURS
#undef THEIRS
}

START_TEST(test_gdaldem_utm)
{
    th_daemon d;
    root_init(&d);
    mk(&d, "dem.tif", "--size 700x500 --pattern dem");
    mk(&d, "demnd.tif", "--size 700x500 --pattern dem --nodata -9999 --nodata-every 53");
    mk(&d, "demi16.tif",
       "--size 300x200 --pattern dem --type i16 --nodata -32768 --nodata-every 41");
    daemon_start(&d, NULL);
    pg_client *c = connect_client(d.address);
    terrain_vs_gdaldem(&d, c, "dem.tif", "utm");
    terrain_vs_gdaldem(&d, c, "demnd.tif", "utmnd");
    terrain_vs_gdaldem(&d, c, "demi16.tif", "i16");
    pg_client_destroy(&c);
    daemon_finish(&d);
}
END_TEST

/* ---- 3. geographic ---- */

/* The automatic scales, as documented: from the file's CRS and grid. */
static void auto_scales(const char *root, const char *rel, double *xs, double *ys, img *im)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    GDALDatasetH ds = GDALOpen(p, GA_ReadOnly);
    ck_assert(ds != NULL);
    OGRSpatialReferenceH srs = OSRNewSpatialReference(GDALGetProjectionRef(ds));
    ck_assert(srs != NULL && OSRIsGeographic(srs));
    const double ang = OSRGetAngularUnits(srs, NULL), a = OSRGetSemiMajor(srs, NULL);
    const double lat = (im->gt[3] + im->h * im->gt[5] / 2) * ang;
    *ys = ang * a;
    *xs = *ys * cos(lat);
    OSRDestroySpatialReference(srs);
    GDALClose(ds);
}

static void geo_vs_gdaldem(const th_daemon *d, pg_client *c, const char *in, const char *tag)
{
    char o[200], g[200], a[600], node[300];
    img im;
    img_read(&im, d->root, in);
    double xs, ys;
    auto_scales(d->root, in, &xs, &ys, &im);
    fprintf(stderr, "%s: automatic scales x %.6f, y %.6f m per degree\n", in, xs, ys);

    /* explicit scale: gdaldem -s on the same file */
    const double S = 111120;
    snprintf(node, sizeof node,
             "{\"op\": \"focal.slope\", \"args\": [{\"ref\": \"a\"}], \"scale\": %.17g}", S);
    snprintf(o, sizeof o, "out/%s_slope_s.tif", tag);
    snprintf(g, sizeof g, "gd_%s_slope_s.tif", tag);
    run_save(c, in, node, o);
    snprintf(a, sizeof a, "slope -s %.17g %s %s", S, in, g);
    gdaldem(d, a);
    compare_files(d, o, g, -9999, 1e-3, 0, false);

    snprintf(node, sizeof node,
             "{\"op\": \"focal.hillshade\", \"args\": [{\"ref\": \"a\"}], \"scale\": %.17g}", S);
    snprintf(o, sizeof o, "out/%s_hs_s.tif", tag);
    snprintf(g, sizeof g, "gd_%s_hs_s.tif", tag);
    run_save(c, in, node, o);
    snprintf(a, sizeof a, "hillshade -s %.17g %s %s", S, in, g);
    gdaldem(d, a);
    compare_files(d, o, g, 0, 1, 0, false);

    /* automatic scale: gdaldem on the same cells with the cell size in metres */
    char metres[200];
    snprintf(metres, sizeof metres, "%s_m.tif", tag);
    const double gtm[6] = {0, im.gt[1] * xs, 0, 0, 0, im.gt[5] * ys};
    retag(d->root, in, metres, gtm, NULL);

    snprintf(o, sizeof o, "out/%s_slope_auto.tif", tag);
    snprintf(g, sizeof g, "gd_%s_slope_m.tif", tag);
    run_save(c, in, "{\"op\": \"focal.slope\", \"args\": [{\"ref\": \"a\"}]}", o);
    snprintf(a, sizeof a, "slope %s %s", metres, g);
    gdaldem(d, a);
    compare_files(d, o, g, -9999, 1e-3, 0, false);

    snprintf(o, sizeof o, "out/%s_hs_auto.tif", tag);
    snprintf(g, sizeof g, "gd_%s_hs_m.tif", tag);
    run_save(c, in, "{\"op\": \"focal.hillshade\", \"args\": [{\"ref\": \"a\"}]}", o);
    snprintf(a, sizeof a, "hillshade %s %s", metres, g);
    gdaldem(d, a);
    compare_files(d, o, g, 0, 1, 0, false);

    /* aspect: gdaldem's (cell-size blind) aspect of the same file, turned
     * into true directions */
    snprintf(o, sizeof o, "out/%s_aspect_auto.tif", tag);
    snprintf(g, sizeof g, "gd_%s_aspect.tif", tag);
    run_save(c, in, "{\"op\": \"focal.aspect\", \"args\": [{\"ref\": \"a\"}]}", o);
    snprintf(a, sizeof a, "aspect %s %s", in, g);
    gdaldem(d, a);
    img ours, theirs;
    img_read(&ours, d->root, o);
    img_read(&theirs, d->root, g);
    const double ew = im.gt[1] * xs, ns = fabs(im.gt[5] * ys);
    const double d2r = M_PI / 180;
    for (size_t i = 0; i < (size_t)theirs.w * (size_t)theirs.h; i++) {
        if (theirs.v[i] == -9999) continue;
        double t = atan2(sin(theirs.v[i] * d2r) / ew, cos(theirs.v[i] * d2r) / ns) / d2r;
        theirs.v[i] = t < 0 ? t + 360 : t;
    }
    char what[600];
    snprintf(what, sizeof what, "%.200s vs %.200s (true directions)", o, g);
    compare(&ours, &theirs, -9999, 1e-3, 0, true, what);
    img_free(&ours);
    img_free(&theirs);
    img_free(&im);
}

START_TEST(test_gdaldem_geographic)
{
    th_daemon d;
    root_init(&d);
    mk(&d, "geo.tif", "--size 400x300 --pattern dem --crs EPSG:4326 --origin 10,50 --cell 0.0001");
    mk(&d, "utm.tif", "--size 400x300 --pattern dem --nodata -9999 --nodata-every 61");
    const double gt[6] = {10, 0.0001, 0, 50, 0, -0.0001};
    retag(d.root, "utm.tif", "geo2.tif", gt, "EPSG:4326");
    daemon_start(&d, NULL);
    pg_client *c = connect_client(d.address);
    geo_vs_gdaldem(&d, c, "geo.tif", "geo");
    geo_vs_gdaldem(&d, c, "geo2.tif", "geo2");
    pg_client_destroy(&c);
    daemon_finish(&d);
}
END_TEST

/* ---- 4. errors through the daemon ---- */

START_TEST(test_errors)
{
    th_daemon d;
    root_init(&d);
    mk(&d, "dem.tif", "--size 64x64 --pattern dem");
    daemon_start(&d, NULL);
    int fd = th_connect(&d);
    ck_assert(fd >= 0);
    static const struct {
        const char *node, *code, *needle;
    } cases[] = {
        {"{\"op\": \"focal.mean\", \"args\": [{\"ref\": \"a\"}], \"radius\": -1}", "bad_param",
         "radius"},
        {"{\"op\": \"focal.mean\", \"args\": [{\"ref\": \"a\"}], \"shape\": \"hexagon\"}",
         "bad_param", "shape"},
        {"{\"op\": \"focal.convolve\", \"args\": [{\"ref\": \"a\"}], \"kernel\": [[1, 2], [3, 4]]}",
         "bad_param", "kernel"},
        {"{\"op\": \"focal.slope\", \"args\": [{\"ref\": \"a\"}], \"units\": \"grads\"}",
         "bad_param", "units"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char line[1000];
        snprintf(line, sizeof line,
                 "{\"id\": %zu, \"type\": \"run\", \"graph\": {\"nodes\": {\"a\": {\"op\": "
                 "\"io.load\", \"path\": \"dem.tif\"}, \"f\": %s}, \"result\": \"f\"}}\n",
                 i + 1, cases[i].node);
        json_t *ev = th_request(fd, line, SHORT_MS);
        ck_assert_msg(ev != NULL, "no answer to %s", line);
        ck_assert_str_eq(th_code(ev), cases[i].code);
        ck_assert_str_eq(th_node(ev), "f");
        const char *msg =
            json_string_value(json_object_get(json_object_get(ev, "error"), "message"));
        ck_assert_msg(msg != NULL && strstr(msg, cases[i].needle) != NULL,
                      "message '%s' does not name '%s'", msg ? msg : "", cases[i].needle);
        json_decref(ev);
    }
    close(fd);
    daemon_finish(&d);
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    GDALAllRegister();
    snprintf(g_base, sizeof g_base, "/tmp/pg-it-focal-XXXXXX");
    if (mkdtemp(g_base) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    Suite *s = suite_create("it_focal");
    TCase *tc = tcase_create("focal");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_tiled_untiled);
    tcase_add_test(tc, test_gdaldem_utm);
    tcase_add_test(tc, test_gdaldem_geographic);
    tcase_add_test(tc, test_errors);
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
