/* Unit tests for the render ops (ops/render.c): render.ramp, render.rgb.
 *
 * Nodes are built by hand (no planner; the params' table defaults are
 * filled in here as the planner would), with hand-made source nodes and
 * tiles. Value args are bound by calling bind() directly, as the job does.
 *
 * The reference is computed here, in double, from this file's own copy of
 * the published anchor colours (hex, as in the sources cited in
 * ops/render.c):
 *  - a ramp colour at t: the two anchors around t interpolated linearly,
 *    c = a + (t - p0) / (p1 - p0) * (b - a), rounded half up. Double
 *    rounding can put an exact .5 a hair below: a value within 1e-9 of a
 *    half is taken as the half (exact values that are not halves are at
 *    least 1e-6 from one: their denominators are below 10^6).
 *  - classes: class k = number of breaks <= v, colour at t = k / n;
 *  - continuous: t = (v - min) / (max - min) clamped, quantised to
 *    q / 3840 with q = floor((v - min) * (3840 / (max - min)) + 0.5) (the
 *    op's documented arithmetic): every cell must equal the
 *    reference at q / 3840 exactly, and be within 1 (per channel) of the
 *    reference at the unquantised t; anchors, endpoints and midpoints
 *    between anchors must equal the exact interpolation;
 *  - render.rgb: round_half_up(255 * t^(1/gamma)), t as above; exact,
 *    except that a reference within 1e-9 of a rounding boundary accepts
 *    either neighbour (pow() and the op's threshold search may round such
 *    a value either way).
 * Missing cells: alpha 0 and colour 0 (ramp), black (rgb).
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

/* Per-cell checks: ck_assert records every passing check's location (a
 * write(2) each), which costs seconds over a few million cells; this one
 * only reports failures. */
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) ck_abort_msg(__VA_ARGS__);                                                    \
    } while (0)

/* ---- the published anchors (this file's own copy) ---- */

typedef struct ref_ramp {
    const char *name;
    const char *hex;   /* anchors, "rrggbb rrggbb ..." */
    const double *pos; /* NULL: evenly spaced */
} ref_ramp;

static const double terrain_pos[] = {0.0, 0.15, 0.25, 0.5, 0.75, 1.0};

static const ref_ramp REF[] = {
    {"viridis",
     "440154 481a6c 472f7d 414487 39568c 31688e 2a788e 23888e 1f988b 22a884 35b779 "
     "54c568 7ad151 a5db36 d2e21b fde725",
     NULL},
    {"magma",
     "000004 0b0924 20114b 3b0f70 57157e 721f81 8c2981 a8327d c43c75 de4968 f1605d "
     "fa7f5e fe9f6d febf84 fddea0 fcfdbf",
     NULL},
    {"inferno",
     "000004 0c0826 240c4f 420a68 5d126e 781c6d 932667 ae305c c73e4c dd513a ed6925 "
     "f8850f fca50a fac62d f2e661 fcffa4",
     NULL},
    {"plasma",
     "0d0887 330597 5002a2 6a00a8 8405a7 9c179e b12a90 c33d80 d35171 e16462 ed7953 "
     "f68f44 fca636 fec029 f9dc24 f0f921",
     NULL},
    {"cividis",
     "00224e 002e6c 1e3a6f 35456c 47516c 575d6d 666970 757575 848279 948e77 a59c74 "
     "b7a96e c8b866 dbc75a eed649 fee838",
     NULL},
    {"greys", "ffffff f0f0f0 d9d9d9 bdbdbd 969696 737373 525252 252525 000000", NULL},
    {"blues", "f7fbff deebf7 c6dbef 9ecae1 6baed6 4292c6 2171b5 08519c 08306b", NULL},
    {"greens", "f7fcf5 e5f5e0 c7e9c0 a1d99b 74c476 41ab5d 238b45 006d2c 00441b", NULL},
    {"reds", "fff5f0 fee0d2 fcbba1 fc9272 fb6a4a ef3b2c cb181d a50f15 67000d", NULL},
    {"ylorrd", "ffffcc ffeda0 fed976 feb24c fd8d3c fc4e2a e31a1c bd0026 800026", NULL},
    {"spectral", "9e0142 d53e4f f46d43 fdae61 fee08b ffffbf e6f598 abdda4 66c2a5 3288bd 5e4fa2",
     NULL},
    {"rdylgn", "a50026 d73027 f46d43 fdae61 fee08b ffffbf d9ef8b a6d96a 66bd63 1a9850 006837",
     NULL},
    {"rdbu", "67001f b2182b d6604d f4a582 fddbc7 f7f7f7 d1e5f0 92c5de 4393c3 2166ac 053061", NULL},
    {"terrain", "333399 0099ff 00cc66 ffff99 805c54 ffffff", terrain_pos},
};
#define NREF ((int)(sizeof REF / sizeof REF[0]))

typedef struct anchors {
    int k;
    double pos[32];
    int rgb[32][3];
} anchors;

static void ref_anchors(const ref_ramp *r, anchors *a)
{
    memset(a, 0, sizeof *a);
    const char *s = r->hex;
    while (*s) {
        while (*s == ' ')
            s++;
        if (!*s) break;
        unsigned v;
        ck_assert_int_eq(sscanf(s, "%6x", &v), 1);
        a->rgb[a->k][0] = (int)(v >> 16) & 255;
        a->rgb[a->k][1] = (int)(v >> 8) & 255;
        a->rgb[a->k][2] = (int)v & 255;
        a->k++;
        s += 6;
    }
    for (int j = 0; j < a->k; j++)
        a->pos[j] = r->pos ? r->pos[j] : (double)j / (a->k - 1);
}

static const ref_ramp *ref_find(const char *name)
{
    for (int i = 0; i < NREF; i++)
        if (strcmp(REF[i].name, name) == 0) return &REF[i];
    ck_abort_msg("no reference ramp %s", name);
    return NULL;
}

/* Round half up, a value within 1e-9 of a half counting as the half. */
static int round_half_up(double c)
{
    return (int)floor(c + 0.5 + 1e-9);
}

/* The unrounded colour channel CH at t. */
static double ref_channel(const anchors *a, double t, int ch)
{
    if (t <= 0) return a->rgb[0][ch];
    if (t >= 1) return a->rgb[a->k - 1][ch];
    int j = 0;
    while (j < a->k - 2 && t >= a->pos[j + 1])
        j++;
    double f = (t - a->pos[j]) / (a->pos[j + 1] - a->pos[j]);
    return a->rgb[j][ch] + f * (a->rgb[j + 1][ch] - a->rgb[j][ch]);
}

static void ref_color(const anchors *a, double t, int out[3])
{
    for (int c = 0; c < 3; c++)
        out[c] = round_half_up(ref_channel(a, t, c));
}

/* ---- tiles and nodes by hand ---- */

