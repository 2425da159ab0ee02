/* SPDX-License-Identifier: MIT */
/* The two clocks lockfs reads, in milliseconds: monotonic for deadlines
 * and timeouts, wall (realtime) for what users see (since, expires_at). */
#ifndef LOCKFS_CLOCK_H
#define LOCKFS_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline int64_t clock_ms_of(clockid_t id) {
        struct timespec ts;
        clock_gettime(id, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static inline int64_t clock_mono_ms(void) {
        return clock_ms_of(CLOCK_MONOTONIC);
}

static inline int64_t clock_wall_ms(void) {
        return clock_ms_of(CLOCK_REALTIME);
}

#endif
