/* Unit tests for the result cache (src/cache.c) and node keys
 * (src/nodekey.c).
 *
 * The cache: LRU order and the byte budget (entry sizes measured, then
 * exact expectations), eviction while a reader holds the entry (its cells
 * stay readable: ASan checks the reads), claim / fill / abandon / unwait,
 * waiter callbacks from the thread that fills or abandons, a stress of
 * four threads on a few keys (every wait answered exactly once, every
 * value the one of its key), and the statistics at each step.
 *
 * Node keys: real plans (pg_plan_build, the real registry) over GeoTIFFs
 * written here with GDAL. Names, inline vs ref and explicit defaults do not
 * change a key; any param, any number arg bit, another file, a rewritten or
 * touched file do; a file modified within PG_NODEKEY_SETTLE_NS gets none.
 */
#include "cache.h"
#include "gdalio.h"
#include "graph.h"
#include "nodekey.h"
#include "paths.h"

#include <check.h>
#include <fcntl.h>
#include <gdal.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- cache helpers ---- */

static pg_nodekey *mkkey(const char *fmt, int i)
{
    char buf[64];
    snprintf(buf, sizeof buf, fmt, i);
    pg_nodekey *k = pg_nodekey_intern(buf, NULL, 0);
    ck_assert_ptr_nonnull(k);
    return k;
}

/* LEN bytes of a pattern that depends on SEED. */
static unsigned char *cells_of(int seed, size_t len)
{
    unsigned char *c = malloc(len);
    ck_assert_ptr_nonnull(c);
    for (size_t i = 0; i < len; i++)
        c[i] = (unsigned char)(seed * 31 + (int)i * 7);
    return c;
}

static int cells_ok(const pg_cache_entry *e, int seed, size_t len)
{
    size_t n;
    const unsigned char *c = pg_cache_entry_cells(e, &n);
    if (c == NULL || n != len) return 0;
    for (size_t i = 0; i < len; i++)
        if (c[i] != (unsigned char)(seed * 31 + (int)i * 7)) return 0;
    return 1;
}

static void no_cb(void *arg, int status, pg_cache_entry *e)
{
    (void)arg;
    (void)status;
    (void)e;
    ck_abort_msg("unexpected wait callback");
}

/* Claims K (must be absent) and fills it with cells of SEED. */
static void put(pg_cache *c, pg_nodekey *k, int seed, size_t len)
{
    pg_cache_entry *e = NULL;
    ck_assert_int_eq(pg_cache_lookup(c, k, &e, no_cb, NULL), PG_CACHE_CLAIMED);
    pg_cache_fill(c, &e, NULL, cells_of(seed, len), len);
    ck_assert_ptr_null(e);
}

static pg_cache_stats stats(pg_cache *c)
{
    pg_cache_stats s;
    pg_cache_get_stats(c, &s);
    return s;
}

/* The bytes one entry of LEN cells and a 5-character key counts for. */
static int64_t entry_bytes(size_t len)
{
    pg_cache *c = pg_cache_new(1 << 20);
    pg_nodekey *k = mkkey("p%04d", 0);
    put(c, k, 0, len);
    int64_t b = stats(c).bytes;
    ck_assert_int_gt(b, (int64_t)len);
    pg_cache_destroy(&c);
    pg_nodekey_unref(&k);
    return b;
}

