/* The daemon's configuration: defaults, conf/pergola.json, command-line flags.
 *
 * Every setter validates its value and names the key on error; there are no
 * silent defaults for bad input. Loading is transactional: the new values
 * are applied to a copy that replaces the caller's config only when every
 * key was accepted, so a failed load leaves the config as it was.
 */
#include "config.h"

#include "log.h"
#include "util.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <zmq.h>

#ifndef PG_VERSION
#define PG_VERSION "unknown"
#endif

/* Upper bounds that are not in the documented contract but keep derived
 * quantities sane: a byte count from *_mb must fit in int64_t, and nobody
 * means to start 100000 worker threads. */
#define PG__WORKERS_MAX 4096
#define PG__MB_MAX (INT64_C(1) << 30)
#define PG__TILE_MIN 16
#define PG__TILE_MAX 8192

/* ---- errors ------------------------------------------------------------ */

/* PG_ECONFIG with "SRC: KEY: message" (SRC omitted when NULL). */
static int pg__cfg_err(pg_error *err, const char *src, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int pg__cfg_err(pg_error *err, const char *src, const char *key, const char *fmt, ...)
{
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (src != NULL) return pg_error_set(err, PG_ECONFIG, "%s: %s: %s", src, key, msg);
    return pg_error_set(err, PG_ECONFIG, "%s: %s", key, msg);
}

static int pg__cfg_oom(pg_error *err)
{
    return pg_error_set(err, PG_ENOMEM, "out of memory while reading the configuration");
}

/* ---- small helpers ----------------------------------------------------- */

/* For pg_config_defaults(), which has no way to report failure: a daemon
 * that cannot allocate a few bytes at start-up cannot run anyway. */
static char *pg__xstrdup(const char *s)
{
    char *p = strdup(s);
    if (p == NULL) {
        fputs("pergolad: out of memory\n", stderr);
        abort();
    }
    return p;
}

static void pg__free_list(char **list, int n)
{
    for (int i = 0; i < n; i++)
        free(list[i]);
    free(list);
}

/* An integer in MIN..MAX. JSON reals with an integral value ("4e10") are
 * accepted, since that is how people write big limits. */
static int pg__json_int(const json_t *v, int64_t min, int64_t max, int64_t *out)
{
    int64_t x;
    if (json_is_integer(v)) {
        x = json_integer_value(v);
    } else if (json_is_real(v)) {
        double d = json_real_value(v);
        /* 2^63 is exactly representable; anything >= it does not fit. */
        if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || d != trunc(d)) return -1;
        x = (int64_t)d;
    } else {
        return -1;
    }
    if (x < min || x > max) return -1;
    *out = x;
    return 0;
}

/* "must be an integer >= 1" or "must be an integer in 16..8192". */
static int pg__int_err(pg_error *err, const char *src, const char *key, int64_t min, int64_t max,
                       const char *note)
{
    if (max == INT64_MAX)
        return pg__cfg_err(err, src, key, "must be an integer >= %lld%s", (long long)min, note);
    return pg__cfg_err(err, src, key, "must be an integer in %lld..%lld%s", (long long)min,
                       (long long)max, note);
}

static int pg__set_int(const json_t *v, int64_t min, int64_t max, int64_t *out, const char *src,
                       const char *key, pg_error *err)
{
    if (pg__json_int(v, min, max, out) != 0) return pg__int_err(err, src, key, min, max, "");
    return 0;
}

/* A string without NUL bytes; *OUT is a new copy (the old one is freed). */
static int pg__set_string(const json_t *v, char **out, const char *src, const char *key,
                          pg_error *err)
{
    if (!json_is_string(v) || json_string_length(v) == 0)
        return pg__cfg_err(err, src, key, "must be a non-empty string");
    const char *s = json_string_value(v);
    if (strlen(s) != json_string_length(v))
        return pg__cfg_err(err, src, key, "must not contain NUL bytes");
    char *p = strdup(s);
    if (p == NULL) return pg__cfg_oom(err);
    free(*out);
    *out = p;
    return 0;
}

int pg_config_split_addr(const char *addr, char *host, size_t hostsize, int *port)
{
    if (addr == NULL) return -1;
    const char *colon = strrchr(addr, ':');
    if (colon == NULL || colon == addr) return -1;

    /* Port: 1 to 5 digits, 0..65535. */
    const char *p = colon + 1;
    size_t pl = strlen(p);
    if (pl == 0 || pl > 5) return -1;
    long pv = 0;
    for (size_t i = 0; i < pl; i++) {
        if (p[i] < '0' || p[i] > '9') return -1;
        pv = pv * 10 + (p[i] - '0');
    }
    if (pv > 65535) return -1;

    const char *h = addr;
    size_t hl = (size_t)(colon - addr);
    char buf[INET6_ADDRSTRLEN + 1];
    if (h[0] == '[') {
        /* "[v6]:port": the brackets keep the address's colons apart from
         * the port's. */
        if (hl < 3 || h[hl - 1] != ']') return -1;
        h++;
        hl -= 2;
        if (hl >= sizeof buf) return -1;
        memcpy(buf, h, hl);
        buf[hl] = '\0';
        struct in6_addr a6;
        if (inet_pton(AF_INET6, buf, &a6) != 1) return -1;
    } else {
        /* A host name or an IPv4 address: letters, digits, '.', '-', '_'.
         * A bare IPv6 address ("::1:7878") is ambiguous and refused. */
        if (hl > 253) return -1;
        for (size_t i = 0; i < hl; i++) {
            char ch = h[i];
            if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                  (ch >= '0' && ch <= '9') || ch == '.' || ch == '-' || ch == '_'))
                return -1;
        }
    }
    if (host != NULL) {
        if (hl >= hostsize) return -1;
        memcpy(host, h, hl);
        host[hl] = '\0';
    }
    if (port != NULL) *port = (int)pv;
    return 0;
}

static int pg__addr_err(pg_error *err, const char *src, const char *key, const char *addr)
{
    return pg__cfg_err(err, src, key, "'%s' is not HOST:PORT (port 0..65535; IPv6 as [::1]:7878)",
                       addr);
}

