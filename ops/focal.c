/* Focal (moving-window) ops and terrain: focal.sum, focal.mean, focal.min,
 * focal.max, focal.median, focal.mode, focal.stddev, focal.range,
 * focal.convolve, focal.slope, focal.aspect, focal.hillshade.
 *
 * NEIGHBOURHOODS ("shape", in cells; offsets dx right, dy down from the
 * centre cell; r = "radius", an integer 1..50):
 *  - square:  |dx| <= r and |dy| <= r, (2r+1)^2 cells (the default);
 *  - circle:  dx^2 + dy^2 <= r^2 (cells whose centre lies within r cells of
 *             the centre cell's centre);
 *  - annulus: inner^2 < dx^2 + dy^2 <= r^2 ("inner_radius", 0 <= inner < r;
 *             inner 0 leaves out only the centre cell);
 *  - wedge:   the circle's cells whose direction from the centre, an azimuth
 *             in degrees clockwise from north (north = up = towards row 0,
 *             east = right: az = atan2(dx, -dy)), lies on the clockwise sweep
 *             from "start" to "end" (bounds included, wrapping through north
 *             when start > end: start 315, end 45 is the northern quarter),
 *             plus the centre cell itself; start == end (mod 360) is refused;
 *  - cross:   dx = 0 or dy = 0, within r (a plus sign with arms of length r);
 *  - kernel:  "kernel", a 2-D array of numbers (rows top to bottom, odd width
 *             and height <= 101, centred): the cells with a non-zero weight.
 *             For the statistics ops it is a mask; only focal.convolve uses
 *             the weights.
 * need() grows the output window by the neighbourhood's half-size (r, or the
 * kernel's half width and height; 1 for terrain), so every tile reads its own
 * halo and a tiled run equals an untiled run bit for bit (see DETERMINISM).
 *
 * EDGE AND NODATA RULE (statistics and convolve). Cells outside the raster,
 * nodata cells and NaN cells are ignored: the statistic is over the valid
 * cells of the neighbourhood. An output cell is nodata when its centre cell
 * is nodata (or outside the raster): focal ops keep the input's holes rather
 * than fill them; and when no cell of its neighbourhood is valid (possible
 * only for shapes that leave the centre out). A result that
 * is not finite (inf, NaN: an overflow, or inf among the inputs) is nodata
 * for sum, mean, stddev, range and convolve; min, max, median and mode return
 * input values, infinities included.
 *
 * TYPE RULES.
 *  - sum, mean, stddev, convolve: f64 if the input is f64, u32 or i32, else
 *    f32. Computed in double, rounded once to the output type.
 *  - min, max, median, mode: the input's type (the values are input values;
 *    an integer median of an even count is rounded, see below).
 *  - range (max - min): the input's type for unsigned and float inputs; for
 *    signed integers the unsigned type of the same width (i8 -> u8, i16 ->
 *    u16, i32 -> u32), which holds every range exactly (127 - -128 = 255
 *    does not fit an i8).
 * Output nodata: the input's nodata value if the output type holds it, else
 * the type's default (NaN for floats, min for signed, max for unsigned
 * integers). The output has a nodata value when the input has one, is a
 * float type (NaN), the shape leaves the centre out, or the op is convolve
 * (weights may overflow); otherwise every cell is valid.
 * Median: of an even count, the mean of the two middle values (for floats
 * a/2 + b/2 in double; for integers rounded half away from zero). Mode: the
 * most frequent value, ties going to the smallest. Stddev: population
 * (divides by the count). Convolve: correlation (kernel not flipped: weight
 * row i, column j multiplies the cell at dy = i - h/2, dx = j - w/2), the sum
 * of weight * value over valid cells; with "normalize" divided by the sum of
 * the weights of the valid cells (nodata where that is 0).
 *
 * TERRAIN (slope, aspect, hillshade) follows gdaldem -compute_edges (Horn's
 * 3x3 method): its arithmetic and its edge rule, so that results agree with
 * gdaldem run on the same file:
 *  - the centre nodata/NaN -> nodata; other nodata neighbours take the centre
 *    value;
 *  - outside the raster, neighbours are extrapolated linearly, 2*a - b, from
 *    the two nearest cells inward along the row (left and right columns) or
 *    along the column (first and last rows); in the first and last rows the
 *    missing column beyond a corner repeats the corner column, as gdaldem
 *    does; a raster less than 2 cells wide or high is all nodata;
 *  - an f32 input's window sums are computed in f32 exactly as gdaldem does;
 *    other types in double (exact for integers; gdaldem reads u32, i32 and
 *    f64 inputs as f32);
 *  - outputs: slope, aspect f32 with nodata -9999; flat cells (zero gradient)
 *    have aspect -9999 too, like gdaldem (they are nodata). Hillshade u8,
 *    0 = nodata, lit values 1..255 (gdaldem's 1 + 254 * cos of the incidence
 *    angle, clamped below at 1, rounded to nearest).
 *  - horizontal scale: cell sizes come from the geotransform (rotation terms
 *    ignored, as gdaldem does; no geotransform: unit cells, north up).
 *    "scale" (vertical units per horizontal unit) multiplies both cell sizes,
 *    like gdaldem -s. Without "scale" it is computed as gdaldem >= 3.11 does:
 *    geographic CRS: yscale = metres per degree of latitude = the ellipsoid's
 *    semi-major axis * pi/180 (111319.49 m for WGS84), xscale = yscale *
 *    cos(latitude of the raster's centre row); projected CRS: its linear
 *    unit in metres (1 for metre CRSs); no CRS: 1. Elevations are taken to
 *    be metres.
 *  - aspect: degrees clockwise from north, the direction the slope faces
 *    (downhill), in [0, 360). On square north-up cells it is gdaldem's
 *    formula exactly; on other cells (geographic rasters, rectangular or
 *    south-up cells) the gradient is scaled by the cell's true size and
 *    orientation first, so aspects stay compass directions (gdaldem ignores
 *    the cell size and is off there).
 *  - each band is processed on its own.
 *
 * DETERMINISM. Every output cell is a pure function of the input cells of its
 * window, computed in an order that depends only on the window (never on
 * where the tile starts): min, max, median, mode and integer sums are exact
 * (so any algorithm gives the same bits); float sums are taken in a fixed
 * order per cell (square: along each window row, then the row sums down;
 * other shapes: the offsets in row-major order). Code paths are chosen per
 * cell from raster coordinates only (edge, nodata), and the build is ISO C
 * (no FMA contraction), so a cell gives the same bits in any tile.
 *
 * ALGORITHMS. Sum and mean: square windows separably (row sums, then column
 * sums of them, O(2r+1) per cell, vectorised across the row); other shapes
 * from per-row prefix sums over the shape's row spans (integer inputs, exact)
 * or one vectorised pass per offset (float inputs, fixed order). Counts of
 * valid cells from integer prefix sums. Min, max and range: separable for
 * squares, else one vectorised pass per offset. Median and mode: up to 64
 * cells (128 for types other than 8-bit), a sorting network (Batcher's
 * odd-even merge sort, pruned) run across whole rows of windows with vector
 * min/max, in f32 when the type is exact in f32; larger windows: a sliding
 * 256-bin histogram for 8-bit types, else the valid values gathered and
 * selected (Wirth) or sorted. Stddev: exact integer moments (128-bit
 * final step) for inputs of up to 16 bits; else sums of deviations from the
 * window's mean (the corrected two-pass algorithm), which avoids the
 * cancellation of sum-of-squares.
 * Terrain: a straight-line pass over each row for windows fully inside and
 * valid, the gdaldem edge rule cell by cell elsewhere. Scratch memory comes from the
 * tile pool.
 */
#include "bufpool.h"
#include "graph.h"
#include "ops/registry.h"
#include "raster.h"
#include "util.h"

#include <cpl_error.h>
#include <float.h>
#include <math.h>
#include <ogr_srs_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PG__MAX_RADIUS 50
#define PG__MAX_KERNEL 101
/* Largest neighbourhoods sorted by the network (for all types, and for
 * types without a histogram), and its comparator bound: Batcher's network
 * on 128 inputs has 1471 comparators. */
#define PG__NET_SMALL 64
#define PG__NET_MAX 128
#define PG__NET_CMP_CAP 1500
#define PG__TERRAIN_ND (-9999.0)

__extension__ typedef __int128 pg__i128;

typedef enum {
    PG__SUM,
    PG__MEAN,
    PG__MIN,
    PG__MAX,
    PG__MEDIAN,
    PG__MODE,
    PG__STDDEV,
    PG__RANGE,
    PG__CONVOLVE,
    PG__SLOPE,
    PG__ASPECT,
    PG__HILLSHADE,
} pg__fk;

static const char *const pg__fname[] = {
    "focal.sum",      "focal.mean",  "focal.min",    "focal.max",
    "focal.median",   "focal.mode",  "focal.stddev", "focal.range",
    "focal.convolve", "focal.slope", "focal.aspect", "focal.hillshade",
};

typedef enum { PG__SQUARE, PG__CIRCLE, PG__ANNULUS, PG__WEDGE, PG__CROSS, PG__KERNEL } pg__shape;

/* A run of neighbourhood cells in one row: columns dx in [a, b] at row dy. */
typedef struct pg__span {
    int dy, a, b;
} pg__span;

typedef struct pg__fplan {
    pg__fk kind;
    int hx, hy; /* half width and height of the neighbourhood */
    /* the neighbourhood's cells, row-major (dy, then dx ascending) */
    int noff;
    int *ody, *odx;
    double *ow; /* weights (convolve), else NULL */
    int nspan;
    pg__span *spans;
    bool rect;      /* every cell of the (2hx+1) x (2hy+1) box */
    bool centre_in; /* the neighbourhood contains the centre cell */
    bool normalize; /* convolve */
    int ncmp;       /* median/mode with noff <= PG__NET_MAX: the network */
    uint8_t (*cmp)[2];
    /* the input and output */
    int64_t W, H; /* the input raster's size */
    pg_celltype in_t, out_t;
    bool in_mask; /* the input's nodata value can occur in its type */
    double in_mask_value;
    double out_nd;
    /* terrain */
    bool percent;
    bool gdal_aspect;    /* square north-up cells: gdaldem's aspect formula */
    double ewres, nsres; /* signed cell sizes times the scales */
    double inv_ew, inv_ns;
    double sin_alt254, cos_az254, sin_az254, sq_z;
} pg__fplan;

static void pg__focal_free(pg_node *n)
{
    pg__fplan *p = n->state;
    if (p != NULL) {
        free(p->ody);
        free(p->odx);
        free(p->ow);
        free(p->spans);
        free(p->cmp);
        free(p);
    }
    n->state = NULL;
}

/* ---- parameters ---- */

