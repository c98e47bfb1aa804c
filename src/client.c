/* The client library's connection, requests and results
 * (include/pergola/client.h).
 *
 * One blocking socket, driven with poll() and MSG_DONTWAIT so that every
 * wait has a deadline and the caller can also put the fd in its own loop.
 * Bytes read are fed to the protocol framer (src/protocol.h); each whole
 * event is filed under the request it answers (a pg__req, found by id).
 * Waiting for one request reads the connection until that request's final
 * event has arrived, filing the events of every other request on the way:
 * that is how several jobs share one connection without threads.
 */
#include "pergola/client.h"
#include "protocol.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define PG__DEFAULT_ADDRESS "127.0.0.1:7878"
#define PG__DEFAULT_PORT "7878"
#define PG__DEFAULT_TIMEOUT_MS 30000
/* How long pg_client_run() waits past the job's own deadline before giving
 * up on the daemon: the daemon's timeout error needs time to arrive. */
#define PG__RUN_GRACE_MS 5000
/* Limits handed to the framer. Generous: the daemon is trusted, and these
 * only stop a broken peer from making us allocate without bound. */
#define PG__MAX_LINE ((size_t)256 << 20)
#define PG__MAX_ATTACHMENT ((size_t)SIZE_MAX / 2)

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0 /* macOS: SO_NOSIGPIPE is set on the socket instead */
#endif

enum { PG__REQ_SIMPLE, PG__REQ_RUN };

/* One request in flight, from the moment it is sent until its outcome is
 * collected. */
typedef struct pg__req {
    pg_job id;
    int kind;      /* PG__REQ_* */
    int is_list;   /* run: the graph's "result" is a list */
    int answered;  /* some event with this id arrived */
    int final;     /* the result or error event arrived */
    int abandoned; /* nobody will collect it: drop it when it ends */
    pg_progress_fn progress;
    void *userdata;
    json_t *event; /* the final event (new reference) */
    void *data;    /* its attachment (malloc'd copy) */
    size_t len;
} pg__req;

struct pg_client {
    int fd;
    char *address;
    int timeout_ms;
    pg_job next_id;
    pg_framer *framer;
    pg__req **reqs; /* in the order they were sent */
    size_t nreqs, capreqs;
    /* Progress events not yet handed to their callbacks, oldest first:
     * callbacks run outside the framer (they may send requests), and each
     * event is delivered, not just the latest. */
    struct pg__prog {
        pg_job id;
        long long done, total;
    } * pq;
    size_t pq_head, pq_len, pq_cap;
    int dead; /* the connection is unusable: dead_err says why */
    pg_error dead_err;
    char server_version[64];
    unsigned char rbuf[64 * 1024];
};

struct pg_result {
    json_t *event; /* owns the value */
    json_t *value; /* borrowed from event */
    int is_list;
    size_t count;
    struct pg__item {
        pg_item_kind kind;
        json_t *json;     /* borrowed */
        const char *path; /* borrowed */
        pg_raster raster;
    } * items;
    void *data; /* the attachment all raster items point into */
    size_t len;
};

/* ------------------------------------------------------------------------ */
/* Small things                                                              */

const char *pg_version(void)
{
    return PG_VERSION;
}

const char *pg_default_address(void)
{
    const char *a = getenv("PERGOLA_CONNECT");
    return (a != NULL && a[0] != '\0') ? a : PG__DEFAULT_ADDRESS;
}

size_t pg_cell_size(const char *type)
{
    static const struct {
        const char *name;
        size_t size;
    } types[] = {{"u8", 1},  {"i8", 1},  {"u16", 2}, {"i16", 2},
                 {"u32", 4}, {"i32", 4}, {"f32", 4}, {"f64", 8}};
    if (type == NULL) return 0;
    for (size_t i = 0; i < PG_ARRAY_SIZE(types); i++)
        if (strcmp(type, types[i].name) == 0) return types[i].size;
    return 0;
}

/* Deadlines are absolute monotonic nanoseconds; UINT64_MAX is "never". */
static uint64_t pg__deadline(int timeout_ms)
{
    if (timeout_ms < 0) return UINT64_MAX;
    return pg_now_ns() + (uint64_t)timeout_ms * 1000000u;
}

/* Milliseconds left until DEADLINE, rounded up so that poll() does not wake
 * a fraction early and spin; -1 for no deadline. */
static int pg__remaining_ms(uint64_t deadline)
{
    if (deadline == UINT64_MAX) return -1;
    uint64_t now = pg_now_ns();
    if (now >= deadline) return 0;
    uint64_t ms = (deadline - now + 999999u) / 1000000u;
    return ms > INT32_MAX ? INT32_MAX : (int)ms;
}

static int pg__copy_error(pg_error *err, const pg_error *src)
{
    if (err != NULL) *err = *src;
    return src->code;
}

/* Marks the connection unusable (the first reason wins) and closes the
 * socket, so that nothing more is sent on a stream whose framing may be
 * broken. Events already filed stay collectable. */
