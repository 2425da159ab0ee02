/* SPDX-License-Identifier: MIT */
/* Reading processes from /proc: one file of /proc/PID, the fields of
 * /proc/PID/stat and /proc/TID/status lockfs needs, the command line, and
 * pidfd_open(2) where libc has no wrapper. Knows nothing of locks. */
#ifndef LOCKFS_PROCFS_H
#define LOCKFS_PROCFS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PROCFS_COMM_MAX 16 /* comm is at most 15 bytes and a NUL */

/* What one read of /proc/PID/stat tells: all fields from one snapshot. */
struct proc_stat {
        char state;           /* field 3: R, S, D, Z, X... */
        pid_t ppid;           /* field 4 */
        uint64_t num_threads; /* field 20 */
        uint64_t start_time;  /* field 22: clock ticks since boot */
        char comm[PROCFS_COMM_MAX]; /* field 2, cut to PROCFS_COMM_MAX - 1 bytes */
};

/* The lines of /proc/TID/status lockfs needs. */
struct proc_status {
        pid_t tgid;  /* Tgid: the thread's process */
        uid_t euid;  /* Uid, second column */
        gid_t egid;  /* Gid, second column */
};

/* Read up to size - 1 bytes (size >= 1) of /proc/PID/NAME into buf and
 * NUL-terminate. Returns the byte count, -ESRCH when the process is gone,
 * or another -errno. */
ssize_t procfs_read(pid_t pid, const char *name, char *buf, size_t size);

/* Parse a /proc/PID/stat line of n bytes (not NUL-terminated). comm is
 * field 2, in parentheses, and may itself hold spaces and ')': it ends at
 * the LAST ')'. Fields after it are separated by spaces. Returns 0, or
 * -EIO when the line is cut before field 22 or a number is malformed. */
int procfs_parse_stat(const char *buf, size_t n, struct proc_stat *ret);

/* Read and parse /proc/PID/stat. Returns 0, -ESRCH (pid <= 0, or the
 * process is gone), -EIO (unparsable), or another -errno. */
int procfs_read_stat(pid_t pid, struct proc_stat *ret);

/* Parse the NUL-terminated text of /proc/TID/status. The Name line comes
 * first and is escaped by the kernel, so a hostile comm cannot forge the
 * lines that follow it. Returns 0, or -EIO when a line is missing or
 * malformed (or Tgid is 0). */
int procfs_parse_status(const char *buf, struct proc_status *ret);

/* Read and parse /proc/TID/status. Returns 0, -ESRCH (tid <= 0, or the
 * thread is gone), -EIO, or another -errno. */
int procfs_read_status(pid_t tid, struct proc_status *ret);

/* Read /proc/PID/cmdline into buf (size >= 1 bytes): the NULs between
 * arguments become spaces, trailing spaces are trimmed, longer lines are
 * cut. Returns 0, -ESRCH or another -errno. */
int procfs_read_cmdline(pid_t pid, char *buf, size_t size);

/* pidfd_open(pid, flags) through syscall(2) (no libc wrapper before glibc
 * 2.36). Returns the descriptor (always O_CLOEXEC), or -1 with errno set,
 * as the system call does: ENOSYS on kernels before 5.3, EINVAL or ENOENT
 * for a thread that is not a group leader, ESRCH when pid is gone. */
int procfs_pidfd_open(pid_t pid, unsigned int flags);

#endif
