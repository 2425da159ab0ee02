/* SPDX-License-Identifier: MIT */
/* Unit tests for directory locks (SPEC R7.5): a directory whose name
 * matches the dirlocks globs is a lock taken by mkdir, released by rmdir or
 * its holder's death; and the times set on any directory read back. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "globs.h"
#include "locktable.h"
#include "store.h"
#include "fixture.h"

struct fixture {
        struct test_store ts;    /* counts the store's calls */
        struct globs *dirlocks;
        struct locktable *t;
        struct caller self;      /* this test process, as root */
        struct caller other;     /* an unrelated process, uid 1000 */
        struct caller other_root; /* the same process, as root */
        int other_pipe;
};

static int setup_globs(void **state, const char *spec) {
        struct fixture *f = calloc(1, sizeof(*f));
        assert_non_null(f);
        test_store_init(&f->ts, &test_store_ops_with_dirs);
        assert_int_equal(globs_parse(spec, &f->dirlocks), 0);
        struct locktable_config cfg = { .max_locks = 100, .max_content = 64, .max_depth = 4,
                                        .dirlocks = f->dirlocks };
        assert_int_equal(locktable_new(&cfg, &f->ts.base, &f->t), 0);
        assert_int_equal(holder_identify(getpid(), 0, 0, &f->self), 0);
        pid_t other = spawn_stranger(&f->other_pipe);
        assert_true(other > 0);
        assert_int_equal(holder_identify(other, 1000, 1000, &f->other), 0);
        assert_int_equal(holder_identify(other, 0, 0, &f->other_root), 0);
        *state = f;
        return 0;
}

static int setup(void **state) {
        return setup_globs(state, "*.lock");
}

static int setup_off(void **state) {
        return setup_globs(state, "");
}

static int teardown(void **state) {
        struct fixture *f = *state;
        locktable_free(f->t);
        test_store_destroy(&f->ts);
        globs_free(f->dirlocks);
        close(f->other_pipe); /* not our child: it exits and is reaped by init */
        free(f);
        return 0;
}

static int mkdir_as(struct fixture *f, uint64_t parent, const char *name, const struct caller *c,
                    struct lt_attr *a) {
        return locktable_mkdir(f->t, parent, name, c, a);
}

/* The lock view of ino (asserts it is held). */
static struct lock_view view_of(struct fixture *f, uint64_t ino) {
        struct lock_view v;
        assert_int_equal(locktable_view(f->t, ino, &v), 0);
        return v;
}

