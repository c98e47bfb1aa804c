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
    int node;      /* index into plan->nodes, or -1 for a number */
    double number; /* when node == -1 */
} pg_arg;

typedef struct pg_node {
    const pg_op_def *op;
    char *name;     /* the graph's name, or "parent.args[i]" for inline nodes */
    json_t *params; /* every declared parameter (defaults filled), new ref */
    int nargs;
    pg_arg *args;
    int index;           /* position in plan->nodes */
    pg_raster_info info; /* RASTER ops: the raster this node produces */
    void *state;         /* op private, set by plan() */
} pg_node;

typedef struct pg_plan {
    int nnodes;
    pg_node *nodes; /* topological: every arg comes before its users */
    int nresults;
    int *results;      /* node indices, in the request's order */
    int results_list;  /* "result" was a list (answer with a list) */
} pg_plan;

/* Builds a plan from GRAPH (borrowed). Returns 0 and sets *out, or returns a
 * negative pg_errcode and fills ERR (with the node's name). */
int pg_plan_build(json_t *graph, const pg_plan_env *env, pg_plan **out, pg_error *err);
void pg_plan_destroy(pg_plan **p);

/* Parameter accessors for ops (the planner guarantees presence and type of
 * required and defaulted parameters). */
const char *pg_param_str(const pg_node *n, const char *key);  /* NULL if absent */
double pg_param_num(const pg_node *n, const char *key);       /* NaN if absent */
int64_t pg_param_int(const pg_node *n, const char *key);      /* 0 if absent */
int pg_param_bool(const pg_node *n, const char *key);         /* 0 if absent */
int pg_param_has(const pg_node *n, const char *key);


#endif
