/* SPDX-License-Identifier: MIT */
/* lockctl helpers: messages, terminal-safe text, durations and timestamps,
 * reading a whole file. */
#include <errno.h>
#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <wchar.h>
#include <wctype.h>

#include "buf.h"
#include "lockctl.h"

void lc_err(const char *fmt, ...) {
        va_list ap;

        fflush(stdout);
        fputs("lockctl: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
}

void *lc_oom(void *p) {
        if (!p) {
                fputs("lockctl: out of memory\n", stderr);
                exit(EX_OSERR);
        }
        return p;
}

static size_t put_hex(char *out, unsigned char c) {
        static const char hex[] = "0123456789abcdef";

        out[0] = '\\';
        out[1] = 'x';
        out[2] = hex[c >> 4];
        out[3] = hex[c & 0xF];
        return 4;
}

char *lc_escape(const char *s, size_t n, bool esc_backslash, size_t *ret_width) {
        char *out = lc_oom(malloc(4 * n + 1));
        size_t o = 0, width = 0, i = 0;
        mbstate_t st;

        while (i < n) {
                unsigned char c = (unsigned char)s[i];
                wchar_t wc;
                size_t len;
                int w;

                if (c < 0x80) {
                        if (c >= 0x20 && c < 0x7F && !(c == '\\' && esc_backslash)) {
                                out[o++] = (char)c;
                                width++;
                        } else {
                                o += put_hex(out + o, c);
                                width += 4;
                        }
                        i++;
                        continue;
                }
                memset(&st, 0, sizeof(st));
                len = mbrtowc(&wc, s + i, n - i, &st);
                if (len == (size_t)-1 || len == (size_t)-2 || len == 0) {
                        o += put_hex(out + o, c); /* not a character here */
                        width += 4;
                        i++;
                        continue;
                }
                w = wcwidth(wc);
                if (!iswprint((wint_t)wc) || w < 0) {
                        for (size_t k = 0; k < len; k++)
                                o += put_hex(out + o, (unsigned char)s[i + k]);
                        width += 4 * len;
                } else {
                        memcpy(out + o, s + i, len);
                        o += len;
                        width += (size_t)w;
                }
                i += len;
        }
        out[o] = '\0';
        if (ret_width)
                *ret_width = width;
        return out;
}

char *lc_esc(const char *s) {
        return lc_escape(s, strlen(s), true, NULL);
}

void lc_duration(int64_t ms, char *buf, size_t size) {
        long long s = ms > 0 ? ms / 1000 : 0;

        if (s < 60)
                snprintf(buf, size, "%llds", s);
        else if (s < 3600)
                snprintf(buf, size, "%lldm%02llds", s / 60, s % 60);
        else if (s < 86400)
                snprintf(buf, size, "%lldh%02lldm", s / 3600, s % 3600 / 60);
        else
                snprintf(buf, size, "%lldd%02lldh", s / 86400, s % 86400 / 3600);
}

int lc_parse_time(const char *s, int64_t *ret_ms) {
        struct tm tm = {0};
        int ms = 0, n = 0;
        time_t t;

        if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms, &n) != 7 ||
            n == 0 || s[n] != '\0')
                return -EINVAL;
        tm.tm_year -= 1900;
        tm.tm_mon -= 1;
        t = timegm(&tm);
        if (t == (time_t)-1)
                return -EINVAL;
        *ret_ms = (int64_t)t * 1000 + ms;
        return 0;
}

int lc_read_all(int fd, size_t max, char **ret, size_t *ret_len) {
        struct buf b = { 0 };

        for (;;) {
                if (b.len >= max) {
                        buf_free(&b);
                        return -EFBIG;
                }
                if (b.len + 1 >= b.cap && buf_reserve(&b, b.len ? b.len : 4096) < 0)
                        lc_oom(NULL);
                size_t room = b.cap - b.len - 1; /* buf keeps a byte for the NUL */
                if (room > max - b.len)
                        room = max - b.len;
                ssize_t k = read(fd, b.data + b.len, room);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        int r = -errno;
                        buf_free(&b);
                        return r;
                }
                if (k == 0)
                        break;
                b.len += (size_t)k;
        }
        b.data[b.len] = '\0';
        if (ret_len)
                *ret_len = b.len;
        *ret = buf_steal(&b);
        return 0;
}
