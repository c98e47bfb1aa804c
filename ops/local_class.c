/* Local (cell-by-cell) conversion and classification: local.convert,
 * local.clamp, local.mask, local.inverse_mask, local.reclassify,
 * local.normalized_difference, local.majority, local.minority,
 * local.variety, local.weighted_overlay.
 *
 * COMMON RULES. Every arg is a raster (numbers are refused by the planner);
 * all of them must share arg 0's grid (size, geotransform, CRS) and band
 * count, else PG_EGRID naming both args. The output copies arg 0's grid,
 * CRS and block hint. An input cell is nodata when it equals its raster's
 * nodata value compared in the raster's own type (for an f32 raster the
 * nodata rounded to f32, as GDAL does; a nodata value the type cannot hold
 * matches nothing), or when it is NaN in a float raster (whether or not
 * the raster declares a nodata value). A valid result that happens to equal
 * the output's nodata value reads as nodata: that is unavoidable with
 * in-band nodata, and the rules below choose nodata values that cannot
 * collide wherever they can.
 *
 * TYPE AND NODATA RULES, per op.
 *  - convert(x, type T, clamp = true): output type T. Floats become
 *    integers by rounding to nearest, halves away from zero; values outside
 *    T's range are clamped to it (with "clamp": false they become nodata
 *    instead; for integers the test is on the rounded value, so 255.4 is a
 *    valid u8 255 and 255.5 is out of range). +-inf are out of range of
 *    every integer type. Float to f32: rounded to nearest; finite values
 *    beyond +-FLT_MAX are out of range (clamped to +-FLT_MAX); +-inf stay
 *    +-inf. u32/i32 to f32 rounds to nearest. NaN and input nodata cells
 *    become nodata. The output has a nodata value when the input has one,
 *    or is a float type, or "clamp" is false and T cannot hold every value
 *    of the input type; it is the input's nodata if T holds it exactly,
 *    else T's default (NaN for floats, the minimum for signed and the
 *    maximum for unsigned integers; so clamping into u8 with nodata 255
 *    makes 255 nodata: choose "clamp": false or a wider type if it matters).
 *  - clamp(x, min, max): output type and nodata are x's. Valid cells are
 *    clamped into [min, max] (+-inf included); nodata and NaN cells are
 *    kept as they are. The bounds are moved onto x's type so that every
 *    result is a value of the type inside [min, max]: for integer types
 *    min is rounded up and max down, for f32 to the nearest f32 inside the
 *    interval; a bound beyond the type's range does not bind. PG_EPARAM if
 *    min > max, or if no value of x's type lies in [min, max].
 *  - mask(x, m): x where m is valid (not nodata, not NaN) and non-zero,
 *    nodata elsewhere; inverse_mask(x, m): x where m is zero or nodata or
 *    NaN, nodata elsewhere. Output type is x's; the output always has a
 *    nodata value: x's if x's type holds it, else the type's default. x's
 *    own nodata (and NaN) cells are nodata in the output.
 *  - reclassify(x, classes, default, type): each class [from, to, value]
 *    covers from <= v < to; "from": null means no lower bound and "to":
 *    null no upper bound (-inf and +inf cells included). Classes must not
 *    overlap and need from < to (PG_EPARAM naming the classes' indices);
 *    at most 65536 classes. A cell in no class gets "default" (null:
 *    nodata); a class whose value is null makes its cells nodata; input
 *    nodata and NaN cells are always nodata. Output type: "type" if given
 *    (every value and the default must fit it: integers in range for
 *    integer types, |v| <= FLT_MAX for f32, else PG_EPARAM); otherwise,
 *    when every value and the default are integers, the first of u8, i8,
 *    u16, i16, u32, i32 that holds them all and still has a nodata value
 *    free (when one is needed), else f64; when some value has a fraction,
 *    f32 (values rounded to nearest f32) if every |value| <= FLT_MAX, else
 *    f64. The output has a nodata value when some cell can be nodata: the
 *    input has nodata or is float, a class value is null, or some value of
 *    the input type falls in no class while "default" is null. The nodata
 *    value is the input's if the output type holds it and no class value or
 *    default equals it, else the type's default if no value equals it
 *    (else the next type, or PG_EPARAM for an explicit "type").
 *  - normalized_difference(a, b) = (a - b) / (a + b): f64 if an input is
 *    f64, u32 or i32, else f32. Nodata (always NaN, which no result can
 *    collide with) where an input is nodata or NaN, a + b == 0, or the
 *    result is not finite (or exceeds f32's range for an f32 output).
 *    Computed in f32 when both inputs are 8/16-bit integers (exact
 *    operands, one rounding of the quotient: equal to the double quotient
 *    rounded to f32), else in f64 and rounded once to the output type.
 *  - majority / minority(r1, ..., rn), n >= 2: per cell the most / least
 *    frequent value among the args' valid cells (nodata and NaN args are
 *    ignored); ties go to the smallest value; a cell where every arg is
 *    nodata is nodata. Values are compared exactly, as numbers (so -0 ==
 *    +0). Output type: the args' type if they all have one; else f64 if
 *    one is f64; else with an f32 arg: f32 if every other arg is 8/16-bit
 *    or f32, else f64; all integers: the first of u8, i8, u16, i16, u32,
 *    i32 holding every arg type's range, else f64. Nodata value (when any
 *    arg has nodata or is float): arg 0's if the output type holds it,
 *    else the type's default.
 *  - variety(r1, ..., rn), n >= 2: the number of distinct valid values per
 *    cell (nodata and NaN args ignored). u8 if n <= 255, u16 if n <= 65535,
 *    else u32. A cell where every arg is nodata has 0 distinct values,
 *    and 0 is the nodata value (declared when any arg has nodata or is
 *    float): no valid count can collide with it.
 *  - weighted_overlay(r1, ..., rn, weights, normalize = true): sum of
 *    w_i * r_i in arg order, in f64, then divided by the sum of the weights
 *    when "normalize"; output f32 if every arg is 8/16-bit or f32, else
 *    f64 (one final rounding). Nodata (always NaN) where any input is
 *    nodata or NaN or the result is not finite (or exceeds f32's range).
 *    "weights" must have one number per arg; with "normalize" their sum
 *    must not be 0 (PG_EPARAM).
 *
 * COMPUTE. Tiles are processed as flat arrays (all args share the window
 * and bands) in chunks that stay in L1/L2, with typed loops written as
 * fixed-size inner blocks (PG__LOOP) that GCC vectorises. Inputs that are
 * combined arithmetically are loaded into an f32 or f64 chunk with their
 * nodata cells turned into NaN, so that nodata propagates through the
 * arithmetic and comparisons for free. reclassify uses a lookup table over
 * every input value for 8/16-bit inputs, a vectorised count of boundaries
 * below each cell for up to 32 boundaries, and a branchless binary search
 * over the sorted boundaries beyond that. majority/minority/variety count
 * equal pairs across the args, vectorised over cells: with each cell's
 * values and counts in registers for up to 8 args (kernels unrolled for
 * each count), with count arrays for up to 16, and by sorting each cell's
 * values beyond. Float to integer conversion rounds with an exact
 * vectorisable formula for f32 sources (see PG__CVFN_INT).
 */
#include "graph.h"
#include "ops/registry.h"
#include "raster.h"
#include "util.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Cells per chunk: a few f64 buffers of this size stay in L1/L2. */
#define PG__CHUNK 1024
/* Inner block of the kernels: a compile-time trip count, so that GCC
 * vectorises even under its cheap cost model. */
#define PG__VB 16
/* Most classes for local.reclassify. */
#define PG__MAX_CLASSES 65536
/* reclassify: up to this many boundaries, count them per cell (vectorised);
 * beyond, binary search. */
#define PG__LINEAR_MAX 32
/* majority & co: up to this many args, count equal pairs (vectorised, n^2
 * compares per cell); beyond, sort each cell's values. */
#define PG__PAIR_MAX 16
/* Bytes of stack scratch for the n-ary ops (larger needs are malloc'd once
 * per tile). Worker threads have 8 MiB stacks. */
#define PG__SCRATCH 65536

/* Runs the statement list for every i in [0, n): fixed blocks of PG__VB,
 * then the scalar rest. */
#define PG__LOOP(n, ...)                                                                           \
    do {                                                                                           \
        size_t i_ = 0;                                                                             \
        for (; i_ + PG__VB <= (n); i_ += PG__VB) {                                                 \
            for (size_t j_ = 0; j_ < PG__VB; j_++) {                                               \
                const size_t i = i_ + j_;                                                          \
                __VA_ARGS__                                                                        \
            }                                                                                      \
        }                                                                                          \
        for (size_t i = i_; i < (n); i++) {                                                        \
            __VA_ARGS__                                                                            \
        }                                                                                          \
    } while (0)

/* ======================================================================== */
/* Shared plan helpers                                                       */

static void pg__grid_diff(const pg_raster_info *a, const pg_raster_info *b, char *buf, size_t len)
{
    if (a->width != b->width || a->height != b->height)
        snprintf(buf, len, "size %lldx%lld vs %lldx%lld", (long long)a->width, (long long)a->height,
                 (long long)b->width, (long long)b->height);
    else if (a->bands != b->bands)
        snprintf(buf, len, "%d vs %d bands", a->bands, b->bands);
    else if (a->has_geotransform != b->has_geotransform)
        snprintf(buf, len, "only one has a geotransform");
    else if (a->has_geotransform &&
             memcmp(a->geotransform, b->geotransform, sizeof a->geotransform))
        snprintf(buf, len, "different geotransforms");
    else
        snprintf(buf, len, "different CRS");
}

/* Every arg is a raster on arg 0's grid with its band count. */
static int pg__check_rasters(const pg_node *n, const char *name, pg_error *err)
{
    if (n->nargs < 1 || n->args == NULL)
        return pg_error_set(err, PG_EINTERNAL, "%s: no args", name);
    for (int a = 0; a < n->nargs; a++) {
        const pg_node *r = n->args[a].ref;
        if (r == NULL || (r->op != NULL && r->op->result != PG_RESULT_RASTER))
            return pg_error_set(err, PG_ETYPE, "%s: args[%d] is not a raster", name, a);
        if (a == 0) continue;
        const pg_raster_info *fi = &n->args[0].ref->info;
        if (fi->bands != r->info.bands || !pg_raster_same_grid(fi, &r->info)) {
            char why[96];
            pg__grid_diff(fi, &r->info, why, sizeof why);
            return pg_error_set(err, PG_EGRID,
                                "%s: args[0] and args[%d] are not on the same grid (%s)", name, a,
                                why);
        }
    }
    return 0;
}

/* How an arg's nodata cells are recognised (besides NaN): its nodata value
 * as stored in its type, when the type can hold it. */
typedef struct pg__ndv {
    bool mask;
    double value;
} pg__ndv;

static pg__ndv pg__arg_ndv(const pg_raster_info *ri)
{
    pg__ndv r = {false, 0.0};
    if (!ri->has_nodata || isnan(ri->nodata)) return r; /* NaN is caught as NaN */
    double v = ri->nodata;
    if (ri->type == PG_F32) {
        /* GDAL's convention: an f32 band's nodata is the double rounded to
         * f32. */
        if (isinf(v) || fabs(v) <= FLT_MAX) {
            r.mask = true;
            r.value = (double)(float)v;
        }
    } else if (pg_celltype_holds(ri->type, v)) {
        r.mask = true;
        r.value = v;
    }
    return r;
}

/* Sets n->info to arg 0's with type T and the given nodata. */
static int pg__set_info(pg_node *n, pg_celltype t, bool has_nd, double nd, pg_error *err)
{
    pg_raster_info_clear(&n->info);
    if (pg_raster_info_copy(&n->info, &n->args[0].ref->info) != 0)
        return pg_error_set(err, PG_ENOMEM, "out of memory");
    n->info.type = t;
    n->info.has_nodata = has_nd;
    n->info.nodata = has_nd ? nd : 0.0;
    return 0;
}

static bool pg__small_int(pg_celltype t)
{
    return t == PG_U8 || t == PG_I8 || t == PG_U16 || t == PG_I16;
}

static size_t pg__tile_cells(const pg_tile *t)
{
    return (size_t)t->bands * (size_t)t->win.w * (size_t)t->win.h;
}

/* OUT and every in[a] have the expected types and the same number of
 * cells (a broken runtime must not make a kernel read out of bounds). */
static int pg__check_tiles(const pg_node *n, const char *name, const pg_tile *out,
                           pg_tile *const *in, pg_error *err)
{
    if (out == NULL || out->type != n->info.type || out->win.w < 0 || out->win.h < 0)
        return pg_error_set(err, PG_EINTERNAL, "%s: output tile of the wrong type", name);
    const size_t ncell = pg__tile_cells(out);
    for (int a = 0; a < n->nargs; a++) {
        const pg_tile *t = in[a];
        if (t == NULL || t->type != n->args[a].ref->info.type || pg__tile_cells(t) != ncell)
            return pg_error_set(err, PG_EINTERNAL, "%s: args[%d]'s tile does not match the output",
                                name, a);
    }
    return 0;
}

