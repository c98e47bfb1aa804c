/* Unit tests for the zonal family (ops/zonal.c): zonal.stats,
 * zonal.histogram, zonal.polygons.
 *
 * Nodes are built by hand; plan(), bind() and partial()/finish() run
 * directly on tiles cut here from rasters held as doubles. References are
 * computed in this file, naively, in double:
 *  - per zone: count, min, max exactly equal; sum and mean within 1e-12
 *    relative, stddev within 1e-10 relative (of max(|mean|, stddev)): the
 *    op sums per tile and merges tiles, the reference sums in cell order;
 *  - histograms: counts exactly equal (each value's bin by binary search
 *    over the documented edges), edges bit-identical;
 *  - polygons: the cells of each zone come from /usr/bin/gdal_rasterize
 *    run on the same vector file into a GeoTIFF of the same grid (burning
 *    1, one run per zone with -where, so overlapping zones each get their
 *    cells), then the statistics as above.
 * Determinism: partial() in a shuffled tile order must give a value
 * json_equal to the in-order one.
 */
#include "bufpool.h"
#include "graph.h"
#include "ops/registry.h"
#include "raster.h"

#include <check.h>
#include <cpl_conv.h>
#include <errno.h>
#include <float.h>
#include <gdal.h>
#include <math.h>
#include <ogr_srs_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define NOZONE INT64_MIN

static const pg_op_def *find_op(const char *name)
{
    for (const pg_op_def *d = pg_ops_zonal; d->name != NULL; d++)
        if (strcmp(d->name, name) == 0) return d;
    ck_abort_msg("no op %s", name);
    return NULL;
}

static const pg_op_def src_op = {
    .name = "test.source", .family = "test", .result = PG_RESULT_RASTER};
static const pg_op_def value_op = {
    .name = "test.value", .family = "test", .result = PG_RESULT_VALUE};

static char g_root[256]; /* the data root of the polygon tests (realpath) */

static pg_plan_env test_env = {.data_root = "/nonexistent",
                               .max_nodes = 1000,
                               .max_depth = 100,
                               .max_cells = (int64_t)1 << 40,
                               .tile_w = 256,
                               .tile_h = 256};

/* An assertion for hot loops: Check's ck_assert_msg reports every passing
 * call to its parent process, which costs a system call. */
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) ck_abort_msg(__VA_ARGS__);                                                    \
    } while (0)

/* ---- tiles, rasters, random numbers ---- */

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

static double rnd_int(double lo, double hi)
{
    double v = lo + floor(rnd_unit() * (hi - lo + 1.0));
    return v > hi ? hi : v;
}

typedef struct raster {
    pg_celltype type;
    int64_t w, h;
    bool has_nd;
    double nd;
    double *v;
    bool has_gt;
    double gt[6];
    char *crs;
} raster;

static raster ras_new(pg_celltype t, int64_t w, int64_t h, bool has_nd, double nd)
{
    raster r = {.type = t, .w = w, .h = h, .has_nd = has_nd, .nd = nd};
    r.v = calloc((size_t)(w * h), sizeof *r.v);
    ck_assert_ptr_nonnull(r.v);
    return r;
}

static void ras_free(raster *r)
{
    free(r->v);
    free(r->crs);
    r->v = NULL;
    r->crs = NULL;
}

static size_t ras_cells(const raster *r)
{
    return (size_t)(r->w * r->h);
}

static bool ras_valid(const raster *r, double x)
{
    if (isnan(x)) return false;
    if (!r->has_nd) return true;
    double nd = r->type == PG_F32 ? (double)(float)r->nd : r->nd;
    return x != nd;
}

static pg_tile *ras_tile(const raster *r, pg_window win)
{
    pg_tile *t = tile_new(r->type, 1, win);
    for (int64_t y = 0; y < win.h; y++)
        for (int64_t x = 0; x < win.w; x++)
            set(t, (size_t)y * (size_t)win.w + (size_t)x,
                r->v[(size_t)(win.y + y) * (size_t)r->w + (size_t)(win.x + x)]);
    return t;
}

static void src_init(pg_node *src, const raster *r, const char *name)
{
    memset(src, 0, sizeof *src);
    src->op = &src_op;
    src->name = (char *)name;
    src->info = (pg_raster_info){.width = r->w,
                                 .height = r->h,
                                 .bands = 1,
                                 .type = r->type,
                                 .has_nodata = r->has_nd,
                                 .nodata = r->nd,
                                 .has_geotransform = r->has_gt,
                                 .crs_wkt = r->crs};
    memcpy(src->info.geotransform, r->gt, sizeof r->gt);
}

/* Runs value op OP (PARAMS stolen) over the rasters R[0..nr) cut into
 * TW x TH tiles (partial() in shuffled order when SHUFFLE), VALUE bound as
 * args[nr] when not NULL. Returns the value, or NULL with *RC (plan/bind
 * code) and ERR. */
