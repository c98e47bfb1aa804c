/* The client library (include/pergola/client.h) and the `pergola` CLI,
 * against a fake daemon: a thread that accepts one connection on an
 * ephemeral 127.0.0.1 port (or a Unix socket in a temporary directory),
 * reads request lines and answers with scripted events. It records every
 * request it read, and the tests check those after joining it (Check's
 * assertions belong to the main thread). Every wait in the fake is bounded,
 * so a client that hangs fails the test instead of blocking the suite.
 */
#include "pergola/pergola.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define FK_WAIT_MS 5000

/* ------------------------------------------------------------------------ */
/* The fake daemon                                                           */

typedef struct fake fake;
typedef void (*script_fn)(fake *f);

struct fake {
    int lfd, fd;
    char addr[300]; /* what a client connects to */
    char dir[64];   /* temp dir of a Unix socket ("" for TCP) */
    char path[200]; /* the Unix socket */
    int port;
    int wait_ms; /* how long fk_recv() waits for a line */
    script_fn script;
    void *ud;
    pthread_t th;
    json_t *reqs; /* every request read, in order */
    char buf[1 << 16];
    size_t blen;
};

static void *fk_thread(void *arg)
{
    fake *f = arg;
    struct pollfd p = {.fd = f->lfd, .events = POLLIN};
    if (poll(&p, 1, FK_WAIT_MS) == 1) {
        f->fd = accept(f->lfd, NULL, NULL);
        if (f->fd >= 0) {
            f->script(f);
            if (f->fd >= 0) close(f->fd);
            f->fd = -1;
        }
    }
    return NULL;
}

static fake *fk_new(script_fn script, void *ud)
{
    fake *f = calloc(1, sizeof *f);
    ck_assert_ptr_nonnull(f);
    f->fd = -1;
    f->wait_ms = FK_WAIT_MS;
    f->script = script;
    f->ud = ud;
    f->reqs = json_array();
    return f;
}

static void fk_run(fake *f)
{
    ck_assert_int_eq(listen(f->lfd, 4), 0);
    ck_assert_int_eq(pthread_create(&f->th, NULL, fk_thread, f), 0);
}