/* ======================================================================== */
/* Loads: a chunk of any type into f32 or f64, nodata cells as NaN           */

#define PG__LOADFN(S, ST, W, WT)                                                                   \
    static void pg__load_##S##_##W(WT *restrict d, const void *restrict s_, const pg__ndv *nv,     \
                                   size_t n)                                                       \
    {                                                                                              \
        const ST *restrict s = s_;                                                                 \
        if (nv->mask) {                                                                            \
            const ST m = (ST)nv->value;                                                            \
            PG__LOOP(n, d[i] = s[i] == m ? (WT)NAN : (WT)s[i];);                                   \
        } else {                                                                                   \
            PG__LOOP(n, d[i] = (WT)s[i];);                                                         \
        }                                                                                          \
    }

PG__LOADFN(u8, uint8_t, f, float)
PG__LOADFN(i8, int8_t, f, float)
PG__LOADFN(u16, uint16_t, f, float)
PG__LOADFN(i16, int16_t, f, float)
PG__LOADFN(f32, float, f, float)
PG__LOADFN(u8, uint8_t, d, double)
PG__LOADFN(i8, int8_t, d, double)
PG__LOADFN(u16, uint16_t, d, double)
PG__LOADFN(i16, int16_t, d, double)
PG__LOADFN(u32, uint32_t, d, double)
PG__LOADFN(i32, int32_t, d, double)
PG__LOADFN(f32, float, d, double)
PG__LOADFN(f64, double, d, double)

typedef void (*pg__loadf_fn)(float *restrict, const void *restrict, const pg__ndv *, size_t);
typedef void (*pg__loadd_fn)(double *restrict, const void *restrict, const pg__ndv *, size_t);
/* Into f32 only from types whose every value f32 holds exactly. */
static const pg__loadf_fn pg__loadf[PG_CELLTYPE_COUNT] = {
    [PG_U8] = pg__load_u8_f,   [PG_I8] = pg__load_i8_f,   [PG_U16] = pg__load_u16_f,
    [PG_I16] = pg__load_i16_f, [PG_F32] = pg__load_f32_f,
};
static const pg__loadd_fn pg__loadd[PG_CELLTYPE_COUNT] = {
    pg__load_u8_d,  pg__load_i8_d,  pg__load_u16_d, pg__load_i16_d,
    pg__load_u32_d, pg__load_i32_d, pg__load_f32_d, pg__load_f64_d,
};

/* ---- stores: f32/f64 results into the output type, NaN as nodata ----
 * Only values the output type holds reach an integer store (the n-ary ops
 * pick one of their inputs' values); NaN is replaced before the cast, which
 * would be undefined. */
#define PG__STOREFN(W, WT, O, OT)                                                                  \
    static void pg__store_##W##_##O(void *restrict out_, const WT *restrict v, double nd_,         \
                                    size_t n)                                                      \
    {                                                                                              \
        OT *restrict out = out_;                                                                   \
        const OT nd = (OT)nd_;                                                                     \
        PG__LOOP(n, const WT x = v[i]; const bool ok = x == x;                                     \
                 out[i] = ok ? (OT)(ok ? x : (WT)0) : nd;);                                        \
    }

PG__STOREFN(f, float, u8, uint8_t)
PG__STOREFN(f, float, i8, int8_t)
PG__STOREFN(f, float, u16, uint16_t)
PG__STOREFN(f, float, i16, int16_t)
PG__STOREFN(f, float, u32, uint32_t)
PG__STOREFN(f, float, i32, int32_t)
PG__STOREFN(f, float, f32, float)
PG__STOREFN(f, float, f64, double)
PG__STOREFN(d, double, u8, uint8_t)
PG__STOREFN(d, double, i8, int8_t)
PG__STOREFN(d, double, u16, uint16_t)
PG__STOREFN(d, double, i16, int16_t)
PG__STOREFN(d, double, u32, uint32_t)
PG__STOREFN(d, double, i32, int32_t)
PG__STOREFN(d, double, f64, double)

/* f64 -> f32: values beyond f32's range (and inf, NaN) become nodata. */
static void pg__store_d_f32(void *restrict out_, const double *restrict v, double nd_, size_t n)
{
    float *restrict out = out_;
    const float nd = (float)nd_;
    PG__LOOP(n, const double x = v[i]; const bool ok = x >= -FLT_MAX && x <= FLT_MAX;
             out[i] = ok ? (float)(ok ? x : 0.0) : nd;);
}

typedef void (*pg__storef_fn)(void *restrict, const float *restrict, double, size_t);
typedef void (*pg__stored_fn)(void *restrict, const double *restrict, double, size_t);
static const pg__storef_fn pg__storef[PG_CELLTYPE_COUNT] = {
    pg__store_f_u8,  pg__store_f_i8,  pg__store_f_u16, pg__store_f_i16,
    pg__store_f_u32, pg__store_f_i32, pg__store_f_f32, pg__store_f_f64,
};
static const pg__stored_fn pg__stored[PG_CELLTYPE_COUNT] = {
    pg__store_d_u8,  pg__store_d_i8,  pg__store_d_u16, pg__store_d_i16,
    pg__store_d_u32, pg__store_d_i32, pg__store_d_f32, pg__store_d_f64,
};

/* ======================================================================== */
/* local.convert                                                             */

typedef struct pg__cvt {
    pg_celltype in, out;
    pg__ndv ndv;
    bool clamp;
    double nd; /* output nodata (0 when the output has none) */
} pg__cvt;

/* Round half away from zero of a finite V with |V| < 2^63: the truncation
 * is exact, and so is V - trunc(V). */
static inline double pg__round_half_away(double v)
{
    const double t = (double)(int64_t)v;
    const double f = v - t;
    return t + (double)(f >= 0.5) - (double)(f <= -0.5);
}

/* DK: destination kind, 1 f32, 2 f64 (integer destinations: below). For
 * f64 -> f32, finite values beyond f32's range are out of range. */
#define PG__CVFN(S, ST, D, DT, DK)                                                                 \
    static void pg__cv_##S##_##D(void *restrict out_, const void *restrict in_, const pg__cvt *p,  \
                                 size_t n)                                                         \
    {                                                                                              \
        DT *restrict out = out_;                                                                   \
        const ST *restrict in = in_;                                                               \
        const bool mask = p->ndv.mask, noclamp = !p->clamp;                                        \
        const ST mv = mask ? (ST)p->ndv.value : (ST)0;                                             \
        const DT nd = (DT)p->nd;                                                                   \
        const double lo = -(double)FLT_MAX, hi = (double)FLT_MAX;                                  \
        PG__LOOP(                                                                                  \
            n, const ST s = in[i]; double v = (double)s; bool bad = (mask & (s == mv)) | (v != v); \
            if ((DK) == 1 && sizeof(ST) == 8) {                                                    \
                /* finite beyond f32: clamped (nodata anyway without "clamp") */                   \
                const bool big = ((v > hi) & (v < INFINITY)) | ((v < lo) & (v > -INFINITY));       \
                bad |= noclamp & big;                                                              \
                v = big ? (v > 0 ? hi : lo) : v;                                                   \
            } const DT r = (DT)v;                                                                  \
            out[i] = bad ? nd : r;);                                                               \
    }

/* Integer destinations. V is clamped into [lo, hi] (NaN-safe: NaN goes to
 * LO, and is nodata anyway) before rounding, so every cast is defined; the
 * out-of-range test of "clamp": false is on the rounded value: V rounds
 * into [lo, hi] iff lo - 0.5 < V < hi + 0.5. RK, the rounding: 0 none
 * (integer source); 1 an f32 source: trunc(v + copysign(0.5, v)), exact
 * because v + 0.5 is exact in double for every f32 v that is not tiny (and
 * a tiny v rounds to 0 either way); 2 an f64 source: trunc, then the
 * fraction decides (exact for every double). TT: the truncation type (u32
 * needs int64). The result is blended with integer masks: a select on a
 * condition makes GCC sink the conversion into a branch, which it then
 * cannot vectorise (the conversion may trap). */
#define PG__CVFN_INT(S, ST, RK, D, DT, TT)                                                         \
    static void pg__cv_##S##_##D(void *restrict out_, const void *restrict in_, const pg__cvt *p,  \
                                 size_t n)                                                         \
    {                                                                                              \
        DT *restrict out = out_;                                                                   \
        const ST *restrict in = in_;                                                               \
        const bool mask = p->ndv.mask, noclamp = !p->clamp;                                        \
        const ST mv = mask ? (ST)p->ndv.value : (ST)0;                                             \
        const DT nd = (DT)p->nd;                                                                   \
        const double lo = pg_celltype_min(p->out), hi = pg_celltype_max(p->out);                   \
        PG__LOOP(n, const ST s = in[i]; double v = (double)s;                                      \
                 const bool bad = (mask & (s == mv)) | (v != v) |                                  \
                                  (noclamp & !((v > lo - 0.5) & (v < hi + 0.5)));                  \
                 v = v >= lo ? v : lo; v = v <= hi ? v : hi; TT t;                                 \
                 if ((RK) == 1) t = (TT)(v + copysign(0.5, v));                                    \
                 else if ((RK) == 2) t = (TT)pg__round_half_away(v); else t = (TT)v;               \
                 const DT m = (DT)((DT)0 - (DT)bad); out[i] = (DT)(((DT)t & (DT)~m) | (nd & m));); \
    }

#define PG__CVROW_FNS(S, ST, RK)                                                                   \
    PG__CVFN_INT(S, ST, RK, u8, uint8_t, int32_t)                                                  \
    PG__CVFN_INT(S, ST, RK, i8, int8_t, int32_t)                                                   \
    PG__CVFN_INT(S, ST, RK, u16, uint16_t, int32_t)                                                \
    PG__CVFN_INT(S, ST, RK, i16, int16_t, int32_t)                                                 \
    PG__CVFN_INT(S, ST, RK, u32, uint32_t, int64_t)                                                \
    PG__CVFN_INT(S, ST, RK, i32, int32_t, int32_t)                                                 \
    PG__CVFN(S, ST, f32, float, 1)                                                                 \
    PG__CVFN(S, ST, f64, double, 2)

PG__CVROW_FNS(u8, uint8_t, 0)
PG__CVROW_FNS(i8, int8_t, 0)
PG__CVROW_FNS(u16, uint16_t, 0)
PG__CVROW_FNS(i16, int16_t, 0)
PG__CVROW_FNS(u32, uint32_t, 0)
PG__CVROW_FNS(i32, int32_t, 0)
PG__CVROW_FNS(f32, float, 1)
PG__CVROW_FNS(f64, double, 2)

typedef void (*pg__cv_fn)(void *restrict, const void *restrict, const pg__cvt *, size_t);
#define PG__CVROW(S)                                                                               \
    {                                                                                              \
        pg__cv_##S##_u8, pg__cv_##S##_i8, pg__cv_##S##_u16, pg__cv_##S##_i16, pg__cv_##S##_u32,    \
            pg__cv_##S##_i32, pg__cv_##S##_f32, pg__cv_##S##_f64                                   \
    }
static const pg__cv_fn pg__cvfns[PG_CELLTYPE_COUNT][PG_CELLTYPE_COUNT] = {
    PG__CVROW(u8),  PG__CVROW(i8),  PG__CVROW(u16), PG__CVROW(i16),
    PG__CVROW(u32), PG__CVROW(i32), PG__CVROW(f32), PG__CVROW(f64),
};

static void pg__free_state(pg_node *n)
{
    free(n->state);
    n->state = NULL;
}

/* True if every value of type S is a value of type T. */
static bool pg__type_within(pg_celltype s, pg_celltype t)
{
    if (t == PG_F64) return true;
    if (t == PG_F32) return s == PG_F32 || pg__small_int(s);
    if (pg_celltype_is_float(s)) return false;
    return pg_celltype_min(s) >= pg_celltype_min(t) && pg_celltype_max(s) <= pg_celltype_max(t);
}

