/* SPDX-License-Identifier: MIT */
/* libFuzzer harness over what holders write: the claim parser and the
 * status renderer. Input: one byte for the length of a lock name, the
 * name (any bytes: hostile names), then the content. The rendered status
 * must always be one valid JSON object whose "lockfs" facts survive. */
#include <cjson/cJSON.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size < 1)
                return 0;
        size_t name_len = data[0] < size - 1 ? data[0] : size - 1;
        char path[260] = "/";
        memcpy(path + 1, data + 1, name_len);
        path[1 + name_len] = '\0'; /* a NUL in the name ends it, as in the kernel */
        const uint8_t *content = data + 1 + name_len;
        size_t content_len = size - 1 - name_len;

        struct content_claim claim = status_parse_claim((const char *)content, content_len);
        if (claim.has_pid && claim.pid < 0)
                __builtin_trap();

        char *copy = malloc(content_len ? content_len : 1);
        if (!copy)
                return 0;
        memcpy(copy, content, content_len);
        struct lock_view v = {
                .path = path, .ino = 42, .fence = 7, .how = LOCK_HOW_CREATOR,
                .liveness_known = true, .pid = 1234, .uid = 1000, .gid = 1000,
                .acquired_at_ms = 1700000000000, .renewed_at_ms = 1700000000000,
                .ttl_s = 60, .expires_at_ms = 1700000060000, .content = copy,
                .content_len = content_len,
        };
        memcpy(v.comm, "fuzz\n\"\\", 8);
        size_t len;
        char *out = status_render(&v, 1700000001000, "host", &len);
        if (out) {
                cJSON *doc = cJSON_ParseWithLength(out, len);
                cJSON *facts = doc ? cJSON_GetObjectItemCaseSensitive(doc, "lockfs") : NULL;
                cJSON *pid = facts ? cJSON_GetObjectItemCaseSensitive(facts, "pid") : NULL;
                cJSON *top = doc ? cJSON_GetObjectItemCaseSensitive(doc, "pid") : NULL;
                if (!cJSON_IsObject(doc) || !cJSON_IsNumber(pid) || pid->valuedouble != 1234 ||
                    !cJSON_IsNumber(top) || top->valuedouble != 1234)
                        __builtin_trap(); /* the status must stay valid and truthful */
                cJSON_Delete(doc);
                free(out);
        }
        free(copy);
        return 0;
}
