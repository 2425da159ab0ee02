/* SPDX-License-Identifier: MIT */
/* flock(2) and fcntl/lockf/OFD record-lock requests: one that must wait
 * is parked in the lock table and answered later from whichever thread
 * releases the lock; a signal cancels it through a FUSE interrupt. Parked
 * requests are named by a number, never a pointer, because an interrupt
 * may arrive after the reply. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>

#include "container_of.h"
#include "file.h"
#include "fs.h"
#include "htab.h"
#include "log.h"

/* A flock request between its arrival and its reply. */
struct pending_flock {
        struct hlink by_id;
        uint64_t id;
        fuse_req_t req;
        struct file *f;          /* a reference, so a grant can convert the handle */
        bool parked;             /* the table queued it */
        bool interrupted;        /* a signal came before it was queued */
};

/* The flock requests in flight, by id; only this file sees it. */
struct flock_registry {
        pthread_mutex_t mu;
        struct htab by_id;       /* struct pending_flock.by_id */
        atomic_uint_fast64_t next_id;
};

int fs_flock_init(struct lockfs_ctx *ctx) {
        struct flock_registry *reg = calloc(1, sizeof(*reg));
        if (!reg)
                return -ENOMEM;
        int r = htab_init(&reg->by_id);
        if (r < 0) {
                free(reg);
                return r;
        }
        pthread_mutex_init(&reg->mu, NULL);
        atomic_init(&reg->next_id, 1);
        ctx->flocks = reg;
        return 0;
}

void fs_flock_abort(struct lockfs_ctx *ctx) {
        struct htab *ids = &ctx->flocks->by_id;
        for (size_t b = 0; ids->buckets && b <= ids->mask; b++) {
                struct hlink *l;
                while ((l = ids->buckets[b])) {
                        struct pending_flock *p = container_of(l, struct pending_flock, by_id);
                        htab_remove(ids, l);
                        fuse_reply_err(p->req, EINTR); /* frees the request */
                        file_put(p->f);
                        free(p);
                }
        }
}

void fs_flock_fini(struct lockfs_ctx *ctx) {
        if (!ctx->flocks)
                return;
        htab_free(&ctx->flocks->by_id);
        pthread_mutex_destroy(&ctx->flocks->mu);
        free(ctx->flocks);
        ctx->flocks = NULL;
}

/* Find id; with take, also remove it. Call with ctx->flocks->mu held. */
static struct pending_flock *pending_find(struct lockfs_ctx *ctx, uint64_t id, bool take) {
        uint64_t h = htab_hash_u64(id);
        for (struct hlink *l = htab_chain(&ctx->flocks->by_id, h); l; l = l->next) {
                struct pending_flock *p = container_of(l, struct pending_flock, by_id);
                if (p->id == id) {
                        if (take)
                                htab_remove(&ctx->flocks->by_id, l);
                        return p;
                }
        }
        return NULL;
}

/* Reply to request id, once: whoever takes it from the registry answers. */
void fs_flock_finish(void *arg, uint64_t id, int err, const struct lt_handle *h) {
        struct lockfs_ctx *ctx = arg;
        pthread_mutex_lock(&ctx->flocks->mu);
        struct pending_flock *p = pending_find(ctx, id, true);
        pthread_mutex_unlock(&ctx->flocks->mu);
        if (!p)
                return;
        if (err == 0 && h)
                file_set_handle(p->f, h); /* a contender handle becomes a holder's */
        fuse_reply_err(p->req, -err);
        file_put(p->f);
        free(p);
}

static void flock_interrupted(fuse_req_t req, void *data) {
        struct lockfs_ctx *ctx = fuse_req_userdata(req);
        uint64_t id = (uintptr_t)data;
        pthread_mutex_lock(&ctx->flocks->mu);
        struct pending_flock *p = pending_find(ctx, id, false);
        bool parked = p && p->parked;
        if (p && !parked)
                p->interrupted = true; /* the parking thread cancels it */
        pthread_mutex_unlock(&ctx->flocks->mu);
        if (parked && locktable_flock_cancel(ctx->table, id))
                fs_flock_finish(ctx, id, -EINTR, NULL);
}

/* What a lock request asks, as fs/ received it. */
struct lock_call {
        bool posix;              /* fcntl/lockf/OFD (SETLK), else flock */
        uint64_t owner;          /* posix: the kernel's lock_owner */
        unsigned mode;           /* LT_LOCK_NB, LT_LOCK_SHARED */
};

/* Ask the table for lock call lc of the caller of req on f: answered now,
 * or parked and answered later by fs_flock_finish (from whichever thread
 * releases the lock, or on an interrupt). */
