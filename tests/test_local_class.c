/* Unit tests for ops/local_class.c: local.convert, local.clamp, local.mask,
 * local.inverse_mask, local.reclassify, local.normalized_difference,
 * local.majority, local.minority, local.variety, local.weighted_overlay.
 *
 * Nodes are built by hand (no planner, except in test_planner): params
 * with json_pack, args pointing at hand-made source nodes, tiles allocated
 * here. Every output cell is compared with a reference computed in double,
 * straightforwardly, in this file (linear scans, counting, the rules of the
 * file's header written out again). Every comparison is EXACT: each op's
 * result is either a value of an input, a table value, or one double
 * expression rounded once to the output type, which the reference computes
 * in the same order (C11 mode: no FMA contraction); for
 * normalized_difference on 8/16-bit inputs the op divides in f32, which
 * equals the double quotient rounded to f32 (exact operands, and double has
 * more than 2 * 24 + 2 bits). NaN equals NaN. Bad parameters: exact error
 * codes and messages that name the param and the class / weight index.
 */
#include "graph.h"
#include "ops/registry.h"
#include "raster.h"

#include <check.h>
#include <float.h>
#include <gdal.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MAXA 24

/* Check's ck_assert* record a checkpoint (a write to a pipe) on every call,
 * success included: per-cell checks use these, which only call Check on
 * failure. */
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) ck_abort_msg(__VA_ARGS__);                                                    \
    } while (0)
#define CHECK1(cond) CHECK(cond, "Assertion '%s' failed", #cond)

#define U8 PG_U8
#define I8 PG_I8
#define U16 PG_U16
#define I16 PG_I16
#define U32 PG_U32
#define I32 PG_I32
#define F32 PG_F32
#define F64 PG_F64

static const char *const TN[PG_CELLTYPE_COUNT] = {"u8",  "i8",  "u16", "i16",
                                                  "u32", "i32", "f32", "f64"};

static const pg_op_def *find_op(const char *name)
{
    for (const pg_op_def *d = pg_ops_local_class; d->name != NULL; d++)
        if (strcmp(d->name, name) == 0) return d;
    ck_abort_msg("no op %s", name);
    return NULL;
}

/* ---- tiles by hand ---- */

static pg_tile *tile_new(pg_celltype t, int bands, pg_window w)
{
    pg_tile *tl = calloc(1, sizeof *tl);
    ck_assert_ptr_nonnull(tl);
    atomic_init(&tl->refs, 1);
    tl->type = t;
    tl->bands = bands;
    tl->win = w;
    tl->nbytes = (size_t)bands * (size_t)w.w * (size_t)w.h * pg_celltype_size(t);
    size_t alloc = (tl->nbytes + 63) / 64 * 64;
    tl->data = aligned_alloc(64, alloc ? alloc : 64);
    ck_assert_ptr_nonnull(tl->data);
    return tl;
}

static void tile_free(pg_tile *t)
{
    if (t == NULL) return;
    free(t->data);
    free(t);
}

