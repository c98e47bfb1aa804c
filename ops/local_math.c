/* Local (cell-by-cell) functions, comparisons, logic and conditionals:
 *   n-ary:       local.min, local.max, local.mean
 *   binary:      local.pow, local.atan2
 *   unary:       local.negate, local.abs, local.sqrt, local.log, local.log10,
 *                local.exp, local.floor, local.ceil, local.round, local.sin,
 *                local.cos, local.tan
 *   comparisons: local.eq, local.ne, local.lt, local.le, local.gt, local.ge
 *   logic:       local.and, local.or, local.xor (n-ary), local.not
 *   bitwise:     local.bitand, local.bitor, local.bitxor (n-ary),
 *                local.bitnot, local.shl, local.shr
 *   other:       local.where(cond, a, b), local.defined, local.undefined
 * Every op takes at least one raster arg; raster args must share one grid
 * and band count (PG_EGRID otherwise, as in ops/local.c).
 *
 * TYPE RULES. Numbers are "weak" where said.
 *  - Float functions (sqrt, log, log10, exp, sin, cos, tan, atan2, pow,
 *    mean): f32 when every raster arg is 8/16-bit or f32, else f64 (numbers
 *    never change it). sqrt ... atan2 compute in the output type (f32 args
 *    and numbers rounded to f32, f32 libm functions); mean and pow compute
 *    in f64 and round the result once.
 *  - Value ops (min, max, where's a and b, floor, ceil, round, abs): the
 *    COMMON TYPE, the smallest of our types that holds every input value
 *    exactly: equal types stay; anything with f64 is f64; f32 with an
 *    8/16-bit integer is f32, with a 32-bit integer f64; two signed or two
 *    unsigned integers give the wider; a signed and an unsigned integer give
 *    the signed one if it is wider, else the next wider signed type (u8 ->
 *    i16, u16 -> i32, u32 -> f64). A number counts as the smallest type that
 *    holds it (0..255 u8, -128..-1 i8, then u16, i16, u32, i32, else f64),
 *    and a number with a fraction as f32. These ops only ever return one of
 *    their inputs (or its integral part), so unlike local.add's type
 *    (8/16-bit sums -> i32) they need no headroom: min(u8, u8) is u8,
 *    floor(i16) is i16, where(c, u8, 0) is u8, and u32 values are never
 *    rounded through f32.
 *    local.abs keeps its arg's type; abs of the most negative value of a
 *    signed type (-128, -32768, -2^31) has no value in that type and is
 *    nodata. local.negate: signed and float types keep their type (negate of
 *    the most negative value is nodata, as for abs); unsigned types widen so
 *    that every negation fits: u8 -> i16, u16 -> i32, u32 -> f64.
 *  - Comparisons and logic: u8 0/1 (nodata 255). A comparison compares the
 *    exact values: it is done in i32, f32 or f64, the first that holds every
 *    raster type and every number exactly (so u8 > 0.5 is not u8 > 0).
 *  - Bitwise ops (integer rasters only; f32/f64 rasters and numbers with a
 *    fraction are PG_ETYPE): the integer promotion of the raster types:
 *    the same type if equal, else the wider, signed if either is signed
 *    (u8 & i8 -> i8, u8 & i16 -> i16, u32 & i16 -> i32). Operands are taken
 *    as bit patterns (converted as C converts integers, modulo 2^N); a
 *    number must be an integer in [-2^(N-1), 2^N - 1] for the N-bit result
 *    (PG_EPARAM otherwise) and is used as its low N bits. shl/shr shift a
 *    raster by a number 0..31 (PG_EPARAM otherwise): bits shifted past the
 *    type are lost; shr is arithmetic (sign-filling) on signed types,
 *    logical on unsigned ones; a shift by N or more gives 0 (or -1 for a
 *    negative signed value under shr).
 *  - local.defined / local.undefined: u8 1/0, no nodata.
 * The optional param "type" (float functions, value ops, negate, where)
 * forces the output type as local.add's does: the result is computed in
 * the natural type, then clamped to the forced type's range and rounded to
 * nearest (halves away from zero) for integer types; nodata cells stay
 * nodata, out-of-range values are clamped, never nodata.
 *
 * NODATA RULES.
 *  - A cell of a raster arg is nodata when it equals the arg's nodata value
 *    (compared in the arg's type; for f32 the value rounded to f32, as GDAL
 *    does) or is NaN.
 *  - Float functions and value ops: an output cell is nodata when any raster
 *    arg is nodata there (where: when cond is, or the branch it picks is;
 *    the other branch does not matter), or the result is undefined: not
 *    finite (sqrt(-1), log(0), pow overflow, an f32 result beyond FLT_MAX;
 *    an inf result from an inf input too: max(inf, 1) is nodata, min(inf,
 *    1) is 1; atan2(0, 0) is 0, which is defined), or abs/negate of the most negative signed value.
 * The output has a nodata value when a raster arg has one or is a float raster, for abs/negate of
 * signed types, and always for the float functions. That value is the first raster arg's nodata if
 * the output type holds it exactly (where: a's if a has one the type holds, else b's), else the
 * type's default (NaN for floats, min for signed, max for unsigned integers).
 *  - Comparisons and logic: 255 where any raster arg is nodata. The output
 *    has nodata 255 when some raster arg has a nodata value or is a float
 *    raster (NaN), else none.
 *  - Bitwise: nodata where any raster arg is nodata; the value as for value
 *    ops (first raster arg's if the type holds it, else the default).
 *  - A valid result equal to the output's nodata value reads as nodata
 *    (unavoidable with in-band nodata).
 *
 * EVALUATION ORDER. min/max fold their numbers into one constant, combine the
 * rasters, then the constant (exact in any order). mean sums the rasters left
 * to right in f64, adds the sum of its numbers (summed first, in arg order),
 * and divides by the number of args. Logic and bitwise n-ary ops fold their
 * numbers likewise.
 *
 * COMPUTE. As in ops/local.c: a tile is one flat array processed in chunks
 * of PG__CHUNK cells; each arg is converted to the work type (i32, f32 or
 * f64; u32 bit patterns for bitwise ops) by typed loops, or read in place.
 * Nodata: ops that carry NaN to their result (all float functions but pow,
 * min/max/abs/... in a float work type, where's branches) get float args'
 * NaN for free, and an arg's nodata value is turned into NaN while it is
 * converted to a float work type; the final pass then makes every
 * non-finite result nodata. Other cases (integer work types, pow,
 * comparisons, logic, where's cond, bitwise) use a byte mask per chunk,
 * built only for args that can have nodata cells. Kernels are typed loops
 * in fixed blocks that GCC vectorises (kept out of line: inlined into the
 * compute function they vectorised worse), except per-cell libm calls (log,
 * sin, pow, f64 floor/round ...). sqrt uses SSE2/AVX intrinsics: without
 * -fno-math-errno (not ours to set) GCC will not vectorise sqrtf. f32
 * floor/ceil/round use the 2^23 rounding trick, exact and vectorisable
 * without SSE4.1.
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
#if defined(__AVX__)
#include <immintrin.h>
#elif defined(__SSE2__)
#include <emmintrin.h>
#endif

/* Cells per chunk (see ops/local.c): scratch stays in L1/L2. */
#define PG__CHUNK 1024
/* Inner block of the kernels: a compile-time trip count. */
#define PG__VB 16

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

/* Kernels stay separate functions: inlined into the big compute function,
 * GCC vectorised several of them worse (measured: where with a nodata mask
 * 82 us per 256x256 tile inlined, 33 us not). */
/* They also get AVX-512 and AVX2 clones (see PG__KERNEL in ops/local.c:
 * same bytes on every CPU, no FMA contraction in ISO C mode). */
#if defined(__GNUC__) && defined(__x86_64__) && defined(__gnu_linux__) && !defined(__clang__)
#if defined(__STRICT_ANSI__)
#define PG__NOINLINE __attribute__((noinline, target_clones("arch=x86-64-v4", "avx2", "default")))
#else
#define PG__NOINLINE __attribute__((noinline, target_clones("avx2", "default")))
#endif
#elif defined(__GNUC__)
#define PG__NOINLINE __attribute__((noinline))
#else
#define PG__NOINLINE
#endif

/* ---- the ops ---- */

typedef enum {
    PG__MIN,
    PG__MAX,
    PG__MEAN,
    PG__POW,
    PG__ATAN2,
    PG__NEG,
    PG__ABS,
    PG__SQRT,
    PG__LOG,
    PG__LOG10,
    PG__EXP,
    PG__FLOOR,
    PG__CEIL,
    PG__ROUND,
    PG__SIN,
    PG__COS,
    PG__TAN,
    PG__EQ,
    PG__NE,
    PG__LT,
    PG__LE,
    PG__GT,
    PG__GE,
    PG__AND,
    PG__OR,
    PG__XOR,
    PG__NOT,
    PG__BAND,
    PG__BOR,
    PG__BXOR,
    PG__BNOT,
    PG__SHL,
    PG__SHR,
    PG__WHERE,
    PG__DEFINED,
    PG__UNDEFINED,
    PG__NOPS
} pg__mop;

typedef enum {
    PG__CFLOAT, /* float functions */
    PG__CVALUE, /* min, max, negate, abs, floor, ceil, round, where */
    PG__CCMP,
    PG__CLOGIC,
    PG__CBIT,
    PG__CDEF,
} pg__cat;

static const struct {
    const char *name;
    pg__cat cat;
} pg__mops[PG__NOPS] = {
    [PG__MIN] = {"local.min", PG__CVALUE},       [PG__MAX] = {"local.max", PG__CVALUE},
    [PG__MEAN] = {"local.mean", PG__CFLOAT},     [PG__POW] = {"local.pow", PG__CFLOAT},
    [PG__ATAN2] = {"local.atan2", PG__CFLOAT},   [PG__NEG] = {"local.negate", PG__CVALUE},
    [PG__ABS] = {"local.abs", PG__CVALUE},       [PG__SQRT] = {"local.sqrt", PG__CFLOAT},
    [PG__LOG] = {"local.log", PG__CFLOAT},       [PG__LOG10] = {"local.log10", PG__CFLOAT},
    [PG__EXP] = {"local.exp", PG__CFLOAT},       [PG__FLOOR] = {"local.floor", PG__CVALUE},
    [PG__CEIL] = {"local.ceil", PG__CVALUE},     [PG__ROUND] = {"local.round", PG__CVALUE},
    [PG__SIN] = {"local.sin", PG__CFLOAT},       [PG__COS] = {"local.cos", PG__CFLOAT},
    [PG__TAN] = {"local.tan", PG__CFLOAT},       [PG__EQ] = {"local.eq", PG__CCMP},
    [PG__NE] = {"local.ne", PG__CCMP},           [PG__LT] = {"local.lt", PG__CCMP},
    [PG__LE] = {"local.le", PG__CCMP},           [PG__GT] = {"local.gt", PG__CCMP},
    [PG__GE] = {"local.ge", PG__CCMP},           [PG__AND] = {"local.and", PG__CLOGIC},
    [PG__OR] = {"local.or", PG__CLOGIC},         [PG__XOR] = {"local.xor", PG__CLOGIC},
    [PG__NOT] = {"local.not", PG__CLOGIC},       [PG__BAND] = {"local.bitand", PG__CBIT},
    [PG__BOR] = {"local.bitor", PG__CBIT},       [PG__BXOR] = {"local.bitxor", PG__CBIT},
    [PG__BNOT] = {"local.bitnot", PG__CBIT},     [PG__SHL] = {"local.shl", PG__CBIT},
    [PG__SHR] = {"local.shr", PG__CBIT},         [PG__WHERE] = {"local.where", PG__CVALUE},
    [PG__DEFINED] = {"local.defined", PG__CDEF}, [PG__UNDEFINED] = {"local.undefined", PG__CDEF},
};

/* Work types of the arithmetic kernels: index 0 i32, 1 f32, 2 f64. */
static int pg__widx(pg_celltype w)
{
    return w == PG_I32 ? 0 : w == PG_F32 ? 1 : 2;
}

/* A number in a work type. Integers: plan() proved it fits. f32: saturates
 * to inf (an out-of-range double -> float conversion is undefined in C). */
static inline int32_t pg__s_i32(double s)
{
    return (int32_t)s;
}