/* ---- keys -------------------------------------------------------------- */

static int pg__set_listen(pg_config *c, const json_t *v, const char *src, const char *key,
                          pg_error *err)
{
    if (!json_is_array(v))
        return pg__cfg_err(err, src, key, "must be a list of \"HOST:PORT\" strings");
    size_t n = json_array_size(v);
    if (n > 1024) return pg__cfg_err(err, src, key, "must have at most 1024 addresses");
    char **list = calloc(n ? n : 1, sizeof *list);
    if (list == NULL) return pg__cfg_oom(err);
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(v, i);
        char ekey[128];
        snprintf(ekey, sizeof ekey, "%s[%zu]", key, i);
        int rc = 0;
        if (!json_is_string(e))
            rc = pg__cfg_err(err, src, ekey, "must be a \"HOST:PORT\" string");
        else if (strlen(json_string_value(e)) != json_string_length(e) ||
                 pg_config_split_addr(json_string_value(e), NULL, 0, NULL) != 0)
            rc = pg__addr_err(err, src, ekey, json_string_value(e));
        else if ((list[i] = strdup(json_string_value(e))) == NULL)
            rc = pg__cfg_oom(err);
        if (rc != 0) {
            pg__free_list(list, (int)n);
            return rc;
        }
    }
    pg__free_list(c->listen, c->nlisten);
    c->listen = list;
    c->nlisten = (int)n;
    return 0;
}

static int pg__set_socket(pg_config *c, const json_t *v, const char *src, const char *key,
                          pg_error *err)
{
    if (json_is_null(v)) {
        free(c->socket_path);
        c->socket_path = NULL;
        return 0;
    }
    const size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;
    if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > max)
        return pg__cfg_err(err, src, key, "must be null or a path of 1..%zu bytes", max);
    return pg__set_string(v, &c->socket_path, src, key, err);
}

static int pg__set_tile(pg_config *c, const json_t *v, const char *src, const char *key,
                        pg_error *err)
{
    int64_t w, h;
    if (json_is_array(v)) {
        if (json_array_size(v) != 2 ||
            pg__json_int(json_array_get(v, 0), PG__TILE_MIN, PG__TILE_MAX, &w) != 0 ||
            pg__json_int(json_array_get(v, 1), PG__TILE_MIN, PG__TILE_MAX, &h) != 0)
            return pg__cfg_err(err, src, key,
                               "must be an integer in %d..%d or a list [width, height] of such",
                               PG__TILE_MIN, PG__TILE_MAX);
    } else if (pg__json_int(v, PG__TILE_MIN, PG__TILE_MAX, &w) == 0) {
        h = w;
    } else {
        return pg__cfg_err(err, src, key,
                           "must be an integer in %d..%d or a list [width, height] of such",
                           PG__TILE_MIN, PG__TILE_MAX);
    }
    /* GeoTIFF blocks are multiples of 16; tiles that are blocks of the
     * outputs are written straight to the file, in order. */
    if (w % 16 != 0 || h % 16 != 0)
        return pg__cfg_err(err, src, key, "must be a multiple of 16 (got %lldx%lld)", (long long)w,
                           (long long)h);
    c->tile_w = w;
    c->tile_h = h;
    return 0;
}

static int pg__set_log_level(pg_config *c, const json_t *v, const char *src, const char *key,
                             pg_error *err)
{
    int level;
    if (!json_is_string(v) || pg_log_parse_level(json_string_value(v), &level) != 0)
        return pg__cfg_err(err, src, key,
                           "must be one of \"error\", \"warn\", \"info\", \"debug\"");
    c->log_level = level;
    return 0;
}

static int pg__set_limits(pg_config *c, const json_t *v, const char *src, const char *key,
                          pg_error *err)
{
    if (!json_is_object(v)) return pg__cfg_err(err, src, key, "must be an object");
    static const struct {
        const char *name;
        size_t off;
        int64_t min;
    } keys[] = {
        {"max_request_bytes", offsetof(pg_config, limits.max_request_bytes), 1024},
        {"max_nodes", offsetof(pg_config, limits.max_nodes), 1},
        {"max_depth", offsetof(pg_config, limits.max_depth), 1},
        {"max_cells", offsetof(pg_config, limits.max_cells), 1},
        {"max_result_bytes", offsetof(pg_config, limits.max_result_bytes), 1},
        {"max_jobs", offsetof(pg_config, limits.max_jobs), 1},
        {"max_connections", offsetof(pg_config, limits.max_connections), 1},
    };
    const char *k;
    json_t *e;
    json_object_foreach((json_t *)v, k, e)
    {
        char path[160];
        snprintf(path, sizeof path, "%s.%s", key, k);
        size_t i = 0;
        while (i < PG_ARRAY_SIZE(keys) && strcmp(keys[i].name, k) != 0)
            i++;
        if (i == PG_ARRAY_SIZE(keys)) return pg__cfg_err(err, src, path, "unknown key");
        int64_t *field = (int64_t *)((char *)c + keys[i].off);
        int rc = pg__set_int(e, keys[i].min, INT64_MAX, field, src, path, err);
        if (rc != 0) return rc;
    }
    return 0;
}

static char *pg__dup_or_null(const char *s, int *failed);

/* ---- cluster ----------------------------------------------------------- */

static void pg__cluster_free(pg_cluster_cfg *k)
{
    free(k->node);
    for (int i = 0; i < k->nnodes; i++) {
        free(k->nodes[i].name);
        free(k->nodes[i].endpoint);
        pg__free_list(k->nodes[i].listen, k->nodes[i].nlisten);
    }
    free(k->nodes);
    for (int i = 0; i < k->npools; i++) {
        free(k->pools[i].name);
        pg__free_list(k->pools[i].members, k->pools[i].nmembers);
    }
    free(k->pools);
    free(k->secret_key_file);
    free(k->base_dir);
    free(k->source);
    /* The secret key must not linger in freed memory. */
    memset(k, 0, sizeof *k);
    k->self = -1;
}

