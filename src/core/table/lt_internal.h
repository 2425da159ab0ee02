/* SPDX-License-Identifier: MIT */
/* Internals of the lock table, shared by its source files only (and its
 * unit tests). The files form layers; each calls only the layers below it
 * and, within its own layer, files listed above it (lt_outbox.c uses
 * lt_view.c), so no two files call each other, directly or through others:
 *
 *   L0  lt_quota.c     per-uid accounting              (calls no table file)
 *       lt_deadline.c  TTL deadlines and the timerfd
 *       lt_deliver.c   replies and removals owed outside the mutex
 *   L1  lt_tree.c      nodes, names, attributes, other names, paths
 *       lt_holders.c   holder records, one per process, and pid claims
 *   L2  lt_view.c      the one mapping node <-> lock_view (+ stored record)
 *       lt_outbox.c    store calls queued under the mutex, made outside it
 *   L3  lt_waitq.c     parked flock and F_SETLK(W) requests
 *       lt_share.c     the other holders of a shared lock (R7.3)
 *       lt_cursor.c    the held locks in order, and status readers' cursors
 *   L4  lt_lock.c      acquisition, release, hand-off (release -> handoff ->
 *                      take is the only recursion, inside this file), and
 *                      recording a change while waiting for the store
 *   L5  locktable.c    setup, lookups, create, open, listings, views
 *       lt_write.c     write and setattr (content, renewal, claims)
 *       lt_names.c     link, unlink, break, rename, mkdir, rmdir
 *       lt_flock.c     flock and record-lock requests (and who becomes
 *                      their holder)
 *       lt_reap.c      holder deaths and TTL deadlines (the reaper)
 *       lt_remote.c    a shared store's view (cluster mode)
 *       lt_restore.c   rebuilding the table from its store at start
 *
 * Their data is in lt_types.h; each file's calls are declared below under
 * its layer, the public ones (locktable.h) are the L5 files' and L0-L3's
 * locktable_* helpers (locktable_quota_usage, locktable_cursor_*).
 *
 * Lock context: every function below expects t->mu held and returns with
 * it held, unless its comment says otherwise ("without t->mu", "lets go of
 * t->mu meanwhile", "unlocks t->mu").
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

#include <fcntl.h>

#include "lock_limits.h"
#include "lt_types.h"

/* Positive answers of internal steps: prepare this outside the mutex,
 * then call again. Apart from the public positive answers (LT_PARKED,
 * LT_NEED_CMDLINE, LT_NEED_LINEAGE in locktable.h). */
#define LT_NEED_PROC 16
#define LT_NEED_SETTLED 17
#define LT_NEED_PARSE 18
/* Let go of t->mu (making the store calls queued meanwhile), then call
 * again: the request changed the lock itself first. */
#define LT_NEED_FLUSH 19

/* The handle an open file of lock n gets: its acquisition, O_APPEND from
 * flags. Plain data; any lock context. */
static inline struct lt_handle lt_handle_of(const struct node *n, enum lt_handle_kind kind,
                                            int flags) {
        return (struct lt_handle){ .kind = kind, .ino = n->ino, .fence = n->fence,
                                   .append = (flags & O_APPEND) != 0 };
}

/* What holds lock n through a lock API (SPEC §7): a flock, a record lock,
 * or both when its holder took both, each shared or not (R7.3). Plain
 * data; with t->mu held. */
#define LT_REF_FLOCK 1u
#define LT_REF_POSIX 2u
static inline void lt_lock_ref_set(struct node *n, const struct lt_lock_req *rq) {
        unsigned bit = rq->posix ? LT_REF_POSIX : LT_REF_FLOCK;
        if (rq->posix) {
                n->posix_owner = rq->owner;
                n->posix_file = rq->file;
        } else {
                n->flock_owner = rq->owner;
        }
        n->refs_shared = (uint8_t)(rq->shared ? n->refs_shared | bit : n->refs_shared & ~bit);
}

static inline void lt_lock_refs_clear(struct node *n) {
        n->flock_owner = n->posix_owner = n->posix_file = 0;
        n->refs_shared = 0;
}

/* The handle kind an open by flags gets: a reader for a read-only open,
 * else writer. */
