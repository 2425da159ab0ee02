/* SPDX-License-Identifier: MIT */
/* The etcd v3 client of etcd.h: gateway calls on pooled curl handles, and a watch thread. */
#include <cjson/cJSON.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "etcd.h"
#include "log.h"

#define CONNECT_MS 1000         /* per connection attempt */
#define CALL_MS 2000            /* a whole unary call, over every endpoint */
#define RETRY_MS 200            /* watch: pause between rounds over the endpoints */
#define PROBE_MS 3000           /* watch: probe the member after this much silence */
#define MAX_URL 900             /* of an endpoint */
#define POOL_MAX 16             /* idle easy handles kept */
#define KEEPALIVE_IDLE_S 2      /* TCP keep-alive: a dead peer is noticed after */
#define KEEPALIVE_INTVL_S 1     /* IDLE + CNT * INTVL seconds of silence */
#define KEEPALIVE_CNT 3
#define MAX_TOKEN 4096          /* of an auth token (it goes into a header) */
#define WATCH_REAUTH_MS 1000    /* watch: at most one re-authentication per */

/* Not in etcd.h: standard base64 with padding, exported for the unit test.
 * encode: malloc'd NUL-terminated text, NULL on ENOMEM. decode: the bytes,
 * malloc'd and NUL-terminated, or -EIO for text that is not base64. */
char *etcd_b64_encode(const void *data, size_t n);
int etcd_b64_decode(const char *s, size_t n, char **ret, size_t *ret_len);

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

struct buf {
        char *p;
        size_t len, cap;
};

/* WATCH_AUTH: etcd refused the stream's token (expired, or no permission) */
enum watch_end { WATCH_BROKEN, WATCH_COMPACTED, WATCH_STOPPED, WATCH_AUTH };

struct etcd_watch {
        struct etcd *e;
        char *prefix;
        etcd_watch_fn fn;
        void *ctx;
        pthread_t thread;
        atomic_bool stop;
        CURLM *multi;           /* runs both handles; curl_multi_wakeup interrupts */
        CURL *stream, *unary;
        size_t idx;             /* the endpoint of the stream */
        char *probe_body;
        struct curl_slist *hdr; /* the stream's (and its probe's) headers */
        uint64_t hdr_gen;       /* the token generation in hdr */
        int64_t reauth_ms;      /* now_ms() of the watch's last re-authentication */
        int64_t heard;          /* now_ms() when the stream last showed life */
        int64_t next_rev;       /* first revision not delivered yet */
        bool need_sync, down;
        /* the stream now: its state and the incremental object scanner */
        enum watch_end end;
        bool ending, checked_status;
        struct buf in;
        size_t pos, start;
        int depth;
        bool in_str, esc;
};

/* ---- base64 ---- */

static const char b64_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *etcd_b64_encode(const void *data, size_t n) {
        const unsigned char *s = data;
        if (n > (SIZE_MAX - 1) / 4 * 3 - 2)
                return NULL;
        char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
        if (!out)
                return NULL;
        size_t i = 0;
        for (; i + 2 < n; i += 3) {
                uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
                *o++ = b64_chars[v >> 18];
                *o++ = b64_chars[v >> 12 & 63];
                *o++ = b64_chars[v >> 6 & 63];
                *o++ = b64_chars[v & 63];
        }
        if (i < n) {
                uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0);
                *o++ = b64_chars[v >> 18];
                *o++ = b64_chars[v >> 12 & 63];
                *o++ = i + 1 < n ? b64_chars[v >> 6 & 63] : '=';
                *o++ = '=';
        }
        *o = '\0';
        return out;
}

static int b64_value(unsigned char c) {
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+')
                return 62;
        if (c == '/')
                return 63;
        return -1;
}

int etcd_b64_decode(const char *s, size_t n, char **ret, size_t *ret_len) {
        size_t pad = 0;
        while (n > 0 && s[n - 1] == '=') {
                n--;
                pad++;
        }
        if (n % 4 == 1 || pad > 2 || (pad && (n + pad) % 4))
                return -EIO;
        char *out = malloc(n / 4 * 3 + 3), *o = out;
        if (!out)
                return -ENOMEM;
        uint32_t acc = 0;
        int bits = 0;
        for (size_t i = 0; i < n; i++) {
                int v = b64_value((unsigned char)s[i]);
                if (v < 0) {
                        free(out);
                        return -EIO;
                }
                acc = acc << 6 | (uint32_t)v;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        *o++ = (char)(acc >> bits & 0xff);
                }
        }
        *o = '\0';
        *ret = out;
        *ret_len = (size_t)(o - out);
        return 0;
}

/* ---- small helpers ---- */

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int buf_add(struct buf *b, const void *p, size_t n) {
        if (b->len + n + 1 > b->cap) {
                size_t cap = b->cap ? b->cap : 1024;
                while (cap < b->len + n + 1)
                        cap *= 2;
                char *q = realloc(b->p, cap);
                if (!q)
                        return -ENOMEM;
                b->p = q;
                b->cap = cap;
        }
        memcpy(b->p + b->len, p, n);
        b->len += n;
        b->p[b->len] = '\0';
        return 0;
}

/* The base64 key and range end that cover every key starting with prefix:
 * the end is the prefix with its last byte below 0xff incremented and what
 * follows dropped, or "\0" (every key from the start on) when there is no
 * such byte; the empty prefix starts at "\0" (etcd refuses an empty key). */
static int prefix_range64(const char *prefix, char **ret_key64, char **ret_end64) {
        size_t n = strlen(prefix);
        char *end = strdup(prefix);
        if (!end)
                return -ENOMEM;
        while (n > 0 && (unsigned char)end[n - 1] == 0xff)
                n--;
        if (n > 0)
                end[n - 1] = (char)((unsigned char)end[n - 1] + 1);
        *ret_key64 = *prefix ? etcd_b64_encode(prefix, strlen(prefix)) : etcd_b64_encode("", 1);
        *ret_end64 = etcd_b64_encode(end, n ? n : 1);
        free(end);
        if (!*ret_key64 || !*ret_end64) {
                free(*ret_key64);
                free(*ret_end64);
                *ret_key64 = *ret_end64 = NULL;
                return -ENOMEM;
        }
        return 0;
}

static char *b64_str(const char *s) {
        return etcd_b64_encode(s, strlen(s));
}

