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

/* Called for each whole message. MSG is a new reference the callback owns
 * (NULL when the line was not valid JSON or not an object: then CODE is
 * PG_EBADJSON and TEXT/TEXTLEN is the line, for the error message). DATA/LEN
 * is the attachment (owned by the framer: valid during the call only). */
typedef void (*pg_framer_msg_fn)(void *ud, json_t *msg, int code, const char *detail,
                                 const void *data, size_t len);
/* Called when a line exceeds max_line (CODE PG_ETOOLARGE) or an attachment
 * exceeds max_attachment. The framer then skips to the next newline (line
 * too long) and goes on; for an attachment too large it skips its bytes. */
typedef void (*pg_framer_err_fn)(void *ud, int code, const char *detail);

pg_framer *pg_framer_new(size_t max_line, size_t max_attachment, pg_framer_msg_fn on_msg,
                         pg_framer_err_fn on_err, void *ud);
void pg_framer_destroy(pg_framer **f);
/* Feeds LEN bytes. Returns 0 (callbacks may have run). */
int pg_framer_feed(pg_framer *f, const void *buf, size_t len);

/* Encodes MSG (borrowed) as one line, with its trailing newline: a
 * malloc'd string, *len set. Compact, no embedded newlines. NULL on error. */
char *pg_proto_encode(const json_t *msg, size_t *len);

/* Helpers that build the daemon's events (each returns a new reference). ID
 * is borrowed (json null if the request had none). */
json_t *pg_proto_error_event(json_t *id, int code, const char *message, const char *node);
json_t *pg_proto_event(json_t *id, const char *event);

#endif
