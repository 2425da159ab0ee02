/* SPDX-License-Identifier: MIT */
/* Per-uid and total accounting of the status documents open files hold
 * (see status_budget.h). */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "htab.h"
#include "log.h"
#include "status_budget.h"

#include "container_of.h"
#define REFUSAL_LOG_PERIOD 10 /* s: at most one log line about refusals per period */

struct uid_use {
        struct hlink by_uid;
        uid_t uid;
        size_t bytes;
};

struct status_budget {
        pthread_mutex_t mu;
        size_t per_uid, total;
        size_t used;             /* every uid's */
        time_t last_log;         /* of a refusal */
        struct htab uids;        /* struct uid_use, while bytes > 0 */
};

struct status_budget *status_budget_new(size_t per_uid, size_t total, size_t max_render) {
        struct status_budget *b = calloc(1, sizeof(*b));
        if (!b)
                return NULL;
        if (htab_init(&b->uids) < 0) {
                free(b);
                return NULL;
        }
        if (per_uid == 0) {
                per_uid = STATUS_BUDGET_DEFAULT_PER_UID;
                if (max_render <= SIZE_MAX / 2 && per_uid < 2 * max_render)
                        per_uid = 2 * max_render;
        }
        if (total == 0) {
                total = STATUS_BUDGET_DEFAULT_TOTAL;
                if (per_uid <= SIZE_MAX / 8 && total < 8 * per_uid)
                        total = 8 * per_uid;
        }
        b->per_uid = per_uid;
        b->total = total;
        pthread_mutex_init(&b->mu, NULL);
        return b;
}

void status_budget_free(struct status_budget *b) {
        if (!b)
                return;
        for (size_t i = 0; b->uids.buckets && i <= b->uids.mask; i++) {
                struct hlink *l;
                while ((l = b->uids.buckets[i])) {
                        htab_remove(&b->uids, l);
                        free(container_of(l, struct uid_use, by_uid));
                }
        }
        htab_free(&b->uids);
        pthread_mutex_destroy(&b->mu);
        free(b);
}

static struct uid_use *use_find(struct status_budget *b, uid_t uid) {
        uint64_t h = htab_hash_u64(uid);
        for (struct hlink *l = htab_chain(&b->uids, h); l; l = l->next) {
                struct uid_use *u = container_of(l, struct uid_use, by_uid);
                if (l->hash == h && u->uid == uid)
                        return u;
        }
        return NULL;
}

int status_budget_charge(struct status_budget *b, uid_t uid, size_t bytes) {
        if (!b || bytes == 0)
                return 0;
        int r = 0;
        pthread_mutex_lock(&b->mu);
        struct uid_use *u = use_find(b, uid);
        size_t mine = u ? u->bytes : 0;
        if (bytes > b->per_uid - mine || bytes > SIZE_MAX - b->used ||
            (uid != 0 && b->used + bytes > b->total)) {
                r = -ENOMEM;
        } else if (!u) {
                u = calloc(1, sizeof(*u));
                if (u) {
                        u->uid = uid;
                        htab_insert(&b->uids, &u->by_uid, htab_hash_u64(uid));
                } else {
                        r = -ENOMEM;
                }
        }
        if (r == 0) {
                u->bytes += bytes;
                b->used += bytes;
        }
        time_t now = time(NULL);
        bool log = r < 0 && now - b->last_log >= REFUSAL_LOG_PERIOD;
        if (log)
                b->last_log = now;
        size_t used = b->used;
        pthread_mutex_unlock(&b->mu);
        if (log)
                log_msg(LOG_WARNING, "status memory: refused %zu bytes more to uid %u, which holds "
                        "%zu (status_mem_per_uid %zu; all users hold %zu, status_mem_total %zu): "
                        "its open or read gets ENOMEM", bytes, (unsigned)uid, mine, b->per_uid,
                        used, b->total);
        return r;
}

void status_budget_release(struct status_budget *b, uid_t uid, size_t bytes) {
        if (!b || bytes == 0)
                return;
        pthread_mutex_lock(&b->mu);
        struct uid_use *u = use_find(b, uid);
        if (u) {
                size_t n = bytes < u->bytes ? bytes : u->bytes;
                u->bytes -= n;
                b->used -= n;
                if (u->bytes == 0) {
                        htab_remove(&b->uids, &u->by_uid);
                        free(u);
                }
        }
        pthread_mutex_unlock(&b->mu);
}

size_t status_budget_used(struct status_budget *b, uid_t uid) {
        if (!b)
                return 0;
        pthread_mutex_lock(&b->mu);
        struct uid_use *u = use_find(b, uid);
        size_t n = u ? u->bytes : 0;
        pthread_mutex_unlock(&b->mu);
        return n;
}

size_t status_budget_total_used(struct status_budget *b) {
        if (!b)
                return 0;
        pthread_mutex_lock(&b->mu);
        size_t n = b->used;
        pthread_mutex_unlock(&b->mu);
        return n;
}

size_t status_budget_per_uid(const struct status_budget *b) {
        return b ? b->per_uid : SIZE_MAX;
}

size_t status_budget_total(const struct status_budget *b) {
        return b ? b->total : SIZE_MAX;
}