/* Parses "kernel" into *W (row-major, malloc'd) and its size. */
static int pg__parse_kernel(const json_t *k, int *kw, int *kh, double **wout, pg_error *err)
{
    *wout = NULL;
    if (!json_is_array(k) || json_array_size(k) == 0)
        return pg_error_set(err, PG_EPARAM,
                            "param 'kernel' must be a non-empty array of rows, each an array of "
                            "numbers");
    size_t h = json_array_size(k), w = 0;
    for (size_t r = 0; r < h; r++) {
        const json_t *row = json_array_get(k, r);
        if (!json_is_array(row) || json_array_size(row) == 0)
            return pg_error_set(err, PG_EPARAM,
                                "param 'kernel': row %zu must be a non-empty array of numbers", r);
        if (r == 0) w = json_array_size(row);
        if (json_array_size(row) != w)
            return pg_error_set(err, PG_EPARAM,
                                "param 'kernel': row %zu has %zu values, row 0 has %zu", r,
                                json_array_size(row), w);
        for (size_t c = 0; c < w; c++)
            if (!json_is_number(json_array_get(row, c)))
                return pg_error_set(err, PG_EPARAM,
                                    "param 'kernel': row %zu, column %zu is not a number", r, c);
    }
    if (w % 2 == 0 || h % 2 == 0)
        return pg_error_set(err, PG_EPARAM,
                            "param 'kernel' must have an odd width and height, got %zux%zu "
                            "(width x height)",
                            w, h);
    if (w > PG__MAX_KERNEL || h > PG__MAX_KERNEL)
        return pg_error_set(err, PG_EPARAM, "param 'kernel' must be at most %dx%d, got %zux%zu",
                            PG__MAX_KERNEL, PG__MAX_KERNEL, w, h);
    double *wt = malloc(w * h * sizeof *wt);
    if (wt == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    bool nonzero = false;
    for (size_t r = 0; r < h; r++) {
        const json_t *row = json_array_get(k, r);
        for (size_t c = 0; c < w; c++) {
            wt[r * w + c] = json_number_value(json_array_get(row, c));
            nonzero |= wt[r * w + c] != 0.0;
        }
    }
    if (!nonzero) {
        free(wt);
        return pg_error_set(err, PG_EPARAM,
                            "param 'kernel' must have at least one non-zero weight");
    }
    *kw = (int)w;
    *kh = (int)h;
    *wout = wt;
    return 0;
}

/* Checks that a param that only SHAPE takes is absent under other shapes. */
static int pg__only_for(const pg_node *n, const char *param, const char *shape_name, bool is_it,
                        pg_error *err)
{
    if (!is_it && pg_param_has(n, param))
        return pg_error_set(err, PG_EPARAM, "param '%s' applies only to shape '%s'", param,
                            shape_name);
    return 0;
}

/* The neighbourhood from "shape", "radius", ... into P's offsets (weights
 * stay NULL: a mask). */
static int pg__build_shape(pg__fplan *p, const pg_node *n, pg_error *err)
{
    static const char *const names[] = {"square", "circle", "annulus", "wedge", "cross", "kernel"};
    const char *s = pg_param_has(n, "shape") ? pg_param_str(n, "shape") : "square";
    if (s == NULL) return pg_error_set(err, PG_EPARAM, "param 'shape' must be a string");
    int sh = -1;
    for (int i = 0; i < 6; i++)
        if (strcmp(s, names[i]) == 0) sh = i;
    if (sh < 0)
        return pg_error_set(err, PG_EPARAM,
                            "param 'shape' must be one of square, circle, annulus, wedge, cross "
                            "or kernel, got '%s'",
                            s);
    int rc;
    if ((rc = pg__only_for(n, "inner_radius", "annulus", sh == PG__ANNULUS, err)) ||
        (rc = pg__only_for(n, "start", "wedge", sh == PG__WEDGE, err)) ||
        (rc = pg__only_for(n, "end", "wedge", sh == PG__WEDGE, err)) ||
        (rc = pg__only_for(n, "kernel", "kernel", sh == PG__KERNEL, err)))
        return rc;

    double *kern = NULL;
    int kw = 0, kh = 0;
    int64_t r = 1;
    double inner = 0, start = 0, sweep = 0;
    if (sh == PG__KERNEL) {
        if (!pg_param_has(n, "kernel"))
            return pg_error_set(err, PG_EPARAM, "param 'kernel' is required with shape 'kernel'");
        if ((rc = pg__parse_kernel(json_object_get(n->params, "kernel"), &kw, &kh, &kern, err)))
            return rc;
        p->hx = kw / 2;
        p->hy = kh / 2;
    } else {
        if (pg_param_has(n, "radius")) {
            const json_t *rv = json_object_get(n->params, "radius");
            double d = json_number_value(rv);
            if (!json_is_number(rv) || d != floor(d) || d < 1 || d > PG__MAX_RADIUS)
                return pg_error_set(err, PG_EPARAM,
                                    "param 'radius' must be an integer between 1 and %d, got %g",
                                    PG__MAX_RADIUS, d);
            r = (int64_t)d;
        }
        p->hx = p->hy = (int)r;
        if (sh == PG__ANNULUS) {
            if (!pg_param_has(n, "inner_radius"))
                return pg_error_set(err, PG_EPARAM,
                                    "param 'inner_radius' is required with shape 'annulus'");
            inner = pg_param_num(n, "inner_radius");
            if (!(inner >= 0 && inner < (double)r))
                return pg_error_set(err, PG_EPARAM,
                                    "param 'inner_radius' must be >= 0 and less than 'radius' "
                                    "(%lld), got %g",
                                    (long long)r, inner);
        }
        if (sh == PG__WEDGE) {
            if (!pg_param_has(n, "start") || !pg_param_has(n, "end"))
                return pg_error_set(err, PG_EPARAM,
                                    "params 'start' and 'end' are required with shape 'wedge'");
            start = pg_param_num(n, "start");
            double end = pg_param_num(n, "end");
            if (!isfinite(start) || !isfinite(end))
                return pg_error_set(err, PG_EPARAM, "params 'start' and 'end' must be finite");
            sweep = fmod(end - start, 360.0);
            if (sweep < 0) sweep += 360.0;
            if (sweep < 1e-9 || sweep > 360.0 - 1e-9)
                return pg_error_set(err, PG_EPARAM,
                                    "params 'start' and 'end' must differ (mod 360), got %g and %g",
                                    start, end);
        }
    }

    const int w = 2 * p->hx + 1, h = 2 * p->hy + 1;
    p->ody = malloc(sizeof(int) * (size_t)(w * h));
    p->odx = malloc(sizeof(int) * (size_t)(w * h));
    p->spans = malloc(sizeof(pg__span) * (size_t)(w * h));
    if (p->ody == NULL || p->odx == NULL || p->spans == NULL) {
        free(kern);
        return pg_error_set(err, PG_ENOMEM, "out of memory");
    }
    const double r2 = (double)(r * r), in2 = inner * inner;
    int k = 0;
    for (int dy = -p->hy; dy <= p->hy; dy++) {
        for (int dx = -p->hx; dx <= p->hx; dx++) {
            const double d2 = (double)(dx * dx + dy * dy);
            bool in = false;
            switch (sh) {
            case PG__SQUARE:
                in = true;
                break;
            case PG__CIRCLE:
                in = d2 <= r2;
                break;
            case PG__ANNULUS:
                in = d2 <= r2 && d2 > in2;
                break;
            case PG__WEDGE:
                if (dx == 0 && dy == 0) {
                    in = true;
                } else if (d2 <= r2) {
                    double az = atan2((double)dx, (double)-dy) * (180.0 / M_PI);
                    double rel = fmod(az - start, 360.0);
                    if (rel < 0) rel += 360.0;
                    in = rel <= sweep + 1e-9 || rel >= 360.0 - 1e-9;
                }
                break;
            case PG__CROSS:
                in = dx == 0 || dy == 0;
                break;
            default: /* kernel */
                in = kern[(size_t)(dy + p->hy) * (size_t)kw + (size_t)(dx + p->hx)] != 0.0;
                break;
            }
            if (!in) continue;
            p->ody[k] = dy;
            p->odx[k] = dx;
            k++;
        }
    }
    free(kern);
    p->noff = k;
    if (k == 0) return pg_error_set(err, PG_EPARAM, "the neighbourhood has no cell");
    p->rect = k == w * h;
    return 0;
}

/* For convolve: the kernel's non-zero cells with their weights. */
static int pg__build_kernel(pg__fplan *p, const pg_node *n, pg_error *err)
{
    int kw, kh, rc;
    double *kern;
    if (!pg_param_has(n, "kernel"))
        return pg_error_set(err, PG_EPARAM, "param 'kernel' is required");
    if ((rc = pg__parse_kernel(json_object_get(n->params, "kernel"), &kw, &kh, &kern, err)))
        return rc;
    p->hx = kw / 2;
    p->hy = kh / 2;
    p->ody = malloc(sizeof(int) * (size_t)(kw * kh));
    p->odx = malloc(sizeof(int) * (size_t)(kw * kh));
    p->ow = malloc(sizeof(double) * (size_t)(kw * kh));
    p->spans = malloc(sizeof(pg__span) * (size_t)(kw * kh));
    if (p->ody == NULL || p->odx == NULL || p->ow == NULL || p->spans == NULL) {
        free(kern);
        return pg_error_set(err, PG_ENOMEM, "out of memory");
    }
    int k = 0;
    for (int i = 0; i < kh; i++)
        for (int j = 0; j < kw; j++) {
            double wt = kern[i * kw + j];
            if (wt == 0.0) continue;
            p->ody[k] = i - p->hy;
            p->odx[k] = j - p->hx;
            p->ow[k] = wt;
            k++;
        }
    free(kern);
    p->noff = k;
    p->rect = false; /* weighted: never the separable box */
    p->normalize = pg_param_bool(n, "normalize") != 0;
    return 0;
}

/* Row spans from the row-major offsets; the centre flag. */
static void pg__build_spans(pg__fplan *p)
{
    p->nspan = 0;
    p->centre_in = false;
    for (int k = 0; k < p->noff; k++) {
        if (p->ody[k] == 0 && p->odx[k] == 0) p->centre_in = true;
        pg__span *last = p->nspan > 0 ? &p->spans[p->nspan - 1] : NULL;
        if (last != NULL && last->dy == p->ody[k] && last->b + 1 == p->odx[k])
            last->b++;
        else
            p->spans[p->nspan++] = (pg__span){p->ody[k], p->odx[k], p->odx[k]};
    }
}

/* Batcher's odd-even merge sort for N inputs (the next power of two, with
 * the comparators that touch padding removed: padding holds +inf, which no
 * comparator ever moves). */
static int pg__network(int n, uint8_t (*cmp)[2])
{
    int N = 1, c = 0;
    while (N < n)
        N <<= 1;
    for (int p = 1; p < N; p <<= 1)
        for (int k = p; k >= 1; k >>= 1)
            for (int j = k % p; j + k < N; j += 2 * k)
                for (int i = 0; i < k && i + j + k < N; i++)
                    if ((i + j) / (2 * p) == (i + j + k) / (2 * p) && i + j + k < n) {
                        cmp[c][0] = (uint8_t)(i + j);
                        cmp[c][1] = (uint8_t)(i + j + k);
                        c++;
                    }
    return c;
}

/* ---- plan ---- */

static bool pg__int32(pg_celltype t)
{
    return t == PG_U32 || t == PG_I32;
}

/* Horizontal scales (vertical units per horizontal unit) for terrain. */
static int pg__terrain_scales(const pg_node *n, const pg_raster_info *ri, double *xs, double *ys,
                              pg_error *err)
{
    *xs = *ys = 1.0;
    if (pg_param_has(n, "scale")) {
        double s = pg_param_num(n, "scale");
        if (!(s > 0) || !isfinite(s))
            return pg_error_set(err, PG_EPARAM, "param 'scale' must be a positive number, got %g",
                                s);
        *xs = *ys = s;
        return 0;
    }
    if (ri->crs_wkt == NULL || ri->crs_wkt[0] == '\0') return 0;
    OGRSpatialReferenceH srs = OSRNewSpatialReference(NULL);
    if (srs == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    CPLPushErrorHandler(CPLQuietErrorHandler);
    char *wkt = ri->crs_wkt;
    int rc = 0;
    if (OSRImportFromWkt(srs, &wkt) == OGRERR_NONE) {
        if (OSRIsGeographic(srs)) {
            double ang = OSRGetAngularUnits(srs, NULL); /* radians per unit */
            double a = OSRGetSemiMajor(srs, NULL);
            double gt3 = ri->has_geotransform ? ri->geotransform[3] : 0.0;
            double gt5 = ri->has_geotransform ? ri->geotransform[5] : -1.0;
            double lat = (gt3 + (double)ri->height * gt5 / 2) * ang;
            *ys = ang * a;
            *xs = *ys * cos(lat);
            if (!(*xs > 0))
                rc = pg_error_set(err, PG_EPARAM,
                                  "the raster's centre latitude (%g) leaves no east-west scale: "
                                  "give 'scale'",
                                  lat * 180 / M_PI);
        } else if (OSRIsProjected(srs)) {
            double u = OSRGetLinearUnits(srs, NULL);
            if (u > 0 && isfinite(u)) *xs = *ys = u;
        }
    }
    CPLPopErrorHandler();
    OSRDestroySpatialReference(srs);
    return rc;
}

static int pg__terrain_plan(pg__fplan *p, const pg_node *n, const pg_raster_info *ri, pg_error *err)
{
    p->hx = p->hy = 1;
    double xs, ys;
    int rc = pg__terrain_scales(n, ri, &xs, &ys, err);
    if (rc) return rc;
    double gt1 = 1.0, gt5 = -1.0;
    if (ri->has_geotransform) {
        gt1 = ri->geotransform[1];
        gt5 = ri->geotransform[5];
    }
    if (!(gt1 != 0 && gt5 != 0 && isfinite(gt1) && isfinite(gt5)))
        return pg_error_set(err, PG_EPARAM, "%s: the raster's cell size is zero or not finite",
                            pg__fname[p->kind]);
    p->ewres = gt1 * xs;
    p->nsres = gt5 * ys;
    p->inv_ew = 1.0 / p->ewres;
    p->inv_ns = 1.0 / p->nsres;
    p->gdal_aspect = gt1 > 0 && gt1 == -gt5 && xs == ys;
    if (p->kind == PG__SLOPE) {
        const char *u = pg_param_has(n, "units") ? pg_param_str(n, "units") : "degrees";
        if (u == NULL || (strcmp(u, "degrees") != 0 && strcmp(u, "percent") != 0))
            return pg_error_set(err, PG_EPARAM,
                                "param 'units' must be \"degrees\" or \"percent\", got '%s'",
                                u ? u : "?");
        p->percent = strcmp(u, "percent") == 0;
    }
    if (p->kind == PG__HILLSHADE) {
        double z = pg_param_has(n, "z_factor") ? pg_param_num(n, "z_factor") : 1.0;
        double az = pg_param_has(n, "azimuth") ? pg_param_num(n, "azimuth") : 315.0;
        double alt = pg_param_has(n, "altitude") ? pg_param_num(n, "altitude") : 45.0;
        if (!isfinite(z)) return pg_error_set(err, PG_EPARAM, "param 'z_factor' must be finite");
        if (!isfinite(az)) return pg_error_set(err, PG_EPARAM, "param 'azimuth' must be finite");
        if (!(alt >= 0 && alt <= 90))
            return pg_error_set(err, PG_EPARAM, "param 'altitude' must be between 0 and 90, got %g",
                                alt);
        /* gdaldem's constants, in its order of evaluation */
        const double d2r = M_PI / 180.0;
        const double zf = z / 8;
        const double cos_alt_mul_z = cos(alt * d2r) * zf;
        p->sin_alt254 = 254.0 * sin(alt * d2r);
        p->cos_az254 = 254.0 * (cos(az * d2r) * cos_alt_mul_z);
        p->sin_az254 = 254.0 * (sin(az * d2r) * cos_alt_mul_z);
        p->sq_z = zf * zf;
    }
    return 0;
}

static int pg__focal_plan(pg_node *n, pg__fk kind, pg_error *err)
{
    const char *name = pg__fname[kind];
    if (n->nargs != 1 || n->args[0].ref == NULL)
        return pg_error_set(err, PG_ETYPE, "%s takes one raster argument", name);
    const pg_node *src = n->args[0].ref;
    if (src->op != NULL && src->op->result != PG_RESULT_RASTER)
        return pg_error_set(err, PG_ETYPE, "%s: args[0] is not a raster", name);
    const pg_raster_info *ri = &src->info;

    pg__fplan *p = calloc(1, sizeof *p);
    if (p == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    if (n->state != NULL) pg__focal_free(n);
    n->state = p; /* freed by free_state on failure too */
    p->kind = kind;
    p->W = ri->width;
    p->H = ri->height;
    p->in_t = ri->type;
    if (ri->has_nodata && !isnan(ri->nodata)) {
        double v = ri->nodata;
        if (ri->type == PG_F32) {
            /* GDAL's convention: an f32 band's nodata is the double rounded
             * to f32. */
            if (isinf(v) || fabs(v) <= FLT_MAX) {
                p->in_mask = true;
                p->in_mask_value = (double)(float)v;
            }
        } else if (pg_celltype_holds(ri->type, v)) {
            p->in_mask = true;
            p->in_mask_value = v;
        }
    }

    int rc = 0;
    bool has_nd;
    pg_celltype out;
    double nd;
    if (kind == PG__SLOPE || kind == PG__ASPECT || kind == PG__HILLSHADE) {
        if ((rc = pg__terrain_plan(p, n, ri, err))) return rc;
        out = kind == PG__HILLSHADE ? PG_U8 : PG_F32;
        nd = kind == PG__HILLSHADE ? 0.0 : PG__TERRAIN_ND;
        has_nd = true;
    } else {
        rc = kind == PG__CONVOLVE ? pg__build_kernel(p, n, err) : pg__build_shape(p, n, err);
        if (rc) return rc;
        pg__build_spans(p);
        /* the network up to 64 cells; up to 128 unless the 256-bin histogram
         * (8-bit types) does better (measured: 121 cells, 8 vs 47 ms per
         * 256x256 tile for u8; f32: network 40 ms, gather-and-select 106) */
        const bool bit8 = ri->type == PG_U8 || ri->type == PG_I8;
        if ((kind == PG__MEDIAN || kind == PG__MODE) &&
            (p->noff <= PG__NET_SMALL || (p->noff <= PG__NET_MAX && !bit8))) {
            p->cmp = malloc(sizeof *p->cmp * PG__NET_CMP_CAP);
            if (p->cmp == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
            p->ncmp = pg__network(p->noff, p->cmp);
        }
        switch (kind) {
        case PG__SUM:
        case PG__MEAN:
        case PG__STDDEV:
        case PG__CONVOLVE:
            out = ri->type == PG_F64 || pg__int32(ri->type) ? PG_F64 : PG_F32;
            break;
        case PG__RANGE:
            out = ri->type == PG_I8    ? PG_U8
                  : ri->type == PG_I16 ? PG_U16
                  : ri->type == PG_I32 ? PG_U32
                                       : ri->type;
            break;
        default:
            out = ri->type;
            break;
        }
        has_nd = ri->has_nodata || pg_celltype_is_float(ri->type) || !p->centre_in ||
                 kind == PG__CONVOLVE;
        nd = 0.0;
        if (has_nd)
            nd = ri->has_nodata && pg_celltype_holds(out, ri->nodata)
                     ? ri->nodata
                     : pg_celltype_default_nodata(out);
    }
    p->out_t = out;
    p->out_nd = nd;

    pg_raster_info_clear(&n->info);
    if (pg_raster_info_copy(&n->info, ri) != 0)
        return pg_error_set(err, PG_ENOMEM, "out of memory");
    n->info.type = out;
    n->info.has_nodata = has_nd;
    n->info.nodata = has_nd ? nd : 0.0;
    return 0;
}

#define PG__PLANFN(NAME, KIND)                                                                     \
    static int NAME(pg_node *n, const pg_plan_env *env, pg_error *err)                             \
    {                                                                                              \
        (void)env;                                                                                 \
        return pg__focal_plan(n, KIND, err);                                                       \
    }
PG__PLANFN(pg__sum_plan, PG__SUM)
PG__PLANFN(pg__mean_plan, PG__MEAN)
PG__PLANFN(pg__min_plan, PG__MIN)
PG__PLANFN(pg__max_plan, PG__MAX)
PG__PLANFN(pg__median_plan, PG__MEDIAN)
PG__PLANFN(pg__mode_plan, PG__MODE)
PG__PLANFN(pg__stddev_plan, PG__STDDEV)
PG__PLANFN(pg__range_plan, PG__RANGE)
PG__PLANFN(pg__convolve_plan, PG__CONVOLVE)
PG__PLANFN(pg__slope_plan, PG__SLOPE)
PG__PLANFN(pg__aspect_plan, PG__ASPECT)
PG__PLANFN(pg__hillshade_plan, PG__HILLSHADE)

static void pg__focal_need(const pg_node *n, int i, const pg_window *out, pg_window *in)
{
    (void)i;
    const pg__fplan *p = n->state;
    in->x = out->x - p->hx;
    in->y = out->y - p->hy;
    in->w = out->w + 2 * p->hx;
    in->h = out->h + 2 * p->hy;
}

/* ---- loading a band into the work arrays ----
 * One row of N cells of type T -> double (or float): invalid cells (nodata,
 * NaN) get FILL and a 0 in the validity mask. */

#define PG__LOADROW(N, T, WN, WT, ISF)                                                             \
    static size_t pg__loadrow_##N##_##WN(const void *src_, size_t n, bool mask, double mv,         \
                                         double fill_, WT *restrict v, uint8_t *restrict m)        \
    {                                                                                              \
        const T *restrict s = src_;                                                                \
        const T nd = mask ? (T)mv : (T)0;                                                          \
        const WT fill = (WT)fill_;                                                                 \
        size_t cnt = 0;                                                                            \
        for (size_t i = 0; i < n; i++) {                                                           \
            const T x = s[i];                                                                      \
            const bool ok = (!mask || x != nd) && (!(ISF) || x == x);                              \
            v[i] = ok ? (WT)x : fill;                                                              \
            m[i] = (uint8_t)ok;                                                                    \
            cnt += ok;                                                                             \
        }                                                                                          \
        return cnt;                                                                                \
    }

PG__LOADROW(u8, uint8_t, d, double, 0)
PG__LOADROW(i8, int8_t, d, double, 0)
PG__LOADROW(u16, uint16_t, d, double, 0)
PG__LOADROW(i16, int16_t, d, double, 0)
PG__LOADROW(u32, uint32_t, d, double, 0)
PG__LOADROW(i32, int32_t, d, double, 0)
PG__LOADROW(f32, float, d, double, 1)
PG__LOADROW(f64, double, d, double, 1)
PG__LOADROW(f32, float, f, float, 1)

typedef size_t (*pg__loadrow_d_fn)(const void *, size_t, bool, double, double, double *restrict,
                                   uint8_t *restrict);
static const pg__loadrow_d_fn pg__loadrows_d[PG_CELLTYPE_COUNT] = {
    pg__loadrow_u8_d,  pg__loadrow_i8_d,  pg__loadrow_u16_d, pg__loadrow_i16_d,
    pg__loadrow_u32_d, pg__loadrow_i32_d, pg__loadrow_f32_d, pg__loadrow_f64_d,
};

/* Rows of one band (ROWS: their first cell; WIN: where they lie in the
 * raster) into V (WIN.w x WIN.h, FILL where invalid; VF for a float array
 * instead when not NULL) and M (1 = valid). Cells outside the raster are
 * invalid whatever the tile holds there. Returns the number of valid cells. */
static size_t pg__load(const pg__fplan *p, const char *rows, pg_window win, double fill, double *v,
                       float *vf, uint8_t *m)
{
    const size_t iw = (size_t)win.w, ih = (size_t)win.h;
    const size_t cs = pg_celltype_size(p->in_t);
    int64_t c0 = -win.x, c1 = p->W - win.x;
    if (c0 < 0) c0 = 0;
    if (c1 > (int64_t)iw) c1 = (int64_t)iw;
    if (c1 < c0) c1 = c0;
    size_t valid = 0;
    for (size_t r = 0; r < ih; r++) {
        const int64_t gy = win.y + (int64_t)r;
        uint8_t *mr = m + r * iw;
        size_t a = (size_t)c0, e = (size_t)c1;
        if (gy < 0 || gy >= p->H) a = e = 0;
        memset(mr, 0, a);
        memset(mr + e, 0, iw - e);
        if (vf != NULL) {
            float *vr = vf + r * iw;
            for (size_t c = 0; c < a; c++)
                vr[c] = (float)fill;
            for (size_t c = e; c < iw; c++)
                vr[c] = (float)fill;
            if (e > a)
                valid += pg__loadrow_f32_f(rows + (r * iw + a) * cs, e - a, p->in_mask,
                                           p->in_mask_value, fill, vr + a, mr + a);
        } else {
            double *vr = v + r * iw;
            for (size_t c = 0; c < a; c++)
                vr[c] = fill;
            for (size_t c = e; c < iw; c++)
                vr[c] = fill;
            if (e > a)
                valid += pg__loadrows_d[p->in_t](rows + (r * iw + a) * cs, e - a, p->in_mask,
                                                 p->in_mask_value, fill, vr + a, mr + a);
        }
    }
    return valid;
}

/* Output rows per strip: a tile is processed in horizontal strips whose
 * input (with its halo) is at most about PG__STRIP_CELLS cells, so that the
 * scratch stays a few MB for any tile size (a 256x256 tile is one strip).
 * Each cell depends only on its window, so strips change no result. */
#define PG__STRIP_CELLS ((size_t)1 << 18)
static size_t pg__strip_rows(size_t iw, size_t oh, int hy)
{
    size_t rows = PG__STRIP_CELLS / (iw ? iw : 1);
    rows = rows > (size_t)(2 * hy) + 16 ? rows - (size_t)(2 * hy) : 16;
    return rows < oh ? rows : oh;
}

/* ---- storing results ----
 * R (double) -> the output type. BAD cells get the nodata value. ARITH: the
 * value is computed (sum, mean, ...), so a non-finite or f32-overflowing
 * value is nodata; otherwise it is an input value (only NaN is nodata). */

#define PG__STOREINT(N, T)                                                                         \
    static void pg__store_##N(void *dst_, const double *restrict R, const uint8_t *restrict bad,   \
                              double nd, bool arith, size_t n)                                     \
    {                                                                                              \
        (void)arith;                                                                               \
        T *restrict d = dst_;                                                                      \
        const T ndv = (T)nd;                                                                       \
        for (size_t i = 0; i < n; i++)                                                             \
            d[i] = bad[i] ? ndv : (T)R[i];                                                         \
    }
PG__STOREINT(u8, uint8_t)
PG__STOREINT(i8, int8_t)
PG__STOREINT(u16, uint16_t)
PG__STOREINT(i16, int16_t)
PG__STOREINT(u32, uint32_t)
PG__STOREINT(i32, int32_t)

static void pg__store_f32(void *dst_, const double *restrict R, const uint8_t *restrict bad,
                          double nd, bool arith, size_t n)
{
    float *restrict d = dst_;
    const float ndv = (float)nd;
    for (size_t i = 0; i < n; i++) {
        const double v = R[i];
        bool ok = !bad[i] && (arith ? fabs(v) <= FLT_MAX : (v == v));
        d[i] = ok ? (float)v : ndv;
    }
}

static void pg__store_f64(void *dst_, const double *restrict R, const uint8_t *restrict bad,
                          double nd, bool arith, size_t n)
{
    double *restrict d = dst_;
    for (size_t i = 0; i < n; i++) {
        const double v = R[i];
        bool ok = !bad[i] && (arith ? isfinite(v) : (v == v));
        d[i] = ok ? v : nd;
    }
}

typedef void (*pg__store_fn)(void *, const double *restrict, const uint8_t *restrict, double, bool,
                             size_t);
static const pg__store_fn pg__stores[PG_CELLTYPE_COUNT] = {
    pg__store_u8,  pg__store_i8,  pg__store_u16, pg__store_i16,
    pg__store_u32, pg__store_i32, pg__store_f32, pg__store_f64,
};

/* ---- kernels over the work arrays ----
 * SRC: IW x IH (the input window), DST: OW x OH (the output window); output
 * cell (x, y) is centred on input cell (x + hx, y + hy). */

typedef struct pg__dims {
    size_t iw, ih, ow, oh;
    int hx, hy;
} pg__dims;

/* Box sum, separable: row sums of KW cells, then column sums of KH of them;
 * both in ascending order, so the per-cell order is fixed. */
static void pg__box_sum(const double *restrict src, const pg__dims *d, double *restrict tmp,
                        double *restrict dst)
{
    const int kw = 2 * d->hx + 1, kh = 2 * d->hy + 1;
    const size_t ow = d->ow;
    for (size_t r = 0; r < d->ih; r++) {
        const double *restrict s = src + r * d->iw;
        double *restrict t = tmp + r * ow;
        memcpy(t, s, ow * sizeof *t);
        for (int k = 1; k < kw; k++) {
            const double *restrict sk = s + k;
            for (size_t x = 0; x < ow; x++)
                t[x] += sk[x];
        }
    }
    for (size_t y = 0; y < d->oh; y++) {
        double *restrict o = dst + y * ow;
        memcpy(o, tmp + y * ow, ow * sizeof *o);
        for (int k = 1; k < kh; k++) {
            const double *restrict tk = tmp + (y + (size_t)k) * ow;
            for (size_t x = 0; x < ow; x++)
                o[x] += tk[x];
        }
    }
}

#define PG__MINOP(a, b) ((a) < (b) ? (a) : (b))
#define PG__MAXOP(a, b) ((a) > (b) ? (a) : (b))

/* Box min/max, separable (exact, so any order gives the same value). */
#define PG__BOXEXT(NAME, OP)                                                                       \
    static void NAME(const double *restrict src, const pg__dims *d, double *restrict tmp,          \
                     double *restrict dst)                                                         \
    {                                                                                              \
        const int kw = 2 * d->hx + 1, kh = 2 * d->hy + 1;                                          \
        const size_t ow = d->ow;                                                                   \
        for (size_t r = 0; r < d->ih; r++) {                                                       \
            const double *restrict s = src + r * d->iw;                                            \
            double *restrict t = tmp + r * ow;                                                     \
            memcpy(t, s, ow * sizeof *t);                                                          \
            for (int k = 1; k < kw; k++) {                                                         \
                const double *restrict sk = s + k;                                                 \
                for (size_t x = 0; x < ow; x++)                                                    \
                    t[x] = OP(sk[x], t[x]);                                                        \
            }                                                                                      \
        }                                                                                          \
        for (size_t y = 0; y < d->oh; y++) {                                                       \
            double *restrict o = dst + y * ow;                                                     \
            memcpy(o, tmp + y * ow, ow * sizeof *o);                                               \
            for (int k = 1; k < kh; k++) {                                                         \
                const double *restrict tk = tmp + (y + (size_t)k) * ow;                            \
                for (size_t x = 0; x < ow; x++)                                                    \
                    o[x] = OP(tk[x], o[x]);                                                        \
            }                                                                                      \
        }                                                                                          \
    }
PG__BOXEXT(pg__box_min, PG__MINOP)
PG__BOXEXT(pg__box_max, PG__MAXOP)

/* One pass per offset, in row-major offset order (the fixed per-cell
 * order): sums (weighted when W), minima, maxima. */
static void pg__off_sum(const double *restrict src, const pg__dims *d, const pg__fplan *p,
                        const double *w, double *restrict dst)
{
    const size_t ow = d->ow;
    for (size_t y = 0; y < d->oh; y++) {
        double *restrict o = dst + y * ow;
        memset(o, 0, ow * sizeof *o);
        for (int k = 0; k < p->noff; k++) {
            const double *restrict s =
                src + (y + (size_t)(d->hy + p->ody[k])) * d->iw + (size_t)(d->hx + p->odx[k]);
            if (w != NULL) {
                const double wk = w[k];
                for (size_t x = 0; x < ow; x++)
                    o[x] += wk * s[x];
            } else {
                for (size_t x = 0; x < ow; x++)
                    o[x] += s[x];
            }
        }
    }
}

#define PG__OFFEXT(NAME, OP, INIT)                                                                 \
    static void NAME(const double *restrict src, const pg__dims *d, const pg__fplan *p,            \
                     double *restrict dst)                                                         \
    {                                                                                              \
        const size_t ow = d->ow;                                                                   \
        for (size_t y = 0; y < d->oh; y++) {                                                       \
            double *restrict o = dst + y * ow;                                                     \
            for (size_t x = 0; x < ow; x++)                                                        \
                o[x] = INIT;                                                                       \
            for (int k = 0; k < p->noff; k++) {                                                    \
                const double *restrict s =                                                         \
                    src + (y + (size_t)(d->hy + p->ody[k])) * d->iw + (size_t)(d->hx + p->odx[k]); \
                for (size_t x = 0; x < ow; x++)                                                    \
                    o[x] = OP(s[x], o[x]);                                                         \
            }                                                                                      \
        }                                                                                          \
    }
PG__OFFEXT(pg__off_min, PG__MINOP, INFINITY)
PG__OFFEXT(pg__off_max, PG__MAXOP, -INFINITY)

/* Sums over the shape's row spans from per-row prefix sums. Only for values
 * whose sums are exact in double (integers): then the result does not depend
 * on the order. PRE: IH x (IW + 1) doubles. */
static void pg__span_sum(const double *restrict src, const pg__dims *d, const pg__fplan *p,
                         double *restrict pre, double *restrict dst)
{
    const size_t pw = d->iw + 1, ow = d->ow;
    for (size_t r = 0; r < d->ih; r++) {
        const double *s = src + r * d->iw;
        double *P = pre + r * pw;
        P[0] = 0;
        for (size_t c = 0; c < d->iw; c++)
            P[c + 1] = P[c] + s[c];
    }
    for (size_t y = 0; y < d->oh; y++) {
        double *restrict o = dst + y * ow;
        memset(o, 0, ow * sizeof *o);
        for (int k = 0; k < p->nspan; k++) {
            const pg__span *sp = &p->spans[k];
            const double *P = pre + (y + (size_t)(d->hy + sp->dy)) * pw;
            const double *restrict hi = P + (size_t)(d->hx + sp->b + 1);
            const double *restrict lo = P + (size_t)(d->hx + sp->a);
            for (size_t x = 0; x < ow; x++)
                o[x] += hi[x] - lo[x];
        }
    }
}

/* Valid cells per window (exact), from integer prefix sums of the mask. */
static void pg__count(const uint8_t *restrict m, const pg__dims *d, const pg__fplan *p,
                      int32_t *restrict pre, double *restrict C)
{
    const size_t pw = d->iw + 1, ow = d->ow;
    for (size_t r = 0; r < d->ih; r++) {
        const uint8_t *s = m + r * d->iw;
        int32_t *P = pre + r * pw;
        P[0] = 0;
        for (size_t c = 0; c < d->iw; c++)
            P[c + 1] = P[c] + s[c];
    }
    for (size_t y = 0; y < d->oh; y++) {
        double *restrict o = C + y * ow;
        memset(o, 0, ow * sizeof *o);
        for (int k = 0; k < p->nspan; k++) {
            const pg__span *sp = &p->spans[k];
            const int32_t *P = pre + (y + (size_t)(d->hy + sp->dy)) * pw;
            const int32_t *restrict hi = P + (size_t)(d->hx + sp->b + 1);
            const int32_t *restrict lo = P + (size_t)(d->hx + sp->a);
            for (size_t x = 0; x < ow; x++)
                o[x] += (double)(hi[x] - lo[x]);
        }
    }
}

/* Sums of a work array by the best exact-or-fixed-order method. */
static void pg__sum_any(const double *src, const pg__dims *d, const pg__fplan *p, bool exact,
                        double *tmp, double *pre, double *dst)
{
    if (p->rect)
        pg__box_sum(src, d, tmp, dst);
    else if (exact)
        pg__span_sum(src, d, p, pre, dst);
    else
        pg__off_sum(src, d, p, NULL, dst);
}

/* ---- median and mode ---- */

static double pg__mid(double a, double b, bool is_int)
{
    return is_int ? round((a + b) * 0.5) : a * 0.5 + b * 0.5;
}

/* Median or mode of the N sorted values VAL(0..N-1) (a macro argument so the
 * network's strided columns and plain arrays share the code). */
#define PG__PICK(KIND, N, VAL, IS_INT, OUT)                                                        \
    do {                                                                                           \
        const int n_ = (N);                                                                        \
        if ((KIND) == PG__MEDIAN) {                                                                \
            if (n_ & 1)                                                                            \
                (OUT) = VAL((n_ - 1) / 2);                                                         \
            else                                                                                   \
                (OUT) = pg__mid(VAL(n_ / 2 - 1), VAL(n_ / 2), (IS_INT));                           \
        } else {                                                                                   \
            double best_ = VAL(0), cur_ = best_;                                                   \
            int bestc_ = 1, curc_ = 1;                                                             \
            for (int k_ = 1; k_ < n_; k_++) {                                                      \
                const double v_ = VAL(k_);                                                         \
                if (v_ == cur_) {                                                                  \
                    curc_++;                                                                       \
                } else {                                                                           \
                    cur_ = v_;                                                                     \
                    curc_ = 1;                                                                     \
                }                                                                                  \
                if (curc_ > bestc_) {                                                              \
                    bestc_ = curc_;                                                                \
                    best_ = cur_;                                                                  \
                }                                                                                  \
            }                                                                                      \
            (OUT) = best_;                                                                         \
        }                                                                                          \
    } while (0)

/* Small windows: the window's values in NOFF arrays across the row
 * (invalid = +inf, which sorts last), sorted by the network column-wise
 * with vector min/max, then picked per cell. In float (twice the vector
 * width) when the input type is exact in float (8/16-bit integers, f32). */
#define PG__NETROWS(NAME, WT)                                                                      \
    static void NAME(const double *restrict v, const pg__dims *d, const pg__fplan *p,              \
                     const double *C, const uint8_t *bad, WT *net, double *R)                      \
    {                                                                                              \
        const size_t ow = d->ow;                                                                   \
        const bool is_int = !pg_celltype_is_float(p->in_t);                                        \
        for (size_t y = 0; y < d->oh; y++) {                                                       \
            for (int k = 0; k < p->noff; k++) {                                                    \
                const double *restrict s =                                                         \
                    v + (y + (size_t)(d->hy + p->ody[k])) * d->iw + (size_t)(d->hx + p->odx[k]);   \
                WT *restrict a = net + (size_t)k * ow;                                             \
                for (size_t x = 0; x < ow; x++)                                                    \
                    a[x] = (WT)s[x];                                                               \
            }                                                                                      \
            for (int c = 0; c < p->ncmp; c++) {                                                    \
                WT *restrict a = net + (size_t)p->cmp[c][0] * ow;                                  \
                WT *restrict b = net + (size_t)p->cmp[c][1] * ow;                                  \
                for (size_t x = 0; x < ow; x++) {                                                  \
                    const WT lo = PG__MINOP(a[x], b[x]), hi = PG__MAXOP(a[x], b[x]);               \
                    a[x] = lo;                                                                     \
                    b[x] = hi;                                                                     \
                }                                                                                  \
            }                                                                                      \
            for (size_t x = 0; x < ow; x++) {                                                      \
                const size_t i = y * ow + x;                                                       \
                if (bad[i]) continue;                                                              \
                PG__PICK(p->kind, (int)C[i], PG__NETV, is_int, R[i]);                              \
            }                                                                                      \
        }                                                                                          \
    }
#define PG__NETV(k) ((double)net[(size_t)(k)*ow + x])
PG__NETROWS(pg__net_rows_f, float)
PG__NETROWS(pg__net_rows_d, double)
#undef PG__NETV

/* Whether the network is run in float. */
static bool pg__net_float(pg_celltype t)
{
    return t == PG_U8 || t == PG_I8 || t == PG_U16 || t == PG_I16 || t == PG_F32;
}

/* 8-bit types, larger windows: a 256-bin histogram slid along each row
 * (cells leaving and entering at each span's ends). */
static void pg__hist_rows(const double *restrict v, const uint8_t *restrict m, const pg__dims *d,
                          const pg__fplan *p, const double *C, const uint8_t *bad, double *R)
{
    const int off = p->in_t == PG_I8 ? 128 : 0;
    const size_t ow = d->ow, iw = d->iw;
    uint32_t hist[256];
    for (size_t y = 0; y < d->oh; y++) {
        memset(hist, 0, sizeof hist);
        for (int k = 0; k < p->noff; k++) {
            const size_t i = (y + (size_t)(d->hy + p->ody[k])) * iw + (size_t)(d->hx + p->odx[k]);
            if (m[i]) hist[(int)v[i] + off]++;
        }
        for (size_t x = 0; x < ow; x++) {
            if (x > 0) {
                for (int k = 0; k < p->nspan; k++) {
                    const pg__span *sp = &p->spans[k];
                    const size_t row = (y + (size_t)(d->hy + sp->dy)) * iw;
                    const size_t out_c = row + x - 1 + (size_t)(d->hx + sp->a);
                    const size_t in_c = row + x + (size_t)(d->hx + sp->b);
                    if (m[out_c]) hist[(int)v[out_c] + off]--;
                    if (m[in_c]) hist[(int)v[in_c] + off]++;
                }
            }
            const size_t i = y * ow + x;
            if (bad[i]) continue;
            const uint32_t n = (uint32_t)C[i];
            if (p->kind == PG__MEDIAN) {
                const uint32_t k1 = (n - 1) / 2, k2 = n / 2;
                uint32_t cum = 0;
                int lo = -1, hi = -1;
                for (int b = 0; b < 256 && hi < 0; b++) {
                    cum += hist[b];
                    if (lo < 0 && cum > k1) lo = b;
                    if (cum > k2) hi = b;
                }
                R[i] = pg__mid((double)(lo - off), (double)(hi - off), true);
            } else {
                int best = 0;
                for (int b = 1; b < 256; b++)
                    if (hist[b] > hist[best]) best = b;
                R[i] = (double)(best - off);
            }
        }
    }
}

/* The K-th smallest of A[0..N-1] (Wirth's selection); afterwards every
 * A[i < K] <= A[K]. */
static double pg__kth(double *a, ptrdiff_t n, ptrdiff_t k)
{
    ptrdiff_t l = 0, u = n - 1;
    while (l < u) {
        const double x = a[k];
        ptrdiff_t i = l, j = u;
        do {
            while (a[i] < x)
                i++;
            while (x < a[j])
                j--;
            if (i <= j) {
                double t = a[i];
                a[i] = a[j];
                a[j] = t;
                i++;
                j--;
            }
        } while (i <= j);
        if (j < k) l = i;
        if (k < i) u = j;
    }
    return a[k];
}

static int pg__cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Other types, larger windows: gather the valid values, then select (median)
 * or sort (mode). */
static void pg__gather_rows(const double *restrict v, const uint8_t *restrict m, const pg__dims *d,
                            const pg__fplan *p, const uint8_t *bad, double *buf, double *R)
{
    const bool is_int = !pg_celltype_is_float(p->in_t);
    for (size_t y = 0; y < d->oh; y++) {
        for (size_t x = 0; x < d->ow; x++) {
            const size_t i = y * d->ow + x;
            if (bad[i]) continue;
            ptrdiff_t n = 0;
            for (int k = 0; k < p->noff; k++) {
                const size_t j =
                    (y + (size_t)(d->hy + p->ody[k])) * d->iw + x + (size_t)(d->hx + p->odx[k]);
                if (m[j]) buf[n++] = v[j];
            }
            if (p->kind == PG__MEDIAN) {
                const double hi = pg__kth(buf, n, n / 2);
                if (n & 1) {
                    R[i] = hi;
                } else {
                    double lo = buf[0];
                    for (ptrdiff_t t = 1; t < n / 2; t++)
                        lo = PG__MAXOP(buf[t], lo);
                    R[i] = pg__mid(lo, hi, is_int);
                }
            } else {
                qsort(buf, (size_t)n, sizeof *buf, pg__cmp_double);
#define PG__BUFV(k) buf[k]
                PG__PICK(PG__MODE, (int)n, PG__BUFV, is_int, R[i]);
#undef PG__BUFV
            }
        }
    }
}

/* ---- standard deviation ---- */

/* Exact for inputs of up to 16 bits: S and S2 are exact integers in double
 * (|v|^2 < 2^32, at most 10201 cells), n*S2 - S^2 exact in 128 bits, then
 * one division. */
static void pg__stddev_exact(const double *S, const double *S2, const double *C, const uint8_t *bad,
                             double *R, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (bad[i]) continue;
        const int64_t c = (int64_t)C[i], s = (int64_t)S[i], s2 = (int64_t)S2[i];
        const pg__i128 num = (pg__i128)c * s2 - (pg__i128)s * s;
        const double var = (double)num / ((double)c * (double)c);
        R[i] = sqrt(var > 0 ? var : 0.0);
    }
}

/* Other types: the corrected two-pass algorithm. MEAN holds each window's
 * mean (its sum, in the fixed order, over the count); then d = v - mean is
 * summed in offset order, s = sum d, s2 = sum d^2, var = (s2 - s^2/n) / n
 * (s is the rounding error of the mean, which the correction removes). No
 * cancellation of large squares, whatever the values. R may be MEAN. */
static void pg__stddev_2pass(const double *restrict v, const double *restrict md, const pg__dims *d,
                             const pg__fplan *p, const double *C, double *rowbuf,
                             const double *mean, double *R)
{
    const size_t ow = d->ow;
    double *restrict c = rowbuf, *restrict s = rowbuf + ow, *restrict s2 = rowbuf + 2 * ow;
    for (size_t y = 0; y < d->oh; y++) {
        memcpy(c, mean + y * ow, ow * sizeof *c);
        memset(s, 0, ow * sizeof *s);
        memset(s2, 0, ow * sizeof *s2);
        for (int k = 0; k < p->noff; k++) {
            const size_t o =
                (y + (size_t)(d->hy + p->ody[k])) * d->iw + (size_t)(d->hx + p->odx[k]);
            const double *restrict sv = v + o, *restrict sm = md + o;
            for (size_t x = 0; x < ow; x++) {
                const double dv = (sv[x] - c[x]) * sm[x];
                s[x] += dv;
                s2[x] += dv * dv;
            }
        }
        /* every cell (vectorised; nodata ones are replaced on store) */
        double *restrict r = R + y * ow;
        const double *restrict n = C + y * ow;
        for (size_t x = 0; x < ow; x++) {
            const double var = (s2[x] - s[x] * s[x] / n[x]) / n[x];
            r[x] = sqrt(var > 0 ? var : 0.0);
        }
    }
}

/* ---- statistics compute ---- */

/* Scratch: one pooled buffer carved into 64-byte aligned pieces. */
typedef struct pg__carve {
    char *base;
    size_t off;
} pg__carve;

static void *pg__take(pg__carve *c, size_t bytes)
{
    void *r = c->base != NULL ? c->base + c->off : NULL;
    c->off += (bytes + 63) & ~(size_t)63;
    return r;
}

static bool pg__in_ok(const pg__fplan *p, const pg_tile *out, const pg_tile *in)
{
    return in != NULL && in->type == p->in_t && in->bands == out->bands &&
           in->win.x == out->win.x - p->hx && in->win.y == out->win.y - p->hy &&
           in->win.w == out->win.w + 2 * p->hx && in->win.h == out->win.h + 2 * p->hy &&
           out->type == p->out_t;
}

/* ---- box sum and mean, the fast path ----
 * A tile whose input window lies inside the raster and holds no nodata or
 * NaN cell (every tile but the raster's edge tiles, for most rasters) needs
 * no mask, no counts and no work arrays: each output row is made from the
 * row sums of its KH input rows, kept in a ring of KH rows of doubles (a few
 * KB, in L1), and stored straight into the output. The arithmetic is the
 * general path's exactly (each cell's row sum in ascending column order
 * from the input converted to double, the row sums added in ascending row
 * order, divided by the count, rounded once), so results are the same bits;
 * only the memory traffic goes. */

/* Whether every cell of the first N of S is valid (not nodata, not NaN):
 * a branch-free OR reduction the compiler vectorises. */
#define PG__ALLVALID(N, T, ISF)                                                                    \
    static bool pg__allvalid_##N(const void *src_, size_t n, bool mask, double mv)                 \
    {                                                                                              \
        const T *restrict s = src_;                                                                \
        const T nd = mask ? (T)mv : (T)0;                                                          \
        unsigned bad = 0;                                                                          \
        if (mask)                                                                                  \
            for (size_t i = 0; i < n; i++)                                                         \
                bad |= (unsigned)(s[i] == nd) | (unsigned)((ISF) && s[i] != s[i]);                 \
        else if (ISF)                                                                              \
            for (size_t i = 0; i < n; i++)                                                         \
                bad |= (unsigned)(s[i] != s[i]);                                                   \
        return bad == 0;                                                                           \
    }

/* Row sums of KW cells of one input row (ascending, as pg__box_sum). */
#define PG__HSUM(N, T)                                                                             \
    static void pg__hsum_##N(const void *src_, size_t ow, int kw, double *restrict h)              \
    {                                                                                              \
        const T *restrict s = src_;                                                                \
        if (kw == 3) {                                                                             \
            for (size_t x = 0; x < ow; x++)                                                        \
                h[x] = ((double)s[x] + (double)s[x + 1]) + (double)s[x + 2];                       \
            return;                                                                                \
        }                                                                                          \
        for (size_t x = 0; x < ow; x++)                                                            \
            h[x] = (double)s[x];                                                                   \
        for (int k = 1; k < kw; k++) {                                                             \
            const T *restrict sk = s + k;                                                          \
            for (size_t x = 0; x < ow; x++)                                                        \
                h[x] += (double)sk[x];                                                             \
        }                                                                                          \
    }

PG__ALLVALID(u8, uint8_t, 0)
PG__ALLVALID(i8, int8_t, 0)
PG__ALLVALID(u16, uint16_t, 0)
PG__ALLVALID(i16, int16_t, 0)
PG__ALLVALID(u32, uint32_t, 0)
PG__ALLVALID(i32, int32_t, 0)
PG__ALLVALID(f32, float, 1)
PG__ALLVALID(f64, double, 1)
PG__HSUM(u8, uint8_t)
PG__HSUM(i8, int8_t)
PG__HSUM(u16, uint16_t)
PG__HSUM(i16, int16_t)
PG__HSUM(u32, uint32_t)
PG__HSUM(i32, int32_t)
PG__HSUM(f32, float)
PG__HSUM(f64, double)

typedef bool (*pg__allvalid_fn)(const void *, size_t, bool, double);
static const pg__allvalid_fn pg__allvalids[PG_CELLTYPE_COUNT] = {
    pg__allvalid_u8,  pg__allvalid_i8,  pg__allvalid_u16, pg__allvalid_i16,
    pg__allvalid_u32, pg__allvalid_i32, pg__allvalid_f32, pg__allvalid_f64,
};
typedef void (*pg__hsum_fn)(const void *, size_t, int, double *restrict);
static const pg__hsum_fn pg__hsums[PG_CELLTYPE_COUNT] = {
    pg__hsum_u8,  pg__hsum_i8,  pg__hsum_u16, pg__hsum_i16,
    pg__hsum_u32, pg__hsum_i32, pg__hsum_f32, pg__hsum_f64,
};

/* Column sums of the KH ring rows for output row Y (ring row of input row
 * r: r % KH), divided by DIV when MEAN, stored as the output type (f32 or
 * f64: sum and mean never have another), non-finite -> nodata. */
static void pg__box_row_out(double *const *ring, int kh, size_t y, size_t ow, bool mean, double div,
                            pg_celltype out_t, double nd, double *restrict acc, void *dst)
{
    const double *restrict r0 = ring[y % (size_t)kh];
    if (kh == 3) {
        const double *restrict r1 = ring[(y + 1) % 3], *restrict r2 = ring[(y + 2) % 3];
        for (size_t x = 0; x < ow; x++)
            acc[x] = (r0[x] + r1[x]) + r2[x];
    } else {
        memcpy(acc, r0, ow * sizeof *acc);
        for (int k = 1; k < kh; k++) {
            const double *restrict rk = ring[(y + (size_t)k) % (size_t)kh];
            for (size_t x = 0; x < ow; x++)
                acc[x] += rk[x];
        }
    }
    if (mean)
        for (size_t x = 0; x < ow; x++)
            acc[x] = acc[x] / div;
    if (out_t == PG_F32) {
        float *restrict o = dst;
        const float ndv = (float)nd;
        for (size_t x = 0; x < ow; x++) {
            const double v = acc[x];
            o[x] = fabs(v) <= FLT_MAX ? (float)v : ndv;
        }
    } else {
        double *restrict o = dst;
        for (size_t x = 0; x < ow; x++) {
            const double v = acc[x];
            o[x] = fabs(v) <= DBL_MAX ? v : nd;
        }
    }
}

/* The fast path for one band (ROWS: its IW x IH input cells; DST: its OW x
 * OH output cells). SCRATCH: (KH + 1) * OW doubles. Returns false, having
 * written nothing, when a cell of the band is invalid. */
static bool pg__box_fast(const pg__fplan *p, const char *rows, size_t iw, size_t ih, size_t ow,
                         size_t oh, double *scratch, void *dst)
{
    if (!pg__allvalids[p->in_t](rows, iw * ih, p->in_mask, p->in_mask_value)) return false;
    const int kw = 2 * p->hx + 1, kh = 2 * p->hy + 1;
    const size_t cs = pg_celltype_size(p->in_t), os = pg_celltype_size(p->out_t);
    double *ring[2 * PG__MAX_KERNEL];
    for (int k = 0; k < kh; k++)
        ring[k] = scratch + (size_t)k * ow;
    double *acc = scratch + (size_t)kh * ow;
    const pg__hsum_fn hsum = pg__hsums[p->in_t];
    for (int k = 0; k < kh - 1; k++)
        hsum(rows + (size_t)k * iw * cs, ow, kw, ring[k]);
    for (size_t y = 0; y < oh; y++) {
        const size_t r = y + (size_t)kh - 1; /* the new input row */
        hsum(rows + r * iw * cs, ow, kw, ring[r % (size_t)kh]);
        pg__box_row_out(ring, kh, y, ow, p->kind == PG__MEAN, (double)p->noff, p->out_t, p->out_nd,
                        acc, (char *)dst + y * ow * os);
    }
    return true;
}

/* Whether the fast path applies to this tile (then tried band by band). */
static bool pg__box_fast_ok(const pg__fplan *p, const pg_tile *t)
{
    return (p->kind == PG__SUM || p->kind == PG__MEAN) && p->rect &&
           (p->out_t == PG_F32 || p->out_t == PG_F64) && t->win.x >= 0 && t->win.y >= 0 &&
           t->win.x + t->win.w <= p->W && t->win.y + t->win.h <= p->H;
}

static int pg__stats_compute(const pg_node *n, pg_tile *out, pg_tile *const *in, pg_error *err)
{
    const pg__fplan *p = n->state;
    const pg_tile *t = in[0];
    if (!pg__in_ok(p, out, t))
        return pg_error_set(err, PG_EINTERNAL,
                            "%s: the input tile does not cover the output window and its halo",
                            pg__fname[p->kind]);
    const size_t OH = (size_t)out->win.h, IH = (size_t)t->win.h;
    if (out->win.w <= 0 || OH == 0) return 0;
    const size_t isize = pg_celltype_size(p->in_t), osize = pg_celltype_size(p->out_t);

    /* Box sums and means of valid inner tiles: the fast path, band by band;
     * B0 is the first band it could not do (then the general path below
     * does that one and tries the fast path again on the next ones). */
    pg_tile *fscratch = NULL;
    int b0 = 0;
    const bool fast = pg__box_fast_ok(p, t);
    if (fast) {
        const size_t fbytes = (size_t)(2 * p->hy + 2) * (size_t)out->win.w * sizeof(double);
        fscratch = pg_tile_new(PG_U8, 1, (pg_window){0, 0, (int64_t)fbytes, 1});
        if (fscratch == NULL)
            return pg_error_set(err, PG_ENOMEM, "%s: out of memory for scratch",
                                pg__fname[p->kind]);
        for (; b0 < out->bands; b0++)
            if (!pg__box_fast(p, (const char *)t->data + (size_t)b0 * IH * (size_t)t->win.w * isize,
                              (size_t)t->win.w, IH, (size_t)out->win.w, OH, fscratch->data,
                              (char *)out->data + (size_t)b0 * OH * (size_t)out->win.w * osize))
                break;
        if (b0 == out->bands) {
            pg_tile_unref(&fscratch);
            return 0;
        }
    }
    /* the scratch is laid out for the tallest strip */
    const size_t sh = pg__strip_rows((size_t)t->win.w, OH, p->hy);
    pg__dims d = {(size_t)t->win.w, sh + 2 * (size_t)p->hy, (size_t)out->win.w, sh, p->hx, p->hy};
    size_t ni = d.iw * d.ih, no = d.ow * d.oh;
    const pg__fk kind = p->kind;
    const bool is_float = pg_celltype_is_float(p->in_t);
    const bool small_int =
        p->in_t == PG_U8 || p->in_t == PG_I8 || p->in_t == PG_U16 || p->in_t == PG_I16;
    const bool net = (kind == PG__MEDIAN || kind == PG__MODE) && p->cmp != NULL;
    const bool hist =
        (kind == PG__MEDIAN || kind == PG__MODE) && !net && (p->in_t == PG_U8 || p->in_t == PG_I8);
    const bool gather = (kind == PG__MEDIAN || kind == PG__MODE) && !net && !hist;
    const bool sd_exact = kind == PG__STDDEV && small_int;
    const bool need_md =
        (kind == PG__STDDEV && !sd_exact) || (kind == PG__CONVOLVE && p->normalize);

    /* Lay out the scratch (a first pass with a NULL base only measures). */
    double *v = NULL, *md = NULL, *R = NULL, *R2 = NULL, *C = NULL, *tmp = NULL, *pre = NULL;
    double *netb = NULL, *buf = NULL, *rowb = NULL, *v2 = NULL;
    int32_t *ipre = NULL;
    uint8_t *m = NULL, *bad = NULL;
    pg_tile *scratch = NULL;
    for (int pass = 0; pass < 2; pass++) {
        pg__carve c = {scratch != NULL ? scratch->data : NULL, 0};
        v = pg__take(&c, ni * sizeof(double));
        m = pg__take(&c, ni);
        R = pg__take(&c, no * sizeof(double));
        C = pg__take(&c, no * sizeof(double));
        bad = pg__take(&c, no);
        ipre = pg__take(&c, d.ih * (d.iw + 1) * sizeof(int32_t));
        if (p->rect) tmp = pg__take(&c, d.ih * d.ow * sizeof(double));
        if (!p->rect && !is_float) pre = pg__take(&c, d.ih * (d.iw + 1) * sizeof(double));
        if (need_md) md = pg__take(&c, ni * sizeof(double));
        if (sd_exact) {
            v2 = pg__take(&c, ni * sizeof(double));
            R2 = pg__take(&c, no * sizeof(double));
        }
        if (kind == PG__RANGE || (kind == PG__CONVOLVE && p->normalize))
            R2 = pg__take(&c, no * sizeof(double));
        if (net) netb = pg__take(&c, (size_t)p->noff * d.ow * sizeof(double));
        if (gather) buf = pg__take(&c, (size_t)p->noff * sizeof(double));
        if (kind == PG__STDDEV && !sd_exact) rowb = pg__take(&c, 3 * d.ow * sizeof(double));
        if (pass == 0) {
            scratch = pg_tile_new(PG_U8, 1, (pg_window){0, 0, (int64_t)c.off + 64, 1});
            if (scratch == NULL) {
                pg_tile_unref(&fscratch);
                return pg_error_set(err, PG_ENOMEM, "%s: out of memory for scratch",
                                    pg__fname[kind]);
            }
        }
    }

    const double fill =
        (kind == PG__MIN || kind == PG__RANGE || kind == PG__MEDIAN || kind == PG__MODE) ? INFINITY
        : kind == PG__MAX                                                                ? -INFINITY
                                                                                         : 0.0;
    const bool arith =
        !(kind == PG__MIN || kind == PG__MAX || kind == PG__MEDIAN || kind == PG__MODE);
    for (int b = b0; b < out->bands; b++) {
        if (fast && b > b0 &&
            pg__box_fast(p, (const char *)t->data + (size_t)b * IH * d.iw * isize, d.iw, IH, d.ow,
                         OH, fscratch->data, (char *)out->data + (size_t)b * OH * d.ow * osize))
            continue;
        for (size_t y0 = 0; y0 < OH; y0 += sh) {
            const size_t h = sh < OH - y0 ? sh : OH - y0;
            d.oh = h;
            d.ih = h + 2 * (size_t)p->hy;
            ni = d.iw * d.ih;
            no = d.ow * d.oh;
            const char *rows = (const char *)t->data + ((size_t)b * IH + y0) * d.iw * isize;
            const pg_window sw = {t->win.x, t->win.y + (int64_t)y0, t->win.w, (int64_t)d.ih};
            if (pg__load(p, rows, sw, fill, v, NULL, m) == ni) {
                /* every cell valid (and inside the raster): the common case */
                for (size_t i = 0; i < no; i++)
                    C[i] = (double)p->noff;
                memset(bad, 0, no);
            } else {
                pg__count(m, &d, p, ipre, C);
                /* nodata: the centre, or no valid cell at all */
                for (size_t y = 0; y < d.oh; y++) {
                    const uint8_t *mc = m + (y + (size_t)p->hy) * d.iw + (size_t)p->hx;
                    uint8_t *br = bad + y * d.ow;
                    const double *cr = C + y * d.ow;
                    for (size_t x = 0; x < d.ow; x++)
                        br[x] = (uint8_t)(!mc[x] | (cr[x] == 0.0));
                }
            }
            if (need_md)
                for (size_t i = 0; i < ni; i++)
                    md[i] = (double)m[i];
            /* kernels that skip nodata cells leave them unwritten */
            if (kind == PG__MEDIAN || kind == PG__MODE || kind == PG__STDDEV)
                memset(R, 0, no * sizeof *R);

            switch (kind) {
            case PG__SUM:
            case PG__MEAN:
                pg__sum_any(v, &d, p, !is_float, tmp, pre, R);
                /* unconditional (vectorised); nodata cells are replaced on store */
                if (kind == PG__MEAN)
                    for (size_t i = 0; i < no; i++)
                        R[i] = R[i] / C[i];
                break;
            case PG__CONVOLVE:
                pg__off_sum(v, &d, p, p->ow, R);
                if (p->normalize) {
                    pg__off_sum(md, &d, p, p->ow, R2);
                    for (size_t i = 0; i < no; i++) {
                        bad[i] |= R2[i] == 0.0;
                        R[i] = R[i] / R2[i];
                    }
                }
                break;
            case PG__MIN:
                if (p->rect)
                    pg__box_min(v, &d, tmp, R);
                else
                    pg__off_min(v, &d, p, R);
                break;
            case PG__MAX:
                if (p->rect)
                    pg__box_max(v, &d, tmp, R);
                else
                    pg__off_max(v, &d, p, R);
                break;
            case PG__RANGE:
                if (p->rect)
                    pg__box_min(v, &d, tmp, R);
                else
                    pg__off_min(v, &d, p, R);
                for (size_t i = 0; i < ni; i++)
                    if (!m[i]) v[i] = -INFINITY;
                if (p->rect)
                    pg__box_max(v, &d, tmp, R2);
                else
                    pg__off_max(v, &d, p, R2);
                for (size_t i = 0; i < no; i++)
                    R[i] = bad[i] ? 0.0 : R2[i] - R[i];
                break;
            case PG__MEDIAN:
            case PG__MODE:
                if (net)
                    if (pg__net_float(p->in_t))
                        pg__net_rows_f(v, &d, p, C, bad, (float *)netb, R);
                    else
                        pg__net_rows_d(v, &d, p, C, bad, netb, R);
                else if (hist)
                    pg__hist_rows(v, m, &d, p, C, bad, R);
                else
                    pg__gather_rows(v, m, &d, p, bad, buf, R);
                break;
            case PG__STDDEV:
                if (sd_exact) {
                    for (size_t i = 0; i < ni; i++)
                        v2[i] = v[i] * v[i];
                    pg__sum_any(v, &d, p, true, tmp, pre, R);
                    pg__sum_any(v2, &d, p, true, tmp, pre, R2);
                    pg__stddev_exact(R, R2, C, bad, R, no);
                } else {
                    pg__sum_any(v, &d, p, !is_float, tmp, pre, R);
                    for (size_t i = 0; i < no; i++)
                        R[i] = R[i] / C[i];
                    pg__stddev_2pass(v, md, &d, p, C, rowb, R, R);
                }
                break;
            default:
                break;
            }
            pg__stores[p->out_t]((char *)out->data + ((size_t)b * OH + y0) * d.ow * osize, R, bad,
                                 p->out_nd, arith, no);
        }
    }
    pg_tile_unref(&scratch);
    pg_tile_unref(&fscratch);
    return 0;
}

/* ---- terrain ----
 * gdaldem's Horn window sums, in the work type T (float for f32 input, as
 * gdaldem computes them; double otherwise). W[0..8] is the 3x3 window,
 * row-major from the north-west corner. */
#define PG__HX(w) (((w)[0] + (w)[3] + (w)[3] + (w)[6]) - ((w)[2] + (w)[5] + (w)[5] + (w)[8]))
#define PG__HY(w) (((w)[6] + (w)[7] + (w)[7] + (w)[8]) - ((w)[0] + (w)[1] + (w)[1] + (w)[2]))

#define PG__TERRAIN(TN, T)                                                                         \
    static inline float pg__slope_##TN(const pg__fplan *p, const T *w)                             \
    {                                                                                              \
        const double dx = (double)(T)PG__HX(w) / p->ewres;                                         \
        const double dy = (double)(T)PG__HY(w) / p->nsres;                                         \
        const double key = dx * dx + dy * dy;                                                      \
        if (p->percent) return (float)(100 * (sqrt(key) / 8));                                     \
        return (float)(atan(sqrt(key) / 8) * (180.0 / M_PI));                                      \
    }                                                                                              \
    static inline float pg__aspect_##TN(const pg__fplan *p, const T *w)                            \
    {                                                                                              \
        /* east minus west: gdaldem's (w2 + 2w5 + w8) - (w0 + 2w3 + w6), the                       \
         * negated west-minus-east (IEEE subtraction is antisymmetric) */                          \
        double dx = -(double)(T)PG__HX(w);                                                         \
        double dy = (double)(T)PG__HY(w);                                                          \
        if (dx == 0 && dy == 0) return (float)PG__TERRAIN_ND;                                      \
        if (!p->gdal_aspect) {                                                                     \
            dx /= p->ewres;                                                                        \
            dy /= -p->nsres;                                                                       \
        }                                                                                          \
        float a = (float)(atan2(dy, -dx) / (M_PI / 180.0));                                        \
        a = a > 90.0f ? 450.0f - a : 90.0f - a;                                                    \
        return a == 360.0f ? 0.0f : a;                                                             \
    }                                                                                              \
    static inline float pg__shade_##TN(const pg__fplan *p, const T *w)                             \
    {                                                                                              \
        const double x = (double)(T)PG__HX(w) * p->inv_ew;                                         \
        const double y = (double)(T)PG__HY(w) * p->inv_ns;                                         \
        const double c = (p->sin_alt254 - (y * p->cos_az254 - x * p->sin_az254)) /                 \
                         sqrt(1 + p->sq_z * (x * x + y * y));                                      \
        return (float)(1.0 + (c > 0 ? c : 0.0)); /* NaN -> 1 */                                    \
    }                                                                                              \
    /* gdaldem's window for raster cell (GX, GY) near an edge or nodata; Z, M                      \
     * the tile's work values and mask, (OX, OY) its window's origin. Each of                      \
     * the 9 cells is a raster cell (ra, ca) or, beyond the edge, the                              \
     * extrapolation 2 z(ra, ca) - z(rb, cb) in T (invalid if either is).                          \
     * False: nodata. */                                                                           \
    static bool pg__twin_##TN(const pg__fplan *p, const T *z, const uint8_t *m, size_t iw,         \
                              int64_t ox, int64_t oy, int64_t gx, int64_t gy, T *w)                \
    {                                                                                              \
        const int64_t W = p->W, H = p->H;                                                          \
        if (W < 2 || H < 2 || gx < 0 || gy < 0 || gx >= W || gy >= H) return false;                \
        const bool tb = gy == 0 || gy == H - 1;                                                    \
        /* first and last rows: the column beyond a corner repeats it */                           \
        const int64_t jmin = gx == 0 ? 0 : gx - 1, jmax = gx == W - 1 ? gx : gx + 1;               \
        T val[9];                                                                                  \
        bool ok[9];                                                                                \
        for (int k = 0; k < 9; k++) {                                                              \
            const int i = k / 3, j = k % 3;                                                        \
            int64_t ra, ca, rb = 0, cb = 0;                                                        \
            bool ext = false;                                                                      \
            if (tb) {                                                                              \
                ca = cb = j == 0 ? jmin : j == 1 ? gx : jmax;                                      \
                if (gy == 0) {                                                                     \
                    ext = i == 0;                                                                  \
                    ra = ext ? 0 : i - 1;                                                          \
                    rb = 1;                                                                        \
                } else {                                                                           \
                    ext = i == 2;                                                                  \
                    ra = ext ? H - 1 : H - 2 + i;                                                  \
                    rb = H - 2;                                                                    \
                }                                                                                  \
            } else {                                                                               \
                ra = rb = gy - 1 + i;                                                              \
                if (gx == 0 && j == 0) {                                                           \
                    ext = true;                                                                    \
                    ca = 0;                                                                        \
                    cb = 1;                                                                        \
                } else if (gx == W - 1 && j == 2) {                                                \
                    ext = true;                                                                    \
                    ca = W - 1;                                                                    \
                    cb = W - 2;                                                                    \
                } else {                                                                           \
                    ca = gx - 1 + j;                                                               \
                }                                                                                  \
            }                                                                                      \
            const size_t ia = (size_t)(ra - oy) * iw + (size_t)(ca - ox);                          \
            if (!ext) {                                                                            \
                val[k] = z[ia];                                                                    \
                ok[k] = m[ia] != 0;                                                                \
            } else {                                                                               \
                const size_t ib = (size_t)(rb - oy) * iw + (size_t)(cb - ox);                      \
                ok[k] = m[ia] && m[ib];                                                            \
                val[k] = ok[k] ? (T)((T)2 * z[ia] - z[ib]) : (T)0;                                 \
            }                                                                                      \
        }                                                                                          \
        if (!ok[4]) return false;                                                                  \
        for (int k = 0; k < 9; k++)                                                                \
            w[k] = ok[k] ? val[k] : val[4];                                                        \
        return true;                                                                               \
    }                                                                                              \
    /* Hillshade of every window of a row, as if all were inside and valid:                        \
     * straight-line code; the same arithmetic as pg__shade. (GCC keeps it                         \
     * scalar: sqrt's errno and the NaN-safe max stop its vectoriser.) */                          \
    static void pg__shade_row_##TN(const pg__fplan *p, const T *restrict r0, const T *restrict r1, \
                                   const T *restrict r2, float *restrict out, size_t n)            \
    {                                                                                              \
        const double iew = p->inv_ew, ins = p->inv_ns, sa = p->sin_alt254, ca = p->cos_az254;      \
        const double sz = p->sin_az254, q = p->sq_z;                                               \
        for (size_t x = 0; x < n; x++) {                                                           \
            const T hx =                                                                           \
                (r0[x] + r1[x] + r1[x] + r2[x]) - (r0[x + 2] + r1[x + 2] + r1[x + 2] + r2[x + 2]); \
            const T hy = (r2[x] + r2[x + 1] + r2[x + 1] + r2[x + 2]) -                             \
                         (r0[x] + r0[x + 1] + r0[x + 1] + r0[x + 2]);                              \
            const double X = (double)hx * iew, Y = (double)hy * ins;                               \
            const double c = (sa - (Y * ca - X * sz)) / sqrt(1 + q * (X * X + Y * Y));             \
            out[x] = (float)(1.0 + (c > 0 ? c : 0.0));                                             \
        }                                                                                          \
    }                                                                                              \
    static void pg__terrain_band_##TN(const pg__fplan *p, const T *restrict z,                     \
                                      const uint8_t *restrict m, const pg__dims *d,                \
                                      const pg_window *iwin, const pg_window *owin,                \
                                      uint8_t *restrict mh, float *restrict row, void *dst)        \
    {                                                                                              \
        const size_t iw = d->iw, ow = d->ow;                                                       \
        /* mh[r][x]: cells x..x+2 of input row r all valid */                                      \
        for (size_t r = 0; r < d->ih; r++) {                                                       \
            const uint8_t *mr = m + r * iw;                                                        \
            uint8_t *hr = mh + r * ow;                                                             \
            for (size_t x = 0; x < ow; x++)                                                        \
                hr[x] = mr[x] & mr[x + 1] & mr[x + 2];                                             \
        }                                                                                          \
        for (size_t y = 0; y < d->oh; y++) {                                                       \
            const T *r0 = z + y * iw, *r1 = r0 + iw, *r2 = r1 + iw;                                \
            const uint8_t *h0 = mh + y * ow, *h1 = h0 + ow, *h2 = h1 + ow;                         \
            const int64_t gy = owin->y + (int64_t)y;                                               \
            if (p->kind == PG__HILLSHADE) {                                                        \
                /* every window as if inside and valid, then the others redone */                  \
                uint8_t *restrict o = (uint8_t *)dst + y * ow;                                     \
                pg__shade_row_##TN(p, r0, r1, r2, row, ow);                                        \
                for (size_t x = 0; x < ow; x++)                                                    \
                    o[x] = (uint8_t)(row[x] + 0.5f);                                               \
                for (size_t x = 0; x < ow; x++) {                                                  \
                    if (h0[x] & h1[x] & h2[x]) continue;                                           \
                    T ws[9];                                                                       \
                    const bool ok = pg__twin_##TN(p, z, m, iw, iwin->x, iwin->y,                   \
                                                  owin->x + (int64_t)x, gy, ws);                   \
                    o[x] = ok ? (uint8_t)(pg__shade_##TN(p, ws) + 0.5f) : 0;                       \
                }                                                                                  \
                continue;                                                                          \
            }                                                                                      \
            float *restrict o = (float *)dst + y * ow;                                             \
            for (size_t x = 0; x < ow; x++) {                                                      \
                T ws[9];                                                                           \
                bool ok = true;                                                                    \
                if (h0[x] & h1[x] & h2[x]) {                                                       \
                    ws[0] = r0[x], ws[1] = r0[x + 1], ws[2] = r0[x + 2];                           \
                    ws[3] = r1[x], ws[4] = r1[x + 1], ws[5] = r1[x + 2];                           \
                    ws[6] = r2[x], ws[7] = r2[x + 1], ws[8] = r2[x + 2];                           \
                } else {                                                                           \
                    ok = pg__twin_##TN(p, z, m, iw, iwin->x, iwin->y, owin->x + (int64_t)x, gy,    \
                                       ws);                                                        \
                }                                                                                  \
                o[x] = !ok                    ? (float)PG__TERRAIN_ND                              \
                       : p->kind == PG__SLOPE ? pg__slope_##TN(p, ws)                              \
                                              : pg__aspect_##TN(p, ws);                            \
            }                                                                                      \
        }                                                                                          \
    }

