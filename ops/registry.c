/* The op registry: every family's table, looked up by name and described
 * for the `ops` request (see ops/registry.h and README "Protocol").
 *
 * The families are listed once, in pg__families below; each family's
 * file owns its table. Lookup is a linear scan: it runs once per graph
 * node, over a few dozen entries, and needs no global state to build or
 * lock.
 */
#include "ops/registry.h"

#include <math.h>
#include <string.h>

/* The one place that lists the families. Order matters only for `ops`
 * output (and for which entry wins if two families ever reused a name;
 * tests/test_graph.c checks that none do). */
static const pg_op_def *const pg__families[] = {
    pg_ops_io,    pg_ops_raster, pg_ops_local,  pg_ops_local_math, pg_ops_local_class,
    pg_ops_focal, pg_ops_zonal,  pg_ops_global, pg_ops_transform,  pg_ops_render};

const pg_op_def *pg_op_find(const char *name)
{
    if (name == NULL) return NULL;
    for (size_t f = 0; f < sizeof pg__families / sizeof pg__families[0]; f++)
        for (const pg_op_def *op = pg__families[f]; op->name != NULL; op++)
            if (strcmp(op->name, name) == 0) return op;
    return NULL;
}

size_t pg_op_count(void)
{
    size_t n = 0;
    for (size_t f = 0; f < sizeof pg__families / sizeof pg__families[0]; f++)
        for (const pg_op_def *op = pg__families[f]; op->name != NULL; op++)
            n++;
    return n;
}

const pg_op_def *pg_op_at(size_t i)
{
    for (size_t f = 0; f < sizeof pg__families / sizeof pg__families[0]; f++)
        for (const pg_op_def *op = pg__families[f]; op->name != NULL; op++)
            if (i-- == 0) return op;
    return NULL;
}

static const char *pg__param_type_name(pg_param_type t)
{
    switch (t) {
    case PG_PARAM_STRING:
        return "string";
    case PG_PARAM_NUMBER:
        return "number";
    case PG_PARAM_INT:
        return "integer";
    case PG_PARAM_BOOL:
        return "boolean";
    case PG_PARAM_CELLTYPE:
        return "celltype";
    case PG_PARAM_JSON:
        return "json";
    }
    return "json";
}

static const char *pg__result_name(pg_result_kind r)
{
    switch (r) {
    case PG_RESULT_RASTER:
        return "raster";
    case PG_RESULT_VALUE:
        return "value";
    case PG_RESULT_SINK:
        /* A sink's answer is the path it wrote (README "Answers"). */
        return "path";
    }
    return "raster";
}

/* Parses a table's JSON text (an example or a default). Table text is
 * trusted, so a parse failure is a bug in the table: it is answered as
 * null rather than hiding the whole op (the registry test catches it). */
static json_t *pg__parse_table_json(const char *text)
{
    if (text == NULL) return json_null();
    json_t *v = json_loads(text, JSON_DECODE_ANY, NULL);
    return v != NULL ? v : json_null();
}

/* A range bound as JSON: an integer for INT params, null for an infinite
 * bound (JSON has no infinity; tables may use INFINITY for "unbounded"). */
static json_t *pg__bound(const pg_param_def *p, double x)
{
    if (!isfinite(x)) return json_null();
    if (p->type == PG_PARAM_INT && x == floor(x) && fabs(x) < 9e15)
        return json_integer((json_int_t)x);
    return json_real(x);
}

static int pg__describe_param(json_t *list, const pg_param_def *p)
{
    json_t *d = json_object();
    if (d == NULL) return -1;
    int rc = 0;
    rc |= json_object_set_new(d, "name", json_string(p->name));
    rc |= json_object_set_new(d, "type", json_string(pg__param_type_name(p->type)));
    rc |= json_object_set_new(d, "required", json_boolean(p->required));
    if (p->default_json != NULL)
        rc |= json_object_set_new(d, "default", pg__parse_table_json(p->default_json));
    rc |= json_object_set_new(d, "doc", json_string(p->doc != NULL ? p->doc : ""));
    if (p->min < p->max) {
        rc |= json_object_set_new(d, "min", pg__bound(p, p->min));
        rc |= json_object_set_new(d, "max", pg__bound(p, p->max));
    }
    rc |= json_array_append_new(list, d);
    return rc != 0 ? -1 : 0;
}

json_t *pg_op_describe(const pg_op_def *op)
{
    if (op == NULL || op->name == NULL) return NULL;
    json_t *d = json_object();
    json_t *args = json_object();
    json_t *kinds = json_array();
    json_t *params = json_array();
    if (d == NULL || args == NULL || kinds == NULL || params == NULL) goto fail;

    int rc = 0;
    rc |= json_object_set_new(d, "name", json_string(op->name));
    rc |= json_object_set_new(d, "family", json_string(op->family != NULL ? op->family : ""));
    rc |= json_object_set_new(d, "doc", json_string(op->doc != NULL ? op->doc : ""));
    rc |= json_object_set_new(d, "example", pg__parse_table_json(op->example));

    rc |= json_object_set_new(args, "min", json_integer(op->min_args));
    rc |= json_object_set_new(args, "max",
                              op->max_args < 0 ? json_null() : json_integer(op->max_args));
    if (op->arg_kinds & PG_ARGK_RASTER) rc |= json_array_append_new(kinds, json_string("raster"));
    if (op->arg_kinds & PG_ARGK_NUMBER) rc |= json_array_append_new(kinds, json_string("number"));
    if (op->arg_kinds & PG_ARGK_VALUE) rc |= json_array_append_new(kinds, json_string("value"));
    rc |= json_object_set_new(args, "kinds", kinds);
    kinds = NULL;
    rc |= json_object_set_new(d, "args", args);
    args = NULL;

    for (const pg_param_def *p = op->params; p != NULL && p->name != NULL; p++)
        rc |= pg__describe_param(params, p);
    rc |= json_object_set_new(d, "params", params);
    params = NULL;
    rc |= json_object_set_new(d, "returns", json_string(pg__result_name(op->result)));
    if (rc != 0) goto fail;
    return d;

fail:
    json_decref(d);
    json_decref(args);
    json_decref(kinds);
    json_decref(params);
    return NULL;
}

json_t *pg_ops_describe(void)
{
    json_t *list = json_array();
    if (list == NULL) return NULL;
    for (size_t f = 0; f < sizeof pg__families / sizeof pg__families[0]; f++) {
        for (const pg_op_def *op = pg__families[f]; op->name != NULL; op++) {
            if (json_array_append_new(list, pg_op_describe(op)) != 0) {
                json_decref(list);
                return NULL;
            }
        }
    }
    return list;
}
