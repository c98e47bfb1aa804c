/* The result cache (see cache.h). */
#include "cache.h"

#include "log.h"

#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

enum { E_PENDING, E_READY, E_GONE };

typedef struct waiter {
    struct waiter *next;
    pg_cache_cb cb;
    void *arg;
} waiter;

struct pg_cache_entry {
    atomic_long refs;
    pg_cache_entry *hnext;       /* hash chain */
    pg_cache_entry *prev, *next; /* LRU list (E_READY only), most recent first */
    pg_nodekey *key;             /* held */
    int state;                   /* under the cache's mutex */
    waiter *waiters, *wtail;     /* E_PENDING: in arrival order */
    json_t *value;
    unsigned char *cells;
    size_t ncells;
    size_t bytes; /* counted against the budget once ready */
};

struct pg_cache {
    uv_mutex_t mu;
    pg_cache_entry **buckets;
    size_t nbuckets, count; /* count: entries in the table, pending too */
    pg_cache_entry *head, *tail;
    size_t budget, bytes;
    int64_t entries, hits, misses, shared, evictions;
};

static void entry_free(pg_cache_entry *e)
{
    json_decref(e->value);
    free(e->cells);
    pg_nodekey_unref(&e->key);
    free(e);
}

pg_cache_entry *pg_cache_entry_ref(pg_cache_entry *e)
{
    if (e) atomic_fetch_add(&e->refs, 1);
    return e;
}

void pg_cache_entry_unref(pg_cache_entry **ep)
{
    pg_cache_entry *e = *ep;
    *ep = NULL;
    if (e && atomic_fetch_sub(&e->refs, 1) == 1) entry_free(e);
}

const json_t *pg_cache_entry_value(const pg_cache_entry *e)
{
    return e->value;
}

const void *pg_cache_entry_cells(const pg_cache_entry *e, size_t *len)
{
    if (len) *len = e->ncells;
    return e->cells;
}

pg_cache *pg_cache_new(size_t budget)
{
    pg_cache *c = calloc(1, sizeof *c);
    if (c == NULL) return NULL;
    c->nbuckets = 64;
    c->buckets = calloc(c->nbuckets, sizeof *c->buckets);
    if (c->buckets == NULL || uv_mutex_init(&c->mu) != 0) {
        free(c->buckets);
        free(c);
        return NULL;
    }
    c->budget = budget;
    return c;
}

void pg_cache_destroy(pg_cache **cp)
{
    pg_cache *c = *cp;
    *cp = NULL;
    if (c == NULL) return;
    for (size_t i = 0; i < c->nbuckets; i++)
        for (pg_cache_entry *e = c->buckets[i], *nx; e != NULL; e = nx) {
            nx = e->hnext;
            if (e->state == E_PENDING)
                pg_log_warn("result cache: an entry is still claimed at shutdown");
            for (waiter *w = e->waiters, *wn; w != NULL; w = wn) {
                wn = w->next;
                free(w);
            }
            e->state = E_GONE;
            pg_cache_entry_unref(&e);
        }
    free(c->buckets);
    uv_mutex_destroy(&c->mu);
    free(c);
}

/* ---- under the mutex ---- */

static pg_cache_entry **find(pg_cache *c, const pg_nodekey *key)
{
    /* Keys are interned: one object per distinct full key, so comparing
     * the objects compares the keys exactly. */
    pg_cache_entry **pp = &c->buckets[pg_nodekey_hash(key) & (c->nbuckets - 1)];
    while (*pp != NULL && (*pp)->key != key)
        pp = &(*pp)->hnext;
    return pp;
}

static void grow(pg_cache *c)
{
    if (c->count < c->nbuckets) return;
    size_t nb = c->nbuckets * 2;
    pg_cache_entry **b = calloc(nb, sizeof *b);
    if (b == NULL) return; /* longer chains, still correct */
    for (size_t i = 0; i < c->nbuckets; i++)
        for (pg_cache_entry *e = c->buckets[i], *nx; e != NULL; e = nx) {
            nx = e->hnext;
            size_t h = pg_nodekey_hash(e->key) & (nb - 1);
            e->hnext = b[h];
            b[h] = e;
        }
    free(c->buckets);
    c->buckets = b;
    c->nbuckets = nb;
}

