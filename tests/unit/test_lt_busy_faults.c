/* SPDX-License-Identifier: MIT */
/* Locks busy with the store (record_and_wait: rename, link, setattr; busy
 * writes): a TTL running out meanwhile, a flock released meanwhile, a
 * name retaken meanwhile, and quota counts across refused records. Started
 * as the reproductions of a second adversarial review; each test's comment
 * says what it expects and what was found before the fix. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
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
#include "fixture.h"

struct fixture {
        struct test_store store;
        struct locktable *t;
        struct caller self;
};

static struct fixture *fixture_new(const struct locktable_config *cfg, uid_t uid) {
        struct fixture *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        test_store_init(&f->store, &test_store_ops);
        assert_int_equal(locktable_new(cfg, &f->store.base, &f->t), 0);
        assert_int_equal(holder_identify(getpid(), uid, uid, &f->self), 0);
        return f;
}

static void fixture_free(struct fixture *f) {
        locktable_free(f->t);
        test_store_destroy(&f->store);
        free(f);
}

static int setup(void **state) {
        struct locktable_config cfg = { .max_locks = 100, .max_content = 64, .max_depth = 4 };
        *state = fixture_new(&cfg, 0);
        return 0;
}

/* uid 1000 with quotas: 10 things, 100 content bytes */
static int setup_quota(void **state) {
        struct locktable_config cfg = { .max_locks = 100, .max_content = 64, .max_depth = 4,
                                        .max_locks_per_uid = 10, .max_content_per_uid = 100 };
        *state = fixture_new(&cfg, 1000);
        return 0;
}

static int teardown(void **state) {
        fixture_free(*state);
        return 0;
}

/* ---- 1. a TTL that runs out while a busy node's record is with the store */

struct req {
        struct fixture *f;
        int kind; /* 0 rename, 1 write, 2 setattr (touch), 3 link, 4 rename a->b */
        struct lt_handle h;
        long r;
        pthread_t thread;
};

static void *req_main(void *arg) {
        struct req *q = arg;
        struct lt_attr a;
        switch (q->kind) {
        case 0:
                q->r = locktable_rename(q->f->t, LT_INO_ROOT, "ttl.lock", LT_INO_ROOT,
                                        "moved.lock", 0, &q->f->self);
                break;
        case 1:
                q->r = locktable_write(q->f->t, &q->h, &q->f->self, 0, "x", 1);
                break;
        case 2:
                q->r = locktable_setattr(q->f->t, q->h.ino, &q->h, &q->f->self, LT_SET_TIMES, 0,
                                         &a);
                break;
        case 4:
                q->r = locktable_rename(q->f->t, LT_INO_ROOT, "a.lock", LT_INO_ROOT, "b.lock", 0,
                                        &q->f->self);
                break;
        default:
                q->r = locktable_link(q->f->t, q->h.ino, LT_INO_ROOT, "second.lock", &q->f->self,
                                      &a);
                break;
        }
        return NULL;
}

struct reaper {
        struct fixture *f;
        pthread_t thread;
};

static void *reaper_main(void *arg) {
        struct reaper *r = arg;
        locktable_reap(r->f->t, NULL, NULL);
        return NULL;
}

/* Runs in a child (see run_watched): a lock with a 1 s TTL; request kind
 * records it and the store sits on the record past the TTL; the reaper
 * then runs. Expected: the reaper defers the expiry (the node is busy)
 * and returns; once the store answers, the request returns and the lock
 * goes (its TTL ran out) or stays renewed. Exit 0 when everything
 * returned. */
static void ttl_scenario(int kind) {
        /* a live holder's lock: its TTL is holder_ttl's (SPEC R5.3) */
        struct locktable_config cfg = { .holder_ttl_s = 1, .max_locks = 100, .max_content = 64,
                                        .max_depth = 4 };
        struct fixture *f = fixture_new(&cfg, 0);
        struct req q = { .f = f, .kind = kind };
        assert_int_equal(take(f->t, "ttl.lock", &f->self, &q.h), 0);
        test_store_set_block(&f->store, &f->store.block_update, true);
        assert_int_equal(pthread_create(&q.thread, NULL, req_main, &q), 0);
        test_store_await(&f->store, &f->store.in_update, 1); /* the node is busy now */
        /* its TTL ran out meanwhile */
        assert_int_equal(await_reapable(f->t, EVENT_TIMEOUT_MS), 1);
        struct reaper rp = { .f = f };
        assert_int_equal(pthread_create(&rp.thread, NULL, reaper_main, &rp), 0);
        /* the reaper must come back on its own: the node is busy */
        assert_int_equal(pthread_join(rp.thread, NULL), 0);
        test_store_set_block(&f->store, &f->store.block_update, false);
        assert_int_equal(pthread_join(q.thread, NULL), 0);
        fixture_free(f);
        exit(0);
}