static size_t tile_cells(const pg_tile *t)
{
    return (size_t)t->bands * (size_t)t->win.w * (size_t)t->win.h;
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

/* Stores V, which must be a value of the tile's type. */
static void set(pg_tile *t, size_t i, double v)
{
    if (t->type == PG_F32)
        CHECK(isnan(v) || isinf(v) || (fabs(v) <= FLT_MAX && (double)(float)v == v),
              "%g is not an f32", v);
    else
        CHECK(pg_celltype_holds(t->type, v), "%g is not a %s", v, TN[t->type]);
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

static double rnd_unit(void)
{
    return (double)(rnd() >> 11) * 0x1p-53;
}

/* Round to f32 (inf beyond its range, as the hardware would). */
static double to_f32(double x)
{
    const double lim = 0x1.ffffffp127;
    if (isnan(x)) return x;
    if (x >= lim) return INFINITY;
    if (x <= -lim) return -INFINITY;
    return (double)(float)x;
}

/* A value of type T: edges (0, 1, min, max, halves, huge floats, inf),
 * else uniform over the integer range, or in [-1e4, 1e4] with a fraction. */
static double rnd_value(pg_celltype t)
{
    unsigned r = (unsigned)(rnd() % 32);
    if (pg_celltype_is_float(t)) {
        double big = t == PG_F32 ? (double)FLT_MAX : DBL_MAX;
        double v;
        if (r == 0)
            v = 0.0;
        else if (r == 1)
            v = 1.0;
        else if (r == 2)
            v = (rnd() & 1 ? -1 : 1) * big * (0.5 + 0.5 * rnd_unit());
        else if (r == 3)
            v = (rnd_unit() - 0.5) * 1e-3;
        else if (r == 4)
            v = (rnd() & 1 ? -1 : 1) * INFINITY;
        else if (r == 5) /* a half: rounding ties */
            v = floor((rnd_unit() - 0.5) * 600) + 0.5;
        else if (r == 6) /* around the integer types' limits */
            v = (rnd() & 1 ? 4294967295.0 : -2147483648.0) + floor((rnd_unit() - 0.5) * 4) * 0.5;
        else if (r == 7)
            v = (double)(int)(rnd() % 70000) - 35000.0 + (rnd() & 1 ? 0.5 : 0.25);
        else
            v = (rnd_unit() - 0.5) * 2e4;
        return t == PG_F32 ? to_f32(v) : v;
    }
    double mn = pg_celltype_min(t), mx = pg_celltype_max(t);
    if (r < 3) return 0.0;
    if (r == 3) return 1.0;
    if (r == 4) return mn;
    if (r == 5) return mx;
    double v = mn + floor(rnd_unit() * (mx - mn + 1.0));
    return v > mx ? mx : v;
}

/* ---- fixtures ---- */

typedef struct targ {
    pg_celltype type;
    bool has_nd;
    double nd;
    bool inject_nd;  /* put nodata into ~1/8 of the cells */
    bool inject_nan; /* float rasters: put NaN into ~1/16 of the cells */
    int small;       /* > 0: values in [0, small) (repeats for majority & co) */
} targ;

static const pg_op_def src_op = {
    .name = "test.source", .family = "test", .result = PG_RESULT_RASTER};

typedef struct fixture {
    int nargs;
    targ spec[MAXA];
    pg_node src[MAXA];
    pg_arg args[MAXA];
    pg_tile *tiles[MAXA];
    pg_node n;
    pg_tile *out;
    pg_window win;
    int bands;
    pg_error err;
} fixture;

static const pg_plan_env test_env = {.data_root = "/nonexistent",
                                     .max_nodes = 1000,
                                     .max_depth = 100,
                                     .max_cells = (int64_t)1 << 40,
                                     .tile_w = 256,
                                     .tile_h = 256};

/* Node OP over NARGS raster args; PARAMS stolen (NULL: none). Tiles of
 * BANDS x W x H random cells. */
static void fx_init(fixture *f, const char *op, int nargs, const targ *spec, json_t *params,
                    int64_t w, int64_t h, int bands)
{
    memset(f, 0, sizeof *f);
    CHECK1(nargs <= MAXA);
    f->nargs = nargs;
    f->bands = bands;
    f->win = (pg_window){256, 512, w, h}; /* not at the origin */
    for (int a = 0; a < nargs; a++) {
        f->spec[a] = spec[a];
        pg_node *s = &f->src[a];
        s->op = &src_op;
        s->name = "src";
        s->index = a;
        s->info.width = 1000;
        s->info.height = 1000;
        s->info.bands = bands;
        s->info.type = spec[a].type;
        s->info.has_nodata = spec[a].has_nd;
        s->info.nodata = spec[a].nd;
        f->args[a] = (pg_arg){.node = a, .ref = s, .number = 0};
        pg_tile *t = f->tiles[a] = tile_new(spec[a].type, bands, f->win);
        for (size_t i = 0; i < tile_cells(t); i++) {
            double v = spec[a].small > 0 ? (double)(rnd() % (unsigned)spec[a].small)
                                         : rnd_value(spec[a].type);
            if (spec[a].inject_nd && rnd() % 8 == 0)
                v = spec[a].type == PG_F32 ? to_f32(spec[a].nd) : spec[a].nd;
            if (spec[a].inject_nan && rnd() % 16 == 0) v = NAN;
            set(t, i, v);
        }
    }
    f->n.op = find_op(op);
    f->n.name = "n";
    f->n.params = params != NULL ? params : json_object();
    f->n.nargs = nargs;
    f->n.args = f->args;
    f->n.index = nargs;
}

static int fx_plan(fixture *f)
{
    memset(&f->err, 0, sizeof f->err);
    int rc = f->n.op->plan(&f->n, &test_env, &f->err);
    if (rc != 0) {
        ck_assert_int_eq(rc, f->err.code);
        ck_assert_ptr_null(f->n.state);
    }
    return rc;
}

static void fx_compute(fixture *f)
{
    tile_free(f->out);
    f->out = tile_new(f->n.info.type, f->bands, f->win);
    int rc = f->n.op->compute(&f->n, f->out, f->tiles, &f->err);
    CHECK(rc == 0, "compute: %s", f->err.message);
}

static void fx_free(fixture *f)
{
    if (f->n.state != NULL) f->n.op->free_state(&f->n);
    ck_assert_ptr_null(f->n.state);
    pg_raster_info_clear(&f->n.info);
    json_decref(f->n.params);
    for (int a = 0; a < f->nargs; a++) {
        tile_free(f->tiles[a]);
        pg_raster_info_clear(&f->src[a].info);
    }
    tile_free(f->out);
}

/* Is cell value V of arg A nodata? (the family's rule) */
static bool arg_nodata(const fixture *f, int a, double v)
{
    const targ *s = &f->spec[a];
    if (isnan(v)) return true;
    if (!s->has_nd || isnan(s->nd)) return false;
    if (s->type == PG_F32)
        return fabs(s->nd) <= FLT_MAX || isinf(s->nd) ? v == to_f32(s->nd) : false;
    return pg_celltype_holds(s->type, s->nd) && v == s->nd;
}

/* Asserts output cell I: WANT_ND or value WANT. */
static void check_cell(const fixture *f, size_t i, bool want_nd, double want, const char *what)
{
    const pg_raster_info *oi = &f->n.info;
    double got = get(f->out, i);
    if (want_nd) {
        CHECK(oi->has_nodata, "%s cell %zu: nodata expected, the output has none", what, i);
        CHECK(same(got, oi->nodata), "%s cell %zu: want nodata %g, got %.17g", what, i, oi->nodata,
              got);
        return;
    }
    CHECK(same(got, want), "%s cell %zu: want %.17g, got %.17g", what, i, want, got);
}

#define T(ty) ((targ){.type = (ty)})
#define TND(ty, v) ((targ){.type = (ty), .has_nd = true, .nd = (v), .inject_nd = true})

/* ======================================================================== */
/* local.convert                                                             */

/* The reference conversion of a valid (non-nodata, non-NaN) V of type S to
 * T; sets *bad when the cell becomes nodata. */
static double ref_convert(pg_celltype s, pg_celltype t, double v, bool clamp, bool *bad)
{
    if (t == PG_F64) return v;
    if (t == PG_F32) {
        if (s == PG_F64 && isfinite(v) && fabs(v) > FLT_MAX) {
            if (!clamp) {
                *bad = true;
                return 0;
            }
            return v > 0 ? FLT_MAX : -FLT_MAX;
        }
        return (double)(float)v;
    }
    double lo = pg_celltype_min(t), hi = pg_celltype_max(t);
    double r = isinf(v) ? v : round(v); /* C round(): halves away from zero */
    if (r < lo || r > hi) {
        if (!clamp) {
            *bad = true;
            return 0;
        }
        r = r < lo ? lo : hi;
    }
    return r;
}

static bool within(pg_celltype s, pg_celltype t)
{
    if (t == PG_F64) return true;
    if (t == PG_F32) return s == F32 || s == U8 || s == I8 || s == U16 || s == I16;
    if (pg_celltype_is_float(s)) return false;
    return pg_celltype_min(s) >= pg_celltype_min(t) && pg_celltype_max(s) <= pg_celltype_max(t);
}

START_TEST(test_convert)
{
    rng = 1000 + (uint64_t)_i;
    static const double nds[PG_CELLTYPE_COUNT] = {7, -7, 7, -7, 7, -7, -9999, -9999};
    int checked = 0;
    for (int s = 0; s < PG_CELLTYPE_COUNT; s++) {
        for (int t = 0; t < PG_CELLTYPE_COUNT; t++) {
            for (int mode = 0; mode < 4; mode++) {
                const bool clamp = mode & 1, with_nd = mode & 2;
                targ a = with_nd ? TND((pg_celltype)s, nds[s]) : T((pg_celltype)s);
                a.inject_nan = pg_celltype_is_float((pg_celltype)s);
                fixture f;
                fx_init(&f, "local.convert", 1, &a,
                        json_pack("{s:s, s:b}", "type", TN[t], "clamp", clamp), 64, 16, 2);
                ck_assert_int_eq(fx_plan(&f), 0);
                const pg_raster_info *oi = &f.n.info;
                ck_assert_int_eq(oi->type, t);
                bool want_has = with_nd || pg_celltype_is_float((pg_celltype)s) ||
                                (!clamp && !within((pg_celltype)s, (pg_celltype)t));
                CHECK(oi->has_nodata == want_has, "%s -> %s clamp %d nd %d: has_nodata", TN[s],
                      TN[t], clamp, with_nd);
                if (want_has) {
                    double want_nd = with_nd && pg_celltype_holds((pg_celltype)t, nds[s])
                                         ? nds[s]
                                         : pg_celltype_default_nodata((pg_celltype)t);
                    CHECK(same(oi->nodata, want_nd), "%s -> %s: nodata %g, want %g", TN[s], TN[t],
                          oi->nodata, want_nd);
                }
                fx_compute(&f);
                char what[64];
                snprintf(what, sizeof what, "convert %s->%s clamp %d", TN[s], TN[t], clamp);
                for (size_t i = 0; i < tile_cells(f.out); i++) {
                    double v = get(f.tiles[0], i);
                    bool bad = arg_nodata(&f, 0, v);
                    double r =
                        bad ? 0 : ref_convert((pg_celltype)s, (pg_celltype)t, v, clamp, &bad);
                    check_cell(&f, i, bad, r, what);
                    checked++;
                }
                fx_free(&f);
            }
        }
    }
    ck_assert_int_gt(checked, 100000);
}
END_TEST

/* Specific values, written out by hand. */
START_TEST(test_convert_values)
{
    fixture f;
    targ a = T(F64);
    fx_init(&f, "local.convert", 1, &a, json_pack("{s:s}", "type", "u8"), 12, 1, 1);
    const double in[12] = {0.5,    1.5,   2.5,   -0.5,      -0.49, 254.5,
                           255.49, 255.5, 1e300, -INFINITY, NAN,   3.4999999999999996};
    for (int i = 0; i < 12; i++)
        set(f.tiles[0], (size_t)i, in[i]);
    ck_assert_int_eq(fx_plan(&f), 0); /* "clamp" absent: its default, true */
    CHECK1(f.n.info.has_nodata && f.n.info.nodata == 255);
    fx_compute(&f);
    const uint8_t want[12] = {1, 2, 3, 0, 0, 255, 255, 255, 255, 0, 255, 3};
    ck_assert_mem_eq(f.out->data, want, sizeof want);
    fx_free(&f);

    /* clamp false: out of range -> nodata; i16 keeps the input's nodata */
    a = (targ){.type = F32, .has_nd = true, .nd = -9999};
    fx_init(&f, "local.convert", 1, &a, json_pack("{s:s, s:b}", "type", "i16", "clamp", 0), 8, 1,
            1);
    const double in2[8] = {-9999, 32767.25, 32767.5, -32768.5, -32768.25, INFINITY, 1.5, -2.5};
    for (int i = 0; i < 8; i++)
        set(f.tiles[0], (size_t)i, in2[i]);
    ck_assert_int_eq(fx_plan(&f), 0);
    CHECK1(f.n.info.type == I16 && f.n.info.has_nodata && f.n.info.nodata == -9999);
    fx_compute(&f);
    const int16_t want2[8] = {-9999, 32767, -9999, -9999, -32768, -9999, 2, -3};
    ck_assert_mem_eq(f.out->data, want2, sizeof want2);
    fx_free(&f);

    /* f64 -> f32: beyond FLT_MAX clamps, infinities stay */
    a = T(F64);
    fx_init(&f, "local.convert", 1, &a, json_pack("{s:s}", "type", "f32"), 4, 1, 1);
    const double in3[4] = {1e39, -1e39, INFINITY, 0.1};
    for (int i = 0; i < 4; i++)
        set(f.tiles[0], (size_t)i, in3[i]);
    ck_assert_int_eq(fx_plan(&f), 0);
    fx_compute(&f);
    const float want3[4] = {FLT_MAX, -FLT_MAX, INFINITY, 0.1f};
    ck_assert_mem_eq(f.out->data, want3, sizeof want3);
    fx_free(&f);

    /* u8 -> i32: no nodata needed */
    a = T(U8);
    fx_init(&f, "local.convert", 1, &a, json_pack("{s:s, s:b}", "type", "i32", "clamp", 0), 4, 4,
            1);
    ck_assert_int_eq(fx_plan(&f), 0);
    CHECK1(!f.n.info.has_nodata);
    fx_free(&f);
}
END_TEST

/* ======================================================================== */
/* local.clamp                                                               */

/* The smallest f32 >= x, the largest f32 <= x (by stepping, independently
 * of the op's helper). */
static double f32_ceil(double x)
{
    if (x > FLT_MAX) return INFINITY;
    if (x < -FLT_MAX) return -FLT_MAX;
    float f = (float)x;
    while ((double)f < x)
        f = nextafterf(f, INFINITY);
    while ((double)nextafterf(f, -INFINITY) >= x)
        f = nextafterf(f, -INFINITY);
    return f;
}

static double f32_floor(double x)
{
    return -f32_ceil(-x);
}

START_TEST(test_clamp)
{
    rng = 77;
    static const struct {
        double mn, mx;
    } bounds[] = {{-100, 100}, {0.5, 200.25}, {-1e300, 3}, {-3.3, 1e300}, {0.1, 0.3}, {-5, -5}};
    static const double nds[PG_CELLTYPE_COUNT] = {7, -7, 7, -7, 7, -7, -9999, -9999};
    for (int t = 0; t < PG_CELLTYPE_COUNT; t++) {
        for (size_t b = 0; b < sizeof bounds / sizeof bounds[0]; b++) {
            for (int with_nd = 0; with_nd < 2; with_nd++) {
                targ a = with_nd ? TND((pg_celltype)t, nds[t]) : T((pg_celltype)t);
                a.inject_nan = pg_celltype_is_float((pg_celltype)t);
                double mn = bounds[b].mn, mx = bounds[b].mx;
                fixture f;
                fx_init(&f, "local.clamp", 1, &a, json_pack("{s:f, s:f}", "min", mn, "max", mx), 40,
                        30, 1);
                /* bounds on the type */
                double lo, hi;
                if (t == F64) {
                    lo = mn;
                    hi = mx;
                } else if (t == F32) {
                    lo = f32_ceil(mn);
                    hi = f32_floor(mx);
                } else {
                    lo = fmax(ceil(mn), pg_celltype_min((pg_celltype)t));
                    hi = fmin(floor(mx), pg_celltype_max((pg_celltype)t));
                }
                int rc = fx_plan(&f);
                if (!(lo <= hi)) {
                    /* e.g. [0.1, 0.3] on integers, [-5, -5] on unsigned */
                    ck_assert_int_eq(rc, PG_EPARAM);
                    ck_assert_ptr_nonnull(strstr(f.err.message, "'min'"));
                    ck_assert_ptr_nonnull(strstr(f.err.message, TN[t]));
                    fx_free(&f);
                    continue;
                }
                ck_assert_int_eq(rc, 0);
                ck_assert_int_eq(f.n.info.type, t);
                CHECK1(f.n.info.has_nodata == (bool)with_nd);
                fx_compute(&f);
                for (size_t i = 0; i < tile_cells(f.out); i++) {
                    double v = get(f.tiles[0], i), want = v;
                    if (!arg_nodata(&f, 0, v)) want = v < lo ? lo : v > hi ? hi : v;
                    CHECK(same(get(f.out, i), want),
                          "clamp %s [%g, %g] cell %zu: %.17g -> %.17g, want %.17g", TN[t], mn, mx,
                          i, v, get(f.out, i), want);
                    if (!arg_nodata(&f, 0, v)) CHECK1(get(f.out, i) >= mn && get(f.out, i) <= mx);
                }
                fx_free(&f);
            }
        }
    }

    /* min > max */
    targ a = T(F32);
    fixture f;
    fx_init(&f, "local.clamp", 1, &a, json_pack("{s:f, s:f}", "min", 2.0, "max", 1.0), 4, 4, 1);
    ck_assert_int_eq(fx_plan(&f), PG_EPARAM);
    ck_assert_str_eq(f.err.message, "param 'min' (2) must be <= param 'max' (1)");
    fx_free(&f);
    /* no u8 above 255 */
    a = T(U8);
    fx_init(&f, "local.clamp", 1, &a, json_pack("{s:i, s:i}", "min", 300, "max", 400), 4, 4, 1);
    ck_assert_int_eq(fx_plan(&f), PG_EPARAM);
    ck_assert_str_eq(f.err.message, "params 'min' and 'max': no u8 value lies in [300, 400]");
    fx_free(&f);
}
END_TEST

/* ======================================================================== */
/* local.mask, local.inverse_mask                                            */

START_TEST(test_mask)
{
    rng = 5;
    static const pg_celltype xs[] = {U8, I16, U32, F32, F64};
    static const pg_celltype ms[] = {U8, I8, F32, F64, I32};
    for (int inverse = 0; inverse < 2; inverse++) {
        for (size_t xi = 0; xi < sizeof xs / sizeof xs[0]; xi++) {
            for (size_t mi = 0; mi < sizeof ms / sizeof ms[0]; mi++) {
                for (int nd = 0; nd < 4; nd++) {
                    targ s[2] = {T(xs[xi]), T(ms[mi])};
                    s[1].small = 3; /* 0, 1, 2: many zeros */
                    if (nd & 1) s[0] = TND(xs[xi], 5);
                    if (nd & 2) s[1] = (targ){.type = ms[mi], .has_nd = true, .nd = 2, .small = 3};
                    s[0].inject_nan = s[1].inject_nan = true;
                    if (!pg_celltype_is_float(xs[xi])) s[0].inject_nan = false;
                    if (!pg_celltype_is_float(ms[mi])) s[1].inject_nan = false;
                    fixture f;
                    fx_init(&f, inverse ? "local.inverse_mask" : "local.mask", 2, s, NULL, 48, 20,
                            2);
                    ck_assert_int_eq(fx_plan(&f), 0);
                    const pg_raster_info *oi = &f.n.info;
                    ck_assert_int_eq(oi->type, xs[xi]);
                    CHECK1(oi->has_nodata);
                    double want_nd = (nd & 1) ? 5 : pg_celltype_default_nodata(xs[xi]);
                    CHECK1(same(oi->nodata, want_nd));
                    fx_compute(&f);
                    size_t kept = 0, dropped = 0;
                    for (size_t i = 0; i < tile_cells(f.out); i++) {
                        double x = get(f.tiles[0], i), m = get(f.tiles[1], i);
                        bool mvalid = !arg_nodata(&f, 1, m);
                        bool keep = inverse ? !(mvalid && m != 0) : (mvalid && m != 0);
                        bool out_nd = !keep || arg_nodata(&f, 0, x);
                        check_cell(&f, i, out_nd, x, inverse ? "inverse_mask" : "mask");
                        if (out_nd)
                            dropped++;
                        else
                            kept++;
                    }
                    CHECK1(kept > 0 && dropped > 0);
                    fx_free(&f);
                }
            }
        }
    }
}
END_TEST

/* ======================================================================== */
/* local.reclassify                                                          */

typedef struct rclass {
    double from, to; /* -inf / inf for null */
    bool value_null;
    double value;
} rclass;

/* Builds the "classes" JSON of CL. */
static json_t *classes_json(const rclass *cl, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *c = json_array();
        json_array_append_new(c, isinf(cl[i].from) ? json_null() : json_real(cl[i].from));
        json_array_append_new(c, isinf(cl[i].to) ? json_null() : json_real(cl[i].to));
        json_array_append_new(c, cl[i].value_null ? json_null() : json_real(cl[i].value));
        json_array_append_new(a, c);
    }
    return a;
}

/* Reference: a linear scan. Returns true (nodata) or sets *out. */
static bool ref_reclass(const rclass *cl, size_t n, bool dflt_null, double dflt, double v,
                        double *out)
{
    for (size_t i = 0; i < n; i++) {
        if (cl[i].from <= v && (v < cl[i].to || (isinf(cl[i].to) && v == cl[i].to))) {
            if (cl[i].value_null) return true;
            *out = cl[i].value;
            return false;
        }
    }
    if (dflt_null) return true;
    *out = dflt;
    return false;
}

static void check_reclass(fixture *f, const rclass *cl, size_t n, bool dflt_null, double dflt,
                          pg_celltype otype, const char *what)
{
    CHECK(f->n.info.type == otype, "%s: output %s, want %s", what, TN[f->n.info.type], TN[otype]);
    fx_compute(f);
    for (size_t i = 0; i < tile_cells(f->out); i++) {
        double v = get(f->tiles[0], i), want = 0;
        bool nd = arg_nodata(f, 0, v) || ref_reclass(cl, n, dflt_null, dflt, v, &want);
        if (!nd && otype == F32) want = to_f32(want);
        check_cell(f, i, nd, want, what);
        if (!nd && f->n.info.has_nodata)
            CHECK(!same(want, f->n.info.nodata), "%s: value %g collides with nodata", what, want);
    }
}

START_TEST(test_reclassify)
{
    rng = 99;
    /* 10 contiguous classes over the value range of each type, open at both
     * ends, plus a gap, with integer values */
    for (int t = 0; t < PG_CELLTYPE_COUNT; t++) {
        for (int variant = 0; variant < 4; variant++) {
            const pg_celltype ty = (pg_celltype)t;
            double lo = pg_celltype_is_float(ty) ? -1e4 : pg_celltype_min(ty);
            double hi = pg_celltype_is_float(ty) ? 1e4 : pg_celltype_max(ty);
            rclass cl[12];
            size_t n = 0;
            for (int k = 0; k < 10; k++) {
                double a = lo + (hi - lo) * k / 10.0, b = lo + (hi - lo) * (k + 1) / 10.0;
                if (!pg_celltype_is_float(ty)) {
                    a = floor(a);
                    b = floor(b);
                }
                if (k == 4) continue; /* a gap: default */
                cl[n++] = (rclass){k == 0 ? -INFINITY : a, k == 9 ? INFINITY : b, false, k + 1};
            }
            if (variant & 2) cl[2].value_null = true; /* a class that maps to nodata */
            bool dnull = variant & 1;
            double dflt = 42;
            targ a = T(ty);
            if (variant == 3) a = TND(ty, pg_celltype_is_float(ty) ? -9999 : 1);
            a.inject_nan = pg_celltype_is_float(ty);
            fixture f;
            json_t *params = json_pack("{s:o}", "classes", classes_json(cl, n));
            json_object_set_new(params, "default", dnull ? json_null() : json_real(dflt));
            fx_init(&f, "local.reclassify", 1, &a, params, 64, 32, 2);
            ck_assert_int_eq(fx_plan(&f), 0);
            char what[64];
            snprintf(what, sizeof what, "reclassify %s variant %d", TN[t], variant);
            check_reclass(&f, cl, n, dnull, dflt, U8, what);
            fx_free(&f);
        }
    }

    /* many classes (binary search for wide types, the lookup table for
     * 16-bit ones), fractional bounds and values -> f32 */
    for (int t = 0; t < PG_CELLTYPE_COUNT; t++) {
        const pg_celltype ty = (pg_celltype)t;
        double lo = pg_celltype_is_float(ty) ? -1e4 : fmax(pg_celltype_min(ty), -1e4);
        double hi = pg_celltype_is_float(ty) ? 1e4 : fmin(pg_celltype_max(ty), 1e4);
        enum { NC = 300 };
        rclass *cl = calloc(NC, sizeof *cl);
        size_t n = 0;
        for (int k = 0; k < NC; k++) {
            double a = lo + (hi - lo) * k / NC + 0.25, b = lo + (hi - lo) * (k + 1) / NC - 0.25;
            if (k % 7 == 3) continue;
            cl[n++] = (rclass){a, b, false, k * 0.1 - 3};
        }
        /* shuffle: the order of the classes must not matter */
        for (size_t i = n - 1; i > 0; i--) {
            size_t j = (size_t)(rnd() % (i + 1));
            rclass tmp = cl[i];
            cl[i] = cl[j];
            cl[j] = tmp;
        }
        targ a = T(ty);
        a.inject_nan = pg_celltype_is_float(ty);
        for (int v = 0; v < 2; v++) {
            fixture f;
            json_t *params =
                json_pack("{s:o, s:f}", "classes", classes_json(cl, n), "default", -7.5);
            if (v) json_object_set_new(params, "type", json_string("f64"));
            fx_init(&f, "local.reclassify", 1, &a, params, 256, 64, 1);
            /* most cells of integer types fall inside [lo, hi] */
            if (!pg_celltype_is_float(ty))
                for (size_t i = 0; i < tile_cells(f.tiles[0]); i++)
                    if (rnd() % 4) set(f.tiles[0], i, floor(lo + rnd_unit() * (hi - lo)));
            ck_assert_int_eq(fx_plan(&f), 0);
            char what[64];
            snprintf(what, sizeof what, "reclassify %s 300 classes -> %s", TN[t],
                     v ? "f64" : "f32");
            check_reclass(&f, cl, n, false, -7.5, v ? F64 : F32, what);
            fx_free(&f);
        }
        free(cl);
    }

    /* 101 integer boundaries (binary search for wide types), cells on them */
    for (int t = 0; t < PG_CELLTYPE_COUNT; t++) {
        const pg_celltype ty = (pg_celltype)t;
        rclass cl[100];
        for (int k = 0; k < 100; k++)
            cl[k] = (rclass){k * 10.0, k * 10.0 + 10.0, false, k % 50};
        targ a = T(ty);
        fixture f;
        fx_init(&f, "local.reclassify", 1, &a,
                json_pack("{s:o, s:i}", "classes", classes_json(cl, 100), "default", 99), 64, 32,
                1);
        for (size_t i = 0; i < tile_cells(f.tiles[0]); i++) {
            double v = (double)(rnd() % 1100) - 50;
            if (!pg_celltype_holds(ty, v)) v = (double)(rnd() % 100);
            set(f.tiles[0], i, v);
        }
        ck_assert_int_eq(fx_plan(&f), 0);
        check_reclass(&f, cl, 100, false, 99, U8, "reclassify 100 integer classes");
        fx_free(&f);
    }

    /* f32 input, boundaries that are not f32 values: exact comparison */
    {
        rclass cl[2] = {{-INFINITY, 0.1, false, 1}, {0.1, INFINITY, false, 2}};
        targ a = T(F32);
        fixture f;
        fx_init(&f, "local.reclassify", 1, &a, json_pack("{s:o}", "classes", classes_json(cl, 2)),
                4, 1, 1);
        float below = nextafterf(0.1f, 0), at = 0.1f; /* 0.1f > 0.1 */
        set(f.tiles[0], 0, below);
        set(f.tiles[0], 1, at);
        set(f.tiles[0], 2, -INFINITY);
        set(f.tiles[0], 3, INFINITY);
        ck_assert_int_eq(fx_plan(&f), 0);
        CHECK1(f.n.info.has_nodata && isnan(f.n.info.nodata) == false);
        check_reclass(&f, cl, 2, true, 0, U8, "f32 bounds");
        const uint8_t want[4] = {1, 2, 1, 2};
        ck_assert_mem_eq(f.out->data, want, 4);
        fx_free(&f);
    }
}
END_TEST

/* The automatic output type and nodata value. */
START_TEST(test_reclassify_types)
{
    static const struct {
        pg_celltype in;
        bool in_nd;
        double in_ndv;
        const char *classes, *dflt;
        pg_celltype want;
        bool has_nd;
        double nd;
    } cases[] = {
        {U8, false, 0, "[[0, 10, 1], [10, 20, 5]]", "0", U8, false, 0},
        {U8, false, 0, "[[0, 10, 1], [10, 20, 5]]", "null", U8, true, 255},
        {U8, true, 0, "[[1, 10, 1], [10, 20, 5]]", "null", U8, true, 0},
        {U8, true, 0, "[[0, 10, 0], [10, 20, 5]]", "null", U8, true, 255},
        {U16, false, 0, "[[0, 10, -1], [10, 20, 5]]", "null", I8, true, -128},
        {I16, false, 0, "[[0, 10, 300], [10, 20, 5]]", "2", U16, false, 0},
        {F32, false, 0, "[[0, 10, 300], [10, 20, 5]]", "2", U16, true, 65535},
        {U8, false, 0, "[[0, 10, -300], [10, 20, 5]]", "null", I16, true, -32768},
        {U8, false, 0, "[[0, 10, 70000]]", "null", U32, true, 4294967295.0},
        {U8, false, 0, "[[0, 10, -70000]]", "null", I32, true, -2147483648.0},
        {U8, false, 0, "[[0, 10, 5000000000]]", "null", F64, true, NAN},
        {U8, false, 0, "[[0, 10, 0.5]]", "null", F32, true, NAN},
        {F64, true, -9999, "[[0, 10, 0.5]]", "null", F32, true, -9999},
        {U8, false, 0, "[[0, 10, 1e39]]", "null", F64, true, NAN},
        /* the classes cover every u8 value: no nodata needed for null default */
        {U8, false, 0, "[[null, 128, 0], [128, null, 255]]", "null", U8, false, 0},
        /* every u8 value used and nodata needed: u16 */
        {F32, false, 0, "[[null, 128, 0], [128, null, 255]]", "null", U16, true, 65535},
        /* values -128, 127 and 255: no 8-bit type holds them all, u16 no
         * negative value -> i16 */
        {I8, false, 0, "[[null, 0, -128], [0, 1, 127], [1, 100, 255]]", "null", I16, true, -32768},
        {U16, false, 0, "[[0, 10, null]]", "3", U8, true, 255},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        targ a = {.type = cases[c].in, .has_nd = cases[c].in_nd, .nd = cases[c].in_ndv};
        fixture f;
        json_t *params = json_object();
        json_object_set_new(params, "classes", json_loads(cases[c].classes, 0, NULL));
        json_object_set_new(params, "default", json_loads(cases[c].dflt, JSON_DECODE_ANY, NULL));
        fx_init(&f, "local.reclassify", 1, &a, params, 16, 16, 1);
        CHECK(fx_plan(&f) == 0, "case %zu: %s", c, f.err.message);
        CHECK(f.n.info.type == cases[c].want, "case %zu: type %s, want %s", c, TN[f.n.info.type],
              TN[cases[c].want]);
        CHECK(f.n.info.has_nodata == cases[c].has_nd, "case %zu: has_nodata", c);
        if (cases[c].has_nd)
            CHECK(same(f.n.info.nodata, cases[c].nd), "case %zu: nodata %g, want %g", c,
                  f.n.info.nodata, cases[c].nd);
        fx_free(&f);
    }
}
END_TEST

/* Parameter errors: exact code and message. */
START_TEST(test_reclassify_errors)
{
    static const struct {
        const char *params, *msg;
    } cases[] = {
        {"{\"classes\": 5}", "param 'classes' must be a non-empty array of [from, to, value]"},
        {"{\"classes\": []}", "param 'classes' must be a non-empty array of [from, to, value]"},
        {"{\"classes\": [[0, 1, 2], [1, 2]]}",
         "param 'classes': classes[1] must be an array [from, to, value]"},
        {"{\"classes\": [[0, 1, 2], [1, 2, 3], [\"a\", 5, 1]]}",
         "param 'classes': classes[2]: 'from' must be a number or null"},
        {"{\"classes\": [[0, true, 2]]}",
         "param 'classes': classes[0]: 'to' must be a number or null"},
        {"{\"classes\": [[0, 1, \"x\"]]}",
         "param 'classes': classes[0]: 'value' must be a number or null"},
        {"{\"classes\": [[0, 1, 1], [5, 5, 2]]}",
         "param 'classes': classes[1] is empty: 'from' (5) must be < 'to' (5)"},
        {"{\"classes\": [[0, 10, 1], [20, 30, 2], [29.5, null, 3]]}",
         "param 'classes': classes[1] [20, 30) and classes[2] [29.5, inf) overlap"},
        {"{\"classes\": [[null, 0, 1], [5, 6, 2], [-1, 1, 3]]}",
         "param 'classes': classes[0] [-inf, 0) and classes[2] [-1, 1) overlap"},
        {"{\"classes\": [[0, 1, 1], [0, 2, 2]]}",
         "param 'classes': classes[0] [0, 1) and classes[1] [0, 2) overlap"},
        {"{\"classes\": [[0, 1, 1]], \"default\": \"x\"}",
         "param 'default' must be a number or null"},
        {"{\"classes\": [[0, 1, 1], [1, 2, 256]], \"type\": \"u8\"}",
         "param 'type': u8 cannot hold the value 256 of classes[1]"},
        {"{\"classes\": [[0, 1, null], [1, 2, 2.5]], \"type\": \"i16\"}",
         "param 'type': i16 cannot hold the value 2.5 of classes[1]"},
        {"{\"classes\": [[0, 1, 1]], \"default\": -1, \"type\": \"u16\"}",
         "param 'type': u16 cannot hold the default -1"},
        {"{\"classes\": [[null, 100, 0], [100, null, 255]], \"type\": \"u8\"}",
         "param 'type': u8 has no nodata value left: the values use 255"},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        targ a = T(F32);
        fixture f;
        json_error_t je;
        json_t *params = json_loads(cases[c].params, 0, &je);
        CHECK(params != NULL, "case %zu: %s", c, je.text);
        if (json_object_get(params, "default") == NULL)
            json_object_set_new(params, "default", json_null());
        fx_init(&f, "local.reclassify", 1, &a, params, 4, 4, 1);
        ck_assert_int_eq(fx_plan(&f), PG_EPARAM);
        CHECK(strcmp(f.err.message, cases[c].msg) == 0, "case %zu: '%s', want '%s'", c,
              f.err.message, cases[c].msg);
        fx_free(&f);
    }

    /* 65536 classes are fine, 65537 are not */
    for (int extra = 0; extra < 2; extra++) {
        size_t n = 65536 + (size_t)extra;
        json_t *cls = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(
                cls, json_pack("[I, I, I]", (json_int_t)i, (json_int_t)i + 1, (json_int_t)(i % 7)));
        targ a = T(F64);
        fixture f;
        fx_init(&f, "local.reclassify", 1, &a, json_pack("{s:o, s:n}", "classes", cls, "default"),
                64, 64, 1);
        if (extra) {
            ck_assert_int_eq(fx_plan(&f), PG_EPARAM);
            ck_assert_str_eq(f.err.message, "param 'classes' has 65537 classes (at most 65536)");
        } else {
            ck_assert_int_eq(fx_plan(&f), 0);
            ck_assert_int_eq(f.n.info.type, U8);
            for (size_t i = 0; i < 64 * 64; i++)
                set(f.tiles[0], i, (double)(rnd() % 70000) - 100 + (rnd() % 2) * 0.5);
            fx_compute(&f);
            for (size_t i = 0; i < 64 * 64; i++) {
                double v = get(f.tiles[0], i);
                bool nd = v < 0 || v >= 65536;
                check_cell(&f, i, nd, nd ? 0 : fmod(floor(v), 7), "65536 classes");
            }
        }
        fx_free(&f);
    }
}
END_TEST

/* ======================================================================== */
/* local.normalized_difference                                               */

START_TEST(test_normalized_difference)
{
    rng = 4242;
    static const struct {
        targ a, b;
        pg_celltype out;
    } cases[] = {
        {{.type = U16}, {.type = U16}, F32},
        {{.type = U16, .small = 3}, {.type = U16, .small = 3}, F32}, /* a + b == 0 often */
        {{.type = U8, .has_nd = true, .nd = 0, .inject_nd = true}, {.type = I16}, F32},
        {{.type = I8}, {.type = I8, .small = 2}, F32},
        {{.type = F32, .inject_nan = true},
         {.type = F32, .has_nd = true, .nd = -9999, .inject_nd = true},
         F32},
        {{.type = F32}, {.type = U16}, F32},
        {{.type = F64, .inject_nan = true}, {.type = U16}, F64},
        {{.type = I32}, {.type = U8}, F64},
        {{.type = U32, .has_nd = true, .nd = 7, .inject_nd = true}, {.type = I32}, F64},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        targ s[2] = {cases[c].a, cases[c].b};
        fixture f;
        fx_init(&f, "local.normalized_difference", 2, s, NULL, 64, 40, 2);
        ck_assert_int_eq(fx_plan(&f), 0);
        ck_assert_int_eq(f.n.info.type, cases[c].out);
        CHECK1(f.n.info.has_nodata && isnan(f.n.info.nodata));
        fx_compute(&f);
        size_t nds = 0;
        for (size_t i = 0; i < tile_cells(f.out); i++) {
            double a = get(f.tiles[0], i), b = get(f.tiles[1], i);
            bool nd = arg_nodata(&f, 0, a) || arg_nodata(&f, 1, b) || a + b == 0;
            double r = (a - b) / (a + b);
            if (!isfinite(r)) nd = true;
            if (cases[c].out == F32) {
                if (fabs(r) > FLT_MAX) nd = true;
                r = (double)(float)r;
            }
            nds += nd;
            char what[48];
            snprintf(what, sizeof what, "normalized_difference case %zu", c);
            check_cell(&f, i, nd, r, what);
        }
        if (c == 1 || c == 2) CHECK1(nds > 0);
        fx_free(&f);
    }
}
END_TEST

/* ======================================================================== */
/* local.majority, local.minority, local.variety                             */

typedef enum { K_MAJ, K_MIN, K_VAR } nkind;

static void check_nary(fixture *f, nkind k)
{
    for (size_t i = 0; i < tile_cells(f->out); i++) {
        double vals[MAXA];
        int m = 0;
        for (int a = 0; a < f->nargs; a++) {
            double v = get(f->tiles[a], i);
            if (!arg_nodata(f, a, v)) vals[m++] = v;
        }
        /* count each value's occurrences; pick by the rules */
        int distinct = 0, bestc = k == K_MAJ ? 0 : MAXA + 1;
        double best = 0;
        for (int x = 0; x < m; x++) {
            int cnt = 0, first = 1;
            for (int y = 0; y < m; y++) {
                if (vals[y] == vals[x]) cnt++;
                if (y < x && vals[y] == vals[x]) first = 0;
            }
            distinct += first;
            bool better = k == K_MAJ ? (cnt > bestc || (cnt == bestc && vals[x] < best))
                                     : (cnt < bestc || (cnt == bestc && vals[x] < best));
            if (better) {
                bestc = cnt;
                best = vals[x];
            }
        }
        const char *what = k == K_MAJ ? "majority" : k == K_MIN ? "minority" : "variety";
        if (k == K_VAR)
            check_cell(f, i, m == 0, distinct, what);
        else
            check_cell(f, i, m == 0, best, what);
    }
}

START_TEST(test_nary)
{
    rng = 31337 + (uint64_t)_i;
    static const struct {
        int n;
        targ t[MAXA > 20 ? 20 : MAXA];
        pg_celltype out; /* majority/minority */
        int all;         /* 1: the same targ for every arg (t[0]) */
    } cases[] = {
        {2, {{.type = U8, .small = 3}}, U8, 1},
        {3, {{.type = U8, .small = 3}}, U8, 1},
        {5, {{.type = U8, .small = 4}}, U8, 1},
        {5, {{.type = I16, .small = 3, .has_nd = true, .nd = 1, .inject_nd = true}}, I16, 1},
        {5, {{.type = F32, .small = 3, .inject_nan = true}}, F32, 1},
        {5, {{.type = F64, .small = 4, .has_nd = true, .nd = 2, .inject_nd = true}}, F64, 1},
        {4,
         {{.type = U8, .small = 3},
          {.type = I8, .small = 3},
          {.type = U8, .small = 3},
          {.type = I8, .small = 3, .has_nd = true, .nd = 0, .inject_nd = true}},
         I16,
         0},
        {3,
         {{.type = U16, .small = 3}, {.type = I16, .small = 3}, {.type = U8, .small = 3}},
         I32,
         0},
        {3,
         {{.type = F32, .small = 3}, {.type = U8, .small = 3}, {.type = I16, .small = 3}},
         F32,
         0},
        {3,
         {{.type = U32, .small = 3}, {.type = I8, .small = 3}, {.type = U8, .small = 3}},
         F64,
         0},
        {2, {{.type = F32, .small = 3}, {.type = I32, .small = 3}}, F64, 0},
        {3,
         {{.type = U32, .small = 3}, {.type = U8, .small = 3}, {.type = U16, .small = 3}},
         U32,
         0},
        /* count arrays (9 to 16 args) */
        {9, {{.type = U8, .small = 4, .has_nd = true, .nd = 3, .inject_nd = true}}, U8, 1},
        {12, {{.type = F32, .small = 5, .inject_nan = true}}, F32, 1},
        {16, {{.type = U32, .small = 7}}, U32, 1},
        /* the sorting path */
        {17, {{.type = U8, .small = 5, .has_nd = true, .nd = 4, .inject_nd = true}}, U8, 1},
        {20, {{.type = F64, .small = 6, .inject_nan = true}}, F64, 1},
        {20, {{.type = I32, .small = 9}}, I32, 1},
        /* full-range values: few repeats (ties everywhere) */
        {5, {{.type = U16}}, U16, 1},
        {5, {{.type = F32, .inject_nan = true}}, F32, 1},
    };
    static const char *const ops[] = {"local.majority", "local.minority", "local.variety"};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (int k = 0; k < 3; k++) {
            targ s[MAXA];
            for (int a = 0; a < cases[c].n; a++)
                s[a] = cases[c].all ? cases[c].t[0] : cases[c].t[a];
            fixture f;
            fx_init(&f, ops[k], cases[c].n, s, NULL, 48, 24, 2);
            ck_assert_int_eq(fx_plan(&f), 0);
            bool any_nd = false;
            for (int a = 0; a < cases[c].n; a++)
                any_nd |= s[a].has_nd || pg_celltype_is_float(s[a].type);
            CHECK1(f.n.info.has_nodata == any_nd);
            if (k == K_VAR) {
                ck_assert_int_eq(f.n.info.type, U8);
                if (any_nd) CHECK1(f.n.info.nodata == 0);
            } else {
                CHECK(f.n.info.type == cases[c].out, "case %zu: %s, want %s", c, TN[f.n.info.type],
                      TN[cases[c].out]);
                if (any_nd) {
                    double want = s[0].has_nd && pg_celltype_holds(cases[c].out, s[0].nd)
                                      ? s[0].nd
                                      : pg_celltype_default_nodata(cases[c].out);
                    CHECK1(same(f.n.info.nodata, want));
                }
            }
            fx_compute(&f);
            check_nary(&f, (nkind)k);
            fx_free(&f);
        }
    }

    /* variety's type grows with the number of args */
    for (int nargs = 255; nargs <= 256; nargs++) {
        pg_node src = {.op = &src_op, .name = "s"};
        src.info = (pg_raster_info){.width = 4, .height = 4, .bands = 1, .type = U8};
        pg_arg *args = calloc((size_t)nargs, sizeof *args);
        for (int a = 0; a < nargs; a++)
            args[a] = (pg_arg){.node = 0, .ref = &src};
        pg_node n = {.op = find_op("local.variety"), .name = "v", .nargs = nargs, .args = args};
        pg_error err;
        ck_assert_int_eq(n.op->plan(&n, &test_env, &err), 0);
        ck_assert_int_eq(n.info.type, nargs <= 255 ? U8 : U16);
        /* 256 args: the sorting path over a real tile */
        pg_tile *t = tile_new(U8, 1, (pg_window){0, 0, 4, 4});
        for (size_t i = 0; i < 16; i++)
            set(t, i, (double)i);
        pg_tile **in = calloc((size_t)nargs, sizeof *in);
        for (int a = 0; a < nargs; a++)
            in[a] = t;
        pg_tile *out = tile_new(n.info.type, 1, t->win);
        ck_assert_int_eq(n.op->compute(&n, out, in, &err), 0);
        for (size_t i = 0; i < 16; i++)
            CHECK1(get(out, i) == 1);
        n.op->free_state(&n);
        pg_raster_info_clear(&n.info);
        tile_free(out);
        tile_free(t);
        free(in);
        free(args);
    }
}
END_TEST

