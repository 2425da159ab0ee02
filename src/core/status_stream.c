/* SPDX-License-Identifier: MIT */
/* .lockfs/locks.json rendered as it is read (see status_stream.h). Each
 * step peeks a batch of locks from the table's cursor (the only time the
 * table mutex is held), renders it outside the mutex, charges the text to
 * the opener's budget and only then commits the batch: when the charge
 * fails, the cursor has not moved and the same read can be tried again. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "status.h"
#include "status_stream.h"

struct status_stream {
        struct locktable *t;
        struct status_budget *budget;
        uid_t uid;
        const char *host;
        struct lt_cursor *cursor;
        bool opened;             /* "[" is rendered */
        bool any;                /* a lock is rendered: the next comes after ",\n" */
        bool closed;             /* "]\n" is rendered: the document is complete */
        char *buf;               /* rendered: bytes [off, off + len) of the document */
        size_t len;              /* also what buf holds charged (its exact size) */
        size_t pos;              /* buf[pos] is the last read's first byte */
        uint64_t off;
};

int status_stream_new(struct locktable *t, struct status_budget *b, uid_t uid, const char *host,
                      struct status_stream **ret) {
        struct status_stream *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        int r = locktable_cursor_new(t, &s->cursor);
        if (r < 0) {
                free(s);
                return r;
        }
        s->t = t;
        s->budget = b;
        s->uid = uid;
        s->host = host;
        *ret = s;
        return 0;
}

void status_stream_free(struct status_stream *s) {
        if (!s)
                return;
        locktable_cursor_free(s->t, s->cursor);
        status_budget_release(s->budget, s->uid, s->len);
        free(s->buf);
        free(s);
}

/* A read starts at off: the bytes before it are done with. They are
 * given back once they are at least half of buf (so each byte is moved at
 * most once on average, whatever the read size). */
static void read_from(struct status_stream *s, uint64_t off) {
        s->pos = (size_t)(off - s->off);
        if (s->pos == 0 || (s->pos < s->len && s->pos < s->len / 2))
                return;
        size_t n = s->pos;
        memmove(s->buf, s->buf + n, s->len - n);
        s->len -= n;
        s->off = off;
        s->pos = 0;
        status_budget_release(s->budget, s->uid, n);
        if (s->len == 0) {
                free(s->buf);
                s->buf = NULL;
        } else {
                char *p = realloc(s->buf, s->len);
                if (p)
                        s->buf = p; /* else the old, larger block stays: harmless */
        }
}

/* Append text[0..n), charged. */
static int append(struct status_stream *s, const char *text, size_t n) {
        if (n == 0)
                return 0;
        int r = status_budget_charge(s->budget, s->uid, n);
        if (r < 0)
                return r;
        char *p = realloc(s->buf, s->len + n);
        if (!p) {
                status_budget_release(s->budget, s->uid, n);
                return -ENOMEM;
        }
        memcpy(p + s->len, text, n);
        s->buf = p;
        s->len += n;
        return 0;
}

/* Render the next batch at the end of buf. */
static int step(struct status_stream *s) {
        struct lock_view *v = calloc(STATUS_STREAM_BATCH, sizeof(*v));
        if (!v)
                return -ENOMEM;
        size_t n = 0, len = 0;
        uint64_t seq = 0;
        int r = locktable_cursor_peek(s->t, s->cursor, v, STATUS_STREAM_BATCH,
                                      STATUS_STREAM_BATCH_BYTES, &n, &seq);
        if (r < 0) {
                free(v);
                return r;
        }
        bool end = r == 1;
        char *text = status_render_piece(v, n, !s->opened, !s->any, end, clock_wall_ms(),
                                         s->host, &len);
        lock_views_free(v, n);
        r = text ? append(s, text, len) : -ENOMEM;
        free(text);
        if (r < 0)
                return r; /* not committed: the next read renders these again */
        if (n > 0)
                locktable_cursor_commit(s->t, s->cursor, seq);
        s->opened = true;
        s->any = s->any || n > 0;
        s->closed = end;
        return 0;
}

int status_stream_read(struct status_stream *s, uint64_t off, size_t size, const char **ret,
                       size_t *ret_len) {
        if (off < s->off + s->pos || off - s->off > s->len)
                return -ESPIPE;
        read_from(s, off);
        int r = 0;
        while (s->len - s->pos < size && !s->closed && (r = step(s)) == 0)
                ;
        size_t avail = s->len - s->pos;
        if (r < 0 && avail == 0)
                return r;
        *ret = s->buf ? s->buf + s->pos : NULL;
        *ret_len = avail < size ? avail : size;
        return 0;
}
