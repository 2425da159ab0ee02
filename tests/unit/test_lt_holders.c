/* SPDX-License-Identifier: MIT */
/* Unit tests for holder records, claims and hand-offs (src/core/table/:
 * lt_holders.c, lt_flock.c, lt_lock.c, lt_reap.c): identity rules respect
 * uids, and no hand-off goes to a dead process. Real processes play the holders. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "locktable.h"
#include "store.h"
#include "store_mem.h"
#include "fixture.h"

struct grant {
        uint64_t id;
        int err;
};

struct fixture {
        struct store *store;
        struct locktable *t;
        struct caller self;      /* this test process, as root */
        struct grant grants[8];
        size_t n_grants;
};

static void on_grant(void *ctx, uint64_t id, int err, const struct lt_handle *h) {
        (void)h;
        struct fixture *f = ctx;
        if (f->n_grants < 8)
                f->grants[f->n_grants++] = (struct grant){ id, err };
}

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof(*f));
        struct locktable_config cfg = { .max_locks = 100, .max_content = 64, .max_depth = 4 };
        assert_int_equal(store_mem_new(&f->store), 0);
        assert_int_equal(locktable_new(&cfg, f->store, &f->t), 0);
        locktable_set_grant_fn(f->t, on_grant, f);
        assert_int_equal(holder_identify(getpid(), 0, 0, &f->self), 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;
        locktable_free(f->t);
        store_free(f->store);
        free(f);
        return 0;
}

/* Wait for the reaper fd and reap what is due. */
static void reap(struct fixture *f) {
        assert_int_equal(await_reapable(f->t, EVENT_TIMEOUT_MS), 1);
        locktable_reap(f->t, NULL, NULL);
}

/* SPEC R3.4: a descendant of the holder acts as the holder only while it
 * runs as the lock's uid (`su other -c rm` is not the holder). */
static void test_descendant_of_another_uid_is_not_the_holder(void **state) {
        struct fixture *f = *state;
        struct lt_handle h;
        assert_int_equal(take(f->t, "maint.lock", &f->self, &h), 0);
        int fd;
        pid_t child = spawn_child(&fd);
        struct caller as_user, as_root;
        assert_int_equal(holder_identify(child, 1000, 1000, &as_user), 0);
        assert_int_equal(holder_identify(child, 0, 0, &as_root), 0);
        struct lock_view forced;
        assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, "maint.lock", &as_user, &forced),
                         -EBUSY);
        assert_int_equal(locktable_write(f->t, &h, &as_user, 0, "x", 1), -EEXIST);
        struct lt_attr a;
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "maint.lock", &a), 0);
        assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, "maint.lock", &as_root, &forced), 0);
        assert_null(forced.path); /* a release by the holder's lineage, not a break */
        close(fd);
        waitpid(child, NULL, 0);
}

/* SPEC R3.3: a claim may name only a process of the writer's uid, and the
 * lock keeps the writer's uid (a user under su cannot make its lock
 * root's). */
static void test_claim_of_another_uids_process_is_ignored(void **state) {
        struct fixture *f = *state;
        int fd;
        pid_t child = spawn_child(&fd);
        struct caller writer; /* our child writing as uid 1000; we are its parent, uid 0 */
        assert_int_equal(holder_identify(child, 1000, 1000, &writer), 0);
        struct lt_handle h;
        assert_int_equal(take(f->t, "c.lock", &writer, &h), 0);
        char pid[16];
        int len = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
        assert_int_equal(locktable_write(f->t, &h, &writer, 0, pid, (size_t)len), len);
        struct lock_view v;
        assert_int_equal(locktable_view(f->t, h.ino, &v), 0);
        assert_int_equal(v.pid, child);
        assert_int_equal(v.uid, 1000);
        assert_int_equal(v.claim_ignored_pid, getpid());
        lock_view_clear(&v);
        /* the same claim by root's own child (same uid) is honoured */
        struct caller root_writer;
        assert_int_equal(holder_identify(child, 0, 0, &root_writer), 0);
        assert_int_equal(take(f->t, "d.lock", &root_writer, &h), 0);
        assert_int_equal(locktable_write(f->t, &h, &root_writer, 0, pid, (size_t)len), len);
        assert_int_equal(locktable_view(f->t, h.ino, &v), 0);
        assert_int_equal(v.pid, getpid());
        assert_int_equal(v.uid, 0);
        assert_int_equal(v.how, LOCK_HOW_CLAIM);
        lock_view_clear(&v);
        close(fd);
        waitpid(child, NULL, 0);
}

