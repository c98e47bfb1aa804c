/* Unit tests for the focal family (ops/focal.c).
 *
 * Nodes are built by hand: a source node whose whole raster the test holds
 * in memory, the op's plan(), need() and compute() called directly. Input
 * tiles are filled from the raster inside it and with garbage (random values,
 * the nodata value, NaN) outside it, which the ops must ignore.
 *
 * References are computed here, straightforwardly, in double, cell by cell
 * from the shape definitions (not from the op's offset tables):
 *  - min, max, median, mode, range, and sum/mean of integer inputs: exact
 *    (the reference rounded once to the output type);
 *  - sum, mean and convolve of float inputs: the reference (row-major order)
 *    rounded to the output type, within (n + 2) * 2^-53 * sum|terms| plus
 *    one rounding of the output type (the op sums in another fixed order);
 *  - stddev (two-pass reference): within 2^-21 relative (f32 outputs) or
 *    1e-12 relative (f64), plus 1e-9 (f32) or 1e-12 (f64) of the window's
 *    largest magnitude;
 *  - terrain: a gdaldem-like Horn reference in double with its edge rule;
 *    slope and aspect within 1e-4 degrees (the test DEMs hold integers, so
 *    the op's f32 window sums are exact), hillshade within +-1.
 * Every run is also computed tile by tile (odd tile sizes) and must equal the
 * untiled run byte for byte.
 */
#include "bufpool.h"
#include "graph.h"
#include "ops/registry.h"
#include "raster.h"
#include "util.h"

#include <check.h>
#include <float.h>
#include <cpl_conv.h>
#include <gdal.h>
#include <ogr_srs_api.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const TN[PG_CELLTYPE_COUNT] = {"u8",  "i8",  "u16", "i16",
                                                  "u32", "i32", "f32", "f64"};

static const pg_plan_env test_env = {.data_root = "/nonexistent",
                                     .max_nodes = 1000,
                                     .max_depth = 100,
                                     .max_cells = (int64_t)1 << 40,
                                     .tile_w = 256,
                                     .tile_h = 256};

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

/* ---- pseudo-random values ---- */

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

/* A value of type T. NARROW: from a handful of values (repeats, for mode);
 * else often an extreme, else uniform over the range ([-1000, 1000] with a
 * fraction for floats). */
static double rnd_value(pg_celltype t, bool narrow)
{
    const bool fl = pg_celltype_is_float(t);
    const double mn = fl ? -1000 : pg_celltype_min(t), mx = fl ? 1000 : pg_celltype_max(t);
    unsigned r = (unsigned)(rnd() % 8);
    if (narrow || r == 0) {
        static const double few[] = {0, 1, 2, 5};
        unsigned k = (unsigned)(rnd() % 6);
        if (k < 4) return few[k];
        return k == 4 ? mn : mx;
    }
    double v = mn + rnd_unit() * (mx - mn);
    if (!fl) {
        v = floor(v);
        if (v > mx) v = mx;
    } else if (t == PG_F32) {
        v = (double)(float)v;
    }
    return v;
}

static double to_f32(double x)
{
    const double lim = 0x1.ffffffp127;
    if (isnan(x)) return x;
    if (x >= lim) return INFINITY;
    if (x <= -lim) return -INFINITY;
    return (double)(float)x;
}

/* ---- a source raster held whole ---- */

static const pg_op_def src_op = {
    .name = "test.source", .family = "test", .result = PG_RESULT_RASTER};

typedef struct fx {
    pg_node src;
    double *val; /* W x H x bands, band-sequential */
    int64_t W, H;
    int bands;
    pg_node n;
    pg_arg arg;
    pg_error err;
} fx;

/* A W x H raster of TYPE. ND_EVERY > 0: about one cell in ND_EVERY is the
 * nodata value ND (and, for floats, as many others are NaN). */
static void fx_init(fx *f, pg_celltype type, int64_t W, int64_t H, int bands, bool has_nd,
                    double nd, int nd_every, bool narrow)
{
    memset(f, 0, sizeof *f);
    f->W = W;
    f->H = H;
    f->bands = bands;
    f->src.op = &src_op;
    f->src.name = "src";
    f->src.info.width = W;
    f->src.info.height = H;
    f->src.info.bands = bands;
    f->src.info.type = type;
    f->src.info.has_nodata = has_nd;
    f->src.info.nodata = has_nd ? nd : 0;
    f->val = malloc(sizeof(double) * (size_t)(W * H * bands));
    ck_assert_ptr_nonnull(f->val);
    for (int64_t i = 0; i < W * H * bands; i++) {
        double v = rnd_value(type, narrow);
        if (nd_every > 0 && has_nd && rnd() % (unsigned)nd_every == 0) v = nd;
        if (nd_every > 0 && pg_celltype_is_float(type) && rnd() % (unsigned)nd_every == 0) v = NAN;
        f->val[i] = v;
    }
    f->arg = (pg_arg){.node = 0, .ref = &f->src, .number = 0};
}

static int fx_plan(fx *f, const char *op, json_t *params)
{
    f->n.op = pg_op_find(op);
    ck_assert_msg(f->n.op != NULL, "no op %s", op);
    f->n.name = "n";
    f->n.params = params != NULL ? params : json_object();
    f->n.nargs = 1;
    f->n.args = &f->arg;
    return f->n.op->plan(&f->n, &test_env, &f->err);
}

static void fx_free(fx *f)
{
    if (f->n.state != NULL) f->n.op->free_state(&f->n);
    ck_assert_ptr_null(f->n.state);
    pg_raster_info_clear(&f->n.info);
    pg_raster_info_clear(&f->src.info);
    json_decref(f->n.params);
    free(f->val);
}

/* The op's output over WIN, from an input tile over need(WIN) holding the
 * raster inside it and garbage outside. */
static pg_tile *fx_run(fx *f, pg_window win)
{
    pg_window iw;
    f->n.op->need(&f->n, 0, &win, &iw);
    const pg_celltype t = f->src.info.type;
    pg_tile *in = tile_new(t, f->bands, iw);
    for (int b = 0; b < f->bands; b++)
        for (int64_t r = 0; r < iw.h; r++)
            for (int64_t c = 0; c < iw.w; c++) {
                const int64_t gx = iw.x + c, gy = iw.y + r;
                const size_t i = ((size_t)b * (size_t)iw.h + (size_t)r) * (size_t)iw.w + (size_t)c;
                double v;
                if (gx >= 0 && gy >= 0 && gx < f->W && gy < f->H) {
                    v = f->val[((size_t)b * (size_t)f->H + (size_t)gy) * (size_t)f->W + (size_t)gx];
                } else {
                    unsigned k = (unsigned)(rnd() % 4);
                    v = k == 0 && f->src.info.has_nodata    ? f->src.info.nodata
                        : k == 1 && pg_celltype_is_float(t) ? NAN
                                                            : rnd_value(t, false);
                }
                set(in, i, v);
            }
    pg_tile *out = tile_new(f->n.info.type, f->bands, win);
    pg_tile *ins[1] = {in};
    int rc = f->n.op->compute(&f->n, out, ins, &f->err);
    ck_assert_msg(rc == 0, "compute: %s", f->err.message);
    tile_free(in);
    return out;
}

