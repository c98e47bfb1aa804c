/* pergola: the command-line client of pergolad.
 *
 * A thin shell over the public client library (include/pergola/client.h):
 * everything it does, an application can do. Its output is for people
 * unless --json is given; its exit status tells scripts what went wrong
 * (see usage()).
 */
#include "pergola/pergola.h"

#include "cluster.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum {
    EXIT_DAEMON = 1,  /* the daemon answered with an error; or the result could not be written */
    EXIT_USAGE = 2,   /* bad command line or input file */
    EXIT_CONNECT = 3, /* cannot connect, or the connection was lost */
};

/* Progress is shown only for jobs still running after this long: a quick
 * job's line would only flicker. */
#define PROGRESS_DELAY_MS 500
#define PROGRESS_EVERY_MS 100
/* How long `run --timeout` waits past the deadline for the daemon's own
 * timeout error before giving up on it. */
#define RUN_GRACE_MS 5000

static void usage(FILE *f)
{
    fputs("Usage: pergola [--connect ADDR] COMMAND [OPTIONS]\n"
          "\n"
          "Run raster operation graphs on a pergolad daemon.\n"
          "\n"
          "Commands:\n"
          "  run GRAPH.json [OPTIONS]  run a graph ('-': read it from stdin), print its result\n"
          "      -t, --timeout MS      the job's deadline in milliseconds (default: none)\n"
          "      -o, --output FILE     write raster results' raw cells to FILE (several\n"
          "                            raster results: FILE.0, FILE.1, ... by position)\n"
          "      -j, --json            print the result value as JSON\n"
          "      -q, --quiet           no progress line and no notes on stderr\n"
          "      -w, --window X,Y,W,H  only this window of the (one) raster result\n"
          "      -d, --distribute[=P]  spread the tiles over the cluster; P: hilbert (default),\n"
          "                            round_robin or by_input\n"
          "  ops [--json]              list the daemon's operations and their parameters\n"
          "  status [--json]           show the daemon's state\n"
          "  ping [-c N] [-i MS]       time N round trips (default 1), MS apart (default 1000)\n"
          "  keygen [PREFIX]           make a CURVE key pair for a cluster node: print it, or\n"
          "                            write PREFIX.public and PREFIX.secret (mode 0600)\n"
          "\n"
          "Options:\n"
          "  -C, --connect ADDR  the daemon: HOST:PORT, tcp://HOST:PORT, unix:PATH or a\n"
          "                      socket path (default: $PERGOLA_CONNECT, else 127.0.0.1:7878)\n"
          "  -h, --help          show this help and exit\n"
          "  -V, --version       show the version and exit\n"
          "\n"
          "A progress line is shown on stderr for long runs when stderr is a terminal.\n"
          "Ctrl-C during a run cancels the job.\n"
          "\n"
          "Exit status:\n"
          "  0  success\n"
          "  1  the daemon returned an error (printed as 'pergola: error CODE at node NODE:\n"
          "     MESSAGE'), or the result could not be written\n"
          "  2  usage error: bad command line, unreadable or invalid graph file\n"
          "  3  cannot connect to the daemon, or the connection was lost\n",
          f);
}

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("pergola: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs("\nTry 'pergola --help'.\n", stderr);
    va_end(ap);
    return EXIT_USAGE;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* The exit status for a failed library call. */
static int exit_for(int code)
{
    return (code == PG_ECONNECT || code == PG_ECLOSED || code == PG_EPROTO) ? EXIT_CONNECT
                                                                            : EXIT_DAEMON;
}

/* Prints ERR the way the help promises and returns the exit status. */
static int report(const pg_error *err)
{
    switch (err->code) {
    case PG_ECONNECT:
        /* The usual cause by far: say what to check. */
        fprintf(stderr, "pergola: %s%s\n", err->message,
                (errno == ECONNREFUSED || errno == ENOENT) ? " (is pergolad running?)" : "");
        break;
    case PG_ECLOSED:
    case PG_EPROTO:
        fprintf(stderr, "pergola: connection lost: %s\n", err->message);
        break;
    default:
        if (err->node[0] != '\0')
            fprintf(stderr, "pergola: error %s at node %s: %s\n", pg_err_name(err->code), err->node,
                    err->message);
        else
            fprintf(stderr, "pergola: error %s: %s\n", pg_err_name(err->code), err->message);
    }
    return exit_for(err->code);
}

/* Matches argv[*i] against the option -SHORT / --LONG. For an option that
 * takes a value (VAL != NULL) accepts "--long=V", "--long V", "-sV" and
 * "-s V". Returns 1 if it matched (then *i is on its last word), 0 if not,
 * -1 if its value is missing. */
static int match_opt(int argc, char **argv, int *i, char shrt, const char *lng, const char **val)
{
    const char *a = argv[*i];
    size_t ll = strlen(lng);
    const char *inl = NULL;
    if (a[0] == '-' && a[1] == '-' && strncmp(a + 2, lng, ll) == 0) {
        if (a[2 + ll] == '=' && val != NULL)
            inl = a + 3 + ll;
        else if (a[2 + ll] != '\0')
            return 0;
    } else if (shrt != 0 && a[0] == '-' && a[1] == shrt) {
        if (a[2] != '\0') {
            if (val == NULL) return 0;
            inl = a + 2;
        }
    } else {
        return 0;
    }
    if (val == NULL) return 1;
    if (inl != NULL) {
        *val = inl;
        return 1;
    }
    if (*i + 1 >= argc) return -1;
    *val = argv[++*i];
    return 1;
}

/* Parses a decimal integer in [MIN, MAX]; 0 on success. */
static int parse_int(const char *s, long min, long max, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno != 0 || end == s || *end != '\0' || v < min || v > max) return -1;
    *out = v;
    return 0;
}

