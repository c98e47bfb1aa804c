/* Cells as doubles for reductions (global and zonal ops): see cells.h. */
#include "ops/cells.h"

#include <float.h>
#include <math.h>
#include <stdint.h>

/* Whether a raster's nodata value can occur in its cells (MASK) and that
 * value as the cells hold it (MV: for f32 the double rounded to f32). */
void pg_cells_nodata_of(const pg_raster_info *ri, bool *mask, double *mv)
{
    *mask = false;
    *mv = 0.0;
    if (!ri->has_nodata || isnan(ri->nodata)) return;
    const double v = ri->nodata;
    if (ri->type == PG_F32) {
        if (isinf(v) || fabs(v) <= FLT_MAX) {
            *mask = true;
            *mv = (double)(float)v;
        }
    } else if (pg_celltype_holds(ri->type, v)) {
        *mask = true;
        *mv = v;
    }
}

/* N cells of type T as doubles, NaN where the cell is invalid (nodata, or
 * NaN already). Typed loops the compiler vectorises (a select). */
#define PG__TODBL(NAME, T)                                                                         \
    static void NAME(const void *src_, size_t n, bool mask, double mv, double *restrict dst)       \
    {                                                                                              \
        const T *restrict src = src_;                                                              \
        if (!mask) {                                                                               \
            for (size_t i = 0; i < n; i++)                                                         \
                dst[i] = (double)src[i];                                                           \
            return;                                                                                \
        }                                                                                          \
        const T nd = (T)mv;                                                                        \
        for (size_t i = 0; i < n; i++) {                                                           \
            const T v = src[i];                                                                    \
            dst[i] = v == nd ? NAN : (double)v;                                                    \
        }                                                                                          \
    }

PG__TODBL(pg__dbl_u8, uint8_t)
PG__TODBL(pg__dbl_i8, int8_t)
PG__TODBL(pg__dbl_u16, uint16_t)
PG__TODBL(pg__dbl_i16, int16_t)
PG__TODBL(pg__dbl_u32, uint32_t)
PG__TODBL(pg__dbl_i32, int32_t)
PG__TODBL(pg__dbl_f32, float)
PG__TODBL(pg__dbl_f64, double)

const pg_cells_dblfn pg_cells_to_dbl[PG_CELLTYPE_COUNT] = {
    pg__dbl_u8,  pg__dbl_i8,  pg__dbl_u16, pg__dbl_i16,
    pg__dbl_u32, pg__dbl_i32, pg__dbl_f32, pg__dbl_f64,
};
