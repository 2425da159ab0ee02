/* SPDX-License-Identifier: MIT */
/* Unit tests for the lock table, with real processes as holders. */
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

#include "clock.h"
#include "globs.h"
#include "locktable.h"
#include "store.h"
#include "store_mem.h"
#include "fixture.h"

struct fixture {
        struct store *store;
        struct locktable *t;
        struct caller self;   /* this test process, as root */
        struct caller other;  /* an unrelated process, uid 1000 */
        pid_t other_pid;
        int other_pipe;       /* closing it ends the child */
};

static int setup_cfg(void **state, const struct locktable_config *cfg) {
        struct fixture *f = calloc(1, sizeof(*f));
        assert_int_equal(store_mem_new(&f->store), 0);
        assert_int_equal(locktable_new(cfg, f->store, &f->t), 0);
        assert_int_equal(holder_identify(getpid(), 0, 0, &f->self), 0);
        f->other_pid = spawn_stranger(&f->other_pipe);
        assert_true(f->other_pid > 0);
        assert_int_equal(holder_identify(f->other_pid, 1000, 1000, &f->other), 0);
        *state = f;
        return 0;
}

static int setup(void **state) {
        struct locktable_config cfg = { .default_ttl_s = 0, .max_locks = 100,
                                        .max_content = 64, .max_depth = 4 };
        return setup_cfg(state, &cfg);
}

static int teardown(void **state) {
        struct fixture *f = *state;
        locktable_free(f->t);
        store_free(f->store);
        close(f->other_pipe); /* not our child: it exits and is reaped by init */
        free(f);
        return 0;
}

/* A create of name in the root as c with flags (and O_CREAT). */
static int create(struct fixture *f, const char *name, const struct caller *c, int flags,
                  struct lt_attr *a, struct lt_handle *h) {
        return locktable_create(f->t, LT_INO_ROOT, name, c, flags | O_CREAT, a, h);
}

static void test_create_takes_a_free_name_once(void **state) {
        struct fixture *f = *state;
        struct lt_attr a, a2;
        struct lt_handle h, h2;
        assert_int_equal(create(f, "state.lock", &f->self, O_WRONLY | O_EXCL, &a, &h), 0);
        assert_int_equal(h.kind, LT_HANDLE_HOLDER);
        assert_int_equal(h.fence, 1);
        assert_true(a.ino >= LT_INO_FIRST);
        assert_int_equal(a.nlink, 1);
        /* exclusive create of a held name: EEXIST, also for the holder */
        assert_int_equal(create(f, "state.lock", &f->other, O_WRONLY | O_EXCL, &a2, &h2), -EEXIST);
        assert_int_equal(create(f, "state.lock", &f->self, O_WRONLY | O_EXCL, &a2, &h2), -EEXIST);
        /* non-exclusive: a contender handle for others, a holder handle for the holder */
        assert_int_equal(create(f, "state.lock", &f->other, O_WRONLY | O_TRUNC, &a2, &h2), 0);
        assert_int_equal(h2.kind, LT_HANDLE_CONTENDER);
        assert_int_equal(a2.ino, a.ino);
        assert_int_equal(create(f, "state.lock", &f->self, O_WRONLY, &a2, &h2), 0);
        assert_int_equal(h2.kind, LT_HANDLE_HOLDER);
        assert_int_equal(create(f, "state.lock", &f->other, O_RDONLY, &a2, &h2), 0);
        assert_int_equal(h2.kind, LT_HANDLE_READER);
}

static void test_contender_cannot_write_or_truncate(void **state) {
        struct fixture *f = *state;
        struct lt_attr a;
        struct lt_handle h, hc;
        struct lock_view v;
        assert_int_equal(create(f, "x", &f->self, O_WRONLY | O_EXCL, &a, &h), 0);
        assert_int_equal(locktable_write(f->t, &h, &f->self, 0, "mine", 4), 4);
        assert_int_equal(locktable_open(f->t, a.ino, &f->other, O_WRONLY | O_TRUNC, &hc), 0);
        assert_int_equal(hc.kind, LT_HANDLE_CONTENDER);
        assert_int_equal(locktable_write(f->t, &hc, &f->other, 0, "theirs", 6), -EEXIST);
        assert_int_equal(locktable_setattr(f->t, a.ino, &hc, &f->other, LT_SET_SIZE, 0, &a), -EEXIST);
        assert_int_equal(locktable_setattr(f->t, a.ino, NULL, &f->other, LT_SET_TIMES, 0, &a), -EPERM);
        assert_int_equal(locktable_setattr(f->t, a.ino, NULL, &f->other, LT_SET_MODE, 0, &a), -EPERM);
        assert_int_equal(locktable_view(f->t, a.ino, &v), 0);
        assert_int_equal(v.content_len, 4);
        assert_memory_equal(v.content, "mine", 4);
        assert_int_equal(v.pid, getpid());
        lock_view_clear(&v);
        struct lock_metrics m;
        locktable_metrics(f->t, &m);
        assert_int_equal(m.contended, 2);
}

static void test_holder_write_truncate_and_size_limit(void **state) {
        struct fixture *f = *state;
        struct lt_attr a;
        struct lt_handle h;
        struct lock_view v;
        char big[65] = { 0 };
        assert_int_equal(create(f, "x", &f->self, O_WRONLY, &a, &h), 0);
        assert_int_equal(locktable_write(f->t, &h, &f->self, 0, "hello", 5), 5);
        assert_int_equal(locktable_write(f->t, &h, &f->self, 0, big, sizeof(big)), -EFBIG);
        assert_int_equal(locktable_write(f->t, &h, &f->self, 60, "abcde", 5), -EFBIG);
        assert_int_equal(locktable_view(f->t, a.ino, &v), 0);
        assert_int_equal(v.content_len, 5); /* unchanged by the refused writes */
        lock_view_clear(&v);
        assert_int_equal(locktable_setattr(f->t, a.ino, &h, &f->self, LT_SET_SIZE, 2, &a), 0);
        struct lt_handle h2;
        assert_int_equal(locktable_open(f->t, a.ino, &f->self, O_WRONLY | O_APPEND, &h2), 0);
        assert_int_equal(locktable_write(f->t, &h2, &f->self, 0, "!", 1), 1);
        assert_int_equal(locktable_view(f->t, a.ino, &v), 0);
        assert_int_equal(v.content_len, 3);
        assert_memory_equal(v.content, "he!", 3);
        lock_view_clear(&v);
        assert_int_equal(locktable_open(f->t, a.ino, &f->self, O_WRONLY | O_TRUNC, &h2), 0);
        assert_int_equal(locktable_view(f->t, a.ino, &v), 0);
        assert_int_equal(v.content_len, 0);
        lock_view_clear(&v);
}

static void test_fences_strictly_increase(void **state) {
        struct fixture *f = *state;
        struct lt_attr a;
        struct lt_handle h;
        struct lock_view forced;
        uint64_t last = 0;
        for (int i = 0; i < 20; i++) {
                const char *name = i % 2 ? "a" : "b";
                assert_int_equal(create(f, name, &f->self, O_WRONLY | O_EXCL, &a, &h), 0);
                assert_true(h.fence > last);
                last = h.fence;
                assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, name, &f->self, &forced), 0);
                assert_null(forced.path);
        }
}

static void test_unlink_rules(void **state) {
        struct fixture *f = *state;
        struct lt_attr a;
        struct lt_handle h;
        struct lock_view forced;
        struct lock_view v;
        assert_int_equal(create(f, "x", &f->self, O_WRONLY, &a, &h), 0);
        /* SPEC R3.4: a held lock is never stale; an unlink by anyone but its
         * holder fails with EBUSY: another uid, and root that is not the
         * holder, alike */
        assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, "x", &f->other, &forced), -EBUSY);
        struct caller root_other = f->other;
        root_other.uid = 0;
        assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, "x", &root_other, &forced), -EBUSY);
        assert_null(forced.path);
        assert_int_equal(locktable_view(f->t, a.ino, &v), 0); /* as it was */
        assert_int_equal(v.fence, h.fence);
        assert_int_equal(v.pid, getpid());
        lock_view_clear(&v);
        /* the holder releases it */
        assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, "x", &f->self, &forced), 0);
        assert_null(forced.path);
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "x", &a), -ENOENT);
        assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, "x", &f->self, &forced), -ENOENT);
        /* another uid's lock: root gets EBUSY too */
        assert_int_equal(create(f, "y", &f->other, O_WRONLY, &a, &h), 0);
        assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, "y", &f->self, &forced), -EBUSY);
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "y", &a), 0);
        struct lock_metrics m;
        locktable_metrics(f->t, &m);
        assert_int_equal(m.released_root, 0);
        assert_int_equal(m.released_unlink, 1);
        assert_int_equal(m.held, 1);
}

