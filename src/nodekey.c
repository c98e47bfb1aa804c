/* Content keys of planned nodes, interned (see nodekey.h). */
#include "nodekey.h"

#include "log.h"

#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

struct pg_nodekey {
    pg_nodekey *next; /* hash chain, under the table's mutex */
    atomic_long refs; /* reaches 0 only under the mutex */
    uint64_t id;
    uint64_t hash; /* of the text */
    int nchildren;
    pg_nodekey **children; /* each held */
    size_t len;
    char text[]; /* NUL-terminated */
};

static struct {
    uv_once_t once;
    uv_mutex_t mu;
    pg_nodekey **buckets;
    size_t nbuckets, count;
    uint64_t next_id;
} T = {.once = UV_ONCE_INIT};

static void pg__init(void)
{
    uv_mutex_init(&T.mu);
}

/* FNV-1a: only to find candidates; equality compares the texts. */
static uint64_t pg__hash(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211ull;
    }
    return h;
}

/* Under the mutex. Grows the table when it is full; failure to grow only
 * makes chains longer. */
static void pg__grow(void)
{
    if (T.count < T.nbuckets) return;
    size_t nb = T.nbuckets ? T.nbuckets * 2 : 256;
    pg_nodekey **b = calloc(nb, sizeof *b);
    if (b == NULL) return;
    for (size_t i = 0; i < T.nbuckets; i++)
        for (pg_nodekey *k = T.buckets[i], *nx; k != NULL; k = nx) {
            nx = k->next;
            k->next = b[k->hash & (nb - 1)];
            b[k->hash & (nb - 1)] = k;
        }
    free(T.buckets);
    T.buckets = b;
    T.nbuckets = nb;
}

pg_nodekey *pg_nodekey_intern(const char *text, pg_nodekey *const *children, int n)
{
    uv_once(&T.once, pg__init);
    size_t len = strlen(text);
    uint64_t h = pg__hash(text, len);
    uv_mutex_lock(&T.mu);
    if (T.nbuckets) {
        for (pg_nodekey *k = T.buckets[h & (T.nbuckets - 1)]; k != NULL; k = k->next)
            if (k->hash == h && k->len == len && memcmp(k->text, text, len) == 0) {
                atomic_fetch_add(&k->refs, 1);
                uv_mutex_unlock(&T.mu);
                return k;
            }
    }
    pg__grow();
    pg_nodekey *k = NULL;
    if (T.nbuckets) k = malloc(sizeof *k + len + 1);
    pg_nodekey **ch = n > 0 && k ? malloc(sizeof *ch * (size_t)n) : NULL;
    if (k == NULL || (n > 0 && ch == NULL)) {
        uv_mutex_unlock(&T.mu);
        free(k);
        free(ch);
        return NULL;
    }
    atomic_init(&k->refs, 1);
    k->id = ++T.next_id;
    k->hash = h;
    k->len = len;
    memcpy(k->text, text, len + 1);
    k->nchildren = n;
    k->children = ch;
    for (int i = 0; i < n; i++) /* callers hold them: never at 0 here */
        ch[i] = children[i], atomic_fetch_add(&ch[i]->refs, 1);
    k->next = T.buckets[h & (T.nbuckets - 1)];
    T.buckets[h & (T.nbuckets - 1)] = k;
    T.count++;
    uv_mutex_unlock(&T.mu);
    return k;
}

pg_nodekey *pg_nodekey_ref(pg_nodekey *k)
{
    if (k) atomic_fetch_add(&k->refs, 1);
    return k;
}

/* Drops one reference; a key that reaches zero leaves the table and drops
 * its children's, iteratively (a long chain must not recurse deeply). */
