/* Integration suite for ops/local_class.c: real pergolad processes
 * (tests/harness.c) driven through the public client library.
 *
 * Inputs are made by pergola-mkraster; the daemon's outputs are saved with
 * io.save and read back with GDAL's C API; expected values are recomputed
 * here from the inputs as GDAL reads them:
 *  - NDVI = local.normalized_difference(nir, red) on u16 rasters: against
 *    (a - b) / (a + b) computed in double and rounded to f32, EXACTLY (the
 *    op's f32 quotient of exact operands equals it), NaN where a + b == 0;
 *    and against gdal_calc.py on the same files
 *    (--calc="(A.astype(float64)-B)/(A.astype(float64)+B)" --type=Float32,
 *    numpy's double quotient written as Float32): EXACTLY as well, NaN
 *    equal to NaN;
 *  - a reclassify chain (f32 DEM with nodata -> classes -> classes ->
 *    mask): every cell exactly, types and nodata values as the rules say;
 *  - majority of 5 rasters (each reclassified into 4 buckets inside the
 *    graph, two with nodata): every cell exactly against a count in C, and
 *    the bytes of a run with 16x16 tiles equal to those of a run with
 *    8192x8192 tiles;
 *  - parameter errors come back as bad_param naming the node.
 * Every daemon is stopped with th_stop() and must exit with status 0.
 */
#include "harness.h"
#include "pergola/client.h"

#include <check.h>
#include <errno.h>
#include <gdal.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The suite's temporary directory: every daemon's data root is made in it. */
static char g_base[128];

#define RUN_TIMEOUT_MS 60000
#define SHORT_MS 10000

/* ---- daemons ---- */

static void root_init(th_daemon *d)
{
    memset(d, 0, sizeof *d);
    snprintf(d->root, sizeof d->root, "%s/rXXXXXX", g_base);
    ck_assert_msg(mkdtemp(d->root) != NULL, "mkdtemp: %s", strerror(errno));
}

static void dump_log(const th_daemon *d)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "tail -c 3000 '%s' >&2", d->log);
    if (system(cmd) != 0) fprintf(stderr, "(no log)\n");
}

static void daemon_start(th_daemon *d, const char *const *extra)
{
    int rc = th_start(d, extra);
    if (rc != 0) dump_log(d);
    ck_assert_msg(rc == 0, "pergolad did not start (log %s)", d->log);
}

static void daemon_finish(th_daemon *d)
{
    int st = th_stop(d);
    if (st != 0) dump_log(d);
    ck_assert_msg(st == 0, "pergolad exited with status %d, not 0 (log %s)", st, d->log);
    th_cleanup(d);
}

static void mk(const th_daemon *d, const char *name, const char *args)
{
    int rc = th_mkraster(d->root, name, args);
    ck_assert_msg(rc == 0, "pergola-mkraster %s %s: exit status %d", name, args, rc);
}

static pg_client *connect_client(const th_daemon *d)
{
    pg_error err = {0};
    pg_client *c = pg_client_new(d->address, SHORT_MS, &err);
    ck_assert_msg(c != NULL, "cannot connect to %s: %s", d->address, err.message);
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

/* ---- rasters read with GDAL ---- */

typedef struct img {
    int w, h;
    GDALDataType type;
    int has_nodata;
    double nodata;
    double gt[6];
    double *v; /* h * w cells of band 1, as doubles (exact for every type) */
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
    im->type = GDALGetRasterDataType(b);
    im->nodata = GDALGetRasterNoDataValue(b, &im->has_nodata);
    GDALGetGeoTransform(ds, im->gt);
    im->v = malloc((size_t)im->w * (size_t)im->h * sizeof(double));
    ck_assert_ptr_nonnull(im->v);
    CPLErr e = GDALRasterIO(b, GF_Read, 0, 0, im->w, im->h, im->v, im->w, im->h, GDT_Float64, 0, 0);
    ck_assert_msg(e == CE_None, "reading %s failed", p);
    GDALClose(ds);
}

static void img_free(img *im)
{
    free(im->v);
    memset(im, 0, sizeof *im);
}

static size_t img_cells(const img *im)
{
    return (size_t)im->w * (size_t)im->h;
}

/* Exact comparison (NaN equals NaN): the first mismatch and how many. */
static void assert_cells(const double *got, const double *want, size_t n, const char *what)
{
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < n; i++) {
        int eq = got[i] == want[i] || (isnan(got[i]) && isnan(want[i]));
        if (!eq && bad++ == 0) first = i;
    }
    ck_assert_msg(bad == 0, "%s: %zu of %zu cells differ; first at %zu: got %.17g, want %.17g",
                  what, bad, n, first, bad ? got[first] : 0.0, bad ? want[first] : 0.0);
}

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) *len = (size_t)n;
    return buf;
}