/* SPEC R3.4, R3.3a: a detached lock (content "0") goes for its creator's
 * uid, from any process, and for root (logged as a break when it is
 * another uid's); other uids get EPERM. */
static void test_unlink_detached(void **state) {
        struct fixture *f = *state;
        struct lt_attr a;
        struct lt_handle h;
        struct lock_view forced;
        struct caller stranger, same_uid;
        assert_int_equal(holder_identify(getpid(), 1001, 1001, &stranger), 0);
        assert_int_equal(holder_identify(getpid(), 1000, 1000, &same_uid), 0);
        for (int i = 0; i < 2; i++) {
                assert_int_equal(create(f, "d", &f->other, O_WRONLY, &a, &h), 0);
                assert_int_equal(locktable_write(f->t, &h, &f->other, 0, "0", 1), 1);
                assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, "d", &stranger, &forced),
                                 -EPERM);
                const struct caller *by = i ? &f->self : &same_uid;
                assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, "d", by, &forced), 0);
                assert_true(i ? forced.path != NULL : forced.path == NULL);
                if (i) {
                        assert_int_equal(forced.fence, h.fence);
                        assert_int_equal(forced.pid, 0);
                        assert_int_equal(forced.uid, 1000);
                }
                lock_view_clear(&forced);
                assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "d", &a), -ENOENT);
        }
        struct lock_metrics m;
        locktable_metrics(f->t, &m);
        assert_int_equal(m.released_detached, 1);
        assert_int_equal(m.released_root, 1);
}

/* Wait (poll, no sleep) until the reaper fd fires, then reap. */
static int reap_wait(struct locktable *t, int timeout_ms, lt_removed_fn fn, void *ctx) {
        struct pollfd p = { .fd = locktable_reaper_fd(t), .events = POLLIN };
        if (poll(&p, 1, timeout_ms) != 1)
                return -ETIMEDOUT;
        return locktable_reap(t, fn, ctx);
}

struct removed_log {
        int n;
        char name[64];
        uint64_t ino;
};

static void note_removed(void *ctx, uint64_t parent, uint64_t ino, const char *name) {
        struct removed_log *l = ctx;
        assert_int_equal(parent, LT_INO_ROOT);
        l->n++;
        l->ino = ino;
        snprintf(l->name, sizeof(l->name), "%s", name);
}

static void test_holder_death_releases_all_its_locks(void **state) {
        struct fixture *f = *state;
        int fd = -1;
        pid_t pid = spawn_child(&fd);
        struct caller c;
        assert_int_equal(holder_identify(pid, 0, 0, &c), 0);
        struct lt_attr a;
        struct lt_handle h;
        assert_int_equal(create(f, "d1", &c, O_WRONLY, &a, &h), 0);
        assert_int_equal(create(f, "d2", &c, O_WRONLY, &a, &h), 0);
        assert_int_equal(create(f, "mine", &f->self, O_WRONLY, &a, &h), 0);
        end_child(pid, fd);
        struct removed_log log = { 0 };
        int released = 0;
        while (released < 2) {
                int r = reap_wait(f->t, EVENT_TIMEOUT_MS, note_removed, &log);
                assert_true(r >= 0);
                released += r;
        }
        assert_int_equal(log.n, 2);
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "d1", &a), -ENOENT);
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "d2", &a), -ENOENT);
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "mine", &a), 0);
        struct lock_metrics m;
        locktable_metrics(f->t, &m);
        assert_int_equal(m.released_exit, 2);
        assert_int_equal(m.held, 1);
        /* the name is free again at once */
        assert_int_equal(create(f, "d1", &f->self, O_WRONLY | O_EXCL, &a, &h), 0);
}

/* An unlink by a partial caller (holder_identify_quick) succeeds for the
 * holder itself; anyone else gets LT_NEED_LINEAGE and nothing changes, so the
 * adapter retries with the ancestry (a descendant may release). */
static void test_partial_caller_unlink(void **state) {
        struct fixture *f = *state;
        int fd = -1;
        pid_t pid = spawn_child(&fd);
        struct caller child, child_quick, me_quick;
        assert_int_equal(holder_identify(pid, 0, 0, &child), 0);
        assert_int_equal(holder_identify_quick(pid, 0, 0, &child_quick), 0);
        assert_int_equal(holder_identify_quick(getpid(), 0, 0, &me_quick), 0);
        struct lt_attr a;
        struct lt_handle h;
        struct lock_view forced;
        /* an exclusive create by a partial caller acquires */
        assert_int_equal(create(f, "q", &me_quick, O_WRONLY | O_EXCL, &a, &h), 0);
        assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, "q", &me_quick, &forced), 0);
        assert_null(forced.path);
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "q", &a), -ENOENT);
        /* my lock, unlinked by my child: first LT_NEED_LINEAGE, then allowed */
        assert_int_equal(create(f, "p", &f->self, O_WRONLY | O_EXCL, &a, &h), 0);
        assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, "p", &child_quick, &forced),
                         LT_NEED_LINEAGE);
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "p", &a), 0);
        assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, "p", &child, &forced), 0);
        assert_null(forced.path); /* a descendant's release, not a force-unlock */
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "p", &a), -ENOENT);
        end_child(pid, fd);
}

/* A create by a caller identified without its cmdline works only for a
 * process the table knows (its record, live or idle, has the cmdline). */
static void test_create_without_cmdline(void **state) {
        struct fixture *f = *state;
        int fd = -1;
        pid_t pid = spawn_child(&fd);
        struct caller bare, quick;
        assert_int_equal(holder_identify_process_only(pid, 0, 0, &bare), 0);
        assert_true(bare.no_cmdline);
        assert_int_equal(bare.cmdline[0], '\0');
        assert_int_equal(holder_identify_quick(pid, 0, 0, &quick), 0);
        assert_false(quick.no_cmdline);
        struct lt_attr a;
        struct lt_handle h;
        struct lock_view forced, v;
        assert_int_equal(create(f, "nc", &bare, O_WRONLY | O_EXCL, &a, &h), LT_NEED_CMDLINE);
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "nc", &a), -ENOENT);
        assert_int_equal(create(f, "nc", &quick, O_WRONLY | O_EXCL, &a, &h), 0);
        assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, "nc", &bare, &forced), 0);
        /* its record stays (idle): now the bare identity is enough */
        assert_int_equal(create(f, "nc", &bare, O_WRONLY | O_EXCL, &a, &h), 0);
        assert_int_equal(locktable_view(f->t, a.ino, &v), 0);
        assert_string_equal(v.cmdline, quick.cmdline);
        assert_true(strlen(v.cmdline) > 0);
        lock_view_clear(&v);
        /* a changed comm (an exec) needs the cmdline again */
        snprintf(bare.comm, sizeof(bare.comm), "other");
        assert_int_equal(create(f, "nc2", &bare, O_WRONLY | O_EXCL, &a, &h), LT_NEED_CMDLINE);
        end_child(pid, fd);
}

/* A holder's record (and pidfd) outlives its last lock for its next one,
 * for at most 64 processes; a dead process's record goes. */
