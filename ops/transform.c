/* The transform family: ops that change the grid. transform.crop,
 * transform.resample, transform.reproject, transform.mosaic,
 * transform.bands, transform.stack.
 *
 * TYPE RULES.
 *  - crop, bands, resample, reproject: the output has the source's cell
 *    type. Interpolated values (bilinear, cubic, average, ...) are computed
 *    by GDAL in double and stored as GDAL stores them: rounded to nearest
 *    (halves up) and clamped to the range of an integer type.
 *  - stack, mosaic: the smallest type that holds every value of every arg's
 *    type, so that no conversion loses anything:
 *      all integer args: all unsigned -> the widest unsigned type; with a
 *        signed one -> the signed type wider than every unsigned one and at
 *        least as wide as every signed one (u8+i8 -> i16, u16+i8 -> i32);
 *        when that would take 64 bits (u32 with any signed type) -> f64;
 *      any float arg: f64 if any arg is f64 or a 32-bit integer (f32 holds
 *        integers exactly only to 2^24), else f32.
 *
 * NODATA RULES.
 *  - crop, bands: the source's nodata, cells unchanged.
 *  - resample, reproject, mosaic (ops that can leave output cells that no
 *    source cell covers): the output's nodata value is
 *      1. the "nodata" param if given (it must be a value of the type);
 *      2. else the (first) source's nodata, when the output type holds it;
 *      3. else NaN for a float type;
 *      4. else none: uncovered cells are 0, as gdalwarp leaves them.
 *    Source cells that are nodata (their raster's nodata value; NaN in a
 *    float raster without one) are ignored by the resampling kernels, band
 *    by band (GDAL's UNIFIED_SRC_NODATA=NO: one band's nodata does not hide
 *    the others'); an output cell with no valid source cell is nodata. NaN
 *    cells of a float raster that has another nodata value are left to GDAL
 *    (an interpolation may spread them: NaN, which Pergola reads as
 *    nodata). As with gdalwarp (GDAL 3.6), a computed value that happens
 *    to equal the nodata value reads as nodata.
 *  - stack: nodata if any arg has one; the value is the first such arg's
 *    (the output type holds it). A cell that is nodata in its own arg (its
 *    value, or NaN when the output has a nodata value) becomes the output's
 *    nodata. Cells of args without nodata are copied as they are, so such a
 *    cell equal to the output's nodata value reads as nodata afterwards
 *    (one nodata value per raster: unavoidable).
 *
 * EDGES. Windows of an arg may extend beyond it (halos); cells of in[i]
 * outside [0, W) x [0, H) of arg i are never read as data. The warp ops
 * hand GDAL only the part of a source tile inside its raster, so a kernel
 * at the raster's edge sees exactly what gdalwarp sees at the file's edge.
 *
 * HOW WARPING IS TILED (resample, reproject, and mosaic args on another
 * grid). GDAL's warper does the work: per output tile, the source tile
 * (the part inside its raster) is wrapped as a MEM dataset without
 * copying, and GDALWarpRegionToBuffer() writes straight into the output
 * tile. Three things make a tile's cells independent of the tiling, and
 * equal to gdalwarp's:
 *  1. Coordinates. GDAL's transformer maps whole-raster pixel coordinates
 *     (output pixel centre -> source pixel) exactly as gdalwarp -et 0 does;
 *     a thin wrapper (pg__xf) adds the tile's offset before and subtracts
 *     the source window's offset after, which is exact in double. No
 *     approximate transformer: gdalwarp's default one (-et 0.125) fits
 *     lines per chunk row, so its errors depend on the chunking; results
 *     here match gdalwarp -et 0.
 *  2. Kernel scale. For downsampling, GDAL widens bilinear/cubic/lanczos
 *     kernels by the ratio of output to source size, which it computes per
 *     chunk. plan() computes it once for the whole raster the way gdalwarp
 *     does for a single chunk (pg__warp_scale) and passes it as the warp
 *     options XSCALE/YSCALE.
 *  3. Source window. need() maps the output window's edge (pixel corners,
 *     densified) into the source, takes the bounding box and pads it by the
 *     kernel radius (scaled for downsampling) + 2, then clips it to the
 *     source raster. So the kernel of every output cell is inside the
 *     window, as it is inside gdalwarp's whole-file window.
 * Transformers are not shared between threads: each compute() and need()
 * takes one from the node's pool (pg__xpool) and puts it back; a pool
 * grows to the number of threads that use it at once.
 *
 * A source window is capped at PG__WINDOW_FACTOR times the larger of the
 * output window's cells and its nominal source footprint (the local scale
 * sampled at plan time, plus the kernel padding). A window past the cap
 * (an output tile over a pole or across the antimeridian, where a few
 * output cells see a large part of the source) fails: at plan time when
 * the node's own tiles can be checked (at most PG__PLAN_CHECK_TILES of
 * them), else when the tile is computed (need() then asks for one cell, so
 * memory never goes to the huge window). Clamping instead would give wrong
 * cells silently.
 */
#include "bufpool.h"
#include "graph.h"
#include "crs.h"
#include "ops/registry.h"
#include "raster.h"
#include "util.h"

#include <cpl_error.h>
#include <cpl_string.h>
#include <ctype.h>
#include <float.h>
#include <gdal.h>
#include <gdal_alg.h>
#include <gdalwarper.h>
#include <math.h>
#include <ogr_srs_api.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PG__WINDOW_FACTOR 16.0
#define PG__PLAN_CHECK_TILES 1024
/* Points per edge when need() maps an output window into the source. */
#define PG__EDGE_SAMPLES 64

/* Runs the statement list for every i in [0, n): fixed blocks of 16 (which
 * GCC vectorises at -O2 too), then the rest. */
#define PG__LOOP(n, ...)                                                                           \
    do {                                                                                           \
        size_t i_ = 0;                                                                             \
        for (; i_ + 16 <= (n); i_ += 16) {                                                         \
            for (size_t j_ = 0; j_ < 16; j_++) {                                                   \
                const size_t i = i_ + j_;                                                          \
                __VA_ARGS__                                                                        \
            }                                                                                      \
        }                                                                                          \
        for (size_t i = i_; i < (n); i++) {                                                        \
            __VA_ARGS__                                                                            \
        }                                                                                          \
    } while (0)

/* ---- small helpers ---- */

static pg_window pg__win_intersect(pg_window a, pg_window b)
{
    int64_t x0 = a.x > b.x ? a.x : b.x, y0 = a.y > b.y ? a.y : b.y;
    int64_t x1 = a.x + a.w < b.x + b.w ? a.x + a.w : b.x + b.w;
    int64_t y1 = a.y + a.h < b.y + b.h ? a.y + a.h : b.y + b.h;
    pg_window r = {x0, y0, x1 - x0, y1 - y0};
    if (r.w <= 0 || r.h <= 0) r.w = r.h = 0;
    return r;
}

/* The window need() asks for when an arg contributes nothing: one cell
 * outside the raster, which compute() sees as missing. */
static const pg_window pg__nothing = {-1, -1, 1, 1};

/* Reads a JSON array of N finite numbers into OUT. */
static bool pg__json_numbers(const json_t *v, size_t n, double *out)
{
    if (!json_is_array(v) || json_array_size(v) != n) return false;
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_array_get(v, i);
        if (!json_is_number(x) || !isfinite(json_number_value(x))) return false;
        out[i] = json_number_value(x);
    }
    return true;
}

/* "cell_size": a number > 0 or [x, y] of them. Returns 0, 1 (absent) or
 * PG_EPARAM. */
static int pg__cell_size(const pg_node *n, double *cx, double *cy, pg_error *err)
{
    json_t *v = json_object_get(n->params, "cell_size");
    if (v == NULL || json_is_null(v)) return 1;
    double xy[2];
    if (json_is_number(v)) {
        xy[0] = xy[1] = json_number_value(v);
    } else if (!pg__json_numbers(v, 2, xy)) {
        xy[0] = -1;
    }
    if (!(xy[0] > 0 && xy[1] > 0 && isfinite(xy[0]) && isfinite(xy[1])))
        return pg_error_set(err, PG_EPARAM,
                            "param 'cell_size' must be a number > 0 or [x, y] of them");
    *cx = xy[0];
    *cy = xy[1];
    return 0;
}

/* The output nodata of a warping op (rules 1-4 at the top): from the
 * "nodata" param, else SRC_HAS/SRC_ND. */
static int pg__out_nodata(const pg_node *n, pg_celltype t, bool src_has, double src_nd,
                          pg_raster_info *ri, pg_error *err)
{
    if (pg_param_has(n, "nodata")) {
        double v = pg_param_num(n, "nodata");
        if (t == PG_F32 && !isnan(v)) {
            if (!(fabs(v) <= FLT_MAX))
                return pg_error_set(err, PG_EPARAM, "param 'nodata' (%.17g) is not an f32 value",
                                    v);
            v = (double)(float)v;
        } else if (!pg_celltype_holds(t, v)) {
            return pg_error_set(err, PG_EPARAM, "param 'nodata' (%.17g) is not a value of type %s",
                                v, pg_celltype_name(t));
        }
        ri->has_nodata = true;
        ri->nodata = v;
    } else if (src_has && (pg_celltype_holds(t, src_nd) || (t == PG_F32 && isfinite(src_nd)))) {
        ri->has_nodata = true;
        ri->nodata = t == PG_F32 ? (double)(float)src_nd : src_nd;
    } else if (pg_celltype_is_float(t)) {
        ri->has_nodata = true;
        ri->nodata = NAN;
    } else {
        ri->has_nodata = false;
        ri->nodata = 0;
    }
    return 0;
}

static bool pg__has_crs(const pg_raster_info *ri)
{
    return ri->crs_wkt != NULL && ri->crs_wkt[0] != '\0';
}

/* True if two rasters' CRSs are the same (both absent counts as the same). */
static bool pg__same_crs(const char *a, const char *b)
{
    bool ea = a == NULL || a[0] == '\0', eb = b == NULL || b[0] == '\0';
    if (ea || eb) return ea && eb;
    if (strcmp(a, b) == 0) return true;
    OGRSpatialReferenceH sa = OSRNewSpatialReference(NULL), sb = OSRNewSpatialReference(NULL);
    bool same = false;
    if (sa != NULL && sb != NULL) {
        char *pa = (char *)a, *pb = (char *)b;
        CPLPushErrorHandler(CPLQuietErrorHandler);
        if (OSRImportFromWkt(sa, &pa) == OGRERR_NONE && OSRImportFromWkt(sb, &pb) == OGRERR_NONE)
            same = OSRIsSame(sa, sb) != 0;
        CPLPopErrorHandler();
    }
    if (sa != NULL) OSRDestroySpatialReference(sa);
    if (sb != NULL) OSRDestroySpatialReference(sb);
    return same;
}

/* ---- resampling methods ---- */

typedef struct pg__method {
    const char *name;
    GDALResampleAlg alg;
    int radius; /* GDAL's filter radius (anGWKFilterRadius), in source cells */
} pg__method;

static const pg__method pg__methods[] = {
    {"nearest", GRA_NearestNeighbour, 0},
    {"bilinear", GRA_Bilinear, 1},
    {"cubic", GRA_Cubic, 2},
    {"cubicspline", GRA_CubicSpline, 2},
    {"lanczos", GRA_Lanczos, 3},
    {"average", GRA_Average, 0},
    {"mode", GRA_Mode, 0},
    {"min", GRA_Min, 0},
    {"max", GRA_Max, 0},
    {"med", GRA_Med, 0},
};

static int pg__method_parse(const pg_node *n, const pg__method **m, pg_error *err)
{
    const char *s = pg_param_str(n, "method");
    if (s == NULL) s = "nearest";
    for (size_t i = 0; i < PG_ARRAY_SIZE(pg__methods); i++) {
        if (strcmp(pg__methods[i].name, s) == 0) {
            *m = &pg__methods[i];
            return 0;
        }
    }
    return pg_error_set(err, PG_EPARAM,
                        "param 'method' must be one of nearest, bilinear, cubic, cubicspline, "
                        "lanczos, average, mode, min, max, med (got '%s')",
                        s);
}

/* ---- transformer pools ----
 * A GDAL transformer (and the PROJ objects inside) must not be used by two
 * threads at once. Each pool creates transformers of one mapping on demand
 * and keeps the idle ones; a caller holds one for the length of a call. */

typedef struct pg__xpool {
    pthread_mutex_t mu;
    void **idle;
    int nidle, cap;
    char *src_wkt, *dst_wkt; /* NULL: no reprojection */
    double src_gt[6], dst_gt[6];
} pg__xpool;

