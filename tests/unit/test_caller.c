/* SPDX-License-Identifier: MIT */
/* Unit tests for holder.c against real processes and threads: children are
 * forked (and exec'd) here and awaited through pipes and waitpid, never by
 * sleeping. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "caller.h"

/* ---- helpers ---- */

/* A forked child blocked until the parent closes release_fd. */
struct child {
        pid_t pid;
        int release_fd;
};

static void read_full(int fd, void *buf, size_t n) {
        size_t done = 0;

        while (done < n) {
                ssize_t r = read(fd, (char *)buf + done, n - done);
                if (r < 0 && errno == EINTR)
                        continue;
                assert_true(r > 0);
                done += (size_t)r;
        }
}

/* Block until fd reaches EOF (the other end was closed). */
static void await_eof(int fd) {
        char c;

        for (;;) {
                ssize_t r = read(fd, &c, 1);

                if (r == 0 || (r < 0 && errno != EINTR))
                        return;
        }
}

/* Fork a child that sets its comm to name (if not NULL), reports ready and
 * blocks until released. */
static struct child child_start(const char *name) {
        int release[2], ready[2];
        struct child ch;
        char c = 0;

        assert_int_equal(pipe2(release, O_CLOEXEC), 0);
        assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
        ch.pid = fork();
        assert_true(ch.pid >= 0);
        if (ch.pid == 0) {
                close(release[1]);
                close(ready[0]);
                if (name)
                        prctl(PR_SET_NAME, name, 0, 0, 0);
                if (write(ready[1], &c, 1) != 1)
                        _exit(2);
                await_eof(release[0]);
                _exit(0);
        }
        close(release[0]);
        close(ready[1]);
        read_full(ready[0], &c, 1);
        close(ready[0]);
        ch.release_fd = release[1];
        return ch;
}

