/* SPDX-License-Identifier: MIT */
/* The .lockfs/metrics page (metrics.h). Every family is written as its
 * HELP line, its TYPE line, then its samples. */
#include <inttypes.h>
#include <stdlib.h>

#include "buf.h"
#include "metrics.h"

/* Write one metric family's HELP and TYPE lines. 0 or -ENOMEM. */
static int family_head(struct buf *b, const char *name, const char *type, const char *help) {
        return buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Write a family with a single unlabelled sample. 0 or -ENOMEM. */
static int family_one(struct buf *b, const char *name, const char *type, const char *help,
                      uint64_t value) {
        int r = family_head(b, name, type, help);
        return r < 0 ? r : buf_printf(b, "%s %" PRIu64 "\n", name, value);
}

/* Write a counter family with one sample per element of s, labelled
 * label="NAME". 0 or -ENOMEM. */
static int family_labelled(struct buf *b, const char *name, const char *help, const char *label,
                           const struct metrics_sample *s, size_t n) {
        int r = family_head(b, name, "counter", help);
        for (size_t i = 0; i < n && r == 0; i++)
                r = buf_printf(b, "%s{%s=\"%s\"} %" PRIu64 "\n", name, label, s[i].name,
                               s[i].count);
        return r;
}

/* The lock table's families. 0 or -ENOMEM. */
static int table_families(struct buf *b, const struct lock_metrics *m) {
        const struct metrics_sample released[] = {
                { "unlink", m->released_unlink },     { "exit", m->released_exit },
                { "ttl", m->released_ttl },           { "root", m->released_root },
                { "detached", m->released_detached }, { "unlock", m->released_unlock },
        };
        int r = family_one(b, "lockfs_acquired_total", "counter", "Successful lock acquisitions.",
                           m->acquired);
        if (r == 0)
                r = family_one(b, "lockfs_contended_total", "counter",
                               "Attempts refused with EEXIST because the lock was held.",
                               m->contended);
        if (r == 0)
                r = family_labelled(b, "lockfs_released_total", "Locks released, by cause.",
                                    "cause", released, sizeof(released) / sizeof(*released));
        if (r == 0)
                r = family_one(b, "lockfs_expired_total", "counter",
                               "Locks released because their TTL ran out.", m->released_ttl);
        if (r == 0)
                r = family_one(b, "lockfs_locks_held", "gauge", "Locks held now.", m->held);
        if (r == 0)
                r = family_one(b, "lockfs_directories", "gauge",
                               "Lock directories (namespaces) now.", m->directories);
        if (r == 0)
                r = family_one(b, "lockfs_waiters", "gauge", "flock(2) and F_SETLKW waiters parked now.",
                               m->waiters);
        return r;
}

char *metrics_render(const struct lock_metrics *m, const struct metrics_sample *fuse_requests,
                     size_t n, size_t *ret_len) {
        struct buf b = { 0 };
        int r = table_families(&b, m);
        if (r == 0)
                r = family_labelled(&b, "lockfs_fuse_requests_total",
                                    "FUSE requests served, by kind.", "op", fuse_requests, n);
        if (r < 0) {
                buf_free(&b);
                return NULL;
        }
        if (ret_len)
                *ret_len = b.len;
        return buf_steal(&b);
}
