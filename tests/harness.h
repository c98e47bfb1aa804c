/* Test harness: a real pergolad on an ephemeral 127.0.0.1 port, in a
 * temporary data root, stopped by SIGTERM (SIGKILL if it hangs) when the
 * test is done. Also raw NDJSON exchange, for tests that must send bytes no
 * client library would send, and sample rasters through pergola-mkraster.
 * Every wait here is bounded. */
#ifndef PG_TEST_HARNESS_H
#define PG_TEST_HARNESS_H

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct th_daemon {
    pid_t pid;
    int port;
    char root[256];   /* the data root (a fresh temporary directory) */
    char address[64]; /* "127.0.0.1:PORT" */
    char log[300];    /* the daemon's stderr */
} th_daemon;

/* Makes a fresh temporary data root in D->root. */
void th_root_init(th_daemon *d);
/* Starts pergolad ($PERGOLAD) with data root D->root (call th_root_init
 * first), listening on 127.0.0.1:0, with EXTRA flags (NULL-terminated list,
 * may be NULL). Waits (at most 20 s) for its ready file. Returns 0 or -1. */
int th_start(th_daemon *d, const char *const *extra);
/* SIGTERM, wait up to 20 s (then SIGKILL). Returns the exit status (or -1
 * if it had to be killed / died of a signal). Does not remove the root. */
int th_stop(th_daemon *d);
/* rm -rf D->root. */
void th_cleanup(th_daemon *d);

/* Runs pergola-mkraster ($PERGOLA_MKRASTER) to make ROOT/NAME with ARGS (a
 * space-separated option string). Returns its exit status. */
int th_mkraster(const char *root, const char *name, const char *args);

/* A raw connection: returns a socket fd connected to D, or -1. */
int th_connect(const th_daemon *d);
/* Sends TEXT as is (add your own '\n'). Returns 0 or -1. */
int th_send(int fd, const char *text, size_t len);
/* Reads one line (without '\n') with a timeout: returns the parsed JSON
 * object (new reference) or NULL on timeout/EOF/bad JSON. */
json_t *th_recv(int fd, int timeout_ms);
/* Reads N raw bytes following a line (attachments). Returns 0 or -1. */
int th_recv_bytes(int fd, void *buf, size_t n, int timeout_ms);
/* Sends one request line and returns the next answer that is terminal for
 * that id ("result" or "error"), skipping accepted/progress. NULL on
 * timeout. */
json_t *th_request(int fd, const char *line, int timeout_ms);
/* The error code string of an error event, or "" if EV is not one. */
const char *th_code(const json_t *ev);
/* The error's node, or "". */
const char *th_node(const json_t *ev);
/* True if D answers a ping on a new connection. */
int th_ping(const th_daemon *d);
/* Number of directory entries in ROOT/SUBDIR whose name contains NEEDLE
 * (e.g. ".tmp" for leftovers of an aborted write). */
int th_count_files(const char *root, const char *subdir, const char *needle);

#endif
