/* SPDX-License-Identifier: MIT */
/* The cluster store (SPEC R8.4): every lock is a key PREFIX + its path in
 * etcd, attached to this daemon's lease, created in one transaction that
 * fails when the key exists (the fence is its create revision), deleted
 * only while it is still ours. A keep-alive thread renews the lease; a
 * prefix watch reports other hosts' locks to the table (events). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "etcd.h"
#include "log.h"
#include "lock_limits.h"
#include "store_etcd.h"

/* A release etcd did not take (unreachable): retried until it does, else
 * the key would outlive the lock for as long as our lease lives. */
struct pending_delete {
        struct pending_delete *next;
        int64_t rev;
        char key[];
};

/* A key whose create got no answer: etcd may still have made it. */
struct uncertain {
        struct uncertain *next;
        char key[];
};

#define MAX_UNCERTAIN 1024

struct store_etcd {
        struct store base;
        struct etcd *etcd;
        char *prefix;
        size_t prefix_len;
        char *host;
        int64_t ttl_s;
        struct store_etcd_events ev;
        struct etcd_watch *watch;
        pthread_t keeper;
        bool keeper_running;
        pthread_mutex_t mu;
        pthread_cond_t cond;     /* wakes the keeper (stop, lease trouble) and start() */
        bool stopping;
        int64_t lease;           /* 0: none (never granted, or lost) */
        int64_t last_renewed_ms; /* monotonic: the last answer that kept the lease */
        bool unreachable_logged;
        bool down;               /* a call found etcd unreachable; the keeper clears it */
        bool wake;               /* the keeper has work now (predicate of cond) */
        bool synced;             /* the first listing came */
        int64_t last_error_log_ms;
        int64_t ignored_window_ms; /* log_ignored's rate limit */
        unsigned ignored_in_window;
        struct pending_delete *deletes;
        struct uncertain *uncertain; /* newest first, at most MAX_UNCERTAIN */
        size_t n_uncertain;
        /* the keys of a listing in progress, in etcd's (byte) order; only
         * the watch thread touches them */
        bool listing;
        char **listed;
        size_t n_listed, cap_listed;
};

static struct store_etcd *of(struct store *s) {
        return (struct store_etcd *)s;
}

static int64_t mono_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* CLOCK_MONOTONIC time ms from now, for pthread_cond_timedwait. */
static struct timespec deadline_after(int64_t ms) {
        int64_t at = mono_ms() + ms;
        return (struct timespec){ .tv_sec = at / 1000, .tv_nsec = (at % 1000) * 1000000 };
}

/* The key of path "/a/b": PREFIX "a/b". */
static char *key_of(const struct store_etcd *s, const char *path) {
        char *key;
        return asprintf(&key, "%s%s", s->prefix, path[0] == '/' ? path + 1 : path) < 0 ? NULL
                                                                                     : key;
}

/* Log a failed call at most once a second, so an outage cannot flood. */
static void log_failure(struct store_etcd *s, const char *what, const char *path, int err) {
        int64_t now = mono_ms();
        pthread_mutex_lock(&s->mu);
        bool quiet = now - s->last_error_log_ms < 1000;
        if (!quiet)
                s->last_error_log_ms = now;
        pthread_mutex_unlock(&s->mu);
        if (!quiet)
                log_msg(LOG_ERR, "etcd: cannot %s %s: %s", what, path,
                        err == -ENOTCONN ? "etcd unreachable" : strerror(-err));
}

/* ---- the value: who holds the lock, as JSON ---- */

static const char *how_names[] = { "creator", "claim", "flock", "detached" };

