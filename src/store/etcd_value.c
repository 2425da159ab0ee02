/* SPDX-License-Identifier: MIT */
/* The etcd store's lock value (etcd_value.h): one JSON object naming the
 * holder. Decoding treats the value as hostile input: anyone with write
 * access to the prefix can put any bytes there, so every field is
 * required, typed and range-checked; a value that fails is ignored (never
 * guessed at: a missing uid must not become root). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd_value.h"
#include "lock_how.h"
#include "lock_limits.h"

#define VALUE_MAX ((size_t)LOCKFS_MAX_CONTENT_LIMIT * 6 + 65536) /* content may be \u-escaped */
#define PID_LIMIT 4194304                        /* PID_MAX_LIMIT of Linux */
#define CLAIM_PID_LIMIT INT32_MAX                /* what a claim may name (status.c) */
#define ID_LIMIT INT64_C(4294967294)             /* uid/gid; (uid_t)-1 is no id */
#define TIME_LIMIT_MS INT64_C(253402300799999)   /* 9999-12-31T23:59:59.999Z */
#define HOST_LIMIT 255

/* add_fields and check_fields carry each lock record field under its own
 * name, except the fence, which is the key's revision (etcd_value.h). */
_Static_assert(LOCK_RECORD_COUNT == 9,
               "a new LOCK_RECORD_FIELDS field needs a key in add_fields, check_fields and "
               "fill_view (optional, omitted when 0, so older daemons read the value)");

/* ---- encoding ---- */

/* Add v's fields to o; false on ENOMEM. */
static bool add_fields(cJSON *o, const struct lock_view *v, const char *host,
                       const char *content) {
        return cJSON_AddStringToObject(o, "host", host) &&
               cJSON_AddNumberToObject(o, "pid", v->pid) &&
               cJSON_AddNumberToObject(o, "uid", v->uid) &&
               cJSON_AddNumberToObject(o, "gid", v->gid) &&
               cJSON_AddStringToObject(o, "comm", v->comm) &&
               cJSON_AddStringToObject(o, "cmdline", v->cmdline) &&
               cJSON_AddStringToObject(o, "how", lock_how_name(v->how)) &&
               cJSON_AddBoolToObject(o, "liveness_known", v->liveness_known) &&
               cJSON_AddNumberToObject(o, "acquired_at_ms", (double)v->acquired_at_ms) &&
               cJSON_AddNumberToObject(o, "renewed_at_ms", (double)v->renewed_at_ms) &&
               cJSON_AddNumberToObject(o, "ttl_s", v->ttl_s) &&
               cJSON_AddStringToObject(o, "content", content) &&
               /* only when set: the value stays what older daemons wrote */
               (v->claim_ignored_pid == 0 ||
                cJSON_AddNumberToObject(o, "claim_ignored_pid", v->claim_ignored_pid));
}

char *store_etcd_value_encode(const struct lock_view *v, const char *host, size_t *ret_len) {
        cJSON *o = cJSON_CreateObject();
        if (!o)
                return NULL;
        char *text = NULL;
        char *content = v->content_len ? strndup(v->content, v->content_len) : strdup("");
        if (content && add_fields(o, v, host, content))
                text = cJSON_PrintUnformatted(o);
        free(content);
        cJSON_Delete(o);
        if (text)
                *ret_len = strlen(text);
        return text;
}

/* ---- decoding ---- */

/* The fields of a value, checked. */
struct value_fields {
        const char *host, *comm, *cmdline, *content;
        enum lock_how how;       /* LOCK_HOW_CREATOR when !how_named */
        bool how_named;          /* "how" names a lock_how (lock_how_parse) */
        bool liveness_known;
        int64_t pid, uid, gid, acquired, renewed, ttl, claim_ignored_pid;
};

/* The whole number field name of o in min..max (|max| <= 2^53), or false. */
static bool get_int(const cJSON *o, const char *name, int64_t min, int64_t max, int64_t *ret) {
        const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, name);
        if (!cJSON_IsNumber(j))
                return false;
        double d = j->valuedouble;
        if (!(d >= (double)min && d <= (double)max) || (double)(int64_t)d != d)
                return false;
        *ret = (int64_t)d;
        return true;
}

/* get_int for a field that may be absent (then 0). */
static bool get_optional_int(const cJSON *o, const char *name, int64_t min, int64_t max,
                             int64_t *ret) {
        *ret = 0;
        return !cJSON_GetObjectItemCaseSensitive(o, name) || get_int(o, name, min, max, ret);
}

/* The string field name of o, at most max bytes, with no control bytes
 * unless ctl; NULL when absent, of another type, too long. */
static const char *get_str(const cJSON *o, const char *name, size_t max, bool ctl) {
        const char *p = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, name));
        if (!p || strlen(p) > max)
                return NULL;
        for (const unsigned char *c = (const unsigned char *)p; !ctl && *c; c++)
                if (*c < 0x20 || *c == 0x7f)
                        return NULL;
        return p;
}

static int bad(char *why, size_t whylen, const char *field) {
        snprintf(why, whylen, "field \"%s\" is missing, of the wrong type or out of range",
                 field);
        return -EINVAL;
}

/* Parse text as exactly one JSON object (white space may follow): the
 * object, or NULL with the reason in why. */
