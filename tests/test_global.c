/* Unit tests for the global family (ops/global.c): global.histogram,
 * global.quantiles, global.breaks, global.rescale. (global.stats is tested
 * in tests/test_ops.c.)
 *
 * Nodes are built by hand; plan(), bind(), partial()/finish() and
 * compute() are called directly on tiles cut here from a raster held as
 * doubles. References are computed in this file, straightforwardly:
 *  - histograms: edges by the documented formula, each value's bin by a
 *    binary search over them; counts must be equal, edges bit-identical;
 *  - quantiles: a full sort of the valid values and the type-7 formula;
 *    equal (==) where the op is exact (8/16-bit integers, tiles of few
 *    distinct values), else inside the documented bracket
 *    [x[lo - E], x[lo + 1]] with E = sum over tiles of (ceil(n_k/4096) - 1);
 *  - equal-interval breaks: min + (max - min) * i / classes, equal (==);
 *  - rescale: the documented double formula, clamp, round; equal (==)
 *    for every cell and every output type.
 * Determinism: partial() called in a shuffled tile order must give a
 * value json_equal to (and numbers bit-identical with) the in-order one.
 */
#include "bufpool.h"
#include "graph.h"
#include "ops/registry.h"
#include "raster.h"

#include <check.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* An assertion for hot loops: Check's ck_assert_msg reports every passing
 * call to its parent process, which costs a system call. */
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) ck_abort_msg(__VA_ARGS__);                                                    \
    } while (0)

/* ---- ops, tiles, random numbers ---- */

static const pg_op_def *find_op(const char *name)
{
    for (const pg_op_def *d = pg_ops_global; d->name != NULL; d++)
        if (strcmp(d->name, name) == 0) return d;
    ck_abort_msg("no op %s", name);
    return NULL;
}

static const pg_op_def src_op = {
    .name = "test.source", .family = "test", .result = PG_RESULT_RASTER};
static const pg_op_def value_op = {
    .name = "test.value", .family = "test", .result = PG_RESULT_VALUE};

static const pg_plan_env test_env = {.data_root = "/nonexistent",
                                     .max_nodes = 1000,
                                     .max_depth = 100,
                                     .max_cells = (int64_t)1 << 40,
                                     .tile_w = 256,
                                     .tile_h = 256};

static pg_tile *tile_new(pg_celltype t, int bands, pg_window w)
{
    pg_tile *tl = calloc(1, sizeof *tl);
    ck_assert_ptr_nonnull(tl);
    atomic_init(&tl->refs, 1);
    tl->type = t;
    tl->bands = bands;
    tl->win = w;
    tl->nbytes = (size_t)bands * (size_t)w.w * (size_t)w.h * pg_celltype_size(t);
    tl->data = aligned_alloc(64, (tl->nbytes + 63) / 64 * 64 + 64);
    ck_assert_ptr_nonnull(tl->data);
    return tl;
}

static void tile_free(pg_tile *t)
{
    if (t == NULL) return;
    free(t->data);
    free(t);
}

static double get(const pg_tile *t, size_t i)
{
    switch (t->type) {
    case PG_U8:
        return ((const uint8_t *)t->data)[i];
    case PG_I8:
        return ((const int8_t *)t->data)[i];
    case PG_U16:
        return ((const uint16_t *)t->data)[i];
    case PG_I16:
        return ((const int16_t *)t->data)[i];
    case PG_U32:
        return ((const uint32_t *)t->data)[i];
    case PG_I32:
        return ((const int32_t *)t->data)[i];
    case PG_F32:
        return ((const float *)t->data)[i];
    default:
        return ((const double *)t->data)[i];
    }
}

static void set(pg_tile *t, size_t i, double v)
{
    switch (t->type) {
    case PG_U8:
        ((uint8_t *)t->data)[i] = (uint8_t)v;
        break;
    case PG_I8:
        ((int8_t *)t->data)[i] = (int8_t)v;
        break;
    case PG_U16:
        ((uint16_t *)t->data)[i] = (uint16_t)v;
        break;
    case PG_I16:
        ((int16_t *)t->data)[i] = (int16_t)v;
        break;
    case PG_U32:
        ((uint32_t *)t->data)[i] = (uint32_t)v;
        break;
    case PG_I32:
        ((int32_t *)t->data)[i] = (int32_t)v;
        break;
    case PG_F32:
        ((float *)t->data)[i] = (float)v;
        break;
    default:
        ((double *)t->data)[i] = v;
        break;
    }
}

static uint64_t rng = 88172645463325252ull;

static uint64_t rnd(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 2685821657736338717ull;
}

static double rnd_unit(void)
{
    return (double)(rnd() >> 11) * 0x1p-53;
}

/* An integer uniform in [lo, hi]. */
static double rnd_int(double lo, double hi)
{
    double v = lo + floor(rnd_unit() * (hi - lo + 1.0));
    return v > hi ? hi : v;
}

/* ---- a raster under test: W x H x BANDS doubles, band-sequential ---- */

typedef struct raster {
    pg_celltype type;
    int64_t w, h;
    int bands;
    bool has_nd;
    double nd;
    double *v;
} raster;

static raster ras_new(pg_celltype t, int64_t w, int64_t h, int bands, bool has_nd, double nd)
{
    raster r = {t, w, h, bands, has_nd, nd, NULL};
    r.v = calloc((size_t)(w * h * bands), sizeof *r.v);
    ck_assert_ptr_nonnull(r.v);
    return r;
}

static size_t ras_cells(const raster *r)
{
    return (size_t)(r->w * r->h * r->bands);
}

/* The valid values (not nodata, not NaN), as the cells hold them. */
static bool ras_valid(const raster *r, double x)
{
    if (isnan(x)) return false;
    if (!r->has_nd) return true;
    double nd = r->type == PG_F32 ? (double)(float)r->nd : r->nd;
    return x != nd;
}

static pg_tile *ras_tile(const raster *r, pg_window win)
{
    pg_tile *t = tile_new(r->type, r->bands, win);
    for (int b = 0; b < r->bands; b++)
        for (int64_t y = 0; y < win.h; y++)
            for (int64_t x = 0; x < win.w; x++)
                set(t, ((size_t)b * (size_t)win.h + (size_t)y) * (size_t)win.w + (size_t)x,
                    r->v[((size_t)b * (size_t)r->h + (size_t)(win.y + y)) * (size_t)r->w +
                         (size_t)(win.x + x)]);
    return t;
}

