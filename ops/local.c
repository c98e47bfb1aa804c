/* Local (cell-by-cell) arithmetic: local.add, local.subtract,
 * local.multiply, local.divide.
 *
 * TYPE RULES. The natural result type is decided from the raster args'
 * cell types; number args are "weak": they never widen the type except as
 * said here.
 *  - add, subtract, multiply:
 *      f64  if any raster arg is f64, or an f32 raster is combined with a
 *           u32 or i32 raster;
 *      else f32  if any raster arg is f32, or any number arg is not an
 *           integer;
 *      else (integer rasters, integer numbers):
 *           i32  if every raster arg is 8- or 16-bit,
 *           f64  otherwise (u32/i32 involved: i32 cannot hold u32 sums).
 *  - divide: f32 if every raster arg is 8/16-bit or f32, else f64.
 * (A consequence worth knowing: u32 + 0.5 is f32, exact only below 2^24.)
 * The optional param "type" forces the output type. The result is computed
 * in the natural type (the "work" type below) and then converted: integers
 * clamped to the type's range and rounded to nearest (halves away from
 * zero), f32 clamped to +-FLT_MAX. With "type", out-of-range values are
 * clamped, never nodata.
 *
 * NODATA RULES. An output cell is nodata when
 *  - it is nodata in any raster arg (its nodata value compared exactly in
 *    the arg's own cell type; for an f32 arg the nodata rounded to f32, as
 *    GDAL does), or NaN in a float raster arg; or
 *  - the operation is undefined there: division by zero, a result that is
 *    not finite (inf, NaN), or, for an integer natural type without "type",
 *    a result outside that type's range (i32 overflow).
 * The output has a nodata value if any raster arg has one or undefined cells
 * are possible (divide always; any float raster arg, since it may hold NaN or
 * inf; an integer or float work type whose range the arg ranges can exceed,
 * found by interval arithmetic over the args in evaluation order). The value
 * is the first raster arg's nodata if it has one and the output type holds
 * it exactly, else pg_celltype_default_nodata() of the output type. A valid
 * result that happens to equal the nodata value reads as nodata (unavoidable
 * with in-band nodata).
 *
 * EVALUATION ORDER. add and multiply fold their number args into one
 * constant first (in double, in arg order), then combine the rasters left
 * to right in the work type, then apply the constant. subtract and divide
 * are a op b.
 *
 * COMPUTE. A tile is processed as one flat array (all its args have the
 * same window and bands) in chunks of PG__CHUNK cells, so that the
 * accumulator and converted operands stay in L1. An arg already in the work
 * type is read in place; others are converted by typed loops (see the
 * conversion section for why not GDALCopyWords64). The kernels are typed
 * loops written as fixed-size inner blocks, which GCC vectorises even at -O2
 * (its "very cheap" cost model refuses loops with a scalar epilogue); n-ary
 * chains take two operands per pass over the accumulator. Nodata work
 * happens only when an arg has a nodata value (a byte mask per chunk) or the
 * output has one: non-finite results become nodata, fused into the last
 * kernel when the nodata value is NaN and no arg has a mask (the common
 * float case costs nothing extra), else in a final pass.
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

/* Cells per chunk: the accumulator and up to three converted operands are
 * 4 KiB each in f32 (8 KiB in f64), so a chunk's working set stays in L1/L2
 * while the inputs stream through, and the stack frame stays small (37 KiB). */
#define PG__CHUNK 1024
/* Inner block of the kernels: a compile-time trip count. */
#define PG__VB 16

/* Kernels get AVX-512 and AVX2 clones next to the baseline (SSE2) one,
 * picked at load time by the CPU (GCC's target_clones, an ifunc): wider
 * vectors, and the mask/byte packing and blends that SSE2 lacks (the chain
 * where(a > 0.5, (a + b) * c - d / 2, 0) costs 40 us per 256x256 f32 tile
 * instead of 100). Every clone does the same IEEE operations, so the same
 * bytes on any CPU. x86-64-v4 has FMA: it is cloned only in ISO C mode
 * (-std=c11, __STRICT_ANSI__), where GCC never contracts a * b + c. */
#if defined(__GNUC__) && defined(__x86_64__) && defined(__gnu_linux__) && !defined(__clang__)
#if defined(__STRICT_ANSI__)
#define PG__KERNEL __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))
#else
#define PG__KERNEL __attribute__((target_clones("avx2", "default")))
#endif
#else
#define PG__KERNEL
#endif

/* Runs the statement list for every i in [0, n): fixed blocks of PG__VB
 * (vectorised), then the scalar rest. */
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

typedef enum { PG__ADD, PG__SUB, PG__MUL, PG__DIV } pg__opk;

static const char *const pg__opname[] = {"local.add", "local.subtract", "local.multiply",
                                         "local.divide"};

/* ---- kernels ----
 * For each work type (i32, f32, f64) and operation:
 *   vv:   d = a op b      acc:  d = d op b
 *   vs:   d = a op s      sv:   d = s op a      accs: d = d op s
 * The scalar arrives as a double and is converted once. i32 arithmetic never
 * overflows: plan() chooses i32 only when interval arithmetic proves it. */

static inline int32_t pg__to_i32(double s)
{
    return (int32_t)s; /* in range: plan() checked */
}

static inline float pg__to_f32(double s)
{
    /* Out-of-range double -> float is undefined in C: saturate to inf. */
    if (s > FLT_MAX) return INFINITY;
    if (s < -FLT_MAX) return -INFINITY;
    return (float)s;
}

