/* Unit tests for src/config.c (and the log level names of src/log.c). */
#include "config.h"
#include "log.h"
#include "util.h"

#include <check.h>
#include <fcntl.h>
#include <jansson.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char tmpdir[256];

/* Writes TEXT to a new file in tmpdir; returns its path (static buffer
 * per call site is not needed: tests use one file at a time). */
static const char *write_file(const char *name, const char *text)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    FILE *f = fopen(path, "w");
    ck_assert_ptr_nonnull(f);
    fputs(text, f);
    fclose(f);
    return path;
}

/* Loads TEXT as a config file over the defaults; expects CODE and, if
 * WANT is not NULL, the message "FILE: WANT". */
static void expect_file(const char *text, int code, const char *want)
{
    pg_config c;
    pg_config_defaults(&c);
    const char *path = write_file("t.json", text);
    pg_error err = {0};
    int rc = pg_config_load_file(&c, path, &err);
    ck_assert_int_eq(rc, code);
    if (code != 0) {
        ck_assert_int_eq(err.code, code);
        if (want != NULL) {
            char exp[1024];
            snprintf(exp, sizeof exp, "%s: %s", path, want);
            ck_assert_str_eq(err.message, exp);
        }
    }
    pg_config_clear(&c);
}

static void assert_config_eq(const pg_config *a, const pg_config *b)
{
    ck_assert_int_eq(a->nlisten, b->nlisten);
    for (int i = 0; i < a->nlisten; i++)
        ck_assert_str_eq(a->listen[i], b->listen[i]);
    if (a->socket_path == NULL || b->socket_path == NULL)
        ck_assert_ptr_eq(a->socket_path, b->socket_path);
    else
        ck_assert_str_eq(a->socket_path, b->socket_path);
    ck_assert_int_eq(a->workers, b->workers);
    ck_assert_int_eq(a->tile_w, b->tile_w);
    ck_assert_int_eq(a->tile_h, b->tile_h);
    ck_assert_int_eq(a->memory_budget_mb, b->memory_budget_mb);
    ck_assert_int_eq(a->gdal_cache_mb, b->gdal_cache_mb);
    ck_assert_str_eq(a->data_root, b->data_root);
    ck_assert_int_eq(a->limits.max_request_bytes, b->limits.max_request_bytes);
    ck_assert_int_eq(a->limits.max_nodes, b->limits.max_nodes);
    ck_assert_int_eq(a->limits.max_depth, b->limits.max_depth);
    ck_assert_int_eq(a->limits.max_cells, b->limits.max_cells);
    ck_assert_int_eq(a->limits.max_result_bytes, b->limits.max_result_bytes);
    ck_assert_int_eq(a->limits.max_jobs, b->limits.max_jobs);
    ck_assert_int_eq(a->limits.max_connections, b->limits.max_connections);
    ck_assert_int_eq(a->default_timeout_ms, b->default_timeout_ms);
    ck_assert_int_eq(a->shutdown_grace_ms, b->shutdown_grace_ms);
    ck_assert_int_eq(a->log_level, b->log_level);
    if (a->ready_file == NULL || b->ready_file == NULL)
        ck_assert_ptr_eq(a->ready_file, b->ready_file);
    else
        ck_assert_str_eq(a->ready_file, b->ready_file);
}

/* ---- defaults ---------------------------------------------------------- */

START_TEST(defaults_values)
{
    pg_config c;
    pg_config_defaults(&c);
    ck_assert_int_eq(c.nlisten, 1);
    ck_assert_str_eq(c.listen[0], "127.0.0.1:7878");
    ck_assert_ptr_null(c.socket_path);
    ck_assert_int_eq(c.workers, 0);
    ck_assert_int_eq(c.tile_w, 256);
    ck_assert_int_eq(c.tile_h, 256);
    ck_assert_int_eq(c.memory_budget_mb, 1024);
    ck_assert_int_eq(c.gdal_cache_mb, 64);
    ck_assert_str_eq(c.data_root, "data");
    ck_assert_int_eq(c.limits.max_request_bytes, 1048576);
    ck_assert_int_eq(c.limits.max_nodes, 10000);
    ck_assert_int_eq(c.limits.max_depth, 64);
    ck_assert_int_eq(c.limits.max_cells, INT64_C(40000000000));
    ck_assert_int_eq(c.limits.max_result_bytes, 268435456);
    ck_assert_int_eq(c.limits.max_jobs, 64);
    ck_assert_int_eq(c.limits.max_connections, 256);
    ck_assert_int_eq(c.default_timeout_ms, 0);
    ck_assert_int_eq(c.shutdown_grace_ms, 10000);
    ck_assert_int_eq(c.log_level, PG_LOG_INFO);
    ck_assert_ptr_null(c.ready_file);
    pg_config_clear(&c);
    /* Clearing zeroes, so a second clear is harmless. */
    ck_assert_ptr_null(c.listen);
    ck_assert_int_eq(c.nlisten, 0);
    pg_config_clear(&c);
}
END_TEST