static inline float pg__s_f32(double s)
{
    if (s > FLT_MAX) return INFINITY;
    if (s < -FLT_MAX) return -INFINITY;
    return (float)s;
}

static inline double pg__s_f64(double s)
{
    return s;
}

/* ---- conversions of an arg's chunk to a work type ----
 * Only the exact widenings the type rules can ask for (see ops/local.c for
 * why these are written here rather than with GDALCopyWords64). */

#define PG__CONV(S, ST, W, WT)                                                                     \
    static PG__NOINLINE void pg__conv_##S##_##W(void *restrict d_, const void *restrict s_,        \
                                                size_t n)                                          \
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
PG__CONV(u32, uint32_t, f64, double)
PG__CONV(i32, int32_t, f64, double)
PG__CONV(f32, float, f64, double)

typedef void (*pg__convfn)(void *restrict, const void *restrict, size_t);
#define PG__CONVROW(S)                                                                             \
    {                                                                                              \
        pg__conv_##S##_i32, pg__conv_##S##_f32, pg__conv_##S##_f64                                 \
    }
/* [source type][work index]; NULL: never asked for (or in place). */
static const pg__convfn pg__convfns[PG_CELLTYPE_COUNT][3] = {
    [PG_U8] = PG__CONVROW(u8),
    [PG_I8] = PG__CONVROW(i8),
    [PG_U16] = PG__CONVROW(u16),
    [PG_I16] = PG__CONVROW(i16),
    [PG_U32] = {NULL, NULL, pg__conv_u32_f64},
    [PG_I32] = {NULL, NULL, pg__conv_i32_f64},
    [PG_F32] = {NULL, NULL, pg__conv_f32_f64},
    [PG_F64] = {NULL, NULL, NULL},
};

/* Nodata -> NaN in a float work type, for ops that carry NaN to a
 * non-finite result (then nodata): one same-width pass instead of a byte
 * mask and a masked final pass. In place after a conversion, or as the copy
 * of an arg already in the work type. (A select whose arm holds the
 * conversion itself is not vectorised: GCC will not if-convert a
 * conversion that may raise an FP exception.) */
#define PG__NANSUB(W, T)                                                                           \
    static PG__NOINLINE void pg__nansub_##W(void *restrict d_, double nd_, size_t n)               \
    {                                                                                              \
        T *restrict d = d_;                                                                        \
        const T nd = (T)nd_, qnan = (T)NAN;                                                        \
        PG__LOOP(n, const T v = d[i]; d[i] = v == nd ? qnan : v;);                                 \
    }                                                                                              \
    static PG__NOINLINE void pg__nansubc_##W(void *restrict d_, const void *restrict s_,           \
                                             double nd_, size_t n)                                 \
    {                                                                                              \
        T *restrict d = d_;                                                                        \
        const T *restrict s = s_;                                                                  \
        const T nd = (T)nd_, qnan = (T)NAN;                                                        \
        PG__LOOP(n, const T v = s[i]; d[i] = v == nd ? qnan : v;);                                 \
    }
PG__NANSUB(f32, float)
PG__NANSUB(f64, double)

/* To u32 bit patterns for the bitwise ops: sign-extended from signed types.
 * u32 and i32 are read in place (same bits; signed/unsigned variants may
 * alias). */
#define PG__CONVB(S, ST)                                                                           \
    static PG__NOINLINE void pg__convb_##S(void *restrict d_, const void *restrict s_, size_t n)   \
    {                                                                                              \
        uint32_t *restrict d = d_;                                                                 \
        const ST *restrict s = s_;                                                                 \
        PG__LOOP(n, d[i] = (uint32_t)(int32_t)s[i];);                                              \
    }
PG__CONVB(u8, uint8_t)
PG__CONVB(i8, int8_t)
PG__CONVB(u16, uint16_t)
PG__CONVB(i16, int16_t)
static const pg__convfn pg__convbfns[PG_CELLTYPE_COUNT] = {
    [PG_U8] = pg__convb_u8,
    [PG_I8] = pg__convb_i8,
    [PG_U16] = pg__convb_u16,
    [PG_I16] = pg__convb_i16,
};

/* ---- nodata masks: bad[i] |= (src[i] == nd) in the arg's type; NaN ---- */

#define PG__MASKFN(N, T)                                                                           \
    static PG__NOINLINE void pg__mask_##N(uint8_t *restrict bad, const void *restrict src_,        \
                                          double nd_, size_t n)                                    \
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

static PG__NOINLINE void pg__nanmask_f32(uint8_t *restrict bad, const void *restrict src_, size_t n)
{
    const float *restrict src = src_;
    PG__LOOP(n, bad[i] |= (uint8_t)(src[i] != src[i]););
}

static PG__NOINLINE void pg__nanmask_f64(uint8_t *restrict bad, const void *restrict src_, size_t n)
{
    const double *restrict src = src_;
    PG__LOOP(n, bad[i] |= (uint8_t)(src[i] != src[i]););
}

/* ---- truth (logic, where's cond): t[i] = src[i] != 0 ---- */

#define PG__TRUTHFN(N, T)                                                                          \
    static PG__NOINLINE void pg__truth_##N(uint8_t *restrict t, const void *restrict src_,         \
                                           size_t n)                                               \
    {                                                                                              \
        const T *restrict src = src_;                                                              \
        PG__LOOP(n, t[i] = (uint8_t)(src[i] != 0););                                               \
    }
PG__TRUTHFN(u8, uint8_t)
PG__TRUTHFN(i8, int8_t)
PG__TRUTHFN(u16, uint16_t)
PG__TRUTHFN(i16, int16_t)
PG__TRUTHFN(u32, uint32_t)
PG__TRUTHFN(i32, int32_t)
PG__TRUTHFN(f32, float)
PG__TRUTHFN(f64, double)

typedef void (*pg__truthfn)(uint8_t *restrict, const void *restrict, size_t);
static const pg__truthfn pg__truthfns[PG_CELLTYPE_COUNT] = {
    pg__truth_u8,  pg__truth_i8,  pg__truth_u16, pg__truth_i16,
    pg__truth_u32, pg__truth_i32, pg__truth_f32, pg__truth_f64,
};

/* ---- arithmetic kernels ----
 * Binary: vv d = f(a, b); vs d = f(a, s); sv d = f(s, a); acc d = f(d, b);
 * accs d = f(d, s). EXPR uses x and y. */

typedef void (*pg__vvfn)(void *restrict, const void *restrict, const void *restrict, size_t);
typedef void (*pg__vsfn)(void *restrict, const void *restrict, double, size_t);
typedef void (*pg__svfn)(void *restrict, double, const void *restrict, size_t);
typedef void (*pg__accfn)(void *restrict, const void *restrict, size_t);
typedef void (*pg__accsfn)(void *restrict, double, size_t);
typedef void (*pg__unfn)(void *restrict, const void *restrict, size_t);

typedef struct pg__bin {
    pg__vvfn vv;
    pg__vsfn vs;
    pg__svfn sv;
    pg__accfn acc;
    pg__accsfn accs;
} pg__bin;

#define PG__BINFNS(W, T, OPN, EXPR)                                                                \
    static PG__NOINLINE void pg__##W##_##OPN##_vv(void *restrict d_, const void *restrict a_,      \
                                                  const void *restrict b_, size_t n)               \
    {                                                                                              \
        T *restrict d = d_;                                                                        \
        const T *restrict a = a_;                                                                  \
        const T *restrict b = b_;                                                                  \
        PG__LOOP(n, const T x = a[i]; const T y = b[i]; d[i] = (EXPR););                           \
    }                                                                                              \
    static PG__NOINLINE void pg__##W##_##OPN##_vs(void *restrict d_, const void *restrict a_,      \
                                                  double s_, size_t n)                             \
    {                                                                                              \
        T *restrict d = d_;                                                                        \
        const T *restrict a = a_;                                                                  \
        const T y = pg__s_##W(s_);                                                                 \
        PG__LOOP(n, const T x = a[i]; d[i] = (EXPR););                                             \
    }                                                                                              \
    static PG__NOINLINE void pg__##W##_##OPN##_sv(void *restrict d_, double s_,                    \
                                                  const void *restrict a_, size_t n)               \
    {                                                                                              \
        T *restrict d = d_;                                                                        \
        const T *restrict a = a_;                                                                  \
        const T x = pg__s_##W(s_);                                                                 \
        PG__LOOP(n, const T y = a[i]; d[i] = (EXPR););                                             \
    }                                                                                              \
    static PG__NOINLINE void pg__##W##_##OPN##_acc(void *restrict d_, const void *restrict b_,     \
                                                   size_t n)                                       \
    {                                                                                              \
        T *restrict d = d_;                                                                        \
        const T *restrict b = b_;                                                                  \
        PG__LOOP(n, const T x = d[i]; const T y = b[i]; d[i] = (EXPR););                           \
    }                                                                                              \
    static PG__NOINLINE void pg__##W##_##OPN##_accs(void *restrict d_, double s_, size_t n)        \
    {                                                                                              \
        T *restrict d = d_;                                                                        \
        const T y = pg__s_##W(s_);                                                                 \
        PG__LOOP(n, const T x = d[i]; d[i] = (EXPR););                                             \
    }                                                                                              \
    static const pg__bin pg__##W##_##OPN = {pg__##W##_##OPN##_vv, pg__##W##_##OPN##_vs,            \
                                            pg__##W##_##OPN##_sv, pg__##W##_##OPN##_acc,           \
                                            pg__##W##_##OPN##_accs};

/* min/max carry NaN (from either operand) like the other float kernels,
 * so that NaN cells and nodata turned NaN become nodata at the end. */
PG__BINFNS(i32, int32_t, min, x < y ? x : y)
PG__BINFNS(f32, float, min, ((x < y) | (x != x)) ? x : y)
PG__BINFNS(f64, double, min, ((x < y) | (x != x)) ? x : y)
PG__BINFNS(i32, int32_t, max, x > y ? x : y)
PG__BINFNS(f32, float, max, ((x > y) | (x != x)) ? x : y)
PG__BINFNS(f64, double, max, ((x > y) | (x != x)) ? x : y)
PG__BINFNS(f64, double, add, x + y)
PG__BINFNS(f64, double, pow, pow(x, y))
PG__BINFNS(f32, float, atan2, atan2f(x, y))
PG__BINFNS(f64, double, atan2, atan2(x, y))

static const pg__bin *const pg__minfns[3] = {&pg__i32_min, &pg__f32_min, &pg__f64_min};
static const pg__bin *const pg__maxfns[3] = {&pg__i32_max, &pg__f32_max, &pg__f64_max};

/* mean's last step: d = (d + k) / count, or d / count. */
static PG__NOINLINE void pg__f64_meanfin(void *restrict d_, double k, double cnt, size_t n)
{
    double *restrict d = d_;
    PG__LOOP(n, d[i] = (d[i] + k) / cnt;);
}

static PG__NOINLINE void pg__f64_div(void *restrict d_, double cnt, size_t n)
{
    double *restrict d = d_;
    PG__LOOP(n, d[i] = d[i] / cnt;);
}

#define PG__UNFN(W, T, OPN, EXPR)                                                                  \
    static PG__NOINLINE void pg__##W##_##OPN(void *restrict d_, const void *restrict a_, size_t n) \
    {                                                                                              \
        T *restrict d = d_;                                                                        \
        const T *restrict a = a_;                                                                  \
        PG__LOOP(n, const T x = a[i]; d[i] = (EXPR););                                             \
    }

/* negate/abs in i32 only see 8/16-bit values (i32 args work in f64), so
 * they cannot overflow. */
PG__UNFN(i32, int32_t, neg, -x)
PG__UNFN(f32, float, neg, -x)
PG__UNFN(f64, double, neg, -x)
PG__UNFN(i32, int32_t, abs, x < 0 ? -x : x)
PG__UNFN(f32, float, abs, fabsf(x))
PG__UNFN(f64, double, abs, fabs(x))
PG__UNFN(i32, int32_t, copy, x)
PG__UNFN(f32, float, log, logf(x))
PG__UNFN(f64, double, log, log(x))
PG__UNFN(f32, float, log10, log10f(x))
PG__UNFN(f64, double, log10, log10(x))
PG__UNFN(f32, float, exp, expf(x))
PG__UNFN(f64, double, exp, exp(x))
PG__UNFN(f32, float, sin, sinf(x))
PG__UNFN(f64, double, sin, sin(x))
PG__UNFN(f32, float, cos, cosf(x))
PG__UNFN(f64, double, cos, cos(x))
PG__UNFN(f32, float, tan, tanf(x))
PG__UNFN(f64, double, tan, tan(x))

