/* The tile pool and the memory budget.
 *
 * Why a pool: on these machines a page touched for the first time costs
 * about 10 us, memory bandwidth is 40-75 GB/s. A tile freshly malloc'd for
 * every step spends its time in page faults. So tile buffers are recycled by
 * size class (powers of two) and stay warm; the hot path allocates nothing
 * once the pool is primed.
 *
 * Why reservations: the budget bounds the bytes of tiles in flight. A job
 * reserves the worst case of one tile index (every buffer its tile DAG may
 * hold at once) before it starts that index, and releases it when the index
 * is finished. A reservation that does not fit is refused rather than
 * waited for: the job parks itself and is woken by pg_budget's callback when
 * memory comes back. Nobody blocks.
 *
 * All functions are thread-safe.
 */
#ifndef PG_BUFPOOL_H
#define PG_BUFPOOL_H

#include "raster.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Sets the budget in bytes (call once at start, before any tile exists). */
void pg_bufpool_init(size_t budget_bytes);
/* Frees every cached buffer. Tiles still referenced are not touched. */
void pg_bufpool_shutdown(void);

/* A new tile of TYPE x BANDS covering WIN, refcount 1, contents undefined.
 * Returns NULL only if the system is out of memory. */
pg_tile *pg_tile_new(pg_celltype type, int bands, pg_window win);
/* Adds a reference; returns T. */
pg_tile *pg_tile_ref(pg_tile *t);
/* Drops a reference and sets *T to NULL; the last one returns the buffer to
 * the pool. NULL-safe. */
void pg_tile_unref(pg_tile **t);

/* The number of bytes pg_tile_new would take from the pool for NBYTES of
 * cells (its size class). Used to size reservations. */
size_t pg_bufpool_class_bytes(size_t nbytes);

/* Budget accounting. pg_budget_try_reserve() takes N bytes if they fit, or
 * if nothing at all is reserved (so a single job whose one tile index is
 * larger than the budget still progresses), and returns true; otherwise it
 * records WAKE(ARG) to be called (once, from whichever thread releases
 * memory) and returns false. */
typedef void (*pg_budget_wake_fn)(void *arg);
bool pg_budget_try_reserve(size_t n, pg_budget_wake_fn wake, void *arg);
void pg_budget_release(size_t n);
/* Forgets a pending wake-up registered by ARG (e.g. a job being torn down).
 * Returns true if one was registered (and will now never be called). */
bool pg_budget_forget(void *arg);

typedef struct pg_bufpool_stats {
    size_t budget;   /* configured budget */
    size_t reserved; /* bytes reserved by running jobs now */
    size_t in_use;   /* bytes of live tiles */
    size_t cached;   /* bytes of free buffers kept for reuse */
    size_t peak_in_use;
    uint64_t allocs, reuses;
} pg_bufpool_stats;

void pg_bufpool_get_stats(pg_bufpool_stats *out);

#endif