/* Read int64 field name of o (a string on the wire; absent = 0). */
static int json_int(const cJSON *o, const char *name, int64_t *v) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, name);
        *v = 0;
        if (!x)
                return 0;
        if (cJSON_IsNumber(x)) { /* only whole numbers an int64 holds */
                double d = x->valuedouble;
                if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) ||
                    (double)(int64_t)d != d)
                        return -EIO;
                *v = (int64_t)d;
                return 0;
        }
        if (!cJSON_IsString(x))
                return -EIO;
        char *end;
        errno = 0;
        long long n = strtoll(x->valuestring, &end, 10);
        if (errno || end == x->valuestring || *end)
                return -EIO;
        *v = n;
        return 0;
}

/* Decode base64 field name of o (absent = empty) into a malloc'd string. */
static int json_bytes(const cJSON *o, const char *name, char **ret, size_t *ret_len) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(o, name);
        if (!x) {
                *ret = strdup("");
                *ret_len = 0;
                return *ret ? 0 : -ENOMEM;
        }
        if (!cJSON_IsString(x))
                return -EIO;
        return etcd_b64_decode(x->valuestring, strlen(x->valuestring), ret, ret_len);
}

static int64_t header_rev(const cJSON *j) {
        int64_t rev = 0;
        json_int(cJSON_GetObjectItemCaseSensitive(j, "header"), "revision", &rev);
        return rev;
}

void etcd_kv_clear(struct etcd_kv *kv) {
        if (!kv)
                return;
        free(kv->key);
        free(kv->value);
        memset(kv, 0, sizeof(*kv));
}

void etcd_kvs_free(struct etcd_kv *kvs, size_t n) {
        for (size_t i = 0; kvs && i < n; i++)
                etcd_kv_clear(&kvs[i]);
        free(kvs);
}

/* Fill kv from an mvccpb.KeyValue; kv is cleared on failure. */
static int parse_kv(const cJSON *j, struct etcd_kv *kv) {
        memset(kv, 0, sizeof(*kv));
        if (!cJSON_IsObject(j))
                return -EIO;
        int r = json_bytes(j, "key", &kv->key, &kv->key_len);
        if (r >= 0)
                r = json_bytes(j, "value", &kv->value, &kv->value_len);
        if (r >= 0)
                r = json_int(j, "create_revision", &kv->create_revision);
        if (r >= 0)
                r = json_int(j, "mod_revision", &kv->mod_revision);
        if (r >= 0)
                r = json_int(j, "lease", &kv->lease);
        /* etcd's revisions and lease ids are never negative */
        if (r >= 0 && (kv->create_revision < 0 || kv->mod_revision < 0 || kv->lease < 0))
                r = -EIO;
        if (r < 0)
                etcd_kv_clear(kv);
        return r;
}

/* ---- client and requests ---- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

static void curl_init(void) {
        curl_init_result = curl_global_init(CURL_GLOBAL_ALL);
}

int etcd_new(const char *endpoints, struct etcd **ret) {
        pthread_once(&curl_once, curl_init);
        if (curl_init_result != CURLE_OK)
                return -ENOMEM;
        if (!endpoints)
                return -EINVAL;
        struct etcd *e = calloc(1, sizeof(*e));
        if (!e)
                return -ENOMEM;
        pthread_mutex_init(&e->lock, NULL);
        pthread_mutex_init(&e->auth_lock, NULL);
        int r = -ENOMEM;
        const char *p = endpoints;
        while (*p) {
                const char *comma = strchrnul(p, ',');
                const char *a = p, *b = comma;
                while (a < b && (*a == ' ' || *a == '\t'))
                        a++;
                while (b > a && (b[-1] == ' ' || b[-1] == '\t' || b[-1] == '/'))
                        b--;
                p = *comma ? comma + 1 : comma;
                if (a == b)
                        continue;
                size_t n = (size_t)(b - a);
                bool http = n > 7 && !strncmp(a, "http://", 7);
                if (n > MAX_URL || !(http || (n > 8 && !strncmp(a, "https://", 8)))) {
                        r = -EINVAL;
                        goto fail;
                }
                char **urls = realloc(e->urls, (e->n_urls + 1) * sizeof(*urls));
                if (!urls)
                        goto fail;
                e->urls = urls;
                if (!(e->urls[e->n_urls] = strndup(a, n)))
                        goto fail;
                e->n_urls++;
        }
        if (!e->n_urls) {
                r = -EINVAL;
                goto fail;
        }
        *ret = e;
        return 0;
fail:
        etcd_free(e);
        return r;
}

void etcd_free(struct etcd *e) {
        if (!e)
                return;
        for (size_t i = 0; i < e->n_idle; i++)
                curl_easy_cleanup(e->idle[i]);
        for (size_t i = 0; i < e->n_urls; i++)
                free(e->urls[i]);
        free(e->urls);
        free(e->cacert);
        free(e->cert);
        free(e->key);
        free(e->user);
        if (e->password)
                explicit_bzero(e->password, strlen(e->password));
        free(e->password);
        if (e->token)
                explicit_bzero(e->token, strlen(e->token));
        free(e->token);
        pthread_mutex_destroy(&e->auth_lock);
        pthread_mutex_destroy(&e->lock);
        free(e);
}

static int set_str(char **dst, const char *src) {
        free(*dst);
        *dst = NULL;
        if (src && *src && !(*dst = strdup(src)))
                return -ENOMEM;
        return 0;
}

int etcd_set_tls(struct etcd *e, const char *cacert, const char *cert, const char *key) {
        if (!cert != !key)
                return -EINVAL;
        int r = set_str(&e->cacert, cacert);
        if (r == 0)
                r = set_str(&e->cert, cert);
        if (r == 0)
                r = set_str(&e->key, key);
        return r;
}

int etcd_set_auth(struct etcd *e, const char *user, const char *password) {
        if (!user || !*user || !password)
                return -EINVAL;
        int r = set_str(&e->user, user);
        if (r == 0 && !(e->password = strdup(password)))
                r = -ENOMEM;
        return r;
}

/* Remember why a call failed, as printable ASCII (etcd's text is not trusted). */
static void set_error(struct etcd *e, const char *fmt, const char *what) {
        char tmp[sizeof(e->last_error)];
        snprintf(tmp, sizeof(tmp), fmt, what ? what : "");
        for (char *p = tmp; *p; p++)
                if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
                        *p = '?';
        pthread_mutex_lock(&e->lock);
        memcpy(e->last_error, tmp, sizeof(tmp));
        pthread_mutex_unlock(&e->lock);
}

/* The headers of a request now (with the current token), and the token's
 * generation in *gen. NULL on ENOMEM. */
