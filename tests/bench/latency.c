/* pergola-bench-latency ADDRESS [N]
 *
 * Round-trip latency of a daemon through the client library (include/pergola/client.h),
 * over one connection: N (default 2000) pings, then N runs of a small graph,
 *
 *   {"nodes": {"c": {"op": "raster.constant", "width": 64, "height": 64, "value": 1,
 *                    "type": "f32"},
 *              "s": {"op": "global.stats", "args": [{"ref": "c"}]}},
 *    "result": "s"}
 *
 * each answered with its value (without progress events). Each round trip is timed on
 * the client with CLOCK_MONOTONIC, after N/10 untimed warm-up trips. Every answer of the
 * graph is checked (count 4096, mean 1): a wrong answer fails the tool with status 1.
 * Output, machine-readable:
 *   latency ping n=N min_us=A median_us=B p99_us=C
 *   latency graph n=N min_us=A median_us=B p99_us=C
 * The daemon should run without a result cache (--cache-mb 0), or the graph's trips
 * measure the cache. */

#include "pergola/client.h"

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static double pg__now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + ts.tv_nsec * 1e-3;
}

static int pg__cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Sorts T (N entries) and prints its min, median and 99th percentile. */
static void pg__report(const char *what, double *t, int n)
{
    qsort(t, (size_t)n, sizeof *t, pg__cmp);
    int p99 = (int)((double)n * 0.99);
    if (p99 >= n) p99 = n - 1;
    printf("latency %s n=%d min_us=%.1f median_us=%.1f p99_us=%.1f\n", what, n, t[0], t[n / 2],
           t[p99]);
}

/* One run of the small graph; 0 when it answered count 4096 and mean 1. */
static int pg__run_small(pg_client *c, const char *graph, pg_error *err)
{
    pg_result *r = NULL;
    err->code = 0;
    if (pg_client_run(c, graph, NULL, &r, err) != 0) return -1;
    json_t *v = pg_result_value(r);
    int ok = json_integer_value(json_object_get(v, "count")) == 4096 &&
             json_number_value(json_object_get(v, "mean")) == 1.0;
    if (!ok) {
        char *s = json_dumps(v, JSON_COMPACT);
        fprintf(stderr, "pergola-bench-latency: unexpected answer %s\n", s ? s : "?");
        free(s);
    }
    pg_result_destroy(&r);
    return ok ? 0 : -1;
}

int main(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: pergola-bench-latency ADDRESS [N]\n");
        return 2;
    }
    int n = argc > 2 ? atoi(argv[2]) : 2000;
    if (n < 1) {
        fprintf(stderr, "pergola-bench-latency: N must be >= 1\n");
        return 2;
    }
    static const char graph[] =
        "{\"nodes\":{\"c\":{\"op\":\"raster.constant\",\"width\":64,\"height\":64,"
        "\"value\":1,\"type\":\"f32\"},\"s\":{\"op\":\"global.stats\",\"args\":[{\"ref\":"
        "\"c\"}]}},\"result\":\"s\"}";
    pg_error err = {0};
    pg_client *c = pg_client_new(argv[1], 10000, &err);
    if (c == NULL) {
        fprintf(stderr, "pergola-bench-latency: %s\n", err.message);
        return 3;
    }
    double *t = malloc(sizeof *t * (size_t)n);
    if (t == NULL) return 1;
    int warm = n / 10 + 1, rc = 0;

    for (int i = -warm; i < n && rc == 0; i++) {
        double t0 = pg__now_us();
        if (pg_client_ping(c, NULL, &err) != 0) {
            fprintf(stderr, "pergola-bench-latency: ping: %s\n", err.message);
            rc = 1;
        }
        if (i >= 0) t[i] = pg__now_us() - t0;
    }
    if (rc == 0) pg__report("ping", t, n);

    for (int i = -warm; i < n && rc == 0; i++) {
        double t0 = pg__now_us();
        if (pg__run_small(c, graph, &err) != 0) {
            if (err.code != 0) fprintf(stderr, "pergola-bench-latency: run: %s\n", err.message);
            rc = 1;
        }
        if (i >= 0) t[i] = pg__now_us() - t0;
    }
    if (rc == 0) pg__report("graph", t, n);

    free(t);
    pg_client_destroy(&c);
    return rc;
}
