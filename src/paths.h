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

/* ROOT: absolute, symlinks resolved (realpath). For an existing file to
 * read: sets *out to its resolved absolute path (malloc'd). Errors:
 * PG_EPATH (escapes or not allowed), PG_ENOTFOUND (does not exist or is not
 * a regular file). */
int pg_path_for_read(const char *root, const char *path, char **out, pg_error *err);
/* For a file to write: checks that it would land inside ROOT, creates the
 * missing parent directories (inside ROOT), and sets *out to the absolute
 * path (malloc'd). An existing symlink at the final component is refused.
 * Errors: PG_EPATH, PG_EIO (cannot create a directory). */
int pg_path_for_write(const char *root, const char *path, char **out, pg_error *err);
/* PATH relative to ROOT for answers to clients ("out/sum.tif"); malloc'd. */
char *pg_path_relative(const char *root, const char *abs);

#endif