static void lock_request(fuse_req_t req, fuse_ino_t ino, struct file *f,
                         const struct lock_call *lc) {
        struct lockfs_ctx *ctx = fuse_req_userdata(req);
        const struct fuse_ctx *fc = fuse_req_ctx(req);
        struct caller c;
        int r = holder_identify(fc->pid, fc->uid, fc->gid, &c);
        if (r < 0) {
                fuse_reply_err(req, -r);
                return;
        }
        struct pending_flock *p = calloc(1, sizeof(*p));
        if (!p) {
                fuse_reply_err(req, ENOMEM);
                return;
        }
        p->id = atomic_fetch_add(&ctx->flocks->next_id, 1);
        p->req = req;
        p->f = f;
        file_get(f);
        pthread_mutex_lock(&ctx->flocks->mu);
        htab_insert(&ctx->flocks->by_id, &p->by_id, htab_hash_u64(p->id));
        pthread_mutex_unlock(&ctx->flocks->mu);
        uint64_t id = p->id; /* p belongs to whoever finishes it from here on */
        if (!(lc->mode & LT_LOCK_NB)) /* may call flock_interrupted at once: no lock held */
                fuse_req_interrupt_func(req, flock_interrupted, (void *)(uintptr_t)id);
        struct lt_handle h = file_handle(f), granted;
        if (lc->posix)
                r = locktable_posix_lock(ctx->table, ino, &h, lc->owner, f->id, &c, lc->mode, id,
                                         &granted);
        else
                r = locktable_flock(ctx->table, ino, &h, f->id, f->opener_tid, &c, lc->mode, id,
                                    &granted);
        if (r != LT_PARKED) {
                fs_flock_finish(ctx, id, r, &granted);
                return;
        }
        pthread_mutex_lock(&ctx->flocks->mu);
        p = pending_find(ctx, id, false); /* NULL: granted meanwhile */
        bool interrupted = p && p->interrupted;
        if (p)
                p->parked = true;
        pthread_mutex_unlock(&ctx->flocks->mu);
        if (interrupted && locktable_flock_cancel(ctx->table, id))
                fs_flock_finish(ctx, id, -EINTR, NULL);
}

/* The open lock file of fi, or NULL after answering EOPNOTSUPP: only locks
 * can be locked. */
static struct file *lock_file_of(fuse_req_t req, struct fuse_file_info *fi) {
        struct file *f = file_of(fi);
        if (!f || f->type != FILE_LOCK) {
                fuse_reply_err(req, EOPNOTSUPP);
                return NULL;
        }
        return f;
}

void fs_op_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op) {
        struct lockfs_ctx *ctx = fuse_req_userdata(req);
        fs_count_request(ctx, FS_OP_FLOCK);
        struct file *f = lock_file_of(req, fi);
        if (!f)
                return;
        unsigned nb = (op & LOCK_NB) ? LT_LOCK_NB : 0;
        switch (op & ~LOCK_NB) {
        case LOCK_UN:
                locktable_flock_unlock(ctx->table, file_handle(f).ino, f->id,
                                       notifier_removed, ctx->notifier);
                fuse_reply_err(req, 0);
                break;
        case LOCK_SH:
                lock_request(req, ino, f, &(struct lock_call){ .mode = nb | LT_LOCK_SHARED });
                break;
        case LOCK_EX:
                lock_request(req, ino, f, &(struct lock_call){ .mode = nb });
                break;
        default:
                fuse_reply_err(req, EINVAL);
                break;
        }
}

/* F_SETLK/F_SETLKW, F_OFD_SETLK(W), lockf(3): any range is the whole lock,
 * a write lock exclusive, a read lock shared (SPEC R7.3, R7.4). */
void fs_op_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *lock,
                 int sleep) {
        struct lockfs_ctx *ctx = fuse_req_userdata(req);
        fs_count_request(ctx, FS_OP_SETLK);
        struct file *f = lock_file_of(req, fi);
        if (!f)
                return;
        switch (lock->l_type) {
        case F_UNLCK:
                locktable_posix_unlock(ctx->table, file_handle(f).ino, fi->lock_owner,
                                       notifier_removed, ctx->notifier);
                fuse_reply_err(req, 0);
                break;
        case F_RDLCK:
        case F_WRLCK:
                atomic_store(&f->record_locked, true);
                lock_request(req, ino, f,
                             &(struct lock_call){
                                     .posix = true, .owner = fi->lock_owner,
                                     .mode = (sleep ? 0 : LT_LOCK_NB) |
                                             (lock->l_type == F_RDLCK ? LT_LOCK_SHARED : 0) });
                break;
        default:
                fuse_reply_err(req, EINVAL);
                break;
        }
}

/* F_GETLK: F_UNLCK when the caller could take the lock as asked now, else
 * a write (or, for a shared lock, read) lock of the whole file by the
 * recorded holder's pid. */
void fs_op_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *lock) {
        struct lockfs_ctx *ctx = fuse_req_userdata(req);
        fs_count_request(ctx, FS_OP_GETLK);
        (void)ino;
        struct file *f = lock_file_of(req, fi);
        if (!f)
                return;
        const struct fuse_ctx *fc = fuse_req_ctx(req);
        struct caller c;
        int r = holder_identify(fc->pid, fc->uid, fc->gid, &c);
        pid_t pid = 0;
        struct lt_handle h = file_handle(f);
        unsigned mode = lock->l_type == F_RDLCK ? LT_LOCK_SHARED : 0;
        if (r == 0)
                r = locktable_posix_test(ctx->table, h.ino, &h, fi->lock_owner, f->id, &c, mode,
                                         &pid);
        if (r < 0) {
                fuse_reply_err(req, -r);
                return;
        }
        struct flock out = { .l_type = r == 0 ? F_UNLCK : r == 2 ? F_RDLCK : F_WRLCK,
                             .l_whence = SEEK_SET, .l_pid = r ? pid : 0 };
        fuse_reply_lock(req, &out);
}
