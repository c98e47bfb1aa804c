/* The session: one client connection, on the loop thread (see session.h). */
#include "actors/session.h"

#include "actors/job.h"
#include "cluster.h"
#include "log.h"
#include "loop.h"
#include "ops/registry.h"
#include "protocol.h"
#include "server.h"
#include "util.h"

#include <stdlib.h>
#include <string.h>

typedef struct pg_session {
    union {
        uv_handle_t h;
        uv_stream_t s;
        uv_tcp_t tcp;
        uv_pipe_t pipe;
    } u;
    uint64_t id;
    pg_server *srv;
    pg_framer *fr;
    bool closing;
    bool read_eof; /* the client half-closed: answer what runs, then close */
    struct pg_session *next, **pprev;
    char rbuf[65536];
} pg_session;

typedef struct wreq {
    uv_write_t req;
    char *line;
    void *data;
} wreq;

static pg_session *find_session(pg_server *srv, uint64_t id)
{
    for (pg_session *s = srv->sessions; s; s = s->next)
        if (s->id == id) return s;
    return NULL;
}

static void session_close(pg_session *s, bool graceful);

static void on_written(uv_write_t *req, int status)
{
    wreq *w = (wreq *)req;
    /* The client is gone (EPIPE, ECONNRESET): after it half-closed we no
     * longer read, so a failed write is the only sign. Its jobs are now
     * work for nobody: close, which cancels them. */
    pg_session *s = req->handle->data;
    if (status < 0 && status != UV_ECANCELED && s && !s->closing) session_close(s, false);
    free(w->line);
    free(w->data);
    free(w);
}

/* Writes EV (stolen) and its attachment DATA/LEN (stolen). */
static void send_event(pg_session *s, json_t *ev, void *data, size_t len)
{
    size_t n = 0;
    char *line = pg_proto_encode(ev, &n);
    json_decref(ev);
    wreq *w = calloc(1, sizeof *w);
    if (line == NULL || w == NULL || s->closing) {
        free(line);
        free(w);
        free(data);
        return;
    }
    w->line = line;
    w->data = data;
    uv_buf_t bufs[2] = {uv_buf_init(line, (unsigned)n), uv_buf_init(data, (unsigned)len)};
    int rc = uv_write(&w->req, &s->u.s, bufs, data && len ? 2 : 1, on_written);
    if (rc) {
        pg_log_debug("session %llu: write: %s", (unsigned long long)s->id, uv_strerror(rc));
        free(line);
        free(data);
        free(w);
    }
}

static void send_error(pg_session *s, json_t *id, int code, const char *msg)
{
    send_event(s, pg_proto_error_event(id, code, msg, NULL), NULL, 0);
}

static void send_result(pg_session *s, json_t *id, json_t *value)
{
    json_t *ev = pg_proto_event(id, "result");
    json_object_set_new(ev, "value", value);
    send_event(s, ev, NULL, 0);
}

/* ---- posting from workers ---- */

typedef struct post {
    pg_loopmsg base;
    uint64_t sid;
    json_t *ev;
    void *data;
    size_t len;
    pg_job *final_job;
    int outcome;
} post;

static void session_close(pg_session *s, bool graceful);

static bool has_jobs(pg_server *srv, uint64_t sid)
{
    for (pg_jobent *e = srv->jobs; e; e = e->next)
        if (e->session_id == sid) return true;
    return false;
}

static void post_run(pg_loopmsg *m)
{
    post *p = (post *)m;
    pg_server *srv = pg_server_get();
    pg_session *s = srv && !(p->sid & PG_CLUSTER_SID_FLAG) ? find_session(srv, p->sid) : NULL;
    if (p->sid & PG_CLUSTER_SID_FLAG) /* a peer's job: the answer goes back over ZeroMQ */
        pg_cluster_deliver(p->sid, p->ev, p->data, p->len);
    else if (s)
        send_event(s, p->ev, p->data, p->len);
    else {
        json_decref(p->ev);
        free(p->data);
    }
    if (p->final_job && srv) {
        pg_server_job_ended(srv, p->final_job, p->outcome);
        if (s && s->read_eof && !has_jobs(srv, s->id)) session_close(s, true);
    }
    free(p);
}

void pg_session_post(uint64_t sid, json_t *event, void *data, size_t len, struct pg_job *final_job,
                     int outcome)
{
    post *p = calloc(1, sizeof *p);
    if (p == NULL) {
        pg_log_error("out of memory posting an event");
        abort();
    }
    p->base.run = post_run;
    p->sid = sid;
    p->ev = event;
    p->data = data;
    p->len = len;
    p->final_job = final_job;
    p->outcome = outcome;
    pg_loop_post(&p->base);
}

