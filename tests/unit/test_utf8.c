/* SPDX-License-Identifier: MIT */
/* Unit tests for JSON \u escapes and UTF-8 encoding. */
#include <string.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "utf8.h"

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
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_hex4),
                cmocka_unit_test(test_u_escape),
                cmocka_unit_test(test_encode),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
