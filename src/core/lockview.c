/* SPDX-License-Identifier: MIT */
/* The lifetime of the plain data the lock table hands out: lock views and
 * directory listings. Here, apart from the table, so that the stores and
 * renderers that free views do not link against the table. */
#include <stdlib.h>

#include "locktable.h"
#include "lockview.h"

void lock_view_clear(struct lock_view *v) {
        if (!v)
                return;
        free(v->path);
        free(v->content);
        for (size_t i = 0; i < v->n_aliases; i++) {
                free(v->aliases[i].name);
                free(v->aliases[i].path);
        }
        free(v->aliases);
        free(v->host);
        free(v->sharers);
        free(v->waiters);
        v->sharers = v->waiters = NULL;
        v->n_sharers = v->n_waiters = 0;
        v->host = NULL;
        v->path = NULL;
        v->content = NULL;
        v->aliases = NULL;
        v->n_aliases = 0;
}

void lock_views_free(struct lock_view *v, size_t n) {
        for (size_t i = 0; i < n; i++)
                lock_view_clear(&v[i]);
        free(v);
}

void lt_dirents_free(struct lt_dirent *d, size_t n) {
        for (size_t i = 0; i < n; i++)
                free(d[i].name);
        free(d);
}
