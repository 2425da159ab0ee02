/* SPDX-License-Identifier: MIT */
/* Reading what a holder wrote: its pid and TTL claims, its JSON object
 * (claim.h). */
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "claim.h"
#include "json_scan.h"

#define CLAIM_TTL_MAX_S (10u * 365u * 24u * 3600u)       /* 10 years */

cJSON *content_parse_object(const char *s, size_t n) {
        size_t start = json_skip_space(s, n, 0);

        if (start == n || s[start] != '{')
                return NULL;
        const char *end = NULL;
        cJSON *j = cJSON_ParseWithLengthOpts(s, n, &end, false);
        if (!j)
                return NULL;
        if (!cJSON_IsObject(j) || !end || json_skip_space(s, n, (size_t)(end - s)) != n) {
                cJSON_Delete(j);
                return NULL;
        }
        return j;
}

/* True when s[0..n) is optional whitespace, 1+ digits, optional whitespace,
 * with a value <= INT32_MAX; the value goes to *ret. */
static bool parse_decimal_pid(const char *s, size_t n, pid_t *ret) {
        const char *p = s, *end = s + n;

        while (p < end && json_is_space(*p))
                p++;
        while (end > p && json_is_space(end[-1]))
                end--;
        if (p == end)
                return false;
        int64_t v = 0;
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
        if (!cJSON_IsNumber(item))
                return false;
        double d = item->valuedouble;
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
                        c->has_ttl = json_uint(it, CLAIM_TTL_MAX_S, &v);
                        c->ttl_s = c->has_ttl ? (uint32_t)v : 0;
                }
        }
}

struct content_claim status_parse_claim(const char *content, size_t len) {
        struct content_claim c = { 0 };

        if (!content || len == 0)
                return c;
        if (parse_decimal_pid(content, len, &c.pid)) {
                c.has_pid = true;
                return c;
        }
        char *copy = malloc(len + 1);
        if (!copy)
                return c;
        memcpy(copy, content, len);
        copy[len] = '\0';
        cJSON *o = content_parse_object(copy, len);
        free(copy);
        if (o)
                claim_from_object(o, &c);
        cJSON_Delete(o);
        return c;
}