__attribute__((format(printf, 3, 4))) static int pg__die(pg_client *c, int code, const char *fmt,
                                                         ...)
{
    if (!c->dead) {
        c->dead = 1;
        c->dead_err.code = code;
        c->dead_err.node[0] = '\0';
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(c->dead_err.message, sizeof c->dead_err.message, fmt, ap);
        va_end(ap);
        if (c->fd >= 0) close(c->fd);
        c->fd = -1;
    }
    return c->dead_err.code;
}

/* ------------------------------------------------------------------------ */
/* Requests in flight                                                        */

static pg__req *pg__find(const pg_client *c, pg_job id)
{
    for (size_t i = 0; i < c->nreqs; i++)
        if (c->reqs[i]->id == id) return c->reqs[i];
    return NULL;
}

static void pg__req_free(pg__req *r)
{
    if (r == NULL) return;
    json_decref(r->event);
    free(r->data);
    free(r);
}

static void pg__remove(pg_client *c, pg__req *r)
{
    for (size_t i = 0; i < c->nreqs; i++) {
        if (c->reqs[i] == r) {
            memmove(&c->reqs[i], &c->reqs[i + 1], (c->nreqs - i - 1) * sizeof c->reqs[0]);
            c->nreqs--;
            break;
        }
    }
    pg__req_free(r);
}

static pg__req *pg__add(pg_client *c, int kind, pg_error *err)
{
    if (c->nreqs == c->capreqs) {
        size_t cap = c->capreqs ? c->capreqs * 2 : 8;
        pg__req **n = realloc(c->reqs, cap * sizeof *n);
        if (n == NULL) {
            pg_error_set(err, PG_ENOMEM, "out of memory");
            return NULL;
        }
        c->reqs = n;
        c->capreqs = cap;
    }
    pg__req *r = calloc(1, sizeof *r);
    if (r == NULL) {
        pg_error_set(err, PG_ENOMEM, "out of memory");
        return NULL;
    }
    r->id = c->next_id++;
    r->kind = kind;
    c->reqs[c->nreqs++] = r;
    return r;
}

/* ------------------------------------------------------------------------ */
/* Incoming events                                                           */

static void pg__queue_progress(pg_client *c, const pg__req *r, long long done, long long total)
{
    if (r->progress == NULL || r->abandoned) return;
    if (c->pq_head == c->pq_len) c->pq_head = c->pq_len = 0;
    if (c->pq_len == c->pq_cap) {
        size_t cap = c->pq_cap ? c->pq_cap * 2 : 16;
        struct pg__prog *n = realloc(c->pq, cap * sizeof *n);
        if (n == NULL) return; /* progress is advisory: dropping one is harmless */
        c->pq = n;
        c->pq_cap = cap;
    }
    c->pq[c->pq_len++] = (struct pg__prog){r->id, done, total};
}

static void pg__on_msg(void *ud, json_t *msg, int code, const char *detail, const void *data,
                       size_t len)
{
    pg_client *c = ud;
    (void)code;
    if (msg == NULL) {
        /* Not JSON: whatever it was, we can no longer tell which request
         * it answered, so no wait could be trusted to end. */
        pg__die(c, PG_EPROTO, "the daemon sent a line that is not a JSON object: %.160s",
                detail ? detail : "?");
        return;
    }
    json_t *id = json_object_get(msg, "id");
    const char *event = json_string_value(json_object_get(msg, "event"));
    pg__req *r = NULL;
    if (json_is_integer(id)) {
        r = pg__find(c, (pg_job)json_integer_value(id));
    } else if (json_is_null(id) || id == NULL) {
        /* The daemon could not read a request's id (README: id is null when
         * the line could not be parsed, e.g. too_large). It reads requests
         * in order, so it is the oldest one that has had no answer yet. */
        for (size_t i = 0; i < c->nreqs && r == NULL; i++)
            if (!c->reqs[i]->answered) r = c->reqs[i];
    }
    /* Unknown ids and events (a newer daemon) are ignored, not fatal. */
    if (r == NULL || r->final || event == NULL) {
        json_decref(msg);
        return;
    }
    r->answered = 1;
    if (strcmp(event, "accepted") == 0) {
        pg__queue_progress(c, r, 0, json_integer_value(json_object_get(msg, "tiles")));
    } else if (strcmp(event, "progress") == 0) {
        pg__queue_progress(c, r, json_integer_value(json_object_get(msg, "done")),
                           json_integer_value(json_object_get(msg, "total")));
    } else if (strcmp(event, "result") == 0 || strcmp(event, "error") == 0) {
        r->final = 1;
        if (r->abandoned) {
            pg__remove(c, r);
        } else {
            r->event = msg;
            msg = NULL;
            if (len > 0 && data != NULL) {
                /* The framer's buffer is only valid during this call. */
                r->data = malloc(len);
                if (r->data == NULL) {
                    pg__die(c, PG_ENOMEM, "out of memory for a %zu-byte attachment", len);
                } else {
                    memcpy(r->data, data, len);
                    r->len = len;
                }
            }
        }
    }
    json_decref(msg);
}

