/* SPDX-License-Identifier: MIT */
/* Render a lock's live JSON status and the Prometheus metrics page, and
 * parse the pid and TTL claims in what a holder wrote. */
#include <cjson/cJSON.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "status.h"

#define STATUS_TTL_MAX_S (10u * 365u * 24u * 3600u)       /* 10 years */
#define STATUS_TIME_MAX_MS INT64_C(253402300799999)      /* 9999-12-31T23:59:59.999Z */
#define UTF8_REPLACEMENT "\xEF\xBF\xBD"                  /* U+FFFD */

/* Length of the valid UTF-8 sequence at s (n bytes available), or 0 when
 * it is invalid; then *ret_bad is the length of its maximal invalid prefix
 * (Unicode's "maximal subpart"), which is replaced by one U+FFFD. NUL is
 * invalid here: JSON strings in cJSON are C strings. */
static size_t utf8_seq(const unsigned char *s, size_t n, size_t *ret_bad) {
        unsigned char lo = 0x80, hi = 0xBF;
        size_t len, i;

        *ret_bad = 1;
        if (s[0] >= 0x01 && s[0] <= 0x7F)
                return 1;
        if (s[0] >= 0xC2 && s[0] <= 0xDF)
                len = 2;
        else if (s[0] >= 0xE0 && s[0] <= 0xEF)
                len = 3;
        else if (s[0] >= 0xF0 && s[0] <= 0xF4)
                len = 4;
        else
                return 0;
        if (s[0] == 0xE0)
                lo = 0xA0; /* overlong */
        else if (s[0] == 0xED)
                hi = 0x9F; /* surrogates */
        else if (s[0] == 0xF0)
                lo = 0x90; /* overlong */
        else if (s[0] == 0xF4)
                hi = 0x8F; /* above U+10FFFF */
        for (i = 1; i < len && i < n; i++) {
                if (s[i] < lo || s[i] > hi)
                        break;
                lo = 0x80;
                hi = 0xBF;
        }
        if (i == len)
                return len;
        *ret_bad = i;
        return 0;
}

/* Copy n bytes of s as valid UTF-8, each invalid sequence (and NUL) turned
 * into U+FFFD. Returns a malloc'd NUL-terminated string, or NULL on
 * allocation failure. */
static char *utf8_sanitize(const char *s, size_t n) {
        const unsigned char *u = (const unsigned char *)s;
        size_t i, bad, len, out_len = 0;
        char *out, *w;

        for (i = 0; i < n; i += len ? len : bad) {
                len = utf8_seq(u + i, n - i, &bad);
                out_len += len ? len : sizeof(UTF8_REPLACEMENT) - 1;
        }
        out = malloc(out_len + 1);
        if (!out)
                return NULL;
        for (i = 0, w = out; i < n; i += len ? len : bad) {
                len = utf8_seq(u + i, n - i, &bad);
                if (len) {
                        memcpy(w, s + i, len);
                        w += len;
                } else {
                        memcpy(w, UTF8_REPLACEMENT, sizeof(UTF8_REPLACEMENT) - 1);
                        w += sizeof(UTF8_REPLACEMENT) - 1;
                }
        }
        *w = '\0';
        return out;
}