static int pg__convert_plan(pg_node *n, const pg_plan_env *env, pg_error *err)
{
    (void)env;
    const char *name = "local.convert";
    int rc = pg__check_rasters(n, name, err);
    if (rc) return rc;
    const pg_raster_info *xi = &n->args[0].ref->info;
    const char *tname = pg_param_str(n, "type");
    pg_celltype t;
    if (tname == NULL || pg_celltype_parse(tname, &t) != 0)
        return pg_error_set(err, PG_EPARAM,
                            "param 'type' must be a cell type: one of u8, i8, u16, i16, u32, i32, "
                            "f32, f64");
    bool clamp = pg_param_has(n, "clamp") ? pg_param_bool(n, "clamp") != 0 : true;

    pg__cvt *p = calloc(1, sizeof *p);
    if (p == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    p->in = xi->type;
    p->out = t;
    p->ndv = pg__arg_ndv(xi);
    p->clamp = clamp;
    bool has_nd = xi->has_nodata || pg_celltype_is_float(xi->type) ||
                  (!clamp && !pg__type_within(xi->type, t));
    if (has_nd)
        p->nd = xi->has_nodata && pg_celltype_holds(t, xi->nodata) ? xi->nodata
                                                                   : pg_celltype_default_nodata(t);
    rc = pg__set_info(n, t, has_nd, p->nd, err);
    if (rc) {
        free(p);
        return rc;
    }
    if (n->state != NULL) pg__free_state(n);
    n->state = p;
    return 0;
}

static int pg__convert_compute(const pg_node *n, pg_tile *out, pg_tile *const *in, pg_error *err)
{
    const pg__cvt *p = n->state;
    int rc = pg__check_tiles(n, "local.convert", out, in, err);
    if (rc) return rc;
    pg__cvfns[p->in][p->out](out->data, in[0]->data, p, pg__tile_cells(out));
    return 0;
}

/* ======================================================================== */
/* local.clamp                                                               */

typedef struct pg__clampst {
    pg_celltype type;
    pg__ndv ndv;
    double lo, hi; /* values of the type */
} pg__clampst;

#define PG__CLAMPFN(T, CT)                                                                         \
    static void pg__clamp_##T(void *restrict out_, const void *restrict in_, const pg__clampst *p, \
                              size_t n)                                                            \
    {                                                                                              \
        CT *restrict out = out_;                                                                   \
        const CT *restrict in = in_;                                                               \
        const CT lo = (CT)p->lo, hi = (CT)p->hi;                                                   \
        if (p->ndv.mask) {                                                                         \
            const CT m = (CT)p->ndv.value;                                                         \
            PG__LOOP(n, const CT x = in[i]; const CT c = x < lo   ? lo                             \
                                                         : x > hi ? hi                             \
                                                                  : x;                             \
                     out[i] = x == m ? x : c;);                                                    \
        } else {                                                                                   \
            /* NaN fails both compares and stays NaN */                                            \
            PG__LOOP(n, const CT x = in[i]; out[i] = x < lo ? lo : x > hi ? hi : x;);              \
        }                                                                                          \
    }

PG__CLAMPFN(u8, uint8_t)
PG__CLAMPFN(i8, int8_t)
PG__CLAMPFN(u16, uint16_t)
PG__CLAMPFN(i16, int16_t)
PG__CLAMPFN(u32, uint32_t)
PG__CLAMPFN(i32, int32_t)
PG__CLAMPFN(f32, float)
PG__CLAMPFN(f64, double)

typedef void (*pg__clamp_fn)(void *restrict, const void *restrict, const pg__clampst *, size_t);
static const pg__clamp_fn pg__clampfns[PG_CELLTYPE_COUNT] = {
    pg__clamp_u8,  pg__clamp_i8,  pg__clamp_u16, pg__clamp_i16,
    pg__clamp_u32, pg__clamp_i32, pg__clamp_f32, pg__clamp_f64,
};

/* The smallest f32 >= B and the largest f32 <= B (B finite). */
static float pg__f32_up(double b)
{
    if (b > FLT_MAX) return INFINITY;
    if (b < -FLT_MAX) return -FLT_MAX;
    float f = (float)b;
    if ((double)f < b) f = nextafterf(f, INFINITY);
    return f;
}

static float pg__f32_down(double b)
{
    if (b < -FLT_MAX) return -INFINITY;
    if (b > FLT_MAX) return FLT_MAX;
    float f = (float)b;
    if ((double)f > b) f = nextafterf(f, -INFINITY);
    return f;
}

static int pg__clamp_plan(pg_node *n, const pg_plan_env *env, pg_error *err)
{
    (void)env;
    const char *name = "local.clamp";
    int rc = pg__check_rasters(n, name, err);
    if (rc) return rc;
    const pg_raster_info *xi = &n->args[0].ref->info;
    double mn = pg_param_num(n, "min"), mx = pg_param_num(n, "max");
    if (!isfinite(mn)) return pg_error_set(err, PG_EPARAM, "param 'min' must be a finite number");
    if (!isfinite(mx)) return pg_error_set(err, PG_EPARAM, "param 'max' must be a finite number");
    if (mn > mx)
        return pg_error_set(err, PG_EPARAM, "param 'min' (%.17g) must be <= param 'max' (%.17g)",
                            mn, mx);
    pg_celltype t = xi->type;
    double lo, hi;
    if (t == PG_F64) {
        lo = mn;
        hi = mx;
    } else if (t == PG_F32) {
        lo = pg__f32_up(mn);
        hi = pg__f32_down(mx);
    } else {
        lo = fmax(ceil(mn), pg_celltype_min(t));
        hi = fmin(floor(mx), pg_celltype_max(t));
    }
    if (!(lo <= hi))
        return pg_error_set(err, PG_EPARAM,
                            "params 'min' and 'max': no %s value lies in [%.17g, %.17g]",
                            pg_celltype_name(t), mn, mx);
    pg__clampst *p = calloc(1, sizeof *p);
    if (p == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    p->type = t;
    p->ndv = pg__arg_ndv(xi);
    p->lo = lo;
    p->hi = hi;
    rc = pg__set_info(n, t, xi->has_nodata, xi->nodata, err);
    if (rc) {
        free(p);
        return rc;
    }
    if (n->state != NULL) pg__free_state(n);
    n->state = p;
    return 0;
}

static int pg__clamp_compute(const pg_node *n, pg_tile *out, pg_tile *const *in, pg_error *err)
{
    const pg__clampst *p = n->state;
    int rc = pg__check_tiles(n, "local.clamp", out, in, err);
    if (rc) return rc;
    pg__clampfns[p->type](out->data, in[0]->data, p, pg__tile_cells(out));
    return 0;
}

/* ======================================================================== */
/* local.mask, local.inverse_mask                                            */

typedef struct pg__maskst {
    pg_celltype xt, mt;
    pg__ndv xndv, mndv;
    bool inverse;
    double nd;
} pg__maskst;

/* keep[i] = (m valid and non-zero) XOR inverse */
#define PG__CONDFN(T, CT)                                                                          \
    static void pg__cond_##T(uint8_t *restrict keep, const void *restrict m_, const pg__maskst *p, \
                             size_t n)                                                             \
    {                                                                                              \
        const CT *restrict m = m_;                                                                 \
        const uint8_t inv = p->inverse;                                                            \
        if (p->mndv.mask) {                                                                        \
            const CT mv = (CT)p->mndv.value;                                                       \
            PG__LOOP(n, const CT x = m[i];                                                         \
                     keep[i] = (uint8_t)((uint8_t)(x != 0 && x == x && x != mv) ^ inv););          \
        } else {                                                                                   \
            PG__LOOP(n, const CT x = m[i];                                                         \
                     keep[i] = (uint8_t)((uint8_t)(x != 0 && x == x) ^ inv););                     \
        }                                                                                          \
    }

/* out = keep and x valid ? x : nodata */
#define PG__APPLYFN(T, CT)                                                                         \
    static void pg__apply_##T(void *restrict out_, const void *restrict x_,                        \
                              const uint8_t *restrict keep, const pg__maskst *p, size_t n)         \
    {                                                                                              \
        CT *restrict out = out_;                                                                   \
        const CT *restrict x = x_;                                                                 \
        const CT nd = (CT)p->nd;                                                                   \
        if (p->xndv.mask) {                                                                        \
            const CT xv = (CT)p->xndv.value;                                                       \
            PG__LOOP(n, const CT v = x[i]; out[i] = (keep[i] && v == v && v != xv) ? v : nd;);     \
        } else {                                                                                   \
            PG__LOOP(n, const CT v = x[i]; out[i] = (keep[i] && v == v) ? v : nd;);                \
        }                                                                                          \
    }

#define PG__MASKFNS(T, CT) PG__CONDFN(T, CT) PG__APPLYFN(T, CT)
PG__MASKFNS(u8, uint8_t)
PG__MASKFNS(i8, int8_t)
PG__MASKFNS(u16, uint16_t)
PG__MASKFNS(i16, int16_t)
PG__MASKFNS(u32, uint32_t)
PG__MASKFNS(i32, int32_t)
PG__MASKFNS(f32, float)
PG__MASKFNS(f64, double)

typedef void (*pg__cond_fn)(uint8_t *restrict, const void *restrict, const pg__maskst *, size_t);
typedef void (*pg__apply_fn)(void *restrict, const void *restrict, const uint8_t *restrict,
                             const pg__maskst *, size_t);
static const pg__cond_fn pg__condfns[PG_CELLTYPE_COUNT] = {
    pg__cond_u8,  pg__cond_i8,  pg__cond_u16, pg__cond_i16,
    pg__cond_u32, pg__cond_i32, pg__cond_f32, pg__cond_f64,
};
static const pg__apply_fn pg__applyfns[PG_CELLTYPE_COUNT] = {
    pg__apply_u8,  pg__apply_i8,  pg__apply_u16, pg__apply_i16,
    pg__apply_u32, pg__apply_i32, pg__apply_f32, pg__apply_f64,
};

static int pg__mask_plan_common(pg_node *n, bool inverse, pg_error *err)
{
    const char *name = inverse ? "local.inverse_mask" : "local.mask";
    int rc = pg__check_rasters(n, name, err);
    if (rc) return rc;
    const pg_raster_info *xi = &n->args[0].ref->info, *mi = &n->args[1].ref->info;
    pg__maskst *p = calloc(1, sizeof *p);
    if (p == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    p->xt = xi->type;
    p->mt = mi->type;
    p->xndv = pg__arg_ndv(xi);
    p->mndv = pg__arg_ndv(mi);
    p->inverse = inverse;
    p->nd = xi->has_nodata && pg_celltype_holds(xi->type, xi->nodata)
                ? xi->nodata
                : pg_celltype_default_nodata(xi->type);
    rc = pg__set_info(n, xi->type, true, p->nd, err);
    if (rc) {
        free(p);
        return rc;
    }
    if (n->state != NULL) pg__free_state(n);
    n->state = p;
    return 0;
}

static int pg__mask_plan(pg_node *n, const pg_plan_env *env, pg_error *err)
{
    (void)env;
    return pg__mask_plan_common(n, false, err);
}

static int pg__inverse_mask_plan(pg_node *n, const pg_plan_env *env, pg_error *err)
{
    (void)env;
    return pg__mask_plan_common(n, true, err);
}

static int pg__mask_compute(const pg_node *n, pg_tile *out, pg_tile *const *in, pg_error *err)
{
    const pg__maskst *p = n->state;
    int rc = pg__check_tiles(n, p->inverse ? "local.inverse_mask" : "local.mask", out, in, err);
    if (rc) return rc;
    const size_t ncell = pg__tile_cells(out);
    const size_t xs = pg_celltype_size(p->xt), ms = pg_celltype_size(p->mt);
    _Alignas(64) uint8_t keep[PG__CHUNK];
    for (size_t off = 0; off < ncell; off += PG__CHUNK) {
        const size_t len = ncell - off < PG__CHUNK ? ncell - off : PG__CHUNK;
        pg__condfns[p->mt](keep, (const char *)in[1]->data + off * ms, p, len);
        pg__applyfns[p->xt]((char *)out->data + off * xs, (const char *)in[0]->data + off * xs,
                            keep, p, len);
    }
    return 0;
}

/* ======================================================================== */
/* local.reclassify                                                          */

typedef enum { PG__RC_LUT8, PG__RC_LUT16, PG__RC_LINEAR, PG__RC_BSEARCH } pg__rcmode;

typedef struct pg__rcst {
    pg__rcmode mode;
    pg_celltype in, out;
    pg__ndv ndv;
    bool wf;        /* LINEAR/BSEARCH: compare in f32 (f32 input), else f64 */
    size_t nb;      /* LINEAR: boundaries (padded to a multiple of 4); BSEARCH: P - 1 */
    size_t half;    /* BSEARCH: P / 2 */
    uint32_t ndidx; /* index of the nodata entry in tab */
    void *bounds;   /* float or double[nb] */
    void *tab;      /* out type: LUT8 256, LUT16 65536, else ndidx + 1 entries */
} pg__rcst;

static void pg__rc_free(pg_node *n)
{
    pg__rcst *p = n->state;
    if (p != NULL) {
        free(p->bounds);
        free(p->tab);
        free(p);
    }
    n->state = NULL;
}

/* ---- kernels ---- */

/* cnt[i] = number of boundaries <= x[i]; NB a multiple of 4, padded with
 * NaN (which no value is >=). Four boundaries per pass over the counts. */
#define PG__COUNTFN(W, WT, CT)                                                                     \
    static void pg__count_##W(uint32_t *restrict idx, const WT *restrict x, const WT *restrict b,  \
                              size_t nb, uint32_t ndidx, size_t n)                                 \
    {                                                                                              \
        CT cnt[PG__CHUNK];                                                                         \
        PG__LOOP(n, cnt[i] = 0;);                                                                  \
        for (size_t j = 0; j < nb; j += 4) {                                                       \
            const WT b0 = b[j], b1 = b[j + 1], b2 = b[j + 2], b3 = b[j + 3];                       \
            PG__LOOP(n, const WT v = x[i];                                                         \
                     cnt[i] += (CT)(v >= b0) + (CT)(v >= b1) + (CT)(v >= b2) + (CT)(v >= b3););    \
        }                                                                                          \
        PG__LOOP(n, idx[i] = x[i] == x[i] ? (uint32_t)cnt[i] : ndidx;);                            \
    }
