/* SPDX-License-Identifier: MIT */
/* What a holder wrote into its lock, read two ways: as a claim (a pid,
 * a TTL: SPEC R3.3, R5.3) and as a JSON object to show in the status
 * (R4.2). */
#ifndef LOCKFS_CLAIM_H
#define LOCKFS_CLAIM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct cJSON;

/* What the content written by a holder asks for (SPEC R3.3, R5.3). */
struct content_claim {
        bool has_pid;     /* a decimal pid (whitespace allowed) or JSON "pid" */
        pid_t pid;        /* the claimed pid; 0 = detached (R3.3a) */
        bool has_ttl;     /* a JSON object with a numeric "ttl_s" >= 0 */
        uint32_t ttl_s;
};

/* Parse len bytes of holder content (not NUL-terminated). Never fails:
 * content that asks nothing gives an all-false claim. A JSON pid must be an
 * integer in [0, INT32_MAX]; a decimal pid may be padded with spaces,
 * tabs or newlines on either side (HDB/UUCP style). */
struct content_claim status_parse_claim(const char *content, size_t len);

/* Parse s[0..n) (with a NUL at s[n]) as exactly one JSON object, with only
 * JSON whitespace around it. Returns the object (cJSON_Delete() it), or
 * NULL when s is anything else or memory ran out. */
struct cJSON *content_parse_object(const char *s, size_t n);

#endif
