/* SPDX-License-Identifier: MIT */
/* Unit tests for mount point names and the immutable bare directory. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "mountpoint.h"

static void expect_id(const char *path, const char *want) {
        char *id = NULL;
        assert_int_equal(mountpoint_id(path, &id), 0);
        assert_string_equal(id, want);
        free(id);
}

static void test_mount_id_escapes_like_systemd(void **state) {
        (void)state;
        expect_id("/run/locks", "run-locks");
        expect_id("/", "-");
        expect_id("/srv/my locks/a-b", "srv-my\\x20locks-a\\x2db");
        expect_id("/.hidden/x.y", "\\x2ehidden-x.y");
        expect_id("/run/locks/", "run-locks");
}

static void test_canonical_path_resolves_the_parent(void **state) {
        (void)state;
        char dir[] = "/tmp/lockfs-mp-XXXXXX";
        assert_non_null(mkdtemp(dir));
        char link[64], inside[64], *c = NULL;
        snprintf(link, sizeof(link), "%s/link", dir);
        snprintf(inside, sizeof(inside), "%s/link/mnt", dir);
        assert_int_equal(symlink(dir, link), 0);
        /* the last component need not exist (a dead mount cannot be stat'ed) */
        assert_int_equal(mountpoint_canonical(inside, &c), 0);
        char want[80];
        snprintf(want, sizeof(want), "%s/mnt", dir);
        assert_string_equal(c, want);
        free(c);
        assert_int_equal(mountpoint_canonical("/no/such/dir/mnt", &c), -ENOENT);
        unlink(link);
        rmdir(dir);
}

static void test_mount_point_check(void **state) {
        (void)state;
        assert_int_equal(mountpoint_check("/proc"), 0); /* mounted on */
        assert_int_equal(mountpoint_check("/tmp"), 0);
        assert_int_equal(mountpoint_check("/no/such/dir"), -ENOENT);
        assert_int_equal(mountpoint_check("/proc/self/status"), -ENOTDIR);
}

/* chattr -i */
static int clear_immutable(const char *path) {
        int fd = open(path, O_RDONLY | O_DIRECTORY), flags = 0;
        if (fd < 0)
                return -1;
        int r = ioctl(fd, FS_IOC_GETFLAGS, &flags);
        flags &= ~FS_IMMUTABLE_FL;
        if (r == 0)
                r = ioctl(fd, FS_IOC_SETFLAGS, &flags);
        close(fd);
        return r;
}

static void test_bare_directory_becomes_immutable(void **state) {
        (void)state;
        char dir[] = "/tmp/lockfs-mp-XXXXXX", file[64];
        assert_non_null(mkdtemp(dir));
        assert_int_equal(mountpoint_clear_dead(dir), 0); /* nothing mounted */
        int r = mountpoint_make_immutable(dir);
        if (r == -ENOTTY || r == -EOPNOTSUPP) {
                rmdir(dir);
                fail_msg("the file system of /tmp has no immutable attribute");
        }
        assert_int_equal(r, 0);
        assert_int_equal(mountpoint_make_immutable(dir), 0); /* idempotent */
        snprintf(file, sizeof(file), "%s/x.lock", dir);
        assert_int_equal(open(file, O_CREAT | O_WRONLY, 0644), -1); /* even as root */
        assert_int_equal(errno, EPERM);
        assert_int_equal(clear_immutable(dir), 0);
        assert_int_equal(rmdir(dir), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_mount_id_escapes_like_systemd),
                cmocka_unit_test(test_canonical_path_resolves_the_parent),
                cmocka_unit_test(test_bare_directory_becomes_immutable),
                cmocka_unit_test(test_mount_point_check),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