static pg_tile *tile_new(pg_celltype t, int bands, int64_t w, int64_t h)
{
    pg_tile *tl = calloc(1, sizeof *tl);
    ck_assert_ptr_nonnull(tl);
    atomic_init(&tl->refs, 1);
    tl->type = t;
    tl->bands = bands;
    tl->win = (pg_window){512, 256, w, h}; /* not at the origin */
    tl->nbytes = (size_t)bands * (size_t)w * (size_t)h * pg_celltype_size(t);
    size_t alloc = (tl->nbytes + 63) / 64 * 64;
    tl->data = aligned_alloc(64, alloc ? alloc : 64);
    ck_assert_ptr_nonnull(tl->data);
    memset(tl->data, 0, alloc ? alloc : 64);
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

static const pg_op_def src_op = {
    .name = "test.source", .family = "test", .result = PG_RESULT_RASTER};
static const pg_op_def value_op = {
    .name = "test.value", .family = "test", .result = PG_RESULT_VALUE};

static const pg_plan_env test_env = {.data_root = "/nonexistent",
                                     .max_nodes = 1000,
                                     .max_depth = 100,
                                     .max_cells = (int64_t)1 << 40,
                                     .tile_w = 256,
                                     .tile_h = 256};

static const pg_op_def *find_op(const char *name)
{
    for (const pg_op_def *d = pg_ops_render; d->name != NULL; d++)
        if (strcmp(d->name, name) == 0) return d;
    ck_abort_msg("no op %s", name);
    return NULL;
}

#define MAXA 6

/* A node under test: args are 'r' rasters (info from SRC[i]) or 'v' value
 * nodes, in order. */
typedef struct fx {
    pg_node src[MAXA];
    pg_arg args[MAXA];
    pg_tile *tiles[MAXA];
    int nargs;
    pg_node n;
    pg_tile *out;
    pg_error err;
} fx;

/* Fills in the table defaults of params the test did not give, as the
 * planner does. PARAMS is stolen. */
static json_t *with_defaults(const pg_op_def *op, json_t *params)
{
    if (params == NULL) params = json_object();
    for (const pg_param_def *p = op->params; p->name != NULL; p++) {
        if (json_object_get(params, p->name) != NULL || p->default_json == NULL) continue;
        json_error_t je;
        json_t *v = json_loads(p->default_json, JSON_DECODE_ANY, &je);
        ck_assert_ptr_nonnull(v);
        json_object_set_new(params, p->name, v);
    }
    return params;
}

static void fx_init(fx *f, const char *op, json_t *params)
{
    memset(f, 0, sizeof *f);
    f->n.op = find_op(op);
    f->n.name = "n";
    f->n.params = with_defaults(f->n.op, params);
    f->n.args = f->args;
}

/* Adds a raster arg of W x H cells, BANDS bands of TYPE (contents zero). */
static pg_tile *fx_raster(fx *f, pg_celltype type, int bands, int64_t w, int64_t h, bool has_nd,
                          double nd)
{
    int a = f->nargs++;
    pg_node *s = &f->src[a];
    s->op = &src_op;
    s->name = a == 0 ? "img" : a == 1 ? "img1" : "img2";
    s->index = a;
    s->info.width = 1000;
    s->info.height = 1000;
    s->info.bands = bands;
    s->info.type = type;
    s->info.has_nodata = has_nd;
    s->info.nodata = nd;
    s->info.has_geotransform = true;
    double gt[6] = {500000, 10, 0, 5000000, 0, -10};
    memcpy(s->info.geotransform, gt, sizeof gt);
    s->info.crs_wkt = strdup("");
    f->args[a] = (pg_arg){.node = a, .ref = s};
    f->tiles[a] = tile_new(type, bands, w, h);
    f->n.nargs = f->nargs;
    return f->tiles[a];
}

static void fx_value(fx *f, const char *name)
{
    int a = f->nargs++;
    pg_node *s = &f->src[a];
    s->op = &value_op;
    s->name = (char *)name;
    s->index = a;
    f->args[a] = (pg_arg){.node = a, .ref = s};
    f->tiles[a] = NULL;
    f->n.nargs = f->nargs;
}

static int fx_plan(fx *f)
{
    memset(&f->err, 0, sizeof f->err);
    return f->n.op->plan(&f->n, &test_env, &f->err);
}

/* Binds VALUE (JSON text) to arg I. */
static int fx_bind(fx *f, int i, const char *value)
{
    json_error_t je;
    json_t *v = json_loads(value, JSON_DECODE_ANY, &je);
    CHECK(v != NULL, "bad test JSON %s", value);
    memset(&f->err, 0, sizeof f->err);
    int rc = f->n.op->bind(&f->n, i, v, &f->err);
    json_decref(v);
    return rc;
}

static void fx_compute(fx *f)
{
    const pg_tile *t0 = NULL;
    for (int a = 0; a < f->nargs; a++)
        if (f->tiles[a]) t0 = t0 ? t0 : f->tiles[a];
    ck_assert_ptr_nonnull(t0);
    tile_free(f->out);
    f->out = tile_new(f->n.info.type, f->n.info.bands, t0->win.w, t0->win.h);
    memset(f->out->data, 0x5a, f->out->nbytes); /* nothing may be left unwritten */
    int rc = f->n.op->compute(&f->n, f->out, f->tiles, &f->err);
    CHECK(rc == 0, "compute: %s", f->err.message);
}

static void fx_free(fx *f)
{
    if (f->n.state != NULL) f->n.op->free_state(&f->n);
    ck_assert_ptr_null(f->n.state);
    pg_raster_info_clear(&f->n.info);
    json_decref(f->n.params);
    for (int a = 0; a < f->nargs; a++) {
        tile_free(f->tiles[a]);
        if (f->src[a].op == &src_op) pg_raster_info_clear(&f->src[a].info);
    }
    tile_free(f->out);
}

/* Output cell I's colour. */
static void out_rgba(const fx *f, size_t i, int c[4])
{
    const size_t plane = (size_t)f->out->win.w * (size_t)f->out->win.h;
    const uint8_t *d = f->out->data;
    for (int b = 0; b < f->out->bands; b++)
        c[b] = d[(size_t)b * plane + i];
}

static json_t *jparse(const char *text)
{
    json_error_t je;
    json_t *v = json_loads(text, 0, &je);
    CHECK(v != NULL, "bad test JSON %s: %s", text, je.text);
    return v;
}

/* The class of V: the number of breaks <= v. */
static int ref_class(const double *br, int n, double v)
{
    int k = 0;
    for (int i = 0; i < n; i++)
        if (v >= br[i]) k++;
    return k;
}

/* The table step of V, as ops/render.c documents it. */
static double ref_q(double v, double lo, double hi)
{
    if (v <= lo) return 0;
    if (v >= hi) return 3840;
    return floor((v - lo) * (3840 / (hi - lo)) + 0.5);
}

/* Whether V is a missing cell of a raster of type T with nodata ND: NaN,
 * or ND as stored in T (f32: rounded to f32, as GDAL compares). */
static bool is_missing(pg_celltype t, bool has_nd, double nd, double v)
{
    if (isnan(v)) return true;
    if (!has_nd) return false;
    return v == (t == PG_F32 ? (double)(float)nd : nd);
}

/* The continuous stretch position of V, unquantised. */
static double ref_t(double v, double lo, double hi)
{
    if (v <= lo) return 0.0;
    if (v >= hi) return 1.0;
    return (v - lo) / (hi - lo);
}

/* ---- render.ramp ---- */

/* Every ramp, continuous, over every step: cells v = 0..3840 with
 * min 0, max 3840 (t = v / 3840 exactly on the table), then nodata and NaN;
 * forwards and reversed. Checks the output's info too. */
START_TEST(test_ramp_every_step)
{
    const ref_ramp *rr = &REF[_i];
    anchors a;
    ref_anchors(rr, &a);
    for (int rev = 0; rev < 2; rev++) {
        fx f;
        fx_init(&f, "render.ramp",
                json_pack("{s:s, s:i, s:i, s:b}", "ramp", rr->name, "min", 0, "max", 3840,
                          "reverse", rev));
        const int64_t w = 3843;
        pg_tile *t = fx_raster(&f, PG_F64, 1, w, 1, true, -9999);
        for (int64_t x = 0; x <= 3840; x++)
            set(t, (size_t)x, (double)x);
        set(t, 3841, -9999);
        set(t, 3842, NAN);
        CHECK(fx_plan(&f) == 0, "%s: %s", rr->name, f.err.message);
        ck_assert_int_eq(f.n.info.type, PG_U8);
        ck_assert_int_eq(f.n.info.bands, 4);
        ck_assert(!f.n.info.has_nodata);
        ck_assert(f.n.info.has_geotransform && f.n.info.geotransform[0] == 500000);
        ck_assert_int_eq(f.n.info.width, 1000);
        fx_compute(&f);
        for (int64_t x = 0; x <= 3840; x++) {
            int c[4], r[3];
            out_rgba(&f, (size_t)x, c);
            double tq = (double)x / 3840;
            ref_color(&a, rev ? 1 - tq : tq, r);
            CHECK(c[0] == r[0] && c[1] == r[1] && c[2] == r[2] && c[3] == 255,
                  "%s%s at t=%lld/3840: got %d,%d,%d,%d want %d,%d,%d,255", rr->name,
                  rev ? " reversed" : "", (long long)x, c[0], c[1], c[2], c[3], r[0], r[1], r[2]);
        }
        /* Anchors, endpoints and midpoints between anchors: the exact
         * interpolation, written out. */
        for (int j = 0; j < a.k; j++) {
            for (int half = 0; half < 2 && !(half && j == a.k - 1); half++) {
                double tp = half ? (a.pos[j] + a.pos[j + 1]) / 2 : a.pos[j];
                int64_t x = (int64_t)floor(tp * 3840 + 0.5);
                CHECK(fabs(x - tp * 3840) < 1e-9, "%s: anchor off the table", rr->name);
                int c[4];
                out_rgba(&f, (size_t)(rev ? 3840 - x : x), c);
                for (int ch = 0; ch < 3; ch++) {
                    int want = half ? (a.rgb[j][ch] + a.rgb[j + 1][ch] + 1) / 2 : a.rgb[j][ch];
                    CHECK(c[ch] == want, "%s: %s %d channel %d: got %d want %d", rr->name,
                          half ? "midpoint after anchor" : "anchor", j, ch, c[ch], want);
                }
            }
        }
        for (int64_t x = 3841; x <= 3842; x++) {
            int c[4];
            out_rgba(&f, (size_t)x, c);
            CHECK(c[0] == 0 && c[1] == 0 && c[2] == 0 && c[3] == 0,
                  "missing cell %lld not transparent", (long long)x);
        }
        fx_free(&f);
    }
}
END_TEST

/* Continuous over random values (f32 and i32, some outside [min, max],
 * nodata, NaN, inf), opacity: exact against the quantised reference,
 * within 1 of the unquantised one. */
START_TEST(test_ramp_continuous_random)
{
    rng = 1234 + (uint64_t)_i;
    static const char *const ramps[] = {"viridis", "terrain", "rdbu", "greys"};
    const pg_celltype types[] = {PG_F32, PG_I32, PG_U16, PG_F64};
    for (int c = 0; c < 4; c++) {
        const pg_celltype ty = types[c];
        double lo = ty == PG_U16 ? 100 + floor(rnd_unit() * 1000) : (rnd_unit() - 0.5) * 2000;
        double hi = lo + (ty == PG_U16 ? floor(1 + rnd_unit() * 5000) : 1 + rnd_unit() * 3000);
        if (ty == PG_F32) lo = (float)lo, hi = (float)hi;
        const double op = c == 1 ? 0.3 : 1.0; /* alpha round(76.5) = 77 */
        const int want_alpha = c == 1 ? 77 : 255;
        const double nd = ty == PG_U16 ? 65535 : -9999;
        fx f;
        fx_init(&f, "render.ramp",
                json_pack("{s:s, s:f, s:f, s:f}", "ramp", ramps[c], "min", lo, "max", hi, "opacity",
                          op));
        const int64_t w = 256, h = 64;
        pg_tile *t = fx_raster(&f, ty, 1, w, h, true, nd);
        const size_t n = (size_t)(w * h);
        for (size_t i = 0; i < n; i++) {
            double v = lo - (hi - lo) * 0.1 + rnd_unit() * (hi - lo) * 1.2;
            if (!pg_celltype_is_float(ty)) v = floor(v);
            if (ty == PG_U16) v = fmax(0, fmin(65534, v));
            if (i % 97 == 0) v = nd;
            if (pg_celltype_is_float(ty) && i % 89 == 0) v = NAN;
            if (pg_celltype_is_float(ty) && i % 83 == 0) v = (i / 83) % 2 ? INFINITY : -INFINITY;
            set(t, i, v);
        }
        CHECK(fx_plan(&f) == 0, "%s", f.err.message);
        fx_compute(&f);
        anchors a;
        ref_anchors(ref_find(ramps[c]), &a);
        for (size_t i = 0; i < n; i++) {
            const double v = get(t, i);
            int got[4];
            out_rgba(&f, i, got);
            if (is_missing(ty, true, nd, v)) {
                CHECK(got[0] == 0 && got[1] == 0 && got[2] == 0 && got[3] == 0,
                      "missing cell %zu: %d,%d,%d,%d", i, got[0], got[1], got[2], got[3]);
                continue;
            }
            const double tt = ref_t(v, lo, hi);
            const double q = ref_q(v, lo, hi);
            int r[3];
            ref_color(&a, q / 3840, r);
            for (int ch = 0; ch < 3; ch++) {
                CHECK(got[ch] == r[ch], "%s v=%.9g cell %zu ch %d: got %d want %d", ramps[c], v, i,
                      ch, got[ch], r[ch]);
                const double exact = ref_channel(&a, tt, ch);
                CHECK(fabs(got[ch] - exact) <= 1.0, "%s v=%.9g: %d vs exact %.3f", ramps[c], v,
                      got[ch], exact);
            }
            CHECK(got[3] == want_alpha, "cell %zu alpha %d", i, got[3]);
        }
        fx_free(&f);
    }
}
END_TEST

/* Checks every cell of F's output against classes of BR over the input
 * tile T (band 0), ramp NAME (reversed), alpha A; missing cells where
 * MISSING(v). */
static void check_classes(fx *f, const pg_tile *t, int band, const char *name, const double *br,
                          int nb, bool rev, int alpha, bool has_nd, double nd)
{
    anchors a;
    ref_anchors(ref_find(name), &a);
    const size_t plane = (size_t)t->win.w * (size_t)t->win.h;
    for (size_t i = 0; i < plane; i++) {
        const double v = get(t, (size_t)band * plane + i);
        int got[4];
        out_rgba(f, i, got);
        if (is_missing(t->type, has_nd, nd, v)) {
            CHECK(got[0] == 0 && got[1] == 0 && got[2] == 0 && got[3] == 0,
                  "missing cell %zu (%g) not transparent", i, v);
            continue;
        }
        int k = ref_class(br, nb, v), r[3];
        double tk = (double)k / nb;
        ref_color(&a, rev ? 1 - tk : tk, r);
        CHECK(got[0] == r[0] && got[1] == r[1] && got[2] == r[2] && got[3] == alpha,
              "%s v=%g class %d/%d: got %d,%d,%d,%d want %d,%d,%d,%d", name, v, k, nb, got[0],
              got[1], got[2], got[3], r[0], r[1], r[2], alpha);
    }
}

/* Explicit breaks: cells at, just below and above each break, each class
 * colour as the reference; reverse; opacity; nodata. */
START_TEST(test_ramp_breaks)
{
    const double br[] = {10, 20, 20, 35}; /* a repeated break: an empty class */
    for (int rev = 0; rev < 2; rev++) {
        fx f;
        fx_init(&f, "render.ramp",
                json_pack("{s:s, s:[i,i,i,i], s:b, s:f, s:i}", "ramp", "spectral", "breaks", 10, 20,
                          20, 35, "reverse", rev, "opacity", 0.5, "band", 2));
        pg_tile *t = fx_raster(&f, PG_I16, 2, 60, 1, true, -1);
        for (int x = 0; x < 60; x++) {
            set(t, (size_t)x, 7);            /* band 1: not used */
            set(t, (size_t)(60 + x), x - 2); /* band 2: -2..57; -1 is nodata */
        }
        CHECK(fx_plan(&f) == 0, "%s", f.err.message);
        fx_compute(&f);
        check_classes(&f, t, 1, "spectral", br, 4, rev, 128, true, -1);
        /* The classes written out: 5 classes at t = 0, .25, .5, .75, 1. */
        anchors a;
        ref_anchors(ref_find("spectral"), &a);
        const struct {
            int v, k;
        } cases[] = {{0, 0}, {9, 0}, {10, 1}, {19, 1}, {20, 3}, {34, 3}, {35, 4}, {57, 4}};
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
            int got[4], r[3];
            out_rgba(&f, (size_t)(cases[c].v + 2), got);
            double tk = cases[c].k / 4.0;
            ref_color(&a, rev ? 1 - tk : tk, r);
            CHECK(got[0] == r[0] && got[1] == r[1] && got[2] == r[2] && got[3] == 128, "v=%d",
                  cases[c].v);
        }
        /* Ends of the ramp are its first and last anchors exactly. */
        int g0[4], g1[4];
        out_rgba(&f, 2, g0);  /* v 0: class 0 */
        out_rgba(&f, 59, g1); /* v 57: class 4 */
        const int *first = a.rgb[rev ? a.k - 1 : 0], *last = a.rgb[rev ? 0 : a.k - 1];
        ck_assert(g0[0] == first[0] && g0[1] == first[1] && g0[2] == first[2]);
        ck_assert(g1[0] == last[0] && g1[1] == last[1] && g1[2] == last[2]);
        fx_free(&f);
    }

    /* One break: two classes, the ramp's two ends. */
    fx f;
    fx_init(&f, "render.ramp", json_pack("{s:s, s:[f]}", "ramp", "greys", "breaks", 0.5));
    pg_tile *t = fx_raster(&f, PG_F32, 1, 4, 1, false, 0);
    set(t, 0, 0.25), set(t, 1, 0.5), set(t, 2, 0.75), set(t, 3, NAN);
    ck_assert_int_eq(fx_plan(&f), 0);
    fx_compute(&f);
    int c[4];
    out_rgba(&f, 0, c);
    ck_assert(c[0] == 255 && c[1] == 255 && c[2] == 255 && c[3] == 255);
    out_rgba(&f, 1, c);
    ck_assert(c[0] == 0 && c[1] == 0 && c[2] == 0 && c[3] == 255);
    out_rgba(&f, 2, c);
    ck_assert(c[0] == 0 && c[1] == 0 && c[2] == 0 && c[3] == 255);
    out_rgba(&f, 3, c);
    ck_assert(c[0] == 0 && c[1] == 0 && c[2] == 0 && c[3] == 0);
    fx_free(&f);
}
END_TEST

