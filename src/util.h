/* Small helpers used everywhere: error filling, strings, time. */
#ifndef PG_UTIL_H
#define PG_UTIL_H

#include "pergola/error.h"

#include <stddef.h>
#include <stdint.h>

/* Fills ERR (if not NULL) with CODE and a printf-style message, clears its
 * node; returns CODE. */
int pg_error_set(pg_error *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Sets ERR's node name (truncated to fit). */
void pg_error_node(pg_error *err, const char *node);
/* Copies at most DSTSIZE-1 bytes and terminates; returns strlen(src). */
size_t pg_strlcpy(char *dst, const char *src, size_t dstsize);
/* Monotonic clock, nanoseconds. */
uint64_t pg_now_ns(void);

#define PG_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

#endif
