/* Logging: one line per event on stderr, with time, level and thread.
 * Thread-safe (each line is one write). A line looks like
 *   2024-05-01T12:34:56.789Z INFO  [w3] message
 * (UTC, milliseconds; newlines in the message become spaces; lines are cut
 * at 4 KiB). pg_log() leaves errno as it found it. */
#ifndef PG_LOG_H
#define PG_LOG_H

enum { PG_LOG_ERROR = 0, PG_LOG_WARN, PG_LOG_INFO, PG_LOG_DEBUG };

/* The global level (atomic; out-of-range values are clamped). Messages
 * above it are dropped. Default PG_LOG_INFO. */
void pg_log_set_level(int level);
int pg_log_get_level(void);
/* "error" "warn" "info" "debug" -> level; returns 0 or -1 (then *level is
 * left alone). Exact lowercase names only, as in the config file. */
int pg_log_parse_level(const char *name, int *level);
/* The inverse: "error" ... "debug", or "unknown". */
const char *pg_log_level_name(int level);
/* Names the calling thread in its log lines ("loop", "w3"; at most 15
 * bytes, longer tags are cut). A thread that never names itself is shown by
 * its kernel thread id. */
void pg_log_set_thread(const char *tag);
void pg_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define pg_log_error(...) pg_log(PG_LOG_ERROR, __VA_ARGS__)
#define pg_log_warn(...) pg_log(PG_LOG_WARN, __VA_ARGS__)
#define pg_log_info(...) pg_log(PG_LOG_INFO, __VA_ARGS__)
#define pg_log_debug(...)                                                                          \
    do {                                                                                           \
        if (pg_log_get_level() >= PG_LOG_DEBUG) pg_log(PG_LOG_DEBUG, __VA_ARGS__);                 \
    } while (0)

#endif