static json_t *run_rc(const char *op, json_t *params, const raster *const *r, int nr, int64_t tw,
                      int64_t th, bool shuffle, const json_t *value, int *rc, pg_error *err)
{
    pg_node src[3], val;
    pg_arg args[4];
    for (int i = 0; i < nr; i++) {
        src_init(&src[i], r[i], i == 0 ? "a" : "b");
        args[i] = (pg_arg){.node = i, .ref = &src[i]};
    }
    memset(&val, 0, sizeof val);
    val.op = &value_op;
    val.name = "val";
    args[nr] = (pg_arg){.node = nr, .ref = &val};
    pg_node n = {.op = find_op(op),
                 .name = "n",
                 .params = params,
                 .nargs = nr + (value != NULL),
                 .args = args};
    json_t *out = NULL;
    *rc = n.op->plan(&n, &test_env, err);
    if (*rc == 0 && value != NULL) *rc = n.op->bind(&n, nr, value, err);
    if (*rc == 0) {
        pg_tiling tl;
        pg_tiling_init(&tl, r[0]->w, r[0]->h, tw, th);
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
        for (int64_t j = 0; j < nt && *rc == 0; j++) {
            const int64_t k = order[j];
            pg_window w = pg_tiling_window(&tl, k);
            pg_tile *in[4] = {NULL, NULL, NULL, NULL};
            for (int i = 0; i < nr; i++)
                in[i] = ras_tile(r[i], w);
            parts[k] = calloc(1, n.op->partial_size);
            *rc = n.op->partial(&n, parts[k], in, err);
            for (int i = 0; i < nr; i++)
                tile_free(in[i]);
        }
        if (*rc == 0) *rc = n.op->finish(&n, parts, nt, &out, err);
        for (int64_t k = 0; k < nt; k++) {
            if (parts[k] && n.op->partial_free) n.op->partial_free(&n, parts[k]);
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

static json_t *run(const char *op, json_t *params, const raster *const *r, int nr, int64_t tw,
                   int64_t th, bool shuffle, const json_t *value)
{
    int rc;
    pg_error err = {0};
    json_t *v = run_rc(op, params, r, nr, tw, th, shuffle, value, &rc, &err);
    ck_assert_msg(rc == 0, "%s failed: %s: %s", op, pg_err_name(rc), err.message);
    return v;
}

static void expect_error(const char *op, json_t *params, const raster *const *r, int nr,
                         const json_t *value, int code, const char *needle)
{
    int rc;
    pg_error err = {0};
    json_t *v = run_rc(op, params, r, nr, 64, 64, false, value, &rc, &err);
    json_decref(v);
    ck_assert_msg(rc == code, "%s: expected %s, got %s (%s)", op, pg_err_name(code),
                  pg_err_name(rc), err.message);
    ck_assert_msg(strstr(err.message, needle) != NULL, "%s: message '%s' does not say '%s'", op,
                  err.message, needle);
}

/* ---- reference statistics per zone ---- */

typedef struct zref {
    int64_t zone;
    int64_t count;
    double sum, min, max, mean, sd;
} zref;

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* ZONE[i] (NOZONE: none) and the values R: per zone (ascending) the
 * naive two-pass statistics. Returns the count of zones, *OUT malloc'd. */
static int64_t ref_zones(const int64_t *zone, const raster *vals, zref **out)
{
    size_t n = ras_cells(vals);
    int64_t *zs = malloc(sizeof *zs * n);
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (zone[i] != NOZONE) zs[m++] = zone[i];
    qsort(zs, m, sizeof *zs, cmp_i64);
    int64_t nz = 0;
    for (size_t i = 0; i < m; i++)
        if (i == 0 || zs[i] != zs[i - 1]) zs[nz++] = zs[i];
    zref *z = calloc((size_t)(nz ? nz : 1), sizeof *z);
    for (int64_t k = 0; k < nz; k++)
        z[k] = (zref){zs[k], 0, 0, INFINITY, -INFINITY, 0, 0};
    for (int pass = 0; pass < 2; pass++) {
        for (size_t i = 0; i < n; i++) {
            if (zone[i] == NOZONE || !ras_valid(vals, vals->v[i])) continue;
            int64_t *f = bsearch(&zone[i], zs, (size_t)nz, sizeof *zs, cmp_i64);
            zref *r = &z[f - zs];
            double x = vals->v[i];
            if (pass == 0) {
                r->count++;
                r->sum += x;
                r->min = fmin(r->min, x);
                r->max = fmax(r->max, x);
            } else {
                r->sd += (x - r->mean) * (x - r->mean);
            }
        }
        for (int64_t k = 0; k < nz; k++) {
            if (z[k].count == 0) continue;
            if (pass == 0)
                z[k].mean = z[k].sum / (double)z[k].count;
            else
                z[k].sd = sqrt(z[k].sd / (double)z[k].count);
        }
    }
    free(zs);
    *out = z;
    return nz;
}

static double jnum(const json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    CHECK(json_is_number(v), "%s is not a number", k);
    return json_number_value(v);
}

static void close_to(double got, double want, double tol, const char *what, int64_t zone)
{
    ck_assert_msg(fabs(got - want) <= tol, "zone %lld %s: got %.17g want %.17g", (long long)zone,
                  what, got, want);
}

/* One zone's entry against its reference; KEY the expected "zone". */
static void check_zone(const json_t *o, const json_t *key, const zref *r, bool integral)
{
    ck_assert_msg(json_equal(json_object_get(o, "zone"), (json_t *)key), "zone key differs");
    ck_assert_msg(json_integer_value(json_object_get(o, "count")) == r->count,
                  "zone %lld count: got %lld want %lld", (long long)r->zone,
                  (long long)json_integer_value(json_object_get(o, "count")), (long long)r->count);
    if (r->count == 0) {
        ck_assert(json_is_null(json_object_get(o, "min")));
        ck_assert(json_is_null(json_object_get(o, "mean")));
        ck_assert(json_is_null(json_object_get(o, "stddev")));
        ck_assert(jnum(o, "sum") == 0);
        return;
    }
    if (integral) {
        ck_assert(json_is_integer(json_object_get(o, "min")));
        ck_assert(json_is_integer(json_object_get(o, "sum")));
        ck_assert(jnum(o, "sum") == r->sum);
    }
    ck_assert(jnum(o, "min") == r->min);
    ck_assert(jnum(o, "max") == r->max);
    close_to(jnum(o, "sum"), r->sum, 1e-12 * fabs(r->sum) + 1e-300, "sum", r->zone);
    close_to(jnum(o, "mean"), r->mean, 1e-12 * fabs(r->mean) + 1e-300, "mean", r->zone);
    close_to(jnum(o, "stddev"), r->sd, 1e-10 * fmax(fabs(r->mean), r->sd) + 1e-300, "stddev",
             r->zone);
}

/* The zones of raster Z as int64 (NOZONE where nodata). */
static int64_t *zones_of(const raster *z)
{
    int64_t *zz = malloc(sizeof *zz * ras_cells(z));
    for (size_t i = 0; i < ras_cells(z); i++)
        zz[i] = z->has_nd && z->v[i] == z->nd ? NOZONE : (int64_t)z->v[i];
    return zz;
}

static void check_zonal_stats(const json_t *v, const raster *z, const raster *vals)
{
    int64_t *zz = zones_of(z);
    zref *ref;
    int64_t nz = ref_zones(zz, vals, &ref);
    json_t *list = json_object_get(v, "zones");
    ck_assert(json_is_array(list));
    ck_assert_int_eq(json_array_size(list), (size_t)nz);
    for (int64_t k = 0; k < nz; k++) {
        json_t *key = json_integer(ref[k].zone);
        check_zone(json_array_get(list, (size_t)k), key, &ref[k],
                   !pg_celltype_is_float(vals->type));
        json_decref(key);
    }
    free(ref);
    free(zz);
}

/* ---- zonal.stats ---- */

START_TEST(test_stats_u8)
{
    rng = 0x2011ull;
    /* zones: 16 x 16 checker blocks of 6 zones plus nodata 0 stripes;
     * values f32 around 1e4 with nodata and NaN */
    raster z = ras_new(PG_U8, 301, 203, true, 0);
    raster v = ras_new(PG_F32, 301, 203, true, -9999);
    for (int64_t y = 0; y < z.h; y++)
        for (int64_t x = 0; x < z.w; x++) {
            size_t i = (size_t)(y * z.w + x);
            z.v[i] = y % 50 == 7 ? 0 : (double)(1 + (x / 16 + 3 * (y / 16)) % 6);
            double val = (double)(float)(10000.0 + (rnd_unit() - 0.5) * 10.0);
            if (rnd() % 10 == 0) val = -9999;
            if (rnd() % 17 == 0) val = NAN;
            v.v[i] = val;
        }
    /* zone 6 has only invalid values: listed with count 0 */
    for (size_t i = 0; i < ras_cells(&z); i++)
        if (z.v[i] == 6) v.v[i] = i % 2 ? NAN : -9999;
    const raster *r[2] = {&z, &v};
    json_t *val = run("zonal.stats", json_object(), r, 2, 64, 48, false, NULL);
    check_zonal_stats(val, &z, &v);
    json_t *last = json_array_get(json_object_get(val, "zones"), 5);
    ck_assert(json_integer_value(json_object_get(last, "zone")) == 6 &&
              json_integer_value(json_object_get(last, "count")) == 0);
    /* partial() in another order: the same value, bit for bit */
    json_t *val2 = run("zonal.stats", json_object(), r, 2, 64, 48, true, NULL);
    ck_assert(json_equal(val, val2));
    char *a = json_dumps(val, JSON_REAL_PRECISION(17)),
         *b = json_dumps(val2, JSON_REAL_PRECISION(17));
    ck_assert_str_eq(a, b);
    free(a);
    free(b);
    /* one tile */
    json_t *val3 = run("zonal.stats", json_object(), r, 2, 512, 512, false, NULL);
    check_zonal_stats(val3, &z, &v);
    json_decref(val);
    json_decref(val2);
    json_decref(val3);
    ras_free(&z);
    ras_free(&v);
}
END_TEST

START_TEST(test_stats_wide)
{
    rng = 0x3011ull;
    /* i32 zones: ~3000 random zones, negative ones, and long runs; values
     * i16 with nodata: integer sums exact */
    raster z = ras_new(PG_I32, 400, 300, true, -2147483648.0);
    raster v = ras_new(PG_I16, 400, 300, true, -32768);
    for (size_t i = 0; i < ras_cells(&z); i++) {
        unsigned k = (unsigned)(rnd() % 4);
        z.v[i] = k == 0   ? rnd_int(-1500, 1500)
                 : k == 1 ? (i > 0 ? z.v[i - 1] : 5)
                 : k == 2 ? 2000000000.0 + (double)(i / 5000)
                          : (rnd() % 50 == 0 ? -2147483648.0 : -7.0);
        v.v[i] = rnd() % 9 == 0 ? -32768 : rnd_int(-32767, 32767);
    }
    const raster *r[2] = {&z, &v};
    json_t *val = run("zonal.stats", json_object(), r, 2, 128, 64, false, NULL);
    check_zonal_stats(val, &z, &v);
    json_t *val2 = run("zonal.stats", json_object(), r, 2, 128, 64, true, NULL);
    ck_assert(json_equal(val, val2));
    json_decref(val);
    json_decref(val2);
    /* u16 zones, u8 values without nodata; u32 zones */
    raster z16 = ras_new(PG_U16, 200, 100, false, 0), v8 = ras_new(PG_U8, 200, 100, false, 0);
    raster z32 = ras_new(PG_U32, 200, 100, true, 4294967295.0);
    for (size_t i = 0; i < ras_cells(&z16); i++) {
        z16.v[i] = rnd_int(0, 65535);
        v8.v[i] = rnd_int(0, 255);
        z32.v[i] = rnd() % 3 ? 4294967294.0 : rnd() % 2 ? 4294967295.0 : rnd_int(0, 20);
    }
    const raster *r2[2] = {&z16, &v8};
    val = run("zonal.stats", json_object(), r2, 2, 64, 64, true, NULL);
    check_zonal_stats(val, &z16, &v8);
    json_decref(val);
    const raster *r3[2] = {&z32, &v8};
    val = run("zonal.stats", json_object(), r3, 2, 64, 64, true, NULL);
    check_zonal_stats(val, &z32, &v8);
    json_decref(val);
    /* i8 zones (negative, direct table) with f64 values */
    raster z8 = ras_new(PG_I8, 150, 70, false, 0), v64 = ras_new(PG_F64, 150, 70, false, 0);
    for (size_t i = 0; i < ras_cells(&z8); i++) {
        z8.v[i] = rnd_int(-128, 127);
        v64.v[i] = (rnd_unit() - 0.5) * 1e6;
    }
    const raster *r4[2] = {&z8, &v64};
    val = run("zonal.stats", json_object(), r4, 2, 32, 32, false, NULL);
    check_zonal_stats(val, &z8, &v64);
    json_decref(val);
    ras_free(&z);
    ras_free(&v);
    ras_free(&z16);
    ras_free(&v8);
    ras_free(&z32);
    ras_free(&z8);
    ras_free(&v64);
}
END_TEST

START_TEST(test_stats_errors)
{
    raster zf = ras_new(PG_F32, 20, 20, false, 0), v = ras_new(PG_F32, 20, 20, false, 0);
    raster zi = ras_new(PG_U8, 20, 20, false, 0), other = ras_new(PG_F32, 21, 20, false, 0);
    const raster *r[2] = {&zf, &v};
    expect_error("zonal.stats", json_object(), r, 2, NULL, PG_ETYPE, "integer");
    expect_error("zonal.histogram", json_pack("{s:[i,i]}", "range", 0, 1), r, 2, NULL, PG_ETYPE,
                 "integer");
    const raster *r2[2] = {&zi, &other};
    expect_error("zonal.stats", json_object(), r2, 2, NULL, PG_EGRID, "grid");
    /* more than 1,000,000 zones */
    raster big = ras_new(PG_I32, 1001, 1000, false, 0), bv = ras_new(PG_U8, 1001, 1000, false, 0);
    for (size_t i = 0; i < ras_cells(&big); i++)
        big.v[i] = (double)i;
    const raster *r3[2] = {&big, &bv};
    expect_error("zonal.stats", json_object(), r3, 2, NULL, PG_ETOOLARGE, "1000000");
    ras_free(&big);
    ras_free(&bv);
    /* several bands */
    pg_node zs, vs;
    src_init(&zs, &zi, "a");
    src_init(&vs, &v, "b");
    vs.info.bands = 2;
    pg_arg args[2] = {{.node = 0, .ref = &zs}, {.node = 1, .ref = &vs}};
    pg_node n = {.op = find_op("zonal.stats"),
                 .name = "n",
                 .params = json_object(),
                 .nargs = 2,
                 .args = args};
    pg_error err;
    ck_assert_int_eq(n.op->plan(&n, &test_env, &err), PG_ETYPE);
    ck_assert(strstr(err.message, "one band") != NULL);
    if (n.state) n.op->free_state(&n);
    json_decref(n.params);
    ras_free(&zf);
    ras_free(&v);
    ras_free(&zi);
    ras_free(&other);
}
END_TEST

/* ---- zonal.histogram ---- */

static void check_zonal_hist(const json_t *val, const raster *z, const raster *v, int bins,
                             double lo, double hi)
{
    if (lo == hi) lo -= 0.5, hi += 0.5;
    double *e = malloc(sizeof *e * (size_t)(bins + 1));
    double w = (hi - lo) / bins;
    e[0] = lo;
    for (int i = 1; i < bins; i++)
        e[i] = fmin(lo + i * w, hi);
    e[bins] = hi;
    json_t *je = json_object_get(val, "edges");
    ck_assert_int_eq(json_array_size(je), (size_t)bins + 1);
    for (int i = 0; i <= bins; i++) {
        double g = json_number_value(json_array_get(je, (size_t)i));
        CHECK(memcmp(&g, &e[i], sizeof g) == 0, "edge %d differs", i);
    }
    int64_t *zz = zones_of(z);
    zref *ref;
    int64_t nz = ref_zones(zz, v, &ref);
    int64_t *cnt = calloc((size_t)(nz * bins), sizeof *cnt);
    for (size_t i = 0; i < ras_cells(z); i++) {
        double x = v->v[i];
        if (zz[i] == NOZONE || !ras_valid(v, x) || x < lo || x > hi) continue;
        int64_t zi = 0;
        while (ref[zi].zone != zz[i])
            zi++;
        int a = 0, b = bins - 1;
        while (a < b) {
            int m = (a + b + 1) / 2;
            if (e[m] <= x)
                a = m;
            else
                b = m - 1;
        }
        cnt[zi * bins + a]++;
    }
    json_t *list = json_object_get(val, "zones");
    ck_assert_int_eq(json_array_size(list), (size_t)nz);
    for (int64_t k = 0; k < nz; k++) {
        json_t *o = json_array_get(list, (size_t)k);
        ck_assert(json_integer_value(json_object_get(o, "zone")) == ref[k].zone);
        json_t *jb = json_object_get(o, "bins");
        ck_assert_int_eq(json_array_size(jb), (size_t)bins);
        for (int b = 0; b < bins; b++)
            CHECK(json_integer_value(json_array_get(jb, (size_t)b)) == cnt[k * bins + b],
                  "zone %lld bin %d: got %lld want %lld", (long long)ref[k].zone, b,
                  (long long)json_integer_value(json_array_get(jb, (size_t)b)),
                  (long long)cnt[k * bins + b]);
    }
    free(cnt);
    free(ref);
    free(zz);
    free(e);
}

START_TEST(test_histogram)
{
    rng = 0x4011ull;
    raster z = ras_new(PG_U8, 301, 203, true, 0), v = ras_new(PG_F32, 301, 203, true, -9999);
    for (int64_t y = 0; y < z.h; y++)
        for (int64_t x = 0; x < z.w; x++) {
            size_t i = (size_t)(y * z.w + x);
            z.v[i] = x % 40 == 3 ? 0 : (double)(1 + (x / 16 + 3 * (y / 16)) % 5);
            double val = (double)(float)((rnd_unit() - 0.1) * 110.0);
            if (rnd() % 10 == 0) val = -9999;
            if (rnd() % 17 == 0) val = NAN;
            if (rnd() % 13 == 0) val = (double)(rnd() % 14) * 7.5;
            v.v[i] = val;
        }
    const raster *r[2] = {&z, &v};
    /* few zones x bins: the dense path */
    json_t *val = run("zonal.histogram", json_pack("{s:i,s:[f,f]}", "bins", 13, "range", 0.0, 97.5),
                      r, 2, 64, 48, false, NULL);
    check_zonal_hist(val, &z, &v, 13, 0.0, 97.5);
    json_t *val2 =
        run("zonal.histogram", json_pack("{s:i,s:[f,f]}", "bins", 13, "range", 0.0, 97.5), r, 2,
            100, 37, true, NULL);
    ck_assert(json_equal(val, val2)); /* any tiling, any order */
    json_decref(val);
    json_decref(val2);
    /* a global.stats value as args[2] */
    json_t *stats = json_pack("{s:f,s:f}", "min", -11.0, "max", 99.0);
    val = run("zonal.histogram", json_pack("{s:i}", "bins", 20), r, 2, 64, 64, false, stats);
    check_zonal_hist(val, &z, &v, 20, -11.0, 99.0);
    json_decref(val);
    json_decref(stats);

    /* many zones x bins: the sorting path (i32 zones, 3000 zones, 1000 bins) */
    raster zw = ras_new(PG_I32, 256, 256, false, 0);
    for (size_t i = 0; i < ras_cells(&zw); i++)
        zw.v[i] = rnd_int(-1000, 1999);
    raster vw = ras_new(PG_F32, 256, 256, false, 0);
    for (size_t i = 0; i < ras_cells(&vw); i++)
        vw.v[i] = (double)(float)(rnd_unit() * 10.0);
    const raster *rw[2] = {&zw, &vw};
    val = run("zonal.histogram", json_pack("{s:i,s:[i,i]}", "bins", 1000, "range", 0, 10), rw, 2,
              256, 256, false, NULL);
    check_zonal_hist(val, &zw, &vw, 1000, 0, 10);
    val2 = run("zonal.histogram", json_pack("{s:i,s:[i,i]}", "bins", 1000, "range", 0, 10), rw, 2,
               64, 64, true, NULL);
    ck_assert(json_equal(val, val2));
    json_decref(val);
    json_decref(val2);
    /* errors */
    expect_error("zonal.histogram", json_pack("{s:i}", "bins", 10), r, 2, NULL, PG_EPARAM,
                 "'range'");
    expect_error("zonal.histogram", json_pack("{s:i,s:[i,i]}", "bins", 10, "range", 3, 3), r, 2,
                 NULL, PG_EPARAM, "'range'");
    expect_error("zonal.histogram", json_pack("{s:i,s:[i,i]}", "bins", 0, "range", 0, 1), r, 2,
                 NULL, PG_EPARAM, "'bins'");
    json_t *bad = json_string("x");
    expect_error("zonal.histogram", json_pack("{s:i}", "bins", 10), r, 2, bad, PG_ETYPE, "args[2]");
    json_decref(bad);
    /* 20000 zones x 1000 bins: more than 2^24 counts */
    raster zc = ras_new(PG_I32, 200, 100, false, 0), vc = ras_new(PG_U8, 200, 100, false, 0);
    for (size_t i = 0; i < ras_cells(&zc); i++)
        zc.v[i] = (double)i;
    const raster *rc2[2] = {&zc, &vc};
    expect_error("zonal.histogram", json_pack("{s:i,s:[i,i]}", "bins", 1000, "range", 0, 1), rc2, 2,
                 NULL, PG_ETOOLARGE, "bins");
    ras_free(&zc);
    ras_free(&vc);
    ras_free(&z);
    ras_free(&v);
    ras_free(&zw);
    ras_free(&vw);
}
END_TEST

/* ---- zonal.polygons ---- */

/* The values grid of the polygon tests (g_pw x g_ph cells). */
static int g_pw = 300, g_ph = 200;
static const double PGT[6] = {500000, 10, 0, 5000000, 0, -10};

/* The test polygons (EPSG:32633), as GeoJSON features: zid, name, the
 * geometry's coordinates text. Coordinates are deliberately off the grid. */
static const struct {
    int zid;
    const char *name; /* NULL: null */
    const char *type, *coords;
} FEATS[] = {
    /* crosses several tile boundaries */
    {1, "north", "Polygon",
     "[[[500123.4,4999871.3],[502345.6,4999702.1],[502011.7,4998456.2],[500456.7,4998234.5],"
     "[500123.4,4999871.3]]]"},
    /* overlaps zid 1 */
    {2, "north", "Polygon",
     "[[[501234.5,4999950.5],[501999.1,4998801.3],[500801.2,4998600.7],[501234.5,4999950.5]]]"},
    /* a multipolygon with a hole */
    {3, "west", "MultiPolygon",
     "[[[[502400.3,4999900.9],[502950.2,4999900.9],[502950.2,4998300.1],[502400.3,4998300.1],"
     "[502400.3,4999900.9]],[[502500.7,4999500.3],[502850.9,4999500.3],[502850.9,4998700.6],"
     "[502500.7,4998700.6],[502500.7,4999500.3]]],[[[500031.3,4998151.7],[500313.1,4998151.7],"
     "[500313.1,4998013.3],[500031.3,4998013.3],[500031.3,4998151.7]]]]"},
    /* crosses the raster's east edge */
    {4, "east", "Polygon",
     "[[[502800.5,4999500.5],[503500.5,4999400.3],[503400.4,4998900.8],[502700.2,4998950.1],"
     "[502800.5,4999500.5]]]"},
    /* no geometry */
    {5, NULL, NULL, NULL},
    /* far away */
    {6, "far", "Polygon",
     "[[[600000.5,4000000.5],[600100.5,4000000.5],[600100.5,3999900.5],[600000.5,4000000.5]]]"},
};
#define NFEATS (sizeof FEATS / sizeof FEATS[0])

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_msg(f != NULL, "cannot write %s: %s", path, strerror(errno));
    fputs(text, f);
    fclose(f);
}

/* Writes the features to ROOT/NAME; with CT (UTM -> lon/lat) in EPSG:4326
 * (GeoJSON's default CRS), else with a "crs" member for EPSG:32633. */
static void write_geojson(const char *name, OGRCoordinateTransformationH ct)
{
    size_t cap = 1 << 16, len = 0;
    char *s = malloc(cap);
    len +=
        (size_t)snprintf(s + len, cap - len, "{\"type\": \"FeatureCollection\",%s\"features\": [",
                         ct ? ""
                            : " \"crs\": {\"type\": \"name\", \"properties\": {\"name\": "
                              "\"urn:ogc:def:crs:EPSG::32633\"}},");
    for (size_t i = 0; i < NFEATS; i++) {
        char nm[64];
        if (FEATS[i].name)
            snprintf(nm, sizeof nm, "\"%s\"", FEATS[i].name);
        else
            snprintf(nm, sizeof nm, "null");
        len += (size_t)snprintf(s + len, cap - len,
                                "%s{\"type\": \"Feature\", \"properties\": {\"zid\": %d, \"name\": "
                                "%s}, \"geometry\": ",
                                i ? "," : "", FEATS[i].zid, nm);
        if (FEATS[i].type == NULL) {
            len += (size_t)snprintf(s + len, cap - len, "null}");
            continue;
        }
        const char *c = FEATS[i].coords;
        if (ct == NULL) {
            len += (size_t)snprintf(s + len, cap - len, "{\"type\": \"%s\", \"coordinates\": %s}}",
                                    FEATS[i].type, c);
            continue;
        }
        /* Transform every "x,y" pair, keeping the brackets. */
        len += (size_t)snprintf(s + len, cap - len,
                                "{\"type\": \"%s\", \"coordinates\": ", FEATS[i].type);
        while (*c) {
            if ((*c >= '0' && *c <= '9') || *c == '-') {
                char *end;
                double x = strtod(c, &end);
                ck_assert(*end == ',');
                double y = strtod(end + 1, &end);
                double zc = 0;
                ck_assert(OCTTransform(ct, 1, &x, &y, &zc));
                len += (size_t)snprintf(s + len, cap - len, "%.17g,%.17g", x, y);
                c = end;
            } else {
                s[len++] = *c++;
            }
        }
        len += (size_t)snprintf(s + len, cap - len, "}}");
    }
    len += (size_t)snprintf(s + len, cap - len, "]}\n");
    ck_assert(len < cap);
    char path[512];
    snprintf(path, sizeof path, "%s/%s", g_root, name);
    write_file(path, s);
    free(s);
}

static char *wkt_32633(void)
{
    OGRSpatialReferenceH s = OSRNewSpatialReference(NULL);
    ck_assert_int_eq(OSRImportFromEPSG(s, 32633), OGRERR_NONE);
    char *w = NULL;
    OSRExportToWkt(s, &w);
    char *copy = strdup(w);
    CPLFree(w);
    OSRDestroySpatialReference(s);
    return copy;
}

/* The values raster of the polygon tests: f32 with nodata and NaN. */
static raster poly_values(void)
{
    raster v = ras_new(PG_F32, g_pw, g_ph, true, -9999);
    v.has_gt = true;
    memcpy(v.gt, PGT, sizeof PGT);
    v.crs = wkt_32633();
    for (size_t i = 0; i < ras_cells(&v); i++) {
        double x = (double)(float)(100.0 + (rnd_unit() - 0.5) * 50.0);
        if (rnd() % 11 == 0) x = -9999;
        if (rnd() % 19 == 0) x = NAN;
        v.v[i] = x;
    }
    return v;
}

/* gdal_rasterize of the features of ROOT/SRC selected by WHERE, burnt as
 * 1 into a fresh zeroed GeoTIFF of the values grid: the mask (malloc'd). */
static unsigned char *ref_mask(const char *src, const char *where)
{
    char tpl[512], cmd[2048];
    snprintf(tpl, sizeof tpl, "%s/mask.tif", g_root);
    GDALDriverH drv = GDALGetDriverByName("GTiff");
    GDALDatasetH ds = GDALCreate(drv, tpl, g_pw, g_ph, 1, GDT_Byte, NULL);
    ck_assert_ptr_nonnull(ds);
    double gt[6];
    memcpy(gt, PGT, sizeof gt);
    GDALSetGeoTransform(ds, gt);
    char *wkt = wkt_32633();
    GDALSetProjection(ds, wkt);
    free(wkt);
    GDALClose(ds); /* zero-filled */
    snprintf(cmd, sizeof cmd, "/usr/bin/gdal_rasterize -q -burn 1 -where \"%s\" '%s/%s' '%s'",
             where, g_root, src, tpl);
    ck_assert_msg(system(cmd) == 0, "%s failed", cmd);
    ds = GDALOpen(tpl, GA_ReadOnly);
    ck_assert_ptr_nonnull(ds);
    unsigned char *m = malloc((size_t)g_pw * (size_t)g_ph);
    ck_assert_int_eq(GDALRasterIO(GDALGetRasterBand(ds, 1), GF_Read, 0, 0, g_pw, g_ph, m, g_pw,
                                  g_ph, GDT_Byte, 0, 0),
                     CE_None);
    GDALClose(ds);
    unlink(tpl);
    return m;
}

/* The reference statistics of the cells of MASK. */
static zref ref_masked(const unsigned char *mask, const raster *v)
{
    int64_t *zz = malloc(sizeof *zz * ras_cells(v));
    for (size_t i = 0; i < ras_cells(v); i++)
        zz[i] = mask[i] ? 1 : NOZONE;
    zref *r;
    int64_t nz = ref_zones(zz, v, &r);
    zref out = {1, 0, 0, INFINITY, -INFINITY, 0, 0};
    if (nz == 1) out = r[0];
    free(r);
    free(zz);
    return out;
}

static json_t *poly_params(const char *path, const char *field)
{
    json_t *p = json_pack("{s:s}", "path", path);
    if (field) json_object_set_new(p, "field", json_string(field));
    return p;
}

/* Zones by "zid" (and by FID: the GeoJSON features have no "id", so the
 * FIDs are 0..5 in file order), one reference run per zone. */
static void check_polygons_by_zid(const char *file, int64_t tw, int64_t th)
{
    raster v = poly_values();
    const raster *r[1] = {&v};
    json_t *by_zid = run("zonal.polygons", poly_params(file, "zid"), r, 1, tw, th, false, NULL);
    json_t *by_fid = run("zonal.polygons", poly_params(file, NULL), r, 1, tw, th, true, NULL);
    json_t *lz = json_object_get(by_zid, "zones"), *lf = json_object_get(by_fid, "zones");
    ck_assert_int_eq(json_array_size(lz), NFEATS);
    ck_assert_int_eq(json_array_size(lf), NFEATS);
    int burnt = 0;
    for (size_t i = 0; i < NFEATS; i++) {
        char where[64];
        snprintf(where, sizeof where, "zid = %d", FEATS[i].zid);
        unsigned char *m = ref_mask(file, where);
        zref ref = ref_masked(m, &v);
        free(m);
        json_t *key = json_integer(FEATS[i].zid);
        check_zone(json_array_get(lz, i), key, &ref, false);
        json_decref(key);
        key = json_integer((json_int_t)i);
        check_zone(json_array_get(lf, i), key, &ref, false);
        json_decref(key);
        burnt += ref.count > 0;
    }
    ck_assert_int_eq(burnt, 4); /* zids 1..4 cover cells; 5 (no geometry) and 6 (far) do not */
    json_decref(by_zid);
    json_decref(by_fid);
    ras_free(&v);
}

START_TEST(test_polygons)
{
    rng = 0x9011ull;
    write_geojson("utm.geojson", NULL);
    check_polygons_by_zid("utm.geojson", 64, 48);
    check_polygons_by_zid("utm.geojson", 512, 512); /* one tile */

    /* by "name": zids 1 and 2 (overlapping) form "north": each cell once */
    raster v = poly_values();
    const raster *r[1] = {&v};
    json_t *val =
        run("zonal.polygons", poly_params("utm.geojson", "name"), r, 1, 64, 48, false, NULL);
    json_t *list = json_object_get(val, "zones");
    static const char *const names[] = {NULL, "east", "far", "north", "west"};
    ck_assert_int_eq(json_array_size(list), 5);
    for (size_t i = 0; i < 5; i++) {
        char where[64];
        if (names[i])
            snprintf(where, sizeof where, "name = '%s'", names[i]);
        else
            snprintf(where, sizeof where, "name IS NULL");
        unsigned char *m = ref_mask("utm.geojson", where);
        zref ref = ref_masked(m, &v);
        free(m);
        json_t *key = names[i] ? json_string(names[i]) : json_null();
        check_zone(json_array_get(list, i), key, &ref, false);
        json_decref(key);
    }
    /* shuffled partials: the same value */
    json_t *val2 =
        run("zonal.polygons", poly_params("utm.geojson", "name"), r, 1, 64, 48, true, NULL);
    ck_assert(json_equal(val, val2));
    json_decref(val);
    json_decref(val2);
    ras_free(&v);
}
END_TEST

START_TEST(test_polygons_reprojected)
{
    rng = 0x9012ull;
    /* the same polygons in lon/lat: the op transforms them to the raster's
     * CRS, as gdal_rasterize does when it burns into a raster with a CRS */
    OGRSpatialReferenceH utm = OSRNewSpatialReference(NULL), ll = OSRNewSpatialReference(NULL);
    OSRImportFromEPSG(utm, 32633);
    OSRImportFromEPSG(ll, 4326);
    OSRSetAxisMappingStrategy(utm, OAMS_TRADITIONAL_GIS_ORDER);
    OSRSetAxisMappingStrategy(ll, OAMS_TRADITIONAL_GIS_ORDER);
    OGRCoordinateTransformationH ct = OCTNewCoordinateTransformation(utm, ll);
    ck_assert_ptr_nonnull(ct);
    write_geojson("ll.geojson", ct);
    OCTDestroyCoordinateTransformation(ct);
    OSRDestroySpatialReference(utm);
    OSRDestroySpatialReference(ll);
    check_polygons_by_zid("ll.geojson", 64, 48);
}
END_TEST

START_TEST(test_polygons_index)
{
    /* a raster of 10 x 9 index blocks: "huge" spans more than 64 of them
     * (checked by every tile), "small" two, "dot" one */
    rng = 0x9013ull;
    g_pw = 2500;
    g_ph = 2200;
    char path[512];
    snprintf(path, sizeof path, "%s/idx.geojson", g_root);
    write_file(path,
               "{\"type\": \"FeatureCollection\", \"crs\": {\"type\": \"name\", \"properties\": "
               "{\"name\": \"urn:ogc:def:crs:EPSG::32633\"}}, \"features\": ["
               "{\"type\": \"Feature\", \"properties\": {\"zid\": 1}, \"geometry\": {\"type\": "
               "\"Polygon\", \"coordinates\": [[[500100.3,4999900.7],[524800.1,4999000.2],"
               "[523900.9,4978200.4],[501200.6,4979100.8],[500100.3,4999900.7]]]}},"
               "{\"type\": \"Feature\", \"properties\": {\"zid\": 2}, \"geometry\": {\"type\": "
               "\"Polygon\", \"coordinates\": [[[512400.3,4990100.9],[513950.2,4990100.9],"
               "[513950.2,4989300.1],[512400.3,4989300.1],[512400.3,4990100.9]]]}},"
               "{\"type\": \"Feature\", \"properties\": {\"zid\": 3}, \"geometry\": {\"type\": "
               "\"Polygon\", \"coordinates\": [[[520012.3,4980087.9],[520061.1,4980087.9],"
               "[520061.1,4980031.3],[520012.3,4980087.9]]]}}]}\n");
    raster v = poly_values();
    const raster *r[1] = {&v};
    json_t *val =
        run("zonal.polygons", poly_params("idx.geojson", "zid"), r, 1, 256, 256, true, NULL);
    json_t *list = json_object_get(val, "zones");
    ck_assert_int_eq(json_array_size(list), 3);
    for (int k = 1; k <= 3; k++) {
        char where[32];
        snprintf(where, sizeof where, "zid = %d", k);
        unsigned char *m = ref_mask("idx.geojson", where);
        zref ref = ref_masked(m, &v);
        free(m);
        ck_assert(ref.count > 0);
        json_t *key = json_integer(k);
        check_zone(json_array_get(list, (size_t)k - 1), key, &ref, false);
        json_decref(key);
    }
    json_decref(val);
    ras_free(&v);
    g_pw = 300;
    g_ph = 200;
}
END_TEST

START_TEST(test_polygons_errors)
{
    write_geojson("e.geojson", NULL);
    raster v = poly_values();
    const raster *r[1] = {&v};
    expect_error("zonal.polygons", poly_params("../e.geojson", NULL), r, 1, NULL, PG_EPATH,
                 "e.geojson");
    expect_error("zonal.polygons", poly_params("missing.geojson", NULL), r, 1, NULL, PG_ENOTFOUND,
                 "missing");
    char p[512];
    snprintf(p, sizeof p, "%s/notvector.txt", g_root);
    write_file(p, "hello\n");
    expect_error("zonal.polygons", poly_params("notvector.txt", NULL), r, 1, NULL, PG_EFORMAT,
                 "notvector.txt");
    expect_error("zonal.polygons", poly_params("e.geojson", "nosuch"), r, 1, NULL, PG_EPARAM,
                 "'field'");
    json_t *pl = json_pack("{s:s,s:s}", "path", "e.geojson", "layer", "nolayer");
    expect_error("zonal.polygons", pl, r, 1, NULL, PG_EPARAM, "'layer'");
    v.has_gt = false;
    expect_error("zonal.polygons", poly_params("e.geojson", NULL), r, 1, NULL, PG_EGRID,
                 "geotransform");
    ras_free(&v);
}
END_TEST

/* ---- the table ---- */

START_TEST(test_docs)
{
    int count = 0;
    for (const pg_op_def *d = pg_ops_zonal; d->name != NULL; d++, count++) {
        ck_assert_msg(d->doc != NULL && strlen(d->doc) > 80, "%s: doc", d->name);
        ck_assert_str_eq(d->family, "zonal");
        json_error_t je;
        json_t *ex = json_loads(d->example, 0, &je);
        ck_assert_msg(ex != NULL, "%s: example: %s", d->name, je.text);
        ck_assert_str_eq(json_string_value(json_object_get(ex, "op")), d->name);
        json_decref(ex);
        for (const pg_param_def *p = d->params; p->name != NULL; p++) {
            ck_assert_msg(p->doc && p->doc[0], "%s.%s: doc", d->name, p->name);
            if (p->default_json) {
                json_t *dv = json_loads(p->default_json, JSON_DECODE_ANY, &je);
                ck_assert(dv != NULL);
                json_decref(dv);
            }
        }
        ck_assert(d->result == PG_RESULT_VALUE && d->partial && d->finish && d->partial_size &&
                  d->partial_free);
    }
    ck_assert_int_eq(count, 3);
}
END_TEST

/* ---- speed: printed, not asserted ---- */

static double time_partial(pg_node *n, pg_tile **in)
{
    double best = INFINITY;
    pg_error err;
    for (int b = 0; b < 20; b++) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int i = 0; i < 5; i++) {
            void *p = calloc(1, n->op->partial_size);
            ck_assert_int_eq(n->op->partial(n, p, in, &err), 0);
            n->op->partial_free(n, p);
            free(p);
        }
        clock_gettime(CLOCK_MONOTONIC, &t1);
        best = fmin(
            best, ((double)(t1.tv_sec - t0.tv_sec) * 1e9 + (double)(t1.tv_nsec - t0.tv_nsec)) / 5);
    }
    return best;
}