PG__COUNTFN(f, float, int32_t)
PG__COUNTFN(d, double, int64_t)

/* Branchless binary lifting over B (P - 1 sorted entries, padded with
 * +inf): pos ends as the number of entries <= v. */
#define PG__BSEARCHFN(W, WT)                                                                       \
    static void pg__bsearch_##W(uint32_t *restrict idx, const WT *restrict x,                      \
                                const WT *restrict b, size_t half, uint32_t ndidx, size_t n)       \
    {                                                                                              \
        for (size_t i = 0; i < n; i++) {                                                           \
            const WT v = x[i];                                                                     \
            size_t pos = 0;                                                                        \
            for (size_t s = half; s > 0; s >>= 1)                                                  \
                pos = b[pos + s - 1] <= v ? pos + s : pos;                                         \
            idx[i] = v == v ? (uint32_t)pos : ndidx;                                               \
        }                                                                                          \
    }
PG__BSEARCHFN(f, float)
PG__BSEARCHFN(d, double)

/* out[i] = tab[idx[i]] for index types u8 (LUT over u8/i8 bits), u16 (LUT
 * over u16/i16 bits), u32 (interval numbers). */
#define PG__GATHERFN(I, IT, O, OT)                                                                 \
    static void pg__gather_##I##_##O(void *restrict out_, const void *restrict idx_,               \
                                     const void *restrict tab_, size_t n)                          \
    {                                                                                              \
        OT *restrict out = out_;                                                                   \
        const IT *restrict idx = idx_;                                                             \
        const OT *restrict tab = tab_;                                                             \
        PG__LOOP(n, out[i] = tab[idx[i]];);                                                        \
    }
#define PG__GATHERFNS(I, IT)                                                                       \
    PG__GATHERFN(I, IT, u8, uint8_t)                                                               \
    PG__GATHERFN(I, IT, i8, int8_t)                                                                \
    PG__GATHERFN(I, IT, u16, uint16_t)                                                             \
    PG__GATHERFN(I, IT, i16, int16_t)                                                              \
    PG__GATHERFN(I, IT, u32, uint32_t)                                                             \
    PG__GATHERFN(I, IT, i32, int32_t)                                                              \
    PG__GATHERFN(I, IT, f32, float)                                                                \
    PG__GATHERFN(I, IT, f64, double)
PG__GATHERFNS(b8, uint8_t)
PG__GATHERFNS(b16, uint16_t)
PG__GATHERFNS(b32, uint32_t)

typedef void (*pg__gather_fn)(void *restrict, const void *restrict, const void *restrict, size_t);
#define PG__GATHERROW(I)                                                                           \
    {                                                                                              \
        pg__gather_##I##_u8, pg__gather_##I##_i8, pg__gather_##I##_u16, pg__gather_##I##_i16,      \
            pg__gather_##I##_u32, pg__gather_##I##_i32, pg__gather_##I##_f32, pg__gather_##I##_f64 \
    }
/* [0: u8 index, 1: u16 index, 2: u32 index][out type] */
static const pg__gather_fn pg__gathers[3][PG_CELLTYPE_COUNT] = {
    PG__GATHERROW(b8), PG__GATHERROW(b16), PG__GATHERROW(b32)};

/* ---- plan ---- */

typedef struct pg__cls {
    double from, to, value;
    bool value_nd; /* "value": null */
    size_t index;  /* position in "classes" */
} pg__cls;

