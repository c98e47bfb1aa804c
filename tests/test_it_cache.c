/* Integration suite of the result cache: real pergolad processes
 * (tests/harness.c) over raw NDJSON, so that every event member (the
 * result's "cached", the accepted "tiles") and the `status` counters are
 * seen as a client sees them.
 *
 * Inputs are made by pergola-mkraster and dated a minute back (a file
 * modified within 2 s is never cached: src/nodekey.h). Expected values
 * come from GDAL reads done here: global.stats' count, min and max
 * exactly, its mean within 1e-9; a raster answer cell by cell (a + 1 in
 * f32); io.save outputs read back. Slow graphs (a radius-8 circular focal
 * mean under global.stats, about a second) give concurrent requests time
 * to meet; their answers are compared with each other and with the same
 * graph on a daemon without a cache.
 */
#include "harness.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <gdal.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define T_MS 120000

static char g_base[128];

static void daemon_start(th_daemon *d, const char *const *extra)
{
    memset(d, 0, sizeof *d);
    snprintf(d->root, sizeof d->root, "%s/rXXXXXX", g_base);
    ck_assert_msg(mkdtemp(d->root) != NULL, "mkdtemp: %s", strerror(errno));
    ck_assert_msg(th_start(d, extra) == 0, "pergolad did not start (log %s)", d->log);
}

static void daemon_stop(th_daemon *d)
{
    int st = th_stop(d);
    ck_assert_msg(st == 0, "pergolad exited with status %d (log %s)", st, d->log);
    th_cleanup(d);
}

/* Sets ROOT/NAME's times to SECS seconds ago. */
static void age(const char *root, const char *name, int secs)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", root, name);
    struct timespec ts[2];
    clock_gettime(CLOCK_REALTIME, &ts[0]);
    ts[0].tv_sec -= secs;
    ts[1] = ts[0];
    ck_assert_msg(utimensat(AT_FDCWD, p, ts, 0) == 0, "utimensat %s: %s", p, strerror(errno));
}

/* pergola-mkraster, then dated SECS ago (0: left as written). */
static void mk(const char *root, const char *name, const char *args, int secs)
{
    int rc = th_mkraster(root, name, args);
    ck_assert_msg(rc == 0, "pergola-mkraster %s %s: exit status %d", name, args, rc);
    if (secs) age(root, name, secs);
}

/* ---- the protocol ---- */

typedef struct answer {
    json_t *ev;           /* the terminal event (result or error) */
    long long tiles;      /* accepted "tiles", -1 if none came */
    unsigned char *bytes; /* a raster result's attachment */
    size_t nbytes;
} answer;

static void answer_free(answer *a)
{
    json_decref(a->ev);
    free(a->bytes);
    memset(a, 0, sizeof *a);
}

/* Reads events until the terminal one of each of the N ids IDS, into
 * OUT[i]. Attachments are read as they come. */
static void collect(int fd, const char *const *ids, answer *out, int n)
{
    for (int i = 0; i < n; i++) {
        memset(&out[i], 0, sizeof out[i]);
        out[i].tiles = -1;
    }
    int left = n;
    while (left > 0) {
        json_t *ev = th_recv(fd, T_MS);
        ck_assert_msg(ev != NULL, "no answer in time");
        const char *id = json_string_value(json_object_get(ev, "id"));
        const char *kind = json_string_value(json_object_get(ev, "event"));
        int i = 0;
        while (i < n && (id == NULL || strcmp(ids[i], id) != 0))
            i++;
        if (i == n || kind == NULL) { /* another request's (a cancel's result) */
            json_decref(ev);
            continue;
        }
        if (strcmp(kind, "accepted") == 0) {
            out[i].tiles = json_integer_value(json_object_get(ev, "tiles"));
            json_decref(ev);
            continue;
        }
        if (strcmp(kind, "progress") == 0) {
            json_decref(ev);
            continue;
        }
        json_t *b = json_object_get(ev, "bytes");
        if (b != NULL) {
            out[i].nbytes = (size_t)json_integer_value(b);
            out[i].bytes = malloc(out[i].nbytes ? out[i].nbytes : 1);
            ck_assert_int_eq(th_recv_bytes(fd, out[i].bytes, out[i].nbytes, T_MS), 0);
        }
        ck_assert_msg(out[i].ev == NULL, "two terminal events for %s", ids[i]);
        out[i].ev = ev;
        left--;
    }
}

