/* SPDX-License-Identifier: MIT */
/* Render a lock's live JSON status and the Prometheus metrics page, and
 * parse the pid and TTL claims in what a holder wrote. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <inttypes.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "status.h"
#include "utf8.h"

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
            !cJSON_AddStringToObject(l, "how", how_name(v->how)) ||
            !cJSON_AddBoolToObject(l, "liveness_known", v->liveness_known))
                return false;
        if (v->claim_ignored_pid != 0 && !add_i64(l, "claim_ignored_pid", v->claim_ignored_pid))
                return false;
        if (v->lost && !cJSON_AddBoolToObject(l, "lost", true))
                return false;
        return true;
}

/* ---- splicing the holder's object (SPEC R4.2) ----
 * The holder's members are copied as written, not re-printed by cJSON,
 * which would round numbers (9007199254740993) and cut strings at \u0000.
 * cJSON has already accepted the text; the scanner below relies on that for
 * meaning but checks every index against the length. Where cJSON is laxer
 * than JSON (raw control characters in strings, a bad \u escape, numbers
 * such as 01, 1. or -.5), the copy is repaired so the output stays JSON. */

/* A growing output buffer; p is NUL-terminated while len > 0. */
struct strbuf {
        char *p;
        size_t len, cap;
};

static int sb_put(struct strbuf *b, const char *s, size_t n) {
        if (n >= b->cap - b->len || !b->p) {
                size_t cap = b->cap ? b->cap : 1024;
                char *p;

                while (cap - b->len <= n) {
                        if (cap > SIZE_MAX / 2)
                                return -ENOMEM;
                        cap *= 2;
                }
                p = realloc(b->p, cap);
                if (!p)
                        return -ENOMEM;
                b->p = p;
                b->cap = cap;
        }
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = '\0';
        return 0;
}

static int sb_puts(struct strbuf *b, const char *s) {
        return sb_put(b, s, strlen(s));
}

static int sb_putc(struct strbuf *b, char c) {
        return sb_put(b, &c, 1);
}

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

/* cJSON skips every byte <= 0x20 between tokens, not only JSON's four. */
static size_t skip_space(const char *s, size_t n, size_t i) {
        while (i < n && (unsigned char)s[i] <= 0x20)
                i++;
        return i;
}

/* Index of the closing quote of the string opened at s[i], or n. */
static size_t string_end(const char *s, size_t n, size_t i) {
        for (i++; i < n && s[i] != '"'; i++)
                if (s[i] == '\\')
                        i++;
        return i < n ? i : n;
}

/* Index just past the value starting at s[i] (string, number, literal, or
 * object/array matched by bracket depth, strings skipped), at most n. */
static size_t value_end(const char *s, size_t n, size_t i) {
        size_t depth = 0;

        if (i < n && s[i] == '"') {
                i = string_end(s, n, i);
                return i < n ? i + 1 : n;
        }
        if (i < n && s[i] != '{' && s[i] != '[') {
                while (i < n && (unsigned char)s[i] > 0x20 && s[i] != ',' && s[i] != '}' &&
                       s[i] != ']')
                        i++;
                return i;
        }
        for (; i < n; i++) {
                if (s[i] == '"')
                        i = string_end(s, n, i);
                else if (s[i] == '{' || s[i] == '[')
                        depth++;
                else if ((s[i] == '}' || s[i] == ']') && --depth == 0)
                        return i + 1;
        }
        return n;
}

/* One member of the holder's object: spans of the text, and the key
 * decoded (it may hold NULs, hence name_len). */
struct member {
        size_t key, key_len;     /* the key's content, inside its quotes */
        size_t value, value_len; /* the raw value */
        const char *name;
        size_t name_len;
        size_t index;
        bool keep;
};

/* Find the member after position *pos of the object in s[0..n); *pos
 * starts just past its '{'. Returns false at the end of the object. */
static bool next_member(const char *s, size_t n, size_t *pos, struct member *m) {
        size_t i = skip_space(s, n, *pos), e;

        if (i < n && s[i] == ',')
                i = skip_space(s, n, i + 1);
        if (i >= n || s[i] != '"' || (e = string_end(s, n, i)) == n)
                return false;
        m->key = i + 1;
        m->key_len = e - i - 1;
        i = skip_space(s, n, e + 1);
        if (i >= n || s[i] != ':')
                return false;
        m->value = skip_space(s, n, i + 1);
        *pos = value_end(s, n, m->value);
        m->value_len = *pos - m->value;
        return m->value_len > 0;
}

