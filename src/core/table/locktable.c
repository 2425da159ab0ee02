/* SPDX-License-Identifier: MIT */
/* The lock table's setup and its requests on names that change nothing
 * but lookups, plus create and open: lookup, forget, getattr, create,
 * open, readdir, views and metrics. See locktable.h for the contract of
 * each call; writes are in lt_write.c, changes of names in lt_names.c. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "buf.h"
#include "log.h"
#include "lt_internal.h"

/* ---- setup ------------------------------------------------------------------- */

/* The reaper's epoll set: the TTL timer and the polling timer. */
static int reaper_fds_open(struct locktable *t) {
        t->epfd = epoll_create1(EPOLL_CLOEXEC);
        t->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        t->pollfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (t->epfd < 0 || t->timerfd < 0 || t->pollfd < 0)
                return -errno;
        struct epoll_event ev = { .events = EPOLLIN, .data.u64 = TIMER_TAG };
        struct epoll_event pev = { .events = EPOLLIN, .data.u64 = POLL_TAG };
        if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->timerfd, &ev) < 0 ||
            epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->pollfd, &pev) < 0)
                return -errno;
        return 0;
}

int locktable_new(const struct locktable_config *cfg, struct store *s, struct locktable **ret) {
        struct locktable *t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->cfg = *cfg;
        t->store = s;
        t->next_ino = LT_INO_FIRST;
        t->epfd = t->timerfd = t->pollfd = -1;
        list_init(&t->all_locks);
        list_init(&t->ops);
        list_init(&t->idle);
        lt_order_init(t);
        pthread_mutex_init(&t->mu, NULL);
        pthread_mutex_init(&t->store_mu, NULL);
        pthread_cond_init(&t->settled, NULL);
        int r = -ENOMEM;
        if (htab_init(&t->inodes) < 0 || htab_init(&t->names) < 0 || htab_init(&t->holders) < 0 ||
            htab_init(&t->waiters) < 0 || htab_init(&t->uid_counts) < 0)
                goto fail;
        if ((r = reaper_fds_open(t)) < 0 || (r = lt_root_new(t)) < 0)
                goto fail;
        *ret = t;
        return 0;
fail:
        locktable_free(t);
        return r;
}

void locktable_free(struct locktable *t) {
        if (!t)
                return;
        struct list *l;
        list_for_each(l, &t->all_locks) /* unmounting: nobody waits on */
                lt_drop_waiters(t, list_entry(l, struct node, all), -ENOLCK);
        free(t->grants); /* nobody to answer at shutdown */
        t->closing = true; /* the store keeps the locks for the next daemon */
        while (!list_empty(&t->all_locks))
                lt_release(t, list_entry(t->all_locks.next, struct node, all), CAUSE_UNLINK,
                           NULL);
        lt_holders_free_idle(t);
        lt_nodes_free(t);
        htab_free(&t->holders);
        htab_free(&t->waiters);
        lt_quota_free(t);
        heap_free(&t->deadlines);
        if (t->epfd >= 0)
                close(t->epfd);
        if (t->timerfd >= 0)
                close(t->timerfd);
        if (t->pollfd >= 0)
                close(t->pollfd);
        lt_ops_free(t); /* every request flushed its own: none are left */
        free(t->late.v);
        pthread_cond_destroy(&t->settled);
        pthread_mutex_destroy(&t->store_mu);
        pthread_mutex_destroy(&t->mu);
        free(t);
}

void locktable_set_grant_fn(struct locktable *t, lt_grant_fn fn, void *ctx) {
        pthread_mutex_lock(&t->mu);
        t->grant_fn = fn;
        t->grant_ctx = ctx;
        pthread_mutex_unlock(&t->mu);
}

void locktable_set_removed_fn(struct locktable *t, lt_removed_fn fn, void *ctx) {
        pthread_mutex_lock(&t->mu);
        t->removed_fn = fn;
        t->removed_ctx = ctx;
        pthread_mutex_unlock(&t->mu);
}

/* ---- lookup and attributes ------------------------------------------------------ */

/* Lookup of name in the .lockfs directory. */
static int lookup_meta(const char *name, struct lt_attr *ret) {
        if (strcmp(name, "locks.json") == 0)
                lt_fill_meta_attr(LT_INO_META_LOCKS, ret);
        else if (strcmp(name, "metrics") == 0)
                lt_fill_meta_attr(LT_INO_META_METRICS, ret);
        else
                return -ENOENT;
        return 0;
}

