/* SPDX-License-Identifier: MIT */
/* Unit tests for the local store (journal + fence file) together with the
 * lock table's restore: what comes back after the daemon dies, what is
 * dropped, and that no damaged journal invents a lock. Each "restart"
 * frees the table and store without releasing anything (as a kill does)
 * and opens them again on the same files. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "crc32c.h"
#include "journal.h"
#include "locktable.h"
#include "store.h"

struct fixture {
        char dir[64], state[96], journal[128], fence[96];
        struct store *store;
        struct locktable *t;
        struct locktable_restored restored;
        struct caller self;
};

static const struct locktable_config CFG = { .default_ttl_s = 0, .max_locks = 0,
                                             .max_content = 4096, .max_depth = 8 };

static int open_all(struct fixture *f) {
        int r = store_local_open(f->state, f->fence, &f->store);
        if (r < 0)
                return r;
        assert_int_equal(locktable_new(&CFG, f->store, &f->t), 0);
        return locktable_restore(f->t, &f->restored);
}

/* The daemon dies: nothing is released, everything is freed. */
static void close_all(struct fixture *f) {
        locktable_free(f->t);
        store_free(f->store);
        f->t = NULL;
        f->store = NULL;
}

static void restart(struct fixture *f) {
        close_all(f);
        assert_int_equal(open_all(f), 0);
}

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof(*f));
        strcpy(f->dir, "/tmp/lockfs-store-XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->state, sizeof(f->state), "%s/state", f->dir);
        snprintf(f->journal, sizeof(f->journal), "%s/journal", f->state);
        snprintf(f->fence, sizeof(f->fence), "%s/var/fence", f->dir);
        assert_int_equal(holder_identify(getpid(), 0, 0, &f->self), 0);
        assert_int_equal(open_all(f), 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;
        close_all(f);
        char cmd[128];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
        assert_int_equal(system(cmd), 0);
        free(f);
        return 0;
}

/* A child that lives until its pipe closes; its caller identity in *c. */
static pid_t spawn_child(int *ret_fd, struct caller *c) {
        int p[2], ready[2];
        assert_int_equal(pipe(p), 0);
        assert_int_equal(pipe(ready), 0);
        pid_t pid = fork();
        if (pid == 0) {
                char ch = 0;
                for (int fd = 3; fd < 1024; fd++) /* the store's lock file, too */
                        if (fd != p[0] && fd != ready[1])
                                close(fd);
                if (write(ready[1], &ch, 1) != 1)
                        _exit(1);
                close(ready[1]);
                while (read(p[0], &ch, 1) > 0)
                        ;
                _exit(0);
        }
        close(p[0]);
        close(ready[1]);
        /* until the child has closed its copy of the store's lock file, a
         * reopen of the store finds it held (EBUSY): seen under load */
        char ch;
        assert_int_equal(read(ready[0], &ch, 1), 1);
        close(ready[0]);
        *ret_fd = p[1];
        assert_int_equal(holder_identify(pid, 1000, 1000, c), 0);
        return pid;
}

static int take(struct fixture *f, uint64_t dir, const char *name, const struct caller *c,
                struct lt_handle *h) {
        struct lt_attr a;
        struct lt_handle scratch;
        return locktable_create(f->t, dir, name, c, O_CREAT | O_EXCL | O_WRONLY, &a,
                                h ? h : &scratch);
}

static uint64_t ino_of(struct fixture *f, uint64_t dir, const char *name) {
        struct lt_attr a;
        if (locktable_lookup(f->t, dir, name, &a) < 0)
                return 0;
        return a.ino;
}

static int view_of(struct fixture *f, uint64_t dir, const char *name, struct lock_view *v) {
        uint64_t ino = ino_of(f, dir, name);
        return ino ? locktable_view(f->t, ino, v) : -ENOENT;
}

static uint64_t fence_of(struct fixture *f, const char *name) {
        struct lock_view v;
        assert_int_equal(view_of(f, LT_INO_ROOT, name, &v), 0);
        uint64_t fence = v.fence;
        lock_view_clear(&v);
        return fence;
}

static void test_live_holders_come_back_dead_ones_do_not(void **state) {
        struct fixture *f = *state;
        struct caller alive, dying;
        int alive_fd, dying_fd;
        pid_t alive_pid = spawn_child(&alive_fd, &alive);
        pid_t dying_pid = spawn_child(&dying_fd, &dying);
        struct lt_handle h;
        struct lt_attr a;
        assert_int_equal(take(f, LT_INO_ROOT, "a.lock", &alive, &h), 0);
        assert_int_equal(locktable_write(f->t, &h, &alive, 0, "{\"op\":\"x\"}", 10), 10);
        assert_int_equal(locktable_link(f->t, h.ino, LT_INO_ROOT, "a2.lock", &alive, &a), 0);
        assert_int_equal(take(f, LT_INO_ROOT, "b.lock", &dying, NULL), 0);
        assert_int_equal(locktable_mkdir(f->t, LT_INO_ROOT, "d", &alive, &a), 0);
        assert_int_equal(take(f, a.ino, "c.lock", &f->self, NULL), 0);
        uint64_t fence_a = fence_of(f, "a.lock"), fence_b = fence_of(f, "b.lock");
        close_all(f);

        close(dying_fd);
        waitpid(dying_pid, NULL, 0);
        assert_int_equal(open_all(f), 0);
        assert_int_equal(f->restored.restored, 2);
        assert_int_equal(f->restored.holder_gone, 1);
        assert_int_equal(ino_of(f, LT_INO_ROOT, "b.lock"), 0);

        struct lock_view v;
        assert_int_equal(view_of(f, LT_INO_ROOT, "a.lock", &v), 0);
        assert_int_equal(v.pid, alive_pid);
        assert_int_equal(v.fence, fence_a);
        assert_int_equal(v.uid, 1000);
        assert_int_equal(v.content_len, 10);
        assert_memory_equal(v.content, "{\"op\":\"x\"}", 10);
        lock_view_clear(&v);
        /* the second name is the same lock */
        assert_int_equal(ino_of(f, LT_INO_ROOT, "a2.lock"), ino_of(f, LT_INO_ROOT, "a.lock"));
        /* the directory and its owner came back with the lock inside */
        uint64_t d = ino_of(f, LT_INO_ROOT, "d");
        assert_int_not_equal(d, 0);
        assert_int_equal(locktable_getattr(f->t, d, &a), 0);
        assert_int_equal(a.uid, 1000);
        assert_int_equal(view_of(f, d, "c.lock", &v), 0);
        assert_int_equal(v.pid, getpid());
        lock_view_clear(&v);
        /* held means held: nobody else takes it; new fences go up */
        assert_int_equal(take(f, LT_INO_ROOT, "a.lock", &f->self, NULL), -EEXIST);
        assert_int_equal(take(f, LT_INO_ROOT, "b.lock", &f->self, NULL), 0);
        assert_true(fence_of(f, "b.lock") > fence_b);
        assert_true(fence_of(f, "b.lock") > fence_a);

        /* a second restart restores the same again (restore re-records) */
        restart(f);
        assert_int_equal(f->restored.restored, 3);
        close(alive_fd);
        waitpid(alive_pid, NULL, 0);
}

/* Directories come back with their owners whatever order the store hands
 * them in (many chains, so some children come before their parents). */
static void test_nested_directories_keep_their_owners(void **state) {
        struct fixture *f = *state;
        struct lt_attr a;
        char name[16];
        for (int chain = 0; chain < 20; chain++) {
                uint64_t dir = LT_INO_ROOT;
                for (int depth = 0; depth < 3; depth++) {
                        struct caller c = f->self;
                        c.uid = c.gid = (uid_t)(1000 + depth);
                        snprintf(name, sizeof(name), "d%d-%d", chain, depth);
                        assert_int_equal(locktable_mkdir(f->t, dir, name, &c, &a), 0);
                        dir = a.ino;
                }
        }
        restart(f);
        restart(f); /* what the first restore re-recorded comes back too */
        for (int chain = 0; chain < 20; chain++) {
                uint64_t dir = LT_INO_ROOT;
                for (int depth = 0; depth < 3; depth++) {
                        snprintf(name, sizeof(name), "d%d-%d", chain, depth);
                        dir = ino_of(f, dir, name);
                        assert_int_not_equal(dir, 0);
                        assert_int_equal(locktable_getattr(f->t, dir, &a), 0);
                        assert_int_equal(a.uid, 1000 + depth);
                }
        }
}

static void test_release_and_rename_are_journaled(void **state) {
        struct fixture *f = *state;
        struct lock_view forced;
        assert_int_equal(take(f, LT_INO_ROOT, "gone.lock", &f->self, NULL), 0);
        assert_int_equal(take(f, LT_INO_ROOT, "old.lock", &f->self, NULL), 0);
        assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, "gone.lock", &f->self, &forced), 0);
        lock_view_clear(&forced);
        assert_int_equal(locktable_rename(f->t, LT_INO_ROOT, "old.lock", LT_INO_ROOT, "new.lock",
                                          0, &f->self), 0);
        restart(f);
        assert_int_equal(f->restored.restored, 1);
        assert_int_equal(ino_of(f, LT_INO_ROOT, "gone.lock"), 0);
        assert_int_equal(ino_of(f, LT_INO_ROOT, "old.lock"), 0);
        assert_int_not_equal(ino_of(f, LT_INO_ROOT, "new.lock"), 0);
}