/* Write "PID\n" into lock h as writer: the bytes written, or -errno. */
static ssize_t write_pid(struct fixture *f, const struct lt_handle *h, const struct caller *writer,
                         pid_t pid) {
        char buf[16];
        int len = snprintf(buf, sizeof(buf), "%d\n", (int)pid);
        return locktable_write(f->t, h, writer, 0, buf, (size_t)len);
}

/* Who holds lock h now, and the claim it ignored. */
static void holder_of(struct fixture *f, const struct lt_handle *h, pid_t *ret_pid,
                      enum lock_how *ret_how, pid_t *ret_ignored) {
        struct lock_view v;
        assert_int_equal(locktable_view(f->t, h->ino, &v), 0);
        *ret_pid = v.pid;
        *ret_how = v.how;
        *ret_ignored = v.claim_ignored_pid;
        lock_view_clear(&v);
}

/* A grandchild of ours, its parent (our child) alive and waiting for it.
 * The grandchild lives until *ret_fd (ours) is closed or it is killed;
 * then the middle process exits. Returns the grandchild's pid (the
 * child's in *ret_child), or -1. */
static pid_t spawn_grandchild(int *ret_fd, pid_t *ret_child) {
        int life[2], report[2];
        if (pipe(life) < 0 || pipe(report) < 0)
                return -1;
        pid_t child = fork();
        if (child == 0) {
                pid_t g = fork();
                if (g == 0) {
                        char c;
                        close(life[1]);
                        while (read(life[0], &c, 1) > 0)
                                ;
                        _exit(0);
                }
                close(life[0]);
                close(life[1]);
                if (g < 0 || write(report[1], &g, sizeof(g)) != sizeof(g))
                        _exit(1);
                waitpid(g, NULL, 0);
                _exit(0);
        }
        close(life[0]);
        close(report[1]);
        pid_t g = -1;
        if (child < 0 || read(report[0], &g, sizeof(g)) != sizeof(g))
                g = -1;
        close(report[0]);
        *ret_fd = life[1];
        *ret_child = child;
        return g;
}

/* SPEC R3.3: a launcher's claim of the process it started (`cmd & echo $!
 * > x.pid`) makes that process the holder; its death releases the lock. */
static void test_claim_of_own_child_makes_it_the_holder(void **state) {
        struct fixture *f = *state;
        int fd;
        pid_t child = spawn_child(&fd);
        struct lt_handle h;
        assert_int_equal(take(f->t, "c.pid", &f->self, &h), 0);
        assert_true(write_pid(f, &h, &f->self, child) > 0);
        pid_t pid, ignored;
        enum lock_how how;
        holder_of(f, &h, &pid, &how, &ignored);
        assert_int_equal(pid, child);
        assert_int_equal(how, LOCK_HOW_CLAIM);
        assert_int_equal(ignored, 0);
        end_child(child, fd);
        reap(f);
        assert_int_equal(ino_of(f->t, LT_INO_ROOT, "c.pid"), -ENOENT);
}

/* A deeper descendant too, while the chain of parents to the writer lives. */
static void test_claim_of_grandchild(void **state) {
        struct fixture *f = *state;
        int fd = -1;
        pid_t mid = -1;
        pid_t g = spawn_grandchild(&fd, &mid);
        assert_true(g > 0);
        struct lt_handle h;
        assert_int_equal(take(f->t, "g.pid", &f->self, &h), 0);
        assert_true(write_pid(f, &h, &f->self, g) > 0);
        pid_t pid, ignored;
        enum lock_how how;
        holder_of(f, &h, &pid, &how, &ignored);
        assert_int_equal(pid, g);
        assert_int_equal(how, LOCK_HOW_CLAIM);
        end_child(mid, fd); /* g exits, the middle reaps it and exits */
        reap(f);
        assert_int_equal(ino_of(f->t, LT_INO_ROOT, "g.pid"), -ENOENT);
}

