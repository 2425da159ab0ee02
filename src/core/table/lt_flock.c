/* SPDX-License-Identifier: MIT */
/* flock(2) and fcntl/lockf/OFD record-lock requests on locks (SPEC §7):
 * each is the lock of the name. A node records what holds it through each
 * API (flock_owner; posix_owner with the open file it came through); the
 * last of them to go releases the lock. A request that must wait is
 * parked (lt_waitq.c, one FIFO for both APIs) and granted by the release
 * that hands the lock on (lt_handoff, lt_lock.c). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>

#include "lt_internal.h"

/* The lock a request on inode ino means: that lock while it lives; once it
 * was released, whatever now holds its name (with create, taking the free
 * name for c: then *ret_op answers the acquisition, see
 * lt_lock_get_or_create). -ENOENT: nothing holds the name (without create). */
static int lock_target(struct locktable *t, uint64_t ino, const struct caller *c, bool create,
                       struct lt_prep *prep, struct node **ret, struct lt_op **ret_op) {
        *ret_op = NULL;
        struct node *n = lt_node_by_ino(t, ino);
        if (!n || n->kind != LT_LOCK)
                return -EOPNOTSUPP;
        if (n->linked) {
                *ret = n;
                return 0;
        }
        if (!create) {
                struct node *dir = lt_node_by_ino(t, n->parent_was);
                struct node *now = dir && dir->kind == LT_DIR ? lt_name_get(t, dir, n->name) : NULL;
                if (now && now->target)
                        now = now->target;
                if (!now || now->kind != LT_LOCK || lt_is_dirlock(now)) /* no file's */
                        return -ENOENT;
                *ret = now;
                return 0;
        }
        int r = lt_lock_get_or_create(t, n->parent_was, n->name, c, O_WRONLY, prep, ret, ret_op);
        return r == -ENOENT || r == -EISDIR ? -ESTALE : r;
}

/* Whether c is the holder process itself (not a descendant). */
static bool is_holder_process(const struct node *n, const struct caller *c) {
        return n->holder && c->self.pid > 0 && c->self.pid == n->holder->proc.pid &&
               c->self.start_time == n->holder->proc.start_time;
}

/* Whether request rq of c (through handle h) holds n already or may take
 * it at once: its owner holds it through rq's API; or nobody does and c
 * is the holder (or, when n is held through no other API, a process of
 * its own), or, when n is held through no other API either, c opened it
 * as its holder (the handle of the create). A descendant never joins a
 * lock held through the other API: the holder's death would end it under
 * the descendant. A record lock's owner is a kernel address, which a new
 * open (OFD) or a new process may reuse while the old one's RELEASE is on
 * its way: the same owner is the same lock only for the holder process
 * itself, through another file, or through the same file while the
 * holder lives (a noflush descriptor's POSIX lock outlives its process
 * until RELEASE). */
static bool may_hold(const struct node *n, const struct lt_lock_req *rq, const struct lt_handle *h,
                     const struct caller *c) {
        uint64_t mine = rq->posix ? n->posix_owner : n->flock_owner;
        uint64_t other = rq->posix ? n->flock_owner : n->posix_owner;
        if (mine && rq->posix && rq->file != n->posix_file)
                return mine == rq->owner && is_holder_process(n, c);
        if (mine && rq->posix)
                return mine == rq->owner &&
                       (!n->holder || is_holder_process(n, c) || !lt_holder_dead(n->holder));
        if (mine)
                return mine == rq->owner;
        if (lt_is_holder(n, c))
                return other == 0 || is_holder_process(n, c);
        bool own_handle = h && h->kind == LT_HANDLE_HOLDER && h->ino == n->ino &&
                          h->fence == n->fence && c->uid == n->uid;
        return own_handle && other == 0;
}

/* Park rq for c on n (-EWOULDBLOCK, which is -EAGAIN, when nonblock). */
static int lock_wait(struct locktable *t, struct node *n, const struct lt_lock_req *rq,
                     const struct caller *c, struct lt_prep *prep) {
        if (rq->nonblock) {
                t->m.contended++;
                return -EWOULDBLOCK;
        }
        if (!c->self.pid)
                return lt_waiter_park(t, n, rq, c, NULL);
        struct holder *hd;
        int r = lt_holder_ref(t, c, prep, &hd); /* the waiter's record, for its liveness */
        if (r != 0)
                return r;
        r = lt_waiter_park(t, n, rq, c, hd);
        lt_holder_unref(t, hd);
        return r;
}

