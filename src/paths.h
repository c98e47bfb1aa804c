/* Paths in graphs, confined to the data root.
 *
 * A path is relative to the data root, or absolute inside it. Refused before
 * any work starts: ".." components, absolute paths outside the root, symlinks
 * that lead outside it, GDAL's virtual file systems and connection strings
 * ("/vsicurl/...", "/vsizip/...", "NETCDF:..."), empty paths and NUL bytes.
 */
#ifndef PG_PATHS_H
#define PG_PATHS_H

#include "pergola/error.h"

#include <stddef.h>

/* ROOT: absolute, symlinks resolved (realpath; see pg_path_resolve_root).
 * PATH: as the user gave it; error messages quote it, never the root.
 *
 * For an existing file to read: sets *out to its resolved absolute path
 * (malloc'd). Errors: PG_EPATH (escapes or not allowed: "path
 * 'a/../../etc/passwd' escapes the data root"), PG_ENOTFOUND (does not
 * exist or is not a regular file), PG_EIO (cannot be looked at, e.g.
 * permission denied), PG_ENOMEM. An absolute PATH must be spelled under
 * ROOT: it is refused without looking at the file system. A missing file
 * behind a symlink that leads out is PG_EPATH, not PG_ENOTFOUND. */
int pg_path_for_read(const char *root, const char *path, char **out, pg_error *err);
/* For a file to write: checks that it would land inside ROOT, creates the
 * missing parent directories (mode 0755, one at a time, each checked to be
 * inside ROOT; symlinked directories inside ROOT are followed), and sets
 * *out to the absolute path (malloc'd). Refused with PG_EPATH: an existing
 * symlink, directory or special file at the final component, a PATH that
 * names a directory ("out/", "."), and everything pg_path_for_read refuses
 * as PG_EPATH. An existing regular file is fine (it will be replaced).
 * Errors: PG_EPATH, PG_EIO (cannot create a directory, a file is in the
 * way), PG_ENOMEM. */
int pg_path_for_write(const char *root, const char *path, char **out, pg_error *err);
/* ABS (inside ROOT) relative to ROOT for answers to clients
 * ("out/sum.tif"; "." for ROOT itself); malloc'd. NULL if ABS is not inside
 * ROOT (so that an absolute path never reaches a client) or out of memory. */
char *pg_path_relative(const char *root, const char *abs);

/* The lexical checks alone, no file system: PATH of LEN bytes (LEN lets a
 * NUL inside a JSON string be seen). For graph validation before any work
 * starts. Refuses (PG_EPATH) empty paths, NUL bytes, ".." components,
 * "/vsi..." (any case), a ':' before the first '/' ("NETCDF:x.nc:v",
 * "http://h/x"; so a file name with a colon must be in a subdirectory), and
 * paths of PATH_MAX bytes or more. Absolute paths pass (their place is
 * checked against the root by pg_path_for_read/pg_path_for_write). */
int pg_path_check(const char *path, size_t len, pg_error *err);
/* Resolves the configured data root DIR (realpath) into *out (malloc'd),
 * the form ROOT takes above. Errors: PG_ENOTFOUND (missing or not a
 * directory), PG_ECONFIG (empty, or resolves to "/vsi..."), PG_EIO. */
int pg_path_resolve_root(const char *dir, char **out, pg_error *err);

#endif
