/* Statistics per zone (VALUE ops): zonal.stats and zonal.histogram take
 * the zones from an integer raster, zonal.polygons from the polygons of a
 * vector file (rasterized tile by tile with GDAL).
 *
 * ZONES. A zones raster must have an integer cell type (a float zones
 * raster is refused with bad_type: convert it with a local op first) and
 * one band; the values raster one band and the same grid. A zone is listed
 * when at least one cell of the zones raster carries it (not the zones'
 * nodata), even if every value there is invalid: its count is then 0 and
 * its statistics null. The output lists zones in ascending order. At most
 * PG__ZONES_MAX (1,000,000) distinct zones: more is too_large.
 *
 * VALID CELLS. A cell counts for its zone when its value is not the values
 * raster's nodata (compared in the raster's type; f32: the nodata rounded
 * to f32) and not NaN.
 *
 * VALUES. zonal.stats and zonal.polygons: {"zones": [{"zone", "count",
 * "sum", "min", "max", "mean", "stddev"}, ...]} (population standard
 * deviation; integer sum/min/max for integer values rasters, like
 * global.stats). zonal.histogram: {"edges": [...], "zones": [{"zone",
 * "bins": [counts]}, ...]} with the edges and bin rule of global.histogram.
 *
 * DETERMINISM. A tile's partial is a pure function of the tile: per zone,
 * two passes in double over the tile's cells (count, sum, min, max, then
 * the sum of squared deviations from the tile's mean). The partials hold
 * the tile's zones in heap memory, sorted by zone; finish() merges them in
 * tile order with Chan et al.'s formula, so the value is bit-identical for
 * any number of workers (another tiling is another summation order).
 * Histogram counts are exact integers.
 *
 * COMPUTE. Zones and values are converted in chunks (zones to int64 with a
 * sentinel for nodata, values to double with NaN for invalid cells) by
 * typed loops, then one kernel walks runs of equal zones: the running
 * count/sum/min/max stay in registers and are flushed to the zone's slot
 * when the zone changes, so coherent zones cost no per-cell lookup. The
 * slot of a zone is a direct table for 8-bit zone types, else an
 * open-addressing hash map; pass 1 records each cell's slot, so pass 2
 * looks nothing up. The growing per-tile arrays are pooled buffers (a
 * tile of many zones would otherwise pay for fresh pages).
 *
 * POLYGONS (zonal.polygons). The layer is read once in plan() (at most
 * PG__ZONES_MAX features and PG__WKB_MAX bytes of geometry: too_large
 * beyond), reprojected to the raster's CRS when the layer has another one
 * (OGRCoordinateTransformation; when either CRS is unknown they are taken
 * to be the same), and kept as WKB with its bounding box in cell
 * coordinates. A zone is a feature (named by its FID), or with "field" all
 * the features sharing that attribute's value (integer, real or string;
 * null values form the zone null, listed first). Only self-contained
 * formats are opened (GeoJSON, GeoJSONSeq, Shapefile, GeoPackage,
 * FlatGeobuf), from a path confined to the data root. A coarse index
 * (blocks of 256 x 256 cells) gives each tile the features near it. For
 * each tile and zone whose features' boxes meet the tile, GDAL rasterizes
 * those geometries into a byte mask over their box (a MEM dataset wrapping
 * a pooled buffer, geometry to cell coordinates by the raster's inverse
 * geotransform, as GDAL's own transformer computes them): a cell
 * belongs to a zone when its centre is inside one of the zone's polygons
 * (GDAL's rule without ALL_TOUCHED; lines and points: the cells GDAL burns
 * for them). OVERLAPS: every zone is rasterized on its own, so a cell
 * inside two overlapping zones counts in both; a cell inside two
 * overlapping features of one zone counts once. Every zone of the layer is
 * listed, with count 0 when it covers no valid cell centre.
 */
#include "bufpool.h"
#include "graph.h"
#include "nodekey.h"
#include "ops/cells.h"
#include "ops/registry.h"
#include "paths.h"
#include "raster.h"
#include "util.h"

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <float.h>
#include <gdal.h>
#include <gdal_alg.h>
#include <math.h>
#include <ogr_api.h>
#include <ogr_srs_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PG__ZONES_MAX 1000000
_Static_assert(PG__ZONES_MAX < (1 << 20), "slots are sorted as 20-bit fields");
#define PG__WKB_MAX ((size_t)256 << 20)
/* zonal.histogram: zones x bins counts held by finish() at most (int64). */
#define PG__ZH_COUNTS_MAX ((int64_t)1 << 24)
#define PG__CHUNK 1024
#define PG__NOZONE INT64_MIN

/* ======================================================================
 * Moments (as in ops/global.c)
 * ====================================================================== */

typedef struct pg__mom {
    int64_t count;
    double sum, min, max, mean, m2; /* m2: sum of squared deviations from mean */
} pg__mom;

/* Chan, Golub, LeVeque: A (the earlier set in tile order) += B. */
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

static json_t *pg__num(double v, bool integral)
{
    if (!isfinite(v)) return json_null();
    if (integral && fabs(v) <= 9007199254740992.0) return json_integer((json_int_t)v);
    return json_real(v);
}

/* {"zone": KEY (stolen), "count", "sum", "min", "max", "mean", "stddev"} */
static json_t *pg__zone_json(json_t *key, const pg__mom *m, bool integral)
{
    json_t *o = json_object();
    if (o == NULL) {
        json_decref(key);
        return NULL;
    }
    int bad = json_object_set_new(o, "zone", key);
    bad |= json_object_set_new(o, "count", json_integer((json_int_t)m->count));
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
        bad |= json_object_set_new(o, "stddev", pg__num(sqrt(m->m2 / (double)m->count), false));
    }
    if (bad) {
        json_decref(o);
        return NULL;
    }
    return o;
}

/* ======================================================================
 * Conversions
 * ====================================================================== */

/* Zones as int64, PG__NOZONE where nodata. */
#define PG__TOZ(NAME, T)                                                                           \
    static void NAME(const void *src_, size_t n, bool mask, double mv, int64_t *restrict dst)      \
    {                                                                                              \
        const T *restrict src = src_;                                                              \
        if (!mask) {                                                                               \
            for (size_t i = 0; i < n; i++)                                                         \
                dst[i] = (int64_t)src[i];                                                          \
            return;                                                                                \
        }                                                                                          \
        const T nd = (T)mv;                                                                        \
        for (size_t i = 0; i < n; i++) {                                                           \
            const T v = src[i];                                                                    \
            dst[i] = v == nd ? PG__NOZONE : (int64_t)v;                                            \
        }                                                                                          \
    }

PG__TOZ(pg__z_u8, uint8_t)
PG__TOZ(pg__z_i8, int8_t)
PG__TOZ(pg__z_u16, uint16_t)
PG__TOZ(pg__z_i16, int16_t)
PG__TOZ(pg__z_u32, uint32_t)
PG__TOZ(pg__z_i32, int32_t)

typedef void (*pg__zfn)(const void *, size_t, bool, double, int64_t *);
static const pg__zfn pg__zfns[PG_CELLTYPE_COUNT] = {
    pg__z_u8, pg__z_i8, pg__z_u16, pg__z_i16, pg__z_u32, pg__z_i32, NULL, NULL,
};

static pg_tile *pg__scratch(size_t n)
{
    return pg_tile_new(PG_U8, 1, (pg_window){0, 0, (int64_t)(n ? n : 1), 1});
}

/* ======================================================================
 * Zone slots: zone -> index, with per-index zone and moments
 * ====================================================================== */

static inline size_t pg__hash(int64_t z, size_t mask)
{
    return (size_t)(((uint64_t)z * 0x9E3779B97F4A7C15ull) >> 32) & mask;
}

/* The arrays live in pooled buffers (see bufpool.h): a tile with many
 * zones grows them to megabytes, and fresh pages would cost more than the
 * reduction itself; pooled ones are warm after the first tile. */
typedef struct pg__zset {
    bool direct;      /* 8-bit zone types: a table */
    int64_t base;     /* direct: the type's min */
    int32_t lut[256]; /* direct: zone - base -> index, -1 */
    pg_tile *hbuf;    /* hash: keys[hcap] then vals[hcap] */
    int64_t *keys;    /* open addressing, PG__NOZONE = empty */
    int32_t *vals;
    size_t hcap;   /* power of two */
    pg_tile *abuf; /* zone[cap] then mom[cap] */
    int64_t n, cap;
    int64_t *zone;
    pg__mom *mom; /* NULL without moments */
    bool with_mom;
} pg__zset;

static void pg__zset_free(pg__zset *s)
{
    pg_tile_unref(&s->hbuf);
    pg_tile_unref(&s->abuf);
    memset(s, 0, sizeof *s);
}

