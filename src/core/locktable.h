/* SPDX-License-Identifier: MIT */
/* The lock table: a tree of directories (namespaces) and locks, keyed by
 * inode number and by (parent, name). Acquire, release, renew and expire;
 * holder registry with one pidfd per live holder process; TTL deadline
 * heap; fence counter through the store. One mutex serializes every
 * change, so no interleaving of requests can create two holders; nothing
 * slow (no /proc read of the caller, no kernel call-back) runs under it.
 * All functions return 0 (or a count) or a negative errno. */
#ifndef LOCKFS_LOCKTABLE_H
#define LOCKFS_LOCKTABLE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "caller.h"
#include "lockview.h"
#include "store.h"

/* Fixed inode numbers; every other node gets a fresh number from a 64-bit
 * counter starting at LT_INO_FIRST, never reused. */
enum {
        LT_INO_ROOT = 1,
        LT_INO_META_DIR = 2,    /* /.lockfs */
        LT_INO_META_LOCKS = 3,  /* /.lockfs/locks.json */
        LT_INO_META_METRICS = 4,/* /.lockfs/metrics */
        LT_INO_FIRST = 16,
};

#define LT_META_DIR_NAME ".lockfs"
#define LT_NAME_MAX 255
#define LT_MAX_NAMES_DEFAULT 64

struct globs;

struct locktable_config {
        uint32_t default_ttl_s; /* TTL of detached locks (no holder process whose
                                 * liveness is watched), 0 = none (SPEC R5.3) */
        uint32_t holder_ttl_s;  /* TTL of locks with a live holder that set none
                                 * of its own ("ttl_s"), 0 = none */
        uint64_t max_locks;     /* locks + directories; 0 = unlimited */
        size_t max_content;     /* bytes a holder may write */
        unsigned max_depth;     /* path components; 0 = unlimited */
        uint64_t max_locks_per_uid; /* locks, names and directories per uid but
                                     * root; 0 = unlimited */
        uint64_t max_content_per_uid; /* content bytes per uid but root; 0 = unlimited */
        uint32_t max_names;     /* names of one lock (its own + links); past it
                                 * link fails with -EMLINK; 0 = LT_MAX_NAMES_DEFAULT */
        bool user_break;        /* a lock's uid may break it (locktable_break), as root may */
        bool shared;            /* names live in a shared store (cluster mode):
                                 * link, and rename of a lock or of a directory
                                 * holding anything, fail with -EXDEV */
        const struct globs *raw; /* locks whose own name matches read back as
                                  * their content (SPEC R4.4a); NULL = none.
                                  * The caller's, unchanged while t lives */
        const struct globs *dirlocks; /* directories whose name matches are
                                       * locks, taken by mkdir (SPEC R7.5);
                                       * NULL = none. The caller's, as raw */
};

enum lt_kind { LT_DIR, LT_LOCK, LT_META_FILE };

struct lt_attr {
        uint64_t ino;
        enum lt_kind kind;
        mode_t mode;            /* with file type bits */
        uid_t uid;
        gid_t gid;
        unsigned nlink;         /* 0 once a lock or directory is gone */
        int64_t mtime_ms;       /* wall clock: last renewal (locks) */
        int64_t ctime_ms;
        bool raw;               /* a lock read back as its content (SPEC R4.4a) */
        bool times_set;         /* a directory's (or directory lock's) times set
                                 * by utimens: atime and mtime, exactly */
        struct timespec atime, mtime; /* wall clock */
        uint64_t size;          /* raw: the content's length; else 0 (R4.5) */
};

/* What an open of a lock gave: see SPEC R2.2. */
enum lt_handle_kind {
        LT_HANDLE_READER,    /* read-only: status only */
        LT_HANDLE_HOLDER,    /* may write, truncate, renew */
        LT_HANDLE_CONTENDER, /* write-open of a lock held by another: writes get -EEXIST */
};

