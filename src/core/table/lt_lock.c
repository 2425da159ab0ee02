/* SPDX-License-Identifier: MIT */
/* Acquisition, release and hand-off of locks, and recording a change while
 * waiting for the store. A release hands the lock to its first live flock
 * waiter (lt_handoff), which takes it as a new acquisition (lt_take): that
 * release -> handoff -> take recursion is the only one in the table, and
 * it stays inside this file. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "lt_internal.h"

/* ---- acquisition -------------------------------------------------------------- */

/* The view of n as c would hold it after a new acquisition (h: c's
 * record, NULL when c's pid is not visible): v->fence is the acquisition
 * it replaces (0 for a new name). */
static int acquisition_view(struct locktable *t, const struct node *n, const struct caller *c,
                            const struct holder *h, enum lock_how how, struct lock_view *v) {
        int r = lt_node_to_view(n, LT_VIEW_STORE_EXTRAS, v);
        if (r < 0)
                return r;
        v->liveness_known = h != NULL;
        /* a directory lock stays one when detached (SPEC R7.5) */
        v->how = h || how == LOCK_HOW_MKDIR ? how : LOCK_HOW_DETACHED;
        v->pid = h ? h->proc.pid : 0;
        v->start_time = h ? h->proc.start_time : 0;
        v->uid = c->uid; /* the requester's, whoever's record h was made by */
        v->gid = c->gid;
        if (h) {
                memcpy(v->comm, h->comm, sizeof(v->comm));
                snprintf(v->cmdline, sizeof(v->cmdline), "%s", h->cmdline);
        }
        v->acquired_at_ms = v->renewed_at_ms = clock_wall_ms();
        /* a new acquisition's content is empty: no "ttl_s" of its own yet */
        v->ttl_s = lt_ttl_default(t, h == NULL);
        lt_view_derive(v, h == NULL);
        v->deadline_mono_ms = lt_deadline_from_now(v->ttl_s);
        v->claim_ignored_pid = 0;
        v->lost = false;
        return 0;
}

/* Make n the state acquisition view v asks the store to record, held by
 * h (a reference taken; NULL: detached), busy until the answer. */
static void take_apply(struct locktable *t, struct node *n, struct holder *h,
                       const struct lock_view *v) {
        lt_set_holder(t, n, h);
        lt_view_to_node(v, n);
        n->fence = 0; /* no handle of the old acquisition is valid now */
        n->content_len = 0;
        n->content_gen++;
        lt_lock_refs_clear(n);
        n->shared = false; /* until the request that takes it says (handoff_done) */
        lt_remote_free(n); /* a flock waiter took over another host's lock */
        n->lost = false;
        n->busy = true;
        n->doomed = 0;
        heap_remove(&t->deadlines, &n->deadline);
        lt_quota_charge(t, n);
}

