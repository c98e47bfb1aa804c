/* Integration suite for ops/local_math.c: graphs chaining local functions,
 * comparisons, logic, bitwise ops and where, run by real pergolad processes
 * (tests/harness.c) through the client library.
 *
 * Inputs are made by pergola-mkraster and read back with GDAL's C API; the
 * expected cells are computed here in plain C from those reads, following
 * the rules at the top of ops/local_math.c, and every output cell is
 * compared: exactly, except the f32 results of atan2 (f32 libm, compared
 * within 2 ulp of f32 at the double reference). One graph is also compared
 * with gdal_calc.py (/usr/bin/python3 /usr/bin/gdal_calc.py) run on the same
 * input files: exactly (numpy's float32 sqrt is correctly rounded, as is
 * ours; comparisons are exact).
 *
 * Every test starts its own daemon(s) and stops them with th_stop(),
 * asserting a clean exit. Every wait is bounded.
 */
#include "harness.h"
#include "pergola/client.h"

#include <check.h>
#include <errno.h>
#include <float.h>
#include <gdal.h>
#include <math.h>
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

/* ---- daemons ---- */

static void root_init(th_daemon *d)
{
    memset(d, 0, sizeof *d);
    snprintf(d->root, sizeof d->root, "%s/rXXXXXX", g_base);
    ck_assert_msg(mkdtemp(d->root) != NULL, "mkdtemp: %s", strerror(errno));
}

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
}

static void mk(const char *root, const char *name, const char *args)
{
    int rc = th_mkraster(root, name, args);
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

/* ---- rasters read with GDAL ---- */

typedef struct img {
    int w, h, bands;
    GDALDataType type;
    int has_nodata;
    double nodata;
    double *v; /* bands * h * w, as doubles (exact for every cell type) */
} img;

static void img_free(img *im)
{
    free(im->v);
    memset(im, 0, sizeof *im);
}

static void img_read(img *im, const char *root, const char *rel)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    GDALDatasetH ds = GDALOpen(p, GA_ReadOnly);
    ck_assert_msg(ds != NULL, "GDAL cannot open %s", p);
    memset(im, 0, sizeof *im);
    im->w = GDALGetRasterXSize(ds);
    im->h = GDALGetRasterYSize(ds);
    im->bands = GDALGetRasterCount(ds);
    GDALRasterBandH b1 = GDALGetRasterBand(ds, 1);
    im->type = GDALGetRasterDataType(b1);
    im->nodata = GDALGetRasterNoDataValue(b1, &im->has_nodata);
    size_t n = (size_t)im->w * (size_t)im->h * (size_t)im->bands;
    im->v = malloc(n * sizeof(double) + 8);
    ck_assert(im->v != NULL);
    CPLErr e = GDALDatasetRasterIO(ds, GF_Read, 0, 0, im->w, im->h, im->v, im->w, im->h,
                                   GDT_Float64, im->bands, NULL, 0, 0, 0);
    ck_assert_msg(e == CE_None, "reading %s failed", p);
    GDALClose(ds);
}

static size_t img_cells(const img *im)
{
    return (size_t)im->w * (size_t)im->h * (size_t)im->bands;
}

/* The cells of a raster result item, as doubles. */
static double *raster_cells(const pg_raster *ra)
{
    size_t n = (size_t)ra->width * (size_t)ra->height * (size_t)ra->bands;
    size_t cs = pg_cell_size(ra->type);
    ck_assert_msg(cs > 0, "raster item of unknown type '%s'", ra->type);
    ck_assert_msg(ra->length == n * cs, "raster item: length %zu, want %zu", ra->length, n * cs);
    double *v = malloc(n * sizeof(double) + 8);
    ck_assert(v != NULL);
    const unsigned char *p = ra->data;
    for (size_t i = 0; i < n; i++) {
        const unsigned char *c = p + i * cs;
        if (strcmp(ra->type, "f32") == 0) {
            float f;
            memcpy(&f, c, 4);
            v[i] = f;
        } else if (strcmp(ra->type, "f64") == 0) {
            memcpy(&v[i], c, 8);
        } else if (strcmp(ra->type, "u8") == 0) {
            v[i] = c[0];
        } else if (strcmp(ra->type, "i8") == 0) {
            v[i] = (int8_t)c[0];
        } else if (strcmp(ra->type, "u16") == 0) {
            uint16_t x;
            memcpy(&x, c, 2);
            v[i] = x;
        } else if (strcmp(ra->type, "i16") == 0) {
            int16_t x;
            memcpy(&x, c, 2);
            v[i] = x;
        } else if (strcmp(ra->type, "u32") == 0) {
            uint32_t x;
            memcpy(&x, c, 4);
            v[i] = x;
        } else {
            int32_t x;
            memcpy(&x, c, 4);
            v[i] = x;
        }
    }
    return v;
}

