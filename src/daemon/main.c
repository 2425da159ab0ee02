/* SPDX-License-Identifier: MIT */
/* lockfs daemon: parse options, build the lock table, mount, serve.
 *
 * usage: lockfs [-f] [-d] [-o opt,...] [SOURCE] MOUNTPOINT   (see --help) */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "fs.h"
#include "locktable.h"
#include "log.h"
#include "mountpoint.h"
#include "options.h"
#include "reaper.h"
#include "store.h"
#include "store_local.h"
#if LOCKFS_HAVE_ETCD
#include "etcd_setup.h"
#include "store_etcd.h"
#endif

_Static_assert(LOCKFS_DEFAULT_MAX_NAMES == LT_MAX_NAMES_DEFAULT, "one default for max_names");

/* Arguments for libfuse: only what lockfs decides itself. */
static int fuse_args_build(const struct lockfs_options *o, struct fuse_args *args) {
        char opts[256];
        snprintf(opts, sizeof(opts), "fsname=lockfs,subtype=lockfs,nosuid,nodev,noexec%s",
                 o->allow_other ? ",allow_other" : "");
        if (fuse_opt_add_arg(args, "lockfs") < 0 || fuse_opt_add_arg(args, "-o") < 0 ||
            fuse_opt_add_arg(args, opts) < 0)
                return -ENOMEM;
        return 0;
}

/* libfuse's messages go where ours go (its levels are syslog's). */
static void fuse_log_to_ours(enum fuse_log_level level, const char *fmt, va_list ap) {
        log_vmsg((int)level, fmt, ap);
}

/* One pidfd per holder process: allow as many descriptors as we may. */
static void raise_fd_limit(void) {
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                        log_msg(LOG_WARNING, "cannot raise the descriptor limit: %s", strerror(errno));
        }
}

/* If the daemon pid that holds our state was killed but cannot finish
 * dying, abort its connection and await its end. */
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

#if LOCKFS_HAVE_ETCD
/* Cluster mode: what etcd's watch reports goes into the table, and names
 * that vanish are told to the kernel. */
struct cluster {
        struct locktable *table;
        struct notifier *notifier;
};

static void cluster_put(void *arg, const struct lock_view *v) {
        struct cluster *c = arg;
        locktable_remote_put(c->table, v, notifier_removed, c->notifier);
}

static void cluster_del(void *arg, const char *path, uint64_t rev) {
        struct cluster *c = arg;
        locktable_remote_delete(c->table, path, rev, notifier_removed, c->notifier);
}

static bool cluster_holds(void *arg, const char *path, uint64_t fence) {
        struct cluster *c = arg;
        return locktable_holds(c->table, path, fence);
}

static void cluster_sync_begin(void *arg) {
        struct cluster *c = arg;
        locktable_remote_sync_begin(c->table);
}

static void cluster_sync_end(void *arg, uint64_t rev,
                             bool (*listed)(void *lctx, const char *path), void *lctx) {
        struct cluster *c = arg;
        locktable_remote_sync_end(c->table, rev, listed, lctx, notifier_removed, c->notifier);
}

static void cluster_lost(void *arg) {
        struct cluster *c = arg;
        size_t n = locktable_mark_lost(c->table);
        if (n)
                log_msg(LOG_WARNING, "%zu held locks are lost: their status says so, and other "
                        "hosts may take their names", n);
}

/* Feed the table from etcd; wait a little for the first listing. */
static void cluster_start(struct store *store, struct cluster *c) {
        const struct store_etcd_events ev = {
                .put = cluster_put, .del = cluster_del, .holds = cluster_holds,
                .sync_begin = cluster_sync_begin,
                .sync_end = cluster_sync_end, .lost = cluster_lost, .ctx = c,
        };
        int r = store_etcd_start(store, &ev, 3000);
        if (r == -ETIMEDOUT)
                log_msg(LOG_WARNING, "etcd does not answer yet: serving; creates fail with EIO "
                        "until it does");
        else if (r < 0)
                log_msg(LOG_ERR, "cannot start watching etcd: %s", strerror(-r));
}
#endif

/* The cluster store (backend=etcd) the options describe, checked. */
static int store_open_etcd(const struct lockfs_options *o, const char *host,
                           struct store **ret) {
#if LOCKFS_HAVE_ETCD
        return etcd_setup_open(o, host, ret);
#else
        (void)o;
        (void)host;
        (void)ret;
        return -EOPNOTSUPP;
#endif
}

