/* Unit tests for the graph planner (src/graph.c) and the op registry
 * (ops/registry.c).
 *
 * The planner is driven through pg_plan_build_with and a small table of
 * test ops ("t.*") that exercise every rule, so that these tests do not
 * depend on which real ops exist. The registry tests check the `ops`
 * description of whatever real ops are linked in.
 */
#include "graph.h"
#include "ops/registry.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- test ops ---- */

static int t_state_frees;

static void t_set_info(pg_node *n, int64_t w, int64_t h)
{
    n->info.width = w;
    n->info.height = h;
    n->info.bands = 1;
    n->info.type = PG_F32;
    n->info.crs_wkt = strdup("EPSG:4326");
}

/* A source: a w x h raster, and a state freed by plain free(). */
static int t_src_plan(pg_node *n, const pg_plan_env *env, pg_error *err)
{
    (void)env;
    (void)err;
    t_set_info(n, pg_param_int(n, "width"), pg_param_int(n, "height"));
    n->state = malloc(16);
    return n->state != NULL ? 0 : PG_ENOMEM;
}

static int t_fail_plan(pg_node *n, const pg_plan_env *env, pg_error *err)
{
    (void)n;
    (void)env;
    return pg_error_set(err, PG_EFORMAT, "cannot read the test file");
}

/* Fails without filling ERR: the planner must still report something. */
static int t_mute_plan(pg_node *n, const pg_plan_env *env, pg_error *err)
{
    (void)n;
    (void)env;
    (void)err;
    return PG_EIO;
}

static void t_state_free(pg_node *n)
{
    t_state_frees++;
    free(n->state);
}

static int t_state_plan(pg_node *n, const pg_plan_env *env, pg_error *err)
{
    (void)env;
    (void)err;
    t_set_info(n, 2, 2);
    n->state = malloc(8);
    return n->state != NULL ? 0 : PG_ENOMEM;
}

static int t_params_plan(pg_node *n, const pg_plan_env *env, pg_error *err)
{
    (void)env;
    (void)err;
    t_set_info(n, 1, 1);
    return 0;
}

static const pg_param_def t_src_params[] = {
    {"width", PG_PARAM_INT, false, "4", "columns", 1, 1e12},
    {"height", PG_PARAM_INT, false, "3", "rows", 1, 1e12},
    {NULL, 0, false, NULL, NULL, 0, 0},
};

static const pg_param_def t_save_params[] = {
    {"path", PG_PARAM_STRING, true, NULL, "where to write", 0, 0},
    {NULL, 0, false, NULL, NULL, 0, 0},
};

static const pg_param_def t_params_params[] = {
    {"label", PG_PARAM_STRING, true, NULL, "a required string", 0, 0},
    {"scale", PG_PARAM_NUMBER, false, "1.5", "a number >= 0", 0, INFINITY},
    {"count", PG_PARAM_INT, false, "3", "an integer in [1, 10]", 1, 10},
    {"flag", PG_PARAM_BOOL, false, "false", "a boolean", 0, 0},
    {"type", PG_PARAM_CELLTYPE, false, "\"f32\"", "a cell type", 0, 0},
    {"extra", PG_PARAM_JSON, false, NULL, "anything", 0, 0},
    {"ratio", PG_PARAM_NUMBER, false, NULL, "in [-1, 1]", -1, 1},
    {"offset", PG_PARAM_NUMBER, false, NULL, "<= 0", -INFINITY, 0},
    {NULL, 0, false, NULL, NULL, 0, 0},
};

#define T_OP(nm, lo, hi, kinds, ps, res, pl)                                                       \
    {                                                                                              \
        .name = nm, .family = "t", .doc = "a test op", .example = "{\"op\": \"" nm "\"}",          \
        .min_args = lo, .max_args = hi, .arg_kinds = kinds, .params = ps, .result = res,           \
        .plan = pl                                                                                 \
    }

static const pg_op_def t_ops[] = {
    T_OP("t.src", 0, 0, 0, t_src_params, PG_RESULT_RASTER, t_src_plan),
    T_OP("t.add", 2, 2, PG_ARGK_RASTER | PG_ARGK_NUMBER, NULL, PG_RESULT_RASTER, NULL),
    T_OP("t.sum", 1, -1, PG_ARGK_RASTER | PG_ARGK_NUMBER, NULL, PG_RESULT_RASTER, NULL),
    T_OP("t.pick", 1, 3, PG_ARGK_RASTER, NULL, PG_RESULT_RASTER, NULL),
    T_OP("t.neg", 1, 1, PG_ARGK_RASTER, NULL, PG_RESULT_RASTER, NULL),
    T_OP("t.const", 1, 1, PG_ARGK_NUMBER, t_src_params, PG_RESULT_RASTER, t_src_plan),
    T_OP("t.stats", 1, 1, PG_ARGK_RASTER, NULL, PG_RESULT_VALUE, NULL),
    T_OP("t.save", 1, 1, PG_ARGK_RASTER, t_save_params, PG_RESULT_SINK, NULL),
    T_OP("t.params", 0, 0, 0, t_params_params, PG_RESULT_RASTER, t_params_plan),
    T_OP("t.fail", 0, 0, 0, NULL, PG_RESULT_RASTER, t_fail_plan),
    T_OP("t.mute", 0, 0, 0, NULL, PG_RESULT_RASTER, t_mute_plan),
    {.name = "t.state",
     .family = "t",
     .doc = "a source with a state",
     .example = "{\"op\": \"t.state\"}",
     .result = PG_RESULT_RASTER,
     .plan = t_state_plan,
     .free_state = t_state_free},
    {.name = NULL},
};

static const pg_op_def *t_find(const char *name)
{
    for (const pg_op_def *op = t_ops; op->name != NULL; op++)
        if (strcmp(op->name, name) == 0) return op;
    return NULL;
}

static size_t t_count(void)
{
    return PG_ARRAY_SIZE(t_ops) - 1;
}

static const pg_op_def *t_at(size_t i)
{
    return i < t_count() ? &t_ops[i] : NULL;
}

static const pg_op_lookup t_lookup = {t_find, t_count, t_at};

static pg_plan_env t_env = {.data_root = "/tmp",
                            .max_nodes = 1000,
                            .max_depth = 64,
                            .max_cells = 1000000,
                            .tile_w = 256,
                            .tile_h = 256};

/* ---- helpers ---- */

static json_t *t_json(const char *text)
{
    json_error_t je;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &je);
    ck_assert_msg(v != NULL, "bad test JSON (%s): %s", je.text, text);
    return v;
}