static void lru_unlink(pg_cache *c, pg_cache_entry *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
}

static void lru_push(pg_cache *c, pg_cache_entry *e)
{
    e->prev = NULL;
    e->next = c->head;
    if (c->head) c->head->prev = e;
    c->head = e;
    if (c->tail == NULL) c->tail = e;
}

/* Takes E out of the table (its reference goes to *DEAD's list for the
 * caller to drop outside the mutex). */
static void unlink_entry(pg_cache *c, pg_cache_entry *e, pg_cache_entry **dead)
{
    pg_cache_entry **pp = find(c, e->key);
    if (*pp == e) *pp = e->hnext;
    c->count--;
    if (e->state == E_READY) {
        lru_unlink(c, e);
        c->bytes -= e->bytes;
        c->entries--;
    }
    e->state = E_GONE;
    e->hnext = *dead;
    *dead = e;
}

static void drop_dead(pg_cache_entry *dead)
{
    while (dead) {
        pg_cache_entry *nx = dead->hnext;
        pg_cache_entry_unref(&dead);
        dead = nx;
    }
}

/* ---- the API ---- */

int pg_cache_lookup(pg_cache *c, pg_nodekey *key, pg_cache_entry **out, pg_cache_cb cb, void *arg)
{
    waiter *w = malloc(sizeof *w); /* allocated outside the mutex, used if pending */
    if (w == NULL) return PG_ENOMEM;
    w->next = NULL;
    w->cb = cb;
    w->arg = arg;
    uv_mutex_lock(&c->mu);
    pg_cache_entry *e = *find(c, key);
    if (e != NULL && e->state == E_READY) {
        c->hits++;
        lru_unlink(c, e);
        lru_push(c, e);
        *out = pg_cache_entry_ref(e);
        uv_mutex_unlock(&c->mu);
        free(w);
        return PG_CACHE_HIT;
    }
    if (e != NULL) { /* E_PENDING */
        if (e->wtail)
            e->wtail->next = w;
        else
            e->waiters = w;
        e->wtail = w;
        uv_mutex_unlock(&c->mu);
        return PG_CACHE_PENDING;
    }
    free(w);
    e = calloc(1, sizeof *e);
    if (e == NULL) {
        uv_mutex_unlock(&c->mu);
        return PG_ENOMEM;
    }
    atomic_init(&e->refs, 2); /* the table's and the claim */
    e->key = pg_nodekey_ref(key);
    e->state = E_PENDING;
    grow(c);
    pg_cache_entry **pp = find(c, key);
    e->hnext = *pp;
    *pp = e;
    c->count++;
    c->misses++;
    uv_mutex_unlock(&c->mu);
    *out = e;
    return PG_CACHE_CLAIMED;
}

pg_cache_entry *pg_cache_get(pg_cache *c, pg_nodekey *key)
{
    uv_mutex_lock(&c->mu);
    pg_cache_entry *e = *find(c, key);
    if (e != NULL && e->state == E_READY) {
        c->hits++;
        lru_unlink(c, e);
        lru_push(c, e);
        pg_cache_entry_ref(e);
    } else {
        e = NULL;
    }
    uv_mutex_unlock(&c->mu);
    return e;
}

