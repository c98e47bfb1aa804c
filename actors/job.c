/* The job actor: one `run` request, from graph to answer (see job.h). */
#include "actors/job.h"

#include "actors/io.h"
#include "actors/session.h"
#include "bufpool.h"
#include "cache.h"
#include "cluster.h"
#include "fuse.h"
#include "log.h"
#include "partition.h"
#include "ops/io.h"
#include "protocol.h"
#include "util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

enum { SW_SAVE, SW_VALUE, SW_RAW };
enum { J_NEW, J_RUNNING, J_CLOSING, J_COMMITTING, J_ABORTING, J_ENDED };

/* One result of the job, computed as a sweep over a tile grid. */
/* The bytes of one partial of value node N. */
static size_t partial_bytes(const pg_node *n)
{
    size_t b = n->op->partial_size_of ? n->op->partial_size_of(n) : n->op->partial_size;
    return b ? b : 1;
}

/* One sweep over a tile grid: a result of the job, or a value (a
 * reduction) that other nodes of the job take as an argument. */
typedef struct sweep {
    int kind;
    const pg_node *root; /* the node swept */
    pg_tiling tiling;
    int64_t ox, oy;    /* the tiling's origin: the run's "window" for a raster answer */
    int *assign;       /* distributed: node (index in job->nodes) of each tile */
    bool remote_whole; /* a remote value node: one call computes the whole sweep */
    uint64_t tried;    /* remote_whole: nodes asked already (bits of job->nodes) */
    pg_error rerr;     /* remote_whole: the last failed call's error */
    int64_t next;      /* next tile index to start */
    int64_t done;      /* tiles finished */
    bool barrier;      /* starts only once every earlier sweep is complete */
    bool complete;
    pg_writer *writer;
    char *partials;          /* SW_VALUE: ntiles * partial_size bytes, zeroed */
    size_t raw_off, raw_len; /* SW_RAW: where its cells go in the answer */
    json_t *value;           /* SW_VALUE: finish()'s value */
    /* The result cache (value and raster-answer sweeps, when it is on). */
    pg_nodekey *key;       /* the root's content key (NULL: not cached) */
    bool looked_up;        /* looked up when the sweep was about to start */
    bool cache_wait;       /* another job computes it: PG__JOB_CACHE will say */
    bool from_cache;       /* answered by the cache: no tile ran */
    pg_cache_entry *claim; /* ours to compute: filled when complete, else abandoned */
} sweep;

struct pg_job {
    pg_actor actor; /* first: the actor is the job */
    uint64_t seq;
    uint64_t session_id;
    json_t *req; /* the request (new reference) */
    json_t *id;  /* borrowed from req */
    pg_job_env env;
    pg_plan *plan;
    pg_fusion *fusion; /* NULL: every node has its own tiles */
    bool want_progress;

    int state;
    atomic_int stop; /* 0, or the code that stops the job: read by tasks */
    pg_error err;    /* the first error */
    int nsweeps, cur;
    sweep *sw;
    int *result_sweep; /* plan->results[i] is computed by sweep result_sweep[i] */
    int64_t total, done, inflight, max_inflight;
    bool parked;           /* waiting for the memory budget */
    struct frame *waiting; /* the laid-out frame that did not fit, if parked */
    int writers_pending;
    unsigned char *raw; /* the answer's attachment (raster results) */
    size_t raw_total;
    uint64_t last_progress_ns;
    uint64_t started_ns;

    /* A raster answer restricted to a window ("window" of the request). */
    bool has_window;
    pg_window window;
    /* Cluster (README "Cluster"): every node's name, sorted, this one at
     * self; each slot or sweep a remote call may compute holds the
     * subgraph to send. Empty without a cluster. */
    int nnodes, self;
    char **nodes;
    json_t **subgraph; /* per plan node, or NULL */
    int64_t remote_timeout_ms;
    /* Calls in flight, so that a cancel reaches them (slots and whole
     * sweeps): guarded by calls_lock, taken by workers, the loop thread and
     * the job, never across anything that waits. */
    uv_mutex_t calls_lock;
    struct call *calls;
    bool calls_cancelled;
    pg_cache *cache; /* the daemon's result cache, or NULL */
};

/* A message of this file only: the cache's answer to a wait (cache_ready). */
enum { PG__JOB_CACHE = 100 };
typedef struct cache_msg {
    pg_msg base;
    int status; /* PG_CACHE_HIT or PG_CACHE_CLAIMED */
    pg_cache_entry *entry;
} cache_msg;

static atomic_uint_fast64_t job_seq;

/* ---- frames: one tile index of one sweep, evaluated as a little DAG ---- */

typedef struct frame frame;

typedef struct slot {
    pg_task task; /* first */
    frame *f;
    const pg_node *node;
    pg_window win;
    atomic_int pending; /* raster args not computed yet: the join counter */
    atomic_int uses;    /* parent edges that still need this slot's tile */
    int parents_off, nparents;
    int children_off; /* nkids entries: slot index, or -1 for a number */
    pg_tile *tile;
    /* Remote slots (README "Cluster"). REGION 0 holds the frame's own
     * slots; region r > 0 the subgraph under remote slot r - 1, laid out
     * (and its memory reserved) only so that it can run here if no node
     * can: it stays dormant unless the call fails over to this node. */
    int region;
    int remote;      /* R_NONE, or R_CALL -> R_DONE (a tile came back) / R_LOCAL */
    int target_kind; /* T_ANY, T_NAMED, T_ASSIGNED */
    const char *target;
    uint64_t tried;         /* bit i: job->nodes[i] was asked already */
    pg_error rerr;          /* the last failed call's error */
    const pg_fgroup *group; /* a fusion group's root: computes the whole group */
    int nkids;              /* group ? its leaves : node->nargs */
} slot;

struct frame {
    pg_job *job;
    sweep *sw;
    int swi;
    int64_t k;
    size_t bytes; /* reserved from the budget: the tiles its slots may hold */
    int nslots;
    slot *slots;
    int *edges; /* parents then children, per slot */
    atomic_int failed;
    pg_error err;
};

enum { R_NONE, R_CALL, R_DONE, R_LOCAL };
/* Where a remote slot may run: T_ANY ("remote": true) the least loaded
 * peer, else here; T_NAMED ("remote": NAME) only that node or a member of
 * that pool; T_ASSIGNED (a distributed tile) its assigned node first, then
 * any peer, then here. */
enum { T_ANY, T_NAMED, T_ASSIGNED };

static void slot_run(pg_task *t);
struct slot;
static bool slot_attempt(struct slot *s);

static int find_or_add(slot **slots, int *n, int *cap, const pg_node *node, pg_window w, int region)
{
    for (int i = 0; i < *n; i++) {
        slot *s = &(*slots)[i];
        if (s->node == node && s->region == region && s->win.x == w.x && s->win.y == w.y &&
            s->win.w == w.w && s->win.h == w.h)
            return i;
    }
    if (*n == *cap) {
        int nc = *cap * 2;
        slot *ns = realloc(*slots, sizeof *ns * (size_t)nc);
        if (ns == NULL) return -1;
        *slots = ns;
        *cap = nc;
    }
    slot *s = &(*slots)[*n];
    memset(s, 0, sizeof *s);
    s->node = node;
    s->win = w;
    s->region = region;
    return (*n)++;
}

static void frame_free(frame *f)
{
    for (int i = 0; i < f->nslots; i++)
        pg_tile_unref(&f->slots[i].tile);
    free(f->slots);
    free(f->edges);
    free(f);
}

/* Marks slot SL remote if it must be: a node with "remote", or the input
 * of an io.save with "remote" (INHERITED: the save's spec; files are
 * written here), only in region 0 (inside a remote subgraph everything
 * runs where that subgraph runs); else a tile of a distributed sweep
 * assigned to another node (GRID: the slot is the raster the sweep is cut
 * by). */
static void mark_remote(pg_job *j, slot *sl, bool grid, int assigned, const char *inherited)
{
    if (sl->region != 0 || j->nnodes == 0 || sl->node->op->result != PG_RESULT_RASTER) return;
    const char *spec = sl->node->remote ? sl->node->remote : inherited;
    if (spec != NULL) {
        sl->remote = R_CALL;
        sl->target_kind = spec[0] ? T_NAMED : T_ANY;
        sl->target = spec;
    } else if (grid && assigned >= 0 && assigned != j->self && sl->node->nargs > 0) {
        /* (A leaf, such as io.load, is read here: a call would only move
         * the file's cells.) */
        sl->remote = R_CALL;
        sl->target_kind = T_ASSIGNED;
        sl->target = j->nodes[assigned];
    }
}

/* The region of slot S's children: a remote slot's subgraph is its own. */
static int child_region(const slot *slots, int s)
{
    return slots[s].remote == R_CALL ? s + 1 : slots[s].region;
}

/* Kid I of slot S (I < S->nkids), with its window in *W: for a fusion
 * group's root its group's leaf I (over the same window: its members are
 * per-cell maps), else arg I's node when it is a raster (NULL: a number or a
 * value, which have no slot). */
static const pg_node *slot_kid(const slot *s, int i, pg_window *w)
{
    *w = s->win;
    if (s->group) return pg_fgroup_leaf(s->group, i);
    const pg_node *node = s->node, *c = node->args[i].ref;
    if (c == NULL || c->op->result != PG_RESULT_RASTER) return NULL;
    if (node->op->need) node->op->need(node, i, &s->win, w);
    return c;
}

/* Lays out the frame for tile K of sweep SWI: the (node, window) pairs the
 * root's tile needs, found by walking need() from the root down. A fusion
 * group's root takes its group's leaves as children: its members get no
 * slot, no tile and no share of the reservation. Returns NULL when out of
 * memory. */
