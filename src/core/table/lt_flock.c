/* SPDX-License-Identifier: MIT */
/* flock(2) on locks (SPEC §7): the flock is the lock of the name. LOCK_EX
 * waiters park in FIFO order without holding a thread; a release hands the
 * lock to the first live waiter (new holder and fence, the name stays). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "lt_internal.h"

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

static struct lt_handle holder_handle(const struct node *n) {
        return (struct lt_handle){ .kind = LT_HANDLE_HOLDER, .ino = n->ino, .fence = n->fence };
}

void lt_owe_grant(struct locktable *t, uint64_t id, int err, const struct node *n) {
        if (t->n_grants == t->cap_grants) {
                size_t cap = t->cap_grants ? t->cap_grants * 2 : 16;
                struct lt_grant *g = realloc(t->grants, cap * sizeof(*g));
                if (!g)
                        return; /* the request stays unanswered until interrupted */
                t->grants = g;
                t->cap_grants = cap;
        }
        t->grants[t->n_grants++] = (struct lt_grant){
                .id = id, .err = err, .handle = err ? (struct lt_handle){ 0 } : holder_handle(n) };
}

void lt_deliver(struct locktable *t) {
        struct lt_grant *g = t->grants;
        size_t n = t->n_grants;
        lt_grant_fn fn = t->grant_fn;
        void *ctx = t->grant_ctx;
        struct removals gone = t->late;
        lt_removed_fn rfn = t->removed_fn;
        void *rctx = t->removed_ctx;
        t->grants = NULL;
        t->n_grants = t->cap_grants = 0;
        t->late = (struct removals){ 0 };
        pthread_mutex_unlock(&t->mu);
        for (size_t i = 0; fn && i < n; i++)
                fn(ctx, g[i].id, g[i].err, &g[i].handle);
        free(g);
        for (size_t i = 0; i < gone.n; i++) {
                if (rfn)
                        rfn(rctx, gone.v[i].parent, gone.v[i].ino, gone.v[i].name);
                free(gone.v[i].name);
        }
        free(gone.v);
}

void lt_unlock(struct locktable *t) {
        bool flush = lt_flush_needed(t);
        lt_deliver(t);
        if (flush)
                lt_flush(t);
}

static void waiter_unqueue(struct locktable *t, struct lt_waiter *w) {
        struct node *n = w->n;
        if (w->prev)
                w->prev->next = w->next;
        else
                n->wq_head = w->next;
        if (w->next)
                w->next->prev = w->prev;
        else
                n->wq_tail = w->prev;
        if (w->h_prev)
                w->h_prev->h_next = w->h_next;
        else if (w->h)
                w->h->waits = w->h_next;
        if (w->h_next)
                w->h_next->h_prev = w->h_prev;
        htab_remove(&t->waiters, &w->by_id);
        t->m.waiters--;
}

/* Unqueue w and free it, dropping its holder reference. */
static void waiter_free(struct locktable *t, struct lt_waiter *w) {
        waiter_unqueue(t, w);
        if (w->h)
                lt_holder_unref(t, w->h);
        free(w);
}

void lt_waiter_cancel(struct locktable *t, struct lt_waiter *w, int err) {
        lt_owe_grant(t, w->id, err, w->n);
        waiter_free(t, w);
}

/* Park request id for c, whose holder record h (NULL for a caller whose
 * pid is not visible) is referenced by the waiter from now on. */
static int waiter_park(struct locktable *t, struct node *n, uint64_t id, uint64_t owner,
                       const struct caller *c, struct holder *h) {
        struct lt_waiter *w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        *w = (struct lt_waiter){ .id = id, .owner = owner, .who = *c, .h = h, .n = n,
                                 .prev = n->wq_tail };
        if (n->wq_tail)
                n->wq_tail->next = w;
        else
                n->wq_head = w;
        n->wq_tail = w;
        if (h) {
                w->h_next = h->waits;
                if (h->waits)
                        h->waits->h_prev = w;
                h->waits = w;
                h->refs++;
        }
        htab_insert(&t->waiters, &w->by_id, htab_hash_u64(id));
        t->m.waiters++;
        return LT_PARKED;
}

