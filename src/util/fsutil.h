/* SPDX-License-Identifier: MIT */
/* Small file-system steps (fsutil.c): write a whole buffer, read a whole
 * file, make a directory and its parents. */
#ifndef LOCKFS_FSUTIL_H
#define LOCKFS_FSUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Write the len bytes at buf to fd, going on after short writes and
 * EINTR: 0, or -errno (-EIO for a write that wrote nothing). */
int fs_write_all(int fd, const void *buf, size_t len);
/* Read the file at path whole: a malloc'd buffer in *ret (never NULL on
 * success, even for an empty file) and its size in *ret_len (less than
 * the size it had when opened if it shrank meanwhile). 0, or -errno with
 * *ret NULL and *ret_len 0. */
int fs_read_file(const char *path, uint8_t **ret, size_t *ret_len);
/* mkdir -p dir: each missing directory on the way is made 0755 and dir
 * itself mode (before the umask); one that exists (as anything) counts as
 * made. 0, or -errno of the first mkdir that failed (-ENOENT for ""). */
int fs_mkdir_p(const char *dir, mode_t mode);

#endif