static frame *frame_new(pg_job *j, int swi, int64_t k)
{
    sweep *sw = &j->sw[swi];
    frame *f = calloc(1, sizeof *f);
    if (f == NULL) return NULL;
    f->job = j;
    f->sw = sw;
    f->swi = swi;
    f->k = k;
    int cap = 8, n = 0;
    slot *slots = malloc(sizeof *slots * (size_t)cap);
    if (slots == NULL) goto fail;
    pg_window w = pg_tiling_window(&sw->tiling, k);
    w.x += sw->ox;
    w.y += sw->oy;
    int assigned = sw->assign ? sw->assign[k] : -1;
    if (find_or_add(&slots, &n, &cap, sw->root, w, 0) < 0) goto fail;
    /* A raster answer is its own grid; a value or a save is cut by its
     * raster args, and io.save's "remote" means its input's. */
    mark_remote(j, &slots[0], sw->kind == SW_RAW, assigned, NULL);
    /* Pass 1: discover slots breadth first; count edges. */
    int nedges = 0;
    for (int s = 0; s < n; s++) {
        slots[s].group = pg_fusion_group(j->fusion, slots[s].node->index);
        slots[s].nkids = slots[s].group ? pg_fgroup_nleaves(slots[s].group) : slots[s].node->nargs;
        const int nkids = slots[s].nkids;
        const pg_node *node = slots[s].node;
        int region = child_region(slots, s);
        for (int i = 0; i < nkids; i++) {
            pg_window cw;
            const pg_node *c = slot_kid(&slots[s], i, &cw);
            if (c == NULL) continue; /* numbers, values */
            int before = n;
            int ci = find_or_add(&slots, &n, &cap, c, cw, region);
            if (ci < 0) goto fail;
            slots[ci].nparents++;
            if (ci == before) {
                mark_remote(j, &slots[ci], s == 0 && sw->kind != SW_RAW, assigned,
                            s == 0 && sw->kind == SW_SAVE ? node->remote : NULL);
            }
        }
        nedges += nkids;
    }
    f->slots = slots;
    f->nslots = n;
    int nparents = 0;
    for (int s = 0; s < n; s++)
        nparents += slots[s].nparents;
    f->edges = malloc(sizeof(int) * (size_t)(nparents + nedges + 1));
    if (f->edges == NULL) goto fail;
    /* Pass 2: fill the edge lists. */
    int off = 0;
    for (int s = 0; s < n; s++) {
        slots[s].parents_off = off;
        off += slots[s].nparents;
        slots[s].nparents = 0; /* refilled below */
    }
    for (int s = 0; s < n; s++) {
        slot *sl = &slots[s];
        int region = child_region(slots, s);
        sl->children_off = off;
        off += sl->nkids;
        int pending = 0;
        for (int i = 0; i < sl->nkids; i++) {
            int ci = -1;
            pg_window cw;
            const pg_node *kid = slot_kid(sl, i, &cw);
            if (kid != NULL) {
                ci = find_or_add(&slots, &n, &cap, kid, cw, region); /* exists */
                slot *c = &slots[ci];
                f->edges[c->parents_off + c->nparents++] = s;
                pending++;
            }
            f->edges[sl->children_off + i] = ci;
        }
        sl->task.run = slot_run;
        sl->f = f;
        /* A remote slot starts at once (a call); its children count down
         * only if it falls back to running here (slot_fall_back). */
        atomic_init(&sl->pending, sl->remote == R_CALL ? 0 : pending);
        atomic_init(&sl->uses, 0);
    }
    for (int s = 0; s < n; s++) {
        atomic_init(&slots[s].uses, slots[s].nparents);
        const pg_node *sn = slots[s].node;
        if (sn->op->result == PG_RESULT_RASTER)
            f->bytes +=
                pg_bufpool_class_bytes((size_t)sn->info.bands * (size_t)slots[s].win.w *
                                       (size_t)slots[s].win.h * pg_celltype_size(sn->info.type));
    }
    atomic_init(&f->failed, 0);
    return f;
fail:
    if (f->slots == NULL) free(slots);
    f->nslots = 0;
    frame_free(f);
    return NULL;
}

static void frame_fail(frame *f, const pg_error *e, const pg_node *node)
{
    int expected = 0;
    if (atomic_compare_exchange_strong(&f->failed, &expected, 1)) {
        f->err = *e;
        if (f->err.node[0] == '\0') pg_error_node(&f->err, node->name);
    }
}

/* Tile F->k is over without data to write (or after its partial/copy):
 * tell the job, through the writer for a save sweep, which must see every
 * tile index to keep its order. Frees F. */
static void frame_report(frame *f, const pg_error *err)
{
    pg_job *j = f->job;
    sweep *sw = f->sw;
    int swi = f->swi;
    int64_t k = f->k;
    size_t bytes = f->bytes;
    frame_free(f);
    if (sw->kind == SW_SAVE)
        pg_writer_write(sw->writer, k, NULL, err, bytes);
    else
        pg_job_send(&j->actor, PG_JOB_TILE_DONE, swi, k, err, bytes);
}

/* The root slot is done: hand the tile on, then tell the job. */
static void frame_done(frame *f, slot *root, pg_tile **in)
{
    pg_job *j = f->job;
    sweep *sw = f->sw;
    if (!atomic_load(&f->failed) && atomic_load(&j->stop) == 0) {
        pg_error e = {0};
        if (sw->kind == SW_SAVE) {
            if (in[0] != NULL) {
                /* The writer answers the job with TILE_DONE once it has written. */
                pg_writer_write(sw->writer, f->k, pg_tile_ref(in[0]), &e, f->bytes);
                frame_free(f);
                return;
            }
            pg_error_set(&e, PG_EINTERNAL, "tile %lld of '%s' has no data", (long long)f->k,
                         root->node->args[0].ref->name);
            frame_fail(f, &e, root->node);
        } else if (sw->kind == SW_VALUE) {
            const pg_node *n = root->node;
            if (n->op->partial(n, sw->partials + (size_t)f->k * partial_bytes(n), in, &e))
                frame_fail(f, &e, n);
        } else if (root->tile != NULL) { /* SW_RAW: copy the cells into the answer */
            const pg_tile *t = root->tile;
            size_t cs = pg_celltype_size(t->type);
            const pg_tiling *g = &sw->tiling; /* the answer's grid: the raster or its window */
            for (int b = 0; b < t->bands; b++)
                for (int64_t y = 0; y < t->win.h; y++) {
                    size_t dst =
                        (((size_t)b * (size_t)g->height + (size_t)(t->win.y - sw->oy + y)) *
                             (size_t)g->width +
                         (size_t)(t->win.x - sw->ox)) *
                        cs;
                    memcpy(j->raw + sw->raw_off + dst, pg_tile_cell(t, b, y, 0),
                           (size_t)t->win.w * cs);
                }
        } else {
            pg_error_set(&e, PG_EINTERNAL, "tile %lld has no data", (long long)f->k);
            frame_fail(f, &e, root->node);
        }
    }
    pg_error err = {0};
    if (atomic_load(&f->failed)) err = f->err;
    frame_report(f, &err);
}

static void slot_release_children(frame *f, slot *s)
{
    for (int i = 0; i < s->nkids; i++) {
        int ci = f->edges[s->children_off + i];
        if (ci < 0) continue;
        slot *c = &f->slots[ci];
        if (atomic_fetch_sub(&c->uses, 1) == 1) pg_tile_unref(&c->tile);
    }
}

/* A slot's continuation: its args are all computed (or it has none). */
static void slot_run(pg_task *t)
{
    slot *s = (slot *)t;
    if (s->remote == R_CALL && slot_attempt(s)) return; /* back when answered */
    frame *f = s->f;
    pg_job *j = f->job;
    const pg_node *node = s->node;
    pg_tile *stack_in[16];
    pg_tile **in = s->nkids <= 16 ? stack_in : malloc(sizeof *in * (size_t)s->nkids);
    bool root = s == &f->slots[0];

    if (in == NULL) {
        pg_error e;
        pg_error_set(&e, PG_ENOMEM, "out of memory");
        frame_fail(f, &e, node);
    } else {
        for (int i = 0; i < s->nkids; i++) {
            int ci = f->edges[s->children_off + i];
            in[i] = ci < 0 ? NULL : f->slots[ci].tile;
        }
    }
    bool live = in != NULL && !atomic_load(&f->failed) && atomic_load(&j->stop) == 0;
    if (live && node->op->result == PG_RESULT_RASTER && s->remote != R_DONE) {
        pg_error e = {0};
        for (int i = 0; i < s->nkids && live; i++)
            if (f->edges[s->children_off + i] >= 0 && in[i] == NULL)
                live = false; /* a raster child failed (values have no tile) */
        pg_tile *out = live ? pg_tile_new(node->info.type, node->info.bands, s->win) : NULL;
        if (live && out == NULL) {
            pg_error_set(&e, PG_ENOMEM, "out of memory for a %lldx%lld tile", (long long)s->win.w,
                         (long long)s->win.h);
            frame_fail(f, &e, node);
        } else if (live && (s->group ? pg_fgroup_compute(s->group, out, in, &e)
                                     : node->op->compute(node, out, in, &e)) != 0) {
            frame_fail(f, &e, node);
            pg_tile_unref(&out);
        }
        s->tile = out;
    }
    if (root) {
        frame_done(f, s, in);
        if (in != stack_in) free(in);
        return;
    }
    if (in != stack_in) free(in);
    slot_release_children(f, s);
    /* Tell the parents; the one whose counter reaches zero runs next.
     * Once our last decrement is done another worker may finish the root
     * and free the frame: nothing of it may be read after that, so the
     * loop runs on locals (each parent index is read before its own
     * decrement, while the frame is still held up by it). */
    const int np = s->nparents;
    slot *const slots = f->slots;
    const int *const parents = f->edges + s->parents_off;
    for (int p = 0; p < np; p++) {
        slot *ps = &slots[parents[p]];
        if (atomic_fetch_sub(&ps->pending, 1) == 1) pg_schedule(&ps->task);
    }
}

