/* The op registry: one table (ops/registry.c) lists every operation.
 *
 * Adding an op = one entry in that table + its functions in the family's
 * file (ops/local.c, ops/global.c, ops/io.c, ...). Generic validation
 * (arity, argument kinds, parameter names, types, ranges, defaults) is done
 * by the graph planner from the entry's tables, so an op's own plan()
 * checks only what the tables cannot say.
 *
 * An op produces one of three kinds of result:
 *  - RASTER: computed tile by tile. need() says which window of each raster
 *    argument an output window needs (NULL: the same window); compute()
 *    fills one output tile from its argument tiles. Both are pure: the same
 *    inputs give the same bytes on any worker, in any order.
 *  - VALUE: a reduction over its raster arguments to a JSON value.
 *    partial() runs once per tile (in parallel, into its own partial
 *    state); finish() merges the partials in tile order (so the result is
 *    identical for any number of workers) and builds the value.
 *  - SINK: consumes a raster (io.save); the job drives it (actors/io.c).
 */
#ifndef PG_OPS_REGISTRY_H
#define PG_OPS_REGISTRY_H

#include "pergola/error.h"
#include "raster.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct pg_node;
struct pg_plan_env;

typedef enum {
    PG_PARAM_STRING,
    PG_PARAM_NUMBER, /* any JSON number */
    PG_PARAM_INT,    /* a JSON integer (or a number with no fraction) */
    PG_PARAM_BOOL,
    PG_PARAM_CELLTYPE, /* a string: "u8" ... "f64" */
    PG_PARAM_JSON,     /* any JSON value; the op's plan() checks it */
} pg_param_type;

typedef struct pg_param_def {
    const char *name;
    pg_param_type type;
    bool required;
    const char *default_json; /* JSON text of the default; NULL: no default */
    const char *doc;
    double min, max; /* allowed range for NUMBER/INT when min < max */
} pg_param_def;

typedef enum { PG_RESULT_RASTER, PG_RESULT_VALUE, PG_RESULT_SINK } pg_result_kind;

/* Which kinds an op's args may be. A VALUE arg is a node whose op returns
 * a value (global.stats, ...): the job computes it first, in a sweep of its
 * own, and passes it to bind() before any tile of the op runs. */
enum { PG_ARGK_RASTER = 1, PG_ARGK_NUMBER = 2, PG_ARGK_VALUE = 4 };