/* floor, ceil, round (halves away from zero) in f32, exact, in loops GCC
 * vectorises without SSE4.1's roundps (not in the x86-64 baseline):
 *  - for |x| < M (2^23), r = (|x| + M) - M is |x|
 *    rounded to an integer (floats in [M, 2M) are spaced 1 apart), and
 *    f0 = |x| - r (in [-0.5, 0.5]) and fr = the fraction of |x| (f0, or
 *    f0 + 1 when negative) are exact; |x| - fr is trunc(|x|), and the
 *    adjustments below add 1; copysign restores the sign (floor, ceil and
 *    round never change it, so ceil(-0.5) is -0 as in C);
 *  - other cells (|x| >= M, already integral; inf; NaN) take x itself, by
 *    a bit blend.
 * Why it is written this way: with -ftrapping-math (the default, and not
 * ours to change) GCC will not if-convert a float select whose arm holds
 * arithmetic, and its phiopt turns "r - (c ? 1 : 0)" with one compare, or a
 * select on a value used once, into exactly that; conditions made of two
 * compares, and an integer blend, stay branch-free. ADJ uses x, ax, fr. */
#define PG__RNDFN(W, T, UT, M, FABS, COPYSIGN, OPN, ADJ)                                           \
    static PG__NOINLINE void pg__##W##_##OPN(void *restrict d_, const void *restrict a_, size_t n) \
    {                                                                                              \
        T *restrict d = d_;                                                                        \
        const T *restrict a = a_;                                                                  \
        PG__LOOP(n, const T x = a[i]; const T ax = FABS(x); const T r = (ax + (M)) - (M);          \
                 const T f0 = ax - r; const T fr = f0 + (((f0 < 0) & (ax == ax)) ? (T)1 : (T)0);   \
                 const T v = COPYSIGN((ax - fr) + ((ADJ) ? (T)1 : (T)0), x); UT vb, xb;            \
                 memcpy(&vb, &v, sizeof vb); memcpy(&xb, &x, sizeof xb);                           \
                 const UT m = (UT)0 - (UT)(ax < (M)); const UT ob = (vb & m) | (xb & ~m);          \
                 memcpy(&d[i], &ob, sizeof ob););                                                  \
    }
#define PG__RNDFNS(W, T, UT, M, FABS, COPYSIGN)                                                    \
    PG__RNDFN(W, T, UT, M, FABS, COPYSIGN, floor, (x < 0) & (fr > 0))                              \
    PG__RNDFN(W, T, UT, M, FABS, COPYSIGN, ceil, (x > 0) & (fr > 0))                               \
    PG__RNDFN(W, T, UT, M, FABS, COPYSIGN, round, (fr >= (T)0.5) & (ax == ax))
PG__RNDFNS(f32, float, uint32_t, 0x1p23f, fabsf, copysignf)
/* f64: GCC does not vectorise the blend above for 64-bit lanes with SSE2,
 * and the scalar form mispredicts; glibc's floor/ceil (SSE4.1 when the CPU
 * has it) and round are faster there: 1.3, 1.3 and 2.5 ns a cell. */
PG__UNFN(f64, double, floor, floor(x))
PG__UNFN(f64, double, ceil, ceil(x))
PG__UNFN(f64, double, round, round(x))

/* sqrt: see the top of the file for the intrinsics. sqrt of a negative
 * number is NaN either way (then nodata). */
static PG__NOINLINE void pg__f32_sqrt(void *restrict d_, const void *restrict a_, size_t n)
{
    float *restrict d = d_;
    const float *restrict a = a_;
    size_t i = 0;
#if defined(__AVX__)
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(d + i, _mm256_sqrt_ps(_mm256_loadu_ps(a + i)));
#elif defined(__SSE2__)
    for (; i + 8 <= n; i += 8) {
        _mm_storeu_ps(d + i, _mm_sqrt_ps(_mm_loadu_ps(a + i)));
        _mm_storeu_ps(d + i + 4, _mm_sqrt_ps(_mm_loadu_ps(a + i + 4)));
    }
#endif
    for (; i < n; i++)
        d[i] = sqrtf(a[i]);
}

static PG__NOINLINE void pg__f64_sqrt(void *restrict d_, const void *restrict a_, size_t n)
{
    double *restrict d = d_;
    const double *restrict a = a_;
    size_t i = 0;
#if defined(__AVX__)
    for (; i + 4 <= n; i += 4)
        _mm256_storeu_pd(d + i, _mm256_sqrt_pd(_mm256_loadu_pd(a + i)));
#elif defined(__SSE2__)
    for (; i + 4 <= n; i += 4) {
        _mm_storeu_pd(d + i, _mm_sqrt_pd(_mm_loadu_pd(a + i)));
        _mm_storeu_pd(d + i + 2, _mm_sqrt_pd(_mm_loadu_pd(a + i + 2)));
    }
#endif
    for (; i < n; i++)
        d[i] = sqrt(a[i]);
}

/* Unary kernels [op][work index]; NULL where the rules never ask. */
static pg__unfn pg__unary(pg__mop op, int w)
{
    static const pg__unfn t[][3] = {
        [PG__NEG] = {pg__i32_neg, pg__f32_neg, pg__f64_neg},
        [PG__ABS] = {pg__i32_abs, pg__f32_abs, pg__f64_abs},
        [PG__SQRT] = {NULL, pg__f32_sqrt, pg__f64_sqrt},
        [PG__LOG] = {NULL, pg__f32_log, pg__f64_log},
        [PG__LOG10] = {NULL, pg__f32_log10, pg__f64_log10},
        [PG__EXP] = {NULL, pg__f32_exp, pg__f64_exp},
        [PG__FLOOR] = {pg__i32_copy, pg__f32_floor, pg__f64_floor},
        [PG__CEIL] = {pg__i32_copy, pg__f32_ceil, pg__f64_ceil},
        [PG__ROUND] = {pg__i32_copy, pg__f32_round, pg__f64_round},
        [PG__SIN] = {NULL, pg__f32_sin, pg__f64_sin},
        [PG__COS] = {NULL, pg__f32_cos, pg__f64_cos},
        [PG__TAN] = {NULL, pg__f32_tan, pg__f64_tan},
    };
    if ((size_t)op >= sizeof t / sizeof t[0]) return NULL;
    return t[op][w];
}

/* ---- where: d = t ? a : b ----
 * Both operands are loaded before the choice: GCC does not if-convert a
 * conditional load, and a branch on random conditions mispredicts. */

typedef struct pg__sel {
    void (*vv)(void *restrict, const uint8_t *restrict, const void *restrict, const void *restrict,
               size_t);
    void (*vs)(void *restrict, const uint8_t *restrict, const void *restrict, double, size_t);
    void (*sv)(void *restrict, const uint8_t *restrict, double, const void *restrict, size_t);
    void (*ss)(void *restrict, const uint8_t *restrict, double, double, size_t);
} pg__sel;

#define PG__SELFNS(W, T)                                                                           \
    static PG__NOINLINE void pg__##W##_sel_vv(void *restrict d_, const uint8_t *restrict t,        \
                                              const void *restrict a_, const void *restrict b_,    \
                                              size_t n)                                            \
    {                                                                                              \
        T *restrict d = d_;                                                                        \
        const T *restrict a = a_;                                                                  \
        const T *restrict b = b_;                                                                  \
        PG__LOOP(n, const T x = a[i]; const T y = b[i]; d[i] = t[i] ? x : y;);                     \
    }                                                                                              \
    static PG__NOINLINE void pg__##W##_sel_vs(void *restrict d_, const uint8_t *restrict t,        \
                                              const void *restrict a_, double s_, size_t n)        \
    {                                                                                              \
        T *restrict d = d_;                                                                        \
        const T *restrict a = a_;                                                                  \
        const T s = pg__s_##W(s_);                                                                 \
        PG__LOOP(n, const T x = a[i]; d[i] = t[i] ? x : s;);                                       \
    }                                                                                              \
    static PG__NOINLINE void pg__##W##_sel_sv(void *restrict d_, const uint8_t *restrict t,        \
                                              double s_, const void *restrict b_, size_t n)        \
    {                                                                                              \
        T *restrict d = d_;                                                                        \
        const T *restrict b = b_;                                                                  \
        const T s = pg__s_##W(s_);                                                                 \
        PG__LOOP(n, const T y = b[i]; d[i] = t[i] ? s : y;);                                       \
    }                                                                                              \
    static PG__NOINLINE void pg__##W##_sel_ss(void *restrict d_, const uint8_t *restrict t,        \
                                              double sa_, double sb_, size_t n)                    \
    {                                                                                              \
        T *restrict d = d_;                                                                        \
        const T sa = pg__s_##W(sa_), sb = pg__s_##W(sb_);                                          \
        PG__LOOP(n, d[i] = t[i] ? sa : sb;);                                                       \
    }
PG__SELFNS(i32, int32_t)
PG__SELFNS(f32, float)
PG__SELFNS(f64, double)

static const pg__sel pg__selfns[3] = {
    {pg__i32_sel_vv, pg__i32_sel_vs, pg__i32_sel_sv, pg__i32_sel_ss},
    {pg__f32_sel_vv, pg__f32_sel_vs, pg__f32_sel_sv, pg__f32_sel_ss},
    {pg__f64_sel_vv, pg__f64_sel_vs, pg__f64_sel_sv, pg__f64_sel_ss},
};

/* bad[i] |= t[i] ? bad_a[i] : bad_b[i], t being 0/1 (no branch: vectorises) */
static PG__NOINLINE void pg__where_bad(uint8_t *restrict bad, const uint8_t *restrict t,
                                       const uint8_t *restrict ba, const uint8_t *restrict bb,
                                       size_t n)
{
    PG__LOOP(n, bad[i] |= (uint8_t)((ba[i] & t[i]) | (bb[i] & (t[i] ^ 1))););
}

/* ---- comparisons: u8 d = a OP b ---- */

typedef struct pg__cmp {
    void (*vv)(uint8_t *restrict, const void *restrict, const void *restrict, size_t);
    void (*vs)(uint8_t *restrict, const void *restrict, double, size_t);
    void (*sv)(uint8_t *restrict, double, const void *restrict, size_t);
} pg__cmp;

#define PG__CMPFNS(W, T, OPN, OP)                                                                  \
    static PG__NOINLINE void pg__##W##_##OPN##_cvv(uint8_t *restrict d, const void *restrict a_,   \
                                                   const void *restrict b_, size_t n)              \
    {                                                                                              \
        const T *restrict a = a_;                                                                  \
        const T *restrict b = b_;                                                                  \
        PG__LOOP(n, d[i] = (uint8_t)(a[i] OP b[i]););                                              \
    }                                                                                              \
    static PG__NOINLINE void pg__##W##_##OPN##_cvs(uint8_t *restrict d, const void *restrict a_,   \
                                                   double s_, size_t n)                            \
    {                                                                                              \
        const T *restrict a = a_;                                                                  \
        const T s = pg__s_##W(s_);                                                                 \
        PG__LOOP(n, d[i] = (uint8_t)(a[i] OP s););                                                 \
    }                                                                                              \
    static PG__NOINLINE void pg__##W##_##OPN##_csv(uint8_t *restrict d, double s_,                 \
                                                   const void *restrict a_, size_t n)              \
    {                                                                                              \
        const T *restrict a = a_;                                                                  \
        const T s = pg__s_##W(s_);                                                                 \
        PG__LOOP(n, d[i] = (uint8_t)(s OP a[i]););                                                 \
    }
#define PG__CMPW(W, T)                                                                             \
    PG__CMPFNS(W, T, eq, ==)                                                                       \
    PG__CMPFNS(W, T, ne, !=)                                                                       \
    PG__CMPFNS(W, T, lt, <)                                                                        \
    PG__CMPFNS(W, T, le, <=) PG__CMPFNS(W, T, gt, >) PG__CMPFNS(W, T, ge, >=)
PG__CMPW(i32, int32_t)
PG__CMPW(f32, float)
PG__CMPW(f64, double)

