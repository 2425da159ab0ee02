/* SPDX-License-Identifier: MIT */
/* nullfs: the trivial in-memory FUSE filesystem that measures the floor any
 * FUSE lock-file design pays (one flat directory, tiny files, no locking),
 * built from the same libfuse and served by the same multi-threaded loop
 * as lockfs, counting every request it serves per opcode.
 *
 * usage: nullfs [-f] [--timeout=SECONDS] [--noflush] MOUNTPOINT
 *   -f              stay in the foreground (otherwise daemonize once mounted)
 *   --timeout=S     entry and attribute timeout in seconds (default 0); with
 *                   S > 0 a missing name is answered as a cached negative entry
 *   --noflush       set fi->noflush on open and create (close sends no FLUSH)
 *
 * Mount options mirror lockfs's (fsname, subtype, nosuid, nodev, noexec),
 * files are opened with direct_io as lockfs does, atomic O_TRUNC is on and
 * the writeback cache off. Request counts: reading the file `.requests` in
 * the root (it is not listed by readdir) gives one Prometheus line per opcode,
 * `nullfs_fuse_requests_total{op="lookup"} 12`, rendered at open; reading it
 * costs a few requests itself (lookup, open, read, flush, release). The
 * counts are also printed to stderr at exit. SIGTERM, SIGINT and SIGHUP
 * unmount cleanly (or `fusermount3 -u MOUNTPOINT`). */
#define FUSE_USE_VERSION 312 /* as lockfs: the same session loop */
#include <errno.h>
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_CONTENT 256
#define MAX_DIRENT 288 /* one fuse_add_direntry record at most: 24 + 255 + padding */
#define HTAB_SIZE 4096
#define REQUESTS_NAME ".requests"
#define REQUESTS_INO 2

enum op {
        OP_LOOKUP, OP_FORGET, OP_GETATTR, OP_SETATTR, OP_CREATE, OP_OPEN, OP_READ, OP_WRITE,
        OP_FLUSH, OP_RELEASE, OP_UNLINK, OP_OPENDIR, OP_READDIR, OP_RELEASEDIR, OP_FSYNC,
        OP_STATFS, OP_GETXATTR, OP_LISTXATTR, OP_ACCESS, OP_COUNT
};

static const char *const op_names[OP_COUNT] = {
        "lookup", "forget", "getattr", "setattr", "create", "open", "read", "write",
        "flush", "release", "unlink", "opendir", "readdir", "releasedir", "fsync",
        "statfs", "getxattr", "listxattr", "access",
};

/* One file. ino is the node's address (the root is 1, .requests 2). A node
 * lives while it is linked or the kernel still knows it (nlookup > 0). */
struct node {
        struct node *next;      /* hash chain, while linked */
        uint64_t nlookup;
        bool linked;
        size_t len;
        char content[MAX_CONTENT];
        struct timespec mtime;
        char name[];
};

static struct {
        pthread_mutex_t mu;
        struct node *buckets[HTAB_SIZE];
        size_t count;
        double timeout;
        bool noflush;
        atomic_ulong requests[OP_COUNT];
} fs = { .mu = PTHREAD_MUTEX_INITIALIZER };

/* A buffer rendered at open: the .requests text, or a directory listing
 * with the end offset of each entry. */
struct snapshot {
        char *buf;
        size_t len;
        size_t *ends, n, cap;
};

static void count(enum op op) {
        atomic_fetch_add_explicit(&fs.requests[op], 1, memory_order_relaxed);
}

static size_t hash_name(const char *name) {
        size_t h = 5381;
        for (const unsigned char *p = (const unsigned char *)name; *p; p++)
                h = h * 33 + *p;
        return h % HTAB_SIZE;
}

static struct node *node_of(fuse_ino_t ino) {
        return (struct node *)(uintptr_t)ino;
}

/* Caller holds fs.mu. */
static struct node *find_locked(const char *name) {
        for (struct node *n = fs.buckets[hash_name(name)]; n; n = n->next)
                if (strcmp(n->name, name) == 0)
                        return n;
        return NULL;
}

/* Caller holds fs.mu; n is linked. */
static void unlink_locked(struct node *n) {
        struct node **pp = &fs.buckets[hash_name(n->name)];
        while (*pp != n)
                pp = &(*pp)->next;
        *pp = n->next;
        n->linked = false;
        fs.count--;
}

