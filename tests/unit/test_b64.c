/* SPDX-License-Identifier: MIT */
/* Unit tests for the etcd client's base64 (b64.h): the RFC 4648 vectors,
 * binary round trips, and refusal of what is not base64. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "b64.h"

static void test_rfc4648_vectors(void **state) {
        (void)state;
        static const char *vec[][2] = { { "", "" },          { "f", "Zg==" },     { "fo", "Zm8=" },
                                        { "foo", "Zm9v" },   { "foob", "Zm9vYg==" },
                                        { "fooba", "Zm9vYmE=" }, { "foobar", "Zm9vYmFy" } };
        for (size_t i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
                char *s = etcd_b64_encode(vec[i][0], strlen(vec[i][0]));
                assert_string_equal(s, vec[i][1]);
                free(s);
                char *d;
                size_t n;
                assert_int_equal(etcd_b64_decode(vec[i][1], strlen(vec[i][1]), &d, &n), 0);
                assert_int_equal(n, strlen(vec[i][0]));
                assert_string_equal(d, vec[i][0]);
                free(d);
        }
}

static void test_binary_round_trip(void **state) {
        (void)state;
        /* every alphabet character, binary with NUL and 0xff bytes, lengths 0..10 and 256 */
        unsigned char bin[256];
        for (int i = 0; i < 256; i++)
                bin[i] = (unsigned char)(i * 7 + (i & 1 ? 0 : 0xf8));
        bin[0] = 0;
        bin[3] = 0;
        for (size_t len = 0; len <= 256; len = len < 10 ? len + 1 : 256) {
                char *s = etcd_b64_encode(bin, len), *d;
                size_t n;
                assert_int_equal(strlen(s), (len + 2) / 3 * 4);
                assert_int_equal(etcd_b64_decode(s, strlen(s), &d, &n), 0);
                assert_int_equal(n, len);
                assert_memory_equal(d, bin, len);
                assert_int_equal(d[n], '\0');
                free(s);
                free(d);
                if (len == 256)
                        break;
        }
        char *s = etcd_b64_encode("\xfb\xff\xbf", 3);
        assert_string_equal(s, "+/+/");
        free(s);
}

static void test_refuses_what_is_not_base64(void **state) {
        (void)state;
        static const char *bad[] = { "Z", "Zg=", "Zg===", "Zm9v!", "Z=g=", "Zm 9v", "=" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                char *d = NULL;
                size_t n;
                assert_int_equal(etcd_b64_decode(bad[i], strlen(bad[i]), &d, &n), -EIO);
                assert_null(d);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_rfc4648_vectors),
                cmocka_unit_test(test_binary_round_trip),
                cmocka_unit_test(test_refuses_what_is_not_base64),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
