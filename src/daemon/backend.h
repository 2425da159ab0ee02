/* SPDX-License-Identifier: MIT */
/* The store behind the lock table, as -o backend= chooses it: opening it
 * (the local journal and fence file, or etcd), and in cluster mode the
 * watch that feeds what other hosts do into the table. */
#ifndef LOCKFS_BACKEND_H
#define LOCKFS_BACKEND_H

#include "locktable.h"
#include "options.h"
#include "store.h"

/* Open the store o names for mount point mnt (canonical): etcd with
 * backend=etcd (host: published as the holders'), else the local state at
 * state_dir and fence_file, or by default under LOCKFS_STATE_ROOT and
 * LOCKFS_FENCE_ROOT by mount id. When a killed daemon that cannot finish
 * dying still holds the local state, its connection on mnt is aborted and
 * the open tried again. Logs why it fails. Returns 0 or -errno (-EBUSY:
 * another lockfs serves that state; -EBADMSG: damaged fence file;
 * -EUCLEAN: damaged journal; -EOPNOTSUPP: backend=etcd in a build
 * without it). */
int backend_open(const struct lockfs_options *o, const char *mnt, const char *host,
                 struct store **ret);

/* Cluster mode's feed: etcd's watch into the table, names that vanish
 * told to removed(removed_ctx). Lives in the caller's memory while it
 * runs; { 0 } is a feed that was never started. */
struct backend_watch {
        struct store *store; /* non-NULL while the watch runs */
        struct locktable *table;
        lt_removed_fn removed;
        void *removed_ctx;
};

/* Start feeding table t from the etcd store s and wait up to 3 s for the
 * first listing; a store that does not answer by then is only warned
 * about (creates fail with EIO until it does). w must stay put until
 * backend_watch_stop(). */
void backend_watch_start(struct backend_watch *w, struct store *s, struct locktable *t,
                         lt_removed_fn removed, void *removed_ctx);

/* Stop the watch: no event reaches the table after it returns. A no-op on
 * a watch that was never started. */
void backend_watch_stop(struct backend_watch *w);

#endif