/* conf/pergola.json sets every key, to the built-in default: loaded over a
 * config where every field differs, it gives exactly the defaults. */
START_TEST(defaults_match_conf_file)
{
    const char *src = getenv("PERGOLA_SRCDIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/conf/pergola.json", src ? src : ".");

    pg_config c;
    pg_error err = {0};
    pg_config_defaults(&c);
    json_t *odd =
        json_pack("{s:[ss],s:s,s:i,s:[ii],s:i,s:i,s:s,s:{s:i,s:i,s:i,s:i,s:i,s:i,s:i},"
                  "s:i,s:i,s:s}",
                  "listen", "10.0.0.1:1", "[::1]:2", "socket", "/tmp/x.sock", "workers", 7,
                  "tile_size", 512, 128, "memory_budget_mb", 99, "gdal_cache_mb", 3, "data_root",
                  "elsewhere", "limits", "max_request_bytes", 2048, "max_nodes", 5, "max_depth", 6,
                  "max_cells", 7, "max_result_bytes", 8, "max_jobs", 9, "max_connections", 10,
                  "default_timeout_ms", 11, "shutdown_grace_ms", 12, "log_level", "debug");
    ck_assert_ptr_nonnull(odd);
    ck_assert_int_eq(pg_config_apply_json(&c, odd, &err), 0);
    json_decref(odd);
    ck_assert_int_eq(c.limits.max_connections, 10);

    ck_assert_msg(pg_config_load_file(&c, path, &err) == 0, "%s", err.message);
    pg_config d;
    pg_config_defaults(&d);
    assert_config_eq(&c, &d);
    pg_config_clear(&c);
    pg_config_clear(&d);
}
END_TEST

/* ---- files ------------------------------------------------------------- */

START_TEST(file_partial_and_forms)
{
    pg_config c;
    pg_error err = {0};
    pg_config_defaults(&c);
    const char *p = write_file("p.json", "{\"workers\": 3, \"tile_size\": [512, 128],\n"
                                         " \"limits\": {\"max_cells\": 4e10, \"max_jobs\": 2},\n"
                                         " \"socket\": \"/tmp/p.sock\",\n"
                                         " \"listen\": [\"[::1]:7878\", \"localhost:0\"]}");
    ck_assert_msg(pg_config_load_file(&c, p, &err) == 0, "%s", err.message);
    ck_assert_int_eq(c.workers, 3);
    ck_assert_int_eq(c.tile_w, 512);
    ck_assert_int_eq(c.tile_h, 128);
    ck_assert_int_eq(c.limits.max_cells, INT64_C(40000000000));
    ck_assert_int_eq(c.limits.max_jobs, 2);
    ck_assert_str_eq(c.socket_path, "/tmp/p.sock");
    ck_assert_int_eq(c.nlisten, 2);
    ck_assert_str_eq(c.listen[0], "[::1]:7878");
    ck_assert_str_eq(c.listen[1], "localhost:0");
    /* Keys absent from the file keep their values. */
    ck_assert_int_eq(c.limits.max_nodes, 10000);
    ck_assert_int_eq(c.memory_budget_mb, 1024);
    ck_assert_str_eq(c.data_root, "data");

    /* A second file: a square tile, socket back to null, empty listen. */
    p = write_file("q.json", "{\"tile_size\": 64, \"socket\": null, \"listen\": []}");
    ck_assert_msg(pg_config_load_file(&c, p, &err) == 0, "%s", err.message);
    ck_assert_int_eq(c.tile_w, 64);
    ck_assert_int_eq(c.tile_h, 64);
    ck_assert_ptr_null(c.socket_path);
    ck_assert_int_eq(c.nlisten, 0);
    pg_config_clear(&c);
}
END_TEST

START_TEST(file_unknown_keys)
{
    expect_file("{\"foo\": 1}", PG_ECONFIG, "foo: unknown key");
    expect_file("{\"limits\": {\"max_nodes\": 5, \"bar\": 1}}", PG_ECONFIG,
                "limits.bar: unknown key");
    /* ready_file is a flag only. */
    expect_file("{\"ready_file\": \"/tmp/r\"}", PG_ECONFIG, "ready_file: unknown key");
}
END_TEST

