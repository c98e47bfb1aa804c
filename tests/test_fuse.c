/* Unit tests for src/fuse.h: which nodes fuse, and that a group computed
 * strip by strip gives the same bytes as every op run on its own tiles.
 *
 * Plans are built by the real planner (pg_plan_build) from graphs whose
 * leaves are raster.constant nodes: their info (type, nodata, grid) comes
 * from the params, and their tiles are filled here with pseudo-random
 * values, nodata values and NaNs (a constant's compute() is never called).
 * The reference is the unfused evaluation: every RASTER node's own
 * compute() on whole tiles, in plan order. A fused group's root tile must
 * be equal to the reference byte for byte, for strips of one row, of a few
 * rows with a short last strip, and of the whole tile.
 */
#include "fuse.h"
#include "graph.h"
#include "ops/registry.h"
#include "raster.h"

#include <check.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const pg_plan_env test_env = {.data_root = "/nonexistent",
                                     .max_nodes = 1000,
                                     .max_depth = 100,
                                     .max_cells = (int64_t)1 << 40,
                                     .tile_w = 256,
                                     .tile_h = 256};

static pg_plan *plan_of(const char *text)
{
    json_error_t je;
    json_t *g = json_loads(text, 0, &je);
    ck_assert_msg(g != NULL, "bad test graph: %s (line %d)", je.text, je.line);
    pg_plan *p = NULL;
    pg_error err = {0};
    int rc = pg_plan_build(g, &test_env, &p, &err);
    json_decref(g);
    ck_assert_msg(rc == 0, "plan: %s at %s", err.message, err.node);
    return p;
}

static int node_index(const pg_plan *p, const char *name)
{
    for (int i = 0; i < p->nnodes; i++)
        if (strcmp(p->nodes[i].name, name) == 0) return i;
    ck_abort_msg("no node %s", name);
    return -1;
}

/* Materialize the plan's results only (what the job does for raster
 * results), plus the nodes named in EXTRA (comma separated). */
static pg_fusion *fusion_of(const pg_plan *p, const char *extra)
{
    bool *mat = calloc((size_t)p->nnodes, sizeof *mat);
    ck_assert_ptr_nonnull(mat);
    for (int r = 0; r < p->nresults; r++)
        mat[p->results[r]] = true;
    if (extra) {
        char buf[256];
        snprintf(buf, sizeof buf, "%s", extra);
        for (char *t = strtok(buf, ","); t; t = strtok(NULL, ","))
            mat[node_index(p, t)] = true;
    }
    pg_fusion *fu = pg_fusion_new(p, mat);
    free(mat);
    ck_assert_ptr_nonnull(fu);
    return fu;
}

/* "name name ..." of a group's members, leaves. */
static void names(const pg_fgroup *g, bool leaves, char *buf, size_t len)
{
    buf[0] = '\0';
    int n = leaves ? pg_fgroup_nleaves(g) : pg_fgroup_nmembers(g);
    for (int i = 0; i < n; i++) {
        const pg_node *x = leaves ? pg_fgroup_leaf(g, i) : pg_fgroup_member(g, i);
        size_t u = strlen(buf);
        snprintf(buf + u, len - u, "%s%s", i ? " " : "", x->name);
    }
}

/* Asserts that ROOT is a group root with exactly MEMBERS (plan order) and
 * LEAVES (first use). */
static void expect_group(const pg_plan *p, const pg_fusion *fu, const char *root,
                         const char *members, const char *leaves)
{
    const pg_fgroup *g = pg_fusion_group(fu, node_index(p, root));
    ck_assert_msg(g != NULL, "%s is not a group root", root);
    ck_assert_str_eq(pg_fgroup_root(g)->name, root);
    char buf[512];
    names(g, false, buf, sizeof buf);
    ck_assert_msg(strcmp(buf, members) == 0, "%s: members '%s', expected '%s'", root, buf, members);
    names(g, true, buf, sizeof buf);
    ck_assert_msg(strcmp(buf, leaves) == 0, "%s: leaves '%s', expected '%s'", root, buf, leaves);
    char *dup = strdup(members), *save = NULL;
    for (char *t = strtok_r(dup, " ", &save); t; t = strtok_r(NULL, " ", &save))
        ck_assert_msg(pg_fusion_is_fused(fu, node_index(p, t)), "%s should be fused", t);
    free(dup);
    ck_assert(!pg_fusion_is_fused(fu, node_index(p, root)));
}

