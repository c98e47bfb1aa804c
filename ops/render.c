/* The render family: rasters made to be looked at. render.ramp colours one
 * band with a named colour ramp (u8 RGBA); render.rgb stretches three bands
 * into an RGB(A) composite. Save either with io.save as PNG, JPEG or
 * GeoTIFF.
 *
 * TYPE RULES. Every render op outputs u8 cells, whatever its inputs' types:
 * render.ramp 4 bands (R, G, B, A), render.rgb 3 bands (R, G, B), or 4 with
 * "alpha": true. Input cells are read as double (exact for every cell type)
 * and all decisions (class, stretch position) are made in double.
 *
 * NODATA RULES. An input cell is missing when it equals its raster's nodata
 * value (compared in the raster's own type; for f32 the nodata rounded to
 * f32, as GDAL does) or is NaN. Outputs have no nodata value:
 *  - render.ramp: a missing cell is fully transparent, (0, 0, 0, 0); every
 *    other cell has alpha round(255 * opacity).
 *  - render.rgb: a cell missing in any of the three channels is black
 *    (0, 0, 0), or (0, 0, 0, 0) with "alpha": true (every other cell then
 *    has alpha 255).
 * Infinite cells are not missing: they take the end of the ramp or stretch.
 *
 * render.ramp. Colours come from a ramp: anchor colours at positions in
 * [0, 1], linearly interpolated in RGB between neighbours. A colour at
 * position t is computed exactly (integer arithmetic on t as a fraction)
 * and rounded half up per channel. Two modes:
 *  - classes: breaks b_0 <= ... <= b_{n-1} (param "breaks", or a value arg
 *    that is a JSON list, e.g. global.quantiles or global.breaks) make n+1
 *    classes: class k holds the cells with b_{k-1} <= v < b_k (class 0:
 *    v < b_0, class n: v >= b_{n-1}), i.e. k = the number of breaks <= v.
 *    Class k has the ramp's colour at t = k / n (evenly sampled: the first
 *    class is the ramp's first colour, the last its last).
 *  - continuous: t = (v - min) / (max - min) quantised to q / 3840, with
 *    q = 0 when v <= min, 3840 when v >= max (so min == max is a step at
 *    min), else floor((v - min) * (3840 / (max - min)) + 0.5) computed in
 *    double exactly so: the colours are a table of 3841 entries, computed
 *    once per node. 3840 = 120 * 32 puts every anchor of
 *    the built-in ramps and every midpoint between two anchors on the
 *    table, and no colour is more than 1 unit (of 255) from the unquantised
 *    interpolation. min and max come from the params or from a value arg
 *    that is an object with "min" and "max" (global.stats; its per-band
 *    entry "bands"[band-1] when it has one); params win.
 *  "reverse" reads the ramp from the end: t becomes 1 - t.
 *
 * render.rgb. Channel c (R, G, B) is band "bands"[c] of the one raster arg,
 * or of raster arg c when there are three. Its value becomes
 * round_half_up(255 * t^(1/gamma)) with t = (v - lo) / (hi - lo): 0 when
 * v <= lo, 255 when v >= hi (a step at lo when lo == hi), else, with
 * gamma 1, floor((v - lo) * (255 / (hi - lo)) + 0.5) computed in double
 * exactly so, and with another gamma the number of thresholds
 * ((k - 0.5) / 255)^gamma, k = 1..255, that are <= (v - lo) * (1 / (hi -
 * lo)) (gamma > 1 brightens, as in Earth Engine's visualisation
 * parameters). lo and hi are "min"/"max"
 * (one number for all channels or one per channel), else from value args
 * (one for all channels, or three, one per channel, in channel order): a
 * global.stats object gives its min and max (with one raster arg and a
 * multi-band stats object, the entry of the channel's band), a list (e.g.
 * global.quantiles at [0.02, 0.98]) gives its first and last numbers. With
 * neither, integer cells stretch over their type's range (u8: 0..255, the
 * identity) and float cells are an error. "stretch": "none" is lo = 0,
 * hi = 255.
 *
 * COMPUTE. Tiles are processed in chunks of PG__CHUNK cells. Continuous
 * ramps and gamma-1 stretches are one typed, vectorised loop from cells to
 * table indices (or output bytes). Classes: a typed loop converts a chunk
 * to double with a validity byte per cell, then the class is a count of
 * breaks <= v (one vectorised compare per break) or, beyond
 * PG__LINEAR_BREAKS breaks, a first guess from a bucket table corrected by
 * a short walk. For ramps, one table load per cell then gives the packed
 * RGBA that is split into the four output planes. 8-bit
 * inputs skip the arithmetic: a 256-entry table built by running the same
 * kernels over every possible value maps a cell straight to its colour;
 * render.rgb does the same for 16-bit inputs (65536 entries per channel).
 * gamma != 1 on wider types counts, per cell, the output thresholds
 * ((k - 0.5) / 255)^gamma below t, starting from a 4096-bucket table, so
 * no pow() runs per cell.
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

/* Cells per chunk: the doubles (8 KiB), indices (4 KiB) and validity bytes
 * of one chunk stay in L1 while the tile streams through. */
#define PG__CHUNK 1024
/* Continuous ramps: steps of the colour table (see the top comment). */
#define PG__STEPS 3840
/* Up to this many breaks, a cell's class is counted with one compare per
 * break; beyond, the bucket table and a short walk are cheaper (measured
 * per 256x256 f32 tile: 5 breaks 150 us counting, 370 us by buckets; 12
 * breaks 280 us counting, 230 us by buckets; the buckets stay near 220 us
 * for any count). */
#define PG__LINEAR_BREAKS 8
/* Classes beyond a few thousand are no longer visible as classes. */
#define PG__MAX_BREAKS 4096
/* render.rgb with gamma != 1: buckets of the first-guess table. */
#define PG__GAMMA_BUCKETS 4096

/* ---- the built-in ramps ----
 *
 * Anchors are 8-bit sRGB colours at positions in 120ths of the ramp (120
 * is divisible by every anchor spacing used: 8, 10, 15 segments and
 * terrain's 0.15 steps). Sources:
 *  - viridis, magma, inferno, plasma: Smith and van der Walt's colour maps
 *    as published in matplotlib (lib/matplotlib/_cm_listed.py), 256 entries
 *    each; the anchors are entries 0, 17, 34, ..., 255 (every 17th), as
 *    8-bit hex in d3-scale-chromatic 3.1.0 (src/sequential-multi/viridis.js).
 *  - cividis: Nunez, Anderton and Renslow (2018), as published in
 *    matplotlib's _cm_listed.py (_cividis_data), entries 0, 17, ..., 255,
 *    each channel round(255 * value).
 *  - greys, blues, greens, reds, ylorrd (9 classes) and spectral, rdylgn,
 *    rdbu (11 classes): Cynthia Brewer's ColorBrewer schemes
 *    (colorbrewer2.org), the largest published class count, as in
 *    d3-scale-chromatic 3.1.0 (src/sequential-single, sequential-multi,
 *    diverging).
 *  - terrain: matplotlib's "terrain" (lib/matplotlib/_cm.py, _terrain_data:
 *    positions 0, .15, .25, .5, .75, 1), each channel round(255 * value).
 */
#define PG__MAXK 16

typedef struct pg__ramp {
    const char *name;
    int k;                  /* anchors, 2..PG__MAXK */
    uint8_t pos[PG__MAXK];  /* positions in 120ths; all zero: evenly spaced */
    uint32_t rgb[PG__MAXK]; /* 0xRRGGBB */
} pg__ramp;

