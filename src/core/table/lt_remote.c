/* SPDX-License-Identifier: MIT */
/* The lock table's view of a shared store (cluster mode, SPEC R8.4): locks
 * held through other hosts' daemons appear, change and vanish as the
 * store's watch reports them; local locks the store stopped backing are
 * marked lost, and end when the store deletes them. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "lt_internal.h"

/* Copy what v says into remote lock n. */
static int remote_fill(struct node *n, const struct lock_view *v) {
        if (!n->remote) {
                n->remote = calloc(1, sizeof(*n->remote));
                if (!n->remote)
                        return -ENOMEM;
        }
        char *host = strdup(v->host ? v->host : "");
        char *cmdline = strndup(v->cmdline, sizeof(v->cmdline));
        char *content = NULL;
        if (!host || !cmdline) {
                free(host);
                free(cmdline);
                return -ENOMEM;
        }
        if (v->content_len) {
                content = malloc(v->content_len);
                if (!content) {
                        free(host);
                        free(cmdline);
                        return -ENOMEM;
                }
                memcpy(content, v->content, v->content_len);
        }
        free(n->remote->host);
        n->remote->host = host;
        n->remote->pid = v->pid;
        memcpy(n->remote->comm, v->comm, sizeof(n->remote->comm));
        free(n->remote->cmdline);
        n->remote->cmdline = cmdline;
        free(n->content);
        n->content = content;
        n->content_len = n->content_cap = v->content_len;
        lt_view_to_node(v, n);
        n->lost = false;
        return 0;
}

/* Local lock n now belongs to another host (v): its holder loses it (its
 * handles are stale: writes fail), the inode and parked flock waiters stay. */
static int lock_to_remote(struct locktable *t, struct node *n, const struct lock_view *v) {
        lt_detach_holder(t, n);
        lt_quota_uncharge(t, n);
        heap_remove(&t->deadlines, &n->deadline);
        lt_lock_refs_clear(n);
        int r = remote_fill(n, v);
        if (r == 0)
                n->remote->sync_gen = t->sync_gen;
        return r;
}

/* A new remote lock for v at path (directories made as needed). */
static int remote_insert(struct locktable *t, const struct lock_view *v) {
        struct node *dir;
        const char *name;
        int r = lt_dir_of(t, v->path, 0, 0, &dir, &name);
        if (r < 0)
                return r;
        struct node *n = lt_node_new(t, LT_LOCK, name);
        if (!n)
                return -ENOMEM;
        r = remote_fill(n, v);
        if (r < 0) {
                lt_node_maybe_free(t, n); /* never linked: freed with its record */
                return r;
        }
        n->remote->sync_gen = t->sync_gen;
        lt_node_link(t, dir, n);
        lt_lock_list_add(t, n);
        return 0;
}

/* Remote lock n is over: parked flock waiters take the name in turn, else
 * it goes. */
static void remote_end(struct locktable *t, struct node *n, struct removals *gone) {
        if (!list_empty(&n->wq) && lt_handoff(t, n))
                return;
        lt_lock_remove(t, n, gone);
}

int locktable_remote_put(struct locktable *t, const struct lock_view *v, lt_removed_fn fn,
                         void *ctx) {
        if (!v->path || !lt_remote_path_ok(v->path)) {
                log_msg(LOG_WARNING, "shared store: ignoring a lock named %s",
                        v->path ? v->path : "(none)");
                return -EINVAL;
        }
        struct removals gone = { 0 };
        int r = 0;
        pthread_mutex_lock(&t->mu);
        struct node *n = lt_node_at(t, v->path);
        while (n && n->busy) { /* our acquisition of it is with the store */
                lt_wait_settled(t);
                n = lt_node_at(t, v->path);
        }
        if (n && n->kind == LT_DIR) {
                log_msg(LOG_WARNING, "shared store: lock %s is a directory here", v->path);
                r = -EISDIR;
        } else if (n && n->kind == LT_LOCK && v->fence < n->fence) {
                r = 0; /* older than what is here: a late event */
        } else if (n && !n->remote && v->fence == n->fence) {
                r = 0; /* our own acquisition */
        } else if (n && n->remote) {
                r = remote_fill(n, v);
                if (r == 0)
                        n->remote->sync_gen = t->sync_gen;
        } else if (n) { /* our lock, taken anew elsewhere: we lost it */
                log_msg(LOG_WARNING, "lost %s (fence %llu): taken through %s (fence %llu)",
                        v->path, (unsigned long long)n->fence,
                        v->host ? v->host : "another host", (unsigned long long)v->fence);
                r = lock_to_remote(t, n, v);
        } else {
                r = remote_insert(t, v);
        }
        lt_unlock(t);
        lt_removals_report(&gone, fn, ctx);
        return r;
}