static pg_client *connect_or_report(const char *address, int *status)
{
    pg_error err;
    pg_client *c = pg_client_new(address, 0, &err);
    if (c == NULL) *status = report(&err);
    return c;
}

static void print_json(json_t *j)
{
    json_dumpf(j, stdout, JSON_INDENT(2) | JSON_ENCODE_ANY);
    putchar('\n');
}

/* ------------------------------------------------------------------------ */
/* run                                                                       */

typedef struct {
    int enabled;
    uint64_t start, last;
    long long done, total;
    long long shown_done, shown_total; /* what the line on screen says */
    int shown;                         /* its length; 0: no line */
} progress_state;

static void progress_draw(progress_state *p)
{
    char line[96];
    int n;
    if (p->total > 0) {
        int pct = (int)(100.0 * (double)p->done / (double)p->total);
        n = snprintf(line, sizeof line, "running: %3d%% (%lld/%lld tiles)", pct, p->done, p->total);
    } else {
        n = snprintf(line, sizeof line, "running...");
    }
    /* Pad over a longer previous line rather than emit terminal escapes. */
    int pad = p->shown > n ? p->shown - n : 0;
    fprintf(stderr, "\r%s%*s", line, pad, "");
    if (pad > 0) fprintf(stderr, "\r%s", line);
    fflush(stderr);
    p->shown = n;
    p->shown_done = p->done;
    p->shown_total = p->total;
    p->last = now_ms();
}

static void progress_clear(progress_state *p)
{
    if (p->shown > 0) {
        fprintf(stderr, "\r%*s\r", p->shown, "");
        fflush(stderr);
        p->shown = 0;
    }
}

/* Called by the library for accepted and progress events; the wait loop
 * also calls it (with the last numbers) so that the line appears after
 * PROGRESS_DELAY_MS even when no event comes. */
static void progress_tick(progress_state *p)
{
    uint64_t t = now_ms();
    if (!p->enabled || t - p->start < PROGRESS_DELAY_MS) return;
    if (p->shown > 0 && p->done == p->shown_done && p->total == p->shown_total) return;
    if (p->shown == 0 || t - p->last >= PROGRESS_EVERY_MS || p->done == p->total) progress_draw(p);
}

static void on_progress(long long done, long long total, void *ud)
{
    progress_state *p = ud;
    p->done = done;
    p->total = total;
    progress_tick(p);
}

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