static inline double pg__to_f64(double s)
{
    return s;
}

#define PG__OP_ADD(x, y) ((x) + (y))
#define PG__OP_SUB(x, y) ((x) - (y))
#define PG__OP_MUL(x, y) ((x) * (y))
#define PG__OP_DIV(x, y) ((x) / (y))

#define PG__KERNELS(W, T, OPN, OP, POST)                                                           \
    static PG__KERNEL void pg__##W##_##OPN##_vv(void *restrict d_, const void *restrict a_,        \
                                                const void *restrict b_, size_t n)                 \
    {                                                                                              \
        T *restrict d = d_;                                                                        \
        const T *restrict a = a_;                                                                  \
        const T *restrict b = b_;                                                                  \
        PG__LOOP(n, const T r = OP(a[i], b[i]); d[i] = POST(r););                                  \
    }                                                                                              \
    static PG__KERNEL void pg__##W##_##OPN##_acc(void *restrict d_, const void *restrict b_,       \
                                                 size_t n)                                         \
    {                                                                                              \
        T *restrict d = d_;                                                                        \
        const T *restrict b = b_;                                                                  \
        PG__LOOP(n, const T r = OP(d[i], b[i]); d[i] = POST(r););                                  \
    }                                                                                              \
    static PG__KERNEL void pg__##W##_##OPN##_vs(void *restrict d_, const void *restrict a_,        \
                                                double s_, size_t n)                               \
    {                                                                                              \
        T *restrict d = d_;                                                                        \
        const T *restrict a = a_;                                                                  \
        const T s = pg__to_##W(s_);                                                                \
        PG__LOOP(n, const T r = OP(a[i], s); d[i] = POST(r););                                     \
    }                                                                                              \
    static PG__KERNEL void pg__##W##_##OPN##_sv(void *restrict d_, double s_,                      \
                                                const void *restrict a_, size_t n)                 \
    {                                                                                              \
        T *restrict d = d_;                                                                        \
        const T *restrict a = a_;                                                                  \
        const T s = pg__to_##W(s_);                                                                \
        PG__LOOP(n, const T r = OP(s, a[i]); d[i] = POST(r););                                     \
    }                                                                                              \
    static PG__KERNEL void pg__##W##_##OPN##_accs(void *restrict d_, double s_, size_t n)          \
    {                                                                                              \
        T *restrict d = d_;                                                                        \
        const T s = pg__to_##W(s_);                                                                \
        PG__LOOP(n, const T r = OP(d[i], s); d[i] = POST(r););                                     \
    }                                                                                              \
    static PG__KERNEL void pg__##W##_##OPN##_vvv(void *restrict d_, const void *restrict a_,       \
                                                 const void *restrict b_, const void *restrict c_, \
                                                 size_t n)                                         \
    {                                                                                              \
        T *restrict d = d_;                                                                        \
        const T *restrict a = a_;                                                                  \
        const T *restrict b = b_;                                                                  \
        const T *restrict c = c_;                                                                  \
        PG__LOOP(n, const T r = OP(OP(a[i], b[i]), c[i]); d[i] = POST(r););                        \
    }                                                                                              \
    static PG__KERNEL void pg__##W##_##OPN##_acc2(void *restrict d_, const void *restrict b_,      \
                                                  const void *restrict c_, size_t n)               \
    {                                                                                              \
        T *restrict d = d_;                                                                        \
        const T *restrict b = b_;                                                                  \
        const T *restrict c = c_;                                                                  \
        PG__LOOP(n, const T r = OP(OP(d[i], b[i]), c[i]); d[i] = POST(r););                        \
    }

/* POST: nothing, or (the "n" variants, float work types) the NaN fix-up
 * below fused into the last step of a chain, saving a pass. */
#define PG__ID(r) (r)
#define PG__NANFIX(r) ((r) * (((r) - (r)) + 1))

PG__KERNELS(i32, int32_t, add, PG__OP_ADD, PG__ID)
PG__KERNELS(i32, int32_t, sub, PG__OP_SUB, PG__ID)
PG__KERNELS(i32, int32_t, mul, PG__OP_MUL, PG__ID)
PG__KERNELS(f32, float, add, PG__OP_ADD, PG__ID)
PG__KERNELS(f32, float, sub, PG__OP_SUB, PG__ID)
PG__KERNELS(f32, float, mul, PG__OP_MUL, PG__ID)
PG__KERNELS(f32, float, div, PG__OP_DIV, PG__ID)
PG__KERNELS(f64, double, add, PG__OP_ADD, PG__ID)
PG__KERNELS(f64, double, sub, PG__OP_SUB, PG__ID)
PG__KERNELS(f64, double, mul, PG__OP_MUL, PG__ID)
PG__KERNELS(f64, double, div, PG__OP_DIV, PG__ID)
PG__KERNELS(f32, float, addn, PG__OP_ADD, PG__NANFIX)
PG__KERNELS(f32, float, subn, PG__OP_SUB, PG__NANFIX)
PG__KERNELS(f32, float, muln, PG__OP_MUL, PG__NANFIX)
PG__KERNELS(f32, float, divn, PG__OP_DIV, PG__NANFIX)
PG__KERNELS(f64, double, addn, PG__OP_ADD, PG__NANFIX)
PG__KERNELS(f64, double, subn, PG__OP_SUB, PG__NANFIX)
PG__KERNELS(f64, double, muln, PG__OP_MUL, PG__NANFIX)
PG__KERNELS(f64, double, divn, PG__OP_DIV, PG__NANFIX)

