/* SPDX-License-Identifier: MIT */
/* The hard limits of a lock that every layer agrees on: what the options
 * may allow at most and what each store must be able to record. */
#ifndef LOCKFS_LOCK_LIMITS_H
#define LOCKFS_LOCK_LIMITS_H

/* Largest -o max_content: the bytes a holder may write into its lock. */
#define LOCKFS_MAX_CONTENT_LIMIT (16u << 20)
/* Largest -o max_names. Each link(2) rewrites the lock's journal record
 * with all its names, so the cap bounds that cost: at most about 265
 * bytes a name. */
#define LOCKFS_MAX_NAMES_LIMIT 1024
/* The most holders a shared lock has besides its recorded holder (SPEC
 * R7.3): a request beyond gets ENOLCK, and every store records them all. */
#define LOCKFS_SHARES_MAX 4096

#endif
