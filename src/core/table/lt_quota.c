/* SPDX-License-Identifier: MIT */
/* Per-uid accounting (-o max_locks_per_uid, -o max_content_per_uid).
 *
 * What is counted, and to whom:
 * - a held lock, to the lock's uid (the holder's, or a detached lock's
 *   creator's; a claim keeps the writer's uid, so it never moves a charge);
 * - each other name of a lock (link(2)), to the lock's uid too: the names
 *   move with the lock when it changes hands (a flock hand-off);
 * - a directory, to its creator's uid, until it is removed;
 * - a lock's content bytes, to the lock's uid.
 * Every node counted carries the uid it is counted for (charged_uid) and
 * the bytes (charged_bytes), so each refund gives back exactly its charge.
 * Root is counted but never refused. Past a limit the request fails with
 * -EDQUOT and changes nothing (the global max_locks answers -ENOSPC). */
#include <errno.h>
#include <stdlib.h>

#include "lt_internal.h"

struct uid_count {
        struct hlink by_uid;
        uid_t uid;
        uint64_t n;              /* locks, names and directories */
        uint64_t bytes;          /* content of its locks */
};

static struct uid_count *count_find(struct locktable *t, uid_t uid, bool create) {
        uint64_t hash = htab_hash_u64(uid); /* the macro evaluates its key more than once */
        struct uid_count *c;
        htab_for_each_possible(&t->uid_counts, hash, c, struct uid_count, by_uid)
                if (c->uid == uid)
                        return c;
        if (!create)
                return NULL;
        c = calloc(1, sizeof(*c));
        if (c) {
                c->uid = uid;
                htab_insert(&t->uid_counts, &c->by_uid, hash);
        }
        return c;
}

static void count_maybe_free(struct locktable *t, struct uid_count *c) {
        if (c->n == 0 && c->bytes == 0) {
                htab_remove(&t->uid_counts, &c->by_uid);
                free(c);
        }
}

/* The uid node n counts for: a second name's is its lock's. */
static uid_t owner_of(const struct node *n) {
        return n->target ? n->target->uid : n->uid;
}

static void node_uncharge(struct locktable *t, struct node *n) {
        if (!n->charged)
                return;
        struct uid_count *c = count_find(t, n->charged_uid, false);
        if (c) {
                c->n--;
                c->bytes -= n->charged_bytes;
                count_maybe_free(t, c);
        }
        n->charged_bytes = 0;
        n->charged = false;
}

static void node_charge(struct locktable *t, struct node *n, uid_t uid) {
        if (!n->charged || n->charged_uid != uid) {
                node_uncharge(t, n);
                struct uid_count *c = count_find(t, uid, true);
                if (!c)
                        return; /* out of memory: this node goes uncounted */
                c->n++;
                n->charged = true;
                n->charged_uid = uid;
        }
        lt_quota_content(t, n);
}

int lt_quota_room(struct locktable *t, uid_t uid, uint64_t more) {
        if (!t->cfg.max_locks_per_uid || uid == 0)
                return 0;
        struct uid_count *c = count_find(t, uid, false);
        uint64_t have = c ? c->n : 0;
        return have + more > t->cfg.max_locks_per_uid ? -EDQUOT : 0;
}

int lt_quota_check(struct locktable *t, const struct node *n, uid_t uid) {
        if (n->charged && n->charged_uid == uid)
                return 0; /* already this uid's, with its names */
        return lt_quota_room(t, uid, 1 + (uint64_t)n->n_aliases);
}

int lt_quota_content_check(struct locktable *t, const struct node *n, size_t len) {
        uid_t uid = owner_of(n);
        if (!t->cfg.max_content_per_uid || uid == 0)
                return 0;
        bool mine = n->charged && n->charged_uid == uid;
        if (mine && len <= n->charged_bytes)
                return 0; /* shrinking is always allowed */
        struct uid_count *c = count_find(t, uid, false);
        uint64_t others = c ? c->bytes - (mine ? n->charged_bytes : 0) : 0;
        return others + len > t->cfg.max_content_per_uid ? -EDQUOT : 0;
}

void lt_quota_content(struct locktable *t, struct node *n) {
        if (!n->charged || n->charged_bytes == n->content_len)
                return;
        struct uid_count *c = count_find(t, n->charged_uid, false);
        if (c) {
                c->bytes = c->bytes - n->charged_bytes + n->content_len;
                n->charged_bytes = n->content_len;
        }
}

void lt_quota_uncharge(struct locktable *t, struct node *n) {
        struct list *l;
        node_uncharge(t, n);
        if (n->kind == LT_LOCK && !n->target)
                list_for_each(l, &n->aliases)
                        node_uncharge(t, list_entry(l, struct node, alias_link));
}

void lt_quota_charge(struct locktable *t, struct node *n) {
        uid_t uid = owner_of(n);
        struct list *l;
        node_charge(t, n, uid);
        if (n->kind == LT_LOCK && !n->target)
                list_for_each(l, &n->aliases)
                        node_charge(t, list_entry(l, struct node, alias_link), uid);
}

void locktable_quota_usage(struct locktable *t, uid_t uid, struct lt_usage *ret) {
        pthread_mutex_lock(&t->mu);
        struct uid_count *c = count_find(t, uid, false);
        *ret = (struct lt_usage){ .things = c ? c->n : 0, .content_bytes = c ? c->bytes : 0 };
        pthread_mutex_unlock(&t->mu);
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
