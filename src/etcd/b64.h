/* SPDX-License-Identifier: MIT */
/* Standard base64 with padding (b64.c), as the etcd JSON gateway carries
 * keys and values. */
#ifndef LOCKFS_ETCD_B64_H
#define LOCKFS_ETCD_B64_H

#include <stddef.h>

/* The base64 text of data[0..n): malloc'd and NUL-terminated, or NULL on
 * ENOMEM (also when the length would overflow). */
char *etcd_b64_encode(const void *data, size_t n);
/* The bytes s[0..n) stand for: malloc'd and NUL-terminated (the NUL not
 * counted in *ret_len) in *ret. 0, -EIO for text that is not base64 (a
 * byte outside the alphabet, a bad length or padding), -ENOMEM. */
int etcd_b64_decode(const char *s, size_t n, char **ret, size_t *ret_len);

#endif
