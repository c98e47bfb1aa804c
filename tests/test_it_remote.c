/* Suite "it_remote": the same graph on one node or on a cluster of three
 * real pergolad nodes (cluster_harness.h), with the same bytes.
 *
 * Every case runs a graph twice on node a: plainly (everything local) and
 * with "remote" nodes or "distribute", and compares the outputs byte for
 * byte (files) or value for value (stats), and checks through the peers'
 * `status` that they really did the work. Then failure: a node SIGKILLed
 * in the middle of a distributed run (the result is still complete and
 * identical), a named node that is down (peer_unavailable naming it), an
 * unknown name (bad_param naming the graph node). */
#include "cluster_harness.h"
#include "pergola/client.h"

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static char *slurp(const char *root, const char *rel, size_t *len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", root, rel);
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *b = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(b);
    ck_assert_int_eq(fread(b, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    *len = (size_t)n;
    return b;
}

/* The two files are identical, byte for byte. */
static void assert_same_file(const char *a, const char *b)
{
    size_t la = 0, lb = 0;
    char *x = slurp(th_cluster_root(), a, &la), *y = slurp(th_cluster_root(), b, &lb);
    ck_assert_msg(x != NULL && y != NULL, "missing %s or %s", a, b);
    ck_assert_msg(la == lb && memcmp(x, y, la) == 0, "%s (%zu bytes) differs from %s (%zu bytes)",
                  a, la, b, lb);
    free(x);
    free(y);
}

static long long completed_now(int i)
{
    json_t *st = th_cluster_status(i);
    ck_assert_ptr_nonnull(st);
    long long n = json_integer_value(json_object_get(json_object_get(st, "jobs"), "completed"));
    json_decref(st);
    return n;
}

/* Jobs node I has completed (its own and its peers'), once the count is
 * settled: a job's answer goes out just before the node counts it. */
static long long completed(int i)
{
    long long n = completed_now(i), m;
    for (int k = 0; k < 100; k++) {
        usleep(30000);
        if ((m = completed_now(i)) == n) break;
        n = m;
    }
    return n;
}

static pg_client *connect_node(int i)
{
    pg_error err;
    pg_client *c = pg_client_new(th_cluster_node_addr(i), 10000, &err);
    ck_assert_msg(c != NULL, "connect: %s", err.message);
    return c;
}

/* Runs GRAPH (JSON text) on client C with extra request members REQ (JSON
 * text or NULL); returns the result (fails the test on an error). */
static pg_result *run(pg_client *c, const char *graph, const char *req)
{
    json_t *r = req ? json_loads(req, 0, NULL) : NULL;
    ck_assert(req == NULL || r != NULL);
    pg_run_opts o = {.request = r, .timeout_ms = 120000};
    pg_result *res = NULL;
    pg_error err;
    int rc = pg_client_run(c, graph, &o, &res, &err);
    json_decref(r);
    ck_assert_msg(rc == 0, "run: %s: %s (at %s)", pg_err_name(rc), err.message, err.node);
    return res;
}

/* Runs GRAPH and expects error CODE at node NODE; returns the message. */
static void run_fails(pg_client *c, const char *graph, int code, const char *node,
                      const char *needle)
{
    pg_run_opts o = {.timeout_ms = 60000};
    pg_result *res = NULL;
    pg_error err;
    int rc = pg_client_run(c, graph, &o, &res, &err);
    ck_assert_msg(rc == code, "got %s (%s), want %s", pg_err_name(rc), err.message,
                  pg_err_name(code));
    ck_assert_msg(strcmp(err.node, node) == 0, "error at '%s', want '%s'", err.node, node);
    ck_assert_msg(strstr(err.message, needle) != NULL, "'%s' does not say '%s'", err.message,
                  needle);
}

static void start3(const char *tile)
{
    th_cluster_opts o = {0};
    const char *extra[] = {"--tile-size", tile, "--cache-mb", "0", NULL};
    o.extra = extra;
    ck_assert_int_eq(th_cluster_start(3, &o), 0);
}

/* A save of NODE's graph GRAPH_FMT (one %s: the output path). */
static char *graph_with(const char *fmt, const char *out)
{
    size_t n = strlen(fmt) + strlen(out) + 1;
    char *g = malloc(n);
    ck_assert_ptr_nonnull(g);
    snprintf(g, n, fmt, out);
    return g;
}

/* "remote": a value node computed by b, a raster node by c, "remote":
 * true by whichever peer: the same values and bytes as a local run. */
START_TEST(remote_ops)
{
    start3("64");
    ck_assert_int_eq(th_mkraster(th_cluster_root(), "x.tif",
                                 "--size 300x200 --type f32 --pattern random --seed 3 --block 64"),
                     0);
    ck_assert_int_eq(th_mkraster(th_cluster_root(), "y.tif",
                                 "--size 300x200 --type i16 --pattern gradient --block 64"),
                     0);
    pg_client *c = connect_node(0);
    long long b0 = completed(1), c0 = completed(2);

    /* A value on b. */
    const char *stats_fmt =
        "{\"nodes\": {\"x\": {\"op\": \"io.load\", \"path\": \"x.tif\"},"
        " \"y\": {\"op\": \"io.load\", \"path\": \"y.tif\"},"
        " \"s\": {\"op\": \"local.multiply\", \"args\": [{\"ref\": \"x\"}, {\"ref\": \"y\"}]},"
        " \"st\": {\"op\": \"global.stats\", %s \"args\": [{\"ref\": \"s\"}]}}, \"result\": "
        "\"st\"}";
    char *local = graph_with(stats_fmt, "");
    char *onb = graph_with(stats_fmt, "\"remote\": \"b\",");
    pg_result *r1 = run(c, local, NULL), *r2 = run(c, onb, NULL);
    ck_assert_msg(json_equal(pg_result_value(r1), pg_result_value(r2)), "remote stats differ");
    ck_assert_int_eq(json_integer_value(json_object_get(pg_result_value(r2), "count")), 60000);
    pg_result_destroy(&r1);
    pg_result_destroy(&r2);
    ck_assert_int_eq(completed(1), b0 + 1); /* b ran it */
    free(local);
    free(onb);

    /* A raster node on c, saved on a; then "remote": true (some peer). */
    const char *save_fmt =
        "{\"nodes\": {\"x\": {\"op\": \"io.load\", \"path\": \"x.tif\"},"
        " \"y\": {\"op\": \"io.load\", \"path\": \"y.tif\"},"
        " \"s\": {\"op\": \"local.add\", %s \"args\": [{\"ref\": \"x\"}, {\"ref\": \"y\"}, 2]},"
        " \"f\": {\"op\": \"focal.mean\", \"radius\": 2, \"args\": [{\"ref\": \"s\"}]},"
        " \"out\": {\"op\": \"io.save\", \"path\": \"%s\", \"args\": [{\"ref\": \"f\"}]}},"
        " \"result\": \"out\"}";
    char g[2048];
    snprintf(g, sizeof g, save_fmt, "", "local.tif");
    pg_result_destroy((pg_result *[]){run(c, g, NULL)});
    snprintf(g, sizeof g, save_fmt, "\"remote\": \"c\",", "onc.tif");
    pg_result_destroy((pg_result *[]){run(c, g, NULL)});
    assert_same_file("local.tif", "onc.tif");
    /* One call per (tile, halo window): 5x4 tiles of 64. */
    ck_assert_int_eq(completed(2), c0 + 20);
    long long b1 = completed(1), c1 = completed(2);
    snprintf(g, sizeof g, save_fmt, "\"remote\": true,", "any.tif");
    pg_result_destroy((pg_result *[]){run(c, g, NULL)});
    assert_same_file("local.tif", "any.tif");
    ck_assert_int_eq((completed(1) - b1) + (completed(2) - c1), 20);
    /* "remote" on io.save: its input is computed by b, the file written here. */
    const char *rsave =
        "{\"nodes\": {\"x\": {\"op\": \"io.load\", \"path\": \"x.tif\"},"
        " \"y\": {\"op\": \"io.load\", \"path\": \"y.tif\"},"
        " \"s\": {\"op\": \"local.add\", \"args\": [{\"ref\": \"x\"}, {\"ref\": "
        "\"y\"}, 2]},"
        " \"f\": {\"op\": \"focal.mean\", \"radius\": 2, \"args\": [{\"ref\": \"s\"}]},"
        " \"out\": {\"op\": \"io.save\", \"remote\": \"b\", \"path\": \"saveb.tif\","
        " \"args\": [{\"ref\": \"f\"}]}}, \"result\": \"out\"}";
    b1 = completed(1);
    pg_result_destroy((pg_result *[]){run(c, rsave, NULL)});
    assert_same_file("local.tif", "saveb.tif");
    ck_assert_int_eq(completed(1) - b1, 20);

    /* A raster answer computed on b: the same cells. */
    const char *raw_fmt = "{\"nodes\": {\"x\": {\"op\": \"io.load\", \"path\": \"x.tif\"},"
                          " \"s\": {\"op\": \"local.sqrt\", %s \"args\": [{\"ref\": \"x\"}]}},"
                          " \"result\": \"s\"}";
    snprintf(g, sizeof g, raw_fmt, "");
    pg_result *ra = run(c, g, NULL);
    snprintf(g, sizeof g, raw_fmt, "\"remote\": \"b\",");
    pg_result *rb = run(c, g, NULL);
    const pg_raster *xa = pg_result_raster(ra, 0), *xb = pg_result_raster(rb, 0);
    ck_assert(xa && xb);
    ck_assert_int_eq(xa->length, xb->length);
    ck_assert(memcmp(xa->data, xb->data, xa->length) == 0);
    pg_result_destroy(&ra);
    pg_result_destroy(&rb);

    pg_client_destroy(&c);
    ck_assert_int_eq(th_cluster_stop(), 0);
}
END_TEST

/* "distribute": every partition gives the file of the local run, byte
 * for byte, and stats equal to local stats; the peers did their share. */
START_TEST(distributed_tiles)
{
    start3("64");
    ck_assert_int_eq(th_mkraster(th_cluster_root(), "d.tif",
                                 "--size 400x330 --type f32 --pattern dem --block 64"),
                     0);
    ck_assert_int_eq(th_mkraster(th_cluster_root(), "z.tif",
                                 "--size 400x330 --type u8 --pattern random --seed 4 --block 64"),
                     0);
    pg_client *c = connect_node(0);
    const char *fmt =
        "{\"nodes\": {\"d\": {\"op\": \"io.load\", \"path\": \"d.tif\"},"
        " \"h\": {\"op\": \"focal.hillshade\", \"args\": [{\"ref\": \"d\"}]},"
        " \"m\": {\"op\": \"focal.mean\", \"radius\": 1, \"args\": [{\"ref\": \"d\"}]},"
        " \"out\": {\"op\": \"io.save\", \"path\": \"%s\", \"args\": [{\"ref\": \"h\"}]},"
        " \"st\": {\"op\": \"global.stats\", \"args\": [{\"ref\": \"m\"}]},"
        " \"zs\": {\"op\": \"zonal.stats\", \"args\": [{\"op\": \"io.load\", \"path\": "
        "\"z.tif\"}, {\"ref\": \"m\"}]}},"
        " \"result\": [\"out\", \"st\", \"zs\"]}";
    char *g = graph_with(fmt, "local.tif");
    pg_result *base = run(c, g, NULL);
    free(g);
    /* 7 x 6 tiles of 64 */
    static const char *const dist[] = {
        "{\"distribute\": true}",
        "{\"distribute\": {\"partition\": \"round_robin\"}}",
        "{\"distribute\": {\"partition\": \"by_input\", \"nodes\": [\"b\", \"c\"]}}",
        "{\"distribute\": {\"partition\": \"explicit\", \"map\": [\"c\", \"b\", \"a\", \"c\"]}}",
    };
    for (size_t i = 0; i < sizeof dist / sizeof *dist; i++) {
        long long b0 = completed(1), c0 = completed(2);
        char out[64];
        snprintf(out, sizeof out, "dist%zu.tif", i);
        g = graph_with(fmt, out);
        pg_result *r = run(c, g, dist[i]);
        free(g);
        assert_same_file("local.tif", out);
        ck_assert_msg(json_equal(pg_result_item(base, 1), pg_result_item(r, 1)),
                      "%s: distributed stats differ", dist[i]);
        ck_assert_msg(json_equal(pg_result_item(base, 2), pg_result_item(r, 2)),
                      "%s: distributed zonal stats differ", dist[i]);
        pg_result_destroy(&r);
        long long db = completed(1) - b0, dc = completed(2) - c0;
        ck_assert_msg(db > 0 && dc > 0, "%s: b did %lld calls, c %lld", dist[i], db, dc);
    }
    pg_result_destroy(&base);

    /* Bad distribute requests: exact codes. */
    static const char *const bad[] = {
        "{\"distribute\": {\"partition\": \"kmeans\"}}",
        "{\"distribute\": {\"nodes\": [\"a\", \"zz\"]}}",
        "{\"distribute\": {\"partition\": \"explicit\"}}",
        "{\"distribute\": {\"partition\": \"explicit\", \"map\": [\"a\", \"q\"]}}",
        "{\"distribute\": {\"nodes\": []}}",
        "{\"distribute\": {\"color\": 1}}",
        "{\"distribute\": 3}",
    };
    g = graph_with(fmt, "never.tif");
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_t *req = json_loads(bad[i], 0, NULL);
        pg_run_opts o = {.request = req};
        pg_result *r = NULL;
        pg_error err;
        int rc = pg_client_run(c, g, &o, &r, &err);
        json_decref(req);
        ck_assert_msg(rc == PG_EBADREQ, "%s: %s", bad[i], pg_err_name(rc));
    }
    free(g);
    pg_client_destroy(&c);
    ck_assert_int_eq(th_cluster_stop(), 0);
}
END_TEST

/* Progress callback: remembers how far the job got. */
static void on_progress(long long done, long long total, void *ud)
{
    long long *p = ud;
    p[0] = done;
    p[1] = total;
}

/* A node SIGKILLed in the middle of a distributed run: its tiles are
 * computed again elsewhere, the file is complete and identical. */
START_TEST(node_killed_mid_job)
{
    start3("32");
    ck_assert_int_eq(th_mkraster(th_cluster_root(), "k.tif",
                                 "--size 640x640 --type f32 --pattern random --seed 11 --block 32"),
                     0);
    pg_client *c = connect_node(0);
    const char *fmt =
        "{\"nodes\": {\"k\": {\"op\": \"io.load\", \"path\": \"k.tif\"},"
        " \"m\": {\"op\": \"focal.median\", \"radius\": 3, \"args\": [{\"ref\": \"k\"}]},"
        " \"out\": {\"op\": \"io.save\", \"path\": \"%s\", \"args\": [{\"ref\": \"m\"}]}},"
        " \"result\": \"out\"}";
    char *g = graph_with(fmt, "local.tif");
    pg_result_destroy((pg_result *[]){run(c, g, NULL)});
    free(g);

    g = graph_with(fmt, "killed.tif");
    json_t *req = json_loads("{\"distribute\": {\"partition\": \"round_robin\"}}", 0, NULL);
    long long prog[2] = {0, 0};
    pg_run_opts o = {
        .request = req, .progress = on_progress, .userdata = prog, .timeout_ms = 120000};
    pg_job job;
    pg_error err;
    ck_assert_int_eq(pg_client_submit(c, g, &o, &job, &err), 0);
    /* Wait until a few tiles are done, then kill c. */
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (prog[0] < 20) {
        ck_assert_int_ge(pg_client_process(c, 50, &err), 0);
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        ck_assert_msg(t.tv_sec - t0.tv_sec < 60, "no progress");
    }
    ck_assert_msg(prog[0] < prog[1], "the job ended before the kill (%lld of %lld)", prog[0],
                  prog[1]);
    ck_assert_int_eq(th_cluster_kill(2), 0);
    pg_result *r = NULL;
    int rc = pg_client_wait(c, job, 120000, &r, &err);
    ck_assert_msg(rc == 0, "after the kill: %s: %s", pg_err_name(rc), err.message);
    pg_result_destroy(&r);
    json_decref(req);
    free(g);
    assert_same_file("local.tif", "killed.tif");
    pg_client_destroy(&c);
    th_cluster_stop(); /* c was killed: its status is not 0 */
}
END_TEST

/* A named node that is down: peer_unavailable naming the node; an unknown
 * name: bad_param at the graph node. */
START_TEST(named_node_down)
{
    start3("64");
    ck_assert_int_eq(th_mkraster(th_cluster_root(), "x.tif",
                                 "--size 100x100 --type f32 --pattern gradient --block 64"),
                     0);
    pg_client *c = connect_node(0);
    const char *fmt =
        "{\"nodes\": {\"x\": {\"op\": \"io.load\", \"path\": \"x.tif\"},"
        " \"st\": {\"op\": \"global.stats\", \"remote\": \"%s\", \"args\": [{\"ref\": "
        "\"x\"}]}}, \"result\": \"st\"}";
    char *g = graph_with(fmt, "nosuch");
    run_fails(c, g, PG_EPARAM, "st", "nosuch");
    free(g);
    ck_assert_int_eq(th_cluster_kill(1), 0);
    ck_assert_int_ge(th_cluster_wait_state(0, "b", "down", 10000), 0);
    g = graph_with(fmt, "b");
    run_fails(c, g, PG_EPEER, "st", "'b'");
    free(g);
    /* A raster node named for b: the same. */
    const char *rfmt = "{\"nodes\": {\"x\": {\"op\": \"io.load\", \"path\": \"x.tif\"},"
                       " \"s\": {\"op\": \"local.abs\", \"remote\": \"b\", \"args\": [{\"ref\": "
                       "\"x\"}]}}, \"result\": \"s\"}";
    run_fails(c, rfmt, PG_EPEER, "s", "'b'");
    /* "remote": true still works: c is up. */
    g = graph_with(fmt, "c");
    pg_result_destroy((pg_result *[]){run(c, g, NULL)});
    free(g);
    pg_client_destroy(&c);
    th_cluster_stop();
}
END_TEST

/* Calls that all fail (a 1 ms deadline: every call times out): the
 * tiles and values run here instead, with the same bytes; a node named
 * explicitly cannot be replaced: peer_unavailable naming it. */
START_TEST(fallback_here)
{
    th_cluster_opts o = {0};
    const char *extra[] = {"--tile-size", "64", "--cache-mb", "0", NULL};
    o.extra = extra;
    o.call_timeout_ms = 1;
    ck_assert_int_eq(th_cluster_start(3, &o), 0);
    ck_assert_int_eq(th_mkraster(th_cluster_root(), "d.tif",
                                 "--size 400x330 --type f32 --pattern dem --block 64"),
                     0);
    pg_client *c = connect_node(0);
    const char *fmt =
        "{\"nodes\": {\"d\": {\"op\": \"io.load\", \"path\": \"d.tif\"},"
        " \"h\": {\"op\": \"focal.hillshade\", \"args\": [{\"ref\": \"d\"}]},"
        " \"s\": {\"op\": \"local.add\", %s \"args\": [{\"ref\": \"h\"}, 1]},"
        " \"out\": {\"op\": \"io.save\", \"path\": \"%s\", \"args\": [{\"ref\": \"s\"}]},"
        " \"st\": {\"op\": \"global.stats\", %s \"args\": [{\"ref\": \"h\"}]}},"
        " \"result\": [\"out\", \"st\"]}";
    char g[2048];
    snprintf(g, sizeof g, fmt, "", "local.tif", "");
    pg_result *base = run(c, g, NULL);
    snprintf(g, sizeof g, fmt, "", "dist.tif", "");
    pg_result *r = run(c, g, "{\"distribute\": true}");
    assert_same_file("local.tif", "dist.tif");
    ck_assert(json_equal(pg_result_item(base, 1), pg_result_item(r, 1)));
    pg_result_destroy(&r);
    snprintf(g, sizeof g, fmt, "\"remote\": true,", "any.tif", "\"remote\": true,");
    r = run(c, g, NULL);
    assert_same_file("local.tif", "any.tif");
    ck_assert(json_equal(pg_result_item(base, 1), pg_result_item(r, 1)));
    pg_result_destroy(&r);
    pg_result_destroy(&base);
    snprintf(g, sizeof g, fmt, "\"remote\": \"b\",", "onb.tif", "");
    run_fails(c, g, PG_EPEER, "s", "'b'");
    pg_client_destroy(&c);
    ck_assert_int_eq(th_cluster_stop(), 0);
}
END_TEST

/* Cancelling a job cancels its calls: the peer's jobs end "cancelled",
 * the client gets "cancelled" at once (not at the calls' deadline). */
START_TEST(cancel_reaches_peers)
{
    start3("64");
    ck_assert_int_eq(th_mkraster(th_cluster_root(), "big.tif",
                                 "--size 1536x1536 --type f32 --pattern random --block 64"),
                     0);
    pg_client *c = connect_node(0);
    const char *g =
        "{\"nodes\": {\"x\": {\"op\": \"io.load\", \"path\": \"big.tif\"},"
        " \"m\": {\"op\": \"focal.median\", \"radius\": 6, \"args\": [{\"ref\": \"x\"}]},"
        " \"st\": {\"op\": \"global.stats\", \"remote\": \"b\", \"args\": [{\"ref\": "
        "\"m\"}]},"
        " \"out\": {\"op\": \"io.save\", \"path\": \"never.tif\", \"args\": [{\"ref\": "
        "\"m\"}]}}, \"result\": [\"st\", \"out\"]}";
    json_t *req = json_loads("{\"distribute\": {\"nodes\": [\"c\"]}}", 0, NULL);
    pg_run_opts o = {.request = req, .timeout_ms = 120000};
    pg_job job;
    pg_error err;
    ck_assert_int_eq(pg_client_submit(c, g, &o, &job, &err), 0);
    json_decref(req);
    usleep(500000); /* both peers are at work */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    ck_assert_int_eq(pg_client_cancel(c, job, &err), 0);
    pg_result *r = NULL;
    int rc = pg_client_wait(c, job, 60000, &r, &err);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    ck_assert_msg(rc == PG_ECANCELLED, "%s: %s", pg_err_name(rc), err.message);
    ck_assert_msg(strstr(err.message, "cancelled") != NULL, "message: %s", err.message);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    ck_assert_msg(s < 20, "the cancel took %.1f s", s);
    /* b and c cancelled what they were doing for a. */
    for (int i = 1; i <= 2; i++) {
        long long n = 0;
        for (int k = 0; k < 100 && n == 0; k++) {
            json_t *st = th_cluster_status(i);
            n = json_integer_value(json_object_get(json_object_get(st, "jobs"), "cancelled"));
            json_decref(st);
            if (n == 0) usleep(50000);
        }
        ck_assert_msg(n > 0, "node %s cancelled nothing", th_cluster_name(i));
    }
    ck_assert_int_eq(th_count_files(th_cluster_root(), "", "never"), 0);
    pg_client_destroy(&c);
    ck_assert_int_eq(th_cluster_stop(), 0);
}
END_TEST

/* "remote": a pool: its members share the tiles; with one member down
 * the other takes them all; with both down, peer_unavailable naming the
 * pool. The bytes are those of the local run. */
START_TEST(remote_pool)
{
    th_cluster_opts o = {0};
    const char *extra[] = {"--tile-size", "64", "--cache-mb", "0", NULL};
    o.extra = extra;
    o.pools = "{\"workers\": [\"b\", \"c\"]}";
    ck_assert_int_eq(th_cluster_start(3, &o), 0);
    ck_assert_int_eq(th_mkraster(th_cluster_root(), "x.tif",
                                 "--size 320x256 --type f32 --pattern random --block 64"),
                     0);
    pg_client *c = connect_node(0);
    const char *fmt = "{\"nodes\": {\"x\": {\"op\": \"io.load\", \"path\": \"x.tif\"},"
                      " \"m\": {\"op\": \"focal.max\", \"radius\": 1, %s \"args\": [{\"ref\": "
                      "\"x\"}]},"
                      " \"out\": {\"op\": \"io.save\", \"path\": \"%s\", \"args\": [{\"ref\": "
                      "\"m\"}]}}, \"result\": \"out\"}";
    char g[1024];
    snprintf(g, sizeof g, fmt, "", "local.tif");
    pg_result_destroy((pg_result *[]){run(c, g, NULL)});
    long long b0 = completed(1), c0 = completed(2);
    snprintf(g, sizeof g, fmt, "\"remote\": \"workers\",", "pool.tif");
    pg_result_destroy((pg_result *[]){run(c, g, NULL)});
    assert_same_file("local.tif", "pool.tif");
    ck_assert_int_eq((completed(1) - b0) + (completed(2) - c0), 20); /* 5 x 4 tiles */
    ck_assert_int_eq(th_cluster_kill(1), 0);
    ck_assert_int_ge(th_cluster_wait_state(0, "b", "down", 10000), 0);
    c0 = completed(2);
    snprintf(g, sizeof g, fmt, "\"remote\": \"workers\",", "pool2.tif");
    pg_result_destroy((pg_result *[]){run(c, g, NULL)});
    assert_same_file("local.tif", "pool2.tif");
    ck_assert_int_eq(completed(2) - c0, 20);
    ck_assert_int_eq(th_cluster_kill(2), 0);
    ck_assert_int_ge(th_cluster_wait_state(0, "c", "down", 10000), 0);
    snprintf(g, sizeof g, fmt, "\"remote\": \"workers\",", "pool3.tif");
    run_fails(c, g, PG_EPEER, "m", "'workers'");
    ck_assert_int_eq(th_count_files(th_cluster_root(), "", "pool3"), 0);
    pg_client_destroy(&c);
    th_cluster_stop();
}
END_TEST

static Suite *remote_suite(void)
{
    Suite *s = suite_create("it_remote");
    /* One case per test: CK_RUN_CASE=fallback runs one. */
    const struct {
        const char *name;
        const TTest *test;
    } cases[] = {{"ops", remote_ops},
                 {"distributed", distributed_tiles},
                 {"killed", node_killed_mid_job},
                 {"down", named_node_down},
                 {"fallback", fallback_here},
                 {"cancel", cancel_reaches_peers},
                 {"pool", remote_pool}};
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        TCase *tc = tcase_create(cases[i].name);
        tcase_set_timeout(tc, 240);
        tcase_add_test(tc, cases[i].test);
        suite_add_tcase(s, tc);
    }
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(remote_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
