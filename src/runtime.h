/* The worker pool, tasks and actors.
 *
 * A task is a function pointer with an intrusive link: scheduling one is a
 * push onto the run queue, with no allocation. The pool is the project's own
 * (not uv_queue_work: libuv's pool is global, FIFO and shared with fs/DNS).
 *
 * An actor is state + a mailbox (MPSC queue) + a behaviour. The sender whose
 * message makes the mailbox non-empty schedules the actor, so an actor runs
 * on at most one worker at a time and needs no lock on its state. An actor
 * runs a batch of at most PG_ACTOR_BATCH messages, then goes back to the end
 * of the run queue if more are waiting, so one busy actor cannot starve the
 * rest. A behaviour must never block.
 *
 * Actors are refcounted: being scheduled holds a reference, so the last
 * holder may drop its reference at any time, even while the actor runs.
 */
#ifndef PG_RUNTIME_H
#define PG_RUNTIME_H

#include "mpsc.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pg_task pg_task;
typedef void (*pg_task_fn)(pg_task *t);

struct pg_task {
    pg_task *next_; /* run-queue link, private */
    pg_task_fn run;
};

/* Starts NWORKERS worker threads (0: one per core). Returns 0 or a negative
 * pg_errcode. */
int pg_runtime_start(int nworkers);
/* Lets the workers finish the tasks already queued, then joins them. */
void pg_runtime_stop(void);
int pg_runtime_workers(void);
/* 0..N-1 on a worker thread, -1 elsewhere. */
int pg_runtime_worker_index(void);
/* Called on each worker thread just before it exits (e.g. to close the
 * thread's GDAL handles). Set before pg_runtime_start. */
void pg_runtime_on_thread_exit(void (*fn)(void));
/* Queues T to run on some worker. Any thread. */
void pg_schedule(pg_task *t);
/* Queued and running task counts, and tasks run since start (for status). */
void pg_runtime_counts(int64_t *queued, uint64_t *ran);

/* ---- actors ---- */

#define PG_ACTOR_BATCH 32

typedef struct pg_msg {
    pg_mpsc_node node_; /* private */
    int type;
} pg_msg;

typedef struct pg_actor pg_actor;
/* Handles M and takes ownership of it (frees it or keeps it). */
typedef void (*pg_behaviour)(pg_actor *self, pg_msg *m);
/* Frees the actor's memory once the last reference is gone. */
typedef void (*pg_actor_free_fn)(pg_actor *self);

struct pg_actor {
    pg_task task_; /* private */
    pg_mpsc mailbox_;
    atomic_size_t pending_;
    atomic_int refs_;
    pg_behaviour behave;
    pg_actor_free_fn free_fn;
};

/* Sets up A with one reference, held by the caller. */
void pg_actor_init(pg_actor *a, pg_behaviour behave, pg_actor_free_fn free_fn);
void pg_actor_ref(pg_actor *a);
/* Drops a reference; the last one calls A's free_fn. */
void pg_actor_unref(pg_actor *a);
/* Queues M for A (ownership passes to A). Any thread, never blocks. */
void pg_actor_send(pg_actor *a, pg_msg *m);

#endif