START_TEST(test_lru_order)
{
    size_t before = pg_nodekey_live();
    int64_t eb = entry_bytes(1000);
    pg_cache *c = pg_cache_new((size_t)(3 * eb + eb / 2));
    pg_nodekey *k[4];
    for (int i = 0; i < 4; i++)
        k[i] = mkkey("k%04d", i);
    for (int i = 0; i < 3; i++)
        put(c, k[i], i, 1000);
    pg_cache_stats s = stats(c);
    ck_assert_int_eq(s.entries, 3);
    ck_assert_int_eq(s.bytes, 3 * eb);
    ck_assert_int_eq(s.evictions, 0);
    ck_assert_int_eq(s.misses, 3);
    /* Touch key-0: key-1 is now the least recently used. */
    pg_cache_entry *e = pg_cache_get(c, k[0]);
    ck_assert_ptr_nonnull(e);
    ck_assert(cells_ok(e, 0, 1000));
    pg_cache_entry_unref(&e);
    put(c, k[3], 3, 1000);
    s = stats(c);
    ck_assert_int_eq(s.entries, 3);
    ck_assert_int_eq(s.evictions, 1);
    ck_assert_int_le(s.bytes, s.budget_bytes);
    ck_assert_ptr_null(pg_cache_get(c, k[1]));
    for (int i = 0; i < 4; i++) {
        if (i == 1) continue;
        e = pg_cache_get(c, k[i]);
        ck_assert_msg(e != NULL, "key-%d was evicted", i);
        ck_assert(cells_ok(e, i, 1000));
        pg_cache_entry_unref(&e);
    }
    s = stats(c);
    ck_assert_int_eq(s.hits, 4);
    /* Now the order is 0, 2, 3 (oldest first): one more evicts key-0. */
    pg_nodekey *k4 = mkkey("k%04d", 4);
    put(c, k4, 4, 1000);
    ck_assert_ptr_null(pg_cache_get(c, k[0]));
    e = pg_cache_get(c, k[2]);
    ck_assert_ptr_nonnull(e);
    pg_cache_entry_unref(&e);
    pg_cache_destroy(&c);
    for (int i = 0; i < 4; i++)
        pg_nodekey_unref(&k[i]);
    pg_nodekey_unref(&k4);
    ck_assert_uint_eq(pg_nodekey_live(), before); /* the cache let its keys go */
}
END_TEST

START_TEST(test_budget)
{
    int64_t eb = entry_bytes(4096);
    pg_cache *c = pg_cache_new((size_t)(5 * eb));
    for (int i = 0; i < 20; i++) {
        pg_nodekey *k = mkkey("k%04d", i);
        put(c, k, i, 4096);
        pg_nodekey_unref(&k);
        pg_cache_stats s = stats(c);
        ck_assert_int_le(s.bytes, s.budget_bytes);
        ck_assert_int_eq(s.entries, i < 5 ? i + 1 : 5);
        ck_assert_int_eq(s.evictions, i < 5 ? 0 : i - 4);
    }
    /* An entry bigger than the whole budget: its waiter still gets it, then
     * it is gone, and so is everything else (it was the newest). */
    pg_nodekey *big = mkkey("big%d", 0);
    pg_cache_entry *claim = NULL;
    ck_assert_int_eq(pg_cache_lookup(c, big, &claim, no_cb, NULL), PG_CACHE_CLAIMED);
    pg_cache_fill(c, &claim, json_string("header"), cells_of(9, (size_t)(6 * eb)),
                  (size_t)(6 * eb));
    pg_cache_stats s = stats(c);
    ck_assert_int_eq(s.entries, 0);
    ck_assert_int_eq(s.bytes, 0);
    ck_assert_int_eq(s.evictions, 15 + 6);
    ck_assert_ptr_null(pg_cache_get(c, big));
    pg_nodekey_unref(&big);
    pg_cache_destroy(&c);
}
END_TEST

START_TEST(test_evict_held)
{
    int64_t eb = entry_bytes(100000);
    pg_cache *c = pg_cache_new((size_t)(2 * eb));
    pg_nodekey *k0 = mkkey("h%04d", 0);
    put(c, k0, 7, 100000);
    pg_cache_entry *held = pg_cache_get(c, k0);
    ck_assert_ptr_nonnull(held);
    for (int i = 1; i <= 3; i++) {
        pg_nodekey *k = mkkey("h%04d", i);
        put(c, k, i, 100000);
        pg_nodekey_unref(&k);
    }
    ck_assert_ptr_null(pg_cache_get(c, k0)); /* evicted from the table */
    ck_assert_int_eq(stats(c).evictions, 2);
    ck_assert(cells_ok(held, 7, 100000)); /* but alive for its reader */
    pg_cache_destroy(&c);
    ck_assert(cells_ok(held, 7, 100000)); /* even after the cache is gone */
    pg_cache_entry_unref(&held);
    pg_nodekey_unref(&k0);
}
END_TEST

/* ---- claims and waits ---- */

typedef struct rec {
    atomic_int calls;
    int status;
    pg_cache_entry *e;
    pthread_t thread;
} rec;

static void rec_cb(void *arg, int status, pg_cache_entry *e)
{
    rec *r = arg;
    r->status = status;
    r->e = e;
    r->thread = pthread_self();
    atomic_fetch_add(&r->calls, 1);
}

