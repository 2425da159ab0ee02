/* SPDX-License-Identifier: MIT */
/* Unit tests for the fence file (store/fencefile.h): fences go up by one,
 * a block is on disk before any fence of it is issued, a reopen never
 * issues a fence again, and a damaged file is refused and left alone. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "fencefile.h"
#include "fsutil.h"

static char dir[64], path[128];

static int setup(void **state) {
        (void)state;
        snprintf(dir, sizeof(dir), "/tmp/lockfs-fences-XXXXXX");
        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof(path), "%s/var/lib/fences", dir); /* parents missing */
        return 0;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw) {
        (void)st;
        (void)flag;
        (void)ftw;
        return remove(p);
}

static int teardown(void **state) {
        (void)state;
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        return 0;
}

/* The file's content, as a C string (freed by the caller). */
static char *content(void) {
        uint8_t *buf;
        size_t n;
        assert_int_equal(fs_read_file(path, &buf, &n), 0);
        char *s = strndup((char *)buf, n);
        free(buf);
        return s;
}

static void expect_content(const char *want) {
        char *s = content();
        assert_string_equal(s, want);
        free(s);
}

static void put_content(const char *text) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(fs_write_all(fd, text, strlen(text)), 0);
        close(fd);
}

static void test_new_file_issues_from_one(void **state) {
        (void)state;
        struct fence_file f;
        assert_int_equal(fence_file_open(path, 0, &f), 0);
        expect_content("lockfs-fences 4097\n"); /* the first block, before any fence */
        for (uint64_t want = 1; want <= 3; want++) {
                uint64_t got;
                assert_int_equal(fence_file_next(&f, &got), 0);
                assert_int_equal(got, want);
        }
        fence_file_close(&f);
        assert_null(f.path);
}

static void test_reopen_never_issues_a_fence_again(void **state) {
        (void)state;
        struct fence_file f;
        uint64_t got;
        assert_int_equal(fence_file_open(path, 0, &f), 0);
        assert_int_equal(fence_file_next(&f, &got), 0);
        fence_file_close(&f);
        /* a restart continues at the recorded end: 2..4096 are skipped */
        assert_int_equal(fence_file_open(path, 0, &f), 0);
        assert_int_equal(fence_file_next(&f, &got), 0);
        assert_int_equal(got, FENCE_BLOCK + 1);
        expect_content("lockfs-fences 8193\n");
        fence_file_close(&f);
}

static void test_at_least_is_respected(void **state) {
        (void)state;
        struct fence_file f;
        uint64_t got;
        /* a journal recorded fence 100000: the file's end is below it */
        assert_int_equal(fence_file_open(path, 100000, &f), 0);
        assert_int_equal(fence_file_next(&f, &got), 0);
        assert_int_equal(got, 100000);
        fence_file_close(&f);
        /* at_least below the recorded end changes nothing */
        assert_int_equal(fence_file_open(path, 5, &f), 0);
        assert_int_equal(fence_file_next(&f, &got), 0);
        assert_int_equal(got, 100000 + FENCE_BLOCK);
        fence_file_close(&f);
}

static void test_next_block_is_reserved_when_used_up(void **state) {
        (void)state;
        struct fence_file f;
        uint64_t got = 0;
        assert_int_equal(fence_file_open(path, 0, &f), 0);
        for (uint64_t i = 1; i <= FENCE_BLOCK; i++) {
                assert_int_equal(fence_file_next(&f, &got), 0);
                assert_int_equal(got, i);
        }
        expect_content("lockfs-fences 4097\n"); /* not yet: 4097 is not issued */
        assert_int_equal(fence_file_next(&f, &got), 0);
        assert_int_equal(got, FENCE_BLOCK + 1);
        expect_content("lockfs-fences 8193\n");
        fence_file_close(&f);
}

static void test_damaged_file_is_refused_and_left_alone(void **state) {
        (void)state;
        assert_int_equal(fs_mkdir_p(path, 0755), 0);
        assert_int_equal(rmdir(path), 0); /* the parents stay */
        static const char *bad[] = {
                "", "garbage\n", "lockfs-fences 0\n", "lockfs-fences -5\n", "lockfs-fences 12x\n",
                "lockfs-fences 12", "lockfs-fences  12\n", "lockfs-fences 12\n\n",
                "lockfs-fences 99999999999999999999\n", "LOCKFS-FENCES 12\n",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                put_content(bad[i]);
                struct fence_file f;
                if (fence_file_open(path, 0, &f) != -EBADMSG)
                        fail_msg("'%s' accepted", bad[i]);
                expect_content(bad[i]);
        }
}

static void test_no_fence_left(void **state) {
        (void)state;
        assert_int_equal(fs_mkdir_p(path, 0755), 0);
        assert_int_equal(rmdir(path), 0);
        char text[64];
        snprintf(text, sizeof(text), "lockfs-fences %" PRIu64 "\n", UINT64_MAX - FENCE_BLOCK + 1);
        put_content(text);
        struct fence_file f;
        assert_int_equal(fence_file_open(path, 0, &f), -EOVERFLOW);
        expect_content(text);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_new_file_issues_from_one, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reopen_never_issues_a_fence_again, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_at_least_is_respected, setup, teardown),
                cmocka_unit_test_setup_teardown(test_next_block_is_reserved_when_used_up, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_damaged_file_is_refused_and_left_alone, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_no_fence_left, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