/* ---- requests ---- */

static int check_keys(pg_session *s, json_t *id, json_t *req, const char *const *allowed)
{
    const char *k;
    json_t *v;
    json_object_foreach(req, k, v)
    {
        bool ok = strcmp(k, "id") == 0 || strcmp(k, "type") == 0;
        for (const char *const *a = allowed; !ok && *a; a++)
            ok = strcmp(k, *a) == 0;
        if (!ok) {
            char msg[200];
            snprintf(msg, sizeof msg, "unknown request key '%.100s' for type '%s'", k,
                     json_string_value(json_object_get(req, "type")));
            send_error(s, id, PG_EBADREQ, msg);
            return -1;
        }
    }
    return 0;
}

static void handle_run(pg_session *s, json_t *id, json_t *req)
{
    static const char *const keys[] = {"graph", "timeout_ms", "progress", "window", "distribute",
                                       NULL};
    if (check_keys(s, id, req, keys)) return;
    json_t *g = json_object_get(req, "graph");
    json_t *to = json_object_get(req, "timeout_ms");
    json_t *pr = json_object_get(req, "progress");
    if (!json_is_object(g))
        return send_error(s, id, PG_EBADREQ, "'graph' is required and must be an object");
    if (to && !(json_is_integer(to) && json_integer_value(to) > 0))
        return send_error(s, id, PG_EBADREQ, "'timeout_ms' must be an integer > 0");
    if (pr && !json_is_boolean(pr))
        return send_error(s, id, PG_EBADREQ, "'progress' must be true or false");
    pg_error err = {0};
    if (pg_server_start_job(s->srv, s->id, req, &err) != 0)
        send_error(s, id, err.code, err.message);
}

static void handle_cancel(pg_session *s, json_t *id, json_t *req)
{
    static const char *const keys[] = {"job", NULL};
    if (check_keys(s, id, req, keys)) return;
    json_t *target = json_object_get(req, "job");
    if (!json_is_string(target) && !json_is_integer(target))
        return send_error(s, id, PG_EBADREQ, "'job' must be the id of a run (string or integer)");
    pg_jobent *e = pg_server_find_job(s->srv, s->id, target);
    if (e == NULL) return send_error(s, id, PG_EUNKNOWNJOB, "no running job has that id");
    pg_job_cancel(e->job, PG_ECANCELLED);
    send_result(s, id, json_pack("{s:O}", "cancelled", target));
}

static void handle(pg_session *s, json_t *req, size_t attachment)
{
    json_t *id = json_object_get(req, "id");
    json_t *type = json_object_get(req, "type");
    static const char *const none[] = {NULL};
    if (!json_is_string(id) && !json_is_integer(id))
        return send_error(s, json_null(), PG_EBADREQ,
                          "every request needs an 'id': a string or an integer");
    if (!json_is_string(type))
        return send_error(s, id, PG_EBADREQ,
                          "'type' is required: one of run, cancel, ping, ops, status");
    if (attachment || json_object_get(req, "bytes"))
        return send_error(s, id, PG_EBADREQ, "this request takes no attachment ('bytes')");
    const char *t = json_string_value(type);
    if (strcmp(t, "run") == 0)
        handle_run(s, id, req);
    else if (strcmp(t, "cancel") == 0)
        handle_cancel(s, id, req);
    else if (strcmp(t, "ping") == 0) {
        if (check_keys(s, id, req, none) == 0)
            send_result(s, id, json_pack("{s:b, s:s}", "pong", 1, "version", PG_VERSION));
    } else if (strcmp(t, "ops") == 0) {
        if (check_keys(s, id, req, none) == 0) send_result(s, id, pg_ops_describe());
    } else if (strcmp(t, "status") == 0) {
        if (check_keys(s, id, req, none) == 0) send_result(s, id, pg_server_status(s->srv));
    } else {
        char msg[200];
        snprintf(msg, sizeof msg,
                 "unknown request type '%.80s': one of run, cancel, ping, ops, status", t);
        send_error(s, id, PG_EBADREQ, msg);
    }
}

/* The id of the message the framer is reporting on, if it parsed. */
static json_t *current_id(pg_session *s)
{
    const json_t *cur = pg_framer_current(s->fr);
    json_t *id = cur ? json_object_get(cur, "id") : NULL;
    return json_is_string(id) || json_is_integer(id) ? id : json_null();
}