static bool is_json_space(char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Parse s[0..n) (with a NUL at s[n]) as exactly one JSON object, with only
 * whitespace around it. Returns the object (cJSON_Delete() it) or NULL. */
static cJSON *parse_object(const char *s, size_t n) {
        const char *end = NULL, *p = s;
        cJSON *j;

        while (p < s + n && is_json_space(*p))
                p++;
        if (p == s + n || *p != '{')
                return NULL;
        j = cJSON_ParseWithLengthOpts(s, n, &end, false);
        if (!j)
                return NULL;
        while (end && end < s + n && is_json_space(*end))
                end++;
        if (!cJSON_IsObject(j) || end != s + n) {
                cJSON_Delete(j);
                return NULL;
        }
        return j;
}

/* True when s[0..n) is optional whitespace, 1+ digits, optional whitespace,
 * with a value <= INT32_MAX; the value goes to *ret. */
static bool parse_decimal_pid(const char *s, size_t n, pid_t *ret) {
        const char *p = s, *end = s + n;
        int64_t v = 0;

        while (p < end && is_json_space(*p))
                p++;
        while (end > p && is_json_space(end[-1]))
                end--;
        if (p == end)
                return false;
        for (; p < end; p++) {
                if (*p < '0' || *p > '9')
                        return false;
                v = v * 10 + (*p - '0');
                if (v > INT32_MAX)
                        return false;
        }
        *ret = (pid_t)v;
        return true;
}

/* True when item is a JSON number holding an integer in [0, max]. */
static bool json_uint(const cJSON *item, double max, uint64_t *ret) {
        double d;

        if (!cJSON_IsNumber(item))
                return false;
        d = item->valuedouble;
        if (!(d >= 0 && d <= max) || d != (double)(uint64_t)d)
                return false;
        *ret = (uint64_t)d;
        return true;
}

/* Take "pid" and "ttl_s" from a holder's object. With duplicate keys the
 * last one wins, as for JavaScript, Python and jq readers. */
static void claim_from_object(const cJSON *o, struct content_claim *c) {
        const cJSON *it;
        uint64_t v;

        cJSON_ArrayForEach(it, o) {
                if (!it->string)
                        continue;
                if (strcmp(it->string, "pid") == 0) {
                        c->has_pid = json_uint(it, INT32_MAX, &v);
                        c->pid = c->has_pid ? (pid_t)v : 0;
                } else if (strcmp(it->string, "ttl_s") == 0) {
                        c->has_ttl = json_uint(it, STATUS_TTL_MAX_S, &v);
                        c->ttl_s = c->has_ttl ? (uint32_t)v : 0;
                }
        }
}

struct content_claim status_parse_claim(const char *content, size_t len) {
        struct content_claim c = {0};
        cJSON *o;
        char *copy;

        if (!content || len == 0)
                return c;
        if (parse_decimal_pid(content, len, &c.pid)) {
                c.has_pid = true;
                return c;
        }
        copy = malloc(len + 1);
        if (!copy)
                return c;
        memcpy(copy, content, len);
        copy[len] = '\0';
        o = parse_object(copy, len);
        free(copy);
        if (o)
                claim_from_object(o, &c);
        cJSON_Delete(o);
        return c;
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

static const char *how_name(enum lock_how how) {
        switch (how) {
        case LOCK_HOW_CREATOR:
                return "creator";
        case LOCK_HOW_CLAIM:
                return "claim";
        case LOCK_HOW_FLOCK:
                return "flock";
        case LOCK_HOW_DETACHED:
                return "detached";
        }
        return "unknown";
}

/* The daemon's facts about v (SPEC R4.3), as the "lockfs" object of o. */
static bool add_lockfs(cJSON *o, const struct lock_view *v, int64_t now_ms, const char *host) {
        cJSON *l = cJSON_AddObjectToObject(o, "lockfs");
        int64_t age = now_ms - v->acquired_at_ms;

        if (!l)
                return false;
        if (!add_str(l, "path", v->path) || !add_pid(l, "pid", v) ||
            !add_u64(l, "uid", v->uid) || !add_user(l, "user", v->uid) ||
            !add_array_str(l, "comm", v->comm, sizeof(v->comm)) ||
            !add_array_str(l, "cmdline", v->cmdline, sizeof(v->cmdline)) ||
            !add_str(l, "host", host) || !add_time(l, "acquired_at", v->acquired_at_ms) ||
            !add_time(l, "renewed_at", v->renewed_at_ms) ||
            !add_i64(l, "age_ms", age > 0 ? age : 0) || !add_u64(l, "ttl_s", v->ttl_s))
                return false;
        if (v->ttl_s == 0 ? !cJSON_AddNullToObject(l, "expires_at")
                          : !add_time(l, "expires_at", v->expires_at_ms))
                return false;
        if (!add_u64(l, "fence", v->fence) ||
            !cJSON_AddStringToObject(l, "how", how_name(v->how)) ||
            !cJSON_AddBoolToObject(l, "liveness_known", v->liveness_known))
                return false;
        if (v->claim_ignored_pid != 0 && !add_i64(l, "claim_ignored_pid", v->claim_ignored_pid))
                return false;
        return true;
}

/* Keys the daemon owns: a holder's own values for them are dropped. */
static bool is_reserved_key(const char *key) {
        return strcmp(key, "pid") == 0 || strcmp(key, "created_at") == 0 ||
               strcmp(key, "lockfs") == 0;
}

/* The holder's part of the status: its JSON object minus reserved keys, or
 * {"content": TEXT} for other non-empty content, or {}. Invalid UTF-8 is
 * replaced before parsing; outside strings it would not parse anyway. */
static cJSON *holder_fields(const struct lock_view *v) {
        cJSON *o, *it, *next;
        char *text;

        if (!v->content || v->content_len == 0)
                return cJSON_CreateObject();
        text = utf8_sanitize(v->content, v->content_len);
        if (!text)
                return NULL;
        o = parse_object(text, strlen(text));
        if (o) {
                for (it = o->child; it; it = next) {
                        next = it->next;
                        if (it->string && is_reserved_key(it->string))
                                cJSON_Delete(cJSON_DetachItemViaPointer(o, it));
                }
        } else {
                o = cJSON_CreateObject();
                if (o && !cJSON_AddStringToObject(o, "content", text)) {
                        cJSON_Delete(o);
                        o = NULL;
                }
        }
        free(text);
        return o;
}

/* One lock's status object, or NULL on allocation failure. */
static cJSON *status_object(const struct lock_view *v, int64_t now_ms, const char *host) {
        cJSON *o = holder_fields(v);

        if (!o)
                return NULL;
        if (!add_pid(o, "pid", v) || !add_time(o, "created_at", v->acquired_at_ms) ||
            !add_lockfs(o, v, now_ms, host)) {
                cJSON_Delete(o);
                return NULL;
        }
        return o;
}

/* Print root (then delete it) as indented JSON plus "\n" into a malloc'd
 * string. Returns NULL on allocation failure. */
static char *print_document(cJSON *root, size_t *ret_len) {
        char *printed, *out = NULL;
        size_t n;

        if (!root)
                return NULL;
        printed = cJSON_Print(root);
        cJSON_Delete(root);
        if (!printed)
                return NULL;
        n = strlen(printed);
        out = malloc(n + 2);
        if (out) {
                memcpy(out, printed, n);
                out[n] = '\n';
                out[n + 1] = '\0';
                if (ret_len)
                        *ret_len = n + 1;
        }
        cJSON_free(printed);
        return out;
}

char *status_render(const struct lock_view *v, int64_t now_ms, const char *host,
                    size_t *ret_len) {
        return print_document(status_object(v, now_ms, host), ret_len);
}

char *status_render_array(const struct lock_view *v, size_t n, int64_t now_ms,
                          const char *host, size_t *ret_len) {
        cJSON *a = cJSON_CreateArray();
        size_t i;

        for (i = 0; a && i < n; i++) {
                cJSON *o = status_object(&v[i], now_ms, host);

                if (!o || !cJSON_AddItemToArray(a, o)) {
                        cJSON_Delete(o);
                        cJSON_Delete(a);
                        a = NULL;
                }
        }
        return print_document(a, ret_len);
}

/* Write one metric family's HELP and TYPE lines. */
static void metric_head(FILE *f, const char *name, const char *type, const char *help) {
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* Write a family with a single unlabelled sample. */
static void metric_one(FILE *f, const char *name, const char *type, const char *help,
                       uint64_t value) {
        metric_head(f, name, type, help);
        fprintf(f, "%s %" PRIu64 "\n", name, value);
}

static void metrics_write(FILE *f, const struct lock_metrics *m) {
        static const char released[] = "lockfs_released_total";

        metric_one(f, "lockfs_acquired_total", "counter", "Successful lock acquisitions.",
                   m->acquired);
        metric_one(f, "lockfs_contended_total", "counter",
                   "Attempts refused with EEXIST because the lock was held.", m->contended);
        metric_head(f, released, "counter", "Locks released, by cause.");
        fprintf(f, "%s{cause=\"unlink\"} %" PRIu64 "\n", released, m->released_unlink);
        fprintf(f, "%s{cause=\"exit\"} %" PRIu64 "\n", released, m->released_exit);
        fprintf(f, "%s{cause=\"ttl\"} %" PRIu64 "\n", released, m->released_ttl);
        fprintf(f, "%s{cause=\"root\"} %" PRIu64 "\n", released, m->released_root);
        fprintf(f, "%s{cause=\"detached\"} %" PRIu64 "\n", released, m->released_detached);
        metric_one(f, "lockfs_expired_total", "counter", "Locks released because their TTL ran out.",
                   m->released_ttl);
        metric_one(f, "lockfs_locks_held", "gauge", "Locks held now.", m->held);
        metric_one(f, "lockfs_directories", "gauge", "Lock directories (namespaces) now.",
                   m->directories);
        metric_one(f, "lockfs_waiters", "gauge", "flock(2) waiters parked now.", m->waiters);
}

char *status_render_metrics(const struct lock_metrics *m, size_t *ret_len) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);
        bool failed;

        if (!f)
                return NULL;
        metrics_write(f, m);
        failed = ferror(f) != 0;
        if (fclose(f) != 0 || failed) {
                free(buf);
                return NULL;
        }
        if (ret_len)
                *ret_len = len;
        return buf;
}