static char *value_encode(const struct store_etcd *s, const struct lock_view *v, size_t *ret_len) {
        cJSON *o = cJSON_CreateObject();
        char *text = NULL;
        if (!o)
                return NULL;
        char *content = v->content_len ? strndup(v->content, v->content_len) : strdup("");
        if (content && cJSON_AddStringToObject(o, "host", s->host) &&
            cJSON_AddNumberToObject(o, "pid", v->pid) &&
            cJSON_AddNumberToObject(o, "uid", v->uid) &&
            cJSON_AddNumberToObject(o, "gid", v->gid) &&
            cJSON_AddStringToObject(o, "comm", v->comm) &&
            cJSON_AddStringToObject(o, "cmdline", v->cmdline) &&
            cJSON_AddStringToObject(o, "how", how_names[v->how]) &&
            cJSON_AddBoolToObject(o, "liveness_known", v->liveness_known) &&
            cJSON_AddNumberToObject(o, "acquired_at_ms", (double)v->acquired_at_ms) &&
            cJSON_AddNumberToObject(o, "renewed_at_ms", (double)v->renewed_at_ms) &&
            cJSON_AddNumberToObject(o, "ttl_s", v->ttl_s) &&
            cJSON_AddStringToObject(o, "content", content))
                text = cJSON_PrintUnformatted(o);
        free(content);
        cJSON_Delete(o);
        if (text)
                *ret_len = strlen(text);
        return text;
}

/* ---- decoding: a value read from etcd is hostile input ----
 * Anyone with write access to the prefix can put any bytes there, so
 * every field is required, typed and range-checked; a value that fails is
 * ignored (never guessed at: a missing uid must not become root). */

#define VALUE_MAX ((size_t)LOCKFS_MAX_CONTENT_LIMIT * 6 + 65536) /* content may be \u-escaped */
#define PID_LIMIT 4194304                        /* PID_MAX_LIMIT of Linux */
#define ID_LIMIT INT64_C(4294967294)             /* uid/gid; (uid_t)-1 is no id */
#define TIME_LIMIT_MS INT64_C(253402300799999)   /* 9999-12-31T23:59:59.999Z */
#define HOST_LIMIT 255

/* The whole number field name of o in min..max (|max| <= 2^53), or false. */
static bool get_int(const cJSON *o, const char *name, int64_t min, int64_t max, int64_t *ret) {
        const cJSON *j = cJSON_GetObjectItemCaseSensitive(o, name);
        if (!cJSON_IsNumber(j))
                return false;
        double d = j->valuedouble;
        if (!(d >= (double)min && d <= (double)max) || (double)(int64_t)d != d)
                return false;
        *ret = (int64_t)d;
        return true;
}

/* The string field name of o, at most max bytes, with no control bytes
 * unless ctl; NULL when absent, of another type, too long. */
static const char *get_str(const cJSON *o, const char *name, size_t max, bool ctl) {
        const char *p = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, name));
        if (!p || strlen(p) > max)
                return NULL;
        for (const unsigned char *c = (const unsigned char *)p; !ctl && *c; c++)
                if (*c < 0x20 || *c == 0x7f)
                        return NULL;
        return p;
}

static int bad(char *why, size_t whylen, const char *field) {
        snprintf(why, whylen, "field \"%s\" is missing, of the wrong type or out of range",
                 field);
        return -EINVAL;
}

