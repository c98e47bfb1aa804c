/* pergola-opsdoc: prints the op reference (Markdown) from the op registry,
 * so that the page cannot drift from the code. ops/REFERENCE.md is its
 * output; the `reference` test fails when the two differ. */
#include "ops/registry.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

static void print_json_inline(const json_t *v)
{
    char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    fputs(s ? s : "?", stdout);
    free(s);
}

static const char *kinds(const json_t *args)
{
    static char buf[64];
    buf[0] = '\0';
    size_t i;
    json_t *k;
    json_array_foreach(json_object_get(args, "kinds"), i, k)
    {
        if (i) strcat(buf, ", ");
        strcat(buf, json_string_value(k));
    }
    return buf[0] ? buf : "none";
}

int main(void)
{
    json_t *ops = pg_ops_describe();
    if (ops == NULL) return 1;
    printf("# Pergola operations\n\n"
           "Generated from the op registry by `build/pergola-opsdoc` (do not edit: run\n"
           "`build/pergola-opsdoc > ops/REFERENCE.md`). A running daemon serves the same table\n"
           "for the `ops` request (`pergola ops`). Types and nodata: README.md, \"Cell types\".\n\n");
    const char *family = "";
    size_t i;
    json_t *op;
    printf("| op | returns | what it does |\n|---|---|---|\n");
    json_array_foreach(ops, i, op)
    {
        /* The first sentence: up to a period followed by a space or the end
         * ("io.save" and "0.5" do not end one). */
        const char *doc = json_string_value(json_object_get(op, "doc"));
        const char *dot = doc;
        while (dot && (dot = strchr(dot, '.')) != NULL && dot[1] != ' ' && dot[1] != '\0')
            dot++;
        printf("| [`%s`](#%s) | %s | %.*s |\n", json_string_value(json_object_get(op, "name")),
               json_string_value(json_object_get(op, "name")),
               json_string_value(json_object_get(op, "returns")),
               dot ? (int)(dot - doc + 1) : (int)strlen(doc ? doc : ""), doc ? doc : "");
    }
    json_array_foreach(ops, i, op)
    {
        const char *fam = json_string_value(json_object_get(op, "family"));
        if (strcmp(fam, family) != 0) {
            printf("\n## %s\n", fam);
            family = fam;
        }
        const char *name = json_string_value(json_object_get(op, "name"));
        json_t *args = json_object_get(op, "args");
        json_t *max = json_object_get(args, "max");
        printf("\n### %s\n\n<a id=\"%s\"></a>%s\n\n", name, name,
               json_string_value(json_object_get(op, "doc")));
        printf("- returns: %s\n", json_string_value(json_object_get(op, "returns")));
        long long mn = json_integer_value(json_object_get(args, "min"));
        if (json_is_null(max)) printf("- args: at least %lld (%s)\n", mn, kinds(args));
        else if (json_integer_value(max) == mn) printf("- args: %lld (%s)\n", mn, kinds(args));
        else
            printf("- args: %lld to %lld (%s)\n", mn, (long long)json_integer_value(max),
                   kinds(args));
        json_t *params = json_object_get(op, "params");
        if (json_array_size(params) > 0) {
            printf("\n| param | type | default | meaning |\n|---|---|---|---|\n");
            size_t j;
            json_t *p;
            json_array_foreach(params, j, p)
            {
                printf("| `%s` | %s%s | ", json_string_value(json_object_get(p, "name")),
                       json_string_value(json_object_get(p, "type")),
                       json_is_true(json_object_get(p, "required")) ? ", required" : "");
                json_t *d = json_object_get(p, "default");
                if (d) print_json_inline(d);
                printf(" | %s", json_string_value(json_object_get(p, "doc")));
                json_t *pmin = json_object_get(p, "min"), *pmax = json_object_get(p, "max");
                if (pmin || pmax) {
                    printf(" (");
                    if (pmin && !json_is_null(pmin)) print_json_inline(pmin);
                    printf("..");
                    if (pmax && !json_is_null(pmax)) print_json_inline(pmax);
                    printf(")");
                }
                printf(" |\n");
            }
        }
        printf("\nExample:\n\n```json\n");
        print_json_inline(json_object_get(op, "example"));
        printf("\n```\n");
    }
    json_decref(ops);
    return 0;
}