/* Ties and specific values, by hand. */
START_TEST(test_nary_values)
{
    /* 4 args, 6 cells: columns are cells */
    const double v[4][6] = {
        {1, 3, 5, 0, 9, 7},
        {2, 3, 5, 0, 9, 8},
        {2, 1, 4, 1, 9, 9},
        {1, 1, 4, 2, 9, 9},
    };
    const double maj[6] = {1, 1, 4, 0, 9, 9};
    const double min[6] = {1, 1, 4, 1, 9, 7};
    const double var[6] = {2, 2, 2, 3, 1, 3};
    const double *want[3] = {maj, min, var};
    static const char *const ops[] = {"local.majority", "local.minority", "local.variety"};
    for (int k = 0; k < 3; k++) {
        targ s[4] = {T(I16), T(I16), T(I16), T(I16)};
        fixture f;
        fx_init(&f, ops[k], 4, s, NULL, 6, 1, 1);
        for (int a = 0; a < 4; a++)
            for (int i = 0; i < 6; i++)
                set(f.tiles[a], (size_t)i, v[a][i]);
        ck_assert_int_eq(fx_plan(&f), 0);
        fx_compute(&f);
        for (int i = 0; i < 6; i++)
            CHECK(get(f.out, (size_t)i) == want[k][i], "%s cell %d: %g, want %g", ops[k], i,
                  get(f.out, (size_t)i), want[k][i]);
        fx_free(&f);
    }
}
END_TEST