/* Release the child and reap it. */
static void child_finish(struct child *ch) {
        int status;

        if (ch->release_fd >= 0)
                close(ch->release_fd);
        ch->release_fd = -1;
        assert_int_equal(waitpid(ch->pid, &status, 0), ch->pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
}

/* Release the child and wait until it has exited, without reaping it. */
static void child_await_zombie(struct child *ch) {
        siginfo_t si;

        close(ch->release_fd);
        ch->release_fd = -1;
        memset(&si, 0, sizeof(si));
        assert_int_equal(waitid(P_PID, (id_t)ch->pid, &si, WEXITED | WNOWAIT), 0);
        assert_int_equal(si.si_pid, ch->pid);
}

/* Exec /bin/cat with argv, stdin and stdout on pipes; returns once cat has
 * echoed one byte.  The end of a close-on-exec pipe is not enough: the kernel
 * closes such descriptors before it sets the new comm and argument area, so
 * /proc/PID/comm and cmdline could still show the parent's. */
static struct child exec_cat(char *const argv[]) {
        int in[2], out[2];
        struct child ch;
        char c = 'x';

        assert_int_equal(pipe2(in, O_CLOEXEC), 0);
        assert_int_equal(pipe2(out, O_CLOEXEC), 0);
        ch.pid = fork();
        assert_true(ch.pid >= 0);
        if (ch.pid == 0) {
                int null = open("/dev/null", O_WRONLY);

                if (dup2(in[0], 0) < 0 || dup2(out[1], 1) < 0 || null < 0 || dup2(null, 2) < 0)
                        _exit(126);
                if (chdir("/") < 0)
                        _exit(126);
                execv("/bin/cat", argv);
                _exit(127);
        }
        close(in[0]);
        close(out[1]);
        assert_int_equal(write(in[1], &c, 1), 1);
        read_full(out[0], &c, 1);
        assert_int_equal(c, 'x');
        close(out[0]);
        ch.release_fd = in[1];
        return ch;
}

/* Release an exec'd cat and reap it, whatever its exit status. */
static void cat_finish(struct child *ch) {
        int status;

        close(ch->release_fd);
        assert_int_equal(waitpid(ch->pid, &status, 0), ch->pid);
        assert_true(WIFEXITED(status));
        assert_int_not_equal(WEXITSTATUS(status), 127);
}

static struct proc_id self_id(void) {
        struct proc_id p = {.pid = getpid()};

        assert_int_equal(holder_read_start_time(p.pid, &p.start_time), 0);
        return p;
}

/* PPid from /proc/PID/status (the implementation reads stat instead). */
static pid_t status_ppid(pid_t pid) {
        char path[64], line[256];
        pid_t ppid = -1;
        FILE *f;

        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        f = fopen(path, "r");
        assert_non_null(f);
        while (fgets(line, sizeof(line), f))
                if (sscanf(line, "PPid: %d", &ppid) == 1)
                        break;
        fclose(f);
        return ppid;
}

/* Clock ticks since boot, as the kernel counts process start times. */
static uint64_t boottime_ticks(void) {
        struct timespec ts;
        uint64_t ns_per_tick = 1000000000ull / (uint64_t)sysconf(_SC_CLK_TCK);

        assert_int_equal(clock_gettime(CLOCK_BOOTTIME, &ts), 0);
        return ((uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec) / ns_per_tick;
}

/* ---- identify ---- */

static void test_identify_tid_zero(void **state) {
        struct caller c;

        (void)state;
        memset(&c, 0xAA, sizeof(c));
        assert_int_equal(holder_identify(0, 1001, 1002, &c), 0);
        assert_int_equal(c.tid, 0);
        assert_int_equal(c.self.pid, 0);
        assert_int_equal(c.self.start_time, 0);
        assert_int_equal(c.uid, 1001);
        assert_int_equal(c.gid, 1002);
        assert_int_equal(c.n_ancestors, 0);
        assert_string_equal(c.comm, "");
        assert_string_equal(c.cmdline, "");
}

static void test_identify_self(void **state) {
        char comm[32] = "";
        struct proc_id me = self_id();
        struct caller c;
        size_t i;
        FILE *f;

        (void)state;
        assert_int_equal(holder_identify(gettid(), 1001, 1002, &c), 0);
        assert_int_equal(c.tid, gettid());
        assert_int_equal(c.self.pid, me.pid);
        assert_int_equal(c.self.start_time, me.start_time);
        assert_int_equal(c.uid, 1001);
        assert_int_equal(c.gid, 1002);

        f = fopen("/proc/self/comm", "r");
        assert_non_null(f);
        assert_non_null(fgets(comm, sizeof(comm), f));
        fclose(f);
        comm[strcspn(comm, "\n")] = '\0';
        assert_string_equal(c.comm, comm);
        assert_true(strlen(c.cmdline) > 0);
        assert_true(c.cmdline[strlen(c.cmdline) - 1] != ' ');

        /* parent first, each older than its child, up to a process with no
         * (visible) parent */
        assert_true(c.n_ancestors >= 1);
        assert_int_equal(c.ancestors[0].pid, getppid());
        for (i = 0; i < c.n_ancestors; i++) {
                uint64_t st;
                pid_t child = i ? c.ancestors[i - 1].pid : c.self.pid;

                assert_int_equal(c.ancestors[i].pid, status_ppid(child));
                assert_int_equal(holder_read_start_time(c.ancestors[i].pid, &st), 0);
                assert_int_equal(c.ancestors[i].start_time, st);
                assert_true(st <= (i ? c.ancestors[i - 1].start_time : c.self.start_time));
        }
        if (c.n_ancestors < HOLDER_ANCESTRY_MAX)
                assert_int_equal(status_ppid(c.ancestors[c.n_ancestors - 1].pid), 0);
}

/* A non-leader thread is mapped to its process (SPEC R3.1). */
struct thread_pipes {
        int tid_w;     /* the thread writes its tid here */
        int release_r; /* and blocks until this reaches EOF */
};

static void *thread_main(void *arg) {
        struct thread_pipes *tp = arg;
        pid_t tid = gettid();

        if (write(tp->tid_w, &tid, sizeof(tid)) != (ssize_t)sizeof(tid))
                return NULL;
        await_eof(tp->release_r);
        return NULL;
}

static void test_identify_thread(void **state) {
        int tid_pipe[2], release[2];
        struct thread_pipes tp;
        struct proc_id me = self_id();
        struct caller c;
        pthread_t th;
        pid_t tid;

        (void)state;
        assert_int_equal(pipe2(tid_pipe, O_CLOEXEC), 0);
        assert_int_equal(pipe2(release, O_CLOEXEC), 0);
        tp.tid_w = tid_pipe[1];
        tp.release_r = release[0];
        assert_int_equal(pthread_create(&th, NULL, thread_main, &tp), 0);
        read_full(tid_pipe[0], &tid, sizeof(tid));
        assert_int_not_equal(tid, getpid());

        assert_int_equal(holder_identify(tid, 7, 8, &c), 0);
        assert_int_equal(c.tid, tid);
        assert_int_equal(c.self.pid, me.pid);
        assert_int_equal(c.self.start_time, me.start_time);
        assert_int_equal(c.ancestors[0].pid, getppid());
        assert_true(caller_is_or_descends_from(&c, &me));

        /* the quick identity maps the thread too, and reads no ancestry */
        assert_int_equal(holder_identify_quick(tid, 7, 8, &c), 0);
        assert_int_equal(c.self.pid, me.pid);
        assert_int_equal(c.self.start_time, me.start_time);
        assert_true(c.partial);
        assert_int_equal(c.n_ancestors, 0);

        /* a thread id is not a process */
        assert_int_equal(holder_identify_process(tid, &c), -ESRCH);
        assert_int_equal(c.self.pid, 0);

        close(release[1]);
        assert_int_equal(pthread_join(th, NULL), 0);
        close(release[0]);
        close(tid_pipe[0]);
        close(tid_pipe[1]);
}

/* comm with spaces and ')' must not derail parsing of /proc/PID/stat. */
/* The quick identity is the full one minus the ancestry. */
static void test_identify_quick(void **state) {
        struct caller full, quick;

        (void)state;
        assert_int_equal(holder_identify(gettid(), 1001, 1002, &full), 0);
        assert_int_equal(holder_identify_quick(gettid(), 1001, 1002, &quick), 0);
        assert_false(full.partial);
        assert_true(full.n_ancestors > 0);
        assert_true(quick.partial);
        assert_int_equal(quick.n_ancestors, 0);
        assert_int_equal(quick.self.pid, full.self.pid);
        assert_int_equal(quick.self.start_time, full.self.start_time);
        assert_int_equal(quick.uid, 1001);
        assert_int_equal(quick.gid, 1002);
        assert_string_equal(quick.comm, full.comm);
        assert_string_equal(quick.cmdline, full.cmdline);
        /* itself only: its parent is not found through a partial identity */
        assert_true(caller_is_or_descends_from(&quick, &full.self));
        assert_false(caller_is_or_descends_from(&quick, &full.ancestors[0]));
        assert_int_equal(holder_identify_quick(-1, 0, 0, &quick), -ESRCH);
        assert_int_equal(quick.self.pid, 0);
}

static void test_identify_child_hostile_comm(void **state) {
        static const char name[] = "a) b (c) 1 2 )";
        struct proc_id me = self_id();
        struct child ch = child_start(name);
        struct caller c;
        uint64_t st;

        (void)state;
        assert_int_equal(holder_identify(ch.pid, 0, 0, &c), 0);
        assert_string_equal(c.comm, name);
        assert_int_equal(c.self.pid, ch.pid);
        assert_int_equal(holder_read_start_time(ch.pid, &st), 0);
        assert_int_equal(c.self.start_time, st);
        assert_int_equal(c.ancestors[0].pid, me.pid);
        assert_int_equal(c.ancestors[0].start_time, me.start_time);
        assert_true(c.n_ancestors >= 2);
        assert_true(caller_is_or_descends_from(&c, &me));

        assert_int_equal(holder_identify_process(ch.pid, &c), 0);
        assert_int_equal(c.self.pid, ch.pid);
        assert_int_equal(c.uid, geteuid());
        assert_int_equal(c.gid, getegid());
        assert_string_equal(c.comm, name);
        child_finish(&ch);
}

static void test_identify_cmdline(void **state) {
        char *argv[] = {"cat", "-", "a b", "", NULL};
        struct child ch = exec_cat(argv);
        struct caller c;

        (void)state;
        assert_int_equal(holder_identify_process(ch.pid, &c), 0);
        assert_string_equal(c.comm, "cat");
        /* NULs become spaces, the empty last argument's space is trimmed */
        assert_string_equal(c.cmdline, "cat - a b");
        cat_finish(&ch);
}

static void test_identify_cmdline_cut(void **state) {
        char *argv[] = {"cat", "-", NULL, NULL};
        char *big = malloc(3000);
        struct child ch;
        struct caller c;
        size_t i;

        (void)state;
        assert_non_null(big);
        memset(big, 'x', 2999);
        big[2999] = '\0';
        argv[2] = big;
        ch = exec_cat(argv);
        assert_int_equal(holder_identify_process(ch.pid, &c), 0);
        assert_int_equal(strlen(c.cmdline), HOLDER_CMDLINE_MAX - 1);
        assert_memory_equal(c.cmdline, "cat - ", 6);
        for (i = 6; i < HOLDER_CMDLINE_MAX - 1; i++)
                assert_int_equal(c.cmdline[i], 'x');
        cat_finish(&ch);
        free(big);
}

static void test_identify_gone(void **state) {
        struct child ch = child_start(NULL);
        struct caller c;
        uint64_t st;
        pid_t pid = ch.pid;

        (void)state;
        child_finish(&ch);
        assert_int_equal(holder_identify(pid, 5, 6, &c), -ESRCH);
        assert_int_equal(c.self.pid, 0);
        assert_int_equal(c.uid, 5);
        assert_int_equal(holder_identify_process(pid, &c), -ESRCH);
        assert_int_equal(holder_read_start_time(pid, &st), -ESRCH);
        assert_int_equal(holder_read_start_time(0, &st), -ESRCH);
        assert_int_equal(holder_read_start_time(-1, &st), -ESRCH);
        assert_int_equal(holder_identify(-1, 0, 0, &c), -ESRCH);
        assert_int_equal(holder_identify_process(0, &c), -ESRCH);
}

/* ---- start time ---- */

static void test_start_time(void **state) {
        struct proc_id me = self_id();
        struct child ch;
        uint64_t again, child_st, child_again;

        (void)state;
        assert_int_equal(holder_read_start_time(me.pid, &again), 0);
        assert_int_equal(again, me.start_time);
        assert_true(me.start_time <= boottime_ticks());

        /* let the tick counter pass our own start, so that a process forked
         * now must carry a later start time */
        while (boottime_ticks() <= me.start_time)
                ;
        ch = child_start(NULL);
        assert_int_equal(holder_read_start_time(ch.pid, &child_st), 0);
        assert_true(child_st > me.start_time);
        assert_int_equal(holder_read_start_time(ch.pid, &child_again), 0);
        assert_int_equal(child_again, child_st);
        child_finish(&ch);
}

/* ---- lineage ---- */

static void test_descends_from(void **state) {
        struct proc_id me = self_id();
        struct proc_id parent = {.pid = getppid()};
        struct proc_id bad, zero = {0, 0};
        struct child ch = child_start(NULL);
        struct proc_id kid = {.pid = ch.pid};
        struct caller c, unknown;

        (void)state;
        assert_int_equal(holder_read_start_time(parent.pid, &parent.start_time), 0);
        assert_int_equal(holder_read_start_time(kid.pid, &kid.start_time), 0);
        assert_int_equal(holder_identify(gettid(), 0, 0, &c), 0);

        assert_true(caller_is_or_descends_from(&c, &me));
        assert_true(caller_is_or_descends_from(&c, &parent));
        assert_false(caller_is_or_descends_from(&c, &kid)); /* a descendant, not an ancestor */
        assert_false(caller_is_or_descends_from(&c, &zero));
        bad = me;
        bad.start_time++;
        assert_false(caller_is_or_descends_from(&c, &bad));
        bad = parent;
        bad.start_time++;
        assert_false(caller_is_or_descends_from(&c, &bad));

        assert_int_equal(holder_identify(0, 0, 0, &unknown), 0);
        assert_false(caller_is_or_descends_from(&unknown, &me));
        assert_false(caller_is_or_descends_from(&unknown, &zero));
        child_finish(&ch);
}

static void test_find_lineage(void **state) {
        struct proc_id me = self_id();
        struct proc_id found;
        struct child ch = child_start(NULL);
        struct caller c, unknown;
        uint64_t st;

        (void)state;
        assert_int_equal(holder_identify(gettid(), 0, 0, &c), 0);
        assert_true(caller_find_lineage(&c, me.pid, &found));
        assert_int_equal(found.pid, me.pid);
        assert_int_equal(found.start_time, me.start_time);

        assert_true(caller_find_lineage(&c, getppid(), &found));
        assert_int_equal(found.pid, getppid());
        assert_int_equal(holder_read_start_time(getppid(), &st), 0);
        assert_int_equal(found.start_time, st);

        assert_false(caller_find_lineage(&c, ch.pid, &found));
        assert_false(caller_find_lineage(&c, 0, &found));
        assert_false(caller_find_lineage(&c, -1, &found));
        assert_int_equal(holder_identify(0, 0, 0, &unknown), 0);
        assert_false(caller_find_lineage(&unknown, 0, &found));
        assert_false(caller_find_lineage(&unknown, me.pid, &found));
        child_finish(&ch);
}

/* ---- pidfd and liveness ---- */

static void test_pidfd_open(void **state) {
        struct child ch = child_start(NULL);
        struct proc_id p = {.pid = ch.pid}, wrong, zero = {0, 0};
        int fd;

        (void)state;
        assert_int_equal(holder_read_start_time(p.pid, &p.start_time), 0);
        fd = holder_pidfd_open(&p);
        if (fd == -ENOSYS) {
                /* valgrind 3.19 does not know pidfd_open */
                child_finish(&ch);
                skip();
        }
        assert_true(fd >= 0);
        assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
        close(fd);

        wrong = p;
        wrong.start_time++;
        assert_int_equal(holder_pidfd_open(&wrong), -ESRCH);
        assert_int_equal(holder_pidfd_open(&zero), -ESRCH);

        child_finish(&ch);
        assert_int_equal(holder_pidfd_open(&p), -ESRCH);
}

static void test_alive(void **state) {
        struct proc_id me = self_id();
        struct child ch = child_start(NULL);
        struct proc_id p = {.pid = ch.pid}, wrong, zero = {0, 0};
        int status;

        (void)state;
        assert_true(holder_alive(&me));
        assert_int_equal(holder_read_start_time(p.pid, &p.start_time), 0);
        assert_true(holder_alive(&p));
        wrong = p;
        wrong.start_time++;
        assert_false(holder_alive(&wrong));
        assert_false(holder_alive(&zero));

        child_await_zombie(&ch); /* exited, not yet reaped */
        assert_false(holder_alive(&p));
        assert_int_equal(waitpid(ch.pid, &status, 0), ch.pid);
        assert_false(holder_alive(&p));
}

/* A process whose main thread called pthread_exit() while another thread
 * runs shows state 'Z' in /proc, yet it is alive. */
static pthread_t leader;
static int leader_ready_w = -1, leader_release_r = -1;

static void *leader_watcher(void *arg) {
        char c = 0;

        (void)arg;
        pthread_join(leader, NULL);
        if (write(leader_ready_w, &c, 1) != 1)
                _exit(2);
        await_eof(leader_release_r);
        _exit(0);
}

static void test_alive_leader_exited(void **state) {
        int ready[2], release[2];
        struct child ch;
        struct proc_id p;
        int status;
        char c;

        (void)state;
        assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
        assert_int_equal(pipe2(release, O_CLOEXEC), 0);
        ch.pid = fork();
        assert_true(ch.pid >= 0);
        if (ch.pid == 0) {
                pthread_t w;

                close(ready[0]);
                close(release[1]);
                leader = pthread_self();
                leader_ready_w = ready[1];
                leader_release_r = release[0];
                if (pthread_create(&w, NULL, leader_watcher, NULL) != 0)
                        _exit(3);
                pthread_exit(NULL);
        }
        close(ready[1]);
        close(release[0]);
        read_full(ready[0], &c, 1); /* the leader thread is gone */
        close(ready[0]);
        ch.release_fd = release[1];

        p.pid = ch.pid;
        assert_int_equal(holder_read_start_time(p.pid, &p.start_time), 0);
        assert_true(holder_alive(&p));
        /* reap without checking the exit code: under valgrind the child's
         * leak check sees cmocka's state orphaned by the main thread's exit
         * and turns _exit(0) into --error-exitcode */
        close(ch.release_fd);
        assert_int_equal(waitpid(ch.pid, &status, 0), ch.pid);
        assert_true(WIFEXITED(status));
        assert_false(holder_alive(&p));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_identify_tid_zero),
                cmocka_unit_test(test_identify_self),
                cmocka_unit_test(test_identify_thread),
                cmocka_unit_test(test_identify_child_hostile_comm),
                cmocka_unit_test(test_identify_cmdline),
                cmocka_unit_test(test_identify_cmdline_cut),
                cmocka_unit_test(test_identify_gone),
                cmocka_unit_test(test_start_time),
                cmocka_unit_test(test_descends_from),
                cmocka_unit_test(test_find_lineage),
                cmocka_unit_test(test_identify_quick),
                cmocka_unit_test(test_pidfd_open),
                cmocka_unit_test(test_alive),
                cmocka_unit_test(test_alive_leader_exited),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
