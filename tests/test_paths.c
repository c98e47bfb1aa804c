/* Unit tests for src/paths.c: graph paths confined to the data root.
 *
 * The tree, made once in a temporary directory BASE:
 *   BASE/root/a.tif                 regular file
 *   BASE/root/sub/b.tif             regular file in a subdirectory
 *   BASE/root/link_in -> a.tif      symlink inside -> inside
 *   BASE/root/dirlink_in -> sub     directory symlink inside -> inside
 *   BASE/root/link_out -> ../outside/secret.txt
 *   BASE/root/dirlink_out -> ../outside
 *   BASE/root/dangling -> nowhere
 *   BASE/root/sub/x:y.tif           a colon after the first '/'
 *   BASE/outside/secret.txt
 */
#include "paths.h"

#include "util.h"

#include <check.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char base[256];
static char root[320]; /* resolved */
static char outside[320];

/* Setup runs outside any test, where ck_assert cannot report: plain
 * checks that abort with a message instead. */
#define REQUIRE(cond)                                                                              \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "setup failed: %s: %s\n", #cond, strerror(errno));                     \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static void touch(const char *dir, const char *name)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    REQUIRE(f != NULL);
    fputs("x", f);
    fclose(f);
}

static void make_tree(void)
{
    char tmpl[] = "/tmp/pg_test_paths.XXXXXX";
    REQUIRE(mkdtemp(tmpl) != NULL);
    char *b = realpath(tmpl, NULL);
    REQUIRE(b != NULL);
    snprintf(base, sizeof base, "%s", b);
    free(b);
    snprintf(root, sizeof root, "%s/root", base);
    snprintf(outside, sizeof outside, "%s/outside", base);
    char p[PATH_MAX];
    REQUIRE(mkdir(root, 0755) == 0);
    REQUIRE(mkdir(outside, 0755) == 0);
    snprintf(p, sizeof p, "%s/sub", root);
    REQUIRE(mkdir(p, 0755) == 0);
    touch(root, "a.tif");
    touch(root, "sub/b.tif");
    touch(root, "sub/x:y.tif");
    touch(outside, "secret.txt");
    static const char *links[][2] = {{"a.tif", "link_in"},
                                     {"sub", "dirlink_in"},
                                     {"../outside/secret.txt", "link_out"},
                                     {"../outside", "dirlink_out"},
                                     {"nowhere", "dangling"}};
    for (size_t i = 0; i < PG_ARRAY_SIZE(links); i++) {
        snprintf(p, sizeof p, "%s/%s", root, links[i][1]);
        REQUIRE(symlink(links[i][0], p) == 0);
    }
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Expects pg_path_for_read to succeed with OUT == ROOT "/" WANT_REL. */
static void read_ok(const char *path, const char *want_rel)
{
    char *out = (char *)1;
    pg_error err = {0};
    int rc = pg_path_for_read(root, path, &out, &err);
    ck_assert_msg(rc == 0, "read '%s': %d %s", path, rc, err.message);
    char want[PATH_MAX];
    snprintf(want, sizeof want, "%s/%s", root, want_rel);
    ck_assert_str_eq(out, want);
    free(out);
}

/* Expects CODE and MESSAGE (if not NULL) from pg_path_for_read. */
static void read_err(const char *path, int code, const char *message)
{
    char *out = (char *)1;
    pg_error err = {0};
    int rc = pg_path_for_read(root, path, &out, &err);
    ck_assert_msg(rc == code, "read '%s': got %d (%s), want %d", path, rc, err.message, code);
    ck_assert_int_eq(err.code, code);
    ck_assert_ptr_null(out);
    if (message != NULL) ck_assert_str_eq(err.message, message);
}

static void write_ok(const char *path, const char *want_rel)
{
    char *out = NULL;
    pg_error err = {0};
    int rc = pg_path_for_write(root, path, &out, &err);
    ck_assert_msg(rc == 0, "write '%s': %d %s", path, rc, err.message);
    char want[PATH_MAX];
    snprintf(want, sizeof want, "%s/%s", root, want_rel);
    ck_assert_str_eq(out, want);
    free(out);
}

static void write_err(const char *path, int code, const char *message)
{
    char *out = (char *)1;
    pg_error err = {0};
    int rc = pg_path_for_write(root, path, &out, &err);
    ck_assert_msg(rc == code, "write '%s': got %d (%s), want %d", path, rc, err.message, code);
    ck_assert_int_eq(err.code, code);
    ck_assert_ptr_null(out);
    if (message != NULL) ck_assert_str_eq(err.message, message);
}

/* ---- read -------------------------------------------------------------- */

START_TEST(read_inside)
{
    read_ok("a.tif", "a.tif");
    read_ok("sub/b.tif", "sub/b.tif");
    read_ok("./sub//b.tif", "sub/b.tif");
    read_ok("sub/x:y.tif", "sub/x:y.tif");
    /* Symlinks inside the root resolve to their targets. */
    read_ok("link_in", "a.tif");
    read_ok("dirlink_in/b.tif", "sub/b.tif");
}
END_TEST

START_TEST(read_absolute)
{
    char p[PATH_MAX * 2];
    snprintf(p, sizeof p, "%s/a.tif", root);
    read_ok(p, "a.tif");
    snprintf(p, sizeof p, "%s//sub/./b.tif", root);
    read_ok(p, "sub/b.tif");

    snprintf(p, sizeof p, "%s/secret.txt", outside);
    char want[PATH_MAX * 3];
    snprintf(want, sizeof want, "path '%s' is outside the data root", p);
    read_err(p, PG_EPATH, want);
    read_err("/etc/passwd", PG_EPATH, "path '/etc/passwd' is outside the data root");
    /* A missing file outside gets the same answer as an existing one. */
    read_err("/etc/no-such-file", PG_EPATH, "path '/etc/no-such-file' is outside the data root");
    /* "<root>x/..." shares a prefix with the root but is not inside. */
    snprintf(p, sizeof p, "%sx/a.tif", root);
    read_err(p, PG_EPATH, NULL);
    /* The root itself is not a file. */
    read_err(root, PG_ENOTFOUND, NULL);
}
END_TEST

START_TEST(read_escapes)
{
    read_err("a/../../etc/passwd", PG_EPATH, "path 'a/../../etc/passwd' escapes the data root");
    read_err("..", PG_EPATH, "path '..' escapes the data root");
    read_err("../outside/secret.txt", PG_EPATH,
             "path '../outside/secret.txt' escapes the data root");
    /* Any ".." at all, even one that would stay inside. */
    read_err("sub/../a.tif", PG_EPATH, "path 'sub/../a.tif' escapes the data root");
    read_err("sub/..", PG_EPATH, "path 'sub/..' escapes the data root");
    /* "..." and "..x" are ordinary names. */
    read_err("...", PG_ENOTFOUND, "path '...' does not exist");
    read_err("..x/a", PG_ENOTFOUND, "path '..x/a' does not exist");
    /* Symlinks that lead out. */
    read_err("link_out", PG_EPATH, "path 'link_out' escapes the data root");
    read_err("dirlink_out/secret.txt", PG_EPATH,
             "path 'dirlink_out/secret.txt' escapes the data root");
    /* ... whether or not the file behind them exists. */
    read_err("dirlink_out/missing.txt", PG_EPATH,
             "path 'dirlink_out/missing.txt' escapes the data root");
    read_err("dirlink_out/a/b/c", PG_EPATH, "path 'dirlink_out/a/b/c' escapes the data root");
}
END_TEST

START_TEST(read_gdal_prefixes)
{
    read_err("/vsicurl/http://example.com/a.tif", PG_EPATH,
             "path '/vsicurl/http://example.com/a.tif': GDAL virtual file systems (/vsi...) are "
             "not allowed");
    read_err("/VSIZIP/x.zip/a.tif", PG_EPATH, NULL);
    read_err("/vsimem/a.tif", PG_EPATH, NULL);
    read_err("NETCDF:x", PG_EPATH,
             "path 'NETCDF:x': GDAL connection strings and URLs are not allowed (a ':' before "
             "the first '/')");
    read_err("NETCDF:x.nc:var", PG_EPATH, NULL);
    read_err("HDF5:\"a.h5\"://data", PG_EPATH, NULL);
    read_err("http://example.com/a.tif", PG_EPATH, NULL);
    read_err("PG:dbname=x", PG_EPATH, NULL);
    /* Relative "vsicurl/..." is an ordinary directory name in the root. */
    read_err("vsicurl/a.tif", PG_ENOTFOUND, "path 'vsicurl/a.tif' does not exist");
}
END_TEST

START_TEST(read_not_found)
{
    read_err("missing.tif", PG_ENOTFOUND, "path 'missing.tif' does not exist");
    read_err("sub/missing/deeper.tif", PG_ENOTFOUND,
             "path 'sub/missing/deeper.tif' does not exist");
    read_err("a.tif/x", PG_ENOTFOUND, "path 'a.tif/x' does not exist");
    read_err("dangling", PG_ENOTFOUND, "path 'dangling' does not exist");
    read_err("sub", PG_ENOTFOUND, "path 'sub' is a directory, not a regular file");
    read_err("dirlink_in", PG_ENOTFOUND, "path 'dirlink_in' is a directory, not a regular file");
    read_err(".", PG_ENOTFOUND, "path '.' names a directory, not a file");
    read_err("a.tif/", PG_ENOTFOUND, "path 'a.tif/' names a directory, not a file");
    read_err("./", PG_ENOTFOUND, NULL);
}
END_TEST

START_TEST(read_bad_input)
{
    read_err("", PG_EPATH, "empty path");
    read_err(NULL, PG_EPATH, "empty path");
    pg_error err = {0};
    ck_assert_int_eq(pg_path_check("a.tif\0/etc/passwd", 16, &err), PG_EPATH);
    ck_assert_str_eq(err.message, "path 'a.tif' contains a NUL byte");
    ck_assert_int_eq(pg_path_check("a.tif", 5, &err), 0);
    ck_assert_int_eq(pg_path_check("/abs/a.tif", 10, &err), 0);
    ck_assert_int_eq(pg_path_check("a/../b", 6, &err), PG_EPATH);
    ck_assert_int_eq(pg_path_check("a/..", 4, &err), PG_EPATH);
    ck_assert_int_eq(pg_path_check("x", 0, &err), PG_EPATH);

    char *longp = malloc(PATH_MAX + 10);
    memset(longp, 'a', PATH_MAX + 9);
    longp[PATH_MAX + 9] = '\0';
    read_err(longp, PG_EPATH, NULL);
    write_err(longp, PG_EPATH, NULL);
    free(longp);

    /* The root must be absolute. */
    char *out = (char *)1;
    ck_assert_int_eq(pg_path_for_read("relative", "a.tif", &out, &err), PG_EINVAL);
    ck_assert_ptr_null(out);
    ck_assert_int_eq(pg_path_for_write(NULL, "a.tif", &out, &err), PG_EINVAL);
}
END_TEST

/* ---- write ------------------------------------------------------------- */

START_TEST(write_creates_dirs)
{
    char p[PATH_MAX + 32];
    write_ok("out/new/sum.tif", "out/new/sum.tif");
    snprintf(p, sizeof p, "%s/out/new", root);
    struct stat st;
    ck_assert_int_eq(stat(p, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
    /* The file itself is not created. */
    snprintf(p, sizeof p, "%s/out/new/sum.tif", root);
    ck_assert(!exists(p));
    /* Again: the directories exist now. */
    write_ok("out/new/sum.tif", "out/new/sum.tif");
    write_ok("./w1//w2/./f.tif", "w1/w2/f.tif");
    write_ok("new.tif", "new.tif");
    /* Over an existing regular file (it will be replaced). */
    write_ok("a.tif", "a.tif");
    /* Through a directory symlink inside the root. */
    write_ok("dirlink_in/made/x.tif", "sub/made/x.tif");
    snprintf(p, sizeof p, "%s/sub/made", root);
    ck_assert(exists(p));
    /* Absolute inside. */
    snprintf(p, sizeof p, "%s/abs/x.tif", root);
    write_ok(p, "abs/x.tif");
}
END_TEST

START_TEST(write_refused)
{
    write_err("link_in", PG_EPATH, "path 'link_in' is a symlink: refusing to write over it");
    write_err("link_out", PG_EPATH, "path 'link_out' is a symlink: refusing to write over it");
    write_err("dangling", PG_EPATH, "path 'dangling' is a symlink: refusing to write over it");
    write_err("sub", PG_EPATH, "path 'sub' is a directory");
    write_err("out2/", PG_EPATH, "path 'out2/' names a directory, not a file");
    write_err("sub/.", PG_EPATH, "path 'sub/.' names a directory, not a file");
    write_err(".", PG_EPATH, "path '.' names a directory, not a file");
    write_err(root, PG_EPATH, NULL);
    write_err("../x.tif", PG_EPATH, "path '../x.tif' escapes the data root");
    write_err("new/../../x.tif", PG_EPATH, "path 'new/../../x.tif' escapes the data root");
    write_err("/tmp/x.tif", PG_EPATH, "path '/tmp/x.tif' is outside the data root");
    write_err("/vsimem/x.tif", PG_EPATH, NULL);
    write_err("GTiff:x.tif", PG_EPATH, NULL);

    /* Out through a directory symlink: refused, and nothing made outside. */
    write_err("dirlink_out/evil/x.tif", PG_EPATH,
              "path 'dirlink_out/evil/x.tif' escapes the data root");
    write_err("dirlink_out/x.tif", PG_EPATH, "path 'dirlink_out/x.tif' escapes the data root");
    char p[PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/evil", outside);
    ck_assert(!exists(p));
    write_err("dangling/x.tif", PG_EPATH, "path 'dangling/x.tif': 'dangling' is a broken symlink");
    snprintf(p, sizeof p, "%s/nowhere", root);
    ck_assert(!exists(p));

    /* A file where a directory should be. */
    write_err("a.tif/x.tif", PG_EIO, "path 'a.tif/x.tif': 'a.tif' is not a directory");
    write_err("link_in/x.tif", PG_EIO, "path 'link_in/x.tif': 'link_in' is not a directory");
    write_err("sub/b.tif/c/x.tif", PG_EIO,
              "path 'sub/b.tif/c/x.tif': 'sub/b.tif' is not a directory");
}
END_TEST

START_TEST(write_mkdir_fails)
{
    if (geteuid() == 0) return; /* root ignores directory permissions */
    char p[PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/ro", root);
    ck_assert_int_eq(mkdir(p, 0555), 0);
    write_err("ro/new/x.tif", PG_EIO,
              "cannot create directory 'ro/new' for path 'ro/new/x.tif': Permission denied");
    chmod(p, 0755);
}
END_TEST

/* ---- helpers ----------------------------------------------------------- */

START_TEST(relative_and_root)
{
    char p[PATH_MAX + 32];
    snprintf(p, sizeof p, "%s/out/sum.tif", root);
    char *r = pg_path_relative(root, p);
    ck_assert_str_eq(r, "out/sum.tif");
    free(r);
    r = pg_path_relative(root, root);
    ck_assert_str_eq(r, ".");
    free(r);
    snprintf(p, sizeof p, "%sx/sum.tif", root);
    ck_assert_ptr_null(pg_path_relative(root, p));
    ck_assert_ptr_null(pg_path_relative(root, "/etc/passwd"));
    ck_assert_ptr_null(pg_path_relative(NULL, "/etc/passwd"));
    r = pg_path_relative("/", "/etc/passwd");
    ck_assert_str_eq(r, "etc/passwd");
    free(r);

    /* The data root, given through a symlink and a "..". */
    char *out = NULL;
    pg_error err = {0};
    snprintf(p, sizeof p, "%s/root/sub/../dirlink_in/..", base);
    ck_assert_int_eq(pg_path_resolve_root(p, &out, &err), 0);
    ck_assert_str_eq(out, root);
    free(out);
    snprintf(p, sizeof p, "%s/none", base);
    ck_assert_int_eq(pg_path_resolve_root(p, &out, &err), PG_ENOTFOUND);
    ck_assert_ptr_null(out);
    snprintf(p, sizeof p, "%s/a.tif", root);
    ck_assert_int_eq(pg_path_resolve_root(p, &out, &err), PG_ENOTFOUND);
    ck_assert_int_eq(pg_path_resolve_root("", &out, &err), PG_ECONFIG);

    /* With "/" as the root, an absolute path is inside. */
    ck_assert_int_eq(pg_path_for_read("/", p + 1, &out, &err), 0);
    ck_assert_str_eq(out, p);
    free(out);
    ck_assert_int_eq(pg_path_for_read("/", p, &out, &err), 0);
    ck_assert_str_eq(out, p);
    free(out);
}
END_TEST

static Suite *paths_suite(void)
{
    Suite *s = suite_create("paths");
    TCase *tc = tcase_create("read");
    tcase_add_test(tc, read_inside);
    tcase_add_test(tc, read_absolute);
    tcase_add_test(tc, read_escapes);
    tcase_add_test(tc, read_gdal_prefixes);
    tcase_add_test(tc, read_not_found);
    tcase_add_test(tc, read_bad_input);
    suite_add_tcase(s, tc);
    tc = tcase_create("write");
    tcase_add_test(tc, write_creates_dirs);
    tcase_add_test(tc, write_refused);
    tcase_add_test(tc, write_mkdir_fails);
    suite_add_tcase(s, tc);
    tc = tcase_create("helpers");
    tcase_add_test(tc, relative_and_root);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    make_tree();
    SRunner *sr = srunner_create(paths_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    char cmd[PATH_MAX + 32];
    snprintf(cmd, sizeof cmd, "chmod -R u+w '%s' && rm -rf '%s'", base, base);
    if (system(cmd) != 0) failed++;
    return failed == 0 ? 0 : 1;
}