static void pg__cluster_defaults(pg_cluster_cfg *k)
{
    memset(k, 0, sizeof *k);
    k->self = -1;
    k->heartbeat_ms = 1000;
    k->peer_timeout_ms = 3000;
    k->call_timeout_ms = 60000;
    k->max_calls_per_peer = 8;
}

static int pg__cluster_copy(pg_cluster_cfg *d, const pg_cluster_cfg *s)
{
    int failed = 0;
    *d = *s;
    d->node = pg__dup_or_null(s->node, &failed);
    d->secret_key_file = pg__dup_or_null(s->secret_key_file, &failed);
    d->base_dir = pg__dup_or_null(s->base_dir, &failed);
    d->source = pg__dup_or_null(s->source, &failed);
    d->nodes = NULL;
    d->pools = NULL;
    d->nnodes = d->npools = 0;
    if (s->nnodes > 0) {
        d->nodes = calloc((size_t)s->nnodes, sizeof *d->nodes);
        if (d->nodes == NULL) failed = 1;
        for (int i = 0; !failed && i < s->nnodes; i++) {
            d->nodes[i] = s->nodes[i];
            d->nodes[i].name = pg__dup_or_null(s->nodes[i].name, &failed);
            d->nodes[i].endpoint = pg__dup_or_null(s->nodes[i].endpoint, &failed);
            d->nodes[i].listen = NULL;
            d->nodes[i].nlisten = 0;
            d->nnodes = i + 1;
            if (s->nodes[i].listen && !failed) {
                d->nodes[i].listen = calloc((size_t)s->nodes[i].nlisten + 1, sizeof(char *));
                if (d->nodes[i].listen == NULL) failed = 1;
                for (int j = 0; !failed && j < s->nodes[i].nlisten; j++) {
                    d->nodes[i].listen[j] = pg__dup_or_null(s->nodes[i].listen[j], &failed);
                    d->nodes[i].nlisten = j + 1;
                }
            }
        }
    }
    if (s->npools > 0 && !failed) {
        d->pools = calloc((size_t)s->npools, sizeof *d->pools);
        if (d->pools == NULL) failed = 1;
        for (int i = 0; !failed && i < s->npools; i++) {
            pg_cluster_pool_cfg *p = &d->pools[i];
            d->npools = i + 1;
            p->name = pg__dup_or_null(s->pools[i].name, &failed);
            p->members = calloc((size_t)s->pools[i].nmembers + 1, sizeof *p->members);
            if (p->members == NULL) failed = 1;
            for (int j = 0; !failed && j < s->pools[i].nmembers; j++) {
                p->members[j] = pg__dup_or_null(s->pools[i].members[j], &failed);
                p->nmembers = j + 1;
            }
        }
    }
    if (failed) {
        pg__cluster_free(d);
        return PG_ENOMEM;
    }
    return 0;
}

/* Node and pool names: what a graph's "remote" names, and a ZeroMQ routing
 * id; short, printable, no separators. */
static bool pg__cluster_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 63) return false;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '.' || ch == '-' || ch == '_'))
            return false;
    }
    return true;
}

static int pg__cluster_find(const pg_cluster_cfg *k, const char *name)
{
    for (int i = 0; i < k->nnodes; i++)
        if (k->nodes[i].name && strcmp(k->nodes[i].name, name) == 0) return i;
    return -1;
}

/* A Z85 CURVE key: 40 characters that decode to 32 bytes. */
static bool pg__z85_key_ok(const char *s)
{
    uint8_t bin[32];
    return strlen(s) == 40 && zmq_z85_decode(bin, s) != NULL;
}

static int pg__cluster_nodes(pg_cluster_cfg *k, const json_t *v, const char *src, const char *key,
                             pg_error *err)
{
    if (!json_is_array(v) || json_array_size(v) == 0)
        return pg__cfg_err(err, src, key,
                           "must be a non-empty list of {\"name\", \"endpoint\", \"public_key\"}");
    size_t n = json_array_size(v);
    if (n > 1024) return pg__cfg_err(err, src, key, "must have at most 1024 nodes");
    k->nodes = calloc(n, sizeof *k->nodes);
    if (k->nodes == NULL) return pg__cfg_oom(err);
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_array_get(v, i);
        char ekey[192], fkey[256];
        snprintf(ekey, sizeof ekey, "%.160s[%zu]", key, i);
        if (!json_is_object(e))
            return pg__cfg_err(err, src, ekey,
                               "must be an object {\"name\", \"endpoint\", \"public_key\"}");
        pg_cluster_node_cfg *nd = &k->nodes[i];
        k->nnodes = (int)i + 1;
        const char *fk;
        json_t *fv;
        json_object_foreach((json_t *)e, fk, fv)
        {
            snprintf(fkey, sizeof fkey, "%s.%s", ekey, fk);
            if (strcmp(fk, "listen") == 0) {
                /* Parsed like the top-level key, into a scratch config. */
                pg_config tmp;
                memset(&tmp, 0, sizeof tmp);
                int rc = pg__set_listen(&tmp, fv, src, fkey, err);
                if (rc != 0) return rc;
                nd->listen = tmp.listen;
                nd->nlisten = tmp.nlisten;
                continue;
            }
            if (strcmp(fk, "name") != 0 && strcmp(fk, "endpoint") != 0 &&
                strcmp(fk, "public_key") != 0)
                return pg__cfg_err(err, src, fkey, "unknown key");
        }
        static const char *const req[] = {"name", "endpoint", "public_key"};
        for (size_t r = 0; r < 3; r++) {
            const json_t *fv2 = json_object_get(e, req[r]);
            snprintf(fkey, sizeof fkey, "%s.%s", ekey, req[r]);
            if (fv2 == NULL) return pg__cfg_err(err, src, fkey, "is required");
            if (!json_is_string(fv2) || strlen(json_string_value(fv2)) != json_string_length(fv2))
                return pg__cfg_err(err, src, fkey, "must be a string");
        }
        const char *name = json_string_value(json_object_get(e, "name"));
        const char *ep = json_string_value(json_object_get(e, "endpoint"));
        const char *pk = json_string_value(json_object_get(e, "public_key"));
        snprintf(fkey, sizeof fkey, "%s.name", ekey);
        if (!pg__cluster_name_ok(name))
            return pg__cfg_err(err, src, fkey,
                               "'%.80s' is not a node name (1..63 of A-Z a-z 0-9 . - _)", name);
        if (pg__cluster_find(k, name) >= 0)
            return pg__cfg_err(err, src, fkey, "duplicate node name '%s'", name);
        snprintf(fkey, sizeof fkey, "%s.endpoint", ekey);
        int port = 0;
        if (strncmp(ep, "tcp://", 6) != 0 || pg_config_split_addr(ep + 6, NULL, 0, &port) != 0 ||
            port == 0)
            return pg__cfg_err(err, src, fkey,
                               "'%.100s' is not tcp://HOST:PORT (port 1..65535; IPv6 as "
                               "tcp://[::1]:7101)",
                               ep);
        for (int j = 0; j < (int)i; j++)
            if (strcmp(k->nodes[j].endpoint, ep) == 0)
                return pg__cfg_err(err, src, fkey, "'%s' is also the endpoint of node '%s'", ep,
                                   k->nodes[j].name);
        snprintf(fkey, sizeof fkey, "%s.public_key", ekey);
        if (!pg__z85_key_ok(pk))
            return pg__cfg_err(err, src, fkey,
                               "must be a CURVE public key: 40 Z85 characters (pergola keygen)");
        if ((nd->name = strdup(name)) == NULL || (nd->endpoint = strdup(ep)) == NULL)
            return pg__cfg_oom(err);
        memcpy(nd->public_key, pk, 41);
    }
    for (int i = 0; i < k->nnodes; i++)
        for (int j = 0; j < i; j++)
            if (strcmp(k->nodes[i].public_key, k->nodes[j].public_key) == 0) {
                char fkey[256];
                snprintf(fkey, sizeof fkey, "%.160s[%d].public_key", key, i);
                return pg__cfg_err(err, src, fkey, "is also the key of node '%s'",
                                   k->nodes[j].name);
            }
    return 0;
}

