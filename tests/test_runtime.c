/* Unit tests: the worker pool, actors (src/runtime.c), the MPSC queue, the
 * tile pool and the memory budget (src/bufpool.c). */
#include "bufpool.h"
#include "mpsc.h"
#include "runtime.h"

#include <check.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Waits (bounded) until *FLAG reaches WANT. */
static int wait_for(atomic_long *flag, long want)
{
    for (int i = 0; i < 10000; i++) {
        if (atomic_load(flag) == want) return 1;
        sleep_ms(1);
    }
    return 0;
}

/* ---- MPSC queue ---- */

typedef struct qitem {
    pg_mpsc_node node;
    int producer, seq;
} qitem;

static pg_mpsc q;
enum { PRODUCERS = 4, PER_PRODUCER = 20000 };
static qitem items[PRODUCERS][PER_PRODUCER];

static void producer(void *arg)
{
    int p = (int)(intptr_t)arg;
    for (int i = 0; i < PER_PRODUCER; i++) {
        items[p][i].producer = p;
        items[p][i].seq = i;
        pg_mpsc_push(&q, &items[p][i].node);
    }
}

START_TEST(mpsc_fifo_per_producer)
{
    pg_mpsc_init(&q);
    uv_thread_t th[PRODUCERS];
    for (int p = 0; p < PRODUCERS; p++)
        ck_assert_int_eq(uv_thread_create(&th[p], producer, (void *)(intptr_t)p), 0);
    int next[PRODUCERS] = {0};
    int got = 0;
    for (long spins = 0; got < PRODUCERS * PER_PRODUCER && spins < 200000000L; spins++) {
        pg_mpsc_node *n = pg_mpsc_pop(&q);
        if (n == NULL) continue;
        qitem *it = (qitem *)n;
        /* Each producer's items come out in the order it pushed them. */
        ck_assert_int_eq(it->seq, next[it->producer]);
        next[it->producer]++;
        got++;
    }
    for (int p = 0; p < PRODUCERS; p++)
        uv_thread_join(&th[p]);
    ck_assert_int_eq(got, PRODUCERS * PER_PRODUCER);
    ck_assert_ptr_null(pg_mpsc_pop(&q));
}
END_TEST

/* ---- tasks ---- */

typedef struct counted {
    pg_task task;
    atomic_long *done;
} counted;

static void count_run(pg_task *t)
{
    counted *c = (counted *)t;
    atomic_fetch_add(c->done, 1);
}

START_TEST(tasks_all_run)
{
    ck_assert_int_eq(pg_runtime_start(3), 0);
    ck_assert_int_eq(pg_runtime_workers(), 3);
    atomic_long done = 0;
    enum { N = 10000 };
    counted *cs = calloc(N, sizeof *cs);
    for (int i = 0; i < N; i++) {
        cs[i].task.run = count_run;
        cs[i].done = &done;
        pg_schedule(&cs[i].task);
    }
    ck_assert(wait_for(&done, N));
    pg_runtime_stop();
    free(cs);
    ck_assert_int_eq(pg_runtime_worker_index(), -1);
}
END_TEST

/* ---- actors: one message at a time, in order per sender ---- */

typedef struct counter_actor {
    pg_actor actor;
    atomic_int inside; /* behaviours running now: must never exceed 1 */
    long total;        /* plain, unsynchronised: safe only if never concurrent */
    int last[PRODUCERS];
    atomic_long handled;
    atomic_int freed;
    int order_ok;
} counter_actor;

typedef struct cmsg {
    pg_msg base;
    int producer, seq;
} cmsg;

static void counter_behave(pg_actor *self, pg_msg *m)
{
    counter_actor *a = (counter_actor *)self;
    cmsg *cm = (cmsg *)m;
    if (atomic_fetch_add(&a->inside, 1) != 0) a->order_ok = 0;
    a->total += cm->seq;
    if (cm->seq != a->last[cm->producer] + 1) a->order_ok = 0;
    a->last[cm->producer] = cm->seq;
    atomic_fetch_sub(&a->inside, 1);
    atomic_fetch_add(&a->handled, 1);
    free(m);
}