/* The whole raster as one tile, then tile by tile (TW x TH): equal bytes. */
static pg_tile *fx_run_checked(fx *f, int64_t tw, int64_t th)
{
    pg_tile *whole = fx_run(f, (pg_window){0, 0, f->W, f->H});
    const size_t cs = pg_celltype_size(whole->type);
    for (int64_t ty = 0; ty < f->H; ty += th)
        for (int64_t tx = 0; tx < f->W; tx += tw) {
            pg_window w = {tx, ty, tx + tw > f->W ? f->W - tx : tw,
                           ty + th > f->H ? f->H - ty : th};
            pg_tile *t = fx_run(f, w);
            for (int b = 0; b < f->bands; b++)
                for (int64_t y = 0; y < w.h; y++)
                    ck_assert_msg(memcmp(pg_tile_cell(t, b, y, 0),
                                         pg_tile_cell(whole, b, w.y + y, w.x),
                                         (size_t)w.w * cs) == 0,
                                  "%s: tile at (%lld, %lld) row %lld differs from the untiled run",
                                  f->n.op->name, (long long)tx, (long long)ty, (long long)y);
            tile_free(t);
        }
    return whole;
}

/* ---- the neighbourhood, from the params, as the docs define it ---- */

typedef struct nbhd {
    int hx, hy;
    bool in[101][101]; /* [dy + hy][dx + hx] */
    double w[101][101];
} nbhd;

static nbhd *nbhd_from(const json_t *params, bool convolve)
{
    nbhd *nb = calloc(1, sizeof *nb);
    ck_assert_ptr_nonnull(nb);
    const json_t *k = json_object_get(params, "kernel");
    const char *shape = convolve ? "kernel" : json_string_value(json_object_get(params, "shape"));
    if (shape == NULL) shape = "square";
    if (strcmp(shape, "kernel") == 0) {
        nb->hy = (int)json_array_size(k) / 2;
        nb->hx = (int)json_array_size(json_array_get(k, 0)) / 2;
        for (int i = 0; i <= 2 * nb->hy; i++)
            for (int j = 0; j <= 2 * nb->hx; j++) {
                double w =
                    json_number_value(json_array_get(json_array_get(k, (size_t)i), (size_t)j));
                nb->in[i][j] = w != 0;
                nb->w[i][j] = w;
            }
        return nb;
    }
    const json_t *rv = json_object_get(params, "radius");
    int r = rv ? (int)json_integer_value(rv) : 1;
    nb->hx = nb->hy = r;
    double inner = json_number_value(json_object_get(params, "inner_radius"));
    double start = json_number_value(json_object_get(params, "start"));
    double end = json_number_value(json_object_get(params, "end"));
    for (int dy = -r; dy <= r; dy++)
        for (int dx = -r; dx <= r; dx++) {
            double dist = sqrt((double)(dx * dx + dy * dy));
            bool in;
            if (strcmp(shape, "square") == 0) {
                in = true;
            } else if (strcmp(shape, "circle") == 0) {
                in = dist <= r + 1e-12;
            } else if (strcmp(shape, "annulus") == 0) {
                in = dist <= r + 1e-12 && dist > inner + 1e-12;
            } else if (strcmp(shape, "cross") == 0) {
                in = dx == 0 || dy == 0;
            } else { /* wedge */
                in = dist <= r + 1e-12;
                if (in && (dx != 0 || dy != 0)) {
                    /* azimuth clockwise from north (up) */
                    double az = atan2((double)dx, (double)-dy) * 180 / M_PI;
                    if (az < 0) az += 360;
                    double s = fmod(fmod(start, 360) + 360, 360),
                           e = fmod(fmod(end, 360) + 360, 360);
                    if (s <= e)
                        in = az >= s - 1e-7 && az <= e + 1e-7;
                    else
                        in = az >= s - 1e-7 || az <= e + 1e-7;
                }
            }
            nb->in[dy + r][dx + r] = in;
            nb->w[dy + r][dx + r] = 1;
        }
    return nb;
}

/* ---- the reference ---- */

typedef enum { SUM, MEAN, MIN, MAX, MEDIAN, MODE, STDDEV, RANGE, CONVOLVE } kind;
static const char *const KNAME[] = {"focal.sum",    "focal.mean",   "focal.min",
                                    "focal.max",    "focal.median", "focal.mode",
                                    "focal.stddev", "focal.range",  "focal.convolve"};

static pg_celltype want_type(kind k, pg_celltype in)
{
    switch (k) {
    case SUM:
    case MEAN:
    case STDDEV:
    case CONVOLVE:
        return in == PG_F64 || in == PG_U32 || in == PG_I32 ? PG_F64 : PG_F32;
    case RANGE:
        return in == PG_I8 ? PG_U8 : in == PG_I16 ? PG_U16 : in == PG_I32 ? PG_U32 : in;
    default:
        return in;
    }
}

static bool valid_cell(const fx *f, int b, int64_t x, int64_t y, double *v)
{
    if (x < 0 || y < 0 || x >= f->W || y >= f->H) return false;
    *v = f->val[((size_t)b * (size_t)f->H + (size_t)y) * (size_t)f->W + (size_t)x];
    if (isnan(*v)) return false;
    if (f->src.info.has_nodata && *v == f->src.info.nodata) return false;
    return true;
}