static int pg__cluster_pools(pg_cluster_cfg *k, const json_t *v, const char *src, const char *key,
                             pg_error *err)
{
    if (!json_is_object(v))
        return pg__cfg_err(err, src, key, "must be an object {\"POOL\": [node names]}");
    size_t n = json_object_size(v);
    k->pools = calloc(n ? n : 1, sizeof *k->pools);
    if (k->pools == NULL) return pg__cfg_oom(err);
    const char *pn;
    json_t *pv;
    json_object_foreach((json_t *)v, pn, pv)
    {
        char pkey[200];
        snprintf(pkey, sizeof pkey, "%.100s.%.80s", key, pn);
        if (!pg__cluster_name_ok(pn))
            return pg__cfg_err(err, src, pkey, "is not a pool name (1..63 of A-Z a-z 0-9 . - _)");
        if (pg__cluster_find(k, pn) >= 0)
            return pg__cfg_err(err, src, pkey, "a pool cannot have the name of a node");
        if (!json_is_array(pv) || json_array_size(pv) == 0)
            return pg__cfg_err(err, src, pkey, "must be a non-empty list of node names");
        pg_cluster_pool_cfg *p = &k->pools[k->npools++];
        if ((p->name = strdup(pn)) == NULL) return pg__cfg_oom(err);
        size_t m = json_array_size(pv);
        if ((p->members = calloc(m, sizeof *p->members)) == NULL) return pg__cfg_oom(err);
        for (size_t i = 0; i < m; i++) {
            const json_t *e = json_array_get(pv, i);
            char ekey[240];
            snprintf(ekey, sizeof ekey, "%.200s[%zu]", pkey, i);
            if (!json_is_string(e)) return pg__cfg_err(err, src, ekey, "must be a node name");
            const char *mn = json_string_value(e);
            if (pg__cluster_find(k, mn) < 0)
                return pg__cfg_err(err, src, ekey, "'%.80s' is not in cluster.nodes", mn);
            for (int j = 0; j < p->nmembers; j++)
                if (strcmp(p->members[j], mn) == 0)
                    return pg__cfg_err(err, src, ekey, "'%s' is listed twice", mn);
            if ((p->members[p->nmembers] = strdup(mn)) == NULL) return pg__cfg_oom(err);
            p->nmembers++;
        }
    }
    return 0;
}

