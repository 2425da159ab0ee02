/* SPDX-License-Identifier: MIT */
/* The lock journal's format: a header, then records, each framed by its
 * length and a CRC-32C, so a torn tail or a flipped byte is detected and
 * only the valid prefix is used. Records describe nodes keyed by their
 * inode number: a directory, a lock (its full state), or the removal of a
 * key. The last record of a key wins. Pure encoding and decoding; the
 * files are store_local.c's. Host byte order: a journal never leaves the
 * machine (it lives under /run and describes local processes).
 *
 * The encoder refuses (nothing written) every record the decoder would
 * reject, so no sequence of table changes can make a journal undecodable.
 * Version 2 counts a lock's other names in a u32 (version 1: u16, and the
 * writer did not check it); both are read. A lock record carries every
 * field of LOCK_RECORD_FIELDS (lockview.h) at a fixed place; a field added
 * there needs a new version here (journal.c asserts the count), whose
 * reader leaves the field 0 in older journals. */
#ifndef LOCKFS_JOURNAL_H
#define LOCKFS_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "buf.h"
#include "lockview.h"

#define JOURNAL_VERSION 3         /* what is written (3: sharers) */
#define JOURNAL_VERSION_OLDEST 1  /* the oldest still read */
#define JOURNAL_BOOT_ID_LEN 36   /* /proc/sys/kernel/random/boot_id without '\n' */
#define JOURNAL_HEADER_SIZE 52

/* The format's limits, checked by the encoder and the decoder alike. The
 * daemon's own limits (-o max_content, -o max_names, names of at most 255
 * bytes) must stay within them (static assertions in store_local.c). */
#define JOURNAL_NAME_MAX 255u                /* bytes of one name */
#define JOURNAL_CONTENT_MAX (16u << 20)      /* bytes of a lock's content */
#define JOURNAL_ALIASES_MAX 65535u           /* other names of one lock: all a
                                              * version 1 journal could hold */
#define JOURNAL_LOCK_FIXED 79u               /* a lock body's fixed-width fields */
#define JOURNAL_ALIAS_MAX_SIZE (8u + 2u + JOURNAL_NAME_MAX)
#define JOURNAL_SHARERS_MAX 4096u            /* other holders of a shared lock */
#define JOURNAL_SHARER_SIZE 29u              /* i32 pid, u64 start time, u32 uid,
                                              * u32 gid, u8 how, i64 since */
/* Records longer than this are corrupt: the largest lock record. */
#define JOURNAL_RECORD_MAX                                                          \
        ((size_t)JOURNAL_LOCK_FIXED + 2 + JOURNAL_NAME_MAX + 4 +                    \
         (size_t)JOURNAL_ALIASES_MAX * JOURNAL_ALIAS_MAX_SIZE + 4 + JOURNAL_CONTENT_MAX + \
         4 + (size_t)JOURNAL_SHARERS_MAX * JOURNAL_SHARER_SIZE)

enum journal_type { JOURNAL_DIR = 1, JOURNAL_LOCK = 2, JOURNAL_DEL = 3 };


/* One decoded record. Pointers point into the buffer it was read from. */
struct jrec {
        enum journal_type type;
        uint64_t key;
        uint64_t parent;             /* DIR, LOCK */
        const char *name;            /* DIR, LOCK; not NUL-terminated */
        size_t name_len;
        LOCK_RECORD_DECLARE          /* LOCK (lockview.h); DIR: uid, gid */
        /* LOCK only: */
        bool detached;
        pid_t pid;
        uint64_t start_time;
        int64_t deadline_mono_ms;
        size_t n_aliases;
        const uint8_t *aliases;      /* n_aliases x (u64 parent, u16 len, name) */
        const uint8_t *content;
        size_t content_len;
        size_t n_sharers;            /* version 3: a shared lock's other holders */
        const uint8_t *sharers;      /* n_sharers x JOURNAL_SHARER_SIZE bytes */
        /* the whole framed record */
        const uint8_t *raw;
        size_t raw_len;
};

/* Write the file header for boot_id (JOURNAL_BOOT_ID_LEN chars) to out. */
void journal_header_encode(const char *boot_id, uint8_t out[JOURNAL_HEADER_SIZE]);
/* Check a header and copy its boot id (NUL-terminated) to boot_id and its
 * version (JOURNAL_VERSION_OLDEST .. JOURNAL_VERSION) to *version.
 * 0, -EBADMSG (not a journal, or damaged), -EPROTONOSUPPORT (a version
 * this build does not read). */
int journal_header_check(const uint8_t *buf, size_t len,
                         char boot_id[JOURNAL_BOOT_ID_LEN + 1], uint32_t *version);

/* Append one framed record (current version) to the byte buffer b
 * (util/buf.h). Lock records take v's
 * state with key v->ino, parent v->parent_ino, name = last component of
 * v->path, and v->aliases (parent_ino, name). 0, or (b unchanged):
 * -EINVAL for what the decoder would reject (key 0, a name that is empty,
 * longer than JOURNAL_NAME_MAX or holds '/' or NUL, a holder pid < 0 or 0
 * while not detached, an unknown how), -EMSGSIZE past a JOURNAL_*_MAX
 * limit, -ENOMEM. */
int journal_put_lock(struct buf *b, const struct lock_view *v);
int journal_put_dir(struct buf *b, uint64_t key, uint64_t parent, const char *name, uid_t uid,
                    gid_t gid);
int journal_put_del(struct buf *b, uint64_t key);

/* Decode the record at buf[*off], written in format version, into *ret
 * and advance *off. Returns 1 for a record, 0 at the clean end of buf,
 * -ENODATA for a torn tail (buf ends inside the frame: a write that never
 * completed), -EBADMSG for a complete frame that is corrupt (bad length
 * or checksum) or whose body does not decode (*off unchanged). */
int journal_next(const void *buf, size_t len, uint32_t version, size_t *off,
                 struct jrec *ret);

/* Read the alias at p (start with r->aliases; journal_next validated all
 * r->n_aliases of them): its directory and name (not NUL-terminated).
 * Returns the position of the next alias. */
const uint8_t *jrec_alias_next(const uint8_t *p, uint64_t *parent, const char **name,
                               size_t *name_len);
/* Read sharer i (< r->n_sharers, validated by journal_next) of r into *ret
 * (pid, start time, uid, gid, how, since). */
void jrec_sharer(const struct jrec *r, size_t i, struct lock_party *ret);

#endif
