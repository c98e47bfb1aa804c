/* Graphs: parse, validate and plan a request's "graph" into a pg_plan.
 *
 * Everything that can be known before work starts is checked here, and
 * each failure names its node: JSON shape, unknown op, arity, argument
 * kinds, parameters (names, types, ranges; defaults filled in), missing
 * refs, cycles, depth and size limits, paths escaping the data root, grid
 * mismatches, cell limits. A pg_plan is immutable once built: the job's
 * tile tasks read it from many threads without locks.
 */
#ifndef PG_GRAPH_H
#define PG_GRAPH_H

#include "ops/registry.h"
#include "pergola/error.h"
#include "raster.h"
#include "util.h"

#include <jansson.h>
#include <stdint.h>

/* What planning needs from the daemon's configuration. */
typedef struct pg_plan_env {
    const char *data_root; /* absolute, symlinks resolved */
    int64_t max_nodes;
    int64_t max_depth;
    int64_t max_cells; /* per raster, all bands */
    int64_t tile_w, tile_h;
} pg_plan_env;

typedef struct pg_arg {
    int node;                  /* index into plan->nodes, or -1 for a number */
    const struct pg_node *ref; /* that node (NULL for a number) */
    double number;             /* when node == -1 */
} pg_arg;

typedef struct pg_node {
    const pg_op_def *op;
    char *name;     /* the graph's name, or "parent.args[i]" for inline nodes */
    json_t *params; /* every declared parameter (defaults filled), new ref */
    int nargs;
    pg_arg *args;
    int index;           /* position in plan->nodes */
    /* "remote": NULL when the node runs here; "" for `true` (any node of
     * the cluster); else a node or pool name. Owned. */
    char *remote;
    pg_raster_info info; /* RASTER ops: the raster this node produces */
    void *state;         /* op private, set by plan() */
} pg_node;

typedef struct pg_plan {
    int nnodes;
    pg_node *nodes; /* topological: every arg comes before its users */
    int nresults;
    int *results;     /* node indices, in the request's order */
    int results_list; /* "result" was a list (answer with a list) */
} pg_plan;

/* Builds a plan from GRAPH (borrowed). Returns 0 and sets *out, or returns a
 * negative pg_errcode and fills ERR (with the node's name). Ops come from
 * the registry (pg_op_find).
 *
 * Checks run in this order; the first failing one is reported:
 *  1. shape: GRAPH an object with a non-empty "nodes" object; every node an
 *     object whose "op" is a string (PG_EBADREQ); a known op (PG_EUNKNOWNOP,
 *     with a "did you mean" within edit distance 2).
 *  2. node count, named + inline, > env->max_nodes (PG_ENODES).
 *  3. "args" an array of {"ref": NAME}, inline node objects or numbers
 *     (PG_ETYPE); every ref names a node (PG_EREF).
 *  4. arity (PG_EARITY), argument kinds (PG_ETYPE: a number where the op
 *     takes none, a value or sink node where a raster is needed, a raster
 *     where only numbers are taken).
 *  5. params: unknown keys (PG_EUNKNOWNPARAM), missing, mistyped or out of
 *     range values (PG_EPARAM). Besides declared params a node may carry
 *     "op", "args", "remote" (true, false or a peer name), "id", "comment".
 *  6. cycles through refs (PG_ECYCLE, the path in the message); depth, the
 *     longest chain of nodes to a leaf counting inline nesting (a single
 *     node is 1 deep), > env->max_depth (PG_EDEPTH).
 *  7. "result": a node name or a non-empty list of distinct names
 *     (PG_EBADREQ / PG_EREF); if absent, the only node nothing refers to.
 *  8. each node reachable from the results, args first, is planned with
 *     op->plan (its error, with the node's name); a RASTER node with more
 *     than env->max_cells cells (width * height * bands) is PG_ECELLS.
 * Checks 1-6 cover every node, reachable or not. A limit <= 0 in ENV means
 * no limit. Inline nodes are named "parent.args[i]". The plan's node order
 * depends only on the graph: a depth-first walk from the results in order,
 * args in order, each node placed after its args. */
int pg_plan_build(json_t *graph, const pg_plan_env *env, pg_plan **out, pg_error *err);

/* Where the planner finds ops: the registry for pg_plan_build, a test's
 * own table for pg_plan_build_with. count and at may be NULL (then unknown
 * names get no "did you mean" suggestion). */
typedef struct pg_op_lookup {
    const pg_op_def *(*find)(const char *name); /* the op named NAME, or NULL */
    size_t (*count)(void);
    const pg_op_def *(*at)(size_t i);
} pg_op_lookup;

/* pg_plan_build with the ops of LOOKUP (so that the planner can be tested
 * with ops that exercise every rule, independently of the real table). */
int pg_plan_build_with(json_t *graph, const pg_plan_env *env, const pg_op_lookup *lookup,
                       pg_plan **out, pg_error *err);
void pg_plan_destroy(pg_plan **p);

/* The graph that computes node N of a plan on its own: N and every node it
 * depends on, each as a named node (its plan name, so that a peer's errors
 * name the same node), params as planned (defaults explicit), no "remote"
 * keys (a remote node's whole subgraph runs where it is sent), "result": N.
 * Returns a new reference, or NULL when out of memory. */
json_t *pg_plan_subgraph(const pg_plan *p, const pg_node *n);

/* Parameter accessors for ops (the planner guarantees presence and type of
 * required and defaulted parameters). */
const char *pg_param_str(const pg_node *n, const char *key); /* NULL if absent */
double pg_param_num(const pg_node *n, const char *key);      /* NaN if absent */
int64_t pg_param_int(const pg_node *n, const char *key);     /* 0 if absent */
int pg_param_bool(const pg_node *n, const char *key);        /* 0 if absent */
int pg_param_has(const pg_node *n, const char *key);

#endif