#define CONST(NAME, TYPE, EXTRA)                                                                   \
    "\"" NAME "\": {\"op\": \"raster.constant\", \"width\": 37, \"height\": 23, \"value\": 0, "    \
    "\"type\": \"" TYPE "\"" EXTRA "}"
#define LEAVES4                                                                                    \
    CONST("a", "f32", ", \"nodata\": -9999")                                                       \
    ", " CONST("b", "f32", "") ", " CONST("c", "f32", "") ", " CONST("d", "f32", "")

/* The expression: where(a > 0.5, (a + b) * c - d / 2, 0). */
#define WHERE_EXPR                                                                                 \
    "\"ab\": {\"op\": \"local.add\", \"args\": [{\"ref\": \"a\"}, {\"ref\": \"b\"}]},"             \
    "\"abc\": {\"op\": \"local.multiply\", \"args\": [{\"ref\": \"ab\"}, {\"ref\": \"c\"}]},"      \
    "\"d2\": {\"op\": \"local.divide\", \"args\": [{\"ref\": \"d\"}, 2]},"                         \
    "\"e\": {\"op\": \"local.subtract\", \"args\": [{\"ref\": \"abc\"}, {\"ref\": \"d2\"}]},"      \
    "\"cond\": {\"op\": \"local.gt\", \"args\": [{\"ref\": \"a\"}, 0.5]},"                         \
    "\"w\": {\"op\": \"local.where\", \"args\": [{\"ref\": \"cond\"}, {\"ref\": \"e\"}, 0]}"

START_TEST(test_group_where)
{
    pg_plan *p = plan_of("{\"nodes\": {" LEAVES4 ", " WHERE_EXPR "}, \"result\": \"w\"}");
    pg_fusion *fu = fusion_of(p, NULL);
    ck_assert_int_eq(pg_fusion_ngroups(fu), 1);
    /* plan order: a depth-first walk from w, args in order */
    expect_group(p, fu, "w", "cond ab abc d2 e", "a b c d");
    for (int i = 0; i < p->nnodes; i++)
        if (p->nodes[i].op->result == PG_RESULT_RASTER &&
            strcmp(p->nodes[i].op->name, "raster.constant") == 0)
            ck_assert(!pg_fusion_is_fused(fu, i));
    pg_fusion_destroy(&fu);
    ck_assert_ptr_null(fu);
    pg_plan_destroy(&p);
}
END_TEST

/* An intermediate that is also a result is materialized: it roots its own
 * group, and is a leaf of the group above it. */
START_TEST(test_group_materialized)
{
    pg_plan *p = plan_of("{\"nodes\": {" LEAVES4 ", " WHERE_EXPR "}, \"result\": [\"w\", \"e\"]}");
    pg_fusion *fu = fusion_of(p, NULL);
    ck_assert_int_eq(pg_fusion_ngroups(fu), 2);
    expect_group(p, fu, "e", "ab abc d2", "a b c d");
    expect_group(p, fu, "w", "cond", "a e");
    pg_fusion_destroy(&fu);
    pg_plan_destroy(&p);
}
END_TEST

/* A node used by two roots is a member of both groups; one used twice
 * inside a group is a member once. */
START_TEST(test_group_shared)
{
    pg_plan *p = plan_of(
        "{\"nodes\": {" LEAVES4 ", "
        "\"x\": {\"op\": \"local.add\", \"args\": [{\"ref\": \"a\"}, {\"ref\": \"b\"}]},"
        "\"r1\": {\"op\": \"local.multiply\", \"args\": [{\"ref\": \"x\"}, {\"ref\": \"c\"}]},"
        "\"r2\": {\"op\": \"local.subtract\", \"args\": [{\"ref\": \"x\"}, {\"ref\": \"d\"}]},"
        "\"y\": {\"op\": \"local.multiply\", \"args\": [{\"ref\": \"x\"}, {\"ref\": \"x\"}, "
        "{\"ref\": \"x\"}]},"
        "\"r3\": {\"op\": \"local.max\", \"args\": [{\"ref\": \"y\"}, {\"ref\": \"x\"}, 3]}"
        "}, \"result\": [\"r1\", \"r2\", \"r3\"]}");
    pg_fusion *fu = fusion_of(p, NULL);
    ck_assert_int_eq(pg_fusion_ngroups(fu), 3);
    expect_group(p, fu, "r1", "x", "a b c");
    expect_group(p, fu, "r2", "x", "a b d");
    expect_group(p, fu, "r3", "x y", "a b");
    pg_fusion_destroy(&fu);
    pg_plan_destroy(&p);
}
END_TEST

