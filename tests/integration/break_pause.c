/* SPDX-License-Identifier: MIT */
/* An LD_PRELOAD shim for lockctl tests: it stops `lockctl break` between
 * its status read and its break ioctl, so a test can make the lock change
 * hands exactly there. At a LOCKFS_IOC_BREAK it writes one byte to the
 * descriptor in LOCKFS_TEST_BREAK_READY_FD, then waits for one byte (or
 * EOF) on LOCKFS_TEST_BREAK_GO_FD; with LOCKFS_TEST_BREAK_ERRNO=N it then
 * fails the ioctl with errno N instead of making it (a daemon without the
 * ioctl answers ENOTTY). Every other ioctl passes through untouched. */
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

#include "lockfs_ioctl.h"

static int env_int(const char *name) {
        const char *s = getenv(name);
        return s && *s ? atoi(s) : -1;
}

int ioctl(int fd, unsigned long request, ...) {
        static int (*real)(int, unsigned long, ...);
        va_list ap;
        void *arg;

        va_start(ap, request);
        arg = va_arg(ap, void *);
        va_end(ap);
        if (!real)
                real = (int (*)(int, unsigned long, ...))dlsym(RTLD_NEXT, "ioctl");
        if (request == LOCKFS_IOC_BREAK) {
                int ready = env_int("LOCKFS_TEST_BREAK_READY_FD");
                int go = env_int("LOCKFS_TEST_BREAK_GO_FD");
                int err = env_int("LOCKFS_TEST_BREAK_ERRNO");
                char c = 'r';
                if (ready >= 0 && write(ready, &c, 1) != 1)
                        _exit(99);
                if (go >= 0 && read(go, &c, 1) < 0)
                        _exit(99);
                if (err > 0) {
                        errno = err;
                        return -1;
                }
        }
        return real(fd, request, arg);
}