/* Plans TEXT with ENV; asserts success and returns the plan. */
static pg_plan *t_plan_env(const char *text, const pg_plan_env *env)
{
    json_t *g = t_json(text);
    pg_plan *p = NULL;
    pg_error err;
    int rc = pg_plan_build_with(g, env, &t_lookup, &p, &err);
    ck_assert_msg(rc == 0, "plan failed: %s (%s) at '%s' for %s", err.message,
                  pg_err_name(err.code), err.node, text);
    ck_assert_ptr_nonnull(p);
    json_decref(g);
    return p;
}

static pg_plan *t_plan(const char *text)
{
    return t_plan_env(text, &t_env);
}

/* Plans TEXT with ENV; asserts it fails with CODE at NODE, and that the
 * message contains PART (if not NULL). */
static void t_fail_env(const char *text, const pg_plan_env *env, int code, const char *node,
                       const char *part)
{
    json_t *g = t_json(text);
    pg_plan *p = (pg_plan *)&p; /* must be reset to NULL */
    pg_error err;
    int rc = pg_plan_build_with(g, env, &t_lookup, &p, &err);
    ck_assert_msg(rc == code, "expected %s, got %s (%s) for %s", pg_err_name(code), pg_err_name(rc),
                  err.message, text);
    ck_assert_int_eq(err.code, code);
    ck_assert_ptr_null(p);
    ck_assert_str_eq(err.node, node);
    ck_assert_msg(err.message[0] != '\0', "empty message");
    if (part != NULL)
        ck_assert_msg(strstr(err.message, part) != NULL, "message '%s' lacks '%s'", err.message,
                      part);
    json_decref(g);
}

static void t_fail(const char *text, int code, const char *node, const char *part)
{
    t_fail_env(text, &t_env, code, node, part);
}

static const pg_node *t_node(const pg_plan *p, const char *name)
{
    for (int k = 0; k < p->nnodes; k++)
        if (strcmp(p->nodes[k].name, name) == 0) return &p->nodes[k];
    ck_abort_msg("no node '%s' in the plan", name);
    return NULL;
}

/* Every plan must be topologically ordered with consistent arg links. */
static void t_check_plan_shape(const pg_plan *p)
{
    for (int k = 0; k < p->nnodes; k++) {
        const pg_node *n = &p->nodes[k];
        ck_assert_int_eq(n->index, k);
        ck_assert_ptr_nonnull(n->params);
        for (int a = 0; a < n->nargs; a++) {
            if (n->args[a].node < 0) {
                ck_assert_ptr_null(n->args[a].ref);
                continue;
            }
            ck_assert_int_lt(n->args[a].node, k);
            ck_assert_ptr_eq(n->args[a].ref, &p->nodes[n->args[a].node]);
        }
    }
    for (int r = 0; r < p->nresults; r++) {
        ck_assert_int_ge(p->results[r], 0);
        ck_assert_int_lt(p->results[r], p->nnodes);
    }
}

/* ---- shape (check 1) ---- */

START_TEST(test_bad_shape)
{
    t_fail("\"nodes\"", PG_EBADREQ, "", "object");
    t_fail("{}", PG_EBADREQ, "", "'nodes'");
    t_fail("{\"nodes\": [1]}", PG_EBADREQ, "", "'nodes'");
    t_fail("{\"nodes\": {}}", PG_EBADREQ, "", "empty");
    t_fail("{\"nodes\": {\"a\": 5}}", PG_EBADREQ, "a", "object");
    t_fail("{\"nodes\": {\"a\": {\"op\": \"t.src\"}, \"b\": {\"args\": []}}}", PG_EBADREQ, "b",
           "'op'");
    t_fail("{\"nodes\": {\"a\": {\"op\": 7}}}", PG_EBADREQ, "a", "'op'");
    /* An inline node is named after its place in its parent. */
    t_fail("{\"nodes\": {\"out\": {\"op\": \"t.neg\", \"args\": [{\"op\": 7}]}}}", PG_EBADREQ,
           "out.args[0]", "'op'");
}
END_TEST

START_TEST(test_unknown_op)
{
    t_fail("{\"nodes\": {\"a\": {\"op\": \"t.ad\"}}}", PG_EUNKNOWNOP, "a",
           "unknown op 't.ad'; did you mean 't.add'?");
    /* A swap of two letters is one edit. */
    t_fail("{\"nodes\": {\"a\": {\"op\": \"t.nge\"}}}", PG_EUNKNOWNOP, "a",
           "did you mean 't.neg'?");
    json_t *g = t_json("{\"nodes\": {\"a\": {\"op\": \"nothing.like.it\"}}}");
    pg_plan *p = NULL;
    pg_error err;
    ck_assert_int_eq(pg_plan_build_with(g, &t_env, &t_lookup, &p, &err), PG_EUNKNOWNOP);
    ck_assert_str_eq(err.message, "unknown op 'nothing.like.it'");
    json_decref(g);
    /* Nested inline nodes get nested names. */
    t_fail("{\"nodes\": {\"out\": {\"op\": \"t.save\", \"path\": \"x\", \"args\": [{\"op\": "
           "\"t.add\", \"args\": [1, {\"op\": \"t.srcc\"}]}]}}}",
           PG_EUNKNOWNOP, "out.args[0].args[1]", "did you mean 't.src'?");
}
END_TEST

/* ---- node count (check 2) ---- */

START_TEST(test_too_many_nodes)
{
    pg_plan_env env = t_env;
    env.max_nodes = 3;
    const char *g = "{\"nodes\": {\"a\": {\"op\": \"t.src\"}, \"s\": {\"op\": \"t.add\", "
                    "\"args\": [{\"ref\": \"a\"}, {\"op\": \"t.neg\", \"args\": [{\"op\": "
                    "\"t.src\"}]}]}}}";
    /* 2 named + 2 inline = 4 nodes. */
    t_fail_env(g, &env, PG_ENODES, "", "4 nodes");
    env.max_nodes = 4;
    pg_plan *p = t_plan_env(g, &env);
    ck_assert_int_eq(p->nnodes, 4);
    pg_plan_destroy(&p);
    ck_assert_ptr_null(p);
}
END_TEST

/* ---- args (check 3) ---- */