static inline enum lt_handle_kind lt_open_kind(int flags, enum lt_handle_kind writer) {
        return (flags & O_ACCMODE) == O_RDONLY ? LT_HANDLE_READER : writer;
}

/* ==== L0: lt_quota.c: what each uid has made (see the file's contract).
 * All with t->mu held. ==== */
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
/* At locktable_free (no other thread uses t). */
void lt_quota_free(struct locktable *t);

/* ==== L0: lt_deadline.c: TTL deadlines on a timerfd. All with t->mu held. ==== */
/* Make n's TTL end at CLOCK_MONOTONIC ms key; 0 unqueues it. */
void lt_set_deadline(struct locktable *t, struct node *n, int64_t key);
/* n's deadline key (monotonic ms), 0 when it has none. Any lock context
 * that keeps n. */
int64_t lt_deadline_key(const struct node *n);
/* The TTL a lock gets when its holder asked for none of its own (no
 * "ttl_s" in its content), SPEC R5.3: the mount's default for a detached
 * lock (no holder process whose liveness is watched, R3.3a, R3.5), the
 * holder TTL (0 by default: none) for a lock whose holder is a live,
 * watched process. Remote locks keep the TTL their host gave them. */
uint32_t lt_ttl_default(const struct locktable *t, bool detached);
/* The deadline key a TTL of ttl_s set now has; 0 for no TTL. */
int64_t lt_deadline_from_now(uint32_t ttl_s);
/* Restart n's TTL from now (renewal); a TTL of 0 unqueues it. */
void lt_renew(struct locktable *t, struct node *n);
/* A lock's renewal time and deadline, to put back when a change that
 * renewed it is not recorded. */
struct lt_renewal {
        int64_t renewed_ms, deadline;
};
struct lt_renewal lt_renewal_of(const struct node *n);
void lt_renewal_restore(struct locktable *t, struct node *n, struct lt_renewal r);
/* The timerfd fired: arm it anew for the earliest deadline left. */
void lt_deadline_rearm(struct locktable *t);

/* ==== L0: lt_deliver.c: what is owed outside the mutex. With t->mu held
 * unless stated. ==== */
/* Queue "name in parent is gone (inode ino)" for the kernel; a NULL report
 * is a no-op. Any lock context that owns report. */
void lt_report(struct removals *report, uint64_t parent, uint64_t ino, const char *name);
/* Report each removal through fn (when set) and free the list. Call
 * without t->mu. */
void lt_removals_report(struct removals *gone, lt_removed_fn fn, void *ctx);
/* Owe parked request id the reply err, with handle h when err is 0. */
void lt_owe_grant(struct locktable *t, uint64_t id, int err, const struct lt_handle *h);
/* Unlock t->mu and deliver the replies and removals owed meanwhile
 * (outside the lock). Unlocks t->mu. */
void lt_deliver(struct locktable *t);

/* ==== L1: lt_tree.c: nodes and names. With t->mu held unless stated. ==== */
/* A new node (a fresh inode number), not in the tree yet; NULL without
 * memory. */
struct node *lt_node_new(struct locktable *t, enum lt_kind kind, const char *name);
/* The root directory of a new table, in t->inodes; -ENOMEM. */
int lt_root_new(struct locktable *t);
/* Free every node (locktable_free: nobody uses t any more). */
void lt_nodes_free(struct locktable *t);
/* Put n into directory dir under n->name. */
void lt_node_link(struct locktable *t, struct node *dir, struct node *n);
void lt_node_unlink(struct locktable *t, struct node *n);
/* Free n when it is out of the tree and the kernel forgot it. */
void lt_node_maybe_free(struct locktable *t, struct node *n);
/* The node named name in dir, as stored: possibly an alias. */
struct node *lt_name_get(struct locktable *t, const struct node *dir, const char *name);
/* The directory or lock named name in dir (an alias resolves to its lock). */
struct node *lt_child_get(struct locktable *t, const struct node *dir, const char *name);
/* The node with inode number ino (also a lock already released while the
 * kernel still knows it), or NULL. */
