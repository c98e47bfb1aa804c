/* The Pergola client library: connect to pergolad, build operation graphs,
 * run them and read their results.
 *
 *     pg_error err;
 *     pg_client *c = pg_client_new(NULL, 0, &err);      // PERGOLA_CONNECT or 127.0.0.1:7878
 *     if (c == NULL) { fprintf(stderr, "%s\n", err.message); return 3; }
 *
 *     pg_graph *g = pg_graph_new();
 *     pg_graph_add(g, "a", "io.load", NULL);
 *     pg_graph_set_string(g, "a", "path", "a.tif", NULL);
 *     pg_graph_add(g, "st", "global.stats", NULL);
 *     pg_graph_arg_ref(g, "st", "a", NULL);
 *     pg_graph_set_result(g, "st", NULL);
 *
 *     pg_result *r;
 *     if (pg_client_run_graph(c, g, NULL, &r, &err) == 0) {
 *         json_dumpf(pg_result_value(r), stdout, JSON_INDENT(2));  // {"min": ..., ...}
 *         pg_result_destroy(&r);
 *     } else {
 *         fprintf(stderr, "error %s at node %s: %s\n", pg_err_name(err.code), err.node,
 *                 err.message);
 *     }
 *     pg_graph_destroy(&g);
 *     pg_client_destroy(&c);
 *
 * Conventions (the same for every function below):
 *  - Types are opaque; X_new() creates, X_destroy(&p) frees and sets p to
 *    NULL (destroying a NULL pointer, or a pointer to NULL, does nothing).
 *  - A function that can fail returns 0 (or a count) on success and a
 *    negative pg_errcode (include/pergola/error.h) on failure. Its last
 *    parameter, `pg_error *err`, may be NULL; when it is not, it is filled on
 *    failure with the code, a message for people and, for errors the daemon
 *    attributes to a graph node, that node's name. Constructors return NULL
 *    on failure and fill ERR the same way.
 *  - JSON values are jansson's json_t. As in jansson's own documentation,
 *    each function says whether a json_t it returns is a NEW reference (the
 *    caller owns it and must json_decref() it) or a BORROWED one (valid while
 *    the object it came from lives; json_incref() it to keep it longer), and
 *    whether a json_t it takes is borrowed or STOLEN (the library owns it
 *    from then on, even when the call fails).
 *  - A pg_client is not thread-safe: use one from one thread at a time.
 *    Different clients are independent.
 */
#ifndef PERGOLA_CLIENT_H
#define PERGOLA_CLIENT_H

#include "pergola/error.h"

#include <jansson.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Library                                                                   */

/* The library's version, "0.1.0". Static string. */
const char *pg_version(void);

/* The address pg_client_new(NULL, ...) connects to: the environment variable
 * PERGOLA_CONNECT if it is set and not empty, else "127.0.0.1:7878".
 * Borrowed (from the environment or static): do not free. */
const char *pg_default_address(void);

/* Size in bytes of one cell of the cell type named TYPE ("u8" 1, "i16" 2,
 * "f32" 4, "f64" 8, ...), or 0 if TYPE is not a known type name. */
size_t pg_cell_size(const char *type);

/* ------------------------------------------------------------------------ */
/* Graph builder                                                             */

/* A graph under construction: {"nodes": {...}, "result": ...} (README.md,
 * "Graphs"). The builder only assembles JSON; the daemon validates the graph
 * (unknown ops, missing references, cycles, ...) when it is run. Nodes,
 * arguments and parameters are serialized in the order they were added. */
typedef struct pg_graph pg_graph;

/* A new, empty graph (NULL only if out of memory). Free with
 * pg_graph_destroy(). */
pg_graph *pg_graph_new(void);
/* Frees *G and sets *G to NULL. */
void pg_graph_destroy(pg_graph **g);

/* Adds node NAME running operation OP ("io.load", "local.add", ...).
 * Fails with PG_EINVAL if NAME is empty or already used, or OP is empty. */
int pg_graph_add(pg_graph *g, const char *name, const char *op, pg_error *err);

/* Append one argument to NODE's "args" list. NODE must have been added
 * (else PG_EINVAL); a referenced node need not exist yet. */
/* {"ref": REF}: the result of another node. */
int pg_graph_arg_ref(pg_graph *g, const char *node, const char *ref, pg_error *err);
/* A scalar number. A whole number is written as a JSON integer (2, not
 * 2.0). Fails with PG_EINVAL if V is NaN or infinite (JSON has no
 * representation for them). */
