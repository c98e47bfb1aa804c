/* Unit tests for the compute ops: ops/local.c, ops/raster.c, ops/global.c.
 *
 * Nodes are built by hand (no planner): params with json_pack, args
 * pointing at hand-made source nodes whose info the test fills, tiles
 * allocated here. Every output cell is compared with a reference computed
 * in double, straightforwardly, in this file:
 *  - i32 and f64 results, and everything that ends in an integer type,
 *    must be exactly equal;
 *  - f32 results of a two-operand op on operands exactly representable in
 *    f32 must be exactly equal to the double result rounded to f32 (double
 *    has more than 2*24+2 bits, so rounding the exact double result once
 *    more to f32 gives the correctly rounded f32 result);
 *  - other f32 results (n-ary chains, numbers that are not f32 values) are
 *    compared with a tolerance of one f32 rounding per operation:
 *    |got - ref| <= nops * 2^-24 * (sum of |intermediate magnitudes|).
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

#define MAXA 8

static const char *const TN[PG_CELLTYPE_COUNT] = {"u8",  "i8",  "u16", "i16",
                                                  "u32", "i32", "f32", "f64"};

/* ---- the ops under test, found in the families' tables ---- */

static const pg_op_def *find_op(const char *name)
{
    const pg_op_def *tables[] = {pg_ops_local, pg_ops_global, pg_ops_raster};
    for (size_t t = 0; t < 3; t++) {
        for (const pg_op_def *d = tables[t]; d->name != NULL; d++) {
            if (strcmp(d->name, name) == 0) return d;
        }
    }
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

/* Stores V, which must be a value of the tile's type (f32: rounded). */
static void set(pg_tile *t, size_t i, double v)
{
    if (t->type == PG_F32)
        ck_assert_msg(!isfinite(v) || fabs(v) <= FLT_MAX, "%g is not an f32", v);
    else
        ck_assert_msg(pg_celltype_holds(t->type, v), "%g is not a %s", v, TN[t->type]);
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

/* ---- pseudo-random values (xorshift64*, seeded per test) ---- */

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

/* A value of type T: often an edge (0, 1, min, max, a huge float), else
 * uniform over the integer range, or in [-1e4, 1e4] with a fraction. */
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
        else
            v = (rnd_unit() - 0.5) * 2e4;
        return t == PG_F32 ? (double)(float)v : v;
    }
    double mn = pg_celltype_min(t), mx = pg_celltype_max(t);
    if (r < 3) return 0.0;
    if (r == 3) return 1.0;
    if (r == 4) return mn;
    if (r == 5) return mx;
    double v = mn + floor(rnd_unit() * (mx - mn + 1.0));
    return v > mx ? mx : v;
}

/* ---- fixtures: a node under test, its source nodes and their tiles ---- */

