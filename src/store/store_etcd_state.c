/* SPDX-License-Identifier: MIT */
/* The etcd store's shared steps (store_etcd_internal.h): keys of paths,
 * rate-limited logs, and the state the table's calls, the keeper and the
 * watch all read, each under s->mu. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "log.h"
#include "store_etcd_internal.h"

char *es_key_of(const struct store_etcd *s, const char *path) {
        char *key;
        return asprintf(&key, "%s%s", s->prefix, path[0] == '/' ? path + 1 : path) < 0 ? NULL
                                                                                     : key;
}

/* ---- logging, rate-limited so an outage or a writer of garbage cannot flood ---- */

/* Log a failed call at most once a second. */
void es_log_failure(struct store_etcd *s, const char *what, const char *path, int err) {
        int64_t now = clock_mono_ms();
        pthread_mutex_lock(&s->mu);
        bool quiet = now - s->last_error_log_ms < 1000;
        if (!quiet)
                s->last_error_log_ms = now;
        pthread_mutex_unlock(&s->mu);
        if (!quiet)
                log_msg(LOG_ERR, "etcd: cannot %s %s: %s", what, path,
                        err == -ENOTCONN ? "etcd unreachable" : strerror(-err));
}

/* s (n bytes) for a log line: up to its first NUL (which a line cannot
 * carry), cut with "..." to fit out. The log sink escapes what is not
 * printable (log_escape), so nothing is escaped twice. */
static const char *key_for_log(const char *s, size_t n, char *out, size_t outlen) {
        const char *nul = memchr(s, '\0', n);
        size_t len = nul ? (size_t)(nul - s) : n;
        if (len + 1 > outlen) {
                len = outlen - 4;
                memcpy(out + len, "...", 4);
        } else {
                out[len] = '\0';
        }
        memcpy(out, s, len);
        return out;
}

/* Log that key is ignored and why: at most a few lines a second. */
void es_log_ignored(struct store_etcd *s, const struct etcd_kv *kv, const char *why) {
        int64_t now = clock_mono_ms();
        pthread_mutex_lock(&s->mu);
        if (now - s->ignored_window_ms >= 1000) {
                s->ignored_window_ms = now;
                s->ignored_in_window = 0;
        }
        bool quiet = ++s->ignored_in_window > 5;
        pthread_mutex_unlock(&s->mu);
        if (quiet)
                return;
        char key[256];
        log_msg(LOG_WARNING, "etcd: ignoring key %s: %s", key_for_log(kv->key, kv->key_len, key,
                                                                      sizeof(key)), why);
}

/* ---- shared state (each takes s->mu) ---- */

int64_t es_current_lease(struct store_etcd *s) {
        pthread_mutex_lock(&s->mu);
        int64_t lease = s->lease;
        pthread_mutex_unlock(&s->mu);
        return lease;
}

/* Wake the keeper: etcd said the lease is gone (its renewal then declares
 * it lost and asks for a new one), or there are deletes to send. Called
 * with s->mu held. */
void es_wake_keeper_locked(struct store_etcd *s) {
        s->wake = true;
        pthread_cond_broadcast(&s->cond);
}

void es_lease_gone(struct store_etcd *s) {
        pthread_mutex_lock(&s->mu);
        es_wake_keeper_locked(s);
        pthread_mutex_unlock(&s->mu);
}

/* etcd did not answer: calls fail fast until the keeper reaches it. */
void es_mark_down(struct store_etcd *s) {
        pthread_mutex_lock(&s->mu);
        s->down = true;
        es_wake_keeper_locked(s);
        pthread_mutex_unlock(&s->mu);
}

bool es_is_down(struct store_etcd *s) {
        pthread_mutex_lock(&s->mu);
        bool down = s->down;
        pthread_mutex_unlock(&s->mu);
        return down;
}

/* Remember that a create of key is in flight (without memory: not, and an
 * orphan it makes lives until our lease ends). */
void es_uncertain_add(struct store_etcd *s, const char *key) {
        pthread_mutex_lock(&s->mu);
        if (etcd_key_push(&s->uncertain, key, 0) == 0 && ++s->n_uncertain > MAX_UNCERTAIN) {
                etcd_key_drop(list_entry(s->uncertain.prev, struct etcd_key, link)); /* oldest */
                s->n_uncertain--;
        }
        pthread_mutex_unlock(&s->mu);
}

/* Is a create of key in flight or unanswered? */
bool es_uncertain_has(struct store_etcd *s, const char *key) {
        pthread_mutex_lock(&s->mu);
        bool found = etcd_key_find(&s->uncertain, key) != NULL;
        pthread_mutex_unlock(&s->mu);
        return found;
}

/* Was key's create unanswered? Forgets it either way. */
bool es_uncertain_take(struct store_etcd *s, const char *key) {
        pthread_mutex_lock(&s->mu);
        struct etcd_key *k = etcd_key_find(&s->uncertain, key);
        if (k) {
                etcd_key_drop(k);
                s->n_uncertain--;
        }
        pthread_mutex_unlock(&s->mu);
        return k != NULL;
}

/* Queue the release of key (create revision rev) for the keeper. */
void es_delete_later(struct store_etcd *s, const char *key, int64_t rev) {
        pthread_mutex_lock(&s->mu);
        /* without memory the key lives until our lease ends */
        if (etcd_key_push(&s->deletes, key, rev) == 0)
                es_wake_keeper_locked(s);
        pthread_mutex_unlock(&s->mu);
}