/* Compares N cells (NaN equals NaN; TOL > 0: |got - want| <= TOL * ulp_f32
 * (want)); reports the first mismatch and how many there are. */
static double ulp_f32(double x)
{
    x = fabs(x);
    if (x < 0x1p-126) return 0x1p-149;
    int e;
    frexp(x, &e);
    return ldexp(1.0, e - 24);
}

static void assert_cells(const double *got, const double *want, size_t n, double tol,
                         const char *what)
{
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < n; i++) {
        int eq = got[i] == want[i] || (isnan(got[i]) && isnan(want[i]));
        if (!eq && tol > 0 && isfinite(want[i]))
            eq = fabs(got[i] - want[i]) <= tol * ulp_f32(want[i]);
        if (!eq && bad++ == 0) first = i;
    }
    ck_assert_msg(bad == 0,
                  "%s: %zu of %zu cells differ; first at index %zu: got %.17g, want %.17g", what,
                  bad, n, first, bad ? got[first] : 0.0, bad ? want[first] : 0.0);
}

static double *dalloc(size_t n)
{
    double *p = calloc(n ? n : 1, sizeof *p);
    ck_assert(p != NULL);
    return p;
}

/* ---- 1. where(gt(a, 500), sqrt(a), 0), saved; tiles of 16 and 256 ---- */

static const char *const where_graph =
    "{\"nodes\": {"
    " \"a\": {\"op\": \"io.load\", \"path\": \"a.tif\"},"
    " \"w\": {\"op\": \"local.where\", \"args\": ["
    "   {\"op\": \"local.gt\", \"args\": [{\"ref\": \"a\"}, 500]},"
    "   {\"op\": \"local.sqrt\", \"args\": [{\"ref\": \"a\"}]}, 0]},"
    " \"out\": {\"op\": \"io.save\", \"path\": \"out/w.tif\", \"args\": [{\"ref\": \"w\"}]}},"
    " \"result\": \"out\"}";

START_TEST(test_where_sqrt)
{
    /* f32 in [0, 1000), nodata -9999 on every 13th cell; 1000 x 700 so that
     * the last tile column and row are partial */
    for (int pass = 0; pass < 2; pass++) {
        th_daemon d;
        root_init(&d);
        mk(d.root, "a.tif",
           "--size 1000x700 --type f32 --pattern random --seed 5 --nodata -9999 "
           "--nodata-every 13");
        const char *small[] = {"--tile-size", "16", NULL};
        daemon_start(&d, pass ? small : NULL);
        pg_client *c = connect_client(d.address);
        pg_result *r = run_ok(c, where_graph);
        ck_assert_str_eq(pg_result_path(r, 0), "out/w.tif");
        ck_assert_str_eq(json_string_value(json_object_get(pg_result_item(r, 0), "type")), "f32");
        pg_result_destroy(&r);

        img a, o;
        img_read(&a, d.root, "a.tif");
        img_read(&o, d.root, "out/w.tif");
        ck_assert(o.w == 1000 && o.h == 700 && o.type == GDT_Float32);
        /* the sqrt branch carries a's nodata; where takes its branch a's */
        ck_assert_msg(o.has_nodata && o.nodata == -9999, "nodata %d %g", o.has_nodata, o.nodata);
        size_t n = img_cells(&a);
        double *want = dalloc(n);
        size_t nd = 0, big = 0;
        for (size_t i = 0; i < n; i++) {
            double v = a.v[i];
            if (v == -9999) {
                want[i] = -9999;
                nd++;
            } else if (v > 500) {
                want[i] = (double)sqrtf((float)v); /* IEEE sqrt: correctly rounded */
                big++;
            } else {
                want[i] = 0;
            }
        }
        ck_assert(nd > 50000 && big > 250000);
        assert_cells(o.v, want, n, 0, pass ? "where (tiles of 16)" : "where (tiles of 256)");
        free(want);
        img_free(&a);
        img_free(&o);
        pg_client_destroy(&c);
        daemon_finish(&d);
        th_cleanup(&d);
    }
}
END_TEST