static const pg__ramp pg__ramps[] = {
    {"viridis",
     16,
     {0},
     {0x440154, 0x481a6c, 0x472f7d, 0x414487, 0x39568c, 0x31688e, 0x2a788e, 0x23888e, 0x1f988b,
      0x22a884, 0x35b779, 0x54c568, 0x7ad151, 0xa5db36, 0xd2e21b, 0xfde725}},
    {"magma",
     16,
     {0},
     {0x000004, 0x0b0924, 0x20114b, 0x3b0f70, 0x57157e, 0x721f81, 0x8c2981, 0xa8327d, 0xc43c75,
      0xde4968, 0xf1605d, 0xfa7f5e, 0xfe9f6d, 0xfebf84, 0xfddea0, 0xfcfdbf}},
    {"inferno",
     16,
     {0},
     {0x000004, 0x0c0826, 0x240c4f, 0x420a68, 0x5d126e, 0x781c6d, 0x932667, 0xae305c, 0xc73e4c,
      0xdd513a, 0xed6925, 0xf8850f, 0xfca50a, 0xfac62d, 0xf2e661, 0xfcffa4}},
    {"plasma",
     16,
     {0},
     {0x0d0887, 0x330597, 0x5002a2, 0x6a00a8, 0x8405a7, 0x9c179e, 0xb12a90, 0xc33d80, 0xd35171,
      0xe16462, 0xed7953, 0xf68f44, 0xfca636, 0xfec029, 0xf9dc24, 0xf0f921}},
    {"cividis",
     16,
     {0},
     {0x00224e, 0x002e6c, 0x1e3a6f, 0x35456c, 0x47516c, 0x575d6d, 0x666970, 0x757575, 0x848279,
      0x948e77, 0xa59c74, 0xb7a96e, 0xc8b866, 0xdbc75a, 0xeed649, 0xfee838}},
    {"greys",
     9,
     {0},
     {0xffffff, 0xf0f0f0, 0xd9d9d9, 0xbdbdbd, 0x969696, 0x737373, 0x525252, 0x252525, 0x000000}},
    {"blues",
     9,
     {0},
     {0xf7fbff, 0xdeebf7, 0xc6dbef, 0x9ecae1, 0x6baed6, 0x4292c6, 0x2171b5, 0x08519c, 0x08306b}},
    {"greens",
     9,
     {0},
     {0xf7fcf5, 0xe5f5e0, 0xc7e9c0, 0xa1d99b, 0x74c476, 0x41ab5d, 0x238b45, 0x006d2c, 0x00441b}},
    {"reds",
     9,
     {0},
     {0xfff5f0, 0xfee0d2, 0xfcbba1, 0xfc9272, 0xfb6a4a, 0xef3b2c, 0xcb181d, 0xa50f15, 0x67000d}},
    {"ylorrd",
     9,
     {0},
     {0xffffcc, 0xffeda0, 0xfed976, 0xfeb24c, 0xfd8d3c, 0xfc4e2a, 0xe31a1c, 0xbd0026, 0x800026}},
    {"spectral",
     11,
     {0},
     {0x9e0142, 0xd53e4f, 0xf46d43, 0xfdae61, 0xfee08b, 0xffffbf, 0xe6f598, 0xabdda4, 0x66c2a5,
      0x3288bd, 0x5e4fa2}},
    {"rdylgn",
     11,
     {0},
     {0xa50026, 0xd73027, 0xf46d43, 0xfdae61, 0xfee08b, 0xffffbf, 0xd9ef8b, 0xa6d96a, 0x66bd63,
      0x1a9850, 0x006837}},
    {"rdbu",
     11,
     {0},
     {0x67001f, 0xb2182b, 0xd6604d, 0xf4a582, 0xfddbc7, 0xf7f7f7, 0xd1e5f0, 0x92c5de, 0x4393c3,
      0x2166ac, 0x053061}},
    {"terrain",
     6,
     {0, 18, 30, 60, 90, 120},
     {0x333399, 0x0099ff, 0x00cc66, 0xffff99, 0x805c54, 0xffffff}},
};

#define PG__NRAMPS (sizeof pg__ramps / sizeof pg__ramps[0])

static const pg__ramp *pg__ramp_find(const char *name)
{
    for (size_t i = 0; name != NULL && i < PG__NRAMPS; i++)
        if (strcmp(pg__ramps[i].name, name) == 0) return &pg__ramps[i];
    return NULL;
}

/* Anchor J's position in 120ths. */
static int64_t pg__ramp_pos(const pg__ramp *r, int j)
{
    if (r->pos[r->k - 1] != 0) return r->pos[j];
    return (int64_t)j * 120 / (r->k - 1);
}

/* The ramp's colour at t = TN / TD (0 <= TN <= TD, TD >= 1): the two
 * anchors around t interpolated linearly, each channel rounded half up,
 * all in integers (so the result is exact). */
static void pg__ramp_eval(const pg__ramp *r, int64_t tn, int64_t td, uint8_t out[3])
{
    const int64_t x = tn * 120; /* t in units of 1 / (120 td) */
    int j = 0;
    while (j < r->k - 2 && x >= pg__ramp_pos(r, j + 1) * td)
        j++;
    const int64_t p0 = pg__ramp_pos(r, j) * td;
    const int64_t len = pg__ramp_pos(r, j + 1) * td - p0, rel = x - p0; /* 0 <= rel <= len */
    for (int c = 0; c < 3; c++) {
        const int sh = 16 - 8 * c;
        const int64_t a = (r->rgb[j] >> sh) & 255, b = (r->rgb[j + 1] >> sh) & 255;
        const int64_t num = a * len + (b - a) * rel; /* >= 0 */
        out[c] = (uint8_t)((2 * num + len) / (2 * len));
    }
}

/* The names of the built-in ramps, for error messages. */
static void pg__ramp_names(char *buf, size_t size)
{
    size_t off = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < PG__NRAMPS && off < size; i++) {
        int w = snprintf(buf + off, size - off, "%s%s", i ? ", " : "", pg__ramps[i].name);
        if (w < 0) break;
        off += (size_t)w;
    }
}

/* ---- missing cells ---- */

/* Whether cells equal to the raster's nodata value can occur, and that
 * value as stored (f32: rounded to f32, as GDAL compares it). */
static void pg__nodata_of(const pg_raster_info *ri, bool *mask, double *value)
{
    *mask = false;
    *value = 0.0;
    if (!ri->has_nodata || isnan(ri->nodata)) return; /* NaN is caught as NaN */
    double v = ri->nodata;
    if (ri->type == PG_F32) {
        *mask = isinf(v) || fabs(v) <= FLT_MAX;
        if (*mask) *value = (double)(float)v;
    } else {
        *mask = pg_celltype_holds(ri->type, v);
        if (*mask) *value = v;
    }
}

/* ---- kernels ---- */

/* One chunk of N cells of type T to double, with ok[i] = 0 for a missing
 * cell. */
#define PG__LOAD(NAME, T, ISFLOAT)                                                                 \
    static void NAME(const void *src_, size_t n, bool mask, double mv, double *restrict val,       \
                     uint8_t *restrict ok)                                                         \
    {                                                                                              \
        const T *restrict src = src_;                                                              \
        const T nd = mask ? (T)mv : (T)0;                                                          \
        const int m = mask;                                                                        \
        for (size_t i = 0; i < n; i++) {                                                           \
            const T v = src[i];                                                                    \
            val[i] = (double)v;                                                                    \
            ok[i] = (uint8_t)((ISFLOAT ? v == v : 1) & (!m | (v != nd)));                          \
        }                                                                                          \
    }

PG__LOAD(pg__load_u8, uint8_t, 0)
PG__LOAD(pg__load_i8, int8_t, 0)
PG__LOAD(pg__load_u16, uint16_t, 0)
PG__LOAD(pg__load_i16, int16_t, 0)
PG__LOAD(pg__load_u32, uint32_t, 0)
PG__LOAD(pg__load_i32, int32_t, 0)
PG__LOAD(pg__load_f32, float, 1)
PG__LOAD(pg__load_f64, double, 1)

typedef void (*pg__loadfn)(const void *, size_t, bool, double, double *, uint8_t *);
static const pg__loadfn pg__loads[PG_CELLTYPE_COUNT] = {
    pg__load_u8,  pg__load_i8,  pg__load_u16, pg__load_i16,
    pg__load_u32, pg__load_i32, pg__load_f32, pg__load_f64,
};

/* A linear stretch: x = (v - lo) * scale + 0.5 with scale = top / (hi - lo),
 * clamped to [0, top], truncated. So v <= lo gives 0 and v >= hi gives top
 * (rounding of (v - lo) and of the product is monotonic), and every other
 * v gives floor(t * top + 0.5). lo == hi: scale is +inf, a step at lo
 * ((v - lo) * inf is NaN at v == lo, and the clamp turns NaN into 0). One
 * multiplication per cell (a division measured three times slower), and
 * the clamps written so that GCC if-converts and vectorises them under
 * -ftrapping-math (comparisons of v with lo and hi are not). */