static void send_run(int fd, const char *id, const char *graph, long timeout_ms)
{
    char line[4096];
    int n;
    if (timeout_ms > 0)
        n = snprintf(line, sizeof line,
                     "{\"id\":\"%s\",\"type\":\"run\",\"progress\":false,\"timeout_ms\":%ld,"
                     "\"graph\":%s}\n",
                     id, timeout_ms, graph);
    else
        n = snprintf(line, sizeof line,
                     "{\"id\":\"%s\",\"type\":\"run\",\"progress\":false,\"graph\":%s}\n", id,
                     graph);
    ck_assert_int_lt(n, (int)sizeof line);
    ck_assert_int_eq(th_send(fd, line, (size_t)n), 0);
}

/* Runs GRAPH and expects a result. */
static void run(int fd, const char *graph, answer *a)
{
    static int seq;
    char id[32];
    snprintf(id, sizeof id, "run%d", ++seq);
    send_run(fd, id, graph, 0);
    const char *ids[] = {id};
    collect(fd, ids, a, 1);
    ck_assert_msg(strcmp(json_string_value(json_object_get(a->ev, "event")), "result") == 0,
                  "not a result: %s", json_dumps(a->ev, 0));
}

static long long cached_of(const answer *a)
{
    json_t *c = json_object_get(a->ev, "cached");
    ck_assert_msg(json_is_integer(c), "the result has no \"cached\"");
    return json_integer_value(c);
}

static json_t *value_of(const answer *a)
{
    return json_object_get(a->ev, "value");
}

typedef struct cstats {
    long long budget, bytes, entries, hits, misses, shared, evictions;
} cstats;

static cstats cache_status(int fd)
{
    json_t *r = th_request(fd, "{\"id\":\"st\",\"type\":\"status\"}\n", T_MS);
    ck_assert_ptr_nonnull(r);
    json_t *c = json_object_get(json_object_get(r, "value"), "cache");
    ck_assert_msg(json_is_object(c), "status has no cache member");
    cstats s = {
        json_integer_value(json_object_get(c, "budget_bytes")),
        json_integer_value(json_object_get(c, "bytes")),
        json_integer_value(json_object_get(c, "entries")),
        json_integer_value(json_object_get(c, "hits")),
        json_integer_value(json_object_get(c, "misses")),
        json_integer_value(json_object_get(c, "shared")),
        json_integer_value(json_object_get(c, "evictions")),
    };
    json_decref(r);
    return s;
}

/* ---- references ---- */

/* Band 1 of ROOT/NAME as f32 (the files here are f32). */
static float *read_f32(const char *root, const char *name, int *w, int *h)
{
    char p[512];
    snprintf(p, sizeof p, "%s/%s", root, name);
    GDALDatasetH ds = GDALOpen(p, GA_ReadOnly);
    ck_assert_msg(ds != NULL, "GDAL cannot open %s", p);
    *w = GDALGetRasterXSize(ds);
    *h = GDALGetRasterYSize(ds);
    float *v = malloc(sizeof *v * (size_t)*w * (size_t)*h);
    ck_assert_int_eq(
        GDALRasterIO(GDALGetRasterBand(ds, 1), GF_Read, 0, 0, *w, *h, v, *w, *h, GDT_Float32, 0, 0),
        CE_None);
    GDALClose(ds);
    return v;
}