START_TEST(test_claim_fill_abandon)
{
    pg_cache *c = pg_cache_new(1 << 20);
    pg_nodekey *k = mkkey("claim%d", 0);
    rec r1 = {0}, r2 = {0}, r3 = {0};
    pg_cache_entry *claim = NULL, *e = NULL;
    ck_assert_int_eq(pg_cache_lookup(c, k, &claim, no_cb, NULL), PG_CACHE_CLAIMED);
    ck_assert_int_eq(pg_cache_lookup(c, k, &e, rec_cb, &r1), PG_CACHE_PENDING);
    ck_assert_int_eq(pg_cache_lookup(c, k, &e, rec_cb, &r2), PG_CACHE_PENDING);
    ck_assert_ptr_null(e);
    ck_assert_ptr_null(pg_cache_get(c, k)); /* pending is not a hit */
    /* r2 withdraws: it is never called. */
    ck_assert(pg_cache_unwait(c, k, &r2));
    ck_assert(!pg_cache_unwait(c, k, &r2));
    /* The claimer gives up: r1 gets the claim. */
    pg_cache_abandon(c, &claim);
    ck_assert_ptr_null(claim);
    ck_assert_int_eq(atomic_load(&r1.calls), 1);
    ck_assert_int_eq(r1.status, PG_CACHE_CLAIMED);
    ck_assert_ptr_nonnull(r1.e);
    pg_cache_stats s = stats(c);
    ck_assert_int_eq(s.misses, 2); /* two computations started */
    ck_assert_int_eq(s.entries, 0);
    /* Still pending (r1 computes): a new lookup waits. */
    ck_assert_int_eq(pg_cache_lookup(c, k, &e, rec_cb, &r3), PG_CACHE_PENDING);
    pg_cache_fill(c, &r1.e, json_pack("{si}", "x", 42), NULL, 0);
    ck_assert_int_eq(atomic_load(&r3.calls), 1);
    ck_assert_int_eq(r3.status, PG_CACHE_HIT);
    ck_assert_int_eq(json_integer_value(json_object_get(pg_cache_entry_value(r3.e), "x")), 42);
    pg_cache_entry_unref(&r3.e);
    ck_assert_int_eq(pg_cache_lookup(c, k, &e, no_cb, NULL), PG_CACHE_HIT);
    ck_assert_int_eq(json_integer_value(json_object_get(pg_cache_entry_value(e), "x")), 42);
    pg_cache_entry_unref(&e);
    ck_assert_int_eq(atomic_load(&r2.calls), 0);
    s = stats(c);
    ck_assert_int_eq(s.hits, 1);
    ck_assert_int_eq(s.misses, 2);
    ck_assert_int_eq(s.shared, 1);
    ck_assert_int_eq(s.entries, 1);
    /* Abandoned without waiters: dropped; the next lookup claims again. */
    pg_nodekey *k2 = mkkey("claim%d", 2);
    ck_assert_int_eq(pg_cache_lookup(c, k2, &claim, no_cb, NULL), PG_CACHE_CLAIMED);
    pg_cache_abandon(c, &claim);
    ck_assert_int_eq(pg_cache_lookup(c, k2, &claim, no_cb, NULL), PG_CACHE_CLAIMED);
    pg_cache_fill(c, &claim, json_integer(1), NULL, 0);
    s = stats(c);
    ck_assert_int_eq(s.misses, 4);
    ck_assert_int_eq(s.entries, 2);
    pg_cache_destroy(&c);
    pg_nodekey_unref(&k);
    pg_nodekey_unref(&k2);
}
END_TEST

typedef struct job_arg {
    pg_cache *c;
    pg_cache_entry *claim;
    int fill;
} job_arg;

static void *finisher(void *p)
{
    job_arg *a = p;
    if (a->fill)
        pg_cache_fill(a->c, &a->claim, json_string("done"), cells_of(5, 64), 64);
    else
        pg_cache_abandon(a->c, &a->claim);
    return NULL;
}