static fake *fk_start_tcp(script_fn script, void *ud)
{
    fake *f = fk_new(script, ud);
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    ck_assert_int_ge(f->lfd, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(f->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t sl = sizeof sa;
    ck_assert_int_eq(getsockname(f->lfd, (struct sockaddr *)&sa, &sl), 0);
    f->port = ntohs(sa.sin_port);
    snprintf(f->addr, sizeof f->addr, "127.0.0.1:%d", f->port);
    fk_run(f);
    return f;
}

static fake *fk_start_unix(script_fn script, void *ud)
{
    fake *f = fk_new(script, ud);
    strcpy(f->dir, "/tmp/pgtest-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/pergolad.sock", f->dir);
    snprintf(f->addr, sizeof f->addr, "unix:%s", f->path);
    f->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    ck_assert_int_ge(f->lfd, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    strcpy(sa.sun_path, f->path);
    ck_assert_int_eq(bind(f->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    fk_run(f);
    return f;
}

/* Waits for the script to end and frees the fake; the requests it read
 * are returned (a new reference). */
static json_t *fk_join(fake *f)
{
    pthread_join(f->th, NULL);
    close(f->lfd);
    if (f->path[0]) unlink(f->path);
    if (f->dir[0]) rmdir(f->dir);
    json_t *reqs = f->reqs;
    free(f);
    return reqs;
}

/* The next request line (a new reference, also recorded), or NULL on EOF
 * or after FK_WAIT_MS. */
static json_t *fk_recv(fake *f)
{
    for (;;) {
        char *nl = memchr(f->buf, '\n', f->blen);
        if (nl != NULL) {
            size_t n = (size_t)(nl - f->buf);
            json_t *j = json_loadb(f->buf, n, 0, NULL);
            memmove(f->buf, nl + 1, f->blen - n - 1);
            f->blen -= n + 1;
            if (j == NULL) j = json_string("(not json)");
            json_array_append(f->reqs, j);
            return j;
        }
        struct pollfd p = {.fd = f->fd, .events = POLLIN};
        if (f->blen == sizeof f->buf || poll(&p, 1, f->wait_ms) != 1) return NULL;
        ssize_t k = read(f->fd, f->buf + f->blen, sizeof f->buf - f->blen);
        if (k <= 0) return NULL;
        f->blen += (size_t)k;
    }
}

static void fk_write(fake *f, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0 && f->fd >= 0) {
        ssize_t k = send(f->fd, p, len, MSG_NOSIGNAL);
        if (k <= 0) return;
        p += k;
        len -= (size_t)k;
    }
}

/* Sends MSG (stolen) as a line, then DATA/LEN as its attachment when DATA
 * is not NULL. The attachment goes out in three pieces with pauses, so the
 * client sees it split across reads. */
static void fk_send(fake *f, json_t *msg, const void *data, size_t len)
{
    if (data != NULL) json_object_set_new(msg, "bytes", json_integer((json_int_t)len));
    char *s = json_dumps(msg, JSON_COMPACT);
    json_decref(msg);
    fk_write(f, s, strlen(s));
    fk_write(f, "\n", 1);
    free(s);
    if (data != NULL) {
        size_t a = len / 3, b = 2 * len / 3;
        usleep(2000);
        fk_write(f, data, a);
        usleep(2000);
        fk_write(f, (const char *)data + a, b - a);
        usleep(2000);
        fk_write(f, (const char *)data + b, len - b);
    }
}

/* {"id": REQ's id, "event": EVENT, ...FMT fields (json_pack)}. */
static json_t *fk_event(json_t *req, const char *event, const char *fmt, ...)
{
    json_t *m;
    if (fmt != NULL) {
        va_list ap;
        va_start(ap, fmt);
        m = json_vpack_ex(NULL, 0, fmt, ap);
        va_end(ap);
    } else {
        m = json_object();
    }
    json_object_set(m, "id", json_object_get(req, "id"));
    json_object_set_new(m, "event", json_string(event));
    return m;
}

static void fk_result(fake *f, json_t *req, const char *value_json, const void *data, size_t len)
{
    json_t *v = json_loads(value_json, JSON_DECODE_ANY, NULL);
    fk_send(f, fk_event(req, "result", "{so}", "value", v), data, len);
}

static void fk_error(fake *f, json_t *req, const char *code, const char *message, const char *node)
{
    json_t *e = json_pack("{ss ss}", "code", code, "message", message);
    if (node != NULL) json_object_set_new(e, "node", json_string(node));
    fk_send(f, fk_event(req, "error", "{so}", "error", e), NULL, 0);
}

static void fk_close(fake *f)
{
    close(f->fd);
    f->fd = -1;
}

/* Drains until the client hangs up, so that the server does not close
 * first (which the client could see as an error in tests that expect
 * none). */
static void fk_until_eof(fake *f)
{
    json_t *r;
    while ((r = fk_recv(f)) != NULL)
        json_decref(r);
}

static json_t *jparse(const char *text)
{
    json_error_t je;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &je);
    ck_assert_msg(j != NULL, "bad JSON in test: %s", je.text);
    return j;
}

static void assert_json_eq(json_t *got, const char *expected)
{
    json_t *e = jparse(expected);
    char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    ck_assert_msg(json_equal(got, e), "got %s, expected %s", g, expected);
    free(g);
    json_decref(e);
}

static void setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    unsetenv("PERGOLA_CONNECT");
}

/* Records progress callbacks. */
typedef struct {
    int n;
    long long done[32], total[32];
} prog_rec;

static void rec_progress(long long done, long long total, void *ud)
{
    prog_rec *p = ud;
    if (p->n < 32) {
        p->done[p->n] = done;
        p->total[p->n] = total;
    }
    p->n++;
}

/* ------------------------------------------------------------------------ */
/* Graph builder                                                             */

START_TEST(test_graph_readme_example)
{
    pg_error err;
    pg_graph *g = pg_graph_new();
    ck_assert_int_eq(pg_graph_add(g, "a", "io.load", &err), 0);
    ck_assert_int_eq(pg_graph_set_string(g, "a", "path", "a.tif", &err), 0);
    ck_assert_int_eq(pg_graph_add(g, "b", "io.load", &err), 0);
    ck_assert_int_eq(pg_graph_set_string(g, "b", "path", "b.tif", &err), 0);
    ck_assert_int_eq(pg_graph_add(g, "s", "local.add", &err), 0);
    ck_assert_int_eq(pg_graph_arg_ref(g, "s", "a", &err), 0);
    ck_assert_int_eq(pg_graph_arg_ref(g, "s", "b", &err), 0);
    ck_assert_int_eq(pg_graph_arg_number(g, "s", 2.5, &err), 0);
    ck_assert_int_eq(pg_graph_add(g, "out", "io.save", &err), 0);
    ck_assert_int_eq(pg_graph_set_string(g, "out", "path", "sum.tif", &err), 0);
    ck_assert_int_eq(pg_graph_arg_ref(g, "out", "s", &err), 0);
    ck_assert_int_eq(pg_graph_set_result(g, "out", &err), 0);

    const char *expected =
        "{\"nodes\":{\"a\":{\"op\":\"io.load\",\"path\":\"a.tif\"},"
        "\"b\":{\"op\":\"io.load\",\"path\":\"b.tif\"},"
        "\"s\":{\"op\":\"local.add\",\"args\":[{\"ref\":\"a\"},{\"ref\":\"b\"},2.5]},"
        "\"out\":{\"op\":\"io.save\",\"path\":\"sum.tif\",\"args\":[{\"ref\":\"s\"}]}},"
        "\"result\":\"out\"}";
    json_t *j = pg_graph_to_json(g);
    assert_json_eq(j, expected);
    /* A deep copy: changing it leaves the builder alone. */
    json_object_set_new(j, "result", json_string("zzz"));
    json_decref(j);

    char *s = pg_graph_to_string(g, 0);
    ck_assert_ptr_nonnull(s);
    /* Compact, one line, in the order it was built. */
    ck_assert_str_eq(s, expected);
    free(s);
    s = pg_graph_to_string(g, 2);
    ck_assert_ptr_nonnull(strchr(s, '\n'));
    json_t *back = jparse(s);
    assert_json_eq(back, expected);
    json_decref(back);
    free(s);
    pg_graph_destroy(&g);
    ck_assert_ptr_null(g);
    pg_graph_destroy(&g); /* harmless */
}
END_TEST

START_TEST(test_graph_params_and_results)
{
    pg_error err;
    pg_graph *g = pg_graph_new();
    ck_assert_int_eq(pg_graph_add(g, "n", "raster.window", &err), 0);
    ck_assert_int_eq(
        pg_graph_arg_json(g, "n", json_pack("{s:s, s:s}", "op", "io.load", "path", "c.tif"), &err),
        0);
    ck_assert_int_eq(pg_graph_arg_number(g, "n", -3, &err), 0);
    ck_assert_int_eq(pg_graph_set_int(g, "n", "band", 2, &err), 0);
    ck_assert_int_eq(pg_graph_set_number(g, "n", "scale", 0.25, &err), 0);
    ck_assert_int_eq(pg_graph_set_bool(g, "n", "remote", 1, &err), 0);
    ck_assert_int_eq(pg_graph_set_bool(g, "n", "flip", 0, &err), 0);
    ck_assert_int_eq(pg_graph_set_json(g, "n", "window", json_pack("[iiii]", 0, 0, 10, 20), &err),
                     0);
    ck_assert_int_eq(pg_graph_set_string(g, "n", "type", "u8", &err), 0);
    ck_assert_int_eq(pg_graph_set_string(g, "n", "type", "f32", &err), 0); /* replaces */
    ck_assert_int_eq(pg_graph_add(g, "st", "global.stats", &err), 0);
    ck_assert_int_eq(pg_graph_arg_ref(g, "st", "n", &err), 0);
    const char *names[] = {"n", "st"};
    ck_assert_int_eq(pg_graph_set_results(g, names, 2, &err), 0);

    json_t *j = pg_graph_to_json(g);
    assert_json_eq(j, "{\"nodes\": {"
                      " \"n\": {\"op\": \"raster.window\","
                      "        \"args\": [{\"op\": \"io.load\", \"path\": \"c.tif\"}, -3],"
                      "        \"band\": 2, \"scale\": 0.25, \"remote\": true, \"flip\": false,"
                      "        \"window\": [0, 0, 10, 20], \"type\": \"f32\"},"
                      " \"st\": {\"op\": \"global.stats\", \"args\": [{\"ref\": \"n\"}]}},"
                      " \"result\": [\"n\", \"st\"]}");
    /* "band" is an integer on the wire, "scale" a real. */
    ck_assert(json_is_integer(
        json_object_get(json_object_get(json_object_get(j, "nodes"), "n"), "band")));
    json_decref(j);

    /* One name in the list form is still a list. */
    ck_assert_int_eq(pg_graph_set_results(g, names + 1, 1, &err), 0);
    j = pg_graph_to_json(g);
    assert_json_eq(json_object_get(j, "result"), "[\"st\"]");
    json_decref(j);
    ck_assert_int_eq(pg_graph_set_result(g, "n", &err), 0);
    j = pg_graph_to_json(g);
    assert_json_eq(json_object_get(j, "result"), "\"n\"");
    json_decref(j);
    pg_graph_destroy(&g);
}
END_TEST

START_TEST(test_graph_errors)
{
    pg_error err;
    pg_graph *g = pg_graph_new();
    ck_assert_int_eq(pg_graph_add(g, "a", "io.load", &err), 0);
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(pg_graph_add(g, "a", "io.load", &err), PG_EINVAL);
    ck_assert_int_eq(err.code, PG_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.message, "'a'"));
    ck_assert_int_eq(pg_graph_add(g, "", "io.load", &err), PG_EINVAL);
    ck_assert_int_eq(pg_graph_add(g, "b", "", &err), PG_EINVAL);
    ck_assert_int_eq(pg_graph_arg_ref(g, "nope", "a", &err), PG_EINVAL);
    ck_assert_ptr_nonnull(strstr(err.message, "nope"));
    /* Stolen even on failure (ASan/valgrind would report a leak). */
    ck_assert_int_eq(pg_graph_arg_json(g, "nope", json_integer(1), &err), PG_EINVAL);
    ck_assert_int_eq(pg_graph_set_json(g, "nope", "k", json_integer(1), &err), PG_EINVAL);
    ck_assert_int_eq(pg_graph_set_json(g, "a", "op", json_string("x"), &err), PG_EINVAL);
    ck_assert_int_eq(pg_graph_set_json(g, "a", "args", json_array(), &err), PG_EINVAL);
    ck_assert_int_eq(pg_graph_arg_json(g, "a", NULL, &err), PG_EINVAL);
    ck_assert_int_eq(pg_graph_arg_number(g, "a", NAN, NULL), PG_EINVAL);
    ck_assert_int_eq(pg_graph_set_number(g, "a", "x", INFINITY, NULL), PG_EINVAL);
    ck_assert_int_eq(pg_graph_set_results(g, NULL, 0, &err), PG_EINVAL);
    ck_assert_int_eq(pg_graph_set_result(g, "", &err), PG_EINVAL);
    /* Nothing of that reached the graph. */
    json_t *j = pg_graph_to_json(g);
    assert_json_eq(j, "{\"nodes\": {\"a\": {\"op\": \"io.load\"}}}");
    json_decref(j);
    pg_graph_destroy(&g);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Simple requests                                                           */

static void script_ping(fake *f)
{
    json_t *r = fk_recv(f);
    if (r) fk_result(f, r, "{\"pong\": true, \"version\": \"9.8.7\"}", NULL, 0);
    json_decref(r);
    fk_until_eof(f);
}

START_TEST(test_ping)
{
    fake *f = fk_start_tcp(script_ping, NULL);
    pg_error err;
    pg_client *c = pg_client_new(f->addr, 5000, &err);
    ck_assert_msg(c != NULL, "%s", err.message);
    ck_assert_int_ge(pg_client_fd(c), 0);
    ck_assert_str_eq(pg_client_address(c), f->addr);
    ck_assert_ptr_null(pg_client_server_version(c));
    double rtt = -1;
    ck_assert_int_eq(pg_client_ping(c, &rtt, &err), 0);
    ck_assert(rtt >= 0 && rtt < FK_WAIT_MS);
    ck_assert_str_eq(pg_client_server_version(c), "9.8.7");
    pg_client_destroy(&c);
    ck_assert_ptr_null(c);
    json_t *reqs = fk_join(f);
    ck_assert_int_eq(json_array_size(reqs), 1);
    assert_json_eq(json_array_get(reqs, 0), "{\"id\": 1, \"type\": \"ping\"}");
    json_decref(reqs);
}
END_TEST

static const char *ops_json =
    "[{\"name\": \"local.add\", \"family\": \"local\", \"doc\": \"Adds.\","
    "  \"args\": {\"min\": 2, \"max\": null, \"kinds\": [\"raster\", \"number\"]},"
    "  \"params\": [], \"returns\": \"raster\"},"
    " {\"name\": \"io.load\", \"family\": \"io\", \"doc\": \"Loads.\","
    "  \"args\": {\"min\": 0, \"max\": 0, \"kinds\": []},"
    "  \"params\": [{\"name\": \"path\", \"type\": \"string\", \"required\": true,"
    "                \"default\": null, \"doc\": \"the file\", \"min\": null, \"max\": null}],"
    "  \"returns\": \"raster\"}]";
static const char *status_json =
    "{\"version\": \"0.1.0\", \"uptime_s\": 3725, \"workers\": 4, \"connections\": 1,"
    " \"jobs\": {\"running\": 0, \"completed\": 7, \"failed\": 1, \"cancelled\": 2},"
    " \"memory\": {\"budget_bytes\": 1073741824, \"reserved_bytes\": 0, \"in_use_bytes\": 0,"
    "            \"cached_bytes\": 0, \"peak_bytes\": 2097152}, \"tasks_run\": 99}";

static void script_ops_status(fake *f)
{
    json_t *r;
    while ((r = fk_recv(f)) != NULL) {
        const char *t = json_string_value(json_object_get(r, "type"));
        if (strcmp(t, "ops") == 0) fk_result(f, r, ops_json, NULL, 0);
        if (strcmp(t, "status") == 0) fk_result(f, r, status_json, NULL, 0);
        if (strcmp(t, "ping") == 0) fk_result(f, r, "{\"pong\": true}", NULL, 0);
        json_decref(r);
    }
}

START_TEST(test_ops_status)
{
    fake *f = fk_start_tcp(script_ops_status, NULL);
    pg_error err;
    pg_client *c = pg_client_new(f->addr, 5000, &err);
    ck_assert_ptr_nonnull(c);
    json_t *ops = NULL, *st = NULL;
    ck_assert_int_eq(pg_client_ops(c, &ops, &err), 0);
    assert_json_eq(ops, ops_json);
    ck_assert_int_eq(pg_client_status(c, &st, &err), 0);
    assert_json_eq(st, status_json);
    json_t *v = NULL;
    ck_assert_int_eq(pg_client_request(c, "ping", NULL, &v, &err), 0);
    assert_json_eq(v, "{\"pong\": true}");
    json_decref(ops);
    json_decref(st);
    json_decref(v);
    pg_client_destroy(&c);
    json_t *reqs = fk_join(f);
    /* Increasing ids, one per request. */
    assert_json_eq(reqs, "[{\"id\": 1, \"type\": \"ops\"}, {\"id\": 2, \"type\": \"status\"},"
                         " {\"id\": 3, \"type\": \"ping\"}]");
    json_decref(reqs);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Runs                                                                      */

static void script_run_value(fake *f)
{
    json_t *r = fk_recv(f);
    if (r == NULL) return;
    fk_send(f, fk_event(r, "accepted", "{si}", "tiles", 4), NULL, 0);
    fk_send(f, fk_event(r, "progress", "{sisi}", "done", 2, "total", 4), NULL, 0);
    fk_send(f, fk_event(r, "progress", "{sisi}", "done", 4, "total", 4), NULL, 0);
    fk_result(f, r, "{\"mean\": 2.5, \"count\": 16}", NULL, 0);
    json_decref(r);
    fk_until_eof(f);
}

START_TEST(test_run_value)
{
    fake *f = fk_start_tcp(script_run_value, NULL);
    pg_error err;
    pg_client *c = pg_client_new(f->addr, 5000, &err);
    ck_assert_ptr_nonnull(c);
    const char *graph = "{\"nodes\": {\"a\": {\"op\": \"io.load\", \"path\": \"a.tif\"},"
                        " \"st\": {\"op\": \"global.stats\", \"args\": [{\"ref\": \"a\"}]}},"
                        " \"result\": \"st\"}";
    prog_rec pr = {0};
    pg_run_opts o = {.timeout_ms = 60000, .progress = rec_progress, .userdata = &pr};
    pg_result *res = NULL;
    ck_assert_int_eq(pg_client_run(c, graph, &o, &res, &err), 0);
    ck_assert_ptr_nonnull(res);
    ck_assert_int_eq(pg_result_count(res), 1);
    ck_assert_int_eq(pg_result_is_list(res), 0);
    ck_assert_int_eq(pg_result_item_kind(res, 0), PG_ITEM_VALUE);
    ck_assert_int_eq(pg_result_item_kind(res, 1), PG_ITEM_NONE);
    assert_json_eq(pg_result_item(res, 0), "{\"mean\": 2.5, \"count\": 16}");
    ck_assert_ptr_eq(pg_result_item(res, 0), pg_result_value(res));
    ck_assert_ptr_null(pg_result_path(res, 0));
    ck_assert_ptr_null(pg_result_raster(res, 0));
    ck_assert_ptr_null(pg_result_item(res, 1));
    pg_result_destroy(&res);
    ck_assert_ptr_null(res);

    ck_assert_int_eq(pr.n, 3);
    ck_assert(pr.done[0] == 0 && pr.total[0] == 4);
    ck_assert(pr.done[1] == 2 && pr.total[1] == 4);
    ck_assert(pr.done[2] == 4 && pr.total[2] == 4);
    pg_client_destroy(&c);

    json_t *reqs = fk_join(f);
    ck_assert_int_eq(json_array_size(reqs), 1);
    json_t *want = json_pack("{sisssosbsi}", "id", 1, "type", "run", "graph", jparse(graph),
                             "progress", 1, "timeout_ms", 60000);
    ck_assert(json_equal(json_array_get(reqs, 0), want));
    json_decref(want);
    json_decref(reqs);
}
END_TEST

/* Four items: a written path, a value, and two rasters sharing one
 * attachment. */
static unsigned char att[6 + 8];

static void script_run_items(fake *f)
{
    json_t *r = fk_recv(f);
    if (r == NULL) return;
    fk_send(f, fk_event(r, "accepted", "{si}", "tiles", 1), NULL, 0);
    fk_result(f, r,
              "[{\"path\": \"out/sum.tif\", \"width\": 3, \"height\": 2, \"bands\": 1,"
              "  \"type\": \"f32\"},"
              " {\"min\": 1, \"max\": 6},"
              " {\"raster\": {\"width\": 3, \"height\": 2, \"bands\": 1, \"type\": \"u8\","
              "   \"nodata\": 255, \"geotransform\": [100, 10, 0, 200, 0, -10],"
              "   \"crs\": \"EPSG:32633\"}, \"offset\": 0, \"length\": 6},"
              " {\"raster\": {\"width\": 2, \"height\": 1, \"bands\": 2, \"type\": \"i16\","
              "   \"nodata\": null, \"crs\": null}, \"offset\": 6, \"length\": 8}]",
              att, sizeof att);
    json_decref(r);
    fk_until_eof(f);
}

START_TEST(test_run_items_raster)
{
    for (size_t i = 0; i < sizeof att; i++)
        att[i] = (unsigned char)(i * 37 + 11);
    fake *f = fk_start_unix(script_run_items, NULL);
    pg_error err;
    pg_client *c = pg_client_new(f->addr, 5000, &err);
    ck_assert_msg(c != NULL, "%s", err.message);

    pg_graph *g = pg_graph_new();
    pg_graph_add(g, "saved", "io.save", NULL);
    pg_graph_add(g, "st", "global.stats", NULL);
    pg_graph_add(g, "r1", "io.load", NULL);
    pg_graph_add(g, "r2", "io.load", NULL);
    const char *names[] = {"saved", "st", "r1", "r2"};
    pg_graph_set_results(g, names, 4, NULL);
    pg_result *res = NULL;
    ck_assert_int_eq(pg_client_run_graph(c, g, NULL, &res, &err), 0);
    ck_assert_int_eq(pg_result_count(res), 4);
    ck_assert_int_eq(pg_result_is_list(res), 1);
    ck_assert(json_is_array(pg_result_value(res)));

    ck_assert_int_eq(pg_result_item_kind(res, 0), PG_ITEM_PATH);
    ck_assert_str_eq(pg_result_path(res, 0), "out/sum.tif");
    ck_assert_int_eq(json_integer_value(json_object_get(pg_result_item(res, 0), "width")), 3);

    ck_assert_int_eq(pg_result_item_kind(res, 1), PG_ITEM_VALUE);
    assert_json_eq(pg_result_item(res, 1), "{\"min\": 1, \"max\": 6}");

    ck_assert_int_eq(pg_result_item_kind(res, 2), PG_ITEM_RASTER);
    const pg_raster *ra = pg_result_raster(res, 2);
    ck_assert_ptr_nonnull(ra);
    ck_assert_int_eq(ra->width, 3);
    ck_assert_int_eq(ra->height, 2);
    ck_assert_int_eq(ra->bands, 1);
    ck_assert_str_eq(ra->type, "u8");
    ck_assert_int_eq(ra->has_nodata, 1);
    ck_assert(ra->nodata == 255);
    ck_assert_int_eq(ra->has_geotransform, 1);
    const double gt[6] = {100, 10, 0, 200, 0, -10};
    for (int k = 0; k < 6; k++)
        ck_assert(ra->geotransform[k] == gt[k]);
    ck_assert_str_eq(ra->crs, "EPSG:32633");
    ck_assert_int_eq(ra->length, 6);
    ck_assert_int_eq(ra->length,
                     (size_t)ra->width * ra->height * ra->bands * pg_cell_size(ra->type));
    ck_assert_mem_eq(ra->data, att, 6);

    ra = pg_result_raster(res, 3);
    ck_assert_ptr_nonnull(ra);
    ck_assert_int_eq(ra->width, 2);
    ck_assert_int_eq(ra->bands, 2);
    ck_assert_str_eq(ra->type, "i16");
    ck_assert_int_eq(ra->has_nodata, 0);
    ck_assert_int_eq(ra->has_geotransform, 0);
    ck_assert(ra->geotransform[1] == 1 && ra->geotransform[5] == 1);
    ck_assert_str_eq(ra->crs, "");
    ck_assert_int_eq(ra->length, 8);
    ck_assert_mem_eq(ra->data, att + 6, 8);
    ck_assert_ptr_null(pg_result_raster(res, 0));
    ck_assert_ptr_null(pg_result_path(res, 2));
    pg_result_destroy(&res);
    pg_graph_destroy(&g);
    pg_client_destroy(&c);

    json_t *reqs = fk_join(f);
    json_t *req = json_array_get(reqs, 0);
    /* No callback: the daemon is told not to send progress; no deadline. */
    ck_assert(json_is_false(json_object_get(req, "progress")));
    ck_assert_ptr_null(json_object_get(req, "timeout_ms"));
    assert_json_eq(json_object_get(json_object_get(req, "graph"), "result"),
                   "[\"saved\", \"st\", \"r1\", \"r2\"]");
    json_decref(reqs);
}
END_TEST

static void script_list_value(fake *f)
{
    json_t *r = fk_recv(f);
    if (r) fk_result(f, r, "[1, 2, 3]", NULL, 0);
    json_decref(r);
    fk_until_eof(f);
}

START_TEST(test_run_single_list_value)
{
    /* One result node whose value happens to be a list is one item. */
    fake *f = fk_start_tcp(script_list_value, NULL);
    pg_client *c = pg_client_new(f->addr, 5000, NULL);
    ck_assert_ptr_nonnull(c);
    pg_result *res = NULL;
    ck_assert_int_eq(pg_client_run(c, "{\"nodes\": {}, \"result\": \"h\"}", NULL, &res, NULL), 0);
    ck_assert_int_eq(pg_result_count(res), 1);
    ck_assert_int_eq(pg_result_is_list(res), 0);
    ck_assert_int_eq(pg_result_item_kind(res, 0), PG_ITEM_VALUE);
    assert_json_eq(pg_result_item(res, 0), "[1, 2, 3]");
    pg_result_destroy(&res);
    pg_client_destroy(&c);
    json_decref(fk_join(f));
}
END_TEST

static void script_errors(fake *f)
{
    json_t *r = fk_recv(f);
    if (r == NULL) return;
    /* An invalid graph: error without accepted. */
    fk_error(f, r, "unknown_op", "no operation named 'local.frob'", "s");
    json_decref(r);
    if ((r = fk_recv(f)) == NULL) return;
    fk_send(f, fk_event(r, "accepted", "{si}", "tiles", 2), NULL, 0);
    fk_error(f, r, "io_error", "reading a.tif failed", NULL);
    json_decref(r);
    if ((r = fk_recv(f)) == NULL) return;
    fk_error(f, r, "brand_new_code", "something new", "x");
    json_decref(r);
    if ((r = fk_recv(f)) == NULL) return;
    fk_result(f, r, "42", NULL, 0);
    json_decref(r);
    fk_until_eof(f);
}

START_TEST(test_run_errors)
{
    fake *f = fk_start_tcp(script_errors, NULL);
    pg_error err;
    pg_client *c = pg_client_new(f->addr, 5000, &err);
    ck_assert_ptr_nonnull(c);
    const char *graph = "{\"nodes\": {\"s\": {\"op\": \"local.frob\"}}, \"result\": \"s\"}";
    pg_result *res = (pg_result *)&res; /* must be reset to NULL */
    memset(&err, 0, sizeof err);
    ck_assert_int_eq(pg_client_run(c, graph, NULL, &res, &err), PG_EUNKNOWNOP);
    ck_assert_ptr_null(res);
    ck_assert_int_eq(err.code, PG_EUNKNOWNOP);
    ck_assert_str_eq(err.node, "s");
    ck_assert_str_eq(err.message, "no operation named 'local.frob'");

    ck_assert_int_eq(pg_client_run(c, graph, NULL, &res, &err), PG_EIO);
    ck_assert_str_eq(err.node, "");
    ck_assert_str_eq(err.message, "reading a.tif failed");

    /* A code newer than the library: internal, its name kept. */
    ck_assert_int_eq(pg_client_run(c, graph, NULL, &res, &err), PG_EINTERNAL);
    ck_assert_str_eq(err.node, "x");
    ck_assert_str_eq(err.message, "brand_new_code: something new");

    /* The connection is still fine. */
    ck_assert_int_eq(pg_client_run(c, graph, NULL, &res, &err), 0);
    assert_json_eq(pg_result_value(res), "42");
    pg_result_destroy(&res);

    /* Not JSON: refused before anything is sent. */
    ck_assert_int_eq(pg_client_run(c, "{\"nodes\": ", NULL, &res, &err), PG_EBADJSON);
    ck_assert_int_eq(pg_client_run(c, "[1]", NULL, &res, &err), PG_EINVAL);
    pg_client_destroy(&c);
    json_t *reqs = fk_join(f);
    ck_assert_int_eq(json_array_size(reqs), 4);
    json_decref(reqs);
}
END_TEST

/* Two jobs whose events interleave; the one waited for first finishes
 * last. */
static unsigned char att2[4] = {9, 8, 7, 6};

static void script_concurrent(fake *f)
{
    json_t *a = fk_recv(f), *b = fk_recv(f);
    if (a && b) {
        fk_send(f, fk_event(b, "accepted", "{si}", "tiles", 2), NULL, 0);
        fk_send(f, fk_event(a, "accepted", "{si}", "tiles", 3), NULL, 0);
        fk_send(f, fk_event(b, "progress", "{sisi}", "done", 1, "total", 2), NULL, 0);
        fk_send(f, fk_event(a, "progress", "{sisi}", "done", 1, "total", 3), NULL, 0);
        fk_result(f, b,
                  "{\"raster\": {\"width\": 2, \"height\": 2, \"bands\": 1, \"type\": \"u8\"},"
                  " \"offset\": 0, \"length\": 4}",
                  att2, sizeof att2);
        fk_send(f, fk_event(a, "progress", "{sisi}", "done", 3, "total", 3), NULL, 0);
        fk_result(f, a, "{\"sum\": 10}", NULL, 0);
    }
    json_decref(a);
    json_decref(b);
    fk_until_eof(f);
}

START_TEST(test_concurrent_jobs)
{
    fake *f = fk_start_tcp(script_concurrent, NULL);
    pg_error err;
    pg_client *c = pg_client_new(f->addr, 5000, &err);
    ck_assert_ptr_nonnull(c);
    prog_rec pa = {0}, pb = {0};
    pg_run_opts oa = {.progress = rec_progress, .userdata = &pa};
    pg_run_opts ob = {.progress = rec_progress, .userdata = &pb};
    pg_job ja = 0, jb = 0;
    ck_assert_int_eq(pg_client_submit(c, "{\"nodes\": {}, \"result\": \"a\"}", &oa, &ja, &err), 0);
    ck_assert_int_eq(pg_client_submit(c, "{\"nodes\": {}, \"result\": \"b\"}", &ob, &jb, &err), 0);
    ck_assert(ja > 0 && jb > ja);
    ck_assert_int_eq(pg_client_job_done(c, ja), 0);

    pg_result *ra = NULL, *rb = NULL;
    ck_assert_int_eq(pg_client_wait(c, ja, FK_WAIT_MS, &ra, &err), 0);
    assert_json_eq(pg_result_value(ra), "{\"sum\": 10}");
    /* B's whole life was read while waiting for A, and kept. */
    ck_assert_int_eq(pg_client_job_done(c, jb), 1);
    ck_assert_int_eq(pg_client_job_done(c, ja), 0); /* collected: forgotten */
    ck_assert_int_eq(pg_client_wait(c, jb, 0, &rb, &err), 0);
    const pg_raster *r = pg_result_raster(rb, 0);
    ck_assert_ptr_nonnull(r);
    ck_assert_int_eq(r->length, 4);
    ck_assert_mem_eq(r->data, att2, 4);

    ck_assert_int_eq(pa.n, 3);
    ck_assert(pa.done[0] == 0 && pa.total[0] == 3 && pa.done[1] == 1 && pa.done[2] == 3);
    ck_assert_int_eq(pb.n, 2);
    ck_assert(pb.done[0] == 0 && pb.total[0] == 2 && pb.done[1] == 1 && pb.total[1] == 2);

    /* Each outcome is collected once. */
    ck_assert_int_eq(pg_client_wait(c, ja, 0, NULL, &err), PG_EUNKNOWNJOB);
    ck_assert_int_eq(pg_client_wait(c, 12345, 0, NULL, &err), PG_EUNKNOWNJOB);
    pg_result_destroy(&ra);
    pg_result_destroy(&rb);
    pg_client_destroy(&c);
    json_t *reqs = fk_join(f);
    ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(reqs, 0), "id")), ja);
    ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(reqs, 1), "id")), jb);
    json_decref(reqs);
}
END_TEST

