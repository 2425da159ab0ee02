/* SPDX-License-Identifier: MIT */
/* lockctl: read a lock's live status and decode its "lockfs" facts. */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "clock.h"
#include "lockctl.h"

#define FUSE_SUPER_MAGIC 0x65735546

/* Most a status may be: the largest holder content (16 MiB) plus ours. */
#define STATUS_MAX ((size_t)64 << 20)
/* Most a mount's list of locks may be. */
#define LC_LOCKS_MAX ((size_t)1 << 30)

/* The string member key of obj, decoded; NULL when absent or no string. */
static char *get_str(struct lc_span obj, const char *key, size_t *ret_len) {
        struct lc_span v;
        char *s;

        if (lc_json_get(obj, key, &v) != 1 || lc_json_string(v, &s, ret_len) < 0)
                return NULL;
        return s;
}

/* The integer member key of obj, or dflt. */
static int64_t get_int(struct lc_span obj, const char *key, int64_t dflt) {
        struct lc_span v;
        int64_t x;

        if (lc_json_get(obj, key, &v) != 1 || lc_json_int(v, &x) < 0)
                return dflt;
        return x;
}

/* Remaining TTL in ms, measured on the daemon's clock at rendering time
 * (acquired_at + age_ms) so the figure matches the document; -1 when the
 * lock has no TTL, -2 when the status does not say. */
static int64_t ttl_left(struct lc_span lf, int64_t age_ms) {
        _cleanup_free_ char *expires = NULL, *acquired = NULL;
        struct lc_span v;
        int64_t exp_ms, now_ms, acq_ms;

        if (lc_json_get(lf, "expires_at", &v) != 1)
                return -2;
        if (lc_json_type(v) == 'n')
                return -1;
        expires = get_str(lf, "expires_at", NULL);
        if (!expires || lc_parse_time(expires, &exp_ms) < 0)
                return -2;
        acquired = get_str(lf, "acquired_at", NULL);
        if (acquired && age_ms >= 0 && lc_parse_time(acquired, &acq_ms) == 0) {
                now_ms = acq_ms + age_ms;
        } else {
                now_ms = clock_wall_ms();
        }
        return exp_ms > now_ms ? exp_ms - now_ms : 0;
}

int lc_status_facts(struct lc_span doc, struct lc_span *ret_facts) {
        struct lc_span lf;

        if (lc_json_type(doc) != '{' || lc_json_get(doc, "lockfs", &lf) != 1 ||
            lc_json_type(lf) != '{')
                return -EBADMSG;
        if (ret_facts)
                *ret_facts = lf;
        return 0;
}

void lc_lock_clear(struct lc_lock *l) {
        free(l->path);
        free(l->user);
        free(l->comm);
        free(l->fence);
        memset(l, 0, sizeof(*l));
}

int lc_lock_parse(struct lc_span doc, struct lc_lock *ret) {
        struct lc_span lf, v;
        char buf[32];

        memset(ret, 0, sizeof(*ret));
        if (lc_status_facts(doc, &lf) < 0)
                return -EBADMSG;
        ret->path = get_str(lf, "path", &ret->path_len);
        if (!ret->path)
                return -EBADMSG;
        ret->detached = lc_json_get(lf, "pid", &v) != 1 || lc_json_int(v, &ret->pid) < 0;
        ret->user = get_str(lf, "user", &ret->user_len);
        if (!ret->user) {
                snprintf(buf, sizeof(buf), "%lld", (long long)get_int(lf, "uid", -1));
                ret->user = lc_oom(strdup(buf));
                ret->user_len = strlen(buf);
        }
        ret->comm = get_str(lf, "comm", &ret->comm_len);
        if (!ret->comm)
                ret->comm = lc_oom(strdup(""));
        ret->age_ms = get_int(lf, "age_ms", -1);
        ret->ttl_left_ms = ttl_left(lf, ret->age_ms);
        if (lc_json_get(lf, "fence", &v) == 1 && lc_json_type(v) == '0')
                ret->fence = lc_oom(strndup(v.p, v.n));
        else
                ret->fence = lc_oom(strdup("?"));
        return 0;
}

/* Find the lockfs mount that holds dir: the nearest directory at or above
 * it with a .lockfs/locks.json. Sets *ret_root (the mount root) and
 * *ret_rel (dir below the root: "" for the root itself, else "/a/b"), both
 * malloc'ed. Returns 0, -ENOENT when dir is in no lockfs mount, or the
 * -errno of resolving dir. */
int lc_find_mount(const char *dir, char **ret_root, char **ret_rel) {
        _cleanup_free_ char *abs = realpath(dir, NULL);
        size_t len;

        if (!abs)
                return -errno;
        len = strlen(abs);
        for (;;) {
                _cleanup_free_ char *probe = NULL;
                struct stat st;
                bool top = len == 1; /* "/" */

                if (asprintf(&probe, "%.*s" LC_LOCKS_JSON, top ? 0 : (int)len, abs) < 0)
                        lc_oom(NULL);
                if (stat(probe, &st) == 0 && S_ISREG(st.st_mode)) {
                        if (top) { /* a lockfs mounted on "/" */
                                *ret_root = lc_oom(strdup("/"));
                                *ret_rel = lc_oom(strdup(abs[1] ? abs : ""));
                        } else {
                                *ret_root = lc_oom(strndup(abs, len));
                                *ret_rel = lc_oom(strdup(abs + len));
                        }
                        return 0;
                }
                if (top)
                        return -ENOENT;
                while (len > 1 && abs[len - 1] != '/')
                        len--;
                if (len > 1)
                        len--; /* the slash before the last component */
        }
}

