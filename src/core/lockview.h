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
        LOCK_HOW_FLOCK,    /* granted through flock(2) */
        LOCK_HOW_DETACHED, /* no process holds it: content "0" or pid unknown */
        LOCK_HOW_FCNTL,    /* granted through an fcntl/lockf/OFD record lock (R7.4) */
        LOCK_HOW_MKDIR,    /* a directory lock, taken by mkdir (R7.5): presents as a
                            * directory, also when detached */
        LOCK_HOW_COUNT     /* not a value: the number of them */
};

/* A lock's record: the state the lock table keeps for each lock and the
 * stores persist, listed once. X(type, field, what it is). The table's
 * node, lock_view and the journal's decoded record (journal.h) declare
 * these fields by expanding the list, LOCK_RECORD_COPY copies them
 * between any two of those, and the tests compare round trips field by
 * field over it. The two stored forms name each field in their own
 * layout (journal.c's byte layout is versioned, etcd_value.c's JSON keys
 * are what other hosts read); both assert at compile time that they
 * cover LOCK_RECORD_COUNT fields, so a new field here fails their build
 * until they carry it too. Ordered by size, so the structs pack tightly. */
#define LOCK_RECORD_FIELDS(X)                                                                   \
        X(uint64_t, fence, "fencing token: grows with every acquisition (R4.4)")                \
        X(int64_t, acquired_at_ms, "wall clock of the acquisition, ms since the epoch")         \
        X(int64_t, renewed_at_ms, "wall clock of the last renewal")                             \
        X(enum lock_how, how, "how the holder was established")                                 \
        X(uid_t, uid, "holder's (or detached creator's) uid; a directory's creator")            \
        X(gid_t, gid, "its gid")                                                                \
        X(uint32_t, ttl_s, "0 = no TTL")                                                        \
        X(pid_t, claim_ignored_pid, "last claim that named a foreign pid, or 0 (R3.3)")         \
        X(bool, liveness_known, "false when the creator's pid was not visible")
#define LOCK_RECORD_DECLARE_(type, field, what) type field;
#define LOCK_RECORD_COUNT_(type, field, what) +1
/* The number of fields in LOCK_RECORD_FIELDS. */
#define LOCK_RECORD_COUNT (0 LOCK_RECORD_FIELDS(LOCK_RECORD_COUNT_))
/* Declare the record's fields in a struct. */
#define LOCK_RECORD_DECLARE LOCK_RECORD_FIELDS(LOCK_RECORD_DECLARE_)
#define LOCK_RECORD_COPY_(type, field, what) to_->field = from_->field;
/* Copy the record's fields from *from to *to (any two structs that
 * expand LOCK_RECORD_DECLARE). */
#define LOCK_RECORD_COPY(to, from)                                                             \
        do {                                                                                   \
                __typeof__(*(to)) *to_ = (to);                                                 \
                const __typeof__(*(from)) *from_ = (from);                                     \
                LOCK_RECORD_FIELDS(LOCK_RECORD_COPY_)                                          \
        } while (0)

/* Another name of a lock (link(2)), as persistent stores see it. */
struct lock_alias {
        uint64_t parent_ino;     /* its directory */
        char *name;              /* malloc'd */
        char *path;              /* "/dir/name", malloc'd; set only by a restore */
};

/* One holder of a shared lock, or one request waiting for a lock, as
 * status lists them (SPEC R7.3, issue 13 point 4). */
struct lock_party {
        pid_t pid;               /* 0 when not visible */
        uint64_t start_time;     /* its start time (clock ticks since boot) */
        uid_t uid;
        gid_t gid;
        enum lock_how how;       /* LOCK_HOW_FLOCK or LOCK_HOW_FCNTL */
        bool shared;             /* a waiter: what it asks */
        int64_t since_ms;        /* wall clock: shared, or parked, since */
        char comm[HOLDER_COMM_MAX];
};

/* The most holders and waiters a status lists of one lock (the totals are
 * given besides). */
#define LOCK_PARTIES_MAX 64

struct lock_view {
        char *path;              /* "/dir/name", malloc'd */
        uint64_t ino;
        LOCK_RECORD_DECLARE      /* fence, how, uid, gid, times, TTL, ... */
        bool detached;           /* no holder process (R3.3a, R3.5) */
        pid_t pid;               /* holder pid; 0 when detached */
        char comm[HOLDER_COMM_MAX];
        char cmdline[HOLDER_CMDLINE_MAX];
        int64_t expires_at_ms;   /* wall clock; meaningless when ttl_s == 0 */
        char *host;              /* malloc'd: a lock held through another host's
                                  * daemon (cluster mode); NULL = this host */
        bool lost;               /* the shared store no longer backs this lock */
        char *content;           /* what the holder wrote, malloc'd (may be NULL) */
        size_t content_len;
        bool raw;                /* read back as content, not status (R4.4a):
                                  * set by locktable_view only */
        /* A shared lock (R7.3), for status (at most LOCK_PARTIES_MAX listed)
         * and for persistent stores (all of them, so that a restart gives
         * every live sharer its share back): */
        bool shared;             /* held shared */
        struct lock_party *sharers; /* malloc'd: holders besides pid, oldest first */
        size_t n_sharers, sharers_total; /* listed, all */
        /* Filled for status only: */
        struct lock_party *waiters; /* malloc'd: parked requests, in queue order */
        size_t n_waiters, waiters_total;
        /* Filled for persistent stores only (store acquire/update, restore): */
        uint64_t parent_ino;     /* directory of path's last name */
        uint64_t start_time;     /* holder's start time (clock ticks since boot) */
        int64_t deadline_mono_ms;/* CLOCK_MONOTONIC end of the TTL; 0 = none */
        struct lock_alias *aliases; /* malloc'd array */
        size_t n_aliases;
};

/* Free what v owns (path, content, aliases, sharers, waiters); v itself is
 * not freed. NULL is a no-op. */
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