START_TEST(test_waiters_other_thread)
{
    pg_cache *c = pg_cache_new(1 << 20);
    pg_nodekey *k = mkkey("thr%d", 0);
    rec r[4];
    memset(r, 0, sizeof r);
    job_arg a = {c, NULL, 1};
    ck_assert_int_eq(pg_cache_lookup(c, k, &a.claim, no_cb, NULL), PG_CACHE_CLAIMED);
    pg_cache_entry *e = NULL;
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pg_cache_lookup(c, k, &e, rec_cb, &r[i]), PG_CACHE_PENDING);
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, finisher, &a), 0);
    pthread_join(t, NULL);
    for (int i = 0; i < 4; i++) {
        ck_assert_int_eq(atomic_load(&r[i].calls), 1);
        ck_assert_int_eq(r[i].status, PG_CACHE_HIT);
        ck_assert(pthread_equal(r[i].thread, t));
        ck_assert_str_eq(json_string_value(pg_cache_entry_value(r[i].e)), "done");
        ck_assert(cells_ok(r[i].e, 5, 64));
        pg_cache_entry_unref(&r[i].e);
    }
    ck_assert_int_eq(stats(c).shared, 4);

    /* Abandoned on another thread: one waiter gets the claim there, the
     * others keep waiting on it. */
    pg_nodekey *k2 = mkkey("thr%d", 2);
    memset(r, 0, sizeof r);
    job_arg b = {c, NULL, 0};
    ck_assert_int_eq(pg_cache_lookup(c, k2, &b.claim, no_cb, NULL), PG_CACHE_CLAIMED);
    for (int i = 0; i < 3; i++)
        ck_assert_int_eq(pg_cache_lookup(c, k2, &e, rec_cb, &r[i]), PG_CACHE_PENDING);
    ck_assert_int_eq(pthread_create(&t, NULL, finisher, &b), 0);
    pthread_join(t, NULL);
    ck_assert_int_eq(atomic_load(&r[0].calls), 1);
    ck_assert_int_eq(r[0].status, PG_CACHE_CLAIMED);
    ck_assert(pthread_equal(r[0].thread, t));
    ck_assert_int_eq(atomic_load(&r[1].calls) + atomic_load(&r[2].calls), 0);
    pg_cache_fill(c, &r[0].e, json_integer(7), NULL, 0);
    for (int i = 1; i < 3; i++) {
        ck_assert_int_eq(atomic_load(&r[i].calls), 1);
        ck_assert_int_eq(r[i].status, PG_CACHE_HIT);
        ck_assert(pthread_equal(r[i].thread, pthread_self()));
        ck_assert_int_eq(json_integer_value(pg_cache_entry_value(r[i].e)), 7);
        pg_cache_entry_unref(&r[i].e);
    }
    pg_cache_stats s = stats(c);
    ck_assert_int_eq(s.misses, 3);
    ck_assert_int_eq(s.shared, 6);
    pg_cache_destroy(&c);
    pg_nodekey_unref(&k);
    pg_nodekey_unref(&k2);
}
END_TEST

/* Four threads, eight keys, a small budget: claims are filled with the
 * key's number or (one in four) abandoned; waits counted both ways. */
#define NKEYS 8
static pg_cache *sc;
static pg_nodekey *skeys[NKEYS];
static atomic_long waits_registered, waits_answered, bad_values;
static atomic_long hit_lookups, claimed_lookups, answered_hit, answered_claimed;

typedef struct swait {
    int key;
    int abandon_next;
} swait;

static void stress_fill_or_abandon(pg_cache_entry **claim, int key, int abandon)
{
    if (abandon)
        pg_cache_abandon(sc, claim);
    else
        pg_cache_fill(sc, claim, json_integer(key), cells_of(key, 256), 256);
}

static void stress_cb(void *arg, int status, pg_cache_entry *e)
{
    swait *w = arg;
    atomic_fetch_add(&waits_answered, 1);
    atomic_fetch_add(status == PG_CACHE_HIT ? &answered_hit : &answered_claimed, 1);
    if (status == PG_CACHE_HIT) {
        if (json_integer_value(pg_cache_entry_value(e)) != w->key || !cells_ok(e, w->key, 256))
            atomic_fetch_add(&bad_values, 1);
        pg_cache_entry_unref(&e);
    } else {
        stress_fill_or_abandon(&e, w->key, w->abandon_next);
    }
    free(w);
}