/* Reads all of PATH ('-': stdin) into a NUL-terminated malloc'd buffer. */
static char *read_all(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (f == NULL) return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    while (buf != NULL) {
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap *= 2);
            if (nb == NULL) {
                free(buf);
                buf = NULL;
                break;
            }
            buf = nb;
        }
        size_t k = fread(buf + n, 1, cap - n - 1, f);
        n += k;
        if (k == 0) {
            if (ferror(f)) {
                free(buf);
                buf = NULL;
            }
            break;
        }
    }
    int e = errno;
    if (f != stdin) fclose(f);
    errno = e;
    if (buf != NULL) {
        buf[n] = '\0';
        *len = n;
    }
    return buf;
}

static int write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL) return -1;
    int ok = (len == 0 || fwrite(data, 1, len, f) == len);
    int e = errno;
    if (fclose(f) != 0) ok = 0, e = errno;
    errno = e;
    return ok ? 0 : -1;
}

typedef struct {
    const char *output;
    int json, quiet;
    int nrasters;
} run_opts;

/* Writes raster item I's cells where --output says. */
static int save_raster(const run_opts *o, const pg_raster *ra, size_t i)
{
    char name[4096];
    if (o->nrasters > 1)
        snprintf(name, sizeof name, "%s.%zu", o->output, i);
    else
        snprintf(name, sizeof name, "%s", o->output);
    if (write_file(name, ra->data, ra->length) < 0) {
        fprintf(stderr, "pergola: cannot write %s: %s\n", name, strerror(errno));
        return EXIT_DAEMON;
    }
    if (!o->quiet) fprintf(stderr, "pergola: wrote %zu bytes to %s\n", ra->length, name);
    return 0;
}

static void print_raster_header(const pg_raster *ra)
{
    printf("raster %d x %d, %d band%s, %s", ra->width, ra->height, ra->bands,
           ra->bands == 1 ? "" : "s", ra->type[0] ? ra->type : "(no type)");
    if (ra->has_nodata)
        printf(", nodata %.17g\n", ra->nodata);
    else
        printf(", no nodata\n");
    if (ra->has_geotransform) {
        printf("geotransform [");
        for (int k = 0; k < 6; k++)
            printf("%s%.17g", k ? ", " : "", ra->geotransform[k]);
        printf("]\n");
    }
    if (ra->crs[0] != '\0') printf("crs %s\n", ra->crs);
}

static int print_result(const pg_result *r, json_t *graph, const run_opts *o)
{
    int status = 0;
    size_t n = pg_result_count(r);
    if (o->json) print_json(pg_result_value(r));
    if (o->output != NULL && o->nrasters == 0 && !o->quiet)
        fprintf(stderr, "pergola: the result has no raster: nothing written to %s\n", o->output);
    json_t *names = json_object_get(graph, "result");
    for (size_t i = 0; i < n; i++) {
        pg_item_kind kind = pg_result_item_kind(r, i);
        const pg_raster *ra = pg_result_raster(r, i);
        if (o->json) {
            if (kind == PG_ITEM_RASTER && o->output != NULL && save_raster(o, ra, i) != 0)
                status = EXIT_DAEMON;
            continue;
        }
        if (pg_result_is_list(r)) {
            const char *name = json_string_value(json_array_get(names, i));
            printf("%s%s:\n", i ? "\n" : "", name ? name : "?");
        }
        json_t *item = pg_result_item(r, i);
        switch (kind) {
        case PG_ITEM_PATH: {
            printf("wrote %s", pg_result_path(r, i));
            json_t *w = json_object_get(item, "width"), *h = json_object_get(item, "height");
            if (json_is_integer(w) && json_is_integer(h)) {
                long long b = json_integer_value(json_object_get(item, "bands"));
                const char *t = json_string_value(json_object_get(item, "type"));
                printf(" (%lld x %lld, %lld band%s%s%s)", (long long)json_integer_value(w),
                       (long long)json_integer_value(h), b, b == 1 ? "" : "s", t ? ", " : "",
                       t ? t : "");
            }
            printf("\n");
            break;
        }
        case PG_ITEM_RASTER:
            print_raster_header(ra);
            if (o->output != NULL) {
                fflush(stdout);
                if (save_raster(o, ra, i) != 0) status = EXIT_DAEMON;
            } else {
                printf("received %zu bytes of cells (use --output FILE to save them)\n",
                       ra->length);
            }
            break;
        default:
            print_json(item);
        }
    }
    return status;
}

