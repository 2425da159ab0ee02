/* SPDX-License-Identifier: MIT */
/* Unit tests for the lock table's view of a shared store (lt_remote.c):
 * other hosts' locks appear, change and vanish; local locks get lost. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

struct fixture {
        struct store *store;
        struct locktable *t;
        struct caller self;   /* this process, root */
        struct caller user;   /* this process, as uid 1000 */
        int removed;          /* names reported gone */
        char last_removed[64];
        int granted;          /* flock grants */
        int grant_err;
};

static void on_removed(void *ctx, uint64_t parent, uint64_t ino, const char *name) {
        struct fixture *f = ctx;
        (void)parent;
        (void)ino;
        f->removed++;
        snprintf(f->last_removed, sizeof(f->last_removed), "%s", name);
}

static void on_grant(void *ctx, uint64_t id, int err, const struct lt_handle *h) {
        struct fixture *f = ctx;
        (void)id;
        (void)h;
        f->granted++;
        f->grant_err = err;
}

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof(*f));
        struct locktable_config cfg = { .max_locks = 100, .max_content = 64, .max_depth = 8 };
        assert_int_equal(store_mem_new(&f->store), 0);
        assert_int_equal(locktable_new(&cfg, f->store, &f->t), 0);
        assert_int_equal(holder_identify(getpid(), 0, 0, &f->self), 0);
        assert_int_equal(holder_identify(getpid(), 1000, 1000, &f->user), 0);
        locktable_set_grant_fn(f->t, on_grant, f);
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

/* What another host publishes for path: pid 4242 on "far", fence rev. */
static struct lock_view remote(const char *path, uint64_t rev, const char *content) {
        struct lock_view v = {
                .path = (char *)path, .fence = rev, .host = (char *)"far", .pid = 4242,
                .uid = 1000, .gid = 1000, .how = LOCK_HOW_CREATOR, .liveness_known = true,
                .acquired_at_ms = 1000, .renewed_at_ms = 2000, .ttl_s = 60,
                .content = (char *)content, .content_len = content ? strlen(content) : 0,
        };
        snprintf(v.comm, sizeof(v.comm), "worker");
        snprintf(v.cmdline, sizeof(v.cmdline), "worker --run");
        return v;
}

static int put(struct fixture *f, const char *path, uint64_t rev, const char *content) {
        struct lock_view v = remote(path, rev, content);
        return locktable_remote_put(f->t, &v, on_removed, f);
}

static void test_remote_lock_appears_with_its_holder(void **state) {
        struct fixture *f = *state;
        assert_int_equal(put(f, "/d/e/x.lock", 100, "hi"), 0);
        int64_t d = ino_of(f->t, LT_INO_ROOT, "d");
        assert_true(d > 0);
        int64_t e = ino_of(f->t, (uint64_t)d, "e");
        assert_true(e > 0);
        int64_t x = ino_of(f->t, (uint64_t)e, "x.lock");
        assert_true(x > 0);
        struct lock_view v;
        assert_int_equal(locktable_view(f->t, (uint64_t)x, &v), 0);
        assert_string_equal(v.path, "/d/e/x.lock");
        assert_string_equal(v.host, "far");
        assert_int_equal(v.pid, 4242);
        assert_false(v.detached);
        assert_false(v.lost);
        assert_int_equal(v.fence, 100);
        assert_string_equal(v.cmdline, "worker --run");
        assert_int_equal(v.content_len, 2);
        lock_view_clear(&v);
        /* held: an exclusive create fails, a plain one gives a contender */
        struct lt_attr a;
        struct lt_handle h;
        assert_int_equal(locktable_create(f->t, (uint64_t)e, "x.lock", &f->self,
                                          O_CREAT | O_EXCL | O_WRONLY, &a, &h), -EEXIST);
        assert_int_equal(locktable_create(f->t, (uint64_t)e, "x.lock", &f->user,
                                          O_CREAT | O_WRONLY, &a, &h), 0);
        locktable_forget(f->t, a.ino, 1);
        assert_int_equal(h.kind, LT_HANDLE_CONTENDER);
        assert_int_equal(locktable_write(f->t, &h, &f->user, 0, "x", 1), -EEXIST);
        /* another host's lock is held (its liveness is that host's
         * business): an unlink gets EBUSY, root's too (SPEC R3.4); root
         * breaks it */
        struct lock_view forced;
        assert_int_equal(locktable_unlink(f->t, (uint64_t)e, "x.lock", &f->user, &forced),
                         -EBUSY);
        assert_int_equal(locktable_setattr(f->t, (uint64_t)x, NULL, &f->user, LT_SET_TIMES, 0,
                                           &a), -EPERM);
        assert_int_equal(locktable_unlink(f->t, (uint64_t)e, "x.lock", &f->self, &forced),
                         -EBUSY);
        assert_null(forced.path);
        assert_int_equal(locktable_break(f->t, (uint64_t)x, 100, &f->self, &forced, NULL, NULL),
                         0);
        assert_non_null(forced.path);
        lock_view_clear(&forced);
        assert_int_equal(ino_of(f->t, (uint64_t)e, "x.lock"), -ENOENT);
}

