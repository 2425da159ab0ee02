/* SPDX-License-Identifier: MIT */
/* The file-system steps of fsutil.h. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fsutil.h"

int fs_write_all(int fd, const void *buf, size_t len) {
        const uint8_t *p = buf;
        while (len) {
                ssize_t n = write(fd, p, len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return n < 0 ? -errno : -EIO;
                p += n;
                len -= (size_t)n;
        }
        return 0;
}

/* Read up to len bytes of fd into buf: how many came (fewer at the end of
 * the file) in *got. 0 or -errno. */
static int read_up_to(int fd, uint8_t *buf, size_t len, size_t *got) {
        *got = 0;
        while (*got < len) {
                ssize_t n = read(fd, buf + *got, len - *got);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break; /* shrank meanwhile */
                *got += (size_t)n;
        }
        return 0;
}

int fs_read_file(const char *path, uint8_t **ret, size_t *ret_len) {
        *ret = NULL;
        *ret_len = 0;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        struct stat st;
        int r = fstat(fd, &st) < 0 ? -errno : 0;
        size_t len = r == 0 ? (size_t)st.st_size : 0, got = 0;
        uint8_t *buf = r == 0 ? malloc(len ? len : 1) : NULL;
        if (r == 0 && !buf)
                r = -ENOMEM;
        if (r == 0)
                r = read_up_to(fd, buf, len, &got);
        close(fd);
        if (r < 0) {
                free(buf);
                return r;
        }
        *ret = buf;
        *ret_len = got;
        return 0;
}

int fs_mkdir_p(const char *dir, mode_t mode) {
        if (!*dir)
                return -ENOENT;
        char *copy = strdup(dir);
        if (!copy)
                return -ENOMEM;
        int r = 0;
        for (char *p = copy + 1;; p++) {
                if (*p != '/' && *p != '\0')
                        continue;
                char c = *p;
                *p = '\0';
                if (mkdir(copy, c ? 0755 : mode) < 0 && errno != EEXIST)
                        r = -errno;
                *p = c;
                if (!c || r)
                        break;
        }
        free(copy);
        return r;
}
