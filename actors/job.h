/* The job actor: one `run` request, from graph to answer.
 *
 * START plans the graph (validation, file opening) on a worker, then cuts
 * each result into sweeps of tiles. For each tile index a frame evaluates
 * the tile's sub-DAG with continuation passing: every (node, window) of the
 * frame is a task whose join counter counts its children down; the child
 * that brings it to zero schedules it. No task waits for another. Finished
 * tiles go to the writer actor (io.save), to the reduction's per-tile
 * partial (value ops), or into the answer's buffer (raster results).
 *
 * Tile indices are admitted against the memory budget (bufpool.h): when a
 * reservation does not fit the job parks and is woken when memory returns.
 * Cancel, timeout and disconnect all arrive as CANCEL: the remaining tiles
 * are skipped, in-flight ones drain, outputs are deleted, one error is sent.
 */
#ifndef PG_ACTORS_JOB_H
#define PG_ACTORS_JOB_H

#include "graph.h"
#include "pergola/error.h"
#include "runtime.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

/* What a job needs from the daemon. */
typedef struct pg_job_env {
    pg_plan_env plan;
    int64_t max_result_bytes;
    bool fusion; /* fuse chains of per-cell ops (src/fuse.h) */
    int64_t remote_timeout_ms; /* deadline of one call to a peer (cluster.call_timeout_ms) */
    char distribute[16];       /* cluster.distribute: runs without "distribute" use it */
} pg_job_env;

/* Messages the job actor understands (pg_msg.type). */
enum {
    PG_JOB_START = 1,
    PG_JOB_TILE_DONE,
    PG_JOB_WRITER_CLOSED,
    PG_JOB_WRITER_ENDED,
    PG_JOB_CANCEL,
    PG_JOB_WAKE,
    PG_JOB_REMOTE, /* a remote value sweep's call ended (loop thread -> job) */
};

typedef struct pg_job_msg {
    pg_msg base;
    int sweep;
    int64_t k;
    size_t bytes; /* TILE_DONE: the budget the tile had reserved */
    pg_error err; /* err.code 0: success */
    json_t *value; /* REMOTE: the value computed by a peer (owned by the message) */
    bool retry;    /* REMOTE: the node failed, not the graph: try another */
} pg_job_msg;

typedef struct pg_job pg_job;

/* A job for request REQ (borrowed; the job keeps its own references) from
 * session SESSION_ID. REQ["id"] is the answer's id. The caller holds one
 * reference (pg_job_unref). ENV is copied. */
pg_job *pg_job_new(uint64_t session_id, json_t *req, const pg_job_env *env);
void pg_job_start(pg_job *j);
/* Stops the job with CODE (PG_ECANCELLED, PG_ETIMEOUT, PG_ESHUTDOWN). Any
 * thread; harmless after the job has ended. */
void pg_job_cancel(pg_job *j, int code);
void pg_job_unref(pg_job **j);
/* Sends a message to the job's actor (used by the writer). */
void pg_job_send(pg_actor *job, int type, int sweep, int64_t k, const pg_error *err, size_t bytes);

#endif
