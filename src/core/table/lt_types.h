/* SPDX-License-Identifier: MIT */
/* The lock table's data: nodes, holder records, parked requests, queued
 * store calls and the table itself. Private to the table (lt_internal.h
 * lists its files and their calls); every field is guarded by t->mu
 * unless its comment says otherwise. */
#ifndef LOCKFS_LT_TYPES_H
#define LOCKFS_LT_TYPES_H

#include <pthread.h>
#include <stddef.h>

#include "container_of.h"
#include "heap.h"
#include "htab.h"
#include "list.h"
#include "locktable.h"

/* A place in t->order, the held locks oldest first (lt_cursor.c): a lock's
 * own link, or a status reader's cursor, which stays put when locks around
 * it go. */
struct lt_olink {
        struct list link;        /* in t->order.link */
        bool cursor;             /* a struct lt_cursor, not a node */
};

/* A process holding one or more locks; one pidfd watched per process. */
struct holder {
        struct hlink by_pid;     /* t->holders, hash of the pid */
        struct proc_id proc;
        uid_t uid;
        gid_t gid;
        char comm[HOLDER_COMM_MAX];
        char *cmdline;           /* malloc'd, never NULL */
        int pidfd;               /* -1: no pidfds here, polled instead */
        unsigned refs;           /* locks held, parked waiters and requests in
                                  * flight; 0: idle (kept for its next lock) */
        bool dead;               /* reaped: freed at its last reference */
        struct list waits;       /* parked flock requests it would hold for
                                  * (lt_waiter.h_link; lt_waitq.c) */
        struct list shares;      /* its shares of shared locks (lt_share.h_link) */
        struct list locks;       /* its locks (node.hl) */
        struct list idle;        /* in t->idle, while refs == 0 */
};

/* Holder records kept (pidfd watched) after their last lock, so a process
 * that takes and releases locks in a loop costs no pidfd each time. */
#define LT_IDLE_HOLDERS 64

struct node {
        struct hlink by_ino;     /* t->inodes: every node the kernel may know */
        struct hlink by_name;    /* t->names: linked nodes, by (parent, name) */
        uint64_t ino;
        struct node *parent;
        char *name;
        uint64_t nlookup;        /* kernel references (LOOKUP minus FORGET) */
        int64_t ctime_ms;
        /* directories and directory locks: the times utimens set (SPEC R7.5) */
        struct timespec atime, mtime;
        bool times_set;
        /* small fields together, so the struct packs tightly */
        enum lt_kind kind;
        uid_t charged_uid;       /* counted in t->uid_counts as this uid (charged) */
        uint32_t charged_bytes;  /* content bytes counted for charged_uid */
        uint32_t n_children;     /* directories */
        uint32_t n_aliases;      /* other names of this lock */
        uint32_t content_len;    /* at most max_content (16 MiB) */
        uint32_t content_cap;
        uint32_t content_gen;    /* changes with every change of content */
        LOCK_RECORD_DECLARE      /* locks (lockview.h); directories: uid, gid of
                                  * the creator */
        bool linked;             /* in the tree; false once released/removed */
        bool charged;
        bool lost;               /* local lock whose backing the store lost */
        bool shared;             /* held in shared mode (SPEC R7.3): its holder
                                  * and its sharers (shares) hold it together */
        uint8_t refs_shared;     /* which of the holder's holds are shared:
                                  * LT_REF_FLOCK, LT_REF_POSIX (lt_internal.h) */
        bool busy;               /* its acquisition waits for the store: other
                                  * requests wait (lt_wait_settled), releases
                                  * are deferred to the answer (doomed) */
        uint8_t doomed;          /* 1 + release_cause to apply once settled */
        uint32_t renaming;       /* directories: renames in flight of names in
                                  * it; no name is taken in it meanwhile */
        /* a second name of a lock (link(2)): target is the lock; such a node
         * is in the tree but not in t->inodes */
        struct node *target;
        struct list alias_link;  /* in target->aliases */
        struct list sib;         /* in parent->children */
        /* directories */
        struct list children;    /* its names (node.sib), newest first */
        /* locks */
        struct holder *holder;   /* NULL when detached */
        struct list hl;          /* in holder->locks */
        struct list all;         /* in t->all_locks, while held */
        struct lt_olink order;   /* t->order, while held (lt_cursor.c) */
        uint64_t order_seq;      /* its place: larger = added later */
        struct heap_entry deadline; /* monotonic ms */
        char *content;
        struct list aliases;     /* other names of this lock (node.alias_link),
                                  * newest first */
        struct lt_remote *remote; /* held through another host's daemon (lt_remote.c) */
        /* flock(2), SPEC §7 */
        uint64_t parent_was;     /* parent's inode while linked (for a late flock) */
        uint64_t flock_owner;    /* open file description holding the flock, 0 = none */
        /* fcntl/lockf/OFD record locks, SPEC R7.4: the kernel's lock owner
         * (a process's files, or an open file for OFD locks), 0 = none, and
         * the open file it was taken through */
        uint64_t posix_owner;
        uint64_t posix_file;
        struct list wq;          /* parked requests (lt_waiter.link), FIFO */
        struct list shares;      /* a shared lock's holders besides its recorded
                                  * holder (lt_share.link), oldest first */
        uint32_t n_shares;
};