/* A hand-off, between its queueing and the store's answer. */
struct handoff {
        struct node *n;
        uint64_t id;             /* the waiter's request */
        uint64_t owner;
        uint64_t old_fence;      /* the acquisition it replaces */
};

static void handoff_done(struct locktable *t, struct lt_op *op) {
        struct handoff *ho = op->arg;
        struct node *n = ho->n;
        n->flock_owner = ho->owner;
        if (lt_take_settle(t, n, op) == 0) {
                if (n->linked && n->fence == op->fence)
                        lt_owe_grant(t, ho->id, 0, n);
                else /* released meanwhile (its holder died): its grant is moot */
                        lt_owe_grant(t, ho->id, LT_WAITER_ORPHANED, n);
        } else {
                /* the store refused: the name ends, with its other waiters */
                n->flock_owner = 0;
                lt_owe_grant(t, ho->id, op->err == -EEXIST ? -EEXIST : -EIO, n);
                lt_drop_waiters(t, n, -EIO);
                n->fence = ho->old_fence;
                lt_op_release(t, n);
                lt_lock_remove(t, n, &t->late);
        }
        n->nlookup--; /* pinned for this answer */
        lt_node_maybe_free(t, n);
        free(ho);
}

bool lt_handoff(struct locktable *t, struct node *n) {
        struct lt_waiter *w;
        while ((w = n->wq_head)) {
                if (w->h && lt_holder_dead(w->h)) { /* never to a dead or dying process */
                        lt_waiter_cancel(t, w, LT_WAITER_ORPHANED);
                        continue;
                }
                struct handoff *ho = malloc(sizeof(*ho));
                if (!ho) {
                        lt_waiter_cancel(t, w, -ENOMEM);
                        continue;
                }
                *ho = (struct handoff){ .n = n, .id = w->id, .owner = w->owner,
                                        .old_fence = n->fence };
                int r = lt_take(t, n, &w->who, LOCK_HOW_FLOCK, NULL, handoff_done, ho, false,
                                NULL);
                if (r != 0) {
                        free(ho);
                        lt_waiter_cancel(t, w, r == -ESRCH || r == LT_NEED_PROC ? LT_WAITER_ORPHANED : r);
                        continue;
                }
                n->nlookup++; /* pins n for handoff_done */
                waiter_free(t, w);
                return true;
        }
        return false;
}

void lt_drop_waiters(struct locktable *t, struct node *n, int err) {
        while (n->wq_head)
                lt_waiter_cancel(t, n->wq_head, err);
}

/* The lock a flock on inode ino means: that lock while it lives; once it
 * was released, whatever now holds its name (taking the free name for c:
 * then *ret_op answers the acquisition, see lt_create). */
static int flock_target(struct locktable *t, uint64_t ino, const struct caller *c,
                        struct lt_prep *prep, struct node **ret, struct lt_op **ret_op) {
        *ret_op = NULL;
        struct node *n = lt_node_by_ino(t, ino);
        if (!n || n->kind != LT_LOCK)
                return -EOPNOTSUPP;
        if (n->linked) {
                *ret = n;
                return 0;
        }
        struct lt_handle h;
        int r = lt_create(t, n->parent_was, n->name, c, O_WRONLY, prep, ret, &h, ret_op);
        if (r < 0)
                return r == -ENOENT || r == -EISDIR ? -ESTALE : r;
        return r;
}

