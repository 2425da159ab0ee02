/* SPDX-License-Identifier: MIT */
/* The etcd client's requests (etcd.h): leases, the transactions that
 * create, update and delete a key only when its create revision is as
 * expected, prefix ranges, and the start-up check. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "b64.h"
#include "etcd_internal.h"

/* ---- leases ---- */

int etcd_lease_grant(struct etcd *e, int64_t ttl_s, int64_t *ret_id, int64_t *ret_ttl) {
        char body[64];
        snprintf(body, sizeof(body), "{\"TTL\":\"%lld\"}", (long long)ttl_s);
        cJSON *j;
        int r = client_call(e, NULL, "/v3/lease/grant", body, CALL_LEASE, &j);
        if (r < 0)
                return r;
        int64_t id, ttl;
        const cJSON *err = cJSON_GetObjectItemCaseSensitive(j, "error");
        if (wire_int(j, "ID", &id) < 0 || wire_int(j, "TTL", &ttl) < 0 || id <= 0 ||
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
        int r = client_call(e, NULL, "/v3/lease/keepalive", body, CALL_LEASE | CALL_STREAM, &j);
        if (r < 0)
                return r;
        int64_t ttl;
        if (wire_int(j, "TTL", &ttl) < 0)
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
        int r = client_call(e, NULL, "/v3/lease/revoke", body, CALL_LEASE, &j);
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
        int r = client_call(e, NULL, "/v3/kv/txn", body, flags, &j);
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
        char *key64 = wire_b64_str(key), *put = NULL, *get = NULL;
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
                int64_t rev = wire_header_rev(j);
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
                int pr = wire_parse_kv(x, ret_holder);
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
        char *key64 = wire_b64_str(key), *put = NULL;
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
        char *key64 = wire_b64_str(key), *del = NULL;
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

int requests_range_prefix(struct etcd *e, struct etcd_runner *run, const char *prefix,
                          struct etcd_kv **ret, size_t *ret_n, int64_t *ret_rev) {
        char *key64 = NULL, *end64 = NULL, *body = NULL;
        cJSON *j = NULL;
        struct etcd_kv *kvs = NULL;
        size_t n = 0;
        int r = wire_prefix_range64(prefix, &key64, &end64);
        if (r < 0)
                return r;
        if (asprintf(&body, "{\"key\":\"%s\",\"range_end\":\"%s\"}", key64, end64) < 0) {
                body = NULL;
                r = -ENOMEM;
                goto out;
        }
        r = client_call(e, run, "/v3/kv/range", body, 0, &j);
        if (r < 0)
                goto out;
        const cJSON *arr = cJSON_GetObjectItemCaseSensitive(j, "kvs"), *kv;
        size_t count = (size_t)cJSON_GetArraySize(arr);
        if (count && !(kvs = calloc(count, sizeof(*kvs)))) {
                r = -ENOMEM;
                goto out;
        }
        cJSON_ArrayForEach(kv, arr) {
                if ((r = wire_parse_kv(kv, &kvs[n])) < 0)
                        goto out;
                n++;
        }
        *ret = kvs;
        *ret_n = n;
        if (ret_rev)
                *ret_rev = wire_header_rev(j);
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
        return requests_range_prefix(e, NULL, prefix, ret, ret_n, ret_rev);
}


/* ---- the start-up check ---- */

static void copy_error(struct etcd *e, char *why, size_t whylen) {
        pthread_mutex_lock(&e->lock);
        snprintf(why, whylen, "%s", e->last_error[0] ? e->last_error : "no details");
        pthread_mutex_unlock(&e->lock);
}

/* The check's read: a count of the prefix. A failed call puts its reason
 * in why (else why stays as it is). */
static int check_read(struct etcd *e, const char *prefix, char *why, size_t whylen) {
        char *key64, *end64, *body;
        int r = wire_prefix_range64(prefix, &key64, &end64);
        if (r < 0)
                return r;
        if (asprintf(&body, "{\"key\":\"%s\",\"range_end\":\"%s\",\"count_only\":true}",
                     key64, end64) < 0)
                body = NULL;
        free(key64);
        free(end64);
        if (!body)
                return -ENOMEM;
        cJSON *j = NULL;
        r = client_call(e, NULL, "/v3/kv/range", body, 0, &j);
        cJSON_Delete(j);
        free(body);
        if (r < 0)
                copy_error(e, why, whylen);
        return r;
}

/* The check's write: a transaction whose comparison never holds (a
 * version is never below 0), so its put never runs, but etcd checks the
 * permission for it. A failed call puts its reason in why. */
static int check_write(struct etcd *e, const char *prefix, char *why, size_t whylen) {
        char *probe, *probe64 = NULL, *body = NULL;
        if (asprintf(&probe, "%s.lockfs/check", prefix) < 0)
                return -ENOMEM;
        if ((probe64 = wire_b64_str(probe)) &&
            asprintf(&body,
                     "{\"compare\":[{\"key\":\"%s\",\"target\":\"VERSION\",\"result\":\"LESS\","
                     "\"version\":\"0\"}],\"success\":[{\"request_delete_range\":{\"key\":\"%s\"}}],"
                     "\"failure\":[]}", probe64, probe64) < 0)
                body = NULL;
        free(probe);
        free(probe64);
        if (!body)
                return -ENOMEM;
        cJSON *j = NULL;
        int r = client_call(e, NULL, "/v3/kv/txn", body, 0, &j);
        cJSON_Delete(j);
        free(body);
        if (r < 0)
                copy_error(e, why, whylen);
        return r;
}

int etcd_check(struct etcd *e, const char *prefix, char *why, size_t whylen) {
        int r = 0;
        snprintf(why, whylen, "out of memory");
        if (e->user) {
                pthread_mutex_lock(&e->auth_lock);
                r = client_authenticate(e);
                pthread_mutex_unlock(&e->auth_lock);
                if (r < 0) {
                        copy_error(e, why, whylen);
                        return r;
                }
        }
        r = check_read(e, prefix, why, whylen);
        if (r == 0)
                r = check_write(e, prefix, why, whylen);
        if (r == 0)
                why[0] = '\0';
        return r;
}
