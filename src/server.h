/* The daemon's loop thread: listeners, signals, the job table, shutdown.
 * Everything here runs on the loop thread, so nothing here is locked. */
#ifndef PG_SERVER_H
#define PG_SERVER_H

#include "actors/job.h"
#include "config.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <uv.h>

struct pg_session;

/* A running job as the loop thread sees it. */
typedef struct pg_jobent {
    struct pg_jobent *next;
    uint64_t session_id;
    json_t *id; /* the run's id (new reference) */
    pg_job *job;
    uv_timer_t timer; /* the deadline, if any */
    bool has_timer;
    struct pg_server *srv;
} pg_jobent;

typedef struct pg_server {
    const pg_config *cfg;
    char *data_root; /* realpath of cfg->data_root */
    pg_job_env job_env;
    uv_loop_t *loop;
    uv_tcp_t *tcp;
    int ntcp;
    uv_pipe_t pipe;
    bool has_pipe;
    uv_signal_t sigterm, sigint;
    uv_timer_t grace;
    bool shutting_down, stopped;
    struct pg_session *sessions;
    uint64_t next_session_id;
    int nconnections;
    pg_jobent *jobs;
    int64_t njobs, completed, failed, cancelled;
    uint64_t started_ns;
} pg_server;

/* Runs the daemon with CFG until SIGTERM/SIGINT. Returns the exit code. */
int pg_server_run(const pg_config *cfg);

/* For sessions: */
pg_jobent *pg_server_find_job(pg_server *srv, uint64_t session_id, json_t *id);
/* Starts a job for REQ on session SID; fills ERR and returns its code if
 * the daemon cannot take it now. */
int pg_server_start_job(pg_server *srv, uint64_t sid, json_t *req, pg_error *err);
/* Cancels every job of session SID (it disconnected). */
void pg_server_cancel_session(pg_server *srv, uint64_t sid);
/* The `status` answer's value (a new reference). */
json_t *pg_server_status(pg_server *srv);
/* A job's last event has been handled: forget it. */
void pg_server_job_ended(pg_server *srv, pg_job *job, int outcome);
pg_server *pg_server_get(void);

#endif
