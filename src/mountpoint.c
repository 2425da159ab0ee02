/* SPDX-License-Identifier: MIT */
/* Preparing the mount point: canonical path, mount id, dead mounts, the
 * immutable bare directory. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdbool.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "mountpoint.h"

#define FUSE_SUPER_MAGIC 0x65735546

int mountpoint_canonical(const char *mountpoint, char **ret) {
        char *a = strdup(mountpoint), *b = strdup(mountpoint);
        char *dir = NULL;
        int r = -ENOMEM;
        if (!a || !b)
                goto out;
        const char *base = basename(b);
        if (strcmp(base, "/") == 0 || strcmp(base, ".") == 0 || strcmp(base, "..") == 0) {
                dir = realpath(mountpoint, NULL); /* the root or a relative dot: no mount on the parent */
                r = dir ? 0 : -errno;
                if (r == 0) {
                        *ret = dir;
                        dir = NULL;
                }
                goto out;
        }
        dir = realpath(dirname(a), NULL);
        if (!dir) {
                r = -errno;
                goto out;
        }
        r = asprintf(ret, "%s/%s", strcmp(dir, "/") == 0 ? "" : dir, base) < 0 ? -ENOMEM : 0;
out:
        free(a);
        free(b);
        free(dir);
        return r;
}

int mountpoint_id(const char *canonical, char **ret) {
        const char *p = canonical;
        while (*p == '/')
                p++;
        size_t len = strlen(p);
        char *out = malloc(4 * len + 2), *o = out;
        if (!out)
                return -ENOMEM;
        if (!*p)
                *o++ = '-';
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char)p[i];
                bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                             (c >= '0' && c <= '9') || c == '_' || c == ':' ||
                             (c == '.' && i > 0);
                if (c == '/' && i + 1 < len)
                        *o++ = '-';
                else if (c == '/')
                        ; /* a trailing slash */
                else if (plain)
                        *o++ = (char)c;
                else
                        o += sprintf(o, "\\x%02x", c);
        }
        *o = '\0';
        *ret = out;
        return 0;
}

int mountpoint_clear_dead(const char *path) {
        struct statfs sf;
        if (statfs(path, &sf) == 0)
                return sf.f_type == FUSE_SUPER_MAGIC ? -EBUSY : 0;
        if (errno != ENOTCONN)
                return -errno;
        if (umount2(path, MNT_DETACH) < 0)
                return -errno;
        return 1;
}

int mountpoint_make_immutable(const char *path) {
        int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        int flags = 0, r = 0;
        if (ioctl(fd, FS_IOC_GETFLAGS, &flags) < 0) {
                r = -errno;
        } else if (!(flags & FS_IMMUTABLE_FL)) {
                flags |= FS_IMMUTABLE_FL;
                if (ioctl(fd, FS_IOC_SETFLAGS, &flags) < 0)
                        r = -errno;
        }
        close(fd);
        return r;
}
