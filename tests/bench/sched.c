/* pergola-bench-sched [N] [WORKERS]
 *
 * What one task costs the runtime's scheduler (src/runtime.h): pushes N (default 1000000)
 * empty tasks through pg_schedule() on a pool of WORKERS threads (default 2) and prints
 * the wall time per task in nanoseconds, two ways:
 *
 *   batch  the main thread (not a worker, like the loop thread) schedules all N tasks,
 *          then waits until every one has run; time / N is the cost of one push plus one
 *          pop and call, with the workers competing for the queue.
 *   chain  2 x WORKERS tasks each reschedule themselves from inside a worker until N
 *          runs have happened in total: the path a continuation takes (a task that
 *          finishes schedules the next one).
 *
 * The tasks do nothing but count (one atomic add), so the figures are pure overhead. The
 * main thread polls for completion with 50 us sleeps, which adds at most that to the
 * total (~0.05 ns per task at N = 1M). Output, one line per way, machine-readable:
 *   sched batch tasks=N workers=W ns_per_task=X
 *   sched chain tasks=N workers=W ns_per_task=X */

#include "runtime.h"

#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static atomic_long pg__ran;      /* tasks run so far */
static atomic_long pg__started;  /* chain: runs handed out so far */
static atomic_int pg__chains_on; /* chain: chains not yet finished */
static long pg__n;

static double pg__now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void pg__nap(void)
{
    struct timespec ts = {0, 50000};
    nanosleep(&ts, NULL);
}

static void pg__empty(pg_task *t)
{
    (void)t;
    atomic_fetch_add_explicit(&pg__ran, 1, memory_order_relaxed);
}

/* A chain link: counts itself, then schedules itself again while runs remain. */
static void pg__link(pg_task *t)
{
    atomic_fetch_add_explicit(&pg__ran, 1, memory_order_relaxed);
    if (atomic_fetch_add_explicit(&pg__started, 1, memory_order_relaxed) < pg__n)
        pg_schedule(t);
    else
        atomic_fetch_sub_explicit(&pg__chains_on, 1, memory_order_release);
}

int main(int argc, char **argv)
{
    pg__n = argc > 1 ? atol(argv[1]) : 1000000;
    int workers = argc > 2 ? atoi(argv[2]) : 2;
    if (pg__n < 1 || workers < 1) {
        fprintf(stderr, "usage: pergola-bench-sched [N >= 1] [WORKERS >= 1]\n");
        return 2;
    }
    /* One task struct per task: a pg_task is an intrusive link, so a task cannot be in
     * the queue twice. Touch the array before timing (first-touch page faults are not
     * the scheduler's cost). */
    pg_task *tasks = calloc((size_t)pg__n, sizeof *tasks);
    if (tasks == NULL) return 1;
    for (long i = 0; i < pg__n; i++)
        tasks[i].run = pg__empty;
    if (pg_runtime_start(workers) != 0) {
        fprintf(stderr, "pergola-bench-sched: cannot start the runtime\n");
        return 1;
    }

    double t0 = pg__now();
    for (long i = 0; i < pg__n; i++)
        pg_schedule(&tasks[i]);
    while (atomic_load_explicit(&pg__ran, memory_order_acquire) < pg__n)
        pg__nap();
    double batch = pg__now() - t0;

    int chains = 2 * workers;
    if (chains > pg__n) chains = (int)pg__n;
    atomic_store(&pg__ran, 0);
    atomic_store(&pg__started, chains); /* the first run of each chain is handed out here */
    atomic_store(&pg__chains_on, chains);
    for (int i = 0; i < chains; i++)
        tasks[i].run = pg__link;
    t0 = pg__now();
    for (int i = 0; i < chains; i++)
        pg_schedule(&tasks[i]);
    while (atomic_load_explicit(&pg__chains_on, memory_order_acquire) > 0)
        pg__nap();
    double chain = pg__now() - t0;
    long chain_runs = atomic_load(&pg__ran);

    pg_runtime_stop();
    free(tasks);
    printf("sched batch tasks=%ld workers=%d ns_per_task=%.1f\n", pg__n, workers,
           batch * 1e9 / (double)pg__n);
    printf("sched chain tasks=%ld workers=%d ns_per_task=%.1f\n", chain_runs, workers,
           chain * 1e9 / (double)chain_runs);
    return 0;
}
