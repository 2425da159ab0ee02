/* SPDX-License-Identifier: MIT */
/* The reaper's side of the lock table: TTL deadlines on a timerfd and
 * holder deaths from pidfds (or, without pidfds, from polling /proc), all
 * handled as they happen through one epoll set (locktable_reaper_fd). */
#include <errno.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "clock.h"
#include "lt_internal.h"

int locktable_reaper_fd(struct locktable *t) {
        return t->epfd;
}

/* The process of the holder with key died: cancel the flock requests
 * parked for it (SPEC R7.1: a hand-off never goes to a dead process), end
 * its shares of shared locks, release every lock it holds (a shared one
 * goes to its oldest live sharer, R7.3) (one whose acquisition is with the store
 * goes at the answer), and stop watching it; the record goes with its last
 * reference. Returns the locks released now. */
static int reap_holder(struct locktable *t, uint64_t key, struct removals *out) {
        struct proc_id p = lt_holder_key_proc(key);
        struct holder *h = lt_holder_find(t, &p);
        if (!h || h->dead)
                return 0;
        lt_holder_reaped(t, h); /* holds a reference until the end */
        while (!list_empty(&h->waits)) {
                struct lt_waiter *w = list_entry(h->waits.next, struct lt_waiter, h_link);
                struct node *n = w->n;
                lt_waiter_cancel(t, w, LT_WAITER_ORPHANED);
                lt_shares_grant_waiting(t, n); /* those it held back */
        }
        lt_shares_drop_of(t, h); /* before its locks: none goes to its own share */
        int released = 0;
        struct list *l, *next;
        list_for_each_safe(l, next, &h->locks) {
                struct node *n = list_entry(l, struct node, hl);
                if (!n->busy)
                        released++;
                lt_release(t, n, CAUSE_EXIT, out);
        }
        lt_holder_unref(t, h);
        return released;
}

static int reap_deadlines(struct locktable *t, struct removals *out) {
        uint64_t ticks;
        while (read(t->timerfd, &ticks, sizeof(ticks)) > 0)
                ;
        int released = 0;
        int64_t now = clock_mono_ms();
        struct heap_entry *e;
        while ((e = heap_top(&t->deadlines)) && e->key <= now) {
                lt_release(t, container_of(e, struct node, deadline), CAUSE_TTL, out);
                released++;
        }
        lt_deadline_rearm(t);
        return released;
}

/* The polling fallback (holders without a pidfd): the keys of every
 * polled holder, collected under the lock; their liveness is read from
 * /proc outside it (polled_dead), and the dead ones are reaped by key, so
 * a record freed meanwhile is simply not found. */
static uint64_t *polled_keys(struct locktable *t, size_t *ret_n) {
        uint64_t ticks;
        while (read(t->pollfd, &ticks, sizeof(ticks)) > 0)
                ;
        size_t n = 0, cap = t->n_polled;
        uint64_t *keys = cap ? malloc(cap * sizeof(*keys)) : NULL;
        for (size_t b = 0; keys && b <= t->holders.mask; b++) {
                for (struct hlink *l = t->holders.buckets[b]; l && n < cap; l = l->next) {
                        struct holder *h = container_of(l, struct holder, by_pid);
                        if (h->pidfd < 0 && !h->dead)
                                keys[n++] = lt_holder_key(&h->proc);
                }
        }
        *ret_n = n;
        return keys;
}

/* Keep only the keys whose process is gone (reads /proc: without t->mu). */
static size_t polled_dead(uint64_t *keys, size_t n) {
        size_t dead = 0;
        for (size_t i = 0; i < n; i++) {
                struct proc_id p = lt_holder_key_proc(keys[i]);
                if (!holder_alive(&p))
                        keys[dead++] = keys[i];
        }
        return dead;
}

/* Handle the n events ev under t->mu; polled holders are checked with
 * t->mu let go meanwhile. Returns the locks released. */
static int reap_events(struct locktable *t, const struct epoll_event *ev, int n,
                       struct removals *out) {
        int released = 0;
        uint64_t *polled = NULL;
        size_t n_polled = 0;
        for (int i = 0; i < n; i++) {
                uint64_t tag = ev[i].data.u64;
                if (tag == POLL_TAG && !polled)
                        polled = polled_keys(t, &n_polled);
                else
                        released += tag == TIMER_TAG ? reap_deadlines(t, out)
                                                     : reap_holder(t, tag, out);
        }
        if (polled) {
                pthread_mutex_unlock(&t->mu);
                n_polled = polled_dead(polled, n_polled);
                pthread_mutex_lock(&t->mu);
                for (size_t i = 0; i < n_polled; i++)
                        released += reap_holder(t, polled[i], out);
                free(polled);
        }
        return released;
}

int locktable_reap(struct locktable *t, lt_removed_fn fn, void *ctx) {
        struct epoll_event ev[64];
        int n = epoll_wait(t->epfd, ev, 64, 0);
        if (n <= 0)
                return n < 0 && errno != EINTR ? -errno : 0;
        struct removals out = { 0 };
        pthread_mutex_lock(&t->mu);
        int released = reap_events(t, ev, n, &out);
        lt_unlock(t);
        lt_removals_report(&out, fn, ctx);
        return released;
}
