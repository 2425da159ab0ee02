/* SPDX-License-Identifier: MIT */
/* FUSE low-level handlers: identify the caller, call the lock table, map
 * its -errno to a reply. Lock files and .lockfs/metrics are served with
 * direct_io from one snapshot per open file (file_render), rendered at a
 * read-only open or else at the first read (creates that are never read render nothing),
 * so every reader sees one complete, fresh JSON document; .lockfs/locks.json
 * is rendered in pieces as it is read (status_stream.h: sequential reads
 * only, ESPIPE otherwise). What open files hold rendered is charged to the
 * opener's uid (ctx->budget): past it, the open or read fails with ENOMEM.
 * Entry and attribute
 * timeouts are 0: the kernel asks again every time, so a released lock is
 * gone for every observer. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "file.h"
#include "fs.h"
#include "lockfs_ioctl.h"
#include "log.h"
#include "status_stream.h"

static struct lockfs_ctx *ctx_of(fuse_req_t req) {
        return fuse_req_userdata(req);
}

/* Identify the process behind req; replies the error itself on failure. */
static int caller_of(fuse_req_t req, struct caller *c) {
        const struct fuse_ctx *fc = fuse_req_ctx(req);
        int r = holder_identify(fc->pid, fc->uid, fc->gid, c);
        if (r < 0)
                fuse_reply_err(req, -r);
        return r;
}

/* The same without the ancestry (see holder_identify_quick), and with
 * names false, without the cmdline too (holder_identify_process_only). */
static int caller_quick_of(fuse_req_t req, bool names, struct caller *c) {
        const struct fuse_ctx *fc = fuse_req_ctx(req);
        int r = names ? holder_identify_quick(fc->pid, fc->uid, fc->gid, c)
                      : holder_identify_process_only(fc->pid, fc->uid, fc->gid, c);
        if (r < 0)
                fuse_reply_err(req, -r);
        return r;
}

/* The table answered need (LT_NEED_CMDLINE or LT_NEED_LINEAGE): identify
 * the caller again with what it asked for. Replies the error itself on
 * failure. */
static int caller_more_of(fuse_req_t req, int need, struct caller *c) {
        return need == LT_NEED_CMDLINE ? caller_quick_of(req, true, c) : caller_of(req, c);
}

static void ms_to_ts(int64_t ms, struct timespec *ts) {
        ts->tv_sec = ms / 1000;
        ts->tv_nsec = (ms % 1000) * 1000000;
}

static void attr_to_stat(const struct lt_attr *a, struct stat *st) {
        memset(st, 0, sizeof(*st));
        st->st_ino = a->ino;
        st->st_mode = a->mode;
        st->st_nlink = a->nlink;
        st->st_uid = a->uid;
        st->st_gid = a->gid;
        /* a status is rendered per open: size unknown; a raw lock's is its
         * content's (SPEC R4.4a, R4.5) */
        st->st_size = a->raw ? (off_t)a->size : 0;
        st->st_blksize = 4096;
        ms_to_ts(a->mtime_ms, &st->st_mtim);
        ms_to_ts(a->mtime_ms, &st->st_atim);
        ms_to_ts(a->ctime_ms, &st->st_ctim);
        if (a->times_set) { /* a directory's, exactly as set (SPEC R7.5) */
                st->st_mtim = a->mtime;
                st->st_atim = a->atime;
        }
}

/* Entry and attribute timeouts stay 0. Cached entries would spare one
 * LOOKUP per cycle (about 7% here), but a name the daemon removes and
 * re-creates by itself (a flock waiter taking a name anew right after a
 * holder's death or close) would be served stale until the asynchronous
 * invalidation lands: the chaos test saw exactly that. */
static void entry_of(const struct lt_attr *a, struct fuse_entry_param *e) {
        *e = (struct fuse_entry_param){ .ino = a->ino, .generation = 1 };
        attr_to_stat(a, &e->attr);
}

static void reply_entry(fuse_req_t req, const struct lt_attr *a) {
        struct fuse_entry_param e;
        entry_of(a, &e);
        fuse_reply_entry(req, &e);
}

/* ---- handlers ------------------------------------------------------------- */

