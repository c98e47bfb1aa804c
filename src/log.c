/* Logging: one line per message on stderr.
 *
 * Each line is formatted into a stack buffer and emitted with a single
 * write(2), so lines from different threads never interleave (POSIX keeps
 * writes to the same pipe atomic up to PIPE_BUF; for files and terminals a
 * single write is as good as it gets without a lock, and a lock would make
 * a slow stderr stall every thread that logs).
 *
 * Line format:
 *   2024-05-01T12:34:56.789Z INFO  [w3] message text
 */
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* Longest line we emit; longer messages are cut and end with "...". Kept
 * under PIPE_BUF so that a line to a pipe is written atomically. */
#define PG__LOG_LINE 4096

static atomic_int pg__log_level = PG_LOG_INFO;

/* The calling thread's tag; empty means "not named yet: use the tid". */
static _Thread_local char pg__log_tag[16];

static const char *const pg__log_names[] = {"error", "warn", "info", "debug"};
static const char *const pg__log_labels[] = {"ERROR", "WARN ", "INFO ", "DEBUG"};

void pg_log_set_level(int level)
{
    if (level < PG_LOG_ERROR) level = PG_LOG_ERROR;
    if (level > PG_LOG_DEBUG) level = PG_LOG_DEBUG;
    atomic_store_explicit(&pg__log_level, level, memory_order_relaxed);
}

int pg_log_get_level(void)
{
    return atomic_load_explicit(&pg__log_level, memory_order_relaxed);
}

int pg_log_parse_level(const char *name, int *level)
{
    if (name == NULL) return -1;
    for (int i = 0; i < (int)(sizeof pg__log_names / sizeof pg__log_names[0]); i++) {
        if (strcmp(name, pg__log_names[i]) == 0) {
            if (level != NULL) *level = i;
            return 0;
        }
    }
    return -1;
}

const char *pg_log_level_name(int level)
{
    if (level < PG_LOG_ERROR || level > PG_LOG_DEBUG) return "unknown";
    return pg__log_names[level];
}

void pg_log_set_thread(const char *tag)
{
    if (tag == NULL) tag = "";
    size_t n = strlen(tag);
    if (n >= sizeof pg__log_tag) n = sizeof pg__log_tag - 1;
    memcpy(pg__log_tag, tag, n);
    pg__log_tag[n] = '\0';
}

/* Writes all of BUF, retrying on EINTR and short writes. Errors are ignored:
 * there is nowhere left to report a failure to log. */
static void pg__log_write(const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t w = write(STDERR_FILENO, buf, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            return;
        }
        buf += w;
        len -= (size_t)w;
    }
}

void pg_log(int level, const char *fmt, ...)
{
    if (level > pg_log_get_level()) return;
    if (level < PG_LOG_ERROR) level = PG_LOG_ERROR;
    if (level > PG_LOG_DEBUG) level = PG_LOG_DEBUG;
    /* Callers often log and then look at errno: leave it as it was. */
    int saved_errno = errno;

    char line[PG__LOG_LINE];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(line, sizeof line, "%Y-%m-%dT%H:%M:%S", &tm);

    char tid[16];
    const char *tag = pg__log_tag;
    if (tag[0] == '\0') {
        snprintf(tid, sizeof tid, "%ld", (long)syscall(SYS_gettid));
        tag = tid;
    }
    int h = snprintf(line + n, sizeof line - n, ".%03ldZ %s [%s] ", ts.tv_nsec / 1000000L,
                     pg__log_labels[level], tag);
    if (h > 0) n += (size_t)h;

    /* vsnprintf writes at most cap-1 chars and a NUL; the newline takes
     * the NUL's place. */
    size_t cap = sizeof line - n;
    va_list ap;
    va_start(ap, fmt);
    int m = vsnprintf(line + n, cap, fmt, ap);
    va_end(ap);
    size_t body = 0;
    if (m > 0) {
        body = (size_t)m < cap ? (size_t)m : cap - 1;
        if ((size_t)m >= cap && body >= 3) memcpy(line + n + body - 3, "...", 3);
    }
    /* One message, one line: a message carrying newlines (an error text
     * from a library, a path) must not forge extra log lines. */
    for (size_t i = n; i < n + body; i++) {
        if (line[i] == '\n' || line[i] == '\r') line[i] = ' ';
    }
    n += body;
    line[n++] = '\n';
    pg__log_write(line, n);
    errno = saved_errno;
}