struct lt_handle {
        enum lt_handle_kind kind;
        uint64_t ino;
        uint64_t fence;      /* the acquisition this handle belongs to */
        bool append;         /* O_APPEND: every write goes to the end */
};

/* A name the daemon removed by itself (holder death, TTL): the kernel must
 * be told. Delivered by locktable_reap() outside the table lock. */
typedef void (*lt_removed_fn)(void *ctx, uint64_t parent, uint64_t ino, const char *name);

/* The reply owed to a parked flock request named id: err 0 with the holder
 * handle of the new acquisition in *h, or a negative errno (-EINTR when its
 * process died first). Called outside the table lock, once per parked
 * request that was not cancelled. */
typedef void (*lt_grant_fn)(void *ctx, uint64_t id, int err, const struct lt_handle *h);

struct locktable;

/* Create a table using store s (the table does not own s). */
int locktable_new(const struct locktable_config *cfg, struct store *s, struct locktable **ret);
/* Free everything; no other thread may use t. The store is not told: what
 * it recorded stays for the next daemon. NULL is a no-op. */
void locktable_free(struct locktable *t);

/* What locktable_restore() did. */
struct locktable_restored {
        size_t restored;        /* locks back with their holder (or detached) */
        size_t holder_gone;     /* dropped: the holder process is gone */
        size_t expired;         /* dropped: the TTL ran out meanwhile */
        size_t failed;          /* dropped: could not be rebuilt (logged) */
        uint64_t max_fence;     /* highest fence restored */
};

/* Rebuild the table from what its store recorded (SPEC R8.2): directories,
 * and locks whose holder is the same live process (or detached) and whose
 * TTL has not ended, with holder, content, deadline, fence and other
 * names. Call once, before serving. 0 or the store's -errno. */
int locktable_restore(struct locktable *t, struct locktable_restored *ret);

/* Resolve name in parent; counts one kernel lookup on success (see
 * locktable_forget). -ENOENT, -ENOTDIR, -ENAMETOOLONG. */
int locktable_lookup(struct locktable *t, uint64_t parent, const char *name, struct lt_attr *ret);
/* The kernel dropped n lookups of ino. */
void locktable_forget(struct locktable *t, uint64_t ino, uint64_t n);
/* Attributes of ino, also of a lock already gone (nlink 0) while the kernel
 * still knows it. -ENOENT for unknown numbers. */
int locktable_getattr(struct locktable *t, uint64_t ino, struct lt_attr *ret);

/* Positive answers of locktable_create and locktable_unlink: nothing
 * changed, identify the caller further and call again. A caller is first
 * identified cheaply (holder_identify_process_only, holder_identify_quick)
 * because most requests need no more. */
#define LT_NEED_CMDLINE 2 /* with its cmdline (holder_identify_quick) */
#define LT_NEED_LINEAGE 3 /* with its ancestry (holder_identify) */

/* CREATE (open with O_CREAT). A free name is acquired for c and gives a
 * holder handle. A held name: -EEXIST with O_EXCL; otherwise the same as
 * locktable_open(). c may be partial (holder_identify_quick) only with
 * O_EXCL; without its cmdline too (holder_identify_process_only) it gets
 * LT_NEED_CMDLINE, nothing changed, unless the table knows the process
 * already: call again with the cmdline. Counts one lookup. -EACCES inside .lockfs, -ENOSPC past
 * max_locks, -ENAMETOOLONG, -EISDIR/-EEXIST on a directory. */
int locktable_create(struct locktable *t, uint64_t parent, const char *name,
                     const struct caller *c, int flags,
                     struct lt_attr *ret_attr, struct lt_handle *ret_handle);

/* OPEN of an existing lock. Read-only opens give a reader; write opens give
 * a holder handle to the holder or its descendants (O_TRUNC then clears the
 * content and renews) and a contender handle to anyone else (O_TRUNC
 * ignored). An open of a lock released since the kernel looked it up still
 * succeeds, as an open made just before the release: a contender (writes:
 * -EEXIST) or a reader of nothing. So an O_CREAT caller racing a release
 * never sees ENOENT (SPEC R2.3). -ESTALE only for unknown inodes. */