/* A deadline recorded in the past (the TTL ran out while no daemon ran). */
static void test_ttl_counts_while_down(void **state) {
        struct fixture *f = *state;
        struct timespec now;
        clock_gettime(CLOCK_MONOTONIC, &now);
        int64_t now_ms = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
        struct lock_view v = {
                .path = "/expired.lock", .ino = 100, .parent_ino = LT_INO_ROOT, .detached = true,
                .how = LOCK_HOW_DETACHED, .ttl_s = 5, .deadline_mono_ms = now_ms - 1,
        };
        uint64_t fence;
        assert_int_equal(f->store->ops->acquire(f->store, &v, &fence), 0);
        v.path = "/later.lock";
        v.ino = 101;
        v.deadline_mono_ms = now_ms + 60000;
        assert_int_equal(f->store->ops->acquire(f->store, &v, &fence), 0);
        restart(f);
        assert_int_equal(f->restored.expired, 1);
        assert_int_equal(f->restored.restored, 1);
        assert_int_equal(ino_of(f, LT_INO_ROOT, "expired.lock"), 0);
        assert_int_not_equal(ino_of(f, LT_INO_ROOT, "later.lock"), 0);
}

static off_t file_size(const char *path) {
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        return st.st_size;
}

static void test_journal_stays_proportional_to_locks_held(void **state) {
        struct fixture *f = *state;
        char name[32];
        for (int i = 0; i < 10; i++) {
                snprintf(name, sizeof(name), "held-%d", i);
                assert_int_equal(take(f, LT_INO_ROOT, name, &f->self, NULL), 0);
        }
        off_t biggest = 0;
        for (int i = 0; i < 100000; i++) {
                struct lock_view forced;
                assert_int_equal(take(f, LT_INO_ROOT, "cycle.lock", &f->self, NULL), 0);
                assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, "cycle.lock", &f->self,
                                                  &forced), 0);
                if (i % 1000 == 0 && file_size(f->journal) > biggest)
                        biggest = file_size(f->journal);
        }
        print_message("journal after 100000 cycles: %lld bytes, at most %lld\n",
                      (long long)file_size(f->journal), (long long)biggest);
        assert_true(biggest < (2 << 20)); /* 1 MiB of slack plus twice the live records */
        restart(f);
        assert_int_equal(f->restored.restored, 10);
        assert_true(file_size(f->journal) < 4096);
}

