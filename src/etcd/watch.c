/* SPDX-License-Identifier: MIT */
/* The etcd client's prefix watch (etcd.h): a thread that streams
 * /v3/watch off one endpoint at a time, splits the stream into its JSON
 * messages, delivers their events, probes a silent member, and on any
 * break resumes (or lists the prefix anew when the history it needs was
 * compacted). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "clock.h"
#include "container_of.h"
#include "etcd_internal.h"
#include "json_scan.h"

#define RETRY_MS 200            /* pause between rounds over the endpoints */
#define PROBE_MS 3000           /* probe the member after this much silence */
#define WATCH_REAUTH_MS 1000    /* at most one re-authentication per */

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
        struct etcd_runner runner; /* the listings' calls: on unary, through perform */
        size_t idx;             /* the endpoint of the stream */
        char *probe_body;
        struct curl_slist *hdr; /* the stream's (and its probe's) headers */
        uint64_t hdr_gen;       /* the token generation in hdr */
        int64_t reauth_ms;      /* clock_mono_ms() of the watch's last re-authentication */
        int64_t heard;          /* clock_mono_ms() when the stream last showed life */
        int64_t next_rev;       /* first revision not delivered yet */
        bool need_sync, down;
        /* the stream now: its state, its bytes and their framer (the stream
         * is a sequence of JSON objects in pieces of any size) */
        enum watch_end end;
        bool ending, checked_status;
        struct buf in;
        struct json_frame scan;
};

static size_t discard_cb(char *p, size_t size, size_t n, void *data) {
        (void)p;
        (void)data;
        return size * n;
}

/* Send the stream's liveness probe: a linearizable read of one key on the
 * stream's endpoint, which needs a member that works and has a quorum. */
static void probe_start(struct etcd_watch *w) {
        client_setup(w->e, w->unary, w->e->urls[w->idx], "/v3/kv/range", w->probe_body, w->hdr);
        curl_easy_setopt(w->unary, CURLOPT_TIMEOUT_MS, (long)CALL_MS);
        curl_easy_setopt(w->unary, CURLOPT_WRITEFUNCTION, discard_cb);
        curl_multi_add_handle(w->multi, w->unary);
}

/* One transfer as perform runs it. */
struct transfer {
        CURL *h;
        bool stream;            /* h is the stream: probe after silence */
        bool probing;
        bool done;
        CURLcode rc;
};

/* The probe ended with res: a refused token ends the stream (WATCH_AUTH:
 * the token, not the member), any other failure ends it as broken. */
static void probe_done(struct etcd_watch *w, struct transfer *t, CURLcode res) {
        long status = 0;
        curl_easy_getinfo(w->unary, CURLINFO_RESPONSE_CODE, &status);
        curl_multi_remove_handle(w->multi, w->unary);
        t->probing = false;
        w->heard = clock_mono_ms();
        if (res == CURLE_OK && (status == 401 || status == 403)) {
                w->end = WATCH_AUTH;
                t->rc = CURLE_OK;
                t->done = true;
        } else if (res != CURLE_OK || status != 200) {
                t->rc = CURLE_OPERATION_TIMEDOUT;
                t->done = true;
        }
}

/* Take what curl finished: t's transfer, or its probe. */
static void read_finished(struct etcd_watch *w, struct transfer *t) {
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(w->multi, &left))) {
                CURLcode res = m->data.result;
                if (m->msg != CURLMSG_DONE)
                        continue;
                if (m->easy_handle == t->h) {
                        t->rc = res;
                        t->done = true;
                } else if (t->probing && m->easy_handle == w->unary) {
                        probe_done(w, t, res);
                }
        }
}

/* How long to wait for curl now, in ms; -1 after starting a probe (go
 * round at once). */
static int64_t poll_wait(struct etcd_watch *w, struct transfer *t) {
        if (!t->stream || t->probing)
                return 1000;
        int64_t quiet = clock_mono_ms() - w->heard;
        if (quiet < PROBE_MS)
                return PROBE_MS - quiet;
        probe_start(w);
        t->probing = true;
        return -1;
}

/* Run h to its end on w's multi handle, where etcd_watch_stop cuts it
 * short (CURLE_ABORTED_BY_CALLBACK). The stream (h == w->stream) has no
 * time limit, but after PROBE_MS of silence a probe goes out; one that
 * fails ends the stream with CURLE_OPERATION_TIMEDOUT (a hung member, or
 * one cut off from its peers). */
