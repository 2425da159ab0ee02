/* SPDX-License-Identifier: MIT */
/* Unit tests for shared locks in the lock table (src/core/table/lt_share.c,
 * lt_flock.c, SPEC R7.3): flock(LOCK_SH) and fcntl read locks let many
 * holders share a name, an exclusive request waits for the last of them
 * and holds back the shared requests after it, the oldest sharer takes the
 * place of a recorded holder that goes, conversions behave as flock(2) and
 * fcntl(2) do, and status lists every holder and waiter. Owners and file
 * ids are the numbers fs/ would pass. */
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

#define SH LT_LOCK_SHARED
#define NB LT_LOCK_NB

struct grant {
        uint64_t id;
        int err;
        enum lt_handle_kind kind;
};

struct fixture {
        struct store *store;
        struct locktable *t;
        struct caller self;        /* this test process */
        struct caller other, third; /* live processes that are no kin of ours */
        pid_t other_pid, third_pid;
        int other_fd, third_fd;
        struct grant grants[8];    /* replies to parked requests, in order */
        size_t n_grants;
};

static void note_grant(void *ctx, uint64_t id, int err, const struct lt_handle *h) {
        struct fixture *f = ctx;
        if (f->n_grants < sizeof(f->grants) / sizeof(f->grants[0]))
                f->grants[f->n_grants++] =
                        (struct grant){ .id = id, .err = err, .kind = h ? h->kind : 0 };
}

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof(*f));
        struct locktable_config cfg = { .max_locks = 100, .max_content = 64, .max_depth = 4 };
        assert_int_equal(store_mem_new(&f->store), 0);
        assert_int_equal(locktable_new(&cfg, f->store, &f->t), 0);
        locktable_set_grant_fn(f->t, note_grant, f);
        assert_int_equal(holder_identify(getpid(), 0, 0, &f->self), 0);
        f->other_pid = spawn_stranger(&f->other_fd);
        f->third_pid = spawn_stranger(&f->third_fd);
        assert_true(f->other_pid > 0 && f->third_pid > 0);
        assert_int_equal(holder_identify(f->other_pid, 0, 0, &f->other), 0);
        assert_int_equal(holder_identify(f->third_pid, 0, 0, &f->third), 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;
        locktable_free(f->t);
        store_free(f->store);
        close(f->other_fd); /* init reaps them */
        close(f->third_fd);
        free(f);
        return 0;
}

/* Open "s.lock" (held or not) for c as an O_CREAT|O_WRONLY open would. */
static struct lt_handle open_name(struct fixture *f, const struct caller *c) {
        struct lt_attr a;
        struct lt_handle h;
        assert_int_equal(locktable_create(f->t, LT_INO_ROOT, "s.lock", c, O_CREAT | O_WRONLY, &a,
                                          &h),
                         0);
        return h;
}

static bool exists(struct fixture *f) {
        struct lt_attr a;
        return locktable_lookup(f->t, LT_INO_ROOT, "s.lock", &a) == 0;
}

static struct lock_view view_of(struct fixture *f, uint64_t ino) {
        struct lock_view v;
        assert_int_equal(locktable_view(f->t, ino, &v), 0);
        return v;
}

static void reap(struct fixture *f) {
        assert_int_equal(await_reapable(f->t, EVENT_TIMEOUT_MS), 1);
        locktable_reap(f->t, NULL, NULL);
}

/* Two shared flocks share the name; a writer waits and holds back a
 * shared request that comes after it; when the recorded holder goes, the
 * sharer takes its place (a new fence, no reply owed); the last sharer's
 * unlock hands the lock to the writer, whose unlock hands it to the shared
 * request. Status lists the sharer and both waiters in order. */
