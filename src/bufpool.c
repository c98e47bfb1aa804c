/* The tile pool and the memory budget (see bufpool.h for why). */
#include "bufpool.h"

#include <stdlib.h>
#include <string.h>
#include <uv.h>

#define CLASS_MIN_SHIFT 12 /* 4 KiB */
#define NCLASSES 36        /* up to 2^47 bytes */

typedef struct freebuf {
    struct freebuf *next;
} freebuf;

static struct {
    uv_mutex_t mu;
    int ready;
    size_t budget;
    size_t reserved;
    size_t in_use, cached, peak_in_use;
    uint64_t allocs, reuses;
    freebuf *free_bufs[NCLASSES];
    pg_tile *free_tiles; /* headers, linked through their data field */
    struct waiter {
        pg_budget_wake_fn fn;
        void *arg;
    } * waiters;
    size_t nwaiters, capwaiters;
} P;

void pg_bufpool_init(size_t budget_bytes)
{
    if (!P.ready) {
        uv_mutex_init(&P.mu);
        P.ready = 1;
    }
    P.budget = budget_bytes;
}

static int class_of(size_t nbytes)
{
    int c = 0;
    size_t sz = (size_t)1 << CLASS_MIN_SHIFT;
    while (sz < nbytes && c < NCLASSES - 1) {
        sz <<= 1;
        c++;
    }
    return c;
}

static size_t class_bytes(int c)
{
    return (size_t)1 << (CLASS_MIN_SHIFT + c);
}

size_t pg_bufpool_class_bytes(size_t nbytes)
{
    return class_bytes(class_of(nbytes));
}

void pg_bufpool_shutdown(void)
{
    if (!P.ready) return;
    uv_mutex_lock(&P.mu);
    for (int c = 0; c < NCLASSES; c++) {
        while (P.free_bufs[c]) {
            freebuf *b = P.free_bufs[c];
            P.free_bufs[c] = b->next;
            free(b);
        }
    }
    while (P.free_tiles) {
        pg_tile *t = P.free_tiles;
        P.free_tiles = (pg_tile *)t->data;
        free(t);
    }
    P.cached = 0;
    free(P.waiters);
    P.waiters = NULL;
    P.nwaiters = P.capwaiters = 0;
    uv_mutex_unlock(&P.mu);
}

pg_tile *pg_tile_new(pg_celltype type, int bands, pg_window win)
{
    size_t nbytes = (size_t)bands * (size_t)win.w * (size_t)win.h * pg_celltype_size(type);
    int c = class_of(nbytes);
    size_t cb = class_bytes(c);
    void *buf = NULL;
    pg_tile *t = NULL;

    uv_mutex_lock(&P.mu);
    if (P.free_bufs[c]) {
        buf = P.free_bufs[c];
        P.free_bufs[c] = P.free_bufs[c]->next;
        P.cached -= cb;
        P.reuses++;
    } else {
        P.allocs++;
    }
    if (P.free_tiles) {
        t = P.free_tiles;
        P.free_tiles = (pg_tile *)t->data;
    }
    P.in_use += cb;
    if (P.in_use > P.peak_in_use) P.peak_in_use = P.in_use;
    uv_mutex_unlock(&P.mu);

    if (buf == NULL) buf = aligned_alloc(64, cb);
    if (t == NULL) t = malloc(sizeof *t);
    if (buf == NULL || t == NULL) {
        free(buf);
        free(t);
        uv_mutex_lock(&P.mu);
        P.in_use -= cb;
        uv_mutex_unlock(&P.mu);
        return NULL;
    }
    atomic_init(&t->refs, 1);
    t->type = type;
    t->bands = bands;
    t->win = win;
    t->nbytes = nbytes;
    t->data = buf;
    t->pool_class_ = c;
    return t;
}

pg_tile *pg_tile_ref(pg_tile *t)
{
    atomic_fetch_add_explicit(&t->refs, 1, memory_order_relaxed);
    return t;
}

void pg_tile_unref(pg_tile **tp)
{
    pg_tile *t = *tp;
    *tp = NULL;
    if (t == NULL) return;
    if (atomic_fetch_sub_explicit(&t->refs, 1, memory_order_acq_rel) != 1) return;
    int c = t->pool_class_;
    size_t cb = class_bytes(c);
    void *drop = NULL;
    uv_mutex_lock(&P.mu);
    P.in_use -= cb;
    /* Keep the buffer warm unless the cache would push the pool past the
     * budget: then give it back to the system. */
    if (P.cached + P.in_use + cb <= P.budget) {
        freebuf *b = t->data;
        b->next = P.free_bufs[c];
        P.free_bufs[c] = b;
        P.cached += cb;
    } else {
        drop = t->data;
    }
    t->data = P.free_tiles;
    P.free_tiles = t;
    uv_mutex_unlock(&P.mu);
    free(drop);
}

bool pg_budget_try_reserve(size_t n, pg_budget_wake_fn wake, void *arg)
{
    uv_mutex_lock(&P.mu);
    if (P.reserved == 0 || P.reserved + n <= P.budget) {
        P.reserved += n;
        uv_mutex_unlock(&P.mu);
        return true;
    }
    size_t i;
    for (i = 0; i < P.nwaiters; i++)
        if (P.waiters[i].arg == arg) break;
    if (i == P.nwaiters) {
        if (P.nwaiters == P.capwaiters) {
            size_t cap = P.capwaiters ? P.capwaiters * 2 : 16;
            struct waiter *w = realloc(P.waiters, cap * sizeof *w);
            if (w == NULL) {
                /* Cannot queue the wake-up: admit instead of losing it. */
                P.reserved += n;
                uv_mutex_unlock(&P.mu);
                return true;
            }
            P.waiters = w;
            P.capwaiters = cap;
        }
        P.waiters[P.nwaiters].fn = wake;
        P.waiters[P.nwaiters].arg = arg;
        P.nwaiters++;
    }
    uv_mutex_unlock(&P.mu);
    return false;
}

void pg_budget_release(size_t n)
{
    struct waiter local[16];
    size_t nw = 0;
    uv_mutex_lock(&P.mu);
    P.reserved -= n;
    /* Wake at most a handful per release: each woken job retries and
     * re-registers if it still does not fit. */
    while (P.nwaiters > 0 && nw < (sizeof local / sizeof local[0])) {
        local[nw++] = P.waiters[0];
        memmove(P.waiters, P.waiters + 1, (P.nwaiters - 1) * sizeof *P.waiters);
        P.nwaiters--;
    }
    uv_mutex_unlock(&P.mu);
    for (size_t i = 0; i < nw; i++)
        local[i].fn(local[i].arg);
}

bool pg_budget_forget(void *arg)
{
    bool found = false;
    uv_mutex_lock(&P.mu);
    for (size_t i = 0; i < P.nwaiters; i++) {
        if (P.waiters[i].arg == arg) {
            memmove(P.waiters + i, P.waiters + i + 1, (P.nwaiters - i - 1) * sizeof *P.waiters);
            P.nwaiters--;
            found = true;
            break;
        }
    }
    uv_mutex_unlock(&P.mu);
    return found;
}

void pg_bufpool_get_stats(pg_bufpool_stats *out)
{
    uv_mutex_lock(&P.mu);
    out->budget = P.budget;
    out->reserved = P.reserved;
    out->in_use = P.in_use;
    out->cached = P.cached;
    out->peak_in_use = P.peak_in_use;
    out->allocs = P.allocs;
    out->reuses = P.reuses;
    uv_mutex_unlock(&P.mu);
}
