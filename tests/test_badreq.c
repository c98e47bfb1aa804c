/* Bad requests against real daemons: every malformed line, envelope, graph,
 * path and limit gets the documented error code (README.md, "Error codes"),
 * names the right node (or none), echoes the request's id (null when the
 * line could not be parsed), says what is wrong, and leaves the daemon
 * serving: on the same connection where the stream can go on, on a new one
 * always. Nothing may be written outside the data root, and a refused or
 * failed run leaves no file inside it.
 *
 * Daemons are started once per test case group by unchecked fixtures (in
 * Check's parent process, so that they are stopped even when a test fails
 * or times out); tests run in forked children and only talk to them. A
 * daemon that does not exit cleanly (status 0) on SIGTERM fails the suite
 * from main(), since fixtures cannot assert. Most cases are rows of tables:
 * a raw request line and the answer it must get. Request lines are written
 * with ' for " and may use @R (the data root) and @O (a directory outside
 * it). Every wait is bounded (WAIT_MS per answer).
 */
#include "harness.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WAIT_MS 5000

/* ------------------------------------------------------------------------ */
/* Daemons and their data                                                   */

static th_daemon d_main;  /* default limits */
static th_daemon d_lim;   /* small request, node, depth and result limits */
static th_daemon d_jobs;  /* limits.max_jobs 1 */
static th_daemon d_conns; /* limits.max_connections 2 */
static th_daemon d_fsz;   /* started with RLIMIT_FSIZE: writes fail */
static char outside[256]; /* a directory outside every data root */
static int stop_failures; /* daemons that did not exit with status 0 */

/* Names outside the root that escaping writes would create. */
static const char *const escape_targets[] = {
    "/tmp/pergola-badreq-escape.tif",
    "/tmp/pergola-badreq-abs.tif",
    NULL,
};

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static int write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) return -1;
    size_t n = strlen(text);
    int ok = fwrite(text, 1, n, f) == n;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

static int exists(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0;
}

/* Writes a config file beside D's root (not inside it) and starts D with
 * it. Returns 0 or -1. */
static int start_with(th_daemon *d, const char *config_json)
{
    char cfg[300];
    snprintf(cfg, sizeof cfg, "%s.json", d->root);
    if (write_file(cfg, config_json) != 0) return -1;
    const char *extra[] = {"--workers", "2", "--config", cfg, NULL};
    return th_start(d, extra);
}

static void stop_daemon(th_daemon *d, const char *what)
{
    int st = th_stop(d);
    if (st != 0) {
        fprintf(stderr, "test_badreq: the %s daemon exited with status %d, not 0 (log %s)\n", what,
                st, d->log);
        stop_failures++;
        char cmd[400];
        snprintf(cmd, sizeof cmd, "tail -n 20 '%s' >&2", d->log);
        if (system(cmd) != 0) fprintf(stderr, "(no log)\n");
    }
    char cfg[300];
    snprintf(cfg, sizeof cfg, "%s.json", d->root);
    unlink(cfg);
    char ro[300];
    snprintf(ro, sizeof ro, "%s/ro", d->root);
    chmod(ro, 0755);
    th_cleanup(d);
}

static void mkraster_or_die(const char *root, const char *name, const char *args)
{
    int rc = th_mkraster(root, name, args);
    ck_assert_msg(rc == 0, "pergola-mkraster %s/%s %s: exit %d", root, name, args, rc);
}

/* The files every table case may point at. */
static void populate(const char *root)
{
    char p[600], q[600];
    mkraster_or_die(root, "a.tif", "--size 64");
    mkraster_or_die(root, "small.tif", "--size 32");
    mkraster_or_die(root, "shifted.tif", "--size 64 --origin 600000,5000000");
    mkraster_or_die(root, "utm32.tif", "--size 64 --crs EPSG:32632");
    snprintf(p, sizeof p, "%s/bad.tif", root);
    ck_assert(write_file(p, "this is not a raster, just text\n") == 0);
    snprintf(p, sizeof p, "%s/empty.tif", root);
    ck_assert(write_file(p, "") == 0);
    snprintf(p, sizeof p, "%s/plain.txt", root);
    ck_assert(write_file(p, "a regular file\n") == 0);
    snprintf(p, sizeof p, "%s/sub", root);
    ck_assert(mkdir(p, 0755) == 0);
    snprintf(p, sizeof p, "%s/ro", root);
    ck_assert(mkdir(p, 0755) == 0);
    /* Symlinks: to a file outside, to a directory outside, to a file
     * inside (writing over any symlink is refused), to nowhere. */
    snprintf(p, sizeof p, "%s/link_out.tif", root);
    ck_assert(symlink("/etc/hostname", p) == 0);
    snprintf(p, sizeof p, "%s/link_outdir", root);
    ck_assert(symlink(outside, p) == 0);
    snprintf(p, sizeof p, "%s/link_in.tif", root);
    ck_assert(symlink("a.tif", p) == 0);
    snprintf(p, sizeof p, "%s/link_save_out.tif", root);
    snprintf(q, sizeof q, "%s/target.tif", outside);
    ck_assert(symlink(q, p) == 0);
    /* VRTs inside the root that read files outside it. */
    snprintf(p, sizeof p, "%s/hostname.vrt", root);
    ck_assert(write_file(p, "<VRTDataset rasterXSize=\"2\" rasterYSize=\"1\">\n"
                            "  <VRTRasterBand dataType=\"Byte\" band=\"1\" "
                            "subClass=\"VRTRawRasterBand\">\n"
                            "    <SourceFilename relativeToVRT=\"0\">/etc/hostname"
                            "</SourceFilename>\n"
                            "    <ImageOffset>0</ImageOffset><PixelOffset>1</PixelOffset>"
                            "<LineOffset>2</LineOffset>\n"
                            "  </VRTRasterBand>\n"
                            "</VRTDataset>\n") == 0);
    char vrt[2000];
    snprintf(vrt, sizeof vrt,
             "<VRTDataset rasterXSize=\"8\" rasterYSize=\"8\">\n"
             "  <VRTRasterBand dataType=\"Float32\" band=\"1\">\n"
             "    <SimpleSource><SourceFilename relativeToVRT=\"%d\">%s%s</SourceFilename>"
             "<SourceBand>1</SourceBand></SimpleSource>\n"
             "  </VRTRasterBand>\n"
             "</VRTDataset>\n",
             0, outside, "/outside.tif");
    snprintf(p, sizeof p, "%s/outside_ref.vrt", root);
    ck_assert(write_file(p, vrt) == 0);
    /* The same with a relative source and a .tif name. */
    const char *base = strrchr(outside, '/') + 1;
    snprintf(vrt, sizeof vrt,
             "<VRTDataset rasterXSize=\"8\" rasterYSize=\"8\">\n"
             "  <VRTRasterBand dataType=\"Float32\" band=\"1\">\n"
             "    <SimpleSource><SourceFilename relativeToVRT=\"1\">../%s/outside.tif"
             "</SourceFilename><SourceBand>1</SourceBand></SimpleSource>\n"
             "  </VRTRasterBand>\n"
             "</VRTDataset>\n",
             base);
    snprintf(p, sizeof p, "%s/sneaky.tif", root);
    ck_assert(write_file(p, vrt) == 0);
}

static void setup_main(void)
{
    th_root_init(&d_main);
    populate(d_main.root);
    int rc = start_with(&d_main, "{\"shutdown_grace_ms\": 3000}");
    if (rc != 0) th_cleanup(&d_main);
    ck_assert_msg(rc == 0, "cannot start the main daemon (log %s)", d_main.log);
}

static void teardown_main(void)
{
    stop_daemon(&d_main, "main");
}

static void setup_lim(void)
{
    th_root_init(&d_lim);
    int rc = start_with(&d_lim, "{\"shutdown_grace_ms\": 3000, \"limits\": "
                                "{\"max_request_bytes\": 4096, \"max_nodes\": 8, "
                                "\"max_depth\": 4, \"max_result_bytes\": 4096}}");
    if (rc != 0) th_cleanup(&d_lim);
    ck_assert_msg(rc == 0, "cannot start the limits daemon (log %s)", d_lim.log);
}

static void teardown_lim(void)
{
    stop_daemon(&d_lim, "limits");
}

static void setup_jobs(void)
{
    th_root_init(&d_jobs);
    int rc = start_with(&d_jobs, "{\"shutdown_grace_ms\": 3000, \"limits\": {\"max_jobs\": 1}}");
    if (rc != 0) th_cleanup(&d_jobs);
    ck_assert_msg(rc == 0, "cannot start the max_jobs daemon (log %s)", d_jobs.log);
}

static void teardown_jobs(void)
{
    stop_daemon(&d_jobs, "max_jobs");
}

static void setup_conns(void)
{
    th_root_init(&d_conns);
    int rc =
        start_with(&d_conns, "{\"shutdown_grace_ms\": 3000, \"limits\": {\"max_connections\": 2}}");
    if (rc != 0) th_cleanup(&d_conns);
    ck_assert_msg(rc == 0, "cannot start the max_connections daemon (log %s)", d_conns.log);
}

static void teardown_conns(void)
{
    stop_daemon(&d_conns, "max_connections");
}

/* A daemon whose files cannot grow past 1 MiB (RLIMIT_FSIZE, which binds
 * root too), with SIGXFSZ ignored so that a write fails with EFBIG instead
 * of killing it: a real write failure in the middle of a job. */
static void setup_fsz(void)
{
    th_root_init(&d_fsz);
    char p[400];
    snprintf(p, sizeof p, "%s/ro", d_fsz.root);
    ck_assert(mkdir(p, 0755) == 0);
    struct rlimit old, lim;
    ck_assert(getrlimit(RLIMIT_FSIZE, &old) == 0);
    lim = old;
    lim.rlim_cur = 1024 * 1024;
    void (*oldsig)(int) = signal(SIGXFSZ, SIG_IGN);
    int rc = setrlimit(RLIMIT_FSIZE, &lim);
    if (rc == 0) rc = start_with(&d_fsz, "{\"shutdown_grace_ms\": 3000}");
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, oldsig);
    if (rc != 0) th_cleanup(&d_fsz);
    ck_assert_msg(rc == 0, "cannot start the RLIMIT_FSIZE daemon (log %s)", d_fsz.log);
}

static void teardown_fsz(void)
{
    stop_daemon(&d_fsz, "RLIMIT_FSIZE");
}

/* ------------------------------------------------------------------------ */
/* Raw exchange                                                             */

/* TMPL with @R -> D's root, @O -> the outside directory and, if QUOTES,
 * ' -> ". */
static char *expand_q(const th_daemon *d, const char *tmpl, int quotes)
{
    size_t cap = strlen(tmpl) * 2 + 1024, n = 0;
    char *out = malloc(cap);
    ck_assert_ptr_nonnull(out);
    for (const char *s = tmpl; *s; s++) {
        const char *ins = NULL;
        char one[2] = {quotes && *s == '\'' ? '"' : *s, 0};
        if (s[0] == '@' && s[1] == 'R') {
            ins = d->root;
            s++;
        } else if (s[0] == '@' && s[1] == 'O') {
            ins = outside;
            s++;
        } else {
            ins = one;
        }
        size_t k = strlen(ins);
        if (n + k + 2 > cap) {
            cap = (n + k + 2) * 2;
            out = realloc(out, cap);
            ck_assert_ptr_nonnull(out);
        }
        memcpy(out + n, ins, k);
        n += k;
    }
    out[n] = '\0';
    return out;
}

static char *expand(const th_daemon *d, const char *tmpl)
{
    return expand_q(d, tmpl, 1);
}

static const char *ev_event(const json_t *ev)
{
    const char *e = json_string_value(json_object_get(ev, "event"));
    return e ? e : "";
}