START_TEST(test_speed)
{
    rng = 7;
    static const struct {
        const char *what, *op, *params;
        pg_celltype zt;
        int pattern; /* 0: 16x16 blocks of 100 zones, 1: random of 100, 2: random of 50000 */
    } cases[] = {
        {"stats u8 zones (blocks), f32", "zonal.stats", "{}", PG_U8, 0},
        {"stats u8 zones (random), f32", "zonal.stats", "{}", PG_U8, 1},
        {"stats i32 zones (blocks), f32", "zonal.stats", "{}", PG_I32, 0},
        {"stats i32 zones (random 50000)", "zonal.stats", "{}", PG_I32, 2},
        {"histogram u8 blocks, 64 bins", "zonal.histogram", "{\"bins\": 64, \"range\": [0, 100]}",
         PG_U8, 0},
        {"histogram i32 random, 1000 bins", "zonal.histogram",
         "{\"bins\": 1000, \"range\": [0, 100]}", PG_I32, 2},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        raster z = ras_new(cases[c].zt, 256, 256, false, 0),
               v = ras_new(PG_F32, 256, 256, true, -9999);
        for (int64_t y = 0; y < 256; y++)
            for (int64_t x = 0; x < 256; x++) {
                size_t i = (size_t)(y * 256 + x);
                z.v[i] = cases[c].pattern == 0   ? (double)((x / 16 + 16 * (y / 16)) % 100)
                         : cases[c].pattern == 1 ? rnd_int(0, 99)
                                                 : rnd_int(0, 49999);
                v.v[i] = (double)(float)(rnd_unit() * 100);
            }
        pg_node zs, vs;
        src_init(&zs, &z, "a");
        src_init(&vs, &v, "b");
        pg_arg args[2] = {{.node = 0, .ref = &zs}, {.node = 1, .ref = &vs}};
        pg_node n = {.op = find_op(cases[c].op),
                     .name = "n",
                     .params = json_loads(cases[c].params, 0, NULL),
                     .nargs = 2,
                     .args = args};
        pg_error err;
        ck_assert_int_eq(n.op->plan(&n, &test_env, &err), 0);
        pg_window w = {0, 0, 256, 256};
        pg_tile *in[2] = {ras_tile(&z, w), ras_tile(&v, w)};
        double ns = time_partial(&n, in);
        fprintf(stderr, "%-34s 256x256: %7.1f us per tile (%.2f ns per cell)\n", cases[c].what,
                ns / 1e3, ns / 65536.0);
        tile_free(in[0]);
        tile_free(in[1]);
        n.op->free_state(&n);
        json_decref(n.params);
        ras_free(&z);
        ras_free(&v);
    }
    /* zonal.polygons over one tile of the test polygons */
    write_geojson("speed.geojson", NULL);
    raster v = poly_values();
    pg_node vs;
    src_init(&vs, &v, "a");
    pg_arg arg = {.node = 0, .ref = &vs};
    pg_node n = {.op = find_op("zonal.polygons"),
                 .name = "n",
                 .params = poly_params("speed.geojson", NULL),
                 .nargs = 1,
                 .args = &arg};
    pg_error err;
    ck_assert_int_eq(n.op->plan(&n, &test_env, &err), 0);
    pg_tile *in[1] = {ras_tile(&v, (pg_window){0, 0, 256, 200})};
    double ns = time_partial(&n, in);
    fprintf(stderr, "%-34s 256x200: %7.1f us per tile\n", "polygons (4 zones in the tile)",
            ns / 1e3);
    tile_free(in[0]);
    n.op->free_state(&n);
    json_decref(n.params);
    ras_free(&v);
}
END_TEST

int main(void)
{
    GDALAllRegister();
    pg_bufpool_init((size_t)1 << 30);
    char tmpl[] = "/tmp/pg-zonal-XXXXXX";
    if (mkdtemp(tmpl) == NULL || realpath(tmpl, g_root) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    test_env.data_root = g_root;
    Suite *s = suite_create("zonal");
    TCase *tc = tcase_create("zonal");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_stats_u8);
    tcase_add_test(tc, test_stats_wide);
    tcase_add_test(tc, test_stats_errors);
    tcase_add_test(tc, test_histogram);
    tcase_add_test(tc, test_polygons);
    tcase_add_test(tc, test_polygons_reprojected);
    tcase_add_test(tc, test_polygons_index);
    tcase_add_test(tc, test_polygons_errors);
    tcase_add_test(tc, test_docs);
    tcase_add_test(tc, test_speed);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    pg_bufpool_shutdown();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_root);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", g_root);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
