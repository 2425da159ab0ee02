/* SPDX-License-Identifier: MIT */
/* The names of enum lock_how (lockview.h), as the status shows them
 * ("how", SPEC R4.3) and stores record them: the one table of them. */
#ifndef LOCKFS_LOCK_HOW_H
#define LOCKFS_LOCK_HOW_H

#include "lockview.h"

/* "creator", "claim", "flock", "detached", "fcntl" or "mkdir"; "unknown"
 * for a value that is none of the enum's. Never NULL; a static string. */
const char *lock_how_name(enum lock_how how);

/* The lock_how that name names (exactly, case-sensitive) into *ret.
 * Returns 0, or -EINVAL (*ret untouched) when name is NULL or names none. */
int lock_how_parse(const char *name, enum lock_how *ret);

#endif
