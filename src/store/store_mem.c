/* SPDX-License-Identifier: MIT */
/* The in-memory store: nothing persists; fences count up from 1. */
#include <errno.h>
#include <stdlib.h>

#include "store.h"
#include "store_mem.h"

struct store_mem {
        struct store base;
        uint64_t last_fence;
};

static int store_mem_acquire(struct store *s, const struct lock_view *v, uint64_t *ret_fence) {
        (void)v;
        struct store_mem *m = (struct store_mem *)s;
        *ret_fence = ++m->last_fence;
        return 0;
}

static void store_mem_free(struct store *s) {
        free(s);
}

static const struct store_ops store_mem_ops = {
        .name = "memory",
        .acquire = store_mem_acquire,
        .update = NULL,
        .release = NULL,
        .free = store_mem_free,
};

int store_mem_new(struct store **ret) {
        struct store_mem *m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->base.ops = &store_mem_ops;
        *ret = &m->base;
        return 0;
}
