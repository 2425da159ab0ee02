/* SPDX-License-Identifier: MIT */
/* The etcd client itself (etcd.h, etcd_internal.h): its endpoints and TLS
 * and authentication settings, a pool of curl handles, and one gateway
 * call: each endpoint in turn, the answer judged, the token renewed when
 * etcd refuses it. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "buf.h"
#include "clock.h"
#include "etcd_internal.h"
#include "log.h"

#define CONNECT_MS 1000         /* per connection attempt */
#define KEEPALIVE_IDLE_S 2      /* TCP keep-alive: a dead peer is noticed after */
#define KEEPALIVE_INTVL_S 1     /* IDLE + CNT * INTVL seconds of silence */
#define KEEPALIVE_CNT 3
#define MAX_TOKEN 4096          /* of an auth token (it goes into a header) */
#define TRY_NEXT 1              /* try_endpoint: no answer there, try the next one */

/* ---- the client ---- */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_result;

static void curl_init(void) {
        curl_init_result = curl_global_init(CURL_GLOBAL_ALL);
}

/* Add the base URL a[0..n) to e: 0, -EINVAL (too long, not http(s)://),
 * -ENOMEM. */
static int add_endpoint(struct etcd *e, const char *a, size_t n) {
        bool http = n > 7 && !strncmp(a, "http://", 7);
        if (n > MAX_URL || !(http || (n > 8 && !strncmp(a, "https://", 8))))
                return -EINVAL;
        char **urls = realloc(e->urls, (e->n_urls + 1) * sizeof(*urls));
        if (!urls)
                return -ENOMEM;
        e->urls = urls;
        if (!(e->urls[e->n_urls] = strndup(a, n)))
                return -ENOMEM;
        e->n_urls++;
        return 0;
}

/* Add every comma-separated URL of endpoints (blanks around it and
 * trailing slashes dropped, empty items skipped). */
static int add_endpoints(struct etcd *e, const char *endpoints) {
        const char *p = endpoints;
        while (*p) {
                const char *comma = strchrnul(p, ',');
                const char *a = p, *b = comma;
                while (a < b && (*a == ' ' || *a == '\t'))
                        a++;
                while (b > a && (b[-1] == ' ' || b[-1] == '\t' || b[-1] == '/'))
                        b--;
                p = *comma ? comma + 1 : comma;
                int r = a == b ? 0 : add_endpoint(e, a, (size_t)(b - a));
                if (r < 0)
                        return r;
        }
        return e->n_urls ? 0 : -EINVAL;
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
        int r = add_endpoints(e, endpoints);
        if (r < 0) {
                etcd_free(e);
                return r;
        }
        *ret = e;
        return 0;
}

