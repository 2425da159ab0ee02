/* SPDX-License-Identifier: MIT */
/* TTL deadlines of the lock table: an index-tracked min-heap of monotonic
 * ms keys, and a timerfd armed for the earliest (the reaper's epoll set
 * watches it, lt_reap.c). */
#include <sys/timerfd.h>

#include "clock.h"
#include "log.h"
#include "lt_internal.h"

/* Arm the timerfd for the earliest deadline (disarm without one). */
static void timer_arm(struct locktable *t) {
        struct heap_entry *top = heap_top(&t->deadlines);
        int64_t key = top ? top->key : 0;
        if (key == t->armed_key)
                return;
        struct itimerspec its = { 0 };
        if (key) {
                its.it_value.tv_sec = key / 1000;
                its.it_value.tv_nsec = (key % 1000) * 1000000;
        }
        if (timerfd_settime(t->timerfd, TFD_TIMER_ABSTIME, &its, NULL) == 0)
                t->armed_key = key;
}

void lt_deadline_rearm(struct locktable *t) {
        t->armed_key = -1;
        timer_arm(t);
}

void lt_set_deadline(struct locktable *t, struct node *n, int64_t key) {
        if (key == 0) {
                heap_remove(&t->deadlines, &n->deadline);
        } else if (n->deadline.index == HEAP_NOT_QUEUED) {
                if (heap_push(&t->deadlines, &n->deadline, key) < 0)
                        log_debug("deadline heap full: %s keeps no TTL", n->name);
        } else {
                heap_rekey(&t->deadlines, &n->deadline, key);
        }
        timer_arm(t);
}

int64_t lt_deadline_key(const struct node *n) {
        return n->deadline.index == HEAP_NOT_QUEUED ? 0 : n->deadline.key;
}

uint32_t lt_ttl_default(const struct locktable *t, bool detached) {
        return detached ? t->cfg.default_ttl_s : t->cfg.holder_ttl_s;
}

int64_t lt_deadline_from_now(uint32_t ttl_s) {
        return ttl_s ? clock_mono_ms() + (int64_t)ttl_s * 1000 : 0;
}

struct lt_renewal lt_renewal_of(const struct node *n) {
        return (struct lt_renewal){ .renewed_ms = n->renewed_at_ms, .deadline = lt_deadline_key(n) };
}

void lt_renewal_restore(struct locktable *t, struct node *n, struct lt_renewal r) {
        n->renewed_at_ms = r.renewed_ms;
        lt_set_deadline(t, n, r.deadline);
}

void lt_renew(struct locktable *t, struct node *n) {
        n->renewed_at_ms = clock_wall_ms();
        lt_set_deadline(t, n, lt_deadline_from_now(n->ttl_s));
}