struct node *lt_node_by_ino(struct locktable *t, uint64_t ino);
/* "/a/b/name" of a linked node, malloc'd; NULL on allocation failure.
 * Any lock context that keeps n linked. */
char *lt_node_path(const struct node *n);
/* Path components from the root to n. */
unsigned lt_node_depth(const struct node *n);
/* True for the inodes of the files in .lockfs. No lock needed. */
bool lt_ino_is_meta_file(uint64_t ino);
/* True when name in dir is the .lockfs directory. */
bool lt_name_is_meta(const struct node *dir, const char *name);
/* The directory ino, or -ENOENT/-ENOTDIR/-EACCES (inside .lockfs or a
 * directory lock). */
int lt_dir_get(struct locktable *t, uint64_t ino, struct node **ret);
/* The directory parent for removing name from it: -EACCES for .lockfs. */
int lt_dir_for_removal(struct locktable *t, uint64_t parent, const char *name,
                       struct node **ret);
/* -ENOENT for an empty name, -ENAMETOOLONG. No lock needed. */
int lt_name_check(const char *name);
/* Checks for a new node named name in dir: -ENAMETOOLONG, -ENOSPC. */
int lt_room_check(struct locktable *t, const struct node *dir, const char *name);
/* Attributes of node n, and of the .lockfs directory and files. */
void lt_fill_attr(const struct node *n, struct lt_attr *a);
/* True when lock n reads back as its content: it is held and its own name
 * matches the mount's raw globs (SPEC R4.4a). */
bool lt_is_raw(const struct locktable *t, const struct node *n);
/* True when n is a directory lock (SPEC R7.5): a lock taken by mkdir,
 * presented as an empty directory. Any lock context that keeps n. */
bool lt_is_dirlock(const struct node *n);
/* True when mkdir of name makes a directory lock (the dirlocks globs). No
 * lock needed. */
bool lt_dirlock_name(const struct locktable *t, const char *name);
/* lt_fill_attr, and for a raw lock its content's length as the size. */
void lt_fill_lock_attr(const struct locktable *t, const struct node *n, struct lt_attr *a);
void lt_fill_meta_attr(uint64_t ino, struct lt_attr *a);
/* A new directory name in dir made by uid/gid: linked, counted and charged;
 * NULL without memory. */
struct node *lt_dir_new(struct locktable *t, struct node *dir, const char *name, uid_t uid,
                        gid_t gid);
/* Take empty directory n out of the tree (uncharged, uncounted; freed when
 * the kernel forgot it too, by the caller's lt_node_maybe_free). */
void lt_dir_remove(struct locktable *t, struct node *n);
/* Give lock n one more name, name (copied) in dir, charged to the lock's
 * uid; -ENOMEM, nothing changed. The name's node goes to *ret (if set). */
int lt_alias_add(struct locktable *t, struct node *n, struct node *dir, const char *name,
                 struct node **ret);
/* Swap the places (directory and name) of lock n and its other name a. */
void lt_alias_swap(struct locktable *t, struct node *n, struct node *a);
/* Take other name a of its lock off the tree and free it. */
void lt_alias_remove(struct locktable *t, struct node *a);
/* Remove every other name of lock n (reporting each for the kernel). */
void lt_drop_aliases(struct locktable *t, struct node *n, struct removals *report);
/* One name of several taken off a lock, and what puts it back. */
struct name_change {
        struct node *n, *a;      /* the lock; the node of the name that goes */
        struct list *a_prev;     /* what a followed in n->aliases (maybe the head) */
        struct node *n_dir, *a_dir;
        char *n_name;            /* n's own name, when n moved to a's */
};
/* Take raw's name off its lock (raw: a lock with other names, or one of
 * them). When raw is the lock's own name, the lock moves to the name of
 * its first other name, whose node goes. name_rehook puts it back;
 * name_drop makes it final. */
void lt_name_unhook(struct locktable *t, struct node *raw, struct name_change *u);
void lt_name_rehook(struct locktable *t, const struct name_change *u);
void lt_name_drop(struct locktable *t, const struct name_change *u);
/* Free n's remote record (n->remote NULL after). */
void lt_remote_free(struct node *n);
/* The directory holding path (made as needed, by uid/gid, unchecked names)
 * and the last name of path in *name (pointing into path). -ENOTDIR when a
 * lock is in the way, -ENOMEM. */
