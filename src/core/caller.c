/* SPDX-License-Identifier: MIT */
/* Caller identity from /proc: thread to process, start time, comm, cmdline,
 * ancestry, and pidfds that are proof against pid reuse. */
#include <errno.h>
#include <stdatomic.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "caller.h"
#include "procfs.h"

_Static_assert(HOLDER_COMM_MAX == PROCFS_COMM_MAX, "comm is copied whole from /proc/PID/stat");

/* Walk PPid links from ppid up to pid 1 (PPid 0). A link that vanished, or
 * that names a process younger than its child (the parent died and its pid
 * was reused), ends the chain: what lies beyond it is not our ancestry. */
static void read_ancestry(struct caller *c, pid_t ppid, uint64_t child_start) {
        while (ppid > 0 && c->n_ancestors < HOLDER_ANCESTRY_MAX) {
                struct proc_stat st;

                if (procfs_read_stat(ppid, &st) < 0 || st.start_time > child_start)
                        return;
                c->ancestors[c->n_ancestors].pid = ppid;
                c->ancestors[c->n_ancestors].start_time = st.start_time;
                c->n_ancestors++;
                ppid = st.ppid;
                child_start = st.start_time;
        }
}

/* What identify() reads beyond the process and its start time. */
enum { ID_CMDLINE = 1, ID_ANCESTRY = 2 };

/* Fill self, comm, cmdline and ancestry for process pid. comm comes from
 * /proc/PID/stat (the same bytes as /proc/PID/comm, read atomically with
 * the start time). The start time is checked again at the end so that
 * cmdline and ancestry cannot belong to a process that reused the pid. */

static int fill_process(struct caller *c, pid_t pid, unsigned what) {
        struct proc_stat st;
        uint64_t again;
        int r;

        r = procfs_read_stat(pid, &st);
        if (r < 0)
                return r;
        c->self.pid = pid;
        c->self.start_time = st.start_time;
        memcpy(c->comm, st.comm, sizeof(c->comm));
        c->partial = !(what & ID_ANCESTRY);
        c->no_cmdline = !(what & ID_CMDLINE);
        if (c->no_cmdline)
                return 0; /* one read: nothing to check against pid reuse */
        r = procfs_read_cmdline(pid, c->cmdline, sizeof(c->cmdline));
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
        int fd = procfs_pidfd_open(tid, 0);
        if (fd >= 0) {
                close(fd);
                *ret = tid;
                return 0;
        }
        int r = procfs_read_status(tid, &ps);
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
        r = procfs_read_status(pid, &ps);
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
        int r = procfs_read_stat(pid, &st);

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
        fd = procfs_pidfd_open(p->pid, 0);
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
        r = procfs_read_stat(p->pid, &st);
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