static int cmd_run(const char *address, int argc, char **argv)
{
    run_opts o = {0};
    const char *graph_path = NULL, *v;
    long timeout = 0;
    long long win[4];
    int has_win = 0;
    const char *dist = NULL; /* "": the default partition */
    for (int i = 0; i < argc; i++) {
        int m;
        if ((m = match_opt(argc, argv, &i, 'w', "window", &v)) != 0) {
            char tail;
            if (m < 0) return usage_error("option '%s' needs a value", argv[i]);
            if (sscanf(v, "%lld,%lld,%lld,%lld%c", &win[0], &win[1], &win[2], &win[3], &tail) !=
                    4 ||
                win[2] < 1 || win[3] < 1)
                return usage_error("bad --window '%s' (X,Y,WIDTH,HEIGHT in cells)", v);
            has_win = 1;
        } else if (strcmp(argv[i], "-d") == 0 || strcmp(argv[i], "--distribute") == 0) {
            dist = "";
        } else if (strncmp(argv[i], "--distribute=", 13) == 0) {
            dist = argv[i] + 13;
        } else if ((m = match_opt(argc, argv, &i, 't', "timeout", &v)) != 0) {
            if (m < 0) return usage_error("option '%s' needs a value", argv[i]);
            if (parse_int(v, 1, INT32_MAX - RUN_GRACE_MS, &timeout) != 0)
                return usage_error("bad --timeout '%s' (milliseconds, > 0)", v);
        } else if ((m = match_opt(argc, argv, &i, 'o', "output", &v)) != 0) {
            if (m < 0) return usage_error("option '%s' needs a value", argv[i]);
            o.output = v;
        } else if (match_opt(argc, argv, &i, 'j', "json", NULL)) {
            o.json = 1;
        } else if (match_opt(argc, argv, &i, 'q', "quiet", NULL)) {
            o.quiet = 1;
        } else if (match_opt(argc, argv, &i, 'h', "help", NULL)) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            return usage_error("run: unknown option '%s'", argv[i]);
        } else if (graph_path != NULL) {
            return usage_error("run: one graph at a time ('%s')", argv[i]);
        } else {
            graph_path = argv[i];
        }
    }
    if (graph_path == NULL) return usage_error("run: which graph? (pergola run GRAPH.json)");

    size_t len = 0;
    char *text = read_all(graph_path, &len);
    if (text == NULL) {
        fprintf(stderr, "pergola: cannot read %s: %s\n",
                strcmp(graph_path, "-") ? graph_path : "stdin", strerror(errno));
        return EXIT_USAGE;
    }
    json_error_t je;
    json_t *graph = json_loadb(text, len, 0, &je);
    free(text);
    if (graph == NULL || !json_is_object(graph)) {
        if (graph == NULL)
            fprintf(stderr, "pergola: %s: not valid JSON: %s (line %d, column %d)\n", graph_path,
                    je.text, je.line, je.column);
        else
            fprintf(stderr, "pergola: %s: a graph must be a JSON object\n", graph_path);
        json_decref(graph);
        return EXIT_USAGE;
    }

    int status = 0;
    pg_client *c = connect_or_report(address, &status);
    if (c == NULL) {
        json_decref(graph);
        return status;
    }
    progress_state prog = {.enabled = !o.quiet && isatty(STDERR_FILENO), .start = now_ms()};
    json_t *extra = json_object(); /* more members of the run request */
    if (extra && has_win)
        json_object_set_new(extra, "window",
                            json_pack("[IIII]", (json_int_t)win[0], (json_int_t)win[1],
                                      (json_int_t)win[2], (json_int_t)win[3]));
    if (extra && dist)
        json_object_set_new(extra, "distribute",
                            *dist ? json_pack("{s:s}", "partition", dist) : json_true());
    pg_run_opts ro = {.timeout_ms = (int)timeout,
                      .progress = prog.enabled ? on_progress : NULL,
                      .userdata = &prog,
                      .request = json_object_size(extra) ? extra : NULL};
    pg_error err;
    pg_job job;
    pg_result *res = NULL;
    int rc = pg_client_submit_json(c, graph, &ro, &job, &err);

    /* Ctrl-C cancels the job (the daemon then answers "cancelled"); a
     * second one kills us the usual way. */
    struct sigaction sa = {.sa_handler = on_sigint, .sa_flags = SA_RESETHAND};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    int cancelled = 0;
    uint64_t give_up = timeout > 0 ? now_ms() + (uint64_t)timeout + RUN_GRACE_MS : UINT64_MAX;
    while (rc == 0) {
        rc = pg_client_wait(c, job, PROGRESS_EVERY_MS, &res, &err);
        if (rc != PG_PENDING) break;
        rc = 0;
        progress_tick(&prog);
        if ((interrupted || now_ms() >= give_up) && !cancelled) {
            progress_clear(&prog);
            if (!o.quiet)
                fprintf(stderr, "pergola: %s, cancelling the job\n",
                        interrupted ? "interrupted" : "no answer past the deadline");
            cancelled = 1;
            give_up = now_ms() + RUN_GRACE_MS;
            pg_client_cancel(c, job, NULL); /* its failure shows in the wait */
        } else if (cancelled && now_ms() >= give_up) {
            rc = PG_ETIMEOUT;
            snprintf(err.message, sizeof err.message, "the daemon does not answer");
            err.code = rc;
            err.node[0] = '\0';
        }
    }
    signal(SIGINT, SIG_DFL);
    progress_clear(&prog);

    if (rc < 0) {
        status = report(&err);
    } else {
        for (size_t i = 0; i < pg_result_count(res); i++)
            if (pg_result_item_kind(res, i) == PG_ITEM_RASTER) o.nrasters++;
        status = print_result(res, graph, &o);
    }
    fflush(stdout);
    pg_result_destroy(&res);
    pg_client_destroy(&c);
    json_decref(graph);
    json_decref(extra);
    return status;
}

