/* SPDX-License-Identifier: MIT */
/* Internals of the lock table shared by its source files (locktable.c:
 * tree and requests; lt_holders.c: holder records and claims; lt_expiry.c:
 * deadlines, release and reaping; lt_outbox.c: store calls made outside
 * the mutex). Every function here expects t->mu held unless it says
 * otherwise. Not for use outside the lock table.
 *
 * The mutex rule: nothing that another process can stall runs under t->mu
 * (no /proc read, no pidfd_open, no kernel notification, no store or etcd
 * call, no parse of user content). Callers are identified before the
 * mutex is taken; what a request needs of other processes (a pidfd, a
 * claimed process's identity) is prepared outside it and checked cheaply
 * under it (positive LT_NEED_* codes ask the public function to prepare
 * and call again); store calls are queued and made by lt_flush(). */
#ifndef LOCKFS_LT_INTERNAL_H
#define LOCKFS_LT_INTERNAL_H

#include <pthread.h>
#include <stddef.h>

#include "heap.h"
#include "htab.h"
#include "locktable.h"

#include "container_of.h"

/* A place in t->order, the held locks oldest first (lt_cursor.c): a lock's
 * own link, or a status reader's cursor, which stays put when locks around
 * it go. */
struct lt_olink {
        struct lt_olink *prev, *next;
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
        struct lt_waiter *waits; /* parked flock requests it would hold for */
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
        uint32_t charged_bytes;  /* content bytes counted for charged_uid */
        uint32_t n_children;     /* directories */
        uint32_t n_aliases;      /* other names of this lock */
        uint32_t content_len;    /* at most max_content (16 MiB) */
        uint32_t content_cap;
        uint32_t content_gen;    /* changes with every change of content */
        bool linked;             /* in the tree; false once released/removed */
        bool liveness_known;
        bool charged;
        bool lost;               /* local lock whose backing the store lost */
        bool busy;               /* its acquisition waits for the store: other
                                  * requests wait (lt_wait_settled), releases
                                  * are deferred to the answer (doomed) */
        uint8_t doomed;          /* 1 + release_cause to apply once settled */
        uint32_t renaming;       /* directories: renames in flight of names in
                                  * it; no name is taken in it meanwhile */
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
        struct lt_olink order;   /* t->order, while held (lt_cursor.c) */
        uint64_t order_seq;      /* its place: larger = added later */
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
        struct holder *h;        /* who's record, referenced while parked */
        struct node *n;
        struct lt_waiter *prev, *next;
        struct lt_waiter *h_prev, *h_next; /* h->waits */
};

/* A store call queued under the table mutex and made by lt_flush() outside
 * it (lt_outbox.c). */
enum lt_op_kind { LT_OP_ACQUIRE, LT_OP_UPDATE, LT_OP_RELEASE, LT_OP_PUT_DIR, LT_OP_REMOVE_DIR };

struct lt_op;
/* Runs under t->mu once the store answered op (op->err, op->fence). */
typedef void (*lt_op_done_fn)(struct locktable *t, struct lt_op *op);