static void *stress_thread(void *p)
{
    unsigned seed = (unsigned)(uintptr_t)p;
    for (int it = 0; it < 3000; it++) {
        int key = (int)(rand_r(&seed) % NKEYS);
        swait *w = malloc(sizeof *w);
        w->key = key;
        w->abandon_next = rand_r(&seed) % 4 == 0;
        pg_cache_entry *e = NULL;
        int st = pg_cache_lookup(sc, skeys[key], &e, stress_cb, w);
        if (st == PG_CACHE_PENDING) {
            atomic_fetch_add(&waits_registered, 1);
            continue;
        }
        free(w);
        atomic_fetch_add(st == PG_CACHE_HIT ? &hit_lookups : &claimed_lookups, 1);
        if (st == PG_CACHE_HIT) {
            if (json_integer_value(pg_cache_entry_value(e)) != key || !cells_ok(e, key, 256))
                atomic_fetch_add(&bad_values, 1);
            pg_cache_entry_unref(&e);
        } else if (st == PG_CACHE_CLAIMED) {
            if (rand_r(&seed) % 2) sched_yield(); /* let waiters pile up */
            stress_fill_or_abandon(&e, key, rand_r(&seed) % 4 == 0);
        }
    }
    return NULL;
}

START_TEST(test_stress_threads)
{
    int64_t eb = entry_bytes(256);
    sc = pg_cache_new((size_t)(3 * eb)); /* fewer entries than keys: evictions too */
    for (int i = 0; i < NKEYS; i++)
        skeys[i] = mkkey("s%04d", i);
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        ck_assert_int_eq(pthread_create(&t[i], NULL, stress_thread, (void *)(uintptr_t)(i + 1)), 0);
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    /* A claim handed to a waiter that abandons too goes on until a filler
     * or an empty wait list: by now every wait has been answered. */
    ck_assert_int_eq(atomic_load(&bad_values), 0);
    ck_assert_int_eq(atomic_load(&waits_answered), atomic_load(&waits_registered));
    pg_cache_stats s = stats(sc);
    ck_assert_int_le(s.bytes, s.budget_bytes);
    ck_assert_int_gt(s.evictions, 0);
    ck_assert_int_eq(atomic_load(&hit_lookups) + atomic_load(&claimed_lookups) +
                         atomic_load(&waits_registered),
                     4 * 3000);
    ck_assert_int_eq(s.hits, atomic_load(&hit_lookups));
    ck_assert_int_eq(s.misses, atomic_load(&claimed_lookups) + atomic_load(&answered_claimed));
    ck_assert_int_eq(s.shared, atomic_load(&answered_hit));
    ck_assert_int_gt(atomic_load(&waits_registered), 0);
    pg_cache_destroy(&sc);
    for (int i = 0; i < NKEYS; i++)
        pg_nodekey_unref(&skeys[i]);
}
END_TEST

/* ---- node keys ---- */

static char root[256];
static pg_plan_env env = {
    .max_nodes = 1000, .max_depth = 100, .max_cells = 1 << 30, .tile_w = 256, .tile_h = 256};

static void path_of(const char *name, char *out, size_t n)
{
    snprintf(out, n, "%s/%s", root, name);
}

/* A 32x32 f32 GeoTIFF whose cells are V + i. */
static void write_tif(const char *name, float v)
{
    char p[512];
    path_of(name, p, sizeof p);
    GDALDatasetH ds = GDALCreate(GDALGetDriverByName("GTiff"), p, 32, 32, 1, GDT_Float32, NULL);
    ck_assert_ptr_nonnull(ds);
    double gt[6] = {0, 1, 0, 32, 0, -1};
    GDALSetGeoTransform(ds, gt);
    float buf[32 * 32];
    for (int i = 0; i < 32 * 32; i++)
        buf[i] = v + (float)i;
    ck_assert_int_eq(GDALRasterIO(GDALGetRasterBand(ds, 1), GF_Write, 0, 0, 32, 32, buf, 32, 32,
                                  GDT_Float32, 0, 0),
                     CE_None);
    GDALClose(ds);
}

/* Sets NAME's modification time to SECS_AGO seconds (and NS) before now. */
static void set_mtime(const char *name, int secs_ago, long ns)
{
    char p[512];
    path_of(name, p, sizeof p);
    struct timespec ts[2];
    clock_gettime(CLOCK_REALTIME, &ts[1]);
    ts[1].tv_sec -= secs_ago;
    ts[1].tv_nsec = ns;
    ts[0] = ts[1];
    ck_assert_int_eq(utimensat(AT_FDCWD, p, ts, 0), 0);
}

