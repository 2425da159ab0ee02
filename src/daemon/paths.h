/* SPDX-License-Identifier: MIT */
/* Paths local to the daemon: where the state of a mount lives when the
 * options do not say (state_dir=, fence_file=). */
#ifndef LOCKFS_PATHS_H
#define LOCKFS_PATHS_H

/* The journal of held locks: LOCKFS_STATE_ROOT/MOUNT-ID (mountpoint_id). */
#define LOCKFS_STATE_ROOT "/run/lockfs"
/* Fence reservations, on persistent disk: LOCKFS_FENCE_ROOT/MOUNT-ID.fence. */
#define LOCKFS_FENCE_ROOT "/var/lib/lockfs"

#endif
