/* SPDX-License-Identifier: MIT */
/* Unit tests for UTF-8 encoding and repair (util/utf8.h). */
#include <string.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "utf8.h"

static void test_encode(void **state) {
        (void)state;
        char out[4];
        assert_int_equal(utf8_encode(0x41, out), 1);
        assert_memory_equal(out, "A", 1);
        assert_int_equal(utf8_encode(0xE9, out), 2);
        assert_memory_equal(out, "\xc3\xa9", 2);
        assert_int_equal(utf8_encode(0x20AC, out), 3);
        assert_memory_equal(out, "\xe2\x82\xac", 3);
        assert_int_equal(utf8_encode(0x1F600, out), 4);
        assert_memory_equal(out, "\xf0\x9f\x98\x80", 4);
        assert_int_equal(utf8_encode(0x10FFFF, out), 4);
        assert_memory_equal(out, "\xf4\x8f\xbf\xbf", 4);
}

/* sanitize(in) must give exactly want. */
static void check_sanitize(const char *in, size_t n, const char *want) {
        char *out = utf8_sanitize(in, n);
        assert_non_null(out);
        assert_string_equal(out, want);
        free(out);
}

#define R UTF8_REPLACEMENT

static void test_sanitize_valid_unchanged(void **state) {
        (void)state;
        static const char valid[] = "plain \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf";
        check_sanitize(valid, sizeof(valid) - 1, valid);
        check_sanitize("", 0, "");
}

/* Each invalid sequence becomes one U+FFFD per maximal subpart (Unicode
 * 15, table 3-8), and NUL becomes one too. */
static void test_sanitize_maximal_subparts(void **state) {
        (void)state;
        check_sanitize("a\0b", 3, "a" R "b");
        check_sanitize("\x80", 1, R);                       /* lone continuation */
        check_sanitize("\xc0\xaf", 2, R R);                  /* C0: never valid */
        check_sanitize("\xe0\x80\x80", 3, R R R);            /* overlong: E0 needs A0.. */
        check_sanitize("\xed\xa0\x80", 3, R R R);            /* a surrogate */
        check_sanitize("\xf4\x90\x80\x80", 4, R R R R);      /* above U+10FFFF */
        check_sanitize("\xf0\x9f\x98", 3, R);                /* cut short: one subpart */
        check_sanitize("\xe2\x82x", 3, R "x");
        check_sanitize("\xf0\x9f\x98\x80\xff", 5, "\xf0\x9f\x98\x80" R);
        check_sanitize("\xe1\x80\xe2\x82\xac", 5, R "\xe2\x82\xac");
}

static void test_sanitize_reads_only_n(void **state) {
        (void)state;
        /* a lead byte at the end must not look past n */
        char *in = malloc(1);
        assert_non_null(in);
        in[0] = (char)0xf0;
        check_sanitize(in, 1, R);
        free(in);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_encode),
                cmocka_unit_test(test_sanitize_valid_unchanged),
                cmocka_unit_test(test_sanitize_maximal_subparts),
                cmocka_unit_test(test_sanitize_reads_only_n),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