static struct curl_slist *headers_now(struct etcd *e, bool with_token, uint64_t *gen) {
        /* no "Expect: 100-continue" round trip for larger bodies */
        struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
        if (!h || !curl_slist_append(h, "Expect:")) {
                curl_slist_free_all(h);
                return NULL;
        }
        char *auth = NULL;
        pthread_mutex_lock(&e->lock);
        *gen = e->token_gen;
        bool send = with_token && e->token;
        if (send && asprintf(&auth, "Authorization: %s", e->token) < 0)
                auth = NULL;
        bool failed = send && !auth;
        pthread_mutex_unlock(&e->lock);
        if (auth) {
                failed = !curl_slist_append(h, auth);
                explicit_bzero(auth, strlen(auth));
                free(auth);
        }
        if (failed) {
                curl_slist_free_all(h);
                return NULL;
        }
        return h;
}

static CURL *pool_get(struct etcd *e) {
        CURL *h = NULL;
        pthread_mutex_lock(&e->lock);
        if (e->n_idle)
                h = e->idle[--e->n_idle];
        pthread_mutex_unlock(&e->lock);
        return h ? h : curl_easy_init();
}

static void pool_put(struct etcd *e, CURL *h) {
        pthread_mutex_lock(&e->lock);
        if (e->n_idle < POOL_MAX) {
                e->idle[e->n_idle++] = h;
                h = NULL;
        }
        pthread_mutex_unlock(&e->lock);
        if (h)
                curl_easy_cleanup(h);
}

static int sockopt_cb(void *data, curl_socket_t fd, curlsocktype purpose) {
        (void)data;
        if (purpose == CURLSOCKTYPE_IPCXN) {
                int cnt = KEEPALIVE_CNT;
                setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
        }
        return CURL_SOCKOPT_OK;
}

static size_t buf_write_cb(char *p, size_t size, size_t n, void *data) {
        return buf_add(data, p, size * n) < 0 ? 0 : size * n;
}

/* Reset h (keeping its connections) for a POST of body to url + path with
 * headers hdr (which must outlive the transfer). The server's certificate
 * and host name are always verified. */
static void setup(struct etcd *e, CURL *h, const char *url, const char *path, const char *body,
                  struct curl_slist *hdr) {
        char full[MAX_URL + 64];
        snprintf(full, sizeof(full), "%s%s", url, path);
        curl_easy_reset(h);
        curl_easy_setopt(h, CURLOPT_URL, full);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
        if (e->cacert)
                curl_easy_setopt(h, CURLOPT_CAINFO, e->cacert);
        if (e->cert) {
                curl_easy_setopt(h, CURLOPT_SSLCERT, e->cert);
                curl_easy_setopt(h, CURLOPT_SSLKEY, e->key);
        }
        curl_easy_setopt(h, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
        curl_easy_setopt(h, CURLOPT_PROXY, "");
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_MS);
        curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
        curl_easy_setopt(h, CURLOPT_TCP_KEEPIDLE, (long)KEEPALIVE_IDLE_S);
        curl_easy_setopt(h, CURLOPT_TCP_KEEPINTVL, (long)KEEPALIVE_INTVL_S);
        curl_easy_setopt(h, CURLOPT_SOCKOPTFUNCTION, sockopt_cb);
}

static size_t discard_cb(char *p, size_t size, size_t n, void *data) {
        (void)p;
        (void)data;
        return size * n;
}

/* Send the stream's liveness probe: a linearizable read of one key on the
 * stream's endpoint, which needs a member that works and has a quorum. */
static void probe_start(struct etcd_watch *w) {
        setup(w->e, w->unary, w->e->urls[w->idx], "/v3/kv/range", w->probe_body, w->hdr);
        curl_easy_setopt(w->unary, CURLOPT_TIMEOUT_MS, (long)CALL_MS);
        curl_easy_setopt(w->unary, CURLOPT_WRITEFUNCTION, discard_cb);
        curl_multi_add_handle(w->multi, w->unary);
}

/* Run h to its end: with curl_easy_perform, or for a watch on its multi
 * handle, where etcd_watch_stop cuts it short (CURLE_ABORTED_BY_CALLBACK).
 * The stream (h == w->stream) has no time limit, but after PROBE_MS of
 * silence a probe goes out; one that fails ends the stream with
 * CURLE_OPERATION_TIMEDOUT (a hung member, or one cut off from its peers). */
static CURLcode perform(struct etcd_watch *w, CURL *h) {
        if (!w)
                return curl_easy_perform(h);
        CURLcode rc = CURLE_ABORTED_BY_CALLBACK;
        bool stream = h == w->stream, probing = false;
        if (curl_multi_add_handle(w->multi, h) != CURLM_OK)
                return CURLE_OUT_OF_MEMORY;
        w->heard = now_ms();
        while (!atomic_load(&w->stop)) {
                int running, left;
                bool done = false;
                if (curl_multi_perform(w->multi, &running) != CURLM_OK) {
                        rc = CURLE_RECV_ERROR;
                        break;
                }
                CURLMsg *m;
                while ((m = curl_multi_info_read(w->multi, &left))) {
                        CURLcode res = m->data.result;
                        if (m->msg != CURLMSG_DONE)
                                continue;
                        if (m->easy_handle == h) {
                                rc = res;
                                done = true;
                        } else if (probing && m->easy_handle == w->unary) {
                                long status = 0;
                                curl_easy_getinfo(w->unary, CURLINFO_RESPONSE_CODE, &status);
                                curl_multi_remove_handle(w->multi, w->unary);
                                probing = false;
                                w->heard = now_ms();
                                if (res == CURLE_OK && (status == 401 || status == 403)) {
                                        w->end = WATCH_AUTH; /* the token, not the member */
                                        rc = CURLE_OK;
                                        done = true;
                                } else if (res != CURLE_OK || status != 200) {
                                        rc = CURLE_OPERATION_TIMEDOUT;
                                        done = true;
                                }
                        }
                }
                if (done)
                        break;
                int64_t wait = 1000;
                if (stream && !probing) {
                        int64_t quiet = now_ms() - w->heard;
                        if (quiet >= PROBE_MS) {
                                probe_start(w);
                                probing = true;
                                continue;
                        }
                        wait = PROBE_MS - quiet;
                }
                curl_multi_poll(w->multi, NULL, 0, (int)wait, NULL);
        }
        if (probing)
                curl_multi_remove_handle(w->multi, w->unary);
        curl_multi_remove_handle(w->multi, h);
        return rc;
}

/* Endpoint idx did not answer: the next call starts with the one after it
 * (unless another call found a good one meanwhile). */