/* ------------------------------------------------------------------------ */
/* ops, status, ping                                                         */

static int parse_json_flag(const char *cmd, int argc, char **argv, int *json)
{
    for (int i = 0; i < argc; i++) {
        if (match_opt(argc, argv, &i, 'j', "json", NULL)) {
            *json = 1;
        } else if (match_opt(argc, argv, &i, 'h', "help", NULL)) {
            usage(stdout);
            return -1;
        } else {
            fprintf(stderr, "pergola: %s: unexpected argument '%s'\nTry 'pergola --help'.\n", cmd,
                    argv[i]);
            return EXIT_USAGE;
        }
    }
    return 0;
}

/* JSON scalar as short text for the table ("null" -> "" so that absent
 * bounds read as blanks). */
static void json_short(json_t *j, char *buf, size_t n)
{
    buf[0] = '\0';
    if (j == NULL || json_is_null(j)) return;
    if (json_is_string(j)) {
        snprintf(buf, n, "\"%s\"", json_string_value(j));
        return;
    }
    char *s = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    if (s != NULL) snprintf(buf, n, "%s", s);
    free(s);
}

static void print_op(json_t *op)
{
    const char *name = json_string_value(json_object_get(op, "name"));
    const char *doc = json_string_value(json_object_get(op, "doc"));
    const char *ret = json_string_value(json_object_get(op, "returns"));
    json_t *args = json_object_get(op, "args");
    json_t *amin = json_object_get(args, "min"), *amax = json_object_get(args, "max");
    char arity[64] = "";
    if (json_is_integer(amin)) {
        long long lo = json_integer_value(amin);
        if (json_is_integer(amax) && json_integer_value(amax) == lo)
            snprintf(arity, sizeof arity, "%lld", lo);
        else if (json_is_integer(amax))
            snprintf(arity, sizeof arity, "%lld..%lld", lo, (long long)json_integer_value(amax));
        else
            snprintf(arity, sizeof arity, "%lld or more", lo);
    }
    char kinds[64] = "";
    json_t *k;
    size_t ki;
    json_array_foreach(json_object_get(args, "kinds"), ki, k)
    {
        size_t l = strlen(kinds);
        snprintf(kinds + l, sizeof kinds - l, "%s%s", ki ? " or " : "",
                 json_string_value(k) ? json_string_value(k) : "?");
    }
    printf("  %-22s -> %-7s args: %s%s%s%s\n", name ? name : "?", ret ? ret : "?",
           arity[0] ? arity : "?", kinds[0] ? " (" : "", kinds, kinds[0] ? ")" : "");
    if (doc != NULL && doc[0] != '\0') printf("      %s\n", doc);
    json_t *params = json_object_get(op, "params");
    json_t *p;
    size_t pi;
    json_array_foreach(params, pi, p)
    {
        const char *pn = json_string_value(json_object_get(p, "name"));
        const char *pt = json_string_value(json_object_get(p, "type"));
        const char *pd = json_string_value(json_object_get(p, "doc"));
        char req[96], lo[32], hi[32], range[80] = "";
        if (json_is_true(json_object_get(p, "required"))) {
            snprintf(req, sizeof req, "required");
        } else {
            char d[80];
            json_short(json_object_get(p, "default"), d, sizeof d);
            if (d[0] != '\0')
                snprintf(req, sizeof req, "default %s", d);
            else
                snprintf(req, sizeof req, "optional");
        }
        json_short(json_object_get(p, "min"), lo, sizeof lo);
        json_short(json_object_get(p, "max"), hi, sizeof hi);
        if (lo[0] || hi[0]) snprintf(range, sizeof range, " [%s..%s]", lo, hi);
        printf("      %-14s %-9s %s%s%s%s\n", pn ? pn : "?", pt ? pt : "?", req, range,
               pd ? "  " : "", pd ? pd : "");
    }
}