static bool same_time(struct timespec a, struct timespec b) {
        return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

static bool listed_as_dir(struct fixture *f, uint64_t dir, const char *name) {
        struct lt_dirent *d;
        size_t n;
        bool found = false;
        assert_int_equal(locktable_readdir(f->t, dir, &d, &n), 0);
        for (size_t i = 0; i < n; i++)
                if (strcmp(d[i].name, name) == 0)
                        found = d[i].kind == LT_DIR;
        lt_dirents_free(d, n);
        return found;
}

/* mkdir of a matching name takes a lock: once, atomically (EEXIST for every
 * second mkdir and exclusive create), and it presents as an empty
 * directory of its holder's. */
static void test_mkdir_takes_a_lock_once(void **state) {
        struct fixture *f = *state;
        struct lt_attr a, a2;
        assert_int_equal(mkdir_as(f, LT_INO_ROOT, "kd.lock", &f->other, &a), 0);
        assert_int_equal(a.kind, LT_DIR);
        assert_int_equal(a.mode, S_IFDIR | 0755);
        assert_int_equal(a.nlink, 2);
        assert_int_equal(a.uid, 1000);
        struct lock_view v = view_of(f, a.ino);
        assert_string_equal(v.path, "/kd.lock");
        assert_int_equal(v.how, LOCK_HOW_MKDIR);
        assert_int_equal(v.pid, f->other.self.pid);
        assert_true(v.fence > 0);
        lock_view_clear(&v);
        struct lock_metrics m;
        locktable_metrics(f->t, &m);
        assert_int_equal(m.held, 1);
        assert_int_equal(m.acquired, 1);

        /* every second taker fails, the holder too */
        assert_int_equal(mkdir_as(f, LT_INO_ROOT, "kd.lock", &f->self, &a2), -EEXIST);
        assert_int_equal(mkdir_as(f, LT_INO_ROOT, "kd.lock", &f->other, &a2), -EEXIST);
        struct lt_handle h;
        assert_int_equal(take(f->t, "kd.lock", &f->self, &h), -EEXIST);
        assert_int_equal(locktable_create(f->t, LT_INO_ROOT, "kd.lock", &f->self,
                                          O_CREAT | O_WRONLY, &a2, &h),
                         -EISDIR);
        assert_int_equal(locktable_open(f->t, a.ino, &f->self, O_RDONLY, &h), -EISDIR);
        locktable_metrics(f->t, &m);
        assert_int_equal(m.held, 1);
        assert_int_equal(m.acquired, 1);

        /* a directory to every observer, holding nothing */
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "kd.lock", &a2), 0);
        assert_int_equal(a2.kind, LT_DIR);
        locktable_forget(f->t, a2.ino, 1);
        assert_true(listed_as_dir(f, LT_INO_ROOT, "kd.lock"));
        struct lt_dirent *d;
        size_t n;
        assert_int_equal(locktable_readdir(f->t, a.ino, &d, &n), 0);
        assert_int_equal(n, 2); /* . and .. */
        lt_dirents_free(d, n);
        assert_int_equal(locktable_lookup(f->t, a.ino, "x", &a2), -ENOENT);
        assert_int_equal(mkdir_as(f, a.ino, "x", &f->other, &a2), -EACCES);
        assert_int_equal(take_in(f->t, a.ino, "x", &f->other, &h), -EACCES);

        /* not a file, and it does not move */
        struct lock_view forced;
        assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, "kd.lock", &f->other, &forced),
                         -EISDIR);
        assert_int_equal(locktable_rename(f->t, LT_INO_ROOT, "kd.lock", LT_INO_ROOT, "kd2.lock",
                                          0, &f->other),
                         -EBUSY);
        assert_int_equal(locktable_link(f->t, a.ino, LT_INO_ROOT, "kd3", &f->other, &a2), -EPERM);
        /* nor does a plain directory become one by its name */
        assert_int_equal(mkdir_as(f, LT_INO_ROOT, "plain", &f->self, &a2), 0);
        assert_int_equal(a2.mode, S_IFDIR | 01777);
        assert_int_equal(locktable_rename(f->t, LT_INO_ROOT, "plain", LT_INO_ROOT, "plain.lock",
                                          0, &f->self),
                         -EPERM);
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "kd.lock", &a2), 0);
        locktable_forget(f->t, a2.ino, 1);
}

/* rmdir by its holder (or a descendant) releases it; the name is free. */
static void test_rmdir_by_holder_releases(void **state) {
        struct fixture *f = *state;
        struct lt_attr a, a2;
        assert_int_equal(mkdir_as(f, LT_INO_ROOT, "kd.lock", &f->self, &a), 0);
        struct lock_view v = view_of(f, a.ino);
        uint64_t fence = v.fence;
        lock_view_clear(&v);
        assert_int_equal(locktable_rmdir(f->t, LT_INO_ROOT, "kd.lock", &f->self), 0);
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "kd.lock", &a2), -ENOENT);
        assert_int_equal(locktable_view(f->t, a.ino, &v), -ENOENT);
        struct lock_metrics m;
        locktable_metrics(f->t, &m);
        assert_int_equal(m.held, 0);
        assert_int_equal(m.released_unlink, 1);
        assert_int_equal(f->ts.releases, 1);
        /* taken anew, with a greater fence */
        assert_int_equal(mkdir_as(f, LT_INO_ROOT, "kd.lock", &f->other, &a), 0);
        v = view_of(f, a.ino);
        assert_true(v.fence > fence);
        lock_view_clear(&v);
}

/* rmdir of a live one by anyone else, root included, is EBUSY: the lock
 * stays (a live lock is never stale, SPEC R3.4). */
static void test_rmdir_by_others_is_ebusy(void **state) {
        struct fixture *f = *state;
        struct lt_attr a, a2;
        assert_int_equal(mkdir_as(f, LT_INO_ROOT, "kd.lock", &f->self, &a), 0);
        assert_int_equal(locktable_rmdir(f->t, LT_INO_ROOT, "kd.lock", &f->other), -EBUSY);
        assert_int_equal(locktable_rmdir(f->t, LT_INO_ROOT, "kd.lock", &f->other_root), -EBUSY);
        /* a partial caller may be a descendant: asked for its ancestry */
        struct caller quick;
        assert_int_equal(holder_identify_quick(f->other.self.pid, 0, 0, &quick), 0);
        assert_int_equal(locktable_rmdir(f->t, LT_INO_ROOT, "kd.lock", &quick), LT_NEED_LINEAGE);
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "kd.lock", &a2), 0);
        locktable_forget(f->t, a2.ino, 1);
        struct lock_metrics m;
        locktable_metrics(f->t, &m);
        assert_int_equal(m.held, 1);
        /* also other times: only its holder may touch it */
        struct lt_times times = { .set_mtime = true, .explicit_time = true,
                                  .mtime = { .tv_sec = 1 } };
        assert_int_equal(locktable_setattr_times(f->t, a.ino, NULL, &f->other, LT_SET_TIMES, 0,
                                                 &times, &a2),
                         -EPERM);
}

