/* The loop thread's inbox (see loop.h). */
#include "loop.h"

static struct {
    uv_loop_t *loop;
    uv_async_t async;
    pg_mpsc q;
    int open;
} L;

static void drain(uv_async_t *h)
{
    (void)h;
    pg_mpsc_node *n;
    /* A half-done push makes pop return NULL early; its pusher's
     * uv_async_send comes after the push completes, so we run again. */
    while ((n = pg_mpsc_pop(&L.q)) != NULL) {
        pg_loopmsg *m = (pg_loopmsg *)n;
        m->run(m);
    }
}

int pg_loop_init(uv_loop_t *loop)
{
    L.loop = loop;
    pg_mpsc_init(&L.q);
    int rc = uv_async_init(loop, &L.async, drain);
    if (rc == 0) L.open = 1;
    return rc;
}

void pg_loop_post(pg_loopmsg *m)
{
    pg_mpsc_push(&L.q, &m->node_);
    uv_async_send(&L.async);
}

void pg_loop_close(void)
{
    if (!L.open) return;
    drain(&L.async);
    uv_close((uv_handle_t *)&L.async, NULL);
    L.open = 0;
}

uv_loop_t *pg_loop_get(void)
{
    return L.loop;
}