/* ======================================================================== */
/* local.weighted_overlay                                                    */

START_TEST(test_weighted_overlay)
{
    rng = 2024;
    static const struct {
        int n;
        targ t[4];
        double w[4];
        bool norm;
        pg_celltype out;
    } cases[] = {
        {2, {{.type = U8}, {.type = U8}}, {0.7, 0.3}, true, F32},
        {3,
         {{.type = U8, .has_nd = true, .nd = 0, .inject_nd = true},
          {.type = I16},
          {.type = F32, .inject_nan = true}},
         {1, 2, 3},
         true,
         F32},
        {3, {{.type = U16}, {.type = I8}, {.type = U8}}, {0.1, -0.2, 5}, false, F32},
        {2, {{.type = F64, .inject_nan = true}, {.type = U16}}, {2, 0.5}, true, F64},
        {2,
         {{.type = I32}, {.type = U32, .has_nd = true, .nd = 3, .inject_nd = true}},
         {1, 1},
         false,
         F64},
        {4, {{.type = F32}, {.type = F32}, {.type = F32}, {.type = F32}}, {1, 1, 1, 1}, true, F32},
        {1, {{.type = I16}}, {3}, false, F32},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        json_t *w = json_array();
        for (int a = 0; a < cases[c].n; a++)
            json_array_append_new(w, json_real(cases[c].w[a]));
        fixture f;
        fx_init(&f, "local.weighted_overlay", cases[c].n, cases[c].t,
                json_pack("{s:o, s:b}", "weights", w, "normalize", cases[c].norm), 50, 30, 2);
        ck_assert_int_eq(fx_plan(&f), 0);
        ck_assert_int_eq(f.n.info.type, cases[c].out);
        CHECK1(f.n.info.has_nodata && isnan(f.n.info.nodata));
        fx_compute(&f);
        double sumw = 0;
        for (int a = 0; a < cases[c].n; a++)
            sumw += cases[c].w[a];
        for (size_t i = 0; i < tile_cells(f.out); i++) {
            bool nd = false;
            double acc = 0;
            for (int a = 0; a < cases[c].n; a++) {
                double v = get(f.tiles[a], i);
                if (arg_nodata(&f, a, v)) nd = true;
                acc = a == 0 ? cases[c].w[a] * v : acc + cases[c].w[a] * v;
            }
            if (cases[c].norm) acc = acc / sumw;
            if (!isfinite(acc)) nd = true;
            if (cases[c].out == F32) {
                if (fabs(acc) > FLT_MAX) nd = true;
                acc = (double)(float)acc;
            }
            check_cell(&f, i, nd, acc, "weighted_overlay");
        }
        fx_free(&f);
    }

    /* parameter errors */
    static const struct {
        const char *params, *msg;
    } bad[] = {
        {"{\"weights\": [1, 2, 3]}", "param 'weights' has 3 entries for 2 args"},
        {"{\"weights\": [1]}", "param 'weights' has 1 entries for 2 args"},
        {"{\"weights\": 1}", "param 'weights' must be an array of numbers, one per arg"},
        {"{\"weights\": [1, \"x\"]}", "param 'weights': weights[1] must be a number"},
        {"{\"weights\": [1, -1], \"normalize\": true}",
         "param 'weights' sum to 0: cannot normalize (set \"normalize\": false)"},
    };
    for (size_t c = 0; c < sizeof bad / sizeof bad[0]; c++) {
        targ s[2] = {T(U8), T(U8)};
        fixture f;
        fx_init(&f, "local.weighted_overlay", 2, s, json_loads(bad[c].params, 0, NULL), 4, 4, 1);
        ck_assert_int_eq(fx_plan(&f), PG_EPARAM);
        CHECK(strcmp(f.err.message, bad[c].msg) == 0, "case %zu: '%s'", c, f.err.message);
        fx_free(&f);
    }
    /* sum 0 is fine without normalizing */
    targ s[2] = {T(U8), T(U8)};
    fixture f;
    fx_init(&f, "local.weighted_overlay", 2, s,
            json_pack("{s:[i,i], s:b}", "weights", 1, -1, "normalize", 0), 4, 4, 1);
    ck_assert_int_eq(fx_plan(&f), 0);
    fx_free(&f);
}
END_TEST