static void counter_free(pg_actor *self)
{
    counter_actor *a = (counter_actor *)self;
    atomic_store(&a->freed, 1);
}

static counter_actor ca;

static void actor_producer(void *arg)
{
    int p = (int)(intptr_t)arg;
    for (int i = 1; i <= PER_PRODUCER; i++) {
        cmsg *m = calloc(1, sizeof *m);
        m->producer = p;
        m->seq = i;
        pg_actor_send(&ca.actor, &m->base);
    }
}

START_TEST(actor_serial_and_ordered)
{
    ck_assert_int_eq(pg_runtime_start(2), 0);
    memset(&ca, 0, sizeof ca);
    ca.order_ok = 1;
    pg_actor_init(&ca.actor, counter_behave, counter_free);
    uv_thread_t th[PRODUCERS];
    for (int p = 0; p < PRODUCERS; p++)
        uv_thread_create(&th[p], actor_producer, (void *)(intptr_t)p);
    for (int p = 0; p < PRODUCERS; p++)
        uv_thread_join(&th[p]);
    ck_assert(wait_for(&ca.handled, (long)PRODUCERS * PER_PRODUCER));
    ck_assert_int_eq(ca.order_ok, 1);
    long per = (long)PER_PRODUCER * (PER_PRODUCER + 1) / 2;
    ck_assert_int_eq(ca.total, PRODUCERS * per);
    /* Only the creator's reference is left once the actor is idle. */
    for (int i = 0; i < 1000 && atomic_load(&ca.actor.refs_) != 1; i++)
        sleep_ms(1);
    ck_assert_int_eq(atomic_load(&ca.actor.refs_), 1);
    ck_assert_int_eq(atomic_load(&ca.freed), 0);
    pg_actor_unref(&ca.actor);
    ck_assert_int_eq(atomic_load(&ca.freed), 1);
    pg_runtime_stop();
}
END_TEST

/* ---- join counter: a fan-in of N children schedules the parent once ---- */

typedef struct join {
    pg_task parent;
    atomic_int pending;
    atomic_long parent_runs;
    atomic_long sum;
} join;

typedef struct child {
    pg_task task;
    join *j;
    int value;
} child;

static void parent_run(pg_task *t)
{
    join *j = (join *)t;
    atomic_fetch_add(&j->parent_runs, 1);
}

static void child_run(pg_task *t)
{
    child *c = (child *)t;
    atomic_fetch_add(&c->j->sum, c->value);
    if (atomic_fetch_sub(&c->j->pending, 1) == 1) pg_schedule(&c->j->parent);
}

START_TEST(join_counter_runs_continuation_once)
{
    ck_assert_int_eq(pg_runtime_start(2), 0);
    enum { ROUNDS = 200, KIDS = 64 };
    for (int r = 0; r < ROUNDS; r++) {
        join j;
        memset(&j, 0, sizeof j);
        j.parent.run = parent_run;
        atomic_init(&j.pending, KIDS);
        child kids[KIDS];
        for (int i = 0; i < KIDS; i++) {
            kids[i].task.run = child_run;
            kids[i].j = &j;
            kids[i].value = i + 1;
        }
        for (int i = 0; i < KIDS; i++)
            pg_schedule(&kids[i].task);
        ck_assert(wait_for(&j.parent_runs, 1));
        ck_assert_int_eq(atomic_load(&j.sum), KIDS * (KIDS + 1) / 2);
        sleep_ms(r == 0 ? 20 : 0);
        ck_assert_int_eq(atomic_load(&j.parent_runs), 1);
    }
    pg_runtime_stop();
}
END_TEST

/* ---- tile pool ---- */