static void script_cancel(fake *f)
{
    json_t *run = fk_recv(f);
    if (run == NULL) return;
    fk_send(f, fk_event(run, "accepted", "{si}", "tiles", 100), NULL, 0);
    json_t *cancel = fk_recv(f);
    if (cancel != NULL) {
        json_t *v = json_pack("{sO}", "cancelled", json_object_get(cancel, "job"));
        fk_send(f, fk_event(cancel, "result", "{so}", "value", v), NULL, 0);
        fk_error(f, run, "cancelled", "the job was cancelled", NULL);
    }
    json_decref(run);
    json_decref(cancel);
    fk_until_eof(f);
}

START_TEST(test_wait_pending_and_cancel)
{
    fake *f = fk_start_tcp(script_cancel, NULL);
    pg_error err;
    pg_client *c = pg_client_new(f->addr, 5000, &err);
    ck_assert_ptr_nonnull(c);
    pg_job job;
    ck_assert_int_eq(pg_client_submit(c, "{\"nodes\": {}, \"result\": \"x\"}", NULL, &job, &err),
                     0);
    pg_result *res = NULL;
    ck_assert_int_eq(pg_client_wait(c, job, 0, &res, &err), PG_PENDING);
    ck_assert_int_eq(pg_client_wait(c, job, 50, &res, &err), PG_PENDING);
    ck_assert_ptr_null(res);
    ck_assert_int_eq(pg_client_cancel(c, job, &err), 0);
    ck_assert_int_eq(pg_client_wait(c, job, FK_WAIT_MS, &res, &err), PG_ECANCELLED);
    ck_assert_int_eq(err.code, PG_ECANCELLED);
    ck_assert_ptr_null(res);
    ck_assert_int_eq(pg_client_cancel(c, job, &err), PG_EUNKNOWNJOB);
    pg_client_destroy(&c);
    json_t *reqs = fk_join(f);
    ck_assert_int_eq(json_array_size(reqs), 2);
    json_t *want =
        json_pack("{sIsssI}", "id", (json_int_t)job + 1, "type", "cancel", "job", (json_int_t)job);
    ck_assert(json_equal(json_array_get(reqs, 1), want));
    json_decref(want);
    json_decref(reqs);
}
END_TEST