/* Length of the bad \u escape at s[0..n) (n >= 2), which cJSON reads as
 * U+0000: 6 bytes, but no more than its ASCII ones, so that the rest of
 * the string stays valid UTF-8. */
static size_t bad_u_len(const char *s, size_t n) {
        size_t k = 2;

        while (k < 6 && k < n && (unsigned char)s[k] < 0x80)
                k++;
        return k;
}

/* Decode the \uXXXX escape (or surrogate pair) at s[0..n) (n >= 2) into
 * out. Returns the bytes consumed. */
static size_t decode_u_escape(const char *s, size_t n, char *out, size_t *ret_len) {
        uint32_t cp;
        size_t used = json_u_escape(s + 2, n - 2, &cp);
        if (!used) {
                out[0] = '\0';
                *ret_len = 1;
                return bad_u_len(s, n);
        }
        *ret_len = utf8_encode(cp, out);
        return 2 + used;
}

/* Decode the content of a JSON string, s[0..n), into out (room for n
 * bytes: decoding never grows). Returns the decoded length. */
static size_t decode_string(const char *s, size_t n, char *out) {
        size_t i = 0, o = 0, k;

        while (i < n) {
                if (s[i] != '\\' || i + 1 == n) {
                        out[o++] = s[i++];
                        continue;
                }
                if (s[i + 1] == 'u') {
                        i += decode_u_escape(s + i, n - i, out + o, &k);
                        o += k;
                        continue;
                }
                switch (s[i + 1]) {
                case 'b': out[o++] = '\b'; break;
                case 'f': out[o++] = '\f'; break;
                case 'n': out[o++] = '\n'; break;
                case 'r': out[o++] = '\r'; break;
                case 't': out[o++] = '\t'; break;
                default: out[o++] = s[i + 1]; break;
                }
                i += 2;
        }
        return o;
}

/* Keys the daemon owns: a holder's own values for them are dropped. */
static bool is_reserved_name(const char *name, size_t len) {
        static const char *const reserved[] = {"pid", "created_at", "lockfs"};
        size_t i;

        for (i = 0; i < sizeof(reserved) / sizeof(reserved[0]); i++)
                if (len == strlen(reserved[i]) && memcmp(name, reserved[i], len) == 0)
                        return true;
        return false;
}

/* Order members by decoded name, then by position. */
static int member_cmp(const void *a, const void *b) {
        const struct member *x = *(struct member *const *)a, *y = *(struct member *const *)b;
        int c = memcmp(x->name, y->name, x->name_len < y->name_len ? x->name_len : y->name_len);

        if (c != 0)
                return c;
        if (x->name_len != y->name_len)
                return x->name_len < y->name_len ? -1 : 1;
        return x->index < y->index ? -1 : x->index > y->index;
}

/* Drop reserved keys and all but the last of each duplicated key (JSON
 * readers take the last one). Returns 0 or -ENOMEM. */
static int mark_kept(struct member *m, size_t count) {
        struct member **order;
        size_t i;

        if (count == 0)
                return 0;
        order = malloc(count * sizeof(*order));
        if (!order)
                return -ENOMEM;
        for (i = 0; i < count; i++) {
                m[i].keep = !is_reserved_name(m[i].name, m[i].name_len);
                order[i] = &m[i];
        }
        qsort(order, count, sizeof(*order), member_cmp);
        for (i = 0; i + 1 < count; i++)
                if (order[i]->name_len == order[i + 1]->name_len &&
                    memcmp(order[i]->name, order[i + 1]->name, order[i]->name_len) == 0)
                        order[i]->keep = false;
        free(order);
        return 0;
}

/* Write the content of a JSON string, s[0..n), quoted. Valid escapes and
 * text are copied as they are; raw control characters, stray quotes or
 * backslashes and bad \u escapes (U+0000 to cJSON) are escaped. */
