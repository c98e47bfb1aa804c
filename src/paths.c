/* Paths in graphs, confined to the data root.
 *
 * Two layers. First a lexical check that needs no file system: no "..",
 * no GDAL virtual file system or connection string, no NUL, and an
 * absolute path must be spelled under the root. That check alone decides
 * for absolute paths outside the root, so the answer for "/etc/shadow" does
 * not depend on whether it exists (no probing outside the root). Then the
 * file system: symlinks are resolved and the result must still be inside
 * the root.
 *
 * What remains is a time-of-check/time-of-use window: someone who can
 * change the data root between the check and GDAL's open could swap in a
 * symlink. The data root belongs to the operator; clients can only name
 * paths in it, never create links.
 */
#include "paths.h"

#include "util.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

/* A path split into components, "." and empty ones dropped. */
typedef struct {
    char buf[PATH_MAX];
    char *comp[PATH_MAX / 2 + 1];
    int n;
    int absolute;
    int dir; /* ends in '/' or "/.": names a directory */
} pg__split;

static int pg__too_long(pg_error *err, const char *path)
{
    return pg_error_set(err, PG_EPATH, "path '%.60s...' is too long", path);
}

/* Splits PATH (LEN bytes, NUL-terminated) into S. */
static int pg__split_path(pg__split *s, const char *path, size_t len, pg_error *err)
{
    if (len >= sizeof s->buf) return pg__too_long(err, path);
    memcpy(s->buf, path, len + 1);
    s->n = 0;
    s->absolute = path[0] == '/';
    char *p = s->buf;
    while (*p != '\0') {
        while (*p == '/')
            p++;
        if (*p == '\0') break;
        char *c = p;
        while (*p != '\0' && *p != '/')
            p++;
        if (*p == '/') *p++ = '\0';
        if (strcmp(c, ".") != 0) s->comp[s->n++] = c;
    }
    /* "out/", "out/." and "." name a directory, whatever the components. */
    const char *last = strrchr(path, '/');
    last = last ? last + 1 : path;
    s->dir = last[0] == '\0' || strcmp(last, ".") == 0;
    return 0;
}

int pg_path_check(const char *path, size_t len, pg_error *err)
{
    if (path == NULL || len == 0 || path[0] == '\0')
        return pg_error_set(err, PG_EPATH, "empty path");
    if (memchr(path, '\0', len) != NULL)
        return pg_error_set(err, PG_EPATH, "path '%s' contains a NUL byte", path);
    if (len >= PATH_MAX) return pg__too_long(err, path);
    /* GDAL reads "/vsicurl/http://...", "/vsizip/x.zip/y", "/vsimem/" etc.
     * as network, archive or memory file systems, whatever the case. */
    if (strncasecmp(path, "/vsi", 4) == 0)
        return pg_error_set(err, PG_EPATH,
                            "path '%s': GDAL virtual file systems (/vsi...) are not allowed", path);
    /* "NETCDF:x.nc:var", "HDF5:...", "PG:dbname=...", "http://...": a
     * colon before the first '/' makes GDAL read a driver connection string
     * or a URL instead of a file. */
    const char *slash = memchr(path, '/', len);
    const char *colon = memchr(path, ':', slash ? (size_t)(slash - path) : len);
    if (colon != NULL)
        return pg_error_set(err, PG_EPATH,
                            "path '%s': GDAL connection strings and URLs are not allowed (a ':' "
                            "before the first '/')",
                            path);
    for (const char *c = path; c < path + len;) {
        const char *e = memchr(c, '/', (size_t)(path + len - c));
        if (e == NULL) e = path + len;
        if (e - c == 2 && c[0] == '.' && c[1] == '.')
            return pg_error_set(err, PG_EPATH, "path '%s' escapes the data root", path);
        c = e + 1;
    }
    return 0;
}

