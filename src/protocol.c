/* The wire protocol's framing: newline-delimited JSON with declared-length
 * binary attachments, and the encoder and event builders for answers.
 *
 * The framer is a small state machine over whatever the socket delivered:
 * it accumulates a line (at most max_line bytes), parses it with jansson,
 * and if the message declares "bytes": N it then collects exactly N raw
 * bytes before calling back. Input may arrive one byte at a time or as many
 * messages at once; no state depends on how the stream was cut.
 */
#include "protocol.h"

#include "pergola/error.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    PG__FR_LINE,       /* reading a line */
    PG__FR_SKIP_LINE,  /* discarding the rest of a line that was too long */
    PG__FR_ATTACH,     /* collecting a message's attachment */
    PG__FR_SKIP_ATTACH /* discarding an attachment that was too large */
};

/* A line buffer grown past this is freed after use, so that one big request
 * does not pin max_line bytes on an idle connection for good. */
#define PG__FR_KEEP 65536

struct pg_framer {
    size_t max_line, max_attachment;
    pg_framer_msg_fn on_msg;
    pg_framer_err_fn on_err;
    void *ud;
    int state;

    char *line; /* the partial line */
    size_t len, cap;

    json_t *pending;    /* message waiting for its attachment */
    unsigned char *att; /* its attachment so far */
    size_t att_len;     /* declared size */
    size_t att_have;    /* bytes collected */
    uint64_t skip;      /* attachment bytes still to discard */
    json_t *current;    /* see pg_framer_current(); borrowed */
    char detail[160];   /* text handed to a callback */
};

pg_framer *pg_framer_new(size_t max_line, size_t max_attachment, pg_framer_msg_fn on_msg,
                         pg_framer_err_fn on_err, void *ud)
{
    if (on_msg == NULL || max_line == 0) return NULL;
    pg_framer *f = calloc(1, sizeof *f);
    if (f == NULL) return NULL;
    f->max_line = max_line;
    f->max_attachment = max_attachment;
    f->on_msg = on_msg;
    f->on_err = on_err;
    f->ud = ud;
    f->state = PG__FR_LINE;
    return f;
}

void pg_framer_destroy(pg_framer **fp)
{
    if (fp == NULL || *fp == NULL) return;
    pg_framer *f = *fp;
    free(f->line);
    free(f->att);
    json_decref(f->pending);
    free(f);
    *fp = NULL;
}

const json_t *pg_framer_current(const pg_framer *f)
{
    return f != NULL ? f->current : NULL;
}

static void pg__fr_err(pg_framer *f, int code, json_t *msg)
{
    f->current = msg;
    if (f->on_err != NULL) f->on_err(f->ud, code, f->detail);
    f->current = NULL;
}

static void pg__fr_drop_line(pg_framer *f)
{
    f->len = 0;
    if (f->cap > PG__FR_KEEP) {
        free(f->line);
        f->line = NULL;
        f->cap = 0;
    }
}

/* A whole line S/N (newline removed) has arrived. */
static void pg__fr_line(pg_framer *f, const char *s, size_t n)
{
    /* "\r\n" endings and blank lines (someone typing into nc) are fine. */
    while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    if (i == n) return;

    json_error_t je;
    json_t *msg = json_loadb(s, n, JSON_REJECT_DUPLICATES, &je);
    if (msg == NULL) {
        f->on_msg(f->ud, NULL, PG_EBADJSON, je.text, NULL, 0);
        return;
    }
    if (!json_is_object(msg)) {
        json_decref(msg);
        f->on_msg(f->ud, NULL, PG_EBADJSON, "a message must be a JSON object", NULL, 0);
        return;
    }
    json_t *b = json_object_get(msg, "bytes");
    if (b == NULL) {
        f->on_msg(f->ud, msg, 0, NULL, NULL, 0);
        return;
    }
    if (!json_is_integer(b) || json_integer_value(b) < 0) {
        /* We cannot know how many raw bytes follow, so reading goes on as
         * lines; the session will normally answer and close. */
        f->current = msg;
        f->on_msg(f->ud, NULL, PG_EBADREQ, "\"bytes\" must be an integer >= 0", NULL, 0);
        f->current = NULL;
        json_decref(msg);
        return;
    }
    uint64_t nb = (uint64_t)json_integer_value(b);
    if (nb > f->max_attachment) {
        snprintf(f->detail, sizeof f->detail,
                 "an attachment of %llu bytes exceeds the limit of %zu bytes",
                 (unsigned long long)nb, f->max_attachment);
        pg__fr_err(f, PG_ETOOLARGE, msg);
        json_decref(msg);
        f->skip = nb;
        if (nb > 0) f->state = PG__FR_SKIP_ATTACH;
        return;
    }
    if (nb == 0) {
        /* Declared but empty: DATA is non-NULL so the callee can tell it
         * from "no attachment". */
        f->on_msg(f->ud, msg, 0, NULL, "", 0);
        return;
    }
    /* The buffer is allocated when the first bytes arrive, and not at all
     * when they all arrive in one read. */
    f->pending = msg;
    f->att_len = (size_t)nb;
    f->att_have = 0;
    f->state = PG__FR_ATTACH;
}

