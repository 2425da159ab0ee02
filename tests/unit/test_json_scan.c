/* SPDX-License-Identifier: MIT */
/* Unit tests for the in-place JSON scanner (util/json_scan.h). Scanned
 * text is a heap copy of exactly its length, so a read past it is caught
 * under ASan and valgrind. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "json_scan.h"

/* A heap copy of s without its NUL. */
static char *exact(const char *s, size_t n) {
        char *p = malloc(n ? n : 1);
        assert_non_null(p);
        memcpy(p, s, n);
        return p;
}

static size_t value_end_of(const char *s, size_t i) {
        size_t n = strlen(s);
        char *p = exact(s, n);
        size_t e = json_value_end(p, n, i);
        free(p);
        return e;
}

static size_t string_end_of(const char *s) {
        size_t n = strlen(s);
        char *p = exact(s, n);
        size_t e = json_string_end(p, n, 0);
        free(p);
        return e;
}

static void test_skip_space(void **state) {
        (void)state;
        assert_int_equal(json_skip_space(" \t\r\nx", 5, 0), 4);
        assert_int_equal(json_skip_space("  ", 2, 0), 2);
        assert_int_equal(json_skip_space("\x01 x", 3, 0), 0); /* only JSON's four */
        assert_int_equal(json_skip_space("ab", 2, 5), 5);     /* past n: stays */
        assert_true(json_is_space('\r'));
        assert_false(json_is_space('\v'));
}

static void test_string_end(void **state) {
        (void)state;
        assert_int_equal(string_end_of("\"\""), 2);
        assert_int_equal(string_end_of("\"abc\" tail"), 5);
        assert_int_equal(string_end_of("\"a\\\"b\""), 6);   /* "a\"b" */
        assert_int_equal(string_end_of("\"a\\\\\"b"), 5);   /* "a\\" then b */
        assert_int_equal(string_end_of("\"abc"), 0);        /* unclosed */
        assert_int_equal(string_end_of("\"abc\\"), 0);      /* ends in a backslash */
        assert_int_equal(string_end_of("\"abc\\\""), 0);    /* the quote is escaped */
}

static void test_value_end(void **state) {
        (void)state;
        assert_int_equal(value_end_of("123,", 0), 3);
        assert_int_equal(value_end_of("-1.5e+3}", 0), 7);
        assert_int_equal(value_end_of("1E5]", 0), 3);
        assert_int_equal(value_end_of("true ", 0), 4);
        assert_int_equal(value_end_of("null", 0), 4);
        assert_int_equal(value_end_of("\"s,}\" ,", 0), 5);
        assert_int_equal(value_end_of("{\"a\":[1,{\"b\":\"]}\"}]} x", 0), 20);
        assert_int_equal(value_end_of("[[],{}] ", 0), 7);
        assert_int_equal(value_end_of("{} {}", 3), 5);
        /* no complete value */
        assert_int_equal(value_end_of("", 0), 0);
        assert_int_equal(value_end_of("12", 2), 0);
        assert_int_equal(value_end_of(" 1", 0), 0); /* no whitespace skipped */
        assert_int_equal(value_end_of(",", 0), 0);
        assert_int_equal(value_end_of("{\"a\":1", 0), 0);
        assert_int_equal(value_end_of("[\"]\"", 0), 0);
        assert_int_equal(value_end_of("\"abc", 0), 0);
}

static void test_value_end_deep(void **state) {
        (void)state;
        size_t depth = 100000, n = 2 * depth;
        char *s = malloc(n);
        assert_non_null(s);
        memset(s, '[', depth);
        memset(s + depth, ']', depth);
        assert_int_equal(json_value_end(s, n, 0), n); /* no recursion: no stack to exhaust */
        assert_int_equal(json_value_end(s, n - 1, 0), 0);
        free(s);
}

static void test_hex4(void **state) {
        (void)state;
        uint32_t v;
        assert_true(json_hex4("00aF", 4, &v));
        assert_int_equal(v, 0xAF);
        assert_false(json_hex4("00aF", 3, &v));
        assert_false(json_hex4("00g0", 4, &v));
}

