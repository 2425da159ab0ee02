/* SPDX-License-Identifier: MIT */
/* Journal records: framing (u32 length, u32 CRC-32C of the body), then a
 * body of type byte and fixed-width fields. Decoding checks every length
 * against the frame, so no input can make it read out of bounds; encoding
 * checks every field the decoder checks (valid_name, valid_holder, the
 * JOURNAL_*_MAX limits) and writes nothing it would reject.
 *
 * Lock body: u8 type, u64 key, u64 parent, u64 fence, u8 how, u8 flags,
 * i32 pid, u64 start time, u32 uid, u32 gid, i64 acquired, i64 renewed,
 * u32 ttl, i64 deadline, i32 claim-ignored pid (JOURNAL_LOCK_FIXED bytes),
 * name (u16 length + bytes), alias count (version 1: u16, 2: u32), that
 * many (u64 parent, name), u32 content length, content; from version 3,
 * u32 sharer count, that many (i32 pid, u64 start time, u32 uid, u32 gid,
 * u8 how, i64 since), a shared lock's holders besides the recorded one. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "journal.h"

/* journal_put_lock and decode_lock write and read each lock record field
 * in the layout above. */
_Static_assert(LOCK_RECORD_COUNT == 9,
               "a new LOCK_RECORD_FIELDS field needs a place in the lock body, and "
               "JOURNAL_VERSION + 1");

static const char MAGIC[8] = { 'L', 'O', 'C', 'K', 'F', 'S', 'J', '\n' };
#define FRAME 8                  /* u32 length + u32 crc */

static uint8_t *put(uint8_t *p, const void *v, size_t n) {
        memcpy(p, v, n);
        return p + n;
}
#define PUT(p, type, val) put(p, &(type){ (type)(val) }, sizeof(type))

void journal_header_encode(const char *boot_id, uint8_t out[JOURNAL_HEADER_SIZE]) {
        uint8_t *p = put(out, MAGIC, sizeof(MAGIC));
        p = PUT(p, uint32_t, JOURNAL_VERSION);
        p = put(p, boot_id, JOURNAL_BOOT_ID_LEN);
        PUT(p, uint32_t, crc32c(0, out, JOURNAL_HEADER_SIZE - 4));
}

int journal_header_check(const uint8_t *buf, size_t len,
                         char boot_id[JOURNAL_BOOT_ID_LEN + 1], uint32_t *ret_version) {
        uint32_t version, crc;
        if (len < JOURNAL_HEADER_SIZE || memcmp(buf, MAGIC, sizeof(MAGIC)) != 0)
                return -EBADMSG;
        memcpy(&crc, buf + JOURNAL_HEADER_SIZE - 4, 4);
        if (crc != crc32c(0, buf, JOURNAL_HEADER_SIZE - 4))
                return -EBADMSG;
        memcpy(&version, buf + 8, 4);
        if (version < JOURNAL_VERSION_OLDEST || version > JOURNAL_VERSION)
                return -EPROTONOSUPPORT;
        memcpy(boot_id, buf + 12, JOURNAL_BOOT_ID_LEN);
        boot_id[JOURNAL_BOOT_ID_LEN] = '\0';
        *ret_version = version;
        return 0;
}

/* Reserve a record of body size n in b; returns where the body goes. The
 * frame is completed by frame_close(). */
static uint8_t *frame_open(struct buf *b, size_t n) {
        if (n > JOURNAL_RECORD_MAX || buf_reserve(b, FRAME + n) < 0)
                return NULL;
        return (uint8_t *)b->data + b->len + FRAME;
}

static void frame_close(struct buf *b, size_t n) {
        uint8_t *f = (uint8_t *)b->data + b->len;
        PUT(PUT(f, uint32_t, n), uint32_t, crc32c(0, f + FRAME, n));
        b->len += FRAME + n;
}

static const char *last_name(const char *path) {
        const char *s = strrchr(path, '/');
        return s ? s + 1 : path;
}