static void op_init(void *userdata, struct fuse_conn_info *conn) {
        (void)userdata;
        /* O_TRUNC stays in OPEN's flags (one request; ignorable for contenders). */
        if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
                conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
        conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
        fs_count_request(ctx_of(req), FS_OP_LOOKUP);
        struct lt_attr a;
        int r = locktable_lookup(ctx_of(req)->table, parent, name, &a);
        if (r < 0)
                fuse_reply_err(req, -r);
        else
                reply_entry(req, &a);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
        fs_count_request(ctx_of(req), FS_OP_FORGET);
        locktable_forget(ctx_of(req)->table, ino, nlookup);
        fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets) {
        fs_count_request(ctx_of(req), FS_OP_FORGET);
        for (size_t i = 0; i < count; i++)
                locktable_forget(ctx_of(req)->table, forgets[i].ino, forgets[i].nlookup);
        fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
        fs_count_request(ctx_of(req), FS_OP_GETATTR);
        struct lt_attr a;
        struct stat st;
        int r = locktable_getattr(ctx_of(req)->table, ino, &a);
        if (r < 0) {
                fuse_reply_err(req, -r);
                return;
        }
        attr_to_stat(&a, &st);
        size_t len;
        struct file *f = file_of(fi);
        if (f && file_raw_size(f, &len)) /* what this open file reads (SPEC R4.5) */
                st.st_size = (off_t)len;
        fuse_reply_attr(req, &st, 0);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi) {
        fs_count_request(ctx_of(req), FS_OP_SETATTR);
        struct caller c;
        if (caller_of(req, &c) < 0)
                return;
        unsigned what = 0;
        if (to_set & FUSE_SET_ATTR_SIZE)
                what |= LT_SET_SIZE;
        if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_ATIME_NOW |
                      FUSE_SET_ATTR_MTIME_NOW))
                what |= LT_SET_TIMES;
        if (to_set & FUSE_SET_ATTR_MODE)
                what |= LT_SET_MODE;
        if (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))
                what |= LT_SET_OWNER;
        /* the times asked for, "now" resolved here (SPEC R7.5) */
        struct timespec now;
        clock_gettime(CLOCK_REALTIME, &now);
        struct lt_times times = {
                .set_atime = (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_ATIME_NOW)) != 0,
                .set_mtime = (to_set & (FUSE_SET_ATTR_MTIME | FUSE_SET_ATTR_MTIME_NOW)) != 0,
                .explicit_time = ((to_set & FUSE_SET_ATTR_ATIME) &&
                                  !(to_set & FUSE_SET_ATTR_ATIME_NOW)) ||
                                 ((to_set & FUSE_SET_ATTR_MTIME) &&
                                  !(to_set & FUSE_SET_ATTR_MTIME_NOW)),
                .atime = to_set & FUSE_SET_ATTR_ATIME_NOW ? now : attr->st_atim,
                .mtime = to_set & FUSE_SET_ATTR_MTIME_NOW ? now : attr->st_mtim,
        };
        struct file *f = file_of(fi);
        struct lt_handle h = f && f->type == FILE_LOCK ? file_handle(f) : (struct lt_handle){ 0 };
        struct lt_attr a;
        int r = locktable_setattr_times(ctx_of(req)->table, ino,
                                        f && f->type == FILE_LOCK ? &h : NULL, &c, what,
                                        attr->st_size, &times, &a);
        if (r < 0) {
                fuse_reply_err(req, -r);
                return;
        }
        struct stat st;
        attr_to_stat(&a, &st);
        fuse_reply_attr(req, &st, 0);
}

