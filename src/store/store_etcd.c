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
#include "etcd.h"
#include "etcd_keys.h"
#include "etcd_value.h"
#include "log.h"
#include "store_etcd.h"

#define MAX_UNCERTAIN 1024

struct store_etcd {
        struct store base;
        struct etcd *etcd;
        char *prefix;
        size_t prefix_len;
        char *host;
        int64_t ttl_s;
        struct store_etcd_events ev;
        struct etcd_watch *watch;
        pthread_t keeper;
        bool keeper_running;
        pthread_mutex_t mu;      /* guards what follows, up to the listing */
        pthread_cond_t cond;     /* wakes the keeper (stop, lease trouble) and start() */
        bool stopping;
        int64_t lease;           /* 0: none (never granted, or lost) */
        int64_t last_renewed_ms; /* monotonic: the last answer that kept the lease */
        bool down;               /* a call found etcd unreachable; the keeper clears it */
        bool wake;               /* the keeper has work now (predicate of cond) */
        bool synced;             /* the first listing came */
        int64_t last_error_log_ms;
        int64_t ignored_window_ms; /* log_ignored's rate limit */
        unsigned ignored_in_window;
        /* releases etcd did not take (unreachable): retried until it does,
         * else the key would outlive the lock for as long as our lease
         * lives; rev is the create revision to delete */
        struct list deletes;
        /* keys whose create got no answer (etcd may still have made them),
         * newest first, at most MAX_UNCERTAIN */
        struct list uncertain;
        size_t n_uncertain;
        /* only the keeper thread touches this */
        bool unreachable_logged;
        /* the keys of a listing in progress; only the watch thread
         * touches them */
        bool listing;
        struct key_listing listed;
};

static struct store_etcd *of(struct store *s) {
        return container_of(s, struct store_etcd, base);
}

/* CLOCK_MONOTONIC time ms from now, for pthread_cond_timedwait. */
static struct timespec deadline_after(int64_t ms) {
        int64_t at = clock_mono_ms() + ms;
        return (struct timespec){ .tv_sec = at / 1000, .tv_nsec = (at % 1000) * 1000000 };
}

/* The key of path "/a/b": PREFIX "a/b". */
static char *key_of(const struct store_etcd *s, const char *path) {
        char *key;
        return asprintf(&key, "%s%s", s->prefix, path[0] == '/' ? path + 1 : path) < 0 ? NULL
                                                                                     : key;
}

/* ---- logging, rate-limited so an outage or a writer of garbage cannot flood ---- */

/* Log a failed call at most once a second. */
static void log_failure(struct store_etcd *s, const char *what, const char *path, int err) {
        int64_t now = clock_mono_ms();
        pthread_mutex_lock(&s->mu);
        bool quiet = now - s->last_error_log_ms < 1000;
        if (!quiet)
                s->last_error_log_ms = now;
        pthread_mutex_unlock(&s->mu);
        if (!quiet)
                log_msg(LOG_ERR, "etcd: cannot %s %s: %s", what, path,
                        err == -ENOTCONN ? "etcd unreachable" : strerror(-err));
}

/* s (n bytes) for a log line: up to its first NUL (which a line cannot
 * carry), cut with "..." to fit out. The log sink escapes what is not
 * printable (log_escape), so nothing is escaped twice. */
static const char *key_for_log(const char *s, size_t n, char *out, size_t outlen) {
        const char *nul = memchr(s, '\0', n);
        size_t len = nul ? (size_t)(nul - s) : n;
        if (len + 1 > outlen) {
                len = outlen - 4;
                memcpy(out + len, "...", 4);
        } else {
                out[len] = '\0';
        }
        memcpy(out, s, len);
        return out;
}