PG__TERRAIN(f, float)
PG__TERRAIN(d, double)

static int pg__terrain_compute(const pg_node *n, pg_tile *out, pg_tile *const *in, pg_error *err)
{
    const pg__fplan *p = n->state;
    const pg_tile *t = in[0];
    if (!pg__in_ok(p, out, t))
        return pg_error_set(err, PG_EINTERNAL,
                            "%s: the input tile does not cover the output window and its halo",
                            pg__fname[p->kind]);
    const size_t OH = (size_t)out->win.h, IH = (size_t)t->win.h;
    if (out->win.w <= 0 || OH == 0) return 0;
    const size_t sh = pg__strip_rows((size_t)t->win.w, OH, 1);
    pg__dims d = {(size_t)t->win.w, sh + 2, (size_t)out->win.w, sh, 1, 1};
    const size_t ni = d.iw * d.ih;
    const bool f32 = p->in_t == PG_F32;
    const size_t zs = f32 ? sizeof(float) : sizeof(double);
    pg__carve c = {NULL, 0};
    pg__take(&c, ni * zs);
    pg__take(&c, ni);
    pg__take(&c, d.ih * d.ow);
    pg__take(&c, d.ow * sizeof(float));
    pg_tile *scratch = pg_tile_new(PG_U8, 1, (pg_window){0, 0, (int64_t)c.off + 64, 1});
    if (scratch == NULL)
        return pg_error_set(err, PG_ENOMEM, "%s: out of memory for scratch", pg__fname[p->kind]);
    c = (pg__carve){scratch->data, 0};
    void *z = pg__take(&c, ni * zs);
    uint8_t *m = pg__take(&c, ni);
    uint8_t *mh = pg__take(&c, d.ih * d.ow);
    float *row = pg__take(&c, d.ow * sizeof(float));
    const size_t isize = pg_celltype_size(p->in_t), osize = pg_celltype_size(p->out_t);
    for (int b = 0; b < out->bands; b++) {
        for (size_t y0 = 0; y0 < OH; y0 += sh) {
            d.oh = sh < OH - y0 ? sh : OH - y0;
            d.ih = d.oh + 2;
            const char *rows = (const char *)t->data + ((size_t)b * IH + y0) * d.iw * isize;
            const pg_window iw = {t->win.x, t->win.y + (int64_t)y0, t->win.w, (int64_t)d.ih};
            const pg_window ow = {out->win.x, out->win.y + (int64_t)y0, out->win.w, (int64_t)d.oh};
            void *dst = (char *)out->data + ((size_t)b * OH + y0) * d.ow * osize;
            if (f32) {
                pg__load(p, rows, iw, 0.0, NULL, z, m);
                pg__terrain_band_f(p, z, m, &d, &iw, &ow, mh, row, dst);
            } else {
                pg__load(p, rows, iw, 0.0, z, NULL, m);
                pg__terrain_band_d(p, z, m, &d, &iw, &ow, mh, row, dst);
            }
        }
    }
    pg_tile_unref(&scratch);
    return 0;
}