static void pg__on_err(void *ud, int code, const char *detail)
{
    pg_client *c = ud;
    /* A skipped message may have been some job's result, whose wait would
     * then never end: fail loudly instead. */
    pg__die(c, code == PG_ENOMEM ? PG_ENOMEM : PG_EPROTO,
            "cannot take a message from the daemon: %.160s", detail ? detail : "too large");
}

/* Runs pending progress callbacks, in the order the events came. A
 * callback may call back into the library (pg_client_cancel), which may
 * read more events and change c->reqs: so no pointer is held across a
 * call, and the job is looked up again for each event. */
static void pg__dispatch_progress(pg_client *c)
{
    while (c->pq_head < c->pq_len) {
        struct pg__prog p = c->pq[c->pq_head++];
        pg__req *r = pg__find(c, p.id);
        if (r != NULL && r->progress != NULL && !r->abandoned)
            r->progress(p.done, p.total, r->userdata);
    }
}

/* Reads what is there without blocking and feeds it to the framer. */
static int pg__read_some(pg_client *c)
{
    if (c->dead) return c->dead_err.code;
    ssize_t n = recv(c->fd, c->rbuf, sizeof c->rbuf, MSG_DONTWAIT);
    if (n > 0) {
        pg_framer_feed(c->framer, c->rbuf, (size_t)n);
        return c->dead ? c->dead_err.code : 0;
    }
    if (n == 0) return pg__die(c, PG_ECLOSED, "the daemon closed the connection");
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return 0;
    return pg__die(c, PG_ECLOSED, "connection lost: %s", strerror(errno));
}

/* Waits until something arrives or DEADLINE passes, and reads it. 0 also
 * when nothing arrived in time. */
static int pg__pump(pg_client *c, uint64_t deadline)
{
    if (c->dead) return c->dead_err.code;
    struct pollfd p = {.fd = c->fd, .events = POLLIN};
    int rc = poll(&p, 1, pg__remaining_ms(deadline));
    if (rc < 0) {
        if (errno == EINTR) return 0;
        return pg__die(c, PG_ECLOSED, "poll: %s", strerror(errno));
    }
    if (rc == 0) return 0;
    /* POLLHUP/POLLERR: recv() reports the end or the error. */
    return pg__read_some(c);
}

/* Sends all of BUF, reading incoming events meanwhile: if we only wrote,
 * a daemon blocked writing progress to us while we fill its input could
 * deadlock with us. A partial line cannot be taken back, so any failure
 * here ends the connection. */
static int pg__send_all(pg_client *c, const char *buf, size_t len, pg_error *err)
{
    uint64_t deadline = pg__deadline(c->timeout_ms);
    size_t off = 0;
    while (off < len) {
        if (c->dead) return pg__copy_error(err, &c->dead_err);
        struct pollfd p = {.fd = c->fd, .events = POLLIN | POLLOUT};
        int rc = poll(&p, 1, pg__remaining_ms(deadline));
        if (rc < 0 && errno != EINTR) {
            pg__die(c, PG_ECLOSED, "poll: %s", strerror(errno));
            continue;
        }
        if (rc == 0) {
            pg__die(c, PG_ETIMEOUT, "the daemon did not read our request within %d ms",
                    c->timeout_ms);
            continue;
        }
        if (rc < 0) continue;
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            if (pg__read_some(c) < 0) continue;
        }
        if (p.revents & POLLOUT) {
            ssize_t n = send(c->fd, buf + off, len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
            if (n > 0) {
                off += (size_t)n;
            } else if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                pg__die(c, PG_ECLOSED, "connection lost: %s", strerror(errno));
            }
        }
    }
    return 0;
}

/* Sends MSG (borrowed) as one line. */
static int pg__send_msg(pg_client *c, json_t *msg, pg_error *err)
{
    size_t len = 0;
    char *line = pg_proto_encode(msg, &len);
    if (line == NULL) return pg_error_set(err, PG_EINVAL, "cannot encode the request as JSON");
    int rc = pg__send_all(c, line, len, err);
    free(line);
    return rc;
}

/* Fills ERR from an error event; returns its (negative) code. */
static int pg__event_error(json_t *event, pg_error *err)
{
    json_t *e = json_object_get(event, "error");
    const char *name = json_string_value(json_object_get(e, "code"));
    const char *message = json_string_value(json_object_get(e, "message"));
    const char *node = json_string_value(json_object_get(e, "node"));
    int code = pg_err_from_name(name);
    if (code >= 0) code = PG_EPROTO; /* "ok" in an error: nonsense */
    if (name != NULL && strcmp(pg_err_name(code), name) != 0) {
        /* A code newer than this library: keep its name for the reader. */
        pg_error_set(err, code, "%s: %s", name, message ? message : "(no message)");
    } else {
        pg_error_set(err, code, "%s", message ? message : pg_strerror(code));
    }
    pg_error_node(err, node ? node : "");
    return code;
}

/* Waits for request R's final event (or DEADLINE). Returns 0 when it is
 * there, PG_PENDING at the deadline, or the connection's error. */
