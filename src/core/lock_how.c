/* SPDX-License-Identifier: MIT */
/* The names of enum lock_how (lock_how.h). */
#include <errno.h>
#include <string.h>

#include "lock_how.h"

static const char *const lock_how_names[] = {
        [LOCK_HOW_CREATOR] = "creator",
        [LOCK_HOW_CLAIM] = "claim",
        [LOCK_HOW_FLOCK] = "flock",
        [LOCK_HOW_DETACHED] = "detached",
        [LOCK_HOW_FCNTL] = "fcntl",
        [LOCK_HOW_MKDIR] = "mkdir",
};

#define N_LOCK_HOW (sizeof(lock_how_names) / sizeof(lock_how_names[0]))
_Static_assert(N_LOCK_HOW == LOCK_HOW_COUNT, "every lock_how has a name");

const char *lock_how_name(enum lock_how how) {
        if ((unsigned)how >= N_LOCK_HOW || !lock_how_names[how])
                return "unknown";
        return lock_how_names[how];
}

int lock_how_parse(const char *name, enum lock_how *ret) {
        if (!name)
                return -EINVAL;
        for (size_t h = 0; h < N_LOCK_HOW; h++) {
                if (lock_how_names[h] && strcmp(name, lock_how_names[h]) == 0) {
                        *ret = (enum lock_how)h;
                        return 0;
                }
        }
        return -EINVAL;
}
