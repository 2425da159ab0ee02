/* SPDX-License-Identifier: MIT */
/* Reading etcd's JSON gateway answers (etcd_internal.h): int64 fields
 * (strings on the wire), base64 bytes, key-values; and the base64 key
 * range of a prefix. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"
#include "etcd_internal.h"

char *wire_b64_str(const char *s) {
        return etcd_b64_encode(s, strlen(s));
}

/* The end is the prefix with its last byte below 0xff incremented and what
 * follows dropped, or "\0" (every key from the start on) when there is no
 * such byte; the empty prefix starts at "\0" (etcd refuses an empty key). */
int wire_prefix_range64(const char *prefix, char **ret_key64, char **ret_end64) {
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

int wire_int(const cJSON *o, const char *name, int64_t *v) {
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

int64_t wire_header_rev(const cJSON *j) {
        int64_t rev = 0;
        wire_int(cJSON_GetObjectItemCaseSensitive(j, "header"), "revision", &rev);
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

int wire_parse_kv(const cJSON *j, struct etcd_kv *kv) {
        memset(kv, 0, sizeof(*kv));
        if (!cJSON_IsObject(j))
                return -EIO;
        int r = json_bytes(j, "key", &kv->key, &kv->key_len);
        if (r >= 0)
                r = json_bytes(j, "value", &kv->value, &kv->value_len);
        if (r >= 0)
                r = wire_int(j, "create_revision", &kv->create_revision);
        if (r >= 0)
                r = wire_int(j, "mod_revision", &kv->mod_revision);
        if (r >= 0)
                r = wire_int(j, "lease", &kv->lease);
        /* etcd's revisions and lease ids are never negative */
        if (r >= 0 && (kv->create_revision < 0 || kv->mod_revision < 0 || kv->lease < 0))
                r = -EIO;
        if (r < 0)
                etcd_kv_clear(kv);
        return r;
}