/* ---- the table ---- */

#define PG__SHAPE_PARAMS                                                                           \
    {.name = "shape",                                                                              \
     .type = PG_PARAM_STRING,                                                                      \
     .default_json = "\"square\"",                                                                 \
     .doc = "The neighbourhood: \"square\" ((2r+1)^2 cells), \"circle\" (cells whose centre is "   \
            "within radius r of the centre cell's centre: dx^2 + dy^2 <= r^2), \"annulus\" "       \
            "(inner_radius^2 < dx^2 + dy^2 <= r^2), \"wedge\" (the circle's cells whose azimuth "  \
            "from the centre, in degrees clockwise from north = up, lies on the clockwise sweep "  \
            "from 'start' to 'end', bounds included, plus the centre cell), \"cross\" (dx = 0 or " \
            "dy = 0, arms of length r) or \"kernel\" (the cells where 'kernel' is non-zero)."},    \
        {.name = "radius",                                                                         \
         .type = PG_PARAM_INT,                                                                     \
         .default_json = "1",                                                                      \
         .doc = "Radius r in cells (ignored for shape \"kernel\").",                               \
         .min = 1,                                                                                 \
         .max = PG__MAX_RADIUS},                                                                   \
        {.name = "inner_radius",                                                                   \
         .type = PG_PARAM_NUMBER,                                                                  \
         .doc = "Shape \"annulus\" only (required there): cells at distance <= inner_radius are "  \
                "left out; 0 <= inner_radius < radius.",                                           \
         .min = 0,                                                                                 \
         .max = PG__MAX_RADIUS},                                                                   \
        {.name = "start",                                                                          \
         .type = PG_PARAM_NUMBER,                                                                  \
         .doc = "Shape \"wedge\" only (required there): the azimuth where the wedge starts, in "   \
                "degrees clockwise from north."},                                                  \
        {.name = "end",                                                                            \
         .type = PG_PARAM_NUMBER,                                                                  \
         .doc = "Shape \"wedge\" only (required there): the azimuth where it ends, going "         \
                "clockwise from 'start' (may wrap through north; must differ from 'start')."},     \
        {.name = "kernel",                                                                         \
         .type = PG_PARAM_JSON,                                                                    \
         .doc = "Shape \"kernel\" only (required there): a 2-D array of numbers, rows top to "     \
                "bottom, odd width and height, at most 101x101, centred on the cell; the cells "   \
                "with a non-zero value form the neighbourhood (weights are not used)."},           \
    {                                                                                              \
        0                                                                                          \
    }

