/* The wire protocol's framing: newline-delimited JSON with declared-length
 * binary attachments (README.md, "Protocol").
 *
 * A message is one JSON object on one line. If it has "bytes": N (an
 * integer >= 0), exactly N raw bytes follow its newline. The framer is fed
 * whatever a socket read returned and calls back once per whole message; it
 * never blocks and never holds more than max_line bytes of a line or
 * max_attachment bytes of an attachment.
 */
#ifndef PG_PROTOCOL_H
#define PG_PROTOCOL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pg_framer pg_framer;

/* Called for each whole message, and for each line that is not one:
 * - CODE 0: MSG is the message, a new reference the callback owns. DATA/LEN
 *   is its attachment (owned by the framer: valid during the call only):
 *   NULL/0 without "bytes", non-NULL with LEN 0 for "bytes": 0. DETAIL NULL.
 * - CODE PG_EBADJSON: the line is not valid JSON or not a JSON object. MSG
 *   is NULL; DETAIL is jansson's message ("'[' or '{' expected near 'x'").
 *   Duplicate keys in an object count as invalid JSON.
 * - CODE PG_EBADREQ: the message's "bytes" is not an integer >= 0. MSG is
 *   NULL (pg_framer_current() gives the message, to echo its "id"); DETAIL
 *   says why. Since the attachment's length is unknown, what follows is
 *   read as lines; the session should answer and close the connection.
 * In every case a callback checks CODE (or MSG) before using the message.
 * DETAIL is valid during the call only. Blank lines (and "\r\n" endings)
 * are skipped silently. */
typedef void (*pg_framer_msg_fn)(void *ud, json_t *msg, int code, const char *detail,
                                 const void *data, size_t len);
/* Called when a line exceeds max_line or an attachment exceeds
 * max_attachment (CODE PG_ETOOLARGE), or when the framer cannot allocate a
 * line or an attachment buffer (CODE PG_ENOMEM). The framer then skips to
 * the next newline (line) or skips the attachment's bytes, and goes on.
 * For an attachment, pg_framer_current() gives the message whose attachment
 * was dropped (the message itself is not delivered); for a line it is NULL.
 * A line's limit counts the bytes before its '\n' (a '\r' included). */
typedef void (*pg_framer_err_fn)(void *ud, int code, const char *detail);

/* A new framer, or NULL (out of memory, ON_MSG NULL or MAX_LINE 0). ON_ERR
 * may be NULL (the errors are then only skipped). Callbacks run inside
 * pg_framer_feed() and must not feed or destroy the same framer. */
pg_framer *pg_framer_new(size_t max_line, size_t max_attachment, pg_framer_msg_fn on_msg,
                         pg_framer_err_fn on_err, void *ud);
/* Frees F and its buffers (and a message still waiting for its
 * attachment); sets *F to NULL. NULL and *F NULL are fine. */
void pg_framer_destroy(pg_framer **f);
/* Feeds LEN bytes. Returns 0 (callbacks may have run), or PG_EINVAL. */
int pg_framer_feed(pg_framer *f, const void *buf, size_t len);
/* During an error report about a message that did parse (PG_EBADREQ for
 * "bytes", an attachment too large): that message, borrowed, valid during
 * the callback only; NULL at all other times. */
const json_t *pg_framer_current(const pg_framer *f);

/* Encodes MSG (borrowed) as one line, with its trailing newline: a
 * malloc'd string, *len set. Compact, no embedded newlines. NULL on error. */
char *pg_proto_encode(const json_t *msg, size_t *len);

/* Helpers that build the daemon's events (each returns a new reference, or
 * NULL when out of memory). ID is borrowed (NULL gives json null, as for a
 * request that could not be parsed).
 * pg_proto_event: {"id": ID, "event": EVENT}.
 * pg_proto_error_event: {"id": ID, "event": "error", "error": {"code":
 * pg_err_name(CODE), "message": MESSAGE, "node": NODE}}; MESSAGE NULL or ""
 * gives pg_strerror(CODE); "node" is left out when NODE is NULL or "".
 * Bytes of MESSAGE or NODE that are not valid UTF-8 become '?'. */
json_t *pg_proto_error_event(json_t *id, int code, const char *message, const char *node);
json_t *pg_proto_event(json_t *id, const char *event);

#endif
