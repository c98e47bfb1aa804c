/* The cluster: this node's peers over ZeroMQ, and calls to them (see
 * cluster.h).
 *
 * Everything here runs on the loop thread except pg_cluster_call,
 * pg_cluster_cancel (which post to it), pg_cluster_peers and
 * pg_cluster_set_load (a mutex / an atomic), and the lookups of the
 * immutable configuration (self, knows).
 *
 * ZeroMQ's ZMQ_FD is edge-triggered: it signals that *something* changed,
 * and a send or recv may consume the signal while messages are still
 * queued. So every socket is drained (pg__pump: receive while ZMQ_EVENTS
 * says POLLIN) on each poll wake-up and again after every send on it.
 */
#include "cluster.h"

#include "log.h"
#include "loop.h"
#include "protocol.h"
#include "runtime.h"
#include "server.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define PG__MAXFRAMES 4
/* Refusals of one key are logged at most this often (a refused node
 * reconnects every few seconds, forever). */
#define PG__REFUSAL_LOG_NS (UINT64_C(10) * 1000000000u)

typedef struct pg__sock pg__sock;
typedef void (*pg__msg_fn)(pg__sock *s, zmq_msg_t *frames, int nframes);

/* A ZeroMQ socket polled on the loop. */
struct pg__sock {
    void *z;
    uv_poll_t poll;
    bool polling, pumping;
    pg__msg_fn on_msg;
    int peer; /* the node index it belongs to, or -1 */
};

typedef struct pg__call pg__call;

typedef struct pg__peer {
    int idx; /* index in the config's nodes */
    const pg_cluster_node_cfg *cfg;
    pg__sock dealer, mon;
    bool connected; /* our DEALER's handshake with it succeeded */
    bool refused;   /* its last handshake failed */
    bool heard, ever_up;
    uint64_t last_seen_ns;
    int64_t load;
    int workers;
    pg_peer_state state;
    int64_t inflight;
    pg__call *pending;            /* sent, not answered */
    pg__call *queue, *queue_tail; /* over max_calls_per_peer: waiting */
} pg__peer;

struct pg__call {
    pg_loopmsg msg; /* first: the post that starts it */
    uint64_t id;
    char node[64];
    int peer;
    json_t *req;
    int64_t deadline_ms;
    uint64_t started_ns;
    pg_call_fn cb;
    void *ctx;
    uv_timer_t timer;
    bool has_timer, sent;
    pg__call *next, **pprev;
};

typedef struct pg__cancel_msg {
    pg_loopmsg msg;
    uint64_t id;
} pg__cancel_msg;

typedef struct pg__refusal {
    uint8_t key[32];
    uint64_t last_ns;
    int64_t suppressed;
} pg__refusal;

static struct {
    bool enabled; /* a cluster is configured (immutable after start) */
    bool running;
    uv_loop_t *loop;
    const pg_cluster_cfg *cfg;
    int self;
    void *ctx;
    pg__sock router, zap;
    pg__peer *peers; /* nnodes entries; peers[self] unused */
    int nnodes;
    uv_timer_t tick;
    uint64_t last_hb_ns;
    int closing; /* handles still closing */
    pg__refusal refusals[16];
    int nrefusals;
} C;

static pthread_mutex_t snap_mu = PTHREAD_MUTEX_INITIALIZER;
static pg_peer_info *snap; /* per node index, guarded by snap_mu */
static atomic_uint_fast64_t next_call_id;
static atomic_int_fast64_t load_override = -1;

/* ---- small helpers ---- */

static const char *state_name(pg_peer_state s)
{
    switch (s) {
    case PG_PEER_UP:
        return "up";
    case PG_PEER_DOWN:
        return "down";
    case PG_PEER_REFUSED:
        return "refused";
    default:
        return "connecting";
    }
}

static int find_node(const char *name)
{
    if (!C.enabled || name == NULL) return -1;
    for (int i = 0; i < C.cfg->nnodes; i++)
        if (strcmp(C.cfg->nodes[i].name, name) == 0) return i;
    return -1;
}

static const pg_cluster_pool_cfg *find_pool(const char *name)
{
    if (!C.enabled || name == NULL) return NULL;
    for (int i = 0; i < C.cfg->npools; i++)
        if (strcmp(C.cfg->pools[i].name, name) == 0) return &C.cfg->pools[i];
    return NULL;
}

static void free_data(void *data, void *hint)
{
    (void)hint;
    free(data);
}

static void pg__pump(pg__sock *s);
static void zap_pump(pg__sock *s);

/* Sends HEADER (borrowed) and, if DATA, a second frame handed over without
 * copying (stolen: freed by ZeroMQ once sent, or here on failure). ROUTING:
 * a first frame for a ROUTER, or NULL. Returns 0 or -1 (errno). */
