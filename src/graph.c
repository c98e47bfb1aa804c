/* Graphs: parse, validate and plan a request's "graph" (see graph.h). */
#include "graph.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- parameter accessors (ops read their parameters through these) ---- */

const char *pg_param_str(const pg_node *n, const char *key)
{
    json_t *v = json_object_get(n->params, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

double pg_param_num(const pg_node *n, const char *key)
{
    json_t *v = json_object_get(n->params, key);
    return json_is_number(v) ? json_number_value(v) : NAN;
}

int64_t pg_param_int(const pg_node *n, const char *key)
{
    json_t *v = json_object_get(n->params, key);
    if (json_is_integer(v)) return (int64_t)json_integer_value(v);
    if (json_is_real(v)) return (int64_t)json_real_value(v);
    return 0;
}

int pg_param_bool(const pg_node *n, const char *key)
{
    return json_is_true(json_object_get(n->params, key));
}

int pg_param_has(const pg_node *n, const char *key)
{
    json_t *v = json_object_get(n->params, key);
    return v != NULL && !json_is_null(v);
}

/* ---- planning ----
 *
 * The graph is first flattened into "pnodes" (named nodes in the order of
 * "nodes", then inline nodes as they are found), every check runs over
 * that array, and only then are the nodes reachable from the results
 * copied into the plan. All walks use explicit stacks: graphs come from
 * clients, and a chain of 100000 refs must not exhaust the C stack.
 */

enum { PG__ARG_NUMBER, PG__ARG_REF, PG__ARG_INLINE, PG__ARG_BAD };

typedef struct pg__parg {
    int kind;   /* PG__ARG_* */
    int target; /* REF, INLINE: the pnode (REF: resolved in check 3) */
    double number;
    json_t *json; /* the arg as given (borrowed) */
} pg__parg;

typedef struct pg__pnode {
    const char *key;  /* named nodes: the key in "nodes" (borrowed); NULL for inline */
    json_t *obj;      /* the node's JSON (borrowed) */
    int parent, argi; /* inline nodes: the node holding it and at which arg */
    const pg_op_def *op;
    int nargs;
    pg__parg *args;
    json_t *params;     /* built by check 5; moved into the plan */
    int64_t height;     /* nodes on the longest chain from here to a leaf */
    bool referenced;    /* some {"ref"} names it */
    unsigned char mark; /* DFS colour: 0 new, 1 on the stack, 2 done */
    int slot;           /* index in plan->nodes, -1 if not planned */
} pg__pnode;

typedef struct pg__ctx {
    json_t *graph;
    const pg_plan_env *env;
    const pg_op_lookup *lookup;
    pg_error *err;
    pg__pnode *pn;
    int npn, cap;
    int nnamed;  /* pn[0 .. nnamed) are the named nodes */
    int *byname; /* named pnodes sorted by key, for refs */
} pg__ctx;

typedef struct pg__frame {
    int node, next; /* DFS: the node and its next arg to visit */
} pg__frame;

/* Keys a node may carry besides its op's params. "remote" is reserved for
 * the cluster (placement), "id" and "comment" are for clients' own use. */
static const char *const pg__node_keys[] = {"op", "args", "remote", "id", "comment"};

/* Node I's name, newly allocated: its key, or "parent.args[i]" for inline
 * nodes. Names are built when needed rather than stored: storing them
 * would cost memory quadratic in the inline nesting before the depth limit
 * has been checked. NULL if out of memory. */
static char *pg__name_dup(const pg__ctx *c, int i)
{
    int depth = 0, root = i;
    while (c->pn[root].parent >= 0) {
        root = c->pn[root].parent;
        depth++;
    }
    size_t len = strlen(c->pn[root].key);
    int *chain = NULL;
    if (depth > 0) {
        chain = malloc((size_t)depth * sizeof *chain);
        if (chain == NULL) return NULL;
        int k = depth;
        for (int j = i; c->pn[j].parent >= 0; j = c->pn[j].parent) {
            chain[--k] = j;
            len += (size_t)snprintf(NULL, 0, ".args[%d]", c->pn[j].argi);
        }
    }
    char *name = malloc(len + 1);
    if (name != NULL) {
        size_t at = strlen(c->pn[root].key);
        memcpy(name, c->pn[root].key, at + 1);
        for (int k = 0; k < depth; k++)
            at += (size_t)snprintf(name + at, len + 1 - at, ".args[%d]", c->pn[chain[k]].argi);
    }
    free(chain);
    return name;
}

/* Fills the error with CODE, a message and node I's name (none if I < 0);
 * returns CODE. */
static int pg__fail(pg__ctx *c, int i, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int pg__fail(pg__ctx *c, int i, int code, const char *fmt, ...)
{
    if (c->err == NULL) return code;
    c->err->code = code;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err->message, sizeof c->err->message, fmt, ap);
    va_end(ap);
    c->err->node[0] = '\0';
    if (i >= 0) {
        char *name = pg__name_dup(c, i);
        if (name != NULL) {
            pg_error_node(c->err, name);
            free(name);
        } else {
            /* Out of memory while naming: the outermost node's key still
             * says where to look. */
            while (c->pn[i].parent >= 0)
                i = c->pn[i].parent;
            pg_error_node(c->err, c->pn[i].key);
        }
    }
    return code;
}

/* Optimal-string-alignment distance between A and B (edits, deletions,
 * insertions, adjacent swaps), or LIMIT + 1 once it is known to exceed
 * LIMIT. Names are short; anything long gets no suggestion, so a hostile
 * key cannot make this quadratic in a megabyte. */
static int pg__edit_distance(const char *a, const char *b, int limit)
{
    enum { MAXLEN = 64 };
    size_t la = strlen(a), lb = strlen(b);
    if (la > MAXLEN || lb > MAXLEN) return limit + 1;
    if ((la > lb ? la - lb : lb - la) > (size_t)limit) return limit + 1;
    int rows[3][MAXLEN + 1];
    int *pp = rows[0], *p = rows[1], *cur = rows[2];
    for (size_t j = 0; j <= lb; j++)
        p[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = (int)i;
        int best = cur[0];
        for (size_t j = 1; j <= lb; j++) {
            int cost = a[i - 1] == b[j - 1] ? 0 : 1;
            int v = p[j] + 1;
            if (cur[j - 1] + 1 < v) v = cur[j - 1] + 1;
            if (p[j - 1] + cost < v) v = p[j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && pp[j - 2] + 1 < v)
                v = pp[j - 2] + 1;
            cur[j] = v;
            if (v < best) best = v;
        }
        if (best > limit) return limit + 1;
        int *t = pp;
        pp = p;
        p = cur;
        cur = t;
    }
    return p[lb] <= limit ? p[lb] : limit + 1;
}

/* The closest op name to NAME within 2 edits (the first on ties), or NULL. */
static const char *pg__suggest_op(const pg__ctx *c, const char *name)
{
    if (c->lookup->count == NULL || c->lookup->at == NULL) return NULL;
    const char *best = NULL;
    int bestd = 3;
    size_t n = c->lookup->count();
    for (size_t i = 0; i < n; i++) {
        const pg_op_def *op = c->lookup->at(i);
        if (op == NULL || op->name == NULL) continue;
        int d = pg__edit_distance(name, op->name, 2);
        if (d < bestd) {
            bestd = d;
            best = op->name;
        }
    }
    return best;
}

static const char *pg__json_kind(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "a value";
}

static const char *pg__result_kind_name(pg_result_kind r)
{
    return r == PG_RESULT_RASTER ? "a raster" : r == PG_RESULT_VALUE ? "a value" : "a path (sink)";
}

static int pg__push_pnode(pg__ctx *c, const char *key, json_t *obj, int parent, int argi)
{
    if (c->npn == c->cap) {
        /* INT_MAX nodes would break int indices; no real limit is near. */
        if (c->cap > INT_MAX / 4) return pg__fail(c, -1, PG_ENODES, "graph has too many nodes");
        int cap = c->cap ? c->cap * 2 : 16;
        pg__pnode *pn = realloc(c->pn, (size_t)cap * sizeof *pn);
        if (pn == NULL) return pg__fail(c, -1, PG_ENOMEM, "out of memory reading the graph");
        c->pn = pn;
        c->cap = cap;
    }
    pg__pnode *p = &c->pn[c->npn++];
    memset(p, 0, sizeof *p);
    p->key = key;
    p->obj = obj;
    p->parent = parent;
    p->argi = argi;
    p->slot = -1;
    return 0;
}

/* Check 1: shape and ops, over the named nodes and, breadth first, every
 * inline node they hold. Also classifies each node's args (reporting bad
 * ones is check 3's job, so that the order of checks holds). */
static int pg__collect(pg__ctx *c)
{
    if (!json_is_object(c->graph))
        return pg__fail(c, -1, PG_EBADREQ, "graph must be a JSON object, got %s",
                        pg__json_kind(c->graph));
    const char *gk;
    json_t *gv;
    json_object_foreach(c->graph, gk, gv)
    {
        if (strcmp(gk, "nodes") != 0 && strcmp(gk, "result") != 0 && strcmp(gk, "comment") != 0)
            return pg__fail(c, -1, PG_EBADREQ,
                            "graph: unknown key '%.100s' (a graph has 'nodes', 'result' and "
                            "optionally 'comment')",
                            gk);
    }
    json_t *nodes = json_object_get(c->graph, "nodes");
    if (nodes == NULL)
        return pg__fail(c, -1, PG_EBADREQ, "graph: 'nodes' is required (an object of named nodes)");
    if (!json_is_object(nodes))
        return pg__fail(c, -1, PG_EBADREQ, "graph: 'nodes' must be an object, got %s",
                        pg__json_kind(nodes));
    if (json_object_size(nodes) == 0) return pg__fail(c, -1, PG_EBADREQ, "graph: 'nodes' is empty");

    const char *key;
    json_t *v;
    json_object_foreach(nodes, key, v)
    {
        int rc = pg__push_pnode(c, key, v, -1, -1);
        if (rc < 0) return rc;
    }
    c->nnamed = c->npn;

    /* The array grows while it is walked: index it, never keep pointers. */
    for (int i = 0; i < c->npn; i++) {
        json_t *obj = c->pn[i].obj;
        if (c->pn[i].parent < 0 && c->pn[i].key[0] == '\0')
            return pg__fail(c, -1, PG_EBADREQ, "graph: a node name must not be empty");
        if (!json_is_object(obj))
            return pg__fail(c, i, PG_EBADREQ, "a node must be an object, got %s",
                            pg__json_kind(obj));
        json_t *op = json_object_get(obj, "op");
        if (op == NULL)
            return pg__fail(c, i, PG_EBADREQ, "'op' is required (the name of an operation)");
        if (!json_is_string(op))
            return pg__fail(c, i, PG_EBADREQ, "'op' must be a string, got %s", pg__json_kind(op));
        const char *opname = json_string_value(op);
        c->pn[i].op = c->lookup->find(opname);
        if (c->pn[i].op == NULL) {
            const char *s = pg__suggest_op(c, opname);
            if (s != NULL)
                return pg__fail(c, i, PG_EUNKNOWNOP, "unknown op '%s'; did you mean '%s'?", opname,
                                s);
            return pg__fail(c, i, PG_EUNKNOWNOP, "unknown op '%s'", opname);
        }

        json_t *args = json_object_get(obj, "args");
        if (!json_is_array(args) || json_array_size(args) == 0) continue;
        if (json_array_size(args) > INT_MAX / 2) return pg__fail(c, i, PG_EARITY, "too many args");
        int nargs = (int)json_array_size(args);
        pg__parg *pa = calloc((size_t)nargs, sizeof *pa);
        if (pa == NULL) return pg__fail(c, -1, PG_ENOMEM, "out of memory reading the graph");
        c->pn[i].args = pa;
        c->pn[i].nargs = nargs;
        for (int a = 0; a < nargs; a++) {
            json_t *e = json_array_get(args, (size_t)a);
            pa[a].json = e;
            pa[a].target = -1;
            if (json_is_number(e)) {
                pa[a].kind = PG__ARG_NUMBER;
                pa[a].number = json_number_value(e);
            } else if (json_is_object(e)) {
                bool has_ref = json_object_get(e, "ref") != NULL;
                bool has_op = json_object_get(e, "op") != NULL;
                if (has_ref && !has_op) {
                    pa[a].kind = PG__ARG_REF;
                } else if (has_op && !has_ref) {
                    pa[a].kind = PG__ARG_INLINE;
                    pa[a].target = c->npn;
                    int rc = pg__push_pnode(c, NULL, e, i, a);
                    if (rc < 0) return rc;
                } else {
                    pa[a].kind = PG__ARG_BAD;
                }
            } else {
                pa[a].kind = PG__ARG_BAD;
            }
        }
    }
    return 0;
}

static int pg__cmp_byname(const void *a, const void *b, void *ctx)
{
    const pg__ctx *c = ctx;
    return strcmp(c->pn[*(const int *)a].key, c->pn[*(const int *)b].key);
}

/* The named pnode called NAME, or -1. */
static int pg__find_named(const pg__ctx *c, const char *name)
{
    int lo = 0, hi = c->nnamed;
    while (lo < hi) {
        int mid = lo + (hi - lo) / 2;
        int cmp = strcmp(c->pn[c->byname[mid]].key, name);
        if (cmp == 0) return c->byname[mid];
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

/* Check 3: args are arrays of refs, inline nodes and numbers; refs exist. */
static int pg__check_args(pg__ctx *c)
{
    c->byname = malloc((size_t)c->nnamed * sizeof *c->byname);
    if (c->byname == NULL) return pg__fail(c, -1, PG_ENOMEM, "out of memory reading the graph");
    for (int i = 0; i < c->nnamed; i++)
        c->byname[i] = i;
    qsort_r(c->byname, (size_t)c->nnamed, sizeof *c->byname, pg__cmp_byname, c);

    for (int i = 0; i < c->npn; i++) {
        json_t *args = json_object_get(c->pn[i].obj, "args");
        if (args != NULL && !json_is_array(args))
            return pg__fail(c, i, PG_ETYPE, "'args' must be an array, got %s", pg__json_kind(args));
        for (int a = 0; a < c->pn[i].nargs; a++) {
            pg__parg *pa = &c->pn[i].args[a];
            if (pa->kind == PG__ARG_BAD) {
                if (json_is_object(pa->json)) {
                    bool both = json_object_get(pa->json, "ref") != NULL;
                    return pg__fail(c, i, PG_ETYPE,
                                    both ? "arg %d has both 'ref' and 'op': it must be one or the "
                                           "other"
                                         : "arg %d is an object with neither 'ref' nor 'op'",
                                    a);
                }
                return pg__fail(c, i, PG_ETYPE,
                                "arg %d must be {\"ref\": NAME}, an inline node or a number, got "
                                "%s",
                                a, pg__json_kind(pa->json));
            }
            if (pa->kind != PG__ARG_REF) continue;
            json_t *ref = json_object_get(pa->json, "ref");
            if (!json_is_string(ref))
                return pg__fail(c, i, PG_ETYPE, "arg %d: 'ref' must be a node name, got %s", a,
                                pg__json_kind(ref));
            if (json_object_size(pa->json) != 1)
                return pg__fail(c, i, PG_ETYPE, "arg %d: a ref object takes only the key 'ref'", a);
            pa->target = pg__find_named(c, json_string_value(ref));
            if (pa->target < 0)
                return pg__fail(c, i, PG_EREF, "arg %d refers to '%s', which is not a node", a,
                                json_string_value(ref));
            c->pn[pa->target].referenced = true;
        }
    }
    return 0;
}

/* Check 4: arity, then the kind of each arg. */
static int pg__check_arity(pg__ctx *c)
{
    for (int i = 0; i < c->npn; i++) {
        const pg__pnode *p = &c->pn[i];
        const pg_op_def *op = p->op;
        if (p->nargs < op->min_args || (op->max_args >= 0 && p->nargs > op->max_args)) {
            if (op->max_args == 0)
                return pg__fail(c, i, PG_EARITY, "%s takes no args, got %d", op->name, p->nargs);
            if (op->max_args < 0)
                return pg__fail(c, i, PG_EARITY, "%s takes at least %d arg%s, got %d", op->name,
                                op->min_args, op->min_args == 1 ? "" : "s", p->nargs);
            if (op->min_args == op->max_args)
                return pg__fail(c, i, PG_EARITY, "%s takes %d arg%s, got %d", op->name,
                                op->min_args, op->min_args == 1 ? "" : "s", p->nargs);
            return pg__fail(c, i, PG_EARITY, "%s takes %d to %d args, got %d", op->name,
                            op->min_args, op->max_args, p->nargs);
        }
        for (int a = 0; a < p->nargs; a++) {
            const pg__parg *pa = &p->args[a];
            if (pa->kind == PG__ARG_NUMBER) {
                if (!(op->arg_kinds & PG_ARGK_NUMBER))
                    return pg__fail(c, i, PG_ETYPE, "arg %d of %s must be a raster, got a number",
                                    a, op->name);
                continue;
            }
            const pg_op_def *aop = c->pn[pa->target].op;
            if (aop->result == PG_RESULT_VALUE && (op->arg_kinds & PG_ARGK_VALUE)) continue;
            if (!(op->arg_kinds & PG_ARGK_RASTER))
                return pg__fail(c, i, PG_ETYPE, "arg %d of %s must be a number, got a node (%s)", a,
                                op->name, aop->name);
            if (aop->result != PG_RESULT_RASTER) {
                char *an = pg__name_dup(c, pa->target);
                int rc = pg__fail(
                    c, i, PG_ETYPE, "arg %d of %s must be a raster, but '%s' (%s) returns %s", a,
                    op->name, an != NULL ? an : "?", aop->name, pg__result_kind_name(aop->result));
                free(an);
                return rc;
            }
        }
    }
    return 0;
}

static bool pg__is_bound(double x)
{
    /* Tables say "unbounded" on one side with an infinity or a huge value. */
    return isfinite(x) && fabs(x) < 1e300;
}

/* PG_EPARAM for value V of param D out of its range. */
static int pg__range_fail(pg__ctx *c, int i, const pg_param_def *d)
{
    const char *what = d->type == PG_PARAM_INT ? "an integer" : "a number";
    if (pg__is_bound(d->min) && pg__is_bound(d->max))
        return pg__fail(c, i, PG_EPARAM, "param '%s' must be %s between %.17g and %.17g", d->name,
                        what, d->min, d->max);
    if (pg__is_bound(d->min))
        return pg__fail(c, i, PG_EPARAM, "param '%s' must be %s >= %.17g", d->name, what, d->min);
    return pg__fail(c, i, PG_EPARAM, "param '%s' must be %s <= %.17g", d->name, what, d->max);
}

/* Checks value V of param D; sets *out to the value to store (a new
 * reference, independent of the request's JSON). */
static int pg__check_value(pg__ctx *c, int i, const pg_param_def *d, json_t *v, json_t **out)
{
    *out = NULL;
    double x = 0;
    switch (d->type) {
    case PG_PARAM_STRING:
        if (!json_is_string(v))
            return pg__fail(c, i, PG_EPARAM, "param '%s' must be a string, got %s", d->name,
                            pg__json_kind(v));
        break;
    case PG_PARAM_NUMBER:
        if (!json_is_number(v))
            return pg__fail(c, i, PG_EPARAM, "param '%s' must be a number, got %s", d->name,
                            pg__json_kind(v));
        x = json_number_value(v);
        break;
    case PG_PARAM_INT:
        if (json_is_integer(v)) {
            x = (double)json_integer_value(v);
            *out = json_integer(json_integer_value(v));
        } else if (json_is_real(v)) {
            x = json_real_value(v);
            /* 2.0 is an integer written by a client that only has doubles;
             * 2.5 is not. The bounds are the doubles exactly at the int64
             * limits (the upper one is not itself an int64). */
            if (x != floor(x) || x < -9223372036854775808.0 || x >= 9223372036854775808.0)
                return pg__fail(c, i, PG_EPARAM, "param '%s' must be an integer, got %g", d->name,
                                x);
            *out = json_integer((json_int_t)x);
        } else {
            return pg__fail(c, i, PG_EPARAM, "param '%s' must be an integer, got %s", d->name,
                            pg__json_kind(v));
        }
        if (*out == NULL) return pg__fail(c, -1, PG_ENOMEM, "out of memory reading the graph");
        break;
    case PG_PARAM_BOOL:
        if (!json_is_boolean(v))
            return pg__fail(c, i, PG_EPARAM, "param '%s' must be a boolean, got %s", d->name,
                            pg__json_kind(v));
        break;
    case PG_PARAM_CELLTYPE: {
        pg_celltype t;
        if (!json_is_string(v) || pg_celltype_parse(json_string_value(v), &t) != 0)
            return pg__fail(c, i, PG_EPARAM,
                            "param '%s' must be a cell type: one of u8, i8, u16, i16, u32, i32, "
                            "f32, f64",
                            d->name);
        break;
    }
    case PG_PARAM_JSON:
        break;
    }
    if ((d->type == PG_PARAM_NUMBER || d->type == PG_PARAM_INT) && d->min < d->max &&
        (x < d->min || x > d->max)) {
        json_decref(*out);
        *out = NULL;
        return pg__range_fail(c, i, d);
    }
    if (*out == NULL) {
        /* A copy, so that the plan shares no JSON with the request (the
         * plan is read by many threads; the request is not ours). */
        *out = json_deep_copy(v);
        if (*out == NULL) return pg__fail(c, -1, PG_ENOMEM, "out of memory reading the graph");
    }
    return 0;
}

/* Check 5 for node I: its keys, then every declared param; builds
 * pn[i].params. */
static int pg__check_params(pg__ctx *c, int i)
{
    pg__pnode *p = &c->pn[i];
    const pg_op_def *op = p->op;
    const char *key;
    json_t *v;
    json_object_foreach(p->obj, key, v)
    {
        bool known = false;
        for (size_t k = 0; k < PG_ARRAY_SIZE(pg__node_keys) && !known; k++)
            known = strcmp(key, pg__node_keys[k]) == 0;
        for (const pg_param_def *d = op->params; d != NULL && d->name != NULL && !known; d++)
            known = strcmp(key, d->name) == 0;
        if (known) continue;

        const char *best = NULL;
        int bestd = 3;
        char names[160] = "";
        size_t at = 0;
        for (const pg_param_def *d = op->params; d != NULL && d->name != NULL; d++) {
            int dist = pg__edit_distance(key, d->name, 2);
            if (dist < bestd) {
                bestd = dist;
                best = d->name;
            }
            if (at < sizeof names)
                at += (size_t)snprintf(names + at, sizeof names - at, "%s%s", at ? ", " : "",
                                       d->name);
        }
        if (best != NULL)
            return pg__fail(c, i, PG_EUNKNOWNPARAM, "unknown param '%s' for %s; did you mean '%s'?",
                            key, op->name, best);
        if (names[0] == '\0')
            return pg__fail(c, i, PG_EUNKNOWNPARAM, "unknown param '%s': %s takes no params", key,
                            op->name);
        return pg__fail(c, i, PG_EUNKNOWNPARAM, "unknown param '%s' for %s (it takes: %s)", key,
                        op->name, names);
    }

    json_t *remote = json_object_get(p->obj, "remote");
    if (remote != NULL && !json_is_boolean(remote) && !json_is_string(remote))
        return pg__fail(c, i, PG_EPARAM, "'remote' must be true, false or a peer name, got %s",
                        pg__json_kind(remote));

    p->params = json_object();
    if (p->params == NULL) return pg__fail(c, -1, PG_ENOMEM, "out of memory reading the graph");
    for (const pg_param_def *d = op->params; d != NULL && d->name != NULL; d++) {
        json_t *given = json_object_get(p->obj, d->name);
        json_t *val = NULL;
        if (given != NULL) {
            int rc = pg__check_value(c, i, d, given, &val);
            if (rc < 0) return rc;
        } else if (d->required) {
            return pg__fail(c, i, PG_EPARAM, "param '%s' is required", d->name);
        } else if (d->default_json != NULL) {
            val = json_loads(d->default_json, JSON_DECODE_ANY, NULL);
            if (val == NULL)
                return pg__fail(c, i, PG_EINTERNAL, "%s: the default of param '%s' is not JSON",
                                op->name, d->name);
        } else {
            continue;
        }
        if (json_object_set_new(p->params, d->name, val) != 0)
            return pg__fail(c, -1, PG_ENOMEM, "out of memory reading the graph");
    }
    return 0;
}

/* Appends " -> NAME" (or NAME first) to the cycle message at *AT. */
static void pg__append_name(const pg__ctx *c, int i, char *buf, size_t size, size_t *at)
{
    if (*at >= size) return;
    char *name = pg__name_dup(c, i);
    *at += (size_t)snprintf(buf + *at, size - *at, "%s%s", *at ? " -> " : "",
                            name != NULL ? name : "?");
    free(name);
}

/* Check 6: a depth-first walk over every node finds any cycle (an arg on
 * the walk's own stack) and computes each node's height. */
static int pg__check_cycles(pg__ctx *c)
{
    pg__frame *st = malloc((size_t)c->npn * sizeof *st);
    if (st == NULL) return pg__fail(c, -1, PG_ENOMEM, "out of memory checking the graph");
    int rc = 0;
    for (int s = 0; s < c->npn && rc == 0; s++) {
        if (c->pn[s].mark != 0) continue;
        int top = 0;
        st[top++] = (pg__frame){s, 0};
        c->pn[s].mark = 1;
        while (top > 0 && rc == 0) {
            pg__frame *f = &st[top - 1];
            pg__pnode *u = &c->pn[f->node];
            if (f->next < u->nargs) {
                const pg__parg *pa = &u->args[f->next++];
                if (pa->kind == PG__ARG_NUMBER) continue;
                int v = pa->target;
                if (c->pn[v].mark == 2) continue;
                if (c->pn[v].mark == 0) {
                    c->pn[v].mark = 1;
                    st[top++] = (pg__frame){v, 0};
                    continue;
                }
                /* V is on the stack: the cycle is V ... U -> V. */
                int from = top - 1;
                while (st[from].node != v)
                    from--;
                char msg[sizeof c->err->message];
                size_t at = 0;
                for (int k = from; k < top && at < sizeof msg; k++)
                    pg__append_name(c, st[k].node, msg, sizeof msg, &at);
                pg__append_name(c, v, msg, sizeof msg, &at);
                rc = pg__fail(c, v, PG_ECYCLE, "cycle: %s", msg);
            } else {
                int64_t h = 0;
                for (int a = 0; a < u->nargs; a++)
                    if (u->args[a].kind != PG__ARG_NUMBER && c->pn[u->args[a].target].height > h)
                        h = c->pn[u->args[a].target].height;
                u->height = h + 1;
                u->mark = 2;
                top--;
            }
        }
    }
    free(st);
    if (rc < 0) return rc;

    if (c->env->max_depth > 0) {
        int deepest = 0;
        for (int i = 1; i < c->npn; i++)
            if (c->pn[i].height > c->pn[deepest].height) deepest = i;
        if (c->pn[deepest].height > c->env->max_depth)
            return pg__fail(c, deepest, PG_EDEPTH, "graph is %lld nodes deep (the limit is %lld)",
                            (long long)c->pn[deepest].height, (long long)c->env->max_depth);
    }
    return 0;
}

/* Check 7: "result" into RESULTS (pnode indices; *NRES of them). */
static int pg__resolve_results(pg__ctx *c, int **results, int *nres, int *is_list)
{
    json_t *r = json_object_get(c->graph, "result");
    *results = NULL;
    *nres = 0;
    *is_list = 0;
    if (r == NULL) {
        int only = -1, count = 0;
        char names[160] = "";
        size_t at = 0;
        for (int i = 0; i < c->nnamed; i++) {
            if (c->pn[i].referenced) continue;
            if (count++ == 0) only = i;
            if (at < sizeof names)
                at += (size_t)snprintf(names + at, sizeof names - at, "%s'%s'", at ? ", " : "",
                                       c->pn[i].key);
        }
        if (count != 1)
            return pg__fail(c, -1, PG_EBADREQ,
                            "graph: 'result' is required when %d nodes are used by no other (%s)",
                            count, names);
        *results = malloc(sizeof **results);
        if (*results == NULL) return pg__fail(c, -1, PG_ENOMEM, "out of memory");
        (*results)[0] = only;
        *nres = 1;
        return 0;
    }
    if (json_is_string(r)) {
        int i = pg__find_named(c, json_string_value(r));
        if (i < 0)
            return pg__fail(c, -1, PG_EREF, "graph: 'result' names '%s', which is not a node",
                            json_string_value(r));
        *results = malloc(sizeof **results);
        if (*results == NULL) return pg__fail(c, -1, PG_ENOMEM, "out of memory");
        (*results)[0] = i;
        *nres = 1;
        return 0;
    }
    if (!json_is_array(r))
        return pg__fail(c, -1, PG_EBADREQ,
                        "graph: 'result' must be a node name or a list of names, got %s",
                        pg__json_kind(r));
    size_t n = json_array_size(r);
    if (n == 0) return pg__fail(c, -1, PG_EBADREQ, "graph: 'result' is an empty list");
    *is_list = 1;
    *results = malloc(n * sizeof **results);
    if (*results == NULL) return pg__fail(c, -1, PG_ENOMEM, "out of memory");
    for (size_t k = 0; k < n; k++) {
        json_t *e = json_array_get(r, k);
        if (!json_is_string(e))
            return pg__fail(c, -1, PG_EBADREQ, "graph: 'result'[%zu] must be a node name, got %s",
                            k, pg__json_kind(e));
        int i = pg__find_named(c, json_string_value(e));
        if (i < 0)
            return pg__fail(c, -1, PG_EREF, "graph: 'result'[%zu] names '%s', which is not a node",
                            k, json_string_value(e));
        /* Marks are all 2 after the cycle walk; 3 flags "already listed". */
        if (c->pn[i].mark == 3)
            return pg__fail(c, -1, PG_EBADREQ, "graph: 'result' lists '%s' more than once",
                            c->pn[i].key);
        c->pn[i].mark = 3;
        (*results)[k] = i;
        *nres = (int)k + 1;
    }
    return 0;
}

/* Check 8, first half: the reachable nodes in plan order (post-order of a
 * depth-first walk from the results in order, args in order), into ORDER;
 * sets each one's slot. Returns their number, or a negative code. */
static int pg__order(pg__ctx *c, const int *results, int nres, int *order)
{
    for (int i = 0; i < c->npn; i++)
        c->pn[i].mark = 0;
    pg__frame *st = malloc((size_t)c->npn * sizeof *st);
    if (st == NULL) return pg__fail(c, -1, PG_ENOMEM, "out of memory planning the graph");
    int n = 0;
    for (int r = 0; r < nres; r++) {
        if (c->pn[results[r]].mark != 0) continue;
        int top = 0;
        st[top++] = (pg__frame){results[r], 0};
        c->pn[results[r]].mark = 1;
        while (top > 0) {
            pg__frame *f = &st[top - 1];
            pg__pnode *u = &c->pn[f->node];
            if (f->next < u->nargs) {
                const pg__parg *pa = &u->args[f->next++];
                if (pa->kind == PG__ARG_NUMBER || c->pn[pa->target].mark != 0) continue;
                c->pn[pa->target].mark = 1;
                st[top++] = (pg__frame){pa->target, 0};
            } else {
                u->slot = n;
                order[n++] = f->node;
                u->mark = 2;
                top--;
            }
        }
    }
    free(st);
    return n;
}

/* Default plan for a RASTER op without plan(): the raster of its first
 * raster arg (the shape of a cell-by-cell op). */
static int pg__default_plan(pg_node *n, pg_error *err)
{
    for (int a = 0; a < n->nargs; a++) {
        if (n->args[a].ref == NULL) continue;
        if (pg_raster_info_copy(&n->info, &n->args[a].ref->info) != 0)
            return pg_error_set(err, PG_ENOMEM, "out of memory");
        return 0;
    }
    return pg_error_set(err, PG_EINTERNAL, "%s has no plan() and no raster arg to copy",
                        n->op->name);
}

/* Check 8, second half: plans each node, args first. */
static int pg__plan_nodes(pg_plan *plan, const pg_plan_env *env, pg_error *err)
{
    for (int k = 0; k < plan->nnodes; k++) {
        pg_node *n = &plan->nodes[k];
        pg_error local;
        pg_error *e = err != NULL ? err : &local;
        memset(e, 0, sizeof *e);
        int rc = n->op->plan != NULL                 ? n->op->plan(n, env, e)
                 : n->op->result == PG_RESULT_RASTER ? pg__default_plan(n, e)
                                                     : 0;
        if (rc < 0) {
            /* An op that forgot to describe its failure still gets one. */
            if (e->code != rc || e->message[0] == '\0')
                pg_error_set(e, rc, "%s failed to plan (%s)", n->op->name, pg_strerror(rc));
            pg_error_node(e, n->name);
            return rc;
        }
        if (n->op->result != PG_RESULT_RASTER) continue;
        int64_t cells;
        const pg_raster_info *ri = &n->info;
        if (ri->width <= 0 || ri->height <= 0 || ri->bands <= 0) {
            pg_error_set(e, PG_EINTERNAL, "%s planned an empty raster (%lld x %lld, %d bands)",
                         n->op->name, (long long)ri->width, (long long)ri->height, ri->bands);
            pg_error_node(e, n->name);
            return PG_EINTERNAL;
        }
        bool over = __builtin_mul_overflow(ri->width, ri->height, &cells) ||
                    __builtin_mul_overflow(cells, (int64_t)ri->bands, &cells);
        if (over) {
            pg_error_set(e, PG_ECELLS, "raster of %lld x %lld cells x %d bands is too large",
                         (long long)ri->width, (long long)ri->height, ri->bands);
            pg_error_node(e, n->name);
            return PG_ECELLS;
        }
        if (env->max_cells > 0 && cells > env->max_cells) {
            pg_error_set(e, PG_ECELLS,
                         "raster of %lld x %lld cells x %d bands exceeds the limit of %lld cells",
                         (long long)ri->width, (long long)ri->height, ri->bands,
                         (long long)env->max_cells);
            pg_error_node(e, n->name);
            return PG_ECELLS;
        }
    }
    return 0;
}

/* Builds the plan from the checked pnodes. */
static int pg__build(pg__ctx *c, pg_plan **out)
{
    int *results = NULL, nres = 0, is_list = 0;
    int rc = pg__resolve_results(c, &results, &nres, &is_list);
    if (rc < 0) {
        free(results);
        return rc;
    }
    int *order = malloc((size_t)c->npn * sizeof *order);
    pg_plan *plan = calloc(1, sizeof *plan);
    if (order == NULL || plan == NULL) {
        rc = pg__fail(c, -1, PG_ENOMEM, "out of memory planning the graph");
        goto done;
    }
    int n = pg__order(c, results, nres, order);
    if (n < 0) {
        rc = n;
        goto done;
    }
    /* Allocated once: args point into this array. */
    plan->nodes = calloc((size_t)n, sizeof *plan->nodes);
    plan->results = malloc((size_t)nres * sizeof *plan->results);
    if (plan->nodes == NULL || plan->results == NULL) {
        rc = pg__fail(c, -1, PG_ENOMEM, "out of memory planning the graph");
        goto done;
    }
    plan->nnodes = n;
    plan->nresults = nres;
    plan->results_list = is_list;
    for (int r = 0; r < nres; r++)
        plan->results[r] = c->pn[results[r]].slot;
    for (int k = 0; k < n; k++) {
        pg__pnode *p = &c->pn[order[k]];
        pg_node *nd = &plan->nodes[k];
        nd->op = p->op;
        nd->index = k;
        nd->params = p->params;
        p->params = NULL;
        nd->name = pg__name_dup(c, order[k]);
        json_t *remote = json_object_get(p->obj, "remote");
        if (json_is_true(remote) || json_is_string(remote)) {
            nd->remote = strdup(json_is_string(remote) ? json_string_value(remote) : "");
            if (nd->remote == NULL) {
                rc = pg__fail(c, -1, PG_ENOMEM, "out of memory planning the graph");
                goto done;
            }
        }
        nd->nargs = p->nargs;
        nd->args = p->nargs ? calloc((size_t)p->nargs, sizeof *nd->args) : NULL;
        if (nd->name == NULL || (p->nargs && nd->args == NULL)) {
            rc = pg__fail(c, -1, PG_ENOMEM, "out of memory planning the graph");
            goto done;
        }
        for (int a = 0; a < p->nargs; a++) {
            if (p->args[a].kind == PG__ARG_NUMBER) {
                nd->args[a] = (pg_arg){.node = -1, .ref = NULL, .number = p->args[a].number};
            } else {
                int s = c->pn[p->args[a].target].slot;
                nd->args[a] = (pg_arg){.node = s, .ref = &plan->nodes[s], .number = 0};
            }
        }
    }
    rc = pg__plan_nodes(plan, c->env, c->err);

done:
    free(results);
    free(order);
    if (rc < 0)
        pg_plan_destroy(&plan);
    else
        *out = plan;
    return rc;
}

static const pg_op_lookup pg__registry = {pg_op_find, pg_op_count, pg_op_at};

int pg_plan_build(json_t *graph, const pg_plan_env *env, pg_plan **out, pg_error *err)
{
    return pg_plan_build_with(graph, env, &pg__registry, out, err);
}

int pg_plan_build_with(json_t *graph, const pg_plan_env *env, const pg_op_lookup *lookup,
                       pg_plan **out, pg_error *err)
{
    if (out != NULL) *out = NULL;
    if (graph == NULL || env == NULL || lookup == NULL || lookup->find == NULL || out == NULL)
        return pg_error_set(err, PG_EINVAL, "pg_plan_build: NULL argument");
    if (err != NULL) memset(err, 0, sizeof *err);

    pg__ctx c = {.graph = graph, .env = env, .lookup = lookup, .err = err};
    int rc = pg__collect(&c);
    if (rc == 0 && env->max_nodes > 0 && c.npn > env->max_nodes)
        rc = pg__fail(&c, -1, PG_ENODES, "graph has %d nodes (the limit is %lld)", c.npn,
                      (long long)env->max_nodes);
    if (rc == 0) rc = pg__check_args(&c);
    if (rc == 0) rc = pg__check_arity(&c);
    for (int i = 0; rc == 0 && i < c.npn; i++)
        rc = pg__check_params(&c, i);
    if (rc == 0) rc = pg__check_cycles(&c);
    if (rc == 0) rc = pg__build(&c, out);

    for (int i = 0; i < c.npn; i++) {
        free(c.pn[i].args);
        json_decref(c.pn[i].params);
    }
    free(c.pn);
    free(c.byname);
    return rc;
}

void pg_plan_destroy(pg_plan **pp)
{
    if (pp == NULL || *pp == NULL) return;
    pg_plan *p = *pp;
    for (int k = 0; k < p->nnodes; k++) {
        pg_node *n = &p->nodes[k];
        /* free_state runs only for nodes whose plan() left a state: nodes
         * after a failed one were never planned. */
        if (n->state != NULL) {
            if (n->op->free_state != NULL)
                n->op->free_state(n);
            else
                free(n->state);
            n->state = NULL;
        }
        json_decref(n->params);
        pg_raster_info_clear(&n->info);
        free(n->args);
        free(n->name);
        free(n->remote);
    }
    free(p->nodes);
    free(p->results);
    free(p);
    *pp = NULL;
}

json_t *pg_plan_subgraph(const pg_plan *p, const pg_node *n)
{
    /* Plan order is topological, so the nodes N depends on all come before
     * it: one backward pass marks them. */
    bool *need = calloc((size_t)p->nnodes, sizeof *need);
    json_t *nodes = json_object();
    json_t *g = json_pack("{s:o, s:s}", "nodes", nodes, "result", n->name);
    if (need == NULL || nodes == NULL || g == NULL) goto oom;
    need[n->index] = true;
    for (int k = n->index; k >= 0; k--) {
        if (!need[k]) continue;
        const pg_node *m = &p->nodes[k];
        for (int a = 0; a < m->nargs; a++)
            if (m->args[a].ref) need[m->args[a].node] = true;
    }
    for (int k = 0; k <= n->index; k++) {
        if (!need[k]) continue;
        const pg_node *m = &p->nodes[k];
        json_t *obj = json_deep_copy(m->params);
        json_t *args = json_array();
        if (obj == NULL || args == NULL || json_object_set_new(obj, "op", json_string(m->op->name)) ||
            json_object_set_new(obj, "args", args)) {
            json_decref(obj);
            if (obj == NULL) json_decref(args);
            goto oom;
        }
        for (int a = 0; a < m->nargs; a++) {
            json_t *arg = m->args[a].ref ? json_pack("{s:s}", "ref", m->args[a].ref->name)
                                         : json_real(m->args[a].number);
            if (arg == NULL || json_array_append_new(args, arg)) {
                json_decref(obj);
                goto oom;
            }
        }
        if (json_object_set_new(nodes, m->name, obj)) goto oom;
    }
    free(need);
    return g;
oom:
    free(need);
    json_decref(g);
    return NULL;
}
