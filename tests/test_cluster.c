/* Suite "cluster": the "cluster" config (src/config.c) and the transport of
 * src/cluster.c seen from outside: this test plays peer "b" with raw
 * libzmq CURVE sockets against one real pergolad (node "a") and checks the
 * events that come back for its `run` and `cancel` messages, its
 * heartbeats, and that a client with an unknown key gets nothing and is
 * logged. */
#include "cluster.h"
#include "config.h"
#include "harness.h"
#include "loop.h"
#include "runtime.h"

#include <check.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

static char tmpdir[256];

static void setup(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pergola-cluster-unit-XXXXXX");
    ck_assert_ptr_nonnull(mkdtemp(tmpdir));
}

static void teardown(void)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    ck_assert_int_eq(system(cmd), 0);
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
}

static int free_tcp_port(void)
{
    void *ctx = zmq_ctx_new();
    void *probe = zmq_socket(ctx, ZMQ_ROUTER);
    ck_assert_int_eq(zmq_bind(probe, "tcp://127.0.0.1:*"), 0);
    char ep[64];
    size_t n = sizeof ep;
    zmq_getsockopt(probe, ZMQ_LAST_ENDPOINT, ep, &n);
    zmq_close(probe);
    zmq_ctx_term(ctx);
    return atoi(strrchr(ep, ':') + 1);
}

/* Three key pairs; secrets written to tmpdir/keys/{a,b,c}.secret. */
static char pub[3][41], sec[3][41];

static void make_keys(void)
{
    char dir[300];
    snprintf(dir, sizeof dir, "%s/keys", tmpdir);
    mkdir(dir, 0700);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(pg_cluster_keygen(pub[i], sec[i]), 0);
        ck_assert_uint_eq(strlen(pub[i]), 40);
        char path[400], line[64];
        snprintf(path, sizeof path, "%s/%c.secret", dir, 'a' + i);
        snprintf(line, sizeof line, "%s\n", sec[i]);
        write_text(path, line);
    }
}

/* A valid cluster object for nodes a, b, c (new reference). */
static json_t *good_cluster(void)
{
    return json_pack("{s:[{s:s, s:s, s:s}, {s:s, s:s, s:s}, {s:s, s:s, s:s}], s:s, s:{s:[s, s]}}",
                     "nodes", "name", "a", "endpoint", "tcp://127.0.0.1:7101", "public_key", pub[0],
                     "name", "b", "endpoint", "tcp://127.0.0.1:7102", "public_key", pub[1], "name",
                     "c", "endpoint", "tcp://127.0.0.1:7103", "public_key", pub[2],
                     "secret_key_file", "keys/{node}.secret", "pools", "ab", "a", "b");
}

/* Writes {"cluster": CL} (stolen) to tmpdir/c.json; returns its path. */
static const char *write_config(json_t *cl)
{
    static char path[320];
    snprintf(path, sizeof path, "%s/c.json", tmpdir);
    json_t *o = json_pack("{s:o}", "cluster", cl);
    ck_assert_int_eq(json_dump_file(o, path, 0), 0);
    json_decref(o);
    return path;
}

/* Loads CL (stolen) as a file; expects CODE and the message "FILE: WANT"
 * (WANT may be a prefix when PREFIX is set). */
static void expect_load(json_t *cl, int code, const char *want, bool prefix)
{
    const char *path = write_config(cl);
    pg_config c;
    pg_config_defaults(&c);
    pg_error err = {0};
    int rc = pg_config_load_file(&c, path, &err);
    ck_assert_int_eq(rc, code);
    if (code != 0) {
        char exp[1200];
        snprintf(exp, sizeof exp, "%s: %s", path, want);
        if (prefix)
            ck_assert_msg(strncmp(err.message, exp, strlen(exp)) == 0, "got '%s', want '%s...'",
                          err.message, exp);
        else
            ck_assert_str_eq(err.message, exp);
        ck_assert(!c.cluster.enabled); /* a failed load changes nothing */
    }
    pg_config_clear(&c);
}

/* pergolad's command line: --config PATH --node NODE. */
static int from_args(const char *path, const char *node, pg_config *c, pg_error *err)
{
    char *argv[] = {"pergolad", "--config", (char *)path, "--node", (char *)node, NULL};
    pg_config_defaults(c);
    return pg_config_from_args(c, node ? 5 : 3, argv, err);
}

START_TEST(config_good)
{
    make_keys();
    const char *path = write_config(good_cluster());
    pg_config c;
    pg_error err = {0};
    ck_assert_int_eq(from_args(path, "b", &c, &err), 0);
    ck_assert(c.cluster.enabled);
    ck_assert_int_eq(c.cluster.nnodes, 3);
    ck_assert_int_eq(c.cluster.self, 1);
    ck_assert_str_eq(c.cluster.node, "b");
    ck_assert_str_eq(c.cluster.secret_key, sec[1]);
    ck_assert_str_eq(c.cluster.nodes[2].endpoint, "tcp://127.0.0.1:7103");
    ck_assert_int_eq(c.cluster.npools, 1);
    ck_assert_str_eq(c.cluster.pools[0].name, "ab");
    ck_assert_int_eq(c.cluster.pools[0].nmembers, 2);
    ck_assert_int_eq(c.cluster.heartbeat_ms, 1000);
    ck_assert_int_eq(c.cluster.peer_timeout_ms, 3000);
    ck_assert_int_eq(c.cluster.call_timeout_ms, 60000);
    ck_assert_int_eq(c.cluster.max_calls_per_peer, 8);
    pg_config_clear(&c);

    /* "node" in the file, no flag; an absolute key path. */
    json_t *cl = good_cluster();
    char abs[400];
    snprintf(abs, sizeof abs, "%s/keys/{node}.secret", tmpdir);
    json_object_set_new(cl, "secret_key_file", json_string(abs));
    json_object_set_new(cl, "node", json_string("c"));
    json_object_set_new(cl, "heartbeat_ms", json_integer(50));
    json_object_set_new(cl, "peer_timeout_ms", json_integer(200));
    path = write_config(cl);
    ck_assert_int_eq(from_args(path, NULL, &c, &err), 0);
    ck_assert_int_eq(c.cluster.self, 2);
    ck_assert_str_eq(c.cluster.secret_key, sec[2]);
    ck_assert_int_eq(c.cluster.heartbeat_ms, 50);
    pg_config_clear(&c);
    /* The flag overrides the file. */
    ck_assert_int_eq(from_args(path, "a", &c, &err), 0);
    ck_assert_int_eq(c.cluster.self, 0);
    ck_assert_str_eq(c.cluster.secret_key, sec[0]);
    pg_config_clear(&c);

    /* No cluster: single node, --node refused. */
    write_text(abs, "{}");
    ck_assert_int_eq(from_args(abs, NULL, &c, &err), 0);
    ck_assert(!c.cluster.enabled);
    pg_config_clear(&c);
    ck_assert_int_eq(from_args(abs, "a", &c, &err), PG_ECONFIG);
    ck_assert_str_eq(err.message, "--node: the configuration has no \"cluster\" (see --config)");
    pg_config_clear(&c);
}
END_TEST