static void *pg__xpool_create(const pg__xpool *p)
{
    CPLPushErrorHandler(CPLQuietErrorHandler);
    void *t = GDALCreateGenImgProjTransformer3(p->src_wkt, p->src_gt, p->dst_wkt, p->dst_gt);
    CPLPopErrorHandler();
    return t;
}

/* Sets up P; returns 0 or an error (an impossible transformation). */
static int pg__xpool_init(pg__xpool *p, const char *src_wkt, const double *src_gt,
                          const char *dst_wkt, const double *dst_gt, pg_error *err)
{
    memset(p, 0, sizeof *p);
    pthread_mutex_init(&p->mu, NULL);
    memcpy(p->src_gt, src_gt, sizeof p->src_gt);
    memcpy(p->dst_gt, dst_gt, sizeof p->dst_gt);
    if (src_wkt != NULL && (p->src_wkt = strdup(src_wkt)) == NULL)
        return pg_error_set(err, PG_ENOMEM, "out of memory");
    if (dst_wkt != NULL && (p->dst_wkt = strdup(dst_wkt)) == NULL)
        return pg_error_set(err, PG_ENOMEM, "out of memory");
    CPLErrorReset();
    void *t = pg__xpool_create(p);
    if (t == NULL)
        return pg_error_set(err, PG_EPARAM, "no transformation between these CRSs%s%s",
                            CPLGetLastErrorMsg()[0] ? ": " : "", CPLGetLastErrorMsg());
    p->idle = malloc(sizeof *p->idle * 4);
    if (p->idle == NULL) {
        GDALDestroyGenImgProjTransformer(t);
        return pg_error_set(err, PG_ENOMEM, "out of memory");
    }
    p->cap = 4;
    p->idle[p->nidle++] = t;
    return 0;
}

static void pg__xpool_free(pg__xpool *p)
{
    for (int i = 0; i < p->nidle; i++)
        GDALDestroyGenImgProjTransformer(p->idle[i]);
    free(p->idle);
    free(p->src_wkt);
    free(p->dst_wkt);
    pthread_mutex_destroy(&p->mu);
    memset(p, 0, sizeof *p);
}

static void *pg__xpool_get(pg__xpool *p)
{
    void *t = NULL;
    pthread_mutex_lock(&p->mu);
    if (p->nidle > 0) t = p->idle[--p->nidle];
    pthread_mutex_unlock(&p->mu);
    return t != NULL ? t : pg__xpool_create(p);
}

static void pg__xpool_put(pg__xpool *p, void *t)
{
    if (t == NULL) return;
    pthread_mutex_lock(&p->mu);
    if (p->nidle == p->cap) {
        void **ni = realloc(p->idle, sizeof *ni * (size_t)p->cap * 2);
        if (ni != NULL) {
            p->idle = ni;
            p->cap *= 2;
        }
    }
    if (p->nidle < p->cap) {
        p->idle[p->nidle++] = t;
        t = NULL;
    }
    pthread_mutex_unlock(&p->mu);
    if (t != NULL) GDALDestroyGenImgProjTransformer(t);
}

/* Output pixel -> source pixel (DST_TO_SRC) for N points, in whole-raster
 * pixel coordinates. */
static void pg__xform(void *t, int n, double *x, double *y, double *z, int *ok)
{
    for (int i = 0; i < n; i++)
        z[i] = 0.0;
    GDALGenImgProjTransform(t, TRUE, n, x, y, z, ok);
    for (int i = 0; i < n; i++)
        if (ok[i] && !(isfinite(x[i]) && isfinite(y[i]))) ok[i] = 0;
}

/* The transformer handed to the warper: whole-raster coordinates shifted to
 * the tile (output) and the source window. The signature field keeps GDAL's
 * GDALIsTransformer() checks from mistaking it for one of its own. */
typedef struct pg__xf_arg {
    char sig[4];
    void *base;
    double dx, dy; /* the output tile's origin in the output raster */
    double sx, sy; /* the source window's origin in the source raster */
    double et;     /* > 0: approximate rows within this error (source cells) */
} pg__xf_arg;

/* ---- approximate rows ("error_threshold") ----
 * Like gdalwarp's approximate transformer, a row of output points is mapped
 * by linear interpolation between exact transforms, refined where the
 * midpoint's error exceeds the threshold. Unlike it, the segments are fixed
 * in whole-raster coordinates (every PG__SEG cells from the row's first
 * column of the raster, halved as needed), never cut by a tile's edge: a
 * cell's interpolated position depends only on its segment, so results are
 * the same for any tiling. */
#define PG__SEG 32

typedef struct pg__pt {
    double x, y;
    int ok;
} pg__pt;

static pg__pt pg__xf_point(void *base, double gx, double gy)
{
    double z = 0;
    int ok = 0;
    GDALGenImgProjTransform(base, TRUE, 1, &gx, &gy, &z, &ok);
    return (pg__pt){gx, gy, ok && isfinite(gx) && isfinite(gy)};
}

/* The row's points (global x = G0 + i, i in [0, N)) in [K0, K1) from the
 * exact values at K0, the midpoint and K1. Writes source-window coordinates
 * into X, Y, OK. */
static void pg__xf_seg(const pg__xf_arg *a, double gy, double g0, int n, double k0, double k1,
                       pg__pt v0, pg__pt vm, pg__pt v1, double *x, double *y, int *ok)
{
    int64_t i0 = (int64_t)(k0 - g0), i1 = (int64_t)(k1 - g0); /* exact: same fraction */
    if (i0 < 0) i0 = 0;
    if (i1 > n) i1 = n;
    if (i0 >= i1) return;
    const double km = 0.5 * (k0 + k1);
    if (!(v0.ok && vm.ok && v1.ok)) {
        /* Some of the segment does not map: its points one by one. */
        for (int64_t i = i0; i < i1; i++) {
            pg__pt p = pg__xf_point(a->base, g0 + (double)i, gy);
            x[i] = p.x - a->sx, y[i] = p.y - a->sy, ok[i] = p.ok;
        }
        return;
    }
    double e = fmax(fabs(0.5 * (v0.x + v1.x) - vm.x), fabs(0.5 * (v0.y + v1.y) - vm.y));
    if (e > a->et && k1 - k0 > 2.0) {
        pg__pt q0 = pg__xf_point(a->base, 0.5 * (k0 + km), gy);
        pg__pt q1 = pg__xf_point(a->base, 0.5 * (km + k1), gy);
        pg__xf_seg(a, gy, g0, n, k0, km, v0, q0, vm, x, y, ok);
        pg__xf_seg(a, gy, g0, n, km, k1, vm, q1, v1, x, y, ok);
        return;
    }
    if (e > a->et) { /* two cells left: both exact */
        for (int64_t i = i0; i < i1; i++) {
            pg__pt p = (g0 + (double)i == k0) ? v0 : vm;
            x[i] = p.x - a->sx, y[i] = p.y - a->sy, ok[i] = 1;
        }
        return;
    }
    const double inv = 1.0 / (k1 - k0);
    for (int64_t i = i0; i < i1; i++) {
        double t = ((g0 + (double)i) - k0) * inv;
        x[i] = v0.x + (v1.x - v0.x) * t - a->sx;
        y[i] = v0.y + (v1.y - v0.y) * t - a->sy;
        ok[i] = 1;
    }
}

/* Maps one row (X[i] = X[0] + i, one Y) approximately. Returns false if
 * the points are not such a row. */
static bool pg__xf_row(const pg__xf_arg *a, int n, double *x, double *y, int *ok)
{
    for (int i = 1; i < n; i++)
        if (x[i] != x[0] + (double)i || y[i] != y[0]) return false;
    const double g0 = x[0] + a->dx, gy = y[0] + a->dy;
    const double frac = g0 - floor(g0);
    const int64_t s0 = (int64_t)floor((g0 - frac) / PG__SEG);
    const int64_t s1 = (int64_t)floor((g0 + (double)(n - 1) - frac) / PG__SEG);
    const int nseg = (int)(s1 - s0 + 1);
    /* Knots and midpoints of the top-level segments in one call. */
    enum { STACK = 2 * (8192 / PG__SEG + 2) + 1 };
    double sbuf[3 * STACK];
    int sok[STACK];
    const int np = 2 * nseg + 1;
    double *kx = np <= STACK ? sbuf : malloc(sizeof(double) * 3 * (size_t)np);
    int *kok = np <= STACK ? sok : malloc(sizeof(int) * (size_t)np);
    if (kx == NULL || kok == NULL) {
        if (kx != sbuf) free(kx);
        if (kok != sok) free(kok);
        return false;
    }
    double *ky = kx + np, *kz = ky + np;
    for (int k = 0; k < np; k++) {
        kx[k] = (double)(s0 * PG__SEG) + frac + 0.5 * PG__SEG * k;
        ky[k] = gy;
        kz[k] = 0;
    }
    GDALGenImgProjTransform(a->base, TRUE, np, kx, ky, kz, kok);
    for (int s = 0; s < nseg; s++) {
        pg__pt v[3];
        for (int j = 0; j < 3; j++) {
            int k = 2 * s + j;
            v[j] = (pg__pt){kx[k], ky[k], kok[k] && isfinite(kx[k]) && isfinite(ky[k])};
        }
        double k0 = (double)((s0 + s) * PG__SEG) + frac;
        pg__xf_seg(a, gy, g0, n, k0, k0 + PG__SEG, v[0], v[1], v[2], x, y, ok);
    }
    if (kx != sbuf) free(kx);
    if (kok != sok) free(kok);
    return true;
}

static int pg__xf(void *arg, int dst_to_src, int n, double *x, double *y, double *z, int *ok)
{
    const pg__xf_arg *a = arg;
    if (dst_to_src && a->et > 0 && n > 2 && pg__xf_row(a, n, x, y, ok)) return TRUE;
    const double ix = dst_to_src ? a->dx : a->sx, iy = dst_to_src ? a->dy : a->sy;
    const double ox = dst_to_src ? a->sx : a->dx, oy = dst_to_src ? a->sy : a->dy;
    for (int i = 0; i < n; i++) {
        x[i] += ix;
        y[i] += iy;
    }
    int rc = GDALGenImgProjTransform(a->base, dst_to_src, n, x, y, z, ok);
    for (int i = 0; i < n; i++) {
        x[i] -= ox;
        y[i] -= oy;
    }
    return rc;
}

/* ---- one source warped onto the node's grid ---- */

typedef struct pg__warp {
    const pg__method *method;
    pg_celltype src_type;
    int bands;
    int64_t src_w, src_h;
    double xscale, yscale; /* GDAL's kernel scale (output / source size) */
    int pad_x, pad_y;      /* source cells around a mapped window */
    double foot_x, foot_y; /* largest source cells per output cell (for the cap) */
    bool src_has_nd;       /* source cells to ignore: == src_nd (NaN: isnan) */
    double src_nd;
    bool dst_has_nd; /* the buffer's nodata (what uncovered cells hold) */
    double dst_nd;
    double et; /* error threshold of approximate rows (0: exact) */
    pg__xpool xp;
} pg__warp;

/* Maps the output window OUT (its cells' corners) into the source: the
 * padded bounding box, clipped to the source raster, in *WIN. Returns 1 if
 * the source contributes nothing (then *WIN is pg__nothing), -1 if the
 * window is past the cap (*CELLS: its size), 0 otherwise. */