static int pg__cls_cmp(const void *a_, const void *b_)
{
    const pg__cls *a = a_, *b = b_;
    if (a->from < b->from) return -1;
    if (a->from > b->from) return 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

static int pg__dbl_cmp(const void *a_, const void *b_)
{
    double a = *(const double *)a_, b = *(const double *)b_;
    return a < b ? -1 : a > b;
}

/* Number of entries of B (sorted, K) that are <= V. */
static size_t pg__count_le(const double *b, size_t k, double v)
{
    size_t lo = 0, hi = k;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (b[mid] <= v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* A class bound: a number or null (INF with the given sign). */
static int pg__bound_of(const json_t *v, double inf, double *out)
{
    if (json_is_null(v)) {
        *out = inf;
        return 0;
    }
    if (!json_is_number(v)) return -1;
    *out = json_number_value(v);
    return isfinite(*out) ? 0 : -1;
}

static bool pg__int_type_holds(pg_celltype t, double v)
{
    return v == trunc(v) && v >= pg_celltype_min(t) && v <= pg_celltype_max(t);
}

/* Whether type T can store every value in VALS (N): integer types exactly,
 * f32 rounding to nearest within its range, f64 anything. Returns the
 * index of the first value it cannot store, or N. */
static size_t pg__first_unfit(pg_celltype t, const double *vals, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        double v = vals[i];
        if (t == PG_F64) continue;
        if (t == PG_F32) {
            if (fabs(v) > FLT_MAX) return i;
            continue;
        }
        if (!pg__int_type_holds(t, v)) return i;
    }
    return n;
}

/* V as stored in type T (for collision checks). */
static double pg__as_stored(pg_celltype t, double v)
{
    return t == PG_F32 ? (double)(float)v : v;
}

/* A nodata value for type T that no value of VALS equals once stored:
 * XND (the input's nodata) if T holds it, else T's default. Returns false
 * if both collide. */
static bool pg__pick_nodata(pg_celltype t, const double *vals, size_t n, bool has_xnd, double xnd,
                            double *nd)
{
    double cand[2];
    int nc = 0;
    if (has_xnd && pg_celltype_holds(t, xnd)) cand[nc++] = xnd;
    cand[nc++] = pg_celltype_default_nodata(t);
    for (int c = 0; c < nc; c++) {
        bool clash = false;
        for (size_t i = 0; i < n && !clash; i++)
            clash = pg__as_stored(t, vals[i]) == cand[c]; /* NaN never clashes */
        if (!clash) {
            *nd = cand[c];
            return true;
        }
    }
    return false;
}

/* Stores V (a value type T can store: see pg__first_unfit) at TAB[I]. */
static void pg__tab_set(void *tab, pg_celltype t, size_t i, double v)
{
    switch (t) {
    case PG_U8:
        ((uint8_t *)tab)[i] = (uint8_t)v;
        break;
    case PG_I8:
        ((int8_t *)tab)[i] = (int8_t)v;
        break;
    case PG_U16:
        ((uint16_t *)tab)[i] = (uint16_t)v;
        break;
    case PG_I16:
        ((int16_t *)tab)[i] = (int16_t)v;
        break;
    case PG_U32:
        ((uint32_t *)tab)[i] = (uint32_t)v;
        break;
    case PG_I32:
        ((int32_t *)tab)[i] = (int32_t)v;
        break;
    case PG_F32:
        ((float *)tab)[i] = (float)v;
        break;
    default:
        ((double *)tab)[i] = v;
        break;
    }
}

/* The value of input bit pattern P of an 8/16-bit type. */
static double pg__pattern_value(pg_celltype t, unsigned p)
{
    switch (t) {
    case PG_U8:
        return (double)(uint8_t)p;
    case PG_I8:
        return (double)(int8_t)(uint8_t)p;
    case PG_U16:
        return (double)(uint16_t)p;
    default:
        return (double)(int16_t)(uint16_t)p;
    }
}

/* Everything plan needs, freed in one place. */
typedef struct pg__rcbuild {
    pg__cls *cls;    /* nclasses, in "classes" order */
    pg__cls *sorted; /* by from */
    double *b;       /* k boundaries, sorted, distinct */
    long *ivc;       /* k + 1 intervals: class index or -1 (default) */
    double *vals;    /* every non-null value and the default */
    bool *reach;     /* k + 1: some input value can fall in the interval */
} pg__rcbuild;

static void pg__rcbuild_free(pg__rcbuild *b)
{
    free(b->cls);
    free(b->sorted);
    free(b->b);
    free(b->ivc);
    free(b->vals);
    free(b->reach);
}

static int pg__reclassify_plan2(pg_node *n, pg__rcbuild *bd, pg__rcst **out, pg_error *err)
{
    const char *name = "local.reclassify";
    int rc = pg__check_rasters(n, name, err);
    if (rc) return rc;
    const pg_raster_info *xi = &n->args[0].ref->info;

    /* ---- "classes" ---- */
    const json_t *classes = json_object_get(n->params, "classes");
    if (!json_is_array(classes) || json_array_size(classes) == 0)
        return pg_error_set(err, PG_EPARAM,
                            "param 'classes' must be a non-empty array of [from, to, value]");
    const size_t nc = json_array_size(classes);
    if (nc > PG__MAX_CLASSES)
        return pg_error_set(err, PG_EPARAM, "param 'classes' has %zu classes (at most %d)", nc,
                            PG__MAX_CLASSES);
    bd->cls = calloc(nc, sizeof *bd->cls);
    bd->sorted = calloc(nc, sizeof *bd->sorted);
    bd->b = calloc(2 * nc, sizeof *bd->b);
    bd->vals = calloc(nc + 1, sizeof *bd->vals);
    if (!bd->cls || !bd->sorted || !bd->b || !bd->vals)
        return pg_error_set(err, PG_ENOMEM, "out of memory");
    size_t nvals = 0, k = 0;
    for (size_t i = 0; i < nc; i++) {
        const json_t *c = json_array_get(classes, i);
        if (!json_is_array(c) || json_array_size(c) != 3)
            return pg_error_set(err, PG_EPARAM,
                                "param 'classes': classes[%zu] must be an array [from, to, value]",
                                i);
        pg__cls *cl = &bd->cls[i];
        cl->index = i;
        if (pg__bound_of(json_array_get(c, 0), -INFINITY, &cl->from) != 0)
            return pg_error_set(err, PG_EPARAM,
                                "param 'classes': classes[%zu]: 'from' must be a number or null",
                                i);
        if (pg__bound_of(json_array_get(c, 1), INFINITY, &cl->to) != 0)
            return pg_error_set(err, PG_EPARAM,
                                "param 'classes': classes[%zu]: 'to' must be a number or null", i);
        const json_t *v = json_array_get(c, 2);
        if (json_is_null(v)) {
            cl->value_nd = true;
        } else if (json_is_number(v) && isfinite(json_number_value(v))) {
            cl->value = json_number_value(v);
            bd->vals[nvals++] = cl->value;
        } else {
            return pg_error_set(err, PG_EPARAM,
                                "param 'classes': classes[%zu]: 'value' must be a number or null",
                                i);
        }
        if (!(cl->from < cl->to))
            return pg_error_set(err, PG_EPARAM,
                                "param 'classes': classes[%zu] is empty: 'from' (%.17g) must be "
                                "< 'to' (%.17g)",
                                i, cl->from, cl->to);
        if (isfinite(cl->from)) bd->b[k++] = cl->from;
        if (isfinite(cl->to)) bd->b[k++] = cl->to;
    }
    memcpy(bd->sorted, bd->cls, nc * sizeof *bd->cls);
    qsort(bd->sorted, nc, sizeof *bd->sorted, pg__cls_cmp);
    for (size_t i = 1; i < nc; i++) {
        const pg__cls *a = &bd->sorted[i - 1], *c = &bd->sorted[i];
        if (c->from < a->to) {
            const pg__cls *lo = a->index < c->index ? a : c, *hi = a->index < c->index ? c : a;
            return pg_error_set(err, PG_EPARAM,
                                "param 'classes': classes[%zu] [%.17g, %.17g) and classes[%zu] "
                                "[%.17g, %.17g) overlap",
                                lo->index, lo->from, lo->to, hi->index, hi->from, hi->to);
        }
    }

    /* ---- "default" ---- */
    const json_t *dj = json_object_get(n->params, "default");
    bool default_nd = dj == NULL || json_is_null(dj);
    double dflt = 0.0;
    if (!default_nd) {
        if (!json_is_number(dj) || !isfinite(json_number_value(dj)))
            return pg_error_set(err, PG_EPARAM, "param 'default' must be a number or null");
        dflt = json_number_value(dj);
        bd->vals[nvals++] = dflt;
    }

    /* ---- intervals: boundaries B[0..k) split the line into k + 1 ---- */
    qsort(bd->b, k, sizeof *bd->b, pg__dbl_cmp);
    size_t kk = 0;
    for (size_t i = 0; i < k; i++)
        if (kk == 0 || bd->b[i] != bd->b[kk - 1]) bd->b[kk++] = bd->b[i];
    k = kk;
    bd->ivc = malloc((k + 1) * sizeof *bd->ivc);
    bd->reach = calloc(k + 1, sizeof *bd->reach);
    if (!bd->ivc || !bd->reach) return pg_error_set(err, PG_ENOMEM, "out of memory");
    for (size_t t = 0; t <= k; t++)
        bd->ivc[t] = -1;
    /* Interval t is [B[t-1], B[t]); class [from, to) covers t in
     * [count(from), count(to) - 1] where count(v) = #{B <= v}. The
     * classes do not overlap, so each interval is written once at most. */
    for (size_t i = 0; i < nc; i++) {
        const pg__cls *cl = &bd->cls[i];
        size_t t0 = isfinite(cl->from) ? pg__count_le(bd->b, k, cl->from) : 0;
        size_t t1 = isfinite(cl->to) ? pg__count_le(bd->b, k, cl->to) - 1 : k;
        for (size_t t = t0; t <= t1; t++)
            bd->ivc[t] = (long)i;
    }

    /* ---- which intervals input cells can reach ---- */
    const pg__ndv ndv = pg__arg_ndv(xi);
    pg__rcmode mode;
    if (xi->type == PG_U8 || xi->type == PG_I8)
        mode = PG__RC_LUT8;
    else if (xi->type == PG_U16 || xi->type == PG_I16)
        mode = PG__RC_LUT16;
    else
        mode = k <= PG__LINEAR_MAX ? PG__RC_LINEAR : PG__RC_BSEARCH;
    const unsigned npat = mode == PG__RC_LUT8 ? 256u : mode == PG__RC_LUT16 ? 65536u : 0u;
    if (npat > 0) {
        for (unsigned pat = 0; pat < npat; pat++) {
            double v = pg__pattern_value(xi->type, pat);
            if (ndv.mask && v == ndv.value) continue;
            bd->reach[pg__count_le(bd->b, k, v)] = true;
        }
    } else {
        for (size_t t = 0; t <= k; t++)
            bd->reach[t] = true;
    }
    bool needs_nd = xi->has_nodata || pg_celltype_is_float(xi->type);
    for (size_t t = 0; t <= k && !needs_nd; t++) {
        if (!bd->reach[t]) continue;
        needs_nd = bd->ivc[t] < 0 ? default_nd : bd->cls[bd->ivc[t]].value_nd;
    }

    /* ---- the output type and nodata ---- */
    pg_celltype ot = PG_F64;
    double nd = 0.0;
    const char *tname = pg_param_str(n, "type");
    if (tname != NULL) {
        if (pg_celltype_parse(tname, &ot) != 0)
            return pg_error_set(err, PG_EPARAM,
                                "param 'type' must be a cell type: one of u8, i8, u16, i16, u32, "
                                "i32, f32, f64");
        size_t bad = pg__first_unfit(ot, bd->vals, nvals);
        if (bad < nvals) {
            if (!default_nd && bad == nvals - 1)
                return pg_error_set(err, PG_EPARAM,
                                    "param 'type': %s cannot hold the default %.17g", tname, dflt);
            /* the bad-th non-null value: find its class */
            size_t seen = 0, ci = 0;
            for (size_t i = 0; i < nc; i++) {
                if (bd->cls[i].value_nd) continue;
                if (seen++ == bad) {
                    ci = i;
                    break;
                }
            }
            return pg_error_set(err, PG_EPARAM,
                                "param 'type': %s cannot hold the value %.17g of classes[%zu]",
                                tname, bd->vals[bad], ci);
        }
        if (needs_nd && !pg__pick_nodata(ot, bd->vals, nvals, xi->has_nodata, xi->nodata, &nd)) {
            if (xi->has_nodata && pg_celltype_holds(ot, xi->nodata))
                return pg_error_set(err, PG_EPARAM,
                                    "param 'type': %s has no nodata value left: the values use "
                                    "both the input's nodata %.17g and %.17g",
                                    tname, xi->nodata, pg_celltype_default_nodata(ot));
            return pg_error_set(err, PG_EPARAM,
                                "param 'type': %s has no nodata value left: the values use %.17g",
                                tname, pg_celltype_default_nodata(ot));
        }
    } else {
        bool all_int = true, in_f32 = true;
        for (size_t i = 0; i < nvals; i++) {
            all_int &= bd->vals[i] == trunc(bd->vals[i]);
            in_f32 &= fabs(bd->vals[i]) <= FLT_MAX;
        }
        static const pg_celltype ints[] = {PG_U8, PG_I8, PG_U16, PG_I16, PG_U32, PG_I32, PG_F64};
        static const pg_celltype floats[] = {PG_F32, PG_F64};
        const pg_celltype *order = all_int ? ints : in_f32 ? floats : floats + 1;
        size_t norder = all_int ? 7 : in_f32 ? 2 : 1;
        for (size_t o = 0; o < norder; o++) {
            ot = order[o];
            if (pg__first_unfit(ot, bd->vals, nvals) < nvals) continue;
            if (needs_nd && !pg__pick_nodata(ot, bd->vals, nvals, xi->has_nodata, xi->nodata, &nd))
                continue;
            break; /* f64 always fits and always has NaN */
        }
    }

    /* ---- the tables ---- */
    pg__rcst *p = calloc(1, sizeof *p);
    if (p == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    *out = p;
    p->mode = mode;
    p->in = xi->type;
    p->out = ot;
    p->ndv = ndv;
    const size_t os = pg_celltype_size(ot);
    const double ndv_out = needs_nd ? nd : 0.0;
    if (npat > 0) {
        p->tab = malloc((size_t)npat * os);
        if (p->tab == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
        for (unsigned pat = 0; pat < npat; pat++) {
            double v = pg__pattern_value(xi->type, pat);
            double r = ndv_out;
            if (!(ndv.mask && v == ndv.value)) {
                long c = bd->ivc[pg__count_le(bd->b, k, v)];
                if (c < 0)
                    r = default_nd ? ndv_out : dflt;
                else
                    r = bd->cls[c].value_nd ? ndv_out : bd->cls[c].value;
            }
            pg__tab_set(p->tab, ot, pat, r);
        }
    } else {
        p->wf = xi->type == PG_F32;
        size_t ntab; /* entries for counts */
        if (mode == PG__RC_LINEAR) {
            p->nb = (k + 3) / 4 * 4;
            ntab = k + 1;
        } else {
            size_t pw = 1;
            while (pw - 1 < k)
                pw <<= 1;
            p->nb = pw - 1;
            p->half = pw / 2;
            ntab = pw;
        }
        p->ndidx = (uint32_t)ntab;
        p->bounds = malloc((p->nb ? p->nb : 1) * (p->wf ? sizeof(float) : sizeof(double)));
        p->tab = malloc((ntab + 1) * os);
        if (p->bounds == NULL || p->tab == NULL)
            return pg_error_set(err, PG_ENOMEM, "out of memory");
        /* padding: NaN for LINEAR (never <= a value), +inf for BSEARCH */
        const double pad = mode == PG__RC_LINEAR ? NAN : INFINITY;
        for (size_t j = 0; j < p->nb; j++) {
            double bj = j < k ? bd->b[j] : pad;
            if (p->wf)
                /* for an f32 v: B <= v iff up(B) <= v (up: the smallest
                 * f32 >= B), so comparing in f32 is exact */
                ((float *)p->bounds)[j] = j < k ? pg__f32_up(bj) : (float)pad;
            else
                ((double *)p->bounds)[j] = bj;
        }
        for (size_t t = 0; t < ntab; t++) {
            long c = bd->ivc[t < k ? t : k]; /* past k: +inf cells, the last interval */
            double r;
            if (c < 0)
                r = default_nd ? ndv_out : dflt;
            else
                r = bd->cls[c].value_nd ? ndv_out : bd->cls[c].value;
            pg__tab_set(p->tab, ot, t, r);
        }
        pg__tab_set(p->tab, ot, ntab, ndv_out);
    }
    return pg__set_info(n, ot, needs_nd, nd, err);
}

static int pg__reclassify_plan(pg_node *n, const pg_plan_env *env, pg_error *err)
{
    (void)env;
    pg__rcbuild bd = {0};
    pg__rcst *p = NULL;
    int rc = pg__reclassify_plan2(n, &bd, &p, err);
    pg__rcbuild_free(&bd);
    if (rc != 0) {
        if (p != NULL) {
            pg_node tmp = {.state = p};
            pg__rc_free(&tmp);
        }
        return rc;
    }
    if (n->state != NULL) pg__rc_free(n);
    n->state = p;
    return 0;
}

static int pg__reclassify_compute(const pg_node *n, pg_tile *out, pg_tile *const *in, pg_error *err)
{
    const pg__rcst *p = n->state;
    int rc = pg__check_tiles(n, "local.reclassify", out, in, err);
    if (rc) return rc;
    const size_t ncell = pg__tile_cells(out);
    if (p->mode == PG__RC_LUT8 || p->mode == PG__RC_LUT16) {
        pg__gathers[p->mode == PG__RC_LUT8 ? 0 : 1][p->out](out->data, in[0]->data, p->tab, ncell);
        return 0;
    }
    const size_t is = pg_celltype_size(p->in), os = pg_celltype_size(p->out);
    _Alignas(64) unsigned char buf[PG__CHUNK * sizeof(double)];
    _Alignas(64) uint32_t idx[PG__CHUNK];
    for (size_t off = 0; off < ncell; off += PG__CHUNK) {
        const size_t len = ncell - off < PG__CHUNK ? ncell - off : PG__CHUNK;
        const char *src = (const char *)in[0]->data + off * is;
        if (p->wf) {
            const float *x = (const float *)(const void *)src;
            if (p->ndv.mask) {
                pg__loadf[PG_F32]((float *)(void *)buf, src, &p->ndv, len);
                x = (const float *)(void *)buf;
            }
            if (p->mode == PG__RC_LINEAR)
                pg__count_f(idx, x, p->bounds, p->nb, p->ndidx, len);
            else
                pg__bsearch_f(idx, x, p->bounds, p->half, p->ndidx, len);
        } else {
            const double *x = (const double *)(const void *)src;
            if (p->in != PG_F64 || p->ndv.mask) {
                pg__loadd[p->in]((double *)(void *)buf, src, &p->ndv, len);
                x = (const double *)(void *)buf;
            }
            if (p->mode == PG__RC_LINEAR)
                pg__count_d(idx, x, p->bounds, p->nb, p->ndidx, len);
            else
                pg__bsearch_d(idx, x, p->bounds, p->half, p->ndidx, len);
        }
        pg__gathers[2][p->out]((char *)out->data + off * os, idx, p->tab, len);
    }
    return 0;
}

/* ======================================================================== */
/* local.normalized_difference                                               */

typedef struct pg__ndst {
    pg_celltype ta, tb, out;
    bool wf; /* compute in f32 */
    pg__ndv na, nb;
} pg__ndst;

/* (a - b) / (a + b); r * ((r - r) + 1) is r for finite r and NaN for inf
 * or NaN (a + b == 0 gives inf or NaN), without a compare. */
static void pg__nd_f(float *restrict out, const float *restrict a, const float *restrict b,
                     size_t n)
{
    PG__LOOP(n, const float r = (a[i] - b[i]) / (a[i] + b[i]); out[i] = r * ((r - r) + 1.0f););
}

static void pg__nd_d(double *restrict out, const double *restrict a, const double *restrict b,
                     size_t n)
{
    PG__LOOP(n, const double r = (a[i] - b[i]) / (a[i] + b[i]); out[i] = r * ((r - r) + 1.0););
}

static int pg__nd_plan(pg_node *n, const pg_plan_env *env, pg_error *err)
{
    (void)env;
    int rc = pg__check_rasters(n, "local.normalized_difference", err);
    if (rc) return rc;
    const pg_raster_info *ai = &n->args[0].ref->info, *bi = &n->args[1].ref->info;
    pg__ndst *p = calloc(1, sizeof *p);
    if (p == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    p->ta = ai->type;
    p->tb = bi->type;
    p->na = pg__arg_ndv(ai);
    p->nb = pg__arg_ndv(bi);
    bool wide = false;
    for (int a = 0; a < 2; a++) {
        pg_celltype t = n->args[a].ref->info.type;
        wide |= t == PG_F64 || t == PG_U32 || t == PG_I32;
    }
    p->out = wide ? PG_F64 : PG_F32;
    p->wf = pg__small_int(p->ta) && pg__small_int(p->tb);
    rc = pg__set_info(n, p->out, true, NAN, err);
    if (rc) {
        free(p);
        return rc;
    }
    if (n->state != NULL) pg__free_state(n);
    n->state = p;
    return 0;
}

static int pg__nd_compute(const pg_node *n, pg_tile *out, pg_tile *const *in, pg_error *err)
{
    const pg__ndst *p = n->state;
    int rc = pg__check_tiles(n, "local.normalized_difference", out, in, err);
    if (rc) return rc;
    const size_t ncell = pg__tile_cells(out);
    const size_t as = pg_celltype_size(p->ta), bs = pg_celltype_size(p->tb);
    const size_t os = pg_celltype_size(p->out);
    _Alignas(64) double ba[PG__CHUNK], bb[PG__CHUNK], br[PG__CHUNK];
    for (size_t off = 0; off < ncell; off += PG__CHUNK) {
        const size_t len = ncell - off < PG__CHUNK ? ncell - off : PG__CHUNK;
        const char *pa = (const char *)in[0]->data + off * as;
        const char *pb = (const char *)in[1]->data + off * bs;
        char *po = (char *)out->data + off * os;
        if (p->wf) {
            float *fa = (float *)(void *)ba, *fb = (float *)(void *)bb;
            pg__loadf[p->ta](fa, pa, &p->na, len);
            pg__loadf[p->tb](fb, pb, &p->nb, len);
            pg__nd_f((float *)(void *)po, fa, fb, len); /* output is f32 */
        } else {
            pg__loadd[p->ta](ba, pa, &p->na, len);
            pg__loadd[p->tb](bb, pb, &p->nb, len);
            if (p->out == PG_F64) {
                pg__nd_d((double *)(void *)po, ba, bb, len);
            } else {
                pg__nd_d(br, ba, bb, len);
                pg__stored[PG_F32](po, br, NAN, len);
            }
        }
    }
    return 0;
}

/* ======================================================================== */
/* local.weighted_overlay                                                    */

typedef struct pg__wost {
    pg_celltype out;
    bool normalize;
    double sumw;
    int nargs;
    pg_celltype *types; /* nargs, in this block */
    pg__ndv *ndv;       /* nargs */
    double w[];         /* nargs */
} pg__wost;

static void pg__wo_first(double *restrict acc, const double *restrict x, double w, size_t n)
{
    PG__LOOP(n, acc[i] = w * x[i];);
}

static void pg__wo_acc(double *restrict acc, const double *restrict x, double w, size_t n)
{
    PG__LOOP(n, acc[i] = acc[i] + w * x[i];);
}

/* acc / s (when normalizing), non-finite -> NaN */
static void pg__wo_fin(double *restrict acc, bool norm, double s, size_t n)
{
    if (norm)
        PG__LOOP(n, const double r = acc[i] / s; acc[i] = r * ((r - r) + 1.0););
    else
        PG__LOOP(n, const double r = acc[i]; acc[i] = r * ((r - r) + 1.0););
}

static int pg__wo_plan(pg_node *n, const pg_plan_env *env, pg_error *err)
{
    (void)env;
    int rc = pg__check_rasters(n, "local.weighted_overlay", err);
    if (rc) return rc;
    const json_t *wj = json_object_get(n->params, "weights");
    if (!json_is_array(wj))
        return pg_error_set(err, PG_EPARAM,
                            "param 'weights' must be an array of numbers, one per arg");
    if (json_array_size(wj) != (size_t)n->nargs)
        return pg_error_set(err, PG_EPARAM, "param 'weights' has %zu entries for %d args",
                            json_array_size(wj), n->nargs);
    bool norm = pg_param_has(n, "normalize") ? pg_param_bool(n, "normalize") != 0 : true;
    const size_t na = (size_t)n->nargs;
    pg__wost *p = calloc(1, sizeof *p + na * (sizeof(double) + sizeof(pg__ndv) + sizeof(int)));
    if (p == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    p->ndv = (pg__ndv *)(void *)&p->w[na];
    p->types = (pg_celltype *)(void *)&p->ndv[na];
    p->nargs = n->nargs;
    p->normalize = norm;
    bool small = true;
    for (size_t a = 0; a < na; a++) {
        const json_t *v = json_array_get(wj, a);
        if (!json_is_number(v) || !isfinite(json_number_value(v))) {
            free(p);
            return pg_error_set(err, PG_EPARAM, "param 'weights': weights[%zu] must be a number",
                                a);
        }
        p->w[a] = json_number_value(v);
        p->sumw += p->w[a];
        const pg_raster_info *ri = &n->args[a].ref->info;
        p->types[a] = ri->type;
        p->ndv[a] = pg__arg_ndv(ri);
        small &= pg__small_int(ri->type) || ri->type == PG_F32;
    }
    if (norm && !(p->sumw != 0.0 && isfinite(p->sumw))) {
        double s = p->sumw;
        free(p);
        return pg_error_set(err, PG_EPARAM,
                            "param 'weights' sum to %.17g: cannot normalize (set \"normalize\": "
                            "false)",
                            s);
    }
    p->out = small ? PG_F32 : PG_F64;
    rc = pg__set_info(n, p->out, true, NAN, err);
    if (rc) {
        free(p);
        return rc;
    }
    if (n->state != NULL) pg__free_state(n);
    n->state = p;
    return 0;
}

static int pg__wo_compute(const pg_node *n, pg_tile *out, pg_tile *const *in, pg_error *err)
{
    const pg__wost *p = n->state;
    int rc = pg__check_tiles(n, "local.weighted_overlay", out, in, err);
    if (rc) return rc;
    const size_t ncell = pg__tile_cells(out);
    const size_t os = pg_celltype_size(p->out);
    _Alignas(64) double acc[PG__CHUNK], x[PG__CHUNK];
    for (size_t off = 0; off < ncell; off += PG__CHUNK) {
        const size_t len = ncell - off < PG__CHUNK ? ncell - off : PG__CHUNK;
        for (int a = 0; a < p->nargs; a++) {
            const char *src = (const char *)in[a]->data + off * pg_celltype_size(p->types[a]);
            pg__loadd[p->types[a]](x, src, &p->ndv[a], len);
            if (a == 0)
                pg__wo_first(acc, x, p->w[0], len);
            else
                pg__wo_acc(acc, x, p->w[a], len);
        }
        pg__wo_fin(acc, p->normalize, p->sumw, len);
        pg__stored[p->out]((char *)out->data + off * os, acc, NAN, len);
    }
    return 0;
}

/* ======================================================================== */
/* local.majority, local.minority, local.variety                             */

typedef enum { PG__MAJ, PG__MIN, PG__VAR } pg__narykind;

static const char *const pg__naryname[] = {"local.majority", "local.minority", "local.variety"};

typedef struct pg__naryst {
    pg__narykind kind;
    int nargs;
    bool wf; /* compare in f32 */
    pg_celltype out;
    double nd; /* output nodata (0 when none) */
    pg_celltype *types;
    pg__ndv ndv[]; /* nargs; types follow */
} pg__naryst;

/* Pairwise counting, for up to PG__PAIR_MAX args. V[a]: arg a's chunk
 * (NaN: nodata); C[a]: counts; BC: the best count so far; RES: the result
 * (NaN: nodata). Each step is a small function over cells with restrict
 * arguments and branch-free bodies (bitwise & and |, selects), so that
 * every loop vectorises. */
#define PG__PAIRSTEPS(W, WT)                                                                       \
    /* c = 1 for a valid value, 0 for nodata */                                                    \
    static void pg__pv_valid_##W(WT *restrict c, const WT *restrict v, size_t n)                   \
    {                                                                                              \
        PG__LOOP(n, c[i] = v[i] == v[i] ? (WT)1 : (WT)0;);                                         \
    }                                                                                              \
    static void pg__pv_zero_##W(WT *restrict c, size_t n)                                          \
    {                                                                                              \
        PG__LOOP(n, c[i] = (WT)0;);                                                                \
    }                                                                                              \
    /* both counts grow where the values are equal (NaN equals nothing) */                         \
    static void pg__pv_eq2_##W(WT *restrict ca, WT *restrict cb, const WT *restrict va,            \
                               const WT *restrict vb, size_t n)                                    \
    {                                                                                              \
        PG__LOOP(n, const WT e = va[i] == vb[i] ? (WT)1 : (WT)0; ca[i] += e; cb[i] += e;);         \
    }                                                                                              \
    /* variety: cb counts equal values among earlier args */                                       \
    static void pg__pv_eq1_##W(WT *restrict cb, const WT *restrict va, const WT *restrict vb,      \
                               size_t n)                                                           \
    {                                                                                              \
        PG__LOOP(n, cb[i] += va[i] == vb[i] ? (WT)1 : (WT)0;);                                     \
    }                                                                                              \
    static void pg__pv_init_##W(WT *restrict bc, WT *restrict res, WT b0, size_t n)                \
    {                                                                                              \
        PG__LOOP(n, bc[i] = b0; res[i] = (WT)INFINITY;);                                           \
    }                                                                                              \
    static void pg__pv_maj_##W(WT *restrict bc, WT *restrict res, const WT *restrict c,            \
                               const WT *restrict v, size_t n)                                     \
    {                                                                                              \
        PG__LOOP(n, const WT k = c[i]; const WT x = v[i]; const WT b = bc[i];                      \
                 const bool better = (k > b) | ((k == b) & (x < res[i])); bc[i] = better ? k : b;  \
                 res[i] = better ? x : res[i];);                                                   \
    }                                                                                              \
    static void pg__pv_min_##W(WT *restrict bc, WT *restrict res, const WT *restrict c,            \
                               const WT *restrict v, size_t n)                                     \
    {                                                                                              \
        PG__LOOP(n, const WT k = c[i]; const WT x = v[i]; const WT b = bc[i];                      \
                 const bool better = (k >= (WT)1) & ((k < b) | ((k == b) & (x < res[i])));         \
                 bc[i] = better ? k : b; res[i] = better ? x : res[i];);                           \
    }                                                                                              \
    /* majority: no count above 0 -> nodata; minority: none below BIG */                           \
    static void pg__pv_fin_##W(WT *restrict res, const WT *restrict bc, WT lo, WT hi, size_t n)    \
    {                                                                                              \
        PG__LOOP(n, const WT b = bc[i]; res[i] = (b > lo) & (b < hi) ? res[i] : (WT)NAN;);         \
    }                                                                                              \
    static void pg__pv_var_##W(WT *restrict res, const WT *restrict c, const WT *restrict v,       \
                               size_t n)                                                           \
    {                                                                                              \
        PG__LOOP(n, res[i] += (v[i] == v[i]) & (c[i] == (WT)0) ? (WT)1 : (WT)0;);                  \
    }                                                                                              \
    static void pg__pair_##W(pg__narykind kind, int na, WT *const *v, WT *const *c,                \
                             WT *restrict bc, WT *restrict res, size_t n)                          \
    {                                                                                              \
        for (int a = 0; a < na; a++) {                                                             \
            if (kind == PG__VAR)                                                                   \
                pg__pv_zero_##W(c[a], n);                                                          \
            else                                                                                   \
                pg__pv_valid_##W(c[a], v[a], n);                                                   \
        }                                                                                          \
        for (int a = 0; a < na; a++) {                                                             \
            for (int b = a + 1; b < na; b++) {                                                     \
                if (kind == PG__VAR)                                                               \
                    pg__pv_eq1_##W(c[b], v[a], v[b], n);                                           \
                else                                                                               \
                    pg__pv_eq2_##W(c[a], c[b], v[a], v[b], n);                                     \
            }                                                                                      \
        }                                                                                          \
        if (kind == PG__VAR) {                                                                     \
            pg__pv_zero_##W(res, n);                                                               \
            for (int a = 0; a < na; a++)                                                           \
                pg__pv_var_##W(res, c[a], v[a], n);                                                \
            return;                                                                                \
        }                                                                                          \
        const WT big = (WT)(na + 1);                                                               \
        pg__pv_init_##W(bc, res, kind == PG__MAJ ? (WT)0 : big, n);                                \
        for (int a = 0; a < na; a++) {                                                             \
            if (kind == PG__MAJ)                                                                   \
                pg__pv_maj_##W(bc, res, c[a], v[a], n);                                            \
            else                                                                                   \
                pg__pv_min_##W(bc, res, c[a], v[a], n);                                            \
        }                                                                                          \
        pg__pv_fin_##W(res, bc, (WT)0, big, n);                                                    \
    }
