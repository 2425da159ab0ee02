/* SPDX-License-Identifier: MIT */
/* The holder's members, copied and repaired (json_splice.h). The scan
 * finds each member's key and value with json_scan; the copy then goes
 * token by token, so that what cJSON let through but JSON does not is
 * rewritten, and nothing else is touched. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_scan.h"
#include "json_splice.h"

static int put_char(struct buf *b, char c) {
        return buf_put(b, &c, 1);
}

static bool is_digit(char c) {
        return c >= '0' && c <= '9';
}

/* cJSON skips every byte <= 0x20 between tokens, not only JSON's four. */
static size_t skip_cjson_space(const char *s, size_t n, size_t i) {
        while (i < n && (unsigned char)s[i] <= 0x20)
                i++;
        return i;
}

/* ---- finding the members ---- */

/* One member of the holder's object: spans of the text, and the key
 * decoded (it may hold NULs, hence name_len). */
struct member {
        size_t key, key_len;     /* the key's content, inside its quotes */
        size_t value, value_len; /* the raw value */
        const char *name;
        size_t name_len;
        size_t index;
        bool keep;
};

/* Find the member after position *pos of the object in s[0..n); *pos
 * starts just past its '{'. Returns false at the end of the object. */
static bool next_member(const char *s, size_t n, size_t *pos, struct member *m) {
        size_t i = skip_cjson_space(s, n, *pos);

        if (i < n && s[i] == ',')
                i = skip_cjson_space(s, n, i + 1);
        if (i >= n || s[i] != '"')
                return false;
        size_t key_end = json_string_end(s, n, i);
        if (key_end == 0)
                return false;
        m->key = i + 1;
        m->key_len = key_end - i - 2;
        i = skip_cjson_space(s, n, key_end);
        if (i >= n || s[i] != ':')
                return false;
        m->value = skip_cjson_space(s, n, i + 1);
        size_t value_end = json_value_end(s, n, m->value);
        if (value_end == 0)
                return false;
        m->value_len = value_end - m->value;
        *pos = value_end;
        return true;
}

/* Scan up to max members of the object in s[0..n) into m, decoding each
 * key into names (room for n bytes: decoding never grows). Returns the
 * number found. */
static size_t scan_members(const char *s, size_t n, struct member *m, size_t max,
                           char *names) {
        size_t pos = skip_cjson_space(s, n, 0) + 1, count = 0, used = 0;

        while (count < max && next_member(s, n, &pos, &m[count])) {
                m[count].name = names + used;
                m[count].name_len = json_decode_string(s + m[count].key, m[count].key_len,
                                                       names + used, JSON_U_AS_CJSON);
                used += m[count].name_len;
                m[count].index = count;
                count++;
        }
        return count;
}

/* ---- choosing the members kept ---- */

static bool is_dropped_name(const char *name, size_t len, const char *const *drop) {
        for (size_t i = 0; drop && drop[i]; i++)
                if (len == strlen(drop[i]) && memcmp(name, drop[i], len) == 0)
                        return true;
        return false;
}

/* Order members by decoded name, then by position. */
static int member_cmp(const void *a, const void *b) {
        const struct member *x = *(struct member *const *)a, *y = *(struct member *const *)b;
        int c = memcmp(x->name, y->name, x->name_len < y->name_len ? x->name_len : y->name_len);

        if (c != 0)
                return c;
        if (x->name_len != y->name_len)
                return x->name_len < y->name_len ? -1 : 1;
        return x->index < y->index ? -1 : x->index > y->index;
}

/* Drop the names in drop and all but the last of each duplicated name.
 * Returns 0 or -ENOMEM. */
static int mark_kept(struct member *m, size_t count, const char *const *drop) {
        if (count == 0)
                return 0;
        struct member **order = malloc(count * sizeof(*order));
        if (!order)
                return -ENOMEM;
        for (size_t i = 0; i < count; i++) {
                m[i].keep = !is_dropped_name(m[i].name, m[i].name_len, drop);
                order[i] = &m[i];
        }
        qsort(order, count, sizeof(*order), member_cmp);
        for (size_t i = 0; i + 1 < count; i++)
                if (order[i]->name_len == order[i + 1]->name_len &&
                    memcmp(order[i]->name, order[i + 1]->name, order[i]->name_len) == 0)
                        order[i]->keep = false;
        free(order);
        return 0;
}

/* ---- copying with repairs ---- */

/* Write the escape at s[0..n) (s[0] is a backslash, n >= 2) as JSON: a
 * valid \uXXXX or short escape as it is, a bad \u escape (U+0000 to cJSON)
 * as \u0000. Sets *ret_used to the bytes it took. */
static int put_escape(struct buf *b, const char *s, size_t n, size_t *ret_used) {
        uint32_t cp;

        if (s[1] == 'u') {
                bool ok = json_hex4(s + 2, n - 2, &cp);

                *ret_used = ok ? 6 : json_bad_u_len(s, n);
                return ok ? buf_put(b, s, 6) : buf_puts(b, "\\u0000");
        }
        *ret_used = 2;
        return buf_put(b, s, 2);
}

