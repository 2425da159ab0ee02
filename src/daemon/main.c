/* SPDX-License-Identifier: MIT */
/* lockfs daemon: parse options, build the lock table, mount, serve.
 *
 * usage: lockfs [-f] [-d] [-o opt,...] [SOURCE] MOUNTPOINT   (see --help)
 *
 * serve() takes the daemon's resources one step at a time, in the order
 * below, and gives them back in the reverse order through one label each:
 * mount point path, store, lock table, status budget, flock registry,
 * libfuse arguments, session, signal handlers, mount, notifier thread,
 * reaper thread, etcd watch, loop configuration. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "backend.h"
#include "clock.h"
#include "fs.h"
#include "globs.h"
#include "locktable.h"
#include "log.h"
#include "mountpoint.h"
#include "options.h"
#include "reaper.h"
#include "store.h"
#include "store_local.h"

_Static_assert(LOCKFS_DEFAULT_MAX_NAMES == LT_MAX_NAMES_DEFAULT, "one default for max_names");

/* Everything the daemon holds while it serves. */
struct daemon {
        const struct lockfs_options *o;
        char *mnt;                     /* the canonical mount point */
        struct store *store;
        struct locktable *table;
        struct globs *raw;             /* -o raw=: names read back as content */
        struct globs *dirlocks;        /* -o dirlocks=: directories that are locks */
        struct lockfs_ctx ctx;         /* what the FUSE handlers reach */
        struct fuse_args args;
        struct fuse_session *se;
        struct notifier *notifier;
        struct reaper *reaper;
        struct backend_watch watch;    /* cluster mode only */
        struct fuse_loop_config *loop;
};

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

/* d->mnt: the canonical path of the mount point the options name, which
 * must be a directory (or hold a mount). 0 or -errno, logged. */
static int resolve_mountpoint(struct daemon *d) {
        int r = mountpoint_canonical(d->o->mountpoint, &d->mnt);
        if (r == 0)
                r = mountpoint_check(d->mnt);
        if (r < 0)
                log_msg(LOG_ERR, "cannot use mount point %s: %s", d->o->mountpoint, strerror(-r));
        return r;
}

/* d->table: a lock table over d->store with the options' limits. */
static int create_table(struct daemon *d) {
        const struct lockfs_options *o = d->o;
        int r = globs_parse(o->raw, &d->raw);
        if (r < 0) {
                log_msg(LOG_ERR, "cannot use raw=%s: %s", o->raw, strerror(-r));
                return r;
        }
        r = globs_parse(o->dirlocks, &d->dirlocks);
        if (r < 0) {
                log_msg(LOG_ERR, "cannot use dirlocks=%s: %s", o->dirlocks, strerror(-r));
                globs_free(d->raw);
                d->raw = NULL;
                return r;
        }
        const struct locktable_config cfg = {
                .default_ttl_s = o->ttl_s,
                .holder_ttl_s = o->holder_ttl_s,
                .max_locks = o->max_locks,
                .max_content = o->max_content,
                .max_depth = o->max_depth,
                .max_locks_per_uid = o->max_locks_per_uid,
                .max_names = o->max_names,
                .max_content_per_uid = o->max_content_per_uid,
                .user_break = o->user_break,
                .shared = o->backend_etcd,
                .raw = d->raw,
                .dirlocks = d->dirlocks,
        };
        r = locktable_new(&cfg, d->store, &d->table);
        if (r < 0) {
                log_msg(LOG_ERR, "cannot set up the lock table: %s", strerror(-r));
                globs_free(d->raw);
                d->raw = NULL;
                globs_free(d->dirlocks);
                d->dirlocks = NULL;
        }
        d->ctx.table = d->table;
        return r;
}