int locktable_open(struct locktable *t, uint64_t ino, const struct caller *c, int flags,
                   struct lt_handle *ret_handle);

/* WRITE through handle h at off. Returns the bytes written, -EEXIST for a
 * contender or a handle whose acquisition is over, -EFBIG past
 * max_content (content unchanged). Renews the TTL and applies a holder
 * claim or per-lock TTL found in the new content (SPEC R3.3, R5.3). */
ssize_t locktable_write(struct locktable *t, const struct lt_handle *h, const struct caller *c,
                        off_t off, const void *buf, size_t size);

/* SETATTR. h may be NULL (path-based call). Holder (handle or process):
 * size truncates the content, times renew, mode/owner are accepted and
 * ignored. A detached lock's creator uid may renew it (times only).
 * Others: -EEXIST for size, -EPERM for the rest. */
#define LT_SET_SIZE  0x1
#define LT_SET_TIMES 0x2
#define LT_SET_MODE  0x4
#define LT_SET_OWNER 0x8
int locktable_setattr(struct locktable *t, uint64_t ino, const struct lt_handle *h,
                      const struct caller *c, unsigned what, off_t size, struct lt_attr *ret);
/* The times a SETATTR sets (with LT_SET_TIMES): which, and their values
 * (wall clock; a *_NOW request resolved by the caller).
 * explicit: a value given by the caller, not "now" (utimensat's rule: only
 * the owner or root may set one). */
struct lt_times {
        bool set_atime, set_mtime;
        bool explicit_time;
        struct timespec atime, mtime;
};
/* locktable_setattr with the times asked for (NULL: none kept, as
 * locktable_setattr). Directories (SPEC R7.5): their times read back
 * exactly what was set (in memory only, not recorded by the store);
 * explicit times need the directory's creator uid or root (-EPERM), "now"
 * anyone (a namespace is writable by all). A directory lock (see
 * locktable_mkdir) is a lock: its holder's times renew it, as touch renews
 * a lock file, and read back exactly; anyone else gets -EPERM, a size
 * -EISDIR. A lock file's mtime stays its last renewal (R4.5). */
int locktable_setattr_times(struct locktable *t, uint64_t ino, const struct lt_handle *h,
                            const struct caller *c, unsigned what, off_t size,
                            const struct lt_times *times, struct lt_attr *ret);

/* UNLINK (SPEC R3.4): the holder or a descendant releases; anyone else,
 * root included, gets -EBUSY while the lock has a holder (a live lock is
 * never stale: breaking it is locktable_break's), also for one of its
 * several names. A detached lock goes for its creator's uid (from any
 * process) and for root; root's unlink of another uid's detached lock is
 * logged as a break, for which *ret_forced receives the lock as it was
 * (ret_forced->path non-NULL; clear it with lock_view_clear). -EPERM
 * otherwise, -EISDIR for a directory, -EACCES for .lockfs. A partial
 * caller (holder_identify_quick) that is not the holder process itself gets
 * LT_NEED_LINEAGE and nothing changes: call again with the full identity
 * (holder_identify). */
int locktable_unlink(struct locktable *t, uint64_t parent, const char *name,
                     const struct caller *c, struct lock_view *ret_forced);

/* BREAK (lockctl break, the LOCKFS_IOC_BREAK ioctl): release lock ino only
 * while its acquisition is still fence, so a caller that read the status
 * breaks exactly the acquisition it read, held or not (SPEC R3.4). Who
 * may: the holder or a descendant, or for a detached lock its creator's
 * uid, as a plain release; root, or with user_break the lock's uid, as a
 * break, for which *ret_forced receives the lock as it was, path
 * non-NULL, clear with lock_view_clear). c must be a full identity
 * (holder_identify). Waits while the acquisition is with the store. All
 * the lock's names go (also its other link(2) names), reported through fn
 * outside the lock, or it is handed to its first flock waiter. -ESTALE when
 * ino is no longer the lock of acquisition fence (released, handed on or
 * unknown: nothing changed), -EPERM, -EISDIR for a directory, -EINVAL for
 * a .lockfs file. */