int pg_graph_arg_number(pg_graph *g, const char *node, double v, pg_error *err);
/* Any JSON argument, typically an inline node such as
 * json_pack("{s:s, s:s}", "op", "io.load", "path", "c.tif"). ARG is STOLEN
 * (also on failure); NULL fails with PG_EINVAL, so a json_pack() that failed
 * can be passed straight in. */
int pg_graph_arg_json(pg_graph *g, const char *node, json_t *arg, pg_error *err);

/* Set parameter KEY of NODE (a key of the node object other than "op" and
 * "args", which are refused with PG_EINVAL). Setting a key again replaces
 * its value. "remote" is an ordinary parameter here: set it with
 * pg_graph_set_bool(g, node, "remote", 1) or pg_graph_set_string(g, node,
 * "remote", "peer-name"). */
int pg_graph_set_string(pg_graph *g, const char *node, const char *key, const char *v,
                        pg_error *err);
/* A whole number is written as a JSON integer. Fails with PG_EINVAL if V
 * is NaN or infinite. */
int pg_graph_set_number(pg_graph *g, const char *node, const char *key, double v, pg_error *err);
int pg_graph_set_int(pg_graph *g, const char *node, const char *key, long long v, pg_error *err);
int pg_graph_set_bool(pg_graph *g, const char *node, const char *key, int v, pg_error *err);
/* V is STOLEN (also on failure); NULL fails with PG_EINVAL. */
int pg_graph_set_json(pg_graph *g, const char *node, const char *key, json_t *v, pg_error *err);

/* The graph's result is node NAME: "result": "NAME". Replaces an earlier
 * result. The node need not exist yet. */
int pg_graph_set_result(pg_graph *g, const char *name, pg_error *err);
/* The graph's result is the list of N nodes NAMES: "result": [...], always
 * a list (even for N == 1), so the run's value is a list of N items.
 * Replaces an earlier result. N must be > 0. */
int pg_graph_set_results(pg_graph *g, const char *const *names, size_t n, pg_error *err);

/* The graph as JSON: a NEW reference to a deep copy (changing it does not
 * change the builder). NULL only if out of memory. */
json_t *pg_graph_to_json(const pg_graph *g);
/* The graph as JSON text: compact on one line when INDENT is 0, else
 * pretty-printed with INDENT spaces (at most 31). A NEW string: release it
 * with free() (or with your free function if you replaced jansson's
 * allocator with json_set_alloc_funcs()). NULL only if out of memory. */
char *pg_graph_to_string(const pg_graph *g, int indent);

/* ------------------------------------------------------------------------ */
/* Results                                                                   */

/* The value of a finished run: one item per result node (README.md,
 * "Answers"), plus the raster bytes that came with it. Everything a
 * pg_result hands out is BORROWED from it and stays valid until
 * pg_result_destroy(). */
typedef struct pg_result pg_result;

typedef enum pg_item_kind {
    PG_ITEM_NONE = 0,   /* no such item (index out of range) */
    PG_ITEM_VALUE = 1,  /* a JSON value (global.stats, ...) */
    PG_ITEM_PATH = 2,   /* a file written by io.save: {"path", "width", ...} */
    PG_ITEM_RASTER = 3, /* raster cells, with their header */
} pg_item_kind;

/* A raster item's header and cells. Cells are band-sequential, rows top to
 * bottom, little-endian, of TYPE; LENGTH is normally width * height * bands
 * * pg_cell_size(type). All pointers are BORROWED from the pg_result. */
typedef struct pg_raster {
    int width, height, bands;
    const char *type;       /* "u8" ... "f64" ("" if the daemon sent none) */
    int has_nodata;         /* 0: no nodata value */
    double nodata;          /* meaningful when has_nodata (may be NaN) */
    int has_geotransform;   /* 0: no georeferencing (geotransform is then 0,1,0,0,0,1) */
    double geotransform[6]; /* GDAL order: x0, pixel width, row rot., y0, col rot., pixel height */
    const char *crs;        /* WKT, "EPSG:n", ... as the daemon sent it; "" if none */
    const void *data;       /* the cells (NULL when length is 0) */
    size_t length;          /* bytes at data */
} pg_raster;

/* Number of items: 1 for a graph whose "result" is one name, the list's
 * length when it is a list. */
size_t pg_result_count(const pg_result *r);
/* 1 if the graph's "result" was a list (the value is then a JSON array of
 * the items), 0 if it was one name (the value is the item itself). */
int pg_result_is_list(const pg_result *r);
/* The whole "value" of the result event. BORROWED. */
json_t *pg_result_value(const pg_result *r);
/* Item I's kind, PG_ITEM_NONE if I >= count. */
pg_item_kind pg_result_item_kind(const pg_result *r, size_t i);
/* Item I as JSON (for a path or raster item: its object, header included).
 * BORROWED; NULL if I >= count. */
