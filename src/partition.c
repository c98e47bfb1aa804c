/* Partition functions (see partition.h). */
#include "partition.h"

#include <stdlib.h>
#include <string.h>

static const char *const pg__names[] = {"hilbert", "round_robin", "by_input", "explicit"};

int pg_partition_parse(const char *name, pg_partition_method *out)
{
    for (int i = 0; i < 4; i++)
        if (name && strcmp(name, pg__names[i]) == 0) {
            *out = (pg_partition_method)i;
            return 0;
        }
    return -1;
}

const char *pg_partition_name(pg_partition_method m)
{
    return (unsigned)m < 4 ? pg__names[m] : "?";
}

/* The classic iterative xy -> d conversion (Hilbert curve): at each level
 * take the quadrant's index, then rotate/flip so that the sub-curve starts
 * where the parent's path enters it. */
uint64_t pg_hilbert_index(unsigned order, uint32_t x, uint32_t y)
{
    uint64_t n = (uint64_t)1 << order, d = 0;
    uint64_t X = x, Y = y;
    for (uint64_t s = n / 2; s > 0; s /= 2) {
        uint64_t rx = (X & s) ? 1 : 0, ry = (Y & s) ? 1 : 0;
        d += s * s * ((3 * rx) ^ ry);
        if (ry == 0) {
            if (rx == 1) {
                X = n - 1 - X;
                Y = n - 1 - Y;
            }
            uint64_t t = X;
            X = Y;
            Y = t;
        }
    }
    return d;
}

typedef struct {
    uint64_t d;
    int64_t k;
} pg__hk;

static int pg__cmp_hk(const void *a, const void *b)
{
    const pg__hk *x = a, *y = b;
    if (x->d != y->d) return x->d < y->d ? -1 : 1;
    return x->k < y->k ? -1 : x->k > y->k;
}

/* Node of the I-th of COUNT items cut into N contiguous runs whose sizes
 * differ by at most one. */
static int pg__run_of(int64_t i, int64_t count, int n)
{
    return (int)(((__int128)i * n) / (count > 0 ? count : 1));
}

void pg_partition_assign(pg_partition_method m, const pg_tiling *t, int nnodes, const int *map,
                         int *out)
{
    int64_t count = pg_tiling_count(t);
    if (nnodes < 1) nnodes = 1;
    switch (m) {
    case PG_PART_EXPLICIT:
        for (int64_t k = 0; k < count; k++)
            out[k] = map ? map[k] : 0;
        return;
    case PG_PART_ROUND_ROBIN:
        for (int64_t k = 0; k < count; k++)
            out[k] = (int)(k % nnodes);
        return;
    case PG_PART_BY_INPUT:
        for (int64_t k = 0; k < count; k++)
            out[k] = pg__run_of(k / t->cols, t->rows, nnodes);
        return;
    case PG_PART_HILBERT:
    default:
        break;
    }
    unsigned order = 0;
    while (((int64_t)1 << order) < t->cols || ((int64_t)1 << order) < t->rows)
        order++;
    pg__hk *hk = malloc(sizeof *hk * (size_t)(count > 0 ? count : 1));
    if (hk == NULL) { /* still a valid assignment, only less compact */
        for (int64_t k = 0; k < count; k++)
            out[k] = pg__run_of(k, count, nnodes);
        return;
    }
    for (int64_t k = 0; k < count; k++) {
        hk[k].d = pg_hilbert_index(order, (uint32_t)(k % t->cols), (uint32_t)(k / t->cols));
        hk[k].k = k;
    }
    qsort(hk, (size_t)count, sizeof *hk, pg__cmp_hk);
    for (int64_t i = 0; i < count; i++)
        out[hk[i].k] = pg__run_of(i, count, nnodes);
    free(hk);
}
