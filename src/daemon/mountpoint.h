/* SPDX-License-Identifier: MIT */
/* The mount point between daemons: its canonical path and the name of its
 * state (mount id), clearing the dead mount a killed daemon left, and
 * keeping the bare directory unwritable so that no tool can create a
 * "lock" there that protects nothing while no daemon serves it. */
#ifndef LOCKFS_MOUNTPOINT_H
#define LOCKFS_MOUNTPOINT_H

#include <stddef.h>

/* The absolute path of mountpoint with symbolic links resolved, also when
 * a dead mount sits on it (only its parent must resolve). Malloc'd into
 * *ret. 0 or -errno. */
int mountpoint_canonical(const char *mountpoint, char **ret);

/* 0 when path is a directory or has something mounted on it (perhaps a
 * dead lockfs: not touched here); else -errno (-ENOENT, -ENOTDIR). Checked
 * before any state is created for it. */
int mountpoint_check(const char *path);

/* The mount id of canonical path: the path without its leading slash,
 * '/' turned into '-', and bytes other than [A-Za-z0-9_.:] (and a leading
 * '.') as \xNN, as systemd-escape --path does ("/run/locks" ->
 * "run-locks", "/" -> "-"). Malloc'd into *ret. 0 or -ENOMEM. */
int mountpoint_id(const char *canonical, char **ret);

/* If a dead FUSE mount (ENOTCONN, a killed lockfs) sits on path, detach
 * it. Returns 1 when one was cleared, 0 when there was none, -EBUSY when a
 * live file system is mounted there, or another -errno. */
int mountpoint_clear_dead(const char *path);

/* A lockfs killed with SIGKILL can fail to die: a thread of it waits in
 * the kernel (a delete notification needs a directory lock that a caller
 * holds while it waits for the dead daemon's answer), so the connection
 * stays open and callers hang instead of getting ENOTCONN. If process pid
 * is such a dying daemon (its main thread is a zombie), abort the FUSE
 * connection on path (umount -f) and wait up to timeout_ms for pid to
 * end. Returns 1 when it did, 0 when pid is not dying, -ETIMEDOUT, or
 * another -errno. */
int mountpoint_abort_dying(const char *path, pid_t pid, int timeout_ms);

/* Set the immutable attribute on the directory path (nobody, root
 * included, can create anything in it). 0, or -errno (-ENOTTY or
 * -EOPNOTSUPP where the file system has no such attribute). */
int mountpoint_make_immutable(const char *path);

#endif