typedef struct pg__kern {
    void (*vv)(void *restrict, const void *restrict, const void *restrict, size_t);
    void (*acc)(void *restrict, const void *restrict, size_t);
    void (*vs)(void *restrict, const void *restrict, double, size_t);
    void (*sv)(void *restrict, double, const void *restrict, size_t);
    void (*accs)(void *restrict, double, size_t);
    /* n-ary chains, two steps per pass over the accumulator (same order,
     * same rounding as two passes) */
    void (*vvv)(void *restrict, const void *restrict, const void *restrict, const void *restrict,
                size_t);
    void (*acc2)(void *restrict, const void *restrict, const void *restrict, size_t);
} pg__kern;

#define PG__KERN(W, OPN)                                                                           \
    {                                                                                              \
        pg__##W##_##OPN##_vv, pg__##W##_##OPN##_acc, pg__##W##_##OPN##_vs, pg__##W##_##OPN##_sv,   \
            pg__##W##_##OPN##_accs, pg__##W##_##OPN##_vvv, pg__##W##_##OPN##_acc2                  \
    }

/* [work: 0 i32, 1 f32, 2 f64][op]; i32 has no divide (divide is never i32). */
static const pg__kern pg__kerns[3][4] = {
    {PG__KERN(i32, add), PG__KERN(i32, sub), PG__KERN(i32, mul), {0}},
    {PG__KERN(f32, add), PG__KERN(f32, sub), PG__KERN(f32, mul), PG__KERN(f32, div)},
    {PG__KERN(f64, add), PG__KERN(f64, sub), PG__KERN(f64, mul), PG__KERN(f64, div)},
};
/* The same with the NaN fix-up fused: [0 f32, 1 f64][op]. */
static const pg__kern pg__kerns_nan[2][4] = {
    {PG__KERN(f32, addn), PG__KERN(f32, subn), PG__KERN(f32, muln), PG__KERN(f32, divn)},
    {PG__KERN(f64, addn), PG__KERN(f64, subn), PG__KERN(f64, muln), PG__KERN(f64, divn)},
};

static int pg__work_index(pg_celltype w)
{
    return w == PG_I32 ? 0 : w == PG_F32 ? 1 : 2;
}

/* ---- nodata mask: bad[i] |= (src[i] == nd), compared in the arg's type ---- */

#define PG__MASKFN(N, T)                                                                           \
    static PG__KERNEL void pg__mask_##N(uint8_t *restrict bad, const void *restrict src_,          \
                                        double nd_, size_t n)                                      \
    {                                                                                              \
        const T *restrict src = src_;                                                              \
        const T nd = (T)nd_;                                                                       \
        PG__LOOP(n, bad[i] |= (uint8_t)(src[i] == nd););                                           \
    }

PG__MASKFN(u8, uint8_t)
PG__MASKFN(i8, int8_t)
PG__MASKFN(u16, uint16_t)
PG__MASKFN(i16, int16_t)
PG__MASKFN(u32, uint32_t)
PG__MASKFN(i32, int32_t)
PG__MASKFN(f32, float)
PG__MASKFN(f64, double)

typedef void (*pg__maskfn)(uint8_t *restrict, const void *restrict, double, size_t);
static const pg__maskfn pg__maskfns[PG_CELLTYPE_COUNT] = {
    pg__mask_u8,  pg__mask_i8,  pg__mask_u16, pg__mask_i16,
    pg__mask_u32, pg__mask_i32, pg__mask_f32, pg__mask_f64,
};

/* ---- final passes ----
 * In place, when the output type is the work type: non-finite (float) or
 * masked cells become nodata. */

/* v - v is +0 for a finite v and NaN for inf or NaN (this needs IEEE
 * semantics: no -ffast-math, which would break NaN nodata everywhere). So
 * when the nodata value is NaN, v * ((v - v) + 1) is v itself (-0.0 kept)
 * or NaN, with no compare and no blend (PG__NANFIX, fused into the last
 * kernel of a chain). Other nodata values need the compare and blend. */
#define PG__FIXFLOAT(W, T)                                                                         \
    static PG__KERNEL void pg__fix_##W(void *restrict d_, double nd_, size_t n)                    \
    {                                                                                              \
        T *restrict d = d_;                                                                        \
        const T nd = (T)nd_;                                                                       \
        PG__LOOP(n, const T v = d[i]; d[i] = (v - v == (T)0) ? v : nd;);                           \
    }                                                                                              \
    static PG__KERNEL void pg__fixm_##W(void *restrict d_, const uint8_t *restrict bad,            \
                                        double nd_, size_t n)                                      \
    {                                                                                              \
        T *restrict d = d_;                                                                        \
        const T nd = (T)nd_;                                                                       \
        PG__LOOP(n, const T v = d[i]; d[i] = (!bad[i] && v - v == (T)0) ? v : nd;);                \
    }

PG__FIXFLOAT(f32, float)
PG__FIXFLOAT(f64, double)

static PG__KERNEL void pg__fixm_i32(void *restrict d_, const uint8_t *restrict bad, double nd_,
                                    size_t n)
{
    int32_t *restrict d = d_;
    const int32_t nd = (int32_t)nd_;
    PG__LOOP(n, d[i] = bad[i] ? nd : d[i];);
}

/* Work type -> a different output type (a forced "type", or i32 computed
 * in f64 because it may overflow). A cell is valid when unmasked and its
 * value v lies in [lo, hi] (which also rejects NaN and inf); valid values
 * are clamped to [cmin, cmax], rounded when the output is an integer, and
 * stored; others get the nodata value. */