static void reply_open_file(fuse_req_t req, struct fuse_file_info *fi, struct file *f,
                            const struct lt_attr *created) {
        fi->fh = (uintptr_t)f;
        fi->direct_io = 1;
        fi->keep_cache = 0;
        /* A close's FLUSH is how the kernel ends its process's record locks
         * (SPEC R7.4): asked for on every open a record lock may come
         * through, spared (one round trip) for exclusive creates, whose
         * record locks end with their RELEASE instead, and meta files. */
        fi->noflush = f->type != FILE_LOCK || (fi->flags & O_EXCL);
        if (created) {
                struct fuse_entry_param e;
                entry_of(created, &e);
                if (fuse_reply_create(req, &e, fi) < 0) { /* connection gone */
                        locktable_forget(f->ctx->table, created->ino, 1);
                        file_put(f);
                }
        } else if (fuse_reply_open(req, fi) < 0) {
                file_put(f);
        }
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
        fs_count_request(ctx_of(req), FS_OP_OPEN);
        struct lockfs_ctx *ctx = ctx_of(req);
        bool meta = locktable_meta_file(ino) != LT_META_NONE;
        struct file *f = file_new(ctx, meta ? FILE_META : FILE_LOCK);
        int r = f ? 0 : -ENOMEM;
        if (f) {
                f->opener_tid = fuse_req_ctx(req)->pid;
                f->uid = fuse_req_ctx(req)->uid;
        }
        if (r == 0 && meta) {
                r = (fi->flags & O_ACCMODE) != O_RDONLY ? -EACCES : 0;
        } else if (r == 0 && (fi->flags & O_ACCMODE) == O_RDONLY) {
                /* readers need no identity: reading always works (SPEC R2.4) */
                const struct fuse_ctx *fc = fuse_req_ctx(req);
                struct caller c = { .uid = fc->uid, .gid = fc->gid };
                r = locktable_open(ctx->table, ino, &c, fi->flags, &f->lock);
        } else if (r == 0) {
                struct caller c;
                if (caller_of(req, &c) < 0) {
                        file_put(f);
                        return;
                }
                r = locktable_open(ctx->table, ino, &c, fi->flags, &f->lock);
        }
        /* Readers get the status as of their open; writers render lazily. */
        if (r == 0 && (fi->flags & O_ACCMODE) == O_RDONLY)
                r = file_render(f, ino);
        if (r < 0) {
                file_put(f);
                fuse_reply_err(req, -r);
                return;
        }
        reply_open_file(req, fi, f, NULL);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi) {
        fs_count_request(ctx_of(req), FS_OP_CREATE);
        if (!S_ISREG(mode) && (mode & S_IFMT)) {
                fuse_reply_err(req, EPERM);
                return;
        }
        struct lockfs_ctx *ctx = ctx_of(req);
        struct caller c;
        /* An exclusive create acquires or fails whoever asks: no lineage,
         * and no cmdline for a process the table knows (see below). */
        if ((fi->flags & O_EXCL ? caller_quick_of(req, false, &c) : caller_of(req, &c)) < 0)
                return;
        struct file *f = file_new(ctx, FILE_LOCK);
        struct lt_attr a;
        int r = f ? 0 : -ENOMEM;
        if (f) {
                f->opener_tid = c.tid;
                f->uid = c.uid;
        }
        if (r == 0)
                r = locktable_create(ctx->table, parent, name, &c, fi->flags, &a, &f->lock);
        if (r > 0) { /* a process new to the table */
                if (caller_more_of(req, r, &c) < 0) {
                        file_put(f);
                        return;
                }
                r = locktable_create(ctx->table, parent, name, &c, fi->flags, &a, &f->lock);
        }
        if (r < 0) {
                file_put(f);
                fuse_reply_err(req, -r);
                return;
        }
        log_debug("create %s by pid %d: %s", name, (int)c.self.pid,
                  f->lock.kind == LT_HANDLE_CONTENDER ? "contender" : "holder");
        reply_open_file(req, fi, f, &a);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                     dev_t rdev) {
        fs_count_request(ctx_of(req), FS_OP_MKNOD);
        (void)rdev;
        if (!S_ISREG(mode)) {
                fuse_reply_err(req, EPERM);
                return;
        }
        struct caller c;
        if (caller_of(req, &c) < 0)
                return;
        struct lt_attr a;
        struct lt_handle h;
        int r = locktable_create(ctx_of(req)->table, parent, name, &c, O_CREAT | O_EXCL | O_WRONLY,
                                 &a, &h);
        if (r < 0)
                fuse_reply_err(req, -r);
        else
                reply_entry(req, &a);
}