/* ---- NDVI ---- */

static void check_ndvi(const th_daemon *d, const char *nir, const char *red, const char *out,
                       size_t *nan_cells)
{
    img a, b, o;
    img_read(&a, d->root, nir);
    img_read(&b, d->root, red);
    img_read(&o, d->root, out);
    ck_assert_int_eq(a.type, GDT_UInt16);
    ck_assert_int_eq(o.type, GDT_Float32);
    ck_assert(o.w == a.w && o.h == a.h);
    ck_assert(memcmp(o.gt, a.gt, sizeof o.gt) == 0);
    ck_assert_msg(o.has_nodata && isnan(o.nodata), "NDVI nodata must be NaN");
    double *want = malloc(img_cells(&a) * sizeof(double));
    ck_assert_ptr_nonnull(want);
    size_t nans = 0;
    for (size_t i = 0; i < img_cells(&a); i++) {
        double s = a.v[i] + b.v[i];
        want[i] = s == 0 ? NAN : (double)(float)((a.v[i] - b.v[i]) / s);
        nans += isnan(want[i]);
    }
    assert_cells(o.v, want, img_cells(&o), "NDVI vs C reference");

    /* gdal_calc.py on the same files */
    char cmd[2000];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && /usr/bin/python3 /usr/bin/gdal_calc.py -A '%s' -B '%s' --outfile "
             "calc_%s --calc='(A.astype(float64)-B)/(A.astype(float64)+B)' --type=Float32 "
             "--overwrite --quiet 2>/dev/null",
             d->root, nir, red, out);
    ck_assert_msg(system(cmd) == 0, "gdal_calc.py failed: %s", cmd);
    char calc[300];
    snprintf(calc, sizeof calc, "calc_%s", out);
    img g;
    img_read(&g, d->root, calc);
    ck_assert_int_eq(g.type, GDT_Float32);
    assert_cells(o.v, g.v, img_cells(&o), "NDVI vs gdal_calc.py");
    *nan_cells = nans;
    free(want);
    img_free(&g);
    img_free(&a);
    img_free(&b);
    img_free(&o);
}

START_TEST(test_ndvi)
{
    th_daemon d;
    root_init(&d);
    /* odd sizes: partial tiles at the right and bottom edges */
    mk(&d, "nir.tif", "--size 700x523 --type u16 --pattern random --seed 11");
    mk(&d, "red.tif", "--size 700x523 --type u16 --pattern random --seed 12");
    /* a + b == 0 wherever the checker is 0 */
    mk(&d, "nir0.tif", "--size 700x523 --type u16 --pattern checker");
    mk(&d, "red0.tif", "--size 700x523 --type u16 --pattern const:0");
    daemon_start(&d, NULL);
    pg_client *c = connect_client(&d);
    static const char *const graph =
        "{\"nodes\": {"
        "\"nir\": {\"op\": \"io.load\", \"path\": \"%s\"},"
        "\"red\": {\"op\": \"io.load\", \"path\": \"%s\"},"
        "\"ndvi\": {\"op\": \"local.normalized_difference\", \"args\": [{\"ref\": \"nir\"}, "
        "{\"ref\": \"red\"}]},"
        "\"out\": {\"op\": \"io.save\", \"path\": \"%s\", \"args\": [{\"ref\": \"ndvi\"}]}},"
        "\"result\": \"out\"}";
    static const char *const runs[2][3] = {{"nir.tif", "red.tif", "ndvi.tif"},
                                           {"nir0.tif", "red0.tif", "ndvi0.tif"}};
    for (int k = 0; k < 2; k++) {
        char g[1024];
        snprintf(g, sizeof g, graph, runs[k][0], runs[k][1], runs[k][2]);
        pg_result *r = run_ok(c, g);
        ck_assert_str_eq(pg_result_path(r, 0), runs[k][2]);
        pg_result_destroy(&r);
        size_t nans = 0;
        check_ndvi(&d, runs[k][0], runs[k][1], runs[k][2], &nans);
        if (k == 1) ck_assert_msg(nans > 100000, "only %zu NaN cells", nans);
    }
    pg_client_destroy(&c);
    daemon_finish(&d);
}
END_TEST

