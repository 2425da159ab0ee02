/* SPDX-License-Identifier: MIT */
/* Helpers shared by the unit tests (fixture.h). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixture.h"

/* In a child: keep only fd (as descriptor 3) and the standard three, then
 * read it until every write end is closed, and exit. */
_Noreturn static void live_until_closed(int fd) {
        char c;

        if (dup2(fd, 3) < 0 || close_range(4, ~0U, 0) < 0)
                _exit(1);
        while (read(3, &c, 1) > 0)
                ;
        _exit(0);
}

pid_t spawn_child(int *ret_fd) {
        int p[2];

        if (pipe(p) < 0)
                return -1;
        pid_t pid = fork();
        if (pid == 0)
                live_until_closed(p[0]);
        close(p[0]);
        if (pid < 0) {
                close(p[1]);
                return -1;
        }
        *ret_fd = p[1];
        return pid;
}

/* The middle process of spawn_stranger(): fork the stranger, which reports
 * its pid on report_fd and then lives on life_fd; exit at once. */
_Noreturn static void fork_stranger(int life_fd, int report_fd) {
        if (fork() == 0) {
                pid_t me = getpid();
                if (write(report_fd, &me, sizeof(me)) != sizeof(me))
                        _exit(1);
                close(report_fd);
                live_until_closed(life_fd);
        }
        _exit(0);
}

pid_t spawn_stranger(int *ret_fd) {
        int p[2], report[2];

        if (pipe(p) < 0)
                return -1;
        if (pipe(report) < 0) {
                close(p[0]);
                close(p[1]);
                return -1;
        }
        pid_t mid = fork();
        if (mid == 0) {
                close(p[1]);
                close(report[0]);
                fork_stranger(p[0], report[1]);
        }
        close(p[0]);
        close(report[1]);
        pid_t pid = -1;
        if (mid > 0) {
                waitpid(mid, NULL, 0);
                if (read(report[0], &pid, sizeof(pid)) != sizeof(pid))
                        pid = -1;
        }
        close(report[0]);
        if (pid < 0) {
                close(p[1]);
                return -1;
        }
        *ret_fd = p[1];
        return pid;
}

void end_child(pid_t pid, int fd) {
        close(fd);
        waitpid(pid, NULL, 0);
}

int count_fds(void) {
        int n = 0;

        for (int fd = 0; fd < 4096; fd++)
                n += fcntl(fd, F_GETFD) >= 0;
        return n;
}

struct test_store *test_store_of(struct store *s) {
        return (struct test_store *)s;
}

/* Count the call in *in while it waits for *block to clear (under mu). */
static void wait_unblocked(struct test_store *ts, bool *block, unsigned *in) {
        (*in)++;
        pthread_cond_broadcast(&ts->cond);
        while (*block)
                pthread_cond_wait(&ts->cond, &ts->mu);
        (*in)--;
}

int test_store_acquire(struct store *s, const struct lock_view *v, uint64_t *ret_fence) {
        (void)v;
        struct test_store *ts = test_store_of(s);
        pthread_mutex_lock(&ts->mu);
        wait_unblocked(ts, &ts->block_acquire, &ts->in_acquire);
        ts->acquires++;
        int r = ts->fail_acquire;
        if (r == 0)
                *ret_fence = ++ts->fence;
        pthread_mutex_unlock(&ts->mu);
        return r;
}

int test_store_update(struct store *s, const struct lock_view *v) {
        (void)v;
        struct test_store *ts = test_store_of(s);
        pthread_mutex_lock(&ts->mu);
        wait_unblocked(ts, &ts->block_update, &ts->in_update);
        ts->updates++;
        int r = ts->fail_update;
        pthread_mutex_unlock(&ts->mu);
        return r;
}

int test_store_release(struct store *s, uint64_t ino, const char *path, uint64_t fence) {
        (void)ino;
        (void)path;
        struct test_store *ts = test_store_of(s);
        pthread_mutex_lock(&ts->mu);
        ts->releases++;
        ts->last_release_fence = fence;
        pthread_mutex_unlock(&ts->mu);
        return 0;
}

static int test_store_put_dir(struct store *s, uint64_t ino, uint64_t parent, const char *name,
                              uid_t uid, gid_t gid) {
        (void)ino;
        (void)parent;
        (void)name;
        (void)uid;
        (void)gid;
        struct test_store *ts = test_store_of(s);
        pthread_mutex_lock(&ts->mu);
        int r = ts->fail_dir;
        pthread_mutex_unlock(&ts->mu);
        return r;
}

void test_store_free(struct store *s) {
        (void)s;
}

const struct store_ops test_store_ops = {
        .name = "test", .acquire = test_store_acquire, .update = test_store_update,
        .release = test_store_release, .free = test_store_free,
};

const struct store_ops test_store_ops_with_dirs = {
        .name = "test", .acquire = test_store_acquire, .update = test_store_update,
        .release = test_store_release, .put_dir = test_store_put_dir, .free = test_store_free,
};

void test_store_init(struct test_store *ts, const struct store_ops *ops) {
        *ts = (struct test_store){ .base.ops = ops };
        pthread_mutex_init(&ts->mu, NULL);
        pthread_cond_init(&ts->cond, NULL);
}

void test_store_destroy(struct test_store *ts) {
        pthread_cond_destroy(&ts->cond);
        pthread_mutex_destroy(&ts->mu);
}

void test_store_set_block(struct test_store *ts, bool *what, bool on) {
        pthread_mutex_lock(&ts->mu);
        *what = on;
        pthread_cond_broadcast(&ts->cond);
        pthread_mutex_unlock(&ts->mu);
}

void test_store_await(struct test_store *ts, unsigned *counter, unsigned n) {
        pthread_mutex_lock(&ts->mu);
        while (*counter < n)
                pthread_cond_wait(&ts->cond, &ts->mu);
        pthread_mutex_unlock(&ts->mu);
}

int take_in(struct locktable *t, uint64_t dir, const char *name, const struct caller *c,
            struct lt_handle *h) {
        struct lt_attr a;
        struct lt_handle scratch;
        return locktable_create(t, dir, name, c, O_CREAT | O_EXCL | O_WRONLY, &a,
                                h ? h : &scratch);
}

int take(struct locktable *t, const char *name, const struct caller *c, struct lt_handle *h) {
        return take_in(t, LT_INO_ROOT, name, c, h);
}

int64_t ino_of(struct locktable *t, uint64_t parent, const char *name) {
        struct lt_attr a;
        int r = locktable_lookup(t, parent, name, &a);
        if (r < 0)
                return r;
        locktable_forget(t, a.ino, 1);
        return (int64_t)a.ino;
}

int await_reapable(struct locktable *t, int timeout_ms) {
        struct pollfd p = { .fd = locktable_reaper_fd(t), .events = POLLIN };
        int r = poll(&p, 1, timeout_ms);
        return r < 0 ? -errno : r;
}
