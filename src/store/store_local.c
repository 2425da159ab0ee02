/* SPDX-License-Identifier: MIT */
/* The local store: the lock table journaled to STATE_DIR/journal, fences
 * from a fence file (fencefile.c).
 *
 * Contract: every change is appended (one write(2)) before the table lock
 * is released, so before the caller sees success. Nothing in the journal is
 * fsynced: it must survive the daemon, not the machine (holders do not
 * survive a reboot; STATE_DIR is on tmpfs under /run). The store keeps the
 * last record of every live key in memory; when the file grows past twice
 * their size (plus 1 MiB) it is rewritten from them (written beside it,
 * then renamed over it), and the same happens after a failed append, so
 * the file is always a valid journal of what the table holds. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "container_of.h"
#include "entries.h"
#include "fencefile.h"
#include "fsutil.h"
#include "journal.h"
#include "locktable.h"
#include "log.h"
#include "lock_limits.h"
#include "store.h"
#include "store_local.h"

#define ROOT_KEY 1
#define COMPACT_SLACK (1u << 20)
#define PATH_DEPTH_MAX 512

/* Everything the daemon lets in fits the journal format (journal.h). */
_Static_assert(LOCKFS_MAX_CONTENT_LIMIT <= JOURNAL_CONTENT_MAX, "content must fit a record");
_Static_assert(LT_NAME_MAX <= JOURNAL_NAME_MAX, "names must fit a record");
_Static_assert(LOCKFS_MAX_NAMES_LIMIT - 1 <= JOURNAL_ALIASES_MAX, "names must fit a record");
_Static_assert(LOCKFS_SHARES_MAX <= JOURNAL_SHARERS_MAX, "sharers must fit a record");

struct store_local {
        struct store base;
        char *journal, *journal_new;
        int lockfd;              /* STATE_DIR/lock, flocked while we live */
        int fd;                  /* the journal, appending; -1 until restored */
        char boot_id[JOURNAL_BOOT_ID_LEN + 1];
        struct entries live;     /* what the table holds */
        struct entries loaded;   /* what the journal held, until restore() */
        uint32_t loaded_version; /* the format of the loaded records */
        uint64_t file_size;
        bool must_compact;
        struct fence_file fences;
        struct buf rec;          /* the record being written */
};

static struct store_local *of(struct store *s) {
        return container_of(s, struct store_local, base);
}

/* Decode a loaded entry's record (valid: it was decoded before). */
static void entry_decode(const struct store_local *s, const struct entry *e, struct jrec *r) {
        size_t off = 0;
        journal_next(e->raw, e->len, s->loaded_version, &off, r);
}

/* ---- the journal file ----------------------------------------------------- */

#define COMPACT_CHUNK 65536     /* compact writes records in chunks of about this */

/* Write the header and every live entry to fd: 0, or -errno; the bytes
 * that make the file in *ret_size. */
static int write_live(struct store_local *s, int fd, uint64_t *ret_size) {
        uint8_t header[JOURNAL_HEADER_SIZE];
        journal_header_encode(s->boot_id, header);
        struct buf out = { 0 };
        int r = buf_put(&out, header, sizeof(header));
        uint64_t size = sizeof(header);
        for (size_t b = 0; r == 0 && b <= s->live.by_key.mask; b++) {
                for (struct hlink *l = s->live.by_key.buckets[b]; l && r == 0; l = l->next) {
                        struct entry *e = container_of(l, struct entry, by_key);
                        if (out.len >= COMPACT_CHUNK) {
                                r = fs_write_all(fd, out.data, out.len);
                                out.len = 0;
                        }
                        if (r == 0)
                                r = buf_put(&out, e->raw, e->len);
                        size += e->len;
                }
        }
        if (r == 0)
                r = fs_write_all(fd, out.data, out.len);
        buf_free(&out);
        *ret_size = size;
        return r;
}

/* Rewrite the journal from the live entries (beside it, then renamed over
 * it). On failure the old file stays and the next change tries again. */