int lt_dir_of(struct locktable *t, const char *path, uid_t uid, gid_t gid, struct node **ret,
              const char **name);
/* The node named by path (a lock, an alias's target, or a directory), or
 * NULL. Never creates anything. */
struct node *lt_node_at(struct locktable *t, const char *path);
/* A path from a store is "/a/b/name": components that are real names (not
 * empty, ".", "..", too long) and not .lockfs at the top. No lock needed. */
bool lt_remote_path_ok(const char *path);

/* ==== L1: lt_holders.c: holder records, one per process, and claims.
 * With t->mu held unless stated. ==== */
/* Epoll tag of a holder: pid (22 bits) and start time; and back. */
uint64_t lt_holder_key(const struct proc_id *p);
struct proc_id lt_holder_key_proc(uint64_t key);
struct holder *lt_holder_find(struct locktable *t, const struct proc_id *p);
/* A counted reference to c's holder record. A record the table lacks is
 * made from prep (its pidfd is consumed); without a ready prep the answer
 * is LT_NEED_PROC. -ESRCH when the process is gone or reaped,
 * LT_NEED_CMDLINE when c lacks its cmdline and the table has none to
 * reuse. */
int lt_holder_ref(struct locktable *t, const struct caller *c, struct lt_prep *prep,
                  struct holder **ret);
void lt_holder_unref(struct locktable *t, struct holder *h);
/* True when h's process is known to have died (a readable pidfd): a cheap
 * check, no /proc read. */
bool lt_holder_dead(struct holder *h);
/* h's process died: it is no longer watched, and freed at its last
 * reference. Takes a reference for the caller, who drops it
 * (lt_holder_unref) when done with h, and who cancels h's parked requests
 * (lt_waiter_cancel for each in h->waits). */
void lt_holder_reaped(struct locktable *t, struct holder *h);
/* Free every idle holder (locktable_free). */
void lt_holders_free_idle(struct locktable *t);
/* Make h (one reference, already taken) the holder of lock n. */
void lt_attach_holder(struct node *n, struct holder *h);
/* Drop n's holder (and its reference); a no-op for detached locks. */
void lt_detach_holder(struct locktable *t, struct node *n);
/* Drop n's holder and make h (one reference, already taken; NULL: none)
 * its holder instead. */
void lt_set_holder(struct locktable *t, struct node *n, struct holder *h);
/* True when c may act as the holder of n: the holder process, or one of
 * its descendants running as the lock's uid (SPEC R3.4). Nobody is the
 * holder of a detached lock (only the handle that created it may write).
 * No lock needed beyond keeping n. */
bool lt_is_holder(const struct node *n, const struct caller *c);
/* True when c may release n by unlink without force: the holder, or for a
 * detached lock its creator's uid (SPEC R3.3a, R3.5). */
bool lt_may_release(const struct node *n, const struct caller *c);
/* Prepare a pidfd for process p (without t->mu); lt_prep_done closes what
 * was not consumed. */
void lt_prep_proc(struct lt_prep *prep, const struct proc_id *p);
void lt_prep_done(struct lt_prep *prep);
/* A pid claim found in content written by c, prepared outside the mutex
 * (lt_claim_prepare) and applied under it (lt_apply_claim). */
struct lt_claim {
        pid_t pid;               /* what the content claims; 0 = detach */
        bool valid;              /* who is the claimed process, allowed for c */
        struct proc_id who;
        struct caller *proc;     /* its identity (when not c itself), malloc'd */
        struct lt_prep prep;     /* its pidfd */
};
/* Identify the process claimed by pid for writer c (its /proc; without
 * t->mu): it must be c, an ancestor of c or a descendant of c (its chain of
 * parents, start times checked, leads to c), running as c's uid unless c
 * is root, and not pid 1 (SPEC R3.3). */
void lt_claim_prepare(struct lt_claim *cl, const struct caller *c, pid_t pid);
void lt_claim_done(struct lt_claim *cl);
/* Apply claim cl written by c into n (SPEC R3.3, R3.3a): the lock keeps
 * c's uid and gid. LT_NEED_PROC when c's own record needs a pidfd. */