START_TEST(file_wrong_types)
{
    expect_file("{\"workers\": \"4\"}", PG_ECONFIG,
                "workers: must be an integer in 0..4096 (0: one per core)");
    expect_file("{\"workers\": 1.5}", PG_ECONFIG,
                "workers: must be an integer in 0..4096 (0: one per core)");
    expect_file("{\"workers\": true}", PG_ECONFIG,
                "workers: must be an integer in 0..4096 (0: one per core)");
    expect_file("{\"listen\": \"127.0.0.1:1\"}", PG_ECONFIG,
                "listen: must be a list of \"HOST:PORT\" strings");
    expect_file("{\"listen\": [\"127.0.0.1:1\", 5]}", PG_ECONFIG,
                "listen[1]: must be a \"HOST:PORT\" string");
    expect_file("{\"socket\": 5}", PG_ECONFIG, "socket: must be null or a path of 1..107 bytes");
    expect_file("{\"data_root\": \"\"}", PG_ECONFIG, "data_root: must be a non-empty string");
    expect_file("{\"data_root\": null}", PG_ECONFIG, "data_root: must be a non-empty string");
    expect_file("{\"limits\": []}", PG_ECONFIG, "limits: must be an object");
    expect_file("{\"limits\": {\"max_jobs\": \"8\"}}", PG_ECONFIG,
                "limits.max_jobs: must be an integer >= 1");
    expect_file("{\"log_level\": \"verbose\"}", PG_ECONFIG,
                "log_level: must be one of \"error\", \"warn\", \"info\", \"debug\"");
    expect_file("{\"log_level\": 2}", PG_ECONFIG,
                "log_level: must be one of \"error\", \"warn\", \"info\", \"debug\"");
    expect_file("{\"tile_size\": \"256\"}", PG_ECONFIG,
                "tile_size: must be an integer in 16..8192 or a list [width, height] of such");
    expect_file("{\"fusion\": 1}", PG_ECONFIG, "fusion: must be true or false");
    expect_file("{\"fusion\": \"on\"}", PG_ECONFIG, "fusion: must be true or false");
    expect_file("{\"cache_mb\": \"64\"}", PG_ECONFIG, NULL);
    expect_file("{\"cache_mb\": -1}", PG_ECONFIG, NULL);
    expect_file("{\"cache_mb\": 0, \"fusion\": false}", 0, NULL);
    expect_file("[1, 2]", PG_ECONFIG, "the configuration must be a JSON object");
}
END_TEST

START_TEST(file_out_of_range)
{
    expect_file("{\"limits\": {\"max_nodes\": 0}}", PG_ECONFIG,
                "limits.max_nodes: must be an integer >= 1");
    expect_file("{\"limits\": {\"max_request_bytes\": 1023}}", PG_ECONFIG,
                "limits.max_request_bytes: must be an integer >= 1024");
    expect_file("{\"limits\": {\"max_request_bytes\": 1024}}", 0, NULL);
    expect_file("{\"limits\": {\"max_depth\": -1}}", PG_ECONFIG,
                "limits.max_depth: must be an integer >= 1");
    expect_file("{\"limits\": {\"max_cells\": 1e300}}", PG_ECONFIG,
                "limits.max_cells: must be an integer >= 1");
    expect_file("{\"limits\": {\"max_result_bytes\": 0}}", PG_ECONFIG,
                "limits.max_result_bytes: must be an integer >= 1");
    expect_file("{\"limits\": {\"max_connections\": 0}}", PG_ECONFIG,
                "limits.max_connections: must be an integer >= 1");
    expect_file("{\"workers\": -1}", PG_ECONFIG,
                "workers: must be an integer in 0..4096 (0: one per core)");
    expect_file("{\"tile_size\": 15}", PG_ECONFIG,
                "tile_size: must be an integer in 16..8192 or a list [width, height] of such");
    expect_file("{\"tile_size\": 8193}", PG_ECONFIG,
                "tile_size: must be an integer in 16..8192 or a list [width, height] of such");
    expect_file("{\"tile_size\": 100}", PG_ECONFIG,
                "tile_size: must be a multiple of 16 (got 100x100)");
    expect_file("{\"tile_size\": [256, 40]}", PG_ECONFIG,
                "tile_size: must be a multiple of 16 (got 256x40)");
    expect_file("{\"tile_size\": [256]}", PG_ECONFIG,
                "tile_size: must be an integer in 16..8192 or a list [width, height] of such");
    expect_file("{\"tile_size\": [256, 8]}", PG_ECONFIG,
                "tile_size: must be an integer in 16..8192 or a list [width, height] of such");
    expect_file("{\"tile_size\": [16, 8192]}", 0, NULL);
    expect_file("{\"memory_budget_mb\": 15}", PG_ECONFIG,
                "memory_budget_mb: must be an integer in 16..1073741824");
    expect_file("{\"gdal_cache_mb\": 0}", PG_ECONFIG,
                "gdal_cache_mb: must be an integer in 1..1073741824");
    expect_file("{\"default_timeout_ms\": -5}", PG_ECONFIG,
                "default_timeout_ms: must be an integer >= 0");
    expect_file("{\"shutdown_grace_ms\": -1}", PG_ECONFIG,
                "shutdown_grace_ms: must be an integer >= 0");
    char longsock[256];
    memset(longsock, 'x', 108);
    longsock[108] = '\0';
    char text[400];
    snprintf(text, sizeof text, "{\"socket\": \"/%s\"}", longsock);
    expect_file(text, PG_ECONFIG, "socket: must be null or a path of 1..107 bytes");
}
END_TEST

