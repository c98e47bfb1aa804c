/* Cluster test harness: N real pergolad nodes on 127.0.0.1, one config.
 *
 * th_cluster_start makes a key pair per node with `pergola keygen`
 * ($PERGOLA_CLI), picks free 127.0.0.1 ports for the cluster endpoints,
 * writes one config (DIR/cluster.json, nodes "a", "b", "c", ...; keys
 * DIR/keys/{node}.secret), starts every node with --config and --node (each
 * on its own ephemeral client port, all with the same data root), waits
 * for their ready files and then until every node's `status` shows every
 * peer "up". Every wait is bounded; nodes die with the test process.
 *
 *   th_cluster_opts o = {0};
 *   ck_assert_int_eq(th_cluster_start(3, &o), 0);
 *   int fd = th_connect(th_cluster_node(0));            // talk to node a
 *   th_mkraster(th_cluster_root(), "x.tif", "...");     // data every node sees
 *   th_cluster_kill(1);                                 // SIGKILL node b
 *   th_cluster_stop();
 */
#ifndef PG_TEST_CLUSTER_HARNESS_H
#define PG_TEST_CLUSTER_HARNESS_H

#include "harness.h"

#include <jansson.h>
#include <stdbool.h>

#define TH_CLUSTER_MAX 8

typedef struct th_cluster_opts {
    int heartbeat_ms;         /* 0: 100 (fast tests) */
    int peer_timeout_ms;      /* 0: 800 */
    int call_timeout_ms;      /* 0: the daemon's default */
    int max_calls_per_peer;   /* 0: the daemon's default */
    const char *const *extra; /* more pergolad flags for every node (NULL-terminated), or NULL */
    bool no_wait_up;          /* do not wait for every peer to be up */
    const char *pools;        /* "cluster.pools" as JSON text, or NULL */
} th_cluster_opts;

/* Starts N (1..TH_CLUSTER_MAX) nodes. Returns 0, or -1 (what failed is on
 * stderr; the nodes that started are stopped). */
int th_cluster_start(int n, const th_cluster_opts *opts);
/* SIGTERM every node (SIGKILL if it hangs) and remove the directories.
 * Returns how many live nodes did not exit with status 0 (their log tails
 * go to stderr). */
int th_cluster_stop(void);

int th_cluster_size(void);
/* Node I's daemon (its client address, port, log file). */
th_daemon *th_cluster_node(int i);
/* Node I's client address "127.0.0.1:PORT". */
const char *th_cluster_node_addr(int i);
/* Node I's name ("a" + I) and cluster endpoint ("tcp://127.0.0.1:PORT"). */
const char *th_cluster_name(int i);
const char *th_cluster_endpoint(int i);
const char *th_cluster_public_key(int i);
/* The shared data root, and the directory with the config and keys. */
const char *th_cluster_root(void);
const char *th_cluster_dir(void);
const char *th_cluster_config(void);
/* The config as written (a new reference), to derive other configs. */
json_t *th_cluster_config_json(void);

/* SIGKILL node I (and reap it). Returns 0 or -1. */
int th_cluster_kill(int i);
/* Starts node I again (same name, key and endpoint); waits for its ready
 * file, not for its peers. Returns 0 or -1. */
int th_cluster_restart(int i);

/* Node I's `status` answer's value (new reference), or NULL. */
json_t *th_cluster_status(int i);
/* The state ("up", "down", ...) node OBSERVER reports for peer NAME, into
 * BUF; "" if unknown. */
const char *th_cluster_peer_state(int observer, const char *name, char *buf, size_t n);
/* Waits (at most TIMEOUT_MS) until node OBSERVER reports peer NAME in
 * STATE. Returns the milliseconds it took, or -1 on timeout. */
int th_cluster_wait_state(int observer, const char *name, const char *state, int timeout_ms);
/* Waits until every live node reports every other live node "up". */
int th_cluster_wait_all_up(int timeout_ms);

/* A 127.0.0.1 TCP port free right now (bind port 0, read it, close). */
int th_free_port(void);
/* Runs `pergola keygen PREFIX`: writes PREFIX.public / PREFIX.secret and
 * copies the public key to PUB (41 bytes). Returns 0 or -1. */
int th_keygen(const char *prefix, char pub[41]);

#endif
