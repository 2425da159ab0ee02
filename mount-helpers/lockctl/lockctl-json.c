/* SPDX-License-Identifier: MIT */
/* A JSON scanner for lockctl: walks the daemon's status text in place, so
 * what it prints keeps every number and string exactly as written. */
#include <errno.h>
#include <string.h>

#include "lockctl.h"
#include "json_scan.h"

/* The first index at or after i that is not whitespace. */
static size_t skip_ws(struct lc_span t, size_t i) {
        return json_skip_space(t.p, t.n, i);
}

/* The index just past the string that starts at i, or 0 when it has no
 * closing quote. */
static size_t skip_string(struct lc_span t, size_t i) {
        return json_string_end(t.p, t.n, i);
}

/* The index just past the value at i (after whitespace), or 0 when there
 * is none. */
static size_t skip_value(struct lc_span t, size_t i) {
        return json_value_end(t.p, t.n, skip_ws(t, i));
}

struct lc_span lc_json_trim(struct lc_span v) {
        while (v.n > 0 && json_is_space(v.p[0])) {
                v.p++;
                v.n--;
        }
        while (v.n > 0 && json_is_space(v.p[v.n - 1]))
                v.n--;
        return v;
}

int lc_json_iter_init(struct lc_json_iter *it, struct lc_span v, char close) {
        char open = close == '}' ? '{' : '[';

        v = lc_json_trim(v);
        if (v.n < 2 || v.p[0] != open || v.p[v.n - 1] != close)
                return -EINVAL;
        *it = (struct lc_json_iter){.text = v, .pos = 1, .close = close, .first = true};
        return 0;
}

int lc_json_next(struct lc_json_iter *it, struct lc_span *ret_key, struct lc_span *ret_val) {
        struct lc_span t = it->text;
        size_t i = skip_ws(t, it->pos), end;

        if (i >= t.n)
                return -EINVAL;
        if (t.p[i] == it->close) {
                it->pos = i;
                return 0;
        }
        if (!it->first) {
                if (t.p[i] != ',')
                        return -EINVAL;
                i = skip_ws(t, i + 1);
        }
        it->first = false;
        if (it->close == '}') {
                if (i >= t.n || t.p[i] != '"')
                        return -EINVAL;
                end = skip_string(t, i);
                if (end == 0)
                        return -EINVAL;
                if (ret_key)
                        *ret_key = (struct lc_span){t.p + i, end - i};
                i = skip_ws(t, end);
                if (i >= t.n || t.p[i] != ':')
                        return -EINVAL;
                i = skip_ws(t, i + 1);
        }
        end = skip_value(t, i);
        if (end == 0)
                return -EINVAL;
        *ret_val = (struct lc_span){t.p + i, end - i};
        it->pos = end;
        return 1;
}

int lc_json_get(struct lc_span obj, const char *key, struct lc_span *ret_val) {
        struct lc_json_iter it;
        struct lc_span k, v;
        size_t key_len = strlen(key);
        int r = lc_json_iter_init(&it, obj, '}');

        while (r >= 0 && (r = lc_json_next(&it, &k, &v)) > 0) {
                _cleanup_free_ char *name = NULL;
                size_t name_len;
                bool match;

                if (!memchr(k.p, '\\', k.n)) /* no escapes: compare in place */
                        match = k.n - 2 == key_len && memcmp(k.p + 1, key, key_len) == 0;
                else
                        match = lc_json_string(k, &name, &name_len) == 0 &&
                                name_len == key_len && memcmp(name, key, key_len) == 0;
                if (match) {
                        *ret_val = v;
                        return 1;
                }
        }
        return r;
}

char lc_json_type(struct lc_span v) {
        v = lc_json_trim(v);
        if (v.n == 0)
                return 0;
        switch (v.p[0]) {
        case '{': case '[': case '"': case 'n': case 't': case 'f':
                return v.p[0];
        default:
                return '0';
        }
}

int lc_json_string(struct lc_span v, char **ret, size_t *ret_len) {
        v = lc_json_trim(v);
        if (v.n < 2 || v.p[0] != '"' || v.p[v.n - 1] != '"')
                return -EINVAL;
        size_t n = v.n - 2;
        char *out = lc_oom(malloc(n + n / 2 + 2)); /* JSON_U_REPLACE's bound, and the NUL */
        size_t o = json_decode_string(v.p + 1, n, out, JSON_U_REPLACE);

        out[o] = '\0';
        *ret = out;
        if (ret_len)
                *ret_len = o;
        return 0;
}

int lc_json_int(struct lc_span v, int64_t *ret) {
        char buf[32], *end;
        long long x;

        v = lc_json_trim(v);
        if (v.n == 0 || v.n >= sizeof(buf))
                return -EINVAL;
        for (size_t i = 0; i < v.n; i++)
                if (!((v.p[i] >= '0' && v.p[i] <= '9') || (i == 0 && v.p[i] == '-')))
                        return -EINVAL;
        memcpy(buf, v.p, v.n);
        buf[v.n] = '\0';
        errno = 0;
        x = strtoll(buf, &end, 10);
        if (errno != 0 || *end != '\0' || end == buf)
                return -EINVAL;
        *ret = x;
        return 0;
}

static void newline(FILE *f, bool pretty, int depth) {
        if (!pretty)
                return;
        fputc('\n', f);
        for (int d = 0; d < depth; d++)
                fputs("  ", f);
}

void lc_json_print(FILE *f, struct lc_span v, bool pretty, int indent) {
        int depth = indent;

        v = lc_json_trim(v);
        for (size_t i = 0; i < v.n; i++) {
                char c = v.p[i];
                size_t j;

                switch (c) {
                case ' ': case '\t': case '\n': case '\r':
                        break;
                case '"':
                        j = skip_string(v, i);
                        if (j == 0)
                                j = v.n;
                        fwrite(v.p + i, 1, j - i, f);
                        i = j - 1;
                        break;
                case '{': case '[':
                        fputc(c, f);
                        j = skip_ws(v, i + 1);
                        if (j < v.n && (v.p[j] == '}' || v.p[j] == ']')) {
                                fputc(v.p[j], f); /* {} and [] stay on one line */
                                i = j;
                                break;
                        }
                        newline(f, pretty, ++depth);
                        break;
                case '}': case ']':
                        newline(f, pretty, --depth);
                        fputc(c, f);
                        break;
                case ',':
                        fputc(c, f);
                        newline(f, pretty, depth);
                        break;
                case ':':
                        fputs(pretty ? ": " : ":", f);
                        break;
                default:
                        fputc(c, f);
                        break;
                }
        }
}