/* Replaces the hash table by one of NC slots holding the same entries. */
static int pg__zset_hash_new(pg__zset *s, size_t nc, pg_error *err)
{
    pg_tile *b = pg__scratch(nc * (sizeof(int64_t) + sizeof(int32_t)));
    if (b == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    int64_t *k = b->data;
    int32_t *v = (int32_t *)(k + nc);
    for (size_t i = 0; i < nc; i++)
        k[i] = PG__NOZONE;
    for (size_t i = 0; i < s->hcap; i++) {
        if (s->keys[i] == PG__NOZONE) continue;
        size_t h = pg__hash(s->keys[i], nc - 1);
        while (k[h] != PG__NOZONE)
            h = (h + 1) & (nc - 1);
        k[h] = s->keys[i];
        v[h] = s->vals[i];
    }
    pg_tile_unref(&s->hbuf);
    s->hbuf = b;
    s->keys = k;
    s->vals = v;
    s->hcap = nc;
    return 0;
}

static int pg__zset_init(pg__zset *s, pg_celltype ztype, bool with_mom, pg_error *err)
{
    memset(s, 0, sizeof *s);
    s->with_mom = with_mom;
    s->direct = ztype == PG_U8 || ztype == PG_I8;
    s->base = ztype == PG_I8 ? -128 : 0;
    for (int i = 0; i < 256; i++)
        s->lut[i] = -1;
    if (!s->direct) return pg__zset_hash_new(s, 64, err);
    return 0;
}

/* A new slot for zone Z (not present). Returns its index or a negative
 * code (ERR filled). */
static int64_t pg__zset_add(pg__zset *s, int64_t z, const char *opname, pg_error *err)
{
    if (s->n >= PG__ZONES_MAX)
        return pg_error_set(err, PG_ETOOLARGE, "%s: more than %d distinct zones", opname,
                            PG__ZONES_MAX);
    if (s->n == s->cap) {
        const int64_t nc = s->cap ? s->cap * 2 : 64;
        const size_t each = sizeof(int64_t) + (s->with_mom ? sizeof(pg__mom) : 0);
        pg_tile *b = pg__scratch((size_t)nc * each);
        if (b == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
        int64_t *zn = b->data;
        pg__mom *mn = s->with_mom ? (pg__mom *)(zn + nc) : NULL;
        if (s->n) {
            memcpy(zn, s->zone, sizeof *zn * (size_t)s->n);
            if (mn) memcpy(mn, s->mom, sizeof *mn * (size_t)s->n);
        }
        pg_tile_unref(&s->abuf);
        s->abuf = b;
        s->zone = zn;
        s->mom = mn;
        s->cap = nc;
    }
    const int64_t i = s->n++;
    s->zone[i] = z;
    if (s->with_mom) s->mom[i] = (pg__mom){0, 0.0, INFINITY, -INFINITY, 0.0, 0.0};
    return i;
}

/* The slot of zone Z, added if new; a negative code on failure. */
static int64_t pg__zset_get(pg__zset *s, int64_t z, const char *opname, pg_error *err)
{
    if (s->direct) {
        const size_t k = (size_t)(z - s->base) & 255;
        if (s->lut[k] >= 0) return s->lut[k];
        const int64_t i = pg__zset_add(s, z, opname, err);
        if (i >= 0) s->lut[k] = (int32_t)i;
        return i;
    }
    size_t h = pg__hash(z, s->hcap - 1);
    while (s->keys[h] != PG__NOZONE) {
        if (s->keys[h] == z) return s->vals[h];
        h = (h + 1) & (s->hcap - 1);
    }
    const int64_t i = pg__zset_add(s, z, opname, err);
    if (i < 0) return i;
    s->keys[h] = z;
    s->vals[h] = (int32_t)i;
    if ((size_t)s->n * 2 > s->hcap) {
        const int rc = pg__zset_hash_new(s, s->hcap * 2, err);
        if (rc) return rc;
    }
    return i;
}

static int pg__cmp_i64(const void *a, const void *b)
{
    const int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* LSD radix sort of N keys (8-bit digits, digits every key shares are
 * skipped); TMP is scratch of N. Returns the array holding the result. */
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

/* The slot indices of S in ascending zone order (malloc'd): a radix sort
 * of (zone + 2^31) << 20 | slot (zones of 32-bit types fit in 33 bits,
 * slots in 20: PG__ZONES_MAX < 2^20). */
static int64_t *pg__zset_order(const pg__zset *s)
{
    const size_t n = (size_t)s->n;
    int64_t *ord = malloc(sizeof *ord * (n ? n : 1));
    uint64_t *k = malloc(sizeof *k * 2 * (n ? n : 1));
    if (ord == NULL || k == NULL) {
        free(ord);
        free(k);
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        k[i] = (uint64_t)(s->zone[i] + 2147483648LL) << 20 | (uint64_t)i;
    const uint64_t *sorted = pg__radix(k, k + n, n);
    for (size_t i = 0; i < n; i++)
        ord[i] = (int64_t)(sorted[i] & 0xfffff);
    free(k);
    return ord;
}

/* ======================================================================
 * zonal.stats and zonal.histogram: zones from a raster
 * ====================================================================== */

typedef struct pg__zs_state {
    pg_celltype ztype, vtype;
    bool zmask, vmask;
    double zmv, vmv;
    /* zonal.histogram */
    int bins;
    bool ready; /* the range is known */
    double lo, hi, scale;
    double *edges;
} pg__zs_state;

static void pg__zs_free(pg_node *n)
{
    pg__zs_state *st = n->state;
    if (st != NULL) free(st->edges);
    free(st);
    n->state = NULL;
}

static int pg__zplan_common(pg_node *n, const char *opname, pg__zs_state **out, pg_error *err)
{
    const pg_node *zr = n->nargs >= 1 ? n->args[0].ref : NULL;
    const pg_node *vr = n->nargs >= 2 ? n->args[1].ref : NULL;
    if (zr == NULL || (zr->op != NULL && zr->op->result != PG_RESULT_RASTER))
        return pg_error_set(err, PG_ETYPE, "%s: args[0] (the zones) must be a raster", opname);
    if (vr == NULL || (vr->op != NULL && vr->op->result != PG_RESULT_RASTER))
        return pg_error_set(err, PG_ETYPE, "%s: args[1] (the values) must be a raster", opname);
    const pg_raster_info *zi = &zr->info, *vi = &vr->info;
    if (pg_celltype_is_float(zi->type))
        return pg_error_set(err, PG_ETYPE,
                            "%s: the zones raster (args[0]) must have an integer cell type, it is "
                            "%s (convert it first)",
                            opname, pg_celltype_name(zi->type));
    if (zi->bands != 1)
        return pg_error_set(err, PG_ETYPE,
                            "%s: the zones raster (args[0]) must have one band, it has %d", opname,
                            zi->bands);
    if (vi->bands != 1)
        return pg_error_set(err, PG_ETYPE,
                            "%s: the values raster (args[1]) must have one band, it has %d (select "
                            "one with io.load's 'band')",
                            opname, vi->bands);
    if (!pg_raster_same_grid(zi, vi))
        return pg_error_set(err, PG_EGRID,
                            "%s: the zones (args[0], %lldx%lld) and the values (args[1], "
                            "%lldx%lld) are not on the same grid",
                            opname, (long long)zi->width, (long long)zi->height,
                            (long long)vi->width, (long long)vi->height);
    pg__zs_free(n);
    pg__zs_state *st = calloc(1, sizeof *st);
    if (st == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    n->state = st;
    st->ztype = zi->type;
    st->vtype = vi->type;
    pg_cells_nodata_of(zi, &st->zmask, &st->zmv);
    pg_cells_nodata_of(vi, &st->vmask, &st->vmv);
    *out = st;
    return 0;
}

static int pg__zs_tiles_ok(const pg__zs_state *st, pg_tile *const *in, const char *opname,
                           pg_error *err)
{
    const pg_tile *z = in[0], *v = in[1];
    if (z == NULL || v == NULL || z->type != st->ztype || v->type != st->vtype || z->bands != 1 ||
        v->bands != 1 || z->win.w != v->win.w || z->win.h != v->win.h)
        return pg_error_set(err, PG_EINTERNAL, "%s: tiles do not match the rasters", opname);
    return 0;
}

/* ---- zonal.stats ---- */

/* A tile's zones, ascending, with their moments (one allocation). */
typedef struct pg__zs_part {
    int64_t n;
    int64_t *zone;
    pg__mom *mom;
} pg__zs_part;

/* Pass 1 over a chunk: count, sum, min, max per run of one zone, flushed
 * into the zone's slot when the zone changes; SLOT[i] gets the cell's slot
 * (-1: no zone) so that pass 2 needs no lookups. */
static int pg__zs_pass1(pg__zset *L, const int64_t *restrict z, const double *restrict v, size_t n,
                        int32_t *restrict slot, pg_error *err)
{
    int64_t cur = PG__NOZONE, ci = -1, c = 0;
    double s = 0.0, mn = INFINITY, mx = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        const int64_t zz = z[i];
        if (zz != cur) {
            if (ci >= 0) {
                pg__mom *m = &L->mom[ci];
                m->count += c;
                m->sum += s;
                m->min = mn < m->min ? mn : m->min;
                m->max = mx > m->max ? mx : m->max;
            }
            cur = zz;
            ci = zz == PG__NOZONE ? -1 : pg__zset_get(L, zz, "zonal.stats", err);
            if (zz != PG__NOZONE && ci < 0) return (int)ci;
            c = 0;
            s = 0.0;
            mn = INFINITY;
            mx = -INFINITY;
        }
        slot[i] = (int32_t)ci;
        const double x = v[i];
        if (ci < 0 || x != x) continue;
        c++;
        s += x;
        mn = x < mn ? x : mn;
        mx = x > mx ? x : mx;
    }
    if (ci >= 0) {
        pg__mom *m = &L->mom[ci];
        m->count += c;
        m->sum += s;
        m->min = mn < m->min ? mn : m->min;
        m->max = mx > m->max ? mx : m->max;
    }
    return 0;
}

/* Pass 2: the squared deviations from each zone's tile mean, per run of
 * one slot. */
static void pg__zs_pass2(pg__zset *L, const int32_t *restrict slot, const double *restrict v,
                         size_t n)
{
    int32_t ci = -1;
    double acc = 0.0, mean = 0.0;
    for (size_t i = 0; i < n; i++) {
        const int32_t si = slot[i];
        if (si != ci) {
            if (ci >= 0) L->mom[ci].m2 += acc;
            ci = si;
            mean = ci >= 0 ? L->mom[ci].mean : 0.0;
            acc = 0.0;
        }
        const double x = v[i];
        if (ci < 0 || x != x) continue;
        const double d = x - mean;
        acc += d * d;
    }
    if (ci >= 0) L->mom[ci].m2 += acc;
}

static int pg__zstats_plan(pg_node *n, const pg_plan_env *env, pg_error *err)
{
    (void)env;
    pg__zs_state *st = NULL;
    return pg__zplan_common(n, "zonal.stats", &st, err);
}

static int pg__zstats_part(const pg_node *n, void *partial, pg_tile *const *in, pg_error *err)
{
    const pg__zs_state *st = n->state;
    int rc = pg__zs_tiles_ok(st, in, "zonal.stats", err);
    if (rc) return rc;
    const pg_tile *zt = in[0], *vt = in[1];
    const size_t cells = (size_t)zt->win.w * (size_t)zt->win.h;
    const size_t zcs = pg_celltype_size(zt->type), vcs = pg_celltype_size(vt->type);
    pg__zset L;
    if ((rc = pg__zset_init(&L, st->ztype, true, err))) return rc;
    pg_tile *ss = pg__scratch(sizeof(int32_t) * cells);
    if (ss == NULL) {
        pg__zset_free(&L);
        return pg_error_set(err, PG_ENOMEM, "out of memory");
    }
    int32_t *slot = ss->data;
    int64_t zb[PG__CHUNK];
    double vb[PG__CHUNK];
    for (size_t off = 0; off < cells && rc == 0; off += PG__CHUNK) {
        const size_t len = cells - off < PG__CHUNK ? cells - off : PG__CHUNK;
        pg__zfns[zt->type]((const char *)zt->data + off * zcs, len, st->zmask, st->zmv, zb);
        pg_cells_to_dbl[vt->type]((const char *)vt->data + off * vcs, len, st->vmask, st->vmv, vb);
        rc = pg__zs_pass1(&L, zb, vb, len, slot + off, err);
    }
    for (int64_t i = 0; i < L.n; i++)
        L.mom[i].mean = L.mom[i].count ? L.mom[i].sum / (double)L.mom[i].count : 0.0;
    for (size_t off = 0; off < cells && rc == 0; off += PG__CHUNK) {
        const size_t len = cells - off < PG__CHUNK ? cells - off : PG__CHUNK;
        pg_cells_to_dbl[vt->type]((const char *)vt->data + off * vcs, len, st->vmask, st->vmv, vb);
        pg__zs_pass2(&L, slot + off, vb, len);
    }
    pg_tile_unref(&ss);
    int64_t *ord = rc == 0 ? pg__zset_order(&L) : NULL;
    pg__zs_part *p = partial;
    if (rc == 0 && ord != NULL) {
        const size_t nz = (size_t)(L.n ? L.n : 1);
        p->zone = malloc(nz * (sizeof(int64_t) + sizeof(pg__mom)));
        if (p->zone != NULL) {
            p->mom = (pg__mom *)(p->zone + nz);
            for (int64_t i = 0; i < L.n; i++) {
                p->zone[i] = L.zone[ord[i]];
                p->mom[i] = L.mom[ord[i]];
            }
            p->n = L.n;
        }
    }
    if (rc == 0 && (ord == NULL || p->zone == NULL))
        rc = pg_error_set(err, PG_ENOMEM, "out of memory");
    free(ord);
    pg__zset_free(&L);
    return rc;
}

static void pg__zstats_pfree(const pg_node *n, void *partial)
{
    (void)n;
    pg__zs_part *p = partial;
    free(p->zone);
    memset(p, 0, sizeof *p);
}

/* {"zones": LIST} from the slots of G in zone order. */
static int pg__zones_value(const pg__zset *g, bool integral, json_t **value, pg_error *err)
{
    int64_t *ord = pg__zset_order(g);
    json_t *list = json_array(), *v = json_object();
    int bad = ord == NULL || list == NULL || v == NULL;
    for (int64_t i = 0; !bad && i < g->n; i++) {
        const int64_t k = ord[i];
        bad = json_array_append_new(list, pg__zone_json(json_integer((json_int_t)g->zone[k]),
                                                        &g->mom[k], integral)) != 0;
    }
    free(ord);
    if (v != NULL)
        bad |= json_object_set_new(v, "zones", list) != 0;
    else
        json_decref(list);
    if (bad) {
        json_decref(v);
        return pg_error_set(err, PG_ENOMEM, "out of memory");
    }
    *value = v;
    return 0;
}

static int pg__zstats_finish(const pg_node *n, void *const *partials, int64_t count, json_t **value,
                             pg_error *err)
{
    const pg__zs_state *st = n->state;
    pg__zset g;
    int rc = pg__zset_init(&g, st->ztype, true, err);
    for (int64_t k = 0; rc == 0 && k < count; k++) {
        const pg__zs_part *p = partials[k];
        for (int64_t j = 0; j < p->n; j++) {
            const int64_t gi = pg__zset_get(&g, p->zone[j], "zonal.stats", err);
            if (gi < 0) {
                rc = (int)gi;
                break;
            }
            if (g.mom[gi].count == 0 && p->mom[j].count == 0) continue;
            pg__mom_merge(&g.mom[gi], &p->mom[j]);
        }
    }
    if (rc == 0) rc = pg__zones_value(&g, !pg_celltype_is_float(st->vtype), value, err);
    pg__zset_free(&g);
    return rc;
}

/* ---- zonal.histogram ---- */

/* Edges of BINS bins over [LO, HI], as global.histogram. */
static int pg__edges_set(pg__zs_state *st, double lo, double hi, pg_error *err)
{
    if (lo == hi) {
        const double d = fmax(0.5, fabs(lo) * 0x1p-50);
        lo -= d;
        hi += d;
    }
    const int bins = st->bins;
    double *e = malloc(sizeof *e * ((size_t)bins + 1));
    if (e == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    const double w = (hi - lo) / bins;
    e[0] = lo;
    for (int i = 1; i < bins; i++) {
        const double x = lo + i * w;
        e[i] = x < hi ? x : hi;
    }
    e[bins] = hi;
    free(st->edges);
    st->edges = e;
    st->scale = bins / (hi - lo);
    st->lo = lo;
    st->hi = hi;
    st->ready = true;
    return 0;
}

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

/* A tile's zones (ascending), and for zone i the (bin, count) pairs
 * pairs[2*off[i] .. 2*off[i+1]) with bins ascending. */
typedef struct pg__zh_part {
    int64_t nz;
    int64_t *zone;
    int64_t *off;
    uint32_t *pairs;
} pg__zh_part;

#define PG__BIN_BITS 17 /* bins <= 100000 < 2^17 */

static int pg__zhist_plan(pg_node *n, const pg_plan_env *env, pg_error *err)
{
    (void)env;
    pg__zs_state *st = NULL;
    int rc = pg__zplan_common(n, "zonal.histogram", &st, err);
    if (rc) return rc;
    const int64_t bins = pg_param_has(n, "bins") ? pg_param_int(n, "bins") : 256;
    if (bins < 1 || bins > 100000)
        return pg_error_set(err, PG_EPARAM, "param 'bins' must be an integer between 1 and 100000");
    st->bins = (int)bins;
    bool has_value = false;
    if (n->nargs >= 3) {
        const pg_node *r = n->args[2].ref;
        if (r == NULL || r->op == NULL || r->op->result != PG_RESULT_VALUE)
            return pg_error_set(err, PG_ETYPE,
                                "zonal.histogram: args[2] must be a value node (global.stats)");
        has_value = true;
    }
    if (pg_param_has(n, "range")) {
        json_t *v = json_object_get(n->params, "range");
        if (!json_is_array(v) || json_array_size(v) != 2 || !json_is_number(json_array_get(v, 0)) ||
            !json_is_number(json_array_get(v, 1)))
            return pg_error_set(err, PG_EPARAM, "param 'range' must be [lo, hi], two numbers");
        const double lo = json_number_value(json_array_get(v, 0));
        const double hi = json_number_value(json_array_get(v, 1));
        if (!(lo < hi) || !isfinite(hi - lo))
            return pg_error_set(err, PG_EPARAM,
                                "param 'range': lo (%g) must be less than hi (%g), both finite", lo,
                                hi);
        return pg__edges_set(st, lo, hi, err);
    }
    if (!has_value)
        return pg_error_set(err, PG_EPARAM,
                            "param 'range' is required unless args[2] is a global.stats node "
                            "(whose min and max then give the range)");
    return 0;
}

static int pg__zhist_bind(pg_node *n, int i, const json_t *value, pg_error *err)
{
    pg__zs_state *st = n->state;
    if (st == NULL) return pg_error_set(err, PG_EINTERNAL, "zonal.histogram: not planned");
    if (i != 2) return pg_error_set(err, PG_ETYPE, "zonal.histogram: args[%d] is not a value", i);
    if (st->ready) return 0; /* "range" wins */
    const json_t *a = NULL, *b = NULL;
    if (json_is_object(value)) {
        a = json_object_get(value, "min");
        b = json_object_get(value, "max");
    } else if (json_is_array(value) && json_array_size(value) >= 2) {
        a = json_array_get(value, 0);
        b = json_array_get(value, json_array_size(value) - 1);
    }
    if (a != NULL && b != NULL && json_is_null(a) && json_is_null(b))
        return pg__edges_set(st, 0.0, 1.0, err); /* no valid cell */
    if (a == NULL || b == NULL || !json_is_number(a) || !json_is_number(b))
        return pg_error_set(err, PG_ETYPE,
                            "zonal.histogram: args[2] must be a value with numbers \"min\" and "
                            "\"max\" (global.stats) or an array of at least two numbers");
    const double lo = json_number_value(a), hi = json_number_value(b);
    if (!(lo <= hi) || !isfinite(hi - lo))
        return pg_error_set(err, PG_EPARAM, "zonal.histogram: args[2] gives the range [%g, %g]", lo,
                            hi);
    return pg__edges_set(st, lo, hi, err);
}

static int pg__zhist_part(const pg_node *n, void *partial, pg_tile *const *in, pg_error *err)
{
    const pg__zs_state *st = n->state;
    if (!st->ready) return pg_error_set(err, PG_EINTERNAL, "zonal.histogram: range not bound");
    int rc = pg__zs_tiles_ok(st, in, "zonal.histogram", err);
    if (rc) return rc;
    const pg_tile *zt = in[0], *vt = in[1];
    const size_t cells = (size_t)zt->win.w * (size_t)zt->win.h;
    if (cells > UINT32_MAX)
        return pg_error_set(err, PG_ETOOLARGE, "zonal.histogram: a tile of %zu cells is too large",
                            cells);
    const size_t zcs = pg_celltype_size(zt->type), vcs = pg_celltype_size(vt->type);
    pg__zset L;
    if ((rc = pg__zset_init(&L, st->ztype, false, err))) return rc;
    pg_tile *ks = pg__scratch(2 * sizeof(uint64_t) * cells), *cs = NULL;
    int64_t *ord = NULL;
    if (ks == NULL) {
        pg__zset_free(&L);
        return pg_error_set(err, PG_ENOMEM, "out of memory");
    }
    uint64_t *keys = ks->data, *tmp = keys + cells;
    size_t nk = 0;
    const double lo = st->lo, hi = st->hi, scale = st->scale;
    const double *e = st->edges;
    const int bins = st->bins;
    int64_t zb[PG__CHUNK];
    double vb[PG__CHUNK];
    /* Every cell of a valid zone registers the zone; a valid value in the
     * range becomes a key (slot << 17 | bin). */
    for (size_t off = 0; off < cells && rc == 0; off += PG__CHUNK) {
        const size_t len = cells - off < PG__CHUNK ? cells - off : PG__CHUNK;
        pg__zfns[zt->type]((const char *)zt->data + off * zcs, len, st->zmask, st->zmv, zb);
        pg_cells_to_dbl[vt->type]((const char *)vt->data + off * vcs, len, st->vmask, st->vmv, vb);
        int64_t cur = PG__NOZONE, ci = -1;
        for (size_t i = 0; i < len; i++) {
            const int64_t zz = zb[i];
            if (zz != cur) {
                cur = zz;
                ci = zz == PG__NOZONE ? -1 : pg__zset_get(&L, zz, "zonal.histogram", err);
                if (zz != PG__NOZONE && ci < 0) {
                    rc = (int)ci;
                    break;
                }
            }
            const double x = vb[i];
            if (ci < 0 || !(x >= lo && x <= hi)) continue;
            keys[nk++] = (uint64_t)ci << PG__BIN_BITS | (uint64_t)pg__bin_of(e, bins, lo, scale, x);
        }
    }
    if (rc == 0) {
        ord = pg__zset_order(&L);
        if (ord == NULL) rc = pg_error_set(err, PG_ENOMEM, "out of memory");
    }
    pg__zh_part *p = partial;
    if (rc == 0) {
        const size_t nz = (size_t)L.n;
        p->zone = malloc(sizeof *p->zone * (nz ? nz : 1));
        p->off = malloc(sizeof *p->off * (nz + 1));
        if (p->zone == NULL || p->off == NULL) rc = pg_error_set(err, PG_ENOMEM, "out of memory");
    }
    if (rc == 0 && (uint64_t)L.n * (uint64_t)bins <= (nk > 65536 ? nk : 65536)) {
        /* Few zones x bins: dense counts. */
        const size_t nc = (size_t)L.n * (size_t)bins;
        cs = pg__scratch(sizeof(uint32_t) * nc);
        if (cs == NULL) rc = pg_error_set(err, PG_ENOMEM, "out of memory");
        uint32_t *cnt = cs ? cs->data : NULL;
        if (rc == 0) {
            memset(cnt, 0, sizeof(uint32_t) * nc);
            for (size_t i = 0; i < nk; i++)
                cnt[(keys[i] >> PG__BIN_BITS) * (size_t)bins + (keys[i] & 0x1ffff)]++;
            size_t np = 0;
            for (size_t i = 0; i < nc; i++)
                np += cnt[i] != 0;
            p->pairs = malloc(sizeof(uint32_t) * 2 * (np ? np : 1));
            if (p->pairs == NULL) rc = pg_error_set(err, PG_ENOMEM, "out of memory");
        }
        int64_t np = 0;
        for (int64_t j = 0; rc == 0 && j < L.n; j++) {
            const int64_t li = ord[j];
            p->zone[j] = L.zone[li];
            p->off[j] = np;
            const uint32_t *c = cnt + (size_t)li * (size_t)bins;
            for (int b = 0; b < bins; b++) {
                if (c[b] == 0) continue;
                p->pairs[2 * np] = (uint32_t)b;
                p->pairs[2 * np + 1] = c[b];
                np++;
            }
        }
        if (rc == 0) p->off[L.n] = np;
    } else if (rc == 0) {
        /* Many zones x bins: sort the keys (slot-major), then run-length
         * code each slot's range. */
        const uint64_t *k = pg__radix(keys, tmp, nk);
        int64_t *first = malloc(sizeof *first * ((size_t)L.n + 1));
        size_t np = 0;
        for (size_t i = 0; i < nk; i++)
            np += i == 0 || k[i] != k[i - 1];
        p->pairs = malloc(sizeof(uint32_t) * 2 * (np ? np : 1));
        if (first == NULL || p->pairs == NULL) {
            rc = pg_error_set(err, PG_ENOMEM, "out of memory");
        } else {
            /* first[s]: the first key of slot s (keys are sorted by slot). */
            size_t i = 0;
            for (int64_t s = 0; s <= L.n; s++) {
                while (i < nk && (int64_t)(k[i] >> PG__BIN_BITS) < s)
                    i++;
                first[s] = (int64_t)i;
            }
            int64_t q = 0;
            for (int64_t j = 0; j < L.n; j++) {
                const int64_t li = ord[j];
                p->zone[j] = L.zone[li];
                p->off[j] = q;
                for (int64_t a = first[li]; a < first[li + 1]; a++) {
                    if (a > first[li] && k[a] == k[a - 1]) {
                        p->pairs[2 * q - 1]++;
                        continue;
                    }
                    p->pairs[2 * q] = (uint32_t)(k[a] & 0x1ffff);
                    p->pairs[2 * q + 1] = 1;
                    q++;
                }
            }
            p->off[L.n] = q;
        }
        free(first);
    }
    if (rc == 0) p->nz = L.n;
    pg_tile_unref(&cs);
    pg_tile_unref(&ks);
    free(ord);
    pg__zset_free(&L);
    return rc;
}

static void pg__zhist_pfree(const pg_node *n, void *partial)
{
    (void)n;
    pg__zh_part *p = partial;
    free(p->zone);
    free(p->off);
    free(p->pairs);
    memset(p, 0, sizeof *p);
}

static int pg__zhist_finish(const pg_node *n, void *const *partials, int64_t count, json_t **value,
                            pg_error *err)
{
    const pg__zs_state *st = n->state;
    const int bins = st->bins;
    pg__zset g;
    int rc = pg__zset_init(&g, st->ztype, false, err);
    if (rc) return rc;
    int64_t **cnt = NULL, ccap = 0;
    for (int64_t k = 0; rc == 0 && k < count; k++) {
        const pg__zh_part *p = partials[k];
        for (int64_t j = 0; rc == 0 && j < p->nz; j++) {
            const int64_t gi = pg__zset_get(&g, p->zone[j], "zonal.histogram", err);
            if (gi < 0) {
                rc = (int)gi;
                break;
            }
            if (g.n * (int64_t)bins > PG__ZH_COUNTS_MAX) {
                rc = pg_error_set(err, PG_ETOOLARGE,
                                  "zonal.histogram: %lld zones x %d bins is more than %lld counts",
                                  (long long)g.n, bins, (long long)PG__ZH_COUNTS_MAX);
                break;
            }
            if (gi >= ccap) {
                const int64_t nc = ccap ? ccap * 2 : 16;
                int64_t **nn = realloc(cnt, sizeof *nn * (size_t)nc);
                if (nn == NULL) {
                    rc = pg_error_set(err, PG_ENOMEM, "out of memory");
                    break;
                }
                memset(nn + ccap, 0, sizeof *nn * (size_t)(nc - ccap));
                cnt = nn;
                ccap = nc;
            }
            if (cnt[gi] == NULL) {
                cnt[gi] = calloc((size_t)bins, sizeof **cnt);
                if (cnt[gi] == NULL) {
                    rc = pg_error_set(err, PG_ENOMEM, "out of memory");
                    break;
                }
            }
            for (int64_t q = p->off[j]; q < p->off[j + 1]; q++)
                cnt[gi][p->pairs[2 * q]] += p->pairs[2 * q + 1];
        }
    }
    json_t *v = NULL;
    if (rc == 0) {
        int64_t *ord = pg__zset_order(&g);
        json_t *list = json_array(), *edges = json_array();
        v = json_object();
        int bad = ord == NULL || list == NULL || edges == NULL || v == NULL;
        for (int i = 0; !bad && i <= bins; i++)
            bad = json_array_append_new(edges, json_real(st->edges[i])) != 0;
        for (int64_t i = 0; !bad && i < g.n; i++) {
            const int64_t gi = ord[i];
            json_t *b = json_array(), *o = json_object();
            bad = b == NULL || o == NULL;
            for (int q = 0; !bad && q < bins; q++)
                bad = json_array_append_new(b, json_integer((json_int_t)cnt[gi][q])) != 0;
            if (o != NULL) {
                bad |= json_object_set_new(o, "zone", json_integer((json_int_t)g.zone[gi])) != 0;
                bad |= json_object_set_new(o, "bins", b) != 0;
                b = NULL;
                bad |= json_array_append_new(list, o) != 0;
            }
            json_decref(b);
        }
        free(ord);
        if (v != NULL) {
            bad |= json_object_set_new(v, "edges", edges) != 0;
            bad |= json_object_set_new(v, "zones", list) != 0;
        } else {
            json_decref(edges);
            json_decref(list);
        }
        if (bad) {
            json_decref(v);
            v = NULL;
            rc = pg_error_set(err, PG_ENOMEM, "out of memory");
        }
    }
    for (int64_t i = 0; i < ccap; i++)
        free(cnt[i]);
    free(cnt);
    pg__zset_free(&g);
    if (rc == 0) *value = v;
    return rc;
}

/* ======================================================================
 * zonal.polygons: zones from a vector layer
 * ====================================================================== */

typedef struct pg__feat {
    int64_t zone;       /* zone index */
    unsigned char *wkb; /* in the raster's CRS */
    int wkb_len;
    int64_t x0, y0, x1, y1; /* cells that may be burnt: [x0, x1) x [y0, y1) */
} pg__feat;

typedef struct pg__poly_state {
    pg_celltype vtype;
    bool vmask;
    double vmv;
    int64_t width, height;
    double gt[6], inv[6]; /* cell <-> georeferenced coordinates */
    int64_t nzones;
    json_t **keys; /* zone names, ascending */
    int64_t nfeat;
    pg__feat *feat;  /* sorted by zone */
    int64_t *zfirst; /* nzones + 1: zone z's features are feat[zfirst[z] .. zfirst[z+1]) */
    /* A coarse index, so that a tile looks only at the features near it:
     * blocks of PG__IDX_BLOCK x PG__IDX_BLOCK cells, each with the features
     * whose box meets it (CSR: bitems[bstart[b] .. bstart[b+1]), ascending),
     * except features spanning more than PG__IDX_BIG blocks, which every
     * tile checks (big[0 .. nbig)). */
    int64_t nbx, nby;
    int64_t *bstart, *bitems;
    int64_t nbig, *big;
    /* For the result cache: the vector file and each other file GDAL says
     * the dataset uses (a Shapefile's .shx, .dbf, .prj), resolved, as
     * identified before reading (nfiles 0: it could not be). */
    int nfiles;
    char **fpaths;
    pg_file_id *fids;
} pg__poly_state;

#define PG__IDX_BLOCK 256
#define PG__IDX_BIG 64

static void pg__poly_free(pg_node *n)
{
    pg__poly_state *st = n->state;
    if (st != NULL) {
        for (int64_t i = 0; i < st->nzones; i++)
            json_decref(st->keys[i]);
        free(st->keys);
        for (int64_t i = 0; i < st->nfeat; i++)
            free(st->feat[i].wkb);
        free(st->feat);
        free(st->zfirst);
        free(st->bstart);
        free(st->bitems);
        free(st->big);
        for (int i = 0; i < st->nfiles; i++)
            free(st->fpaths[i]);
        free(st->fpaths);
        free(st->fids);
        free(st);
    }
    n->state = NULL;
}

/* Zone names order: null, then numbers (numerically), then strings
 * (bytewise). */
static int pg__key_rank(const json_t *k)
{
    return json_is_null(k) ? 0 : json_is_number(k) ? 1 : 2;
}

static int pg__key_cmp(const json_t *a, const json_t *b)
{
    const int ra = pg__key_rank(a), rb = pg__key_rank(b);
    if (ra != rb) return ra - rb;
    if (ra == 1) {
        if (json_is_integer(a) && json_is_integer(b)) {
            const json_int_t x = json_integer_value(a), y = json_integer_value(b);
            return (x > y) - (x < y);
        }
        const double x = json_number_value(a), y = json_number_value(b);
        return (x > y) - (x < y);
    }
    if (ra == 2) return strcmp(json_string_value(a), json_string_value(b));
    return 0;
}

/* A feature as read: its zone name, its order in the layer, its geometry. */
typedef struct pg__item {
    json_t *key;
    int64_t order;
    pg__feat f;
    bool has_geom;
} pg__item;

static int pg__item_cmp(const void *a_, const void *b_)
{
    const pg__item *a = a_, *b = b_;
    const int c = pg__key_cmp(a->key, b->key);
    if (c) return c;
    return (a->order > b->order) - (a->order < b->order);
}

/* The cells a geometry's envelope may burn (one cell of margin), clipped
 * to the raster; empty when it misses the raster. */
static void pg__env_cells(const pg__poly_state *st, const OGREnvelope *e, pg__feat *f)
{
    const double xs[4] = {e->MinX, e->MaxX, e->MinX, e->MaxX};
    const double ys[4] = {e->MinY, e->MinY, e->MaxY, e->MaxY};
    double px0 = INFINITY, px1 = -INFINITY, py0 = INFINITY, py1 = -INFINITY;
    for (int i = 0; i < 4; i++) {
        const double px = st->inv[0] + st->inv[1] * xs[i] + st->inv[2] * ys[i];
        const double py = st->inv[3] + st->inv[4] * xs[i] + st->inv[5] * ys[i];
        px0 = fmin(px0, px);
        px1 = fmax(px1, px);
        py0 = fmin(py0, py);
        py1 = fmax(py1, py);
    }
    /* Clamp in double first: a far-away envelope must not overflow int64. */
    const double W = (double)st->width, H = (double)st->height;
    px0 = fmax(0.0, fmin(W, floor(px0) - 1));
    py0 = fmax(0.0, fmin(H, floor(py0) - 1));
    px1 = fmax(0.0, fmin(W, ceil(px1) + 1));
    py1 = fmax(0.0, fmin(H, ceil(py1) + 1));
    f->x0 = (int64_t)px0;
    f->y0 = (int64_t)py0;
    f->x1 = (int64_t)px1;
    f->y1 = (int64_t)py1;
}

/* The zone name of feature F: FIELD's value (-1: the FID). NULL when out
 * of memory or the value is not UTF-8. */
static json_t *pg__feat_key(OGRFeatureH f, int field, OGRFieldType ft)
{
    if (field < 0) return json_integer((json_int_t)OGR_F_GetFID(f));
    if (!OGR_F_IsFieldSetAndNotNull(f, field)) return json_null();
    switch (ft) {
    case OFTInteger:
    case OFTInteger64:
        return json_integer((json_int_t)OGR_F_GetFieldAsInteger64(f, field));
    case OFTReal: {
        const double d = OGR_F_GetFieldAsDouble(f, field);
        return isfinite(d) ? json_real(d) : json_null();
    }
    default:
        return json_string(OGR_F_GetFieldAsString(f, field));
    }
}

/* Reads the layer's features into ITEMS (see pg__poly_plan). */
static int pg__poly_read(pg__poly_state *st, OGRLayerH layer, int field, OGRFieldType ft,
                         OGRCoordinateTransformationH ct, pg__item **items_out, int64_t *nitems_out,
                         pg_error *err)
{
    int64_t nitems = 0, cap = 0;
    pg__item *items = NULL;
    size_t wkb_total = 0;
    int rc = 0;
    OGRFeatureH f;
    OGR_L_ResetReading(layer);
    while (rc == 0 && (f = OGR_L_GetNextFeature(layer)) != NULL) {
        if (nitems >= PG__ZONES_MAX) {
            rc = pg_error_set(err, PG_ETOOLARGE,
                              "param 'path': the layer has more than %d features", PG__ZONES_MAX);
            OGR_F_Destroy(f);
            break;
        }
        if (nitems == cap) {
            const int64_t nc = cap ? cap * 2 : 64;
            pg__item *ni = realloc(items, sizeof *ni * (size_t)nc);
            if (ni == NULL) {
                rc = pg_error_set(err, PG_ENOMEM, "out of memory");
                OGR_F_Destroy(f);
                break;
            }
            items = ni;
            cap = nc;
        }
        pg__item *it = &items[nitems];
        memset(it, 0, sizeof *it);
        it->order = nitems;
        it->key = pg__feat_key(f, field, ft);
        if (it->key == NULL) {
            rc = pg_error_set(err, PG_EFORMAT,
                              "param 'field': feature %lld's value is not UTF-8 text",
                              (long long)OGR_F_GetFID(f));
            OGR_F_Destroy(f);
            break;
        }
        nitems++;
        OGRGeometryH g0 = OGR_F_GetGeometryRef(f);
        if (g0 != NULL && !OGR_G_IsEmpty(g0)) {
            OGRGeometryH g = OGR_G_HasCurveGeometry(g0, FALSE)
                                 ? OGR_G_GetLinearGeometry(g0, 0, NULL)
                                 : OGR_G_Clone(g0);
            if (g == NULL) {
                rc = pg_error_set(err, PG_ENOMEM, "out of memory");
            } else {
                OGR_G_FlattenTo2D(g);
                if (ct != NULL && OGR_G_Transform(g, ct) != OGRERR_NONE)
                    rc = pg_error_set(err, PG_EGRID,
                                      "param 'path': feature %lld cannot be transformed to the "
                                      "raster's CRS",
                                      (long long)OGR_F_GetFID(f));
                const int len = rc == 0 ? OGR_G_WkbSize(g) : 0;
                if (rc == 0 && (wkb_total += (size_t)len) > PG__WKB_MAX)
                    rc = pg_error_set(err, PG_ETOOLARGE,
                                      "param 'path': the layer's geometries are larger than %zu "
                                      "MiB",
                                      PG__WKB_MAX >> 20);
                if (rc == 0) {
                    it->f.wkb = malloc((size_t)len);
                    it->f.wkb_len = len;
                    if (it->f.wkb == NULL)
                        rc = pg_error_set(err, PG_ENOMEM, "out of memory");
                    else if (OGR_G_ExportToWkb(g, wkbNDR, it->f.wkb) != OGRERR_NONE)
                        rc = pg_error_set(err, PG_EFORMAT,
                                          "param 'path': feature %lld: bad geometry",
                                          (long long)OGR_F_GetFID(f));
                }
                if (rc == 0) {
                    OGREnvelope env;
                    OGR_G_GetEnvelope(g, &env);
                    pg__env_cells(st, &env, &it->f);
                    it->has_geom = true;
                }
                OGR_G_DestroyGeometry(g);
            }
        }
        OGR_F_Destroy(f);
    }
    *items_out = items;
    *nitems_out = nitems;
    return rc;
}

/* The blocks a feature's box meets: [bx0, bx1) x [by0, by1); empty when
 * the box misses the raster. */
static void pg__feat_blocks(const pg__feat *f, int64_t *bx0, int64_t *by0, int64_t *bx1,
                            int64_t *by1)
{
    *bx0 = f->x0 / PG__IDX_BLOCK;
    *by0 = f->y0 / PG__IDX_BLOCK;
    *bx1 = f->x1 > f->x0 ? (f->x1 - 1) / PG__IDX_BLOCK + 1 : *bx0;
    *by1 = f->y1 > f->y0 ? (f->y1 - 1) / PG__IDX_BLOCK + 1 : *by0;
}

static int pg__poly_index(pg__poly_state *st, pg_error *err)
{
    st->nbx = (st->width + PG__IDX_BLOCK - 1) / PG__IDX_BLOCK;
    st->nby = (st->height + PG__IDX_BLOCK - 1) / PG__IDX_BLOCK;
    const size_t nb = (size_t)(st->nbx * st->nby);
    st->bstart = calloc(nb + 1, sizeof *st->bstart);
    if (st->bstart == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    /* Two passes: count per block (in bstart[b + 1]), then fill. */
    for (int pass = 0; pass < 2; pass++) {
        int64_t *fill = NULL;
        if (pass == 1) {
            for (size_t b = 0; b < nb; b++)
                st->bstart[b + 1] += st->bstart[b];
            st->bitems = malloc(sizeof *st->bitems * (size_t)(st->bstart[nb] ? st->bstart[nb] : 1));
            st->big = malloc(sizeof *st->big * (size_t)(st->nbig ? st->nbig : 1));
            fill = calloc(nb ? nb : 1, sizeof *fill);
            if (st->bitems == NULL || st->big == NULL || fill == NULL) {
                free(fill);
                return pg_error_set(err, PG_ENOMEM, "out of memory");
            }
            st->nbig = 0;
        }
        for (int64_t k = 0; k < st->nfeat; k++) {
            int64_t bx0, by0, bx1, by1;
            pg__feat_blocks(&st->feat[k], &bx0, &by0, &bx1, &by1);
            const int64_t span = (bx1 - bx0) * (by1 - by0);
            if (span == 0) continue;
            if (span > PG__IDX_BIG) {
                if (pass == 1) st->big[st->nbig] = k;
                st->nbig++;
                continue;
            }
            for (int64_t by = by0; by < by1; by++)
                for (int64_t bx = bx0; bx < bx1; bx++) {
                    const size_t b = (size_t)(by * st->nbx + bx);
                    if (pass == 0)
                        st->bstart[b + 1]++;
                    else
                        st->bitems[st->bstart[b] + fill[b]++] = k;
                }
        }
        free(fill);
    }
    return 0;
}

/* Records PATH as identified (ID; NULL: it could not be stat'ed, then the
 * node gets no cache key) and every other file of DS, stat'ed now. */
static int pg__poly_files(pg__poly_state *st, const char *path, const pg_file_id *id,
                          GDALDatasetH ds, pg_error *err)
{
    if (id == NULL) return 0;
    char **list = GDALGetFileList(ds);
    int n = 1 + CSLCount(list);
    st->fpaths = calloc((size_t)n, sizeof *st->fpaths);
    st->fids = calloc((size_t)n, sizeof *st->fids);
    if (st->fpaths == NULL || st->fids == NULL || (st->fpaths[0] = strdup(path)) == NULL) {
        CSLDestroy(list);
        return pg_error_set(err, PG_ENOMEM, "out of memory");
    }
    st->fids[0] = *id;
    st->nfiles = 1;
    for (char **f = list; f != NULL && *f != NULL; f++) {
        char *real = realpath(*f, NULL);
        if (real != NULL && strcmp(real, path) != 0 &&
            pg_file_identify(real, &st->fids[st->nfiles]) == 0) {
            st->fpaths[st->nfiles++] = real;
            real = NULL;
        }
        free(real);
    }
    CSLDestroy(list);
    return 0;
}

/* The result cache's view of the vector files (see pg__poly_files and
 * pg_nodekey_file). */
static int pg__poly_identity(const pg_node *n, json_t *out, pg_error *err)
{
    const pg__poly_state *st = n->state;
    if (st == NULL || st->nfiles == 0)
        return pg_error_set(err, PG_ENOTFOUND, "the vector file could not be identified");
    json_t *files = json_array();
    if (files == NULL || json_object_set_new(out, "files", files))
        return pg_error_set(err, PG_ENOMEM, "out of memory");
    for (int i = 0; i < st->nfiles; i++) {
        json_t *f = pg_nodekey_file(st->fpaths[i], &st->fids[i], err);
        if (f == NULL) return err->code;
        if (json_array_append_new(files, f)) return pg_error_set(err, PG_ENOMEM, "out of memory");
    }
    return 0;
}

/* "path" (a vector file in the data root), "layer", "field": reads the
 * features once, reprojected, grouped into zones. */
static int pg__poly_plan(pg_node *n, const pg_plan_env *env, pg_error *err)
{
    const pg_node *vr = n->nargs >= 1 ? n->args[0].ref : NULL;
    if (vr == NULL || (vr->op != NULL && vr->op->result != PG_RESULT_RASTER))
        return pg_error_set(err, PG_ETYPE, "zonal.polygons: args[0] (the values) must be a raster");
    const pg_raster_info *vi = &vr->info;
    if (vi->bands != 1)
        return pg_error_set(err, PG_ETYPE,
                            "zonal.polygons: the values raster (args[0]) must have one band, it "
                            "has %d (select one with io.load's 'band')",
                            vi->bands);
    if (!vi->has_geotransform)
        return pg_error_set(err, PG_EGRID,
                            "zonal.polygons: the values raster has no geotransform: polygons "
                            "cannot be placed on it");
    pg__poly_free(n);
    pg__poly_state *st = calloc(1, sizeof *st);
    if (st == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    n->state = st;
    st->vtype = vi->type;
    pg_cells_nodata_of(vi, &st->vmask, &st->vmv);
    st->width = vi->width;
    st->height = vi->height;
    memcpy(st->gt, vi->geotransform, sizeof st->gt);
    if (!GDALInvGeoTransform(st->gt, st->inv))
        return pg_error_set(err, PG_EGRID,
                            "zonal.polygons: the values raster's geotransform is not invertible");

    const char *upath = pg_param_str(n, "path");
    char *path = NULL;
    int rc = pg_path_for_read(env->data_root, upath ? upath : "", &path, err);
    if (rc) return rc;
    /* Only self-contained formats: no VRT, no network, nothing that points
     * at other files (a Shapefile's .shx/.dbf sit next to it). */
    static const char *const drivers[] = {"GeoJSON", "GeoJSONSeq", "ESRI Shapefile",
                                          "GPKG",    "FlatGeobuf", NULL};
    /* Identified before it is read (a file rewritten meanwhile then gets
     * another key the next time, never this one again). */
    pg_file_id fid;
    int have_id = pg_file_identify(path, &fid) == 0;
    GDALDatasetH ds = GDALOpenEx(path, GDAL_OF_VECTOR | GDAL_OF_READONLY, drivers, NULL, NULL);
    if (ds == NULL) {
        free(path);
        return pg_error_set(err, PG_EFORMAT,
                            "param 'path': '%s' is not a vector file this op reads (GeoJSON, "
                            "Shapefile, GeoPackage, FlatGeobuf)",
                            upath);
    }
    rc = pg__poly_files(st, path, have_id ? &fid : NULL, ds, err);
    free(path);
    if (rc) {
        GDALClose(ds);
        return rc;
    }
    OGRSpatialReferenceH rsrs = NULL;
    OGRCoordinateTransformationH ct = NULL;
    pg__item *items = NULL;
    int64_t nitems = 0;

    const char *lname = pg_param_str(n, "layer");
    OGRLayerH layer = lname                              ? GDALDatasetGetLayerByName(ds, lname)
                      : GDALDatasetGetLayerCount(ds) > 0 ? GDALDatasetGetLayer(ds, 0)
                                                         : NULL;
    if (layer == NULL) {
        rc = lname ? pg_error_set(err, PG_EPARAM, "param 'layer': '%s' has no layer '%s'", upath,
                                  lname)
                   : pg_error_set(err, PG_EFORMAT, "param 'path': '%s' has no layer", upath);
        goto done;
    }
    OGRFeatureDefnH fd = OGR_L_GetLayerDefn(layer);
    const char *fname = pg_param_str(n, "field");
    int field = -1;
    OGRFieldType ft = OFTInteger64;
    if (fname != NULL) {
        field = OGR_FD_GetFieldIndex(fd, fname);
        if (field < 0) {
            char list[256] = "";
            for (int i = 0; i < OGR_FD_GetFieldCount(fd); i++) {
                const char *nm = OGR_Fld_GetNameRef(OGR_FD_GetFieldDefn(fd, i));
                if (strlen(list) + strlen(nm) + 3 >= sizeof list) break;
                if (i) strcat(list, ", ");
                strcat(list, nm);
            }
            rc = pg_error_set(err, PG_EPARAM, "param 'field': the layer has no field '%s' (%s%s)",
                              fname, list[0] ? "fields: " : "no fields", list);
            goto done;
        }
        ft = OGR_Fld_GetType(OGR_FD_GetFieldDefn(fd, field));
    }
    /* Reproject when both CRSs are known and differ. */
    OGRSpatialReferenceH lsrs = OGR_L_GetSpatialRef(layer);
    if (lsrs != NULL && vi->crs_wkt != NULL && vi->crs_wkt[0] != '\0') {
        rsrs = OSRNewSpatialReference(NULL);
        char *wkt = vi->crs_wkt;
        if (rsrs == NULL || OSRImportFromWkt(rsrs, &wkt) != OGRERR_NONE) {
            rc = pg_error_set(err, PG_EGRID, "zonal.polygons: the raster's CRS cannot be read");
            goto done;
        }
        OSRSetAxisMappingStrategy(rsrs, OAMS_TRADITIONAL_GIS_ORDER);
        if (!OSRIsSame(lsrs, rsrs)) {
            OGRSpatialReferenceH l2 = OSRClone(lsrs);
            if (l2 != NULL) {
                OSRSetAxisMappingStrategy(l2, OAMS_TRADITIONAL_GIS_ORDER);
                ct = OCTNewCoordinateTransformation(l2, rsrs);
                OSRDestroySpatialReference(l2);
            }
            if (ct == NULL) {
                rc = pg_error_set(err, PG_EGRID,
                                  "param 'path': no transformation from the layer's CRS to the "
                                  "raster's");
                goto done;
            }
        }
    }
    if ((rc = pg__poly_read(st, layer, field, ft, ct, &items, &nitems, err))) goto done;

    /* Group into zones: sort by (name, order). */
    qsort(items, (size_t)nitems, sizeof *items, pg__item_cmp);
    int64_t nz = 0, nf = 0;
    for (int64_t i = 0; i < nitems; i++) {
        nz += i == 0 || pg__key_cmp(items[i].key, items[i - 1].key) != 0;
        nf += items[i].has_geom;
    }
    st->keys = calloc((size_t)(nz ? nz : 1), sizeof *st->keys);
    st->zfirst = calloc((size_t)nz + 1, sizeof *st->zfirst);
    st->feat = calloc((size_t)(nf ? nf : 1), sizeof *st->feat);
    if (st->keys == NULL || st->zfirst == NULL || st->feat == NULL) {
        rc = pg_error_set(err, PG_ENOMEM, "out of memory");
        goto done;
    }
    int64_t z = -1;
    for (int64_t i = 0; i < nitems; i++) {
        /* (items before i have given their key away: compare with the zone's) */
        if (z < 0 || pg__key_cmp(items[i].key, st->keys[z]) != 0) {
            z++;
            st->keys[z] = items[i].key; /* the reference moves */
            items[i].key = NULL;
            st->zfirst[z] = st->nfeat;
            st->nzones = z + 1;
        }
        if (items[i].has_geom) {
            st->feat[st->nfeat] = items[i].f;
            st->feat[st->nfeat].zone = z;
            items[i].f.wkb = NULL;
            st->nfeat++;
        }
    }
    st->zfirst[st->nzones] = st->nfeat;
    rc = pg__poly_index(st, err);
done:
    for (int64_t i = 0; i < nitems; i++) {
        json_decref(items[i].key);
        free(items[i].f.wkb);
    }
    free(items);
    if (ct != NULL) OCTDestroyCoordinateTransformation(ct);
    if (rsrs != NULL) OSRDestroySpatialReference(rsrs);
    GDALClose(ds);
    return rc;
}

/* GDAL's rasterizer asks for cell coordinates in the mask: the raster's
 * inverse geotransform (the expression GDAL's own transformer uses), minus
 * the mask's origin (exact: both are on the grid of the larger value). */
typedef struct pg__xf {
    const double *inv;
    double gt[6];
    double x0, y0;
} pg__xf;

static int pg__xf_fn(void *arg, int dst_to_src, int n, double *x, double *y, double *z, int *ok)
{
    (void)z;
    const pg__xf *t = arg;
    for (int i = 0; i < n; i++) {
        const double X = x[i], Y = y[i];
        if (!dst_to_src) {
            x[i] = t->inv[0] + X * t->inv[1] + Y * t->inv[2] - t->x0;
            y[i] = t->inv[3] + X * t->inv[4] + Y * t->inv[5] - t->y0;
        } else {
            const double px = X + t->x0, py = Y + t->y0;
            x[i] = t->gt[0] + px * t->gt[1] + py * t->gt[2];
            y[i] = t->gt[3] + px * t->gt[4] + py * t->gt[5];
        }
        ok[i] = TRUE;
    }
    return TRUE;
}

/* A tile's zones (indices ascending) with their moments. */
typedef struct pg__poly_part {
    int64_t n;
    int64_t *zi;
    pg__mom *mom;
} pg__poly_part;

static int pg__poly_part_fn(const pg_node *n, void *partial, pg_tile *const *in, pg_error *err)
{
    const pg__poly_state *st = n->state;
    const pg_tile *t = in[0];
    if (t == NULL || t->type != st->vtype || t->bands != 1)
        return pg_error_set(err, PG_EINTERNAL, "zonal.polygons: tile does not match the raster");
    const pg_window w = t->win;
    const size_t cells = (size_t)w.w * (size_t)w.h;
    pg__poly_part *p = partial;
    /* The features whose box meets the tile: from the index blocks the
     * tile meets and the big features, ascending and distinct (so grouped
     * by zone: features are sorted by zone). */
#define PG__MEETS(f) ((f)->x0 < w.x + w.w && (f)->x1 > w.x && (f)->y0 < w.y + w.h && (f)->y1 > w.y)
    const int64_t bx0 = w.x / PG__IDX_BLOCK, by0 = w.y / PG__IDX_BLOCK;
    const int64_t bx1 = (w.x + w.w - 1) / PG__IDX_BLOCK, by1 = (w.y + w.h - 1) / PG__IDX_BLOCK;
    int64_t ncand = st->nbig;
    for (int64_t by = by0; by <= by1 && by < st->nby; by++)
        for (int64_t bx = bx0; bx <= bx1 && bx < st->nbx; bx++) {
            const size_t b = (size_t)(by * st->nbx + bx);
            ncand += st->bstart[b + 1] - st->bstart[b];
        }
    if (ncand == 0) return 0;
    int64_t *cand = malloc(sizeof *cand * (size_t)ncand);
    if (cand == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    int64_t nc = 0;
    for (int64_t i = 0; i < st->nbig; i++)
        if (PG__MEETS(&st->feat[st->big[i]])) cand[nc++] = st->big[i];
    for (int64_t by = by0; by <= by1 && by < st->nby; by++)
        for (int64_t bx = bx0; bx <= bx1 && bx < st->nbx; bx++) {
            const size_t b = (size_t)(by * st->nbx + bx);
            for (int64_t i = st->bstart[b]; i < st->bstart[b + 1]; i++)
                if (PG__MEETS(&st->feat[st->bitems[i]])) cand[nc++] = st->bitems[i];
        }
    qsort(cand, (size_t)nc, sizeof *cand, pg__cmp_i64);
    int64_t u = 0, nhit = 0;
    for (int64_t i = 0; i < nc; i++) {
        if (u > 0 && cand[i] == cand[u - 1]) continue;
        nhit += u == 0 || st->feat[cand[i]].zone != st->feat[cand[u - 1]].zone;
        cand[u++] = cand[i];
    }
    nc = u;
#undef PG__MEETS
    if (nhit == 0) {
        free(cand);
        return 0;
    }
    p->zi = malloc((size_t)nhit * (sizeof(int64_t) + sizeof(pg__mom)));
    if (p->zi == NULL) {
        free(cand);
        return pg_error_set(err, PG_ENOMEM, "out of memory");
    }
    p->mom = (pg__mom *)(p->zi + nhit);

    int rc = 0;
    pg_tile *vs = pg__scratch(cells * sizeof(double) + cells);
    OGRGeometryH *geoms = NULL;
    GDALDriverH mem = GDALGetDriverByName("MEM");
    if (vs == NULL || mem == NULL) {
        pg_tile_unref(&vs);
        free(cand);
        return pg_error_set(err, vs ? PG_EINTERNAL : PG_ENOMEM,
                            vs ? "GDAL's MEM driver is missing" : "out of memory");
    }
    /* The values as doubles (NaN: invalid), then the mask buffer. */
    double *val = vs->data;
    unsigned char *mask = (unsigned char *)(val + cells);
    pg_cells_to_dbl[t->type](t->data, cells, st->vmask, st->vmv, val);
    pg__xf xf = {.inv = st->inv};
    memcpy(xf.gt, st->gt, sizeof xf.gt);

    for (int64_t g0 = 0, g1; rc == 0 && g0 < nc; g0 = g1) {
        /* cand[g0 .. g1): the features of one zone that meet the tile */
        const int64_t zi = st->feat[cand[g0]].zone;
        int64_t x0 = INT64_MAX, y0 = INT64_MAX, x1 = INT64_MIN, y1 = INT64_MIN;
        for (g1 = g0; g1 < nc && st->feat[cand[g1]].zone == zi; g1++) {
            const pg__feat *f = &st->feat[cand[g1]];
            x0 = f->x0 < x0 ? f->x0 : x0;
            y0 = f->y0 < y0 ? f->y0 : y0;
            x1 = f->x1 > x1 ? f->x1 : x1;
            y1 = f->y1 > y1 ? f->y1 : y1;
        }
        const int64_t ng = g1 - g0;
        /* The box, clipped to the tile. */
        x0 = x0 > w.x ? x0 : w.x;
        y0 = y0 > w.y ? y0 : w.y;
        x1 = x1 < w.x + w.w ? x1 : w.x + w.w;
        y1 = y1 < w.y + w.h ? y1 : w.y + w.h;
        const int bw = (int)(x1 - x0), bh = (int)(y1 - y0);
        geoms = calloc((size_t)ng, sizeof *geoms);
        if (geoms == NULL) {
            rc = pg_error_set(err, PG_ENOMEM, "out of memory");
            break;
        }
        int64_t gi = 0;
        for (int64_t q = g0; rc == 0 && q < g1; q++) {
            const pg__feat *f = &st->feat[cand[q]];
            if (OGR_G_CreateFromWkb(f->wkb, NULL, &geoms[gi], f->wkb_len) != OGRERR_NONE)
                rc = pg_error_set(err, PG_EINTERNAL, "zonal.polygons: cannot rebuild a geometry");
            else
                gi++;
        }
        memset(mask, 0, (size_t)bw * (size_t)bh);
        GDALDatasetH ds = rc == 0 ? GDALCreate(mem, "", bw, bh, 0, GDT_Byte, NULL) : NULL;
        if (rc == 0) {
            char ptr[64];
            snprintf(ptr, sizeof ptr, "DATAPOINTER=%p", (void *)mask);
            char *opts[] = {ptr, NULL};
            if (ds == NULL || GDALAddBand(ds, GDT_Byte, opts) != CE_None) {
                rc = pg_error_set(err, PG_EINTERNAL, "zonal.polygons: cannot make a MEM dataset");
            } else {
                xf.x0 = (double)x0;
                xf.y0 = (double)y0;
                int band = 1;
                double *burn = malloc(sizeof *burn * (size_t)gi);
                for (int64_t q = 0; burn != NULL && q < gi; q++)
                    burn[q] = 1.0;
                CPLErrorReset();
                if (burn == NULL)
                    rc = pg_error_set(err, PG_ENOMEM, "out of memory");
                else if (GDALRasterizeGeometries(ds, 1, &band, (int)gi, geoms, pg__xf_fn, &xf, burn,
                                                 NULL, NULL, NULL) != CE_None)
                    rc = pg_error_set(err, PG_EIO, "zonal.polygons: rasterizing failed: %s",
                                      CPLGetLastErrorMsg());
                free(burn);
            }
        }
        if (ds != NULL) GDALClose(ds);
        for (int64_t q = 0; q < gi; q++)
            OGR_G_DestroyGeometry(geoms[q]);
        free(geoms);
        geoms = NULL;
        if (rc) break;
        /* Two passes over the box: count, sum, min, max; then M2. */
        pg__mom m = {0, 0.0, INFINITY, -INFINITY, 0.0, 0.0};
        for (int yy = 0; yy < bh; yy++) {
            const unsigned char *mr = mask + (size_t)yy * (size_t)bw;
            const double *vr = val + (size_t)(y0 - w.y + yy) * (size_t)w.w + (size_t)(x0 - w.x);
            for (int xx = 0; xx < bw; xx++) {
                const double x = vr[xx];
                if (!mr[xx] || x != x) continue;
                m.count++;
                m.sum += x;
                m.min = x < m.min ? x : m.min;
                m.max = x > m.max ? x : m.max;
            }
        }
        if (m.count == 0) continue;
        m.mean = m.sum / (double)m.count;
        for (int yy = 0; yy < bh; yy++) {
            const unsigned char *mr = mask + (size_t)yy * (size_t)bw;
            const double *vr = val + (size_t)(y0 - w.y + yy) * (size_t)w.w + (size_t)(x0 - w.x);
            for (int xx = 0; xx < bw; xx++) {
                const double x = vr[xx];
                if (!mr[xx] || x != x) continue;
                m.m2 += (x - m.mean) * (x - m.mean);
            }
        }
        p->zi[p->n] = zi;
        p->mom[p->n] = m;
        p->n++;
    }
    pg_tile_unref(&vs);
    free(cand);
    return rc;
}

static void pg__poly_pfree(const pg_node *n, void *partial)
{
    (void)n;
    pg__poly_part *p = partial;
    free(p->zi);
    memset(p, 0, sizeof *p);
}

static int pg__poly_finish(const pg_node *n, void *const *partials, int64_t count, json_t **value,
                           pg_error *err)
{
    const pg__poly_state *st = n->state;
    pg__mom *g = malloc(sizeof *g * (size_t)(st->nzones ? st->nzones : 1));
    if (g == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    for (int64_t i = 0; i < st->nzones; i++)
        g[i] = (pg__mom){0, 0.0, INFINITY, -INFINITY, 0.0, 0.0};
    for (int64_t k = 0; k < count; k++) {
        const pg__poly_part *p = partials[k];
        for (int64_t j = 0; j < p->n; j++)
            pg__mom_merge(&g[p->zi[j]], &p->mom[j]);
    }
    const bool integral = !pg_celltype_is_float(st->vtype);
    json_t *list = json_array(), *v = json_object();
    int bad = list == NULL || v == NULL;
    for (int64_t i = 0; !bad && i < st->nzones; i++)
        bad = json_array_append_new(list,
                                    pg__zone_json(json_incref(st->keys[i]), &g[i], integral)) != 0;
    free(g);
    if (v != NULL)
        bad |= json_object_set_new(v, "zones", list) != 0;
    else
        json_decref(list);
    if (bad) {
        json_decref(v);
        return pg_error_set(err, PG_ENOMEM, "out of memory");
    }
    *value = v;
    return 0;
}

/* ======================================================================
 * The table
 * ====================================================================== */

static const pg_param_def pg__zstats_params[] = {{0}};

static const pg_param_def pg__zhist_params[] = {
    {.name = "bins",
     .type = PG_PARAM_INT,
     .default_json = "256",
     .doc = "Number of equal-width bins, 1 to 100000 (zones x bins at most 16777216). Default "
            "256.",
     .min = 1,
     .max = 100000},
    {.name = "range",
     .type = PG_PARAM_JSON,
     .doc = "[lo, hi] (lo < hi) covered by the bins; values outside are not counted, hi counts "
            "in the last bin. Required unless args[2] is a global.stats node (its min and max); "
            "wins over it when both are given."},
    {0},
};

static const pg_param_def pg__poly_params[] = {
    {.name = "path",
     .type = PG_PARAM_STRING,
     .required = true,
     .doc = "The vector file, relative to the data root: GeoJSON, GeoJSONSeq, Shapefile, "
            "GeoPackage or FlatGeobuf."},
    {.name = "layer",
     .type = PG_PARAM_STRING,
     .doc = "The layer's name. Default: the file's first layer."},
    {.name = "field",
     .type = PG_PARAM_STRING,
     .doc = "An attribute whose value names the zones (features sharing a value form one zone). "
            "Default: each feature is a zone, named by its feature id (FID)."},
    {0},
};

const pg_op_def pg_ops_zonal[] = {
    {
        .name = "zonal.stats",
        .family = "zonal",
        .doc = "Statistics of a values raster (args[1]) per zone of an integer zones raster "
               "(args[0]; a float one is bad_type), both single-band on the same grid: "
               "{\"zones\": [{\"zone\", \"count\", \"sum\", \"min\", \"max\", \"mean\", "
               "\"stddev\"}, ...]} in ascending zone order (population stddev; integer sum, min "
               "and max for an integer values raster). Zones' nodata cells belong to no zone; "
               "values' nodata and NaN cells are not counted (a zone whose every value is "
               "invalid is listed with count 0 and null statistics). At most 1,000,000 zones "
               "(too_large). Each tile is reduced in double (two passes), tiles are merged in "
               "tile order: the same value for any number of workers.",
        .example = "{\"op\": \"zonal.stats\", \"args\": [{\"ref\": \"landcover\"}, {\"ref\": "
                   "\"ndvi\"}]}",
        .min_args = 2,
        .max_args = 2,
        .arg_kinds = PG_ARGK_RASTER,
        .params = pg__zstats_params,
        .result = PG_RESULT_VALUE,
        .plan = pg__zstats_plan,
        .partial_size = sizeof(pg__zs_part),
        .partial = pg__zstats_part,
        .finish = pg__zstats_finish,
        .partial_free = pg__zstats_pfree,
        .free_state = pg__zs_free,
    },
    {
        .name = "zonal.histogram",
        .family = "zonal",
        .doc = "Histogram of a values raster (args[1]) per zone of an integer zones raster "
               "(args[0]), with zonal.stats' rules for zones and valid cells: {\"edges\": "
               "[bins + 1 numbers], \"zones\": [{\"zone\", \"bins\": [counts]}, ...]} in "
               "ascending zone order. Bins as global.histogram: 'bins' equal-width bins over "
               "'range' [lo, hi], e[i] = lo + i * ((hi - lo) / bins), bin i counts e[i] <= v < "
               "e[i+1] (the last also v == hi), values outside the range are not counted. "
               "Without 'range', args[2] must be a value node (global.stats: its min and max). "
               "Counts are exact.",
        .example = "{\"op\": \"zonal.histogram\", \"bins\": 10, \"range\": [0, 1], \"args\": "
                   "[{\"ref\": \"landcover\"}, {\"ref\": \"ndvi\"}]}",
        .min_args = 2,
        .max_args = 3,
        .arg_kinds = PG_ARGK_RASTER | PG_ARGK_VALUE,
        .params = pg__zhist_params,
        .result = PG_RESULT_VALUE,
        .plan = pg__zhist_plan,
        .partial_size = sizeof(pg__zh_part),
        .partial = pg__zhist_part,
        .finish = pg__zhist_finish,
        .partial_free = pg__zhist_pfree,
        .bind = pg__zhist_bind,
        .free_state = pg__zs_free,
    },
    {
        .name = "zonal.polygons",
        .family = "zonal",
        .doc = "Statistics of a single-band georeferenced values raster (args[0]) per polygon of "
               "a vector file ('path' in the data root; 'layer'), with zonal.stats' value "
               "{\"zones\": [{\"zone\", \"count\", \"sum\", \"min\", \"max\", \"mean\", "
               "\"stddev\"}, ...]}. A zone is a feature named by its FID, or with 'field' the "
               "features sharing that attribute's value (ascending: null, numbers, strings). A "
               "cell belongs to a zone when its centre is inside one of the zone's polygons "
               "(GDAL's rasterizer, without ALL_TOUCHED); overlapping zones each get the cell. "
               "Geometries are reprojected to the raster's CRS when the layer's differs. Every "
               "zone is listed (count 0 and null statistics when it covers no valid cell). At "
               "most 1,000,000 features and 256 MiB of geometry (too_large).",
        .example = "{\"op\": \"zonal.polygons\", \"path\": \"fields.geojson\", \"field\": "
                   "\"name\", \"args\": [{\"ref\": \"ndvi\"}]}",
        .min_args = 1,
        .max_args = 1,
        .arg_kinds = PG_ARGK_RASTER,
        .params = pg__poly_params,
        .result = PG_RESULT_VALUE,
        .plan = pg__poly_plan,
        .partial_size = sizeof(pg__poly_part),
        .partial = pg__poly_part_fn,
        .finish = pg__poly_finish,
        .partial_free = pg__poly_pfree,
        .free_state = pg__poly_free,
        .identity = pg__poly_identity,
    },
    {0},
};