/* Log that key is ignored and why: at most a few lines a second. */
static void log_ignored(struct store_etcd *s, const struct etcd_kv *kv, const char *why) {
        int64_t now = clock_mono_ms();
        pthread_mutex_lock(&s->mu);
        if (now - s->ignored_window_ms >= 1000) {
                s->ignored_window_ms = now;
                s->ignored_in_window = 0;
        }
        bool quiet = ++s->ignored_in_window > 5;
        pthread_mutex_unlock(&s->mu);
        if (quiet)
                return;
        char key[256];
        log_msg(LOG_WARNING, "etcd: ignoring key %s: %s", key_for_log(kv->key, kv->key_len, key,
                                                                      sizeof(key)), why);
}

/* ---- shared state (each takes s->mu) ---- */

static int64_t current_lease(struct store_etcd *s) {
        pthread_mutex_lock(&s->mu);
        int64_t lease = s->lease;
        pthread_mutex_unlock(&s->mu);
        return lease;
}

/* Wake the keeper: etcd said the lease is gone (its renewal then declares
 * it lost and asks for a new one), or there are deletes to send. Called
 * with s->mu held. */
static void wake_keeper_locked(struct store_etcd *s) {
        s->wake = true;
        pthread_cond_broadcast(&s->cond);
}

static void lease_gone(struct store_etcd *s) {
        pthread_mutex_lock(&s->mu);
        wake_keeper_locked(s);
        pthread_mutex_unlock(&s->mu);
}

/* etcd did not answer: calls fail fast until the keeper reaches it. */
static void mark_down(struct store_etcd *s) {
        pthread_mutex_lock(&s->mu);
        s->down = true;
        wake_keeper_locked(s);
        pthread_mutex_unlock(&s->mu);
}

static bool is_down(struct store_etcd *s) {
        pthread_mutex_lock(&s->mu);
        bool down = s->down;
        pthread_mutex_unlock(&s->mu);
        return down;
}

/* Remember that a create of key is in flight (without memory: not, and an
 * orphan it makes lives until our lease ends). */
static void uncertain_add(struct store_etcd *s, const char *key) {
        pthread_mutex_lock(&s->mu);
        if (etcd_key_push(&s->uncertain, key, 0) == 0 && ++s->n_uncertain > MAX_UNCERTAIN) {
                etcd_key_drop(list_entry(s->uncertain.prev, struct etcd_key, link)); /* oldest */
                s->n_uncertain--;
        }
        pthread_mutex_unlock(&s->mu);
}

/* Is a create of key in flight or unanswered? */
static bool uncertain_has(struct store_etcd *s, const char *key) {
        pthread_mutex_lock(&s->mu);
        bool found = etcd_key_find(&s->uncertain, key) != NULL;
        pthread_mutex_unlock(&s->mu);
        return found;
}

/* Was key's create unanswered? Forgets it either way. */
static bool uncertain_take(struct store_etcd *s, const char *key) {
        pthread_mutex_lock(&s->mu);
        struct etcd_key *k = etcd_key_find(&s->uncertain, key);
        if (k) {
                etcd_key_drop(k);
                s->n_uncertain--;
        }
        pthread_mutex_unlock(&s->mu);
        return k != NULL;
}

/* Queue the release of key (create revision rev) for the keeper. */
static void delete_later(struct store_etcd *s, const char *key, int64_t rev) {
        pthread_mutex_lock(&s->mu);
        /* without memory the key lives until our lease ends */
        if (etcd_key_push(&s->deletes, key, rev) == 0)
                wake_keeper_locked(s);
        pthread_mutex_unlock(&s->mu);
}

/* ---- store operations (called under the table's store mutex) ---- */

/* Create key for acquisition value: 0 and the revision, -EEXIST, or
 * -errno. Any create whose answer is not definite stays "uncertain" (see
 * on_put). A key of our own lease that nothing here holds is an orphan
 * (a create answered too late): deleted, and the create tried once more. */
