/* SPDX-License-Identifier: MIT */
/* Unit tests for the .lockfs/metrics page: its exact bytes (scrapers and
 * the integration tests read them), and the FUSE family with no sample. */
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "metrics.h"

static const struct lock_metrics sample_metrics = {
        .acquired = 5, .contended = 6, .released_unlink = 1, .released_exit = 2,
        .released_ttl = 3, .released_root = 4, .released_detached = 7, .released_unlock = 10,
        .held = 8, .directories = 9, .waiters = UINT64_MAX,
};

/* Every family, every distinct counter in its place, byte for byte. */
static void test_render_exact_bytes(void **state) {
        (void)state;
        static const char expected[] =
                "# HELP lockfs_acquired_total Successful lock acquisitions.\n"
                "# TYPE lockfs_acquired_total counter\n"
                "lockfs_acquired_total 5\n"
                "# HELP lockfs_contended_total Attempts refused with EEXIST because the lock was held.\n"
                "# TYPE lockfs_contended_total counter\n"
                "lockfs_contended_total 6\n"
                "# HELP lockfs_released_total Locks released, by cause.\n"
                "# TYPE lockfs_released_total counter\n"
                "lockfs_released_total{cause=\"unlink\"} 1\n"
                "lockfs_released_total{cause=\"exit\"} 2\n"
                "lockfs_released_total{cause=\"ttl\"} 3\n"
                "lockfs_released_total{cause=\"root\"} 4\n"
                "lockfs_released_total{cause=\"detached\"} 7\n"
                "lockfs_released_total{cause=\"unlock\"} 10\n"
                "# HELP lockfs_expired_total Locks released because their TTL ran out.\n"
                "# TYPE lockfs_expired_total counter\n"
                "lockfs_expired_total 3\n"
                "# HELP lockfs_locks_held Locks held now.\n"
                "# TYPE lockfs_locks_held gauge\n"
                "lockfs_locks_held 8\n"
                "# HELP lockfs_directories Lock directories (namespaces) now.\n"
                "# TYPE lockfs_directories gauge\n"
                "lockfs_directories 9\n"
                "# HELP lockfs_waiters flock(2) and F_SETLKW waiters parked now.\n"
                "# TYPE lockfs_waiters gauge\n"
                "lockfs_waiters 18446744073709551615\n"
                "# HELP lockfs_fuse_requests_total FUSE requests served, by kind.\n"
                "# TYPE lockfs_fuse_requests_total counter\n"
                "lockfs_fuse_requests_total{op=\"lookup\"} 11\n"
                "lockfs_fuse_requests_total{op=\"ioctl\"} 0\n"
                ;
        const struct metrics_sample requests[] = { { "lookup", 11 }, { "ioctl", 0 } };
        size_t len = 0;
        char *out = metrics_render(&sample_metrics, requests, 2, &len);
        assert_non_null(out);
        assert_int_equal(len, strlen(out));
        assert_string_equal(out, expected);
        free(out);
}

/* No FUSE sample: the family is still described; ret_len may be NULL. */
static void test_render_no_fuse_samples(void **state) {
        (void)state;
        struct lock_metrics zero = { 0 };
        char *out = metrics_render(&zero, NULL, 0, NULL);
        assert_non_null(out);
        static const char tail[] = "lockfs_waiters 0\n"
                                   "# HELP lockfs_fuse_requests_total FUSE requests served, by kind.\n"
                                   "# TYPE lockfs_fuse_requests_total counter\n";
        size_t len = strlen(out);
        assert_true(len > strlen(tail));
        assert_string_equal(out + len - strlen(tail), tail);
        assert_null(strstr(out, "lockfs_fuse_requests_total{"));
        free(out);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_render_exact_bytes),
                cmocka_unit_test(test_render_no_fuse_samples),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