/* ---- reclassify chain ---- */

START_TEST(test_reclassify_chain)
{
    th_daemon d;
    root_init(&d);
    mk(&d, "dem.tif", "--size 600x450 --type f32 --pattern dem --nodata -9999 --nodata-every 97");
    daemon_start(&d, NULL);
    pg_client *c = connect_client(&d);
    const char *g =
        "{\"nodes\": {"
        "\"dem\": {\"op\": \"io.load\", \"path\": \"dem.tif\"},"
        "\"cls\": {\"op\": \"local.reclassify\", \"args\": [{\"ref\": \"dem\"}], \"classes\": "
        "[[null, 1100, 1], [1100, 1200.5, 2], [1200.5, 1300, 3], [1300, null, 4]]},"
        "\"cls2\": {\"op\": \"local.reclassify\", \"args\": [{\"ref\": \"cls\"}], \"classes\": "
        "[[1, 2, 10], [2, 3, 20]], \"default\": 0},"
        "\"masked\": {\"op\": \"local.mask\", \"args\": [{\"ref\": \"dem\"}, {\"ref\": "
        "\"cls2\"}]},"
        "\"high\": {\"op\": \"local.inverse_mask\", \"args\": [{\"ref\": \"dem\"}, {\"ref\": "
        "\"cls2\"}]},"
        "\"clamped\": {\"op\": \"local.clamp\", \"args\": [{\"ref\": \"high\"}], \"min\": 1250, "
        "\"max\": 1400.25},"
        "\"as_i16\": {\"op\": \"local.convert\", \"args\": [{\"ref\": \"clamped\"}], \"type\": "
        "\"i16\"},"
        "\"s1\": {\"op\": \"io.save\", \"path\": \"cls2.tif\", \"args\": [{\"ref\": \"cls2\"}]},"
        "\"s2\": {\"op\": \"io.save\", \"path\": \"masked.tif\", \"args\": [{\"ref\": "
        "\"masked\"}]},"
        "\"s3\": {\"op\": \"io.save\", \"path\": \"high.tif\", \"args\": [{\"ref\": "
        "\"as_i16\"}]}},"
        "\"result\": [\"s1\", \"s2\", \"s3\"]}";
    pg_result *r = run_ok(c, g);
    ck_assert_int_eq((int)pg_result_count(r), 3);
    pg_result_destroy(&r);

    img dem, c2, m, h;
    img_read(&dem, d.root, "dem.tif");
    img_read(&c2, d.root, "cls2.tif");
    img_read(&m, d.root, "masked.tif");
    img_read(&h, d.root, "high.tif");
    ck_assert(dem.has_nodata && dem.nodata == -9999);
    /* cls: u8 (values 1..4), nodata 255 (u8 cannot hold -9999); cls2: u8,
     * the input's nodata 255 is held and free */
    ck_assert_int_eq(c2.type, GDT_Byte);
    ck_assert(c2.has_nodata && c2.nodata == 255);
    /* mask / inverse_mask: the DEM's type and nodata */
    ck_assert_int_eq(m.type, GDT_Float32);
    ck_assert(m.has_nodata && m.nodata == -9999);
    /* convert to i16 keeps -9999 (i16 holds it) */
    ck_assert_int_eq(h.type, GDT_Int16);
    ck_assert(h.has_nodata && h.nodata == -9999);

    size_t n = img_cells(&dem);
    double *w2 = malloc(n * sizeof(double)), *wm = malloc(n * sizeof(double)),
           *wh = malloc(n * sizeof(double));
    ck_assert(w2 && wm && wh);
    size_t counts[5] = {0};
    for (size_t i = 0; i < n; i++) {
        double v = dem.v[i];
        bool nd = v == -9999;
        int cls = nd ? 0 : v < 1100 ? 1 : v < 1200.5 ? 2 : v < 1300 ? 3 : 4;
        counts[cls]++;
        w2[i] = nd ? 255 : cls == 1 ? 10 : cls == 2 ? 20 : 0;
        /* mask: the DEM where cls2 is valid and non-zero */
        wm[i] = (!nd && (cls == 1 || cls == 2)) ? v : -9999;
        /* inverse_mask: where cls2 is 0 or nodata (the DEM's nodata cells
         * stay nodata); clamp to [1250, 1400.25]; i16: round */
        if (nd || cls == 1 || cls == 2) {
            wh[i] = -9999;
        } else {
            double cl = v < 1250 ? 1250 : v > 1400.25 ? 1400.25 : v;
            wh[i] = round(cl);
        }
    }
    for (int k = 0; k < 5; k++)
        ck_assert_msg(counts[k] > 100, "class %d has only %zu cells", k, counts[k]);
    assert_cells(c2.v, w2, n, "cls2");
    assert_cells(m.v, wm, n, "masked");
    assert_cells(h.v, wh, n, "inverse_mask+clamp+convert");
    free(w2);
    free(wm);
    free(wh);
    img_free(&dem);
    img_free(&c2);
    img_free(&m);
    img_free(&h);

    /* a bad class list: bad_param naming the node */
    pg_run_opts o = {.timeout_ms = RUN_TIMEOUT_MS};
    pg_error err = {0};
    const char *bad =
        "{\"nodes\": {\"dem\": {\"op\": \"io.load\", \"path\": \"dem.tif\"},"
        "\"cls\": {\"op\": \"local.reclassify\", \"args\": [{\"ref\": \"dem\"}], \"classes\": "
        "[[0, 10, 1], [5, 20, 2]]}}, \"result\": \"cls\"}";
    ck_assert_int_eq(pg_client_run(c, bad, &o, &r, &err), PG_EPARAM);
    ck_assert_str_eq(err.node, "cls");
    ck_assert_ptr_nonnull(strstr(err.message, "classes[0] [0, 10) and classes[1] [5, 20) overlap"));
    const char *bad2 =
        "{\"nodes\": {\"dem\": {\"op\": \"io.load\", \"path\": \"dem.tif\"},"
        "\"w\": {\"op\": \"local.weighted_overlay\", \"args\": [{\"ref\": \"dem\"}, {\"ref\": "
        "\"dem\"}], \"weights\": [1]}}, \"result\": \"w\"}";
    ck_assert_int_eq(pg_client_run(c, bad2, &o, &r, &err), PG_EPARAM);
    ck_assert_str_eq(err.node, "w");
    ck_assert_ptr_nonnull(strstr(err.message, "param 'weights' has 1 entries for 2 args"));
    pg_client_destroy(&c);
    daemon_finish(&d);
}
END_TEST