int store_etcd_value_decode(const char *text, size_t len, struct lock_view *v, char *why,
                            size_t whylen) {
        snprintf(why, whylen, "out of memory");
        if (len > VALUE_MAX) {
                snprintf(why, whylen, "the value is too long (%zu bytes)", len);
                return -EINVAL;
        }
        const char *end = NULL;
        cJSON *o = cJSON_ParseWithLengthOpts(text, len, &end, false);
        while (o && end && end < text + len && (*end == ' ' || *end == '\n' || *end == '\t' ||
                                                *end == '\r'))
                end++;
        if (!cJSON_IsObject(o) || !end || end != text + len) {
                cJSON_Delete(o);
                snprintf(why, whylen, "the value is not one JSON object");
                return -EINVAL;
        }
        int r = -EINVAL;
        int64_t pid, uid, gid, acq, ren, ttl;
        const char *host = get_str(o, "host", HOST_LIMIT, false);
        /* a process names itself: comm and cmdline may hold any byte, as locally */
        const char *comm = get_str(o, "comm", HOLDER_COMM_MAX - 1, true);
        const char *cmdline = get_str(o, "cmdline", HOLDER_CMDLINE_MAX - 1, true);
        const char *how = get_str(o, "how", 16, false);
        const char *content = get_str(o, "content", LOCKFS_MAX_CONTENT_LIMIT, true);
        const cJSON *live = cJSON_GetObjectItemCaseSensitive(o, "liveness_known");
        size_t h = 0;
        while (how && h < sizeof(how_names) / sizeof(how_names[0]) && strcmp(how, how_names[h]))
                h++;
        bool detached = h == LOCK_HOW_DETACHED;
        /* pid 0 only for a lock no process is known to hold */
        int64_t pid_min = detached || !cJSON_IsTrue(live) ? 0 : 1;
        if (!host || !*host)
                r = bad(why, whylen, "host");
        else if (!get_int(o, "pid", pid_min, PID_LIMIT, &pid))
                r = bad(why, whylen, "pid");
        else if (!get_int(o, "uid", 0, ID_LIMIT, &uid))
                r = bad(why, whylen, "uid");
        else if (!get_int(o, "gid", 0, ID_LIMIT, &gid))
                r = bad(why, whylen, "gid");
        else if (!comm)
                r = bad(why, whylen, "comm");
        else if (!cmdline)
                r = bad(why, whylen, "cmdline");
        else if (!how || h == sizeof(how_names) / sizeof(how_names[0]))
                r = bad(why, whylen, "how");
        else if (!cJSON_IsBool(live))
                r = bad(why, whylen, "liveness_known");
        else if (!get_int(o, "acquired_at_ms", 0, TIME_LIMIT_MS, &acq))
                r = bad(why, whylen, "acquired_at_ms");
        else if (!get_int(o, "renewed_at_ms", 0, TIME_LIMIT_MS, &ren))
                r = bad(why, whylen, "renewed_at_ms");
        else if (!get_int(o, "ttl_s", 0, UINT32_MAX, &ttl))
                r = bad(why, whylen, "ttl_s");
        else if (!content)
                r = bad(why, whylen, "content");
        else
                r = 0;
        if (r == 0) {
                v->host = strdup(host);
                v->content_len = strlen(content);
                v->content = v->content_len ? strdup(content) : NULL;
                if (!v->host || (v->content_len && !v->content)) {
                        free(v->host);
                        free(v->content);
                        v->host = v->content = NULL;
                        v->content_len = 0;
                        r = -ENOMEM;
                }
        }
        if (r == 0) {
                v->pid = (pid_t)pid;
                v->uid = (uid_t)uid;
                v->gid = (gid_t)gid;
                snprintf(v->comm, sizeof(v->comm), "%s", comm);
                snprintf(v->cmdline, sizeof(v->cmdline), "%s", cmdline);
                v->how = (enum lock_how)h;
                v->detached = detached;
                v->liveness_known = cJSON_IsTrue(live);
                v->acquired_at_ms = acq;
                v->renewed_at_ms = ren;
                v->ttl_s = (uint32_t)ttl;
                v->expires_at_ms = ren + ttl * 1000; /* at most about 2^48: no overflow */
                why[0] = '\0';
        }
        cJSON_Delete(o);
        return r;
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

/* Log that key is ignored and why: at most a few lines a second, so a
 * writer of garbage cannot flood the log. */
static void log_ignored(struct store_etcd *s, const struct etcd_kv *kv, const char *why) {
        int64_t now = mono_ms();
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

/* ---- store operations (called under the table lock) ---- */

static int64_t current_lease(struct store_etcd *s) {
        pthread_mutex_lock(&s->mu);
        int64_t lease = s->lease;
        pthread_mutex_unlock(&s->mu);
        return lease;
}

/* etcd says the lease is gone: wake the keeper, whose renewal then
 * declares it lost and asks for a new one. */
static void lease_gone(struct store_etcd *s) {
        pthread_mutex_lock(&s->mu);
        s->wake = true;
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->mu);
}

static void uncertain_add(struct store_etcd *s, const char *key) {
        size_t len = strlen(key);
        struct uncertain *u = malloc(sizeof(*u) + len + 1);
        if (!u)
                return;
        memcpy(u->key, key, len + 1);
        pthread_mutex_lock(&s->mu);
        u->next = s->uncertain;
        s->uncertain = u;
        if (++s->n_uncertain > MAX_UNCERTAIN) { /* drop the oldest */
                struct uncertain **p = &s->uncertain;
                while ((*p)->next)
                        p = &(*p)->next;
                free(*p);
                *p = NULL;
                s->n_uncertain--;
        }
        pthread_mutex_unlock(&s->mu);
}

/* Is a create of key in flight or unanswered? */
static bool uncertain_has(struct store_etcd *s, const char *key) {
        bool found = false;
        pthread_mutex_lock(&s->mu);
        for (struct uncertain *u = s->uncertain; u && !found; u = u->next)
                found = !strcmp(u->key, key);
        pthread_mutex_unlock(&s->mu);
        return found;
}

/* Was key's create unanswered? Forgets it either way. */
static bool uncertain_take(struct store_etcd *s, const char *key) {
        bool found = false;
        pthread_mutex_lock(&s->mu);
        for (struct uncertain **p = &s->uncertain; *p; p = &(*p)->next) {
                if (!strcmp((*p)->key, key)) {
                        struct uncertain *u = *p;
                        *p = u->next;
                        free(u);
                        s->n_uncertain--;
                        found = true;
                        break;
                }
        }
        pthread_mutex_unlock(&s->mu);
        return found;
}

/* Create key for acquisition value: 0 and the revision, -EEXIST, or
 * -errno. Any create whose answer is not definite stays "uncertain" (see
 * on_watch). A key of our own lease that nothing here holds is an orphan
 * (a create answered too late): deleted, and the create tried once more. */
static int create_key(struct store_etcd *s, const char *key, const char *value, size_t len,
                      int64_t lease, int64_t *ret_rev) {
        for (int attempt = 0;; attempt++) {
                struct etcd_kv holder = { 0 };
                uncertain_add(s, key);
                int r = etcd_create(s->etcd, key, value, len, lease, ret_rev, &holder);
                if (r != -ENOTCONN)
                        uncertain_take(s, key);
                bool orphan = r == -EEXIST && holder.lease == lease && attempt == 0;
                if (orphan)
                        r = etcd_delete_if(s->etcd, key, holder.create_revision);
                etcd_kv_clear(&holder);
                if (!orphan || (r < 0 && r != -ESTALE))
                        return r;
        }
}

/* etcd did not answer: calls fail fast until the keeper reaches it. */
static void mark_down(struct store_etcd *s) {
        pthread_mutex_lock(&s->mu);
        s->down = true;
        s->wake = true;
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->mu);
}

