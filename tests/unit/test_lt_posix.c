/* SPDX-License-Identifier: MIT */
/* Unit tests for fcntl/lockf/OFD record locks in the lock table
 * (src/core/table/lt_flock.c, SPEC R7.4): a record lock is the lock of the
 * name, as a flock and a create are; it goes at its owner's unlock, at its
 * owner's close (FLUSH), at the release of the open file it came through,
 * and waiters of both APIs queue in one FIFO. Owners and file ids are the
 * numbers fs/ would pass (the kernel's lock_owner, the daemon's file id). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
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
        struct caller self;      /* this test process */
        struct caller stranger;  /* a live process that is no kin of ours */
        pid_t stranger_pid;
        int stranger_fd;
        struct grant grants[8];  /* replies to parked requests, in order */
        size_t n_grants;
};

static void note_grant(void *ctx, uint64_t id, int err, const struct lt_handle *h) {
        struct fixture *f = ctx;
        (void)h;
        if (f->n_grants < sizeof(f->grants) / sizeof(f->grants[0]))
                f->grants[f->n_grants++] = (struct grant){ .id = id, .err = err };
}

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof(*f));
        struct locktable_config cfg = { .max_locks = 100, .max_content = 64, .max_depth = 4 };
        assert_int_equal(store_mem_new(&f->store), 0);
        assert_int_equal(locktable_new(&cfg, f->store, &f->t), 0);
        locktable_set_grant_fn(f->t, note_grant, f);
        assert_int_equal(holder_identify(getpid(), 0, 0, &f->self), 0);
        f->stranger_pid = spawn_stranger(&f->stranger_fd);
        assert_true(f->stranger_pid > 0);
        assert_int_equal(holder_identify(f->stranger_pid, 0, 0, &f->stranger), 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;
        locktable_free(f->t);
        store_free(f->store);
        close(f->stranger_fd); /* init reaps it */
        free(f);
        return 0;
}

/* Open "a.lock" (held or not) for c as an O_CREAT|O_WRONLY open would. */
static struct lt_handle open_name(struct fixture *f, const struct caller *c) {
        struct lt_attr a;
        struct lt_handle h;
        assert_int_equal(locktable_create(f->t, LT_INO_ROOT, "a.lock", c, O_CREAT | O_WRONLY, &a,
                                          &h),
                         0);
        return h;
}

static bool exists(struct fixture *f) {
        struct lt_attr a;
        return locktable_lookup(f->t, LT_INO_ROOT, "a.lock", &a) == 0;
}

static struct lock_view view_of(struct fixture *f, uint64_t ino) {
        struct lock_view v;
        assert_int_equal(locktable_view(f->t, ino, &v), 0);
        return v;
}

/* A process that created the name and then locked it holds it by both;
 * its F_UNLCK releases the name, another owner meanwhile gets -EAGAIN and
 * F_GETLK names the holder. */
static void test_created_then_locked_is_released_by_unlock(void **state) {
        struct fixture *f = *state;
        struct lt_handle h = open_name(f, &f->self), got;
        assert_int_equal(h.kind, LT_HANDLE_HOLDER);
        assert_int_equal(locktable_posix_lock(f->t, h.ino, &h, 100, 1, &f->self, true, 1, &got), 0);
        assert_int_equal(got.kind, LT_HANDLE_HOLDER);
        assert_int_equal(locktable_posix_lock(f->t, h.ino, &h, 100, 1, &f->self, true, 2, &got), 0);

        struct lt_handle hs = open_name(f, &f->stranger);
        assert_int_equal(hs.kind, LT_HANDLE_CONTENDER);
        assert_int_equal(locktable_posix_lock(f->t, hs.ino, &hs, 200, 2, &f->stranger, true, 3, &got),
                         -EAGAIN);
        pid_t pid = -1;
        assert_int_equal(locktable_posix_test(f->t, hs.ino, &hs, 200, 2, &f->stranger, 0, &pid), 1);
        assert_int_equal(pid, getpid());
        assert_int_equal(locktable_posix_test(f->t, h.ino, &h, 100, 1, &f->self, 0, &pid), 0);

        locktable_posix_unlock(f->t, h.ino, 999, NULL, NULL); /* not its owner: nothing */
        assert_true(exists(f));
        locktable_posix_unlock(f->t, h.ino, 100, NULL, NULL);
        assert_false(exists(f));
        assert_int_equal(locktable_posix_test(f->t, hs.ino, &hs, 200, 2, &f->stranger, 0, &pid), 0);
}