/* Many breaks (the bucket table) and few (the count), random
 * values of several types, some exactly on breaks. */
START_TEST(test_ramp_breaks_random)
{
    rng = 99 + (uint64_t)_i;
    const int counts[] = {1, 8, 9, 25, 100, 1000}; /* around PG__LINEAR_BREAKS (8) */
    const pg_celltype types[] = {PG_F32, PG_F64, PG_I32, PG_U16, PG_U8, PG_I8};
    for (size_t ci = 0; ci < sizeof counts / sizeof counts[0]; ci++) {
        const int nb = counts[ci];
        const pg_celltype ty = types[ci];
        double *br = malloc(sizeof *br * (size_t)nb);
        json_t *jb = json_array();
        const double start = ty == PG_I8 ? -100 : 0;
        double x = start;
        for (int i = 0; i < nb; i++) {
            x += (ty == PG_U8 || ty == PG_I8)
                     ? (nb >= 100 ? (double)(rnd() % 8 == 0) : floor(rnd_unit() * 3))
                     : floor(rnd_unit() * 5) + rnd_unit() * 0.5;
            if (!pg_celltype_is_float(ty)) x = floor(x);
            if (ty == PG_F32) x = (float)x;
            br[i] = x;
            json_array_append_new(jb, json_real(x));
        }
        fx f;
        json_t *p = json_pack("{s:s, s:o}", "ramp", "magma", "breaks", jb);
        fx_init(&f, "render.ramp", p);
        const bool has_nd = ty != PG_F64;
        const double nd = ty == PG_U8 ? 255 : ty == PG_U16 ? 65535 : -128;
        pg_tile *t = fx_raster(&f, ty, 1, 300, 7, has_nd, nd);
        const size_t n = 300 * 7;
        for (size_t i = 0; i < n; i++) {
            double v;
            if (i % 3 == 0)
                v = br[rnd() % (size_t)nb]; /* on a break */
            else
                v = start - 10 + rnd_unit() * (x - start + 20);
            if (!pg_celltype_is_float(ty)) v = floor(v);
            if (ty == PG_U8) v = fmax(0, fmin(255, v));
            if (ty == PG_U16) v = fmax(0, v);
            if (ty == PG_I8) v = fmax(-128, fmin(127, v));
            if (i % 50 == 0 && has_nd) v = nd;
            if (i % 51 == 0 && pg_celltype_is_float(ty)) v = NAN;
            set(t, i, v);
        }
        CHECK(fx_plan(&f) == 0, "%d breaks: %s", nb, f.err.message);
        fx_compute(&f);
        check_classes(&f, t, 0, "magma", br, nb, false, 255, has_nd, nd);
        fx_free(&f);
        free(br);
    }
}
END_TEST