static const char *ev_message(const json_t *ev)
{
    const char *m = json_string_value(json_object_get(json_object_get(ev, "error"), "message"));
    return m ? m : "";
}

/* The next result or error on FD, counting the accepted events before it. */
static json_t *recv_answer(int fd, int *accepted)
{
    for (;;) {
        json_t *ev = th_recv(fd, WAIT_MS);
        if (ev == NULL) return NULL;
        const char *e = ev_event(ev);
        if (strcmp(e, "result") == 0 || strcmp(e, "error") == 0) return ev;
        if (strcmp(e, "accepted") == 0 && accepted) (*accepted)++;
        json_decref(ev);
    }
}

/* The next event on FD with this id (JSON text) and event name; other
 * events are skipped. NULL on timeout. */
static json_t *recv_for(int fd, const char *id_json, const char *event)
{
    json_t *want = json_loads(id_json, JSON_DECODE_ANY, NULL);
    ck_assert_ptr_nonnull(want);
    for (;;) {
        json_t *ev = th_recv(fd, WAIT_MS);
        if (ev == NULL) break;
        if (json_equal(json_object_get(ev, "id"), want) && strcmp(ev_event(ev), event) == 0) {
            json_decref(want);
            return ev;
        }
        json_decref(ev);
    }
    json_decref(want);
    return NULL;
}

/* 1 if the peer closed FD (EOF or reset) within TIMEOUT_MS, 0 if data came
 * or nothing happened. */
static int peer_closed(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, timeout_ms) != 1) return 0;
    char c;
    ssize_t r = recv(fd, &c, 1, 0);
    return r == 0 || (r < 0 && errno == ECONNRESET);
}

/* Reads what FD still delivers into BUF (NUL-terminated, cut to SIZE)
 * until the peer closes (returns 1) or nothing comes for WAIT_MS (0). */
static int read_rest(int fd, char *buf, size_t size)
{
    size_t n = 0;
    buf[0] = '\0';
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (poll(&p, 1, WAIT_MS) != 1) return 0;
        char tmp[512];
        ssize_t r = recv(fd, tmp, sizeof tmp, 0);
        if (r == 0 || (r < 0 && errno == ECONNRESET)) return 1;
        if (r < 0) return 0;
        for (ssize_t i = 0; i < r && n + 1 < size; i++)
            buf[n++] = tmp[i];
        buf[n] = '\0';
    }
}

static int id_is(const json_t *ev, const char *id_json)
{
    json_t *want = json_loads(id_json, JSON_DECODE_ANY, NULL);
    ck_assert_ptr_nonnull(want);
    json_t *got = json_object_get(ev, "id");
    int ok = got != NULL && json_equal(got, want);
    json_decref(want);
    return ok;
}

/* A ping on FD (an open connection) is answered with a pong. */
static int ping_on(int fd, const char *id)
{
    char line[100];
    snprintf(line, sizeof line, "{\"id\":\"%s\",\"type\":\"ping\"}\n", id);
    json_t *ev = th_request(fd, line, WAIT_MS);
    const char *got = json_string_value(json_object_get(ev, "id"));
    int ok = ev && json_is_true(json_object_get(json_object_get(ev, "value"), "pong")) && got &&
             strcmp(got, id) == 0;
    json_decref(ev);
    return ok;
}

/* The daemon's job counters: running + completed + failed + cancelled. */
static long long jobs_seen(const th_daemon *d)
{
    int fd = th_connect(d);
    if (fd < 0) return -1;
    json_t *ev = th_request(fd, "{\"id\":\"st\",\"type\":\"status\"}\n", WAIT_MS);
    close(fd);
    json_t *j = json_object_get(json_object_get(ev, "value"), "jobs");
    long long n = -1;
    if (json_is_object(j))
        n = json_integer_value(json_object_get(j, "running")) +
            json_integer_value(json_object_get(j, "completed")) +
            json_integer_value(json_object_get(j, "failed")) +
            json_integer_value(json_object_get(j, "cancelled"));
    json_decref(ev);
    return n;
}

/* ------------------------------------------------------------------------ */
/* Snapshots: a sorted listing of a tree (type, size; symlinks not followed) */

typedef struct {
    char **v;
    size_t n, cap;
} strlist;

static void list_add(strlist *l, char *s)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = realloc(l->v, l->cap * sizeof *l->v);
        ck_assert_ptr_nonnull(l->v);
    }
    l->v[l->n++] = s;
}

