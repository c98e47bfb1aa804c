/* Cluster test harness (see cluster_harness.h). */
#include "cluster_harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static struct {
    int n;
    th_cluster_opts opts;
    char dir[256];  /* config + keys */
    char root[256]; /* shared data root */
    char config[320];
    th_daemon d[TH_CLUSTER_MAX];
    bool alive[TH_CLUSTER_MAX];
    char name[TH_CLUSTER_MAX][8];
    char endpoint[TH_CLUSTER_MAX][64];
    char pub[TH_CLUSTER_MAX][41];
    json_t *cfg;
} T;

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static long long mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A port no one listens on now: bind port 0, read it, close. (Another
 * process could take it before pergolad binds it; on a test machine that
 * is rare, and a bind failure shows in the node's log.) */
int th_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return -1;
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = 0};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    socklen_t len = sizeof a;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
        getsockname(fd, (struct sockaddr *)&a, &len) == 0)
        port = ntohs(a.sin_port);
    close(fd);
    return port;
}

int th_keygen(const char *prefix, char pub[41])
{
    const char *cli = getenv("PERGOLA_CLI");
    if (cli == NULL) cli = "build/pergola";
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' keygen '%s' > /dev/null", cli, prefix);
    if (system(cmd) != 0) return -1;
    char path[600];
    snprintf(path, sizeof path, "%s.public", prefix);
    FILE *f = fopen(path, "r");
    if (f == NULL) return -1;
    char line[128] = "";
    int ok = fgets(line, sizeof line, f) != NULL;
    fclose(f);
    line[strcspn(line, "\r\n")] = '\0';
    if (!ok || strlen(line) != 40) return -1;
    memcpy(pub, line, 41);
    return 0;
}

static int start_node(int i)
{
    th_daemon *d = &T.d[i];
    char saved_root[256];
    snprintf(saved_root, sizeof saved_root, "%s", d->root);
    const char *argv[64];
    int n = 0;
    argv[n++] = "--config";
    argv[n++] = T.config;
    argv[n++] = "--node";
    argv[n++] = T.name[i];
    argv[n++] = "--data-root"; /* after th_start's own: the shared root wins */
    argv[n++] = T.root;
    for (int k = 0; T.opts.extra && T.opts.extra[k] && n < 62; k++)
        argv[n++] = T.opts.extra[k];
    argv[n] = NULL;
    if (th_start(d, argv) != 0) {
        fprintf(stderr, "cluster harness: node %s did not start (log %s)\n", T.name[i], d->log);
        char cmd[400];
        snprintf(cmd, sizeof cmd, "cat '%s' >&2", d->log);
        if (system(cmd) != 0) { /* nothing more to say */
        }
        return -1;
    }
    T.alive[i] = true;
    return 0;
}

int th_cluster_start(int n, const th_cluster_opts *opts)
{
    if (n < 1 || n > TH_CLUSTER_MAX) return -1;
    memset(&T, 0, sizeof T);
    T.n = n;
    if (opts) T.opts = *opts;
    if (T.opts.heartbeat_ms == 0) T.opts.heartbeat_ms = 100;
    if (T.opts.peer_timeout_ms == 0) T.opts.peer_timeout_ms = 800;
    snprintf(T.dir, sizeof T.dir, "/tmp/pergola-cluster-XXXXXX");
    snprintf(T.root, sizeof T.root, "/tmp/pergola-cluster-data-XXXXXX");
    if (mkdtemp(T.dir) == NULL || mkdtemp(T.root) == NULL) return -1;
    char keys[300];
    snprintf(keys, sizeof keys, "%s/keys", T.dir);
    mkdir(keys, 0700);
    json_t *nodes = json_array();
    for (int i = 0; i < n; i++) {
        snprintf(T.name[i], sizeof T.name[i], "%c", 'a' + i);
        char prefix[400];
        snprintf(prefix, sizeof prefix, "%s/%s", keys, T.name[i]);
        int port = th_free_port();
        if (port <= 0 || th_keygen(prefix, T.pub[i]) != 0) {
            fprintf(stderr, "cluster harness: keygen or port failed\n");
            json_decref(nodes);
            return -1;
        }
        snprintf(T.endpoint[i], sizeof T.endpoint[i], "tcp://127.0.0.1:%d", port);
        json_array_append_new(nodes, json_pack("{s:s, s:s, s:s}", "name", T.name[i], "endpoint",
                                               T.endpoint[i], "public_key", T.pub[i]));
    }
    json_t *cl =
        json_pack("{s:o, s:s, s:i, s:i}", "nodes", nodes, "secret_key_file", "keys/{node}.secret",
                  "heartbeat_ms", T.opts.heartbeat_ms, "peer_timeout_ms", T.opts.peer_timeout_ms);
    if (T.opts.call_timeout_ms)
        json_object_set_new(cl, "call_timeout_ms", json_integer(T.opts.call_timeout_ms));
    if (T.opts.max_calls_per_peer)
        json_object_set_new(cl, "max_calls_per_peer", json_integer(T.opts.max_calls_per_peer));
    if (T.opts.pools) json_object_set_new(cl, "pools", json_loads(T.opts.pools, 0, NULL));
    T.cfg = json_pack("{s:o}", "cluster", cl);
    snprintf(T.config, sizeof T.config, "%s/cluster.json", T.dir);
    if (json_dump_file(T.cfg, T.config, JSON_INDENT(2)) != 0) return -1;
    for (int i = 0; i < n; i++) {
        th_root_init(&T.d[i]); /* its own directory: ready and log files */
        if (start_node(i) != 0) {
            th_cluster_stop();
            return -1;
        }
    }
    if (!T.opts.no_wait_up && th_cluster_wait_all_up(20000) < 0) {
        fprintf(stderr, "cluster harness: the peers did not all come up within 20 s\n");
        th_cluster_stop();
        return -1;
    }
    return 0;
}