/* STATS (a global.stats value) against ROOT/NAME read by GDAL. */
static void check_stats(const json_t *stats, const char *root, const char *name)
{
    int w, h;
    float *v = read_f32(root, name, &w, &h);
    double mn = INFINITY, mx = -INFINITY, sum = 0;
    size_t n = (size_t)w * (size_t)h;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < mn) mn = v[i];
        if (v[i] > mx) mx = v[i];
        sum += v[i];
    }
    free(v);
    ck_assert_int_eq(json_integer_value(json_object_get(stats, "count")), (long long)n);
    ck_assert_double_eq(json_number_value(json_object_get(stats, "min")), mn);
    ck_assert_double_eq(json_number_value(json_object_get(stats, "max")), mx);
    double mean = json_number_value(json_object_get(stats, "mean"));
    ck_assert_msg(fabs(mean - sum / (double)n) <= 1e-9 * fabs(sum / (double)n),
                  "mean %.17g vs %.17g", mean, sum / (double)n);
}

#define LOAD(p) "{\"op\":\"io.load\",\"path\":\"" p "\"}"
#define STATS_OF(p) "{\"nodes\":{\"s\":{\"op\":\"global.stats\",\"args\":[" LOAD(p) "]}}}"
#define SLOW_R(p, r)                                                                               \
    "{\"nodes\":{\"s\":{\"op\":\"global.stats\",\"args\":[{\"op\":\"focal.mean\",\"shape\":"       \
    "\"circle\",\"radius\":" #r ",\"args\":[" LOAD(p) "]}]}}}"
#define SLOW_OF(p) SLOW_R(p, 8)    /* about a second here */
#define SLOWER_OF(p) SLOW_R(p, 15) /* about two */
/* Far past a 700 ms deadline even on a quiet machine (the first job must
 * time out, not finish). */
#define SLOWEST_OF(p) SLOW_R(p, 30)

/* ---- tests ---- */

START_TEST(test_repeat_hit)
{
    th_daemon d;
    daemon_start(&d, NULL);
    mk(d.root, "a.tif", "--size 1024 --pattern random --seed 3", 60);
    int fd = th_connect(&d);
    cstats s0 = cache_status(fd);
    ck_assert_int_eq(s0.budget, 256LL << 20); /* the default */
    ck_assert_int_eq(s0.hits + s0.misses + s0.entries, 0);
    answer a1, a2;
    run(fd, STATS_OF("a.tif"), &a1);
    ck_assert_int_eq(cached_of(&a1), 0);
    ck_assert_int_gt(a1.tiles, 0);
    check_stats(value_of(&a1), d.root, "a.tif");
    cstats s1 = cache_status(fd);
    ck_assert_int_eq(s1.misses, 1);
    ck_assert_int_eq(s1.hits, 0);
    ck_assert_int_eq(s1.entries, 1);
    ck_assert_int_gt(s1.bytes, 0);
    /* The same graph spelled otherwise (a named load, a comment). */
    run(fd,
        "{\"nodes\":{\"in\":" LOAD(
            "a.tif") ",\"st\":{\"op\":\"global.stats\",\"comment\":\"again\","
                     "\"args\":[{\"ref\":\"in\"}]}},\"result\":\"st\"}",
        &a2);
    ck_assert_int_eq(cached_of(&a2), 1);
    ck_assert_int_eq(a2.tiles, 0); /* nothing left to run */
    ck_assert(json_equal(value_of(&a1), value_of(&a2)));
    cstats s2 = cache_status(fd);
    ck_assert_int_eq(s2.hits, 1);
    ck_assert_int_eq(s2.misses, 1);
    ck_assert_int_eq(s2.entries, 1);
    answer_free(&a1);
    answer_free(&a2);

    /* The file rewritten (same path, same size, other cells): just written,
     * it is not cached at all, and the answer is the new file's. */
    mk(d.root, "a.tif", "--size 1024 --pattern random --seed 4", 0);
    run(fd, STATS_OF("a.tif"), &a1);
    ck_assert_int_eq(cached_of(&a1), 0);
    check_stats(value_of(&a1), d.root, "a.tif");
    cstats s3 = cache_status(fd);
    ck_assert_int_eq(s3.hits, 1);
    ck_assert_int_eq(s3.misses, 1);
    /* Settled: a miss (another identity), then a hit with the new value. */
    age(d.root, "a.tif", 30);
    run(fd, STATS_OF("a.tif"), &a2);
    ck_assert_int_eq(cached_of(&a2), 0);
    ck_assert(json_equal(value_of(&a1), value_of(&a2)));
    answer a3;
    run(fd, STATS_OF("a.tif"), &a3);
    ck_assert_int_eq(cached_of(&a3), 1);
    ck_assert(json_equal(value_of(&a1), value_of(&a3)));
    cstats s4 = cache_status(fd);
    ck_assert_int_eq(s4.misses, 2);
    ck_assert_int_eq(s4.hits, 2);
    ck_assert_int_eq(s4.entries, 2);
    /* Touched only: another identity, a miss. */
    age(d.root, "a.tif", 20);
    answer a4;
    run(fd, STATS_OF("a.tif"), &a4);
    ck_assert_int_eq(cached_of(&a4), 0);
    ck_assert(json_equal(value_of(&a1), value_of(&a4)));
    ck_assert_int_eq(cache_status(fd).misses, 3);
    answer_free(&a1);
    answer_free(&a2);
    answer_free(&a3);
    answer_free(&a4);
    close(fd);
    daemon_stop(&d);
}
END_TEST