/* Run scenario in a child with a watchdog: a child that neither finishes
 * nor fails within the time (many times what the scenario takes: about
 * 1 s of TTL) is stuck. */
static void run_watched(void (*scenario)(int), int arg, const char *what) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                alarm(2 * EVENT_TIMEOUT_MS / 1000); /* longer than any wait inside */
                scenario(arg);
                _exit(3);
        }
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (WIFSIGNALED(status)) {
                print_message("%s: child killed by signal %d (%s)\n", what, WTERMSIG(status),
                              WTERMSIG(status) == SIGALRM ? "stuck: watchdog" : "crash");
                fail();
        }
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
}

/* Found: reap_deadlines() loops `while (heap_top()->key <= now)
 * lt_release()`, and lt_release() of a busy node only marks it doomed and
 * leaves its deadline at the top of the heap: the reaper spins for ever
 * with t->mu held, and the flusher can never take t->mu to settle the
 * node, so the whole table hangs. lt_take() unqueues the deadline of an
 * acquisition; record_and_wait() and write_step() do not. */
static void test_ttl_expiry_during_recorded_rename_does_not_hang(void **state) {
        (void)state;
        run_watched(ttl_scenario, 0, "rename");
}

static void test_ttl_expiry_during_recorded_write_does_not_hang(void **state) {
        (void)state;
        run_watched(ttl_scenario, 1, "write");
}

static void test_ttl_expiry_during_recorded_touch_does_not_hang(void **state) {
        (void)state;
        run_watched(ttl_scenario, 2, "setattr");
}

static void test_ttl_expiry_during_recorded_link_does_not_hang(void **state) {
        (void)state;
        run_watched(ttl_scenario, 3, "link");
}

/* ---- 2. open(O_TRUNC) by the holder: the truncation is not waited for */

/* With FUSE_CAP_ATOMIC_O_TRUNC (fs/ops.c asks for it) a shell's `: > lock`
 * by the holder truncates in OPEN, not SETATTR. Expected (70dbd6a: "a
 * write, rename, link, truncate or touch waits for the store ... and is
 * undone when refused"): the refused truncation is undone (content kept)
 * and the open fails. Found: lock_open() empties the content and queues
 * an update nobody waits for: open succeeds, the table holds empty
 * content, the store the old content. */
static void test_refused_truncating_open_is_undone(void **state) {
        struct fixture *f = *state;
        struct lt_handle h, h2;
        assert_int_equal(take(f->t, "trunc.lock", &f->self, &h), 0);
        assert_int_equal(locktable_write(f->t, &h, &f->self, 0, "content", 7), 7);
        f->store.fail_update = -ENOSPC;
        unsigned before = f->store.updates;
        int r = locktable_open(f->t, h.ino, &f->self, O_WRONLY | O_TRUNC, &h2);
        assert_int_equal(f->store.updates, before + 1); /* asked, and refused */
        struct lock_view v;
        assert_int_equal(locktable_view(f->t, h.ino, &v), 0);
        print_message("open(O_TRUNC): %d, content length now %u\n", r, (unsigned)v.content_len);
        bool kept = v.content_len == 7;
        lock_view_clear(&v);
        assert_int_equal(r, -EIO);
        assert_true(kept);
}

/* ---- 3. unlink of one name of several: not waited for */

/* Expected (same contract): a refused record of the removal of a second
 * name leaves the name (unlink fails) or the store agrees. Found:
 * name_remove() drops the name and queues an update nobody waits for;
 * unlink succeeds, and after a restart the store's record brings the
 * name back. */
static void test_refused_unlink_of_second_name_is_undone(void **state) {
        struct fixture *f = *state;
        struct lt_handle h;
        struct lt_attr a;
        assert_int_equal(take(f->t, "one.lock", &f->self, &h), 0);
        assert_int_equal(locktable_link(f->t, h.ino, LT_INO_ROOT, "two.lock", &f->self, &a), 0);
        f->store.fail_update = -ENOSPC;
        unsigned before = f->store.updates;
        struct lock_view forced;
        int r = locktable_unlink(f->t, LT_INO_ROOT, "one.lock", &f->self, &forced);
        lock_view_clear(&forced);
        assert_int_equal(f->store.updates, before + 1);
        int r_old = locktable_lookup(f->t, LT_INO_ROOT, "one.lock", &a);
        print_message("unlink of a second name: %d, name %s\n", r, r_old == 0 ? "kept" : "gone");
        assert_int_equal(r, -EIO);
        assert_int_equal(r_old, 0);
        /* and once the store records again, the unlink goes through */
        f->store.fail_update = 0;
        assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, "one.lock", &f->self, &forced), 0);
        lock_view_clear(&forced);
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "one.lock", &a), -ENOENT);
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "two.lock", &a), 0);
        /* the lock's own name (the newest link's): the lock moves to its
         * other name only once that is recorded */
        assert_int_equal(locktable_link(f->t, h.ino, LT_INO_ROOT, "three.lock", &f->self, &a), 0);
        f->store.fail_update = -ENOSPC;
        assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, "three.lock", &f->self, &forced),
                         -EIO);
        lock_view_clear(&forced);
        struct lock_view v;
        assert_int_equal(locktable_view(f->t, h.ino, &v), 0);
        assert_string_equal(v.path, "/three.lock");
        lock_view_clear(&v);
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "two.lock", &a), 0);
        f->store.fail_update = 0;
        assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, "three.lock", &f->self, &forced), 0);
        lock_view_clear(&forced);
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "three.lock", &a), -ENOENT);
        assert_int_equal(locktable_view(f->t, h.ino, &v), 0);
        assert_string_equal(v.path, "/two.lock");
        lock_view_clear(&v);
}