/* What another host's daemon published about a lock it holds (the rest is
 * in the node: uid, gid, times, TTL, how, content; fence = its revision). */
struct lt_remote {
        char *host;
        char *cmdline;
        pid_t pid;
        char comm[HOLDER_COMM_MAX];
        uint64_t sync_gen;       /* last listing that named it */
};

/* What a flock or record-lock request asks for, and for whom (SPEC §7). */
struct lt_lock_req {
        bool posix;              /* an fcntl/lockf/OFD record lock, else flock */
        uint64_t owner;          /* flock: its open file's id; posix: the kernel's owner */
        uint64_t file;           /* the open file it comes through */
        bool nonblock;
        bool shared;             /* LOCK_SH, F_RDLCK: shared with other such (R7.3) */
        enum lt_handle_kind kind; /* the handle it comes through: a share keeps
                                  * it as a reader's or a contender's */
        bool append;
        uint64_t id;             /* the fs layer's name for the request */
};

/* One holder of a shared lock besides the lock's recorded holder (SPEC
 * R7.3): what holds it (rq: the API, owner and file) and for whom. The
 * recorded holder (node.holder, what the store keeps) is the first
 * sharer; when it goes, the oldest share takes its place. */
struct lt_share {
        struct list link;        /* in n->shares */
        struct list h_link;      /* in h->shares (unlinked when h is NULL) */
        struct node *n;
        struct holder *h;        /* its process, referenced; NULL: pid not visible */
        struct lt_lock_req rq;
        uid_t uid;
        gid_t gid;
        int64_t since_ms;        /* wall clock */
};

/* A parked flock(LOCK_EX) or F_SETLKW request, owned by the table until
 * granted or cancelled. */
struct lt_waiter {
        struct hlink by_id;      /* t->waiters */
        struct lt_lock_req rq;   /* what it asked; rq.id names it */
        struct caller who;       /* who becomes the holder */
        struct holder *h;        /* who's record, referenced while parked */
        struct node *n;
        struct list link;        /* in n->wq */
        struct list h_link;      /* in h->waits (unlinked when h is NULL) */
        int64_t since_ms;        /* wall clock of its parking */
};

/* A store call queued under the table mutex and made by lt_flush() outside
 * it (lt_outbox.c). */
enum lt_op_kind { LT_OP_ACQUIRE, LT_OP_UPDATE, LT_OP_RELEASE, LT_OP_PUT_DIR, LT_OP_REMOVE_DIR };

