/* Integration suite for fusion (src/fuse.h): the same graphs run on a
 * daemon with `--fusion on` and one with `--fusion off` must give the same
 * bytes: saved files compared whole, raster answers cell for cell, values
 * as JSON. The graphs chain per-cell ops over mixed cell types (promotion,
 * integer division, comparisons feeding where, nodata, NaN from log of
 * negatives), numbers as args, multi-band inputs (not fused: must stay
 * right), an intermediate that is also a result, an intermediate used
 * twice, and fused chains under a focal op, global.stats and io.save. The
 * fused daemon logs at debug level how many groups each job made, and the
 * tests check that fusion did happen where it should.
 *
 * The issue's expression where(A > 0.5, (A + B) * C - D / 2, 0) (and the
 * same with A > 500, so that both branches occur) is also checked against
 * an independent computation: the inputs read with GDAL, each step done
 * here in float as f32 arithmetic gives it, nodata cells of A -> nodata.
 *
 * Daemons use small tiles (64, or full-width strips of a striped input) so
 * that a run has many tiles and edge tiles. Every wait is bounded.
 */
#include "harness.h"
#include "pergola/client.h"

#include <check.h>
#include <errno.h>
#include <gdal.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char g_base[128];

#define RUN_TIMEOUT_MS 60000
#define SHORT_MS 10000

/* ---- two daemons, fusion on and off, with the same inputs ---- */

typedef struct pair {
    th_daemon on, off;
    pg_client *con, *coff;
} pair;

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

static pg_client *connect_client(const char *address)
{
    pg_error err = {0};
    pg_client *c = pg_client_new(address, SHORT_MS, &err);
    ck_assert_msg(c != NULL, "cannot connect to %s: %s", address, err.message);
    return c;
}

static void pair_start(pair *p, const char *tile)
{
    memset(p, 0, sizeof *p);
    root_init(&p->on);
    root_init(&p->off);
    /* no result cache: every run computes */
    const char *on[] = {"--fusion", "on",         "--tile-size", tile, "--log-level",
                        "debug",    "--cache-mb", "0",           NULL};
    const char *off[] = {"--fusion", "off", "--tile-size", tile, "--cache-mb", "0", NULL};
    int rc = th_start(&p->on, on);
    if (rc) dump_log(&p->on);
    ck_assert_msg(rc == 0, "pergolad --fusion on did not start");
    rc = th_start(&p->off, off);
    if (rc) dump_log(&p->off);
    ck_assert_msg(rc == 0, "pergolad --fusion off did not start");
    p->con = connect_client(p->on.address);
    p->coff = connect_client(p->off.address);
}

static void pair_stop(pair *p)
{
    pg_client_destroy(&p->con);
    pg_client_destroy(&p->coff);
    int a = th_stop(&p->on), b = th_stop(&p->off);
    if (a) dump_log(&p->on);
    if (b) dump_log(&p->off);
    ck_assert_msg(a == 0 && b == 0, "pergolad exit status %d (on), %d (off)", a, b);
}

/* The same input in both roots (pergola-mkraster is deterministic). */
static void mk(pair *p, const char *name, const char *args)
{
    ck_assert_msg(th_mkraster(p->on.root, name, args) == 0, "mkraster %s %s", name, args);
    ck_assert_msg(th_mkraster(p->off.root, name, args) == 0, "mkraster %s %s", name, args);
}

static pg_result *run_ok(pg_client *c, const char *graph, const char *which)
{
    pg_run_opts o = {.timeout_ms = RUN_TIMEOUT_MS};
    pg_result *r = NULL;
    pg_error err = {0};
    int rc = pg_client_run(c, graph, &o, &r, &err);
    ck_assert_msg(rc == 0, "run (fusion %s) failed: %s at node '%s': %s\ngraph: %s", which,
                  pg_err_name(rc), err.node, err.message, graph);
    return r;
}