typedef struct targ {
    char kind; /* 'r' raster, 'n' number */
    pg_celltype type;
    double number;
    bool has_nd;
    double nd;
    bool inject_nd;  /* put nodata into ~1/8 of the cells */
    bool inject_nan; /* float rasters: put NaN into ~1/16 of the cells */
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

/* Sets up node OP over NARGS args; PARAMS (stolen; NULL: none). Raster args
 * get random tiles of BANDS x W x H cells. */
static void fx_init(fixture *f, const char *op, int nargs, const targ *spec, json_t *params,
                    int64_t w, int64_t h, int bands)
{
    memset(f, 0, sizeof *f);
    f->nargs = nargs;
    f->bands = bands;
    f->win = (pg_window){256, 512, w, h}; /* not at the origin: nothing may depend on it */
    for (int a = 0; a < nargs; a++) {
        f->spec[a] = spec[a];
        if (spec[a].kind == 'n') {
            f->args[a] = (pg_arg){.node = -1, .ref = NULL, .number = spec[a].number};
            continue;
        }
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
            double v = rnd_value(spec[a].type);
            if (spec[a].inject_nd && rnd() % 8 == 0) v = spec[a].nd;
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
    return f->n.op->plan(&f->n, &test_env, &f->err);
}

static void fx_compute(fixture *f)
{
    f->out = tile_new(f->n.info.type, f->bands, f->win);
    int rc = f->n.op->compute(&f->n, f->out, f->tiles, &f->err);
    ck_assert_msg(rc == 0, "compute: %s", f->err.message);
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

/* ---- the reference ---- */

typedef enum { OP_ADD, OP_SUB, OP_MUL, OP_DIV } opk;

static opk op_kind(const char *name)
{
    if (strcmp(name, "local.add") == 0) return OP_ADD;
    if (strcmp(name, "local.subtract") == 0) return OP_SUB;
    if (strcmp(name, "local.multiply") == 0) return OP_MUL;
    return OP_DIV;
}

/* Round to the nearest f32, overflowing to inf from 2^128 - 2^103 (half an
 * ulp above FLT_MAX) on; (float)x itself is undefined out of range. */
static double to_f32(double x)
{
    const double lim = 0x1.ffffffp127;
    if (isnan(x)) return x;
    if (x >= lim) return INFINITY;
    if (x <= -lim) return -INFINITY;
    return (double)(float)x;
}

static bool cell_is_nodata(const targ *s, double v)
{
    if (isnan(v)) return true;
    if (!s->has_nd) return false;
    /* GDAL's convention: an f32 raster's nodata is the double rounded to f32 */
    double nd = s->type == PG_F32 ? to_f32(s->nd) : s->nd;
    return v == nd;
}

typedef struct expect {
    pg_celltype natural; /* the type the op computes in */
    int forced;          /* -1, or the forced output type */
    bool exact;          /* false: f32 tolerance (see the top of the file) */
} expect;

/* Compares every output cell with the reference; returns the number of
 * nodata cells seen (for tests that want some). */
static size_t fx_check(fixture *f, expect e)
{
    opk op = op_kind(f->n.op->name);
    const pg_raster_info *oi = &f->n.info;
    pg_celltype otype = e.forced >= 0 ? (pg_celltype)e.forced : e.natural;
    ck_assert_int_eq(oi->type, otype);
    size_t nodata_cells = 0, ncell = tile_cells(f->out);
    for (size_t i = 0; i < ncell; i++) {
        bool nd = false;
        double konst = op == OP_MUL ? 1.0 : 0.0, acc = 0.0, mag = 0.0;
        bool has_konst = false, first = true;
        int nops = 0;
        double v[MAXA];
        for (int a = 0; a < f->nargs; a++) {
            if (f->spec[a].kind == 'n') {
                v[a] = f->spec[a].number;
                continue;
            }
            v[a] = get(f->tiles[a], i);
            if (cell_is_nodata(&f->spec[a], v[a])) nd = true;
        }
        if (op == OP_ADD || op == OP_MUL) {
            for (int a = 0; a < f->nargs; a++) {
                if (f->spec[a].kind != 'n') continue;
                konst = op == OP_ADD ? konst + v[a] : konst * v[a];
                has_konst = true;
            }
            for (int a = 0; a < f->nargs; a++) {
                if (f->spec[a].kind == 'n') continue;
                acc = first ? v[a] : op == OP_ADD ? acc + v[a] : acc * v[a];
                mag += fabs(acc) + fabs(v[a]);
                nops += !first;
                first = false;
            }
            if (has_konst) {
                acc = op == OP_ADD ? acc + konst : acc * konst;
                mag += fabs(acc) + fabs(konst);
                nops++;
            }
        } else {
            acc = op == OP_SUB ? v[0] - v[1] : v[0] / v[1];
            mag = fabs(acc) + fabs(v[0]) + fabs(v[1]);
            nops = 1;
        }
        /* Tolerance mode near the f32 limit: whether an intermediate
         * overflowed depends on the f32 rounding of the earlier steps, which
         * the double reference does not follow. Such cells are skipped. */
        if (!nd && !e.exact && mag > 1e37) continue;
        double r = acc;
        if (e.natural == PG_F32 && e.exact) r = to_f32(r);
        if (!isfinite(r)) nd = true;
        if (e.natural == PG_I32 && e.forced < 0 && (r < INT32_MIN || r > INT32_MAX)) nd = true;
        double want = r;
        if (e.forced >= 0) {
            double lo = pg_celltype_min(otype), hi = pg_celltype_max(otype);
            if (otype == PG_F32) lo = -FLT_MAX, hi = FLT_MAX;
            if (otype == PG_F64) lo = -DBL_MAX, hi = DBL_MAX;
            want = r < lo ? lo : r > hi ? hi : r;
            if (!pg_celltype_is_float(otype)) want = round(want); /* halves away from zero */
            if (otype == PG_F32) want = to_f32(want);
        }
        double got = get(f->out, i);
        if (nd) {
            ck_assert_msg(oi->has_nodata, "cell %zu: nodata expected but the output has none", i);
            ck_assert_msg(got == oi->nodata || (isnan(got) && isnan(oi->nodata)),
                          "cell %zu: want nodata %g, got %.17g", i, oi->nodata, got);
            nodata_cells++;
            continue;
        }
        if (e.exact || otype != PG_F32) {
            ck_assert_msg(got == want, "%s cell %zu: want %.17g, got %.17g (args %g %g)",
                          f->n.op->name, i, want, got, v[0], f->nargs > 1 ? v[1] : 0.0);
        } else {
            double tol = (nops + 1) * 0x1p-24 * mag + 1e-37;
            ck_assert_msg(fabs(got - want) <= tol, "%s cell %zu: want %.17g, got %.17g, tol %g",
                          f->n.op->name, i, want, got, tol);
        }
        if (oi->has_nodata && got == oi->nodata) nodata_cells++; /* a valid value colliding */
    }
    return nodata_cells;
}

/* ---- type rules: every pair of the 8 types ---- */

/* Written out by hand from the rules (ops/local.c), rows a, columns b. */
#define U8 PG_U8
#define I8 PG_I8
#define U16 PG_U16
#define I16 PG_I16
#define U32 PG_U32
#define I32 PG_I32
#define F32 PG_F32
#define F64 PG_F64
static const pg_celltype add_table[8][8] = {
    /*         u8   i8   u16  i16  u32  i32  f32  f64 */
    /* u8  */ {I32, I32, I32, I32, F64, F64, F32, F64},
    /* i8  */ {I32, I32, I32, I32, F64, F64, F32, F64},
    /* u16 */ {I32, I32, I32, I32, F64, F64, F32, F64},
    /* i16 */ {I32, I32, I32, I32, F64, F64, F32, F64},
    /* u32 */ {F64, F64, F64, F64, F64, F64, F64, F64},
    /* i32 */ {F64, F64, F64, F64, F64, F64, F64, F64},
    /* f32 */ {F32, F32, F32, F32, F64, F64, F32, F64},
    /* f64 */ {F64, F64, F64, F64, F64, F64, F64, F64},
};
static const pg_celltype div_table[8][8] = {
    /*         u8   i8   u16  i16  u32  i32  f32  f64 */
    /* u8  */ {F32, F32, F32, F32, F64, F64, F32, F64},
    /* i8  */ {F32, F32, F32, F32, F64, F64, F32, F64},
    /* u16 */ {F32, F32, F32, F32, F64, F64, F32, F64},
    /* i16 */ {F32, F32, F32, F32, F64, F64, F32, F64},
    /* u32 */ {F64, F64, F64, F64, F64, F64, F64, F64},
    /* i32 */ {F64, F64, F64, F64, F64, F64, F64, F64},
    /* f32 */ {F32, F32, F32, F32, F64, F64, F32, F64},
    /* f64 */ {F64, F64, F64, F64, F64, F64, F64, F64},
};

/* Does OP on a raster of type A and one of type B need a nodata value
 * (no input has one)? Undefined results: float inputs (NaN/inf), division,
 * and i32 overflow: only u16*u16 among the 8/16-bit products, none of the
 * 8/16-bit sums and differences. */
static bool pair_needs_nodata(opk op, pg_celltype a, pg_celltype b)
{
    if (op == OP_DIV || pg_celltype_is_float(a) || pg_celltype_is_float(b)) return true;
    return op == OP_MUL && a == PG_U16 && b == PG_U16;
}

START_TEST(test_pairs)
{
    const char *ops[] = {"local.add", "local.subtract", "local.multiply", "local.divide"};
    rng = 0x1234567ull + (uint64_t)_i;
    const char *opname = ops[_i];
    opk op = op_kind(opname);
    size_t nodata_total = 0;
    for (int a = 0; a < 8; a++) {
        for (int b = 0; b < 8; b++) {
            targ spec[2] = {{.kind = 'r', .type = (pg_celltype)a},
                            {.kind = 'r', .type = (pg_celltype)b}};
            fixture f;
            /* 45 x 29 x 2 = 2610 cells: two full chunks and a ragged tail */
            fx_init(&f, opname, 2, spec, NULL, 45, 29, 2);
            ck_assert_int_eq(fx_plan(&f), 0);
            pg_celltype want = op == OP_DIV ? div_table[a][b] : add_table[a][b];
            ck_assert_msg(f.n.info.type == want, "%s(%s, %s): type %s, want %s", opname, TN[a],
                          TN[b], TN[f.n.info.type], TN[want]);
            bool need = pair_needs_nodata(op, (pg_celltype)a, (pg_celltype)b);
            ck_assert_msg(f.n.info.has_nodata == need, "%s(%s, %s): has_nodata %d", opname, TN[a],
                          TN[b], f.n.info.has_nodata);
            if (need) {
                double dn = pg_celltype_default_nodata(want);
                ck_assert(f.n.info.nodata == dn || (isnan(dn) && isnan(f.n.info.nodata)));
            }
            ck_assert_int_eq(f.n.info.width, 1000);
            ck_assert_int_eq(f.n.info.bands, 2);
            fx_compute(&f);
            nodata_total += fx_check(&f, (expect){.natural = want, .forced = -1, .exact = true});
            fx_free(&f);
        }
    }
    /* division by zero and float overflow happened somewhere */
    if (op == OP_DIV) ck_assert_uint_gt(nodata_total, 0);
}
END_TEST

/* ---- numbers: weak types, folding, broadcast ---- */

typedef struct numcase {
    const char *op;
    int nargs;
    targ a[7];
    pg_celltype want;
    bool has_nd;
    bool exact;
} numcase;

#define R(t)                                                                                       \
    {                                                                                              \
        .kind = 'r', .type = (t)                                                                   \
    }
#define N(x)                                                                                       \
    {                                                                                              \
        .kind = 'n', .number = (x)                                                                 \
    }

static const numcase numcases[] = {
    {"local.add", 2, {R(U8), N(2)}, I32, false, true},
    {"local.add", 3, {N(2), R(I16), N(-7)}, I32, false, true},
    {"local.add", 2, {R(U8), N(2.5)}, F32, false, true},
    {"local.add", 2, {R(U32), N(2)}, F64, false, true},
    {"local.add", 2, {R(U32), N(0.5)}, F32, false, false}, /* the rules: f32 */
    {"local.add", 2, {R(F32), N(3)}, F32, true, true},
    {"local.add", 3, {R(U16), R(I16), R(U8)}, I32, false, true},
    {"local.add", 4, {R(F32), R(F32), R(F32), R(F32)}, F32, true, false},
    {"local.add", 4, {R(I8), N(0.25), R(U16), N(0.5)}, F32, false, true},
    {"local.add", 2, {R(I16), N(3e9)}, I32, true, true},              /* every cell overflows */
    {"local.add", 3, {R(U8), N(1e300), N(-1e300)}, I32, false, true}, /* folded first: 0 */
    /* long chains: vvv, acc2 pairs, an odd acc, the constant */
    {"local.add", 5, {R(U8), R(I8), R(U16), R(I16), R(U8)}, I32, false, true},
    {"local.add", 6, {R(F64), R(F64), R(F64), R(F64), R(F64), R(F64)}, F64, true, true},
    {"local.add", 7, {R(U8), R(U8), N(3), R(U8), R(U8), R(U8), R(U8)}, I32, false, true},
    {"local.multiply", 5, {R(I8), R(I8), R(I8), R(I8), R(I8)}, I32, true, true},
    {"local.multiply", 6, {R(F32), R(U8), R(F32), R(I8), R(F32), N(-2)}, F32, true, false},
    {"local.subtract", 2, {N(100), R(I16)}, I32, false, true},
    {"local.subtract", 2, {R(U8), N(0.1)}, F32, false, false},
    {"local.subtract", 2, {N(1.5), R(F64)}, F64, true, true},
    {"local.subtract", 2, {R(I32), N(1)}, F64, false, true},
    {"local.subtract", 2, {N(-2147483000.0), R(U16)}, I32, true, true},
    {"local.multiply", 2, {R(U8), N(3)}, I32, false, true},
    {"local.multiply", 3, {R(I16), N(2), N(3)}, I32, false, true},
    {"local.multiply", 2, {R(I16), N(70000)}, I32, true, true},
    {"local.multiply", 3, {R(U16), R(U16), R(U8)}, I32, true, true},
    {"local.multiply", 4, {R(I8), R(I8), R(I8), R(I8)}, I32, false, true},
    {"local.multiply", 4, {R(U8), R(U8), R(U8), R(U8)}, I32, true, true},
    {"local.multiply", 2, {R(U16), N(0.5)}, F32, false, true},
    {"local.divide", 2, {R(U8), N(2)}, F32, true, true},
    {"local.divide", 2, {R(U8), N(0)}, F32, true, true}, /* every cell nodata */
    {"local.divide", 2, {N(7), R(I16)}, F32, true, true},
    {"local.divide", 2, {R(I32), N(3)}, F64, true, true},
    {"local.divide", 2, {N(1), R(F64)}, F64, true, true},
};

START_TEST(test_numbers)
{
    const numcase *c = &numcases[_i];
    rng = 0xabcdefull + (uint64_t)_i;
    fixture f;
    fx_init(&f, c->op, c->nargs, c->a, NULL, 37, 41, 1);
    ck_assert_msg(fx_plan(&f) == 0, "case %d: %s", _i, f.err.message);
    ck_assert_msg(f.n.info.type == c->want, "case %d: type %s, want %s", _i, TN[f.n.info.type],
                  TN[c->want]);
    ck_assert_msg(f.n.info.has_nodata == c->has_nd, "case %d: has_nodata %d", _i,
                  f.n.info.has_nodata);
    fx_compute(&f);
    fx_check(&f, (expect){.natural = c->want, .forced = -1, .exact = c->exact});
    fx_free(&f);
}
END_TEST

/* Specific values, written out: overflow and division by zero. */
START_TEST(test_overflow_values)
{
    /* u16 * u16 is i32, nodata where the product leaves i32 */
    targ spec[2] = {R(U16), R(U16)};
    fixture f;
    fx_init(&f, "local.multiply", 2, spec, NULL, 5, 1, 1);
    const double a[5] = {65535, 46341, 46340, 3, 0};
    const double b[5] = {65535, 46341, 46340, 5, 65535};
    for (int i = 0; i < 5; i++) {
        set(f.tiles[0], (size_t)i, a[i]);
        set(f.tiles[1], (size_t)i, b[i]);
    }
    ck_assert_int_eq(fx_plan(&f), 0);
    ck_assert_int_eq(f.n.info.type, PG_I32);
    ck_assert(f.n.info.has_nodata && f.n.info.nodata == INT32_MIN);
    fx_compute(&f);
    const int32_t want[5] = {INT32_MIN, INT32_MIN, 2147395600, 15, 0};
    ck_assert_mem_eq(f.out->data, want, sizeof want);
    fx_free(&f);

    /* u16 + a big integer constant: i32, overflowing above 647 */
    targ s2[2] = {R(U16), N(2147483000.0)};
    fx_init(&f, "local.add", 2, s2, NULL, 4, 1, 1);
    const double c[4] = {0, 647, 648, 65535};
    for (int i = 0; i < 4; i++)
        set(f.tiles[0], (size_t)i, c[i]);
    ck_assert_int_eq(fx_plan(&f), 0);
    fx_compute(&f);
    const int32_t want2[4] = {2147483000, 2147483647, INT32_MIN, INT32_MIN};
    ck_assert_mem_eq(f.out->data, want2, sizeof want2);
    fx_free(&f);

    /* division by zero, 0/0, overflow to inf: nodata (NaN) */
    targ s3[2] = {R(F32), R(I16)};
    fx_init(&f, "local.divide", 2, s3, NULL, 5, 1, 1);
    const double num[5] = {1, 0, -1, FLT_MAX, 6};
    const double den[5] = {0, 0, 0, 1, -4};
    for (int i = 0; i < 5; i++) {
        set(f.tiles[0], (size_t)i, num[i]);
        set(f.tiles[1], (size_t)i, den[i]);
    }
    ck_assert_int_eq(fx_plan(&f), 0);
    ck_assert_int_eq(f.n.info.type, PG_F32);
    ck_assert(f.n.info.has_nodata && isnan(f.n.info.nodata));
    fx_compute(&f);
    const float *o = f.out->data;
    ck_assert(isnan(o[0]) && isnan(o[1]) && isnan(o[2]));
    ck_assert(o[3] == FLT_MAX && o[4] == -1.5f);
    fx_free(&f);

    /* f32 + f32 overflowing: nodata; with the first arg's nodata -9999 */
    targ s4[2] = {{.kind = 'r', .type = PG_F32, .has_nd = true, .nd = -9999}, R(F32)};
    fx_init(&f, "local.add", 2, s4, NULL, 3, 1, 1);
    const double x[3] = {FLT_MAX, -FLT_MAX, 1.5};
    const double y[3] = {FLT_MAX, -FLT_MAX, INFINITY};
    for (int i = 0; i < 3; i++) {
        set(f.tiles[0], (size_t)i, x[i]);
        set(f.tiles[1], (size_t)i, y[i]);
    }
    ck_assert_int_eq(fx_plan(&f), 0);
    ck_assert(f.n.info.has_nodata && f.n.info.nodata == -9999);
    fx_compute(&f);
    const float want4[3] = {-9999, -9999, -9999};
    ck_assert_mem_eq(f.out->data, want4, sizeof want4);
    fx_free(&f);

    /* a constant beyond f32 is inf in the f32 work type: x * inf is inf,
     * 0 * inf is NaN, all nodata */
    targ s5[2] = {R(F32), N(1e39)};
    fx_init(&f, "local.multiply", 2, s5, NULL, 4, 1, 1);
    const double z[4] = {0, 1, -2, 1e-30};
    for (int i = 0; i < 4; i++)
        set(f.tiles[0], (size_t)i, z[i]);
    ck_assert_int_eq(fx_plan(&f), 0);
    ck_assert(f.n.info.type == PG_F32 && f.n.info.has_nodata && isnan(f.n.info.nodata));
    fx_compute(&f);
    for (int i = 0; i < 4; i++)
        ck_assert(isnan(((float *)f.out->data)[i]));
    fx_free(&f);
}
END_TEST

/* ---- nodata propagation ---- */

START_TEST(test_nodata)
{
    rng = 0x5eedull;
    fixture f;
    /* i16 (nodata -9999) + f32 (NaN cells) + u8 (nodata 0, not first):
     * f32, nodata -9999 (the first raster's, an f32 value) */
    targ s1[3] = {{.kind = 'r', .type = PG_I16, .has_nd = true, .nd = -9999, .inject_nd = true},
                  {.kind = 'r', .type = PG_F32, .inject_nan = true},
                  {.kind = 'r', .type = PG_U8, .has_nd = true, .nd = 0}};
    fx_init(&f, "local.add", 3, s1, NULL, 50, 40, 1);
    ck_assert_int_eq(fx_plan(&f), 0);
    ck_assert_int_eq(f.n.info.type, PG_F32);
    ck_assert(f.n.info.has_nodata && f.n.info.nodata == -9999);
    fx_compute(&f);
    ck_assert_uint_gt(fx_check(&f, (expect){.natural = PG_F32, .forced = -1, .exact = false}), 200);
    fx_free(&f);

    /* the first raster has no nodata, the second has: the type's default */
    targ s2[2] = {R(U8), {.kind = 'r', .type = PG_U8, .has_nd = true, .nd = 7, .inject_nd = true}};
    fx_init(&f, "local.subtract", 2, s2, NULL, 50, 40, 2);
    ck_assert_int_eq(fx_plan(&f), 0);
    ck_assert_int_eq(f.n.info.type, PG_I32);
    ck_assert(f.n.info.has_nodata && f.n.info.nodata == INT32_MIN);
    fx_compute(&f);
    ck_assert_uint_gt(fx_check(&f, (expect){.natural = PG_I32, .forced = -1, .exact = true}), 200);
    fx_free(&f);

    /* u8 nodata 0 first: i32 keeps 0 */
    targ s3[2] = {{.kind = 'r', .type = PG_U8, .has_nd = true, .nd = 0, .inject_nd = true}, R(I8)};
    fx_init(&f, "local.multiply", 2, s3, NULL, 50, 40, 1);
    ck_assert_int_eq(fx_plan(&f), 0);
    ck_assert(f.n.info.has_nodata && f.n.info.nodata == 0);
    fx_compute(&f);
    fx_check(&f, (expect){.natural = PG_I32, .forced = -1, .exact = true});
    fx_free(&f);

    /* f32 nodata given as 0.1 (not an f32 value): cells equal to (float)0.1 */
    targ s4[2] = {{.kind = 'r', .type = PG_F32, .has_nd = true, .nd = 0.1, .inject_nd = true},
                  R(U16)};
    fx_init(&f, "local.divide", 2, s4, NULL, 50, 40, 1);
    ck_assert_int_eq(fx_plan(&f), 0);
    ck_assert_int_eq(f.n.info.type, PG_F32);
    /* 0.1 is not exactly an f32: the output takes the default, NaN */
    ck_assert(f.n.info.has_nodata && isnan(f.n.info.nodata));
    fx_compute(&f);
    ck_assert_uint_gt(fx_check(&f, (expect){.natural = PG_F32, .forced = -1, .exact = true}), 200);
    fx_free(&f);

    /* f64 nodata NaN declared, NaN cells; a u32 nodata out of its range
     * (no cell can match); f64 output with nodata NaN */
    targ s5[2] = {{.kind = 'r', .type = PG_F64, .has_nd = true, .nd = NAN, .inject_nan = true},
                  {.kind = 'r', .type = PG_U32, .has_nd = true, .nd = -1}};
    fx_init(&f, "local.add", 2, s5, NULL, 50, 40, 1);
    ck_assert_int_eq(fx_plan(&f), 0);
    ck_assert(f.n.info.type == PG_F64 && f.n.info.has_nodata && isnan(f.n.info.nodata));
    fx_compute(&f);
    ck_assert_uint_gt(fx_check(&f, (expect){.natural = PG_F64, .forced = -1, .exact = true}), 50);
    fx_free(&f);

    /* a number first, raster with nodata second */
    targ s6[2] = {N(1000),
                  {.kind = 'r', .type = PG_I16, .has_nd = true, .nd = -32768, .inject_nd = true}};
    fx_init(&f, "local.subtract", 2, s6, NULL, 50, 40, 1);
    ck_assert_int_eq(fx_plan(&f), 0);
    ck_assert(f.n.info.type == PG_I32 && f.n.info.has_nodata && f.n.info.nodata == -32768);
    fx_compute(&f);
    fx_check(&f, (expect){.natural = PG_I32, .forced = -1, .exact = true});
    fx_free(&f);
}
END_TEST

/* ---- forced output type ---- */

typedef struct forcecase {
    const char *op;
    targ a[2];
    pg_celltype natural, forced;
    bool has_nd;
    double nd;
} forcecase;

static const forcecase forcecases[] = {
    {"local.add", {R(F32), R(F32)}, F32, U8, true, 255},
    {"local.subtract", {R(I16), R(I16)}, I32, I8, false, 0},
    {"local.multiply", {R(F64), R(F64)}, F64, I16, true, -32768},
    {"local.multiply", {R(U16), R(U16)}, I32, F64, false, 0},        /* no overflow in f64 */
    {"local.multiply", {R(U16), R(U16)}, I32, I32, true, INT32_MIN}, /* = natural */
    {"local.divide", {R(U16), R(U8)}, F32, U16, true, 65535},
    {"local.divide", {R(F64), R(I32)}, F64, F32, true, NAN},
    {"local.add", {R(U8), N(2)}, I32, U8, false, 0},
    {"local.add", {R(U32), R(I32)}, F64, I32, false, 0},
    {"local.add", {R(U8), N(0.5)}, F32, I16, false, 0},
    {"local.subtract",
     {{.kind = 'r', .type = PG_I16, .has_nd = true, .nd = -9999, .inject_nd = true}, R(I16)},
     I32,
     U8,
     true,
     255}, /* -9999 is no u8: the default */
    {"local.add",
     {{.kind = 'r', .type = PG_U8, .has_nd = true, .nd = 3, .inject_nd = true}, R(U8)},
     I32,
     U16,
     true,
     3},
};

START_TEST(test_forced_type)
{
    const forcecase *c = &forcecases[_i];
    rng = 0xf00dull + (uint64_t)_i;
    fixture f;
    fx_init(&f, c->op, 2, c->a, json_pack("{s:s}", "type", TN[c->forced]), 33, 35, 1);
    ck_assert_msg(fx_plan(&f) == 0, "case %d: %s", _i, f.err.message);
    ck_assert_int_eq(f.n.info.type, c->forced);
    ck_assert_msg(f.n.info.has_nodata == c->has_nd, "case %d: has_nodata %d", _i,
                  f.n.info.has_nodata);
    if (c->has_nd) ck_assert(f.n.info.nodata == c->nd || (isnan(c->nd) && isnan(f.n.info.nodata)));
    fx_compute(&f);
    fx_check(&f, (expect){.natural = c->natural,
                          .forced = c->forced == c->natural ? -1 : (int)c->forced,
                          .exact = true});
    fx_free(&f);
}
END_TEST

START_TEST(test_forced_values)
{
    /* f32 -> i16: rounded to nearest, halves away from zero, clamped */
    targ spec[2] = {R(F32), N(0)};
    fixture f;
    fx_init(&f, "local.add", 2, spec, json_pack("{s:s}", "type", "i16"), 10, 1, 1);
    const double v[10] = {1.4, 1.5, 2.5, -0.5, -1.5, 40000, -40000, NAN, 32767.4, -2.49};
    for (int i = 0; i < 10; i++)
        set(f.tiles[0], (size_t)i, to_f32(v[i]));
    ck_assert_int_eq(fx_plan(&f), 0);
    ck_assert(f.n.info.type == PG_I16 && f.n.info.has_nodata && f.n.info.nodata == -32768);
    fx_compute(&f);
    const int16_t want[10] = {1, 2, 3, -1, -2, 32767, -32768, -32768, 32767, -2};
    ck_assert_mem_eq(f.out->data, want, sizeof want);
    fx_free(&f);
}
END_TEST

/* ---- plan errors ---- */

START_TEST(test_plan_errors)
{
    fixture f;
    /* numbers only */
    targ s1[2] = {N(1), N(2)};
    fx_init(&f, "local.add", 2, s1, NULL, 4, 4, 1);
    ck_assert_int_eq(fx_plan(&f), PG_ETYPE);
    ck_assert_int_eq(f.err.code, PG_ETYPE);
    fx_free(&f);

    /* different sizes: names both positions */
    targ s2[3] = {R(U8), N(1), R(U8)};
    fx_init(&f, "local.add", 3, s2, NULL, 4, 4, 1);
    f.src[2].info.height = 999;
    ck_assert_int_eq(fx_plan(&f), PG_EGRID);
    ck_assert_int_eq(f.err.code, PG_EGRID);
    ck_assert_ptr_nonnull(strstr(f.err.message, "args[0]"));
    ck_assert_ptr_nonnull(strstr(f.err.message, "args[2]"));
    ck_assert_ptr_null(f.n.state);
    fx_free(&f);

    /* different band counts */
    targ s3[2] = {R(F32), R(F32)};
    fx_init(&f, "local.divide", 2, s3, NULL, 4, 4, 1);
    f.src[1].info.bands = 3;
    ck_assert_int_eq(fx_plan(&f), PG_EGRID);
    ck_assert_ptr_nonnull(strstr(f.err.message, "args[1]"));
    fx_free(&f);

    /* geotransform differs */
    fx_init(&f, "local.subtract", 2, s3, NULL, 4, 4, 1);
    for (int a = 0; a < 2; a++) {
        f.src[a].info.has_geotransform = true;
        const double gt[6] = {0, 1, 0, 0, 0, -1};
        memcpy(f.src[a].info.geotransform, gt, sizeof gt);
    }
    ck_assert_int_eq(fx_plan(&f), 0);
    f.n.op->free_state(&f.n);
    pg_raster_info_clear(&f.n.info);
    f.src[1].info.geotransform[0] = 0.5;
    ck_assert_int_eq(fx_plan(&f), PG_EGRID);
    fx_free(&f);

    /* CRS differs; the same CRS as different text is fine */
    fx_init(&f, "local.multiply", 2, s3, NULL, 4, 4, 1);
    f.src[0].info.crs_wkt = strdup("EPSG:4326");
    f.src[1].info.crs_wkt = strdup("EPSG:3857");
    ck_assert_int_eq(fx_plan(&f), PG_EGRID);
    ck_assert_ptr_nonnull(strstr(f.err.message, "CRS"));
    fx_free(&f);

    /* a value node as an arg */
    static const pg_op_def value_op = {.name = "test.value", .result = PG_RESULT_VALUE};
    fx_init(&f, "local.add", 2, s3, NULL, 4, 4, 1);
    f.src[1].op = &value_op;
    ck_assert_int_eq(fx_plan(&f), PG_ETYPE);
    fx_free(&f);
}
END_TEST

/* ---- raster.constant ---- */

static int const_plan(fixture *f, json_t *params, const pg_node *arg)
{
    memset(f, 0, sizeof *f);
    f->n.op = find_op("raster.constant");
    f->n.name = "c";
    f->n.params = params;
    if (arg != NULL) {
        f->args[0] = (pg_arg){.node = 0, .ref = arg};
        f->n.args = f->args;
        f->n.nargs = 1;
    }
    return fx_plan(f);
}

START_TEST(test_constant)
{
    fixture f;
    ck_assert_int_eq(const_plan(&f,
                                json_pack("{s:i, s:i, s:i, s:s}", "width", 10, "height", 5, "value",
                                          200, "type", "u8"),
                                NULL),
                     0);
    ck_assert(f.n.info.width == 10 && f.n.info.height == 5 && f.n.info.bands == 1);
    ck_assert(f.n.info.type == PG_U8 && !f.n.info.has_nodata && !f.n.info.has_geotransform);
    ck_assert_ptr_null(f.n.info.crs_wkt);
    f.bands = 1;
    f.win = (pg_window){8, 0, 2, 5};
    fx_compute(&f);
    for (size_t i = 0; i < 10; i++)
        ck_assert(get(f.out, i) == 200);
    fx_free(&f);

    /* defaults: f32, 1 band; a float value rounds to f32; nodata, bands */
    ck_assert_int_eq(const_plan(&f,
                                json_pack("{s:i, s:i, s:f, s:i, s:f, s:[f,f,f,f,f,f]}", "width", 3,
                                          "height", 4, "value", 0.1, "bands", 3, "nodata", -1e30,
                                          "geotransform", 100.0, 2.0, 0.0, 50.0, 0.0, -2.0),
                                NULL),
                     0);
    ck_assert(f.n.info.type == PG_F32 && f.n.info.bands == 3);
    ck_assert(f.n.info.has_nodata && f.n.info.nodata == (double)(float)-1e30);
    ck_assert(f.n.info.has_geotransform && f.n.info.geotransform[0] == 100.0 &&
              f.n.info.geotransform[5] == -2.0);
    f.bands = 3;
    f.win = (pg_window){0, 0, 3, 4};
    fx_compute(&f);
    for (size_t i = 0; i < 36; i++)
        ck_assert(((float *)f.out->data)[i] == 0.1f);
    fx_free(&f);

    /* every type */
    for (int t = 0; t < PG_CELLTYPE_COUNT; t++) {
        double v = t == PG_I8 || t == PG_I16 || t == PG_I32 ? -5 : 5;
        ck_assert_int_eq(const_plan(&f,
                                    json_pack("{s:i, s:i, s:f, s:s, s:i}", "width", 7, "height", 3,
                                              "value", v, "type", TN[t], "bands", 2),
                                    NULL),
                         0);
        f.bands = 2;
        f.win = (pg_window){0, 0, 7, 3};
        fx_compute(&f);
        for (size_t i = 0; i < 42; i++)
            ck_assert(get(f.out, i) == v);
        fx_free(&f);
    }

    /* a CRS: stored as WKT, the same grid as another spelling of it */
    ck_assert_int_eq(const_plan(&f,
                                json_pack("{s:i, s:i, s:i, s:s}", "width", 2, "height", 2, "value",
                                          1, "crs", "EPSG:32633"),
                                NULL),
                     0);
    ck_assert_ptr_nonnull(strstr(f.n.info.crs_wkt, "UTM zone 33N"));
    fixture g;
    ck_assert_int_eq(const_plan(&g,
                                json_pack("{s:i, s:i, s:i, s:s}", "width", 2, "height", 2, "value",
                                          1, "crs", "+proj=utm +zone=33 +datum=WGS84 +units=m"),
                                NULL),
                     0);
    ck_assert(pg_raster_same_grid(&f.n.info, &g.n.info));
    fx_free(&g);

    /* with a raster arg: its grid, this op's type, bands and value */
    pg_node src = {.op = &src_op, .name = "s"};
    src.info.width = 30;
    src.info.height = 20;
    src.info.bands = 4;
    src.info.type = PG_F64;
    src.info.has_geotransform = true;
    src.info.geotransform[1] = 1;
    src.info.geotransform[5] = -1;
    src.info.crs_wkt = strdup(f.n.info.crs_wkt);
    fixture h;
    ck_assert_int_eq(const_plan(&h, json_pack("{s:i, s:s}", "value", -3, "type", "i16"), &src), 0);
    ck_assert(h.n.info.width == 30 && h.n.info.height == 20 && h.n.info.bands == 1);
    ck_assert(h.n.info.type == PG_I16 && h.n.info.has_geotransform);
    ck_assert(pg_raster_same_grid(&h.n.info, &src.info));
    ck_assert_ptr_ne(h.n.info.crs_wkt, src.info.crs_wkt);
    fx_free(&h);
    fx_free(&f);

    /* errors */
    struct {
        json_t *params;
        bool with_arg;
    } bad[] = {
        {json_pack("{s:i, s:i, s:i, s:s}", "width", 2, "height", 2, "value", 256, "type", "u8"),
         false},
        {json_pack("{s:i, s:i, s:f, s:s}", "width", 2, "height", 2, "value", 1.5, "type", "i16"),
         false},
        {json_pack("{s:i, s:i, s:f}", "width", 2, "height", 2, "value", 1e39), false}, /* f32 */
        {json_pack("{s:i, s:i, s:i, s:s, s:i}", "width", 2, "height", 2, "value", 1, "type", "u8",
                   "nodata", -1),
         false},
        {json_pack("{s:i, s:i}", "height", 2, "value", 1), false},
        {json_pack("{s:i, s:i}", "width", 2, "value", 1), false},
        {json_pack("{s:i, s:i, s:i}", "width", 2, "height", 2, "value", 1), true},
        {json_pack("{s:i, s:s}", "value", 1, "crs", "EPSG:4326"), true},
        {json_pack("{s:i, s:[i,i,i,i,i,i]}", "value", 1, "geotransform", 0, 1, 0, 0, 0, -1), true},
        {json_pack("{s:i, s:i, s:i, s:[i,i,i]}", "width", 2, "height", 2, "value", 1,
                   "geotransform", 0, 1, 0),
         false},
        {json_pack("{s:i, s:i, s:i, s:[i,i,i,i,i,i]}", "width", 2, "height", 2, "value", 1,
                   "geotransform", 0, 0, 0, 0, 0, -1),
         false},
        {json_pack("{s:i, s:i, s:i, s:[i,s,i,i,i,i]}", "width", 2, "height", 2, "value", 1,
                   "geotransform", 0, "1", 0, 0, 0, -1),
         false},
        {json_pack("{s:i, s:i, s:i, s:s}", "width", 2, "height", 2, "value", 1, "crs",
                   "EPSG:999999"),
         false},
        /* files and URLs are refused before GDAL sees them */
        {json_pack("{s:i, s:i, s:i, s:s}", "width", 2, "height", 2, "value", 1, "crs",
                   "/etc/passwd"),
         false},
        {json_pack("{s:i, s:i, s:i, s:s}", "width", 2, "height", 2, "value", 1, "crs",
                   "http://example.com/crs.wkt"),
         false},
        {json_pack("{s:i, s:i, s:i, s:s}", "width", 2, "height", 2, "value", 1, "crs",
                   "+proj=longlat +init=/etc/passwd"),
         false},
        {json_pack("{s:i, s:i, s:i, s:s}", "width", 2, "height", 2, "value", 1, "crs", ""), false},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_ptr_nonnull(bad[i].params);
        int rc = const_plan(&f, bad[i].params, bad[i].with_arg ? &src : NULL);
        ck_assert_msg(rc == PG_EPARAM, "case %zu: rc %d (%s)", i, rc, f.err.message);
        ck_assert_ptr_null(f.n.state);
        fx_free(&f);
    }
    free(src.info.crs_wkt);
}
END_TEST

/* ---- global.stats ---- */

typedef struct refstats {
    int64_t count;
    double sum, min, max, mean, sd;
} refstats;

/* The whole raster, two passes, in double. */
static refstats ref_stats(const double *v, size_t n, size_t stride, size_t off, bool has_nd,
                          double nd)
{
    refstats r = {0, 0, INFINITY, -INFINITY, 0, 0};
    for (size_t i = 0; i < n; i++) {
        double x = v[off + i * stride];
        if (isnan(x) || (has_nd && x == nd)) continue;
        r.count++;
        r.sum += x;
        r.min = fmin(r.min, x);
        r.max = fmax(r.max, x);
    }
    if (r.count == 0) return r;
    r.mean = r.sum / (double)r.count;
    double m2 = 0;
    for (size_t i = 0; i < n; i++) {
        double x = v[off + i * stride];
        if (isnan(x) || (has_nd && x == nd)) continue;
        m2 += (x - r.mean) * (x - r.mean);
    }
    r.sd = sqrt(m2 / (double)r.count);
    return r;
}

static double jnum(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    ck_assert_msg(json_is_number(v), "%s is not a number", k);
    return json_number_value(v);
}

static void close_to(double got, double want, double rel, const char *what)
{
    ck_assert_msg(fabs(got - want) <= rel * fabs(want) + 1e-300, "%s: got %.17g want %.17g", what,
                  got, want);
}

static void check_stats(json_t *o, const refstats *r, bool integral)
{
    ck_assert_int_eq(json_integer_value(json_object_get(o, "count")), r->count);
    if (r->count == 0) {
        ck_assert(json_is_null(json_object_get(o, "min")));
        ck_assert(json_is_null(json_object_get(o, "max")));
        ck_assert(json_is_null(json_object_get(o, "mean")));
        ck_assert(json_is_null(json_object_get(o, "stddev")));
        ck_assert(jnum(o, "sum") == 0);
        return;
    }
    if (integral) {
        ck_assert(json_is_integer(json_object_get(o, "min")));
        ck_assert(json_is_integer(json_object_get(o, "sum")));
    }
    ck_assert(jnum(o, "min") == r->min);
    ck_assert(jnum(o, "max") == r->max);
    close_to(jnum(o, "sum"), r->sum, 1e-12, "sum");
    close_to(jnum(o, "mean"), r->mean, 1e-12, "mean");
    close_to(jnum(o, "stddev"), r->sd, 1e-10, "stddev");
}

/* Runs global.stats over a W x H x BANDS raster of type T held in V
 * (band-sequential doubles), cut into TW x TH tiles; partial() is called
 * in ORDER (a permutation of the tile indices, or NULL: in order). */
static json_t *run_stats(pg_celltype t, bool has_nd, double nd, const double *v, int64_t w,
                         int64_t h, int bands, int64_t tw, int64_t th, const int64_t *order)
{
    pg_node src = {.op = &src_op, .name = "s"};
    src.info = (pg_raster_info){
        .width = w, .height = h, .bands = bands, .type = t, .has_nodata = has_nd, .nodata = nd};
    pg_arg arg = {.node = 0, .ref = &src};
    pg_node n = {.op = find_op("global.stats"),
                 .name = "st",
                 .params = json_object(),
                 .nargs = 1,
                 .args = &arg};
    pg_error err;
    ck_assert_int_eq(n.op->plan(&n, &test_env, &err), 0);
    pg_tiling tl;
    pg_tiling_init(&tl, w, h, tw, th);
    int64_t nt = pg_tiling_count(&tl);
    void **parts = calloc((size_t)nt, sizeof *parts);
    for (int64_t j = 0; j < nt; j++) {
        int64_t k = order ? order[j] : j;
        pg_window win = pg_tiling_window(&tl, k);
        pg_tile *tile = tile_new(t, bands, win);
        for (int b = 0; b < bands; b++)
            for (int64_t y = 0; y < win.h; y++)
                for (int64_t x = 0; x < win.w; x++)
                    set(tile, ((size_t)b * (size_t)win.h + (size_t)y) * (size_t)win.w + (size_t)x,
                        v[((size_t)b * (size_t)h + (size_t)(win.y + y)) * (size_t)w +
                          (size_t)(win.x + x)]);
        parts[k] = calloc(1, n.op->partial_size);
        pg_tile *in[1] = {tile};
        ck_assert_int_eq(n.op->partial(&n, parts[k], in, &err), 0);
        tile_free(tile);
    }
    json_t *value = NULL;
    ck_assert_int_eq(n.op->finish(&n, parts, nt, &value, &err), 0);
    for (int64_t k = 0; k < nt; k++)
        free(parts[k]);
    free(parts);
    n.op->free_state(&n);
    json_decref(n.params);
    return value;
}

START_TEST(test_stats)
{
    rng = 0x57a75ull;
    const int64_t w = 301, h = 203;
    const int bands = 3;
    const size_t plane = (size_t)(w * h), ncell = plane * (size_t)bands;
    double *v = malloc(ncell * sizeof *v);
    /* f32 values around 1e4 (a large mean, to catch naive sum-of-squares),
     * -9999 nodata and NaN cells; band 2 has no valid cell at all */
    for (size_t i = 0; i < ncell; i++) {
        double x = to_f32(10000.0 + (rnd_unit() - 0.5) * 10.0);
        if (rnd() % 10 == 0) x = -9999;
        if (rnd() % 17 == 0) x = NAN;
        if (i / plane == 2) x = rnd() % 2 ? NAN : -9999;
        v[i] = x;
    }
    json_t *val = run_stats(PG_F32, true, -9999, v, w, h, bands, 64, 48, NULL);
    refstats all = ref_stats(v, ncell, 1, 0, true, -9999);
    check_stats(val, &all, false);
    json_t *arr = json_object_get(val, "bands");
    ck_assert(json_is_array(arr) && json_array_size(arr) == 3);
    for (int b = 0; b < bands; b++) {
        refstats rb = ref_stats(v, plane, 1, (size_t)b * plane, true, -9999);
        check_stats(json_array_get(arr, (size_t)b), &rb, false);
    }
    ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(arr, 2), "count")), 0);

    /* the same tiling, partials computed in another order: bit-identical */
    pg_tiling tl;
    pg_tiling_init(&tl, w, h, 64, 48);
    int64_t nt = pg_tiling_count(&tl);
    int64_t *order = malloc((size_t)nt * sizeof *order);
    for (int64_t k = 0; k < nt; k++)
        order[k] = nt - 1 - k;
    for (int64_t k = nt - 1; k > 0; k--) { /* shuffle */
        int64_t j = (int64_t)(rnd() % (uint64_t)(k + 1)), tmp = order[k];
        order[k] = order[j];
        order[j] = tmp;
    }
    json_t *val2 = run_stats(PG_F32, true, -9999, v, w, h, bands, 64, 48, order);
    const char *keys[] = {"sum", "mean", "stddev", "min", "max"};
    for (size_t k = 0; k < 5; k++) {
        double a = jnum(val, keys[k]), b = jnum(val2, keys[k]);
        ck_assert_msg(memcmp(&a, &b, sizeof a) == 0, "%s differs", keys[k]);
        a = jnum(json_array_get(arr, 1), keys[k]);
        b = jnum(json_array_get(json_object_get(val2, "bands"), 1), keys[k]);
        ck_assert_msg(memcmp(&a, &b, sizeof a) == 0, "band %s differs", keys[k]);
    }
    ck_assert(json_equal(val, val2));

    /* one tile: the same statistics within rounding (not bit-identical) */
    json_t *val3 = run_stats(PG_F32, true, -9999, v, w, h, bands, 512, 512, NULL);
    check_stats(val3, &all, false);

    json_decref(val);
    json_decref(val2);
    json_decref(val3);
    free(order);
    free(v);
}
END_TEST

