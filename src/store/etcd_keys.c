/* SPDX-License-Identifier: MIT */
/* The etcd store's key sets (etcd_keys.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "etcd_keys.h"

int etcd_key_push(struct list *head, const char *key, int64_t rev) {
        size_t len = strlen(key);
        struct etcd_key *k = malloc(sizeof(*k) + len + 1);
        if (!k)
                return -ENOMEM;
        k->rev = rev;
        memcpy(k->key, key, len + 1);
        list_add(head, &k->link);
        return 0;
}

struct etcd_key *etcd_key_find(struct list *head, const char *key) {
        struct list *pos;
        list_for_each(pos, head) {
                struct etcd_key *k = list_entry(pos, struct etcd_key, link);
                if (!strcmp(k->key, key))
                        return k;
        }
        return NULL;
}

void etcd_key_drop(struct etcd_key *k) {
        list_del(&k->link);
        free(k);
}

void etcd_keys_free(struct list *head) {
        struct list *pos, *tmp;
        list_for_each_safe(pos, tmp, head)
                etcd_key_drop(list_entry(pos, struct etcd_key, link));
}

int key_listing_add(struct key_listing *l, const char *key) {
        if (array_grow(&l->keys, &l->cap, l->n + 1, sizeof(*l->keys), 64) < 0)
                return -ENOMEM;
        if (!(l->keys[l->n] = strdup(key)))
                return -ENOMEM;
        l->n++;
        return 0;
}

bool key_listing_has(const struct key_listing *l, const char *key) {
        size_t lo = 0, hi = l->n;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = strcmp(l->keys[mid], key);
                if (c == 0)
                        return true;
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return false;
}

void key_listing_clear(struct key_listing *l) {
        for (size_t i = 0; i < l->n; i++)
                free(l->keys[i]);
        free(l->keys);
        *l = (struct key_listing){ 0 };
}
