/* SPDX-License-Identifier: MIT */
/* The reaper thread: waits on the lock table's pidfds and TTL timer and
 * releases what is due the moment it is due (no polling scan). */
#ifndef LOCKFS_REAPER_H
#define LOCKFS_REAPER_H

#include "locktable.h"

struct reaper;

/* Start the thread for table t; fn is told of every name it removes (may
 * be NULL). Returns 0 or -errno. */
int reaper_start(struct locktable *t, lt_removed_fn fn, void *ctx, struct reaper **ret);

/* Stop and join the thread, then free r. NULL is a no-op. */
void reaper_stop(struct reaper *r);

#endif
