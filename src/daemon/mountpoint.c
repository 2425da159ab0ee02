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
#include <poll.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "mountpoint.h"
#include "procfs.h"

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

/* Undo mountinfo's octal escapes (\040 for a space) in place. */
static void unescape_octal(char *s) {
        char *o = s;
        for (; *s; s++) {
                if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
                    s[3] >= '0' && s[3] <= '7') {
                        *o++ = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
                        s += 3;
                } else {
                        *o++ = *s;
                }
        }
        *o = '\0';
}

/* True when something is mounted on path (from /proc/self/mountinfo, which
 * never asks the mounted file system, so a hung mount cannot hang us). */
static bool is_mounted_on(const char *path) {
        FILE *f = fopen("/proc/self/mountinfo", "re");
        if (!f)
                return false;
        char *line = NULL;
        size_t cap = 0;
        bool found = false;
        while (!found && getline(&line, &cap, f) > 0) {
                char *save = NULL, *field = strtok_r(line, " ", &save);
                for (int i = 1; field && i < 5; i++)
                        field = strtok_r(NULL, " ", &save);
                if (field) {
                        unescape_octal(field);
                        found = strcmp(field, path) == 0;
                }
        }
        free(line);
        fclose(f);
        return found;
}

int mountpoint_check(const char *path) {
        if (is_mounted_on(path))
                return 0; /* dead, hung or live: handled when mounting */
        struct stat st;
        if (stat(path, &st) < 0)
                return -errno;
        return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
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

/* True when pid's main thread has exited while the process lives on. */
static bool process_dying(pid_t pid) {
        struct proc_stat st;
        return procfs_read_stat(pid, &st) == 0 && st.state == 'Z';
}

int mountpoint_abort_dying(const char *path, pid_t pid, int timeout_ms) {
        if (pid <= 0 || pid == getpid() || !process_dying(pid))
                return 0;
        int pidfd = procfs_pidfd_open(pid, 0);
        /* Aborting answers every waiting request with an error; the stuck
         * thread then gets its lock, finishes and the process ends. The
         * unmount itself may fail (busy): the dead mount is cleared later. */
        if (umount2(path, MNT_FORCE) < 0 && errno != EBUSY && errno != EINVAL)
                return -errno;
        if (pidfd < 0)
                return 1;
        struct pollfd p = { .fd = pidfd, .events = POLLIN };
        int r = poll(&p, 1, timeout_ms);
        close(pidfd);
        return r > 0 ? 1 : r == 0 ? -ETIMEDOUT : -errno;
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