static int put_string(struct strbuf *b, const char *s, size_t n) {
        static const char short_esc[] = "\b\\b\f\\f\n\\n\r\\r\t\\t";
        uint32_t cp;
        char esc[8];
        const char *p;
        size_t i, k;
        int r = sb_putc(b, '"');

        for (i = 0; i < n && r == 0; i += k) {
                unsigned char c = (unsigned char)s[i];

                k = 1;
                if (c == '\\' && i + 1 < n && s[i + 1] == 'u') {
                        bool ok = json_hex4(s + i + 2, n - i - 2, &cp);

                        k = ok ? 6 : bad_u_len(s + i, n - i);
                        r = ok ? sb_put(b, s + i, 6) : sb_puts(b, "\\u0000");
                } else if (c == '\\' && i + 1 < n && memchr("\"\\/bfnrt", s[i + 1], 8)) {
                        k = 2;
                        r = sb_put(b, s + i, 2);
                } else if (c == '\\' || c == '"') {
                        esc[0] = '\\';
                        esc[1] = (char)c;
                        r = sb_put(b, esc, 2);
                } else if (c < 0x20 && (p = memchr(short_esc, c, sizeof(short_esc) - 1))) {
                        r = sb_put(b, p + 1, 2);
                } else if (c < 0x20) {
                        snprintf(esc, sizeof(esc), "\\u%04x", c);
                        r = sb_puts(b, esc);
                } else {
                        r = sb_putc(b, (char)c);
                }
        }
        return r ? r : sb_putc(b, '"');
}

/* Write a number cJSON accepted (strtod syntax from '-' or a digit) in
 * JSON syntax: unchanged when it already is; else leading zeros are
 * dropped, "0" supplied before '.', a '.' without digits dropped (and
 * anything past a well-formed exponent, which cJSON never lets through). */
static int put_number(struct strbuf *b, const char *t, size_t n) {
        size_t i = 0, j, k;
        int r = 0;

        if (i < n && t[i] == '-')
                r = sb_putc(b, t[i++]);
        for (j = i; j < n && is_digit(t[j]); j++)
                ;
        while (i + 1 < j && t[i] == '0')
                i++;
        if (r == 0)
                r = j > i ? sb_put(b, t + i, j - i) : sb_putc(b, '0');
        if (j < n && t[j] == '.') {
                for (k = j + 1; k < n && is_digit(t[k]); k++)
                        ;
                if (k > j + 1 && r == 0)
                        r = sb_put(b, t + j, k - j);
                j = k;
        }
        if (j < n && (t[j] == 'e' || t[j] == 'E')) {
                i = j + 1 + (j + 1 < n && (t[j + 1] == '+' || t[j + 1] == '-'));
                for (k = i; k < n && is_digit(t[k]); k++)
                        ;
                if (k > i && r == 0)
                        r = sb_put(b, t + j, k - j);
        }
        return r;
}

