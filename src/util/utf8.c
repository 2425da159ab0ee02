/* SPDX-License-Identifier: MIT */
/* JSON \u escapes and UTF-8 encoding. */
#include "utf8.h"

bool json_hex4(const char *s, size_t n, uint32_t *ret) {
        uint32_t v = 0;
        if (n < 4)
                return false;
        for (int i = 0; i < 4; i++) {
                char c = s[i];
                v <<= 4;
                if (c >= '0' && c <= '9')
                        v |= (uint32_t)(c - '0');
                else if (c >= 'a' && c <= 'f')
                        v |= (uint32_t)(c - 'a' + 10);
                else if (c >= 'A' && c <= 'F')
                        v |= (uint32_t)(c - 'A' + 10);
                else
                        return false;
        }
        *ret = v;
        return true;
}

size_t json_u_escape(const char *s, size_t n, uint32_t *ret_cp) {
        uint32_t hi, lo;
        if (!json_hex4(s, n, &hi))
                return 0;
        *ret_cp = hi;
        if (hi >= 0xD800 && hi <= 0xDBFF && n >= 10 && s[4] == '\\' && s[5] == 'u' &&
            json_hex4(s + 6, n - 6, &lo) && lo >= 0xDC00 && lo <= 0xDFFF) {
                *ret_cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
                return 10;
        }
        return 4;
}

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
