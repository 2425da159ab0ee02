/* SPDX-License-Identifier: MIT */
/* The backend interface the lock table persists through. The in-memory
 * store (store_mem.c) is the default; a journal on /run and an etcd store
 * plug in here without touching fs/. Every call returns 0 or -errno and is
 * made with the table lock held, in the order the table changed. */
#ifndef LOCKFS_STORE_H
#define LOCKFS_STORE_H

#include <stdint.h>

#include "lockview.h"

struct store;

struct store_ops {
        const char *name;
        /* Record a new acquisition of v->path and assign its fence into
         * *ret_fence: strictly greater than every fence this store issued.
         * -EEXIST when the name is taken elsewhere (a shared backend). */
        int (*acquire)(struct store *s, const struct lock_view *v, uint64_t *ret_fence);
        /* Record new content, holder, TTL or renewal of a held lock. May be
         * NULL (nothing to record): the table then builds no view. */
        int (*update)(struct store *s, const struct lock_view *v);
        /* Record that the lock with this path and fence is released. May be
         * NULL, like update. */
        int (*release)(struct store *s, const char *path, uint64_t fence);
        /* Free the store and what it owns. */
        void (*free)(struct store *s);
};

struct store {
        const struct store_ops *ops;
};

/* A store that keeps nothing beyond a fence counter starting at 1.
 * Returns 0 and the store in *ret, or -ENOMEM. */
int store_mem_new(struct store **ret);

/* s == NULL is a no-op. */
static inline void store_free(struct store *s) {
        if (s)
                s->ops->free(s);
}

#endif