static void src_init(pg_node *src, const raster *r)
{
    memset(src, 0, sizeof *src);
    src->op = &src_op;
    src->name = "src";
    src->info = (pg_raster_info){.width = r->w,
                                 .height = r->h,
                                 .bands = r->bands,
                                 .type = r->type,
                                 .has_nodata = r->has_nd,
                                 .nodata = r->nd,
                                 .block_w = 256,
                                 .block_h = 256};
}

/* Runs value op OP with PARAMS (stolen) over R cut into TW x TH tiles,
 * partial() called in a shuffled order when SHUFFLE. VALUE (borrowed, may
 * be NULL) is bound as args[1]. Returns the value; *RC_PLAN gets plan()'s
 * code (the value is then NULL). */
static json_t *run_value_rc(const char *op, json_t *params, const raster *r, int64_t tw, int64_t th,
                            bool shuffle, const json_t *value, int *rc_plan, pg_error *err)
{
    pg_node src, val;
    src_init(&src, r);
    memset(&val, 0, sizeof val);
    val.op = &value_op;
    val.name = "val";
    pg_arg args[2] = {{.node = 0, .ref = &src}, {.node = 1, .ref = &val}};
    pg_node n = {
        .op = find_op(op), .name = "n", .params = params, .nargs = value ? 2 : 1, .args = args};
    json_t *out = NULL;
    *rc_plan = n.op->plan(&n, &test_env, err);
    if (*rc_plan == 0 && value != NULL) *rc_plan = n.op->bind(&n, 1, value, err);
    if (*rc_plan == 0) {
        pg_tiling tl;
        pg_tiling_init(&tl, r->w, r->h, tw, th);
        const int64_t nt = pg_tiling_count(&tl);
        int64_t *order = malloc(sizeof *order * (size_t)nt);
        for (int64_t k = 0; k < nt; k++)
            order[k] = k;
        for (int64_t k = nt - 1; shuffle && k > 0; k--) {
            int64_t j = (int64_t)(rnd() % (uint64_t)(k + 1)), tmp = order[k];
            order[k] = order[j];
            order[j] = tmp;
        }
        void **parts = calloc((size_t)nt, sizeof *parts);
        for (int64_t j = 0; j < nt; j++) {
            const int64_t k = order[j];
            pg_tile *t = ras_tile(r, pg_tiling_window(&tl, k));
            /* the size the job allocates (ASan checks the op stays in it) */
            const size_t psize =
                n.op->partial_size_of ? n.op->partial_size_of(&n) : n.op->partial_size;
            if (strcmp(n.op->name, "global.stats") == 0)
                ck_assert_uint_eq(psize, 48 * (size_t)r->bands); /* a pg__mom per band */
            parts[k] = calloc(1, psize);
            pg_tile *in[2] = {t, NULL};
            ck_assert_int_eq(n.op->partial(&n, parts[k], in, err), 0);
            tile_free(t);
        }
        ck_assert_int_eq(n.op->finish(&n, parts, nt, &out, err), 0);
        ck_assert_ptr_nonnull(out);
        for (int64_t k = 0; k < nt; k++) {
            if (n.op->partial_free) n.op->partial_free(&n, parts[k]);
            free(parts[k]);
        }
        free(parts);
        free(order);
    }
    if (n.state) n.op->free_state(&n);
    ck_assert_ptr_null(n.state);
    json_decref(params);
    return out;
}

static json_t *run_value(const char *op, json_t *params, const raster *r, int64_t tw, int64_t th,
                         bool shuffle, const json_t *value)
{
    int rc;
    pg_error err = {0};
    json_t *v = run_value_rc(op, params, r, tw, th, shuffle, value, &rc, &err);
    ck_assert_msg(rc == 0, "%s: plan/bind failed: %s", op, err.message);
    return v;
}

/* Plans OP with PARAMS (stolen) over R and expects CODE with a message
 * containing NEEDLE. */
static void expect_plan_error(const char *op, json_t *params, const raster *r, const json_t *value,
                              int code, const char *needle)
{
    int rc;
    pg_error err = {0};
    json_t *v = run_value_rc(op, params, r, 64, 64, false, value, &rc, &err);
    json_decref(v);
    ck_assert_msg(rc == code, "%s: expected %s, got %s (%s)", op, pg_err_name(code),
                  pg_err_name(rc), err.message);
    ck_assert_msg(strstr(err.message, needle) != NULL, "%s: message '%s' does not name '%s'", op,
                  err.message, needle);
}

/* ---- references ---- */

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The valid values of R, sorted; *N their count. */
static double *sorted_valid(const raster *r, int64_t *n)
{
    size_t nc = ras_cells(r);
    double *s = malloc(sizeof *s * (nc ? nc : 1));
    int64_t k = 0;
    for (size_t i = 0; i < nc; i++)
        if (ras_valid(r, r->v[i])) s[k++] = r->v[i];
    qsort(s, (size_t)k, sizeof *s, cmp_d);
    *n = k;
    return s;
}

/* Type 7, as documented. */
static double ref_quantile(const double *s, int64_t n, double p, int64_t *lo_out)
{
    double h = (double)(n - 1) * p;
    int64_t lo = (int64_t)floor(h);
    if (lo > n - 1) lo = n - 1;
    double frac = h - (double)lo;
    *lo_out = lo;
    if (!(frac > 0) || lo == n - 1) return s[lo];
    return s[lo] + frac * (s[lo + 1] - s[lo]);
}

/* E: the documented rank error bound for R cut into TW x TH tiles. */
static int64_t rank_error(const raster *r, int64_t tw, int64_t th)
{
    pg_tiling tl;
    pg_tiling_init(&tl, r->w, r->h, tw, th);
    int64_t e = 0;
    for (int64_t k = 0; k < pg_tiling_count(&tl); k++) {
        pg_window w = pg_tiling_window(&tl, k);
        int64_t nk = 0;
        for (int b = 0; b < r->bands; b++)
            for (int64_t y = w.y; y < w.y + w.h; y++)
                for (int64_t x = w.x; x < w.x + w.w; x++)
                    nk += ras_valid(
                        r, r->v[((size_t)b * (size_t)r->h + (size_t)y) * (size_t)r->w + (size_t)x]);
        if (nk > 4096) e += (nk + 4095) / 4096 - 1;
    }
    return e;
}

static double jnum_at(const json_t *a, size_t i)
{
    json_t *v = json_array_get(a, i);
    CHECK(json_is_number(v), "entry %zu is not a number", i);
    return json_number_value(v);
}

/* ---- global.histogram ---- */