/* The key of GRAPH's (only) result: a new reference, or NULL. */
static pg_nodekey *key_of(const char *graph)
{
    json_error_t je;
    json_t *g = json_loads(graph, 0, &je);
    ck_assert_msg(g != NULL, "bad test JSON: %s", je.text);
    pg_plan *p = NULL;
    pg_error err = {0};
    ck_assert_msg(pg_plan_build(g, &env, &p, &err) == 0, "plan: %s", err.message);
    json_decref(g);
    pg_nodekey **keys = calloc((size_t)p->nnodes, sizeof *keys);
    ck_assert_int_eq(pg_nodekey_plan(p, keys, &err), 0);
    pg_nodekey *k = pg_nodekey_ref(keys[p->results[0]]);
    pg_nodekey_release(keys, p->nnodes);
    free(keys);
    pg_plan_destroy(&p);
    return k;
}

static void setup_files(void)
{
    pg_gdalio_init(16 << 20);
    char tmpl[] = "/tmp/pg-cache-XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(tmpl));
    char *real = realpath(tmpl, NULL);
    snprintf(root, sizeof root, "%s", real);
    free(real);
    env.data_root = root;
    write_tif("a.tif", 0);
    write_tif("b.tif", 0);
    set_mtime("a.tif", 100, 0);
    set_mtime("b.tif", 100, 0);
    char p[512];
    path_of("z.geojson", p, sizeof p);
    FILE *f = fopen(p, "w");
    ck_assert_ptr_nonnull(f);
    fputs("{\"type\":\"FeatureCollection\",\"features\":[{\"type\":\"Feature\",\"properties\":"
          "{\"z\":1},\"geometry\":{\"type\":\"Polygon\",\"coordinates\":[[[0,0],[10,0],[10,10],"
          "[0,10],[0,0]]]}}]}",
          f);
    fclose(f);
    set_mtime("z.geojson", 100, 0);
}

static void teardown_files(void)
{
    char p[512];
    const char *names[] = {"a.tif", "b.tif", "z.geojson"};
    for (int i = 0; i < 3; i++) {
        path_of(names[i], p, sizeof p);
        unlink(p);
    }
    rmdir(root);
}

#define BASE                                                                                       \
    "{\"nodes\": {\"a\": {\"op\": \"io.load\", \"path\": \"%s\"}, "                                \
    "\"s\": {\"op\": \"local.add\", \"args\": [{\"ref\": \"a\"}, %s]}, "                           \
    "\"h\": {\"op\": \"global.histogram\", %s\"args\": [{\"ref\": \"s\"}]}}, \"result\": \"h\"}"

static pg_nodekey *base_key(const char *file, const char *num, const char *hparams)
{
    char g[1024];
    snprintf(g, sizeof g, BASE, file, num, hparams);
    return key_of(g);
}

static void assert_same(pg_nodekey *a, pg_nodekey *b)
{
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_eq(a, b);
    char *ea = pg_nodekey_expand(a), *eb = pg_nodekey_expand(b);
    ck_assert_str_eq(ea, eb);
    free(ea);
    free(eb);
}

static void assert_differ(pg_nodekey *a, pg_nodekey *b)
{
    ck_assert_ptr_nonnull(a);
    ck_assert_ptr_nonnull(b);
    ck_assert_ptr_ne(a, b);
    char *ea = pg_nodekey_expand(a), *eb = pg_nodekey_expand(b);
    ck_assert_str_ne(ea, eb);
    free(ea);
    free(eb);
}