/* The same marking NaN operands 255 (nodata) in the same pass, for float
 * args without a nodata value of their own (no byte mask needed). NaN
 * compares false (except !=, which gives 1: 1 | 255 is 255), so OR-ing 255
 * in is exact; written with | rather than a select so that GCC vectorises
 * it (a select whose arm holds an ordered compare is not if-converted). */
#define PG__NAN255(x) ((uint8_t)(-(int)((x) != (x)) & 255))
#define PG__CMPNFNS(W, T, OPN, OP)                                                                 \
    static PG__NOINLINE void pg__##W##_##OPN##_nvv(uint8_t *restrict d, const void *restrict a_,   \
                                                   const void *restrict b_, size_t n)              \
    {                                                                                              \
        const T *restrict a = a_;                                                                  \
        const T *restrict b = b_;                                                                  \
        PG__LOOP(n, const T x = a[i]; const T y = b[i];                                            \
                 d[i] = (uint8_t)((x OP y) | PG__NAN255(x) | PG__NAN255(y)););                     \
    }                                                                                              \
    static PG__NOINLINE void pg__##W##_##OPN##_nvs(uint8_t *restrict d, const void *restrict a_,   \
                                                   double s_, size_t n)                            \
    {                                                                                              \
        const T *restrict a = a_;                                                                  \
        const T s = pg__s_##W(s_);                                                                 \
        PG__LOOP(n, const T x = a[i]; d[i] = (uint8_t)((x OP s) | PG__NAN255(x)););                \
    }                                                                                              \
    static PG__NOINLINE void pg__##W##_##OPN##_nsv(uint8_t *restrict d, double s_,                 \
                                                   const void *restrict a_, size_t n)              \
    {                                                                                              \
        const T *restrict a = a_;                                                                  \
        const T s = pg__s_##W(s_);                                                                 \
        PG__LOOP(n, const T x = a[i]; d[i] = (uint8_t)((s OP x) | PG__NAN255(x)););                \
    }
#define PG__CMPNW(W, T)                                                                            \
    PG__CMPNFNS(W, T, eq, ==)                                                                      \
    PG__CMPNFNS(W, T, ne, !=)                                                                      \
    PG__CMPNFNS(W, T, lt, <)                                                                       \
    PG__CMPNFNS(W, T, le, <=) PG__CMPNFNS(W, T, gt, >) PG__CMPNFNS(W, T, ge, >=)
PG__CMPNW(f32, float)
PG__CMPNW(f64, double)

#define PG__CMPE(W, OPN)                                                                           \
    {                                                                                              \
        pg__##W##_##OPN##_cvv, pg__##W##_##OPN##_cvs, pg__##W##_##OPN##_csv                        \
    }
#define PG__CMPROW(W)                                                                              \
    {                                                                                              \
        PG__CMPE(W, eq), PG__CMPE(W, ne), PG__CMPE(W, lt), PG__CMPE(W, le), PG__CMPE(W, gt),       \
            PG__CMPE(W, ge)                                                                        \
    }
/* [work index][op - PG__EQ] */
static const pg__cmp pg__cmpfns[3][6] = {PG__CMPROW(i32), PG__CMPROW(f32), PG__CMPROW(f64)};
#define PG__CMPNE(W, OPN)                                                                          \
    {                                                                                              \
        pg__##W##_##OPN##_nvv, pg__##W##_##OPN##_nvs, pg__##W##_##OPN##_nsv                        \
    }
#define PG__CMPNROW(W)                                                                             \
    {                                                                                              \
        PG__CMPNE(W, eq), PG__CMPNE(W, ne), PG__CMPNE(W, lt), PG__CMPNE(W, le), PG__CMPNE(W, gt),  \
            PG__CMPNE(W, ge)                                                                       \
    }
/* NaN-marking variants: [0 f32, 1 f64][op - PG__EQ] */
static const pg__cmp pg__cmpnfns[2][6] = {PG__CMPNROW(f32), PG__CMPNROW(f64)};

/* ---- logic on 0/1 bytes ---- */

static PG__NOINLINE void pg__and_u8(uint8_t *restrict d, const uint8_t *restrict t, size_t n)
{
    PG__LOOP(n, d[i] &= t[i];);
}

static PG__NOINLINE void pg__or_u8(uint8_t *restrict d, const uint8_t *restrict t, size_t n)
{
    PG__LOOP(n, d[i] |= t[i];);
}

static PG__NOINLINE void pg__xor_u8(uint8_t *restrict d, const uint8_t *restrict t, size_t n)
{
    PG__LOOP(n, d[i] ^= t[i];);
}

static PG__NOINLINE void pg__ops_u8(uint8_t *restrict d, uint8_t k, pg__mop op, size_t n)
{
    if (op == PG__AND) {
        PG__LOOP(n, d[i] &= k;);
    } else if (op == PG__OR) {
        PG__LOOP(n, d[i] |= k;);
    } else {
        PG__LOOP(n, d[i] ^= k;);
    }
}

/* d = bad ? nd : d, for u8 outputs (comparisons, logic) */
static PG__NOINLINE void pg__fix_u8(uint8_t *restrict d, const uint8_t *restrict bad, uint8_t nd,
                                    size_t n)
{
    PG__LOOP(n, d[i] = bad[i] ? nd : d[i];);
}

/* ---- bitwise on u32 bit patterns ---- */

static PG__NOINLINE void pg__b_vv(uint32_t *restrict d, const uint32_t *restrict a,
                                  const uint32_t *restrict b, pg__mop op, size_t n)
{
    if (op == PG__BAND) {
        PG__LOOP(n, d[i] = a[i] & b[i];);
    } else if (op == PG__BOR) {
        PG__LOOP(n, d[i] = a[i] | b[i];);
    } else {
        PG__LOOP(n, d[i] = a[i] ^ b[i];);
    }
}

static PG__NOINLINE void pg__b_acc(uint32_t *restrict d, const uint32_t *restrict b, pg__mop op,
                                   size_t n)
{
    if (op == PG__BAND) {
        PG__LOOP(n, d[i] &= b[i];);
    } else if (op == PG__BOR) {
        PG__LOOP(n, d[i] |= b[i];);
    } else {
        PG__LOOP(n, d[i] ^= b[i];);
    }
}

static PG__NOINLINE void pg__b_vs(uint32_t *restrict d, const uint32_t *restrict a, uint32_t k,
                                  pg__mop op, size_t n)
{
    if (op == PG__BAND) {
        PG__LOOP(n, d[i] = a[i] & k;);
    } else if (op == PG__BOR) {
        PG__LOOP(n, d[i] = a[i] | k;);
    } else {
        PG__LOOP(n, d[i] = a[i] ^ k;);
    }
}

static PG__NOINLINE void pg__b_accs(uint32_t *restrict d, uint32_t k, pg__mop op, size_t n)
{
    if (op == PG__BAND) {
        PG__LOOP(n, d[i] &= k;);
    } else if (op == PG__BOR) {
        PG__LOOP(n, d[i] |= k;);
    } else {
        PG__LOOP(n, d[i] ^= k;);
    }
}

static PG__NOINLINE void pg__b_not(uint32_t *restrict d, const uint32_t *restrict a, size_t n)
{
    PG__LOOP(n, d[i] = ~a[i];);
}

static PG__NOINLINE void pg__b_shl(uint32_t *restrict d, const uint32_t *restrict a, int s,
                                   size_t n)
{
    PG__LOOP(n, d[i] = a[i] << s;);
}

static PG__NOINLINE void pg__b_shr(uint32_t *restrict d, const uint32_t *restrict a, int s,
                                   size_t n)
{
    PG__LOOP(n, d[i] = a[i] >> s;);
}

/* Arithmetic: the operand was sign-extended from its signed type, so a
 * 32-bit arithmetic shift then truncation is the narrow type's shift. (>>
 * of a negative int is implementation-defined in C; GCC and Clang define it
 * as arithmetic.) */
static PG__NOINLINE void pg__b_sar(uint32_t *restrict d, const uint32_t *restrict a, int s,
                                   size_t n)
{
    PG__LOOP(n, d[i] = (uint32_t)((int32_t)a[i] >> s););
}

/* u32 patterns -> the output type's low bits; nodata where bad. */
#define PG__BSTORE(N, UT)                                                                          \
    static PG__NOINLINE void pg__bstore_##N(void *restrict out_, const uint32_t *restrict a,       \
                                            const uint8_t *restrict bad, uint32_t nd_, size_t n)   \
    {                                                                                              \
        UT *restrict out = out_;                                                                   \
        const UT nd = (UT)nd_;                                                                     \
        if (bad == NULL) {                                                                         \
            PG__LOOP(n, out[i] = (UT)a[i];);                                                       \
        } else {                                                                                   \
            PG__LOOP(n, const UT v = (UT)a[i]; out[i] = bad[i] ? nd : v;);                         \
        }                                                                                          \
    }
PG__BSTORE(8, uint8_t)
PG__BSTORE(16, uint16_t)
PG__BSTORE(32, uint32_t)

/* ---- final passes ---- */

/* In place when the output is the work type: float cells not finite, or
 * masked, become nodata (v - v is 0 only for finite v); integer masked
 * cells become nodata. */
#define PG__FIXFLOAT(W, T)                                                                         \
    static PG__NOINLINE void pg__fix_##W(void *restrict d_, double nd_, size_t n)                  \
    {                                                                                              \
        T *restrict d = d_;                                                                        \
        const T nd = (T)nd_;                                                                       \
        PG__LOOP(n, const T v = d[i]; d[i] = (v - v == (T)0) ? v : nd;);                           \
    }                                                                                              \
    static PG__NOINLINE void pg__fixm_##W(void *restrict d_, const uint8_t *restrict bad,          \
                                          double nd_, size_t n)                                    \
    {                                                                                              \
        T *restrict d = d_;                                                                        \
        const T nd = (T)nd_;                                                                       \
        PG__LOOP(n, const T v = d[i]; d[i] = ((bad[i] == 0) & (v - v == (T)0)) ? v : nd;);         \
    }
PG__FIXFLOAT(f32, float)
PG__FIXFLOAT(f64, double)

static PG__NOINLINE void pg__fixm_i32(void *restrict d_, const uint8_t *restrict bad, double nd_,
                                      size_t n)
{
    int32_t *restrict d = d_;
    const int32_t nd = (int32_t)nd_;
    PG__LOOP(n, d[i] = bad[i] ? nd : d[i];);
}

/* Work type -> another output type, as in ops/local.c: a cell is valid when
 * unmasked and its value lies in [lo, hi] (which rejects NaN and inf, and
 * values the natural type cannot hold: abs(-128) in i8); valid values are
 * clamped to [cmin, cmax] (a forced type), rounded for integer outputs. */
typedef struct pg__fin {
    double lo, hi, cmin, cmax, nd;
    bool round;
} pg__fin;

#define PG__FINFN(W, WT, O, OT)                                                                    \
    static PG__NOINLINE void pg__fin_##W##_##O(void *restrict out_, const void *restrict acc_,     \
                                               const uint8_t *restrict bad, const pg__fin *f,      \
                                               size_t n)                                           \
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

/* The same without a forced type, vectorisable: i32 work to an integer
 * output (every value is an integer; those outside [lo, hi], the natural
 * type's range, are nodata: abs(-128) in i8), and f64 work to f32 (mean and
 * pow; beyond +-FLT_MAX is nodata). Values are clamped before the f64 ->
 * f32 conversion, which is undefined out of range. */
#define PG__NFIN_I32(O, OT)                                                                        \
    static PG__NOINLINE void pg__nfin_i32_##O(void *restrict out_, const void *restrict acc_,      \
                                              const uint8_t *restrict bad, const pg__fin *f,       \
                                              size_t n)                                            \
    {                                                                                              \
        OT *restrict out = out_;                                                                   \
        const int32_t *restrict acc = acc_;                                                        \
        const int32_t lo = (int32_t)f->lo, hi = (int32_t)f->hi;                                    \
        const OT nd = (OT)f->nd;                                                                   \
        if (bad == NULL) {                                                                         \
            PG__LOOP(n, const int32_t v = acc[i]; out[i] = ((v >= lo) & (v <= hi)) ? (OT)v : nd;); \
        } else {                                                                                   \
            PG__LOOP(n, const int32_t v = acc[i];                                                  \
                     out[i] = ((bad[i] == 0) & (v >= lo) & (v <= hi)) ? (OT)v : nd;);              \
        }                                                                                          \
    }
