/* SPDX-License-Identifier: MIT */
/* A copy of one lock's state, taken under the table lock and rendered
 * outside it. Plain data shared by locktable (producer) and status
 * (renderer). */
#ifndef LOCKFS_LOCKVIEW_H
#define LOCKFS_LOCKVIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "caller.h"

/* How the current holder was established (SPEC R4.3). */
enum lock_how {
        LOCK_HOW_CREATOR,  /* the process that created the name */
        LOCK_HOW_CLAIM,    /* named by a pid claim in the content (R3.3) */
        LOCK_HOW_FLOCK,    /* granted through flock(2) (later) */
        LOCK_HOW_DETACHED, /* no process holds it: content "0" or pid unknown */
};

/* Another name of a lock (link(2)), as persistent stores see it. */
struct lock_alias {
        uint64_t parent_ino;     /* its directory */
        char *name;              /* malloc'd */
        char *path;              /* "/dir/name", malloc'd; set only by a restore */
};

struct lock_view {
        char *path;              /* "/dir/name", malloc'd */
        uint64_t ino;
        uint64_t fence;
        enum lock_how how;
        bool detached;           /* no holder process (R3.3a, R3.5) */
        bool liveness_known;     /* false when the creator's pid was not visible */
        pid_t pid;               /* holder pid; 0 when detached */
        uid_t uid;               /* holder's (or detached creator's) uid/gid */
        gid_t gid;
        char comm[HOLDER_COMM_MAX];
        char cmdline[HOLDER_CMDLINE_MAX];
        int64_t acquired_at_ms;  /* wall clock, ms since the epoch */
        int64_t renewed_at_ms;   /* wall clock of the last renewal */
        uint32_t ttl_s;          /* 0 = no TTL */
        int64_t expires_at_ms;   /* wall clock; meaningless when ttl_s == 0 */
        pid_t claim_ignored_pid; /* last claim that named a foreign pid, or 0 */
        char *host;              /* malloc'd: a lock held through another host's
                                  * daemon (cluster mode); NULL = this host */
        bool lost;               /* the shared store no longer backs this lock */
        char *content;           /* what the holder wrote, malloc'd (may be NULL) */
        size_t content_len;
        /* Filled for persistent stores only (store acquire/update, restore): */
        uint64_t parent_ino;     /* directory of path's last name */
        uint64_t start_time;     /* holder's start time (clock ticks since boot) */
        int64_t deadline_mono_ms;/* CLOCK_MONOTONIC end of the TTL; 0 = none */
        struct lock_alias *aliases; /* malloc'd array */
        size_t n_aliases;
};

/* Free what v owns (path, content, aliases); v itself is not freed. NULL is a no-op. */
void lock_view_clear(struct lock_view *v);
/* lock_view_clear() each of v[0..n) and free the array. */
void lock_views_free(struct lock_view *v, size_t n);

/* Daemon-wide counters for .lockfs/metrics (SPEC R6.1). */
struct lock_metrics {
        uint64_t acquired;          /* successful acquisitions */
        uint64_t contended;         /* EEXIST answers: exclusive creates and writes */
        uint64_t released_unlink;   /* unlinked by holder */
        uint64_t released_exit;     /* holder process died */
        uint64_t released_ttl;      /* TTL ran out (= expired) */
        uint64_t released_root;     /* force-unlocked by root */
        uint64_t released_detached; /* detached lock unlinked by its creator uid */
        uint64_t released_unlock;   /* flock LOCK_UN or close of the flocking file */
        uint64_t held;              /* locks held now */
        uint64_t directories;       /* namespaces (directories) now */
        uint64_t waiters;           /* flock waiters parked now */
};

#endif
