/* The job actor: one `run` request, from graph to answer (see job.h). */
#include "actors/job.h"

#include "actors/io.h"
#include "actors/session.h"
#include "bufpool.h"
#include "cache.h"
#include "fuse.h"
#include "log.h"
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
    int64_t next; /* next tile index to start */
    int64_t done; /* tiles finished */
    bool barrier; /* starts only once every earlier sweep is complete */
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

static void slot_run(pg_task *t);

static int find_or_add(slot **slots, int *n, int *cap, const pg_node *node, pg_window w)
{
    for (int i = 0; i < *n; i++) {
        slot *s = &(*slots)[i];
        if (s->node == node && s->win.x == w.x && s->win.y == w.y && s->win.w == w.w &&
            s->win.h == w.h)
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
    if (find_or_add(&slots, &n, &cap, sw->root, w) < 0) goto fail;
    /* Pass 1: discover slots breadth first; count edges. */
    int nedges = 0;
    for (int s = 0; s < n; s++) {
        slots[s].group = pg_fusion_group(j->fusion, slots[s].node->index);
        slots[s].nkids = slots[s].group ? pg_fgroup_nleaves(slots[s].group) : slots[s].node->nargs;
        const int nkids = slots[s].nkids;
        for (int i = 0; i < nkids; i++) {
            pg_window cw;
            const pg_node *c = slot_kid(&slots[s], i, &cw);
            if (c == NULL) continue; /* numbers, values */
            int ci = find_or_add(&slots, &n, &cap, c, cw);
            if (ci < 0) goto fail;
            slots[ci].nparents++;
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
        sl->children_off = off;
        off += sl->nkids;
        int pending = 0;
        for (int i = 0; i < sl->nkids; i++) {
            int ci = -1;
            pg_window cw;
            const pg_node *kid = slot_kid(sl, i, &cw);
            if (kid != NULL) {
                ci = find_or_add(&slots, &n, &cap, kid, cw); /* exists */
                slot *c = &slots[ci];
                f->edges[c->parents_off + c->nparents++] = s;
                pending++;
            }
            f->edges[sl->children_off + i] = ci;
        }
        sl->task.run = slot_run;
        sl->f = f;
        atomic_init(&sl->pending, pending);
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
            const pg_raster_info *ri = &root->node->info;
            for (int b = 0; b < t->bands; b++)
                for (int64_t y = 0; y < t->win.h; y++) {
                    size_t dst = (((size_t)b * (size_t)ri->height + (size_t)(t->win.y + y)) *
                                      (size_t)ri->width +
                                  (size_t)t->win.x) *
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
    if (live && node->op->result == PG_RESULT_RASTER) {
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

static void frame_start(frame *f)
{
    /* Collect the leaves before scheduling any: once one runs, counters of
     * other slots change under us. */
    int stack_leaves[32];
    int *leaves = f->nslots <= 32 ? stack_leaves : malloc(sizeof(int) * (size_t)f->nslots);
    int nl = 0;
    if (leaves == NULL) { /* degrade: schedule one by one is unsafe; fail */
        pg_error e;
        pg_error_set(&e, PG_ENOMEM, "out of memory");
        frame_fail(f, &e, f->slots[0].node);
        pg_error copy = f->err;
        frame_report(f, &copy);
        return;
    }
    for (int s = 0; s < f->nslots; s++)
        if (atomic_load(&f->slots[s].pending) == 0) leaves[nl++] = s;
    for (int i = 0; i < nl; i++)
        pg_schedule(&f->slots[leaves[i]].task);
    if (leaves != stack_leaves) free(leaves);
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

static json_t *raster_header(const pg_raster_info *ri)
{
    json_t *gt = json_null();
    if (ri->has_geotransform) {
        gt = json_array();
        for (int i = 0; i < 6; i++)
            json_array_append_new(gt, json_real(ri->geotransform[i]));
    }
    json_t *nd = json_null();
    if (ri->has_nodata) nd = isnan(ri->nodata) ? json_string("nan") : json_real(ri->nodata);
    return json_pack("{sIsIsisssoso s:s}", "width", (json_int_t)ri->width, "height",
                     (json_int_t)ri->height, "bands", ri->bands, "type", pg_celltype_name(ri->type),
                     "nodata", nd, "geotransform", gt, "crs", ri->crs_wkt ? ri->crs_wkt : "");
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
            item = json_pack("{sosIsI}", "raster", raster_header(&sw->root->info), "offset",
                             (json_int_t)sw->raw_off, "length", (json_int_t)sw->raw_len);
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
        json_t *h = raster_header(&sw->root->info);
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
    json_t *h = raster_header(&sw->root->info);
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
        if (sw->kind == SW_SAVE || (sw->kind == SW_RAW && (int64_t)sw->raw_len > st.budget_bytes))
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
    choose_tiling(j, ri, &sw->tiling);
    int64_t nt = pg_tiling_count(&sw->tiling);
    if (sw->kind == SW_RAW) {
        size_t bytes =
            (size_t)ri->width * (size_t)ri->height * (size_t)ri->bands * pg_celltype_size(ri->type);
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