static bool is_down(struct store_etcd *s) {
        pthread_mutex_lock(&s->mu);
        bool down = s->down;
        pthread_mutex_unlock(&s->mu);
        return down;
}

static int etcd_acquire(struct store *base, const struct lock_view *v, uint64_t *ret_fence) {
        struct store_etcd *s = of(base);
        int64_t lease = current_lease(s);
        if (!lease || is_down(s)) {
                log_failure(s, "take", v->path, -ENOTCONN);
                return -EIO; /* no grant without etcd's word */
        }
        char *key = key_of(s, v->path);
        size_t len;
        char *value = value_encode(s, v, &len);
        int r = key && value ? 0 : -ENOMEM;
        if (r == 0 && v->fence) /* a hand-off: the acquisition it replaces goes first */
                r = etcd_delete_if(s->etcd, key, (int64_t)v->fence);
        if (r == -ESTALE)
                r = 0;
        int64_t rev = 0;
        if (r == 0)
                r = create_key(s, key, value, len, lease, &rev);
        free(key);
        free(value);
        if (r == 0) {
                *ret_fence = (uint64_t)rev;
                return 0;
        }
        if (r == -EEXIST || r == -ENOMEM)
                return r;
        if (r == -ENOENT)
                lease_gone(s);
        if (r == -ENOTCONN)
                mark_down(s);
        log_failure(s, "take", v->path, r);
        return -EIO;
}