typedef struct pg__fin {
    double lo, hi, cmin, cmax, nd;
    bool round;
} pg__fin;

#define PG__FINFN(W, WT, O, OT)                                                                    \
    static PG__KERNEL void pg__fin_##W##_##O(void *restrict out_, const void *restrict acc_,       \
                                             const uint8_t *restrict bad, const pg__fin *f,        \
                                             size_t n)                                             \
    {                                                                                              \
        OT *restrict out = out_;                                                                   \
        const WT *restrict acc = acc_;                                                             \
        const double lo = f->lo, hi = f->hi, cmin = f->cmin, cmax = f->cmax;                       \
        const OT nd = (OT)f->nd;                                                                   \
        const bool rnd = f->round;                                                                 \
        for (size_t i = 0; i < n; i++) {                                                           \
            double v = (double)acc[i];                                                             \
            bool ok = (bad == NULL || !bad[i]) && v >= lo && v <= hi;                              \
            v = v < cmin ? cmin : v > cmax ? cmax : v;                                             \
            if (rnd) v = round(v);                                                                 \
            out[i] = ok ? (OT)v : nd;                                                              \
        }                                                                                          \
    }

#define PG__FINFNS(W, WT)                                                                          \
    PG__FINFN(W, WT, u8, uint8_t)                                                                  \
    PG__FINFN(W, WT, i8, int8_t)                                                                   \
    PG__FINFN(W, WT, u16, uint16_t)                                                                \
    PG__FINFN(W, WT, i16, int16_t)                                                                 \
    PG__FINFN(W, WT, u32, uint32_t)                                                                \
    PG__FINFN(W, WT, i32, int32_t)                                                                 \
    PG__FINFN(W, WT, f32, float)                                                                   \
    PG__FINFN(W, WT, f64, double)

PG__FINFNS(i32, int32_t)
PG__FINFNS(f32, float)
PG__FINFNS(f64, double)

typedef void (*pg__finfn)(void *restrict, const void *restrict, const uint8_t *restrict,
                          const pg__fin *, size_t);
#define PG__FINROW(W)                                                                              \
    {                                                                                              \
        pg__fin_##W##_u8, pg__fin_##W##_i8, pg__fin_##W##_u16, pg__fin_##W##_i16,                  \
            pg__fin_##W##_u32, pg__fin_##W##_i32, pg__fin_##W##_f32, pg__fin_##W##_f64             \
    }
static const pg__finfn pg__finfns[3][PG_CELLTYPE_COUNT] = {PG__FINROW(i32), PG__FINROW(f32),
                                                           PG__FINROW(f64)};

/* ---- conversion of an arg's chunk to the work type ----
 * Always a widening, exact conversion (or u32/i32 -> f32, which the type
 * rules allow and which rounds to nearest). Written here rather than with
 * GDALCopyWords64: measured on 1024-cell chunks, GDAL 3.6's conversions are
 * as fast only for u8/u16 -> f32 (its SSE2 special cases) and 3 to 8 times
 * slower from i16, u32, i32 and f32 (5 us vs 45 us per 64K cells for
 * i16 -> i32); and GDAL 3.6 has no signed byte type at all. Only the
 * conversions the type rules can ask for exist (NULL elsewhere). */

#define PG__CONV(S, ST, W, WT)                                                                     \
    static PG__KERNEL void pg__conv_##S##_##W(void *restrict d_, const void *restrict s_,          \
                                              size_t n)                                            \
    {                                                                                              \
        WT *restrict d = d_;                                                                       \
        const ST *restrict s = s_;                                                                 \
        PG__LOOP(n, d[i] = (WT)s[i];);                                                             \
    }
#define PG__CONV_SMALL(S, ST)                                                                      \
    PG__CONV(S, ST, i32, int32_t) PG__CONV(S, ST, f32, float) PG__CONV(S, ST, f64, double)
PG__CONV_SMALL(u8, uint8_t)
PG__CONV_SMALL(i8, int8_t)
PG__CONV_SMALL(u16, uint16_t)
PG__CONV_SMALL(i16, int16_t)
PG__CONV(u32, uint32_t, f32, float)
PG__CONV(u32, uint32_t, f64, double)
PG__CONV(i32, int32_t, f32, float)
PG__CONV(i32, int32_t, f64, double)
PG__CONV(f32, float, f64, double)

typedef void (*pg__convfn)(void *restrict, const void *restrict, size_t);
#define PG__CONVROW(S)                                                                             \
    {                                                                                              \
        pg__conv_##S##_i32, pg__conv_##S##_f32, pg__conv_##S##_f64                                 \
    }
/* [source type][work: 0 i32, 1 f32, 2 f64] */
static const pg__convfn pg__convfns[PG_CELLTYPE_COUNT][3] = {
    [PG_U8] = PG__CONVROW(u8),
    [PG_I8] = PG__CONVROW(i8),
    [PG_U16] = PG__CONVROW(u16),
    [PG_I16] = PG__CONVROW(i16),
    [PG_U32] = {NULL, pg__conv_u32_f32, pg__conv_u32_f64},
    [PG_I32] = {NULL, pg__conv_i32_f32, pg__conv_i32_f64},
    [PG_F32] = {NULL, NULL, pg__conv_f32_f64},
    [PG_F64] = {NULL, NULL, NULL},
};

/* ---- plan ---- */

typedef struct pg__larg {
    bool raster;
    bool mask;         /* raster whose nodata value can occur in its type */
    pg_celltype type;  /* raster */
    double mask_value; /* the nodata value as stored in the arg's type */
} pg__larg;