static void test_idle_holders_are_capped_and_reaped(void **state) {
        struct fixture *f = *state;
        enum { N = 70 };
        pid_t pids[N];
        int fds[N];
        int before = count_fds();
        for (int i = 0; i < N; i++) {
                pids[i] = spawn_child(&fds[i]);
                struct caller c;
                assert_int_equal(holder_identify(pids[i], 0, 0, &c), 0);
                struct lt_attr a;
                struct lt_handle h;
                struct lock_view forced;
                assert_int_equal(create(f, "idle", &c, O_WRONLY | O_EXCL, &a, &h), 0);
                assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, "idle", &c, &forced), 0);
        }
        /* N sleeper pipes plus at most 64 idle pidfds */
        assert_int_equal(count_fds() - before, N + 64);
        /* close them all, then wait */
        for (int i = 0; i < N; i++)
                close(fds[i]);
        for (int i = 0; i < N; i++)
                waitpid(pids[i], NULL, 0);
        int released = 0;
        while (count_fds() > before) /* each death wakes the reaper */
                assert_true((released += reap_wait(f->t, EVENT_TIMEOUT_MS, NULL, NULL)) >= 0);
        assert_int_equal(released, 0); /* idle records release nothing */
        assert_int_equal(count_fds(), before);
}

static void test_ttl_expiry_and_renewal(void **state) {
        struct fixture *f = *state;
        struct lt_attr a;
        struct lt_handle h, h2;
        assert_int_equal(create(f, "short", &f->self, O_WRONLY, &a, &h), 0);
        const char *json = "{\"ttl_s\": 1}";
        assert_int_equal(locktable_write(f->t, &h, &f->self, 0, json, strlen(json)),
                         (ssize_t)strlen(json));
        assert_int_equal(create(f, "long", &f->self, O_WRONLY, &a, &h2), 0);
        struct lock_view v;
        assert_int_equal(locktable_view(f->t, h.ino, &v), 0);
        assert_int_equal(v.ttl_s, 1);
        assert_int_equal(v.expires_at_ms, v.renewed_at_ms + 1000);
        lock_view_clear(&v);
        int64_t start = clock_mono_ms();
        struct removed_log log = { 0 };
        assert_int_equal(reap_wait(f->t, EVENT_TIMEOUT_MS, note_removed, &log), 1);
        int64_t waited = clock_mono_ms() - start;
        assert_true(waited >= 900); /* not before the deadline; how soon after: tests/bench (ttl) */
        assert_string_equal(log.name, "short");
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "long", &a), 0);
        struct lock_metrics m;
        locktable_metrics(f->t, &m);
        assert_int_equal(m.released_ttl, 1);
}

/* SPEC R5.3: which TTL a lock gets. The mount's ttl (here 100 s) goes to
 * detached locks only (content "0", a caller whose pid is unknown); a live
 * holder's lock has none unless holder_ttl (here 200 s, setup_ttls) or its
 * own "ttl_s" gives it one; the choice follows the lock when it changes
 * between held and detached. */
static void check_ttl(struct fixture *f, uint64_t ino, uint32_t want) {
        struct lock_view v;
        assert_int_equal(locktable_view(f->t, ino, &v), 0);
        assert_int_equal(v.ttl_s, want);
        lock_view_clear(&v);
}

static void ttl_choice(void **state, uint32_t holder_ttl) {
        struct fixture *f = *state;
        struct lt_attr a;
        struct lt_handle h;
        struct caller ghost;
        assert_int_equal(holder_identify(0, 1000, 1000, &ghost), 0);
        /* a live holder: no TTL (or holder_ttl) */
        assert_int_equal(create(f, "live", &f->self, O_WRONLY, &a, &h), 0);
        check_ttl(f, a.ino, holder_ttl);
        /* its own ttl_s wins, either way */
        const char *own = "{\"ttl_s\": 7}";
        assert_int_equal(locktable_write(f->t, &h, &f->self, 0, own, strlen(own)),
                         (ssize_t)strlen(own));
        check_ttl(f, a.ino, 7);
        /* content without ttl_s: the choice is the mount's again */
        assert_int_equal(locktable_setattr(f->t, a.ino, &h, &f->self, LT_SET_SIZE, 0, &a), 0);
        const char *plain = "{\"op\": 1}";
        assert_int_equal(locktable_write(f->t, &h, &f->self, 0, plain, strlen(plain)),
                         (ssize_t)strlen(plain));
        check_ttl(f, a.ino, holder_ttl);
        /* rewritten to "0": detached, the mount's ttl */
        assert_int_equal(locktable_setattr(f->t, a.ino, &h, &f->self, LT_SET_SIZE, 0, &a), 0);
        assert_int_equal(locktable_write(f->t, &h, &f->self, 0, "0", 1), 1);
        check_ttl(f, a.ino, 100);
        /* claimed back by its writer: held again */
        char buf[32];
        int n = snprintf(buf, sizeof(buf), "%d", (int)getpid());
        assert_int_equal(locktable_setattr(f->t, a.ino, &h, &f->self, LT_SET_SIZE, 0, &a), 0);
        assert_int_equal(locktable_write(f->t, &h, &f->self, 0, buf, n), n);
        check_ttl(f, a.ino, holder_ttl);
        /* a caller whose pid is unknown: detached from the start */
        assert_int_equal(create(f, "ns", &ghost, O_WRONLY, &a, &h), 0);
        check_ttl(f, a.ino, 100);
}

static void test_ttl_choice(void **state) {
        ttl_choice(state, 0);
}

static void test_ttl_choice_holder_ttl(void **state) {
        ttl_choice(state, 200);
}

static int setup_ttl(void **state) {
        struct locktable_config cfg = { .default_ttl_s = 100, .max_locks = 100,
                                        .max_content = 64, .max_depth = 4 };
        return setup_cfg(state, &cfg);
}

static int setup_holder_ttl(void **state) {
        struct locktable_config cfg = { .default_ttl_s = 100, .holder_ttl_s = 200,
                                        .max_locks = 100, .max_content = 64, .max_depth = 4 };
        return setup_cfg(state, &cfg);
}

static void test_renewal_postpones_expiry(void **state) {
        struct fixture *f = *state;
        struct lt_attr a;
        struct lt_handle h;
        assert_int_equal(create(f, "r", &f->self, O_WRONLY, &a, &h), 0);
        const char *json = "{\"ttl_s\": 1}";
        assert_int_equal(locktable_write(f->t, &h, &f->self, 0, json, strlen(json)),
                         (ssize_t)strlen(json));
        int64_t start = clock_mono_ms();
        /* renew after ~600 ms: the first deadline (start + 1 s) must pass quietly */
        struct pollfd p = { .fd = locktable_reaper_fd(f->t), .events = POLLIN };
        assert_int_equal(poll(&p, 1, 600), 0);
        assert_int_equal(locktable_setattr(f->t, a.ino, NULL, &f->self, LT_SET_TIMES, 0, &a), 0);
        struct removed_log log = { 0 };
        int r;
        while ((r = reap_wait(f->t, EVENT_TIMEOUT_MS, note_removed, &log)) == 0)
                ;
        assert_int_equal(r, 1);
        assert_true(clock_mono_ms() - start >= 1500);
}