START_TEST(test_keys_same)
{
    size_t before = pg_nodekey_live();
    pg_nodekey *k0 = base_key("a.tif", "0.1", "\"range\": [0, 2000], ");
    /* Other names, inline nodes, extra keys, another key order. */
    pg_nodekey *k1 = key_of(
        "{\"nodes\": {\"hist\": {\"args\": [{\"op\": \"local.add\", \"comment\": \"x\", \"args\": "
        "[{\"op\": \"io.load\", \"path\": \"a.tif\", \"id\": 3}, 0.1]}], \"range\": [0, 2000], "
        "\"op\": \"global.histogram\"}}}");
    assert_same(k0, k1);
    /* A default made explicit ("bins": 256 is the default). */
    pg_nodekey *k2 = base_key("a.tif", "0.1", "\"bins\": 256, \"range\": [0, 2000], ");
    assert_same(k0, k2);
    /* The same number written otherwise. */
    pg_nodekey *k3 = base_key("a.tif", "1e-1", "\"range\": [0, 2000], ");
    assert_same(k0, k3);
    /* What the full key says. */
    char *full = pg_nodekey_expand(k0);
    char want[600];
    snprintf(want, sizeof want, "\"path\":\"%s/a.tif\"", root);
    ck_assert_msg(strstr(full, want) != NULL, "%s", full);
    ck_assert_msg(strstr(full, "\"mtime_ns\":") && strstr(full, "\"ino\":") &&
                      strstr(full, "\"dev\":") && strstr(full, "\"size\":"),
                  "%s", full);
    ck_assert_msg(strstr(full, "\"op\":\"global.histogram\"") && strstr(full, "\"bins\":256") &&
                      strstr(full, "0x1.999999999999ap-4"),
                  "%s", full);
    ck_assert_msg(strstr(pg_nodekey_text(k0), "\"#") != NULL, "children by id: %s",
                  pg_nodekey_text(k0));
    free(full);
    pg_nodekey_unref(&k0);
    pg_nodekey_unref(&k1);
    pg_nodekey_unref(&k2);
    pg_nodekey_unref(&k3);
    ck_assert_uint_eq(pg_nodekey_live(), before); /* the whole tree went */
}
END_TEST

START_TEST(test_keys_differ)
{
    pg_nodekey *k0 = base_key("a.tif", "0.1", "\"range\": [0, 2000], ");
    const char *variants[][3] = {
        {"a.tif", "0.1", "\"bins\": 255, \"range\": [0, 2000], "},
        {"a.tif", "0.1", "\"range\": [0, 2001], "},
        {"a.tif", "0.1", "\"range\": [0.0, 2000], "}, /* a real where an integer was */
        {"a.tif", "0.1000000001", "\"range\": [0, 2000], "},
        {"a.tif", "0.10000000000000002", "\"range\": [0, 2000], "}, /* the next double */
        {"b.tif", "0.1", "\"range\": [0, 2000], "},                 /* same bytes, other file */
    };
    for (size_t i = 0; i < sizeof variants / sizeof variants[0]; i++) {
        pg_nodekey *k = base_key(variants[i][0], variants[i][1], variants[i][2]);
        assert_differ(k0, k);
        pg_nodekey_unref(&k);
    }
    /* 0 and -0 are different doubles. */
    pg_nodekey *z = base_key("a.tif", "0.0", "\"range\": [0, 2000], ");
    pg_nodekey *nz = base_key("a.tif", "-0.0", "\"range\": [0, 2000], ");
    assert_differ(z, nz);
    pg_nodekey_unref(&z);
    pg_nodekey_unref(&nz);
    pg_nodekey_unref(&k0);
}
END_TEST

START_TEST(test_keys_files)
{
    const char *hp = "\"range\": [0, 2000], ";
    pg_nodekey *k0 = base_key("a.tif", "0.1", hp);
    /* Touched: the same bytes, another modification time. */
    set_mtime("a.tif", 50, 0);
    pg_nodekey *k1 = base_key("a.tif", "0.1", hp);
    assert_differ(k0, k1);
    /* Touched by one nanosecond. */
    set_mtime("a.tif", 50, 1);
    pg_nodekey *k2 = base_key("a.tif", "0.1", hp);
    assert_differ(k1, k2);
    /* Back to the first time: the same identity, the same key. */
    set_mtime("a.tif", 50, 0);
    pg_nodekey *k3 = base_key("a.tif", "0.1", hp);
    assert_same(k1, k3);
    /* Rewritten in place (same inode, same size), time set back to one
     * never used before. */
    char p[512];
    path_of("a.tif", p, sizeof p);
    struct stat st0, st1;
    ck_assert_int_eq(stat(p, &st0), 0);
    int fd = open(p, O_WRONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, "\x7f", 1, st0.st_size - 1), 1);
    close(fd);
    /* Just modified: no key (a rewrite within the same clock tick could
     * not be told apart). */
    char g[1024];
    snprintf(g, sizeof g, BASE, "a.tif", "0.1", hp);
    json_t *gj = json_loads(g, 0, NULL);
    pg_plan *plan = NULL;
    pg_error err = {0};
    ck_assert_int_eq(pg_plan_build(gj, &env, &plan, &err), 0);
    json_decref(gj);
    pg_nodekey **keys = calloc((size_t)plan->nnodes, sizeof *keys);
    ck_assert_int_eq(pg_nodekey_plan(plan, keys, &err), 0);
    for (int i = 0; i < plan->nnodes; i++)
        ck_assert_ptr_null(keys[i]); /* io.load, and every node above it */
    free(keys);
    pg_plan_destroy(&plan);
    set_mtime("a.tif", 40, 0);
    ck_assert_int_eq(stat(p, &st1), 0);
    ck_assert_int_eq(st0.st_ino, st1.st_ino);
    ck_assert_int_eq(st0.st_size, st1.st_size);
    pg_nodekey *k4 = base_key("a.tif", "0.1", hp);
    assert_differ(k0, k4);
    assert_differ(k1, k4);
    pg_nodekey_unref(&k0);
    pg_nodekey_unref(&k1);
    pg_nodekey_unref(&k2);
    pg_nodekey_unref(&k3);
    pg_nodekey_unref(&k4);
}
END_TEST

