/* Raster reads through GDAL, with per-thread dataset handles.
 *
 * A GDAL dataset handle may be used by one thread at a time. Rather than
 * funnel every read of a file through one handle (and one thread), each
 * worker keeps its own small LRU cache of open handles, keyed by the file's
 * identity (path, device, inode, size, mtime): reads of one file run in
 * parallel, decompression included, and a file replaced on disk is never
 * read through a stale handle.
 */
#ifndef PG_GDALIO_H
#define PG_GDALIO_H

#include "pergola/error.h"
#include "raster.h"

#include <stdint.h>

/* A file's identity, taken once at plan time. */
typedef struct pg_file_id {
    uint64_t dev, ino;
    int64_t size;
    int64_t mtime_ns;
} pg_file_id;

/* Registers GDAL's drivers, sets its block cache (bytes) and routes its
 * messages to our log. Call once, before any other function here. */
void pg_gdalio_init(int64_t cache_bytes);
/* Closes the calling thread's cached handles (run at worker exit). */
void pg_gdalio_thread_exit(void);

/* Fills *ID from stat(2). Returns 0 or PG_ENOTFOUND. */
int pg_file_identify(const char *path, pg_file_id *id);

/* The calling thread's handle for PATH (opened read-only, raster only, on
 * first use). Borrowed: valid until this thread's next call here. NULL on
 * failure with ERR (PG_EFORMAT). */
void *pg_gdalio_open(const char *path, const pg_file_id *id, pg_error *err);

/* Reads window OUT->win of bands BANDS[0..NBANDS-1] (1-based) of PATH into
 * OUT (whose type and band count say the buffer layout), converting types
 * as GDAL does (an i8 tile takes a signed-byte band's bytes as they are).
 * Cells of the window outside the raster are set to FILL. */
int pg_gdalio_read(const char *path, const pg_file_id *id, const int *bands, int nbands,
                   pg_tile *out, double fill, pg_error *err);

#endif