struct lt_op {
        struct lt_op *next;
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

/* Positive answers of internal steps: prepare this outside the mutex,
 * then call again. */
#define LT_NEED_PROC 2
#define LT_NEED_SETTLED 3

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
        struct lt_op *ops_head, *ops_tail; /* queued store calls */
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
        struct lt_olink order;   /* held locks in the order added, and cursors */
        uint64_t order_seq;      /* the last lock's order_seq */
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
/* A copy of lock n's status (with its content) into v; -ENOMEM. */
int lt_lock_view(const struct node *n, struct lock_view *v);
/* "/a/b/name" of a linked node, malloc'd; NULL on allocation failure. */
char *lt_node_path(const struct node *n);

/* lt_cursor.c: the list of held locks status readers walk. lt_order_init
 * prepares an empty list (locktable_new); lt_order_add appends a lock
 * just counted as held (lt_lock_list_add), lt_order_remove takes out one
 * that leaves (lt_lock_remove). */
void lt_order_init(struct locktable *t);
void lt_order_add(struct locktable *t, struct node *n);
void lt_order_remove(struct node *n);

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

/* Queue the current state of lock n for the store (logged on failure). */
void lt_store_update(struct locktable *t, const struct node *n);

/* lt_holders.c: holder records, one per process, refcounted by locks. */
/* Epoll tag of a holder: pid (22 bits) and start time. */
uint64_t lt_holder_key(const struct proc_id *p);
struct holder *lt_holder_find(struct locktable *t, const struct proc_id *p);
/* A counted reference to c's holder record. A record the table lacks is
 * made from prep (its pidfd is consumed); without a ready prep the answer
 * is LT_NEED_PROC. -ESRCH when the process is gone or reaped, -EAGAIN when
 * c lacks its cmdline and the table has none to reuse. */
int lt_holder_ref(struct locktable *t, const struct caller *c, struct lt_prep *prep,
                  struct holder **ret);
/* True when h's process is known to have died (a readable pidfd): a cheap
 * check, no /proc read. */
bool lt_holder_dead(struct holder *h);
/* Free an idle holder (its process died, or the table goes). */
void lt_holder_forget_idle(struct locktable *t, struct holder *h);
/* Make h (one reference, already taken) the holder of lock n. */
void lt_attach_holder(struct node *n, struct holder *h);
/* Drop n's holder (and its reference); a no-op for detached locks. */
void lt_detach_holder(struct locktable *t, struct node *n);
/* True when c may act as the holder of n: the holder process, or one of
 * its descendants running as the lock's uid (SPEC R3.4). Nobody is the
 * holder of a detached lock (only the handle that created it may write). */
bool lt_is_holder(const struct node *n, const struct caller *c);
/* True when c may release n by unlink without force: the holder, or for a
 * detached lock its creator's uid (SPEC R3.3a, R3.5). */
bool lt_may_release(const struct node *n, const struct caller *c);
/* A pid claim found in content written by c, prepared outside the mutex
 * (lt_claim_prepare) and applied under it (lt_apply_claim). */
struct lt_claim {
        pid_t pid;               /* what the content claims; 0 = detach */
        bool valid;              /* who is the claimed process, allowed for c */
        struct proc_id who;
        struct caller *proc;     /* its identity (when not c itself), malloc'd */
        struct lt_prep prep;     /* its pidfd */
};
/* Identify the process claimed by pid for writer c (its /proc, outside the
 * mutex): it must be c or an ancestor of c, running as c's uid unless c is
 * root (SPEC R3.3). */
void lt_claim_prepare(struct lt_claim *cl, const struct caller *c, pid_t pid);
void lt_claim_done(struct lt_claim *cl);
/* Apply claim cl written by c into n (SPEC R3.3, R3.3a): the lock keeps
 * c's uid and gid. LT_NEED_PROC when c's own record needs a pidfd. */
int lt_apply_claim(struct locktable *t, struct node *n, const struct caller *c,
                   struct lt_claim *cl, struct lt_prep *self_prep);

/* CREATE of name in parent under the lock (see locktable_create), without
 * counting a kernel lookup; the lock is stored in *ret. A new acquisition
 * is answered through *ret_op (see lt_take; then lt_acquired), else
 * *ret_op is NULL. LT_NEED_SETTLED: the name's acquisition is with the
 * store (wait, then call again); LT_NEED_PROC: see lt_holder_ref. */
int lt_create(struct locktable *t, uint64_t parent, const char *name, const struct caller *c,
              int flags, struct lt_prep *prep, struct node **ret, struct lt_handle *ret_handle,
              struct lt_op **ret_op);
/* After lt_unlock(), with t->mu held again: the answer to acquisition op
 * of lock n made by lt_create (n was pinned with one lookup, dropped on
 * failure); sets h->fence; frees op. 0 or the store's -errno. */
int lt_acquired(struct locktable *t, struct node *n, struct lt_op *op, struct lt_handle *h);

/* Make c the holder of linked lock n as a new acquisition (SPEC R5.4), in
 * two steps. Now: c's holder record (prep: see lt_holder_ref), quota,
 * times, default TTL, empty content and no flock; n->fence 0 and n->busy
 * until the store answered the acquisition queued here. Then done(t, op)
 * runs under the lock with op->arg = arg: it must call lt_take_settle().
 * With waited, the requester reads op's answer after lt_unlock() and frees
 * op (*ret). how applies when c's pid is known (else the lock is
 * detached). 0, LT_NEED_PROC, or -errno (n unchanged). */
int lt_take(struct locktable *t, struct node *n, const struct caller *c, enum lock_how how,
            struct lt_prep *prep, lt_op_done_fn done, void *arg, bool waited,
            struct lt_op **ret);
/* The store answered acquisition op of lock n: on success n gets its fence
 * and TTL, is counted, and a release deferred meanwhile happens now
 * (returns 0); on failure returns op->err and n is left for the caller to
 * remove or hand on (its holder and quota dropped). */
int lt_take_settle(struct locktable *t, struct node *n, struct lt_op *op);
/* The done() of a create: settle, and on failure remove the name. */
void lt_create_done(struct locktable *t, struct lt_op *op);

/* lt_outbox.c: store calls, queued under t->mu (see the file's contract). */
struct lt_op *lt_op_update(struct locktable *t, const struct node *n);
/* Queue an acquisition of v (taken over: v is cleared by the op). */
int lt_op_acquire(struct locktable *t, const struct lock_view *v, lt_op_done_fn done, void *arg,
                  bool waited, struct lt_op **ret);
void lt_op_release(struct locktable *t, const struct node *n);
struct lt_op *lt_op_put_dir(struct locktable *t, const struct node *n, lt_op_done_fn done,
                            void *arg);
void lt_op_remove_dir(struct locktable *t, const struct node *n);
void lt_op_free(struct lt_op *op);
/* True when a call queued so far is not made yet. */
bool lt_flush_needed(const struct locktable *t);
/* Make every queued call (see the file's contract). Call without t->mu. */
void lt_flush(struct locktable *t);
/* Wait (releasing t->mu) until some busy lock settles; the caller must
 * look its nodes up again afterwards. */
void lt_wait_settled(struct locktable *t);
/* The full view persistent stores record of lock n (content, parent, start
 * time, deadline, other names). 0 or -ENOMEM. */
int lt_store_view(const struct node *n, struct lock_view *v);

/* Prepare a pidfd for process p (call without t->mu); lt_prep_done closes
 * what was not consumed. */
void lt_prep_proc(struct lt_prep *prep, const struct proc_id *p);
void lt_prep_done(struct lt_prep *prep);

/* lt_quota.c: what each uid has made (see the file's contract). */
/* -EDQUOT when uid may not have more nodes (locks, names, directories)
 * than now (root never gets it). */
int lt_quota_room(struct locktable *t, uid_t uid, uint64_t more);
/* -EDQUOT when uid may not take lock n (with its other names) as well. */
int lt_quota_check(struct locktable *t, const struct node *n, uid_t uid);
/* -EDQUOT when lock n's content may not grow to len bytes. */
int lt_quota_content_check(struct locktable *t, const struct node *n, size_t len);
/* Count node n (a lock with its other names, a second name, a directory)
 * for the uid it belongs to, moving it from the uid it was counted for;
 * uncharge when it goes (a lock's other names with it). */
void lt_quota_charge(struct locktable *t, struct node *n);
void lt_quota_uncharge(struct locktable *t, struct node *n);
/* After n->content_len changed: count its content anew. */
void lt_quota_content(struct locktable *t, struct node *n);
void lt_quota_free(struct locktable *t);

/* lt_flock.c: flock(2) waiters. */
/* Hand n to its first live waiter instead of releasing it; false when no
 * waiter could take it (the caller then releases n). */
bool lt_handoff(struct locktable *t, struct node *n);
/* Cancel parked request w, owing it the reply err. */
void lt_waiter_cancel(struct locktable *t, struct lt_waiter *w, int err);
/* Drop all of n's waiters, owing each the reply err. */
void lt_drop_waiters(struct locktable *t, struct node *n, int err);
/* Owe a reply to parked request id. */
void lt_owe_grant(struct locktable *t, uint64_t id, int err, const struct node *n);
/* Unlock t->mu and deliver the replies and removals owed meanwhile
 * (outside the lock). */
void lt_deliver(struct locktable *t);
/* lt_deliver(), then make the store calls queued meanwhile (lt_flush). */
void lt_unlock(struct locktable *t);

/* lt_holders.c */
void lt_holder_unref(struct locktable *t, struct holder *h);
/* h's process died (see lt_expiry.c reap_holder). */
void lt_holder_reaped(struct locktable *t, struct holder *h);

/* lt_expiry.c: deadlines and release. */
/* Restart n's TTL from now (renewal); a TTL of 0 unqueues it. */
void lt_renew(struct locktable *t, struct node *n);
/* n's deadline key (monotonic ms), 0 when it has none. */
int64_t lt_deadline_key(const struct node *n);
/* A lock's renewal time and deadline, to put back when a change that
 * renewed it is not recorded. */
struct lt_renewal {
        int64_t renewed_ms, deadline;
};
struct lt_renewal lt_renewal_of(const struct node *n);
void lt_renewal_restore(struct locktable *t, struct node *n, struct lt_renewal r);
/* Make n's TTL end at CLOCK_MONOTONIC ms key; 0 unqueues it. */
void lt_set_deadline(struct locktable *t, struct node *n, int64_t key);
/* Release lock n for cause; with report, queue its name for the kernel. */
void lt_release(struct locktable *t, struct node *n, enum release_cause cause,
                struct removals *report);

#endif
