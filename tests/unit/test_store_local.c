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

#include "clock.h"
#include "crc32c.h"
#include "journal.h"
#include "locktable.h"
#include "store.h"
#include "store_local.h"

struct fixture {
        char dir[64], state[96], journal[128], fence[96];
        struct store *store;
        struct locktable *t;
        struct locktable_restored restored;
        struct caller self;
};

static const struct locktable_config CFG0 = { .default_ttl_s = 0, .max_locks = 0,
                                              .max_content = 4096, .max_depth = 8 };
static struct locktable_config CFG; /* CFG0 again at each setup; a test may change it */

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
        CFG = CFG0;
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
                char ch = 'r';
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
        char ch;
        /* the child no longer shares the store's lock file (else a restart
         * would find the state directory in use) */
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
                .content = "{\"ttl_s\": 5}", .content_len = 12, /* its own TTL */
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

/* SPEC R5.3 across a restart: a restored lock's TTL is the one the
 * options it comes back under give it (a journal of a daemon that gave
 * every lock the mount's TTL, or other options), not the recorded one: a
 * live holder's lock has none (holder_ttl 0), a detached one the mount's
 * ttl, counted from its last renewal; a holder's own "ttl_s" stays. */
static void test_restore_recomputes_ttl(void **state) {
        struct fixture *f = *state;
        int64_t now_ms = clock_mono_ms();
        struct lock_view v = {
                .path = "/held.lock", .ino = 100, .parent_ino = LT_INO_ROOT,
                .how = LOCK_HOW_CREATOR, .liveness_known = true, .pid = getpid(),
                .start_time = f->self.self.start_time, .ttl_s = 3600,
                .deadline_mono_ms = now_ms + 3600000, .renewed_at_ms = clock_wall_ms(),
        };
        uint64_t fence;
        assert_int_equal(f->store->ops->acquire(f->store, &v, &fence), 0);
        v.path = "/own.lock";
        v.ino = 101;
        v.ttl_s = 50;
        v.deadline_mono_ms = now_ms + 50000;
        v.content = "{\"ttl_s\": 50}";
        v.content_len = 13;
        assert_int_equal(f->store->ops->acquire(f->store, &v, &fence), 0);
        v = (struct lock_view){
                .path = "/detached.lock", .ino = 102, .parent_ino = LT_INO_ROOT,
                .detached = true, .how = LOCK_HOW_DETACHED, .ttl_s = 3600,
                .deadline_mono_ms = now_ms + 3600000, .renewed_at_ms = clock_wall_ms(),
                .content = "0", .content_len = 1,
        };
        assert_int_equal(f->store->ops->acquire(f->store, &v, &fence), 0);
        CFG.default_ttl_s = 100;
        restart(f);
        assert_int_equal(f->restored.restored, 3);
        struct lock_view got;
        assert_int_equal(locktable_view(f->t, ino_of(f, LT_INO_ROOT, "held.lock"), &got), 0);
        assert_int_equal(got.ttl_s, 0);
        lock_view_clear(&got);
        assert_int_equal(locktable_view(f->t, ino_of(f, LT_INO_ROOT, "own.lock"), &got), 0);
        assert_int_equal(got.ttl_s, 50);
        lock_view_clear(&got);
        assert_int_equal(locktable_view(f->t, ino_of(f, LT_INO_ROOT, "detached.lock"), &got), 0);
        assert_int_equal(got.ttl_s, 100);
        assert_true(got.expires_at_ms <= clock_wall_ms() + 100000);
        lock_view_clear(&got);
        /* and it is recorded so: the next restart under the same options agrees */
        restart(f);
        assert_int_equal(f->restored.restored, 3);
        assert_int_equal(locktable_view(f->t, ino_of(f, LT_INO_ROOT, "held.lock"), &got), 0);
        assert_int_equal(got.ttl_s, 0);
        lock_view_clear(&got);
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

/* A damaged record that is not a torn tail (here a flipped byte of the
 * second record: the locks after it are live) refuses to start and leaves
 * the journal as it was; moved aside, the daemon starts with nothing. */
static void test_flipped_byte_refuses_to_start(void **state) {
        struct fixture *f = *state;
        make_three(f);
        off_t size = file_size(f->journal);
        flip_byte(f->journal, JOURNAL_HEADER_SIZE + (size - JOURNAL_HEADER_SIZE) / 2);
        assert_int_equal(store_local_open(f->state, f->fence, &f->store), -EUCLEAN);
        assert_int_equal(file_size(f->journal), size);
        char aside[160];
        snprintf(aside, sizeof(aside), "%s.damaged", f->journal);
        assert_int_equal(rename(f->journal, aside), 0);
        assert_int_equal(open_all(f), 0);
        assert_int_equal(f->restored.restored, 0);
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
        uint32_t v = JOURNAL_VERSION + 1, crc;
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

/* ---- rewriting a journal as another writer would ------------------------ */

enum rewrite { KEEP, DROP, TO_V1, TO_V1_WRAPPED, BAD_COUNT, FENCE_MAX };

/* Rewrite f's journal record by record: what(rec, ctx) says what becomes
 * of each. TO_V1 writes a lock record as version 1 did (u16 alias count,
 * no sharer count),
 * TO_V1_WRAPPED with the count the old writer wrapped (n - 65536: here
 * n - 2, as if 65536 more names followed), BAD_COUNT (version 2) one too
 * many; each with a valid checksum. version: the header's. */
static void rewrite_journal(struct fixture *f, uint32_t version,
                            enum rewrite (*what)(const struct jrec *, void *), void *ctx) {
        int fd = open(f->journal, O_RDONLY);
        assert_true(fd >= 0);
        off_t size = file_size(f->journal);
        uint8_t *in = malloc((size_t)size), *out = malloc((size_t)size + 64);
        assert_int_equal(read(fd, in, (size_t)size), size);
        close(fd);
        char boot[JOURNAL_BOOT_ID_LEN + 1];
        uint32_t in_version, crc;
        assert_int_equal(journal_header_check(in, (size_t)size, boot, &in_version), 0);
        journal_header_encode(boot, out);
        memcpy(out + 8, &version, 4);
        crc = crc32c(0, out, JOURNAL_HEADER_SIZE - 4);
        memcpy(out + JOURNAL_HEADER_SIZE - 4, &crc, 4);
        size_t off = JOURNAL_HEADER_SIZE, len = JOURNAL_HEADER_SIZE;
        struct jrec r;
        while (journal_next(in, (size_t)size, in_version, &off, &r) == 1) {
                enum rewrite w = what(&r, ctx);
                if (w == DROP)
                        continue;
                uint8_t *o = out + len;
                memcpy(o, r.raw, r.raw_len);
                size_t at = 8 + JOURNAL_LOCK_FIXED + 2 + r.name_len; /* the alias count */
                uint32_t n = (uint32_t)(r.raw_len - 8);
                if (r.type == JOURNAL_LOCK && (w == TO_V1 || w == TO_V1_WRAPPED)) {
                        uint16_t c16 = (uint16_t)(r.n_aliases - (w == TO_V1_WRAPPED ? 2 : 0));
                        memcpy(o + at, &c16, 2);
                        memmove(o + at + 2, r.raw + at + 4, r.raw_len - at - 4);
                        assert_int_equal(r.n_sharers, 0);
                        n -= 2 + 4; /* and version 3's sharer count, at the end */
                } else if (r.type == JOURNAL_LOCK && w == FENCE_MAX) {
                        uint64_t fence = UINT64_MAX;
                        memcpy(o + 8 + 1 + 8 + 8, &fence, 8);
                } else if (r.type == JOURNAL_LOCK && w == BAD_COUNT) {
                        uint32_t c32 = (uint32_t)r.n_aliases + 1;
                        memcpy(o + at, &c32, 4);
                }
                crc = crc32c(0, o + 8, n);
                memcpy(o, &n, 4);
                memcpy(o + 4, &crc, 4);
                len += 8 + n;
        }
        assert_int_equal(off, (size_t)size);
        fd = open(f->journal, O_WRONLY | O_TRUNC);
        assert_int_equal(write(fd, out, len), (ssize_t)len);
        close(fd);
        free(in);
        free(out);
}

static enum rewrite all_to_v1(const struct jrec *r, void *ctx) {
        (void)r;
        (void)ctx;
        return TO_V1;
}

static uint32_t journal_version(struct fixture *f) {
        int fd = open(f->journal, O_RDONLY);
        uint8_t h[JOURNAL_HEADER_SIZE];
        char boot[JOURNAL_BOOT_ID_LEN + 1];
        uint32_t version = 0;
        assert_int_equal(read(fd, h, sizeof(h)), sizeof(h));
        close(fd);
        assert_int_equal(journal_header_check(h, sizeof(h), boot, &version), 0);
        return version;
}

/* A journal written by version 1 (before the u32 count) is restored, then
 * rewritten in the current format. */
static void test_version_1_journal_is_restored(void **state) {
        struct fixture *f = *state;
        struct lt_handle h;
        struct lt_attr a, d;
        assert_int_equal(take(f, LT_INO_ROOT, "a.lock", &f->self, &h), 0);
        assert_int_equal(locktable_write(f->t, &h, &f->self, 0, "42", 2), 2);
        assert_int_equal(locktable_link(f->t, h.ino, LT_INO_ROOT, "a2.lock", &f->self, &a), 0);
        assert_int_equal(locktable_mkdir(f->t, LT_INO_ROOT, "d", &f->self, &d), 0);
        assert_int_equal(take(f, d.ino, "c.lock", &f->self, NULL), 0);
        assert_int_equal(locktable_link(f->t, h.ino, d.ino, "a3.lock", &f->self, &a), 0);
        uint64_t fence = fence_of(f, "a.lock");
        close_all(f);
        rewrite_journal(f, 1, all_to_v1, NULL);
        assert_int_equal(journal_version(f), 1);

        assert_int_equal(open_all(f), 0);
        assert_int_equal(f->restored.restored, 2);
        assert_int_equal(journal_version(f), JOURNAL_VERSION);
        for (int round = 0; round < 2; round++) {
                uint64_t d_ino = ino_of(f, LT_INO_ROOT, "d");
                uint64_t ino = ino_of(f, LT_INO_ROOT, "a.lock");
                assert_int_not_equal(ino, 0);
                assert_int_equal(ino_of(f, LT_INO_ROOT, "a2.lock"), ino);
                assert_int_equal(ino_of(f, d_ino, "a3.lock"), ino);
                assert_int_not_equal(ino_of(f, d_ino, "c.lock"), 0);
                struct lock_view v;
                assert_int_equal(view_of(f, d_ino, "a3.lock", &v), 0);
                assert_int_equal(v.fence, fence);
                assert_int_equal(v.content_len, 2);
                assert_memory_equal(v.content, "42", 2);
                lock_view_clear(&v);
                restart(f);
                assert_int_equal(f->restored.restored, 2);
        }
}

struct damage {
        const char *name;  /* the lock record to damage */
        enum rewrite how;
};

static enum rewrite damage_one(const struct jrec *r, void *ctx) {
        const struct damage *d = ctx;
        bool hit = r->type == JOURNAL_LOCK && r->name_len == strlen(d->name) &&
                   memcmp(r->name, d->name, r->name_len) == 0;
        return hit ? d->how : d->how == BAD_COUNT ? KEEP : TO_V1;
}

/* The review's journal: a record with a valid checksum that does not decode
 * (version 1: an alias count that wrapped; version 2: a count the bytes do
 * not hold), followed by live locks. The daemon refuses to start, names the
 * offset, and leaves the journal as it was; nothing is handed out. */
static void test_undecodable_record_refuses_to_start(void **state) {
        struct fixture *f = *state;
        struct damage cases[] = { { "bomb.lock", TO_V1_WRAPPED }, { "bomb.lock", BAD_COUNT } };
        for (size_t i = 0; i < 2; i++) {
                struct lt_handle h;
                struct lt_attr a;
                assert_int_equal(take(f, LT_INO_ROOT, "before.lock", &f->self, NULL), 0);
                assert_int_equal(take(f, LT_INO_ROOT, "bomb.lock", &f->self, &h), 0);
                assert_int_equal(locktable_link(f->t, h.ino, LT_INO_ROOT, "b1", &f->self, &a), 0);
                assert_int_equal(locktable_link(f->t, h.ino, LT_INO_ROOT, "b2", &f->self, &a), 0);
                assert_int_equal(take(f, LT_INO_ROOT, "after.lock", &f->self, NULL), 0);
                close_all(f);
                cases[i].name = "b2"; /* the lock's own name is the last link's */
                rewrite_journal(f, cases[i].how == BAD_COUNT ? JOURNAL_VERSION : 1, damage_one,
                                &cases[i]);
                off_t size = file_size(f->journal);
                assert_int_equal(store_local_open(f->state, f->fence, &f->store), -EUCLEAN);
                assert_null(f->store);
                assert_int_equal(file_size(f->journal), size);
                char cmd[160];
                snprintf(cmd, sizeof(cmd), "rm -f %s", f->journal);
                assert_int_equal(system(cmd), 0);
                assert_int_equal(open_all(f), 0);
        }
}

static enum rewrite fence_max(const struct jrec *r, void *ctx) {
        (void)ctx;
        return r->type == JOURNAL_LOCK ? FENCE_MAX : KEEP;
}

/* A journal that holds the largest fence there is: no fence is left above
 * it, so the store refuses to open rather than wrap around to 1. */
static void test_last_fence_never_wraps(void **state) {
        struct fixture *f = *state;
        assert_int_equal(take(f, LT_INO_ROOT, "x.lock", &f->self, NULL), 0);
        close_all(f);
        rewrite_journal(f, JOURNAL_VERSION, fence_max, NULL);
        assert_int_equal(store_local_open(f->state, f->fence, &f->store), -EOVERFLOW);
        assert_null(f->store);
        char cmd[160];
        snprintf(cmd, sizeof(cmd), "rm -f %s", f->journal);
        assert_int_equal(system(cmd), 0);
        assert_int_equal(open_all(f), 0);
}

static enum rewrite drop_dirs(const struct jrec *r, void *ctx) {
        (void)ctx;
        return r->type == JOURNAL_DIR ? DROP : KEEP;
}

/* A lock record whose directory the journal lacks cannot be placed: the
 * restore fails (the daemon does not start) rather than free its names. */
static void test_lock_without_its_directory_refuses_to_start(void **state) {
        struct fixture *f = *state;
        struct lt_attr d;
        assert_int_equal(locktable_mkdir(f->t, LT_INO_ROOT, "d", &f->self, &d), 0);
        assert_int_equal(take(f, d.ino, "x.lock", &f->self, NULL), 0);
        close_all(f);
        rewrite_journal(f, JOURNAL_VERSION, drop_dirs, NULL);
        off_t size = file_size(f->journal);
        assert_int_equal(open_all(f), -EUCLEAN);
        assert_int_equal(file_size(f->journal), size);
}

/* The review's 65,536-name attack against the default cap: link fails with
 * EMLINK at 64 names, and a restart brings back every name and every other
 * lock, recorded before and after it. */
static void test_names_cap_survives_restart(void **state) {
        struct fixture *f = *state;
        char name[32];
        for (int i = 0; i < 5; i++) {
                snprintf(name, sizeof(name), "before-%d", i);
                assert_int_equal(take(f, LT_INO_ROOT, name, &f->self, NULL), 0);
        }
        struct lt_handle h;
        struct lt_attr a;
        assert_int_equal(take(f, LT_INO_ROOT, "bomb.lock", &f->self, &h), 0);
        int linked = 0, r;
        for (;;) {
                snprintf(name, sizeof(name), "%x", linked);
                if ((r = locktable_link(f->t, h.ino, LT_INO_ROOT, name, &f->self, &a)) < 0)
                        break;
                linked++;
                assert_true(linked < 100000);
        }
        assert_int_equal(r, -EMLINK);
        assert_int_equal(linked, LT_MAX_NAMES_DEFAULT - 1);
        assert_int_equal(a.nlink, LT_MAX_NAMES_DEFAULT);
        for (int i = 0; i < 5; i++) {
                snprintf(name, sizeof(name), "after-%d", i);
                assert_int_equal(take(f, LT_INO_ROOT, name, &f->self, NULL), 0);
        }
        restart(f);
        assert_int_equal(f->restored.restored, 11);
        for (int i = 0; i < 5; i++) {
                snprintf(name, sizeof(name), "before-%d", i);
                assert_int_not_equal(ino_of(f, LT_INO_ROOT, name), 0);
                snprintf(name, sizeof(name), "after-%d", i);
                assert_int_not_equal(ino_of(f, LT_INO_ROOT, name), 0);
                assert_int_equal(take(f, LT_INO_ROOT, name, &f->self, NULL), -EEXIST);
        }
        uint64_t ino = ino_of(f, LT_INO_ROOT, "bomb.lock");
        assert_int_not_equal(ino, 0);
        for (int i = 0; i < linked; i++) {
                snprintf(name, sizeof(name), "%x", i);
                assert_int_equal(ino_of(f, LT_INO_ROOT, name), ino);
        }
        assert_int_equal(locktable_link(f->t, ino, LT_INO_ROOT, "more", &f->self, &a), -EMLINK);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                T(test_live_holders_come_back_dead_ones_do_not),
                T(test_nested_directories_keep_their_owners),
                T(test_release_and_rename_are_journaled),
                T(test_ttl_counts_while_down),
                T(test_restore_recomputes_ttl),
                T(test_journal_stays_proportional_to_locks_held),
                T(test_torn_tail_keeps_the_valid_prefix),
                T(test_flipped_byte_refuses_to_start),
                T(test_version_1_journal_is_restored),
                T(test_undecodable_record_refuses_to_start),
                T(test_lock_without_its_directory_refuses_to_start),
                T(test_names_cap_survives_restart),
                T(test_last_fence_never_wraps),
                T(test_foreign_or_newer_journal_restores_nothing),
                T(test_journal_of_another_boot_keeps_only_directories),
                T(test_fences_never_go_backwards),
                T(test_damaged_fence_file_refuses_to_start),
                T(test_one_daemon_per_state_directory),
                T(test_unjournaled_acquisition_fails),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
