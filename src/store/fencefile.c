/* SPDX-License-Identifier: MIT */
/* The fence reservation file: one line "lockfs-fences <end>\n", replaced
 * atomically (write to a temporary file, fsync, rename, fsync the
 * directory), so a crash at any point leaves the old or the new end. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fencefile.h"
#include "fsutil.h"

#define PREFIX "lockfs-fences "

/* mkdir -p of the directory holding path. */
static int parent_dirs(const char *path) {
        char *copy = strdup(path);
        if (!copy)
                return -ENOMEM;
        int r = fs_mkdir_p(dirname(copy), 0755);
        free(copy);
        return r;
}

/* Read the recorded end; -ENOENT when there is no file. */
static int read_end(const char *path, uint64_t *ret) {
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        char buf[64];
        ssize_t n = read(fd, buf, sizeof(buf) - 1);
        int err = n < 0 ? -errno : 0;
        close(fd);
        if (err)
                return err;
        buf[n] = '\0';
        char *end;
        if (strncmp(buf, PREFIX, strlen(PREFIX)) != 0)
                return -EBADMSG;
        const char *num = buf + strlen(PREFIX);
        errno = 0;
        unsigned long long v = strtoull(num, &end, 10);
        if (errno || end == num || *num < '0' || *num > '9' || strcmp(end, "\n") != 0 || v == 0)
                return -EBADMSG;
        *ret = v;
        return 0;
}

static int fsync_dir_of(const char *path) {
        char *copy = strdup(path);
        if (!copy)
                return -ENOMEM;
        int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        free(copy);
        if (fd < 0)
                return -errno;
        int r = fsync(fd) < 0 ? -errno : 0;
        close(fd);
        return r;
}

/* Durably record end as the file's content. */
static int write_end(const char *path, uint64_t end) {
        char tmp[4096];
        if ((size_t)snprintf(tmp, sizeof(tmp), "%s.new", path) >= sizeof(tmp))
                return -ENAMETOOLONG;
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        char line[64];
        int len = snprintf(line, sizeof(line), PREFIX "%" PRIu64 "\n", end);
        int r = fs_write_all(fd, line, (size_t)len);
        if (!r && fsync(fd) < 0)
                r = -errno;
        if (close(fd) < 0 && !r)
                r = -errno;
        if (!r && rename(tmp, path) < 0)
                r = -errno;
        if (r) {
                unlink(tmp);
                return r;
        }
        return fsync_dir_of(path);
}

static int reserve(struct fence_file *f) {
        if (f->next > UINT64_MAX - FENCE_BLOCK)
                return -EOVERFLOW;
        int r = write_end(f->path, f->next + FENCE_BLOCK);
        if (r == 0)
                f->end = f->next + FENCE_BLOCK;
        return r;
}

int fence_file_open(const char *path, uint64_t at_least, struct fence_file *ret) {
        *ret = (struct fence_file){ 0 };
        uint64_t end = 1;
        int r = read_end(path, &end);
        if (r == -ENOENT)
                r = parent_dirs(path);
        if (r < 0)
                return r;
        ret->path = strdup(path);
        if (!ret->path)
                return -ENOMEM;
        ret->next = end > at_least ? end : at_least;
        if (ret->next == 0)
                ret->next = 1;
        r = reserve(ret);
        if (r < 0)
                fence_file_close(ret);
        return r;
}

int fence_file_next(struct fence_file *f, uint64_t *ret) {
        if (f->next == f->end) {
                int r = reserve(f);
                if (r < 0)
                        return r;
        }
        *ret = f->next++;
        return 0;
}

void fence_file_close(struct fence_file *f) {
        free(f->path);
        f->path = NULL;
}
