/* SPDX-License-Identifier: MIT */
/* The etcd store's watch feed (store_etcd_internal.h): every change under
 * the prefix, as the watch reports it on its thread, becomes a call of
 * s->ev (other hosts' locks appear, change and vanish); a key of our own
 * lease that no create here was answered for is an orphan, and goes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "etcd_value.h"
#include "log.h"
#include "store_etcd_internal.h"

/* ---- the watch: other hosts' locks ---- */

/* Did the listing name path? (store_etcd_events.sync_end) */
static bool listed_has(void *arg, const char *path) {
        struct store_etcd *s = arg;
        char *key = es_key_of(s, path);
        if (!key)
                return true; /* without memory, keep what we hold */
        bool found = key_listing_has(&s->listed, key);
        free(key);
        return found;
}

/* A key of our own lease was put: made by a create that was answered
 * (held here, or released since: nothing to do), or by one in flight or
 * unanswered (in the uncertain set). holds() waits for the table lock, so
 * for the uncertain set the answer has come by then: a key nothing here
 * holds is an orphan, and goes. */
static void on_own_put(struct store_etcd *s, const struct etcd_kv *kv, const char *path) {
        if (!es_uncertain_has(s, kv->key) || !s->ev.holds ||
            s->ev.holds(s->ev.ctx, path, (uint64_t)kv->create_revision) ||
            !es_uncertain_take(s, kv->key))
                return;
        int r = etcd_delete_if(s->etcd, kv->key, kv->create_revision);
        if (r == 0)
                log_msg(LOG_NOTICE, "etcd: deleted %s, made by a create that had failed",
                        kv->key);
        else if (r == -ESTALE) /* gone already: not that create's key */
                es_uncertain_add(s, kv->key);
}

/* Another daemon's lock at path was put: decode it and tell the table. */
static void on_other_put(struct store_etcd *s, const struct etcd_kv *kv, char *path) {
        if (!kv->lease) {
                /* every daemon's key is on its lease; one without was
                 * written by hand (or forged): not a lock */
                es_log_ignored(s, kv, "it has no lease, so no lockfs daemon made it");
                return;
        }
        if (kv->create_revision <= 0) {
                es_log_ignored(s, kv, "it has no create revision");
                return;
        }
        struct lock_view v = { .path = path, .fence = (uint64_t)kv->create_revision };
        char why[128];
        int r = store_etcd_value_decode(kv->value, kv->value_len, &v, why, sizeof(why));
        if (r == 0 && s->ev.put)
                s->ev.put(s->ev.ctx, &v);
        else if (r == -EINVAL)
                es_log_ignored(s, kv, why);
        v.path = NULL; /* the caller's */
        lock_view_clear(&v);
}

/* Is kv a lock's key: under the prefix (else silently not), and without a
 * NUL byte, which no path holds (logged)? */
static bool is_lock_key(struct store_etcd *s, const struct etcd_kv *kv) {
        if (kv->key_len <= s->prefix_len || memcmp(kv->key, s->prefix, s->prefix_len))
                return false;
        if (memchr(kv->key, '\0', kv->key_len)) {
                es_log_ignored(s, kv, "its name holds a NUL byte");
                return false;
        }
        return true;
}

/* The path of lock key kv: "/" and what follows the prefix; NULL on ENOMEM. */
static char *path_of(const struct store_etcd *s, const struct etcd_kv *kv) {
        char *path;
        return asprintf(&path, "/%s", kv->key + s->prefix_len) < 0 ? NULL : path;
}

static void on_put(struct store_etcd *s, const struct etcd_kv *kv) {
        if (!is_lock_key(s, kv))
                return;
        if (s->listing && key_listing_add(&s->listed, kv->key) < 0)
                s->listing = false; /* incomplete: it ends nothing local */
        char *path = path_of(s, kv);
        if (!path)
                return;
        if (kv->lease && kv->lease == es_current_lease(s))
                on_own_put(s, kv, path);
        else
                on_other_put(s, kv, path);
        free(path);
}

static void on_delete(struct store_etcd *s, const struct etcd_kv *kv) {
        char *path = is_lock_key(s, kv) ? path_of(s, kv) : NULL;
        if (path && s->ev.del)
                s->ev.del(s->ev.ctx, path, (uint64_t)kv->mod_revision);
        free(path);
}

static void on_sync_begin(struct store_etcd *s) {
        key_listing_clear(&s->listed);
        s->listing = true;
        if (s->ev.sync_begin)
                s->ev.sync_begin(s->ev.ctx);
}

/* The listing is complete at revision rev: what it did not name is gone. */
static void on_sync_end(struct store_etcd *s, int64_t rev) {
        if (s->ev.sync_end)
                s->ev.sync_end(s->ev.ctx, (uint64_t)rev, s->listing ? listed_has : NULL, s);
        s->listing = false;
        key_listing_clear(&s->listed);
        pthread_mutex_lock(&s->mu);
        s->synced = true;
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->mu);
}

void es_on_watch(void *arg, enum etcd_watch_event ev, const struct etcd_kv *kv) {
        struct store_etcd *s = arg;
        switch (ev) {
        case ETCD_WATCH_PUT:
                on_put(s, kv);
                break;
        case ETCD_WATCH_DELETE:
                on_delete(s, kv);
                break;
        case ETCD_WATCH_DOWN:
                log_msg(LOG_WARNING, "etcd: watch interrupted; reconnecting");
                break;
        case ETCD_WATCH_UP:
                log_msg(LOG_NOTICE, "etcd: watch resumed");
                break;
        case ETCD_WATCH_SYNC_BEGIN:
                on_sync_begin(s);
                break;
        case ETCD_WATCH_SYNC_END:
                on_sync_end(s, kv->mod_revision);
                break;
        }
}