static void test_claims(void **state) {
        struct fixture *f = *state;
        struct lt_attr a;
        struct lt_handle h;
        struct lock_view v;
        char buf[32];
        /* the writer claims its parent (the test runner): the parent holds */
        assert_int_equal(create(f, "c", &f->self, O_WRONLY, &a, &h), 0);
        int n = snprintf(buf, sizeof(buf), "  %d\n", (int)getppid());
        assert_int_equal(locktable_write(f->t, &h, &f->self, 0, buf, n), n);
        assert_int_equal(locktable_view(f->t, a.ino, &v), 0);
        assert_int_equal(v.pid, getppid());
        assert_int_equal(v.how, LOCK_HOW_CLAIM);
        lock_view_clear(&v);
        /* a claim naming an unrelated process is ignored and noted */
        assert_int_equal(create(f, "c2", &f->self, O_WRONLY, &a, &h), 0);
        n = snprintf(buf, sizeof(buf), "{\"pid\": %d}", (int)f->other_pid);
        assert_int_equal(locktable_write(f->t, &h, &f->self, 0, buf, n), n);
        assert_int_equal(locktable_view(f->t, a.ino, &v), 0);
        assert_int_equal(v.pid, getpid());
        assert_int_equal(v.how, LOCK_HOW_CREATOR);
        assert_int_equal(v.claim_ignored_pid, f->other_pid);
        lock_view_clear(&v);
        /* init is an ancestor of everyone, but never a holder */
        assert_int_equal(locktable_setattr(f->t, a.ino, &h, &f->self, LT_SET_SIZE, 0, &a), 0);
        assert_int_equal(locktable_write(f->t, &h, &f->self, 0, "1\n", 2), 2);
        assert_int_equal(locktable_view(f->t, a.ino, &v), 0);
        assert_int_equal(v.pid, getpid());
        assert_int_equal(v.claim_ignored_pid, 1);
        lock_view_clear(&v);
        /* "0" detaches: no holder; the creator's uid may still unlink it */
        assert_int_equal(create(f, "c3", &f->other, O_WRONLY, &a, &h), 0);
        assert_int_equal(locktable_write(f->t, &h, &f->other, 0, "0\n", 2), 2);
        assert_int_equal(locktable_view(f->t, a.ino, &v), 0);
        assert_true(v.detached);
        assert_int_equal(v.how, LOCK_HOW_DETACHED);
        assert_int_equal(v.uid, 1000);
        lock_view_clear(&v);
        /* nobody is its holder: a write-open by the creator's uid is a contender */
        struct lt_handle hc;
        struct caller same_uid_proc = f->self;
        same_uid_proc.uid = 1000;
        assert_int_equal(locktable_open(f->t, a.ino, &same_uid_proc, O_WRONLY | O_TRUNC, &hc), 0);
        assert_int_equal(hc.kind, LT_HANDLE_CONTENDER);
        assert_int_equal(locktable_write(f->t, &hc, &same_uid_proc, 0, "x", 1), -EEXIST);
        /* ... but may renew it (touch), as dotlock tools do; others may not */
        assert_int_equal(locktable_setattr(f->t, a.ino, NULL, &same_uid_proc, LT_SET_TIMES, 0, &a), 0);
        struct caller other_uid = f->self;
        other_uid.uid = 1001;
        assert_int_equal(locktable_setattr(f->t, a.ino, NULL, &other_uid, LT_SET_TIMES, 0, &a), -EPERM);
        assert_int_equal(locktable_setattr(f->t, a.ino, NULL, &same_uid_proc, LT_SET_SIZE, 0, &a), -EEXIST);
        /* the creating handle still may write */
        assert_int_equal(locktable_write(f->t, &h, &f->other, 2, " ", 1), 1);
        struct caller stranger = f->self;
        stranger.uid = 1001;
        struct lock_view forced;
        assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, "c3", &stranger, &forced), -EPERM);
        struct caller same_uid = f->self;
        same_uid.uid = 1000;
        assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, "c3", &same_uid, &forced), 0);
        assert_null(forced.path);
}

static void test_unknown_pid_is_detached(void **state) {
        struct fixture *f = *state;
        struct caller ghost;
        assert_int_equal(holder_identify(0, 1000, 1000, &ghost), 0);
        struct lt_attr a;
        struct lt_handle h;
        struct lock_view v;
        assert_int_equal(create(f, "ns", &ghost, O_WRONLY, &a, &h), 0);
        assert_int_equal(h.kind, LT_HANDLE_HOLDER);
        assert_int_equal(locktable_view(f->t, a.ino, &v), 0);
        assert_true(v.detached);
        assert_false(v.liveness_known);
        lock_view_clear(&v);
}

static void test_released_inode_lives_until_forgotten(void **state) {
        struct fixture *f = *state;
        struct lt_attr a, b;
        struct lt_handle h;
        struct lock_view forced;
        assert_int_equal(create(f, "g", &f->self, O_WRONLY, &a, &h), 0);
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "g", &b), 0); /* 2 lookups */
        assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, "g", &f->self, &forced), 0);
        assert_int_equal(locktable_getattr(f->t, a.ino, &b), 0);
        assert_int_equal(b.nlink, 0);
        assert_int_equal(locktable_open(f->t, a.ino, &f->self, O_RDONLY, &h), 0);
        assert_int_equal(h.kind, LT_HANDLE_READER);
        assert_int_equal(locktable_open(f->t, 999999, &f->self, O_RDONLY, &h), -ESTALE);
        /* a write open that raced the release: a contender of the old lock */
        assert_int_equal(locktable_open(f->t, a.ino, &f->self, O_WRONLY, &h), 0);
        assert_int_equal(h.kind, LT_HANDLE_CONTENDER);
        assert_int_equal(locktable_write(f->t, &h, &f->self, 0, "x", 1), -EEXIST);
        locktable_forget(f->t, a.ino, 1);
        assert_int_equal(locktable_getattr(f->t, a.ino, &b), 0);
        locktable_forget(f->t, a.ino, 1);
        assert_int_equal(locktable_getattr(f->t, a.ino, &b), -ENOENT);
        /* a new lock of the same name never reuses the number */
        assert_int_equal(create(f, "g", &f->self, O_WRONLY, &b, &h), 0);
        assert_true(b.ino > a.ino);
}

static void test_directories_and_names(void **state) {
        struct fixture *f = *state;
        struct lt_attr d, d2, a;
        struct lt_handle h;
        char longname[LT_NAME_MAX + 2];
        memset(longname, 'n', sizeof(longname) - 1);
        longname[sizeof(longname) - 1] = '\0';
        assert_int_equal(locktable_mkdir(f->t, LT_INO_ROOT, "ns", &f->self, &d), 0);
        assert_int_equal(locktable_mkdir(f->t, LT_INO_ROOT, "ns", &f->self, &d2), -EEXIST);
        assert_int_equal(locktable_create(f->t, d.ino, longname, &f->self, O_CREAT | O_WRONLY, &a, &h),
                         -ENAMETOOLONG);
        longname[LT_NAME_MAX] = '\0';
        assert_int_equal(locktable_create(f->t, d.ino, longname, &f->self, O_CREAT | O_WRONLY, &a, &h), 0);
        assert_int_equal(locktable_rmdir(f->t, LT_INO_ROOT, "ns", &f->self), -ENOTEMPTY);
        struct lock_view v;
        assert_int_equal(locktable_view(f->t, a.ino, &v), 0);
        assert_int_equal(strlen(v.path), 1 + 2 + 1 + LT_NAME_MAX);
        assert_memory_equal(v.path, "/ns/nnn", 7);
        lock_view_clear(&v);
        struct lock_view forced;
        assert_int_equal(locktable_unlink(f->t, d.ino, longname, &f->self, &forced), 0);
        assert_int_equal(locktable_rmdir(f->t, LT_INO_ROOT, "ns", &f->self), 0);
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "ns", &d2), -ENOENT);
        /* depth limit 4: /a/b/c/d is fine, /a/b/c/d/e is not */
        uint64_t parent = LT_INO_ROOT;
        const char *names[] = { "a", "b", "c" };
        for (int i = 0; i < 3; i++) {
                assert_int_equal(locktable_mkdir(f->t, parent, names[i], &f->self, &d), 0);
                parent = d.ino;
        }
        assert_int_equal(locktable_create(f->t, parent, "d", &f->self, O_CREAT | O_WRONLY, &a, &h), 0);
        assert_int_equal(locktable_mkdir(f->t, parent, "dd", &f->self, &d), 0);
        assert_int_equal(locktable_create(f->t, d.ino, "e", &f->self, O_CREAT | O_WRONLY, &a, &h),
                         -ENAMETOOLONG);
}

static void test_directory_owner_rules(void **state) {
        struct fixture *f = *state;
        struct lt_attr d, a;
        struct lt_handle h;
        struct caller alice = f->self, bob = f->self;
        alice.uid = 1000;
        bob.uid = 1001;
        assert_int_equal(locktable_mkdir(f->t, LT_INO_ROOT, "team", &alice, &d), 0);
        assert_int_equal(locktable_mkdir(f->t, LT_INO_ROOT, "empty", &alice, &a), 0);
        assert_int_equal(locktable_rmdir(f->t, LT_INO_ROOT, "empty", &bob), -EPERM);
        assert_int_equal(locktable_rename(f->t, LT_INO_ROOT, "empty", LT_INO_ROOT, "e2", 0, &bob),
                         -EPERM);
        assert_int_equal(locktable_rename(f->t, LT_INO_ROOT, "empty", LT_INO_ROOT, "e2", 0, &alice), 0);
        assert_int_equal(locktable_rmdir(f->t, LT_INO_ROOT, "e2", &alice), 0);
        /* a directory holding a lock of bob's: even its creator cannot move it */
        assert_int_equal(locktable_create(f->t, d.ino, "x.lock", &bob, O_CREAT | O_WRONLY, &a, &h), 0);
        assert_int_equal(locktable_rename(f->t, LT_INO_ROOT, "team", LT_INO_ROOT, "t2", 0, &alice),
                         -EPERM);
        struct caller root = f->self;
        assert_int_equal(locktable_rename(f->t, LT_INO_ROOT, "team", LT_INO_ROOT, "t2", 0, &root), 0);
        struct lt_dirent *e;
        size_t n;
        assert_int_equal(locktable_readdir(f->t, d.ino, &e, &n), 0);
        assert_int_equal(n, 3);
        assert_string_equal(e[2].name, "x.lock");
        lt_dirents_free(e, n);
}