/* Appends S/N to the line buffer; N fits in max_line (checked by caller). */
static int pg__fr_append(pg_framer *f, const char *s, size_t n)
{
    size_t need = f->len + n;
    if (need > f->cap) {
        size_t cap = f->cap ? f->cap : 1024;
        while (cap < need)
            cap *= 2;
        if (cap > f->max_line) cap = f->max_line;
        char *p = realloc(f->line, cap);
        if (p == NULL) return -1;
        f->line = p;
        f->cap = cap;
    }
    memcpy(f->line + f->len, s, n);
    f->len = need;
    return 0;
}

static void pg__fr_deliver(pg_framer *f, const void *data)
{
    json_t *msg = f->pending;
    f->pending = NULL;
    f->state = PG__FR_LINE;
    f->on_msg(f->ud, msg, 0, NULL, data, f->att_len);
    free(f->att);
    f->att = NULL;
    f->att_len = f->att_have = 0;
}

int pg_framer_feed(pg_framer *f, const void *buf, size_t len)
{
    if (f == NULL || (buf == NULL && len > 0)) return PG_EINVAL;
    const char *p = buf;
    while (len > 0) {
        switch (f->state) {
        case PG__FR_LINE: {
            const char *nl = memchr(p, '\n', len);
            size_t chunk = nl ? (size_t)(nl - p) : len;
            if (chunk > f->max_line - f->len) {
                snprintf(f->detail, sizeof f->detail, "a line is longer than %zu bytes",
                         f->max_line);
                pg__fr_drop_line(f);
                pg__fr_err(f, PG_ETOOLARGE, NULL);
                if (nl == NULL) {
                    f->state = PG__FR_SKIP_LINE;
                    return 0;
                }
                p += chunk + 1;
                len -= chunk + 1;
                break;
            }
            if (nl == NULL) {
                if (pg__fr_append(f, p, chunk) != 0) {
                    /* Cannot hold the line: report and drop it whole. */
                    snprintf(f->detail, sizeof f->detail, "cannot allocate a line buffer");
                    pg__fr_drop_line(f);
                    pg__fr_err(f, PG_ENOMEM, NULL);
                    f->state = PG__FR_SKIP_LINE;
                }
                return 0;
            }
            p += chunk + 1;
            len -= chunk + 1;
            if (f->len == 0) {
                /* The whole line is in this read: parse it in place. */
                pg__fr_line(f, nl - chunk, chunk);
            } else if (pg__fr_append(f, nl - chunk, chunk) != 0) {
                snprintf(f->detail, sizeof f->detail, "cannot allocate a line buffer");
                pg__fr_drop_line(f);
                pg__fr_err(f, PG_ENOMEM, NULL);
            } else {
                pg__fr_line(f, f->line, f->len);
                pg__fr_drop_line(f);
            }
            break;
        }
        case PG__FR_SKIP_LINE: {
            const char *nl = memchr(p, '\n', len);
            if (nl == NULL) return 0;
            len -= (size_t)(nl + 1 - p);
            p = nl + 1;
            f->state = PG__FR_LINE;
            break;
        }
        case PG__FR_ATTACH: {
            size_t want = f->att_len - f->att_have;
            if (f->att_have == 0 && len >= want) {
                /* The whole attachment is in this read: no copy. */
                pg__fr_deliver(f, p);
                p += want;
                len -= want;
                break;
            }
            if (f->att == NULL && (f->att = malloc(f->att_len)) == NULL) {
                snprintf(f->detail, sizeof f->detail, "cannot allocate an attachment of %zu bytes",
                         f->att_len);
                pg__fr_err(f, PG_ENOMEM, f->pending);
                json_decref(f->pending);
                f->pending = NULL;
                f->skip = f->att_len;
                f->att_len = 0;
                f->state = PG__FR_SKIP_ATTACH;
                break;
            }
            size_t n = len < want ? len : want;
            memcpy(f->att + f->att_have, p, n);
            f->att_have += n;
            p += n;
            len -= n;
            if (f->att_have == f->att_len) pg__fr_deliver(f, f->att);
            break;
        }
        case PG__FR_SKIP_ATTACH: {
            size_t n = (uint64_t)len < f->skip ? len : (size_t)f->skip;
            f->skip -= n;
            p += n;
            len -= n;
            if (f->skip == 0) f->state = PG__FR_LINE;
            break;
        }
        }
    }
    return 0;
}

