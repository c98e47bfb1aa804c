/* Unit tests for ops/local_math.c: local functions, comparisons, logic,
 * bitwise ops, where, defined/undefined.
 *
 * Nodes are built by hand (no planner), as tests/test_ops.c does: params
 * with json_pack, args pointing at hand-made source nodes, tiles allocated
 * here. Every output cell is compared with a reference computed in this
 * file, in double, straightforwardly from the rules at the top of
 * ops/local_math.c:
 *  - exact equality for every integer result (value ops, comparisons,
 *    logic, bitwise, forced integer types), for every f64 result (the
 *    reference calls the same libm function on the same double), and for
 *    f32 results that are one correctly rounded operation on exact inputs:
 *    sqrt (IEEE), mean and pow (computed in f64 and rounded once, as the
 *    reference does), min/max/where/abs/negate/floor/ceil/round (exact);
 *    floor/ceil/round/negate/abs also compare the sign of zero;
 *  - f32 results of log, log10, exp, sin, cos, tan and atan2 (computed with
 *    the f32 libm functions): |got - ref| <= 2 ulp of f32 at ref, ref being
 *    the double function of the same f32 input; cells whose ref lies within
 *    1e-6 of FLT_MAX are skipped (whether f32 overflows there depends on the
 *    last bit).
 */
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

#define MAXA 8

/* Per-cell checks: Check records every ck_assert (a write to its log), which
 * costs more than the cells; this only calls it when the check fails. */
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) ck_abort_msg(__VA_ARGS__);                                                    \
    } while (0)

static const char *const TN[PG_CELLTYPE_COUNT] = {"u8",  "i8",  "u16", "i16",
                                                  "u32", "i32", "f32", "f64"};

#define U8 PG_U8
#define I8 PG_I8
#define U16 PG_U16
#define I16 PG_I16
#define U32 PG_U32
#define I32 PG_I32
#define F32 PG_F32
#define F64 PG_F64

static const pg_op_def *find_op(const char *name)
{
    for (const pg_op_def *d = pg_ops_local_math; d->name != NULL; d++)
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
    memset(tl->data, 0xA5, alloc ? alloc : 64); /* garbage: compute must write every cell */
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
        CHECK(!isfinite(v) || fabs(v) <= FLT_MAX, "%g is not an f32", v);
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

/* A value of type T: often an edge (0, 1, -1, min, max, a huge float, a
 * half), else uniform over the integer range, or with a fraction in
 * [-1e4, 1e4], or (SMALL) in [-8, 8] with a fraction (so that pow and exp
 * give finite results). */
static double rnd_value(pg_celltype t, bool small)
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
            v = (double)((int64_t)(rnd() % 41) - 20) / 2; /* halves */
        else if (r == 5)
            v = -1.0;
        else if (small)
            v = (rnd_unit() - 0.5) * 16;
        else
            v = (rnd_unit() - 0.5) * 2e4;
        return t == PG_F32 ? (double)(float)v : v;
    }
    double mn = pg_celltype_min(t), mx = pg_celltype_max(t);
    if (r < 3) return 0.0;
    if (r == 3) return 1.0;
    if (r == 4) return mn;
    if (r == 5) return mx;
    if (r == 6 && mn < 0) return -1.0;
    if (small) {
        double v = (double)((int64_t)(rnd() % 17) - 8);
        return v < mn ? -v : v;
    }
    double v = mn + floor(rnd_unit() * (mx - mn + 1.0));
    return v > mx ? mx : v;
}

/* ---- fixtures ---- */

typedef struct targ {
    char kind; /* 'r' raster, 'n' number */
    pg_celltype type;
    double number;
    bool has_nd;
    double nd;
    bool inject_nd;  /* put nodata into ~1/8 of the cells */
    bool inject_nan; /* float rasters: NaN into ~1/16 of the cells */
    bool small;      /* values in [-8, 8] */
} targ;

#define R(t)                                                                                       \
    {                                                                                              \
        .kind = 'r', .type = (t)                                                                   \
    }
#define RS(t)                                                                                      \
    {                                                                                              \
        .kind = 'r', .type = (t), .small = true                                                    \
    }
#define N(x)                                                                                       \
    {                                                                                              \
        .kind = 'n', .number = (x)                                                                 \
    }

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

