/* SPDX-License-Identifier: MIT */
/* UTF-8 repair and encoding (utf8.h). */
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

size_t utf8_encode(uint32_t cp, char out[4]) {
        if (cp < 0x80) {
                out[0] = (char)cp;
                return 1;
        }
        if (cp < 0x800) {
                out[0] = (char)(0xC0 | (cp >> 6));
                out[1] = (char)(0x80 | (cp & 0x3F));
                return 2;
        }
        if (cp < 0x10000) {
                out[0] = (char)(0xE0 | (cp >> 12));
                out[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
                out[2] = (char)(0x80 | (cp & 0x3F));
                return 3;
        }
        out[0] = (char)(0xF0 | (cp >> 18));
        out[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
        out[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
        out[3] = (char)(0x80 | (cp & 0x3F));
        return 4;
}

/* Length of the valid UTF-8 sequence at s (n >= 1 bytes available), or 0
 * when it is invalid; then *ret_bad is the length of its maximal invalid
 * prefix, which is replaced by one U+FFFD. NUL counts as invalid. */
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

char *utf8_sanitize(const char *s, size_t n) {
        const unsigned char *u = (const unsigned char *)s;
        size_t bad, len, out_len = 0;

        for (size_t i = 0; i < n; i += len ? len : bad) {
                len = utf8_seq(u + i, n - i, &bad);
                out_len += len ? len : sizeof(UTF8_REPLACEMENT) - 1;
        }
        char *out = malloc(out_len + 1), *w = out;
        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i += len ? len : bad) {
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