static void endpoint_failed(struct etcd *e, size_t idx) {
        size_t expect = idx;
        atomic_compare_exchange_strong(&e->cur, &expect, (idx + 1) % e->n_urls);
}

static int curl_error(CURLcode c) {
        switch (c) {
        case CURLE_OUT_OF_MEMORY:
                return -ENOMEM;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_CONNECT:
        case CURLE_OPERATION_TIMEDOUT:
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
        case CURLE_PARTIAL_FILE:
        case CURLE_SSL_CONNECT_ERROR:
                return -ENOTCONN;
        case CURLE_PEER_FAILED_VERIFICATION: /* the member is not who it should be */
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_INVALIDCERTSTATUS:
                return -EPROTO;
        default:
                return -EIO;
        }
}

enum {
        CALL_LEASE = 1,         /* "lease not found" in an error answer is -ENOENT */
        CALL_STREAM = 2,        /* a streaming call: the answer is {"result":{...}} */
        CALL_NOAUTH = 4,        /* authenticate itself: no re-authentication */
};

/* The message of an error answer: {"error":"..","message":"..","code":N}
 * from unary calls, {"error":{"message":"..",...}} from streaming ones. */
static const char *error_message(const cJSON *j) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, "message");
        if (cJSON_IsString(x))
                return x->valuestring;
        x = cJSON_GetObjectItemCaseSensitive(j, "error");
        if (cJSON_IsString(x))
                return x->valuestring;
        if (cJSON_IsObject(x))
                return error_message(x);
        return NULL;
}

/* What an error answer's message says about authentication: -EKEYEXPIRED
 * for a token etcd no longer takes (renew it), -EACCES for a refusal (no
 * or wrong credentials, no permission), 0 for anything else. */
static int auth_error(long status, const char *msg) {
        if (status == 401 || (msg && strstr(msg, "invalid auth token")))
                return -EKEYEXPIRED;
        if (msg && (strstr(msg, "permission denied") || strstr(msg, "user name is empty") ||
                    strstr(msg, "authentication failed") || strstr(msg, "user name not found")))
                return -EACCES;
        return status == 403 ? -EACCES : 0;
}

/* Judge an answer: 0 with the JSON object in *ret, -EAGAIN when this member
 * cannot serve now (try another), or the error it stands for (the message
 * in e->last_error). */
static int parse_answer(struct etcd *e, long status, const struct buf *out, unsigned flags,
                        cJSON **ret) {
        cJSON *j = out->len ? cJSON_ParseWithLength(out->p, out->len) : NULL;
        if (j && (flags & CALL_STREAM) && status == 200) {
                cJSON *res = cJSON_DetachItemFromObjectCaseSensitive(j, "result");
                if (cJSON_IsObject(res)) {
                        cJSON_Delete(j);
                        j = res;
                } else {
                        cJSON_Delete(res);
                        status = 500;   /* a stream error: {"error":{...}} */
                }
        }
        if (status != 200) {
                const char *msg = j ? error_message(j) : NULL;
                int r = status == 503 ? -EAGAIN : -EIO;
                if ((flags & CALL_LEASE) && msg && strstr(msg, "lease not found"))
                        r = -ENOENT;
                int a = auth_error(status, msg);
                if (a)
                        r = a;
                char what[64];
                snprintf(what, sizeof(what), "HTTP %ld", status);
                set_error(e, "etcd answered: %s", msg ? msg : what);
                cJSON_Delete(j);
                return r;
        }
        if (!cJSON_IsObject(j)) {
                cJSON_Delete(j);
                set_error(e, "etcd's answer is not a JSON object%s", NULL);
                return -EIO;
        }
        *ret = j;
        return 0;
}

/* POST body to path: each endpoint in turn from the one that answered last,
 * within CALL_MS in all. 0 with the answer in *ret (free with cJSON_Delete).
 * With w (on its thread) the call runs on w's handle and stops with
 * -ECANCELED when the watch is stopped. */
static int call_once(struct etcd *e, struct etcd_watch *w, const char *path, const char *body,
                     unsigned flags, cJSON **ret, uint64_t *gen) {
        /* etcd refuses an authenticate call that carries a stale token */
        struct curl_slist *hdr = headers_now(e, !(flags & CALL_NOAUTH), gen);
        CURL *h = !hdr ? NULL : w ? w->unary : pool_get(e);
        if (!h) {
                curl_slist_free_all(hdr);
                return -ENOMEM;
        }
        char errbuf[CURL_ERROR_SIZE];
        bool tls_failed = false, cert_refused = false;
        struct buf out = { 0 };
        int64_t deadline = now_ms() + CALL_MS;
        size_t first = atomic_load(&e->cur);
        int r = -ENOTCONN;
        for (size_t i = 0; i < e->n_urls; i++) {
                size_t idx = (first + i) % e->n_urls;
                int64_t left = deadline - now_ms();
                if (left <= 0)
                        break;
                out.len = 0;
                errbuf[0] = '\0';
                setup(e, h, e->urls[idx], path, body, hdr);
                curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
                curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)left);
                curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, buf_write_cb);
                curl_easy_setopt(h, CURLOPT_WRITEDATA, &out);
                CURLcode c = perform(w, h);
                curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
                if (w && atomic_load(&w->stop)) {
                        r = -ECANCELED;
                        break;
                }
                if (c != CURLE_OK) {
                        char what[MAX_URL + CURL_ERROR_SIZE + 8];
                        snprintf(what, sizeof(what), "%s: %s", e->urls[idx],
                                 errbuf[0] ? errbuf : curl_easy_strerror(c));
                        set_error(e, "%s", what);
                        r = curl_error(c);
                        if (r == -EPROTO) /* another member may be genuine */
                                tls_failed = true;
                        else if (r == -ENOTCONN && strstr(errbuf, "alert") &&
                                 strstr(errbuf, "certificate"))
                                cert_refused = true; /* it answered: not with us */
                        else if (r != -ENOTCONN)
                                break;
                        r = -ENOTCONN;
                        endpoint_failed(e, idx);
                        continue;
                }
                long status = 0;
                curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
                r = parse_answer(e, status, &out, flags, ret);
                if (r == -EAGAIN) {
                        r = -ENOTCONN;
                        endpoint_failed(e, idx);
                        continue;
                }
                atomic_store(&e->cur, idx);
                break;
        }
        if (r == -ENOTCONN && tls_failed)
                r = -EPROTO; /* no member answered, and one could not be trusted */
        else if (r == -ENOTCONN && cert_refused)
                r = -EKEYREJECTED; /* no member answered, and one refused our certificate */
        free(out.p);
        if (!w)
                pool_put(e, h);
        curl_slist_free_all(hdr);
        return r;
}

