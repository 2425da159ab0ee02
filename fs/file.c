/* SPDX-License-Identifier: MIT */
/* Open files of the FUSE adapter: lifetime, the lock handle they carry and
 * the snapshot they serve. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "file.h"
#include "metrics.h"
#include "status.h"
#include "status_stream.h"

struct file *file_new(struct lockfs_ctx *ctx, enum file_type type) {
        struct file *f = calloc(1, sizeof(*f));
        if (!f)
                return NULL;
        atomic_init(&f->refs, 1);
        atomic_init(&f->record_locked, false);
        f->type = type;
        f->ctx = ctx;
        f->id = atomic_fetch_add(&ctx->next_file_id, 1) + 1;
        pthread_mutex_init(&f->mu, NULL);
        pthread_mutex_lock(&ctx->files_mu);
        list_add(&ctx->files, &f->link);
        pthread_mutex_unlock(&ctx->files_mu);
        return f;
}

static void file_free(struct file *f) {
        pthread_mutex_destroy(&f->mu);
        status_budget_release(f->ctx->budget, f->uid, f->charged);
        status_stream_free(f->stream);
        free(f->buf);
        lt_dirents_free(f->ents, f->n_ents);
        free(f);
}

void file_put(struct file *f) {
        if (!f || atomic_fetch_sub(&f->refs, 1) > 1)
                return;
        struct lockfs_ctx *ctx = f->ctx;
        pthread_mutex_lock(&ctx->files_mu);
        list_del(&f->link);
        pthread_mutex_unlock(&ctx->files_mu);
        file_free(f);
}

void fs_files_free_all(struct lockfs_ctx *ctx) {
        struct list *pos, *tmp;
        list_for_each_safe(pos, tmp, &ctx->files) {
                list_del(pos);
                file_free(list_entry(pos, struct file, link));
        }
}

int file_set_buf(struct file *f, char *buf, size_t len) {
        if (!buf)
                return -ENOMEM;
        int r = status_budget_charge(f->ctx->budget, f->uid, len);
        if (r < 0) {
                free(buf);
                return r;
        }
        f->buf = buf;
        f->len = f->charged = len;
        return 0;
}

void file_get(struct file *f) {
        atomic_fetch_add(&f->refs, 1);
}

struct lt_handle file_handle(struct file *f) {
        pthread_mutex_lock(&f->mu);
        struct lt_handle h = f->lock;
        pthread_mutex_unlock(&f->mu);
        return h;
}

void file_set_handle(struct file *f, const struct lt_handle *h) {
        pthread_mutex_lock(&f->mu);
        f->lock = *h;
        pthread_mutex_unlock(&f->mu);
}

/* ---- the snapshot ---------------------------------------------------------- */

/* The status of the lock f refers to, or for a raw lock (SPEC R4.4a) the
 * bytes its holder wrote. Call with f->mu held. */
static int render_lock(struct file *f) {
        struct lockfs_ctx *ctx = f->ctx;
        struct lock_view v;
        int r = locktable_view(ctx->table, f->lock.ino, &v);
        if (r < 0)
                return r;
        size_t len = 0;
        char *buf;
        if (v.raw) {
                len = v.content_len;
                buf = malloc(len ? len : 1);
                if (buf && len)
                        memcpy(buf, v.content, len);
        } else {
                buf = status_render(&v, clock_wall_ms(), ctx->host, &len);
        }
        f->raw = v.raw;
        lock_view_clear(&v);
        return file_set_buf(f, buf, len);
}

/* .lockfs/metrics: the table's counters and the FUSE request counts. */
static char *render_metrics(struct lockfs_ctx *ctx, size_t *ret_len) {
        struct metrics_sample requests[FS_OP_COUNT];
        for (int op = 0; op < FS_OP_COUNT; op++)
                requests[op] = (struct metrics_sample){
                        .name = fs_op_name((enum fs_op)op),
                        .count = atomic_load(&ctx->requests[op]),
                };
        struct lock_metrics m;
        locktable_metrics(ctx->table, &m);
        return metrics_render(&m, requests, FS_OP_COUNT, ret_len);
}

/* metrics: its snapshot; locks.json: its stream (a cursor, nothing
 * rendered yet). Call with f->mu held. */
static int render_meta(struct file *f, uint64_t ino) {
        struct lockfs_ctx *ctx = f->ctx;
        if (locktable_meta_file(ino) == LT_META_METRICS) {
                size_t len = 0;
                char *buf = render_metrics(ctx, &len);
                return file_set_buf(f, buf, len);
        }
        return status_stream_new(ctx->table, ctx->budget, f->uid, ctx->host, &f->stream);
}

int file_refresh_raw(struct file *f, uint64_t ino) {
        pthread_mutex_lock(&f->mu);
        if (f->type == FILE_LOCK && f->rendered && f->raw) {
                status_budget_release(f->ctx->budget, f->uid, f->charged);
                free(f->buf);
                f->buf = NULL;
                f->len = f->charged = 0;
                f->rendered = false;
        }
        pthread_mutex_unlock(&f->mu);
        return file_render(f, ino);
}

bool file_raw_size(struct file *f, size_t *ret) {
        pthread_mutex_lock(&f->mu);
        bool raw = f->type == FILE_LOCK && f->rendered && f->raw;
        if (raw)
                *ret = f->len;
        pthread_mutex_unlock(&f->mu);
        return raw;
}

int file_render(struct file *f, uint64_t ino) {
        int r = 0;
        pthread_mutex_lock(&f->mu);
        if (!f->rendered) {
                r = f->type == FILE_META ? render_meta(f, ino) : render_lock(f);
                if (r == -ENOENT)
                        r = 0; /* released just now: an open before the release, reads empty */
                f->rendered = r == 0;
        }
        pthread_mutex_unlock(&f->mu);
        return r;
}
