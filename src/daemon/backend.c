/* SPDX-License-Identifier: MIT */
/* Opening the store -o backend= names, and cluster mode's watch feeding
 * the lock table (backend.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend.h"
#include "log.h"
#include "mountpoint.h"
#include "paths.h"
#include "store_local.h"
#if LOCKFS_HAVE_ETCD
#include "etcd_setup.h"
#include "store_etcd.h"
#endif

/* If the daemon pid that holds our state was killed but cannot finish
 * dying, abort its connection and await its end. Returns what
 * mountpoint_abort_dying does (1: it did). */
static int abort_dying_daemon(const char *mnt, pid_t pid) {
        int r = mountpoint_abort_dying(mnt, pid, 10000);
        if (r > 0)
                log_msg(LOG_NOTICE, "lockfs pid %d was killed but could not finish dying; "
                        "aborted its connection on %s", (int)pid, mnt);
        else if (r < 0)
                log_msg(LOG_ERR, "lockfs pid %d was killed but does not end: %s", (int)pid,
                        strerror(-r));
        return r;
}

/* Say why the local state at state_dir and fence_file cannot be opened. */
static void log_local_open_error(int r, const char *state_dir, const char *fence_file) {
        if (r == -EBUSY)
                log_msg(LOG_ERR, "state directory %s is in use by another lockfs", state_dir);
        else if (r == -EBADMSG)
                log_msg(LOG_ERR, "fence file %s is damaged; fences could go backwards, so lockfs "
                        "will not start. Remove it only if no holder relies on fences.",
                        fence_file);
        else if (r == -EUCLEAN)
                log_msg(LOG_ERR, "the journal in %s is damaged (see above); lockfs will not "
                        "start", state_dir);
        else
                log_msg(LOG_ERR, "cannot open the state in %s and %s: %s", state_dir,
                        fence_file, strerror(-r));
}

/* The local store at the state directory and fence file o names, or the
 * defaults for mount point mnt. */
static int open_local(const struct lockfs_options *o, const char *mnt, struct store **ret) {
        char *id = NULL, *dir = NULL, *fence = NULL;
        int r = mountpoint_id(mnt, &id);
        if (r == 0 && (asprintf(&dir, "%s/%s", LOCKFS_STATE_ROOT, id) < 0 ||
                       asprintf(&fence, "%s/%s.fence", LOCKFS_FENCE_ROOT, id) < 0))
                r = -ENOMEM;
        const char *state_dir = o->state_dir[0] ? o->state_dir : dir;
        const char *fence_file = o->fence_file[0] ? o->fence_file : fence;
        if (r == 0)
                r = store_local_open(state_dir, fence_file, ret);
        if (r == -EBUSY && abort_dying_daemon(mnt, store_local_owner(state_dir)) > 0)
                r = store_local_open(state_dir, fence_file, ret);
        if (r < 0)
                log_local_open_error(r, state_dir, fence_file);
        free(id);
        free(dir);
        free(fence);
        return r;
}

int backend_open(const struct lockfs_options *o, const char *mnt, const char *host,
                 struct store **ret) {
        if (!o->backend_etcd)
                return open_local(o, mnt, ret);
#if LOCKFS_HAVE_ETCD
        return etcd_setup_open(o, host, ret);
#else
        (void)host; /* options_parse refuses backend=etcd in such a build */
        return -EOPNOTSUPP;
#endif
}

#if LOCKFS_HAVE_ETCD
/* The watch's events, each handed to the table with w's removal hook. */
static void watch_put(void *arg, const struct lock_view *v) {
        struct backend_watch *w = arg;
        locktable_remote_put(w->table, v, w->removed, w->removed_ctx);
}

static void watch_del(void *arg, const char *path, uint64_t rev) {
        struct backend_watch *w = arg;
        locktable_remote_delete(w->table, path, rev, w->removed, w->removed_ctx);
}

static bool watch_holds(void *arg, const char *path, uint64_t fence) {
        struct backend_watch *w = arg;
        return locktable_holds(w->table, path, fence);
}

static void watch_sync_begin(void *arg) {
        struct backend_watch *w = arg;
        locktable_remote_sync_begin(w->table);
}

static void watch_sync_end(void *arg, uint64_t rev, bool (*listed)(void *lctx, const char *path),
                           void *lctx) {
        struct backend_watch *w = arg;
        locktable_remote_sync_end(w->table, rev, listed, lctx, w->removed, w->removed_ctx);
}

static void watch_lost(void *arg) {
        struct backend_watch *w = arg;
        size_t n = locktable_mark_lost(w->table);
        if (n)
                log_msg(LOG_WARNING, "%zu held locks are lost: their status says so, and other "
                        "hosts may take their names", n);
}

void backend_watch_start(struct backend_watch *w, struct store *s, struct locktable *t,
                         lt_removed_fn removed, void *removed_ctx) {
        *w = (struct backend_watch){
                .store = s, .table = t, .removed = removed, .removed_ctx = removed_ctx,
        };
        const struct store_etcd_events ev = {
                .put = watch_put, .del = watch_del, .holds = watch_holds,
                .sync_begin = watch_sync_begin, .sync_end = watch_sync_end,
                .lost = watch_lost, .ctx = w,
        };
        int r = store_etcd_start(s, &ev, 3000);
        if (r == -ETIMEDOUT)
                log_msg(LOG_WARNING, "etcd does not answer yet: serving; creates fail with EIO "
                        "until it does");
        else if (r < 0)
                log_msg(LOG_ERR, "cannot start watching etcd: %s", strerror(-r));
}

void backend_watch_stop(struct backend_watch *w) {
        if (w->store)
                store_etcd_stop(w->store);
        w->store = NULL;
}
#else
void backend_watch_start(struct backend_watch *w, struct store *s, struct locktable *t,
                         lt_removed_fn removed, void *removed_ctx) {
        (void)s; /* never called: options_parse refuses backend=etcd in such a build */
        (void)t;
        (void)removed;
        (void)removed_ctx;
        *w = (struct backend_watch){ 0 };
}

void backend_watch_stop(struct backend_watch *w) {
        (void)w;
}
#endif
