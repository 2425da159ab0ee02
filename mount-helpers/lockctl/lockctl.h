/* SPDX-License-Identifier: MIT */
/* lockctl: declarations shared by the command, JSON and output modules. */
#ifndef LOCKCTL_H
#define LOCKCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sysexits.h>

/* Exit statuses besides the sysexits(3) ones: a busy or missing lock. */
#define LC_EXIT_BUSY 1
#define LC_EXIT_NOT_HELD 1
/* break: the lock changed hands between the status read and the break
 * (nothing broken); the daemon cannot break by fence (nothing broken). */
#define LC_EXIT_CHANGED EX_TEMPFAIL     /* 75 */
#define LC_EXIT_OLD_DAEMON EX_PROTOCOL  /* 76 */

static inline void lc_freep(void *p) {
        free(*(void **)p);
}
#define _cleanup_free_ __attribute__((cleanup(lc_freep)))

/* ---- lockctl-util.c: messages, terminal-safe text, times (usage: lockctl-usage.c) ---- */

/* Print "lockctl: MESSAGE\n" on stderr. */
void lc_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Print the usage text on f (stdout for --help, stderr for errors). */
void lc_usage(FILE *f);

/* Print the usage on stderr and return EX_USAGE, for `return lc_usage_error()`. */
int lc_usage_error(void);

/* Report getopt's answer c for a bad option (argv as given to getopt) and
 * return EX_USAGE. */
int lc_bad_option(int c, char **argv);

/* Copy n bytes of s so that they are safe on a terminal and in a column:
 * bytes that are not printable characters of the current locale (control
 * bytes, invalid UTF-8) become \xNN, and so does a backslash when
 * esc_backslash is set, so the output is unambiguous. Sets *ret_width (if
 * not NULL) to the display width. Returns a malloc'ed string the caller
 * frees; aborts the program on ENOMEM. */
char *lc_escape(const char *s, size_t n, bool esc_backslash, size_t *ret_width);

/* lc_escape of a C string with backslashes escaped: for file names in
 * messages. The caller frees. */
char *lc_esc(const char *s);

/* Format a duration of ms milliseconds (>= 0) the way ls and lslocks users
 * read it: 5s, 3m12s, 2h05m, 3d04h. Writes at most size bytes to buf. */
void lc_duration(int64_t ms, char *buf, size_t size);

/* Parse "2026-11-26T18:03:08.325Z" (lockfs' timestamps) into ms since the
 * epoch. Returns 0, or -EINVAL when s has another form. */
int lc_parse_time(const char *s, int64_t *ret_ms);

/* Read what fd gives until EOF. Returns 0 and a NUL-terminated malloc'ed
 * buffer the caller frees, or -errno: -EFBIG once max bytes are read
 * without reaching EOF. */
int lc_read_all(int fd, size_t max, char **ret, size_t *ret_len);

/* Abort with a message when p is NULL (out of memory). Returns p. */
void *lc_oom(void *p);

/* ---- lockctl-json.c: a scanner over JSON text that keeps numbers and
 * strings exactly as the daemon wrote them (cJSON would round integers
 * past 2^53 and cut strings at \u0000). It trusts the daemon for syntax
 * but never reads past the given length. ---- */

struct lc_span {
        const char *p;
        size_t n;
};

/* Iterates the members of an object or the elements of an array. */
struct lc_json_iter {
        struct lc_span text;
        size_t pos;
        char close;
        bool first;
};

/* Start iterating v, which must be an object (close '}') or an array
 * (']'). Returns 0 or -EINVAL when v is something else. */
int lc_json_iter_init(struct lc_json_iter *it, struct lc_span v, char close);

/* The next member: sets *ret_key (the quoted key; left alone for arrays)
 * and *ret_val. Returns 1, 0 at the end, or -EINVAL on malformed text. */
int lc_json_next(struct lc_json_iter *it, struct lc_span *ret_key, struct lc_span *ret_val);

/* Find member key of object obj. Returns 1 and sets *ret_val, 0 when there
 * is no such member, -EINVAL on malformed text. */
