/* The graph builder (include/pergola/client.h): assembles the graph JSON of
 * README.md "Graphs". It checks only what it must to produce well-formed
 * JSON; the daemon is the one authority on what a valid graph is, so that
 * the client never disagrees with it (an op added to the daemon works from
 * an old client). */
#include "pergola/client.h"
#include "util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

struct pg_graph {
    json_t *root;  /* {"nodes": {...}} plus "result" once set */
    json_t *nodes; /* borrowed from root */
};

pg_graph *pg_graph_new(void)
{
    pg_graph *g = calloc(1, sizeof *g);
    if (g == NULL) return NULL;
    g->root = json_object();
    g->nodes = json_object();
    if (g->root == NULL || g->nodes == NULL || json_object_set(g->root, "nodes", g->nodes) < 0) {
        json_decref(g->nodes);
        json_decref(g->root);
        free(g);
        return NULL;
    }
    json_decref(g->nodes); /* root holds it; keep a borrowed pointer */
    return g;
}

void pg_graph_destroy(pg_graph **g)
{
    if (g == NULL || *g == NULL) return;
    json_decref((*g)->root);
    free(*g);
    *g = NULL;
}

int pg_graph_add(pg_graph *g, const char *name, const char *op, pg_error *err)
{
    if (g == NULL || name == NULL || name[0] == '\0' || op == NULL || op[0] == '\0')
        return pg_error_set(err, PG_EINVAL, "a node needs a name and an op");
    if (json_object_get(g->nodes, name) != NULL)
        return pg_error_set(err, PG_EINVAL, "the graph already has a node named '%s'", name);
    json_t *n = json_pack("{s:s}", "op", op);
    if (n == NULL || json_object_set_new(g->nodes, name, n) < 0)
        return pg_error_set(err, PG_EINVAL, "cannot add node '%s' (not UTF-8, or no memory)", name);
    return 0;
}

static json_t *pg__node(pg_graph *g, const char *node, pg_error *err)
{
    json_t *n = (g != NULL && node != NULL) ? json_object_get(g->nodes, node) : NULL;
    if (n == NULL)
        pg_error_set(err, PG_EINVAL, "the graph has no node named '%s'", node ? node : "(null)");
    return n;
}

int pg_graph_arg_json(pg_graph *g, const char *node, json_t *arg, pg_error *err)
{
    if (arg == NULL) return pg_error_set(err, PG_EINVAL, "an argument cannot be NULL");
    json_t *n = pg__node(g, node, err);
    if (n == NULL) {
        json_decref(arg);
        return PG_EINVAL;
    }
    json_t *args = json_object_get(n, "args");
    if (args == NULL) {
        args = json_array();
        if (json_object_set_new(n, "args", args) < 0) args = NULL;
    }
    if (args == NULL || json_array_append_new(args, arg) < 0)
        return pg_error_set(err, PG_EINVAL, "cannot add an argument to node '%s'", node);
    return 0;
}

int pg_graph_arg_ref(pg_graph *g, const char *node, const char *ref, pg_error *err)
{
    if (ref == NULL || ref[0] == '\0')
        return pg_error_set(err, PG_EINVAL, "a reference needs a node name");
    json_t *a = json_pack("{s:s}", "ref", ref);
    if (a == NULL) return pg_error_set(err, PG_EINVAL, "bad reference name '%s'", ref);
    return pg_graph_arg_json(g, node, a, err);
}

/* A whole number is written as a JSON integer (2, not 2.0): what a person
 * writing the graph by hand would write. */
static json_t *pg__number(double v)
{
    if (v == floor(v) && fabs(v) < 9007199254740992.0) return json_integer((json_int_t)v);
    return json_real(v);
}

int pg_graph_arg_number(pg_graph *g, const char *node, double v, pg_error *err)
{
    if (!isfinite(v)) return pg_error_set(err, PG_EINVAL, "a number argument must be finite");
    return pg_graph_arg_json(g, node, pg__number(v), err);
}