static void test_max_locks(void **state) {
        struct fixture *f = *state;
        struct lt_attr a;
        struct lt_handle h;
        char name[16];
        for (int i = 0; i < 100; i++) {
                snprintf(name, sizeof(name), "l%d", i);
                assert_int_equal(create(f, name, &f->self, O_WRONLY, &a, &h), 0);
        }
        assert_int_equal(create(f, "one-more", &f->self, O_WRONLY, &a, &h), -ENOSPC);
        assert_int_equal(locktable_mkdir(f->t, LT_INO_ROOT, "dir", &f->self, &a), -ENOSPC);
        struct lock_view forced;
        assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, "l7", &f->self, &forced), 0);
        assert_int_equal(create(f, "one-more", &f->self, O_WRONLY, &a, &h), 0);
        struct lock_view *v;
        size_t n;
        assert_int_equal(locktable_views(f->t, &v, &n), 0);
        assert_int_equal(n, 100);
        lock_views_free(v, n);
}

static int setup_quota(void **state) {
        struct locktable_config cfg = { .max_locks = 100, .max_content = 64, .max_depth = 4,
                                        .max_locks_per_uid = 2, .user_break = true };
        return setup_cfg(state, &cfg);
}

/* -o max_locks_per_uid: a uid past its cap gets EDQUOT, root never. */
static void test_per_uid_cap(void **state) {
        struct fixture *f = *state;
        struct lt_attr a;
        struct lt_handle h;
        struct lock_view forced;
        assert_int_equal(create(f, "u1", &f->other, O_WRONLY, &a, &h), 0);
        assert_int_equal(create(f, "u2", &f->other, O_WRONLY, &a, &h), 0);
        assert_int_equal(create(f, "u3", &f->other, O_WRONLY | O_EXCL, &a, &h), -EDQUOT);
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "u3", &a), -ENOENT);
        for (int i = 0; i < 5; i++) { /* root is not capped */
                char name[8];
                snprintf(name, sizeof(name), "r%d", i);
                assert_int_equal(create(f, name, &f->self, O_WRONLY, &a, &h), 0);
        }
        /* a release makes room again */
        assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, "u1", &f->other, &forced), 0);
        assert_int_equal(create(f, "u3", &f->other, O_WRONLY, &a, &h), 0);
        assert_int_equal(create(f, "u4", &f->other, O_WRONLY, &a, &h), -EDQUOT);
}

/* -o user_break: the lock's uid may break it (locktable_break) from
 * another process; another uid may not; unlink stays EBUSY (SPEC R3.4). */
static void test_user_break(void **state) {
        struct fixture *f = *state;
        struct lt_attr a;
        struct lt_handle h;
        struct lock_view forced;
        struct caller same_uid, other_uid;
        assert_int_equal(holder_identify(getpid(), 1000, 1000, &same_uid), 0);
        assert_int_equal(holder_identify(getpid(), 1001, 1001, &other_uid), 0);
        assert_int_equal(create(f, "b.lock", &f->other, O_WRONLY, &a, &h), 0);
        assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, "b.lock", &same_uid, &forced),
                         -EBUSY);
        assert_int_equal(locktable_break(f->t, a.ino, h.fence, &other_uid, &forced, NULL, NULL),
                         -EPERM);
        assert_int_equal(locktable_break(f->t, a.ino, h.fence, &same_uid, &forced, NULL, NULL), 0);
        assert_non_null(forced.path); /* reported as a break */
        assert_int_equal(forced.pid, f->other_pid);
        assert_int_equal(forced.uid, 1000);
        lock_view_clear(&forced);
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "b.lock", &a), -ENOENT);
}

static void test_no_user_break_by_default(void **state) {
        struct fixture *f = *state;
        struct lt_attr a;
        struct lt_handle h;
        struct lock_view forced;
        struct caller same_uid;
        assert_int_equal(holder_identify(getpid(), 1000, 1000, &same_uid), 0);
        assert_int_equal(create(f, "b.lock", &f->other, O_WRONLY, &a, &h), 0);
        assert_int_equal(locktable_break(f->t, a.ino, h.fence, &same_uid, &forced, NULL, NULL),
                         -EPERM);
        assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, "b.lock", &same_uid, &forced),
                         -EBUSY);
}

static void test_rename_rules(void **state) {
        struct fixture *f = *state;
        struct lt_attr a, b, d;
        struct lt_handle h, h2;
        struct lock_view v;
        assert_int_equal(create(f, "src", &f->self, O_WRONLY, &a, &h), 0);
        assert_int_equal(create(f, "held", &f->other, O_WRONLY, &b, &h2), 0);
        assert_int_equal(locktable_rename(f->t, LT_INO_ROOT, "src", LT_INO_ROOT, "held", 0, &f->self),
                         -EEXIST);
        assert_int_equal(locktable_rename(f->t, LT_INO_ROOT, "held", LT_INO_ROOT, "free", 0, &f->self),
                         -EPERM);
        assert_int_equal(locktable_mkdir(f->t, LT_INO_ROOT, "dir", &f->self, &d), 0);
        assert_int_equal(locktable_rename(f->t, LT_INO_ROOT, "src", d.ino, "moved", 0, &f->self), 0);
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "src", &b), -ENOENT);
        assert_int_equal(locktable_view(f->t, a.ino, &v), 0);
        assert_string_equal(v.path, "/dir/moved");
        assert_int_equal(v.fence, h.fence);
        assert_int_equal(v.pid, getpid());
        lock_view_clear(&v);
        assert_int_equal(locktable_rename(f->t, LT_INO_ROOT, "dir", d.ino, "inside", 0, &f->self),
                         -EINVAL);
        assert_int_equal(locktable_rename(f->t, LT_INO_ROOT, "dir", LT_INO_ROOT, "x", 2 /* EXCHANGE */,
                                          &f->self), -EINVAL);
}

static void test_meta_directory_is_read_only(void **state) {
        struct fixture *f = *state;
        struct lt_attr a;
        struct lt_handle h;
        struct lock_view forced;
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, ".lockfs", &a), 0);
        assert_int_equal(a.ino, LT_INO_META_DIR);
        assert_int_equal(locktable_lookup(f->t, LT_INO_META_DIR, "locks.json", &a), 0);
        assert_int_equal(a.ino, LT_INO_META_LOCKS);
        assert_int_equal(locktable_create(f->t, LT_INO_META_DIR, "x", &f->self, O_CREAT | O_WRONLY,
                                          &a, &h), -EACCES);
        assert_int_equal(locktable_mkdir(f->t, LT_INO_META_DIR, "x", &f->self, &a), -EACCES);
        assert_int_equal(locktable_unlink(f->t, LT_INO_META_DIR, "metrics", &f->self, &forced), -EACCES);
        assert_int_equal(locktable_rmdir(f->t, LT_INO_ROOT, ".lockfs", &f->self), -EACCES);
        assert_int_equal(locktable_setattr(f->t, LT_INO_META_LOCKS, NULL, &f->self, LT_SET_SIZE, 0, &a),
                         -EACCES);
        struct lt_dirent *d;
        size_t n;
        assert_int_equal(locktable_readdir(f->t, LT_INO_ROOT, &d, &n), 0);
        bool seen = false;
        for (size_t i = 0; i < n; i++)
                seen |= strcmp(d[i].name, ".lockfs") == 0;
        assert_true(seen);
        lt_dirents_free(d, n);
}

