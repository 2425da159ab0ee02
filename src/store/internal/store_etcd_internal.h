/* SPDX-License-Identifier: MIT */
/* What the files of the etcd store share (only they see this header):
 * its state, and the steps of store_etcd_state.c. Calls go downward only:
 *   store_etcd.c -> store_etcd_feed.c -> store_etcd_state.c, and
 *   store_etcd.c -> store_etcd_state.c.
 * store_etcd.c: the store operations, the lease keeper, the life cycle;
 * store_etcd_feed.c: the watch's events; store_etcd_state.c: keys, the
 * rate-limited logs and the state both threads read, each under s->mu. */
#ifndef LOCKFS_STORE_ETCD_INTERNAL_H
#define LOCKFS_STORE_ETCD_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "etcd.h"
#include "etcd_keys.h"
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


/* ---- store_etcd_state.c ---- */

/* The key of path "/a/b": PREFIX "a/b"; NULL on ENOMEM. */
char *es_key_of(const struct store_etcd *s, const char *path);
/* Log that a call failed (what path: err) at most once a second, so an
 * outage cannot flood. */
void es_log_failure(struct store_etcd *s, const char *what, const char *path, int err);
/* Log that key kv is ignored and why: at most a few lines a second, so a
 * writer of garbage cannot flood the log. */
void es_log_ignored(struct store_etcd *s, const struct etcd_kv *kv, const char *why);
int64_t es_current_lease(struct store_etcd *s);
/* Wake the keeper (with s->mu held): there is work now. */
void es_wake_keeper_locked(struct store_etcd *s);
/* etcd says the lease is gone: wake the keeper, whose renewal then
 * declares it lost and asks for a new one. */
void es_lease_gone(struct store_etcd *s);
/* etcd did not answer: calls fail fast until the keeper reaches it. */
void es_mark_down(struct store_etcd *s);
bool es_is_down(struct store_etcd *s);
/* The uncertain set: creates in flight or unanswered. add remembers key
 * (without memory: not, and an orphan it makes lives until our lease
 * ends), has asks, take forgets it and tells whether it was there. */
void es_uncertain_add(struct store_etcd *s, const char *key);
bool es_uncertain_has(struct store_etcd *s, const char *key);
bool es_uncertain_take(struct store_etcd *s, const char *key);
/* Queue the release of key (create revision rev) for the keeper. */
void es_delete_later(struct store_etcd *s, const char *key, int64_t rev);

/* ---- store_etcd_feed.c ---- */

/* The watch's callback (etcd_watch_fn) with s as ctx: tells s->ev what
 * other hosts' locks do, deletes orphans of our own creates. */
void es_on_watch(void *arg, enum etcd_watch_event ev, const struct etcd_kv *kv);

#endif