static void note_removed(void *ctx, uint64_t parent, uint64_t ino, const char *name) {
        (void)parent;
        (void)ino;
        snprintf(ctx, 64, "%s", name);
}

/* The holder's death releases it and the kernel is told (the name is
 * reported), so the directory vanishes. */
static void test_holder_death_releases(void **state) {
        struct fixture *f = *state;
        int fd = -1;
        pid_t pid = spawn_child(&fd);
        assert_true(pid > 0);
        struct caller c;
        assert_int_equal(holder_identify(pid, 0, 0, &c), 0);
        struct lt_attr a;
        assert_int_equal(mkdir_as(f, LT_INO_ROOT, "kd.lock", &c, &a), 0);
        end_child(pid, fd);
        char removed[64] = "";
        assert_int_equal(await_reapable(f->t, EVENT_TIMEOUT_MS), 1);
        assert_int_equal(locktable_reap(f->t, note_removed, removed), 1);
        assert_string_equal(removed, "kd.lock");
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "kd.lock", &a), -ENOENT);
        struct lock_metrics m;
        locktable_metrics(f->t, &m);
        assert_int_equal(m.released_exit, 1);
        assert_int_equal(m.held, 0);
        assert_int_equal(mkdir_as(f, LT_INO_ROOT, "kd.lock", &f->self, &a), 0);
}

/* mkdir(1) takes it for the script that ran it, its parent: the lock
 * outlives the mkdir process and goes with the script. */
static void test_mkdir_tool_takes_it_for_its_parent(void **state) {
        struct fixture *f = *state;
        int fd = -1;
        pid_t pid = spawn_child(&fd); /* plays mkdir(1), run by this process */
        assert_true(pid > 0);
        struct caller c;
        assert_int_equal(holder_identify_quick(pid, 0, 0, &c), 0);
        snprintf(c.comm, sizeof(c.comm), "mkdir");
        struct lt_attr a;
        assert_int_equal(mkdir_as(f, LT_INO_ROOT, "kd.lock", &c, &a), LT_NEED_LINEAGE);
        assert_int_equal(holder_identify(pid, 0, 0, &c), 0);
        snprintf(c.comm, sizeof(c.comm), "mkdir");
        assert_int_equal(mkdir_as(f, LT_INO_ROOT, "kd.lock", &c, &a), 0);
        struct lock_view v = view_of(f, a.ino);
        assert_int_equal(v.pid, getpid());
        assert_int_equal(v.how, LOCK_HOW_MKDIR);
        lock_view_clear(&v);
        end_child(pid, fd);
        /* mkdir's exit releases nothing; its parent's rmdir does */
        char removed[64] = "";
        assert_int_equal(locktable_reap(f->t, note_removed, removed), 0);
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "kd.lock", &a), 0);
        locktable_forget(f->t, a.ino, 1);
        assert_int_equal(locktable_rmdir(f->t, LT_INO_ROOT, "kd.lock", &f->other), -EBUSY);
        assert_int_equal(locktable_rmdir(f->t, LT_INO_ROOT, "kd.lock", &f->self), 0);
}

/* A caller whose pid is not visible still takes it, detached (R3.5): its
 * uid may remove it, it stays a directory. */
static void test_detached_dirlock(void **state) {
        struct fixture *f = *state;
        struct caller hidden = { .uid = 1000, .gid = 1000 };
        struct lt_attr a;
        assert_int_equal(mkdir_as(f, LT_INO_ROOT, "kd.lock", &hidden, &a), 0);
        assert_int_equal(a.kind, LT_DIR);
        struct lock_view v = view_of(f, a.ino);
        assert_int_equal(v.how, LOCK_HOW_MKDIR);
        assert_true(v.detached);
        lock_view_clear(&v);
        struct caller stranger = f->other;
        stranger.uid = 2000;
        assert_int_equal(locktable_rmdir(f->t, LT_INO_ROOT, "kd.lock", &stranger), -EPERM);
        assert_int_equal(locktable_rmdir(f->t, LT_INO_ROOT, "kd.lock", &f->other), 0);
        assert_int_equal(locktable_lookup(f->t, LT_INO_ROOT, "kd.lock", &a), -ENOENT);
}