static void test_sharers_share_and_a_writer_goes_first(void **state) {
        struct fixture *f = *state;
        struct lt_handle h = open_name(f, &f->self), got;
        assert_int_equal(locktable_flock(f->t, h.ino, &h, 1, 0, &f->self, SH | NB, 1, &got), 0);
        assert_int_equal(got.kind, LT_HANDLE_HOLDER);
        struct lt_handle ho = open_name(f, &f->other);
        assert_int_equal(ho.kind, LT_HANDLE_CONTENDER);
        assert_int_equal(locktable_flock(f->t, ho.ino, &ho, 2, 0, &f->other, SH | NB, 2, &got), 0);
        assert_int_equal(got.kind, LT_HANDLE_CONTENDER); /* a sharer may not write */
        assert_int_equal(got.ino, h.ino);

        struct lt_handle h3 = open_name(f, &f->third);
        assert_int_equal(locktable_flock(f->t, h3.ino, &h3, 3, 0, &f->third, NB, 3, &got),
                         -EWOULDBLOCK);
        assert_int_equal(locktable_flock(f->t, h3.ino, &h3, 3, 0, &f->third, 0, 10, &got),
                         LT_PARKED);
        assert_int_equal(locktable_flock(f->t, ho.ino, &ho, 4, 0, &f->other, SH | NB, 4, &got),
                         -EWOULDBLOCK);
        assert_int_equal(locktable_flock(f->t, ho.ino, &ho, 4, 0, &f->other, SH, 11, &got),
                         LT_PARKED);
        pid_t pid = 0;
        assert_int_equal(locktable_posix_test(f->t, h3.ino, &h3, 900, 9, &f->third, 0, &pid), 2);
        assert_int_equal(pid, getpid());
        assert_int_equal(locktable_posix_test(f->t, h3.ino, &h3, 900, 9, &f->third, SH, &pid), 2);

        struct lock_view v = view_of(f, h.ino);
        assert_true(v.shared);
        assert_int_equal(v.pid, getpid());
        assert_int_equal(v.sharers_total, 1);
        assert_int_equal(v.n_sharers, 1);
        assert_int_equal(v.sharers[0].pid, f->other_pid);
        assert_int_equal(v.waiters_total, 2);
        assert_int_equal(v.waiters[0].pid, f->third_pid);
        assert_false(v.waiters[0].shared);
        assert_int_equal(v.waiters[1].pid, f->other_pid);
        assert_true(v.waiters[1].shared);
        uint64_t fence = v.fence;
        lock_view_clear(&v);

        locktable_flock_unlock(f->t, h.ino, 1, NULL, NULL);
        assert_true(exists(f));
        assert_int_equal(f->n_grants, 0);
        v = view_of(f, h.ino);
        assert_int_equal(v.pid, f->other_pid);
        assert_true(v.shared);
        assert_int_equal(v.sharers_total, 0);
        assert_true(v.fence > fence);
        lock_view_clear(&v);

        locktable_flock_unlock(f->t, h.ino, 2, NULL, NULL);
        assert_int_equal(f->n_grants, 1);
        assert_int_equal(f->grants[0].id, 10);
        assert_int_equal(f->grants[0].err, 0);
        v = view_of(f, h.ino);
        assert_int_equal(v.pid, f->third_pid);
        assert_false(v.shared);
        lock_view_clear(&v);

        locktable_flock_unlock(f->t, h.ino, 3, NULL, NULL);
        assert_int_equal(f->n_grants, 2);
        assert_int_equal(f->grants[1].id, 11);
        assert_int_equal(f->grants[1].err, 0);
        v = view_of(f, h.ino);
        assert_int_equal(v.pid, f->other_pid);
        assert_true(v.shared);
        lock_view_clear(&v);
        locktable_flock_unlock(f->t, h.ino, 4, NULL, NULL);
        assert_false(exists(f));
}

/* A flock and an fcntl read lock share one lock; a sharer's death ends
 * its share only, the recorded holder's death hands the lock to the
 * oldest sharer. */