static cJSON *parse_object(const char *text, size_t len, char *why, size_t whylen) {
        if (len > VALUE_MAX) {
                snprintf(why, whylen, "the value is too long (%zu bytes)", len);
                return NULL;
        }
        const char *end = NULL;
        cJSON *o = cJSON_ParseWithLengthOpts(text, len, &end, false);
        while (o && end && end < text + len && (*end == ' ' || *end == '\n' || *end == '\t' ||
                                                *end == '\r'))
                end++;
        if (!cJSON_IsObject(o) || !end || end != text + len) {
                cJSON_Delete(o);
                snprintf(why, whylen, "the value is not one JSON object");
                return NULL;
        }
        return o;
}

/* Read and check every field of o into f: 0, or -EINVAL naming the first
 * bad field in why. */
static int check_fields(const cJSON *o, struct value_fields *f, char *why, size_t whylen) {
        f->host = get_str(o, "host", HOST_LIMIT, false);
        /* a process names itself: comm and cmdline may hold any byte, as locally */
        f->comm = get_str(o, "comm", HOLDER_COMM_MAX - 1, true);
        f->cmdline = get_str(o, "cmdline", HOLDER_CMDLINE_MAX - 1, true);
        f->content = get_str(o, "content", LOCKFS_MAX_CONTENT_LIMIT, true);
        const char *how = get_str(o, "how", 16, false);
        const cJSON *live = cJSON_GetObjectItemCaseSensitive(o, "liveness_known");
        f->liveness_known = cJSON_IsTrue(live);
        f->how = LOCK_HOW_CREATOR;
        f->how_named = lock_how_parse(how, &f->how) == 0;
        /* pid 0 only for a lock no process is known to hold */
        int64_t pid_min = f->how == LOCK_HOW_DETACHED || !f->liveness_known ? 0 : 1;
        if (!f->host || !*f->host)
                return bad(why, whylen, "host");
        if (!get_int(o, "pid", pid_min, PID_LIMIT, &f->pid))
                return bad(why, whylen, "pid");
        if (!get_int(o, "uid", 0, ID_LIMIT, &f->uid))
                return bad(why, whylen, "uid");
        if (!get_int(o, "gid", 0, ID_LIMIT, &f->gid))
                return bad(why, whylen, "gid");
        if (!f->comm)
                return bad(why, whylen, "comm");
        if (!f->cmdline)
                return bad(why, whylen, "cmdline");
        if (!f->how_named)
                return bad(why, whylen, "how");
        if (!cJSON_IsBool(live))
                return bad(why, whylen, "liveness_known");
        if (!get_int(o, "acquired_at_ms", 0, TIME_LIMIT_MS, &f->acquired))
                return bad(why, whylen, "acquired_at_ms");
        if (!get_int(o, "renewed_at_ms", 0, TIME_LIMIT_MS, &f->renewed))
                return bad(why, whylen, "renewed_at_ms");
        if (!get_int(o, "ttl_s", 0, UINT32_MAX, &f->ttl))
                return bad(why, whylen, "ttl_s");
        if (!f->content)
                return bad(why, whylen, "content");
        if (!get_optional_int(o, "claim_ignored_pid", 0, CLAIM_PID_LIMIT, &f->claim_ignored_pid))
                return bad(why, whylen, "claim_ignored_pid");
        return 0;
}

/* Set v from checked fields f: 0 or -ENOMEM (v untouched). */
static int fill_view(const struct value_fields *f, struct lock_view *v) {
        char *host = strdup(f->host);
        size_t content_len = strlen(f->content);
        char *content = content_len ? strdup(f->content) : NULL;
        if (!host || (content_len && !content)) {
                free(host);
                free(content);
                return -ENOMEM;
        }
        v->host = host;
        v->content = content;
        v->content_len = content_len;
        v->pid = (pid_t)f->pid;
        v->uid = (uid_t)f->uid;
        v->gid = (gid_t)f->gid;
        snprintf(v->comm, sizeof(v->comm), "%s", f->comm);
        snprintf(v->cmdline, sizeof(v->cmdline), "%s", f->cmdline);
        v->how = f->how;
        /* a directory lock keeps its how when no process holds it (R7.5) */
        v->detached = f->how == LOCK_HOW_DETACHED ||
                      (f->how == LOCK_HOW_MKDIR && !f->liveness_known);
        v->liveness_known = f->liveness_known;
        v->acquired_at_ms = f->acquired;
        v->renewed_at_ms = f->renewed;
        v->ttl_s = (uint32_t)f->ttl;
        v->expires_at_ms = f->renewed + f->ttl * 1000; /* at most about 2^48: no overflow */
        v->claim_ignored_pid = (pid_t)f->claim_ignored_pid;
        return 0;
}

int store_etcd_value_decode(const char *text, size_t len, struct lock_view *v, char *why,
                            size_t whylen) {
        snprintf(why, whylen, "out of memory");
        cJSON *o = parse_object(text, len, why, whylen);
        if (!o)
                return -EINVAL;
        struct value_fields f;
        int r = check_fields(o, &f, why, whylen);
        if (r == 0)
                r = fill_view(&f, v);
        if (r == 0)
                why[0] = '\0';
        else if (r == -ENOMEM)
                snprintf(why, whylen, "out of memory");
        cJSON_Delete(o);
        return r;
}
