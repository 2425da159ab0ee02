/* SPDX-License-Identifier: MIT */
/* An intrusive, circular, doubly linked list with a sentinel head, in the
 * style of the kernel's list.h: embed a struct list in each element and
 * reach the element with list_entry(). An element not on a list should be
 * list_init()ed, so list_del() and list_is_linked() are safe on it.
 * Nothing here allocates or fails. */
#ifndef LOCKFS_LIST_H
#define LOCKFS_LIST_H

#include <stdbool.h>

#include "container_of.h"

struct list {
        struct list *next, *prev;
};

#define LIST_INIT(name) { &(name), &(name) }

static inline void list_init(struct list *l) {
        l->next = l->prev = l;
}

/* True when l is a head with no element, or an element on no list. */
static inline bool list_empty(const struct list *l) {
        return l->next == l;
}

static inline bool list_is_linked(const struct list *e) {
        return e->next != e;
}

static inline void list_insert_between(struct list *e, struct list *prev, struct list *next) {
        e->prev = prev;
        e->next = next;
        prev->next = e;
        next->prev = e;
}

/* Put e first on head. */
static inline void list_add(struct list *head, struct list *e) {
        list_insert_between(e, head, head->next);
}

/* Put e last on head. */
static inline void list_add_tail(struct list *head, struct list *e) {
        list_insert_between(e, head->prev, head);
}

/* Take e off its list (a no-op when it is on none) and leave it on none. */
static inline void list_del(struct list *e) {
        e->prev->next = e->next;
        e->next->prev = e->prev;
        list_init(e);
}

/* Move every element of from to the end of to, in order; from is left
 * empty. */
static inline void list_splice_tail_init(struct list *from, struct list *to) {
        if (list_empty(from))
                return;
        struct list *first = from->next, *last = from->prev;
        first->prev = to->prev;
        to->prev->next = first;
        last->next = to;
        to->prev = last;
        list_init(from);
}

#define list_entry(p, type, member) container_of(p, type, member)
/* The first element of head, or NULL when it is empty. */
#define list_first_entry_or_null(head, type, member) \
        (list_empty(head) ? NULL : list_entry((head)->next, type, member))

/* Walk head; pos is the struct list of each element in turn. The _safe
 * form allows list_del(pos) inside the loop. */
#define list_for_each(pos, head) for ((pos) = (head)->next; (pos) != (head); (pos) = (pos)->next)
#define list_for_each_safe(pos, tmp, head) \
        for ((pos) = (head)->next, (tmp) = (pos)->next; (pos) != (head); (pos) = (tmp), (tmp) = (pos)->next)

#endif