int lt_apply_claim(struct locktable *t, struct node *n, const struct caller *c,
                   struct lt_claim *cl, struct lt_prep *self_prep);

/* ==== L2: lt_view.c: the one mapping between a lock and its view. With
 * t->mu held (n must not change meanwhile). ==== */
/* A node and its view share the lock record (LOCK_RECORD_FIELDS,
 * lockview.h): the one list to extend when a lock gains a field. The
 * view's identity of the holder (pid, comm, cmdline, host), its path,
 * content, derived fields (detached, expires_at_ms) and the stores' extras
 * (parent_ino, start_time, deadline_mono_ms, aliases) are filled from the
 * node's holder, remote record, tree and deadline by lt_node_to_view. */
/* What lt_node_to_view copies beyond the record fields, the holder's
 * identity and the path (what status readers see). */
enum lt_view_parts {
        LT_VIEW_CONTENT = 1,      /* a copy of the content */
        LT_VIEW_STORE_EXTRAS = 2, /* what persistent stores need besides:
                                   * parent, start time, deadline, other
                                   * names, every sharer */
        LT_VIEW_PARTIES = 4,      /* its sharers and waiters, as many as
                                   * status lists */
};
/* Fill v from lock n (parts: an OR of enum lt_view_parts). 0 or -ENOMEM
 * (v cleared). */
int lt_node_to_view(const struct node *n, unsigned parts, struct lock_view *v);
/* Set n's record fields (LOCK_RECORD_FIELDS) from v. */
void lt_view_to_node(const struct lock_view *v, struct node *n);
/* v's derived fields from the rest: detached (no holder process here or
 * elsewhere) and expires_at_ms (renewal + TTL). */
void lt_view_derive(struct lock_view *v, bool detached);
/* A status copy of lock n with its content, sharers and waiters
 * (LT_VIEW_CONTENT | LT_VIEW_PARTIES). */
int lt_lock_view(const struct node *n, struct lock_view *v);
/* The full view persistent stores record of lock n (content, parent, start
 * time, deadline, other names). 0 or -ENOMEM. */
int lt_store_view(const struct node *n, struct lock_view *v);

/* ==== L2: lt_outbox.c: store calls, queued under t->mu (see its
 * contract). With t->mu held unless stated. ==== */
struct lt_op *lt_op_update(struct locktable *t, const struct node *n);
/* Queue an acquisition of v (taken over: v is cleared by the op). */
int lt_op_acquire(struct locktable *t, const struct lock_view *v, lt_op_done_fn done, void *arg,
                  bool waited, struct lt_op **ret);
void lt_op_release(struct locktable *t, const struct node *n);
struct lt_op *lt_op_put_dir(struct locktable *t, const struct node *n, lt_op_done_fn done,
                            void *arg);
void lt_op_remove_dir(struct locktable *t, const struct node *n);
/* Free op; any lock context that owns op. */
void lt_op_free(struct lt_op *op);
/* Free the calls still queued (locktable_free). */
void lt_ops_free(struct locktable *t);
/* Make every queued call (see the file's contract). Call without t->mu. */
void lt_flush(struct locktable *t);
/* Unlock t->mu, deliver what is owed (lt_deliver), then make the store
 * calls queued meanwhile (lt_flush). Unlocks t->mu. */
void lt_unlock(struct locktable *t);
/* Wait (letting go of t->mu meanwhile) until some busy lock settles; the
 * caller must look its nodes up again afterwards. */
void lt_wait_settled(struct locktable *t);

/* ==== L3: lt_waitq.c: parked flock and F_SETLKW requests. All
 * with t->mu held. ==== */
/* Park request rq (named rq->id) on n for c (who becomes the holder when
 * granted), whose holder record h (NULL for a caller whose pid is not
 * visible) is referenced by the waiter from now on. LT_PARKED or -ENOMEM. */
int lt_waiter_park(struct locktable *t, struct node *n, const struct lt_lock_req *rq,
                   const struct caller *c, struct holder *h);
