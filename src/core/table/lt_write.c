/* SPDX-License-Identifier: MIT */
/* Requests that change a lock's content or renew it: write (with the pid
 * claim and TTL its content may carry, SPEC R3.3, R5.3) and setattr
 * (truncate, touch). Each change is recorded by the store before it is
 * answered; a refused change is rolled back whole. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "log.h"
#include "lt_internal.h"
#include "status.h"

/* Live lock behind handle h whose acquisition is still h's, or NULL. */
static struct node *handle_lock(struct locktable *t, const struct lt_handle *h) {
        struct node *n = lt_node_by_ino(t, h->ino);
        if (!n || !n->linked || n->kind != LT_LOCK || n->fence != h->fence)
                return NULL;
        return n;
}

static int content_resize(struct node *n, size_t len) {
        size_t cap = n->content_cap;
        if (array_grow(&n->content, &cap, len, 1, 64) < 0)
                return -ENOMEM;
        n->content_cap = (uint32_t)cap;
        if (len > n->content_len)
                memset(n->content + n->content_len, 0, len - n->content_len);
        n->content_len = len;
        return 0;
}

/* ---- write --------------------------------------------------------------------- */

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

/* Put lock n back as it was before the refused write w; returns the
 * release still due (1 + cause, 0 for none) instead of doomed: if the
 * holder before the write died meanwhile, the lock goes as its death
 * would have released it, and a claimed process's death is moot. */
static int write_rollback(struct locktable *t, struct node *n, struct write_state *w,
                          int doomed) {
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
                if (w->old_holder && !w->old_holder->dead && !lt_holder_dead(w->old_holder)) {
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
        return doomed;
}

/* The store's answer to a write. The lock was busy while the store was
 * asked (nothing else changed it, releases were deferred). Refused: the
 * lock goes back to what it was (write_rollback). A release deferred
 * meanwhile happens now (a TTL that ran out meanwhile ran out after the
 * renewal too). */
static void write_done(struct locktable *t, struct lt_op *op) {
        struct write_state *w = op->arg;
        struct node *n = w->n;
        int doomed = n->doomed;
        n->busy = false;
        n->doomed = 0;
        if (op->err < 0 && n->linked) {
                doomed = write_rollback(t, n, w, doomed);
                log_msg(LOG_ERR, "cannot record the content of %s: %s (write refused)",
                        op->view.path ? op->view.path : n->name, strerror(-op->err));
        }
        if (doomed && n->linked)
                lt_release(t, n, (enum release_cause)(doomed - 1), &t->late);
        else if (n->linked)
                lt_shares_grant_waiting(t, n); /* a waiter ahead of them went meanwhile */
        free(w->old_content);
        w->old_content = NULL;
        if (w->old_holder)
                lt_holder_unref(t, w->old_holder);
        w->old_holder = NULL;
        n->nlookup--; /* pinned by the write */
        lt_node_maybe_free(t, n);
}

/* Make w's new content from n's and the written bytes: LT_NEED_PARSE (to
 * parse it outside the lock), -EFBIG or -ENOMEM. */
static int write_build(struct locktable *t, const struct node *n, const struct lt_handle *h,
                       off_t off, const void *buf, size_t size, struct write_state *w) {
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

/* Keep what write_rollback puts back: n as it is now, its holder old
 * (referenced) with how and liveness from before the claim. */
static void write_save(struct write_state *w, struct node *n, struct holder *old,
                       enum lock_how old_how, bool old_liveness) {
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
}

/* Put w's content into n, renew, and queue the record (NULL: nothing to
 * record); n is pinned and busy until write_done. */
static struct lt_op *write_apply(struct locktable *t, struct node *n, struct write_state *w) {
        n->content = w->content;
        n->content_len = n->content_cap = (uint32_t)w->len;
        lt_quota_content(t, n);
        w->content = NULL;
        n->content_gen++;
        /* The whole content says what TTL the holder wants; without a
         * "ttl_s" in it the lock's state decides: content "0" detached
         * it (the mount's TTL), a claim gave it a live holder (none,
         * unless holder_ttl), SPEC R5.3. */
        n->ttl_s = w->ttl_set ? w->ttl_s : lt_ttl_default(t, n->holder == NULL);
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
                if (w->old_holder)
                        lt_holder_unref(t, w->old_holder);
                w->old_holder = NULL;
        }
        return op;
}

/* Step of a write under the lock. 0 when the write is done (its store
 * call queued in *ret_op), LT_NEED_PARSE when w->content must be parsed
 * outside the lock first, LT_NEED_PROC / LT_NEED_SETTLED, or -errno. */
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
        if (!w->content)
                return write_build(t, n, h, off, buf, size, w);
        int r = lt_quota_content_check(t, n, w->len);
        if (r < 0)
                return r; /* the old content stays */
        struct holder *old = n->holder;
        enum lock_how old_how = n->how;
        bool old_liveness = n->liveness_known;
        if (old)
                old->refs++; /* kept for a rollback */
        if (w->has_claim && (r = lt_apply_claim(t, n, c, &w->claim, &w->self_prep)) != 0) {
                if (old)
                        lt_holder_unref(t, old);
                return r;
        }
        write_save(w, n, old, old_how, old_liveness);
        *ret_op = write_apply(t, n, w);
        return 0;
}