/* The two holders: a lock held by its creator (a live process)
 * cannot be record-locked by another; the waiter gets it only when the
 * creator lets go, by hand-off (the name never vanishes), and a third
 * owner then waits on the waiter. */
static void test_record_lock_waits_for_the_creator(void **state) {
        struct fixture *f = *state;
        struct lt_handle hs = open_name(f, &f->stranger), got;
        assert_int_equal(hs.kind, LT_HANDLE_HOLDER);
        struct lt_handle h = open_name(f, &f->self);
        assert_int_equal(h.kind, LT_HANDLE_CONTENDER);
        assert_int_equal(locktable_posix_lock(f->t, h.ino, &h, 100, 1, &f->self, false, 7, &got),
                         LT_PARKED);
        struct lock_view forced;
        assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, "a.lock", &f->stranger, &forced), 0);
        assert_true(exists(f)); /* handed on */
        assert_int_equal(f->n_grants, 1);
        assert_int_equal(f->grants[0].id, 7);
        assert_int_equal(f->grants[0].err, 0);
        struct lock_view v = view_of(f, h.ino);
        assert_int_equal(v.pid, getpid());
        assert_int_equal(v.how, LOCK_HOW_FCNTL);
        lock_view_clear(&v);

        assert_int_equal(locktable_posix_lock(f->t, hs.ino, &hs, 300, 3, &f->stranger, true, 8, &got),
                         -EAGAIN);
        assert_int_equal(locktable_flock(f->t, hs.ino, &hs, 3, 0, &f->stranger, true, 9, &got),
                         -EWOULDBLOCK);
        /* the close of the file it came through ends it (an OFD lock's end) */
        locktable_posix_file_closed(f->t, h.ino, 2, NULL, NULL); /* another file: nothing */
        assert_true(exists(f));
        locktable_posix_file_closed(f->t, h.ino, 1, NULL, NULL);
        assert_false(exists(f));
}

/* flock and record-lock waiters share one FIFO: a flock holder's unlock
 * goes to the record-lock waiter that came first, then to the flock
 * waiter. */
static void test_flock_and_record_waiters_share_one_queue(void **state) {
        struct fixture *f = *state;
        struct lt_handle h = open_name(f, &f->self), got;
        assert_int_equal(locktable_flock(f->t, h.ino, &h, 1, 0, &f->self, true, 1, &got), 0);
        struct lt_handle hs = open_name(f, &f->stranger);
        assert_int_equal(locktable_posix_lock(f->t, hs.ino, &hs, 500, 5, &f->stranger, false, 2, &got),
                         LT_PARKED);
        assert_int_equal(locktable_flock(f->t, hs.ino, &hs, 6, 0, &f->stranger, false, 3, &got),
                         LT_PARKED);
        locktable_flock_unlock(f->t, h.ino, 1, NULL, NULL);
        assert_int_equal(f->n_grants, 1);
        assert_int_equal(f->grants[0].id, 2);
        assert_int_equal(f->grants[0].err, 0);
        locktable_posix_unlock(f->t, h.ino, 500, NULL, NULL);
        assert_int_equal(f->n_grants, 2);
        assert_int_equal(f->grants[1].id, 3);
        assert_int_equal(f->grants[1].err, 0);
        assert_true(exists(f));
        locktable_flock_unlock(f->t, h.ino, 6, NULL, NULL);
        assert_false(exists(f));
}

