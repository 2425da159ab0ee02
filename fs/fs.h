/* SPDX-License-Identifier: MIT */
/* The FUSE low-level adapter: thin handlers over the lock table, and the
 * thread that tells the kernel about names the daemon removed itself. */
#ifndef LOCKFS_FS_H
#define LOCKFS_FS_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "htab.h"
#include "list.h"
#include "locktable.h"
#include "status_budget.h"

struct file;
struct flock_registry;

/* The FUSE requests counted per kind for .lockfs/metrics, each as
 * X(ENUM_SUFFIX, label): the one list from which both enum fs_op and
 * fs_op_name() are made, so that they cannot drift apart. The order is the
 * order of the samples on the metrics page. */
#define FS_OP_LIST(X) \
        X(LOOKUP, lookup) X(FORGET, forget) X(GETATTR, getattr) X(SETATTR, setattr) \
        X(MKNOD, mknod) X(MKDIR, mkdir) X(UNLINK, unlink) X(RMDIR, rmdir) \
        X(SYMLINK, symlink) X(RENAME, rename) X(LINK, link) X(OPEN, open) X(READ, read) \
        X(WRITE, write) X(FLUSH, flush) X(RELEASE, release) X(FSYNC, fsync) \
        X(OPENDIR, opendir) X(READDIR, readdir) X(RELEASEDIR, releasedir) X(STATFS, statfs) \
        X(CREATE, create) X(FLOCK, flock) X(IOCTL, ioctl) X(SETLK, setlk) X(GETLK, getlk)

enum fs_op {
#define FS_OP_ENUM(upper, label) FS_OP_##upper,
        FS_OP_LIST(FS_OP_ENUM)
#undef FS_OP_ENUM
        FS_OP_COUNT
};

/* The metrics label of op ("lookup" for FS_OP_LOOKUP); op < FS_OP_COUNT. */
static inline const char *fs_op_name(enum fs_op op) {
        static const char *const names[FS_OP_COUNT] = {
#define FS_OP_NAME(upper, label) [FS_OP_##upper] = #label,
                FS_OP_LIST(FS_OP_NAME)
#undef FS_OP_NAME
        };
        return names[op];
}

/* What every handler reaches through fuse_req_userdata(). */
struct lockfs_ctx {
        struct locktable *table;
        struct notifier *notifier; /* told of names that go without an UNLINK */
        struct status_budget *budget; /* what open files may hold rendered */
        char host[256];
        pthread_mutex_t files_mu; /* initialize with PTHREAD_MUTEX_INITIALIZER */
        struct list files;        /* open files (file.link), for fs_files_free_all();
                                   * initialize with LIST_INIT(ctx.files) */
        struct flock_registry *flocks; /* flock requests in flight (fs/flock.c) */
        atomic_uint_fast64_t next_file_id;
        atomic_uint_fast64_t requests[FS_OP_COUNT];
};

static inline void fs_count_request(struct lockfs_ctx *ctx, enum fs_op op) {
        atomic_fetch_add_explicit(&ctx->requests[op], 1, memory_order_relaxed);
}

extern const struct fuse_lowlevel_ops lockfs_ops;

/* Free the open files the kernel never released (it need not send RELEASE
 * for files still open at unmount). Call after the session loop ended. */
void fs_files_free_all(struct lockfs_ctx *ctx);

/* flock(2) (fs/flock.c): set up and tear down the registry of requests in
 * flight (ctx->flocks; 0 or -ENOMEM); the FUSE handler; the lock table's
 * grant function (ctx as arg). */
int fs_flock_init(struct lockfs_ctx *ctx);
/* Answer every parked flock with EINTR: the loop ended (before the session
 * is destroyed, so libfuse frees those requests). */
void fs_flock_abort(struct lockfs_ctx *ctx);
void fs_flock_fini(struct lockfs_ctx *ctx);
void fs_op_flock(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, int op);
/* fcntl/lockf/OFD record locks (fs/flock.c), the same lock (SPEC R7.4). */
void fs_op_setlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *lock,
                 int sleep);
void fs_op_getlk(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct flock *lock);
void fs_flock_finish(void *ctx, uint64_t id, int err, const struct lt_handle *h);

struct notifier;

/* Start the notification thread for session se. Returns 0 or -errno. */
int notifier_start(struct fuse_session *se, struct notifier **ret);
/* Drain and stop it; NULL is a no-op. */
void notifier_stop(struct notifier *n);
/* lt_removed_fn: queue "name in parent (inode ino) is gone" for the kernel
 * (fuse_lowlevel_notify_delete), sent from the notifier thread, never from
 * a request handler and never under the table lock. */
void notifier_removed(void *notifier, uint64_t parent, uint64_t ino, const char *name);

#endif
