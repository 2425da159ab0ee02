/* SPDX-License-Identifier: MIT */
/* Unit tests for the per-uid quotas (src/lt_quota.c): every lock, name
 * (link), directory and content byte is charged to its uid and given back
 * when it goes; claims never move a charge; a restart charges everything
 * again. Usage is read with locktable_quota_usage(). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
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
#include "store_local.h"
#include "store_mem.h"
#include "fixture.h"

#define UID_A 1000
#define UID_B 1001

struct fixture {
        char dir[64], state[96], fence[96];
        struct locktable_config cfg;
        struct store *store;
        struct locktable *t;
        struct caller root;     /* this test process, as root */
        struct caller a, b;     /* children of ours, as uids A and B */
        pid_t pid_a, pid_b;
        int fd_a, fd_b;         /* closing one ends that child */
};

static void open_table(struct fixture *f, bool persistent) {
        if (persistent)
                assert_int_equal(store_local_open(f->state, f->fence, &f->store), 0);
        else
                assert_int_equal(store_mem_new(&f->store), 0);
        assert_int_equal(locktable_new(&f->cfg, f->store, &f->t), 0);
        struct locktable_restored restored;
        assert_int_equal(locktable_restore(f->t, &restored), 0);
}

/* The daemon dies: nothing is released; then it starts again. */
static void restart(struct fixture *f) {
        locktable_free(f->t);
        store_free(f->store);
        open_table(f, true);
}

