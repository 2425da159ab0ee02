/* SPDX-License-Identifier: MIT */
/* Reading processes from /proc (procfs.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "procfs.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434 /* the same number on every architecture */
#endif

ssize_t procfs_read(pid_t pid, const char *name, char *buf, size_t size) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return errno == ENOENT ? -ESRCH : -errno;
        size_t n = 0;
        while (n < size - 1) {
                ssize_t r = read(fd, buf + n, size - 1 - n);
                if (r < 0 && errno == EINTR)
                        continue;
                if (r < 0) {
                        int e = errno;
                        close(fd);
                        return e == ENOENT ? -ESRCH : -e;
                }
                if (r == 0)
                        break;
                n += (size_t)r;
        }
        close(fd);
        buf[n] = '\0';
        return (ssize_t)n;
}

/* Parse the decimal digits of [s, end) into *ret; false unless all digits
 * and no overflow. */
static bool parse_u64(const char *s, const char *end, uint64_t *ret) {
        if (s >= end)
                return false;
        uint64_t v = 0;
        for (; s < end; s++) {
                if (*s < '0' || *s > '9')
                        return false;
                if (v > (UINT64_MAX - (uint64_t)(*s - '0')) / 10)
                        return false;
                v = v * 10 + (uint64_t)(*s - '0');
        }
        *ret = v;
        return true;
}

/* Store field number field (3 and up) of a stat line, the token [tok, end).
 * Returns 1 when it was the last field needed (22), 0 to go on, or -EIO. */
static int stat_field(int field, const char *tok, const char *end, struct proc_stat *ret) {
        uint64_t v;
        switch (field) {
        case 3:
                ret->state = *tok;
                return 0;
        case 4:
                if (!parse_u64(tok, end, &v) || v > INT32_MAX)
                        return -EIO;
                ret->ppid = (pid_t)v;
                return 0;
        case 20:
                return parse_u64(tok, end, &ret->num_threads) ? 0 : -EIO;
        case 22:
                return parse_u64(tok, end, &ret->start_time) ? 1 : -EIO;
        default:
                return 0;
        }
}

int procfs_parse_stat(const char *buf, size_t n, struct proc_stat *ret) {
        const char *open = memchr(buf, '(', n);
        const char *close = memrchr(buf, ')', n);
        if (!open || !close || close < open)
                return -EIO;
        size_t len = (size_t)(close - open - 1);
        if (len >= sizeof(ret->comm))
                len = sizeof(ret->comm) - 1;
        memcpy(ret->comm, open + 1, len);
        ret->comm[len] = '\0';

        const char *end = buf + n;
        int field = 2;
        for (const char *p = close + 1; p < end;) {
                while (p < end && *p == ' ')
                        p++;
                const char *tok = p;
                while (p < end && *p != ' ' && *p != '\n')
                        p++;
                if (tok == p)
                        break;
                int r = stat_field(++field, tok, p, ret);
                if (r != 0)
                        return r < 0 ? r : 0;
        }
        return -EIO;
}

int procfs_read_stat(pid_t pid, struct proc_stat *ret) {
        char buf[1024]; /* field 22 ends before byte ~450 even at maximum widths */
        if (pid <= 0)
                return -ESRCH;
        ssize_t n = procfs_read(pid, "stat", buf, sizeof(buf));
        if (n < 0)
                return (int)n;
        if (n == 0)
                return -ESRCH;
        return procfs_parse_stat(buf, (size_t)n, ret);
}

/* Find "\nKEY:\t" in the NUL-terminated buf and return what follows. */
static const char *status_value(const char *buf, const char *key) {
        char pattern[32];
        snprintf(pattern, sizeof(pattern), "\n%s:\t", key);
        const char *p = strstr(buf, pattern);
        return p ? p + strlen(pattern) : NULL;
}

/* Parse column col (0-based) of a status line of tab-separated numbers. */
static bool status_number(const char *buf, const char *key, int col, uint64_t *ret) {
        const char *p = status_value(buf, key);
        if (!p)
                return false;
        for (; col > 0; col--) {
                p = strchr(p, '\t');
                if (!p)
                        return false;
                p++;
        }
        return parse_u64(p, p + strcspn(p, "\t\n"), ret);
}

int procfs_parse_status(const char *buf, struct proc_status *ret) {
        uint64_t tgid, uid, gid;
        if (!status_number(buf, "Tgid", 0, &tgid) || tgid == 0 || tgid > INT32_MAX ||
            !status_number(buf, "Uid", 1, &uid) || !status_number(buf, "Gid", 1, &gid))
                return -EIO;
        ret->tgid = (pid_t)tgid;
        ret->euid = (uid_t)uid;
        ret->egid = (gid_t)gid;
        return 0;
}

int procfs_read_status(pid_t tid, struct proc_status *ret) {
        char buf[1024]; /* Name..Gid take under 400 bytes */
        if (tid <= 0)
                return -ESRCH;
        ssize_t n = procfs_read(tid, "status", buf, sizeof(buf));
        if (n < 0)
                return (int)n;
        if (n == 0)
                return -ESRCH;
        return procfs_parse_status(buf, ret);
}

int procfs_read_cmdline(pid_t pid, char *buf, size_t size) {
        ssize_t n = procfs_read(pid, "cmdline", buf, size);
        if (n < 0)
                return (int)n;
        for (ssize_t i = 0; i < n; i++)
                if (buf[i] == '\0')
                        buf[i] = ' ';
        while (n > 0 && buf[n - 1] == ' ')
                n--;
        buf[n] = '\0';
        return 0;
}

int procfs_pidfd_open(pid_t pid, unsigned int flags) {
        return (int)syscall(SYS_pidfd_open, pid, flags);
}