static void test_u_escape(void **state) {
        (void)state;
        uint32_t cp;
        assert_int_equal(json_u_escape("00e9", 4, &cp), 4);
        assert_int_equal(cp, 0xE9);
        assert_int_equal(json_u_escape("d83d\\ude00", 10, &cp), 10); /* a pair */
        assert_int_equal(cp, 0x1F600);
        assert_int_equal(json_u_escape("d83d\\u0041", 10, &cp), 4); /* unpaired */
        assert_int_equal(cp, 0xD83D);
        assert_int_equal(json_u_escape("d83d\\ude0", 9, &cp), 4);  /* cut short */
        assert_int_equal(json_u_escape("zz", 2, &cp), 0);
}

static void test_bad_u_len(void **state) {
        (void)state;
        assert_int_equal(json_bad_u_len("\\uzzzzz", 7), 6);
        assert_int_equal(json_bad_u_len("\\u12", 4), 4);          /* the string ends */
        assert_int_equal(json_bad_u_len("\\u1\xc3\xa9", 5), 3);   /* stops before é */
        assert_int_equal(json_bad_u_len("\\u", 2), 2);
}

/* Decode the content s under policy; the result must be want[0..want_len). */
static void check_decode(const char *s, enum json_u_policy policy, const char *want,
                         size_t want_len) {
        size_t n = strlen(s);
        char *in = exact(s, n);
        size_t room = policy == JSON_U_AS_CJSON ? n : n + n / 2 + 1;
        char *out = malloc(room ? room : 1);
        assert_non_null(out);
        size_t len = json_decode_string(in, n, out, policy);
        assert_true(len <= room);
        assert_int_equal(len, want_len);
        assert_memory_equal(out, want, want_len);
        free(in);
        free(out);
}

static void test_decode_common(void **state) {
        (void)state;
        for (int p = JSON_U_AS_CJSON; p <= JSON_U_REPLACE; p++) {
                check_decode("plain", p, "plain", 5);
                check_decode("\\b\\f\\n\\r\\t\\\"\\\\\\/", p, "\b\f\n\r\t\"\\/", 8);
                check_decode("\\u00e9\\u20AC", p, "\xc3\xa9\xe2\x82\xac", 5);
                check_decode("\\ud83d\\ude00!", p, "\xf0\x9f\x98\x80!", 5);
                check_decode("a\\u0000b", p, "a\0b", 3);
                check_decode("x\\", p, "x\\", 2); /* a last backslash is kept */
                check_decode("", p, "", 0);
        }
}

static void test_decode_policies(void **state) {
        (void)state;
        /* a bad escape: one NUL taking up to 6 ASCII bytes, or U+FFFD taking "\u" */
        check_decode("\\uzzzzq", JSON_U_AS_CJSON, "\0q", 2);
        check_decode("\\uzzzzq", JSON_U_REPLACE, "\xef\xbf\xbdzzzzq", 8);
        check_decode("\\u12", JSON_U_AS_CJSON, "\0", 1);
        check_decode("\\u12", JSON_U_REPLACE, "\xef\xbf\xbd" "12", 5);
        check_decode("\\u1\xc3\xa9", JSON_U_AS_CJSON, "\0\xc3\xa9", 3);
        /* a lone surrogate: encoded as is, or U+FFFD */
        check_decode("\\ud800x", JSON_U_AS_CJSON, "\xed\xa0\x80x", 4);
        check_decode("\\ud800x", JSON_U_REPLACE, "\xef\xbf\xbdx", 4);
        check_decode("\\udc00\\u0041", JSON_U_REPLACE, "\xef\xbf\xbd" "A", 4);
        /* the REPLACE bound is reached by a run of "\u" */
        check_decode("\\u\\u\\u", JSON_U_REPLACE, "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd", 9);
}

/* ---- framing a stream of objects ---- */

/* strings holding braces, an escaped quote, and escaped backslashes (one
 * before a brace, one before the closing quote) */
