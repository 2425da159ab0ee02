/* SPDX-License-Identifier: MIT */
/* Unit tests for CRC-32C: the check value and the iSCSI test vectors of
 * RFC 3720 (B.4), as crc32c(0, ...) returns them (the journal's use), and
 * that a checksum can be continued over pieces. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "crc32c.h"

static void test_check_value(void **state) {
        (void)state;
        assert_int_equal(crc32c(0, "123456789", 9), 0xE3069283u);
}

static void test_rfc3720_vectors(void **state) {
        (void)state;
        unsigned char b[32];

        memset(b, 0, sizeof(b));
        assert_int_equal(crc32c(0, b, sizeof(b)), 0x8A9136AAu);
        memset(b, 0xff, sizeof(b));
        assert_int_equal(crc32c(0, b, sizeof(b)), 0x62A8AB43u);
        for (int i = 0; i < 32; i++)
                b[i] = (unsigned char)i;
        assert_int_equal(crc32c(0, b, sizeof(b)), 0x46DD794Eu);
        for (int i = 0; i < 32; i++)
                b[i] = (unsigned char)(31 - i);
        assert_int_equal(crc32c(0, b, sizeof(b)), 0x113FDB5Cu);
}

static void test_empty_input_keeps_the_crc(void **state) {
        (void)state;
        assert_int_equal(crc32c(0, "", 0), 0);
        assert_int_equal(crc32c(0x12345678u, NULL, 0), 0x12345678u);
}

/* crc32c(crc32c(0, a), b) is the checksum of a followed by b, for every
 * cut of the input. */
static void test_continues_over_pieces(void **state) {
        (void)state;
        const char *s = "the quick brown fox jumps over the lazy dog";
        size_t n = strlen(s);
        uint32_t whole = crc32c(0, s, n);

        for (size_t cut = 0; cut <= n; cut++)
                assert_int_equal(crc32c(crc32c(0, s, cut), s + cut, n - cut), whole);
}

/* One changed bit changes the checksum. */
static void test_detects_a_flipped_bit(void **state) {
        (void)state;
        unsigned char b[64] = { 0 };
        uint32_t clean = crc32c(0, b, sizeof(b));

        for (size_t bit = 0; bit < sizeof(b) * 8; bit++) {
                b[bit / 8] ^= (unsigned char)(1u << (bit % 8));
                assert_int_not_equal(crc32c(0, b, sizeof(b)), clean);
                b[bit / 8] ^= (unsigned char)(1u << (bit % 8));
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_check_value),
                cmocka_unit_test(test_rfc3720_vectors),
                cmocka_unit_test(test_empty_input_keeps_the_crc),
                cmocka_unit_test(test_continues_over_pieces),
                cmocka_unit_test(test_detects_a_flipped_bit),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