/* Schedules the slots of REGION whose counters are at zero (its leaves).
 * They are all collected before the first is scheduled: once one runs,
 * other counters change (a parent reaching zero is scheduled by its child,
 * and must not be again here) and the last one may end the frame. Returns
 * 0, or -1 when out of memory (then nothing is scheduled). */
static int frame_start_region(frame *f, int region)
{
    pg_task *stack[32];
    pg_task **tasks = f->nslots <= 32 ? stack : malloc(sizeof *tasks * (size_t)f->nslots);
    if (tasks == NULL) return -1;
    int n = 0;
    for (int s = 0; s < f->nslots; s++)
        if (f->slots[s].region == region && atomic_load(&f->slots[s].pending) == 0)
            tasks[n++] = &f->slots[s].task;
    for (int i = 0; i < n; i++)
        pg_schedule(tasks[i]);
    if (tasks != stack) free(tasks);
    return 0;
}

/* Starts frame F: its own slots (region 0); remote subgraphs stay dormant. */
static void frame_start(frame *f)
{
    if (frame_start_region(f, 0) != 0) {
        pg_error e;
        pg_error_set(&e, PG_ENOMEM, "out of memory");
        frame_fail(f, &e, f->slots[0].node);
        pg_error copy = f->err;
        frame_report(f, &copy);
    }
}

/* ---- remote calls (README "Cluster") ---- */

/* One call in flight: to compute a remote slot's tile, or a whole remote
 * value sweep. Two references: the issuer's (until it has recorded the
 * call's id) and the callback's. */
typedef struct call {
    struct call *next, **pprev; /* in job->calls while in flight */
    atomic_int refs;
    pg_job *job;
    slot *s;  /* a slot's call, or NULL */
    int swi;  /* a whole sweep's call */
    int node; /* index in job->nodes */
    uint64_t id;
} call;

/* The call holds the job: once its callback has let the tile go on, the
 * job may end while the issuer is still recording the call's id. */
static void call_unref(call *c)
{
    if (atomic_fetch_sub(&c->refs, 1) == 1) {
        pg_actor *a = &c->job->actor;
        free(c);
        pg_actor_unref(a);
    }
}

/* Picks the node for the next attempt of a call of kind KIND to TARGET,
 * skipping those in TRIED: an index in job->nodes, -1 for "run it here",
 * or -2 when no node is left (T_NAMED only). Least loaded first (load per
 * worker from its heartbeats, plus our calls in flight to it); a peer at
 * its cap of calls (cluster.max_calls_per_peer) queues them. */
static int pick_node(pg_job *j, int kind, const char *target, uint64_t tried)
{
    if (kind == T_ASSIGNED) {
        for (int i = 0; i < j->nnodes; i++)
            if (strcmp(j->nodes[i], target) == 0 && !(tried & ((uint64_t)1 << i))) {
                pg_peer_info pi;
                if (pg_cluster_peers(target, &pi, 1) == 1 && pi.state == PG_PEER_UP) return i;
            }
    }
    if (kind == T_NAMED && strcmp(target, j->nodes[j->self]) == 0) return -1;
    pg_peer_info peers[64];
    int np = pg_cluster_peers(kind == T_NAMED ? target : NULL, peers, 64);
    int best = -1;
    double best_load = 0;
    for (int p = 0; p < np; p++) {
        if (peers[p].state != PG_PEER_UP) continue;
        int i = 0;
        while (i < j->nnodes && strcmp(j->nodes[i], peers[p].name) != 0)
            i++;
        if (i == j->nnodes || (tried & ((uint64_t)1 << i))) continue;
        double load = (double)(peers[p].load + peers[p].inflight) /
                      (peers[p].workers > 0 ? peers[p].workers : 1);
        if (best < 0 || load < best_load) best = i, best_load = load;
    }
    if (best >= 0) return best;
    return kind == T_NAMED ? -2 : -1;
}

/* Should a failed call be tried elsewhere? Only when the node failed, not
 * the graph: a graph error would be the same anywhere. */
static bool call_retryable(int code)
{
    return code == PG_EPEER || code == PG_ETIMEOUT || code == PG_EBUSY || code == PG_ESHUTDOWN ||
           code == PG_ECONNECT || code == PG_EPROTO || code == PG_ECLOSED || code == PG_ENOMEM ||
           code == PG_ECANCELLED;
}

static void call_error(pg_error *e, int code, const json_t *ev, const char *node)
{
    const json_t *err = ev ? json_object_get(ev, "error") : NULL;
    const char *msg = json_string_value(json_object_get(err, "message"));
    const char *at = json_string_value(json_object_get(err, "node"));
    if (code == PG_EPEER && msg == NULL) msg = "the node is down or refused";
    if (code == PG_ETIMEOUT && msg == NULL) msg = "no answer before the deadline";
    pg_error_set(e, code, "node '%s': %s", node, msg ? msg : pg_strerror(code));
    if (at && *at) pg_error_node(e, at);
}

static void on_call_end(void *ctx, int code, const json_t *ev, const void *data, size_t len,
                        const char *node);

/* Sends call C (request REQ, stolen) to node C->node; registers it so that
 * a cancel reaches it. */
static void call_send(pg_job *j, call *c, json_t *req)
{
    atomic_init(&c->refs, 2);
    c->job = j;
    pg_actor_ref(&j->actor);
    uv_mutex_lock(&j->calls_lock);
    c->next = j->calls;
    c->pprev = &j->calls;
    if (j->calls) j->calls->pprev = &c->next;
    j->calls = c;
    uv_mutex_unlock(&j->calls_lock);
    uint64_t id = pg_cluster_call(j->nodes[c->node], req, j->remote_timeout_ms, on_call_end, c);
    uv_mutex_lock(&j->calls_lock);
    c->id = id;
    bool cancel = c->pprev != NULL && j->calls_cancelled;
    uv_mutex_unlock(&j->calls_lock);
    if (cancel) pg_cluster_cancel(id);
    call_unref(c);
}

/* A remote slot's next attempt, on a worker: a call, or running here (its
 * dormant subgraph wakes up), or failing when no node is left. Returns
 * true if the slot is now waiting (for the call or for its children). */
static bool slot_attempt(slot *s)
{
    frame *f = s->f;
    pg_job *j = f->job;
    for (;;) {
        if (atomic_load(&j->stop) != 0 || atomic_load(&f->failed)) {
            s->remote = R_DONE; /* no tile: the continuation reports the failure */
            return false;
        }
        int i = pick_node(j, s->target_kind, s->target, s->tried);
        if (i == -2) {
            pg_error e;
            if (s->rerr.code)
                pg_error_set(&e, PG_EPEER, "no node of '%s' could compute it (last: %s)", s->target,
                             s->rerr.message);
            else
                pg_error_set(&e, PG_EPEER, "no node of '%s' is up", s->target);
            frame_fail(f, &e, s->node);
            s->remote = R_DONE;
            return false;
        }
        if (i == -1) { /* here: wake the subgraph that was laid out for this */
            s->remote = R_LOCAL;
            int region = (int)(s - f->slots) + 1, pending = 0;
            for (int a = 0; a < s->nkids; a++)
                if (f->edges[s->children_off + a] >= 0) pending++;
            if (pending == 0) return false; /* computes straight away */
            atomic_store(&s->pending, pending);
            if (frame_start_region(f, region) != 0) {
                pg_error e;
                pg_error_set(&e, PG_ENOMEM, "out of memory");
                frame_fail(f, &e, s->node);
                atomic_store(&s->pending, 0);
                s->remote = R_DONE;
                return false;
            }
            return true;
        }
        s->tried |= (uint64_t)1 << i;
        json_t *g = json_deep_copy(j->subgraph[s->node->index]);
        json_t *req = g ? json_pack("{s:s, s:o, s:[IIII], s:b}", "type", "run", "graph", g,
                                    "window", (json_int_t)s->win.x, (json_int_t)s->win.y,
                                    (json_int_t)s->win.w, (json_int_t)s->win.h, "progress", 0)
                        : NULL;
        call *c = calloc(1, sizeof *c);
        if (req == NULL || c == NULL) {
            json_decref(req);
            free(c);
            pg_error_set(&s->rerr, PG_ENOMEM, "out of memory");
            continue; /* try elsewhere (here, in the end) */
        }
        c->s = s;
        c->swi = -1;
        c->node = i;
        call_send(j, c, req);
        return true;
    }
}

/* The answer to a slot's call, on the loop thread: the tile, or the next
 * attempt. Either way the slot runs again on a worker. */
static void slot_call_end(call *c, int code, const json_t *ev, const void *data, size_t len)
{
    slot *s = c->s;
    const char *node = c->job->nodes[c->node];
    if (code == 0) {
        const pg_raster_info *ri = &s->node->info;
        size_t want =
            (size_t)ri->bands * (size_t)s->win.w * (size_t)s->win.h * pg_celltype_size(ri->type);
        const json_t *r = json_object_get(json_object_get(ev, "value"), "raster");
        const char *type = json_string_value(json_object_get(r, "type"));
        if (len != want || data == NULL || type == NULL ||
            strcmp(type, pg_celltype_name(ri->type)) != 0) {
            pg_error_set(&s->rerr, PG_EPROTO,
                         "node '%s' answered %zu bytes of %s for a %lldx%lld %s tile", node, len,
                         type ? type : "?", (long long)s->win.w, (long long)s->win.h,
                         pg_celltype_name(ri->type));
        } else if ((s->tile = pg_tile_new(ri->type, ri->bands, s->win)) == NULL) {
            pg_error_set(&s->rerr, PG_ENOMEM, "out of memory for a tile from node '%s'", node);
        } else {
            memcpy(s->tile->data, data, want);
            s->remote = R_DONE;
        }
    } else {
        call_error(&s->rerr, code, ev, node);
        pg_log_debug("job %llu: %s", (unsigned long long)c->job->seq, s->rerr.message);
        if (!call_retryable(code)) {
            frame_fail(s->f, &s->rerr, s->node);
            s->remote = R_DONE;
        }
    }
    pg_schedule(&s->task); /* R_DONE: the continuation; R_CALL: the next attempt */
}

