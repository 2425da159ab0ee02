/* SPDX-License-Identifier: MIT */
/* Restoring the lock table from a persistent store at start (SPEC R8.2):
 * a lock comes back only while its holder is the same live process (pid
 * and start time; the store already dropped locks of another boot) and its
 * TTL has not run out; detached locks come back until their TTL ends. A
 * shared lock's other holders come back while they live (SPEC R7.3, R8.2),
 * released by their death only (their descriptors died with the old
 * mount); when the recorded holder is gone, the oldest live one holds it.
 * Each dropped lock is logged. */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "lt_internal.h"
#include "status.h"

struct restore {
        struct locktable *t;
        struct locktable_restored *stats;
};

/* A directory from the store: made (with any missing parents, owned by
 * root until their own turn comes) or, when made earlier as a parent,
 * given its owner. */
static int restore_dir(void *arg, const char *path, uid_t uid, gid_t gid) {
        struct restore *rs = arg;
        struct locktable *t = rs->t;
        struct node *dir, *n;
        const char *name;
        int r = lt_dir_of(t, path, 0, 0, &dir, &name);
        if (r < 0)
                return r;
        n = lt_name_get(t, dir, name);
        if (!n && !(n = lt_dir_new(t, dir, name, uid, gid)))
                return -ENOMEM;
        if (n->kind != LT_DIR)
                return -ENOTDIR;
        n->uid = uid;
        n->gid = gid;
        lt_quota_charge(t, n); /* its creator's again (a parent made first was root's) */
        if (t->store->ops->put_dir)
                t->store->ops->put_dir(t->store, n->ino, dir->ino, n->name, uid, gid);
        return 0;
}

/* The record of process pid (started at start) for uid/gid if it is the
 * same live process, with a reference. */
static int restored_process(struct locktable *t, pid_t pid, uint64_t start, uid_t uid, gid_t gid,
                            struct holder **ret) {
        struct caller c = { .self = { .pid = pid, .start_time = start } };
        if (!lt_holder_find(t, &c.self)) {
                if (holder_identify_process(pid, &c) < 0 || c.self.start_time != start)
                        return -ESRCH;
        }
        c.uid = uid;
        c.gid = gid;
        /* restore runs before the mount serves: its /proc reads and pidfd
         * opens cannot hold up any request */
        struct lt_prep prep = { .pidfd = -1 };
        if (!lt_holder_find(t, &c.self))
                lt_prep_proc(&prep, &c.self);
        int r = lt_holder_ref(t, &c, &prep, ret);
        lt_prep_done(&prep);
        return r > 0 ? -ESRCH : r; /* prep is ready: no positive answer is due */
}

/* The first live sharer of v from i on, its record referenced in *ret:
 * its index, or v->n_sharers when none lives. */
static size_t live_sharer(struct locktable *t, const struct lock_view *v, size_t i,
                          struct holder **ret) {
        for (; i < v->n_sharers; i++) {
                const struct lock_party *s = &v->sharers[i];
                if (restored_process(t, s->pid, s->start_time, s->uid, s->gid, ret) == 0)
                        return i;
        }
        return v->n_sharers;
}

/* Give n the live sharers of v but the one at index skip (its holder now). */
static void restore_shares(struct locktable *t, struct node *n, const struct lock_view *v,
                           size_t skip) {
        struct holder *h;
        for (size_t i = live_sharer(t, v, 0, &h); i < v->n_sharers;
             i = live_sharer(t, v, i + 1, &h)) {
                const struct lock_party *s = &v->sharers[i];
                struct lt_lock_req rq = { .posix = s->how == LOCK_HOW_FCNTL, .shared = true,
                                          .kind = LT_HANDLE_READER };
                struct caller c = { .uid = s->uid, .gid = s->gid };
                if (i != skip && lt_share_add(t, n, &rq, &c, h) < 0)
                        log_msg(LOG_WARNING, "%s: sharer pid %d not restored", v->path,
                                (int)s->pid);
                lt_holder_unref(t, h); /* a share holds its own */
        }
        n->shared = n->n_shares > 0;
}

/* Give lock n the other name path (link(2)). */
static int restore_alias(struct locktable *t, struct node *n, const char *path) {
        struct node *dir;
        const char *name;
        int r = lt_dir_of(t, path, 0, 0, &dir, &name);
        if (r < 0)
                return r;
        if (lt_name_get(t, dir, name))
                return -EEXIST;
        return lt_alias_add(t, n, dir, name, NULL);
}

/* The TTL of lock v under this mount's options (SPEC R5.3), which may not
 * be those it was recorded under: its holder's own "ttl_s" when its
 * content has one, else the mount's choice for a detached lock or a live
 * holder's; and the deadline that TTL gives from its last renewal. Runs
 * before the mount serves, so its parse of the content under t->mu holds
 * up no request. */
struct restored_ttl {
        uint32_t ttl_s;
        int64_t deadline_mono_ms; /* 0: none */
};

static struct restored_ttl restore_ttl(const struct locktable *t, const struct lock_view *v) {
        struct content_claim cc = status_parse_claim(v->content, v->content_len);
        uint32_t ttl = cc.has_ttl ? cc.ttl_s : lt_ttl_default(t, v->detached);
        if (ttl == v->ttl_s)
                return (struct restored_ttl){ ttl, ttl ? v->deadline_mono_ms : 0 };
        if (!ttl)
                return (struct restored_ttl){ 0, 0 };
        int64_t since = clock_wall_ms() - v->renewed_at_ms; /* how long ago it was renewed */
        if (since < 0)
                since = 0;
        int64_t deadline = clock_mono_ms() - since + (int64_t)ttl * 1000;
        return (struct restored_ttl){ ttl, deadline > 0 ? deadline : 1 };
}