/* Free a secret, wiped first. */
static void free_secret(char *s) {
        if (s)
                explicit_bzero(s, strlen(s));
        free(s);
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
        free_secret(e->password);
        free_secret(e->token);
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

void client_set_error(struct etcd *e, const char *fmt, const char *what) {
        char tmp[sizeof(e->last_error)];
        snprintf(tmp, sizeof(tmp), fmt, what ? what : "");
        for (char *p = tmp; *p; p++)
                if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
                        *p = '?';
        pthread_mutex_lock(&e->lock);
        memcpy(e->last_error, tmp, sizeof(tmp));
        pthread_mutex_unlock(&e->lock);
}

/* ---- requests on the wire ---- */

struct curl_slist *client_headers(struct etcd *e, bool with_token, uint64_t *gen) {
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
                free_secret(auth);
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
        return buf_put(data, p, size * n) < 0 ? 0 : size * n;
}

void client_setup(struct etcd *e, CURL *h, const char *url, const char *path, const char *body,
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

void client_endpoint_failed(struct etcd *e, size_t idx) {
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

/* {"error":"..","message":"..","code":N} from unary calls,
 * {"error":{"message":"..",...}} from streaming ones. */
const char *client_error_message(const cJSON *j) {
        const cJSON *x = cJSON_GetObjectItemCaseSensitive(j, "message");
        if (cJSON_IsString(x))
                return x->valuestring;
        x = cJSON_GetObjectItemCaseSensitive(j, "error");
        if (cJSON_IsString(x))
                return x->valuestring;
        if (cJSON_IsObject(x))
                return client_error_message(x);
        return NULL;
}

int client_auth_error(long status, const char *msg) {
        if (status == 401 || (msg && strstr(msg, "invalid auth token")))
                return -EKEYEXPIRED;
        if (msg && (strstr(msg, "permission denied") || strstr(msg, "user name is empty") ||
                    strstr(msg, "authentication failed") || strstr(msg, "user name not found")))
                return -EACCES;
        return status == 403 ? -EACCES : 0;
}

/* The error an answer with HTTP status (not 200) and object j stands for
 * (the message in e->last_error); -EAGAIN when this member cannot serve
 * now (try another). */
static int answer_error(struct etcd *e, long status, const cJSON *j, unsigned flags) {
        const char *msg = j ? client_error_message(j) : NULL;
        int r = status == 503 ? -EAGAIN : -EIO;
        if ((flags & CALL_LEASE) && msg && strstr(msg, "lease not found"))
                r = -ENOENT;
        int a = client_auth_error(status, msg);
        if (a)
                r = a;
        char what[64];
        snprintf(what, sizeof(what), "HTTP %ld", status);
        client_set_error(e, "etcd answered: %s", msg ? msg : what);
        return r;
}

/* Judge an answer: 0 with the JSON object in *ret, -EAGAIN when this member
 * cannot serve now (try another), or the error it stands for (the message
 * in e->last_error). */
static int parse_answer(struct etcd *e, long status, const struct buf *out, unsigned flags,
                        cJSON **ret) {
        cJSON *j = out->len ? cJSON_ParseWithLength(out->data, out->len) : NULL;
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
                int r = answer_error(e, status, j, flags);
                cJSON_Delete(j);
                return r;
        }
        if (!cJSON_IsObject(j)) {
                cJSON_Delete(j);
                client_set_error(e, "etcd's answer is not a JSON object%s", NULL);
                return -EIO;
        }
        *ret = j;
        return 0;
}

/* ---- one call ---- */

/* What a call keeps across its endpoints. */
struct call_state {
        CURL *h;
        struct buf out;
        char errbuf[CURL_ERROR_SIZE];
        bool tls_failed;        /* a member's certificate failed verification */
        bool cert_refused;      /* a member refused our certificate */
};

/* The transfer to endpoint idx failed with c: TRY_NEXT for a member that
 * did not answer (TLS trouble noted in st), or the error ending the call. */
static int transfer_failed(struct etcd *e, struct call_state *st, size_t idx, CURLcode c) {
        char what[MAX_URL + CURL_ERROR_SIZE + 8];
        snprintf(what, sizeof(what), "%s: %s", e->urls[idx],
                 st->errbuf[0] ? st->errbuf : curl_easy_strerror(c));
        client_set_error(e, "%s", what);
        int r = curl_error(c);
        if (r == -EPROTO) /* another member may be genuine */
                st->tls_failed = true;
        else if (r == -ENOTCONN && strstr(st->errbuf, "alert") && strstr(st->errbuf, "certificate"))
                st->cert_refused = true; /* it answered: not with us */
        else if (r != -ENOTCONN)
                return r;
        client_endpoint_failed(e, idx);
        return TRY_NEXT;
}

/* Send body to path on endpoint idx, within left ms: 0 with the answer in
 * *ret, TRY_NEXT, -ECANCELED (run stopped), or the error ending the call. */
static int try_endpoint(struct etcd *e, struct etcd_runner *run, struct call_state *st,
                        size_t idx, const char *path, const char *body, struct curl_slist *hdr,
                        int64_t left, unsigned flags, cJSON **ret) {
        st->out.len = 0;
        st->errbuf[0] = '\0';
        client_setup(e, st->h, e->urls[idx], path, body, hdr);
        curl_easy_setopt(st->h, CURLOPT_ERRORBUFFER, st->errbuf);
        curl_easy_setopt(st->h, CURLOPT_TIMEOUT_MS, (long)left);
        curl_easy_setopt(st->h, CURLOPT_WRITEFUNCTION, buf_write_cb);
        curl_easy_setopt(st->h, CURLOPT_WRITEDATA, &st->out);
        CURLcode c = run ? run->perform(run, st->h) : curl_easy_perform(st->h);
        curl_easy_setopt(st->h, CURLOPT_ERRORBUFFER, NULL);
        if (run && atomic_load(run->stop))
                return -ECANCELED;
        if (c != CURLE_OK)
                return transfer_failed(e, st, idx, c);
        long status = 0;
        curl_easy_getinfo(st->h, CURLINFO_RESPONSE_CODE, &status);
        int r = parse_answer(e, status, &st->out, flags, ret);
        if (r == -EAGAIN) {
                client_endpoint_failed(e, idx);
                return TRY_NEXT;
        }
        atomic_store(&e->cur, idx);
        return r;
}

/* client_call without the renewal of a refused token (-EKEYEXPIRED then);
 * the generation of the token sent in *gen. */
static int call_once(struct etcd *e, struct etcd_runner *run, const char *path, const char *body,
                     unsigned flags, cJSON **ret, uint64_t *gen) {
        /* etcd refuses an authenticate call that carries a stale token */
        struct curl_slist *hdr = client_headers(e, !(flags & CALL_NOAUTH), gen);
        struct call_state st = { .h = !hdr ? NULL : run ? run->handle : pool_get(e) };
        if (!st.h) {
                curl_slist_free_all(hdr);
                return -ENOMEM;
        }
        int64_t deadline = clock_mono_ms() + CALL_MS;
        size_t first = atomic_load(&e->cur);
        int r = TRY_NEXT;
        for (size_t i = 0; i < e->n_urls && r == TRY_NEXT; i++) {
                int64_t left = deadline - clock_mono_ms();
                if (left <= 0)
                        break;
                r = try_endpoint(e, run, &st, (first + i) % e->n_urls, path, body, hdr, left,
                                 flags, ret);
        }
        if (r == TRY_NEXT) /* no member answered: did one fail the TLS check, or refuse us? */
                r = st.tls_failed ? -EPROTO : st.cert_refused ? -EKEYREJECTED : -ENOTCONN;
        buf_free(&st.out);
        if (!run)
                pool_put(e, st.h);
        curl_slist_free_all(hdr);
        return r;
}

/* ---- authentication ---- */

/* The usable token in an authenticate answer j, wiped there and copied
 * into *ret: 0, -EIO (none, or not fit for a header line), -ENOMEM. */
static int take_token(struct etcd *e, cJSON *j, char **ret) {
        cJSON *tok = cJSON_GetObjectItemCaseSensitive(j, "token");
        const char *t = cJSON_GetStringValue(tok);
        size_t n = t ? strlen(t) : 0;
        for (size_t i = 0; i < n; i++) /* it goes into a header line */
                if ((unsigned char)t[i] <= 0x20 || (unsigned char)t[i] > 0x7e)
                        n = 0;
        int r = 0;
        if (n == 0 || n > MAX_TOKEN) {
                client_set_error(e, "etcd's authenticate answer holds no usable token%s", NULL);
                r = -EIO;
        } else if (!(*ret = strdup(t))) {
                r = -ENOMEM;
        }
        if (cJSON_IsString(tok))
                explicit_bzero(tok->valuestring, n);
        return r;
}

/* The authenticate request's body (the password in it: free_secret it). */
static char *authenticate_body(struct etcd *e) {
        cJSON *o = cJSON_CreateObject();
        char *body = NULL;
        if (o && cJSON_AddStringToObject(o, "name", e->user) &&
            cJSON_AddStringToObject(o, "password", e->password))
                body = cJSON_PrintUnformatted(o);
        cJSON *pw = cJSON_GetObjectItemCaseSensitive(o, "password");
        if (cJSON_IsString(pw))
                explicit_bzero(pw->valuestring, strlen(pw->valuestring));
        cJSON_Delete(o);
        return body;
}

int client_authenticate(struct etcd *e) {
        char *body = authenticate_body(e), *token = NULL;
        if (!body)
                return -ENOMEM;
        cJSON *j = NULL;
        uint64_t gen;
        int r = call_once(e, NULL, "/v3/auth/authenticate", body, CALL_NOAUTH, &j, &gen);
        free_secret(body);
        if (r == -EIO) {
                char msg[sizeof(e->last_error)];
                pthread_mutex_lock(&e->lock);
                memcpy(msg, e->last_error, sizeof(msg));
                pthread_mutex_unlock(&e->lock);
                if (strstr(msg, "authentication is not enabled"))
                        r = 0; /* nothing to send */
        } else if (r == 0) {
                r = take_token(e, j, &token);
        }
        cJSON_Delete(j);
        if (r < 0)
                return r;
        pthread_mutex_lock(&e->lock);
        free_secret(e->token);
        e->token = token;
        e->token_gen++;
        pthread_mutex_unlock(&e->lock);
        return 0;
}

int client_reauth(struct etcd *e, uint64_t gen) {
        pthread_mutex_lock(&e->auth_lock);
        pthread_mutex_lock(&e->lock);
        bool renewed = e->token_gen != gen;
        pthread_mutex_unlock(&e->lock);
        int r = renewed ? 0 : client_authenticate(e);
        pthread_mutex_unlock(&e->auth_lock);
        if (!renewed && r == 0 && gen != 0)
                log_msg(LOG_NOTICE, "etcd: authenticated again as %s (the token had expired)",
                        e->user);
        return r;
}

int client_call(struct etcd *e, struct etcd_runner *run, const char *path, const char *body,
                unsigned flags, cJSON **ret) {
        uint64_t gen;
        if (e->user && !(flags & CALL_NOAUTH)) {
                pthread_mutex_lock(&e->lock);
                gen = e->token_gen;
                pthread_mutex_unlock(&e->lock);
                int a = gen == 0 ? client_reauth(e, 0) : 0; /* the first token */
                if (a < 0)
                        return a;
        }
        int r = call_once(e, run, path, body, flags, ret, &gen);
        /* twice at most: the first may only pick up a token another thread
         * got meanwhile (which may be refused too); the second then
         * authenticates itself */
        for (int k = 0; k < 2 && r == -EKEYEXPIRED && e->user && !(flags & CALL_NOAUTH); k++) {
                int a = client_reauth(e, gen);
                r = a < 0 ? a : call_once(e, run, path, body, flags, ret, &gen);
        }
        return r == -EKEYEXPIRED ? -EACCES : r;
}