/* Write byte c of a string's content, escaped when JSON wants it. */
static int put_string_byte(struct buf *b, unsigned char c) {
        static const char short_esc[] = "\b\\b\f\\f\n\\n\r\\r\t\\t";
        const char *p;
        char esc[8];

        if (c == '\\' || c == '"') {
                esc[0] = '\\';
                esc[1] = (char)c;
                return buf_put(b, esc, 2);
        }
        if (c < 0x20 && (p = memchr(short_esc, c, sizeof(short_esc) - 1)))
                return buf_put(b, p + 1, 2);
        if (c < 0x20) {
                snprintf(esc, sizeof(esc), "\\u%04x", c);
                return buf_puts(b, esc);
        }
        return put_char(b, (char)c);
}

/* Write the content of a JSON string, s[0..n), quoted. Valid escapes and
 * text are copied as they are; raw control characters, stray quotes or
 * backslashes and bad \u escapes (U+0000 to cJSON) are escaped. */
static int put_string(struct buf *b, const char *s, size_t n) {
        size_t k;
        int r = put_char(b, '"');

        for (size_t i = 0; i < n && r == 0; i += k) {
                k = 1;
                if (s[i] == '\\' && i + 1 < n && memchr("\"\\/bfnrtu", s[i + 1], 9))
                        r = put_escape(b, s + i, n - i, &k);
                else
                        r = put_string_byte(b, (unsigned char)s[i]);
        }
        return r ? r : put_char(b, '"');
}

/* Write a number cJSON accepted (strtod syntax from '-' or a digit) in
 * JSON syntax: unchanged when it already is; else leading zeros are
 * dropped, "0" supplied before '.', a '.' without digits dropped (and
 * anything past a well-formed exponent, which cJSON never lets through). */
static int put_number(struct buf *b, const char *t, size_t n) {
        size_t i = 0, j, k;
        int r = 0;

        if (i < n && t[i] == '-')
                r = put_char(b, t[i++]);
        for (j = i; j < n && is_digit(t[j]); j++)
                ;
        while (i + 1 < j && t[i] == '0')
                i++;
        if (r == 0)
                r = j > i ? buf_put(b, t + i, j - i) : put_char(b, '0');
        if (j < n && t[j] == '.') {
                for (k = j + 1; k < n && is_digit(t[k]); k++)
                        ;
                if (k > j + 1 && r == 0)
                        r = buf_put(b, t + j, k - j);
                j = k;
        }
        if (j < n && (t[j] == 'e' || t[j] == 'E')) {
                i = j + 1 + (j + 1 < n && (t[j + 1] == '+' || t[j + 1] == '-'));
                for (k = i; k < n && is_digit(t[k]); k++)
                        ;
                if (k > i && r == 0)
                        r = buf_put(b, t + j, k - j);
        }
        return r;
}

static bool is_number_char(char c) {
        return is_digit(c) || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E';
}

/* Write the string whose opening quote is s[*i] (see put_string); an
 * unclosed one (never in text cJSON accepted) runs to n. Moves *i past it. */
static int put_string_at(struct buf *b, const char *s, size_t n, size_t *i) {
        size_t end = json_string_end(s, n, *i);
        size_t content_end = end ? end - 1 : n;
        int r = put_string(b, s + *i + 1, content_end - *i - 1);

        *i = end ? end : n;
        return r;
}

/* Write the raw value s[0..n) token by token (see put_string and
 * put_number); bytes cJSON skips as space but JSON does not become ' '. */
static int put_value(struct buf *b, const char *s, size_t n) {
        size_t i = 0;
        int r = 0;

        while (i < n && r == 0) {
                if (s[i] == '"') {
                        r = put_string_at(b, s, n, &i);
                } else if (s[i] == '-' || is_digit(s[i])) {
                        size_t e = i + 1;

                        while (e < n && is_number_char(s[e]))
                                e++;
                        r = put_number(b, s + i, e - i);
                        i = e;
                } else if ((unsigned char)s[i] <= 0x20 && !json_is_space(s[i])) {
                        r = put_char(b, ' ');
                        i++;
                } else {
                        r = put_char(b, s[i++]);
                }
        }
        return r;
}

/* Write member m of s as "\n\t<key>:\t<value>,". */
static int put_member(struct buf *b, const char *s, const struct member *m) {
        int r = buf_puts(b, "\n\t");

        if (r == 0)
                r = put_string(b, s + m->key, m->key_len);
        if (r == 0)
                r = buf_puts(b, ":\t");
        if (r == 0)
                r = put_value(b, s + m->value, m->value_len);
        if (r == 0)
                r = put_char(b, ',');
        return r;
}

int json_splice_members(struct buf *b, const char *s, size_t n, size_t count,
                        const char *const *drop) {
        struct member *m = calloc(count ? count : 1, sizeof(*m));
        char *names = malloc(n ? n : 1);
        int r = -ENOMEM;

        if (!m || !names)
                goto out;
        size_t found = scan_members(s, n, m, count, names);
        r = mark_kept(m, found, drop);
        for (size_t i = 0; i < found && r == 0; i++)
                if (m[i].keep)
                        r = put_member(b, s, &m[i]);
out:
        free(m);
        free(names);
        return r;
}