json_t *pg_result_item(const pg_result *r, size_t i);
/* The path item I names (relative to the daemon's data root), or NULL if
 * item I is not a path. BORROWED. */
const char *pg_result_path(const pg_result *r, size_t i);
/* Item I's raster header and cells, or NULL if item I is not a raster.
 * BORROWED. */
const pg_raster *pg_result_raster(const pg_result *r, size_t i);
/* Frees *R (its JSON, its bytes) and sets *R to NULL. */
void pg_result_destroy(pg_result **r);

/* ------------------------------------------------------------------------ */
/* Connection                                                                */

typedef struct pg_client pg_client;

/* A job: the id of a run request, chosen by the library (increasing
 * integers starting at 1, unique per connection; it is the "id" on the
 * wire). Always > 0. */
typedef long long pg_job;

/* pg_client_wait()'s answer when the job has not finished yet. Positive:
 * it is not an error, the job goes on. */
#define PG_PENDING 1

/* Connects to ADDRESS (NULL: pg_default_address()). Forms:
 *   "HOST:PORT", "tcp://HOST:PORT"   TCP (HOST a name, an IPv4 address or
 *                                    a bracketed IPv6 one "[::1]:7878");
 *                                    a missing PORT means 7878
 *   "unix:PATH", "unix://PATH"       a Unix socket
 *   anything else containing '/'     a Unix socket path
 * TIMEOUT_MS bounds the connect and then every request the library waits
 * for on its own (ping, ops, status, cancel, sending a request): 0 means the
 * default (30000 ms), < 0 means no limit. Change it with
 * pg_client_set_timeout().
 * Returns a new client (free with pg_client_destroy()), or NULL with ERR
 * filled: PG_ECONNECT ("cannot connect to ADDR: <reason>"; errno is left
 * set to the system's reason, e.g. ECONNREFUSED or ENOENT), PG_EINVAL (a
 * malformed address). */
pg_client *pg_client_new(const char *address, int timeout_ms, pg_error *err);
/* Closes the connection and frees *C and every result not yet collected;
 * sets *C to NULL. The daemon cancels the connection's running jobs. */
void pg_client_destroy(pg_client **c);

/* The socket, to integrate with your own poll()/epoll loop: when it is
 * readable, call pg_client_process(c, 0, err). Do not read from or write to
 * it yourself. -1 after the connection failed. */
int pg_client_fd(const pg_client *c);
/* The address as given (or the default). BORROWED from C. */
const char *pg_client_address(const pg_client *c);
/* Sets the timeout described at pg_client_new(). */
void pg_client_set_timeout(pg_client *c, int timeout_ms);
/* The daemon's version as reported by the last successful pg_client_ping(),
 * NULL before. BORROWED from C. */
const char *pg_client_server_version(const pg_client *c);

/* Once the connection is lost (PG_ECLOSED), the daemon broke the protocol
 * (PG_EPROTO), or a request could not be sent whole in time (PG_ETIMEOUT: a
 * half-sent line cannot be taken back), the socket is closed and every
 * later call that needs the daemon fails at once with that same error.
 * Results that had fully arrived before can still be collected with
 * pg_client_wait(). */

/* ------------------------------------------------------------------------ */
/* Requests                                                                  */

/* Sends a ping and waits for the pong. *RTT_MS (may be NULL) gets the
 * round-trip time in milliseconds. */
int pg_client_ping(pg_client *c, double *rtt_ms, pg_error *err);
/* Every operation the daemon offers, with its arguments and parameters
 * (README.md, "Requests", `ops`). On success *OPS is a NEW reference to a
 * JSON array. */
int pg_client_ops(pg_client *c, json_t **ops, pg_error *err);
/* The daemon's state (README.md, `status`). On success *STATUS is a NEW
 * reference to a JSON object. */
int pg_client_status(pg_client *c, json_t **status, pg_error *err);
/* Any request that is answered by one result: sends {"id", "type": TYPE,
 * ...FIELDS} (FIELDS BORROWED, may be NULL) and waits. On success *VALUE
 * (VALUE may be NULL) is a NEW reference to the result's "value" (JSON null
 * if it had none). */
int pg_client_request(pg_client *c, const char *type, json_t *fields, json_t **value,
                      pg_error *err);

/* Progress of a run: DONE of TOTAL tiles. Called with (0, TOTAL) when the
 * daemon accepts the job, then on each progress event. Called from inside
 * whichever library call is reading the connection when the event arrives
 * (pg_client_wait(), pg_client_process(), ...). It may call
 * pg_client_cancel(); it must not destroy the client. */