static int compact(struct store_local *s) {
        int fd = open(s->journal_new, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        uint64_t size = 0;
        int r = write_live(s, fd, &size);
        if (r == 0 && rename(s->journal_new, s->journal) < 0)
                r = -errno;
        if (r < 0) {
                close(fd);
                unlink(s->journal_new);
                s->must_compact = true;
                return r;
        }
        if (s->fd >= 0)
                close(s->fd);
        s->fd = fd;
        s->file_size = size;
        s->must_compact = false;
        return 0;
}

/* Append s->rec (already applied to the live entries). */
static int append(struct store_local *s) {
        if (s->fd < 0)
                return 0; /* restoring: compaction writes everything */
        if (s->must_compact)
                return compact(s);
        int r = fs_write_all(s->fd, s->rec.data, s->rec.len);
        if (r < 0) {
                /* Cut a partial record, or the records after it would be
                 * lost at replay; rewrite everything at the next change. */
                if (ftruncate(s->fd, (off_t)s->file_size) < 0)
                        log_msg(LOG_ERR, "journal %s: cannot cut a failed write: %s", s->journal,
                                strerror(errno));
                s->must_compact = true;
                log_msg(LOG_ERR, "journal %s: write failed: %s", s->journal, strerror(-r));
                return compact(s) == 0 ? 0 : r;
        }
        s->file_size += s->rec.len;
        if (s->file_size > 2 * (uint64_t)s->live.bytes + COMPACT_SLACK)
                compact(s); /* a failure is retried at the next change */
        return 0;
}

/* ---- store operations ------------------------------------------------------ */

/* Make s->rec (a record for key) the live entry of key and append it. If
 * it cannot be written, the live entries go back to what they were, so a
 * later compaction never writes a change its caller was told failed. */
static int record(struct store_local *s, uint64_t key) {
        int r;
        struct entry *old = entry_set(&s->live, key, (const uint8_t *)s->rec.data,
                                       s->rec.len, &r);
        if (r < 0)
                return r;
        r = append(s);
        if (r < 0) {
                entry_del(&s->live, key);
                if (old)
                        entry_put_back(&s->live, old);
                return r;
        }
        entry_free(old);
        return 0;
}

static int local_acquire(struct store *base, const struct lock_view *v, uint64_t *ret_fence) {
        struct store_local *s = of(base);
        uint64_t fence;
        int r = fence_file_next(&s->fences, &fence);
        if (r < 0) {
                log_msg(LOG_ERR, "fence file %s: %s", s->fences.path, strerror(-r));
                return -EIO;
        }
        struct lock_view with_fence = *v;
        with_fence.fence = fence;
        s->rec.len = 0;
        if ((r = journal_put_lock(&s->rec, &with_fence)) < 0)
                return r;
        if (record(s, v->ino) < 0)
                return -EIO; /* not journaled: the acquisition must not happen */
        *ret_fence = fence;
        return 0;
}

static int local_update(struct store *base, const struct lock_view *v) {
        struct store_local *s = of(base);
        s->rec.len = 0;
        int r = journal_put_lock(&s->rec, v);
        return r < 0 ? r : record(s, v->ino);
}

static int local_forget(struct store_local *s, uint64_t key) {
        if (!entry_del(&s->live, key))
                return 0;
        s->rec.len = 0;
        int r = journal_put_del(&s->rec, key);
        return r < 0 ? r : append(s);
}

static int local_release(struct store *base, uint64_t ino, const char *path, uint64_t fence) {
        (void)path;
        (void)fence;
        return local_forget(of(base), ino);
}

static int local_remove_dir(struct store *base, uint64_t ino) {
        return local_forget(of(base), ino);
}

static int local_put_dir(struct store *base, uint64_t ino, uint64_t parent, const char *name,
                         uid_t uid, gid_t gid) {
        struct store_local *s = of(base);
        s->rec.len = 0;
        int r = journal_put_dir(&s->rec, ino, parent, name, uid, gid);
        return r < 0 ? r : record(s, ino);
}

/* ---- restore ----------------------------------------------------------------- */

/* "/a/b/name" for name in directory key parent of the loaded journal;
 * NULL when a directory on the way is missing (or on allocation failure). */
static char *loaded_path(struct store_local *s, uint64_t parent, const char *name, size_t len) {
        const char *names[PATH_DEPTH_MAX];
        size_t lens[PATH_DEPTH_MAX], depth = 0, total = 1 + len;
        while (parent != ROOT_KEY) {
                struct entry *e = entry_find(&s->loaded, parent);
                struct jrec r;
                if (!e || depth == PATH_DEPTH_MAX)
                        return NULL;
                entry_decode(s, e, &r);
                if (r.type != JOURNAL_DIR)
                        return NULL;
                names[depth] = r.name;
                lens[depth++] = r.name_len;
                total += r.name_len + 1;
                parent = r.parent;
        }
        char *path = malloc(total + 1), *p = path;
        if (!path)
                return NULL;
        while (depth--) {
                *p++ = '/';
                memcpy(p, names[depth], lens[depth]);
                p += lens[depth];
        }
        *p++ = '/';
        memcpy(p, name, len);
        p[len] = '\0';
        return path;
}

/* The lock view of a loaded LOCK record, with paths; -ENOENT when a
 * directory of it is missing. */
static int loaded_lock_view(struct store_local *s, const struct jrec *r, struct lock_view *v) {
        *v = (struct lock_view){
                .ino = r->key, .detached = r->detached, .pid = r->pid,
                .parent_ino = r->parent, .start_time = r->start_time,
                .deadline_mono_ms = r->deadline_mono_ms,
        };
        LOCK_RECORD_COPY(v, r);
        v->expires_at_ms = v->renewed_at_ms + (int64_t)v->ttl_s * 1000;
        v->path = loaded_path(s, r->parent, r->name, r->name_len);
        if (!v->path)
                return -ENOENT;
        if (r->content_len) {
                v->content = malloc(r->content_len);
                if (!v->content)
                        return -ENOMEM;
                memcpy(v->content, r->content, r->content_len);
                v->content_len = r->content_len;
        }
        if (r->n_sharers) {
                v->sharers = calloc(r->n_sharers, sizeof(*v->sharers));
                if (!v->sharers)
                        return -ENOMEM;
                for (size_t i = 0; i < r->n_sharers; i++)
                        jrec_sharer(r, i, &v->sharers[i]);
                v->n_sharers = v->sharers_total = r->n_sharers;
                v->shared = true;
        }
        if (r->n_aliases) {
                v->aliases = calloc(r->n_aliases, sizeof(*v->aliases));
                if (!v->aliases)
                        return -ENOMEM;
                const uint8_t *p = r->aliases;
                for (size_t i = 0; i < r->n_aliases; i++) {
                        const char *name;
                        size_t len;
                        p = jrec_alias_next(p, &v->aliases[i].parent_ino, &name, &len);
                        v->n_aliases++;
                        v->aliases[i].path = loaded_path(s, v->aliases[i].parent_ino, name, len);
                        v->aliases[i].name = strndup(name, len);
                        if (!v->aliases[i].path || !v->aliases[i].name)
                                return -ENOENT;
                }
        }
        return 0;
}

/* Hand every loaded entry of type to cb. A lock record that cannot be
 * placed (a directory of one of its names is not in the journal) stops the
 * restore with -EUCLEAN: its names might be held, and a lock left out would
 * hand them to the next creator (see load_journal). Nothing is written to
 * the file before the restore completes, so the journal stays as it was. */
static int restore_type(struct store_local *s, enum journal_type type,
                        const struct store_restore_cb *cb) {
        for (size_t b = 0; b <= s->loaded.by_key.mask; b++) {
                for (struct hlink *l = s->loaded.by_key.buckets[b]; l; l = l->next) {
                        struct entry *e = container_of(l, struct entry, by_key);
                        struct jrec r;
                        entry_decode(s, e, &r);
                        if (r.type != type)
                                continue;
                        if (type == JOURNAL_DIR) {
                                char *path = loaded_path(s, r.parent, r.name, r.name_len);
                                if (path)
                                        cb->dir(cb->ctx, path, r.uid, r.gid);
                                free(path);
                                continue;
                        }
                        struct lock_view v;
                        int err = loaded_lock_view(s, &r, &v);
                        if (err == 0)
                                cb->lock(cb->ctx, &v);
                        lock_view_clear(&v);
                        if (err < 0) {
                                log_msg(LOG_ERR, "journal %s: the lock record at byte %zu (%.*s, "
                                        "fence %" PRIu64 ") %s: refusing to start, as its "
                                        "names might be held; move the journal aside to start "
                                        "without its locks", s->journal, e->off,
                                        (int)r.name_len, r.name, r.fence,
                                        err == -ENOENT ? "names a directory the journal lacks"
                                                       : "cannot be restored (out of memory)");
                                return err == -ENOENT ? -EUCLEAN : err;
                        }
                }
        }
        return 0;
}

static int local_restore(struct store *base, const struct store_restore_cb *cb) {
        struct store_local *s = of(base);
        int r = restore_type(s, JOURNAL_DIR, cb);
        if (r == 0)
                r = restore_type(s, JOURNAL_LOCK, cb);
        entries_free(&s->loaded);
        if (r < 0)
                return r;
        r = compact(s);
        if (r < 0)
                log_msg(LOG_ERR, "journal %s: cannot write: %s", s->journal, strerror(-r));
        return r;
}

/* ---- open ---------------------------------------------------------------------- */

static int read_boot_id(char out[JOURNAL_BOOT_ID_LEN + 1]) {
        memset(out, '0', JOURNAL_BOOT_ID_LEN);
        out[JOURNAL_BOOT_ID_LEN] = '\0';
        FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
        if (!f)
                return -errno;
        char line[64] = "";
        bool ok = fgets(line, sizeof(line), f) && strlen(line) >= JOURNAL_BOOT_ID_LEN;
        fclose(f);
        if (!ok)
                return -EIO;
        memcpy(out, line, JOURNAL_BOOT_ID_LEN);
        return 0;
}

/* Read the journal file and check its header: 0 with the file in *ret
 * (*ret_len bytes, its boot id in boot), or 1 when it restores nothing
 * (missing, unreadable, empty, no journal or of an unknown version:
 * logged, and it will be replaced). */
static int read_journal(struct store_local *s, uint8_t **ret, size_t *ret_len,
                        char boot[JOURNAL_BOOT_ID_LEN + 1]) {
        int r = fs_read_file(s->journal, ret, ret_len);
        if (r == -ENOENT)
                return 1;
        if (r < 0) {
                log_msg(LOG_ERR, "journal %s: cannot read (%s): no lock restored", s->journal,
                        strerror(-r));
                return 1;
        }
        r = *ret_len ? journal_header_check(*ret, *ret_len, boot, &s->loaded_version) : 0;
        if (*ret_len && r == 0)
                return 0;
        if (r < 0)
                log_msg(LOG_ERR, "journal %s: %s: no lock restored", s->journal,
                        r == -EPROTONOSUPPORT ? "unsupported version" : "not a lockfs journal");
        free(*ret);
        *ret = NULL;
        return 1;
}

/* Replay the records of buf (len bytes) from *off into s->loaded (the last
 * record of a key wins; a DEL removes it): the highest fence of a lock
 * record in *max_fence, the count in *n_records, and at the end *off where
 * the valid records end. Returns what journal_next gave last (0 at a clean
 * end, -ENODATA, -EBADMSG), or -ENOMEM (logged). */
static int replay_records(struct store_local *s, const uint8_t *buf, size_t len, size_t *off,
                          uint64_t *max_fence, size_t *n_records) {
        struct jrec rec;
        int r;
        while ((r = journal_next(buf, len, s->loaded_version, off, &rec)) == 1) {
                ++*n_records;
                if (rec.type == JOURNAL_DEL) {
                        entry_del(&s->loaded, rec.key);
                        continue;
                }
                if (rec.type == JOURNAL_LOCK && rec.fence > *max_fence)
                        *max_fence = rec.fence;
                int err;
                entry_free(entry_set(&s->loaded, rec.key, rec.raw, rec.raw_len, &err));
                if (err < 0) {
                        log_msg(LOG_ERR, "journal %s: out of memory at byte %zu", s->journal,
                                *off);
                        return err;
                }
                entry_find(&s->loaded, rec.key)->off = *off - rec.raw_len;
        }
        return r;
}

/* A journal of another boot holds no live holder: forget its locks (its
 * directories stay), and say how many. */
static void drop_locks_of_other_boot(struct store_local *s) {
        size_t dropped = 0;
        for (size_t b = 0; b <= s->loaded.by_key.mask; b++) {
                for (struct hlink *l = s->loaded.by_key.buckets[b], *next; l; l = next) {
                        next = l->next;
                        struct entry *e = container_of(l, struct entry, by_key);
                        struct jrec jr;
                        entry_decode(s, e, &jr);
                        if (jr.type == JOURNAL_LOCK) {
                                dropped++;
                                entry_del(&s->loaded, e->key);
                        }
                }
        }
        log_msg(LOG_NOTICE, "journal %s is from another boot: %zu locks dropped", s->journal,
                dropped);
}

/* Load the journal into s->loaded, and the highest fence it recorded into
 * *max_fence. Replay policy, for a journal of this boot (whose locks may
 * be held by live processes):
 * - a torn tail (the file ends inside the last record: a write that never
 *   completed, so its caller never saw success) is cut: the records before
 *   it are used, and the log says so;
 * - any other damage (a complete record with a bad checksum, or with a
 *   valid checksum whose body does not decode) refuses to start (-EUCLEAN),
 *   naming the byte offset: the damaged record and every record after it
 *   may be the last word on a held lock, and leaving them out would hand
 *   its names to the next creator. The file is left as it is.
 * A journal of another boot holds no live holder: its valid prefix is used
 * for its directories. A file that is no journal, or of an unknown
 * version, restores nothing (and is replaced). */
static int load_journal(struct store_local *s, uint64_t *ret_max_fence) {
        uint8_t *buf;
        size_t len, off = JOURNAL_HEADER_SIZE, n_records = 0;
        char boot[JOURNAL_BOOT_ID_LEN + 1];
        *ret_max_fence = 0;
        if (read_journal(s, &buf, &len, boot) > 0)
                return 0;
        bool same_boot = strcmp(boot, s->boot_id) == 0;
        uint64_t max_fence = 0;
        int r = replay_records(s, buf, len, &off, &max_fence, &n_records);
        free(buf);
        if (r == -ENOMEM)
                return r;
        if (r == -EBADMSG && same_boot) {
                log_msg(LOG_ERR, "journal %s: the record at byte %zu of %zu is damaged (it "
                        "is complete, but its checksum or its contents are wrong): refusing "
                        "to start, as it or the records after it (%zu bytes from it to the "
                        "end) may record held locks; move the journal aside to start "
                        "without its locks", s->journal, off, len, len - off);
                return -EUCLEAN;
        }
        if (r < 0)
                log_msg(LOG_WARNING, "journal %s: %s record at byte %zu of %zu: "
                        "using the %zu records before it", s->journal,
                        r == -ENODATA ? "torn" : "damaged", off, len, n_records);
        if (!same_boot) /* holders do not survive a reboot; namespaces do */
                drop_locks_of_other_boot(s);
        *ret_max_fence = max_fence;
        return 0;
}

static void local_free(struct store *base) {
        struct store_local *s = of(base);
        if (s->fd >= 0)
                close(s->fd);
        if (s->lockfd >= 0)
                close(s->lockfd);
        entries_free(&s->live);
        entries_free(&s->loaded);
        fence_file_close(&s->fences);
        buf_free(&s->rec);
        free(s->journal);
        free(s->journal_new);
        free(s);
}

static const struct store_ops store_local_ops = {
        .name = "local",
        .acquire = local_acquire,
        .update = local_update,
        .release = local_release,
        .put_dir = local_put_dir,
        .remove_dir = local_remove_dir,
        .restore = local_restore,
        .free = local_free,
};

void store_local_record_owner(struct store *base) {
        struct store_local *s = of(base);
        char pid[32];
        int n = snprintf(pid, sizeof(pid), "%d\n", (int)getpid());
        if (ftruncate(s->lockfd, 0) < 0 || pwrite(s->lockfd, pid, (size_t)n, 0) != n)
                log_msg(LOG_WARNING, "cannot record our pid beside %s: %s", s->journal,
                        strerror(errno));
}

pid_t store_local_owner(const char *state_dir) {
        char *lock, buf[32] = "";
        if (asprintf(&lock, "%s/lock", state_dir) < 0)
                return 0;
        int fd = open(lock, O_RDONLY | O_CLOEXEC);
        free(lock);
        if (fd < 0)
                return 0;
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        close(fd);
        long pid = n > 0 ? strtol(buf, NULL, 10) : 0;
        return pid > 0 && pid < INT32_MAX ? (pid_t)pid : 0;
}

int store_local_open(const char *state_dir, const char *fence_file, struct store **ret) {
        struct store_local *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->base.ops = &store_local_ops;
        s->fd = s->lockfd = -1;
        int r = -ENOMEM;
        char *lock = NULL;
        if (entries_init(&s->live) < 0 || entries_init(&s->loaded) < 0 ||
            asprintf(&s->journal, "%s/journal", state_dir) < 0 ||
            asprintf(&s->journal_new, "%s/journal.new", state_dir) < 0 ||
            asprintf(&lock, "%s/lock", state_dir) < 0)
                goto fail;
        if ((r = fs_mkdir_p(state_dir, 0700)) < 0)
                goto fail;
        s->lockfd = open(lock, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (s->lockfd < 0) {
                r = -errno;
                goto fail;
        }
        if (flock(s->lockfd, LOCK_EX | LOCK_NB) < 0) {
                r = errno == EWOULDBLOCK ? -EBUSY : -errno;
                goto fail;
        }
        store_local_record_owner(&s->base);
        if ((r = read_boot_id(s->boot_id)) < 0)
                log_msg(LOG_WARNING, "cannot read the boot id: %s", strerror(-r));
        uint64_t max_fence;
        /* fences above every one the journal holds; none left: -EOVERFLOW */
        if ((r = load_journal(s, &max_fence)) < 0 ||
            (r = fence_file_open(fence_file, max_fence == UINT64_MAX ? max_fence : max_fence + 1,
                                 &s->fences)) < 0)
                goto fail;
        free(lock);
        *ret = &s->base;
        return 0;
fail:
        free(lock);
        local_free(&s->base);
        return r;
}
