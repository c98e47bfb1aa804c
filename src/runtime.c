/* The worker pool, tasks and actors (see runtime.h). */
#include "runtime.h"

#include "log.h"
#include "pergola/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <uv.h>

/* The run queue: an intrusive FIFO under one mutex. Workers with nothing to
 * do sleep on the condition variable; that is the only waiting in the
 * runtime, and it happens between tasks, never inside one. */
static struct {
    uv_mutex_t mu;
    uv_cond_t cv;
    pg_task *head, *tail;
    int64_t queued;
    int idle;
    int stopping;
    int nworkers;
    uv_thread_t *threads;
    atomic_uint_fast64_t ran;
    void (*on_exit)(void);
} R;

static _Thread_local int worker_index = -1;

static void worker_main(void *arg)
{
    worker_index = (int)(intptr_t)arg;
    char tag[16];
    snprintf(tag, sizeof tag, "w%d", worker_index);
    pg_log_set_thread(tag);
    for (;;) {
        uv_mutex_lock(&R.mu);
        while (R.head == NULL && !R.stopping) {
            R.idle++;
            uv_cond_wait(&R.cv, &R.mu);
            R.idle--;
        }
        pg_task *t = R.head;
        if (t == NULL) { /* stopping and drained */
            uv_mutex_unlock(&R.mu);
            break;
        }
        R.head = t->next_;
        if (R.head == NULL) R.tail = NULL;
        R.queued--;
        uv_mutex_unlock(&R.mu);
        t->run(t);
        atomic_fetch_add_explicit(&R.ran, 1, memory_order_relaxed);
    }
    if (R.on_exit) R.on_exit();
}

void pg_runtime_on_thread_exit(void (*fn)(void))
{
    R.on_exit = fn;
}

int pg_runtime_start(int nworkers)
{
    if (nworkers <= 0) {
        uv_cpu_info_t *ci;
        int n = 0;
        nworkers = uv_cpu_info(&ci, &n) == 0 && n > 0 ? n : 1;
        if (n > 0) uv_free_cpu_info(ci, n);
    }
    if (uv_mutex_init(&R.mu) != 0 || uv_cond_init(&R.cv) != 0) return PG_EINTERNAL;
    R.head = R.tail = NULL;
    R.queued = 0;
    R.stopping = 0;
    R.threads = calloc((size_t)nworkers, sizeof *R.threads);
    if (R.threads == NULL) return PG_ENOMEM;
    for (int i = 0; i < nworkers; i++) {
        uv_thread_options_t opt = {.flags = UV_THREAD_HAS_STACK_SIZE, .stack_size = 8u << 20};
        if (uv_thread_create_ex(&R.threads[i], &opt, worker_main, (void *)(intptr_t)i) != 0) {
            pg_log_error("cannot start worker thread %d", i);
            R.nworkers = i;
            pg_runtime_stop();
            return PG_EINTERNAL;
        }
    }
    R.nworkers = nworkers;
    return 0;
}

void pg_runtime_stop(void)
{
    uv_mutex_lock(&R.mu);
    R.stopping = 1;
    uv_cond_broadcast(&R.cv);
    uv_mutex_unlock(&R.mu);
    for (int i = 0; i < R.nworkers; i++)
        uv_thread_join(&R.threads[i]);
    free(R.threads);
    R.threads = NULL;
    R.nworkers = 0;
    uv_cond_destroy(&R.cv);
    uv_mutex_destroy(&R.mu);
}

int pg_runtime_workers(void)
{
    return R.nworkers;
}

int pg_runtime_worker_index(void)
{
    return worker_index;
}

void pg_schedule(pg_task *t)
{
    t->next_ = NULL;
    uv_mutex_lock(&R.mu);
    if (R.tail)
        R.tail->next_ = t;
    else
        R.head = t;
    R.tail = t;
    R.queued++;
    if (R.idle > 0) uv_cond_signal(&R.cv);
    uv_mutex_unlock(&R.mu);
}

void pg_runtime_counts(int64_t *queued, uint64_t *ran)
{
    uv_mutex_lock(&R.mu);
    *queued = R.queued;
    uv_mutex_unlock(&R.mu);
    *ran = atomic_load_explicit(&R.ran, memory_order_relaxed);
}

/* ---- actors ---- */

static void actor_run(pg_task *t)
{
    pg_actor *a = (pg_actor *)((char *)t - offsetof(pg_actor, task_));
    size_t n = 0;
    while (n < PG_ACTOR_BATCH) {
        pg_mpsc_node *m = pg_mpsc_pop(&a->mailbox_);
        if (m == NULL) break; /* empty, or a push is half done: see below */
        n++;
        a->behave(a, (pg_msg *)m);
    }
    /* Messages that arrived meanwhile (or whose push was half done) keep the
     * actor scheduled: no sender schedules it while pending_ > 0, so this is
     * the only place that can. */
    size_t before = atomic_fetch_sub_explicit(&a->pending_, n, memory_order_acq_rel);
    if (before - n > 0)
        pg_schedule(&a->task_);
    else
        pg_actor_unref(a); /* the reference that being scheduled held */
}

void pg_actor_init(pg_actor *a, pg_behaviour behave, pg_actor_free_fn free_fn)
{
    a->task_.run = actor_run;
    a->task_.next_ = NULL;
    pg_mpsc_init(&a->mailbox_);
    atomic_init(&a->pending_, 0);
    atomic_init(&a->refs_, 1);
    a->behave = behave;
    a->free_fn = free_fn;
}

void pg_actor_ref(pg_actor *a)
{
    atomic_fetch_add_explicit(&a->refs_, 1, memory_order_relaxed);
}

void pg_actor_unref(pg_actor *a)
{
    if (atomic_fetch_sub_explicit(&a->refs_, 1, memory_order_acq_rel) == 1) a->free_fn(a);
}

void pg_actor_send(pg_actor *a, pg_msg *m)
{
    pg_mpsc_push(&a->mailbox_, &m->node_);
    if (atomic_fetch_add_explicit(&a->pending_, 1, memory_order_acq_rel) == 0) {
        pg_actor_ref(a);
        pg_schedule(&a->task_);
    }
}