static int pg__warp_window(const pg__warp *wp, pg__xpool *xp, const pg_window *out, pg_window *win,
                           double *cells)
{
    /* The edge of [x0, x0+w] x [y0, y0+h], a point every 4 cells (at least
     * 4 per side), plus a 3x3 grid inside for mappings that fail on part of
     * the edge. Between points a smooth mapping bends by far less than the
     * 2 cells of padding. */
    const int64_t ex = out->w / 4 < 4 ? 4 : (out->w + 3) / 4;
    const int64_t ey = out->h / 4 < 4 ? 4 : (out->h + 3) / 4;
    const size_t np_max = (size_t)(2 * ex + 2 * ey + 9);
    enum { STACK = 4 * PG__EDGE_SAMPLES + 9 };
    double sbuf[3 * STACK];
    int sok[STACK];
    double *x = np_max <= STACK ? sbuf : malloc(sizeof(double) * 3 * np_max);
    int *ok = np_max <= STACK ? sok : malloc(sizeof(int) * np_max);
    *win = pg__nothing;
    *cells = INFINITY; /* reported as past the cap: out of memory, or no transformer */
    void *t = x != NULL && ok != NULL ? pg__xpool_get(xp) : NULL;
    if (t == NULL) {
        if (x != sbuf) free(x);
        if (ok != sok) free(ok);
        return -1;
    }
    double *y = x + np_max, *z = y + np_max;
    int np = 0;
    for (int64_t s = 0; s < ex; s++) {
        double f = (double)s / (double)ex;
        x[np] = (double)out->x + f * (double)out->w, y[np++] = (double)out->y;
        x[np] = (double)(out->x + out->w) - f * (double)out->w, y[np++] = (double)(out->y + out->h);
    }
    for (int64_t s = 0; s < ey; s++) {
        double f = (double)s / (double)ey;
        x[np] = (double)(out->x + out->w), y[np++] = (double)out->y + f * (double)out->h;
        x[np] = (double)out->x, y[np++] = (double)(out->y + out->h) - f * (double)out->h;
    }
    for (int j = 0; j < 3; j++)
        for (int i = 0; i < 3; i++) {
            x[np] = (double)out->x + (i + 0.5) / 3.0 * (double)out->w;
            y[np++] = (double)out->y + (j + 0.5) / 3.0 * (double)out->h;
        }
    pg__xform(t, np, x, y, z, ok);
    pg__xpool_put(xp, t);
    double mnx = INFINITY, mny = INFINITY, mxx = -INFINITY, mxy = -INFINITY;
    for (int i = 0; i < np; i++) {
        if (!ok[i]) continue;
        mnx = fmin(mnx, x[i]), mxx = fmax(mxx, x[i]);
        mny = fmin(mny, y[i]), mxy = fmax(mxy, y[i]);
    }
    if (x != sbuf) free(x);
    if (ok != sok) free(ok);
    *cells = 0;
    if (!(mnx <= mxx && mny <= mxy)) return 1;
    /* Padded, in double first (a wild mapping must not overflow int64). */
    const double lim = 1e15;
    double fx0 = fmax(-lim, floor(mnx) - wp->pad_x), fx1 = fmin(lim, ceil(mxx) + wp->pad_x);
    double fy0 = fmax(-lim, floor(mny) - wp->pad_y), fy1 = fmin(lim, ceil(mxy) + wp->pad_y);
    double nominal = ((double)out->w * wp->foot_x + 2.0 * wp->pad_x + 1.0) *
                     ((double)out->h * wp->foot_y + 2.0 * wp->pad_y + 1.0);
    double cap = PG__WINDOW_FACTOR * fmax(nominal, (double)out->w * (double)out->h);
    pg_window w = {(int64_t)fx0, (int64_t)fy0, (int64_t)(fx1 - fx0), (int64_t)(fy1 - fy0)};
    pg_window c = pg__win_intersect(w, (pg_window){0, 0, wp->src_w, wp->src_h});
    if (c.w == 0) return 1;
    *cells = (double)c.w * (double)c.h;
    if (*cells > cap) return -1;
    *win = c;
    return 0;
}

static int pg__window_error(const pg_window *out, double cells, pg_error *err)
{
    return pg_error_set(err, PG_EPARAM,
                        "output window (%lld, %lld, %lld x %lld) needs a source window of %.0f "
                        "cells, more than %.0f times its nominal footprint: the output grid "
                        "maps onto a large part of the source there (a pole or the "
                        "antimeridian?); use a smaller extent or a coarser cell size",
                        (long long)out->x, (long long)out->y, (long long)out->w, (long long)out->h,
                        cells, PG__WINDOW_FACTOR);
}

/* Plan-time: the kernel scale gdalwarp would use for the whole output as
 * one chunk (GDAL's ComputeSourceWindow and WarpRegionToBuffer: output size
 * over the size of the source window it maps to, clamped to the raster,
 * a reciprocal within 0.05 of an integer snapped to it), and the largest
 * local footprint (source cells per output cell, sampled on a grid) for
 * the window cap. Returns PG_EPARAM if the output does not map into the
 * source's plane at all. */
static int pg__warp_scale(pg__warp *wp, int64_t ow, int64_t oh, pg_error *err)
{
    void *t = pg__xpool_get(&wp->xp);
    if (t == NULL) return pg_error_set(err, PG_EINTERNAL, "cannot create a transformer");
    /* The edge of the output raster, at most 4096 points per side. */
    int64_t sx = ow / 4096 + 1, sy = oh / 4096 + 1;
    size_t np = (size_t)(2 * (ow / sx + 2) + 2 * (oh / sy + 2));
    if (np < 300) np = 300; /* the footprint grid below */
    double *x = malloc(sizeof *x * np * 3);
    int *ok = malloc(sizeof *ok * np);
    if (x == NULL || ok == NULL) {
        free(x);
        free(ok);
        pg__xpool_put(&wp->xp, t);
        return pg_error_set(err, PG_ENOMEM, "out of memory");
    }
    double *y = x + np, *z = y + np;
    size_t k = 0;
    for (int64_t i = 0; i <= ow; i += sx) {
        x[k] = (double)i, y[k++] = 0;
        x[k] = (double)i, y[k++] = (double)oh;
    }
    for (int64_t j = 0; j <= oh; j += sy) {
        x[k] = 0, y[k++] = (double)j;
        x[k] = (double)ow, y[k++] = (double)j;
    }
    pg__xform(t, (int)k, x, y, z, ok);
    double mnx = INFINITY, mny = INFINITY, mxx = -INFINITY, mxy = -INFINITY;
    for (size_t i = 0; i < k; i++) {
        if (!ok[i]) continue;
        mnx = fmin(mnx, x[i]), mxx = fmax(mxx, x[i]);
        mny = fmin(mny, y[i]), mxy = fmax(mxy, y[i]);
    }
    /* Local footprints: a 10 x 10 grid of points and their right and lower
     * neighbours. */
    double fx = 0, fy = 0;
    k = 0;
    for (int j = 0; j < 10; j++)
        for (int i = 0; i < 10; i++) {
            double px = (i + 0.5) * (double)ow / 10.0, py = (j + 0.5) * (double)oh / 10.0;
            x[k] = px, y[k++] = py;
            x[k] = px + 1, y[k++] = py;
            x[k] = px, y[k++] = py + 1;
        }
    pg__xform(t, (int)k, x, y, z, ok);
    pg__xpool_put(&wp->xp, t);
    for (size_t i = 0; i < k; i += 3) {
        if (!(ok[i] && ok[i + 1] && ok[i + 2])) continue;
        fx = fmax(fx, fmax(fabs(x[i + 1] - x[i]), fabs(x[i + 2] - x[i])));
        fy = fmax(fy, fmax(fabs(y[i + 1] - y[i]), fabs(y[i + 2] - y[i])));
    }
    free(x);
    free(ok);
    if (!(mnx <= mxx && mny <= mxy))
        return pg_error_set(err, PG_EPARAM,
                            "the output grid cannot be mapped onto the source at all");
    wp->foot_x = fx > 0 ? fx : 1.0;
    wp->foot_y = fy > 0 ? fy : 1.0;

    double scale[2];
    const double mn[2] = {mnx, mny}, mx[2] = {mxx, mxy};
    const int64_t osz[2] = {ow, oh}, ssz[2] = {wp->src_w, wp->src_h};
    for (int a = 0; a < 2; a++) {
        double lo = fmax(0.0, mn[a]);
        int64_t lo_clamped = lo < (double)ssz[a] ? (int64_t)lo : ssz[a];
        double raw = fmax(0.0, fmin((double)(ssz[a] - lo_clamped), mx[a] - mn[a]));
        double s = raw > 0 ? (double)osz[a] / raw : 1.0;
        if (s < 1e-6) s = 1e-6; /* a million source cells per output cell: far past sense */
        if (s < 1.0) {
            double r = 1.0 / s;
            int ri = (int)(r + 0.5);
            if (fabs(r - ri) < 0.05) s = 1.0 / ri;
        }
        scale[a] = s;
    }
    wp->xscale = scale[0];
    wp->yscale = scale[1];
    int r = wp->method->radius;
    wp->pad_x = (r > 0 ? (int)ceil(r / fmin(1.0, wp->xscale)) : 0) + 2;
    wp->pad_y = (r > 0 ? (int)ceil(r / fmin(1.0, wp->yscale)) : 0) + 2;
    return 0;
}

/* Plan-time: every tile of the node's own tiling (when there are few
 * enough) must have a source window under the cap. */
static int pg__warp_check_tiles(pg__warp *wp, int64_t ow, int64_t oh, const pg_plan_env *env,
                                pg_error *err)
{
    int64_t tw = env != NULL && env->tile_w > 0 ? env->tile_w : 256;
    int64_t th = env != NULL && env->tile_h > 0 ? env->tile_h : 256;
    pg_tiling tl;
    pg_tiling_init(&tl, ow, oh, tw, th);
    if (pg_tiling_count(&tl) > PG__PLAN_CHECK_TILES) return 0;
    for (int64_t k = 0; k < pg_tiling_count(&tl); k++) {
        pg_window w = pg_tiling_window(&tl, k), in;
        double cells;
        if (pg__warp_window(wp, &wp->xp, &w, &in, &cells) < 0)
            return pg__window_error(&w, cells, err);
    }
    return 0;
}

/* Sets up WP for source SRC onto the output grid (DST_GT, DST_WKT, OW x OH)
 * with METHOD. DST_ND (has/value): what the buffer holds where nothing
 * lands. */
static int pg__warp_init(pg__warp *wp, const pg_raster_info *src, const double *src_gt,
                         const char *src_wkt, const double *dst_gt, const char *dst_wkt, int64_t ow,
                         int64_t oh, const pg__method *method, bool dst_has_nd, double dst_nd,
                         const pg_plan_env *env, pg_error *err)
{
    memset(wp, 0, sizeof *wp);
    wp->method = method;
    wp->src_type = src->type;
    wp->bands = src->bands;
    wp->src_w = src->width;
    wp->src_h = src->height;
    wp->src_has_nd = src->has_nodata || pg_celltype_is_float(src->type);
    wp->src_nd = src->has_nodata ? src->nodata : NAN;
    if (src->type == PG_F32 && src->has_nodata) wp->src_nd = (double)(float)src->nodata;
    wp->dst_has_nd = dst_has_nd;
    wp->dst_nd = dst_nd;
    int rc = pg__xpool_init(&wp->xp, src_wkt, src_gt, dst_wkt, dst_gt, err);
    if (rc) return rc;
    if ((rc = pg__warp_scale(wp, ow, oh, err))) return rc;
    return pg__warp_check_tiles(wp, ow, oh, env, err);
}

static void pg__warp_free(pg__warp *wp)
{
    if (wp->method != NULL) pg__xpool_free(&wp->xp);
    memset(wp, 0, sizeof *wp);
}

/* Fills N cells of type T at P with V. */
static void pg__fill(void *p, pg_celltype t, size_t n, double v)
{
#define PG__F(T)                                                                                   \
    do {                                                                                           \
        T *d = p;                                                                                  \
        const T c = (T)v;                                                                          \
        PG__LOOP(n, d[i] = c;);                                                                    \
    } while (0)
    switch (t) {
    case PG_U8:
        memset(p, (uint8_t)v, n);
        break;
    case PG_I8:
        memset(p, (uint8_t)(int8_t)v, n);
        break;
    case PG_U16:
        PG__F(uint16_t);
        break;
    case PG_I16:
        PG__F(int16_t);
        break;
    case PG_U32:
        PG__F(uint32_t);
        break;
    case PG_I32:
        PG__F(int32_t);
        break;
    case PG_F32:
        PG__F(float);
        break;
    default:
        PG__F(double);
        break;
    }
#undef PG__F
}

/* Warps SRC (a tile of the source over any window; only its part inside the
 * source raster is read) onto the output window DWIN, into DST: BANDS
 * planes of DWIN's cells of type DTYPE, which is the source's type, or f64
 * (mosaic). DST is first filled with the buffer's nodata (or 0). */
