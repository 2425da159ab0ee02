/* SPDX-License-Identifier: MIT */
/* Reaper thread: poll the table's event fd and a stop eventfd. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "log.h"
#include "reaper.h"

struct reaper {
        struct locktable *table;
        lt_removed_fn fn;
        void *ctx;
        int stopfd;
        pthread_t thread;
};

static void *reaper_main(void *arg) {
        struct reaper *r = arg;
        struct pollfd fds[2] = {
                { .fd = locktable_reaper_fd(r->table), .events = POLLIN },
                { .fd = r->stopfd, .events = POLLIN },
        };
        for (;;) {
                if (poll(fds, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        log_msg(LOG_ERR, "reaper: poll failed: %s", strerror(errno));
                        break;
                }
                if (fds[1].revents)
                        break;
                if (fds[0].revents) {
                        int n = locktable_reap(r->table, r->fn, r->ctx);
                        if (n < 0)
                                log_msg(LOG_ERR, "reaper: %s", strerror(-n));
                }
        }
        return NULL;
}

int reaper_start(struct locktable *t, lt_removed_fn fn, void *ctx, struct reaper **ret) {
        struct reaper *r = calloc(1, sizeof(*r));
        if (!r)
                return -ENOMEM;
        *r = (struct reaper){ .table = t, .fn = fn, .ctx = ctx };
        r->stopfd = eventfd(0, EFD_CLOEXEC);
        if (r->stopfd < 0) {
                int e = -errno;
                free(r);
                return e;
        }
        int e = pthread_create(&r->thread, NULL, reaper_main, r);
        if (e) {
                close(r->stopfd);
                free(r);
                return -e;
        }
        *ret = r;
        return 0;
}

void reaper_stop(struct reaper *r) {
        if (!r)
                return;
        uint64_t one = 1;
        if (write(r->stopfd, &one, sizeof(one)) != sizeof(one))
                log_msg(LOG_ERR, "reaper: cannot signal stop: %s", strerror(errno));
        pthread_join(r->thread, NULL);
        close(r->stopfd);
        free(r);
}
