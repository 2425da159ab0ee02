/* SPDX-License-Identifier: MIT */
/* Base64 (b64.h). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "b64.h"

static const char b64_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *etcd_b64_encode(const void *data, size_t n) {
        const unsigned char *s = data;
        if (n > (SIZE_MAX - 1) / 4 * 3 - 2)
                return NULL;
        char *out = malloc((n + 2) / 3 * 4 + 1), *o = out;
        if (!out)
                return NULL;
        size_t i = 0;
        for (; i + 2 < n; i += 3) {
                uint32_t v = (uint32_t)s[i] << 16 | (uint32_t)s[i + 1] << 8 | s[i + 2];
                *o++ = b64_chars[v >> 18];
                *o++ = b64_chars[v >> 12 & 63];
                *o++ = b64_chars[v >> 6 & 63];
                *o++ = b64_chars[v & 63];
        }
        if (i < n) {
                uint32_t v = (uint32_t)s[i] << 16 | (i + 1 < n ? (uint32_t)s[i + 1] << 8 : 0);
                *o++ = b64_chars[v >> 18];
                *o++ = b64_chars[v >> 12 & 63];
                *o++ = i + 1 < n ? b64_chars[v >> 6 & 63] : '=';
                *o++ = '=';
        }
        *o = '\0';
        return out;
}

static int b64_value(unsigned char c) {
        if (c >= 'A' && c <= 'Z')
                return c - 'A';
        if (c >= 'a' && c <= 'z')
                return c - 'a' + 26;
        if (c >= '0' && c <= '9')
                return c - '0' + 52;
        if (c == '+')
                return 62;
        if (c == '/')
                return 63;
        return -1;
}

int etcd_b64_decode(const char *s, size_t n, char **ret, size_t *ret_len) {
        size_t pad = 0;
        while (n > 0 && s[n - 1] == '=') {
                n--;
                pad++;
        }
        if (n % 4 == 1 || pad > 2 || (pad && (n + pad) % 4))
                return -EIO;
        char *out = malloc(n / 4 * 3 + 3), *o = out;
        if (!out)
                return -ENOMEM;
        uint32_t acc = 0;
        int bits = 0;
        for (size_t i = 0; i < n; i++) {
                int v = b64_value((unsigned char)s[i]);
                if (v < 0) {
                        free(out);
                        return -EIO;
                }
                acc = acc << 6 | (uint32_t)v;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        *o++ = (char)(acc >> bits & 0xff);
                }
        }
        *o = '\0';
        *ret = out;
        *ret_len = (size_t)(o - out);
        return 0;
}
