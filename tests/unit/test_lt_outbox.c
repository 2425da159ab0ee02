/* SPDX-License-Identifier: MIT */
/* Unit tests for the lock table's outbox (src/lt_outbox.c): store calls are
 * made outside the table mutex, and what the store refuses is not kept. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "locktable.h"
#include "store.h"
#include "clock.h"
#include "fixture.h"

/* The store holds its acquisitions until told to answer (block_acquire)
 * and fails chosen calls; it records directories. */
struct fixture {
        struct test_store store;
        struct locktable *t;
        struct caller self;
};

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof(*f));
        test_store_init(&f->store, &test_store_ops_with_dirs);
        struct locktable_config cfg = { .max_locks = 100, .max_content = 64, .max_depth = 4 };
        assert_int_equal(locktable_new(&cfg, &f->store.base, &f->t), 0);
        assert_int_equal(holder_identify(getpid(), 0, 0, &f->self), 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;
        locktable_free(f->t);
        test_store_destroy(&f->store);
        free(f);
        return 0;
}

/* A create in a thread of its own, for a store that makes it wait. */
struct creator {
        struct fixture *f;
        const char *name;
        struct caller who;
        int r;
        bool done;
        pthread_t thread;
};

static void *creator_main(void *arg) {
        struct creator *c = arg;
        struct lt_handle h;
        c->r = take(c->f->t, c->name, &c->who, &h);
        __atomic_store_n(&c->done, true, __ATOMIC_SEQ_CST);
        return NULL;
}

static void start_blocked_create(struct fixture *f, struct creator *c, const char *name,
                                 const struct caller *who) {
        *c = (struct creator){ .f = f, .name = name, .who = *who };
        test_store_set_block(&f->store, &f->store.block_acquire, true);
        assert_int_equal(pthread_create(&c->thread, NULL, creator_main, c), 0);
        test_store_await(&f->store, &f->store.in_acquire, 1);
}

static void release_store(struct fixture *f) {
        test_store_set_block(&f->store, &f->store.block_acquire, false);
}

/* While the store sits on one acquisition, the table serves everything
 * that needs no store call: nothing waits for it under the mutex. */
static void test_store_call_is_made_outside_the_mutex(void **state) {
        struct fixture *f = *state;
        struct lt_handle h;
        struct lt_attr a;
        assert_int_equal(take(f->t, "b.lock", &f->self, &h), 0);
        struct creator c;
        start_blocked_create(f, &c, "a.lock", &f->self);
        /* the create of a.lock is inside the store call now */
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "b.lock", &a), 0);
        assert_int_equal(locktable_getattr(f->t, a.ino, &a), 0);
        struct lock_view v;
        assert_int_equal(locktable_view(f->t, h.ino, &v), 0);
        lock_view_clear(&v);
        struct lock_view *vs;
        size_t n;
        assert_int_equal(locktable_views(f->t, &vs, &n), 0);
        lock_views_free(vs, n);
        struct lock_metrics m;
        locktable_metrics(f->t, &m);
        struct lt_dirent *d;
        assert_int_equal(locktable_readdir(f->t, LT_INO_ROOT, &d, &n), 0);
        lt_dirents_free(d, n);
        /* a second exclusive create of the same name loses at once */
        assert_int_equal(take(f->t, "a.lock", &f->self, &h), -EEXIST);
        assert_false(__atomic_load_n(&c.done, __ATOMIC_SEQ_CST));
        release_store(f);
        pthread_join(c.thread, NULL);
        assert_int_equal(c.r, 0);
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "a.lock", &a), 0);
}

static void test_refused_acquisition_takes_nothing(void **state) {
        struct fixture *f = *state;
        struct lt_handle h;
        struct lt_attr a;
        f->store.fail_acquire = -EIO;
        assert_int_equal(take(f->t, "x.lock", &f->self, &h), -EIO);
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "x.lock", &a), -ENOENT);
        struct lock_metrics m;
        locktable_metrics(f->t, &m);
        assert_int_equal(m.held, 0);
        f->store.fail_acquire = 0;
        assert_int_equal(take(f->t, "x.lock", &f->self, &h), 0);
        assert_int_not_equal(h.fence, 0);
}

/* SPEC R8.2 with a full state directory: a directory that cannot be
 * recorded is not made (a restart would lose it). */
static void test_unrecorded_directory_is_not_made(void **state) {
        struct fixture *f = *state;
        struct lt_attr a;
        f->store.fail_dir = -ENOSPC;
        assert_int_equal(locktable_mkdir(f->t, LT_INO_ROOT, "d", &f->self, &a), -EIO);
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "d", &a), -ENOENT);
        struct lock_metrics m;
        locktable_metrics(f->t, &m);
        assert_int_equal(m.directories, 0);
        f->store.fail_dir = 0;
        assert_int_equal(locktable_mkdir(f->t, LT_INO_ROOT, "d", &f->self, &a), 0);
}

static void test_unrecorded_write_keeps_the_old_content(void **state) {
        struct fixture *f = *state;
        struct lt_handle h;
        assert_int_equal(take(f->t, "w.lock", &f->self, &h), 0);
        assert_int_equal(locktable_write(f->t, &h, &f->self, 0, "one", 3), 3);
        f->store.fail_update = -ENOSPC;
        assert_int_equal(locktable_write(f->t, &h, &f->self, 0, "{\"ttl_s\":5}", 11), -EIO);
        struct lock_view v;
        assert_int_equal(locktable_view(f->t, h.ino, &v), 0);
        assert_int_equal(v.content_len, 3);
        assert_memory_equal(v.content, "one", 3);
        assert_int_equal(v.ttl_s, 0);
        lock_view_clear(&v);
        f->store.fail_update = 0;
        assert_int_equal(locktable_write(f->t, &h, &f->self, 0, "two", 3), 3);
}

