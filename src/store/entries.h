/* SPDX-License-Identifier: MIT */
/* The local store's map from a key (inode number) to the last journal
 * record of that key (entries.c): what the table holds now, and what a
 * journal held until it is restored. Plain data; the caller locks. */
#ifndef LOCKFS_ENTRIES_H
#define LOCKFS_ENTRIES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "htab.h"

/* The last record of one key (one allocation with the record). */
struct entry {
        struct hlink by_key;
        uint64_t key;
        size_t off;              /* loaded entries: where the record was */
        size_t len;
        uint8_t raw[];
};

struct entries {
        struct htab by_key;      /* walk its buckets to visit every entry */
        size_t bytes;            /* of every record held */
};

/* 0 or -ENOMEM. */
int entries_init(struct entries *m);
/* Free every entry and the table. */
void entries_free(struct entries *m);
/* The entry of key, or NULL. */
struct entry *entry_find(struct entries *m, uint64_t key);
/* Make raw/len the record of key (copying it). Returns the replaced
 * entry, taken out of m (the caller frees it, or puts it back with
 * entry_put_back), or NULL; *err is -ENOMEM when nothing was stored (m
 * unchanged), else 0. */
struct entry *entry_set(struct entries *m, uint64_t key, const uint8_t *raw, size_t len,
                        int *err);
/* Put e (taken out by entry_set) back into m; its key must not be in m. */
void entry_put_back(struct entries *m, struct entry *e);
/* Remove key from m; true when it was there. */
bool entry_del(struct entries *m, uint64_t key);
/* Free an entry taken out of its map. NULL is a no-op. */
void entry_free(struct entry *e);

#endif