/* ---- 4. quota counts across refused records (held up: these pass) */

static void assert_usage(struct fixture *f, uint64_t things, uint64_t bytes) {
        struct lt_usage u;
        locktable_quota_usage(f->t, 1000, &u);
        assert_int_equal(u.things, things);
        assert_int_equal(u.content_bytes, bytes);
}

static void test_quota_after_refused_link_write_truncate(void **state) {
        struct fixture *f = *state;
        struct lt_handle h;
        struct lt_attr a;
        assert_int_equal(take(f->t, "q.lock", &f->self, &h), 0);
        assert_int_equal(locktable_write(f->t, &h, &f->self, 0, "12345", 5), 5);
        assert_usage(f, 1, 5);
        f->store.fail_update = -ENOSPC;
        assert_int_equal(locktable_link(f->t, h.ino, LT_INO_ROOT, "q2.lock", &f->self, &a), -EIO);
        assert_usage(f, 1, 5);
        assert_int_equal(locktable_write(f->t, &h, &f->self, 0, "1234567890", 10), -EIO);
        assert_usage(f, 1, 5);
        assert_int_equal(locktable_setattr(f->t, h.ino, &h, &f->self, LT_SET_SIZE, 40, &a), -EIO);
        assert_usage(f, 1, 5);
        assert_int_equal(locktable_setattr(f->t, h.ino, &h, &f->self, LT_SET_SIZE, 0, &a), -EIO);
        assert_usage(f, 1, 5);
        assert_int_equal(locktable_rename(f->t, LT_INO_ROOT, "q.lock", LT_INO_ROOT, "q3.lock", 0,
                                          &f->self),
                         -EIO);
        assert_usage(f, 1, 5);
        f->store.fail_update = 0;
        assert_int_equal(locktable_link(f->t, h.ino, LT_INO_ROOT, "q2.lock", &f->self, &a), 0);
        assert_usage(f, 2, 5);
        struct lock_view forced;
        assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, "q2.lock", &f->self, &forced), 0);
        lock_view_clear(&forced);
        assert_usage(f, 1, 5); /* one name of two went */
        assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, "q.lock", &f->self, &forced), 0);
        lock_view_clear(&forced);
        assert_usage(f, 0, 0);
}


/* ---- 5. a flock released during a refused claim write */

struct cwriter {
        struct locktable *t;
        struct lt_handle h;
        struct caller who;
        char buf[32];
        ssize_t r;
        pthread_t thread;
};

static void *cwriter_main(void *arg) {
        struct cwriter *w = arg;
        w->r = locktable_write(w->t, &w->h, &w->who, 0, w->buf, strlen(w->buf));
        return NULL;
}

/* Child A creates c.lock and takes its flock (owner 77), then writes a
 * claim naming its parent (this process); the store sits on the write.
 * Meanwhile A's flock is released (LOCK_UN or close: flock_unlock): the
 * node is busy, so the release is deferred (doomed = UNLOCK). The store
 * refuses the write; write_done rolls the holder back to A and, because
 * the holder changed, drops the deferred release ("a deferred release was
 * the claimed process's"): it was not, it was A's own unlock.
 * Expected: the lock is released (as the unlock would have released it
 * had the write not been in flight). Found: the lock stays held by A,
 * with flock_owner 77 still set, though A released its flock. */