/* What get_name() accepts: 1..JOURNAL_NAME_MAX bytes, no '/' (a C string
 * holds no NUL). */
static bool valid_name(const char *name, size_t len) {
        return len > 0 && len <= JOURNAL_NAME_MAX && !memchr(name, '/', len);
}

/* What decode_lock() accepts of a sharer: a visible process, holding by
 * flock or a record lock. */
static bool valid_sharer(const struct lock_party *s) {
        return s->pid > 0 && (s->how == LOCK_HOW_FLOCK || s->how == LOCK_HOW_FCNTL);
}

/* What decode_lock() accepts of the holder fields. */
static bool valid_holder(enum lock_how how, bool detached, pid_t pid) {
        return (unsigned)how < LOCK_HOW_COUNT && pid >= 0 && (detached || pid != 0);
}

int journal_put_lock(struct buf *b, const struct lock_view *v) {
        if (!v->path || v->ino == 0 || !valid_holder(v->how, v->detached, v->pid) ||
            (v->content_len && !v->content) || (v->n_aliases && !v->aliases))
                return -EINVAL;
        if (v->n_aliases > JOURNAL_ALIASES_MAX || v->content_len > JOURNAL_CONTENT_MAX ||
            v->n_sharers > JOURNAL_SHARERS_MAX)
                return -EMSGSIZE;
        if (v->n_sharers && !v->sharers)
                return -EINVAL;
        for (size_t i = 0; i < v->n_sharers; i++)
                if (!valid_sharer(&v->sharers[i]))
                        return -EINVAL;
        const char *name = last_name(v->path);
        size_t name_len = strlen(name);
        if (!valid_name(name, name_len))
                return -EINVAL;
        size_t n = JOURNAL_LOCK_FIXED + 2 + name_len + 4 + 4 + v->content_len + 4 +
                   v->n_sharers * JOURNAL_SHARER_SIZE;
        for (size_t i = 0; i < v->n_aliases; i++) {
                const char *a = v->aliases[i].name;
                size_t l = a ? strlen(a) : 0;
                if (!a || !valid_name(a, l))
                        return -EINVAL;
                n += 8 + 2 + l;
        }
        if (n > JOURNAL_RECORD_MAX)
                return -EMSGSIZE; /* cannot happen within the limits above */
        uint8_t *p = frame_open(b, n);
        if (!p)
                return -ENOMEM;
        p = PUT(p, uint8_t, JOURNAL_LOCK);
        p = PUT(p, uint64_t, v->ino);
        p = PUT(p, uint64_t, v->parent_ino);
        p = PUT(p, uint64_t, v->fence);
        p = PUT(p, uint8_t, v->how);
        p = PUT(p, uint8_t, (v->detached ? 1 : 0) | (v->liveness_known ? 2 : 0));
        p = PUT(p, int32_t, v->pid);
        p = PUT(p, uint64_t, v->start_time);
        p = PUT(p, uint32_t, v->uid);
        p = PUT(p, uint32_t, v->gid);
        p = PUT(p, int64_t, v->acquired_at_ms);
        p = PUT(p, int64_t, v->renewed_at_ms);
        p = PUT(p, uint32_t, v->ttl_s);
        p = PUT(p, int64_t, v->deadline_mono_ms);
        p = PUT(p, int32_t, v->claim_ignored_pid);
        p = PUT(p, uint16_t, name_len);
        p = put(p, name, name_len);
        p = PUT(p, uint32_t, v->n_aliases);
        for (size_t i = 0; i < v->n_aliases; i++) {
                size_t l = strlen(v->aliases[i].name);
                p = PUT(p, uint64_t, v->aliases[i].parent_ino);
                p = PUT(p, uint16_t, l);
                p = put(p, v->aliases[i].name, l);
        }
        p = PUT(p, uint32_t, v->content_len);
        if (v->content_len)
                p = put(p, v->content, v->content_len);
        p = PUT(p, uint32_t, v->n_sharers);
        for (size_t i = 0; i < v->n_sharers; i++) {
                const struct lock_party *s = &v->sharers[i];
                p = PUT(p, int32_t, s->pid);
                p = PUT(p, uint64_t, s->start_time);
                p = PUT(p, uint32_t, s->uid);
                p = PUT(p, uint32_t, s->gid);
                p = PUT(p, uint8_t, s->how);
                p = PUT(p, int64_t, s->since_ms);
        }
        frame_close(b, n);
        return 0;
}