PG__PAIRSTEPS(f, float)
PG__PAIRSTEPS(d, double)

/* The same for a compile-time number of args N (2 to PG__FIX_MAX): each
 * cell's N values and counts live in registers (the inner loops over N are
 * unrolled completely), and the cells are vectorised. V holds the args'
 * chunks at BASE + a * CH. */
#define PG__FIX_MAX 8
/* PG__UNROLL: complete unrolling of the loops over N (GCC does not always
 * unroll triangular nests on its own, and then cannot vectorise). */
#define PG__UNROLL _Pragma("GCC unroll 16")
/* One cell I: x[], c[] (counts), then the choice into res[I]. */
#define PG__FIXCELL(WT, N, MAJ)                                                                    \
    {                                                                                              \
        WT x[N], c[N];                                                                             \
        PG__UNROLL for (int a = 0; a < N; a++)                                                     \
        {                                                                                          \
            x[a] = base[(size_t)a * ch + i];                                                       \
            c[a] = x[a] == x[a] ? (WT)1 : (WT)0;                                                   \
        }                                                                                          \
        PG__UNROLL for (int a = 0; a < N; a++)                                                     \
        {                                                                                          \
            PG__UNROLL for (int b = a + 1; b < N; b++)                                             \
            {                                                                                      \
                const WT e = x[a] == x[b] ? (WT)1 : (WT)0;                                         \
                c[a] += e;                                                                         \
                c[b] += e;                                                                         \
            }                                                                                      \
        }                                                                                          \
        WT bc = (MAJ) ? (WT)0 : (WT)(N + 1), r = (WT)INFINITY;                                     \
        PG__UNROLL for (int a = 0; a < N; a++)                                                     \
        {                                                                                          \
            const bool better =                                                                    \
                (MAJ) ? (c[a] > bc) | ((c[a] == bc) & (x[a] < r))                                  \
                      : (c[a] >= (WT)1) & ((c[a] < bc) | ((c[a] == bc) & (x[a] < r)));             \
            bc = better ? c[a] : bc;                                                               \
            r = better ? x[a] : r;                                                                 \
        }                                                                                          \
        res[i] = (bc > (WT)0) & (bc < (WT)(N + 1)) ? r : (WT)NAN;                                  \
    }
