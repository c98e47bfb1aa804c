/* Fusion: chains of per-cell ops evaluated as one pass over a tile (see
 * fuse.h). */
#include "fuse.h"

#include "util.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Where one arg of a step comes from. */
enum { PG__SRC_NONE, PG__SRC_MEMBER, PG__SRC_LEAF };

typedef struct pg__src {
    int kind;
    int idx; /* MEMBER: the step that computes it; LEAF: the leaf */
} pg__src;

/* One compute() call per strip: the members in plan order, then the root. */
typedef struct pg__step {
    const pg_node *node;
    int buf;      /* members: the scratch strip it writes; the root: -1 */
    int srcs_off; /* node->nargs entries in srcs */
} pg__step;

struct pg_fgroup {
    const pg_fusion *fu;
    const pg_node *root;
    int nmembers;
    const pg_node **members;
    int nleaves;
    const pg_node **leaves;
    int nsteps; /* nmembers + 1 */
    pg__step *steps;
    pg__src *srcs;
    int nbufs;       /* scratch strips live at once (members share them) */
    size_t cellsize; /* the widest member cell type, bytes */
    int maxargs;
};

struct pg_fusion {
    const pg_plan *plan;
    bool *fused;
    pg_fgroup **groups; /* per node: the group it roots, or NULL */
    int ngroups;
    size_t strip_cells;
};

/* ---- building ---- */

/* An op/node that may be a member or a root: a per-cell map over one-band
 * rasters. */
static bool pg__mappable(const pg_node *n)
{
    const pg_op_def *op = n->op;
    return op->elementwise && op->result == PG_RESULT_RASTER && op->need == NULL &&
           op->compute != NULL && n->info.bands == 1;
}

static void pg__group_free(pg_fgroup *g)
{
    if (g == NULL) return;
    free(g->members);
    free(g->leaves);
    free(g->steps);
    free(g->srcs);
    free(g);
}

/* The group rooted at plan node R. MARK and STACK are plan->nnodes ints of
 * scratch (MARK all zero on entry and on return). */