/* The store at the state directory and fence file options name, or the
 * defaults for mount point mnt. */
static int store_open(const struct lockfs_options *o, const char *mnt, struct store **ret) {
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
        if (r == -EBUSY)
                log_msg(LOG_ERR, "state directory %s is in use by another lockfs", state_dir);
        else if (r == -EBADMSG)
                log_msg(LOG_ERR, "fence file %s is damaged; fences could go backwards, so lockfs "
                        "will not start. Remove it only if no holder relies on fences.",
                        fence_file);
        else if (r == -EUCLEAN)
                log_msg(LOG_ERR, "the journal in %s is damaged (see above); lockfs will not "
                        "start", state_dir);
        else if (r < 0)
                log_msg(LOG_ERR, "cannot open the state in %s and %s: %s", state_dir,
                        fence_file, strerror(-r));
        free(id);
        free(dir);
        free(fence);
        return r;
}

/* Restore what the store recorded; log what came back. */
static int table_restore(struct locktable *t) {
        struct timespec a, b;
        struct locktable_restored rs;
        clock_gettime(CLOCK_MONOTONIC, &a);
        int r = locktable_restore(t, &rs);
        clock_gettime(CLOCK_MONOTONIC, &b);
        if (r < 0) {
                log_msg(LOG_ERR, "cannot restore the lock table: %s", strerror(-r));
                return r;
        }
        if (rs.restored || rs.holder_gone || rs.expired || rs.failed)
                log_msg(LOG_NOTICE, "restored %zu locks in %.0f ms; dropped %zu (holder gone), "
                        "%zu (TTL ended), %zu (failed)", rs.restored,
                        (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6,
                        rs.holder_gone, rs.expired, rs.failed);
        return 0;
}

/* Clear a dead mount on mnt and keep the bare directory unwritable. */
static int mountpoint_prepare(const char *mnt) {
        int r = mountpoint_clear_dead(mnt);
        if (r == 1)
                log_msg(LOG_NOTICE, "cleared the dead mount of a stopped lockfs on %s", mnt);
        else if (r == -EBUSY)
                log_msg(LOG_ERR, "%s is already a mounted FUSE file system", mnt);
        else if (r < 0)
                log_msg(LOG_ERR, "cannot use mount point %s: %s", mnt, strerror(-r));
        if (r < 0)
                return r;
        if ((r = mountpoint_make_immutable(mnt)) < 0)
                log_msg(LOG_WARNING, "cannot make %s immutable (%s): while no lockfs serves it, "
                        "tools could create plain files there", mnt, strerror(-r));
        return 0;
}

int main(int argc, char **argv) {
        struct lockfs_options o;
        char err[256];
        if (options_parse(argc, argv, &o, err, sizeof(err)) < 0) {
                fprintf(stderr, "lockfs: %s\n", err);
                options_usage(stderr, "lockfs");
                return 2;
        }
        if (o.show_help) {
                options_usage(stdout, "lockfs");
                return 0;
        }
        if (o.show_version) {
                printf("lockfs %s\n", LOCKFS_VERSION);
                return 0;
        }
        log_setup(!o.foreground, o.debug);
        fuse_set_log_func(fuse_log_to_ours);
        raise_fd_limit();

        int ret = 1, r;
        char *mnt = NULL;
        struct store *store = NULL;
        struct locktable *table = NULL;
        struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
        struct fuse_session *se = NULL;
        struct fuse_loop_config *loop = NULL;
        struct notifier *notifier = NULL;
        struct reaper *reaper = NULL;
        bool mounted = false, signals = false, flocks = false, feeding = false;
        (void)feeding; /* used in cluster mode only */
        struct lockfs_ctx ctx = { .files_mu = PTHREAD_MUTEX_INITIALIZER, .files = LIST_INIT(ctx.files) };
        struct locktable_config cfg = {
                .default_ttl_s = o.ttl_s,
                .max_locks = o.max_locks,
                .max_content = o.max_content,
                .max_depth = o.max_depth,
                .max_locks_per_uid = o.max_locks_per_uid,
                .max_names = o.max_names,
                .max_content_per_uid = o.max_content_per_uid,
                .user_break = o.user_break,
                .shared = o.backend_etcd,
        };

        if (gethostname(ctx.host, sizeof(ctx.host) - 1) < 0)
                strcpy(ctx.host, "localhost");
        if ((r = mountpoint_canonical(o.mountpoint, &mnt)) < 0 || (r = mountpoint_check(mnt)) < 0) {
                log_msg(LOG_ERR, "cannot use mount point %s: %s", o.mountpoint, strerror(-r));
                goto out;
        }
        if ((o.backend_etcd ? store_open_etcd(&o, ctx.host, &store)
                            : store_open(&o, mnt, &store)) < 0)
                goto out;
        if ((r = locktable_new(&cfg, store, &table)) < 0) {
                log_msg(LOG_ERR, "cannot set up the lock table: %s", strerror(-r));
                goto out;
        }
        if (table_restore(table) < 0)
                goto out;
        ctx.table = table;
        ctx.max_locks = o.max_locks;
        /* The largest status one lock renders to: content and cmdline
         * escaped (at most 6 bytes per byte), path and fixed fields. */
        ctx.budget = status_budget_new(o.status_mem_per_uid, o.status_mem_total,
                                       6 * (o.max_content + 2 * HOLDER_CMDLINE_MAX + 16384) +
                                       16384);
        if (!ctx.budget) {
                log_msg(LOG_ERR, "cannot set up the status budget: out of memory");
                goto out;
        }
        if ((r = fs_flock_init(&ctx)) < 0) {
                log_msg(LOG_ERR, "cannot set up flock: %s", strerror(-r));
                goto out;
        }
        flocks = true;
        locktable_set_grant_fn(table, fs_flock_finish, &ctx);
        if (fuse_args_build(&o, &args) < 0)
                goto out;
        se = fuse_session_new(&args, &lockfs_ops, sizeof(lockfs_ops), &ctx);
        if (!se)
                goto out;
        if (fuse_set_signal_handlers(se) < 0)
                goto out;
        signals = true;
        if (mountpoint_prepare(mnt) < 0)
                goto out;
        if (fuse_session_mount(se, mnt) < 0) {
                log_msg(LOG_ERR, "cannot mount on %s", mnt);
                goto out;
        }
        mounted = true;
        /* Fork (unless -f) before any thread starts. */
        if (fuse_daemonize(o.foreground) < 0)
                goto out;
        if (!o.backend_etcd)
                store_local_record_owner(store); /* the pid a successor checks */
        if ((r = notifier_start(se, &notifier)) == 0) {
                ctx.notifier = notifier;
                locktable_set_removed_fn(table, notifier_removed, notifier);
        }
        if (r < 0 ||
            (r = reaper_start(table, notifier_removed, notifier, &reaper)) < 0) {
                log_msg(LOG_ERR, "cannot start threads: %s", strerror(-r));
                goto out;
        }
#if LOCKFS_HAVE_ETCD
        struct cluster cluster = { .table = table, .notifier = notifier };
        if (o.backend_etcd) {
                cluster_start(store, &cluster);
                feeding = true;
        }
#endif
        loop = fuse_loop_cfg_create();
        if (!loop)
                goto out;
        fuse_loop_cfg_set_clone_fd(loop, 0);
        fuse_loop_cfg_set_idle_threads(loop, 10);
        log_msg(LOG_NOTICE,
                "serving %s (ttl %us, max_locks %llu, max_content %zu, per uid: %llu nodes, "
                "%llu content bytes, status memory %zu; status memory in all %zu)", mnt,
                (unsigned)o.ttl_s, (unsigned long long)o.max_locks, o.max_content,
                (unsigned long long)o.max_locks_per_uid,
                (unsigned long long)o.max_content_per_uid, status_budget_per_uid(ctx.budget),
                status_budget_total(ctx.budget));
        /* The loop returns the signal number after SIGTERM/SIGINT/SIGHUP: a
         * clean stop. Negative values are errors. */
        ret = fuse_session_loop_mt(se, loop) < 0 ? 1 : 0;
        log_msg(LOG_NOTICE, "unmounting %s", mnt);

out:
#if LOCKFS_HAVE_ETCD
        if (feeding)
                store_etcd_stop(store); /* no event into the table from here on */
#endif
        reaper_stop(reaper);
        notifier_stop(notifier);
        if (flocks)
                fs_flock_abort(&ctx);
        if (loop)
                fuse_loop_cfg_destroy(loop);
        if (mounted)
                fuse_session_unmount(se);
        if (signals)
                fuse_remove_signal_handlers(se);
        if (se)
                fuse_session_destroy(se);
        fs_files_free_all(&ctx);
        if (flocks)
                fs_flock_fini(&ctx);
        fuse_opt_free_args(&args);
        locktable_free(table);
        status_budget_free(ctx.budget);
        store_free(store);
        free(mnt);
        return ret;
}