/* Ask etcd for a token for e->user. 0 (also when etcd has authentication
 * off: then no token is sent), -EACCES for wrong credentials, or the
 * call's error. Called with auth_lock held. */
static int authenticate(struct etcd *e) {
        cJSON *o = cJSON_CreateObject(), *j = NULL;
        char *body = NULL;
        if (o && cJSON_AddStringToObject(o, "name", e->user) &&
            cJSON_AddStringToObject(o, "password", e->password))
                body = cJSON_PrintUnformatted(o);
        cJSON *pw = cJSON_GetObjectItemCaseSensitive(o, "password");
        if (cJSON_IsString(pw))
                explicit_bzero(pw->valuestring, strlen(pw->valuestring));
        cJSON_Delete(o);
        if (!body)
                return -ENOMEM;
        uint64_t gen;
        int r = call_once(e, NULL, "/v3/auth/authenticate", body, CALL_NOAUTH, &j, &gen);
        explicit_bzero(body, strlen(body));
        free(body);
        char *token = NULL;
        if (r == -EIO) {
                char msg[sizeof(e->last_error)];
                pthread_mutex_lock(&e->lock);
                memcpy(msg, e->last_error, sizeof(msg));
                pthread_mutex_unlock(&e->lock);
                if (strstr(msg, "authentication is not enabled"))
                        r = 0; /* nothing to send */
        } else if (r == 0) {
                const char *t = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "token"));
                size_t n = t ? strlen(t) : 0;
                for (size_t i = 0; i < n; i++) /* it goes into a header line */
                        if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] > 0x7e)
                                n = 0;
                if (n == 0 || n > MAX_TOKEN) {
                        set_error(e, "etcd's authenticate answer holds no usable token%s", NULL);
                        r = -EIO;
                } else if (!(token = strdup(t))) {
                        r = -ENOMEM;
                }
                if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(j, "token")))
                        explicit_bzero(cJSON_GetObjectItemCaseSensitive(j, "token")->valuestring, n);
        }
        cJSON_Delete(j);
        if (r < 0)
                return r;
        pthread_mutex_lock(&e->lock);
        if (e->token)
                explicit_bzero(e->token, strlen(e->token));
        free(e->token);
        e->token = token;
        e->token_gen++;
        pthread_mutex_unlock(&e->lock);
        return 0;
}

/* The token of generation gen was refused: get a new one, unless another
 * thread already did. */
static int reauth(struct etcd *e, uint64_t gen) {
        pthread_mutex_lock(&e->auth_lock);
        pthread_mutex_lock(&e->lock);
        bool renewed = e->token_gen != gen;
        pthread_mutex_unlock(&e->lock);
        int r = renewed ? 0 : authenticate(e);
        pthread_mutex_unlock(&e->auth_lock);
        if (!renewed && r == 0 && gen != 0)
                log_msg(LOG_NOTICE, "etcd: authenticated again as %s (the token had expired)",
                        e->user);
        return r;
}

/* call_once, and again with a new token when etcd refused the token. */
static int call(struct etcd *e, struct etcd_watch *w, const char *path, const char *body,
                unsigned flags, cJSON **ret) {
        uint64_t gen;
        if (e->user && !(flags & CALL_NOAUTH)) {
                pthread_mutex_lock(&e->lock);
                gen = e->token_gen;
                pthread_mutex_unlock(&e->lock);
                int a = gen == 0 ? reauth(e, 0) : 0; /* the first token */
                if (a < 0)
                        return a;
        }
        int r = call_once(e, w, path, body, flags, ret, &gen);
        /* twice at most: the first may only pick up a token another thread
         * got meanwhile (which may be refused too); the second then
         * authenticates itself */
        for (int k = 0; k < 2 && r == -EKEYEXPIRED && e->user && !(flags & CALL_NOAUTH); k++) {
                int a = reauth(e, gen);
                r = a < 0 ? a : call_once(e, w, path, body, flags, ret, &gen);
        }
        return r == -EKEYEXPIRED ? -EACCES : r;
}

/* ---- leases ---- */

int etcd_lease_grant(struct etcd *e, int64_t ttl_s, int64_t *ret_id, int64_t *ret_ttl) {
        char body[64];
        snprintf(body, sizeof(body), "{\"TTL\":\"%lld\"}", (long long)ttl_s);
        cJSON *j;
        int r = call(e, NULL, "/v3/lease/grant", body, CALL_LEASE, &j);
        if (r < 0)
                return r;
        int64_t id, ttl;
        const cJSON *err = cJSON_GetObjectItemCaseSensitive(j, "error");
        if (json_int(j, "ID", &id) < 0 || json_int(j, "TTL", &ttl) < 0 || id <= 0 ||
            (cJSON_IsString(err) && *err->valuestring))
                r = -EIO;
        cJSON_Delete(j);
        if (r < 0)
                return r;
        *ret_id = id;
        if (ret_ttl)
                *ret_ttl = ttl;
        return 0;
}

int etcd_lease_keepalive(struct etcd *e, int64_t id, int64_t *ret_ttl) {
        char body[64];
        snprintf(body, sizeof(body), "{\"ID\":\"%lld\"}", (long long)id);
        cJSON *j;
        int r = call(e, NULL, "/v3/lease/keepalive", body, CALL_LEASE | CALL_STREAM, &j);
        if (r < 0)
                return r;
        int64_t ttl;
        if (json_int(j, "TTL", &ttl) < 0)
                r = -EIO;
        else if (ttl <= 0)      /* etcd answers an unknown lease with TTL 0 */
                r = -ENOENT;
        cJSON_Delete(j);
        if (r >= 0 && ret_ttl)
                *ret_ttl = ttl;
        return r;
}

int etcd_lease_revoke(struct etcd *e, int64_t id) {
        char body[64];
        snprintf(body, sizeof(body), "{\"ID\":\"%lld\"}", (long long)id);
        cJSON *j;
        int r = call(e, NULL, "/v3/lease/revoke", body, CALL_LEASE, &j);
        if (r >= 0)
                cJSON_Delete(j);
        return r;
}

/* ---- transactions ---- */

/* Run one txn: if key's create revision == rev, then success (a JSON
 * request op), else failure (or nothing). 0 with the answer in *ret and
 * *ret_ok telling which branch ran. */
