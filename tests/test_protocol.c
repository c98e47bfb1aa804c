/* Unit tests for src/protocol.c: the NDJSON framer, the encoder, events. */
#include "protocol.h"

#include "pergola/error.h"
#include "util.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* What the callbacks saw, one record per call, in order. */
typedef struct {
    char kind; /* 'm' message, 'e' error */
    int code;
    char *json;   /* the message, compact; NULL if none */
    char *detail; /* NULL if none */
    char *data;   /* copy of the attachment; NULL if none */
    size_t len;
    char *current; /* pg_framer_current() during the call, compact */
} rec;

typedef struct {
    rec r[64];
    int n;
    pg_framer *f;
} log_t;

static char *dup_or_null(const char *s)
{
    return s ? strdup(s) : NULL;
}

static char *dump(const json_t *j)
{
    return j ? json_dumps(j, JSON_COMPACT) : NULL;
}

static void on_msg(void *ud, json_t *msg, int code, const char *detail, const void *data,
                   size_t len)
{
    log_t *l = ud;
    ck_assert_int_lt(l->n, 64);
    rec *r = &l->r[l->n++];
    r->kind = 'm';
    r->code = code;
    r->json = dump(msg);
    r->detail = dup_or_null(detail);
    r->data = NULL;
    if (data != NULL) {
        r->data = malloc(len + 1);
        memcpy(r->data, data, len);
        r->data[len] = '\0';
    }
    r->len = len;
    r->current = dump(pg_framer_current(l->f));
    json_decref(msg);
}

static void on_err(void *ud, int code, const char *detail)
{
    log_t *l = ud;
    ck_assert_int_lt(l->n, 64);
    rec *r = &l->r[l->n++];
    memset(r, 0, sizeof *r);
    r->kind = 'e';
    r->code = code;
    r->detail = dup_or_null(detail);
    r->current = dump(pg_framer_current(l->f));
}

static void log_reset(log_t *l)
{
    for (int i = 0; i < l->n; i++) {
        free(l->r[i].json);
        free(l->r[i].detail);
        free(l->r[i].data);
        free(l->r[i].current);
    }
    l->n = 0;
}

static log_t *log_new(size_t max_line, size_t max_att)
{
    log_t *l = calloc(1, sizeof *l);
    l->f = pg_framer_new(max_line, max_att, on_msg, on_err, l);
    ck_assert_ptr_nonnull(l->f);
    return l;
}

static void log_free(log_t *l)
{
    log_reset(l);
    pg_framer_destroy(&l->f);
    ck_assert_ptr_null(l->f);
    free(l);
}

static void feed(log_t *l, const void *buf, size_t len)
{
    ck_assert_int_eq(pg_framer_feed(l->f, buf, len), 0);
}

static void feed_bytewise(log_t *l, const char *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        feed(l, buf + i, 1);
}

static void expect_msg(const rec *r, const char *json, const char *data, size_t len)
{
    ck_assert_int_eq(r->kind, 'm');
    ck_assert_int_eq(r->code, 0);
    ck_assert_ptr_null(r->detail);
    ck_assert_str_eq(r->json, json);
    if (data == NULL) {
        ck_assert_ptr_null(r->data);
    } else {
        ck_assert_ptr_nonnull(r->data);
        ck_assert_uint_eq(r->len, len);
        ck_assert_mem_eq(r->data, data, len);
    }
}

/* A stream with every kind of thing in it, and what it must produce. */
static const char stream[] = "{\"id\":1,\"type\":\"ping\"}\n"
                             "\n"
                             "{\"id\":2,\"bytes\":5}\na\nb\n\x00"
                             "   \r\n"
                             "{\"id\":3,\"x\":[1,2]}\r\n"
                             "{\"id\":4,\"bytes\":0}\n"
                             "{nope\n"
                             "{\"id\":5,\"bytes\":3}\n{\n}"
                             "[1]\n"
                             "{\"id\":6,\"bytes\":-1}\n"
                             "{\"id\":7}";
static const size_t stream_len = sizeof stream - 1;