static int cmd_ops(const char *address, int argc, char **argv)
{
    int json = 0, status = parse_json_flag("ops", argc, argv, &json);
    if (status != 0) return status < 0 ? 0 : status;
    pg_client *c = connect_or_report(address, &status);
    if (c == NULL) return status;
    pg_error err;
    json_t *ops = NULL;
    if (pg_client_ops(c, &ops, &err) < 0) {
        status = report(&err);
    } else if (json) {
        print_json(ops);
    } else {
        const char *family = NULL;
        json_t *op;
        size_t i;
        json_array_foreach(ops, i, op)
        {
            const char *f = json_string_value(json_object_get(op, "family"));
            if (f != NULL && (family == NULL || strcmp(f, family) != 0)) {
                printf("%s%s\n", i ? "\n" : "", f);
                family = f;
            }
            print_op(op);
        }
        printf("\n%zu operation%s\n", json_array_size(ops), json_array_size(ops) == 1 ? "" : "s");
    }
    json_decref(ops);
    pg_client_destroy(&c);
    return status;
}

static void human_bytes(json_t *j, char *buf, size_t n)
{
    if (!json_is_number(j)) {
        snprintf(buf, n, "?");
        return;
    }
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = json_number_value(j);
    size_t u = 0;
    while (v >= 1024 && u + 1 < sizeof units / sizeof units[0])
        v /= 1024, u++;
    if (u == 0)
        snprintf(buf, n, "%.0f B", v);
    else
        snprintf(buf, n, "%.1f %s", v, units[u]);
}

static long long geti(json_t *o, const char *k)
{
    return json_integer_value(json_object_get(o, k));
}

/* The result cache's line of `pergola status`. */
static void print_cache_status(json_t *cache)
{
    if (!json_is_object(cache)) return;
    char used[32], budget[32];
    human_bytes(json_object_get(cache, "bytes"), used, sizeof used);
    human_bytes(json_object_get(cache, "budget_bytes"), budget, sizeof budget);
    if (geti(cache, "budget_bytes") == 0) {
        printf("cache        off\n");
        return;
    }
    printf("cache        %lld entries, %s of %s; %lld hits, %lld misses, %lld shared, %lld "
           "evictions\n",
           geti(cache, "entries"), used, budget, geti(cache, "hits"), geti(cache, "misses"),
           geti(cache, "shared"), geti(cache, "evictions"));
}

