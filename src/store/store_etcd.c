/* SPDX-License-Identifier: MIT */
/* The cluster store (SPEC R8.4): every lock is a key PREFIX + its path in
 * etcd, attached to this daemon's lease, created in one transaction that
 * fails when the key exists (the fence is its create revision), deleted
 * only while it is still ours. A keep-alive thread renews the lease; a
 * prefix watch reports other hosts' locks to the table (events). The
 * value of a key is etcd_value.c's; the key sets are etcd_keys.c's.
 *
 * The store operations (es_*) log what failed themselves, at most once a
 * second, and give the table -EIO for anything etcd did not do (see
 * store_etcd.h). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "container_of.h"
#include "etcd_value.h"
#include "log.h"
#include "store_etcd_internal.h"

static struct store_etcd *of(struct store *s) {
        return container_of(s, struct store_etcd, base);
}

/* CLOCK_MONOTONIC time ms from now, for pthread_cond_timedwait. */
static struct timespec deadline_after(int64_t ms) {
        int64_t at = clock_mono_ms() + ms;
        return (struct timespec){ .tv_sec = at / 1000, .tv_nsec = (at % 1000) * 1000000 };
}

/* The key of path "/a/b": PREFIX "a/b". */
/* ---- store operations (called under the table's store mutex) ---- */

/* Create key for acquisition value: 0 and the revision, -EEXIST, or
 * -errno. Any create whose answer is not definite stays "uncertain" (see
 * on_put). A key of our own lease that nothing here holds is an orphan
 * (a create answered too late): deleted, and the create tried once more. */
static int create_key(struct store_etcd *s, const char *key, const char *value, size_t len,
                      int64_t lease, int64_t *ret_rev) {
        for (int attempt = 0;; attempt++) {
                struct etcd_kv holder = { 0 };
                es_uncertain_add(s, key);
                int r = etcd_create(s->etcd, key, value, len, lease, ret_rev, &holder);
                if (r != -ENOTCONN)
                        es_uncertain_take(s, key);
                bool orphan = r == -EEXIST && holder.lease == lease && attempt == 0;
                if (orphan)
                        r = etcd_delete_if(s->etcd, key, holder.create_revision);
                etcd_kv_clear(&holder);
                if (!orphan || (r < 0 && r != -ESTALE))
                        return r;
        }
}

static int es_acquire(struct store *base, const struct lock_view *v, uint64_t *ret_fence) {
        struct store_etcd *s = of(base);
        int64_t lease = es_current_lease(s);
        if (!lease || es_is_down(s)) {
                es_log_failure(s, "take", v->path, -ENOTCONN);
                return -EIO; /* no grant without etcd's word */
        }
        char *key = es_key_of(s, v->path);
        size_t len;
        char *value = store_etcd_value_encode(v, s->host, &len);
        int r = key && value ? 0 : -ENOMEM;
        if (r == 0 && v->fence) /* a hand-off: the acquisition it replaces goes first */
                r = etcd_delete_if(s->etcd, key, (int64_t)v->fence);
        if (r == -ESTALE)
                r = 0;
        int64_t rev = 0;
        if (r == 0)
                r = create_key(s, key, value, len, lease, &rev);
        free(key);
        free(value);
        if (r == 0) {
                *ret_fence = (uint64_t)rev;
                return 0;
        }
        if (r == -EEXIST || r == -ENOMEM)
                return r;
        if (r == -ENOENT)
                es_lease_gone(s);
        if (r == -ENOTCONN)
                es_mark_down(s);
        es_log_failure(s, "take", v->path, r);
        return -EIO;
}

static int es_update(struct store *base, const struct lock_view *v) {
        struct store_etcd *s = of(base);
        if (v->lost) /* keep it off the new lease: it ends with the old one */
                return 0;
        int64_t lease = es_current_lease(s);
        char *key = es_key_of(s, v->path);
        size_t len;
        char *value = store_etcd_value_encode(v, s->host, &len);
        int r = key && value ? 0 : -ENOMEM;
        if (r == 0 && (!lease || es_is_down(s)))
                r = -ENOTCONN; /* what other hosts show of it lags until then */
        else if (r == 0)
                r = etcd_update(s->etcd, key, value, len, lease, (int64_t)v->fence);
        if (r == -ENOTCONN && lease)
                es_mark_down(s);
        free(key);
        free(value);
        if (r == -ENOENT)
                es_lease_gone(s);
        if (r == -ESTALE)
                r = 0; /* no longer ours: the watch marks it lost */
        if (r < 0)
                es_log_failure(s, "update", v->path, r);
        return r;
}