static void test_remote_updates_and_late_events(void **state) {
        struct fixture *f = *state;
        assert_int_equal(put(f, "/y.lock", 100, "one"), 0);
        assert_int_equal(put(f, "/y.lock", 100, "two"), 0);     /* a renewal */
        assert_int_equal(put(f, "/y.lock", 90, "old"), 0);      /* late: ignored */
        int64_t y = ino_of(f->t, LT_INO_ROOT, "y.lock");
        struct lock_view v;
        assert_int_equal(locktable_view(f->t, (uint64_t)y, &v), 0);
        assert_int_equal(v.fence, 100);
        assert_memory_equal(v.content, "two", 3);
        lock_view_clear(&v);
        /* a delete from before this acquisition is ignored; a later one ends it */
        locktable_remote_delete(f->t, "/y.lock", 99, on_removed, f);
        assert_true(ino_of(f->t, LT_INO_ROOT, "y.lock") > 0);
        assert_int_equal(f->removed, 0);
        locktable_remote_delete(f->t, "/y.lock", 101, on_removed, f);
        assert_int_equal(ino_of(f->t, LT_INO_ROOT, "y.lock"), -ENOENT);
        assert_int_equal(f->removed, 1);
        assert_string_equal(f->last_removed, "y.lock");
        /* then the name is free here */
        struct lt_attr a;
        struct lt_handle h;
        assert_int_equal(locktable_create(f->t, LT_INO_ROOT, "y.lock", &f->self,
                                          O_CREAT | O_EXCL | O_WRONLY, &a, &h), 0);
}