static int cmpd(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Checks every cell of OUT (the whole raster) against the reference. Returns
 * the number of nodata cells. */
static int check_stats(fx *f, kind k, const nbhd *nb, bool normalize, const pg_tile *out)
{
    const pg_celltype it = f->src.info.type, ot = want_type(k, it);
    const bool is_int = !pg_celltype_is_float(it);
    ck_assert_int_eq(f->n.info.type, ot);
    ck_assert_int_eq(out->type, ot);
    bool centre_in = nb->in[nb->hy][nb->hx];
    bool want_has_nd = f->src.info.has_nodata || !is_int || !centre_in || k == CONVOLVE;
    ck_assert_int_eq(f->n.info.has_nodata, want_has_nd);
    double ond = 0;
    if (want_has_nd) {
        ond = f->src.info.has_nodata && pg_celltype_holds(ot, f->src.info.nodata)
                  ? f->src.info.nodata
                  : pg_celltype_default_nodata(ot);
        ck_assert_msg(f->n.info.nodata == ond || (isnan(ond) && isnan(f->n.info.nodata)),
                      "nodata %g, want %g", f->n.info.nodata, ond);
    }
    const int kw = 2 * nb->hx + 1, kh = 2 * nb->hy + 1;
    double *vals = malloc(sizeof(double) * (size_t)(kw * kh));
    ck_assert_ptr_nonnull(vals);
    int nodata_cells = 0;
    for (int b = 0; b < f->bands; b++)
        for (int64_t y = 0; y < f->H; y++)
            for (int64_t x = 0; x < f->W; x++) {
                double c, v, sum = 0, mag = 0, wsum = 0, maxabs = 0;
                int n = 0;
                bool nd = !valid_cell(f, b, x, y, &c);
                for (int i = 0; i < kh; i++)
                    for (int j = 0; j < kw; j++) {
                        if (!nb->in[i][j]) continue;
                        if (!valid_cell(f, b, x + j - nb->hx, y + i - nb->hy, &v)) continue;
                        const double w = k == CONVOLVE ? nb->w[i][j] : 1.0;
                        vals[n++] = v;
                        sum += w * v;
                        mag += fabs(w * v);
                        wsum += w;
                        maxabs = fmax(maxabs, fabs(v));
                    }
                if (n == 0) nd = true;
                double want = 0, tol = 0;
                bool arith = true;
                if (!nd) {
                    qsort(vals, (size_t)n, sizeof *vals, cmpd);
                    switch (k) {
                    case SUM:
                        want = sum;
                        tol = (n + 2) * 0x1p-53 * mag;
                        break;
                    case MEAN:
                        want = sum / n;
                        tol = (n + 2) * 0x1p-53 * mag / n;
                        break;
                    case CONVOLVE:
                        want = sum;
                        tol = (n + 2) * 0x1p-53 * mag;
                        if (normalize) {
                            if (wsum == 0) {
                                nd = true;
                                break;
                            }
                            want = sum / wsum;
                            tol = (n + 4) * 0x1p-53 * (mag / fabs(wsum) + fabs(want));
                        }
                        break;
                    case MIN:
                        want = vals[0];
                        arith = false;
                        break;
                    case MAX:
                        want = vals[n - 1];
                        arith = false;
                        break;
                    case RANGE:
                        want = vals[n - 1] - vals[0];
                        break;
                    case MEDIAN:
                        arith = false;
                        if (n % 2)
                            want = vals[n / 2];
                        else if (is_int)
                            want = round((vals[n / 2 - 1] + vals[n / 2]) / 2);
                        else
                            want = vals[n / 2 - 1] * 0.5 + vals[n / 2] * 0.5;
                        break;
                    case MODE: {
                        arith = false;
                        int best = 0, bestc = 0;
                        for (int i = 0; i < n;) {
                            int j = i;
                            while (j < n && vals[j] == vals[i])
                                j++;
                            if (j - i > bestc) bestc = j - i, best = i;
                            i = j;
                        }
                        want = vals[best];
                        break;
                    }
                    case STDDEV: {
                        double mean = 0, ss = 0;
                        for (int i = 0; i < n; i++)
                            mean += vals[i];
                        mean /= n;
                        for (int i = 0; i < n; i++)
                            ss += (vals[i] - mean) * (vals[i] - mean);
                        want = sqrt(ss / n);
                        tol = ot == PG_F32 ? 0x1p-21 * want + 1e-9 * maxabs
                                           : 1e-12 * want + 1e-12 * maxabs;
                        break;
                    }
                    }
                }
                /* integer sums and everything exact: tolerance 0 */
                if (is_int && (k == SUM || k == MEAN)) tol = 0;
                if (!nd && arith && !isfinite(want)) nd = true;
                if (!nd && ot == PG_F32) {
                    double r = to_f32(want);
                    if (arith && isinf(r)) nd = true;
                    tol += 0x1p-24 * fabs(want);
                    if (tol == 0 || !arith) want = r;
                }
                const size_t idx =
                    ((size_t)b * (size_t)f->H + (size_t)y) * (size_t)f->W + (size_t)x;
                const double got = get(out, idx);
                if (nd) {
                    ck_assert_msg(want_has_nd, "%s %s cell (%lld,%lld): nodata but none declared",
                                  KNAME[k], TN[it], (long long)x, (long long)y);
                    ck_assert_msg(got == ond || (isnan(got) && isnan(ond)),
                                  "%s %s cell (%lld,%lld): want nodata %g, got %.17g", KNAME[k],
                                  TN[it], (long long)x, (long long)y, ond, got);
                    nodata_cells++;
                    continue;
                }
                if (tol == 0)
                    ck_assert_msg(got == want || (isnan(got) && isnan(want)),
                                  "%s %s cell (%lld,%lld): want %.17g, got %.17g (n %d)", KNAME[k],
                                  TN[it], (long long)x, (long long)y, want, got, n);
                else
                    ck_assert_msg(fabs(got - want) <= tol,
                                  "%s %s cell (%lld,%lld): want %.17g, got %.17g, tol %g (n %d)",
                                  KNAME[k], TN[it], (long long)x, (long long)y, want, got, tol, n);
            }
    free(vals);
    return nodata_cells;
}

/* ---- statistics: every op x shape x radius 1, 3 x every type ---- */

static json_t *shape_params(const char *shape, int r)
{
    if (strcmp(shape, "annulus") == 0)
        return json_pack("{s:s, s:i, s:f}", "shape", shape, "radius", r, "inner_radius",
                         r == 1 ? 0.0 : 1.5);
    if (strcmp(shape, "wedge") == 0)
        return r == 1 ? json_pack("{s:s, s:i, s:f, s:f}", "shape", shape, "radius", r, "start", 0.0,
                                  "end", 90.0)
                      : json_pack("{s:s, s:i, s:f, s:f}", "shape", shape, "radius", r, "start",
                                  315.0, "end", 45.0);
    if (strcmp(shape, "kernel") == 0)
        return r == 1
                   ? json_pack("{s:s, s:[[i,i,i,i,i],[i,i,i,i,i],[i,i,i,i,i]]}", "shape", shape,
                               "kernel", 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)
                   : json_pack("{s:s, s:[[i,i,i],[i,i,i],[i,i,i],[i,i,i],[i,i,i]]}", "shape", shape,
                               "kernel", 0, 1, 0, 1, 0, 1, 1, 0, 1, 0, 0, 1, 1, 0, 2, 0, 1, 0);
    return json_pack("{s:s, s:i}", "shape", shape, "radius", r);
}

static const char *const SHAPES[] = {"square", "circle", "annulus", "wedge", "cross", "kernel"};

/* One run: OP over TYPE with PARAMS (stolen), with or without nodata. */
static void run_stats(kind k, pg_celltype type, json_t *params, int variant)
{
    fx f;
    const bool has_nd = variant != 1;
    double nd = pg_celltype_is_float(type) ? -9999 : type == PG_U8 ? 255 : 2;
    if (variant == 2) nd = pg_celltype_is_float(type) ? NAN : pg_celltype_min(type);
    fx_init(&f, type, 23, 17, variant == 0 ? 2 : 1, has_nd, nd, 6, k == MODE && (rnd() & 1));
    nbhd *nb = nbhd_from(params, k == CONVOLVE);
    bool normalize = json_is_true(json_object_get(params, "normalize"));
    ck_assert_msg(fx_plan(&f, KNAME[k], params) == 0, "%s plan: %s", KNAME[k], f.err.message);
    pg_tile *out = fx_run_checked(&f, 7, 5);
    check_stats(&f, k, nb, normalize, out);
    tile_free(out);
    free(nb);
    fx_free(&f);
}

START_TEST(test_stats_shapes)
{
    const kind k = (kind)(_i / 6);
    const char *shape = SHAPES[_i % 6];
    rng = 1000 + (uint64_t)_i;
    /* every type at radius 1 and 3; the nodata variant (0: nodata and two
     * bands, 1: no nodata value, 2: NaN or the type's minimum as nodata)
     * rotates over types, radii and ops, so each op sees each variant */
    for (int r = 1; r <= 3; r += 2)
        for (int t = 0; t < PG_CELLTYPE_COUNT; t++)
            run_stats(k, (pg_celltype)t, shape_params(shape, r), (t + r / 2 + (int)k) % 3);
}
END_TEST

/* Larger windows: the network up to 128 cells (not 8-bit types), the
 * histogram (8-bit types, over 64 cells) and the gather path (other types,
 * over 128 cells) of median and mode, and wide sums, against the same
 * references. */
START_TEST(test_stats_large)
{
    rng = 77;
    const pg_celltype types[] = {PG_U8, PG_I8, PG_U16, PG_I32, PG_F32, PG_F64};
    const kind kinds[] = {MEDIAN, MODE, SUM, STDDEV};
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++)
        for (size_t ki = 0; ki < sizeof kinds / sizeof kinds[0]; ki++) {
            /* 121 cells */
            run_stats(kinds[ki], types[ti], json_pack("{s:s, s:i}", "shape", "square", "radius", 5),
                      (int)(ti % 3));
            /* 169 cells */
            run_stats(kinds[ki], types[ti], json_pack("{s:s, s:i}", "shape", "square", "radius", 6),
                      (int)((ti + 2) % 3));
            /* 100 cells, not the centre */
            run_stats(
                kinds[ki], types[ti],
                json_pack("{s:s, s:i, s:f}", "shape", "annulus", "radius", 6, "inner_radius", 2.0),
                (int)((ti + 1) % 3));
        }
}
END_TEST