static int pg__warp_run1(const pg__warp *wp, const pg_tile *src, void *dst, pg_celltype dtype,
                         const pg_window *dwin, bool masks, pg_error *err)
{
    const size_t dcells = (size_t)dwin->w * (size_t)dwin->h;
    pg__fill(dst, dtype, dcells * (size_t)wp->bands, wp->dst_has_nd ? wp->dst_nd : 0.0);
    pg_window v = pg__win_intersect(src->win, (pg_window){0, 0, wp->src_w, wp->src_h});
    if (v.w == 0) return 0;

    const bool i8 = wp->src_type == PG_I8;
    const size_t cs = pg_celltype_size(wp->src_type);
    /* GDAL 3.6 has no signed byte type: i8 cells go through GDAL as u8 with
     * the sign bit flipped (v + 128), an order-preserving affine map that
     * every kernel commutes with (weights sum to 1; rounding and clamping
     * to [0, 255] are those of [-128, 127] shifted). */
    pg_tile *flip = NULL;
    const char *base;
    size_t line;
    if (i8) {
        flip = pg_tile_new(PG_U8, wp->bands, v);
        if (flip == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
        for (int b = 0; b < wp->bands; b++)
            for (int64_t r = 0; r < v.h; r++) {
                const uint8_t *s = pg_tile_cell(src, b, v.y - src->win.y + r, v.x - src->win.x);
                uint8_t *d = pg_tile_cell(flip, b, r, 0);
                PG__LOOP((size_t)v.w, d[i] = s[i] ^ 0x80u;);
            }
        base = flip->data;
        line = (size_t)v.w;
    } else {
        base = pg_tile_cell(src, 0, v.y - src->win.y, v.x - src->win.x);
        line = (size_t)src->win.w * cs;
    }
    const size_t band_bytes = i8 ? (size_t)v.w * (size_t)v.h : (size_t)src->win.w * src->win.h * cs;
    const GDALDataType gsrc = (GDALDataType)pg_celltype_to_gdal(wp->src_type);
    const GDALDataType gdst = dtype == PG_F64 ? GDT_Float64 : gsrc;
    const double shift = i8 ? 128.0 : 0.0;

    int rc = 0;
    GDALDatasetH ds = NULL;
    GDALWarpOptions *wo = NULL;
    GDALWarpOperationH op = NULL;
    void *xf = NULL;
    CPLPushErrorHandler(CPLQuietErrorHandler);
    CPLErrorReset();
    ds = GDALCreate(GDALGetDriverByName("MEM"), "", (int)v.w, (int)v.h, 0, gsrc, NULL);
    for (int b = 0; ds != NULL && b < wp->bands; b++) {
        char o0[64], o1[64], o2[64];
        snprintf(o0, sizeof o0, "DATAPOINTER=%p", (const void *)(base + (size_t)b * band_bytes));
        snprintf(o1, sizeof o1, "PIXELOFFSET=%zu", i8 ? (size_t)1 : cs);
        snprintf(o2, sizeof o2, "LINEOFFSET=%zu", line);
        char *opts[] = {o0, o1, o2, NULL};
        if (GDALAddBand(ds, gsrc, opts) != CE_None) {
            GDALClose(ds);
            ds = NULL;
        }
    }
    if (ds == NULL) {
        rc = pg_error_set(err, PG_EINTERNAL, "cannot wrap a tile as a MEM dataset: %s",
                          CPLGetLastErrorMsg());
        goto done;
    }
    xf = pg__xpool_get((pg__xpool *)&wp->xp);
    if (xf == NULL) {
        rc = pg_error_set(err, PG_EINTERNAL, "cannot create a transformer: %s",
                          CPLGetLastErrorMsg());
        goto done;
    }
    pg__xf_arg xa = {.sig = {'P', 'G', 'X', 'F'},
                     .base = xf,
                     .dx = (double)dwin->x,
                     .dy = (double)dwin->y,
                     .sx = (double)v.x,
                     .sy = (double)v.y,
                     .et = wp->et};
    wo = GDALCreateWarpOptions();
    wo->hSrcDS = ds;
    wo->hDstDS = NULL;
    wo->eResampleAlg = wp->method->alg;
    wo->eWorkingDataType = gdst;
    wo->dfWarpMemoryLimit = 1e12; /* the tile is already in memory */
    wo->nBandCount = wp->bands;
    wo->panSrcBands = CPLMalloc(sizeof(int) * (size_t)wp->bands);
    wo->panDstBands = CPLMalloc(sizeof(int) * (size_t)wp->bands);
    for (int b = 0; b < wp->bands; b++)
        wo->panSrcBands[b] = wo->panDstBands[b] = b + 1;
    wo->pfnTransformer = pg__xf;
    wo->pTransformerArg = &xa;
    if (wp->src_has_nd && masks) {
        wo->padfSrcNoDataReal = CPLMalloc(sizeof(double) * (size_t)wp->bands);
        wo->padfSrcNoDataImag = CPLCalloc(sizeof(double), (size_t)wp->bands);
        for (int b = 0; b < wp->bands; b++)
            wo->padfSrcNoDataReal[b] = wp->src_nd + shift;
    }
    if (wp->dst_has_nd && masks) {
        wo->padfDstNoDataReal = CPLMalloc(sizeof(double) * (size_t)wp->bands);
        wo->padfDstNoDataImag = CPLCalloc(sizeof(double), (size_t)wp->bands);
        for (int b = 0; b < wp->bands; b++)
            wo->padfDstNoDataReal[b] = wp->dst_nd + (gdst == GDT_Float64 ? 0.0 : shift);
    }
    if (i8 && gdst != GDT_Float64)
        pg__fill(dst, PG_U8, dcells * (size_t)wp->bands,
                 wp->dst_has_nd ? wp->dst_nd + shift : shift);
    char num[40];
    snprintf(num, sizeof num, "%.17g", wp->xscale);
    wo->papszWarpOptions = CSLSetNameValue(wo->papszWarpOptions, "XSCALE", num);
    snprintf(num, sizeof num, "%.17g", wp->yscale);
    wo->papszWarpOptions = CSLSetNameValue(wo->papszWarpOptions, "YSCALE", num);
    wo->papszWarpOptions = CSLSetNameValue(wo->papszWarpOptions, "UNIFIED_SRC_NODATA", "NO");
    /* One thread: the job parallelises over tiles, and GDAL's threads would
     * clone our transformer (which it cannot). */
    wo->papszWarpOptions = CSLSetNameValue(wo->papszWarpOptions, "NUM_THREADS", "1");
    op = GDALCreateWarpOperation(wo);
    if (op == NULL) {
        rc = pg_error_set(err, PG_EINTERNAL, "GDAL refused the warp options: %s",
                          CPLGetLastErrorMsg());
        goto done;
    }
    if (GDALWarpRegionToBuffer(op, 0, 0, (int)dwin->w, (int)dwin->h, dst, gdst, 0, 0, (int)v.w,
                               (int)v.h) != CE_None) {
        rc = pg_error_set(err, PG_EIO, "warping failed: %s", CPLGetLastErrorMsg());
        goto done;
    }
    if (i8) {
        if (gdst == GDT_Float64) {
            double *d = dst;
            PG__LOOP(dcells * (size_t)wp->bands, d[i] -= shift;); /* NaN stays NaN */
        } else {
            uint8_t *d = dst;
            PG__LOOP(dcells * (size_t)wp->bands, d[i] ^= 0x80u;);
        }
    }
done:
    if (op != NULL) GDALDestroyWarpOperation(op);
    if (wo != NULL) GDALDestroyWarpOptions(wo);
    if (ds != NULL) GDALClose(ds);
    CPLPopErrorHandler();
    pg__xpool_put((pg__xpool *)&wp->xp, xf);
    pg_tile_unref(&flip);
    return rc;
}

/* Whether a float source's only invalid cells are NaN and METHOD spreads a
 * NaN to every output cell whose kernel touches it (weighted sums): then
 * the warp can go without masks (below). */
static bool pg__nan_only(const pg__warp *wp, pg_celltype dtype)
{
    const GDALResampleAlg a = wp->method->alg;
    return (wp->src_type == PG_F32 || wp->src_type == PG_F64) &&
           (dtype == PG_F32 || dtype == PG_F64) && wp->src_has_nd && isnan(wp->src_nd) &&
           (a == GRA_NearestNeighbour || a == GRA_Bilinear || a == GRA_Cubic ||
            a == GRA_CubicSpline || a == GRA_Lanczos);
}

/* Whether SRC holds a NaN in its part V (inside the source raster). */
static bool pg__has_nan(const pg_tile *src, const pg_window *v)
{
    unsigned bad = 0;
    for (int b = 0; b < src->bands; b++)
        for (int64_t r = 0; r < v->h; r++) {
            const void *row = pg_tile_cell(src, b, v->y - src->win.y + r, v->x - src->win.x);
            if (src->type == PG_F32) {
                const float *restrict f = row;
                for (int64_t i = 0; i < v->w; i++)
                    bad |= (unsigned)(f[i] != f[i]);
            } else {
                const double *restrict f = row;
                for (int64_t i = 0; i < v->w; i++)
                    bad |= (unsigned)(f[i] != f[i]);
            }
        }
    return bad != 0;
}

/* Warps as pg__warp_run1 with masks. GDAL's warper uses its general kernel
 * whenever there are validity masks (source nodata, or a destination nodata
 * value), several times slower than its kernels for mask-free data, which
 * also round differently. For a float source whose nodata is NaN and a
 * method that spreads NaN (pg__nan_only), the mask-free warp gives NaN in
 * exactly the output cells whose kernel touches a NaN source cell and the
 * final value in all others; so the tile is warped without masks, and only
 * when its source window holds a NaN, warped again with masks for the cells
 * that came out NaN. Each cell's value is then a function of its own kernel
 * cells, whatever the tiling (the mask-free value where no NaN is near, the
 * masked one where one is): tiled equals untiled, and NaN-free rasters
 * equal gdalwarp's mask-free warp exactly. */
static int pg__warp_run(const pg__warp *wp, const pg_tile *src, void *dst, pg_celltype dtype,
                        const pg_window *dwin, pg_error *err)
{
    if (!pg__nan_only(wp, dtype)) return pg__warp_run1(wp, src, dst, dtype, dwin, true, err);
    int rc = pg__warp_run1(wp, src, dst, dtype, dwin, false, err);
    pg_window v = pg__win_intersect(src->win, (pg_window){0, 0, wp->src_w, wp->src_h});
    if (rc != 0 || v.w == 0 || !pg__has_nan(src, &v)) return rc;
    pg_tile *m = pg_tile_new(dtype, wp->bands, *dwin);
    if (m == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    rc = pg__warp_run1(wp, src, m->data, dtype, dwin, true, err);
    const size_t n = (size_t)dwin->w * (size_t)dwin->h * (size_t)wp->bands;
    if (rc == 0 && dtype == PG_F32) {
        float *restrict d = dst;
        const float *restrict s = m->data;
        for (size_t i = 0; i < n; i++)
            d[i] = d[i] != d[i] ? s[i] : d[i];
    } else if (rc == 0) {
        double *restrict d = dst;
        const double *restrict s = m->data;
        for (size_t i = 0; i < n; i++)
            d[i] = d[i] != d[i] ? s[i] : d[i];
    }
    pg_tile_unref(&m);
    return rc;
}

/* compute() of a warp: checks the window need() gave (an empty one may
 * mean "past the cap"), then warps. */
static int pg__warp_compute(const pg__warp *wp, const pg_tile *src, void *dst, pg_celltype dtype,
                            const pg_window *dwin, pg_error *err)
{
    pg_window v = pg__win_intersect(src->win, (pg_window){0, 0, wp->src_w, wp->src_h});
    if (v.w == 0) {
        pg_window w;
        double cells;
        if (pg__warp_window(wp, (pg__xpool *)&wp->xp, dwin, &w, &cells) < 0)
            return pg__window_error(dwin, cells, err);
    }
    return pg__warp_run(wp, src, dst, dtype, dwin, err);
}

static void pg__warp_need(const pg__warp *wp, const pg_window *out, pg_window *in)
{
    double cells;
    pg__warp_window(wp, (pg__xpool *)&wp->xp, out, in, &cells);
}

/* ---- type union and conversions (stack, mosaic) ---- */

static int pg__int_bits(pg_celltype t)
{
    return (int)pg_celltype_size(t) * 8;
}

/* The smallest type holding every value of A and B (see TYPE RULES). */
static pg_celltype pg__type_union(pg_celltype a, pg_celltype b)
{
    if (a == b) return a;
    bool fa = pg_celltype_is_float(a), fb = pg_celltype_is_float(b);
    if (fa || fb) {
        if (a == PG_F64 || b == PG_F64) return PG_F64;
        pg_celltype other = fa ? b : a; /* f32 with ... */
        if (pg_celltype_is_float(other)) return PG_F32;
        return pg__int_bits(other) >= 32 ? PG_F64 : PG_F32;
    }
    bool sa = pg_celltype_is_signed(a), sb = pg_celltype_is_signed(b);
    int ba = pg__int_bits(a), bb = pg__int_bits(b);
    if (sa == sb) return ba >= bb ? a : b;
    int ubits = sa ? bb : ba, sbits = sa ? ba : bb;
    int need = ubits * 2 > sbits ? ubits * 2 : sbits;
    return need == 16 ? PG_I16 : need == 32 ? PG_I32 : PG_F64;
}

/* Which source cells are missing, and what the output holds for them. */
typedef struct pg__ndmap {
    bool src_has;   /* the source has a nodata value */
    double src_nd;  /* ... this one (f32 sources: rounded to f32) */
    bool nan_is_nd; /* float source: NaN counts as missing */
    double dst_nd;  /* stack: what a missing cell becomes */
} pg__ndmap;

typedef void (*pg__conv_fn)(void *restrict d, const void *restrict s, size_t n, const pg__ndmap *m);

/* stack: d = missing(s) ? dst_nd : s.  mosaic: if (!missing(s)) d = s. The
 * conversions are all exact (the output type is a union), except for pairs
 * the type rules never ask for (generated for table completeness). */
#define PG__CONV_PAIR(SN, ST, DN, DT)                                                              \
    static void pg__cv_##SN##_##DN(void *restrict d_, const void *restrict s_, size_t n,           \
                                   const pg__ndmap *m)                                             \
    {                                                                                              \
        DT *restrict d = d_;                                                                       \
        const ST *restrict s = s_;                                                                 \
        const DT dnd = (DT)m->dst_nd;                                                              \
        if (m->src_has) {                                                                          \
            const ST snd = (ST)m->src_nd;                                                          \
            if (m->nan_is_nd)                                                                      \
                PG__LOOP(n, const ST v = s[i]; d[i] = (v == snd || v != v) ? dnd : (DT)v;);        \
            else                                                                                   \
                PG__LOOP(n, const ST v = s[i]; d[i] = v == snd ? dnd : (DT)v;);                    \
        } else if (m->nan_is_nd) {                                                                 \
            PG__LOOP(n, const ST v = s[i]; d[i] = v != v ? dnd : (DT)v;);                          \
        } else {                                                                                   \
            PG__LOOP(n, d[i] = (DT)s[i];);                                                         \
        }                                                                                          \
    }                                                                                              \
    static void pg__ov_##SN##_##DN(void *restrict d_, const void *restrict s_, size_t n,           \
                                   const pg__ndmap *m)                                             \
    {                                                                                              \
        DT *restrict d = d_;                                                                       \
        const ST *restrict s = s_;                                                                 \
        if (m->src_has) {                                                                          \
            const ST snd = (ST)m->src_nd;                                                          \
            PG__LOOP(n, const ST v = s[i]; d[i] = (v == snd || v != v) ? d[i] : (DT)v;);           \
        } else {                                                                                   \
            PG__LOOP(n, const ST v = s[i]; d[i] = v != v ? d[i] : (DT)v;);                         \
        }                                                                                          \
    }