/* The times set on a directory read back exactly, to the nanosecond; on a
 * directory lock they also renew it (its record is written again). */
static void test_times_read_back(void **state) {
        struct fixture *f = *state;
        struct lt_attr a, a2;
        struct lt_times times = { .set_atime = true, .set_mtime = true, .explicit_time = true,
                                  .atime = { 1500000000, 123456789 },
                                  .mtime = { 1600000000, 987654321 } };
        /* a plain directory: its creator's uid or root */
        assert_int_equal(mkdir_as(f, LT_INO_ROOT, "ns", &f->other, &a), 0);
        assert_int_equal(locktable_setattr_times(f->t, a.ino, NULL, &f->other, LT_SET_TIMES, 0,
                                                 &times, &a2),
                         0);
        assert_int_equal(locktable_getattr(f->t, a.ino, &a2), 0);
        assert_true(a2.times_set);
        assert_true(same_time(a2.atime, times.atime));
        assert_true(same_time(a2.mtime, times.mtime));
        struct caller stranger = f->other;
        stranger.uid = 2000;
        assert_int_equal(locktable_setattr_times(f->t, a.ino, NULL, &stranger, LT_SET_TIMES, 0,
                                                 &times, &a2),
                         -EPERM);
        /* "now" (touch without a time) is anyone's; only mtime: atime stays */
        struct lt_times now = { .set_mtime = true, .mtime = { 1700000000, 1 } };
        assert_int_equal(locktable_setattr_times(f->t, a.ino, NULL, &stranger, LT_SET_TIMES, 0,
                                                 &now, &a2),
                         0);
        assert_int_equal(locktable_getattr(f->t, a.ino, &a2), 0);
        assert_true(same_time(a2.atime, times.atime));
        assert_true(same_time(a2.mtime, now.mtime));

        /* a directory lock: its holder's times are kept and renew it */
        assert_int_equal(mkdir_as(f, LT_INO_ROOT, "kd.lock", &f->self, &a), 0);
        unsigned updates = f->ts.updates;
        times.mtime = (struct timespec){ 1800000000, 5000000 }; /* proper-lockfile's probe:
                                                                 * a future time */
        assert_int_equal(locktable_setattr_times(f->t, a.ino, NULL, &f->self, LT_SET_TIMES, 0,
                                                 &times, &a2),
                         0);
        assert_int_equal(f->ts.updates, updates + 1);
        assert_int_equal(locktable_getattr(f->t, a.ino, &a2), 0);
        assert_true(a2.times_set);
        assert_true(same_time(a2.mtime, times.mtime));
        assert_true(same_time(a2.atime, times.atime));
        assert_int_equal(locktable_setattr_times(f->t, a.ino, NULL, &f->self, LT_SET_SIZE, 0,
                                                 NULL, &a2),
                         -EISDIR);
        /* a lock file's mtime stays its renewal */
        struct lt_handle h;
        assert_int_equal(take(f->t, "file.lock", &f->self, &h), 0);
        assert_int_equal(locktable_setattr_times(f->t, h.ino, &h, &f->self, LT_SET_TIMES, 0,
                                                 &times, &a2),
                         0);
        assert_false(a2.times_set);
}

/* dirlocks= (empty): a matching name is a plain directory. */
static void test_off_gives_plain_directories(void **state) {
        struct fixture *f = *state;
        struct lt_attr a;
        assert_int_equal(mkdir_as(f, LT_INO_ROOT, "kd.lock", &f->other, &a), 0);
        assert_int_equal(a.mode, S_IFDIR | 01777);
        struct lock_view v;
        assert_int_equal(locktable_view(f->t, a.ino, &v), -ENOENT);
        struct lock_metrics m;
        locktable_metrics(f->t, &m);
        assert_int_equal(m.held, 0);
        assert_int_equal(m.directories, 1);
        assert_int_equal(locktable_rmdir(f->t, LT_INO_ROOT, "kd.lock", &f->other), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_mkdir_takes_a_lock_once, setup, teardown),
                cmocka_unit_test_setup_teardown(test_rmdir_by_holder_releases, setup, teardown),
                cmocka_unit_test_setup_teardown(test_rmdir_by_others_is_ebusy, setup, teardown),
                cmocka_unit_test_setup_teardown(test_holder_death_releases, setup, teardown),
                cmocka_unit_test_setup_teardown(test_mkdir_tool_takes_it_for_its_parent, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_detached_dirlock, setup, teardown),
                cmocka_unit_test_setup_teardown(test_times_read_back, setup, teardown),
                cmocka_unit_test_setup_teardown(test_off_gives_plain_directories, setup_off,
                                                teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