static void script_silent_run(fake *f)
{
    /* The client gives up 5 s after the deadline (PG__RUN_GRACE_MS). */
    f->wait_ms = 15000;
    json_t *run = fk_recv(f);
    if (run == NULL) return;
    fk_send(f, fk_event(run, "accepted", "{si}", "tiles", 1), NULL, 0);
    /* Never answers the run; waits for the client's cancel. */
    json_t *cancel = fk_recv(f);
    if (cancel != NULL) {
        fk_result(f, cancel, "{}", NULL, 0);
        fk_error(f, run, "cancelled", "cancelled", NULL);
    }
    json_decref(cancel);
    json_decref(run);
    /* The connection is still usable afterwards. */
    json_t *p = fk_recv(f);
    if (p) fk_result(f, p, "{\"pong\": true}", NULL, 0);
    json_decref(p);
    fk_until_eof(f);
}

START_TEST(test_run_client_timeout)
{
    fake *f = fk_start_tcp(script_silent_run, NULL);
    pg_error err;
    pg_client *c = pg_client_new(f->addr, 5000, &err);
    ck_assert_ptr_nonnull(c);
    pg_run_opts o = {.timeout_ms = 1};
    pg_result *res = NULL;
    ck_assert_int_eq(pg_client_run(c, "{\"nodes\": {}, \"result\": \"x\"}", &o, &res, &err),
                     PG_ETIMEOUT);
    ck_assert_int_eq(err.code, PG_ETIMEOUT);
    /* The late answers to the abandoned run and cancel are dropped. */
    ck_assert_int_eq(pg_client_ping(c, NULL, &err), 0);
    pg_client_destroy(&c);
    json_t *reqs = fk_join(f);
    ck_assert_int_eq(json_array_size(reqs), 3);
    ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(reqs, 0), "timeout_ms")), 1);
    ck_assert_str_eq(json_string_value(json_object_get(json_array_get(reqs, 1), "type")), "cancel");
    ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(reqs, 1), "job")), 1);
    json_decref(reqs);
}
END_TEST