static void test_death_ends_a_share_or_promotes_one(void **state) {
        struct fixture *f = *state;
        int child_fd;
        pid_t child_pid = spawn_child(&child_fd);
        assert_true(child_pid > 0);
        struct caller child;
        assert_int_equal(holder_identify(child_pid, 0, 0, &child), 0);
        struct lt_handle hc = open_name(f, &child), got;
        assert_int_equal(locktable_posix_lock(f->t, hc.ino, &hc, 700, 7, &child, SH | NB, 1, &got),
                         0);
        struct lt_handle h = open_name(f, &f->self);
        assert_int_equal(locktable_flock(f->t, h.ino, &h, 1, 0, &f->self, SH | NB, 2, &got), 0);
        struct lt_handle ho = open_name(f, &f->other);
        assert_int_equal(locktable_posix_lock(f->t, ho.ino, &ho, 800, 8, &f->other, SH | NB, 3,
                                              &got),
                         0);
        struct lock_view v = view_of(f, h.ino);
        assert_int_equal(v.pid, child_pid);
        assert_int_equal(v.sharers_total, 2);
        lock_view_clear(&v);

        end_child(child_pid, child_fd);
        reap(f);
        assert_true(exists(f));
        v = view_of(f, h.ino);
        assert_int_equal(v.pid, getpid()); /* the oldest sharer */
        assert_int_equal(v.how, LOCK_HOW_FLOCK);
        assert_int_equal(v.sharers_total, 1);
        assert_int_equal(v.sharers[0].pid, f->other_pid);
        lock_view_clear(&v);

        locktable_posix_file_closed(f->t, h.ino, 8, NULL, NULL); /* the sharer's close */
        v = view_of(f, h.ino);
        assert_int_equal(v.sharers_total, 0);
        lock_view_clear(&v);
        locktable_flock_unlock(f->t, h.ino, 1, NULL, NULL);
        assert_false(exists(f));
}

/* Conversions: the only holder upgrades and downgrades in place; with
 * another sharer, F_SETLK to a write lock gets -EAGAIN and keeps the read
 * lock, flock(LOCK_EX|LOCK_NB) loses the share (flock(2) drops it first),
 * and the recorded holder's exclusive request is a release (its place
 * goes to the sharer) and a new request. */
static void test_conversions(void **state) {
        struct fixture *f = *state;
        struct lt_handle h = open_name(f, &f->self), got;
        assert_int_equal(locktable_flock(f->t, h.ino, &h, 1, 0, &f->self, SH | NB, 1, &got), 0);
        assert_int_equal(locktable_flock(f->t, h.ino, &h, 1, 0, &f->self, NB, 2, &got), 0);
        struct lock_view v = view_of(f, h.ino);
        assert_false(v.shared);
        lock_view_clear(&v);
        struct lt_handle ho = open_name(f, &f->other);
        assert_int_equal(locktable_flock(f->t, ho.ino, &ho, 2, 0, &f->other, SH | NB, 3, &got),
                         -EWOULDBLOCK); /* exclusive now */
        assert_int_equal(locktable_flock(f->t, h.ino, &h, 1, 0, &f->self, SH | NB, 4, &got), 0);
        assert_int_equal(locktable_flock(f->t, ho.ino, &ho, 2, 0, &f->other, SH | NB, 5, &got), 0);
        assert_int_equal(locktable_posix_lock(f->t, ho.ino, &ho, 500, 5, &f->other, SH | NB, 6,
                                              &got),
                         0);
        v = view_of(f, h.ino);
        assert_true(v.shared);
        assert_int_equal(v.sharers_total, 2);
        lock_view_clear(&v);

        assert_int_equal(locktable_posix_lock(f->t, ho.ino, &ho, 500, 5, &f->other, NB, 7, &got),
                         -EAGAIN);
        assert_int_equal(locktable_flock(f->t, ho.ino, &ho, 2, 0, &f->other, NB, 8, &got),
                         -EWOULDBLOCK);
        v = view_of(f, h.ino);
        assert_int_equal(v.sharers_total, 1); /* the read lock stays, the flock went */
        lock_view_clear(&v);

        assert_int_equal(locktable_flock(f->t, h.ino, &h, 1, 0, &f->self, NB, 9, &got),
                         -EWOULDBLOCK);
        v = view_of(f, h.ino);
        assert_int_equal(v.pid, f->other_pid);
        assert_int_equal(v.how, LOCK_HOW_FCNTL);
        assert_int_equal(v.sharers_total, 0);
        lock_view_clear(&v);
        locktable_posix_file_closed(f->t, h.ino, 5, NULL, NULL);
        assert_false(exists(f));
        assert_int_equal(f->n_grants, 0);
}