/* Three locks, then the journal is damaged by damage(); returns what came
 * back. */
static void make_three(struct fixture *f) {
        assert_int_equal(take(f, LT_INO_ROOT, "one", &f->self, NULL), 0);
        assert_int_equal(take(f, LT_INO_ROOT, "two", &f->self, NULL), 0);
        assert_int_equal(take(f, LT_INO_ROOT, "three", &f->self, NULL), 0);
        close_all(f);
}

static void test_torn_tail_keeps_the_valid_prefix(void **state) {
        struct fixture *f = *state;
        make_three(f);
        assert_int_equal(truncate(f->journal, file_size(f->journal) - 5), 0);
        assert_int_equal(open_all(f), 0);
        assert_int_equal(f->restored.restored, 2);
        assert_int_not_equal(ino_of(f, LT_INO_ROOT, "one"), 0);
        assert_int_not_equal(ino_of(f, LT_INO_ROOT, "two"), 0);
        assert_int_equal(ino_of(f, LT_INO_ROOT, "three"), 0);
        /* the journal was rewritten whole: a further restart agrees */
        restart(f);
        assert_int_equal(f->restored.restored, 2);
}

static void flip_byte(const char *path, off_t at) {
        int fd = open(path, O_RDWR);
        unsigned char c;
        assert_int_equal(pread(fd, &c, 1, at), 1);
        c ^= 0x5a;
        assert_int_equal(pwrite(fd, &c, 1, at), 1);
        close(fd);
}