/* ======================================================================== */
/* Grids and arg kinds, for every op                                         */

static json_t *valid_params(const char *op)
{
    if (strcmp(op, "local.convert") == 0) return json_pack("{s:s}", "type", "i16");
    if (strcmp(op, "local.clamp") == 0) return json_pack("{s:i, s:i}", "min", 0, "max", 5);
    if (strcmp(op, "local.reclassify") == 0)
        return json_pack("{s:[[i,i,i]], s:n}", "classes", 0, 1, 1, "default");
    if (strcmp(op, "local.weighted_overlay") == 0)
        return json_pack("{s:[i,i,i]}", "weights", 1, 1, 1);
    return NULL;
}

START_TEST(test_grid_errors)
{
    for (const pg_op_def *d = pg_ops_local_class; d->name != NULL; d++) {
        int nargs = d->max_args == 1 ? 1 : d->max_args == 2 ? 2 : 3;
        if (nargs == 1) continue; /* one arg: no grid to compare */
        targ s[3] = {T(U8), T(U8), T(U8)};
        fixture f;
        /* size */
        fx_init(&f, d->name, nargs, s, valid_params(d->name), 4, 4, 1);
        ck_assert_int_eq(fx_plan(&f), 0);
        f.n.op->free_state(&f.n);
        f.src[nargs - 1].info.width = 999;
        CHECK(fx_plan(&f) == PG_EGRID, "%s: size", d->name);
        char want[64];
        snprintf(want, sizeof want, "args[0] and args[%d]", nargs - 1);
        CHECK(strstr(f.err.message, want) && strstr(f.err.message, d->name), "%s: '%s'", d->name,
              f.err.message);
        ck_assert_ptr_nonnull(strstr(f.err.message, "size 1000x1000 vs 999x1000"));
        fx_free(&f);
        /* bands */
        fx_init(&f, d->name, nargs, s, valid_params(d->name), 4, 4, 1);
        f.src[1].info.bands = 3;
        ck_assert_int_eq(fx_plan(&f), PG_EGRID);
        ck_assert_ptr_nonnull(strstr(f.err.message, "1 vs 3 bands"));
        fx_free(&f);
        /* geotransform */
        fx_init(&f, d->name, nargs, s, valid_params(d->name), 4, 4, 1);
        for (int a = 0; a < nargs; a++) {
            f.src[a].info.has_geotransform = true;
            const double gt[6] = {0, 1, 0, 0, 0, -1};
            memcpy(f.src[a].info.geotransform, gt, sizeof gt);
        }
        f.src[1].info.geotransform[0] = 0.5;
        ck_assert_int_eq(fx_plan(&f), PG_EGRID);
        fx_free(&f);
        /* a value node as an arg */
        static const pg_op_def value_op = {.name = "test.value", .result = PG_RESULT_VALUE};
        fx_init(&f, d->name, nargs, s, valid_params(d->name), 4, 4, 1);
        f.src[1].op = &value_op;
        ck_assert_int_eq(fx_plan(&f), PG_ETYPE);
        ck_assert_ptr_nonnull(strstr(f.err.message, "args[1] is not a raster"));
        fx_free(&f);
    }
}
END_TEST