static int setup_with(void **state, uint64_t per_uid, uint64_t content_per_uid,
                      bool persistent) {
        struct fixture *f = calloc(1, sizeof(*f));
        f->cfg = (struct locktable_config){ .max_locks = 200, .max_content = 64, .max_depth = 8,
                                            .max_locks_per_uid = per_uid,
                                            .max_content_per_uid = content_per_uid };
        strcpy(f->dir, "/tmp/lockfs-quota-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->state, sizeof(f->state), "%s/state", f->dir);
        snprintf(f->fence, sizeof(f->fence), "%s/fence", f->dir);
        assert_int_equal(holder_identify(getpid(), 0, 0, &f->root), 0);
        f->pid_a = spawn_child(&f->fd_a);
        f->pid_b = spawn_child(&f->fd_b);
        assert_int_equal(holder_identify(f->pid_a, UID_A, UID_A, &f->a), 0);
        assert_int_equal(holder_identify(f->pid_b, UID_B, UID_B, &f->b), 0);
        open_table(f, persistent);
        *state = f;
        return 0;
}

static int setup(void **state) {
        return setup_with(state, 3, 0, false);
}

static int setup_content(void **state) {
        return setup_with(state, 0, 100, false);
}

static int setup_persistent(void **state) {
        return setup_with(state, 3, 100, true);
}

static int teardown(void **state) {
        struct fixture *f = *state;
        locktable_free(f->t);
        store_free(f->store);
        close(f->fd_a);
        close(f->fd_b);
        waitpid(f->pid_a, NULL, 0);
        waitpid(f->pid_b, NULL, 0);
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
        assert_int_equal(system(cmd), 0);
        free(f);
        return 0;
}

static int mkdir_as(struct fixture *f, const char *name, const struct caller *c) {
        struct lt_attr a;
        return locktable_mkdir(f->t, LT_INO_ROOT, name, c, &a);
}

static int link_as(struct fixture *f, const struct lt_handle *h, const char *name,
                   const struct caller *c) {
        struct lt_attr a;
        return locktable_link(f->t, h->ino, LT_INO_ROOT, name, c, &a);
}

static int unlink_as(struct fixture *f, const char *name, const struct caller *c) {
        struct lock_view forced;
        int r = locktable_unlink(f->t, LT_INO_ROOT, name, c, &forced);
        lock_view_clear(&forced);
        return r;
}

static uint64_t things(struct fixture *f, uid_t uid) {
        struct lt_usage u;
        locktable_quota_usage(f->t, uid, &u);
        return u.things;
}

static uint64_t bytes(struct fixture *f, uid_t uid) {
        struct lt_usage u;
        locktable_quota_usage(f->t, uid, &u);
        return u.content_bytes;
}

/* A lock, a second name and a directory each count one; past the cap each
 * kind of request gets EDQUOT; each removal gives its one back. */
static void test_locks_names_and_directories_count(void **state) {
        struct fixture *f = *state;
        struct lt_handle h;
        assert_int_equal(take(f->t, "l1", &f->a, &h), 0);
        assert_int_equal(things(f, UID_A), 1);
        assert_int_equal(link_as(f, &h, "l1.name", &f->a), 0);
        assert_int_equal(things(f, UID_A), 2);
        assert_int_equal(mkdir_as(f, "d1", &f->a), 0);
        assert_int_equal(things(f, UID_A), 3);
        /* full: no lock, name or directory more, and nothing was made */
        assert_int_equal(take(f->t, "l2", &f->a, NULL), -EDQUOT);
        assert_int_equal(link_as(f, &h, "l1.more", &f->a), -EDQUOT);
        assert_int_equal(mkdir_as(f, "d2", &f->a), -EDQUOT);
        struct lt_attr attr;
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "l2", &attr), -ENOENT);
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "l1.more", &attr), -ENOENT);
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "d2", &attr), -ENOENT);
        assert_int_equal(things(f, UID_A), 3);
        /* other uids are not affected, root is never refused */
        assert_int_equal(mkdir_as(f, "bd", &f->b), 0);
        assert_int_equal(take(f->t, "bl", &f->b, NULL), 0);
        for (int i = 0; i < 5; i++) {
                char name[8];
                snprintf(name, sizeof(name), "r%d", i);
                assert_int_equal(mkdir_as(f, name, &f->root), 0);
        }
        assert_int_equal(things(f, UID_B), 2);
        assert_int_equal(things(f, 0), 5);
        /* rmdir gives one back */
        assert_int_equal(locktable_rmdir(f->t, LT_INO_ROOT, "d1", &f->a), 0);
        assert_int_equal(things(f, UID_A), 2);
        assert_int_equal(mkdir_as(f, "d2", &f->a), 0);
        assert_int_equal(things(f, UID_A), 3);
        /* removing one of two names gives one back: the old name */
        assert_int_equal(unlink_as(f, "l1.name", &f->a), 0);
        assert_int_equal(things(f, UID_A), 2);
        assert_int_equal(link_as(f, &h, "l1.again", &f->a), 0);
        assert_int_equal(things(f, UID_A), 3);
        /* ... or the lock's own name (the other name becomes the lock's) */
        assert_int_equal(unlink_as(f, "l1", &f->a), 0);
        assert_int_equal(things(f, UID_A), 2);
        assert_int_equal(link_as(f, &h, "l1", &f->a), 0);
        /* the release of a lock gives back the lock and all its names */
        assert_int_equal(unlink_as(f, "l1", &f->a), 0);
        assert_int_equal(things(f, UID_A), 2);
        assert_int_equal(unlink_as(f, "l1.again", &f->a), 0);
        assert_int_equal(things(f, UID_A), 1); /* d2 */
        assert_int_equal(locktable_rmdir(f->t, LT_INO_ROOT, "d2", &f->a), 0);
        assert_int_equal(things(f, UID_A), 0);
}

/* The holder's death releases the lock and its names: all given back;
 * directories stay charged to their creator until removed. */
static void test_holder_death_gives_back_locks_and_names(void **state) {
        struct fixture *f = *state;
        struct lt_handle h;
        assert_int_equal(mkdir_as(f, "d", &f->a), 0);
        assert_int_equal(take(f->t, "l", &f->a, &h), 0);
        assert_int_equal(link_as(f, &h, "l.2", &f->a), 0);
        assert_int_equal(things(f, UID_A), 3);
        close(f->fd_a);
        waitpid(f->pid_a, NULL, 0);
        f->fd_a = open("/dev/null", O_RDONLY); /* for the teardown */
        int fd = locktable_reaper_fd(f->t);
        while (things(f, UID_A) > 1) {
                struct pollfd p = { .fd = fd, .events = POLLIN };
                assert_true(poll(&p, 1, EVENT_TIMEOUT_MS) == 1);
                locktable_reap(f->t, NULL, NULL);
        }
        assert_int_equal(things(f, UID_A), 1); /* the directory */
}

/* The review's case: with 3 per uid and room for 200, A's directories and
 * names stop at 3, and B still creates. */
