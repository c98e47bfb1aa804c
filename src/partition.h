/* Partition functions: which cluster node computes which tile.
 *
 * A distributed run (README "Cluster") cuts each sweep into the usual tile
 * grid and gives every tile index to one node of an ordered node list. The
 * assignment is a pure function of (method, grid, node count, map): every
 * node computes the same one from the same tile index, and a tile that its
 * node cannot run is re-run elsewhere without changing any byte of the
 * result (tiles are pure functions of the graph).
 *
 * Methods, after Parcels' pluggable partition functions:
 *  - PG_PART_HILBERT (the default): tiles ordered along a Hilbert curve
 *    over their grid positions, cut into N contiguous runs of equal size:
 *    each node gets a spatially compact region, so halos (focal ops) and
 *    warps read mostly blocks the same node reads anyway.
 *  - PG_PART_ROUND_ROBIN: tile k to node k mod N (spreads hot spots).
 *  - PG_PART_BY_INPUT: whole rows of tiles, in N bands of equal height:
 *    tiles that read the same source blocks (a striped GeoTIFF's strips,
 *    a row of tiled blocks) stay on one node, so no block is read twice.
 *  - PG_PART_EXPLICIT: a map given in the request, tile index -> node.
 */
#ifndef PG_PARTITION_H
#define PG_PARTITION_H

#include "raster.h"

#include <stdint.h>

typedef enum {
    PG_PART_HILBERT,
    PG_PART_ROUND_ROBIN,
    PG_PART_BY_INPUT,
    PG_PART_EXPLICIT,
} pg_partition_method;

/* Parses "hilbert", "round_robin", "by_input", "explicit". Returns 0 or -1. */
int pg_partition_parse(const char *name, pg_partition_method *out);
const char *pg_partition_name(pg_partition_method m);

/* Fills OUT[k] (pg_tiling_count(T) entries) with the node index in
 * [0, NNODES) of every tile k. For PG_PART_EXPLICIT, MAP[k] is used as is
 * (the caller checked it); MAP is ignored otherwise. NNODES >= 1. */
void pg_partition_assign(pg_partition_method m, const pg_tiling *t, int nnodes, const int *map,
                         int *out);

/* The position of cell (X, Y) along the Hilbert curve filling a 2^ORDER x
 * 2^ORDER grid (X, Y < 2^ORDER). */
uint64_t pg_hilbert_index(unsigned order, uint32_t x, uint32_t y);

#endif