/* locks.json: the piece at off, rendered as needed. */
static void read_stream(fuse_req_t req, size_t size, off_t off, struct file *f) {
        const char *p = NULL;
        size_t n = 0;
        pthread_mutex_lock(&f->mu);
        int r = off < 0 ? -EINVAL : status_stream_read(f->stream, (uint64_t)off, size, &p, &n);
        if (r < 0)
                fuse_reply_err(req, -r);
        else
                fuse_reply_buf(req, p, n);
        pthread_mutex_unlock(&f->mu);
}

static void read_file(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct file *f) {
        if (f->stream) {
                read_stream(req, size, off, f);
                return;
        }
        /* a raw lock read from its start shows its content now (R4.4a) */
        int r = off == 0 ? file_refresh_raw(f, ino) : file_render(f, ino);
        if (r < 0) {
                fuse_reply_err(req, -r);
                return;
        }
        if (!f->buf || off < 0 || (size_t)off >= f->len) {
                fuse_reply_buf(req, NULL, 0);
                return;
        }
        size_t n = f->len - (size_t)off;
        fuse_reply_buf(req, f->buf + off, n < size ? n : size);
}

/* The kernel may send RELEASE as soon as our READ reply is written, while
 * this thread is still returning from the write: hold a reference. */
static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi) {
        fs_count_request(ctx_of(req), FS_OP_READ);
        struct file *f = file_of(fi);
        file_get(f);
        read_file(req, ino, size, off, f);
        file_put(f);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi) {
        fs_count_request(ctx_of(req), FS_OP_WRITE);
        (void)ino;
        struct file *f = file_of(fi);
        if (f->type != FILE_LOCK) {
                fuse_reply_err(req, EACCES);
                return;
        }
        struct caller c;
        if (caller_of(req, &c) < 0)
                return;
        struct lt_handle h = file_handle(f);
        ssize_t r = locktable_write(ctx_of(req)->table, &h, &c, off, buf, size);
        if (r < 0)
                fuse_reply_err(req, (int)-r);
        else
                fuse_reply_write(req, (size_t)r);
}

/* The close of a descriptor: the record locks of the closing process
 * (fi->lock_owner) on the file go, as the kernel's rule for POSIX locks
 * says (SPEC R7.4). */
static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
        struct lockfs_ctx *ctx = ctx_of(req);
        fs_count_request(ctx, FS_OP_FLUSH);
        (void)ino;
        struct file *f = file_of(fi);
        if (f && f->type == FILE_LOCK)
                locktable_posix_unlock(ctx->table, file_handle(f).ino, fi->lock_owner,
                                       notifier_removed, ctx->notifier);
        fuse_reply_err(req, 0);
}

/* The last close of an open file. If it held a flock, that releases the
 * lock (SPEC R7.2), and so does a record lock taken through it (an OFD
 * lock's end); RELEASE carries pid 0, the file's id says whose it was. */
static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
        struct lockfs_ctx *ctx = ctx_of(req);
        fs_count_request(ctx, FS_OP_RELEASE);
        (void)ino;
        struct file *f = file_of(fi);
        if (f->type == FILE_LOCK) {
                uint64_t lock_ino = file_handle(f).ino;
                if (fi->flock_release)
                        locktable_flock_unlock(ctx->table, lock_ino, f->id, notifier_removed,
                                               ctx->notifier);
                if (atomic_load(&f->record_locked))
                        locktable_posix_file_closed(ctx->table, lock_ino, f->id,
                                                    notifier_removed, ctx->notifier);
        }
        file_put(f);
        fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
        fs_count_request(ctx_of(req), FS_OP_FSYNC);
        (void)ino;
        (void)datasync;
        (void)fi;
        fuse_reply_err(req, 0);
}

/* A break (SPEC R3.4: lockctl break, or root's unlink of another uid's
 * detached lock), logged with the lock, its fence, its holder (pid 0 and
 * command "-" when detached, and its uid) and who broke it; clears *forced. */