static int txn(struct etcd *e, const char *key64, int64_t rev, const char *success,
               const char *failure, unsigned flags, bool *ret_ok, cJSON **ret) {
        char *body;
        if (asprintf(&body,
                     "{\"compare\":[{\"key\":\"%s\",\"target\":\"CREATE\",\"result\":\"EQUAL\","
                     "\"create_revision\":\"%lld\"}],\"success\":[%s],\"failure\":[%s]}",
                     key64, (long long)rev, success, failure ? failure : "") < 0)
                return -ENOMEM;
        cJSON *j;
        int r = call(e, NULL, "/v3/kv/txn", body, flags, &j);
        free(body);
        if (r < 0)
                return r;
        *ret_ok = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "succeeded"));
        *ret = j;
        return 0;
}

static char *put_op(const char *key64, const void *value, size_t value_len, int64_t lease) {
        char *v64 = etcd_b64_encode(value, value_len), *op;
        if (!v64)
                return NULL;
        if (asprintf(&op, "{\"request_put\":{\"key\":\"%s\",\"value\":\"%s\",\"lease\":\"%lld\"}}",
                     key64, v64, (long long)lease) < 0)
                op = NULL;
        free(v64);
        return op;
}

int etcd_create(struct etcd *e, const char *key, const void *value, size_t value_len,
                int64_t lease, int64_t *ret_rev, struct etcd_kv *ret_holder) {
        etcd_kv_clear(ret_holder);
        char *key64 = b64_str(key), *put = NULL, *get = NULL;
        cJSON *j = NULL;
        bool ok;
        int r = -ENOMEM;
        if (!key64 || !(put = put_op(key64, value, value_len, lease)) ||
            asprintf(&get, "{\"request_range\":{\"key\":\"%s\"}}", key64) < 0) {
                get = NULL;
                goto out;
        }
        r = txn(e, key64, 0, put, get, CALL_LEASE, &ok, &j);
        if (r < 0)
                goto out;
        if (ok) {
                /* the txn's revision is the put's, hence the key's create revision */
                int64_t rev = header_rev(j);
                if (rev <= 0) {
                        r = -EIO;
                        goto out;
                }
                if (ret_rev)
                        *ret_rev = rev;
                goto out;
        }
        r = -EEXIST;
        if (ret_holder) {
                const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, "responses");
                x = cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(x, 0), "response_range");
                x = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(x, "kvs"), 0);
                int pr = parse_kv(x, ret_holder);
                if (pr < 0)
                        r = pr;
        }
out:
        cJSON_Delete(j);
        free(key64);
        free(put);
        free(get);
        return r;
}

int etcd_update(struct etcd *e, const char *key, const void *value, size_t value_len,
                int64_t lease, int64_t rev) {
        if (rev <= 0)
                return -EINVAL;
        char *key64 = b64_str(key), *put = NULL;
        cJSON *j = NULL;
        bool ok = false;
        int r = -ENOMEM;
        if (key64 && (put = put_op(key64, value, value_len, lease)))
                r = txn(e, key64, rev, put, NULL, CALL_LEASE, &ok, &j);
        if (r >= 0 && !ok)
                r = -ESTALE;
        cJSON_Delete(j);
        free(key64);
        free(put);
        return r;
}

int etcd_delete_if(struct etcd *e, const char *key, int64_t rev) {
        if (rev <= 0)
                return -EINVAL;
        char *key64 = b64_str(key), *del = NULL;
        cJSON *j = NULL;
        bool ok = false;
        int r = -ENOMEM;
        if (key64 && asprintf(&del, "{\"request_delete_range\":{\"key\":\"%s\"}}", key64) >= 0)
                r = txn(e, key64, rev, del, NULL, 0, &ok, &j);
        else
                del = NULL;
        if (r >= 0 && !ok)
                r = -ESTALE;
        cJSON_Delete(j);
        free(key64);
        free(del);
        return r;
}

/* etcd_range_prefix, with w: on the watch's thread and handle. */
static int range_prefix(struct etcd *e, struct etcd_watch *w, const char *prefix,
                        struct etcd_kv **ret, size_t *ret_n, int64_t *ret_rev) {
        char *key64 = NULL, *end64 = NULL, *body = NULL;
        cJSON *j = NULL;
        struct etcd_kv *kvs = NULL;
        size_t n = 0;
        int r = prefix_range64(prefix, &key64, &end64);
        if (r < 0)
                return r;
        if (asprintf(&body, "{\"key\":\"%s\",\"range_end\":\"%s\"}", key64, end64) < 0) {
                body = NULL;
                r = -ENOMEM;
                goto out;
        }
        r = call(e, w, "/v3/kv/range", body, 0, &j);
        if (r < 0)
                goto out;
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "kvs"), *kv;
        size_t count = (size_t)cJSON_GetArraySize(arr);
        if (count && !(kvs = calloc(count, sizeof(*kvs)))) {
                r = -ENOMEM;
                goto out;
        }
        cJSON_ArrayForEach(kv, arr) {
                if ((r = parse_kv(kv, &kvs[n])) < 0)
                        goto out;
                n++;
        }
        *ret = kvs;
        *ret_n = n;
        if (ret_rev)
                *ret_rev = header_rev(j);
        kvs = NULL;
        n = 0;
out:
        etcd_kvs_free(kvs, n);
        cJSON_Delete(j);
        free(key64);
        free(end64);
        free(body);
        return r;
}

int etcd_range_prefix(struct etcd *e, const char *prefix, struct etcd_kv **ret, size_t *ret_n,
                      int64_t *ret_rev) {
        return range_prefix(e, NULL, prefix, ret, ret_n, ret_rev);
}

/* ---- the start-up check ---- */

static void copy_error(struct etcd *e, char *why, size_t whylen) {
        pthread_mutex_lock(&e->lock);
        snprintf(why, whylen, "%s", e->last_error[0] ? e->last_error : "no details");
        pthread_mutex_unlock(&e->lock);
}

