/* SPDX-License-Identifier: MIT */
/* Caller identity from /proc: thread to process, start time, comm, cmdline,
 * ancestry, and pidfds that are proof against pid reuse. */
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "caller.h"

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434 /* the same number on every architecture */
#endif

/* What one read of /proc/PID/stat tells: all fields from one snapshot. */
struct proc_stat {
        char state;           /* field 3: R, S, D, Z, X... */
        pid_t ppid;           /* field 4 */
        uint64_t num_threads; /* field 20 */
        uint64_t start_time;  /* field 22 */
        char comm[HOLDER_COMM_MAX];
};

/* The lines of /proc/TID/status this module needs. */
struct proc_status {
        pid_t tgid;
        uid_t euid;
        gid_t egid;
};

/* Read up to size - 1 bytes of /proc/PID/NAME into buf and NUL-terminate.
 * Returns the byte count, -ESRCH when the process is gone, or -errno. */
static ssize_t proc_read(pid_t pid, const char *name, char *buf, size_t size) {
        char path[64];
        size_t n = 0;
        int fd;

        snprintf(path, sizeof(path), "/proc/%d/%s", (int)pid, name);
        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return errno == ENOENT ? -ESRCH : -errno;
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

/* Parse the decimal digits of [s, end) into *ret; false unless all digits. */
static bool parse_u64(const char *s, const char *end, uint64_t *ret) {
        uint64_t v = 0;

        if (s >= end)
                return false;
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

/* Parse a /proc/PID/stat line of n bytes. comm is field 2, in parentheses,
 * and may itself hold spaces and ')': it ends at the LAST ')'. Fields after
 * it are separated by single spaces. Returns 0 or -EIO. */
static int parse_stat(const char *buf, size_t n, struct proc_stat *ret) {
        const char *open = memchr(buf, '(', n);
        const char *close = memrchr(buf, ')', n);
        const char *end = buf + n;
        const char *p;
        uint64_t v;
        size_t len;
        int field = 2;

        if (!open || !close || close < open)
                return -EIO;
        len = (size_t)(close - open - 1);
        if (len >= sizeof(ret->comm))
                len = sizeof(ret->comm) - 1;
        memcpy(ret->comm, open + 1, len);
        ret->comm[len] = '\0';

        for (p = close + 1; p < end;) {
                const char *tok;

                while (p < end && *p == ' ')
                        p++;
                tok = p;
                while (p < end && *p != ' ' && *p != '\n')
                        p++;
                if (tok == p)
                        break;
                field++;
                if (field == 3) {
                        ret->state = *tok;
                } else if (field == 4) {
                        if (!parse_u64(tok, p, &v) || v > INT32_MAX)
                                return -EIO;
                        ret->ppid = (pid_t)v;
                } else if (field == 20) {
                        if (!parse_u64(tok, p, &ret->num_threads))
                                return -EIO;
                } else if (field == 22) {
                        if (!parse_u64(tok, p, &ret->start_time))
                                return -EIO;
                        return 0;
                }
        }
        return -EIO;
}

/* Read /proc/PID/stat. Returns 0, -ESRCH, or -errno. */
static int read_stat(pid_t pid, struct proc_stat *ret) {
        char buf[1024]; /* field 22 ends before byte ~450 even at maximum widths */
        ssize_t n;

        if (pid <= 0)
                return -ESRCH;
        n = proc_read(pid, "stat", buf, sizeof(buf));
        if (n < 0)
                return (int)n;
        if (n == 0)
                return -ESRCH;
        return parse_stat(buf, (size_t)n, ret);
}

/* Find "\nKEY:\t" in the NUL-terminated buf and return what follows. */
static const char *status_value(const char *buf, const char *key) {
        char pattern[32];
        const char *p;

        snprintf(pattern, sizeof(pattern), "\n%s:\t", key);
        p = strstr(buf, pattern);
        return p ? p + strlen(pattern) : NULL;
}

/* Parse column col (0-based) of a status line of tab-separated numbers. */
static bool status_number(const char *buf, const char *key, int col, uint64_t *ret) {
        const char *p = status_value(buf, key);
        const char *end;

        if (!p)
                return false;
        for (; col > 0; col--) {
                p = strchr(p, '\t');
                if (!p)
                        return false;
                p++;
        }
        end = p + strcspn(p, "\t\n");
        return parse_u64(p, end, ret);
}

/* Read Tgid and effective Uid/Gid of thread tid. Returns 0, -ESRCH, -errno.
 * The Name line comes first and is escaped by the kernel, so a hostile comm
 * cannot forge the lines that follow it. */
static int read_status(pid_t tid, struct proc_status *ret) {
        char buf[1024]; /* Name..Gid take under 400 bytes */
        uint64_t tgid, uid, gid;
        ssize_t n;

        if (tid <= 0)
                return -ESRCH;
        n = proc_read(tid, "status", buf, sizeof(buf));
        if (n < 0)
                return (int)n;
        if (n == 0)
                return -ESRCH;
        if (!status_number(buf, "Tgid", 0, &tgid) || tgid == 0 || tgid > INT32_MAX ||
            !status_number(buf, "Uid", 1, &uid) || !status_number(buf, "Gid", 1, &gid))
                return -EIO;
        ret->tgid = (pid_t)tgid;
        ret->euid = (uid_t)uid;
        ret->egid = (gid_t)gid;
        return 0;
}

/* Read /proc/PID/cmdline into buf (size bytes): NULs become spaces, trailing
 * spaces are trimmed, longer lines are cut. Returns 0, -ESRCH or -errno. */
static int read_cmdline(pid_t pid, char *buf, size_t size) {
        ssize_t n = proc_read(pid, "cmdline", buf, size);
        size_t i;

        if (n < 0)
                return (int)n;
        for (i = 0; i < (size_t)n; i++)
                if (buf[i] == '\0')
                        buf[i] = ' ';
        while (n > 0 && buf[n - 1] == ' ')
                n--;
        buf[n] = '\0';
        return 0;
}

/* Walk PPid links from ppid up to pid 1 (PPid 0). A link that vanished, or
 * that names a process younger than its child (the parent died and its pid
 * was reused), ends the chain: what lies beyond it is not our ancestry. */
static void read_ancestry(struct caller *c, pid_t ppid, uint64_t child_start) {
        while (ppid > 0 && c->n_ancestors < HOLDER_ANCESTRY_MAX) {
                struct proc_stat st;

                if (read_stat(ppid, &st) < 0 || st.start_time > child_start)
                        return;
                c->ancestors[c->n_ancestors].pid = ppid;
                c->ancestors[c->n_ancestors].start_time = st.start_time;
                c->n_ancestors++;
                ppid = st.ppid;
                child_start = st.start_time;
        }
}

/* Fill self, comm, cmdline and ancestry for process pid. comm comes from
 * /proc/PID/stat (the same bytes as /proc/PID/comm, read atomically with
 * the start time). The start time is checked again at the end so that
 * cmdline and ancestry cannot belong to a process that reused the pid. */
/* What identify() reads beyond the process and its start time. */
enum { ID_CMDLINE = 1, ID_ANCESTRY = 2 };

static int fill_process(struct caller *c, pid_t pid, unsigned what) {
        struct proc_stat st;
        uint64_t again;
        int r;

        r = read_stat(pid, &st);
        if (r < 0)
                return r;
        c->self.pid = pid;
        c->self.start_time = st.start_time;
        memcpy(c->comm, st.comm, sizeof(c->comm));
        c->partial = !(what & ID_ANCESTRY);
        c->no_cmdline = !(what & ID_CMDLINE);
        if (c->no_cmdline)
                return 0; /* one read: nothing to check against pid reuse */
        r = read_cmdline(pid, c->cmdline, sizeof(c->cmdline));
        if (r < 0)
                return r;
        if (what & ID_ANCESTRY)
                read_ancestry(c, st.ppid, st.start_time);
        r = holder_read_start_time(pid, &again);
        if (r < 0)
                return r;
        return again == st.start_time ? 0 : -ESRCH;
}

/* Reset *c to an unknown caller (self.pid 0) with the given credentials. */
static void caller_reset(struct caller *c, pid_t tid, uid_t uid, gid_t gid) {
        memset(c, 0, sizeof(*c));
        c->tid = tid;
        c->uid = uid;
        c->gid = gid;
}

/* The process (thread group) of thread tid. A thread group leader is the
 * common case: pidfd_open() accepts only leaders, which is far cheaper than
 * formatting /proc/TID/status. */
static int thread_group_of(pid_t tid, pid_t *ret) {
        struct proc_status ps;
        int fd = (int)syscall(SYS_pidfd_open, tid, 0);
        if (fd >= 0) {
                close(fd);
                *ret = tid;
                return 0;
        }
        int r = read_status(tid, &ps);
        if (r < 0)
                return r;
        *ret = ps.tgid;
        return 0;
}

static int identify(pid_t tid, uid_t uid, gid_t gid, unsigned what, struct caller *ret) {
        pid_t tgid;
        int r;

        caller_reset(ret, tid, uid, gid);
        if (tid == 0)
                return 0;
        r = thread_group_of(tid, &tgid);
        if (r >= 0)
                r = fill_process(ret, tgid, what);
        if (r < 0)
                caller_reset(ret, tid, uid, gid);
        return r;
}

int holder_identify(pid_t tid, uid_t uid, gid_t gid, struct caller *ret) {
        return identify(tid, uid, gid, ID_CMDLINE | ID_ANCESTRY, ret);
}

int holder_identify_quick(pid_t tid, uid_t uid, gid_t gid, struct caller *ret) {
        return identify(tid, uid, gid, ID_CMDLINE, ret);
}

int holder_identify_process_only(pid_t tid, uid_t uid, gid_t gid, struct caller *ret) {
        return identify(tid, uid, gid, 0, ret);
}

int holder_identify_process(pid_t pid, struct caller *ret) {
        struct proc_status ps;
        int r;

        caller_reset(ret, pid, 0, 0);
        r = read_status(pid, &ps);
        if (r >= 0 && ps.tgid != pid)
                r = -ESRCH; /* a thread id, not a process */
        if (r >= 0) {
                ret->uid = ps.euid;
                ret->gid = ps.egid;
                r = fill_process(ret, pid, ID_CMDLINE | ID_ANCESTRY);
        }
        if (r < 0)
                caller_reset(ret, pid, 0, 0);
        return r;
}

static bool proc_id_equal(const struct proc_id *a, const struct proc_id *b) {
        return a->pid == b->pid && a->start_time == b->start_time;
}

bool caller_is_or_descends_from(const struct caller *c, const struct proc_id *p) {
        size_t i;

        if (!c || !p || c->self.pid <= 0 || p->pid <= 0)
                return false;
        if (proc_id_equal(&c->self, p))
                return true;
        for (i = 0; i < c->n_ancestors; i++)
                if (proc_id_equal(&c->ancestors[i], p))
                        return true;
        return false;
}

bool caller_find_lineage(const struct caller *c, pid_t pid, struct proc_id *ret) {
        size_t i;

        if (!c || c->self.pid <= 0 || pid <= 0)
                return false;
        if (c->self.pid == pid) {
                *ret = c->self;
                return true;
        }
        for (i = 0; i < c->n_ancestors; i++) {
                if (c->ancestors[i].pid == pid) {
                        *ret = c->ancestors[i];
                        return true;
                }
        }
        return false;
}

int holder_read_start_time(pid_t pid, uint64_t *ret) {
        struct proc_stat st;
        int r = read_stat(pid, &st);

        if (r < 0)
                return r;
        *ret = st.start_time;
        return 0;
}

/* The pidfd refers to whatever process had the pid when it was opened. If
 * /proc shows p's start time after that, p held the pid all along (it is
 * older than the open), so the pidfd is p's. pidfd_open() always sets
 * O_CLOEXEC. A non-leader thread id gives ENOENT (EINVAL before Linux 6.9):
 * the process we knew is gone. */
int holder_pidfd_open(const struct proc_id *p) {
        static atomic_bool unsupported; /* ENOSYS once: never ask again */
        uint64_t start;
        int fd, r;

        if (!p || p->pid <= 0)
                return -ESRCH;
        if (atomic_load_explicit(&unsupported, memory_order_relaxed))
                return -ENOSYS;
        fd = (int)syscall(SYS_pidfd_open, p->pid, 0);
        if (fd < 0 && errno == ENOSYS)
                atomic_store_explicit(&unsupported, true, memory_order_relaxed);
        if (fd < 0)
                return (errno == ESRCH || errno == ENOENT || errno == EINVAL) ? -ESRCH : -errno;
        r = holder_read_start_time(p->pid, &start);
        if (r < 0 || start != p->start_time) {
                close(fd);
                return (r < 0 && r != -ESRCH) ? r : -ESRCH;
        }
        return fd;
}

/* True when the group of st has exited but is not reaped yet: the
 * leader is a zombie and no other thread is left. The leader's state alone
 * cannot tell, as a group whose leader called pthread_exit() shows 'Z'
 * while its other threads run. */
static bool stat_group_exited(const struct proc_stat *st) {
        return (st->state == 'Z' || st->state == 'X') && st->num_threads <= 1;
}

/* A zombie is not alive. A pidfd polls readable exactly when the whole
 * group has exited; without one (ENOSYS under valgrind 3.19, EMFILE) /proc
 * is asked instead. When nothing can be checked the answer is "alive":
 * calling a live holder dead would admit a second holder. */
bool holder_alive(const struct proc_id *p) {
        struct proc_stat st;
        struct pollfd pfd;
        int fd, r;

        if (!p || p->pid <= 0)
                return false;
        r = read_stat(p->pid, &st);
        if (r == -ESRCH || (r == 0 && st.start_time != p->start_time))
                return false;
        fd = holder_pidfd_open(p);
        if (fd == -ESRCH)
                return false;
        if (fd < 0)
                return r < 0 || !stat_group_exited(&st);
        pfd.fd = fd;
        pfd.events = POLLIN;
        pfd.revents = 0;
        do
                r = poll(&pfd, 1, 0);
        while (r < 0 && errno == EINTR);
        close(fd);
        return !(r > 0 && (pfd.revents & POLLIN));
}