/* Nothing fuses into a focal op, a value op or io.save, nor across them;
 * their raster args root groups of their own. */
START_TEST(test_group_barriers)
{
    pg_plan *p = plan_of(
        "{\"nodes\": {" LEAVES4 ", "
        "\"x\": {\"op\": \"local.add\", \"args\": [{\"ref\": \"a\"}, {\"ref\": \"b\"}]},"
        "\"y\": {\"op\": \"local.multiply\", \"args\": [{\"ref\": \"x\"}, 2]},"
        "\"f\": {\"op\": \"focal.mean\", \"args\": [{\"ref\": \"y\"}]},"
        "\"z\": {\"op\": \"local.subtract\", \"args\": [{\"ref\": \"f\"}, {\"ref\": \"c\"}]},"
        "\"z2\": {\"op\": \"local.abs\", \"args\": [{\"ref\": \"z\"}]},"
        "\"s\": {\"op\": \"global.stats\", \"args\": [{\"ref\": \"z2\"}]},"
        "\"q\": {\"op\": \"local.sqrt\", \"args\": [{\"ref\": \"d\"}]}"
        "}, \"result\": [\"s\", \"q\"]}");
    pg_fusion *fu = fusion_of(p, NULL);
    ck_assert_int_eq(pg_fusion_ngroups(fu), 2);
    expect_group(p, fu, "y", "x", "a b");
    expect_group(p, fu, "z2", "z", "f c");
    ck_assert(!pg_fusion_is_fused(fu, node_index(p, "y")));
    ck_assert(!pg_fusion_is_fused(fu, node_index(p, "f")));
    ck_assert(!pg_fusion_is_fused(fu, node_index(p, "q"))); /* a result */
    ck_assert_ptr_null(pg_fusion_group(fu, node_index(p, "q")));
    ck_assert_ptr_null(pg_fusion_group(fu, node_index(p, "f")));
    pg_fusion_destroy(&fu);
    pg_plan_destroy(&p);
}
END_TEST

/* Multi-band rasters never fuse (a strip of rows is not contiguous). */
START_TEST(test_group_multiband)
{
    pg_plan *p = plan_of("{\"nodes\": {" CONST("a", "f32", ", \"bands\": 2") ", " CONST(
        "b", "f32", ", \"bands\": 2") ", "
                                      "\"x\": {\"op\": \"local.add\", \"args\": [{\"ref\": "
                                      "\"a\"}, {\"ref\": \"b\"}]},"
                                      "\"y\": {\"op\": \"local.multiply\", \"args\": "
                                      "[{\"ref\": \"x\"}, 2]}"
                                      "}, \"result\": \"y\"}");
    pg_fusion *fu = fusion_of(p, NULL);
    ck_assert_int_eq(pg_fusion_ngroups(fu), 0);
    ck_assert(!pg_fusion_is_fused(fu, node_index(p, "x")));
    pg_fusion_destroy(&fu);
    pg_plan_destroy(&p);
}
END_TEST