static void script_process(fake *f)
{
    json_t *r = fk_recv(f);
    if (r == NULL) return;
    usleep(20000);
    fk_send(f, fk_event(r, "accepted", "{si}", "tiles", 1), NULL, 0);
    fk_result(f, r, "{\"ok\": 1}", NULL, 0);
    json_decref(r);
    fk_until_eof(f);
}

START_TEST(test_own_poll_loop)
{
    fake *f = fk_start_tcp(script_process, NULL);
    pg_error err;
    pg_client *c = pg_client_new(f->addr, 5000, &err);
    ck_assert_ptr_nonnull(c);
    prog_rec pr = {0};
    pg_run_opts o = {.progress = rec_progress, .userdata = &pr};
    pg_job job;
    ck_assert_int_eq(pg_client_submit(c, "{\"nodes\": {}, \"result\": \"x\"}", &o, &job, &err), 0);
    int ready = 0;
    for (int i = 0; i < 100 && ready == 0; i++) {
        struct pollfd p = {.fd = pg_client_fd(c), .events = POLLIN};
        ck_assert_int_ge(poll(&p, 1, 100), 0);
        ready = pg_client_process(c, 0, &err);
        ck_assert_int_ge(ready, 0);
    }
    ck_assert_int_eq(ready, 1);
    ck_assert_int_eq(pg_client_job_done(c, job), 1);
    ck_assert_int_eq(pr.n, 1);
    pg_result *res = NULL;
    ck_assert_int_eq(pg_client_wait(c, job, 0, &res, &err), 0);
    assert_json_eq(pg_result_value(res), "{\"ok\": 1}");
    pg_result_destroy(&res);
    pg_client_destroy(&c);
    json_decref(fk_join(f));
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Connections and broken daemons                                            */

START_TEST(test_connect_refused)
{
    /* A port nobody listens on: bind one, then close it. */
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    ck_assert_int_eq(bind(s, (struct sockaddr *)&sa, sizeof sa), 0);
    socklen_t sl = sizeof sa;
    getsockname(s, (struct sockaddr *)&sa, &sl);
    close(s);
    char addr[64];
    snprintf(addr, sizeof addr, "127.0.0.1:%d", ntohs(sa.sin_port));

    pg_error err;
    memset(&err, 0, sizeof err);
    errno = 0;
    pg_client *c = pg_client_new(addr, 2000, &err);
    ck_assert_ptr_null(c);
    ck_assert_int_eq(errno, ECONNREFUSED);
    ck_assert_int_eq(err.code, PG_ECONNECT);
    char want[128];
    snprintf(want, sizeof want, "cannot connect to %s: %s", addr, strerror(ECONNREFUSED));
    ck_assert_str_eq(err.message, want);

    c = pg_client_new("unix:/nonexistent/pergolad.sock", 2000, &err);
    ck_assert_ptr_null(c);
    ck_assert_int_eq(err.code, PG_ECONNECT);
    ck_assert_int_eq(errno, ENOENT);
    c = pg_client_new("/nonexistent/pergolad.sock", 2000, &err);
    ck_assert_ptr_null(c);
    ck_assert_int_eq(err.code, PG_ECONNECT);

    ck_assert_ptr_null(pg_client_new("[::1", 2000, &err));
    ck_assert_int_eq(err.code, PG_EINVAL);
    ck_assert_ptr_null(pg_client_new("127.0.0.1:", 2000, &err));
    ck_assert_int_eq(err.code, PG_EINVAL);
}
END_TEST

START_TEST(test_address_forms)
{
    pg_error err;
    /* tcp://, HOST:PORT via PERGOLA_CONNECT, unix:, unix://, a bare path. */
    for (int form = 0; form < 5; form++) {
        fake *f = form < 2 ? fk_start_tcp(script_ping, NULL) : fk_start_unix(script_ping, NULL);
        char addr[300];
        const char *use = addr;
        switch (form) {
        case 0:
            snprintf(addr, sizeof addr, "tcp://127.0.0.1:%d", f->port);
            break;
        case 1:
            setenv("PERGOLA_CONNECT", f->addr, 1);
            ck_assert_str_eq(pg_default_address(), f->addr);
            use = NULL;
            break;
        case 2:
            snprintf(addr, sizeof addr, "unix:%s", f->path);
            break;
        case 3:
            snprintf(addr, sizeof addr, "unix://%s", f->path);
            break;
        default:
            snprintf(addr, sizeof addr, "%s", f->path);
        }
        pg_client *c = pg_client_new(use, 5000, &err);
        ck_assert_msg(c != NULL, "form %d: %s", form, err.message);
        ck_assert_int_eq(pg_client_ping(c, NULL, &err), 0);
        pg_client_destroy(&c);
        json_decref(fk_join(f));
    }
    unsetenv("PERGOLA_CONNECT");
    ck_assert_str_eq(pg_default_address(), "127.0.0.1:7878");
}
END_TEST

static void script_close_mid_run(fake *f)
{
    json_t *r = fk_recv(f);
    if (r == NULL) return;
    fk_send(f, fk_event(r, "accepted", "{si}", "tiles", 10), NULL, 0);
    fk_send(f, fk_event(r, "progress", "{sisi}", "done", 3, "total", 10), NULL, 0);
    if (f->ud != NULL) {
        /* Variant: die in the middle of a raster attachment. */
        const char *line = "{\"id\": 1, \"event\": \"result\", \"bytes\": 100, \"value\": {}}\n";
        fk_write(f, line, strlen(line));
        fk_write(f, "0123456789", 10);
    }
    usleep(10000);
    json_decref(r);
    fk_close(f);
}

START_TEST(test_closed_mid_run)
{
    for (int variant = 0; variant < 2; variant++) {
        fake *f = fk_start_tcp(script_close_mid_run, variant ? (void *)1 : NULL);
        pg_error err;
        pg_client *c = pg_client_new(f->addr, 5000, &err);
        ck_assert_ptr_nonnull(c);
        prog_rec pr = {0};
        pg_run_opts o = {.progress = rec_progress, .userdata = &pr};
        pg_result *res = NULL;
        ck_assert_int_eq(pg_client_run(c, "{\"nodes\": {}, \"result\": \"x\"}", &o, &res, &err),
                         PG_ECLOSED);
        ck_assert_int_eq(err.code, PG_ECLOSED);
        ck_assert_ptr_null(res);
        ck_assert_int_eq(pr.n, 2); /* what came before the end was delivered */
        /* Everything after fails the same way, at once. */
        ck_assert_int_eq(pg_client_ping(c, NULL, &err), PG_ECLOSED);
        ck_assert_int_eq(pg_client_fd(c), -1);
        pg_job job;
        ck_assert_int_eq(pg_client_submit(c, "{}", NULL, &job, &err), PG_ECLOSED);
        pg_client_destroy(&c);
        json_decref(fk_join(f));
    }
}
END_TEST

static void script_garbage(fake *f)
{
    json_t *r = fk_recv(f);
    if (r == NULL) return;
    fk_write(f, "this is not json\n", 17);
    json_decref(r);
    fk_until_eof(f);
}

START_TEST(test_protocol_error)
{
    fake *f = fk_start_tcp(script_garbage, NULL);
    pg_error err;
    pg_client *c = pg_client_new(f->addr, 5000, &err);
    ck_assert_ptr_nonnull(c);
    ck_assert_int_eq(pg_client_ping(c, NULL, &err), PG_EPROTO);
    ck_assert_ptr_nonnull(strstr(err.message, "not a JSON object"));
    pg_client_destroy(&c);
    json_decref(fk_join(f));
}
END_TEST

static void script_bad_offsets(fake *f)
{
    json_t *r = fk_recv(f);
    if (r) {
        static const unsigned char four[4] = {1, 2, 3, 4};
        fk_result(f, r,
                  "{\"raster\": {\"width\": 2, \"height\": 2, \"bands\": 1, \"type\": \"u8\"},"
                  " \"offset\": 2, \"length\": 4}",
                  four, 4);
    }
    json_decref(r);
    /* Ids the daemon could not read come back as null: the oldest
     * unanswered request gets the error. */
    if ((r = fk_recv(f)) != NULL) {
        fk_send(f,
                json_pack("{snss s{ssss}}", "id", "event", "error", "error", "code", "too_large",
                          "message", "the request is larger than 1 MiB"),
                NULL, 0);
    }
    json_decref(r);
    fk_until_eof(f);
}

START_TEST(test_bad_result_and_null_id)
{
    fake *f = fk_start_tcp(script_bad_offsets, NULL);
    pg_error err;
    pg_client *c = pg_client_new(f->addr, 5000, &err);
    ck_assert_ptr_nonnull(c);
    pg_result *res = NULL;
    ck_assert_int_eq(pg_client_run(c, "{\"nodes\": {}, \"result\": \"x\"}", NULL, &res, &err),
                     PG_EPROTO);
    ck_assert_ptr_null(res);
    ck_assert_ptr_nonnull(strstr(err.message, "outside the 4 bytes"));
    ck_assert_int_eq(pg_client_run(c, "{\"nodes\": {}, \"result\": \"x\"}", NULL, &res, &err),
                     PG_ETOOLARGE);
    ck_assert_str_eq(err.message, "the request is larger than 1 MiB");
    pg_client_destroy(&c);
    json_decref(fk_join(f));
}
END_TEST

/* ------------------------------------------------------------------------ */
/* The CLI                                                                   */

static char *slurp(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    if (fp == NULL) return strdup("");
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    char *s = calloc(1, (size_t)n + 1);
    size_t got = fread(s, 1, (size_t)n, fp);
    fclose(fp);
    if (len) *len = got;
    return s;
}

typedef struct {
    int status;
    char *out, *err;
} cli_out;

static char cli_dir[64];

/* Runs `pergola ARGS...` (NULL-terminated) with stdin from STDIN_PATH
 * (NULL: /dev/null); returns its exit status and output. */
static cli_out run_cli(const char *stdin_path, ...)
{
    const char *exe = getenv("PERGOLA_CLI");
    ck_assert_ptr_nonnull(exe);
    ck_assert_msg(access(exe, X_OK) == 0, "%s is not built (ninja pergola)", exe);
    char *argv[32];
    int argc = 0;
    argv[argc++] = (char *)exe;
    va_list ap;
    va_start(ap, stdin_path);
    char *a;
    while ((a = va_arg(ap, char *)) != NULL && argc < 31)
        argv[argc++] = a;
    va_end(ap);
    argv[argc] = NULL;
    char outp[128], errp[128];
    snprintf(outp, sizeof outp, "%s/stdout", cli_dir);
    snprintf(errp, sizeof errp, "%s/stderr", cli_dir);
    const char *inp = stdin_path ? stdin_path : "/dev/null";
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        int in = open(inp, O_RDONLY);
        int o = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (in < 0 || o < 0 || e < 0) _exit(126);
        dup2(in, 0);
        dup2(o, 1);
        dup2(e, 2);
        execv(exe, argv);
        _exit(127);
    }
    int st = 0;
    /* Bounded: kill it if it hangs. */
    for (int i = 0; i < 1000; i++) {
        if (waitpid(pid, &st, WNOHANG) == pid) break;
        if (i == 999) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
        }
        usleep(10000);
    }
    cli_out r = {WIFEXITED(st) ? WEXITSTATUS(st) : -1, slurp(outp, NULL), slurp(errp, NULL)};
    return r;
}

