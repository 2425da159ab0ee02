/* SPDX-License-Identifier: MIT */
/* Requests that change names: link, unlink, break (lockctl break), rename,
 * mkdir and rmdir. Who may do what is stated in locktable.h; each change
 * is recorded by the store before it is answered (a refused one is
 * undone, -EIO). */
#include <errno.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "lt_internal.h"

/* A break (lockctl break): root, or with user_break the uid the lock
 * belongs to. */
static bool may_break(const struct locktable *t, const struct node *n, const struct caller *c) {
        return c->uid == 0 || (t->cfg.user_break && c->uid == n->uid);
}

/* Whether n has a holder: a process of this host (watched through its
 * pidfd) or another host's, whose liveness is that host's business. Such a
 * lock is never stale (SPEC R3.4). */
static bool is_held(const struct node *n) {
        return n->holder || (n->remote && n->how != LOCK_HOW_DETACHED);
}

/* May c unlink (any name of) lock n? SPEC R3.4: its holder and the
 * holder's descendants may; anyone else, root included, gets -EBUSY for a
 * held lock (breaking one is locktable_break's); a detached lock goes for
 * its creator's uid and for root, -EPERM for others. */
static int unlink_may(const struct node *n, const struct caller *c) {
        if (lt_may_release(n, c))
                return 0;
        if (is_held(n))
                return -EBUSY;
        return c->uid == 0 ? 0 : -EPERM;
}

/* unlink of shared lock n by one of its holders (SPEC R7.3): it ends the
 * holds of c (its shares; as the recorded holder, its place goes to the
 * oldest sharer), and the name goes with the last holder only. False when
 * c holds none of n. */
static bool shared_unlink(struct locktable *t, struct node *n, const struct caller *c,
                          struct removals *report) {
        bool recorded = lt_may_release(n, c);
        if (!lt_shares_end_of(t, n, c) && !recorded)
                return false;
        if (recorded) {
                lt_lock_refs_clear(n);
                /* with sharers left, a release that leaves it to them */
                lt_release(t, n, n->n_shares ? CAUSE_UNLOCK : CAUSE_UNLINK, report);
        }
        return true;
}

/* Release lock n for c: as its holder (or a detached lock's creator uid),
 * or else as a break (may_break; by unlink, only root's of a detached
 * lock), for which *ret_forced receives the lock as it was; unlink of a
 * shared lock by one of its holders ends that holder's holds only
 * (shared_unlink). 0, -EBUSY (unlink of a held lock) or -EPERM. Names that go are queued in report. */
static int release_or_break(struct locktable *t, struct node *n, const struct caller *c,
                            bool by_unlink, struct lock_view *ret_forced,
                            struct removals *report) {
        if (by_unlink && n->n_shares && shared_unlink(t, n, c, report))
                return 0;
        if (lt_may_release(n, c)) {
                lt_release(t, n, n->holder ? CAUSE_UNLINK : CAUSE_DETACHED, report);
                return 0;
        }
        int r = by_unlink ? unlink_may(n, c) : may_break(t, n, c) ? 0 : -EPERM;
        if (r < 0)
                return r;
        if (lt_node_to_view(n, 0, ret_forced) < 0)
                ret_forced->path = NULL;
        lt_release(t, n, CAUSE_ROOT, report);
        return 0;
}

/* Sticky-bit rule for namespaces: only their creator's uid or root may
 * remove or rename them. */
static int dir_may_change(const struct node *dir, const struct caller *c) {
        return c->uid == 0 || c->uid == dir->uid ? 0 : -EPERM;
}

/* The prologue of unlink and rmdir, under t->mu: the node stored as name
 * in parent (*ret_raw; possibly another name of a lock), with wait_busy
 * once its lock's acquisition is settled. 0, -ENOENT, -EACCES for
 * .lockfs, or the directory's -errno. */
static int removal_target(struct locktable *t, uint64_t parent, const char *name,
                          bool wait_busy, struct node **ret_raw) {
        for (;;) {
                struct node *dir;
                int r = lt_dir_for_removal(t, parent, name, &dir);
                if (r < 0)
                        return r;
                struct node *raw = lt_name_get(t, dir, name);
                struct node *n = raw && raw->target ? raw->target : raw;
                if (!n)
                        return -ENOENT;
                if (!wait_busy || !n->busy) {
                        *ret_raw = raw;
                        return 0;
                }
                lt_wait_settled(t);
        }
}

/* ---- unlink and break ---------------------------------------------------------- */

