/* SPDX-License-Identifier: MIT */
/* What the files of the etcd client share (only they see this header):
 * the client's state, how a call runs its transfer, and the steps each
 * file offers the ones above it. Calls go downward only:
 *   watch.c -> requests.c -> client.c;  watch.c, requests.c -> wire.c -> b64.c
 * (watch.c also calls client.c). client.c: endpoints, pooled handles, one
 * call with authentication; wire.c: reading etcd's JSON; requests.c:
 * leases, transactions, ranges, the start-up check; watch.c: the watch
 * thread, which runs its listings' calls through struct etcd_runner. */
#ifndef LOCKFS_ETCD_INTERNAL_H
#define LOCKFS_ETCD_INTERNAL_H

#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "etcd.h"

#define CALL_MS 2000            /* a whole unary call, over every endpoint */
#define MAX_URL 900             /* of an endpoint */
#define POOL_MAX 16             /* idle easy handles kept */

struct etcd {
        char **urls;            /* base URLs, no trailing '/' */
        size_t n_urls;
        atomic_size_t cur;      /* the endpoint that answered last */
        /* TLS files (NULL: curl's default CAs, no client certificate) */
        char *cacert, *cert, *key;
        /* etcd authentication (user NULL: none) */
        char *user, *password;
        pthread_mutex_t auth_lock; /* one authenticate call at a time */
        pthread_mutex_t lock;   /* guards idle, token, token_gen, last_error */
        CURL *idle[POOL_MAX];
        size_t n_idle;
        char *token;            /* NULL until authenticated (or auth is off) */
        uint64_t token_gen;     /* bumped with each new token */
        char last_error[256];   /* printable ASCII only */
};

/* How a call runs its transfers when not on the client's pooled handles
 * with curl_easy_perform: on handle, with perform (which returns when the
 * transfer ends, or early once *stop is set: the call then ends with
 * -ECANCELED). The watch runs its listings so, on its own thread. */
struct etcd_runner {
        CURL *handle;
        CURLcode (*perform)(struct etcd_runner *run, CURL *h);
        atomic_bool *stop;
};

/* flags of client_call */
enum {
        CALL_LEASE = 1,         /* "lease not found" in an error answer is -ENOENT */
        CALL_STREAM = 2,        /* a streaming call: the answer is {"result":{...}} */
        CALL_NOAUTH = 4,        /* authenticate itself: no re-authentication */
};

/* ---- client.c ---- */

/* POST body to path (run NULL: on a pooled handle): each endpoint in turn
 * from the one that answered last, within CALL_MS in all, and once more
 * with a new token when etcd refused the token. 0 with the answer object
 * in *ret (free with cJSON_Delete), or the errors of etcd.h. */
int client_call(struct etcd *e, struct etcd_runner *run, const char *path, const char *body,
                unsigned flags, cJSON **ret);
/* Ask etcd for a token for e->user, with e->auth_lock held: 0 (also when
 * etcd has authentication off), -EACCES for wrong credentials, or the
 * call's error. */
int client_authenticate(struct etcd *e);
/* The token of generation gen was refused: get a new one, unless another
 * thread already did. 0 or the error of client_authenticate. */
int client_reauth(struct etcd *e, uint64_t gen);
/* The headers of a request now (with the current token when with_token),
 * and the token's generation in *gen. NULL on ENOMEM. */
struct curl_slist *client_headers(struct etcd *e, bool with_token, uint64_t *gen);
/* Reset h (keeping its connections) for a POST of body to url + path with
 * headers hdr (which, like body, must outlive the transfer). The server's
 * certificate and host name are always verified. */
void client_setup(struct etcd *e, CURL *h, const char *url, const char *path, const char *body,
                  struct curl_slist *hdr);
/* Endpoint idx did not answer: the next call starts with the one after it
 * (unless another call found a good one meanwhile). */
void client_endpoint_failed(struct etcd *e, size_t idx);
/* Remember why a call failed (fmt with one %s for what), as printable
 * ASCII: etcd's text is not trusted. */
void client_set_error(struct etcd *e, const char *fmt, const char *what);
/* The message of an error answer, or NULL. */
const char *client_error_message(const cJSON *j);
/* What an error answer says about authentication: -EKEYEXPIRED for a
 * token etcd no longer takes, -EACCES for a refusal, 0 for anything else. */
int client_auth_error(long status, const char *msg);

/* ---- wire.c ---- */

/* Read int64 field name of o (a string or a whole number on the wire;
 * absent = 0): 0 or -EIO. */
int wire_int(const cJSON *o, const char *name, int64_t *v);
/* The revision in an answer's header (0 when absent or bad). */
int64_t wire_header_rev(const cJSON *j);
/* Fill kv from an mvccpb.KeyValue: 0, or -EIO / -ENOMEM with kv cleared. */
int wire_parse_kv(const cJSON *j, struct etcd_kv *kv);
/* The base64 of the C string s; NULL on ENOMEM. */
char *wire_b64_str(const char *s);
/* The base64 key and range end that cover every key starting with prefix
 * (malloc'd): 0 or -ENOMEM (both NULL). */
int wire_prefix_range64(const char *prefix, char **ret_key64, char **ret_end64);

/* ---- requests.c ---- */

/* etcd_range_prefix, run as run says (NULL: as etcd_range_prefix). */
int requests_range_prefix(struct etcd *e, struct etcd_runner *run, const char *prefix,
                          struct etcd_kv **ret, size_t *ret_n, int64_t *ret_rev);

#endif
