/* SPDX-License-Identifier: MIT */
/* Fence numbers that never go backwards, across daemon restarts and
 * reboots: a small file on persistent disk records the end of the block of
 * fences handed out so far; a new block is reserved (one fsync of the file
 * and one of its directory) before the first fence of it is issued. A
 * restart continues at the recorded end, so some numbers are skipped,
 * never repeated. */
#ifndef LOCKFS_FENCEFILE_H
#define LOCKFS_FENCEFILE_H

#include <stdint.h>

#define FENCE_BLOCK 4096

struct fence_file {
        char *path;
        uint64_t next;           /* the next fence to issue */
        uint64_t end;            /* first fence not reserved yet */
};

/* Open (or create, with its directory) the fence file at path; the first
 * fence issued will be at least at_least (above every fence a journal
 * recorded). 0, -EBADMSG when the file exists but is not a fence file (it
 * is left alone: a reset could reissue fences), or another -errno. */
int fence_file_open(const char *path, uint64_t at_least, struct fence_file *ret);
/* Issue the next fence into *ret, reserving a new block when the current
 * one is used up. 0 or -errno (nothing issued). */
int fence_file_next(struct fence_file *f, uint64_t *ret);
/* Free f's memory (the file stays). */
void fence_file_close(struct fence_file *f);

#endif