static void check_stream(log_t *l, int final_fed)
{
    json_error_t je;
    json_t *j = json_loads("{nope", 0, &je);
    ck_assert_ptr_null(j);
    ck_assert_int_eq(l->n, final_fed ? 9 : 8);
    expect_msg(&l->r[0], "{\"id\":1,\"type\":\"ping\"}", NULL, 0);
    expect_msg(&l->r[1], "{\"id\":2,\"bytes\":5}", "a\nb\n\0", 5);
    expect_msg(&l->r[2], "{\"id\":3,\"x\":[1,2]}", NULL, 0);
    expect_msg(&l->r[3], "{\"id\":4,\"bytes\":0}", "", 0);
    ck_assert_int_eq(l->r[4].kind, 'm');
    ck_assert_int_eq(l->r[4].code, PG_EBADJSON);
    ck_assert_ptr_null(l->r[4].json);
    ck_assert_str_eq(l->r[4].detail, je.text);
    ck_assert_ptr_null(l->r[4].current);
    expect_msg(&l->r[5], "{\"id\":5,\"bytes\":3}", "{\n}", 3);
    ck_assert_int_eq(l->r[6].code, PG_EBADJSON);
    ck_assert_ptr_null(l->r[6].json);
    ck_assert_str_eq(l->r[6].detail, "a message must be a JSON object");
    ck_assert_int_eq(l->r[7].kind, 'm');
    ck_assert_int_eq(l->r[7].code, PG_EBADREQ);
    ck_assert_ptr_null(l->r[7].json);
    ck_assert_str_eq(l->r[7].detail, "\"bytes\" must be an integer >= 0");
    ck_assert_str_eq(l->r[7].current, "{\"id\":6,\"bytes\":-1}");
    if (final_fed) expect_msg(&l->r[8], "{\"id\":7}", NULL, 0);
}

START_TEST(stream_whole)
{
    log_t *l = log_new(1024, 1024);
    feed(l, stream, stream_len);
    check_stream(l, 0);
    feed(l, "\n", 1);
    check_stream(l, 1);
    log_free(l);
}
END_TEST

START_TEST(stream_byte_by_byte)
{
    log_t *l = log_new(1024, 1024);
    feed_bytewise(l, stream, stream_len);
    check_stream(l, 0);
    feed(l, "\n", 1);
    check_stream(l, 1);
    log_free(l);
}
END_TEST

/* Cut in two at every position, and in three at every pair of positions:
 * the same messages every time. */
START_TEST(stream_every_split)
{
    for (size_t i = 0; i <= stream_len; i++) {
        log_t *l = log_new(1024, 1024);
        feed(l, stream, i);
        feed(l, stream + i, stream_len - i);
        feed(l, "\n", 1);
        check_stream(l, 1);
        log_free(l);
    }
    for (size_t i = 0; i <= stream_len; i += 3) {
        for (size_t k = i; k <= stream_len; k += 2) {
            log_t *l = log_new(1024, 1024);
            feed(l, stream, i);
            feed(l, stream + i, k - i);
            feed(l, stream + k, stream_len - k);
            feed(l, "\n", 1);
            check_stream(l, 1);
            log_free(l);
        }
    }
}
END_TEST

START_TEST(many_in_one_feed)
{
    log_t *l = log_new(1024, 1024);
    char buf[4096];
    size_t n = 0;
    for (int i = 0; i < 50; i++)
        n += (size_t)snprintf(buf + n, sizeof buf - n, "{\"id\":%d}\n", i);
    feed(l, buf, n);
    ck_assert_int_eq(l->n, 50);
    for (int i = 0; i < 50; i++) {
        char want[32];
        snprintf(want, sizeof want, "{\"id\":%d}", i);
        expect_msg(&l->r[i], want, NULL, 0);
    }
    log_free(l);
}
END_TEST

START_TEST(attachment_split)
{
    log_t *l = log_new(1024, 1024);
    /* Header and the first two bytes, then the rest with the next message. */
    const char *a = "{\"id\":\"r\",\"bytes\":6}\n\x01\x02";
    feed(l, a, strlen(a));
    ck_assert_int_eq(l->n, 0);
    feed(l, "\x03", 1);
    ck_assert_int_eq(l->n, 0);
    feed(l, "\n\r\xff{\"id\":9}\n", 12);
    ck_assert_int_eq(l->n, 2);
    expect_msg(&l->r[0], "{\"id\":\"r\",\"bytes\":6}", "\x01\x02\x03\n\r\xff", 6);
    expect_msg(&l->r[1], "{\"id\":9}", NULL, 0);
    log_reset(l);

    /* Exactly at the limit is fine. */
    char big[1100];
    int h = snprintf(big, sizeof big, "{\"bytes\":1024}\n");
    memset(big + h, 'z', 1024);
    feed(l, big, (size_t)h + 1024);
    ck_assert_int_eq(l->n, 1);
    ck_assert_uint_eq(l->r[0].len, 1024);
    ck_assert_int_eq(l->r[0].data[1023], 'z');
    log_free(l);
}
END_TEST