static int pg__set_cluster(pg_config *c, const json_t *v, const char *src, const char *key,
                           pg_error *err)
{
    if (json_is_null(v)) { /* a later file may turn the cluster off */
        pg__cluster_free(&c->cluster);
        return 0;
    }
    if (!json_is_object(v)) return pg__cfg_err(err, src, key, "must be an object");
    pg_cluster_cfg k;
    pg__cluster_defaults(&k);
    k.enabled = true;
    int rc = 0;
    char path[160];
    /* Nodes first: pools and "node" refer to them. */
    const json_t *nodes = json_object_get(v, "nodes");
    snprintf(path, sizeof path, "%s.nodes", key);
    if (nodes == NULL)
        rc = pg__cfg_err(err, src, path, "is required");
    else
        rc = pg__cluster_nodes(&k, nodes, src, path, err);
    const char *fk;
    json_t *fv;
    json_object_foreach((json_t *)v, fk, fv)
    {
        if (rc != 0) break;
        snprintf(path, sizeof path, "%s.%s", key, fk);
        if (strcmp(fk, "nodes") == 0) continue;
        if (strcmp(fk, "node") == 0) {
            if ((rc = pg__set_string(fv, &k.node, src, path, err)) == 0 &&
                pg__cluster_find(&k, k.node) < 0)
                rc = pg__cfg_err(err, src, path, "'%.80s' is not in cluster.nodes", k.node);
        } else if (strcmp(fk, "secret_key_file") == 0) {
            rc = pg__set_string(fv, &k.secret_key_file, src, path, err);
        } else if (strcmp(fk, "pools") == 0) {
            rc = pg__cluster_pools(&k, fv, src, path, err);
        } else if (strcmp(fk, "heartbeat_ms") == 0) {
            rc = pg__set_int(fv, 10, 3600000, &k.heartbeat_ms, src, path, err);
        } else if (strcmp(fk, "peer_timeout_ms") == 0) {
            rc = pg__set_int(fv, 20, 36000000, &k.peer_timeout_ms, src, path, err);
        } else if (strcmp(fk, "call_timeout_ms") == 0) {
            rc = pg__set_int(fv, 1, INT64_C(1) << 40, &k.call_timeout_ms, src, path, err);
        } else if (strcmp(fk, "max_calls_per_peer") == 0) {
            rc = pg__set_int(fv, 1, 1000000, &k.max_calls_per_peer, src, path, err);
        } else if (strcmp(fk, "distribute") == 0) {
            const char *pn = json_is_true(fv) ? "hilbert" : json_string_value(fv);
            if (json_is_false(fv))
                k.distribute[0] = '\0';
            else if (pn && (strcmp(pn, "hilbert") == 0 || strcmp(pn, "round_robin") == 0 ||
                            strcmp(pn, "by_input") == 0))
                snprintf(k.distribute, sizeof k.distribute, "%s", pn);
            else
                rc = pg__cfg_err(err, src, path,
                                 "must be false, true, \"hilbert\", \"round_robin\" or "
                                 "\"by_input\"");
        } else {
            rc = pg__cfg_err(err, src, path, "unknown key");
        }
    }
    if (rc == 0 && k.secret_key_file == NULL) {
        snprintf(path, sizeof path, "%s.secret_key_file", key);
        rc = pg__cfg_err(err, src, path, "is required (this node's CURVE secret key)");
    }
    if (rc == 0 && k.peer_timeout_ms <= k.heartbeat_ms) {
        snprintf(path, sizeof path, "%s.peer_timeout_ms", key);
        rc = pg__cfg_err(err, src, path,
                         "must be longer than cluster.heartbeat_ms (%lld), or every peer is "
                         "always down",
                         (long long)k.heartbeat_ms);
    }
    if (rc == 0 && src != NULL) {
        /* Relative key paths resolve against the config file's directory. */
        const char *slash = strrchr(src, '/');
        k.base_dir =
            slash ? strndup(src, (size_t)(slash - src == 0 ? 1 : slash - src)) : strdup(".");
        k.source = strdup(src);
        if (k.base_dir == NULL || k.source == NULL) rc = pg__cfg_oom(err);
    }
    if (rc != 0) {
        pg__cluster_free(&k);
        return rc;
    }
    pg__cluster_free(&c->cluster);
    c->cluster = k;
    return 0;
}

/* Reads a Z85 key from PATH: 40 characters, surrounding white space allowed. */
static int pg__read_key_file(const char *path, char out[41], char *why, size_t whylen)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(why, whylen, "cannot read '%.900s': %s", path, strerror(errno));
        return -1;
    }
    char buf[256];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        snprintf(why, whylen, "cannot read '%.900s'", path);
        return -1;
    }
    buf[n] = '\0';
    char *s = buf, *e = buf + n;
    while (s < e && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r'))
        s++;
    while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\n' || e[-1] == '\r'))
        e--;
    *e = '\0';
    if (!pg__z85_key_ok(s)) {
        snprintf(why, whylen, "'%.900s' does not hold a CURVE secret key (40 Z85 characters)",
                 path);
        memset(buf, 0, sizeof buf);
        return -1;
    }
    memcpy(out, s, 41);
    memset(buf, 0, sizeof buf);
    return 0;
}

int pg_config_cluster_resolve(pg_config *c, pg_error *err)
{
    pg_cluster_cfg *k = &c->cluster;
    if (!k->enabled) return 0;
    const char *src = k->source;
    if (k->node == NULL)
        return pg__cfg_err(err, src, "cluster.node",
                           "which node is this? set cluster.node or pass --node NAME");
    int self = pg__cluster_find(k, k->node);
    if (self < 0)
        return pg__cfg_err(err, src, "cluster.node", "'%.80s' is not in cluster.nodes", k->node);
    /* "{node}" -> the node's name, so that one file serves every node. */
    char rel[1024] = "", path[2048];
    const char *t = k->secret_key_file;
    size_t o = 0;
    while (*t && o < sizeof rel - 1) {
        if (strncmp(t, "{node}", 6) == 0) {
            o += (size_t)snprintf(rel + o, sizeof rel - o, "%s", k->node);
            t += 6;
        } else {
            rel[o++] = *t++;
        }
        if (o >= sizeof rel) o = sizeof rel - 1;
    }
    rel[o] = '\0';
    if (rel[0] == '/' || k->base_dir == NULL)
        snprintf(path, sizeof path, "%s", rel);
    else
        snprintf(path, sizeof path, "%s/%s", k->base_dir, rel);
    char why[1200], secret[41];
    if (pg__read_key_file(path, secret, why, sizeof why) != 0)
        return pg__cfg_err(err, src, "cluster.secret_key_file", "%s", why);
    char pub[41];
    if (zmq_curve_public(pub, secret) != 0) {
        memset(secret, 0, sizeof secret);
        return pg__cfg_err(err, src, "cluster.secret_key_file",
                           "this libzmq has no CURVE support (zmq_has(\"curve\") is false)");
    }
    if (strcmp(pub, k->nodes[self].public_key) != 0) {
        memset(secret, 0, sizeof secret);
        char nkey[64];
        snprintf(nkey, sizeof nkey, "cluster.nodes[%d].public_key", self);
        return pg__cfg_err(err, src, "cluster.secret_key_file",
                           "the secret key in '%.150s' does not match %s of node '%s'", path, nkey,
                           k->node);
    }
    if (k->nodes[self].listen != NULL) {
        char **copy = calloc((size_t)k->nodes[self].nlisten + 1, sizeof *copy);
        if (copy == NULL) return pg__cfg_oom(err);
        for (int i = 0; i < k->nodes[self].nlisten; i++)
            if ((copy[i] = strdup(k->nodes[self].listen[i])) == NULL) {
                pg__free_list(copy, i);
                return pg__cfg_oom(err);
            }
        pg__free_list(c->listen, c->nlisten);
        c->listen = copy;
        c->nlisten = k->nodes[self].nlisten;
    }
    k->self = self;
    memcpy(k->secret_key, secret, 41);
    memset(secret, 0, sizeof secret);
    return 0;
}

