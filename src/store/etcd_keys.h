/* SPDX-License-Identifier: MIT */
/* Sets of etcd keys the etcd store keeps (etcd_keys.c): lists of keys,
 * each with a revision (the creates still unanswered, the releases still
 * to send), and the keys of a listing in progress. Plain data that never
 * blocks: the caller does the locking. */
#ifndef LOCKFS_ETCD_KEYS_H
#define LOCKFS_ETCD_KEYS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "list.h"

/* One key on a list (util/list.h), allocated with it. */
struct etcd_key {
        struct list link;
        int64_t rev;             /* what the list says of it (0: nothing) */
        char key[];
};

/* Put a copy of key with rev first on head: 0, or -ENOMEM (nothing added). */
int etcd_key_push(struct list *head, const char *key, int64_t rev);
/* The first (newest) element of head that names key, or NULL. */
struct etcd_key *etcd_key_find(struct list *head, const char *key);
/* Take k off its list and free it. */
void etcd_key_drop(struct etcd_key *k);
/* Drop every element of head. */
void etcd_keys_free(struct list *head);

/* The keys of one listing, in the order etcd lists them (byte order). */
struct key_listing {
        char **keys;
        size_t n, cap;
};

/* Append a copy of key (which sorts after every key already added): 0, or
 * -ENOMEM (nothing added). */
int key_listing_add(struct key_listing *l, const char *key);
/* Does the listing hold key? (binary search) */
bool key_listing_has(const struct key_listing *l, const char *key);
/* Free every key; l is empty after. */
void key_listing_clear(struct key_listing *l);

#endif