START_TEST(config_errors)
{
    make_keys();
    json_t *cl;

    cl = good_cluster();
    json_object_del(cl, "nodes");
    expect_load(cl, PG_ECONFIG, "cluster.nodes: is required", false);

    cl = good_cluster();
    json_object_set_new(json_array_get(json_object_get(cl, "nodes"), 1), "name", json_string("a"));
    expect_load(cl, PG_ECONFIG, "cluster.nodes[1].name: duplicate node name 'a'", false);

    cl = good_cluster();
    json_object_set_new(json_array_get(json_object_get(cl, "nodes"), 1), "endpoint",
                        json_string("http://127.0.0.1:80"));
    expect_load(cl, PG_ECONFIG,
                "cluster.nodes[1].endpoint: 'http://127.0.0.1:80' is not tcp://HOST:PORT", true);

    cl = good_cluster();
    json_object_set_new(json_array_get(json_object_get(cl, "nodes"), 2), "endpoint",
                        json_string("tcp://127.0.0.1:0"));
    expect_load(cl, PG_ECONFIG, "cluster.nodes[2].endpoint: 'tcp://127.0.0.1:0' is not", true);

    cl = good_cluster();
    json_object_set_new(json_array_get(json_object_get(cl, "nodes"), 0), "public_key",
                        json_string("tooshort"));
    expect_load(cl, PG_ECONFIG,
                "cluster.nodes[0].public_key: must be a CURVE public key: 40 Z85 characters "
                "(pergola keygen)",
                false);

    cl = good_cluster();
    json_object_set_new(json_array_get(json_object_get(cl, "nodes"), 2), "public_key",
                        json_string(pub[0]));
    expect_load(cl, PG_ECONFIG, "cluster.nodes[2].public_key: is also the key of node 'a'", false);

    cl = good_cluster();
    json_object_set_new(json_array_get(json_object_get(cl, "nodes"), 0), "port", json_integer(1));
    expect_load(cl, PG_ECONFIG, "cluster.nodes[0].port: unknown key", false);

    cl = good_cluster();
    json_object_set_new(cl, "pools", json_pack("{s:[s, s]}", "p", "a", "z"));
    expect_load(cl, PG_ECONFIG, "cluster.pools.p[1]: 'z' is not in cluster.nodes", false);

    cl = good_cluster();
    json_object_set_new(cl, "pools", json_pack("{s:[s]}", "b", "a"));
    expect_load(cl, PG_ECONFIG, "cluster.pools.b: a pool cannot have the name of a node", false);

    cl = good_cluster();
    json_object_set_new(cl, "node", json_string("z"));
    expect_load(cl, PG_ECONFIG, "cluster.node: 'z' is not in cluster.nodes", false);

    cl = good_cluster();
    json_object_set_new(cl, "colour", json_string("blue"));
    expect_load(cl, PG_ECONFIG, "cluster.colour: unknown key", false);

    cl = good_cluster();
    json_object_set_new(cl, "heartbeat_ms", json_integer(5000));
    expect_load(cl, PG_ECONFIG,
                "cluster.peer_timeout_ms: must be longer than cluster.heartbeat_ms (5000), or "
                "every peer is always down",
                false);

    cl = good_cluster();
    json_object_set_new(cl, "max_calls_per_peer", json_integer(0));
    expect_load(cl, PG_ECONFIG, "cluster.max_calls_per_peer: must be an integer in 1..1000000",
                false);

    cl = good_cluster();
    json_object_set_new(cl, "distribute", json_string("kmeans"));
    expect_load(cl, PG_ECONFIG,
                "cluster.distribute: must be false, true, \"hilbert\", \"round_robin\" or "
                "\"by_input\"",
                false);

    cl = good_cluster();
    json_object_set_new(cl, "distribute", json_integer(1));
    expect_load(cl, PG_ECONFIG,
                "cluster.distribute: must be false, true, \"hilbert\", \"round_robin\" or "
                "\"by_input\"",
                false);

    cl = good_cluster();
    json_object_del(cl, "secret_key_file");
    expect_load(cl, PG_ECONFIG,
                "cluster.secret_key_file: is required (this node's CURVE secret key)", false);
}
END_TEST