static const pg_param_def pg__stats_params[] = {PG__SHAPE_PARAMS};

static const pg_param_def pg__convolve_params[] = {
    {.name = "kernel",
     .type = PG_PARAM_JSON,
     .required = true,
     .doc = "The weights: a 2-D array of numbers, rows top to bottom, odd width and height, at "
            "most 101x101, centred on the cell, not flipped (a correlation)."},
    {.name = "normalize",
     .type = PG_PARAM_BOOL,
     .default_json = "false",
     .doc = "Divide by the sum of the weights of the valid cells, so that a smoothing kernel "
            "stays unbiased next to edges and nodata (nodata where that sum is 0)."},
    {0},
};

#define PG__SCALE_PARAM                                                                            \
    {                                                                                              \
        .name = "scale", .type = PG_PARAM_NUMBER,                                                  \
        .doc =                                                                                     \
            "Vertical units per horizontal unit, for both axes (like gdaldem -s). Default: "       \
            "computed as gdaldem >= 3.11 does: for a geographic CRS, metres per degree of "        \
            "latitude (semi-major axis * pi/180; 111319.49 for WGS84) north-south and that times " \
            "cos(latitude of the raster's centre) east-west; for a projected CRS its linear unit " \
            "in metres; else 1. Elevations are taken to be in metres."                             \
    }