static CURLcode perform(struct etcd_watch *w, CURL *h) {
        struct transfer t = { .h = h, .stream = h == w->stream, .rc = CURLE_ABORTED_BY_CALLBACK };
        if (curl_multi_add_handle(w->multi, h) != CURLM_OK)
                return CURLE_OUT_OF_MEMORY;
        w->heard = clock_mono_ms();
        while (!atomic_load(&w->stop)) {
                int running;
                if (curl_multi_perform(w->multi, &running) != CURLM_OK) {
                        t.rc = CURLE_RECV_ERROR;
                        break;
                }
                read_finished(w, &t);
                if (t.done)
                        break;
                int64_t wait = poll_wait(w, &t);
                if (wait >= 0)
                        curl_multi_poll(w->multi, NULL, 0, (int)wait, NULL);
        }
        if (t.probing)
                curl_multi_remove_handle(w->multi, w->unary);
        curl_multi_remove_handle(w->multi, h);
        return t.rc;
}

/* struct etcd_runner's perform: the listing's calls, on the watch's thread. */
static CURLcode runner_perform(struct etcd_runner *run, CURL *h) {
        return perform(container_of(run, struct etcd_watch, runner), h);
}

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
        int r = requests_range_prefix(w->e, &w->runner, w->prefix, &kvs, &n, &rev);
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

/* A message without "result" ({"error":...} or garbage): it ends the
 * stream; false. */
static bool watch_error(struct etcd_watch *w, const cJSON *root) {
        const cJSON *err = cJSON_GetObjectItemCaseSensitive(root, "error");
        const char *msg = err ? client_error_message(err) : NULL;
        const cJSON *code = cJSON_GetObjectItemCaseSensitive(err, "http_code");
        if (client_auth_error(cJSON_IsNumber(code) ? (long)code->valueint : 0, msg))
                w->end = WATCH_AUTH;
        if (msg)
                client_set_error(w->e, "etcd ended the watch: %s", msg);
        return false;
}

/* What a WatchResponse says of the watch itself: true when the stream goes
 * on (w->end says why not). */
static bool watch_state(struct etcd_watch *w, const cJSON *res) {
        bool canceled = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, "canceled"));
        /* a watch etcd refused comes "created" and "canceled" at once: not up */
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, "created")) && !canceled) {
                atomic_store(&w->e->cur, w->idx);
                go_up(w);
        }
        int64_t compact;
        if (wire_int(res, "compact_revision", &compact) < 0)
                return false;
        if (compact > 0) {
                w->end = WATCH_COMPACTED;
                return false;
        }
        if (canceled) {
                /* a watch etcd did not allow (cancel_reason says why) */
                const char *why =
                        cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(res, "cancel_reason"));
                if (client_auth_error(0, why))
                        w->end = WATCH_AUTH;
                if (why)
                        client_set_error(w->e, "etcd cancelled the watch: %s", why);
                return false;
        }
        return true;
}

/* Deliver the events of a WatchResponse; false for one that is not what
 * etcd sends. All events of a revision come in one response: skip only
 * those before what was delivered when it arrived. */
static bool watch_events(struct etcd_watch *w, const cJSON *res) {
        int64_t from = w->next_rev;
        const cJSON *ev;
        cJSON_ArrayForEach(ev, cJSON_GetObjectItemCaseSensitive(res, "events")) {
                /* "type" is absent for a PUT, the default (0) */
                const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(ev, "type"));
                bool del = type && !strcmp(type, "DELETE");
                struct etcd_kv kv;
                if ((type && !del && strcmp(type, "PUT")) ||
                    wire_parse_kv(cJSON_GetObjectItemCaseSensitive(ev, "kv"), &kv) < 0)
                        return false;
                if (kv.mod_revision >= from) {
                        emit(w, del ? ETCD_WATCH_DELETE : ETCD_WATCH_PUT, &kv);
                        if (kv.mod_revision >= w->next_rev)
                                w->next_rev = kv.mod_revision + 1;
                }
                etcd_kv_clear(&kv);
        }
        return true;
}

/* Handle one WatchResponse wrapper {"result":{...}}; false ends the stream
 * (w->end says why). */
static bool watch_message(struct etcd_watch *w, const cJSON *root) {
        const cJSON *res = cJSON_GetObjectItemCaseSensitive(root, "result");
        if (!cJSON_IsObject(res))
                return watch_error(w, root);
        return watch_state(w, res) && watch_events(w, res);
}

/* Handle every complete message in the stream's bytes and keep a partial
 * one for the bytes that follow; false ends the stream. */
static bool watch_scan(struct etcd_watch *w) {
        struct buf *b = &w->in;
        size_t start, end;
        enum json_frame_result r;
        while ((r = json_frame_next(&w->scan, b->data, b->len, &start, &end)) ==
               JSON_FRAME_OBJECT) {
                cJSON *j = cJSON_ParseWithLength(b->data + start, end - start);
                bool ok = j && watch_message(w, j);
                cJSON_Delete(j);
                if (!ok)
                        return false;
        }
        if (r == JSON_FRAME_BAD)
                return false;
        size_t done = json_frame_unneeded(&w->scan, b->len);
        memmove(b->data, b->data + done, b->len - done);
        b->len -= done;
        json_frame_shift(&w->scan, done);
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
        w->heard = clock_mono_ms();
        if (w->ending || buf_put(&w->in, p, size * n) < 0 || !watch_scan(w)) {
                w->ending = true;
                return 0;
        }
        return size * n;
}

