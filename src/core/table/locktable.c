/* SPDX-License-Identifier: MIT */
/* The lock table's tree and requests: names, directories, acquisition,
 * writes, views. See locktable.h for the contract of each call. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "lt_internal.h"
#include "status.h"

int64_t lt_now_wall_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t lt_now_mono_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void lock_view_clear(struct lock_view *v) {
        if (!v)
                return;
        free(v->path);
        free(v->content);
        for (size_t i = 0; i < v->n_aliases; i++) {
                free(v->aliases[i].name);
                free(v->aliases[i].path);
        }
        free(v->aliases);
        free(v->host);
        v->host = NULL;
        v->path = NULL;
        v->content = NULL;
        v->aliases = NULL;
        v->n_aliases = 0;
}

void lock_views_free(struct lock_view *v, size_t n) {
        for (size_t i = 0; i < n; i++)
                lock_view_clear(&v[i]);
        free(v);
}

void lt_dirents_free(struct lt_dirent *d, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(d[i].name);
        free(d);
}

/* ---- nodes and names ---------------------------------------------------- */

static uint64_t name_hash(uint64_t parent, const char *name) {
        return htab_hash_bytes(htab_hash_u64(parent), name, strlen(name));
}

struct node *lt_node_by_ino(struct locktable *t, uint64_t ino) {
        uint64_t h = htab_hash_u64(ino);
        for (struct hlink *l = htab_chain(&t->inodes, h); l; l = l->next) {
                struct node *n = container_of(l, struct node, by_ino);
                if (n->ino == ino)
                        return n;
        }
        return NULL;
}

/* The node named name in dir, as stored: possibly an alias (second name). */
struct node *lt_name_get(struct locktable *t, const struct node *dir, const char *name) {
        uint64_t h = name_hash(dir->ino, name);
        for (struct hlink *l = htab_chain(&t->names, h); l; l = l->next) {
                if (l->hash != h)
                        continue;
                struct node *n = container_of(l, struct node, by_name);
                if (n->parent == dir && strcmp(n->name, name) == 0)
                        return n;
        }
        return NULL;
}

/* The directory or lock named name in dir (an alias resolves to its lock). */
static struct node *child_get(struct locktable *t, const struct node *dir, const char *name) {
        struct node *n = lt_name_get(t, dir, name);
        return n && n->target ? n->target : n;
}

void lt_node_link(struct locktable *t, struct node *dir, struct node *n) {
        n->parent = dir;
        n->parent_was = dir->ino;
        n->linked = true;
        dir->n_children++;
        n->sib_prev = NULL;
        n->sib_next = dir->children;
        if (dir->children)
                dir->children->sib_prev = n;
        dir->children = n;
        htab_insert(&t->names, &n->by_name, name_hash(dir->ino, n->name));
}

void lt_node_unlink(struct locktable *t, struct node *n) {
        struct node *dir = n->parent;
        htab_remove(&t->names, &n->by_name);
        dir->n_children--;
        if (n->sib_prev)
                n->sib_prev->sib_next = n->sib_next;
        else
                dir->children = n->sib_next;
        if (n->sib_next)
                n->sib_next->sib_prev = n->sib_prev;
        n->sib_prev = n->sib_next = NULL;
        n->parent = NULL;
        n->linked = false;
}

static void node_destroy(struct node *n) {
        free(n->name);
        free(n->content);
        free(n);
}

static void node_free(struct locktable *t, struct node *n) {
        htab_remove(&t->inodes, &n->by_ino);
        node_destroy(n);
}

/* Free n when it is out of the tree and the kernel forgot it. */
void lt_node_maybe_free(struct locktable *t, struct node *n) {
        if (!n->linked && n->nlookup == 0 && n != t->root)
                node_free(t, n);
}

struct node *lt_node_new(struct locktable *t, enum lt_kind kind, const char *name) {
        struct node *n = calloc(1, sizeof(*n));
        if (!n)
                return NULL;
        n->name = strdup(name);
        if (!n->name) {
                free(n);
                return NULL;
        }
        n->kind = kind;
        n->ino = t->next_ino++;
        n->ctime_ms = lt_now_wall_ms();
        heap_entry_init(&n->deadline);
        htab_insert(&t->inodes, &n->by_ino, htab_hash_u64(n->ino));
        return n;
}

static unsigned node_depth(const struct node *n) {
        unsigned d = 0;
        for (; n && n->parent; n = n->parent)
                d++;
        return d;
}

/* "/a/b/name" of a linked node; NULL on allocation failure. */
char *lt_node_path(const struct node *n) {
        size_t len = 0;
        for (const struct node *p = n; p->parent; p = p->parent)
                len += strlen(p->name) + 1;
        char *s = malloc(len ? len + 1 : 2);
        if (!s)
                return NULL;
        if (!len)
                return strcpy(s, "/");
        s[len] = '\0';
        for (const struct node *p = n; p->parent; p = p->parent) {
                size_t l = strlen(p->name);
                len -= l;
                memcpy(s + len, p->name, l);
                s[--len] = '/';
        }
        return s;
}

static bool name_is_meta(const struct node *dir, const char *name) {
        return dir->ino == LT_INO_ROOT && strcmp(name, LT_META_DIR_NAME) == 0;
}

static bool ino_is_meta_file(uint64_t ino) {
        return ino == LT_INO_META_LOCKS || ino == LT_INO_META_METRICS;
}

/* The directory parent, or -ENOENT/-ENOTDIR/-EACCES (inside .lockfs). */
static int dir_get(struct locktable *t, uint64_t ino, struct node **ret) {
        if (ino == LT_INO_META_DIR)
                return -EACCES;
        if (ino_is_meta_file(ino))
                return -ENOTDIR;
        struct node *d = lt_node_by_ino(t, ino);
        if (!d || (!d->linked && d != t->root))
                return -ENOENT;
        if (d->kind != LT_DIR)
                return -ENOTDIR;
        *ret = d;
        return 0;
}

/* The directory parent for removing name from it: -EACCES for .lockfs. */
static int dir_for_removal(struct locktable *t, uint64_t parent, const char *name,
                           struct node **ret) {
        int r = dir_get(t, parent, ret);
        if (r == 0 && name_is_meta(*ret, name))
                r = -EACCES;
        return r;
}

static int name_check(const char *name) {
        size_t len = strlen(name);
        if (len == 0)
                return -ENOENT;
        if (len > LT_NAME_MAX)
                return -ENAMETOOLONG;
        return 0;
}

/* Checks for a new node named name in dir: -ENAMETOOLONG, -ENOSPC. */
static int room_check(struct locktable *t, const struct node *dir, const char *name) {
        int r = name_check(name);
        if (r < 0)
                return r;
        if (t->cfg.max_depth && node_depth(dir) + 1 > t->cfg.max_depth)
                return -ENAMETOOLONG;
        if (t->cfg.max_locks && t->n_nodes >= t->cfg.max_locks)
                return -ENOSPC;
        return 0;
}

static void fill_attr(const struct node *n, struct lt_attr *a) {
        bool live = n->linked || n->ino == LT_INO_ROOT;
        *a = (struct lt_attr){
                .ino = n->ino,
                .kind = n->kind,
                .uid = n->uid,
                .gid = n->gid,
                .ctime_ms = n->ctime_ms,
        };
        if (n->kind == LT_DIR) {
                a->mode = S_IFDIR | 01777;
                a->nlink = live ? 2 : 0;
                a->mtime_ms = n->ctime_ms;
        } else {
                a->mode = S_IFREG | 0644;
                a->nlink = live ? 1 + n->n_aliases : 0;
                a->mtime_ms = n->renewed_ms;
        }
}