START_TEST(pool_recycles_buffers)
{
    pg_bufpool_init(64u << 20);
    pg_window w = {0, 0, 256, 256};
    pg_tile *t = pg_tile_new(PG_F32, 1, w);
    ck_assert_ptr_nonnull(t);
    ck_assert_int_eq((long)t->nbytes, 256 * 256 * 4);
    ck_assert_int_eq((int)((uintptr_t)t->data % 64), 0);
    memset(t->data, 0xab, t->nbytes);
    void *first = t->data;
    pg_bufpool_stats s0;
    pg_bufpool_get_stats(&s0);
    ck_assert_uint_eq(s0.in_use, pg_bufpool_class_bytes(t->nbytes));
    pg_tile_unref(&t);
    ck_assert_ptr_null(t);
    /* Same size class: the same (warm) buffer comes back. */
    pg_tile *u = pg_tile_new(PG_I32, 1, (pg_window){256, 0, 256, 256});
    ck_assert_ptr_eq(u->data, first);
    ck_assert_int_eq(u->win.x, 256);
    pg_bufpool_stats s1;
    pg_bufpool_get_stats(&s1);
    ck_assert_uint_eq(s1.reuses, s0.reuses + 1);
    pg_tile *r = pg_tile_ref(u);
    ck_assert_int_eq(atomic_load(&u->refs), 2);
    pg_tile_unref(&r);
    pg_tile_unref(&u);
    pg_bufpool_get_stats(&s1);
    ck_assert_uint_eq(s1.in_use, 0);
    ck_assert_uint_eq(s1.cached, pg_bufpool_class_bytes(256 * 256 * 4));
    pg_bufpool_shutdown();
    pg_bufpool_get_stats(&s1);
    ck_assert_uint_eq(s1.cached, 0);
}
END_TEST

START_TEST(pool_cache_stays_within_budget)
{
    pg_bufpool_init(1u << 20); /* 1 MiB: four 256 KiB tiles */
    pg_tile *t[8];
    for (int i = 0; i < 8; i++)
        t[i] = pg_tile_new(PG_F32, 1, (pg_window){0, 0, 256, 256});
    for (int i = 0; i < 8; i++)
        pg_tile_unref(&t[i]);
    pg_bufpool_stats s;
    pg_bufpool_get_stats(&s);
    ck_assert_uint_le(s.cached, 1u << 20);
    ck_assert_uint_eq(s.in_use, 0);
    pg_bufpool_shutdown();
}
END_TEST

static atomic_long woken;
static void on_wake(void *arg)
{
    atomic_fetch_add(&woken, (long)(intptr_t)arg);
}

START_TEST(budget_reserve_park_wake)
{
    pg_bufpool_init(100);
    atomic_store(&woken, 0);
    ck_assert(pg_budget_try_reserve(60, on_wake, (void *)1));
    ck_assert(pg_budget_try_reserve(40, on_wake, (void *)1));
    /* Full: the next one parks and is remembered once. */
    ck_assert(!pg_budget_try_reserve(10, on_wake, (void *)5));
    ck_assert(!pg_budget_try_reserve(10, on_wake, (void *)5));
    ck_assert(!pg_budget_try_reserve(10, on_wake, (void *)7));
    ck_assert(pg_budget_forget((void *)7));
    ck_assert(!pg_budget_forget((void *)7));
    pg_budget_release(40);
    ck_assert_int_eq(atomic_load(&woken), 5);
    ck_assert(pg_budget_try_reserve(10, on_wake, (void *)5));
    pg_budget_release(60);
    pg_budget_release(10);
    /* Nothing reserved: a request larger than the budget still gets in, so
     * one oversized tile index cannot stall a job forever. */
    ck_assert(pg_budget_try_reserve(1000, on_wake, (void *)1));
    pg_budget_release(1000);
    pg_bufpool_stats s;
    pg_bufpool_get_stats(&s);
    ck_assert_uint_eq(s.reserved, 0);
    pg_bufpool_shutdown();
}
END_TEST

int main(void)
{
    Suite *s = suite_create("runtime");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, mpsc_fifo_per_producer);
    tcase_add_test(tc, tasks_all_run);
    tcase_add_test(tc, actor_serial_and_ordered);
    tcase_add_test(tc, join_counter_runs_continuation_once);
    tcase_add_test(tc, pool_recycles_buffers);
    tcase_add_test(tc, pool_cache_stays_within_budget);
    tcase_add_test(tc, budget_reserve_park_wake);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