int locktable_break(struct locktable *t, uint64_t ino, uint64_t fence, const struct caller *c,
                    struct lock_view *ret_forced, lt_removed_fn fn, void *ctx);

/* RENAME of a lock by its holder to a free name (holder and fence move with
 * it) or of a directory to a free name (see rmdir for who may). -EEXIST
 * when the target exists, -EPERM for a non-holder, -EINVAL for unsupported
 * flags or a directory moved into itself, -EXDEV in a shared table (see
 * locktable_config). */
int locktable_rename(struct locktable *t, uint64_t parent, const char *name,
                     uint64_t newparent, const char *newname, unsigned flags,
                     const struct caller *c);

/* LINK (link(2)) of lock ino to a free newname, by its holder (or for a
 * detached lock its creator's uid): one lock, two names, as dotlock tools
 * expect (same inode, st_nlink 2). newname becomes the lock's own name and
 * the old name a second one; unlinking either name leaves the lock, the
 * last one releases it. -EEXIST when newname exists, -EPERM for a
 * non-holder or a directory, -EXDEV in a shared table, -EMLINK when the
 * lock has max_names names already. Counts one lookup.
 * Cost: O(1) in the table, but the store's update rewrites the lock's
 * record with all its names, O(names) per link; max_names (at most
 * LOCKFS_MAX_NAMES_LIMIT) bounds it. */
int locktable_link(struct locktable *t, uint64_t ino, uint64_t newparent, const char *newname,
                   const struct caller *c, struct lt_attr *ret);

/* MKDIR / RMDIR of namespaces. mkdir counts one lookup. rmdir (and rename
 * of a directory) is for the directory's creator uid or root (-EPERM), like
 * a sticky directory; a directory holding anything can be renamed by root
 * only, so nobody moves the locks of others.
 *
 * Directory locks (SPEC R7.5): mkdir of a name matching the dirlocks globs
 * acquires a lock for c as an exclusive create does (-EEXIST when the name
 * exists; holder, fence, TTL, store record, status, break, death release
 * as for any lock; c may be partial and without its cmdline: then
 * LT_NEED_CMDLINE, nothing changed, as for locktable_create). Its holder is
 * c, except that mkdir(1) (comm "mkdir", a tool that exits at once) takes
 * it for its parent process, the script that ran it, when a pid claim of
 * c could name that parent (alive, not init, c's uid unless c is root);
 * for that a partial c gets LT_NEED_LINEAGE, nothing changed. It presents
 * as an empty directory (mode 0755, the holder's uid) that holds nothing:
 * creating anything in it fails with -EACCES, lookups in it with -ENOENT.
 * rmdir of it by its holder or a descendant releases it (the creator's uid
 * for a detached one); by anyone else, root included, -EBUSY while it has
 * a holder (a live lock is never stale: lockctl break it), and root's
 * rmdir of another uid's detached one is a break (*ret_forced as for
 * locktable_unlink; c must be a full identity). unlink of it: -EISDIR;
 * rename of it: -EBUSY; link: -EPERM; renaming a plain directory onto a
 * name the globs match: -EPERM (it would be a lock nobody holds). */
int locktable_mkdir(struct locktable *t, uint64_t parent, const char *name,
                    const struct caller *c, struct lt_attr *ret);
int locktable_rmdir(struct locktable *t, uint64_t parent, const char *name,
                    const struct caller *c);
/* locktable_rmdir, and the lock as it was when root broke a detached
 * directory lock by rmdir (ret_forced->path non-NULL; clear it with
 * lock_view_clear), to be logged. */
int locktable_rmdir_lock(struct locktable *t, uint64_t parent, const char *name,
                         const struct caller *c, struct lock_view *ret_forced);