START_TEST(file_listen_syntax)
{
    static const char *bad[] = {"127.0.0.1",     "127.0.0.1:70000", "127.0.0.1:",   ":80",
                                "::1:7878",      "[::1]7878",       "[zz]:1",       "a b:1",
                                "host:-1",       "host:1x",         "[::1]:123456", "[]:1",
                                "127.0.0.1:+80", "h\xc3\xa9:1"};
    for (size_t i = 0; i < PG_ARRAY_SIZE(bad); i++) {
        json_t *j = json_pack("{s:[s]}", "listen", bad[i]);
        char *text = json_dumps(j, 0);
        char want[256];
        snprintf(want, sizeof want,
                 "listen[0]: '%s' is not HOST:PORT (port 0..65535; IPv6 as [::1]:7878)", bad[i]);
        expect_file(text, PG_ECONFIG, want);
        free(text);
        json_decref(j);
    }
    char host[64];
    int port = -1;
    ck_assert_int_eq(pg_config_split_addr("[::1]:7878", host, sizeof host, &port), 0);
    ck_assert_str_eq(host, "::1");
    ck_assert_int_eq(port, 7878);
    ck_assert_int_eq(pg_config_split_addr("0.0.0.0:0", host, sizeof host, &port), 0);
    ck_assert_str_eq(host, "0.0.0.0");
    ck_assert_int_eq(port, 0);
    ck_assert_int_eq(pg_config_split_addr("my-host.example:65535", host, sizeof host, &port), 0);
    ck_assert_str_eq(host, "my-host.example");
    ck_assert_int_eq(port, 65535);
    ck_assert_int_eq(pg_config_split_addr("[2001:db8::1]:1", host, sizeof host, &port), 0);
    ck_assert_str_eq(host, "2001:db8::1");
    /* Host buffer too small. */
    ck_assert_int_eq(pg_config_split_addr("localhost:1", host, 4, &port), -1);
    ck_assert_int_eq(pg_config_split_addr(NULL, NULL, 0, NULL), -1);
}
END_TEST

START_TEST(file_syntax_errors)
{
    pg_config c;
    pg_error err = {0};
    pg_config_defaults(&c);
    const char *p = write_file("s.json", "{\n  \"workers\": 4,\n}\n");
    ck_assert_int_eq(pg_config_load_file(&c, p, &err), PG_ECONFIG);
    char want[1024];
    snprintf(want, sizeof want, "%s: line 3, column 1: string or '}' expected near '}'", p);
    ck_assert_str_eq(err.message, want);

    p = write_file("d.json", "{\"workers\": 4,\n \"workers\": 5}");
    ck_assert_int_eq(pg_config_load_file(&c, p, &err), PG_ECONFIG);
    snprintf(want, sizeof want, "%s: line 2, column 10: duplicate object key near '\"workers\"'",
             p);
    ck_assert_str_eq(err.message, want);

    char path[512];
    snprintf(path, sizeof path, "%s/missing.json", tmpdir);
    ck_assert_int_eq(pg_config_load_file(&c, path, &err), PG_ECONFIG);
    snprintf(want, sizeof want, "unable to open %s: No such file or directory", path);
    ck_assert_str_eq(err.message, want);

    ck_assert_int_eq(pg_config_load_file(&c, tmpdir, &err), PG_ECONFIG);
    snprintf(want, sizeof want, "%s: is a directory, not a configuration file", tmpdir);
    ck_assert_str_eq(err.message, want);

    ck_assert_int_eq(pg_config_load_file(&c, NULL, &err), PG_EINVAL);
    /* None of that changed anything. */
    ck_assert_int_eq(c.workers, 0);
    pg_config_clear(&c);
}
END_TEST