START_TEST(test_bad_args)
{
    const char *pre = "{\"nodes\": {\"a\": {\"op\": \"t.src\"}, \"s\": {\"op\": \"t.sum\", ";
    char g[512];
    const char *bad[] = {
        "\"args\": {\"ref\": \"a\"}}}}",
        "\"args\": [\"a\"]}}}",
        "\"args\": [true]}}}",
        "\"args\": [null]}}}",
        "\"args\": [[1]]}}}",
        "\"args\": [{\"ref\": \"a\", \"op\": \"t.src\"}]}}}",
        "\"args\": [{\"x\": 1}]}}}",
        "\"args\": [{\"ref\": 5}]}}}",
        "\"args\": [{\"ref\": \"a\", \"extra\": 1}]}}}",
    };
    for (size_t i = 0; i < PG_ARRAY_SIZE(bad); i++) {
        snprintf(g, sizeof g, "%s%s", pre, bad[i]);
        t_fail(g, PG_ETYPE, "s", NULL);
    }
    snprintf(g, sizeof g, "%s%s", pre, "\"args\": [{\"ref\": \"a\"}, {\"ref\": \"nope\"}]}}}");
    t_fail(g, PG_EREF, "s", "'nope'");
    /* The referring node is named, also when it is inline. */
    t_fail("{\"nodes\": {\"out\": {\"op\": \"t.neg\", \"args\": [{\"op\": \"t.neg\", \"args\": "
           "[{\"ref\": \"gone\"}]}]}}}",
           PG_EREF, "out.args[0]", "'gone'");
    /* Bad args are reported before arity (check 3 before check 4). */
    t_fail("{\"nodes\": {\"a\": {\"op\": \"t.neg\", \"args\": [1, 2, \"x\"]}}}", PG_ETYPE, "a",
           "arg 2");
}
END_TEST

/* ---- arity and kinds (check 4) ---- */

START_TEST(test_arity)
{
    t_fail("{\"nodes\": {\"a\": {\"op\": \"t.add\", \"args\": [1, 2, 3]}}}", PG_EARITY, "a",
           "t.add takes 2 args, got 3");
    t_fail("{\"nodes\": {\"a\": {\"op\": \"t.sum\"}}}", PG_EARITY, "a",
           "t.sum takes at least 1 arg, got 0");
    t_fail("{\"nodes\": {\"a\": {\"op\": \"t.neg\", \"args\": []}}}", PG_EARITY, "a",
           "t.neg takes 1 arg, got 0");
    t_fail("{\"nodes\": {\"a\": {\"op\": \"t.src\", \"args\": [1]}}}", PG_EARITY, "a",
           "t.src takes no args, got 1");
    t_fail(
        "{\"nodes\": {\"s\": {\"op\": \"t.src\"}, \"a\": {\"op\": \"t.pick\", \"args\": [{\"ref\": "
        "\"s\"}, {\"ref\": \"s\"}, {\"ref\": \"s\"}, {\"ref\": \"s\"}]}}}",
        PG_EARITY, "a", "t.pick takes 1 to 3 args, got 4");
}
END_TEST

START_TEST(test_arg_kinds)
{
    /* A number where only rasters are taken. */
    t_fail("{\"nodes\": {\"a\": {\"op\": \"t.neg\", \"args\": [2.5]}}}", PG_ETYPE, "a", "number");
    /* A value or a sink where a raster is needed. */
    t_fail("{\"nodes\": {\"s\": {\"op\": \"t.src\"}, \"v\": {\"op\": \"t.stats\", \"args\": "
           "[{\"ref\": \"s\"}]}, \"a\": {\"op\": \"t.neg\", \"args\": [{\"ref\": \"v\"}]}}}",
           PG_ETYPE, "a", "'v' (t.stats) returns a value");
    t_fail("{\"nodes\": {\"s\": {\"op\": \"t.src\"}, \"w\": {\"op\": \"t.save\", \"path\": \"x\", "
           "\"args\": [{\"ref\": \"s\"}]}, \"a\": {\"op\": \"t.add\", \"args\": [1, {\"ref\": "
           "\"w\"}]}}}",
           PG_ETYPE, "a", "'w'");
    /* Inline value nodes too. */
    t_fail("{\"nodes\": {\"a\": {\"op\": \"t.neg\", \"args\": [{\"op\": \"t.stats\", \"args\": "
           "[{\"op\": \"t.src\"}]}]}}}",
           PG_ETYPE, "a", "'a.args[0]'");
    /* A raster where only numbers are taken. */
    t_fail("{\"nodes\": {\"s\": {\"op\": \"t.src\"}, \"a\": {\"op\": \"t.const\", \"args\": "
           "[{\"ref\": \"s\"}]}}}",
           PG_ETYPE, "a", "must be a number");
    pg_plan *p = t_plan("{\"nodes\": {\"a\": {\"op\": \"t.const\", \"args\": [7]}}}");
    ck_assert_int_eq(p->nodes[0].args[0].node, -1);
    ck_assert(p->nodes[0].args[0].number == 7.0);
    pg_plan_destroy(&p);
}
END_TEST

/* ---- params (check 5) ---- */

#define T_PARAMS(extra) "{\"nodes\": {\"p\": {\"op\": \"t.params\", \"label\": \"x\"" extra "}}}"

START_TEST(test_unknown_param)
{
    t_fail(T_PARAMS(", \"scael\": 2"), PG_EUNKNOWNPARAM, "p",
           "unknown param 'scael' for t.params; did you mean 'scale'?");
    t_fail(T_PARAMS(", \"zzzzzzzz\": 2"), PG_EUNKNOWNPARAM, "p", "label, scale, count");
    t_fail("{\"nodes\": {\"a\": {\"op\": \"t.neg\", \"args\": [{\"op\": \"t.src\", \"widht\": "
           "3}]}}}",
           PG_EUNKNOWNPARAM, "a.args[0]", "did you mean 'width'?");
    t_fail("{\"nodes\": {\"a\": {\"op\": \"t.fail\", \"radius\": 3}}}", PG_EUNKNOWNPARAM, "a",
           "takes no params");
    /* Reserved node keys are not params. */
    pg_plan *p = t_plan(T_PARAMS(", \"id\": 4, \"comment\": \"hi\", \"remote\": true"));
    ck_assert_ptr_null(json_object_get(p->nodes[0].params, "remote"));
    ck_assert_ptr_null(json_object_get(p->nodes[0].params, "id"));
    pg_plan_destroy(&p);
    p = t_plan(T_PARAMS(", \"remote\": \"peer-1\""));
    pg_plan_destroy(&p);
    p = t_plan(T_PARAMS(", \"remote\": false"));
    pg_plan_destroy(&p);
    t_fail(T_PARAMS(", \"remote\": 3"), PG_EPARAM, "p", "'remote'");
}
END_TEST

