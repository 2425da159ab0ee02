/* SPDX-License-Identifier: MIT */
/* Unit tests for the names of enum lock_how (core/lock_how.h). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "lock_how.h"

static void test_names(void **state) {
        (void)state;
        assert_string_equal(lock_how_name(LOCK_HOW_CREATOR), "creator");
        assert_string_equal(lock_how_name(LOCK_HOW_CLAIM), "claim");
        assert_string_equal(lock_how_name(LOCK_HOW_FLOCK), "flock");
        assert_string_equal(lock_how_name(LOCK_HOW_DETACHED), "detached");
        assert_string_equal(lock_how_name(LOCK_HOW_FCNTL), "fcntl");
        assert_string_equal(lock_how_name(LOCK_HOW_MKDIR), "mkdir");
        assert_string_equal(lock_how_name(LOCK_HOW_COUNT), "unknown");
        assert_string_equal(lock_how_name((enum lock_how)-1), "unknown");
}

/* Every value's name parses back to it. */
static void test_round_trip(void **state) {
        (void)state;
        for (enum lock_how h = LOCK_HOW_CREATOR; h < LOCK_HOW_COUNT; h++) {
                enum lock_how back = (enum lock_how)-1;

                assert_int_equal(lock_how_parse(lock_how_name(h), &back), 0);
                assert_int_equal(back, h);
        }
}

static void test_parse_refuses(void **state) {
        (void)state;
        enum lock_how h = LOCK_HOW_FLOCK;

        assert_int_equal(lock_how_parse(NULL, &h), -EINVAL);
        assert_int_equal(lock_how_parse("unknown", &h), -EINVAL);
        assert_int_equal(lock_how_parse("Creator", &h), -EINVAL);
        assert_int_equal(lock_how_parse("claim ", &h), -EINVAL);
        assert_int_equal(lock_how_parse("", &h), -EINVAL);
        assert_int_equal(h, LOCK_HOW_FLOCK); /* untouched */
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_parse_refuses),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
