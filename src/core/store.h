/* SPDX-License-Identifier: MIT */
/* The backend interface the lock table persists through. The stores in
 * src/store/ implement it: the in-memory store (store_mem.h, nothing
 * survives the daemon), the local journal (store_local.h, the daemon's
 * default) and etcd (store_etcd.h), without touching fs/ or the table.
 * Every call returns 0 or -errno and is made by one flusher at a time
 * with the table's store mutex held (never its table mutex), in the order
 * the table changed. Nodes are named by
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

/* s == NULL is a no-op. */
static inline void store_free(struct store *s) {
        if (s)
                s->ops->free(s);
}

#endif
