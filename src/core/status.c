/* SPDX-License-Identifier: MIT */
/* Render a lock's live JSON status (SPEC R4.1-R4.4), alone or as a JSON
 * array read in pieces, and the Prometheus metrics page. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "buf.h"
#include "claim.h"
#include "json_splice.h"
#include "lock_how.h"
#include "status.h"
#include "utf8.h"

#define STATUS_TIME_MAX_MS INT64_C(253402300799999)      /* 9999-12-31T23:59:59.999Z */

int64_t status_sub_sat(int64_t a, int64_t b) {
        int64_t d;
        if (__builtin_sub_overflow(a, b, &d))
                return b < 0 ? INT64_MAX : INT64_MIN;
        return d;
}

void status_format_time(int64_t ms, char *buf, size_t len) {
        struct tm tm;
        time_t s;
        size_t n;

        if (!buf || len == 0)
                return;
        if (ms < 0)
                ms = 0;
        if (ms > STATUS_TIME_MAX_MS)
                ms = STATUS_TIME_MAX_MS;
        s = (time_t)(ms / 1000);
        n = gmtime_r(&s, &tm) ? strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm) : 0;
        if (n == 0) {
                buf[0] = '\0';
                return;
        }
        snprintf(buf + n, len - n, ".%03dZ", (int)(ms % 1000));
}

/* Add helpers: each returns false on allocation failure. Integers are added
 * as raw JSON text so that 64-bit values print exactly. */
static bool add_u64(cJSON *o, const char *key, uint64_t v) {
        char buf[24];

        snprintf(buf, sizeof(buf), "%" PRIu64, v);
        return cJSON_AddRawToObject(o, key, buf) != NULL;
}

static bool add_i64(cJSON *o, const char *key, int64_t v) {
        char buf[24];

        snprintf(buf, sizeof(buf), "%" PRId64, v);
        return cJSON_AddRawToObject(o, key, buf) != NULL;
}

/* Add s (n bytes) as a string made valid UTF-8; NULL s gives JSON null. */
static bool add_text(cJSON *o, const char *key, const char *s, size_t n) {
        char *clean;
        bool ok;

        if (!s)
                return cJSON_AddNullToObject(o, key) != NULL;
        clean = utf8_sanitize(s, n);
        if (!clean)
                return false;
        ok = cJSON_AddStringToObject(o, key, clean) != NULL;
        free(clean);
        return ok;
}

static bool add_str(cJSON *o, const char *key, const char *s) {
        return add_text(o, key, s, s ? strlen(s) : 0);
}

/* A fixed char array that may lack its NUL (comm, cmdline). */
static bool add_array_str(cJSON *o, const char *key, const char *s, size_t size) {
        return add_text(o, key, s, strnlen(s, size));
}

static bool add_time(cJSON *o, const char *key, int64_t ms) {
        char buf[32];

        status_format_time(ms, buf, sizeof(buf));
        return cJSON_AddStringToObject(o, key, buf) != NULL;
}

/* The holder pid, or null for a detached lock. */
static bool add_pid(cJSON *o, const char *key, const struct lock_view *v) {
        if (v->detached)
                return cJSON_AddNullToObject(o, key) != NULL;
        return add_i64(o, key, v->pid);
}

/* The user name of uid, or its number as a string when it has none. */
static bool add_user(cJSON *o, const char *key, uid_t uid) {
        char buf[2048];
        struct passwd pw, *res = NULL;

        if (getpwuid_r(uid, &pw, buf, sizeof(buf), &res) == 0 && res && res->pw_name)
                return add_str(o, key, res->pw_name);
        snprintf(buf, sizeof(buf), "%ju", (uintmax_t)uid);
        return cJSON_AddStringToObject(o, key, buf) != NULL;
}

/* One holder or waiter p as an object appended to array a; how_name is
 * how it holds (or asks), mode set for a waiter. */