/* Remove one of several names of a lock once the store has recorded it
 * (the mutex is let go meanwhile, the lock busy); -EIO and nothing changed
 * when the store refuses. */
static int name_remove(struct locktable *t, struct node *raw) {
        struct name_change u;
        lt_name_unhook(t, raw, &u);
        struct lt_op *op = lt_op_update(t, u.n); /* the record without the name */
        lt_name_rehook(t, &u);
        int doomed;
        int r = lt_await_record(t, u.n, op, &doomed);
        if (r == 0) {
                lt_name_unhook(t, raw, &u); /* nothing changed them: n was busy */
                lt_name_drop(t, &u);
        } else {
                log_msg(LOG_ERR, "cannot record the removal of a name of %s (unlink refused)",
                        u.n->name);
                r = -EIO;
        }
        lt_apply_doomed(t, u.n, doomed);
        return r;
}

/* Unlink of raw (a lock's name) by c. */
static int unlink_name(struct locktable *t, struct node *raw, const struct caller *c,
                       struct lock_view *ret_forced) {
        struct node *n = raw->target ? raw->target : raw;
        if (n->kind == LT_DIR || lt_is_dirlock(n))
                return -EISDIR;
        if (c->partial && n->holder && !lt_is_holder(n, c))
                return LT_NEED_LINEAGE; /* may be a descendant: needs the ancestry */
        if (n->n_aliases) { /* one of several names: the lock stays */
                int r = n->n_shares ? -EBUSY : unlink_may(n, c); /* its sharers' names stay */
                return r < 0 ? r : name_remove(t, raw);
        }
        return release_or_break(t, n, c, true, ret_forced, NULL);
}

int locktable_unlink(struct locktable *t, uint64_t parent, const char *name,
                     const struct caller *c, struct lock_view *ret_forced) {
        memset(ret_forced, 0, sizeof(*ret_forced));
        int r = lt_name_check(name);
        if (r < 0)
                return r;
        pthread_mutex_lock(&t->mu);
        struct node *raw;
        r = removal_target(t, parent, name, true, &raw);
        if (r == 0)
                r = unlink_name(t, raw, c, ret_forced);
        lt_unlock(t); /* a release may have handed the lock to a waiter */
        return r;
}

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
        if (n && n->kind == LT_DIR)
                r = -EISDIR;
        else if (!n || n->kind != LT_LOCK)
                r = n ? -EINVAL : -ESTALE;
        else if (!n->linked || n->fence != fence)
                r = -ESTALE; /* released, or handed on: not the acquisition named */
        else
                r = release_or_break(t, n, c, false, ret_forced, &gone);
        lt_unlock(t); /* a release may have handed the lock to a waiter */
        lt_removals_report(&gone, fn, ctx); /* the kernel did not see this release */
        return r;
}

/* ---- link ----------------------------------------------------------------------- */

/* May c give lock n (NULL: unknown ino) the new name newname in
 * newparent? 0 with the directory in *ret_dir, or the request's -errno. */
static int link_check(struct locktable *t, struct node *n, uint64_t newparent,
                      const char *newname, const struct caller *c, struct node **ret_dir) {
        if (!n || !n->linked || n->kind != LT_LOCK)
                return n && n->kind == LT_DIR ? -EPERM : -ENOENT;
        if (lt_is_dirlock(n))
                return -EPERM; /* no hard links to a directory */
        if (n->n_shares)
                return -EBUSY; /* its names stay while others share it (R7.3) */
        if (1 + n->n_aliases >= (t->cfg.max_names ? t->cfg.max_names : LT_MAX_NAMES_DEFAULT))
                return -EMLINK; /* the cap keeps the journal record bounded */
        struct node *newdir;
        int r = lt_dir_get(t, newparent, &newdir);
        if (r < 0)
                return r;
        if (lt_name_is_meta(newdir, newname) || lt_name_get(t, newdir, newname)) {
                t->m.contended++;
                return -EEXIST;
        }
        if (!lt_may_release(n, c))
                return -EPERM;
        if (t->cfg.shared)
                return -EXDEV; /* a second name would be no key of the shared store */
        if ((r = lt_room_check(t, newdir, newname)) < 0 || (r = lt_quota_room(t, n->uid, 1)) < 0)
                return r; /* the new name counts to the lock's uid */
        *ret_dir = newdir;
        return 0;
}

