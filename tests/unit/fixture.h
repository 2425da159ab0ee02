/* SPDX-License-Identifier: MIT */
/* Helpers shared by the unit tests: processes that play holders, a store
 * whose calls can be held and whose answers can be chosen, and short forms
 * of the lock table calls the tests make most. Nothing here asserts: each
 * helper returns what went wrong and the test asserts on it. */
#ifndef LOCKFS_TEST_FIXTURE_H
#define LOCKFS_TEST_FIXTURE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "locktable.h"
#include "store.h"

/* ---- processes */

/* A child of ours that lives until *ret_fd (the write end of its stdin
 * pipe) is closed. It keeps no other descriptor of ours: a write end of an
 * earlier child's pipe, or a store's lock file, inherited here would keep
 * that child alive or that lock taken. Returns its pid, or -1. */
pid_t spawn_child(int *ret_fd);

/* A process that is no descendant of ours (double fork: reparented to
 * init, which reaps it), alive until *ret_fd is closed, with no other
 * descriptor of ours. Returns its pid (read back through a pipe), or -1. */
pid_t spawn_stranger(int *ret_fd);

/* End a child of spawn_child(): close its pipe and wait until it is gone. */
void end_child(pid_t pid, int fd);

/* The number of descriptors open in this process (of the first 4096). */
int count_fds(void);

/* ---- a store that holds calls and answers as told */

/* Acquisitions and updates wait while block_acquire / block_update is set
 * (change them with test_store_set_block()); in_acquire / in_update count
 * the calls waiting now (await them with test_store_await()). A call
 * answers fail_acquire / fail_update / fail_dir (-errno, or 0 to succeed).
 * Every field is under mu; cond is broadcast at each change. */
struct test_store {
        struct store base;
        pthread_mutex_t mu;
        pthread_cond_t cond;
        bool block_acquire, block_update;
        unsigned in_acquire, in_update;
        int fail_acquire, fail_update, fail_dir;
        uint64_t fence;              /* the last fence handed out */
        unsigned acquires, updates, releases;
        uint64_t last_release_fence;
};

/* acquire, update, release and free of struct test_store. */
extern const struct store_ops test_store_ops;
/* The same with put_dir (answering fail_dir): directories are recorded. */
extern const struct store_ops test_store_ops_with_dirs;

/* Prepare ts with ops (test_store_ops, test_store_ops_with_dirs or a table
 * of the caller's that reuses the test_store_* calls); all else zero. */
void test_store_init(struct test_store *ts, const struct store_ops *ops);
void test_store_destroy(struct test_store *ts);
struct test_store *test_store_of(struct store *s);

int test_store_acquire(struct store *s, const struct lock_view *v, uint64_t *ret_fence);
int test_store_update(struct store *s, const struct lock_view *v);
int test_store_release(struct store *s, uint64_t ino, const char *path, uint64_t fence);
void test_store_free(struct store *s);

/* Set *what (ts->block_acquire or ts->block_update) to on, under mu, and
 * wake the calls waiting on it. */
void test_store_set_block(struct test_store *ts, bool *what, bool on);
/* Wait until *counter (ts->in_acquire, ts->in_update) reaches n. */
void test_store_await(struct test_store *ts, unsigned *counter, unsigned n);

/* ---- the lock table */

/* An exclusive create of name in directory dir as c (O_CREAT | O_EXCL |
 * O_WRONLY): locktable_create()'s result. h may be NULL. */
int take_in(struct locktable *t, uint64_t dir, const char *name, const struct caller *c,
            struct lt_handle *h);
/* take_in() in the root directory. */
int take(struct locktable *t, const char *name, const struct caller *c, struct lt_handle *h);

/* Inode of name in directory parent, or a negative errno (the lookup's
 * reference is given back). */
int64_t ino_of(struct locktable *t, uint64_t parent, const char *name);

/* Wait up to timeout_ms for the reaper fd (deadlines, holder deaths) to be
 * readable. Returns 1, 0 on timeout, -errno if poll failed. */
int await_reapable(struct locktable *t, int timeout_ms);

/* A deadline for events that must come (a holder's death seen, a TTL run
 * out): generous, so a loaded machine does not fail a test. */
#define EVENT_TIMEOUT_MS 30000

#endif