START_TEST(test_bad_param)
{
    t_fail("{\"nodes\": {\"p\": {\"op\": \"t.params\"}}}", PG_EPARAM, "p",
           "param 'label' is required");
    t_fail("{\"nodes\": {\"p\": {\"op\": \"t.params\", \"label\": 3}}}", PG_EPARAM, "p",
           "param 'label' must be a string");
    t_fail(T_PARAMS(", \"scale\": \"2\""), PG_EPARAM, "p", "param 'scale' must be a number");
    t_fail(T_PARAMS(", \"scale\": -0.5"), PG_EPARAM, "p", "param 'scale' must be a number >= 0");
    t_fail(T_PARAMS(", \"count\": 2.5"), PG_EPARAM, "p", "param 'count' must be an integer");
    t_fail(T_PARAMS(", \"count\": true"), PG_EPARAM, "p", "param 'count' must be an integer");
    t_fail(T_PARAMS(", \"count\": 1e30"), PG_EPARAM, "p", "param 'count' must be an integer");
    t_fail(T_PARAMS(", \"count\": 11"), PG_EPARAM, "p",
           "param 'count' must be an integer between 1 and 10");
    t_fail(T_PARAMS(", \"count\": 0"), PG_EPARAM, "p", "between 1 and 10");
    t_fail(T_PARAMS(", \"flag\": \"yes\""), PG_EPARAM, "p", "param 'flag' must be a boolean");
    t_fail(T_PARAMS(", \"flag\": 1"), PG_EPARAM, "p", "param 'flag' must be a boolean");
    t_fail(T_PARAMS(", \"type\": \"f16\""), PG_EPARAM, "p", "param 'type' must be a cell type");
    t_fail(T_PARAMS(", \"type\": 8"), PG_EPARAM, "p", "param 'type'");
    t_fail(T_PARAMS(", \"ratio\": 1.5"), PG_EPARAM, "p",
           "param 'ratio' must be a number between -1 and 1");
    t_fail(T_PARAMS(", \"offset\": 0.25"), PG_EPARAM, "p", "param 'offset' must be a number <= 0");
    t_fail(T_PARAMS(", \"label\": null"), PG_EPARAM, "p", "param 'label' must be a string");
    /* Unknown keys are found before bad values (in the node's key order). */
    t_fail(T_PARAMS(", \"scale\": \"bad\", \"nope\": 1"), PG_EUNKNOWNPARAM, "p", "'nope'");
}
END_TEST

START_TEST(test_param_defaults)
{
    pg_plan *p = t_plan(T_PARAMS(""));
    json_t *got = p->nodes[0].params;
    json_t *want = t_json(
        "{\"label\": \"x\", \"scale\": 1.5, \"count\": 3, \"flag\": false, \"type\": \"f32\"}");
    ck_assert_msg(json_equal(got, want), "params: %s", json_dumps(got, JSON_COMPACT));
    ck_assert(pg_param_num(&p->nodes[0], "scale") == 1.5);
    ck_assert_int_eq(pg_param_int(&p->nodes[0], "count"), 3);
    ck_assert_int_eq(pg_param_bool(&p->nodes[0], "flag"), 0);
    ck_assert_str_eq(pg_param_str(&p->nodes[0], "type"), "f32");
    ck_assert(!pg_param_has(&p->nodes[0], "extra"));
    ck_assert(!pg_param_has(&p->nodes[0], "ratio"));
    json_decref(want);
    pg_plan_destroy(&p);

    /* Given values win; an integral real becomes an integer; the params
     * are a new object, independent of the request. */
    json_t *g = t_json(T_PARAMS(", \"count\": 10.0, \"flag\": true, \"type\": \"u16\", "
                                "\"extra\": {\"k\": [1, 2]}, \"ratio\": -1, \"scale\": 0"));
    pg_error err;
    ck_assert_int_eq(pg_plan_build_with(g, &t_env, &t_lookup, &p, &err), 0);
    json_t *node = json_object_get(json_object_get(g, "nodes"), "p");
    got = p->nodes[0].params;
    ck_assert_ptr_ne(got, node);
    ck_assert_ptr_ne(json_object_get(got, "extra"), json_object_get(node, "extra"));
    json_object_set_new(json_object_get(node, "extra"), "k", json_string("changed"));
    json_object_set_new(node, "label", json_string("changed"));
    want = t_json("{\"label\": \"x\", \"scale\": 0, \"count\": 10, \"flag\": true, \"type\": "
                  "\"u16\", \"extra\": {\"k\": [1, 2]}, \"ratio\": -1}");
    ck_assert_msg(json_equal(got, want), "params: %s", json_dumps(got, JSON_COMPACT));
    ck_assert(json_is_integer(json_object_get(got, "count")));
    ck_assert_int_eq(pg_param_int(&p->nodes[0], "count"), 10);
    ck_assert_int_eq(pg_param_bool(&p->nodes[0], "flag"), 1);
    json_decref(want);
    json_decref(g);
    pg_plan_destroy(&p);
}
END_TEST

/* ---- cycles and depth (check 6) ---- */

START_TEST(test_cycles)
{
    t_fail("{\"nodes\": {\"a\": {\"op\": \"t.neg\", \"args\": [{\"ref\": \"b\"}]}, \"b\": {\"op\": "
           "\"t.neg\", \"args\": [{\"ref\": \"c\"}]}, \"c\": {\"op\": \"t.neg\", \"args\": "
           "[{\"ref\": \"a\"}]}}, \"result\": \"a\"}",
           PG_ECYCLE, "a", "a -> b -> c -> a");
    t_fail("{\"nodes\": {\"a\": {\"op\": \"t.add\", \"args\": [1, {\"ref\": \"a\"}]}}}", PG_ECYCLE,
           "a", "a -> a");
    /* Through an inline node. */
    t_fail("{\"nodes\": {\"a\": {\"op\": \"t.neg\", \"args\": [{\"op\": \"t.neg\", \"args\": "
           "[{\"ref\": \"a\"}]}]}}}",
           PG_ECYCLE, "a", "a -> a.args[0] -> a");
    /* A cycle among nodes the result does not reach is still an error. */
    t_fail("{\"nodes\": {\"s\": {\"op\": \"t.src\"}, \"x\": {\"op\": \"t.neg\", \"args\": "
           "[{\"ref\": \"y\"}]}, \"y\": {\"op\": \"t.neg\", \"args\": [{\"ref\": \"x\"}]}}, "
           "\"result\": \"s\"}",
           PG_ECYCLE, "x", "x -> y -> x");
}
END_TEST

/* A chain n0 -> n1 -> ... -> n(len-1) (a source), result n0. */
static char *t_chain(int len)
{
    size_t size = (size_t)len * 64 + 64;
    char *s = malloc(size);
    ck_assert_ptr_nonnull(s);
    size_t at = (size_t)snprintf(s, size, "{\"nodes\": {");
    for (int i = 0; i < len; i++) {
        if (i == len - 1)
            at += (size_t)snprintf(s + at, size - at, "\"n%d\": {\"op\": \"t.src\"}", i);
        else
            at += (size_t)snprintf(s + at, size - at,
                                   "\"n%d\": {\"op\": \"t.neg\", \"args\": [{\"ref\": \"n%d\"}]},",
                                   i, i + 1);
    }
    snprintf(s + at, size - at, "}, \"result\": \"n0\"}");
    return s;
}