int journal_put_dir(struct buf *b, uint64_t key, uint64_t parent, const char *name, uid_t uid,
                    gid_t gid) {
        size_t name_len = name ? strlen(name) : 0;
        if (key == 0 || !name || !valid_name(name, name_len))
                return -EINVAL;
        size_t n = 1 + 8 + 8 + 4 + 4 + 2 + name_len;
        uint8_t *p = frame_open(b, n);
        if (!p)
                return -ENOMEM;
        p = PUT(p, uint8_t, JOURNAL_DIR);
        p = PUT(p, uint64_t, key);
        p = PUT(p, uint64_t, parent);
        p = PUT(p, uint32_t, uid);
        p = PUT(p, uint32_t, gid);
        p = PUT(p, uint16_t, name_len);
        put(p, name, name_len);
        frame_close(b, n);
        return 0;
}

int journal_put_del(struct buf *b, uint64_t key) {
        if (key == 0)
                return -EINVAL;
        uint8_t *p = frame_open(b, 9);
        if (!p)
                return -ENOMEM;
        PUT(PUT(p, uint8_t, JOURNAL_DEL), uint64_t, key);
        frame_close(b, 9);
        return 0;
}

/* A bounds-checked reader over one record body. */
struct reader {
        const uint8_t *p, *end;
        bool bad;
};

static const uint8_t *take(struct reader *r, size_t n) {
        if (r->bad || (size_t)(r->end - r->p) < n) {
                r->bad = true;
                return NULL;
        }
        const uint8_t *at = r->p;
        r->p += n;
        return at;
}

#define GET(r, type)                                                      \
        ({                                                                \
                type v_ = 0;                                              \
                const uint8_t *at_ = take(r, sizeof(type));               \
                if (at_)                                                  \
                        memcpy(&v_, at_, sizeof(type));                   \
                v_;                                                       \
        })

/* A name: u16 length, then that many bytes, 1..255 of them, no '/' or NUL. */
static const char *get_name(struct reader *r, size_t *len) {
        *len = GET(r, uint16_t);
        const char *s = (const char *)take(r, *len);
        if (!s || *len == 0 || *len > JOURNAL_NAME_MAX || memchr(s, '/', *len) || memchr(s, '\0', *len)) {
                r->bad = true;
                return NULL;
        }
        return s;
}