/* A cancelled writer no longer holds back the shared requests behind it;
 * one lock takes at most LT_SHARES_MAX sharers (4096), then -ENOLCK;
 * unlink by one of the holders of a shared lock ends that holder's holds
 * only (the recorded holder's place goes to the oldest sharer), and the
 * name goes with the last; unlink by a process that holds none is
 * -EBUSY. */
static void test_cancel_cap_and_unlink(void **state) {
        struct fixture *f = *state;
        struct lt_handle h = open_name(f, &f->self), got;
        assert_int_equal(locktable_flock(f->t, h.ino, &h, 1, 0, &f->self, SH | NB, 1, &got), 0);
        struct lt_handle h3 = open_name(f, &f->third);
        assert_int_equal(locktable_flock(f->t, h3.ino, &h3, 3, 0, &f->third, 0, 10, &got),
                         LT_PARKED);
        struct lt_handle ho = open_name(f, &f->other);
        assert_int_equal(locktable_flock(f->t, ho.ino, &ho, 2, 0, &f->other, SH, 11, &got),
                         LT_PARKED);
        assert_true(locktable_flock_cancel(f->t, 10));
        assert_int_equal(f->n_grants, 1);
        assert_int_equal(f->grants[0].id, 11);
        assert_int_equal(f->grants[0].err, 0);
        assert_int_equal(f->grants[0].kind, LT_HANDLE_CONTENDER);

        for (uint64_t owner = 100; owner < 100 + 4095; owner++)
                assert_int_equal(locktable_flock(f->t, ho.ino, &ho, owner, 0, &f->other, SH | NB,
                                                 owner, &got),
                                 0);
        assert_int_equal(locktable_flock(f->t, ho.ino, &ho, 99999, 0, &f->other, SH | NB, 99999,
                                         &got),
                         -ENOLCK);
        struct lock_view v = view_of(f, h.ino);
        assert_int_equal(v.sharers_total, 4096);
        assert_int_equal(v.n_sharers, LOCK_PARTIES_MAX);
        lock_view_clear(&v);

        struct lock_view forced;
        assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, "s.lock", &f->third, &forced), -EBUSY);
        assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, "s.lock", &f->self, &forced), 0);
        assert_true(exists(f)); /* the other's now */
        v = view_of(f, h.ino);
        assert_int_equal(v.pid, f->other_pid);
        assert_int_equal(v.sharers_total, 4095);
        lock_view_clear(&v);
        assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, "s.lock", &f->self, &forced), -EBUSY);
        assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, "s.lock", &f->other, &forced), 0);
        assert_false(exists(f));
}

/* Found by the adversarial review of shared locks (each a reproduction):
 * a sharer at its uid's quota is still promoted (its hold is never lost
 * to the quota); the names of a shared lock stay while others share it
 * (rename, link and unlink of one of several names: -EBUSY); F_GETLK
 * names another process than the caller's. */