START_TEST(test_depth)
{
    pg_plan_env env = t_env;
    env.max_nodes = 200000;
    env.max_depth = 64;
    char *g = t_chain(64);
    pg_plan *p = t_plan_env(g, &env);
    ck_assert_int_eq(p->nnodes, 64);
    pg_plan_destroy(&p);
    free(g);
    g = t_chain(65);
    t_fail_env(g, &env, PG_EDEPTH, "n0", "65 nodes deep");
    free(g);

    /* Inline nesting counts: 4 levels with a limit of 3. */
    env.max_depth = 3;
    const char *nested = "{\"nodes\": {\"a\": {\"op\": \"t.neg\", \"args\": [{\"op\": \"t.neg\", "
                         "\"args\": [{\"op\": \"t.neg\", \"args\": [{\"op\": \"t.src\"}]}]}]}}}";
    t_fail_env(nested, &env, PG_EDEPTH, "a", "4 nodes deep");
    env.max_depth = 4;
    p = t_plan_env(nested, &env);
    ck_assert_str_eq(p->nodes[0].name, "a.args[0].args[0].args[0]");
    ck_assert_str_eq(p->nodes[3].name, "a");
    pg_plan_destroy(&p);
}
END_TEST

START_TEST(test_hostile_chain)
{
    /* 100000 chained refs: no recursion may follow them. */
    pg_plan_env env = t_env;
    env.max_nodes = 200000;
    env.max_depth = 64;
    char *g = t_chain(100000);
    t_fail_env(g, &env, PG_EDEPTH, "n0", "100000 nodes deep");
    /* With no depth limit the same graph plans, args first. */
    env.max_depth = 0;
    pg_plan *p = t_plan_env(g, &env);
    ck_assert_int_eq(p->nnodes, 100000);
    ck_assert_str_eq(p->nodes[0].name, "n99999");
    ck_assert_str_eq(p->nodes[99999].name, "n0");
    ck_assert_int_eq(p->results[0], 99999);
    ck_assert_int_eq(p->nodes[99999].args[0].node, 99998);
    ck_assert_int_eq(p->nodes[99999].info.width, 4);
    pg_plan_destroy(&p);
    free(g);

    /* A 100000-node cycle: found, message bounded. */
    size_t size = 100000 * 64 + 64, at = 0;
    char *c = malloc(size);
    ck_assert_ptr_nonnull(c);
    at += (size_t)snprintf(c, size, "{\"nodes\": {");
    for (int i = 0; i < 100000; i++)
        at += (size_t)snprintf(c + at, size - at,
                               "%s\"n%d\": {\"op\": \"t.neg\", \"args\": [{\"ref\": \"n%d\"}]}",
                               i ? "," : "", i, (i + 1) % 100000);
    snprintf(c + at, size - at, "}, \"result\": \"n0\"}");
    t_fail_env(c, &env, PG_ECYCLE, "n0", "n0 -> n1 -> n2");
    free(c);
}
END_TEST

/* ---- results (check 7) ---- */

#define T_TWO "\"a\": {\"op\": \"t.src\"}, \"b\": {\"op\": \"t.neg\", \"args\": [{\"ref\": \"a\"}]}"

START_TEST(test_results)
{
    /* No "result": the one node nothing uses. */
    pg_plan *p = t_plan("{\"nodes\": {" T_TWO "}}");
    ck_assert_int_eq(p->nresults, 1);
    ck_assert_int_eq(p->results_list, 0);
    ck_assert_str_eq(p->nodes[p->results[0]].name, "b");
    pg_plan_destroy(&p);
    t_fail("{\"nodes\": {" T_TWO ", \"c\": {\"op\": \"t.src\"}}}", PG_EBADREQ, "",
           "'result' is required");
    t_fail("{\"nodes\": {" T_TWO "}, \"result\": \"z\"}", PG_EREF, "", "'z'");
    t_fail("{\"nodes\": {" T_TWO "}, \"result\": 3}", PG_EBADREQ, "", "'result'");
    t_fail("{\"nodes\": {" T_TWO "}, \"result\": []}", PG_EBADREQ, "", "empty");
    t_fail("{\"nodes\": {" T_TWO "}, \"result\": [\"a\", 1]}", PG_EBADREQ, "", "'result'");
    t_fail("{\"nodes\": {" T_TWO "}, \"result\": [\"a\", \"q\"]}", PG_EREF, "", "'q'");
    t_fail("{\"nodes\": {" T_TWO "}, \"result\": [\"b\", \"a\", \"b\"]}", PG_EBADREQ, "",
           "'b' more than once");

    /* A list: results in the request's order. */
    p = t_plan("{\"nodes\": {" T_TWO ", \"c\": {\"op\": \"t.src\", \"width\": 9}}, "
               "\"result\": [\"c\", \"a\", \"b\"]}");
    t_check_plan_shape(p);
    ck_assert_int_eq(p->results_list, 1);
    ck_assert_int_eq(p->nresults, 3);
    ck_assert_int_eq(p->nnodes, 3);
    ck_assert_str_eq(p->nodes[p->results[0]].name, "c");
    ck_assert_str_eq(p->nodes[p->results[1]].name, "a");
    ck_assert_str_eq(p->nodes[p->results[2]].name, "b");
    ck_assert_int_eq(p->nodes[p->results[0]].info.width, 9);
    pg_plan_destroy(&p);
    /* A one-name list is still a list. */
    p = t_plan("{\"nodes\": {" T_TWO "}, \"result\": [\"b\"]}");
    ck_assert_int_eq(p->results_list, 1);
    ck_assert_int_eq(p->nresults, 1);
    pg_plan_destroy(&p);
}
END_TEST

/* ---- planning (check 8) ---- */

#define T_DAG                                                                                      \
    "\"a\": {\"op\": \"t.src\", \"width\": 5, \"height\": 6}, "                                    \
    "\"x\": {\"op\": \"t.neg\", \"args\": [{\"ref\": \"a\"}]}, "                                   \
    "\"y\": {\"op\": \"t.add\", \"args\": [{\"ref\": \"a\"}, 2.5]}, "                              \
    "\"s\": {\"op\": \"t.add\", \"args\": [{\"ref\": \"x\"}, {\"ref\": \"y\"}]}, "                 \
    "\"out\": {\"op\": \"t.save\", \"path\": \"o.tif\", \"args\": [{\"ref\": \"s\"}]}, "           \
    "\"unused\": {\"op\": \"t.src\"}"

