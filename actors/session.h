/* The session: one client connection, on the loop thread.
 *
 * A session reads newline-delimited JSON requests (src/protocol.h), answers
 * ping/ops/status/cancel itself, and turns each `run` into a job actor. Jobs
 * run on workers and answer through pg_session_post(), which hands the event
 * to the loop thread: only the loop thread writes to sockets. A session that
 * closes cancels its jobs; their last events are then dropped.
 */
#ifndef PG_ACTORS_SESSION_H
#define PG_ACTORS_SESSION_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct pg_job;
struct pg_server;

/* How a job ended, for the daemon's counters. */
enum { PG_OUTCOME_NONE = 0, PG_OUTCOME_COMPLETED, PG_OUTCOME_FAILED, PG_OUTCOME_CANCELLED };

/* Posts EVENT (stolen) to session SID. DATA/LEN (stolen, free()d once
 * written) is the event's attachment, or NULL/0. FINAL_JOB: set on a job's
 * last event; the loop then forgets the job and drops its reference to it,
 * counting OUTCOME. Any thread. */
void pg_session_post(uint64_t sid, json_t *event, void *data, size_t len, struct pg_job *final_job,
                     int outcome);

/* Accepts a connection on listener SERVER_STREAM (loop thread). */
void pg_session_accept(struct pg_server *srv, uv_stream_t *server_stream);
/* Closes every session (shutdown; loop thread). */
void pg_session_close_all(struct pg_server *srv);

#endif
