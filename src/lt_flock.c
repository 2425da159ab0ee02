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

void lt_unlock(struct locktable *t) {
        struct lt_grant *g = t->grants;
        size_t n = t->n_grants;
        lt_grant_fn fn = t->grant_fn;
        void *ctx = t->grant_ctx;
        t->grants = NULL;
        t->n_grants = t->cap_grants = 0;
        pthread_mutex_unlock(&t->mu);
        for (size_t i = 0; fn && i < n; i++)
                fn(ctx, g[i].id, g[i].err, &g[i].handle);
        free(g);
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
        htab_remove(&t->waiters, &w->by_id);
        t->m.waiters--;
}

static int waiter_park(struct locktable *t, struct node *n, uint64_t id, uint64_t owner,
                       const struct caller *c) {
        struct lt_waiter *w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        *w = (struct lt_waiter){ .id = id, .owner = owner, .who = *c, .n = n, .prev = n->wq_tail };
        if (n->wq_tail)
                n->wq_tail->next = w;
        else
                n->wq_head = w;
        n->wq_tail = w;
        htab_insert(&t->waiters, &w->by_id, htab_hash_u64(id));
        t->m.waiters++;
        return LT_PARKED;
}

bool lt_handoff(struct locktable *t, struct node *n) {
        struct lt_waiter *w;
        while ((w = n->wq_head)) {
                waiter_unqueue(t, w);
                int r = lt_take(t, n, &w->who, LOCK_HOW_FLOCK);
                if (r == 0)
                        n->flock_owner = w->owner;
                lt_owe_grant(t, w->id, r == -ESRCH ? -EINTR : r, n);
                free(w);
                if (r == 0)
                        return true;
        }
        return false;
}

void lt_drop_waiters(struct locktable *t, struct node *n, int err) {
        struct lt_waiter *w;
        while ((w = n->wq_head)) {
                waiter_unqueue(t, w);
                lt_owe_grant(t, w->id, err, n);
                free(w);
        }
}

/* The lock a flock on inode ino means: that lock while it lives; once it
 * was released, whatever now holds its name (taking the free name for c).
 * Sets *taken when the name was taken for c. */
static int flock_target(struct locktable *t, uint64_t ino, const struct caller *c,
                        struct node **ret, bool *taken) {
        *taken = false;
        struct node *n = lt_node_by_ino(t, ino);
        if (!n || n->kind != LT_LOCK)
                return -EOPNOTSUPP;
        if (n->linked) {
                *ret = n;
                return 0;
        }
        struct node *now;
        struct lt_handle h;
        uint64_t acquired = t->m.acquired;
        int r = lt_create(t, n->parent_was, n->name, c, O_WRONLY, &now, &h);
        if (r < 0)
                return r == -ENOENT || r == -EISDIR ? -ESTALE : r;
        *taken = t->m.acquired != acquired; /* the name was free: c holds it now */
        *ret = now;
        return 0;
}

int locktable_flock(struct locktable *t, uint64_t ino, const struct lt_handle *h, uint64_t owner,
                    const struct caller *c, bool nonblock, uint64_t id, struct lt_handle *ret) {
        pthread_mutex_lock(&t->mu);
        struct node *n;
        bool taken;
        int r = flock_target(t, ino, c, &n, &taken);
        if (r < 0)
                goto out;
        bool own_handle = h->kind == LT_HANDLE_HOLDER && h->ino == n->ino && h->fence == n->fence;
        if (n->flock_owner == owner ||
            (n->flock_owner == 0 && (taken || own_handle || lt_is_holder(n, c)))) {
                n->flock_owner = owner; /* ours now: LOCK_UN or close releases it */
                if (taken)
                        n->how = LOCK_HOW_FLOCK;
                *ret = holder_handle(n);
        } else if (nonblock) {
                t->m.contended++;
                r = -EWOULDBLOCK;
        } else {
                r = waiter_park(t, n, id, owner, c);
        }
out:
        pthread_mutex_unlock(&t->mu);
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
        if (w) {
                waiter_unqueue(t, w);
                free(w);
        }
        pthread_mutex_unlock(&t->mu);
        return w != NULL;
}