static void test_reused_pid_is_not_the_holder(void **state) {
        struct fixture *f = *state;
        struct lt_attr a;
        struct lt_handle h;
        struct lock_view forced;
        assert_int_equal(create(f, "mine", &f->self, O_WRONLY, &a, &h), 0);
        /* same pid, other start time: another process that reused the pid */
        struct caller impostor = f->self;
        impostor.self.start_time += 1;
        impostor.n_ancestors = 0;
        impostor.uid = 1000;
        assert_int_equal(locktable_open(f->t, a.ino, &impostor, O_WRONLY, &h), 0);
        assert_int_equal(h.kind, LT_HANDLE_CONTENDER);
        assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, "mine", &impostor, &forced), -EBUSY);
        /* a claim naming an ancestor whose start time does not match is ignored */
        struct caller child = f->self;
        assert_int_equal(create(f, "claimed", &child, O_WRONLY, &a, &h), 0);
        assert_int_equal(child.ancestors[0].pid, getppid());
        child.ancestors[0].start_time += 1; /* its "parent" is now a different process */
        char buf[32];
        int n = snprintf(buf, sizeof(buf), "%d", (int)getppid());
        assert_int_equal(locktable_write(f->t, &h, &child, 0, buf, n), n);
        struct lock_view v;
        assert_int_equal(locktable_view(f->t, a.ino, &v), 0);
        assert_int_equal(v.pid, getpid());
        assert_int_equal(v.how, LOCK_HOW_CREATOR);
        assert_int_equal(v.claim_ignored_pid, getppid());
        lock_view_clear(&v);
}

struct grants_log {
        int n;
        uint64_t id[8];
        int err[8];
        struct lt_handle h[8];
};

static void note_grant(void *ctx, uint64_t id, int err, const struct lt_handle *h) {
        struct grants_log *g = ctx;
        assert_true(g->n < 8);
        g->id[g->n] = id;
        g->err[g->n] = err;
        g->h[g->n] = *h;
        g->n++;
}

static void test_flock_grant_wait_and_handoff(void **state) {
        struct fixture *f = *state;
        struct grants_log g = { 0 };
        locktable_set_grant_fn(f->t, note_grant, &g);
        struct lt_attr a;
        struct lt_handle h, hc, got;
        struct lock_view v;
        /* the creator flocks its own lock: granted at once */
        assert_int_equal(create(f, "fl", &f->self, O_WRONLY, &a, &h), 0);
        assert_int_equal(locktable_flock(f->t, h.ino, &h, 11, 0, &f->self, false, 1, &got), 0);
        assert_int_equal(got.fence, h.fence);
        /* another process: NB refused, blocking parks in FIFO order */
        assert_int_equal(locktable_open(f->t, a.ino, &f->other, O_WRONLY, &hc), 0);
        assert_int_equal(hc.kind, LT_HANDLE_CONTENDER);
        assert_int_equal(locktable_flock(f->t, hc.ino, &hc, 22, 0, &f->other, true, 2, &got), -EWOULDBLOCK);
        assert_int_equal(locktable_flock(f->t, hc.ino, &hc, 22, 0, &f->other, false, 3, &got), LT_PARKED);
        assert_int_equal(locktable_flock(f->t, hc.ino, &hc, 33, 0, &f->other, false, 4, &got), LT_PARKED);
        struct lock_metrics m;
        locktable_metrics(f->t, &m);
        assert_int_equal(m.waiters, 2);
        /* a cancelled waiter leaves the queue */
        assert_true(locktable_flock_cancel(f->t, 4));
        assert_false(locktable_flock_cancel(f->t, 4));
        /* LOCK_UN by a stranger owner does nothing; by the owner hands off */
        locktable_flock_unlock(f->t, a.ino, 99, NULL, NULL);
        assert_int_equal(g.n, 0);
        locktable_flock_unlock(f->t, a.ino, 11, NULL, NULL);
        assert_int_equal(g.n, 1);
        assert_int_equal(g.id[0], 3);
        assert_int_equal(g.err[0], 0);
        assert_int_equal(g.h[0].kind, LT_HANDLE_HOLDER);
        assert_true(g.h[0].fence > h.fence);
        assert_int_equal(locktable_view(f->t, a.ino, &v), 0); /* the name never vanished */
        assert_int_equal(v.pid, f->other_pid);
        assert_int_equal(v.how, LOCK_HOW_FLOCK);
        assert_int_equal(v.fence, g.h[0].fence);
        lock_view_clear(&v);
        /* the granted handle writes; the old holder's handle is a stranger's now */
        assert_int_equal(locktable_write(f->t, &g.h[0], &f->other, 0, "b", 1), 1);
        assert_int_equal(locktable_write(f->t, &h, &f->self, 0, "a", 1), -EEXIST);
        /* closing the flocking file releases: no waiter left, the name goes,
         * and the kernel is told (it saw no UNLINK) */
        struct removed_log log = { 0 };
        locktable_flock_unlock(f->t, a.ino, 22, note_removed, &log);
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "fl", &a), -ENOENT);
        assert_int_equal(log.n, 1);
        assert_string_equal(log.name, "fl");
        locktable_metrics(f->t, &m);
        assert_int_equal(m.waiters, 0);
        assert_int_equal(m.released_unlock, 2);
}

static void test_flock_after_release_takes_the_name(void **state) {
        struct fixture *f = *state;
        struct grants_log g = { 0 };
        locktable_set_grant_fn(f->t, note_grant, &g);
        struct lt_attr a, b;
        struct lt_handle h, hc, got;
        struct lock_view forced;
        assert_int_equal(create(f, "late", &f->other, O_WRONLY, &a, &h), 0);
        assert_int_equal(locktable_open(f->t, a.ino, &f->self, O_RDONLY, &hc), 0);
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "late", &b), 0); /* kernel ref */
        assert_int_equal(locktable_break(f->t, a.ino, h.fence, &f->self, &forced, NULL, NULL), 0);
        lock_view_clear(&forced);
        /* the descriptor's lock is gone, its name free: the flock takes it */
        assert_int_equal(locktable_flock(f->t, hc.ino, &hc, 5, 0, &f->self, false, 7, &got), 0);
        assert_int_equal(got.kind, LT_HANDLE_HOLDER);
        assert_true(got.ino != a.ino);
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "late", &b), 0);
        assert_int_equal(b.ino, got.ino);
        locktable_flock_unlock(f->t, got.ino, 5, NULL, NULL);
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "late", &b), -ENOENT);
        locktable_forget(f->t, b.ino, 1);
        /* the same descriptor locks and unlocks again and again */
        for (int i = 0; i < 3; i++) {
                assert_int_equal(locktable_flock(f->t, hc.ino, &got, 5, 0, &f->self, false, 8, &got), 0);
                locktable_flock_unlock(f->t, got.ino, 5, NULL, NULL);
        }
}

static void test_flock_on_a_directory_is_refused(void **state) {
        struct fixture *f = *state;
        struct lt_attr d;
        struct lt_handle got;
        assert_int_equal(locktable_mkdir(f->t, LT_INO_ROOT, "dir", &f->self, &d), 0);
        struct lt_handle hd = { .kind = LT_HANDLE_READER, .ino = d.ino };
        assert_int_equal(locktable_flock(f->t, hd.ino, &hd, 1, 0, &f->self, false, 1, &got), -EOPNOTSUPP);
}

