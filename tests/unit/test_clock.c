/* SPDX-License-Identifier: MIT */
/* Unit tests for the millisecond clocks: each agrees with clock_gettime()
 * of its clock, and the monotonic one never goes back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <cmocka.h>

#include "clock.h"

static int64_t ms_of(clockid_t id) {
        struct timespec ts;

        assert_int_equal(clock_gettime(id, &ts), 0);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Read between two clock_gettime() readings, a clock_*_ms() value lies
 * between them (milliseconds truncated, as both sides are). */
static void check_between(clockid_t id, int64_t (*read_ms)(void)) {
        for (int i = 0; i < 1000; i++) {
                int64_t before = ms_of(id);
                int64_t got = read_ms();
                int64_t after = ms_of(id);
                assert_true(before <= got);
                assert_true(got <= after);
        }
}

static void test_mono_agrees_with_clock_monotonic(void **state) {
        (void)state;
        check_between(CLOCK_MONOTONIC, clock_mono_ms);
}

static void test_wall_agrees_with_clock_realtime(void **state) {
        (void)state;
        int64_t wall = clock_wall_ms();

        /* milliseconds since 1970: after 2020-01-01 */
        assert_true(wall > INT64_C(1577836800000));
        check_between(CLOCK_REALTIME, clock_wall_ms);
}

static void test_mono_never_goes_back(void **state) {
        (void)state;
        int64_t last = clock_mono_ms();

        for (int i = 0; i < 100000; i++) {
                int64_t now = clock_mono_ms();
                assert_true(now >= last);
                last = now;
        }
}

/* A nanosleep of 20 ms shows as at least 20 ms on the monotonic clock
 * (a lower bound only: how much longer depends on the machine's load). */
static void test_mono_counts_milliseconds(void **state) {
        (void)state;
        int64_t t0 = clock_mono_ms();
        struct timespec d = { 0, 20 * 1000000 };

        while (nanosleep(&d, &d) != 0)
                ;
        assert_true(clock_mono_ms() - t0 >= 20);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_mono_agrees_with_clock_monotonic),
                cmocka_unit_test(test_wall_agrees_with_clock_realtime),
                cmocka_unit_test(test_mono_never_goes_back),
                cmocka_unit_test(test_mono_counts_milliseconds),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