/* Descendants that are not (or no longer) the writer's are ignored: one
 * reparented when its parent died, a sibling of the writer, and a child
 * whose chain leads to the writer's pid with another start time (the
 * writer's pid reused: as if written by an older process of that pid). */
static void test_claim_of_a_non_descendant_is_ignored(void **state) {
        struct fixture *f = *state;
        int fd_s, fd_a, fd_b;
        pid_t stranger = spawn_stranger(&fd_s);
        pid_t a = spawn_child(&fd_a), b = spawn_child(&fd_b);
        assert_true(stranger > 0 && a > 0 && b > 0);
        struct caller writer_a, old_self = f->self;
        assert_int_equal(holder_identify(a, 0, 0, &writer_a), 0);
        old_self.self.start_time--;
        struct { const char *name; const struct caller *writer; pid_t claimed; } cases[] = {
                { "reparented.pid", &f->self, stranger },
                { "sibling.pid", &writer_a, b },
                { "reused.pid", &old_self, a },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
                struct lt_handle h;
                assert_int_equal(take(f->t, cases[i].name, &f->self, &h), 0);
                assert_true(write_pid(f, &h, cases[i].writer, cases[i].claimed) > 0);
                pid_t pid, ignored;
                enum lock_how how;
                holder_of(f, &h, &pid, &how, &ignored);
                assert_int_equal(pid, getpid());
                assert_int_equal(how, LOCK_HOW_CREATOR);
                assert_int_equal(ignored, cases[i].claimed);
        }
        close(fd_s);
        end_child(a, fd_a);
        end_child(b, fd_b);
}

/* A descendant of another uid than the writer's is not claimed either. */
static void test_claim_of_another_uids_child_is_ignored(void **state) {
        struct fixture *f = *state;
        struct caller user; /* this process writing as uid 1000; its child runs as root */
        assert_int_equal(holder_identify(getpid(), 1000, 1000, &user), 0);
        int fd;
        pid_t child = spawn_child(&fd);
        struct lt_handle h;
        assert_int_equal(take(f->t, "u.pid", &user, &h), 0);
        assert_true(write_pid(f, &h, &user, child) > 0);
        pid_t pid, ignored;
        enum lock_how how;
        holder_of(f, &h, &pid, &how, &ignored);
        assert_int_equal(pid, getpid());
        assert_int_equal(ignored, child);
        end_child(child, fd);
}

/* A holder's descriptor in the hands of another uid is a contender's. */
static void test_holder_handle_of_another_uid_contends(void **state) {
        struct fixture *f = *state;
        struct lt_handle h;
        assert_int_equal(take(f->t, "p.lock", &f->self, &h), 0);
        int fd;
        pid_t child = spawn_child(&fd);
        struct caller other;
        assert_int_equal(holder_identify(child, 1000, 1000, &other), 0);
        char pid[16];
        int len = snprintf(pid, sizeof(pid), "%d", (int)child);
        assert_int_equal(locktable_write(f->t, &h, &other, 0, pid, (size_t)len), -EEXIST);
        struct lt_attr a;
        assert_int_equal(locktable_setattr(f->t, h.ino, &h, &other, LT_SET_SIZE, 0, &a), -EEXIST);
        struct lt_handle granted;
        assert_int_equal(locktable_flock(f->t, h.ino, &h, 99, 0, &other, true, 1, &granted),
                         -EWOULDBLOCK);
        struct lock_view v;
        assert_int_equal(locktable_view(f->t, h.ino, &v), 0);
        assert_int_equal(v.pid, getpid());
        assert_int_equal(v.content_len, 0);
        lock_view_clear(&v);
        close(fd);
        waitpid(child, NULL, 0);
}