START_TEST(test_convolve)
{
    rng = 4242;
    json_t *kern = json_pack("[[f,f,f,f,f],[f,f,f,f,f],[f,f,f,f,f]]", 0.5, -1.25, 0.0, 2.0, 0.125,
                             1.0, 3.0, -0.5, 0.0, 0.25, 0.0, 0.75, 1.5, -2.0, 4.0);
    for (int t = 0; t < PG_CELLTYPE_COUNT; t++)
        for (int norm = 0; norm < 2; norm++)
            for (int variant = 0; variant < 3; variant++)
                run_stats(CONVOLVE, (pg_celltype)t,
                          json_pack("{s:O, s:b}", "kernel", kern, "normalize", norm), variant);
    /* positive weights, normalized: a weighted mean */
    for (int t = 0; t < PG_CELLTYPE_COUNT; t++)
        run_stats(CONVOLVE, (pg_celltype)t,
                  json_pack("{s:[[i,i,i],[i,i,i],[i,i,i]], s:b}", "kernel", 1, 2, 1, 2, 4, 2, 1, 2,
                            1, "normalize", 1),
                  t % 3);
    json_decref(kern);

    /* orientation: a kernel picking the cell to the east (dx = +1) */
    fx f;
    fx_init(&f, PG_F64, 9, 7, 1, false, 0, 0, false);
    ck_assert_int_eq(
        fx_plan(&f, "focal.convolve",
                json_pack("{s:[[i,i,i],[i,i,i],[i,i,i]]}", "kernel", 0, 0, 0, 0, 0, 1, 0, 0, 0)),
        0);
    pg_tile *out = fx_run(&f, (pg_window){0, 0, 9, 7});
    for (int64_t y = 0; y < 7; y++)
        for (int64_t x = 0; x < 8; x++)
            ck_assert(get(out, (size_t)(y * 9 + x)) == f.val[y * 9 + x + 1]);
    ck_assert(isnan(get(out, 8))); /* the east neighbour is outside: no valid cell */
    tile_free(out);
    fx_free(&f);
}
END_TEST

/* Box sums and means of tiles that lie inside the raster with no invalid
 * cell take a fast path (no mask, no work arrays): tiles of 9x7 over a
 * raster without nodata or NaN in most bands are mostly such tiles, and the
 * untiled run (whose halo leaves the raster) takes the general path, so
 * fx_run_checked compares the two paths byte for byte; check_stats compares
 * both with the reference. Band 1 gets one NaN or nodata cell (that band's
 * tiles around it go the general way while band 0's stay fast); for floats,
 * a band 2 holds infinities and values whose f32 sums overflow (nodata). */
START_TEST(test_box_fast)
{
    rng = 9191;
    for (int t = 0; t < PG_CELLTYPE_COUNT; t++)
        for (int r = 1; r <= 3; r++)
            for (int km = 0; km < 2; km++) {
                const pg_celltype type = (pg_celltype)t;
                const bool fl = pg_celltype_is_float(type);
                const int bands = fl ? 3 : 2;
                const bool has_nd = (r + km) % 2 == 0;
                const double nd = fl ? -9999 : pg_celltype_min(type);
                fx f;
                fx_init(&f, type, 40, 33, bands, has_nd, nd, 0, false);
                /* band 1: one invalid cell inside */
                const size_t plane = 40 * 33;
                f.val[plane + 15 * 40 + 20] = has_nd ? nd : fl ? NAN : f.val[plane + 15 * 40 + 20];
                if (fl)
                    for (size_t i = 0; i < plane; i += 37)
                        f.val[2 * plane + i] = i % 3 == 0 ? INFINITY : (i % 3 == 1 ? -3e38 : 3e38);
                json_t *params = json_pack("{s:s, s:i}", "shape", "square", "radius", r);
                nbhd *nb = nbhd_from(params, false);
                const kind k = km ? MEAN : SUM;
                ck_assert_msg(fx_plan(&f, KNAME[k], params) == 0, "%s", f.err.message);
                pg_tile *out = fx_run_checked(&f, 9, 7);
                check_stats(&f, k, nb, false, out);
                tile_free(out);
                free(nb);
                fx_free(&f);
            }
}
END_TEST

/* Non-finite values: sums become nodata, min/max return the infinities. */
START_TEST(test_nonfinite)
{
    fx f;
    fx_init(&f, PG_F32, 5, 5, 1, false, 0, 0, false);
    for (int i = 0; i < 25; i++)
        f.val[i] = i;
    f.val[12] = INFINITY;
    f.val[0] = 3e38;
    f.val[1] = 3e38;
    ck_assert_int_eq(fx_plan(&f, "focal.sum", NULL), 0);
    pg_tile *out = fx_run(&f, (pg_window){0, 0, 5, 5});
    ck_assert(isnan(get(out, 12))); /* inf in the window */
    ck_assert(isnan(get(out, 6)));  /* inf */
    ck_assert(isnan(get(out, 0)));  /* 6e38 + ... overflows f32 */
    ck_assert(get(out, 24) == 18 + 19 + 23 + 24);
    tile_free(out);
    fx_free(&f);

    fx_init(&f, PG_F32, 5, 5, 1, false, 0, 0, false);
    for (int i = 0; i < 25; i++)
        f.val[i] = i;
    f.val[12] = INFINITY;
    ck_assert_int_eq(fx_plan(&f, "focal.max", NULL), 0);
    out = fx_run(&f, (pg_window){0, 0, 5, 5});
    ck_assert(isinf(get(out, 6)) && get(out, 6) > 0);
    ck_assert(get(out, 0) == 6);
    tile_free(out);
    fx_free(&f);
}
END_TEST