START_TEST(test_shared_dag)
{
    pg_plan *p = t_plan("{\"nodes\": {" T_DAG "}, \"result\": \"out\"}");
    t_check_plan_shape(p);
    /* "a" is used twice and planned once; "unused" is not planned. */
    ck_assert_int_eq(p->nnodes, 5);
    const char *order[] = {"a", "x", "y", "s", "out"};
    for (int k = 0; k < 5; k++)
        ck_assert_str_eq(p->nodes[k].name, order[k]);
    const pg_node *a = t_node(p, "a"), *x = t_node(p, "x"), *y = t_node(p, "y");
    const pg_node *s = t_node(p, "s"), *out = t_node(p, "out");
    ck_assert_int_eq(x->args[0].node, a->index);
    ck_assert_int_eq(y->args[0].node, a->index);
    ck_assert_int_eq(y->args[1].node, -1);
    ck_assert(y->args[1].number == 2.5);
    ck_assert_int_eq(s->args[0].node, x->index);
    ck_assert_int_eq(s->args[1].node, y->index);
    ck_assert_ptr_eq(out->args[0].ref, s);
    ck_assert_int_eq(p->results[0], out->index);
    ck_assert_int_eq(p->results_list, 0);
    /* RASTER ops without plan() take their first raster arg's info. */
    ck_assert_int_eq(s->info.width, 5);
    ck_assert_int_eq(s->info.height, 6);
    ck_assert_int_eq(s->info.bands, 1);
    ck_assert_str_eq(s->info.crs_wkt, "EPSG:4326");
    ck_assert_ptr_ne(s->info.crs_wkt, a->info.crs_wkt);
    ck_assert_str_eq(pg_param_str(out, "path"), "o.tif");
    pg_plan_destroy(&p);

    /* Unreachable nodes are still validated. */
    t_fail("{\"nodes\": {" T_DAG ", \"bad\": {\"op\": \"t.src\", \"width\": 0}}, \"result\": "
           "\"out\"}",
           PG_EPARAM, "bad", "'width'");
}
END_TEST

START_TEST(test_deterministic_order)
{
    /* The same graph with its nodes listed in another order gives the same
     * plan order: it follows the results and args, not the JSON's keys. */
    const char *g1 = "{\"nodes\": {" T_DAG "}, \"result\": \"out\"}";
    const char *g2 =
        "{\"nodes\": {"
        "\"out\": {\"op\": \"t.save\", \"path\": \"o.tif\", \"args\": [{\"ref\": \"s\"}]}, "
        "\"s\": {\"op\": \"t.add\", \"args\": [{\"ref\": \"x\"}, {\"ref\": \"y\"}]}, "
        "\"unused\": {\"op\": \"t.src\"}, "
        "\"y\": {\"op\": \"t.add\", \"args\": [{\"ref\": \"a\"}, 2.5]}, "
        "\"x\": {\"op\": \"t.neg\", \"args\": [{\"ref\": \"a\"}]}, "
        "\"a\": {\"op\": \"t.src\", \"width\": 5, \"height\": 6}}, \"result\": \"out\"}";
    pg_plan *p1 = t_plan(g1), *p2 = t_plan(g2), *p3 = t_plan(g1);
    ck_assert_int_eq(p1->nnodes, p2->nnodes);
    ck_assert_int_eq(p1->nnodes, p3->nnodes);
    for (int k = 0; k < p1->nnodes; k++) {
        ck_assert_str_eq(p1->nodes[k].name, p2->nodes[k].name);
        ck_assert_str_eq(p1->nodes[k].name, p3->nodes[k].name);
    }
    pg_plan_destroy(&p1);
    pg_plan_destroy(&p2);
    pg_plan_destroy(&p3);

    /* Several results: a depth-first walk from each in order. */
    pg_plan *p = t_plan("{\"nodes\": {" T_DAG "}, \"result\": [\"y\", \"out\", \"x\"]}");
    t_check_plan_shape(p);
    const char *order[] = {"a", "y", "x", "s", "out"};
    ck_assert_int_eq(p->nnodes, 5);
    for (int k = 0; k < 5; k++)
        ck_assert_str_eq(p->nodes[k].name, order[k]);
    ck_assert_int_eq(p->results[0], 1);
    ck_assert_int_eq(p->results[1], 4);
    ck_assert_int_eq(p->results[2], 2);
    pg_plan_destroy(&p);
}
END_TEST

START_TEST(test_inline_names)
{
    pg_plan *p = t_plan("{\"nodes\": {\"out\": {\"op\": \"t.save\", \"path\": \"o\", \"args\": "
                        "[{\"op\": \"t.add\", \"args\": [3, {\"op\": \"t.neg\", \"args\": "
                        "[{\"op\": \"t.src\", \"height\": 7}]}]}]}}}");
    t_check_plan_shape(p);
    ck_assert_int_eq(p->nnodes, 4);
    ck_assert_str_eq(p->nodes[0].name, "out.args[0].args[1].args[0]");
    ck_assert_str_eq(p->nodes[1].name, "out.args[0].args[1]");
    ck_assert_str_eq(p->nodes[2].name, "out.args[0]");
    ck_assert_str_eq(p->nodes[3].name, "out");
    ck_assert_int_eq(p->nodes[2].info.height, 7);
    ck_assert_int_eq(p->nodes[2].args[0].node, -1);
    ck_assert(p->nodes[2].args[0].number == 3.0);
    ck_assert_int_eq(p->results[0], 3);
    pg_plan_destroy(&p);
}
END_TEST

START_TEST(test_plan_errors)
{
    t_fail("{\"nodes\": {\"s\": {\"op\": \"t.src\"}, \"f\": {\"op\": \"t.fail\"}, \"o\": {\"op\": "
           "\"t.add\", \"args\": [{\"ref\": \"s\"}, {\"ref\": \"f\"}]}}}",
           PG_EFORMAT, "f", "cannot read the test file");
    t_fail("{\"nodes\": {\"o\": {\"op\": \"t.neg\", \"args\": [{\"op\": \"t.mute\"}]}}}", PG_EIO,
           "o.args[0]", "t.mute");
    /* Cells: 1000 x 1001 x 1 > 1000000, at the source and not before. */
    t_fail("{\"nodes\": {\"s\": {\"op\": \"t.src\", \"width\": 1000, \"height\": 1001}, \"o\": "
           "{\"op\": \"t.neg\", \"args\": [{\"ref\": \"s\"}]}}}",
           PG_ECELLS, "s", "1000000");
    pg_plan *p = t_plan("{\"nodes\": {\"s\": {\"op\": \"t.src\", \"width\": 1000, \"height\": "
                        "1000}}}");
    pg_plan_destroy(&p);
    /* Sizes whose product overflows int64 are too many cells too. */
    pg_plan_env env = t_env;
    env.max_cells = 0;
    t_fail_env("{\"nodes\": {\"s\": {\"op\": \"t.src\", \"width\": 999999999999, \"height\": "
               "999999999999}}}",
               &env, PG_ECELLS, "s", NULL);
}
END_TEST

