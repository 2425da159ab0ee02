/* SPDX-License-Identifier: MIT */
/* The in-memory store (store_mem.c): a test double and the store of a
 * daemon that needs nothing to survive it. */
#ifndef LOCKFS_STORE_MEM_H
#define LOCKFS_STORE_MEM_H

#include "store.h"

/* A store that keeps nothing beyond a fence counter starting at 1.
 * Returns 0 and the store in *ret, or -ENOMEM. */
int store_mem_new(struct store **ret);

#endif