static void log_forced(struct lock_view *forced, const struct caller *c) {
        log_msg(LOG_NOTICE,
                "force-unlock of %s (fence %llu, held by pid %d %s uid %u) by pid %d uid %u",
                forced->path, (unsigned long long)forced->fence, (int)forced->pid,
                forced->comm[0] ? forced->comm : "-", (unsigned)forced->uid, (int)c->self.pid,
                (unsigned)c->uid);
        lock_view_clear(forced);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name) {
        fs_count_request(ctx_of(req), FS_OP_UNLINK);
        struct caller c;
        if (caller_quick_of(req, false, &c) < 0)
                return;
        struct lock_view forced;
        int r = locktable_unlink(ctx_of(req)->table, parent, name, &c, &forced);
        if (r > 0) { /* not the holder itself: look at its lineage */
                if (caller_more_of(req, r, &c) < 0)
                        return;
                r = locktable_unlink(ctx_of(req)->table, parent, name, &c, &forced);
        }
        if (r == 0 && forced.path)
                log_forced(&forced, &c);
        fuse_reply_err(req, -r);
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
                      const char *newname, unsigned int flags) {
        fs_count_request(ctx_of(req), FS_OP_RENAME);
        struct caller c;
        if (caller_of(req, &c) < 0)
                return;
        fuse_reply_err(req, -locktable_rename(ctx_of(req)->table, parent, name, newparent,
                                              newname, flags, &c));
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode) {
        fs_count_request(ctx_of(req), FS_OP_MKDIR);
        (void)mode;
        /* a directory lock's mkdir acquires (SPEC R7.5): who asks, as for
         * an exclusive create */
        struct caller c;
        if (caller_quick_of(req, false, &c) < 0)
                return;
        struct lt_attr a;
        int r = locktable_mkdir(ctx_of(req)->table, parent, name, &c, &a);
        if (r > 0) { /* a process new to the table */
                if (caller_more_of(req, r, &c) < 0)
                        return;
                r = locktable_mkdir(ctx_of(req)->table, parent, name, &c, &a);
        }
        if (r < 0)
                fuse_reply_err(req, -r);
        else
                reply_entry(req, &a);
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name) {
        fs_count_request(ctx_of(req), FS_OP_RMDIR);
        struct caller c;
        if (caller_quick_of(req, false, &c) < 0)
                return;
        struct lock_view forced;
        int r = locktable_rmdir_lock(ctx_of(req)->table, parent, name, &c, &forced);
        if (r > 0) { /* a directory lock, not its holder itself: its lineage */
                if (caller_more_of(req, r, &c) < 0)
                        return;
                r = locktable_rmdir_lock(ctx_of(req)->table, parent, name, &c, &forced);
        }
        if (r == 0 && forced.path)
                log_forced(&forced, &c);
        fuse_reply_err(req, -r);
}

/* Symlinks are not locks (SPEC R1.5). */
static void op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name) {
        fs_count_request(ctx_of(req), FS_OP_SYMLINK);
        (void)link;
        (void)parent;
        (void)name;
        fuse_reply_err(req, EPERM);
}

