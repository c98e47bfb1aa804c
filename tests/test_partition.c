/* Unit tests for the partition functions (src/partition.c) and the
 * subgraph a remote call sends (pg_plan_subgraph, src/graph.c). */
#include "graph.h"
#include "partition.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

/* The Hilbert curve of order 1 and 2, as drawn in every textbook: it
 * starts at (0,0), ends at (2^n - 1, 0), and consecutive cells touch. */
START_TEST(test_hilbert_small)
{
    ck_assert_uint_eq(pg_hilbert_index(1, 0, 0), 0);
    ck_assert_uint_eq(pg_hilbert_index(1, 0, 1), 1);
    ck_assert_uint_eq(pg_hilbert_index(1, 1, 1), 2);
    ck_assert_uint_eq(pg_hilbert_index(1, 1, 0), 3);
    static const int order2[16][2] = {{0, 0}, {1, 0}, {1, 1}, {0, 1}, {0, 2}, {0, 3},
                                      {1, 3}, {1, 2}, {2, 2}, {2, 3}, {3, 3}, {3, 2},
                                      {3, 1}, {2, 1}, {2, 0}, {3, 0}};
    for (int d = 0; d < 16; d++)
        ck_assert_uint_eq(pg_hilbert_index(2, (uint32_t)order2[d][0], (uint32_t)order2[d][1]),
                          (uint64_t)d);
}
END_TEST

/* Order 6: a bijection onto [0, 4096) whose consecutive cells are
 * neighbours (the property that makes its runs spatially compact). */
START_TEST(test_hilbert_bijective_and_continuous)
{
    enum { N = 64 };
    int *x = malloc(sizeof(int) * N * N), *y = malloc(sizeof(int) * N * N);
    ck_assert(x && y);
    for (int i = 0; i < N * N; i++)
        x[i] = -1;
    for (uint32_t cy = 0; cy < N; cy++)
        for (uint32_t cx = 0; cx < N; cx++) {
            uint64_t d = pg_hilbert_index(6, cx, cy);
            ck_assert_uint_lt(d, N * N);
            ck_assert_int_eq(x[d], -1);
            x[d] = (int)cx;
            y[d] = (int)cy;
        }
    for (int d = 1; d < N * N; d++)
        ck_assert_int_eq(abs(x[d] - x[d - 1]) + abs(y[d] - y[d - 1]), 1);
    free(x);
    free(y);
}
END_TEST

static void counts(const int *a, int64_t n, int nn, int *out)
{
    memset(out, 0, sizeof(int) * (size_t)nn);
    for (int64_t k = 0; k < n; k++) {
        ck_assert_int_ge(a[k], 0);
        ck_assert_int_lt(a[k], nn);
        out[a[k]]++;
    }
}

/* Every method gives every tile a node, balanced to within one tile. */
START_TEST(test_assign_balanced)
{
    static const int64_t sizes[][2] = {{1, 1}, {7, 3}, {32, 32}, {33, 17}, {100, 1}};
    for (size_t s = 0; s < sizeof sizes / sizeof *sizes; s++)
        for (int nn = 1; nn <= 5; nn++)
            for (int m = PG_PART_HILBERT; m <= PG_PART_ROUND_ROBIN; m++) {
                pg_tiling t;
                pg_tiling_init(&t, sizes[s][0] * 16, sizes[s][1] * 16, 16, 16);
                int64_t n = pg_tiling_count(&t);
                int *a = malloc(sizeof(int) * (size_t)n);
                int c[5];
                pg_partition_assign((pg_partition_method)m, &t, nn, NULL, a);
                counts(a, n, nn, c);
                for (int i = 0; i < nn; i++)
                    ck_assert_msg(abs(c[i] - (int)(n / nn)) <= 1, "%s %lldx%lld nodes %d: %d",
                                  pg_partition_name((pg_partition_method)m), (long long)sizes[s][0],
                                  (long long)sizes[s][1], nn, c[i]);
                free(a);
            }
}
END_TEST

/* Hilbert runs are compact: on a 32x32 grid cut in 4, each node's tiles
 * fill one 16x16 quadrant exactly. round_robin is k mod N; by_input keeps
 * whole tile rows together. */
START_TEST(test_assign_shapes)
{
    pg_tiling t;
    pg_tiling_init(&t, 32 * 256, 32 * 256, 256, 256);
    int a[1024];
    pg_partition_assign(PG_PART_HILBERT, &t, 4, NULL, a);
    for (int q = 0; q < 4; q++) {
        int qx = -1, qy = -1;
        for (int k = 0; k < 1024; k++)
            if (a[k] == q) {
                if (qx < 0) qx = (k % 32) / 16, qy = (k / 32) / 16;
                ck_assert_int_eq((k % 32) / 16, qx);
                ck_assert_int_eq((k / 32) / 16, qy);
            }
    }
    pg_partition_assign(PG_PART_ROUND_ROBIN, &t, 3, NULL, a);
    for (int k = 0; k < 1024; k++)
        ck_assert_int_eq(a[k], k % 3);
    pg_partition_assign(PG_PART_BY_INPUT, &t, 3, NULL, a);
    for (int k = 0; k < 1024; k++) {
        ck_assert_int_eq(a[k], a[k - k % 32]); /* one row, one node */
        if (k >= 32) ck_assert_int_ge(a[k], a[k - 32]);
    }
    ck_assert_int_eq(a[0], 0);
    ck_assert_int_eq(a[1023], 2);
    int map[1024];
    for (int k = 0; k < 1024; k++)
        map[k] = (k * 7) % 5;
    pg_partition_assign(PG_PART_EXPLICIT, &t, 5, map, a);
    ck_assert_mem_eq(a, map, sizeof a);
}
END_TEST

