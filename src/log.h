/* SPDX-License-Identifier: MIT */
/* Daemon logging: stderr in the foreground, syslog otherwise. The core
 * logs only at LOG_DEBUG; the daemon logs once, where it acts. */
#ifndef LOCKFS_LOG_H
#define LOCKFS_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <syslog.h>

/* Choose the sink and verbosity; call once before threads start. */
void log_setup(bool to_syslog, bool debug);

/* True when messages at level are written (debug only with -d/-o debug). */
bool log_enabled(int level);
/* vprintf-style, for libfuse's log function (same levels). */
void log_vmsg(int level, const char *fmt, va_list ap);
/* printf-style message at a syslog level (LOG_ERR .. LOG_DEBUG). */
void log_msg(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
