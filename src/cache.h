/* The result cache: results of nodes, keyed by their content key
 * (src/nodekey.h), within a byte budget, least recently used out first.
 *
 * An entry holds a JSON value (a value op's result: global.stats,
 * zonal.*, ...) and/or raw cells (a raster answer; then the value is its
 * header). Entries are refcounted: a reader keeps one alive, and its bytes
 * valid, after it has been evicted. A filled entry never changes.
 *
 * Identical requests in flight share one computation. A lookup answers
 *  - HIT: the entry (a new reference);
 *  - CLAIMED: nobody has it; the caller computes it and must then fill or
 *    abandon the claim it got;
 *  - PENDING: another caller has claimed it; CB(ARG, ...) will be called
 *    exactly once, from whichever thread fills or abandons that claim: with
 *    PG_CACHE_HIT and the entry (a new reference), or with PG_CACHE_CLAIMED
 *    and the claim (the claimer gave up: compute it yourself, then fill or
 *    abandon it in turn). A waiter that stops caring withdraws with
 *    pg_cache_unwait(); if that fails the call is on its way.
 * So a claim always ends in fill or abandon (a failed or cancelled job
 * abandons), and no waiter hangs on a computation that stopped.
 *
 * Thread-safe: one mutex guards the table and the LRU list; it is never
 * held across a computation, I/O or a callback.
 */
#ifndef PG_CACHE_H
#define PG_CACHE_H

#include "nodekey.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pg_cache pg_cache;
typedef struct pg_cache_entry pg_cache_entry;

enum { PG_CACHE_HIT = 1, PG_CACHE_CLAIMED, PG_CACHE_PENDING };

/* STATUS is PG_CACHE_HIT or PG_CACHE_CLAIMED; E is a new reference (HIT)
 * or the claim (CLAIMED), owned by the callee. */
typedef void (*pg_cache_cb)(void *arg, int status, pg_cache_entry *e);

typedef struct pg_cache_stats {
    int64_t budget_bytes, bytes, entries;
    int64_t hits;      /* lookups answered by a filled entry */
    int64_t misses;    /* claims: computations started */
    int64_t shared;    /* waits answered by another caller's computation */
    int64_t evictions; /* filled entries dropped for the budget */
} pg_cache_stats;

/* A cache of BUDGET bytes (> 0). NULL when out of memory. */
pg_cache *pg_cache_new(size_t budget);
/* Drops every entry (readers keep theirs). No claim may be outstanding. */
void pg_cache_destroy(pg_cache **c);

/* See above. KEY is borrowed (the cache takes its own reference). *OUT is
 * set for HIT and CLAIMED. Returns the status, or PG_ENOMEM (then treat as
 * uncached: compute without a claim). */
int pg_cache_lookup(pg_cache *c, pg_nodekey *key, pg_cache_entry **out, pg_cache_cb cb, void *arg);
/* A filled entry for KEY (a new reference), or NULL: never claims nor
 * waits. Counts a hit when it finds one. */
pg_cache_entry *pg_cache_get(pg_cache *c, pg_nodekey *key);
/* Fills the claim *CLAIM (taken; set to NULL) with VALUE and CELLS[0..LEN)
 * (both stolen; either may be NULL), wakes its waiters with HIT, then
 * evicts least recently used entries while over budget (the new one too,
 * if it alone is too big: waiters still get it). */
void pg_cache_fill(pg_cache *c, pg_cache_entry **claim, json_t *value, void *cells, size_t len);
/* Gives the claim *CLAIM (taken; set to NULL) up: its first waiter gets
 * it (PG_CACHE_CLAIMED), or, without waiters, the entry is dropped. */
void pg_cache_abandon(pg_cache *c, pg_cache_entry **claim);
/* Withdraws the wait of ARG for KEY. True if it was still registered
 * (its callback will not be called); false if the call is on its way. */
bool pg_cache_unwait(pg_cache *c, pg_nodekey *key, void *arg);

pg_cache_entry *pg_cache_entry_ref(pg_cache_entry *e);
void pg_cache_entry_unref(pg_cache_entry **e);
/* Borrowed, valid while the reference is held; NULL if absent. */
const json_t *pg_cache_entry_value(const pg_cache_entry *e);
const void *pg_cache_entry_cells(const pg_cache_entry *e, size_t *len);

void pg_cache_get_stats(pg_cache *c, pg_cache_stats *st);
/* {"budget_bytes", "bytes", "entries", "hits", "misses", "shared",
 * "evictions"} (a new reference); zeroes for a NULL cache. */
json_t *pg_cache_stats_json(pg_cache *c);

/* The daemon's cache: made by pg_cache_global_init (BUDGET 0: none, then
 * pg_cache_global() is NULL) before the workers start, destroyed by
 * pg_cache_global_shutdown after they have stopped. */
void pg_cache_global_init(size_t budget);
pg_cache *pg_cache_global(void);
void pg_cache_global_shutdown(void);

#endif