/* A directory listing, taken at once (served later by offset). */
struct lt_dirent {
        uint64_t ino;
        enum lt_kind kind;
        char *name;
};
int locktable_readdir(struct locktable *t, uint64_t ino, struct lt_dirent **ret, size_t *ret_n);
/* Free a listing (lockview.c). */
void lt_dirents_free(struct lt_dirent *d, size_t n);

/* ---- flock(2) (SPEC §7) ----
 * A lock that its holder flocked is released by LOCK_UN or by closing that
 * open file description (owner); any release hands the lock to the first
 * parked LOCK_EX waiter instead: holder and fence change, the name stays. */

/* Where grants of parked requests go; set once before serving. */
void locktable_set_grant_fn(struct locktable *t, lt_grant_fn fn, void *ctx);
/* Where names go that the table removes after a store's answer (a create
 * or directory the store refused, a release deferred to that answer); set
 * once before serving. Called outside the lock. */
void locktable_set_removed_fn(struct locktable *t, lt_removed_fn fn, void *ctx);

/* LOCK_EX (or with LT_LOCK_SHARED LOCK_SH) by open file description owner
 * (a nonzero id never reused for another open file description), a
 * descriptor of inode ino whose handle is h, asked by c through a file
 * opened by thread opener (0: unknown). The holder it makes: the opener's
 * process when c is it or one of its descendants (`exec 9>f; flock 9`: the
 * shell, not flock(1)), with c's uid and gid; else c. Returns 0 when
 * granted at once (*ret is then a holder handle, of another inode when
 * ino's lock was released and its name is taken anew; or for a share of a
 * lock others hold shared, h's kind of handle, a reader's or a
 * contender's), LT_PARKED when parked under id (the grant comes through the
 * grant function, or locktable_flock_cancel), -EWOULDBLOCK when held and
 * LT_LOCK_NB, -ENOLCK when a shared lock has too many holders, -EDEADLK
 * when c would wait on its own record lock, -EOPNOTSUPP for a non-lock,
 * -ESTALE when the lock and its directory are gone.
 *
 * Shared locks (SPEC R7.3): a shared request joins a lock held shared
 * while no request waits; an exclusive request waits for the last sharer,
 * and shared requests after it wait behind it. A holder's exclusive
 * request on its shared lock is an upgrade when nobody shares it, else a
 * release and a new request (LT_LOCK_NB: flock loses its share, a record
 * lock keeps it and gets -EAGAIN), as flock(2) and fcntl(2) do; a shared
 * request by the holder of an exclusive lock is a downgrade. */
#define LT_PARKED 1
/* The error a parked request gets when the process it acts for (its opener,
 * or the dying holder it would wait on) is gone: it would wait on itself.
 * Never -EINTR: the kernel turns that into a restart, which leaks to the
 * caller as errno 512 when no signal is pending. */
#define LT_WAITER_ORPHANED (-EDEADLK)
/* The mode of a lock request: an OR of these (0: exclusive, waiting). */
#define LT_LOCK_NB 1u     /* fail rather than wait (LOCK_NB, F_SETLK) */
#define LT_LOCK_SHARED 2u /* LOCK_SH, F_RDLCK (SPEC R7.3) */
int locktable_flock(struct locktable *t, uint64_t ino, const struct lt_handle *h, uint64_t owner,
                    pid_t opener, const struct caller *c, unsigned mode, uint64_t id,
                    struct lt_handle *ret);

/* LOCK_UN, or the close of owner's last descriptor: release (or hand on)
 * the lock of inode ino if owner holds its flock; else nothing. A name
 * that goes is reported through fn (outside the lock), as by the reaper:
 * the kernel did not see this release. */
void locktable_flock_unlock(struct locktable *t, uint64_t ino, uint64_t owner, lt_removed_fn fn,
                            void *ctx);

/* Remove parked request id (a flock or a record lock); true when it was
 * still parked (the caller then replies to it), false when it was granted
 * or is unknown. */