int lc_json_get(struct lc_span obj, const char *key, struct lc_span *ret_val);

/* The type of v: '{', '[', '"', 'n' (null), 't'/'f' (booleans) or '0'
 * (a number). */
char lc_json_type(struct lc_span v);

/* Decode the JSON string v (with its quotes) into a malloc'ed buffer,
 * NUL-terminated; \u0000 stays in it, so *ret_len counts it. Returns 0 or
 * -EINVAL when v is not a string. */
int lc_json_string(struct lc_span v, char **ret, size_t *ret_len);

/* The integer v (no fraction, no exponent). Returns 0 or -EINVAL. */
int lc_json_int(struct lc_span v, int64_t *ret);

/* Write v to f: pretty (two-space indent, first line not indented,
 * nested lines indented by indent more levels) or compact. Strings and
 * numbers are copied byte for byte. */
void lc_json_print(FILE *f, struct lc_span v, bool pretty, int indent);

/* Trim the whitespace around a whole document. */
struct lc_span lc_json_trim(struct lc_span v);

/* ---- lockctl-lock.c: what a lock's status says ---- */

/* The lockfs facts of one status object, decoded for display. */
struct lc_lock {
        char *path;
        size_t path_len;
        bool detached;          /* "pid": null */
        int64_t pid;
        char *user;
        size_t user_len;
        char *comm;
        size_t comm_len;
        int64_t age_ms;         /* -1: unknown */
        int64_t ttl_left_ms;    /* -1: no TTL; -2: unknown */
        char *fence;            /* the number as written, "?" if missing */
};

/* Whether doc is a lock status: an object whose "lockfs" member is an
 * object. Returns 0 and that member in *ret_facts (if not NULL), or
 * -EBADMSG. */
int lc_status_facts(struct lc_span doc, struct lc_span *ret_facts);

/* Decode the "lockfs" member of the status object doc. Returns 0,
 * -EBADMSG when doc is not a lock status. Free with lc_lock_clear. */
int lc_lock_parse(struct lc_span doc, struct lc_lock *ret);
void lc_lock_clear(struct lc_lock *l);

/* Read the status of the lock at path. Returns 0 and a malloc'ed document,
 * -ENOENT when the lock is not held (also when it was released as it was
 * opened: an empty read on a FUSE mount), -EBADMSG when path is not a lockfs
 * lock (not a regular file, or not a status object), or another -errno. */
int lc_status_read(const char *path, char **ret_doc, struct lc_span *ret_obj);

/* The same, keeping the descriptor the status was read from open in
 * *ret_fd (the caller closes it), when ret_fd is not NULL: a lockfs lock
 * answers ioctls on it (lockfs_ioctl.h) about the inode that was read. */
int lc_status_open(const char *path, int *ret_fd, char **ret_doc, struct lc_span *ret_obj);

/* The list of a mount's locks, below its root. */
#define LC_LOCKS_JSON "/.lockfs/locks.json"

/* Find the lockfs mount that holds path: the nearest directory at or above
 * it with a .lockfs/locks.json. Sets *ret_root (the mount root) and
 * *ret_rel (path below the root: "" for the root itself, else "/a/b"),
 * both malloc'ed. Returns 0, -ENOENT when path is in no lockfs mount, or
 * the -errno of resolving path. */
int lc_find_mount(const char *path, char **ret_root, char **ret_rel);

/* Read the list of locks of the mount at root. Returns 0 or -errno. */
int lc_read_locks(const char *root, char **ret, size_t *ret_len);

/* Report error r of lc_status_read(file) on stderr; returns the exit
 * status for it: 1 (not held), EX_DATAERR (not a lock) or EX_NOINPUT. */
int lc_status_error(const char *file, int r);

/* ---- commands: each returns the exit status ---- */
int lc_cmd_ls(int argc, char **argv);
int lc_cmd_show(int argc, char **argv);
int lc_cmd_break(int argc, char **argv);
int lc_cmd_run(int argc, char **argv);

#endif