static void test_bad_paths_are_refused(void **state) {
        struct fixture *f = *state;
        const char *bad[] = { "/.lockfs/x", "/.lockfs", "/a/../b", "/./x", "//x", "/x/",
                              "x", "/", "" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
                assert_int_equal(put(f, bad[i], 100, NULL), -EINVAL);
        struct lt_dirent *d;
        size_t n;
        assert_int_equal(locktable_readdir(f->t, LT_INO_ROOT, &d, &n), 0);
        for (size_t i = 0; i < n; i++)
                assert_string_not_equal(d[i].name, "x");
        lt_dirents_free(d, n);
        /* a directory here is not replaced by a lock */
        struct lt_attr a;
        assert_int_equal(locktable_mkdir(f->t, LT_INO_ROOT, "dir", &f->self, &a), 0);
        assert_int_equal(put(f, "/dir", 100, NULL), -EISDIR);
}

static void test_listing_drops_what_it_does_not_name(void **state) {
        struct fixture *f = *state;
        assert_int_equal(put(f, "/a.lock", 10, NULL), 0);
        assert_int_equal(put(f, "/b.lock", 11, NULL), 0);
        struct lt_attr a;
        struct lt_handle h;
        assert_int_equal(locktable_create(f->t, LT_INO_ROOT, "mine.lock", &f->self,
                                          O_CREAT | O_EXCL | O_WRONLY, &a, &h), 0);
        locktable_remote_sync_begin(f->t);
        assert_int_equal(put(f, "/a.lock", 10, NULL), 0);
        locktable_remote_sync_end(f->t, 0, NULL, NULL, on_removed, f);
        assert_true(ino_of(f->t, LT_INO_ROOT, "a.lock") > 0);
        assert_int_equal(ino_of(f->t, LT_INO_ROOT, "b.lock"), -ENOENT);
        assert_string_equal(f->last_removed, "b.lock");
        assert_true(ino_of(f->t, LT_INO_ROOT, "mine.lock") > 0); /* local: not the listing's */
}

static bool listed_only_kept(void *ctx, const char *path) {
        (void)ctx;
        return strcmp(path, "/kept.lock") == 0;
}

/* A complete listing at revision rev ends local locks acquired before rev
 * that it does not name (deleted while the watch could not say so). */
static void test_listing_ends_unlisted_local_locks(void **state) {
        struct fixture *f = *state;
        struct lt_attr a;
        struct lt_handle kept, gone, young;
        assert_int_equal(locktable_create(f->t, LT_INO_ROOT, "kept.lock", &f->self,
                                          O_CREAT | O_EXCL | O_WRONLY, &a, &kept), 0);
        assert_int_equal(locktable_create(f->t, LT_INO_ROOT, "gone.lock", &f->self,
                                          O_CREAT | O_EXCL | O_WRONLY, &a, &gone), 0);
        assert_int_equal(locktable_create(f->t, LT_INO_ROOT, "young.lock", &f->self,
                                          O_CREAT | O_EXCL | O_WRONLY, &a, &young), 0);
        /* an incomplete listing ends nothing local */
        locktable_remote_sync_begin(f->t);
        locktable_remote_sync_end(f->t, young.fence, NULL, NULL, on_removed, f);
        assert_true(ino_of(f->t, LT_INO_ROOT, "gone.lock") > 0);
        /* a complete one, at a revision after gone.lock but not young.lock */
        locktable_remote_sync_begin(f->t);
        locktable_remote_sync_end(f->t, young.fence, listed_only_kept, NULL, on_removed, f);
        assert_true(ino_of(f->t, LT_INO_ROOT, "kept.lock") > 0);
        assert_int_equal(ino_of(f->t, LT_INO_ROOT, "gone.lock"), -ENOENT);
        assert_string_equal(f->last_removed, "gone.lock");
        assert_true(ino_of(f->t, LT_INO_ROOT, "young.lock") > 0);
        assert_int_equal(locktable_write(f->t, &gone, &f->self, 0, "x", 1), -EEXIST);
}

static void test_local_lock_taken_elsewhere_is_lost(void **state) {
        struct fixture *f = *state;
        struct lt_attr a;
        struct lt_handle h;
        assert_int_equal(locktable_create(f->t, LT_INO_ROOT, "l.lock", &f->self,
                                          O_CREAT | O_EXCL | O_WRONLY, &a, &h), 0);
        assert_true(locktable_holds(f->t, "/l.lock", h.fence));
        assert_false(locktable_holds(f->t, "/l.lock", h.fence + 1));
        assert_false(locktable_holds(f->t, "/none.lock", h.fence));
        /* our own acquisition coming back from the watch changes nothing */
        assert_int_equal(put(f, "/l.lock", h.fence, NULL), 0);
        struct lock_view v;
        assert_int_equal(locktable_view(f->t, a.ino, &v), 0);
        assert_null(v.host);
        assert_int_equal(v.pid, getpid());
        lock_view_clear(&v);
        /* taken anew through another host (its delete not seen yet): same
         * name and inode, their holder */
        assert_int_equal(put(f, "/l.lock", 1000, NULL), 0);
        assert_int_equal(ino_of(f->t, LT_INO_ROOT, "l.lock"), (int64_t)a.ino);
        assert_int_equal(locktable_view(f->t, a.ino, &v), 0);
        assert_string_equal(v.host, "far");
        assert_false(v.lost);
        assert_int_equal(v.fence, 1000);
        lock_view_clear(&v);
        assert_int_equal(locktable_write(f->t, &h, &f->self, 0, "x", 1), -EEXIST);
        assert_false(locktable_holds(f->t, "/l.lock", h.fence));
        struct lock_metrics m;
        locktable_metrics(f->t, &m);
        assert_int_equal(m.held, 1);
}

/* A local lock whose key is deleted elsewhere (force-unlock on another
 * host, or its lease ended) vanishes here too. */
static void test_local_lock_deleted_elsewhere_goes(void **state) {
        struct fixture *f = *state;
        struct lt_attr a;
        struct lt_handle h;
        assert_int_equal(locktable_create(f->t, LT_INO_ROOT, "k.lock", &f->self,
                                          O_CREAT | O_EXCL | O_WRONLY, &a, &h), 0);
        locktable_forget(f->t, a.ino, 1);
        locktable_remote_delete(f->t, "/k.lock", h.fence, on_removed, f);
        assert_true(ino_of(f->t, LT_INO_ROOT, "k.lock") > 0); /* not after this acquisition */
        locktable_remote_delete(f->t, "/k.lock", h.fence + 1, on_removed, f);
        assert_int_equal(ino_of(f->t, LT_INO_ROOT, "k.lock"), -ENOENT);
        assert_string_equal(f->last_removed, "k.lock");
        assert_int_equal(locktable_write(f->t, &h, &f->self, 0, "x", 1), -EEXIST);
        assert_int_equal(locktable_create(f->t, LT_INO_ROOT, "k.lock", &f->user,
                                          O_CREAT | O_EXCL | O_WRONLY, &a, &h), 0);
}

static void test_mark_lost_marks_local_locks_only(void **state) {
        struct fixture *f = *state;
        struct lt_attr a, b;
        struct lt_handle h;
        assert_int_equal(locktable_create(f->t, LT_INO_ROOT, "l1", &f->self,
                                          O_CREAT | O_EXCL | O_WRONLY, &a, &h), 0);
        assert_int_equal(locktable_create(f->t, LT_INO_ROOT, "l2", &f->self,
                                          O_CREAT | O_EXCL | O_WRONLY, &b, &h), 0);
        assert_int_equal(put(f, "/r", 100, NULL), 0);
        assert_int_equal(locktable_mark_lost(f->t), 2);
        assert_int_equal(locktable_mark_lost(f->t), 0);
        struct lock_view *v;
        size_t n;
        assert_int_equal(locktable_views(f->t, &v, &n), 0);
        assert_int_equal(n, 3);
        for (size_t i = 0; i < n; i++)
                assert_int_equal(v[i].lost, v[i].host == NULL);
        lock_views_free(v, n);
        /* the holder still releases its lost lock */
        struct lock_view forced;
        assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, "l1", &f->self, &forced), 0);
        assert_null(forced.path);
}

