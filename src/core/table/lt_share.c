/* SPDX-License-Identifier: MIT */
/* The holders of a shared lock besides its recorded holder (SPEC R7.3).
 * A lock taken by flock(LOCK_SH) or an fcntl read lock is shared
 * (node.shared): its recorded holder (node.holder, what the store keeps
 * and status names first) took it; each further shared request that comes
 * while no request waits joins it as a share, listed under the lock and
 * under the holder record of its process (so that process's death ends
 * it). A share keeps the handle it came through (a reader's or a
 * contender's: it may not write the lock's content). When the recorded
 * holder goes, the oldest share takes its place (lt_release, lt_lock.c);
 * when the last holder goes, the lock is released. */
#include <errno.h>
#include <stdlib.h>

#include "clock.h"
#include "lt_internal.h"

struct lt_handle lt_share_handle(const struct node *n, const struct lt_lock_req *rq) {
        struct lt_handle h = lt_handle_of(
                n, rq->kind == LT_HANDLE_READER ? LT_HANDLE_READER : LT_HANDLE_CONTENDER, 0);
        h.append = rq->append;
        return h;
}

int lt_share_add(struct locktable *t, struct node *n, const struct lt_lock_req *rq,
                 const struct caller *c, struct holder *h) {
        (void)t;
        if (n->n_shares >= LT_SHARES_MAX)
                return -ENOLCK;
        struct lt_share *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        *s = (struct lt_share){ .n = n, .h = h, .rq = *rq, .uid = c->uid, .gid = c->gid,
                                .since_ms = clock_wall_ms() };
        list_add_tail(&n->shares, &s->link);
        list_init(&s->h_link);
        if (h) {
                list_add_tail(&h->shares, &s->h_link);
                h->refs++;
        }
        n->n_shares++;
        return 0;
}

/* Whether share s is the hold of request rq by c: the same open file for
 * flock (its id is never reused); the same kernel owner for a record lock,
 * through the same open file (an OFD lock's owner, in any process that has
 * it) or in c's own process (a POSIX owner: its address may be reused by
 * another process, through another open). */
static bool share_is(const struct lt_share *s, const struct lt_lock_req *rq,
                     const struct caller *c) {
        if (s->rq.posix != rq->posix || s->rq.owner != rq->owner)
                return false;
        if (!rq->posix || s->rq.file == rq->file)
                return true;
        if (!s->h)
                return c->self.pid == 0;
        return c->self.pid == s->h->proc.pid && c->self.start_time == s->h->proc.start_time;
}

/* Whether rq's owner holds n already: as its recorded holder's hold
 * through rq's API, or as a share. */
static bool holds_already(const struct node *n, const struct lt_lock_req *rq,
                          const struct caller *c) {
        if (!rq->posix && n->flock_owner == rq->owner)
                return true;
        if (rq->posix && n->posix_owner == rq->owner &&
            (n->posix_file == rq->file ||
             (n->holder && c->self.pid == n->holder->proc.pid &&
              c->self.start_time == n->holder->proc.start_time)))
                return true;
        return lt_share_of(n, rq, c) != NULL;
}

struct lt_share *lt_share_of(const struct node *n, const struct lt_lock_req *rq,
                             const struct caller *c) {
        const struct list *l;
        list_for_each(l, &n->shares) {
                struct lt_share *s = list_entry(l, struct lt_share, link);
                if (share_is(s, rq, c))
                        return s;
        }
        return NULL;
}

struct lt_share *lt_share_find(const struct node *n, bool posix, uint64_t owner, uint64_t file) {
        const struct list *l;
        list_for_each(l, &n->shares) {
                struct lt_share *s = list_entry(l, struct lt_share, link);
                if (s->rq.posix == posix && (!owner || s->rq.owner == owner) &&
                    (!file || s->rq.file == file))
                        return s;
        }
        return NULL;
}

struct lt_share *lt_share_first(const struct node *n) {
        return list_first_entry_or_null(&n->shares, struct lt_share, link);
}

void lt_share_free(struct locktable *t, struct lt_share *s) {
        list_del(&s->link);
        list_del(&s->h_link);
        s->n->n_shares--;
        if (s->h)
                lt_holder_unref(t, s->h);
        free(s);
}

void lt_share_record(struct locktable *t, const struct node *n) {
        if (n->fence && n->linked)
                lt_op_update(t, n);
}

void lt_share_end(struct locktable *t, struct lt_share *s) {
        struct node *n = s->n;
        lt_share_free(t, s);
        lt_share_record(t, n);
}

bool lt_shares_end_of(struct locktable *t, struct node *n, const struct caller *c) {
        bool ended = false;
        struct list *l, *next;
        list_for_each_safe(l, next, &n->shares) {
                struct lt_share *s = list_entry(l, struct lt_share, link);
                if (s->h && c->self.pid == s->h->proc.pid &&
                    c->self.start_time == s->h->proc.start_time) {
                        lt_share_free(t, s);
                        ended = true;
                }
        }
        if (ended)
                lt_share_record(t, n);
        return ended;
}