static void test_review_quota_names_and_getlk(void **state) {
        struct fixture *f = *state;
        locktable_free(f->t);
        struct locktable_config cfg = { .max_locks = 100, .max_content = 64, .max_depth = 4,
                                        .max_locks_per_uid = 1 };
        assert_int_equal(locktable_new(&cfg, f->store, &f->t), 0);
        locktable_set_grant_fn(f->t, note_grant, f);
        struct caller user;
        assert_int_equal(holder_identify(f->other_pid, 1000, 1000, &user), 0);
        struct lt_handle mine;
        assert_int_equal(take(f->t, "own.lock", &user, &mine), 0); /* its quota: full */
        struct lt_handle h = open_name(f, &f->self), got;
        assert_int_equal(locktable_flock(f->t, h.ino, &h, 1, 0, &f->self, SH | NB, 1, &got), 0);
        struct lt_handle ho = open_name(f, &user);
        assert_int_equal(locktable_flock(f->t, ho.ino, &ho, 2, 0, &user, SH | NB, 2, &got), 0);
        pid_t pid = 0;
        assert_int_equal(locktable_posix_test(f->t, h.ino, &h, 100, 9, &f->self, 0, &pid), 2);
        assert_int_equal(pid, f->other_pid); /* the sharer, not the caller itself */

        struct lt_attr a;
        assert_int_equal(locktable_rename(f->t, LT_INO_ROOT, "s.lock", LT_INO_ROOT, "t.lock", 0,
                                          &f->self),
                         -EBUSY);
        assert_int_equal(locktable_link(f->t, h.ino, LT_INO_ROOT, "t.lock", &f->self, &a),
                         -EBUSY);
        locktable_flock_unlock(f->t, h.ino, 1, NULL, NULL);
        struct lock_view v = view_of(f, h.ino);
        assert_int_equal(v.pid, f->other_pid); /* promoted over its quota */
        lock_view_clear(&v);
        struct lt_handle h3 = open_name(f, &f->third);
        assert_int_equal(locktable_flock(f->t, h3.ino, &h3, 3, 0, &f->third, NB, 3, &got),
                         -EWOULDBLOCK);
        locktable_flock_unlock(f->t, h.ino, 2, NULL, NULL);
        assert_false(exists(f));
}

/* One open file's OFD read lock asked again by another process that has
 * it (a forked child), and two threads' requests through one open file,
 * are one hold: its unlock ends it. An exclusive request of a process
 * that shares the lock through the other API gets -EDEADLK at once. When
 * a holder's write lock goes and its LOCK_SH stays, the lock is shared
 * again and lets the waiting reader in. */
static void test_review_one_hold_deadlock_and_mode(void **state) {
        struct fixture *f = *state;
        struct lt_handle h = open_name(f, &f->self), got;
        assert_int_equal(locktable_flock(f->t, h.ino, &h, 1, 0, &f->self, SH | NB, 1, &got), 0);
        struct lt_handle ho = open_name(f, &f->other);
        assert_int_equal(locktable_posix_lock(f->t, ho.ino, &ho, 77, 7, &f->other, SH | NB, 2,
                                              &got),
                         0);
        assert_int_equal(locktable_posix_lock(f->t, ho.ino, &ho, 77, 7, &f->third, SH | NB, 3,
                                              &got),
                         0); /* the same OFD owner and file, from another process */
        struct lock_view v = view_of(f, h.ino);
        assert_int_equal(v.sharers_total, 1);
        lock_view_clear(&v);
        assert_int_equal(locktable_flock(f->t, ho.ino, &ho, 8, 0, &f->other, SH | NB, 4, &got),
                         0);
        assert_int_equal(locktable_posix_lock(f->t, ho.ino, &ho, 77, 7, &f->other, 0, 5, &got),
                         -EDEADLK); /* its flock share would hold it back for ever */
        locktable_flock_unlock(f->t, h.ino, 8, NULL, NULL);
        locktable_posix_unlock(f->t, h.ino, 77, NULL, NULL);
        v = view_of(f, h.ino);
        assert_int_equal(v.sharers_total, 0);
        lock_view_clear(&v);

        /* the holder's own write lock over its LOCK_SH, then F_UNLCK */
        assert_int_equal(locktable_posix_lock(f->t, h.ino, &h, 100, 1, &f->self, NB, 6, &got), 0);
        v = view_of(f, h.ino);
        assert_false(v.shared);
        lock_view_clear(&v);
        assert_int_equal(locktable_flock(f->t, ho.ino, &ho, 2, 0, &f->other, SH, 7, &got),
                         LT_PARKED);
        assert_int_equal(locktable_flock(f->t, ho.ino, &ho, 9, 0, &f->other, SH, 8, &got),
                         LT_PARKED);
        locktable_posix_unlock(f->t, h.ino, 100, NULL, NULL);
        assert_int_equal(f->n_grants, 2);
        assert_int_equal(f->grants[0].id, 7);
        assert_int_equal(f->grants[1].id, 8);
        assert_int_equal(f->grants[0].err, 0);
        v = view_of(f, h.ino);
        assert_true(v.shared);
        assert_int_equal(v.sharers_total, 2);
        lock_view_clear(&v);
        locktable_flock_unlock(f->t, h.ino, 2, NULL, NULL);
        locktable_flock_unlock(f->t, h.ino, 9, NULL, NULL);
        locktable_flock_unlock(f->t, h.ino, 1, NULL, NULL);
        assert_false(exists(f));
}