/* 8-bit inputs take a direct table: every value of u8 and i8. */
START_TEST(test_ramp_8bit)
{
    for (int s = 0; s < 2; s++) {
        const pg_celltype ty = s ? PG_I8 : PG_U8;
        const double off = s ? -128 : 0;
        for (int mode = 0; mode < 2; mode++) {
            fx f;
            json_t *p = mode ? json_pack("{s:s, s:[i,i,i]}", "ramp", "ylorrd", "breaks", -5, 50, 51)
                             : json_pack("{s:s, s:i, s:i, s:b}", "ramp", "plasma", "min", 3, "max",
                                         203, "reverse", 1);
            fx_init(&f, "render.ramp", p);
            pg_tile *t = fx_raster(&f, ty, 1, 256, 1, true, s ? 0 : 7);
            for (int v = 0; v < 256; v++)
                set(t, (size_t)v, v + off);
            ck_assert_int_eq(fx_plan(&f), 0);
            fx_compute(&f);
            if (mode) {
                const double br[] = {-5, 50, 51};
                check_classes(&f, t, 0, "ylorrd", br, 3, false, 255, true, s ? 0 : 7);
            } else {
                anchors a;
                ref_anchors(ref_find("plasma"), &a);
                for (int v = 0; v < 256; v++) {
                    const double cv = v + off;
                    int got[4], r[3];
                    out_rgba(&f, (size_t)v, got);
                    if (cv == (s ? 0 : 7)) {
                        CHECK(got[3] == 0 && got[0] == 0, "missing v=%g", cv);
                        continue;
                    }
                    ref_color(&a, 1 - ref_q(cv, 3, 203) / 3840, r);
                    CHECK(got[0] == r[0] && got[1] == r[1] && got[2] == r[2] && got[3] == 255,
                          "%s v=%g", s ? "i8" : "u8", cv);
                }
            }
            fx_free(&f);
        }
    }
}
END_TEST

/* min == max: a step at min (v <= min: first colour, above: last). */
START_TEST(test_ramp_step)
{
    fx f;
    fx_init(&f, "render.ramp", json_pack("{s:s, s:i, s:i}", "ramp", "greys", "min", 5, "max", 5));
    pg_tile *t = fx_raster(&f, PG_F32, 1, 3, 1, false, 0);
    set(t, 0, 4), set(t, 1, 5), set(t, 2, 6);
    ck_assert_int_eq(fx_plan(&f), 0);
    fx_compute(&f);
    int c[4];
    out_rgba(&f, 0, c);
    ck_assert_int_eq(c[0], 255);
    out_rgba(&f, 1, c);
    ck_assert_int_eq(c[0], 255);
    out_rgba(&f, 2, c);
    ck_assert_int_eq(c[0], 0);
    fx_free(&f);
}
END_TEST

/* Value args, bound by hand: a list is the breaks, an object the stretch
 * (its band entry), params override; errors. */
