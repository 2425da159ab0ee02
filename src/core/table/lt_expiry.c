/* SPDX-License-Identifier: MIT */
/* Release of locks and the reaper's side of the lock table: TTL deadlines
 * on a timerfd, holder deaths from pidfds, all handled as they happen. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "log.h"
#include "lt_internal.h"

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

struct lt_renewal lt_renewal_of(const struct node *n) {
        return (struct lt_renewal){ .renewed_ms = n->renewed_ms, .deadline = lt_deadline_key(n) };
}

void lt_renewal_restore(struct locktable *t, struct node *n, struct lt_renewal r) {
        n->renewed_ms = r.renewed_ms;
        lt_set_deadline(t, n, r.deadline);
}

/* Restart n's TTL from now (renewal); a TTL of 0 unqueues it. */
void lt_renew(struct locktable *t, struct node *n) {
        n->renewed_ms = lt_now_wall_ms();
        lt_set_deadline(t, n, n->ttl_s ? lt_now_mono_ms() + (int64_t)n->ttl_s * 1000 : 0);
}

/* Release lock n for cause; if report, queue its name for the kernel. */
static void count_release(struct locktable *t, enum release_cause cause) {
        switch (cause) {
        case CAUSE_UNLINK: t->m.released_unlink++; break;
        case CAUSE_EXIT: t->m.released_exit++; break;
        case CAUSE_TTL: t->m.released_ttl++; break;
        case CAUSE_ROOT: t->m.released_root++; break;
        case CAUSE_DETACHED: t->m.released_detached++; break;
        case CAUSE_UNLOCK: t->m.released_unlock++; break;
        }
}

void lt_report(struct removals *report, uint64_t parent, uint64_t ino, const char *name) {
        if (!report)
                return;
        if (report->n == report->cap) {
                size_t cap = report->cap ? report->cap * 2 : 16;
                struct removal *v = realloc(report->v, cap * sizeof(*v));
                if (!v)
                        return; /* the kernel then learns at its next lookup */
                report->v = v;
                report->cap = cap;
        }
        char *copy = strdup(name);
        if (copy)
                report->v[report->n++] = (struct removal){ parent, ino, copy };
}

static const char *const cause_names[] = {
        [CAUSE_UNLINK] = "unlinked by its holder", [CAUSE_EXIT] = "holder exited",
        [CAUSE_TTL] = "TTL ran out", [CAUSE_ROOT] = "force-unlocked",
        [CAUSE_DETACHED] = "unlinked", [CAUSE_UNLOCK] = "unlocked",
};

/* Released: expiries at notice, the rest at debug level. */
static void log_release(const struct node *n, enum release_cause cause) {
        int level = cause == CAUSE_TTL ? LOG_NOTICE : LOG_DEBUG;
        if (!log_enabled(level))
                return;
        char *path = lt_node_path(n);
        log_msg(level, "released %s (fence %llu, pid %d): %s", path ? path : n->name,
                (unsigned long long)n->fence, n->holder ? (int)n->holder->proc.pid : 0,
                cause_names[cause]);
        free(path);
}

void lt_release(struct locktable *t, struct node *n, enum release_cause cause,
                struct removals *report) {
        if (n->busy) { /* its acquisition is with the store: release at the answer */
                if (!n->doomed)
                        n->doomed = (uint8_t)(1 + cause);
                if (cause == CAUSE_TTL) /* due: off the heap, or the reaper spins */
                        heap_remove(&t->deadlines, &n->deadline);
                return;
        }
        count_release(t, cause);
        if (!t->closing)
                log_release(n, cause);
        if (n->wq_head && lt_handoff(t, n))
                return; /* the name stays, with its next holder */
        lt_op_release(t, n);
        lt_lock_remove(t, n, report);
}

void lt_lock_remove(struct locktable *t, struct node *n, struct removals *report) {
        lt_report(report, n->parent->ino, n->ino, n->name);
        lt_drop_aliases(t, n, report);
        lt_detach_holder(t, n);
        lt_quota_uncharge(t, n);
        heap_remove(&t->deadlines, &n->deadline);
        if (n->all_prev)
                n->all_prev->all_next = n->all_next;
        else
                t->all_locks = n->all_next;
        if (n->all_next)
                n->all_next->all_prev = n->all_prev;
        n->all_prev = n->all_next = NULL;
        lt_order_remove(n);
        lt_node_unlink(t, n);
        lt_remote_free(n);
        free(n->content);
        n->content = NULL;
        n->content_len = n->content_cap = 0;
        t->n_nodes--;
        t->m.held--;
        lt_node_maybe_free(t, n);
}

int locktable_reaper_fd(struct locktable *t) {
        return t->epfd;
}

/* The process of holder h died: cancel the flock requests parked for it
 * (SPEC R7.1: a hand-off never goes to a dead process), release every lock
 * it holds (one whose acquisition is with the store goes at the answer),
 * and stop watching it; the record goes with its last reference. */
static int reap_holder(struct locktable *t, uint64_t key, struct removals *out) {
        struct proc_id p = { .pid = (pid_t)(key & 0x3fffff), .start_time = key >> 22 };
        struct holder *h = lt_holder_find(t, &p);
        if (!h || h->dead)
                return 0;
        lt_holder_reaped(t, h); /* holds a reference until the end */
        int released = 0;
        struct node *n = h->locks, *next;
        for (; n; n = next) {
                next = n->hl_next;
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
        int64_t now = lt_now_mono_ms();
        struct heap_entry *e;
        while ((e = heap_top(&t->deadlines)) && e->key <= now) {
                lt_release(t, container_of(e, struct node, deadline), CAUSE_TTL, out);
                released++;
        }
        t->armed_key = -1;
        timer_arm(t);
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

/* Keep only the keys whose process is gone (reads /proc: no lock held). */
static size_t polled_dead(uint64_t *keys, size_t n) {
        size_t dead = 0;
        for (size_t i = 0; i < n; i++) {
                struct proc_id p = { .pid = (pid_t)(keys[i] & 0x3fffff),
                                     .start_time = keys[i] >> 22 };
                if (!holder_alive(&p))
                        keys[dead++] = keys[i];
        }
        return dead;
}

int locktable_reap(struct locktable *t, lt_removed_fn fn, void *ctx) {
        struct epoll_event ev[64];
        int n = epoll_wait(t->epfd, ev, 64, 0);
        if (n <= 0)
                return n < 0 && errno != EINTR ? -errno : 0;
        struct removals out = { 0 };
        int released = 0;
        uint64_t *polled = NULL;
        size_t n_polled = 0;
        pthread_mutex_lock(&t->mu);
        for (int i = 0; i < n; i++) {
                uint64_t tag = ev[i].data.u64;
                if (tag == POLL_TAG && !polled)
                        polled = polled_keys(t, &n_polled);
                else
                        released += tag == TIMER_TAG ? reap_deadlines(t, &out)
                                                     : reap_holder(t, tag, &out);
        }
        if (polled) {
                pthread_mutex_unlock(&t->mu);
                n_polled = polled_dead(polled, n_polled);
                pthread_mutex_lock(&t->mu);
                for (size_t i = 0; i < n_polled; i++)
                        released += reap_holder(t, polled[i], &out);
                free(polled);
        }
        lt_unlock(t);
        for (size_t i = 0; i < out.n; i++) {
                if (fn)
                        fn(ctx, out.v[i].parent, out.v[i].ino, out.v[i].name);
                free(out.v[i].name);
        }
        free(out.v);
        return released;
}