typedef void (*pg_progress_fn)(long long done, long long total, void *userdata);

/* Options of a run; a NULL pg_run_opts * means all zero. */
typedef struct pg_run_opts {
    /* > 0: the job's deadline, sent to the daemon (which then fails the job
     * with PG_ETIMEOUT). pg_client_run() also stops waiting a few seconds
     * after it, cancels the job and fails with PG_ETIMEOUT if the daemon
     * has not answered by then. 0: no deadline. */
    int timeout_ms;
    /* Progress callback, or NULL. When NULL the daemon is asked not to send
     * progress events at all. */
    pg_progress_fn progress;
    void *userdata; /* passed to PROGRESS */
    /* More members of the run request (BORROWED, may be NULL), e.g.
     * {"window": [x, y, w, h]} or {"distribute": {"partition": "hilbert"}}
     * (README "Protocol"). "id", "type", "graph", "progress" and
     * "timeout_ms" are the library's own and may not appear here. */
    json_t *request;
} pg_run_opts;

/* Runs a graph and waits for its result. The graph is JSON text
 * (pg_client_run: checked to be JSON before it is sent, PG_EBADJSON if
 * not), a builder (pg_client_run_graph), or a json_t (pg_client_run_json,
 * BORROWED). On success *OUT is a new pg_result (free with
 * pg_result_destroy()). If the daemon answers with an error, returns its
 * code (pg_err_from_name(code)) with ERR's message and node filled from the
 * daemon's error. Other jobs on the same connection are not disturbed:
 * their events are kept for them. */
int pg_client_run(pg_client *c, const char *graph, const pg_run_opts *opts, pg_result **out,
                  pg_error *err);
int pg_client_run_graph(pg_client *c, const pg_graph *g, const pg_run_opts *opts, pg_result **out,
                        pg_error *err);
int pg_client_run_json(pg_client *c, json_t *graph, const pg_run_opts *opts, pg_result **out,
                       pg_error *err);

/* Asynchronous runs. pg_client_submit* sends the run and returns at once
 * with *JOB set; any number of jobs may be in flight on one connection.
 * Collect each job's outcome exactly once with pg_client_wait(); until
 * then the library keeps its events. OPTS is copied (its timeout_ms is sent
 * to the daemon; the client does not enforce it for submitted jobs). */
int pg_client_submit(pg_client *c, const char *graph, const pg_run_opts *opts, pg_job *job,
                     pg_error *err);
int pg_client_submit_graph(pg_client *c, const pg_graph *g, const pg_run_opts *opts, pg_job *job,
                           pg_error *err);
int pg_client_submit_json(pg_client *c, json_t *graph, const pg_run_opts *opts, pg_job *job,
                          pg_error *err);

/* Waits up to TIMEOUT_MS (< 0: no limit; 0: only looks at what has already
 * arrived) for JOB to finish. Returns
 *   0           finished: *OUT (OUT may be NULL to discard it) is a new
 *               pg_result; the job is forgotten
 *   PG_PENDING  not finished within TIMEOUT_MS; call again later
 *   < 0         the daemon's error for the job (the job is forgotten), or
 *               PG_EUNKNOWNJOB (JOB was never submitted on C or was already
 *               collected), PG_ECLOSED/PG_EPROTO (the connection is gone
 *               and the job's outcome never arrived). */
int pg_client_wait(pg_client *c, pg_job job, int timeout_ms, pg_result **out, pg_error *err);

/* Asks the daemon to cancel JOB and waits for its acknowledgement. Returns
 * 0 if the daemon cancelled it: the job then ends with PG_ECANCELLED, still
 * to be collected with pg_client_wait(). PG_EUNKNOWNJOB if the job is not
 * running any more (it may have finished first: wait for it as usual). */
int pg_client_cancel(pg_client *c, pg_job job, pg_error *err);

/* Reads whatever the daemon has sent, waiting up to TIMEOUT_MS (< 0: no
 * limit) for something to arrive, and runs progress callbacks. For
 * applications that poll pg_client_fd() themselves. Returns the number of
 * finished jobs waiting to be collected (>= 0), or PG_ECLOSED/PG_EPROTO. */
int pg_client_process(pg_client *c, int timeout_ms, pg_error *err);
/* 1 if JOB's outcome has arrived (pg_client_wait() will not block), 0 if
 * not (or JOB is unknown). Does not read the connection. */
int pg_client_job_done(const pg_client *c, pg_job job);

#ifdef __cplusplus
}
#endif
#endif