static bool add_party(cJSON *a, const struct lock_party *p, const char *how_name,
                      const char *mode) {
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddItemToArray(a, o)) {
                cJSON_Delete(o);
                return false;
        }
        bool ok = (p->pid ? add_i64(o, "pid", p->pid) : cJSON_AddNullToObject(o, "pid") != NULL) &&
                  add_u64(o, "uid", p->uid) && add_user(o, "user", p->uid) &&
                  add_array_str(o, "comm", p->comm, sizeof(p->comm)) &&
                  add_str(o, "via", how_name) && add_time(o, "since", p->since_ms);
        return ok && (!mode || add_str(o, "mode", mode));
}

/* A shared lock's holders (its recorded holder first) and every lock's
 * waiters, each list with its total when it is longer than shown (SPEC
 * R7.3, issue 13 point 4): "holders" only for a shared lock, "waiters"
 * only when some wait. */
static bool add_parties(cJSON *l, const struct lock_view *v) {
        if (v->shared) {
                struct lock_party self = { .pid = v->detached ? 0 : v->pid, .uid = v->uid,
                                           .since_ms = v->acquired_at_ms };
                memcpy(self.comm, v->comm, sizeof(self.comm));
                cJSON *a = cJSON_AddArrayToObject(l, "holders");
                if (!cJSON_AddBoolToObject(l, "shared", true) || !a ||
                    !add_party(a, &self, lock_how_name(v->how), NULL) ||
                    !add_u64(l, "holders_total", 1 + v->sharers_total))
                        return false;
                for (size_t i = 0; i < v->n_sharers; i++)
                        if (!add_party(a, &v->sharers[i], lock_how_name(v->sharers[i].how), NULL))
                                return false;
        }
        if (!v->waiters_total)
                return true;
        cJSON *a = cJSON_AddArrayToObject(l, "waiters");
        if (!a || !add_u64(l, "waiters_total", v->waiters_total))
                return false;
        for (size_t i = 0; i < v->n_waiters; i++) {
                const struct lock_party *p = &v->waiters[i];
                if (!add_party(a, p, lock_how_name(p->how), p->shared ? "shared" : "exclusive"))
                        return false;
        }
        return true;
}

/* The daemon's facts about v (SPEC R4.3), as the "lockfs" object of o. */
static bool add_lockfs(cJSON *o, const struct lock_view *v, int64_t now_ms, const char *host) {
        cJSON *l = cJSON_AddObjectToObject(o, "lockfs");
        int64_t age = status_sub_sat(now_ms, v->acquired_at_ms);

        if (!l)
                return false;
        if (!add_str(l, "path", v->path) || !add_pid(l, "pid", v) ||
            !add_u64(l, "uid", v->uid) || !add_user(l, "user", v->uid) ||
            !add_array_str(l, "comm", v->comm, sizeof(v->comm)) ||
            !add_array_str(l, "cmdline", v->cmdline, sizeof(v->cmdline)) ||
            !add_str(l, "host", v->host ? v->host : host) ||
            !add_time(l, "acquired_at", v->acquired_at_ms) ||
            !add_time(l, "renewed_at", v->renewed_at_ms) ||
            !add_i64(l, "age_ms", age > 0 ? age : 0) || !add_u64(l, "ttl_s", v->ttl_s))
                return false;
        if (v->ttl_s == 0 ? !cJSON_AddNullToObject(l, "expires_at")
                          : !add_time(l, "expires_at", v->expires_at_ms))
                return false;
        if (!add_u64(l, "fence", v->fence) ||
            !cJSON_AddStringToObject(l, "how", lock_how_name(v->how)) ||
            !cJSON_AddBoolToObject(l, "liveness_known", v->liveness_known))
                return false;
        if (v->claim_ignored_pid != 0 && !add_i64(l, "claim_ignored_pid", v->claim_ignored_pid))
                return false;
        if (v->lost && !cJSON_AddBoolToObject(l, "lost", true))
                return false;
        return add_parties(l, v);
}

/* ---- one lock's document ---- */

/* Keys the daemon owns: a holder's own values for them are dropped. */
static const char *const reserved_keys[] = { "pid", "created_at", "lockfs", NULL };

/* The daemon's part of the status: "pid", "created_at" and "lockfs", after
 * "content" when content is set. NULL on allocation failure. */