static pg_fgroup *pg__group_new(const pg_fusion *fu, int r, int *mark, int *stack)
{
    const pg_plan *p = fu->plan;
    pg_fgroup *g = calloc(1, sizeof *g);
    if (g == NULL) return NULL;
    g->fu = fu;
    g->root = &p->nodes[r];

    /* Members: fused nodes reachable through args. */
    int sp = 0, nm = 0;
    stack[sp++] = r;
    while (sp > 0) {
        const pg_node *n = &p->nodes[stack[--sp]];
        for (int a = 0; a < n->nargs; a++) {
            int c = n->args[a].node;
            if (c < 0 || !fu->fused[c] || mark[c]) continue;
            mark[c] = 1;
            nm++;
            stack[sp++] = c;
        }
    }
    g->nmembers = nm;
    g->nsteps = nm + 1;
    g->members = malloc(sizeof *g->members * (size_t)(nm ? nm : 1));
    g->steps = calloc((size_t)g->nsteps, sizeof *g->steps);
    int nsrcs = 0;
    for (int i = 0; i < p->nnodes; i++)
        if (mark[i] || i == r) nsrcs += p->nodes[i].nargs;
    g->srcs = calloc((size_t)(nsrcs ? nsrcs : 1), sizeof *g->srcs);
    g->leaves = malloc(sizeof *g->leaves * (size_t)(nsrcs ? nsrcs : 1));
    /* step index of each member, by node (reusing MARK: step + 1) */
    if (g->members == NULL || g->steps == NULL || g->srcs == NULL || g->leaves == NULL) {
        for (int i = 0; i < p->nnodes; i++)
            mark[i] = 0;
        pg__group_free(g);
        return NULL;
    }
    int s = 0;
    for (int i = 0; i < p->nnodes; i++) {
        if (!mark[i]) continue;
        g->members[s] = &p->nodes[i];
        g->steps[s].node = &p->nodes[i];
        mark[i] = s + 1;
        s++;
    }
    g->steps[nm].node = g->root;
    g->steps[nm].buf = -1;

    /* Sources, leaves, and the last step reading each member. */
    int *last = stack; /* per step; STACK is free again */
    for (int i = 0; i < g->nsteps; i++)
        last[i] = -1;
    int off = 0;
    g->cellsize = 1;
    for (int st = 0; st < g->nsteps; st++) {
        const pg_node *n = g->steps[st].node;
        g->steps[st].srcs_off = off;
        if (n->nargs > g->maxargs) g->maxargs = n->nargs;
        if (st < nm && pg_celltype_size(n->info.type) > g->cellsize)
            g->cellsize = pg_celltype_size(n->info.type);
        for (int a = 0; a < n->nargs; a++, off++) {
            pg__src *src = &g->srcs[off];
            const pg_node *c = n->args[a].ref;
            if (c == NULL || c->op->result != PG_RESULT_RASTER) {
                src->kind = PG__SRC_NONE;
            } else if (fu->fused[c->index]) {
                src->kind = PG__SRC_MEMBER;
                src->idx = mark[c->index] - 1;
                last[src->idx] = st;
            } else {
                int l = 0;
                while (l < g->nleaves && g->leaves[l] != c)
                    l++;
                if (l == g->nleaves) g->leaves[g->nleaves++] = c;
                src->kind = PG__SRC_LEAF;
                src->idx = l;
            }
        }
    }
    /* Scratch strips: a member takes a free one; a strip is free again
     * after the last step that reads it (not during it: compute()'s out
     * must not alias its args). */
    int *owner = mark; /* per buffer: the member holding it, or -1 */
    int nbufs = 0;
    for (int st = 0; st < nm; st++) {
        int b = -1;
        for (int k = 0; k < nbufs && b < 0; k++)
            if (owner[k] < 0 || last[owner[k]] < st) b = k;
        if (b < 0) b = nbufs++;
        owner[b] = st;
        g->steps[st].buf = b;
    }
    g->nbufs = nbufs;
    for (int i = 0; i < p->nnodes; i++)
        mark[i] = 0;
    return g;
}

pg_fusion *pg_fusion_new(const pg_plan *plan, const bool *materialize)
{
    const int nn = plan->nnodes;
    pg_fusion *fu = calloc(1, sizeof *fu);
    if (fu == NULL) return NULL;
    fu->plan = plan;
    fu->strip_cells = PG_FUSE_STRIP_CELLS;
    fu->fused = calloc((size_t)(nn ? nn : 1), sizeof *fu->fused);
    fu->groups = calloc((size_t)(nn ? nn : 1), sizeof *fu->groups);
    int *nusers = calloc((size_t)(nn ? nn : 1), sizeof *nusers);
    bool *bad_user = calloc((size_t)(nn ? nn : 1), sizeof *bad_user);
    int *mark = calloc((size_t)(nn ? nn : 1), sizeof *mark);
    int *stack = calloc((size_t)(nn ? nn : 1) + 1, sizeof *stack);
    bool ok = fu->fused && fu->groups && nusers && bad_user && mark && stack;
    for (int u = 0; ok && u < nn; u++) {
        const pg_node *un = &plan->nodes[u];
        bool map = pg__mappable(un);
        for (int a = 0; a < un->nargs; a++) {
            int c = un->args[a].node;
            if (c < 0) continue;
            nusers[c]++;
            if (!map) bad_user[c] = true;
        }
    }
    for (int x = 0; ok && x < nn; x++)
        fu->fused[x] = pg__mappable(&plan->nodes[x]) && !(materialize && materialize[x]) &&
                       nusers[x] > 0 && !bad_user[x];
    for (int r = 0; ok && r < nn; r++) {
        const pg_node *rn = &plan->nodes[r];
        if (fu->fused[r] || !pg__mappable(rn)) continue;
        bool any = false;
        for (int a = 0; a < rn->nargs; a++)
            any = any || (rn->args[a].node >= 0 && fu->fused[rn->args[a].node]);
        if (!any) continue;
        fu->groups[r] = pg__group_new(fu, r, mark, stack);
        if (fu->groups[r] == NULL)
            ok = false;
        else
            fu->ngroups++;
    }
    free(nusers);
    free(bad_user);
    free(mark);
    free(stack);
    if (!ok) pg_fusion_destroy(&fu);
    return fu;
}