/* ---- 2. many ops over integer and float inputs, returned as raster bytes ---- */

typedef struct outcase {
    const char *name;
    const char *type;
    int has_nodata;
    double nodata;
    double tol; /* ulps of f32, 0: exact */
} outcase;

START_TEST(test_many_ops)
{
    th_daemon d;
    root_init(&d);
    mk(d.root, "A.tif", "--size 300x200 --type u8 --pattern random --seed 11");
    mk(d.root, "B.tif",
       "--size 300x200 --type i16 --pattern random --seed 12 --nodata -32768 "
       "--nodata-every 17");
    mk(d.root, "F.tif", "--size 300x200 --type f64 --pattern random --seed 13");
    mk(d.root, "G.tif", "--size 300x200 --type f64 --pattern gradient");
    daemon_start(&d, NULL);
    pg_client *c = connect_client(d.address);

    const char *graph =
        "{\"nodes\": {"
        " \"A\": {\"op\": \"io.load\", \"path\": \"A.tif\"},"
        " \"B\": {\"op\": \"io.load\", \"path\": \"B.tif\"},"
        " \"F\": {\"op\": \"io.load\", \"path\": \"F.tif\"},"
        " \"G\": {\"op\": \"io.load\", \"path\": \"G.tif\"},"
        " \"r1\": {\"op\": \"local.min\", \"args\": [{\"ref\": \"A\"}, {\"ref\": \"B\"}, 100]},"
        " \"r2\": {\"op\": \"local.abs\", \"args\": [{\"ref\": \"B\"}]},"
        " \"r3\": {\"op\": \"local.and\", \"args\": ["
        "    {\"op\": \"local.gt\", \"args\": [{\"ref\": \"A\"}, 128]},"
        "    {\"op\": \"local.lt\", \"args\": [{\"ref\": \"B\"}, 0]}]},"
        " \"r4\": {\"op\": \"local.bitand\", \"args\": [{\"ref\": \"A\"}, 15]},"
        " \"r5\": {\"op\": \"local.shr\", \"args\": [{\"ref\": \"B\"}, 4]},"
        " \"r6\": {\"op\": \"local.round\", \"type\": \"i32\", \"args\": ["
        "    {\"op\": \"local.mean\", \"args\": [{\"ref\": \"A\"}, {\"ref\": \"B\"}]}]},"
        " \"r7\": {\"op\": \"local.defined\", \"args\": [{\"ref\": \"B\"}]},"
        " \"r8\": {\"op\": \"local.log10\", \"args\": [{\"ref\": \"G\"}]},"
        " \"r9\": {\"op\": \"local.where\", \"args\": ["
        "    {\"op\": \"local.eq\", \"args\": [{\"op\": \"local.bitand\", \"args\": [{\"ref\": "
        "\"A\"}, 1]}, 1]},"
        "    {\"ref\": \"A\"}, {\"op\": \"local.negate\", \"args\": [{\"ref\": \"A\"}]}]},"
        " \"r10\": {\"op\": \"local.pow\", \"args\": [{\"ref\": \"F\"}, 0.5]},"
        " \"r11\": {\"op\": \"local.atan2\", \"args\": [{\"ref\": \"B\"}, {\"ref\": \"A\"}]},"
        " \"r12\": {\"op\": \"local.floor\", \"type\": \"u16\", \"args\": ["
        "    {\"op\": \"local.exp\", \"args\": [{\"op\": \"local.divide\", \"args\": [{\"ref\": "
        "\"F\"}, 100]}]}]},"
        " \"r13\": {\"op\": \"local.xor\", \"args\": [{\"op\": \"local.not\", \"args\": [{\"ref\": "
        "\"A\"}]}, {\"op\": \"local.undefined\", \"args\": [{\"ref\": \"B\"}]}]}"
        "}, \"result\": [\"r1\", \"r2\", \"r3\", \"r4\", \"r5\", \"r6\", \"r7\", \"r8\", \"r9\", "
        "\"r10\", \"r11\", \"r12\", \"r13\"]}";
    static const outcase oc[] = {
        {"r1 min(A, B, 100)", "i16", 1, -32768, 0},
        {"r2 abs(B)", "i16", 1, -32768, 0},
        {"r3 and(gt(A, 128), lt(B, 0))", "u8", 1, 255, 0},
        {"r4 bitand(A, 15)", "u8", 0, 0, 0},
        {"r5 shr(B, 4)", "i16", 1, -32768, 0},
        {"r6 round(mean(A, B)) as i32", "i32", 1, -2147483648.0, 0},
        {"r7 defined(B)", "u8", 0, 0, 0},
        {"r8 log10(G)", "f64", 1, NAN, 0},
        {"r9 where(eq(bitand(A, 1), 1), A, negate(A))", "i16", 0, 0, 0},
        {"r10 pow(F, 0.5)", "f64", 1, NAN, 0},
        {"r11 atan2(B, A)", "f32", 1, -32768, 2},
        {"r12 floor(exp(F / 100)) as u16", "u16", 1, 65535, 0},
        {"r13 xor(not(A), undefined(B))", "u8", 0, 0, 0},
    };
    const size_t nout = sizeof oc / sizeof oc[0];
    pg_result *r = run_ok(c, graph);
    ck_assert_uint_eq(pg_result_count(r), nout);

    img A, B, F, G;
    img_read(&A, d.root, "A.tif");
    img_read(&B, d.root, "B.tif");
    img_read(&F, d.root, "F.tif");
    img_read(&G, d.root, "G.tif");
    ck_assert(B.has_nodata && B.nodata == -32768);
    const size_t n = img_cells(&A);
    double *want = dalloc(n);
    for (size_t k = 0; k < nout; k++) {
        const pg_raster *ra = pg_result_raster(r, k);
        ck_assert_msg(ra != NULL, "%s: not a raster item", oc[k].name);
        ck_assert_msg(ra->width == 300 && ra->height == 200 && ra->bands == 1, "%s: size",
                      oc[k].name);
        ck_assert_msg(strcmp(ra->type, oc[k].type) == 0, "%s: type %s, want %s", oc[k].name,
                      ra->type, oc[k].type);
        ck_assert_msg(ra->has_nodata == oc[k].has_nodata, "%s: has_nodata %d", oc[k].name,
                      ra->has_nodata);
        if (oc[k].has_nodata)
            ck_assert_msg(ra->nodata == oc[k].nodata || (isnan(ra->nodata) && isnan(oc[k].nodata)),
                          "%s: nodata %g, want %g", oc[k].name, ra->nodata, oc[k].nodata);
        const double ND = oc[k].nodata;
        for (size_t i = 0; i < n; i++) {
            const double a = A.v[i], b = B.v[i], f = F.v[i], g = G.v[i];
            const int bnd = b == -32768;
            double w = 0;
            switch (k) {
            case 0:
                w = bnd ? ND : fmin(fmin(a, b), 100);
                break;
            case 1:
                w = bnd ? ND : fabs(b); /* abs(-32768) is nodata too: b is then nodata */
                break;
            case 2:
                w = bnd ? ND : (a > 128 && b < 0);
                break;
            case 3:
                w = (double)((int)a & 15);
                break;
            case 4:
                w = bnd ? ND : floor(b / 16);
                break;
            case 5:
                w = bnd ? ND : round((double)(float)((a + b) / 2));
                break;
            case 6:
                w = !bnd;
                break;
            case 7:
                w = g == 0 ? ND : log10(g);
                break;
            case 8:
                w = ((int)a & 1) ? a : -a;
                break;
            case 9:
                w = pow(f, 0.5);
                break;
            case 10:
                w = bnd ? ND : atan2(b, a);
                break;
            case 11: {
                /* divide gives f64 (F is f64), exp f64, floor f64, then u16 */
                double e = floor(exp(f / 100));
                w = !isfinite(e) ? ND : e > 65535 ? 65535 : e;
                break;
            }
            default:
                w = (double)((a == 0) ^ bnd);
                break;
            }
            want[i] = w;
        }
        double *got = raster_cells(ra);
        assert_cells(got, want, n, oc[k].tol, oc[k].name);
        free(got);
    }
    free(want);
    img_free(&A);
    img_free(&B);
    img_free(&F);
    img_free(&G);
    pg_result_destroy(&r);
    pg_client_destroy(&c);
    daemon_finish(&d);
    th_cleanup(&d);
}
END_TEST