static int pg__await(pg_client *c, pg_job id, uint64_t deadline, pg_error *err)
{
    int pumped = 0;
    for (;;) {
        pg__dispatch_progress(c);
        pg__req *r = pg__find(c, id);
        if (r == NULL) return pg_error_set(err, PG_EUNKNOWNJOB, "no job %lld", (long long)id);
        if (r->final) return 0;
        if (c->dead) return pg__copy_error(err, &c->dead_err);
        /* Look at the socket at least once even with a zero timeout. */
        if (pumped && pg_now_ns() >= deadline) return PG_PENDING;
        pg__pump(c, deadline);
        pumped = 1;
    }
}

/* ------------------------------------------------------------------------ */
/* Connecting                                                                */

static int pg__connect_fd(int fd, const struct sockaddr *sa, socklen_t salen, int timeout_ms)
{
    /* Non-blocking only for the connect, so that it has a timeout; the
     * socket is blocking afterwards (reads and writes use MSG_DONTWAIT). */
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) return -1;
    if (connect(fd, sa, salen) < 0) {
        if (errno != EINPROGRESS && errno != EAGAIN) return -1;
        struct pollfd p = {.fd = fd, .events = POLLOUT};
        uint64_t deadline = pg__deadline(timeout_ms);
        int rc;
        do
            rc = poll(&p, 1, pg__remaining_ms(deadline));
        while (rc < 0 && errno == EINTR);
        if (rc == 0) errno = ETIMEDOUT;
        if (rc <= 0) return -1;
        int soerr = 0;
        socklen_t sl = sizeof soerr;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0) return -1;
        if (soerr != 0) {
            errno = soerr;
            return -1;
        }
    }
    if (fcntl(fd, F_SETFL, fl) < 0) return -1;
    return 0;
}

static int pg__new_socket(int family)
{
    int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
#ifdef SO_NOSIGPIPE
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
    return fd;
}