START_TEST(test_stats_int)
{
    rng = 0x1e7ull;
    const int64_t w = 100, h = 70;
    double *v = malloc((size_t)(w * h) * sizeof *v);
    for (int64_t i = 0; i < w * h; i++)
        v[i] = rnd_value(PG_U16);
    v[17] = 65535; /* the nodata value */
    json_t *val = run_stats(PG_U16, true, 65535, v, w, h, 1, 32, 32, NULL);
    refstats r = ref_stats(v, (size_t)(w * h), 1, 0, true, 65535);
    check_stats(val, &r, true);
    ck_assert_ptr_null(json_object_get(val, "bands")); /* one band: no list */
    ck_assert(r.sum == (double)(int64_t)r.sum && jnum(val, "sum") == r.sum);
    json_decref(val);

    /* no valid cell */
    for (int64_t i = 0; i < w * h; i++)
        v[i] = 65535;
    val = run_stats(PG_U16, true, 65535, v, w, h, 1, 32, 32, NULL);
    refstats z = {0};
    check_stats(val, &z, true);
    json_decref(val);

    /* i8 and a constant raster: stddev exactly 0 */
    for (int64_t i = 0; i < w * h; i++)
        v[i] = -7;
    val = run_stats(PG_I8, false, 0, v, w, h, 1, 16, 16, NULL);
    ck_assert(jnum(val, "min") == -7 && jnum(val, "max") == -7 && jnum(val, "mean") == -7);
    ck_assert(jnum(val, "stddev") == 0 && jnum(val, "sum") == -7 * w * h);
    json_decref(val);
    free(v);
}
END_TEST