void locktable_remote_delete(struct locktable *t, const char *path, uint64_t rev,
                             lt_removed_fn fn, void *ctx) {
        struct removals gone = { 0 };
        pthread_mutex_lock(&t->mu);
        struct node *n = lt_remote_path_ok(path) ? lt_node_at(t, path) : NULL;
        while (n && n->busy) {
                lt_wait_settled(t);
                n = lt_node_at(t, path);
        }
        if (n && n->kind == LT_LOCK && n->fence < rev) {
                if (!n->remote) /* behind our back: a force-unlock elsewhere, or our lease ended */
                        log_msg(LOG_WARNING, "lost %s (fence %llu): its key was deleted", path,
                                (unsigned long long)n->fence);
                remote_end(t, n, &gone);
        }
        lt_unlock(t);
        lt_removals_report(&gone, fn, ctx);
}

bool locktable_holds(struct locktable *t, const char *path, uint64_t fence) {
        pthread_mutex_lock(&t->mu);
        struct node *n = lt_remote_path_ok(path) ? lt_node_at(t, path) : NULL;
        while (n && n->busy) { /* the answer to its create decides */
                lt_wait_settled(t);
                n = lt_node_at(t, path);
        }
        bool held = n && n->kind == LT_LOCK && !n->remote && n->fence == fence;
        pthread_mutex_unlock(&t->mu);
        return held;
}

void locktable_remote_sync_begin(struct locktable *t) {
        pthread_mutex_lock(&t->mu);
        t->sync_gen++;
        pthread_mutex_unlock(&t->mu);
}

/* Local lock n, acquired before a complete listing that did not name it. */
static bool local_unlisted(struct node *n, uint64_t rev,
                           bool (*listed)(void *lctx, const char *path), void *lctx) {
        if (n->remote || !listed || n->fence >= rev)
                return false;
        char *path = lt_node_path(n);
        bool gone = path && !listed(lctx, path);
        if (gone)
                log_msg(LOG_WARNING, "lost %s (fence %llu): its key was deleted", path,
                        (unsigned long long)n->fence);
        free(path);
        return gone;
}

void locktable_remote_sync_end(struct locktable *t, uint64_t rev,
                               bool (*listed)(void *lctx, const char *path), void *lctx,
                               lt_removed_fn fn, void *ctx) {
        struct removals gone = { 0 };
        pthread_mutex_lock(&t->mu);
        struct list *l, *next;
        list_for_each_safe(l, next, &t->all_locks) {
                struct node *n = list_entry(l, struct node, all);
                if (n->busy) /* acquired after the listing */
                        continue;
                if ((n->remote && n->remote->sync_gen != t->sync_gen) ||
                    local_unlisted(n, rev, listed, lctx))
                        remote_end(t, n, &gone);
        }
        lt_unlock(t);
        lt_removals_report(&gone, fn, ctx);
}

size_t locktable_mark_lost(struct locktable *t) {
        size_t n_lost = 0;
        pthread_mutex_lock(&t->mu);
        struct list *l;
        list_for_each(l, &t->all_locks) {
                struct node *n = list_entry(l, struct node, all);
                /* also a lock whose acquisition or write is with the store:
                 * it was made on the lease that ended (a busy node keeps
                 * the mark through its settling) */
                if (!n->remote && !n->lost) {
                        n->lost = true;
                        n_lost++;
                }
        }
        pthread_mutex_unlock(&t->mu);
        return n_lost;
}
