/* SPDX-License-Identifier: MIT */
/* The key -> last record map of the local store (entries.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "entries.h"

int entries_init(struct entries *m) {
        m->bytes = 0;
        return htab_init(&m->by_key);
}

void entry_free(struct entry *e) {
        free(e);
}

void entries_free(struct entries *m) {
        struct htab *h = &m->by_key;
        for (size_t b = 0; h->buckets && b <= h->mask; b++) {
                struct hlink *l;
                while ((l = h->buckets[b])) {
                        htab_remove(h, l);
                        entry_free(container_of(l, struct entry, by_key));
                }
        }
        htab_free(h);
        m->bytes = 0;
}

struct entry *entry_find(struct entries *m, uint64_t key) {
        struct entry *e;
        uint64_t hash = htab_hash_u64(key); /* named so: htab.h's macro reads ->hash */
        htab_for_each_possible(&m->by_key, hash, e, struct entry, by_key)
                if (e->key == key)
                        return e;
        return NULL;
}

void entry_put_back(struct entries *m, struct entry *e) {
        htab_insert(&m->by_key, &e->by_key, htab_hash_u64(e->key));
        m->bytes += e->len;
}

struct entry *entry_set(struct entries *m, uint64_t key, const uint8_t *raw, size_t len,
                        int *err) {
        *err = 0;
        struct entry *e = malloc(sizeof(*e) + len);
        if (!e) {
                *err = -ENOMEM;
                return NULL;
        }
        e->key = key;
        e->off = 0;
        e->len = len;
        memcpy(e->raw, raw, len);
        struct entry *old = entry_find(m, key);
        if (old) {
                htab_remove(&m->by_key, &old->by_key);
                m->bytes -= old->len;
        }
        entry_put_back(m, e);
        return old;
}

bool entry_del(struct entries *m, uint64_t key) {
        struct entry *e = entry_find(m, key);
        if (!e)
                return false;
        htab_remove(&m->by_key, &e->by_key);
        m->bytes -= e->len;
        entry_free(e);
        return true;
}