START_TEST(test_parse)
{
    pg_partition_method m;
    ck_assert_int_eq(pg_partition_parse("hilbert", &m), 0);
    ck_assert_int_eq(m, PG_PART_HILBERT);
    ck_assert_int_eq(pg_partition_parse("by_input", &m), 0);
    ck_assert_int_eq(m, PG_PART_BY_INPUT);
    ck_assert_int_eq(pg_partition_parse("kmeans", &m), -1);
    ck_assert_int_eq(pg_partition_parse(NULL, &m), -1);
    ck_assert_str_eq(pg_partition_name(PG_PART_ROUND_ROBIN), "round_robin");
}
END_TEST

/* The subgraph of a node: that node and what it depends on, all named,
 * params explicit, no "remote"; planning it again gives the same ops and
 * parameters. */
START_TEST(test_subgraph)
{
    json_error_t je;
    json_t *g = json_loads(
        "{\"nodes\": {"
        " \"c\": {\"op\": \"raster.constant\", \"width\": 40, \"height\": 30, \"value\": 2},"
        " \"s\": {\"op\": \"local.add\", \"remote\": \"b\", \"args\": [{\"ref\": \"c\"},"
        "        {\"op\": \"raster.constant\", \"width\": 40, \"height\": 30, \"value\": 0.1}, "
        "1.5]},"
        " \"other\": {\"op\": \"local.multiply\", \"args\": [{\"ref\": \"c\"}, 3]},"
        " \"st\": {\"op\": \"global.stats\", \"args\": [{\"ref\": \"s\"}]}},"
        " \"result\": [\"st\", \"other\"]}",
        0, &je);
    ck_assert_ptr_nonnull(g);
    pg_plan_env env = {.data_root = "/nonexistent", .tile_w = 256, .tile_h = 256};
    pg_plan *p = NULL;
    pg_error err;
    ck_assert_int_eq(pg_plan_build(g, &env, &p, &err), 0);
    const pg_node *s = NULL;
    for (int i = 0; i < p->nnodes; i++)
        if (strcmp(p->nodes[i].name, "s") == 0) s = &p->nodes[i];
    ck_assert_ptr_nonnull(s);
    ck_assert_str_eq(s->remote, "b");
    json_t *sub = pg_plan_subgraph(p, s);
    ck_assert_ptr_nonnull(sub);
    ck_assert_str_eq(json_string_value(json_object_get(sub, "result")), "s");
    json_t *nodes = json_object_get(sub, "nodes");
    ck_assert_int_eq(json_object_size(nodes), 3); /* c, s, s.args[1]: not other, not st */
    ck_assert_ptr_nonnull(json_object_get(nodes, "s.args[1]"));
    ck_assert_ptr_null(json_object_get(json_object_get(nodes, "s"), "remote"));
    pg_plan *q = NULL;
    ck_assert_int_eq(pg_plan_build(sub, &env, &q, &err), 0);
    ck_assert_int_eq(q->nnodes, 3);
    for (int i = 0; i < q->nnodes; i++) {
        const pg_node *a = &q->nodes[i], *b = NULL;
        for (int k = 0; k < p->nnodes; k++)
            if (strcmp(p->nodes[k].name, a->name) == 0) b = &p->nodes[k];
        ck_assert_ptr_nonnull(b);
        ck_assert_ptr_eq(a->op, b->op);
        ck_assert(json_equal(a->params, b->params));
        ck_assert_int_eq(a->nargs, b->nargs);
        for (int k = 0; k < a->nargs; k++) {
            ck_assert_int_eq(a->args[k].ref == NULL, b->args[k].ref == NULL);
            if (a->args[k].ref)
                ck_assert_str_eq(a->args[k].ref->name, b->args[k].ref->name);
            else
                ck_assert(a->args[k].number == b->args[k].number);
        }
        ck_assert_ptr_null(a->remote);
    }
    pg_plan_destroy(&q);
    json_decref(sub);
    pg_plan_destroy(&p);
    json_decref(g);
}
END_TEST

static Suite *partition_suite(void)
{
    Suite *s = suite_create("partition");
    TCase *tc = tcase_create("partition");
    tcase_add_test(tc, test_hilbert_small);
    tcase_add_test(tc, test_hilbert_bijective_and_continuous);
    tcase_add_test(tc, test_assign_balanced);
    tcase_add_test(tc, test_assign_shapes);
    tcase_add_test(tc, test_parse);
    tcase_add_test(tc, test_subgraph);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(partition_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
