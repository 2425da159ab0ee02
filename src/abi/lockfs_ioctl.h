/* SPDX-License-Identifier: MIT */
/* The ioctls a lockfs mount answers on an open lock file (any open, also
 * read-only). Public: lockctl uses it, and so may other tools. */
#ifndef LOCKFS_IOCTL_H
#define LOCKFS_IOCTL_H

#include <stdint.h>
#include <sys/ioctl.h>

/* Break (force-unlock) the lock, but only its acquisition fence: the
 * "fence" of the lock's status as read. Who may: as for unlink(2) of the
 * lock; root, or with -o user_break the lock's uid, break another
 * process's lock (logged as a force-unlock). Every name of the lock goes
 * (or its first flock waiter takes it). Errors: ESTALE when the lock is no
 * longer that acquisition (released or handed on since; nothing broken),
 * EPERM, EISDIR. A lockfs without it answers ENOTTY. */
struct lockfs_break_arg {
        uint64_t fence;
};
#define LOCKFS_IOC_BREAK _IOW('L', 1, struct lockfs_break_arg)

#endif