/* Whether ABS (resolved) is ROOT or inside it. */
static int pg__inside(const char *root, const char *abs)
{
    size_t rl = strlen(root);
    if (rl == 1 && root[0] == '/') return abs[0] == '/';
    return strncmp(abs, root, rl) == 0 && (abs[rl] == '\0' || abs[rl] == '/');
}

/* Checks PATH lexically and leaves in S the components relative to ROOT. */
static int pg__prepare(const char *root, const char *path, pg__split *s, pg_error *err)
{
    if (root == NULL || root[0] != '/')
        return pg_error_set(err, PG_EINVAL, "the data root must be an absolute path");
    if (path == NULL) return pg_error_set(err, PG_EPATH, "empty path");
    int rc = pg_path_check(path, strlen(path), err);
    if (rc != 0) return rc;
    rc = pg__split_path(s, path, strlen(path), err);
    if (rc != 0) return rc;
    if (s->absolute) {
        /* Compare component by component, so "/root//a" and "/root/./a"
         * count as inside and "/rootx/a" does not. */
        pg__split *r = malloc(sizeof *r);
        if (r == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
        rc = pg__split_path(r, root, strlen(root), err);
        int ok = rc == 0 && r->n <= s->n;
        for (int i = 0; ok && i < r->n; i++)
            ok = strcmp(r->comp[i], s->comp[i]) == 0;
        int rn = r->n;
        free(r);
        if (rc != 0) return rc;
        if (!ok) return pg_error_set(err, PG_EPATH, "path '%s' is outside the data root", path);
        memmove(s->comp, s->comp + rn, (size_t)(s->n - rn) * sizeof s->comp[0]);
        s->n -= rn;
    }
    return 0;
}

/* Appends "/COMP" to BUF (PATH_MAX bytes, holding an absolute path);
 * -1 if it would not fit. */
static int pg__add(char *buf, const char *comp)
{
    size_t n = strlen(buf), cl = strlen(comp);
    int slash = n == 0 || buf[n - 1] != '/';
    if (n + (size_t)slash + cl >= PATH_MAX) return -1;
    if (slash) buf[n++] = '/';
    memcpy(buf + n, comp, cl + 1);
    return 0;
}

/* ROOT + the first K components of S, into OUT (PATH_MAX). */
static int pg__join(char *out, const char *root, const pg__split *s, int k)
{
    size_t n = strlen(root);
    if (n >= PATH_MAX) return -1;
    memcpy(out, root, n + 1);
    for (int i = 0; i < k; i++)
        if (pg__add(out, s->comp[i]) != 0) return -1;
    return 0;
}

/* The first K components of S joined with '/', for messages. */
static void pg__rel(char *out, size_t size, const pg__split *s, int k)
{
    size_t n = 0;
    out[0] = '\0';
    for (int i = 0; i < k && n < size; i++) {
        int w = snprintf(out + n, size - n, "%s%s", i ? "/" : "", s->comp[i]);
        if (w < 0) break;
        n += (size_t)w;
    }
}

/* realpath() failed on a path of S with errno E: find the deepest existing
 * ancestor, so that a missing file behind a symlink that leads out is
 * reported as escaping (not as missing, which would reveal what exists
 * outside the root). */
static int pg__missing(const char *root, const char *path, const pg__split *s, int e, pg_error *err)
{
    if (e == ELOOP)
        return pg_error_set(err, PG_EPATH, "path '%s': too many levels of symbolic links", path);
    if (e == ENAMETOOLONG) return pg__too_long(err, path);
    if (e != ENOENT && e != ENOTDIR)
        return pg_error_set(err, PG_EIO, "cannot access path '%s': %s", path, strerror(e));
    char buf[PATH_MAX];
    for (int k = s->n - 1; k > 0; k--) {
        if (pg__join(buf, root, s, k) != 0) return pg__too_long(err, path);
        char *res = realpath(buf, NULL);
        if (res == NULL) continue;
        int inside = pg__inside(root, res);
        free(res);
        if (!inside) return pg_error_set(err, PG_EPATH, "path '%s' escapes the data root", path);
        break;
    }
    return pg_error_set(err, PG_ENOTFOUND, "path '%s' does not exist", path);
}

int pg_path_for_read(const char *root, const char *path, char **out, pg_error *err)
{
    if (out != NULL) *out = NULL;
    pg__split *s = malloc(sizeof *s);
    if (s == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    char buf[PATH_MAX];
    char *res = NULL;
    int rc = pg__prepare(root, path, s, err);
    if (rc != 0) goto done;
    if (s->n == 0 || s->dir) {
        rc = pg_error_set(err, PG_ENOTFOUND, "path '%s' names a directory, not a file", path);
        goto done;
    }
    if (pg__join(buf, root, s, s->n) != 0) {
        rc = pg__too_long(err, path);
        goto done;
    }
    res = realpath(buf, NULL);
    if (res == NULL) {
        rc = pg__missing(root, path, s, errno, err);
        goto done;
    }
    if (!pg__inside(root, res) || strncasecmp(res, "/vsi", 4) == 0) {
        rc = pg_error_set(err, PG_EPATH, "path '%s' escapes the data root", path);
        goto done;
    }
    struct stat st;
    if (stat(res, &st) != 0) {
        rc = pg_error_set(err, PG_EIO, "cannot access path '%s': %s", path, strerror(errno));
        goto done;
    }
    if (!S_ISREG(st.st_mode)) {
        rc = pg_error_set(err, PG_ENOTFOUND, "path '%s' is %s, not a regular file", path,
                          S_ISDIR(st.st_mode) ? "a directory" : "a special file");
        goto done;
    }
    if (out != NULL) {
        *out = res;
        res = NULL;
    }
done:
    free(res);
    free(s);
    return rc;
}

/* Makes sure the directory CUR/COMP exists inside ROOT and leaves its
 * resolved path in CUR. K is COMP's index, for messages. */
static int pg__step_dir(const char *root, const char *path, const pg__split *s, int k, char *cur,
                        pg_error *err)
{
    char next[PATH_MAX], rel[PATH_MAX];
    pg__rel(rel, sizeof rel, s, k + 1);
    memcpy(next, cur, strlen(cur) + 1);
    if (pg__add(next, s->comp[k]) != 0) return pg__too_long(err, path);

    for (int tries = 0; tries < 2; tries++) {
        struct stat st;
        if (lstat(next, &st) != 0) {
            if (errno != ENOENT)
                return pg_error_set(err, PG_EIO, "cannot access directory '%s' for path '%s': %s",
                                    rel, path, strerror(errno));
            /* Created one component at a time, each under a parent already
             * known to be inside the root. */
            if (mkdir(next, 0755) == 0) {
                memcpy(cur, next, strlen(next) + 1);
                return 0;
            }
            if (errno == EEXIST) continue; /* created meanwhile: look again */
            return pg_error_set(err, PG_EIO, "cannot create directory '%s' for path '%s': %s", rel,
                                path, strerror(errno));
        }
        if (S_ISDIR(st.st_mode)) {
            memcpy(cur, next, strlen(next) + 1);
            return 0;
        }
        if (S_ISLNK(st.st_mode)) {
            char *res = realpath(next, NULL);
            if (res == NULL)
                return pg_error_set(err, PG_EPATH, "path '%s': '%s' is a broken symlink", path,
                                    rel);
            int inside = pg__inside(root, res);
            struct stat rs;
            int isdir = stat(res, &rs) == 0 && S_ISDIR(rs.st_mode);
            if (inside && isdir) memcpy(cur, res, strlen(res) + 1);
            free(res);
            if (!inside)
                return pg_error_set(err, PG_EPATH, "path '%s' escapes the data root", path);
            if (!isdir)
                return pg_error_set(err, PG_EIO, "path '%s': '%s' is not a directory", path, rel);
            return 0;
        }
        return pg_error_set(err, PG_EIO, "path '%s': '%s' is not a directory", path, rel);
    }
    return pg_error_set(err, PG_EIO, "cannot create directory '%s' for path '%s'", rel, path);
}

int pg_path_for_write(const char *root, const char *path, char **out, pg_error *err)
{
    if (out != NULL) *out = NULL;
    pg__split *s = malloc(sizeof *s);
    if (s == NULL) return pg_error_set(err, PG_ENOMEM, "out of memory");
    char cur[PATH_MAX];
    int rc = pg__prepare(root, path, s, err);
    if (rc != 0) goto done;
    if (s->n == 0 || s->dir) {
        rc = pg_error_set(err, PG_EPATH, "path '%s' names a directory, not a file", path);
        goto done;
    }
    if (strlen(root) >= sizeof cur) {
        rc = pg__too_long(err, path);
        goto done;
    }
    memcpy(cur, root, strlen(root) + 1);
    for (int k = 0; k < s->n - 1; k++) {
        rc = pg__step_dir(root, path, s, k, cur, err);
        if (rc != 0) goto done;
    }
    if (pg__add(cur, s->comp[s->n - 1]) != 0) {
        rc = pg__too_long(err, path);
        goto done;
    }
    if (strncasecmp(cur, "/vsi", 4) == 0) {
        rc = pg_error_set(err, PG_EPATH, "path '%s' escapes the data root", path);
        goto done;
    }
    struct stat st;
    if (lstat(cur, &st) == 0) {
        /* Writing through a symlink could land anywhere; writing over a
         * directory or a device is never what a graph means. */
        if (S_ISLNK(st.st_mode))
            rc = pg_error_set(err, PG_EPATH, "path '%s' is a symlink: refusing to write over it",
                              path);
        else if (S_ISDIR(st.st_mode))
            rc = pg_error_set(err, PG_EPATH, "path '%s' is a directory", path);
        else if (!S_ISREG(st.st_mode))
            rc = pg_error_set(err, PG_EPATH, "path '%s' is not a regular file", path);
        if (rc != 0) goto done;
    } else if (errno != ENOENT) {
        rc = pg_error_set(err, PG_EIO, "cannot access path '%s': %s", path, strerror(errno));
        goto done;
    }
    if (out != NULL && (*out = strdup(cur)) == NULL)
        rc = pg_error_set(err, PG_ENOMEM, "out of memory");
done:
    free(s);
    return rc;
}

char *pg_path_relative(const char *root, const char *abs)
{
    if (root == NULL || abs == NULL || !pg__inside(root, abs)) return NULL;
    size_t rl = strlen(root);
    if (rl == 1 && root[0] == '/') return strdup(abs[1] ? abs + 1 : ".");
    if (abs[rl] == '\0') return strdup(".");
    return strdup(abs + rl + 1);
}

int pg_path_resolve_root(const char *dir, char **out, pg_error *err)
{
    *out = NULL;
    if (dir == NULL || dir[0] == '\0') return pg_error_set(err, PG_ECONFIG, "data root: empty");
    char *res = realpath(dir, NULL);
    if (res == NULL) {
        if (errno == ENOENT || errno == ENOTDIR)
            return pg_error_set(err, PG_ENOTFOUND, "data root '%s' does not exist", dir);
        return pg_error_set(err, PG_EIO, "data root '%s': %s", dir, strerror(errno));
    }
    struct stat st;
    if (stat(res, &st) != 0 || !S_ISDIR(st.st_mode)) {
        free(res);
        return pg_error_set(err, PG_ENOTFOUND, "data root '%s' is not a directory", dir);
    }
    if (strncasecmp(res, "/vsi", 4) == 0) {
        free(res);
        return pg_error_set(err, PG_ECONFIG,
                            "data root '%s': a path starting with /vsi would read as a GDAL "
                            "virtual file system",
                            dir);
    }
    *out = res;
    return 0;
}