/* Through the real planner: declared params (required, types, unknown
 * names) are checked before plan() and the errors name the node. */
START_TEST(test_planner)
{
    static const struct {
        const char *node;
        int code;
        const char *msg;
    } cases[] = {
        {"{\"op\": \"local.convert\", \"args\": [{\"ref\": \"c\"}]}", PG_EPARAM,
         "param 'type' is required"},
        {"{\"op\": \"local.convert\", \"type\": \"u9\", \"args\": [{\"ref\": \"c\"}]}", PG_EPARAM,
         "param 'type' must be a cell type"},
        {"{\"op\": \"local.convert\", \"type\": \"u8\", \"clamp\": 1, \"args\": [{\"ref\": "
         "\"c\"}]}",
         PG_EPARAM, "param 'clamp' must be a boolean"},
        {"{\"op\": \"local.clamp\", \"min\": 1, \"args\": [{\"ref\": \"c\"}]}", PG_EPARAM,
         "param 'max' is required"},
        {"{\"op\": \"local.reclassify\", \"args\": [{\"ref\": \"c\"}]}", PG_EPARAM,
         "param 'classes' is required"},
        {"{\"op\": \"local.reclassify\", \"classes\": [[0, 1, 2]], \"clases\": 1, \"args\": "
         "[{\"ref\": \"c\"}]}",
         PG_EUNKNOWNPARAM, "did you mean 'classes'"},
        {"{\"op\": \"local.majority\", \"args\": [{\"ref\": \"c\"}]}", PG_EARITY, ""},
        {"{\"op\": \"local.mask\", \"args\": [{\"ref\": \"c\"}, 1]}", PG_ETYPE, ""},
        {"{\"op\": \"local.weighted_overlay\", \"args\": [{\"ref\": \"c\"}]}", PG_EPARAM,
         "param 'weights' is required"},
        {"{\"op\": \"local.normalized_difference\", \"args\": [{\"ref\": \"c\"}, {\"ref\": "
         "\"d\"}]}",
         PG_EGRID, "args[0] and args[1] are not on the same grid"},
        {"{\"op\": \"local.reclassify\", \"classes\": [[0, 1, 2], [0.5, 3, 1]], \"args\": "
         "[{\"ref\": \"c\"}]}",
         PG_EPARAM, "classes[0] [0, 1) and classes[1] [0.5, 3) overlap"},
        {"{\"op\": \"local.reclassify\", \"classes\": [[0, 1, 2]], \"default\": 7, \"args\": "
         "[{\"ref\": \"c\"}]}",
         0, ""},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        json_error_t je;
        json_t *node = json_loads(cases[c].node, 0, &je);
        CHECK(node != NULL, "case %zu: %s", c, je.text);
        json_t *g = json_pack("{s:{s:{s:s, s:i, s:i, s:i, s:s}, s:{s:s, s:i, s:i, s:i, s:s}, "
                              "s:o}, s:s}",
                              "nodes", "c", "op", "raster.constant", "width", 20, "height", 10,
                              "value", 1, "type", "u8", "d", "op", "raster.constant", "width", 21,
                              "height", 10, "value", 1, "type", "u8", "x", node, "result", "x");
        ck_assert_ptr_nonnull(g);
        pg_plan *p = NULL;
        pg_error err = {0};
        int rc = pg_plan_build(g, &test_env, &p, &err);
        CHECK(rc == cases[c].code, "case %zu: rc %d (%s), want %d", c, rc, err.message,
              cases[c].code);
        if (rc != 0) {
            CHECK(strstr(err.message, cases[c].msg) != NULL, "case %zu: '%s'", c, err.message);
            ck_assert_str_eq(err.node, "x");
        } else {
            ck_assert_int_eq(p->nodes[p->results[0]].info.type, U8);
            ck_assert_int_eq(p->nodes[p->results[0]].info.width, 20);
            pg_plan_destroy(&p);
        }
        json_decref(g);
    }
}
END_TEST

