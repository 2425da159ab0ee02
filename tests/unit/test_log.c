/* SPDX-License-Identifier: MIT */
/* Unit tests for the log escaper: what a user names a lock cannot start a
 * line of its own, hide in the terminal, or be mistaken for an escape. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "log.h"

/* Escape the n bytes of s into a large buffer and compare with want. */
static void check(const char *s, size_t n, const char *want) {
        char out[256];
        size_t len = log_escape(s, n, out, sizeof(out));
        assert_string_equal(out, want);
        assert_int_equal(len, strlen(want));
}
#define CHECK(lit, want) check(lit, sizeof(lit) - 1, want)

static void test_plain(void **state) {
        (void)state;
        CHECK("released /a/b.lock (fence 3, pid 12): TTL ran out",
              "released /a/b.lock (fence 3, pid 12): TTL ran out");
        CHECK("", "");
        CHECK("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x92", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x92");
}

static void test_controls(void **state) {
        (void)state;
        CHECK("x\nlockfs: force-unlock of ", "x\\x0alockfs: force-unlock of ");
        CHECK("a\rb\tc\x1b[2Jd\x7f", "a\\x0db\\x09c\\x1b[2Jd\\x7f");
        check("a\0b", 3, "a\\x00b");
        CHECK("back\\slash", "back\\x5cslash"); /* so "\x0a" in a name is not a newline */
        CHECK("\\x0a", "\\x5cx0a");
}

static void test_utf8(void **state) {
        (void)state;
        CHECK("\xc2\x85", "\\xc2\\x85");             /* NEL, a C1 control */
        CHECK("\xc2\x9b" "2J", "\\xc2\\x9b2J");      /* CSI */
        CHECK("\xe2\x80\xa8", "\\xe2\\x80\\xa8");    /* line separator */
        CHECK("\xe2\x80\xae" "abc", "\\xe2\\x80\\xaeabc"); /* right-to-left override */
        CHECK("\xe2\x81\xa6", "\\xe2\\x81\\xa6");    /* left-to-right isolate */
        CHECK("\xff\xfe", "\\xff\\xfe");
        CHECK("\x80", "\\x80");                      /* stray continuation */
        CHECK("\xc0\xaf", "\\xc0\\xaf");             /* overlong '/' */
        CHECK("\xe0\x80\xaf", "\\xe0\\x80\\xaf");    /* overlong, three bytes */
        CHECK("\xed\xa0\x80", "\\xed\\xa0\\x80");    /* a surrogate */
        CHECK("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80"); /* past U+10FFFF */
        CHECK("\xe2\x82", "\\xe2\\x82");             /* cut short */
        CHECK("\xe2\x82x", "\\xe2\\x82x");
        CHECK("\xc3\xa9\xc3", "\xc3\xa9\\xc3");
}

/* A small buffer gets whole characters and whole escapes only. */
static void test_truncation(void **state) {
        (void)state;
        char out[6];
        assert_int_equal(log_escape("ab\ncd", 5, out, sizeof(out)), 2);
        assert_string_equal(out, "ab"); /* "\x0a" would not fit */
        assert_int_equal(log_escape("abcd\xc3\xa9", 6, out, sizeof(out)), 4);
        assert_string_equal(out, "abcd");
        assert_int_equal(log_escape("abcdefgh", 8, out, sizeof(out)), 5);
        assert_string_equal(out, "abcde");
        assert_int_equal(log_escape("x", 1, out, 1), 0);
        assert_string_equal(out, "");
        assert_int_equal(log_escape("x", 1, out, 0), 0);
}

/* Every byte value, alone and after a lead byte: the output is printable
 * ASCII or well-formed UTF-8 without a newline, and a round trip of the
 * \xNN escapes gives the input back. */
static void test_all_bytes(void **state) {
        (void)state;
        for (unsigned a = 0; a < 256; a++) {
                for (unsigned b = 0; b < 256; b += 17) {
                        char in[3] = { (char)a, (char)b, 'z' }, out[32], back[8];
                        size_t n = log_escape(in, 3, out, sizeof(out)), m = 0;
                        assert_null(memchr(out, '\n', n));
                        for (size_t i = 0; i < n;) {
                                if (out[i] == '\\') {
                                        assert_true(i + 3 < n && out[i + 1] == 'x');
                                        unsigned v;
                                        assert_int_equal(sscanf(out + i + 2, "%2x", &v), 1);
                                        back[m++] = (char)v;
                                        i += 4;
                                } else {
                                        assert_true((unsigned char)out[i] >= 0x20 &&
                                                    (unsigned char)out[i] != 0x7f);
                                        back[m++] = out[i++];
                                }
                        }
                        assert_int_equal(m, 3);
                        assert_memory_equal(back, in, 3);
                }
        }
}

/* The sink: one log_msg is one line on stderr, whatever the arguments. */
static void test_sink_one_line(void **state) {
        (void)state;
        int fds[2], saved = dup(2);
        assert_int_equal(pipe(fds), 0);
        assert_int_equal(dup2(fds[1], 2), 2);
        log_setup(false, false);
        log_msg(LOG_NOTICE, "released %s (fence %d)", "/x\nlockfs: force-unlock of /y", 7);
        fflush(stderr);
        dup2(saved, 2);
        close(saved);
        close(fds[1]);
        char buf[256];
        ssize_t k = read(fds[0], buf, sizeof(buf) - 1);
        close(fds[0]);
        assert_true(k > 0);
        buf[k] = '\0';
        assert_string_equal(buf,
                            "lockfs: released /x\\x0alockfs: force-unlock of /y (fence 7)\n");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_plain),
                cmocka_unit_test(test_controls),
                cmocka_unit_test(test_utf8),
                cmocka_unit_test(test_truncation),
                cmocka_unit_test(test_all_bytes),
                cmocka_unit_test(test_sink_one_line),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