START_TEST(attachment_too_large)
{
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        log_t *l = log_new(1024, 4);
        const char *s = "{\"id\":7,\"bytes\":10}\n0123456789{\"id\":8}\n";
        if (bytewise)
            feed_bytewise(l, s, strlen(s));
        else
            feed(l, s, strlen(s));
        ck_assert_int_eq(l->n, 2);
        ck_assert_int_eq(l->r[0].kind, 'e');
        ck_assert_int_eq(l->r[0].code, PG_ETOOLARGE);
        ck_assert_str_eq(l->r[0].detail, "an attachment of 10 bytes exceeds the limit of 4 bytes");
        ck_assert_str_eq(l->r[0].current, "{\"id\":7,\"bytes\":10}");
        expect_msg(&l->r[1], "{\"id\":8}", NULL, 0);
        log_free(l);
    }
}
END_TEST

START_TEST(line_too_long)
{
    for (int bytewise = 0; bytewise < 2; bytewise++) {
        log_t *l = log_new(32, 1024);
        char buf[512];
        /* 100 bytes, then a good line, then a line of exactly 32 bytes,
         * then one of 33, then a good one. */
        size_t n = 0;
        memset(buf, 'x', 100);
        n = 100;
        n += (size_t)snprintf(buf + n, sizeof buf - n, "\n{\"id\":1}\n");
        const char *exact = "{\"id\":2,\"pad\":\"xxxxxxxxxxxxxxx\"}"; /* 32 bytes */
        ck_assert_uint_eq(strlen(exact), 32);
        n += (size_t)snprintf(buf + n, sizeof buf - n, "%s\n", exact);
        n += (size_t)snprintf(buf + n, sizeof buf - n, "{\"id\":3,\"pad\":\"xxxxxxxxxxxxxxx\"} \n");
        n += (size_t)snprintf(buf + n, sizeof buf - n, "{\"id\":4}\n");
        if (bytewise)
            feed_bytewise(l, buf, n);
        else
            feed(l, buf, n);
        ck_assert_int_eq(l->n, 5);
        ck_assert_int_eq(l->r[0].kind, 'e');
        ck_assert_int_eq(l->r[0].code, PG_ETOOLARGE);
        ck_assert_str_eq(l->r[0].detail, "a line is longer than 32 bytes");
        ck_assert_ptr_null(l->r[0].current);
        expect_msg(&l->r[1], "{\"id\":1}", NULL, 0);
        expect_msg(&l->r[2], exact, NULL, 0);
        ck_assert_int_eq(l->r[3].kind, 'e');
        ck_assert_int_eq(l->r[3].code, PG_ETOOLARGE);
        expect_msg(&l->r[4], "{\"id\":4}", NULL, 0);
        log_free(l);
    }
}
END_TEST

/* Megabytes without a newline: one error, then recovery; nothing kept. */
START_TEST(line_endless)
{
    log_t *l = log_new(1024, 1024);
    char *junk = malloc(1 << 20);
    memset(junk, '{', 1 << 20);
    for (int i = 0; i < 8; i++)
        feed(l, junk, 1 << 20);
    free(junk);
    ck_assert_int_eq(l->n, 1);
    ck_assert_int_eq(l->r[0].code, PG_ETOOLARGE);
    feed(l, "\n{\"id\":1}\n", 10);
    ck_assert_int_eq(l->n, 2);
    expect_msg(&l->r[1], "{\"id\":1}", NULL, 0);
    log_free(l);
}
END_TEST

START_TEST(bad_json_recovery)
{
    static const char *bad[] = {
        "{nope",   "42", "\"str\"", "{\"a\":1} x", "{\"a\":1,\"a\":2}", "{\"a\":\"\\u0000\"}",
        "nul\x00l"};
    for (size_t i = 0; i < PG_ARRAY_SIZE(bad); i++) {
        log_t *l = log_new(1024, 1024);
        size_t bl = i == 6 ? 5 : strlen(bad[i]);
        json_error_t je;
        json_t *j = json_loadb(bad[i], bl, JSON_REJECT_DUPLICATES, &je);
        ck_assert_ptr_null(j);
        feed(l, bad[i], bl);
        feed(l, "\n{\"id\":1}\n", 10);
        ck_assert_int_eq(l->n, 2);
        ck_assert_int_eq(l->r[0].kind, 'm');
        ck_assert_int_eq(l->r[0].code, PG_EBADJSON);
        ck_assert_ptr_null(l->r[0].json);
        ck_assert_str_eq(l->r[0].detail, je.text);
        expect_msg(&l->r[1], "{\"id\":1}", NULL, 0);
        log_free(l);
    }
}
END_TEST