/* ---- terrain ---- */

typedef struct tref {
    const fx *f;
    double ewres, nsres; /* gt1 * xscale, gt5 * yscale */
    bool square;
} tref;

static bool tz(const fx *f, int64_t r, int64_t c, double *v)
{
    return valid_cell(f, 0, c, r, v);
}

/* gdaldem -compute_edges' window for (x, y), written from its description:
 * first/last row: rows beyond are 2*row0 - row1 (2*rowH-1 - rowH-2) along
 * each column, where the columns are x-1, x, x+1 clamped into the raster;
 * other rows: columns beyond are 2*col0 - col1 along each row. Nodata
 * neighbours take the centre. */
static bool tref_window(const fx *f, int64_t x, int64_t y, double w[9])
{
    const int64_t W = f->W, H = f->H;
    double c;
    if (W < 2 || H < 2 || !tz(f, y, x, &c)) return false;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            int64_t r = y - 1 + i, col = x - 1 + j;
            double v, v2;
            bool ok;
            if (y == 0 || y == H - 1) {
                if (col < 0) col = 0;
                if (col > W - 1) col = W - 1;
                if (r < 0) {
                    ok = tz(f, 0, col, &v) && tz(f, 1, col, &v2);
                    v = 2 * v - v2;
                } else if (r > H - 1) {
                    ok = tz(f, H - 1, col, &v) && tz(f, H - 2, col, &v2);
                    v = 2 * v - v2;
                } else {
                    ok = tz(f, r, col, &v);
                }
            } else if (col < 0) {
                ok = tz(f, r, 0, &v) && tz(f, r, 1, &v2);
                v = 2 * v - v2;
            } else if (col > W - 1) {
                ok = tz(f, r, W - 1, &v) && tz(f, r, W - 2, &v2);
                v = 2 * v - v2;
            } else {
                ok = tz(f, r, col, &v);
            }
            w[i * 3 + j] = ok ? v : c;
        }
    return true;
}

static void check_terrain(fx *f, const char *op, const pg_tile *out, double xs, double ys,
                          const json_t *params)
{
    const double *gt = f->src.info.geotransform;
    const double ew = gt[1] * xs, ns = gt[5] * ys;
    double z = 1, az = 315, alt = 45;
    if (json_object_get(params, "z_factor"))
        z = json_number_value(json_object_get(params, "z_factor"));
    if (json_object_get(params, "azimuth"))
        az = json_number_value(json_object_get(params, "azimuth"));
    if (json_object_get(params, "altitude"))
        alt = json_number_value(json_object_get(params, "altitude"));
    const bool percent =
        json_object_get(params, "units") &&
        strcmp(json_string_value(json_object_get(params, "units")), "percent") == 0;
    int flat = 0, nd = 0;
    for (int64_t y = 0; y < f->H; y++)
        for (int64_t x = 0; x < f->W; x++) {
            double w[9];
            const double got = get(out, (size_t)(y * f->W + x));
            if (!tref_window(f, x, y, w)) {
                ck_assert_msg(got == (strcmp(op, "focal.hillshade") == 0 ? 0 : -9999),
                              "%s (%lld,%lld): want nodata, got %g", op, (long long)x, (long long)y,
                              got);
                nd++;
                continue;
            }
            /* west - east and south - north, per cell width */
            const double gx = ((w[0] + 2 * w[3] + w[6]) - (w[2] + 2 * w[5] + w[8])) / (8 * ew);
            const double gy = ((w[6] + 2 * w[7] + w[8]) - (w[0] + 2 * w[1] + w[2])) / (8 * ns);
            if (strcmp(op, "focal.slope") == 0) {
                const double g = sqrt(gx * gx + gy * gy);
                const double want = percent ? 100 * g : atan(g) * 180 / M_PI;
                ck_assert_msg(fabs(got - want) <= 1e-4 + 1e-6 * want,
                              "slope (%lld,%lld): want %.9g, got %.9g", (long long)x, (long long)y,
                              want, got);
            } else if (strcmp(op, "focal.aspect") == 0) {
                /* gx = -dz/d(easting), gy = dz/d(northing) (ew, ns carry the
                 * signs of the axes); the slope faces down the gradient */
                const double dze = -gx, dzn = gy;
                if (dze == 0 && dzn == 0) {
                    ck_assert_msg(got == -9999, "aspect (%lld,%lld): flat, got %g", (long long)x,
                                  (long long)y, got);
                    flat++;
                    continue;
                }
                double want = atan2(-dze, -dzn) * 180 / M_PI; /* azimuth of -grad z */
                if (want < 0) want += 360;
                double diff = fabs(got - want);
                if (diff > 180) diff = 360 - diff;
                ck_assert_msg(diff <= 1e-4, "aspect (%lld,%lld): want %.9g, got %.9g", (long long)x,
                              (long long)y, want, got);
                ck_assert(got >= 0 && got < 360);
            } else {
                const double d2r = M_PI / 180;
                /* light direction and the surface normal, in (east, north, up) */
                const double dze = -gx * z, dzn = gy * z;
                const double nrm = sqrt(dze * dze + dzn * dzn + 1);
                const double lx = sin(az * d2r) * cos(alt * d2r),
                             ly = cos(az * d2r) * cos(alt * d2r), lz = sin(alt * d2r);
                double cang = (-dze * lx - dzn * ly + lz) / nrm;
                const double want = cang <= 0 ? 1 : floor(1 + 254 * cang + 0.5);
                ck_assert_msg(fabs(got - want) <= 1, "hillshade (%lld,%lld): want %g, got %g",
                              (long long)x, (long long)y, want, got);
            }
        }
    (void)flat;
    (void)nd;
}

/* An integer-valued DEM (hills, a flat plateau, nodata holes). */
static void dem_fill(fx *f, bool holes)
{
    for (int64_t y = 0; y < f->H; y++)
        for (int64_t x = 0; x < f->W; x++) {
            double h =
                500 + 40 * sin(x * 0.37) * cos(y * 0.29) + 3 * x - 2 * y + (double)(rnd() % 5);
            if (x >= 3 && x <= 7 && y >= 2 && y <= 5) h = 600; /* flat */
            if (holes && rnd() % 13 == 0) h = f->src.info.nodata;
            f->val[y * f->W + x] = round(h);
        }
}

