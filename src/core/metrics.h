/* SPDX-License-Identifier: MIT */
/* The .lockfs/metrics page: the lock table's counters and the FUSE
 * requests served, in the Prometheus text exposition format (0.0.4). */
#ifndef LOCKFS_METRICS_H
#define LOCKFS_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "lockview.h"

/* One sample of a labelled counter: its label value and its count. */
struct metrics_sample {
        const char *name;
        uint64_t count;
};

/* Render the table's counters m, then the family
 * lockfs_fuse_requests_total with one sample {op="NAME"} per element of
 * fuse_requests (n of them, in that order; its HELP and TYPE lines even
 * when n is 0). Returns a malloc'd NUL-terminated string and its length in
 * *ret_len (when ret_len is not NULL), or NULL when out of memory. */
char *metrics_render(const struct lock_metrics *m, const struct metrics_sample *fuse_requests,
                     size_t n, size_t *ret_len);

#endif