static void test_flipped_byte_never_invents_a_lock(void **state) {
        struct fixture *f = *state;
        make_three(f);
        off_t size = file_size(f->journal);
        /* a byte of the second record: only the first lock is certain */
        flip_byte(f->journal, JOURNAL_HEADER_SIZE + (size - JOURNAL_HEADER_SIZE) / 2);
        assert_int_equal(open_all(f), 0);
        assert_int_equal(f->restored.restored, 1);
        assert_int_not_equal(ino_of(f, LT_INO_ROOT, "one"), 0);
        assert_int_equal(ino_of(f, LT_INO_ROOT, "two"), 0);
        assert_int_equal(ino_of(f, LT_INO_ROOT, "three"), 0);
}

static void test_foreign_or_newer_journal_restores_nothing(void **state) {
        struct fixture *f = *state;
        make_three(f);
        flip_byte(f->journal, 0); /* magic */
        assert_int_equal(open_all(f), 0);
        assert_int_equal(f->restored.restored, 0);
        /* a newer version (valid checksum) */
        assert_int_equal(take(f, LT_INO_ROOT, "four", &f->self, NULL), 0);
        close_all(f);
        int fd = open(f->journal, O_RDWR);
        uint8_t h[JOURNAL_HEADER_SIZE];
        assert_int_equal(pread(fd, h, sizeof(h), 0), sizeof(h));
        uint32_t v = 2, crc;
        memcpy(h + 8, &v, 4);
        crc = crc32c(0, h, sizeof(h) - 4);
        memcpy(h + sizeof(h) - 4, &crc, 4);
        assert_int_equal(pwrite(fd, h, sizeof(h), 0), sizeof(h));
        close(fd);
        assert_int_equal(open_all(f), 0);
        assert_int_equal(f->restored.restored, 0);
        assert_int_equal(ino_of(f, LT_INO_ROOT, "four"), 0);
}

static void test_journal_of_another_boot_keeps_only_directories(void **state) {
        struct fixture *f = *state;
        struct lt_attr a;
        assert_int_equal(locktable_mkdir(f->t, LT_INO_ROOT, "ns", &f->self, &a), 0);
        assert_int_equal(take(f, a.ino, "x.lock", &f->self, NULL), 0);
        close_all(f);
        int fd = open(f->journal, O_RDWR);
        uint8_t h[JOURNAL_HEADER_SIZE];
        assert_int_equal(pread(fd, h, sizeof(h), 0), sizeof(h));
        h[12] = h[12] == 'f' ? 'e' : 'f'; /* another boot id */
        uint32_t crc = crc32c(0, h, sizeof(h) - 4);
        memcpy(h + sizeof(h) - 4, &crc, 4);
        assert_int_equal(pwrite(fd, h, sizeof(h), 0), sizeof(h));
        close(fd);
        assert_int_equal(open_all(f), 0);
        assert_int_equal(f->restored.restored, 0);
        uint64_t ns = ino_of(f, LT_INO_ROOT, "ns");
        assert_int_not_equal(ns, 0);
        assert_int_equal(ino_of(f, ns, "x.lock"), 0);
}