#define WATCH_STREAM                                                                               \
        " {\"a\":\"}{\\\"\"}\n{\"b\":[1,{\"c\":2}]}\r\n\t{}{\"d\":\"\\\\}\",\"e\":\"\\\\\"} "

/* Frame stream fed k bytes at a time (the caller dropping what the framer
 * no longer needs after each JSON_FRAME_MORE); the objects, each followed
 * by '|', must be want. */
static void check_frames(const char *stream, size_t k, const char *want) {
        size_t total = strlen(stream), fed = 0, kept = 0, dropped = 0, got_len = 0;
        char *buf = malloc(total + 1), got[256];
        struct json_frame f = { 0 };
        size_t start, end;

        assert_non_null(buf);
        while (fed < total) {
                size_t more = total - fed < k ? total - fed : k;
                memcpy(buf + kept, stream + fed, more);
                fed += more;
                kept += more;
                enum json_frame_result r;
                while ((r = json_frame_next(&f, buf, kept, &start, &end)) == JSON_FRAME_OBJECT) {
                        assert_true(end <= kept && buf[start] == '{');
                        assert_true(got_len + end - start + 1 < sizeof(got));
                        memcpy(got + got_len, buf + start, end - start);
                        got_len += end - start;
                        got[got_len++] = '|';
                }
                assert_int_equal(r, JSON_FRAME_MORE);
                size_t drop = json_frame_unneeded(&f, kept);
                memmove(buf, buf + drop, kept - drop);
                kept -= drop;
                dropped += drop;
                json_frame_shift(&f, drop);
        }
        assert_int_equal(kept, 0); /* the stream ended between objects */
        assert_int_equal(dropped, total);
        assert_int_equal(got_len, strlen(want));
        assert_memory_equal(got, want, got_len);
        free(buf);
}

static void test_frame_stream(void **state) {
        (void)state;
        static const char want[] =
                "{\"a\":\"}{\\\"\"}|{\"b\":[1,{\"c\":2}]}|{}|{\"d\":\"\\\\}\",\"e\":\"\\\\\"}|";

        for (size_t k = 1; k <= strlen(WATCH_STREAM); k++)
                check_frames(WATCH_STREAM, k, want);
}

static void test_frame_partial_and_bad(void **state) {
        (void)state;
        struct json_frame f = { 0 };
        size_t start = 99, end = 99;
        const char *s = "  {\"a\":\"\\\\\"";

        /* inside an object: nothing before it is needed any more */
        assert_int_equal(json_frame_next(&f, s, strlen(s), &start, &end), JSON_FRAME_MORE);
        assert_int_equal(start, 99);
        assert_int_equal(json_frame_unneeded(&f, strlen(s)), 2);
        /* a stray byte between objects */
        struct json_frame g = { 0 };
        assert_int_equal(json_frame_next(&g, " {} x{}", 7, &start, &end), JSON_FRAME_OBJECT);
        assert_int_equal(start, 1);
        assert_int_equal(end, 3);
        assert_int_equal(json_frame_next(&g, " {} x{}", 7, &start, &end), JSON_FRAME_BAD);
        assert_int_equal(g.pos, 4);
        struct json_frame h = { 0 };
        assert_int_equal(json_frame_next(&h, "[1]", 3, &start, &end), JSON_FRAME_BAD);
        /* a ']' that brings the depth to zero ends the object too (syntax is
         * the parser's to check) */
        struct json_frame i = { 0 };
        assert_int_equal(json_frame_next(&i, "{]", 2, &start, &end), JSON_FRAME_OBJECT);
        assert_int_equal(end, 2);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_skip_space),
                cmocka_unit_test(test_string_end),
                cmocka_unit_test(test_value_end),
                cmocka_unit_test(test_value_end_deep),
                cmocka_unit_test(test_hex4),
                cmocka_unit_test(test_u_escape),
                cmocka_unit_test(test_bad_u_len),
                cmocka_unit_test(test_decode_common),
                cmocka_unit_test(test_decode_policies),
                cmocka_unit_test(test_frame_stream),
                cmocka_unit_test(test_frame_partial_and_bad),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