static const pg_param_def pg__slope_params[] = {
    {.name = "units",
     .type = PG_PARAM_STRING,
     .default_json = "\"degrees\"",
     .doc = "\"degrees\" (0..90) or \"percent\" (100 * rise / run)."},
    PG__SCALE_PARAM,
    {0},
};

static const pg_param_def pg__hillshade_params[] = {
    {.name = "z_factor",
     .type = PG_PARAM_NUMBER,
     .default_json = "1",
     .doc = "Vertical exaggeration (gdaldem -z)."},
    {.name = "azimuth",
     .type = PG_PARAM_NUMBER,
     .default_json = "315",
     .doc = "Direction of the light, degrees clockwise from north (gdaldem -az)."},
    {.name = "altitude",
     .type = PG_PARAM_NUMBER,
     .default_json = "45",
     .doc = "Height of the light above the horizon in degrees, 0..90 (gdaldem -alt).",
     .min = 0,
     .max = 90},
    PG__SCALE_PARAM,
    {0},
};

#define PG__EDGE_RULE                                                                              \
    " Cells outside the raster and nodata (or NaN) cells are ignored; a cell whose centre is "     \
    "nodata stays nodata, and a window without any valid cell is nodata."
#define PG__ND_RULE                                                                                \
    " Output nodata: the input's if the output type holds it, else NaN for floats, the minimum "   \
    "for signed and the maximum for unsigned integers."