bool locktable_flock_cancel(struct locktable *t, uint64_t id);

/* ---- fcntl/lockf/OFD record locks (SPEC R7.4) ----
 * A record lock of any range is the lock of the name, as a flock is: a
 * write lock exclusive, a read lock shared (LT_LOCK_SHARED). Its owner
 * is the kernel's lock owner: a process's for POSIX locks and lockf, an
 * open file description's for OFD locks; the daemon cannot tell them
 * apart, so a record lock goes when its owner unlocks it, when its owner
 * closes a descriptor of the file (FLUSH, for POSIX owners) or when the
 * open file it was taken through is released (OFD owners). When its
 * holder also flocked it, the last of the two to go releases the lock. */

/* F_SETLK (LT_LOCK_NB) / F_SETLKW of a write lock (or with LT_LOCK_SHARED
 * a read lock) by owner through open file `file` (its nonzero id; h its
 * handle), asked by c, who becomes the holder. Answers as locktable_flock;
 * -EAGAIN when held and LT_LOCK_NB; -EINVAL for a zero owner or file. */
int locktable_posix_lock(struct locktable *t, uint64_t ino, const struct lt_handle *h,
                         uint64_t owner, uint64_t file, const struct caller *c, unsigned mode,
                         uint64_t id, struct lt_handle *ret);
/* F_UNLCK by owner, or owner's close of any descriptor of the file: release
 * (or hand on) the lock of inode ino if owner holds it by a record lock;
 * else nothing. Names that go are reported through fn, as for flock. */
void locktable_posix_unlock(struct locktable *t, uint64_t ino, uint64_t owner, lt_removed_fn fn,
                            void *ctx);
/* The release of open file `file`: the record lock taken through it, if
 * it still holds one, goes as by locktable_posix_unlock. */
void locktable_posix_file_closed(struct locktable *t, uint64_t ino, uint64_t file,
                                 lt_removed_fn fn, void *ctx);
/* F_GETLK of a write lock (or with LT_LOCK_SHARED a read lock) by owner
 * through open file `file` (c, handle h): 0 when owner could take the lock
 * of inode ino now (free, its own, or shared and free for one more
 * sharer), 1 when another holds it exclusively, 2 when shared (*ret_pid
 * the recorded holder's pid here, 0 when not visible: detached, another
 * host's), -EOPNOTSUPP for a non-lock. Calls no /proc: c comes identified. */
int locktable_posix_test(struct locktable *t, uint64_t ino, const struct lt_handle *h,
                         uint64_t owner, uint64_t file, const struct caller *c, unsigned mode,
                         pid_t *ret_pid);

/* Copy of one live lock (-ENOENT when gone) or of all held locks. Free with
 * lock_view_clear() / lock_views_free(). locktable_view also says whether
 * the lock reads back as its content (ret->raw, SPEC R4.4a); it waits
 * (without the table's mutex) while the lock's acquisition is with the
 * store, so it never shows a lock half handed on. */
int locktable_view(struct locktable *t, uint64_t ino, struct lock_view *ret);
int locktable_views(struct locktable *t, struct lock_view **ret, size_t *ret_n);
void locktable_metrics(struct locktable *t, struct lock_metrics *ret);

/* The files of .lockfs: which one inode ino is (LT_META_NONE for every
 * other inode). No lock needed. */
enum lt_meta_file { LT_META_NONE, LT_META_LOCKS, LT_META_METRICS };
enum lt_meta_file locktable_meta_file(uint64_t ino);

/* How many nodes (locks, names, directories) the table may hold
 * (max_nodes; 0 = unlimited) and holds now (used), for statfs. */
struct lt_capacity {
        uint64_t max_nodes, used;
};
void locktable_capacity(struct locktable *t, struct lt_capacity *ret);