static void test_one_uid_cannot_fill_the_table(void **state) {
        struct fixture *f = *state;
        struct lt_handle h;
        int made = 0;
        if (take(f->t, "a.lock", &f->a, &h) == 0)
                made++;
        for (int i = 0; i < 150; i++) {
                char name[16];
                snprintf(name, sizeof(name), "d%d", i);
                int r = mkdir_as(f, name, &f->a);
                assert_true(r == 0 || r == -EDQUOT);
                made += r == 0;
        }
        for (int i = 0; i < 47; i++) {
                char name[16];
                snprintf(name, sizeof(name), "n%d", i);
                int r = link_as(f, &h, name, &f->a);
                assert_true(r == 0 || r == -EDQUOT);
                made += r == 0;
        }
        assert_int_equal(made, 3);
        assert_int_equal(take(f->t, "victim.lock", &f->b, NULL), 0);
        assert_int_equal(mkdir_as(f, "victim.d", &f->b), 0);
}

/* A flock hand-off moves the lock and its names to the new holder's uid,
 * and is refused when they do not fit. */
static void note_grant(void *ctx, uint64_t id, int err, const struct lt_handle *h) {
        (void)id;
        (void)h;
        *(int *)ctx = err;
}

static void test_handoff_moves_names_with_the_lock(void **state) {
        struct fixture *f = *state;
        int grant = 1;
        locktable_set_grant_fn(f->t, note_grant, &grant);
        struct lt_handle h, hb, granted;
        assert_int_equal(take(f->t, "f.lock", &f->a, &h), 0);
        assert_int_equal(link_as(f, &h, "f.2", &f->a), 0);
        assert_int_equal(locktable_flock(f->t, h.ino, &h, 1, 0, &f->a, true, 1, &granted), 0);
        assert_int_equal(locktable_open(f->t, h.ino, &f->b, O_WRONLY, &hb), 0);
        assert_int_equal(locktable_flock(f->t, h.ino, &hb, 2, 0, &f->b, false, 2, &granted),
                         LT_PARKED);
        locktable_flock_unlock(f->t, h.ino, 1, NULL, NULL);
        assert_int_equal(grant, 0);
        struct lock_view v;
        assert_int_equal(locktable_view(f->t, h.ino, &v), 0);
        assert_int_equal(v.uid, UID_B);
        lock_view_clear(&v);
        assert_int_equal(things(f, UID_A), 0);
        assert_int_equal(things(f, UID_B), 2);
        /* back to A, who cannot fit a lock with two names any more */
        assert_int_equal(mkdir_as(f, "a1", &f->a), 0);
        assert_int_equal(mkdir_as(f, "a2", &f->a), 0);
        assert_int_equal(locktable_flock(f->t, h.ino, &hb, 2, 0, &f->b, false, 3, &granted), 0);
        assert_int_equal(locktable_flock(f->t, h.ino, &h, 3, 0, &f->a, false, 4, &granted),
                         LT_PARKED);
        grant = 1;
        locktable_flock_unlock(f->t, h.ino, 2, NULL, NULL);
        assert_int_equal(grant, -EDQUOT);
        assert_int_equal(things(f, UID_A), 2);
}

/* Content bytes count per uid: a write past the cap gets EDQUOT and the
 * old content stays; truncation, O_TRUNC, a new acquisition and release
 * give bytes back; root is not capped. */