static int create_key(struct store_etcd *s, const char *key, const char *value, size_t len,
                      int64_t lease, int64_t *ret_rev) {
        for (int attempt = 0;; attempt++) {
                struct etcd_kv holder = { 0 };
                uncertain_add(s, key);
                int r = etcd_create(s->etcd, key, value, len, lease, ret_rev, &holder);
                if (r != -ENOTCONN)
                        uncertain_take(s, key);
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
        int64_t lease = current_lease(s);
        if (!lease || is_down(s)) {
                log_failure(s, "take", v->path, -ENOTCONN);
                return -EIO; /* no grant without etcd's word */
        }
        char *key = key_of(s, v->path);
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
                lease_gone(s);
        if (r == -ENOTCONN)
                mark_down(s);
        log_failure(s, "take", v->path, r);
        return -EIO;
}

static int es_update(struct store *base, const struct lock_view *v) {
        struct store_etcd *s = of(base);
        if (v->lost) /* keep it off the new lease: it ends with the old one */
                return 0;
        int64_t lease = current_lease(s);
        char *key = key_of(s, v->path);
        size_t len;
        char *value = store_etcd_value_encode(v, s->host, &len);
        int r = key && value ? 0 : -ENOMEM;
        if (r == 0 && (!lease || is_down(s)))
                r = -ENOTCONN; /* what other hosts show of it lags until then */
        else if (r == 0)
                r = etcd_update(s->etcd, key, value, len, lease, (int64_t)v->fence);
        if (r == -ENOTCONN && lease)
                mark_down(s);
        free(key);
        free(value);
        if (r == -ENOENT)
                lease_gone(s);
        if (r == -ESTALE)
                r = 0; /* no longer ours: the watch marks it lost */
        if (r < 0)
                log_failure(s, "update", v->path, r);
        return r;
}

static int es_release(struct store *base, uint64_t ino, const char *path, uint64_t fence) {
        (void)ino;
        struct store_etcd *s = of(base);
        char *key = key_of(s, path);
        if (!key)
                return -ENOMEM;
        /* while etcd is known unreachable, do not hold up the table: the
         * keeper deletes it when etcd answers */
        int r = is_down(s) ? -ENOTCONN : etcd_delete_if(s->etcd, key, (int64_t)fence);
        if (r == -ENOTCONN || r == -EIO) {
                log_failure(s, "release", path, r);
                delete_later(s, key, (int64_t)fence);
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
                        mark_down(s);
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

/* ---- the watch: other hosts' locks ---- */

/* Did the listing name path? (store_etcd_events.sync_end) */
static bool listed_has(void *arg, const char *path) {
        struct store_etcd *s = arg;
        char *key = key_of(s, path);
        if (!key)
                return true; /* without memory, keep what we hold */
        bool found = key_listing_has(&s->listed, key);
        free(key);
        return found;
}

/* A key of our own lease was put: made by a create that was answered
 * (held here, or released since: nothing to do), or by one in flight or
 * unanswered (in the uncertain set). holds() waits for the table lock, so
 * for the uncertain set the answer has come by then: a key nothing here
 * holds is an orphan, and goes. */
static void on_own_put(struct store_etcd *s, const struct etcd_kv *kv, const char *path) {
        if (!uncertain_has(s, kv->key) || !s->ev.holds ||
            s->ev.holds(s->ev.ctx, path, (uint64_t)kv->create_revision) ||
            !uncertain_take(s, kv->key))
                return;
        int r = etcd_delete_if(s->etcd, kv->key, kv->create_revision);
        if (r == 0)
                log_msg(LOG_NOTICE, "etcd: deleted %s, made by a create that had failed",
                        kv->key);
        else if (r == -ESTALE) /* gone already: not that create's key */
                uncertain_add(s, kv->key);
}

/* Another daemon's lock at path was put: decode it and tell the table. */
static void on_other_put(struct store_etcd *s, const struct etcd_kv *kv, char *path) {
        if (!kv->lease) {
                /* every daemon's key is on its lease; one without was
                 * written by hand (or forged): not a lock */
                log_ignored(s, kv, "it has no lease, so no lockfs daemon made it");
                return;
        }
        if (kv->create_revision <= 0) {
                log_ignored(s, kv, "it has no create revision");
                return;
        }
        struct lock_view v = { .path = path, .fence = (uint64_t)kv->create_revision };
        char why[128];
        int r = store_etcd_value_decode(kv->value, kv->value_len, &v, why, sizeof(why));
        if (r == 0 && s->ev.put)
                s->ev.put(s->ev.ctx, &v);
        else if (r == -EINVAL)
                log_ignored(s, kv, why);
        v.path = NULL; /* the caller's */
        lock_view_clear(&v);
}

/* Is kv a lock's key: under the prefix (else silently not), and without a
 * NUL byte, which no path holds (logged)? */
static bool is_lock_key(struct store_etcd *s, const struct etcd_kv *kv) {
        if (kv->key_len <= s->prefix_len || memcmp(kv->key, s->prefix, s->prefix_len))
                return false;
        if (memchr(kv->key, '\0', kv->key_len)) {
                log_ignored(s, kv, "its name holds a NUL byte");
                return false;
        }
        return true;
}

/* The path of lock key kv: "/" and what follows the prefix; NULL on ENOMEM. */
static char *path_of(const struct store_etcd *s, const struct etcd_kv *kv) {
        char *path;
        return asprintf(&path, "/%s", kv->key + s->prefix_len) < 0 ? NULL : path;
}

static void on_put(struct store_etcd *s, const struct etcd_kv *kv) {
        if (!is_lock_key(s, kv))
                return;
        if (s->listing && key_listing_add(&s->listed, kv->key) < 0)
                s->listing = false; /* incomplete: it ends nothing local */
        char *path = path_of(s, kv);
        if (!path)
                return;
        if (kv->lease && kv->lease == current_lease(s))
                on_own_put(s, kv, path);
        else
                on_other_put(s, kv, path);
        free(path);
}

static void on_delete(struct store_etcd *s, const struct etcd_kv *kv) {
        char *path = is_lock_key(s, kv) ? path_of(s, kv) : NULL;
        if (path && s->ev.del)
                s->ev.del(s->ev.ctx, path, (uint64_t)kv->mod_revision);
        free(path);
}

static void on_sync_begin(struct store_etcd *s) {
        key_listing_clear(&s->listed);
        s->listing = true;
        if (s->ev.sync_begin)
                s->ev.sync_begin(s->ev.ctx);
}

/* The listing is complete at revision rev: what it did not name is gone. */
static void on_sync_end(struct store_etcd *s, int64_t rev) {
        if (s->ev.sync_end)
                s->ev.sync_end(s->ev.ctx, (uint64_t)rev, s->listing ? listed_has : NULL, s);
        s->listing = false;
        key_listing_clear(&s->listed);
        pthread_mutex_lock(&s->mu);
        s->synced = true;
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->mu);
}

static void on_watch(void *arg, enum etcd_watch_event ev, const struct etcd_kv *kv) {
        struct store_etcd *s = arg;
        switch (ev) {
        case ETCD_WATCH_PUT:
                on_put(s, kv);
                break;
        case ETCD_WATCH_DELETE:
                on_delete(s, kv);
                break;
        case ETCD_WATCH_DOWN:
                log_msg(LOG_WARNING, "etcd: watch interrupted; reconnecting");
                break;
        case ETCD_WATCH_UP:
                log_msg(LOG_NOTICE, "etcd: watch resumed");
                break;
        case ETCD_WATCH_SYNC_BEGIN:
                on_sync_begin(s);
                break;
        case ETCD_WATCH_SYNC_END:
                on_sync_end(s, kv->mod_revision);
                break;
        }
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
        int r = etcd_watch_start(s->etcd, s->prefix, 0, on_watch, s, &s->watch);
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