typedef struct pg_op_def {
    const char *name;           /* "local.add" */
    const char *family;         /* "local" */
    const char *doc;            /* one paragraph, for `pergola ops` and the reference */
    const char *example;        /* a JSON node using the op */
    int min_args, max_args;     /* max_args -1: no upper bound */
    unsigned arg_kinds;         /* PG_ARGK_* bits */
    const pg_param_def *params; /* terminated by an entry with name NULL */
    pg_result_kind result;

    /* Checks what the tables cannot, and sets n->info (RASTER) or prepares
     * n->state. Runs once per node, on a worker, before any tile work; may
     * do I/O (io.load opens its file). Arguments are planned first. On
     * failure fills ERR (its node is set by the caller) and returns its
     * negative code. */
    int (*plan)(struct pg_node *n, const struct pg_plan_env *env, pg_error *err);
    /* RASTER: the window of raster arg I needed for output window OUT.
     * NULL means "the same window". */
    void (*need)(const struct pg_node *n, int i, const pg_window *out, pg_window *in);
    /* RASTER: fills OUT (allocated by the runtime with n->info's type and
     * bands over the output window). in[i] is the tile of arg i over
     * need(i), or NULL when arg i is a number. Returns 0 or fills ERR. */
    int (*compute)(const struct pg_node *n, pg_tile *out, pg_tile *const *in, pg_error *err);

    /* VALUE: bytes of one tile's partial state (zeroed before partial()). */
    size_t partial_size;
    /* VALUE, optional: the partial's size for this node when it depends on
     * the node (bands, bins...); overrides partial_size. Keep it small: the
     * job holds one partial per tile until the sweep ends. */
    size_t (*partial_size_of)(const struct pg_node *n);
    int (*partial)(const struct pg_node *n, void *partial, pg_tile *const *in, pg_error *err);
    /* VALUE: merges COUNT partials in tile order into *value (a new
     * reference). */
    int (*finish)(const struct pg_node *n, void *const *partials, int64_t count, json_t **value,
                  pg_error *err);
    /* VALUE: frees what partial() allocated inside one partial state (NULL
     * if it allocates nothing). Called for every partial once the sweep is
     * over, finished or cancelled; a never-filled partial is all zeroes. */
    void (*partial_free)(const struct pg_node *n, void *partial);

    /* Ops that take VALUE args: arg I's value (borrowed) is known; keep
     * what compute() needs in n->state. Runs on the job's actor after
     * plan() and before any of the node's tiles; returns 0 or fills ERR. */
    int (*bind)(struct pg_node *n, int i, const json_t *value, pg_error *err);

    /* Frees n->state (NULL: nothing to free, or plain free()). */
    void (*free_state)(struct pg_node *n);

    /* Ops that read files (io.load, zonal.polygons): adds to OUT (an
     * object) what identifies the node's inputs beyond its params, for the
     * result cache's keys (src/nodekey.h): each file's resolved path, size,
     * modification time in ns, inode and device, as stat(2) saw them when
     * the node was planned (before reading). Runs after plan(); returns 0
     * or fills ERR (the node then gets no key: it is never cached). NULL:
     * the result depends on params and args only. */
    int (*identity)(const struct pg_node *n, json_t *out, pg_error *err);

    /* RASTER: compute() is a per-cell map, so the job may fuse it with its
     * args into one pass over strips of a tile (src/fuse.h). True only
     * when all of these hold: need is NULL; compute() reads each arg cell
     * and writes each out cell only at the same tile-relative (band, row,
     * col), treating every tile as a flat array of bands * win.w * win.h
     * cells; it reads nothing of out->win's or in[i]->win's position
     * (x, y) or of any cell outside that array; and its result for a cell
     * depends only on the args' cells there and on n (params, state). Then
     * compute() may be called on any band-1 sub-rectangle of rows (a
     * strip) of the tile, as a tile of its own whose data points into the
     * full tile (or into a scratch buffer), and gives the same bytes. */
    bool elementwise;
} pg_op_def;

/* The op named NAME, or NULL. */
const pg_op_def *pg_op_find(const char *name);
size_t pg_op_count(void);
const pg_op_def *pg_op_at(size_t i);
/* Every op with its args and parameters, as served by the `ops` request.
 * Returns a new reference. */
json_t *pg_ops_describe(void);
/* One op's description (a new reference). */
json_t *pg_op_describe(const pg_op_def *op);

/* The families' tables, concatenated by registry.c. Each is terminated by
 * an entry with name NULL. */
extern const pg_op_def pg_ops_io[];          /* ops/io.c: io.load, io.save */
extern const pg_op_def pg_ops_raster[];      /* ops/raster.c: raster.constant */
extern const pg_op_def pg_ops_local[];       /* ops/local.c: arithmetic */
extern const pg_op_def pg_ops_local_math[];  /* ops/local_math.c: functions, comparisons, logic */
extern const pg_op_def pg_ops_local_class[]; /* ops/local_class.c: conversion, classes */
extern const pg_op_def pg_ops_focal[];       /* ops/focal.c: moving windows, terrain */
extern const pg_op_def pg_ops_zonal[];       /* ops/zonal.c: statistics per zone */
extern const pg_op_def pg_ops_global[];      /* ops/global.c: whole-raster reductions */
extern const pg_op_def pg_ops_transform[];   /* ops/transform.c: crop, resample, reproject */
extern const pg_op_def pg_ops_render[];      /* ops/render.c: colour ramps, composites */

#endif