PG__NFIN_I32(u8, uint8_t)
PG__NFIN_I32(i8, int8_t)
PG__NFIN_I32(u16, uint16_t)
PG__NFIN_I32(i16, int16_t)
PG__NFIN_I32(u32, uint32_t)
PG__NFIN_I32(i32, int32_t)

static PG__NOINLINE void pg__nfin_f64_f32(void *restrict out_, const void *restrict acc_,
                                          const uint8_t *restrict bad, const pg__fin *f, size_t n)
{
    float *restrict out = out_;
    const double *restrict acc = acc_;
    const double lo = f->lo, hi = f->hi;
    const float nd = (float)f->nd;
    /* convert (clamped), then choose: see pg__nansub for why two loops */
    PG__LOOP(n, const double v = acc[i]; const double c = v < lo   ? lo
                                                          : v > hi ? hi
                                                                   : v;
             out[i] = (float)c;);
    if (bad == NULL) {
        PG__LOOP(n, const double v = acc[i]; const float o = out[i];
                 out[i] = ((v >= lo) & (v <= hi)) ? o : nd;);
    } else {
        PG__LOOP(n, const double v = acc[i]; const float o = out[i];
                 out[i] = ((bad[i] == 0) & (v >= lo) & (v <= hi)) ? o : nd;);
    }
}

#define PG__FINROW(W)                                                                              \
    {                                                                                              \
        pg__fin_##W##_u8, pg__fin_##W##_i8, pg__fin_##W##_u16, pg__fin_##W##_i16,                  \
            pg__fin_##W##_u32, pg__fin_##W##_i32, pg__fin_##W##_f32, pg__fin_##W##_f64             \
    }
static const pg__finfn pg__finfns[3][PG_CELLTYPE_COUNT] = {PG__FINROW(i32), PG__FINROW(f32),
                                                           PG__FINROW(f64)};

/* The final conversion of a plan (see pg__nfin_*). */
static pg__finfn pg__fin_for(pg_celltype work, pg_celltype out, bool forced)
{
    static const pg__finfn nfin_i32[PG_CELLTYPE_COUNT] = {
        pg__nfin_i32_u8,  pg__nfin_i32_i8,  pg__nfin_i32_u16,
        pg__nfin_i32_i16, pg__nfin_i32_u32, pg__nfin_i32_i32,
    };
    if (!forced && work == PG_I32 && nfin_i32[out] != NULL) return nfin_i32[out];
    if (!forced && work == PG_F64 && out == PG_F32) return pg__nfin_f64_f32;
    return pg__finfns[pg__widx(work)][out];
}

/* ---- plan ---- */

typedef struct pg__marg {
    bool raster;
    bool mask;         /* compare with mask_value (the nodata as stored in the type) */
    bool nan;          /* float raster whose NaN cells the kernel would not carry */
    bool subst;        /* mask by turning nodata into NaN while converting (no byte mask) */
    pg_celltype type;  /* raster */
    double mask_value; /* mask */
} pg__marg;

typedef struct pg__mplan {
    pg__mop op;
    pg__cat cat;
    pg_celltype work; /* FLOAT/VALUE/CMP: i32, f32 or f64; BIT: u32; else u8 */
    pg_celltype out;
    bool direct;     /* FLOAT/VALUE: out == work, kernels write the output tile */
    bool has_nd;     /* the output has a nodata value ... */
    double nd;       /* ... this one */
    bool any_mask;   /* some arg needs the byte mask (mask without subst, or nan) */
    bool cmp_nan;    /* comparisons: NaN marked by the kernel (pg__cmpnfns), no byte mask */
    pg__fin fin;     /* FLOAT/VALUE, !direct: the final conversion ... */
    pg__finfn finfn; /* ... by this function */
    double konst;    /* folded numbers: min/max (their min/max), mean (their sum) */
    bool has_konst;
    uint32_t kbits; /* bitwise: folded numbers (bit pattern) */
    uint8_t ktruth; /* logic: folded numbers' truth */
    int shift;      /* shl/shr */
    int nargs;
    int nras;        /* raster args ... */
    int *ras;        /* ... their indices in order (points into this block) */
    pg__marg args[]; /* nargs */
} pg__mplan;

static bool pg__small_int(pg_celltype t)
{
    return t == PG_U8 || t == PG_I8 || t == PG_U16 || t == PG_I16;
}

/* The common type of two types (the TYPE RULES at the top). */
static pg_celltype pg__common(pg_celltype a, pg_celltype b)
{
    if (a == b) return a;
    if (a == PG_F64 || b == PG_F64) return PG_F64;
    if (a == PG_F32 || b == PG_F32) {
        pg_celltype o = a == PG_F32 ? b : a;
        return pg__small_int(o) ? PG_F32 : PG_F64;
    }
    bool sa = pg_celltype_is_signed(a), sb = pg_celltype_is_signed(b);
    size_t za = pg_celltype_size(a), zb = pg_celltype_size(b);
    if (sa == sb) return za >= zb ? a : b;
    pg_celltype s = sa ? a : b, u = sa ? b : a;
    if (pg_celltype_size(s) > pg_celltype_size(u)) return s;
    return u == PG_U8 ? PG_I16 : u == PG_U16 ? PG_I32 : PG_F64;
}

/* The type a number counts as in the common type. */
static pg_celltype pg__number_type(double x)
{
    if (x != trunc(x)) return PG_F32;
    if (x >= 0) return x <= 255 ? PG_U8 : x <= 65535 ? PG_U16 : x <= 4294967295.0 ? PG_U32 : PG_F64;
    return x >= -128 ? PG_I8 : x >= -32768 ? PG_I16 : x >= -2147483648.0 ? PG_I32 : PG_F64;
}