void lt_shares_drop(struct locktable *t, struct node *n) {
        struct lt_share *s;
        while ((s = lt_share_first(n)))
                lt_share_free(t, s);
}

void lt_shares_drop_of(struct locktable *t, struct holder *h) {
        while (!list_empty(&h->shares))
                lt_share_end(t, list_entry(h->shares.next, struct lt_share, h_link));
}

/* The shares let in from n's queue, answered once the store recorded
 * them (a reply is never ahead of the record a restart reads). */
struct let_in {
        struct node *n;          /* pinned (nlookup) until answered */
        size_t count;
        struct let_in_one {
                struct lt_lock_req rq;
                bool added;      /* a share was made for it (else it held n already) */
                struct lt_handle handle;
        } v[];
};

/* Whether request rq's hold is n's recorded holder's now (its share was
 * promoted, lt_lock.c). */
static bool holds_as_recorded(const struct node *n, const struct lt_lock_req *rq) {
        return n->linked && (rq->posix ? n->posix_owner == rq->owner && n->posix_file == rq->file
                                       : n->flock_owner == rq->owner);
}

/* The store answered the record of let-in shares: grant each still
 * there (or promoted meanwhile); on failure, end those it made and answer
 * -EIO. One whose share is gone (its process died, the lock went) gets
 * LT_WAITER_ORPHANED. */
static void let_in_recorded(struct locktable *t, struct lt_op *op) {
        struct let_in *li = op->arg;
        struct node *n = li->n;
        for (size_t i = 0; i < li->count; i++) {
                const struct let_in_one *g = &li->v[i];
                struct lt_share *s = NULL;
                const struct list *l;
                list_for_each(l, &n->shares) {
                        struct lt_share *x = list_entry(l, struct lt_share, link);
                        if (g->added && x->rq.id == g->rq.id) {
                                s = x;
                                break;
                        }
                }
                int err = 0;
                if (g->added && !s && holds_as_recorded(n, &g->rq))
                        err = 0; /* promoted: its acquisition is recorded on its own */
                else if (g->added && !s)
                        err = LT_WAITER_ORPHANED;
                else if (op->err < 0)
                        err = -EIO;
                if (op->err < 0 && s)
                        lt_share_free(t, s);
                lt_owe_grant(t, g->rq.id, err, &g->handle);
        }
        if (op->err < 0)
                lt_share_record(t, n);
        n->nlookup--;
        lt_node_maybe_free(t, n);
        free(li);
}

/* Answer the let-in shares li (li->count of them): after the store
 * recorded them when it keeps records, else now. Frees li. */
static void let_in_answer(struct locktable *t, struct let_in *li) {
        struct lt_op *op = li->n->fence && li->n->linked ? lt_op_update(t, li->n) : NULL;
        if (op) {
                op->done = let_in_recorded;
                op->arg = li;
                li->n->nlookup++;
                return;
        }
        for (size_t i = 0; i < li->count; i++)
                lt_owe_grant(t, li->v[i].rq.id, 0, &li->v[i].handle);
        free(li);
}

void lt_shares_grant_waiting(struct locktable *t, struct node *n) {
        struct lt_waiter *w;
        struct let_in *li = NULL;
        size_t cap = 0;
        while (n->shared && !n->busy && (w = lt_waiter_first(n)) && w->rq.shared) {
                if (w->h && lt_holder_dead(w->h)) { /* never to a dead or dying process */
                        lt_waiter_cancel(t, w, LT_WAITER_ORPHANED);
                        continue;
                }
                size_t k = li ? li->count : 0;
                if (k == cap) {
                        size_t ncap = cap ? 2 * cap : 4;
                        struct let_in *grown = realloc(li, sizeof(*li) + ncap * sizeof(li->v[0]));
                        if (!grown) {
                                lt_waiter_cancel(t, w, -ENOMEM);
                                continue;
                        }
                        if (!li)
                                grown->count = 0;
                        li = grown;
                        li->n = n;
                        cap = ncap;
                }
                /* two threads' requests through one open file are one hold */
                bool added = !holds_already(n, &w->rq, &w->who);
                int r = added ? lt_share_add(t, n, &w->rq, &w->who, w->h) : 0;
                if (r < 0) {
                        lt_waiter_cancel(t, w, r);
                        continue;
                }
                li->v[li->count++] = (struct let_in_one){ .rq = w->rq, .added = added,
                                                          .handle = lt_share_handle(n, &w->rq) };
                lt_waiter_free(t, w);
        }
        if (li && li->count)
                let_in_answer(t, li);
        else
                free(li);
}
