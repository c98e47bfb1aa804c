/* Fusion: chains of per-cell ops evaluated as one pass over a tile.
 *
 * Unfused, where(A > 0.5, (A + B) * C - D / 2, 0) makes five intermediate
 * tiles per tile index, each written to memory by one op and read back by
 * the next: six passes over 256 KiB-sized buffers that do not stay in the
 * cache, plus five pool buffers held at once. Fused, the job gives the
 * root (where) only its leaves' tiles (A, B, C, D) and the root's out
 * tile; pg_fgroup_compute() then runs the whole chain strip by strip: for
 * rows [y0, y0+sh) of the tile every member's compute() runs on that strip
 * only, its result in a small scratch strip, and the root writes straight
 * into the out tile's rows. A strip is a few thousand cells, so each
 * intermediate is written and read back while it is still in L1/L2, and
 * the only full passes over memory are reading the leaves and writing the
 * out tile: the cost of a plain n-ary local.add of the same inputs.
 *
 * The results are the same bytes as unfused evaluation: every member is an
 * op whose compute() is a per-cell map (pg_op_def.elementwise), run with
 * its own state on the same cells, only on fewer of them at a time.
 *
 * Why bands == 1 only: a tile is band sequential, so the rows [y0, y0+sh)
 * of a multi-band tile are bands separate pieces of memory, not one
 * contiguous strip a member's compute() could take as a tile. Multi-band
 * chains run unfused.
 *
 * Which nodes fuse: a node X is FUSED (computed inside its users' groups,
 * never as a tile of its own) when X's op is elementwise, X is a RASTER
 * node with one band, X is not marked "materialize" (a node whose tiles
 * the job needs as such: a sweep's root), X has at least one user, and
 * every user of X in the plan is an elementwise RASTER node with one band.
 * A GROUP ROOT is an elementwise one-band RASTER node that is not fused but
 * has at least one fused arg; its group is every fused node reachable from
 * it through args (in plan order), and its LEAVES are the distinct
 * non-fused RASTER args of the root and of its members, in order of first
 * use. Number args stay numbers; VALUE args stay what the node's bind()
 * kept. A fused node used by two roots is computed in both groups (a few
 * cycles per cell, cheaper than a tile buffer). Every raster arg of a
 * non-elementwise op (focal, value ops, io.save) is its own tile, so such
 * an arg is never fused (it may itself be a group root).
 *
 * A pg_fusion is immutable once built and read by many workers at once.
 */
#ifndef PG_FUSE_H
#define PG_FUSE_H

#include "graph.h"
#include "pergola/error.h"
#include "raster.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct pg_fusion pg_fusion;
typedef struct pg_fgroup pg_fgroup;

/* The default target of cells per strip (see pg_fusion_set_strip_cells). */
#define PG_FUSE_STRIP_CELLS 16384

/* The fusion of PLAN (borrowed: it must outlive the fusion). MATERIALIZE
 * (borrowed, read only during the call) has plan->nnodes flags: true for a
 * node whose tiles are needed as such. Returns a new fusion (possibly with
 * no group at all), or NULL when out of memory. */
pg_fusion *pg_fusion_new(const pg_plan *plan, const bool *materialize);
void pg_fusion_destroy(pg_fusion **fu);

/* Rows per strip are chosen so that a strip holds about CELLS cells (at
 * least one row). For tests and tuning; call before the fusion is shared. */
void pg_fusion_set_strip_cells(pg_fusion *fu, size_t cells);

/* True if node NODE_INDEX is fused (has no tiles of its own). */
bool pg_fusion_is_fused(const pg_fusion *fu, int node_index);
/* The group rooted at node NODE_INDEX (borrowed), or NULL if that node is
 * not a group root. NULL-safe in FU. */
const pg_fgroup *pg_fusion_group(const pg_fusion *fu, int node_index);
/* The number of group roots. */
int pg_fusion_ngroups(const pg_fusion *fu);

const pg_node *pg_fgroup_root(const pg_fgroup *g);
/* The members (fused nodes, without the root), in plan order. */
int pg_fgroup_nmembers(const pg_fgroup *g);
const pg_node *pg_fgroup_member(const pg_fgroup *g, int i);
/* The leaves: the raster nodes whose tiles the group reads. */
int pg_fgroup_nleaves(const pg_fgroup *g);
const pg_node *pg_fgroup_leaf(const pg_fgroup *g, int i);

/* Computes the root's tile OUT (allocated by the caller with the root's
 * type, one band, over the tile's window) from LEAF_TILES[i], the tile of
 * leaf i over the same window (borrowed). Runs on any worker; scratch
 * strips come from a per-thread buffer (a few hundred KiB at most for
 * usual groups, outside the tile pool, kept for the thread's next call).
 * Returns 0, or fills ERR (its node: the member or root that failed) and
 * returns its negative code. */
int pg_fgroup_compute(const pg_fgroup *g, pg_tile *out, pg_tile *const *leaf_tiles, pg_error *err);

#endif