static void sweep_call_end(call *c, int code, const json_t *ev);
static int sweep_bind_value(pg_job *j, sweep *sw, pg_error *e);
static int sweep_value_ready(pg_job *j, sweep *sw, pg_error *e);
static void job_launch(pg_job *j);

static void on_call_end(void *ctx, int code, const json_t *ev, const void *data, size_t len,
                        const char *node)
{
    (void)node;
    call *c = ctx;
    pg_job *j = c->job;
    uv_mutex_lock(&j->calls_lock);
    if (c->pprev) {
        *c->pprev = c->next;
        if (c->next) c->next->pprev = c->pprev;
        c->pprev = NULL;
    }
    uv_mutex_unlock(&j->calls_lock);
    if (c->s)
        slot_call_end(c, code, ev, data, len);
    else
        sweep_call_end(c, code, ev);
    call_unref(c);
}

/* Cancels every call in flight (the job stops). Any thread. */
static void calls_cancel(pg_job *j)
{
    uv_mutex_lock(&j->calls_lock);
    j->calls_cancelled = true;
    for (call *c = j->calls; c; c = c->next)
        if (c->id) pg_cluster_cancel(c->id);
    uv_mutex_unlock(&j->calls_lock);
}

/* ---- the job actor ---- */

static void job_post(pg_job *j, json_t *ev, void *data, size_t len, int final_outcome)
{
    if (final_outcome != PG_OUTCOME_NONE) {
        j->state = J_ENDED;
        /* The loop drops the reference this post carries. */
        pg_session_post(j->session_id, ev, data, len, j, final_outcome);
    } else {
        pg_session_post(j->session_id, ev, data, len, NULL, 0);
    }
}

static const char *stop_message(pg_job *j, int code, char *buf, size_t n)
{
    switch (code) {
    case PG_ETIMEOUT:
        snprintf(buf, n, "the job ran past its deadline (timeout_ms %lld)",
                 (long long)json_integer_value(json_object_get(j->req, "timeout_ms")));
        return buf;
    case PG_ESHUTDOWN:
        return "the daemon is shutting down";
    default:
        return "the job was cancelled";
    }
}

static void job_cache_release(pg_job *j);

static void job_end_error(pg_job *j)
{
    job_cache_release(j);
    char buf[160];
    int code = j->err.code;
    const char *msg = j->err.message, *node = j->err.node;
    if (code == 0) {
        code = atomic_load(&j->stop);
        if (code == 0) code = PG_EINTERNAL;
        msg = stop_message(j, code, buf, sizeof buf);
        node = NULL;
    }
    pg_log_info("job %llu: %s: %s%s%s", (unsigned long long)j->seq, pg_err_name(code), msg,
                node && *node ? " at node " : "", node && *node ? node : "");
    int outcome = (code == PG_ECANCELLED || code == PG_ETIMEOUT || code == PG_ESHUTDOWN)
                      ? PG_OUTCOME_CANCELLED
                      : PG_OUTCOME_FAILED;
    job_post(j, pg_proto_error_event(j->id, code, msg, node), NULL, 0, outcome);
}

/* The header of a raster answer: RI, or its window W (NULL: all of it). */
static json_t *raster_header(const pg_raster_info *ri, const pg_window *w)
{
    json_t *gt = json_null();
    if (ri->has_geotransform) {
        double g[6];
        memcpy(g, ri->geotransform, sizeof g);
        if (w) { /* the window's top-left corner */
            g[0] += (double)w->x * g[1] + (double)w->y * g[2];
            g[3] += (double)w->x * g[4] + (double)w->y * g[5];
        }
        gt = json_array();
        for (int i = 0; i < 6; i++)
            json_array_append_new(gt, json_real(g[i]));
    }
    json_t *nd = json_null();
    if (ri->has_nodata) nd = isnan(ri->nodata) ? json_string("nan") : json_real(ri->nodata);
    return json_pack("{sIsIsisssoso s:s}", "width", (json_int_t)(w ? w->w : ri->width), "height",
                     (json_int_t)(w ? w->h : ri->height), "bands", ri->bands, "type",
                     pg_celltype_name(ri->type), "nodata", nd, "geotransform", gt, "crs",
                     ri->crs_wkt ? ri->crs_wkt : "");
}

static void job_end_success(pg_job *j)
{
    json_t *items = json_array();
    int cached = 0;
    for (int r = 0; r < j->plan->nresults; r++) {
        sweep *sw = &j->sw[j->result_sweep[r]];
        json_t *item = NULL;
        cached += sw->from_cache;
        if (sw->kind == SW_SAVE) {
            const pg_save_state *ss = sw->root->state;
            const pg_raster_info *ri = &sw->root->info;
            item = json_pack("{sssIsIsiss}", "path", ss->relpath, "width", (json_int_t)ri->width,
                             "height", (json_int_t)ri->height, "bands", ri->bands, "type",
                             pg_celltype_name(ri->type));
        } else if (sw->kind == SW_VALUE) {
            item = json_incref(sw->value);
        } else {
            item = json_pack("{sosIsI}", "raster",
                             raster_header(&sw->root->info, j->has_window ? &j->window : NULL),
                             "offset", (json_int_t)sw->raw_off, "length", (json_int_t)sw->raw_len);
        }
        json_array_append_new(items, item ? item : json_null());
    }
    json_t *ev = pg_proto_event(j->id, "result");
    if (j->plan->results_list)
        json_object_set_new(ev, "value", items);
    else {
        json_object_set(ev, "value", json_array_get(items, 0));
        json_decref(items);
    }
    json_object_set_new(ev, "cached", json_integer(cached));
    if (j->raw_total) json_object_set_new(ev, "bytes", json_integer((json_int_t)j->raw_total));
    pg_log_info("job %llu: done, %lld tiles in %.3f s", (unsigned long long)j->seq,
                (long long)j->total, (double)(pg_now_ns() - j->started_ns) / 1e9);
    unsigned char *raw = j->raw;
    size_t len = j->raw_total;
    j->raw = NULL;
    job_post(j, ev, raw, len, PG_OUTCOME_COMPLETED);
}

static void job_fail(pg_job *j, const pg_error *e)
{
    if (j->err.code == 0 && e->code != 0) j->err = *e;
    int expected = 0;
    atomic_compare_exchange_strong(&j->stop, &expected, e->code ? e->code : PG_EINTERNAL);
}

static int count_writers(pg_job *j)
{
    int n = 0;
    for (int i = 0; i < j->nsweeps; i++)
        if (j->sw[i].writer) n++;
    return n;
}

static void writers_send(pg_job *j, void (*fn)(pg_writer *))
{
    j->writers_pending = count_writers(j);
    for (int i = 0; i < j->nsweeps; i++)
        if (j->sw[i].writer) fn(j->sw[i].writer);
}

static void job_abort(pg_job *j)
{
    j->state = J_ABORTING;
    writers_send(j, pg_writer_abort);
    if (j->writers_pending == 0) job_end_error(j);
}

/* Called whenever something finished: moves the job on if it can. */
static void job_maybe_finish(pg_job *j)
{
    if (j->state == J_RUNNING && j->inflight > 0 && atomic_load(&j->stop) != 0 &&
        !j->calls_cancelled && j->nnodes > 0)
        calls_cancel(j); /* the tiles waiting for peers end now, not at their deadline */
    if (j->state != J_RUNNING || j->inflight > 0) return;
    if (atomic_load(&j->stop) != 0) {
        job_abort(j);
        return;
    }
    for (int i = 0; i < j->nsweeps; i++)
        if (!j->sw[i].complete) return; /* more tiles to start (parked, or a barrier) */
    j->state = J_CLOSING;
    writers_send(j, pg_writer_close);
    if (j->writers_pending == 0) job_end_success(j);
}

/* Frees a value sweep's partial states (finished or not). */
static void sweep_free_partials(sweep *sw)
{
    if (sw->partials == NULL) return;
    const pg_op_def *op = sw->root->op;
    if (op->partial_free) {
        int64_t nt = pg_tiling_count(&sw->tiling);
        for (int64_t k = 0; k < nt; k++)
            op->partial_free(sw->root, sw->partials + (size_t)k * partial_bytes(sw->root));
    }
    free(sw->partials);
    sw->partials = NULL;
}

static int sweep_bind_value(pg_job *j, sweep *sw, pg_error *e);

/* Every tile of a value sweep is done: merge the partials in tile order,
 * give the cache a copy if the sweep claimed it, then bind the value. */
static int sweep_finish_value(pg_job *j, sweep *sw, pg_error *e)
{
    const pg_node *n = sw->root;
    int64_t nt = pg_tiling_count(&sw->tiling);
    void **parts = malloc(sizeof *parts * (size_t)nt);
    if (parts == NULL) return pg_error_set(e, PG_ENOMEM, "out of memory");
    for (int64_t k = 0; k < nt; k++)
        parts[k] = sw->partials + (size_t)k * partial_bytes(n);
    int rc = n->op->finish(n, parts, nt, &sw->value, e);
    free(parts);
    sweep_free_partials(sw);
    if (rc != 0) {
        if (e->code == 0) pg_error_set(e, PG_EINTERNAL, "%s failed", n->op->name);
        if (e->node[0] == '\0') pg_error_node(e, n->name);
        return e->code;
    }
    return sweep_value_ready(j, sw, e);
}

/* Value sweep SW has its value (finished here, or computed by a peer): the
 * cache gets a copy if the sweep claimed it, the users get it bound. */
static int sweep_value_ready(pg_job *j, sweep *sw, pg_error *e)
{
    if (sw->claim != NULL) {
        /* A copy: the cache's value is read by other jobs' threads. */
        json_t *copy = json_deep_copy(sw->value);
        if (copy != NULL)
            pg_cache_fill(j->cache, &sw->claim, copy, NULL, 0);
        else
            pg_cache_abandon(j->cache, &sw->claim);
    }
    return sweep_bind_value(j, sw, e);
}