/* ---- 3. the same as gdal_calc.py ---- */

static int run_cmd(const char *cmd)
{
    int st = system(cmd);
    return st == -1 ? -1 : WEXITSTATUS(st);
}

START_TEST(test_gdal_calc)
{
    if (access("/usr/bin/gdal_calc.py", R_OK) != 0) {
        fprintf(stderr, "gdal_calc.py not installed: test skipped\n");
        return;
    }
    th_daemon d;
    root_init(&d);
    mk(d.root, "a.tif", "--size 500x300 --type f32 --pattern random --seed 21");
    mk(d.root, "b.tif", "--size 500x300 --type i16 --pattern random --seed 22");
    daemon_start(&d, NULL);
    pg_client *c = connect_client(d.address);
    pg_result *r = run_ok(
        c, "{\"nodes\": {\"a\": {\"op\": \"io.load\", \"path\": \"a.tif\"},"
           " \"b\": {\"op\": \"io.load\", \"path\": \"b.tif\"},"
           " \"o1\": {\"op\": \"io.save\", \"path\": \"ours1.tif\", \"args\": [{\"op\": "
           "\"local.where\", \"args\": [{\"op\": \"local.gt\", \"args\": [{\"ref\": \"a\"}, 500]},"
           " {\"op\": \"local.sqrt\", \"args\": [{\"ref\": \"a\"}]}, 0]}]},"
           " \"o2\": {\"op\": \"io.save\", \"path\": \"ours2.tif\", \"args\": [{\"op\": "
           "\"local.and\", \"args\": [{\"op\": \"local.ge\", \"args\": [{\"ref\": \"a\"}, 250]}, "
           "{\"op\": \"local.lt\", \"args\": [{\"ref\": \"b\"}, 0]}]}]}},"
           " \"result\": [\"o1\", \"o2\"]}");
    pg_result_destroy(&r);

    char cmd[2048];
    snprintf(cmd, sizeof cmd,
             "cd '%s' && /usr/bin/python3 /usr/bin/gdal_calc.py --quiet --overwrite -A a.tif "
             "--outfile=calc1.tif --type=Float32 --calc='numpy.where(A > 500, numpy.sqrt(A), 0)' "
             ">calc.log 2>&1 && /usr/bin/python3 /usr/bin/gdal_calc.py --quiet --overwrite "
             "-A a.tif -B b.tif --outfile=calc2.tif --type=Byte --calc='(A >= 250) & (B < 0)' "
             ">>calc.log 2>&1",
             d.root);
    int rc = run_cmd(cmd);
    ck_assert_msg(rc == 0, "gdal_calc.py failed (exit %d), see %s/calc.log", rc, d.root);

    for (int k = 0; k < 2; k++) {
        img ours, calc;
        img_read(&ours, d.root, k ? "ours2.tif" : "ours1.tif");
        img_read(&calc, d.root, k ? "calc2.tif" : "calc1.tif");
        ck_assert(ours.w == calc.w && ours.h == calc.h);
        ck_assert_int_eq(ours.type, k ? GDT_Byte : GDT_Float32);
        ck_assert_int_eq(calc.type, k ? GDT_Byte : GDT_Float32);
        size_t n = img_cells(&ours), pos = 0;
        for (size_t i = 0; i < n; i++)
            pos += calc.v[i] != 0;
        ck_assert_msg(pos > n / 10 && pos < n - n / 10, "calc%d: %zu of %zu non-zero", k + 1, pos,
                      n);
        assert_cells(ours.v, calc.v, n, 0, k ? "and(ge, lt) vs gdal_calc" : "where vs gdal_calc");
        img_free(&ours);
        img_free(&calc);
    }
    pg_client_destroy(&c);
    daemon_finish(&d);
    th_cleanup(&d);
}
END_TEST