/* Errors that need the node: the secret key file. */
START_TEST(config_secret_key_errors)
{
    make_keys();
    pg_config c;
    pg_error err = {0};
    char want[1200];

    /* No node at all. */
    const char *path = write_config(good_cluster());
    ck_assert_int_eq(from_args(path, NULL, &c, &err), PG_ECONFIG);
    snprintf(want, sizeof want,
             "%s: cluster.node: which node is this? set cluster.node or pass --node NAME", path);
    ck_assert_str_eq(err.message, want);
    pg_config_clear(&c);

    ck_assert_int_eq(from_args(path, "zz", &c, &err), PG_ECONFIG);
    ck_assert_str_eq(err.message, "--node: 'zz' is not in cluster.nodes");
    pg_config_clear(&c);

    /* Unreadable. */
    char kp[400];
    snprintf(kp, sizeof kp, "%s/keys/b.secret", tmpdir);
    unlink(kp);
    ck_assert_int_eq(from_args(path, "b", &c, &err), PG_ECONFIG);
    snprintf(want, sizeof want,
             "%s: cluster.secret_key_file: cannot read '%s/keys/b.secret': No such file or "
             "directory",
             path, tmpdir);
    ck_assert_str_eq(err.message, want);
    pg_config_clear(&c);

    /* Badly formed. */
    write_text(kp, "not a key\n");
    ck_assert_int_eq(from_args(path, "b", &c, &err), PG_ECONFIG);
    snprintf(want, sizeof want,
             "%s: cluster.secret_key_file: '%s/keys/b.secret' does not hold a CURVE secret key "
             "(40 Z85 characters)",
             path, tmpdir);
    ck_assert_str_eq(err.message, want);
    pg_config_clear(&c);

    /* Tampered: one character changed, still valid Z85. */
    char t[64];
    snprintf(t, sizeof t, "%s\n", sec[1]);
    t[7] = t[7] == 'a' ? 'b' : 'a';
    write_text(kp, t);
    ck_assert_int_eq(from_args(path, "b", &c, &err), PG_ECONFIG);
    snprintf(want, sizeof want,
             "%s: cluster.secret_key_file: the secret key in '%s/keys/b.secret' does not match "
             "cluster.nodes[1].public_key of node 'b'",
             path, tmpdir);
    ck_assert_str_eq(err.message, want);
    pg_config_clear(&c);

    /* Another node's key. */
    snprintf(t, sizeof t, "%s\n", sec[0]);
    write_text(kp, t);
    ck_assert_int_eq(from_args(path, "b", &c, &err), PG_ECONFIG);
    ck_assert_str_eq(err.message, want);
    pg_config_clear(&c);
}
END_TEST

/* The committed example: its keys match, each node gets its own listen. */
START_TEST(config_example)
{
    const char *src = getenv("PERGOLA_SRCDIR");
    ck_assert_ptr_nonnull(src);
    const char *files[] = {"conf/cluster.json", "conf/cluster-docker.json"};
    for (size_t f = 0; f < 2; f++) {
        char path[600];
        snprintf(path, sizeof path, "%s/%s", src, files[f]);
        for (int i = 0; i < 3; i++) {
            char node[2] = {(char)('a' + i), 0};
            pg_config c;
            pg_error err = {0};
            int rc = from_args(path, node, &c, &err);
            ck_assert_msg(rc == 0, "%s --node %s: %s", path, node, err.message);
            ck_assert_int_eq(c.cluster.self, i);
            ck_assert_int_eq(c.cluster.nnodes, 3);
            ck_assert_int_eq(c.nlisten, 1);
            if (f == 0) {
                char want[32];
                snprintf(want, sizeof want, "127.0.0.1:%d", 7878 + i);
                ck_assert_str_eq(c.listen[0], want);
            }
            pg_config_clear(&c);
        }
    }
}
END_TEST

/* ---- the transport, from a fake peer ---- */

static th_daemon D;
static void *zctx;
static char fake_endpoint[64];

static void *curve_dealer(const char *routing, const char *server_pub, const char *mypub,
                          const char *mysec, const char *endpoint)
{
    void *s = zmq_socket(zctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_ROUTING_ID, routing, strlen(routing));
    zmq_setsockopt(s, ZMQ_CURVE_SERVERKEY, server_pub, 40);
    zmq_setsockopt(s, ZMQ_CURVE_PUBLICKEY, mypub, 40);
    zmq_setsockopt(s, ZMQ_CURVE_SECRETKEY, mysec, 40);
    ck_assert_int_eq(zmq_connect(s, endpoint), 0);
    return s;
}

/* Receives one multipart message within TIMEOUT_MS: the header (parsed,
 * new reference) and, if there is one, frame 1 into *DATA (malloc'd). */
static json_t *recv_json(void *s, int timeout_ms, void **data, size_t *len)
{
    zmq_pollitem_t it = {s, 0, ZMQ_POLLIN, 0};
    if (zmq_poll(&it, 1, timeout_ms) != 1) return NULL;
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, s, 0) < 0) return NULL;
    json_error_t je;
    json_t *o = json_loadb(zmq_msg_data(&m), zmq_msg_size(&m), 0, &je);
    int more = zmq_msg_more(&m);
    zmq_msg_close(&m);
    if (data) *data = NULL;
    if (len) *len = 0;
    while (more) {
        zmq_msg_init(&m);
        zmq_msg_recv(&m, s, 0);
        more = zmq_msg_more(&m);
        if (data && *data == NULL) {
            *len = zmq_msg_size(&m);
            *data = malloc(*len ? *len : 1);
            memcpy(*data, zmq_msg_data(&m), *len);
        }
        zmq_msg_close(&m);
    }
    return o;
}

static void send_text(void *s, const char *text)
{
    ck_assert_int_eq(zmq_send(s, text, strlen(text), 0), (int)strlen(text));
}

/* The next event for CALL that is not "accepted". */
static json_t *next_event(void *s, long long call, void **data, size_t *len)
{
    for (int i = 0; i < 20; i++) {
        json_t *ev = recv_json(s, 20000, data, len);
        ck_assert_msg(ev != NULL, "no event for call %lld", call);
        ck_assert_str_eq(json_string_value(json_object_get(ev, "type")), "event");
        ck_assert_int_eq(json_integer_value(json_object_get(ev, "call")), call);
        const char *e = json_string_value(json_object_get(ev, "event"));
        if (strcmp(e, "accepted") != 0 && strcmp(e, "progress") != 0) return ev;
        json_decref(ev);
        if (data) free(*data);
    }
    ck_abort_msg("too many events");
    return NULL;
}