/* Hands value sweep SW's value to every node that takes it as an argument,
 * before any of their tiles runs (their sweeps wait behind a barrier). */
static int sweep_bind_value(pg_job *j, sweep *sw, pg_error *e)
{
    const pg_node *n = sw->root;
    pg_plan *p = j->plan;
    for (int m = 0; m < p->nnodes; m++) {
        pg_node *user = &p->nodes[m];
        for (int a = 0; a < user->nargs; a++) {
            if (user->args[a].ref != n) continue;
            /* The planner lets a value reach only ops that take one. */
            if (user->op->bind == NULL || user->op->bind(user, a, sw->value, e) != 0) {
                if (e->code == 0)
                    pg_error_set(e, PG_ETYPE, "%s cannot take the value of '%s'", user->op->name,
                                 n->name);
                if (e->node[0] == '\0') pg_error_node(e, user->name);
                return e->code;
            }
        }
    }
    return 0;
}

/* ---- the result cache ---- */

static void job_launch(pg_job *j);
static void job_progress(pg_job *j, bool force);

/* Sweep SW is answered by entry E (borrowed): its value is bound, or its
 * cells copied into the answer, and none of its tiles runs. Returns 0; 1
 * if E does not fit the sweep (then it is computed: exact keys make that
 * impossible, but a wrong answer must be impossible too); or an error code
 * with ERR. */
static int sweep_take(pg_job *j, sweep *sw, const pg_cache_entry *e, pg_error *err)
{
    const json_t *v = pg_cache_entry_value(e);
    if (sw->kind == SW_VALUE) {
        json_t *copy = v ? json_deep_copy(v) : NULL;
        if (copy == NULL) return v ? pg_error_set(err, PG_ENOMEM, "out of memory") : 1;
        json_decref(sw->value);
        sw->value = copy;
        sweep_free_partials(sw);
        int rc = sweep_bind_value(j, sw, err);
        if (rc) return rc;
    } else {
        size_t len;
        const void *cells = pg_cache_entry_cells(e, &len);
        json_t *h = raster_header(&sw->root->info, NULL);
        bool ok = cells != NULL && len == sw->raw_len && h != NULL && v != NULL && json_equal(h, v);
        json_decref(h);
        if (!ok) {
            pg_log_error("job %llu: the cached raster of '%s' does not fit its node; computing it",
                         (unsigned long long)j->seq, sw->root->name);
            return 1;
        }
        memcpy(j->raw + sw->raw_off, cells, len);
    }
    int64_t nt = pg_tiling_count(&sw->tiling);
    sw->next = nt;
    sw->complete = true;
    sw->from_cache = true;
    j->total -= nt;
    return 0;
}

/* Gives the cache a copy of raster-answer sweep SW's cells (its claim). */
static void sweep_fill_raw(pg_job *j, sweep *sw)
{
    json_t *h = raster_header(&sw->root->info, NULL);
    void *cells = malloc(sw->raw_len ? sw->raw_len : 1);
    if (h == NULL || cells == NULL) {
        json_decref(h);
        free(cells);
        pg_cache_abandon(j->cache, &sw->claim);
        return;
    }
    memcpy(cells, j->raw + sw->raw_off, sw->raw_len);
    pg_cache_fill(j->cache, &sw->claim, h, cells, sw->raw_len);
}

/* Keys every sweep the cache may answer (values, raster answers that fit
 * the budget; never io.save: a save always writes its file), and takes
 * what the cache already holds, before the job says how many tiles it
 * will run. Without keys (out of memory) the job runs uncached. */
static int job_cache_setup(pg_job *j, pg_error *err)
{
    j->cache = pg_cache_global();
    if (j->cache == NULL) return 0;
    pg_plan *p = j->plan;
    pg_nodekey **keys = calloc((size_t)p->nnodes, sizeof *keys);
    pg_error e = {0};
    if (keys == NULL || pg_nodekey_plan(p, keys, &e) != 0) {
        free(keys);
        pg_log_warn("job %llu: no cache keys (%s): running uncached", (unsigned long long)j->seq,
                    e.message);
        j->cache = NULL;
        return 0;
    }
    pg_cache_stats st;
    pg_cache_get_stats(j->cache, &st);
    for (int i = 0; i < j->nsweeps; i++) {
        sweep *sw = &j->sw[i];
        /* A windowed answer is keyed by its node only: not cached. */
        if (sw->kind == SW_SAVE ||
            (sw->kind == SW_RAW && ((int64_t)sw->raw_len > st.budget_bytes || j->has_window)))
            continue;
        sw->key = pg_nodekey_ref(keys[sw->root->index]);
    }
    pg_nodekey_release(keys, p->nnodes);
    free(keys);
    for (int i = 0; i < j->nsweeps; i++) {
        sweep *sw = &j->sw[i];
        pg_cache_entry *ce = sw->key ? pg_cache_get(j->cache, sw->key) : NULL;
        if (ce == NULL) continue;
        int rc = sweep_take(j, sw, ce, err);
        pg_cache_entry_unref(&ce);
        if (rc < 0) return rc;
        sw->looked_up = rc == 0;
    }
    return 0;
}

/* The cache's answer to a wait, on the thread that filled or abandoned the
 * claim: passed on to the job's actor. */
static void cache_ready(void *arg, int status, pg_cache_entry *e)
{
    pg_job *j = arg;
    cache_msg *m = calloc(1, sizeof *m);
    if (m == NULL) {
        pg_log_error("out of memory sending a message to a job");
        abort(); /* a lost answer would hang the job */
    }
    m->base.type = PG__JOB_CACHE;
    m->status = status;
    m->entry = e;
    pg_actor_send(&j->actor, &m->base);
    pg_actor_unref(&j->actor); /* the reference the wait held */
}

/* Sweep SW is about to start: asks the cache. False when it waits for
 * another job's computation of the same key; true when it goes on, ours
 * to compute (claimed) or answered (then complete). */
static bool job_cache_lookup(pg_job *j, sweep *sw)
{
    sw->looked_up = true;
    pg_cache_entry *e = NULL;
    pg_actor_ref(&j->actor); /* held by a wait registration */
    int st = pg_cache_lookup(j->cache, sw->key, &e, cache_ready, j);
    if (st == PG_CACHE_PENDING) {
        sw->cache_wait = true;
        return false;
    }
    pg_actor_unref(&j->actor);
    if (st == PG_CACHE_CLAIMED) {
        sw->claim = e;
    } else if (st == PG_CACHE_HIT) {
        pg_error err = {0};
        int rc = sweep_take(j, sw, e, &err);
        pg_cache_entry_unref(&e);
        if (rc < 0) job_fail(j, &err);
    }
    return true;
}

static void job_on_cache(pg_job *j, cache_msg *m)
{
    pg_cache_entry *e = m->entry;
    sweep *sw = NULL;
    for (int i = 0; i < j->nsweeps && sw == NULL; i++)
        if (j->sw[i].cache_wait) sw = &j->sw[i];
    if (sw != NULL) sw->cache_wait = false;
    if (sw == NULL || j->state != J_RUNNING || atomic_load(&j->stop) != 0) {
        /* Not wanted any more: a claim goes on to the next waiter. */
        if (m->status == PG_CACHE_CLAIMED)
            pg_cache_abandon(j->cache, &e);
        else
            pg_cache_entry_unref(&e);
        job_maybe_finish(j);
        return;
    }
    if (m->status == PG_CACHE_CLAIMED) {
        sw->claim = e;
    } else {
        pg_error err = {0};
        int rc = sweep_take(j, sw, e, &err);
        pg_cache_entry_unref(&e);
        if (rc < 0) job_fail(j, &err);
    }
    job_progress(j, false);
    job_launch(j);
    job_maybe_finish(j);
}

/* The job is over: its claims go to their waiters (or away), its waits are
 * withdrawn (one whose answer is on its way is handled by job_on_cache). */
static void job_cache_release(pg_job *j)
{
    if (j->cache == NULL) return;
    for (int i = 0; i < j->nsweeps; i++) {
        sweep *sw = &j->sw[i];
        if (sw->claim) pg_cache_abandon(j->cache, &sw->claim);
        if (sw->cache_wait && pg_cache_unwait(j->cache, sw->key, j)) {
            sw->cache_wait = false;
            pg_actor_unref(&j->actor); /* the wait's reference */
        }
    }
}

static void wake(void *arg)
{
    pg_job *j = arg;
    pg_job_send(&j->actor, PG_JOB_WAKE, -1, 0, NULL, 0);
    pg_actor_unref(&j->actor); /* the reference the registration held */
}

static void job_progress(pg_job *j, bool force)
{
    if (!j->want_progress) return;
    uint64_t now = pg_now_ns();
    if (!force && now - j->last_progress_ns < 100000000u) return;
    j->last_progress_ns = now;
    json_t *ev = pg_proto_event(j->id, "progress");
    json_object_set_new(ev, "done", json_integer((json_int_t)j->done));
    json_object_set_new(ev, "total", json_integer((json_int_t)j->total));
    job_post(j, ev, NULL, 0, PG_OUTCOME_NONE);
}

/* A remote value sweep's next attempt, on the job's actor: a call, or the
 * sweep turns local (its tiles run here), or the job fails when no node is
 * left. Holds one unit of j->inflight while a call is out. */
