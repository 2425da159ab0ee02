/* SPDX-License-Identifier: MIT */
/* Daemon logging to stderr or syslog, filtered by level. */
#include <stdarg.h>
#include <stdio.h>

#include "log.h"

static bool log_to_syslog;
static bool log_debug_on;

void log_setup(bool to_syslog, bool debug) {
        log_to_syslog = to_syslog;
        log_debug_on = debug;
        if (to_syslog)
                openlog("lockfs", LOG_PID, LOG_DAEMON);
}

void log_msg(int level, const char *fmt, ...) {
        if (level == LOG_DEBUG && !log_debug_on)
                return;
        va_list ap;
        va_start(ap, fmt);
        if (log_to_syslog) {
                vsyslog(level, fmt, ap);
        } else {
                char line[1024];
                vsnprintf(line, sizeof(line), fmt, ap);
                fprintf(stderr, "lockfs: %s\n", line);
        }
        va_end(ap);
}