/* Restore what the store recorded; log what came back. */
static int restore_table(struct daemon *d) {
        struct locktable_restored rs;
        int64_t start_ms = clock_mono_ms();
        int r = locktable_restore(d->table, &rs);
        int64_t took_ms = clock_mono_ms() - start_ms;
        if (r < 0) {
                log_msg(LOG_ERR, "cannot restore the lock table: %s", strerror(-r));
                return r;
        }
        if (rs.restored || rs.holder_gone || rs.expired || rs.failed)
                log_msg(LOG_NOTICE, "restored %zu locks in %.0f ms; dropped %zu (holder gone), "
                        "%zu (TTL ended), %zu (failed)", rs.restored, (double)took_ms,
                        rs.holder_gone, rs.expired, rs.failed);
        return 0;
}

/* d->ctx.budget: what open files may hold rendered. The largest status
 * one lock renders to: content and cmdline escaped (at most 6 bytes per
 * byte), path and fixed fields. */
static int create_budget(struct daemon *d) {
        const struct lockfs_options *o = d->o;
        d->ctx.budget = status_budget_new(o->status_mem_per_uid, o->status_mem_total,
                                          6 * (o->max_content + 2 * HOLDER_CMDLINE_MAX + 16384) +
                                                  16384);
        if (!d->ctx.budget) {
                log_msg(LOG_ERR, "cannot set up the status budget: out of memory");
                return -ENOMEM;
        }
        return 0;
}

/* The flock registry, granting through the table. */
static int init_flocks(struct daemon *d) {
        int r = fs_flock_init(&d->ctx);
        if (r < 0) {
                log_msg(LOG_ERR, "cannot set up flock: %s", strerror(-r));
                return r;
        }
        locktable_set_grant_fn(d->table, fs_flock_finish, &d->ctx);
        return 0;
}

/* d->args: arguments for libfuse, only what lockfs decides itself. On
 * failure, what was added is still to be freed. */
static int build_fuse_args(struct daemon *d) {
        char opts[256];
        snprintf(opts, sizeof(opts), "fsname=lockfs,subtype=lockfs,nosuid,nodev,noexec%s",
                 d->o->allow_other ? ",allow_other" : "");
        if (fuse_opt_add_arg(&d->args, "lockfs") < 0 || fuse_opt_add_arg(&d->args, "-o") < 0 ||
            fuse_opt_add_arg(&d->args, opts) < 0)
                return -ENOMEM;
        return 0;
}

/* d->se: the session over d->args and the handlers. 0 or -ENOMEM (libfuse
 * says why). */
static int create_session(struct daemon *d) {
        d->se = fuse_session_new(&d->args, &lockfs_ops, sizeof(lockfs_ops), &d->ctx);
        return d->se ? 0 : -ENOMEM;
}

/* Clear a dead mount on the mount point, keep the bare directory
 * unwritable, and mount there. 0 or -errno (-EIO: the mount failed),
 * logged. */
static int mount_session(struct daemon *d) {
        const char *mnt = d->mnt;
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
        if (fuse_session_mount(d->se, mnt) < 0) {
                log_msg(LOG_ERR, "cannot mount on %s", mnt);
                return -EIO;
        }
        return 0;
}

/* Fork (unless -f) before any thread starts; then record the pid a
 * successor checks (local state only). 0, or -1 when libfuse could not
 * (it says why). */
static int daemonize(struct daemon *d) {
        if (fuse_daemonize(d->o->foreground) < 0)
                return -1;
        if (!d->o->backend_etcd)
                store_local_record_owner(d->store);
        return 0;
}

/* The thread that tells the kernel about names the table removes itself. */
static int start_notifier(struct daemon *d) {
        int r = notifier_start(d->se, &d->notifier);
        if (r < 0) {
                log_msg(LOG_ERR, "cannot start threads: %s", strerror(-r));
                return r;
        }
        d->ctx.notifier = d->notifier;
        locktable_set_removed_fn(d->table, notifier_removed, d->notifier);
        return 0;
}

static int start_reaper(struct daemon *d) {
        int r = reaper_start(d->table, notifier_removed, d->notifier, &d->reaper);
        if (r < 0)
                log_msg(LOG_ERR, "cannot start threads: %s", strerror(-r));
        return r;
}