/* One try of locktable_flock under the lock; *ret_op as in flock_target. */
static int flock_step(struct locktable *t, uint64_t ino, const struct lt_handle *h, uint64_t owner,
                      const struct caller *c, bool nonblock, uint64_t id, struct lt_prep *prep,
                      struct lt_handle *ret, struct node **ret_n, struct lt_op **ret_op) {
        struct node *n;
        int r = flock_target(t, ino, c, prep, &n, ret_op);
        if (r != 0)
                return r;
        if (n->busy && !*ret_op)
                return LT_NEED_SETTLED;
        *ret_n = n;
        if (*ret_op) { /* the name was free: c takes it by this flock */
                n->how = LOCK_HOW_FLOCK;
                n->flock_owner = owner;
                *ret = holder_handle(n);
                return 0;
        }
        bool own_handle = h->kind == LT_HANDLE_HOLDER && h->ino == n->ino && h->fence == n->fence &&
                          c->uid == n->uid;
        if (n->flock_owner == owner ||
            (n->flock_owner == 0 && (own_handle || lt_is_holder(n, c)))) {
                n->flock_owner = owner; /* ours now: LOCK_UN or close releases it */
                *ret = holder_handle(n);
                return 0;
        }
        if (nonblock) {
                t->m.contended++;
                return -EWOULDBLOCK;
        }
        if (!c->self.pid)
                return waiter_park(t, n, id, owner, c, NULL);
        struct holder *hd;
        r = lt_holder_ref(t, c, prep, &hd); /* the waiter's record, for its liveness */
        if (r != 0)
                return r;
        r = waiter_park(t, n, id, owner, c, hd);
        lt_holder_unref(t, hd);
        return r;
}

int locktable_flock(struct locktable *t, uint64_t ino, const struct lt_handle *h, uint64_t owner,
                    const struct caller *c, bool nonblock, uint64_t id, struct lt_handle *ret) {
        struct lt_prep prep = { .pidfd = -1 };
        struct node *n = NULL;
        struct lt_op *op;
        int r;
        pthread_mutex_lock(&t->mu);
        for (;;) {
                r = flock_step(t, ino, h, owner, c, nonblock, id, &prep, ret, &n, &op);
                if (r == LT_NEED_SETTLED) {
                        lt_wait_settled(t);
                        continue;
                }
                if (r != LT_NEED_PROC || prep.ready)
                        break;
                pthread_mutex_unlock(&t->mu);
                lt_prep_proc(&prep, &c->self);
                pthread_mutex_lock(&t->mu);
        }
        if (r == LT_NEED_PROC)
                r = -ESRCH;
        if (op)
                n->nlookup++; /* pins n for lt_acquired */
        lt_unlock(t);
        lt_prep_done(&prep);
        if (op) {
                pthread_mutex_lock(&t->mu);
                r = lt_acquired(t, n, op, ret);
                if (r == 0) {
                        n->nlookup--;
                        lt_node_maybe_free(t, n);
                }
                pthread_mutex_unlock(&t->mu);
        }
        return r;
}

int locktable_flock_unlock(struct locktable *t, uint64_t ino, uint64_t owner, lt_removed_fn fn,
                           void *ctx) {
        struct removals gone = { 0 };
        pthread_mutex_lock(&t->mu);
        struct node *n = lt_node_by_ino(t, ino);
        if (n && n->linked && n->kind == LT_LOCK && owner && n->flock_owner == owner)
                lt_release(t, n, CAUSE_UNLOCK, &gone);
        lt_unlock(t);
        for (size_t i = 0; i < gone.n; i++) {
                if (fn)
                        fn(ctx, gone.v[i].parent, gone.v[i].ino, gone.v[i].name);
                free(gone.v[i].name);
        }
        free(gone.v);
        return 0;
}

bool locktable_flock_cancel(struct locktable *t, uint64_t id) {
        pthread_mutex_lock(&t->mu);
        struct lt_waiter *w = NULL;
        uint64_t hash = htab_hash_u64(id);
        for (struct hlink *l = htab_chain(&t->waiters, hash); l && !w; l = l->next) {
                struct lt_waiter *c = container_of(l, struct lt_waiter, by_id);
                if (c->id == id)
                        w = c;
        }
        if (w)
                waiter_free(t, w);
        lt_unlock(t);
        return w != NULL;
}