START_TEST(test_stats_errors)
{
    pg_node src = {.op = &src_op, .name = "s"};
    src.info = (pg_raster_info){.width = 10, .height = 10, .bands = 65, .type = PG_U8};
    pg_arg arg = {.node = 0, .ref = &src};
    pg_node n = {.op = find_op("global.stats"),
                 .name = "st",
                 .params = json_object(),
                 .nargs = 1,
                 .args = &arg};
    pg_error err;
    ck_assert_int_eq(n.op->plan(&n, &test_env, &err), PG_ETOOLARGE);
    ck_assert_ptr_null(n.state);
    src.info.bands = 64;
    ck_assert_int_eq(n.op->plan(&n, &test_env, &err), 0);
    n.op->free_state(&n);
    json_decref(n.params);
}
END_TEST

/* ---- the table entries ---- */

START_TEST(test_op_docs)
{
    /* Every op of every family, through the registry: the table entries
     * a user sees in `pergola ops` and ops/REFERENCE.md. */
    size_t count = 0;
    {
        for (size_t i = 0; i < pg_op_count(); i++, count++) {
            const pg_op_def *d = pg_op_at(i);
            ck_assert_msg(d->doc != NULL && strlen(d->doc) > 80, "%s: doc", d->name);
            ck_assert_ptr_nonnull(d->family);
            ck_assert(strncmp(d->name, d->family, strlen(d->family)) == 0);
            json_error_t je;
            json_t *ex = json_loads(d->example, 0, &je);
            ck_assert_msg(ex != NULL, "%s: example is not JSON: %s", d->name, je.text);
            ck_assert_str_eq(json_string_value(json_object_get(ex, "op")), d->name);
            json_decref(ex);
            ck_assert_ptr_nonnull(d->params);
            for (const pg_param_def *p = d->params; p->name != NULL; p++) {
                ck_assert_msg(p->doc != NULL && p->doc[0], "%s.%s: doc", d->name, p->name);
                if (p->default_json != NULL) {
                    json_t *dv = json_loads(p->default_json, JSON_DECODE_ANY, &je);
                    ck_assert_msg(dv != NULL, "%s.%s: default", d->name, p->name);
                    json_decref(dv);
                }
            }
            ck_assert_ptr_nonnull(d->plan);
            if (d->result == PG_RESULT_RASTER) ck_assert_ptr_nonnull(d->compute);
            if (d->result == PG_RESULT_VALUE) {
                ck_assert(d->partial && d->finish && d->partial_size > 0);
            }
        }
    }
    ck_assert_uint_eq(count, pg_op_count());
    static const char *const mine[] = {"local.add",    "local.subtract", "local.multiply",
                                       "local.divide", "global.stats",   "raster.constant"};
    for (size_t i = 0; i < sizeof mine / sizeof *mine; i++)
        ck_assert_msg(pg_op_find(mine[i]) != NULL, "%s missing from the registry", mine[i]);
}
END_TEST

