/* An intrusive multi-producer single-consumer queue (Dmitry Vyukov's).
 *
 * Producers never wait: a push is one atomic exchange and one store. The
 * consumer may briefly see the queue as empty while a push is half done (the
 * exchange happened, the link not yet); callers must treat "empty" as
 * "nothing ready now", never as "nothing will come". The actor runtime
 * (src/runtime.c) counts messages separately for exactly this reason.
 */
#ifndef PG_MPSC_H
#define PG_MPSC_H

#include <stdatomic.h>
#include <stddef.h>

typedef struct pg_mpsc_node {
    _Atomic(struct pg_mpsc_node *) next;
} pg_mpsc_node;

typedef struct pg_mpsc {
    _Atomic(pg_mpsc_node *) head; /* producers push here */
    pg_mpsc_node *tail;           /* the consumer pops here */
    pg_mpsc_node stub;
} pg_mpsc;

static inline void pg_mpsc_init(pg_mpsc *q)
{
    atomic_store_explicit(&q->stub.next, NULL, memory_order_relaxed);
    atomic_store_explicit(&q->head, &q->stub, memory_order_relaxed);
    q->tail = &q->stub;
}

static inline void pg_mpsc_push(pg_mpsc *q, pg_mpsc_node *n)
{
    atomic_store_explicit(&n->next, NULL, memory_order_relaxed);
    pg_mpsc_node *prev = atomic_exchange_explicit(&q->head, n, memory_order_acq_rel);
    atomic_store_explicit(&prev->next, n, memory_order_release);
}

/* Pops the oldest node, or returns NULL if none is ready. Consumer only. */
static inline pg_mpsc_node *pg_mpsc_pop(pg_mpsc *q)
{
    pg_mpsc_node *tail = q->tail;
    pg_mpsc_node *next = atomic_load_explicit(&tail->next, memory_order_acquire);
    if (tail == &q->stub) {
        if (next == NULL) return NULL;
        q->tail = next;
        tail = next;
        next = atomic_load_explicit(&next->next, memory_order_acquire);
    }
    if (next != NULL) {
        q->tail = next;
        return tail;
    }
    pg_mpsc_node *head = atomic_load_explicit(&q->head, memory_order_acquire);
    if (tail != head) return NULL; /* a push is half done */
    pg_mpsc_push(q, &q->stub);
    next = atomic_load_explicit(&tail->next, memory_order_acquire);
    if (next != NULL) {
        q->tail = next;
        return tail;
    }
    return NULL;
}

#endif