/* ---- encoding ---------------------------------------------------------- */

typedef struct {
    char *p;
    size_t n, cap;
} pg__sbuf;

static int pg__sbuf_add(const char *buf, size_t size, void *data)
{
    pg__sbuf *b = data;
    if (b->n + size + 2 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + size + 2)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, buf, size);
    b->n += size;
    return 0;
}

char *pg_proto_encode(const json_t *msg, size_t *len)
{
    if (msg == NULL) return NULL;
    /* One pass into our own buffer: the result is free()able whatever
     * allocator jansson was given, and there is room for the newline. */
    pg__sbuf b = {NULL, 0, 0};
    if (json_dump_callback(msg, pg__sbuf_add, &b, JSON_COMPACT) != 0 ||
        pg__sbuf_add("", 0, &b) != 0) {
        free(b.p);
        return NULL;
    }
    b.p[b.n++] = '\n';
    b.p[b.n] = '\0';
    if (len != NULL) *len = b.n;
    return b.p;
}

/* ---- events ------------------------------------------------------------ */

/* The length of the valid UTF-8 sequence at S (N bytes left), or 0. */
static size_t pg__utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    unsigned lo = 0x80, hi = 0xBF; /* allowed range of the second byte */
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        if (c == 0xE0) lo = 0xA0; /* no overlongs */
        if (c == 0xED) hi = 0x9F; /* no surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        if (c == 0xF0) lo = 0x90;
        if (c == 0xF4) hi = 0x8F; /* <= U+10FFFF */
    } else {
        return 0;
    }
    if (n < len || s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < len; i++)
        if ((s[i] & 0xC0) != 0x80) return 0;
    return len;
}

/* A JSON string from text that may not be valid UTF-8: messages quote user
 * paths and library errors, and pg_error cuts them at a byte count that can
 * split a character. Invalid bytes become '?'. */
static json_t *pg__json_text(const char *s)
{
    json_t *j = json_string(s);
    if (j != NULL) return j;
    size_t n = strlen(s);
    char *t = malloc(n + 1);
    if (t == NULL) return NULL;
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        size_t k = pg__utf8_seq(u + i, n - i);
        if (k == 0) {
            t[i++] = '?';
        } else {
            memcpy(t + i, s + i, k);
            i += k;
        }
    }
    t[n] = '\0';
    j = json_string(t);
    free(t);
    return j;
}

json_t *pg_proto_event(json_t *id, const char *event)
{
    if (event == NULL) return NULL;
    json_t *o = json_object();
    if (o == NULL) return NULL;
    if (json_object_set_new(o, "id", id != NULL ? json_incref(id) : json_null()) != 0 ||
        json_object_set_new(o, "event", json_string(event)) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

json_t *pg_proto_error_event(json_t *id, int code, const char *message, const char *node)
{
    json_t *o = pg_proto_event(id, "error");
    json_t *e = json_object();
    if (o == NULL || e == NULL) goto fail;
    if (message == NULL || message[0] == '\0') message = pg_strerror(code);
    if (json_object_set_new(e, "code", json_string(pg_err_name(code))) != 0 ||
        json_object_set_new(e, "message", pg__json_text(message)) != 0)
        goto fail;
    if (node != NULL && node[0] != '\0' && json_object_set_new(e, "node", pg__json_text(node)) != 0)
        goto fail;
    if (json_object_set_new(o, "error", e) != 0) {
        e = NULL; /* set_new consumed it */
        goto fail;
    }
    return o;
fail:
    json_decref(e);
    json_decref(o);
    return NULL;
}
