/* Whole-raster reductions to a JSON value (global.stats, global.histogram,
 * global.quantiles, global.breaks) and global.rescale, a raster op that
 * takes such a value.
 *
 * VALID CELLS. Every op here reads a cell as valid when it is not the
 * raster's nodata value (compared in the raster's own cell type; for f32
 * the nodata rounded to f32, as GDAL does) and not NaN. All bands count
 * together (global.stats also reports each band).
 *
 * DETERMINISM. Each tile's partial is a pure function of the tile, and
 * finish() merges the partials in tile order, so values are bit-identical
 * for 1 or 64 workers. Statistics (global.stats) are reduced in double
 * with two passes per tile and merged with Chan et al.'s formula: they
 * depend on the tiling (another tile size is another summation order).
 * Histograms, quantiles and breaks use only counts and order, so they do
 * not even depend on the tiling (except for the approximate quantile
 * summary, see below).
 *
 * VALUES. global.quantiles and global.breaks return a plain JSON array of
 * numbers (reals; null entries when the raster has no valid cell), so that
 * other ops (render.ramp, global.rescale) can take them as VALUE args.
 *
 * QUANTILES (global.quantiles, global.breaks "quantile"). The definition
 * is numpy's default ("linear", Hyndman and Fan type 7): with the N valid
 * values sorted x[0] <= ... <= x[N-1], h = (N - 1) * p, lo = floor(h),
 * q = x[lo] + (h - lo) * (x[lo + 1] - x[lo]) (just x[lo] when h == lo).
 *  - 8- and 16-bit integer rasters: EXACT. Each tile's partial is the
 *    histogram of every value it holds (8 bytes per distinct value: at most
 *    512 KiB per tile, for 16-bit noise; held until the sweep ends).
 *  - u32, i32, f32, f64: one pass over a mergeable summary. A tile keeps
 *    its sorted distinct values with their counts when it has at most
 *    PG__QS_SIZE (4096) of them (exact), else PG__QS_SIZE groups of
 *    consecutive ranks of equal size (+-1), each represented by its
 *    smallest value with the group's count. GUARANTEE: with
 *    E = sum over tiles of (largest group size - 1) <= N / 4096 (0 for a
 *    raster whose every tile has at most 4096 distinct values), the value
 *    used for rank r lies between the exact x[r - E] and x[r]; so the
 *    result lies between x[lo - E] and x[lo + 1] (x[lo] when h == lo).
 *    The summary is at most 64 KiB per tile.
 *
 * HISTOGRAMS. "bins" equal-width bins over [lo, hi]: edges
 * e[i] = lo + i * ((hi - lo) / bins) (capped at hi), e[bins] = hi; a value
 * v with e[i] <= v < e[i+1] counts in bin i, v == hi in the last bin;
 * values outside [lo, hi] are not counted. The bin is found with one
 * multiplication and then checked against the edges, so counts agree
 * exactly with the edges the value lists.
 *
 * global.rescale TYPE AND NODATA RULES. Output type: param "type"
 * (default f32). Each valid cell v maps to
 *     y = to0 + (v - from0) * s,   s = (to1 - to0) / (from1 - from0)
 * in double (y = to0 when from0 == from1), clamped to [min(to), max(to)],
 * then stored in the output type (integers rounded to nearest, halves away
 * from zero; f32 rounded once). Invalid cells (nodata, NaN) are nodata in
 * the output. The output has a nodata value when the input has one or is
 * a float raster (NaN cells): the input's nodata value when the output
 * type holds it and it lies outside the "to" interval (so no valid cell
 * can take it), else NaN for float outputs, else the output type's
 * maximum or minimum, whichever lies outside "to" (if both lie inside, the
 * type's default nodata: a valid cell equal to it then reads as nodata).
 */
#include "bufpool.h"
#include "graph.h"
#include "ops/cells.h"
#include "ops/registry.h"
#include "raster.h"
#include "util.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PG__STATS_MAX_BANDS 64

/* Moments of a set of valid cells. With count 0 the other fields are
 * meaningless (zero). */
typedef struct pg__mom {
    int64_t count;
    double sum, min, max, mean, m2; /* m2: sum of squared deviations from mean */
} pg__mom;

/* A tile's partial: one pg__mom per band (the raster's band count, not
 * the maximum: a 1-band partial is 48 bytes; see pg__stats_size). */

typedef struct pg__stats_state {
    pg_celltype type;
    int bands;
    bool mask; /* a nodata value that can occur in the type */
    double mask_value;
} pg__stats_state;

/* Chan, Golub, LeVeque: merging two sets' mean and M2 exactly in real
 * arithmetic, and stable in floating point (no catastrophic cancellation
 * of sum-of-squares). A is the earlier set in tile order. */
static void pg__mom_merge(pg__mom *a, const pg__mom *b)
{
    if (b->count == 0) return;
    if (a->count == 0) {
        *a = *b;
        return;
    }
    const double na = (double)a->count, nb = (double)b->count, nt = na + nb;
    const double delta = b->mean - a->mean;
    a->mean += delta * (nb / nt);
    a->m2 += b->m2 + delta * delta * (na * nb / nt);
    a->sum += b->sum;
    a->count += b->count;
    if (b->min < a->min) a->min = b->min;
    if (b->max > a->max) a->max = b->max;
}

/* Two passes over N cells of type T: count, sum, min, max, then the mean
 * and M2 around it. VALID(v) decides which cells count. A plain running sum
 * in cell order: about 100 us per 256x256 f32 tile here, small next to
 * decoding that tile; lane-split accumulators measured only 20% faster
 * without AVX (the masking and the float -> double conversion dominate),
 * not worth a less obvious summation order. */
#define PG__MOMENTS(NAME, T, VALID)                                                                \
    static void NAME(const void *data_, size_t n, bool mask, double mask_value, pg__mom *m)        \
    {                                                                                              \
        const T *data = data_;                                                                     \
        const T nd = mask ? (T)mask_value : (T)0;                                                  \
        int64_t count = 0;                                                                         \
        double sum = 0.0, mn = INFINITY, mx = -INFINITY;                                           \
        for (size_t i = 0; i < n; i++) {                                                           \
            const T v = data[i];                                                                   \
            if (!(VALID)) continue;                                                                \
            const double d = (double)v;                                                            \
            count++;                                                                               \
            sum += d;                                                                              \
            mn = d < mn ? d : mn;                                                                  \
            mx = d > mx ? d : mx;                                                                  \
        }                                                                                          \
        memset(m, 0, sizeof *m);                                                                   \
        if (count == 0) return;                                                                    \
        const double mean = sum / (double)count;                                                   \
        double m2 = 0.0;                                                                           \
        for (size_t i = 0; i < n; i++) {                                                           \
            const T v = data[i];                                                                   \
            if (!(VALID)) continue;                                                                \
            const double dev = (double)v - mean;                                                   \
            m2 += dev * dev;                                                                       \
        }                                                                                          \
        *m = (pg__mom){count, sum, mn, mx, mean, m2};                                              \
    }

#define PG__INT_VALID (!mask || v != nd)
#define PG__FLOAT_VALID (v == v && (!mask || v != nd))

PG__MOMENTS(pg__mom_u8, uint8_t, PG__INT_VALID)
PG__MOMENTS(pg__mom_i8, int8_t, PG__INT_VALID)
PG__MOMENTS(pg__mom_u16, uint16_t, PG__INT_VALID)
PG__MOMENTS(pg__mom_i16, int16_t, PG__INT_VALID)
PG__MOMENTS(pg__mom_u32, uint32_t, PG__INT_VALID)
PG__MOMENTS(pg__mom_i32, int32_t, PG__INT_VALID)
PG__MOMENTS(pg__mom_f32, float, PG__FLOAT_VALID)
PG__MOMENTS(pg__mom_f64, double, PG__FLOAT_VALID)

typedef void (*pg__momfn)(const void *, size_t, bool, double, pg__mom *);
static const pg__momfn pg__momfns[PG_CELLTYPE_COUNT] = {
    pg__mom_u8,  pg__mom_i8,  pg__mom_u16, pg__mom_i16,
    pg__mom_u32, pg__mom_i32, pg__mom_f32, pg__mom_f64,
};