/* ---- majority of 5 ---- */

/* Runs the majority graph on a daemon with TILE ("16" or "8192") and
 * returns the bytes of the output file. */
static char *majority_run(const char *tile, size_t *len, th_daemon *d, int keep)
{
    root_init(d);
    for (int k = 0; k < 5; k++) {
        char name[32], args[200];
        snprintf(name, sizeof name, "r%d.tif", k);
        /* r1 and r3 carry nodata (every 7th / 5th cell) */
        snprintf(args, sizeof args, "--size 613x401 --type u8 --pattern random --seed %d%s", k + 1,
                 k == 1   ? " --nodata 3 --nodata-every 7"
                 : k == 3 ? " --nodata 200 --nodata-every 5"
                          : "");
        mk(d, name, args);
    }
    const char *extra[] = {"--tile-size", tile, "--workers", "2", NULL};
    daemon_start(d, extra);
    pg_client *c = connect_client(d);
    /* each raster bucketed into 0..3 (v / 64) inside the graph */
    char g[4096];
    size_t at = (size_t)snprintf(g, sizeof g, "{\"nodes\": {");
    for (int k = 0; k < 5; k++)
        at += (size_t)snprintf(g + at, sizeof g - at,
                               "\"b%d\": {\"op\": \"local.reclassify\", \"args\": [{\"op\": "
                               "\"io.load\", \"path\": \"r%d.tif\"}], \"classes\": [[0, 64, 0], "
                               "[64, 128, 1], [128, 192, 2], [192, 256, 3]]},",
                               k, k);
    snprintf(g + at, sizeof g - at,
             "\"maj\": {\"op\": \"local.majority\", \"args\": [{\"ref\": \"b0\"}, {\"ref\": "
             "\"b1\"}, {\"ref\": \"b2\"}, {\"ref\": \"b3\"}, {\"ref\": \"b4\"}]},"
             "\"out\": {\"op\": \"io.save\", \"path\": \"maj.tif\", \"args\": [{\"ref\": "
             "\"maj\"}]}}, \"result\": \"out\"}");
    pg_result *r = run_ok(c, g);
    pg_result_destroy(&r);
    pg_client_destroy(&c);
    char p[400];
    snprintf(p, sizeof p, "%s/maj.tif", d->root);
    char *bytes = slurp(p, len);
    ck_assert_ptr_nonnull(bytes);
    if (!keep) daemon_finish(d);
    return bytes;
}