/* ---- the table entries ---- */

START_TEST(test_op_docs)
{
    int count = 0;
    for (const pg_op_def *d = pg_ops_local_class; d->name != NULL; d++, count++) {
        CHECK(d->doc != NULL && strlen(d->doc) > 120, "%s: doc", d->name);
        ck_assert_str_eq(d->family, "local");
        ck_assert_ptr_nonnull(strstr(d->doc, "nodata"));
        CHECK(strstr(d->doc, "type") != NULL, "%s: the doc must state the output type", d->name);
        json_error_t je;
        json_t *ex = json_loads(d->example, 0, &je);
        CHECK(ex != NULL, "%s: example is not JSON: %s", d->name, je.text);
        ck_assert_str_eq(json_string_value(json_object_get(ex, "op")), d->name);
        json_decref(ex);
        ck_assert_ptr_nonnull(d->params);
        for (const pg_param_def *p = d->params; p->name != NULL; p++) {
            CHECK(p->doc != NULL && p->doc[0], "%s.%s: doc", d->name, p->name);
            if (p->default_json != NULL) {
                json_t *dv = json_loads(p->default_json, JSON_DECODE_ANY, &je);
                CHECK(dv != NULL, "%s.%s: default", d->name, p->name);
                json_decref(dv);
            }
        }
        CHECK1(d->plan && d->compute && d->free_state && d->result == PG_RESULT_RASTER);
        ck_assert_ptr_eq(pg_op_find(d->name), d);
        json_t *desc = pg_op_describe(d);
        ck_assert_ptr_nonnull(desc);
        json_decref(desc);
    }
    ck_assert_int_eq(count, 10);
}
END_TEST