/* Drop what rq's owner holds of n through rq's API as its recorded
 * holder; the last hold to go releases n (or hands it on). */
static void drop_own_hold(struct locktable *t, struct node *n, const struct lt_lock_req *rq) {
        if (rq->posix)
                n->posix_owner = n->posix_file = 0;
        else
                n->flock_owner = 0;
        if (!n->flock_owner && !n->posix_owner)
                lt_release(t, n, CAUSE_UNLOCK, &t->late);
}

/* Request rq of its recorded holder (may_hold): a shared one keeps n
 * exclusive while its holder holds it through the other API too, else
 * makes it shared (a downgrade) and takes in the shared waiters; an
 * exclusive one makes a shared lock exclusive when nobody shares it (an
 * upgrade), else it is a release and a new request (SPEC R7.3), which
 * F_SETLK refuses (-EAGAIN: the kernel keeps the read lock then). Returns
 * 0 (granted), 1 (released: try again), -EAGAIN, or -EDEADLK when it holds
 * n through the other API too (it would wait on itself). */
static int holder_request(struct locktable *t, struct node *n, const struct lt_lock_req *rq) {
        uint64_t other = rq->posix ? n->flock_owner : n->posix_owner;
        bool other_shared = n->refs_shared & (rq->posix ? LT_REF_FLOCK : LT_REF_POSIX);
        if (rq->shared) {
                lt_lock_ref_set(n, rq);
                if (!n->shared && (!other || other_shared)) {
                        n->shared = true;
                        lt_shares_grant_waiting(t, n);
                }
                return 0;
        }
        if (n->shared && n->n_shares) {
                if (rq->posix && rq->nonblock) {
                        t->m.contended++;
                        return -EAGAIN;
                }
                if (other)
                        return -EDEADLK; /* it would wait on its own hold */
                drop_own_hold(t, n, rq);
                return 1;
        }
        n->shared = false;
        lt_lock_ref_set(n, rq);
        return 0;
}

/* Whether c's process shares n through the API other than rq's: an
 * exclusive rq would wait on that share. */
static bool shares_through_other_api(const struct node *n, const struct lt_lock_req *rq,
                                     const struct caller *c) {
        const struct list *l;
        list_for_each(l, &n->shares) {
                const struct lt_share *s = list_entry(l, struct lt_share, link);
                if (s->rq.posix != rq->posix && s->h && c->self.pid == s->h->proc.pid &&
                    c->self.start_time == s->h->proc.start_time)
                        return true;
        }
        return false;
}

/* Request rq of c on n, held by another or shared by c (share): joins a
 * shared lock when nobody waits (a queued writer goes first), converts
 * c's share to an exclusive request (a release and a new request), or
 * waits; -EDEADLK for a waiting exclusive request of a process that
 * shares n through the other API (it would wait on itself). Returns 0 (granted,
 * *ret set), LT_PARKED or -errno. */
static int other_request(struct locktable *t, struct node *n, const struct lt_lock_req *rq,
                         const struct caller *c, struct lt_share *share, struct lt_prep *prep,
                         struct lt_handle *ret) {
        if (share && rq->shared) { /* holds it so already */
                *ret = lt_share_handle(n, rq);
                return 0;
        }
        if (!rq->shared && !rq->nonblock && shares_through_other_api(n, rq, c))
                return -EDEADLK;
        if (share) { /* to exclusive */
                if (rq->posix && rq->nonblock) {
                        t->m.contended++;
                        return -EAGAIN;
                }
                lt_share_end(t, share);
                if (!rq->posix && rq->nonblock) { /* flock(2): the share is gone */
                        t->m.contended++;
                        return -EWOULDBLOCK;
                }
        }
        if (rq->shared && n->shared && list_empty(&n->wq) && !n->remote) {
                struct holder *hd = NULL;
                int r = c->self.pid ? lt_holder_ref(t, c, prep, &hd) : 0;
                if (r != 0)
                        return r;
                r = lt_share_add(t, n, rq, c, hd);
                if (hd)
                        lt_holder_unref(t, hd); /* the share holds its own */
                if (r == 0) {
                        *ret = lt_share_handle(n, rq);
                        lt_share_record(t, n);
                }
                return r;
        }
        return lock_wait(t, n, rq, c, prep);
}

