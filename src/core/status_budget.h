/* SPDX-License-Identifier: MIT */
/* The memory status readers may pin: rendered documents held by open
 * files (a lock's status, the pieces of .lockfs/locks.json not yet read),
 * counted per uid of the opener and in all. A charge past either limit
 * fails with -ENOMEM and changes nothing. Root is held to its per-uid
 * limit but not to the total, so an administrator can still read the
 * status when users have used up the total. Thread-safe (its own mutex,
 * never the lock table's). */
#ifndef LOCKFS_STATUS_BUDGET_H
#define LOCKFS_STATUS_BUDGET_H

#include <stddef.h>
#include <sys/types.h>

#define STATUS_BUDGET_DEFAULT_PER_UID ((size_t)32 << 20)  /* 32 MiB */
#define STATUS_BUDGET_DEFAULT_TOTAL ((size_t)256 << 20)   /* 256 MiB */

struct status_budget;

/* A budget of per_uid bytes per uid and total bytes in all (0: the
 * defaults above, raised to fit max_render, the largest document one lock
 * renders to, twice per uid and eight times the per-uid limit in all).
 * NULL without memory. */
struct status_budget *status_budget_new(size_t per_uid, size_t total, size_t max_render);
void status_budget_free(struct status_budget *b);

/* Count bytes more for uid: 0, or -ENOMEM (nothing counted) past a limit.
 * A NULL budget allows everything. */
int status_budget_charge(struct status_budget *b, uid_t uid, size_t bytes);
/* Give back bytes earlier charged to uid. */
void status_budget_release(struct status_budget *b, uid_t uid, size_t bytes);

/* What uid holds now, and everyone (for tests and metrics). */
size_t status_budget_used(struct status_budget *b, uid_t uid);
size_t status_budget_total_used(struct status_budget *b);
/* The limits in force. */
size_t status_budget_per_uid(const struct status_budget *b);
size_t status_budget_total(const struct status_budget *b);

#endif
