/* SPDX-License-Identifier: MIT */
/* A small etcd v3 client over the JSON gateway (POST /v3/...) with libcurl
 * and cJSON: leases, create-if-absent, compare-and-delete, prefix range and
 * a prefix watch. Knows nothing of locks or FUSE.
 *
 * Keys and values are byte strings (base64 on the wire); revisions and
 * lease ids are int64 (strings on the wire). Every call is thread-safe and
 * reuses kept-alive connections; each request has a bounded time (about
 * 2 s), so a dead cluster costs a caller at most that.
 *
 * Errors (negative errno): -ENOTCONN when no endpoint answered (connection
 * refused, timeout, reset), -EIO for an answer that is not what etcd
 * sends, -ENOMEM, plus the per-call ones below. Endpoints are tried in
 * order; the one that answered last is tried first next time. */
#ifndef LOCKFS_ETCD_H
#define LOCKFS_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct etcd;

/* One key as etcd holds it. key and value are malloc'd and NUL-terminated
 * (the terminator is not counted in the lengths). */
struct etcd_kv {
        char *key;
        size_t key_len;
        char *value;
        size_t value_len;
        int64_t create_revision;
        int64_t mod_revision;
        int64_t lease;          /* 0 = none */
};

/* Free what kv owns; kv itself is not freed. NULL is a no-op. */
void etcd_kv_clear(struct etcd_kv *kv);
/* Free an array of n kvs from etcd_range_prefix. */
void etcd_kvs_free(struct etcd_kv *kvs, size_t n);

/* endpoints: comma-separated base URLs ("http://127.0.0.1:2379,http://h2:2379").
 * No request is sent. -EINVAL for an empty list or a URL that is not
 * http:// or https://. */
int etcd_new(const char *endpoints, struct etcd **ret);
/* TLS for https:// endpoints, before any call: cacert (PEM file of the CAs
 * that sign the members' certificates; NULL: the system's), cert and key
 * (PEM client certificate and its key, both or neither). The member's
 * certificate and host name are always verified; a member that fails the
 * check counts as not answering, and a call no member answered, where one
 * failed it, gives -EPROTO; one where a member refused the client's
 * certificate (a TLS alert) -EKEYREJECTED. -EINVAL for cert without key,
 * -ENOMEM. */
int etcd_set_tls(struct etcd *e, const char *cacert, const char *cert, const char *key);
/* etcd user/password authentication, before any call: a token from
 * /v3/auth/authenticate goes with every request (Authorization header).
 * When etcd refuses the token (expired, revoked), the call authenticates
 * again once and is repeated. Neither password nor token is ever logged.
 * Errors of calls: -EACCES when etcd refuses the credentials or the
 * permission. -EINVAL, -ENOMEM. */
int etcd_set_auth(struct etcd *e, const char *user, const char *password);
/* Check that etcd answers and lets this client read and write under
 * prefix (writes nothing): 0, or the error (-ENOTCONN: no member answered;
 * -EPROTO: a member's certificate failed verification; -EKEYREJECTED: a
 * member refused the client certificate (or its absence); -EACCES: bad
 * credentials or no permission) with a one-line reason in why. */
int etcd_check(struct etcd *e, const char *prefix, char *why, size_t whylen);
/* Free the client; no other call may be running. NULL is a no-op. */
void etcd_free(struct etcd *e);

/* Grant a lease of ttl_s seconds: its id in *ret_id, the TTL etcd granted
 * in *ret_ttl (may be NULL). */
int etcd_lease_grant(struct etcd *e, int64_t ttl_s, int64_t *ret_id, int64_t *ret_ttl);
/* Renew lease id once: the TTL left in *ret_ttl (may be NULL). -ENOENT when
 * etcd no longer has the lease (expired or revoked). */
int etcd_lease_keepalive(struct etcd *e, int64_t id, int64_t *ret_ttl);
/* Revoke lease id (its keys go at once). -ENOENT when already gone. */
int etcd_lease_revoke(struct etcd *e, int64_t id);

/* One transaction: if key does not exist (create_revision == 0), put value
 * with lease (0 = none) and return 0 with the key's create revision in
 * *ret_rev (may be NULL); else put nothing, return -EEXIST and, when
 * ret_holder is non-NULL, the key as it is in *ret_holder (cleared
 * first). -ENOENT when the lease does not exist. */
int etcd_create(struct etcd *e, const char *key, const void *value, size_t value_len,
                int64_t lease, int64_t *ret_rev, struct etcd_kv *ret_holder);
/* Put value (with lease) on key only if its create revision is still rev:
 * 0, or -ESTALE when the key is gone or was created anew. -ENOENT when the
 * lease does not exist. */
int etcd_update(struct etcd *e, const char *key, const void *value, size_t value_len,
                int64_t lease, int64_t rev);
/* Delete key only if its create revision is still rev: 0, or -ESTALE. */
int etcd_delete_if(struct etcd *e, const char *key, int64_t rev);
/* Every key that starts with prefix, in key order, as a malloc'd array in
 * *ret (free with etcd_kvs_free; NULL when n is 0) and the store revision
 * the answer reflects in *ret_rev (may be NULL). */
int etcd_range_prefix(struct etcd *e, const char *prefix, struct etcd_kv **ret, size_t *ret_n,
                      int64_t *ret_rev);

/* ---- watch ----
 * A thread that streams changes of every key under a prefix, starting at a
 * revision, and reconnects by itself (from the revision after the last it
 * delivered, trying endpoints in turn, about every 200 ms) when the stream
 * breaks. */
enum etcd_watch_event {
        ETCD_WATCH_PUT,         /* kv created or changed (every field set) */
        ETCD_WATCH_DELETE,      /* kv->key deleted or its lease ended (key, key_len
                                 * and mod_revision set) */
        ETCD_WATCH_DOWN,        /* the stream broke (kv NULL); reconnecting */
        ETCD_WATCH_UP,          /* the stream runs again (kv NULL) */
        ETCD_WATCH_SYNC_BEGIN,  /* a full listing follows (kv NULL): one PUT per key
                                 * under the prefix now, then SYNC_END. Keys the
                                 * caller knows that are not among those PUTs are
                                 * gone. Sent at start when start_rev is 0, and
                                 * when the history needed to resume was compacted. */
        ETCD_WATCH_SYNC_END,    /* end of the listing: kv->mod_revision is the
                                 * revision it reflects (key and value empty) */
};
/* Called on the watch thread, in revision order; it may call other etcd_*
 * functions (not etcd_watch_stop on its own watch). */
typedef void (*etcd_watch_fn)(void *ctx, enum etcd_watch_event ev, const struct etcd_kv *kv);

struct etcd_watch;
/* Start watching prefix: from revision start_rev (events with mod_revision
 * >= start_rev), or, when start_rev is 0, with a full listing (SYNC_BEGIN,
 * PUTs, SYNC_END) and then every change after it. The thread runs until
 * etcd_watch_stop; it never gives up (an unreachable cluster gives DOWN
 * once, then UP or a listing when it answers again). */
int etcd_watch_start(struct etcd *e, const char *prefix, int64_t start_rev, etcd_watch_fn fn,
                     void *ctx, struct etcd_watch **ret);
/* Stop the thread (waits for a running callback) and free w. NULL is a no-op. */
void etcd_watch_stop(struct etcd_watch *w);

#endif
