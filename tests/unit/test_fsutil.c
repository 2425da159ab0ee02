/* SPDX-License-Identifier: MIT */
/* Unit tests for util/fsutil.h: whole writes and reads, and mkdir -p with
 * its modes. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
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

#include "fsutil.h"

static char dir[64];

static int make_dir(void **state) {
        (void)state;
        snprintf(dir, sizeof(dir), "/tmp/lockfs-fsutil-XXXXXX");
        assert_non_null(mkdtemp(dir));
        umask(022);
        return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void)st;
        (void)flag;
        (void)ftw;
        return remove(path);
}

static int remove_dir(void **state) {
        (void)state;
        nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        return 0;
}

static const char *in_dir(const char *name) {
        static char path[4][160];
        static int next;
        char *p = path[next++ % 4];
        snprintf(p, sizeof(path[0]), "%s/%s", dir, name);
        return p;
}

static mode_t mode_of(const char *path) {
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
        return st.st_mode & 07777;
}

static void test_write_all_then_read_file(void **state) {
        (void)state;
        size_t len = 3 * 1024 * 1024 + 7; /* more than one write and one read */
        uint8_t *data = malloc(len);
        for (size_t i = 0; i < len; i++)
                data[i] = (uint8_t)(i * 31 + (i >> 12));
        int fd = open(in_dir("f"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(fs_write_all(fd, data, len), 0);
        assert_int_equal(fs_write_all(fd, data, 0), 0);
        close(fd);
        uint8_t *back;
        size_t n;
        assert_int_equal(fs_read_file(in_dir("f"), &back, &n), 0);
        assert_int_equal(n, len);
        assert_memory_equal(back, data, len);
        free(back);
        free(data);
}

static void test_read_file_empty_and_missing(void **state) {
        (void)state;
        int fd = open(in_dir("empty"), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        close(fd);
        uint8_t *buf = (uint8_t *)"not set";
        size_t n = 99;
        assert_int_equal(fs_read_file(in_dir("empty"), &buf, &n), 0);
        assert_non_null(buf); /* even for no bytes */
        assert_int_equal(n, 0);
        free(buf);
        buf = (uint8_t *)"not set";
        n = 99;
        assert_int_equal(fs_read_file(in_dir("missing"), &buf, &n), -ENOENT);
        assert_null(buf);
        assert_int_equal(n, 0);
        assert_int_equal(fs_read_file(dir, &buf, &n), -EISDIR);
        assert_null(buf);
}

static void test_write_all_errors(void **state) {
        (void)state;
        int fd = open(in_dir("ro"), O_RDONLY | O_CREAT | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(fs_write_all(fd, "x", 1), -EBADF);
        close(fd);
        assert_int_equal(fs_write_all(-1, "x", 1), -EBADF);
}

static void test_mkdir_p_makes_every_missing_directory(void **state) {
        (void)state;
        assert_int_equal(fs_mkdir_p(in_dir("a/b/c"), 0700), 0);
        assert_int_equal(mode_of(in_dir("a")), 0755);
        assert_int_equal(mode_of(in_dir("a/b")), 0755);
        assert_int_equal(mode_of(in_dir("a/b/c")), 0700); /* only the last gets mode */
        /* all there already: nothing changes, no error */
        assert_int_equal(chmod(in_dir("a/b"), 0711), 0);
        assert_int_equal(fs_mkdir_p(in_dir("a/b"), 0700), 0);
        assert_int_equal(mode_of(in_dir("a/b")), 0711);
        /* one more level below what exists */
        assert_int_equal(fs_mkdir_p(in_dir("a/b/c/d"), 0750), 0);
        assert_int_equal(mode_of(in_dir("a/b/c/d")), 0750);
}

static void test_mkdir_p_errors(void **state) {
        (void)state;
        int fd = open(in_dir("file"), O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        close(fd);
        assert_int_equal(fs_mkdir_p(in_dir("file/sub"), 0700), -ENOTDIR);
        /* an existing name counts as made, whatever it is (open then fails) */
        assert_int_equal(fs_mkdir_p(in_dir("file"), 0700), 0);
        assert_int_equal(fs_mkdir_p("", 0700), -ENOENT);
        assert_int_equal(fs_mkdir_p("/", 0700), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_write_all_then_read_file),
                cmocka_unit_test(test_read_file_empty_and_missing),
                cmocka_unit_test(test_write_all_errors),
                cmocka_unit_test(test_mkdir_p_makes_every_missing_directory),
                cmocka_unit_test(test_mkdir_p_errors),
        };
        return cmocka_run_group_tests(tests, make_dir, remove_dir);
}
