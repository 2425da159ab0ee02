/* SPDX-License-Identifier: MIT */
/* Parked flock and F_SETLKW requests (exclusive or shared) (SPEC §7), one queue for
 * both: each waits on its lock in FIFO
 * order without holding a thread, listed also under the holder record of
 * the process it would hold for (so that process's death cancels it) and
 * by its id (so an interrupt cancels it). A release hands the lock to the
 * first live waiter (lt_handoff, lt_lock.c); every reply is owed through
 * lt_owe_grant and delivered outside the mutex. */
#include <errno.h>
#include <stdlib.h>

#include "clock.h"
#include "lt_internal.h"

int lt_waiter_park(struct locktable *t, struct node *n, const struct lt_lock_req *rq,
                   const struct caller *c, struct holder *h) {
        struct lt_waiter *w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        *w = (struct lt_waiter){ .rq = *rq, .who = *c, .h = h, .n = n,
                                 .since_ms = clock_wall_ms() };
        list_add_tail(&n->wq, &w->link);
        list_init(&w->h_link);
        if (h) {
                list_add(&h->waits, &w->h_link);
                h->refs++;
        }
        htab_insert(&t->waiters, &w->by_id, htab_hash_u64(rq->id));
        t->m.waiters++;
        return LT_PARKED;
}

struct lt_waiter *lt_waiter_first(const struct node *n) {
        return list_first_entry_or_null(&n->wq, struct lt_waiter, link);
}

void lt_waiter_free(struct locktable *t, struct lt_waiter *w) {
        list_del(&w->link);
        list_del(&w->h_link);
        htab_remove(&t->waiters, &w->by_id);
        t->m.waiters--;
        if (w->h)
                lt_holder_unref(t, w->h);
        free(w);
}

void lt_waiter_cancel(struct locktable *t, struct lt_waiter *w, int err) {
        struct lt_handle h = lt_handle_of(w->n, LT_HANDLE_HOLDER, 0);
        lt_owe_grant(t, w->rq.id, err, &h);
        lt_waiter_free(t, w);
}

void lt_drop_waiters(struct locktable *t, struct node *n, int err) {
        struct lt_waiter *w;
        while ((w = lt_waiter_first(n)))
                lt_waiter_cancel(t, w, err);
}

struct node *lt_waiter_remove(struct locktable *t, uint64_t id) {
        uint64_t hash = htab_hash_u64(id);
        struct lt_waiter *w, *found = NULL;
        htab_for_each_possible(&t->waiters, hash, w, struct lt_waiter, by_id)
                if (w->rq.id == id) {
                        found = w;
                        break;
                }
        struct node *n = found ? found->n : NULL;
        if (found)
                lt_waiter_free(t, found);
        return n;
}
