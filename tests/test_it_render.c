/* Integration suite for the render ops: real pergolad processes
 * (tests/harness.c) run graphs that colour rasters made by pergola-mkraster
 * and save them as PNG, JPEG and GeoTIFF; the files are read back with
 * GDAL's C API and every cell is compared with a reference computed here,
 * from the input read with GDAL:
 *  - render.ramp: this file's own copy of the published anchors (hex, see
 *    ops/render.c for the sources), interpolated in double, rounded half up
 *    (a value within 1e-9 of a half counts as the half): exact;
 *  - render.rgb: round_half_up(255 * t) from the stretch's min and max;
 *    exact, except that a reference within 1e-9 of a rounding boundary
 *    accepts either neighbour;
 *  - class breaks and stretch ends come from the same run's value nodes
 *    (global.breaks, global.quantiles, global.stats, returned alongside the
 *    file), and are themselves checked against the data: equal-interval
 *    breaks min + (max - min) * i / classes within 1e-9 relative, u16
 *    quantiles (exact per global.quantiles' contract) against numpy's linear
 *    definition over the sorted valid cells.
 * When global.breaks is not in the daemon's registry, the ramp uses explicit
 * breaks instead (the value-arg path is then covered by the stats test).
 * JPEG is lossy: only its size, bands and type are checked, and that its
 * cells are near the lossless GeoTIFF's (mean |difference| below 12).
 */
#include "harness.h"

#include <check.h>
#include <errno.h>
#include <gdal.h>
#include <math.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RUN_MS 60000

/* The suite's temporary directory: every daemon's data root is made in it. */
static char g_base[128];

/* Per-cell checks: ck_assert records every passing check's location (a
 * write(2) each), which costs seconds over a few million cells; this one
 * only reports failures. */
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) ck_abort_msg(__VA_ARGS__);                                                    \
    } while (0)

/* ---- anchors (this file's own copy) ---- */

typedef struct anchors {
    int k;
    double pos[32];
    int rgb[32][3];
} anchors;