#define PG__DSTS(SN, ST)                                                                           \
    PG__CONV_PAIR(SN, ST, u8, uint8_t)                                                             \
    PG__CONV_PAIR(SN, ST, i8, int8_t)                                                              \
    PG__CONV_PAIR(SN, ST, u16, uint16_t)                                                           \
    PG__CONV_PAIR(SN, ST, i16, int16_t)                                                            \
    PG__CONV_PAIR(SN, ST, u32, uint32_t)                                                           \
    PG__CONV_PAIR(SN, ST, i32, int32_t)                                                            \
    PG__CONV_PAIR(SN, ST, f32, float)                                                              \
    PG__CONV_PAIR(SN, ST, f64, double)

PG__DSTS(u8, uint8_t)
PG__DSTS(i8, int8_t)
PG__DSTS(u16, uint16_t)
PG__DSTS(i16, int16_t)
PG__DSTS(u32, uint32_t)
PG__DSTS(i32, int32_t)
PG__DSTS(f32, float)
PG__DSTS(f64, double)

#define PG__ROW(P, SN)                                                                             \
    {                                                                                              \
        P##_##SN##_u8, P##_##SN##_i8, P##_##SN##_u16, P##_##SN##_i16, P##_##SN##_u32,              \
            P##_##SN##_i32, P##_##SN##_f32, P##_##SN##_f64                                         \
    }
#define PG__TABLE(P)                                                                               \
    {                                                                                              \
        PG__ROW(P, u8), PG__ROW(P, i8), PG__ROW(P, u16), PG__ROW(P, i16), PG__ROW(P, u32),         \
            PG__ROW(P, i32), PG__ROW(P, f32), PG__ROW(P, f64)                                      \
    }

static const pg__conv_fn pg__conv[PG_CELLTYPE_COUNT][PG_CELLTYPE_COUNT] = PG__TABLE(pg__cv);
static const pg__conv_fn pg__overlay[PG_CELLTYPE_COUNT][PG_CELLTYPE_COUNT] = PG__TABLE(pg__ov);

/* Overlays warped f64 cells (NaN: nothing landed) onto D, rounding to
 * nearest (halves up, as GDAL's warper stores integers) and clamping. */
#define PG__OVF(DN, DT, LO, HI)                                                                    \
    static void pg__ovf_##DN(void *restrict d_, const double *restrict s, size_t n)                \
    {                                                                                              \
        DT *restrict d = d_;                                                                       \
        PG__LOOP(n, const double v = s[i]; const double f = floor((v != v ? 0.0 : v) + 0.5);       \
                 const double r = f < (LO)   ? (LO)                                                \
                                  : f > (HI) ? (HI)                                                \
                                             : f;                                                  \
                 d[i] = v != v ? d[i] : (DT)r;);                                                   \
    }
PG__OVF(u8, uint8_t, 0.0, 255.0)
PG__OVF(i8, int8_t, -128.0, 127.0)
PG__OVF(u16, uint16_t, 0.0, 65535.0)
PG__OVF(i16, int16_t, -32768.0, 32767.0)
PG__OVF(u32, uint32_t, 0.0, 4294967295.0)
PG__OVF(i32, int32_t, -2147483648.0, 2147483647.0)
static void pg__ovf_f32(void *restrict d_, const double *restrict s, size_t n)
{
    float *restrict d = d_;
    PG__LOOP(n, const double v = s[i]; d[i] = v != v ? d[i] : (float)v;);
}
static void pg__ovf_f64(void *restrict d_, const double *restrict s, size_t n)
{
    double *restrict d = d_;
    PG__LOOP(n, const double v = s[i]; d[i] = v != v ? d[i] : v;);
}
static void (*const pg__ovf[PG_CELLTYPE_COUNT])(void *restrict, const double *restrict, size_t) = {
    pg__ovf_u8,  pg__ovf_i8,  pg__ovf_u16, pg__ovf_i16,
    pg__ovf_u32, pg__ovf_i32, pg__ovf_f32, pg__ovf_f64};

/* ---- transform.crop ---- */

typedef struct pg__crop_state {
    int64_t x0, y0;
} pg__crop_state;

/* The extent [xmin, ymin, xmax, ymax] (in CRS_DEF, or the raster's CRS) as
 * a pixel window of RI, snapped outward to its grid and clipped to it. */
static int pg__extent_window(const pg_node *n, const pg_raster_info *ri, const double *e,
                             const char *crs_def, pg_window *w, pg_error *err)
{
    if (!ri->has_geotransform)
        return pg_error_set(err, PG_EPARAM,
                            "param 'extent' needs a raster with a geotransform (use 'window')");
    if (!(e[0] < e[2] && e[1] < e[3]))
        return pg_error_set(err, PG_EPARAM,
                            "param 'extent' must be [xmin, ymin, xmax, ymax] with xmin < xmax "
                            "and ymin < ymax");
    double b[4] = {e[0], e[1], e[2], e[3]};
    if (crs_def != NULL) {
        if (!pg__has_crs(ri))
            return pg_error_set(err, PG_EPARAM,
                                "param 'crs' given but the raster has no CRS to transform to");
        OGRSpatialReferenceH from, to = OSRNewSpatialReference(NULL);
        int rc = pg_crs_parse("crs", crs_def, &from, err);
        if (rc) {
            OSRDestroySpatialReference(to);
            return rc;
        }
        char *wkt = ri->crs_wkt;
        CPLPushErrorHandler(CPLQuietErrorHandler);
        CPLErrorReset();
        OGRCoordinateTransformationH ct = NULL;
        if (OSRImportFromWkt(to, &wkt) == OGRERR_NONE) {
            OSRSetAxisMappingStrategy(to, OAMS_TRADITIONAL_GIS_ORDER);
            ct = OCTNewCoordinateTransformation(from, to);
        }
        bool ok = ct != NULL && OCTTransformBounds(ct, e[0], e[1], e[2], e[3], &b[0], &b[1], &b[2],
                                                   &b[3], 21) != 0;
        char msg[160];
        pg_strlcpy(msg, CPLGetLastErrorMsg(), sizeof msg);
        CPLPopErrorHandler();
        if (ct != NULL) OCTDestroyCoordinateTransformation(ct);
        OSRDestroySpatialReference(from);
        OSRDestroySpatialReference(to);
        if (!ok || !(isfinite(b[0]) && isfinite(b[1]) && isfinite(b[2]) && isfinite(b[3])))
            return pg_error_set(err, PG_EPARAM,
                                "param 'extent' cannot be transformed from 'crs' to the raster's "
                                "CRS%s%s",
                                msg[0] ? ": " : "", msg);
    }
    (void)n;
    double inv[6];
    if (!GDALInvGeoTransform((double *)ri->geotransform, inv))
        return pg_error_set(err, PG_EPARAM, "the raster's geotransform is not invertible");
    double mnx = INFINITY, mny = INFINITY, mxx = -INFINITY, mxy = -INFINITY;
    for (int c = 0; c < 4; c++) {
        double X = b[(c & 1) ? 2 : 0], Y = b[(c & 2) ? 3 : 1];
        double px = inv[0] + X * inv[1] + Y * inv[2], py = inv[3] + X * inv[4] + Y * inv[5];
        mnx = fmin(mnx, px), mxx = fmax(mxx, px);
        mny = fmin(mny, py), mxy = fmax(mxy, py);
    }
    /* Outward to whole cells; 1e-6 of a cell of slack so that an extent on
     * the grid lines (up to rounding) does not grow by a cell. */
    const double lim = 1e15, eps = 1e-6;
    double x0 = floor(fmax(-lim, mnx) + eps), x1 = ceil(fmin(lim, mxx) - eps);
    double y0 = floor(fmax(-lim, mny) + eps), y1 = ceil(fmin(lim, mxy) - eps);
    pg_window c = pg__win_intersect(
        (pg_window){(int64_t)x0, (int64_t)y0, (int64_t)(x1 - x0), (int64_t)(y1 - y0)},
        (pg_window){0, 0, ri->width, ri->height});
    if (c.w == 0)
        return pg_error_set(err, PG_EPARAM,
                            "param 'extent' [%.17g, %.17g, %.17g, %.17g] does not overlap the "
                            "raster",
                            e[0], e[1], e[2], e[3]);
    *w = c;
    return 0;
}