static void test_link_gives_a_lock_a_second_name(void **state) {
        struct fixture *f = *state;
        struct lt_attr a, b, c2;
        struct lt_handle h;
        struct lock_view v, forced;
        assert_int_equal(create(f, ".tmp1", &f->self, O_WRONLY | O_EXCL, &a, &h), 0);
        assert_int_equal(locktable_link(f->t, a.ino, LT_INO_ROOT, "mail.lock", &f->other, &b), -EPERM);
        assert_int_equal(locktable_link(f->t, a.ino, LT_INO_ROOT, "mail.lock", &f->self, &b), 0);
        assert_int_equal(b.ino, a.ino);
        assert_int_equal(b.nlink, 2);
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, ".tmp1", &c2), 0);
        assert_int_equal(c2.ino, a.ino);
        assert_int_equal(locktable_view(f->t, a.ino, &v), 0);
        assert_string_equal(v.path, "/mail.lock"); /* the new name is the lock's own */
        lock_view_clear(&v);
        /* onto any existing name: EEXIST */
        assert_int_equal(locktable_link(f->t, a.ino, LT_INO_ROOT, ".tmp1", &f->self, &c2), -EEXIST);
        /* a non-holder cannot remove either name, root included (SPEC R3.4:
         * EBUSY); the holder removes the temp */
        struct caller stranger = f->other;
        assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, ".tmp1", &stranger, &forced), -EBUSY);
        assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, "mail.lock", &stranger, &forced),
                         -EBUSY);
        struct caller root_stranger = f->other;
        root_stranger.uid = 0;
        assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, ".tmp1", &root_stranger, &forced),
                         -EBUSY);
        assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, ".tmp1", &f->self, &forced), 0);
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, ".tmp1", &c2), -ENOENT);
        assert_int_equal(locktable_getattr(f->t, a.ino, &c2), 0);
        assert_int_equal(c2.nlink, 1);
        struct lock_metrics m;
        locktable_metrics(f->t, &m);
        assert_int_equal(m.held, 1);
        /* removing the lock's own name while a second exists moves it there */
        assert_int_equal(locktable_link(f->t, a.ino, LT_INO_ROOT, "other", &f->self, &c2), 0);
        assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, "other", &f->self, &forced), 0);
        assert_int_equal(locktable_view(f->t, a.ino, &v), 0);
        assert_string_equal(v.path, "/mail.lock");
        lock_view_clear(&v);
        struct lt_dirent *e;
        size_t n;
        assert_int_equal(locktable_readdir(f->t, LT_INO_ROOT, &e, &n), 0);
        assert_int_equal(n, 4); /* . .. .lockfs mail.lock */
        lt_dirents_free(e, n);
}

static void test_release_removes_every_name(void **state) {
        struct fixture *f = *state;
        int fd = -1;
        pid_t pid = spawn_child(&fd);
        struct caller c;
        assert_int_equal(holder_identify(pid, 0, 0, &c), 0);
        struct lt_attr a, b;
        struct lt_handle h;
        assert_int_equal(create(f, ".tmp2", &c, O_WRONLY, &a, &h), 0);
        assert_int_equal(locktable_link(f->t, a.ino, LT_INO_ROOT, "d.lock", &c, &b), 0);
        end_child(pid, fd);
        struct removed_log log = { 0 };
        int released = 0;
        while (released < 1) {
                int r = reap_wait(f->t, EVENT_TIMEOUT_MS, note_removed, &log);
                assert_true(r >= 0);
                released += r;
        }
        assert_int_equal(log.n, 2); /* both names reported to the kernel */
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, ".tmp2", &b), -ENOENT);
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "d.lock", &b), -ENOENT);
}

/* locktable_break: the acquisition named by its fence, and no other. */
static void test_break_by_fence(void **state) {
        struct fixture *f = *state;
        struct lt_attr a;
        struct lt_handle h;
        struct lock_view forced, v;
        struct removed_log log = { 0 };
        struct caller stranger;
        assert_int_equal(holder_identify(getpid(), 1001, 1001, &stranger), 0);
        assert_int_equal(create(f, "b.lock", &f->other, O_WRONLY, &a, &h), 0);
        /* a fence that is not the lock's: nothing happens */
        assert_int_equal(locktable_break(f->t, a.ino, h.fence + 1, &f->self, &forced,
                                         note_removed, &log), -ESTALE);
        assert_null(forced.path);
        assert_int_equal(locktable_break(f->t, a.ino, h.fence - 1, &f->self, &forced,
                                         note_removed, &log), -ESTALE);
        /* another uid, not root: refused, even with the right fence */
        assert_int_equal(locktable_break(f->t, a.ino, h.fence, &stranger, &forced,
                                         note_removed, &log), -EPERM);
        assert_int_equal(log.n, 0);
        assert_int_equal(locktable_view(f->t, a.ino, &v), 0);
        assert_int_equal(v.pid, f->other_pid);
        assert_int_equal(v.fence, h.fence);
        lock_view_clear(&v);
        /* root with the right fence: a force-unlock of that acquisition */
        assert_int_equal(locktable_break(f->t, a.ino, h.fence, &f->self, &forced,
                                         note_removed, &log), 0);
        assert_non_null(forced.path);
        assert_string_equal(forced.path, "/b.lock");
        assert_int_equal(forced.fence, h.fence);
        assert_int_equal(forced.pid, f->other_pid);
        lock_view_clear(&forced);
        assert_int_equal(log.n, 1); /* the kernel saw no UNLINK: it is told */
        assert_string_equal(log.name, "b.lock");
        assert_int_equal(log.ino, a.ino);
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "b.lock", &a), -ENOENT);
        struct lock_metrics m;
        locktable_metrics(f->t, &m);
        assert_int_equal(m.released_root, 1);
        assert_int_equal(m.held, 0);
        /* again: that acquisition is over */
        assert_int_equal(locktable_break(f->t, h.ino, h.fence, &f->self, &forced,
                                         note_removed, &log), -ESTALE);
        /* the name taken anew is another inode and another fence */
        struct lt_handle h2;
        struct lt_attr a2;
        assert_int_equal(create(f, "b.lock", &f->other, O_WRONLY, &a2, &h2), 0);
        assert_int_equal(locktable_break(f->t, h.ino, h2.fence, &f->self, &forced,
                                         note_removed, &log), -ESTALE);
        assert_int_equal(locktable_break(f->t, a2.ino, h.fence, &f->self, &forced,
                                         note_removed, &log), -ESTALE);
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "b.lock", &a), 0);
        assert_int_equal(log.n, 1);
}

/* The holder breaking its own lock releases it (no force-unlock), with
 * every name; a directory, unknown inodes and .lockfs are refused. */
static void test_break_by_holder_and_refusals(void **state) {
        struct fixture *f = *state;
        struct lt_attr a, b, d;
        struct lt_handle h;
        struct lock_view forced;
        struct removed_log log = { 0 };
        assert_int_equal(create(f, ".tmp", &f->self, O_WRONLY, &a, &h), 0);
        assert_int_equal(locktable_link(f->t, a.ino, LT_INO_ROOT, "own.lock", &f->self, &b), 0);
        assert_int_equal(locktable_break(f->t, a.ino, h.fence, &f->self, &forced, note_removed,
                                         &log), 0);
        assert_null(forced.path);
        assert_int_equal(log.n, 2); /* both names */
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "own.lock", &b), -ENOENT);
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, ".tmp", &b), -ENOENT);
        struct lock_metrics m;
        locktable_metrics(f->t, &m);
        assert_int_equal(m.released_unlink, 1);
        assert_int_equal(m.released_root, 0);
        assert_int_equal(locktable_mkdir(f->t, LT_INO_ROOT, "dir", &f->self, &d), 0);
        assert_int_equal(locktable_break(f->t, d.ino, 0, &f->self, &forced, NULL, NULL), -EISDIR);
        assert_int_equal(locktable_break(f->t, 999999, 1, &f->self, &forced, NULL, NULL), -ESTALE);
        assert_int_equal(locktable_break(f->t, LT_INO_META_LOCKS, 1, &f->self, &forced, NULL,
                                         NULL), -ESTALE);
}

/* With -o user_break the lock's uid breaks it from an unrelated process. */
static void test_user_break_by_fence(void **state) {
        struct fixture *f = *state;
        struct lt_attr a;
        struct lt_handle h;
        struct lock_view forced;
        struct caller same_uid, other_uid;
        assert_int_equal(holder_identify(getpid(), 1000, 1000, &same_uid), 0);
        assert_int_equal(holder_identify(getpid(), 1001, 1001, &other_uid), 0);
        assert_int_equal(create(f, "u.lock", &f->other, O_WRONLY, &a, &h), 0);
        assert_int_equal(locktable_break(f->t, a.ino, h.fence, &other_uid, &forced, NULL, NULL),
                         -EPERM);
        assert_int_equal(locktable_break(f->t, a.ino, h.fence + 1, &same_uid, &forced, NULL,
                                         NULL), -ESTALE);
        assert_int_equal(locktable_break(f->t, a.ino, h.fence, &same_uid, &forced, NULL, NULL), 0);
        assert_non_null(forced.path);
        lock_view_clear(&forced);
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "u.lock", &a), -ENOENT);
}

