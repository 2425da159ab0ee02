/* SPDX-License-Identifier: MIT */
/* The backend interface the lock table persists through: the in-memory
 * store (store_mem.c, nothing survives the daemon), the local journal
 * (store_local.c, the daemon's default) and later etcd plug in here
 * without touching fs/. Every call returns 0 or -errno and is made with the
 * table lock held, in the order the table changed. Nodes are named by
 * their inode number (key), which is never reused; the root is key 1. */
#ifndef LOCKFS_STORE_H
#define LOCKFS_STORE_H

#include <stdint.h>
#include <sys/types.h>

#include "lockview.h"

struct store;

/* What a persistent store gives back at start (store_ops.restore): every
 * directory, then every lock, as they were last recorded. */
struct store_restore_cb {
        /* A directory at path made by uid/gid, in no particular order: a
         * parent may come after its children (make it, then own it). */
        int (*dir)(void *ctx, const char *path, uid_t uid, gid_t gid);
        /* A lock: v->path, alias paths and every persistent field are set;
         * v->ino is the key it had. The callback decides whether it still
         * holds, and if so records it anew (update, under its new key). */
        int (*lock)(void *ctx, const struct lock_view *v);
        void *ctx;
};

struct store_ops {
        const char *name;
        /* Record a new acquisition: v is the lock's complete new state
         * (holder, times, TTL, empty content) except its fence, which the
         * store assigns into *ret_fence: strictly greater than every fence
         * this store issued. Nothing is recorded on failure. -EEXIST when
         * the name is taken elsewhere (a shared backend). */
        int (*acquire)(struct store *s, const struct lock_view *v, uint64_t *ret_fence);
        /* Record the state of held lock v->ino: new content, holder, TTL,
         * renewal, name or aliases. May be NULL (nothing to record): the
         * table then builds no view. */
        int (*update)(struct store *s, const struct lock_view *v);
        /* Record that lock ino (path, fence) is released. May be NULL. */
        int (*release)(struct store *s, uint64_t ino, const char *path, uint64_t fence);
        /* Record directory ino named name in directory parent (mkdir, or
         * a rename), and its removal. May be NULL. */
        int (*put_dir)(struct store *s, uint64_t ino, uint64_t parent, const char *name,
                       uid_t uid, gid_t gid);
        int (*remove_dir)(struct store *s, uint64_t ino);
        /* Once, before any other call: hand what was recorded to cb, then
         * start recording anew (what cb re-recorded is all that stays).
         * May be NULL (nothing recorded). */
        int (*restore)(struct store *s, const struct store_restore_cb *cb);
        /* Free the store and what it owns. */
        void (*free)(struct store *s);
};

struct store {
        const struct store_ops *ops;
};

/* A store that keeps nothing beyond a fence counter starting at 1.
 * Returns 0 and the store in *ret, or -ENOMEM. */
int store_mem_new(struct store **ret);

/* The local journal (store_local.c): the lock table journaled under
 * state_dir (created 0700 if missing; one daemon per directory, else
 * -EBUSY), fences reserved in blocks in fence_file. What the journal held
 * is handed out by restore(). -EBADMSG when the fence file is damaged,
 * -EUCLEAN when a journal of this boot is damaged other than by a torn
 * tail (logged with the byte offset; restore() also fails with -EUCLEAN
 * for a lock record it cannot place): its locks might be held, so the
 * daemon must not start without them. Else -errno; a journal that is
 * missing, foreign, of an unknown version or of another boot is logged
 * and restores nothing (or its directories only), never fatal. */
int store_local_open(const char *state_dir, const char *fence_file, struct store **ret);
/* Record the calling process as the one using the local store s (again
 * after a fork: fuse_daemonize). */
void store_local_record_owner(struct store *s);
/* The pid of the daemon that uses state_dir (or last used it), 0 when
 * unknown. */
pid_t store_local_owner(const char *state_dir);

/* s == NULL is a no-op. */
static inline void store_free(struct store *s) {
        if (s)
                s->ops->free(s);
}

#endif