/* Give lock n the name newname in newdir and record it (letting go of
 * t->mu meanwhile): the new name becomes the lock's own (its status path);
 * the old one, typically a dotlock tool's temp file, stays as an alias.
 * 0, -ENOMEM, or -EIO (refused: undone). */
static int link_apply(struct locktable *t, struct node *n, struct node *newdir,
                      const char *newname, struct lt_attr *ret) {
        struct node *a;
        int r = lt_alias_add(t, n, newdir, newname, &a);
        if (r < 0)
                return r;
        lt_alias_swap(t, n, a);
        int doomed;
        if (lt_record_and_wait(t, n, &doomed) < 0) { /* not recorded: undo */
                lt_alias_swap(t, n, a);
                lt_alias_remove(t, a);
                log_msg(LOG_ERR, "cannot record the new name of %s (link refused)", n->name);
                r = -EIO;
        } else {
                n->nlookup++;
                lt_fill_attr(n, ret);
        }
        lt_apply_doomed(t, n, doomed);
        return r;
}

int locktable_link(struct locktable *t, uint64_t ino, uint64_t newparent, const char *newname,
                   const struct caller *c, struct lt_attr *ret) {
        int r = lt_name_check(newname);
        if (r < 0)
                return r;
        pthread_mutex_lock(&t->mu);
        struct node *n, *newdir;
        while ((n = lt_node_by_ino(t, ino)) && n->busy)
                lt_wait_settled(t);
        r = link_check(t, n, newparent, newname, c, &newdir);
        if (r == 0)
                r = link_apply(t, n, newdir, newname, ret);
        lt_unlock(t);
        return r;
}

/* ---- rename ---------------------------------------------------------------------- */

static bool dir_contains(const struct node *dir, const struct node *n) {
        for (; n; n = n->parent)
                if (n == dir)
                        return true;
        return false;
}

/* The directories and the node of a rename, once neither name is busy.
 * 0 or the request's -errno. */
static int rename_resolve(struct locktable *t, uint64_t parent, const char *name,
                          uint64_t newparent, const char *newname, struct node **ret_dir,
                          struct node **ret_newdir, struct node **ret_n) {
        for (;;) {
                int r = lt_dir_get(t, parent, ret_dir);
                if (r == 0)
                        r = lt_dir_get(t, newparent, ret_newdir);
                if (r < 0)
                        return r;
                if (lt_name_is_meta(*ret_dir, name) || lt_name_is_meta(*ret_newdir, newname))
                        return -EACCES;
                struct node *n = lt_name_get(t, *ret_dir, name);
                if (!n)
                        return -ENOENT;
                struct node *busy = lt_name_get(t, *ret_newdir, newname);
                if (!n->busy && !(busy && busy->busy)) {
                        *ret_n = n;
                        return 0;
                }
                lt_wait_settled(t);
        }
}

/* May c rename n to newname in newdir? 0, 1 when it is that name already
 * (nothing to do), or the request's -errno. */
static int rename_check(struct locktable *t, struct node *n, struct node *newdir,
                        const char *newname, const struct caller *c) {
        if (n->target) /* a second name stays where link(2) put it */
                return -EPERM;
        if (lt_is_dirlock(n))
                return -EBUSY; /* in use as a lock: mkdir-based tools never move theirs */
        if (n->kind == LT_LOCK && n->n_shares)
                return -EBUSY; /* its sharers hold it by its name (R7.3) */
        struct node *target = lt_name_get(t, newdir, newname);
        if (target == n)
                return 1;
        if (target) {
                if (target->kind == LT_LOCK)
                        t->m.contended++;
                return -EEXIST;
        }
        if (n->kind == LT_LOCK && !lt_is_holder(n, c))
                return -EPERM;
        if (t->cfg.shared && (n->kind == LT_LOCK || n->n_children))
                return -EXDEV; /* a name in a shared store: take the new one instead */
        int r;
        if (n->kind == LT_DIR && lt_dirlock_name(t, newname))
                return -EPERM; /* it would be a directory lock that nobody holds */
        if (n->kind == LT_DIR && (r = dir_may_change(n, c)) < 0)
                return r;
        if (n->kind == LT_DIR && n->n_children && c->uid != 0)
                return -EPERM; /* it would move locks of others */
        if (n->kind == LT_DIR && dir_contains(n, newdir))
                return -EINVAL;
        if (t->cfg.max_depth && lt_node_depth(newdir) + 1 > t->cfg.max_depth)
                return -ENAMETOOLONG;
        return 0;
}