/* The cluster part of `status`: one line per peer. */
static void print_cluster(json_t *cl)
{
    if (!json_is_object(cl)) return;
    const char *node = json_string_value(json_object_get(cl, "node"));
    const char *ep = json_string_value(json_object_get(cl, "endpoint"));
    printf("cluster      node %s at %s\n", node ? node : "?", ep ? ep : "?");
    json_t *peers = json_object_get(cl, "peers");
    printf("  %-12s %-28s %-10s %6s %7s %8s %10s\n", "PEER", "ENDPOINT", "STATE", "LOAD", "WORKERS",
           "INFLIGHT", "LAST SEEN");
    size_t i;
    json_t *p;
    json_array_foreach(peers, i, p)
    {
        const char *name = json_string_value(json_object_get(p, "name"));
        const char *pep = json_string_value(json_object_get(p, "endpoint"));
        const char *state = json_string_value(json_object_get(p, "state"));
        json_t *seen = json_object_get(p, "last_seen_ms");
        char seen_s[32];
        if (json_is_integer(seen))
            snprintf(seen_s, sizeof seen_s, "%.1f s ago",
                     (double)json_integer_value(seen) / 1000.0);
        else
            snprintf(seen_s, sizeof seen_s, "never");
        printf("  %-12s %-28s %-10s %6lld %7lld %8lld %10s\n", name ? name : "?", pep ? pep : "?",
               state ? state : "?", geti(p, "load"), geti(p, "workers"), geti(p, "inflight"),
               seen_s);
    }
}

static int cmd_status(const char *address, int argc, char **argv)
{
    int json = 0, status = parse_json_flag("status", argc, argv, &json);
    if (status != 0) return status < 0 ? 0 : status;
    pg_client *c = connect_or_report(address, &status);
    if (c == NULL) return status;
    pg_error err;
    json_t *st = NULL;
    if (pg_client_status(c, &st, &err) < 0) {
        status = report(&err);
    } else if (json) {
        print_json(st);
    } else {
        const char *ver = json_string_value(json_object_get(st, "version"));
        long long up = geti(st, "uptime_s");
        printf("pergolad %s at %s\n", ver ? ver : "?", pg_client_address(c));
        printf("uptime       %lldd %02lld:%02lld:%02lld\n", up / 86400, up / 3600 % 24,
               up / 60 % 60, up % 60);
        printf("workers      %lld\n", geti(st, "workers"));
        printf("connections  %lld\n", geti(st, "connections"));
        json_t *jobs = json_object_get(st, "jobs");
        printf("jobs         %lld running, %lld completed, %lld failed, %lld cancelled\n",
               geti(jobs, "running"), geti(jobs, "completed"), geti(jobs, "failed"),
               geti(jobs, "cancelled"));
        json_t *mem = json_object_get(st, "memory");
        static const char *keys[][2] = {{"budget_bytes", "budget"},
                                        {"reserved_bytes", "reserved"},
                                        {"in_use_bytes", "in use"},
                                        {"cached_bytes", "cached"},
                                        {"peak_bytes", "peak"}};
        printf("memory      ");
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            char b[32];
            human_bytes(json_object_get(mem, keys[i][0]), b, sizeof b);
            printf("%s %s %s", i ? "," : "", keys[i][1], b);
        }
        printf("\n");
        printf("tasks run    %lld\n", geti(st, "tasks_run"));
        print_cache_status(json_object_get(st, "cache"));
        print_cluster(json_object_get(st, "cluster"));
    }
    json_decref(st);
    pg_client_destroy(&c);
    return status;
}

static int cmd_ping(const char *address, int argc, char **argv)
{
    long count = 1, interval = 1000;
    const char *v;
    for (int i = 0; i < argc; i++) {
        int m;
        if ((m = match_opt(argc, argv, &i, 'c', "count", &v)) != 0) {
            if (m < 0 || parse_int(v, 1, 1000000, &count) != 0)
                return usage_error("ping: -c needs a count > 0");
        } else if ((m = match_opt(argc, argv, &i, 'i', "interval", &v)) != 0) {
            if (m < 0 || parse_int(v, 0, 3600000, &interval) != 0)
                return usage_error("ping: -i needs milliseconds >= 0");
        } else if (match_opt(argc, argv, &i, 'h', "help", NULL)) {
            usage(stdout);
            return 0;
        } else {
            return usage_error("ping: unexpected argument '%s'", argv[i]);
        }
    }
    int status = 0;
    pg_client *c = connect_or_report(address, &status);
    if (c == NULL) return status;
    double min = INFINITY, max = 0, sum = 0;
    long ok = 0;
    for (long k = 1; k <= count; k++) {
        pg_error err;
        double rtt;
        if (pg_client_ping(c, &rtt, &err) < 0) {
            status = report(&err);
            break;
        }
        const char *ver = pg_client_server_version(c);
        printf("pong from %s (pergolad %s): seq=%ld time=%.3f ms\n", pg_client_address(c),
               ver ? ver : "?", k, rtt);
        fflush(stdout);
        ok++;
        sum += rtt;
        min = rtt < min ? rtt : min;
        max = rtt > max ? rtt : max;
        if (k < count && interval > 0) {
            struct timespec ts = {interval / 1000, (interval % 1000) * 1000000L};
            nanosleep(&ts, NULL);
        }
    }
    if (count > 1 && ok > 0)
        printf("%ld of %ld pings answered, time min/avg/max = %.3f/%.3f/%.3f ms\n", ok, count, min,
               sum / (double)ok, max);
    pg_client_destroy(&c);
    return status;
}