int pg_graph_set_json(pg_graph *g, const char *node, const char *key, json_t *v, pg_error *err)
{
    if (v == NULL) return pg_error_set(err, PG_EINVAL, "a parameter value cannot be NULL");
    json_t *n = pg__node(g, node, err);
    if (n == NULL) {
        json_decref(v);
        return PG_EINVAL;
    }
    /* "op" and "args" are the node's structure, not parameters: letting a
     * parameter overwrite them would silently produce another graph. */
    if (key == NULL || key[0] == '\0' || strcmp(key, "op") == 0 || strcmp(key, "args") == 0) {
        json_decref(v);
        return pg_error_set(err, PG_EINVAL, "'%s' is not a parameter name", key ? key : "(null)");
    }
    if (json_object_set_new(n, key, v) < 0)
        return pg_error_set(err, PG_EINVAL, "cannot set parameter '%s' of node '%s'", key, node);
    return 0;
}

int pg_graph_set_string(pg_graph *g, const char *node, const char *key, const char *v,
                        pg_error *err)
{
    if (v == NULL) return pg_error_set(err, PG_EINVAL, "a string parameter cannot be NULL");
    json_t *s = json_string(v);
    if (s == NULL) return pg_error_set(err, PG_EINVAL, "parameter '%s' is not UTF-8", key);
    return pg_graph_set_json(g, node, key, s, err);
}

int pg_graph_set_number(pg_graph *g, const char *node, const char *key, double v, pg_error *err)
{
    if (!isfinite(v)) return pg_error_set(err, PG_EINVAL, "parameter '%s' must be finite", key);
    return pg_graph_set_json(g, node, key, pg__number(v), err);
}

int pg_graph_set_int(pg_graph *g, const char *node, const char *key, long long v, pg_error *err)
{
    return pg_graph_set_json(g, node, key, json_integer((json_int_t)v), err);
}

int pg_graph_set_bool(pg_graph *g, const char *node, const char *key, int v, pg_error *err)
{
    return pg_graph_set_json(g, node, key, json_boolean(v), err);
}

int pg_graph_set_result(pg_graph *g, const char *name, pg_error *err)
{
    if (g == NULL || name == NULL || name[0] == '\0')
        return pg_error_set(err, PG_EINVAL, "the result needs a node name");
    json_t *s = json_string(name);
    if (s == NULL || json_object_set_new(g->root, "result", s) < 0)
        return pg_error_set(err, PG_EINVAL, "bad result name '%s'", name);
    return 0;
}

int pg_graph_set_results(pg_graph *g, const char *const *names, size_t n, pg_error *err)
{
    if (g == NULL || names == NULL || n == 0)
        return pg_error_set(err, PG_EINVAL, "the result list needs at least one node name");
    json_t *list = json_array();
    if (list == NULL) return pg_error_set(err, PG_EINVAL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        if (names[i] == NULL || names[i][0] == '\0' ||
            json_array_append_new(list, json_string(names[i])) < 0) {
            json_decref(list);
            return pg_error_set(err, PG_EINVAL, "bad result name at position %zu", i);
        }
    }
    if (json_object_set_new(g->root, "result", list) < 0)
        return pg_error_set(err, PG_EINVAL, "out of memory");
    return 0;
}

json_t *pg_graph_to_json(const pg_graph *g)
{
    return g ? json_deep_copy(g->root) : NULL;
}

char *pg_graph_to_string(const pg_graph *g, int indent)
{
    if (g == NULL) return NULL;
    size_t flags = JSON_COMPACT;
    if (indent > 0) flags = JSON_INDENT(indent > 31 ? 31 : indent);
    /* Insertion order is kept (jansson >= 2.8 always does), so the text is
     * stable and reads in the order the graph was built. */
    return json_dumps(g->root, flags);
}
