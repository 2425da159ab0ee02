/* SPDX-License-Identifier: MIT */
/* Per-uid accounting of held locks (-o max_locks_per_uid): every held lock
 * is charged to the uid it belongs to (its holder's, or a detached lock's
 * creator's), so one user cannot exhaust the table. Root is not limited. */
#include <errno.h>
#include <stdlib.h>

#include "lt_internal.h"

struct uid_count {
        struct hlink by_uid;
        uid_t uid;
        uint64_t n;
};

static struct uid_count *count_find(struct locktable *t, uid_t uid, bool create) {
        uint64_t h = htab_hash_u64(uid);
        for (struct hlink *l = htab_chain(&t->uid_counts, h); l; l = l->next) {
                struct uid_count *c = container_of(l, struct uid_count, by_uid);
                if (c->uid == uid)
                        return c;
        }
        if (!create)
                return NULL;
        struct uid_count *c = calloc(1, sizeof(*c));
        if (c) {
                c->uid = uid;
                htab_insert(&t->uid_counts, &c->by_uid, h);
        }
        return c;
}

int lt_quota_check(struct locktable *t, const struct node *n, uid_t uid) {
        if (!t->cfg.max_locks_per_uid || uid == 0 || (n->charged && n->charged_uid == uid))
                return 0;
        struct uid_count *c = count_find(t, uid, false);
        return c && c->n >= t->cfg.max_locks_per_uid ? -EDQUOT : 0;
}

void lt_quota_uncharge(struct locktable *t, struct node *n) {
        if (!n->charged)
                return;
        struct uid_count *c = count_find(t, n->charged_uid, false);
        if (c && --c->n == 0) {
                htab_remove(&t->uid_counts, &c->by_uid);
                free(c);
        }
        n->charged = false;
}

void lt_quota_charge(struct locktable *t, struct node *n) {
        if (n->charged && n->charged_uid == n->uid)
                return;
        lt_quota_uncharge(t, n);
        struct uid_count *c = count_find(t, n->uid, true);
        if (!c)
                return; /* out of memory: this lock goes uncounted */
        c->n++;
        n->charged = true;
        n->charged_uid = n->uid;
}

void lt_quota_free(struct locktable *t) {
        for (size_t b = 0; t->uid_counts.buckets && b <= t->uid_counts.mask; b++) {
                struct hlink *l;
                while ((l = t->uid_counts.buckets[b])) {
                        htab_remove(&t->uid_counts, l);
                        free(container_of(l, struct uid_count, by_uid));
                }
        }
        htab_free(&t->uid_counts);
}
