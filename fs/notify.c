/* SPDX-License-Identifier: MIT */
/* Kernel cache invalidation for removals the daemon makes on its own
 * (holder death, TTL): a queue and one thread that calls
 * fuse_lowlevel_notify_delete, so the name vanishes for every observer and
 * a watch on the file gets IN_DELETE_SELF. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"
#include "list.h"
#include "log.h"

struct pending {
        struct list link; /* on notifier.queue */
        uint64_t parent;
        uint64_t ino;
        char name[];
};

struct notifier {
        struct fuse_session *se;
        pthread_mutex_t mu;
        pthread_cond_t cond;
        struct list queue; /* pending, oldest first, under mu */
        bool stopping;
        pthread_t thread;
};

static void *notifier_main(void *arg) {
        struct notifier *n = arg;
        pthread_mutex_lock(&n->mu);
        for (;;) {
                while (list_empty(&n->queue) && !n->stopping)
                        pthread_cond_wait(&n->cond, &n->mu);
                struct pending *p = list_first_entry_or_null(&n->queue, struct pending, link);
                if (!p)
                        break;
                list_del(&p->link);
                pthread_mutex_unlock(&n->mu);
                int r = fuse_lowlevel_notify_delete(n->se, p->parent, p->ino, p->name,
                                                    strlen(p->name));
                if (r < 0 && r != -ENOENT && r != -ENOTCONN)
                        log_debug("notify_delete %s: %s", p->name, strerror(-r));
                free(p);
                pthread_mutex_lock(&n->mu);
        }
        pthread_mutex_unlock(&n->mu);
        return NULL;
}

int notifier_start(struct fuse_session *se, struct notifier **ret) {
        struct notifier *n = calloc(1, sizeof(*n));
        if (!n)
                return -ENOMEM;
        n->se = se;
        list_init(&n->queue);
        pthread_mutex_init(&n->mu, NULL);
        pthread_cond_init(&n->cond, NULL);
        int e = pthread_create(&n->thread, NULL, notifier_main, n);
        if (e) {
                pthread_cond_destroy(&n->cond);
                pthread_mutex_destroy(&n->mu);
                free(n);
                return -e;
        }
        *ret = n;
        return 0;
}

void notifier_stop(struct notifier *n) {
        if (!n)
                return;
        pthread_mutex_lock(&n->mu);
        n->stopping = true;
        /* Nothing is listening once we stop: drop what is queued. */
        struct list *pos, *tmp;
        list_for_each_safe(pos, tmp, &n->queue) {
                list_del(pos);
                free(list_entry(pos, struct pending, link));
        }
        pthread_cond_signal(&n->cond);
        pthread_mutex_unlock(&n->mu);
        pthread_join(n->thread, NULL);
        pthread_cond_destroy(&n->cond);
        pthread_mutex_destroy(&n->mu);
        free(n);
}

void notifier_removed(void *arg, uint64_t parent, uint64_t ino, const char *name) {
        struct notifier *n = arg;
        size_t len = strlen(name);
        struct pending *p = malloc(sizeof(*p) + len + 1);
        if (!p) {
                log_msg(LOG_ERR, "out of memory: kernel not told that %s is gone", name);
                return;
        }
        p->parent = parent;
        p->ino = ino;
        memcpy(p->name, name, len + 1);
        pthread_mutex_lock(&n->mu);
        if (n->stopping) {
                free(p);
        } else {
                list_add_tail(&n->queue, &p->link);
                pthread_cond_signal(&n->cond);
        }
        pthread_mutex_unlock(&n->mu);
}