/* Reference edges (the documented formula) and counts (binary search). */
static void ref_hist(const raster *r, int bins, double lo, double hi, double *e, int64_t *cnt)
{
    if (lo == hi) {
        double d = fmax(0.5, fabs(lo) * 0x1p-50);
        lo -= d;
        hi += d;
    }
    double w = (hi - lo) / bins;
    e[0] = lo;
    for (int i = 1; i < bins; i++)
        e[i] = fmin(lo + i * w, hi);
    e[bins] = hi;
    memset(cnt, 0, sizeof *cnt * (size_t)bins);
    for (size_t i = 0; i < ras_cells(r); i++) {
        double v = r->v[i];
        if (!ras_valid(r, v) || v < lo || v > hi) continue;
        int a = 0, b = bins - 1; /* largest i in [0, bins-1] with e[i] <= v */
        while (a < b) {
            int m = (a + b + 1) / 2;
            if (e[m] <= v)
                a = m;
            else
                b = m - 1;
        }
        cnt[a]++;
    }
}

static void check_hist(const json_t *v, const raster *r, int bins, double lo, double hi)
{
    double *e = malloc(sizeof *e * (size_t)(bins + 1));
    int64_t *cnt = malloc(sizeof *cnt * (size_t)bins);
    ref_hist(r, bins, lo, hi, e, cnt);
    json_t *jb = json_object_get(v, "bins"), *je = json_object_get(v, "edges");
    ck_assert(json_is_array(jb) && json_is_array(je));
    ck_assert_int_eq(json_array_size(jb), bins);
    ck_assert_int_eq(json_array_size(je), bins + 1);
    for (int i = 0; i < bins; i++)
        CHECK(json_integer_value(json_array_get(jb, (size_t)i)) == cnt[i],
              "bin %d: got %lld want %lld", i,
              (long long)json_integer_value(json_array_get(jb, (size_t)i)), (long long)cnt[i]);
    for (int i = 0; i <= bins; i++) {
        double g = jnum_at(je, (size_t)i);
        CHECK(memcmp(&g, &e[i], sizeof g) == 0, "edge %d: got %.17g want %.17g", i, g, e[i]);
    }
    free(e);
    free(cnt);
}

START_TEST(test_histogram)
{
    rng = 0x4157ull;
    /* f32 with nodata -9999 and NaN, 3 bands, odd sizes; values partly
     * outside the range; some exactly on edges and on hi */
    raster r = ras_new(PG_F32, 301, 203, 3, true, -9999);
    for (size_t i = 0; i < ras_cells(&r); i++) {
        double x = (double)(float)((rnd_unit() - 0.1) * 120.0);
        unsigned k = (unsigned)(rnd() % 20);
        if (k == 0) x = -9999;
        if (k == 1) x = NAN;
        if (k == 2) x = (double)(rnd() % 38) * 2.5; /* edges of [0, 92.5] in 37 bins */
        r.v[i] = x;
    }
    json_t *v =
        run_value("global.histogram", json_pack("{s:i,s:[f,f]}", "bins", 37, "range", 0.0, 92.5),
                  &r, 64, 48, false, NULL);
    check_hist(v, &r, 37, 0.0, 92.5);
    /* partial() in another order: the same value */
    json_t *v2 =
        run_value("global.histogram", json_pack("{s:i,s:[f,f]}", "bins", 37, "range", 0.0, 92.5),
                  &r, 64, 48, true, NULL);
    ck_assert(json_equal(v, v2));
    /* another tiling: counts do not depend on it */
    json_t *v3 =
        run_value("global.histogram", json_pack("{s:i,s:[f,f]}", "bins", 37, "range", 0.0, 92.5),
                  &r, 512, 512, false, NULL);
    ck_assert(json_equal(v, v3));
    json_decref(v);
    json_decref(v2);
    json_decref(v3);

    /* awkward edges: a range whose width is not a multiple of bins */
    v = run_value("global.histogram", json_pack("{s:i,s:[f,f]}", "bins", 7, "range", -3.3, 101.7),
                  &r, 100, 100, false, NULL);
    check_hist(v, &r, 7, -3.3, 101.7);
    json_decref(v);
    /* many bins */
    v = run_value("global.histogram",
                  json_pack("{s:i,s:[f,f]}", "bins", 100000, "range", -12.0, 108.0), &r, 128, 128,
                  false, NULL);
    check_hist(v, &r, 100000, -12.0, 108.0);
    json_decref(v);
    /* one bin */
    v = run_value("global.histogram", json_pack("{s:i,s:[f,f]}", "bins", 1, "range", 0.0, 50.0), &r,
                  64, 64, false, NULL);
    check_hist(v, &r, 1, 0.0, 50.0);
    json_decref(v);
    free(r.v);
}
END_TEST

START_TEST(test_histogram_value_arg)
{
    rng = 0x99ull;
    raster r = ras_new(PG_U16, 200, 150, 1, true, 65535);
    double mn = INFINITY, mx = -INFINITY;
    for (size_t i = 0; i < ras_cells(&r); i++) {
        double x = rnd() % 9 == 0 ? 65535 : rnd_int(1000, 3000);
        r.v[i] = x;
        if (x != 65535) mn = fmin(mn, x), mx = fmax(mx, x);
    }
    /* a global.stats value as args[1]: its min and max are the range */
    json_t *stats = json_pack("{s:i,s:f,s:f,s:f}", "count", 1, "sum", 1.0, "min", mn, "max", mx);
    json_t *v =
        run_value("global.histogram", json_pack("{s:i}", "bins", 50), &r, 64, 64, false, stats);
    check_hist(v, &r, 50, mn, mx);
    int64_t total = 0;
    for (size_t i = 0; i < 50; i++)
        total += json_integer_value(json_array_get(json_object_get(v, "bins"), i));
    int64_t nvalid = 0;
    for (size_t i = 0; i < ras_cells(&r); i++)
        nvalid += r.v[i] != 65535;
    ck_assert_int_eq(total, nvalid); /* [min, max] holds every valid cell */
    json_decref(v);
    /* "range" wins over the value */
    v = run_value("global.histogram", json_pack("{s:i,s:[i,i]}", "bins", 10, "range", 0, 2000), &r,
                  64, 64, false, stats);
    check_hist(v, &r, 10, 0, 2000);
    json_decref(v);
    /* an array value (global.quantiles): first and last */
    json_t *q = json_pack("[f,f,f]", 1500.0, 2000.0, 2500.0);
    v = run_value("global.histogram", json_pack("{s:i}", "bins", 20), &r, 64, 64, false, q);
    check_hist(v, &r, 20, 1500, 2500);
    json_decref(v);
    json_decref(q);
    /* a constant raster: min == max, the range becomes [v - 0.5, v + 0.5] */
    for (size_t i = 0; i < ras_cells(&r); i++)
        r.v[i] = 7;
    json_t *st7 = json_pack("{s:i,s:i}", "min", 7, "max", 7);
    v = run_value("global.histogram", json_pack("{s:i}", "bins", 4), &r, 64, 64, false, st7);
    check_hist(v, &r, 4, 7, 7);
    ck_assert(jnum_at(json_object_get(v, "edges"), 0) == 6.5);
    ck_assert(json_integer_value(json_array_get(json_object_get(v, "bins"), 2)) ==
              (json_int_t)ras_cells(&r));
    json_decref(v);
    json_decref(st7);
    /* no valid cell: stats with nulls give [0, 1] and zero counts */
    json_t *none = json_pack("{s:i,s:n,s:n}", "count", 0, "min", "max");
    for (size_t i = 0; i < ras_cells(&r); i++)
        r.v[i] = 65535;
    v = run_value("global.histogram", json_pack("{s:i}", "bins", 3), &r, 64, 64, false, none);
    check_hist(v, &r, 3, 0, 1);
    json_decref(v);
    json_decref(none);
    json_decref(stats);
    free(r.v);
}
END_TEST