/* ---- speed: printed, not asserted ---- */

/* The best of 30 batches of 10 computes, in ns per tile: the minimum is what
 * the code costs, the rest is other processes on a shared machine. */
static double time_compute(fixture *f)
{
    double best = INFINITY;
    for (int b = 0; b < 30; b++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int i = 0; i < 10; i++)
            f->n.op->compute(&f->n, f->out, f->tiles, &f->err);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double ns =
            ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / 10;
        best = fmin(best, ns);
    }
    return best;
}

START_TEST(test_speed)
{
    rng = 42;
    static const struct {
        const char *what, *op;
        int nargs;
        targ a[4];
    } cases[] = {
        {"add 4 x f32 -> f32", "local.add", 4, {R(F32), R(F32), R(F32), R(F32)}},
        {"add 2 x f32 -> f32", "local.add", 2, {R(F32), R(F32)}},
        {"add u8 + i16 (nodata) -> i32",
         "local.add",
         2,
         {R(U8), {.kind = 'r', .type = PG_I16, .has_nd = true, .nd = -1, .inject_nd = true}}},
        {"divide u16 / u16 -> f32", "local.divide", 2, {R(U16), R(U16)}},
        {"multiply f64 * 0.5 -> f64", "local.multiply", 2, {R(F64), N(0.5)}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        fixture f;
        fx_init(&f, cases[c].op, cases[c].nargs, cases[c].a, NULL, 256, 256, 1);
        ck_assert_int_eq(fx_plan(&f), 0);
        fx_compute(&f);
        double ns = time_compute(&f);
        fprintf(stderr, "%-32s 256x256: %6.1f us per tile (%.2f ns per cell)\n", cases[c].what,
                ns / 1e3, ns / 65536.0);
        fx_free(&f);
    }

    /* global.stats partial() over one f32 tile, with and without nodata */
    for (int with_nd = 0; with_nd < 2; with_nd++) {
        pg_node src = {.op = &src_op, .name = "s"};
        src.info = (pg_raster_info){.width = 256,
                                    .height = 256,
                                    .bands = 1,
                                    .type = PG_F32,
                                    .has_nodata = with_nd,
                                    .nodata = -9999};
        pg_arg arg = {.node = 0, .ref = &src};
        pg_node n = {.op = find_op("global.stats"), .name = "st", .nargs = 1, .args = &arg};
        pg_error err;
        ck_assert_int_eq(n.op->plan(&n, &test_env, &err), 0);
        pg_tile *t = tile_new(PG_F32, 1, (pg_window){0, 0, 256, 256});
        for (size_t i = 0; i < 65536; i++)
            set(t, i, (rnd_unit() - 0.5) * 100);
        void *part = calloc(1, n.op->partial_size);
        pg_tile *in[1] = {t};
        double best = INFINITY;
        for (int b = 0; b < 30; b++) {
            struct timespec t0, t1;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            for (int i = 0; i < 10; i++)
                n.op->partial(&n, part, in, &err);
            clock_gettime(CLOCK_MONOTONIC, &t1);
            best = fmin(
                best,
                ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / 10);
        }
        fprintf(stderr, "%-32s 256x256: %6.1f us per tile (%.2f ns per cell)\n",
                with_nd ? "stats f32 (nodata)" : "stats f32", best / 1e3, best / 65536.0);
        free(part);
        tile_free(t);
        n.op->free_state(&n);
    }
}
END_TEST

int main(void)
{
    GDALAllRegister();
    Suite *s = suite_create("ops");
    TCase *tl = tcase_create("local");
    tcase_set_timeout(tl, 120);
    tcase_add_loop_test(tl, test_pairs, 0, 4);
    tcase_add_loop_test(tl, test_numbers, 0, (int)(sizeof numcases / sizeof numcases[0]));
    tcase_add_test(tl, test_overflow_values);
    tcase_add_test(tl, test_nodata);
    tcase_add_loop_test(tl, test_forced_type, 0, (int)(sizeof forcecases / sizeof forcecases[0]));
    tcase_add_test(tl, test_forced_values);
    tcase_add_test(tl, test_plan_errors);
    tcase_add_test(tl, test_speed);
    suite_add_tcase(s, tl);
    TCase *tr = tcase_create("raster");
    tcase_add_test(tr, test_constant);
    suite_add_tcase(s, tr);
    TCase *tg = tcase_create("global");
    tcase_set_timeout(tg, 120);
    tcase_add_test(tg, test_stats);
    tcase_add_test(tg, test_stats_int);
    tcase_add_test(tg, test_stats_errors);
    tcase_add_test(tg, test_op_docs);
    suite_add_tcase(s, tg);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