/* Bitwise promotion: same, else the wider, signed if either is signed. */
static pg_celltype pg__int_promote(pg_celltype a, pg_celltype b)
{
    if (a == b) return a;
    size_t z =
        pg_celltype_size(a) > pg_celltype_size(b) ? pg_celltype_size(a) : pg_celltype_size(b);
    bool s = pg_celltype_is_signed(a) || pg_celltype_is_signed(b);
    if (z == 1) return s ? PG_I8 : PG_U8;
    if (z == 2) return s ? PG_I16 : PG_U16;
    return s ? PG_I32 : PG_U32;
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

static void pg__mfree(pg_node *n)
{
    free(n->state);
    n->state = NULL;
}

/* Does OP carry arg A's NaN to a non-finite result (which becomes nodata at
 * the end)? Then NaN cells need no mask, and nodata cells can be turned
 * into NaN (float work types). pow does not (pow(NaN, 0) is 1), nor
 * comparisons, logic, defined, or where's cond. */
static bool pg__carries_nan(pg__mop op, pg__cat cat, int a)
{
    if (cat == PG__CCMP || cat == PG__CLOGIC || cat == PG__CDEF || cat == PG__CBIT) return false;
    if (op == PG__POW) return false;
    return !(op == PG__WHERE && a == 0);
}

/* A type's finite range, for the final conversion. */
static void pg__range(pg_celltype t, double *lo, double *hi)
{
    if (t == PG_F32) {
        *lo = -FLT_MAX;
        *hi = FLT_MAX;
    } else if (t == PG_F64) {
        *lo = -DBL_MAX;
        *hi = DBL_MAX;
    } else {
        *lo = pg_celltype_min(t);
        *hi = pg_celltype_max(t);
    }
}

/* Bitwise args: integer rasters, integer numbers within the N-bit range of
 * the result type R. */
static int pg__bit_check(const pg_node *n, pg__mop op, pg_celltype r, pg_error *err)
{
    const char *name = pg__mops[op].name;
    for (int a = 0; a < n->nargs; a++) {
        const pg_node *ref = n->args[a].ref;
        if (ref != NULL && pg_celltype_is_float(ref->info.type))
            return pg_error_set(err, PG_ETYPE,
                                "%s: args[%d] is a %s raster: bitwise ops take integer rasters "
                                "only (convert it to an integer type first)",
                                name, a, pg_celltype_name(ref->info.type));
    }
    if (op == PG__SHL || op == PG__SHR) {
        if (n->args[0].ref == NULL)
            return pg_error_set(err, PG_ETYPE, "%s: args[0] must be a raster (the value to shift)",
                                name);
        if (n->args[1].ref != NULL)
            return pg_error_set(err, PG_ETYPE,
                                "%s: args[1] must be a number (the shift count 0..31), not a "
                                "raster",
                                name);
        double s = n->args[1].number;
        if (!(s >= 0 && s <= 31 && s == trunc(s)))
            return pg_error_set(err, PG_EPARAM,
                                "%s: args[1], the shift count, must be an integer 0..31, got %g",
                                name, s);
        return 0;
    }
    const int bits = (int)pg_celltype_size(r) * 8;
    const double lo = -ldexp(1.0, bits - 1), hi = ldexp(1.0, bits) - 1;
    for (int a = 0; a < n->nargs; a++) {
        if (n->args[a].ref != NULL) continue;
        double x = n->args[a].number;
        if (x != trunc(x))
            return pg_error_set(err, PG_ETYPE,
                                "%s: args[%d] is %g: bitwise ops take integer numbers only", name,
                                a, x);
        if (x < lo || x > hi)
            return pg_error_set(err, PG_EPARAM,
                                "%s: args[%d] = %.17g does not fit the %d-bit result type %s "
                                "(allowed %.0f..%.0f)",
                                name, a, x, bits, pg_celltype_name(r), lo, hi);
    }
    return 0;
}

static int pg__mplan_build(pg_node *n, pg__mop op, pg_error *err)
{
    const char *name = pg__mops[op].name;
    const pg__cat cat = pg__mops[op].cat;
    int first = -1;
    bool any_float = false, any_nodata = false;
    bool all_small_or_f32 = true, all_int32 = true;
    for (int a = 0; a < n->nargs; a++) {
        const pg_node *r = n->args[a].ref;
        if (r == NULL) continue;
        if (r->op != NULL && r->op->result != PG_RESULT_RASTER)
            return pg_error_set(err, PG_ETYPE, "%s: args[%d] is not a raster", name, a);
        pg_celltype t = r->info.type;
        any_float |= pg_celltype_is_float(t);
        any_nodata |= r->info.has_nodata;
        all_small_or_f32 &= pg__small_int(t) || t == PG_F32;
        all_int32 &= pg__small_int(t) || t == PG_I32;
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
    pg_celltype natural = PG_U8, work = PG_U8;
    bool has_nd = false;
    int nd_from = first; /* whose nodata the output takes, if it holds it */
    switch (cat) {
    case PG__CFLOAT:
        natural = all_small_or_f32 ? PG_F32 : PG_F64;
        work = (op == PG__MEAN || op == PG__POW) ? PG_F64 : natural;
        has_nd = true;
        break;
    case PG__CVALUE: {
        int from = op == PG__WHERE ? 1 : 0;
        bool seen = false;
        for (int a = from; a < n->nargs; a++) {
            pg_celltype t = n->args[a].ref != NULL ? n->args[a].ref->info.type
                                                   : pg__number_type(n->args[a].number);
            natural = seen ? pg__common(natural, t) : t;
            seen = true;
        }
        /* abs/negate of a signed integer type: the most negative value has
         * no result (checked before negate widens unsigned types) */
        bool signed_int = pg_celltype_is_signed(natural) && !pg_celltype_is_float(natural);
        if (op == PG__NEG && !signed_int && !pg_celltype_is_float(natural))
            natural = natural == PG_U8 ? PG_I16 : natural == PG_U16 ? PG_I32 : PG_F64;
        if (natural == PG_F32)
            work = PG_F32;
        else if (natural == PG_F64 || natural == PG_U32)
            work = PG_F64;
        else if ((op == PG__NEG || op == PG__ABS) && natural == PG_I32)
            work = PG_F64; /* -(-2^31) leaves i32: computed in f64, then range-checked */
        else
            work = PG_I32;
        has_nd = any_nodata || any_float || ((op == PG__NEG || op == PG__ABS) && signed_int);
        if (op == PG__WHERE) {
            /* a's nodata, else b's (cond's is a condition, not a value) */
            nd_from = -1;
            for (int a = 2; a >= 1; a--) {
                const pg_node *r = n->args[a].ref;
                if (r != NULL && (r->info.has_nodata || nd_from < 0)) nd_from = a;
            }
        }
        break;
    }
    case PG__CCMP: {
        bool nums_i32 = true, nums_f32 = true;
        for (int a = 0; a < n->nargs; a++) {
            if (n->args[a].ref != NULL) continue;
            double x = n->args[a].number;
            nums_i32 &= x == trunc(x) && x >= INT32_MIN && x <= INT32_MAX;
            nums_f32 &= fabs(x) <= FLT_MAX && (double)(float)x == x;
        }
        work = all_int32 && nums_i32 ? PG_I32 : all_small_or_f32 && nums_f32 ? PG_F32 : PG_F64;
        natural = PG_U8;
        has_nd = any_nodata || any_float;
        break;
    }
    case PG__CLOGIC:
        natural = work = PG_U8;
        has_nd = any_nodata || any_float;
        break;
    case PG__CBIT: {
        bool seen = false;
        for (int a = 0; a < n->nargs; a++) {
            if (n->args[a].ref == NULL) continue;
            pg_celltype t = n->args[a].ref->info.type;
            natural = seen ? pg__int_promote(natural, t) : t;
            seen = true;
        }
        int rc = pg__bit_check(n, op, natural, err);
        if (rc != 0) return rc;
        work = PG_U32;
        has_nd = any_nodata;
        break;
    }
    case PG__CDEF:
        natural = work = PG_U8;
        has_nd = false;
        break;
    }

    pg_celltype out = natural;
    bool forced = false;
    const char *tname = pg_param_str(n, "type");
    if (tname != NULL) {
        if (pg_celltype_parse(tname, &out) != 0)
            return pg_error_set(err, PG_EPARAM, "%s: param 'type': unknown cell type '%s'", name,
                                tname);
        forced = out != natural;
    }

    double nd = 0.0;
    if (has_nd) {
        if (cat == PG__CCMP || cat == PG__CLOGIC) {
            nd = 255.0;
        } else {
            const pg_raster_info *ni = nd_from >= 0 ? &n->args[nd_from].ref->info : NULL;
            nd = ni != NULL && ni->has_nodata && pg_celltype_holds(out, ni->nodata)
                     ? ni->nodata
                     : pg_celltype_default_nodata(out);
            /* where: b's when a's does not fit */
            if (op == PG__WHERE && nd_from == 1 && n->args[2].ref != NULL &&
                !(ni->has_nodata && pg_celltype_holds(out, ni->nodata))) {
                const pg_raster_info *bi = &n->args[2].ref->info;
                if (bi->has_nodata && pg_celltype_holds(out, bi->nodata)) nd = bi->nodata;
            }
        }
    }

    pg__mplan *p = calloc(1, sizeof *p + (size_t)n->nargs * (sizeof p->args[0] + sizeof(int)));
    if (p == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    p->ras = (int *)(void *)&p->args[n->nargs];
    p->op = op;
    p->cat = cat;
    p->work = work;
    p->out = out;
    p->has_nd = has_nd;
    p->nd = nd;
    p->nargs = n->nargs;
    p->direct = (cat == PG__CFLOAT || cat == PG__CVALUE) && out == work;

    /* Folded numbers. */
    if (op == PG__MIN || op == PG__MAX || op == PG__MEAN) {
        for (int a = 0; a < n->nargs; a++) {
            if (n->args[a].ref != NULL) continue;
            double x = n->args[a].number;
            if (!p->has_konst)
                p->konst = x;
            else if (op == PG__MIN)
                p->konst = x < p->konst ? x : p->konst;
            else if (op == PG__MAX)
                p->konst = x > p->konst ? x : p->konst;
            else
                p->konst += x;
            p->has_konst = true;
        }
    } else if (cat == PG__CLOGIC) {
        p->ktruth = op == PG__AND ? 1 : 0;
        for (int a = 0; a < n->nargs; a++) {
            if (n->args[a].ref != NULL) continue;
            uint8_t t = n->args[a].number != 0;
            p->ktruth = op == PG__AND  ? (uint8_t)(p->ktruth & t)
                        : op == PG__OR ? (uint8_t)(p->ktruth | t)
                                       : (uint8_t)(p->ktruth ^ t);
            p->has_konst = true;
        }
    } else if (cat == PG__CBIT) {
        if (op == PG__SHL || op == PG__SHR) {
            p->shift = (int)n->args[1].number;
        } else {
            p->kbits = op == PG__BAND ? UINT32_MAX : 0;
            for (int a = 0; a < n->nargs; a++) {
                if (n->args[a].ref != NULL) continue;
                uint32_t b = (uint32_t)(int64_t)n->args[a].number; /* modulo 2^32 */
                p->kbits = op == PG__BAND  ? p->kbits & b
                           : op == PG__BOR ? p->kbits | b
                                           : p->kbits ^ b;
                p->has_konst = true;
            }
        }
    }

    for (int a = 0; a < n->nargs; a++) {
        const pg_node *r = n->args[a].ref;
        pg__marg *la = &p->args[a];
        if (r == NULL) continue;
        p->ras[p->nras++] = a;
        la->raster = true;
        la->type = r->info.type;
        /* Conversions the compute step will ask for (where's cond and the
         * logic/def ops read their own type). */
        bool converted = (cat == PG__CFLOAT || cat == PG__CVALUE || cat == PG__CCMP) &&
                         !(op == PG__WHERE && a == 0) && la->type != work;
        if (converted && pg__convfns[la->type][pg__widx(work)] == NULL) {
            pg_celltype from = la->type;
            free(p);
            return pg_error_set(err, PG_EINTERNAL, "%s: no conversion from %s to %s", name,
                                pg_celltype_name(from), pg_celltype_name(work));
        }
        const bool carries = pg__carries_nan(op, cat, a);
        la->nan = pg_celltype_is_float(la->type) && !carries;
        if (r->info.has_nodata && !isnan(r->info.nodata)) {
            double v = r->info.nodata;
            if (la->type == PG_F32) {
                /* GDAL's convention: an f32 band's nodata is the double
                 * rounded to f32. */
                if (isinf(v) || fabs(v) <= FLT_MAX) {
                    la->mask = true;
                    la->mask_value = (double)(float)v;
                }
            } else if (pg_celltype_holds(la->type, v)) {
                la->mask = true;
                la->mask_value = v;
            }
        }
        /* (the conversion to the work type exists: checked above) */
        la->subst = la->mask && carries && pg_celltype_is_float(work);
        p->any_mask |= (la->mask && !la->subst) || la->nan;
    }

    /* Comparisons whose only nodata is NaN: marked by the kernels. */
    if (cat == PG__CCMP && pg_celltype_is_float(work) && p->any_mask) {
        bool only_nan = true;
        for (int a = 0; a < n->nargs; a++)
            only_nan &= !p->args[a].mask;
        if (only_nan) {
            p->cmp_nan = true;
            p->any_mask = false;
            for (int a = 0; a < n->nargs; a++)
                p->args[a].nan = false;
        }
    }

    if ((cat == PG__CFLOAT || cat == PG__CVALUE) && !p->direct) {
        if (forced) {
            p->fin.lo = -DBL_MAX;
            p->fin.hi = DBL_MAX;
            pg__range(out, &p->fin.cmin, &p->fin.cmax);
            p->fin.round = !pg_celltype_is_float(out);
        } else {
            pg__range(out, &p->fin.lo, &p->fin.hi);
            p->fin.cmin = p->fin.lo;
            p->fin.cmax = p->fin.hi;
        }
        p->fin.nd = has_nd ? nd : 0.0;
        p->finfn = pg__fin_for(work, out, forced);
    }

    pg_raster_info_clear(&n->info);
    if (pg_raster_info_copy(&n->info, &n->args[first].ref->info) != 0) {
        free(p);
        return pg_error_set(err, PG_ENOMEM, "out of memory");
    }
    n->info.type = out;
    n->info.has_nodata = has_nd;
    n->info.nodata = has_nd ? nd : 0.0;
    if (n->state != NULL) pg__mfree(n);
    n->state = p;
    return 0;
}

#define PG__PLANFN(OP)                                                                             \
    static int pg__plan_##OP(pg_node *n, const pg_plan_env *env, pg_error *err)                    \
    {                                                                                              \
        (void)env;                                                                                 \
        return pg__mplan_build(n, PG__##OP, err);                                                  \
    }
PG__PLANFN(MIN)
PG__PLANFN(MAX)
PG__PLANFN(MEAN)
PG__PLANFN(POW)
PG__PLANFN(ATAN2)
PG__PLANFN(NEG)
PG__PLANFN(ABS)
PG__PLANFN(SQRT)
PG__PLANFN(LOG)
PG__PLANFN(LOG10)
PG__PLANFN(EXP)
PG__PLANFN(FLOOR)
PG__PLANFN(CEIL)
PG__PLANFN(ROUND)
PG__PLANFN(SIN)
PG__PLANFN(COS)
PG__PLANFN(TAN)
PG__PLANFN(EQ)
PG__PLANFN(NE)
PG__PLANFN(LT)
PG__PLANFN(LE)
PG__PLANFN(GT)
PG__PLANFN(GE)
PG__PLANFN(AND)
PG__PLANFN(OR)
PG__PLANFN(XOR)
PG__PLANFN(NOT)
PG__PLANFN(BAND)
PG__PLANFN(BOR)
PG__PLANFN(BXOR)
PG__PLANFN(BNOT)
PG__PLANFN(SHL)
PG__PLANFN(SHR)
PG__PLANFN(WHERE)
PG__PLANFN(DEFINED)
PG__PLANFN(UNDEFINED)

/* ---- compute ---- */

/* Arg A's chunk [off, off+len) in its own type. */
static const void *pg__src(const pg__mplan *p, int a, pg_tile *const *in, size_t off)
{
    return (const char *)in[a]->data + off * pg_celltype_size(p->args[a].type);
}

/* Arg A's chunk in the work type: in place, or converted into BUF. */
static const void *pg__operand(const pg__mplan *p, int a, pg_tile *const *in, size_t off,
                               size_t len, void *buf)
{
    const pg__marg *la = &p->args[a];
    const void *src = pg__src(p, a, in, off);
    if (la->subst) {
        const bool f32 = p->work == PG_F32;
        if (la->type == p->work) {
            (f32 ? pg__nansubc_f32 : pg__nansubc_f64)(buf, src, la->mask_value, len);
        } else {
            pg__convfns[la->type][pg__widx(p->work)](buf, src, len);
            (f32 ? pg__nansub_f32 : pg__nansub_f64)(buf, la->mask_value, len);
        }
        return buf;
    }
    if (la->type == p->work) return src;
    pg__convfns[la->type][pg__widx(p->work)](buf, src, len);
    return buf;
}

/* The same as u32 bit patterns (bitwise ops). */
static const uint32_t *pg__operand_bits(const pg__mplan *p, int a, pg_tile *const *in, size_t off,
                                        size_t len, void *buf)
{
    const void *src = pg__src(p, a, in, off);
    pg_celltype t = p->args[a].type;
    if (t == PG_U32 || t == PG_I32) return src;
    pg__convbfns[t](buf, src, len);
    return buf;
}

/* bad |= arg A's nodata and (where masked) NaN cells. */
static void pg__mask_arg(const pg__mplan *p, int a, pg_tile *const *in, size_t off, size_t len,
                         uint8_t *bad)
{
    const pg__marg *la = &p->args[a];
    if (!la->raster) return;
    const void *src = pg__src(p, a, in, off);
    if (la->mask && !la->subst) pg__maskfns[la->type](bad, src, la->mask_value, len);
    if (la->nan) {
        if (la->type == PG_F32)
            pg__nanmask_f32(bad, src, len);
        else
            pg__nanmask_f64(bad, src, len);
    }
}

/* Chunk scratch, on the stack of compute() (about 36 KiB, like ops/local.c). */
typedef struct pg__scratch {
    _Alignas(64) unsigned char acc[PG__CHUNK * sizeof(double)];
    _Alignas(64) unsigned char b0[PG__CHUNK * sizeof(double)];
    _Alignas(64) unsigned char b1[PG__CHUNK * sizeof(double)];
    _Alignas(64) uint8_t bad[PG__CHUNK];
    _Alignas(64) uint8_t bada[PG__CHUNK];
    _Alignas(64) uint8_t badb[PG__CHUNK];
    _Alignas(64) uint8_t tr[PG__CHUNK];
} pg__scratch;

/* Float functions and value ops: one chunk into ACC (in the work type). */
static void pg__arith_chunk(const pg_node *n, const pg__mplan *p, pg_tile *const *in, size_t off,
                            size_t len, void *acc, pg__scratch *s)
{
    const int w = pg__widx(p->work);
    const pg__mop op = p->op;
    switch (op) {
    case PG__MIN:
    case PG__MAX:
    case PG__MEAN: {
        const pg__bin *k = op == PG__MIN   ? pg__minfns[w]
                           : op == PG__MAX ? pg__maxfns[w]
                                           : &pg__f64_add;
        const int *r = p->ras, nr = p->nras;
        const void *x = pg__operand(p, r[0], in, off, len, s->b0);
        if (nr == 1) {
            if (op == PG__MEAN)
                memcpy(acc, x, len * sizeof(double));
            else
                k->vs(acc, x, p->konst, len); /* min/max with at least one number */
        } else {
            k->vv(acc, x, pg__operand(p, r[1], in, off, len, s->b1), len);
            for (int j = 2; j < nr; j++)
                k->acc(acc, pg__operand(p, r[j], in, off, len, s->b0), len);
            if (p->has_konst && op != PG__MEAN) k->accs(acc, p->konst, len);
        }
        if (op == PG__MEAN) {
            if (p->has_konst)
                pg__f64_meanfin(acc, p->konst, (double)p->nargs, len);
            else
                pg__f64_div(acc, (double)p->nargs, len);
        }
        break;
    }
    case PG__POW:
    case PG__ATAN2: {
        const pg__bin *k = op == PG__POW ? &pg__f64_pow : w == 1 ? &pg__f32_atan2 : &pg__f64_atan2;
        if (p->args[0].raster && p->args[1].raster)
            k->vv(acc, pg__operand(p, 0, in, off, len, s->b0),
                  pg__operand(p, 1, in, off, len, s->b1), len);
        else if (p->args[0].raster)
            k->vs(acc, pg__operand(p, 0, in, off, len, s->b0), n->args[1].number, len);
        else
            k->sv(acc, n->args[0].number, pg__operand(p, 1, in, off, len, s->b1), len);
        break;
    }
    case PG__WHERE: {
        const pg__sel *k = &pg__selfns[w];
        if (p->args[0].raster)
            pg__truthfns[p->args[0].type](s->tr, pg__src(p, 0, in, off), len);
        else
            memset(s->tr, n->args[0].number != 0, len);
        const bool ra = p->args[1].raster, rb = p->args[2].raster;
        const void *a = ra ? pg__operand(p, 1, in, off, len, s->b0) : NULL;
        const void *b = rb ? pg__operand(p, 2, in, off, len, s->b1) : NULL;
        if (ra && rb)
            k->vv(acc, s->tr, a, b, len);
        else if (ra)
            k->vs(acc, s->tr, a, n->args[2].number, len);
        else if (rb)
            k->sv(acc, s->tr, n->args[1].number, b, len);
        else
            k->ss(acc, s->tr, n->args[1].number, n->args[2].number, len);
        break;
    }
    default:
        pg__unary(op, w)(acc, pg__operand(p, 0, in, off, len, s->b0), len);
        break;
    }
}

static int pg__mcompute(const pg_node *n, pg_tile *out, pg_tile *const *in, pg_error *err)
{
    const pg__mplan *p = n->state;
    const char *name = pg__mops[p->op].name;
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

    const size_t osize = pg_celltype_size(p->out);
    pg__scratch s;
    const bool where = p->op == PG__WHERE;
    const bool where_ab =
        where && ((p->args[1].mask && !p->args[1].subst) || (p->args[2].mask && !p->args[2].subst));
    for (size_t off = 0; off < ncell; off += PG__CHUNK) {
        const size_t len = ncell - off < PG__CHUNK ? ncell - off : PG__CHUNK;
        char *outp = (char *)out->data + off * osize;

        if (p->any_mask) {
            memset(s.bad, 0, len);
            if (where) {
                pg__mask_arg(p, 0, in, off, len, s.bad);
                if (where_ab) {
                    memset(s.bada, 0, len);
                    memset(s.badb, 0, len);
                    pg__mask_arg(p, 1, in, off, len, s.bada);
                    pg__mask_arg(p, 2, in, off, len, s.badb);
                }
            } else {
                for (int j = 0; j < p->nras; j++)
                    pg__mask_arg(p, p->ras[j], in, off, len, s.bad);
            }
        }
        const uint8_t *bad = p->any_mask ? s.bad : NULL;

        switch (p->cat) {
        case PG__CFLOAT:
        case PG__CVALUE: {
            void *acc = p->direct ? (void *)outp : (void *)s.acc;
            pg__arith_chunk(n, p, in, off, len, acc, &s);
            if (where_ab) pg__where_bad(s.bad, s.tr, s.bada, s.badb, len);
            if (!p->direct) {
                p->finfn(outp, acc, bad, &p->fin, len);
            } else if (pg_celltype_is_float(p->work)) {
                if (!p->has_nd) break;
                const bool f32 = p->work == PG_F32;
                if (bad != NULL && f32)
                    pg__fixm_f32(acc, bad, p->nd, len);
                else if (bad != NULL)
                    pg__fixm_f64(acc, bad, p->nd, len);
                else if (f32)
                    pg__fix_f32(acc, p->nd, len);
                else
                    pg__fix_f64(acc, p->nd, len);
            } else if (bad != NULL) {
                pg__fixm_i32(acc, bad, p->nd, len);
            }
            break;
        }
        case PG__CCMP: {
            const pg__cmp *k = p->cmp_nan ? &pg__cmpnfns[p->work == PG_F32 ? 0 : 1][p->op - PG__EQ]
                                          : &pg__cmpfns[pg__widx(p->work)][p->op - PG__EQ];
            uint8_t *o = (uint8_t *)outp;
            if (p->args[0].raster && p->args[1].raster)
                k->vv(o, pg__operand(p, 0, in, off, len, s.b0),
                      pg__operand(p, 1, in, off, len, s.b1), len);
            else if (p->args[0].raster)
                k->vs(o, pg__operand(p, 0, in, off, len, s.b0), n->args[1].number, len);
            else
                k->sv(o, n->args[0].number, pg__operand(p, 1, in, off, len, s.b1), len);
            if (bad != NULL) pg__fix_u8(o, bad, 255, len);
            break;
        }
        case PG__CLOGIC: {
            uint8_t *o = (uint8_t *)outp;
            const int *r = p->ras;
            pg__truthfns[p->args[r[0]].type](o, pg__src(p, r[0], in, off), len);
            if (p->op == PG__NOT) {
                pg__ops_u8(o, 1, PG__XOR, len);
            } else {
                for (int j = 1; j < p->nras; j++) {
                    pg__truthfns[p->args[r[j]].type](s.tr, pg__src(p, r[j], in, off), len);
                    if (p->op == PG__AND)
                        pg__and_u8(o, s.tr, len);
                    else if (p->op == PG__OR)
                        pg__or_u8(o, s.tr, len);
                    else
                        pg__xor_u8(o, s.tr, len);
                }
                if (p->has_konst) pg__ops_u8(o, p->ktruth, p->op, len);
            }
            if (bad != NULL) pg__fix_u8(o, bad, 255, len);
            break;
        }
        case PG__CBIT: {
            uint32_t *acc = (uint32_t *)(void *)s.acc;
            const int *r = p->ras;
            const uint32_t *x = pg__operand_bits(p, r[0], in, off, len, s.b0);
            switch (p->op) {
            case PG__BNOT:
                pg__b_not(acc, x, len);
                break;
            case PG__SHL:
                pg__b_shl(acc, x, p->shift, len);
                break;
            case PG__SHR:
                if (pg_celltype_is_signed(p->out))
                    pg__b_sar(acc, x, p->shift, len);
                else
                    pg__b_shr(acc, x, p->shift, len);
                break;
            default:
                if (p->nras == 1) {
                    pg__b_vs(acc, x, p->kbits, p->op, len);
                } else {
                    pg__b_vv(acc, x, pg__operand_bits(p, r[1], in, off, len, s.b1), p->op, len);
                    for (int j = 2; j < p->nras; j++)
                        pg__b_acc(acc, pg__operand_bits(p, r[j], in, off, len, s.b0), p->op, len);
                    if (p->has_konst) pg__b_accs(acc, p->kbits, p->op, len);
                }
                break;
            }
            /* the nodata value's bit pattern in the output type */
            const uint32_t ndb = p->has_nd ? (uint32_t)(int64_t)p->nd : 0;
            const size_t z = pg_celltype_size(p->out);
            if (z == 1)
                pg__bstore_8(outp, acc, bad, ndb, len);
            else if (z == 2)
                pg__bstore_16(outp, acc, bad, ndb, len);
            else
                pg__bstore_32(outp, acc, bad, ndb, len);
            break;
        }
        case PG__CDEF: {
            uint8_t *o = (uint8_t *)outp;
            const uint8_t v = p->op == PG__DEFINED;
            if (bad == NULL) {
                memset(o, v, len);
            } else {
                PG__LOOP(len, o[i] = (uint8_t)(bad[i] ^ v););
            }
            break;
        }
        }
    }
    return 0;
}

/* ---- the table ---- */

static const pg_param_def pg__type_params[] = {
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

static const pg_param_def pg__no_params[] = {{0}};

#define PG__GRID " All raster args must share one grid and band count (grid_mismatch otherwise)."
#define PG__ND_VALUE                                                                               \
    " The output nodata value is the first raster arg's if the output type holds it, else the "    \
    "type's default (NaN for floats, min for signed, max for unsigned integers)."
#define PG__FLOAT_RULES                                                                            \
    " Result type: f32 if every raster arg is 8/16-bit or f32, else f64 (numbers do not change "   \
    "it). A cell is nodata if it is nodata (or NaN) in any raster arg or the result is not "       \
    "finite; the output always has a nodata value." PG__ND_VALUE PG__GRID
#define PG__COMMON_TYPE                                                                            \
    " Result type: the common type of the args, the smallest that holds every input value "        \
    "exactly (u8 and u8: u8; u8 and i8: i16; u16 and i16: i32; u32 and i32: f64; f32 and a "       \
    "32-bit integer: f64); a number counts as the smallest integer type that holds it, or f32 "    \
    "if it has a fraction."
#define PG__VALUE_ND                                                                               \
    " A cell is nodata if it is nodata (or NaN) in any raster arg, or the result is not finite; "  \
    "the output has a nodata value when some raster arg has one or is a float "                    \
    "raster." PG__ND_VALUE PG__GRID
#define PG__CMP_RULES                                                                              \
    " Compares exact values (in i32, f32 or f64, whichever holds every arg exactly). Output u8 "   \
    "0/1; 255 (nodata) where any raster arg is nodata or NaN; the output has nodata 255 when "     \
    "some raster arg has a nodata value or is a float raster, else none." PG__GRID
#define PG__LOGIC_RULES                                                                            \
    " A value is true when it is not zero. Output u8 0/1; 255 (nodata) where any raster arg is "   \
    "nodata or NaN; the output has nodata 255 when some raster arg has a nodata value or is a "    \
    "float raster, else none." PG__GRID
#define PG__BIT_RULES                                                                              \
    " Integer rasters only (f32/f64 args are bad_type). Result type: the args' integer "           \
    "promotion: the same type if equal, else the wider, signed if either is signed (u8 and i8: "   \
    "i8; u8 and i16: i16). Values are taken as bit patterns. A cell is nodata if it is nodata "    \
    "in any raster arg; the output has a nodata value when some raster arg has one." PG__ND_VALUE  \
        PG__GRID

#define PG__ENTRY(OPNAME, OP, DOC, EXAMPLE, MINA, MAXA, KINDS, PARAMS)                             \
    {                                                                                              \
        .name = OPNAME, .family = "local", .doc = DOC, .example = EXAMPLE, .min_args = MINA,       \
        .max_args = MAXA, .arg_kinds = KINDS, .params = PARAMS, .result = PG_RESULT_RASTER,        \
        .plan = pg__plan_##OP, .compute = pg__mcompute, .free_state = pg__mfree,                   \
        .elementwise = true,                                                                       \
    }
#define PG__RN (PG_ARGK_RASTER | PG_ARGK_NUMBER)
#define PG__UNARY_FLOAT(OPNAME, OP, WHAT)                                                          \
    PG__ENTRY(OPNAME, OP, "Cell-by-cell " WHAT " of one raster." PG__FLOAT_RULES,                  \
              "{\"op\": \"" OPNAME "\", \"args\": [{\"ref\": \"a\"}]}", 1, 1, PG_ARGK_RASTER,      \
              pg__type_params)
#define PG__CMP_ENTRY(OPNAME, OP, WHAT)                                                            \
    PG__ENTRY(OPNAME, OP,                                                                          \
              "Cell-by-cell comparison args[0] " WHAT " args[1], each a raster or a number (at "   \
              "least one raster): 1 where true, 0 where false." PG__CMP_RULES,                     \
              "{\"op\": \"" OPNAME "\", \"args\": [{\"ref\": \"a\"}, 0.5]}", 2, 2, PG__RN,         \
              pg__no_params)

const pg_op_def pg_ops_local_math[] = {
    PG__ENTRY("local.min", MIN,
              "Cell-by-cell minimum of two or more args, each a raster or a number (at least one "
              "raster)." PG__COMMON_TYPE PG__VALUE_ND,
              "{\"op\": \"local.min\", \"args\": [{\"ref\": \"a\"}, {\"ref\": \"b\"}, 100]}", 2, -1,
              PG__RN, pg__type_params),
    PG__ENTRY("local.max", MAX,
              "Cell-by-cell maximum of two or more args, each a raster or a number (at least one "
              "raster)." PG__COMMON_TYPE PG__VALUE_ND,
              "{\"op\": \"local.max\", \"args\": [{\"ref\": \"a\"}, 0]}", 2, -1, PG__RN,
              pg__type_params),
    PG__ENTRY("local.mean", MEAN,
              "Cell-by-cell mean of two or more args, each a raster or a number (at least one "
              "raster): the rasters summed left to right in f64, plus the sum of the numbers, "
              "divided by the number of args, rounded once to the result type." PG__FLOAT_RULES,
              "{\"op\": \"local.mean\", \"args\": [{\"ref\": \"a\"}, {\"ref\": \"b\"}, {\"ref\": "
              "\"c\"}]}",
              2, -1, PG__RN, pg__type_params),
    PG__ENTRY(
        "local.pow", POW,
        "Cell-by-cell power args[0] ^ args[1] (C pow, computed in f64 and rounded once), "
        "each a raster or a number (at least one raster). pow of a negative base to a "
        "non-integer exponent, 0 to a negative power, and overflow are nodata." PG__FLOAT_RULES,
        "{\"op\": \"local.pow\", \"args\": [{\"ref\": \"a\"}, 2]}", 2, 2, PG__RN, pg__type_params),
    PG__ENTRY("local.atan2", ATAN2,
              "Cell-by-cell atan2(args[0], args[1]) (the angle of the point (args[1], args[0]), "
              "in radians, -pi..pi; atan2(0, 0) is 0), each a raster or a number (at least one "
              "raster)." PG__FLOAT_RULES,
              "{\"op\": \"local.atan2\", \"args\": [{\"ref\": \"dy\"}, {\"ref\": \"dx\"}]}", 2, 2,
              PG__RN, pg__type_params),
    PG__ENTRY("local.negate", NEG,
              "Cell-by-cell -x of one raster. Result type: the arg's for signed integer and float "
              "types; unsigned types widen so that every negation fits: u8 -> i16, u16 -> i32, "
              "u32 -> f64. The negation of a signed type's most negative value (-128, -32768, "
              "-2^31) does not fit and is nodata." PG__VALUE_ND,
              "{\"op\": \"local.negate\", \"args\": [{\"ref\": \"a\"}]}", 1, 1, PG_ARGK_RASTER,
              pg__type_params),
    PG__ENTRY("local.abs", ABS,
              "Cell-by-cell absolute value of one raster. Result type: the arg's (unsigned values "
              "are unchanged). The absolute value of a signed type's most negative value (-128, "
              "-32768, -2^31) does not fit and is nodata." PG__VALUE_ND,
              "{\"op\": \"local.abs\", \"args\": [{\"ref\": \"a\"}]}", 1, 1, PG_ARGK_RASTER,
              pg__type_params),
    PG__UNARY_FLOAT("local.sqrt", SQRT, "square root (negative values are nodata)"),
    PG__UNARY_FLOAT("local.log", LOG, "natural logarithm (0 and negative values are nodata)"),
    PG__UNARY_FLOAT("local.log10", LOG10, "base-10 logarithm (0 and negative values are nodata)"),
    PG__UNARY_FLOAT("local.exp", EXP, "exponential e^x (overflow is nodata)"),
    PG__ENTRY("local.floor", FLOOR,
              "Cell-by-cell largest integer <= x of one raster. Result type: the arg's (integer "
              "values are unchanged); use 'type' for an integer result from a float "
              "raster." PG__VALUE_ND,
              "{\"op\": \"local.floor\", \"args\": [{\"ref\": \"a\"}], \"type\": \"i32\"}", 1, 1,
              PG_ARGK_RASTER, pg__type_params),
    PG__ENTRY("local.ceil", CEIL,
              "Cell-by-cell smallest integer >= x of one raster. Result type: the arg's (integer "
              "values are unchanged)." PG__VALUE_ND,
              "{\"op\": \"local.ceil\", \"args\": [{\"ref\": \"a\"}]}", 1, 1, PG_ARGK_RASTER,
              pg__type_params),
    PG__ENTRY("local.round", ROUND,
              "Cell-by-cell nearest integer of one raster, halves away from zero (2.5 -> 3, -2.5 "
              "-> -3). Result type: the arg's (integer values are unchanged)." PG__VALUE_ND,
              "{\"op\": \"local.round\", \"args\": [{\"ref\": \"a\"}], \"type\": \"i16\"}", 1, 1,
              PG_ARGK_RASTER, pg__type_params),
    PG__UNARY_FLOAT("local.sin", SIN, "sine (radians)"),
    PG__UNARY_FLOAT("local.cos", COS, "cosine (radians)"),
    PG__UNARY_FLOAT("local.tan", TAN, "tangent (radians)"),
    PG__CMP_ENTRY("local.eq", EQ, "=="),
    PG__CMP_ENTRY("local.ne", NE, "!="),
    PG__CMP_ENTRY("local.lt", LT, "<"),
    PG__CMP_ENTRY("local.le", LE, "<="),
    PG__CMP_ENTRY("local.gt", GT, ">"),
    PG__CMP_ENTRY("local.ge", GE, ">="),
    PG__ENTRY("local.and", AND,
              "Cell-by-cell logical AND of two or more args, each a raster or a number (at least "
              "one raster): 1 where every arg is true." PG__LOGIC_RULES,
              "{\"op\": \"local.and\", \"args\": [{\"ref\": \"m1\"}, {\"ref\": \"m2\"}]}", 2, -1,
              PG__RN, pg__no_params),
    PG__ENTRY("local.or", OR,
              "Cell-by-cell logical OR of two or more args, each a raster or a number (at least "
              "one raster): 1 where some arg is true." PG__LOGIC_RULES,
              "{\"op\": \"local.or\", \"args\": [{\"ref\": \"m1\"}, {\"ref\": \"m2\"}]}", 2, -1,
              PG__RN, pg__no_params),
    PG__ENTRY("local.xor", XOR,
              "Cell-by-cell logical exclusive OR of two or more args, each a raster or a number "
              "(at least one raster): 1 where an odd number of args is true." PG__LOGIC_RULES,
              "{\"op\": \"local.xor\", \"args\": [{\"ref\": \"m1\"}, {\"ref\": \"m2\"}]}", 2, -1,
              PG__RN, pg__no_params),
    PG__ENTRY(
        "local.not", NOT,
        "Cell-by-cell logical NOT of one raster: 1 where it is zero, 0 elsewhere." PG__LOGIC_RULES,
        "{\"op\": \"local.not\", \"args\": [{\"ref\": \"m\"}]}", 1, 1, PG_ARGK_RASTER,
        pg__no_params),
    PG__ENTRY("local.bitand", BAND,
              "Cell-by-cell bitwise AND of two or more args, each an integer raster or an integer "
              "number (at least one raster; a number must fit the result type's bits, from "
              "-2^(N-1) to 2^N - 1, and is used as its low N bits)." PG__BIT_RULES,
              "{\"op\": \"local.bitand\", \"args\": [{\"ref\": \"qa\"}, 12]}", 2, -1, PG__RN,
              pg__no_params),
    PG__ENTRY("local.bitor", BOR,
              "Cell-by-cell bitwise OR of two or more args, each an integer raster or an integer "
              "number (at least one raster; a number must fit the result type's bits, from "
              "-2^(N-1) to 2^N - 1, and is used as its low N bits)." PG__BIT_RULES,
              "{\"op\": \"local.bitor\", \"args\": [{\"ref\": \"a\"}, {\"ref\": \"b\"}]}", 2, -1,
              PG__RN, pg__no_params),
    PG__ENTRY("local.bitxor", BXOR,
              "Cell-by-cell bitwise XOR of two or more args, each an integer raster or an integer "
              "number (at least one raster; a number must fit the result type's bits, from "
              "-2^(N-1) to 2^N - 1, and is used as its low N bits)." PG__BIT_RULES,
              "{\"op\": \"local.bitxor\", \"args\": [{\"ref\": \"a\"}, 255]}", 2, -1, PG__RN,
              pg__no_params),
    PG__ENTRY("local.bitnot", BNOT,
              "Cell-by-cell bitwise complement of one integer raster (same type)." PG__BIT_RULES,
              "{\"op\": \"local.bitnot\", \"args\": [{\"ref\": \"a\"}]}", 1, 1, PG_ARGK_RASTER,
              pg__no_params),
    PG__ENTRY(
        "local.shl", SHL,
        "Cell-by-cell left shift args[0] << args[1] of an integer raster by a number 0..31 "
        "(bad_param otherwise); bits shifted past the type are lost (same type)." PG__BIT_RULES,
        "{\"op\": \"local.shl\", \"args\": [{\"ref\": \"a\"}, 4]}", 2, 2, PG__RN, pg__no_params),
    PG__ENTRY("local.shr", SHR,
              "Cell-by-cell right shift args[0] >> args[1] of an integer raster by a number "
              "0..31 (bad_param otherwise), same type: arithmetic (sign-filling) for signed "
              "types, logical for unsigned ones." PG__BIT_RULES,
              "{\"op\": \"local.shr\", \"args\": [{\"ref\": \"qa\"}, 8]}", 2, 2, PG__RN,
              pg__no_params),
    PG__ENTRY("local.where", WHERE,
              "Cell-by-cell choice where(cond, a, b): a where cond is not zero, else b; each a "
              "raster or a number (at least one raster). Result type: the common type of a and b "
              "(the smallest that holds both exactly: u8 and u8: u8; u8 and i8: i16; u16 and i16: "
              "i32; u32 and i32: f64; f32 and a 32-bit integer: f64; a number counts as the "
              "smallest integer type that holds it, or f32 if it has a fraction). A cell is "
              "nodata where cond is nodata (or NaN), where the branch it picks is nodata (or "
              "NaN), or where the picked float value is not finite; the output has a nodata value "
              "when some raster arg has one or is a float raster. Its value is a's nodata if a has "
              "one the output type holds, else b's, else the type's default." PG__GRID,
              "{\"op\": \"local.where\", \"args\": [{\"op\": \"local.gt\", \"args\": [{\"ref\": "
              "\"a\"}, 0.5]}, {\"op\": \"local.sqrt\", \"args\": [{\"ref\": \"a\"}]}, 0]}",
              3, 3, PG__RN, pg__type_params),
    PG__ENTRY("local.defined", DEFINED,
              "Cell-by-cell 1 where the raster arg is not nodata (nor NaN), 0 where it is. Output "
              "u8 without a nodata value.",
              "{\"op\": \"local.defined\", \"args\": [{\"ref\": \"a\"}]}", 1, 1, PG_ARGK_RASTER,
              pg__no_params),
    PG__ENTRY("local.undefined", UNDEFINED,
              "Cell-by-cell 1 where the raster arg is nodata (or NaN), 0 elsewhere. Output u8 "
              "without a nodata value.",
              "{\"op\": \"local.undefined\", \"args\": [{\"ref\": \"a\"}]}", 1, 1, PG_ARGK_RASTER,
              pg__no_params),
    {0},
};