/* Cluster mode: feed the table from etcd. */
static void start_watch(struct daemon *d) {
        if (d->o->backend_etcd)
                backend_watch_start(&d->watch, d->store, d->table, notifier_removed, d->notifier);
}

static int create_loop_config(struct daemon *d) {
        d->loop = fuse_loop_cfg_create();
        if (!d->loop)
                return -ENOMEM;
        fuse_loop_cfg_set_clone_fd(d->loop, 0);
        fuse_loop_cfg_set_idle_threads(d->loop, 10);
        return 0;
}

/* Serve until SIGTERM, SIGINT or SIGHUP (the loop then returns the signal
 * number: a clean stop, exit status 0) or an error (1). */
static int run_loop(struct daemon *d) {
        const struct lockfs_options *o = d->o;
        log_msg(LOG_NOTICE,
                "serving %s (ttl %us, holder_ttl %us, max_locks %llu, max_content %zu, per uid: %llu nodes, "
                "%llu content bytes, status memory %zu; status memory in all %zu)", d->mnt,
                (unsigned)o->ttl_s, (unsigned)o->holder_ttl_s,
                (unsigned long long)o->max_locks, o->max_content,
                (unsigned long long)o->max_locks_per_uid,
                (unsigned long long)o->max_content_per_uid, status_budget_per_uid(d->ctx.budget),
                status_budget_total(d->ctx.budget));
        int ret = fuse_session_loop_mt(d->se, d->loop) < 0 ? 1 : 0;
        log_msg(LOG_NOTICE, "unmounting %s", d->mnt);
        return ret;
}

/* Set up, serve, tear down. Returns the exit status. */
static int serve(const struct lockfs_options *o) {
        struct daemon d = {
                .o = o,
                .ctx = { .files_mu = PTHREAD_MUTEX_INITIALIZER, .files = LIST_INIT(d.ctx.files) },
                .args = FUSE_ARGS_INIT(0, NULL),
        };
        int ret = 1;
        if (gethostname(d.ctx.host, sizeof(d.ctx.host) - 1) < 0)
                strcpy(d.ctx.host, "localhost");
        if (resolve_mountpoint(&d) < 0)
                goto out_mnt;
        if (backend_open(o, d.mnt, d.ctx.host, &d.store) < 0)
                goto out_mnt;
        if (create_table(&d) < 0)
                goto out_store;
        if (restore_table(&d) < 0 || create_budget(&d) < 0)
                goto out_table;
        if (init_flocks(&d) < 0)
                goto out_budget;
        if (build_fuse_args(&d) < 0 || create_session(&d) < 0)
                goto out_args;
        if (fuse_set_signal_handlers(d.se) < 0)
                goto out_session;
        if (mount_session(&d) < 0)
                goto out_signals;
        if (daemonize(&d) < 0 || start_notifier(&d) < 0)
                goto out_mount;
        if (start_reaper(&d) < 0)
                goto out_notifier;
        start_watch(&d);
        if (create_loop_config(&d) < 0)
                goto out_watch;
        ret = run_loop(&d);

        fuse_loop_cfg_destroy(d.loop);
out_watch:
        backend_watch_stop(&d.watch); /* no event into the table from here on */
        reaper_stop(d.reaper);
out_notifier:
        notifier_stop(d.notifier);
out_mount:
        fs_flock_abort(&d.ctx); /* parked flocks get EINTR while the session lives */
        fuse_session_unmount(d.se);
out_signals:
        fuse_remove_signal_handlers(d.se);
out_session:
        fuse_session_destroy(d.se);
        fs_files_free_all(&d.ctx);
out_args:
        fuse_opt_free_args(&d.args);
        fs_flock_fini(&d.ctx);
out_budget:
        status_budget_free(d.ctx.budget);
out_table:
        locktable_free(d.table);
        globs_free(d.raw);
        globs_free(d.dirlocks);
out_store:
        store_free(d.store);
out_mnt:
        free(d.mnt);
        return ret;
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
        return serve(&o);
}