int etcd_check(struct etcd *e, const char *prefix, char *why, size_t whylen) {
        char *key64 = NULL, *end64 = NULL, *body = NULL, *probe64 = NULL, *probe = NULL;
        cJSON *j = NULL;
        int r = 0;
        snprintf(why, whylen, "out of memory");
        if (e->user) {
                pthread_mutex_lock(&e->auth_lock);
                r = authenticate(e);
                pthread_mutex_unlock(&e->auth_lock);
                if (r < 0) {
                        copy_error(e, why, whylen);
                        return r;
                }
        }
        /* read: a count of the prefix */
        if ((r = prefix_range64(prefix, &key64, &end64)) < 0)
                return r;
        r = -ENOMEM;
        if (asprintf(&body, "{\"key\":\"%s\",\"range_end\":\"%s\",\"count_only\":true}",
                     key64, end64) < 0) {
                body = NULL;
                goto out;
        }
        r = call(e, NULL, "/v3/kv/range", body, 0, &j);
        cJSON_Delete(j);
        j = NULL;
        if (r < 0)
                goto fail;
        /* write: a transaction whose comparison never holds (a version is
         * never below 0), so its put never runs, but etcd checks the
         * permission for it */
        r = -ENOMEM;
        if (asprintf(&probe, "%s.lockfs/check", prefix) < 0) {
                probe = NULL;
                goto out;
        }
        if (!(probe64 = b64_str(probe)))
                goto out;
        free(body);
        if (asprintf(&body,
                     "{\"compare\":[{\"key\":\"%s\",\"target\":\"VERSION\",\"result\":\"LESS\","
                     "\"version\":\"0\"}],\"success\":[{\"request_delete_range\":{\"key\":\"%s\"}}],"
                     "\"failure\":[]}", probe64, probe64) < 0) {
                body = NULL;
                goto out;
        }
        r = call(e, NULL, "/v3/kv/txn", body, 0, &j);
        cJSON_Delete(j);
        if (r < 0)
                goto fail;
        why[0] = '\0';
        goto out;
fail:
        copy_error(e, why, whylen);
out:
        free(key64);
        free(end64);
        free(body);
        free(probe64);
        free(probe);
        return r;
}

/* ---- watch ---- */

static void emit(struct etcd_watch *w, enum etcd_watch_event ev, const struct etcd_kv *kv) {
        w->fn(w->ctx, ev, kv);
}

static void go_down(struct etcd_watch *w) {
        if (!w->down) {
                w->down = true;
                emit(w, ETCD_WATCH_DOWN, NULL);
        }
}

static void go_up(struct etcd_watch *w) {
        if (w->down) {
                w->down = false;
                emit(w, ETCD_WATCH_UP, NULL);
        }
}

/* Deliver a listing of the prefix and continue after its revision. */
static int sync_listing(struct etcd_watch *w) {
        struct etcd_kv *kvs = NULL;
        size_t n = 0;
        int64_t rev = 0;
        int r = range_prefix(w->e, w, w->prefix, &kvs, &n, &rev);
        if (r < 0)
                return r;
        if (rev <= 0) {
                etcd_kvs_free(kvs, n);
                return -EIO;
        }
        go_up(w);
        emit(w, ETCD_WATCH_SYNC_BEGIN, NULL);
        for (size_t i = 0; i < n; i++)
                emit(w, ETCD_WATCH_PUT, &kvs[i]);
        struct etcd_kv end = { .key = (char *)"", .value = (char *)"", .mod_revision = rev };
        emit(w, ETCD_WATCH_SYNC_END, &end);
        etcd_kvs_free(kvs, n);
        w->next_rev = rev + 1;
        w->need_sync = false;
        return 0;
}

/* Handle one WatchResponse wrapper {"result":{...}}; false ends the stream
 * (w->end says why). */
static bool watch_message(struct etcd_watch *w, const cJSON *root) {
        const cJSON *res = cJSON_GetObjectItemCaseSensitive(root, "result");
        if (!cJSON_IsObject(res)) { /* {"error":...} or garbage */
                const cJSON *err = cJSON_GetObjectItemCaseSensitive(root, "error");
                const char *msg = err ? error_message(err) : NULL;
                const cJSON *code = cJSON_GetObjectItemCaseSensitive(err, "http_code");
                if (auth_error(cJSON_IsNumber(code) ? (long)code->valueint : 0, msg))
                        w->end = WATCH_AUTH;
                if (msg)
                        set_error(w->e, "etcd ended the watch: %s", msg);
                return false;
        }
        /* a watch etcd refused comes "created" and "canceled" at once: not up */
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, "created")) &&
            !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, "canceled"))) {
                atomic_store(&w->e->cur, w->idx);
                go_up(w);
        }
        int64_t compact;
        if (json_int(res, "compact_revision", &compact) < 0)
                return false;
        if (compact > 0) {
                w->end = WATCH_COMPACTED;
                return false;
        }
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, "canceled"))) {
                /* a watch etcd did not allow (cancel_reason says why) */
                const char *why =
                        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(res, "cancel_reason"));
                if (auth_error(0, why))
                        w->end = WATCH_AUTH;
                if (why)
                        set_error(w->e, "etcd cancelled the watch: %s", why);
                return false;
        }
        /* all events of a revision come in one response: skip only those
         * before what was delivered when it arrived */
        int64_t from = w->next_rev;
        const cJSON *ev;
        bool ok = true;
        cJSON_ArrayForEach(ev, cJSON_GetObjectItemCaseSensitive(res, "events")) {
                /* "type" is absent for a PUT, the default (0) */
                const cJSON *t = cJSON_GetObjectItemCaseSensitive(ev, "type");
                const char *type = cJSON_GetStringValue(t);
                bool del = type && !strcmp(type, "DELETE");
                struct etcd_kv kv;
                if ((type && !del && strcmp(type, "PUT")) ||
                    parse_kv(cJSON_GetObjectItemCaseSensitive(ev, "kv"), &kv) < 0) {
                        ok = false;
                        break;
                }
                if (kv.mod_revision >= from) {
                        emit(w, del ? ETCD_WATCH_DELETE : ETCD_WATCH_PUT, &kv);
                        if (kv.mod_revision >= w->next_rev)
                                w->next_rev = kv.mod_revision + 1;
                }
                etcd_kv_clear(&kv);
        }
        return ok;
}

/* Scan new stream bytes for complete top-level JSON objects (braces
 * counted outside strings), handle each, and keep any partial one. */
static bool watch_scan(struct etcd_watch *w) {
        struct buf *b = &w->in;
        for (; w->pos < b->len; w->pos++) {
                char c = b->p[w->pos];
                if (w->depth == 0) {
                        if (c == '{') {
                                w->start = w->pos;
                                w->depth = 1;
                        } else if (c != ' ' && c != '\n' && c != '\r' && c != '\t') {
                                return false;
                        }
                } else if (w->in_str) {
                        if (w->esc)
                                w->esc = false;
                        else if (c == '\\')
                                w->esc = true;
                        else if (c == '"')
                                w->in_str = false;
                } else if (c == '"') {
                        w->in_str = true;
                } else if (c == '{' || c == '[') {
                        w->depth++;
                } else if ((c == '}' || c == ']') && --w->depth == 0) {
                        cJSON *j = cJSON_ParseWithLength(b->p + w->start, w->pos + 1 - w->start);
                        bool ok = j && watch_message(w, j);
                        cJSON_Delete(j);
                        if (!ok)
                                return false;
                }
        }
        size_t keep = w->depth ? w->start : b->len;
        memmove(b->p, b->p + keep, b->len - keep);
        b->len -= keep;
        w->pos -= keep;
        w->start = 0;
        return true;
}