static int log_contains(const char *needle)
{
    FILE *f = fopen(D.log, "r");
    if (f == NULL) return 0;
    char line[8192];
    int found = 0;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

/* Node a (real) and b (this test), with keys of tmpdir; starts a. */
static void start_node_a(void)
{
    make_keys();
    /* b's endpoint: the test binds a ROUTER there to get a's heartbeats. */
    zctx = zmq_ctx_new();
    json_t *cl = json_pack("{s:[{s:s, s:s, s:s}, {s:s, s:s, s:s}], s:s, s:i, s:i}", "nodes", "name",
                           "a", "endpoint", "tcp://127.0.0.1:0", "public_key", pub[0], "name", "b",
                           "endpoint", "tcp://127.0.0.1:0", "public_key", pub[1], "secret_key_file",
                           "keys/{node}.secret", "heartbeat_ms", 100, "peer_timeout_ms", 1000);
    /* Ports: a random free pair would race; ZeroMQ binds port 0 only
     * through "*" wildcards, so pick two with the kernel's help. */
    int ports[2];
    for (int i = 0; i < 2; i++) {
        void *probe = zmq_socket(zctx, ZMQ_ROUTER);
        ck_assert_int_eq(zmq_bind(probe, "tcp://127.0.0.1:*"), 0);
        char ep[64];
        size_t n = sizeof ep;
        zmq_getsockopt(probe, ZMQ_LAST_ENDPOINT, ep, &n);
        ports[i] = atoi(strrchr(ep, ':') + 1);
        zmq_close(probe);
    }
    char ep[64];
    snprintf(ep, sizeof ep, "tcp://127.0.0.1:%d", ports[0]);
    json_object_set_new(json_array_get(json_object_get(cl, "nodes"), 0), "endpoint",
                        json_string(ep));
    snprintf(fake_endpoint, sizeof fake_endpoint, "tcp://127.0.0.1:%d", ports[1]);
    json_object_set_new(json_array_get(json_object_get(cl, "nodes"), 1), "endpoint",
                        json_string(fake_endpoint));
    const char *path = write_config(cl);
    th_root_init(&D);
    const char *extra[] = {"--config", path, "--node", "a", NULL};
    ck_assert_int_eq(th_start(&D, extra), 0);
}

static const char *a_endpoint(void)
{
    static char ep[64];
    int port = 0;
    /* a's endpoint is in the config; read it back. */
    char path[320];
    snprintf(path, sizeof path, "%s/c.json", tmpdir);
    json_error_t je;
    json_t *o = json_load_file(path, 0, &je);
    const char *e = json_string_value(json_object_get(
        json_array_get(json_object_get(json_object_get(o, "cluster"), "nodes"), 0), "endpoint"));
    snprintf(ep, sizeof ep, "%s", e ? e : "");
    json_decref(o);
    (void)port;
    return ep;
}

static void stop_node_a(void)
{
    ck_assert_int_eq(th_stop(&D), 0);
    th_cleanup(&D);
    zmq_ctx_term(zctx);
}

START_TEST(transport_calls)
{
    start_node_a();
    void *b = curve_dealer("b", pub[0], pub[1], sec[1], a_endpoint());

    /* A value: global.stats of a 16x16 constant 1: count 256, sum 256. */
    send_text(b,
              "{\"type\":\"run\",\"call\":7,\"graph\":{\"nodes\":{\"s\":{\"op\":\"global.stats\","
              "\"args\":[{\"op\":\"raster.constant\",\"width\":16,\"height\":16,\"value\":1,"
              "\"type\":\"f32\"}]}},\"result\":\"s\"}}");
    json_t *ev = recv_json(b, 20000, NULL, NULL);
    ck_assert_ptr_nonnull(ev);
    ck_assert_str_eq(json_string_value(json_object_get(ev, "event")), "accepted");
    ck_assert_int_eq(json_integer_value(json_object_get(ev, "call")), 7);
    json_decref(ev);
    ev = next_event(b, 7, NULL, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(ev, "event")), "result");
    json_t *v = json_object_get(ev, "value");
    ck_assert_int_eq(json_integer_value(json_object_get(v, "count")), 256);
    ck_assert(json_real_value(json_object_get(v, "sum")) == 256.0);
    ck_assert(json_real_value(json_object_get(v, "stddev")) == 0.0);
    json_decref(ev);

    /* A raster: its cells come as frame 1, "bytes" long. 4x2 f32 of 2.5. */
    send_text(
        b, "{\"type\":\"run\",\"call\":8,\"graph\":{\"nodes\":{\"c\":{\"op\":\"raster.constant\","
           "\"width\":4,\"height\":2,\"value\":2.5,\"type\":\"f32\"}},\"result\":\"c\"}}");
    void *data = NULL;
    size_t len = 0;
    ev = next_event(b, 8, &data, &len);
    ck_assert_str_eq(json_string_value(json_object_get(ev, "event")), "result");
    ck_assert_int_eq(json_integer_value(json_object_get(ev, "bytes")), 32);
    ck_assert_uint_eq(len, 32);
    json_t *r = json_object_get(json_object_get(ev, "value"), "raster");
    ck_assert_int_eq(json_integer_value(json_object_get(r, "width")), 4);
    ck_assert_str_eq(json_string_value(json_object_get(r, "type")), "f32");
    for (int i = 0; i < 8; i++) {
        float f;
        memcpy(&f, (char *)data + 4 * i, 4);
        ck_assert(f == 2.5f);
    }
    free(data);
    json_decref(ev);

    /* A bad graph: its error, with code and node. */
    send_text(b,
              "{\"type\":\"run\",\"call\":9,\"graph\":{\"nodes\":{\"x\":{\"op\":\"local.nope\"}},"
              "\"result\":\"x\"}}");
    ev = next_event(b, 9, NULL, NULL);
    ck_assert_str_eq(json_string_value(json_object_get(ev, "event")), "error");
    ck_assert_str_eq(th_code(ev), "unknown_op");
    ck_assert_str_eq(th_node(ev), "x");
    json_decref(ev);

    /* A bad request: the same validation as a client's. */
    send_text(b, "{\"type\":\"run\",\"call\":10}");
    ev = next_event(b, 10, NULL, NULL);
    ck_assert_str_eq(th_code(ev), "bad_request");
    json_decref(ev);
    send_text(b, "{\"type\":\"run\",\"call\":11,\"graph\":{},\"colour\":1}");
    ev = next_event(b, 11, NULL, NULL);
    ck_assert_str_eq(th_code(ev), "bad_request");
    json_decref(ev);

    /* Cancel: a long job (4e9 cells to reduce) is cancelled by call id. */
    send_text(b, "{\"type\":\"run\",\"call\":12,\"timeout_ms\":60000,\"graph\":{\"nodes\":{\"s\":{"
                 "\"op\":\"global.stats\",\"args\":[{\"op\":\"raster.constant\",\"width\":"
                 "65536,\"height\":65536,\"value\":1,\"type\":\"u8\"}]}},\"result\":\"s\"}}");
    ev = recv_json(b, 20000, NULL, NULL);
    ck_assert_ptr_nonnull(ev);
    ck_assert_str_eq(json_string_value(json_object_get(ev, "event")), "accepted");
    json_decref(ev);
    send_text(b, "{\"type\":\"cancel\",\"call\":12}");
    ev = next_event(b, 12, NULL, NULL);
    ck_assert_str_eq(th_code(ev), "cancelled");
    json_decref(ev);

    /* The peer's deadline travels as timeout_ms. */
    send_text(b, "{\"type\":\"run\",\"call\":13,\"timeout_ms\":200,\"graph\":{\"nodes\":{\"s\":{"
                 "\"op\":\"global.stats\",\"args\":[{\"op\":\"raster.constant\",\"width\":"
                 "65536,\"height\":65520,\"value\":1,\"type\":\"u8\"}]}},\"result\":\"s\"}}");
    ev = next_event(b, 13, NULL, NULL);
    ck_assert_str_eq(th_code(ev), "timeout");
    json_decref(ev);

    /* The daemon still serves clients. */
    ck_assert(th_ping(&D));
    zmq_close(b);
    stop_node_a();
}
END_TEST