typedef struct pg__stretch {
    bool mask; /* cells equal to mv are missing (NaN always is) */
    double mv;
    double lo, hi, scale, top; /* top < 2^31 */
} pg__stretch;

static void pg__stretch_init(pg__stretch *s, bool mask, double mv, double lo, double hi, double top)
{
    s->mask = mask;
    s->mv = mv;
    s->lo = lo;
    s->hi = hi;
    s->top = top;
    s->scale = hi > lo ? top / (hi - lo) : INFINITY;
}

/* Per cell type: idx (render.ramp: missing cells get top + 1) and u8
 * (render.rgb: missing cells get 0 and set bad[i]). */
#define PG__STRETCH(SUF, T, ISFLOAT)                                                               \
    static void pg__sidx_##SUF(const pg__stretch *s, const void *src_, size_t n,                   \
                               uint32_t *restrict idx)                                             \
    {                                                                                              \
        const T *restrict src = src_;                                                              \
        const T nd = s->mask ? (T)s->mv : (T)0;                                                    \
        const int m = s->mask;                                                                     \
        const double lo = s->lo, scale = s->scale, top = s->top;                                   \
        const uint32_t miss = (uint32_t)top + 1;                                                   \
        for (size_t i = 0; i < n; i++) {                                                           \
            const T v = src[i];                                                                    \
            const double d = (double)v;                                                            \
            const int ok = (ISFLOAT ? v == v : 1) & (!m | (v != nd));                              \
            double x = (d - lo) * scale + 0.5;                                                     \
            x = x > 0.0 ? x : 0.0; /* and NaN */                                                   \
            x = x < top ? x : top;                                                                 \
            const uint32_t q = (uint32_t)(int32_t)x;                                               \
            idx[i] = ok ? q : miss;                                                                \
        }                                                                                          \
    }                                                                                              \
    static void pg__su8_##SUF(const pg__stretch *s, const void *src_, size_t n,                    \
                              uint8_t *restrict out, uint8_t *restrict bad)                        \
    {                                                                                              \
        const T *restrict src = src_;                                                              \
        const T nd = s->mask ? (T)s->mv : (T)0;                                                    \
        const int m = s->mask;                                                                     \
        const double lo = s->lo, scale = s->scale, top = s->top;                                   \
        for (size_t i = 0; i < n; i++) {                                                           \
            const T v = src[i];                                                                    \
            const double d = (double)v;                                                            \
            const int ok = (ISFLOAT ? v == v : 1) & (!m | (v != nd));                              \
            double x = (d - lo) * scale + 0.5;                                                     \
            x = x > 0.0 ? x : 0.0; /* and NaN */                                                   \
            x = x < top ? x : top;                                                                 \
            const uint8_t q = (uint8_t)(int32_t)x;                                                 \
            out[i] = ok ? q : 0;                                                                   \
            bad[i] |= (uint8_t)!ok;                                                                \
        }                                                                                          \
    }

PG__STRETCH(u8, uint8_t, 0)
PG__STRETCH(i8, int8_t, 0)
PG__STRETCH(u16, uint16_t, 0)
PG__STRETCH(i16, int16_t, 0)
PG__STRETCH(u32, uint32_t, 0)
PG__STRETCH(i32, int32_t, 0)
PG__STRETCH(f32, float, 1)
PG__STRETCH(f64, double, 1)

typedef void (*pg__sidxfn)(const pg__stretch *, const void *, size_t, uint32_t *);
static const pg__sidxfn pg__sidx[PG_CELLTYPE_COUNT] = {
    pg__sidx_u8,  pg__sidx_i8,  pg__sidx_u16, pg__sidx_i16,
    pg__sidx_u32, pg__sidx_i32, pg__sidx_f32, pg__sidx_f64,
};
typedef void (*pg__su8fn)(const pg__stretch *, const void *, size_t, uint8_t *, uint8_t *);
static const pg__su8fn pg__su8[PG_CELLTYPE_COUNT] = {
    pg__su8_u8,  pg__su8_i8,  pg__su8_u16, pg__su8_i16,
    pg__su8_u32, pg__su8_i32, pg__su8_f32, pg__su8_f64,
};

/* Class breaks: b[0..n-1] ascending. Beyond PG__LINEAR_BREAKS a first
 * guess comes from PG__BUCKETS equal buckets over [b[0], b[n-1]] (first[j]
 * = the number of breaks <= the bucket's lower edge), corrected by a short
 * walk (both ways, so that the bucket arithmetic's rounding cannot matter). */
#define PG__BUCKETS 4096
typedef struct pg__breaks {
    int n;
    double *b;
    double bscale;   /* PG__BUCKETS / (b[n-1] - b[0]), or 0 */
    uint16_t *first; /* PG__BUCKETS entries, when n > PG__LINEAR_BREAKS */
} pg__breaks;

static void pg__breaks_clear(pg__breaks *br)
{
    free(br->b);
    free(br->first);
    memset(br, 0, sizeof *br);
}

/* Builds the bucket table (B->b and B->n set). Returns 0 or -1. */
static int pg__breaks_index(pg__breaks *br)
{
    free(br->first);
    br->first = NULL;
    if (br->n <= PG__LINEAR_BREAKS) return 0;
    br->first = malloc(sizeof *br->first * PG__BUCKETS);
    if (br->first == NULL) return -1;
    const double b0 = br->b[0], range = br->b[br->n - 1] - b0;
    br->bscale = range > 0 && isfinite(range) ? PG__BUCKETS / range : 0.0;
    int k = 0;
    for (int j = 0; j < PG__BUCKETS; j++) {
        const double edge = br->bscale > 0 ? b0 + j / br->bscale : b0;
        while (k < br->n && br->b[k] <= edge)
            k++;
        br->first[j] = (uint16_t)k;
    }
    return 0;
}

/* Class of each cell: the number of breaks <= v; missing cells (ok 0) get
 * n + 1. */
static void pg__idx_breaks(const double *restrict val, const uint8_t *restrict ok, size_t n,
                           const pg__breaks *br, uint32_t *restrict idx)
{
    const int nb = br->n;
    const double *restrict b = br->b;
    if (nb <= PG__LINEAR_BREAKS) {
        for (size_t i = 0; i < n; i++)
            idx[i] = 0;
        for (int k = 0; k < nb; k++) {
            const double x = b[k];
            for (size_t i = 0; i < n; i++)
                idx[i] += (uint32_t)(val[i] >= x);
        }
    } else {
        const double b0 = b[0], blast = b[nb - 1], bscale = br->bscale;
        for (size_t i = 0; i < n; i++) {
            const double v = val[i];
            int k;
            if (!(v >= b0)) { /* and NaN */
                k = 0;
            } else if (v >= blast) {
                k = nb;
            } else {
                double x = (v - b0) * bscale;
                int j = x < PG__BUCKETS - 1 ? (int)x : PG__BUCKETS - 1;
                k = br->first[j];
                while (k < nb && b[k] <= v)
                    k++;
                while (k > 0 && b[k - 1] > v)
                    k--;
            }
            idx[i] = (uint32_t)k;
        }
    }
    const uint32_t miss = (uint32_t)nb + 1;
    for (size_t i = 0; i < n; i++)
        idx[i] = ok[i] ? idx[i] : miss;
}

/* Packed 0xAABBGGRR colours of LUT[idx[i]] into four planes. */
static void pg__emit(const uint32_t *restrict lut, const uint32_t *restrict idx, size_t n,
                     uint8_t *restrict r, uint8_t *restrict g, uint8_t *restrict b,
                     uint8_t *restrict a)
{
    for (size_t i = 0; i < n; i++) {
        const uint32_t p = lut[idx[i]];
        r[i] = (uint8_t)p;
        g[i] = (uint8_t)(p >> 8);
        b[i] = (uint8_t)(p >> 16);
        a[i] = (uint8_t)(p >> 24);
    }
}