START_TEST(test_histogram_errors)
{
    raster r = ras_new(PG_F32, 10, 10, 1, false, 0);
    expect_plan_error("global.histogram", json_pack("{s:i}", "bins", 10), &r, NULL, PG_EPARAM,
                      "'range'");
    expect_plan_error("global.histogram", json_pack("{s:i,s:[i,i]}", "bins", 10, "range", 5, 5), &r,
                      NULL, PG_EPARAM, "'range'");
    expect_plan_error("global.histogram", json_pack("{s:i,s:[i,i]}", "bins", 10, "range", 5, 1), &r,
                      NULL, PG_EPARAM, "'range'");
    expect_plan_error("global.histogram", json_pack("{s:i,s:[i]}", "bins", 10, "range", 5), &r,
                      NULL, PG_EPARAM, "'range'");
    expect_plan_error("global.histogram", json_pack("{s:i,s:s}", "bins", 10, "range", "all"), &r,
                      NULL, PG_EPARAM, "'range'");
    expect_plan_error("global.histogram", json_pack("{s:i,s:[i,i]}", "bins", 0, "range", 0, 1), &r,
                      NULL, PG_EPARAM, "'bins'");
    expect_plan_error("global.histogram", json_pack("{s:i,s:[i,i]}", "bins", 100001, "range", 0, 1),
                      &r, NULL, PG_EPARAM, "'bins'");
    /* a value that is neither stats nor an array of numbers */
    json_t *bad = json_string("x");
    expect_plan_error("global.histogram", json_pack("{s:i}", "bins", 10), &r, bad, PG_ETYPE,
                      "args[1]");
    json_decref(bad);
    bad = json_pack("{s:s,s:i}", "min", "a", "max", 3);
    expect_plan_error("global.histogram", json_pack("{s:i}", "bins", 10), &r, bad, PG_ETYPE,
                      "args[1]");
    json_decref(bad);

    /* args[1] a raster, not a value */
    pg_node src;
    src_init(&src, &r);
    pg_arg args[2] = {{.node = 0, .ref = &src}, {.node = 0, .ref = &src}};
    pg_node n = {.op = find_op("global.histogram"),
                 .name = "n",
                 .params = json_pack("{s:i}", "bins", 10),
                 .nargs = 2,
                 .args = args};
    pg_error err;
    ck_assert_int_eq(n.op->plan(&n, &test_env, &err), PG_ETYPE);
    ck_assert(strstr(err.message, "args[1]") != NULL);
    if (n.state) n.op->free_state(&n);
    json_decref(n.params);
    free(r.v);
}
END_TEST

/* ---- global.quantiles ---- */

static json_t *probs_json(const double *p, int np)
{
    json_t *a = json_array();
    for (int i = 0; i < np; i++)
        json_array_append_new(a, json_real(p[i]));
    return a;
}

/* Runs global.quantiles over R and checks every entry: exact (==) when
 * EXACT, else inside the documented bracket. */
static void check_quantiles(const raster *r, int64_t tw, int64_t th, bool exact)
{
    static const double probs[] = {0,   0.001, 0.01, 0.1,  0.25,  1.0 / 3,
                                   0.5, 0.75,  0.9,  0.99, 0.999, 1};
    const int np = (int)(sizeof probs / sizeof probs[0]);
    json_t *v = run_value("global.quantiles", json_pack("{s:o}", "probs", probs_json(probs, np)), r,
                          tw, th, false, NULL);
    ck_assert(json_is_array(v) && json_array_size(v) == (size_t)np);
    int64_t n;
    double *s = sorted_valid(r, &n);
    int64_t e = exact ? 0 : rank_error(r, tw, th);
    for (int j = 0; j < np; j++) {
        int64_t lo;
        double want = ref_quantile(s, n, probs[j], &lo);
        double got = jnum_at(v, (size_t)j);
        if (e == 0) {
            ck_assert_msg(got == want, "p=%g: got %.17g want %.17g", probs[j], got, want);
        } else {
            double a = s[lo - e < 0 ? 0 : lo - e], b = s[lo + 1 < n ? lo + 1 : n - 1];
            if ((double)(n - 1) * probs[j] == (double)lo) b = s[lo];
            ck_assert_msg(got >= a && got <= b, "p=%g: got %.17g outside [%.17g, %.17g] (E=%lld)",
                          probs[j], got, a, b, (long long)e);
        }
    }
    /* partial() in another order: identical */
    json_t *v2 = run_value("global.quantiles", json_pack("{s:o}", "probs", probs_json(probs, np)),
                           r, tw, th, true, NULL);
    ck_assert(json_equal(v, v2));
    for (int j = 0; j < np; j++) {
        double a = jnum_at(v, (size_t)j), b = jnum_at(v2, (size_t)j);
        ck_assert(memcmp(&a, &b, sizeof a) == 0);
    }
    json_decref(v);
    json_decref(v2);
    free(s);
}

