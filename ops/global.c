/* Reductions of a whole raster to a JSON value: global.stats.
 *
 * Determinism: each tile's partial is computed on its own (two passes over
 * the tile, in double), and finish() merges the partials in tile order with
 * Chan et al.'s pairwise formula. The runtime hands finish() the partials
 * in tile order whatever the worker count, so the value is bit-identical
 * for 1 or 64 workers (it does depend on the tiling: another tile size is
 * another summation order).
 *
 * A partial is a fixed-size plain struct (registry: partial_size), so that
 * it can be shipped between nodes as bytes. That is why the per-band detail
 * is capped at PG__STATS_MAX_BANDS bands (plan() refuses more).
 */
#include "graph.h"
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

typedef struct pg__stats_partial {
    pg__mom band[PG__STATS_MAX_BANDS];
} pg__stats_partial;

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

static int pg__stats_part(const pg_node *n, void *partial, pg_tile *const *in, pg_error *err)
{
    const pg__stats_state *st = n->state;
    const pg_tile *t = in[0];
    if (t == NULL || t->type != st->type || t->bands != st->bands || t->win.w < 0 || t->win.h < 0)
        return pg_error_set(err, PG_EINTERNAL, "global.stats: tile does not match the raster");
    pg__stats_partial *p = partial;
    const size_t plane = (size_t)t->win.w * (size_t)t->win.h;
    const size_t cs = pg_celltype_size(t->type);
    for (int b = 0; b < t->bands; b++) {
        pg__momfns[t->type]((const char *)t->data + (size_t)b * plane * cs, plane, st->mask,
                            st->mask_value, &p->band[b]);
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
        const pg__stats_partial *p = partials[k];
        for (int b = 0; b < st->bands; b++)
            pg__mom_merge(&band[b], &p->band[b]);
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
        .partial_size = sizeof(pg__stats_partial),
        .partial = pg__stats_part,
        .finish = pg__stats_finish,
        .free_state = pg__stats_free,
    },
    {0},
};