/* Stream the prefix's changes from w->next_rev off endpoint idx until the
 * stream ends. */
static enum watch_end watch_stream(struct etcd_watch *w, size_t idx) {
        char *key64, *end64, *body;
        if (wire_prefix_range64(w->prefix, &key64, &end64) < 0)
                return WATCH_BROKEN;
        enum watch_end res = WATCH_BROKEN;
        if (asprintf(&body,
                     "{\"create_request\":{\"key\":\"%s\",\"range_end\":\"%s\","
                     "\"start_revision\":\"%lld\"}}",
                     key64, end64, (long long)w->next_rev) < 0)
                body = NULL;
        free(key64);
        free(end64);
        if (!body || !(w->hdr = client_headers(w->e, true, &w->hdr_gen))) {
                free(body);
                return res;
        }
        w->idx = idx;
        w->end = WATCH_BROKEN;
        w->ending = w->checked_status = false;
        w->in.len = 0;
        w->scan = (struct json_frame){ 0 };
        client_setup(w->e, w->stream, w->e->urls[idx], "/v3/watch", body, w->hdr);
        curl_easy_setopt(w->stream, CURLOPT_WRITEFUNCTION, watch_write_cb);
        curl_easy_setopt(w->stream, CURLOPT_WRITEDATA, w);
        perform(w, w->stream);
        res = atomic_load(&w->stop) ? WATCH_STOPPED : w->end;
        curl_slist_free_all(w->hdr);
        w->hdr = NULL;
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
        if (w->reauth_ms && clock_mono_ms() - w->reauth_ms < WATCH_REAUTH_MS)
                return false;
        w->reauth_ms = clock_mono_ms();
        return client_reauth(w->e, w->hdr_gen) == 0;
}

/* One round over the endpoints, from the one that answered last, until a
 * listing is due: false when the watch was stopped. */
static bool watch_round(struct etcd_watch *w) {
        size_t first = atomic_load(&w->e->cur);
        for (size_t i = 0; i < w->e->n_urls && !w->need_sync; i++) {
                size_t idx = (first + i) % w->e->n_urls;
                enum watch_end end = watch_stream(w, idx);
                for (int k = 0; k < 2 && end == WATCH_AUTH && watch_reauth(w); k++)
                        end = watch_stream(w, idx);
                if (end == WATCH_STOPPED)
                        return false;
                if (end == WATCH_COMPACTED) {
                        w->need_sync = true;
                } else if (end == WATCH_AUTH) {
                        go_down(w); /* the member answers: refused, not failed */
                } else {
                        client_endpoint_failed(w->e, idx);
                        go_down(w);
                }
        }
        return true;
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
                if (!watch_round(w))
                        return NULL;
                if (!w->need_sync)
                        curl_multi_poll(w->multi, NULL, 0, RETRY_MS, NULL);
        }
        return NULL;
}

/* The probe's request body for prefix (a count of its first key), or NULL
 * on ENOMEM. */
static char *probe_body_of(const char *prefix) {
        char *key64, *end64, *body;
        if (wire_prefix_range64(prefix, &key64, &end64) < 0)
                return NULL;
        if (asprintf(&body, "{\"key\":\"%s\",\"count_only\":true}", key64) < 0)
                body = NULL;
        free(key64);
        free(end64);
        return body;
}

/* Free what etcd_watch_start made of w (its thread is not running). */
static void watch_free(struct etcd_watch *w) {
        curl_easy_cleanup(w->stream);
        curl_easy_cleanup(w->unary);
        curl_multi_cleanup(w->multi);
        buf_free(&w->in);
        free(w->probe_body);
        free(w->prefix);
        free(w);
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
        if (!(w->prefix = strdup(prefix)) || !(w->probe_body = probe_body_of(prefix)) ||
            !(w->multi = curl_multi_init()) || !(w->stream = curl_easy_init()) ||
            !(w->unary = curl_easy_init())) {
                watch_free(w);
                return -ENOMEM;
        }
        w->runner = (struct etcd_runner){ .handle = w->unary, .perform = runner_perform,
                                          .stop = &w->stop };
        int r = -pthread_create(&w->thread, NULL, watch_main, w);
        if (r < 0) {
                watch_free(w);
                return r;
        }
        *ret = w;
        return 0;
}

void etcd_watch_stop(struct etcd_watch *w) {
        if (!w)
                return;
        atomic_store(&w->stop, true);
        curl_multi_wakeup(w->multi);
        pthread_join(w->thread, NULL);
        watch_free(w);
}