START_TEST(test_quantiles_exact_int)
{
    rng = 0x7a11ull;
    /* u8 with nodata, i8, u16 and i16 random over the full range, several
     * bands: exact */
    static const pg_celltype types[] = {PG_U8, PG_I8, PG_U16, PG_I16};
    for (size_t t = 0; t < 4; t++) {
        raster r = ras_new(types[t], 257, 190, 2, t == 0 || t == 3, t == 0 ? 0 : -32768);
        for (size_t i = 0; i < ras_cells(&r); i++)
            r.v[i] = rnd_int(pg_celltype_min(types[t]), pg_celltype_max(types[t]));
        check_quantiles(&r, 64, 64, true);
        check_quantiles(&r, 300, 300, true);
        free(r.v);
    }
    /* a skewed u16: a few distinct values */
    raster r = ras_new(PG_U16, 100, 100, 1, false, 0);
    for (size_t i = 0; i < ras_cells(&r); i++)
        r.v[i] = rnd() % 10 == 0 ? 60000 : rnd_int(3, 5);
    check_quantiles(&r, 32, 32, true);
    free(r.v);
}
END_TEST

START_TEST(test_quantiles_float)
{
    rng = 0xf1f1ull;
    /* f32 random with nodata and NaN, many distinct values per tile: the
     * documented bracket */
    raster r = ras_new(PG_F32, 700, 500, 1, true, -1);
    for (size_t i = 0; i < ras_cells(&r); i++) {
        double x = (double)(float)((rnd_unit() - 0.3) * 1000.0);
        if (rnd() % 13 == 0) x = -1;
        if (rnd() % 17 == 0) x = NAN;
        r.v[i] = x;
    }
    check_quantiles(&r, 256, 256, false);
    ck_assert(rank_error(&r, 256, 256) > 0); /* really the approximate path */
    /* tiles of at most 4096 cells: exact */
    check_quantiles(&r, 64, 64, true);
    /* quantised values (few distinct per tile): exact with big tiles */
    for (size_t i = 0; i < ras_cells(&r); i++)
        if (!isnan(r.v[i]) && r.v[i] != -1) r.v[i] = floor(r.v[i] / 10) * 0.5;
    check_quantiles(&r, 256, 256, true);
    free(r.v);

    /* f64 with negatives, -0.0 and 0.0, infinities; i32, u32 over their
     * ranges (approximate path) */
    raster d = ras_new(PG_F64, 300, 300, 1, false, 0);
    for (size_t i = 0; i < ras_cells(&d); i++) {
        unsigned k = (unsigned)(rnd() % 50);
        d.v[i] = k == 0   ? -0.0
                 : k == 1 ? 0.0
                 : k == 2 ? INFINITY
                 : k == 3 ? -INFINITY
                          : (rnd_unit() - 0.5) * 1e6;
    }
    /* infinities only at the ends: probs 0 and 1 give -inf and +inf exactly
     * with small tiles */
    json_t *v = run_value("global.quantiles", json_pack("{s:[f,f]}", "probs", 0.0, 1.0), &d, 64, 64,
                          false, NULL);
    ck_assert(json_is_null(json_array_get(v, 0)) && json_is_null(json_array_get(v, 1)));
    json_decref(v); /* not finite: null (JSON has no inf) */
    for (size_t i = 0; i < ras_cells(&d); i++)
        if (isinf(d.v[i])) d.v[i] = 0.0;
    check_quantiles(&d, 256, 256, false);
    check_quantiles(&d, 50, 50, true);
    free(d.v);
    static const pg_celltype it[] = {PG_I32, PG_U32};
    for (size_t t = 0; t < 2; t++) {
        raster q = ras_new(it[t], 512, 300, 1, true, pg_celltype_max(it[t]));
        for (size_t i = 0; i < ras_cells(&q); i++)
            q.v[i] = rnd_int(pg_celltype_min(it[t]), pg_celltype_max(it[t]));
        check_quantiles(&q, 256, 256, false);
        check_quantiles(&q, 512, 300, false);
        free(q.v);
    }
}
END_TEST

START_TEST(test_quantiles_edge)
{
    /* no valid cell: nulls */
    raster r = ras_new(PG_F32, 40, 40, 1, true, -5);
    for (size_t i = 0; i < ras_cells(&r); i++)
        r.v[i] = i % 2 ? -5 : NAN;
    json_t *v =
        run_value("global.quantiles", json_pack("{s:[f]}", "probs", 0.5), &r, 16, 16, false, NULL);
    ck_assert(json_is_array(v) && json_array_size(v) == 1 && json_is_null(json_array_get(v, 0)));
    json_decref(v);
    /* one valid cell: every quantile is it */
    r.v[77] = 3.25;
    v = run_value("global.quantiles", json_pack("{s:[f,f,f]}", "probs", 0.0, 0.5, 1.0), &r, 16, 16,
                  false, NULL);
    for (size_t j = 0; j < 3; j++)
        ck_assert(jnum_at(v, j) == 3.25);
    json_decref(v);
    /* errors */
    expect_plan_error("global.quantiles", json_pack("{s:[]}", "probs"), &r, NULL, PG_EPARAM,
                      "'probs'");
    expect_plan_error("global.quantiles", json_pack("{s:f}", "probs", 0.5), &r, NULL, PG_EPARAM,
                      "'probs'");
    expect_plan_error("global.quantiles", json_pack("{s:[f,f]}", "probs", 0.5, 1.5), &r, NULL,
                      PG_EPARAM, "'probs'");
    expect_plan_error("global.quantiles", json_pack("{s:[f,s]}", "probs", 0.5, "x"), &r, NULL,
                      PG_EPARAM, "'probs'");
    expect_plan_error("global.quantiles", json_pack("{}"), &r, NULL, PG_EPARAM, "'probs'");
    free(r.v);
}
END_TEST

/* ---- global.breaks ---- */