static void cli_free(cli_out *r)
{
    free(r->out);
    free(r->err);
}

static void cli_setup(void)
{
    setup();
    strcpy(cli_dir, "/tmp/pgcli-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(cli_dir));
}

static void cli_teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", cli_dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", cli_dir);
}

static void write_text(const char *path, const char *text)
{
    FILE *fp = fopen(path, "w");
    ck_assert_ptr_nonnull(fp);
    fputs(text, fp);
    fclose(fp);
}

START_TEST(test_cli_basics)
{
    cli_out r = run_cli(NULL, "--version", NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert_str_eq(r.out, "pergola " PG_VERSION "\n");
    cli_free(&r);

    r = run_cli(NULL, "--help", NULL);
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "Exit status:"));
    ck_assert_ptr_nonnull(strstr(r.out, "3  cannot connect"));
    cli_free(&r);

    r = run_cli(NULL, NULL);
    ck_assert_int_eq(r.status, 2);
    cli_free(&r);
    r = run_cli(NULL, "frobnicate", NULL);
    ck_assert_int_eq(r.status, 2);
    ck_assert_ptr_nonnull(strstr(r.err, "unknown command 'frobnicate'"));
    cli_free(&r);
    r = run_cli(NULL, "run", NULL);
    ck_assert_int_eq(r.status, 2);
    cli_free(&r);
    r = run_cli(NULL, "ping", "-c", "zero", NULL);
    ck_assert_int_eq(r.status, 2);
    cli_free(&r);

    char bad[128];
    snprintf(bad, sizeof bad, "%s/bad.json", cli_dir);
    write_text(bad, "{\"nodes\": ");
    r = run_cli(NULL, "--connect", "127.0.0.1:1", "run", bad, NULL);
    ck_assert_int_eq(r.status, 2);
    ck_assert_ptr_nonnull(strstr(r.err, "not valid JSON"));
    cli_free(&r);
    r = run_cli(NULL, "run", "/nonexistent/graph.json", NULL);
    ck_assert_int_eq(r.status, 2);
    cli_free(&r);

    /* Nobody listens on a fresh Unix path. */
    char sock[128], msg[256];
    snprintf(sock, sizeof sock, "%s/none.sock", cli_dir);
    r = run_cli(NULL, "--connect", sock, "ping", NULL);
    ck_assert_int_eq(r.status, 3);
    snprintf(msg, sizeof msg, "pergola: cannot connect to %s: %s (is pergolad running?)\n", sock,
             strerror(ENOENT));
    ck_assert_str_eq(r.err, msg);
    cli_free(&r);
}
END_TEST