/* Outside the lock: the claim and TTL of w's new content. */
static void write_parse(struct write_state *w, const struct caller *c) {
        struct content_claim cc = status_parse_claim(w->content, w->len);
        if (w->has_claim)
                lt_claim_done(&w->claim);
        w->has_claim = cc.has_pid;
        if (cc.has_pid) /* /proc of the claimed process, unlocked */
                lt_claim_prepare(&w->claim, c, cc.pid);
        w->ttl_set = cc.has_ttl;
        w->ttl_s = cc.ttl_s;
}

/* Run write_step until it is done, preparing what it asks for outside the
 * lock (t->mu held on entry and return). */
static int write_steps(struct locktable *t, const struct lt_handle *h, const struct caller *c,
                       off_t off, const void *buf, size_t size, struct write_state *w,
                       struct lt_op **ret_op) {
        for (;;) {
                int r = write_step(t, h, c, off, buf, size, w, ret_op);
                if (r == LT_NEED_SETTLED) {
                        lt_wait_settled(t);
                        continue;
                }
                if (r != LT_NEED_PARSE && r != LT_NEED_PROC)
                        return r;
                if (r == LT_NEED_PROC && w->self_prep.ready)
                        return -ESRCH;
                pthread_mutex_unlock(&t->mu);
                if (r == LT_NEED_PARSE)
                        write_parse(w, c);
                else
                        lt_prep_proc(&w->self_prep, &c->self);
                pthread_mutex_lock(&t->mu);
        }
}

