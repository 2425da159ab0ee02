/* SPDX-License-Identifier: MIT */
/* container_of: from a pointer to a member back to its enclosing struct. */
#ifndef LOCKFS_CONTAINER_OF_H
#define LOCKFS_CONTAINER_OF_H

#include <stddef.h>

#define container_of(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))

#endif