/* Writes TEXT + '\n' to PATH, created with MODE; refuses to overwrite. */
static int write_key(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
    if (fd < 0) {
        fprintf(stderr, "pergola: keygen: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char line[64];
    int n = snprintf(line, sizeof line, "%s\n", text);
    int rc = write(fd, line, (size_t)n) == n ? 0 : -1;
    if (close(fd) != 0) rc = -1;
    if (rc != 0) fprintf(stderr, "pergola: keygen: %s: %s\n", path, strerror(errno));
    return rc;
}

static int cmd_keygen(int argc, char **argv)
{
    if (argc > 0 && (strcmp(argv[0], "-h") == 0 || strcmp(argv[0], "--help") == 0)) {
        usage(stdout);
        return 0;
    }
    if (argc > 1) return usage_error("keygen: one PREFIX at most");
    if (argc == 1 && argv[0][0] == '-') return usage_error("keygen: unknown option '%s'", argv[0]);
    char pub[41], sec[41];
    if (pg_cluster_keygen(pub, sec) != 0) {
        fprintf(stderr, "pergola: keygen: this libzmq has no CURVE support\n");
        return EXIT_DAEMON;
    }
    if (argc == 0) {
        printf("public_key %s\nsecret_key %s\n", pub, sec);
        return 0;
    }
    char pp[4096], sp[4096];
    snprintf(pp, sizeof pp, "%s.public", argv[0]);
    snprintf(sp, sizeof sp, "%s.secret", argv[0]);
    if (write_key(sp, sec, 0600) != 0) return EXIT_DAEMON;
    if (write_key(pp, pub, 0644) != 0) {
        unlink(sp);
        return EXIT_DAEMON;
    }
    printf("%s\n", pub);
    return 0;
}

int main(int argc, char **argv)
{
    const char *address = NULL, *v;
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        int m;
        if ((m = match_opt(argc, argv, &i, 'C', "connect", &v)) != 0) {
            if (m < 0) return usage_error("option '%s' needs an address", argv[i]);
            address = v;
        } else if (match_opt(argc, argv, &i, 'h', "help", NULL)) {
            usage(stdout);
            return 0;
        } else if (match_opt(argc, argv, &i, 'V', "version", NULL)) {
            printf("pergola %s\n", PG_VERSION);
            return 0;
        } else {
            return usage_error("unknown option '%s'", argv[i]);
        }
    }
    if (i >= argc) {
        usage(stderr);
        return EXIT_USAGE;
    }
    if (address == NULL) address = pg_default_address();
    const char *cmd = argv[i++];
    int sub_argc = argc - i;
    char **sub_argv = argv + i;
    if (strcmp(cmd, "run") == 0) return cmd_run(address, sub_argc, sub_argv);
    if (strcmp(cmd, "ops") == 0) return cmd_ops(address, sub_argc, sub_argv);
    if (strcmp(cmd, "status") == 0) return cmd_status(address, sub_argc, sub_argv);
    if (strcmp(cmd, "ping") == 0) return cmd_ping(address, sub_argc, sub_argv);
    if (strcmp(cmd, "keygen") == 0) return cmd_keygen(sub_argc, sub_argv);
    if (strcmp(cmd, "help") == 0) {
        usage(stdout);
        return 0;
    }
    return usage_error("unknown command '%s'", cmd);
}