static int pg__crop_plan(pg_node *n, const pg_plan_env *env, pg_error *err)
{
    (void)env;
    const pg_raster_info *src = &n->args[0].ref->info;
    json_t *jw = json_object_get(n->params, "window");
    json_t *je = json_object_get(n->params, "extent");
    bool hw = jw != NULL && !json_is_null(jw), he = je != NULL && !json_is_null(je);
    if (hw == he)
        return pg_error_set(err, PG_EPARAM, "give exactly one of params 'window' and 'extent'");
    if (hw && pg_param_has(n, "crs"))
        return pg_error_set(err, PG_EPARAM, "param 'crs' goes with 'extent', not 'window'");
    pg_window w = {0, 0, 0, 0};
    if (hw) {
        json_int_t v[4];
        bool ok = json_is_array(jw) && json_array_size(jw) == 4;
        for (size_t i = 0; ok && i < 4; i++) {
            json_t *x = json_array_get(jw, i);
            ok = json_is_integer(x) ||
                 (json_is_real(x) && json_real_value(x) == floor(json_real_value(x)) &&
                  fabs(json_real_value(x)) < 9e15);
            if (ok)
                v[i] = json_is_integer(x) ? json_integer_value(x) : (json_int_t)json_real_value(x);
        }
        if (!ok)
            return pg_error_set(err, PG_EPARAM,
                                "param 'window' must be [x, y, width, height], 4 integers");
        w = (pg_window){v[0], v[1], v[2], v[3]};
        if (w.x < 0 || w.y < 0 || w.w < 1 || w.h < 1 || w.x > src->width - w.w ||
            w.y > src->height - w.h)
            return pg_error_set(err, PG_EPARAM,
                                "param 'window' [%lld, %lld, %lld, %lld] must lie inside the "
                                "%lld x %lld raster, with width and height >= 1",
                                (long long)w.x, (long long)w.y, (long long)w.w, (long long)w.h,
                                (long long)src->width, (long long)src->height);
    } else {
        double e[4];
        if (!pg__json_numbers(je, 4, e))
            return pg_error_set(err, PG_EPARAM,
                                "param 'extent' must be [xmin, ymin, xmax, ymax], 4 numbers");
        int rc = pg__extent_window(n, src, e, pg_param_str(n, "crs"), &w, err);
        if (rc) return rc;
    }
    pg__crop_state *st = calloc(1, sizeof *st);
    if (st == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    pg_raster_info_clear(&n->info);
    if (pg_raster_info_copy(&n->info, src) != 0) {
        free(st);
        return pg_error_set(err, PG_ENOMEM, "out of memory");
    }
    st->x0 = w.x;
    st->y0 = w.y;
    n->state = st;
    pg_raster_info *ri = &n->info;
    ri->width = w.w;
    ri->height = w.h;
    if (ri->has_geotransform) {
        const double *g = src->geotransform;
        ri->geotransform[0] = g[0] + (double)w.x * g[1] + (double)w.y * g[2];
        ri->geotransform[3] = g[3] + (double)w.x * g[4] + (double)w.y * g[5];
    }
    /* The source's blocks stay blocks of the crop only if it starts on a
     * block boundary. */
    if (src->block_w > 0 && src->block_h > 0 && w.x % src->block_w == 0 &&
        w.y % src->block_h == 0) {
        ri->block_w = src->block_w < w.w ? src->block_w : w.w;
        ri->block_h = src->block_h < w.h ? src->block_h : w.h;
        if (src->block_w == src->width) ri->block_w = w.w; /* strips stay strips */
    } else {
        ri->block_w = ri->block_h = 0;
    }
    return 0;
}

static void pg__crop_need(const pg_node *n, int i, const pg_window *out, pg_window *in)
{
    (void)i;
    const pg__crop_state *st = n->state;
    *in = *out;
    in->x += st->x0;
    in->y += st->y0;
}

static int pg__crop_compute(const pg_node *n, pg_tile *out, pg_tile *const *in, pg_error *err)
{
    (void)n;
    if (in[0]->nbytes != out->nbytes || in[0]->type != out->type)
        return pg_error_set(err, PG_EINTERNAL, "transform.crop: tile shapes differ");
    memcpy(out->data, in[0]->data, out->nbytes); /* the same cells, shifted */
    return 0;
}

/* ---- transform.resample and transform.reproject ---- */

typedef struct pg__warp_state {
    pg__warp w;
} pg__warp_state;

static void pg__warp_state_free(pg_node *n)
{
    pg__warp_state *st = n->state;
    if (st == NULL) return;
    pg__warp_free(&st->w);
    free(st);
    n->state = NULL;
}

static void pg__warp_op_need(const pg_node *n, int i, const pg_window *out, pg_window *in)
{
    (void)i;
    const pg__warp_state *st = n->state;
    pg__warp_need(&st->w, out, in);
}

static int pg__warp_op_compute(const pg_node *n, pg_tile *out, pg_tile *const *in, pg_error *err)
{
    const pg__warp_state *st = n->state;
    return pg__warp_compute(&st->w, in[0], out->data, out->type, &out->win, err);
}

/* Finishes a warping op's plan: n->info (grid set by the caller in RI),
 * nodata, the warp. Takes RI->crs_wkt (malloc'd or NULL). */
static int pg__warp_op_finish(pg_node *n, pg_raster_info *ri, const char *src_wkt,
                              const double *src_gt, const pg__method *m, const pg_plan_env *env,
                              pg_error *err)
{
    const pg_raster_info *src = &n->args[0].ref->info;
    ri->bands = src->bands;
    ri->type = src->type;
    ri->block_w = ri->block_h = 0; /* no natural block: the job's tile size */
    int rc = pg__out_nodata(n, ri->type, src->has_nodata, src->nodata, ri, err);
    pg__warp_state *st = rc == 0 ? calloc(1, sizeof *st) : NULL;
    if (rc == 0 && st == NULL) rc = pg_error_set(err, PG_ENOMEM, "out of memory");
    if (rc == 0) {
        n->state = st;
        double dst_gt[6] = {0, 1, 0, 0, 0, 1};
        if (ri->has_geotransform) memcpy(dst_gt, ri->geotransform, sizeof dst_gt);
        rc = pg__warp_init(&st->w, src, src_gt, src_wkt, dst_gt, src_wkt ? ri->crs_wkt : NULL,
                           ri->width, ri->height, m, ri->has_nodata, ri->nodata, env, err);
    }
    if (rc == 0) {
        pg_raster_info_clear(&n->info);
        if (pg_raster_info_copy(&n->info, ri) != 0)
            rc = pg_error_set(err, PG_ENOMEM, "out of memory");
    }
    free(ri->crs_wkt);
    ri->crs_wkt = NULL;
    return rc;
}

static int pg__resample_plan(pg_node *n, const pg_plan_env *env, pg_error *err)
{
    const pg_raster_info *src = &n->args[0].ref->info;
    const pg__method *m = NULL;
    int rc = pg__method_parse(n, &m, err);
    if (rc) return rc;
    double cx = 0, cy = 0;
    int has_cell = pg__cell_size(n, &cx, &cy, err);
    if (has_cell < 0) return has_cell;
    bool hw = pg_param_has(n, "width"), hh = pg_param_has(n, "height");
    if (has_cell == 0 && (hw || hh))
        return pg_error_set(err, PG_EPARAM,
                            "give either 'cell_size' or 'width'/'height', not both");
    if (has_cell != 0 && !hw && !hh)
        return pg_error_set(err, PG_EPARAM, "give 'width' and/or 'height', or 'cell_size'");
    const double *g = src->geotransform;
    int64_t w, h;
    if (has_cell == 0) {
        if (!src->has_geotransform)
            return pg_error_set(err, PG_EPARAM,
                                "param 'cell_size' needs a raster with a geotransform (use "
                                "'width'/'height')");
        if (g[2] != 0 || g[4] != 0)
            return pg_error_set(err, PG_EPARAM,
                                "param 'cell_size' needs a north-up raster (use 'width'/'height')");
        /* As gdalwarp -tr: whole cells from the top-left corner, rounded. */
        double fw = floor((double)src->width * fabs(g[1]) / cx + 0.5);
        double fh = floor((double)src->height * fabs(g[5]) / cy + 0.5);
        if (!(fw >= 1 && fh >= 1 && fw < 1e9 && fh < 1e9))
            return pg_error_set(err, PG_EPARAM,
                                "param 'cell_size' gives a raster of %.0f x %.0f cells", fw, fh);
        w = (int64_t)fw;
        h = (int64_t)fh;
    } else {
        w = hw ? pg_param_int(n, "width") : 0;
        h = hh ? pg_param_int(n, "height") : 0;
        if ((hw && w < 1) || (hh && h < 1))
            return pg_error_set(err, PG_EPARAM, "params 'width' and 'height' must be >= 1");
        /* Only one given: keep the aspect ratio. */
        if (!hw) w = (int64_t)fmax(1.0, floor((double)src->width * h / src->height + 0.5));
        if (!hh) h = (int64_t)fmax(1.0, floor((double)src->height * w / src->width + 0.5));
    }
    pg_raster_info ri;
    memset(&ri, 0, sizeof ri);
    ri.width = w;
    ri.height = h;
    double src_gt[6] = {0, 1, 0, 0, 0, 1};
    if (src->has_geotransform) memcpy(src_gt, g, sizeof src_gt);
    ri.has_geotransform = src->has_geotransform;
    memcpy(ri.geotransform, src_gt, sizeof src_gt);
    if (has_cell == 0) {
        ri.geotransform[1] = copysign(cx, g[1]);
        ri.geotransform[5] = copysign(cy, g[5]);
    } else {
        /* The extent over the cell count (as gdalwarp -ts computes it). */
        const double W = (double)src->width, H = (double)src->height;
        ri.geotransform[1] = src_gt[1] * W / (double)w;
        ri.geotransform[4] = src_gt[4] * W / (double)w;
        ri.geotransform[2] = src_gt[2] * H / (double)h;
        ri.geotransform[5] = src_gt[5] * H / (double)h;
    }
    if (pg__has_crs(src) && (ri.crs_wkt = strdup(src->crs_wkt)) == NULL)
        return pg_error_set(err, PG_ENOMEM, "out of memory");
    /* Same CRS: no reprojection, an affine map of pixel coordinates. */
    return pg__warp_op_finish(n, &ri, NULL, src_gt, m, env, err);
}

static int pg__reproject_plan(pg_node *n, const pg_plan_env *env, pg_error *err)
{
    const pg_raster_info *src = &n->args[0].ref->info;
    if (!src->has_geotransform || !pg__has_crs(src))
        return pg_error_set(err, PG_EPARAM,
                            "cannot reproject a raster without a geotransform and a CRS");
    const pg__method *m = NULL;
    int rc = pg__method_parse(n, &m, err);
    if (rc) return rc;
    double cx = 0, cy = 0;
    int has_cell = pg__cell_size(n, &cx, &cy, err);
    if (has_cell < 0) return has_cell;
    double ext[4];
    json_t *je = json_object_get(n->params, "extent");
    bool has_ext = je != NULL && !json_is_null(je);
    if (has_ext && !(pg__json_numbers(je, 4, ext) && ext[0] < ext[2] && ext[1] < ext[3]))
        return pg_error_set(err, PG_EPARAM,
                            "param 'extent' must be [xmin, ymin, xmax, ymax] with xmin < xmax "
                            "and ymin < ymax");
    pg_raster_info ri;
    memset(&ri, 0, sizeof ri);
    if ((rc = pg_crs_param_wkt("crs", pg_param_str(n, "crs"), &ri.crs_wkt, err))) return rc;

    /* The grid gdalwarp would choose (GDALSuggestedWarpOutput2 over a
     * band-less MEM dataset of the source's size), then -tr / -te as
     * gdalwarp applies them. */
    double gt[6];
    int sw = 0, sh = 0;
    CPLPushErrorHandler(CPLQuietErrorHandler);
    CPLErrorReset();
    void *t = GDALCreateGenImgProjTransformer3(src->crs_wkt, src->geotransform, ri.crs_wkt, NULL);
    GDALDatasetH ds = GDALCreate(GDALGetDriverByName("MEM"), "", (int)src->width, (int)src->height,
                                 0, GDT_Byte, NULL);
    CPLErr ce = CE_Failure;
    if (t != NULL && ds != NULL) {
        double e4[4];
        ce = GDALSuggestedWarpOutput2(ds, GDALGenImgProjTransform, t, gt, &sw, &sh, e4, 0);
    }
    char msg[160];
    pg_strlcpy(msg, CPLGetLastErrorMsg(), sizeof msg);
    if (t != NULL) GDALDestroyGenImgProjTransformer(t);
    if (ds != NULL) GDALClose(ds);
    CPLPopErrorHandler();
    if (t == NULL || ce != CE_None || sw < 1 || sh < 1) {
        free(ri.crs_wkt);
        return pg_error_set(err, PG_EPARAM, "cannot reproject the raster to 'crs'%s%s",
                            msg[0] ? ": " : "", msg);
    }
    double minx = gt[0], maxy = gt[3], maxx = gt[0] + gt[1] * sw, miny = gt[3] + gt[5] * sh;
    if (has_ext) minx = ext[0], miny = ext[1], maxx = ext[2], maxy = ext[3];
    double fw, fh, rx, ry;
    if (has_cell == 0) {
        rx = cx, ry = cy;
        fw = floor((maxx - minx + rx / 2.0) / rx);
        fh = floor((maxy - miny + ry / 2.0) / ry);
    } else if (has_ext) {
        fw = floor((maxx - minx + gt[1] / 2.0) / gt[1]);
        fh = floor((maxy - miny + fabs(gt[5]) / 2.0) / fabs(gt[5]));
        rx = fw >= 1 ? (maxx - minx) / fw : 0;
        ry = fh >= 1 ? (maxy - miny) / fh : 0;
    } else {
        fw = sw, fh = sh, rx = gt[1], ry = -gt[5];
    }
    if (!(fw >= 1 && fh >= 1 && fw < 1e9 && fh < 1e9)) {
        free(ri.crs_wkt);
        return pg_error_set(err, PG_EPARAM, "the output would be %.0f x %.0f cells", fw, fh);
    }
    ri.width = (int64_t)fw;
    ri.height = (int64_t)fh;
    ri.has_geotransform = true;
    double ogt[6] = {minx, rx, 0, maxy, 0, -ry};
    memcpy(ri.geotransform, ogt, sizeof ogt);
    rc = pg__warp_op_finish(n, &ri, src->crs_wkt, src->geotransform, m, env, err);
    if (rc == 0) ((pg__warp_state *)n->state)->w.et = pg_param_num(n, "error_threshold");
    return rc;
}

/* ---- transform.mosaic ---- */

typedef struct pg__mosaic_arg {
    bool aligned;
    int64_t ax, ay; /* aligned: the arg's cell (0, 0) is output cell (ax, ay) */
    pg_celltype type;
    pg__ndmap nd;
    pg__warp w; /* not aligned */
} pg__mosaic_arg;

typedef struct pg__mosaic_state {
    int nargs;
    pg__mosaic_arg a[];
} pg__mosaic_state;

static void pg__mosaic_free(pg_node *n)
{
    pg__mosaic_state *st = n->state;
    if (st == NULL) return;
    for (int i = 0; i < st->nargs; i++)
        pg__warp_free(&st->a[i].w);
    free(st);
    n->state = NULL;
}

static int pg__mosaic_plan(pg_node *n, const pg_plan_env *env, pg_error *err)
{
    const pg__method *m = NULL;
    int rc = pg__method_parse(n, &m, err);
    if (rc) return rc;
    const pg_raster_info *r0 = &n->args[0].ref->info;
    pg_celltype type = r0->type;
    bool first_nd = false;
    double nd0 = 0;
    for (int i = 0; i < n->nargs; i++) {
        const pg_raster_info *r = &n->args[i].ref->info;
        const double *g = r->geotransform;
        if (!r->has_geotransform || g[2] != 0 || g[4] != 0)
            return pg_error_set(err, PG_EGRID,
                                "arg %d: transform.mosaic needs north-up rasters with a "
                                "geotransform",
                                i + 1);
        if (r->bands != r0->bands)
            return pg_error_set(err, PG_EGRID, "arg %d has %d bands, arg 1 has %d", i + 1, r->bands,
                                r0->bands);
        if (!pg__same_crs(r->crs_wkt, r0->crs_wkt))
            return pg_error_set(err, PG_EGRID,
                                "arg %d is in another CRS than arg 1 (reproject it first with "
                                "transform.reproject)",
                                i + 1);
        type = pg__type_union(type, r->type);
        if (r->has_nodata && !first_nd) first_nd = true, nd0 = r->nodata;
    }
    /* The union of the extents in arg 1's pixel space, outward to whole
     * cells of its grid. */
    const double *g0 = r0->geotransform;
    double mnx = INFINITY, mny = INFINITY, mxx = -INFINITY, mxy = -INFINITY;
    for (int i = 0; i < n->nargs; i++) {
        const pg_raster_info *r = &n->args[i].ref->info;
        const double *g = r->geotransform;
        for (int c = 0; c < 4; c++) {
            double X = g[0] + ((c & 1) ? (double)r->width : 0.0) * g[1];
            double Y = g[3] + ((c & 2) ? (double)r->height : 0.0) * g[5];
            double px = (X - g0[0]) / g0[1], py = (Y - g0[3]) / g0[5];
            mnx = fmin(mnx, px), mxx = fmax(mxx, px);
            mny = fmin(mny, py), mxy = fmax(mxy, py);
        }
    }
    const double eps = 1e-6, lim = 1e15;
    double x0 = floor(fmax(-lim, mnx) + eps), x1 = ceil(fmin(lim, mxx) - eps);
    double y0 = floor(fmax(-lim, mny) + eps), y1 = ceil(fmin(lim, mxy) - eps);
    if (!(x1 - x0 >= 1 && y1 - y0 >= 1 && x1 - x0 < 4e9 && y1 - y0 < 4e9))
        return pg_error_set(err, PG_EPARAM, "the union of the extents is %.0f x %.0f cells",
                            x1 - x0, y1 - y0);
    pg_raster_info ri;
    memset(&ri, 0, sizeof ri);
    ri.width = (int64_t)(x1 - x0);
    ri.height = (int64_t)(y1 - y0);
    ri.bands = r0->bands;
    ri.type = type;
    ri.has_geotransform = true;
    memcpy(ri.geotransform, g0, sizeof ri.geotransform);
    ri.geotransform[0] = g0[0] + x0 * g0[1];
    ri.geotransform[3] = g0[3] + y0 * g0[5];
    ri.crs_wkt = r0->crs_wkt; /* borrowed until the copy below */
    if ((rc = pg__out_nodata(n, type, first_nd, nd0, &ri, err))) return rc;

    pg__mosaic_state *st = calloc(1, sizeof *st + sizeof st->a[0] * (size_t)n->nargs);
    if (st == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    st->nargs = n->nargs;
    n->state = st;
    for (int i = 0; i < n->nargs; i++) {
        const pg_raster_info *r = &n->args[i].ref->info;
        const double *g = r->geotransform;
        pg__mosaic_arg *a = &st->a[i];
        a->type = r->type;
        a->nd.src_has = r->has_nodata;
        a->nd.src_nd = r->type == PG_F32 ? (double)(float)r->nodata : r->nodata;
        a->nd.nan_is_nd = pg_celltype_is_float(r->type);
        double px = (g[0] - ri.geotransform[0]) / g0[1], py = (g[3] - ri.geotransform[3]) / g0[5];
        a->aligned = fabs(g[1] - g0[1]) <= 1e-9 * fabs(g0[1]) &&
                     fabs(g[5] - g0[5]) <= 1e-9 * fabs(g0[5]) && fabs(px - round(px)) <= 1e-6 &&
                     fabs(py - round(py)) <= 1e-6;
        if (a->aligned) {
            a->ax = (int64_t)round(px);
            a->ay = (int64_t)round(py);
            continue;
        }
        /* Another grid: GDAL's warper, into an f64 buffer where NaN marks
         * the cells nothing landed on. */
        rc = pg__warp_init(&a->w, r, g, NULL, ri.geotransform, NULL, ri.width, ri.height, m, true,
                           NAN, env, err);
        if (rc) {
            char msg[sizeof err->message];
            pg_strlcpy(msg, err->message, sizeof msg);
            return pg_error_set(err, rc, "arg %d: %s", i + 1, msg);
        }
    }
    pg_raster_info_clear(&n->info);
    if (pg_raster_info_copy(&n->info, &ri) != 0)
        return pg_error_set(err, PG_ENOMEM, "out of memory");
    return 0;
}

static void pg__mosaic_need(const pg_node *n, int i, const pg_window *out, pg_window *in)
{
    const pg__mosaic_state *st = n->state;
    const pg__mosaic_arg *a = &st->a[i];
    if (!a->aligned) {
        pg__warp_need(&a->w, out, in);
        return;
    }
    const pg_raster_info *r = &n->args[i].ref->info;
    pg_window w = {out->x - a->ax, out->y - a->ay, out->w, out->h};
    pg_window c = pg__win_intersect(w, (pg_window){0, 0, r->width, r->height});
    *in = c.w > 0 ? c : pg__nothing;
}

static int pg__mosaic_compute(const pg_node *n, pg_tile *out, pg_tile *const *in, pg_error *err)
{
    const pg__mosaic_state *st = n->state;
    const pg_raster_info *ri = &n->info;
    const size_t ocs = pg_celltype_size(out->type);
    const size_t ocells = (size_t)out->win.w * (size_t)out->win.h;
    pg__fill(out->data, out->type, ocells * (size_t)out->bands, ri->has_nodata ? ri->nodata : 0.0);
    pg_tile *scratch = NULL;
    for (int i = 0; i < st->nargs; i++) {
        const pg__mosaic_arg *a = &st->a[i];
        const pg_tile *t = in[i];
        if (!a->aligned) {
            if (scratch == NULL) scratch = pg_tile_new(PG_F64, out->bands, out->win);
            if (scratch == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
            int rc = pg__warp_compute(&a->w, t, scratch->data, PG_F64, &out->win, err);
            if (rc) {
                pg_tile_unref(&scratch);
                return rc;
            }
            for (int b = 0; b < out->bands; b++)
                pg__ovf[out->type]((char *)out->data + (size_t)b * ocells * ocs,
                                   (const double *)scratch->data + (size_t)b * ocells, ocells);
            continue;
        }
        /* Aligned: the arg's valid cells inside this tile, converted. */
        const pg_raster_info *r = &n->args[i].ref->info;
        pg_window ow = {t->win.x + a->ax, t->win.y + a->ay, t->win.w, t->win.h};
        pg_window c = pg__win_intersect(ow, out->win);
        c = pg__win_intersect(c, (pg_window){a->ax, a->ay, r->width, r->height});
        if (c.w == 0) continue;
        pg__conv_fn f = pg__overlay[a->type][out->type];
        for (int b = 0; b < out->bands; b++)
            for (int64_t y = c.y; y < c.y + c.h; y++)
                f(pg_tile_cell(out, b, y - out->win.y, c.x - out->win.x),
                  pg_tile_cell(t, b, y - ow.y, c.x - ow.x), (size_t)c.w, &a->nd);
    }
    pg_tile_unref(&scratch);
    return 0;
}

/* ---- transform.bands ---- */

typedef struct pg__bands_state {
    int n;
    int band[]; /* 0-based source bands */
} pg__bands_state;

static int pg__bands_plan(pg_node *n, const pg_plan_env *env, pg_error *err)
{
    (void)env;
    const pg_raster_info *src = &n->args[0].ref->info;
    json_t *b = json_object_get(n->params, "bands");
    size_t nb = json_is_array(b) ? json_array_size(b) : json_is_integer(b) ? 1 : 0;
    if (nb == 0 || nb > 65536)
        return pg_error_set(err, PG_EPARAM,
                            "param 'bands' must be a band number or a non-empty list of them");
    pg__bands_state *st = malloc(sizeof *st + sizeof(int) * nb);
    if (st == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    st->n = (int)nb;
    for (size_t i = 0; i < nb; i++) {
        json_t *v = json_is_array(b) ? json_array_get(b, i) : b;
        json_int_t k = json_is_integer(v) ? json_integer_value(v) : 0;
        if (k < 1 || k > src->bands) {
            free(st);
            return pg_error_set(err, PG_EPARAM,
                                "param 'bands': entry %zu is not a band number between 1 and %d",
                                i + 1, src->bands);
        }
        st->band[i] = (int)k - 1;
    }
    pg_raster_info_clear(&n->info);
    if (pg_raster_info_copy(&n->info, src) != 0) {
        free(st);
        return pg_error_set(err, PG_ENOMEM, "out of memory");
    }
    n->info.bands = st->n;
    n->state = st;
    return 0;
}

static int pg__bands_compute(const pg_node *n, pg_tile *out, pg_tile *const *in, pg_error *err)
{
    (void)err;
    const pg__bands_state *st = n->state;
    const size_t plane = (size_t)out->win.w * (size_t)out->win.h * pg_celltype_size(out->type);
    for (int b = 0; b < st->n; b++)
        memcpy((char *)out->data + (size_t)b * plane,
               (const char *)in[0]->data + (size_t)st->band[b] * plane, plane);
    return 0;
}

/* ---- transform.stack ---- */

static int pg__stack_plan(pg_node *n, const pg_plan_env *env, pg_error *err)
{
    (void)env;
    const pg_raster_info *r0 = &n->args[0].ref->info;
    pg_celltype type = r0->type;
    int64_t bands = 0;
    bool has_nd = false;
    double nd = 0;
    for (int i = 0; i < n->nargs; i++) {
        const pg_raster_info *r = &n->args[i].ref->info;
        if (!pg_raster_same_grid(r, r0))
            return pg_error_set(err, PG_EGRID,
                                "arg %d is not on arg 1's grid (size, geotransform and CRS must "
                                "be the same)",
                                i + 1);
        type = pg__type_union(type, r->type);
        bands += r->bands;
        if (r->has_nodata && !has_nd) has_nd = true, nd = r->nodata;
    }
    if (bands > 65536)
        return pg_error_set(err, PG_EPARAM, "the stack would have %lld bands (at most 65536)",
                            (long long)bands);
    pg_raster_info_clear(&n->info);
    if (pg_raster_info_copy(&n->info, r0) != 0)
        return pg_error_set(err, PG_ENOMEM, "out of memory");
    n->info.bands = (int)bands;
    n->info.type = type;
    n->info.has_nodata = has_nd;
    n->info.nodata = has_nd ? nd : 0;
    return 0;
}

static int pg__stack_compute(const pg_node *n, pg_tile *out, pg_tile *const *in, pg_error *err)
{
    (void)err;
    const pg_raster_info *ri = &n->info;
    const size_t cells = (size_t)out->win.w * (size_t)out->win.h;
    const size_t ocs = pg_celltype_size(out->type);
    char *d = out->data;
    for (int i = 0; i < n->nargs; i++) {
        const pg_raster_info *r = &n->args[i].ref->info;
        pg__ndmap m = {.src_has = r->has_nodata,
                       .src_nd = r->type == PG_F32 ? (double)(float)r->nodata : r->nodata,
                       .nan_is_nd = ri->has_nodata && pg_celltype_is_float(r->type),
                       .dst_nd = ri->nodata};
        /* Nothing to remap: a plain copy of the planes. */
        bool same_nd = !r->has_nodata || (ri->has_nodata && m.src_nd == ri->nodata);
        if (r->type == out->type && same_nd && !m.nan_is_nd) {
            memcpy(d, in[i]->data, cells * ocs * (size_t)r->bands);
        } else {
            if (!r->has_nodata) m.src_has = false;
            for (int b = 0; b < r->bands; b++)
                pg__conv[r->type][out->type](d + (size_t)b * cells * ocs,
                                             (const char *)in[i]->data +
                                                 (size_t)b * cells * pg_celltype_size(r->type),
                                             cells, &m);
        }
        d += (size_t)r->bands * cells * ocs;
    }
    return 0;
}

/* ---- the table ---- */

#define PG__METHOD_DOC                                                                             \
    "Resampling method, GDAL's: nearest, bilinear, cubic, cubicspline, lanczos, average, mode, "   \
    "min, max, med. Default \"nearest\"."
#define PG__NODATA_DOC                                                                             \
    "The output's nodata value (must be a value of the type). Default: the source's nodata; "      \
    "else NaN for float types; else none (uncovered cells are 0, as with gdalwarp)."

static const pg_param_def pg__crop_params[] = {
    {.name = "window",
     .type = PG_PARAM_JSON,
     .doc = "[x, y, width, height] in cells of the raster (0-based, top-left); must lie inside "
            "it. Give this or 'extent'."},
    {.name = "extent",
     .type = PG_PARAM_JSON,
     .doc = "[xmin, ymin, xmax, ymax] in map units of 'crs' (x first: easting or longitude). "
            "Snapped outward to whole cells and clipped to the raster; bad_param if nothing is "
            "left. Give this or 'window'."},
    {.name = "crs",
     .type = PG_PARAM_STRING,
     .doc = "The CRS of 'extent' (WKT, PROJJSON, AUTHORITY:CODE, an OGC URN or a +proj= "
            "string; files and URLs are refused). Default: the raster's own CRS."},
    {0},
};

static const pg_param_def pg__resample_params[] = {
    {.name = "width",
     .type = PG_PARAM_INT,
     .doc = "Output columns. With only one of 'width' and 'height', the other keeps the aspect "
            "ratio.",
     .min = 1,
     .max = 1e9},
    {.name = "height", .type = PG_PARAM_INT, .doc = "Output rows.", .min = 1, .max = 1e9},
    {.name = "cell_size",
     .type = PG_PARAM_JSON,
     .doc = "Output cell size in map units, a number or [x, y] (instead of width/height; "
            "north-up rasters). The size is rounded to whole cells from the top-left corner, "
            "as gdalwarp -tr does."},
    {.name = "method",
     .type = PG_PARAM_STRING,
     .default_json = "\"nearest\"",
     .doc = PG__METHOD_DOC},
    {.name = "nodata", .type = PG_PARAM_NUMBER, .doc = PG__NODATA_DOC},
    {0},
};

static const pg_param_def pg__reproject_params[] = {
    {.name = "crs",
     .type = PG_PARAM_STRING,
     .required = true,
     .doc = "Target CRS: WKT, PROJJSON, AUTHORITY:CODE (\"EPSG:4326\"), an OGC URN or a +proj= "
            "string. Files and URLs are refused."},
    {.name = "cell_size",
     .type = PG_PARAM_JSON,
     .doc = "Output cell size in target CRS units, a number or [x, y]. Default: GDAL's "
            "suggestion (as gdalwarp without -tr)."},
    {.name = "extent",
     .type = PG_PARAM_JSON,
     .doc = "[xmin, ymin, xmax, ymax] of the output in the target CRS (as gdalwarp -te). "
            "Default: GDAL's suggestion, the source's footprint."},
    {.name = "method",
     .type = PG_PARAM_STRING,
     .default_json = "\"nearest\"",
     .doc = PG__METHOD_DOC},
    {.name = "nodata", .type = PG_PARAM_NUMBER, .doc = PG__NODATA_DOC},
    {.name = "error_threshold",
     .type = PG_PARAM_NUMBER,
     .default_json = "0",
     .doc = "0 (default): every output cell's position is transformed exactly, as gdalwarp -et "
            "0. > 0: rows are interpolated between exact points, refined until the error is "
            "below this many source cells (gdalwarp's default is 0.125): several times faster, "
            "and still the same for any tiling (the segments are fixed on the whole raster).",
     .min = 0,
     .max = 10},
    {0},
};

static const pg_param_def pg__mosaic_params[] = {
    {.name = "method",
     .type = PG_PARAM_STRING,
     .default_json = "\"nearest\"",
     .doc = "Resampling of args whose grid is not aligned with arg 1's (aligned args are "
            "copied): " PG__METHOD_DOC},
    {.name = "nodata",
     .type = PG_PARAM_NUMBER,
     .doc = PG__NODATA_DOC " (The first arg with a "
                           "nodata value counts.)"},
    {0},
};

static const pg_param_def pg__bands_params[] = {
    {.name = "bands",
     .type = PG_PARAM_JSON,
     .required = true,
     .doc = "The bands to keep, in output order: a 1-based band number or a list of them "
            "(repeats allowed)."},
    {0},
};

static const pg_param_def pg__no_params[] = {{0}};

const pg_op_def pg_ops_transform[] = {
    {
        .name = "transform.crop",
        .family = "transform",
        .doc = "A rectangle of the raster, by 'window' (cells) or 'extent' (map units, in the "
               "raster's CRS or in 'crs', snapped outward to the grid and clipped to the raster). "
               "No resampling: the cells are the source's. Output cell type, bands and nodata: "
               "the source's; the geotransform is shifted to the rectangle's corner.",
        .example = "{\"op\": \"transform.crop\", \"args\": [{\"ref\": \"dem\"}], \"extent\": "
                   "[14.9, 45.0, 15.1, 45.1], \"crs\": \"EPSG:4326\"}",
        .min_args = 1,
        .max_args = 1,
        .arg_kinds = PG_ARGK_RASTER,
        .params = pg__crop_params,
        .result = PG_RESULT_RASTER,
        .plan = pg__crop_plan,
        .need = pg__crop_need,
        .compute = pg__crop_compute,
    },
    {
        .name = "transform.resample",
        .family = "transform",
        .doc = "The raster on a finer or coarser grid over the same extent and CRS: 'width' "
               "and/or 'height', or 'cell_size'. Cells are computed by GDAL's warper with "
               "'method' (the same values as gdalwarp -r METHOD -et 0). Output cell type: the "
               "source's (integers rounded to nearest and clamped). Nodata: source nodata "
               "cells are ignored by the kernels; the output's nodata is 'nodata', else the "
               "source's, else NaN for floats, else none.",
        .example = "{\"op\": \"transform.resample\", \"args\": [{\"ref\": \"dem\"}], \"width\": "
                   "1024, \"method\": \"average\"}",
        .min_args = 1,
        .max_args = 1,
        .arg_kinds = PG_ARGK_RASTER,
        .params = pg__resample_params,
        .result = PG_RESULT_RASTER,
        .plan = pg__resample_plan,
        .need = pg__warp_op_need,
        .compute = pg__warp_op_compute,
        .free_state = pg__warp_state_free,
    },
    {
        .name = "transform.reproject",
        .family = "transform",
        .doc = "The raster in another CRS, warped by GDAL with 'method'. The output grid is "
               "GDAL's suggestion (as gdalwarp -t_srs CRS) unless 'cell_size' and/or 'extent' "
               "say otherwise (as -tr, -te). Cells equal gdalwarp -et 0 -r METHOD on the same "
               "grid (gdalwarp run as one chunk). 'error_threshold' trades exactness for speed. "
               "Output cell type: the source's (integers rounded to nearest and "
               "clamped). Nodata: source nodata cells are ignored; output cells that no source "
               "cell covers are nodata: 'nodata', else the source's value, else NaN for "
               "floats, else 0 without a nodata value.",
        .example = "{\"op\": \"transform.reproject\", \"args\": [{\"ref\": \"dem\"}], \"crs\": "
                   "\"EPSG:4326\", \"method\": \"bilinear\"}",
        .min_args = 1,
        .max_args = 1,
        .arg_kinds = PG_ARGK_RASTER,
        .params = pg__reproject_params,
        .result = PG_RESULT_RASTER,
        .plan = pg__reproject_plan,
        .need = pg__warp_op_need,
        .compute = pg__warp_op_compute,
        .free_state = pg__warp_state_free,
    },
    {
        .name = "transform.mosaic",
        .family = "transform",
        .doc = "Several rasters in one CRS (grid_mismatch otherwise: reproject them first) on "
               "one grid: the union of their extents at arg 1's cell size and alignment. Later "
               "args are drawn over earlier ones where they have valid cells. Args on arg 1's "
               "grid are copied; others are resampled with 'method'. Output cell type: the "
               "smallest type holding every arg's values (see transform.stack). Nodata: "
               "'nodata', else the first arg's that has one, else NaN for floats, else none "
               "(0 where no arg covers).",
        .example = "{\"op\": \"transform.mosaic\", \"args\": [{\"ref\": \"west\"}, {\"ref\": "
                   "\"east\"}]}",
        .min_args = 1,
        .max_args = -1,
        .arg_kinds = PG_ARGK_RASTER,
        .params = pg__mosaic_params,
        .result = PG_RESULT_RASTER,
        .plan = pg__mosaic_plan,
        .need = pg__mosaic_need,
        .compute = pg__mosaic_compute,
        .free_state = pg__mosaic_free,
    },
    {
        .name = "transform.bands",
        .family = "transform",
        .doc = "Selects and reorders bands: output band k is source band bands[k] (1-based). "
               "Output cell type and nodata: the source's.",
        .example =
            "{\"op\": \"transform.bands\", \"args\": [{\"ref\": \"rgb\"}], \"bands\": [3, 2, "
            "1]}",
        .min_args = 1,
        .max_args = 1,
        .arg_kinds = PG_ARGK_RASTER,
        .params = pg__bands_params,
        .result = PG_RESULT_RASTER,
        .plan = pg__bands_plan,
        .compute = pg__bands_compute,
    },
    {
        .name = "transform.stack",
        .family = "transform",
        .doc = "Rasters on one grid (grid_mismatch otherwise) as one multi-band raster: the "
               "bands of arg 1, then of arg 2, ... Output cell type: the smallest type holding "
               "every arg's values (u8+i8 -> i16, u16+f32 -> f32, i32+f32 -> f64, u32+i8 -> "
               "f64). Nodata: the first arg's nodata value if any arg has one; each arg's "
               "nodata cells (and NaN) become it.",
        .example = "{\"op\": \"transform.stack\", \"args\": [{\"ref\": \"red\"}, {\"ref\": "
                   "\"nir\"}]}",
        .min_args = 1,
        .max_args = -1,
        .arg_kinds = PG_ARGK_RASTER,
        .params = pg__no_params,
        .result = PG_RESULT_RASTER,
        .plan = pg__stack_plan,
        .compute = pg__stack_compute,
    },
    {0},
};
