/* The cluster: this node's peers over ZeroMQ, and calls to them.
 *
 * A cluster is a list of named pergolad nodes (config "cluster", see
 * README "Cluster"). Each node binds one ROUTER socket at its endpoint and
 * connects one DEALER to every other node (identity: its own name). All
 * traffic is CURVE encrypted and authenticated: a node accepts only the
 * public keys listed in its config (a ZAP handler refuses and logs others).
 * The sockets live on the loop thread, polled through their ZMQ_FD with a
 * uv_poll_t; no other thread touches them (ZeroMQ sockets are not thread
 * safe): other threads hand messages to the loop with pg_loop_post.
 *
 * Messages are multipart: frame 0 a JSON header {"type": ...}, then raw
 * frames (tile cells), sent without copying (zmq_msg_init_data).
 *   hb      every heartbeat_ms to every peer: {"type":"hb","node","load","workers"}
 *   run     a `run` request of the client protocol, plus "call": CALL_ID
 *   cancel  {"type":"cancel","call": CALL_ID}
 *   event   an event of that run (accepted, result, error; progress is not
 *           asked for), with "call"; a result's raster attachment follows
 *           as frame 1.
 * A node runs a peer's `run` as an ordinary job (same planner, same
 * limits; over limits.max_jobs it answers `busy`), so a remote subgraph
 * gives the same bytes as a local one.
 *
 * Peers: a peer is "connecting" until its first heartbeat, "up" while they
 * arrive (and our connection to it has completed its handshake), "down"
 * after peer_timeout_ms without one or as soon as our connection to it
 * drops (ZeroMQ reconnects with backoff: reconnect_ivl 100 ms doubling to
 * 5 s), "refused" when the CURVE handshake with it failed (its key is not
 * the configured one, or it does not know ours). Leaving "up" fails the
 * calls in flight to it (PG_EPEER) and cancels the jobs it asked us for.
 * A refused key is logged by the ZAP handler ("refused a CURVE connection
 * from key X: not in cluster.nodes", at most once per 10 s per key).
 */
#ifndef PG_CLUSTER_H
#define PG_CLUSTER_H

#include "config.h"
#include "pergola/error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* Peer states. */
typedef enum { PG_PEER_CONNECTING, PG_PEER_UP, PG_PEER_DOWN, PG_PEER_REFUSED } pg_peer_state;

/* A snapshot of one peer, for placement (pg_cluster_peers). */
typedef struct pg_peer_info {
    char name[64];
    pg_peer_state state;
    int64_t load;     /* the peer's last reported load: jobs + tiles queued */
    int workers;      /* its worker threads */
    int64_t inflight; /* calls from this node to it not yet answered */
} pg_peer_info;

/* Starts the cluster described by CFG (cfg->cluster) on LOOP: binds,
 * connects, starts heartbeats. Loop thread, once, before serving. Returns 0
 * (also when CFG has no cluster: then every call below answers "no
 * cluster"), or a negative code with ERR (bad key file, endpoint in use). */
int pg_cluster_start(uv_loop_t *loop, const pg_config *cfg, pg_error *err);
/* Stops heartbeats, fails every pending call with PG_ESHUTDOWN (their
 * callbacks run), closes the sockets. Loop thread; idempotent. */
void pg_cluster_stop(void);

/* This node's name, or NULL without a cluster. Any thread. */
const char *pg_cluster_self(void);
/* True if NAME is this node, a peer, or a pool of the config. */
bool pg_cluster_knows(const char *name);
/* The peers (not this node) that NAME designates: NAME itself if it is a
 * peer, the members of pool NAME, every peer if NAME is NULL. Writes up to
 * MAX snapshots to OUT, returns how many. Any thread (a mutex guards the
 * snapshot; the loop thread updates it). */
int pg_cluster_peers(const char *name, pg_peer_info *out, int max);
/* Heartbeats report this node's load as its running jobs + the tasks
 * queued on its workers; pg_cluster_set_load(LOAD >= 0) reports LOAD
 * instead (the job layer's own count), a negative LOAD goes back to the
 * computed value. Any thread. */
void pg_cluster_set_load(int64_t load);

/* The end of a call: CODE 0 and EVENT the "result" event (borrowed, valid
 * during the callback), DATA/LEN its attachment (borrowed; may be NULL/0);
 * or CODE < 0: the peer's error event (EVENT, borrowed), or PG_ETIMEOUT (no
 * answer by the deadline), PG_EPEER (the peer is down, refused, or went
 * down during the call), PG_ECANCELLED (pg_cluster_cancel), PG_ESHUTDOWN.
 * On failure EVENT is never NULL: for the local codes it is an error event
 * made here ({"event":"error","error":{"code","message"}}, the message
 * names the node). NODE is the peer that was called. Runs on the loop
 * thread, exactly once per call (the callback may call pg_cluster_call or
 * pg_cluster_cancel). A peer that is not "up" fails at once with PG_EPEER.
 * Over max_calls_per_peer calls in flight to one peer, a call waits in a
 * queue on the loop (its deadline runs) until one ends. */
typedef void (*pg_call_fn)(void *ctx, int code, const json_t *event, const void *data, size_t len,
                           const char *node);

/* Sends run request REQ (stolen; its "graph", optional "timeout_ms"; "id"
 * and "call" are set here) to peer NODE, with a deadline of DEADLINE_MS
 * from now (the remote job gets it as timeout_ms). CB(CTX, ...) is called
 * once when it ends. Any thread. Returns the call's id (> 0). */
uint64_t pg_cluster_call(const char *node, json_t *req, int64_t deadline_ms, pg_call_fn cb,
                         void *ctx);
/* Cancels call ID (sends `cancel` to the peer); its callback still runs
 * once, with PG_ECANCELLED, unless it already ran. Any thread. */
void pg_cluster_cancel(uint64_t id);

/* Jobs that peers asked for run under session id PG_CLUSTER_SID_FLAG |
 * the peer's node index; their events come back through pg_session_post,
 * whose loop side hands them to pg_cluster_deliver (EVENT and DATA stolen),
 * which sends them to the peer (DATA as frame 1, without copying). */
#define PG_CLUSTER_SID_FLAG (UINT64_C(1) << 63)
void pg_cluster_deliver(uint64_t sid, json_t *event, void *data, size_t len);

/* The `status` answer's "cluster" member (a new reference), or NULL
 * without a cluster: {"node": NAME, "peers": [{"name", "endpoint",
 * "state", "load", "workers", "inflight", "last_seen_ms"}...]}. Loop
 * thread. */
json_t *pg_cluster_status(void);

/* Makes a CURVE key pair: two Z85 strings of 40 characters (+ NUL).
 * Returns 0, or -1 if this libzmq lacks CURVE. */
int pg_cluster_keygen(char public_key[41], char secret_key[41]);

#endif