static int etcd_store_update(struct store *base, const struct lock_view *v) {
        struct store_etcd *s = of(base);
        int64_t lease = current_lease(s);
        char *key = key_of(s, v->path);
        size_t len;
        char *value = value_encode(s, v, &len);
        int r = key && value ? 0 : -ENOMEM;
        if (v->lost) { /* keep it off the new lease: it ends with the old one */
                free(key);
                free(value);
                return 0;
        }
        if (r == 0 && (!lease || is_down(s)))
                r = -ENOTCONN; /* what other hosts show of it lags until then */
        else if (r == 0)
                r = etcd_update(s->etcd, key, value, len, lease, (int64_t)v->fence);
        if (r == -ENOTCONN && lease)
                mark_down(s);
        free(key);
        free(value);
        if (r == -ENOENT)
                lease_gone(s);
        if (r == -ESTALE)
                r = 0; /* no longer ours: the watch marks it lost */
        if (r < 0)
                log_failure(s, "update", v->path, r);
        return r;
}

static void delete_later(struct store_etcd *s, const char *key, int64_t rev) {
        size_t len = strlen(key);
        struct pending_delete *d = malloc(sizeof(*d) + len + 1);
        if (!d)
                return; /* the key then lives until our lease ends */
        d->rev = rev;
        memcpy(d->key, key, len + 1);
        pthread_mutex_lock(&s->mu);
        d->next = s->deletes;
        s->deletes = d;
        s->wake = true;
        pthread_cond_broadcast(&s->cond);
        pthread_mutex_unlock(&s->mu);
}

static int etcd_release(struct store *base, uint64_t ino, const char *path, uint64_t fence) {
        (void)ino;
        struct store_etcd *s = of(base);
        char *key = key_of(s, path);
        if (!key)
                return -ENOMEM;
        /* while etcd is known unreachable, do not hold up the table: the
         * keeper deletes it when etcd answers */
        int r = is_down(s) ? -ENOTCONN : etcd_delete_if(s->etcd, key, (int64_t)fence);
        if (r == -ENOTCONN || r == -EIO) {
                log_failure(s, "release", path, r);
                delete_later(s, key, (int64_t)fence);
        }
        free(key);
        return 0;
}

/* ---- the keeper: lease and pending deletes ---- */

static void retry_deletes(struct store_etcd *s) {
        pthread_mutex_lock(&s->mu);
        struct pending_delete *list = s->deletes;
        s->deletes = NULL;
        pthread_mutex_unlock(&s->mu);
        bool reachable = true;
        while (list) {
                struct pending_delete *d = list;
                list = d->next;
                int r = reachable ? etcd_delete_if(s->etcd, d->key, d->rev) : -ENOTCONN;
                if (r == -ENOTCONN || r == -EIO) { /* the rest waits for the next turn */
                        reachable = false;
                        pthread_mutex_lock(&s->mu);
                        d->next = s->deletes;
                        s->deletes = d;
                        pthread_mutex_unlock(&s->mu);
                } else {
                        free(d);
                }
        }
}

/* The lease is over: every local lock is unbacked from now on. */
static void lease_lost(struct store_etcd *s, const char *why) {
        pthread_mutex_lock(&s->mu);
        s->lease = 0;
        pthread_mutex_unlock(&s->mu);
        log_msg(LOG_WARNING, "etcd: lease lost (%s); held locks are marked lost", why);
        if (s->ev.lost)
                s->ev.lost(s->ev.ctx);
}

