/* SPDX-License-Identifier: MIT */
/* Caller identity: map a kernel-reported thread to its process, its ancestry
 * and a pid-reuse-proof identity (pid + start time), and open pidfds. */
#ifndef LOCKFS_HOLDER_H
#define LOCKFS_HOLDER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define HOLDER_COMM_MAX 16       /* /proc/PID/comm is at most 15 bytes */
#define HOLDER_CMDLINE_MAX 1024  /* longer command lines are cut */
#define HOLDER_ANCESTRY_MAX 64   /* deeper chains are cut (never seen) */

/* A process, robust against pid reuse: the pid and its start time in clock
 * ticks since boot (field 22 of /proc/PID/stat). pid 0 = unknown. */
struct proc_id {
        pid_t pid;
        uint64_t start_time;
};

/* Who made a request. Filled by holder_identify(); plain data, no frees. */
struct caller {
        pid_t tid;                  /* thread the kernel reported (0 = not visible) */
        struct proc_id self;        /* its thread group; pid 0 when not visible */
        uid_t uid;                  /* fs uid/gid of the request */
        gid_t gid;
        char comm[HOLDER_COMM_MAX];
        char cmdline[HOLDER_CMDLINE_MAX]; /* arguments joined by single spaces */
        bool partial;               /* ancestry not read (holder_identify_quick) */
        bool no_cmdline;            /* cmdline not read (holder_identify_process_only) */
        size_t n_ancestors;
        struct proc_id ancestors[HOLDER_ANCESTRY_MAX]; /* parent first, up to pid 1 */
};

/* Fill *ret for the request made by thread tid with fs credentials uid/gid.
 * tid 0 (a caller in a pid namespace the daemon cannot see) gives a caller
 * with self.pid == 0 and no ancestors, and returns 0.
 * Returns 0, or -ESRCH when the thread vanished while being read. */
int holder_identify(pid_t tid, uid_t uid, gid_t gid, struct caller *ret);

/* holder_identify() without the ancestry (ret->partial set, n_ancestors 0):
 * enough to acquire a free name or to recognise the holder itself, about
 * half the /proc reads. Callers whose answer depends on lineage must fall
 * back to holder_identify(). */
int holder_identify_quick(pid_t tid, uid_t uid, gid_t gid, struct caller *ret);
/* holder_identify_quick() without the cmdline (empty, no_cmdline set): the
 * process, its start time and comm, from one read. Enough to recognise a
 * holder, or to take a lock for a process the table knows already. */
int holder_identify_process_only(pid_t tid, uid_t uid, gid_t gid, struct caller *ret);

/* Same as holder_identify() for a process known by its pid (no thread
 * mapping), with the uid/gid read from /proc. Used to describe a claimed
 * ancestor. Returns 0 or -ESRCH. */
int holder_identify_process(pid_t pid, struct caller *ret);

/* True when c's process is p, or p is one of c's ancestors. False when p or
 * c is unknown (pid 0). */
bool caller_is_or_descends_from(const struct caller *c, const struct proc_id *p);

/* Find pid among c itself and its ancestors; on success store its identity
 * in *ret and return true. */
bool caller_find_lineage(const struct caller *c, pid_t pid, struct proc_id *ret);

/* Read the start time of pid. Returns 0 or -ESRCH. */
int holder_read_start_time(pid_t pid, uint64_t *ret);

/* Open a pidfd for p and verify (by start time, after opening) that it is
 * the same process. Returns the fd (O_CLOEXEC) or -ESRCH when p is gone or
 * its pid was reused, or another -errno. */
int holder_pidfd_open(const struct proc_id *p);

/* True when the process p still exists (same start time). */
bool holder_alive(const struct proc_id *p);

#endif
