/* SPDX-License-Identifier: MIT */
/* Unit tests for the reaper thread: it releases a lock whose TTL ran out
 * and the locks of a holder that died, each the moment it is due, and
 * once stopped it reaps nothing more. Waits are on the removals
 * themselves (a condition variable), with generous deadlines. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "locktable.h"
#include "reaper.h"
#include "store.h"
#include "store_mem.h"

#define DEADLINE_S 30 /* far beyond any TTL here: only a broken reaper reaches it */

/* What the reaper thread reported, read by the test thread under mu. */
struct removals {
        pthread_mutex_t mu;
        pthread_cond_t cond;
        int n;
        char last[64];
};

struct fixture {
        struct store *store;
        struct locktable *t;
        struct caller self;
        struct removals removed;
        struct reaper *reaper; /* running, or NULL; teardown stops it */
};

/* lt_removed_fn, called on the reaper thread. */
static void note_removed(void *ctx, uint64_t parent, uint64_t ino, const char *name) {
        struct removals *r = ctx;
        (void)parent;
        (void)ino;
        pthread_mutex_lock(&r->mu);
        r->n++;
        snprintf(r->last, sizeof(r->last), "%s", name);
        pthread_cond_broadcast(&r->cond);
        pthread_mutex_unlock(&r->mu);
}

/* Wait until at least n removals were reported. False at the deadline. */
static bool await_removals(struct removals *r, int n) {
        struct timespec deadline;
        clock_gettime(CLOCK_REALTIME, &deadline);
        deadline.tv_sec += DEADLINE_S;
        pthread_mutex_lock(&r->mu);
        int e = 0;
        while (r->n < n && e != ETIMEDOUT)
                e = pthread_cond_timedwait(&r->cond, &r->mu, &deadline);
        bool reached = r->n >= n;
        pthread_mutex_unlock(&r->mu);
        return reached;
}

static int removals_seen(struct removals *r) {
        pthread_mutex_lock(&r->mu);
        int n = r->n;
        pthread_mutex_unlock(&r->mu);
        return n;
}

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof(*f));
        struct locktable_config cfg = { .max_locks = 100, .max_content = 64, .max_depth = 4 };
        assert_non_null(f);
        assert_int_equal(store_mem_new(&f->store), 0);
        assert_int_equal(locktable_new(&cfg, f->store, &f->t), 0);
        assert_int_equal(holder_identify(getpid(), 0, 0, &f->self), 0);
        pthread_mutex_init(&f->removed.mu, NULL);
        pthread_cond_init(&f->removed.cond, NULL);
        *state = f;
        return 0;
}

/* Start the reaper on f's table, reporting to f->removed. */
static void start(struct fixture *f) {
        assert_int_equal(reaper_start(f->t, note_removed, &f->removed, &f->reaper), 0);
}

static void stop(struct fixture *f) {
        reaper_stop(f->reaper);
        f->reaper = NULL;
}

static int teardown(void **state) {
        struct fixture *f = *state;
        stop(f); /* a failed test may leave it running */
        locktable_free(f->t);
        store_free(f->store);
        pthread_cond_destroy(&f->removed.cond);
        pthread_mutex_destroy(&f->removed.mu);
        free(f);
        return 0;
}

static void take(struct fixture *f, const char *name, const struct caller *c,
                 struct lt_handle *h) {
        struct lt_attr a;
        assert_int_equal(locktable_create(f->t, LT_INO_ROOT, name, c, O_CREAT | O_WRONLY, &a, h),
                         0);
}

/* Take name for this process with a TTL of one second (SPEC R5.3). */
static void take_with_ttl(struct fixture *f, const char *name) {
        struct lt_handle h;
        take(f, name, &f->self, &h);
        const char *json = "{\"ttl_s\": 1}";
        assert_int_equal(locktable_write(f->t, &h, &f->self, 0, json, strlen(json)),
                         (ssize_t)strlen(json));
}

static bool exists(struct fixture *f, const char *name) {
        struct lt_attr a;
        return locktable_lookup(f->t, LT_INO_ROOT, name, &a) == 0;
}

static void test_reaps_expired_ttl_lock(void **state) {
        struct fixture *f = *state;
        struct lt_handle h;
        take(f, "forever", &f->self, &h);
        take_with_ttl(f, "short");
        start(f);
        assert_true(await_removals(&f->removed, 1));
        stop(f);
        assert_int_equal(removals_seen(&f->removed), 1);
        assert_string_equal(f->removed.last, "short");
        assert_false(exists(f, "short"));
        assert_true(exists(f, "forever"));
        struct lock_metrics m;
        locktable_metrics(f->t, &m);
        assert_int_equal(m.released_ttl, 1);
        assert_int_equal(m.held, 1);
}

/* A child that lives until its stdin pipe (*ret_fd) is closed. */
static pid_t spawn_holder(int *ret_fd) {
        int p[2];
        assert_int_equal(pipe(p), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                char c;
                close(p[1]);
                while (read(p[0], &c, 1) > 0)
                        ;
                _exit(0);
        }
        close(p[0]);
        *ret_fd = p[1];
        return pid;
}

static void test_reaps_dead_holder(void **state) {
        struct fixture *f = *state;
        int fd;
        pid_t pid = spawn_holder(&fd);
        struct caller child;
        assert_int_equal(holder_identify(pid, 0, 0, &child), 0);
        struct lt_handle h;
        take(f, "child1", &child, &h);
        take(f, "child2", &child, &h);
        take(f, "mine", &f->self, &h);
        start(f);
        close(fd); /* the holder ends */
        assert_int_equal(waitpid(pid, NULL, 0), pid);
        assert_true(await_removals(&f->removed, 2));
        stop(f);
        assert_int_equal(removals_seen(&f->removed), 2);
        assert_false(exists(f, "child1"));
        assert_false(exists(f, "child2"));
        assert_true(exists(f, "mine"));
        struct lock_metrics m;
        locktable_metrics(f->t, &m);
        assert_int_equal(m.released_exit, 2);
}

/* Stopped, the thread is gone: a TTL that runs out afterwards makes the
 * table's reaper fd readable, and nobody reaps. */
static void test_stop_ends_reaping(void **state) {
        struct fixture *f = *state;
        start(f);
        stop(f);
        reaper_stop(NULL); /* a no-op */
        take_with_ttl(f, "short");
        struct pollfd p = { .fd = locktable_reaper_fd(f->t), .events = POLLIN };
        assert_int_equal(poll(&p, 1, DEADLINE_S * 1000), 1);
        assert_int_equal(removals_seen(&f->removed), 0);
        assert_true(exists(f, "short"));
        /* what was due is still due: the next reap takes it */
        assert_int_equal(locktable_reap(f->t, note_removed, &f->removed), 1);
        assert_false(exists(f, "short"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_reaps_expired_ttl_lock, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reaps_dead_holder, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stop_ends_reaping, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