/* variety: count the values that no earlier arg has */
#define PG__FIXCELL_VAR(WT, N)                                                                     \
    {                                                                                              \
        WT x[N], cnt = (WT)0;                                                                      \
        PG__UNROLL for (int a = 0; a < N; a++) x[a] = base[(size_t)a * ch + i];                    \
        PG__UNROLL for (int a = 0; a < N; a++)                                                     \
        {                                                                                          \
            bool first = x[a] == x[a];                                                             \
            PG__UNROLL for (int b = 0; b < a; b++) first &= x[b] != x[a];                          \
            cnt += first ? (WT)1 : (WT)0;                                                          \
        }                                                                                          \
        res[i] = cnt;                                                                              \
    }
/* Blocks of PG__VB cells (a compile-time trip count, vectorised at -O2
 * too), then the rest. */
#define PG__FIXLOOP(CELL)                                                                          \
    do {                                                                                           \
        size_t i_ = 0;                                                                             \
        for (; i_ + PG__VB <= n; i_ += PG__VB) {                                                   \
            for (size_t j_ = 0; j_ < PG__VB; j_++) {                                               \
                const size_t i = i_ + j_;                                                          \
                CELL                                                                               \
            }                                                                                      \
        }                                                                                          \
        for (size_t i = i_; i < n; i++)                                                            \
            CELL                                                                                   \
    } while (0)
#define PG__FIXFN(W, WT, N)                                                                        \
    static void pg__fix##N##_##W(pg__narykind kind, const WT *restrict base, size_t ch,            \
                                 WT *restrict res, size_t n)                                       \
    {                                                                                              \
        if (kind == PG__VAR)                                                                       \
            PG__FIXLOOP(PG__FIXCELL_VAR(WT, N));                                                   \
        else if (kind == PG__MAJ)                                                                  \
            PG__FIXLOOP(PG__FIXCELL(WT, N, 1));                                                    \
        else                                                                                       \
            PG__FIXLOOP(PG__FIXCELL(WT, N, 0));                                                    \
    }
#define PG__FIXFNS(W, WT)                                                                          \
    PG__FIXFN(W, WT, 2)                                                                            \
    PG__FIXFN(W, WT, 3)                                                                            \
    PG__FIXFN(W, WT, 4)                                                                            \
    PG__FIXFN(W, WT, 5)                                                                            \
    PG__FIXFN(W, WT, 6)                                                                            \
    PG__FIXFN(W, WT, 7)                                                                            \
    PG__FIXFN(W, WT, 8)
PG__FIXFNS(f, float)
PG__FIXFNS(d, double)

typedef void (*pg__fixf_fn)(pg__narykind, const float *restrict, size_t, float *restrict, size_t);
typedef void (*pg__fixd_fn)(pg__narykind, const double *restrict, size_t, double *restrict, size_t);
static const pg__fixf_fn pg__fixf[PG__FIX_MAX + 1] = {
    [2] = pg__fix2_f, [3] = pg__fix3_f, [4] = pg__fix4_f, [5] = pg__fix5_f,
    [6] = pg__fix6_f, [7] = pg__fix7_f, [8] = pg__fix8_f,
};
static const pg__fixd_fn pg__fixd[PG__FIX_MAX + 1] = {
    [2] = pg__fix2_d, [3] = pg__fix3_d, [4] = pg__fix4_d, [5] = pg__fix5_d,
    [6] = pg__fix6_d, [7] = pg__fix7_d, [8] = pg__fix8_d,
};

/* Sorting each cell's valid values, for many args. TMP holds NA values.
 * Shell sort (Ciura's gaps): no recursion, no comparator calls. */
#define PG__SORTFN(W, WT)                                                                          \
    static void pg__sortcells_##W(pg__narykind kind, int na, WT *const *v, WT *restrict tmp,       \
                                  WT *restrict res, size_t n)                                      \
    {                                                                                              \
        static const int gaps[] = {701, 301, 132, 57, 23, 10, 4, 1};                               \
        for (size_t i = 0; i < n; i++) {                                                           \
            int m = 0;                                                                             \
            for (int a = 0; a < na; a++) {                                                         \
                const WT x = v[a][i];                                                              \
                if (x == x) tmp[m++] = x;                                                          \
            }                                                                                      \
            if (m == 0) {                                                                          \
                res[i] = kind == PG__VAR ? (WT)0 : (WT)NAN;                                        \
                continue;                                                                          \
            }                                                                                      \
            for (size_t g = 0; g < sizeof gaps / sizeof gaps[0]; g++) {                            \
                const int gap = gaps[g];                                                           \
                for (int s = gap; s < m; s++) {                                                    \
                    const WT t = tmp[s];                                                           \
                    int j = s;                                                                     \
                    for (; j >= gap && tmp[j - gap] > t; j -= gap)                                 \
                        tmp[j] = tmp[j - gap];                                                     \
                    tmp[j] = t;                                                                    \
                }                                                                                  \
            }                                                                                      \
            int runs = 0, bestlen = kind == PG__MAJ ? 0 : na + 1;                                  \
            WT best = tmp[0];                                                                      \
            for (int s = 0; s < m;) {                                                              \
                int e = s + 1;                                                                     \
                while (e < m && tmp[e] == tmp[s])                                                  \
                    e++;                                                                           \
                const int len = e - s;                                                             \
                runs++;                                                                            \
                /* ascending order: strict compares keep the smallest on ties */                   \
                if (kind == PG__MAJ ? len > bestlen : len < bestlen) {                             \
                    bestlen = len;                                                                 \
                    best = tmp[s];                                                                 \
                }                                                                                  \
                s = e;                                                                             \
            }                                                                                      \
            res[i] = kind == PG__VAR ? (WT)runs : best;                                            \
        }                                                                                          \
    }
PG__SORTFN(f, float)
PG__SORTFN(d, double)

/* The majority/minority output type (the rules at the top). */
static pg_celltype pg__common_type(const pg_node *n)
{
    pg_celltype t0 = n->args[0].ref->info.type;
    bool same = true, any_f64 = false, any_f32 = false, all_small_or_f32 = true;
    double lo = INFINITY, hi = -INFINITY;
    for (int a = 0; a < n->nargs; a++) {
        pg_celltype t = n->args[a].ref->info.type;
        same &= t == t0;
        any_f64 |= t == PG_F64;
        any_f32 |= t == PG_F32;
        all_small_or_f32 &= pg__small_int(t) || t == PG_F32;
        lo = fmin(lo, pg_celltype_min(t));
        hi = fmax(hi, pg_celltype_max(t));
    }
    if (same) return t0;
    if (any_f64) return PG_F64;
    if (any_f32) return all_small_or_f32 ? PG_F32 : PG_F64;
    static const pg_celltype ints[] = {PG_U8, PG_I8, PG_U16, PG_I16, PG_U32, PG_I32};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        if (pg_celltype_min(ints[i]) <= lo && pg_celltype_max(ints[i]) >= hi) return ints[i];
    return PG_F64;
}

