/* SPDX-License-Identifier: MIT */
/* Daemon logging to stderr or syslog, filtered by level. Every line is
 * escaped at the sink (log_escape), so no name, comm or cmdline that a user
 * chose can start a line of its own or hide in the terminal. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

static bool log_to_syslog;
static bool log_debug_on;

void log_setup(bool to_syslog, bool debug) {
        log_to_syslog = to_syslog;
        log_debug_on = debug;
        if (to_syslog)
                openlog("lockfs", LOG_PID, LOG_DAEMON);
}

bool log_enabled(int level) {
        return level != LOG_DEBUG || log_debug_on;
}

/* Length of the well-formed UTF-8 sequence at s (n bytes available) that
 * starts with a byte >= 0x80, with its code point in *cp; 0 when there is
 * none (stray continuation, overlong form, surrogate, past U+10FFFF, cut
 * short). */
static size_t utf8_seq(const unsigned char *s, size_t n, uint32_t *cp) {
        unsigned char c = s[0], lo = 0x80, hi = 0xBF;
        size_t len;
        uint32_t v;

        if (c >= 0xC2 && c <= 0xDF) {
                len = 2;
                v = c & 0x1F;
        } else if (c >= 0xE0 && c <= 0xEF) {
                len = 3;
                v = c & 0x0F;
                if (c == 0xE0)
                        lo = 0xA0; /* overlong */
                else if (c == 0xED)
                        hi = 0x9F; /* surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
                len = 4;
                v = c & 0x07;
                if (c == 0xF0)
                        lo = 0x90; /* overlong */
                else if (c == 0xF4)
                        hi = 0x8F; /* past U+10FFFF */
        } else {
                return 0;
        }
        if (n < len || s[1] < lo || s[1] > hi)
                return 0;
        v = (v << 6) | (s[1] & 0x3F);
        for (size_t i = 2; i < len; i++) {
                if (s[i] < 0x80 || s[i] > 0xBF)
                        return 0;
                v = (v << 6) | (s[i] & 0x3F);
        }
        *cp = v;
        return len;
}

/* Characters that are valid UTF-8 but control the display: C1 controls,
 * the line and paragraph separators, and the bidirectional overrides and
 * isolates that can make a line read as another. */
static bool cp_is_control(uint32_t cp) {
        return (cp >= 0x80 && cp <= 0x9F) || cp == 0x2028 || cp == 0x2029 ||
               (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x2069);
}

size_t log_escape(const char *s, size_t n, char *out, size_t size) {
        static const char hex[] = "0123456789abcdef";
        const unsigned char *u = (const unsigned char *)s;
        size_t o = 0, i = 0;

        if (size == 0)
                return 0;
        while (i < n) {
                uint32_t cp = 0;
                size_t len = 1;
                bool esc;

                if (u[i] < 0x80)
                        esc = u[i] < 0x20 || u[i] == 0x7F || u[i] == '\\';
                else if ((len = utf8_seq(u + i, n - i, &cp)) == 0)
                        esc = true, len = 1; /* not a character: this byte alone */
                else
                        esc = cp_is_control(cp);
                size_t need = esc ? 4 * len : len;
                if (need > size - 1 - o)
                        break; /* only whole characters and escapes */
                for (size_t k = 0; k < len; k++) {
                        if (esc) {
                                out[o++] = '\\';
                                out[o++] = 'x';
                                out[o++] = hex[u[i + k] >> 4];
                                out[o++] = hex[u[i + k] & 0xF];
                        } else {
                                out[o++] = (char)u[i + k];
                        }
                }
                i += len;
        }
        out[o] = '\0';
        return o;
}

void log_vmsg(int level, const char *fmt, va_list ap) {
        if (!log_enabled(level))
                return;
        char line[1024], esc[4 * sizeof(line)];
        vsnprintf(line, sizeof(line), fmt, ap);
        size_t n = strlen(line);
        while (n && line[n - 1] == '\n') /* libfuse ends its messages with one */
                line[--n] = '\0';
        log_escape(line, n, esc, sizeof(esc));
        if (log_to_syslog)
                syslog(level, "%s", esc);
        else
                fprintf(stderr, "lockfs: %s\n", esc);
}

void log_msg(int level, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        log_vmsg(level, fmt, ap);
        va_end(ap);
}