void pg_nodekey_unref(pg_nodekey **kp)
{
    pg_nodekey *k = *kp;
    *kp = NULL;
    if (k == NULL) return;
    pg_nodekey *dead = NULL; /* freed keys, linked through next */
    size_t nstack = 1, cap = 0;
    pg_nodekey *one = k, **stack = &one;
    uv_mutex_lock(&T.mu);
    while (nstack > 0) {
        pg_nodekey *x = stack[--nstack];
        if (atomic_fetch_sub(&x->refs, 1) != 1) continue;
        pg_nodekey **pp = &T.buckets[x->hash & (T.nbuckets - 1)];
        while (*pp != x)
            pp = &(*pp)->next;
        *pp = x->next;
        T.count--;
        x->next = dead;
        dead = x;
        if (x->nchildren == 0) continue;
        if (nstack + (size_t)x->nchildren > cap) {
            size_t nc = (nstack + (size_t)x->nchildren) * 2;
            pg_nodekey **ns = malloc(sizeof *ns * nc);
            if (ns == NULL) {
                /* Cannot happen in practice; leaking the children is the
                 * only safe way out. */
                pg_log_error("out of memory freeing a node key");
                break;
            }
            memcpy(ns, stack, sizeof *ns * nstack);
            if (stack != &one) free(stack);
            stack = ns;
            cap = nc;
        }
        for (int i = 0; i < x->nchildren; i++)
            stack[nstack++] = x->children[i];
    }
    uv_mutex_unlock(&T.mu);
    if (stack != &one) free(stack);
    while (dead) {
        pg_nodekey *nx = dead->next;
        free(dead->children);
        free(dead);
        dead = nx;
    }
}

const char *pg_nodekey_text(const pg_nodekey *k)
{
    return k->text;
}

uint64_t pg_nodekey_id(const pg_nodekey *k)
{
    return k->id;
}

uint64_t pg_nodekey_hash(const pg_nodekey *k)
{
    uint64_t x = k->id * 0x9e3779b97f4a7c15ull;
    return x ^ (x >> 29);
}

size_t pg_nodekey_bytes(const pg_nodekey *k)
{
    return sizeof *k + k->len + 1 + sizeof(pg_nodekey *) * (size_t)k->nchildren;
}

size_t pg_nodekey_live(void)
{
    uv_once(&T.once, pg__init);
    uv_mutex_lock(&T.mu);
    size_t n = T.count;
    uv_mutex_unlock(&T.mu);
    return n;
}

json_t *pg_nodekey_file(const char *path, const pg_file_id *planned, pg_error *err)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts); /* before the stat: the conservative side */
    int64_t now = (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
    pg_file_id cur, *id = &cur;
    if (pg_file_identify(path, &cur) != 0 || cur.dev != planned->dev || cur.ino != planned->ino ||
        cur.size != planned->size || cur.mtime_ns != planned->mtime_ns) {
        pg_error_set(err, PG_ENOTFOUND, "'%s' changed since it was planned", path);
        return NULL;
    }
    if (now - id->mtime_ns < PG_NODEKEY_SETTLE_NS) {
        pg_error_set(err, PG_ENOTFOUND, "'%s' was modified too recently to be identified", path);
        return NULL;
    }
    json_t *o =
        json_pack("{sssIsIsIsI}", "path", path, "size", (json_int_t)id->size, "mtime_ns",
                  (json_int_t)id->mtime_ns, "ino", (json_int_t)id->ino, "dev", (json_int_t)id->dev);
    if (o == NULL) pg_error_set(err, PG_ENOMEM, "out of memory");
    return o;
}

/* ---- expansion ---- */

/* K's text parsed, with every "#ID" arg replaced by that child's expanded
 * object (only args hold references: a string param "#5" stays as it is). */
static json_t *expand_json(const pg_nodekey *k)
{
    json_t *o = json_loads(k->text, JSON_DECODE_ANY, NULL);
    json_t *args = json_object_get(o, "args");
    size_t i;
    json_t *a;
    json_array_foreach(args, i, a)
    {
        const char *s = json_string_value(a);
        if (s == NULL || s[0] != '#') continue;
        unsigned long long id = strtoull(s + 1, NULL, 10);
        for (int c = 0; c < k->nchildren; c++)
            if (k->children[c]->id == id) {
                json_t *x = expand_json(k->children[c]);
                if (x == NULL || json_array_set_new(args, i, x)) {
                    json_decref(o);
                    return NULL;
                }
                break;
            }
    }
    return o;
}