static int pg__nary_plan(pg_node *n, pg__narykind kind, pg_error *err)
{
    const char *name = pg__naryname[kind];
    int rc = pg__check_rasters(n, name, err);
    if (rc) return rc;
    if (n->nargs < 2)
        return pg_error_set(err, PG_EINTERNAL, "%s: needs at least 2 args, got %d", name, n->nargs);
    const size_t na = (size_t)n->nargs;
    pg__naryst *p = calloc(1, sizeof *p + na * (sizeof(pg__ndv) + sizeof(pg_celltype)));
    if (p == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    p->types = (pg_celltype *)(void *)&p->ndv[na];
    p->kind = kind;
    p->nargs = n->nargs;
    bool any_nd = false, wf = true;
    for (size_t a = 0; a < na; a++) {
        const pg_raster_info *ri = &n->args[a].ref->info;
        p->types[a] = ri->type;
        p->ndv[a] = pg__arg_ndv(ri);
        any_nd |= ri->has_nodata || pg_celltype_is_float(ri->type);
        wf &= pg__small_int(ri->type) || ri->type == PG_F32;
    }
    p->wf = wf;
    if (kind == PG__VAR) {
        p->out = n->nargs <= 255 ? PG_U8 : n->nargs <= 65535 ? PG_U16 : PG_U32;
        p->nd = 0.0;
    } else {
        p->out = pg__common_type(n);
        const pg_raster_info *fi = &n->args[0].ref->info;
        if (any_nd)
            p->nd = fi->has_nodata && pg_celltype_holds(p->out, fi->nodata)
                        ? fi->nodata
                        : pg_celltype_default_nodata(p->out);
    }
    rc = pg__set_info(n, p->out, any_nd, p->nd, err);
    if (rc) {
        free(p);
        return rc;
    }
    if (n->state != NULL) pg__free_state(n);
    n->state = p;
    return 0;
}

static int pg__majority_plan(pg_node *n, const pg_plan_env *env, pg_error *err)
{
    (void)env;
    return pg__nary_plan(n, PG__MAJ, err);
}

static int pg__minority_plan(pg_node *n, const pg_plan_env *env, pg_error *err)
{
    (void)env;
    return pg__nary_plan(n, PG__MIN, err);
}

static int pg__variety_plan(pg_node *n, const pg_plan_env *env, pg_error *err)
{
    (void)env;
    return pg__nary_plan(n, PG__VAR, err);
}

static int pg__nary_compute(const pg_node *n, pg_tile *out, pg_tile *const *in, pg_error *err)
{
    const pg__naryst *p = n->state;
    int rc = pg__check_tiles(n, pg__naryname[p->kind], out, in, err);
    if (rc) return rc;
    const size_t ncell = pg__tile_cells(out);
    const size_t na = (size_t)p->nargs, ws = p->wf ? sizeof(float) : sizeof(double);
    /* Three ways, by the number of args (see the top of the file): FIXED
     * (registers), PAIR (count arrays), else SORT. Buffers of CH cells:
     * fixed: v[na], res; pair: v[na], c[na], bc, res; sort: v[na], res, and
     * na values of tmp. v[a] is at scratch + a * CH (fixed relies on it).
     * CH is a multiple of 16 (every buffer 64-byte aligned), at most
     * PG__CHUNK. */
    const bool fixed = na <= PG__FIX_MAX, pair = !fixed && na <= PG__PAIR_MAX;
    const bool sort = !fixed && !pair;
    const size_t nbuf = pair ? 2 * na + 2 : na + 1;
    const size_t extra = sort ? (na * ws + 63) / 64 * 64 : 0;
    size_t ch = PG__SCRATCH > extra ? (PG__SCRATCH - extra) / (nbuf * ws) / 16 * 16 : 0;
    if (ch > PG__CHUNK) ch = PG__CHUNK;
    if (ch < 16) ch = 16;
    const size_t need = nbuf * ch * ws + extra;
    _Alignas(64) unsigned char stackbuf[PG__SCRATCH];
    unsigned char *scratch = stackbuf;
    if (need > sizeof stackbuf) {
        scratch = aligned_alloc(64, (need + 63) / 64 * 64);
        if (scratch == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    }
    void *ptr_stack[2 * PG__PAIR_MAX];
    void **v = !sort ? ptr_stack : malloc(na * sizeof *v);
    if (v == NULL) {
        if (scratch != stackbuf) free(scratch);
        return pg_error_set(err, PG_ENOMEM, "out of memory");
    }
    void **c = pair ? ptr_stack + na : NULL;
    for (size_t a = 0; a < na; a++) {
        v[a] = scratch + a * ch * ws;
        if (pair) c[a] = scratch + (na + a) * ch * ws;
    }
    void *bc = pair ? scratch + 2 * na * ch * ws : NULL;
    void *res = scratch + (nbuf - 1) * ch * ws;
    void *tmp = sort ? scratch + nbuf * ch * ws : NULL;

    const size_t os = pg_celltype_size(p->out);
    for (size_t off = 0; off < ncell; off += ch) {
        const size_t len = ncell - off < ch ? ncell - off : ch;
        for (size_t a = 0; a < na; a++) {
            const char *src = (const char *)in[a]->data + off * pg_celltype_size(p->types[a]);
            if (p->wf)
                pg__loadf[p->types[a]](v[a], src, &p->ndv[a], len);
            else
                pg__loadd[p->types[a]](v[a], src, &p->ndv[a], len);
        }
        char *dst = (char *)out->data + off * os;
        if (p->wf) {
            if (fixed)
                pg__fixf[na](p->kind, (const float *)(const void *)scratch, ch, res, len);
            else if (pair)
                pg__pair_f(p->kind, p->nargs, (float *const *)v, (float *const *)c, bc, res, len);
            else
                pg__sortcells_f(p->kind, p->nargs, (float *const *)v, tmp, res, len);
            pg__storef[p->out](dst, res, p->nd, len);
        } else {
            if (fixed)
                pg__fixd[na](p->kind, (const double *)(const void *)scratch, ch, res, len);
            else if (pair)
                pg__pair_d(p->kind, p->nargs, (double *const *)v, (double *const *)c, bc, res, len);
            else
                pg__sortcells_d(p->kind, p->nargs, (double *const *)v, tmp, res, len);
            pg__stored[p->out](dst, res, p->nd, len);
        }
    }
    if (sort) free(v);
    if (scratch != stackbuf) free(scratch);
    return 0;
}

/* ======================================================================== */
/* The table                                                                 */

#define PG__GRID_RULE                                                                              \
    " All args must be rasters on one grid with one band count (grid_mismatch otherwise). An "     \
    "input cell is nodata when it equals its raster's nodata value or is NaN."

static const pg_param_def pg__convert_params[] = {
    {.name = "type",
     .type = PG_PARAM_CELLTYPE,
     .required = true,
     .doc = "The output cell type (u8 ... f64)."},
    {.name = "clamp",
     .type = PG_PARAM_BOOL,
     .default_json = "true",
     .doc = "true: values outside the type's range are clamped to it; false: they become "
            "nodata."},
    {0},
};

static const pg_param_def pg__clamp_params[] = {
    {.name = "min",
     .type = PG_PARAM_NUMBER,
     .required = true,
     .doc = "Lower bound (rounded up onto the cell type; below the type's range it does not "
            "bind)."},
    {.name = "max",
     .type = PG_PARAM_NUMBER,
     .required = true,
     .doc = "Upper bound, >= min (rounded down onto the cell type; above the type's range it "
            "does not bind)."},
    {0},
};

static const pg_param_def pg__no_params[] = {{0}};

static const pg_param_def pg__reclassify_params[] = {
    {.name = "classes",
     .type = PG_PARAM_JSON,
     .required = true,
     .doc = "Array of [from, to, value]: cells with from <= v < to get value. from null: no "
            "lower bound, to null: no upper bound; value null: nodata. Classes must not overlap; "
            "at most 65536."},
    {.name = "default",
     .type = PG_PARAM_JSON,
     .default_json = "null",
     .doc = "Value of cells in no class: a number, or null for nodata."},
    {.name = "type",
     .type = PG_PARAM_CELLTYPE,
     .doc = "Output cell type. Default: the smallest of u8, i8, u16, i16, u32, i32 holding every "
            "value and the default (and a free nodata value when needed), f32 if a value has a "
            "fraction, else f64."},
    {0},
};

static const pg_param_def pg__wo_params[] = {
    {.name = "weights",
     .type = PG_PARAM_JSON,
     .required = true,
     .doc = "One number per arg: the weight of that raster."},
    {.name = "normalize",
     .type = PG_PARAM_BOOL,
     .default_json = "true",
     .doc = "Divide the weighted sum by the sum of the weights (which must then not be 0)."},
    {0},
};

const pg_op_def pg_ops_local_class[] = {
    {
        .name = "local.convert",
        .family = "local",
        .doc = "Converts a raster to the cell type 'type'. Output type: 'type'. Floats become "
               "integers rounded to nearest, halves away from zero; values outside the type's "
               "range are clamped to it (\"clamp\": false makes them nodata); finite values "
               "beyond f32's range clamp to +-3.4e38, infinities stay. NaN and nodata cells "
               "become nodata, whose value is the input's if the new type holds it, else the "
               "type's default (NaN for floats, min for signed, max for unsigned integers; a "
               "value clamped onto it reads as nodata). The output has a nodata value when the "
               "input has one or is float, or when 'clamp' is false and the type is "
               "narrower." PG__GRID_RULE,
        .example = "{\"op\": \"local.convert\", \"args\": [{\"ref\": \"dem\"}], \"type\": "
                   "\"i16\"}",
        .min_args = 1,
        .max_args = 1,
        .arg_kinds = PG_ARGK_RASTER,
        .params = pg__convert_params,
        .result = PG_RESULT_RASTER,
        .plan = pg__convert_plan,
        .compute = pg__convert_compute,
        .free_state = pg__free_state,
        .elementwise = true,
    },
    {
        .name = "local.clamp",
        .family = "local",
        .doc = "Clamps every valid cell into [min, max]. Output type and nodata: the input's. "
               "Nodata and NaN cells are kept. The bounds are moved onto the cell type (min "
               "rounded up, max down; for f32 to the nearest f32 inside) so that every result "
               "lies in [min, max]; bad_param if min > max or no value of the type lies in "
               "between." PG__GRID_RULE,
        .example = "{\"op\": \"local.clamp\", \"args\": [{\"ref\": \"ndvi\"}], \"min\": 0, "
                   "\"max\": 1}",
        .min_args = 1,
        .max_args = 1,
        .arg_kinds = PG_ARGK_RASTER,
        .params = pg__clamp_params,
        .result = PG_RESULT_RASTER,
        .plan = pg__clamp_plan,
        .compute = pg__clamp_compute,
        .free_state = pg__free_state,
        .elementwise = true,
    },
    {
        .name = "local.mask",
        .family = "local",
        .doc = "args[0] where args[1] (the mask) is valid and non-zero, nodata elsewhere. Output "
               "type: args[0]'s; the output always has a nodata value: args[0]'s if its type "
               "holds it, else the type's default (NaN for floats, min for signed, max for "
               "unsigned integers). Nodata cells of args[0] stay nodata." PG__GRID_RULE,
        .example = "{\"op\": \"local.mask\", \"args\": [{\"ref\": \"dem\"}, {\"ref\": "
                   "\"land\"}]}",
        .min_args = 2,
        .max_args = 2,
        .arg_kinds = PG_ARGK_RASTER,
        .params = pg__no_params,
        .result = PG_RESULT_RASTER,
        .plan = pg__mask_plan,
        .compute = pg__mask_compute,
        .free_state = pg__free_state,
        .elementwise = true,
    },
    {
        .name = "local.inverse_mask",
        .family = "local",
        .doc = "args[0] where args[1] (the mask) is zero or nodata (or NaN), nodata elsewhere. "
               "Output type: args[0]'s; the output always has a nodata value: args[0]'s if its "
               "type holds it, else the type's default (NaN for floats, min for signed, max for "
               "unsigned integers). Nodata cells of args[0] stay nodata." PG__GRID_RULE,
        .example = "{\"op\": \"local.inverse_mask\", \"args\": [{\"ref\": \"dem\"}, {\"ref\": "
                   "\"clouds\"}]}",
        .min_args = 2,
        .max_args = 2,
        .arg_kinds = PG_ARGK_RASTER,
        .params = pg__no_params,
        .result = PG_RESULT_RASTER,
        .plan = pg__inverse_mask_plan,
        .compute = pg__mask_compute,
        .free_state = pg__free_state,
        .elementwise = true,
    },
    {
        .name = "local.reclassify",
        .family = "local",
        .doc = "Maps value ranges to values: each class [from, to, value] takes the cells with "
               "from <= v < to (null from / to: unbounded, infinities included); other cells "
               "get 'default' (null: nodata); nodata and NaN cells stay nodata. Classes must "
               "not overlap. Output type: 'type' if given, else the smallest of u8, i8, u16, "
               "i16, u32, i32 holding every value and the default (with a nodata value left "
               "free when one is needed), f32 if a value has a fraction, else f64. Nodata "
               "value: the input's if the output type holds it and no value equals it, else "
               "the type's default." PG__GRID_RULE,
        .example = "{\"op\": \"local.reclassify\", \"args\": [{\"ref\": \"dem\"}], \"classes\": "
                   "[[null, 500, 1], [500, 1500, 2], [1500, null, 3]], \"default\": null}",
        .min_args = 1,
        .max_args = 1,
        .arg_kinds = PG_ARGK_RASTER,
        .params = pg__reclassify_params,
        .result = PG_RESULT_RASTER,
        .plan = pg__reclassify_plan,
        .compute = pg__reclassify_compute,
        .free_state = pg__rc_free,
        .elementwise = true,
    },
    {
        .name = "local.normalized_difference",
        .family = "local",
        .doc = "(args[0] - args[1]) / (args[0] + args[1]), e.g. NDVI = normalized_difference("
               "nir, red). Output type: f64 if an input is f64, u32 or i32, else f32. Nodata "
               "(always NaN) where an input is nodata or NaN, where args[0] + args[1] == 0, or "
               "where the result is not finite." PG__GRID_RULE,
        .example = "{\"op\": \"local.normalized_difference\", \"args\": [{\"ref\": \"nir\"}, "
                   "{\"ref\": \"red\"}]}",
        .min_args = 2,
        .max_args = 2,
        .arg_kinds = PG_ARGK_RASTER,
        .params = pg__no_params,
        .result = PG_RESULT_RASTER,
        .plan = pg__nd_plan,
        .compute = pg__nd_compute,
        .free_state = pg__free_state,
        .elementwise = true,
    },
    {
        .name = "local.majority",
        .family = "local",
        .doc = "Per cell, the most frequent value among two or more rasters; ties go to the "
               "smallest value; nodata args are ignored, and a cell where all are nodata is "
               "nodata. Output type: the args' common type (the same type; f64 with an f64 arg; "
               "f32 when f32 meets only 8/16-bit integers; else the smallest integer type "
               "holding every arg type; else f64). Nodata value: args[0]'s if the output type "
               "holds it, else the type's default." PG__GRID_RULE,
        .example = "{\"op\": \"local.majority\", \"args\": [{\"ref\": \"a\"}, {\"ref\": \"b\"}, "
                   "{\"ref\": \"c\"}]}",
        .min_args = 2,
        .max_args = -1,
        .arg_kinds = PG_ARGK_RASTER,
        .params = pg__no_params,
        .result = PG_RESULT_RASTER,
        .plan = pg__majority_plan,
        .compute = pg__nary_compute,
        .free_state = pg__free_state,
        .elementwise = true,
    },
    {
        .name = "local.minority",
        .family = "local",
        .doc = "Per cell, the least frequent value among two or more rasters; ties go to the "
               "smallest value; nodata args are ignored, and a cell where all are nodata is "
               "nodata. Output type: the args' common type (as local.majority). Nodata value: "
               "args[0]'s if the output type holds it, else the type's default." PG__GRID_RULE,
        .example = "{\"op\": \"local.minority\", \"args\": [{\"ref\": \"a\"}, {\"ref\": \"b\"}, "
                   "{\"ref\": \"c\"}]}",
        .min_args = 2,
        .max_args = -1,
        .arg_kinds = PG_ARGK_RASTER,
        .params = pg__no_params,
        .result = PG_RESULT_RASTER,
        .plan = pg__minority_plan,
        .compute = pg__nary_compute,
        .free_state = pg__free_state,
        .elementwise = true,
    },
    {
        .name = "local.variety",
        .family = "local",
        .doc = "Per cell, the number of distinct valid values among two or more rasters (nodata "
               "args ignored). Output type: u8 for up to 255 args, else u16 (u32 beyond 65535). "
               "A cell where all args are nodata counts 0, which is the nodata value (declared "
               "when an arg has nodata or is float)." PG__GRID_RULE,
        .example = "{\"op\": \"local.variety\", \"args\": [{\"ref\": \"a\"}, {\"ref\": \"b\"}, "
                   "{\"ref\": \"c\"}]}",
        .min_args = 2,
        .max_args = -1,
        .arg_kinds = PG_ARGK_RASTER,
        .params = pg__no_params,
        .result = PG_RESULT_RASTER,
        .plan = pg__variety_plan,
        .compute = pg__nary_compute,
        .free_state = pg__free_state,
        .elementwise = true,
    },
    {
        .name = "local.weighted_overlay",
        .family = "local",
        .doc = "Per cell, the sum of weights[i] * args[i] (in f64, arg order), divided by the "
               "sum of the weights when 'normalize'. Output type: f32 if every arg is 8/16-bit "
               "or f32, else f64. Nodata (always NaN) where any arg is nodata or NaN or the "
               "result is not finite. 'weights' needs one number per arg." PG__GRID_RULE,
        .example = "{\"op\": \"local.weighted_overlay\", \"args\": [{\"ref\": \"slope\"}, "
                   "{\"ref\": \"soil\"}], \"weights\": [0.7, 0.3], \"normalize\": true}",
        .min_args = 1,
        .max_args = -1,
        .arg_kinds = PG_ARGK_RASTER,
        .params = pg__wo_params,
        .result = PG_RESULT_RASTER,
        .plan = pg__wo_plan,
        .compute = pg__wo_compute,
        .free_state = pg__free_state,
        .elementwise = true,
    },
    {0},
};