#define PG__NBHD                                                                                   \
    " Neighbourhood: 'shape' (square, circle, annulus, wedge, cross or kernel) and 'radius' in "   \
    "cells (1..50)."

#define PG__STATS_OP(NAME, DOC, EXAMPLE, PLAN)                                                     \
    {                                                                                              \
        .name = NAME, .family = "focal", .doc = DOC, .example = EXAMPLE, .min_args = 1,            \
        .max_args = 1, .arg_kinds = PG_ARGK_RASTER, .params = pg__stats_params,                    \
        .result = PG_RESULT_RASTER, .plan = PLAN, .need = pg__focal_need,                          \
        .compute = pg__stats_compute, .free_state = pg__focal_free,                                \
    }

#define PG__TERRAIN_OP(NAME, DOC, EXAMPLE, PARAMS, PLAN)                                           \
    {                                                                                              \
        .name = NAME, .family = "focal", .doc = DOC, .example = EXAMPLE, .min_args = 1,            \
        .max_args = 1, .arg_kinds = PG_ARGK_RASTER, .params = PARAMS, .result = PG_RESULT_RASTER,  \
        .plan = PLAN, .need = pg__focal_need, .compute = pg__terrain_compute,                      \
        .free_state = pg__focal_free,                                                              \
    }

#define PG__TERRAIN_RULES                                                                          \
    " Horn's 3x3 method with gdaldem's arithmetic and -compute_edges edge rule: beyond the "       \
    "raster's edge neighbours are extrapolated linearly (2a - b), nodata neighbours take the "     \
    "centre's value, a nodata centre gives nodata. Cell sizes from the geotransform times "        \
    "'scale' (automatic for geographic CRSs). Each band on its own."

