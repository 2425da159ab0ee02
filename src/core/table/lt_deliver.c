/* SPDX-License-Identifier: MIT */
/* What the lock table owes outside its mutex: replies to parked flock
 * requests (granted or cancelled) and names it removed by itself, which
 * the kernel must be told about. Both are collected under t->mu and
 * handed over by lt_deliver() once it has let go of the mutex, so no
 * kernel call-back ever runs under it. */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "lt_internal.h"

void lt_report(struct removals *report, uint64_t parent, uint64_t ino, const char *name) {
        if (!report)
                return;
        if (array_grow(&report->v, &report->cap, report->n + 1, sizeof(*report->v), 16) < 0)
                return; /* the kernel then learns at its next lookup */
        char *copy = strdup(name);
        if (copy)
                report->v[report->n++] = (struct removal){ parent, ino, copy };
}

void lt_removals_report(struct removals *gone, lt_removed_fn fn, void *ctx) {
        for (size_t i = 0; i < gone->n; i++) {
                if (fn)
                        fn(ctx, gone->v[i].parent, gone->v[i].ino, gone->v[i].name);
                free(gone->v[i].name);
        }
        free(gone->v);
        *gone = (struct removals){ 0 };
}

void lt_owe_grant(struct locktable *t, uint64_t id, int err, const struct lt_handle *h) {
        if (array_grow(&t->grants, &t->cap_grants, t->n_grants + 1, sizeof(*t->grants), 16) < 0)
                return; /* the request stays unanswered until interrupted */
        t->grants[t->n_grants++] = (struct lt_grant){
                .id = id, .err = err, .handle = err ? (struct lt_handle){ 0 } : *h };
}

void lt_deliver(struct locktable *t) {
        struct lt_grant *g = t->grants;
        size_t n = t->n_grants;
        lt_grant_fn fn = t->grant_fn;
        void *ctx = t->grant_ctx;
        struct removals gone = t->late;
        lt_removed_fn rfn = t->removed_fn;
        void *rctx = t->removed_ctx;
        t->grants = NULL;
        t->n_grants = t->cap_grants = 0;
        t->late = (struct removals){ 0 };
        pthread_mutex_unlock(&t->mu);
        for (size_t i = 0; fn && i < n; i++)
                fn(ctx, g[i].id, g[i].err, &g[i].handle);
        free(g);
        lt_removals_report(&gone, rfn, rctx);
}
