/* SPDX-License-Identifier: MIT */
/* An intrusive chained hash table keyed by precomputed 64-bit hashes. The
 * caller embeds a struct hlink in its objects and compares keys itself
 * while walking a chain; the table only stores and grows. */
#ifndef LOCKFS_HTAB_H
#define LOCKFS_HTAB_H

#include <stddef.h>
#include <stdint.h>

#include "container_of.h"

struct hlink {
        struct hlink *next;
        uint64_t hash;
};

struct htab {
        struct hlink **buckets;
        size_t mask;   /* bucket count - 1; the count is a power of two */
        size_t n;
};

/* Prepare an empty table. Returns 0 or -ENOMEM. */
int htab_init(struct htab *t);
/* Free the buckets (not the objects). */
void htab_free(struct htab *t);
/* Insert l with hash (growing the table when full; growth failure only
 * makes chains longer). */
void htab_insert(struct htab *t, struct hlink *l, uint64_t hash);
/* Remove l, which must be in t. */
void htab_remove(struct htab *t, struct hlink *l);
/* First link of the chain where hash lives; walk with ->next and compare
 * ->hash before the key. */
static inline struct hlink *htab_chain(const struct htab *t, uint64_t hash) {
        return t->buckets[hash & t->mask];
}

/* Walk the links whose hash equals `key_hash`: for each, pos points to the
 * enclosing `type` (whose struct hlink is `member`); compare the key in
 * the body. Do not remove pos inside the loop. */
#define htab_for_each_possible(t, key_hash, pos, type, member)                         \
        for (struct hlink *pos##_l_ = htab_chain((t), (key_hash)); pos##_l_;           \
             pos##_l_ = pos##_l_->next)                                                 \
                if (pos##_l_->hash == (key_hash) && ((pos) = container_of(pos##_l_, type, member), 1))

/* FNV-1a over bytes, continuing from h (start with HTAB_SEED). */
#define HTAB_SEED 0xcbf29ce484222325ULL
uint64_t htab_hash_bytes(uint64_t h, const void *p, size_t n);
/* A well-mixed hash of a 64-bit integer. */
uint64_t htab_hash_u64(uint64_t x);

#endif
