/* SPDX-License-Identifier: MIT */
/* The in-place JSON scanner (json_scan.h). */
#include "json_scan.h"
#include "utf8.h"

size_t json_skip_space(const char *s, size_t n, size_t i) {
        while (i < n && json_is_space(s[i]))
                i++;
        return i;
}

size_t json_string_end(const char *s, size_t n, size_t i) {
        for (i++; i < n; i++) {
                if (s[i] == '\\')
                        i++;
                else if (s[i] == '"')
                        return i + 1;
        }
        return 0;
}

static bool is_literal_char(char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || c == '-' || c == '+' ||
               c == '.' || c == 'E';
}

/* The index just past the object or array opened at s[i], or 0. */
static size_t container_end(const char *s, size_t n, size_t i) {
        size_t depth = 0;

        while (i < n) {
                char c = s[i];

                if (c == '"') {
                        i = json_string_end(s, n, i);
                        if (i == 0)
                                return 0;
                        continue;
                }
                if (c == '{' || c == '[')
                        depth++;
                else if ((c == '}' || c == ']') && --depth == 0)
                        return i + 1;
                i++;
        }
        return 0;
}

size_t json_value_end(const char *s, size_t n, size_t i) {
        if (i >= n)
                return 0;
        if (s[i] == '"')
                return json_string_end(s, n, i);
        if (s[i] == '{' || s[i] == '[')
                return container_end(s, n, i);
        size_t start = i;
        while (i < n && is_literal_char(s[i]))
                i++;
        return i > start ? i : 0;
}

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

size_t json_bad_u_len(const char *s, size_t n) {
        size_t k = 2;

        while (k < 6 && k < n && (unsigned char)s[k] < 0x80)
                k++;
        return k;
}

/* Decode the \u escape at s[0..n) (n >= 2, s[1] == 'u') into out under
 * policy; *ret_len is the bytes written. Returns the bytes consumed. */
static size_t decode_u(const char *s, size_t n, char *out, size_t *ret_len,
                       enum json_u_policy policy) {
        uint32_t cp;
        size_t used = json_u_escape(s + 2, n - 2, &cp);
        bool lone_surrogate = used && cp >= 0xD800 && cp <= 0xDFFF;

        if (policy == JSON_U_REPLACE && (!used || lone_surrogate)) {
                *ret_len = utf8_encode(0xFFFD, out);
                return 2 + used;
        }
        if (!used) {
                out[0] = '\0';
                *ret_len = 1;
                return json_bad_u_len(s, n);
        }
        *ret_len = utf8_encode(cp, out);
        return 2 + used;
}

/* The byte a short escape \c stands for: \b \f \n \r \t, else c itself. */
static char short_escape(char c) {
        switch (c) {
        case 'b': return '\b';
        case 'f': return '\f';
        case 'n': return '\n';
        case 'r': return '\r';
        case 't': return '\t';
        default: return c;
        }
}

size_t json_decode_string(const char *s, size_t n, char *out, enum json_u_policy policy) {
        size_t i = 0, o = 0;

        while (i < n) {
                if (s[i] != '\\' || i + 1 == n) {
                        out[o++] = s[i++];
                } else if (s[i + 1] == 'u') {
                        size_t k;

                        i += decode_u(s + i, n - i, out + o, &k, policy);
                        o += k;
                } else {
                        out[o++] = short_escape(s[i + 1]);
                        i += 2;
                }
        }
        return o;
}

/* Follow one byte c inside an object; true when it closes the object. */
static bool frame_byte(struct json_frame *f, char c) {
        if (f->in_string) {
                if (f->escaped)
                        f->escaped = false;
                else if (c == '\\')
                        f->escaped = true;
                else if (c == '"')
                        f->in_string = false;
        } else if (c == '"') {
                f->in_string = true;
        } else if (c == '{' || c == '[') {
                f->depth++;
        } else if (c == '}' || c == ']') {
                return --f->depth == 0;
        }
        return false;
}

enum json_frame_result json_frame_next(struct json_frame *f, const char *s, size_t n,
                                       size_t *ret_start, size_t *ret_end) {
        for (; f->pos < n; f->pos++) {
                char c = s[f->pos];

                if (f->depth > 0) {
                        if (frame_byte(f, c)) {
                                *ret_start = f->start;
                                *ret_end = ++f->pos;
                                return JSON_FRAME_OBJECT;
                        }
                } else if (c == '{') {
                        f->start = f->pos;
                        f->depth = 1;
                } else if (!json_is_space(c)) {
                        return JSON_FRAME_BAD;
                }
        }
        return JSON_FRAME_MORE;
}

size_t json_frame_unneeded(const struct json_frame *f, size_t n) {
        return f->depth > 0 ? f->start : n;
}

void json_frame_shift(struct json_frame *f, size_t k) {
        f->pos -= k;
        f->start = f->start >= k ? f->start - k : 0;
}