/* A store that records: the shared requests let in from the queue are
 * answered once their record is made (a restart reads it), and a record
 * the store refuses ends them with -EIO, the lock as before. */
static void test_let_in_shares_wait_for_their_record(void **state) {
        struct fixture *f = *state;
        locktable_free(f->t);
        store_free(f->store);
        static struct test_store store; /* teardown's store_free leaves it */
        struct test_store *ts = &store;
        test_store_init(ts, &test_store_ops);
        f->store = &ts->base;
        struct locktable_config cfg = { .max_locks = 100, .max_content = 64, .max_depth = 4 };
        assert_int_equal(locktable_new(&cfg, f->store, &f->t), 0);
        locktable_set_grant_fn(f->t, note_grant, f);

        struct lt_handle h = open_name(f, &f->self), got;
        assert_int_equal(locktable_flock(f->t, h.ino, &h, 1, 0, &f->self, NB, 1, &got), 0);
        struct lt_handle ho = open_name(f, &f->other);
        assert_int_equal(locktable_flock(f->t, ho.ino, &ho, 2, 0, &f->other, SH, 10, &got),
                         LT_PARKED);
        assert_int_equal(locktable_flock(f->t, ho.ino, &ho, 3, 0, &f->other, SH, 11, &got),
                         LT_PARKED);
        unsigned updates = ts->updates;
        assert_int_equal(locktable_flock(f->t, h.ino, &h, 1, 0, &f->self, SH | NB, 2, &got), 0);
        assert_int_equal(f->n_grants, 2); /* a downgrade lets both in, once recorded */
        assert_true(ts->updates > updates);
        assert_int_equal(f->grants[0].err, 0);
        assert_int_equal(f->grants[1].err, 0);
        locktable_flock_unlock(f->t, h.ino, 2, NULL, NULL);
        locktable_flock_unlock(f->t, h.ino, 3, NULL, NULL);

        /* now refused by the store: the waiter gets -EIO and holds nothing */
        assert_int_equal(locktable_flock(f->t, h.ino, &h, 1, 0, &f->self, NB, 3, &got), 0);
        assert_int_equal(locktable_flock(f->t, ho.ino, &ho, 4, 0, &f->other, SH, 12, &got),
                         LT_PARKED);
        ts->fail_update = -EIO;
        assert_int_equal(locktable_flock(f->t, h.ino, &h, 1, 0, &f->self, SH | NB, 4, &got), 0);
        ts->fail_update = 0;
        assert_int_equal(f->n_grants, 3);
        assert_int_equal(f->grants[2].id, 12);
        assert_int_equal(f->grants[2].err, -EIO);
        struct lock_view v = view_of(f, h.ino);
        assert_int_equal(v.sharers_total, 0);
        lock_view_clear(&v);
        locktable_flock_unlock(f->t, h.ino, 1, NULL, NULL);
        assert_false(exists(f));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_sharers_share_and_a_writer_goes_first, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_death_ends_a_share_or_promotes_one, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_conversions, setup, teardown),
                cmocka_unit_test_setup_teardown(test_cancel_cap_and_unlink, setup, teardown),
                cmocka_unit_test_setup_teardown(test_review_quota_names_and_getlk, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_review_one_hold_deadlock_and_mode, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_let_in_shares_wait_for_their_record, setup,
                                                teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