/* A load that fails halfway leaves the config as it was. */
START_TEST(file_failed_load_changes_nothing)
{
    pg_config c, d;
    pg_error err = {0};
    pg_config_defaults(&c);
    pg_config_defaults(&d);
    const char *p = write_file("h.json", "{\"workers\": 3, \"listen\": [\"1.2.3.4:5\"], "
                                         "\"data_root\": \"x\", \"limits\": {\"max_jobs\": 0}}");
    ck_assert_int_eq(pg_config_load_file(&c, p, &err), PG_ECONFIG);
    assert_config_eq(&c, &d);
    pg_config_clear(&c);
    pg_config_clear(&d);
}
END_TEST

START_TEST(apply_json_messages)
{
    pg_config c;
    pg_error err = {0};
    pg_config_defaults(&c);
    json_t *j = json_pack("{s:{s:i}}", "limits", "max_nodes", 0);
    ck_assert_int_eq(pg_config_apply_json(&c, j, &err), PG_ECONFIG);
    ck_assert_int_eq(err.code, PG_ECONFIG);
    ck_assert_str_eq(err.message, "limits.max_nodes: must be an integer >= 1");
    json_decref(j);
    j = json_pack("{s:I}", "max_nodes", (json_int_t)5);
    ck_assert_int_eq(pg_config_apply_json(&c, j, &err), PG_ECONFIG);
    ck_assert_str_eq(err.message, "max_nodes: unknown key");
    json_decref(j);
    j = json_string("x");
    ck_assert_int_eq(pg_config_apply_json(&c, j, &err), PG_ECONFIG);
    ck_assert_str_eq(err.message, "the configuration must be a JSON object");
    json_decref(j);
    /* A NUL inside a string (possible from code, not from a file). */
    j = json_object();
    json_object_set_new(j, "data_root", json_stringn("a\0b", 3));
    ck_assert_int_eq(pg_config_apply_json(&c, j, &err), PG_ECONFIG);
    ck_assert_str_eq(err.message, "data_root: must not contain NUL bytes");
    json_decref(j);
    j = json_pack("{s:s}", "log_level", "warn");
    ck_assert_int_eq(pg_config_apply_json(&c, j, &err), 0);
    ck_assert_int_eq(c.log_level, PG_LOG_WARN);
    json_decref(j);
    pg_config_clear(&c);
}
END_TEST

/* ---- command line ------------------------------------------------------ */

#define ARGV(...)                                                                                  \
    (char *[])                                                                                     \
    {                                                                                              \
        "pergolad", __VA_ARGS__, NULL                                                              \
    }
#define ARGC(...) ((int)(sizeof((char *[]){"pergolad", __VA_ARGS__}) / sizeof(char *)))
#define RUN(c, err, ...) pg_config_from_args((c), ARGC(__VA_ARGS__), ARGV(__VA_ARGS__), (err))

/* Runs the args on a fresh default config and expects CODE with MESSAGE. */
#define EXPECT_ARGS_ERR(msg, ...)                                                                  \
    do {                                                                                           \
        pg_config c_;                                                                              \
        pg_error e_ = {0};                                                                         \
        pg_config_defaults(&c_);                                                                   \
        ck_assert_int_eq(RUN(&c_, &e_, __VA_ARGS__), PG_ECONFIG);                                  \
        ck_assert_int_eq(e_.code, PG_ECONFIG);                                                     \
        ck_assert_str_eq(e_.message, (msg));                                                       \
        pg_config_clear(&c_);                                                                      \
    } while (0)

/* Runs F with stdout going to a file; returns what it printed. */
static char *capture_stdout(int (*f)(void), int *rc)
{
    char path[512];
    snprintf(path, sizeof path, "%s/stdout.txt", tmpdir);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    dup2(fd, STDOUT_FILENO);
    close(fd);
    *rc = f();
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    FILE *in = fopen(path, "r");
    static char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, in);
    buf[n] = '\0';
    fclose(in);
    return buf;
}

static int run_help(void)
{
    pg_config c;
    pg_config_defaults(&c);
    int rc = RUN(&c, NULL, "--workers", "3", "--help");
    /* --help changes nothing. */
    ck_assert_int_eq(c.workers, 0);
    pg_config_clear(&c);
    return rc;
}

static int run_version(void)
{
    pg_config c;
    pg_config_defaults(&c);
    int rc = RUN(&c, NULL, "--version");
    pg_config_clear(&c);
    return rc;
}