START_TEST(test_shared_in_flight)
{
    th_daemon d;
    daemon_start(&d, NULL);
    mk(d.root, "a.tif", "--size 2048 --pattern random", 60);
    int fd = th_connect(&d);
    /* Both lines in one write: the second job plans while the first
     * computes (about a second). */
    char buf[2048];
    int n = snprintf(buf, sizeof buf,
                     "{\"id\":\"x\",\"type\":\"run\",\"progress\":false,\"graph\":%s}\n"
                     "{\"id\":\"y\",\"type\":\"run\",\"progress\":false,\"graph\":%s}\n",
                     SLOW_OF("a.tif"), SLOW_OF("a.tif"));
    ck_assert_int_eq(th_send(fd, buf, (size_t)n), 0);
    const char *ids[] = {"x", "y"};
    answer a[2];
    collect(fd, ids, a, 2);
    for (int i = 0; i < 2; i++)
        ck_assert_msg(strcmp(json_string_value(json_object_get(a[i].ev, "event")), "result") == 0,
                      "%s", json_dumps(a[i].ev, 0));
    ck_assert(json_equal(value_of(&a[0]), value_of(&a[1])));
    ck_assert_int_eq(cached_of(&a[0]) + cached_of(&a[1]), 1);
    ck_assert_int_eq(json_integer_value(json_object_get(value_of(&a[0]), "count")), 2048 * 2048);
    cstats s = cache_status(fd);
    ck_assert_int_eq(s.misses, 1);
    ck_assert_int_eq(s.shared, 1);
    ck_assert_int_eq(s.hits, 0);
    /* The same value as a daemon without a cache computes. */
    th_daemon d0;
    memset(&d0, 0, sizeof d0);
    /* The same root spelled "ROOT/.": its own ready and log files. */
    ck_assert_uint_lt(strlen(d.root) + 2, sizeof d0.root);
    memcpy(d0.root, d.root, strlen(d.root));
    memcpy(d0.root + strlen(d.root), "/.", 3);
    const char *off[] = {"--cache-mb", "0", NULL};
    ck_assert_int_eq(th_start(&d0, off), 0);
    int fd0 = th_connect(&d0);
    answer r;
    run(fd0, SLOW_OF("a.tif"), &r);
    ck_assert(json_equal(value_of(&r), value_of(&a[0])));
    answer_free(&r);
    close(fd0);
    ck_assert_int_eq(th_stop(&d0), 0);
    answer_free(&a[0]);
    answer_free(&a[1]);
    close(fd);
    daemon_stop(&d);
}
END_TEST