static void on_msg(void *ud, json_t *msg, int code, const char *detail, const void *data,
                   size_t len)
{
    pg_session *s = ud;
    (void)data;
    if (s->closing) { /* the rest of a read after we gave up on the stream */
        json_decref(msg);
        return;
    }
    if (msg == NULL) {
        char m[300];
        snprintf(m, sizeof m, "%s: %.250s", code == PG_EBADJSON ? "not valid JSON" : "bad message",
                 detail ? detail : "");
        send_error(s, current_id(s), code ? code : PG_EBADJSON, m);
        /* A bad "bytes" leaves the stream's framing unknown: stop here. */
        if (code == PG_EBADREQ) session_close(s, true);
        return;
    }
    handle(s, msg, len);
    json_decref(msg);
}

static void on_frame_error(void *ud, int code, const char *detail)
{
    pg_session *s = ud;
    if (s->closing) return;
    if (pg_framer_current(s->fr)) { /* an attachment (its bytes are skipped) */
        send_error(s, current_id(s), PG_EBADREQ, "this request takes no attachment ('bytes')");
        return;
    }
    char m[300];
    snprintf(m, sizeof m, "%.250s (limits.max_request_bytes is %lld)",
             detail ? detail : "too large", (long long)s->srv->cfg->limits.max_request_bytes);
    send_error(s, current_id(s), code, m);
}

/* ---- connection lifecycle ---- */

static void on_closed(uv_handle_t *h)
{
    pg_session *s = h->data;
    pg_framer_destroy(&s->fr);
    free(s);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    (void)status;
    pg_session *s = req->handle->data;
    free(req);
    uv_close(&s->u.h, on_closed);
}

/* Forgets S and closes it; GRACEFUL lets queued answers reach the client
 * first. Its jobs are cancelled; their last events will find no session. */
static void session_close(pg_session *s, bool graceful)
{
    if (s->closing) return;
    s->closing = true;
    pg_server *srv = s->srv;
    pg_server_cancel_session(srv, s->id);
    *s->pprev = s->next;
    if (s->next) s->next->pprev = s->pprev;
    srv->nconnections--;
    uv_read_stop(&s->u.s);
    uv_shutdown_t *req = graceful ? malloc(sizeof *req) : NULL;
    if (req == NULL || uv_shutdown(req, &s->u.s, on_shutdown) != 0) {
        free(req);
        uv_close(&s->u.h, on_closed);
    }
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf)
{
    (void)hint;
    pg_session *s = h->data;
    *buf = uv_buf_init(s->rbuf, sizeof s->rbuf);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    pg_session *s = st->data;
    if (n == UV_EOF) {
        /* `printf ... | nc` half-closes after its requests: answer them all
         * (running jobs included), then close. */
        s->read_eof = true;
        uv_read_stop(st);
        if (!has_jobs(s->srv, s->id)) session_close(s, true);
        return;
    }
    if (n < 0) {
        pg_log_debug("session %llu: %s", (unsigned long long)s->id, uv_strerror((int)n));
        session_close(s, false);
        return;
    }
    if (n > 0) pg_framer_feed(s->fr, buf->base, (size_t)n);
}

void pg_session_accept(pg_server *srv, uv_stream_t *server_stream)
{
    pg_session *s = calloc(1, sizeof *s);
    if (s == NULL) return;
    s->srv = srv;
    s->id = ++srv->next_session_id;
    if (server_stream->type == UV_TCP)
        uv_tcp_init(srv->loop, &s->u.tcp);
    else
        uv_pipe_init(srv->loop, &s->u.pipe, 0);
    s->u.h.data = s;
    if (uv_accept(server_stream, &s->u.s) != 0) {
        uv_close(&s->u.h, on_closed);
        return;
    }
    if (server_stream->type == UV_TCP) uv_tcp_nodelay(&s->u.tcp, 1);
    size_t max_line = (size_t)srv->cfg->limits.max_request_bytes;
    s->fr = pg_framer_new(max_line, 0, on_msg, on_frame_error, s);
    s->next = srv->sessions;
    if (s->next) s->next->pprev = &s->next;
    s->pprev = &srv->sessions;
    srv->sessions = s;
    srv->nconnections++;
    if (s->fr == NULL || srv->nconnections > srv->cfg->limits.max_connections) {
        send_error(s, json_null(), PG_EBUSY,
                   "too many connections (limits.max_connections); try again later");
        session_close(s, true);
        return;
    }
    pg_log_debug("session %llu: connected", (unsigned long long)s->id);
    uv_read_start(&s->u.s, on_alloc, on_read);
}

void pg_session_close_all(pg_server *srv)
{
    while (srv->sessions)
        session_close(srv->sessions, true);
}
