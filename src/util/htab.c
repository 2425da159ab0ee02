/* SPDX-License-Identifier: MIT */
/* Intrusive chained hash table with power-of-two growth. */
#include <errno.h>
#include <stdlib.h>

#include "htab.h"

#define HTAB_INITIAL 64

int htab_init(struct htab *t) {
        t->buckets = calloc(HTAB_INITIAL, sizeof(*t->buckets));
        if (!t->buckets)
                return -ENOMEM;
        t->mask = HTAB_INITIAL - 1;
        t->n = 0;
        return 0;
}

void htab_free(struct htab *t) {
        free(t->buckets);
        t->buckets = NULL;
        t->n = 0;
}

static void htab_grow(struct htab *t) {
        size_t count = (t->mask + 1) * 2;
        struct hlink **b = calloc(count, sizeof(*b));
        if (!b)
                return;
        for (size_t i = 0; i <= t->mask; i++) {
                struct hlink *l = t->buckets[i];
                while (l) {
                        struct hlink *next = l->next;
                        l->next = b[l->hash & (count - 1)];
                        b[l->hash & (count - 1)] = l;
                        l = next;
                }
        }
        free(t->buckets);
        t->buckets = b;
        t->mask = count - 1;
}

void htab_insert(struct htab *t, struct hlink *l, uint64_t hash) {
        if (t->n > 2 * t->mask + 1) /* two per bucket on average: half the buckets */
                htab_grow(t);
        l->hash = hash;
        struct hlink **head = &t->buckets[hash & t->mask];
        l->next = *head;
        *head = l;
        t->n++;
}

void htab_remove(struct htab *t, struct hlink *l) {
        struct hlink **p = &t->buckets[l->hash & t->mask];
        while (*p && *p != l)
                p = &(*p)->next;
        if (*p) {
                *p = l->next;
                t->n--;
        }
        l->next = NULL;
}

uint64_t htab_hash_bytes(uint64_t h, const void *p, size_t n) {
        const unsigned char *c = p;
        for (size_t i = 0; i < n; i++) {
                h ^= c[i];
                h *= 0x100000001b3ULL;
        }
        return h;
}

uint64_t htab_hash_u64(uint64_t x) {
        x ^= x >> 33;
        x *= 0xff51afd7ed558ccdULL;
        x ^= x >> 33;
        x *= 0xc4ceb9fe1a85ec53ULL;
        x ^= x >> 33;
        return x;
}