START_TEST(test_raster_answer)
{
    th_daemon d;
    daemon_start(&d, NULL);
    mk(d.root, "a.tif", "--size 300x200 --pattern random --seed 9", 60);
    int fd = th_connect(&d);
    const char *g = "{\"nodes\":{\"p\":{\"op\":\"local.add\",\"args\":[" LOAD("a.tif") ",1]}}}";
    answer a1, a2;
    run(fd, g, &a1);
    run(fd, g, &a2);
    ck_assert_int_eq(cached_of(&a1), 0);
    ck_assert_int_eq(cached_of(&a2), 1);
    ck_assert_int_eq(a2.tiles, 0);
    ck_assert_int_eq(a1.nbytes, 300 * 200 * 4);
    ck_assert_int_eq(a2.nbytes, a1.nbytes);
    ck_assert(memcmp(a1.bytes, a2.bytes, a1.nbytes) == 0);
    ck_assert(json_equal(value_of(&a1), value_of(&a2)));
    int w, h;
    float *v = read_f32(d.root, "a.tif", &w, &h);
    const float *got = (const float *)a2.bytes;
    for (int i = 0; i < w * h; i++)
        if (got[i] != (float)((double)v[i] + 1.0))
            ck_abort_msg("cell %d: %.9g, want %.9g", i, got[i], (double)v[i] + 1.0);
    free(v);
    cstats s = cache_status(fd);
    ck_assert_int_eq(s.hits, 1);
    ck_assert_int_eq(s.misses, 1);
    ck_assert_int_ge(s.bytes, 300 * 200 * 4);
    answer_free(&a1);
    answer_free(&a2);
    close(fd);
    daemon_stop(&d);
}
END_TEST

START_TEST(test_disabled)
{
    th_daemon d;
    const char *off[] = {"--cache-mb", "0", NULL};
    daemon_start(&d, off);
    mk(d.root, "a.tif", "--size 512 --pattern random", 60);
    int fd = th_connect(&d);
    answer a1, a2;
    run(fd, STATS_OF("a.tif"), &a1);
    run(fd, STATS_OF("a.tif"), &a2);
    ck_assert_int_eq(cached_of(&a1), 0);
    ck_assert_int_eq(cached_of(&a2), 0);
    ck_assert_int_eq(a2.tiles, a1.tiles);
    ck_assert_int_gt(a2.tiles, 0);
    check_stats(value_of(&a2), d.root, "a.tif");
    ck_assert(json_equal(value_of(&a1), value_of(&a2)));
    cstats s = cache_status(fd);
    ck_assert_int_eq(s.budget, 0);
    ck_assert_int_eq(s.hits + s.misses + s.shared + s.entries + s.bytes, 0);
    answer_free(&a1);
    answer_free(&a2);
    close(fd);
    daemon_stop(&d);
}
END_TEST

/* Raster answers of 256 KiB in a 1 MiB cache: three fit, a fourth evicts
 * the least recently used one (not the oldest). */
START_TEST(test_lru_evicts)
{
    th_daemon d;
    const char *small[] = {"--cache-mb", "1", NULL};
    daemon_start(&d, small);
    mk(d.root, "a.tif", "--size 256 --pattern random", 60);
    int fd = th_connect(&d);
    char g[4][256];
    for (int i = 0; i < 4; i++)
        snprintf(g[i], sizeof g[i],
                 "{\"nodes\":{\"p\":{\"op\":\"local.add\",\"args\":[" LOAD("a.tif") ",%d]}}}",
                 i + 1);
    /* (graph, expected "cached") in order. */
    static const int seq[][2] = {{0, 0}, {1, 0}, {2, 0}, {0, 1}, {3, 0}, {1, 0}, {0, 1}};
    long long evictions[] = {0, 0, 0, 0, 1, 2, 2};
    unsigned char *first[4] = {0};
    for (size_t k = 0; k < sizeof seq / sizeof seq[0]; k++) {
        answer a;
        run(fd, g[seq[k][0]], &a);
        ck_assert_msg(cached_of(&a) == seq[k][1], "step %zu (graph %d): cached %lld", k, seq[k][0],
                      cached_of(&a));
        ck_assert_int_eq(a.nbytes, 256 * 256 * 4);
        if (first[seq[k][0]] == NULL) {
            first[seq[k][0]] = a.bytes;
            a.bytes = NULL;
        } else {
            ck_assert(memcmp(first[seq[k][0]], a.bytes, a.nbytes) == 0);
        }
        cstats s = cache_status(fd);
        ck_assert_msg(s.evictions == evictions[k], "step %zu: %lld evictions", k, s.evictions);
        ck_assert_int_le(s.bytes, s.budget);
        ck_assert_int_eq(s.entries, k < 2 ? (long long)k + 1 : 3);
        answer_free(&a);
    }
    for (int i = 0; i < 4; i++)
        free(first[i]);
    close(fd);
    daemon_stop(&d);
}
END_TEST