START_TEST(args_help_version)
{
    int rc;
    char *out = capture_stdout(run_help, &rc);
    ck_assert_int_eq(rc, 1);
    static const char *flags[] = {"--config FILE",
                                  "--listen HOST:PORT",
                                  "--socket PATH",
                                  "--workers N",
                                  "--data-root DIR",
                                  "--tile-size N",
                                  "--memory-budget-mb N",
                                  "--log-level L",
                                  "--ready-file PATH",
                                  "--help",
                                  "--version"};
    for (size_t i = 0; i < PG_ARRAY_SIZE(flags); i++)
        ck_assert_msg(strstr(out, flags[i]) != NULL, "usage lacks %s:\n%s", flags[i], out);
    ck_assert(strncmp(out, "Usage: pergolad", 15) == 0);

    out = capture_stdout(run_version, &rc);
    ck_assert_int_eq(rc, 1);
    ck_assert_str_eq(out, "pergolad " PG_VERSION "\n");
}
END_TEST

START_TEST(args_values)
{
    pg_config c;
    pg_error err = {0};
    pg_config_defaults(&c);
    int rc = RUN(&c, &err, "--workers", "3", "--socket=/tmp/pg.sock", "--data-root", "/srv/data",
                 "--tile-size", "512x128", "--memory-budget-mb", "2048", "--log-level", "debug",
                 "--ready-file", "/tmp/ready", "--listen", "0.0.0.0:0", "--listen=[::1]:9");
    ck_assert_msg(rc == 0, "%s", err.message);
    ck_assert_int_eq(c.workers, 3);
    ck_assert_str_eq(c.socket_path, "/tmp/pg.sock");
    ck_assert_str_eq(c.data_root, "/srv/data");
    ck_assert_int_eq(c.tile_w, 512);
    ck_assert_int_eq(c.tile_h, 128);
    ck_assert_int_eq(c.memory_budget_mb, 2048);
    ck_assert_int_eq(c.log_level, PG_LOG_DEBUG);
    ck_assert_str_eq(c.ready_file, "/tmp/ready");
    /* The first --listen replaced the default, the second added to it. */
    ck_assert_int_eq(c.nlisten, 2);
    ck_assert_str_eq(c.listen[0], "0.0.0.0:0");
    ck_assert_str_eq(c.listen[1], "[::1]:9");
    pg_config_clear(&c);

    pg_config_defaults(&c);
    ck_assert_int_eq(RUN(&c, &err, "--tile-size", "64"), 0);
    ck_assert_int_eq(c.tile_w, 64);
    ck_assert_int_eq(c.tile_h, 64);
    pg_config_clear(&c);

    /* No flags at all: the defaults. */
    pg_config d;
    pg_config_defaults(&c);
    pg_config_defaults(&d);
    char *argv[] = {"pergolad", NULL};
    ck_assert_int_eq(pg_config_from_args(&c, 1, argv, &err), 0);
    assert_config_eq(&c, &d);
    pg_config_clear(&c);
    pg_config_clear(&d);
}
END_TEST

/* --config is loaded before every other flag, wherever it is. */
START_TEST(args_config_first)
{
    const char *p = write_file("a.json", "{\"workers\": 5, \"memory_budget_mb\": 100, "
                                         "\"listen\": [\"10.1.1.1:1\"]}");
    char path[512];
    snprintf(path, sizeof path, "%s", p);
    pg_config c;
    pg_error err = {0};
    pg_config_defaults(&c);
    ck_assert_int_eq(RUN(&c, &err, "--workers", "3", "--listen", "1.1.1.1:2", "--config", path), 0);
    ck_assert_int_eq(c.workers, 3);
    ck_assert_int_eq(c.memory_budget_mb, 100);
    /* --listen replaces the file's list too. */
    ck_assert_int_eq(c.nlisten, 1);
    ck_assert_str_eq(c.listen[0], "1.1.1.1:2");
    pg_config_clear(&c);

    /* A bad file fails the whole command line, naming the file. */
    p = write_file("b.json", "{\"limits\": {\"max_nodes\": 0}}");
    snprintf(path, sizeof path, "%s", p);
    pg_config_defaults(&c);
    ck_assert_int_eq(RUN(&c, &err, "--workers", "3", "--config=x", "--config", path), PG_ECONFIG);
    ck_assert_str_eq(err.message, "unable to open x: No such file or directory");
    ck_assert_int_eq(RUN(&c, &err, "--workers", "3", "--config", path), PG_ECONFIG);
    char want[600];
    snprintf(want, sizeof want, "%s: limits.max_nodes: must be an integer >= 1", path);
    ck_assert_str_eq(err.message, want);
    ck_assert_int_eq(c.workers, 0); /* unchanged */
    pg_config_clear(&c);

    /* Nothing to listen on: an empty list and no socket. */
    p = write_file("e.json", "{\"listen\": []}");
    snprintf(path, sizeof path, "%s", p);
    EXPECT_ARGS_ERR("listen: nothing to listen on (no address and no socket)", "--config", path);
    pg_config_defaults(&c);
    ck_assert_int_eq(RUN(&c, &err, "--config", path, "--socket", "/tmp/s"), 0);
    ck_assert_int_eq(c.nlisten, 0);
    ck_assert_str_eq(c.socket_path, "/tmp/s");
    pg_config_clear(&c);
}
END_TEST

