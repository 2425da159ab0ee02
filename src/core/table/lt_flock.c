/* SPDX-License-Identifier: MIT */
/* flock(2) requests on locks (SPEC §7): the flock is the lock of the name.
 * A LOCK_EX that must wait is parked (lt_waitq.c) and granted by the
 * release that hands the lock on (lt_handoff, lt_lock.c). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "lt_internal.h"

/* The lock a flock on inode ino means: that lock while it lives; once it
 * was released, whatever now holds its name (taking the free name for c:
 * then *ret_op answers the acquisition, see lt_lock_get_or_create). */
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
        int r = lt_lock_get_or_create(t, n->parent_was, n->name, c, O_WRONLY, prep, ret, ret_op);
        return r == -ENOENT || r == -EISDIR ? -ESTALE : r;
}

/* Park request id for c on n (-EWOULDBLOCK with nonblock). */
static int flock_wait(struct locktable *t, struct node *n, uint64_t owner,
                      const struct caller *c, bool nonblock, uint64_t id, struct lt_prep *prep) {
        if (nonblock) {
                t->m.contended++;
                return -EWOULDBLOCK;
        }
        if (!c->self.pid)
                return lt_waiter_park(t, n, id, owner, c, NULL);
        struct holder *hd;
        int r = lt_holder_ref(t, c, prep, &hd); /* the waiter's record, for its liveness */
        if (r != 0)
                return r;
        r = lt_waiter_park(t, n, id, owner, c, hd);
        lt_holder_unref(t, hd);
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
                *ret = lt_handle_of(n, LT_HANDLE_HOLDER, 0);
                return 0;
        }
        bool own_handle = h->kind == LT_HANDLE_HOLDER && h->ino == n->ino && h->fence == n->fence &&
                          c->uid == n->uid;
        if (n->flock_owner == owner ||
            (n->flock_owner == 0 && (own_handle || lt_is_holder(n, c)))) {
                n->flock_owner = owner; /* ours now: LOCK_UN or close releases it */
                *ret = lt_handle_of(n, LT_HANDLE_HOLDER, 0);
                return 0;
        }
        return flock_wait(t, n, owner, c, nonblock, id, prep);
}

/* Who takes the lock when the flock of c through a file opened by thread
 * opener (0: unknown) is granted: the opener's process when c is it or
 * descends from it while it runs (`exec 9>f; flock 9` makes the shell, not
 * the short-lived flock(1), the holder), with c's uid and gid; else c
 * itself. Reads /proc: call without t->mu. */
static void flock_holder(pid_t opener, const struct caller *c, struct caller *ret) {
        struct proc_id found;
        *ret = *c;
        if (!opener || opener == c->self.pid || !caller_find_lineage(c, opener, &found))
                return;
        struct caller o;
        if (holder_identify_process(found.pid, &o) == 0 &&
            o.self.start_time == found.start_time) {
                o.uid = c->uid;
                o.gid = c->gid;
                *ret = o;
        }
}

int locktable_flock(struct locktable *t, uint64_t ino, const struct lt_handle *h, uint64_t owner,
                    pid_t opener, const struct caller *by, bool nonblock, uint64_t id,
                    struct lt_handle *ret) {
        struct caller who;
        flock_holder(opener, by, &who); /* before the mutex: it reads /proc */
        const struct caller *c = &who;
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
        if (r == LT_NEED_PROC || r == LT_NEED_CMDLINE) /* the latter: never for holder_identify's c */
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

void locktable_flock_unlock(struct locktable *t, uint64_t ino, uint64_t owner, lt_removed_fn fn,
                            void *ctx) {
        struct removals gone = { 0 };
        pthread_mutex_lock(&t->mu);
        struct node *n = lt_node_by_ino(t, ino);
        if (n && n->linked && n->kind == LT_LOCK && owner && n->flock_owner == owner)
                lt_release(t, n, CAUSE_UNLOCK, &gone);
        lt_unlock(t);
        lt_removals_report(&gone, fn, ctx);
}

bool locktable_flock_cancel(struct locktable *t, uint64_t id) {
        pthread_mutex_lock(&t->mu);
        bool found = lt_waiter_remove(t, id);
        lt_unlock(t);
        return found;
}