struct lt_op;
/* Runs under t->mu once the store answered op (op->err, op->fence). */
typedef void (*lt_op_done_fn)(struct locktable *t, struct lt_op *op);

struct lt_op {
        struct list link;        /* in t->ops while queued, or a flusher's batch */
        struct locktable *t;
        enum lt_op_kind kind;
        uint64_t seq;            /* queue order */
        uint64_t ino;            /* the node's key */
        struct lock_view view;   /* ACQUIRE, UPDATE: the state to record */
        char *path;              /* RELEASE */
        uint64_t fence;          /* RELEASE: the acquisition; ACQUIRE: the answer */
        uint64_t parent;         /* PUT_DIR */
        char *name;
        uid_t uid;
        gid_t gid;
        int err;                 /* the store's answer */
        lt_op_done_fn done;
        void *arg;
        bool waited;             /* the requester reads the answer and frees op */
        bool finished;           /* done() ran */
};

/* What a request prepared about a process outside the mutex: a pidfd
 * opened and checked against its start time (or, without pidfds, that it
 * lives). */
struct lt_prep {
        bool ready;
        int err;                 /* -ESRCH: it is gone */
        int pidfd;               /* -1: none (polled), or consumed */
};

/* A reply owed to a parked request, delivered outside the table lock. */
struct lt_grant {
        uint64_t id;
        int err;
        struct lt_handle handle;
};

enum release_cause { CAUSE_UNLINK, CAUSE_EXIT, CAUSE_TTL, CAUSE_ROOT, CAUSE_DETACHED,
                     CAUSE_UNLOCK };

/* A name removed by the daemon itself, to report outside the lock. */
struct removal {
        uint64_t parent;
        uint64_t ino;
        char *name;
};

struct removals {
        struct removal *v;
        size_t n;
        size_t cap;
};

struct locktable {
        pthread_mutex_t mu;
        pthread_mutex_t store_mu;   /* one flusher at a time (lt_outbox.c) */
        pthread_cond_t settled;     /* a busy lock's acquisition was answered */
        struct list ops;         /* queued store calls (lt_op.link), oldest first */
        uint64_t ops_queued, ops_done;     /* sequence numbers */
        bool restoring;             /* locktable_restore(): store calls at once */
        struct removals late;       /* removals made by done() callbacks */
        lt_removed_fn removed_fn;   /* where those are reported */
        void *removed_ctx;
        struct locktable_config cfg;
        struct store *store;
        bool closing;            /* locktable_free(): releases are not recorded */
        struct htab inodes;
        struct htab names;
        struct htab holders;
        struct node *root;
        struct list all_locks;   /* every held lock (node.all), newest first */
        uint64_t next_ino;
        uint64_t n_nodes;        /* locks + directories, root excluded */
        struct heap deadlines;
        int64_t armed_key;
        int epfd;
        int timerfd;
        int pollfd;              /* periodic timer while holders lack pidfds */
        size_t n_polled;
        struct lock_metrics m;
        struct htab waiters;     /* parked flock requests by id */
        struct htab uid_counts;  /* held locks per uid (lt_quota.c) */
        struct lt_grant *grants; /* owed replies, see lt_deliver() */
        size_t n_grants, cap_grants;
        lt_grant_fn grant_fn;
        void *grant_ctx;
        uint64_t sync_gen;       /* current listing of the shared store (lt_remote.c) */
        struct list idle;        /* idle holders (holder.idle), newest first */
        size_t n_idle;
        struct lt_olink order;   /* held locks in the order added, and cursors */
        uint64_t order_seq;      /* the last lock's order_seq */
};

#define TIMER_TAG UINT64_MAX
#define POLL_TAG (UINT64_MAX - 1)
/* Without pidfd_open (kernels before 5.3, valgrind 3.19) holder death is
 * noticed by checking /proc at this period instead of at once. */
#define POLL_PERIOD_MS 10

#endif