START_TEST(args_errors)
{
    EXPECT_ARGS_ERR("unknown flag '--bogus' (see --help)", "--bogus");
    EXPECT_ARGS_ERR("unknown flag '--work' (see --help)", "--work", "3");
    EXPECT_ARGS_ERR("unexpected argument 'serve' (see --help)", "serve");
    EXPECT_ARGS_ERR("unexpected argument '-w' (see --help)", "-w");
    EXPECT_ARGS_ERR("--workers: needs a value (N)", "--workers");
    EXPECT_ARGS_ERR("--fusion: 'maybe' is not on or off", "--fusion", "maybe");
    EXPECT_ARGS_ERR("--cache-mb: 'lots' is not an integer", "--cache-mb", "lots");
    EXPECT_ARGS_ERR("--help: takes no value", "--help=yes");
    EXPECT_ARGS_ERR("--workers: 'abc' is not an integer", "--workers", "abc");
    EXPECT_ARGS_ERR("--workers: ' 3' is not an integer", "--workers", " 3");
    EXPECT_ARGS_ERR("--workers: '' is not an integer", "--workers=");
    EXPECT_ARGS_ERR("--workers: '99999999999999999999' is not an integer", "--workers",
                    "99999999999999999999");
    EXPECT_ARGS_ERR("--workers: must be an integer in 0..4096 (0: one per core)", "--workers",
                    "-1");
    EXPECT_ARGS_ERR("--tile-size: must be an integer in 16..8192 or a list [width, height] of "
                    "such",
                    "--tile-size", "8");
    EXPECT_ARGS_ERR("--tile-size: must be an integer in 16..8192 or a list [width, height] of "
                    "such",
                    "--tile-size", "256x9000");
    EXPECT_ARGS_ERR("--tile-size: '256x' is not N or WxH", "--tile-size", "256x");
    EXPECT_ARGS_ERR("--tile-size: 'x256' is not N or WxH", "--tile-size", "x256");
    EXPECT_ARGS_ERR("--memory-budget-mb: must be an integer in 16..1073741824",
                    "--memory-budget-mb", "8");
    EXPECT_ARGS_ERR("--log-level: must be one of \"error\", \"warn\", \"info\", \"debug\"",
                    "--log-level", "loud");
    EXPECT_ARGS_ERR("--listen: 'nope' is not HOST:PORT (port 0..65535; IPv6 as [::1]:7878)",
                    "--listen", "nope");
    EXPECT_ARGS_ERR("--listen: '1.2.3.4:65536' is not HOST:PORT (port 0..65535; IPv6 as "
                    "[::1]:7878)",
                    "--listen", "1.2.3.4:1", "--listen", "1.2.3.4:65536");
    EXPECT_ARGS_ERR("--socket: must be null or a path of 1..107 bytes", "--socket", "");
    EXPECT_ARGS_ERR("--data-root: must be a non-empty string", "--data-root", "");
    EXPECT_ARGS_ERR("--ready-file: must be a non-empty string", "--ready-file=");

    /* A failed command line changes nothing. */
    pg_config c, d;
    pg_error err = {0};
    pg_config_defaults(&c);
    pg_config_defaults(&d);
    ck_assert_int_eq(RUN(&c, &err, "--workers", "7", "--listen", "1.1.1.1:1", "--log-level", "x"),
                     PG_ECONFIG);
    assert_config_eq(&c, &d);
    pg_config_clear(&c);
    pg_config_clear(&d);
}
END_TEST

/* ---- log --------------------------------------------------------------- */