static bool is_number_char(char c) {
        return is_digit(c) || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

/* Write the raw value s[0..n) token by token (see put_string and
 * put_number); bytes cJSON skips as space but JSON does not become ' '. */
static int put_value(struct strbuf *b, const char *s, size_t n) {
        size_t i = 0, e;
        int r = 0;

        while (i < n && r == 0) {
                if (s[i] == '"') {
                        e = string_end(s, n, i);
                        r = put_string(b, s + i + 1, e - i - 1);
                        i = e < n ? e + 1 : n;
                } else if (s[i] == '-' || is_digit(s[i])) {
                        for (e = i + 1; e < n && is_number_char(s[e]); e++)
                                ;
                        r = put_number(b, s + i, e - i);
                        i = e;
                } else if ((unsigned char)s[i] <= 0x20 && !is_json_space(s[i])) {
                        r = sb_putc(b, ' ');
                        i++;
                } else {
                        r = sb_putc(b, s[i++]);
                }
        }
        return r;
}

/* Scan up to max members of the object in s[0..n) into m, decoding each
 * key into names (room for n bytes). Returns the number found. */
static size_t scan_members(const char *s, size_t n, struct member *m, size_t max,
                           char *names) {
        size_t pos = skip_space(s, n, 0) + 1, count = 0, used = 0;

        while (count < max && next_member(s, n, &pos, &m[count])) {
                m[count].name = names + used;
                m[count].name_len = decode_string(s + m[count].key, m[count].key_len, names + used);
                used += m[count].name_len;
                m[count].index = count;
                count++;
        }
        return count;
}

/* Write the members the holder keeps from its object s[0..n) (cJSON found
 * max members), each as "\n\t<key>:\t<value>,". Returns 0 or -ENOMEM. */
static int put_holder_members(struct strbuf *b, const char *s, size_t n, size_t max) {
        struct member *m = calloc(max ? max : 1, sizeof(*m));
        char *names = malloc(n ? n : 1);
        size_t i, count;
        int r = -ENOMEM;

        if (!m || !names)
                goto out;
        count = scan_members(s, n, m, max, names);
        r = mark_kept(m, count);
        for (i = 0; i < count && r == 0; i++) {
                if (!m[i].keep)
                        continue;
                r = sb_puts(b, "\n\t");
                if (r == 0)
                        r = put_string(b, s + m[i].key, m[i].key_len);
                if (r == 0)
                        r = sb_puts(b, ":\t");
                if (r == 0)
                        r = put_value(b, s + m[i].value, m[i].value_len);
                if (r == 0)
                        r = sb_putc(b, ',');
        }
out:
        free(m);
        free(names);
        return r;
}

/* ---- one lock's document ---- */

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
static int put_document(struct strbuf *b, cJSON *daemon, const char *text, size_t count) {
        char *printed = cJSON_Print(daemon);
        int r;

        if (!printed)
                return -ENOMEM;
        if (text && printed[0] == '{') {
                r = sb_putc(b, '{');
                if (r == 0)
                        r = put_holder_members(b, text, strlen(text), count);
                if (r == 0)
                        r = sb_puts(b, printed + 1);
        } else {
                r = sb_puts(b, printed);
        }
        cJSON_free(printed);
        return r;
}

/* Write one lock's status object (no trailing newline). The holder's
 * content, made valid UTF-8, is spliced in when it is a JSON object, else
 * shown as "content" when non-empty. Returns 0 or -ENOMEM. */
static int put_lock(struct strbuf *b, const struct lock_view *v, int64_t now_ms,
                    const char *host) {
        cJSON *holder = NULL, *daemon;
        char *text = NULL;
        int r;

        if (v->content && v->content_len > 0) {
                text = utf8_sanitize(v->content, v->content_len);
                if (!text)
                        return -ENOMEM;
                holder = parse_object(text, strlen(text));
        }
        daemon = daemon_object(v, now_ms, host, holder ? NULL : text);
        r = daemon ? put_document(b, daemon, holder ? text : NULL,
                                  (size_t)cJSON_GetArraySize(holder))
                   : -ENOMEM;
        cJSON_Delete(daemon);
        cJSON_Delete(holder);
        free(text);
        return r;
}

/* Hand b's text to the caller, or free it and return NULL when r < 0. */
static char *sb_finish(struct strbuf *b, int r, size_t *ret_len) {
        if (r < 0) {
                free(b->p);
                return NULL;
        }
        if (ret_len)
                *ret_len = b->len;
        return b->p;
}

char *status_render(const struct lock_view *v, int64_t now_ms, const char *host,
                    size_t *ret_len) {
        struct strbuf b = {0};
        int r = put_lock(&b, v, now_ms, host);

        if (r == 0)
                r = sb_putc(&b, '\n');
        return sb_finish(&b, r, ret_len);
}

/* Write n locks as array members, each after ",\n" unless it is the
 * array's first (first: v[0] is). */
static int put_members(struct strbuf *b, const struct lock_view *v, size_t n, bool first,
                       int64_t now_ms, const char *host) {
        size_t i;
        int r = 0;

        for (i = 0; i < n && r == 0; i++) {
                if (i > 0 || !first)
                        r = sb_puts(b, ",\n");
                if (r == 0)
                        r = put_lock(b, &v[i], now_ms, host);
        }
        return r;
}

char *status_render_array(const struct lock_view *v, size_t n, int64_t now_ms,
                          const char *host, size_t *ret_len) {
        struct strbuf b = {0};
        int r = sb_putc(&b, '[');

        if (r == 0)
                r = put_members(&b, v, n, true, now_ms, host);
        if (r == 0)
                r = sb_puts(&b, "]\n");
        return sb_finish(&b, r, ret_len);
}

char *status_render_piece(const struct lock_view *v, size_t n, bool open, bool first,
                          bool close, int64_t now_ms, const char *host, size_t *ret_len) {
        struct strbuf b = {0};
        int r = sb_put(&b, "", 0); /* "" rather than NULL when there is nothing */

        if (r == 0 && open)
                r = sb_putc(&b, '[');
        if (r == 0)
                r = put_members(&b, v, n, first, now_ms, host);
        if (r == 0 && close)
                r = sb_puts(&b, "]\n");
        return sb_finish(&b, r, ret_len);
}
