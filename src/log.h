/* Logging: one line per event on stderr, with time, level and thread.
 * Thread-safe (each line is one write). */
#ifndef PG_LOG_H
#define PG_LOG_H

enum { PG_LOG_ERROR = 0, PG_LOG_WARN, PG_LOG_INFO, PG_LOG_DEBUG };

void pg_log_set_level(int level);
int pg_log_get_level(void);
/* "error" "warn" "info" "debug" -> level; returns 0 or -1. */
int pg_log_parse_level(const char *name, int *level);
void pg_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define pg_log_error(...) pg_log(PG_LOG_ERROR, __VA_ARGS__)
#define pg_log_warn(...) pg_log(PG_LOG_WARN, __VA_ARGS__)
#define pg_log_info(...) pg_log(PG_LOG_INFO, __VA_ARGS__)
#define pg_log_debug(...)                                                                          \
    do {                                                                                           \
        if (pg_log_get_level() >= PG_LOG_DEBUG) pg_log(PG_LOG_DEBUG, __VA_ARGS__);                 \
    } while (0)

#endif