/* Reap in a thread: its flush waits for the store like any other. */
static void *reaper_main(void *arg) {
        struct locktable *t = arg;
        locktable_reap(t, NULL, NULL);
        return NULL;
}

/* The creator dies while the store is asked: its lock goes at the answer,
 * not before (the fence of the release is the acquisition's). */
static void test_holder_dying_during_acquisition(void **state) {
        struct fixture *f = *state;
        int fd;
        pid_t child = spawn_child(&fd);
        assert_true(child > 0);
        struct caller who;
        assert_int_equal(holder_identify(child, 0, 0, &who), 0);
        struct creator c;
        start_blocked_create(f, &c, "dying.lock", &who);
        end_child(child, fd);
        assert_int_equal(await_reapable(f->t, EVENT_TIMEOUT_MS), 1);
        pthread_t reaper;
        assert_int_equal(pthread_create(&reaper, NULL, reaper_main, f->t), 0);
        release_store(f);
        pthread_join(c.thread, NULL);
        pthread_join(reaper, NULL);
        assert_int_equal(c.r, 0);
        struct lt_attr a;
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "dying.lock", &a), -ENOENT);
        assert_int_equal(f->store.releases, 1);
}

/* A break in a thread of its own, reporting its thread id. */
struct breaker {
        struct fixture *f;
        uint64_t ino, fence;
        struct caller who;
        struct lock_view forced;
        pid_t tid;
        bool done, waited;
        int r;
        pthread_t thread;
};

static void *breaker_main(void *arg) {
        struct breaker *b = arg;
        __atomic_store_n(&b->tid, (pid_t)syscall(SYS_gettid), __ATOMIC_SEQ_CST);
        b->r = locktable_break(b->f->t, b->ino, b->fence, &b->who, &b->forced, NULL, NULL);
        __atomic_store_n(&b->done, true, __ATOMIC_SEQ_CST);
        return NULL;
}

/* True once b's thread sleeps (state S: here, only in the table's wait for
 * a busy lock to settle); false if it finished first or never slept within
 * EVENT_TIMEOUT_MS. There is no event to await: poll. Asserts nothing, so
 * the caller lets the store go before it judges. */
static bool wait_sleeping(struct breaker *b) {
        char path[64], buf[256];
        pid_t tid;
        while ((tid = __atomic_load_n(&b->tid, __ATOMIC_SEQ_CST)) == 0)
                sched_yield();
        snprintf(path, sizeof(path), "/proc/self/task/%d/stat", (int)tid);
        int64_t deadline = clock_mono_ms() + EVENT_TIMEOUT_MS;
        while (clock_mono_ms() < deadline && !__atomic_load_n(&b->done, __ATOMIC_SEQ_CST)) {
                FILE *fp = fopen(path, "r");
                if (!fp)
                        return false;
                size_t n = fread(buf, 1, sizeof(buf) - 1, fp);
                fclose(fp);
                buf[n] = '\0';
                char *p = strrchr(buf, ')');
                if (p && p[1] == ' ' && p[2] == 'S')
                        return !__atomic_load_n(&b->done, __ATOMIC_SEQ_CST);
                struct timespec ts = { 0, 1000000 };
                nanosleep(&ts, NULL);
        }
        return false;
}

static void start_breaker(struct fixture *f, struct breaker *b, uint64_t ino, uint64_t fence,
                          const struct caller *who) {
        *b = (struct breaker){ .f = f, .ino = ino, .fence = fence, .who = *who };
        assert_int_equal(pthread_create(&b->thread, NULL, breaker_main, b), 0);
        b->waited = wait_sleeping(b);
}

/* A break of a lock whose acquisition is with the store waits for the
 * store's answer and then judges the final fence: the acquisition's own
 * fence breaks it, any other breaks nothing. */
static void test_break_waits_for_a_busy_lock(void **state) {
        struct fixture *f = *state;
        struct creator c;
        start_blocked_create(f, &c, "busy.lock", &f->self);
        struct lt_dirent *d;
        size_t n;
        uint64_t ino = 0;
        assert_int_equal(locktable_readdir(f->t, LT_INO_ROOT, &d, &n), 0);
        for (size_t i = 0; i < n; i++)
                if (strcmp(d[i].name, "busy.lock") == 0)
                        ino = d[i].ino;
        lt_dirents_free(d, n);
        assert_true(ino != 0);
        /* root from a process that is not the holder: a force-unlock */
        struct caller root;
        assert_int_equal(holder_identify(getppid(), 0, 0, &root), 0);
        struct breaker wrong, right;
        start_breaker(f, &wrong, ino, 7, &root);
        start_breaker(f, &right, ino, 1, &root); /* the store's next fence */
        assert_false(__atomic_load_n(&c.done, __ATOMIC_SEQ_CST));
        release_store(f);
        pthread_join(c.thread, NULL);
        pthread_join(wrong.thread, NULL);
        pthread_join(right.thread, NULL);
        assert_true(wrong.waited);
        assert_true(right.waited);
        assert_int_equal(c.r, 0);
        assert_int_equal(wrong.r, -ESTALE);
        assert_null(wrong.forced.path);
        assert_int_equal(right.r, 0);
        assert_non_null(right.forced.path);
        assert_int_equal(right.forced.fence, 1);
        lock_view_clear(&right.forced);
        struct lt_attr a;
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "busy.lock", &a), -ENOENT);
        assert_int_equal(f->store.releases, 1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_store_call_is_made_outside_the_mutex, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_refused_acquisition_takes_nothing, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_unrecorded_directory_is_not_made, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_unrecorded_write_keeps_the_old_content, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_holder_dying_during_acquisition, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_break_waits_for_a_busy_lock, setup,
                                                teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