/* A lock handed to a flock waiter keeps its inode but not its fence: a
 * break of the old acquisition leaves the new holder alone. */
static void test_break_after_handoff(void **state) {
        struct fixture *f = *state;
        struct grants_log g = { 0 };
        locktable_set_grant_fn(f->t, note_grant, &g);
        struct lt_attr a;
        struct lt_handle h, hc, got;
        struct lock_view forced, v;
        assert_int_equal(create(f, "fl", &f->self, O_WRONLY, &a, &h), 0);
        assert_int_equal(locktable_flock(f->t, h.ino, &h, 11, 0, &f->self, false, 1, &got), 0);
        assert_int_equal(locktable_open(f->t, a.ino, &f->other, O_WRONLY, &hc), 0);
        assert_int_equal(locktable_flock(f->t, hc.ino, &hc, 22, 0, &f->other, false, 2, &got),
                         LT_PARKED);
        locktable_flock_unlock(f->t, a.ino, 11, NULL, NULL);
        assert_int_equal(g.n, 1);
        uint64_t fence2 = g.h[0].fence;
        assert_true(fence2 > h.fence);
        assert_int_equal(locktable_break(f->t, a.ino, h.fence, &f->self, &forced, NULL, NULL),
                         -ESTALE);
        assert_int_equal(locktable_view(f->t, a.ino, &v), 0);
        assert_int_equal(v.pid, f->other_pid);
        assert_int_equal(v.fence, fence2);
        lock_view_clear(&v);
        assert_int_equal(locktable_break(f->t, a.ino, fence2, &f->self, &forced, NULL, NULL), 0);
        assert_int_equal(forced.fence, fence2);
        assert_int_equal(forced.pid, f->other_pid);
        lock_view_clear(&forced);
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "fl", &a), -ENOENT);
}

/* SPEC R4.4a: a lock whose own name matches the raw globs says so in its
 * attributes (size: its content's length) and its view; others keep size
 * 0; a rename moves a lock in or out. */
static struct globs *raw_globs;

static int setup_raw(void **state) {
        assert_int_equal(globs_parse("*.pid:run-?", &raw_globs), 0);
        struct locktable_config cfg = { .max_locks = 100, .max_content = 64, .max_depth = 4,
                                        .raw = raw_globs };
        return setup_cfg(state, &cfg);
}

static int teardown_raw(void **state) {
        teardown(state);
        globs_free(raw_globs);
        raw_globs = NULL;
        return 0;
}

/* Attributes (getattr and lookup) and view of name: raw or not, size. */
static void check_raw(struct fixture *f, const char *name, bool raw, uint64_t size) {
        struct lt_attr a, l;
        int64_t ino = ino_of(f->t, LT_INO_ROOT, name);
        assert_true(ino > 0);
        assert_int_equal(locktable_getattr(f->t, (uint64_t)ino, &a), 0);
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, name, &l), 0);
        locktable_forget(f->t, (uint64_t)ino, 1);
        struct lock_view v;
        assert_int_equal(locktable_view(f->t, (uint64_t)ino, &v), 0);
        if (a.raw != raw || l.raw != raw || v.raw != raw || a.size != size || l.size != size)
                fail_msg("%s: raw %d/%d/%d size %llu/%llu, want raw %d size %llu", name, a.raw,
                         l.raw, v.raw, (unsigned long long)a.size, (unsigned long long)l.size,
                         raw, (unsigned long long)size);
        lock_view_clear(&v);
}

static void test_raw_names(void **state) {
        struct fixture *f = *state;
        static const struct { const char *name; bool raw; } cases[] = {
                { "x.pid", true }, { "run-1", true }, { "x.lock", false }, { "run-12", false },
                { "x.pid.lock", false },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
                struct lt_handle h;
                assert_int_equal(take(f->t, cases[i].name, &f->self, &h), 0);
                check_raw(f, cases[i].name, cases[i].raw, 0);
                assert_int_equal(locktable_write(f->t, &h, &f->self, 0, "1234\n", 5), 5);
                check_raw(f, cases[i].name, cases[i].raw, cases[i].raw ? 5 : 0);
        }
        assert_int_equal(locktable_rename(f->t, LT_INO_ROOT, "x.lock", LT_INO_ROOT, "y.pid", 0,
                                          &f->self), 0);
        check_raw(f, "y.pid", true, 5);
        assert_int_equal(locktable_rename(f->t, LT_INO_ROOT, "x.pid", LT_INO_ROOT, "x.txt", 0,
                                          &f->self), 0);
        check_raw(f, "x.txt", false, 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

static int setup_names(void **state) {
        struct locktable_config cfg = { .max_locks = 100, .max_content = 64, .max_depth = 4,
                                        .max_names = 3 };
        return setup_cfg(state, &cfg);
}

/* -o max_names: a lock has at most that many names; link past it fails
 * with EMLINK (before anything changes), and removing a name makes room. */
static void test_names_cap(void **state) {
        struct fixture *f = *state;
        struct lt_attr a, b;
        struct lt_handle h;
        struct lock_view forced;
        assert_int_equal(create(f, "n0", &f->self, O_WRONLY | O_EXCL, &a, &h), 0);
        assert_int_equal(locktable_link(f->t, a.ino, LT_INO_ROOT, "n1", &f->self, &b), 0);
        assert_int_equal(locktable_link(f->t, a.ino, LT_INO_ROOT, "n2", &f->self, &b), 0);
        assert_int_equal(b.nlink, 3);
        assert_int_equal(locktable_link(f->t, a.ino, LT_INO_ROOT, "n3", &f->self, &b), -EMLINK);
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "n3", &b), -ENOENT);
        assert_int_equal(locktable_getattr(f->t, a.ino, &b), 0);
        assert_int_equal(b.nlink, 3);
        assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, "n1", &f->self, &forced), 0);
        assert_int_equal(locktable_link(f->t, a.ino, LT_INO_ROOT, "n3", &f->self, &b), 0);
        assert_int_equal(locktable_link(f->t, a.ino, LT_INO_ROOT, "n4", &f->self, &b), -EMLINK);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                T(test_create_takes_a_free_name_once),
                T(test_contender_cannot_write_or_truncate),
                T(test_holder_write_truncate_and_size_limit),
                T(test_fences_strictly_increase),
                T(test_unlink_rules),
                T(test_unlink_detached),
                cmocka_unit_test_setup_teardown(test_ttl_choice, setup_ttl, teardown),
                cmocka_unit_test_setup_teardown(test_ttl_choice_holder_ttl, setup_holder_ttl,
                                                teardown),
                T(test_holder_death_releases_all_its_locks),
                T(test_partial_caller_unlink),
                T(test_idle_holders_are_capped_and_reaped),
                T(test_create_without_cmdline),
                T(test_ttl_expiry_and_renewal),
                T(test_renewal_postpones_expiry),
                T(test_claims),
                cmocka_unit_test_setup_teardown(test_raw_names, setup_raw, teardown_raw),
                T(test_unknown_pid_is_detached),
                T(test_reused_pid_is_not_the_holder),
                T(test_released_inode_lives_until_forgotten),
                T(test_directories_and_names),
                T(test_directory_owner_rules),
                T(test_max_locks),
                cmocka_unit_test_setup_teardown(test_per_uid_cap, setup_quota, teardown),
                cmocka_unit_test_setup_teardown(test_names_cap, setup_names, teardown),
                cmocka_unit_test_setup_teardown(test_user_break, setup_quota, teardown),
                T(test_no_user_break_by_default),
                T(test_rename_rules),
                T(test_meta_directory_is_read_only),
                T(test_link_gives_a_lock_a_second_name),
                T(test_release_removes_every_name),
                T(test_flock_grant_wait_and_handoff),
                T(test_flock_after_release_takes_the_name),
                T(test_flock_on_a_directory_is_refused),
                T(test_break_by_fence),
                T(test_break_by_holder_and_refusals),
                cmocka_unit_test_setup_teardown(test_user_break_by_fence, setup_quota, teardown),
                T(test_break_after_handoff),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