/* One try of lock_request under the lock; *ret_op as in lock_target. */
static int lock_step(struct locktable *t, uint64_t ino, const struct lt_handle *h,
                     const struct lt_lock_req *rq, const struct caller *c, struct lt_prep *prep,
                     struct lt_handle *ret, struct node **ret_n, struct lt_op **ret_op) {
        struct node *n;
        int r = lock_target(t, ino, c, true, prep, &n, ret_op);
        if (r != 0)
                return r;
        if (n->busy && !*ret_op)
                return LT_NEED_SETTLED;
        *ret_n = n;
        if (*ret_op) { /* the name was free: c takes it by this request */
                n->how = rq->posix ? LOCK_HOW_FCNTL : LOCK_HOW_FLOCK;
                n->shared = rq->shared;
                lt_lock_ref_set(n, rq); /* ours now: its unlock or close releases it */
                *ret = lt_handle_of(n, LT_HANDLE_HOLDER, 0);
                return 0;
        }
        struct lt_share *share = lt_share_of(n, rq, c);
        if (share || !may_hold(n, rq, h, c))
                return other_request(t, n, rq, c, share, prep, ret);
        r = holder_request(t, n, rq);
        if (r == 0)
                *ret = lt_handle_of(n, LT_HANDLE_HOLDER, 0);
        return r == 1 ? LT_NEED_FLUSH : r; /* its release is with the store */
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

/* A flock or record-lock request rq of c on inode ino (handle h). */
static int lock_request(struct locktable *t, uint64_t ino, const struct lt_handle *h,
                        const struct lt_lock_req *rq, const struct caller *c,
                        struct lt_handle *ret) {
        struct lt_prep prep = { .pidfd = -1 };
        struct node *n = NULL;
        struct lt_op *op;
        int r;
        pthread_mutex_lock(&t->mu);
        for (;;) {
                r = lock_step(t, ino, h, rq, c, &prep, ret, &n, &op);
                if (r == LT_NEED_SETTLED) {
                        lt_wait_settled(t);
                        continue;
                }
                if (r == LT_NEED_FLUSH) {
                        lt_unlock(t);
                        pthread_mutex_lock(&t->mu);
                        continue;
                }
                if (r != LT_NEED_PROC || prep.ready)
                        break;
                pthread_mutex_unlock(&t->mu);
                lt_prep_proc(&prep, &c->self);
                pthread_mutex_lock(&t->mu);
        }
        if (r == LT_NEED_PROC || r == LT_NEED_CMDLINE) /* the latter: never for an identified c */
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

/* The request of mode (LT_LOCK_*) through handle h (NULL: a reader's). */
static struct lt_lock_req lock_req(bool posix, uint64_t owner, uint64_t file, unsigned mode,
                                   const struct lt_handle *h, uint64_t id) {
        return (struct lt_lock_req){ .posix = posix, .owner = owner, .file = file,
                                     .nonblock = (mode & LT_LOCK_NB) != 0,
                                     .shared = (mode & LT_LOCK_SHARED) != 0,
                                     .kind = h ? h->kind : LT_HANDLE_READER,
                                     .append = h && h->append, .id = id };
}

int locktable_flock(struct locktable *t, uint64_t ino, const struct lt_handle *h, uint64_t owner,
                    pid_t opener, const struct caller *by, unsigned mode, uint64_t id,
                    struct lt_handle *ret) {
        struct caller who;
        flock_holder(opener, by, &who); /* before the mutex: it reads /proc */
        struct lt_lock_req rq = lock_req(false, owner, owner, mode, h, id);
        return lock_request(t, ino, h, &rq, &who, ret);
}

int locktable_posix_lock(struct locktable *t, uint64_t ino, const struct lt_handle *h,
                         uint64_t owner, uint64_t file, const struct caller *c, unsigned mode,
                         uint64_t id, struct lt_handle *ret) {
        if (!owner || !file)
                return -EINVAL;
        struct lt_lock_req rq = lock_req(true, owner, file, mode, h, id);
        return lock_request(t, ino, h, &rq, c, ret);
}

/* ---- unlocking -------------------------------------------------------------- */

/* What an unlock matches: a flock owner, a record-lock owner, or the open
 * file a record lock was taken through. */
enum unlock_by { BY_FLOCK_OWNER, BY_POSIX_OWNER, BY_POSIX_FILE };

/* Drop what key holds of the lock of inode ino; the last hold to go
 * releases it (or hands it on), the names that go reported through fn. */
static void unlock(struct locktable *t, uint64_t ino, enum unlock_by by, uint64_t key,
                   lt_removed_fn fn, void *ctx) {
        if (!key)
                return;
        struct removals gone = { 0 };
        pthread_mutex_lock(&t->mu);
        struct node *n = lt_node_by_ino(t, ino);
        bool held = n && n->linked && n->kind == LT_LOCK;
        bool match = held && (by == BY_FLOCK_OWNER   ? n->flock_owner == key
                              : by == BY_POSIX_OWNER ? n->posix_owner == key
                                                     : n->posix_file == key);
        struct lt_share *s;
        while (held && (s = lt_share_find(n, by != BY_FLOCK_OWNER, by == BY_POSIX_FILE ? 0 : key,
                                          by == BY_POSIX_FILE ? key : 0)))
                lt_share_end(t, s); /* one of its sharers: the others keep it */
        if (match) {
                unsigned left = by == BY_FLOCK_OWNER ? LT_REF_POSIX : LT_REF_FLOCK;
                if (by == BY_FLOCK_OWNER)
                        n->flock_owner = 0;
                else
                        n->posix_owner = n->posix_file = 0;
                if (!n->flock_owner && !n->posix_owner) {
                        lt_release(t, n, CAUSE_UNLOCK, &gone);
                } else if (!n->shared && (n->refs_shared & left)) {
                        n->shared = true; /* what it still holds is shared */
                        lt_shares_grant_waiting(t, n);
                }
        }
        lt_unlock(t);
        lt_removals_report(&gone, fn, ctx);
}

void locktable_flock_unlock(struct locktable *t, uint64_t ino, uint64_t owner, lt_removed_fn fn,
                            void *ctx) {
        unlock(t, ino, BY_FLOCK_OWNER, owner, fn, ctx);
}

void locktable_posix_unlock(struct locktable *t, uint64_t ino, uint64_t owner, lt_removed_fn fn,
                            void *ctx) {
        unlock(t, ino, BY_POSIX_OWNER, owner, fn, ctx);
}

void locktable_posix_file_closed(struct locktable *t, uint64_t ino, uint64_t file,
                                 lt_removed_fn fn, void *ctx) {
        unlock(t, ino, BY_POSIX_FILE, file, fn, ctx);
}

/* The pid F_GETLK names for c's conflict on n: the recorded holder's, or
 * when that is c's process, a sharer's of another process (0: none
 * visible). */
static pid_t conflict_pid(const struct node *n, const struct caller *c) {
        if (n->holder && !is_holder_process(n, c))
                return n->holder->proc.pid;
        const struct list *l;
        list_for_each(l, &n->shares) {
                const struct lt_share *s = list_entry(l, struct lt_share, link);
                if (s->h && s->h->proc.pid != c->self.pid)
                        return s->h->proc.pid;
        }
        return n->holder ? n->holder->proc.pid : 0;
}

int locktable_posix_test(struct locktable *t, uint64_t ino, const struct lt_handle *h,
                         uint64_t owner, uint64_t file, const struct caller *c, unsigned mode,
                         pid_t *ret_pid) {
        *ret_pid = 0;
        struct lt_lock_req rq = lock_req(true, owner, file, mode, h, 0);
        struct lt_op *op;
        struct node *n;
        pthread_mutex_lock(&t->mu);
        int r = lock_target(t, ino, c, false, NULL, &n, &op);
        bool joins = r == 0 && rq.shared && n->shared && list_empty(&n->wq) && !n->remote;
        bool own = r == 0 && may_hold(n, &rq, h, c) && (rq.shared || !n->n_shares);
        bool mine = r == 0 && rq.shared && lt_share_of(n, &rq, c);
        if (r == 0 && !n->busy && (own || joins || mine))
                r = 0;
        else if (r == 0) {
                *ret_pid = conflict_pid(n, c);
                r = n->shared ? 2 : 1;
        }
        pthread_mutex_unlock(&t->mu);
        return r == -ENOENT ? 0 : r;
}

bool locktable_flock_cancel(struct locktable *t, uint64_t id) {
        pthread_mutex_lock(&t->mu);
        struct node *n = lt_waiter_remove(t, id);
        if (n) /* an exclusive request no longer holds back those behind it */
                lt_shares_grant_waiting(t, n);
        lt_unlock(t);
        return n != NULL;
}