START_TEST(bad_bytes)
{
    static const char *bad[] = {"\"5\"", "1.5", "-1", "null", "true", "[1]"};
    for (size_t i = 0; i < PG_ARRAY_SIZE(bad); i++) {
        log_t *l = log_new(1024, 1024);
        char line[64], want[64];
        snprintf(line, sizeof line, "{\"id\":\"q\",\"bytes\":%s}\n{\"id\":2}\n", bad[i]);
        snprintf(want, sizeof want, "{\"id\":\"q\",\"bytes\":%s}", bad[i]);
        feed(l, line, strlen(line));
        ck_assert_int_eq(l->n, 2);
        ck_assert_int_eq(l->r[0].kind, 'm');
        ck_assert_int_eq(l->r[0].code, PG_EBADREQ);
        ck_assert_ptr_null(l->r[0].json);
        ck_assert_ptr_null(l->r[0].data);
        ck_assert_str_eq(l->r[0].detail, "\"bytes\" must be an integer >= 0");
        ck_assert_str_eq(l->r[0].current, want);
        expect_msg(&l->r[1], "{\"id\":2}", NULL, 0);
        log_free(l);
    }
}
END_TEST

START_TEST(crlf_and_blank_lines)
{
    log_t *l = log_new(1024, 1024);
    const char *s = "\r\n\n  \t \r\n{\"id\":1}\r\n\r\n{\"id\":2} \t\r\n";
    feed(l, s, strlen(s));
    ck_assert_int_eq(l->n, 2);
    expect_msg(&l->r[0], "{\"id\":1}", NULL, 0);
    expect_msg(&l->r[1], "{\"id\":2}", NULL, 0);
    log_reset(l);
    /* The attachment begins right after "\r\n". */
    s = "{\"bytes\":2}\r\nab";
    feed(l, s, strlen(s));
    ck_assert_int_eq(l->n, 1);
    expect_msg(&l->r[0], "{\"bytes\":2}", "ab", 2);
    log_free(l);
}
END_TEST

START_TEST(destroy_mid_attachment)
{
    log_t *l = log_new(1024, 1024);
    const char *s = "{\"bytes\":100}\nabc";
    feed(l, s, strlen(s));
    ck_assert_int_eq(l->n, 0);
    log_free(l); /* no leak of the pending message or buffer (ASan) */

    l = log_new(1024, 1024);
    feed(l, "{\"id\":1", 7); /* partial line */
    log_free(l);

    pg_framer_destroy(NULL);
    pg_framer *f = NULL;
    pg_framer_destroy(&f);
}
END_TEST

START_TEST(framer_args)
{
    ck_assert_ptr_null(pg_framer_new(1024, 1024, NULL, NULL, NULL));
    ck_assert_ptr_null(pg_framer_new(0, 1024, on_msg, NULL, NULL));
    ck_assert_int_eq(pg_framer_feed(NULL, "x", 1), PG_EINVAL);
    ck_assert_ptr_null(pg_framer_current(NULL));

    /* Without on_err, errors are only skipped. */
    log_t l = {0};
    l.f = pg_framer_new(16, 2, on_msg, NULL, &l);
    ck_assert_ptr_nonnull(l.f);
    const char *s = "{\"a\":123456789012}\n{\"bytes\":3}\nxyz{}\n";
    ck_assert_int_eq(pg_framer_feed(l.f, s, strlen(s)), 0);
    ck_assert_int_eq(pg_framer_feed(l.f, NULL, 0), 0);
    ck_assert_int_eq(l.n, 1);
    expect_msg(&l.r[0], "{}", NULL, 0);
    log_reset(&l);
    pg_framer_destroy(&l.f);
}
END_TEST

/* ---- encoding and events ----------------------------------------------- */