START_TEST(test_free_state)
{
    t_state_frees = 0;
    pg_plan *p = t_plan("{\"nodes\": {\"a\": {\"op\": \"t.state\"}, \"b\": {\"op\": \"t.state\"}, "
                        "\"s\": {\"op\": \"t.add\", \"args\": [{\"ref\": \"a\"}, {\"ref\": "
                        "\"b\"}]}}}");
    ck_assert_int_eq(t_state_frees, 0);
    pg_plan_destroy(&p);
    ck_assert_int_eq(t_state_frees, 2);
    /* A failed build frees the states of the nodes planned so far. */
    t_state_frees = 0;
    t_fail(
        "{\"nodes\": {\"a\": {\"op\": \"t.state\"}, \"f\": {\"op\": \"t.fail\"}, \"s\": {\"op\": "
        "\"t.add\", \"args\": [{\"ref\": \"a\"}, {\"ref\": \"f\"}]}}}",
        PG_EFORMAT, "f", NULL);
    ck_assert_int_eq(t_state_frees, 1);
    pg_plan_destroy(&p); /* NULL: nothing */
}
END_TEST

START_TEST(test_bad_calls)
{
    pg_plan *p = NULL;
    pg_error err;
    ck_assert_int_eq(pg_plan_build(NULL, &t_env, &p, &err), PG_EINVAL);
    json_t *g = t_json("{\"nodes\": {\"a\": {\"op\": \"t.src\"}}}");
    ck_assert_int_eq(pg_plan_build_with(g, NULL, &t_lookup, &p, &err), PG_EINVAL);
    ck_assert_ptr_null(p);
    /* Without ERR the code is still returned. */
    ck_assert_int_eq(pg_plan_build_with(g, &t_env, &t_lookup, &p, NULL), 0);
    pg_plan_destroy(&p);
    json_decref(g);
    g = t_json("{\"nodes\": {\"a\": {\"op\": \"t.fail\"}}}");
    ck_assert_int_eq(pg_plan_build_with(g, &t_env, &t_lookup, &p, NULL), PG_EFORMAT);
    ck_assert_ptr_null(p);
    json_decref(g);
}
END_TEST

/* ---- the real registry ---- */

static bool t_has_only_keys(json_t *o, const char *const *keys, size_t nkeys)
{
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v)
    {
        bool found = false;
        for (size_t i = 0; i < nkeys && !found; i++)
            found = strcmp(k, keys[i]) == 0;
        if (!found) return false;
    }
    return true;
}

static void t_check_param_desc(const char *op, json_t *p)
{
    static const char *const keys[] = {"name", "type", "required", "default", "doc", "min", "max"};
    static const char *const types[] = {"string",  "number",   "integer",
                                        "boolean", "celltype", "json"};
    ck_assert_msg(json_is_object(p), "%s: a param is not an object", op);
    ck_assert_msg(t_has_only_keys(p, keys, PG_ARRAY_SIZE(keys)), "%s: param has unknown keys", op);
    const char *name = json_string_value(json_object_get(p, "name"));
    ck_assert_msg(name != NULL && name[0] != '\0', "%s: param without a name", op);
    const char *type = json_string_value(json_object_get(p, "type"));
    bool known = false;
    for (size_t i = 0; type != NULL && i < PG_ARRAY_SIZE(types); i++)
        known = known || strcmp(type, types[i]) == 0;
    ck_assert_msg(known, "%s.%s: bad type", op, name);
    ck_assert_msg(json_is_boolean(json_object_get(p, "required")), "%s.%s: required", op, name);
    ck_assert_msg(json_is_string(json_object_get(p, "doc")), "%s.%s: doc", op, name);
    json_t *min = json_object_get(p, "min"), *max = json_object_get(p, "max");
    ck_assert_msg((min == NULL) == (max == NULL), "%s.%s: min without max", op, name);
    if (min != NULL) {
        ck_assert_msg(json_is_number(min) || json_is_null(min), "%s.%s: min", op, name);
        ck_assert_msg(json_is_number(max) || json_is_null(max), "%s.%s: max", op, name);
        if (json_is_number(min) && json_is_number(max))
            ck_assert_msg(json_number_value(min) < json_number_value(max), "%s.%s: min >= max", op,
                          name);
    }
    json_t *def = json_object_get(p, "default");
    if (def != NULL && !json_is_null(def)) {
        /* A default must itself be a valid value of its type. */
        if (strcmp(type, "string") == 0 || strcmp(type, "celltype") == 0)
            ck_assert_msg(json_is_string(def), "%s.%s: default", op, name);
        else if (strcmp(type, "number") == 0 || strcmp(type, "integer") == 0)
            ck_assert_msg(json_is_number(def), "%s.%s: default", op, name);
        else if (strcmp(type, "boolean") == 0)
            ck_assert_msg(json_is_boolean(def), "%s.%s: default", op, name);
    }
    if (def != NULL)
        ck_assert_msg(!json_is_true(json_object_get(p, "required")),
                      "%s.%s: required with a default", op, name);
}