static void test_content_bytes_count(void **state) {
        struct fixture *f = *state;
        char buf[64];
        memset(buf, 'x', sizeof(buf));
        struct lt_handle h1, h2;
        struct lt_attr a;
        assert_int_equal(take(f->t, "c1", &f->a, &h1), 0);
        assert_int_equal(take(f->t, "c2", &f->a, &h2), 0);
        assert_int_equal(locktable_write(f->t, &h1, &f->a, 0, buf, 64), 64);
        assert_int_equal(bytes(f, UID_A), 64);
        assert_int_equal(locktable_write(f->t, &h2, &f->a, 0, "old", 3), 3);
        assert_int_equal(bytes(f, UID_A), 67);
        /* 64 + 64 > 100: refused, c2 keeps "old" */
        assert_int_equal(locktable_write(f->t, &h2, &f->a, 0, buf, 64), -EDQUOT);
        assert_int_equal(locktable_setattr(f->t, h2.ino, &h2, &f->a, LT_SET_SIZE, 64, &a),
                         -EDQUOT);
        struct lock_view v;
        assert_int_equal(locktable_view(f->t, h2.ino, &v), 0);
        assert_int_equal(v.content_len, 3);
        assert_memory_equal(v.content, "old", 3);
        lock_view_clear(&v);
        assert_int_equal(bytes(f, UID_A), 67);
        /* up to the cap exactly */
        assert_int_equal(locktable_write(f->t, &h2, &f->a, 3, buf, 33), 33);
        assert_int_equal(bytes(f, UID_A), 100);
        /* other uids and root are not affected */
        struct lt_handle hb, hr;
        assert_int_equal(take(f->t, "b", &f->b, &hb), 0);
        assert_int_equal(locktable_write(f->t, &hb, &f->b, 0, buf, 64), 64);
        assert_int_equal(take(f->t, "r1", &f->root, &hr), 0);
        assert_int_equal(locktable_write(f->t, &hr, &f->root, 0, buf, 64), 64);
        assert_int_equal(take(f->t, "r2", &f->root, &hr), 0);
        assert_int_equal(locktable_write(f->t, &hr, &f->root, 0, buf, 64), 64);
        /* an overwrite with less gives the difference back */
        assert_int_equal(locktable_setattr(f->t, h1.ino, &h1, &f->a, LT_SET_SIZE, 10, &a), 0);
        assert_int_equal(bytes(f, UID_A), 46);
        /* a shrink is allowed even over the cap (never stuck) */
        assert_int_equal(locktable_setattr(f->t, h2.ino, &h2, &f->a, LT_SET_SIZE, 1, &a), 0);
        assert_int_equal(bytes(f, UID_A), 11);
        /* O_TRUNC by the holder */
        struct lt_handle ht;
        assert_int_equal(locktable_open(f->t, h1.ino, &f->a, O_WRONLY | O_TRUNC, &ht), 0);
        assert_int_equal(bytes(f, UID_A), 1);
        /* the release */
        assert_int_equal(unlink_as(f, "c2", &f->a), 0);
        assert_int_equal(bytes(f, UID_A), 0);
        assert_int_equal(bytes(f, UID_B), 64);
        assert_int_equal(unlink_as(f, "b", &f->b), 0);
        assert_int_equal(bytes(f, UID_B), 0);
        assert_int_equal(bytes(f, 0), 128);
}

/* A child of ours that runs as uid, with its own child (the writer); both
 * live until the pipe closes. */
static pid_t spawn_family(uid_t uid, pid_t *ret_child, int *ret_fd) {
        int p[2], report[2];
        assert_int_equal(pipe(p), 0);
        assert_int_equal(pipe(report), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                char c;
                close(p[1]);
                close(report[0]);
                if (setgid(uid) < 0 || setuid(uid) < 0)
                        _exit(1);
                pid_t w = fork();
                if (w == 0) {
                        while (read(p[0], &c, 1) > 0)
                                ;
                        _exit(0);
                }
                if (write(report[1], &w, sizeof(w)) != sizeof(w))
                        _exit(1);
                while (read(p[0], &c, 1) > 0)
                        ;
                waitpid(w, NULL, 0);
                _exit(0);
        }
        close(p[0]);
        close(report[1]);
        assert_int_equal(read(report[0], ret_child, sizeof(*ret_child)), sizeof(*ret_child));
        close(report[0]);
        *ret_fd = p[1];
        return pid;
}

/* A claim keeps the writer's uid: it never charges, nor shows, another
 * uid, and a uid at its cap stays there. */