START_TEST(encode)
{
    json_t *m =
        json_pack("{s:i,s:s,s:s,s:[i,f]}", "id", 1, "event", "x", "s", "a\nb\"c", "v", 2, 0.5);
    size_t len = 0;
    char *s = pg_proto_encode(m, &len);
    const char *want = "{\"id\":1,\"event\":\"x\",\"s\":\"a\\nb\\\"c\",\"v\":[2,0.5]}\n";
    ck_assert_str_eq(s, want);
    ck_assert_uint_eq(len, strlen(want));
    ck_assert_ptr_null(memchr(s, '\n', len - 1));
    free(s);
    json_decref(m);

    /* Bigger than the encoder's first buffer. */
    m = json_object();
    char key[16];
    for (int i = 0; i < 200; i++) {
        snprintf(key, sizeof key, "k%d", i);
        json_object_set_new(m, key, json_integer(i));
    }
    s = pg_proto_encode(m, &len);
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(len, strlen(s));
    ck_assert_int_eq(s[len - 1], '\n');
    json_error_t je;
    json_t *back = json_loadb(s, len, 0, &je);
    ck_assert(json_equal(back, m));
    json_decref(back);
    free(s);
    json_decref(m);

    json_t *str = json_string("x");
    ck_assert_ptr_null(pg_proto_encode(str, &len));
    json_decref(str);
    ck_assert_ptr_null(pg_proto_encode(NULL, &len));
}
END_TEST

static void expect_encoded(json_t *ev, const char *want)
{
    ck_assert_ptr_nonnull(ev);
    size_t len;
    char *s = pg_proto_encode(ev, &len);
    ck_assert_str_eq(s, want);
    free(s);
    json_decref(ev);
}

START_TEST(events)
{
    json_t *id = json_integer(3);
    expect_encoded(pg_proto_error_event(id, PG_EUNKNOWNOP, "no op 'x.y'", "s"),
                   "{\"id\":3,\"event\":\"error\",\"error\":{\"code\":\"unknown_op\","
                   "\"message\":\"no op 'x.y'\",\"node\":\"s\"}}\n");
    expect_encoded(pg_proto_error_event(id, PG_EPATH, "denied", ""),
                   "{\"id\":3,\"event\":\"error\",\"error\":{\"code\":\"path_denied\","
                   "\"message\":\"denied\"}}\n");
    expect_encoded(pg_proto_error_event(NULL, PG_EBADJSON, NULL, NULL),
                   "{\"id\":null,\"event\":\"error\",\"error\":{\"code\":\"bad_json\","
                   "\"message\":\"the request is not valid JSON\"}}\n");
    /* Invalid UTF-8 (a cut multibyte character, a stray byte) becomes '?'. */
    expect_encoded(
        pg_proto_error_event(id, PG_EIO, "caf\xc3 \xff\xed\xa0\x80 \xc3\xa9", "n\xe2\x82"),
        "{\"id\":3,\"event\":\"error\",\"error\":{\"code\":\"io_error\","
        "\"message\":\"caf? ???? \xc3\xa9\",\"node\":\"n??\"}}\n");
    /* ID is borrowed: still ours. */
    ck_assert_int_eq(id->refcount, 1);
    json_decref(id);

    json_t *sid = json_string("job-1");
    expect_encoded(pg_proto_event(sid, "accepted"), "{\"id\":\"job-1\",\"event\":\"accepted\"}\n");
    ck_assert_int_eq(sid->refcount, 1);
    json_decref(sid);
    expect_encoded(pg_proto_event(NULL, "result"), "{\"id\":null,\"event\":\"result\"}\n");
    ck_assert_ptr_null(pg_proto_event(NULL, NULL));
}
END_TEST

static Suite *protocol_suite(void)
{
    Suite *s = suite_create("protocol");
    TCase *tc = tcase_create("framer");
    tcase_add_test(tc, stream_whole);
    tcase_add_test(tc, stream_byte_by_byte);
    tcase_add_test(tc, stream_every_split);
    tcase_add_test(tc, many_in_one_feed);
    tcase_add_test(tc, attachment_split);
    tcase_add_test(tc, attachment_too_large);
    tcase_add_test(tc, line_too_long);
    tcase_add_test(tc, line_endless);
    tcase_add_test(tc, bad_json_recovery);
    tcase_add_test(tc, bad_bytes);
    tcase_add_test(tc, crlf_and_blank_lines);
    tcase_add_test(tc, destroy_mid_attachment);
    tcase_add_test(tc, framer_args);
    suite_add_tcase(s, tc);
    tc = tcase_create("encode");
    tcase_add_test(tc, encode);
    tcase_add_test(tc, events);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(protocol_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? 0 : 1;
}