static void fx_init(fixture *f, const char *op, int nargs, const targ *spec, json_t *params,
                    int64_t w, int64_t h, int bands)
{
    memset(f, 0, sizeof *f);
    f->nargs = nargs;
    f->bands = bands;
    f->win = (pg_window){256, 512, w, h};
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
            double v = rnd_value(spec[a].type, spec[a].small);
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

typedef enum {
    K_MIN,
    K_MAX,
    K_MEAN,
    K_POW,
    K_ATAN2,
    K_NEG,
    K_ABS,
    K_SQRT,
    K_LOG,
    K_LOG10,
    K_EXP,
    K_FLOOR,
    K_CEIL,
    K_ROUND,
    K_SIN,
    K_COS,
    K_TAN,
    K_EQ,
    K_NE,
    K_LT,
    K_LE,
    K_GT,
    K_GE,
    K_AND,
    K_OR,
    K_XOR,
    K_NOT,
    K_BAND,
    K_BOR,
    K_BXOR,
    K_BNOT,
    K_SHL,
    K_SHR,
    K_WHERE,
    K_DEF,
    K_UNDEF,
    K_COUNT
} kind;

static const char *const KN[K_COUNT] = {
    "local.min",      "local.max",   "local.mean",   "local.pow",   "local.atan2",
    "local.negate",   "local.abs",   "local.sqrt",   "local.log",   "local.log10",
    "local.exp",      "local.floor", "local.ceil",   "local.round", "local.sin",
    "local.cos",      "local.tan",   "local.eq",     "local.ne",    "local.lt",
    "local.le",       "local.gt",    "local.ge",     "local.and",   "local.or",
    "local.xor",      "local.not",   "local.bitand", "local.bitor", "local.bitxor",
    "local.bitnot",   "local.shl",   "local.shr",    "local.where", "local.defined",
    "local.undefined"};

static kind kind_of(const char *name)
{
    for (int k = 0; k < K_COUNT; k++)
        if (strcmp(KN[k], name) == 0) return (kind)k;
    ck_abort_msg("unknown op %s", name);
    return K_COUNT;
}

static bool is_unary_float(kind k)
{
    return k == K_SQRT || k == K_LOG || k == K_LOG10 || k == K_EXP || k == K_SIN || k == K_COS ||
           k == K_TAN;
}

/* f32 results compared with a tolerance (see the top of the file). */
static bool tolerant(kind k)
{
    return k != K_SQRT && (is_unary_float(k) || k == K_ATAN2);
}

/* Round to the nearest f32, overflowing to inf from 2^128 - 2^103 on. */
static double to_f32(double x)
{
    const double lim = 0x1.ffffffp127;
    if (isnan(x)) return x;
    if (x >= lim) return INFINITY;
    if (x <= -lim) return -INFINITY;
    return (double)(float)x;
}

static double ulp_f32(double x)
{
    x = fabs(x);
    if (x < 0x1p-126) return 0x1p-149;
    int e;
    frexp(x, &e);
    return ldexp(1.0, e - 24);
}

static bool cell_is_nodata(const targ *s, double v)
{
    if (isnan(v)) return true;
    if (!s->has_nd) return false;
    double nd = s->type == PG_F32 ? to_f32(s->nd) : s->nd;
    return v == nd;
}

static double unary_fn(kind k, double x)
{
    switch (k) {
    case K_SQRT:
        return sqrt(x);
    case K_LOG:
        return log(x);
    case K_LOG10:
        return log10(x);
    case K_EXP:
        return exp(x);
    case K_SIN:
        return sin(x);
    case K_COS:
        return cos(x);
    default:
        return tan(x);
    }
}

/* A bitwise operand as the low N bits of its integer value. */
static uint64_t bits_of(double v, int nbits)
{
    uint64_t mask = nbits == 64 ? UINT64_MAX : ((uint64_t)1 << nbits) - 1;
    return (uint64_t)(int64_t)v & mask;
}

/* N bits as a value of type T. */
static double from_bits(uint64_t b, pg_celltype t)
{
    int nbits = (int)pg_celltype_size(t) * 8;
    b &= ((uint64_t)1 << nbits) - 1;
    if (pg_celltype_is_signed(t) && (b >> (nbits - 1)) & 1) return (double)b - ldexp(1.0, nbits);
    return (double)b;
}

typedef struct refres {
    bool nd;   /* nodata */
    bool skip; /* not compared (see the top of the file) */
    double v;
} refres;

#define ND ((refres){.nd = true})

/* The reference result of cell values V (nodata flags D) for node F of
 * natural type NAT; FORCED: a "type" param is given. */
static refres ref_cell(const fixture *f, kind k, const double *v, const bool *d, pg_celltype nat,
                       bool forced)
{
    const int na = f->nargs;
    const targ *sp = f->spec;
    bool anynd = false;
    for (int a = 0; a < na; a++)
        anynd |= d[a];
    refres r = {0};
    switch (k) {
    case K_MIN:
    case K_MAX: {
        if (anynd) return ND;
        bool first = true;
        for (int a = 0; a < na; a++) {
            double x = sp[a].kind == 'n' && nat == F32 ? to_f32(v[a]) : v[a];
            if (first)
                r.v = x;
            else if (k == K_MIN)
                r.v = x < r.v ? x : r.v;
            else
                r.v = x > r.v ? x : r.v;
            first = false;
        }
        if (!isfinite(r.v)) return ND;
        return r;
    }
    case K_MEAN:
    case K_POW: {
        if (anynd) return ND;
        if (k == K_POW) {
            r.v = pow(v[0], v[1]);
        } else {
            double s = 0, ks = 0;
            bool first = true, kfirst = true, hasn = false;
            for (int a = 0; a < na; a++) {
                if (sp[a].kind == 'n') {
                    ks = kfirst ? v[a] : ks + v[a];
                    kfirst = false;
                    hasn = true;
                } else {
                    s = first ? v[a] : s + v[a];
                    first = false;
                }
            }
            if (hasn) s = s + ks;
            r.v = s / na;
        }
        if (nat == F32) {
            if (fabs(r.v) > FLT_MAX) return ND;
            r.v = to_f32(r.v);
        }
        if (!isfinite(r.v)) return ND;
        return r;
    }
    case K_ATAN2: {
        if (anynd) return ND;
        double y = nat == F32 ? to_f32(v[0]) : v[0], x = nat == F32 ? to_f32(v[1]) : v[1];
        r.v = atan2(y, x);
        if (!isfinite(r.v)) return ND;
        return r;
    }
    case K_NEG:
    case K_ABS: {
        if (anynd) return ND;
        r.v = k == K_NEG ? -v[0] : fabs(v[0]);
        if (!isfinite(r.v)) return ND;
        if (!forced && !pg_celltype_is_float(nat) &&
            (r.v < pg_celltype_min(nat) || r.v > pg_celltype_max(nat)))
            return ND;
        return r;
    }
    case K_FLOOR:
    case K_CEIL:
    case K_ROUND:
        if (anynd) return ND;
        r.v = k == K_FLOOR ? floor(v[0]) : k == K_CEIL ? ceil(v[0]) : round(v[0]);
        if (!isfinite(r.v)) return ND;
        return r;
    case K_EQ:
    case K_NE:
    case K_LT:
    case K_LE:
    case K_GT:
    case K_GE: {
        if (anynd) return ND;
        double x = v[0], y = v[1];
        bool t = k == K_EQ   ? x == y
                 : k == K_NE ? x != y
                 : k == K_LT ? x < y
                 : k == K_LE ? x <= y
                 : k == K_GT ? x > y
                             : x >= y;
        r.v = t;
        return r;
    }
    case K_AND:
    case K_OR:
    case K_XOR:
    case K_NOT: {
        if (anynd) return ND;
        int acc = k == K_AND ? 1 : 0;
        for (int a = 0; a < na; a++) {
            int t = v[a] != 0;
            acc = k == K_AND ? acc & t : k == K_OR ? acc | t : acc ^ t;
        }
        r.v = k == K_NOT ? !acc : acc;
        return r;
    }
    case K_BAND:
    case K_BOR:
    case K_BXOR:
    case K_BNOT:
    case K_SHL:
    case K_SHR: {
        if (anynd) return ND;
        int nbits = (int)pg_celltype_size(nat) * 8;
        if (k == K_BNOT) {
            r.v = from_bits(~bits_of(v[0], nbits), nat);
        } else if (k == K_SHL) {
            r.v = from_bits(bits_of(v[0], nbits) << (int)v[1], nat);
        } else if (k == K_SHR) {
            /* the value of the type (not the bits) divided, rounded down */
            double x = from_bits(bits_of(v[0], nbits), nat);
            r.v = floor(x / ldexp(1.0, (int)v[1]));
        } else {
            uint64_t acc = k == K_BAND ? UINT64_MAX : 0;
            for (int a = 0; a < na; a++) {
                uint64_t b = bits_of(v[a], nbits);
                acc = k == K_BAND ? acc & b : k == K_BOR ? acc | b : acc ^ b;
            }
            r.v = from_bits(acc, nat);
        }
        return r;
    }
    case K_WHERE: {
        if (d[0]) return ND;
        int pick = v[0] != 0 ? 1 : 2;
        if (d[pick]) return ND;
        r.v = sp[pick].kind == 'n' && nat == F32 ? to_f32(v[pick]) : v[pick];
        if (!isfinite(r.v)) return ND;
        return r;
    }
    case K_DEF:
        r.v = !d[0];
        return r;
    case K_UNDEF:
        r.v = d[0];
        return r;
    default: { /* unary float functions */
        if (anynd) return ND;
        double x = v[0];
        r.v = unary_fn(k, x);
        if (nat == F32) {
            if (fabs(r.v) > FLT_MAX * (1 - 1e-6) && fabs(r.v) < FLT_MAX * (1 + 1e-6)) r.skip = true;
            r.v = k == K_SQRT ? to_f32(r.v) : r.v;
            if (!isfinite(to_f32(r.v))) return ND;
        }
        if (!isfinite(r.v)) return ND;
        return r;
    }
    }
}

/* Compares every output cell of F (natural type NAT, forced type FORCED or
 * -1) with the reference. Returns the number of nodata cells. */
static size_t fx_check(fixture *f, pg_celltype nat, int forced)
{
    kind k = kind_of(f->n.op->name);
    const pg_raster_info *oi = &f->n.info;
    pg_celltype otype = forced >= 0 ? (pg_celltype)forced : nat;
    CHECK(oi->type == otype, "%s: type %s, want %s", f->n.op->name, TN[oi->type], TN[otype]);
    const bool signs = k == K_FLOOR || k == K_CEIL || k == K_ROUND || k == K_NEG || k == K_ABS;
    size_t nodata_cells = 0, ncell = tile_cells(f->out);
    for (size_t i = 0; i < ncell; i++) {
        double v[MAXA] = {0};
        bool d[MAXA] = {0};
        for (int a = 0; a < f->nargs; a++) {
            if (f->spec[a].kind == 'n') {
                v[a] = f->spec[a].number;
                d[a] = false;
            } else {
                v[a] = get(f->tiles[a], i);
                d[a] = cell_is_nodata(&f->spec[a], v[a]);
            }
        }
        refres r = ref_cell(f, k, v, d, nat, forced >= 0);
        double got = get(f->out, i);
        if (r.nd) {
            CHECK(oi->has_nodata, "%s cell %zu: nodata expected but the output has none",
                  f->n.op->name, i);
            CHECK(got == oi->nodata || (isnan(got) && isnan(oi->nodata)),
                  "%s cell %zu: want nodata %g, got %.17g (args %.17g %.17g)", f->n.op->name, i,
                  oi->nodata, got, v[0], f->nargs > 1 ? v[1] : 0.0);
            nodata_cells++;
            continue;
        }
        if (r.skip) continue;
        double want = r.v;
        if (forced >= 0) {
            double lo, hi;
            if (otype == F32)
                lo = -FLT_MAX, hi = FLT_MAX;
            else if (otype == F64)
                lo = -DBL_MAX, hi = DBL_MAX;
            else
                lo = pg_celltype_min(otype), hi = pg_celltype_max(otype);
            want = want < lo ? lo : want > hi ? hi : want;
            if (!pg_celltype_is_float(otype)) want = round(want);
            if (otype == F32) want = to_f32(want);
        }
        if (tolerant(k) && otype == F32 && forced < 0) {
            double tol = 2 * ulp_f32(want);
            CHECK(fabs(got - want) <= tol, "%s cell %zu: want %.17g, got %.17g (tol %g; arg %.17g)",
                  f->n.op->name, i, want, got, tol, v[0]);
        } else {
            CHECK(got == want, "%s cell %zu: want %.17g, got %.17g (args %.17g %.17g %.17g)",
                  f->n.op->name, i, want, got, v[0], f->nargs > 1 ? v[1] : 0.0,
                  f->nargs > 2 ? v[2] : 0.0);
            if (signs && pg_celltype_is_float(otype))
                CHECK(!!signbit(got) == !!signbit(want),
                      "%s cell %zu: want %g, got %g (sign of zero)", f->n.op->name, i, want, got);
        }
        if (oi->has_nodata && got == oi->nodata) nodata_cells++; /* a valid value colliding */
    }
    return nodata_cells;
}

/* ---- type rules, written out by hand ---- */

/* The common type (min, max, where, ...), rows a, columns b. */
static const pg_celltype common_table[8][8] = {
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

/* Float functions: f32 iff both are 8/16-bit or f32. */
static const pg_celltype float_table[8][8] = {
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

/* Bitwise integer promotion. */
static const pg_celltype bit_table[6][6] = {
    /*         u8   i8   u16  i16  u32  i32 */
    /* u8  */ {U8, I8, U16, I16, U32, I32},
    /* i8  */ {I8, I8, I16, I16, I32, I32},
    /* u16 */ {U16, I16, U16, I16, U32, I32},
    /* i16 */ {I16, I16, I16, I16, I32, I32},
    /* u32 */ {U32, I32, U32, I32, U32, I32},
    /* i32 */ {I32, I32, I32, I32, I32, I32},
};

static bool isf(pg_celltype t)
{
    return t == F32 || t == F64;
}

/* Every pair of types through the binary ops: type, has_nodata, cells. */
START_TEST(test_pairs)
{
    static const char *const ops[] = {
        "local.min", "local.max", "local.mean",  "local.pow",    "local.atan2", "local.eq",
        "local.ne",  "local.lt",  "local.le",    "local.gt",     "local.ge",    "local.and",
        "local.or",  "local.xor", "local.where", "local.bitand", "local.bitor", "local.bitxor"};
    const char *opname = ops[_i];
    kind k = kind_of(opname);
    rng = 0x1234567ull + (uint64_t)_i;
    const int ntypes = (k == K_BAND || k == K_BOR || k == K_BXOR) ? 6 : 8;
    for (int a = 0; a < ntypes; a++) {
        for (int b = 0; b < ntypes; b++) {
            fixture f;
            pg_celltype want;
            bool need_nd;
            if (k == K_WHERE) {
                /* cond: an f32 raster (NaN, zeros) for odd a, else u8 */
                targ spec[3] = {R(a % 2 ? F32 : U8), R((pg_celltype)a), R((pg_celltype)b)};
                spec[0].inject_nan = a % 2;
                fx_init(&f, opname, 3, spec, NULL, 45, 29, 2);
                want = common_table[a][b];
                need_nd = a % 2 || isf((pg_celltype)a) || isf((pg_celltype)b);
            } else {
                bool small = k == K_POW;
                targ spec[2] = {{.kind = 'r', .type = (pg_celltype)a, .small = small},
                                {.kind = 'r', .type = (pg_celltype)b, .small = small}};
                /* 45 x 29 x 2 = 2610 cells: two full chunks and a ragged tail */
                fx_init(&f, opname, 2, spec, NULL, 45, 29, 2);
                bool anyf = isf((pg_celltype)a) || isf((pg_celltype)b);
                if (k == K_MIN || k == K_MAX) {
                    want = common_table[a][b];
                    need_nd = anyf;
                } else if (k == K_MEAN || k == K_POW || k == K_ATAN2) {
                    want = float_table[a][b];
                    need_nd = true;
                } else if (k >= K_BAND) {
                    want = bit_table[a][b];
                    need_nd = false;
                } else {
                    want = U8;
                    need_nd = anyf;
                }
            }
            ck_assert_msg(fx_plan(&f) == 0, "%s(%s, %s): %s", opname, TN[a], TN[b], f.err.message);
            ck_assert_msg(f.n.info.type == want, "%s(%s, %s): type %s, want %s", opname, TN[a],
                          TN[b], TN[f.n.info.type], TN[want]);
            ck_assert_msg(f.n.info.has_nodata == need_nd, "%s(%s, %s): has_nodata %d", opname,
                          TN[a], TN[b], f.n.info.has_nodata);
            if (need_nd) {
                double dn =
                    want == U8 && k >= K_EQ && k <= K_NOT ? 255 : pg_celltype_default_nodata(want);
                ck_assert(f.n.info.nodata == dn || (isnan(dn) && isnan(f.n.info.nodata)));
            }
            ck_assert_int_eq(f.n.info.width, 1000);
            ck_assert_int_eq(f.n.info.bands, 2);
            fx_compute(&f);
            fx_check(&f, want, -1);
            fx_free(&f);
        }
    }
}
END_TEST

/* ---- every op with numbers, one or more types, n-ary chains ---- */

typedef struct mcase {
    const char *op;
    int nargs;
    targ a[6];
    pg_celltype want;
    bool has_nd;
} mcase;

static const mcase mcases[] = {
    /* min/max: the common type, numbers as their smallest type */
    {"local.min", 2, {R(U8), N(2)}, U8, false},
    {"local.min", 2, {R(U8), N(-1)}, I16, false},
    {"local.max", 2, {N(300), R(U8)}, U16, false},
    {"local.max", 2, {R(U8), N(0.5)}, F32, false},
    {"local.min", 2, {R(I32), N(0.5)}, F64, false},
    {"local.max", 2, {R(U32), N(-1)}, F64, false},
    {"local.min", 3, {R(I16), R(U16), N(7)}, I32, false},
    {"local.max", 3, {R(F32), N(3), N(1e10)}, F64, true},
    {"local.min", 4, {R(U8), R(U8), R(U8), R(U8)}, U8, false},
    {"local.max", 5, {R(I8), R(I8), N(-3), R(I8), R(I8)}, I8, false},
    {"local.min", 6, {R(F32), R(U8), R(F32), R(I16), N(0.1), R(F32)}, F32, true},
    {"local.max", 4, {R(F64), N(-1e300), R(I32), R(U32)}, F64, true},
    {"local.min", 3, {R(U32), R(U16), N(4294967295.0)}, U32, false},
    /* mean */
    {"local.mean", 2, {R(U8), R(U16)}, F32, true},
    {"local.mean", 2, {R(U8), N(2)}, F32, true},
    {"local.mean", 2, {R(I32), N(1)}, F64, true},
    {"local.mean", 5, {R(F32), R(F32), N(0.5), R(F32), N(-2)}, F32, true},
    {"local.mean", 6, {R(F64), R(F64), R(F64), R(F64), R(F64), R(F64)}, F64, true},
    /* pow, atan2 */
    {"local.pow", 2, {RS(U8), N(2)}, F32, true},
    {"local.pow", 2, {N(2), RS(I16)}, F32, true},
    {"local.pow", 2, {R(F64), N(0.5)}, F64, true},
    {"local.pow", 2, {RS(F32), RS(F32)}, F32, true},
    {"local.pow", 2, {RS(F32), N(0.1)}, F32, true},
    {"local.pow", 2, {RS(U32), N(-1)}, F64, true},
    {"local.atan2", 2, {R(I16), N(1)}, F32, true},
    {"local.atan2", 2, {R(F32), R(F32)}, F32, true},
    {"local.atan2", 2, {N(0), R(F64)}, F64, true},
    {"local.atan2", 2, {R(I8), N(0.1)}, F32, true},
    /* negate, abs */
    {"local.negate", 1, {R(U8)}, I16, false},
    {"local.negate", 1, {R(U16)}, I32, false},
    {"local.negate", 1, {R(U32)}, F64, false},
    {"local.negate", 1, {R(I8)}, I8, true},
    {"local.negate", 1, {R(I16)}, I16, true},
    {"local.negate", 1, {R(I32)}, I32, true},
    {"local.negate", 1, {R(F32)}, F32, true},
    {"local.negate", 1, {R(F64)}, F64, true},
    {"local.abs", 1, {R(U8)}, U8, false},
    {"local.abs", 1, {R(U16)}, U16, false},
    {"local.abs", 1, {R(U32)}, U32, false},
    {"local.abs", 1, {R(I8)}, I8, true},
    {"local.abs", 1, {R(I16)}, I16, true},
    {"local.abs", 1, {R(I32)}, I32, true},
    {"local.abs", 1, {R(F32)}, F32, true},
    {"local.abs", 1, {R(F64)}, F64, true},
    /* floor, ceil, round */
    {"local.floor", 1, {R(U8)}, U8, false},
    {"local.floor", 1, {R(I32)}, I32, false},
    {"local.floor", 1, {R(F32)}, F32, true},
    {"local.floor", 1, {RS(F64)}, F64, true},
    {"local.ceil", 1, {R(I8)}, I8, false},
    {"local.ceil", 1, {RS(F32)}, F32, true},
    {"local.ceil", 1, {R(F64)}, F64, true},
    {"local.round", 1, {R(U32)}, U32, false},
    {"local.round", 1, {RS(F32)}, F32, true},
    {"local.round", 1, {R(F64)}, F64, true},
    /* unary float functions */
    {"local.sqrt", 1, {R(U8)}, F32, true},
    {"local.sqrt", 1, {R(I16)}, F32, true},
    {"local.sqrt", 1, {R(F32)}, F32, true},
    {"local.sqrt", 1, {R(F64)}, F64, true},
    {"local.sqrt", 1, {R(U32)}, F64, true},
    {"local.log", 1, {R(U16)}, F32, true},
    {"local.log", 1, {R(F32)}, F32, true},
    {"local.log", 1, {R(I32)}, F64, true},
    {"local.log10", 1, {R(I8)}, F32, true},
    {"local.log10", 1, {R(F64)}, F64, true},
    {"local.log10", 1, {R(F32)}, F32, true},
    {"local.exp", 1, {RS(I8)}, F32, true},
    {"local.exp", 1, {R(F32)}, F32, true},
    {"local.exp", 1, {RS(F64)}, F64, true},
    {"local.exp", 1, {R(U8)}, F32, true},
    {"local.sin", 1, {R(F32)}, F32, true},
    {"local.sin", 1, {R(I16)}, F32, true},
    {"local.sin", 1, {R(F64)}, F64, true},
    {"local.cos", 1, {R(F32)}, F32, true},
    {"local.cos", 1, {R(U32)}, F64, true},
    {"local.tan", 1, {R(F32)}, F32, true},
    {"local.tan", 1, {R(F64)}, F64, true},
    {"local.tan", 1, {R(U16)}, F32, true},
    /* comparisons: exact values */
    {"local.eq", 2, {R(U8), N(0.5)}, U8, false},
    {"local.lt", 2, {R(F32), N(0.1)}, U8, true},
    {"local.ge", 2, {R(U32), N(4294967295.0)}, U8, false},
    {"local.ne", 2, {R(I32), N(-3)}, U8, false},
    {"local.gt", 2, {R(I8), R(I16)}, U8, false},
    {"local.le", 2, {N(0), R(F64)}, U8, true},
    {"local.gt", 2, {R(U8), N(1e10)}, U8, false},
    {"local.eq", 2, {R(F32), N(1)}, U8, true},
    /* logic */
    {"local.and", 3, {R(U8), R(I16), N(1)}, U8, false},
    {"local.and", 2, {R(U8), N(0)}, U8, false},
    {"local.or", 3, {R(F32), N(0), R(U8)}, U8, true},
    {"local.or", 2, {R(I8), N(-2)}, U8, false},
    {"local.xor", 3, {R(U8), R(U8), R(U8)}, U8, false},
    {"local.xor", 4, {R(U8), N(1), R(F64), N(3)}, U8, true},
    {"local.not", 1, {R(F32)}, U8, true},
    {"local.not", 1, {R(I32)}, U8, false},
    /* bitwise */
    {"local.bitand", 2, {R(U8), N(12)}, U8, false},
    {"local.bitor", 2, {R(U8), R(I8)}, I8, false},
    {"local.bitxor", 3, {R(U16), R(I8), N(255)}, I16, false},
    {"local.bitand", 2, {R(I32), N(-256)}, I32, false},
    {"local.bitor", 2, {R(U32), N(4294967295.0)}, U32, false},
    {"local.bitand", 2, {R(U8), N(-1)}, U8, false},
    {"local.bitxor", 4, {R(I16), R(U8), R(U16), N(-32768)}, I16, false},
    {"local.bitnot", 1, {R(U8)}, U8, false},
    {"local.bitnot", 1, {R(I16)}, I16, false},
    {"local.bitnot", 1, {R(U32)}, U32, false},
    {"local.shl", 2, {R(U8), N(3)}, U8, false},
    {"local.shl", 2, {R(I16), N(15)}, I16, false},
    {"local.shl", 2, {R(I8), N(9)}, I8, false},
    {"local.shl", 2, {R(I32), N(31)}, I32, false},
    {"local.shr", 2, {R(I8), N(2)}, I8, false},
    {"local.shr", 2, {R(I8), N(20)}, I8, false},
    {"local.shr", 2, {R(U16), N(31)}, U16, false},
    {"local.shr", 2, {R(I32), N(31)}, I32, false},
    {"local.shr", 2, {R(U32), N(1)}, U32, false},
    {"local.shr", 2, {R(I16), N(0)}, I16, false},
    /* where */
    {"local.where", 3, {R(U8), R(U8), N(0)}, U8, false},
    {"local.where", 3, {R(F32), R(I16), N(2.5)}, F32, true},
    {"local.where", 3, {R(U8), N(1), N(0)}, U8, false},
    {"local.where", 3, {R(U8), N(-1), N(1000)}, I32, false}, /* i8 and u16 */
    {"local.where", 3, {R(I16), R(U32), R(I32)}, F64, false},
    {"local.where", 3, {N(1), R(F32), R(U8)}, F32, true},
    {"local.where", 3, {N(0), R(F32), R(U8)}, F32, true},
    {"local.where", 3, {R(U16), N(0.1), R(F64)}, F64, true},
    /* defined, undefined */
    {"local.defined", 1, {R(U8)}, U8, false},
    {"local.undefined", 1, {R(F64)}, U8, false},
};

START_TEST(test_cases)
{
    const mcase *c = &mcases[_i];
    rng = 0xabcdefull + (uint64_t)_i;
    fixture f;
    fx_init(&f, c->op, c->nargs, c->a, NULL, 37, 41, 1);
    /* NaN in some float rasters too */
    for (int a = 0; a < c->nargs; a++) {
        if (c->a[a].kind != 'r' || !isf(c->a[a].type) || a % 2 == 0) continue;
        for (size_t i = 0; i < tile_cells(f.tiles[a]); i += 7)
            set(f.tiles[a], i, NAN);
    }
    ck_assert_msg(fx_plan(&f) == 0, "case %d (%s): %s", _i, c->op, f.err.message);
    ck_assert_msg(f.n.info.type == c->want, "case %d (%s): type %s, want %s", _i, c->op,
                  TN[f.n.info.type], TN[c->want]);
    ck_assert_msg(f.n.info.has_nodata == c->has_nd, "case %d (%s): has_nodata %d", _i, c->op,
                  f.n.info.has_nodata);
    fx_compute(&f);
    fx_check(&f, c->want, -1);
    fx_free(&f);
}
END_TEST

/* ---- nodata: declared values, injected cells, the output's value ---- */

typedef struct ndcase {
    const char *op;
    int nargs;
    targ a[4];
    pg_celltype want;
    double nodata; /* the output's nodata value (NaN: NaN) */
} ndcase;

#define RN(t, v)                                                                                   \
    {                                                                                              \
        .kind = 'r', .type = (t), .has_nd = true, .nd = (v), .inject_nd = true                     \
    }
#define RNAN(t)                                                                                    \
    {                                                                                              \
        .kind = 'r', .type = (t), .inject_nan = true                                               \
    }

static const ndcase ndcases[] = {
    {"local.min", 3, {RN(I16, -9999), RNAN(F32), RN(U8, 0)}, F32, -9999},
    {"local.max", 2, {R(U8), RN(U8, 7)}, U8, 255},
    {"local.min", 2, {RN(U8, 0), R(I8)}, I16, 0},
    {"local.max", 2, {RN(U16, 65535), R(U16)}, U16, 65535},
    {"local.mean", 3, {RN(F32, -9999), RN(I16, -1), N(4)}, F32, -9999},
    {"local.mean", 2, {RN(U8, 255), RN(U8, 0)}, F32, 255},
    {"local.pow", 2, {RN(F64, -1), N(2)}, F64, -1},
    {"local.atan2", 2, {RNAN(F32), RN(I16, 0)}, F32, NAN},
    {"local.sqrt", 1, {RN(F32, 0.1)}, F32, NAN}, /* 0.1 is not an f32 */
    {"local.sqrt", 1, {RN(F32, -1)}, F32, -1},
    {"local.log", 1, {RN(U16, 0)}, F32, 0},
    {"local.exp", 1, {RN(F64, NAN)}, F64, NAN},
    {"local.negate", 1, {RN(U8, 255)}, I16, 255},
    {"local.negate", 1, {RN(I8, -128)}, I8, -128},
    {"local.abs", 1, {RN(I16, -1)}, I16, -1},
    {"local.abs", 1, {RN(U32, 4294967295.0)}, U32, 4294967295.0},
    {"local.floor", 1, {RN(F32, -3.5)}, F32, -3.5},
    {"local.round", 1, {RN(F64, 1e300)}, F64, 1e300},
    {"local.ceil", 1, {RN(I32, 5)}, I32, 5},
    {"local.eq", 2, {RN(U8, 3), N(3)}, U8, 255},
    {"local.lt", 2, {RN(I16, -9999), RNAN(F64)}, U8, 255},
    {"local.gt", 2, {RNAN(F32), N(0)}, U8, 255},
    {"local.and", 3, {RN(U8, 0), RN(I16, 1), N(1)}, U8, 255},
    {"local.xor", 2, {RNAN(F32), R(U8)}, U8, 255},
    {"local.not", 1, {RN(U8, 1)}, U8, 255},
    {"local.bitand", 2, {RN(U8, 15), R(U8)}, U8, 15},
    {"local.bitor", 2, {R(U8), RN(I8, -1)}, I8, -128},   /* first raster has none: default */
    {"local.bitxor", 2, {RN(U8, 200), R(I8)}, I8, -128}, /* i8 cannot hold 200 */
    {"local.bitnot", 1, {RN(U16, 0)}, U16, 0},
    {"local.shl", 2, {RN(I32, -2147483647.0 - 1), N(4)}, I32, -2147483647.0 - 1},
    {"local.where", 3, {RN(U8, 2), RN(F32, -5), RN(F32, 7)}, F32, -5},
    {"local.where", 3, {R(U8), N(1), RN(I16, -9999)}, I16, -9999},
    {"local.where", 3, {RNAN(F32), RN(U8, 9), RN(U8, 0)}, U8, 9},
    {"local.where", 3, {RN(I16, 0), RN(U16, 70), RN(I16, 3)}, I32, 70},
    {"local.where", 3, {R(U8), R(I16), RN(I16, -5)}, I16, -5}, /* a has none: b's */
    {"local.where", 3, {R(U8), RN(U8, 200), RN(I8, -7)}, I16, 200},
    {"local.where", 3, {R(U8), RN(F32, 0.1), RN(F32, -7)}, F32, -7}, /* 0.1 is no f32 */
    {"local.defined", 1, {RN(I16, -9999)}, U8, 0},
    {"local.undefined", 1, {RNAN(F32)}, U8, 0},
    {"local.defined", 1, {RN(F32, -9999)}, U8, 0},
};

START_TEST(test_nodata)
{
    const ndcase *c = &ndcases[_i];
    rng = 0x5eedull + (uint64_t)_i;
    fixture f;
    fx_init(&f, c->op, c->nargs, c->a, NULL, 50, 40, 1);
    ck_assert_msg(fx_plan(&f) == 0, "case %d (%s): %s", _i, c->op, f.err.message);
    ck_assert_int_eq(f.n.info.type, c->want);
    bool def = strstr(c->op, "defined") != NULL;
    if (def) {
        ck_assert(!f.n.info.has_nodata);
    } else {
        ck_assert_msg(f.n.info.has_nodata, "case %d: no nodata", _i);
        ck_assert_msg(f.n.info.nodata == c->nodata || (isnan(c->nodata) && isnan(f.n.info.nodata)),
                      "case %d (%s): nodata %g, want %g", _i, c->op, f.n.info.nodata, c->nodata);
    }
    fx_compute(&f);
    size_t nd = fx_check(&f, c->want, -1);
    /* (where picks b, whose nodata is injected, only where cond is 0) */
    size_t least = strcmp(c->op, "local.where") == 0 ? 10 : 100;
    if (!def) ck_assert_msg(nd > least, "case %d (%s): only %zu nodata cells", _i, c->op, nd);
    if (def) {
        size_t ones = 0;
        for (size_t i = 0; i < tile_cells(f.out); i++)
            ones += get(f.out, i) == 1;
        ck_assert_msg(ones > 100 && ones < tile_cells(f.out) - 100, "case %d: %zu ones", _i, ones);
    }
    fx_free(&f);
}
END_TEST

/* ---- forced types ---- */

typedef struct fcase {
    const char *op;
    int nargs;
    targ a[3];
    const char *type;
    pg_celltype natural, out;
} fcase;

static const fcase fcases[] = {
    {"local.round", 1, {R(F32)}, "i16", F32, I16},
    {"local.floor", 1, {RNAN(F64)}, "u8", F64, U8},
    {"local.sqrt", 1, {R(U16)}, "u8", F32, U8},
    {"local.sqrt", 1, {R(F64)}, "f32", F64, F32},
    {"local.mean", 3, {R(U8), R(U8), N(1)}, "u8", F32, U8},
    {"local.min", 2, {R(I16), R(I16)}, "u8", I16, U8},
    {"local.max", 2, {R(U32), R(U8)}, "i16", U32, I16},
    {"local.negate", 1, {R(I32)}, "f64", I32, F64},
    {"local.abs", 1, {R(I8)}, "u8", I8, U8},
    {"local.where", 3, {R(U8), R(F32), N(-1)}, "i32", F32, I32},
    {"local.pow", 2, {RS(I16), N(3)}, "i8", F32, I8},
    {"local.exp", 1, {RS(F64)}, "u16", F64, U16},
    {"local.atan2", 2, {R(F64), R(F64)}, "i8", F64, I8},
};

START_TEST(test_forced)
{
    const fcase *c = &fcases[_i];
    rng = 0xf0f0ull + (uint64_t)_i;
    fixture f;
    fx_init(&f, c->op, c->nargs, c->a, json_pack("{s:s}", "type", c->type), 33, 31, 1);
    ck_assert_msg(fx_plan(&f) == 0, "case %d: %s", _i, f.err.message);
    ck_assert_int_eq(f.n.info.type, c->out);
    fx_compute(&f);
    fx_check(&f, c->natural, (int)c->out);
    fx_free(&f);
}
END_TEST

/* ---- specific values, written out ---- */

/* Runs OP over one-band rows of values (arg A of type TA: NA values; a
 * number arg is given by NUM with TYPE -1); returns the fixture after
 * compute (caller frees). */
static void run_values(fixture *f, const char *op, int nargs, const int *types, const double *nums,
                       const double *const *vals, int n, json_t *params)
{
    targ spec[MAXA];
    for (int a = 0; a < nargs; a++)
        spec[a] = types[a] < 0 ? (targ)N(nums[a]) : (targ)R((pg_celltype)types[a]);
    fx_init(f, op, nargs, spec, params, n, 1, 1);
    for (int a = 0; a < nargs; a++)
        if (types[a] >= 0)
            for (int i = 0; i < n; i++)
                set(f->tiles[a], (size_t)i, vals[a][i]);
    ck_assert_msg(fx_plan(f) == 0, "%s: %s", op, f->err.message);
    fx_compute(f);
}

static void want_cells(const fixture *f, const double *want, int n)
{
    const pg_raster_info *oi = &f->n.info;
    for (int i = 0; i < n; i++) {
        double got = get(f->out, (size_t)i);
        bool eq = got == want[i] || (isnan(got) && isnan(want[i]));
        CHECK(eq, "%s cell %d: want %.17g, got %.17g (nodata %g)", f->n.op->name, i, want[i], got,
              oi->nodata);
        if (got == 0 && want[i] == 0)
            CHECK(!!signbit(got) == !!signbit(want[i]), "%s cell %d: sign of zero", f->n.op->name,
                  i);
    }
}

START_TEST(test_values)
{
    fixture f;
    /* negate / abs of the most negative values, and unsigned widening */
    {
        const double x[] = {-128, 127, 0, -1, 5};
        const double *v[] = {x};
        run_values(&f, "local.negate", 1, (int[]){I8}, NULL, v, 5, NULL);
        ck_assert(f.n.info.type == I8 && f.n.info.nodata == -128);
        want_cells(&f, (double[]){-128, -127, 0, 1, -5}, 5);
        fx_free(&f);
        run_values(&f, "local.abs", 1, (int[]){I8}, NULL, v, 5, NULL);
        want_cells(&f, (double[]){-128, 127, 0, 1, 5}, 5);
        fx_free(&f);
        const double y[] = {-2147483648.0, 2147483647.0, -7, 0};
        const double *vy[] = {y};
        run_values(&f, "local.abs", 1, (int[]){I32}, NULL, vy, 4, NULL);
        ck_assert(f.n.info.type == I32 && f.n.info.nodata == -2147483648.0);
        want_cells(&f, (double[]){-2147483648.0, 2147483647.0, 7, 0}, 4);
        fx_free(&f);
        run_values(&f, "local.negate", 1, (int[]){I32}, NULL, vy, 4, NULL);
        want_cells(&f, (double[]){-2147483648.0, -2147483647.0, 7, 0}, 4);
        fx_free(&f);
        const double u[] = {0, 255, 1};
        const double *vu[] = {u};
        run_values(&f, "local.negate", 1, (int[]){U8}, NULL, vu, 3, NULL);
        ck_assert(f.n.info.type == I16 && !f.n.info.has_nodata);
        want_cells(&f, (double[]){0, -255, -1}, 3);
        fx_free(&f);
        const double w[] = {4294967295.0, 0};
        const double *vw[] = {w};
        run_values(&f, "local.negate", 1, (int[]){U32}, NULL, vw, 2, NULL);
        ck_assert(f.n.info.type == F64);
        want_cells(&f, (double[]){-4294967295.0, -0.0}, 2);
        fx_free(&f);
    }
    /* floor, ceil, round: halves, signs of zero, big values, inf, NaN */
    {
        const double x[] = {-0.5, 0.5,      2.5,       -2.5,       0.49999997f, -0.49999997f,
                            1.5,  -1.5,     8388607.5, -8388607.5, 16777216,    3e38,
                            -0.0, INFINITY, NAN,       -1e-40,     0.99999994f};
        const int n = (int)(sizeof x / sizeof x[0]);
        for (int t = 0; t < 2; t++) {
            const double *v[] = {x};
            const int ty[] = {t ? F64 : F32};
            double wf[32], wc[32], wr[32];
            for (int i = 0; i < n; i++) {
                double xi = t ? x[i] : to_f32(x[i]);
                bool nd = !isfinite(xi);
                wf[i] = nd ? NAN : floor(xi);
                wc[i] = nd ? NAN : ceil(xi);
                wr[i] = nd ? NAN : round(xi);
            }
            run_values(&f, "local.floor", 1, ty, NULL, v, n, NULL);
            want_cells(&f, wf, n);
            fx_free(&f);
            run_values(&f, "local.ceil", 1, ty, NULL, v, n, NULL);
            want_cells(&f, wc, n);
            fx_free(&f);
            run_values(&f, "local.round", 1, ty, NULL, v, n, NULL);
            want_cells(&f, wr, n);
            fx_free(&f);
        }
        /* f64 beyond 2^52 and just below it */
        const double big[] = {4503599627370495.5, -4503599627370495.5, 4503599627370497.0,
                              9007199254740993.0, -1e300};
        const double *vb[] = {big};
        run_values(&f, "local.round", 1, (int[]){F64}, NULL, vb, 5, NULL);
        want_cells(&f,
                   (double[]){4503599627370496.0, -4503599627370496.0, 4503599627370497.0,
                              9007199254740992.0, -1e300},
                   5);
        fx_free(&f);
        run_values(&f, "local.floor", 1, (int[]){F64}, NULL, vb, 5, NULL);
        want_cells(&f,
                   (double[]){4503599627370495.0, -4503599627370496.0, 4503599627370497.0,
                              9007199254740992.0, -1e300},
                   5);
        fx_free(&f);
    }
    /* undefined float results */
    {
        const double x[] = {-1, 0, 4, -0.0, INFINITY};
        const double *v[] = {x};
        run_values(&f, "local.sqrt", 1, (int[]){F32}, NULL, v, 5, NULL);
        want_cells(&f, (double[]){NAN, 0, 2, -0.0, NAN}, 5);
        fx_free(&f);
        run_values(&f, "local.log", 1, (int[]){F64}, NULL, v, 5, NULL);
        want_cells(&f, (double[]){NAN, NAN, log(4), NAN, NAN}, 5);
        fx_free(&f);
        const double e[] = {88, 89, -1e30, 0};
        const double *ve[] = {e};
        run_values(&f, "local.exp", 1, (int[]){F32}, NULL, ve, 4, NULL);
        ck_assert(isnan(get(f.out, 1)) && get(f.out, 2) == 0 && get(f.out, 3) == 1);
        ck_assert(fabs(get(f.out, 0) - exp(88)) <= 2 * ulp_f32(exp(88)));
        fx_free(&f);
        /* pow: 0^-1, (-8)^(1/3), overflow, 1^NaN (NaN is nodata), 0^0 */
        const double b[] = {0, -8, 10, 1, 0, 2};
        const double p[] = {-1, 1.0 / 3, 400, NAN, 0, 0.5};
        const double *vp[] = {b, p};
        run_values(&f, "local.pow", 2, (int[]){F64, F64}, NULL, vp, 6, NULL);
        want_cells(&f, (double[]){NAN, NAN, NAN, NAN, 1, sqrt(2)}, 6);
        fx_free(&f);
        /* pow in f32: 10^39 is beyond f32 */
        const double b2[] = {10, 10, 2};
        const double p2[] = {39, 38, -149};
        const double *vp2[] = {b2, p2};
        run_values(&f, "local.pow", 2, (int[]){U8, I16}, NULL, vp2, 3, NULL);
        want_cells(&f, (double[]){NAN, (double)1e38f, 0x1p-149}, 3);
        fx_free(&f);
        /* atan2(0, 0) = 0, signs of zero, quadrants */
        const double y[] = {0, -0.0, 0, -0.0, 1, -1};
        const double x2[] = {0, 0, -1, -1, 0, -1};
        const double *va[] = {y, x2};
        run_values(&f, "local.atan2", 2, (int[]){F64, F64}, NULL, va, 6, NULL);
        want_cells(&f, (double[]){0, -0.0, M_PI, -M_PI, M_PI / 2, atan2(-1, -1)}, 6);
        fx_free(&f);
    }
    /* comparisons are exact: u32 max vs f32 2^32, i32 max vs f32 2^31,
     * 0.1f vs 0.1, u8 vs 0.5 */
    {
        const double a[] = {4294967295.0, 4294967295.0};
        const double b[] = {4294967296.0, 4294967040.0};
        const double *v[] = {a, b};
        run_values(&f, "local.lt", 2, (int[]){U32, F32}, NULL, v, 2, NULL);
        want_cells(&f, (double[]){1, 0}, 2);
        fx_free(&f);
        run_values(&f, "local.eq", 2, (int[]){U32, F32}, NULL, v, 2, NULL);
        want_cells(&f, (double[]){0, 0}, 2);
        fx_free(&f);
        const double c[] = {2147483647.0};
        const double d[] = {2147483648.0};
        const double *v2[] = {c, d};
        run_values(&f, "local.ne", 2, (int[]){I32, F32}, NULL, v2, 1, NULL);
        want_cells(&f, (double[]){1}, 1);
        fx_free(&f);
        const double e[] = {(float)0.1, 0.0, 1.0};
        const double *v3[] = {e};
        run_values(&f, "local.gt", 2, (int[]){F32, -1}, (double[]){0, 0.1}, v3, 3, NULL);
        want_cells(&f, (double[]){1, 0, 1}, 3);
        fx_free(&f);
        run_values(&f, "local.eq", 2, (int[]){F32, -1}, (double[]){0, 0.1}, v3, 3, NULL);
        want_cells(&f, (double[]){0, 0, 0}, 3);
        fx_free(&f);
        const double g[] = {0, 1, 255};
        const double *v4[] = {g};
        run_values(&f, "local.ge", 2, (int[]){U8, -1}, (double[]){0, 0.5}, v4, 3, NULL);
        want_cells(&f, (double[]){0, 1, 1}, 3);
        fx_free(&f);
        const double *v4b[] = {NULL, g};
        run_values(&f, "local.le", 2, (int[]){-1, U8}, (double[]){0.5, 0}, v4b, 3, NULL);
        want_cells(&f, (double[]){0, 1, 1}, 3);
        fx_free(&f);
        /* inf compares; NaN is nodata */
        const double h[] = {INFINITY, -INFINITY, NAN};
        const double *v5[] = {h};
        run_values(&f, "local.gt", 2, (int[]){F64, -1}, (double[]){0, 1e308}, v5, 3, NULL);
        want_cells(&f, (double[]){1, 0, 255}, 3);
        fx_free(&f);
    }
    /* bitwise, written out */
    {
        const double a[] = {0xF0, 0x0F, 200, 0};
        const double b[] = {-1, -128, 127, -56};
        const double *v[] = {a, b};
        run_values(&f, "local.bitand", 2, (int[]){U8, I8}, NULL, v, 4, NULL);
        ck_assert_int_eq(f.n.info.type, I8);
        want_cells(&f, (double[]){(int8_t)0xF0, 0, 200 & 127, 0}, 4);
        fx_free(&f);
        run_values(&f, "local.bitor", 2, (int[]){U8, I8}, NULL, v, 4, NULL);
        want_cells(&f, (double[]){-1, (int8_t)0x8F, (int8_t)(200 | 127), -56}, 4);
        fx_free(&f);
        const double s[] = {-128, -1, 64, 1};
        const double *vs[] = {s};
        run_values(&f, "local.shr", 2, (int[]){I8, -1}, (double[]){0, 3}, vs, 4, NULL);
        want_cells(&f, (double[]){-16, -1, 8, 0}, 4);
        fx_free(&f);
        run_values(&f, "local.shl", 2, (int[]){I8, -1}, (double[]){0, 1}, vs, 4, NULL);
        want_cells(&f, (double[]){0, -2, -128, 2}, 4);
        fx_free(&f);
        run_values(&f, "local.shr", 2, (int[]){I8, -1}, (double[]){0, 31}, vs, 4, NULL);
        want_cells(&f, (double[]){-1, -1, 0, 0}, 4);
        fx_free(&f);
        const double u[] = {0x8000, 0xFFFF, 1};
        const double *vu[] = {u};
        run_values(&f, "local.shr", 2, (int[]){U16, -1}, (double[]){0, 15}, vu, 3, NULL);
        want_cells(&f, (double[]){1, 1, 0}, 3);
        fx_free(&f);
        run_values(&f, "local.bitnot", 1, (int[]){U16}, NULL, vu, 3, NULL);
        want_cells(&f, (double[]){0x7FFF, 0, 0xFFFE}, 3);
        fx_free(&f);
        run_values(&f, "local.bitxor", 2, (int[]){U16, -1}, (double[]){0, -1}, vu, 3, NULL);
        want_cells(&f, (double[]){0x7FFF, 0, 0xFFFE}, 3);
        fx_free(&f);
    }
    /* where: the branch not taken may be nodata or NaN */
    {
        const double c[] = {1, 0, 1, 0, 5};
        const double a[] = {1.5, NAN, NAN, 2, -9999};
        const double b[] = {NAN, 3, 4, -9999, 7};
        const double *v[] = {c, a, b};
        targ spec[3] = {R(U8),
                        {.kind = 'r', .type = F32, .has_nd = true, .nd = -9999},
                        {.kind = 'r', .type = F64, .has_nd = true, .nd = -9999}};
        fx_init(&f, "local.where", 3, spec, NULL, 5, 1, 1);
        for (int a2 = 0; a2 < 3; a2++)
            for (int i = 0; i < 5; i++)
                set(f.tiles[a2], (size_t)i, v[a2][i]);
        ck_assert_int_eq(fx_plan(&f), 0);
        ck_assert(f.n.info.type == F64 && f.n.info.nodata == -9999);
        fx_compute(&f);
        want_cells(&f, (double[]){1.5, 3, -9999, -9999, -9999}, 5);
        fx_free(&f);
    }
    /* logic with numbers: and(x, 0) is 0 but nodata stays nodata */
    {
        const double a[] = {0, 1, 7, 3};
        const double *v[] = {a};
        targ spec[2] = {{.kind = 'r', .type = U8, .has_nd = true, .nd = 7}, N(0)};
        fx_init(&f, "local.and", 2, spec, NULL, 4, 1, 1);
        for (int i = 0; i < 4; i++)
            set(f.tiles[0], (size_t)i, v[0][i]);
        ck_assert_int_eq(fx_plan(&f), 0);
        fx_compute(&f);
        want_cells(&f, (double[]){0, 0, 255, 0}, 4);
        fx_free(&f);
    }
}
END_TEST

/* ---- tiling: results do not depend on how the cells are cut ---- */

START_TEST(test_chunking)
{
    /* one 300 x 7 x 3 tile vs the same cells as 3 tiles of 100 x 7: equal
     * bytes (all kernels are per-cell, but chunk tails use the scalar
     * path) */
    static const char *const ops[] = {"local.sqrt", "local.floor",  "local.gt", "local.where",
                                      "local.min",  "local.bitxor", "local.xor"};
    for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++) {
        rng = 99 + o;
        kind k = kind_of(ops[o]);
        int nargs = k == K_WHERE ? 3 : (k == K_SQRT || k == K_FLOOR) ? 1 : 2;
        targ spec[3] = {{.kind = 'r', .type = k == K_BXOR ? I16 : F32, .inject_nan = k != K_BXOR},
                        {.kind = 'r', .type = k == K_BXOR ? U8 : F32, .has_nd = true, .nd = 1},
                        N(0.5)};
        fixture whole;
        fx_init(&whole, ops[o], nargs, spec, NULL, 300, 7, 3);
        ck_assert_int_eq(fx_plan(&whole), 0);
        fx_compute(&whole);
        for (int part = 0; part < 3; part++) {
            fixture f;
            fx_init(&f, ops[o], nargs, spec, NULL, 100, 7, 3);
            for (int a = 0; a < nargs; a++) {
                if (spec[a].kind != 'r') continue;
                size_t cs = pg_celltype_size(spec[a].type);
                for (int b = 0; b < 3; b++)
                    for (int y = 0; y < 7; y++)
                        memcpy(pg_tile_cell(f.tiles[a], b, y, 0),
                               pg_tile_cell(whole.tiles[a], b, y, part * 100), 100 * cs);
            }
            ck_assert_int_eq(fx_plan(&f), 0);
            fx_compute(&f);
            size_t cs = pg_celltype_size(f.n.info.type);
            for (int b = 0; b < 3; b++)
                for (int y = 0; y < 7; y++)
                    ck_assert_msg(memcmp(pg_tile_cell(f.out, b, y, 0),
                                         pg_tile_cell(whole.out, b, y, part * 100), 100 * cs) == 0,
                                  "%s: part %d band %d row %d differs", ops[o], part, b, y);
            fx_free(&f);
        }
        fx_free(&whole);
    }
}
END_TEST

/* ---- plan errors ---- */

START_TEST(test_plan_errors)
{
    fixture f;
    /* numbers only */
    targ s1[2] = {N(1), N(2)};
    fx_init(&f, "local.min", 2, s1, NULL, 4, 4, 1);
    ck_assert_int_eq(fx_plan(&f), PG_ETYPE);
    ck_assert_int_eq(f.err.code, PG_ETYPE);
    fx_free(&f);

    /* different sizes; band counts; CRS: PG_EGRID naming both args */
    const char *ops[] = {"local.max", "local.pow",   "local.eq",
                         "local.and", "local.bitor", "local.where"};
    for (size_t o = 0; o < sizeof ops / sizeof ops[0]; o++) {
        int nargs = strcmp(ops[o], "local.where") == 0 ? 3 : 2;
        targ s2[3] = {R(U8), R(U8), R(U8)};
        fx_init(&f, ops[o], nargs, s2, NULL, 4, 4, 1);
        f.src[1].info.height = 999;
        ck_assert_msg(fx_plan(&f) == PG_EGRID, "%s", ops[o]);
        ck_assert_ptr_nonnull(strstr(f.err.message, "args[0]"));
        ck_assert_ptr_nonnull(strstr(f.err.message, "args[1]"));
        ck_assert_ptr_nonnull(strstr(f.err.message, ops[o]));
        ck_assert_ptr_null(f.n.state);
        fx_free(&f);
        fx_init(&f, ops[o], nargs, s2, NULL, 4, 4, 1);
        f.src[nargs - 1].info.bands = 3;
        ck_assert_int_eq(fx_plan(&f), PG_EGRID);
        ck_assert_ptr_nonnull(strstr(f.err.message, "bands"));
        fx_free(&f);
        fx_init(&f, ops[o], nargs, s2, NULL, 4, 4, 1);
        f.src[0].info.crs_wkt = strdup("EPSG:4326");
        f.src[1].info.crs_wkt = strdup("EPSG:3857");
        ck_assert_int_eq(fx_plan(&f), PG_EGRID);
        ck_assert_ptr_nonnull(strstr(f.err.message, "CRS"));
        fx_free(&f);
    }

    /* a value node as an arg */
    static const pg_op_def value_op = {.name = "test.value", .result = PG_RESULT_VALUE};
    targ s3[2] = {R(F32), R(F32)};
    fx_init(&f, "local.atan2", 2, s3, NULL, 4, 4, 1);
    f.src[1].op = &value_op;
    ck_assert_int_eq(fx_plan(&f), PG_ETYPE);
    ck_assert_ptr_nonnull(strstr(f.err.message, "args[1]"));
    fx_free(&f);

    /* bitwise: float rasters, fractional numbers, numbers out of range */
    static const struct {
        const char *op;
        int nargs;
        targ a[2];
        int code;
        const char *needle;
    } bad[] = {
        {"local.bitand", 2, {R(U8), R(F32)}, PG_ETYPE, "args[1] is a f32 raster"},
        {"local.bitnot", 1, {R(F64)}, PG_ETYPE, "integer rasters only"},
        {"local.bitor", 2, {R(U8), N(2.5)}, PG_ETYPE, "integer numbers only"},
        {"local.bitxor", 2, {R(U8), N(256)}, PG_EPARAM, "-128..255"},
        {"local.bitand", 2, {R(I16), N(-32769)}, PG_EPARAM, "16-bit"},
        {"local.bitor", 2, {N(4294967296.0), R(U32)}, PG_EPARAM, "args[0]"},
        {"local.shl", 2, {R(U8), N(32)}, PG_EPARAM, "0..31"},
        {"local.shr", 2, {R(U8), N(-1)}, PG_EPARAM, "shift count"},
        {"local.shr", 2, {R(U8), N(1.5)}, PG_EPARAM, "integer 0..31"},
        {"local.shl", 2, {R(U8), R(U8)}, PG_ETYPE, "must be a number"},
        {"local.shl", 2, {N(1), R(U8)}, PG_ETYPE, "args[0] must be a raster"},
        {"local.shr", 2, {R(F32), N(1)}, PG_ETYPE, "f32"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fx_init(&f, bad[i].op, bad[i].nargs, bad[i].a, NULL, 4, 4, 1);
        int rc = fx_plan(&f);
        ck_assert_msg(rc == bad[i].code, "case %zu: rc %d (%s)", i, rc, f.err.message);
        ck_assert_int_eq(f.err.code, bad[i].code);
        ck_assert_msg(strstr(f.err.message, bad[i].needle) != NULL, "case %zu: '%s' lacks '%s'", i,
                      f.err.message, bad[i].needle);
        ck_assert_msg(strstr(f.err.message, bad[i].op) != NULL, "case %zu: '%s'", i, f.err.message);
        ck_assert_ptr_null(f.n.state);
        fx_free(&f);
    }

    /* an unknown type (the planner checks it too) */
    targ s4[1] = {R(F32)};
    fx_init(&f, "local.sqrt", 1, s4, json_pack("{s:s}", "type", "f16"), 4, 4, 1);
    ck_assert_int_eq(fx_plan(&f), PG_EPARAM);
    ck_assert_ptr_nonnull(strstr(f.err.message, "'type'"));
    fx_free(&f);
}
END_TEST

/* ---- the table, through the registry and the planner ---- */

static json_t *graph_of(const char *nodes_json)
{
    json_error_t je;
    json_t *g = json_loads(nodes_json, 0, &je);
    ck_assert_msg(g != NULL, "bad test JSON: %s", je.text);
    return g;
}

START_TEST(test_registry)
{
    int count = 0;
    for (const pg_op_def *d = pg_ops_local_math; d->name != NULL; d++, count++) {
        ck_assert_ptr_eq(pg_op_find(d->name), d);
        ck_assert_str_eq(d->family, "local");
        ck_assert_msg(d->doc != NULL && strlen(d->doc) > 80, "%s: doc", d->name);
        /* every doc states the output type and nodata */
        ck_assert_msg(strstr(d->doc, "u8") || strstr(d->doc, "f32") || strstr(d->doc, "type"),
                      "%s: doc names no type", d->name);
        ck_assert_msg(strstr(d->doc, "nodata"), "%s: doc says nothing of nodata", d->name);
        json_error_t je;
        json_t *ex = json_loads(d->example, 0, &je);
        ck_assert_msg(ex != NULL, "%s: example is not JSON: %s", d->name, je.text);
        ck_assert_str_eq(json_string_value(json_object_get(ex, "op")), d->name);
        json_decref(ex);
        for (const pg_param_def *p = d->params; p->name != NULL; p++)
            ck_assert_msg(p->doc != NULL && p->doc[0], "%s.%s: doc", d->name, p->name);
        ck_assert(d->plan && d->compute && d->free_state && d->result == PG_RESULT_RASTER);
        json_t *desc = pg_op_describe(d);
        ck_assert_ptr_nonnull(desc);
        json_decref(desc);
    }
    ck_assert_int_eq(count, K_COUNT);

    /* through the planner: a chain over raster.constant, and its errors */
    pg_plan *plan = NULL;
    pg_error err = {0};
    json_t *g = graph_of(
        "{\"nodes\": {\"a\": {\"op\": \"raster.constant\", \"width\": 64, \"height\": 32, "
        "\"value\": 2.25, \"type\": \"f32\"},"
        "\"w\": {\"op\": \"local.where\", \"args\": [{\"op\": \"local.gt\", \"args\": [{\"ref\": "
        "\"a\"}, 0.5]}, {\"op\": \"local.sqrt\", \"args\": [{\"ref\": \"a\"}]}, 0], \"type\": "
        "\"f64\"}}, \"result\": \"w\"}");
    ck_assert_msg(pg_plan_build(g, &test_env, &plan, &err) == 0, "%s", err.message);
    const pg_node *w = &plan->nodes[plan->results[0]];
    ck_assert_int_eq(w->info.type, F64);
    ck_assert_int_eq(w->info.width, 64);
    pg_plan_destroy(&plan);
    json_decref(g);

    static const struct {
        const char *graph;
        int code;
    } bad[] = {
        {"{\"nodes\": {\"a\": {\"op\": \"raster.constant\", \"width\": 4, \"height\": 4, "
         "\"value\": 1}, \"s\": {\"op\": \"local.sqrt\", \"args\": [{\"ref\": \"a\"}, 2]}}}",
         PG_EARITY},
        {"{\"nodes\": {\"s\": {\"op\": \"local.sqrt\", \"args\": [2]}}}", PG_ETYPE},
        {"{\"nodes\": {\"a\": {\"op\": \"raster.constant\", \"width\": 4, \"height\": 4, "
         "\"value\": 1}, \"s\": {\"op\": \"local.gt\", \"args\": [{\"ref\": \"a\"}, 1], \"type\": "
         "\"u8\"}}}",
         PG_EUNKNOWNPARAM},
        {"{\"nodes\": {\"a\": {\"op\": \"raster.constant\", \"width\": 4, \"height\": 4, "
         "\"value\": 1}, \"s\": {\"op\": \"local.where\", \"args\": [{\"ref\": \"a\"}, 1]}}}",
         PG_EARITY},
        {"{\"nodes\": {\"a\": {\"op\": \"raster.constant\", \"width\": 4, \"height\": 4, "
         "\"value\": 1}, \"s\": {\"op\": \"local.min\", \"args\": [{\"ref\": \"a\"}, 1], \"type\": "
         "\"q7\"}}}",
         PG_EPARAM},
        {"{\"nodes\": {\"a\": {\"op\": \"raster.constant\", \"width\": 4, \"height\": 4, "
         "\"value\": 1, \"type\": \"f32\"}, \"s\": {\"op\": \"local.bitand\", \"args\": [{\"ref\": "
         "\"a\"}, 1]}}}",
         PG_ETYPE},
        {"{\"nodes\": {\"a\": {\"op\": \"raster.constant\", \"width\": 4, \"height\": 4, "
         "\"value\": 1}, \"b\": {\"op\": \"raster.constant\", \"width\": 5, \"height\": 4, "
         "\"value\": 1}, \"s\": {\"op\": \"local.lt\", \"args\": [{\"ref\": \"a\"}, {\"ref\": "
         "\"b\"}]}}, \"result\": \"s\"}",
         PG_EGRID},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        g = graph_of(bad[i].graph);
        int rc = pg_plan_build(g, &test_env, &plan, &err);
        ck_assert_msg(rc == bad[i].code, "case %zu: rc %d (%s)", i, rc, err.message);
        ck_assert_str_eq(err.node, "s");
        json_decref(g);
    }
}
END_TEST

/* ---- speed: printed, not asserted ---- */

/* The best of 30 batches of 10 computes, in ns per tile of thread CPU time
 * (the machine is shared: wall time would count other processes). Unoptimised
 * and sanitizer builds only run it once: their times mean nothing. */
#if defined(__OPTIMIZE__) && !defined(__SANITIZE_ADDRESS__)
#define SPEED_BATCHES 30
#else
#define SPEED_BATCHES 1
#endif

static double time_compute(fixture *f)
{
    double best = INFINITY;
    for (int b = 0; b < SPEED_BATCHES; b++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t0);
        for (int i = 0; i < (SPEED_BATCHES > 1 ? 10 : 1); i++)
            f->n.op->compute(&f->n, f->out, f->tiles, &f->err);
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t1);
        double ns = ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) /
                    (SPEED_BATCHES > 1 ? 10 : 1);
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
        targ a[3];
    } cases[] = {
        {"sqrt f32 -> f32", "local.sqrt", 1, {R(F32)}},
        {"sqrt f32 (nodata -9999)",
         "local.sqrt",
         1,
         {{.kind = 'r', .type = F32, .has_nd = true, .nd = -9999}}},
        {"gt f32, 0.5 -> u8", "local.gt", 2, {R(F32), N(0.5)}},
        {"gt f32 (nodata -9999), 0.5",
         "local.gt",
         2,
         {{.kind = 'r', .type = F32, .has_nd = true, .nd = -9999}, N(0.5)}},
        {"gt f32, f32 -> u8", "local.gt", 2, {R(F32), R(F32)}},
        {"where u8, f32, 0 -> f32", "local.where", 3, {R(U8), R(F32), N(0)}},
        {"where u8, f32, f32 -> f32", "local.where", 3, {R(U8), R(F32), R(F32)}},
        {"where u8 (nodata 255), f32, 0",
         "local.where",
         3,
         {{.kind = 'r', .type = U8, .has_nd = true, .nd = 255}, R(F32), N(0)}},
        {"where u8, u8, 0 -> u8", "local.where", 3, {R(U8), R(U8), N(0)}},
        {"sqrt u16 -> f32", "local.sqrt", 1, {R(U16)}},
        {"max f32 (nodata), f32",
         "local.max",
         2,
         {{.kind = 'r', .type = F32, .has_nd = true, .nd = -9999}, R(F32)}},
        {"min f32, f32 -> f32", "local.min", 2, {R(F32), R(F32)}},
        {"mean 3 x f32 -> f32", "local.mean", 3, {R(F32), R(F32), R(F32)}},
        {"floor f32 -> f32", "local.floor", 1, {R(F32)}},
        {"round f64 -> f64", "local.round", 1, {R(F64)}},
        {"abs i16 -> i16", "local.abs", 1, {R(I16)}},
        {"log f32 -> f32", "local.log", 1, {R(F32)}},
        {"sin f32 -> f32", "local.sin", 1, {R(F32)}},
        {"pow f32, 2 -> f32", "local.pow", 2, {R(F32), N(2)}},
        {"and u8, u8 -> u8", "local.and", 2, {R(U8), R(U8)}},
        {"bitand u16, 255 -> u16", "local.bitand", 2, {R(U16), N(255)}},
        {"defined f32 -> u8", "local.defined", 1, {R(F32)}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        fixture f;
        fx_init(&f, cases[c].op, cases[c].nargs, cases[c].a, NULL, 256, 256, 1);
        /* typical data rather than the edge values above: floats uniform
         * in [-10, 90) (sqrt and log see 10% negatives), u8 0/1, u16 any,
         * 1/16 of the cells nodata where there is one */
        for (int a = 0; a < cases[c].nargs; a++) {
            const targ *t = &cases[c].a[a];
            if (t->kind != 'r') continue;
            for (size_t i = 0; i < 65536; i++) {
                double v = isf(t->type)    ? (double)(float)(rnd_unit() * 100 - 10)
                           : t->type == U8 ? (double)(rnd() % 2)
                                           : (double)(rnd() % 65536) - (t->type == I16 ? 32768 : 0);
                if (t->has_nd && rnd() % 16 == 0) v = t->nd;
                set(f.tiles[a], i, v);
            }
        }
        ck_assert_int_eq(fx_plan(&f), 0);
        fx_compute(&f);
        double ns = time_compute(&f);
        fprintf(stderr, "%-30s 256x256: %7.1f us per tile (%.2f ns per cell)\n", cases[c].what,
                ns / 1e3, ns / 65536.0);
        fx_free(&f);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("local_math");
    TCase *tc = tcase_create("math");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_pairs, 0, 18);
    tcase_add_loop_test(tc, test_cases, 0, (int)(sizeof mcases / sizeof mcases[0]));
    tcase_add_loop_test(tc, test_nodata, 0, (int)(sizeof ndcases / sizeof ndcases[0]));
    tcase_add_loop_test(tc, test_forced, 0, (int)(sizeof fcases / sizeof fcases[0]));
    tcase_add_test(tc, test_values);
    tcase_add_test(tc, test_chunking);
    tcase_add_test(tc, test_plan_errors);
    tcase_add_test(tc, test_registry);
    tcase_add_test(tc, test_speed);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