static cJSON *daemon_object(const struct lock_view *v, int64_t now_ms, const char *host,
                            const char *content) {
        cJSON *o = cJSON_CreateObject();

        if (!o)
                return NULL;
        if ((content && !cJSON_AddStringToObject(o, "content", content)) ||
            !add_pid(o, "pid", v) || !add_time(o, "created_at", v->acquired_at_ms) ||
            !add_lockfs(o, v, now_ms, host)) {
                cJSON_Delete(o);
                return NULL;
        }
        return o;
}

/* Write the daemon's object, with the holder's members (from the object
 * text, which holds count members) spliced after its '{' when text is set. */
static int put_document(struct buf *b, cJSON *daemon, const char *text, size_t count) {
        char *printed = cJSON_Print(daemon);
        int r;

        if (!printed)
                return -ENOMEM;
        if (text && printed[0] == '{') {
                r = buf_puts(b, "{");
                if (r == 0)
                        r = json_splice_members(b, text, strlen(text), count, reserved_keys);
                if (r == 0)
                        r = buf_puts(b, printed + 1);
        } else {
                r = buf_puts(b, printed);
        }
        cJSON_free(printed);
        return r;
}

/* Write one lock's status object (no trailing newline). The holder's
 * content, made valid UTF-8, is spliced in when it is a JSON object, else
 * shown as "content" when non-empty. Returns 0 or -ENOMEM. */
static int put_lock(struct buf *b, const struct lock_view *v, int64_t now_ms,
                    const char *host) {
        cJSON *holder = NULL;
        char *text = NULL;

        if (v->content && v->content_len > 0) {
                text = utf8_sanitize(v->content, v->content_len);
                if (!text)
                        return -ENOMEM;
                holder = content_parse_object(text, strlen(text));
        }
        cJSON *daemon = daemon_object(v, now_ms, host, holder ? NULL : text);
        int r = daemon ? put_document(b, daemon, holder ? text : NULL,
                                      (size_t)cJSON_GetArraySize(holder))
                       : -ENOMEM;
        cJSON_Delete(daemon);
        cJSON_Delete(holder);
        free(text);
        return r;
}

/* Hand b's text to the caller, or free it and return NULL when r < 0. */
static char *finish(struct buf *b, int r, size_t *ret_len) {
        if (r < 0) {
                buf_free(b);
                return NULL;
        }
        if (ret_len)
                *ret_len = b->len;
        return buf_steal(b);
}

char *status_render(const struct lock_view *v, int64_t now_ms, const char *host,
                    size_t *ret_len) {
        struct buf b = { 0 };
        int r = put_lock(&b, v, now_ms, host);

        if (r == 0)
                r = buf_puts(&b, "\n");
        return finish(&b, r, ret_len);
}

/* Write n locks as array members, each after ",\n" unless it is the
 * array's first (first: v[0] is). */
static int put_members(struct buf *b, const struct lock_view *v, size_t n, bool first,
                       int64_t now_ms, const char *host) {
        int r = 0;

        for (size_t i = 0; i < n && r == 0; i++) {
                if (i > 0 || !first)
                        r = buf_puts(b, ",\n");
                if (r == 0)
                        r = put_lock(b, &v[i], now_ms, host);
        }
        return r;
}

char *status_render_array(const struct lock_view *v, size_t n, int64_t now_ms,
                          const char *host, size_t *ret_len) {
        struct buf b = { 0 };
        int r = buf_puts(&b, "[");

        if (r == 0)
                r = put_members(&b, v, n, true, now_ms, host);
        if (r == 0)
                r = buf_puts(&b, "]\n");
        return finish(&b, r, ret_len);
}

char *status_render_piece(const struct lock_view *v, size_t n, bool open, bool first,
                          bool close, int64_t now_ms, const char *host, size_t *ret_len) {
        struct buf b = { 0 };
        int r = buf_put(&b, "", 0); /* "" rather than NULL when there is nothing */

        if (r == 0 && open)
                r = buf_puts(&b, "[");
        if (r == 0)
                r = put_members(&b, v, n, first, now_ms, host);
        if (r == 0 && close)
                r = buf_puts(&b, "]\n");
        return finish(&b, r, ret_len);
}
