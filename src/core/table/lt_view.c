/* SPDX-License-Identifier: MIT */
/* The one mapping between a lock node and its lock_view: what status
 * readers see, and the record persistent stores keep. The fields both
 * carry are listed once, in LOCK_RECORD_FIELDS (lockview.h); a new lock
 * field goes there (and the stores' codecs then fail to build until they
 * carry it). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt_internal.h"

void lt_view_to_node(const struct lock_view *v, struct node *n) {
        LOCK_RECORD_COPY(n, v);
}

void lt_view_derive(struct lock_view *v, bool detached) {
        v->detached = detached;
        v->expires_at_ms = v->renewed_at_ms + (int64_t)v->ttl_s * 1000;
}

/* Fill p from a holder record (NULL: a process not visible). */
static void party_of(const struct holder *h, uid_t uid, gid_t gid, const struct lt_lock_req *rq,
                     int64_t since_ms, struct lock_party *p) {
        *p = (struct lock_party){ .pid = h ? h->proc.pid : 0,
                                  .start_time = h ? h->proc.start_time : 0, .uid = uid,
                                  .gid = gid, .how = rq->posix ? LOCK_HOW_FCNTL : LOCK_HOW_FLOCK,
                                  .shared = rq->shared, .since_ms = since_ms };
        if (h)
                memcpy(p->comm, h->comm, sizeof(p->comm));
}

/* n's sharers (the first max of them, not again when v has them). */
static int sharers_to_view(const struct node *n, size_t max, struct lock_view *v) {
        v->shared = n->shared;
        v->sharers_total = n->n_shares;
        size_t ns = n->n_shares < max ? n->n_shares : max;
        if (v->sharers || !ns)
                return 0;
        if (!(v->sharers = calloc(ns, sizeof(*v->sharers))))
                return -ENOMEM;
        const struct list *l;
        list_for_each(l, &n->shares) {
                if (v->n_sharers == ns)
                        break;
                const struct lt_share *s = list_entry(l, struct lt_share, link);
                party_of(s->h, s->uid, s->gid, &s->rq, s->since_ms, &v->sharers[v->n_sharers++]);
        }
        return 0;
}

/* The holder process's identity: this host's record h, else another
 * host's (n->remote); neither for a detached lock. */
static int identity_to_view(const struct node *n, struct lock_view *v) {
        const struct holder *h = n->holder;
        if (h) {
                v->pid = h->proc.pid;
                memcpy(v->comm, h->comm, sizeof(v->comm));
                snprintf(v->cmdline, sizeof(v->cmdline), "%s", h->cmdline);
        } else if (n->remote) {
                v->pid = n->remote->pid;
                memcpy(v->comm, n->remote->comm, sizeof(v->comm));
                snprintf(v->cmdline, sizeof(v->cmdline), "%s", n->remote->cmdline);
                v->host = strdup(n->remote->host);
                if (!v->host)
                        return -ENOMEM;
        }
        return 0;
}

/* What persistent stores need besides: parent, holder start time,
 * deadline and the other names. */
static int store_extras_to_view(const struct node *n, struct lock_view *v) {
        v->parent_ino = n->parent ? n->parent->ino : 0;
        v->start_time = n->holder ? n->holder->proc.start_time : 0;
        v->deadline_mono_ms = lt_deadline_key(n);
        int r = sharers_to_view(n, SIZE_MAX, v);
        if (r < 0)
                return r;
        if (!n->n_aliases)
                return 0;
        v->aliases = calloc(n->n_aliases, sizeof(*v->aliases));
        if (!v->aliases)
                return -ENOMEM;
        const struct list *l;
        list_for_each(l, &n->aliases) {
                const struct node *a = list_entry(l, struct node, alias_link);
                struct lock_alias *la = &v->aliases[v->n_aliases];
                la->parent_ino = a->parent->ino;
                la->name = strdup(a->name);
                if (!la->name)
                        return -ENOMEM;
                v->n_aliases++;
        }
        return 0;
}

static int content_to_view(const struct node *n, struct lock_view *v) {
        if (!n->content_len)
                return 0;
        v->content = malloc(n->content_len);
        if (!v->content)
                return -ENOMEM;
        memcpy(v->content, n->content, n->content_len);
        v->content_len = n->content_len;
        return 0;
}

/* n's sharers and waiters, the first LOCK_PARTIES_MAX of each. */
static int parties_to_view(const struct node *n, struct lock_view *v) {
        int r = sharers_to_view(n, LOCK_PARTIES_MAX, v);
        if (r < 0)
                return r;
        size_t waiting = 0;
        const struct list *l;
        list_for_each(l, &n->wq)
                waiting++;
        v->waiters_total = waiting;
        size_t nw = waiting < LOCK_PARTIES_MAX ? waiting : LOCK_PARTIES_MAX;
        if (nw && !(v->waiters = calloc(nw, sizeof(*v->waiters))))
                return -ENOMEM;
        list_for_each(l, &n->wq) {
                if (v->n_waiters == nw)
                        break;
                const struct lt_waiter *w = list_entry(l, struct lt_waiter, link);
                party_of(w->h, w->who.uid, w->who.gid, &w->rq, w->since_ms,
                         &v->waiters[v->n_waiters]);
                if (!w->h) /* a caller whose pid is not visible */
                        memcpy(v->waiters[v->n_waiters].comm, w->who.comm, sizeof(w->who.comm));
                v->n_waiters++;
        }
        return 0;
}

int lt_node_to_view(const struct node *n, unsigned parts, struct lock_view *v) {
        *v = (struct lock_view){ .ino = n->ino, .lost = n->lost };
        LOCK_RECORD_COPY(v, n);
        lt_view_derive(v, n->holder == NULL && n->remote == NULL);
        int r = identity_to_view(n, v);
        if (r == 0 && !(v->path = lt_node_path(n)))
                r = -ENOMEM;
        if (r == 0 && (parts & LT_VIEW_CONTENT))
                r = content_to_view(n, v);
        if (r == 0 && (parts & LT_VIEW_STORE_EXTRAS))
                r = store_extras_to_view(n, v);
        if (r == 0 && (parts & LT_VIEW_PARTIES))
                r = parties_to_view(n, v);
        if (r < 0)
                lock_view_clear(v);
        return r;
}

int lt_lock_view(const struct node *n, struct lock_view *v) {
        return lt_node_to_view(n, LT_VIEW_CONTENT | LT_VIEW_PARTIES, v);
}

int lt_store_view(const struct node *n, struct lock_view *v) {
        return lt_node_to_view(n, LT_VIEW_CONTENT | LT_VIEW_STORE_EXTRAS, v);
}
