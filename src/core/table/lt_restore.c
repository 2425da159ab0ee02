/* SPDX-License-Identifier: MIT */
/* Restoring the lock table from a persistent store at start (SPEC R8.2):
 * a lock comes back only while its holder is the same live process (pid
 * and start time; the store already dropped locks of another boot) and its
 * TTL has not run out; detached locks come back until their TTL ends.
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

/* The holder of v if it is the same live process, with a reference. */
static int restored_holder(struct locktable *t, const struct lock_view *v, struct holder **ret) {
        struct caller c = { .self = { .pid = v->pid, .start_time = v->start_time } };
        if (!lt_holder_find(t, &c.self)) {
                if (holder_identify_process(v->pid, &c) < 0 ||
                    c.self.start_time != v->start_time)
                        return -ESRCH;
        }
        c.uid = v->uid;
        c.gid = v->gid;
        /* restore runs before the mount serves: its /proc reads and pidfd
         * opens cannot hold up any request */
        struct lt_prep prep = { .pidfd = -1 };
        if (!lt_holder_find(t, &c.self))
                lt_prep_proc(&prep, &c.self);
        int r = lt_holder_ref(t, &c, &prep, ret);
        lt_prep_done(&prep);
        return r > 0 ? -ESRCH : r; /* prep is ready: no positive answer is due */
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
 * its holder is not the same live process (each logged and counted). 0
 * with the holder's record referenced in *ret_h (NULL: detached), or 1. */
static int restore_check(struct restore *rs, const struct lock_view *v,
                         const struct restored_ttl *tl, struct holder **ret_h) {
        *ret_h = NULL;
        if (tl->ttl_s && tl->deadline_mono_ms <= clock_mono_ms()) {
                log_msg(LOG_NOTICE, "dropped %s (fence %" PRIu64 "): its TTL ran out meanwhile",
                        v->path, v->fence);
                rs->stats->expired++;
                return 1;
        }
        if (!v->detached && restored_holder(rs->t, v, ret_h) < 0) {
                log_msg(LOG_NOTICE, "dropped %s (fence %" PRIu64 "): holder pid %d is gone",
                        v->path, v->fence, (int)v->pid);
                rs->stats->holder_gone++;
                return 1;
        }
        return 0;
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
        if (restore_check(rs, v, &tl, &h))
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