static void test_flock_waiter_takes_over_when_remote_ends(void **state) {
        struct fixture *f = *state;
        assert_int_equal(put(f, "/w.lock", 100, NULL), 0);
        struct lt_attr a;
        struct lt_handle h, granted;
        assert_int_equal(locktable_create(f->t, LT_INO_ROOT, "w.lock", &f->self,
                                          O_CREAT | O_WRONLY, &a, &h), 0);
        assert_int_equal(h.kind, LT_HANDLE_CONTENDER);
        assert_int_equal(locktable_flock(f->t, a.ino, &h, 7, 0, &f->self, true, 1, &granted),
                         -EWOULDBLOCK);
        assert_int_equal(locktable_flock(f->t, a.ino, &h, 7, 0, &f->self, false, 2, &granted),
                         LT_PARKED);
        locktable_remote_delete(f->t, "/w.lock", 200, on_removed, f);
        assert_int_equal(f->granted, 1);
        assert_int_equal(f->grant_err, 0);
        assert_int_equal(f->removed, 0); /* the name stayed, with us */
        struct lock_view v;
        assert_int_equal(locktable_view(f->t, a.ino, &v), 0);
        assert_null(v.host);
        assert_int_equal(v.pid, getpid());
        assert_int_equal(v.how, LOCK_HOW_FLOCK);
        lock_view_clear(&v);
        locktable_forget(f->t, a.ino, 1);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void) {
        const struct CMUnitTest tests[] = {
                T(test_remote_lock_appears_with_its_holder),
                T(test_remote_updates_and_late_events),
                T(test_bad_paths_are_refused),
                T(test_listing_drops_what_it_does_not_name),
                T(test_local_lock_taken_elsewhere_is_lost),
                T(test_local_lock_deleted_elsewhere_goes),
                T(test_listing_ends_unlisted_local_locks),
                T(test_mark_lost_marks_local_locks_only),
                T(test_flock_waiter_takes_over_when_remote_ends),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