/* ---- 4. errors name their node ---- */

START_TEST(test_errors)
{
    th_daemon d;
    root_init(&d);
    mk(d.root, "f.tif", "--size 64x64 --type f32 --pattern random");
    mk(d.root, "u.tif", "--size 64x64 --type u8 --pattern random");
    mk(d.root, "v.tif", "--size 65x64 --type u8 --pattern random");
    daemon_start(&d, NULL);
    pg_client *c = connect_client(d.address);
    static const struct {
        const char *graph, *code, *needle;
    } cases[] = {
        {"{\"nodes\": {\"f\": {\"op\": \"io.load\", \"path\": \"f.tif\"}, \"x\": {\"op\": "
         "\"local.bitand\", \"args\": [{\"ref\": \"f\"}, 3]}}, \"result\": \"x\"}",
         "bad_type", "integer rasters only"},
        {"{\"nodes\": {\"u\": {\"op\": \"io.load\", \"path\": \"u.tif\"}, \"x\": {\"op\": "
         "\"local.shl\", \"args\": [{\"ref\": \"u\"}, 40]}}, \"result\": \"x\"}",
         "bad_param", "0..31"},
        {"{\"nodes\": {\"u\": {\"op\": \"io.load\", \"path\": \"u.tif\"}, \"v\": {\"op\": "
         "\"io.load\", \"path\": \"v.tif\"}, \"x\": {\"op\": \"local.where\", \"args\": [{\"ref\": "
         "\"u\"}, {\"ref\": \"v\"}, 0]}}, \"result\": \"x\"}",
         "grid_mismatch", "same grid"},
        {"{\"nodes\": {\"u\": {\"op\": \"io.load\", \"path\": \"u.tif\"}, \"x\": {\"op\": "
         "\"local.sqrt\", \"args\": [{\"ref\": \"u\"}], \"type\": \"q8\"}}, \"result\": \"x\"}",
         "bad_param", "type"},
        {"{\"nodes\": {\"x\": {\"op\": \"local.max\", \"args\": [1, 2]}}, \"result\": \"x\"}",
         "bad_type", "raster"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        pg_run_opts o = {.timeout_ms = SHORT_MS};
        pg_result *r = NULL;
        pg_error err = {0};
        int rc = pg_client_run(c, cases[i].graph, &o, &r, &err);
        ck_assert_msg(rc != 0, "case %zu: the run succeeded", i);
        ck_assert_msg(strcmp(pg_err_name(rc), cases[i].code) == 0, "case %zu: %s (%s), want %s", i,
                      pg_err_name(rc), err.message, cases[i].code);
        ck_assert_str_eq(err.node, "x");
        ck_assert_msg(strstr(err.message, cases[i].needle) != NULL, "case %zu: '%s' lacks '%s'", i,
                      err.message, cases[i].needle);
    }
    pg_client_destroy(&c);
    daemon_finish(&d);
    th_cleanup(&d);
}
END_TEST

static Suite *it_suite(void)
{
    Suite *s = suite_create("it_local_math");
    TCase *tc = tcase_create("graphs");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_where_sqrt);
    tcase_add_test(tc, test_many_ops);
    tcase_add_test(tc, test_gdal_calc);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    GDALAllRegister();
    snprintf(g_base, sizeof g_base, "/tmp/pg-it-lmath-XXXXXX");
    if (mkdtemp(g_base) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    SRunner *sr = srunner_create(it_suite());
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