/* 8-bit inputs: straight from the cell value to its colour. */
#define PG__EMIT8(NAME, T, OFF)                                                                    \
    static void NAME(const uint32_t *restrict lut, const void *src_, size_t n,                     \
                     uint8_t *restrict r, uint8_t *restrict g, uint8_t *restrict b,                \
                     uint8_t *restrict a)                                                          \
    {                                                                                              \
        const T *restrict src = src_;                                                              \
        for (size_t i = 0; i < n; i++) {                                                           \
            const uint32_t p = lut[(int)src[i] + (OFF)];                                           \
            r[i] = (uint8_t)p;                                                                     \
            g[i] = (uint8_t)(p >> 8);                                                              \
            b[i] = (uint8_t)(p >> 16);                                                             \
            a[i] = (uint8_t)(p >> 24);                                                             \
        }                                                                                          \
    }

PG__EMIT8(pg__emit_u8, uint8_t, 0)
PG__EMIT8(pg__emit_i8, int8_t, 128)

/* Every value of an 8- or 16-bit type T, in table order (v - min(T)), as
 * cells of T in BUF. */
static void pg__all_values(pg_celltype t, size_t first, size_t n, void *buf)
{
    for (size_t i = 0; i < n; i++) {
        const size_t k = first + i;
        switch (t) {
        case PG_U8:
            ((uint8_t *)buf)[i] = (uint8_t)k;
            break;
        case PG_I8:
            ((int8_t *)buf)[i] = (int8_t)((int)k - 128);
            break;
        case PG_U16:
            ((uint16_t *)buf)[i] = (uint16_t)k;
            break;
        default: /* PG_I16 */
            ((int16_t *)buf)[i] = (int16_t)((int)k - 32768);
            break;
        }
    }
}

/* ---- value args ---- */

/* Breaks from a JSON list A: numbers, ascending (equal neighbours allowed:
 * an empty class, as quantiles of few distinct values give), 1 to
 * PG__MAX_BREAKS of them. WHAT names the list in messages. Returns 0 and a
 * malloc'd array, or PG_EPARAM. */
static int pg__parse_breaks(const json_t *a, const char *what, double **out, int *nout,
                            pg_error *err)
{
    *out = NULL;
    *nout = 0;
    size_t n = json_array_size(a);
    if (!json_is_array(a) || n == 0)
        return pg_error_set(err, PG_EPARAM, "%s must be a non-empty list of numbers", what);
    if (n > PG__MAX_BREAKS)
        return pg_error_set(err, PG_EPARAM, "%s has %zu breaks, at most %d are allowed", what, n,
                            PG__MAX_BREAKS);
    double *br = malloc(sizeof *br * n);
    if (br == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_array_get(a, i);
        if (!json_is_number(v)) {
            free(br);
            return pg_error_set(err, PG_EPARAM, "%s: item %zu is not a number%s", what, i,
                                json_is_null(v) ? " (null: a raster without valid cells?)" : "");
        }
        br[i] = json_number_value(v);
        if (i > 0 && br[i] < br[i - 1]) {
            pg_error_set(err, PG_EPARAM,
                         "%s must be ascending, but item %zu (%.17g) is below item %zu (%.17g)",
                         what, i, br[i], i - 1, br[i - 1]);
            free(br);
            return PG_EPARAM;
        }
    }
    *out = br;
    *nout = (int)n;
    return 0;
}

/* min and max of a statistics object O (global.stats): its "bands" entry
 * BAND (0-based) when it has one and BAND >= 0, else its own. A missing or
 * null field (no valid cell) leaves *HAS_* false. */
static void pg__stats_minmax(const json_t *o, int band, double *lo, bool *has_lo, double *hi,
                             bool *has_hi)
{
    const json_t *bands = json_object_get(o, "bands");
    if (band >= 0 && json_is_array(bands) && (size_t)band < json_array_size(bands) &&
        json_is_object(json_array_get(bands, (size_t)band)))
        o = json_array_get(bands, (size_t)band);
    const json_t *mn = json_object_get(o, "min"), *mx = json_object_get(o, "max");
    *has_lo = json_is_number(mn);
    *has_hi = json_is_number(mx);
    *lo = *has_lo ? json_number_value(mn) : 0.0;
    *hi = *has_hi ? json_number_value(mx) : 0.0;
}

/* The raster args and value args of N, by kind. */
static void pg__split_args(const pg_node *n, int *rasters, int *nr, int *values, int *nv, int cap)
{
    *nr = *nv = 0;
    for (int i = 0; i < n->nargs; i++) {
        const pg_node *r = n->args[i].ref;
        if (r == NULL) continue;
        if (r->op != NULL && r->op->result == PG_RESULT_VALUE) {
            if (*nv < cap) values[*nv] = i;
            (*nv)++;
        } else {
            if (*nr < cap) rasters[*nr] = i;
            (*nr)++;
        }
    }
}

/* ---- render.ramp ---- */

typedef struct pg__ramp_state {
    const pg__ramp *ramp;
    int raster_arg, value_arg; /* value_arg -1: none */
    int band;                  /* 0-based */
    pg_celltype type;
    bool mask;
    double mask_value;
    bool reverse;
    uint32_t alpha;
    bool classes; /* breaks given */
    pg__breaks br;
    bool has_min, has_max;
    double min, max;
    pg__stretch stretch; /* continuous */
    bool ready;          /* lut built */
    /* Colours by index (classes 0..n or steps 0..PG__STEPS), then one
     * transparent entry for missing cells. Packed 0xAABBGGRR. */
    uint32_t *lut;
    bool direct8;       /* 8-bit input: lut8 maps a cell to its colour */
    uint32_t lut8[256]; /* indexed by v - min(type) */
} pg__ramp_state;

static void pg__ramp_free(pg_node *n)
{
    pg__ramp_state *st = n->state;
    if (st != NULL) {
        pg__breaks_clear(&st->br);
        free(st->lut);
        free(st);
    }
    n->state = NULL;
}

/* The colour table index of every cell of a chunk. */
static void pg__ramp_index(const pg__ramp_state *st, const void *src, size_t len, double *val,
                           uint8_t *ok, uint32_t *idx)
{
    if (st->classes) {
        pg__loads[st->type](src, len, st->mask, st->mask_value, val, ok);
        pg__idx_breaks(val, ok, len, &st->br, idx);
    } else {
        pg__sidx[st->type](&st->stretch, src, len, idx);
    }
}