static int pg__connect_unix(const char *path, int timeout_ms, const char *address, pg_error *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (path[0] == '\0' || strlen(path) >= sizeof sa.sun_path) {
        errno = ENAMETOOLONG;
        return pg_error_set(err, PG_EINVAL, "bad Unix socket path in address '%s'", address);
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    int fd = pg__new_socket(AF_UNIX);
    if (fd < 0 || pg__connect_fd(fd, (struct sockaddr *)&sa, sizeof sa, timeout_ms) < 0) {
        int e = errno;
        if (fd >= 0) close(fd);
        pg_error_set(err, PG_ECONNECT, "cannot connect to %s: %s", address, strerror(e));
        errno = e;
        return PG_ECONNECT;
    }
    return fd;
}

static int pg__connect_tcp(const char *hostport, int timeout_ms, const char *address, pg_error *err)
{
    char host[256];
    const char *port = PG__DEFAULT_PORT;
    const char *colon;
    size_t hlen;
    if (hostport[0] == '[') { /* [v6]:port */
        const char *end = strchr(hostport, ']');
        if (end == NULL || (end[1] != '\0' && end[1] != ':'))
            return pg_error_set(err, PG_EINVAL, "bad address '%s'", address);
        hlen = (size_t)(end - hostport - 1);
        if (hlen >= sizeof host) return pg_error_set(err, PG_EINVAL, "bad address '%s'", address);
        memcpy(host, hostport + 1, hlen);
        if (end[1] == ':') port = end + 2;
    } else {
        colon = strrchr(hostport, ':');
        hlen = colon ? (size_t)(colon - hostport) : strlen(hostport);
        if (hlen >= sizeof host) return pg_error_set(err, PG_EINVAL, "bad address '%s'", address);
        memcpy(host, hostport, hlen);
        if (colon) port = colon + 1;
    }
    host[hlen] = '\0';
    if (port[0] == '\0') return pg_error_set(err, PG_EINVAL, "no port in address '%s'", address);
    if (host[0] == '\0') strcpy(host, "127.0.0.1");

    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res = NULL;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai != 0) {
        int e = gai == EAI_SYSTEM ? errno : EHOSTUNREACH;
        pg_error_set(err, PG_ECONNECT, "cannot connect to %s: %s", address,
                     gai == EAI_SYSTEM ? strerror(e) : gai_strerror(gai));
        errno = e;
        return PG_ECONNECT;
    }
    int e = ECONNREFUSED;
    int fd = -1;
    for (struct addrinfo *ai = res; ai != NULL; ai = ai->ai_next) {
        fd = pg__new_socket(ai->ai_family);
        if (fd < 0) {
            e = errno;
            continue;
        }
        if (pg__connect_fd(fd, ai->ai_addr, ai->ai_addrlen, timeout_ms) == 0) break;
        e = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        pg_error_set(err, PG_ECONNECT, "cannot connect to %s: %s", address, strerror(e));
        errno = e;
        return PG_ECONNECT;
    }
    /* Requests are small lines that want to leave now (ping's round trip
     * measures the daemon, not Nagle's delay). */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

pg_client *pg_client_new(const char *address, int timeout_ms, pg_error *err)
{
    if (address == NULL) address = pg_default_address();
    if (timeout_ms == 0) timeout_ms = PG__DEFAULT_TIMEOUT_MS;
    int fd;
    if (strncmp(address, "unix://", 7) == 0)
        fd = pg__connect_unix(address + 7, timeout_ms, address, err);
    else if (strncmp(address, "unix:", 5) == 0)
        fd = pg__connect_unix(address + 5, timeout_ms, address, err);
    else if (strncmp(address, "tcp://", 6) == 0)
        fd = pg__connect_tcp(address + 6, timeout_ms, address, err);
    else if (strchr(address, '/') != NULL)
        fd = pg__connect_unix(address, timeout_ms, address, err);
    else
        fd = pg__connect_tcp(address, timeout_ms, address, err);
    if (fd < 0) return NULL;

    pg_client *c = calloc(1, sizeof *c);
    if (c != NULL) {
        c->fd = fd;
        c->timeout_ms = timeout_ms;
        c->next_id = 1;
        c->address = strdup(address);
        c->framer = pg_framer_new(PG__MAX_LINE, PG__MAX_ATTACHMENT, pg__on_msg, pg__on_err, c);
    }
    if (c == NULL || c->address == NULL || c->framer == NULL) {
        if (c != NULL) {
            free(c->address);
            pg_framer_destroy(&c->framer);
            free(c);
        }
        close(fd);
        pg_error_set(err, PG_ECONNECT, "cannot connect to %s: out of memory", address);
        errno = ENOMEM;
        return NULL;
    }
    return c;
}

void pg_client_destroy(pg_client **cp)
{
    if (cp == NULL || *cp == NULL) return;
    pg_client *c = *cp;
    if (c->fd >= 0) {
        /* Runs still going would go on in the daemon for nobody (it cannot
         * tell a closed client from one that only stopped sending): cancel
         * them first, best effort, without waiting for the answers. */
        for (size_t i = 0; i < c->nreqs; i++) {
            const pg__req *r = c->reqs[i];
            if (r->kind != PG__REQ_RUN || r->final) continue;
            char line[96];
            int n = snprintf(line, sizeof line,
                             "{\"id\":\"pergola-destroy-%lld\",\"type\":\"cancel\",\"job\":%lld}\n",
                             (long long)r->id, (long long)r->id);
            if (n > 0 && (size_t)n < sizeof line)
                (void)!send(c->fd, line, (size_t)n, MSG_NOSIGNAL | MSG_DONTWAIT);
        }
        close(c->fd);
    }
    for (size_t i = 0; i < c->nreqs; i++)
        pg__req_free(c->reqs[i]);
    free(c->reqs);
    pg_framer_destroy(&c->framer);
    free(c->pq);
    free(c->address);
    free(c);
    *cp = NULL;
}

int pg_client_fd(const pg_client *c)
{
    return c ? c->fd : -1;
}

const char *pg_client_address(const pg_client *c)
{
    return c ? c->address : NULL;
}

void pg_client_set_timeout(pg_client *c, int timeout_ms)
{
    if (c != NULL) c->timeout_ms = timeout_ms == 0 ? PG__DEFAULT_TIMEOUT_MS : timeout_ms;
}

const char *pg_client_server_version(const pg_client *c)
{
    return (c && c->server_version[0]) ? c->server_version : NULL;
}

/* ------------------------------------------------------------------------ */
/* Simple requests                                                           */

int pg_client_request(pg_client *c, const char *type, json_t *fields, json_t **value, pg_error *err)
{
    if (value != NULL) *value = NULL;
    if (c == NULL || type == NULL || (fields != NULL && !json_is_object(fields)))
        return pg_error_set(err, PG_EINVAL, "pg_client_request: bad arguments");
    if (c->dead) return pg__copy_error(err, &c->dead_err);
    json_t *msg = fields ? json_deep_copy(fields) : json_object();
    pg__req *r = msg ? pg__add(c, PG__REQ_SIMPLE, err) : NULL;
    if (r == NULL) {
        json_decref(msg);
        return pg_error_set(err, PG_ENOMEM, "out of memory");
    }
    pg_job id = r->id;
    json_object_set_new(msg, "id", json_integer(id));
    json_object_set_new(msg, "type", json_string(type));
    int rc = pg__send_msg(c, msg, err);
    json_decref(msg);
    if (rc < 0) {
        pg__remove(c, r);
        return rc;
    }
    rc = pg__await(c, id, pg__deadline(c->timeout_ms), err);
    r = pg__find(c, id);
    if (rc == PG_PENDING) {
        r->abandoned = 1; /* its answer, if it ever comes, is dropped */
        return pg_error_set(err, PG_ETIMEOUT, "no answer from the daemon to '%s' within %d ms",
                            type, c->timeout_ms);
    }
    if (rc < 0) {
        if (r != NULL) r->abandoned = 1;
        return rc;
    }
    json_t *ev = r->event;
    if (strcmp(json_string_value(json_object_get(ev, "event")), "error") == 0) {
        rc = pg__event_error(ev, err);
    } else if (value != NULL) {
        json_t *v = json_object_get(ev, "value");
        *value = v ? json_incref(v) : json_null();
    }
    pg__remove(c, r);
    return rc;
}

int pg_client_ping(pg_client *c, double *rtt_ms, pg_error *err)
{
    json_t *v = NULL;
    uint64_t t0 = pg_now_ns();
    int rc = pg_client_request(c, "ping", NULL, &v, err);
    uint64_t t1 = pg_now_ns();
    if (rc < 0) return rc;
    if (rtt_ms != NULL) *rtt_ms = (double)(t1 - t0) / 1e6;
    const char *ver = json_string_value(json_object_get(v, "version"));
    if (ver != NULL) pg_strlcpy(c->server_version, ver, sizeof c->server_version);
    json_decref(v);
    return 0;
}

int pg_client_ops(pg_client *c, json_t **ops, pg_error *err)
{
    json_t *v = NULL;
    if (ops != NULL) *ops = NULL;
    int rc = pg_client_request(c, "ops", NULL, &v, err);
    if (rc < 0) return rc;
    if (!json_is_array(v)) {
        json_decref(v);
        return pg_error_set(err, PG_EPROTO, "the daemon's op list is not a JSON array");
    }
    if (ops != NULL)
        *ops = v;
    else
        json_decref(v);
    return 0;
}

int pg_client_status(pg_client *c, json_t **status, pg_error *err)
{
    json_t *v = NULL;
    if (status != NULL) *status = NULL;
    int rc = pg_client_request(c, "status", NULL, &v, err);
    if (rc < 0) return rc;
    if (!json_is_object(v)) {
        json_decref(v);
        return pg_error_set(err, PG_EPROTO, "the daemon's status is not a JSON object");
    }
    if (status != NULL)
        *status = v;
    else
        json_decref(v);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Results                                                                   */

static double pg__num(json_t *j, double dflt)
{
    return json_is_number(j) ? json_number_value(j) : dflt;
}

/* Classifies item I and, for rasters, checks it against the attachment. */
static int pg__item_init(pg_result *res, size_t i, json_t *item, pg_error *err)
{
    struct pg__item *it = &res->items[i];
    it->json = item;
    it->kind = PG_ITEM_VALUE;
    json_t *hdr = json_object_get(item, "raster");
    json_t *off = json_object_get(item, "offset");
    json_t *len = json_object_get(item, "length");
    if (json_is_object(hdr) && (off != NULL || len != NULL)) {
        if (!json_is_integer(off) || !json_is_integer(len))
            return pg_error_set(err, PG_EPROTO,
                                "result item %zu: a raster without an integer "
                                "offset and length",
                                i);
        json_int_t o = json_integer_value(off), l = json_integer_value(len);
        if (o < 0 || l < 0 || (uint64_t)o > res->len || (uint64_t)l > res->len - (uint64_t)o)
            return pg_error_set(err, PG_EPROTO,
                                "result item %zu: bytes %lld..%lld are outside the %zu bytes "
                                "received",
                                i, (long long)o, (long long)o + (long long)l, res->len);
        pg_raster *ra = &it->raster;
        it->kind = PG_ITEM_RASTER;
        ra->width = (int)json_integer_value(json_object_get(hdr, "width"));
        ra->height = (int)json_integer_value(json_object_get(hdr, "height"));
        ra->bands = (int)json_integer_value(json_object_get(hdr, "bands"));
        const char *type = json_string_value(json_object_get(hdr, "type"));
        ra->type = type ? type : "";
        json_t *nd = json_object_get(hdr, "nodata");
        ra->has_nodata = json_is_number(nd);
        ra->nodata = pg__num(nd, 0);
        /* JSON has no NaN; a daemon may send a float nodata of NaN as the
         * string "nan" (as GDAL prints it). */
        if (json_is_string(nd) && strcasecmp(json_string_value(nd), "nan") == 0) {
            ra->has_nodata = 1;
            ra->nodata = NAN;
        }
        static const double identity[6] = {0, 1, 0, 0, 0, 1};
        json_t *gt = json_object_get(hdr, "geotransform");
        ra->has_geotransform = json_is_array(gt) && json_array_size(gt) == 6;
        for (size_t k = 0; k < 6; k++)
            ra->geotransform[k] =
                ra->has_geotransform ? pg__num(json_array_get(gt, k), 0) : identity[k];
        const char *crs = json_string_value(json_object_get(hdr, "crs"));
        ra->crs = crs ? crs : "";
        ra->length = (size_t)l;
        ra->data = l > 0 ? (const unsigned char *)res->data + o : NULL;
        return 0;
    }
    const char *path = json_string_value(json_object_get(item, "path"));
    if (path != NULL) {
        it->kind = PG_ITEM_PATH;
        it->path = path;
    }
    return 0;
}

/* Turns request R's final event into a result (R's event and bytes move
 * into it) or an error. */
static int pg__make_result(pg__req *r, pg_result **out, pg_error *err)
{
    json_t *ev = r->event;
    if (strcmp(json_string_value(json_object_get(ev, "event")), "error") == 0)
        return pg__event_error(ev, err);
    pg_result *res = calloc(1, sizeof *res);
    if (res == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    res->event = ev;
    r->event = NULL;
    res->data = r->data;
    res->len = r->len;
    r->data = NULL;
    r->len = 0;
    res->value = json_object_get(ev, "value");
    if (res->value == NULL) res->value = json_null();
    res->is_list = r->is_list;
    int rc = 0;
    if (res->is_list && !json_is_array(res->value)) {
        rc = pg_error_set(err, PG_EPROTO, "the graph's result is a list but its value is not");
    } else {
        res->count = res->is_list ? json_array_size(res->value) : 1;
        res->items = calloc(res->count ? res->count : 1, sizeof *res->items);
        if (res->items == NULL) rc = pg_error_set(err, PG_ENOMEM, "out of memory");
        for (size_t i = 0; rc == 0 && i < res->count; i++)
            rc = pg__item_init(res, i, res->is_list ? json_array_get(res->value, i) : res->value,
                               err);
    }
    if (rc < 0) {
        pg_result_destroy(&res);
        return rc;
    }
    if (out != NULL)
        *out = res;
    else
        pg_result_destroy(&res);
    return 0;
}

size_t pg_result_count(const pg_result *r)
{
    return r ? r->count : 0;
}

int pg_result_is_list(const pg_result *r)
{
    return r ? r->is_list : 0;
}

json_t *pg_result_value(const pg_result *r)
{
    return r ? r->value : NULL;
}

pg_item_kind pg_result_item_kind(const pg_result *r, size_t i)
{
    return (r && i < r->count) ? r->items[i].kind : PG_ITEM_NONE;
}

json_t *pg_result_item(const pg_result *r, size_t i)
{
    return (r && i < r->count) ? r->items[i].json : NULL;
}

const char *pg_result_path(const pg_result *r, size_t i)
{
    return (r && i < r->count && r->items[i].kind == PG_ITEM_PATH) ? r->items[i].path : NULL;
}

const pg_raster *pg_result_raster(const pg_result *r, size_t i)
{
    return (r && i < r->count && r->items[i].kind == PG_ITEM_RASTER) ? &r->items[i].raster : NULL;
}

void pg_result_destroy(pg_result **rp)
{
    if (rp == NULL || *rp == NULL) return;
    pg_result *r = *rp;
    json_decref(r->event);
    free(r->items);
    free(r->data);
    free(r);
    *rp = NULL;
}

/* ------------------------------------------------------------------------ */
/* Runs                                                                      */

int pg_client_submit_json(pg_client *c, json_t *graph, const pg_run_opts *opts, pg_job *job,
                          pg_error *err)
{
    static const pg_run_opts none = {0};
    if (opts == NULL) opts = &none;
    if (job != NULL) *job = 0;
    if (c == NULL || !json_is_object(graph))
        return pg_error_set(err, PG_EINVAL, "a graph must be a JSON object");
    if (opts->timeout_ms < 0)
        return pg_error_set(err, PG_EINVAL, "timeout_ms must be >= 0 (0: no deadline)");
    if (c->dead) return pg__copy_error(err, &c->dead_err);
    pg__req *r = pg__add(c, PG__REQ_RUN, err);
    if (r == NULL) return PG_ENOMEM;
    /* The shape of the value depends on this: a list result is a list of
     * items, while one item may itself be a JSON list. */
    r->is_list = json_is_array(json_object_get(graph, "result"));
    r->progress = opts->progress;
    r->userdata = opts->userdata;
    pg_job id = r->id;
    json_t *msg = json_pack("{sI ss sO sb}", "id", (json_int_t)id, "type", "run", "graph", graph,
                            "progress", opts->progress != NULL);
    if (msg != NULL && opts->timeout_ms > 0)
        json_object_set_new(msg, "timeout_ms", json_integer(opts->timeout_ms));
    if (msg != NULL && opts->request != NULL) {
        const char *k;
        json_t *v;
        json_object_foreach(opts->request, k, v)
        {
            if (json_object_get(msg, k) != NULL || strcmp(k, "timeout_ms") == 0) {
                json_decref(msg);
                pg__remove(c, r);
                return pg_error_set(err, PG_EINVAL,
                                    "pg_run_opts.request may not set '%s' (the library's own)", k);
            }
            json_object_set(msg, k, v);
        }
    }
    int rc = msg ? pg__send_msg(c, msg, err) : pg_error_set(err, PG_ENOMEM, "out of memory");
    json_decref(msg);
    if (rc < 0) {
        pg__remove(c, r);
        return rc;
    }
    if (job != NULL) *job = id;
    return 0;
}

int pg_client_submit(pg_client *c, const char *graph, const pg_run_opts *opts, pg_job *job,
                     pg_error *err)
{
    if (job != NULL) *job = 0;
    if (graph == NULL) return pg_error_set(err, PG_EINVAL, "no graph");
    json_error_t je;
    json_t *g = json_loads(graph, 0, &je);
    if (g == NULL)
        return pg_error_set(err, PG_EBADJSON,
                            "the graph is not valid JSON: %s (line %d, column %d)", je.text,
                            je.line, je.column);
    int rc = pg_client_submit_json(c, g, opts, job, err);
    json_decref(g);
    return rc;
}

int pg_client_submit_graph(pg_client *c, const pg_graph *g, const pg_run_opts *opts, pg_job *job,
                           pg_error *err)
{
    if (job != NULL) *job = 0;
    json_t *j = pg_graph_to_json(g);
    if (j == NULL) return pg_error_set(err, PG_EINVAL, "no graph");
    int rc = pg_client_submit_json(c, j, opts, job, err);
    json_decref(j);
    return rc;
}

int pg_client_wait(pg_client *c, pg_job job, int timeout_ms, pg_result **out, pg_error *err)
{
    if (out != NULL) *out = NULL;
    if (c == NULL) return pg_error_set(err, PG_EINVAL, "no client");
    pg__req *r = pg__find(c, job);
    if (r == NULL || r->kind != PG__REQ_RUN || r->abandoned)
        return pg_error_set(err, PG_EUNKNOWNJOB, "no job %lld on this connection", job);
    int rc = pg__await(c, job, pg__deadline(timeout_ms), err);
    if (rc != 0) return rc; /* PG_PENDING, or the connection is gone */
    r = pg__find(c, job);
    rc = pg__make_result(r, out, err);
    pg__remove(c, r);
    return rc;
}

static int pg__run(pg_client *c, int rc, pg_job job, const pg_run_opts *opts, pg_result **out,
                   pg_error *err)
{
    if (rc < 0) return rc;
    int wait_ms = (opts && opts->timeout_ms > 0) ? opts->timeout_ms + PG__RUN_GRACE_MS : -1;
    rc = pg_client_wait(c, job, wait_ms, out, err);
    if (rc != PG_PENDING) return rc;
    /* The daemon missed its own deadline: stop the job and drop whatever it
     * still sends, so the connection stays usable. */
    pg__req *r = pg__find(c, job);
    if (r != NULL) r->abandoned = 1;
    json_t *f = json_pack("{sI}", "job", (json_int_t)job);
    pg__req *cr = f ? pg__add(c, PG__REQ_SIMPLE, NULL) : NULL;
    if (cr != NULL) {
        cr->abandoned = 1;
        json_object_set_new(f, "id", json_integer(cr->id));
        json_object_set_new(f, "type", json_string("cancel"));
        if (pg__send_msg(c, f, NULL) < 0) pg__remove(c, cr);
    }
    json_decref(f);
    return pg_error_set(err, PG_ETIMEOUT, "no answer from the daemon within %d ms of the deadline",
                        PG__RUN_GRACE_MS);
}

/* Submit, then wait: two statements, since the wait needs the job id the
 * submit sets. */
int pg_client_run_json(pg_client *c, json_t *graph, const pg_run_opts *opts, pg_result **out,
                       pg_error *err)
{
    pg_job job = 0;
    if (out != NULL) *out = NULL;
    int rc = pg_client_submit_json(c, graph, opts, &job, err);
    return pg__run(c, rc, job, opts, out, err);
}

int pg_client_run(pg_client *c, const char *graph, const pg_run_opts *opts, pg_result **out,
                  pg_error *err)
{
    pg_job job = 0;
    if (out != NULL) *out = NULL;
    int rc = pg_client_submit(c, graph, opts, &job, err);
    return pg__run(c, rc, job, opts, out, err);
}

int pg_client_run_graph(pg_client *c, const pg_graph *g, const pg_run_opts *opts, pg_result **out,
                        pg_error *err)
{
    pg_job job = 0;
    if (out != NULL) *out = NULL;
    int rc = pg_client_submit_graph(c, g, opts, &job, err);
    return pg__run(c, rc, job, opts, out, err);
}

int pg_client_cancel(pg_client *c, pg_job job, pg_error *err)
{
    if (c == NULL) return pg_error_set(err, PG_EINVAL, "no client");
    pg__req *r = pg__find(c, job);
    if (r == NULL || r->kind != PG__REQ_RUN || r->abandoned)
        return pg_error_set(err, PG_EUNKNOWNJOB, "no job %lld on this connection", job);
    if (r->final) return pg_error_set(err, PG_EUNKNOWNJOB, "job %lld has already finished", job);
    json_t *f = json_pack("{sI}", "job", (json_int_t)job);
    if (f == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    int rc = pg_client_request(c, "cancel", f, NULL, err);
    json_decref(f);
    return rc;
}

int pg_client_process(pg_client *c, int timeout_ms, pg_error *err)
{
    if (c == NULL) return pg_error_set(err, PG_EINVAL, "no client");
    int rc = pg__pump(c, pg__deadline(timeout_ms));
    /* Drain what else is already there, so one call empties the socket. */
    while (rc == 0 && !c->dead) {
        struct pollfd p = {.fd = c->fd, .events = POLLIN};
        if (poll(&p, 1, 0) <= 0) break;
        rc = pg__read_some(c);
    }
    pg__dispatch_progress(c);
    int ready = 0;
    for (size_t i = 0; i < c->nreqs; i++)
        if (c->reqs[i]->final && c->reqs[i]->kind == PG__REQ_RUN) ready++;
    if (ready == 0 && c->dead) return pg__copy_error(err, &c->dead_err);
    return ready;
}

int pg_client_job_done(const pg_client *c, pg_job job)
{
    const pg__req *r = c ? pg__find(c, job) : NULL;
    return r != NULL && r->kind == PG__REQ_RUN && !r->abandoned && r->final;
}