static int es_release(struct store *base, uint64_t ino, const char *path, uint64_t fence) {
        (void)ino;
        struct store_etcd *s = of(base);
        char *key = es_key_of(s, path);
        if (!key)
                return -ENOMEM;
        /* while etcd is known unreachable, do not hold up the table: the
         * keeper deletes it when etcd answers */
        int r = es_is_down(s) ? -ENOTCONN : etcd_delete_if(s->etcd, key, (int64_t)fence);
        if (r == -ENOTCONN || r == -EIO) {
                es_log_failure(s, "release", path, r);
                es_delete_later(s, key, (int64_t)fence);
        }
        free(key);
        return 0;
}

/* ---- the keeper: lease and pending deletes ---- */

static void retry_deletes(struct store_etcd *s) {
        struct list todo = LIST_INIT(todo);
        pthread_mutex_lock(&s->mu);
        while (!list_empty(&s->deletes)) {
                struct list *e = s->deletes.next;
                list_del(e);
                list_add_tail(&todo, e);
        }
        pthread_mutex_unlock(&s->mu);
        bool reachable = true;
        while (!list_empty(&todo)) {
                struct etcd_key *d = list_entry(todo.next, struct etcd_key, link);
                int r = reachable ? etcd_delete_if(s->etcd, d->key, d->rev) : -ENOTCONN;
                if (r != -ENOTCONN && r != -EIO) {
                        etcd_key_drop(d);
                        continue;
                }
                reachable = false; /* the rest waits for the next turn */
                list_del(&d->link);
                pthread_mutex_lock(&s->mu);
                list_add_tail(&s->deletes, &d->link);
                pthread_mutex_unlock(&s->mu);
        }
}

/* The lease is over: every local lock is unbacked from now on. */
static void lease_lost(struct store_etcd *s, const char *why) {
        pthread_mutex_lock(&s->mu);
        s->lease = 0;
        pthread_mutex_unlock(&s->mu);
        log_msg(LOG_WARNING, "etcd: lease lost (%s); held locks are marked lost", why);
        if (s->ev.lost)
                s->ev.lost(s->ev.ctx);
}

/* Log that etcd could not be asked what (once until it answers again). */
static void log_unreachable(struct store_etcd *s, const char *what, int err) {
        if (!s->unreachable_logged)
                log_msg(LOG_ERR, "etcd: cannot %s: %s", what,
                        err == -ENOTCONN ? "etcd unreachable" : strerror(-err));
        s->unreachable_logged = true;
}

/* The keeper has no lease: ask for one. */
static void keeper_grant(struct store_etcd *s) {
        int64_t lease = 0, ttl = 0;
        int r = etcd_lease_grant(s->etcd, s->ttl_s, &lease, &ttl);
        if (r < 0) {
                if (r == -ENOTCONN)
                        es_mark_down(s);
                log_unreachable(s, "get a lease", r);
                return;
        }
        pthread_mutex_lock(&s->mu);
        s->lease = lease;
        s->last_renewed_ms = clock_mono_ms();
        s->down = false;
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->mu);
        log_msg(LOG_NOTICE, "etcd: lease %llx granted (%lld s)", (unsigned long long)lease,
                (long long)ttl);
        s->unreachable_logged = false;
}

/* Renew lease once; declare it lost when etcd ended it, or when no
 * renewal got through within its TTL. */
static void keeper_renew(struct store_etcd *s, int64_t lease) {
        int64_t asked = clock_mono_ms(), ttl = 0;
        int r = etcd_lease_keepalive(s->etcd, lease, &ttl);
        pthread_mutex_lock(&s->mu);
        int64_t last = s->last_renewed_ms;
        if (r == 0) {
                s->last_renewed_ms = asked;
                s->down = false;
        } else if (r == -ENOTCONN) {
                s->down = true;
        }
        pthread_mutex_unlock(&s->mu);
        if (r == 0) {
                if (s->unreachable_logged)
                        log_msg(LOG_NOTICE, "etcd: reachable again; lease %llx kept",
                                (unsigned long long)lease);
                s->unreachable_logged = false;
        } else if (r == -ENOENT) {
                lease_lost(s, "etcd ended it");
        } else {
                log_unreachable(s, "renew the lease", r);
                /* etcd ends the lease TTL after the last renewal it saw */
                if (clock_mono_ms() - last >= s->ttl_s * 1000)
                        lease_lost(s, "not renewed within its TTL");
        }
}

