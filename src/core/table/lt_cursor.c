/* SPDX-License-Identifier: MIT */
/* Status readers' cursors over the held locks (.lockfs/locks.json is read
 * in pieces, see status_stream.c).
 *
 * t->order lists every held lock in the order it was added (order_seq
 * grows along the list) and, among them, the cursors of open readers. A
 * lock that goes leaves the list; a cursor stays where it is, so it
 * survives the removal of any lock, also of the one next to it. A cursor
 * shows the locks added before it was made (order_seq <= end_seq), each at
 * most once (order_seq > done_seq), in list order.
 *
 * Every call holds t->mu for a bounded amount of work: a peek copies at
 * most max locks (and stops once max_bytes of content, path and cmdline are
 * copied) and passes over at most LT_CURSOR_SKIP_MAX list elements without
 * copying them; nothing else here walks the list. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lt_internal.h"

struct lt_cursor {
        struct lt_olink at;      /* its place in t->order */
        uint64_t end_seq;        /* later locks are not shown */
        uint64_t done_seq;       /* locks up to here were handed out */
};

void lt_order_init(struct locktable *t) {
        list_init(&t->order.link);
        t->order.cursor = false;
}

void lt_order_add(struct locktable *t, struct node *n) {
        n->order.cursor = false;
        n->order_seq = ++t->order_seq;
        list_add_tail(&t->order.link, &n->order.link);
}

void lt_order_remove(struct node *n) {
        list_del(&n->order.link); /* a no-op for a lock that was never added */
}

int locktable_cursor_new(struct locktable *t, struct lt_cursor **ret) {
        struct lt_cursor *c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        c->at.cursor = true;
        pthread_mutex_lock(&t->mu);
        c->end_seq = t->order_seq;
        list_add(&t->order.link, &c->at.link);
        pthread_mutex_unlock(&t->mu);
        *ret = c;
        return 0;
}

void locktable_cursor_free(struct locktable *t, struct lt_cursor *c) {
        if (!c)
                return;
        pthread_mutex_lock(&t->mu);
        list_del(&c->at.link);
        pthread_mutex_unlock(&t->mu);
        free(c);
}

/* What copying v cost, for max_bytes. */
static size_t view_bytes(const struct lock_view *v) {
        return v->content_len + strlen(v->path) + strnlen(v->cmdline, sizeof(v->cmdline)) +
               (v->host ? strlen(v->host) : 0);
}

int locktable_cursor_peek(struct locktable *t, struct lt_cursor *c, struct lock_view *v,
                          size_t max, size_t max_bytes, size_t *ret_n, uint64_t *ret_seq) {
        size_t n = 0, bytes = 0, skipped = 0;
        int r = 0;
        pthread_mutex_lock(&t->mu);
        uint64_t seq = c->done_seq;
        struct list *e = c->at.link.next, *passed = NULL;
        for (;;) {
                if (e == &t->order.link) {
                        r = 1;
                        break;
                }
                struct lt_olink *o = list_entry(e, struct lt_olink, link);
                struct node *l = o->cursor ? NULL : container_of(o, struct node, order);
                if (l && l->order_seq > c->end_seq) {
                        r = 1; /* the rest was added after the cursor was made */
                        break;
                }
                if (l && l->order_seq > c->done_seq) {
                        if (n == max || (n > 0 && bytes >= max_bytes))
                                break;
                        if (lt_lock_view(l, &v[n]) < 0) {
                                r = -ENOMEM;
                                break;
                        }
                        bytes += view_bytes(&v[n]);
                        seq = l->order_seq;
                        n++;
                } else {
                        /* another cursor, or a lock handed out already */
                        if (n == 0)
                                passed = e;
                        if (++skipped >= LT_CURSOR_SKIP_MAX)
                                break;
                }
                e = e->next;
        }
        if (passed) { /* move past what is behind us for good */
                list_del(&c->at.link);
                list_add(passed, &c->at.link);
        }
        pthread_mutex_unlock(&t->mu);
        if (r < 0) {
                for (size_t i = 0; i < n; i++)
                        lock_view_clear(&v[i]);
                return r;
        }
        *ret_n = n;
        *ret_seq = seq;
        return r;
}

void locktable_cursor_commit(struct locktable *t, struct lt_cursor *c, uint64_t seq) {
        pthread_mutex_lock(&t->mu);
        if (seq > c->done_seq)
                c->done_seq = seq;
        pthread_mutex_unlock(&t->mu);
}