static void test_refused_claim_write_keeps_a_deferred_flock_unlock(void **state) {
        struct fixture *f = *state;
        int fa = -1;
        pid_t pa = spawn_child(&fa);
        struct cwriter w = { .t = f->t };
        assert_int_equal(holder_identify(pa, 0, 0, &w.who), 0);
        struct lt_attr a;
        assert_int_equal(locktable_create(f->t, LT_INO_ROOT, "c.lock", &w.who,
                                          O_CREAT | O_EXCL | O_WRONLY, &a, &w.h), 0);
        struct lt_handle granted;
        assert_int_equal(locktable_flock(f->t, w.h.ino, &w.h, 77, 0, &w.who, true, 1, &granted), 0);
        snprintf(w.buf, sizeof(w.buf), "%d\n", (int)getpid());
        test_store_set_block(&f->store, &f->store.block_update, true);
        f->store.fail_update = -ENOSPC;
        assert_int_equal(pthread_create(&w.thread, NULL, cwriter_main, &w), 0);
        test_store_await(&f->store, &f->store.in_update, 1);
        locktable_flock_unlock(f->t, w.h.ino, 77, NULL, NULL);
        test_store_set_block(&f->store, &f->store.block_update, false);
        pthread_join(w.thread, NULL);
        assert_int_equal(w.r, -EIO);
        struct lock_view v;
        int r = locktable_view(f->t, w.h.ino, &v);
        if (r == 0) {
                print_message("after the refused claim write: still held by pid %d (A is %d)\n",
                              (int)v.pid, (int)pa);
                lock_view_clear(&v);
        }
        close(fa);
        waitpid(pa, NULL, 0);
        assert_int_equal(r, -ENOENT);
}


/* ---- 6. a refused rename whose old name was taken meanwhile */

struct flocker {
        struct locktable *t;
        uint64_t ino;
        struct caller who;
        int r;
        pthread_t thread;
};

static void *flocker_main(void *arg) {
        struct flocker *q = arg;
        struct lt_handle c = { .kind = LT_HANDLE_CONTENDER, .ino = q->ino }, granted;
        q->r = locktable_flock(q->t, q->ino, &c, 5, 0, &q->who, true, 9, &granted);
        return NULL;
}


/* X was a.lock and was released; a descriptor of X stays open. Y takes
 * a.lock and is renamed to b.lock; the store sits on (then refuses) the
 * rename's record. Meanwhile a flock through X's old descriptor takes
 * "whatever now holds its name" -- a.lock, free during the rename -- as
 * a new lock Z (flock(2) takes no directory lock in the kernel, so this
 * is reachable through FUSE). The refused rename then finds its old name
 * taken and lets the rename stand, returning 0, and queues the record
 * again without waiting (refused again here).
 * Expected: a rename the store refused fails (EIO) or is recorded. Found:
 * rename returns 0 and the store holds Y under a.lock as well as Z under
 * a.lock: after a restart, two records name one lock. */
static void test_refused_rename_with_old_name_retaken(void **state) {
        struct fixture *f = *state;
        struct lt_handle hx, hy;
        struct lock_view forced;
        assert_int_equal(take(f->t, "a.lock", &f->self, &hx), 0);
        assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, "a.lock", &f->self, &forced), 0);
        lock_view_clear(&forced);
        assert_int_equal(take(f->t, "a.lock", &f->self, &hy), 0);
        test_store_set_block(&f->store, &f->store.block_update, true);
        f->store.fail_update = -ENOSPC;
        struct req q = { .f = f, .kind = 4 };
        assert_int_equal(pthread_create(&q.thread, NULL, req_main, &q), 0);
        test_store_await(&f->store, &f->store.in_update, 1);
        struct flocker fl = { .t = f->t, .ino = hx.ino, .who = f->self };
        assert_int_equal(pthread_create(&fl.thread, NULL, flocker_main, &fl), 0);
        /* the flock waits while the rename is in flight (no name is taken
         * in its directory meanwhile), whenever it reaches the table */
        test_store_set_block(&f->store, &f->store.block_update, false);
        pthread_join(q.thread, NULL);
        pthread_join(fl.thread, NULL);
        struct lt_attr a;
        int r_b = locktable_lookup(f->t, LT_INO_ROOT, "b.lock", &a);
        print_message("refused rename: %ld, flock of the old name: %d, b.lock %s, updates %u "
                      "(all refused)\n", q.r, fl.r, r_b == 0 ? "exists" : "gone",
                      f->store.updates);
        assert_int_equal(q.r, -EIO);
        assert_int_equal(r_b, -ENOENT);
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "a.lock", &a), 0);
        assert_int_equal(a.ino, hy.ino); /* Y is back under its name */
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ttl_expiry_during_recorded_rename_does_not_hang),
                cmocka_unit_test(test_ttl_expiry_during_recorded_write_does_not_hang),
                cmocka_unit_test(test_ttl_expiry_during_recorded_touch_does_not_hang),
                cmocka_unit_test(test_ttl_expiry_during_recorded_link_does_not_hang),
                cmocka_unit_test_setup_teardown(test_refused_truncating_open_is_undone, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_refused_unlink_of_second_name_is_undone,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(
                        test_refused_claim_write_keeps_a_deferred_flock_unlock, setup, teardown),
                cmocka_unit_test_setup_teardown(test_refused_rename_with_old_name_retaken, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_quota_after_refused_link_write_truncate,
                                                setup_quota, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
