/* SPDX-License-Identifier: MIT */
/* The local store: a journal plus a fence file on this host. */
#ifndef LOCKFS_STORE_LOCAL_H
#define LOCKFS_STORE_LOCAL_H

#include <sys/types.h>

#include "store.h"

/* The local journal (store_local.c): the lock table journaled under
 * state_dir (created 0700 if missing; one daemon per directory, else
 * -EBUSY), fences reserved in blocks in fence_file. What the journal held
 * is handed out by restore(). -EBADMSG when the fence file is damaged,
 * -EUCLEAN when a journal of this boot is damaged other than by a torn
 * tail (logged with the byte offset; restore() also fails with -EUCLEAN
 * for a lock record it cannot place): its locks might be held, so the
 * daemon must not start without them. Else -errno; a journal that is
 * missing, foreign, of an unknown version or of another boot is logged
 * and restores nothing (or its directories only), never fatal.
 *
 * Its operations: acquire gives -EIO when no fence can be issued (the
 * fence file's error is logged) or its record cannot be appended, and the
 * journal encoder's -EINVAL, -EMSGSIZE or -ENOMEM for a lock the format
 * cannot hold (journal.h); update, release, put_dir and remove_dir give
 * the -errno of what failed. A failed append is logged and the journal is
 * rewritten whole at the next change. */
int store_local_open(const char *state_dir, const char *fence_file, struct store **ret);
/* Record the calling process as the one using the local store s (again
 * after a fork: fuse_daemonize). */
void store_local_record_owner(struct store *s);
/* The pid of the daemon that uses state_dir (or last used it), 0 when
 * unknown. */
pid_t store_local_owner(const char *state_dir);

#endif