/* A first job that stops (cancelled, or past its deadline) while a second
 * identical one waits for it: the second computes it itself, and the
 * cache is not poisoned: a third run is a hit with the same value. */
static void stopped_first(int how)
{
    th_daemon d;
    daemon_start(&d, NULL);
    mk(d.root, "a.tif", "--size 2048 --pattern random --seed 5", 60);
    int fd = th_connect(&d);
    const char *g = how == 1 ? SLOWEST_OF("a.tif") : SLOWER_OF("a.tif");
    send_run(fd, "first", g, how == 1 ? 700 : 0);
    json_t *ev = th_recv(fd, T_MS);
    ck_assert_msg(ev && strcmp(json_string_value(json_object_get(ev, "event")), "accepted") == 0,
                  "first: no accepted");
    json_decref(ev);
    send_run(fd, "second", g, 0);
    /* Once accepted, the second waits for the first (which runs for a
     * second or more; the deadline, 700 ms, is far from the second's
     * planning), unless the first has already stopped. */
    answer a[2];
    memset(a, 0, sizeof a);
    for (;;) {
        ev = th_recv(fd, T_MS);
        ck_assert_msg(ev != NULL, "no answer in time");
        const char *id = json_string_value(json_object_get(ev, "id"));
        const char *kind = json_string_value(json_object_get(ev, "event"));
        if (strcmp(id, "second") == 0) {
            ck_assert_msg(strcmp(kind, "accepted") == 0, "second: %s", json_dumps(ev, 0));
            json_decref(ev);
            break;
        }
        ck_assert_msg(strcmp(kind, "error") == 0, "first: %s", json_dumps(ev, 0));
        a[0].ev = ev; /* the first timed out already */
    }
    if (how == 0) {
        const char *c = "{\"id\":\"c\",\"type\":\"cancel\",\"job\":\"first\"}\n";
        ck_assert_int_eq(th_send(fd, c, strlen(c)), 0);
    }
    const char *ids[] = {"first", "second"};
    if (a[0].ev == NULL)
        collect(fd, ids, a, 2);
    else
        collect(fd, ids + 1, a + 1, 1);
    ck_assert_str_eq(th_code(a[0].ev), how == 0 ? "cancelled" : "timeout");
    ck_assert_msg(strcmp(json_string_value(json_object_get(a[1].ev, "event")), "result") == 0,
                  "second: %s", json_dumps(a[1].ev, 0));
    ck_assert_int_eq(cached_of(&a[1]), 0);
    ck_assert_int_eq(json_integer_value(json_object_get(value_of(&a[1]), "count")), 2048 * 2048);
    cstats s = cache_status(fd);
    ck_assert_int_eq(s.misses, 2); /* the first's claim went to the second */
    ck_assert_int_eq(s.shared, 0);
    ck_assert_int_eq(s.entries, 1);
    answer a3;
    run(fd, g, &a3);
    ck_assert_int_eq(cached_of(&a3), 1);
    ck_assert(json_equal(value_of(&a3), value_of(&a[1])));
    ck_assert_int_eq(cache_status(fd).hits, 1);
    answer_free(&a[0]);
    answer_free(&a[1]);
    answer_free(&a3);
    close(fd);
    daemon_stop(&d);
}

