/* SPDX-License-Identifier: MIT */
/* lockfs daemon: parse options, build the lock table, mount, serve.
 *
 * usage: lockfs [-f] [-d] [-o opt,...] [SOURCE] MOUNTPOINT   (see --help) */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "fs.h"
#include "locktable.h"
#include "log.h"
#include "options.h"
#include "reaper.h"
#include "store.h"

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

/* One pidfd per holder process: allow as many descriptors as we may. */
static void raise_fd_limit(void) {
        struct rlimit rl;
        if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
                rl.rlim_cur = rl.rlim_max;
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                        log_msg(LOG_WARNING, "cannot raise the descriptor limit: %s", strerror(errno));
        }
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
        raise_fd_limit();

        int ret = 1, r;
        struct store *store = NULL;
        struct locktable *table = NULL;
        struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
        struct fuse_session *se = NULL;
        struct fuse_loop_config *loop = NULL;
        struct notifier *notifier = NULL;
        struct reaper *reaper = NULL;
        bool mounted = false, signals = false, flocks = false;
        struct lockfs_ctx ctx = { .files_mu = PTHREAD_MUTEX_INITIALIZER };
        struct locktable_config cfg = {
                .default_ttl_s = o.ttl_s,
                .max_locks = o.max_locks,
                .max_content = o.max_content,
                .max_depth = o.max_depth,
        };

        if (gethostname(ctx.host, sizeof(ctx.host) - 1) < 0)
                strcpy(ctx.host, "localhost");
        if ((r = store_mem_new(&store)) < 0 || (r = locktable_new(&cfg, store, &table)) < 0) {
                log_msg(LOG_ERR, "cannot set up the lock table: %s", strerror(-r));
                goto out;
        }
        ctx.table = table;
        ctx.max_locks = o.max_locks;
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
        if (fuse_session_mount(se, o.mountpoint) < 0) {
                log_msg(LOG_ERR, "cannot mount on %s", o.mountpoint);
                goto out;
        }
        mounted = true;
        /* Fork (unless -f) before any thread starts. */
        if (fuse_daemonize(o.foreground) < 0)
                goto out;
        if ((r = notifier_start(se, &notifier)) == 0)
                ctx.notifier = notifier;
        if (r < 0 ||
            (r = reaper_start(table, notifier_removed, notifier, &reaper)) < 0) {
                log_msg(LOG_ERR, "cannot start threads: %s", strerror(-r));
                goto out;
        }
        loop = fuse_loop_cfg_create();
        if (!loop)
                goto out;
        fuse_loop_cfg_set_clone_fd(loop, 0);
        fuse_loop_cfg_set_idle_threads(loop, 10);
        log_msg(LOG_NOTICE, "serving %s (ttl %us, max_locks %llu, max_content %zu)", o.mountpoint,
                (unsigned)o.ttl_s, (unsigned long long)o.max_locks, o.max_content);
        /* The loop returns the signal number after SIGTERM/SIGINT/SIGHUP: a
         * clean stop. Negative values are errors. */
        ret = fuse_session_loop_mt(se, loop) < 0 ? 1 : 0;
        log_msg(LOG_NOTICE, "unmounting %s", o.mountpoint);

out:
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
        store_free(store);
        return ret;
}