static void sweep_attempt(pg_job *j, int swi)
{
    sweep *sw = &j->sw[swi];
    const char *target = sw->root->remote;
    int kind = target[0] ? T_NAMED : T_ANY;
    for (;;) {
        int i = atomic_load(&j->stop) ? -3 : pick_node(j, kind, target, sw->tried);
        if (i == -3 || i == -2) {
            if (i == -2) {
                pg_error e;
                if (sw->rerr.code)
                    pg_error_set(&e, PG_EPEER, "no node of '%s' could compute it (last: %s)",
                                 target, sw->rerr.message);
                else
                    pg_error_set(&e, PG_EPEER, "no node of '%s' is up", target);
                pg_error_node(&e, sw->root->name);
                job_fail(j, &e);
            }
            j->inflight--;
            return;
        }
        if (i == -1) { /* here, tile by tile */
            sw->remote_whole = false;
            sw->next = 0;
            j->inflight--;
            /* job_launch may have moved past this sweep while its call was
             * out; no later sweep behind a barrier can have started. */
            if (j->cur > swi) j->cur = swi;
            return;
        }
        sw->tried |= (uint64_t)1 << i;
        json_t *g = json_deep_copy(j->subgraph[sw->root->index]);
        json_t *req =
            g ? json_pack("{s:s, s:o, s:b}", "type", "run", "graph", g, "progress", 0) : NULL;
        call *c = calloc(1, sizeof *c);
        if (req == NULL || c == NULL) {
            json_decref(req);
            free(c);
            pg_error_set(&sw->rerr, PG_ENOMEM, "out of memory");
            continue;
        }
        c->swi = swi;
        c->node = i;
        call_send(j, c, req);
        return;
    }
}

/* A whole sweep's answer, on the loop thread: on to the job's actor. */
static void sweep_call_end(call *c, int code, const json_t *ev)
{
    pg_job *j = c->job;
    pg_job_msg *m = calloc(1, sizeof *m);
    if (m == NULL) {
        pg_log_error("out of memory answering a job");
        abort();
    }
    m->base.type = PG_JOB_REMOTE;
    m->sweep = c->swi;
    m->k = c->node;
    if (code == 0) {
        m->value = json_deep_copy(json_object_get(ev, "value"));
        if (m->value == NULL) pg_error_set(&m->err, PG_ENOMEM, "out of memory");
    } else {
        call_error(&m->err, code, ev, j->nodes[c->node]);
        m->retry = call_retryable(code);
    }
    pg_actor_send(&j->actor, &m->base);
}

static void job_on_remote(pg_job *j, pg_job_msg *jm)
{
    sweep *sw = &j->sw[jm->sweep];
    if (jm->err.code == 0 && atomic_load(&j->stop) == 0) {
        j->inflight--;
        int64_t nt = pg_tiling_count(&sw->tiling);
        j->done += nt - sw->done;
        sw->done = nt;
        sw->value = jm->value;
        jm->value = NULL;
        sweep_free_partials(sw);
        pg_error e = {0};
        if (sweep_value_ready(j, sw, &e) != 0)
            job_fail(j, &e);
        else
            sw->complete = true;
    } else if (jm->err.code && jm->retry && atomic_load(&j->stop) == 0) {
        sw->rerr = jm->err;
        pg_log_debug("job %llu: %s; trying elsewhere", (unsigned long long)j->seq, jm->err.message);
        sweep_attempt(j, jm->sweep);
    } else {
        j->inflight--;
        if (jm->err.code && atomic_load(&j->stop) == 0) { /* (a stopped job has its error) */
            pg_error e = jm->err;
            if (e.node[0] == '\0') pg_error_node(&e, sw->root->name);
            job_fail(j, &e);
        }
    }
    json_decref(jm->value);
    jm->value = NULL;
    job_progress(j, false);
    job_launch(j);
    job_maybe_finish(j);
}

/* Starts tile indices, in order, while the budget and the in-flight cap
 * allow and no barrier holds. A frame is laid out first, so that exactly
 * the bytes its tiles may hold are reserved; one that does not fit waits
 * (parked) until memory comes back. */
static void job_launch(pg_job *j)
{
    while (j->state == J_RUNNING && !j->parked && atomic_load(&j->stop) == 0 &&
           j->cur < j->nsweeps && j->inflight < j->max_inflight) {
        sweep *sw = &j->sw[j->cur];
        if (sw->next >= pg_tiling_count(&sw->tiling)) {
            j->cur++;
            continue;
        }
        if (sw->next == 0 && sw->barrier)
            for (int i = 0; i < j->cur; i++)
                if (!j->sw[i].complete) return;
        if (sw->next == 0 && sw->key != NULL && !sw->looked_up) {
            if (!job_cache_lookup(j, sw)) return;
            continue; /* answered (then complete) or claimed: look again */
        }
        if (sw->cache_wait) return;
        if (sw->next == 0 && sw->remote_whole) {
            sw->next = pg_tiling_count(&sw->tiling);
            j->inflight++;
            sweep_attempt(j, j->cur); /* may turn the sweep local: next is 0 again */
            continue;
        }
        frame *f = j->waiting;
        j->waiting = NULL;
        if (f == NULL) f = frame_new(j, j->cur, sw->next);
        if (f == NULL) {
            pg_error e;
            pg_error_set(&e, PG_ENOMEM, "out of memory");
            job_fail(j, &e);
            break;
        }
        pg_actor_ref(&j->actor); /* held by a possible wake-up registration */
        if (!pg_budget_try_reserve(f->bytes, wake, j)) {
            j->waiting = f;
            j->parked = true;
            return;
        }
        pg_actor_unref(&j->actor);
        sw->next++;
        j->inflight++;
        frame_start(f);
    }
}

/* The tile grid of a sweep: the configured tile size, or a tiled source's
 * blocks (each then read whole, straight from the file), or over a striped
 * source (a block is a whole row or rows) full-width strips of about the
 * same number of cells, so that no block is read twice. */
static void choose_tiling(const pg_job *j, const pg_raster_info *ri, pg_tiling *t)
{
    int64_t tw = j->env.plan.tile_w, th = j->env.plan.tile_h;
    if (ri->block_w == ri->block_h && ri->block_w % 16 == 0 && ri->block_w >= 64 &&
        ri->block_w <= 1024 && ri->block_w < ri->width) {
        tw = th = ri->block_w;
    } else if (ri->block_w == ri->width && ri->block_h > 0 && ri->width > tw) {
        int64_t rows = (tw * th) / ri->width;
        rows = rows / ri->block_h * ri->block_h;
        th = rows < ri->block_h ? ri->block_h : rows;
        tw = ri->width;
    }
    pg_tiling_init(t, ri->width, ri->height, tw, th);
}

/* Outputs must not collide with each other or with this job's inputs. */
static int check_paths(pg_job *j, pg_error *err)
{
    const pg_plan *p = j->plan;
    for (int a = 0; a < p->nnodes; a++) {
        const pg_node *na = &p->nodes[a];
        if (strcmp(na->op->name, "io.save") != 0) continue;
        const pg_save_state *sa = na->state;
        for (int b = 0; b < p->nnodes; b++) {
            const pg_node *nb = &p->nodes[b];
            const char *other = NULL;
            if (b < a && strcmp(nb->op->name, "io.save") == 0)
                other = ((const pg_save_state *)nb->state)->path;
            else if (strcmp(nb->op->name, "io.load") == 0)
                other = ((const pg_load_state *)nb->state)->path;
            if (other && strcmp(other, sa->path) == 0) {
                pg_error_set(
                    err, PG_EPARAM, "param 'path': '%s' is also %s by node '%s'", sa->relpath,
                    b < a && nb->op->result == PG_RESULT_SINK ? "written" : "read", nb->name);
                pg_error_node(err, na->name);
                return PG_EPARAM;
            }
        }
    }
    return 0;
}

/* The raster a sweep of N is cut by: N itself, or for a value or a sink
 * its first raster argument. NULL if it has none. */
static const pg_raster_info *sweep_grid(const pg_node *n)
{
    if (n->op->result == PG_RESULT_RASTER || n->op->result == PG_RESULT_SINK) return &n->info;
    for (int a = 0; a < n->nargs; a++)
        if (n->args[a].ref && n->args[a].ref->op->result == PG_RESULT_RASTER)
            return &n->args[a].ref->info;
    return NULL;
}