/* Read the mount's list of locks. Returns 0 or -errno. */
int lc_read_locks(const char *root, char **ret, size_t *ret_len) {
        _cleanup_free_ char *path = NULL;
        int fd, r;

        if (asprintf(&path, "%s" LC_LOCKS_JSON, strcmp(root, "/") ? root : "") < 0)
                lc_oom(NULL);
        fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = lc_read_all(fd, LC_LOCKS_MAX, ret, ret_len);
        close(fd);
        return r;
}

/* The status of the lock at path as its mount's locks.json lists it: for
 * a lock that reads back as its content (-o raw=, SPEC R4.4a) and for a
 * directory lock (-o dirlocks=, R7.5). Sets
 * *ret_doc (the whole list, malloc'd) and *ret_obj (the lock's element in
 * it). Returns 0, -ENOENT when the list has no such lock, or -errno. */
static int status_listed(const char *path, char **ret_doc, struct lc_span *ret_obj) {
        _cleanup_free_ char *root = NULL, *rel = NULL, *text = NULL;
        struct lc_json_iter it;
        struct lc_span elem;
        size_t len;
        int r = lc_find_mount(path, &root, &rel);

        if (r == 0)
                r = lc_read_locks(root, &text, &len);
        if (r == 0 && lc_json_iter_init(&it, (struct lc_span){text, len}, ']') < 0)
                r = -EBADMSG;
        if (r < 0)
                return r;
        while ((r = lc_json_next(&it, NULL, &elem)) > 0) {
                struct lc_lock l;
                bool same;

                if (lc_lock_parse(elem, &l) < 0)
                        continue;
                same = l.path_len == strlen(rel) && memcmp(l.path, rel, l.path_len) == 0;
                lc_lock_clear(&l);
                if (same) {
                        *ret_obj = elem;
                        *ret_doc = text;
                        text = NULL;
                        return 0;
                }
        }
        return r < 0 ? -EBADMSG : -ENOENT;
}

int lc_status_open(const char *path, int *ret_fd, char **ret_doc, struct lc_span *ret_obj) {
        _cleanup_free_ char *doc = NULL;
        struct lc_span obj;
        struct statfs sf;
        struct stat st;
        size_t len;
        int fd, r;

        /* O_NONBLOCK: a FIFO given by mistake must not hang us */
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0) {
                r = -errno;
                close(fd);
                return r;
        }
        if (S_ISDIR(st.st_mode)) {
                /* a directory lock (-o dirlocks=, SPEC R7.5): its status is
                 * in the mount's list; any other directory is no lock */
                r = fstatfs(fd, &sf) == 0 && sf.f_type == FUSE_SUPER_MAGIC
                            ? status_listed(path, &doc, &obj) : -EISDIR;
                if (r < 0) {
                        close(fd);
                        return r == -ENOENT ? -EISDIR : r;
                }
                goto found;
        }
        if (!S_ISREG(st.st_mode)) {
                close(fd);
                return -EBADMSG;
        }
        r = lc_read_all(fd, STATUS_MAX, &doc, &len);
        if (r < 0) {
                close(fd);
                return r;
        }
        /* lockfs renders nothing for a lock released as it was opened */
        if (len == 0 && fstatfs(fd, &sf) == 0 && sf.f_type == FUSE_SUPER_MAGIC) {
                close(fd);
                return -ENOENT;
        }
        obj = lc_json_trim((struct lc_span){doc, len});
        if (lc_status_facts(obj, NULL) < 0) {
                /* a lockfs lock that reads back as its content (-o raw=):
                 * its status is in the mount's list */
                free(doc);
                doc = NULL;
                r = fstatfs(fd, &sf) == 0 && sf.f_type == FUSE_SUPER_MAGIC
                            ? status_listed(path, &doc, &obj) : -EBADMSG;
                /* not listed: released meanwhile (no name left), or no lock */
                if (r == -ENOENT && (fstat(fd, &st) < 0 || st.st_nlink > 0))
                        r = -EBADMSG;
                if (r < 0) {
                        close(fd);
                        return r == -ENOENT ? -ENOENT : -EBADMSG;
                }
        }
found:
        if (ret_fd)
                *ret_fd = fd;
        else
                close(fd);
        *ret_obj = obj;
        *ret_doc = doc;
        doc = NULL;
        return 0;
}

int lc_status_read(const char *path, char **ret_doc, struct lc_span *ret_obj) {
        return lc_status_open(path, NULL, ret_doc, ret_obj);
}

int lc_status_error(const char *file, int r) {
        _cleanup_free_ char *name = lc_esc(file);

        switch (r) {
        case -ENOENT:
                lc_err("%s is not held", name);
                return LC_EXIT_NOT_HELD;
        case -EBADMSG:
                lc_err("%s is not a lockfs lock (no lock status in it)", name);
                return EX_DATAERR;
        case -EISDIR:
                lc_err("%s is a directory, not a lock", name);
                return EX_DATAERR;
        default:
                lc_err("cannot read %s: %s", name, strerror(-r));
                return EX_NOINPUT;
        }
}