START_TEST(log_levels)
{
    static const char *names[] = {"error", "warn", "info", "debug"};
    static const int levels[] = {PG_LOG_ERROR, PG_LOG_WARN, PG_LOG_INFO, PG_LOG_DEBUG};
    for (int i = 0; i < 4; i++) {
        int lv = -1;
        ck_assert_int_eq(pg_log_parse_level(names[i], &lv), 0);
        ck_assert_int_eq(lv, levels[i]);
        ck_assert_str_eq(pg_log_level_name(levels[i]), names[i]);
    }
    static const char *bad[] = {"", "INFO", "warning", "debug ", "trace", "0"};
    for (size_t i = 0; i < PG_ARRAY_SIZE(bad); i++) {
        int lv = 42;
        ck_assert_int_eq(pg_log_parse_level(bad[i], &lv), -1);
        ck_assert_int_eq(lv, 42);
    }
    int lv = 42;
    ck_assert_int_eq(pg_log_parse_level(NULL, &lv), -1);
    ck_assert_int_eq(lv, 42);
    ck_assert_str_eq(pg_log_level_name(7), "unknown");

    ck_assert_int_eq(pg_log_get_level(), PG_LOG_INFO);
    pg_log_set_level(PG_LOG_DEBUG);
    ck_assert_int_eq(pg_log_get_level(), PG_LOG_DEBUG);
    pg_log_set_level(99);
    ck_assert_int_eq(pg_log_get_level(), PG_LOG_DEBUG);
    pg_log_set_level(-3);
    ck_assert_int_eq(pg_log_get_level(), PG_LOG_ERROR);
}
END_TEST

/* Reads what FN logs to stderr. */
static char *capture_stderr(void (*fn)(void))
{
    static char buf[16384];
    char path[512];
    snprintf(path, sizeof path, "%s/stderr.txt", tmpdir);
    int saved = dup(STDERR_FILENO);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    dup2(fd, STDERR_FILENO);
    close(fd);
    fn();
    dup2(saved, STDERR_FILENO);
    close(saved);
    FILE *in = fopen(path, "r");
    size_t n = fread(buf, 1, sizeof buf - 1, in);
    buf[n] = '\0';
    fclose(in);
    return buf;
}

static void log_some(void)
{
    pg_log_set_level(PG_LOG_INFO);
    pg_log_set_thread("w3");
    pg_log_info("hello %d", 5);
    pg_log_debug("hidden %d", 6);
    pg_log_error("two\nlines\r");
    pg_log_set_thread(NULL);
    pg_log_warn("no tag");
}

static void log_long(void)
{
    static char big[6000];
    memset(big, 'a', sizeof big - 1);
    pg_log_set_thread("loop");
    pg_log_info("%s", big);
}

START_TEST(log_format)
{
    char *out = capture_stderr(log_some);
    regex_t re;
    const char *pat = "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
                      "INFO  \\[w3\\] hello 5\n"
                      "[0-9TZ:.-]{24} ERROR \\[w3\\] two lines \n"
                      "[0-9TZ:.-]{24} WARN  \\[[0-9]+\\] no tag\n$";
    ck_assert_int_eq(regcomp(&re, pat, REG_EXTENDED), 0);
    ck_assert_msg(regexec(&re, out, 0, NULL, 0) == 0, "log output:\n%s", out);
    regfree(&re);

    out = capture_stderr(log_long);
    size_t n = strlen(out);
    ck_assert_uint_eq(n, 4096);
    ck_assert_str_eq(out + n - 4, "...\n");
    ck_assert_ptr_null(memchr(out, '\n', n - 1));
}
END_TEST

static Suite *config_suite(void)
{
    Suite *s = suite_create("config");
    TCase *tc = tcase_create("defaults");
    tcase_add_test(tc, defaults_values);
    tcase_add_test(tc, defaults_match_conf_file);
    suite_add_tcase(s, tc);
    tc = tcase_create("file");
    tcase_add_test(tc, file_partial_and_forms);
    tcase_add_test(tc, file_unknown_keys);
    tcase_add_test(tc, file_wrong_types);
    tcase_add_test(tc, file_out_of_range);
    tcase_add_test(tc, file_listen_syntax);
    tcase_add_test(tc, file_syntax_errors);
    tcase_add_test(tc, file_failed_load_changes_nothing);
    tcase_add_test(tc, apply_json_messages);
    suite_add_tcase(s, tc);
    tc = tcase_create("args");
    tcase_add_test(tc, args_help_version);
    tcase_add_test(tc, args_values);
    tcase_add_test(tc, args_config_first);
    tcase_add_test(tc, args_errors);
    suite_add_tcase(s, tc);
    tc = tcase_create("log");
    tcase_add_test(tc, log_levels);
    tcase_add_test(tc, log_format);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    snprintf(tmpdir, sizeof tmpdir, "/tmp/pg_test_config.XXXXXX");
    if (mkdtemp(tmpdir) == NULL) return 1;
    SRunner *sr = srunner_create(config_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
    if (system(cmd) != 0) failed++;
    return failed == 0 ? 0 : 1;
}
