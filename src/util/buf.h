/* SPDX-License-Identifier: MIT */
/* A growable byte buffer, and the one growth rule for arrays. */
#ifndef LOCKFS_BUF_H
#define LOCKFS_BUF_H

#include <stddef.h>

/* Bytes data[0..len) of cap allocated; { 0 } is an empty buffer. While
 * len > 0 after buf_put/buf_puts, data[len] is a NUL (not counted), so the
 * contents can be used as a C string. */
struct buf {
        char *data;
        size_t len, cap;
};

/* Make room for `more` bytes past len plus a terminating NUL. Returns 0,
 * or -ENOMEM (nothing changed; also when the size would overflow). */
int buf_reserve(struct buf *b, size_t more);
/* Append n bytes of p. Returns 0 or -ENOMEM (b unchanged). */
int buf_put(struct buf *b, const void *p, size_t n);
/* Append the C string s. */
int buf_puts(struct buf *b, const char *s);
/* Append printf-style text. Returns 0, -ENOMEM, or -EINVAL for a bad
 * format. */
int buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Give the contents to the caller (NULL when nothing was ever put) and
 * leave b empty. */
char *buf_steal(struct buf *b);
/* Free the contents; b is empty after. */
void buf_free(struct buf *b);

/* Grow the array *items (of *cap elements of size `size`) so it holds at
 * least `need` elements: doubling, from `first` elements. Returns 0, or
 * -ENOMEM with the array untouched. */
int array_grow(void *items, size_t *cap, size_t need, size_t size, size_t first);

#endif