int locktable_lookup(struct locktable *t, uint64_t parent, const char *name, struct lt_attr *ret) {
        if (parent == LT_INO_META_DIR)
                return lookup_meta(name, ret);
        int r = lt_name_check(name);
        if (r < 0)
                return r;
        pthread_mutex_lock(&t->mu);
        struct node *dir, *n = NULL;
        const struct node *p = lt_node_by_ino(t, parent);
        /* a directory lock holds nothing (SPEC R7.5) */
        r = p && lt_is_dirlock(p) ? -ENOENT : lt_dir_get(t, parent, &dir);
        if (r == 0 && lt_name_is_meta(dir, name)) {
                lt_fill_meta_attr(LT_INO_META_DIR, ret);
        } else if (r == 0) {
                n = lt_child_get(t, dir, name);
                while (n && n->busy) { /* exists or not: the store's answer decides */
                        lt_wait_settled(t);
                        if ((r = lt_dir_get(t, parent, &dir)) < 0)
                                break;
                        n = lt_child_get(t, dir, name);
                }
                if (r < 0) {
                } else if (n) {
                        n->nlookup++;
                        lt_fill_lock_attr(t, n, ret);
                } else {
                        r = -ENOENT;
                }
        }
        pthread_mutex_unlock(&t->mu);
        return r;
}

void locktable_forget(struct locktable *t, uint64_t ino, uint64_t count) {
        if (ino < LT_INO_FIRST)
                return;
        pthread_mutex_lock(&t->mu);
        struct node *n = lt_node_by_ino(t, ino);
        if (n) {
                n->nlookup = count > n->nlookup ? 0 : n->nlookup - count;
                lt_node_maybe_free(t, n);
        }
        pthread_mutex_unlock(&t->mu);
}

int locktable_getattr(struct locktable *t, uint64_t ino, struct lt_attr *ret) {
        if (ino == LT_INO_META_DIR || lt_ino_is_meta_file(ino)) {
                lt_fill_meta_attr(ino, ret);
                return 0;
        }
        pthread_mutex_lock(&t->mu);
        struct node *n = lt_node_by_ino(t, ino);
        if (n)
                lt_fill_lock_attr(t, n, ret);
        pthread_mutex_unlock(&t->mu);
        return n ? 0 : -ENOENT;
}

/* ---- open and create ---------------------------------------------------------------- */

/* A truncating open by the holder of n: clear the content and renew, and
 * record it (letting go of t->mu meanwhile). -EIO, the content and TTL as
 * they were, when the store refuses it. */
static int lock_truncate(struct locktable *t, struct node *n) {
        /* the bytes stay in n->content: nothing writes them while n is busy */
        uint32_t old_len = n->content_len;
        struct lt_renewal old_renewal = lt_renewal_of(n);
        n->content_len = 0;
        lt_quota_content(t, n);
        n->content_gen++;
        lt_renew(t, n);
        int doomed, r = 0;
        if (lt_record_and_wait(t, n, &doomed) < 0) {
                n->content_len = old_len;
                lt_quota_content(t, n);
                n->content_gen++;
                lt_renewal_restore(t, n, old_renewal);
                log_msg(LOG_ERR, "cannot record the truncation of %s (open refused)", n->name);
                r = -EIO;
        }
        lt_apply_doomed(t, n, doomed);
        return r;
}

/* Decide the handle an open of live lock n gives c (SPEC R2.2). A
 * truncating open by the holder waits for its record (lock_truncate).
 * Returns 0 or -EIO. */
static int lock_open(struct locktable *t, struct node *n, const struct caller *c, int flags,
                     struct lt_handle *h) {
        if ((flags & O_ACCMODE) == O_RDONLY) {
                *h = lt_handle_of(n, LT_HANDLE_READER, flags);
                return 0;
        }
        if (!lt_is_holder(n, c)) {
                *h = lt_handle_of(n, LT_HANDLE_CONTENDER, flags);
                return 0;
        }
        *h = lt_handle_of(n, LT_HANDLE_HOLDER, flags);
        return (flags & O_TRUNC) ? lock_truncate(t, n) : 0;
}

/* CREATE of name in parent under the lock, without counting a kernel
 * lookup; the lock goes to *ret. A new acquisition is answered through
 * *ret_op (then lt_acquired), else *ret_op is NULL. LT_NEED_SETTLED,
 * LT_NEED_PROC: see lt_lock_get_or_create. */