/* The flag is on exactly where it should be. */
START_TEST(test_flags)
{
    const char *yes[] = {"local.add",        "local.divide",   "local.where",
                         "local.gt",         "local.sqrt",     "local.convert",
                         "local.reclassify", "local.majority", "local.normalized_difference"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        ck_assert_msg(pg_op_find(yes[i])->elementwise, "%s", yes[i]);
    for (size_t i = 0; i < pg_op_count(); i++) {
        const pg_op_def *op = pg_op_at(i);
        if (strcmp(op->family, "local") != 0)
            ck_assert_msg(!op->elementwise, "%s should not be elementwise", op->name);
        if (op->elementwise)
            ck_assert_msg(op->result == PG_RESULT_RASTER && op->need == NULL, "%s", op->name);
    }
}
END_TEST

/* ---- byte-identical computing ---- */

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static uint64_t rnd(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return rng * 2685821657736338717ull;
}

static pg_tile *tile_new(pg_celltype t, pg_window w)
{
    pg_tile *tl = calloc(1, sizeof *tl);
    ck_assert_ptr_nonnull(tl);
    atomic_init(&tl->refs, 1);
    tl->type = t;
    tl->bands = 1;
    tl->win = w;
    tl->nbytes = (size_t)w.w * (size_t)w.h * pg_celltype_size(t);
    size_t alloc = (tl->nbytes + 63) / 64 * 64;
    tl->data = aligned_alloc(64, alloc ? alloc : 64);
    ck_assert_ptr_nonnull(tl->data);
    memset(tl->data, 0xA5, alloc ? alloc : 64); /* garbage: compute must write every cell */
    return tl;
}

static void tile_free(pg_tile *t)
{
    if (t == NULL) return;
    free(t->data);
    free(t);
}

/* Cells of a leaf: values around [-20, 300] with fractions for floats, the
 * type's extremes, its nodata value, and NaN in float types. */
static void fill(pg_tile *t, const pg_raster_info *ri)
{
    size_t n = (size_t)t->win.w * (size_t)t->win.h;
    for (size_t i = 0; i < n; i++) {
        unsigned r = (unsigned)(rnd() % 40);
        double v = (double)(int64_t)(rnd() % 321) - 20;
        if (pg_celltype_is_float(t->type)) v += (double)(rnd() % 1024) / 1024.0;
        if (r == 0) v = 0;
        if (r == 1) v = pg_celltype_is_float(t->type) ? NAN : pg_celltype_min(t->type);
        if (r == 2) v = pg_celltype_is_float(t->type) ? 1e30 : pg_celltype_max(t->type);
        if (r == 3 && ri->has_nodata) v = ri->nodata;
        if (!pg_celltype_is_float(t->type)) {
            if (v < pg_celltype_min(t->type)) v = pg_celltype_min(t->type);
            if (v > pg_celltype_max(t->type)) v = pg_celltype_max(t->type);
        }
        char *c = (char *)t->data + i * pg_celltype_size(t->type);
        switch (t->type) {
        case PG_U8:
            *(uint8_t *)c = (uint8_t)v;
            break;
        case PG_I8:
            *(int8_t *)c = (int8_t)v;
            break;
        case PG_U16:
            *(uint16_t *)(void *)c = (uint16_t)v;
            break;
        case PG_I16:
            *(int16_t *)(void *)c = (int16_t)v;
            break;
        case PG_U32:
            *(uint32_t *)(void *)c = (uint32_t)v;
            break;
        case PG_I32:
            *(int32_t *)(void *)c = (int32_t)v;
            break;
        case PG_F32:
            *(float *)(void *)c = (float)v;
            break;
        default:
            *(double *)(void *)c = v;
            break;
        }
    }
}

/* Every RASTER node's tile, unfused: constants filled at random, the
 * others by their own compute(). Returns plan->nnodes tiles (NULL for
 * non-raster nodes). */
static pg_tile **eval_unfused(const pg_plan *p)
{
    pg_tile **tiles = calloc((size_t)p->nnodes, sizeof *tiles);
    ck_assert_ptr_nonnull(tiles);
    for (int i = 0; i < p->nnodes; i++) {
        const pg_node *n = &p->nodes[i];
        if (n->op->result != PG_RESULT_RASTER) continue;
        pg_window w = {0, 0, n->info.width, n->info.height};
        tiles[i] = tile_new(n->info.type, w);
        if (strcmp(n->op->name, "raster.constant") == 0) {
            fill(tiles[i], &n->info);
            continue;
        }
        pg_tile *in[16] = {0};
        ck_assert_int_le(n->nargs, 16);
        for (int a = 0; a < n->nargs; a++)
            in[a] = n->args[a].node >= 0 ? tiles[n->args[a].node] : NULL;
        pg_error err = {0};
        int rc = n->op->compute(n, tiles[i], in, &err);
        ck_assert_msg(rc == 0, "%s: %s", n->name, err.message);
    }
    return tiles;
}

/* Every group of P (results materialized) computed fused with strips of
 * about CELLS cells equals the unfused root tile byte for byte. Returns the
 * number of groups checked. */
static int check_bytes(const pg_plan *p, const pg_fusion *fu, pg_tile **ref, size_t cells)
{
    int checked = 0;
    for (int r = 0; r < p->nnodes; r++) {
        const pg_fgroup *g = pg_fusion_group(fu, r);
        if (g == NULL) continue;
        pg_tile *leaves[64];
        ck_assert_int_le(pg_fgroup_nleaves(g), 64);
        for (int l = 0; l < pg_fgroup_nleaves(g); l++)
            leaves[l] = ref[pg_fgroup_leaf(g, l)->index];
        pg_tile *out = tile_new(ref[r]->type, ref[r]->win);
        pg_error err = {0};
        int rc = pg_fgroup_compute(g, out, leaves, &err);
        ck_assert_msg(rc == 0, "group %s: %s at %s", p->nodes[r].name, err.message, err.node);
        ck_assert_msg(memcmp(out->data, ref[r]->data, out->nbytes) == 0,
                      "group %s (strips of %zu cells): fused bytes differ from unfused",
                      p->nodes[r].name, cells);
        tile_free(out);
        checked++;
    }
    return checked;
}

#define LEAVES_MIX                                                                                 \
    CONST("a", "f32", ", \"nodata\": -9999")                                                       \
    ", " CONST("b", "u8", ", \"nodata\": 255") ", " CONST("c", "i16", "") ", " CONST(              \
        "d", "f64",                                                                                \
        ", \"nodata\": -1") ", " CONST("e", "u16",                                                 \
                                       ", \"nodata\": 0") ", " CONST("f", "i32",                   \
                                                                     "") ", " CONST("g", "f32",    \
                                                                                    "")

#define OP2(N, OP, X, Y) "\"" N "\": {\"op\": \"" OP "\", \"args\": [" X ", " Y "]}"
#define REF(N) "{\"ref\": \"" N "\"}"

/* Expressions over the mixed leaves; each is a list of nodes and a result. */
static const char *const exprs[][2] = {
    {WHERE_EXPR, "\"w\""},
    /* promotion: u8 + i16 -> i32, then f32, divide with integer types */
    {OP2("x", "local.add", REF("b"), REF("c")) "," OP2(
         "y", "local.divide", REF("x"), REF("e")) "," OP2("z", "local.multiply", REF("y"),
                                                          REF("a")) "," OP2("r", "local.subtract",
                                                                            REF("z"), "1.5"),
     "\"r\""},
    /* comparisons and logic feeding where, numbers as args */
    {OP2("c1", "local.gt", REF("b"), "100") "," OP2("c2", "local.le", REF("c"), REF("f")) "," OP2(
         "c3", "local.and", REF("c1"),
         REF("c2")) "," OP2("s", "local.add", REF("d"),
                            REF("a")) ","
                                      "\"r\": {\"op\": \"local.where\", \"args\": "
                                      "[" REF("c3") ", " REF("s") ", " REF("g") "]}",
     "\"r\""},
    /* float functions, value ops, n-ary with numbers */
    {"\"s\": {\"op\": \"local.subtract\", \"args\": [" REF("a") ", " REF(
         "d") "]},"
              "\"ab\": {\"op\": \"local.abs\", \"args\": [" REF(
                  "s") "]},"
                       "\"q\": {\"op\": \"local.sqrt\", \"args\": [" REF(
                           "ab") "]},"
                                 "\"m\": {\"op\": \"local.max\", \"args\": [" REF("q") ", " REF(
                                     "b") ", 3]},"
                                          "\"me\": {\"op\": \"local.mean\", \"args\": [" REF(
                                              "m") ", " REF("c") ", " REF("e") ", 2]},"
                                                                               "\"r\": {\"op\": "
                                                                               "\"local.floor\", "
                                                                               "\"args\": [" REF(
                                                                                   "me") "]}",
     "\"r\""},
    /* conversion and classes */
    {"\"x\": {\"op\": \"local.multiply\", \"args\": [" REF(
         "g") ", 0.25]},"
              "\"cl\": {\"op\": \"local.clamp\", \"args\": [" REF(
                  "x") "], \"min\": 0, \"max\": 50},"
                       "\"cv\": {\"op\": \"local.convert\", \"args\": [" REF(
                           "cl") "], \"type\": \"u8\"},"
                                 "\"rc\": {\"op\": \"local.reclassify\", \"args\": [" REF(
                                     "cv") "], \"classes\": [[null, 10, "
                                           "1], [10, 30, 2], [30, null, 3]]},"
                                           "\"nd\": {\"op\": \"local.normalized_difference\", "
                                           "\"args\": [" REF("rc") ", " REF(
                                               "b") "]},"
                                                    "\"mk\": {\"op\": \"local.mask\", \"args\": "
                                                    "[" REF("nd") ", " REF(
                                                        "c") "]},"
                                                             "\"r\": {\"op\": \"local.majority\", "
                                                             "\"args\": [" REF("mk") ", " REF(
                                                                 "a") ", " REF("g") "]}",
     "\"r\""},
    /* bitwise, defined, with an intermediate result and a shared node */
    {"\"x\": {\"op\": \"local.bitand\", \"args\": [" REF("b") ", " REF(
         "c") "]},"
              "\"y\": {\"op\": \"local.shl\", \"args\": [" REF(
                  "x") ", 2]},"
                       "\"dd\": {\"op\": \"local.defined\", \"args\": [" REF(
                           "a") "]},"
                                "\"z\": {\"op\": \"local.add\", \"args\": [" REF("y") ", " REF(
                                    "dd") ", " REF("x") "]},"
                                                        "\"r\": {\"op\": \"local.negate\", "
                                                        "\"args\": [" REF("z") "]}",
     "[\"r\", \"y\"]"},
};

START_TEST(test_bytes)
{
    char graph[8192];
    snprintf(graph, sizeof graph, "{\"nodes\": {" LEAVES_MIX ", %s}, \"result\": %s}", exprs[_i][0],
             exprs[_i][1]);
    pg_plan *p = plan_of(graph);
    pg_fusion *fu = fusion_of(p, NULL);
    ck_assert_int_ge(pg_fusion_ngroups(fu), 1);
    for (int rep = 0; rep < 4; rep++) {
        pg_tile **ref = eval_unfused(p);
        /* one row, 3 rows (23 = 7 * 3 + 2: a short last strip), the whole tile */
        const size_t cells[] = {1, 37 * 3, 100000};
        for (size_t c = 0; c < sizeof cells / sizeof cells[0]; c++) {
            pg_fusion_set_strip_cells(fu, cells[c]);
            ck_assert_int_eq(check_bytes(p, fu, ref, cells[c]), pg_fusion_ngroups(fu));
        }
        for (int i = 0; i < p->nnodes; i++)
            tile_free(ref[i]);
        free(ref);
    }
    pg_fusion_destroy(&fu);
    pg_plan_destroy(&p);
}
END_TEST

/* A member's error names the member; tiles that do not match are refused. */
START_TEST(test_errors)
{
    pg_plan *p = plan_of("{\"nodes\": {" LEAVES4 ", " WHERE_EXPR "}, \"result\": \"w\"}");
    pg_fusion *fu = fusion_of(p, NULL);
    const pg_fgroup *g = pg_fusion_group(fu, node_index(p, "w"));
    ck_assert_ptr_nonnull(g);
    pg_window w = {0, 0, 37, 23};
    pg_tile *leaves[4];
    for (int l = 0; l < 4; l++) {
        leaves[l] = tile_new(PG_F32, w);
        fill(leaves[l], &pg_fgroup_leaf(g, l)->info);
    }
    pg_tile *out = tile_new(PG_F32, w);
    pg_error err = {0};
    /* a leaf of the wrong type */
    leaves[2]->type = PG_F64;
    ck_assert_int_eq(pg_fgroup_compute(g, out, leaves, &err), PG_EINTERNAL);
    ck_assert_str_eq(err.node, "w");
    ck_assert_msg(strstr(err.message, "'c'") != NULL, "%s", err.message);
    leaves[2]->type = PG_F32;
    /* a wrong output type */
    memset(&err, 0, sizeof err);
    out->type = PG_U8;
    ck_assert_int_eq(pg_fgroup_compute(g, out, leaves, &err), PG_EINTERNAL);
    out->type = PG_F32;
    ck_assert_int_eq(pg_fgroup_compute(g, out, leaves, &err), 0);
    for (int l = 0; l < 4; l++)
        tile_free(leaves[l]);
    tile_free(out);
    pg_fusion_destroy(&fu);
    pg_plan_destroy(&p);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("fuse");
    TCase *tc = tcase_create("fuse");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_group_where);
    tcase_add_test(tc, test_group_materialized);
    tcase_add_test(tc, test_group_shared);
    tcase_add_test(tc, test_group_barriers);
    tcase_add_test(tc, test_group_multiband);
    tcase_add_test(tc, test_flags);
    tcase_add_loop_test(tc, test_bytes, 0, (int)(sizeof exprs / sizeof exprs[0]));
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