/* Sets top-level KEY from V. NAME is what errors call it: the key path for
 * a file, the flag ("--workers") for the command line. */
static int pg__set_key(pg_config *c, const char *key, const json_t *v, const char *src,
                       const char *name, pg_error *err)
{
    if (strcmp(key, "listen") == 0) return pg__set_listen(c, v, src, name, err);
    if (strcmp(key, "socket") == 0) return pg__set_socket(c, v, src, name, err);
    if (strcmp(key, "workers") == 0) {
        int64_t w;
        if (pg__json_int(v, 0, PG__WORKERS_MAX, &w) != 0)
            return pg__int_err(err, src, name, 0, PG__WORKERS_MAX, " (0: one per core)");
        c->workers = (int)w;
        return 0;
    }
    if (strcmp(key, "tile_size") == 0) return pg__set_tile(c, v, src, name, err);
    if (strcmp(key, "memory_budget_mb") == 0)
        return pg__set_int(v, 16, PG__MB_MAX, &c->memory_budget_mb, src, name, err);
    if (strcmp(key, "gdal_cache_mb") == 0)
        return pg__set_int(v, 1, PG__MB_MAX, &c->gdal_cache_mb, src, name, err);
    if (strcmp(key, "cache_mb") == 0)
        return pg__set_int(v, 0, PG__MB_MAX, &c->cache_mb, src, name, err);
    if (strcmp(key, "fusion") == 0) {
        if (!json_is_boolean(v)) return pg__cfg_err(err, src, name, "must be true or false");
        c->fusion = json_is_true(v);
        return 0;
    }
    if (strcmp(key, "data_root") == 0) return pg__set_string(v, &c->data_root, src, name, err);
    if (strcmp(key, "limits") == 0) return pg__set_limits(c, v, src, name, err);
    if (strcmp(key, "default_timeout_ms") == 0)
        return pg__set_int(v, 0, INT64_MAX, &c->default_timeout_ms, src, name, err);
    if (strcmp(key, "shutdown_grace_ms") == 0)
        return pg__set_int(v, 0, INT64_MAX, &c->shutdown_grace_ms, src, name, err);
    if (strcmp(key, "log_level") == 0) return pg__set_log_level(c, v, src, name, err);
    if (strcmp(key, "ready_file") == 0) return pg__set_string(v, &c->ready_file, src, name, err);
    if (strcmp(key, "cluster") == 0) return pg__set_cluster(c, v, src, name, err);
    return pg__cfg_err(err, src, name, "unknown key");
}

/* ---- whole configs ----------------------------------------------------- */

void pg_config_defaults(pg_config *c)
{
    memset(c, 0, sizeof *c);
    c->listen = malloc(sizeof *c->listen);
    if (c->listen == NULL) {
        fputs("pergolad: out of memory\n", stderr);
        abort();
    }
    c->listen[0] = pg__xstrdup("127.0.0.1:7878");
    c->nlisten = 1;
    c->socket_path = NULL;
    c->workers = 0;
    c->tile_w = c->tile_h = 256;
    c->memory_budget_mb = 1024;
    c->gdal_cache_mb = 64;
    c->cache_mb = 256;
    c->fusion = true;
    c->data_root = pg__xstrdup("data");
    c->limits.max_request_bytes = 1048576;
    c->limits.max_nodes = 10000;
    c->limits.max_depth = 64;
    c->limits.max_cells = INT64_C(40000000000);
    c->limits.max_result_bytes = 268435456;
    c->limits.max_jobs = 64;
    c->limits.max_connections = 256;
    c->default_timeout_ms = 0;
    c->shutdown_grace_ms = 10000;
    c->log_level = PG_LOG_INFO;
    c->ready_file = NULL;
    pg__cluster_defaults(&c->cluster);
}

void pg_config_clear(pg_config *c)
{
    if (c == NULL) return;
    pg__free_list(c->listen, c->nlisten);
    free(c->socket_path);
    free(c->data_root);
    free(c->ready_file);
    pg__cluster_free(&c->cluster);
    memset(c, 0, sizeof *c);
}

static char *pg__dup_or_null(const char *s, int *failed)
{
    if (s == NULL) return NULL;
    char *p = strdup(s);
    if (p == NULL) *failed = 1;
    return p;
}

/* A deep copy, so that a load can work on a scratch config. */
static int pg__config_copy(pg_config *dst, const pg_config *src)
{
    int failed = 0;
    *dst = *src;
    dst->listen = calloc(src->nlisten > 0 ? (size_t)src->nlisten : 1, sizeof *dst->listen);
    dst->nlisten = 0;
    dst->socket_path = dst->data_root = dst->ready_file = NULL;
    if (dst->listen == NULL) failed = 1;
    for (int i = 0; !failed && i < src->nlisten; i++) {
        dst->listen[i] = pg__dup_or_null(src->listen[i], &failed);
        dst->nlisten = i + 1;
    }
    dst->socket_path = pg__dup_or_null(src->socket_path, &failed);
    dst->data_root = pg__dup_or_null(src->data_root, &failed);
    dst->ready_file = pg__dup_or_null(src->ready_file, &failed);
    memset(&dst->cluster, 0, sizeof dst->cluster);
    if (!failed && pg__cluster_copy(&dst->cluster, &src->cluster) != 0) failed = 1;
    if (failed) {
        pg_config_clear(dst);
        return PG_ENOMEM;
    }
    return 0;
}