/* Caller holds fs.mu: free n once nothing refers to it any more. */
static void maybe_free_locked(struct node *n) {
        if (!n->linked && n->nlookup == 0)
                free(n);
}

static void fill_stat(fuse_ino_t ino, struct stat *st) {
        memset(st, 0, sizeof(*st));
        st->st_ino = ino;
        st->st_uid = getuid();
        st->st_gid = getgid();
        if (ino == FUSE_ROOT_ID) {
                st->st_mode = S_IFDIR | 0777;
                st->st_nlink = 2;
        } else if (ino == REQUESTS_INO) {
                st->st_mode = S_IFREG | 0444;
                st->st_nlink = 1;
        } else {
                struct node *n = node_of(ino);
                st->st_mode = S_IFREG | 0644;
                st->st_nlink = n->linked ? 1 : 0;
                st->st_size = (off_t)n->len;
                st->st_mtim = st->st_ctim = st->st_atim = n->mtime;
        }
}

/* Caller holds fs.mu: reply an entry for ino and count the lookup. */
static void reply_entry_locked(fuse_req_t req, fuse_ino_t ino) {
        struct fuse_entry_param e = {
                .ino = ino, .generation = 1,
                .attr_timeout = fs.timeout, .entry_timeout = fs.timeout,
        };
        fill_stat(ino, &e.attr);
        if (ino != FUSE_ROOT_ID && ino != REQUESTS_INO)
                node_of(ino)->nlookup++;
        fuse_reply_entry(req, &e);
}

/* ---- handlers ---------------------------------------------------------- */

static void op_init(void *userdata, struct fuse_conn_info *conn) {
        (void)userdata;
        if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
                conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
        conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
}

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name) {
        count(OP_LOOKUP);
        if (parent != FUSE_ROOT_ID) {
                fuse_reply_err(req, ENOENT);
                return;
        }
        pthread_mutex_lock(&fs.mu);
        struct node *n = find_locked(name);
        if (n) {
                reply_entry_locked(req, (fuse_ino_t)(uintptr_t)n);
        } else if (strcmp(name, REQUESTS_NAME) == 0) {
                reply_entry_locked(req, REQUESTS_INO);
        } else if (fs.timeout > 0) {
                /* a negative entry the kernel may cache for the timeout */
                struct fuse_entry_param e = { .ino = 0, .entry_timeout = fs.timeout };
                fuse_reply_entry(req, &e);
        } else {
                fuse_reply_err(req, ENOENT);
        }
        pthread_mutex_unlock(&fs.mu);
}