void pg_fusion_destroy(pg_fusion **fup)
{
    pg_fusion *fu = *fup;
    *fup = NULL;
    if (fu == NULL) return;
    for (int i = 0; fu->groups && i < fu->plan->nnodes; i++)
        pg__group_free(fu->groups[i]);
    free(fu->groups);
    free(fu->fused);
    free(fu);
}

void pg_fusion_set_strip_cells(pg_fusion *fu, size_t cells)
{
    fu->strip_cells = cells ? cells : 1;
}

bool pg_fusion_is_fused(const pg_fusion *fu, int i)
{
    return fu != NULL && i >= 0 && i < fu->plan->nnodes && fu->fused[i];
}

const pg_fgroup *pg_fusion_group(const pg_fusion *fu, int i)
{
    if (fu == NULL || i < 0 || i >= fu->plan->nnodes) return NULL;
    return fu->groups[i];
}

int pg_fusion_ngroups(const pg_fusion *fu)
{
    return fu ? fu->ngroups : 0;
}

const pg_node *pg_fgroup_root(const pg_fgroup *g)
{
    return g->root;
}

int pg_fgroup_nmembers(const pg_fgroup *g)
{
    return g->nmembers;
}

const pg_node *pg_fgroup_member(const pg_fgroup *g, int i)
{
    return i >= 0 && i < g->nmembers ? g->members[i] : NULL;
}

int pg_fgroup_nleaves(const pg_fgroup *g)
{
    return g->nleaves;
}

const pg_node *pg_fgroup_leaf(const pg_fgroup *g, int i)
{
    return i >= 0 && i < g->nleaves ? g->leaves[i] : NULL;
}

/* ---- computing ---- */

/* The per-thread scratch: strip buffers, tile views and arg pointers of
 * the call in progress. Grown when a group needs more, kept for the next
 * call (so that it stays warm: first-touched pages are slow here), freed
 * when the thread ends. */
static pthread_key_t pg__scratch_key;
static pthread_once_t pg__scratch_once = PTHREAD_ONCE_INIT;
static _Thread_local void *pg__scratch;
static _Thread_local size_t pg__scratch_cap;

static void pg__scratch_key_init(void)
{
    (void)pthread_key_create(&pg__scratch_key, free);
}

static void *pg__scratch_get(size_t bytes)
{
    if (bytes <= pg__scratch_cap) return pg__scratch;
    pthread_once(&pg__scratch_once, pg__scratch_key_init);
    size_t cap = (bytes + 4095) / 4096 * 4096;
    void *p = aligned_alloc(64, cap);
    if (p == NULL) return NULL;
    free(pg__scratch);
    pg__scratch = p;
    pg__scratch_cap = cap;
    (void)pthread_setspecific(pg__scratch_key, p);
    return p;
}

static size_t pg__align64(size_t n)
{
    return (n + 63) / 64 * 64;
}

/* A one-band tile view of ROWS rows of WIN starting at row Y0, over DATA. */
static void pg__view(pg_tile *v, pg_celltype type, const pg_window *win, int64_t y0, int64_t rows,
                     void *data)
{
    memset(v, 0, sizeof *v);
    v->type = type;
    v->bands = 1;
    v->win.x = win->x;
    v->win.y = win->y + y0;
    v->win.w = win->w;
    v->win.h = rows;
    v->nbytes = (size_t)win->w * (size_t)rows * pg_celltype_size(type);
    v->data = data;
    v->pool_class_ = -1;
}

