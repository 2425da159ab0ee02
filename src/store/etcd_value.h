/* SPDX-License-Identifier: MIT */
/* The value of a lock's key in etcd (etcd_value.c): who holds the lock,
 * as one JSON object. Pure encoding and decoding; the keys and the calls
 * are store_etcd.c's. */
#ifndef LOCKFS_ETCD_VALUE_H
#define LOCKFS_ETCD_VALUE_H

#include <stddef.h>

#include "lockview.h"

/* The value of lock v held through this host (host): its holder fields,
 * times, TTL, content and, when a claim was ignored, claim_ignored_pid.
 * A malloc'd NUL-terminated text (its length in *ret_len), or NULL on
 * ENOMEM. */
char *store_etcd_value_encode(const struct lock_view *v, const char *host, size_t *ret_len);

/* Decode a lock's value as read from etcd, which anyone with write access
 * to the prefix can forge: every field present, of its type and in range
 * (pid 1..2^22, 0 when detached; uid and gid below 2^32-1; times 0 ..
 * year 9999; ttl_s 32-bit; comm, cmdline and host within their sizes,
 * host not empty and without control bytes). claim_ignored_pid alone may
 * be absent (daemons before it wrote none: 0), else 0..2^31-1. Sets v's
 * holder fields, host, claim_ignored_pid and content (path and fence are
 * the caller's). 0; -EINVAL with the reason in why (v untouched);
 * -ENOMEM. */
int store_etcd_value_decode(const char *text, size_t len, struct lock_view *v, char *why,
                            size_t whylen);

#endif
