/* Cells as doubles, for the reductions of the global and zonal families. */
#ifndef PG_OPS_CELLS_H
#define PG_OPS_CELLS_H

#include "raster.h"

#include <stdbool.h>
#include <stddef.h>

/* Whether RI's nodata value can occur in its cells (*MASK) and that value
 * as the cells hold it (*MV: for f32 the double rounded to f32). */
void pg_cells_nodata_of(const pg_raster_info *ri, bool *mask, double *mv);

/* Converts N cells at SRC to doubles at DST, NaN where a cell is invalid
 * (equal to MV when MASK, or NaN already). One vectorisable loop per type. */
typedef void (*pg_cells_dblfn)(const void *src, size_t n, bool mask, double mv, double *dst);
extern const pg_cells_dblfn pg_cells_to_dbl[PG_CELLTYPE_COUNT];

#endif