static void forget_one(fuse_ino_t ino, uint64_t nlookup) {
        if (ino == FUSE_ROOT_ID || ino == REQUESTS_INO)
                return;
        pthread_mutex_lock(&fs.mu);
        struct node *n = node_of(ino);
        n->nlookup -= nlookup < n->nlookup ? nlookup : n->nlookup;
        maybe_free_locked(n);
        pthread_mutex_unlock(&fs.mu);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup) {
        count(OP_FORGET);
        forget_one(ino, nlookup);
        fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t n, struct fuse_forget_data *forgets) {
        count(OP_FORGET);
        for (size_t i = 0; i < n; i++)
                forget_one(forgets[i].ino, forgets[i].nlookup);
        fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
        (void)fi;
        count(OP_GETATTR);
        struct stat st;
        pthread_mutex_lock(&fs.mu);
        fill_stat(ino, &st);
        pthread_mutex_unlock(&fs.mu);
        fuse_reply_attr(req, &st, fs.timeout);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                       struct fuse_file_info *fi) {
        (void)fi;
        count(OP_SETATTR);
        if (ino == REQUESTS_INO) {
                fuse_reply_err(req, EACCES);
                return;
        }
        struct stat st;
        pthread_mutex_lock(&fs.mu);
        if (ino != FUSE_ROOT_ID) {
                struct node *n = node_of(ino);
                if ((to_set & FUSE_SET_ATTR_SIZE) && (size_t)attr->st_size < n->len)
                        n->len = (size_t)attr->st_size;
                clock_gettime(CLOCK_REALTIME, &n->mtime);
        }
        fill_stat(ino, &st);
        pthread_mutex_unlock(&fs.mu);
        fuse_reply_attr(req, &st, fs.timeout);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                      struct fuse_file_info *fi) {
        (void)mode;
        count(OP_CREATE);
        size_t len = strlen(name);
        if (parent != FUSE_ROOT_ID || strcmp(name, REQUESTS_NAME) == 0) {
                fuse_reply_err(req, EACCES);
                return;
        }
        pthread_mutex_lock(&fs.mu);
        struct node *n = find_locked(name);
        if (n && (fi->flags & O_EXCL)) {
                pthread_mutex_unlock(&fs.mu);
                fuse_reply_err(req, EEXIST);
                return;
        }
        if (!n) {
                n = calloc(1, sizeof(*n) + len + 1);
                if (!n) {
                        pthread_mutex_unlock(&fs.mu);
                        fuse_reply_err(req, ENOMEM);
                        return;
                }
                memcpy(n->name, name, len + 1);
                clock_gettime(CLOCK_REALTIME, &n->mtime);
                size_t b = hash_name(name);
                n->next = fs.buckets[b];
                fs.buckets[b] = n;
                n->linked = true;
                fs.count++;
        }
        n->nlookup++;
        struct fuse_entry_param e = {
                .ino = (fuse_ino_t)(uintptr_t)n, .generation = 1,
                .attr_timeout = fs.timeout, .entry_timeout = fs.timeout,
        };
        fill_stat(e.ino, &e.attr);
        pthread_mutex_unlock(&fs.mu);
        fi->direct_io = 1;
        fi->noflush = fs.noflush;
        fuse_reply_create(req, &e, fi);
}

/* The .requests text, one Prometheus line per opcode. */
static struct snapshot *render_requests(void) {
        struct snapshot *s = calloc(1, sizeof(*s));
        FILE *f = s ? open_memstream(&s->buf, &s->len) : NULL;
        if (!f) {
                free(s);
                return NULL;
        }
        fprintf(f, "# TYPE nullfs_fuse_requests_total counter\n");
        for (int i = 0; i < OP_COUNT; i++)
                fprintf(f, "nullfs_fuse_requests_total{op=\"%s\"} %lu\n", op_names[i],
                        atomic_load(&fs.requests[i]));
        fclose(f);
        return s;
}

static void snapshot_free(struct snapshot *s) {
        if (s) {
                free(s->buf);
                free(s->ends);
        }
        free(s);
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
        count(OP_OPEN);
        fi->fh = 0;
        if (ino == REQUESTS_INO) {
                if ((fi->flags & O_ACCMODE) != O_RDONLY) {
                        fuse_reply_err(req, EACCES);
                        return;
                }
                struct snapshot *s = render_requests();
                if (!s) {
                        fuse_reply_err(req, ENOMEM);
                        return;
                }
                fi->fh = (uintptr_t)s;
        }
        fi->direct_io = 1;
        fi->noflush = fs.noflush;
        if (fuse_reply_open(req, fi) < 0)
                snapshot_free((struct snapshot *)(uintptr_t)fi->fh);
}

static void reply_slice(fuse_req_t req, const char *buf, size_t len, size_t size, off_t off) {
        if ((size_t)off >= len)
                fuse_reply_buf(req, NULL, 0);
        else
                fuse_reply_buf(req, buf + off, len - (size_t)off < size ? len - (size_t)off : size);
}

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi) {
        count(OP_READ);
        if (ino == REQUESTS_INO) {
                struct snapshot *s = (struct snapshot *)(uintptr_t)fi->fh;
                reply_slice(req, s->buf, s->len, size, off);
                return;
        }
        char buf[MAX_CONTENT];
        pthread_mutex_lock(&fs.mu);
        struct node *n = node_of(ino);
        size_t len = n->len;
        memcpy(buf, n->content, len);
        pthread_mutex_unlock(&fs.mu);
        reply_slice(req, buf, len, size, off);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
                     struct fuse_file_info *fi) {
        (void)fi;
        count(OP_WRITE);
        if (off < 0 || (size_t)off + size > MAX_CONTENT) {
                fuse_reply_err(req, EFBIG);
                return;
        }
        pthread_mutex_lock(&fs.mu);
        struct node *n = node_of(ino);
        memcpy(n->content + off, buf, size);
        if ((size_t)off + size > n->len)
                n->len = (size_t)off + size;
        clock_gettime(CLOCK_REALTIME, &n->mtime);
        pthread_mutex_unlock(&fs.mu);
        fuse_reply_write(req, size);
}