/* Whether lock v comes back: not when its TTL (tl) ran out meanwhile or
 * neither its holder nor a sharer is the same live process (each logged
 * and counted). 0 with the holder's record referenced in *ret_h (NULL:
 * detached) and in *ret_promoted the index of the sharer that holds it now
 * (SIZE_MAX: its holder), or 1. */
static int restore_check(struct restore *rs, const struct lock_view *v,
                         const struct restored_ttl *tl, struct holder **ret_h,
                         size_t *ret_promoted) {
        *ret_h = NULL;
        if (tl->ttl_s && tl->deadline_mono_ms <= clock_mono_ms()) {
                log_msg(LOG_NOTICE, "dropped %s (fence %" PRIu64 "): its TTL ran out meanwhile",
                        v->path, v->fence);
                rs->stats->expired++;
                return 1;
        }
        *ret_promoted = SIZE_MAX;
        if (v->detached ||
            restored_process(rs->t, v->pid, v->start_time, v->uid, v->gid, ret_h) == 0)
                return 0;
        *ret_promoted = live_sharer(rs->t, v, 0, ret_h);
        if (*ret_promoted < v->n_sharers) {
                log_msg(LOG_NOTICE, "%s (fence %" PRIu64 "): holder pid %d is gone, its sharer "
                        "pid %d holds it now", v->path, v->fence, (int)v->pid,
                        (int)v->sharers[*ret_promoted].pid);
                return 0;
        }
        log_msg(LOG_NOTICE, "dropped %s (fence %" PRIu64 "): holder pid %d is gone",
                v->path, v->fence, (int)v->pid);
        rs->stats->holder_gone++;
        return 1;
}

/* A new node for lock v at its path, not linked yet, with v's content
 * copied; in *ret_dir the directory it goes into. -EEXIST, -ENOTDIR,
 * -ENOMEM. */
static int restore_node(struct locktable *t, const struct lock_view *v, struct node **ret_dir,
                        struct node **ret) {
        const char *name;
        int r = lt_dir_of(t, v->path, 0, 0, ret_dir, &name);
        if (r < 0)
                return r;
        if (lt_name_get(t, *ret_dir, name))
                return -EEXIST;
        struct node *n = lt_node_new(t, LT_LOCK, name);
        if (!n)
                return -ENOMEM;
        if (v->content_len && !(n->content = malloc(v->content_len))) {
                lt_node_maybe_free(t, n);
                return -ENOMEM;
        }
        if (v->content_len)
                memcpy(n->content, v->content, v->content_len);
        n->content_len = n->content_cap = v->content_len;
        *ret = n;
        return 0;
}

static int restore_lock(void *arg, const struct lock_view *v) {
        struct restore *rs = arg;
        struct locktable *t = rs->t;
        struct holder *h;
        struct restored_ttl tl = restore_ttl(t, v);
        size_t promoted;
        if (restore_check(rs, v, &tl, &h, &promoted))
                return 0;
        struct node *dir, *n;
        int r = restore_node(t, v, &dir, &n);
        if (r < 0) {
                if (h)
                        lt_holder_unref(t, h);
                log_msg(LOG_ERR, "dropped %s (fence %" PRIu64 "): cannot restore it: %s",
                        v->path, v->fence, strerror(-r));
                rs->stats->failed++;
                return r;
        }
        lt_node_link(t, dir, n);
        lt_set_holder(t, n, h);
        lt_view_to_node(v, n);
        if (promoted != SIZE_MAX) { /* the sharer's now, as a promotion makes it */
                const struct lock_party *s = &v->sharers[promoted];
                n->uid = s->uid;
                n->gid = s->gid;
                n->how = s->how;
                n->content_len = 0;
        }
        restore_shares(t, n, v, promoted);
        n->ttl_s = tl.ttl_s;
        lt_lock_list_add(t, n);
        lt_quota_charge(t, n); /* restored over the cap if need be: never dropped for it */
        if (tl.ttl_s)
                lt_set_deadline(t, n, tl.deadline_mono_ms);
        for (size_t i = 0; i < v->n_aliases; i++)
                if (restore_alias(t, n, v->aliases[i].path) < 0)
                        log_msg(LOG_WARNING, "%s: second name %s not restored", v->path,
                                v->aliases[i].path);
        if (v->fence > rs->stats->max_fence)
                rs->stats->max_fence = v->fence;
        rs->stats->restored++;
        lt_op_update(t, n);
        return 0;
}

int locktable_restore(struct locktable *t, struct locktable_restored *ret) {
        *ret = (struct locktable_restored){ 0 };
        if (!t->store->ops->restore)
                return 0;
        struct restore rs = { t, ret };
        struct store_restore_cb cb = { restore_dir, restore_lock, &rs };
        pthread_mutex_lock(&t->mu);
        t->restoring = true; /* store calls at once: nothing is served yet */
        int r = t->store->ops->restore(t->store, &cb);
        t->restoring = false;
        lt_deliver(t);
        return r;
}
