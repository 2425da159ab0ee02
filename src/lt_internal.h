/* SPDX-License-Identifier: MIT */
/* Internals of the lock table shared by its source files (locktable.c:
 * tree and requests; lt_holders.c: holder records and claims; lt_expiry.c:
 * deadlines, release and reaping). Every function here expects t->mu held.
 * Not for use outside the lock table. */
#ifndef LOCKFS_LT_INTERNAL_H
#define LOCKFS_LT_INTERNAL_H

#include <pthread.h>
#include <stddef.h>

#include "heap.h"
#include "htab.h"
#include "locktable.h"

#define container_of(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))

/* A process holding one or more locks; one pidfd watched per process. */
struct holder {
        struct hlink by_pid;     /* t->holders, hash of the pid */
        struct proc_id proc;
        uid_t uid;
        gid_t gid;
        char comm[HOLDER_COMM_MAX];
        char *cmdline;           /* malloc'd, never NULL */
        int pidfd;               /* -1: no pidfds here, polled instead */
        unsigned refs;           /* locks held; 0: idle (kept for its next lock) */
        struct node *locks;      /* list through node->hl_next */
        struct holder *idle_prev, *idle_next; /* t->idle, while refs == 0 */
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
        /* small fields together, so the struct packs tightly */
        enum lt_kind kind;
        uid_t uid;               /* dir creator; lock holder or detached creator */
        gid_t gid;
        enum lock_how how;       /* locks */
        uint32_t ttl_s;
        pid_t claim_ignored_pid;
        uid_t charged_uid;       /* counted in t->uid_counts as this uid (charged) */
        uint32_t n_children;     /* directories */
        uint32_t n_aliases;      /* other names of this lock */
        uint32_t content_len;    /* at most max_content (16 MiB) */
        uint32_t content_cap;
        bool linked;             /* in the tree; false once released/removed */
        bool liveness_known;
        bool charged;
        bool lost;               /* local lock whose backing the store lost */
        /* a second name of a lock (link(2)): target is the lock; such a node
         * is in the tree but not in t->inodes */
        struct node *target;
        struct node *alias_next; /* target->aliases list */
        /* directories */
        struct node *children;   /* list through sib_next/sib_prev */
        struct node *sib_prev, *sib_next;
        /* locks */
        uint64_t fence;
        struct holder *holder;   /* NULL when detached */
        struct node *hl_prev, *hl_next;   /* holder's locks */
        struct node *all_prev, *all_next; /* every held lock */
        int64_t acquired_ms;     /* wall clock */
        int64_t renewed_ms;      /* wall clock */
        struct heap_entry deadline; /* monotonic ms */
        char *content;
        struct node *aliases;    /* other names of this lock */
        struct lt_remote *remote; /* held through another host's daemon (lt_remote.c) */
        /* flock(2), SPEC §7 */
        uint64_t parent_was;     /* parent's inode while linked (for a late flock) */
        uint64_t flock_owner;    /* open file description holding the flock, 0 = none */
        struct lt_waiter *wq_head, *wq_tail; /* parked LOCK_EX requests, FIFO */
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

/* A parked flock(LOCK_EX) request, owned by the table until granted or
 * cancelled. */
struct lt_waiter {
        struct hlink by_id;      /* t->waiters */
        uint64_t id;             /* the fs layer's name for the request */
        uint64_t owner;          /* its open file description */
        struct caller who;       /* who becomes the holder */
        struct node *n;
        struct lt_waiter *prev, *next;
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
        struct locktable_config cfg;
        struct store *store;
        bool closing;            /* locktable_free(): releases are not recorded */
        struct htab inodes;
        struct htab names;
        struct htab holders;
        struct node *root;
        struct node *all_locks;
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
        struct lt_grant *grants; /* owed replies, see lt_unlock() */
        size_t n_grants, cap_grants;
        lt_grant_fn grant_fn;
        void *grant_ctx;
        uint64_t sync_gen;       /* current listing of the shared store (lt_remote.c) */
        struct holder *idle_head, *idle_tail; /* idle holders, newest first */
        size_t n_idle;
};

#define TIMER_TAG UINT64_MAX
#define POLL_TAG (UINT64_MAX - 1)
/* Without pidfd_open (kernels before 5.3, valgrind 3.19) holder death is
 * noticed by checking /proc at this period instead of at once. */
#define POLL_PERIOD_MS 10

/* locktable.c: the tree. */
/* A new node (a fresh inode number), not in the tree yet; NULL without
 * memory. */
struct node *lt_node_new(struct locktable *t, enum lt_kind kind, const char *name);
/* Put n into directory dir under n->name. */
void lt_node_link(struct locktable *t, struct node *dir, struct node *n);
/* The node named name in dir, as stored: possibly an alias. */
struct node *lt_name_get(struct locktable *t, const struct node *dir, const char *name);
/* Count linked lock n as held (the list of every held lock). */
void lt_lock_list_add(struct locktable *t, struct node *n);
/* The node with inode number ino (also a lock already released while the
 * kernel still knows it), or NULL. */
struct node *lt_node_by_ino(struct locktable *t, uint64_t ino);
/* Remove every other name of lock n (reporting each for the kernel). */
void lt_drop_aliases(struct locktable *t, struct node *n, struct removals *report);
/* Queue "name in parent is gone (inode ino)" for the kernel. */
void lt_report(struct removals *report, uint64_t parent, uint64_t ino, const char *name);
void lt_node_unlink(struct locktable *t, struct node *n);
/* Free n when it is out of the tree and the kernel forgot it. */
void lt_node_maybe_free(struct locktable *t, struct node *n);
/* "/a/b/name" of a linked node, malloc'd; NULL on allocation failure. */
char *lt_node_path(const struct node *n);

/* lt_restore.c: the directory holding path (made as needed, by uid/gid,
 * unchecked names) and the last name of path in *name (pointing into
 * path). -ENOTDIR when a lock is in the way, -ENOMEM. */
int lt_dir_of(struct locktable *t, const char *path, uid_t uid, gid_t gid, struct node **ret,
              const char **name);

/* lt_remote.c: free n's remote record (n->remote NULL after). */
void lt_remote_free(struct node *n);

/* Take lock n out of the tree without telling the store: report its names,
 * drop holder, quota, deadline and content. */
void lt_lock_remove(struct locktable *t, struct node *n, struct removals *report);

/* Set lock n's acquisition fields from v: fence, how, liveness, times,
 * TTL and ignored claim (not holder, uid, content or deadline). */
void lt_lock_set_from_view(struct node *n, const struct lock_view *v);

/* Tell the store the current state of lock n (logged on failure). */
void lt_store_update(struct locktable *t, const struct node *n);

/* lt_holders.c: holder records, one per process, refcounted by locks. */
/* Epoll tag of a holder: pid (22 bits) and start time. */
uint64_t lt_holder_key(const struct proc_id *p);
struct holder *lt_holder_find(struct locktable *t, const struct proc_id *p);
/* A counted reference to c's holder record, created (and its death
 * watched) on first use. -ESRCH when the process is gone. */
int lt_holder_ref(struct locktable *t, const struct caller *c, struct holder **ret);
/* Free an idle holder (its process died, or the table goes). */
void lt_holder_forget_idle(struct locktable *t, struct holder *h);
/* Make h (one reference, already taken) the holder of lock n. */
void lt_attach_holder(struct node *n, struct holder *h);
/* Drop n's holder (and its reference); a no-op for detached locks. */
void lt_detach_holder(struct locktable *t, struct node *n);
/* True when c may act as the holder of n: the holder process or one of its
 * descendants. Nobody is the holder of a detached lock (only the handle
 * that created it may write). */
bool lt_is_holder(const struct node *n, const struct caller *c);
/* True when c may release n by unlink without force: the holder, or for a
 * detached lock its creator's uid (SPEC R3.3a, R3.5). */
bool lt_may_release(const struct node *n, const struct caller *c);
/* Apply a pid claim written by c into n (SPEC R3.3, R3.3a). */
void lt_apply_claim(struct locktable *t, struct node *n, const struct caller *c, pid_t pid);

/* CREATE of name in parent under the lock (see locktable_create), without
 * counting a kernel lookup; the lock is stored in *ret. */
int lt_create(struct locktable *t, uint64_t parent, const char *name, const struct caller *c,
              int flags, struct node **ret, struct lt_handle *ret_handle);

/* Make c the holder of linked lock n as a new acquisition: new fence,
 * times, default TTL, empty content, no flock (SPEC R5.4). how applies when
 * c's pid is known (else the lock is detached). 0 or -errno (n unchanged). */
int lt_take(struct locktable *t, struct node *n, const struct caller *c, enum lock_how how);

/* lt_quota.c: held locks per uid. */
/* -EDQUOT when uid may not hold one more lock than now (n would be it). */
int lt_quota_check(struct locktable *t, const struct node *n, uid_t uid);
/* Count held lock n for n->uid (moving it from the uid it was counted
 * for); uncharge when it is released. */
void lt_quota_charge(struct locktable *t, struct node *n);
void lt_quota_uncharge(struct locktable *t, struct node *n);
void lt_quota_free(struct locktable *t);

/* lt_flock.c: flock(2) waiters. */
/* Hand n to its first live waiter instead of releasing it; false when no
 * waiter could take it (the caller then releases n). */
bool lt_handoff(struct locktable *t, struct node *n);
/* Drop all of n's waiters, owing each the reply err. */
void lt_drop_waiters(struct locktable *t, struct node *n, int err);
/* Owe a reply to parked request id. */
void lt_owe_grant(struct locktable *t, uint64_t id, int err, const struct node *n);
/* Unlock t->mu and deliver the replies owed meanwhile (outside the lock). */
void lt_unlock(struct locktable *t);

/* lt_holders.c */
void lt_holder_unref(struct locktable *t, struct holder *h);

/* lt_expiry.c: deadlines and release. */
/* Restart n's TTL from now (renewal); a TTL of 0 unqueues it. */
void lt_renew(struct locktable *t, struct node *n);
/* Make n's TTL end at CLOCK_MONOTONIC ms key; 0 unqueues it. */
void lt_set_deadline(struct locktable *t, struct node *n, int64_t key);
/* Release lock n for cause; with report, queue its name for the kernel. */
void lt_release(struct locktable *t, struct node *n, enum release_cause cause,
                struct removals *report);

#endif