static void test_fences_never_go_backwards(void **state) {
        struct fixture *f = *state;
        struct lock_view forced;
        uint64_t last = 0;
        for (int round = 0; round < 5; round++) {
                assert_int_equal(take(f, LT_INO_ROOT, "f.lock", &f->self, NULL), 0);
                uint64_t fence = fence_of(f, "f.lock");
                assert_true(fence > last);
                last = fence;
                assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, "f.lock", &f->self, &forced), 0);
                if (round == 3) { /* a reboot: /run is empty again */
                        close_all(f);
                        char cmd[160];
                        snprintf(cmd, sizeof(cmd), "rm -rf %s", f->state);
                        assert_int_equal(system(cmd), 0);
                        assert_int_equal(open_all(f), 0);
                } else {
                        restart(f);
                }
        }
}

static void test_damaged_fence_file_refuses_to_start(void **state) {
        struct fixture *f = *state;
        close_all(f);
        FILE *fp = fopen(f->fence, "w");
        fputs("lockfs-fences 12x\n", fp);
        fclose(fp);
        assert_int_equal(store_local_open(f->state, f->fence, &f->store), -EBADMSG);
        fp = fopen(f->fence, "w");
        fputs("lockfs-fences 8192\n", fp);
        fclose(fp);
        assert_int_equal(open_all(f), 0);
        assert_int_equal(take(f, LT_INO_ROOT, "f.lock", &f->self, NULL), 0);
        assert_true(fence_of(f, "f.lock") >= 8192);
}

static void test_one_daemon_per_state_directory(void **state) {
        struct fixture *f = *state;
        struct store *second;
        assert_int_equal(store_local_open(f->state, f->fence, &second), -EBUSY);
}

/* An acquisition that cannot be journaled does not happen. */
static void test_unjournaled_acquisition_fails(void **state) {
        struct fixture *f = *state;
        struct lt_handle h;
        char big[2048];
        memset(big, 'x', sizeof(big));
        for (int i = 0; i < 20; i++) {
                char name[16];
                snprintf(name, sizeof(name), "big-%d", i);
                assert_int_equal(take(f, LT_INO_ROOT, name, &f->self, &h), 0);
                assert_int_equal(locktable_write(f->t, &h, &f->self, 0, big, sizeof(big)),
                                 sizeof(big));
        }
        struct rlimit old, lim;
        getrlimit(RLIMIT_FSIZE, &old);
        lim = old;
        lim.rlim_cur = 8192; /* below what the journal holds */
        signal(SIGXFSZ, SIG_IGN);
        assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
        int r = take(f, LT_INO_ROOT, "refused.lock", &f->self, NULL);
        setrlimit(RLIMIT_FSIZE, &old);
        assert_int_equal(r, -EIO);
        assert_int_equal(ino_of(f, LT_INO_ROOT, "refused.lock"), 0);
        /* writes work again: the journal is rewritten whole */
        assert_int_equal(take(f, LT_INO_ROOT, "later.lock", &f->self, NULL), 0);
        restart(f);
        assert_int_equal(f->restored.restored, 21);
        assert_int_equal(ino_of(f, LT_INO_ROOT, "refused.lock"), 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void) {
        const struct CMUnitTest tests[] = {
                T(test_live_holders_come_back_dead_ones_do_not),
                T(test_nested_directories_keep_their_owners),
                T(test_release_and_rename_are_journaled),
                T(test_ttl_counts_while_down),
                T(test_journal_stays_proportional_to_locks_held),
                T(test_torn_tail_keeps_the_valid_prefix),
                T(test_flipped_byte_never_invents_a_lock),
                T(test_foreign_or_newer_journal_restores_nothing),
                T(test_journal_of_another_boot_keeps_only_directories),
                T(test_fences_never_go_backwards),
                T(test_damaged_fence_file_refuses_to_start),
                T(test_one_daemon_per_state_directory),
                T(test_unjournaled_acquisition_fails),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