static void fill_meta_attr(uint64_t ino, struct lt_attr *a) {
        *a = (struct lt_attr){ .ino = ino, .mtime_ms = lt_now_wall_ms() };
        a->ctime_ms = a->mtime_ms;
        if (ino == LT_INO_META_DIR) {
                a->kind = LT_DIR;
                a->mode = S_IFDIR | 0555;
                a->nlink = 2;
        } else {
                a->kind = LT_META_FILE;
                a->mode = S_IFREG | 0444;
                a->nlink = 1;
        }
}

/* ---- views and the store ------------------------------------------------- */

/* Fill v from lock n; content copied only when with_content. */
static int lock_view_fill(const struct node *n, struct lock_view *v, bool with_content) {
        *v = (struct lock_view){
                .ino = n->ino,
                .fence = n->fence,
                .how = n->how,
                .detached = n->holder == NULL,
                .liveness_known = n->liveness_known,
                .uid = n->uid,
                .gid = n->gid,
                .acquired_at_ms = n->acquired_ms,
                .renewed_at_ms = n->renewed_ms,
                .ttl_s = n->ttl_s,
                .expires_at_ms = n->renewed_ms + (int64_t)n->ttl_s * 1000,
                .claim_ignored_pid = n->claim_ignored_pid,
        };
        if (n->holder) {
                v->pid = n->holder->proc.pid;
                memcpy(v->comm, n->holder->comm, sizeof(v->comm));
                snprintf(v->cmdline, sizeof(v->cmdline), "%s", n->holder->cmdline);
        } else if (n->remote) {
                v->detached = false;
                v->pid = n->remote->pid;
                memcpy(v->comm, n->remote->comm, sizeof(v->comm));
                snprintf(v->cmdline, sizeof(v->cmdline), "%s", n->remote->cmdline);
                v->host = strdup(n->remote->host);
                if (!v->host)
                        return -ENOMEM;
        }
        v->lost = n->lost;
        v->path = lt_node_path(n);
        if (!v->path) {
                lock_view_clear(v);
                return -ENOMEM;
        }
        if (with_content && n->content_len) {
                v->content = malloc(n->content_len);
                if (!v->content) {
                        lock_view_clear(v);
                        return -ENOMEM;
                }
                memcpy(v->content, n->content, n->content_len);
                v->content_len = n->content_len;
        }
        return 0;
}

int lt_lock_view(const struct node *n, struct lock_view *v) {
        return lock_view_fill(n, v, true);
}

/* Add what persistent stores need to v, a view of n: parent, holder start
 * time, deadline and the other names. */
static int store_view_extend(const struct node *n, struct lock_view *v) {
        v->parent_ino = n->parent ? n->parent->ino : 0;
        v->start_time = n->holder ? n->holder->proc.start_time : 0;
        v->deadline_mono_ms = lt_deadline_key(n);
        if (!n->n_aliases)
                return 0;
        v->aliases = calloc(n->n_aliases, sizeof(*v->aliases));
        if (!v->aliases)
                return -ENOMEM;
        for (const struct node *a = n->aliases; a; a = a->alias_next) {
                struct lock_alias *la = &v->aliases[v->n_aliases];
                la->parent_ino = a->parent->ino;
                la->name = strdup(a->name);
                if (!la->name)
                        return -ENOMEM;
                v->n_aliases++;
        }
        return 0;
}

void lt_lock_set_from_view(struct node *n, const struct lock_view *v) {
        n->fence = v->fence;
        n->how = v->how;
        n->liveness_known = v->liveness_known;
        n->acquired_ms = v->acquired_at_ms;
        n->renewed_ms = v->renewed_at_ms;
        n->ttl_s = v->ttl_s;
        n->claim_ignored_pid = v->claim_ignored_pid;
}

int lt_store_view(const struct node *n, struct lock_view *v) {
        int r = lock_view_fill(n, v, true);
        if (r == 0 && (r = store_view_extend(n, v)) < 0)
                lock_view_clear(v);
        return r;
}

/* Queue the new state of lock n for the store; a failure is logged, not
 * fatal (a persistent store rewrites its journal at its next change). */
void lt_store_update(struct locktable *t, const struct node *n) {
        lt_op_update(t, n);
}

/* ---- acquisition and release ---------------------------------------------- */

/* The view of n as c would hold it after a new acquisition: v->fence is
 * the acquisition it replaces (0 for a new name). */
static int acquisition_view(struct locktable *t, const struct node *n, const struct caller *c,
                            const struct holder *h, enum lock_how how, int64_t now,
                            struct lock_view *v) {
        int r = lock_view_fill(n, v, false);
        if (r == 0)
                r = store_view_extend(n, v);
        if (r < 0) {
                lock_view_clear(v);
                return r;
        }
        v->detached = h == NULL;
        v->liveness_known = h != NULL;
        v->how = h ? how : LOCK_HOW_DETACHED;
        v->pid = h ? h->proc.pid : 0;
        v->start_time = h ? h->proc.start_time : 0;
        v->uid = c->uid; /* the requester's, whoever's record h was made by */
        v->gid = c->gid;
        if (h) {
                memcpy(v->comm, h->comm, sizeof(v->comm));
                snprintf(v->cmdline, sizeof(v->cmdline), "%s", h->cmdline);
        }
        v->acquired_at_ms = v->renewed_at_ms = now;
        v->ttl_s = t->cfg.default_ttl_s;
        v->expires_at_ms = now + (int64_t)v->ttl_s * 1000;
        v->deadline_mono_ms = v->ttl_s ? lt_now_mono_ms() + (int64_t)v->ttl_s * 1000 : 0;
        v->claim_ignored_pid = 0;
        v->lost = false;
        return 0;
}

int lt_take(struct locktable *t, struct node *n, const struct caller *c, enum lock_how how,
            struct lt_prep *prep, lt_op_done_fn done, void *arg, bool waited,
            struct lt_op **ret) {
        struct holder *h = NULL;
        int r = c->self.pid ? lt_holder_ref(t, c, prep, &h) : 0;
        if (r == 0)
                r = lt_quota_check(t, n, c->uid);
        struct lock_view v;
        int64_t now = lt_now_wall_ms();
        if (r == 0)
                r = acquisition_view(t, n, c, h, how, now, &v);
        if (r == 0 && (r = lt_op_acquire(t, &v, done, arg, waited, ret)) < 0)
                lock_view_clear(&v);
        if (r != 0) {
                if (h)
                        lt_holder_unref(t, h);
                return r;
        }
        lt_detach_holder(t, n);
        if (h)
                lt_attach_holder(n, h);
        n->uid = c->uid;
        n->gid = c->gid;
        /* exactly the state the store is asked to record */
        n->how = h ? how : LOCK_HOW_DETACHED;
        n->liveness_known = h != NULL;
        n->fence = 0; /* no handle of the old acquisition is valid now */
        n->acquired_ms = n->renewed_ms = now;
        n->ttl_s = t->cfg.default_ttl_s;
        n->content_len = 0;
        n->content_gen++;
        n->claim_ignored_pid = 0;
        n->flock_owner = 0;
        lt_remote_free(n); /* a flock waiter took over another host's lock */
        n->lost = false;
        n->busy = true;
        n->doomed = 0;
        heap_remove(&t->deadlines, &n->deadline);
        lt_quota_charge(t, n);
        return 0;
}

int lt_take_settle(struct locktable *t, struct node *n, struct lt_op *op) {
        n->busy = false;
        if (op->err < 0) {
                lt_detach_holder(t, n);
                lt_quota_uncharge(t, n);
                n->doomed = 0;
                return op->err;
        }
        n->fence = op->fence;
        t->m.acquired++;
        if (log_enabled(LOG_DEBUG)) {
                char *path = lt_node_path(n);
                log_debug("acquired %s (fence %llu) by pid %d uid %u", path ? path : n->name,
                          (unsigned long long)n->fence, n->holder ? (int)n->holder->proc.pid : 0,
                          (unsigned)n->uid);
                free(path);
        }
        lt_set_deadline(t, n, op->view.deadline_mono_ms);
        if (n->doomed) { /* released while the store was asked */
                enum release_cause cause = (enum release_cause)(n->doomed - 1);
                n->doomed = 0;
                lt_release(t, n, cause, &t->late);
        }
        return 0;
}