/* zonal.polygons: the vector file's identity is in the key too. */
START_TEST(test_keys_vector)
{
    const char *g = "{\"nodes\": {\"z\": {\"op\": \"zonal.polygons\", \"path\": \"z.geojson\", "
                    "\"field\": \"z\", \"args\": [{\"op\": \"io.load\", \"path\": \"a.tif\"}]}}}";
    pg_nodekey *k0 = key_of(g), *k1 = key_of(g);
    assert_same(k0, k1);
    char *full = pg_nodekey_expand(k0);
    char want[600];
    snprintf(want, sizeof want, "\"path\":\"%s/z.geojson\"", root);
    ck_assert_msg(strstr(full, want) != NULL, "%s", full);
    free(full);
    set_mtime("z.geojson", 60, 0);
    pg_nodekey *k2 = key_of(g);
    assert_differ(k0, k2);
    /* Just modified: no key. */
    set_mtime("z.geojson", 0, 0);
    pg_nodekey *k3 = key_of(g);
    ck_assert_ptr_null(k3);
    pg_nodekey_unref(&k0);
    pg_nodekey_unref(&k1);
    pg_nodekey_unref(&k2);
}
END_TEST

START_TEST(test_intern_exact)
{
    size_t before = pg_nodekey_live();
    enum { N = 20000 };
    pg_nodekey **k = malloc(sizeof *k * N);
    for (int i = 0; i < N; i++)
        k[i] = mkkey("{\"op\":\"x\",\"n\":%d}", i);
    ck_assert_uint_eq(pg_nodekey_live(), before + N);
    for (int i = 0; i < N; i++) {
        pg_nodekey *again = mkkey("{\"op\":\"x\",\"n\":%d}", i);
        ck_assert_ptr_eq(again, k[i]);
        char want[64];
        snprintf(want, sizeof want, "{\"op\":\"x\",\"n\":%d}", i);
        ck_assert_str_eq(pg_nodekey_text(again), want);
        pg_nodekey_unref(&again);
    }
    /* Ids are unique and never reused. */
    uint64_t max_id = 0;
    for (int i = 0; i < N; i++)
        if (pg_nodekey_id(k[i]) > max_id) max_id = pg_nodekey_id(k[i]);
    for (int i = 0; i < N; i++)
        pg_nodekey_unref(&k[i]);
    ck_assert_uint_eq(pg_nodekey_live(), before);
    pg_nodekey *fresh = mkkey("{\"op\":\"x\",\"n\":%d}", 0);
    ck_assert_uint_gt(pg_nodekey_id(fresh), max_id);
    pg_nodekey_unref(&fresh);
    free(k);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cache");
    TCase *tc = tcase_create("cache");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_lru_order);
    tcase_add_test(tc, test_budget);
    tcase_add_test(tc, test_evict_held);
    tcase_add_test(tc, test_claim_fill_abandon);
    tcase_add_test(tc, test_waiters_other_thread);
    tcase_add_test(tc, test_stress_threads);
    tcase_add_test(tc, test_intern_exact);
    suite_add_tcase(s, tc);
    TCase *tk = tcase_create("keys");
    tcase_set_timeout(tk, 60);
    tcase_add_checked_fixture(tk, setup_files, teardown_files);
    tcase_add_test(tk, test_keys_same);
    tcase_add_test(tk, test_keys_differ);
    tcase_add_test(tk, test_keys_files);
    tcase_add_test(tk, test_keys_vector);
    suite_add_tcase(s, tk);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