static void test_claims_keep_the_writers_uid(void **state) {
        struct fixture *f = *state;
        pid_t writer_pid;
        int fd;
        pid_t parent = spawn_family(UID_A, &writer_pid, &fd);
        struct caller w;
        assert_int_equal(holder_identify(writer_pid, UID_A, UID_A, &w), 0);
        struct lt_handle h[3];
        char buf[32];
        int len = snprintf(buf, sizeof(buf), "%d\n", (int)parent);
        for (int i = 0; i < 3; i++) {
                char name[8];
                snprintf(name, sizeof(name), "c%d", i);
                assert_int_equal(take(f->t, name, &w, &h[i]), 0);
                assert_int_equal(locktable_write(f->t, &h[i], &w, 0, buf, (size_t)len), len);
                struct lock_view v;
                assert_int_equal(locktable_view(f->t, h[i].ino, &v), 0);
                assert_int_equal(v.pid, parent);      /* the claim was honoured */
                assert_int_equal(v.how, LOCK_HOW_CLAIM);
                assert_int_equal(v.uid, UID_A);
                lock_view_clear(&v);
        }
        assert_int_equal(things(f, UID_A), 3);
        assert_int_equal(take(f->t, "c3", &w, NULL), -EDQUOT);
        /* a claim of root's process (the test runner, as under su) is
         * ignored: still A's, still counted for A */
        len = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
        assert_int_equal(locktable_write(f->t, &h[0], &w, 0, buf, (size_t)len), len);
        struct lock_view v;
        assert_int_equal(locktable_view(f->t, h[0].ino, &v), 0);
        assert_int_equal(v.uid, UID_A);
        assert_int_equal(v.claim_ignored_pid, getpid());
        lock_view_clear(&v);
        assert_int_equal(things(f, 0), 0);
        assert_int_equal(things(f, UID_A), 3);
        /* the writer, a descendant of the claimed holder, releases */
        assert_int_equal(unlink_as(f, "c1", &w), 0);
        assert_int_equal(things(f, UID_A), 2);
        close(fd);
        waitpid(parent, NULL, 0);
}

/* A restart charges again what came back: directories to their creators,
 * locks with their names and content to their uid. */
static void test_restore_charges_everything_again(void **state) {
        struct fixture *f = *state;
        struct lt_handle h;
        char buf[64];
        memset(buf, 'y', sizeof(buf));
        assert_int_equal(mkdir_as(f, "ad", &f->a), 0);
        struct lt_attr d;
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "ad", &d), 0);
        assert_int_equal(take_in(f->t, d.ino, "l", &f->a, &h), 0);
        assert_int_equal(locktable_write(f->t, &h, &f->a, 0, buf, 60), 60);
        assert_int_equal(link_as(f, &h, "l.2", &f->a), 0);
        assert_int_equal(take(f->t, "bl", &f->b, &h), 0);
        assert_int_equal(locktable_write(f->t, &h, &f->b, 0, buf, 60), 60);
        assert_int_equal(things(f, UID_A), 3);
        assert_int_equal(bytes(f, UID_A), 60);
        restart(f);
        assert_int_equal(things(f, UID_A), 3);
        assert_int_equal(bytes(f, UID_A), 60);
        assert_int_equal(things(f, UID_B), 1);
        assert_int_equal(bytes(f, UID_B), 60);
        assert_int_equal(things(f, 0), 0);
        /* A is still at its limit */
        assert_int_equal(mkdir_as(f, "ad2", &f->a), -EDQUOT);
        assert_int_equal(take(f->t, "l3", &f->a, NULL), -EDQUOT);
        /* and B's content cap still counts what came back */
        assert_int_equal(take(f->t, "b2", &f->b, &h), 0);
        assert_int_equal(locktable_write(f->t, &h, &f->b, 0, buf, 41), -EDQUOT);
        assert_int_equal(locktable_write(f->t, &h, &f->b, 0, buf, 40), 40);
        assert_int_equal(bytes(f, UID_B), 100);
        /* a second restart counts the same (nothing counted twice) */
        restart(f);
        assert_int_equal(things(f, UID_A), 3);
        assert_int_equal(bytes(f, UID_A), 60);
        assert_int_equal(things(f, UID_B), 2);
        assert_int_equal(bytes(f, UID_B), 100);
        assert_int_equal(unlink_as(f, "l.2", &f->a), 0);
        assert_int_equal(things(f, UID_A), 2);
}

#define T(fn, s) cmocka_unit_test_setup_teardown(fn, s, teardown)

int main(void) {
        const struct CMUnitTest tests[] = {
                T(test_locks_names_and_directories_count, setup),
                T(test_holder_death_gives_back_locks_and_names, setup),
                T(test_one_uid_cannot_fill_the_table, setup),
                T(test_handoff_moves_names_with_the_lock, setup),
                T(test_content_bytes_count, setup_content),
                T(test_claims_keep_the_writers_uid, setup),
                T(test_restore_charges_everything_again, setup_persistent),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
