/* SPDX-License-Identifier: MIT */
/* Open files of the FUSE adapter: lifetime and the lock handle they carry. */
#include <errno.h>
#include <stdlib.h>

#include "file.h"
#include "status_stream.h"

struct file *file_new(struct lockfs_ctx *ctx, enum file_type type) {
        struct file *f = calloc(1, sizeof(*f));
        if (!f)
                return NULL;
        atomic_init(&f->refs, 1);
        f->type = type;
        f->ctx = ctx;
        f->id = atomic_fetch_add(&ctx->next_file_id, 1) + 1;
        pthread_mutex_init(&f->mu, NULL);
        pthread_mutex_lock(&ctx->files_mu);
        f->next = ctx->files;
        if (f->next)
                f->next->prev = f;
        ctx->files = f;
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
        if (f->prev)
                f->prev->next = f->next;
        else
                ctx->files = f->next;
        if (f->next)
                f->next->prev = f->prev;
        pthread_mutex_unlock(&ctx->files_mu);
        file_free(f);
}

void fs_files_free_all(struct lockfs_ctx *ctx) {
        while (ctx->files) {
                struct file *f = ctx->files;
                ctx->files = f->next;
                file_free(f);
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
