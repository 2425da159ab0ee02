/* SPDX-License-Identifier: MIT */
/* Unit tests for who becomes the holder of a flock (src/core/table/lt_flock.c):
 * the process that opened the file when the flocking process is it or one
 * of its descendants (`exec 9>f; flock 9`), else the flocking process
 * itself; the lock keeps the flocking process's uid either way. Real
 * processes play the opener, the flocking process and a previous holder. */
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

struct fixture {
        struct store *store;
        struct locktable *t;
        struct caller self;      /* this test process, as root: the opener */
        pid_t child, stranger;   /* a child of ours; a process that is not */
        int child_fd, stranger_fd;
};

static void ignore_grant(void *ctx, uint64_t id, int err, const struct lt_handle *h) {
        (void)ctx;
        (void)id;
        (void)err;
        (void)h;
}

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof(*f));
        struct locktable_config cfg = { .max_locks = 100, .max_content = 64, .max_depth = 4 };
        assert_int_equal(store_mem_new(&f->store), 0);
        assert_int_equal(locktable_new(&cfg, f->store, &f->t), 0);
        locktable_set_grant_fn(f->t, ignore_grant, f);
        assert_int_equal(holder_identify(getpid(), 0, 0, &f->self), 0);
        f->child = spawn_child(&f->child_fd);
        assert_true(f->child > 0);
        f->stranger = spawn_stranger(&f->stranger_fd);
        assert_true(f->stranger > 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;
        locktable_free(f->t);
        store_free(f->store);
        end_child(f->child, f->child_fd);
        close(f->stranger_fd); /* init reaps it */
        free(f);
        return 0;
}

/* A name whose lock was taken and then released by the stranger, with a
 * contender handle of ours still open on the released lock (the kernel
 * keeps its lookup): a flock through that handle takes the free name.
 * Returns the handle. */
static struct lt_handle released_lock(struct fixture *f) {
        struct caller s;
        assert_int_equal(holder_identify(f->stranger, 0, 0, &s), 0);
        assert_int_equal(take(f->t, "a.lock", &s, NULL), 0);
        struct lt_attr a;
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "a.lock", &a), 0);
        struct lt_handle h;
        assert_int_equal(locktable_open(f->t, a.ino, &f->self, O_WRONLY, &h), 0);
        assert_int_equal(h.kind, LT_HANDLE_CONTENDER);
        struct lock_view forced;
        assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, "a.lock", &s, &forced), 0);
        assert_null(forced.path); /* a release by the holder, not a break */
        return h;
}

/* flock of handle h by caller by through a file opened by opener: granted
 * at once; returns the new lock's view (clear it). */
static struct lock_view flock_now(struct fixture *f, const struct lt_handle *h, pid_t opener,
                                  const struct caller *by) {
        struct lt_handle got;
        assert_int_equal(locktable_flock(f->t, h->ino, h, 7, opener, by, true, 1, &got), 0);
        assert_int_equal(got.kind, LT_HANDLE_HOLDER);
        assert_int_not_equal(got.ino, h->ino); /* the name was taken anew */
        struct lock_view v;
        assert_int_equal(locktable_view(f->t, got.ino, &v), 0);
        return v;
}

/* `exec 9>f; flock 9`: the shell opened the file, its child flock(1)
 * asked; the shell holds the lock, as the child's uid. */
static void test_child_of_the_opener_makes_the_opener_holder(void **state) {
        struct fixture *f = *state;
        struct lt_handle h = released_lock(f);
        struct caller child;
        assert_int_equal(holder_identify(f->child, 1000, 1001, &child), 0);
        struct lock_view v = flock_now(f, &h, getpid(), &child);
        assert_int_equal(v.pid, getpid());
        assert_int_equal(v.uid, 1000);
        assert_int_equal(v.gid, 1001);
        lock_view_clear(&v);
}

/* The opener flocks itself: it is the holder. */
static void test_the_opener_itself_is_the_holder(void **state) {
        struct fixture *f = *state;
        struct lt_handle h = released_lock(f);
        struct lock_view v = flock_now(f, &h, getpid(), &f->self);
        assert_int_equal(v.pid, getpid());
        assert_int_equal(v.uid, 0);
        lock_view_clear(&v);
}

/* A process that does not descend from the opener (a descriptor passed
 * over a socket): it holds the lock itself. */
static void test_a_process_not_descending_from_the_opener_holds_itself(void **state) {
        struct fixture *f = *state;
        struct lt_handle h = released_lock(f);
        struct caller child;
        assert_int_equal(holder_identify(f->child, 1000, 1000, &child), 0);
        /* the opener is the stranger: our child does not descend from it */
        struct lock_view v = flock_now(f, &h, f->stranger, &child);
        assert_int_equal(v.pid, f->child);
        assert_int_equal(v.uid, 1000);
        lock_view_clear(&v);
}

/* No opener known (0): the flocking process holds. */
static void test_unknown_opener_leaves_the_flocking_process_holder(void **state) {
        struct fixture *f = *state;
        struct lt_handle h = released_lock(f);
        struct caller child;
        assert_int_equal(holder_identify(f->child, 1000, 1000, &child), 0);
        struct lock_view v = flock_now(f, &h, 0, &child);
        assert_int_equal(v.pid, f->child);
        lock_view_clear(&v);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_child_of_the_opener_makes_the_opener_holder,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_the_opener_itself_is_the_holder, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(
                        test_a_process_not_descending_from_the_opener_holds_itself, setup,
                        teardown),
                cmocka_unit_test_setup_teardown(
                        test_unknown_opener_leaves_the_flocking_process_holder, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