static void *keeper_main(void *arg) {
        struct store_etcd *s = arg;
        pthread_mutex_lock(&s->mu);
        while (!s->stopping) {
                int64_t lease = s->lease;
                pthread_mutex_unlock(&s->mu);
                if (lease)
                        keeper_renew(s, lease);
                else
                        keeper_grant(s);
                retry_deletes(s);
                pthread_mutex_lock(&s->mu);
                /* renew three times per TTL; retry fast while without a
                 * lease or etcd; at once when woken (lease gone, deletes) */
                int64_t wait_ms = s->lease && !s->down ? s->ttl_s * 1000 / 3 : 250;
                struct timespec until = deadline_after(wait_ms);
                int w = 0;
                while (!s->stopping && !s->wake && w == 0)
                        w = pthread_cond_timedwait(&s->cond, &s->mu, &until);
                s->wake = false;
        }
        pthread_mutex_unlock(&s->mu);
        return NULL;
}

/* ---- life cycle ---- */

void store_etcd_stop(struct store *base) {
        struct store_etcd *s = of(base);
        etcd_watch_stop(s->watch);
        s->watch = NULL;
        if (s->keeper_running) {
                pthread_mutex_lock(&s->mu);
                s->stopping = true;
                pthread_cond_broadcast(&s->cond);
                pthread_mutex_unlock(&s->mu);
                pthread_join(s->keeper, NULL);
                s->keeper_running = false;
        }
}

static void es_free(struct store *base) {
        struct store_etcd *s = of(base);
        store_etcd_stop(base);
        retry_deletes(s);
        /* A clean stop: the mount and its locks end, so do our keys. */
        if (s->lease)
                etcd_lease_revoke(s->etcd, s->lease);
        etcd_keys_free(&s->deletes);
        etcd_keys_free(&s->uncertain);
        key_listing_clear(&s->listed);
        etcd_free(s->etcd);
        pthread_cond_destroy(&s->cond);
        pthread_mutex_destroy(&s->mu);
        free(s->prefix);
        free(s->host);
        free(s);
}

static const struct store_ops etcd_store_ops = {
        .name = "etcd",
        .acquire = es_acquire,
        .update = es_update,
        .release = es_release,
        .free = es_free,
};

int store_etcd_open(const struct store_etcd_config *cfg, struct store **ret) {
        struct store_etcd *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->base.ops = &etcd_store_ops;
        list_init(&s->deletes);
        list_init(&s->uncertain);
        pthread_mutex_init(&s->mu, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&s->cond, &ca);
        pthread_condattr_destroy(&ca);
        s->ttl_s = cfg->lease_ttl_s;
        s->prefix = strdup(cfg->prefix);
        s->host = strdup(cfg->host);
        int r = s->prefix && s->host ? etcd_new(cfg->endpoints, &s->etcd) : -ENOMEM;
        if (r == 0 && (cfg->cacert || cfg->cert || cfg->key))
                r = etcd_set_tls(s->etcd, cfg->cacert, cfg->cert, cfg->key);
        if (r == 0 && cfg->user)
                r = etcd_set_auth(s->etcd, cfg->user, cfg->password ? cfg->password : "");
        if (r < 0) {
                es_free(&s->base);
                return r;
        }
        s->prefix_len = strlen(s->prefix);
        *ret = &s->base;
        return 0;
}

int store_etcd_start(struct store *base, const struct store_etcd_events *ev, int wait_ms) {
        struct store_etcd *s = of(base);
        s->ev = *ev;
        int r = etcd_watch_start(s->etcd, s->prefix, 0, es_on_watch, s, &s->watch);
        if (r < 0)
                return r;
        r = -pthread_create(&s->keeper, NULL, keeper_main, s);
        if (r < 0)
                return r;
        s->keeper_running = true;
        struct timespec until = deadline_after(wait_ms);
        r = 0;
        pthread_mutex_lock(&s->mu);
        while (!(s->synced && s->lease) && r == 0)
                r = -pthread_cond_timedwait(&s->cond, &s->mu, &until);
        pthread_mutex_unlock(&s->mu);
        return r == 0 ? 0 : -ETIMEDOUT;
}

int store_etcd_check(struct store *base, char *why, size_t whylen) {
        struct store_etcd *s = of(base);
        return etcd_check(s->etcd, s->prefix, why, whylen);
}