static int create_step(struct locktable *t, uint64_t parent, const char *name,
                       const struct caller *c, int flags, struct lt_prep *prep, struct node **ret,
                       struct lt_handle *ret_handle, struct lt_op **ret_op) {
        struct node *n;
        int r = lt_lock_get_or_create(t, parent, name, c, flags, prep, &n, ret_op);
        if (r != 0)
                return r;
        if (*ret_op) /* the creating handle holds, also for a detached lock */
                *ret_handle = lt_handle_of(n, lt_open_kind(flags, LT_HANDLE_HOLDER), flags);
        else
                r = lock_open(t, n, c, flags, ret_handle);
        if (r == 0)
                *ret = n;
        return r;
}

int locktable_create(struct locktable *t, uint64_t parent, const char *name,
                     const struct caller *c, int flags,
                     struct lt_attr *ret_attr, struct lt_handle *ret_handle) {
        int r = lt_name_check(name);
        if (r < 0)
                return r;
        struct lt_prep prep = { .pidfd = -1 };
        struct node *n = NULL;
        struct lt_op *op;
        for (;;) {
                pthread_mutex_lock(&t->mu);
                r = create_step(t, parent, name, c, flags, &prep, &n, ret_handle, &op);
                if (r == LT_NEED_SETTLED) {
                        lt_wait_settled(t);
                        pthread_mutex_unlock(&t->mu);
                        continue;
                }
                if (r != LT_NEED_PROC || prep.ready)
                        break;
                pthread_mutex_unlock(&t->mu);
                lt_prep_proc(&prep, &c->self); /* outside the lock */
        }
        if (r == LT_NEED_PROC)
                r = -ESRCH;
        if (r == 0) {
                n->nlookup++; /* the kernel's, once answered; holds n until then */
                lt_fill_lock_attr(t, n, ret_attr);
        }
        lt_unlock(t); /* makes the acquisition's store call */
        lt_prep_done(&prep);
        if (r < 0 || !op)
                return r;
        pthread_mutex_lock(&t->mu);
        r = lt_acquired(t, n, op, ret_handle);
        if (r == 0)
                lt_fill_lock_attr(t, n, ret_attr);
        pthread_mutex_unlock(&t->mu);
        return r;
}

int locktable_open(struct locktable *t, uint64_t ino, const struct caller *c, int flags,
                   struct lt_handle *ret) {
        pthread_mutex_lock(&t->mu);
        struct node *n;
        while ((n = lt_node_by_ino(t, ino)) && n->busy)
                lt_wait_settled(t);
        int r = 0;
        if (n && !n->linked && n->kind == LT_LOCK && !lt_is_dirlock(n)) {
                /* Released since the kernel looked it up: this open happened
                 * before the release. A writer is a contender of the old
                 * acquisition (writes: EEXIST), a reader reads nothing, and
                 * a flock through either takes or waits for the name. So an
                 * O_CREAT caller racing a release never fails (SPEC R2.3). */
                *ret = lt_handle_of(n, lt_open_kind(flags, LT_HANDLE_CONTENDER), 0);
        } else if (!n || !n->linked) {
                r = -ESTALE;
        } else if (n->kind == LT_DIR || lt_is_dirlock(n)) {
                r = -EISDIR;
        } else {
                r = lock_open(t, n, c, flags, ret);
        }
        lt_unlock(t);
        return r;
}

/* ---- listings, views, metrics --------------------------------------------------------- */

static int dirents_add(struct lt_dirent **v, size_t *n, size_t *cap, uint64_t ino,
                       enum lt_kind kind, const char *name) {
        if (array_grow(v, cap, *n + 1, sizeof(**v), 16) < 0)
                return -ENOMEM;
        char *copy = strdup(name);
        if (!copy)
                return -ENOMEM;
        (*v)[(*n)++] = (struct lt_dirent){ ino, kind, copy };
        return 0;
}

/* The listing of .lockfs. */
static int readdir_meta(struct lt_dirent **v, size_t *n, size_t *cap) {
        int r;
        if ((r = dirents_add(v, n, cap, LT_INO_META_DIR, LT_DIR, ".")) < 0 ||
            (r = dirents_add(v, n, cap, LT_INO_ROOT, LT_DIR, "..")) < 0 ||
            (r = dirents_add(v, n, cap, LT_INO_META_LOCKS, LT_META_FILE, "locks.json")) < 0 ||
            (r = dirents_add(v, n, cap, LT_INO_META_METRICS, LT_META_FILE, "metrics")) < 0)
                return r;
        return 0;
}