static int send_msg(pg__sock *s, const char *routing, const json_t *header, void *data, size_t len)
{
    size_t n = 0;
    char *text = header ? pg_proto_encode(header, &n) : NULL;
    if (s->z == NULL || text == NULL) {
        free(text);
        free(data);
        errno = s->z ? ENOMEM : ENOTSOCK;
        return -1;
    }
    if (n && text[n - 1] == '\n') n--;
    int rc = 0;
    if (routing && zmq_send(s->z, routing, strlen(routing), ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        rc = -1;
    if (rc == 0) {
        zmq_msg_t m;
        zmq_msg_init_data(&m, text, n, free_data, NULL);
        text = NULL;
        if (zmq_msg_send(&m, s->z, (data ? ZMQ_SNDMORE : 0) | ZMQ_DONTWAIT) < 0) {
            /* A ROUTER refuses the first frame or none (atomic sends), so
             * nothing half-sent is left behind. */
            zmq_msg_close(&m);
            rc = -1;
        }
    }
    free(text);
    if (data) {
        zmq_msg_t m;
        zmq_msg_init_data(&m, data, len, free_data, NULL);
        if (rc != 0 || zmq_msg_send(&m, s->z, ZMQ_DONTWAIT) < 0) {
            int e = errno;
            zmq_msg_close(&m);
            errno = e;
            rc = -1;
        }
    }
    int e = errno;
    pg__pump(s); /* the send may have eaten the fd's edge */
    errno = e;
    return rc;
}

/* Receives every queued message of S (see the file comment). */
static void pg__pump(pg__sock *s)
{
    if (s->pumping) return; /* the outer loop re-reads ZMQ_EVENTS */
    s->pumping = true;
    while (s->z) {
        int ev = 0;
        size_t sz = sizeof ev;
        if (zmq_getsockopt(s->z, ZMQ_EVENTS, &ev, &sz) != 0 || !(ev & ZMQ_POLLIN)) break;
        zmq_msg_t f[PG__MAXFRAMES + 1];
        int nf = 0, more = 1, ok = 1;
        while (more) {
            zmq_msg_t *m = &f[nf < PG__MAXFRAMES ? nf : PG__MAXFRAMES];
            zmq_msg_init(m);
            if (zmq_msg_recv(m, s->z, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(m);
                ok = 0;
                break;
            }
            more = zmq_msg_more(m);
            if (nf < PG__MAXFRAMES)
                nf++;
            else
                zmq_msg_close(m); /* frames we do not use */
        }
        if (ok && nf > 0) s->on_msg(s, f, nf);
        for (int i = 0; i < nf; i++)
            zmq_msg_close(&f[i]);
    }
    s->pumping = false;
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    (void)events;
    pg__sock *s = h->data;
    if (status < 0) pg_log_warn("cluster: poll: %s", uv_strerror(status));
    pg__pump(s);
}

static int sock_poll(pg__sock *s, pg__msg_fn fn, int peer)
{
    int fd;
    size_t sz = sizeof fd;
    s->on_msg = fn;
    s->peer = peer;
    if (zmq_getsockopt(s->z, ZMQ_FD, &fd, &sz) != 0) return -1;
    if (uv_poll_init(C.loop, &s->poll, fd) != 0) return -1;
    s->poll.data = s;
    s->polling = true;
    uv_poll_start(&s->poll, UV_READABLE, on_poll);
    /* ZeroMQ signals the fd only once a reader has found its queues empty:
     * look once now, or a message that came before would never wake us. */
    pg__pump(s);
    return 0;
}

static void on_handle_closed(uv_handle_t *h)
{
    (void)h;
    if (--C.closing == 0) {
        free(C.peers);
        C.peers = NULL;
    }
}

static void sock_close(pg__sock *s)
{
    if (s->polling) {
        uv_poll_stop(&s->poll);
        C.closing++;
        uv_close((uv_handle_t *)&s->poll, on_handle_closed);
        s->polling = false;
    }
    if (s->z) {
        int zero = 0;
        zmq_setsockopt(s->z, ZMQ_LINGER, &zero, sizeof zero);
        zmq_close(s->z);
        s->z = NULL;
    }
}

/* A JSON object from a frame, or NULL. */
static json_t *frame_json(zmq_msg_t *m)
{
    json_error_t je;
    json_t *o = json_loadb(zmq_msg_data(m), zmq_msg_size(m), 0, &je);
    if (o && !json_is_object(o)) {
        json_decref(o);
        o = NULL;
    }
    return o;
}

/* ---- the snapshot other threads read ---- */

static void snap_update(pg__peer *p)
{
    pthread_mutex_lock(&snap_mu);
    if (snap) {
        pg_peer_info *s = &snap[p->idx];
        s->state = p->state;
        s->load = p->load;
        s->workers = p->workers;
        s->inflight = p->inflight;
    }
    pthread_mutex_unlock(&snap_mu);
}

/* ---- calls (caller side) ---- */

static void call_timer_closed(uv_handle_t *h)
{
    free(h->data);
}

static void call_unlink(pg__call *c)
{
    if (c->pprev == NULL) return;
    pg__peer *p = &C.peers[c->peer];
    if (p->queue_tail == c) {
        /* the tail's predecessor, found by its next pointer's address */
        p->queue_tail = c->pprev == &p->queue
                            ? NULL
                            : (pg__call *)((char *)c->pprev - offsetof(pg__call, next));
    }
    *c->pprev = c->next;
    if (c->next) c->next->pprev = c->pprev;
    c->next = NULL;
    c->pprev = NULL;
}

static void call_free(pg__call *c)
{
    json_decref(c->req);
    c->req = NULL;
    if (c->has_timer) {
        uv_timer_stop(&c->timer);
        c->timer.data = c;
        uv_close((uv_handle_t *)&c->timer, call_timer_closed);
    } else {
        free(c);
    }
}

static void dequeue(pg__peer *p);

/* Ends call C: exactly one callback. EV: the event (borrowed) or NULL to
 * make one from CODE and MSG. */
static void call_end(pg__call *c, int code, const json_t *ev, const void *data, size_t len,
                     const char *msg)
{
    pg__peer *p = c->peer >= 0 && C.peers ? &C.peers[c->peer] : NULL;
    bool was_sent = c->sent;
    call_unlink(c);
    if (p && was_sent) {
        p->inflight--;
        snap_update(p);
    }
    json_t *made = NULL;
    if (ev == NULL) {
        json_t *id = json_integer((json_int_t)c->id);
        made = pg_proto_error_event(id, code, msg, NULL);
        json_decref(id);
        if (made) json_object_set_new(made, "call", json_integer((json_int_t)c->id));
        ev = made;
    }
    c->cb(c->ctx, code, ev, data, len, c->node);
    json_decref(made);
    call_free(c);
    if (p && was_sent) dequeue(p);
}

static void push_pending(pg__peer *p, pg__call *c)
{
    c->next = p->pending;
    if (c->next) c->next->pprev = &c->next;
    c->pprev = &p->pending;
    p->pending = c;
}

static pg__call *find_call_in(pg__call *l, uint64_t id);

static void call_send(pg__peer *p, pg__call *c)
{
    int64_t elapsed = (int64_t)((pg_now_ns() - c->started_ns) / 1000000u);
    int64_t left = c->deadline_ms - elapsed;
    if (left < 1) left = 1;
    json_object_set_new(c->req, "type", json_string("run"));
    json_object_set_new(c->req, "id", json_integer((json_int_t)c->id));
    json_object_set_new(c->req, "call", json_integer((json_int_t)c->id));
    json_object_set_new(c->req, "progress", json_false());
    json_object_set_new(c->req, "timeout_ms", json_integer((json_int_t)left));
    /* Pending before the send: sending pumps the sockets, and a long pump
     * (other calls' big answers) may already bring this call's answer. */
    c->sent = true;
    p->inflight++;
    push_pending(p, c);
    snap_update(p);
    uint64_t id = c->id; /* C may be gone after the send (the pump can end it) */
    if (send_msg(&p->dealer, NULL, c->req, NULL, 0) != 0) {
        char m[200];
        snprintf(m, sizeof m, "cannot send to node '%s': %s", p->cfg->name, zmq_strerror(errno));
        pg__call *still = find_call_in(p->pending, id);
        if (still) call_end(still, PG_EPEER, NULL, NULL, 0, m);
    }
}

static void dequeue(pg__peer *p)
{
    while (C.running && p->queue && p->inflight < C.cfg->max_calls_per_peer &&
           p->state == PG_PEER_UP) {
        pg__call *c = p->queue;
        call_unlink(c);
        call_send(p, c);
    }
}

static void send_cancel(pg__peer *p, uint64_t id)
{
    json_t *h = json_pack("{s:s, s:I}", "type", "cancel", "call", (json_int_t)id);
    if (h && send_msg(&p->dealer, NULL, h, NULL, 0) != 0)
        pg_log_debug("cluster: cancel of call %llu to %s not sent", (unsigned long long)id,
                     p->cfg->name);
    json_decref(h);
}

static void on_call_deadline(uv_timer_t *t)
{
    pg__call *c = t->data;
    char m[200];
    snprintf(m, sizeof m, "node '%s' did not answer within %lld ms", c->node,
             (long long)c->deadline_ms);
    /* End the call before telling the peer: sending pumps the sockets, and
     * the answer may be in there (it would end the call a second time). */
    bool sent = c->sent;
    int peer = c->peer;
    uint64_t id = c->id;
    call_end(c, PG_ETIMEOUT, NULL, NULL, 0, m);
    if (sent) send_cancel(&C.peers[peer], id);
}

static void call_start(pg_loopmsg *m)
{
    pg__call *c = (pg__call *)m;
    c->started_ns = pg_now_ns();
    if (!C.running) {
        call_end(c, C.enabled ? PG_ESHUTDOWN : PG_EPEER, NULL, NULL, 0,
                 C.enabled ? "the daemon is shutting down" : "this daemon has no cluster");
        return;
    }
    int idx = find_node(c->node);
    if (idx < 0 || idx == C.self) {
        char msg[160];
        snprintf(msg, sizeof msg, "'%.60s' is not a peer of this node", c->node);
        call_end(c, PG_EPEER, NULL, NULL, 0, msg);
        return;
    }
    pg__peer *p = &C.peers[idx];
    c->peer = idx;
    if (p->state != PG_PEER_UP) {
        char msg[160];
        snprintf(msg, sizeof msg, "node '%s' is %s", c->node, state_name(p->state));
        call_end(c, PG_EPEER, NULL, NULL, 0, msg);
        return;
    }
    if (c->deadline_ms <= 0) c->deadline_ms = C.cfg->call_timeout_ms;
    uv_timer_init(C.loop, &c->timer);
    c->timer.data = c;
    c->has_timer = true;
    uv_timer_start(&c->timer, on_call_deadline, (uint64_t)c->deadline_ms, 0);
    if (p->inflight >= C.cfg->max_calls_per_peer) {
        /* Over the per-peer cap: wait here, on the loop, for a slot. */
        c->next = NULL;
        if (p->queue_tail) {
            p->queue_tail->next = c;
            c->pprev = &p->queue_tail->next;
        } else {
            p->queue = c;
            c->pprev = &p->queue;
        }
        p->queue_tail = c;
        return;
    }
    call_send(p, c);
}

uint64_t pg_cluster_call(const char *node, json_t *req, int64_t deadline_ms, pg_call_fn cb,
                         void *ctx)
{
    pg__call *c = calloc(1, sizeof *c);
    if (c == NULL) {
        pg_log_error("out of memory starting a remote call");
        abort();
    }
    c->id = atomic_fetch_add(&next_call_id, 1);
    snprintf(c->node, sizeof c->node, "%s", node ? node : "");
    c->peer = -1;
    c->req = req ? req : json_object();
    c->deadline_ms = deadline_ms;
    c->cb = cb;
    c->ctx = ctx;
    c->msg.run = call_start;
    pg_loop_post(&c->msg);
    return c->id;
}

static pg__call *find_call_in(pg__call *l, uint64_t id)
{
    for (; l; l = l->next)
        if (l->id == id) return l;
    return NULL;
}

static pg__call *find_call(uint64_t id)
{
    if (C.peers == NULL) return NULL;
    for (int i = 0; i < C.nnodes; i++) {
        if (i == C.self) continue;
        pg__call *c = find_call_in(C.peers[i].pending, id);
        if (!c) c = find_call_in(C.peers[i].queue, id);
        if (c) return c;
    }
    return NULL;
}

static void cancel_run(pg_loopmsg *m)
{
    pg__cancel_msg *cm = (pg__cancel_msg *)m;
    pg__call *c = find_call(cm->id);
    free(cm);
    if (c == NULL) return; /* ended already */
    bool sent = c->sent;   /* (ended first: see on_call_deadline) */
    int peer = c->peer;
    uint64_t id = c->id;
    call_end(c, PG_ECANCELLED, NULL, NULL, 0, "the remote call was cancelled");
    if (sent) send_cancel(&C.peers[peer], id);
}

void pg_cluster_cancel(uint64_t id)
{
    pg__cancel_msg *cm = calloc(1, sizeof *cm);
    if (cm == NULL) return;
    cm->id = id;
    cm->msg.run = cancel_run;
    pg_loop_post(&cm->msg);
}

/* Fails every call to P (sent or waiting) with CODE. */
static void fail_calls(pg__peer *p, int code, const char *msg)
{
    while (p->pending || p->queue) {
        pg__call *c = p->pending ? p->pending : p->queue;
        bool sent = c->sent; /* (ended first: see on_call_deadline) */
        uint64_t id = c->id;
        call_end(c, code, NULL, NULL, 0, msg);
        if (sent) send_cancel(p, id);
    }
}

/* ---- peer state ---- */

static void peer_update(pg__peer *p)
{
    uint64_t now = pg_now_ns();
    bool fresh = p->heard && now - p->last_seen_ns <= (uint64_t)C.cfg->peer_timeout_ms * 1000000u;
    pg_peer_state s = p->refused              ? PG_PEER_REFUSED
                      : fresh && p->connected ? PG_PEER_UP
                      : !p->ever_up           ? PG_PEER_CONNECTING
                                              : PG_PEER_DOWN;
    if (s == p->state) return;
    pg_peer_state old = p->state;
    p->state = s;
    if (s == PG_PEER_UP) p->ever_up = true;
    pg_log(s == PG_PEER_UP ? PG_LOG_INFO : PG_LOG_WARN, "cluster: peer %s (%s): %s -> %s",
           p->cfg->name, p->cfg->endpoint, state_name(old), state_name(s));
    snap_update(p);
    if (old == PG_PEER_UP) {
        char msg[200];
        snprintf(msg, sizeof msg, "node '%s' went %s during the call", p->cfg->name, state_name(s));
        fail_calls(p, PG_EPEER, msg);
        /* Its requests to us are work for nobody now. */
        pg_server *srv = pg_server_get();
        if (srv) pg_server_cancel_session(srv, PG_CLUSTER_SID_FLAG | (uint64_t)p->idx);
    } else if (s == PG_PEER_UP) {
        dequeue(p);
    }
}

static int64_t my_load(void)
{
    int64_t o = atomic_load(&load_override);
    if (o >= 0) return o;
    pg_server *srv = pg_server_get();
    int64_t queued = 0;
    uint64_t ran;
    pg_runtime_counts(&queued, &ran);
    return (srv ? srv->njobs : 0) + queued;
}

void pg_cluster_set_load(int64_t load)
{
    atomic_store(&load_override, load < 0 ? -1 : load);
}

/* A heartbeat to peer ONLY, or to every peer if ONLY < 0. */
static void send_hb(int only)
{
    json_t *hb = json_pack("{s:s, s:s, s:I, s:i}", "type", "hb", "node", C.cfg->nodes[C.self].name,
                           "load", (json_int_t)my_load(), "workers", pg_runtime_workers());
    for (int i = 0; hb && i < C.nnodes; i++) {
        if (i == C.self || (only >= 0 && i != only)) continue;
        /* EAGAIN while it is not connected (ZMQ_IMMEDIATE): no stale
         * heartbeats pile up for a peer that is away. */
        send_msg(&C.peers[i].dealer, NULL, hb, NULL, 0);
    }
    json_decref(hb);
}

static void on_tick(uv_timer_t *t)
{
    (void)t;
    uint64_t now = pg_now_ns();
    if (now - C.last_hb_ns >= (uint64_t)C.cfg->heartbeat_ms * 1000000u) {
        C.last_hb_ns = now;
        send_hb(-1);
    }
    /* A safety net for a lost edge (cheap: a few getsockopt). */
    pg__pump(&C.router);
    zap_pump(&C.zap);
    for (int i = 0; i < C.nnodes; i++)
        if (i != C.self) {
            pg__pump(&C.peers[i].mon);
            pg__pump(&C.peers[i].dealer);
            peer_update(&C.peers[i]);
        }
}

/* ---- the DEALER side: answers to our calls, handshake events ---- */

static void on_dealer_msg(pg__sock *s, zmq_msg_t *f, int nf)
{
    pg__peer *p = &C.peers[s->peer];
    json_t *h = frame_json(&f[0]);
    const char *type = json_string_value(json_object_get(h, "type"));
    json_t *cid = json_object_get(h, "call");
    if (h == NULL || type == NULL || strcmp(type, "event") != 0 || !json_is_integer(cid)) {
        pg_log_warn("cluster: a message from %s that is not an event: dropped", p->cfg->name);
        json_decref(h);
        return;
    }
    uint64_t id = (uint64_t)json_integer_value(cid);
    pg__call *c = find_call_in(p->pending, id);
    const char *event = json_string_value(json_object_get(h, "event"));
    if (c == NULL || event == NULL) { /* late: the call ended (deadline, cancel) */
        json_decref(h);
        return;
    }
    if (strcmp(event, "result") == 0) {
        const void *data = nf > 1 ? zmq_msg_data(&f[1]) : NULL;
        size_t len = nf > 1 ? zmq_msg_size(&f[1]) : 0;
        call_end(c, 0, h, data, len, NULL);
    } else if (strcmp(event, "error") == 0) {
        const char *code = json_string_value(json_object_get(json_object_get(h, "error"), "code"));
        int rc = code ? pg_err_from_name(code) : PG_EPROTO;
        if (rc == 0) rc = PG_EPROTO;
        call_end(c, rc, h, NULL, 0, NULL);
    }
    /* accepted, progress: nothing to do */
    json_decref(h);
}

static void on_monitor_msg(pg__sock *s, zmq_msg_t *f, int nf)
{
    if (nf < 1 || zmq_msg_size(&f[0]) < 6) return;
    pg__peer *p = &C.peers[s->peer];
    uint16_t event;
    uint32_t value;
    memcpy(&event, zmq_msg_data(&f[0]), 2);
    memcpy(&value, (char *)zmq_msg_data(&f[0]) + 2, 4);
    pg_log_debug("cluster: peer %s: socket event 0x%x (%u)", p->cfg->name, event, value);
    switch (event) {
    case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
        p->connected = true;
        if (p->refused) pg_log_info("cluster: peer %s accepted our key", p->cfg->name);
        p->refused = false;
        send_hb(s->peer); /* let it know at once, not at the next beat */
        break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        p->connected = false;
        if (!p->refused)
            pg_log_warn("cluster: the CURVE handshake with peer %s (%s) failed (%s %u): is its "
                        "public key in cluster.nodes right, and ours in its config?",
                        p->cfg->name, p->cfg->endpoint,
                        event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH       ? "refused, status"
                        : event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ? "protocol error"
                                                                       : "errno",
                        value);
        p->refused = true;
        break;
    case ZMQ_EVENT_DISCONNECTED:
        p->connected = false;
        break;
    default:
        break;
    }
    peer_update(p);
}

/* ---- the ROUTER side: heartbeats and requests from peers ---- */

static void send_event_to(pg__peer *p, json_t *ev, void *data, size_t len)
{
    if (send_msg(&C.router, p->cfg->name, ev, data, len) != 0)
        pg_log_warn("cluster: an answer to %s was dropped: %s", p->cfg->name, zmq_strerror(errno));
}

static void send_error_to(pg__peer *p, json_t *call, int code, const char *msg)
{
    json_t *ev = pg_proto_error_event(call, code, msg, NULL);
    if (ev == NULL) return;
    json_object_set_new(ev, "type", json_string("event"));
    json_object_set(ev, "call", call);
    send_event_to(p, ev, NULL, 0);
    json_decref(ev);
}

static void serve_run(pg__peer *p, json_t *h)
{
    json_t *call = json_object_get(h, "call");
    if (!json_is_integer(call) || json_integer_value(call) <= 0) {
        pg_log_warn("cluster: a run from %s without a call id: dropped", p->cfg->name);
        return;
    }
    static const char *const keys[] = {"type",       "id",       "call",  "graph",
                                       "timeout_ms", "progress", "window"};
    const char *k;
    json_t *v;
    json_object_foreach(h, k, v)
    {
        bool ok = false;
        for (size_t i = 0; i < PG_ARRAY_SIZE(keys) && !ok; i++)
            ok = strcmp(k, keys[i]) == 0;
        if (!ok) {
            char msg[200];
            snprintf(msg, sizeof msg, "unknown request key '%.100s' for type 'run'", k);
            return send_error_to(p, call, PG_EBADREQ, msg);
        }
    }
    json_t *g = json_object_get(h, "graph");
    json_t *to = json_object_get(h, "timeout_ms");
    if (!json_is_object(g))
        return send_error_to(p, call, PG_EBADREQ, "'graph' is required and must be an object");
    if (to && !(json_is_integer(to) && json_integer_value(to) > 0))
        return send_error_to(p, call, PG_EBADREQ, "'timeout_ms' must be an integer > 0");
    pg_server *srv = pg_server_get();
    if (srv == NULL) return send_error_to(p, call, PG_ESHUTDOWN, NULL);
    /* The job answers with the call id as its "id"; pg_cluster_deliver
     * routes its events back here. */
    json_t *req =
        json_pack("{s:O, s:s, s:O, s:b}", "id", call, "type", "run", "graph", g, "progress", 0);
    if (req && to) json_object_set(req, "timeout_ms", to);
    json_t *win = json_object_get(h, "window"); /* checked by the job, as a client's */
    if (req && win) json_object_set(req, "window", win);
    pg_error err = {0};
    if (req == NULL)
        send_error_to(p, call, PG_ENOMEM, NULL);
    else if (pg_server_start_job(srv, PG_CLUSTER_SID_FLAG | (uint64_t)p->idx, req, &err) != 0)
        send_error_to(p, call, err.code, err.message);
    json_decref(req);
}

static void serve_cancel(pg__peer *p, json_t *h)
{
    json_t *call = json_object_get(h, "call");
    pg_server *srv = pg_server_get();
    if (!json_is_integer(call) || srv == NULL) return;
    pg_jobent *e = pg_server_find_job(srv, PG_CLUSTER_SID_FLAG | (uint64_t)p->idx, call);
    if (e) pg_job_cancel(e->job, PG_ECANCELLED);
}

static void on_router_msg(pg__sock *s, zmq_msg_t *f, int nf)
{
    (void)s;
    if (nf < 2) return;
    char name[64];
    size_t n = zmq_msg_size(&f[0]);
    if (n == 0 || n >= sizeof name) return;
    memcpy(name, zmq_msg_data(&f[0]), n);
    name[n] = '\0';
    /* A node is who its key says (the ZAP handler's User-Id), whatever
     * routing id it claims. */
    const char *uid = zmq_msg_gets(&f[1], "User-Id");
    int idx = find_node(name);
    if (uid == NULL || strcmp(uid, name) != 0 || idx < 0 || idx == C.self) {
        pg_log_warn("cluster: a message from '%s' with the key of '%s': dropped", name,
                    uid ? uid : "?");
        return;
    }
    pg__peer *p = &C.peers[idx];
    json_t *h = frame_json(&f[1]);
    const char *type = json_string_value(json_object_get(h, "type"));
    if (type == NULL) {
        pg_log_warn("cluster: a message from %s without a type: dropped", name);
    } else if (strcmp(type, "hb") == 0) {
        p->heard = true;
        p->last_seen_ns = pg_now_ns();
        json_t *l = json_object_get(h, "load"), *w = json_object_get(h, "workers");
        if (json_is_integer(l)) p->load = json_integer_value(l);
        if (json_is_integer(w)) p->workers = (int)json_integer_value(w);
        snap_update(p);
        peer_update(p);
    } else if (strcmp(type, "run") == 0) {
        serve_run(p, h);
    } else if (strcmp(type, "cancel") == 0) {
        serve_cancel(p, h);
    } else {
        pg_log_warn("cluster: a '%.40s' message from %s: dropped", type, name);
    }
    json_decref(h);
}

void pg_cluster_deliver(uint64_t sid, json_t *event, void *data, size_t len)
{
    int idx = (int)(sid & ~PG_CLUSTER_SID_FLAG);
    if (!C.running || idx < 0 || idx >= C.nnodes || idx == C.self) {
        json_decref(event);
        free(data);
        return;
    }
    json_object_set_new(event, "type", json_string("event"));
    json_t *id = json_object_get(event, "id");
    if (id) json_object_set(event, "call", id);
    /* The attachment is frame 1; the header's "bytes" says how long. */
    send_event_to(&C.peers[idx], event, data, len);
    json_decref(event);
}

/* ---- ZAP: who may connect ---- */

static void log_refusal(const uint8_t key[32], const char *address)
{
    uint64_t now = pg_now_ns();
    pg__refusal *r = NULL;
    for (int i = 0; i < C.nrefusals; i++)
        if (memcmp(C.refusals[i].key, key, 32) == 0) r = &C.refusals[i];
    if (r == NULL) {
        int i = C.nrefusals < (int)PG_ARRAY_SIZE(C.refusals)
                    ? C.nrefusals++
                    : (int)(now % PG_ARRAY_SIZE(C.refusals));
        r = &C.refusals[i];
        memcpy(r->key, key, 32);
        r->last_ns = 0;
        r->suppressed = 0;
    }
    if (r->last_ns != 0 && now - r->last_ns < PG__REFUSAL_LOG_NS) {
        r->suppressed++;
        return;
    }
    char z85[41];
    zmq_z85_encode(z85, key, 32);
    if (r->suppressed)
        pg_log_warn("refused a CURVE connection from key %s: not in cluster.nodes (from %s; "
                    "%lld more times since the last report)",
                    z85, address, (long long)r->suppressed);
    else
        pg_log_warn("refused a CURVE connection from key %s: not in cluster.nodes (from %s)", z85,
                    address);
    r->last_ns = now;
    r->suppressed = 0;
}

/* The ZAP request has 7 frames for CURVE, more than pg__pump keeps: the
 * ZAP socket has its own reader. */
static void zap_pump(pg__sock *s)
{
    if (s->pumping) return;
    s->pumping = true;
    while (s->z) {
        int ev = 0;
        size_t sz = sizeof ev;
        if (zmq_getsockopt(s->z, ZMQ_EVENTS, &ev, &sz) != 0 || !(ev & ZMQ_POLLIN)) break;
        zmq_msg_t f[8];
        int nf = 0, more = 1, ok = 1;
        while (more) {
            zmq_msg_t *m = &f[nf < 7 ? nf : 7];
            zmq_msg_init(m);
            if (zmq_msg_recv(m, s->z, ZMQ_DONTWAIT) < 0) {
                zmq_msg_close(m);
                ok = 0;
                break;
            }
            more = zmq_msg_more(m);
            if (nf < 7)
                nf++;
            else
                zmq_msg_close(m);
        }
        if (ok && nf >= 6) {
            char mech[16] = "", addr[64] = "";
            size_t ml = zmq_msg_size(&f[5]), al = zmq_msg_size(&f[3]);
            memcpy(mech, zmq_msg_data(&f[5]), ml < sizeof mech - 1 ? ml : sizeof mech - 1);
            memcpy(addr, zmq_msg_data(&f[3]), al < sizeof addr - 1 ? al : sizeof addr - 1);
            const char *user = NULL;
            if (strcmp(mech, "CURVE") == 0 && nf >= 7 && zmq_msg_size(&f[6]) == 32) {
                char z85[41];
                zmq_z85_encode(z85, zmq_msg_data(&f[6]), 32);
                for (int i = 0; i < C.cfg->nnodes && !user; i++)
                    if (strcmp(C.cfg->nodes[i].public_key, z85) == 0) user = C.cfg->nodes[i].name;
                if (!user) log_refusal(zmq_msg_data(&f[6]), addr);
            } else {
                pg_log_warn("refused a %s connection from %s: only CURVE is accepted", mech, addr);
            }
            /* version, request id, status, text, user id, metadata */
            zmq_send(s->z, "1.0", 3, ZMQ_SNDMORE);
            zmq_send(s->z, zmq_msg_data(&f[1]), zmq_msg_size(&f[1]), ZMQ_SNDMORE);
            zmq_send(s->z, user ? "200" : "400", 3, ZMQ_SNDMORE);
            const char *text = user ? "OK" : "key not in cluster.nodes";
            zmq_send(s->z, text, strlen(text), ZMQ_SNDMORE);
            zmq_send(s->z, user ? user : "", user ? strlen(user) : 0, ZMQ_SNDMORE);
            zmq_send(s->z, "", 0, 0);
        } else if (ok) {
            pg_log_warn("cluster: a malformed ZAP request (%d frames)", nf);
        }
        for (int i = 0; i < nf; i++)
            zmq_msg_close(&f[i]);
    }
    s->pumping = false;
}

static void on_zap_poll(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    zap_pump(h->data);
}

/* ---- start / stop ---- */

static int zerr(pg_error *err, const char *what, const char *where)
{
    return pg_error_set(err, PG_ECONFIG, "cluster: %s %s: %s", what, where, zmq_strerror(errno));
}

static int setopt_int(void *z, int opt, int v)
{
    return zmq_setsockopt(z, opt, &v, sizeof v);
}

/* "tcp://HOST:PORT" -> what to bind: the address itself when HOST is an IP
 * address, else every interface (a host name is how the others reach us,
 * and ZeroMQ binds addresses or interfaces, not names). */
static void bind_endpoint(const char *ep, char *out, size_t n)
{
    char host[256];
    int port = 0;
    pg_config_split_addr(ep + 6, host, sizeof host, &port);
    unsigned char buf[16];
    if (inet_pton(AF_INET, host, buf) == 1)
        snprintf(out, n, "tcp://%s:%d", host, port);
    else if (inet_pton(AF_INET6, host, buf) == 1)
        snprintf(out, n, "tcp://[%s]:%d", host, port);
    else
        snprintf(out, n, "tcp://*:%d", port);
}

int pg_cluster_start(uv_loop_t *loop, const pg_config *cfg, pg_error *err)
{
    if (!cfg->cluster.enabled) return 0;
    const pg_cluster_cfg *k = &cfg->cluster;
    if (k->self < 0)
        return pg_error_set(err, PG_ECONFIG, "cluster: this node's key was not checked");
    if (!zmq_has("curve"))
        return pg_error_set(err, PG_ECONFIG, "cluster: this libzmq has no CURVE support");
    memset(&C, 0, sizeof C);
    C.enabled = true;
    C.loop = loop;
    C.cfg = k;
    C.self = k->self;
    C.nnodes = k->nnodes;
    atomic_store(&next_call_id, (uint64_t)(pg_now_ns() / 1000u)); /* unique across restarts */
    C.peers = calloc((size_t)k->nnodes, sizeof *C.peers);
    pthread_mutex_lock(&snap_mu);
    snap = calloc((size_t)k->nnodes, sizeof *snap);
    for (int i = 0; snap && i < k->nnodes; i++)
        snprintf(snap[i].name, sizeof snap[i].name, "%s", k->nodes[i].name);
    pthread_mutex_unlock(&snap_mu);
    if (C.peers == NULL || snap == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    C.ctx = zmq_ctx_new();
    if (C.ctx == NULL) return zerr(err, "cannot create a ZeroMQ context", "");
    int rc = 0;
    /* The ZAP handler first: CURVE handshakes on the ROUTER ask it. */
    C.zap.z = zmq_socket(C.ctx, ZMQ_REP);
    C.zap.peer = -1;
    if (C.zap.z == NULL || zmq_bind(C.zap.z, "inproc://zeromq.zap.01") != 0)
        return zerr(err, "cannot bind", "inproc://zeromq.zap.01");
    {
        int fd;
        size_t sz = sizeof fd;
        zmq_getsockopt(C.zap.z, ZMQ_FD, &fd, &sz);
        uv_poll_init(loop, &C.zap.poll, fd);
        C.zap.poll.data = &C.zap;
        C.zap.polling = true;
        uv_poll_start(&C.zap.poll, UV_READABLE, on_zap_poll);
        zap_pump(&C.zap);
    }
    const pg_cluster_node_cfg *me = &k->nodes[k->self];
    C.router.z = zmq_socket(C.ctx, ZMQ_ROUTER);
    if (C.router.z == NULL) return zerr(err, "cannot create a socket", "");
    rc |= setopt_int(C.router.z, ZMQ_CURVE_SERVER, 1);
    rc |= zmq_setsockopt(C.router.z, ZMQ_CURVE_SECRETKEY, k->secret_key, 40);
    rc |= zmq_setsockopt(C.router.z, ZMQ_ZAP_DOMAIN, "pergola", 7);
    rc |= setopt_int(C.router.z, ZMQ_ROUTER_HANDOVER, 1);  /* a restarted node takes over */
    rc |= setopt_int(C.router.z, ZMQ_ROUTER_MANDATORY, 1); /* say when a peer is gone */
    rc |= setopt_int(C.router.z, ZMQ_LINGER, 0);
    rc |= setopt_int(C.router.z, ZMQ_SNDHWM, 10000);
    rc |= setopt_int(C.router.z, ZMQ_RCVHWM, 10000);
    int64_t maxmsg = cfg->limits.max_request_bytes + 65536;
    rc |= zmq_setsockopt(C.router.z, ZMQ_MAXMSGSIZE, &maxmsg, sizeof maxmsg);
    if (rc != 0) return zerr(err, "cannot set up the ROUTER", "");
    char bind[300];
    bind_endpoint(me->endpoint, bind, sizeof bind);
    if (zmq_bind(C.router.z, bind) != 0) return zerr(err, "cannot bind", bind);
    if (sock_poll(&C.router, on_router_msg, -1) != 0) return zerr(err, "cannot poll", "the ROUTER");
    char pub[41];
    zmq_curve_public(pub, k->secret_key);
    for (int i = 0; i < k->nnodes; i++) {
        pg__peer *p = &C.peers[i];
        p->idx = i;
        p->cfg = &k->nodes[i];
        p->state = PG_PEER_CONNECTING;
        if (i == k->self) continue;
        void *d = zmq_socket(C.ctx, ZMQ_DEALER);
        if (d == NULL) return zerr(err, "cannot create a socket", "");
        p->dealer.z = d;
        rc = 0;
        rc |= zmq_setsockopt(d, ZMQ_ROUTING_ID, me->name, strlen(me->name));
        rc |= zmq_setsockopt(d, ZMQ_CURVE_SERVERKEY, p->cfg->public_key, 40);
        rc |= zmq_setsockopt(d, ZMQ_CURVE_PUBLICKEY, pub, 40);
        rc |= zmq_setsockopt(d, ZMQ_CURVE_SECRETKEY, k->secret_key, 40);
        rc |= setopt_int(d, ZMQ_RECONNECT_IVL, 100);
        rc |= setopt_int(d, ZMQ_RECONNECT_IVL_MAX, 5000);
        rc |= setopt_int(d, ZMQ_LINGER, 0);
        rc |= setopt_int(d, ZMQ_IMMEDIATE, 1); /* no queueing for a peer that is away */
        rc |= setopt_int(d, ZMQ_SNDHWM, 1000);
        rc |= setopt_int(d, ZMQ_RCVHWM, 1000);
        char mon[64];
        snprintf(mon, sizeof mon, "inproc://pergola-monitor-%d", i);
        rc |= zmq_socket_monitor(d, mon,
                                 ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |
                                     ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                                     ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_DISCONNECTED);
        if (rc != 0) return zerr(err, "cannot set up the DEALER to", p->cfg->name);
        p->mon.z = zmq_socket(C.ctx, ZMQ_PAIR);
        if (p->mon.z == NULL || zmq_connect(p->mon.z, mon) != 0)
            return zerr(err, "cannot monitor", p->cfg->name);
        if (sock_poll(&p->mon, on_monitor_msg, i) != 0 ||
            sock_poll(&p->dealer, on_dealer_msg, i) != 0)
            return zerr(err, "cannot poll", p->cfg->name);
        if (zmq_connect(d, p->cfg->endpoint) != 0)
            return zerr(err, "cannot connect to", p->cfg->endpoint);
    }
    uv_timer_init(loop, &C.tick);
    int64_t tick = k->heartbeat_ms;
    if (k->peer_timeout_ms / 4 < tick) tick = k->peer_timeout_ms / 4;
    if (tick < 5) tick = 5;
    uv_timer_start(&C.tick, on_tick, 0, (uint64_t)tick);
    C.running = true;
    pg_log_info("cluster: node %s at %s (%d peers), public key %s", me->name, me->endpoint,
                k->nnodes - 1, pub);
    return 0;
}

void pg_cluster_stop(void)
{
    if (!C.enabled || C.ctx == NULL) return;
    C.running = false;
    for (int i = 0; C.peers && i < C.nnodes; i++)
        if (i != C.self) fail_calls(&C.peers[i], PG_ESHUTDOWN, "the daemon is shutting down");
    if (uv_is_active((uv_handle_t *)&C.tick) || C.tick.loop) {
        uv_timer_stop(&C.tick);
        C.closing++;
        uv_close((uv_handle_t *)&C.tick, on_handle_closed);
    }
    C.closing++; /* held until every socket below is closed */
    for (int i = 0; C.peers && i < C.nnodes; i++) {
        if (i == C.self) continue;
        if (C.peers[i].dealer.z) zmq_socket_monitor(C.peers[i].dealer.z, NULL, 0);
        sock_close(&C.peers[i].dealer);
        sock_close(&C.peers[i].mon);
    }
    sock_close(&C.router);
    sock_close(&C.zap);
    zmq_ctx_term(C.ctx);
    C.ctx = NULL;
    pthread_mutex_lock(&snap_mu);
    free(snap);
    snap = NULL;
    pthread_mutex_unlock(&snap_mu);
    /* The C.peers array goes when the last handle has closed. */
    on_handle_closed(NULL);
}

/* ---- queries ---- */

const char *pg_cluster_self(void)
{
    return C.enabled ? C.cfg->nodes[C.self].name : NULL;
}

bool pg_cluster_knows(const char *name)
{
    return find_node(name) >= 0 || find_pool(name) != NULL;
}

int pg_cluster_peers(const char *name, pg_peer_info *out, int max)
{
    if (!C.enabled) return 0;
    int n = 0;
    pthread_mutex_lock(&snap_mu);
    if (snap) {
        const pg_cluster_pool_cfg *pool = find_pool(name);
        int one = name && !pool ? find_node(name) : -1;
        for (int i = 0; i < C.nnodes && n < max; i++) {
            if (i == C.self) continue;
            bool in = name == NULL || i == one;
            for (int j = 0; pool && !in && j < pool->nmembers; j++)
                in = strcmp(pool->members[j], C.cfg->nodes[i].name) == 0;
            if (in) out[n++] = snap[i];
        }
    }
    pthread_mutex_unlock(&snap_mu);
    return n;
}

json_t *pg_cluster_status(void)
{
    if (!C.enabled || !C.running) return NULL;
    json_t *peers = json_array();
    uint64_t now = pg_now_ns();
    for (int i = 0; i < C.nnodes; i++) {
        if (i == C.self) continue;
        pg__peer *p = &C.peers[i];
        json_t *o =
            json_pack("{s:s, s:s, s:s, s:I, s:i, s:I}", "name", p->cfg->name, "endpoint",
                      p->cfg->endpoint, "state", state_name(p->state), "load", (json_int_t)p->load,
                      "workers", p->workers, "inflight", (json_int_t)p->inflight);
        json_object_set_new(o, "last_seen_ms",
                            p->heard
                                ? json_integer((json_int_t)((now - p->last_seen_ns) / 1000000u))
                                : json_null());
        json_array_append_new(peers, o);
    }
    return json_pack("{s:s, s:s, s:o}", "node", C.cfg->nodes[C.self].name, "endpoint",
                     C.cfg->nodes[C.self].endpoint, "peers", peers);
}