START_TEST(test_cancelled_first)
{
    stopped_first(0);
}
END_TEST

START_TEST(test_timed_out_first)
{
    stopped_first(1);
}
END_TEST

/* A value computed before a save comes from the cache the second time; the
 * file is written anyway, with the same cells. */
START_TEST(test_save_still_written)
{
    th_daemon d;
    daemon_start(&d, NULL);
    mk(d.root, "a.tif", "--size 512 --pattern random --seed 2", 60);
    int fd = th_connect(&d);
    const char *g = "{\"nodes\":{\"a\":" LOAD(
        "a.tif") ",\"s\":{\"op\":\"global.stats\",\"args\":[{\"ref\":\"a\"}]},"
                 "\"r\":{\"op\":\"global.rescale\",\"to\":[0,100],\"args\":[{\"ref\":\"a\"},{"
                 "\"ref\":\"s\"}]},"
                 "\"o\":{\"op\":\"io.save\",\"path\":\"out/r.tif\",\"args\":[{\"ref\":\"r\"}]}},"
                 "\"result\":[\"s\",\"o\"]}";
    char out[512];
    snprintf(out, sizeof out, "%s/out/r.tif", d.root);
    float *cells[2];
    for (int k = 0; k < 2; k++) {
        unlink(out);
        answer a;
        run(fd, g, &a);
        ck_assert_int_eq(cached_of(&a), k); /* the stats, the second time */
        json_t *v = value_of(&a);
        ck_assert_str_eq(json_string_value(json_object_get(json_array_get(v, 1), "path")),
                         "out/r.tif");
        struct stat st;
        ck_assert_msg(stat(out, &st) == 0, "run %d did not write %s", k, out);
        check_stats(json_array_get(v, 0), d.root, "a.tif");
        int w, h;
        cells[k] = read_f32(d.root, "out/r.tif", &w, &h);
        ck_assert_int_eq(w * h, 512 * 512);
        answer_free(&a);
    }
    ck_assert(memcmp(cells[0], cells[1], sizeof(float) * 512 * 512) == 0);
    /* And they are the rescale of the input with its min and max. */
    int w, h;
    float *in = read_f32(d.root, "a.tif", &w, &h);
    float mn = in[0], mx = in[0];
    for (int i = 0; i < w * h; i++)
        mn = in[i] < mn ? in[i] : mn, mx = in[i] > mx ? in[i] : mx;
    for (int i = 0; i < w * h; i++) {
        double want = ((double)in[i] - mn) * 100.0 / ((double)mx - mn);
        if (fabs(cells[1][i] - want) > 1e-4)
            ck_abort_msg("cell %d: %.9g, want %.9g", i, cells[1][i], want);
    }
    free(in);
    free(cells[0]);
    free(cells[1]);
    cstats s = cache_status(fd);
    ck_assert_int_eq(s.hits, 1);
    ck_assert_int_eq(s.misses, 1);
    close(fd);
    daemon_stop(&d);
}
END_TEST

int main(void)
{
    GDALAllRegister();
    snprintf(g_base, sizeof g_base, "/tmp/pg-itcache-XXXXXX");
    if (mkdtemp(g_base) == NULL) return EXIT_FAILURE;
    Suite *s = suite_create("it_cache");
    TCase *tc = tcase_create("it_cache");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_repeat_hit);
    tcase_add_test(tc, test_shared_in_flight);
    tcase_add_test(tc, test_raster_answer);
    tcase_add_test(tc, test_disabled);
    tcase_add_test(tc, test_lru_evicts);
    tcase_add_test(tc, test_cancelled_first);
    tcase_add_test(tc, test_timed_out_first);
    tcase_add_test(tc, test_save_still_written);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    rmdir(g_base);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