void lt_create_done(struct locktable *t, struct lt_op *op) {
        struct node *n = op->arg;
        if (lt_take_settle(t, n, op) < 0)
                lt_lock_remove(t, n, &t->late); /* others may have looked it up */
}

/* Create lock name in dir for caller c; the acquisition is answered
 * through *ret_op (see lt_take). */
static int lock_acquire(struct locktable *t, struct node *dir, const char *name,
                        const struct caller *c, struct lt_prep *prep, struct node **ret,
                        struct lt_op **ret_op) {
        if (dir->renaming)
                return LT_NEED_SETTLED; /* a refused rename must find its name free */
        int r = room_check(t, dir, name);
        if (r < 0)
                return r;
        struct node *n = lt_node_new(t, LT_LOCK, name);
        if (!n)
                return -ENOMEM;
        lt_node_link(t, dir, n);
        struct lt_op *op;
        r = lt_take(t, n, c, LOCK_HOW_CREATOR, prep, lt_create_done, n, true, &op);
        if (r != 0) {
                lt_node_unlink(t, n);
                node_free(t, n);
                return r;
        }
        lt_lock_list_add(t, n);
        *ret = n;
        *ret_op = op;
        return 0;
}

void lt_lock_list_add(struct locktable *t, struct node *n) {
        n->all_next = t->all_locks;
        if (t->all_locks)
                t->all_locks->all_prev = n;
        t->all_locks = n;
        lt_order_add(t, n);
        t->n_nodes++;
        t->m.held++;
}


/* ---- public: setup --------------------------------------------------------- */

int locktable_new(const struct locktable_config *cfg, struct store *s, struct locktable **ret) {
        struct locktable *t = calloc(1, sizeof(*t));
        if (!t)
                return -ENOMEM;
        t->cfg = *cfg;
        t->store = s;
        t->next_ino = LT_INO_FIRST;
        t->epfd = t->timerfd = t->pollfd = -1;
        lt_order_init(t);
        pthread_mutex_init(&t->mu, NULL);
        pthread_mutex_init(&t->store_mu, NULL);
        pthread_cond_init(&t->settled, NULL);
        int r = -ENOMEM;
        if (htab_init(&t->inodes) < 0 || htab_init(&t->names) < 0 || htab_init(&t->holders) < 0 ||
            htab_init(&t->waiters) < 0 || htab_init(&t->uid_counts) < 0)
                goto fail;
        t->epfd = epoll_create1(EPOLL_CLOEXEC);
        t->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        t->pollfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (t->epfd < 0 || t->timerfd < 0 || t->pollfd < 0) {
                r = -errno;
                goto fail;
        }
        struct epoll_event ev = { .events = EPOLLIN, .data.u64 = TIMER_TAG };
        struct epoll_event pev = { .events = EPOLLIN, .data.u64 = POLL_TAG };
        if (epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->timerfd, &ev) < 0 ||
            epoll_ctl(t->epfd, EPOLL_CTL_ADD, t->pollfd, &pev) < 0) {
                r = -errno;
                goto fail;
        }
        t->root = calloc(1, sizeof(*t->root));
        if (!t->root || !(t->root->name = strdup("")))
                goto fail;
        t->root->ino = LT_INO_ROOT;
        t->root->kind = LT_DIR;
        t->root->ctime_ms = lt_now_wall_ms();
        heap_entry_init(&t->root->deadline);
        htab_insert(&t->inodes, &t->root->by_ino, htab_hash_u64(LT_INO_ROOT));
        *ret = t;
        return 0;
fail:
        locktable_free(t);
        return r;
}

void locktable_free(struct locktable *t) {
        if (!t)
                return;
        for (struct node *n = t->all_locks; n; n = n->all_next)
                lt_drop_waiters(t, n, -ENOLCK); /* unmounting: nobody waits on */
        free(t->grants); /* nobody to answer at shutdown */
        t->closing = true; /* the store keeps the locks for the next daemon */
        while (t->all_locks)
                lt_release(t, t->all_locks, CAUSE_UNLINK, NULL);
        while (t->idle_head)
                lt_holder_forget_idle(t, t->idle_head);
        if (t->inodes.buckets) {
                for (size_t i = 0; i <= t->inodes.mask; i++) {
                        struct hlink *l = t->inodes.buckets[i];
                        while (l) {
                                struct hlink *next = l->next;
                                node_destroy(container_of(l, struct node, by_ino));
                                l = next;
                        }
                }
        } else if (t->root) {
                free(t->root->name);
                free(t->root);
        }
        htab_free(&t->inodes);
        htab_free(&t->names);
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
        while (t->ops_head) { /* every request flushed its own: none are left */
                struct lt_op *op = t->ops_head;
                t->ops_head = op->next;
                lt_op_free(op);
        }
        free(t->late.v);
        pthread_cond_destroy(&t->settled);
        pthread_mutex_destroy(&t->store_mu);
        pthread_mutex_destroy(&t->mu);
        free(t);
}

/* ---- public: lookup and attributes ----------------------------------------- */