/* a's heartbeats reach b's endpoint, and a reports b "up" once b's
 * heartbeats arrive, "down" when they stop. */
START_TEST(transport_heartbeats)
{
    start_node_a();
    void *r = zmq_socket(zctx, ZMQ_ROUTER);
    int one = 1, zero = 0;
    zmq_setsockopt(r, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(r, ZMQ_CURVE_SERVER, &one, sizeof one);
    zmq_setsockopt(r, ZMQ_CURVE_SECRETKEY, sec[1], 40);
    ck_assert_int_eq(zmq_bind(r, fake_endpoint), 0);
    /* ROUTER frames: routing id, then the header. */
    zmq_pollitem_t it = {r, 0, ZMQ_POLLIN, 0};
    ck_assert_int_eq(zmq_poll(&it, 1, 15000), 1);
    char id[64] = "";
    int n = zmq_recv(r, id, sizeof id - 1, 0);
    ck_assert_int_eq(n, 1);
    ck_assert_str_eq(id, "a");
    json_t *hb = recv_json(r, 1000, NULL, NULL);
    ck_assert_ptr_nonnull(hb);
    ck_assert_str_eq(json_string_value(json_object_get(hb, "type")), "hb");
    ck_assert_str_eq(json_string_value(json_object_get(hb, "node")), "a");
    ck_assert(json_is_integer(json_object_get(hb, "load")));
    ck_assert_int_gt(json_integer_value(json_object_get(hb, "workers")), 0);
    json_decref(hb);

    /* Our heartbeats: a sees b up (its DEALER reached our ROUTER too). */
    void *b = curve_dealer("b", pub[0], pub[1], sec[1], a_endpoint());
    int fd = th_connect(&D);
    ck_assert_int_ge(fd, 0);
    char state[32] = "";
    json_t *st = NULL;
    for (int i = 0; i < 300 && strcmp(state, "up") != 0; i++) {
        send_text(b, "{\"type\":\"hb\",\"node\":\"b\",\"load\":5,\"workers\":3}");
        usleep(20000);
        json_decref(st);
        st = th_request(fd, "{\"id\":1,\"type\":\"status\"}\n", 5000);
        json_t *p = json_array_get(
            json_object_get(json_object_get(json_object_get(st, "value"), "cluster"), "peers"), 0);
        const char *ps = json_string_value(json_object_get(p, "state"));
        snprintf(state, sizeof state, "%s", ps ? ps : "");
        if (strcmp(state, "up") == 0) {
            ck_assert_int_eq(json_integer_value(json_object_get(p, "load")), 5);
            ck_assert_int_eq(json_integer_value(json_object_get(p, "workers")), 3);
            ck_assert_str_eq(json_string_value(json_object_get(p, "name")), "b");
        }
    }
    ck_assert_str_eq(state, "up");
    json_decref(st);
    st = NULL;
    /* Silence: down after peer_timeout_ms (1000). */
    for (int i = 0; i < 300 && strcmp(state, "down") != 0; i++) {
        usleep(20000);
        json_decref(st);
        st = th_request(fd, "{\"id\":1,\"type\":\"status\"}\n", 5000);
        json_t *p = json_array_get(
            json_object_get(json_object_get(json_object_get(st, "value"), "cluster"), "peers"), 0);
        const char *ps = json_string_value(json_object_get(p, "state"));
        snprintf(state, sizeof state, "%s", ps ? ps : "");
    }
    ck_assert_str_eq(state, "down");
    json_decref(st);
    close(fd);
    zmq_close(b);
    zmq_close(r);
    stop_node_a();
}
END_TEST

/* A client whose key is not in cluster.nodes gets nothing, and is logged;
 * one with a peer's key but another name is dropped. */
START_TEST(transport_unknown_key)
{
    start_node_a();
    char xpub[41], xsec[41];
    ck_assert_int_eq(zmq_curve_keypair(xpub, xsec), 0);
    void *x = curve_dealer("b", pub[0], xpub, xsec, a_endpoint());
    send_text(x, "{\"type\":\"run\",\"call\":1,\"graph\":{\"nodes\":{\"c\":{\"op\":"
                 "\"raster.constant\",\"width\":1,\"height\":1,\"value\":1}},\"result\":\"c\"}}");
    ck_assert_ptr_null(recv_json(x, 1500, NULL, NULL));
    char want[160];
    snprintf(want, sizeof want, "refused a CURVE connection from key %s", xpub);
    int found = 0;
    for (int i = 0; i < 100 && !found; i++) {
        found = log_contains(want);
        if (!found) usleep(20000);
    }
    ck_assert_msg(found, "no '%s' in %s", want, D.log);
    ck_assert(log_contains("not in cluster.nodes"));
    zmq_close(x);

    /* b's key, routing id "c": who the key says, not what it claims. */
    void *c = curve_dealer("c", pub[0], pub[1], sec[1], a_endpoint());
    send_text(c, "{\"type\":\"run\",\"call\":2,\"graph\":{\"nodes\":{\"c\":{\"op\":"
                 "\"raster.constant\",\"width\":1,\"height\":1,\"value\":1}},\"result\":\"c\"}}");
    ck_assert_ptr_null(recv_json(c, 1500, NULL, NULL));
    ck_assert(log_contains("a message from 'c' with the key of 'b': dropped"));
    zmq_close(c);
    ck_assert(th_ping(&D));
    stop_node_a();
}
END_TEST

/* ---- calls (pg_cluster_call), this process as node "a" ---- */

static uv_loop_t loop;
static pg_config acfg;
static uv_timer_t ticker;

typedef struct outcome {
    int done;
    int code;
    json_t *ev;
    void *data;
    size_t len;
    char node[64];
} outcome;

static void on_call(void *ctx, int code, const json_t *event, const void *data, size_t len,
                    const char *node)
{
    outcome *o = ctx;
    o->done++;
    o->code = code;
    o->ev = event ? json_deep_copy(event) : NULL;
    if (data && len) {
        o->data = malloc(len);
        memcpy(o->data, data, len);
    }
    o->len = len;
    snprintf(o->node, sizeof o->node, "%s", node ? node : "");
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_ticker(uv_timer_t *t)
{
    (void)t;
}

static pg_peer_state b_state(int64_t *inflight)
{
    pg_peer_info info[4];
    int n = pg_cluster_peers("b", info, 4);
    ck_assert_int_eq(n, 1);
    ck_assert_str_eq(info[0].name, "b");
    if (inflight) *inflight = info[0].inflight;
    return info[0].state;
}

/* Runs the loop until *DONE >= WANT or TIMEOUT_MS pass; returns whether it
 * got there. MAX_INFLIGHT: if >= 0, checks b's inflight never exceeds it. */
static bool run_until(const int *done, int want, int timeout_ms, int max_inflight)
{
    long long t0 = mono_ms();
    while (*done < want && mono_ms() - t0 < timeout_ms) {
        uv_run(&loop, UV_RUN_ONCE);
        if (max_inflight >= 0) {
            int64_t inflight;
            b_state(&inflight);
            ck_assert_int_le(inflight, max_inflight);
        }
    }
    return *done >= want;
}

static bool wait_b(pg_peer_state want, int timeout_ms)
{
    long long t0 = mono_ms();
    while (b_state(NULL) != want && mono_ms() - t0 < timeout_ms)
        uv_run(&loop, UV_RUN_ONCE);
    return b_state(NULL) == want;
}

/* Node b: a real pergolad; node a: this process (pg_cluster_start). */
static void start_pair(int max_calls)
{
    make_keys();
    zctx = zmq_ctx_new();
    char ea[64], eb[64];
    snprintf(ea, sizeof ea, "tcp://127.0.0.1:%d", free_tcp_port());
    snprintf(eb, sizeof eb, "tcp://127.0.0.1:%d", free_tcp_port());
    json_t *cl =
        json_pack("{s:[{s:s, s:s, s:s}, {s:s, s:s, s:s}], s:s, s:i, s:i, s:i}", "nodes", "name",
                  "a", "endpoint", ea, "public_key", pub[0], "name", "b", "endpoint", eb,
                  "public_key", pub[1], "secret_key_file", "keys/{node}.secret", "heartbeat_ms",
                  100, "peer_timeout_ms", 800, "max_calls_per_peer", max_calls);
    const char *path = write_config(cl);
    th_root_init(&D);
    const char *extra[] = {"--config", path, "--node", "b", NULL};
    ck_assert_int_eq(th_start(&D, extra), 0);
    pg_error err = {0};
    ck_assert_int_eq(from_args(path, "a", &acfg, &err), 0);
    ck_assert_int_eq(pg_runtime_start(1), 0);
    ck_assert_int_eq(uv_loop_init(&loop), 0);
    ck_assert_int_eq(pg_loop_init(&loop), 0);
    /* Wake the loop now and then, so that run_until sees the clock. */
    uv_timer_init(&loop, &ticker);
    uv_timer_start(&ticker, on_ticker, 20, 20);
    ck_assert_int_eq(pg_cluster_start(&loop, &acfg, &err), 0);
    ck_assert_str_eq(pg_cluster_self(), "a");
    ck_assert(wait_b(PG_PEER_UP, 15000));
}

static void stop_pair(void)
{
    pg_cluster_stop();
    uv_close((uv_handle_t *)&ticker, NULL);
    pg_loop_close();
    uv_run(&loop, UV_RUN_DEFAULT);
    ck_assert_int_eq(uv_loop_close(&loop), 0);
    pg_runtime_stop();
    pg_config_clear(&acfg);
    if (D.pid > 0) ck_assert_int_eq(th_stop(&D), 0);
    th_cleanup(&D);
    zmq_ctx_term(zctx);
}

static json_t *graph_req(const char *graph)
{
    json_error_t je;
    json_t *g = json_loads(graph, 0, &je);
    ck_assert_ptr_nonnull(g);
    return json_pack("{s:o}", "graph", g);
}

#define STATS_GRAPH                                                                                \
    "{\"nodes\":{\"s\":{\"op\":\"global.stats\",\"args\":[{\"op\":\"raster.constant\","            \
    "\"width\":16,\"height\":16,\"value\":1,\"type\":\"f32\"}]}},\"result\":\"s\"}"
/* About 4e9 cells to reduce: seconds of work, to cancel or time out. */
#define LONG_GRAPH                                                                                 \
    "{\"nodes\":{\"s\":{\"op\":\"global.stats\",\"args\":[{\"op\":\"raster.constant\","            \
    "\"width\":65536,\"height\":%d,\"value\":1,\"type\":\"u8\"}]}},\"result\":\"s\"}"

/* Asserts O ended with WANT; if not, shows b's log first. */
static void expect_code(const outcome *o, int want)
{
    if (o->code != want) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "tail -n 40 '%s' >&2", D.log);
        if (system(cmd) != 0) { /* nothing more to show */
        }
        char *e = o->ev ? json_dumps(o->ev, 0) : NULL;
        fprintf(stderr, "the call ended with %d (%s), not %d\n", o->code, e ? e : "no event", want);
        free(e);
    }
    ck_assert_int_eq(o->code, want);
}

