/* Content keys of planned nodes, for the result cache (src/cache.h).
 *
 * A node's key says everything its result depends on: its op, every
 * declared parameter (defaults filled in), its args in order and, for ops
 * that read files, the identity of those files (op->identity: resolved path,
 * size, modification time in ns, inode, device, taken when the node was
 * planned). Node names, inline-vs-ref spelling and key order in the request
 * do not matter.
 *
 * Keys are interned (hash-consed) in one process-wide table: two nodes have
 * equal keys if and only if they get the same pg_nodekey object. A key's
 * text is canonical JSON, {"args", "inputs", "op", "params"} with sorted
 * keys, reals with 17 significant digits, number args as exact hex floats,
 * and each raster/value arg written as "#ID", the id of the child's interned
 * key. Ids are never reused and a key holds references on its children's
 * keys, so "#ID" stands for exactly one full key while the parent lives:
 * the text is exact (no hash decides equality anywhere; the table's hash
 * only finds candidates, then the texts are compared) and stays short
 * however deep the graph is. pg_nodekey_expand() writes the full key.
 *
 * Keys are results of the daemon's configuration too (tile size: a value's
 * partials are merged in tile order): the cache lives in one process, whose
 * configuration does not change, so that part is left out.
 *
 * Thread-safe: one mutex guards the table (held for lookups, never across
 * I/O); references may be taken and dropped from any thread.
 */
#ifndef PG_NODEKEY_H
#define PG_NODEKEY_H

#include "gdalio.h"
#include "graph.h"
#include "pergola/error.h"

#include <stddef.h>
#include <stdint.h>

typedef struct pg_nodekey pg_nodekey;

/* The interned key with text TEXT whose "#ID" references are CHILDREN[0..N)
 * (borrowed; the key takes its own references on them when it is new).
 * Returns a new reference, or NULL when out of memory. */
pg_nodekey *pg_nodekey_intern(const char *text, pg_nodekey *const *children, int n);

/* Keys of every node of PLAN: KEYS[i] (an array of plan->nnodes the caller
 * provides) gets a new reference for plan->nodes[i], or NULL when the node
 * cannot be keyed (an op's identity() failed, or an arg is unkeyable).
 * Stats files through op->identity. Returns 0, or PG_ENOMEM with ERR. */
int pg_nodekey_plan(const pg_plan *plan, pg_nodekey **keys, pg_error *err);
/* Drops KEYS[0..N) and sets them to NULL. */
void pg_nodekey_release(pg_nodekey **keys, int n);

pg_nodekey *pg_nodekey_ref(pg_nodekey *k);
void pg_nodekey_unref(pg_nodekey **k);

/* Borrowed: the key's own canonical text (children as "#ID"). */
const char *pg_nodekey_text(const pg_nodekey *k);
uint64_t pg_nodekey_id(const pg_nodekey *k);
/* A fast hash of the key (its id mixed: stable while the key lives). */
uint64_t pg_nodekey_hash(const pg_nodekey *k);
/* Bytes the key itself holds (its text and header; children not counted). */
size_t pg_nodekey_bytes(const pg_nodekey *k);
/* The full key: the text with every "#ID" replaced by that child's full
 * key, recursively. New string (free()), or NULL when out of memory. For
 * tests and debugging: it grows with the graph. */
char *pg_nodekey_expand(const pg_nodekey *k);
/* A file modified less than this long before it is identified gets no key:
 * file times tick coarsely (ext4: a few ms, FAT: 2 s), and two writes of
 * the same size within one tick would have the same identity. */
#define PG_NODEKEY_SETTLE_NS 2000000000LL

/* For op->identity: {"path", "size", "mtime_ns", "ino", "dev"} of the file
 * at PATH (resolved), which plan() identified as PLANNED (before reading
 * it). Stats the file again: if it has changed since, or was modified less
 * than PG_NODEKEY_SETTLE_NS before now, returns NULL with ERR
 * (PG_ENOTFOUND): the node is not cached. Then any later change gives the
 * file another identity, so what the job reads is never cached under an
 * identity that other contents have. A new reference. */
json_t *pg_nodekey_file(const char *path, const pg_file_id *planned, pg_error *err);

/* Keys alive in the table (for tests). */
size_t pg_nodekey_live(void);

#endif