static void op_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
        (void)ino;
        (void)fi;
        count(OP_FLUSH);
        fuse_reply_err(req, 0);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
        (void)ino;
        count(OP_RELEASE);
        snapshot_free((struct snapshot *)(uintptr_t)fi->fh);
        fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi) {
        (void)ino;
        (void)datasync;
        (void)fi;
        count(OP_FSYNC);
        fuse_reply_err(req, 0);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name) {
        count(OP_UNLINK);
        if (parent != FUSE_ROOT_ID || strcmp(name, REQUESTS_NAME) == 0) {
                fuse_reply_err(req, parent != FUSE_ROOT_ID ? ENOENT : EACCES);
                return;
        }
        pthread_mutex_lock(&fs.mu);
        struct node *n = find_locked(name);
        if (n) {
                unlink_locked(n);
                maybe_free_locked(n);
        }
        pthread_mutex_unlock(&fs.mu);
        fuse_reply_err(req, n ? 0 : ENOENT);
}

/* Append one entry to a listing in the buffer format fuse_add_direntry
 * writes (each entry's offset is where the next one starts). */
static int add_dirent(fuse_req_t req, struct snapshot *s, const char *name, fuse_ino_t ino,
                      mode_t mode) {
        struct stat st = { .st_ino = (ino_t)ino, .st_mode = mode };
        size_t need = fuse_add_direntry(req, NULL, 0, name, NULL, 0);
        if (s->n == s->cap) {
                size_t cap = s->cap ? s->cap * 2 : 64;
                char *nb = realloc(s->buf, cap * MAX_DIRENT);
                size_t *ne = realloc(s->ends, cap * sizeof(*ne));
                if (nb)
                        s->buf = nb;
                if (ne)
                        s->ends = ne;
                if (!nb || !ne)
                        return -ENOMEM;
                s->cap = cap;
        }
        fuse_add_direntry(req, s->buf + s->len, need, name, &st, (off_t)(s->len + need));
        s->len += need;
        s->ends[s->n++] = s->len;
        return 0;
}

/* The root's listing, rendered at opendir so readdir only slices it. */
static struct snapshot *render_dir(fuse_req_t req) {
        struct snapshot *s = calloc(1, sizeof(*s));
        if (!s)
                return NULL;
        int r = add_dirent(req, s, ".", FUSE_ROOT_ID, S_IFDIR);
        if (r == 0)
                r = add_dirent(req, s, "..", FUSE_ROOT_ID, S_IFDIR);
        pthread_mutex_lock(&fs.mu);
        for (size_t b = 0; r == 0 && b < HTAB_SIZE; b++)
                for (struct node *n = fs.buckets[b]; r == 0 && n; n = n->next)
                        r = add_dirent(req, s, n->name, (fuse_ino_t)(uintptr_t)n, S_IFREG);
        pthread_mutex_unlock(&fs.mu);
        if (r < 0) {
                snapshot_free(s);
                return NULL;
        }
        return s;
}

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
        count(OP_OPENDIR);
        if (ino != FUSE_ROOT_ID) {
                fuse_reply_err(req, ENOTDIR);
                return;
        }
        struct snapshot *s = render_dir(req);
        if (!s) {
                fuse_reply_err(req, ENOMEM);
                return;
        }
        fi->fh = (uintptr_t)s;
        if (fuse_reply_open(req, fi) < 0)
                snapshot_free(s);
}