char *pg_nodekey_expand(const pg_nodekey *k)
{
    json_t *o = expand_json(k);
    char *s =
        o ? json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17))
          : NULL;
    json_decref(o);
    return s;
}

/* ---- keys of a plan ---- */

void pg_nodekey_release(pg_nodekey **keys, int n)
{
    for (int i = 0; keys && i < n; i++)
        pg_nodekey_unref(&keys[i]);
}

/* The text of node N whose args' keys are KEYS (NULL: N is unkeyable,
 * with ERR code 0; or out of memory, with PG_ENOMEM). New string. */
static char *node_text(const pg_node *n, pg_nodekey *const *keys, pg_nodekey **children,
                       int *nchildren, pg_error *err)
{
    json_t *o = json_object(), *args = json_array();
    char *text = NULL;
    if (o == NULL || args == NULL) goto oom;
    *nchildren = 0;
    for (int a = 0; a < n->nargs; a++) {
        char buf[64];
        if (n->args[a].ref != NULL) {
            const pg_nodekey *ck = keys[n->args[a].node];
            if (ck == NULL) goto unkeyable;
            snprintf(buf, sizeof buf, "#%llu", (unsigned long long)ck->id);
            children[(*nchildren)++] = (pg_nodekey *)ck;
        } else {
            /* Exact: a hex float says every bit ("-0x0p+0" differs from 0). */
            snprintf(buf, sizeof buf, "%a", n->args[a].number);
        }
        if (json_array_append_new(args, json_string(buf))) goto oom;
    }
    if (json_object_set_new(o, "op", json_string(n->op->name)) ||
        json_object_set_new(o, "args", args))
        goto oom;
    args = NULL;
    if (json_object_set(o, "params", n->params ? n->params : json_null())) goto oom;
    if (n->op->identity != NULL) {
        json_t *in = json_object();
        if (in == NULL || json_object_set_new(o, "inputs", in)) goto oom;
        pg_error e = {0};
        if (n->op->identity(n, in, &e) != 0) {
            pg_log_debug("node '%s' has no cache key: %s", n->name, e.message);
            if (e.code == PG_ENOMEM) {
                *err = e;
                goto fail;
            }
            goto unkeyable;
        }
    }
    text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY | JSON_REAL_PRECISION(17));
    if (text == NULL) goto oom;
    json_decref(o);
    return text;
oom:
    pg_error_set(err, PG_ENOMEM, "out of memory");
fail:
unkeyable:
    json_decref(args);
    json_decref(o);
    return NULL;
}

int pg_nodekey_plan(const pg_plan *plan, pg_nodekey **keys, pg_error *err)
{
    int maxargs = 0;
    for (int i = 0; i < plan->nnodes; i++) {
        keys[i] = NULL;
        if (plan->nodes[i].nargs > maxargs) maxargs = plan->nodes[i].nargs;
    }
    pg_nodekey **children = malloc(sizeof *children * (size_t)(maxargs ? maxargs : 1));
    if (children == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    for (int i = 0; i < plan->nnodes; i++) {
        int nc = 0;
        err->code = 0;
        char *text = node_text(&plan->nodes[i], keys, children, &nc, err);
        if (text == NULL) {
            if (err->code == 0) continue; /* unkeyable: so are its users */
            break;
        }
        keys[i] = pg_nodekey_intern(text, children, nc);
        free(text);
        if (keys[i] == NULL) {
            pg_error_set(err, PG_ENOMEM, "out of memory");
            break;
        }
    }
    free(children);
    if (err->code) {
        pg_nodekey_release(keys, plan->nnodes);
        return err->code;
    }
    return 0;
}