START_TEST(test_breaks)
{
    rng = 0xb4ull;
    raster r = ras_new(PG_I16, 333, 222, 1, true, -32768);
    double mn = INFINITY, mx = -INFINITY;
    for (size_t i = 0; i < ras_cells(&r); i++) {
        double x = rnd() % 11 == 0 ? -32768 : rnd_int(-500, 2500);
        r.v[i] = x;
        if (x != -32768) mn = fmin(mn, x), mx = fmax(mx, x);
    }
    /* equal interval: exact, classes - 1 values */
    for (int classes = 2; classes <= 12; classes += 5) {
        json_t *v = run_value(
            "global.breaks", json_pack("{s:s,s:i}", "method", "equal_interval", "classes", classes),
            &r, 64, 64, true, NULL);
        ck_assert_int_eq(json_array_size(v), (size_t)classes - 1);
        for (int i = 1; i < classes; i++)
            ck_assert(jnum_at(v, (size_t)i - 1) == mn + (mx - mn) * (double)i / (double)classes);
        json_decref(v);
    }
    /* quantile: exactly global.quantiles at i / classes (exact for i16) */
    json_t *v =
        run_value("global.breaks", json_pack("{s:s,s:i}", "method", "quantile", "classes", 7), &r,
                  64, 64, false, NULL);
    ck_assert_int_eq(json_array_size(v), 6);
    int64_t n;
    double *s = sorted_valid(&r, &n);
    for (int i = 1; i < 7; i++) {
        int64_t lo;
        ck_assert(jnum_at(v, (size_t)i - 1) == ref_quantile(s, n, (double)i / 7.0, &lo));
    }
    json_t *probs = json_array();
    for (int i = 1; i < 7; i++)
        json_array_append_new(probs, json_real((double)i / 7.0));
    json_t *q =
        run_value("global.quantiles", json_pack("{s:o}", "probs", probs), &r, 64, 64, false, NULL);
    ck_assert(json_equal(v, q));
    json_decref(q);
    json_decref(v);
    /* defaults: quantile, 5 classes */
    v = run_value("global.breaks", json_object(), &r, 64, 64, false, NULL);
    ck_assert_int_eq(json_array_size(v), 4);
    json_decref(v);
    free(s);
    free(r.v);
    /* f32: equal interval exact over floats too */
    raster f = ras_new(PG_F32, 100, 90, 2, false, 0);
    mn = INFINITY, mx = -INFINITY;
    for (size_t i = 0; i < ras_cells(&f); i++) {
        f.v[i] = (double)(float)((rnd_unit() - 0.5) * 77.7);
        if (i == 5) f.v[i] = NAN;
        if (!isnan(f.v[i])) mn = fmin(mn, f.v[i]), mx = fmax(mx, f.v[i]);
    }
    v = run_value("global.breaks", json_pack("{s:s,s:i}", "method", "equal_interval", "classes", 3),
                  &f, 32, 32, false, NULL);
    ck_assert(jnum_at(v, 0) == mn + (mx - mn) * 1.0 / 3.0);
    ck_assert(jnum_at(v, 1) == mn + (mx - mn) * 2.0 / 3.0);
    json_decref(v);
    /* errors */
    expect_plan_error("global.breaks", json_pack("{s:s,s:i}", "method", "jenks", "classes", 3), &f,
                      NULL, PG_EPARAM, "'method'");
    expect_plan_error("global.breaks", json_pack("{s:s,s:i}", "method", "quantile", "classes", 1),
                      &f, NULL, PG_EPARAM, "'classes'");
    free(f.v);
}
END_TEST

/* ---- global.rescale ---- */

typedef struct rescale_run {
    pg_raster_info info;
    pg_tile *out; /* the whole raster as one tile */
} rescale_run;

/* Plans global.rescale (PARAMS stolen) over R, binds VALUE if given, and
 * computes every TW x TH tile into one whole-raster tile. */
static int run_rescale(const raster *r, json_t *params, const json_t *value, int64_t tw, int64_t th,
                       rescale_run *rr, pg_error *err)
{
    pg_node src, val;
    src_init(&src, r);
    memset(&val, 0, sizeof val);
    val.op = &value_op;
    val.name = "val";
    pg_arg args[2] = {{.node = 0, .ref = &src}, {.node = 1, .ref = &val}};
    pg_node n = {.op = find_op("global.rescale"),
                 .name = "n",
                 .params = params,
                 .nargs = value ? 2 : 1,
                 .args = args};
    memset(rr, 0, sizeof *rr);
    int rc = n.op->plan(&n, &test_env, err);
    if (rc == 0 && value) rc = n.op->bind(&n, 1, value, err);
    if (rc == 0) {
        pg_raster_info_copy(&rr->info, &n.info);
        rr->out = tile_new(n.info.type, n.info.bands, (pg_window){0, 0, r->w, r->h});
        pg_tiling tl;
        pg_tiling_init(&tl, r->w, r->h, tw, th);
        size_t cs = pg_celltype_size(n.info.type);
        for (int64_t k = 0; k < pg_tiling_count(&tl); k++) {
            pg_window w = pg_tiling_window(&tl, k);
            pg_tile *in = ras_tile(r, w);
            pg_tile *o = tile_new(n.info.type, n.info.bands, w);
            pg_tile *ins[2] = {in, NULL};
            ck_assert_int_eq(n.op->compute(&n, o, ins, err), 0);
            for (int b = 0; b < n.info.bands; b++)
                for (int64_t y = 0; y < w.h; y++)
                    memcpy(pg_tile_cell(rr->out, b, w.y + y, w.x), pg_tile_cell(o, b, y, 0),
                           (size_t)w.w * cs);
            tile_free(in);
            tile_free(o);
        }
    }
    if (n.state) n.op->free_state(&n);
    pg_raster_info_clear(&n.info);
    json_decref(params);
    return rc;
}

/* The documented map of one valid value. */
static double ref_rescale(double v, double f0, double f1, double t0, double t1, pg_celltype out)
{
    double y;
    if (f0 == f1)
        y = t0;
    else {
        double s = (t1 - t0) / (f1 - f0);
        y = t0 + (v - f0) * s;
        y = fmin(fmax(y, fmin(t0, t1)), fmax(t0, t1));
    }
    if (out == PG_F32) return (double)(float)y;
    if (out == PG_F64) return y;
    return round(y);
}

static void check_rescale(const raster *r, const rescale_run *rr, double f0, double f1, double t0,
                          double t1)
{
    pg_celltype out = rr->info.type;
    for (size_t i = 0; i < ras_cells(r); i++) {
        double g = get(rr->out, i);
        if (!ras_valid(r, r->v[i])) {
            CHECK(rr->info.has_nodata, "cell %zu invalid but no nodata", i);
            if (isnan(rr->info.nodata))
                CHECK(isnan(g), "cell %zu: %g, want NaN", i, g);
            else
                CHECK(g == rr->info.nodata, "cell %zu: %g, want nodata %g", i, g, rr->info.nodata);
            continue;
        }
        double want = ref_rescale(r->v[i], f0, f1, t0, t1, out);
        CHECK(g == want, "cell %zu (%.17g): got %.17g want %.17g", i, r->v[i], g, want);
    }
}