static void anchors_parse(const char *hex, const double *pos, anchors *a)
{
    memset(a, 0, sizeof *a);
    for (const char *s = hex; *s;) {
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
        a->pos[j] = pos ? pos[j] : (double)j / (a->k - 1);
}

static const double terrain_pos[] = {0.0, 0.15, 0.25, 0.5, 0.75, 1.0};
#define TERRAIN "333399 0099ff 00cc66 ffff99 805c54 ffffff"
#define VIRIDIS                                                                                    \
    "440154 481a6c 472f7d 414487 39568c 31688e 2a788e 23888e 1f988b 22a884 35b779 54c568 7ad151 "  \
    "a5db36 d2e21b fde725"

static int round_half_up(double c)
{
    return (int)floor(c + 0.5 + 1e-9);
}

static void ref_color(const anchors *a, double t, int out[3])
{
    int j = 0;
    while (j < a->k - 2 && t >= a->pos[j + 1])
        j++;
    double f = (t - a->pos[j]) / (a->pos[j + 1] - a->pos[j]);
    if (t <= 0) f = 0, j = 0;
    for (int c = 0; c < 3; c++)
        out[c] = round_half_up(a->rgb[j][c] + f * (a->rgb[j + 1][c] - a->rgb[j][c]));
}

/* ---- daemons and requests ---- */

static void root_init(th_daemon *d)
{
    memset(d, 0, sizeof *d);
    snprintf(d->root, sizeof d->root, "%s/rXXXXXX", g_base);
    CHECK(mkdtemp(d->root) != NULL, "mkdtemp: %s", strerror(errno));
}

static void daemon_start(th_daemon *d, const char *const *extra)
{
    int rc = th_start(d, extra);
    CHECK(rc == 0, "pergolad did not start (log %s)", d->log);
}

static void daemon_finish(th_daemon *d)
{
    int st = th_stop(d);
    CHECK(st == 0, "pergolad exited with status %d, not 0 (log %s)", st, d->log);
}

static void mk(const th_daemon *d, const char *name, const char *args)
{
    int rc = th_mkraster(d->root, name, args);
    CHECK(rc == 0, "pergola-mkraster %s %s: exit status %d", name, args, rc);
}

/* Runs GRAPH (JSON text) and returns its "value" (a new reference); the run
 * must succeed. */
static json_t *run_ok(const th_daemon *d, const char *graph)
{
    int fd = th_connect(d);
    CHECK(fd >= 0, "cannot connect");
    size_t len = strlen(graph) + 64;
    char *line = malloc(len);
    snprintf(line, len, "{\"id\": 1, \"type\": \"run\", \"graph\": %s}\n", graph);
    json_t *ev = th_request(fd, line, RUN_MS);
    free(line);
    close(fd);
    CHECK(ev != NULL, "no answer (log %s)", d->log);
    const char *event = json_string_value(json_object_get(ev, "event"));
    if (event == NULL || strcmp(event, "result") != 0) {
        char *txt = json_dumps(ev, 0);
        ck_abort_msg("run failed: %s", txt);
    }
    json_t *v = json_incref(json_object_get(ev, "value"));
    json_decref(ev);
    return v;
}

/* Runs GRAPH, which must fail: returns the error event (new reference). */
static json_t *run_err(const th_daemon *d, const char *graph)
{
    int fd = th_connect(d);
    CHECK(fd >= 0, "cannot connect");
    size_t len = strlen(graph) + 64;
    char *line = malloc(len);
    snprintf(line, len, "{\"id\": 1, \"type\": \"run\", \"graph\": %s}\n", graph);
    json_t *ev = th_request(fd, line, RUN_MS);
    free(line);
    close(fd);
    ck_assert_ptr_nonnull(ev);
    ck_assert_str_eq(json_string_value(json_object_get(ev, "event")), "error");
    return ev;
}

/* Whether the daemon's registry has op NAME. */
static bool has_op(const th_daemon *d, const char *name)
{
    int fd = th_connect(d);
    ck_assert(fd >= 0);
    json_t *ev = th_request(fd, "{\"id\": 1, \"type\": \"ops\"}\n", 10000);
    close(fd);
    ck_assert_ptr_nonnull(ev);
    json_t *ops = json_object_get(ev, "value");
    bool found = false;
    size_t i;
    json_t *op;
    json_array_foreach(ops, i, op)
    {
        if (strcmp(json_string_value(json_object_get(op, "name")), name) == 0) found = true;
    }
    json_decref(ev);
    return found;
}

/* ---- rasters read with GDAL ---- */

typedef struct img {
    int w, h, bands;
    GDALDataType type;
    char driver[32];
    int has_nodata;
    double nodata;
    double *v; /* band-sequential */
} img;

static void img_read(img *im, const char *root, const char *rel)
{
    char p[600];
    snprintf(p, sizeof p, "%s/%s", root, rel);
    GDALDatasetH ds = GDALOpen(p, GA_ReadOnly);
    CHECK(ds != NULL, "GDAL cannot open %s", p);
    memset(im, 0, sizeof *im);
    im->w = GDALGetRasterXSize(ds);
    im->h = GDALGetRasterYSize(ds);
    im->bands = GDALGetRasterCount(ds);
    snprintf(im->driver, sizeof im->driver, "%s", GDALGetDriverShortName(GDALGetDatasetDriver(ds)));
    GDALRasterBandH b1 = GDALGetRasterBand(ds, 1);
    im->type = GDALGetRasterDataType(b1);
    im->nodata = GDALGetRasterNoDataValue(b1, &im->has_nodata);
    size_t n = (size_t)im->w * (size_t)im->h * (size_t)im->bands;
    im->v = malloc(n * sizeof(double));
    ck_assert_ptr_nonnull(im->v);
    CPLErr e = GDALDatasetRasterIO(ds, GF_Read, 0, 0, im->w, im->h, im->v, im->w, im->h,
                                   GDT_Float64, im->bands, NULL, 0, 0, 0);
    CHECK(e == CE_None, "reading %s failed", p);
    GDALClose(ds);
}

static void img_free(img *im)
{
    free(im->v);
    memset(im, 0, sizeof *im);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* numpy's default ("linear") quantile P of the N sorted values S. */
static double quantile_linear(const double *s, size_t n, double p)
{
    double h = (double)(n - 1) * p;
    size_t lo = (size_t)floor(h);
    if (lo + 1 >= n) return s[n - 1];
    return s[lo] + (h - (double)lo) * (s[lo + 1] - s[lo]);
}

/* ---- render.ramp ---- */

/* The expected RGBA of a class-coloured cell V. */
static void expect_class(const anchors *a, const double *br, int nb, double v, bool missing,
                         int out[4])
{
    if (missing) {
        out[0] = out[1] = out[2] = out[3] = 0;
        return;
    }
    int k = 0;
    for (int i = 0; i < nb; i++)
        k += v >= br[i];
    ref_color(a, (double)k / nb, out);
    out[3] = 255;
}

/* A DEM with nodata, classed by explicit breaks (_i 0) or by global.breaks
 * (_i 1: equal intervals, a value node of the same run, when the registry
 * has it), terrain ramp, saved as PNG: every cell. */
START_TEST(test_ramp_png)
{
    th_daemon d;
    root_init(&d);
    const char *flags[] = {"--workers", "3", "--tile-size", "64", NULL};
    daemon_start(&d, flags);
    mk(&d, "dem.tif", "--size 300x200 --pattern dem --nodata -9999 --nodata-every 11");
    const bool with_value = _i == 1;
    if (with_value && !has_op(&d, "global.breaks")) {
        fprintf(stderr, "global.breaks is not in the registry: value breaks not tested here\n");
        daemon_finish(&d);
        return;
    }
    enum { CLASSES = 6 };
    double br[CLASSES];
    int nb;
    img dem, png;
    img_read(&dem, d.root, "dem.tif");
    const size_t n = (size_t)dem.w * (size_t)dem.h;
    double mn = INFINITY, mx = -INFINITY;
    for (size_t i = 0; i < n; i++)
        if (dem.v[i] != -9999) mn = fmin(mn, dem.v[i]), mx = fmax(mx, dem.v[i]);
    if (with_value) {
        json_t *v = run_ok(
            &d, "{\"nodes\": {\"dem\": {\"op\": \"io.load\", \"path\": \"dem.tif\"}, "
                "\"br\": {\"op\": \"global.breaks\", \"method\": \"equal_interval\", "
                "\"classes\": 6, \"args\": [{\"ref\": \"dem\"}]}, "
                "\"r\": {\"op\": \"render.ramp\", \"ramp\": \"terrain\", "
                "\"args\": [{\"ref\": \"dem\"}, {\"ref\": \"br\"}]}, "
                "\"out\": {\"op\": \"io.save\", \"path\": \"out/ramp.png\", \"format\": \"PNG\", "
                "\"args\": [{\"ref\": \"r\"}]}}, \"result\": [\"out\", \"br\"]}");
        json_t *jb = json_array_get(v, 1);
        CHECK(json_is_array(jb) && json_array_size(jb) == CLASSES - 1, "breaks value");
        nb = CLASSES - 1;
        for (int i = 0; i < nb; i++) {
            br[i] = json_number_value(json_array_get(jb, (size_t)i));
            double want = mn + (mx - mn) * (i + 1) / CLASSES;
            CHECK(fabs(br[i] - want) <= 1e-9 * fabs(want), "break %d: %.17g vs %.17g", i, br[i],
                  want);
        }
        ck_assert_str_eq(json_string_value(json_object_get(json_array_get(v, 0), "path")),
                         "out/ramp.png");
        json_decref(v);
    } else {
        const double fixed[] = {950, 1050, 1100, 1200, 1300};
        nb = 5;
        memcpy(br, fixed, sizeof fixed);
        json_decref(run_ok(
            &d, "{\"nodes\": {\"dem\": {\"op\": \"io.load\", \"path\": \"dem.tif\"}, "
                "\"r\": {\"op\": \"render.ramp\", \"ramp\": \"terrain\", "
                "\"breaks\": [950, 1050, 1100, 1200, 1300], \"args\": [{\"ref\": \"dem\"}]}, "
                "\"out\": {\"op\": \"io.save\", \"path\": \"out/ramp.png\", \"format\": \"PNG\", "
                "\"args\": [{\"ref\": \"r\"}]}}, \"result\": \"out\"}"));
    }
    img_read(&png, d.root, "out/ramp.png");
    ck_assert_str_eq(png.driver, "PNG");
    ck_assert_int_eq(png.w, 300);
    ck_assert_int_eq(png.h, 200);
    ck_assert_int_eq(png.bands, 4);
    ck_assert_int_eq(png.type, GDT_Byte);
    ck_assert(!png.has_nodata);
    anchors a;
    anchors_parse(TERRAIN, terrain_pos, &a);
    size_t transparent = 0;
    int seen[CLASSES] = {0};
    for (size_t i = 0; i < n; i++) {
        const bool missing = dem.v[i] == -9999;
        int want[4];
        expect_class(&a, br, nb, dem.v[i], missing, want);
        for (int b = 0; b < 4; b++)
            CHECK(png.v[(size_t)b * n + i] == want[b], "cell (%zu, %zu) v=%g band %d: %g, want %d",
                  i % 300, i / 300, dem.v[i], b + 1, png.v[(size_t)b * n + i], want[b]);
        transparent += missing;
        if (!missing) {
            int k = 0;
            for (int j = 0; j < nb; j++)
                k += dem.v[i] >= br[j];
            seen[k]++;
        }
    }
    /* Known cells: (0, 0) is nodata (mkraster --nodata-every), and every
     * class occurs. */
    ck_assert(png.v[3 * n] == 0 && png.v[0] == 0);
    ck_assert_uint_eq(transparent, (n + 10) / 11);
    for (int k = 0; k <= nb; k++)
        CHECK(seen[k] > 0, "class %d never occurs", k);
    if (getenv("PERGOLA_RENDER_KEEP")) {
        char cmd[800];
        snprintf(cmd, sizeof cmd, "cp '%s/out/ramp.png' '%s'", d.root,
                 getenv("PERGOLA_RENDER_KEEP"));
        ck_assert_int_eq(system(cmd), 0);
    }
    img_free(&dem);
    img_free(&png);
    daemon_finish(&d);
}
END_TEST

/* Continuous viridis stretched by a global.stats value arg (min/max from
 * the daemon), reversed, opacity 0.6, saved as GeoTIFF; a 16-cell tiling
 * and a one-tile run give the same cells. */
START_TEST(test_ramp_stats_tiled)
{
    static const char graph[] =
        "{\"nodes\": {\"dem\": {\"op\": \"io.load\", \"path\": \"dem.tif\"}, "
        "\"st\": {\"op\": \"global.stats\", \"args\": [{\"ref\": \"dem\"}]}, "
        "\"r\": {\"op\": \"render.ramp\", \"ramp\": \"viridis\", \"reverse\": true, "
        "\"opacity\": 0.6, \"args\": [{\"ref\": \"st\"}, {\"ref\": \"dem\"}]}, "
        "\"out\": {\"op\": \"io.save\", \"path\": \"r.tif\", \"args\": [{\"ref\": \"r\"}]}}, "
        "\"result\": [\"out\", \"st\"]}";
    img out[2];
    double smin = 0, smax = 0;
    for (int run = 0; run < 2; run++) {
        th_daemon d;
        root_init(&d);
        const char *flags[] = {"--workers", "2", "--tile-size", run ? "8192" : "16", NULL};
        daemon_start(&d, flags);
        mk(&d, "dem.tif", "--size 123x77 --pattern dem --nodata -9999 --nodata-every 5");
        json_t *v = run_ok(&d, graph);
        json_t *st = json_array_get(v, 1);
        smin = json_number_value(json_object_get(st, "min"));
        smax = json_number_value(json_object_get(st, "max"));
        json_decref(v);
        img_read(&out[run], d.root, "r.tif");
        ck_assert_int_eq(out[run].bands, 4);
        ck_assert_int_eq(out[run].type, GDT_Byte);
        ck_assert(!out[run].has_nodata);
        if (run == 1) {
            img dem;
            img_read(&dem, d.root, "dem.tif");
            const size_t n = (size_t)dem.w * (size_t)dem.h;
            double mn = INFINITY, mx = -INFINITY;
            for (size_t i = 0; i < n; i++)
                if (dem.v[i] != -9999) mn = fmin(mn, dem.v[i]), mx = fmax(mx, dem.v[i]);
            ck_assert(smin == mn && smax == mx);
            anchors a;
            anchors_parse(VIRIDIS, NULL, &a);
            for (size_t i = 0; i < n; i++) {
                int want[4];
                if (dem.v[i] == -9999) {
                    want[0] = want[1] = want[2] = want[3] = 0;
                } else {
                    double v = dem.v[i];
                    double q = v <= mn   ? 0
                               : v >= mx ? 3840
                                         : floor((v - mn) * (3840 / (mx - mn)) + 0.5);
                    ref_color(&a, 1 - q / 3840, want);
                    want[3] = 153; /* round(0.6 * 255) */
                }
                for (int b = 0; b < 4; b++)
                    CHECK(out[1].v[(size_t)b * n + i] == want[b], "cell %zu band %d", i, b);
            }
            img_free(&dem);
        }
        daemon_finish(&d);
    }
    const size_t cells = (size_t)out[0].w * (size_t)out[0].h * 4;
    ck_assert_int_eq(memcmp(out[0].v, out[1].v, cells * sizeof(double)), 0);
    img_free(&out[0]);
    img_free(&out[1]);
}
END_TEST

/* ---- render.rgb ---- */

/* A 3-band u16 image: a 2-98 % stretch per band from three
 * global.quantiles nodes (value args, one per channel), with alpha, saved
 * as GeoTIFF and checked cell by cell; the same without alpha as JPEG. */
START_TEST(test_rgb_quantiles_jpeg)
{
    th_daemon d;
    root_init(&d);
    const char *flags[] = {"--workers", "2", "--tile-size", "32", NULL};
    daemon_start(&d, flags);
    mk(&d, "img.tif",
       "--size 150x90 --type u16 --bands 3 --pattern dem --nodata 0 "
       "--nodata-every 13");
    const bool quantiles = has_op(&d, "global.quantiles");
    img in;
    img_read(&in, d.root, "img.tif");
    const size_t n = (size_t)in.w * (size_t)in.h;
    double lo[3], hi[3];
    json_t *v;
    if (quantiles) {
        v = run_ok(
            &d,
            "{\"nodes\": {\"img\": {\"op\": \"io.load\", \"path\": \"img.tif\"}, "
            "\"qr\": {\"op\": \"global.quantiles\", \"probs\": [0.02, 0.98], \"args\": "
            "[{\"op\": \"io.load\", \"path\": \"img.tif\", \"band\": 1}]}, "
            "\"qg\": {\"op\": \"global.quantiles\", \"probs\": [0.02, 0.98], \"args\": "
            "[{\"op\": \"io.load\", \"path\": \"img.tif\", \"band\": 2}]}, "
            "\"qb\": {\"op\": \"global.quantiles\", \"probs\": [0.02, 0.98], \"args\": "
            "[{\"op\": \"io.load\", \"path\": \"img.tif\", \"band\": 3}]}, "
            "\"rgba\": {\"op\": \"render.rgb\", \"alpha\": true, \"args\": [{\"ref\": \"img\"}, "
            "{\"ref\": \"qr\"}, {\"ref\": \"qg\"}, {\"ref\": \"qb\"}]}, "
            "\"rgb\": {\"op\": \"render.rgb\", \"args\": [{\"ref\": \"img\"}, "
            "{\"ref\": \"qr\"}, {\"ref\": \"qg\"}, {\"ref\": \"qb\"}]}, "
            "\"tif\": {\"op\": \"io.save\", \"path\": \"rgba.tif\", \"args\": [{\"ref\": "
            "\"rgba\"}]}, "
            "\"lossless\": {\"op\": \"io.save\", \"path\": \"rgb.tif\", \"args\": [{\"ref\": "
            "\"rgb\"}]}, "
            "\"jpg\": {\"op\": \"io.save\", \"path\": \"rgb.jpg\", \"format\": \"JPEG\", "
            "\"args\": [{\"ref\": \"rgb\"}]}}, "
            "\"result\": [\"tif\", \"lossless\", \"jpg\", \"qr\", \"qg\", \"qb\"]}");
        for (int c = 0; c < 3; c++) {
            json_t *q = json_array_get(v, (size_t)(3 + c));
            ck_assert(json_is_array(q) && json_array_size(q) == 2);
            lo[c] = json_number_value(json_array_get(q, 0));
            hi[c] = json_number_value(json_array_get(q, 1));
            /* u16 quantiles are exact: numpy's linear definition. */
            double *s = malloc(n * sizeof *s);
            size_t m = 0;
            for (size_t i = 0; i < n; i++)
                if (in.v[(size_t)c * n + i] != 0) s[m++] = in.v[(size_t)c * n + i];
            qsort(s, m, sizeof *s, cmp_double);
            CHECK(fabs(lo[c] - quantile_linear(s, m, 0.02)) < 1e-9 &&
                      fabs(hi[c] - quantile_linear(s, m, 0.98)) < 1e-9,
                  "band %d quantiles %g %g", c + 1, lo[c], hi[c]);
            free(s);
        }
    } else {
        for (int c = 0; c < 3; c++)
            lo[c] = 300 + 10 * c, hi[c] = 1800 + 10 * c;
        v = run_ok(&d, "{\"nodes\": {\"img\": {\"op\": \"io.load\", \"path\": \"img.tif\"}, "
                       "\"rgba\": {\"op\": \"render.rgb\", \"alpha\": true, \"min\": [300, 310, "
                       "320], \"max\": [1800, 1810, 1820], \"args\": [{\"ref\": \"img\"}]}, "
                       "\"rgb\": {\"op\": \"render.rgb\", \"min\": [300, 310, 320], \"max\": "
                       "[1800, 1810, 1820], \"args\": [{\"ref\": \"img\"}]}, "
                       "\"tif\": {\"op\": \"io.save\", \"path\": \"rgba.tif\", \"args\": "
                       "[{\"ref\": \"rgba\"}]}, \"lossless\": {\"op\": \"io.save\", \"path\": "
                       "\"rgb.tif\", \"args\": [{\"ref\": \"rgb\"}]}, \"jpg\": {\"op\": "
                       "\"io.save\", \"path\": \"rgb.jpg\", \"format\": \"JPEG\", \"args\": "
                       "[{\"ref\": \"rgb\"}]}}, \"result\": [\"tif\", \"lossless\", \"jpg\"]}");
    }
    json_decref(v);

    img out, lossless, jpg;
    img_read(&out, d.root, "rgba.tif");
    ck_assert_int_eq(out.bands, 4);
    ck_assert_int_eq(out.type, GDT_Byte);
    size_t black = 0;
    for (size_t i = 0; i < n; i++) {
        bool missing = false;
        for (int c = 0; c < 3; c++)
            missing |= in.v[(size_t)c * n + i] == 0;
        if (missing) {
            for (int b = 0; b < 4; b++)
                CHECK(out.v[(size_t)b * n + i] == 0, "missing cell %zu band %d", i, b);
            black++;
            continue;
        }
        for (int c = 0; c < 3; c++) {
            const double x = in.v[(size_t)c * n + i];
            const double t = x <= lo[c] ? 0 : x >= hi[c] ? 1 : (x - lo[c]) / (hi[c] - lo[c]);
            const double y = 255 * t;
            const int want = round_half_up(y);
            const bool tie = fabs(y - floor(y) - 0.5) < 1e-9;
            const double got = out.v[(size_t)c * n + i];
            CHECK(got == want || (tie && got == want - 1),
                  "cell %zu channel %d: v=%g [%g, %g]: %g want %d", i, c, x, lo[c], hi[c], got,
                  want);
        }
        CHECK(out.v[3 * n + i] == 255, "cell %zu alpha", i);
    }
    ck_assert_uint_eq(black, (n + 12) / 13);

    img_read(&lossless, d.root, "rgb.tif");
    ck_assert_int_eq(lossless.bands, 3);
    ck_assert_int_eq(memcmp(lossless.v, out.v, 3 * n * sizeof(double)), 0);
    img_read(&jpg, d.root, "rgb.jpg");
    ck_assert_str_eq(jpg.driver, "JPEG");
    ck_assert_int_eq(jpg.w, 150);
    ck_assert_int_eq(jpg.h, 90);
    ck_assert_int_eq(jpg.bands, 3);
    ck_assert_int_eq(jpg.type, GDT_Byte);
    double diff = 0;
    for (size_t i = 0; i < 3 * n; i++)
        diff += fabs(jpg.v[i] - lossless.v[i]);
    /* Isolated black nodata cells (every 13th) ring at JPEG's default
     * quality: about 6 here; unrelated pictures differ by ~80. */
    CHECK(diff / (3.0 * n) < 12.0, "JPEG far from its source: mean |diff| %g", diff / (3.0 * n));
    img_free(&in);
    img_free(&out);
    img_free(&lossless);
    img_free(&jpg);
    daemon_finish(&d);
}
END_TEST

/* Errors reach the client with their code and node. */
START_TEST(test_errors)
{
    th_daemon d;
    root_init(&d);
    daemon_start(&d, NULL);
    mk(&d, "a.tif", "--size 20 --pattern dem");
    json_t *ev = run_err(&d, "{\"nodes\": {\"a\": {\"op\": \"io.load\", \"path\": \"a.tif\"}, "
                             "\"r\": {\"op\": \"render.ramp\", \"ramp\": \"rainbow\", \"min\": 0, "
                             "\"max\": 1, \"args\": [{\"ref\": \"a\"}]}}, \"result\": \"r\"}");
    ck_assert_str_eq(th_code(ev), "bad_param");
    ck_assert_str_eq(th_node(ev), "r");
    const char *msg = json_string_value(json_object_get(json_object_get(ev, "error"), "message"));
    ck_assert(msg && strstr(msg, "viridis") && strstr(msg, "terrain"));
    json_decref(ev);
    ev = run_err(&d, "{\"nodes\": {\"a\": {\"op\": \"io.load\", \"path\": \"a.tif\"}, "
                     "\"r\": {\"op\": \"render.ramp\", \"breaks\": [5, 1], "
                     "\"args\": [{\"ref\": \"a\"}]}}, \"result\": \"r\"}");
    ck_assert_str_eq(th_code(ev), "bad_param");
    json_decref(ev);
    ev = run_err(&d, "{\"nodes\": {\"a\": {\"op\": \"io.load\", \"path\": \"a.tif\"}, "
                     "\"r\": {\"op\": \"render.rgb\", \"min\": 0, \"max\": 1, "
                     "\"args\": [{\"ref\": \"a\"}]}}, \"result\": \"r\"}");
    ck_assert_str_eq(th_code(ev), "bad_param"); /* one band */
    ck_assert_str_eq(th_node(ev), "r");
    json_decref(ev);
    daemon_finish(&d);
}
END_TEST

int main(void)
{
    signal(SIGPIPE, SIG_IGN);
    GDALAllRegister();
    snprintf(g_base, sizeof g_base, "/tmp/pg-render-XXXXXX");
    if (mkdtemp(g_base) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    Suite *s = suite_create("it_render");
    TCase *tc = tcase_create("render");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_ramp_png, 0, 2);
    tcase_add_test(tc, test_ramp_stats_tiled);
    tcase_add_test(tc, test_rgb_quantiles_jpeg);
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    if (failed == 0) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_base);
        if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", g_base);
    } else {
        fprintf(stderr, "test data and daemon logs kept in %s\n", g_base);
    }
    return failed == 0 ? 0 : 1;
}