/* The review's use-after-free: a holder parked as a flock waiter on its own
 * lock dies. Its wait is cancelled, its lock released, nothing handed to
 * the dead process (run under ASan in the suite). */
static void test_dying_holder_waiting_on_its_own_lock(void **state) {
        struct fixture *f = *state;
        int fd;
        pid_t shell = spawn_child(&fd);
        struct caller s;
        assert_int_equal(holder_identify(shell, 1000, 1000, &s), 0);
        struct lt_handle h, granted;
        assert_int_equal(take(f->t, "n.lock", &s, &h), 0);
        assert_int_equal(locktable_flock(f->t, h.ino, &h, 8, 0, &s, false, 1, &granted), 0);
        struct lt_handle h9 = h; /* a second open file of the same holder */
        assert_int_equal(locktable_flock(f->t, h.ino, &h9, 9, 0, &s, false, 2, &granted),
                         LT_PARKED);
        close(fd);
        waitpid(shell, NULL, 0);
        reap(f);
        assert_int_equal(f->n_grants, 1);
        assert_int_equal(f->grants[0].id, 2);
        assert_int_equal(f->grants[0].err, LT_WAITER_ORPHANED);
        struct lt_attr a;
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "n.lock", &a), -ENOENT);
        /* a later release through the dead holder's descriptor is harmless */
        locktable_flock_unlock(f->t, h.ino, 8, NULL, NULL);
        assert_int_equal(take(f->t, "n.lock", &f->self, &h), 0);
}

/* A release hands the lock on only to a live waiter: one whose process
 * died (not reaped yet) is cancelled and the next one gets it. */
static void test_handoff_skips_a_dead_waiter(void **state) {
        struct fixture *f = *state;
        struct lt_handle h, granted;
        assert_int_equal(take(f->t, "q.lock", &f->self, &h), 0);
        assert_int_equal(locktable_flock(f->t, h.ino, &h, 1, 0, &f->self, false, 1, &granted), 0);
        int fd_dead, fd_live;
        pid_t dead = spawn_child(&fd_dead), live = spawn_child(&fd_live);
        struct caller cd, cl;
        assert_int_equal(holder_identify(dead, 0, 0, &cd), 0);
        assert_int_equal(holder_identify(live, 0, 0, &cl), 0);
        struct lt_handle c = { .kind = LT_HANDLE_CONTENDER, .ino = h.ino };
        assert_int_equal(locktable_flock(f->t, h.ino, &c, 2, 0, &cd, false, 2, &granted), LT_PARKED);
        assert_int_equal(locktable_flock(f->t, h.ino, &c, 3, 0, &cl, false, 3, &granted), LT_PARKED);
        close(fd_dead);
        waitpid(dead, NULL, 0); /* dead; the reaper has not run */
        locktable_flock_unlock(f->t, h.ino, 1, NULL, NULL);
        assert_int_equal(f->n_grants, 2);
        assert_int_equal(f->grants[0].id, 2);
        assert_int_equal(f->grants[0].err, LT_WAITER_ORPHANED);
        assert_int_equal(f->grants[1].id, 3);
        assert_int_equal(f->grants[1].err, 0);
        struct lock_view v;
        assert_int_equal(locktable_view(f->t, h.ino, &v), 0);
        assert_int_equal(v.pid, live);
        assert_int_equal(v.how, LOCK_HOW_FLOCK);
        lock_view_clear(&v);
        close(fd_live);
        waitpid(live, NULL, 0);
        reap(f);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_descendant_of_another_uid_is_not_the_holder,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_claim_of_another_uids_process_is_ignored,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_claim_of_own_child_makes_it_the_holder,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_claim_of_grandchild, setup, teardown),
                cmocka_unit_test_setup_teardown(test_claim_of_a_non_descendant_is_ignored, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_claim_of_another_uids_child_is_ignored,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_holder_handle_of_another_uid_contends, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_dying_holder_waiting_on_its_own_lock, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_handoff_skips_a_dead_waiter, setup,
                                                teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
