/* SPDX-License-Identifier: MIT */
/* Intrusive binary min-heap used for TTL deadlines. */
#include <errno.h>
#include <stdlib.h>

#include "heap.h"

static void heap_set(struct heap *h, size_t i, struct heap_entry *e) {
        h->v[i] = e;
        e->index = i;
}

static void heap_sift_up(struct heap *h, size_t i) {
        struct heap_entry *e = h->v[i];
        while (i > 0) {
                size_t parent = (i - 1) / 2;
                if (h->v[parent]->key <= e->key)
                        break;
                heap_set(h, i, h->v[parent]);
                i = parent;
        }
        heap_set(h, i, e);
}

static void heap_sift_down(struct heap *h, size_t i) {
        struct heap_entry *e = h->v[i];
        for (;;) {
                size_t child = 2 * i + 1;
                if (child >= h->n)
                        break;
                if (child + 1 < h->n && h->v[child + 1]->key < h->v[child]->key)
                        child++;
                if (e->key <= h->v[child]->key)
                        break;
                heap_set(h, i, h->v[child]);
                i = child;
        }
        heap_set(h, i, e);
}

int heap_push(struct heap *h, struct heap_entry *e, int64_t key) {
        if (h->n == h->cap) {
                size_t cap = h->cap ? h->cap * 2 : 64;
                struct heap_entry **v = realloc(h->v, cap * sizeof(*v));
                if (!v)
                        return -ENOMEM;
                h->v = v;
                h->cap = cap;
        }
        e->key = key;
        heap_set(h, h->n++, e);
        heap_sift_up(h, e->index);
        return 0;
}

void heap_remove(struct heap *h, struct heap_entry *e) {
        size_t i = e->index;
        if (i == HEAP_NOT_QUEUED)
                return;
        e->index = HEAP_NOT_QUEUED;
        struct heap_entry *last = h->v[--h->n];
        if (i == h->n)
                return;
        heap_set(h, i, last);
        heap_sift_up(h, i);
        heap_sift_down(h, last->index);
}

void heap_rekey(struct heap *h, struct heap_entry *e, int64_t key) {
        e->key = key;
        heap_sift_up(h, e->index);
        heap_sift_down(h, e->index);
}

void heap_free(struct heap *h) {
        free(h->v);
        h->v = NULL;
        h->n = h->cap = 0;
}