int locktable_lookup(struct locktable *t, uint64_t parent, const char *name, struct lt_attr *ret) {
        if (parent == LT_INO_META_DIR) {
                if (strcmp(name, "locks.json") == 0)
                        fill_meta_attr(LT_INO_META_LOCKS, ret);
                else if (strcmp(name, "metrics") == 0)
                        fill_meta_attr(LT_INO_META_METRICS, ret);
                else
                        return -ENOENT;
                return 0;
        }
        int r = name_check(name);
        if (r < 0)
                return r;
        pthread_mutex_lock(&t->mu);
        struct node *dir, *n = NULL;
        r = dir_get(t, parent, &dir);
        if (r == 0 && name_is_meta(dir, name)) {
                fill_meta_attr(LT_INO_META_DIR, ret);
        } else if (r == 0) {
                n = child_get(t, dir, name);
                while (n && n->busy) { /* exists or not: the store's answer decides */
                        lt_wait_settled(t);
                        if ((r = dir_get(t, parent, &dir)) < 0)
                                break;
                        n = child_get(t, dir, name);
                }
                if (r < 0) {
                } else if (n) {
                        n->nlookup++;
                        fill_attr(n, ret);
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
        if (ino == LT_INO_META_DIR || ino_is_meta_file(ino)) {
                fill_meta_attr(ino, ret);
                return 0;
        }
        pthread_mutex_lock(&t->mu);
        struct node *n = lt_node_by_ino(t, ino);
        if (n)
                fill_attr(n, ret);
        pthread_mutex_unlock(&t->mu);
        return n ? 0 : -ENOENT;
}

/* Record n's new state (a lock's record, a directory's entry) and wait
 * for the store's answer, n busy meanwhile so that nothing else changes it
 * (releases are deferred to *ret_doomed, 1 + cause, 0 for none; the caller
 * applies it once it has committed or rolled back). Expects t->mu held and
 * returns with it held, letting go of it meanwhile; the kernel holds n (and
 * the directories of the request) for the request's duration. Returns 0 or
 * the store's -errno. */
static int await_record(struct locktable *t, struct node *n, struct lt_op *op,
                        int *ret_doomed);

static int record_and_wait(struct locktable *t, struct node *n, int *ret_doomed) {
        struct lt_op *op = n->kind == LT_LOCK ? lt_op_update(t, n)
                                              : lt_op_put_dir(t, n, NULL, NULL);
        return await_record(t, n, op, ret_doomed);
}

/* The waiting half of record_and_wait(), for op (queued for n, or NULL:
 * nothing to record). */
static int await_record(struct locktable *t, struct node *n, struct lt_op *op,
                        int *ret_doomed) {
        *ret_doomed = 0;
        if (!op)
                return 0; /* nothing to record (or no memory, logged) */
        op->waited = true;
        n->busy = true;
        n->doomed = 0;
        lt_unlock(t); /* makes the call: ours is queued */
        pthread_mutex_lock(&t->mu);
        int r = op->err;
        lt_op_free(op);
        n->busy = false;
        *ret_doomed = n->doomed;
        n->doomed = 0;
        pthread_cond_broadcast(&t->settled);
        return r;
}

/* Apply a release deferred by record_and_wait(). */
static void apply_doomed(struct locktable *t, struct node *n, int doomed) {
        if (doomed && n->linked && n->kind == LT_LOCK)
                lt_release(t, n, (enum release_cause)(doomed - 1), &t->late);
}

/* ---- public: open, create, write, setattr ---------------------------------- */

/* Decide the handle an open of live lock n gives c (SPEC R2.2). A
 * truncating open by the holder waits for its record (the mutex is let go
 * meanwhile) and fails with -EIO, the content and TTL as they were, when
 * the store refuses it. Returns 0 or -EIO. */
static int lock_open(struct locktable *t, struct node *n, const struct caller *c, int flags,
                     struct lt_handle *h) {
        *h = (struct lt_handle){ .ino = n->ino, .fence = n->fence,
                                 .append = (flags & O_APPEND) != 0 };
        if ((flags & O_ACCMODE) == O_RDONLY) {
                h->kind = LT_HANDLE_READER;
                return 0;
        }
        if (!lt_is_holder(n, c)) {
                h->kind = LT_HANDLE_CONTENDER;
                return 0;
        }
        h->kind = LT_HANDLE_HOLDER;
        if (!(flags & O_TRUNC))
                return 0;
        /* the bytes stay in n->content: nothing writes them while n is busy */
        uint32_t old_len = n->content_len;
        struct lt_renewal old_renewal = lt_renewal_of(n);
        n->content_len = 0;
        lt_quota_content(t, n);
        n->content_gen++;
        lt_renew(t, n);
        int doomed, r = 0;
        if (record_and_wait(t, n, &doomed) < 0) {
                n->content_len = old_len;
                lt_quota_content(t, n);
                n->content_gen++;
                lt_renewal_restore(t, n, old_renewal);
                log_msg(LOG_ERR, "cannot record the truncation of %s (open refused)", n->name);
                r = -EIO;
        }
        apply_doomed(t, n, doomed);
        return r;
}

int lt_create(struct locktable *t, uint64_t parent, const char *name, const struct caller *c,
              int flags, struct lt_prep *prep, struct node **ret, struct lt_handle *ret_handle,
              struct lt_op **ret_op) {
        struct node *dir, *n;
        *ret_op = NULL;
        int r = dir_get(t, parent, &dir);
        if (r < 0)
                return r;
        if (name_is_meta(dir, name))
                return -EEXIST;
        n = child_get(t, dir, name);
        if (n && n->kind == LT_DIR) {
                r = (flags & O_EXCL) ? -EEXIST : -EISDIR;
        } else if (n && (flags & O_EXCL)) {
                t->m.contended++; /* also while its acquisition is with the store */
                r = -EEXIST;
        } else if (n && n->busy) {
                return LT_NEED_SETTLED;
        } else if (n) {
                r = lock_open(t, n, c, flags, ret_handle);
        } else {
                r = lock_acquire(t, dir, name, c, prep, &n, ret_op);
                if (r == 0) /* the creating handle holds, also for a detached lock */
                        *ret_handle = (struct lt_handle){
                                .kind = (flags & O_ACCMODE) == O_RDONLY ? LT_HANDLE_READER
                                                                        : LT_HANDLE_HOLDER,
                                .ino = n->ino,
                                .append = (flags & O_APPEND) != 0 };
        }
        if (r == 0)
                *ret = n;
        return r;
}

int lt_acquired(struct locktable *t, struct node *n, struct lt_op *op, struct lt_handle *h) {
        int r = op->err;
        if (r == 0)
                h->fence = op->fence;
        lt_op_free(op);
        if (r < 0) {
                n->nlookup--;
                lt_node_maybe_free(t, n);
        }
        return r;
}

int locktable_create(struct locktable *t, uint64_t parent, const char *name,
                     const struct caller *c, int flags,
                     struct lt_attr *ret_attr, struct lt_handle *ret_handle) {
        int r = name_check(name);
        if (r < 0)
                return r;
        struct lt_prep prep = { .pidfd = -1 };
        struct node *n;
        struct lt_op *op;
        for (;;) {
                pthread_mutex_lock(&t->mu);
                r = lt_create(t, parent, name, c, flags, &prep, &n, ret_handle, &op);
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
                fill_attr(n, ret_attr);
        }
        lt_unlock(t); /* makes the acquisition's store call */
        lt_prep_done(&prep);
        if (r < 0 || !op)
                return r;
        pthread_mutex_lock(&t->mu);
        r = lt_acquired(t, n, op, ret_handle);
        if (r == 0)
                fill_attr(n, ret_attr);
        pthread_mutex_unlock(&t->mu);
        return r;
}

int locktable_open(struct locktable *t, uint64_t ino, const struct caller *c, int flags,
                   struct lt_handle *ret) {
        pthread_mutex_lock(&t->mu);
        struct node *n;
        int r;
again:
        n = lt_node_by_ino(t, ino);
        r = 0;
        if (n && n->busy) {
                lt_wait_settled(t);
                goto again;
        }
        if (n && !n->linked && n->kind == LT_LOCK) {
                /* Released since the kernel looked it up: this open happened
                 * before the release. A writer is a contender of the old
                 * acquisition (writes: EEXIST), a reader reads nothing, and
                 * a flock through either takes or waits for the name. So an
                 * O_CREAT caller racing a release never fails (SPEC R2.3). */
                *ret = (struct lt_handle){
                        .kind = (flags & O_ACCMODE) == O_RDONLY ? LT_HANDLE_READER
                                                                : LT_HANDLE_CONTENDER,
                        .ino = n->ino, .fence = n->fence };
        } else if (!n || !n->linked) {
                r = -ESTALE;
        } else if (n->kind == LT_DIR) {
                r = -EISDIR;
        } else {
                r = lock_open(t, n, c, flags, ret);
        }
        lt_unlock(t);
        return r;
}

/* Live lock behind handle h whose acquisition is still h's, or NULL. */
static struct node *handle_lock(struct locktable *t, const struct lt_handle *h) {
        struct node *n = lt_node_by_ino(t, h->ino);
        if (!n || !n->linked || n->kind != LT_LOCK || n->fence != h->fence)
                return NULL;
        return n;
}

static int content_resize(struct node *n, size_t len) {
        if (len > n->content_cap) {
                size_t cap = n->content_cap ? n->content_cap : 64;
                while (cap < len)
                        cap *= 2;
                char *p = realloc(n->content, cap);
                if (!p)
                        return -ENOMEM;
                n->content = p;
                n->content_cap = cap;
        }
        if (len > n->content_len)
                memset(n->content + n->content_len, 0, len - n->content_len);
        n->content_len = len;
        return 0;
}


/* A write's new content, made under the lock from the content it saw
 * (gen), its claim and TTL parsed outside the lock, and what a failed
 * store call restores (nothing is left half-recorded). */
struct write_state {
        char *content;           /* the new content, malloc'd */
        size_t len;
        uint64_t gen;            /* n->content_gen it was made from */
        struct lt_claim claim;
        bool has_claim;
        bool ttl_set;
        uint32_t ttl_s;
        struct lt_prep self_prep;
        /* the rollback, read by the op's done() */
        struct node *n;
        uint64_t fence;
        char *old_content;
        uint32_t old_len, old_cap, old_ttl_s;
        pid_t old_claim_ignored;
        struct holder *old_holder; /* a reference */
        enum lock_how old_how;
        bool old_liveness;
        uid_t old_uid;
        gid_t old_gid;
        struct lt_renewal old_renewal;
};

/* The store's answer to a write. The lock was busy while the store was
 * asked (nothing else changed it, releases were deferred). Refused: the
 * lock goes back to what it was, holder, uid, TTL and deadline included; if
 * that holder died meanwhile, the lock is released as its death would have
 * released it. A release deferred meanwhile happens now (a TTL that ran
 * out meanwhile ran out after the renewal too), except one due to the death
 * of a claimed process the refusal undid. */
static void write_done(struct locktable *t, struct lt_op *op) {
        struct write_state *w = op->arg;
        struct node *n = w->n;
        int doomed = n->doomed;
        n->busy = false;
        n->doomed = 0;
        if (op->err < 0 && n->linked) {
                free(n->content);
                n->content = w->old_content;
                n->content_len = w->old_len;
                n->content_cap = w->old_cap;
                w->old_content = NULL;
                lt_quota_content(t, n);
                n->ttl_s = w->old_ttl_s;
                n->claim_ignored_pid = w->old_claim_ignored;
                lt_renewal_restore(t, n, w->old_renewal);
                if (n->holder != w->old_holder) {
                        lt_detach_holder(t, n);
                        if (doomed == 1 + CAUSE_EXIT)
                                doomed = 0; /* the claimed process's death */
                        if (w->old_holder && !w->old_holder->dead &&
                            !lt_holder_dead(w->old_holder)) {
                                w->old_holder->refs++;
                                lt_attach_holder(n, w->old_holder);
                        } else if (w->old_holder) {
                                doomed = 1 + CAUSE_EXIT;
                        }
                        n->how = w->old_how;
                        n->liveness_known = w->old_liveness;
                }
                n->uid = w->old_uid;
                n->gid = w->old_gid;
                n->content_gen++;
                log_msg(LOG_ERR, "cannot record the content of %s: %s (write refused)",
                        op->view.path ? op->view.path : n->name, strerror(-op->err));
        }
        if (doomed && n->linked)
                lt_release(t, n, (enum release_cause)(doomed - 1), &t->late);
        free(w->old_content);
        w->old_content = NULL;
        if (w->old_holder)
                lt_holder_unref(t, w->old_holder);
        w->old_holder = NULL;
        n->nlookup--; /* pinned by the write */
        lt_node_maybe_free(t, n);
}

/* Step of a write under the lock. 0 when the write is done (its store
 * call queued in *ret_op), LT_NEED_PARSE when w->content must be parsed
 * outside the lock first, LT_NEED_PROC / LT_NEED_SETTLED, or -errno. */
#define LT_NEED_PARSE 4
static int write_step(struct locktable *t, const struct lt_handle *h, const struct caller *c,
                      off_t off, const void *buf, size_t size, struct write_state *w,
                      struct lt_op **ret_op) {
        struct node *n = handle_lock(t, h);
        if (n && n->busy)
                return LT_NEED_SETTLED;
        if (!n || h->kind != LT_HANDLE_HOLDER || c->uid != n->uid) {
                /* a holder's descriptor in another user's hands contends */
                t->m.contended++;
                return -EEXIST;
        }
        if (w->content && w->gen != n->content_gen) { /* changed meanwhile: again */
                free(w->content);
                w->content = NULL;
        }
        if (!w->content) {
                if (h->append)
                        off = (off_t)n->content_len;
                if (off < 0 || (uint64_t)off + size > t->cfg.max_content)
                        return -EFBIG;
                size_t end = (size_t)off + size;
                w->len = end > n->content_len ? end : n->content_len;
                w->content = calloc(1, w->len ? w->len : 1);
                if (!w->content)
                        return -ENOMEM;
                if (n->content_len)
                        memcpy(w->content, n->content, n->content_len);
                memcpy(w->content + off, buf, size);
                w->gen = n->content_gen;
                return LT_NEED_PARSE;
        }
        int qr = lt_quota_content_check(t, n, w->len);
        if (qr < 0)
                return qr; /* the old content stays */
        struct holder *old = n->holder;
        enum lock_how old_how = n->how;
        bool old_liveness = n->liveness_known;
        if (old)
                old->refs++; /* kept for a rollback */
        if (w->has_claim) {
                int r = lt_apply_claim(t, n, c, &w->claim, &w->self_prep);
                if (r != 0) {
                        if (old)
                                lt_holder_unref(t, old);
                        return r;
                }
        }
        w->n = n;
        w->fence = n->fence;
        w->old_content = n->content;
        w->old_len = n->content_len;
        w->old_cap = n->content_cap;
        w->old_ttl_s = n->ttl_s;
        w->old_claim_ignored = n->claim_ignored_pid;
        w->old_holder = old;
        w->old_how = old_how;
        w->old_liveness = old_liveness;
        w->old_uid = n->uid;
        w->old_gid = n->gid;
        w->old_renewal = lt_renewal_of(n);
        n->content = w->content;
        n->content_len = n->content_cap = (uint32_t)w->len;
        lt_quota_content(t, n);
        w->content = NULL;
        n->content_gen++;
        if (w->ttl_set)
                n->ttl_s = w->ttl_s;
        lt_renew(t, n);
        struct lt_op *op = lt_op_update(t, n);
        if (op) {
                op->done = write_done;
                op->arg = w;
                op->waited = true;
                n->nlookup++; /* pins n for write_done */
                n->busy = true; /* until the store answers; releases wait too */
                n->doomed = 0;
        } else { /* nothing to record (or no memory, logged) */
                free(w->old_content);
                w->old_content = NULL;
                if (old)
                        lt_holder_unref(t, old);
                w->old_holder = NULL;
        }
        *ret_op = op;
        return 0;
}

ssize_t locktable_write(struct locktable *t, const struct lt_handle *h, const struct caller *c,
                        off_t off, const void *buf, size_t size) {
        struct write_state w = { .self_prep = { .pidfd = -1 } };
        struct lt_op *op = NULL;
        int r;
        pthread_mutex_lock(&t->mu);
        for (;;) {
                r = write_step(t, h, c, off, buf, size, &w, &op);
                if (r == LT_NEED_SETTLED) {
                        lt_wait_settled(t);
                        continue;
                }
                if (r != LT_NEED_PARSE && r != LT_NEED_PROC)
                        break;
                pthread_mutex_unlock(&t->mu);
                if (r == LT_NEED_PARSE) {
                        struct content_claim cc = status_parse_claim(w.content, w.len);
                        if (w.has_claim)
                                lt_claim_done(&w.claim);
                        w.has_claim = cc.has_pid;
                        if (cc.has_pid) /* /proc of the claimed process, unlocked */
                                lt_claim_prepare(&w.claim, c, cc.pid);
                        w.ttl_set = cc.has_ttl;
                        w.ttl_s = cc.ttl_s;
                } else if (w.self_prep.ready) {
                        pthread_mutex_lock(&t->mu);
                        r = -ESRCH;
                        break;
                } else {
                        lt_prep_proc(&w.self_prep, &c->self);
                }
                pthread_mutex_lock(&t->mu);
        }
        lt_unlock(t);
        if (op) {
                pthread_mutex_lock(&t->mu);
                if (op->err < 0)
                        r = -EIO;
                lt_op_free(op);
                pthread_mutex_unlock(&t->mu);
        }
        free(w.content);
        free(w.old_content);
        if (w.has_claim)
                lt_claim_done(&w.claim);
        lt_prep_done(&w.self_prep);
        return r < 0 ? r : (ssize_t)size;
}

int locktable_setattr(struct locktable *t, uint64_t ino, const struct lt_handle *h,
                      const struct caller *c, unsigned what, off_t size, struct lt_attr *ret) {
        if (ino == LT_INO_META_DIR || ino_is_meta_file(ino))
                return -EACCES;
        pthread_mutex_lock(&t->mu);
        struct node *n = lt_node_by_ino(t, ino);
        int r = 0;
        while (n && n->busy) {
                lt_wait_settled(t);
                n = lt_node_by_ino(t, ino);
        }
        if (n && !n->linked && n->kind == LT_LOCK) {
                /* a descriptor of a lost lock (futimens comes without a handle) */
                r = (what & LT_SET_SIZE) ? -EEXIST : -EPERM;
                goto out;
        }
        if (!n || (!n->linked && n != t->root)) {
                r = -ENOENT;
                goto out;
        }
        if (n->kind == LT_DIR) {
                /* mode and times of a namespace mean nothing: accepted */
                r = (what & LT_SET_SIZE) ? -EISDIR : 0;
                goto out;
        }
        /* a holder's descriptor in another user's hands is a contender's */
        bool holder = h ? (h->kind == LT_HANDLE_HOLDER && handle_lock(t, h) == n &&
                           c->uid == n->uid)
                        : lt_is_holder(n, c);
        if (!holder && h && h->kind == LT_HANDLE_READER)
                holder = lt_is_holder(n, c);
        /* A detached lock is renewed (touched) by its creator's uid, as the
         * dotlock tools do to keep it from going stale (SPEC R3.3a). */
        if (!holder && what == LT_SET_TIMES && !n->holder && !n->remote && c->uid == n->uid)
                holder = true;
        if (!holder) {
                if (what & LT_SET_SIZE)
                        t->m.contended++;
                r = (what & LT_SET_SIZE) ? -EEXIST : -EPERM;
                goto out;
        }
        if (!(what & (LT_SET_SIZE | LT_SET_TIMES)))
                goto out;
        char *old_content = NULL;
        uint32_t old_len = n->content_len;
        struct lt_renewal old_renewal = lt_renewal_of(n);
        if (what & LT_SET_SIZE) {
                if (size < 0 || (uint64_t)size > t->cfg.max_content) {
                        r = -EFBIG;
                        goto out;
                }
                r = lt_quota_content_check(t, n, (size_t)size);
                if (r < 0)
                        goto out;
                if (old_len && !(old_content = malloc(old_len))) {
                        r = -ENOMEM;
                        goto out;
                }
                if (old_len)
                        memcpy(old_content, n->content, old_len);
                r = content_resize(n, (size_t)size);
                if (r < 0) {
                        free(old_content);
                        goto out;
                }
                lt_quota_content(t, n);
                n->content_gen++;
        }
        lt_renew(t, n);
        int doomed;
        if (record_and_wait(t, n, &doomed) < 0) { /* not recorded: as it was */
                if (what & LT_SET_SIZE) {
                        content_resize(n, old_len); /* no larger than before */
                        if (old_len)
                                memcpy(n->content, old_content, old_len);
                        lt_quota_content(t, n);
                        n->content_gen++;
                }
                lt_renewal_restore(t, n, old_renewal);
                log_msg(LOG_ERR, "cannot record the change of %s (refused)", n->name);
                r = -EIO;
        }
        free(old_content);
        apply_doomed(t, n, doomed);
        if (!n->linked && r == 0)
                r = -ENOENT;
out:
        if (r == 0)
                fill_attr(n, ret);
        lt_unlock(t);
        return r;
}

/* ---- public: unlink, rename, directories ------------------------------------ */

void lt_drop_aliases(struct locktable *t, struct node *n, struct removals *report) {
        struct node *a;
        while ((a = n->aliases)) {
                n->aliases = a->alias_next;
                n->n_aliases--;
                lt_report(report, a->parent->ino, n->ino, a->name);
                lt_quota_uncharge(t, a);
                lt_node_unlink(t, a);
                t->n_nodes--;
                node_destroy(a);
        }
}

/* Remove one name of a lock that has several; the lock and its other
 * names stay. When raw is the lock's own name, an alias takes its place. */
/* One name of several taken off lock n, and what puts it back. */
struct name_change {
        struct node *n, *a;      /* the lock; the node of the name that goes */
        struct node *a_prev;     /* a's predecessor in n->aliases, NULL: first */
        struct node *n_dir, *a_dir;
        char *n_name;            /* n's own name, when n moved to a's */
};

/* Take raw's name off its lock. When raw is the lock's own name, the lock
 * moves to the name of its first other name (a), whose node goes. */
static void name_unhook(struct locktable *t, struct node *raw, struct name_change *u) {
        struct node *n = raw->target ? raw->target : raw;
        struct node *a = raw->target ? raw : n->aliases;
        *u = (struct name_change){ .n = n, .a = a, .n_dir = n->parent, .a_dir = a->parent };
        struct node **p = &n->aliases;
        while (*p != a) {
                u->a_prev = *p;
                p = &(*p)->alias_next;
        }
        *p = a->alias_next;
        n->n_aliases--;
        lt_node_unlink(t, a);
        if (raw == n) {
                lt_node_unlink(t, n);
                u->n_name = n->name;
                n->name = a->name; /* shared with a until name_drop/name_rehook */
                lt_node_link(t, u->a_dir, n);
        }
}

static void name_rehook(struct locktable *t, const struct name_change *u) {
        struct node *n = u->n, *a = u->a;
        if (u->n_name) {
                lt_node_unlink(t, n);
                n->name = u->n_name;
                lt_node_link(t, u->n_dir, n);
        }
        lt_node_link(t, u->a_dir, a);
        struct node **p = u->a_prev ? &u->a_prev->alias_next : &n->aliases;
        a->alias_next = *p;
        *p = a;
        n->n_aliases++;
}

static void name_drop(struct locktable *t, const struct name_change *u) {
        if (u->n_name) {
                free(u->n_name);
                u->a->name = NULL; /* n's now */
        }
        lt_quota_uncharge(t, u->a);
        t->n_nodes--;
        node_destroy(u->a);
}

/* Remove one of several names of a lock once the store has recorded it
 * (the mutex is let go meanwhile, the lock busy); -EIO and nothing changed
 * when the store refuses. */
static int name_remove(struct locktable *t, struct node *raw) {
        struct name_change u;
        name_unhook(t, raw, &u);
        struct lt_op *op = lt_op_update(t, u.n); /* the record without the name */
        name_rehook(t, &u);
        int doomed;
        int r = await_record(t, u.n, op, &doomed);
        if (r == 0) {
                name_unhook(t, raw, &u); /* nothing changed them: n was busy */
                name_drop(t, &u);
        } else {
                log_msg(LOG_ERR, "cannot record the removal of a name of %s (unlink refused)",
                        u.n->name);
                r = -EIO;
        }
        apply_doomed(t, u.n, doomed);
        return r;
}

int locktable_link(struct locktable *t, uint64_t ino, uint64_t newparent, const char *newname,
                   const struct caller *c, struct lt_attr *ret) {
        int r = name_check(newname);
        if (r < 0)
                return r;
        pthread_mutex_lock(&t->mu);
        struct node *n = lt_node_by_ino(t, ino), *newdir, *a = NULL;
        while (n && n->busy) {
                lt_wait_settled(t);
                n = lt_node_by_ino(t, ino);
        }
        if (!n || !n->linked || n->kind != LT_LOCK) {
                r = n && n->kind == LT_DIR ? -EPERM : -ENOENT;
                goto out;
        }
        if (1 + n->n_aliases >= (t->cfg.max_names ? t->cfg.max_names : LT_MAX_NAMES_DEFAULT)) {
                r = -EMLINK; /* the cap keeps the journal record bounded */
                goto out;
        }
        if ((r = dir_get(t, newparent, &newdir)) < 0)
                goto out;
        if (name_is_meta(newdir, newname) || lt_name_get(t, newdir, newname)) {
                t->m.contended++;
                r = -EEXIST;
                goto out;
        }
        if (!lt_may_release(n, c)) {
                r = -EPERM;
                goto out;
        }
        if (t->cfg.shared) {
                r = -EXDEV; /* a second name would be no key of the shared store */
                goto out;
        }
        if ((r = room_check(t, newdir, newname)) < 0 || (r = lt_quota_room(t, n->uid, 1)) < 0)
                goto out; /* the new name counts to the lock's uid */
        char *name = strdup(newname);
        a = calloc(1, sizeof(*a));
        if (!a || !name) {
                free(name);
                free(a);
                r = -ENOMEM;
                goto out;
        }
        /* The new name becomes the lock's own (its status path); the old
         * one, typically a dotlock tool's temp file, stays as an alias. */
        struct node *olddir = n->parent;
        lt_node_unlink(t, n);
        a->name = n->name;
        a->kind = LT_LOCK;
        a->target = n;
        a->alias_next = n->aliases;
        n->aliases = a;
        n->n_aliases++;
        n->name = name;
        lt_node_link(t, newdir, n);
        lt_node_link(t, olddir, a);
        t->n_nodes++;
        lt_quota_charge(t, a);
        int doomed;
        if (record_and_wait(t, n, &doomed) < 0) { /* not recorded: undo */
                lt_quota_uncharge(t, a);
                lt_node_unlink(t, n);
                lt_node_unlink(t, a);
                n->aliases = a->alias_next;
                n->n_aliases--;
                free(n->name);
                n->name = a->name;
                a->name = NULL;
                lt_node_link(t, olddir, n);
                t->n_nodes--;
                node_destroy(a);
                log_msg(LOG_ERR, "cannot record the new name of %s (link refused)", n->name);
                r = -EIO;
        } else {
                n->nlookup++;
                fill_attr(n, ret);
        }
        apply_doomed(t, n, doomed);
out:
        lt_unlock(t);
        return r;
}

/* A force-unlock: root, or with user_break the uid the lock belongs to. */
static bool may_break(const struct locktable *t, const struct node *n, const struct caller *c) {
        return c->uid == 0 || (t->cfg.user_break && c->uid == n->uid);
}

int locktable_unlink(struct locktable *t, uint64_t parent, const char *name,
                     const struct caller *c, struct lock_view *ret_forced) {
        memset(ret_forced, 0, sizeof(*ret_forced));
        int r = name_check(name);
        if (r < 0)
                return r;
        pthread_mutex_lock(&t->mu);
        struct node *dir, *n, *raw;
again:
        r = dir_for_removal(t, parent, name, &dir);
        if (r < 0)
                goto out;
        raw = lt_name_get(t, dir, name);
        n = raw && raw->target ? raw->target : raw;
        if (n && n->busy) {
                lt_wait_settled(t);
                goto again;
        }
        if (!n) {
                r = -ENOENT;
        } else if (n->kind == LT_DIR) {
                r = -EISDIR;
        } else if (c->partial && n->holder && !lt_is_holder(n, c)) {
                r = -EAGAIN; /* may be a descendant: needs the ancestry */
        } else if (n->n_aliases && !lt_may_release(n, c) && !may_break(t, n, c)) {
                r = -EPERM;
        } else if (n->n_aliases) {
                r = name_remove(t, raw); /* one of several names: the lock stays */
        } else if (lt_may_release(n, c)) {
                lt_release(t, n, n->holder ? CAUSE_UNLINK : CAUSE_DETACHED, NULL);
        } else if (may_break(t, n, c)) {
                if (lock_view_fill(n, ret_forced, false) < 0)
                        ret_forced->path = NULL;
                lt_release(t, n, CAUSE_ROOT, NULL);
        } else {
                r = -EPERM;
        }
out:
        lt_unlock(t); /* a release may have handed the lock to a waiter */
        return r;
}

/* Sticky-bit rule for namespaces: only their creator's uid or root may
 * remove or rename them. */
static int dir_may_change(const struct node *dir, const struct caller *c) {
        return c->uid == 0 || c->uid == dir->uid ? 0 : -EPERM;
}

static bool dir_contains(const struct node *dir, const struct node *n) {
        for (; n; n = n->parent)
                if (n == dir)
                        return true;
        return false;
}

int locktable_rename(struct locktable *t, uint64_t parent, const char *name,
                     uint64_t newparent, const char *newname, unsigned flags,
                     const struct caller *c) {
        if (flags & ~(unsigned)RENAME_NOREPLACE)
                return -EINVAL;
        int r = name_check(name);
        if (r == 0)
                r = name_check(newname);
        if (r < 0)
                return r;
        pthread_mutex_lock(&t->mu);
        struct node *dir, *newdir, *n;
again:
        r = dir_get(t, parent, &dir);
        if (r == 0)
                r = dir_get(t, newparent, &newdir);
        if (r < 0)
                goto out;
        if (name_is_meta(dir, name) || name_is_meta(newdir, newname)) {
                r = -EACCES;
                goto out;
        }
        n = lt_name_get(t, dir, name);
        if (!n) {
                r = -ENOENT;
                goto out;
        }
        struct node *busy = lt_name_get(t, newdir, newname);
        if (n->busy || (busy && busy->busy)) {
                lt_wait_settled(t);
                goto again;
        }
        if (n->target) { /* a second name stays where link(2) put it */
                r = -EPERM;
                goto out;
        }
        struct node *target = lt_name_get(t, newdir, newname);
        if (target == n)
                goto out;
        if (target) {
                if (target->kind == LT_LOCK)
                        t->m.contended++;
                r = -EEXIST;
                goto out;
        }
        if (n->kind == LT_LOCK && !lt_is_holder(n, c)) {
                r = -EPERM;
                goto out;
        }
        if (t->cfg.shared && (n->kind == LT_LOCK || n->n_children)) {
                r = -EXDEV; /* a name in a shared store: take the new one instead */
                goto out;
        }
        if (n->kind == LT_DIR && (r = dir_may_change(n, c)) < 0)
                goto out;
        if (n->kind == LT_DIR && n->n_children && c->uid != 0) {
                r = -EPERM; /* it would move locks of others */
                goto out;
        }
        if (n->kind == LT_DIR && dir_contains(n, newdir)) {
                r = -EINVAL;
                goto out;
        }
        if (t->cfg.max_depth && node_depth(newdir) + 1 > t->cfg.max_depth) {
                r = -ENAMETOOLONG;
                goto out;
        }
        char *copy = strdup(newname);
        if (!copy) {
                r = -ENOMEM;
                goto out;
        }
        char *old_name = n->name;
        lt_node_unlink(t, n);
        n->name = copy;
        lt_node_link(t, newdir, n);
        int doomed;
        dir->renaming++;
        newdir->renaming++;
        r = record_and_wait(t, n, &doomed);
        dir->renaming--;
        newdir->renaming--;
        pthread_cond_broadcast(&t->settled); /* creates in them may go on */
        if (r < 0) {
                r = 0;
                /* Not recorded: back to the old name. Nobody can have taken
                 * it meanwhile: the kernel holds both directories for a
                 * rename, and the table takes no name in them while a
                 * rename is in flight (lock_acquire waits). Should it be
                 * taken all the same, the rename stands and is recorded
                 * again. */
                if (!lt_name_get(t, dir, old_name)) {
                        lt_node_unlink(t, n);
                        n->name = old_name;
                        old_name = copy;
                        lt_node_link(t, dir, n);
                        r = -EIO;
                } else if (n->kind == LT_LOCK) {
                        lt_op_update(t, n);
                } else {
                        lt_op_put_dir(t, n, NULL, NULL);
                }
                log_msg(LOG_ERR, "cannot record the new name of %s%s", n->name,
                        r ? " (rename refused)" : "");
        }
        free(old_name);
        apply_doomed(t, n, doomed);
out:
        lt_unlock(t);
        return r;
}

/* A directory the store could not record goes again, if it is still
 * empty, so nothing exists that a restart would lose (SPEC R8.2). */
static void mkdir_done(struct locktable *t, struct lt_op *op) {
        struct node *n = op->arg;
        if (op->err == 0)
                return;
        log_msg(LOG_ERR, "cannot record directory %s: %s (mkdir refused)", n->name,
                strerror(-op->err));
        if (!n->linked || n->n_children)
                return;
        lt_report(&t->late, n->parent->ino, n->ino, n->name);
        lt_quota_uncharge(t, n);
        lt_node_unlink(t, n);
        t->n_nodes--;
        t->m.directories--;
}

int locktable_mkdir(struct locktable *t, uint64_t parent, const char *name,
                    const struct caller *c, struct lt_attr *ret) {
        int r = name_check(name);
        if (r < 0)
                return r;
        pthread_mutex_lock(&t->mu);
        struct node *dir, *n;
        r = dir_get(t, parent, &dir);
        if (r < 0)
                goto out;
        if (name_is_meta(dir, name) || lt_name_get(t, dir, name)) {
                r = -EEXIST;
                goto out;
        }
        r = room_check(t, dir, name);
        if (r == 0)
                r = lt_quota_room(t, c->uid, 1); /* its creator's until removed */
        if (r < 0)
                goto out;
        n = lt_node_new(t, LT_DIR, name);
        if (!n) {
                r = -ENOMEM;
                goto out;
        }
        n->uid = c->uid;
        n->gid = c->gid;
        lt_node_link(t, dir, n);
        n->nlookup++; /* the kernel's once answered; pins n until then */
        t->n_nodes++;
        t->m.directories++;
        lt_quota_charge(t, n);
        struct lt_op *op = lt_op_put_dir(t, n, mkdir_done, n);
        if (op)
                op->waited = true;
        fill_attr(n, ret);
        lt_unlock(t); /* records the directory */
        if (!op)
                return 0;
        pthread_mutex_lock(&t->mu);
        r = op->err < 0 ? -EIO : 0;
        lt_op_free(op);
        if (r < 0) {
                n->nlookup--;
                lt_node_maybe_free(t, n);
        }
        pthread_mutex_unlock(&t->mu);
        return r;
out:
        pthread_mutex_unlock(&t->mu);
        return r;
}

int locktable_rmdir(struct locktable *t, uint64_t parent, const char *name,
                    const struct caller *c) {
        int r = name_check(name);
        if (r < 0)
                return r;
        pthread_mutex_lock(&t->mu);
        struct node *dir, *n;
        r = dir_for_removal(t, parent, name, &dir);
        if (r < 0)
                goto out;
        n = child_get(t, dir, name);
        if (!n)
                r = -ENOENT;
        else if (n->kind != LT_DIR)
                r = -ENOTDIR;
        else if (n->n_children)
                r = -ENOTEMPTY;
        else
                r = dir_may_change(n, c);
        if (r < 0)
                goto out;
        lt_op_remove_dir(t, n);
        lt_quota_uncharge(t, n);
        lt_node_unlink(t, n);
        t->n_nodes--;
        t->m.directories--;
        lt_node_maybe_free(t, n);
out:
        lt_unlock(t);
        return r;
}

/* ---- public: listings, views, metrics ---------------------------------------- */

static int dirents_add(struct lt_dirent **v, size_t *n, size_t *cap, uint64_t ino,
                       enum lt_kind kind, const char *name) {
        if (*n == *cap) {
                size_t c = *cap ? *cap * 2 : 16;
                struct lt_dirent *p = realloc(*v, c * sizeof(*p));
                if (!p)
                        return -ENOMEM;
                *v = p;
                *cap = c;
        }
        char *copy = strdup(name);
        if (!copy)
                return -ENOMEM;
        (*v)[(*n)++] = (struct lt_dirent){ ino, kind, copy };
        return 0;
}

int locktable_readdir(struct locktable *t, uint64_t ino, struct lt_dirent **ret, size_t *ret_n) {
        struct lt_dirent *v = NULL;
        size_t n = 0, cap = 0;
        int r;
        if (ino == LT_INO_META_DIR) {
                if ((r = dirents_add(&v, &n, &cap, LT_INO_META_DIR, LT_DIR, ".")) < 0 ||
                    (r = dirents_add(&v, &n, &cap, LT_INO_ROOT, LT_DIR, "..")) < 0 ||
                    (r = dirents_add(&v, &n, &cap, LT_INO_META_LOCKS, LT_META_FILE, "locks.json")) < 0 ||
                    (r = dirents_add(&v, &n, &cap, LT_INO_META_METRICS, LT_META_FILE, "metrics")) < 0)
                        goto fail;
                goto done;
        }
        pthread_mutex_lock(&t->mu);
        struct node *dir;
        r = dir_get(t, ino, &dir);
        if (r == 0)
                r = dirents_add(&v, &n, &cap, dir->ino, LT_DIR, ".");
        if (r == 0)
                r = dirents_add(&v, &n, &cap, dir->parent ? dir->parent->ino : dir->ino, LT_DIR, "..");
        if (r == 0 && dir == t->root)
                r = dirents_add(&v, &n, &cap, LT_INO_META_DIR, LT_DIR, LT_META_DIR_NAME);
        for (struct node *c = r == 0 ? dir->children : NULL; c && r == 0; c = c->sib_next)
                r = dirents_add(&v, &n, &cap, c->target ? c->target->ino : c->ino, c->kind,
                                c->name);
        pthread_mutex_unlock(&t->mu);
        if (r < 0)
                goto fail;
done:
        *ret = v;
        *ret_n = n;
        return 0;
fail:
        lt_dirents_free(v, n);
        return r;
}

int locktable_view(struct locktable *t, uint64_t ino, struct lock_view *ret) {
        pthread_mutex_lock(&t->mu);
        struct node *n = lt_node_by_ino(t, ino);
        int r = (n && n->linked && n->kind == LT_LOCK) ? lock_view_fill(n, ret, true) : -ENOENT;
        pthread_mutex_unlock(&t->mu);
        return r;
}

int locktable_views(struct locktable *t, struct lock_view **ret, size_t *ret_n) {
        pthread_mutex_lock(&t->mu);
        size_t count = t->m.held, n = 0;
        struct lock_view *v = calloc(count ? count : 1, sizeof(*v));
        int r = v ? 0 : -ENOMEM;
        for (struct node *l = t->all_locks; l && r == 0; l = l->all_next) {
                r = lock_view_fill(l, &v[n], true);
                if (r == 0)
                        n++;
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

/* ---- break by acquisition (lockctl break) -------------------------------- */

int locktable_break(struct locktable *t, uint64_t ino, uint64_t fence, const struct caller *c,
                    struct lock_view *ret_forced, lt_removed_fn fn, void *ctx) {
        struct removals gone = { 0 };
        struct node *n;
        int r = 0;

        memset(ret_forced, 0, sizeof(*ret_forced));
        pthread_mutex_lock(&t->mu);
        /* the fence of a node whose acquisition is with the store is not final */
        while ((n = lt_node_by_ino(t, ino)) && n->busy)
                lt_wait_settled(t);
        if (n && n->kind == LT_DIR) {
                r = -EISDIR;
        } else if (!n || n->kind != LT_LOCK) {
                r = n ? -EINVAL : -ESTALE;
        } else if (!n->linked || n->fence != fence) {
                r = -ESTALE; /* released, or handed on: not the acquisition named */
        } else if (lt_may_release(n, c)) {
                lt_release(t, n, n->holder ? CAUSE_UNLINK : CAUSE_DETACHED, &gone);
        } else if (may_break(t, n, c)) {
                if (lock_view_fill(n, ret_forced, false) < 0)
                        ret_forced->path = NULL;
                lt_release(t, n, CAUSE_ROOT, &gone);
        } else {
                r = -EPERM;
        }
        lt_unlock(t); /* a release may have handed the lock to a waiter */
        /* the kernel did not see this release: tell it the names went */
        for (size_t i = 0; i < gone.n; i++) {
                if (fn)
                        fn(ctx, gone.v[i].parent, gone.v[i].ino, gone.v[i].name);
                free(gone.v[i].name);
        }
        free(gone.v);
        return r;
}
