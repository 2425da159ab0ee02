/* SPDX-License-Identifier: MIT */
/* Unit tests for reading /proc: the stat and status parsers on crafted
 * lines (hostile comm names), and the readers on this process. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "procfs.h"

/* A stat line with comm as given and the fields that follow it, field 3
 * state 'S', field 4 ppid 77, field 20 num_threads 3, field 22 start time
 * 123456, as the kernel writes it. */
static size_t stat_line(char *buf, size_t size, const char *comm) {
        int n = snprintf(buf, size,
                         "4242 (%s) S 77 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 3 0 "
                         "123456 10000000 200 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 "
                         "1 0 0 0 0 0\n",
                         comm);
        assert_true(n > 0 && (size_t)n < size);
        return (size_t)n;
}

static void assert_stat_fields(const struct proc_stat *st) {
        assert_int_equal(st->state, 'S');
        assert_int_equal(st->ppid, 77);
        assert_int_equal(st->num_threads, 3);
        assert_int_equal(st->start_time, 123456);
}

static void test_parse_stat_plain(void **state) {
        (void)state;
        char buf[512];
        struct proc_stat st;
        size_t n = stat_line(buf, sizeof(buf), "cat");
        assert_int_equal(procfs_parse_stat(buf, n, &st), 0);
        assert_string_equal(st.comm, "cat");
        assert_stat_fields(&st);
}

/* comm may hold spaces, '(' and ')', even ") Z 1 ": it ends at the last
 * ')', and nothing inside it is taken for a field. */
static void test_parse_stat_hostile_comm(void **state) {
        (void)state;
        static const char *const comms[] = { "a b", ") Z 1 ", "((x))", ")", "(", " " };
        for (size_t i = 0; i < sizeof(comms) / sizeof(*comms); i++) {
                char buf[512];
                struct proc_stat st;
                size_t n = stat_line(buf, sizeof(buf), comms[i]);
                assert_int_equal(procfs_parse_stat(buf, n, &st), 0);
                assert_string_equal(st.comm, comms[i]);
                assert_stat_fields(&st);
        }
}

static void test_parse_stat_long_comm_is_cut(void **state) {
        (void)state;
        char buf[512];
        struct proc_stat st;
        size_t n = stat_line(buf, sizeof(buf), "0123456789abcdefXYZ");
        assert_int_equal(procfs_parse_stat(buf, n, &st), 0);
        assert_string_equal(st.comm, "0123456789abcde");
        assert_stat_fields(&st);
}

/* The line need not be NUL-terminated: only n bytes are read. */
static void test_parse_stat_reads_only_n_bytes(void **state) {
        (void)state;
        char buf[512];
        struct proc_stat st;
        size_t n = stat_line(buf, sizeof(buf), "x");
        memset(buf + n, ')', sizeof(buf) - n); /* a ')' past the end must not count */
        assert_int_equal(procfs_parse_stat(buf, n, &st), 0);
        assert_string_equal(st.comm, "x");
        assert_stat_fields(&st);
}

static void test_parse_stat_malformed(void **state) {
        (void)state;
        char buf[512];
        struct proc_stat st;
        size_t n = stat_line(buf, sizeof(buf), "x");
        const char *f22 = strstr(buf, "123456");
        assert_non_null(f22);
        /* cut before field 22 ends... */
        assert_int_equal(procfs_parse_stat(buf, (size_t)(f22 - buf), &st), -EIO);
        /* ...no parentheses, or a ')' before the '(' */
        assert_int_equal(procfs_parse_stat("4242 cat S 1", 12, &st), -EIO);
        assert_int_equal(procfs_parse_stat("1 )x( S", 7, &st), -EIO);
        /* a field that should be a number is not */
        char bad[512];
        memcpy(bad, buf, n);
        bad[f22 - buf] = 'q';
        assert_int_equal(procfs_parse_stat(bad, n, &st), -EIO);
        const char *negative_ppid = "1 (x) S -5 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1";
        assert_int_equal(procfs_parse_stat(negative_ppid, strlen(negative_ppid), &st), -EIO);
}

