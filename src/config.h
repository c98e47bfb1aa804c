/* The daemon's configuration: conf/pergola.json, then command-line flags.
 *
 * Every key is documented in README.md ("Configuration"). An unknown key, a
 * value of the wrong type or out of range is an error that names the key
 * ("limits.max_nodes: must be an integer >= 1"), never a silent default.
 */
#ifndef PG_CONFIG_H
#define PG_CONFIG_H

#include "pergola/error.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One node of the cluster (config "cluster.nodes[i]"). */
typedef struct pg_cluster_node_cfg {
    char *name;          /* [A-Za-z0-9_.-]{1,63} */
    char *endpoint;      /* "tcp://HOST:PORT" (port 1..65535) */
    char public_key[41]; /* Z85, 40 characters */
    char **listen;       /* optional: the client addresses of this node, which replace
                            "listen" when it is this node (NULL: keep "listen") */
    int nlisten;
} pg_cluster_node_cfg;

/* A named group of nodes ("cluster.pools"). */
typedef struct pg_cluster_pool_cfg {
    char *name;
    char **members; /* node names, each in nodes */
    int nmembers;
} pg_cluster_pool_cfg;

/* The "cluster" key (README "Cluster"). enabled is false without it. */
typedef struct pg_cluster_cfg {
    bool enabled;
    char *node; /* this node's name ("node" or --node); in nodes */
    pg_cluster_node_cfg *nodes;
    int nnodes;
    pg_cluster_pool_cfg *pools;
    int npools;
    char *secret_key_file; /* as written; may contain "{node}" */
    char *base_dir;        /* the directory of the file that set it (NULL: cwd) */
    char *source;          /* that file, for messages (NULL: not from a file) */
    int64_t heartbeat_ms, peer_timeout_ms, call_timeout_ms, max_calls_per_peer;
    char distribute[16]; /* runs without "distribute": "" (not), else a partition name */
    /* Set once the node is known and its key checked (pg_config_from_args,
     * or pg_config_load_file when the file names the node): */
    int self;            /* index of node in nodes, -1 before */
    char secret_key[41]; /* Z85, matches nodes[self].public_key */
} pg_cluster_cfg;

typedef struct pg_config {
    char **listen; /* TCP addresses "HOST:PORT" (port 0: ephemeral) */
    int nlisten;
    char *socket_path; /* Unix socket path, NULL for none */
    int workers;       /* 0: one per core */
    int64_t tile_w, tile_h;
    int64_t memory_budget_mb;
    int64_t gdal_cache_mb;
    int64_t cache_mb; /* the result cache (src/cache.h); 0: no cache */
    bool fusion;      /* run chains of per-cell ops as one pass (src/fuse.h) */
    char *data_root;
    struct {
        int64_t max_request_bytes;
        int64_t max_nodes;
        int64_t max_depth;
        int64_t max_cells;
        int64_t max_result_bytes;
        int64_t max_jobs;
        int64_t max_connections;
    } limits;
    int64_t default_timeout_ms; /* 0: none */
    int64_t shutdown_grace_ms;
    int log_level;    /* PG_LOG_* */
    char *ready_file; /* flag only: where to write the bound addresses */
    pg_cluster_cfg cluster;
} pg_config;

/* Fills C with the built-in defaults (those of conf/pergola.json). C is
 * overwritten, not freed first. Aborts if it cannot allocate (start-up). */
void pg_config_defaults(pg_config *c);
/* Reads a JSON config file over C's current values (keys absent from the
 * file keep their values). Returns 0, or a negative code with ERR naming the
 * file and key: PG_ECONFIG ("conf/x.json: limits.max_nodes: must be an
 * integer >= 1"; syntax errors give line and column), PG_ENOMEM. On error C
 * is unchanged. Integer keys also accept integral reals such as 4e10.
 * "ready_file" is a flag only and unknown in files. */
int pg_config_load_file(pg_config *c, const char *path, pg_error *err);
/* The same from a parsed JSON object (a json_t *, borrowed); messages name
 * the key without a file. */
int pg_config_apply_json(pg_config *c, const void *json_object, pg_error *err);
/* Applies command-line flags (see pergolad --help); --config FILE is
 * loaded first wherever it appears (several are loaded in order). Flags take
 * "--flag VALUE" or "--flag=VALUE". Returns 0, 1 if --help or --version was
 * handled (printed to stdout), or a negative code with ERR naming the flag
 * (PG_ECONFIG). Also fails if the result listens nowhere (no address and no
 * socket). On error C is unchanged. */
int pg_config_from_args(pg_config *c, int argc, char **argv, pg_error *err);
/* Checks C's cluster once its node is known: the node is in the list, its
 * secret key file ("{node}" replaced, relative to the config file's
 * directory) holds a Z85 secret key whose public key is the node's. Fills
 * cluster.self and cluster.secret_key, and takes the node's own "listen"
 * if it has one. pg_config_from_args calls it (before --listen); a no-op
 * without a cluster. Returns 0 or PG_ECONFIG naming the key. */
int pg_config_cluster_resolve(pg_config *c, pg_error *err);
/* Frees everything C owns and zeroes it (clearing twice is harmless). */
void pg_config_clear(pg_config *c);

/* Splits a listen address "HOST:PORT" or "[IPV6]:PORT" into HOST (without
 * brackets, NUL-terminated, HOSTSIZE bytes at most) and PORT (0..65535).
 * HOST or PORT may be NULL to only validate. Returns 0, or -1 if ADDR is not
 * such an address (or HOST is too small). */
int pg_config_split_addr(const char *addr, char *host, size_t hostsize, int *port);

#endif