/* n's first waiter, still queued, or NULL. */
struct lt_waiter *lt_waiter_first(const struct node *n);
/* Unqueue w and free it, dropping its holder reference (a grant is owed
 * by the caller, or not at all). */
void lt_waiter_free(struct locktable *t, struct lt_waiter *w);
/* Cancel parked request w, owing it the reply err. */
void lt_waiter_cancel(struct locktable *t, struct lt_waiter *w, int err);
/* Drop all of n's waiters, owing each the reply err. */
void lt_drop_waiters(struct locktable *t, struct node *n, int err);
/* Remove parked request id without a reply: the lock it waited on, or
 * NULL when unknown. */
struct node *lt_waiter_remove(struct locktable *t, uint64_t id);

/* ==== L3: lt_share.c: the holders of a shared lock besides its recorded
 * holder (see the file's contract). All with t->mu held. ==== */
/* The most holders a lock may have besides its recorded one: a request
 * beyond gets -ENOLCK (one user cannot make a lock's status unbounded). */
#define LT_SHARES_MAX LOCKFS_SHARES_MAX
/* The handle a share of n granted to rq gets: rq's own kind, a reader's or
 * a contender's (a share may not write the lock's content). */
struct lt_handle lt_share_handle(const struct node *n, const struct lt_lock_req *rq);
/* c shares lock n by request rq; h (c's record, NULL when c's pid is not
 * visible) is referenced by the share from now on. 0, -ENOMEM, -ENOLCK. */
int lt_share_add(struct locktable *t, struct node *n, const struct lt_lock_req *rq,
                 const struct caller *c, struct holder *h);
/* The share that is rq's hold for c, or NULL. */
struct lt_share *lt_share_of(const struct node *n, const struct lt_lock_req *rq,
                             const struct caller *c);
/* The first share taken through posix (else flock) with this owner and
 * file (0: any), as an unlock matches it; or NULL. */
struct lt_share *lt_share_find(const struct node *n, bool posix, uint64_t owner, uint64_t file);
/* n's oldest share, or NULL. */
struct lt_share *lt_share_first(const struct node *n);
/* End share s, dropping its holder reference. lt_share_end also records
 * the lock's new set of holders with the store (lt_share_add's callers do
 * the same with lt_share_record); lt_share_free is for a lock that goes or
 * is taken anew, which the store learns otherwise. */
void lt_share_free(struct locktable *t, struct lt_share *s);
void lt_share_end(struct locktable *t, struct lt_share *s);
/* Queue the store update of lock n's holders (its sharers changed); not
 * while its acquisition is with the store (n->fence 0): that answer
 * records them (handoff_done). */
void lt_share_record(struct locktable *t, const struct node *n);
/* End the shares of lock n that c's process holds (as lt_share_end):
 * false when it holds none. */
bool lt_shares_end_of(struct locktable *t, struct node *n, const struct caller *c);
/* End every share of lock n (lt_share_free); every share of holder h
 * (lt_share_end). */
void lt_shares_drop(struct locktable *t, struct node *n);
void lt_shares_drop_of(struct locktable *t, struct holder *h);
/* Shared lock n (settled) takes in the shared requests at the head of its
 * queue, owing each its grant; the first exclusive one stops it. */
void lt_shares_grant_waiting(struct locktable *t, struct node *n);

/* ==== L3: lt_cursor.c: the list of held locks status readers walk. All
 * with t->mu held. ==== */
/* lt_order_init prepares an empty list (locktable_new); lt_order_add
 * appends a lock just counted as held (lt_lock_list_add), lt_order_remove
 * takes out one that leaves (lt_lock_remove). */
void lt_order_init(struct locktable *t);
void lt_order_add(struct locktable *t, struct node *n);
void lt_order_remove(struct node *n);

/* ==== L4: lt_lock.c: acquisition, release and hand-off. With t->mu held
 * unless stated. ==== */
/* Make c the holder of linked lock n as a new acquisition (SPEC R5.4), in
 * two steps. Now: c's holder record (prep: see lt_holder_ref), quota,
 * times, default TTL, empty content and no flock; n->fence 0 and n->busy
 * until the store answered the acquisition queued here. Then done(t, op)
 * runs under the lock with op->arg = arg: it must call lt_take_settle().
 * With waited, the requester reads op's answer after lt_unlock() and frees
 * op (*ret). how applies when c's pid is known (else the lock is
 * detached). With sharer, c shares n already (a promotion, R7.3): its
 * quota is not checked (a live holder never loses its hold to it). 0,
 * LT_NEED_PROC or -errno (n unchanged). */