START_TEST(test_rescale)
{
    rng = 0x5ca1eull;
    raster r = ras_new(PG_F32, 250, 170, 2, true, -9999);
    double mn = INFINITY, mx = -INFINITY;
    for (size_t i = 0; i < ras_cells(&r); i++) {
        double x = (double)(float)((rnd_unit() - 0.2) * 3000.0);
        if (rnd() % 10 == 0) x = -9999;
        if (rnd() % 23 == 0) x = NAN;
        r.v[i] = x;
        if (ras_valid(&r, x)) mn = fmin(mn, x), mx = fmax(mx, x);
    }
    rescale_run rr;
    pg_error err;
    /* from a global.stats value, to u8 [0, 255]: nodata -9999 cannot be a
     * u8, and 0 and 255 are inside "to": the default nodata 255 */
    json_t *stats = json_pack("{s:f,s:f}", "min", mn, "max", mx);
    ck_assert_int_eq(run_rescale(&r, json_pack("{s:[i,i],s:s}", "to", 0, 255, "type", "u8"), stats,
                                 64, 48, &rr, &err),
                     0);
    ck_assert_int_eq(rr.info.type, PG_U8);
    ck_assert(rr.info.has_nodata && rr.info.nodata == 255);
    check_rescale(&r, &rr, mn, mx, 0, 255);
    tile_free(rr.out);
    pg_raster_info_clear(&rr.info);
    /* to [0, 254]: nodata 255 is outside */
    ck_assert_int_eq(run_rescale(&r, json_pack("{s:[i,i],s:s}", "to", 0, 254, "type", "u8"), stats,
                                 64, 48, &rr, &err),
                     0);
    ck_assert(rr.info.nodata == 255);
    check_rescale(&r, &rr, mn, mx, 0, 254);
    tile_free(rr.out);
    pg_raster_info_clear(&rr.info);
    /* default f32 [0, 1]: nodata -9999 kept (outside [0, 1]) */
    ck_assert_int_eq(run_rescale(&r, json_object(), stats, 100, 100, &rr, &err), 0);
    ck_assert(rr.info.type == PG_F32 && rr.info.nodata == -9999);
    check_rescale(&r, &rr, mn, mx, 0, 1);
    tile_free(rr.out);
    pg_raster_info_clear(&rr.info);
    /* "from" wins over the value; clamping; inverted "to"; f64 */
    ck_assert_int_eq(run_rescale(&r,
                                 json_pack("{s:[i,i],s:[f,f],s:s}", "to", 10, -10, "from", 100.0,
                                           1000.0, "type", "f64"),
                                 stats, 64, 64, &rr, &err),
                     0);
    check_rescale(&r, &rr, 100, 1000, 10, -10);
    tile_free(rr.out);
    pg_raster_info_clear(&rr.info);
    /* "from" alone, i16 output with negative "to"; nodata -9999 kept */
    ck_assert_int_eq(run_rescale(&r,
                                 json_pack("{s:[i,i],s:[f,f],s:s}", "to", -1000, 1000, "from", 0.0,
                                           2000.0, "type", "i16"),
                                 NULL, 64, 64, &rr, &err),
                     0);
    ck_assert(rr.info.nodata == -9999);
    check_rescale(&r, &rr, 0, 2000, -1000, 1000);
    tile_free(rr.out);
    pg_raster_info_clear(&rr.info);
    /* an array value (global.quantiles [0.02, 0.98]): first and last */
    json_t *q = json_pack("[f,f]", 50.0, 1500.0);
    ck_assert_int_eq(run_rescale(&r, json_pack("{s:[i,i],s:s}", "to", 1, 65535, "type", "u16"), q,
                                 64, 64, &rr, &err),
                     0);
    ck_assert(rr.info.nodata == 0); /* max 65535 is inside "to", min 0 is not */
    check_rescale(&r, &rr, 50, 1500, 1, 65535);
    tile_free(rr.out);
    pg_raster_info_clear(&rr.info);
    json_decref(q);
    /* a degenerate range: every valid cell becomes to[0] */
    ck_assert_int_eq(
        run_rescale(&r, json_pack("{s:[f,f]}", "from", 5.0, 5.0), NULL, 64, 64, &rr, &err), 0);
    check_rescale(&r, &rr, 5, 5, 0, 1);
    tile_free(rr.out);
    pg_raster_info_clear(&rr.info);
    free(r.v);

    /* an integer input without nodata: no nodata in the output */
    raster u = ras_new(PG_U16, 90, 70, 1, false, 0);
    for (size_t i = 0; i < ras_cells(&u); i++)
        u.v[i] = rnd_int(0, 65535);
    ck_assert_int_eq(run_rescale(&u,
                                 json_pack("{s:[i,i],s:[i,i],s:s}", "from", 0, 65535, "to", 0, 255,
                                           "type", "u8"),
                                 NULL, 32, 32, &rr, &err),
                     0);
    ck_assert(!rr.info.has_nodata);
    check_rescale(&u, &rr, 0, 65535, 0, 255);
    tile_free(rr.out);
    pg_raster_info_clear(&rr.info);
    /* a stats value with no valid cell: accepted */
    json_t *none = json_pack("{s:n,s:n}", "min", "max");
    ck_assert_int_eq(run_rescale(&u, json_object(), none, 32, 32, &rr, &err), 0);
    tile_free(rr.out);
    pg_raster_info_clear(&rr.info);
    json_decref(none);
    free(u.v);
    json_decref(stats);
}
END_TEST

START_TEST(test_rescale_errors)
{
    raster r = ras_new(PG_F32, 10, 10, 1, false, 0);
    rescale_run rr;
    pg_error err;
    ck_assert_int_eq(run_rescale(&r, json_object(), NULL, 8, 8, &rr, &err), PG_EPARAM);
    ck_assert(strstr(err.message, "'from'") != NULL);
    ck_assert_int_eq(run_rescale(&r, json_pack("{s:[i,i],s:s}", "from", 0, 1, "from", "x"), NULL, 8,
                                 8, &rr, &err),
                     PG_EPARAM);
    ck_assert(strstr(err.message, "'from'") != NULL);
    ck_assert_int_eq(
        run_rescale(&r,
                    json_pack("{s:[i,i],s:[i,i],s:s}", "from", 0, 1, "to", 0, 256, "type", "u8"),
                    NULL, 8, 8, &rr, &err),
        PG_EPARAM);
    ck_assert(strstr(err.message, "'to'") != NULL);
    ck_assert_int_eq(run_rescale(&r, json_pack("{s:[i,i],s:[i,i,i]}", "from", 0, 1, "to", 0, 1, 2),
                                 NULL, 8, 8, &rr, &err),
                     PG_EPARAM);
    ck_assert(strstr(err.message, "'to'") != NULL);
    json_t *bad = json_pack("{s:i}", "count", 3);
    ck_assert_int_eq(run_rescale(&r, json_object(), bad, 8, 8, &rr, &err), PG_ETYPE);
    ck_assert(strstr(err.message, "args[1]") != NULL);
    json_decref(bad);
    free(r.v);
}
END_TEST