static void run_terrain(pg_celltype t, int64_t W, int64_t H, const double gt[6], const char *crs,
                        const char *op, json_t *params, double xs, double ys, bool holes)
{
    fx f;
    fx_init(&f, t, W, H, 1, true, t == PG_U16 ? 65535 : t == PG_I16 ? -32768 : -9999, 0, false);
    f.src.info.has_geotransform = true;
    memcpy(f.src.info.geotransform, gt, sizeof f.src.info.geotransform);
    if (crs != NULL) {
        OGRSpatialReferenceH srs = OSRNewSpatialReference(NULL);
        ck_assert_int_eq(OSRSetFromUserInput(srs, crs), OGRERR_NONE);
        char *wkt = NULL;
        OSRExportToWkt(srs, &wkt);
        f.src.info.crs_wkt = strdup(wkt);
        CPLFree(wkt);
        OSRDestroySpatialReference(srs);
    }
    dem_fill(&f, holes);
    json_incref(params);
    ck_assert_msg(fx_plan(&f, op, params) == 0, "%s: %s", op, f.err.message);
    ck_assert_int_eq(f.n.info.type, strcmp(op, "focal.hillshade") == 0 ? PG_U8 : PG_F32);
    ck_assert(f.n.info.has_nodata);
    ck_assert(f.n.info.nodata == (strcmp(op, "focal.hillshade") == 0 ? 0 : -9999));
    pg_tile *out = fx_run_checked(&f, 6, 4);
    check_terrain(&f, op, out, xs, ys, params);
    tile_free(out);
    fx_free(&f);
}

START_TEST(test_terrain)
{
    rng = 99;
    const double gt_utm[6] = {500000, 10, 0, 5000000, 0, -10};
    const double gt_rect[6] = {0, 2, 0, 0, 0, -3};
    const double gt_south[6] = {0, 5, 0, 0, 0, 5};
    const char *ops[] = {"focal.slope", "focal.aspect", "focal.hillshade"};
    const pg_celltype types[] = {PG_F32, PG_I16, PG_F64, PG_U16};
    for (size_t o = 0; o < 3; o++) {
        json_t *none = json_object();
        for (size_t t = 0; t < 4; t++) {
            run_terrain(types[t], 19, 13, gt_utm, "EPSG:32633", ops[o], none, 1, 1, t % 2 == 0);
            run_terrain(types[t], 2, 5, gt_utm, NULL, ops[o], none, 1, 1, false);
            run_terrain(types[t], 6, 2, gt_utm, NULL, ops[o], none, 1, 1, false);
        }
        run_terrain(PG_F32, 1, 7, gt_utm, NULL, ops[o], none, 1, 1, false); /* all nodata */
        run_terrain(PG_F32, 17, 11, gt_rect, NULL, ops[o], none, 1, 1, true);
        run_terrain(PG_F32, 17, 11, gt_south, NULL, ops[o], none, 1, 1, true);
        json_decref(none);
        /* explicit scale, and geographic automatic scale (at the centre row) */
        json_t *sc = json_pack("{s:f}", "scale", 2.5);
        if (o != 1) run_terrain(PG_F32, 15, 12, gt_utm, NULL, ops[o], sc, 2.5, 2.5, true);
        json_decref(sc);
        const double gt_geo[6] = {10, 0.0001, 0, 50.0006, 0, -0.0001};
        const double lat = (50.0006 - 12 * 0.0001 / 2) * M_PI / 180;
        const double ys = 6378137.0 * M_PI / 180, xs = ys * cos(lat);
        json_t *geo = json_object();
        run_terrain(PG_F32, 16, 12, gt_geo, "EPSG:4326", ops[o], geo, xs, ys, true);
        json_decref(geo);
    }
    json_t *p = json_pack("{s:s}", "units", "percent");
    run_terrain(PG_F32, 19, 13, gt_utm, NULL, "focal.slope", p, 1, 1, true);
    json_decref(p);
    p = json_pack("{s:f, s:f, s:f}", "z_factor", 3.0, "azimuth", 120.0, "altitude", 30.0);
    run_terrain(PG_I16, 19, 13, gt_utm, NULL, "focal.hillshade", p, 1, 1, true);
    json_decref(p);
}
END_TEST

/* A tile wider than a strip (ops/focal.c processes tiles in strips of about
 * 2^18 input cells): the 9000 x 30 tile is cut into strips of 23 (stats,
 * radius 3) or 27 (terrain) rows; it must equal the reference and 600-wide
 * tiles (one strip each). */
START_TEST(test_strips)
{
    rng = 31337;
    const kind kinds[] = {MEAN, MEDIAN, STDDEV};
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        fx f;
        fx_init(&f, PG_F32, 9000, 30, 1, true, -9999, 9, false);
        json_t *params = json_pack("{s:s, s:i}", "shape", "circle", "radius", 3);
        nbhd *nb = nbhd_from(params, false);
        ck_assert_int_eq(fx_plan(&f, KNAME[kinds[k]], params), 0);
        pg_tile *out = fx_run_checked(&f, 600, 30);
        check_stats(&f, kinds[k], nb, false, out);
        tile_free(out);
        free(nb);
        fx_free(&f);
    }
    const double gt[6] = {0, 10, 0, 0, 0, -10};
    const char *ops[] = {"focal.slope", "focal.hillshade"};
    for (int o = 0; o < 2; o++) {
        fx f;
        fx_init(&f, PG_F32, 9000, 30, 1, true, -9999, 0, false);
        f.src.info.has_geotransform = true;
        memcpy(f.src.info.geotransform, gt, sizeof gt);
        dem_fill(&f, true);
        ck_assert_int_eq(fx_plan(&f, ops[o], NULL), 0);
        pg_tile *out = fx_run_checked(&f, 600, 30);
        json_t *none = json_object();
        check_terrain(&f, ops[o], out, 1, 1, none);
        json_decref(none);
        tile_free(out);
        fx_free(&f);
    }
}
END_TEST

/* ---- bad parameters, through the planner and the real registry ---- */

static void expect_plan_error(const char *node_json, int code, const char *needle)
{
    char buf[2048];
    snprintf(buf, sizeof buf,
             "{\"nodes\": {\"a\": {\"op\": \"raster.constant\", \"width\": 20, \"height\": 20, "
             "\"value\": 1, \"type\": \"f32\"}, \"f\": %s}, \"result\": \"f\"}",
             node_json);
    json_error_t je;
    json_t *g = json_loads(buf, 0, &je);
    ck_assert_msg(g != NULL, "bad test JSON %s: %s", buf, je.text);
    pg_plan *p = NULL;
    pg_error err = {0};
    int rc = pg_plan_build(g, &test_env, &p, &err);
    ck_assert_msg(rc == code, "%s: want %s, got %s (%s)", node_json, pg_err_name(code),
                  pg_err_name(rc), err.message);
    if (needle != NULL)
        ck_assert_msg(strstr(err.message, needle) != NULL, "%s: message '%s' lacks '%s'", node_json,
                      err.message, needle);
    if (rc == 0) {
        pg_plan_destroy(&p);
    } else {
        ck_assert_str_eq(err.node, "f");
    }
    json_decref(g);
}