/* Move n from dir to newname in newdir and record it (letting go of t->mu
 * meanwhile). 0, -ENOMEM, or -EIO when refused and moved back. */
static int rename_apply(struct locktable *t, struct node *dir, struct node *newdir,
                        struct node *n, const char *newname) {
        char *copy = strdup(newname);
        if (!copy)
                return -ENOMEM;
        char *old_name = n->name;
        lt_node_unlink(t, n);
        n->name = copy;
        lt_node_link(t, newdir, n);
        int doomed;
        dir->renaming++;
        newdir->renaming++;
        int r = lt_record_and_wait(t, n, &doomed);
        dir->renaming--;
        newdir->renaming--;
        pthread_cond_broadcast(&t->settled); /* creates in them may go on */
        if (r < 0) {
                r = 0;
                /* Not recorded: back to the old name. Nobody can have taken
                 * it meanwhile: the kernel holds both directories for a
                 * rename, and the table takes no name in them while a
                 * rename is in flight (lock_create waits). Should it be
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
        lt_apply_doomed(t, n, doomed);
        return r;
}

int locktable_rename(struct locktable *t, uint64_t parent, const char *name,
                     uint64_t newparent, const char *newname, unsigned flags,
                     const struct caller *c) {
        if (flags & ~(unsigned)RENAME_NOREPLACE)
                return -EINVAL;
        int r = lt_name_check(name);
        if (r == 0)
                r = lt_name_check(newname);
        if (r < 0)
                return r;
        pthread_mutex_lock(&t->mu);
        struct node *dir, *newdir, *n;
        r = rename_resolve(t, parent, name, newparent, newname, &dir, &newdir, &n);
        if (r == 0)
                r = rename_check(t, n, newdir, newname, c);
        if (r == 0)
                r = rename_apply(t, dir, newdir, n, newname);
        lt_unlock(t);
        return r < 0 ? r : 0;
}

/* ---- directories ------------------------------------------------------------------ */

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
        lt_dir_remove(t, n);
}

/* May c make name in dir? 0 or the request's -errno. */
static int mkdir_check(struct locktable *t, const struct node *dir, const char *name,
                       const struct caller *c) {
        if (lt_name_is_meta(dir, name) || lt_name_get(t, dir, name))
                return -EEXIST;
        int r = lt_room_check(t, dir, name);
        if (r == 0)
                r = lt_quota_room(t, c->uid, 1); /* its creator's until removed */
        return r;
}

/* mkdir of directory lock name in parent for c (SPEC R7.5), under the
 * lock: taken as an exclusive create takes a lock file, answered through
 * *ret_op (see lt_take). LT_NEED_SETTLED, LT_NEED_PROC, LT_NEED_CMDLINE
 * or the request's -errno, nothing changed. */
static int dirlock_create(struct locktable *t, uint64_t parent, const char *name,
                          const struct caller *c, struct lt_prep *prep, struct node **ret,
                          struct lt_op **ret_op) {
        struct node *dir;
        int r = lt_dir_get(t, parent, &dir);
        if (r < 0)
                return r;
        if (lt_name_is_meta(dir, name))
                return -EEXIST;
        struct node *old = lt_child_get(t, dir, name);
        if (old) {
                if (old->kind == LT_LOCK)
                        t->m.contended++; /* also while its acquisition is with the store */
                return -EEXIST;
        }
        return lt_lock_create(t, dir, name, c, LOCK_HOW_MKDIR, prep, ret, ret_op);
}

/* True when c is mkdir(1): a tool that exits at once, run by the script
 * that wants the lock (SPEC R7.5). */
static bool is_mkdir_tool(const struct caller *c) {
        return c->self.pid && strcmp(c->comm, "mkdir") == 0;
}

/* mkdir of a directory lock (locktable_mkdir). The holder is c, or when c
 * is mkdir(1) its parent process (the script running it, as `echo $$ >`
 * names the shell), checked as a pid claim naming it would be (lt_claim:
 * alive, not init, c's uid unless c is root); else c itself. */
static int dirlock_mkdir(struct locktable *t, uint64_t parent, const char *name,
                         const struct caller *c, struct lt_attr *ret) {
        if (is_mkdir_tool(c) && c->partial)
                return LT_NEED_LINEAGE; /* its parent is the holder: the ancestry */
        struct lt_prep own_prep = { .pidfd = -1 }, *prep = &own_prep;
        struct lt_claim cl = { .prep = { .pidfd = -1 } };
        const struct caller *taker = c;
        if (is_mkdir_tool(c) && c->n_ancestors > 0) { /* outside the lock: /proc */
                lt_claim_prepare(&cl, c, c->ancestors[0].pid);
                if (cl.valid && cl.proc) {
                        taker = cl.proc;
                        prep = &cl.prep;
                }
        }
        struct node *n = NULL;
        struct lt_op *op = NULL;
        int r;
        for (;;) {
                pthread_mutex_lock(&t->mu);
                r = dirlock_create(t, parent, name, taker, prep, &n, &op);
                if (r == LT_NEED_SETTLED) {
                        lt_wait_settled(t);
                        pthread_mutex_unlock(&t->mu);
                        continue;
                }
                if (r != LT_NEED_PROC || prep->ready)
                        break;
                pthread_mutex_unlock(&t->mu);
                lt_prep_proc(prep, &taker->self); /* outside the lock */
        }
        if (r == LT_NEED_PROC)
                r = -ESRCH;
        if (r == 0) {
                n->nlookup++; /* the kernel's, once answered; holds n until then */
                lt_fill_attr(n, ret);
        }
        lt_unlock(t); /* makes the acquisition's store call */
        lt_prep_done(&own_prep);
        lt_claim_done(&cl);
        if (r != 0)
                return r;
        pthread_mutex_lock(&t->mu);
        struct lt_handle h;
        r = lt_acquired(t, n, op, &h);
        if (r == 0)
                lt_fill_attr(n, ret);
        pthread_mutex_unlock(&t->mu);
        return r;
}

int locktable_mkdir(struct locktable *t, uint64_t parent, const char *name,
                    const struct caller *c, struct lt_attr *ret) {
        int r = lt_name_check(name);
        if (r < 0)
                return r;
        if (lt_dirlock_name(t, name))
                return dirlock_mkdir(t, parent, name, c, ret);
        pthread_mutex_lock(&t->mu);
        struct node *dir, *n = NULL;
        r = lt_dir_get(t, parent, &dir);
        if (r == 0)
                r = mkdir_check(t, dir, name, c);
        if (r == 0 && !(n = lt_dir_new(t, dir, name, c->uid, c->gid)))
                r = -ENOMEM;
        if (r < 0) {
                pthread_mutex_unlock(&t->mu);
                return r;
        }
        n->nlookup++; /* the kernel's once answered; pins n until then */
        struct lt_op *op = lt_op_put_dir(t, n, mkdir_done, n);
        if (op)
                op->waited = true;
        lt_fill_attr(n, ret);
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
}

/* rmdir of directory lock n by c (SPEC R7.5): as unlink of a lock file.
 * 0, LT_NEED_LINEAGE, -EBUSY or -EPERM. */
static int dirlock_rmdir(struct locktable *t, struct node *n, const struct caller *c,
                         struct lock_view *ret_forced) {
        if (c->partial && n->holder && !lt_is_holder(n, c))
                return LT_NEED_LINEAGE; /* may be a descendant: needs the ancestry */
        return release_or_break(t, n, c, true, ret_forced, NULL);
}

int locktable_rmdir_lock(struct locktable *t, uint64_t parent, const char *name,
                         const struct caller *c, struct lock_view *ret_forced) {
        memset(ret_forced, 0, sizeof(*ret_forced));
        int r = lt_name_check(name);
        if (r < 0)
                return r;
        pthread_mutex_lock(&t->mu);
        struct node *raw, *n = NULL;
        r = removal_target(t, parent, name, true, &raw);
        if (r == 0) {
                n = raw->target ? raw->target : raw;
                if (lt_is_dirlock(n)) {
                        r = dirlock_rmdir(t, n, c, ret_forced);
                        n = NULL; /* released (or handed on) by lt_release */
                } else if (n->kind != LT_DIR) {
                        r = -ENOTDIR;
                } else if (n->n_children) {
                        r = -ENOTEMPTY;
                } else {
                        r = dir_may_change(n, c);
                }
        }
        if (r == 0 && n) {
                lt_op_remove_dir(t, n);
                lt_dir_remove(t, n);
                lt_node_maybe_free(t, n);
        }
        lt_unlock(t); /* a release may have handed the lock on */
        return r;
}

int locktable_rmdir(struct locktable *t, uint64_t parent, const char *name,
                    const struct caller *c) {
        struct lock_view forced;
        int r = locktable_rmdir_lock(t, parent, name, c, &forced);
        lock_view_clear(&forced);
        return r;
}