static void outcome_clear(outcome *o)
{
    json_decref(o->ev);
    free(o->data);
    memset(o, 0, sizeof *o);
}

/* b's jobs: running, cancelled (its status, over a client connection). */
static void b_jobs(long long *running, long long *cancelled)
{
    int fd = th_connect(&D);
    ck_assert_int_ge(fd, 0);
    json_t *ev = th_request(fd, "{\"id\":1,\"type\":\"status\"}\n", 5000);
    close(fd);
    json_t *jobs = json_object_get(json_object_get(ev, "value"), "jobs");
    *running = json_integer_value(json_object_get(jobs, "running"));
    *cancelled = json_integer_value(json_object_get(jobs, "cancelled"));
    json_decref(ev);
}

static bool b_idle(long long want_cancelled, int timeout_ms)
{
    long long t0 = mono_ms(), r = -1, c = -1;
    while (mono_ms() - t0 < timeout_ms) {
        uv_run(&loop, UV_RUN_NOWAIT);
        b_jobs(&r, &c);
        if (r == 0 && c >= want_cancelled) return true;
        usleep(20000);
    }
    return false;
}

START_TEST(calls_basic)
{
    start_pair(1);
    ck_assert(pg_cluster_knows("a"));
    ck_assert(pg_cluster_knows("b"));
    ck_assert(!pg_cluster_knows("zz"));
    pg_peer_info all[4];
    ck_assert_int_eq(pg_cluster_peers(NULL, all, 4), 1);
    ck_assert_int_eq(pg_cluster_peers("a", all, 4), 0); /* not a peer: this node */
    ck_assert_int_gt(all[0].workers, -1);
    json_t *st = pg_cluster_status();
    ck_assert_str_eq(json_string_value(json_object_get(st, "node")), "a");
    ck_assert_str_eq(json_string_value(
                         json_object_get(json_array_get(json_object_get(st, "peers"), 0), "state")),
                     "up");
    json_decref(st);

    /* A value. */
    outcome o = {0};
    uint64_t id = pg_cluster_call("b", graph_req(STATS_GRAPH), 20000, on_call, &o);
    ck_assert_uint_gt(id, 0);
    ck_assert(run_until(&o.done, 1, 20000, 1));
    expect_code(&o, 0);
    ck_assert_str_eq(o.node, "b");
    ck_assert_str_eq(json_string_value(json_object_get(o.ev, "event")), "result");
    json_t *v = json_object_get(o.ev, "value");
    ck_assert_int_eq(json_integer_value(json_object_get(v, "count")), 256);
    ck_assert(json_real_value(json_object_get(v, "sum")) == 256.0);
    outcome_clear(&o);

    /* A raster: the attachment reaches the callback. */
    pg_cluster_call("b",
                    graph_req("{\"nodes\":{\"c\":{\"op\":\"raster.constant\",\"width\":4,"
                              "\"height\":2,\"value\":2.5,\"type\":\"f32\"}},\"result\":\"c\"}"),
                    20000, on_call, &o);
    ck_assert(run_until(&o.done, 1, 20000, 1));
    expect_code(&o, 0);
    ck_assert_uint_eq(o.len, 32);
    for (int i = 0; i < 8; i++) {
        float f;
        memcpy(&f, (char *)o.data + 4 * i, 4);
        ck_assert(f == 2.5f);
    }
    outcome_clear(&o);

    /* The peer's error, with its code. */
    pg_cluster_call("b", graph_req("{\"nodes\":{\"x\":{\"op\":\"local.nope\"}},\"result\":\"x\"}"),
                    20000, on_call, &o);
    ck_assert(run_until(&o.done, 1, 20000, 1));
    expect_code(&o, PG_EUNKNOWNOP);
    ck_assert_str_eq(th_code(o.ev), "unknown_op");
    ck_assert_str_eq(th_node(o.ev), "x");
    outcome_clear(&o);

    /* max_calls_per_peer 1: three calls at once wait their turn, all end. */
    outcome q[3] = {{0}};
    int ended = 0;
    for (int i = 0; i < 3; i++)
        pg_cluster_call("b", graph_req(STATS_GRAPH), 20000, on_call, &q[i]);
    long long t0 = mono_ms();
    while (ended < 3 && mono_ms() - t0 < 20000) {
        uv_run(&loop, UV_RUN_ONCE);
        int64_t inflight;
        b_state(&inflight);
        ck_assert_int_le(inflight, 1);
        ended = q[0].done + q[1].done + q[2].done;
    }
    ck_assert_int_eq(ended, 3);
    for (int i = 0; i < 3; i++) {
        ck_assert_int_eq(q[i].done, 1);
        expect_code(&q[i], 0);
        outcome_clear(&q[i]);
    }

    /* Not a peer. */
    pg_cluster_call("zz", graph_req(STATS_GRAPH), 20000, on_call, &o);
    ck_assert(run_until(&o.done, 1, 5000, -1));
    expect_code(&o, PG_EPEER);
    ck_assert_str_eq(th_code(o.ev), "peer_unavailable");
    outcome_clear(&o);

    /* Cancel: the callback says cancelled, b's job is cancelled too. */
    long long r0, c0;
    b_jobs(&r0, &c0);
    char g[400];
    snprintf(g, sizeof g, LONG_GRAPH, 65536);
    id = pg_cluster_call("b", graph_req(g), 30000, on_call, &o);
    long long t1 = mono_ms();
    while (mono_ms() - t1 < 200)
        uv_run(&loop, UV_RUN_ONCE);
    ck_assert_int_eq(o.done, 0);
    pg_cluster_cancel(id);
    ck_assert(run_until(&o.done, 1, 5000, -1));
    expect_code(&o, PG_ECANCELLED);
    ck_assert(b_idle(c0 + 1, 10000));
    outcome_clear(&o);
    /* A second cancel of an ended call does nothing. */
    pg_cluster_cancel(id);

    /* A deadline: PG_ETIMEOUT, and b does not keep working on it. */
    snprintf(g, sizeof g, LONG_GRAPH, 65520);
    pg_cluster_call("b", graph_req(g), 300, on_call, &o);
    ck_assert(run_until(&o.done, 1, 10000, -1));
    expect_code(&o, PG_ETIMEOUT);
    ck_assert_str_eq(th_code(o.ev), "timeout");
    ck_assert(b_idle(0, 10000));
    outcome_clear(&o);

    /* Shutdown ends a pending call with PG_ESHUTDOWN, exactly once. */
    snprintf(g, sizeof g, LONG_GRAPH, 65504);
    pg_cluster_call("b", graph_req(g), 30000, on_call, &o);
    t1 = mono_ms();
    while (mono_ms() - t1 < 100)
        uv_run(&loop, UV_RUN_ONCE);
    ck_assert_int_eq(o.done, 0);
    pg_cluster_stop();
    ck_assert_int_eq(o.done, 1);
    expect_code(&o, PG_ESHUTDOWN);
    outcome_clear(&o);
    stop_pair();
}
END_TEST