static int pg__stats_plan(pg_node *n, const pg_plan_env *env, pg_error *err)
{
    (void)env;
    const pg_node *r = n->nargs == 1 ? n->args[0].ref : NULL;
    if (r == NULL || (r->op != NULL && r->op->result != PG_RESULT_RASTER))
        return pg_error_set(err, PG_ETYPE, "global.stats: the arg must be a raster");
    const pg_raster_info *ri = &r->info;
    if (ri->bands < 1 || ri->bands > PG__STATS_MAX_BANDS)
        return pg_error_set(err, PG_ETOOLARGE,
                            "global.stats supports at most %d bands, the raster has %d",
                            PG__STATS_MAX_BANDS, ri->bands);
    pg__stats_state *st = calloc(1, sizeof *st);
    if (st == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    st->type = ri->type;
    st->bands = ri->bands;
    if (ri->has_nodata && !isnan(ri->nodata)) {
        double v = ri->nodata;
        if (ri->type == PG_F32) {
            /* GDAL's convention: an f32 band's nodata is the double rounded
             * to f32. */
            st->mask = isinf(v) || fabs(v) <= FLT_MAX;
            st->mask_value = st->mask ? (double)(float)v : 0.0;
        } else {
            st->mask = pg_celltype_holds(ri->type, v);
            st->mask_value = st->mask ? v : 0.0;
        }
    }
    free(n->state);
    n->state = st;
    return 0;
}

/* Bytes of one partial: a pg__mom per band of the planned raster. */
static size_t pg__stats_size(const pg_node *n)
{
    const pg__stats_state *st = n->state;
    return sizeof(pg__mom) * (size_t)(st != NULL ? st->bands : PG__STATS_MAX_BANDS);
}

static int pg__stats_part(const pg_node *n, void *partial, pg_tile *const *in, pg_error *err)
{
    const pg__stats_state *st = n->state;
    const pg_tile *t = in[0];
    if (t == NULL || t->type != st->type || t->bands != st->bands || t->win.w < 0 || t->win.h < 0)
        return pg_error_set(err, PG_EINTERNAL, "global.stats: tile does not match the raster");
    pg__mom *p = partial;
    const size_t plane = (size_t)t->win.w * (size_t)t->win.h;
    const size_t cs = pg_celltype_size(t->type);
    for (int b = 0; b < t->bands; b++) {
        pg__momfns[t->type]((const char *)t->data + (size_t)b * plane * cs, plane, st->mask,
                            st->mask_value, &p[b]);
    }
    return 0;
}

/* A statistic as JSON: null when not finite (JSON has no inf/NaN), an
 * integer when the cells are integers and the value is exact. */
static json_t *pg__num(double v, bool integral)
{
    if (!isfinite(v)) return json_null();
    if (integral && fabs(v) <= 9007199254740992.0) return json_integer((json_int_t)v);
    return json_real(v);
}

static json_t *pg__mom_json(const pg__mom *m, bool integral)
{
    json_t *o = json_object();
    if (o == NULL) return NULL;
    int bad = json_object_set_new(o, "count", json_integer((json_int_t)m->count));
    bad |= json_object_set_new(o, "sum", pg__num(m->count ? m->sum : 0.0, integral));
    if (m->count == 0) {
        bad |= json_object_set_new(o, "min", json_null());
        bad |= json_object_set_new(o, "max", json_null());
        bad |= json_object_set_new(o, "mean", json_null());
        bad |= json_object_set_new(o, "stddev", json_null());
    } else {
        bad |= json_object_set_new(o, "min", pg__num(m->min, integral));
        bad |= json_object_set_new(o, "max", pg__num(m->max, integral));
        bad |= json_object_set_new(o, "mean", pg__num(m->mean, false));
        /* Population standard deviation. M2 is a sum of non-negative
         * terms, so the root is defined. */
        bad |= json_object_set_new(o, "stddev", pg__num(sqrt(m->m2 / (double)m->count), false));
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

static int pg__stats_finish(const pg_node *n, void *const *partials, int64_t count, json_t **value,
                            pg_error *err)
{
    const pg__stats_state *st = n->state;
    pg__mom band[PG__STATS_MAX_BANDS];
    memset(band, 0, sizeof band);
    for (int64_t k = 0; k < count; k++) {
        const pg__mom *p = partials[k];
        for (int b = 0; b < st->bands; b++)
            pg__mom_merge(&band[b], &p[b]);
    }
    pg__mom all;
    memset(&all, 0, sizeof all);
    for (int b = 0; b < st->bands; b++)
        pg__mom_merge(&all, &band[b]);

    const bool integral = !pg_celltype_is_float(st->type);
    json_t *v = pg__mom_json(&all, integral);
    if (v != NULL && st->bands > 1) {
        json_t *arr = json_array();
        if (arr == NULL || json_object_set_new(v, "bands", arr) != 0) {
            json_decref(v);
            v = NULL;
        }
        for (int b = 0; v != NULL && b < st->bands; b++) {
            if (json_array_append_new(arr, pg__mom_json(&band[b], integral)) != 0) {
                json_decref(v);
                v = NULL;
            }
        }
    }
    if (v == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    *value = v;
    return 0;
}

static void pg__stats_free(pg_node *n)
{
    free(n->state);
    n->state = NULL;
}

static const pg_param_def pg__stats_params[] = {{0}};

/* ======================================================================
 * Shared helpers
 * ====================================================================== */

/* Cells per chunk of the converting loops: 8 KiB of doubles, in L1. */
#define PG__CHUNK 1024

/* The raster arg 0 of a reduction, checked; its info. */
static int pg__raster_arg0(const pg_node *n, const char *opname, const pg_raster_info **ri,
                           pg_error *err)
{
    const pg_node *r = n->nargs >= 1 ? n->args[0].ref : NULL;
    if (r == NULL || (r->op != NULL && r->op->result != PG_RESULT_RASTER))
        return pg_error_set(err, PG_ETYPE, "%s: args[0] must be a raster", opname);
    if (r->info.bands < 1) return pg_error_set(err, PG_ETYPE, "%s: args[0] has no bands", opname);
    *ri = &r->info;
    return 0;
}

/* Arg I, if present, must be a VALUE node. Sets *has. */
static int pg__value_arg(const pg_node *n, int i, const char *opname, const char *what, bool *has,
                         pg_error *err)
{
    *has = false;
    if (n->nargs <= i) return 0;
    const pg_node *r = n->args[i].ref;
    if (r == NULL || r->op == NULL || r->op->result != PG_RESULT_VALUE)
        return pg_error_set(err, PG_ETYPE, "%s: args[%d] must be a value node (%s), got %s", opname,
                            i, what,
                            r == NULL ? "a number"
                            : r->op   ? r->op->name
                                      : "a raster");
    *has = true;
    return 0;
}

/* Param KEY as [a, b]: two numbers whose difference is finite. */
static int pg__param_pair(const pg_node *n, const char *key, double *a, double *b, pg_error *err)
{
    json_t *v = json_object_get(n->params, key);
    if (!json_is_array(v) || json_array_size(v) != 2 || !json_is_number(json_array_get(v, 0)) ||
        !json_is_number(json_array_get(v, 1)))
        return pg_error_set(err, PG_EPARAM, "param '%s' must be [lo, hi], two numbers", key);
    *a = json_number_value(json_array_get(v, 0));
    *b = json_number_value(json_array_get(v, 1));
    if (!isfinite(*a) || !isfinite(*b) || !isfinite(*b - *a))
        return pg_error_set(err, PG_EPARAM, "param '%s': [%g, %g] is wider than a double holds",
                            key, *a, *b);
    return 0;
}

/* The interval a VALUE arg stands for: a global.stats object's "min" and
 * "max", or the first and last numbers of an array (global.quantiles with
 * probs [0.02, 0.98], global.breaks). *HAS is false when the value says
 * there is no valid cell (nulls). */
static int pg__value_range(const json_t *v, const char *opname, int i, double *lo, double *hi,
                           bool *has, pg_error *err)
{
    const json_t *a = NULL, *b = NULL;
    if (json_is_object(v)) {
        a = json_object_get(v, "min");
        b = json_object_get(v, "max");
    } else if (json_is_array(v) && json_array_size(v) >= 2) {
        a = json_array_get(v, 0);
        b = json_array_get(v, json_array_size(v) - 1);
    }
    *has = false;
    if (a != NULL && b != NULL && json_is_null(a) && json_is_null(b)) return 0;
    if (a == NULL || b == NULL || !json_is_number(a) || !json_is_number(b))
        return pg_error_set(err, PG_ETYPE,
                            "%s: args[%d] must be a value with numbers \"min\" and \"max\" "
                            "(global.stats) or an array of at least two numbers "
                            "(global.quantiles)",
                            opname, i);
    *lo = json_number_value(a);
    *hi = json_number_value(b);
    if (!isfinite(*hi - *lo))
        return pg_error_set(err, PG_EPARAM, "%s: the range [%g, %g] of args[%d] is too wide",
                            opname, *lo, *hi, i);
    *has = true;
    return 0;
}

/* A scratch buffer of N bytes from the tile pool (warm pages, see
 * bufpool.h), or NULL. */
static pg_tile *pg__scratch(size_t n)
{
    return pg_tile_new(PG_U8, 1, (pg_window){0, 0, (int64_t)(n ? n : 1), 1});
}

/* Doubles as unsigned keys in the same order (negative: all bits flipped;
 * positive: the sign bit set). -0.0 must be made +0.0 first. */
static inline uint64_t pg__key(double d)
{
    uint64_t b;
    memcpy(&b, &d, sizeof b);
    return (b >> 63) ? ~b : b | 0x8000000000000000ull;
}

static inline double pg__unkey(uint64_t k)
{
    uint64_t b = (k >> 63) ? k & 0x7fffffffffffffffull : ~k;
    double d;
    memcpy(&d, &b, sizeof d);
    return d;
}

/* Sorts A[0..n) ascending: LSD radix sort, 8-bit digits, TMP scratch of N.
 * Digits on which every key agrees are skipped: keys of doubles converted
 * from f32 or integer cells have many (their low mantissa bits are zero).
 * Returns the array holding the result (A or TMP). */
static uint64_t *pg__radix(uint64_t *a, uint64_t *tmp, size_t n)
{
    if (n < 2) return a;
    size_t h[8][256];
    memset(h, 0, sizeof h);
    for (size_t i = 0; i < n; i++) {
        const uint64_t k = a[i];
        for (int d = 0; d < 8; d++)
            h[d][(k >> (8 * d)) & 255]++;
    }
    for (int d = 0; d < 8; d++) {
        const int sh = 8 * d;
        if (h[d][(a[0] >> sh) & 255] == n) continue;
        size_t off = 0;
        for (int b = 0; b < 256; b++) {
            const size_t c = h[d][b];
            h[d][b] = off;
            off += c;
        }
        for (size_t i = 0; i < n; i++) {
            const uint64_t k = a[i];
            tmp[h[d][(k >> sh) & 255]++] = k;
        }
        uint64_t *t = a;
        a = tmp;
        tmp = t;
    }
    return a;
}

/* ======================================================================
 * global.histogram
 * ====================================================================== */

typedef struct pg__hist_state {
    pg_celltype type;
    int bands;
    bool mask;
    double mv;
    int bins;
    bool ready; /* the range is known: from "range", or bound */
    double lo, hi, scale;
    double *edges; /* bins + 1 */
} pg__hist_state;

/* Sparse per-tile counts: (bin, count) pairs, bins ascending. */
typedef struct pg__hist_partial {
    uint32_t *pairs;
    int64_t n;
} pg__hist_partial;

static void pg__hist_free(pg_node *n)
{
    pg__hist_state *st = n->state;
    if (st != NULL) free(st->edges);
    free(st);
    n->state = NULL;
}

/* Sets the bins' edges for [LO, HI] (LO <= HI). A range of one value is
 * widened to [v - 0.5, v + 0.5] as numpy does. */
static int pg__edges_set(int bins, double lo, double hi, double **edges, double *scale, double *olo,
                         double *ohi, pg_error *err)
{
    if (lo == hi) {
        const double d = fmax(0.5, fabs(lo) * 0x1p-50);
        lo -= d;
        hi += d;
    }
    double *e = malloc(sizeof *e * ((size_t)bins + 1));
    if (e == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    const double w = (hi - lo) / bins;
    e[0] = lo;
    for (int i = 1; i < bins; i++) {
        const double x = lo + i * w;
        e[i] = x < hi ? x : hi;
    }
    e[bins] = hi;
    free(*edges);
    *edges = e;
    *scale = bins / (hi - lo);
    *olo = lo;
    *ohi = hi;
    return 0;
}

/* The bin of V, lo <= v <= hi: a first guess by one multiplication,
 * corrected against the edges (so counts agree with the listed edges). */
static inline int pg__bin_of(const double *e, int bins, double lo, double scale, double v)
{
    const double t = (v - lo) * scale;
    int b = t < (double)bins ? (int)t : bins - 1;
    if (b < 0) b = 0;
    while (b > 0 && v < e[b])
        b--;
    while (b < bins - 1 && v >= e[b + 1])
        b++;
    return b;
}

static int pg__hist_bind(pg_node *n, int i, const json_t *value, pg_error *err)
{
    pg__hist_state *st = n->state;
    if (st == NULL) return pg_error_set(err, PG_EINTERNAL, "global.histogram: not planned");
    if (i != 1) return pg_error_set(err, PG_ETYPE, "global.histogram: args[%d] is not a value", i);
    if (st->ready) return 0; /* "range" given: it wins */
    double lo = 0.0, hi = 1.0;
    bool has;
    int rc = pg__value_range(value, "global.histogram", i, &lo, &hi, &has, err);
    if (rc) return rc;
    if (!has) lo = 0.0, hi = 1.0; /* no valid cell: nothing will be counted */
    if (lo > hi)
        return pg_error_set(err, PG_EPARAM, "global.histogram: args[1] gives min %g > max %g", lo,
                            hi);
    rc = pg__edges_set(st->bins, lo, hi, &st->edges, &st->scale, &st->lo, &st->hi, err);
    if (rc == 0) st->ready = true;
    return rc;
}

static int pg__hist_plan(pg_node *n, const pg_plan_env *env, pg_error *err)
{
    (void)env;
    const pg_raster_info *ri = NULL;
    int rc = pg__raster_arg0(n, "global.histogram", &ri, err);
    if (rc) return rc;
    bool has_value;
    if ((rc = pg__value_arg(n, 1, "global.histogram", "global.stats", &has_value, err))) return rc;
    int64_t bins = pg_param_has(n, "bins") ? pg_param_int(n, "bins") : 256;
    if (bins < 1 || bins > 100000)
        return pg_error_set(err, PG_EPARAM, "param 'bins' must be an integer between 1 and 100000");
    pg__hist_free(n);
    pg__hist_state *st = calloc(1, sizeof *st);
    if (st == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    n->state = st;
    st->type = ri->type;
    st->bands = ri->bands;
    st->bins = (int)bins;
    pg_cells_nodata_of(ri, &st->mask, &st->mv);
    if (pg_param_has(n, "range")) {
        double lo, hi;
        if ((rc = pg__param_pair(n, "range", &lo, &hi, err))) return rc;
        if (!(lo < hi))
            return pg_error_set(err, PG_EPARAM, "param 'range': lo (%g) must be less than hi (%g)",
                                lo, hi);
        if ((rc = pg__edges_set(st->bins, lo, hi, &st->edges, &st->scale, &st->lo, &st->hi, err)))
            return rc;
        st->ready = true;
    } else if (!has_value) {
        return pg_error_set(err, PG_EPARAM,
                            "param 'range' is required unless args[1] is a global.stats node "
                            "(whose min and max then give the range)");
    }
    return 0;
}

static int pg__hist_part(const pg_node *n, void *partial, pg_tile *const *in, pg_error *err)
{
    const pg__hist_state *st = n->state;
    const pg_tile *t = in[0];
    if (!st->ready) return pg_error_set(err, PG_EINTERNAL, "global.histogram: range not bound");
    if (t == NULL || t->type != st->type || t->bands != st->bands)
        return pg_error_set(err, PG_EINTERNAL, "global.histogram: tile does not match the raster");
    const size_t cells = (size_t)t->bands * (size_t)t->win.w * (size_t)t->win.h;
    if (cells > UINT32_MAX)
        return pg_error_set(err, PG_ETOOLARGE, "global.histogram: a tile of %zu cells is too large",
                            cells);
    pg__hist_partial *p = partial;
    pg_tile *scr = pg__scratch(sizeof(uint32_t) * (size_t)st->bins);
    if (scr == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    uint32_t *cnt = scr->data;
    memset(cnt, 0, sizeof(uint32_t) * (size_t)st->bins);
    const size_t cs = pg_celltype_size(t->type);
    const double lo = st->lo, hi = st->hi, scale = st->scale;
    const double *e = st->edges;
    const int bins = st->bins;
    double buf[PG__CHUNK];
    for (size_t off = 0; off < cells; off += PG__CHUNK) {
        const size_t len = cells - off < PG__CHUNK ? cells - off : PG__CHUNK;
        pg_cells_to_dbl[t->type]((const char *)t->data + off * cs, len, st->mask, st->mv, buf);
        for (size_t i = 0; i < len; i++) {
            const double v = buf[i];
            if (!(v >= lo && v <= hi)) continue; /* NaN too */
            cnt[pg__bin_of(e, bins, lo, scale, v)]++;
        }
    }
    int64_t nnz = 0;
    for (int b = 0; b < bins; b++)
        nnz += cnt[b] != 0;
    p->pairs = malloc(sizeof(uint32_t) * 2 * (size_t)(nnz ? nnz : 1));
    if (p->pairs == NULL) {
        pg_tile_unref(&scr);
        return pg_error_set(err, PG_ENOMEM, "out of memory");
    }
    int64_t k = 0;
    for (int b = 0; b < bins; b++) {
        if (cnt[b] == 0) continue;
        p->pairs[2 * k] = (uint32_t)b;
        p->pairs[2 * k + 1] = cnt[b];
        k++;
    }
    p->n = nnz;
    pg_tile_unref(&scr);
    return 0;
}

static void pg__hist_pfree(const pg_node *n, void *partial)
{
    (void)n;
    pg__hist_partial *p = partial;
    free(p->pairs);
    p->pairs = NULL;
    p->n = 0;
}

/* A JSON array of N doubles (reals), or NULL when out of memory. */
static json_t *pg__reals(const double *v, int64_t n)
{
    json_t *a = json_array();
    for (int64_t i = 0; a != NULL && i < n; i++) {
        if (json_array_append_new(a, isfinite(v[i]) ? json_real(v[i]) : json_null()) != 0) {
            json_decref(a);
            a = NULL;
        }
    }
    return a;
}

static int pg__hist_finish(const pg_node *n, void *const *partials, int64_t count, json_t **value,
                           pg_error *err)
{
    const pg__hist_state *st = n->state;
    int64_t *tot = calloc((size_t)st->bins, sizeof *tot);
    if (tot == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    for (int64_t k = 0; k < count; k++) {
        const pg__hist_partial *p = partials[k];
        for (int64_t j = 0; j < p->n; j++)
            tot[p->pairs[2 * j]] += p->pairs[2 * j + 1];
    }
    json_t *bins = json_array();
    for (int b = 0; bins != NULL && b < st->bins; b++) {
        if (json_array_append_new(bins, json_integer((json_int_t)tot[b])) != 0) {
            json_decref(bins);
            bins = NULL;
        }
    }
    free(tot);
    json_t *edges = pg__reals(st->edges, (int64_t)st->bins + 1);
    json_t *v = json_object();
    /* json_object_set_new() takes its value's reference even when it fails. */
    int bad = v == NULL || bins == NULL || edges == NULL;
    if (v != NULL) {
        bad |= json_object_set_new(v, "bins", bins) != 0;
        bad |= json_object_set_new(v, "edges", edges) != 0;
    } else {
        json_decref(bins);
        json_decref(edges);
    }
    if (bad) {
        json_decref(v);
        return pg_error_set(err, PG_ENOMEM, "out of memory");
    }
    *value = v;
    return 0;
}

/* ======================================================================
 * Quantile summaries: global.quantiles, global.breaks
 * ====================================================================== */

#define PG__QS_SIZE 4096
#define PG__MAX_PROBS 10000

typedef struct pg__qe {
    double v;
    int64_t w;
} pg__qe;

/* One tile: ascending values with counts (see the top of the file), the
 * number of valid cells, the largest group size - 1 (0: exact), and the
 * valid cells' min and max. */
typedef struct pg__qs_partial {
    pg__qe *e;        /* u32, i32, f32, f64 */
    uint64_t *packed; /* 8/16-bit types, half the memory: (value - type min) << 32 | count */
    int64_t m;
    int64_t n;
    int64_t err;
    double min, max;
} pg__qs_partial;

enum { PG__Q_QUANTILES, PG__Q_QUANTILE_BREAKS, PG__Q_EQUAL_BREAKS };

typedef struct pg__q_state {
    int kind;
    pg_celltype type;
    int bands;
    bool mask;
    double mv;
    int nprobs;
    double *probs;
} pg__q_state;

static void pg__q_free(pg_node *n)
{
    pg__q_state *st = n->state;
    if (st != NULL) free(st->probs);
    free(st);
    n->state = NULL;
}

static void pg__qs_pfree(const pg_node *n, void *partial)
{
    (void)n;
    pg__qs_partial *p = partial;
    free(p->e);
    free(p->packed);
    p->e = NULL;
    p->packed = NULL;
    p->m = 0;
}

/* Dense counts of every value of an 8/16-bit tile: CNT[v - min(T)]. */
#define PG__COUNT(NAME, T, OFF)                                                                    \
    static void NAME(const void *src_, size_t n, bool mask, double mv, uint32_t *restrict cnt)     \
    {                                                                                              \
        const T *restrict src = src_;                                                              \
        const T nd = mask ? (T)mv : (T)0;                                                          \
        for (size_t i = 0; i < n; i++) {                                                           \
            const T v = src[i];                                                                    \
            if (mask && v == nd) continue;                                                         \
            cnt[(int32_t)v + (OFF)]++;                                                             \
        }                                                                                          \
    }

PG__COUNT(pg__cnt_u8, uint8_t, 0)
PG__COUNT(pg__cnt_i8, int8_t, 128)
PG__COUNT(pg__cnt_u16, uint16_t, 0)
PG__COUNT(pg__cnt_i16, int16_t, 32768)

static bool pg__dense_type(pg_celltype t)
{
    return t == PG_U8 || t == PG_I8 || t == PG_U16 || t == PG_I16;
}

/* Min and max of the valid cells of a tile (N: their count). */
static void pg__minmax(const pg__q_state *st, const pg_tile *t, pg__qs_partial *p)
{
    const size_t cells = (size_t)t->bands * (size_t)t->win.w * (size_t)t->win.h;
    const size_t cs = pg_celltype_size(t->type);
    double buf[PG__CHUNK];
    double mn = INFINITY, mx = -INFINITY;
    int64_t cnt = 0;
    for (size_t off = 0; off < cells; off += PG__CHUNK) {
        const size_t len = cells - off < PG__CHUNK ? cells - off : PG__CHUNK;
        pg_cells_to_dbl[t->type]((const char *)t->data + off * cs, len, st->mask, st->mv, buf);
        for (size_t i = 0; i < len; i++) {
            const double v = buf[i];
            if (v != v) continue;
            cnt++;
            mn = v < mn ? v : mn;
            mx = v > mx ? v : mx;
        }
    }
    p->n = cnt;
    p->min = mn;
    p->max = mx;
}

/* The summary of one tile (see the top of the file). */
static int pg__qs_build(const pg__q_state *st, const pg_tile *t, pg__qs_partial *p, pg_error *err)
{
    const size_t cells = (size_t)t->bands * (size_t)t->win.w * (size_t)t->win.h;
    const size_t cs = pg_celltype_size(t->type);
    if (pg__dense_type(t->type)) {
        const bool wide = t->type == PG_U16 || t->type == PG_I16;
        const size_t nv = wide ? 65536 : 256;
        const double base = pg_celltype_min(t->type);
        if (cells > UINT32_MAX)
            return pg_error_set(err, PG_ETOOLARGE, "a tile of %zu cells is too large", cells);
        pg_tile *scr = pg__scratch(nv * sizeof(uint32_t));
        if (scr == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
        uint32_t *cnt = scr->data;
        memset(cnt, 0, nv * sizeof *cnt);
        switch (t->type) {
        case PG_U8:
            pg__cnt_u8(t->data, cells, st->mask, st->mv, cnt);
            break;
        case PG_I8:
            pg__cnt_i8(t->data, cells, st->mask, st->mv, cnt);
            break;
        case PG_U16:
            pg__cnt_u16(t->data, cells, st->mask, st->mv, cnt);
            break;
        default:
            pg__cnt_i16(t->data, cells, st->mask, st->mv, cnt);
            break;
        }
        int64_t m = 0, n = 0;
        for (size_t v = 0; v < nv; v++)
            m += cnt[v] != 0;
        p->packed = malloc(sizeof *p->packed * (size_t)(m ? m : 1));
        if (p->packed == NULL) {
            pg_tile_unref(&scr);
            return pg_error_set(err, PG_ENOMEM, "out of memory");
        }
        m = 0;
        for (size_t v = 0; v < nv; v++) {
            if (cnt[v] == 0) continue;
            p->packed[m++] = (uint64_t)v << 32 | cnt[v];
            n += cnt[v];
        }
        pg_tile_unref(&scr);
        p->m = m;
        p->n = n;
        p->err = 0;
        p->min = m ? base + (double)(p->packed[0] >> 32) : INFINITY;
        p->max = m ? base + (double)(p->packed[m - 1] >> 32) : -INFINITY;
        return 0;
    }
    /* The valid cells' keys, sorted. */
    pg_tile *scr = pg__scratch(2 * sizeof(uint64_t) * cells);
    if (scr == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    uint64_t *keys = scr->data, *tmp = keys + cells;
    size_t nk = 0;
    double buf[PG__CHUNK];
    for (size_t off = 0; off < cells; off += PG__CHUNK) {
        const size_t len = cells - off < PG__CHUNK ? cells - off : PG__CHUNK;
        pg_cells_to_dbl[t->type]((const char *)t->data + off * cs, len, st->mask, st->mv, buf);
        for (size_t i = 0; i < len; i++) {
            const double v = buf[i];
            if (v != v) continue;
            keys[nk++] = pg__key(v + 0.0); /* -0.0 + 0.0 is +0.0 */
        }
    }
    const uint64_t *k = pg__radix(keys, tmp, nk);
    int64_t runs = 0;
    for (size_t i = 0; i < nk; i++)
        runs += i == 0 || k[i] != k[i - 1];
    const int64_t cap = runs <= PG__QS_SIZE ? runs : PG__QS_SIZE;
    p->e = malloc(sizeof *p->e * (size_t)(cap ? cap : 1));
    if (p->e == NULL) {
        pg_tile_unref(&scr);
        return pg_error_set(err, PG_ENOMEM, "out of memory");
    }
    int64_t m = 0, maxg = 1;
    if (runs <= PG__QS_SIZE) {
        for (size_t i = 0; i < nk; i++) {
            if (i > 0 && k[i] == k[i - 1])
                p->e[m - 1].w++;
            else
                p->e[m++] = (pg__qe){pg__unkey(k[i]), 1};
        }
    } else {
        /* Groups of consecutive ranks [g*n/S, (g+1)*n/S), each represented
         * by its smallest value; neighbours of one value are merged. */
        const int64_t nn = (int64_t)nk;
        for (int64_t g = 0; g < PG__QS_SIZE; g++) {
            const int64_t s = g * nn / PG__QS_SIZE, e = (g + 1) * nn / PG__QS_SIZE;
            const double v = pg__unkey(k[s]);
            if (e - s > maxg) maxg = e - s;
            if (m > 0 && p->e[m - 1].v == v)
                p->e[m - 1].w += e - s;
            else
                p->e[m++] = (pg__qe){v, e - s};
        }
    }
    p->m = m;
    p->n = (int64_t)nk;
    p->err = runs <= PG__QS_SIZE ? 0 : maxg - 1;
    p->min = nk ? pg__unkey(k[0]) : INFINITY;
    p->max = nk ? pg__unkey(k[nk - 1]) : -INFINITY;
    pg_tile_unref(&scr);
    return 0;
}

static int pg__q_part(const pg_node *n, void *partial, pg_tile *const *in, pg_error *err)
{
    const pg__q_state *st = n->state;
    const pg_tile *t = in[0];
    if (t == NULL || t->type != st->type || t->bands != st->bands)
        return pg_error_set(err, PG_EINTERNAL, "%s: tile does not match the raster", n->op->name);
    pg__qs_partial *p = partial;
    if (st->kind == PG__Q_EQUAL_BREAKS) {
        pg__minmax(st, t, p);
        return 0;
    }
    return pg__qs_build(st, t, p, err);
}

/* The values of ranks R[0..nr) (ascending, distinct, < total count) of
 * the merged summaries, into OUT. 8/16-bit: through dense counts; else a
 * k-way merge of the tiles' sorted entries (a binary heap of tiles). */
static int pg__qs_select(const pg__q_state *st, void *const *partials, int64_t count,
                         const int64_t *r, int nr, double *out, pg_error *err)
{
    if (nr == 0) return 0;
    if (pg__dense_type(st->type)) {
        const bool wide = st->type == PG_U16 || st->type == PG_I16;
        const size_t nv = wide ? 65536 : 256;
        const double base = pg_celltype_min(st->type);
        int64_t *cnt = calloc(nv, sizeof *cnt);
        if (cnt == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
        for (int64_t k = 0; k < count; k++) {
            const pg__qs_partial *p = partials[k];
            for (int64_t j = 0; j < p->m; j++)
                cnt[p->packed[j] >> 32] += (int64_t)(p->packed[j] & 0xffffffffu);
        }
        int64_t cum = 0;
        int ri = 0;
        for (size_t v = 0; v < nv && ri < nr; v++) {
            cum += cnt[v];
            while (ri < nr && r[ri] < cum)
                out[ri++] = base + (double)v;
        }
        free(cnt);
        return 0;
    }
    int64_t *heap = malloc(sizeof *heap * (size_t)(count ? count : 1));
    int64_t *pos = calloc((size_t)(count ? count : 1), sizeof *pos);
    if (heap == NULL || pos == NULL) {
        free(heap);
        free(pos);
        return pg_error_set(err, PG_ENOMEM, "out of memory");
    }
#define PG__HV(i) (((const pg__qs_partial *)partials[heap[i]])->e[pos[heap[i]]].v)
#define PG__HLESS(i, j) (PG__HV(i) < PG__HV(j) || (PG__HV(i) == PG__HV(j) && heap[i] < heap[j]))
    int64_t hn = 0;
    for (int64_t k = 0; k < count; k++) {
        if (((const pg__qs_partial *)partials[k])->m == 0) continue;
        heap[hn] = k;
        for (int64_t c = hn++; c > 0;) { /* sift up */
            const int64_t par = (c - 1) / 2;
            if (!PG__HLESS(c, par)) break;
            const int64_t tmp = heap[c];
            heap[c] = heap[par];
            heap[par] = tmp;
            c = par;
        }
    }
    int64_t cum = 0;
    int ri = 0;
    while (hn > 0 && ri < nr) {
        const int64_t k = heap[0];
        const pg__qs_partial *p = partials[k];
        const pg__qe *e = &p->e[pos[k]];
        cum += e->w;
        while (ri < nr && r[ri] < cum)
            out[ri++] = e->v;
        if (++pos[k] == p->m) heap[0] = heap[--hn];
        for (int64_t c = 0;;) { /* sift down */
            const int64_t l = 2 * c + 1, rr = l + 1;
            int64_t s = c;
            if (l < hn && PG__HLESS(l, s)) s = l;
            if (rr < hn && PG__HLESS(rr, s)) s = rr;
            if (s == c) break;
            const int64_t tmp = heap[c];
            heap[c] = heap[s];
            heap[s] = tmp;
            c = s;
        }
    }
#undef PG__HLESS
#undef PG__HV
    free(heap);
    free(pos);
    if (ri < nr) return pg_error_set(err, PG_EINTERNAL, "%s: ranks past the count", "quantiles");
    return 0;
}

static int pg__cmp_i64(const void *a, const void *b)
{
    const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Type-7 quantiles of PROBS[0..np) over the merged summaries, into Q
 * (NaN when there is no valid cell). */
static int pg__qs_quantiles(const pg__q_state *st, void *const *partials, int64_t count,
                            const double *probs, int np, double *q, pg_error *err)
{
    int64_t N = 0;
    for (int64_t k = 0; k < count; k++)
        N += ((const pg__qs_partial *)partials[k])->n;
    if (N == 0) {
        for (int j = 0; j < np; j++)
            q[j] = NAN;
        return 0;
    }
    int64_t *ranks = malloc(sizeof *ranks * 2 * (size_t)np);
    double *vals = malloc(sizeof *vals * 2 * (size_t)np);
    if (ranks == NULL || vals == NULL) {
        free(ranks);
        free(vals);
        return pg_error_set(err, PG_ENOMEM, "out of memory");
    }
    int nr = 0;
    for (int j = 0; j < np; j++) {
        const double h = (double)(N - 1) * probs[j];
        int64_t lo = (int64_t)floor(h);
        if (lo > N - 1) lo = N - 1;
        ranks[nr++] = lo;
        if (lo < N - 1) ranks[nr++] = lo + 1;
    }
    qsort(ranks, (size_t)nr, sizeof *ranks, pg__cmp_i64);
    int u = 0;
    for (int i = 0; i < nr; i++)
        if (u == 0 || ranks[i] != ranks[u - 1]) ranks[u++] = ranks[i];
    int rc = pg__qs_select(st, partials, count, ranks, u, vals, err);
    for (int j = 0; rc == 0 && j < np; j++) {
        const double h = (double)(N - 1) * probs[j];
        int64_t lo = (int64_t)floor(h);
        if (lo > N - 1) lo = N - 1;
        const double frac = h - (double)lo;
        const int64_t *a = bsearch(&lo, ranks, (size_t)u, sizeof *ranks, pg__cmp_i64);
        const double xlo = vals[a - ranks];
        double x = xlo;
        if (frac > 0 && lo < N - 1) {
            const double xhi = vals[a - ranks + 1];
            const double d = xhi - xlo;
            x = isfinite(d) ? xlo + frac * d : xlo * (1 - frac) + xhi * frac;
            x = x < xlo ? xlo : x > xhi ? xhi : x;
        }
        q[j] = x;
    }
    free(ranks);
    free(vals);
    return rc;
}

/* "probs": a non-empty array of numbers in [0, 1]. */
static int pg__probs_parse(const pg_node *n, pg__q_state *st, pg_error *err)
{
    json_t *a = json_object_get(n->params, "probs");
    if (!json_is_array(a) || json_array_size(a) == 0 || json_array_size(a) > PG__MAX_PROBS)
        return pg_error_set(err, PG_EPARAM,
                            "param 'probs' must be a non-empty array of at most %d numbers in "
                            "[0, 1]",
                            PG__MAX_PROBS);
    st->nprobs = (int)json_array_size(a);
    st->probs = malloc(sizeof *st->probs * (size_t)st->nprobs);
    if (st->probs == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    for (int j = 0; j < st->nprobs; j++) {
        json_t *v = json_array_get(a, (size_t)j);
        const double p = json_is_number(v) ? json_number_value(v) : NAN;
        if (!(p >= 0.0 && p <= 1.0))
            return pg_error_set(err, PG_EPARAM,
                                "param 'probs': entry %d must be a number in [0, 1]", j);
        st->probs[j] = p;
    }
    return 0;
}

static int pg__q_plan_common(pg_node *n, const char *opname, pg__q_state **out, pg_error *err)
{
    const pg_raster_info *ri = NULL;
    int rc = pg__raster_arg0(n, opname, &ri, err);
    if (rc) return rc;
    pg__q_free(n);
    pg__q_state *st = calloc(1, sizeof *st);
    if (st == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    n->state = st;
    st->type = ri->type;
    st->bands = ri->bands;
    pg_cells_nodata_of(ri, &st->mask, &st->mv);
    *out = st;
    return 0;
}

static int pg__quant_plan(pg_node *n, const pg_plan_env *env, pg_error *err)
{
    (void)env;
    pg__q_state *st = NULL;
    int rc = pg__q_plan_common(n, "global.quantiles", &st, err);
    if (rc) return rc;
    st->kind = PG__Q_QUANTILES;
    return pg__probs_parse(n, st, err);
}

static int pg__breaks_plan(pg_node *n, const pg_plan_env *env, pg_error *err)
{
    (void)env;
    pg__q_state *st = NULL;
    int rc = pg__q_plan_common(n, "global.breaks", &st, err);
    if (rc) return rc;
    const char *m = pg_param_has(n, "method") ? pg_param_str(n, "method") : "quantile";
    if (m != NULL && strcmp(m, "quantile") == 0)
        st->kind = PG__Q_QUANTILE_BREAKS;
    else if (m != NULL && strcmp(m, "equal_interval") == 0)
        st->kind = PG__Q_EQUAL_BREAKS;
    else
        return pg_error_set(err, PG_EPARAM,
                            "param 'method' must be \"quantile\" or \"equal_interval\"");
    const int64_t classes = pg_param_has(n, "classes") ? pg_param_int(n, "classes") : 5;
    if (classes < 2 || classes > 1000)
        return pg_error_set(err, PG_EPARAM,
                            "param 'classes' must be an integer between 2 and 1000");
    st->nprobs = (int)classes - 1;
    st->probs = malloc(sizeof *st->probs * (size_t)st->nprobs);
    if (st->probs == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    for (int i = 1; i < classes; i++)
        st->probs[i - 1] = (double)i / (double)classes;
    return 0;
}

static int pg__q_finish(const pg_node *n, void *const *partials, int64_t count, json_t **value,
                        pg_error *err)
{
    const pg__q_state *st = n->state;
    double *q = malloc(sizeof *q * (size_t)st->nprobs);
    if (q == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    int rc = 0;
    if (st->kind == PG__Q_EQUAL_BREAKS) {
        double mn = INFINITY, mx = -INFINITY;
        int64_t cnt = 0;
        for (int64_t k = 0; k < count; k++) {
            const pg__qs_partial *p = partials[k];
            if (p->n == 0) continue;
            cnt += p->n;
            mn = p->min < mn ? p->min : mn;
            mx = p->max > mx ? p->max : mx;
        }
        const double classes = (double)st->nprobs + 1;
        for (int i = 1; i <= st->nprobs; i++)
            q[i - 1] = cnt == 0 ? NAN : mn + (mx - mn) * (double)i / classes;
    } else {
        rc = pg__qs_quantiles(st, partials, count, st->probs, st->nprobs, q, err);
    }
    json_t *v = rc == 0 ? pg__reals(q, st->nprobs) : NULL;
    free(q);
    if (rc) return rc;
    if (v == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    *value = v;
    return 0;
}

/* ======================================================================
 * global.rescale
 * ====================================================================== */

typedef struct pg__resc_state {
    pg_celltype in_type, out_type;
    bool mask;
    double mv;
    bool from_set;
    double from0, from1, to0, to1, cmin, cmax, s;
    double out_nd; /* what invalid cells become (NaN, or the nodata value) */
} pg__resc_state;

static void pg__resc_free(pg_node *n)
{
    free(n->state);
    n->state = NULL;
}

static void pg__resc_set_from(pg__resc_state *st, double f0, double f1)
{
    st->from0 = f0;
    st->from1 = f1;
    st->s = f0 == f1 ? 0.0 : (st->to1 - st->to0) / (f1 - f0);
    if (!isfinite(st->s)) st->s = 0.0; /* a degenerate from-range: every cell maps to to[0] */
    st->from_set = true;
}

static int pg__resc_plan(pg_node *n, const pg_plan_env *env, pg_error *err)
{
    (void)env;
    const pg_raster_info *ri = NULL;
    int rc = pg__raster_arg0(n, "global.rescale", &ri, err);
    if (rc) return rc;
    bool has_value;
    if ((rc = pg__value_arg(n, 1, "global.rescale", "global.stats or global.quantiles", &has_value,
                            err)))
        return rc;
    pg_celltype out = PG_F32;
    const char *tn = pg_param_str(n, "type");
    if (tn != NULL && pg_celltype_parse(tn, &out) != 0)
        return pg_error_set(err, PG_EPARAM, "param 'type': unknown cell type '%s'", tn);
    double to0 = 0.0, to1 = 1.0;
    if (pg_param_has(n, "to") && (rc = pg__param_pair(n, "to", &to0, &to1, err))) return rc;
    const double cmin = fmin(to0, to1), cmax = fmax(to0, to1);
    if (out == PG_F32 ? (fabs(cmin) > FLT_MAX || fabs(cmax) > FLT_MAX)
                      : (cmin < pg_celltype_min(out) || cmax > pg_celltype_max(out)))
        return pg_error_set(err, PG_EPARAM, "param 'to': [%g, %g] does not fit in type %s", to0,
                            to1, pg_celltype_name(out));
    pg__resc_free(n);
    pg__resc_state *st = calloc(1, sizeof *st);
    if (st == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    n->state = st;
    st->in_type = ri->type;
    st->out_type = out;
    pg_cells_nodata_of(ri, &st->mask, &st->mv);
    st->to0 = to0;
    st->to1 = to1;
    st->cmin = cmin;
    st->cmax = cmax;
    if (pg_param_has(n, "from")) {
        double f0, f1;
        if ((rc = pg__param_pair(n, "from", &f0, &f1, err))) return rc;
        pg__resc_set_from(st, f0, f1);
    } else if (!has_value) {
        return pg_error_set(err, PG_EPARAM,
                            "param 'from' is required unless args[1] is a global.stats node "
                            "(whose min and max then give it)");
    }

    pg_raster_info_clear(&n->info);
    if (pg_raster_info_copy(&n->info, ri) != 0)
        return pg_error_set(err, PG_ENOMEM, "out of memory");
    n->info.type = out;
    const bool nd = ri->has_nodata || pg_celltype_is_float(ri->type);
    n->info.has_nodata = nd;
    n->info.nodata = 0.0;
    st->out_nd = 0.0;
    if (nd) {
        double v;
        const double c = ri->nodata;
        const bool keep = ri->has_nodata && !isnan(c) && (c < cmin || c > cmax) &&
                          (out == PG_F32 ? fabs(c) <= FLT_MAX && (double)(float)c == c
                                         : pg_celltype_holds(out, c));
        if (keep)
            v = c;
        else if (pg_celltype_is_float(out))
            v = NAN;
        else if (pg_celltype_max(out) > cmax)
            v = pg_celltype_max(out);
        else if (pg_celltype_min(out) < cmin)
            v = pg_celltype_min(out);
        else
            v = pg_celltype_default_nodata(out);
        n->info.nodata = v;
        st->out_nd = v;
    }
    return 0;
}

static int pg__resc_bind(pg_node *n, int i, const json_t *value, pg_error *err)
{
    pg__resc_state *st = n->state;
    if (st == NULL) return pg_error_set(err, PG_EINTERNAL, "global.rescale: not planned");
    if (i != 1) return pg_error_set(err, PG_ETYPE, "global.rescale: args[%d] is not a value", i);
    if (st->from_set) return 0; /* "from" given: it wins */
    double lo = 0.0, hi = 1.0;
    bool has;
    int rc = pg__value_range(value, "global.rescale", i, &lo, &hi, &has, err);
    if (rc) return rc;
    if (!has) lo = 0.0, hi = 1.0; /* no valid cell: every cell is nodata anyway */
    pg__resc_set_from(st, lo, hi);
    return 0;
}

/* The linear map and clamp, in place over a chunk of doubles (NaN stays
 * NaN). */
static void pg__resc_map(const pg__resc_state *st, double *restrict y, size_t n)
{
    const double f0 = st->from0, t0 = st->to0, s = st->s, lo = st->cmin, hi = st->cmax;
    if (s == 0.0) {
        for (size_t i = 0; i < n; i++)
            y[i] = y[i] == y[i] ? t0 : y[i];
        return;
    }
    for (size_t i = 0; i < n; i++) {
        double v = t0 + (y[i] - f0) * s;
        v = v < lo ? lo : v;
        v = v > hi ? hi : v;
        y[i] = v;
    }
}

/* Integer stores: round to nearest, halves away from zero, exactly (the
 * truncation and the remainder are exact in double), without libm's
 * round() so that the loops vectorise: doubles to a W chunk (a signed type
 * wide enough for T), then W narrowed to T (GCC does not vectorise a
 * double -> u8 conversion in one loop). Y is clamped to the type's range
 * (plan() checked "to"), so the conversions are defined; NaN becomes the
 * nodata value, an integer of the type. */
#define PG__STORE_INT(NAME, T, W)                                                                  \
    static void NAME(const double *restrict y, size_t n, double ndv, void *dst_)                   \
    {                                                                                              \
        T *restrict dst = dst_;                                                                    \
        W r[PG__CHUNK];                                                                            \
        for (size_t i = 0; i < n; i++) {                                                           \
            const double v = y[i];                                                                 \
            const double c = v == v ? v : ndv;                                                     \
            const double t = (double)(W)c;                                                         \
            const double fr = c - t;                                                               \
            r[i] = (W)(t + (fr >= 0.5 ? 1.0 : fr <= -0.5 ? -1.0 : 0.0));                           \
        }                                                                                          \
        for (size_t i = 0; i < n; i++)                                                             \
            dst[i] = (T)r[i];                                                                      \
    }

PG__STORE_INT(pg__st_u8, uint8_t, int32_t)
PG__STORE_INT(pg__st_i8, int8_t, int32_t)
PG__STORE_INT(pg__st_u16, uint16_t, int32_t)
PG__STORE_INT(pg__st_i16, int16_t, int32_t)
PG__STORE_INT(pg__st_u32, uint32_t, int64_t)
PG__STORE_INT(pg__st_i32, int32_t, int32_t)

static void pg__st_f32(const double *restrict y, size_t n, double ndv, void *dst_)
{
    float *restrict dst = dst_;
    const float nd = (float)ndv;
    for (size_t i = 0; i < n; i++) {
        const double v = y[i];
        dst[i] = v == v ? (float)v : nd;
    }
}

static void pg__st_f64(const double *restrict y, size_t n, double ndv, void *dst_)
{
    double *restrict dst = dst_;
    for (size_t i = 0; i < n; i++) {
        const double v = y[i];
        dst[i] = v == v ? v : ndv;
    }
}

typedef void (*pg__storefn)(const double *, size_t, double, void *);
static const pg__storefn pg__storefns[PG_CELLTYPE_COUNT] = {
    pg__st_u8, pg__st_i8, pg__st_u16, pg__st_i16, pg__st_u32, pg__st_i32, pg__st_f32, pg__st_f64,
};

static int pg__resc_compute(const pg_node *n, pg_tile *out, pg_tile *const *in, pg_error *err)
{
    const pg__resc_state *st = n->state;
    const pg_tile *t = in[0];
    if (!st->from_set) return pg_error_set(err, PG_EINTERNAL, "global.rescale: range not bound");
    if (t == NULL || t->type != st->in_type || t->bands != out->bands || t->win.w != out->win.w ||
        t->win.h != out->win.h)
        return pg_error_set(err, PG_EINTERNAL, "global.rescale: tile does not match the raster");
    const size_t cells = (size_t)t->bands * (size_t)t->win.w * (size_t)t->win.h;
    const size_t ics = pg_celltype_size(t->type), ocs = pg_celltype_size(out->type);
    const pg_cells_dblfn conv = pg_cells_to_dbl[t->type];
    const pg__storefn store = pg__storefns[out->type];
    double buf[PG__CHUNK];
    for (size_t off = 0; off < cells; off += PG__CHUNK) {
        const size_t len = cells - off < PG__CHUNK ? cells - off : PG__CHUNK;
        conv((const char *)t->data + off * ics, len, st->mask, st->mv, buf);
        pg__resc_map(st, buf, len);
        store(buf, len, st->out_nd, (char *)out->data + off * ocs);
    }
    return 0;
}

/* ======================================================================
 * The table
 * ====================================================================== */

static const pg_param_def pg__hist_params[] = {
    {.name = "bins",
     .type = PG_PARAM_INT,
     .default_json = "256",
     .doc = "Number of equal-width bins, 1 to 100000. Default 256.",
     .min = 1,
     .max = 100000},
    {.name = "range",
     .type = PG_PARAM_JSON,
     .doc = "[lo, hi] (lo < hi) covered by the bins; values outside are not counted, hi counts "
            "in the last bin. Required unless a global.stats node is given as args[1]; wins over "
            "it when both are given."},
    {0},
};

static const pg_param_def pg__quant_params[] = {
    {.name = "probs",
     .type = PG_PARAM_JSON,
     .required = true,
     .doc = "The probabilities: a non-empty array of numbers in [0, 1] (at most 10000), e.g. "
            "[0.1, 0.5, 0.9]."},
    {0},
};

static const pg_param_def pg__breaks_params[] = {
    {.name = "method",
     .type = PG_PARAM_STRING,
     .default_json = "\"quantile\"",
     .doc = "\"quantile\" (classes of equal cell counts: the quantiles i/classes, with "
            "global.quantiles' accuracy) or \"equal_interval\" (min + (max - min) * i / "
            "classes, exact). Default \"quantile\"."},
    {.name = "classes",
     .type = PG_PARAM_INT,
     .default_json = "5",
     .doc = "Number of classes, 2 to 1000; the value has classes - 1 breaks. Default 5.",
     .min = 2,
     .max = 1000},
    {0},
};

static const pg_param_def pg__resc_params[] = {
    {.name = "to",
     .type = PG_PARAM_JSON,
     .default_json = "[0, 1]",
     .doc = "[lo, hi]: what 'from' maps to (hi < lo inverts). Must fit in the output type. "
            "Default [0, 1]."},
    {.name = "from",
     .type = PG_PARAM_JSON,
     .doc = "[lo, hi] of the input that maps to 'to'. Required unless args[1] is a value node "
            "(global.stats: its min and max; an array such as global.quantiles': its first and "
            "last numbers); wins over it when both are given."},
    {.name = "type",
     .type = PG_PARAM_CELLTYPE,
     .default_json = "\"f32\"",
     .doc = "Output cell type. Default \"f32\"."},
    {0},
};

const pg_op_def pg_ops_global[] = {
    {
        .name = "global.stats",
        .family = "global",
        .doc = "Statistics of a raster's valid cells (not nodata, not NaN): {\"count\", \"sum\", "
               "\"min\", \"max\", \"mean\", \"stddev\"} over all bands together (stddev is the "
               "population standard deviation), plus \"bands\": a list of the same object per "
               "band when the raster has more than one band (at most 64). With no valid cell, "
               "min, max, mean and stddev are null; any statistic that is not finite (cells "
               "holding inf) is null too. Integer rasters give integer min, max and sum. Each "
               "tile is reduced in double with two passes and the tiles are merged in tile order "
               "(Chan et al.), so the value is the same for any number of workers.",
        .example = "{\"op\": \"global.stats\", \"args\": [{\"ref\": \"dem\"}]}",
        .min_args = 1,
        .max_args = 1,
        .arg_kinds = PG_ARGK_RASTER,
        .params = pg__stats_params,
        .result = PG_RESULT_VALUE,
        .plan = pg__stats_plan,
        .partial_size = sizeof(pg__mom) * PG__STATS_MAX_BANDS,
        .partial_size_of = pg__stats_size,
        .partial = pg__stats_part,
        .finish = pg__stats_finish,
        .free_state = pg__stats_free,
    },
    {
        .name = "global.histogram",
        .family = "global",
        .doc = "Histogram of a raster's valid cells (not nodata, not NaN; all bands together) in "
               "'bins' equal-width bins over 'range' [lo, hi]: {\"bins\": [counts], \"edges\": "
               "[bins + 1 numbers]}. Bin i counts e[i] <= v < e[i+1] (the last bin also v == hi), "
               "e[i] = lo + i * ((hi - lo) / bins); values outside the range are not counted. "
               "Without 'range', args[1] must be a value node: a global.stats node (its min and "
               "max, computed in a first pass: {\"ref\": \"stats\"}) or an array value (its first "
               "and last numbers); a range of one value v becomes [v - 0.5, v + 0.5], and no "
               "valid cell gives [0, 1]. Counts are exact integers, identical for any tiling and "
               "number of workers.",
        .example = "{\"op\": \"global.histogram\", \"bins\": 100, \"range\": [0, 2000], \"args\": "
                   "[{\"ref\": \"dem\"}]}",
        .min_args = 1,
        .max_args = 2,
        .arg_kinds = PG_ARGK_RASTER | PG_ARGK_VALUE,
        .params = pg__hist_params,
        .result = PG_RESULT_VALUE,
        .plan = pg__hist_plan,
        .partial_size = sizeof(pg__hist_partial),
        .partial = pg__hist_part,
        .finish = pg__hist_finish,
        .partial_free = pg__hist_pfree,
        .bind = pg__hist_bind,
        .free_state = pg__hist_free,
    },
    {
        .name = "global.quantiles",
        .family = "global",
        .doc = "Quantiles of a raster's valid cells (not nodata, not NaN; all bands together): a "
               "plain JSON array of numbers, one per entry of 'probs', in the same order (nulls "
               "when there is no valid cell). Definition: numpy's default \"linear\" method "
               "(x[lo] + (h - lo) * (x[lo+1] - x[lo]), h = (N - 1) * p, lo = floor(h), over the "
               "N sorted values). EXACT for u8, i8, u16, i16 rasters, and for any raster whose "
               "tiles each hold at most 4096 distinct values. Otherwise (u32, i32, f32, f64) "
               "each tile is summarised by 4096 values of equally spaced ranks, and the order "
               "statistics used are off by at most N / 4096 ranks (always towards lower values: "
               "x[r] is replaced by a value between x[r - N/4096] and x[r]). One pass; the "
               "same value for any number of workers.",
        .example = "{\"op\": \"global.quantiles\", \"probs\": [0.02, 0.5, 0.98], \"args\": "
                   "[{\"ref\": \"dem\"}]}",
        .min_args = 1,
        .max_args = 1,
        .arg_kinds = PG_ARGK_RASTER,
        .params = pg__quant_params,
        .result = PG_RESULT_VALUE,
        .plan = pg__quant_plan,
        .partial_size = sizeof(pg__qs_partial),
        .partial = pg__q_part,
        .finish = pg__q_finish,
        .partial_free = pg__qs_pfree,
        .free_state = pg__q_free,
    },
    {
        .name = "global.breaks",
        .family = "global",
        .doc = "Class breaks of a raster's valid cells (all bands together): a plain JSON array "
               "of classes - 1 ascending numbers b[1] .. b[classes-1], the boundaries between "
               "the classes (class 1 is below b[1], class i is [b[i-1], b[i]), the last one is "
               "from b[classes-1] up; the raster's min and max are not included). \"quantile\": "
               "b[i] is the quantile i / classes, as global.quantiles computes it (equal breaks "
               "are kept when many cells share a value); \"equal_interval\": b[i] = min + (max - "
               "min) * i / classes, exact. Nulls when there is no valid cell. The array is what "
               "render.ramp takes as its class breaks.",
        .example = "{\"op\": \"global.breaks\", \"method\": \"quantile\", \"classes\": 5, "
                   "\"args\": [{\"ref\": \"dem\"}]}",
        .min_args = 1,
        .max_args = 1,
        .arg_kinds = PG_ARGK_RASTER,
        .params = pg__breaks_params,
        .result = PG_RESULT_VALUE,
        .plan = pg__breaks_plan,
        .partial_size = sizeof(pg__qs_partial),
        .partial = pg__q_part,
        .finish = pg__q_finish,
        .partial_free = pg__qs_pfree,
        .free_state = pg__q_free,
    },
    {
        .name = "global.rescale",
        .family = "global",
        .doc = "Linear rescaling of every band: a valid cell v becomes to0 + (v - from0) * "
               "(to1 - to0) / (from1 - from0), computed in double and clamped to the 'to' "
               "interval. 'from' is a param, or comes from args[1], a value node: a "
               "global.stats node (its min and max, for a min-max stretch) or an array value "
               "(its first and last numbers: global.quantiles with probs [0.02, 0.98] gives a "
               "2%-98% stretch). OUTPUT TYPE: 'type' (default f32); integer types round to "
               "nearest, halves away from zero. NODATA: nodata and NaN cells stay nodata; the "
               "output has a nodata value when the input has one or is a float raster: the "
               "input's value when the output type holds it and it lies outside 'to', else NaN "
               "(float outputs) or the output type's max or min, whichever lies outside 'to'. "
               "With from0 == from1 every valid cell becomes to0.",
        .example = "{\"op\": \"global.rescale\", \"to\": [0, 255], \"type\": \"u8\", \"args\": "
                   "[{\"ref\": \"dem\"}, {\"op\": \"global.stats\", \"args\": [{\"ref\": "
                   "\"dem\"}]}]}",
        .min_args = 1,
        .max_args = 2,
        .arg_kinds = PG_ARGK_RASTER | PG_ARGK_VALUE,
        .params = pg__resc_params,
        .result = PG_RESULT_RASTER,
        .plan = pg__resc_plan,
        .compute = pg__resc_compute,
        .bind = pg__resc_bind,
        .free_state = pg__resc_free,
    },
    {0},
};