START_TEST(test_majority5)
{
    th_daemon d, d2;
    size_t len = 0, len2 = 0;
    char *bytes = majority_run("16", &len, &d, 1);

    img in[5], o;
    for (int k = 0; k < 5; k++) {
        char name[32];
        snprintf(name, sizeof name, "r%d.tif", k);
        img_read(&in[k], d.root, name);
    }
    img_read(&o, d.root, "maj.tif");
    /* buckets are u8 (values 0..3), nodata 255 where the input had one
     * (r1, r3): majority's type u8, nodata from b0, which has none and no
     * float: but b1 has -> the output has nodata, b0 has none -> the type's
     * default 255 */
    ck_assert_int_eq(o.type, GDT_Byte);
    ck_assert(o.has_nodata && o.nodata == 255);
    size_t n = img_cells(&o);
    double *want = malloc(n * sizeof(double));
    ck_assert_ptr_nonnull(want);
    size_t ties = 0;
    for (size_t i = 0; i < n; i++) {
        int cnt[4] = {0};
        for (int k = 0; k < 5; k++) {
            double v = in[k].v[i];
            if (in[k].has_nodata && v == in[k].nodata) continue;
            cnt[(int)v / 64]++;
        }
        int best = -1;
        for (int b = 0; b < 4; b++) /* ascending: ties keep the smallest */
            if (cnt[b] > 0 && (best < 0 || cnt[b] > cnt[best])) best = b;
        for (int b = 0; b < 4; b++)
            if (best >= 0 && b != best && cnt[b] == cnt[best]) {
                ties++;
                break;
            }
        want[i] = best < 0 ? 255 : best;
    }
    ck_assert_msg(ties > 1000, "only %zu cells with a tie", ties);
    assert_cells(o.v, want, n, "majority of 5");
    free(want);
    for (int k = 0; k < 5; k++)
        img_free(&in[k]);
    img_free(&o);
    daemon_finish(&d);

    /* tiles of 8192: the same bytes */
    char *bytes2 = majority_run("8192", &len2, &d2, 0);
    ck_assert_msg(len == len2 && memcmp(bytes, bytes2, len) == 0,
                  "16x16 tiles and 8192x8192 tiles give different files (%zu vs %zu bytes)", len,
                  len2);
    free(bytes);
    free(bytes2);
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    GDALAllRegister();
    snprintf(g_base, sizeof g_base, "/tmp/pg-it-lclass-XXXXXX");
    if (mkdtemp(g_base) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    Suite *s = suite_create("it_local_class");
    TCase *tc = tcase_create("daemon");
    tcase_set_timeout(tc, 90);
    tcase_add_test(tc, test_ndvi);
    tcase_add_test(tc, test_reclassify_chain);
    tcase_add_test(tc, test_majority5);
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
