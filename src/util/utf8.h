/* SPDX-License-Identifier: MIT */
/* UTF-8: validating and repairing bytes from outside, encoding code
 * points. */
#ifndef LOCKFS_UTF8_H
#define LOCKFS_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* U+FFFD REPLACEMENT CHARACTER, encoded. */
#define UTF8_REPLACEMENT "\xEF\xBF\xBD"

/* Encode code point cp (at most 0x10FFFF) as UTF-8 into out; returns its
 * length, 1 to 4. */
size_t utf8_encode(uint32_t cp, char out[4]);

/* Copy n bytes of s as valid UTF-8: each invalid sequence (its maximal
 * invalid prefix, Unicode's "maximal subpart") and each NUL becomes one
 * U+FFFD, so the result is also a C string that holds all of it. Returns
 * a malloc'd NUL-terminated string, or NULL on allocation failure. */
char *utf8_sanitize(const char *s, size_t n);

#endif
