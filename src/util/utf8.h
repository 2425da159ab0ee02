/* SPDX-License-Identifier: MIT */
/* JSON \u escapes and UTF-8 encoding, shared by the status renderer and
 * lockctl's JSON reader. */
#ifndef LOCKFS_UTF8_H
#define LOCKFS_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Parse 4 hex digits at s (n bytes available) into *ret; false when there
 * are fewer or one is not a hex digit. */
bool json_hex4(const char *s, size_t n, uint32_t *ret);

/* Decode the \u escape whose hex digits start at s (n bytes available,
 * just past the 'u'), joining a high surrogate with a following \uDC00-
 * \uDFFF escape. Returns the bytes used after the 'u' (4, or 10 for a
 * pair) and the code point in *ret_cp (an unpaired surrogate as is), or 0
 * when s does not start with 4 hex digits. */
size_t json_u_escape(const char *s, size_t n, uint32_t *ret_cp);

/* Encode code point cp (at most 0x10FFFF) as UTF-8 into out; returns its
 * length, 1 to 4. */
size_t utf8_encode(uint32_t cp, char out[4]);

#endif