/* ---- speed: printed, not asserted ---- */

/* The best of 30 batches of 10 computes, in ns per tile (fewer batches
 * when a batch is slow, as under sanitizers at -O0, so that the suite stays
 * bounded). */
static double time_compute(fixture *f)
{
    double best = INFINITY, spent = 0;
    for (int b = 0; b < 30 && spent < 3e8; b++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int i = 0; i < 10; i++)
            f->n.op->compute(&f->n, f->out, f->tiles, &f->err);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ns =
            ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / 10;
        best = fmin(best, ns);
        spent += ns * 10;
    }
    return best;
}

static json_t *ten_classes(void)
{
    json_t *a = json_array();
    for (int k = 0; k < 10; k++)
        json_array_append_new(a, json_pack("[f, f, i]", -1e4 + 2e3 * k, -1e4 + 2e3 * (k + 1), k));
    return a;
}

START_TEST(test_speed)
{
    rng = 42;
    targ five_u8[5] = {{.type = U8, .small = 4},
                       {.type = U8, .small = 4},
                       {.type = U8, .small = 4},
                       {.type = U8, .small = 4},
                       {.type = U8, .small = 4}};
    targ five_f32[5] = {{.type = F32, .small = 4},
                        {.type = F32, .small = 4},
                        {.type = F32, .small = 4},
                        {.type = F32, .small = 4},
                        {.type = F32, .small = 4}};
    targ u16x2[2] = {{.type = U16}, {.type = U16}};
    targ f32x2[2] = {{.type = F32}, {.type = F32}};
    targ f32nd = {.type = F32, .has_nd = true, .nd = -9999, .inject_nd = true};
    targ f32 = {.type = F32}, u16 = {.type = U16}, f64 = {.type = F64};
    json_t *cls300 = json_array();
    for (int k = 0; k < 300; k++)
        json_array_append_new(
            cls300, json_pack("[f, f, i]", -1e4 + 66.0 * k, -1e4 + 66.0 * (k + 1), k % 200));
    struct {
        const char *what, *op;
        int nargs;
        targ *a;
        json_t *params;
    } cases[] = {
        {"reclassify f32, 10 classes", "local.reclassify", 1, &f32,
         json_pack("{s:o, s:n}", "classes", ten_classes(), "default")},
        {"reclassify f32 (nodata), 10 cl.", "local.reclassify", 1, &f32nd,
         json_pack("{s:o, s:n}", "classes", ten_classes(), "default")},
        {"reclassify f64, 10 classes", "local.reclassify", 1, &f64,
         json_pack("{s:o, s:n}", "classes", ten_classes(), "default")},
        {"reclassify f32, 300 classes", "local.reclassify", 1, &f32,
         json_pack("{s:O, s:n}", "classes", cls300, "default")},
        {"reclassify u16 (table)", "local.reclassify", 1, &u16,
         json_pack("{s:o, s:n}", "classes", ten_classes(), "default")},
        {"normalized_difference u16,u16", "local.normalized_difference", 2, u16x2, NULL},
        {"normalized_difference f32,f32", "local.normalized_difference", 2, f32x2, NULL},
        {"majority of 5 u8", "local.majority", 5, five_u8, NULL},
        {"majority of 5 f32", "local.majority", 5, five_f32, NULL},
        {"minority of 5 u8", "local.minority", 5, five_u8, NULL},
        {"variety of 5 u8", "local.variety", 5, five_u8, NULL},
        {"weighted_overlay 2 x u16", "local.weighted_overlay", 2, u16x2,
         json_pack("{s:[f,f]}", "weights", 0.6, 0.4)},
        {"convert f32 -> u8", "local.convert", 1, &f32, json_pack("{s:s}", "type", "u8")},
        {"convert u16 -> f32", "local.convert", 1, &u16, json_pack("{s:s}", "type", "f32")},
        {"clamp f32", "local.clamp", 1, &f32, json_pack("{s:i, s:i}", "min", 0, "max", 100)},
        {"mask f32 by u16", "local.mask", 2, (targ[]){{.type = F32}, {.type = U16, .small = 2}},
         NULL},
    };
    json_decref(cls300);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        fixture f;
        fx_init(&f, cases[c].op, cases[c].nargs, cases[c].a, cases[c].params, 256, 256, 1);
        CHECK(fx_plan(&f) == 0, "%s: %s", cases[c].what, f.err.message);
        fx_compute(&f);
        double ns = time_compute(&f);
        fprintf(stderr, "%-34s 256x256: %7.1f us per tile (%.2f ns per cell)\n", cases[c].what,
                ns / 1e3, ns / 65536.0);
        fx_free(&f);
    }
}
END_TEST

int main(void)
{
    GDALAllRegister();
    Suite *s = suite_create("local_class");
    TCase *tc = tcase_create("convert");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_convert, 0, 2);
    tcase_add_test(tc, test_convert_values);
    tcase_add_test(tc, test_clamp);
    tcase_add_test(tc, test_mask);
    suite_add_tcase(s, tc);
    tc = tcase_create("classes");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_reclassify);
    tcase_add_test(tc, test_reclassify_types);
    tcase_add_test(tc, test_reclassify_errors);
    tcase_add_test(tc, test_normalized_difference);
    tcase_add_loop_test(tc, test_nary, 0, 2);
    tcase_add_test(tc, test_nary_values);
    tcase_add_test(tc, test_weighted_overlay);
    suite_add_tcase(s, tc);
    tc = tcase_create("plan");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_grid_errors);
    tcase_add_test(tc, test_planner);
    tcase_add_test(tc, test_op_docs);
    suite_add_tcase(s, tc);
    tc = tcase_create("speed");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_speed);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