/* ---- status readers' cursors (lt_cursor.c) ----
 * A cursor walks the locks held when it was made, in the order they were
 * added (oldest first), each at most once. A lock released before the
 * cursor reaches it is not shown; one added after the cursor was made never
 * is. Removals never invalidate a cursor. Each call holds the table mutex
 * for one bounded batch only. */
struct lt_cursor;
#define LT_CURSOR_SKIP_MAX 1024  /* list elements a peek passes over uncopied */
/* A cursor before the first lock; -ENOMEM. */
int locktable_cursor_new(struct locktable *t, struct lt_cursor **ret);
/* Free c (NULL is a no-op). */
void locktable_cursor_free(struct locktable *t, struct lt_cursor *c);
/* Copy the next locks after c's place into v[0..max): at most max, and no
 * more once max_bytes (content, path, cmdline, host) are copied (at least
 * one). *ret_n is how many, *ret_seq the token that commits them. Returns
 * 1 when no lock follows these, 0 when more may follow (*ret_n may then be
 * 0, after LT_CURSOR_SKIP_MAX elements: call again), -ENOMEM (nothing
 * copied). Until committed, the same locks (those still held) come again. */
int locktable_cursor_peek(struct locktable *t, struct lt_cursor *c, struct lock_view *v,
                          size_t max, size_t max_bytes, size_t *ret_n, uint64_t *ret_seq);
/* The locks of the peek that gave seq are handed out: never again. */
void locktable_cursor_commit(struct locktable *t, struct lt_cursor *c, uint64_t seq);

/* The reaper's side: an epoll fd that becomes readable when a holder dies
 * or a TTL deadline passes; locktable_reap() handles what is due without
 * blocking and reports each removed name through fn (outside the lock).
 * Returns the number of locks released. */
int locktable_reaper_fd(struct locktable *t);
int locktable_reap(struct locktable *t, lt_removed_fn fn, void *ctx);

/* ---- a shared store's view (cluster mode, lt_remote.c) ----
 * Called from the store's watch thread, in the store's order. Names that
 * go are reported through fn outside the lock. */

/* Lock v->path is held through another host as v says (fence: the store's
 * revision of the acquisition; host, pid, comm, cmdline, uid, gid, times,
 * TTL, how, content). Makes missing directories; updates a known remote
 * lock; a local lock with a lower fence was lost and becomes this one;
 * our own acquisition (same fence) and late events are ignored. -EINVAL
 * for a path that is not a proper name (logged), -EISDIR, -ENOMEM. */
int locktable_remote_put(struct locktable *t, const struct lock_view *v, lt_removed_fn fn,
                         void *ctx);
/* The store deleted path at revision rev: a lock acquired before rev is
 * over, also a local one (force-unlocked elsewhere, or its lease ended):
 * parked flock waiters take the name in turn, else it goes. */
void locktable_remote_delete(struct locktable *t, const char *path, uint64_t rev,
                             lt_removed_fn fn, void *ctx);
/* True when the local lock at path has acquisition fence (held here). */
bool locktable_holds(struct locktable *t, const char *path, uint64_t fence);
/* A full listing follows (remote_put for every lock); sync_end drops the
 * remote locks it did not name, and when listed is given (the listing was
 * complete, at revision rev) also the local locks acquired before rev whose
 * path it did not name: their keys were deleted meanwhile. */
void locktable_remote_sync_begin(struct locktable *t);
void locktable_remote_sync_end(struct locktable *t, uint64_t rev,
                               bool (*listed)(void *lctx, const char *path), void *lctx,
                               lt_removed_fn fn, void *ctx);
/* The store lost every local lock (a lease ended): their status says
 * "lost"; holders keep their handles and fences. Returns how many. */
size_t locktable_mark_lost(struct locktable *t);

/* What uid has made now: locks, their other names and directories
 * (counted against max_locks_per_uid) and its locks' content bytes
 * (against max_content_per_uid). */
struct lt_usage {
        uint64_t things;
        uint64_t content_bytes;
};
void locktable_quota_usage(struct locktable *t, uid_t uid, struct lt_usage *ret);

#endif