/* b dies mid-call: the call fails with PG_EPEER (not at its deadline), b
 * goes down, new calls fail at once. */
START_TEST(calls_peer_killed)
{
    start_pair(8);
    outcome o = {0};
    char g[400];
    snprintf(g, sizeof g, LONG_GRAPH, 65536);
    pg_cluster_call("b", graph_req(g), 60000, on_call, &o);
    long long t1 = mono_ms();
    while (mono_ms() - t1 < 200)
        uv_run(&loop, UV_RUN_ONCE);
    ck_assert_int_eq(o.done, 0);
    kill(D.pid, SIGKILL);
    int st;
    waitpid(D.pid, &st, 0);
    D.pid = 0;
    long long t0 = mono_ms();
    ck_assert(run_until(&o.done, 1, 20000, -1));
    fprintf(stderr, "the call failed %lld ms after b was killed\n", mono_ms() - t0);
    ck_assert_int_eq(o.code, PG_EPEER);
    ck_assert_str_eq(th_code(o.ev), "peer_unavailable");
    ck_assert(strstr(json_string_value(json_object_get(json_object_get(o.ev, "error"), "message")),
                     "'b'") != NULL);
    outcome_clear(&o);
    ck_assert_int_eq(b_state(NULL), PG_PEER_DOWN);
    pg_cluster_call("b", graph_req(STATS_GRAPH), 20000, on_call, &o);
    ck_assert(run_until(&o.done, 1, 5000, -1));
    ck_assert_int_eq(o.code, PG_EPEER);
    outcome_clear(&o);
    stop_pair();
}
END_TEST