/* ---- the table entries ---- */

START_TEST(test_docs)
{
    int count = 0;
    for (const pg_op_def *d = pg_ops_global; d->name != NULL; d++, count++) {
        ck_assert_msg(d->doc != NULL && strlen(d->doc) > 80, "%s: doc", d->name);
        ck_assert_str_eq(d->family, "global");
        json_error_t je;
        json_t *ex = json_loads(d->example, 0, &je);
        ck_assert_msg(ex != NULL, "%s: example: %s", d->name, je.text);
        ck_assert_str_eq(json_string_value(json_object_get(ex, "op")), d->name);
        json_decref(ex);
        for (const pg_param_def *p = d->params; p->name != NULL; p++) {
            ck_assert_msg(p->doc && p->doc[0], "%s.%s: doc", d->name, p->name);
            if (p->default_json) {
                json_t *dv = json_loads(p->default_json, JSON_DECODE_ANY, &je);
                ck_assert_msg(dv != NULL, "%s.%s: default", d->name, p->name);
                json_decref(dv);
            }
        }
        if (d->result == PG_RESULT_VALUE) ck_assert(d->partial && d->finish && d->partial_size);
        if (d->arg_kinds & PG_ARGK_VALUE) ck_assert_ptr_nonnull(d->bind);
    }
    ck_assert_int_eq(count, 5);
}
END_TEST

/* ---- speed: printed, not asserted ---- */

static double best_ns(void (*fn)(void *), void *arg)
{
    double best = INFINITY;
    for (int b = 0; b < 20; b++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int i = 0; i < 5; i++)
            fn(arg);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        best = fmin(
            best, ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / 5);
    }
    return best;
}

typedef struct speed_ctx {
    pg_node *n;
    pg_tile *in, *out;
} speed_ctx;

static void do_partial(void *a)
{
    speed_ctx *c = a;
    void *p = calloc(1, c->n->op->partial_size_of ? c->n->op->partial_size_of(c->n)
                                                  : c->n->op->partial_size);
    pg_tile *in[2] = {c->in, NULL};
    pg_error err;
    c->n->op->partial(c->n, p, in, &err);
    if (c->n->op->partial_free) c->n->op->partial_free(c->n, p);
    free(p);
}

static void do_compute(void *a)
{
    speed_ctx *c = a;
    pg_tile *in[2] = {c->in, NULL};
    pg_error err;
    c->n->op->compute(c->n, c->out, in, &err);
}

START_TEST(test_speed)
{
    rng = 1;
    static const struct {
        const char *what, *op, *params;
        pg_celltype t;
    } cases[] = {
        {"histogram f32, 256 bins", "global.histogram", "{\"bins\": 256, \"range\": [0, 100]}",
         PG_F32},
        {"histogram f32, 100000 bins", "global.histogram",
         "{\"bins\": 100000, \"range\": [0, 100]}", PG_F32},
        {"quantiles u16 (exact)", "global.quantiles", "{\"probs\": [0.5]}", PG_U16},
        {"quantiles u8 (exact)", "global.quantiles", "{\"probs\": [0.5]}", PG_U8},
        {"quantiles f32 (summary)", "global.quantiles", "{\"probs\": [0.5]}", PG_F32},
        {"breaks equal_interval f32", "global.breaks", "{\"method\": \"equal_interval\"}", PG_F32},
        {"rescale f32 -> u8", "global.rescale",
         "{\"from\": [0, 100], \"to\": [0, 255], \"type\": \"u8\"}", PG_F32},
        {"rescale f32 -> f32", "global.rescale", "{\"from\": [0, 100]}", PG_F32},
        {"rescale u16 -> u8", "global.rescale",
         "{\"from\": [0, 65535], \"to\": [0, 255], \"type\": \"u8\"}", PG_U16},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        raster r =
            ras_new(cases[c].t, 256, 256, 1, true, pg_celltype_is_float(cases[c].t) ? -9999 : 0);
        for (size_t i = 0; i < ras_cells(&r); i++)
            r.v[i] = pg_celltype_is_float(cases[c].t) ? (double)(float)(rnd_unit() * 100)
                                                      : rnd_int(1, pg_celltype_max(cases[c].t));
        pg_node src;
        src_init(&src, &r);
        pg_arg arg = {.node = 0, .ref = &src};
        pg_node n = {.op = find_op(cases[c].op),
                     .name = "n",
                     .params = json_loads(cases[c].params, 0, NULL),
                     .nargs = 1,
                     .args = &arg};
        pg_error err;
        ck_assert_int_eq(n.op->plan(&n, &test_env, &err), 0);
        speed_ctx ctx = {&n, ras_tile(&r, (pg_window){0, 0, 256, 256}), NULL};
        double ns;
        if (n.op->result == PG_RESULT_RASTER) {
            ctx.out = tile_new(n.info.type, 1, (pg_window){0, 0, 256, 256});
            ns = best_ns(do_compute, &ctx);
        } else {
            ns = best_ns(do_partial, &ctx);
        }
        fprintf(stderr, "%-32s 256x256: %7.1f us per tile (%.2f ns per cell)\n", cases[c].what,
                ns / 1e3, ns / 65536.0);
        tile_free(ctx.in);
        tile_free(ctx.out);
        n.op->free_state(&n);
        pg_raster_info_clear(&n.info);
        json_decref(n.params);
        free(r.v);
    }
}
END_TEST

int main(void)
{
    pg_bufpool_init((size_t)1 << 30);
    Suite *s = suite_create("global");
    TCase *tc = tcase_create("global");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_histogram);
    tcase_add_test(tc, test_histogram_value_arg);
    tcase_add_test(tc, test_histogram_errors);
    tcase_add_test(tc, test_quantiles_exact_int);
    tcase_add_test(tc, test_quantiles_float);
    tcase_add_test(tc, test_quantiles_edge);
    tcase_add_test(tc, test_breaks);
    tcase_add_test(tc, test_rescale);
    tcase_add_test(tc, test_rescale_errors);
    tcase_add_test(tc, test_docs);
    tcase_add_test(tc, test_speed);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    pg_bufpool_shutdown();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