typedef struct pg__lplan {
    pg__opk op;
    pg_celltype work, out;
    bool direct;    /* out == work: the accumulator is the output tile */
    bool fix;       /* direct, float work: non-finite -> nodata */
    bool fused;     /* fix done by the last kernel (nodata NaN, no mask) */
    bool any_mask;  /* some arg has a mask */
    pg__fin fin;    /* !direct */
    double nd;      /* output nodata (when it has one) */
    double konst;   /* add/multiply: the folded number args */
    bool has_konst; /* add/multiply: there are number args */
    int nargs;
    int nras;        /* raster args ... */
    int *ras;        /* ... their indices, in order (points into this block) */
    pg__larg args[]; /* nargs */
} pg__lplan;

typedef struct pg__iv {
    double lo, hi;
} pg__iv;

static pg__iv pg__iv_apply(pg__opk op, pg__iv a, pg__iv b)
{
    pg__iv r;
    switch (op) {
    case PG__ADD:
        r.lo = a.lo + b.lo;
        r.hi = a.hi + b.hi;
        break;
    case PG__SUB:
        r.lo = a.lo - b.hi;
        r.hi = a.hi - b.lo;
        break;
    default: {
        double c[4] = {a.lo * b.lo, a.lo * b.hi, a.hi * b.lo, a.hi * b.hi};
        r.lo = INFINITY;
        r.hi = -INFINITY;
        for (int k = 0; k < 4; k++) {
            if (isnan(c[k])) return (pg__iv){-INFINITY, INFINITY}; /* 0 * inf */
            r.lo = fmin(r.lo, c[k]);
            r.hi = fmax(r.hi, c[k]);
        }
        break;
    }
    }
    if (isnan(r.lo) || isnan(r.hi)) return (pg__iv){-INFINITY, INFINITY}; /* inf - inf */
    return r;
}

/* The hull of every value the kernels hold in the work type: each operand
 * (a raster's type range, a number, the folded constant) and each
 * intermediate result, in evaluation order. Only called when every raster
 * arg is an integer type (float args make undefined cells possible anyway). */
static pg__iv pg__iv_eval(const pg_node *n, pg__opk op, double konst, bool has_konst)
{
    pg__iv hull = {INFINITY, -INFINITY}, acc = {0, 0};
    bool first = true;
    for (int a = 0; a <= n->nargs; a++) {
        pg__iv x;
        if (a == n->nargs) {
            if (!has_konst) break;
            x = (pg__iv){konst, konst}; /* add/multiply: applied last */
        } else if (n->args[a].ref != NULL) {
            pg_celltype t = n->args[a].ref->info.type;
            x = (pg__iv){pg_celltype_min(t), pg_celltype_max(t)};
        } else if (op == PG__ADD || op == PG__MUL) {
            continue; /* folded into konst */
        } else {
            x = (pg__iv){n->args[a].number, n->args[a].number};
        }
        acc = first ? x : pg__iv_apply(op, acc, x);
        first = false;
        hull.lo = fmin(hull.lo, fmin(x.lo, acc.lo));
        hull.hi = fmax(hull.hi, fmax(x.hi, acc.hi));
    }
    return hull;
}

static bool pg__small_int(pg_celltype t)
{
    return t == PG_U8 || t == PG_I8 || t == PG_U16 || t == PG_I16;
}

/* The natural result type (the rules at the top of this file). */
static pg_celltype pg__natural_type(const pg_node *n, pg__opk op)
{
    bool any_f64 = false, any_f32 = false, any_int32 = false, all_small = true;
    bool all_small_or_f32 = true, frac_number = false;
    for (int a = 0; a < n->nargs; a++) {
        if (n->args[a].ref == NULL) {
            double x = n->args[a].number;
            if (x != trunc(x)) frac_number = true;
            continue;
        }
        pg_celltype t = n->args[a].ref->info.type;
        any_f64 |= t == PG_F64;
        any_f32 |= t == PG_F32;
        any_int32 |= t == PG_U32 || t == PG_I32;
        all_small &= pg__small_int(t);
        all_small_or_f32 &= pg__small_int(t) || t == PG_F32;
    }
    if (op == PG__DIV) return all_small_or_f32 ? PG_F32 : PG_F64;
    if (any_f64 || (any_f32 && any_int32)) return PG_F64;
    if (any_f32 || frac_number) return PG_F32;
    return all_small ? PG_I32 : PG_F64;
}

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

static void pg__local_free(pg_node *n)
{
    free(n->state);
    n->state = NULL;
}