int lt_take(struct locktable *t, struct node *n, const struct caller *c, enum lock_how how,
            bool sharer, struct lt_prep *prep, lt_op_done_fn done, void *arg, bool waited,
            struct lt_op **ret) {
        struct holder *h = NULL;
        int r = c->self.pid ? lt_holder_ref(t, c, prep, &h) : 0;
        if (r == 0 && !sharer)
                r = lt_quota_check(t, n, c->uid);
        struct lock_view v;
        if (r == 0)
                r = acquisition_view(t, n, c, h, how, &v);
        if (r == 0 && (r = lt_op_acquire(t, &v, done, arg, waited, ret)) < 0)
                lock_view_clear(&v);
        if (r != 0) {
                if (h)
                        lt_holder_unref(t, h);
                return r;
        }
        take_apply(t, n, h, &v); /* v's scalars: the op owns the rest now */
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

/* The done() of a create: settle, and on failure remove the name. */
static void create_done(struct locktable *t, struct lt_op *op) {
        struct node *n = op->arg;
        if (lt_take_settle(t, n, op) < 0)
                lt_lock_remove(t, n, &t->late); /* others may have looked it up */
}

int lt_lock_create(struct locktable *t, struct node *dir, const char *name,
                   const struct caller *c, enum lock_how how, struct lt_prep *prep,
                   struct node **ret, struct lt_op **ret_op) {
        if (dir->renaming)
                return LT_NEED_SETTLED; /* a refused rename must find its name free */
        int r = lt_room_check(t, dir, name);
        if (r < 0)
                return r;
        struct node *n = lt_node_new(t, LT_LOCK, name);
        if (!n)
                return -ENOMEM;
        lt_node_link(t, dir, n);
        struct lt_op *op;
        r = lt_take(t, n, c, how, false, prep, create_done, n, true, &op);
        if (r != 0) {
                lt_node_unlink(t, n);
                lt_node_maybe_free(t, n);
                return r;
        }
        lt_lock_list_add(t, n);
        *ret = n;
        *ret_op = op;
        return 0;
}

int lt_lock_get_or_create(struct locktable *t, uint64_t parent, const char *name,
                          const struct caller *c, int flags, struct lt_prep *prep,
                          struct node **ret, struct lt_op **ret_op) {
        struct node *dir;
        *ret_op = NULL;
        int r = lt_dir_get(t, parent, &dir);
        if (r < 0)
                return r;
        if (lt_name_is_meta(dir, name))
                return -EEXIST;
        struct node *n = lt_child_get(t, dir, name);
        if (n && (n->kind == LT_DIR || lt_is_dirlock(n))) /* a directory lock too (R7.5) */
                return (flags & O_EXCL) ? -EEXIST : -EISDIR;
        if (n && (flags & O_EXCL)) {
                t->m.contended++; /* also while its acquisition is with the store */
                return -EEXIST;
        }
        if (n && n->busy)
                return LT_NEED_SETTLED;
        if (!n)
                return lt_lock_create(t, dir, name, c, LOCK_HOW_CREATOR, prep, ret, ret_op);
        *ret = n;
        return 0;
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

void lt_lock_list_add(struct locktable *t, struct node *n) {
        list_add(&t->all_locks, &n->all);
        lt_order_add(t, n);
        t->n_nodes++;
        t->m.held++;
}

/* ---- release ---------------------------------------------------------------- */

static void count_release(struct locktable *t, enum release_cause cause) {
        switch (cause) {
        case CAUSE_UNLINK: t->m.released_unlink++; break;
        case CAUSE_EXIT: t->m.released_exit++; break;
        case CAUSE_TTL: t->m.released_ttl++; break;
        case CAUSE_ROOT: t->m.released_root++; break;
        case CAUSE_DETACHED: t->m.released_detached++; break;
        case CAUSE_UNLOCK: t->m.released_unlock++; break;
        }
}

static const char *const cause_names[] = {
        [CAUSE_UNLINK] = "unlinked by its holder", [CAUSE_EXIT] = "holder exited",
        [CAUSE_TTL] = "TTL ran out", [CAUSE_ROOT] = "force-unlocked",
        [CAUSE_DETACHED] = "unlinked", [CAUSE_UNLOCK] = "unlocked",
};

/* Released: expiries at notice, the rest at debug level. An expiry that
 * takes the lock of a holder still alive (its own "ttl_s", or
 * holder_ttl) says so (SPEC R5.3). */
static void log_release(struct node *n, enum release_cause cause) {
        int level = cause == CAUSE_TTL ? LOG_NOTICE : LOG_DEBUG;
        if (!log_enabled(level))
                return;
        char *path = lt_node_path(n);
        bool live = cause == CAUSE_TTL && n->holder && !lt_holder_dead(n->holder);
        char why[96];
        if (live)
                snprintf(why, sizeof(why), "TTL ran out (%u s) while its holder (uid %u) runs",
                         (unsigned)n->ttl_s, (unsigned)n->uid);
        log_msg(level, "released %s (fence %llu, pid %d): %s", path ? path : n->name,
                (unsigned long long)n->fence, n->holder ? (int)n->holder->proc.pid : 0,
                live ? why : cause_names[cause]);
        free(path);
}

static bool promote_share(struct locktable *t, struct node *n);

void lt_release(struct locktable *t, struct node *n, enum release_cause cause,
                struct removals *report) {
        if (n->busy) { /* its acquisition is with the store: release at the answer */
                if (!n->doomed)
                        n->doomed = (uint8_t)(1 + cause);
                if (cause == CAUSE_TTL) /* due: off the heap, or the reaper spins */
                        heap_remove(&t->deadlines, &n->deadline);
                return;
        }
        if (n->n_shares) {
                /* its holder's own end (unlock, death) leaves it to its
                 * sharers; any other (TTL, break, unlink) ends them too */
                if ((cause == CAUSE_UNLOCK || cause == CAUSE_EXIT) && promote_share(t, n))
                        return;
                lt_shares_drop(t, n);
        }
        count_release(t, cause);
        if (!t->closing)
                log_release(n, cause);
        if (!list_empty(&n->wq) && lt_handoff(t, n))
                return; /* the name stays, with its next holder */
        lt_op_release(t, n);
        lt_lock_remove(t, n, report);
}

void lt_lock_remove(struct locktable *t, struct node *n, struct removals *report) {
        lt_report(report, n->parent->ino, n->ino, n->name);
        lt_drop_aliases(t, n, report);
        lt_shares_drop(t, n);
        lt_detach_holder(t, n);
        lt_quota_uncharge(t, n);
        heap_remove(&t->deadlines, &n->deadline);
        list_del(&n->all);
        lt_order_remove(n);
        lt_node_unlink(t, n);
        lt_remote_free(n);
        free(n->content);
        n->content = NULL;
        n->content_len = n->content_cap = 0;
        t->n_nodes--;
        t->m.held--;
        lt_node_maybe_free(t, n);
}

/* ---- hand-off to a flock waiter ------------------------------------------------- */

/* A hand-off, between its queueing and the store's answer. */
struct handoff {
        struct node *n;
        struct lt_lock_req rq;   /* the waiter's request, or the share's */
        uint64_t old_fence;      /* the acquisition it replaces */
        bool promoted;           /* to a share (granted long ago: no reply owed) */
};

/* Owe request id the reply err, with the holder handle of lock n. */
static void owe_grant(struct locktable *t, uint64_t id, int err, const struct node *n) {
        struct lt_handle h = lt_handle_of(n, LT_HANDLE_HOLDER, 0);
        lt_owe_grant(t, id, err, &h);
}

static void handoff_done(struct locktable *t, struct lt_op *op) {
        struct handoff *ho = op->arg;
        struct node *n = ho->n;
        if (lt_take_settle(t, n, op) == 0) {
                bool held = n->linked && n->fence == op->fence;
                if (!ho->promoted) /* else released meanwhile: its grant is moot */
                        owe_grant(t, ho->rq.id, held ? 0 : LT_WAITER_ORPHANED, n);
                if (held && n->shared) {
                        /* the shares that came or went while the store was
                         * asked, and those let in now */
                        lt_share_record(t, n);
                        lt_shares_grant_waiting(t, n);
                }
        } else {
                /* the store refused: the name ends, with its other waiters
                 * and sharers */
                lt_lock_refs_clear(n);
                if (!ho->promoted)
                        owe_grant(t, ho->rq.id, op->err == -EEXIST ? -EEXIST : -EIO, n);
                lt_drop_waiters(t, n, -EIO);
                n->fence = ho->old_fence;
                lt_op_release(t, n);
                lt_lock_remove(t, n, &t->late);
        }
        n->nlookup--; /* pinned for this answer */
        lt_node_maybe_free(t, n);
        free(ho);
}

/* Hand n to who by request rq (a waiter's, or with promoted a share's) as
 * a new acquisition: 0, or the error the request is cancelled with. */
static int handoff_to(struct locktable *t, struct node *n, const struct caller *who,
                      const struct lt_lock_req *rq, bool promoted) {
        struct handoff *ho = malloc(sizeof(*ho));
        if (!ho)
                return -ENOMEM;
        *ho = (struct handoff){ .n = n, .rq = *rq, .old_fence = n->fence, .promoted = promoted };
        enum lock_how how = rq->posix ? LOCK_HOW_FCNTL : LOCK_HOW_FLOCK;
        int r = lt_take(t, n, who, how, promoted, NULL, handoff_done, ho, false, NULL);
        if (r != 0) {
                free(ho);
                /* no pidfd may be opened here, and a waiter is fully identified */
                return r == -ESRCH || r > 0 ? LT_WAITER_ORPHANED : r;
        }
        /* its hold from now on, so that an unlock or close while the store
         * is asked (a share's file may be closed any time) is deferred to
         * the answer rather than lost */
        lt_lock_ref_set(n, rq);
        n->shared = rq->shared;
        n->nlookup++; /* pins n for handoff_done */
        return 0;
}

/* Hand n to waiter w: 0, or the error w is cancelled with. */
static int handoff_to_waiter(struct locktable *t, struct node *n, struct lt_waiter *w) {
        if (w->h && lt_holder_dead(w->h)) /* never to a dead or dying process */
                return LT_WAITER_ORPHANED;
        return handoff_to(t, n, &w->who, &w->rq, false);
}

/* n's recorded holder went while others share it: the oldest live share
 * takes its place, as a new acquisition (a new fence: the old holder's
 * handle may no longer write), the other shares stay. False when no share
 * could (the caller then releases n; dead shares are gone). */
static bool promote_share(struct locktable *t, struct node *n) {
        struct lt_share *s;
        while ((s = lt_share_first(n))) {
                int r = LT_WAITER_ORPHANED;
                if (!s->h || !lt_holder_dead(s->h)) {
                        /* its record is referenced: lt_take finds it, no /proc */
                        struct caller who = { .uid = s->uid, .gid = s->gid, .no_cmdline = true };
                        if (s->h) {
                                who.self = s->h->proc;
                                memcpy(who.comm, s->h->comm, sizeof(who.comm));
                        }
                        r = handoff_to(t, n, &who, &s->rq, true);
                }
                lt_share_free(t, s);
                if (r == 0)
                        return true;
        }
        return false;
}

bool lt_handoff(struct locktable *t, struct node *n) {
        struct lt_waiter *w;
        while ((w = lt_waiter_first(n))) {
                int r = handoff_to_waiter(t, n, w);
                if (r == 0) {
                        lt_waiter_free(t, w);
                        return true;
                }
                lt_waiter_cancel(t, w, r);
        }
        return false;
}

/* ---- recording a change while waiting ---------------------------------------- */

int lt_record_and_wait(struct locktable *t, struct node *n, int *ret_doomed) {
        struct lt_op *op = n->kind == LT_LOCK ? lt_op_update(t, n)
                                              : lt_op_put_dir(t, n, NULL, NULL);
        return lt_await_record(t, n, op, ret_doomed);
}

int lt_await_record(struct locktable *t, struct node *n, struct lt_op *op, int *ret_doomed) {
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
        if (n->kind == LT_LOCK && n->linked)
                lt_shares_grant_waiting(t, n); /* a waiter ahead of them went meanwhile */
        return r;
}

void lt_apply_doomed(struct locktable *t, struct node *n, int doomed) {
        if (doomed && n->linked && n->kind == LT_LOCK)
                lt_release(t, n, (enum release_cause)(doomed - 1), &t->late);
}
