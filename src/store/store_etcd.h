/* SPDX-License-Identifier: MIT */
/* The cluster store on etcd (store_etcd.c): the store interface plus what
 * only a shared store has, a feed of other hosts' locks. */
#ifndef LOCKFS_STORE_ETCD_H
#define LOCKFS_STORE_ETCD_H

#include "store.h"

struct store_etcd_config {
        const char *endpoints;   /* "http://h1:2379,http://h2:2379" */
        const char *prefix;      /* key prefix, starts and ends with '/' */
        unsigned lease_ttl_s;    /* this daemon's lease */
        const char *host;        /* published as the holder's host */
        const char *cacert;      /* TLS: CA file, client certificate and key */
        const char *cert;        /* (PEM; NULL = none, see etcd_set_tls) */
        const char *key;
        const char *user;        /* etcd authentication; NULL = none */
        const char *password;    /* never logged */
};

/* What the prefix watch reports, on its own thread, in etcd's order (see
 * locktable_remote_put and friends, which these feed). */
struct store_etcd_events {
        /* v: path, fence (create revision), host and holder fields set. */
        void (*put)(void *ctx, const struct lock_view *v);
        void (*del)(void *ctx, const char *path, uint64_t rev);
        /* Is acquisition fence of path held here? Asked for a key under
         * this daemon's lease whose create got no answer (it may still have
         * reached etcd): if not held, it is an orphan and gets deleted. */
        bool (*holds)(void *ctx, const char *path, uint64_t fence);
        void (*sync_begin)(void *ctx);
        /* The listing reflected revision rev; listed(lctx, path) tells
         * whether it named path (NULL: the listing is incomplete). */
        void (*sync_end)(void *ctx, uint64_t rev, bool (*listed)(void *lctx, const char *path),
                         void *lctx);
        /* The lease ended (etcd said so, or it was not renewed within its
         * TTL): no local lock is backed any more. */
        void (*lost)(void *ctx);
        void *ctx;
};

/* A store on etcd; sends nothing yet. -EINVAL for bad endpoints, -ENOMEM.
 * Its acquire fails with -EEXIST when the key exists, -ENOMEM, and -EIO
 * for every other failure (etcd cannot be asked, the lease is gone: never
 * a guess); update gives 0 for a lock that is no longer ours (the watch
 * marks it lost) and the call's -errno otherwise; release always gives 0
 * (or -ENOMEM) and retries in the background until etcd takes it. The
 * store logs each failure itself (at most one line a second), so callers
 * need not say why. free() revokes the lease, so a clean stop releases
 * this daemon's locks everywhere. */
int store_etcd_open(const struct store_etcd_config *cfg, struct store **ret);
/* Start the watch and the lease keeper (after any fork). Waits up to
 * wait_ms for a lease and the first listing: 0, or -ETIMEDOUT (both keep
 * trying in the background). */
int store_etcd_start(struct store *s, const struct store_etcd_events *ev, int wait_ms);

/* Before start: check that etcd answers and that this daemon may read and
 * write under its prefix (authenticating when configured). 0, or -ENOTCONN
 * (no member answered), -EPROTO (a member's certificate failed),
 * -EKEYREJECTED (a member refused the client certificate), -EACCES
 * (credentials or permission refused), -EIO, with a reason in why. */
int store_etcd_check(struct store *s, char *why, size_t whylen);

/* The value codec (store_etcd_value_decode) is in etcd_value.h. */

/* Stop the watch and the keeper: no event comes after this returns. The
 * store still answers calls (free() also stops them). */
void store_etcd_stop(struct store *s);

#endif
