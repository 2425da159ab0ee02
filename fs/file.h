/* SPDX-License-Identifier: MIT */
/* Open files of the FUSE adapter (what fi->fh points to): refcounted, listed
 * per mount so that files the kernel never released are freed at unmount,
 * and the snapshot each serves to its reads. */
#ifndef LOCKFS_FILE_H
#define LOCKFS_FILE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <sys/types.h>

#include "fs.h"
#include "list.h"

enum file_type { FILE_LOCK, FILE_META, FILE_DIR };

struct file {
        atomic_int refs;         /* RELEASE's, plus one per request still using it */
        struct lockfs_ctx *ctx;
        struct list link;        /* on ctx->files (every open file), under ctx->files_mu */
        enum file_type type;
        /* Names this open file description as a flock owner. Unique for the
         * daemon's life: the kernel's lock_owner hashes a struct file
         * pointer, which a new open may reuse while the old file's
         * asynchronous RELEASE is still on its way. */
        uint64_t id;
        pid_t opener_tid;        /* thread that opened it (0 = unknown) */
        atomic_bool record_locked; /* a record lock was asked through it: its
                                  * RELEASE may end one (fs/flock.c) */
        pthread_mutex_t mu;      /* guards lock (a flock grant changes it) and rendering */
        struct lt_handle lock;   /* FILE_LOCK: read with file_handle() */
        bool rendered;
        bool raw;                /* FILE_LOCK: buf is the content (SPEC R4.4a) */
        char *buf;               /* FILE_LOCK, metrics: the snapshot */
        size_t len;
        uid_t uid;               /* the opener's: buf and stream are charged to it */
        size_t charged;          /* bytes of buf counted in ctx->budget */
        struct status_stream *stream; /* locks.json: rendered as it is read */
        struct lt_dirent *ents;  /* FILE_DIR */
        size_t n_ents;
};

static inline struct file *file_of(const struct fuse_file_info *fi) {
        return fi ? (struct file *)(uintptr_t)fi->fh : NULL;
}

/* A new open file of type, listed in ctx, one reference; NULL when out of
 * memory. */
struct file *file_new(struct lockfs_ctx *ctx, enum file_type type);
/* Make buf (malloc'd, len bytes; NULL: out of memory) f's snapshot,
 * charged to f->uid: 0, or -ENOMEM (past the budget; buf is freed). */
int file_set_buf(struct file *f, char *buf, size_t len);
/* Take one more reference. */
void file_get(struct file *f);
/* Drop one reference; the last unlists and frees f. NULL is a no-op. */
void file_put(struct file *f);
/* f's lock handle now / replace it (a flock grant). */
struct lt_handle file_handle(struct file *f);
void file_set_handle(struct file *f, const struct lt_handle *h);

/* Give f the snapshot its reads serve, unless it has one (f->rendered):
 * a lock file (FILE_LOCK) the status of the lock f->lock refers to (after
 * a flock onto a re-taken name, not necessarily inode ino); .lockfs/metrics
 * the counters; .lockfs/locks.json a stream, rendered as it is read. A
 * lock released since the open reads as empty. Takes f->mu. Returns 0,
 * -ENOMEM (out of memory, or past the opener's status budget) or another
 * -errno of the table. */
int file_render(struct file *f, uint64_t ino);
/* file_render, taking a raw lock's snapshot (SPEC R4.4a) anew: its
 * content now, as a read from its start through a file that wrote it
 * expects. Takes f->mu. */
int file_refresh_raw(struct file *f, uint64_t ino);
/* True when f is a raw lock's open file (SPEC R4.4a) already rendered;
 * *ret is then what its reads serve in all. Takes f->mu. */
bool file_raw_size(struct file *f, size_t *ret);

#endif