ssize_t locktable_write(struct locktable *t, const struct lt_handle *h, const struct caller *c,
                        off_t off, const void *buf, size_t size) {
        struct write_state w = { .self_prep = { .pidfd = -1 } };
        struct lt_op *op = NULL;
        pthread_mutex_lock(&t->mu);
        int r = write_steps(t, h, c, off, buf, size, &w, &op);
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

/* ---- setattr ---------------------------------------------------------------------- */

/* True when c (through h, or by process when h is NULL) may change lock n
 * as its holder. */
static bool setattr_may(struct locktable *t, struct node *n, const struct lt_handle *h,
                        const struct caller *c, unsigned what) {
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
        return holder;
}

/* Who may change node n (NULL: unknown) as asked: 0 (also for a
 * directory: nothing to change), or the request's -errno. */
static int setattr_check(struct locktable *t, struct node *n, const struct lt_handle *h,
                         const struct caller *c, unsigned what, const struct lt_times *times) {
        if (n && !n->linked && n->kind == LT_LOCK) /* a descriptor of a lost lock
                                                     * (futimens comes without a handle) */
                return (what & LT_SET_SIZE) ? -EEXIST : -EPERM;
        if (!n || (!n->linked && n != t->root))
                return -ENOENT;
        if (n->kind == LT_DIR && (what & LT_SET_SIZE))
                return -EISDIR;
        /* a namespace's mode means nothing (accepted); its times are kept:
         * explicit ones for its creator's uid or root, "now" for anyone,
         * as utimensat(2) would on a directory writable by all */
        if (n->kind == LT_DIR)
                return (what & LT_SET_TIMES) && times && times->explicit_time && c->uid != 0 &&
                                       c->uid != n->uid
                               ? -EPERM
                               : 0;
        if (lt_is_dirlock(n) && (what & LT_SET_SIZE))
                return -EISDIR;
        if (!setattr_may(t, n, h, c, what)) {
                if (what & LT_SET_SIZE)
                        t->m.contended++;
                return (what & LT_SET_SIZE) ? -EEXIST : -EPERM;
        }
        return 0;
}

/* Truncate (or extend) n's content to size, keeping the old bytes in
 * *ret_old (malloc'd, NULL when there were none). -EFBIG, -EDQUOT,
 * -ENOMEM, nothing changed. */
static int setattr_resize(struct locktable *t, struct node *n, off_t size, char **ret_old) {
        uint32_t old_len = n->content_len;
        char *old_content = NULL;
        if (size < 0 || (uint64_t)size > t->cfg.max_content)
                return -EFBIG;
        int r = lt_quota_content_check(t, n, (size_t)size);
        if (r < 0)
                return r;
        if (old_len && !(old_content = malloc(old_len)))
                return -ENOMEM;
        if (old_len)
                memcpy(old_content, n->content, old_len);
        r = content_resize(n, (size_t)size);
        if (r < 0) {
                free(old_content);
                return r;
        }
        lt_quota_content(t, n);
        n->content_gen++;
        *ret_old = old_content;
        return 0;
}

/* Resize and/or renew lock n and record it (letting go of t->mu
 * meanwhile): 0, -EIO (refused: as it was), -ENOENT (released meanwhile),
 * or setattr_resize's -errno. */
static int setattr_change(struct locktable *t, struct node *n, unsigned what, off_t size) {
        char *old_content = NULL;
        uint32_t old_len = n->content_len;
        struct lt_renewal old_renewal = lt_renewal_of(n);
        int r;
        if ((what & LT_SET_SIZE) && (r = setattr_resize(t, n, size, &old_content)) < 0)
                return r;
        lt_renew(t, n);
        int doomed;
        r = 0;
        if (lt_record_and_wait(t, n, &doomed) < 0) { /* not recorded: as it was */
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
        lt_apply_doomed(t, n, doomed);
        if (!n->linked && r == 0)
                r = -ENOENT;
        return r;
}

/* Keep the times set on directory (or directory lock) n, exactly (SPEC
 * R7.5); in memory only. The time not set keeps what it showed. */
static void times_keep(struct node *n, const struct lt_times *times) {
        if (!n->times_set) {
                struct lt_attr a;
                lt_fill_attr(n, &a);
                n->mtime = (struct timespec){ .tv_sec = a.mtime_ms / 1000,
                                              .tv_nsec = a.mtime_ms % 1000 * 1000000 };
                n->atime = n->mtime;
                n->times_set = true;
        }
        if (times->set_atime)
                n->atime = times->atime;
        if (times->set_mtime)
                n->mtime = times->mtime;
}

int locktable_setattr_times(struct locktable *t, uint64_t ino, const struct lt_handle *h,
                            const struct caller *c, unsigned what, off_t size,
                            const struct lt_times *times, struct lt_attr *ret) {
        if (ino == LT_INO_META_DIR || lt_ino_is_meta_file(ino))
                return -EACCES;
        pthread_mutex_lock(&t->mu);
        struct node *n;
        while ((n = lt_node_by_ino(t, ino)) && n->busy)
                lt_wait_settled(t);
        int r = setattr_check(t, n, h, c, what, times);
        if (r == 0 && n->kind == LT_LOCK && (what & (LT_SET_SIZE | LT_SET_TIMES)))
                r = setattr_change(t, n, what, size);
        if (r == 0 && (what & LT_SET_TIMES) && times && (times->set_atime || times->set_mtime) &&
            (n->kind == LT_DIR || lt_is_dirlock(n)))
                times_keep(n, times);
        if (r == 0)
                lt_fill_lock_attr(t, n, ret);
        lt_unlock(t);
        return r;
}

int locktable_setattr(struct locktable *t, uint64_t ino, const struct lt_handle *h,
                      const struct caller *c, unsigned what, off_t size, struct lt_attr *ret) {
        return locktable_setattr_times(t, ino, h, c, what, size, NULL, ret);
}