/* A holder that took both a flock and a record lock keeps the lock until
 * the second of them goes. */
static void test_both_holds_end_with_the_last(void **state) {
        struct fixture *f = *state;
        struct lt_handle h = open_name(f, &f->self), got;
        assert_int_equal(locktable_flock(f->t, h.ino, &h, 1, 0, &f->self, true, 1, &got), 0);
        assert_int_equal(locktable_posix_lock(f->t, h.ino, &h, 100, 1, &f->self, true, 2, &got), 0);
        locktable_flock_unlock(f->t, h.ino, 1, NULL, NULL);
        assert_true(exists(f));
        locktable_posix_unlock(f->t, h.ino, 100, NULL, NULL);
        assert_false(exists(f));
}

/* A record lock on a free name takes it (how "fcntl"); a request without
 * an owner is refused. */
static void test_record_lock_takes_a_free_name(void **state) {
        struct fixture *f = *state;
        struct lt_handle h = open_name(f, &f->stranger), got;
        struct lock_view forced;
        struct lt_handle mine = open_name(f, &f->self); /* a contender's, kept open */
        assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, "a.lock", &f->stranger, &forced), 0);
        assert_int_equal(locktable_posix_lock(f->t, mine.ino, &mine, 0, 1, &f->self, true, 1, &got),
                         -EINVAL);
        assert_int_equal(locktable_posix_lock(f->t, mine.ino, &mine, 100, 1, &f->self, true, 1, &got),
                         0);
        assert_int_not_equal(got.ino, h.ino); /* the name taken anew */
        struct lock_view v = view_of(f, got.ino);
        assert_int_equal(v.how, LOCK_HOW_FCNTL);
        assert_int_equal(v.pid, getpid());
        lock_view_clear(&v);
        locktable_posix_unlock(f->t, got.ino, 100, NULL, NULL);
        assert_false(exists(f));
}

/* A child of the holder does not join a lock held through the other API:
 * the parent's death would end it under the child (two holders). Within
 * one API the rules are the old ones. */
static void test_descendant_does_not_join_through_the_other_api(void **state) {
        struct fixture *f = *state;
        int child_fd;
        pid_t child_pid = spawn_child(&child_fd);
        assert_true(child_pid > 0);
        struct caller child;
        assert_int_equal(holder_identify(child_pid, 0, 0, &child), 0);
        struct lt_handle h = open_name(f, &f->self), got;
        assert_int_equal(locktable_flock(f->t, h.ino, &h, 1, 0, &f->self, true, 1, &got), 0);
        struct lt_handle hc = open_name(f, &child);
        assert_int_equal(locktable_posix_lock(f->t, hc.ino, &hc, 700, 7, &child, true, 2, &got),
                         -EAGAIN);
        locktable_flock_unlock(f->t, h.ino, 1, NULL, NULL);
        assert_false(exists(f));

        h = open_name(f, &f->self);
        assert_int_equal(locktable_posix_lock(f->t, h.ino, &h, 100, 1, &f->self, true, 3, &got), 0);
        hc = open_name(f, &child);
        assert_int_equal(locktable_flock(f->t, hc.ino, &hc, 8, 0, &child, true, 4, &got),
                         -EWOULDBLOCK);
        pid_t pid = 0;
        assert_int_equal(locktable_posix_test(f->t, hc.ino, &hc, 700, 7, &child, 0, &pid), 1);
        assert_int_equal(pid, getpid());
        locktable_posix_unlock(f->t, h.ino, 100, NULL, NULL);
        assert_false(exists(f));
        end_child(child_pid, child_fd);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_created_then_locked_is_released_by_unlock,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_record_lock_waits_for_the_creator, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_flock_and_record_waiters_share_one_queue,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_both_holds_end_with_the_last, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_record_lock_takes_a_free_name, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_descendant_does_not_join_through_the_other_api,
                                                setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
