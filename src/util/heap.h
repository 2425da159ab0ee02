/* SPDX-License-Identifier: MIT */
/* An intrusive binary min-heap of deadlines: push, remove and re-key any
 * entry in O(log n), peek the earliest in O(1). */
#ifndef LOCKFS_HEAP_H
#define LOCKFS_HEAP_H

#include <stddef.h>
#include <stdint.h>

#define HEAP_NOT_QUEUED SIZE_MAX

/* Embed in the object to queue. index is HEAP_NOT_QUEUED when not queued. */
struct heap_entry {
        int64_t key;
        size_t index;
};

struct heap {
        struct heap_entry **v;
        size_t n;
        size_t cap;
};

#define HEAP_INIT { NULL, 0, 0 }

static inline void heap_entry_init(struct heap_entry *e) {
        e->key = 0;
        e->index = HEAP_NOT_QUEUED;
}

/* Queue e (not queued yet) with key. Returns 0 or -ENOMEM. */
int heap_push(struct heap *h, struct heap_entry *e, int64_t key);
/* Unqueue e; a no-op when it is not queued. */
void heap_remove(struct heap *h, struct heap_entry *e);
/* Change the key of queued entry e. */
void heap_rekey(struct heap *h, struct heap_entry *e, int64_t key);
/* The entry with the smallest key, or NULL when empty. */
static inline struct heap_entry *heap_top(const struct heap *h) {
        return h->n ? h->v[0] : NULL;
}
/* Free the array (not the entries). */
void heap_free(struct heap *h);

#endif