static const pg_param_def pg__no_params[] = {{0}};

const pg_op_def pg_ops_focal[] = {
    PG__STATS_OP("focal.sum",
                 "Sum of the valid cells of each cell's neighbourhood. Output f32 (f64 when the "
                 "input is f64, u32 or i32), computed in double." PG__NBHD PG__EDGE_RULE
                 " Non-finite sums are nodata." PG__ND_RULE,
                 "{\"op\": \"focal.sum\", \"args\": [{\"ref\": \"a\"}], \"radius\": 2}",
                 pg__sum_plan),
    PG__STATS_OP("focal.mean",
                 "Mean of the valid cells of each cell's neighbourhood (sum / count of valid "
                 "cells). Output f32 (f64 when the input is f64, u32 or i32), computed in "
                 "double." PG__NBHD PG__EDGE_RULE PG__ND_RULE,
                 "{\"op\": \"focal.mean\", \"args\": [{\"ref\": \"dem\"}], \"shape\": \"circle\", "
                 "\"radius\": 3}",
                 pg__mean_plan),
    PG__STATS_OP("focal.min",
                 "Minimum of the valid cells of each cell's neighbourhood. Output: the input's "
                 "type." PG__NBHD PG__EDGE_RULE PG__ND_RULE,
                 "{\"op\": \"focal.min\", \"args\": [{\"ref\": \"a\"}], \"shape\": \"cross\"}",
                 pg__min_plan),
    PG__STATS_OP("focal.max",
                 "Maximum of the valid cells of each cell's neighbourhood. Output: the input's "
                 "type." PG__NBHD PG__EDGE_RULE PG__ND_RULE,
                 "{\"op\": \"focal.max\", \"args\": [{\"ref\": \"a\"}], \"radius\": 2}",
                 pg__max_plan),
    PG__STATS_OP("focal.median",
                 "Median of the valid cells of each cell's neighbourhood; of an even count, the "
                 "mean of the two middle values (rounded half away from zero for integer types). "
                 "Output: the input's type." PG__NBHD PG__EDGE_RULE PG__ND_RULE,
                 "{\"op\": \"focal.median\", \"args\": [{\"ref\": \"a\"}], \"radius\": 2}",
                 pg__median_plan),
    PG__STATS_OP(
        "focal.mode",
        "Most frequent value among the valid cells of each cell's neighbourhood (ties: "
        "the smallest value). Output: the input's type." PG__NBHD PG__EDGE_RULE PG__ND_RULE,
        "{\"op\": \"focal.mode\", \"args\": [{\"ref\": \"landcover\"}], \"shape\": "
        "\"circle\", \"radius\": 2}",
        pg__mode_plan),
    PG__STATS_OP("focal.stddev",
                 "Population standard deviation (divided by the count) of the valid cells of "
                 "each cell's neighbourhood. Output f32 (f64 when the input is f64, u32 or i32), "
                 "computed in double." PG__NBHD PG__EDGE_RULE
                 " Non-finite results are nodata." PG__ND_RULE,
                 "{\"op\": \"focal.stddev\", \"args\": [{\"ref\": \"dem\"}], \"radius\": 3}",
                 pg__stddev_plan),
    PG__STATS_OP("focal.range",
                 "Maximum minus minimum of the valid cells of each cell's neighbourhood. Output: "
                 "the input's type for unsigned and float inputs, the unsigned type of the same "
                 "width for signed integers (i8 -> u8, i16 -> u16, i32 -> u32: every range fits). "
                 "Non-finite ranges are nodata." PG__NBHD PG__EDGE_RULE PG__ND_RULE,
                 "{\"op\": \"focal.range\", \"args\": [{\"ref\": \"dem\"}], \"shape\": "
                 "\"annulus\", \"radius\": 3, \"inner_radius\": 1}",
                 pg__range_plan),
    {
        .name = "focal.convolve",
        .family = "focal",
        .doc = "Weighted sum of each cell's neighbourhood with a user 'kernel' (odd width and "
               "height, at most 101x101, centred, applied as a correlation: not flipped): the sum "
               "of weight * value over the valid cells (zero weights are not part of the "
               "neighbourhood); with 'normalize', divided by the sum of the valid cells' "
               "weights. Output f32 (f64 when the input is f64, u32 or i32), computed in "
               "double; it always has a nodata value." PG__EDGE_RULE
               " Non-finite results are nodata." PG__ND_RULE,
        .example = "{\"op\": \"focal.convolve\", \"args\": [{\"ref\": \"a\"}], \"kernel\": "
                   "[[0, 1, 0], [1, 4, 1], [0, 1, 0]], \"normalize\": true}",
        .min_args = 1,
        .max_args = 1,
        .arg_kinds = PG_ARGK_RASTER,
        .params = pg__convolve_params,
        .result = PG_RESULT_RASTER,
        .plan = pg__convolve_plan,
        .need = pg__focal_need,
        .compute = pg__stats_compute,
        .free_state = pg__focal_free,
    },
    PG__TERRAIN_OP("focal.slope",
                   "Slope of an elevation raster in degrees (0..90) or, with units \"percent\", "
                   "100 * rise / run. Output f32, nodata -9999 (gdaldem's)." PG__TERRAIN_RULES,
                   "{\"op\": \"focal.slope\", \"args\": [{\"ref\": \"dem\"}]}", pg__slope_params,
                   pg__slope_plan),
    PG__TERRAIN_OP("focal.aspect",
                   "Aspect of an elevation raster: the compass direction the slope faces, in "
                   "degrees clockwise from north, [0, 360). Output f32, nodata -9999; flat cells "
                   "(zero gradient) are -9999 too, as gdaldem writes them. On non-square or "
                   "geographic cells the gradient is scaled by the true cell size first (gdaldem "
                   "ignores it)." PG__TERRAIN_RULES,
                   "{\"op\": \"focal.aspect\", \"args\": [{\"ref\": \"dem\"}]}", pg__no_params,
                   pg__aspect_plan),
    PG__TERRAIN_OP(
        "focal.hillshade",
        "Shaded relief of an elevation raster, lit from 'azimuth' at 'altitude' with "
        "vertical exaggeration 'z_factor' (gdaldem hillshade). Output u8: 1 + 254 * "
        "cos(incidence angle), at least 1, rounded; 0 is nodata (gdaldem's "
        "convention)." PG__TERRAIN_RULES,
        "{\"op\": \"focal.hillshade\", \"args\": [{\"ref\": \"dem\"}], \"azimuth\": 315, "
        "\"altitude\": 45}",
        pg__hillshade_params, pg__hillshade_plan),
    {0},
};
