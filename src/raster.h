/* The raster model: cell types, raster descriptions, windows and tiles.
 *
 * A raster is described by pg_raster_info (grid, cell type, nodata, bands);
 * its cells exist only as tiles: refcounted buffers from the tile pool
 * (src/bufpool.h) covering one window of the raster, all bands, band
 * sequential (band b, row y, column x at data[(b*h + y)*w + x]).
 * A tile is immutable once published: it is written only by the task that
 * allocated it, before the task hands it on.
 */
#ifndef PG_RASTER_H
#define PG_RASTER_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    PG_U8 = 0,
    PG_I8,
    PG_U16,
    PG_I16,
    PG_U32,
    PG_I32,
    PG_F32,
    PG_F64,
    PG_CELLTYPE_COUNT
} pg_celltype;

/* "u8", "f32", ... */
const char *pg_celltype_name(pg_celltype t);
/* Parses a name; returns 0 and sets *t, or -1. */
int pg_celltype_parse(const char *name, pg_celltype *t);
size_t pg_celltype_size(pg_celltype t);
bool pg_celltype_is_float(pg_celltype t);
bool pg_celltype_is_signed(pg_celltype t);
/* Smallest and largest value of an integer type (for floats: -inf, +inf). */
double pg_celltype_min(pg_celltype t);
double pg_celltype_max(pg_celltype t);
/* True if V is exactly representable in T (NaN only in float types). */
bool pg_celltype_holds(pg_celltype t, double v);
/* The nodata value used when an op must invent one: NaN for floats, the
 * minimum for signed integers, the maximum for unsigned ones. */
double pg_celltype_default_nodata(pg_celltype t);
/* GDALDataType for T, and back (-1 if GDAL's type has no pg_celltype). */
int pg_celltype_to_gdal(pg_celltype t);
int pg_celltype_from_gdal(int gdal_type, pg_celltype *t);

/* A rectangle of cells: columns [x, x+w), rows [y, y+h). */
typedef struct pg_window {
    int64_t x, y, w, h;
} pg_window;

/* What a raster is, without its cells. */
typedef struct pg_raster_info {
    int64_t width, height;
    int bands;
    pg_celltype type;
    bool has_nodata;
    double nodata;
    bool has_geotransform;
    double geotransform[6];
    char *crs_wkt; /* owned; NULL or "" if unknown */
    /* The natural block of the data behind this raster (a source file's
     * block size), or 0 x 0 if none: the job chooses its tiling from it,
     * e.g. full-width strips for a striped GeoTIFF, so that no block is
     * read twice. A hint only; ops that do not care copy it along. */
    int64_t block_w, block_h;
} pg_raster_info;

/* Deep copy (duplicates crs_wkt). Returns 0 or -1 (out of memory). */
int pg_raster_info_copy(pg_raster_info *dst, const pg_raster_info *src);
void pg_raster_info_clear(pg_raster_info *ri);
/* True if A and B have the same grid: size, geotransform and CRS
 * (geotransforms compared with a relative tolerance of 1e-9 of a cell). */
bool pg_raster_same_grid(const pg_raster_info *a, const pg_raster_info *b);
/* Bytes of one band of one cell row ... of a whole window, all bands. */
size_t pg_raster_window_bytes(const pg_raster_info *ri, const pg_window *w);

/* Tile layout: the raster's cells cut into a grid of tile_w x tile_h
 * windows (the last column and row may be smaller). */
typedef struct pg_tiling {
    int64_t width, height;
    int64_t tile_w, tile_h;
    int64_t cols, rows; /* number of tiles across, down */
} pg_tiling;

void pg_tiling_init(pg_tiling *t, int64_t width, int64_t height, int64_t tile_w, int64_t tile_h);
static inline int64_t pg_tiling_count(const pg_tiling *t)
{
    return t->cols * t->rows;
}
/* The window of tile number K (row-major: k = row*cols + col). */
pg_window pg_tiling_window(const pg_tiling *t, int64_t k);

/* A tile: one window of a raster, all bands, in one pooled buffer. */
typedef struct pg_tile {
    atomic_int refs;
    pg_celltype type;
    int bands;
    pg_window win; /* the cells this tile holds, in raster coordinates */
    size_t nbytes; /* bands * win.w * win.h * cell size */
    void *data;    /* 64-byte aligned */
    /* private to bufpool */
    int pool_class_;
} pg_tile;

/* Cell pointer for band B, row Y, column X (tile-relative). */
static inline void *pg_tile_cell(const pg_tile *t, int b, int64_t y, int64_t x)
{
    size_t cs = (t->type == PG_U8 || t->type == PG_I8)     ? 1
                : (t->type == PG_U16 || t->type == PG_I16) ? 2
                : (t->type == PG_F64)                      ? 8
                                                           : 4;
    return (char *)t->data + (((size_t)b * (size_t)t->win.h + (size_t)y) * (size_t)t->win.w + (size_t)x) * cs;
}

#endif