int th_cluster_stop(void)
{
    int bad = 0;
    for (int i = 0; i < T.n; i++) {
        if (T.alive[i] && th_stop(&T.d[i]) != 0) {
            fprintf(stderr, "cluster harness: node %s did not exit cleanly\n", T.name[i]);
            char cmd[400];
            snprintf(cmd, sizeof cmd, "tail -n 30 '%s' >&2", T.d[i].log);
            if (system(cmd) != 0) { /* nothing more to say */
            }
            bad++;
        }
        T.alive[i] = false;
        th_cleanup(&T.d[i]);
    }
    if (T.dir[0]) {
        char cmd[700];
        snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", T.dir, T.root);
        if (system(cmd) != 0) fprintf(stderr, "cluster harness: cleanup failed\n");
    }
    json_decref(T.cfg);
    memset(&T, 0, sizeof T);
    return bad;
}

int th_cluster_size(void)
{
    return T.n;
}
th_daemon *th_cluster_node(int i)
{
    return &T.d[i];
}
const char *th_cluster_node_addr(int i)
{
    return T.d[i].address;
}
const char *th_cluster_name(int i)
{
    return T.name[i];
}
const char *th_cluster_endpoint(int i)
{
    return T.endpoint[i];
}
const char *th_cluster_public_key(int i)
{
    return T.pub[i];
}
const char *th_cluster_root(void)
{
    return T.root;
}
const char *th_cluster_dir(void)
{
    return T.dir;
}
const char *th_cluster_config(void)
{
    return T.config;
}
json_t *th_cluster_config_json(void)
{
    return json_deep_copy(T.cfg);
}

int th_cluster_kill(int i)
{
    th_daemon *d = &T.d[i];
    if (!T.alive[i] || d->pid <= 0) return -1;
    kill(d->pid, SIGKILL);
    int st;
    waitpid(d->pid, &st, 0);
    d->pid = 0;
    T.alive[i] = false;
    return 0;
}

int th_cluster_restart(int i)
{
    if (T.alive[i]) return -1;
    return start_node(i);
}

json_t *th_cluster_status(int i)
{
    if (!T.alive[i]) return NULL;
    int fd = th_connect(&T.d[i]);
    if (fd < 0) return NULL;
    json_t *ev = th_request(fd, "{\"id\":\"st\",\"type\":\"status\"}\n", 5000);
    close(fd);
    json_t *v = json_incref(json_object_get(ev, "value"));
    json_decref(ev);
    return v;
}

const char *th_cluster_peer_state(int observer, const char *name, char *buf, size_t n)
{
    buf[0] = '\0';
    json_t *st = th_cluster_status(observer);
    json_t *peers = json_object_get(json_object_get(st, "cluster"), "peers");
    size_t k;
    json_t *p;
    json_array_foreach(peers, k, p)
    {
        const char *pn = json_string_value(json_object_get(p, "name"));
        const char *s = json_string_value(json_object_get(p, "state"));
        if (pn && s && strcmp(pn, name) == 0) snprintf(buf, n, "%s", s);
    }
    json_decref(st);
    return buf;
}

int th_cluster_wait_state(int observer, const char *name, const char *state, int timeout_ms)
{
    long long t0 = mono_ms();
    for (;;) {
        char buf[32];
        if (strcmp(th_cluster_peer_state(observer, name, buf, sizeof buf), state) == 0)
            return (int)(mono_ms() - t0);
        if (mono_ms() - t0 > timeout_ms) return -1;
        sleep_ms(20);
    }
}

int th_cluster_wait_all_up(int timeout_ms)
{
    long long t0 = mono_ms();
    for (;;) {
        bool all = true;
        for (int i = 0; i < T.n && all; i++) {
            if (!T.alive[i]) continue;
            for (int j = 0; j < T.n && all; j++) {
                if (j == i || !T.alive[j]) continue;
                char buf[32];
                all = strcmp(th_cluster_peer_state(i, T.name[j], buf, sizeof buf), "up") == 0;
            }
        }
        if (all) return (int)(mono_ms() - t0);
        if (mono_ms() - t0 > timeout_ms) return -1;
        sleep_ms(30);
    }
}