/* One turn of the keeper: get a lease, or renew it. */
static void keeper_turn(struct store_etcd *s) {
        int64_t lease = current_lease(s), ttl = 0;
        if (!lease) {
                int r = etcd_lease_grant(s->etcd, s->ttl_s, &lease, &ttl);
                if (r < 0) {
                        if (r == -ENOTCONN)
                                mark_down(s);
                        if (!s->unreachable_logged)
                                log_msg(LOG_ERR, "etcd: cannot get a lease: %s",
                                        r == -ENOTCONN ? "etcd unreachable" : strerror(-r));
                        s->unreachable_logged = true;
                        return;
                }
                pthread_mutex_lock(&s->mu);
                s->lease = lease;
                s->last_renewed_ms = mono_ms();
                s->down = false;
                pthread_cond_broadcast(&s->cond);
                pthread_mutex_unlock(&s->mu);
                log_msg(LOG_NOTICE, "etcd: lease %llx granted (%lld s)", (unsigned long long)lease,
                        (long long)ttl);
                s->unreachable_logged = false;
                return;
        }
        int64_t asked = mono_ms();
        int r = etcd_lease_keepalive(s->etcd, lease, &ttl);
        pthread_mutex_lock(&s->mu);
        int64_t last = s->last_renewed_ms;
        if (r == 0) {
                s->last_renewed_ms = asked;
                s->down = false;
        } else if (r == -ENOTCONN) {
                s->down = true;
        }
        pthread_mutex_unlock(&s->mu);
        if (r == 0) {
                if (s->unreachable_logged)
                        log_msg(LOG_NOTICE, "etcd: reachable again; lease %llx kept",
                                (unsigned long long)lease);
                s->unreachable_logged = false;
        } else if (r == -ENOENT) {
                lease_lost(s, "etcd ended it");
        } else {
                if (!s->unreachable_logged)
                        log_msg(LOG_ERR, "etcd: cannot renew the lease: %s",
                                r == -ENOTCONN ? "etcd unreachable" : strerror(-r));
                s->unreachable_logged = true;
                /* etcd ends the lease TTL after the last renewal it saw */
                if (mono_ms() - last >= s->ttl_s * 1000)
                        lease_lost(s, "not renewed within its TTL");
        }
}

static void *keeper_main(void *arg) {
        struct store_etcd *s = arg;
        pthread_mutex_lock(&s->mu);
        while (!s->stopping) {
                pthread_mutex_unlock(&s->mu);
                keeper_turn(s);
                retry_deletes(s);
                pthread_mutex_lock(&s->mu);
                /* renew three times per TTL; retry fast while without a
                 * lease or etcd; at once when woken (lease gone, deletes) */
                int64_t wait_ms = s->lease && !s->down ? s->ttl_s * 1000 / 3 : 250;
                struct timespec until = deadline_after(wait_ms);
                int w = 0;
                while (!s->stopping && !s->wake && w == 0)
                        w = pthread_cond_timedwait(&s->cond, &s->mu, &until);
                s->wake = false;
        }
        pthread_mutex_unlock(&s->mu);
        return NULL;
}

/* ---- the watch: other hosts' locks ---- */

static void listed_clear(struct store_etcd *s) {
        for (size_t i = 0; i < s->n_listed; i++)
                free(s->listed[i]);
        free(s->listed);
        s->listed = NULL;
        s->n_listed = s->cap_listed = 0;
}

/* Remember key of the listing in progress (false without memory: then
 * nothing local is ended at its end). */
static bool listed_add(struct store_etcd *s, const char *key) {
        if (s->n_listed == s->cap_listed) {
                size_t cap = s->cap_listed ? 2 * s->cap_listed : 64;
                char **p = realloc(s->listed, cap * sizeof(*p));
                if (!p)
                        return false;
                s->listed = p;
                s->cap_listed = cap;
        }
        return (s->listed[s->n_listed] = strdup(key)) != NULL && ++s->n_listed;
}