static void decode_lock(struct reader *r, uint32_t version, struct jrec *ret) {
        ret->parent = GET(r, uint64_t);
        ret->fence = GET(r, uint64_t);
        uint8_t how = GET(r, uint8_t), flags = GET(r, uint8_t);
        if (how >= LOCK_HOW_COUNT || flags > 3)
                r->bad = true;
        ret->how = how;
        ret->detached = flags & 1;
        ret->liveness_known = flags & 2;
        ret->pid = GET(r, int32_t);
        ret->start_time = GET(r, uint64_t);
        ret->uid = GET(r, uint32_t);
        ret->gid = GET(r, uint32_t);
        ret->acquired_at_ms = GET(r, int64_t);
        ret->renewed_at_ms = GET(r, int64_t);
        ret->ttl_s = GET(r, uint32_t);
        ret->deadline_mono_ms = GET(r, int64_t);
        ret->claim_ignored_pid = GET(r, int32_t);
        ret->name = get_name(r, &ret->name_len);
        /* version 1 wrote any count (the u16 could wrap); version 2 caps it */
        ret->n_aliases = version == 1 ? GET(r, uint16_t) : GET(r, uint32_t);
        if (version > 1 && ret->n_aliases > JOURNAL_ALIASES_MAX)
                r->bad = true;
        ret->aliases = r->p;
        for (size_t i = 0; i < ret->n_aliases && !r->bad; i++) {
                size_t l;
                GET(r, uint64_t);
                get_name(r, &l);
        }
        ret->content_len = GET(r, uint32_t);
        ret->content = take(r, ret->content_len);
        if (ret->content_len > JOURNAL_CONTENT_MAX || !valid_holder(how, ret->detached, ret->pid))
                r->bad = true;
        ret->n_sharers = version >= 3 ? GET(r, uint32_t) : 0;
        if (ret->n_sharers > JOURNAL_SHARERS_MAX)
                r->bad = true;
        ret->sharers = r->bad ? NULL : take(r, ret->n_sharers * JOURNAL_SHARER_SIZE);
        for (size_t i = 0; ret->sharers && i < ret->n_sharers; i++) {
                struct lock_party s;
                jrec_sharer(ret, i, &s);
                if (!valid_sharer(&s))
                        r->bad = true;
        }
}

int journal_next(const void *data, size_t len, uint32_t version, size_t *off,
                 struct jrec *ret) {
        const uint8_t *buf = data;
        size_t at = *off;
        if (at == len)
                return 0;
        uint32_t n, crc;
        if (len - at < FRAME)
                return -ENODATA;
        memcpy(&n, buf + at, 4);
        memcpy(&crc, buf + at + 4, 4);
        if (n == 0 || n > JOURNAL_RECORD_MAX)
                return -EBADMSG;
        if (len - at - FRAME < n)
                return -ENODATA;
        if (version < JOURNAL_VERSION_OLDEST || version > JOURNAL_VERSION ||
            crc32c(0, buf + at + FRAME, n) != crc)
                return -EBADMSG;
        struct reader r = { buf + at + FRAME, buf + at + FRAME + n, false };
        *ret = (struct jrec){ .raw = buf + at, .raw_len = FRAME + n };
        ret->type = GET(&r, uint8_t);
        ret->key = GET(&r, uint64_t);
        switch (ret->type) {
        case JOURNAL_DIR:
                ret->parent = GET(&r, uint64_t);
                ret->uid = GET(&r, uint32_t);
                ret->gid = GET(&r, uint32_t);
                ret->name = get_name(&r, &ret->name_len);
                break;
        case JOURNAL_LOCK:
                decode_lock(&r, version, ret);
                break;
        case JOURNAL_DEL:
                break;
        default:
                r.bad = true;
        }
        if (r.bad || r.p != r.end || ret->key == 0)
                return -EBADMSG;
        *off = at + FRAME + n;
        return 1;
}

void jrec_sharer(const struct jrec *r, size_t i, struct lock_party *ret) {
        const uint8_t *p = r->sharers + i * JOURNAL_SHARER_SIZE;
        int32_t pid;
        uint8_t how;
        *ret = (struct lock_party){ .shared = true };
        memcpy(&pid, p, 4);
        memcpy(&ret->start_time, p + 4, 8);
        memcpy(&ret->uid, p + 12, 4);
        memcpy(&ret->gid, p + 16, 4);
        memcpy(&how, p + 20, 1);
        memcpy(&ret->since_ms, p + 21, 8);
        ret->pid = pid;
        ret->how = (enum lock_how)how;
}

const uint8_t *jrec_alias_next(const uint8_t *p, uint64_t *parent, const char **name,
                               size_t *name_len) {
        uint16_t l;
        memcpy(parent, p, 8);
        memcpy(&l, p + 8, 2);
        *name = (const char *)p + 10;
        *name_len = l;
        return p + 10 + l;
}