int pg_fgroup_compute(const pg_fgroup *g, pg_tile *out, pg_tile *const *leaf_tiles, pg_error *err)
{
    const pg_node *root = g->root;
    if (out == NULL || out->bands != 1 || out->type != root->info.type || out->win.w < 0 ||
        out->win.h < 0) {
        pg_error_set(err, PG_EINTERNAL, "fused %s: output tile of the wrong type", root->op->name);
        pg_error_node(err, root->name);
        return err->code;
    }
    const pg_window win = out->win;
    for (int l = 0; l < g->nleaves; l++) {
        const pg_tile *t = leaf_tiles[l];
        if (t == NULL || t->bands != 1 || t->type != g->leaves[l]->info.type || t->win.w != win.w ||
            t->win.h != win.h) {
            pg_error_set(err, PG_EINTERNAL, "fused %s: the tile of '%s' does not match the output",
                         root->op->name, g->leaves[l]->name);
            pg_error_node(err, root->name);
            return err->code;
        }
    }
    if (win.w == 0 || win.h == 0) return 0;

    /* Rows per strip, and the scratch layout: strips, then views, then
     * the arg pointers of one call. */
    int64_t sh = (int64_t)(g->fu->strip_cells / (size_t)win.w);
    if (sh < 1) sh = 1;
    if (sh > win.h) sh = win.h;
    const size_t strip = pg__align64((size_t)sh * (size_t)win.w * g->cellsize);
    const size_t bufs = strip * (size_t)g->nbufs;
    const size_t views = pg__align64(sizeof(pg_tile) * (size_t)(g->nsteps + g->nleaves));
    const size_t ptrs = sizeof(pg_tile *) * (size_t)(g->maxargs ? g->maxargs : 1);
    unsigned char *mem = pg__scratch_get(bufs + views + ptrs);
    if (mem == NULL) {
        pg_error_set(err, PG_ENOMEM, "out of memory for the scratch strips of a fused %s",
                     root->op->name);
        pg_error_node(err, root->name);
        return err->code;
    }
    pg_tile *sv = (pg_tile *)(void *)(mem + bufs); /* per step: its output view */
    pg_tile *lv = sv + g->nsteps;                  /* per leaf */
    pg_tile **in = (pg_tile **)(void *)(mem + bufs + views);

    for (int64_t y0 = 0; y0 < win.h; y0 += sh) {
        const int64_t rows = win.h - y0 < sh ? win.h - y0 : sh;
        for (int l = 0; l < g->nleaves; l++) {
            const pg_tile *t = leaf_tiles[l];
            pg__view(&lv[l], t->type, &win, y0, rows,
                     (char *)t->data + (size_t)y0 * (size_t)win.w * pg_celltype_size(t->type));
        }
        for (int st = 0; st < g->nsteps; st++) {
            const pg__step *step = &g->steps[st];
            const pg_node *n = step->node;
            if (step->buf >= 0)
                pg__view(&sv[st], n->info.type, &win, y0, rows, mem + strip * (size_t)step->buf);
            else
                pg__view(&sv[st], out->type, &win, y0, rows,
                         (char *)out->data +
                             (size_t)y0 * (size_t)win.w * pg_celltype_size(out->type));
            const pg__src *src = g->srcs + step->srcs_off;
            for (int a = 0; a < n->nargs; a++)
                in[a] = src[a].kind == PG__SRC_MEMBER ? &sv[src[a].idx]
                        : src[a].kind == PG__SRC_LEAF ? &lv[src[a].idx]
                                                      : NULL;
            int rc = n->op->compute(n, &sv[st], in, err);
            if (rc != 0) {
                if (err->code == 0) pg_error_set(err, PG_EINTERNAL, "%s failed", n->op->name);
                if (err->node[0] == '\0') pg_error_node(err, n->name);
                return err->code;
            }
        }
    }
    return 0;
}
