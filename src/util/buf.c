/* SPDX-License-Identifier: MIT */
/* The growable byte buffer and array growth (buf.h). */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"

int array_grow(void *items, size_t *cap, size_t need, size_t size, size_t first) {
        void **p = items;
        size_t n = *cap ? *cap : first;

        if (need <= *cap)
                return 0;
        while (n < need) {
                if (n > SIZE_MAX / 2)
                        return -ENOMEM;
                n *= 2;
        }
        if (n > SIZE_MAX / size)
                return -ENOMEM;
        void *grown = realloc(*p, n * size);
        if (!grown)
                return -ENOMEM;
        *p = grown;
        *cap = n;
        return 0;
}

int buf_reserve(struct buf *b, size_t more) {
        if (more > SIZE_MAX - b->len - 1)
                return -ENOMEM;
        return array_grow(&b->data, &b->cap, b->len + more + 1, 1, 256);
}

int buf_put(struct buf *b, const void *p, size_t n) {
        int r = buf_reserve(b, n);

        if (r < 0)
                return r;
        if (n)
                memcpy(b->data + b->len, p, n);
        b->len += n;
        b->data[b->len] = '\0';
        return 0;
}

int buf_puts(struct buf *b, const char *s) {
        return buf_put(b, s, strlen(s));
}

int buf_printf(struct buf *b, const char *fmt, ...) {
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(NULL, 0, fmt, ap);
        va_end(ap);
        if (n < 0)
                return -EINVAL;
        int r = buf_reserve(b, (size_t)n);
        if (r < 0)
                return r;
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
        b->len += (size_t)n;
        return 0;
}

char *buf_steal(struct buf *b) {
        char *p = b->data;

        *b = (struct buf){ 0 };
        return p;
}

void buf_free(struct buf *b) {
        free(b->data);
        *b = (struct buf){ 0 };
}
