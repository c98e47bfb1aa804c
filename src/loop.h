/* The loop thread's inbox: how workers hand work to the libuv loop thread.
 *
 * Only the loop thread touches sockets. A worker that must write to a client
 * posts a pg_loopmsg; one long-lived uv_async_t wakes the loop, whose
 * callback drains the whole queue (uv_async_send coalesces, so a drained
 * queue is the only safe reading of a wake-up).
 */
#ifndef PG_LOOP_H
#define PG_LOOP_H

#include "mpsc.h"

#include <uv.h>

typedef struct pg_loopmsg pg_loopmsg;
/* Runs on the loop thread; owns M (frees it). */
typedef void (*pg_loopmsg_fn)(pg_loopmsg *m);

struct pg_loopmsg {
    pg_mpsc_node node_; /* private */
    pg_loopmsg_fn run;
};

/* Creates the inbox on LOOP. Loop thread, once. Returns 0 or a uv error. */
int pg_loop_init(uv_loop_t *loop);
/* Posts M to the loop thread. Any thread. */
void pg_loop_post(pg_loopmsg *m);
/* Runs what is queued, then closes the async handle. Loop thread. */
void pg_loop_close(void);
uv_loop_t *pg_loop_get(void);

#endif