/* link(2): a second name for a lock, what dotlock tools do (SPEC R2.5). */
static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname) {
        fs_count_request(ctx_of(req), FS_OP_LINK);
        struct caller c;
        if (caller_of(req, &c) < 0)
                return;
        struct lt_attr a;
        int r = locktable_link(ctx_of(req)->table, ino, newparent, newname, &c, &a);
        if (r < 0)
                fuse_reply_err(req, -r);
        else
                reply_entry(req, &a);
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
        fs_count_request(ctx_of(req), FS_OP_OPENDIR);
        struct file *f = file_new(ctx_of(req), FILE_DIR);
        if (!f) {
                fuse_reply_err(req, ENOMEM);
                return;
        }
        int r = locktable_readdir(ctx_of(req)->table, ino, &f->ents, &f->n_ents);
        if (r < 0) {
                file_put(f);
                fuse_reply_err(req, -r);
                return;
        }
        fi->fh = (uintptr_t)f;
        if (fuse_reply_open(req, fi) == -ENOENT)
                file_put(f);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi) {
        fs_count_request(ctx_of(req), FS_OP_READDIR);
        (void)ino;
        struct file *f = file_of(fi);
        char *buf = malloc(size);
        if (!buf) {
                fuse_reply_err(req, ENOMEM);
                return;
        }
        size_t used = 0;
        for (size_t i = off < 0 ? 0 : (size_t)off; i < f->n_ents; i++) {
                struct stat st = { .st_ino = f->ents[i].ino };
                st.st_mode = f->ents[i].kind == LT_DIR ? S_IFDIR : S_IFREG;
                size_t need = fuse_add_direntry(req, buf + used, size - used, f->ents[i].name,
                                                &st, (off_t)(i + 1));
                if (need > size - used)
                        break;
                used += need;
        }
        fuse_reply_buf(req, buf, used);
        free(buf);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
        fs_count_request(ctx_of(req), FS_OP_RELEASEDIR);
        (void)ino;
        file_put(file_of(fi));
        fuse_reply_err(req, 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino) {
        fs_count_request(ctx_of(req), FS_OP_STATFS);
        (void)ino;
        struct lockfs_ctx *ctx = ctx_of(req);
        struct lt_capacity cap;
        locktable_capacity(ctx->table, &cap);
        uint64_t used = cap.used;
        uint64_t files = cap.max_nodes ? cap.max_nodes : UINT32_MAX;
        struct statvfs sv = {
                .f_bsize = 4096,
                .f_frsize = 4096,
                .f_files = files,
                .f_ffree = files > used ? files - used : 0,
                .f_favail = files > used ? files - used : 0,
                .f_namemax = LT_NAME_MAX,
        };
        fuse_reply_statfs(req, &sv);
}

/* LOCKFS_IOC_BREAK on an open lock or directory lock (lockfs_ioctl.h; a
 * plain directory gets EISDIR); every other command,
 * and any command on .lockfs files, gets ENOTTY as from a file system
 * without ioctls. */
static void op_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg,
                     struct fuse_file_info *fi, unsigned flags, const void *in_buf,
                     size_t in_bufsz, size_t out_bufsz) {
        fs_count_request(ctx_of(req), FS_OP_IOCTL);
        (void)arg;
        (void)out_bufsz;
        struct lockfs_ctx *ctx = ctx_of(req);
        struct file *f = file_of(fi);
        struct lockfs_break_arg a;
        /* a directory lock (SPEC R7.5) is broken through its open directory */
        enum file_type want = (flags & FUSE_IOCTL_DIR) ? FILE_DIR : FILE_LOCK;
        if (cmd != LOCKFS_IOC_BREAK || !f || f->type != want || ino == LT_INO_META_DIR) {
                fuse_reply_err(req, ENOTTY);
                return;
        }
        if (in_bufsz != sizeof(a)) {
                fuse_reply_err(req, EINVAL);
                return;
        }
        memcpy(&a, in_buf, sizeof(a));
        struct caller c;
        if (caller_of(req, &c) < 0) /* the whole lineage: a holder's child releases */
                return;
        struct lock_view forced;
        int r = locktable_break(ctx->table, ino, a.fence, &c, &forced, notifier_removed,
                                ctx->notifier);
        if (r == 0 && forced.path)
                log_forced(&forced, &c);
        if (r < 0)
                fuse_reply_err(req, -r);
        else
                fuse_reply_ioctl(req, 0, NULL, 0);
}

const struct fuse_lowlevel_ops lockfs_ops = {
        .init         = op_init,
        .lookup       = op_lookup,
        .forget       = op_forget,
        .forget_multi = op_forget_multi,
        .getattr      = op_getattr,
        .setattr      = op_setattr,
        .mknod        = op_mknod,
        .mkdir        = op_mkdir,
        .unlink       = op_unlink,
        .rmdir        = op_rmdir,
        .symlink      = op_symlink,
        .rename       = op_rename,
        .link         = op_link,
        .open         = op_open,
        .read         = op_read,
        .write        = op_write,
        .flush        = op_flush,
        .release      = op_release,
        .fsync        = op_fsync,
        .opendir      = op_opendir,
        .readdir      = op_readdir,
        .releasedir   = op_releasedir,
        .statfs       = op_statfs,
        .create       = op_create,
        .flock        = fs_op_flock, /* makes libfuse ask for FUSE_CAP_FLOCK_LOCKS */
        .getlk        = fs_op_getlk, /* these two: FUSE_CAP_POSIX_LOCKS */
        .setlk        = fs_op_setlk,
        .ioctl        = op_ioctl,
};