START_TEST(test_bad_params)
{
#define F(S) "{\"op\": \"focal." S "}"
    expect_plan_error(F("mean\", \"args\": [{\"ref\": \"a\"}], \"radius\": -1"), PG_EPARAM,
                      "'radius'");
    expect_plan_error(F("mean\", \"args\": [{\"ref\": \"a\"}], \"radius\": 0"), PG_EPARAM,
                      "'radius'");
    expect_plan_error(F("mean\", \"args\": [{\"ref\": \"a\"}], \"radius\": 51"), PG_EPARAM,
                      "'radius'");
    expect_plan_error(F("mean\", \"args\": [{\"ref\": \"a\"}], \"radius\": 2.5"), PG_EPARAM,
                      "'radius'");
    expect_plan_error(F("mean\", \"args\": [{\"ref\": \"a\"}], \"shape\": \"hexagon\""), PG_EPARAM,
                      "'shape'");
    expect_plan_error(F("mean\", \"args\": [{\"ref\": \"a\"}], \"shape\": 3"), PG_EPARAM,
                      "'shape'");
    expect_plan_error(F("convolve\", \"args\": [{\"ref\": \"a\"}], \"kernel\": [[1, 1], [1, 1]]"),
                      PG_EPARAM, "odd");
    expect_plan_error(F("convolve\", \"args\": [{\"ref\": \"a\"}], \"kernel\": [[1, 1, 1]]"), 0,
                      NULL);
    expect_plan_error(F("convolve\", \"args\": [{\"ref\": \"a\"}], \"kernel\": [[1, 1, 1], [1]]"),
                      PG_EPARAM, "row 1");
    expect_plan_error(F("convolve\", \"args\": [{\"ref\": \"a\"}], \"kernel\": [[1, \"x\", 1]]"),
                      PG_EPARAM, "'kernel'");
    expect_plan_error(F("convolve\", \"args\": [{\"ref\": \"a\"}], \"kernel\": [[0, 0, 0]]"),
                      PG_EPARAM, "non-zero");
    expect_plan_error(F("convolve\", \"args\": [{\"ref\": \"a\"}], \"kernel\": 3"), PG_EPARAM,
                      "'kernel'");
    expect_plan_error(F("convolve\", \"args\": [{\"ref\": \"a\"}]"), PG_EPARAM, "'kernel'");
    expect_plan_error(F("mean\", \"args\": [{\"ref\": \"a\"}], \"shape\": \"kernel\""), PG_EPARAM,
                      "'kernel'");
    expect_plan_error(F("mean\", \"args\": [{\"ref\": \"a\"}], \"kernel\": [[1]]"), PG_EPARAM,
                      "'kernel'");
    expect_plan_error(F("mean\", \"args\": [{\"ref\": \"a\"}], \"shape\": \"annulus\", "
                        "\"radius\": 3"),
                      PG_EPARAM, "'inner_radius'");
    expect_plan_error(F("mean\", \"args\": [{\"ref\": \"a\"}], \"shape\": \"annulus\", "
                        "\"radius\": 3, \"inner_radius\": 3"),
                      PG_EPARAM, "'inner_radius'");
    expect_plan_error(F("mean\", \"args\": [{\"ref\": \"a\"}], \"inner_radius\": 1"), PG_EPARAM,
                      "'inner_radius'");
    expect_plan_error(
        F("mean\", \"args\": [{\"ref\": \"a\"}], \"shape\": \"wedge\", \"start\": 10"), PG_EPARAM,
        "'end'");
    expect_plan_error(
        F("mean\", \"args\": [{\"ref\": \"a\"}], \"shape\": \"wedge\", \"start\": 10, "
          "\"end\": 370"),
        PG_EPARAM, "differ");
    expect_plan_error(F("mean\", \"args\": [{\"ref\": \"a\"}], \"radious\": 2"), PG_EUNKNOWNPARAM,
                      "radious");
    expect_plan_error(F("mean\", \"args\": [{\"ref\": \"a\"}, {\"ref\": \"a\"}]"), PG_EARITY, NULL);
    expect_plan_error(F("mean\", \"args\": [3]"), PG_ETYPE, NULL);
    expect_plan_error(F("slope\", \"args\": [{\"ref\": \"a\"}], \"units\": \"radians\""), PG_EPARAM,
                      "'units'");
    expect_plan_error(F("slope\", \"args\": [{\"ref\": \"a\"}], \"scale\": 0"), PG_EPARAM,
                      "'scale'");
    expect_plan_error(F("hillshade\", \"args\": [{\"ref\": \"a\"}], \"altitude\": 100"), PG_EPARAM,
                      "'altitude'");
    expect_plan_error(F("aspect\", \"args\": [{\"ref\": \"a\"}], \"scale\": 2"), PG_EUNKNOWNPARAM,
                      "scale");
    expect_plan_error(
        F("mean\", \"args\": [{\"ref\": \"a\"}], \"shape\": \"wedge\", \"radius\": 4, "
          "\"start\": 350, \"end\": 10"),
        0, NULL);
#undef F

    /* plan() itself refuses what the table would (a node built by hand) */
    fx f;
    fx_init(&f, PG_F32, 5, 5, 1, false, 0, 0, false);
    ck_assert_int_eq(fx_plan(&f, "focal.max", json_pack("{s:i}", "radius", -2)), PG_EPARAM);
    ck_assert_ptr_nonnull(strstr(f.err.message, "'radius'"));
    fx_free(&f);
    fx_init(&f, PG_F32, 5, 5, 1, false, 0, 0, false);
    ck_assert_int_eq(
        fx_plan(&f, "focal.convolve", json_pack("{s:[[i,i,i,i]]}", "kernel", 1, 2, 3, 4)),
        PG_EPARAM);
    ck_assert_ptr_nonnull(strstr(f.err.message, "'kernel'"));
    fx_free(&f);
    fx_init(&f, PG_F32, 5, 5, 1, false, 0, 0, false);
    ck_assert_int_eq(fx_plan(&f, "focal.median", json_pack("{s:s}", "shape", "blob")), PG_EPARAM);
    ck_assert_ptr_nonnull(strstr(f.err.message, "'shape'"));
    fx_free(&f);
    /* a kernel too large */
    json_t *row = json_array(), *k = json_array();
    for (int i = 0; i < 103; i++)
        json_array_append_new(row, json_integer(1));
    for (int i = 0; i < 103; i++)
        json_array_append(k, row);
    json_decref(row);
    fx_init(&f, PG_F32, 5, 5, 1, false, 0, 0, false);
    ck_assert_int_eq(fx_plan(&f, "focal.convolve", json_pack("{s:o}", "kernel", k)), PG_EPARAM);
    ck_assert_ptr_nonnull(strstr(f.err.message, "101"));
    fx_free(&f);
}
END_TEST

