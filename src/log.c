/* SPDX-License-Identifier: MIT */
/* Daemon logging to stderr or syslog, filtered by level. */
#include <stdarg.h>
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

void log_vmsg(int level, const char *fmt, va_list ap) {
        if (!log_enabled(level))
                return;
        char line[1024];
        vsnprintf(line, sizeof(line), fmt, ap);
        size_t n = strlen(line);
        while (n && line[n - 1] == '\n') /* libfuse ends its messages with one */
                line[--n] = '\0';
        if (log_to_syslog)
                syslog(level, "%s", line);
        else
                fprintf(stderr, "lockfs: %s\n", line);
}

void log_msg(int level, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        log_vmsg(level, fmt, ap);
        va_end(ap);
}