static unsigned char *slurp(const char *root, const char *rel, size_t *len)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "cannot open %s", path);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc((size_t)n + 1);
    ck_assert(b != NULL);
    ck_assert(fread(b, 1, (size_t)n, f) == (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* The number in the fused daemon's last "N fusion groups" log line. */
static int last_groups(const pair *p)
{
    FILE *f = fopen(p->on.log, "r");
    ck_assert_msg(f != NULL, "no log %s", p->on.log);
    char line[1024];
    int groups = -1;
    while (fgets(line, sizeof line, f)) {
        const char *s = strstr(line, " fusion groups");
        if (s == NULL) continue;
        while (s > line && s[-1] >= '0' && s[-1] <= '9')
            s--;
        groups = atoi(s);
    }
    fclose(f);
    return groups;
}

/* Runs GRAPH on both daemons; every result item must be the same bytes.
 * Expects the fused run to have made GROUPS groups (-1: any number >= 1).
 * Returns the fused daemon's result (the caller destroys it). */
static pg_result *same(pair *p, const char *graph, int groups)
{
    pg_result *ron = run_ok(p->con, graph, "on");
    pg_result *roff = run_ok(p->coff, graph, "off");
    int g = last_groups(p);
    if (groups < 0)
        ck_assert_msg(g >= 1, "the fused daemon made no fusion group for %s", graph);
    else
        ck_assert_msg(g == groups, "the fused daemon made %d fusion groups, expected %d, for %s", g,
                      groups, graph);
    size_t n = pg_result_count(ron);
    ck_assert_uint_eq(n, pg_result_count(roff));
    for (size_t i = 0; i < n; i++) {
        pg_item_kind k = pg_result_item_kind(ron, i);
        ck_assert_int_eq(k, pg_result_item_kind(roff, i));
        if (k == PG_ITEM_PATH) {
            const char *rel = pg_result_path(ron, i);
            ck_assert_str_eq(rel, pg_result_path(roff, i));
            size_t la, lb;
            unsigned char *a = slurp(p->on.root, rel, &la), *b = slurp(p->off.root, rel, &lb);
            ck_assert_msg(la == lb && memcmp(a, b, la) == 0,
                          "%s differs between fusion on and off (%zu vs %zu bytes)", rel, la, lb);
            free(a);
            free(b);
        } else if (k == PG_ITEM_RASTER) {
            const pg_raster *a = pg_result_raster(ron, i), *b = pg_result_raster(roff, i);
            ck_assert_str_eq(a->type, b->type);
            ck_assert_int_eq(a->has_nodata, b->has_nodata);
            if (a->has_nodata)
                ck_assert(a->nodata == b->nodata || (isnan(a->nodata) && isnan(b->nodata)));
            ck_assert_uint_eq(a->length, b->length);
            ck_assert_msg(memcmp(a->data, b->data, a->length) == 0,
                          "raster item %zu differs between fusion on and off", i);
        } else {
            ck_assert_msg(json_equal(pg_result_item(ron, i), pg_result_item(roff, i)),
                          "value item %zu differs between fusion on and off", i);
        }
    }
    pg_result_destroy(&roff);
    return ron;
}

/* ---- GDAL reads ---- */

static float *read_f32(const char *root, const char *rel, int *w, int *h)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    GDALDatasetH ds = GDALOpen(path, GA_ReadOnly);
    ck_assert_msg(ds != NULL, "GDAL cannot open %s", path);
    *w = GDALGetRasterXSize(ds);
    *h = GDALGetRasterYSize(ds);
    float *v = malloc(sizeof *v * (size_t)*w * (size_t)*h);
    ck_assert(v != NULL);
    GDALRasterBandH b = GDALGetRasterBand(ds, 1);
    ck_assert(GDALGetRasterDataType(b) == GDT_Float32);
    ck_assert(GDALRasterIO(b, GF_Read, 0, 0, *w, *h, v, *w, *h, GDT_Float32, 0, 0) == CE_None);
    GDALClose(ds);
    return v;
}

/* ---- the graphs ---- */

#define L(N, F) "\"" N "\": {\"op\": \"io.load\", \"path\": \"" F "\"}"
#define REF(N) "{\"ref\": \"" N "\"}"

/* where(a > T, (a + b) * c - d / 2, 0) */
#define WHERE_EXPR(T)                                                                              \
    "\"ab\": {\"op\": \"local.add\", \"args\": [" REF("a") ", " REF(                               \
        "b") "]},"                                                                                 \
             "\"abc\": {\"op\": \"local.multiply\", \"args\": [" REF("ab") ", " REF(               \
                 "c") "]},"                                                                        \
                      "\"d2\": {\"op\": \"local.divide\", \"args\": [" REF(                        \
                          "d") ", 2]},"                                                            \
                               "\"e\": {\"op\": \"local.subtract\", \"args\": [" REF(              \
                                   "abc") ", " REF("d2") "]},"                                     \
                                                         "\"cond\": {\"op\": \"local.gt\", "       \
                                                         "\"args\": [" REF(                        \
                                                             "a") ", " T "]},"                     \
                                                                  "\"w\": {\"op\": "               \
                                                                  "\"local.where\", \"args\": "    \
                                                                  "[" REF("cond") ", " REF(        \
                                                                      "e") ", 0]}"
#define ABCD L("a", "a.tif") ", " L("b", "b.tif") ", " L("c", "c.tif") ", " L("d", "d.tif")

static void make_abcd(pair *p, const char *size, const char *extra)
{
    char args[256];
    snprintf(args, sizeof args,
             "--size %s --type f32 --pattern random --seed 11 --nodata -9999 --nodata-every 7 %s",
             size, extra);
    mk(p, "a.tif", args);
    for (int i = 0; i < 3; i++) {
        snprintf(args, sizeof args, "--size %s --type f32 --pattern random --seed %d %s", size,
                 20 + i, extra);
        mk(p, i == 0 ? "b.tif" : i == 1 ? "c.tif" : "d.tif", args);
    }
}

/* The expected where-expression, computed here in f32 from GDAL reads, and
 * compared with every cell of OUT (the fused daemon's file). */
static void check_where(const pair *p, const char *out, float t)
{
    int w, h, w2, h2;
    float *a = read_f32(p->on.root, "a.tif", &w, &h);
    float *b = read_f32(p->on.root, "b.tif", &w2, &h2);
    float *c = read_f32(p->on.root, "c.tif", &w2, &h2);
    float *d = read_f32(p->on.root, "d.tif", &w2, &h2);
    float *o = read_f32(p->on.root, out, &w2, &h2);
    ck_assert(w == w2 && h == h2);
    size_t n = (size_t)w * (size_t)h, bad = 0, first = 0, taken = 0, zero = 0, nd = 0;
    for (size_t i = 0; i < n; i++) {
        float want;
        if (a[i] == -9999.0f) {
            want = -9999.0f; /* cond is nodata: the output's nodata (e's, from a) */
            nd++;
        } else if (a[i] > t) {
            float ab = a[i] + b[i];
            float abc = ab * c[i];
            float d2 = d[i] / 2.0f;
            want = abc - d2;
            taken++;
        } else {
            want = 0.0f;
            zero++;
        }
        if (memcmp(&want, &o[i], sizeof want) != 0 && bad++ == 0) first = i;
    }
    ck_assert_msg(bad == 0, "%s: %zu of %zu cells differ from f32 arithmetic, first at %zu: %.9g",
                  out, bad, n, first, (double)o[first]);
    ck_assert_msg(taken > 0 && nd > 0 && (t < 1 || zero > 0), "weak test: %zu/%zu/%zu", taken, zero,
                  nd);
    free(a);
    free(b);
    free(c);
    free(d);
    free(o);
}

START_TEST(test_where_issue)
{
    pair p;
    pair_start(&p, "64");
    make_abcd(&p, "300x200", "");
    pg_result *r =
        same(&p,
             "{\"nodes\": {" ABCD ", " WHERE_EXPR(
                 "0.5") ","
                        "\"out\": {\"op\": \"io.save\", \"path\": \"w.tif\", \"args\": [" REF(
                            "w") "]}}, \"result\": \"out\"}",
             1);
    pg_result_destroy(&r);
    check_where(&p, "w.tif", 0.5f);
    r = same(&p,
             "{\"nodes\": {" ABCD ", " WHERE_EXPR(
                 "500") ","
                        "\"out\": {\"op\": \"io.save\", \"path\": \"w500.tif\", \"args\": [" REF(
                            "w") "]}}, \"result\": \"out\"}",
             1);
    pg_result_destroy(&r);
    check_where(&p, "w500.tif", 500.0f);
    pair_stop(&p);
}
END_TEST

/* Full-width strips of a striped input: tiles of many rows, strips of a
 * few (and tiles whose width is not a multiple of anything). */
START_TEST(test_where_striped)
{
    pair p;
    pair_start(&p, "256"); /* 65-row tiles: 9 strips of 8 rows, the last short */
    make_abcd(&p, "1001x150", "--striped");
    pg_result *r =
        same(&p,
             "{\"nodes\": {" ABCD ", " WHERE_EXPR(
                 "500") ","
                        "\"out\": {\"op\": \"io.save\", \"path\": \"ws.tif\", \"args\": [" REF(
                            "w") "]}}, \"result\": \"out\"}",
             1);
    pg_result_destroy(&r);
    check_where(&p, "ws.tif", 500.0f);
    pair_stop(&p);
}
END_TEST

/* Mixed types: promotion (u8 + i16 -> i32), divide with integer types,
 * comparisons and logic feeding where, nodata in u8/u16, NaN from log of
 * negatives, numbers as args, bitwise and class ops; raster answers. */
START_TEST(test_mixed_types)
{
    pair p;
    pair_start(&p, "64");
    mk(&p, "u8.tif",
       "--size 300x200 --type u8 --pattern random --seed 1 --nodata 255 "
       "--nodata-every 5");
    mk(&p, "i16.tif", "--size 300x200 --type i16 --pattern random --seed 2");
    mk(&p, "u16.tif",
       "--size 300x200 --type u16 --pattern random --seed 3 --nodata 0 "
       "--nodata-every 3");
    mk(&p, "f32.tif", "--size 300x200 --type f32 --pattern random --seed 4");
    mk(&p, "f64.tif", "--size 300x200 --type f64 --pattern gradient");
#define MIX                                                                                        \
    L("u8", "u8.tif")                                                                              \
    ", " L("i16", "i16.tif") ", " L("u16", "u16.tif") ", " L("f", "f32.tif") ", " L("g", "f64."    \
                                                                                         "tif")
    const char *graphs[] = {
        /* promotion and integer division */
        "{\"nodes\": {" MIX ","
        "\"x\": {\"op\": \"local.add\", \"args\": [" REF("u8") ", " REF(
            "i16") "]},"
                   "\"y\": {\"op\": \"local.divide\", \"args\": [" REF("x") ", " REF(
                       "u16") "]},"
                              "\"z\": {\"op\": \"local.multiply\", \"args\": [" REF("y") ", " REF(
                                  "f") ", 3]},"
                                       "\"r\": {\"op\": \"local.subtract\", \"args\": [" REF(
                                           "z") ", 1.5]}"
                                                "}, \"result\": \"r\"}",
        /* comparisons and logic feeding where; f64 branch */
        "{\"nodes\": {" MIX ","
        "\"c1\": {\"op\": \"local.gt\", \"args\": [" REF(
            "u8") ", 100]},"
                  "\"c2\": {\"op\": \"local.le\", \"args\": [" REF("i16") ", " REF(
                      "u16") "]},"
                             "\"c3\": {\"op\": \"local.or\", \"args\": [" REF("c1") ", " REF(
                                 "c2") "]},"
                                       "\"s\": {\"op\": \"local.add\", \"args\": [" REF(
                                           "g") ", " REF("f") "]},"
                                                              "\"r\": {\"op\": \"local.where\", "
                                                              "\"args\": [" REF("c3") ", " REF(
                                                                  "s") ", " REF("u8") "]}"
                                                                                      "}, "
                                                                                      "\"result\": "
                                                                                      "\"r\"}",
        /* NaN: log of (f - 500) is NaN (nodata) for half the cells */
        "{\"nodes\": {" MIX ","
        "\"x\": {\"op\": \"local.subtract\", \"args\": [" REF(
            "f") ", 500]},"
                 "\"l\": {\"op\": \"local.log\", \"args\": [" REF(
                     "x") "]},"
                          "\"m\": {\"op\": \"local.max\", \"args\": [" REF("l") ", " REF(
                              "u8") ", 2.5]},"
                                    "\"d\": {\"op\": \"local.defined\", \"args\": [" REF(
                                        "l") "]},"
                                             "\"r\": {\"op\": \"local.add\", \"args\": [" REF(
                                                 "m") ", " REF("d") "]}"
                                                                    "}, \"result\": \"r\"}",
        /* bitwise, conversion and classes */
        "{\"nodes\": {" MIX ","
        "\"x\": {\"op\": \"local.bitand\", \"args\": [" REF("u8") ", " REF(
            "i16") "]},"
                   "\"y\": {\"op\": \"local.shl\", \"args\": [" REF(
                       "x") ", 1]},"
                            "\"cl\": {\"op\": \"local.clamp\", \"args\": [" REF(
                                "y") "], \"min\": -100, \"max\": 300},"
                                     "\"cv\": {\"op\": \"local.convert\", \"args\": [" REF(
                                         "cl") "], \"type\": \"f32\"},"
                                               "\"nd\": {\"op\": \"local.normalized_difference\", "
                                               "\"args\": [" REF("cv") ", " REF(
                                                   "f") "]},"
                                                        "\"r\": {\"op\": \"local.reclassify\", "
                                                        "\"args\": [" REF(
                                                            "nd") "], \"classes\": [[null, "
                                                                  "-0.5, 1], [-0.5, 0, 2], [0, "
                                                                  "null, 3]]}"
                                                                  "}, \"result\": \"r\"}",
    };
#undef MIX
    for (size_t i = 0; i < sizeof graphs / sizeof graphs[0]; i++) {
        pg_result *r = same(&p, graphs[i], 1);
        ck_assert_int_eq(pg_result_item_kind(r, 0), PG_ITEM_RASTER);
        pg_result_destroy(&r);
    }
    pair_stop(&p);
}
END_TEST

/* Multi-band inputs are not fused (no group) and stay right. */
START_TEST(test_multiband)
{
    pair p;
    pair_start(&p, "64");
    mk(&p, "m1.tif",
       "--size 200x130 --bands 3 --type f32 --pattern random --seed 5 "
       "--nodata -1 --nodata-every 9");
    mk(&p, "m2.tif", "--size 200x130 --bands 3 --type u8 --pattern random --seed 6");
    pg_result *r = same(
        &p,
        "{\"nodes\": {" L("m1", "m1.tif") ", " L(
            "m2",
            "m2.tif") ","
                      "\"x\": {\"op\": \"local.add\", \"args\": [" REF("m1") ", " REF(
                          "m2") "]},"
                                "\"c\": {\"op\": \"local.gt\", \"args\": [" REF(
                                    "m2") ", 128]},"
                                          "\"r\": {\"op\": \"local.where\", \"args\": [" REF(
                                              "c") ", " REF("x") ", 0]},"
                                                                 "\"out\": {\"op\": \"io.save\", "
                                                                 "\"path\": \"mb.tif\", \"args\": "
                                                                 "[" REF(
                                                                     "r") "]}"
                                                                          "}, \"result\": \"out\"}",
        0);
    pg_result_destroy(&r);
    pair_stop(&p);
}
END_TEST

/* An intermediate that is also a result (materialized), one used twice,
 * and two results sharing a fused node. */
START_TEST(test_shared)
{
    pair p;
    pair_start(&p, "64");
    make_abcd(&p, "300x200", "");
    pg_result *r = same(&p,
                        "{\"nodes\": {" ABCD ", " WHERE_EXPR("500") "}, \"result\": [\"w\", "
                                                                    "\"e\"]}",
                        2);
    pg_result_destroy(&r);
    r = same(&p,
             "{\"nodes\": {" ABCD ","
             "\"x\": {\"op\": \"local.add\", \"args\": [" REF("a") ", " REF(
                 "b") "]},"
                      "\"y\": {\"op\": \"local.multiply\", \"args\": [" REF("x") ", " REF(
                          "x") "]},"
                               "\"z\": {\"op\": \"local.subtract\", \"args\": [" REF("y") ", " REF(
                                   "x") "]},"
                                        "\"r1\": {\"op\": \"local.divide\", \"args\": [" REF(
                                            "z") ", " REF("c") "]},"
                                                               "\"r2\": {\"op\": \"local.min\", "
                                                               "\"args\": [" REF("x") ", " REF(
                                                                   "d") ", 700]}"
                                                                        "}, \"result\": [\"r1\", "
                                                                        "\"r2\"]}",
             2);
    pg_result_destroy(&r);
    pair_stop(&p);
}
END_TEST

/* Fused chains under a focal op, global.stats and io.save, in one job. */
START_TEST(test_under_other_ops)
{
    pair p;
    pair_start(&p, "64");
    make_abcd(&p, "300x200", "");
    pg_result *r = same(
        &p,
        "{\"nodes\": {" ABCD ", " WHERE_EXPR(
            "500") ","
                   "\"f\": {\"op\": \"focal.mean\", \"args\": [" REF(
                       "w") "]},"
                            "\"g\": {\"op\": \"local.multiply\", \"args\": [{\"op\": "
                            "\"local.add\", \"args\": [" REF("f") ", " REF(
                                "d") "]}, 0.5]},"
                                     "\"s\": {\"op\": \"global.stats\", \"args\": [" REF(
                                         "g") "]},"
                                              "\"s2\": {\"op\": \"global.stats\", \"args\": [" REF(
                                                  "e") "]},"
                                                       "\"out\": {\"op\": \"io.save\", \"path\": "
                                                       "\"f.tif\", \"args\": [" REF(
                                                           "g") "]}"
                                                                "}, \"result\": [\"out\", \"s\", "
                                                                "\"s2\"]}",
        3);
    ck_assert_int_eq(pg_result_item_kind(r, 1), PG_ITEM_VALUE);
    pg_result_destroy(&r);
    pair_stop(&p);
}
END_TEST

static Suite *it_suite(void)
{
    Suite *s = suite_create("it_fuse");
    TCase *tc = tcase_create("fusion");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_where_issue);
    tcase_add_test(tc, test_where_striped);
    tcase_add_test(tc, test_mixed_types);
    tcase_add_test(tc, test_multiband);
    tcase_add_test(tc, test_shared);
    tcase_add_test(tc, test_under_other_ops);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    GDALAllRegister();
    snprintf(g_base, sizeof g_base, "/tmp/pg-it-fuse-XXXXXX");
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