int lt_take(struct locktable *t, struct node *n, const struct caller *c, enum lock_how how,
            bool sharer, struct lt_prep *prep, lt_op_done_fn done, void *arg, bool waited,
            struct lt_op **ret);
/* The store answered acquisition op of lock n: on success n gets its fence
 * and TTL, is counted, and a release deferred meanwhile happens now
 * (returns 0); on failure returns op->err and n is left for the caller to
 * remove or hand on (its holder and quota dropped). */
int lt_take_settle(struct locktable *t, struct node *n, struct lt_op *op);
/* Create lock name in dir (no such name there) for c, held as how (a
 * create's, a directory lock's); the acquisition is answered through
 * *ret_op (see lt_take; then lt_acquired). LT_NEED_SETTLED while a rename
 * in dir is in flight, the room checks' -errno, or lt_take's answers. */
int lt_lock_create(struct locktable *t, struct node *dir, const char *name,
                   const struct caller *c, enum lock_how how, struct lt_prep *prep,
                   struct node **ret, struct lt_op **ret_op);
/* The lock named name in directory parent for c, as CREATE finds it: the
 * lock there (*ret_op NULL), or the free name acquired for c (flags: the
 * open's; *ret_op answers the acquisition, see lt_take; then
 * lt_acquired). -EEXIST for .lockfs, for a directory (or directory lock)
 * with O_EXCL and for a held name with O_EXCL (counted as contended),
 * -EISDIR for a directory or directory lock,
 * LT_NEED_SETTLED when the name's acquisition is with the store (wait,
 * then call again), LT_NEED_PROC (see lt_holder_ref), or
 * the directory's and room checks' -errno. */
int lt_lock_get_or_create(struct locktable *t, uint64_t parent, const char *name,
                          const struct caller *c, int flags, struct lt_prep *prep,
                          struct node **ret, struct lt_op **ret_op);
/* After lt_unlock(), with t->mu held again: the answer to acquisition op
 * of lock n made by lt_lock_get_or_create (n was pinned with one lookup,
 * dropped on failure); sets h->fence; frees op. 0 or the store's -errno. */
int lt_acquired(struct locktable *t, struct node *n, struct lt_op *op, struct lt_handle *h);
/* Count linked lock n as held (the list of every held lock). */
void lt_lock_list_add(struct locktable *t, struct node *n);
/* Release lock n for cause; with report, queue its name for the kernel.
 * A busy lock is released when its store call is answered; a lock with
 * waiters is handed to the first that can take it instead. */
void lt_release(struct locktable *t, struct node *n, enum release_cause cause,
                struct removals *report);
/* Take lock n out of the tree without telling the store: report its names,
 * drop holder, quota, deadline and content. */
void lt_lock_remove(struct locktable *t, struct node *n, struct removals *report);
/* Hand n to its first live waiter instead of releasing it; false when no
 * waiter could take it (the caller then releases n). */
bool lt_handoff(struct locktable *t, struct node *n);
/* Record n's new state (a lock's record, a directory's entry) and wait
 * for the store's answer, n busy meanwhile so that nothing else changes it
 * (releases are deferred to *ret_doomed, 1 + cause, 0 for none; the caller
 * applies it with lt_apply_doomed once it has committed or rolled back).
 * Lets go of t->mu meanwhile; the kernel holds n (and the directories of
 * the request) for the request's duration. Returns 0 or the store's
 * -errno. lt_await_record is its waiting half, for op (queued for n, or
 * NULL: nothing to record). */
int lt_record_and_wait(struct locktable *t, struct node *n, int *ret_doomed);
int lt_await_record(struct locktable *t, struct node *n, struct lt_op *op, int *ret_doomed);
/* Apply a release deferred by lt_record_and_wait(). */
void lt_apply_doomed(struct locktable *t, struct node *n, int doomed);

#endif