/* Whole entries only, from offset off (an entry boundary) on. */
static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                       struct fuse_file_info *fi) {
        (void)ino;
        count(OP_READDIR);
        const struct snapshot *s = (const struct snapshot *)(uintptr_t)fi->fh;
        size_t start = (size_t)off, end = start, i = 0;
        while (i < s->n && s->ends[i] <= start)
                i++;
        for (; i < s->n && s->ends[i] - start <= size; i++)
                end = s->ends[i];
        fuse_reply_buf(req, end > start ? s->buf + start : NULL, end - start);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi) {
        (void)ino;
        count(OP_RELEASEDIR);
        snapshot_free((struct snapshot *)(uintptr_t)fi->fh);
        fuse_reply_err(req, 0);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino) {
        (void)ino;
        count(OP_STATFS);
        struct statvfs sv = { .f_bsize = 4096, .f_namemax = 255, .f_files = 1000000 };
        fuse_reply_statfs(req, &sv);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size) {
        (void)ino;
        (void)name;
        (void)size;
        count(OP_GETXATTR);
        fuse_reply_err(req, ENODATA);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
        (void)ino;
        count(OP_LISTXATTR);
        if (size == 0)
                fuse_reply_xattr(req, 0);
        else
                fuse_reply_buf(req, NULL, 0);
}

static void op_access(fuse_req_t req, fuse_ino_t ino, int mask) {
        (void)ino;
        (void)mask;
        count(OP_ACCESS);
        fuse_reply_err(req, 0);
}

static const struct fuse_lowlevel_ops nullfs_ops = {
        .init = op_init,
        .lookup = op_lookup,
        .forget = op_forget,
        .forget_multi = op_forget_multi,
        .getattr = op_getattr,
        .setattr = op_setattr,
        .create = op_create,
        .open = op_open,
        .read = op_read,
        .write = op_write,
        .flush = op_flush,
        .release = op_release,
        .fsync = op_fsync,
        .unlink = op_unlink,
        .opendir = op_opendir,
        .readdir = op_readdir,
        .releasedir = op_releasedir,
        .statfs = op_statfs,
        .getxattr = op_getxattr,
        .listxattr = op_listxattr,
        .access = op_access,
};

/* ---- main -------------------------------------------------------------- */

static void print_counts(void) {
        for (int i = 0; i < OP_COUNT; i++)
                fprintf(stderr, "nullfs_fuse_requests_total{op=\"%s\"} %lu\n", op_names[i],
                        atomic_load(&fs.requests[i]));
}

static int usage(const char *argv0) {
        fprintf(stderr, "usage: %s [-f] [--timeout=SECONDS] [--noflush] MOUNTPOINT\n", argv0);
        return 2;
}

/* Parse our own arguments; returns the mount point or NULL. */
static const char *parse_args(int argc, char **argv, bool *foreground) {
        const char *mnt = NULL;
        for (int i = 1; i < argc; i++) {
                char *end;
                if (strcmp(argv[i], "-f") == 0) {
                        *foreground = true;
                } else if (strcmp(argv[i], "--noflush") == 0) {
                        fs.noflush = true;
                } else if (strncmp(argv[i], "--timeout=", 10) == 0) {
                        fs.timeout = strtod(argv[i] + 10, &end);
                        if (*end || fs.timeout < 0)
                                return NULL;
                } else if (argv[i][0] != '-' && !mnt) {
                        mnt = argv[i];
                } else {
                        return NULL;
                }
        }
        return mnt;
}

int main(int argc, char **argv) {
        bool foreground = false;
        const char *mnt = parse_args(argc, argv, &foreground);
        if (!mnt)
                return usage(argv[0]);
        char *fargv[] = { argv[0], "-o", "fsname=nullfs,subtype=nullfs,nosuid,nodev,noexec", NULL };
        struct fuse_args args = FUSE_ARGS_INIT(3, fargv);
        int ret = 1;
        struct fuse_session *se = fuse_session_new(&args, &nullfs_ops, sizeof(nullfs_ops), NULL);
        if (!se)
                return 1;
        if (fuse_set_signal_handlers(se) < 0)
                goto destroy;
        if (fuse_session_mount(se, mnt) < 0)
                goto signals;
        if (fuse_daemonize(foreground) < 0)
                goto unmount;
        struct fuse_loop_config *loop = fuse_loop_cfg_create();
        if (!loop)
                goto unmount;
        fuse_loop_cfg_set_clone_fd(loop, 0);
        fuse_loop_cfg_set_idle_threads(loop, 10);
        ret = fuse_session_loop_mt(se, loop) < 0 ? 1 : 0;
        fuse_loop_cfg_destroy(loop);
        print_counts();
unmount:
        fuse_session_unmount(se);
signals:
        fuse_remove_signal_handlers(se);
destroy:
        fuse_session_destroy(se);
        return ret;
}