static void test_parse_status(void **state) {
        (void)state;
        struct proc_status ps;
        /* A Name line forging a Tgid is escaped by the kernel; a real
         * "\nTgid:\t" is what counts. */
        const char *text = "Name:\tx\\nTgid:\t1\nUmask:\t0022\nState:\tS (sleeping)\n"
                           "Tgid:\t4242\nNgid:\t0\nPid:\t4243\nPPid:\t1\n"
                           "Uid:\t1000\t1001\t1002\t1003\nGid:\t2000\t2001\t2002\t2003\n";
        assert_int_equal(procfs_parse_status(text, &ps), 0);
        assert_int_equal(ps.tgid, 4242);
        assert_int_equal(ps.euid, 1001);
        assert_int_equal(ps.egid, 2001);
        assert_int_equal(procfs_parse_status("Name:\tx\nTgid:\t0\nUid:\t1\t1\nGid:\t1\t1\n", &ps),
                         -EIO);
        assert_int_equal(procfs_parse_status("Name:\tx\nTgid:\t5\nUid:\t1\t1\n", &ps), -EIO);
        assert_int_equal(procfs_parse_status("Name:\tx\nTgid:\t5\nUid:\tx\t1\nGid:\t1\t1\n", &ps),
                         0); /* only the second column counts */
        assert_int_equal(procfs_parse_status("Name:\tx\nTgid:\t5\nUid:\t1\tx\nGid:\t1\t1\n", &ps),
                         -EIO);
}

/* The readers on this very process, whose facts we know. */
static void test_read_self(void **state) {
        (void)state;
        assert_int_equal(prctl(PR_SET_NAME, "a) b (c", 0, 0, 0), 0);
        struct proc_stat st;
        assert_int_equal(procfs_read_stat(getpid(), &st), 0);
        assert_string_equal(st.comm, "a) b (c");
        assert_int_equal(st.ppid, getppid());
        assert_int_equal(st.state, 'R');
        assert_true(st.num_threads >= 1);
        assert_true(st.start_time > 0);

        struct proc_status ps;
        assert_int_equal(procfs_read_status(getpid(), &ps), 0);
        assert_int_equal(ps.tgid, getpid());
        assert_int_equal(ps.euid, geteuid());
        assert_int_equal(ps.egid, getegid());

        char cmdline[4096];
        assert_int_equal(procfs_read_cmdline(getpid(), cmdline, sizeof(cmdline)), 0);
        assert_non_null(strstr(cmdline, "test_procfs"));
        char tiny[4];
        assert_int_equal(procfs_read_cmdline(getpid(), tiny, sizeof(tiny)), 0);
        assert_int_equal(strlen(tiny), 3);

        int fd = procfs_pidfd_open(getpid(), 0);
        if (fd < 0)
                assert_int_equal(errno, ENOSYS); /* old kernel, or valgrind */
        else
                close(fd);
}

static void test_read_gone(void **state) {
        (void)state;
        struct proc_stat st;
        struct proc_status ps;
        char buf[16];
        assert_int_equal(procfs_read_stat(0, &st), -ESRCH);
        assert_int_equal(procfs_read_stat(-1, &st), -ESRCH);
        assert_int_equal(procfs_read_status(0, &ps), -ESRCH);
        /* above pid_max (at most 2^22): no such process */
        assert_int_equal(procfs_read_stat(1 << 23, &st), -ESRCH);
        assert_int_equal(procfs_read_status(1 << 23, &ps), -ESRCH);
        assert_int_equal(procfs_read_cmdline(1 << 23, buf, sizeof(buf)), -ESRCH);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_stat_plain),
                cmocka_unit_test(test_parse_stat_hostile_comm),
                cmocka_unit_test(test_parse_stat_long_comm_is_cut),
                cmocka_unit_test(test_parse_stat_reads_only_n_bytes),
                cmocka_unit_test(test_parse_stat_malformed),
                cmocka_unit_test(test_parse_status),
                cmocka_unit_test(test_read_self),
                cmocka_unit_test(test_read_gone),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