static int pg__local_plan(pg_node *n, pg__opk op, pg_error *err)
{
    const char *name = pg__opname[op];
    int first = -1;
    bool any_float = false, any_nodata = false;
    for (int a = 0; a < n->nargs; a++) {
        const pg_node *r = n->args[a].ref;
        if (r == NULL) continue;
        if (r->op != NULL && r->op->result != PG_RESULT_RASTER)
            return pg_error_set(err, PG_ETYPE, "%s: args[%d] is not a raster", name, a);
        any_float |= pg_celltype_is_float(r->info.type);
        any_nodata |= r->info.has_nodata;
        if (first < 0) {
            first = a;
            continue;
        }
        const pg_raster_info *fi = &n->args[first].ref->info;
        if (fi->bands != r->info.bands || !pg_raster_same_grid(fi, &r->info)) {
            char why[96];
            pg__grid_diff(fi, &r->info, why, sizeof why);
            return pg_error_set(err, PG_EGRID,
                                "%s: args[%d] and args[%d] are not on the same grid (%s)", name,
                                first, a, why);
        }
    }
    if (first < 0)
        return pg_error_set(err, PG_ETYPE,
                            "%s: at least one arg must be a raster, got only numbers", name);

    pg_celltype natural = pg__natural_type(n, op);
    pg_celltype out = natural;
    bool forced = false;
    const char *tname = pg_param_str(n, "type");
    if (tname != NULL) {
        if (pg_celltype_parse(tname, &out) != 0)
            return pg_error_set(err, PG_EPARAM, "%s: unknown cell type '%s'", name, tname);
        forced = out != natural;
    }

    /* Number args of add and multiply are folded, in arg order. */
    double konst = op == PG__MUL ? 1.0 : 0.0;
    bool has_konst = false;
    if (op == PG__ADD || op == PG__MUL) {
        for (int a = 0; a < n->nargs; a++) {
            if (n->args[a].ref != NULL) continue;
            konst = op == PG__ADD ? konst + n->args[a].number : konst * n->args[a].number;
            has_konst = true;
        }
    }

    /* Which undefined results are possible, and the work type. */
    pg_celltype work = natural;
    bool undefined = op == PG__DIV || any_float;
    bool range_check = false;
    if (!any_float && op != PG__DIV) {
        pg__iv hull = pg__iv_eval(n, op, konst, has_konst);
        double wmin = natural == PG_I32 ? INT32_MIN : natural == PG_F32 ? -FLT_MAX : -DBL_MAX;
        double wmax = natural == PG_I32 ? INT32_MAX : natural == PG_F32 ? FLT_MAX : DBL_MAX;
        if (!(hull.lo >= wmin && hull.hi <= wmax)) {
            if (natural == PG_I32) {
                /* Compute in f64 (exact for these operands, and overflow is
                 * detected exactly since 2^31 is a double), then either
                 * range-check into i32 or clamp into the forced type. */
                work = PG_F64;
                range_check = !forced;
                undefined |= !forced || !(hull.lo >= -DBL_MAX && hull.hi <= DBL_MAX);
            } else {
                undefined = true;
            }
        }
    }

    bool has_nd = any_nodata || undefined;
    const pg_raster_info *fi = &n->args[first].ref->info;
    double nd = 0.0;
    if (has_nd)
        nd = fi->has_nodata && pg_celltype_holds(out, fi->nodata) ? fi->nodata
                                                                  : pg_celltype_default_nodata(out);

    /* One block (free_state is a plain free): the struct, args[], ras[]. */
    pg__lplan *p = calloc(1, sizeof *p + (size_t)n->nargs * (sizeof p->args[0] + sizeof(int)));
    if (p == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    p->ras = (int *)(void *)&p->args[n->nargs];
    p->op = op;
    p->work = work;
    p->out = out;
    p->direct = out == work;
    p->fix = p->direct && has_nd && pg_celltype_is_float(work);
    p->nd = nd;
    p->konst = konst;
    p->has_konst = has_konst;
    p->nargs = n->nargs;
    for (int a = 0; a < n->nargs; a++) {
        const pg_node *r = n->args[a].ref;
        pg__larg *la = &p->args[a];
        if (r == NULL) continue;
        if (r->info.type != work && pg__convfns[r->info.type][pg__work_index(work)] == NULL) {
            free(p);
            return pg_error_set(err, PG_EINTERNAL, "%s: no conversion from %s to %s", name,
                                pg_celltype_name(r->info.type), pg_celltype_name(work));
        }
        p->ras[p->nras++] = a;
        la->raster = true;
        la->type = r->info.type;
        if (!r->info.has_nodata || isnan(r->info.nodata)) continue; /* NaN propagates by itself */
        double v = r->info.nodata;
        if (la->type == PG_F32) {
            /* GDAL's convention: an f32 band's nodata is the double rounded
             * to f32. */
            if (isinf(v) || fabs(v) <= FLT_MAX) {
                la->mask = true;
                la->mask_value = (double)(float)v;
            }
        } else if (pg_celltype_holds(la->type, v)) {
            la->mask = true;
            la->mask_value = v;
        }
        p->any_mask |= la->mask;
    }
    p->fused = p->fix && !p->any_mask && isnan(nd);
    if (!p->direct) {
        p->fin.lo = range_check ? INT32_MIN : -DBL_MAX;
        p->fin.hi = range_check ? INT32_MAX : DBL_MAX;
        p->fin.cmin = pg_celltype_is_float(out) ? (out == PG_F32 ? -FLT_MAX : -DBL_MAX)
                                                : pg_celltype_min(out);
        p->fin.cmax =
            pg_celltype_is_float(out) ? (out == PG_F32 ? FLT_MAX : DBL_MAX) : pg_celltype_max(out);
        p->fin.round = !pg_celltype_is_float(out);
        p->fin.nd = has_nd ? nd : 0.0;
    }

    pg_raster_info_clear(&n->info);
    if (pg_raster_info_copy(&n->info, fi) != 0) {
        free(p);
        return pg_error_set(err, PG_ENOMEM, "out of memory");
    }
    n->info.type = out;
    n->info.has_nodata = has_nd;
    n->info.nodata = has_nd ? nd : 0.0;
    if (n->state != NULL) pg__local_free(n);
    n->state = p;
    return 0;
}

static int pg__add_plan(pg_node *n, const pg_plan_env *env, pg_error *err)
{
    (void)env;
    return pg__local_plan(n, PG__ADD, err);
}

static int pg__sub_plan(pg_node *n, const pg_plan_env *env, pg_error *err)
{
    (void)env;
    return pg__local_plan(n, PG__SUB, err);
}

static int pg__mul_plan(pg_node *n, const pg_plan_env *env, pg_error *err)
{
    (void)env;
    return pg__local_plan(n, PG__MUL, err);
}

static int pg__div_plan(pg_node *n, const pg_plan_env *env, pg_error *err)
{
    (void)env;
    return pg__local_plan(n, PG__DIV, err);
}

/* ---- compute ---- */

/* Arg A's chunk [off, off+len) in the work type: in place, or converted
 * into BUF. */
static const void *pg__operand(const pg__lplan *p, int a, pg_tile *const *in, size_t off,
                               size_t len, void *buf)
{
    pg_celltype t = p->args[a].type;
    const char *src = (const char *)in[a]->data + off * pg_celltype_size(t);
    if (t == p->work) return src;
    pg__convfns[t][pg__work_index(p->work)](buf, src, len);
    return buf;
}

static int pg__local_compute(const pg_node *n, pg_tile *out, pg_tile *const *in, pg_error *err)
{
    const pg__lplan *p = n->state;
    const char *name = pg__opname[p->op];
    if (out->type != p->out || out->win.w < 0 || out->win.h < 0)
        return pg_error_set(err, PG_EINTERNAL, "%s: output tile of the wrong type", name);
    const size_t ncell = (size_t)out->bands * (size_t)out->win.w * (size_t)out->win.h;
    for (int a = 0; a < p->nargs; a++) {
        if (!p->args[a].raster) continue;
        const pg_tile *t = in[a];
        if (t == NULL || t->type != p->args[a].type ||
            (size_t)t->bands * (size_t)t->win.w * (size_t)t->win.h != ncell)
            return pg_error_set(err, PG_EINTERNAL, "%s: args[%d]'s tile does not match the output",
                                name, a);
    }

    const pg__kern *k = &pg__kerns[pg__work_index(p->work)][p->op];
    const pg__kern *kl = p->fused ? &pg__kerns_nan[p->work == PG_F32 ? 0 : 1][p->op] : k;
    const size_t osize = pg_celltype_size(p->out);
    _Alignas(64) unsigned char accbuf[PG__CHUNK * sizeof(double)];
    _Alignas(64) unsigned char buf0[PG__CHUNK * sizeof(double)];
    _Alignas(64) unsigned char buf1[PG__CHUNK * sizeof(double)];
    _Alignas(64) unsigned char buf2[PG__CHUNK * sizeof(double)];
    _Alignas(64) uint8_t bad[PG__CHUNK];

    for (size_t off = 0; off < ncell; off += PG__CHUNK) {
        const size_t len = ncell - off < PG__CHUNK ? ncell - off : PG__CHUNK;
        char *outp = (char *)out->data + off * osize;
        void *acc = p->direct ? (void *)outp : (void *)accbuf;

        /* KL: the kernels for the last step of the chain (fused fix-up). */
        if (p->op == PG__ADD || p->op == PG__MUL) {
            const int *r = p->ras, nr = p->nras;
            if (nr == 1) {
                kl->vs(acc, pg__operand(p, r[0], in, off, len, buf0), p->konst, len);
            } else {
                /* steps: vv or vvv, then acc2 per pair, acc for an odd one,
                 * accs for the constant */
                const int j0 = nr == 2 ? 2 : 3, rest = nr - j0;
                const int nsteps = 1 + rest / 2 + rest % 2 + (p->has_konst ? 1 : 0);
                int step = 0, j = j0;
#define PG__K (++step == nsteps ? kl : k)
                const void *x = pg__operand(p, r[0], in, off, len, buf0);
                const void *y = pg__operand(p, r[1], in, off, len, buf1);
                if (nr == 2)
                    PG__K->vv(acc, x, y, len);
                else
                    PG__K->vvv(acc, x, y, pg__operand(p, r[2], in, off, len, buf2), len);
                for (; j + 1 < nr; j += 2) {
                    PG__K->acc2(acc, pg__operand(p, r[j], in, off, len, buf0),
                                pg__operand(p, r[j + 1], in, off, len, buf1), len);
                }
                if (j < nr) PG__K->acc(acc, pg__operand(p, r[j], in, off, len, buf0), len);
                if (p->has_konst) PG__K->accs(acc, p->konst, len);
#undef PG__K
            }
        } else if (p->args[0].raster && p->args[1].raster) {
            kl->vv(acc, pg__operand(p, 0, in, off, len, buf0),
                   pg__operand(p, 1, in, off, len, buf1), len);
        } else if (p->args[0].raster) {
            kl->vs(acc, pg__operand(p, 0, in, off, len, buf0), n->args[1].number, len);
        } else {
            kl->sv(acc, n->args[0].number, pg__operand(p, 1, in, off, len, buf1), len);
        }

        if (p->any_mask) {
            memset(bad, 0, len);
            for (int a = 0; a < p->nargs; a++) {
                const pg__larg *la = &p->args[a];
                if (!la->mask) continue;
                const char *src = (const char *)in[a]->data + off * pg_celltype_size(la->type);
                pg__maskfns[la->type](bad, src, la->mask_value, len);
            }
        }

        if (!p->direct) {
            pg__finfns[pg__work_index(p->work)][p->out](outp, acc, p->any_mask ? bad : NULL,
                                                        &p->fin, len);
        } else if (p->fix && !p->fused) {
            const bool f32 = p->work == PG_F32;
            if (p->any_mask) {
                if (f32)
                    pg__fixm_f32(acc, bad, p->nd, len);
                else
                    pg__fixm_f64(acc, bad, p->nd, len);
            } else {
                if (f32)
                    pg__fix_f32(acc, p->nd, len);
                else
                    pg__fix_f64(acc, p->nd, len);
            }
        } else if (p->any_mask) {
            pg__fixm_i32(acc, bad, p->nd, len); /* direct integer work type is i32 */
        }
    }
    return 0;
}

/* ---- the table ---- */

static const pg_param_def pg__local_params[] = {
    {.name = "type",
     .type = PG_PARAM_CELLTYPE,
     .required = false,
     .default_json = NULL,
     .doc = "Output cell type (u8 ... f64). Default: the natural type of the operation (see the "
            "op's doc). The result is computed in the natural type, then converted: clamped to "
            "the type's range and rounded to nearest (halves away from zero) for integer types; "
            "clamped to +-3.4e38 for f32. Nodata cells stay nodata."},
    {0},
};

#define PG__LOCAL_RULES                                                                            \
    " Numbers are weak: they do not widen the type, except that a non-integer number makes an "    \
    "integer result f32. A cell is nodata if it is nodata (or NaN) in any raster arg or the "      \
    "operation is undefined there (division by zero, a non-finite result, an integer result out "  \
    "of range without an explicit 'type'). The output nodata value is the first raster arg's if "  \
    "the output type holds it, else the type's default (NaN for floats, min for signed, max for "  \
    "unsigned integers); the output has none when no arg has one and no cell can be undefined. "   \
    "All raster args must share one grid and band count (grid_mismatch otherwise)."

const pg_op_def pg_ops_local[] = {
    {
        .name = "local.add",
        .family = "local",
        .doc = "Cell-by-cell sum of two or more args, each a raster or a number (at least one "
               "raster). Result type: f64 if any raster is f64 or f32 is combined with u32/i32; "
               "else f32 if any raster is f32 or any number has a fraction; else i32 if every "
               "raster is 8- or 16-bit; else f64. Numbers are added together first, then the "
               "rasters left to right, then that constant." PG__LOCAL_RULES,
        .example = "{\"op\": \"local.add\", \"args\": [{\"ref\": \"a\"}, {\"ref\": \"b\"}, 2.5]}",
        .min_args = 2,
        .max_args = -1,
        .arg_kinds = PG_ARGK_RASTER | PG_ARGK_NUMBER,
        .params = pg__local_params,
        .result = PG_RESULT_RASTER,
        .plan = pg__add_plan,
        .compute = pg__local_compute,
        .free_state = pg__local_free,
        .elementwise = true,
    },
    {
        .name = "local.subtract",
        .family = "local",
        .doc = "Cell-by-cell difference args[0] - args[1], each a raster or a number (at least "
               "one raster). Result type as for local.add: f64 if any raster is f64 or f32 is "
               "combined with u32/i32; else f32 if any raster is f32 or the number has a "
               "fraction; else i32 if every raster is 8- or 16-bit; else f64." PG__LOCAL_RULES,
        .example =
            "{\"op\": \"local.subtract\", \"args\": [{\"ref\": \"nir\"}, {\"ref\": \"red\"}], "
            "\"type\": \"f32\"}",
        .min_args = 2,
        .max_args = 2,
        .arg_kinds = PG_ARGK_RASTER | PG_ARGK_NUMBER,
        .params = pg__local_params,
        .result = PG_RESULT_RASTER,
        .plan = pg__sub_plan,
        .compute = pg__local_compute,
        .free_state = pg__local_free,
        .elementwise = true,
    },
    {
        .name = "local.multiply",
        .family = "local",
        .doc = "Cell-by-cell product of two or more args, each a raster or a number (at least one "
               "raster). Result type as for local.add: f64 if any raster is f64 or f32 is "
               "combined with u32/i32; else f32 if any raster is f32 or any number has a "
               "fraction; else i32 if every raster is 8- or 16-bit (products that overflow i32 "
               "are nodata); else f64. Numbers are multiplied together first, then the rasters "
               "left to right, then that constant." PG__LOCAL_RULES,
        .example = "{\"op\": \"local.multiply\", \"args\": [{\"ref\": \"dem\"}, 0.3048]}",
        .min_args = 2,
        .max_args = -1,
        .arg_kinds = PG_ARGK_RASTER | PG_ARGK_NUMBER,
        .params = pg__local_params,
        .result = PG_RESULT_RASTER,
        .plan = pg__mul_plan,
        .compute = pg__local_compute,
        .free_state = pg__local_free,
        .elementwise = true,
    },
    {
        .name = "local.divide",
        .family = "local",
        .doc = "Cell-by-cell quotient args[0] / args[1], each a raster or a number (at least one "
               "raster). Result type: f32 if every raster is 8/16-bit or f32, else f64 (never an "
               "integer type unless 'type' says so). Division by zero and non-finite quotients "
               "are nodata, so the output always has a nodata value." PG__LOCAL_RULES,
        .example = "{\"op\": \"local.divide\", \"args\": [{\"ref\": \"a\"}, {\"ref\": \"b\"}]}",
        .min_args = 2,
        .max_args = 2,
        .arg_kinds = PG_ARGK_RASTER | PG_ARGK_NUMBER,
        .params = pg__local_params,
        .result = PG_RESULT_RASTER,
        .plan = pg__div_plan,
        .compute = pg__local_compute,
        .free_state = pg__local_free,
        .elementwise = true,
    },
    {0},
};