/* The listing of directory ino, under the lock. */
static int readdir_tree(struct locktable *t, uint64_t ino, struct lt_dirent **v, size_t *n,
                        size_t *cap) {
        struct node *dir = lt_node_by_ino(t, ino);
        int r;
        if (dir && dir->linked && lt_is_dirlock(dir)) { /* empty (SPEC R7.5) */
                if ((r = dirents_add(v, n, cap, dir->ino, LT_DIR, ".")) < 0)
                        return r;
                return dirents_add(v, n, cap, dir->parent->ino, LT_DIR, "..");
        }
        r = lt_dir_get(t, ino, &dir);
        if (r == 0)
                r = dirents_add(v, n, cap, dir->ino, LT_DIR, ".");
        if (r == 0)
                r = dirents_add(v, n, cap, dir->parent ? dir->parent->ino : dir->ino, LT_DIR,
                                "..");
        if (r == 0 && dir == t->root)
                r = dirents_add(v, n, cap, LT_INO_META_DIR, LT_DIR, LT_META_DIR_NAME);
        struct list *l;
        if (r == 0) {
                list_for_each(l, &dir->children) {
                        struct node *c = list_entry(l, struct node, sib);
                        r = dirents_add(v, n, cap, c->target ? c->target->ino : c->ino,
                                        lt_is_dirlock(c) ? LT_DIR : c->kind, c->name);
                        if (r < 0)
                                break;
                }
        }
        return r;
}

int locktable_readdir(struct locktable *t, uint64_t ino, struct lt_dirent **ret, size_t *ret_n) {
        struct lt_dirent *v = NULL;
        size_t n = 0, cap = 0;
        int r;
        if (ino == LT_INO_META_DIR) {
                r = readdir_meta(&v, &n, &cap);
        } else {
                pthread_mutex_lock(&t->mu);
                r = readdir_tree(t, ino, &v, &n, &cap);
                pthread_mutex_unlock(&t->mu);
        }
        if (r < 0) {
                lt_dirents_free(v, n);
                return r;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

int locktable_view(struct locktable *t, uint64_t ino, struct lock_view *ret) {
        pthread_mutex_lock(&t->mu);
        struct node *n = lt_node_by_ino(t, ino);
        /* a lock being handed on (fence 0 until the store answers, e.g. to
         * the next sharer, R7.3) is shown once it has its new holder */
        while (n && n->linked && n->kind == LT_LOCK && n->busy && !n->fence) {
                lt_wait_settled(t);
                n = lt_node_by_ino(t, ino);
        }
        int r = (n && n->linked && n->kind == LT_LOCK) ? lt_lock_view(n, ret) : -ENOENT;
        if (r == 0)
                ret->raw = lt_is_raw(t, n);
        pthread_mutex_unlock(&t->mu);
        return r;
}

int locktable_views(struct locktable *t, struct lock_view **ret, size_t *ret_n) {
        pthread_mutex_lock(&t->mu);
        size_t count = t->m.held, n = 0;
        struct lock_view *v = calloc(count ? count : 1, sizeof(*v));
        int r = v ? 0 : -ENOMEM;
        struct list *l;
        if (r == 0) {
                list_for_each(l, &t->all_locks) {
                        r = lt_lock_view(list_entry(l, struct node, all), &v[n]);
                        if (r < 0)
                                break;
                        n++;
                }
        }
        pthread_mutex_unlock(&t->mu);
        if (r < 0) {
                lock_views_free(v, n);
                return r;
        }
        *ret = v;
        *ret_n = n;
        return 0;
}

void locktable_metrics(struct locktable *t, struct lock_metrics *ret) {
        pthread_mutex_lock(&t->mu);
        *ret = t->m;
        pthread_mutex_unlock(&t->mu);
}

enum lt_meta_file locktable_meta_file(uint64_t ino) {
        switch (ino) {
        case LT_INO_META_LOCKS: return LT_META_LOCKS;
        case LT_INO_META_METRICS: return LT_META_METRICS;
        default: return LT_META_NONE;
        }
}

void locktable_capacity(struct locktable *t, struct lt_capacity *ret) {
        pthread_mutex_lock(&t->mu);
        ret->max_nodes = t->cfg.max_locks;
        ret->used = t->m.held + t->m.directories;
        pthread_mutex_unlock(&t->mu);
}
