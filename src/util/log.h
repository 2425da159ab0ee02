/* SPDX-License-Identifier: MIT */
/* Daemon logging: stderr in the foreground, syslog otherwise, every line
 * escaped (log_escape). The core logs only at LOG_DEBUG; the daemon logs
 * once, where it acts. */
#ifndef LOCKFS_LOG_H
#define LOCKFS_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <syslog.h>

/* Choose the sink and verbosity; call once before threads start. */
void log_setup(bool to_syslog, bool debug);

/* True when messages at level are written (debug only with -d/-o debug). */
bool log_enabled(int level);
/* vprintf-style, for libfuse's log function (same levels). */
void log_vmsg(int level, const char *fmt, va_list ap);
/* Copy n bytes of s into out (size bytes, NUL-terminated) so that they
 * make one unambiguous line of text: control bytes (newline included, and
 * DEL), bytes that are not well-formed UTF-8, C1 controls, line separators
 * and bidirectional overrides become \xNN per byte, and so does a
 * backslash, as `lockctl ls` shows names. Stops before an escape or a
 * character that would not fit whole. Returns the length written. Every
 * logged line goes through it (log_vmsg), so call sites log names as is. */
size_t log_escape(const char *s, size_t n, char *out, size_t size);

/* printf-style message at a syslog level (LOG_ERR .. LOG_DEBUG). */
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