static void script_cli_run(fake *f)
{
    json_t *r = fk_recv(f);
    if (r == NULL) return;
    fk_send(f, fk_event(r, "accepted", "{si}", "tiles", 1), NULL, 0);
    fk_result(f, r,
              "[{\"path\": \"out/sum.tif\", \"width\": 3, \"height\": 2, \"bands\": 1,"
              "  \"type\": \"f32\"},"
              " {\"mean\": 2.5},"
              " {\"raster\": {\"width\": 3, \"height\": 2, \"bands\": 1, \"type\": \"u8\","
              "   \"nodata\": 255, \"geotransform\": [100, 10, 0, 200, 0, -10],"
              "   \"crs\": \"EPSG:32633\"}, \"offset\": 0, \"length\": 6}]",
              att, 6);
    json_decref(r);
    fk_until_eof(f);
}

static void script_cli_error(fake *f)
{
    json_t *r = fk_recv(f);
    if (r) fk_error(f, r, "unknown_op", "no operation named 'local.frob'", "s");
    json_decref(r);
    fk_until_eof(f);
}

START_TEST(test_cli_run)
{
    for (size_t i = 0; i < sizeof att; i++)
        att[i] = (unsigned char)(i * 37 + 11);
    char graph[128], out[128];
    snprintf(graph, sizeof graph, "%s/g.json", cli_dir);
    snprintf(out, sizeof out, "%s/cells.bin", cli_dir);
    write_text(graph, "{\"nodes\": {}, \"result\": [\"saved\", \"st\", \"r\"]}");

    fake *f = fk_start_tcp(script_cli_run, NULL);
    cli_out r = run_cli(NULL, "--connect", f->addr, "run", graph, "--output", out, NULL);
    json_t *reqs = fk_join(f);
    ck_assert_msg(r.status == 0, "status %d, stderr: %s", r.status, r.err);
    ck_assert_str_eq(r.out, "saved:\n"
                            "wrote out/sum.tif (3 x 2, 1 band, f32)\n"
                            "\n"
                            "st:\n"
                            "{\n  \"mean\": 2.5\n}\n"
                            "\n"
                            "r:\n"
                            "raster 3 x 2, 1 band, u8, nodata 255\n"
                            "geotransform [100, 10, 0, 200, 0, -10]\n"
                            "crs EPSG:32633\n");
    char want_err[256];
    snprintf(want_err, sizeof want_err, "pergola: wrote 6 bytes to %s\n", out);
    ck_assert_str_eq(r.err, want_err); /* not a tty: no progress line */
    size_t n = 0;
    char *cells = slurp(out, &n);
    ck_assert_int_eq(n, 6);
    ck_assert_mem_eq(cells, att, 6);
    free(cells);
    cli_free(&r);
    /* The graph went out as read; no progress requested off a tty. */
    json_t *req = json_array_get(reqs, 0);
    assert_json_eq(json_object_get(req, "graph"),
                   "{\"nodes\": {}, \"result\": [\"saved\", \"st\", \"r\"]}");
    ck_assert(json_is_false(json_object_get(req, "progress")));
    json_decref(reqs);

    /* --json, graph from stdin, --timeout sent along, --quiet. */
    f = fk_start_tcp(script_cli_run, NULL);
    r = run_cli(graph, "-C", f->addr, "run", "-", "--json", "--quiet", "--timeout", "9000", NULL);
    reqs = fk_join(f);
    ck_assert_msg(r.status == 0, "status %d, stderr: %s", r.status, r.err);
    json_t *printed = jparse(r.out);
    ck_assert_int_eq(json_array_size(printed), 3);
    assert_json_eq(json_array_get(printed, 1), "{\"mean\": 2.5}");
    json_decref(printed);
    ck_assert_str_eq(r.err, "");
    ck_assert_int_eq(json_integer_value(json_object_get(json_array_get(reqs, 0), "timeout_ms")),
                     9000);
    json_decref(reqs);
    cli_free(&r);

    /* Without --output: says how many bytes came. */
    f = fk_start_tcp(script_cli_run, NULL);
    r = run_cli(NULL, "-C", f->addr, "run", graph, NULL);
    json_decref(fk_join(f));
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "received 6 bytes"));
    cli_free(&r);

    /* A daemon error: exit 1 and the promised line. */
    f = fk_start_tcp(script_cli_error, NULL);
    r = run_cli(NULL, "-C", f->addr, "run", graph, NULL);
    json_decref(fk_join(f));
    ck_assert_int_eq(r.status, 1);
    ck_assert_str_eq(r.err, "pergola: error unknown_op at node s: no operation named "
                            "'local.frob'\n");
    ck_assert_str_eq(r.out, "");
    cli_free(&r);

    /* The daemon going away mid-run: exit 3. */
    f = fk_start_tcp(script_close_mid_run, NULL);
    r = run_cli(NULL, "-C", f->addr, "run", graph, NULL);
    json_decref(fk_join(f));
    ck_assert_int_eq(r.status, 3);
    ck_assert_ptr_nonnull(strstr(r.err, "connection lost"));
    cli_free(&r);
}
END_TEST