START_TEST(test_ramp_value_arg)
{
    /* Quantiles as breaks. */
    fx f;
    fx_init(&f, "render.ramp", json_pack("{s:s}", "ramp", "blues"));
    pg_tile *t = fx_raster(&f, PG_F32, 1, 100, 1, true, -1);
    fx_value(&f, "q");
    for (int x = 0; x < 100; x++)
        set(t, (size_t)x, x == 3 ? -1 : x * 0.5);
    CHECK(fx_plan(&f) == 0, "%s", f.err.message);
    ck_assert_int_eq(f.n.info.bands, 4);
    ck_assert_int_eq(fx_bind(&f, 1, "[5.0, 12.5, 30, 40]"), 0);
    fx_compute(&f);
    const double br[] = {5, 12.5, 30, 40};
    check_classes(&f, t, 0, "blues", br, 4, false, 255, true, -1);
    fx_free(&f);

    /* Stats: min and max of band 2's entry; the value arg comes first. */
    fx_init(&f, "render.ramp", json_pack("{s:s, s:i}", "ramp", "inferno", "band", 2));
    fx_value(&f, "st");
    t = fx_raster(&f, PG_F64, 2, 50, 1, false, 0);
    for (int x = 0; x < 50; x++)
        set(t, (size_t)(50 + x), x * 2.0), set(t, (size_t)x, 1e9);
    ck_assert_int_eq(fx_plan(&f), 0);
    ck_assert_int_eq(
        fx_bind(&f, 0,
                "{\"count\": 100, \"min\": -7, \"max\": 1e9, \"bands\": [{\"min\": -7, "
                "\"max\": 1e9}, {\"min\": 10, \"max\": 90}]}"),
        0);
    fx_compute(&f);
    anchors a;
    ref_anchors(ref_find("inferno"), &a);
    for (int x = 0; x < 50; x++) {
        int got[4], r[3];
        out_rgba(&f, (size_t)x, got);
        ref_color(&a, ref_q(x * 2.0, 10, 90) / 3840, r);
        CHECK(got[0] == r[0] && got[1] == r[1] && got[2] == r[2], "x=%d", x);
    }
    fx_free(&f);

    /* A param overrides one end of the stats; a stats object without
     * bands is used as is. */
    fx_init(&f, "render.ramp", json_pack("{s:s, s:i}", "ramp", "greys", "max", 20));
    t = fx_raster(&f, PG_I32, 1, 3, 1, false, 0);
    fx_value(&f, "st");
    set(t, 0, 10), set(t, 1, 15), set(t, 2, 20);
    ck_assert_int_eq(fx_plan(&f), 0);
    ck_assert_int_eq(fx_bind(&f, 1, "{\"min\": 10, \"max\": 1000}"), 0);
    fx_compute(&f);
    int c[4];
    out_rgba(&f, 0, c);
    ck_assert_int_eq(c[0], 255);
    out_rgba(&f, 2, c);
    ck_assert_int_eq(c[0], 0);
    out_rgba(&f, 1, c); /* t = .5: the middle anchor 0x96 */
    ck_assert_int_eq(c[0], 0x96);
    fx_free(&f);

    /* Errors at bind. */
    static const struct {
        const char *params, *value;
        int code;
        const char *needle;
    } bad[] = {
        {"{}", "[3, 2, 1]", PG_EPARAM, "ascending"},
        {"{}", "[]", PG_EPARAM, "non-empty"},
        {"{}", "[1, null]", PG_EPARAM, "item 1"},
        {"{\"min\": 0}", "[1, 2]", PG_EPARAM, "'min'"},
        {"{}", "{\"count\": 0, \"min\": null, \"max\": null}", PG_EPARAM, "'min'"},
        {"{\"min\": 0}", "{\"min\": 0, \"max\": null}", PG_EPARAM, "'max'"},
        {"{}", "{\"min\": 5, \"max\": 1}", PG_EPARAM, "'min'"},
        {"{}", "\"viridis\"", PG_ETYPE, "'q'"},
        {"{}", "42", PG_ETYPE, "global.stats"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fx_init(&f, "render.ramp", jparse(bad[i].params));
        fx_raster(&f, PG_F32, 1, 2, 1, false, 0);
        fx_value(&f, "q");
        ck_assert_int_eq(fx_plan(&f), 0);
        int rc = fx_bind(&f, 1, bad[i].value);
        CHECK(rc == bad[i].code, "case %zu: %d (%s)", i, rc, f.err.message);
        ck_assert_int_eq(f.err.code, bad[i].code);
        CHECK(strstr(f.err.message, bad[i].needle) != NULL, "case %zu: '%s' lacks %s", i,
              f.err.message, bad[i].needle);
        fx_free(&f);
    }
}
END_TEST

START_TEST(test_ramp_errors)
{
    static const struct {
        const char *params;
        int nrasters, bands, nvalues, code;
        const char *needle;
    } cases[] = {
        {"{\"ramp\": \"jet\", \"min\": 0, \"max\": 1}", 1, 1, 0, PG_EPARAM, "'ramp'"},
        {"{\"breaks\": [3, 2]}", 1, 1, 0, PG_EPARAM, "'breaks' must be ascending"},
        {"{\"breaks\": [1, 2, 5, 4.5]}", 1, 1, 0, PG_EPARAM, "item 3"},
        {"{\"breaks\": []}", 1, 1, 0, PG_EPARAM, "'breaks'"},
        {"{\"breaks\": 5}", 1, 1, 0, PG_EPARAM, "'breaks'"},
        {"{\"breaks\": [1, \"2\"]}", 1, 1, 0, PG_EPARAM, "'breaks'"},
        {"{\"breaks\": [1], \"min\": 0}", 1, 1, 0, PG_EPARAM, "'min'"},
        {"{\"breaks\": [1]}", 1, 1, 1, PG_EPARAM, "'breaks'"},
        {"{}", 1, 1, 0, PG_EPARAM, "'min'"},
        {"{\"min\": 0}", 1, 1, 0, PG_EPARAM, "'max'"},
        {"{\"min\": 2, \"max\": 1}", 1, 1, 0, PG_EPARAM, "'min'"},
        {"{\"min\": 0, \"max\": 1, \"band\": 3}", 1, 2, 0, PG_EPARAM, "'band'"},
        {"{\"min\": 0, \"max\": 1}", 2, 1, 0, PG_ETYPE, "one raster"},
        {"{\"min\": 0, \"max\": 1}", 1, 1, 2, PG_ETYPE, "value arg"},
        {"{\"min\": 0, \"max\": 1}", 0, 1, 1, PG_ETYPE, "one raster"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fx f;
        fx_init(&f, "render.ramp", jparse(cases[i].params));
        for (int r = 0; r < cases[i].nrasters; r++)
            fx_raster(&f, PG_F32, cases[i].bands, 2, 1, false, 0);
        for (int v = 0; v < cases[i].nvalues; v++)
            fx_value(&f, "v");
        int rc = fx_plan(&f);
        CHECK(rc == cases[i].code, "case %zu: got %d (%s)", i, rc, f.err.message);
        ck_assert_int_eq(f.err.code, cases[i].code);
        CHECK(strstr(f.err.message, cases[i].needle) != NULL, "case %zu: '%s' lacks %s", i,
              f.err.message, cases[i].needle);
        if (i == 0) {
            /* The message lists every valid name. */
            for (int k = 0; k < NREF; k++)
                CHECK(strstr(f.err.message, REF[k].name) != NULL, "'%s' lacks %s", f.err.message,
                      REF[k].name);
        }
        fx_free(&f);
    }
    /* Every reference ramp is known to the op (and only those). */
    for (int k = 0; k < NREF; k++) {
        fx f;
        fx_init(&f, "render.ramp",
                json_pack("{s:s, s:i, s:i}", "ramp", REF[k].name, "min", 0, "max", 1));
        fx_raster(&f, PG_F32, 1, 2, 1, false, 0);
        CHECK(fx_plan(&f) == 0, "%s", f.err.message);
        fx_free(&f);
    }
}
END_TEST

/* ---- render.rgb ---- */

/* round_half_up(255 * t^(1/g)), or -1 when the value is within 1e-9 of a
 * rounding boundary (then either neighbour is right). */
static int ref_stretch(double v, double lo, double hi, double g, int *alt)
{
    double t = ref_t(v, lo, hi);
    double y = 255.0 * pow(t, 1.0 / g);
    double fr = y - floor(y);
    *alt = -1;
    if (fabs(fr - 0.5) < 1e-9) *alt = (int)floor(y);
    return (int)floor(y + 0.5 + 1e-9);
}

static void check_rgb(fx *f, const pg_tile *const src[3], const int band[3], const double lo[3],
                      const double hi[3], const double g[3], const bool has_nd[3],
                      const double nd[3], bool alpha)
{
    const size_t plane = (size_t)f->out->win.w * (size_t)f->out->win.h;
    ck_assert_int_eq(f->out->bands, alpha ? 4 : 3);
    for (size_t i = 0; i < plane; i++) {
        int got[4];
        out_rgba(f, i, got);
        bool missing = false;
        double v[3];
        for (int c = 0; c < 3; c++) {
            v[c] = get(src[c], (size_t)band[c] * plane + i);
            if (is_missing(src[c]->type, has_nd[c], nd[c], v[c])) missing = true;
        }
        if (missing) {
            CHECK(got[0] == 0 && got[1] == 0 && got[2] == 0, "missing cell %zu not black", i);
            CHECK(!alpha || got[3] == 0, "missing cell %zu alpha %d", i, got[3]);
            continue;
        }
        for (int c = 0; c < 3; c++) {
            int alt, want = ref_stretch(v[c], lo[c], hi[c], g[c], &alt);
            CHECK(got[c] == want || got[c] == alt,
                  "cell %zu ch %d v=%.10g [%g, %g] gamma %g: got %d want %d", i, c, v[c], lo[c],
                  hi[c], g[c], got[c], want);
        }
        CHECK(!alpha || got[3] == 255, "cell %zu alpha %d", i, got[3]);
    }
}

/* One raster, bands chosen, per-band min/max, several types and gammas. */
START_TEST(test_rgb_one_raster)
{
    rng = 555 + (uint64_t)_i;
    const pg_celltype types[] = {PG_U16, PG_F32, PG_I16, PG_F64, PG_U8, PG_I32, PG_I8, PG_U32};
    const pg_celltype ty = types[_i];
    const double gammas[][3] = {{1, 1, 1}, {2.2, 0.5, 1}};
    for (int gi = 0; gi < 2; gi++) {
        for (int alpha = 0; alpha < 2; alpha++) {
            const double tmin = fmax(pg_celltype_min(ty), -30000),
                         tmax = fmin(pg_celltype_max(ty), 30000);
            double lo[3], hi[3];
            for (int c = 0; c < 3; c++) {
                lo[c] = floor(tmin + rnd_unit() * (tmax - tmin) * 0.4);
                hi[c] = lo[c] + floor(1 + rnd_unit() * (tmax - lo[c]) * 0.9);
            }
            const double nd = ty == PG_F32 || ty == PG_F64 ? -1e30 : tmin;
            fx f;
            json_t *p =
                json_pack("{s:[i,i,i], s:[f,f,f], s:[f,f,f], s:[f,f,f], s:b}", "bands", 4, 2, 1,
                          "min", lo[0], lo[1], lo[2], "max", hi[0], hi[1], hi[2], "gamma",
                          gammas[gi][0], gammas[gi][1], gammas[gi][2], "alpha", alpha);
            fx_init(&f, "render.rgb", p);
            pg_tile *t = fx_raster(&f, ty, 4, 128, 40, true, nd);
            const size_t n = 4 * 128 * 40;
            for (size_t i = 0; i < n; i++) {
                double v = tmin + rnd_unit() * (tmax - tmin);
                if (!pg_celltype_is_float(ty)) v = floor(v);
                if (i % 61 == 0) v = nd;
                if (pg_celltype_is_float(ty) && i % 67 == 0) v = NAN;
                set(t, i, v);
            }
            CHECK(fx_plan(&f) == 0, "%s", f.err.message);
            ck_assert_int_eq(f.n.info.type, PG_U8);
            ck_assert_int_eq(f.n.info.bands, alpha ? 4 : 3);
            ck_assert(!f.n.info.has_nodata);
            fx_compute(&f);
            const pg_tile *src[3] = {t, t, t};
            const int band[3] = {3, 1, 0};
            const bool hn[3] = {true, true, true};
            const double nds[3] = {nd, nd, nd};
            check_rgb(&f, src, band, lo, hi, gammas[gi], hn, nds, alpha);
            fx_free(&f);
        }
    }
}
END_TEST

/* Exact values written out: u16 0..1000 stretch, gamma 1 and 2. */
START_TEST(test_rgb_values)
{
    fx f;
    fx_init(&f, "render.rgb", json_pack("{s:i, s:i}", "min", 0, "max", 1000));
    pg_tile *t = fx_raster(&f, PG_U16, 3, 5, 1, true, 65535);
    const double v[5] = {0, 500, 2, 1000, 4000}; /* band 1 */
    for (int x = 0; x < 5; x++) {
        set(t, (size_t)x, v[x]);
        set(t, (size_t)(5 + x), 1000 - v[x] < 0 ? 0 : 1000 - v[x]);
        set(t, (size_t)(10 + x), x == 4 ? 65535 : 100);
    }
    ck_assert_int_eq(fx_plan(&f), 0);
    fx_compute(&f);
    int c[4];
    out_rgba(&f, 0, c); /* 0, 1000, 100 -> 0, 255, 25.5 -> 26 */
    ck_assert(c[0] == 0 && c[1] == 255 && c[2] == 26);
    out_rgba(&f, 1, c); /* 500 -> 127.5 -> 128 */
    ck_assert(c[0] == 128 && c[1] == 128 && c[2] == 26);
    out_rgba(&f, 2, c); /* 2 -> 0.51 -> 1; 998 -> 254.49 -> 254 */
    ck_assert(c[0] == 1 && c[1] == 254 && c[2] == 26);
    out_rgba(&f, 3, c);
    ck_assert(c[0] == 255 && c[1] == 0 && c[2] == 26);
    out_rgba(&f, 4, c); /* blue is nodata: black */
    ck_assert(c[0] == 0 && c[1] == 0 && c[2] == 0);
    fx_free(&f);

    /* gamma 2 on f32: 255 * sqrt(t). */
    fx_init(&f, "render.rgb", json_pack("{s:i, s:i, s:i}", "min", 0, "max", 100, "gamma", 2));
    t = fx_raster(&f, PG_F32, 3, 4, 1, false, 0);
    const double w[4] = {25, 4, 0.01, 64};
    for (int b = 0; b < 3; b++)
        for (int x = 0; x < 4; x++)
            set(t, (size_t)(b * 4 + x), w[x]);
    ck_assert_int_eq(fx_plan(&f), 0);
    fx_compute(&f);
    const int want[4] = {128, 51, 3, 204}; /* 127.5, 51, 2.55, 204 */
    for (int x = 0; x < 4; x++) {
        out_rgba(&f, (size_t)x, c);
        CHECK(c[0] == want[x] && c[1] == want[x] && c[2] == want[x], "x=%d: %d", x, c[0]);
    }
    fx_free(&f);

    /* u8 without params: the identity. */
    fx_init(&f, "render.rgb", NULL);
    t = fx_raster(&f, PG_U8, 3, 256, 1, false, 0);
    for (int b = 0; b < 3; b++)
        for (int x = 0; x < 256; x++)
            set(t, (size_t)(b * 256 + x), (x + 85 * b) % 256);
    ck_assert_int_eq(fx_plan(&f), 0);
    fx_compute(&f);
    ck_assert_int_eq(memcmp(f.out->data, t->data, 3 * 256), 0);
    fx_free(&f);

    /* "stretch": "none" on f32: 0..255 as is, rounded. */
    fx_init(&f, "render.rgb", json_pack("{s:s}", "stretch", "none"));
    t = fx_raster(&f, PG_F32, 3, 4, 1, false, 0);
    const double u[4] = {-3, 12.25, 254.4, 300};
    for (int b = 0; b < 3; b++)
        for (int x = 0; x < 4; x++)
            set(t, (size_t)(b * 4 + x), u[x]);
    ck_assert_int_eq(fx_plan(&f), 0);
    fx_compute(&f);
    const int wu[4] = {0, 12, 254, 255};
    for (int x = 0; x < 4; x++) {
        out_rgba(&f, (size_t)x, c);
        CHECK(c[0] == wu[x], "x=%d: %d", x, c[0]);
    }
    fx_free(&f);
}
END_TEST

/* Three rasters of different types, nodata in each, alpha. */
START_TEST(test_rgb_three_rasters)
{
    rng = 77;
    fx f;
    fx_init(&f, "render.rgb",
            json_pack("{s:[i,i,i], s:[i,i,i], s:[i,i,i], s:b}", "bands", 1, 2, 1, "min", 0, 10,
                      -100, "max", 255, 5000, 100, "alpha", 1));
    pg_tile *a = fx_raster(&f, PG_U8, 1, 64, 16, true, 0);
    pg_tile *b = fx_raster(&f, PG_U16, 2, 64, 16, true, 9999);
    pg_tile *c = fx_raster(&f, PG_F32, 1, 64, 16, false, 0);
    for (size_t i = 0; i < 64 * 16; i++) {
        set(a, i, (double)(rnd() % 256));
        set(b, i, 1);
        set(b, 64 * 16 + i, i % 13 == 0 ? 9999 : (double)(rnd() % 6000));
        set(c, i, i % 17 == 0 ? NAN : (rnd_unit() - 0.5) * 300);
    }
    CHECK(fx_plan(&f) == 0, "%s", f.err.message);
    ck_assert_int_eq(f.n.info.bands, 4);
    fx_compute(&f);
    const pg_tile *src[3] = {a, b, c};
    const int band[3] = {0, 1, 0};
    const double lo[3] = {0, 10, -100}, hi[3] = {255, 5000, 100}, g[3] = {1, 1, 1};
    const bool hn[3] = {true, true, false};
    const double nd[3] = {0, 9999, 0};
    check_rgb(&f, src, band, lo, hi, g, hn, nd, true);
    fx_free(&f);
}
END_TEST

/* Value args: one stats object (per-band entries), three quantile lists,
 * params winning; bind errors. */
START_TEST(test_rgb_value_args)
{
    rng = 31;
    /* One stats object for a 3-band f32 raster: its "bands" entries. */
    fx f;
    fx_init(&f, "render.rgb", json_pack("{s:[i,i,i]}", "bands", 3, 2, 1));
    pg_tile *t = fx_raster(&f, PG_F32, 3, 32, 8, true, -5);
    fx_value(&f, "st");
    for (size_t i = 0; i < 3 * 32 * 8; i++)
        set(t, i, i % 29 == 0 ? -5 : rnd_unit() * 1000);
    ck_assert_int_eq(fx_plan(&f), 0);
    ck_assert_int_eq(fx_bind(&f, 1,
                             "{\"min\": 0, \"max\": 1000, \"bands\": [{\"min\": 1, \"max\": 100}, "
                             "{\"min\": 2, \"max\": 200}, {\"min\": 3, \"max\": 900}]}"),
                     0);
    fx_compute(&f);
    {
        const pg_tile *src[3] = {t, t, t};
        const int band[3] = {2, 1, 0};
        const double lo[3] = {3, 2, 1}, hi[3] = {900, 200, 100}, g[3] = {1, 1, 1};
        const bool hn[3] = {true, true, true};
        const double nd[3] = {-5, -5, -5};
        check_rgb(&f, src, band, lo, hi, g, hn, nd, false);
    }
    fx_free(&f);

    /* Three quantile lists (2-98 %), one per channel (a list's first and
     * last numbers), bound out of order. */
    fx_init(&f, "render.rgb", json_pack("{s:[f,f,f]}", "gamma", 1.0, 1.5, 1.0));
    t = fx_raster(&f, PG_I16, 3, 32, 8, false, 0);
    fx_value(&f, "qr");
    fx_value(&f, "qg");
    fx_value(&f, "qb");
    for (size_t i = 0; i < 3 * 32 * 8; i++)
        set(t, i, floor((rnd_unit() - 0.5) * 2000));
    ck_assert_int_eq(fx_plan(&f), 0);
    ck_assert_int_eq(fx_bind(&f, 3, "[-500, 0, 700]"), 0);
    ck_assert_int_eq(fx_bind(&f, 1, "[-900.5, 900.5]"), 0);
    ck_assert_int_eq(fx_bind(&f, 2, "[-10, 10]"), 0);
    fx_compute(&f);
    {
        const pg_tile *src[3] = {t, t, t};
        const int band[3] = {0, 1, 2};
        const double lo[3] = {-900.5, -10, -500}, hi[3] = {900.5, 10, 700}, g[3] = {1, 1.5, 1};
        const bool hn[3] = {false, false, false};
        const double nd[3] = {0, 0, 0};
        check_rgb(&f, src, band, lo, hi, g, hn, nd, false);
    }
    fx_free(&f);

    /* A param wins over the value for every channel it names. */
    fx_init(&f, "render.rgb", json_pack("{s:i}", "max", 50));
    t = fx_raster(&f, PG_F64, 3, 16, 1, false, 0);
    fx_value(&f, "st");
    for (size_t i = 0; i < 48; i++)
        set(t, i, (double)i * 2);
    ck_assert_int_eq(fx_plan(&f), 0);
    ck_assert_int_eq(fx_bind(&f, 1, "{\"min\": 10, \"max\": 90}"), 0);
    fx_compute(&f);
    {
        const pg_tile *src[3] = {t, t, t};
        const int band[3] = {0, 1, 2};
        const double lo[3] = {10, 10, 10}, hi[3] = {50, 50, 50}, g[3] = {1, 1, 1};
        const bool hn[3] = {false, false, false};
        const double nd[3] = {0, 0, 0};
        check_rgb(&f, src, band, lo, hi, g, hn, nd, false);
    }
    fx_free(&f);

    static const struct {
        const char *value;
        int code;
    } bad[] = {{"[5]", PG_EPARAM},
               {"[5, \"x\"]", PG_EPARAM},
               {"{\"min\": null, \"max\": 3}", PG_EPARAM},
               {"{\"min\": 4, \"max\": 3}", PG_EPARAM},
               {"true", PG_ETYPE}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        fx_init(&f, "render.rgb", NULL);
        fx_raster(&f, PG_F32, 3, 2, 1, false, 0);
        fx_value(&f, "st");
        ck_assert_int_eq(fx_plan(&f), 0);
        int rc = fx_bind(&f, 1, bad[i].value);
        CHECK(rc == bad[i].code, "case %zu: %d %s", i, rc, f.err.message);
        fx_free(&f);
    }
}
END_TEST

START_TEST(test_rgb_errors)
{
    static const struct {
        const char *params;
        int nrasters, bands, nvalues;
        pg_celltype type;
        int code;
        const char *needle;
    } cases[] = {
        {"{}", 1, 1, 0, PG_U8, PG_EPARAM, "needs 3 bands"},
        {"{}", 1, 2, 0, PG_U8, PG_EPARAM, "needs 3 bands"},
        {"{\"bands\": [1, 2]}", 1, 3, 0, PG_U8, PG_EPARAM, "'bands'"},
        {"{\"bands\": [1, 2, 4]}", 1, 3, 0, PG_U8, PG_EPARAM, "'bands'"},
        {"{\"bands\": [1, 0, 2]}", 1, 3, 0, PG_U8, PG_EPARAM, "'bands'"},
        {"{\"bands\": [1, 1, 2]}", 3, 1, 0, PG_U8, PG_EPARAM, "'bands'"},
        {"{}", 2, 3, 0, PG_U8, PG_ETYPE, "got 2 rasters"},
        {"{}", 1, 3, 2, PG_U8, PG_ETYPE, "got 2"},
        {"{}", 1, 3, 0, PG_F32, PG_EPARAM, "'min'"},
        {"{\"min\": 0}", 1, 3, 0, PG_F64, PG_EPARAM, "'max'"},
        {"{\"min\": [0, 1], \"max\": 1}", 1, 3, 0, PG_F32, PG_EPARAM, "'min'"},
        {"{\"min\": 5, \"max\": 1}", 1, 3, 0, PG_U8, PG_EPARAM, "min"},
        {"{\"gamma\": 0}", 1, 3, 0, PG_U8, PG_EPARAM, "'gamma'"},
        {"{\"gamma\": [1, 1, -2]}", 1, 3, 0, PG_U8, PG_EPARAM, "'gamma'"},
        {"{\"stretch\": \"log\"}", 1, 3, 0, PG_U8, PG_EPARAM, "'stretch'"},
        {"{\"stretch\": \"none\", \"min\": 3}", 1, 3, 0, PG_U8, PG_EPARAM, "none"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        fx f;
        fx_init(&f, "render.rgb", jparse(cases[i].params));
        for (int r = 0; r < cases[i].nrasters; r++)
            fx_raster(&f, cases[i].type, cases[i].bands, 2, 1, false, 0);
        for (int v = 0; v < cases[i].nvalues; v++)
            fx_value(&f, "v");
        int rc = fx_plan(&f);
        CHECK(rc == cases[i].code, "case %zu: got %d (%s)", i, rc, f.err.message);
        ck_assert_int_eq(f.err.code, cases[i].code);
        CHECK(strstr(f.err.message, cases[i].needle) != NULL, "case %zu: '%s' lacks %s", i,
              f.err.message, cases[i].needle);
        fx_free(&f);
    }
    /* Three rasters on different grids. */
    fx f;
    fx_init(&f, "render.rgb", NULL);
    for (int r = 0; r < 3; r++)
        fx_raster(&f, PG_U8, 1, 2, 1, false, 0);
    f.src[2].info.geotransform[1] = 20;
    ck_assert_int_eq(fx_plan(&f), PG_EGRID);
    ck_assert(strstr(f.err.message, "img2") != NULL);
    fx_free(&f);
}
END_TEST

/* ---- the table entries ---- */

START_TEST(test_docs)
{
    int count = 0;
    for (const pg_op_def *d = pg_ops_render; d->name != NULL; d++, count++) {
        CHECK(d->doc != NULL && strlen(d->doc) > 80, "%s: doc", d->name);
        ck_assert(strstr(d->doc, "u8") != NULL && strstr(d->doc, "nodata") != NULL);
        ck_assert_str_eq(d->family, "render");
        json_error_t je;
        json_t *ex = json_loads(d->example, 0, &je);
        CHECK(ex != NULL, "%s: example is not JSON: %s", d->name, je.text);
        ck_assert_str_eq(json_string_value(json_object_get(ex, "op")), d->name);
        json_decref(ex);
        for (const pg_param_def *p = d->params; p->name != NULL; p++) {
            CHECK(p->doc != NULL && p->doc[0], "%s.%s: doc", d->name, p->name);
            if (p->default_json != NULL) {
                json_t *dv = json_loads(p->default_json, JSON_DECODE_ANY, &je);
                CHECK(dv != NULL, "%s.%s: default", d->name, p->name);
                json_decref(dv);
            }
        }
        ck_assert(d->plan && d->compute && d->bind && d->free_state);
        ck_assert(d->arg_kinds == (PG_ARGK_RASTER | PG_ARGK_VALUE));
        ck_assert_ptr_eq(pg_op_find(d->name), d);
    }
    ck_assert_int_eq(count, 2);
}
END_TEST

/* ---- speed: printed, not asserted ---- */

static double time_compute(fx *f)
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
        const char *what, *op, *params;
        pg_celltype type;
        int bands;
    } cases[] = {
        {"ramp f32 continuous", "render.ramp", "{\"min\": 100, \"max\": 900}", PG_F32, 1},
        {"ramp f32 5 breaks", "render.ramp", "{\"breaks\": [200, 300, 500, 700, 800]}", PG_F32, 1},
        {"ramp f32 12 breaks", "render.ramp", "BREAKS12", PG_F32, 1},
        {"ramp f32 24 breaks", "render.ramp", "BREAKS24", PG_F32, 1},
        {"ramp f32 99 breaks", "render.ramp", "BREAKS99", PG_F32, 1},
        {"ramp i16 continuous", "render.ramp", "{\"min\": 100, \"max\": 900}", PG_I16, 1},
        {"ramp u8 continuous", "render.ramp", "{\"min\": 10, \"max\": 200}", PG_U8, 1},
        {"rgb u16 (tables)", "render.rgb", "{\"min\": 0, \"max\": 900, \"gamma\": 1.3}", PG_U16, 3},
        {"rgb f32 gamma 1", "render.rgb", "{\"min\": 0, \"max\": 900}", PG_F32, 3},
        {"rgb f32 gamma 2.2", "render.rgb", "{\"min\": 0, \"max\": 900, \"gamma\": 2.2}", PG_F32,
         3},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        fx f;
        json_t *p;
        if (strncmp(cases[c].params, "BREAKS", 6) == 0) {
            const int nb = atoi(cases[c].params + 6);
            json_t *br = json_array();
            for (int i = 1; i <= nb; i++)
                json_array_append_new(br, json_real(i * 1000.0 / (nb + 1)));
            p = json_pack("{s:o}", "breaks", br);
        } else {
            p = jparse(cases[c].params);
        }
        fx_init(&f, cases[c].op, p);
        pg_tile *t = fx_raster(&f, cases[c].type, cases[c].bands, 256, 256, true,
                               cases[c].type == PG_U8 ? 0 : -9999);
        for (size_t i = 0; i < (size_t)cases[c].bands * 65536; i++)
            set(t, i, floor(rnd_unit() * (cases[c].type == PG_U8 ? 255 : 1000)) + 0.25 * (i % 3));
        CHECK(fx_plan(&f) == 0, "%s", f.err.message);
        fx_compute(&f);
        double ns = time_compute(&f);
        fprintf(stderr, "%-24s 256x256: %7.1f us per tile (%.2f ns per cell)\n", cases[c].what,
                ns / 1e3, ns / 65536.0);
        fx_free(&f);
    }
}
END_TEST

int main(void)
{
    Suite *s = suite_create("render");
    TCase *tr = tcase_create("ramp");
    tcase_set_timeout(tr, 60);
    tcase_add_loop_test(tr, test_ramp_every_step, 0, NREF);
    tcase_add_loop_test(tr, test_ramp_continuous_random, 0, 4);
    tcase_add_test(tr, test_ramp_breaks);
    tcase_add_loop_test(tr, test_ramp_breaks_random, 0, 3);
    tcase_add_test(tr, test_ramp_8bit);
    tcase_add_test(tr, test_ramp_step);
    tcase_add_test(tr, test_ramp_value_arg);
    tcase_add_test(tr, test_ramp_errors);
    suite_add_tcase(s, tr);
    TCase *tg = tcase_create("rgb");
    tcase_set_timeout(tg, 60);
    tcase_add_loop_test(tg, test_rgb_one_raster, 0, 8);
    tcase_add_test(tg, test_rgb_values);
    tcase_add_test(tg, test_rgb_three_rasters);
    tcase_add_test(tg, test_rgb_value_args);
    tcase_add_test(tg, test_rgb_errors);
    tcase_add_test(tg, test_docs);
    tcase_add_test(tg, test_speed);
    suite_add_tcase(s, tg);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