START_TEST(test_registry_describe)
{
    static const char *const keys[] = {"name", "family", "doc",    "example",
                                       "args", "params", "returns"};
    json_t *all = pg_ops_describe();
    ck_assert(json_is_array(all));
    size_t n = pg_op_count();
    ck_assert_uint_eq(json_array_size(all), n);
    ck_assert_ptr_null(pg_op_at(n));
    ck_assert_ptr_null(pg_op_find("no.such.op"));
    for (size_t i = 0; i < n; i++) {
        const pg_op_def *op = pg_op_at(i);
        ck_assert_ptr_nonnull(op);
        ck_assert_ptr_eq(pg_op_find(op->name), op); /* also: no name is used twice */
        json_t *d = json_array_get(all, i);
        ck_assert_msg(json_is_object(d), "op %zu is not an object", i);
        for (size_t k = 0; k < PG_ARRAY_SIZE(keys); k++)
            ck_assert_msg(json_object_get(d, keys[k]) != NULL, "%s lacks '%s'", op->name, keys[k]);
        ck_assert_msg(t_has_only_keys(d, keys, PG_ARRAY_SIZE(keys)), "%s: unknown keys", op->name);
        ck_assert_str_eq(json_string_value(json_object_get(d, "name")), op->name);
        const char *fam = json_string_value(json_object_get(d, "family"));
        ck_assert_msg(fam != NULL && strncmp(op->name, fam, strlen(fam)) == 0 &&
                          op->name[strlen(fam)] == '.',
                      "%s: family '%s' is not its prefix", op->name, fam ? fam : "(null)");
        ck_assert_msg(json_string_length(json_object_get(d, "doc")) > 0, "%s: no doc", op->name);
        json_t *ex = json_object_get(d, "example");
        ck_assert_msg(json_is_object(ex), "%s: example is not a JSON object", op->name);
        ck_assert_msg(json_is_string(json_object_get(ex, "op")) &&
                          strcmp(json_string_value(json_object_get(ex, "op")), op->name) == 0,
                      "%s: the example's op is not the op", op->name);

        json_t *args = json_object_get(d, "args");
        ck_assert(json_is_object(args));
        json_t *min = json_object_get(args, "min"), *max = json_object_get(args, "max");
        ck_assert_msg(json_is_integer(min) && json_integer_value(min) >= 0, "%s: args.min",
                      op->name);
        ck_assert_msg(json_is_null(max) || (json_is_integer(max) &&
                                            json_integer_value(max) >= json_integer_value(min)),
                      "%s: args.max", op->name);
        ck_assert_int_eq(json_is_null(max), op->max_args < 0);
        json_t *kinds = json_object_get(args, "kinds");
        ck_assert(json_is_array(kinds));
        size_t ki;
        json_t *kv;
        json_array_foreach(kinds, ki, kv)
        {
            const char *k = json_string_value(kv);
            ck_assert_msg(k != NULL && (strcmp(k, "raster") == 0 || strcmp(k, "number") == 0 ||
                                        strcmp(k, "value") == 0),
                          "%s: bad kind", op->name);
        }
        if (op->max_args != 0)
            ck_assert_msg(json_array_size(kinds) > 0, "%s takes args of no kind", op->name);

        json_t *params = json_object_get(d, "params");
        ck_assert(json_is_array(params));
        size_t pi;
        json_t *pv;
        json_array_foreach(params, pi, pv) t_check_param_desc(op->name, pv);
        const char *ret = json_string_value(json_object_get(d, "returns"));
        ck_assert_msg(ret != NULL && (strcmp(ret, "raster") == 0 || strcmp(ret, "value") == 0 ||
                                      strcmp(ret, "path") == 0),
                      "%s: returns", op->name);
        json_t *one = pg_op_describe(op);
        ck_assert(json_equal(one, d));
        json_decref(one);
    }
    json_decref(all);

    /* The real planner looks ops up in the registry. */
    json_t *g = t_json("{\"nodes\": {\"a\": {\"op\": \"no.such.op\"}}}");
    pg_plan *p = NULL;
    pg_error err;
    ck_assert_int_eq(pg_plan_build(g, &t_env, &p, &err), PG_EUNKNOWNOP);
    ck_assert_str_eq(err.node, "a");
    ck_assert_ptr_null(p);
    json_decref(g);
}
END_TEST

START_TEST(test_describe_exact)
{
    /* The description format, exactly, on test ops. */
    json_t *got = pg_op_describe(t_find("t.params"));
    json_t *want = t_json(
        "{\"name\": \"t.params\", \"family\": \"t\", \"doc\": \"a test op\", "
        "\"example\": {\"op\": \"t.params\"}, \"args\": {\"min\": 0, \"max\": 0, \"kinds\": []}, "
        "\"params\": ["
        "{\"name\": \"label\", \"type\": \"string\", \"required\": true, \"doc\": \"a required "
        "string\"},"
        "{\"name\": \"scale\", \"type\": \"number\", \"required\": false, \"default\": 1.5, "
        "\"doc\": \"a number >= 0\", \"min\": 0.0, \"max\": null},"
        "{\"name\": \"count\", \"type\": \"integer\", \"required\": false, \"default\": 3, "
        "\"doc\": \"an integer in [1, 10]\", \"min\": 1, \"max\": 10},"
        "{\"name\": \"flag\", \"type\": \"boolean\", \"required\": false, \"default\": false, "
        "\"doc\": \"a boolean\"},"
        "{\"name\": \"type\", \"type\": \"celltype\", \"required\": false, \"default\": \"f32\", "
        "\"doc\": \"a cell type\"},"
        "{\"name\": \"extra\", \"type\": \"json\", \"required\": false, \"doc\": \"anything\"},"
        "{\"name\": \"ratio\", \"type\": \"number\", \"required\": false, \"doc\": \"in [-1, "
        "1]\", \"min\": -1.0, \"max\": 1.0},"
        "{\"name\": \"offset\", \"type\": \"number\", \"required\": false, \"doc\": \"<= 0\", "
        "\"min\": null, \"max\": 0.0}"
        "], \"returns\": \"raster\"}");
    ck_assert_msg(json_equal(got, want), "got %s", json_dumps(got, JSON_COMPACT));
    json_decref(got);
    json_decref(want);

    got = pg_op_describe(t_find("t.sum"));
    json_t *args = json_object_get(got, "args");
    want = t_json("{\"min\": 1, \"max\": null, \"kinds\": [\"raster\", \"number\"]}");
    ck_assert(json_equal(args, want));
    ck_assert_str_eq(json_string_value(json_object_get(got, "returns")), "raster");
    ck_assert_uint_eq(json_array_size(json_object_get(got, "params")), 0);
    json_decref(got);
    json_decref(want);
    got = pg_op_describe(t_find("t.save"));
    ck_assert_str_eq(json_string_value(json_object_get(got, "returns")), "path");
    json_decref(got);
    got = pg_op_describe(t_find("t.stats"));
    ck_assert_str_eq(json_string_value(json_object_get(got, "returns")), "value");
    json_decref(got);
}
END_TEST

static Suite *graph_suite(void)
{
    Suite *s = suite_create("graph");
    TCase *tc = tcase_create("planner");
    tcase_add_test(tc, test_bad_shape);
    tcase_add_test(tc, test_unknown_op);
    tcase_add_test(tc, test_too_many_nodes);
    tcase_add_test(tc, test_bad_args);
    tcase_add_test(tc, test_arity);
    tcase_add_test(tc, test_arg_kinds);
    tcase_add_test(tc, test_unknown_param);
    tcase_add_test(tc, test_bad_param);
    tcase_add_test(tc, test_param_defaults);
    tcase_add_test(tc, test_cycles);
    tcase_add_test(tc, test_depth);
    tcase_add_test(tc, test_hostile_chain);
    tcase_add_test(tc, test_results);
    tcase_add_test(tc, test_shared_dag);
    tcase_add_test(tc, test_deterministic_order);
    tcase_add_test(tc, test_inline_names);
    tcase_add_test(tc, test_plan_errors);
    tcase_add_test(tc, test_free_state);
    tcase_add_test(tc, test_bad_calls);
    suite_add_tcase(s, tc);
    TCase *reg = tcase_create("registry");
    tcase_add_test(reg, test_registry_describe);
    tcase_add_test(reg, test_describe_exact);
    suite_add_tcase(s, reg);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(graph_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