static int pg__apply(pg_config *c, const json_t *obj, const char *src, pg_error *err)
{
    if (!json_is_object(obj)) {
        if (src != NULL)
            return pg_error_set(err, PG_ECONFIG, "%s: the configuration must be a JSON object",
                                src);
        return pg_error_set(err, PG_ECONFIG, "the configuration must be a JSON object");
    }
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        /* ready_file is where the daemon announces itself: a property of
         * one run, so a command-line flag only. */
        if (strcmp(key, "ready_file") == 0) return pg__cfg_err(err, src, key, "unknown key");
        int rc = pg__set_key(c, key, v, src, key, err);
        if (rc != 0) return rc;
    }
    return 0;
}

static int pg__load(pg_config *c, const char *path, pg_error *err)
{
    /* jansson reads a directory as an empty file: say what it is. */
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        return pg_error_set(err, PG_ECONFIG, "%s: is a directory, not a configuration file", path);
    json_error_t je;
    json_t *root = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL) {
        if (je.line > 0)
            return pg_error_set(err, PG_ECONFIG, "%s: line %d, column %d: %s", path, je.line,
                                je.column, je.text);
        /* "unable to open FILE: No such file or directory" names it already. */
        if (strstr(je.text, path) != NULL) return pg_error_set(err, PG_ECONFIG, "%s", je.text);
        return pg_error_set(err, PG_ECONFIG, "%s: %s", path, je.text);
    }
    int rc = pg__apply(c, root, path, err);
    json_decref(root);
    return rc;
}

int pg_config_apply_json(pg_config *c, const void *json_object, pg_error *err)
{
    pg_config tmp;
    if (pg__config_copy(&tmp, c) != 0) return pg__cfg_oom(err);
    int rc = pg__apply(&tmp, json_object, NULL, err);
    if (rc == 0 && tmp.cluster.node != NULL) rc = pg_config_cluster_resolve(&tmp, err);
    if (rc != 0) {
        pg_config_clear(&tmp);
        return rc;
    }
    pg_config_clear(c);
    *c = tmp;
    return 0;
}

int pg_config_load_file(pg_config *c, const char *path, pg_error *err)
{
    if (path == NULL) return pg_error_set(err, PG_EINVAL, "no configuration file given");
    pg_config tmp;
    if (pg__config_copy(&tmp, c) != 0) return pg__cfg_oom(err);
    int rc = pg__load(&tmp, path, err);
    if (rc == 0 && tmp.cluster.node != NULL) rc = pg_config_cluster_resolve(&tmp, err);
    if (rc != 0) {
        pg_config_clear(&tmp);
        return rc;
    }
    pg_config_clear(c);
    *c = tmp;
    return 0;
}

/* ---- command line ------------------------------------------------------ */

enum { PG__F_INT, PG__F_STR, PG__F_TILE, PG__F_BOOL, PG__F_NONE };

static const struct pg__flag {
    const char *flag;
    const char *key; /* config key it sets; NULL for the special ones */
    int kind;
    const char *arg;
    const char *help;
} pg__flags[] = {
    {"--config", NULL, PG__F_STR, "FILE",
     "read FILE (JSON, like conf/pergola.json) before every other flag"},
    {"--listen", "listen", PG__F_STR, "HOST:PORT",
     "listen on this TCP address; repeatable, replaces the config's list\n"
     "                          (IPv6 as [::1]:7878; port 0: any free port)"},
    {"--socket", "socket", PG__F_STR, "PATH", "also listen on a Unix socket at PATH"},
    {"--workers", "workers", PG__F_INT, "N", "worker threads (0: one per core)"},
    {"--data-root", "data_root", PG__F_STR, "DIR", "directory that graph paths resolve in"},
    {"--tile-size", "tile_size", PG__F_TILE, "N",
     "tile size, N or WxH (16..8192, multiples of 16)"},
    {"--memory-budget-mb", "memory_budget_mb", PG__F_INT, "N",
     "memory for tiles in flight, in MiB (>= 16)"},
    {"--cache-mb", "cache_mb", PG__F_INT, "N", "memory for the result cache, in MiB (0: none)"},
    {"--fusion", "fusion", PG__F_BOOL, "on|off",
     "run chains of per-cell ops as one pass per tile (default on)"},
    {"--log-level", "log_level", PG__F_STR, "L", "error, warn, info or debug"},
    {"--node", "cluster.node", PG__F_STR, "NAME",
     "this daemon is node NAME of the config's cluster (cluster.node)"},
    {"--ready-file", "ready_file", PG__F_STR, "PATH",
     "once listening, write the bound addresses to PATH"},
    {"--help", NULL, PG__F_NONE, NULL, "print this help and exit"},
    {"--version", NULL, PG__F_NONE, NULL, "print the version and exit"},
};

static void pg__usage(FILE *out)
{
    fputs("Usage: pergolad [FLAGS]\n"
          "The Pergola raster processing daemon.\n\n",
          out);
    for (size_t i = 0; i < PG_ARRAY_SIZE(pg__flags); i++) {
        char left[40];
        snprintf(left, sizeof left, "%s%s%s", pg__flags[i].flag, pg__flags[i].arg ? " " : "",
                 pg__flags[i].arg ? pg__flags[i].arg : "");
        fprintf(out, "  %-24s%s\n", left, pg__flags[i].help);
    }
    fputs("\nEvery flag with a value also takes the form --flag=VALUE. Flags override the\n"
          "configuration file; without --config the built-in defaults are used.\n",
          out);
}

/* A strict decimal int64: optional '-', digits, nothing else. */
static int pg__parse_i64(const char *s, int64_t *out)
{
    if (s == NULL || !(*s == '-' || (*s >= '0' && *s <= '9'))) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0') return -1;
    *out = v;
    return 0;
}

/* The flag's text value as the JSON value its config key takes. */
static json_t *pg__flag_value(const struct pg__flag *f, const char *s)
{
    int64_t a, b;
    switch (f->kind) {
    case PG__F_INT:
        if (pg__parse_i64(s, &a) != 0) return NULL;
        return json_integer(a);
    case PG__F_BOOL:
        if (strcmp(s, "on") == 0 || strcmp(s, "true") == 0) return json_true();
        if (strcmp(s, "off") == 0 || strcmp(s, "false") == 0) return json_false();
        return NULL;
    case PG__F_TILE: {
        const char *x = strpbrk(s, "xX");
        if (x == NULL) return pg__parse_i64(s, &a) == 0 ? json_integer(a) : NULL;
        char w[32];
        size_t wl = (size_t)(x - s);
        if (wl == 0 || wl >= sizeof w) return NULL;
        memcpy(w, s, wl);
        w[wl] = '\0';
        if (pg__parse_i64(w, &a) != 0 || pg__parse_i64(x + 1, &b) != 0) return NULL;
        return json_pack("[II]", (json_int_t)a, (json_int_t)b);
    }
    default:
        /* Command-line paths need not be UTF-8; this JSON is never dumped. */
        return json_string_nocheck(s);
    }
}