START_TEST(keygen_pairs)
{
    char p1[41], s1[41], p2[41], s2[41], derived[41];
    ck_assert_int_eq(pg_cluster_keygen(p1, s1), 0);
    ck_assert_int_eq(pg_cluster_keygen(p2, s2), 0);
    ck_assert_str_ne(p1, p2);
    ck_assert_int_eq(zmq_curve_public(derived, s1), 0);
    ck_assert_str_eq(derived, p1);
    /* The CLI writes PREFIX.public / PREFIX.secret (0600), refuses to
     * overwrite. */
    const char *cli = getenv("PERGOLA_CLI");
    ck_assert_ptr_nonnull(cli);
    char cmd[800], prefix[400];
    snprintf(prefix, sizeof prefix, "%s/k", tmpdir);
    snprintf(cmd, sizeof cmd, "'%s' keygen '%s' > /dev/null", cli, prefix);
    ck_assert_int_eq(system(cmd), 0);
    ck_assert_int_ne(system(cmd), 0);
    char path[500], pubtext[64] = "", sectext[64] = "";
    snprintf(path, sizeof path, "%s.secret", prefix);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
    FILE *f = fopen(path, "r");
    ck_assert_ptr_nonnull(fgets(sectext, sizeof sectext, f));
    fclose(f);
    snprintf(path, sizeof path, "%s.public", prefix);
    f = fopen(path, "r");
    ck_assert_ptr_nonnull(fgets(pubtext, sizeof pubtext, f));
    fclose(f);
    sectext[strcspn(sectext, "\n")] = 0;
    pubtext[strcspn(pubtext, "\n")] = 0;
    ck_assert_int_eq(zmq_curve_public(derived, sectext), 0);
    ck_assert_str_eq(derived, pubtext);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("cluster");
    TCase *tc = tcase_create("config");
    tcase_add_checked_fixture(tc, setup, teardown);
    tcase_add_test(tc, config_good);
    tcase_add_test(tc, config_errors);
    tcase_add_test(tc, config_secret_key_errors);
    tcase_add_test(tc, config_example);
    tcase_add_test(tc, keygen_pairs);
    suite_add_tcase(s, tc);
    TCase *tt = tcase_create("transport");
    tcase_add_checked_fixture(tt, setup, teardown);
    tcase_set_timeout(tt, 90);
    tcase_add_test(tt, transport_calls);
    tcase_add_test(tt, transport_heartbeats);
    tcase_add_test(tt, transport_unknown_key);
    tcase_add_test(tt, calls_basic);
    tcase_add_test(tt, calls_peer_killed);
    suite_add_tcase(s, tt);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