START_TEST(test_cli_ops_status_ping)
{
    fake *f = fk_start_tcp(script_ops_status, NULL);
    cli_out r = run_cli(NULL, "-C", f->addr, "ops", NULL);
    json_decref(fk_join(f));
    ck_assert_msg(r.status == 0, "stderr: %s", r.err);
    ck_assert_ptr_nonnull(strstr(r.out, "local.add"));
    ck_assert_ptr_nonnull(strstr(r.out, "2 or more (raster or number)"));
    ck_assert_ptr_nonnull(strstr(r.out, "path           string    required  the file"));
    ck_assert_ptr_nonnull(strstr(r.out, "2 operations"));
    cli_free(&r);

    f = fk_start_tcp(script_ops_status, NULL);
    r = run_cli(NULL, "-C", f->addr, "ops", "--json", NULL);
    json_decref(fk_join(f));
    ck_assert_int_eq(r.status, 0);
    json_t *j = jparse(r.out);
    assert_json_eq(j, ops_json);
    json_decref(j);
    cli_free(&r);

    f = fk_start_tcp(script_ops_status, NULL);
    r = run_cli(NULL, "-C", f->addr, "status", NULL);
    json_decref(fk_join(f));
    ck_assert_int_eq(r.status, 0);
    ck_assert_ptr_nonnull(strstr(r.out, "uptime       0d 01:02:05\n"));
    ck_assert_ptr_nonnull(strstr(r.out, "0 running, 7 completed, 1 failed, 2 cancelled"));
    ck_assert_ptr_nonnull(strstr(r.out, "budget 1.0 GiB"));
    cli_free(&r);

    f = fk_start_tcp(script_ops_status, NULL);
    r = run_cli(NULL, "-C", f->addr, "ping", "-c", "3", "-i", "1", NULL);
    json_t *reqs = fk_join(f);
    ck_assert_int_eq(r.status, 0);
    ck_assert_int_eq(json_array_size(reqs), 3);
    ck_assert_ptr_nonnull(strstr(r.out, "seq=3"));
    ck_assert_ptr_nonnull(strstr(r.out, "3 of 3 pings answered"));
    json_decref(reqs);
    cli_free(&r);
}
END_TEST

static Suite *client_suite(void)
{
    Suite *s = suite_create("client");
    TCase *tc = tcase_create("graph");
    tcase_add_test(tc, test_graph_readme_example);
    tcase_add_test(tc, test_graph_params_and_results);
    tcase_add_test(tc, test_graph_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("requests");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_ping);
    tcase_add_test(tc, test_ops_status);
    tcase_add_test(tc, test_run_value);
    tcase_add_test(tc, test_run_items_raster);
    tcase_add_test(tc, test_run_single_list_value);
    tcase_add_test(tc, test_run_errors);
    tcase_add_test(tc, test_concurrent_jobs);
    tcase_add_test(tc, test_wait_pending_and_cancel);
    tcase_add_test(tc, test_run_client_timeout);
    tcase_add_test(tc, test_own_poll_loop);
    suite_add_tcase(s, tc);

    tc = tcase_create("connection");
    tcase_add_checked_fixture(tc, setup, NULL);
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, test_connect_refused);
    tcase_add_test(tc, test_address_forms);
    tcase_add_test(tc, test_closed_mid_run);
    tcase_add_test(tc, test_protocol_error);
    tcase_add_test(tc, test_bad_result_and_null_id);
    suite_add_tcase(s, tc);

    if (getenv("PERGOLA_CLI") != NULL) {
        tc = tcase_create("cli");
        tcase_add_checked_fixture(tc, cli_setup, cli_teardown);
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_cli_basics);
        tcase_add_test(tc, test_cli_run);
        tcase_add_test(tc, test_cli_ops_status_ping);
        suite_add_tcase(s, tc);
    } else {
        fprintf(stderr, "PERGOLA_CLI is not set: skipping the CLI tests\n");
    }
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(client_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