void pg_cache_fill(pg_cache *c, pg_cache_entry **claim, json_t *value, void *cells, size_t len)
{
    pg_cache_entry *e = *claim;
    *claim = NULL;
    e->value = value;
    e->cells = cells;
    e->ncells = cells ? len : 0;
    /* What it holds: a value's size is its text's, near enough. */
    size_t vbytes = value ? json_dumpb(value, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY) : 0;
    e->bytes = sizeof *e + e->ncells + vbytes + pg_nodekey_bytes(e->key);
    pg_cache_entry *dead = NULL;
    uv_mutex_lock(&c->mu);
    waiter *ws = e->waiters;
    e->waiters = e->wtail = NULL;
    e->state = E_READY;
    lru_push(c, e);
    c->bytes += e->bytes;
    c->entries++;
    for (waiter *w = ws; w != NULL; w = w->next)
        c->shared++;
    while (c->bytes > c->budget && c->tail != NULL) {
        c->evictions++;
        unlink_entry(c, c->tail, &dead);
    }
    uv_mutex_unlock(&c->mu);
    for (waiter *w = ws, *nx; w != NULL; w = nx) {
        nx = w->next;
        w->cb(w->arg, PG_CACHE_HIT, pg_cache_entry_ref(e));
        free(w);
    }
    pg_cache_entry_unref(&e); /* the claim */
    drop_dead(dead);
}

void pg_cache_abandon(pg_cache *c, pg_cache_entry **claim)
{
    pg_cache_entry *e = *claim;
    *claim = NULL;
    if (e == NULL) return;
    pg_cache_entry *dead = NULL;
    uv_mutex_lock(&c->mu);
    waiter *w = e->waiters;
    if (w != NULL) {
        e->waiters = w->next;
        if (e->waiters == NULL) e->wtail = NULL;
        c->misses++; /* the waiter computes it */
    } else {
        unlink_entry(c, e, &dead);
    }
    uv_mutex_unlock(&c->mu);
    if (w != NULL) {
        w->cb(w->arg, PG_CACHE_CLAIMED, e); /* the claim moves on */
        free(w);
    } else {
        pg_cache_entry_unref(&e);
        drop_dead(dead);
    }
}

bool pg_cache_unwait(pg_cache *c, pg_nodekey *key, void *arg)
{
    waiter *found = NULL;
    uv_mutex_lock(&c->mu);
    pg_cache_entry *e = *find(c, key);
    if (e != NULL && e->state == E_PENDING) {
        waiter *prev = NULL;
        for (waiter *w = e->waiters; w != NULL; prev = w, w = w->next)
            if (w->arg == arg) {
                if (prev)
                    prev->next = w->next;
                else
                    e->waiters = w->next;
                if (e->wtail == w) e->wtail = prev;
                found = w;
                break;
            }
    }
    uv_mutex_unlock(&c->mu);
    free(found);
    return found != NULL;
}

void pg_cache_get_stats(pg_cache *c, pg_cache_stats *st)
{
    memset(st, 0, sizeof *st);
    if (c == NULL) return;
    uv_mutex_lock(&c->mu);
    st->budget_bytes = (int64_t)c->budget;
    st->bytes = (int64_t)c->bytes;
    st->entries = c->entries;
    st->hits = c->hits;
    st->misses = c->misses;
    st->shared = c->shared;
    st->evictions = c->evictions;
    uv_mutex_unlock(&c->mu);
}

json_t *pg_cache_stats_json(pg_cache *c)
{
    pg_cache_stats s;
    pg_cache_get_stats(c, &s);
    return json_pack("{sIsIsIsIsIsIsI}", "budget_bytes", (json_int_t)s.budget_bytes, "bytes",
                     (json_int_t)s.bytes, "entries", (json_int_t)s.entries, "hits",
                     (json_int_t)s.hits, "misses", (json_int_t)s.misses, "shared",
                     (json_int_t)s.shared, "evictions", (json_int_t)s.evictions);
}

/* ---- the daemon's ---- */

static pg_cache *the_cache;

void pg_cache_global_init(size_t budget)
{
    pg_cache_destroy(&the_cache);
    if (budget == 0) return;
    the_cache = pg_cache_new(budget);
    if (the_cache == NULL) pg_log_warn("result cache: out of memory, running without it");
}

pg_cache *pg_cache_global(void)
{
    return the_cache;
}

void pg_cache_global_shutdown(void)
{
    pg_cache_destroy(&the_cache);
}