/* Everything known: checks the stretch and builds the tables. */
static int pg__ramp_finish(pg__ramp_state *st, pg_error *err)
{
    if (!st->classes) {
        if (!st->has_min || !st->has_max)
            return pg_error_set(err, PG_EPARAM,
                                "render.ramp needs 'breaks', or 'min' and 'max', or a value arg "
                                "giving them (global.stats, global.quantiles); '%s' is missing",
                                st->has_min ? "max" : "min");
        if (!(st->min <= st->max))
            return pg_error_set(err, PG_EPARAM,
                                "param 'min' (%.17g) must not be above 'max' (%.17g); use "
                                "\"reverse\" to turn the ramp around",
                                st->min, st->max);
    }
    if (st->classes && pg__breaks_index(&st->br) != 0)
        return pg_error_set(err, PG_ENOMEM, "out of memory");
    pg__stretch_init(&st->stretch, st->mask, st->mask_value, st->min, st->max, PG__STEPS);
    const int64_t td = st->classes ? st->br.n : PG__STEPS;
    const size_t entries = (size_t)td + 2; /* td + 1 colours, then transparent */
    free(st->lut);
    st->lut = malloc(sizeof *st->lut * entries);
    if (st->lut == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    for (int64_t k = 0; k <= td; k++) {
        uint8_t c[3];
        pg__ramp_eval(st->ramp, st->reverse ? td - k : k, td, c);
        st->lut[k] = (uint32_t)c[0] | (uint32_t)c[1] << 8 | (uint32_t)c[2] << 16 | st->alpha << 24;
    }
    st->lut[td + 1] = 0;
    st->direct8 = st->type == PG_U8 || st->type == PG_I8;
    if (st->direct8) {
        /* The very kernels of the general path, over all 256 values. */
        uint8_t cells[256], ok[256];
        double val[256];
        uint32_t idx[256];
        pg__all_values(st->type, 0, 256, cells);
        pg__ramp_index(st, cells, 256, val, ok, idx);
        for (int i = 0; i < 256; i++)
            st->lut8[i] = st->lut[idx[i]];
    }
    st->ready = true;
    return 0;
}

static int pg__ramp_plan(pg_node *n, const pg_plan_env *env, pg_error *err)
{
    (void)env;
    int rasters[4], values[4], nr, nv;
    pg__split_args(n, rasters, &nr, values, &nv, 4);
    if (nr != 1)
        return pg_error_set(err, PG_ETYPE,
                            "render.ramp takes one raster arg (and optionally one value arg), "
                            "got %d rasters",
                            nr);
    if (nv > 1)
        return pg_error_set(err, PG_ETYPE, "render.ramp takes at most one value arg, got %d", nv);
    const pg_raster_info *ri = &n->args[rasters[0]].ref->info;

    pg__ramp_state *st = calloc(1, sizeof *st);
    if (st == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    pg__ramp_free(n);
    n->state = st;
    st->raster_arg = rasters[0];
    st->value_arg = nv == 1 ? values[0] : -1;

    const char *name = pg_param_has(n, "ramp") ? pg_param_str(n, "ramp") : "viridis";
    st->ramp = pg__ramp_find(name);
    if (st->ramp == NULL) {
        char names[256];
        pg__ramp_names(names, sizeof names);
        return pg_error_set(err, PG_EPARAM, "param 'ramp': unknown ramp '%s'; the ramps are: %s",
                            name ? name : "", names);
    }
    int64_t band = pg_param_has(n, "band") ? pg_param_int(n, "band") : 1;
    if (band < 1 || band > ri->bands)
        return pg_error_set(err, PG_EPARAM,
                            "param 'band' (%lld) must be a band of the raster (1 to %d)",
                            (long long)band, ri->bands);
    st->band = (int)band - 1;
    st->type = ri->type;
    pg__nodata_of(ri, &st->mask, &st->mask_value);
    st->reverse = pg_param_bool(n, "reverse");
    double opacity = pg_param_has(n, "opacity") ? pg_param_num(n, "opacity") : 1.0;
    if (!(opacity >= 0.0 && opacity <= 1.0))
        return pg_error_set(err, PG_EPARAM, "param 'opacity' must be between 0 and 1");
    st->alpha = (uint32_t)floor(255.0 * opacity + 0.5);

    const bool has_min = pg_param_has(n, "min"), has_max = pg_param_has(n, "max");
    if (pg_param_has(n, "breaks")) {
        if (st->value_arg >= 0)
            return pg_error_set(err, PG_EPARAM,
                                "param 'breaks' and value arg '%s' cannot both be given: the "
                                "breaks fix the classes",
                                n->args[st->value_arg].ref->name);
        if (has_min || has_max)
            return pg_error_set(err, PG_EPARAM,
                                "param '%s' applies to a continuous ramp, not with 'breaks'",
                                has_min ? "min" : "max");
        int rc = pg__parse_breaks(json_object_get(n->params, "breaks"), "param 'breaks'", &st->br.b,
                                  &st->br.n, err);
        if (rc) return rc;
        st->classes = true;
    }
    st->has_min = has_min;
    st->has_max = has_max;
    st->min = has_min ? pg_param_num(n, "min") : 0.0;
    st->max = has_max ? pg_param_num(n, "max") : 0.0;
    if (has_min && has_max && !(st->min <= st->max))
        return pg_error_set(err, PG_EPARAM,
                            "param 'min' (%.17g) must not be above 'max' (%.17g); use "
                            "\"reverse\" to turn the ramp around",
                            st->min, st->max);
    if (st->value_arg < 0) {
        int rc = pg__ramp_finish(st, err);
        if (rc) return rc;
    }

    pg_raster_info *oi = &n->info;
    if (pg_raster_info_copy(oi, ri) != 0) return pg_error_set(err, PG_ENOMEM, "out of memory");
    oi->type = PG_U8;
    oi->bands = 4;
    oi->has_nodata = false;
    oi->nodata = 0.0;
    return 0;
}

static int pg__ramp_bind(pg_node *n, int i, const json_t *value, pg_error *err)
{
    pg__ramp_state *st = n->state;
    if (st == NULL || i != st->value_arg)
        return pg_error_set(err, PG_EINTERNAL, "render.ramp: bind of arg %d unexpected", i);
    const char *vname = n->args[i].ref != NULL ? n->args[i].ref->name : "?";
    char what[300];
    snprintf(what, sizeof what, "the breaks of value arg '%s'", vname);
    if (json_is_array(value)) {
        if (st->has_min || st->has_max)
            return pg_error_set(err, PG_EPARAM,
                                "param '%s' applies to a continuous ramp, but value arg '%s' "
                                "gives class breaks",
                                st->has_min ? "min" : "max", vname);
        pg__breaks_clear(&st->br);
        int rc = pg__parse_breaks(value, what, &st->br.b, &st->br.n, err);
        if (rc) return rc;
        st->classes = true;
    } else if (json_is_object(value)) {
        double lo, hi;
        bool has_lo, has_hi;
        pg__stats_minmax(value, st->band, &lo, &has_lo, &hi, &has_hi);
        if ((!st->has_min && !has_lo) || (!st->has_max && !has_hi))
            return pg_error_set(err, PG_EPARAM,
                                "value arg '%s' has no numeric '%s' (no valid cell?): give param "
                                "'%s'",
                                vname, (!st->has_min && !has_lo) ? "min" : "max",
                                (!st->has_min && !has_lo) ? "min" : "max");
        if (!st->has_min) st->min = lo, st->has_min = true;
        if (!st->has_max) st->max = hi, st->has_max = true;
    } else {
        return pg_error_set(err, PG_ETYPE,
                            "value arg '%s' must be a list of class breaks (global.quantiles, "
                            "global.breaks) or an object with min and max (global.stats)",
                            vname);
    }
    return pg__ramp_finish(st, err);
}

static int pg__ramp_compute(const pg_node *n, pg_tile *out, pg_tile *const *in, pg_error *err)
{
    const pg__ramp_state *st = n->state;
    if (st == NULL || !st->ready)
        return pg_error_set(err, PG_EINTERNAL, "render.ramp: computed before its value arg");
    const pg_tile *t = in[st->raster_arg];
    if (t == NULL || t->type != st->type || t->bands <= st->band || t->win.w != out->win.w ||
        t->win.h != out->win.h || out->type != PG_U8 || out->bands != 4)
        return pg_error_set(err, PG_EINTERNAL, "render.ramp: tile does not match the raster");
    const size_t plane = (size_t)out->win.w * (size_t)out->win.h;
    const size_t cs = pg_celltype_size(st->type);
    const char *src = (const char *)t->data + (size_t)st->band * plane * cs;
    uint8_t *r = out->data, *g = r + plane, *b = g + plane, *a = b + plane;
    if (st->direct8) {
        if (st->type == PG_U8)
            pg__emit_u8(st->lut8, src, plane, r, g, b, a);
        else
            pg__emit_i8(st->lut8, src, plane, r, g, b, a);
        return 0;
    }
    double val[PG__CHUNK];
    uint8_t ok[PG__CHUNK];
    uint32_t idx[PG__CHUNK];
    for (size_t off = 0; off < plane; off += PG__CHUNK) {
        const size_t len = plane - off < PG__CHUNK ? plane - off : PG__CHUNK;
        pg__ramp_index(st, src + off * cs, len, val, ok, idx);
        pg__emit(st->lut, idx, len, r + off, g + off, b + off, a + off);
    }
    return 0;
}

/* ---- render.rgb ---- */

typedef struct pg__chan {
    int arg, band; /* raster arg index, band (0-based) */
    pg_celltype type;
    bool mask;
    double mask_value;
    bool has_lo, has_hi;
    double lo, hi, gamma;
    pg__stretch s; /* gamma 1: onto 0..255; else onto t in [0, 1] */
    /* gamma != 1: thr[k] = ((k - 0.5) / 255)^gamma for k = 1..255 (thr[256]
     * = +inf, a sentinel), and first[j] = the number of them <=
     * j / PG__GAMMA_BUCKETS, for j = 0..PG__GAMMA_BUCKETS. */
    double thr[257];
    uint16_t first[PG__GAMMA_BUCKETS + 1];
    uint8_t *lut; /* 8/16-bit cells: output by v - min(type) */
} pg__chan;

typedef struct pg__rgb_state {
    pg__chan ch[3];
    int nvalues, varg[3], nbound;
    bool alpha;
    bool ready;
} pg__rgb_state;

static void pg__rgb_free(pg_node *n)
{
    pg__rgb_state *st = n->state;
    if (st != NULL) {
        for (int c = 0; c < 3; c++)
            free(st->ch[c].lut);
        free(st);
    }
    n->state = NULL;
}

/* gamma != 1: the number of thresholds <= t, i.e. round_half_up(255
 * t^(1/gamma)) without a pow() per cell; t = (v - lo) * (1 / (hi - lo)).
 * Missing cells get 0. */
static void pg__chan_gamma(const pg__chan *c, const double *restrict val, size_t n,
                           uint8_t *restrict out)
{
    const double lo = c->lo, hi = c->hi, inv = c->s.scale;
    const double *restrict thr = c->thr;
    const uint16_t *restrict first = c->first;
    for (size_t i = 0; i < n; i++) {
        const double v = val[i];
        /* v <= lo and NaN: t = 0, below every threshold (all are > 0). */
        double t = (v - lo) * inv;
        t = t > 0.0 ? t : 0.0;
        t = t < 1.0 ? t : 1.0;
        const double tb = t * PG__GAMMA_BUCKETS; /* exact: a power of two */
        const int j = tb < PG__GAMMA_BUCKETS - 1 ? (int)tb : PG__GAMMA_BUCKETS - 1;
        /* The thresholds in bucket j's (j/B, (j+1)/B] are first[j+1] -
         * first[j]: mostly 0 or 1, a compare without a branch. */
        int k = first[j];
        if (first[j + 1] - k <= 1) {
            k += thr[k + 1] <= t;
        } else {
            while (thr[k + 1] <= t)
                k++;
        }
        k = v >= hi ? 255 : k;
        out[i] = (uint8_t)k;
    }
}

/* One channel of a chunk of N cells of its type, without tables: OUT gets
 * 0..255, BAD[i] is set for missing cells. VAL and OK are scratch. */
static void pg__chan_compute(const pg__chan *c, bool mask, const void *src, size_t n, uint8_t *out,
                             uint8_t *bad, double *val, uint8_t *ok)
{
    if (c->gamma == 1.0) {
        pg__stretch s = c->s;
        s.mask = mask;
        pg__su8[c->type](&s, src, n, out, bad);
        return;
    }
    pg__loads[c->type](src, n, mask, c->mask_value, val, ok);
    pg__chan_gamma(c, val, n, out);
    for (size_t i = 0; i < n; i++)
        bad[i] |= (uint8_t)!ok[i];
}

/* 8/16-bit cells through the channel's table, missing cells flagged. */
#define PG__LUTCHAN(NAME, T, OFF)                                                                  \
    static void NAME(const pg__chan *c, const void *src_, size_t n, uint8_t *restrict out,         \
                     uint8_t *restrict bad)                                                        \
    {                                                                                              \
        const T *restrict src = src_;                                                              \
        const uint8_t *restrict lut = c->lut;                                                      \
        const T nd = c->mask ? (T)c->mask_value : (T)0;                                            \
        const int m = c->mask;                                                                     \
        for (size_t i = 0; i < n; i++) {                                                           \
            const T v = src[i];                                                                    \
            out[i] = lut[(int32_t)v + (OFF)];                                                      \
            bad[i] |= (uint8_t)(m & (v == nd));                                                    \
        }                                                                                          \
    }

PG__LUTCHAN(pg__lutchan_u8, uint8_t, 0)
PG__LUTCHAN(pg__lutchan_i8, int8_t, 128)
PG__LUTCHAN(pg__lutchan_u16, uint16_t, 0)
PG__LUTCHAN(pg__lutchan_i16, int16_t, 32768)

static bool pg__small_int(pg_celltype t)
{
    return t == PG_U8 || t == PG_I8 || t == PG_U16 || t == PG_I16;
}

/* Everything known: checks each channel's stretch, builds its tables. */
static int pg__rgb_finish(pg__rgb_state *st, pg_error *err)
{
    static const char *const cn[3] = {"red", "green", "blue"};
    for (int c = 0; c < 3; c++) {
        pg__chan *ch = &st->ch[c];
        if (!ch->has_lo || !ch->has_hi)
            return pg_error_set(err, PG_EPARAM,
                                "render.rgb: the %s channel (%s cells) has no '%s': give "
                                "'min' and 'max' or value args (global.stats, global.quantiles)",
                                cn[c], pg_celltype_name(ch->type), ch->has_lo ? "max" : "min");
        if (!(ch->lo <= ch->hi))
            return pg_error_set(err, PG_EPARAM,
                                "render.rgb: the %s channel's min (%.17g) is above its max (%.17g)",
                                cn[c], ch->lo, ch->hi);
        pg__stretch_init(&ch->s, ch->mask, ch->mask_value, ch->lo, ch->hi,
                         ch->gamma == 1.0 ? 255.0 : 1.0);
        if (ch->gamma != 1.0) {
            ch->thr[0] = -INFINITY;
            for (int k = 1; k < 256; k++)
                ch->thr[k] = pow((k - 0.5) / 255.0, ch->gamma);
            ch->thr[256] = INFINITY;
            int k = 0;
            for (int j = 0; j <= PG__GAMMA_BUCKETS; j++) {
                const double edge = (double)j / PG__GAMMA_BUCKETS;
                while (ch->thr[k + 1] <= edge)
                    k++;
                ch->first[j] = (uint16_t)k;
            }
        }
        free(ch->lut);
        ch->lut = NULL;
        if (pg__small_int(ch->type)) {
            /* The general kernels over every value of the type. */
            const size_t count = (ch->type == PG_U8 || ch->type == PG_I8) ? 256 : 65536;
            ch->lut = malloc(count);
            if (ch->lut == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
            int16_t cells[PG__CHUNK];
            double val[PG__CHUNK];
            uint8_t ok[PG__CHUNK], bad[PG__CHUNK] = {0};
            for (size_t off = 0; off < count; off += PG__CHUNK) {
                const size_t len = count - off < PG__CHUNK ? count - off : PG__CHUNK;
                pg__all_values(ch->type, off, len, cells);
                pg__chan_compute(ch, false, cells, len, ch->lut + off, bad, val, ok);
            }
        }
    }
    st->ready = true;
    return 0;
}

/* "min", "max" or "gamma": absent, a number, or a list of 3 numbers. Fills
 * OUT[3] and HAS[3] (HAS untouched when absent). */
static int pg__per_channel(const pg_node *n, const char *key, double out[3], bool has[3],
                           pg_error *err)
{
    const json_t *v = json_object_get(n->params, key);
    if (v == NULL || json_is_null(v)) return 0;
    if (json_is_number(v)) {
        for (int c = 0; c < 3; c++)
            out[c] = json_number_value(v), has[c] = true;
        return 0;
    }
    if (json_is_array(v) && json_array_size(v) == 3) {
        for (int c = 0; c < 3; c++) {
            const json_t *x = json_array_get(v, (size_t)c);
            if (!json_is_number(x)) break;
            out[c] = json_number_value(x), has[c] = true;
            if (c == 2) return 0;
        }
    }
    return pg_error_set(err, PG_EPARAM, "param '%s' must be a number or a list of 3 numbers", key);
}

static int pg__rgb_plan(pg_node *n, const pg_plan_env *env, pg_error *err)
{
    (void)env;
    int rasters[8], values[8], nr, nv;
    pg__split_args(n, rasters, &nr, values, &nv, 8);
    if (nr != 1 && nr != 3)
        return pg_error_set(err, PG_ETYPE,
                            "render.rgb takes one raster (three of its bands) or three rasters, "
                            "got %d rasters",
                            nr);
    if (nv != 0 && nv != 1 && nv != 3)
        return pg_error_set(err, PG_ETYPE,
                            "render.rgb takes no value arg, one for all channels or three (one "
                            "per channel), got %d",
                            nv);
    pg__rgb_state *st = calloc(1, sizeof *st);
    if (st == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    pg__rgb_free(n);
    n->state = st;
    st->nvalues = nv;
    for (int k = 0; k < nv; k++)
        st->varg[k] = values[k];
    st->alpha = pg_param_bool(n, "alpha");

    const pg_raster_info *first = &n->args[rasters[0]].ref->info;
    for (int k = 1; k < nr; k++) {
        const pg_raster_info *ri = &n->args[rasters[k]].ref->info;
        if (!pg_raster_same_grid(first, ri))
            return pg_error_set(err, PG_EGRID,
                                "render.rgb: raster arg '%s' is not on the grid of '%s' (size, "
                                "geotransform, CRS)",
                                n->args[rasters[k]].ref->name, n->args[rasters[0]].ref->name);
    }
    /* Bands: [1, 2, 3] of one raster, [1, 1, 1] of three. */
    int band[3] = {1, 2, 3};
    if (nr == 3) band[0] = band[1] = band[2] = 1;
    const json_t *jb = json_object_get(n->params, "bands");
    if (jb != NULL && !json_is_null(jb)) {
        if (!json_is_array(jb) || json_array_size(jb) != 3)
            return pg_error_set(err, PG_EPARAM, "param 'bands' must be a list of 3 band numbers");
        for (int c = 0; c < 3; c++) {
            const json_t *x = json_array_get(jb, (size_t)c);
            const double b = json_is_number(x) ? json_number_value(x) : 0.0;
            if (!(b >= 1 && b <= 65536 && b == floor(b)))
                return pg_error_set(err, PG_EPARAM,
                                    "param 'bands': item %d must be a band number (1-based)", c);
            band[c] = (int)b;
        }
    }
    for (int c = 0; c < 3; c++) {
        pg__chan *ch = &st->ch[c];
        ch->arg = rasters[nr == 3 ? c : 0];
        const pg_raster_info *ri = &n->args[ch->arg].ref->info;
        if (band[c] > ri->bands) {
            if (nr == 1 && jb == NULL)
                return pg_error_set(err, PG_EPARAM,
                                    "render.rgb of one raster needs 3 bands, '%s' has %d: give "
                                    "param 'bands' or three rasters",
                                    n->args[ch->arg].ref->name, ri->bands);
            return pg_error_set(err, PG_EPARAM,
                                "param 'bands': band %d is not a band of '%s' (it has %d)", band[c],
                                n->args[ch->arg].ref->name, ri->bands);
        }
        ch->band = band[c] - 1;
        ch->type = ri->type;
        pg__nodata_of(ri, &ch->mask, &ch->mask_value);
        ch->gamma = 1.0;
    }

    double lo[3] = {0}, hi[3] = {0}, gamma[3] = {1, 1, 1};
    bool has_lo[3] = {0}, has_hi[3] = {0}, has_g[3] = {0};
    int rc;
    if ((rc = pg__per_channel(n, "min", lo, has_lo, err)) ||
        (rc = pg__per_channel(n, "max", hi, has_hi, err)) ||
        (rc = pg__per_channel(n, "gamma", gamma, has_g, err)))
        return rc;
    for (int c = 0; c < 3; c++)
        if (!(gamma[c] > 0.0 && gamma[c] <= 100.0))
            return pg_error_set(err, PG_EPARAM, "param 'gamma' must be > 0 and <= 100");
    const char *stretch = pg_param_has(n, "stretch") ? pg_param_str(n, "stretch") : "minmax";
    if (strcmp(stretch, "none") == 0) {
        if (has_lo[0] || has_hi[0] || nv > 0)
            return pg_error_set(err, PG_EPARAM,
                                "\"stretch\": \"none\" takes no 'min', 'max' or value args");
        for (int c = 0; c < 3; c++)
            lo[c] = 0.0, hi[c] = 255.0, has_lo[c] = has_hi[c] = true;
    } else if (strcmp(stretch, "minmax") != 0) {
        return pg_error_set(err, PG_EPARAM,
                            "param 'stretch' must be \"minmax\" or \"none\", not '%s'", stretch);
    }
    for (int c = 0; c < 3; c++) {
        pg__chan *ch = &st->ch[c];
        ch->gamma = gamma[c];
        ch->lo = lo[c], ch->has_lo = has_lo[c];
        ch->hi = hi[c], ch->has_hi = has_hi[c];
        /* Integer cells without any stretch source: their type's range. */
        if (nv == 0 && !pg_celltype_is_float(ch->type)) {
            if (!ch->has_lo) ch->lo = pg_celltype_min(ch->type), ch->has_lo = true;
            if (!ch->has_hi) ch->hi = pg_celltype_max(ch->type), ch->has_hi = true;
        }
    }
    if (nv == 0 && (rc = pg__rgb_finish(st, err))) return rc;

    pg_raster_info *oi = &n->info;
    if (pg_raster_info_copy(oi, first) != 0) return pg_error_set(err, PG_ENOMEM, "out of memory");
    oi->type = PG_U8;
    oi->bands = st->alpha ? 4 : 3;
    oi->has_nodata = false;
    oi->nodata = 0.0;
    return 0;
}

static int pg__rgb_bind(pg_node *n, int i, const json_t *value, pg_error *err)
{
    pg__rgb_state *st = n->state;
    int k = -1;
    for (int j = 0; st != NULL && j < st->nvalues; j++)
        if (st->varg[j] == i) k = j;
    if (k < 0) return pg_error_set(err, PG_EINTERNAL, "render.rgb: bind of arg %d unexpected", i);
    const char *vname = n->args[i].ref != NULL ? n->args[i].ref->name : "?";
    /* One value for all channels, or value k for channel k. */
    const int c0 = st->nvalues == 1 ? 0 : k, c1 = st->nvalues == 1 ? 2 : k;
    const bool one_raster = st->ch[0].arg == st->ch[1].arg && st->ch[1].arg == st->ch[2].arg;
    for (int c = c0; c <= c1; c++) {
        pg__chan *ch = &st->ch[c];
        double lo, hi;
        bool has_lo, has_hi;
        if (json_is_array(value)) {
            size_t m = json_array_size(value);
            const json_t *a = json_array_get(value, 0), *b = json_array_get(value, m - 1);
            if (m < 2 || !json_is_number(a) || !json_is_number(b))
                return pg_error_set(err, PG_EPARAM,
                                    "value arg '%s' must be a list of at least 2 numbers (its "
                                    "first and last are the stretch's min and max)",
                                    vname);
            lo = json_number_value(a), hi = json_number_value(b);
            has_lo = has_hi = true;
        } else if (json_is_object(value)) {
            pg__stats_minmax(value, st->nvalues == 1 && one_raster ? ch->band : -1, &lo, &has_lo,
                             &hi, &has_hi);
            if ((!ch->has_lo && !has_lo) || (!ch->has_hi && !has_hi)) {
                const char *miss = (!ch->has_lo && !has_lo) ? "min" : "max";
                return pg_error_set(err, PG_EPARAM,
                                    "value arg '%s' has no numeric '%s' (no valid cell?): give "
                                    "param '%s'",
                                    vname, miss, miss);
            }
        } else {
            return pg_error_set(err, PG_ETYPE,
                                "value arg '%s' must be a list (global.quantiles: first and last "
                                "are min and max) or an object with min and max (global.stats)",
                                vname);
        }
        /* Params win over values. */
        if (!ch->has_lo) ch->lo = lo, ch->has_lo = true;
        if (!ch->has_hi) ch->hi = hi, ch->has_hi = true;
    }
    if (++st->nbound < st->nvalues) return 0;
    return pg__rgb_finish(st, err);
}

typedef void (*pg__lutchanfn)(const pg__chan *, const void *, size_t, uint8_t *, uint8_t *);

static int pg__rgb_compute(const pg_node *n, pg_tile *out, pg_tile *const *in, pg_error *err)
{
    const pg__rgb_state *st = n->state;
    if (st == NULL || !st->ready)
        return pg_error_set(err, PG_EINTERNAL, "render.rgb: computed before its value args");
    const size_t plane = (size_t)out->win.w * (size_t)out->win.h;
    const char *src[3];
    for (int c = 0; c < 3; c++) {
        const pg__chan *ch = &st->ch[c];
        const pg_tile *t = in[ch->arg];
        if (t == NULL || t->type != ch->type || t->bands <= ch->band || t->win.w != out->win.w ||
            t->win.h != out->win.h)
            return pg_error_set(err, PG_EINTERNAL, "render.rgb: tile does not match the raster");
        src[c] = (const char *)t->data + (size_t)ch->band * plane * pg_celltype_size(ch->type);
    }
    if (out->type != PG_U8 || out->bands != (st->alpha ? 4 : 3))
        return pg_error_set(err, PG_EINTERNAL, "render.rgb: output tile does not match");
    uint8_t *dst[4];
    for (int b = 0; b < out->bands; b++)
        dst[b] = (uint8_t *)out->data + (size_t)b * plane;
    double val[PG__CHUNK];
    uint8_t ok[PG__CHUNK], bad[PG__CHUNK];
    for (size_t off = 0; off < plane; off += PG__CHUNK) {
        const size_t len = plane - off < PG__CHUNK ? plane - off : PG__CHUNK;
        memset(bad, 0, len);
        for (int c = 0; c < 3; c++) {
            const pg__chan *ch = &st->ch[c];
            const size_t cs = pg_celltype_size(ch->type);
            if (ch->lut != NULL) {
                static const pg__lutchanfn fns[4] = {pg__lutchan_u8, pg__lutchan_i8,
                                                     pg__lutchan_u16, pg__lutchan_i16};
                fns[ch->type](ch, src[c] + off * cs, len, dst[c] + off, bad);
            } else {
                pg__chan_compute(ch, ch->mask, src[c] + off * cs, len, dst[c] + off, bad, val, ok);
            }
        }
        uint8_t *restrict r = dst[0] + off, *restrict g = dst[1] + off, *restrict b = dst[2] + off;
        for (size_t i = 0; i < len; i++) {
            const uint8_t keep = (uint8_t)(bad[i] - 1); /* 0xff valid, 0 missing */
            r[i] &= keep;
            g[i] &= keep;
            b[i] &= keep;
        }
        if (st->alpha) {
            uint8_t *restrict a = dst[3] + off;
            for (size_t i = 0; i < len; i++)
                a[i] = (uint8_t)(bad[i] - 1);
        }
    }
    return 0;
}

/* ---- the table ---- */

static const pg_param_def pg__ramp_params[] = {
    {"band", PG_PARAM_INT, false, "1", "band of the raster to colour (1-based)", 1, 65536},
    {"ramp", PG_PARAM_STRING, false, "\"viridis\"",
     "colour ramp: viridis, magma, inferno, plasma, cividis, greys, blues, greens, reds, ylorrd, "
     "spectral, rdylgn, rdbu or terrain",
     0, 0},
    {"breaks", PG_PARAM_JSON, false, NULL,
     "class breaks: an ascending list of n numbers making n+1 classes (k = number of breaks <= "
     "v), coloured by sampling the ramp evenly; without breaks the ramp is stretched "
     "continuously from 'min' to 'max'",
     0, 0},
    {"min", PG_PARAM_NUMBER, false, NULL,
     "continuous ramp: the value at the ramp's start (cells below take its first colour); "
     "default: from a global.stats value arg",
     0, 0},
    {"max", PG_PARAM_NUMBER, false, NULL,
     "continuous ramp: the value at the ramp's end (cells above take its last colour); "
     "default: from a global.stats value arg",
     0, 0},
    {"reverse", PG_PARAM_BOOL, false, "false", "read the ramp from its end", 0, 0},
    {"opacity", PG_PARAM_NUMBER, false, "1", "alpha of valid cells, 0 to 1 (x 255, rounded)", 0, 1},
    {0},
};

static const pg_param_def pg__rgb_params[] = {
    {"bands", PG_PARAM_JSON, false, NULL,
     "the [red, green, blue] band numbers (1-based): of the one raster arg (default [1, 2, 3]) "
     "or of each of three raster args (default [1, 1, 1])",
     0, 0},
    {"stretch", PG_PARAM_STRING, false, "\"minmax\"",
     "\"minmax\": 'min' -> 0 and 'max' -> 255, linear; \"none\": min 0, max 255", 0, 0},
    {"min", PG_PARAM_JSON, false, NULL,
     "stretch minimum: a number, or a list of 3 (one per channel); default: from value args, "
     "else the cell type's minimum (integer cells)",
     0, 0},
    {"max", PG_PARAM_JSON, false, NULL,
     "stretch maximum: a number, or a list of 3 (one per channel); default: from value args, "
     "else the cell type's maximum (integer cells)",
     0, 0},
    {"gamma", PG_PARAM_JSON, false, "1",
     "gamma, > 0 (a number or a list of 3): output 255 * t^(1/gamma); above 1 brightens", 0, 0},
    {"alpha", PG_PARAM_BOOL, false, "false",
     "add a 4th band, alpha: 0 where any channel is nodata, else 255", 0, 0},
    {0},
};

const pg_op_def pg_ops_render[] = {
    {
        .name = "render.ramp",
        .family = "render",
        .doc = "Colours one band of a raster with a named colour ramp (viridis, magma, inferno, "
               "plasma, cividis, greys, blues, greens, reds, ylorrd, spectral, rdylgn, rdbu, "
               "terrain), for io.save as PNG or GeoTIFF. OUTPUT: u8, 4 bands (red, green, blue, "
               "alpha), no nodata value: nodata and NaN cells are fully transparent (0, 0, 0, 0), "
               "every other cell has alpha round(255 * opacity). With \"breaks\" (n ascending "
               "numbers) the cells fall in n+1 classes (class k: the number of breaks <= v) "
               "coloured by sampling the ramp evenly, first class = first colour, last class = "
               "last colour. Without, the ramp is stretched continuously from \"min\" to "
               "\"max\" (colours in 3840 steps, within 1/255 of exact interpolation). An "
               "optional value arg supplies either: a list of numbers (global.quantiles, "
               "global.breaks) is the breaks; an object with min and max (global.stats; its "
               "\"bands\" entry for the chosen band if it has one) is the stretch, params "
               "\"min\"/\"max\" overriding it. Anchors: matplotlib (viridis family, cividis, "
               "terrain) and ColorBrewer, interpolated in RGB.",
        .example = "{\"op\": \"render.ramp\", \"ramp\": \"terrain\", \"breaks\": [200, 500, 1000, "
                   "1500], \"args\": [{\"ref\": \"dem\"}]}",
        .min_args = 1,
        .max_args = 2,
        .arg_kinds = PG_ARGK_RASTER | PG_ARGK_VALUE,
        .params = pg__ramp_params,
        .result = PG_RESULT_RASTER,
        .plan = pg__ramp_plan,
        .compute = pg__ramp_compute,
        .bind = pg__ramp_bind,
        .free_state = pg__ramp_free,
    },
    {
        .name = "render.rgb",
        .family = "render",
        .doc = "An RGB composite: three bands of one raster (\"bands\", default [1, 2, 3]) or "
               "band 1 of three rasters on one grid, each stretched linearly from its min to its "
               "max onto 0..255 (rounded), with an optional gamma (255 * t^(1/gamma)). OUTPUT: "
               "u8, 3 bands (red, green, blue), no nodata value: a cell that is nodata or NaN in "
               "any channel is black; with \"alpha\": true a 4th band is 0 there and 255 "
               "elsewhere. min/max per channel come from params (a number or a list of 3), else "
               "from value args: one for all channels or three in channel order, each a "
               "global.stats object (min, max; its \"bands\" entry of the channel's band when "
               "there is one raster and one value) or a list whose first and last numbers are "
               "min and max. A 2-98 % stretch: three global.quantiles nodes with \"probs\": "
               "[0.02, 0.98], each over one band ({\"op\": \"io.load\", \"path\": ..., "
               "\"band\": k}), as value args after the raster: \"args\": [{\"ref\": \"img\"}, "
               "{\"ref\": \"q1\"}, {\"ref\": \"q2\"}, {\"ref\": \"q3\"}]. Without either, "
               "integer cells use their type's full range; float cells need min/max.",
        .example = "{\"op\": \"render.rgb\", \"bands\": [3, 2, 1], \"min\": 0, \"max\": 3000, "
                   "\"gamma\": 1.5, \"args\": [{\"ref\": \"image\"}]}",
        .min_args = 1,
        .max_args = 6,
        .arg_kinds = PG_ARGK_RASTER | PG_ARGK_VALUE,
        .params = pg__rgb_params,
        .result = PG_RESULT_RASTER,
        .plan = pg__rgb_plan,
        .compute = pg__rgb_compute,
        .bind = pg__rgb_bind,
        .free_state = pg__rgb_free,
    },
    {0},
};