static size_t watch_write_cb(char *p, size_t size, size_t n, void *data) {
        struct etcd_watch *w = data;
        if (!w->checked_status) {
                long status = 0;
                curl_easy_getinfo(w->stream, CURLINFO_RESPONSE_CODE, &status);
                w->checked_status = true;
                if (status == 401 || status == 403)
                        w->end = WATCH_AUTH;
                if (status != 200)
                        w->ending = true;
        }
        w->heard = now_ms();
        if (w->ending || buf_add(&w->in, p, size * n) < 0 || !watch_scan(w)) {
                w->ending = true;
                return 0;
        }
        return size * n;
}

/* Stream the prefix's changes from w->next_rev off endpoint idx until the
 * stream ends. */
static enum watch_end watch_stream(struct etcd_watch *w, size_t idx) {
        char *key64, *end64, *body;
        if (prefix_range64(w->prefix, &key64, &end64) < 0)
                return WATCH_BROKEN;
        enum watch_end res = WATCH_BROKEN;
        if (asprintf(&body,
                     "{\"create_request\":{\"key\":\"%s\",\"range_end\":\"%s\","
                     "\"start_revision\":\"%lld\"}}",
                     key64, end64, (long long)w->next_rev) < 0) {
                body = NULL;
                goto out;
        }
        if (!(w->hdr = headers_now(w->e, true, &w->hdr_gen)))
                goto out;
        w->idx = idx;
        w->end = WATCH_BROKEN;
        w->ending = w->checked_status = false;
        w->in.len = w->pos = w->start = 0;
        w->depth = 0;
        w->in_str = w->esc = false;
        setup(w->e, w->stream, w->e->urls[idx], "/v3/watch", body, w->hdr);
        curl_easy_setopt(w->stream, CURLOPT_WRITEFUNCTION, watch_write_cb);
        curl_easy_setopt(w->stream, CURLOPT_WRITEDATA, w);
        perform(w, w->stream);
        res = atomic_load(&w->stop) ? WATCH_STOPPED : w->end;
        curl_slist_free_all(w->hdr);
        w->hdr = NULL;
out:
        free(key64);
        free(end64);
        free(body);
        return res;
}

/* etcd refused the stream's token: true when there is a newer one to try
 * (another call's, or one got here: at most once per WATCH_REAUTH_MS, so
 * a real lack of permission cannot make a storm). */
static bool watch_reauth(struct etcd_watch *w) {
        if (!w->e->user)
                return false;
        pthread_mutex_lock(&w->e->lock);
        bool newer = w->e->token_gen != w->hdr_gen;
        pthread_mutex_unlock(&w->e->lock);
        if (newer) /* another call got one meanwhile: try that first */
                return true;
        if (w->reauth_ms && now_ms() - w->reauth_ms < WATCH_REAUTH_MS)
                return false;
        w->reauth_ms = now_ms();
        return reauth(w->e, w->hdr_gen) == 0;
}

static void *watch_main(void *data) {
        struct etcd_watch *w = data;
        while (!atomic_load(&w->stop)) {
                if (w->need_sync) {
                        int r = sync_listing(w);
                        if (r == -ECANCELED)
                                break;
                        if (r < 0) {
                                go_down(w);
                                curl_multi_poll(w->multi, NULL, 0, RETRY_MS, NULL);
                                continue;
                        }
                }
                size_t first = atomic_load(&w->e->cur);
                for (size_t i = 0; i < w->e->n_urls && !w->need_sync; i++) {
                        size_t idx = (first + i) % w->e->n_urls;
                        enum watch_end end = watch_stream(w, idx);
                        for (int k = 0; k < 2 && end == WATCH_AUTH && watch_reauth(w); k++)
                                end = watch_stream(w, idx);
                        if (end == WATCH_STOPPED)
                                return NULL;
                        if (end == WATCH_COMPACTED) {
                                w->need_sync = true;
                        } else if (end == WATCH_AUTH) {
                                go_down(w); /* the member answers: refused, not failed */
                        } else {
                                endpoint_failed(w->e, idx);
                                go_down(w);
                        }
                }
                if (!w->need_sync)
                        curl_multi_poll(w->multi, NULL, 0, RETRY_MS, NULL);
        }
        return NULL;
}

int etcd_watch_start(struct etcd *e, const char *prefix, int64_t start_rev, etcd_watch_fn fn,
                     void *ctx, struct etcd_watch **ret) {
        if (!prefix || !fn || start_rev < 0)
                return -EINVAL;
        struct etcd_watch *w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        w->e = e;
        w->fn = fn;
        w->ctx = ctx;
        w->next_rev = start_rev;
        w->need_sync = start_rev == 0;
        atomic_init(&w->stop, false);
        int r = -ENOMEM;
        char *key64 = NULL, *end64 = NULL;
        if (!(w->prefix = strdup(prefix)) || prefix_range64(prefix, &key64, &end64) < 0 ||
            asprintf(&w->probe_body, "{\"key\":\"%s\",\"count_only\":true}", key64) < 0)
                w->probe_body = NULL;
        free(key64);
        free(end64);
        if (!w->probe_body || !(w->multi = curl_multi_init()) || !(w->stream = curl_easy_init()) ||
            !(w->unary = curl_easy_init()))
                goto fail;
        r = -pthread_create(&w->thread, NULL, watch_main, w);
        if (r < 0)
                goto fail;
        *ret = w;
        return 0;
fail:
        curl_easy_cleanup(w->stream);
        curl_easy_cleanup(w->unary);
        curl_multi_cleanup(w->multi);
        free(w->probe_body);
        free(w->prefix);
        free(w);
        return r;
}

void etcd_watch_stop(struct etcd_watch *w) {
        if (!w)
                return;
        atomic_store(&w->stop, true);
        curl_multi_wakeup(w->multi);
        pthread_join(w->thread, NULL);
        curl_easy_cleanup(w->stream);
        curl_easy_cleanup(w->unary);
        curl_multi_cleanup(w->multi);
        free(w->in.p);
        free(w->probe_body);
        free(w->prefix);
        free(w);
}