static int add_sweep(pg_job *j, const pg_node *n, bool barrier, pg_error *err)
{
    sweep *sw = &j->sw[j->nsweeps];
    sw->root = n;
    sw->barrier = barrier;
    sw->kind = n->op->result == PG_RESULT_SINK    ? SW_SAVE
               : n->op->result == PG_RESULT_VALUE ? SW_VALUE
                                                  : SW_RAW;
    const pg_raster_info *ri = sweep_grid(n);
    if (ri == NULL) {
        pg_error_set(err, PG_ETYPE, "%s needs a raster argument", n->op->name);
        pg_error_node(err, n->name);
        return PG_ETYPE;
    }
    if (sw->kind == SW_RAW && j->has_window) {
        /* The answer is the window: tiles of the usual size from its corner. */
        pg_raster_info wi = *ri;
        wi.width = j->window.w;
        wi.height = j->window.h;
        wi.block_w = wi.block_h = 0;
        choose_tiling(j, &wi, &sw->tiling);
        sw->ox = j->window.x;
        sw->oy = j->window.y;
    } else {
        choose_tiling(j, ri, &sw->tiling);
    }
    int64_t nt = pg_tiling_count(&sw->tiling);
    if (sw->kind == SW_RAW) {
        size_t bytes = (size_t)sw->tiling.width * (size_t)sw->tiling.height * (size_t)ri->bands *
                       pg_celltype_size(ri->type);
        if ((int64_t)(j->raw_total + bytes) > j->env.max_result_bytes) {
            pg_error_set(err, PG_ETOOLARGE,
                         "the raster answer would be %zu bytes, over the limit of %lld "
                         "(limits.max_result_bytes); save it with io.save instead",
                         j->raw_total + bytes, (long long)j->env.max_result_bytes);
            pg_error_node(err, n->name);
            return PG_ETOOLARGE;
        }
        sw->raw_off = j->raw_total;
        sw->raw_len = bytes;
        j->raw_total += bytes;
    } else if (sw->kind == SW_VALUE) {
        sw->partials = calloc((size_t)nt, partial_bytes(n));
        if (sw->partials == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    }
    j->total += nt;
    return j->nsweeps++;
}

/* The run's "window": [x, y, width, height] of its one raster result, the
 * cells a client (or a coordinating node) wants of it. Cells outside the
 * raster are what its ops compute there (io.load: nodata). */
static int parse_window(pg_job *j, pg_error *err)
{
    json_t *w = json_object_get(j->req, "window");
    if (w == NULL) return 0;
    const pg_plan *p = j->plan;
    int64_t v[4];
    bool ok = json_is_array(w) && json_array_size(w) == 4;
    for (int i = 0; ok && i < 4; i++) {
        json_t *e = json_array_get(w, (size_t)i);
        ok = json_is_integer(e);
        v[i] = ok ? (int64_t)json_integer_value(e) : 0;
        ok = ok && v[i] >= -((int64_t)1 << 40) && v[i] <= ((int64_t)1 << 40) && (i < 2 || v[i] > 0);
    }
    if (!ok)
        return pg_error_set(err, PG_EBADREQ,
                            "'window' must be [x, y, width, height]: integers, width and height "
                            ">= 1");
    if (p->nresults != 1 || p->nodes[p->results[0]].op->result != PG_RESULT_RASTER)
        return pg_error_set(err, PG_EBADREQ, "'window' applies to a single raster result");
    const pg_raster_info *ri = &p->nodes[p->results[0]].info;
    int64_t cells;
    if (__builtin_mul_overflow(v[2], v[3], &cells) ||
        __builtin_mul_overflow(cells, (int64_t)ri->bands, &cells) ||
        (j->env.plan.max_cells > 0 && cells > j->env.plan.max_cells))
        return pg_error_set(err, PG_ECELLS, "'window' of %lld x %lld cells is over the cell limit",
                            (long long)v[2], (long long)v[3]);
    j->has_window = true;
    j->window = (pg_window){v[0], v[1], v[2], v[3]};
    return 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int node_index(const pg_job *j, const char *name)
{
    for (int i = 0; i < j->nnodes; i++)
        if (strcmp(j->nodes[i], name) == 0) return i;
    return -1;
}

/* The subgraph a call sends for node N (kept for the job's life). */
static int need_subgraph(pg_job *j, const pg_node *n, pg_error *err)
{
    if (j->subgraph[n->index] == NULL &&
        (j->subgraph[n->index] = pg_plan_subgraph(j->plan, n)) == NULL)
        return pg_error_set(err, PG_ENOMEM, "out of memory");
    return 0;
}

/* Cluster set-up: the node list, "remote" names, the subgraphs calls will
 * send, and a distributed run's tile assignment ("distribute": true or
 * {"partition", "nodes", "map"}). Without a cluster, "remote" and
 * "distribute" change nothing: the same graph runs here. */
static int setup_cluster(pg_job *j, pg_error *err)
{
    pg_plan *p = j->plan;
    json_t *d = json_object_get(j->req, "distribute");
    json_t *part = NULL, *dn = NULL, *map = NULL;
    if (d != NULL && !json_is_boolean(d)) {
        if (!json_is_object(d))
            return pg_error_set(err, PG_EBADREQ,
                                "'distribute' must be true, false or {\"partition\", \"nodes\", "
                                "\"map\"}");
        const char *k;
        json_t *v;
        json_object_foreach(d, k, v)
        {
            if (strcmp(k, "partition") && strcmp(k, "nodes") && strcmp(k, "map"))
                return pg_error_set(err, PG_EBADREQ,
                                    "unknown key 'distribute.%.60s' (partition, nodes, map)", k);
        }
        part = json_object_get(d, "partition");
        dn = json_object_get(d, "nodes");
        map = json_object_get(d, "map");
    }
    pg_partition_method method = PG_PART_HILBERT;
    if (d == NULL && j->env.distribute[0]) { /* this node's default (cluster.distribute) */
        d = json_true();
        if (pg_partition_parse(j->env.distribute, &method) != 0) method = PG_PART_HILBERT;
    }
    if (part && (!json_is_string(part) || pg_partition_parse(json_string_value(part), &method)))
        return pg_error_set(err, PG_EBADREQ,
                            "'distribute.partition' must be hilbert, round_robin, by_input or "
                            "explicit");
    if ((method == PG_PART_EXPLICIT) != (map != NULL))
        return pg_error_set(err, PG_EBADREQ, "'distribute.map' goes with partition 'explicit'");
    if (map && !json_is_array(map))
        return pg_error_set(err, PG_EBADREQ, "'distribute.map' must be a list of node names");
    if (dn && (!json_is_array(dn) || json_array_size(dn) == 0))
        return pg_error_set(err, PG_EBADREQ, "'distribute.nodes' must be a non-empty list");

    const char *self = pg_cluster_self();
    if (self == NULL) return 0;
    pg_peer_info peers[64];
    int np = pg_cluster_peers(NULL, peers, 64);
    j->nodes = calloc((size_t)np + 1, sizeof *j->nodes);
    j->subgraph = calloc((size_t)p->nnodes, sizeof *j->subgraph);
    if (j->nodes == NULL || j->subgraph == NULL)
        return pg_error_set(err, PG_ENOMEM, "out of memory");
    j->nodes[j->nnodes++] = strdup(self);
    for (int i = 0; i < np; i++)
        j->nodes[j->nnodes++] = strdup(peers[i].name);
    for (int i = 0; i < j->nnodes; i++)
        if (j->nodes[i] == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    qsort(j->nodes, (size_t)j->nnodes, sizeof *j->nodes, cmp_str);
    j->self = node_index(j, self);
    int workers = pg_runtime_workers();
    for (int i = 0; i < np; i++)
        workers += peers[i].workers > 0 ? peers[i].workers : 1;

    for (int i = 0; i < p->nnodes; i++) {
        const pg_node *n = &p->nodes[i];
        if (n->remote == NULL) continue;
        if (n->remote[0] && !pg_cluster_knows(n->remote)) {
            pg_error_set(err, PG_EPARAM,
                         "'remote': no node or pool named '%.80s' (cluster.nodes, cluster.pools)",
                         n->remote);
            pg_error_node(err, n->name);
            return PG_EPARAM;
        }
        if (n->op->result == PG_RESULT_RASTER && need_subgraph(j, n, err)) return err->code;
        if (n->op->result == PG_RESULT_SINK)
            for (int a = 0; a < n->nargs; a++)
                if (n->args[a].ref && need_subgraph(j, n->args[a].ref, err)) return err->code;
    }
    for (int i = 0; i < j->nsweeps; i++) {
        sweep *sw = &j->sw[i];
        if (sw->kind == SW_VALUE && sw->root->remote != NULL) {
            if (need_subgraph(j, sw->root, err)) return err->code;
            sw->remote_whole = true;
        }
    }
    j->max_inflight = 4 * workers; /* room for the peers' workers too */
    if (d == NULL || json_is_false(d)) return 0;

    /* Distribution: the nodes, in the order partitions number them. */
    int dnodes[64], nd = 0;
    if (dn) {
        size_t k;
        json_t *v;
        json_array_foreach(dn, k, v)
        {
            int x = json_is_string(v) ? node_index(j, json_string_value(v)) : -1;
            if (x < 0 || nd == 64)
                return pg_error_set(err, PG_EBADREQ,
                                    "'distribute.nodes[%zu]' is not a node of the cluster", k);
            dnodes[nd++] = x;
        }
    } else {
        for (int i = 0; i < j->nnodes && nd < 64; i++)
            dnodes[nd++] = i;
    }
    int64_t maxt = 0;
    for (int i = 0; i < j->nsweeps; i++)
        if (pg_tiling_count(&j->sw[i].tiling) > maxt) maxt = pg_tiling_count(&j->sw[i].tiling);
    int *mapped = NULL;
    if (map) {
        mapped = calloc((size_t)(maxt > 0 ? maxt : 1), sizeof *mapped);
        if (mapped == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
        for (int64_t k = 0; k < maxt; k++) {
            json_t *v = json_array_get(map, (size_t)k);
            int x = -1;
            for (int q = 0; v && q < nd; q++)
                if (json_is_string(v) && strcmp(j->nodes[dnodes[q]], json_string_value(v)) == 0)
                    x = q;
            if (v && x < 0) {
                free(mapped);
                return pg_error_set(err, PG_EBADREQ,
                                    "'distribute.map[%lld]' is not one of the distributed nodes",
                                    (long long)k);
            }
            /* Tiles past the map's end stay on this node (or the first). */
            int selfq = 0;
            for (int q = 0; q < nd; q++)
                if (dnodes[q] == j->self) selfq = q;
            mapped[k] = v ? x : selfq;
        }
    }
    for (int i = 0; i < j->nsweeps; i++) {
        sweep *sw = &j->sw[i];
        if (sw->remote_whole) continue;
        int64_t nt = pg_tiling_count(&sw->tiling);
        sw->assign = malloc(sizeof *sw->assign * (size_t)(nt > 0 ? nt : 1));
        if (sw->assign == NULL) {
            free(mapped);
            return pg_error_set(err, PG_ENOMEM, "out of memory");
        }
        pg_partition_assign(method, &sw->tiling, nd, mapped, sw->assign);
        for (int64_t k = 0; k < nt; k++)
            sw->assign[k] = dnodes[sw->assign[k]];
        /* What a distributed tile's call computes: the sweep's grid raster. */
        const pg_node *r = sw->root;
        if (sw->kind == SW_RAW && need_subgraph(j, r, err)) break;
        for (int a = 0; sw->kind != SW_RAW && a < r->nargs; a++)
            if (r->args[a].ref && r->args[a].ref->op->result == PG_RESULT_RASTER &&
                need_subgraph(j, r->args[a].ref, err))
                break;
        if (err->code) break;
    }
    free(mapped);
    if (err->code) return err->code;
    j->max_inflight = 4 * workers;
    pg_log_debug("job %llu: distributed over %d nodes (%s)", (unsigned long long)j->seq, nd,
                 pg_partition_name(method));
    return 0;
}

/* The fusion groups of the plan (src/fuse.h). Every sweep's root is
 * materialized: its tiles are what the sweep hands on. A raster arg of a
 * value op or of io.save is not fused either, as its user is no per-cell
 * map: it keeps a slot of its own (and may itself be a group's root). */
static int job_fuse(pg_job *j, pg_error *err)
{
    bool *mat = calloc((size_t)j->plan->nnodes + 1, sizeof *mat);
    if (mat == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    for (int i = 0; i < j->nsweeps; i++)
        mat[j->sw[i].root->index] = true;
    /* A remote node is computed by a call: it cannot hide inside a group. */
    for (int i = 0; j->nnodes > 0 && i < j->plan->nnodes; i++)
        if (j->plan->nodes[i].remote != NULL) mat[i] = true;
    j->fusion = pg_fusion_new(j->plan, mat);
    free(mat);
    if (j->fusion == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    pg_log_debug("job %llu: %d fusion groups", (unsigned long long)j->seq,
                 pg_fusion_ngroups(j->fusion));
    return 0;
}

/* The sweeps: first every value that another node takes as an argument
 * (in plan order, so a value that needs another comes after it), each
 * behind a barrier; then each result not computed yet, behind a barrier if
 * any value came before. */
static int job_setup(pg_job *j, pg_error *err)
{
    int rc = pg_plan_build(json_object_get(j->req, "graph"), &j->env.plan, &j->plan, err);
    if (rc) return rc;
    if ((rc = check_paths(j, err))) return rc;
    if ((rc = parse_window(j, err))) return rc;
    pg_plan *p = j->plan;
    j->sw = calloc((size_t)(p->nnodes + p->nresults), sizeof *j->sw);
    j->result_sweep = calloc((size_t)p->nresults, sizeof *j->result_sweep);
    if (j->sw == NULL || j->result_sweep == NULL)
        return pg_error_set(err, PG_ENOMEM, "out of memory");
    int *value_sweep = calloc((size_t)p->nnodes, sizeof *value_sweep);
    if (value_sweep == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    int nvalues = 0;
    for (int i = 0; i < p->nnodes && rc >= 0; i++) {
        const pg_node *n = &p->nodes[i];
        value_sweep[i] = -1;
        if (n->op->result != PG_RESULT_VALUE) continue;
        bool used = false;
        for (int m = i + 1; m < p->nnodes && !used; m++)
            for (int a = 0; a < p->nodes[m].nargs; a++)
                used = used || p->nodes[m].args[a].ref == n;
        if (!used) continue;
        rc = add_sweep(j, n, nvalues > 0, err);
        if (rc >= 0) value_sweep[i] = rc, nvalues++;
    }
    for (int r = 0; r < p->nresults && rc >= 0; r++) {
        int ni = p->results[r];
        if (value_sweep[ni] >= 0)
            j->result_sweep[r] = value_sweep[ni];
        else if ((rc = add_sweep(j, &p->nodes[ni], nvalues > 0, err)) >= 0)
            j->result_sweep[r] = rc;
    }
    free(value_sweep);
    if (rc < 0) return rc;
    if ((rc = setup_cluster(j, err))) return rc;
    if (j->env.fusion && (rc = job_fuse(j, err)) != 0) return rc;
    if (j->raw_total) {
        j->raw = malloc(j->raw_total);
        if (j->raw == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    }
    for (int i = 0; i < j->nsweeps; i++) {
        sweep *sw = &j->sw[i];
        if (sw->kind != SW_SAVE) continue;
        sw->writer = pg_writer_new(&j->actor, i, sw->root, &sw->tiling, j->seq);
        if (sw->writer == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
        pg_writer_open(sw->writer);
    }
    return job_cache_setup(j, err);
}

static void job_on_start(pg_job *j)
{
    pg_error err = {0};
    j->started_ns = pg_now_ns();
    if (job_setup(j, &err) != 0) {
        job_fail(j, &err);
        /* Writers may have been created before a later step failed. */
        j->state = J_RUNNING;
        job_maybe_finish(j);
        return;
    }
    j->state = J_RUNNING;
    json_t *ev = pg_proto_event(j->id, "accepted");
    json_object_set_new(ev, "tiles", json_integer((json_int_t)j->total));
    job_post(j, ev, NULL, 0, PG_OUTCOME_NONE);
    pg_log_debug("job %llu: %d nodes, %d sweeps, %lld tiles", (unsigned long long)j->seq,
                 j->plan->nnodes, j->nsweeps, (long long)j->total);
    job_launch(j);
    job_maybe_finish(j);
}

static void job_on_tile_done(pg_job *j, const pg_job_msg *jm)
{
    sweep *sw = &j->sw[jm->sweep];
    j->inflight--;
    j->done++;
    pg_budget_release(jm->bytes);
    if (jm->err.code) job_fail(j, &jm->err);
    if (++sw->done == pg_tiling_count(&sw->tiling) && atomic_load(&j->stop) == 0) {
        pg_error e = {0};
        if (sw->kind == SW_VALUE && sweep_finish_value(j, sw, &e) != 0) {
            job_fail(j, &e);
        } else {
            sw->complete = true;
            if (sw->kind == SW_RAW && sw->claim != NULL) sweep_fill_raw(j, sw);
        }
    }
    job_progress(j, false);
    job_launch(j);
    job_maybe_finish(j);
}

static void job_behave(pg_actor *self, pg_msg *m)
{
    pg_job *j = (pg_job *)self;
    pg_job_msg *jm = (pg_job_msg *)m;
    switch (m->type) {
    case PG_JOB_START:
        job_on_start(j);
        break;
    case PG_JOB_TILE_DONE:
        job_on_tile_done(j, jm);
        break;
    case PG__JOB_CACHE:
        job_on_cache(j, (cache_msg *)m);
        break;
    case PG_JOB_WAKE:
        j->parked = false;
        job_launch(j);
        job_maybe_finish(j);
        break;
    case PG_JOB_REMOTE:
        job_on_remote(j, jm);
        break;
    case PG_JOB_CANCEL:
        if (j->state == J_RUNNING || j->state == J_CLOSING) {
            int expected = 0;
            atomic_compare_exchange_strong(&j->stop, &expected, (int)jm->k);
            job_maybe_finish(j);
        }
        break;
    case PG_JOB_WRITER_CLOSED:
        if (jm->err.code) job_fail(j, &jm->err);
        if (--j->writers_pending == 0) {
            if (atomic_load(&j->stop) != 0)
                job_abort(j);
            else {
                j->state = J_COMMITTING;
                writers_send(j, pg_writer_commit);
            }
        }
        break;
    case PG_JOB_WRITER_ENDED:
        if (jm->err.code) job_fail(j, &jm->err);
        if (--j->writers_pending == 0) {
            if (j->state == J_COMMITTING && j->err.code == 0)
                job_end_success(j);
            else
                job_end_error(j);
        }
        break;
    }
    free(m);
}

static void job_free(pg_actor *a)
{
    pg_job *j = (pg_job *)a;
    if (j->waiting) frame_free(j->waiting);
    for (int i = 0; j->sw && i < j->nsweeps; i++) {
        if (j->sw[i].claim) pg_cache_abandon(j->cache, &j->sw[i].claim);
        pg_nodekey_unref(&j->sw[i].key);
        pg_writer_release(&j->sw[i].writer);
        sweep_free_partials(&j->sw[i]);
        json_decref(j->sw[i].value);
    }
    for (int i = 0; j->sw && i < j->nsweeps; i++)
        free(j->sw[i].assign);
    for (int i = 0; j->subgraph && i < j->plan->nnodes; i++)
        json_decref(j->subgraph[i]);
    free(j->subgraph);
    for (int i = 0; i < j->nnodes; i++)
        free(j->nodes[i]);
    free(j->nodes);
    uv_mutex_destroy(&j->calls_lock);
    free(j->sw);
    free(j->result_sweep);
    free(j->raw);
    pg_fusion_destroy(&j->fusion);
    pg_plan_destroy(&j->plan);
    json_decref(j->req);
    free(j);
}

pg_job *pg_job_new(uint64_t session_id, json_t *req, const pg_job_env *env)
{
    pg_job *j = calloc(1, sizeof *j);
    if (j == NULL) return NULL;
    pg_actor_init(&j->actor, job_behave, job_free);
    j->seq = atomic_fetch_add(&job_seq, 1) + 1;
    j->session_id = session_id;
    j->req = json_incref(req);
    j->id = json_object_get(req, "id");
    j->env = *env;
    json_t *pr = json_object_get(req, "progress");
    j->want_progress = pr == NULL || json_is_true(pr);
    int workers = pg_runtime_workers();
    j->max_inflight = 4 * (workers > 0 ? workers : 1);
    atomic_init(&j->stop, 0);
    j->remote_timeout_ms = env->remote_timeout_ms > 0 ? env->remote_timeout_ms : 60000;
    if (uv_mutex_init(&j->calls_lock) != 0) {
        free(j);
        return NULL;
    }
    return j;
}

void pg_job_send(pg_actor *job, int type, int sweep, int64_t k, const pg_error *err, size_t bytes)
{
    pg_job_msg *m = calloc(1, sizeof *m);
    if (m == NULL) {
        /* A lost message would hang the job; there is no sane way on. */
        pg_log_error("out of memory sending a message to a job");
        abort();
    }
    m->base.type = type;
    m->sweep = sweep;
    m->k = k;
    m->bytes = bytes;
    if (err) m->err = *err;
    pg_actor_send(job, &m->base);
}

void pg_job_start(pg_job *j)
{
    pg_job_send(&j->actor, PG_JOB_START, -1, 0, NULL, 0);
}

void pg_job_cancel(pg_job *j, int code)
{
    pg_job_send(&j->actor, PG_JOB_CANCEL, -1, code, NULL, 0);
}

void pg_job_unref(pg_job **jp)
{
    pg_job *j = *jp;
    *jp = NULL;
    if (j == NULL) return;
    /* A wake-up registration holds a reference; a job that is gone from its
     * session must not be woken any more. */
    if (pg_budget_forget(j)) pg_actor_unref(&j->actor);
    pg_actor_unref(&j->actor);
}