/* Did the listing name path? (store_etcd_events.sync_end) */
static bool listed_has(void *arg, const char *path) {
        struct store_etcd *s = arg;
        char *key = key_of(s, path);
        bool found = false;
        size_t lo = 0, hi = s->n_listed;
        while (key && lo < hi && !found) { /* etcd lists keys in byte order */
                size_t mid = lo + (hi - lo) / 2;
                int c = strcmp(s->listed[mid], key);
                found = c == 0;
                if (c < 0)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        free(key);
        return found || !key; /* without memory, keep what we hold */
}

static void on_watch(void *arg, enum etcd_watch_event ev, const struct etcd_kv *kv) {
        struct store_etcd *s = arg;
        switch (ev) {
        case ETCD_WATCH_PUT:
        case ETCD_WATCH_DELETE: {
                if (kv->key_len <= s->prefix_len || memcmp(kv->key, s->prefix, s->prefix_len))
                        return;
                if (memchr(kv->key, '\0', kv->key_len)) { /* no path has a NUL */
                        log_ignored(s, kv, "its name holds a NUL byte");
                        return;
                }
                if (s->listing && ev == ETCD_WATCH_PUT && !listed_add(s, kv->key))
                        s->listing = false; /* incomplete: it ends nothing local */
                char *path;
                if (asprintf(&path, "/%s", kv->key + s->prefix_len) < 0)
                        return;
                if (ev == ETCD_WATCH_DELETE) {
                        if (s->ev.del)
                                s->ev.del(s->ev.ctx, path, (uint64_t)kv->mod_revision);
                } else if (kv->lease && kv->lease == current_lease(s)) {
                        /* ours: made by a create that was answered (held
                         * here, or released since: nothing to do), or by one
                         * in flight or unanswered (in the uncertain set).
                         * holds() waits for the table lock, so for the
                         * uncertain set the answer has come by then. */
                        if (uncertain_has(s, kv->key) && s->ev.holds &&
                            !s->ev.holds(s->ev.ctx, path, (uint64_t)kv->create_revision) &&
                            uncertain_take(s, kv->key)) {
                                int r = etcd_delete_if(s->etcd, kv->key, kv->create_revision);
                                if (r == 0)
                                        log_msg(LOG_NOTICE, "etcd: deleted %s, made by a create "
                                                "that had failed", kv->key);
                                else if (r == -ESTALE) /* gone already: not that create's key */
                                        uncertain_add(s, kv->key);
                        }
                } else if (!kv->lease) {
                        /* every daemon's key is on its lease; one without
                         * was written by hand (or forged): not a lock */
                        log_ignored(s, kv, "it has no lease, so no lockfs daemon made it");
                } else if (kv->create_revision <= 0) {
                        log_ignored(s, kv, "it has no create revision");
                } else {
                        struct lock_view v = { .path = path, .fence = (uint64_t)kv->create_revision };
                        char why[128];
                        int r = store_etcd_value_decode(kv->value, kv->value_len, &v, why,
                                                        sizeof(why));
                        if (r == 0 && s->ev.put)
                                s->ev.put(s->ev.ctx, &v);
                        else if (r == -EINVAL)
                                log_ignored(s, kv, why);
                        v.path = NULL; /* freed below */
                        lock_view_clear(&v);
                }
                free(path);
                break;
        }
        case ETCD_WATCH_DOWN:
                log_msg(LOG_WARNING, "etcd: watch interrupted; reconnecting");
                break;
        case ETCD_WATCH_UP:
                log_msg(LOG_NOTICE, "etcd: watch resumed");
                break;
        case ETCD_WATCH_SYNC_BEGIN:
                listed_clear(s);
                s->listing = true;
                if (s->ev.sync_begin)
                        s->ev.sync_begin(s->ev.ctx);
                break;
        case ETCD_WATCH_SYNC_END:
                if (s->ev.sync_end)
                        s->ev.sync_end(s->ev.ctx, (uint64_t)kv->mod_revision,
                                       s->listing ? listed_has : NULL, s);
                s->listing = false;
                listed_clear(s);
                pthread_mutex_lock(&s->mu);
                s->synced = true;
                pthread_cond_broadcast(&s->cond);
                pthread_mutex_unlock(&s->mu);
                break;
        }
}

/* ---- life cycle ---- */

void store_etcd_stop(struct store *base) {
        struct store_etcd *s = of(base);
        etcd_watch_stop(s->watch);
        s->watch = NULL;
        if (s->keeper_running) {
                pthread_mutex_lock(&s->mu);
                s->stopping = true;
                pthread_cond_broadcast(&s->cond);
                pthread_mutex_unlock(&s->mu);
                pthread_join(s->keeper, NULL);
                s->keeper_running = false;
        }
}

static void etcd_store_free(struct store *base) {
        struct store_etcd *s = of(base);
        store_etcd_stop(base);
        retry_deletes(s);
        /* A clean stop: the mount and its locks end, so do our keys. */
        if (s->lease)
                etcd_lease_revoke(s->etcd, s->lease);
        while (s->deletes) {
                struct pending_delete *d = s->deletes;
                s->deletes = d->next;
                free(d);
        }
        listed_clear(s);
        while (s->uncertain) {
                struct uncertain *u = s->uncertain;
                s->uncertain = u->next;
                free(u);
        }
        etcd_free(s->etcd);
        pthread_cond_destroy(&s->cond);
        pthread_mutex_destroy(&s->mu);
        free(s->prefix);
        free(s->host);
        free(s);
}

static const struct store_ops etcd_ops = {
        .name = "etcd",
        .acquire = etcd_acquire,
        .update = etcd_store_update,
        .release = etcd_release,
        .free = etcd_store_free,
};

int store_etcd_open(const struct store_etcd_config *cfg, struct store **ret) {
        struct store_etcd *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->base.ops = &etcd_ops;
        pthread_mutex_init(&s->mu, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&s->cond, &ca);
        pthread_condattr_destroy(&ca);
        s->ttl_s = cfg->lease_ttl_s;
        s->prefix = strdup(cfg->prefix);
        s->host = strdup(cfg->host);
        int r = s->prefix && s->host ? etcd_new(cfg->endpoints, &s->etcd) : -ENOMEM;
        if (r == 0 && (cfg->cacert || cfg->cert || cfg->key))
                r = etcd_set_tls(s->etcd, cfg->cacert, cfg->cert, cfg->key);
        if (r == 0 && cfg->user)
                r = etcd_set_auth(s->etcd, cfg->user, cfg->password ? cfg->password : "");
        if (r < 0) {
                etcd_store_free(&s->base);
                return r;
        }
        s->prefix_len = strlen(s->prefix);
        *ret = &s->base;
        return 0;
}

int store_etcd_start(struct store *base, const struct store_etcd_events *ev, int wait_ms) {
        struct store_etcd *s = of(base);
        s->ev = *ev;
        int r = etcd_watch_start(s->etcd, s->prefix, 0, on_watch, s, &s->watch);
        if (r < 0)
                return r;
        r = -pthread_create(&s->keeper, NULL, keeper_main, s);
        if (r < 0)
                return r;
        s->keeper_running = true;
        struct timespec until = deadline_after(wait_ms);
        r = 0;
        pthread_mutex_lock(&s->mu);
        while (!(s->synced && s->lease) && r == 0)
                r = -pthread_cond_timedwait(&s->cond, &s->mu, &until);
        pthread_mutex_unlock(&s->mu);
        return r == 0 ? 0 : -ETIMEDOUT;
}

int store_etcd_check(struct store *base, char *why, size_t whylen) {
        struct store_etcd *s = of(base);
        return etcd_check(s->etcd, s->prefix, why, whylen);
}