int pg_config_from_args(pg_config *c, int argc, char **argv, pg_error *err)
{
    /* First pass: recognise every flag and its value, so that --config can
     * be loaded before the others and a typo fails before anything runs. */
    size_t nargs = argc > 0 ? (size_t)argc : 1;
    const struct pg__flag **fl = calloc(nargs, sizeof *fl);
    const char **val = calloc(nargs, sizeof *val);
    json_t *listen = NULL;
    pg_config tmp;
    int have_tmp = 0;
    int n = 0, help = 0, version = 0, rc = 0;
    if (fl == NULL || val == NULL) {
        rc = pg__cfg_oom(err);
        goto out;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        const struct pg__flag *f = NULL;
        for (size_t k = 0; k < PG_ARRAY_SIZE(pg__flags); k++) {
            if (strncmp(a, pg__flags[k].flag, len) == 0 && pg__flags[k].flag[len] == '\0') {
                f = &pg__flags[k];
                break;
            }
        }
        if (f == NULL || strncmp(a, "--", 2) != 0) {
            rc = pg_error_set(err, PG_ECONFIG, "%s '%s' (see --help)",
                              strncmp(a, "--", 2) == 0 ? "unknown flag" : "unexpected argument", a);
            goto out;
        }
        const char *v = NULL;
        if (f->kind == PG__F_NONE) {
            if (eq != NULL) {
                rc = pg_error_set(err, PG_ECONFIG, "%s: takes no value", f->flag);
                goto out;
            }
            if (strcmp(f->flag, "--help") == 0) help = 1;
            if (strcmp(f->flag, "--version") == 0) version = 1;
            continue;
        }
        if (eq != NULL) {
            v = eq + 1;
        } else if (i + 1 < argc) {
            v = argv[++i];
        } else {
            rc = pg_error_set(err, PG_ECONFIG, "%s: needs a value (%s)", f->flag, f->arg);
            goto out;
        }
        fl[n] = f;
        val[n] = v;
        n++;
    }
    if (help) {
        pg__usage(stdout);
        rc = 1;
        goto out;
    }
    if (version) {
        fputs("pergolad " PG_VERSION "\n", stdout);
        rc = 1;
        goto out;
    }

    if (pg__config_copy(&tmp, c) != 0) {
        rc = pg__cfg_oom(err);
        goto out;
    }
    have_tmp = 1;
    for (int i = 0; i < n; i++) {
        if (fl[i]->key == NULL && (rc = pg__load(&tmp, val[i], err)) != 0) goto out;
    }
    for (int i = 0; i < n; i++) {
        const struct pg__flag *f = fl[i];
        if (f->key == NULL) continue;
        if (strcmp(f->key, "listen") == 0) {
            /* Collected and set once at the end: the first --listen replaces
             * the configured list, later ones add to it. */
            if (pg_config_split_addr(val[i], NULL, 0, NULL) != 0) {
                rc = pg__addr_err(err, NULL, f->flag, val[i]);
                goto out;
            }
            if (listen == NULL && (listen = json_array()) == NULL) {
                rc = pg__cfg_oom(err);
                goto out;
            }
            if (json_array_append_new(listen, json_string_nocheck(val[i])) != 0) {
                rc = pg__cfg_oom(err);
                goto out;
            }
            continue;
        }
        if (strcmp(f->key, "cluster.node") == 0) {
            if (!tmp.cluster.enabled) {
                rc = pg_error_set(err, PG_ECONFIG,
                                  "--node: the configuration has no \"cluster\" (see --config)");
                goto out;
            }
            json_t *jv = json_string_nocheck(val[i]);
            rc = pg__set_string(jv, &tmp.cluster.node, NULL, f->flag, err);
            json_decref(jv);
            if (rc == 0 && pg__cluster_find(&tmp.cluster, tmp.cluster.node) < 0)
                rc = pg_error_set(err, PG_ECONFIG, "--node: '%.80s' is not in cluster.nodes",
                                  tmp.cluster.node);
            if (rc != 0) goto out;
            continue;
        }
        json_t *jv = pg__flag_value(f, val[i]);
        if (jv == NULL) {
            rc = f->kind == PG__F_TILE
                     ? pg_error_set(err, PG_ECONFIG, "%s: '%s' is not N or WxH", f->flag, val[i])
                 : f->kind == PG__F_BOOL
                     ? pg_error_set(err, PG_ECONFIG, "%s: '%s' is not on or off", f->flag, val[i])
                     : pg_error_set(err, PG_ECONFIG, "%s: '%s' is not an integer", f->flag, val[i]);
            goto out;
        }
        rc = pg__set_key(&tmp, f->key, jv, NULL, f->flag, err);
        json_decref(jv);
        if (rc != 0) goto out;
    }
    /* The node's own "listen" first, so that --listen still overrides it. */
    if ((rc = pg_config_cluster_resolve(&tmp, err)) != 0) goto out;
    if (listen != NULL && (rc = pg__set_key(&tmp, "listen", listen, NULL, "--listen", err)) != 0)
        goto out;
    if (tmp.nlisten == 0 && tmp.socket_path == NULL) {
        rc = pg_error_set(err, PG_ECONFIG,
                          "listen: nothing to listen on (no address and no socket)");
        goto out;
    }
    pg_config_clear(c);
    *c = tmp;
    have_tmp = 0;
out:
    if (have_tmp) pg_config_clear(&tmp);
    json_decref(listen);
    free(fl);
    free(val);
    return rc;
}