static void walk(const char *base, const char *rel, strlist *l, int depth)
{
    char dir[1200];
    if (snprintf(dir, sizeof dir, "%s%s%s", base, rel[0] ? "/" : "", rel) >= (int)sizeof dir)
        return;
    DIR *dp = opendir(dir);
    if (dp == NULL) return;
    struct dirent *e;
    while ((e = readdir(dp)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        char r[1200], full[2400];
        if (snprintf(r, sizeof r, "%s%s%s", rel, rel[0] ? "/" : "", e->d_name) >= (int)sizeof r ||
            snprintf(full, sizeof full, "%s/%s", base, r) >= (int)sizeof full)
            continue;
        struct stat st;
        if (lstat(full, &st) != 0) continue;
        char kind = S_ISDIR(st.st_mode) ? 'd' : S_ISLNK(st.st_mode) ? 'l' : 'f';
        char *s = NULL;
        if (asprintf(&s, "%c %s %lld", kind, r, kind == 'f' ? (long long)st.st_size : 0LL) < 0)
            s = NULL;
        ck_assert_ptr_nonnull(s);
        list_add(l, s);
        if (kind == 'd' && depth < 8) walk(base, r, l, depth + 1);
    }
    closedir(dp);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The listing of DIR, one entry a line (malloc'd). */
static char *snapshot(const char *dir)
{
    strlist l = {0};
    walk(dir, "", &l, 0);
    if (l.n) qsort(l.v, l.n, sizeof *l.v, cmp_str);
    size_t len = 1;
    for (size_t i = 0; i < l.n; i++)
        len += strlen(l.v[i]) + 1;
    char *out = malloc(len);
    ck_assert_ptr_nonnull(out);
    out[0] = '\0';
    for (size_t i = 0; i < l.n; i++) {
        strcat(out, l.v[i]);
        strcat(out, "\n");
        free(l.v[i]);
    }
    free(l.v);
    return out;
}

typedef struct {
    char *root, *out;
} snaps;

static snaps snap_take(const th_daemon *d)
{
    return (snaps){snapshot(d->root), snapshot(outside)};
}

/* Nothing appeared or changed in D's root or outside it since S. */
static void snap_check(const th_daemon *d, snaps s, const char *what)
{
    char *root = snapshot(d->root), *out = snapshot(outside);
    ck_assert_msg(strcmp(root, s.root) == 0, "%s: the data root changed:\nbefore:\n%safter:\n%s",
                  what, s.root, root);
    ck_assert_msg(strcmp(out, s.out) == 0,
                  "%s: the directory outside the root changed:\nbefore:\n%safter:\n%s", what, s.out,
                  out);
    for (const char *const *t = escape_targets; *t; t++)
        ck_assert_msg(!exists(*t), "%s: %s was created outside the data root", what, *t);
    free(root);
    free(out);
    free(s.root);
    free(s.out);
}

/* ------------------------------------------------------------------------ */
/* The tables                                                               */

typedef struct bcase {
    const char *name;
    const char *line;    /* without '\n'; ' for ", @R root, @O outside (when len is 0) */
    size_t len;          /* non-zero: LINE is LEN raw bytes, sent as they are */
    const char *code;    /* the error code */
    const char *node;    /* the error's node; NULL: it must have none */
    const char *id;      /* the echoed id, JSON text (' for ") */
    const char *mention; /* the message must contain this (@R, @O); NULL: non-empty */
    const char *shun;    /* the message must not contain this */
    int closes;          /* the daemon must then close the connection */
} bcase;

#define RUN(id, g) "{'id':" id ",'type':'run','progress':false,'graph':" g "}"
#define G(nodes) "{'nodes':{" nodes "}}"
#define C8 "{'op':'raster.constant','width':8,'height':8,'value':1}"
#define LOAD(p) RUN("'g'", G("'in':{'op':'io.load','path':'" p "'}"))
#define SAVE(p) RUN("'g'", G("'out':{'op':'io.save','path':'" p "','args':[" C8 "]}"))
#define ADD2(a, b)                                                                                 \
    RUN("'g'", G("'a':{'op':'io.load','path':'" a "'},'b':{'op':'io.load','path':'" b "'},"        \
                 "'s':{'op':'local.add','args':[{'ref':'a'},{'ref':'b'}]}"))

#define INL(x) "{'op':'local.add','args':[" x ",1]}"
#define A0 ".args[0]"
#define N10 "abcdefghij"
#define N100 N10 N10 N10 N10 N10 N10 N10 N10 N10 N10

static const char garbage[] = "\x00\x01\x02{\"id\":1}\x00\xff\xfe\x80garbage\x7f\x00";
static const char trailing_nul[] = "{\"id\":1,\"type\":\"ping\"}\x00";

static const bcase main_cases[] = {
    /* ---- bad_json: the line is not a JSON object (id null) ---- */
    {"json/not_json", "not json", 0, "bad_json", NULL, "null", "JSON", NULL, 0},
    {"json/truncated", "{'id':1,'type':'ping'", 0, "bad_json", NULL, "null", NULL, NULL, 0},
    {"json/truncated_string", "{'id':1,'type':'pi", 0, "bad_json", NULL, "null", NULL, NULL, 0},
    {"json/array", "[{'id':1,'type':'ping'}]", 0, "bad_json", NULL, "null", "object", NULL, 0},
    {"json/number", "42", 0, "bad_json", NULL, "null", "JSON", NULL, 0},
    {"json/null", "null", 0, "bad_json", NULL, "null", "JSON", NULL, 0},
    {"json/string", "'ping'", 0, "bad_json", NULL, "null", "JSON", NULL, 0},
    {"json/duplicate_keys", "{'id':1,'type':'ping','type':'ping'}", 0, "bad_json", NULL, "null",
     "duplicate", NULL, 0},
    {"json/duplicate_id", "{'id':1,'id':2,'type':'ping'}", 0, "bad_json", NULL, "null", "duplicate",
     NULL, 0},
    {"json/two_objects", "{'id':1,'type':'ping'}{'id':2,'type':'ping'}", 0, "bad_json", NULL,
     "null", NULL, NULL, 0},
    {"json/binary_nul", garbage, sizeof garbage - 1, "bad_json", NULL, "null", NULL, NULL, 0},
    {"json/trailing_nul", trailing_nul, sizeof trailing_nul - 1, "bad_json", NULL, "null", NULL,
     NULL, 0},
    {"json/invalid_utf8", "{'id':1,'type':'\xff\xfe'}", 0, "bad_json", NULL, "null", NULL, NULL, 0},
    {"json/escaped_nul", "{'id':1,'type':'ping\\u0000'}", 0, "bad_json", NULL, "null", NULL, NULL,
     0},
    {"json/backslashes", "{\\'id\\':1}", 0, "bad_json", NULL, "null", NULL, NULL, 0},

    /* ---- bad_request: the envelope ---- */
    {"req/no_id", "{'type':'ping'}", 0, "bad_request", NULL, "null", "'id'", NULL, 0},
    {"req/id_object", "{'id':{'a':1},'type':'ping'}", 0, "bad_request", NULL, "null", "'id'", NULL,
     0},
    {"req/id_array", "{'id':[1],'type':'ping'}", 0, "bad_request", NULL, "null", "'id'", NULL, 0},
    {"req/id_float", "{'id':1.5,'type':'ping'}", 0, "bad_request", NULL, "null", "'id'", NULL, 0},
    {"req/id_bool", "{'id':true,'type':'ping'}", 0, "bad_request", NULL, "null", "'id'", NULL, 0},
    {"req/id_null", "{'id':null,'type':'ping'}", 0, "bad_request", NULL, "null", "'id'", NULL, 0},
    {"req/id_max_int", "{'id':9223372036854775807,'type':'nope'}", 0, "bad_request", NULL,
     "9223372036854775807", "nope", NULL, 0},
    {"req/id_empty_string", "{'id':'','type':'nope'}", 0, "bad_request", NULL, "''", "nope", NULL,
     0},
    {"req/id_unicode", "{'id':'\u00e9\\n\\u0001','type':'nope'}", 0, "bad_request", NULL,
     "'\u00e9\\n\\u0001'", "nope", NULL, 0},
    {"req/no_type", "{'id':'t1'}", 0, "bad_request", NULL, "'t1'", "'type'", NULL, 0},
    {"req/type_number", "{'id':2,'type':5}", 0, "bad_request", NULL, "2", "'type'", NULL, 0},
    {"req/unknown_type", "{'id':3,'type':'pong'}", 0, "bad_request", NULL, "3", "pong", NULL, 0},
    {"req/unknown_key_ping", "{'id':-4,'type':'ping','extra':1}", 0, "bad_request", NULL, "-4",
     "extra", NULL, 0},
    {"req/unknown_key_run", "{'id':'k','type':'run','grpah':{},'graph':" G("'c':" C8) "}", 0,
     "bad_request", NULL, "'k'", "grpah", NULL, 0},
    {"req/run_no_graph", "{'id':5,'type':'run'}", 0, "bad_request", NULL, "5", "graph", NULL, 0},
    {"req/graph_array", "{'id':6,'type':'run','graph':[]}", 0, "bad_request", NULL, "6", "graph",
     NULL, 0},
    {"req/graph_string", "{'id':6,'type':'run','graph':'x'}", 0, "bad_request", NULL, "6", "graph",
     NULL, 0},
    {"req/graph_null", "{'id':6,'type':'run','graph':null}", 0, "bad_request", NULL, "6", "graph",
     NULL, 0},
    {"req/timeout_zero", "{'id':7,'type':'run','timeout_ms':0,'graph':" G("'c':" C8) "}", 0,
     "bad_request", NULL, "7", "timeout_ms", NULL, 0},
    {"req/timeout_negative", "{'id':7,'type':'run','timeout_ms':-5,'graph':" G("'c':" C8) "}", 0,
     "bad_request", NULL, "7", "timeout_ms", NULL, 0},
    {"req/timeout_string", "{'id':7,'type':'run','timeout_ms':'100','graph':" G("'c':" C8) "}", 0,
     "bad_request", NULL, "7", "timeout_ms", NULL, 0},
    {"req/timeout_float", "{'id':7,'type':'run','timeout_ms':1.5,'graph':" G("'c':" C8) "}", 0,
     "bad_request", NULL, "7", "timeout_ms", NULL, 0},
    {"req/progress_int", "{'id':8,'type':'run','progress':1,'graph':" G("'c':" C8) "}", 0,
     "bad_request", NULL, "8", "progress", NULL, 0},
    {"req/progress_string", "{'id':8,'type':'run','progress':'yes','graph':" G("'c':" C8) "}", 0,
     "bad_request", NULL, "8", "progress", NULL, 0},
    {"req/cancel_no_job", "{'id':9,'type':'cancel'}", 0, "bad_request", NULL, "9", "job", NULL, 0},
    {"req/cancel_job_object", "{'id':9,'type':'cancel','job':{}}", 0, "bad_request", NULL, "9",
     "job", NULL, 0},
    {"req/cancel_unknown_job", "{'id':10,'type':'cancel','job':'nope'}", 0, "unknown_job", NULL,
     "10", NULL, NULL, 0},
    {"req/bytes_zero", "{'id':'b0','type':'ping','bytes':0}", 0, "bad_request", NULL, "'b0'",
     "bytes", NULL, 0},
    {"req/bytes_negative", "{'id':'bb1','type':'ping','bytes':-1}", 0, "bad_request", NULL, "'bb1'",
     "bytes", NULL, 1},
    {"req/bytes_string", "{'id':'bb2','type':'run','graph':{},'bytes':'5'}", 0, "bad_request", NULL,
     "'bb2'", "bytes", NULL, 1},
    {"req/bytes_float", "{'id':'bb3','type':'ping','bytes':1.5}", 0, "bad_request", NULL, "'bb3'",
     "bytes", NULL, 1},
    {"req/bytes_null", "{'type':'ping','bytes':null}", 0, "bad_request", NULL, "null", "bytes",
     NULL, 1},

    /* ---- graph shape (bad_request, missing_ref for 'result') ---- */
    {"graph/no_nodes", RUN("'g'", "{}"), 0, "bad_request", NULL, "'g'", "nodes", NULL, 0},
    {"graph/nodes_empty", RUN("'g'", "{'nodes':{}}"), 0, "bad_request", NULL, "'g'", "nodes", NULL,
     0},
    {"graph/nodes_array", RUN("'g'", "{'nodes':[" C8 "]}"), 0, "bad_request", NULL, "'g'", "nodes",
     NULL, 0},
    {"graph/node_not_object", RUN("'g'", G("'a':5")), 0, "bad_request", "a", "'g'", "object", NULL,
     0},
    {"graph/node_no_op", RUN("'g'", G("'a':{'path':'a.tif'}")), 0, "bad_request", "a", "'g'",
     "'op'", NULL, 0},
    {"graph/op_not_string", RUN("'g'", G("'a':{'op':7}")), 0, "bad_request", "a", "'g'", "'op'",
     NULL, 0},
    {"graph/result_missing", RUN("'g'", "{'nodes':{'c':" C8 "},'result':'zz'}"), 0, "missing_ref",
     NULL, "'g'", "zz", NULL, 0},
    {"graph/result_ambiguous", RUN("'g'", G("'c':" C8 ",'d':" C8)), 0, "bad_request", NULL, "'g'",
     "result", NULL, 0},
    {"graph/result_duplicate", RUN("'g'", "{'nodes':{'c':" C8 "},'result':['c','c']}"), 0,
     "bad_request", NULL, "'g'", "result", NULL, 0},

    /* ---- node names are echoed whole ---- */
    {"name/utf8", RUN("'g'", G("'n\u00f6d\u00e9 \u8282\u70b9':{'op':'nope.nope'}")), 0,
     "unknown_op", "n\u00f6d\u00e9 \u8282\u70b9", "'g'", "nope.nope", NULL, 0},
    {"name/long", RUN("'g'", G("'" N100 "':{'op':'nope.nope'}")), 0, "unknown_op", N100, "'g'",
     NULL, NULL, 0},
    {"name/deep_inline",
     RUN("'g'", G("'o':" INL(
                    INL(INL(INL(INL(INL(INL(INL(INL("{'op':'raster.constant','width':0,'height':1,"
                                                    "'value':1}"))))))))))),
     0, "bad_param", "o" A0 A0 A0 A0 A0 A0 A0 A0 A0, "'g'", "width", NULL, 0},

    {"graph/unknown_key", RUN("'g'", "{'nodes':{'c':" C8 "},'reslut':'c'}"), 0, "bad_request", NULL,
     "'g'", "reslut", NULL, 0},
    {"graph/same_output_twice",
     RUN("'g'", "{'nodes':{'o1':{'op':'io.save','path':'dup.tif','args':[" C8 "]},"
                "'o2':{'op':'io.save','path':'dup.tif','args':[" C8 "]}},'result':['o1','o2']}"),
     0, "bad_param", "o2", "'g'", "dup.tif", NULL, 0},

    /* ---- unknown_op ---- */
    {"op/near_miss", RUN("'g'", G("'c':" C8 ",'s':{'op':'local.ad','args':[{'ref':'c'},1]}")), 0,
     "unknown_op", "s", "'g'", "did you mean 'local.add'", NULL, 0},
    {"op/transposed", RUN("'g'", G("'c':{'op':'raster.constnat','width':8,'height':8,'value':1}")),
     0, "unknown_op", "c", "'g'", "did you mean 'raster.constant'", NULL, 0},
    {"op/far_miss", RUN("'g'", G("'c':{'op':'foo.bar'}")), 0, "unknown_op", "c", "'g'", "foo.bar",
     "did you mean", 0},
    {"op/inline",
     RUN("'g'", G("'o':{'op':'global.stats','args':[{'op':'io.lod','path':'a.tif'}]}")), 0,
     "unknown_op", "o.args[0]", "'g'", "io.lod", NULL, 0},

    /* ---- bad_arity ---- */
    {"arity/subtract_3",
     RUN("'g'", G("'c':" C8 ",'s':{'op':'local.subtract','args':[{'ref':'c'},1,2]}")), 0,
     "bad_arity", "s", "'g'", "local.subtract", NULL, 0},
    {"arity/add_1", RUN("'g'", G("'c':" C8 ",'s':{'op':'local.add','args':[{'ref':'c'}]}")), 0,
     "bad_arity", "s", "'g'", "local.add", NULL, 0},
    {"arity/load_with_args", RUN("'g'", G("'in':{'op':'io.load','path':'a.tif','args':[1]}")), 0,
     "bad_arity", "in", "'g'", "io.load", NULL, 0},
    {"arity/stats_none", RUN("'g'", G("'st':{'op':'global.stats'}")), 0, "bad_arity", "st", "'g'",
     "global.stats", NULL, 0},
    {"arity/save_none", RUN("'g'", G("'out':{'op':'io.save','path':'x.tif','args':[]}")), 0,
     "bad_arity", "out", "'g'", "io.save", NULL, 0},

    /* ---- bad_param ---- */
    {"param/missing_required", RUN("'g'", G("'c':{'op':'raster.constant','width':8,'height':8}")),
     0, "bad_param", "c", "'g'", "value", NULL, 0},
    {"param/missing_path", RUN("'g'", G("'in':{'op':'io.load'}")), 0, "bad_param", "in", "'g'",
     "path", NULL, 0},
    {"param/width_zero",
     RUN("'g'", G("'c':{'op':'raster.constant','width':0,'height':8,'value':1}")), 0, "bad_param",
     "c", "'g'", "width", NULL, 0},
    {"param/width_negative",
     RUN("'g'", G("'c':{'op':'raster.constant','width':8,'height':-3,'value':1}")), 0, "bad_param",
     "c", "'g'", "height", NULL, 0},
    {"param/width_string",
     RUN("'g'", G("'c':{'op':'raster.constant','width':'8','height':8,'value':1}")), 0, "bad_param",
     "c", "'g'", "width", NULL, 0},
    {"param/width_fraction",
     RUN("'g'", G("'c':{'op':'raster.constant','width':8.5,'height':8,'value':1}")), 0, "bad_param",
     "c", "'g'", "width", NULL, 0},
    {"param/type_f16",
     RUN("'g'", G("'c':{'op':'raster.constant','width':8,'height':8,'value':1,'type':'f16'}")), 0,
     "bad_param", "c", "'g'", "type", NULL, 0},
    {"param/bands_range",
     RUN("'g'", G("'c':{'op':'raster.constant','width':8,'height':8,'value':1,'bands':5000}")), 0,
     "bad_param", "c", "'g'", "bands", NULL, 0},
    {"param/value_unstorable",
     RUN("'g'", G("'c':{'op':'raster.constant','width':8,'height':8,'value':300,'type':'u8'}")), 0,
     "bad_param", "c", "'g'", "value", NULL, 0},
    {"param/value_string",
     RUN("'g'", G("'c':{'op':'raster.constant','width':8,'height':8,'value':'1'}")), 0, "bad_param",
     "c", "'g'", "value", NULL, 0},
    {"param/crs_file",
     RUN("'g'", G("'c':{'op':'raster.constant','width':8,'height':8,'value':1,"
                  "'crs':'/etc/passwd'}")),
     0, "bad_param", "c", "'g'", "crs", NULL, 0},
    {"param/path_number", RUN("'g'", G("'in':{'op':'io.load','path':5}")), 0, "bad_param", "in",
     "'g'", "path", NULL, 0},
    {"param/band_zero", RUN("'g'", G("'in':{'op':'io.load','path':'a.tif','band':0}")), 0,
     "bad_param", "in", "'g'", "band", NULL, 0},
    {"param/save_format",
     RUN("'g'", G("'out':{'op':'io.save','path':'x.png','format':'PNG',"
                  "'args':[" C8 "]}")),
     0, "bad_param", "out", "'g'", "format", NULL, 0},
    {"param/save_options",
     RUN("'g'", G("'out':{'op':'io.save','path':'x.tif','options':5,"
                  "'args':[" C8 "]}")),
     0, "bad_param", "out", "'g'", "options", NULL, 0},
    {"param/save_over_input",
     RUN("'g'", G("'in':{'op':'io.load','path':'a.tif'},"
                  "'out':{'op':'io.save','path':'a.tif','args':[{'ref':'in'}]}")),
     0, "bad_param", "out", "'g'", "a.tif", NULL, 0},
    {"param/local_type",
     RUN("'g'", G("'c':" C8 ",'s':{'op':'local.add','type':'int',"
                  "'args':[{'ref':'c'},1]}")),
     0, "bad_param", "s", "'g'", "type", NULL, 0},
    {"param/remote_number",
     RUN("'g'", G("'c':{'op':'raster.constant','width':8,'height':8,"
                  "'value':1,'remote':5}")),
     0, "bad_param", "c", "'g'", "remote", NULL, 0},

    /* ---- unknown_param ---- */
    {"uparam/typo", RUN("'g'", G("'c':{'op':'raster.constant','widht':8,'height':8,'value':1}")), 0,
     "unknown_param", "c", "'g'", "did you mean 'width'", NULL, 0},
    {"uparam/far", RUN("'g'", G("'in':{'op':'io.load','path':'a.tif','colour':'red'}")), 0,
     "unknown_param", "in", "'g'", "colour", NULL, 0},
    {"uparam/none_taken",
     RUN("'g'", G("'c':" C8 ",'st':{'op':'global.stats','band':1,"
                  "'args':[{'ref':'c'}]}")),
     0, "unknown_param", "st", "'g'", "band", NULL, 0},
    {"uparam/inline",
     RUN("'g'", G("'o':{'op':'local.add','args':[1,{'op':'raster.constant',"
                  "'width':8,'height':8,'value':1,'heigth':3}]}")),
     0, "unknown_param", "o.args[1]", "'g'", "heigth", NULL, 0},

    /* ---- bad_type ---- */
    {"type/string_arg", RUN("'g'", G("'c':" C8 ",'s':{'op':'local.add','args':['c',1]}")), 0,
     "bad_type", "s", "'g'", "arg 0", NULL, 0},
    {"type/null_arg", RUN("'g'", G("'c':" C8 ",'s':{'op':'local.add','args':[{'ref':'c'},null]}")),
     0, "bad_type", "s", "'g'", "arg 1", NULL, 0},
    {"type/save_number", RUN("'g'", G("'out':{'op':'io.save','path':'x.tif','args':[3]}")), 0,
     "bad_type", "out", "'g'", "io.save", NULL, 0},
    {"type/stats_number", RUN("'g'", G("'st':{'op':'global.stats','args':[2.5]}")), 0, "bad_type",
     "st", "'g'", "global.stats", NULL, 0},
    {"type/value_as_raster",
     RUN("'g'", G("'c':" C8 ",'st':{'op':'global.stats','args':[{'ref':'c'}]},"
                  "'s':{'op':'local.add','args':[{'ref':'st'},1]}")),
     0, "bad_type", "s", "'g'", "'st'", NULL, 0},
    {"type/sink_as_raster",
     RUN("'g'", G("'out':{'op':'io.save','path':'x.tif','args':[" C8 "]},"
                  "'st':{'op':'global.stats','args':[{'ref':'out'}]}")),
     0, "bad_type", "st", "'g'", "'out'", NULL, 0},
    {"type/numbers_only", RUN("'g'", G("'s':{'op':'local.add','args':[1,2]}")), 0, "bad_type", "s",
     "'g'", NULL, NULL, 0},
    {"type/args_not_array", RUN("'g'", G("'s':{'op':'local.add','args':5}")), 0, "bad_type", "s",
     "'g'", "args", NULL, 0},
    {"type/ref_not_string", RUN("'g'", G("'c':" C8 ",'s':{'op':'local.add','args':[{'ref':5},1]}")),
     0, "bad_type", "s", "'g'", "ref", NULL, 0},
    {"type/ref_and_op",
     RUN("'g'", G("'c':" C8 ",'s':{'op':'local.add','args':[{'ref':'c','op':'io.load'},1]}")), 0,
     "bad_type", "s", "'g'", "ref", NULL, 0},
    {"type/ref_extra_key",
     RUN("'g'", G("'c':" C8 ",'s':{'op':'local.add','args':[{'ref':'c','x':1},1]}")), 0, "bad_type",
     "s", "'g'", "ref", NULL, 0},

    /* ---- missing_ref, cycle ---- */
    {"ref/missing", RUN("'g'", G("'c':" C8 ",'s':{'op':'local.add','args':[{'ref':'nope'},1]}")), 0,
     "missing_ref", "s", "'g'", "nope", NULL, 0},
    {"ref/missing_inline",
     RUN("'g'", G("'o':{'op':'global.stats','args':[{'op':'local.add','args':[{'ref':'ghost'},"
                  "1]}]}")),
     0, "missing_ref", "o.args[0]", "'g'", "ghost", NULL, 0},
    {"cycle/two",
     RUN("'g'", "{'nodes':{'a':{'op':'local.add','args':[{'ref':'b'},1]},"
                "'b':{'op':'local.add','args':[{'ref':'a'},1]}},'result':'a'}"),
     0, "cycle", "a", "'g'", "a -> b -> a", NULL, 0},
    {"cycle/self",
     RUN("'g'", "{'nodes':{'a':{'op':'local.add','args':[{'ref':'a'},1]}},"
                "'result':'a'}"),
     0, "cycle", "a", "'g'", "a -> a", NULL, 0},
    {"cycle/with_tail",
     RUN("'g'", "{'nodes':{'t':{'op':'global.stats','args':[{'ref':'x'}]},"
                "'x':{'op':'local.add','args':[{'ref':'y'},1]},"
                "'y':{'op':'local.multiply','args':[{'ref':'x'},2]}},'result':'t'}"),
     0, "cycle", "x", "'g'", "x -> y -> x", NULL, 0},

    /* ---- too_many_cells ---- */
    {"cells/constant",
     RUN("'g'", G("'c':{'op':'raster.constant','width':1000000,'height':1000000,'value':1}")), 0,
     "too_many_cells", "c", "'g'", "1000000", NULL, 0},
    {"cells/overflow",
     RUN("'g'", G("'c':{'op':'raster.constant','width':4000000000,'height':4000000000,"
                  "'bands':4096,'value':1}")),
     0, "too_many_cells", "c", "'g'", NULL, NULL, 0},
    {"cells/inline",
     RUN("'g'", G("'o':{'op':'global.stats','args':[{'op':'raster.constant','width':1000000,"
                  "'height':1000000,'value':1}]}")),
     0, "too_many_cells", "o.args[0]", "'g'", NULL, NULL, 0},

    /* ---- errors in inline nodes name parent.args[i] ---- */
    {"inline/bad_param",
     RUN("'g'", G("'o':{'op':'local.add','args':[{'op':'raster.constant','width':0,'height':8,"
                  "'value':1},1]}")),
     0, "bad_param", "o.args[0]", "'g'", "width", NULL, 0},
    {"inline/nested",
     RUN("'g'", G("'o':{'op':'global.stats','args':[{'op':'local.add','args':[1,"
                  "{'op':'raster.constant','width':8,'height':8,'value':1,'type':'f16'}]}]}")),
     0, "bad_param", "o.args[0].args[1]", "'g'", "type", NULL, 0},
    {"inline/arity",
     RUN("'g'", G("'o':{'op':'global.stats','args':[{'op':'local.subtract','args':[" C8 "]}]}")), 0,
     "bad_arity", "o.args[0]", "'g'", "local.subtract", NULL, 0},

    /* ---- paths read by io.load ---- */
    {"load/dotdot", LOAD("../x.tif"), 0, "path_denied", "in", "'g'", "../x.tif", NULL, 0},
    {"load/dotdot_inner", LOAD("a/../../x.tif"), 0, "path_denied", "in", "'g'", "a/../../x.tif",
     NULL, 0},
    {"load/dotdot_root", LOAD("@R/../x.tif"), 0, "path_denied", "in", "'g'", "@R/../x.tif", NULL,
     0},
    {"load/etc_passwd", LOAD("/etc/passwd"), 0, "path_denied", "in", "'g'", "/etc/passwd", NULL, 0},
    {"load/abs_missing_outside", LOAD("/nonexistent/x.tif"), 0, "path_denied", "in", "'g'",
     "/nonexistent/x.tif", NULL, 0},
    {"load/vsicurl", LOAD("/vsicurl/http://127.0.0.1:1/x.tif"), 0, "path_denied", "in", "'g'",
     "/vsicurl/", NULL, 0},
    {"load/vsizip", LOAD("/vsizip/x.zip/a.tif"), 0, "path_denied", "in", "'g'", "/vsizip/", NULL,
     0},
    {"load/vsimem_upper", LOAD("/VSIMEM/x.tif"), 0, "path_denied", "in", "'g'", "/VSIMEM/x.tif",
     NULL, 0},
    {"load/netcdf", LOAD("NETCDF:x.nc:v"), 0, "path_denied", "in", "'g'", "NETCDF:x.nc:v", NULL, 0},
    {"load/http", LOAD("http://127.0.0.1:1/x.tif"), 0, "path_denied", "in", "'g'",
     "http://127.0.0.1:1/x.tif", NULL, 0},
    {"load/empty", LOAD(""), 0, "path_denied", "in", "'g'", NULL, NULL, 0},
    {"load/symlink_out", LOAD("link_out.tif"), 0, "path_denied", "in", "'g'", "link_out.tif", NULL,
     0},
    {"load/symlink_dir", LOAD("link_outdir/outside.tif"), 0, "path_denied", "in", "'g'",
     "link_outdir/outside.tif", NULL, 0},
    {"load/symlink_dir_missing", LOAD("link_outdir/nothing.tif"), 0, "path_denied", "in", "'g'",
     "link_outdir/nothing.tif", NULL, 0},
    {"load/missing", LOAD("missing.tif"), 0, "not_found", "in", "'g'", "missing.tif", NULL, 0},
    {"load/missing_dir", LOAD("nodir/x.tif"), 0, "not_found", "in", "'g'", "nodir/x.tif", NULL, 0},
    {"load/directory", LOAD("sub"), 0, "not_found", "in", "'g'", "sub", NULL, 0},
    {"load/text_as_tif", LOAD("bad.tif"), 0, "bad_raster", "in", "'g'", "bad.tif", NULL, 0},
    {"load/empty_file", LOAD("empty.tif"), 0, "bad_raster", "in", "'g'", "empty.tif", NULL, 0},
    {"load/vrt_hostname", LOAD("hostname.vrt"), 0, "path_denied", "in", "'g'", "VRT", NULL, 0},
    {"load/vrt_outside", LOAD("outside_ref.vrt"), 0, "path_denied", "in", "'g'", "VRT", NULL, 0},
    {"load/vrt_named_tif", LOAD("sneaky.tif"), 0, "path_denied", "in", "'g'", "VRT", NULL, 0},
    {"load/inline_denied",
     RUN("'g'", G("'o':{'op':'global.stats','args':[{'op':'io.load','path':'/etc/passwd'}]}")), 0,
     "path_denied", "o.args[0]", "'g'", NULL, NULL, 0},

    /* ---- paths written by io.save ---- */
    {"save/dotdot", SAVE("../pergola-badreq-escape.tif"), 0, "path_denied", "out", "'g'",
     "../pergola-badreq-escape.tif", NULL, 0},
    {"save/dotdot_inner", SAVE("a/../../pergola-badreq-escape.tif"), 0, "path_denied", "out", "'g'",
     "a/../../pergola-badreq-escape.tif", NULL, 0},
    {"save/abs_outside", SAVE("@O/abs.tif"), 0, "path_denied", "out", "'g'", "@O/abs.tif", NULL, 0},
    {"save/abs_tmp", SAVE("/tmp/pergola-badreq-abs.tif"), 0, "path_denied", "out", "'g'",
     "/tmp/pergola-badreq-abs.tif", NULL, 0},
    {"save/vsimem", SAVE("/vsimem/x.tif"), 0, "path_denied", "out", "'g'", "/vsimem/x.tif", NULL,
     0},
    {"save/netcdf", SAVE("NETCDF:x.nc:v"), 0, "path_denied", "out", "'g'", "NETCDF:x.nc:v", NULL,
     0},
    {"save/symlink_in", SAVE("link_in.tif"), 0, "path_denied", "out", "'g'", "symlink", NULL, 0},
    {"save/symlink_out", SAVE("link_save_out.tif"), 0, "path_denied", "out", "'g'",
     "link_save_out.tif", NULL, 0},
    {"save/symlink_dir", SAVE("link_outdir/x.tif"), 0, "path_denied", "out", "'g'",
     "link_outdir/x.tif", NULL, 0},
    {"save/symlink_dir_deep", SAVE("link_outdir/new/x.tif"), 0, "path_denied", "out", "'g'",
     "link_outdir/new/x.tif", NULL, 0},
    {"save/directory", SAVE("sub"), 0, "path_denied", "out", "'g'", "sub", NULL, 0},
    {"save/trailing_slash", SAVE("sub/"), 0, "path_denied", "out", "'g'", "sub/", NULL, 0},
    {"save/file_as_dir", SAVE("plain.txt/out.tif"), 0, "io_error", "out", "'g'", "plain.txt", NULL,
     0},

    /* ---- grid_mismatch ---- */
    {"grid/size", ADD2("a.tif", "small.tif"), 0, "grid_mismatch", "s", "'g'", NULL, NULL, 0},
    {"grid/origin", ADD2("a.tif", "shifted.tif"), 0, "grid_mismatch", "s", "'g'", "geotransform",
     NULL, 0},
    {"grid/crs", ADD2("a.tif", "utm32.tif"), 0, "grid_mismatch", "s", "'g'", "CRS", NULL, 0},
    {"grid/constants",
     RUN("'g'", G("'s':{'op':'local.subtract','args':[" C8 ",{'op':'raster.constant','width':8,"
                  "'height':9,'value':1}]}")),
     0, "grid_mismatch", "s", "'g'", NULL, NULL, 0},
    {"grid/bands",
     RUN("'g'", G("'a':{'op':'io.load','path':'a.tif'},'b':{'op':'raster.constant','bands':2,"
                  "'value':0,'args':[{'ref':'a'}]},"
                  "'s':{'op':'local.add','args':[{'ref':'a'},{'ref':'b'}]}")),
     0, "grid_mismatch", "s", "'g'", "bands", NULL, 0},
};

/* Cases for the daemon with small limits (max_request_bytes 4096,
 * max_nodes 8, max_depth 4, max_result_bytes 4096). */
#define K(name, w, h) "'" name "':{'op':'raster.constant','width':" #w ",'height':" #h ",'value':1}"
#define ADDREF(name, ref) "'" name "':{'op':'local.add','args':[{'ref':'" ref "'},1]}"

static const bcase lim_cases[] = {
    {"lim/nodes_named",
     RUN("'g'",
         "{'nodes':{" K("n1", 2, 2) "," K("n2", 2, 2) "," K("n3", 2, 2) "," K("n4", 2, 2) "," K(
             "n5", 2, 2) "," K("n6", 2, 2) "," K("n7", 2, 2) "," K("n8", 2,
                                                                   2) "," K("n9", 2,
                                                                            2) "},'result':'n1'}"),
     0, "too_many_nodes", NULL, "'g'", "8", NULL, 0},
    {"lim/nodes_inline",
     RUN("'g'", G("'o':{'op':'local.add','args':[" C8 "," C8 "," C8 "," C8 "," C8 "," C8 "," C8
                  "," C8 "]}")),
     0, "too_many_nodes", NULL, "'g'", "8", NULL, 0},
    {"lim/depth_refs",
     RUN("'g'", G(K("n1", 2, 2) "," ADDREF("n2", "n1") "," ADDREF("n3", "n2") "," ADDREF(
                    "n4", "n3") "," ADDREF("n5", "n4"))),
     0, "too_deep", "n5", "'g'", "4", NULL, 0},
    {"lim/depth_inline",
     RUN("'g'", G("'o':" INL(INL(INL(INL("{'op':'raster.constant','width':2,"
                                         "'height':2,'value':1}")))))),
     0, "too_deep", "o", "'g'", "4", NULL, 0},
    {"lim/result_raster", RUN("'g'", G(K("a", 64, 64))), 0, "too_large", "a", "'g'",
     "max_result_bytes", NULL, 0},
    {"lim/result_list",
     RUN("'g'", "{'nodes':{" K("a", 16, 32) "," K("b", 16, 32) "," K(
                    "c", 16, 32) "},'result':['a','b','c']}"),
     0, "too_large", "c", "'g'", "max_result_bytes", NULL, 0},
};

/* Sends case C on a new connection to D and checks the answer, the
 * connection afterwards, and the files. */
static void run_case(const th_daemon *d, const bcase *c)
{
    snaps before = snap_take(d);
    int fd = th_connect(d);
    ck_assert_msg(fd >= 0, "%s: cannot connect", c->name);
    char *line;
    size_t len;
    if (c->len) {
        line = malloc(c->len + 1);
        ck_assert_ptr_nonnull(line);
        memcpy(line, c->line, c->len);
        len = c->len;
    } else {
        line = expand(d, c->line);
        len = strlen(line);
    }
    ck_assert_msg(memchr(line, '\n', len) == NULL, "%s: the table's line has a newline", c->name);
    line[len] = '\n';
    ck_assert_int_eq(th_send(fd, line, len + 1), 0);
    free(line);

    int accepted = 0;
    json_t *ev = recv_answer(fd, &accepted);
    ck_assert_msg(ev != NULL, "%s: no answer within %d ms", c->name, WAIT_MS);
    char *text = json_dumps(ev, JSON_COMPACT);
    ck_assert_msg(strcmp(ev_event(ev), "error") == 0, "%s: wanted an error, got %s", c->name, text);
    ck_assert_msg(strcmp(th_code(ev), c->code) == 0, "%s: code '%s', wanted '%s' (%s)", c->name,
                  th_code(ev), c->code, text);
    json_t *err = json_object_get(ev, "error");
    if (c->node == NULL)
        ck_assert_msg(json_object_get(err, "node") == NULL, "%s: the error must name no node (%s)",
                      c->name, text);
    else
        ck_assert_msg(strcmp(th_node(ev), c->node) == 0, "%s: node '%s', wanted '%s' (%s)", c->name,
                      th_node(ev), c->node, text);
    const char *msg = ev_message(ev);
    ck_assert_msg(msg[0] != '\0', "%s: empty message (%s)", c->name, text);
    if (c->mention) {
        char *m = expand_q(d, c->mention, 0);
        ck_assert_msg(strstr(msg, m) != NULL, "%s: the message should mention \"%s\": %s", c->name,
                      m, msg);
        free(m);
    }
    if (c->shun)
        ck_assert_msg(strstr(msg, c->shun) == NULL, "%s: the message should not say \"%s\": %s",
                      c->name, c->shun, msg);
    char *id = expand(d, c->id);
    ck_assert_msg(id_is(ev, id), "%s: id should be %s (%s)", c->name, id, text);
    free(id);
    ck_assert_msg(accepted == 0, "%s: an invalid request was accepted (%s)", c->name, text);
    free(text);
    json_decref(ev);

    if (c->closes)
        ck_assert_msg(peer_closed(fd, WAIT_MS), "%s: the daemon should close the connection",
                      c->name);
    else
        ck_assert_msg(ping_on(fd, "after"), "%s: no pong on the same connection", c->name);
    close(fd);
    ck_assert_msg(th_ping(d), "%s: no pong on a new connection", c->name);
    snap_check(d, before, c->name);
}

START_TEST(test_main_table)
{
    run_case(&d_main, &main_cases[_i]);
}
END_TEST

START_TEST(test_lim_table)
{
    run_case(&d_lim, &lim_cases[_i]);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Streams: attachments, flood                                               */

/* A request that declares an attachment: the attachment's bytes (which
 * hold newlines, braces and NULs) are skipped, not read as requests, and
 * the next request on the connection is answered. Requests take no
 * attachment: that is a malformed envelope (bad_request), as for
 * "bytes": 0, not a size limit. */
START_TEST(test_attachment_skipped)
{
    snaps before = snap_take(&d_main);
    int fd = th_connect(&d_main);
    ck_assert_int_ge(fd, 0);
    static const char att[] = "{\"id\":\"evil\",\"type\":\"ping\"}\n\x00\xff\n";
    char buf[512];
    int n = snprintf(buf, sizeof buf, "{\"id\":\"att\",\"type\":\"ping\",\"bytes\":%zu}\n",
                     sizeof att - 1);
    memcpy(buf + n, att, sizeof att - 1);
    n += (int)(sizeof att - 1);
    n += snprintf(buf + n, sizeof buf - (size_t)n, "{\"id\":\"next\",\"type\":\"ping\"}\n");
    ck_assert_int_eq(th_send(fd, buf, (size_t)n), 0);

    json_t *ev = th_recv(fd, WAIT_MS);
    ck_assert_ptr_nonnull(ev);
    ck_assert_msg(id_is(ev, "\"att\""), "the error should echo id 'att'");
    ck_assert_str_eq(ev_event(ev), "error");
    ck_assert_msg(json_object_get(json_object_get(ev, "error"), "node") == NULL, "no node");
    ck_assert_msg(strstr(ev_message(ev), "attachment") != NULL, "message: %s", ev_message(ev));
    char c1[40], c2[40];
    snprintf(c1, sizeof c1, "%s", th_code(ev));
    json_decref(ev);
    ev = th_recv(fd, WAIT_MS);
    ck_assert_msg(ev != NULL, "no answer after the attachment");
    ck_assert_msg(id_is(ev, "\"next\""), "the attachment was read as requests");
    ck_assert(json_is_true(json_object_get(json_object_get(ev, "value"), "pong")));
    json_decref(ev);

    /* A run with an attachment, the attachment in pieces: no job runs. */
    long long jobs = jobs_seen(&d_main);
    const char *run = "{\"id\":\"ratt\",\"type\":\"run\",\"bytes\":6,\"graph\":{\"nodes\":{\"out\":"
                      "{\"op\":\"io.save\",\"path\":\"att_out.tif\",\"args\":[{\"op\":\"raster."
                      "constant\",\"width\":8,\"height\":8,\"value\":1}]}}}}\n";
    ck_assert_int_eq(th_send(fd, run, strlen(run)), 0);
    sleep_ms(50);
    ck_assert_int_eq(th_send(fd, "ab\n", 3), 0);
    sleep_ms(50);
    ck_assert_int_eq(th_send(fd, "c\n}", 3), 0);
    int accepted = 0;
    ev = recv_answer(fd, &accepted);
    ck_assert_ptr_nonnull(ev);
    ck_assert_msg(id_is(ev, "\"ratt\""), "the error should echo id 'ratt'");
    ck_assert_str_eq(ev_event(ev), "error");
    ck_assert_int_eq(accepted, 0);
    snprintf(c2, sizeof c2, "%s", th_code(ev));
    json_decref(ev);
    ck_assert_msg(ping_on(fd, "next2"), "no pong after a run's attachment");
    close(fd);
    ck_assert_msg(jobs_seen(&d_main) == jobs, "a run with an attachment was started");
    snap_check(&d_main, before, "attachment");
    /* Checked last, so that the stream checks above run whatever the code. */
    ck_assert_msg(strcmp(c1, "bad_request") == 0,
                  "a ping with \"bytes\": 23 got '%s', wanted bad_request (as \"bytes\": 0 does)",
                  c1);
    ck_assert_msg(strcmp(c2, "bad_request") == 0,
                  "a run with \"bytes\": 6 got '%s', wanted bad_request", c2);
}
END_TEST

/* A bad "bytes" makes the rest of the stream unreadable: the daemon answers,
 * closes, and does not act on requests that came after it in the same
 * write. */
START_TEST(test_bad_bytes_stops_stream)
{
    snaps before = snap_take(&d_main);
    long long jobs = jobs_seen(&d_main);
    ck_assert_int_ge(jobs, 0);
    int fd = th_connect(&d_main);
    ck_assert_int_ge(fd, 0);
    const char *lines =
        "{\"id\":\"bb\",\"type\":\"ping\",\"bytes\":-7}\n"
        "{\"id\":\"after\",\"type\":\"run\",\"progress\":false,\"graph\":{\"nodes\":{\"out\":"
        "{\"op\":\"io.save\",\"path\":\"after_close.tif\",\"args\":[{\"op\":\"raster.constant\","
        "\"width\":8,\"height\":8,\"value\":1}]}}}}\n"
        "{\"id\":\"p2\",\"type\":\"ping\"}\n";
    ck_assert_int_eq(th_send(fd, lines, strlen(lines)), 0);
    json_t *ev = th_recv(fd, WAIT_MS);
    ck_assert_ptr_nonnull(ev);
    ck_assert_str_eq(th_code(ev), "bad_request");
    ck_assert_msg(id_is(ev, "\"bb\""), "id 'bb' expected");
    json_decref(ev);
    char rest[400];
    int closed = read_rest(fd, rest, sizeof rest);
    ck_assert_msg(rest[0] == '\0', "nothing may follow the error, got: %s", rest);
    ck_assert_msg(closed, "the daemon did not close the connection");
    close(fd);
    ck_assert(th_ping(&d_main));
    sleep_ms(300); /* an 8x8 save, had it started, is long done */
    long long now = jobs_seen(&d_main);
    snap_check(&d_main, before, "bad bytes then run");
    ck_assert_msg(now == jobs,
                  "a run that followed the bad \"bytes\" in the same write was started");
}
END_TEST

/* 2000 malformed lines in one write, then a ping: 2000 errors in order,
 * then the pong. */
START_TEST(test_flood)
{
    enum { N = 2000 };
    size_t cap = (size_t)N * 64 + 64, n = 0;
    char *buf = malloc(cap);
    ck_assert_ptr_nonnull(buf);
    for (int i = 0; i < N; i++) {
        switch (i % 4) {
        case 0:
            n += (size_t)snprintf(buf + n, cap - n, "not json %d\n", i);
            break;
        case 1:
            n += (size_t)snprintf(buf + n, cap - n, "{\"id\":%d,\"type\":\"bogus\"}\n", i);
            break;
        case 2:
            n += (size_t)snprintf(buf + n, cap - n, "{\"id\":%d,\"type\":\"ping\",\"x\":1}\n", i);
            break;
        default:
            n += (size_t)snprintf(buf + n, cap - n, "{\"id\":%d,\"type\":\"run\"}\n", i);
            break;
        }
    }
    n += (size_t)snprintf(buf + n, cap - n, "{\"id\":\"end\",\"type\":\"ping\"}\n");
    int fd = th_connect(&d_main);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(th_send(fd, buf, n), 0);
    free(buf);
    for (int i = 0; i < N; i++) {
        json_t *ev = th_recv(fd, WAIT_MS);
        ck_assert_msg(ev != NULL, "flood: answer %d of %d missing", i, N);
        ck_assert_msg(strcmp(ev_event(ev), "error") == 0, "flood: answer %d is not an error", i);
        if (i % 4 == 0) {
            ck_assert_msg(json_is_null(json_object_get(ev, "id")), "flood: answer %d: id", i);
            ck_assert_msg(strcmp(th_code(ev), "bad_json") == 0, "flood: answer %d: %s", i,
                          th_code(ev));
        } else {
            json_t *id = json_object_get(ev, "id");
            ck_assert_msg(json_is_integer(id) && json_integer_value(id) == i,
                          "flood: answer %d out of order", i);
            ck_assert_msg(strcmp(th_code(ev), "bad_request") == 0, "flood: answer %d: %s", i,
                          th_code(ev));
        }
        json_decref(ev);
    }
    json_t *ev = th_recv(fd, WAIT_MS);
    ck_assert_msg(ev != NULL, "flood: no pong after the errors");
    ck_assert(id_is(ev, "\"end\""));
    ck_assert(json_is_true(json_object_get(json_object_get(ev, "value"), "pong")));
    json_decref(ev);
    close(fd);
    ck_assert(th_ping(&d_main));
}
END_TEST

/* Graphs too big or deep to write out in a table, built here: the walks are
 * bounded (no stack overflow in the daemon), errors name the right node. */
typedef struct {
    char *p;
    size_t n, cap;
} sbuf;

static void sb_add(sbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_add(sbuf *b, const char *fmt, ...)
{
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int k = vsnprintf(b->p + b->n, b->cap - b->n, fmt, ap);
        va_end(ap);
        ck_assert(k >= 0);
        if ((size_t)k < b->cap - b->n) {
            b->n += (size_t)k;
            return;
        }
        b->cap = (b->cap + (size_t)k) * 2;
        b->p = realloc(b->p, b->cap);
        ck_assert_ptr_nonnull(b->p);
    }
}

static void big_case(const char *what, sbuf *b, const char *code, const char *node)
{
    int fd = th_connect(&d_main);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(th_send(fd, b->p, b->n), 0);
    int accepted = 0;
    json_t *ev = recv_answer(fd, &accepted);
    ck_assert_msg(ev != NULL, "%s: no answer (%zu bytes sent)", what, b->n);
    ck_assert_msg(strcmp(th_code(ev), code) == 0, "%s: code '%s', wanted '%s': %s", what,
                  th_code(ev), code, ev_message(ev));
    if (node)
        ck_assert_msg(strcmp(th_node(ev), node) == 0, "%s: node '%s', wanted '%s'", what,
                      th_node(ev), node);
    else
        ck_assert_msg(json_object_get(json_object_get(ev, "error"), "node") == NULL,
                      "%s: no node expected, got '%s'", what, th_node(ev));
    ck_assert_msg(ev_message(ev)[0] != '\0', "%s: empty message", what);
    ck_assert_int_eq(accepted, 0);
    json_decref(ev);
    ck_assert_msg(ping_on(fd, "after"), "%s: no pong on the same connection", what);
    close(fd);
    free(b->p);
    *b = (sbuf){0};
}

START_TEST(test_big_graphs)
{
    sbuf b = {0};
    enum { CHAIN = 5000 };

    /* A chain of 5000 refs: too deep (max_depth 64), at its top. */
    sb_add(&b, "{\"id\":\"g\",\"type\":\"run\",\"graph\":{\"nodes\":{\"n0\":{\"op\":"
               "\"raster.constant\",\"width\":2,\"height\":2,\"value\":1}");
    for (int i = 1; i < CHAIN; i++)
        sb_add(&b, ",\"n%d\":{\"op\":\"local.add\",\"args\":[{\"ref\":\"n%d\"},1]}", i, i - 1);
    sb_add(&b, "}}}\n");
    big_case("chain", &b, "too_deep", "n4999");

    /* A ring of 5000 refs: a cycle, found from the first node. */
    sb_add(&b, "{\"id\":\"g\",\"type\":\"run\",\"graph\":{\"nodes\":{");
    for (int i = 0; i < CHAIN; i++)
        sb_add(&b, "%s\"n%d\":{\"op\":\"local.add\",\"args\":[{\"ref\":\"n%d\"},1]}", i ? "," : "",
               i, (i + 1) % CHAIN);
    sb_add(&b, "},\"result\":\"n0\"}}\n");
    big_case("ring", &b, "cycle", "n0");

    /* 10001 nodes: one over the default max_nodes. */
    sb_add(&b, "{\"id\":\"g\",\"type\":\"run\",\"graph\":{\"nodes\":{");
    for (int i = 0; i <= 10000; i++)
        sb_add(&b,
               "%s\"n%d\":{\"op\":\"raster.constant\",\"width\":1,\"height\":1,"
               "\"value\":1}",
               i ? "," : "", i);
    sb_add(&b, "},\"result\":\"n0\"}}\n");
    big_case("10001 nodes", &b, "too_many_nodes", NULL);

    /* Inline nesting 100 deep: too_deep at the outermost node. */
    sb_add(&b, "{\"id\":\"g\",\"type\":\"run\",\"graph\":{\"nodes\":{\"o\":");
    for (int i = 0; i < 100; i++)
        sb_add(&b, "{\"op\":\"local.add\",\"args\":[1,");
    sb_add(&b, "{\"op\":\"raster.constant\",\"width\":2,\"height\":2,\"value\":1}");
    for (int i = 0; i < 100; i++)
        sb_add(&b, "]}");
    sb_add(&b, "}}}\n");
    big_case("inline 100 deep", &b, "too_deep", "o");

    /* 5000 deep: deeper than the JSON parser goes. The line is valid JSON,
     * but the daemon may refuse to parse it (bad_json, id null) or refuse
     * the graph (too_deep); it must answer either way and survive. */
    sb_add(&b, "{\"id\":\"g\",\"type\":\"run\",\"graph\":{\"nodes\":{\"o\":");
    for (int i = 0; i < 5000; i++)
        sb_add(&b, "{\"op\":\"local.add\",\"args\":[1,");
    sb_add(&b, "{\"op\":\"raster.constant\",\"width\":2,\"height\":2,\"value\":1}");
    for (int i = 0; i < 5000; i++)
        sb_add(&b, "]}");
    sb_add(&b, "}}}\n");
    int fd = th_connect(&d_main);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(th_send(fd, b.p, b.n), 0);
    free(b.p);
    json_t *ev = recv_answer(fd, NULL);
    ck_assert_msg(ev != NULL, "inline 5000 deep: no answer");
    const char *code = th_code(ev);
    ck_assert_msg((strcmp(code, "bad_json") == 0 && json_is_null(json_object_get(ev, "id"))) ||
                      (strcmp(code, "too_deep") == 0 && strcmp(th_node(ev), "o") == 0),
                  "inline 5000 deep: %s %s", code, ev_message(ev));
    json_decref(ev);
    ck_assert(ping_on(fd, "after"));
    close(fd);
    ck_assert(th_ping(&d_main));
}
END_TEST

/* Blank lines, whitespace and CRLF endings are not requests: nothing
 * answers them, and the next request is answered as usual. */
START_TEST(test_blank_lines)
{
    int fd = th_connect(&d_main);
    ck_assert_int_ge(fd, 0);
    const char *s = "\n\n   \n\t\r\n\r\n{\"id\":\"crlf\",\"type\":\"pong\"}\r\n"
                    "{\"id\":\"p\",\"type\":\"ping\"}\n";
    ck_assert_int_eq(th_send(fd, s, strlen(s)), 0);
    json_t *ev = th_recv(fd, WAIT_MS);
    ck_assert_ptr_nonnull(ev);
    ck_assert_msg(id_is(ev, "\"crlf\"") && strcmp(th_code(ev), "bad_request") == 0,
                  "blank lines were answered, or CRLF broke the line: %s", th_code(ev));
    json_decref(ev);
    ev = th_recv(fd, WAIT_MS);
    ck_assert_ptr_nonnull(ev);
    ck_assert(id_is(ev, "\"p\""));
    json_decref(ev);
    close(fd);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Jobs: duplicate ids, unknown jobs, busy                                   */

/* A run that takes many seconds (1e10 cells reduced): it is always
 * cancelled. */
#define LONG_RUN(id)                                                                               \
    "{\"id\":" id ",\"type\":\"run\",\"progress\":false,\"graph\":{\"nodes\":{\"st\":{\"op\":"     \
    "\"global.stats\",\"args\":[{\"op\":\"raster.constant\",\"width\":100000,\"height\":100000,"   \
    "\"value\":1}]}}}}\n"
#define SMALL_RUN(id)                                                                              \
    "{\"id\":" id ",\"type\":\"run\",\"progress\":false,\"graph\":{\"nodes\":{\"st\":{\"op\":"     \
    "\"global.stats\",\"args\":[{\"op\":\"raster.constant\",\"width\":8,\"height\":8,"             \
    "\"value\":1}]}}}}\n"

static void start_long(int fd, const char *id_json, const char *line)
{
    ck_assert_int_eq(th_send(fd, line, strlen(line)), 0);
    json_t *ev = recv_for(fd, id_json, "accepted");
    ck_assert_msg(ev != NULL, "the long run %s was not accepted", id_json);
    json_decref(ev);
}

/* Cancels the run ID_JSON on FD: a result {"cancelled": ID} and the run's
 * error "cancelled", in either order. */
static void cancel_long(int fd, const char *id_json)
{
    char line[200];
    static int seq;
    snprintf(line, sizeof line, "{\"id\":\"c-%d\",\"type\":\"cancel\",\"job\":%s}\n", ++seq,
             id_json);
    ck_assert_int_eq(th_send(fd, line, strlen(line)), 0);
    int got_result = 0, got_error = 0;
    json_t *want = json_loads(id_json, JSON_DECODE_ANY, NULL);
    while (!(got_result && got_error)) {
        json_t *ev = th_recv(fd, WAIT_MS);
        ck_assert_msg(ev != NULL, "cancel of %s: answers missing (result %d, error %d)", id_json,
                      got_result, got_error);
        const char *e = ev_event(ev);
        json_t *v = json_object_get(json_object_get(ev, "value"), "cancelled");
        if (strcmp(e, "result") == 0 && v && json_equal(v, want))
            got_result = 1;
        else if (strcmp(e, "error") == 0 && json_equal(json_object_get(ev, "id"), want)) {
            ck_assert_str_eq(th_code(ev), "cancelled");
            got_error = 1;
        }
        json_decref(ev);
    }
    json_decref(want);
}

START_TEST(test_duplicate_id)
{
    int fd = th_connect(&d_main);
    ck_assert_int_ge(fd, 0);
    start_long(fd, "\"dup\"", LONG_RUN("\"dup\""));

    /* The same id again, while the first runs. */
    ck_assert_int_eq(th_send(fd, SMALL_RUN("\"dup\""), strlen(SMALL_RUN("\"dup\""))), 0);
    json_t *ev = recv_for(fd, "\"dup\"", "error");
    ck_assert_msg(ev != NULL, "no answer to a duplicate id");
    ck_assert_str_eq(th_code(ev), "duplicate_id");
    ck_assert_msg(json_object_get(json_object_get(ev, "error"), "node") == NULL, "no node");
    ck_assert(ev_message(ev)[0] != '\0');
    json_decref(ev);

    /* An id that differs only in JSON type is another id. */
    const char *other = SMALL_RUN("1");
    int fd1 = th_connect(&d_main);
    ck_assert_int_ge(fd1, 0);
    start_long(fd1, "\"1\"", LONG_RUN("\"1\""));
    ck_assert_int_eq(th_send(fd1, other, strlen(other)), 0);
    ev = recv_for(fd1, "1", "result");
    ck_assert_msg(ev != NULL, "id 1 was confused with id \"1\"");
    json_decref(ev);

    /* A cancel from another connection does not see this connection's jobs. */
    int fd2 = th_connect(&d_main);
    ck_assert_int_ge(fd2, 0);
    ev = th_request(fd2, "{\"id\":\"x\",\"type\":\"cancel\",\"job\":\"dup\"}\n", WAIT_MS);
    ck_assert_ptr_nonnull(ev);
    ck_assert_str_eq(th_code(ev), "unknown_job");
    ck_assert(id_is(ev, "\"x\""));
    json_decref(ev);
    close(fd2);

    cancel_long(fd, "\"dup\"");
    cancel_long(fd1, "\"1\"");
    close(fd1);

    /* Once it has ended: cancelling it is unknown_job, and the id is free. */
    ev = th_request(fd, "{\"id\":\"c2\",\"type\":\"cancel\",\"job\":\"dup\"}\n", WAIT_MS);
    ck_assert_ptr_nonnull(ev);
    ck_assert_str_eq(th_code(ev), "unknown_job");
    ck_assert(id_is(ev, "\"c2\""));
    json_decref(ev);
    ev = th_request(fd, SMALL_RUN("\"dup\""), WAIT_MS);
    ck_assert_ptr_nonnull(ev);
    ck_assert_msg(strcmp(ev_event(ev), "result") == 0, "a finished run's id could not be reused");
    json_decref(ev);
    /* A job that completed is not running either. */
    ev = th_request(fd, "{\"id\":\"c3\",\"type\":\"cancel\",\"job\":\"dup\"}\n", WAIT_MS);
    ck_assert_ptr_nonnull(ev);
    ck_assert_str_eq(th_code(ev), "unknown_job");
    json_decref(ev);
    ck_assert(ping_on(fd, "after"));
    close(fd);
    ck_assert(th_ping(&d_main));
}
END_TEST

/* limits.max_jobs 1: a second run, on any connection, is busy; once the
 * first has ended, runs are accepted again. */
START_TEST(test_busy_jobs)
{
    int fd = th_connect(&d_jobs);
    ck_assert_int_ge(fd, 0);
    start_long(fd, "\"long\"", LONG_RUN("\"long\""));

    int fd2 = th_connect(&d_jobs);
    ck_assert_int_ge(fd2, 0);
    int accepted = 0;
    ck_assert_int_eq(th_send(fd2, SMALL_RUN("\"s2\""), strlen(SMALL_RUN("\"s2\""))), 0);
    json_t *ev = recv_answer(fd2, &accepted);
    ck_assert_ptr_nonnull(ev);
    ck_assert_str_eq(th_code(ev), "busy");
    ck_assert(id_is(ev, "\"s2\""));
    ck_assert_msg(json_object_get(json_object_get(ev, "error"), "node") == NULL, "no node");
    ck_assert_msg(strstr(ev_message(ev), "max_jobs") != NULL, "message: %s", ev_message(ev));
    ck_assert_int_eq(accepted, 0);
    json_decref(ev);
    ck_assert(ping_on(fd2, "p"));

    /* On the same connection too. */
    ck_assert_int_eq(th_send(fd, SMALL_RUN("\"s1\""), strlen(SMALL_RUN("\"s1\""))), 0);
    ev = recv_for(fd, "\"s1\"", "error");
    ck_assert_ptr_nonnull(ev);
    ck_assert_str_eq(th_code(ev), "busy");
    json_decref(ev);

    cancel_long(fd, "\"long\"");
    ev = th_request(fd2, SMALL_RUN("\"s3\""), WAIT_MS);
    ck_assert_ptr_nonnull(ev);
    ck_assert_msg(strcmp(ev_event(ev), "result") == 0,
                  "runs are still refused after the first "
                  "ended: %s",
                  th_code(ev));
    json_decref(ev);
    close(fd);
    close(fd2);
    ck_assert(th_ping(&d_jobs));
}
END_TEST

/* limits.max_connections 2: the third connection gets one busy error line
 * (id null) and is closed; the first two still work; once one closes, new
 * connections are served. */
START_TEST(test_busy_connections)
{
    int c1 = th_connect(&d_conns), c2 = th_connect(&d_conns);
    ck_assert(c1 >= 0 && c2 >= 0);
    ck_assert(ping_on(c1, "c1"));
    ck_assert(ping_on(c2, "c2"));
    int c3 = th_connect(&d_conns);
    ck_assert_int_ge(c3, 0);
    json_t *ev = th_recv(c3, WAIT_MS);
    ck_assert_msg(ev != NULL, "the third connection got no error line");
    ck_assert_str_eq(th_code(ev), "busy");
    ck_assert(json_is_null(json_object_get(ev, "id")));
    ck_assert_msg(json_object_get(json_object_get(ev, "error"), "node") == NULL, "no node");
    ck_assert_msg(strstr(ev_message(ev), "max_connections") != NULL, "message: %s", ev_message(ev));
    json_decref(ev);
    ck_assert_msg(peer_closed(c3, WAIT_MS), "the third connection was not closed");
    close(c3);
    ck_assert(ping_on(c1, "c1b"));
    ck_assert(ping_on(c2, "c2b"));
    close(c1);
    int ok = 0;
    for (int i = 0; i < 100 && !ok; i++) {
        ok = th_ping(&d_conns);
        if (!ok) sleep_ms(20);
    }
    ck_assert_msg(ok, "a new connection is refused after one of two closed");
    close(c2);
    ck_assert(th_ping(&d_conns));
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Limits                                                                    */

static void expect_too_large_then_pong(int fd, const char *what)
{
    json_t *ev = th_recv(fd, WAIT_MS);
    ck_assert_msg(ev != NULL, "%s: no answer", what);
    ck_assert_msg(strcmp(th_code(ev), "too_large") == 0, "%s: code %s", what, th_code(ev));
    ck_assert_msg(json_is_null(json_object_get(ev, "id")), "%s: id should be null", what);
    ck_assert_msg(json_object_get(json_object_get(ev, "error"), "node") == NULL, "%s: no node",
                  what);
    ck_assert_msg(strstr(ev_message(ev), "max_request_bytes") != NULL, "%s: message: %s", what,
                  ev_message(ev));
    json_decref(ev);
    ev = th_recv(fd, WAIT_MS);
    ck_assert_msg(ev != NULL, "%s: no answer to the next request", what);
    ck_assert_msg(id_is(ev, "\"next\""), "%s: the next answer is not the pong", what);
    ck_assert(json_is_true(json_object_get(json_object_get(ev, "value"), "pong")));
    json_decref(ev);
}

/* A line of LEN bytes (before its '\n'): a run that would save a file, padded
 * with a comment. */
static char *long_line(size_t len)
{
    const char *head = "{\"id\":\"big\",\"type\":\"run\",\"graph\":{\"nodes\":{\"out\":{\"op\":"
                       "\"io.save\",\"path\":\"big.tif\",\"comment\":\"";
    const char *tail = "\",\"args\":[{\"op\":\"raster.constant\",\"width\":8,\"height\":8,"
                       "\"value\":1}]}}}}";
    char *s = malloc(len + 2);
    ck_assert_ptr_nonnull(s);
    size_t h = strlen(head), t = strlen(tail);
    ck_assert(len > h + t);
    memcpy(s, head, h);
    memset(s + h, 'x', len - h - t);
    memcpy(s + len - t, tail, t);
    s[len] = '\0';
    return s;
}

START_TEST(test_too_large_line)
{
    snaps before = snap_take(&d_lim);
    long long jobs = jobs_seen(&d_lim);
    int fd = th_connect(&d_lim);
    ck_assert_int_ge(fd, 0);
    const char *ping = "{\"id\":\"next\",\"type\":\"ping\"}\n";

    /* In one write, with the next request. */
    char *big = long_line(10000);
    size_t n = strlen(big);
    char *buf = malloc(n + 64);
    ck_assert_ptr_nonnull(buf);
    memcpy(buf, big, n);
    buf[n] = '\n';
    memcpy(buf + n + 1, ping, strlen(ping));
    ck_assert_int_eq(th_send(fd, buf, n + 1 + strlen(ping)), 0);
    expect_too_large_then_pong(fd, "one write");

    /* In pieces: one error, not one per piece. */
    ck_assert_int_eq(th_send(fd, big, 3000), 0);
    sleep_ms(50);
    ck_assert_int_eq(th_send(fd, big + 3000, 3000), 0);
    sleep_ms(50);
    ck_assert_int_eq(th_send(fd, big + 6000, n - 6000), 0);
    sleep_ms(50);
    ck_assert_int_eq(th_send(fd, "\n", 1), 0);
    ck_assert_int_eq(th_send(fd, ping, strlen(ping)), 0);
    expect_too_large_then_pong(fd, "pieces");

    /* One byte over the limit; then exactly at it (parsed: bad_request for
     * the unknown key). */
    char *over = long_line(4097);
    over[4097] = '\n';
    ck_assert_int_eq(th_send(fd, over, 4098), 0);
    ck_assert_int_eq(th_send(fd, ping, strlen(ping)), 0);
    expect_too_large_then_pong(fd, "4097 bytes");
    char at[4200];
    const char *head = "{\"id\":\"at\",\"type\":\"ping\",\"pad\":\"";
    size_t hl = strlen(head);
    memcpy(at, head, hl);
    memset(at + hl, 'y', 4096 - hl - 2);
    memcpy(at + 4094, "\"}\n", 3);
    ck_assert_int_eq(th_send(fd, at, 4097), 0);
    json_t *ev = th_recv(fd, WAIT_MS);
    ck_assert_ptr_nonnull(ev);
    ck_assert_msg(strcmp(th_code(ev), "bad_request") == 0 && id_is(ev, "\"at\""),
                  "a line of exactly max_request_bytes must be read: %s", th_code(ev));
    ck_assert(strstr(ev_message(ev), "pad") != NULL);
    json_decref(ev);
    ck_assert(ping_on(fd, "after"));
    close(fd);
    free(big);
    free(over);
    free(buf);
    ck_assert(th_ping(&d_lim));
    ck_assert_msg(jobs_seen(&d_lim) == jobs, "an oversized run was started");
    snap_check(&d_lim, before, "too_large line");
}
END_TEST

/* The limits are limits, not off by one: a chain exactly max_depth deep,
 * exactly max_nodes nodes, and a raster answer of exactly max_result_bytes
 * are served (so that the refusals in lim_cases are about the limits). */
START_TEST(test_limits_boundaries)
{
    int fd = th_connect(&d_lim);
    ck_assert_int_ge(fd, 0);
    static const struct {
        const char *what, *line;
        json_int_t bytes;
    } ok[] = {
        {"4 deep",
         RUN("'d'", G(K("n1", 2, 2) "," ADDREF("n2", "n1") "," ADDREF("n3", "n2") "," ADDREF(
                        "n4", "n3"))) "\n",
         16},
        {"8 nodes",
         RUN("'n'",
             "{'nodes':{" K("n1", 2, 2) "," K("n2", 2, 2) "," K("n3", 2, 2) "," K("n4", 2, 2) "," K(
                 "n5", 2, 2) "," K("n6", 2, 2) "," K("n7", 2, 2) "," K("n8", 2,
                                                                       2) "},'result':'n1'}") "\n",
         16},
        {"4096 result bytes",
         RUN("'r'", "{'nodes':{" K("a", 16, 32) "," K("b", 16, 32) "},'result':['a','b']}") "\n",
         4096},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        char *line = expand(&d_lim, ok[i].line);
        ck_assert_int_eq(th_send(fd, line, strlen(line)), 0);
        free(line);
        json_t *ev = recv_answer(fd, NULL);
        ck_assert_msg(ev != NULL, "%s: no answer", ok[i].what);
        ck_assert_msg(strcmp(ev_event(ev), "result") == 0, "%s: %s %s", ok[i].what, th_code(ev),
                      ev_message(ev));
        json_int_t bytes = json_integer_value(json_object_get(ev, "bytes"));
        json_decref(ev);
        ck_assert_msg(bytes == ok[i].bytes, "%s: %lld bytes", ok[i].what, (long long)bytes);
        char raw[4096];
        ck_assert_int_eq(th_recv_bytes(fd, raw, (size_t)bytes, WAIT_MS), 0);
    }
    ck_assert(ping_on(fd, "after"));
    close(fd);
}
END_TEST

/* ------------------------------------------------------------------------ */
/* Failed writes leave nothing                                               */

static void expect_io_error(th_daemon *d, const char *path, int big)
{
    snaps before = snap_take(d);
    int fd = th_connect(d);
    ck_assert_int_ge(fd, 0);
    char line[600];
    snprintf(line, sizeof line,
             "{\"id\":\"w\",\"type\":\"run\",\"progress\":false,\"graph\":{\"nodes\":{\"out\":{"
             "\"op\":\"io.save\",\"path\":\"%s\",\"args\":[{\"op\":\"raster.constant\",\"width\":"
             "%d,\"height\":%d,\"value\":1.5}]}}}}\n",
             path, big ? 2048 : 8, big ? 2048 : 8);
    json_t *ev = th_request(fd, line, WAIT_MS);
    ck_assert_msg(ev != NULL, "save to %s: no answer", path);
    char *text = json_dumps(ev, JSON_COMPACT);
    ck_assert_msg(strcmp(th_code(ev), "io_error") == 0, "save to %s: %s", path, text);
    ck_assert_msg(strcmp(th_node(ev), "out") == 0, "save to %s: node: %s", path, text);
    ck_assert_msg(strstr(ev_message(ev), path) != NULL, "save to %s: message: %s", path, text);
    ck_assert(id_is(ev, "\"w\""));
    free(text);
    json_decref(ev);
    ck_assert(ping_on(fd, "after"));
    close(fd);
    ck_assert(th_count_files(d->root, "", ".tmp") == 0);
    ck_assert(th_count_files(d->root, "ro", "") == 0);
    snap_check(d, before, path);
}

/* The file system refuses the write half-way (RLIMIT_FSIZE): io_error
 * naming the node, and neither the output nor its temporary file remains. */
START_TEST(test_write_fails_midway)
{
    expect_io_error(&d_fsz, "fsz_out.tif", 1);
    /* The daemon still writes what fits. */
    int fd = th_connect(&d_fsz);
    ck_assert_int_ge(fd, 0);
    json_t *ev = th_request(fd,
                            "{\"id\":\"ok\",\"type\":\"run\",\"progress\":false,\"graph\":{"
                            "\"nodes\":{\"out\":{\"op\":\"io.save\",\"path\":\"small.tif\","
                            "\"args\":[{\"op\":\"raster.constant\",\"width\":8,\"height\":8,"
                            "\"value\":1}]}}}}\n",
                            WAIT_MS);
    ck_assert_ptr_nonnull(ev);
    ck_assert_msg(strcmp(ev_event(ev), "result") == 0, "a small save failed: %s %s", th_code(ev),
                  ev_message(ev));
    json_decref(ev);
    close(fd);
    char p[400];
    snprintf(p, sizeof p, "%s/small.tif", d_fsz.root);
    ck_assert(exists(p));
    unlink(p);
}
END_TEST

/* A directory the daemon cannot write to (root ignores permissions, so this
 * runs only for other users). */
START_TEST(test_write_denied_dir)
{
    if (geteuid() == 0) {
        fprintf(stderr, "test_write_denied_dir: skipped (running as root)\n");
        return;
    }
    char p[400];
    snprintf(p, sizeof p, "%s/ro", d_fsz.root);
    ck_assert(chmod(p, 0555) == 0);
    expect_io_error(&d_fsz, "ro/out.tif", 0);
    chmod(p, 0755);
}
END_TEST

/* ------------------------------------------------------------------------ */

static Suite *badreq_suite(void)
{
    Suite *s = suite_create("badreq");

    TCase *tc = tcase_create("main");
    tcase_add_unchecked_fixture(tc, setup_main, teardown_main);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_main_table, 0, (int)(sizeof main_cases / sizeof main_cases[0]));
    tcase_add_test(tc, test_attachment_skipped);
    tcase_add_test(tc, test_bad_bytes_stops_stream);
    tcase_add_test(tc, test_flood);
    tcase_add_test(tc, test_big_graphs);
    tcase_add_test(tc, test_blank_lines);
    tcase_add_test(tc, test_duplicate_id);
    suite_add_tcase(s, tc);

    tc = tcase_create("limits");
    tcase_add_unchecked_fixture(tc, setup_lim, teardown_lim);
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_lim_table, 0, (int)(sizeof lim_cases / sizeof lim_cases[0]));
    tcase_add_test(tc, test_too_large_line);
    tcase_add_test(tc, test_limits_boundaries);
    suite_add_tcase(s, tc);

    tc = tcase_create("max_jobs");
    tcase_add_unchecked_fixture(tc, setup_jobs, teardown_jobs);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_busy_jobs);
    suite_add_tcase(s, tc);

    tc = tcase_create("max_connections");
    tcase_add_unchecked_fixture(tc, setup_conns, teardown_conns);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_busy_connections);
    suite_add_tcase(s, tc);

    tc = tcase_create("write_failures");
    tcase_add_unchecked_fixture(tc, setup_fsz, teardown_fsz);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_write_fails_midway);
    tcase_add_test(tc, test_write_denied_dir);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    /* A directory outside every data root, with a raster and a file that
     * escaping reads and writes would reach. */
    snprintf(outside, sizeof outside, "/tmp/pergola-badreq-out-XXXXXX");
    if (mkdtemp(outside) == NULL) {
        perror("mkdtemp");
        return EXIT_FAILURE;
    }
    for (const char *const *t = escape_targets; *t; t++)
        unlink(*t); /* left by an earlier, failed run */
    int rc = th_mkraster(outside, "outside.tif", "--size 8");
    if (rc == 0) rc = th_mkraster(outside, "target.tif", "--size 8 --type u8");
    if (rc != 0) {
        fprintf(stderr, "pergola-mkraster failed (%d)\n", rc);
        return EXIT_FAILURE;
    }

    SRunner *sr = srunner_create(badreq_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);

    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", outside);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", outside);
    if (stop_failures) fprintf(stderr, "%d daemon(s) did not exit cleanly\n", stop_failures);
    return failed == 0 && stop_failures == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