/* need(): the window grown by the half-size. */
START_TEST(test_need)
{
    fx f;
    fx_init(&f, PG_U8, 50, 50, 1, false, 0, 0, false);
    ck_assert_int_eq(
        fx_plan(&f, "focal.sum", json_pack("{s:s, s:i}", "shape", "circle", "radius", 7)), 0);
    pg_window o = {16, 32, 16, 8}, i;
    f.n.op->need(&f.n, 0, &o, &i);
    ck_assert(i.x == 9 && i.y == 25 && i.w == 30 && i.h == 22);
    fx_free(&f);
    fx_init(&f, PG_U8, 50, 50, 1, false, 0, 0, false);
    ck_assert_int_eq(fx_plan(&f, "focal.convolve",
                             json_pack("{s:[[i,i,i,i,i],[i,i,i,i,i],[i,i,i,i,i]]}", "kernel", 1, 1,
                                       1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1)),
                     0);
    f.n.op->need(&f.n, 0, &o, &i);
    ck_assert(i.x == 14 && i.y == 31 && i.w == 20 && i.h == 10);
    fx_free(&f);
    fx_init(&f, PG_F32, 50, 50, 1, false, 0, 0, false);
    ck_assert_int_eq(fx_plan(&f, "focal.hillshade", NULL), 0);
    f.n.op->need(&f.n, 0, &o, &i);
    ck_assert(i.x == 15 && i.y == 31 && i.w == 18 && i.h == 10);
    fx_free(&f);
}
END_TEST

START_TEST(test_docs)
{
    for (const pg_op_def *d = pg_ops_focal; d->name != NULL; d++) {
        ck_assert_str_eq(d->family, "focal");
        ck_assert_msg(strstr(d->doc, "Output") != NULL, "%s: doc states no output type", d->name);
        ck_assert_msg(strstr(d->doc, "nodata") != NULL, "%s: doc states no nodata rule", d->name);
        json_t *ex = json_loads(d->example, 0, NULL);
        ck_assert_msg(ex != NULL, "%s: example is not JSON", d->name);
        ck_assert_str_eq(json_string_value(json_object_get(ex, "op")), d->name);
        json_decref(ex);
        json_t *desc = pg_op_describe(d);
        ck_assert_ptr_nonnull(desc);
        json_decref(desc);
    }
}
END_TEST

/* ---- speed: one 256x256 tile ---- */

static double time_tile(fx *f, int reps)
{
    pg_window win = {256, 256, 256, 256}, iw;
    f->n.op->need(&f->n, 0, &win, &iw);
    pg_tile *in = tile_new(f->src.info.type, 1, iw);
    for (size_t i = 0; i < (size_t)(iw.w * iw.h); i++)
        set(in, i, f->val[i % (size_t)(f->W * f->H)]);
    pg_tile *out = tile_new(f->n.info.type, 1, win);
    pg_tile *ins[1] = {in};
    double best = INFINITY;
    for (int r = 0; r < reps; r++) {
        uint64_t t0 = pg_now_ns();
        ck_assert_int_eq(f->n.op->compute(&f->n, out, ins, &f->err), 0);
        best = fmin(best, (double)(pg_now_ns() - t0));
    }
    tile_free(in);
    tile_free(out);
    return best;
}

START_TEST(test_speed)
{
    static const struct {
        const char *what, *op, *params;
        pg_celltype t;
        bool dem;
    } cases[] = {
        {"mean 3x3 f32", "focal.mean", "{}", PG_F32, false},
        {"mean 3x3 f32 (nodata)", "focal.mean", "{}", PG_F32, false},
        {"sum 11x11 f32", "focal.sum", "{\"radius\": 5}", PG_F32, false},
        {"sum circle r=10 u16", "focal.sum", "{\"shape\": \"circle\", \"radius\": 10}", PG_U16,
         false},
        {"max 5x5 f32", "focal.max", "{\"radius\": 2}", PG_F32, false},
        {"median 3x3 f32", "focal.median", "{}", PG_F32, false},
        {"median 5x5 f32", "focal.median", "{\"radius\": 2}", PG_F32, false},
        {"median 7x7 f32", "focal.median", "{\"radius\": 3}", PG_F32, false},
        {"median 11x11 u8", "focal.median", "{\"radius\": 5}", PG_U8, false},
        {"median 11x11 f32", "focal.median", "{\"radius\": 5}", PG_F32, false},
        {"mode 5x5 u8", "focal.mode", "{\"radius\": 2}", PG_U8, false},
        {"stddev 5x5 f32", "focal.stddev", "{\"radius\": 2}", PG_F32, false},
        {"stddev 5x5 i16", "focal.stddev", "{\"radius\": 2}", PG_I16, false},
        {"convolve 5x5 f32", "focal.convolve",
         "{\"kernel\": [[1,2,3,2,1],[2,3,4,3,2],[3,4,5,4,3],[2,3,4,3,2],[1,2,3,2,1]]}", PG_F32,
         false},
        {"slope f32", "focal.slope", "{}", PG_F32, true},
        {"aspect f32", "focal.aspect", "{}", PG_F32, true},
        {"hillshade f32", "focal.hillshade", "{}", PG_F32, true},
        {"hillshade i16", "focal.hillshade", "{}", PG_I16, true},
    };
    rng = 5;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        fx f;
        const bool nd = strstr(cases[c].what, "nodata") != NULL;
        fx_init(&f, cases[c].t, 300, 300, 1, nd, -9999, nd ? 10 : 0, false);
        f.src.info.width = f.src.info.height = 1000;
        f.W = f.H = 1000; /* the tile sits inside the raster */
        if (cases[c].dem) {
            f.src.info.has_geotransform = true;
            const double gt[6] = {0, 10, 0, 0, 0, -10};
            memcpy(f.src.info.geotransform, gt, sizeof gt);
            for (int64_t i = 0; i < 300 * 300; i++)
                f.val[i] =
                    500 + 100 * sin((double)(i % 300) * 0.05) * cos((double)(i / 300) * 0.04);
        }
        ck_assert_int_eq(fx_plan(&f, cases[c].op, json_loads(cases[c].params, 0, NULL)), 0);
        f.W = f.H = 300;
        const double ns = time_tile(&f, 15);
        fprintf(stderr, "%-24s 256x256: %8.1f us per tile (%6.2f ns per cell)\n", cases[c].what,
                ns / 1e3, ns / 65536.0);
        fx_free(&f);
    }
}
END_TEST

int main(void)
{
    GDALAllRegister();
    pg_bufpool_init((size_t)1 << 30);
    Suite *s = suite_create("focal");
    TCase *ts = tcase_create("stats");
    tcase_set_timeout(ts, 300);
    tcase_add_loop_test(ts, test_stats_shapes, 0, 8 * 6);
    tcase_add_test(ts, test_stats_large);
    tcase_add_test(ts, test_convolve);
    tcase_add_test(ts, test_nonfinite);
    tcase_add_test(ts, test_box_fast);
    tcase_add_test(ts, test_need);
    suite_add_tcase(s, ts);
    TCase *tt = tcase_create("terrain");
    tcase_set_timeout(tt, 120);
    tcase_add_test(tt, test_terrain);
    tcase_add_test(tt, test_strips);
    suite_add_tcase(s, tt);
    TCase *tp = tcase_create("params");
    tcase_add_test(tp, test_bad_params);
    tcase_add_test(tp, test_docs);
    suite_add_tcase(s, tp);
    TCase *tsp = tcase_create("speed");
    tcase_set_timeout(tsp, 120);
    tcase_add_test(tsp, test_speed);
    suite_add_tcase(s, tsp);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    pg_bufpool_shutdown();
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
