/* SPDX-License-Identifier: MIT */
/* Unit tests for the journal format: round trips, and that no torn or
 * corrupt input decodes (or crashes the decoder). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "crc32c.h"
#include "journal.h"
#include "options.h"

static const char BOOT[] = "0123456789abcdef0123456789abcdef0123";

/* A lock view with two aliases and binary content. */
static struct lock_view sample_view(void) {
        static struct lock_alias aliases[2] = {
                { .parent_ino = 1, .name = "tmp.123" },
                { .parent_ino = 20, .name = "other" },
        };
        static char content[] = "{\"pid\": 42}\0binary";
        return (struct lock_view){
                .path = "/d/state.lock", .ino = 21, .fence = 7, .how = LOCK_HOW_FLOCK,
                .liveness_known = true, .pid = 42, .uid = 1000, .gid = 100,
                .acquired_at_ms = 1700000000123, .renewed_at_ms = 1700000000456, .ttl_s = 30,
                .claim_ignored_pid = 9, .content = content, .content_len = sizeof(content),
                .parent_ino = 20, .start_time = 987654321, .deadline_mono_ms = 5555,
                .aliases = aliases, .n_aliases = 2,
        };
}

static void test_header_round_trip_and_checks(void **state) {
        (void)state;
        uint8_t h[JOURNAL_HEADER_SIZE];
        char boot[JOURNAL_BOOT_ID_LEN + 1];
        uint32_t version = 0;
        journal_header_encode(BOOT, h);
        assert_int_equal(journal_header_check(h, sizeof(h), boot, &version), 0);
        assert_string_equal(boot, BOOT);
        assert_int_equal(version, JOURNAL_VERSION);
        assert_int_equal(journal_header_check(h, sizeof(h) - 1, boot, &version), -EBADMSG);
        h[20] ^= 1; /* a flipped boot id byte */
        assert_int_equal(journal_header_check(h, sizeof(h), boot, &version), -EBADMSG);
        journal_header_encode(BOOT, h);
        h[0] = 'X';
        assert_int_equal(journal_header_check(h, sizeof(h), boot, &version), -EBADMSG);
}

static void test_other_version_is_refused(void **state) {
        (void)state;
        uint8_t h[JOURNAL_HEADER_SIZE];
        char boot[JOURNAL_BOOT_ID_LEN + 1];
        uint32_t version = 0;
        journal_header_encode(BOOT, h);
        uint32_t v = 99;
        memcpy(h + 8, &v, 4);
        /* the checksum covers the version: recompute it as a newer writer would */
        uint32_t crc = crc32c(0, h, JOURNAL_HEADER_SIZE - 4);
        memcpy(h + JOURNAL_HEADER_SIZE - 4, &crc, 4);
        assert_int_equal(journal_header_check(h, sizeof(h), boot, &version), -EPROTONOSUPPORT);
}

static void test_records_round_trip(void **state) {
        (void)state;
        struct buf b = { 0 };
        struct lock_view v = sample_view();
        assert_int_equal(journal_put_dir(&b, 20, 1, "d", 1000, 100), 0);
        assert_int_equal(journal_put_lock(&b, &v), 0);
        assert_int_equal(journal_put_del(&b, 21), 0);
        size_t off = 0;
        struct jrec r;
        assert_int_equal(journal_next(b.data, b.len, JOURNAL_VERSION, &off, &r), 1);
        assert_int_equal(r.type, JOURNAL_DIR);
        assert_int_equal(r.key, 20);
        assert_int_equal(r.parent, 1);
        assert_memory_equal(r.name, "d", 1);
        assert_int_equal(r.uid, 1000);
        assert_int_equal(journal_next(b.data, b.len, JOURNAL_VERSION, &off, &r), 1);
        assert_int_equal(r.type, JOURNAL_LOCK);
        assert_int_equal(r.key, 21);
        assert_int_equal(r.parent, 20);
        assert_int_equal(r.name_len, strlen("state.lock"));
        assert_memory_equal(r.name, "state.lock", r.name_len);
        assert_int_equal(r.fence, 7);
        assert_int_equal(r.how, LOCK_HOW_FLOCK);
        assert_false(r.detached);
        assert_true(r.liveness_known);
        assert_int_equal(r.pid, 42);
        assert_int_equal(r.start_time, 987654321);
        assert_int_equal(r.gid, 100);
        assert_int_equal(r.acquired_at_ms, 1700000000123);
        assert_int_equal(r.renewed_at_ms, 1700000000456);
        assert_int_equal(r.ttl_s, 30);
        assert_int_equal(r.deadline_mono_ms, 5555);
        assert_int_equal(r.claim_ignored_pid, 9);
        assert_int_equal(r.content_len, v.content_len);
        assert_memory_equal(r.content, v.content, v.content_len);
        assert_int_equal(r.n_aliases, 2);
        uint64_t parent;
        const char *name;
        size_t len;
        const uint8_t *p = jrec_alias_next(r.aliases, &parent, &name, &len);
        assert_int_equal(parent, 1);
        assert_memory_equal(name, "tmp.123", len);
        jrec_alias_next(p, &parent, &name, &len);
        assert_int_equal(parent, 20);
        assert_memory_equal(name, "other", len);
        assert_int_equal(journal_next(b.data, b.len, JOURNAL_VERSION, &off, &r), 1);
        assert_int_equal(r.type, JOURNAL_DEL);
        assert_int_equal(r.key, 21);
        assert_int_equal(journal_next(b.data, b.len, JOURNAL_VERSION, &off, &r), 0);
        buf_free(&b);
}

/* Every proper prefix of a record is torn: it never decodes, and says so. */
static void test_torn_record_never_decodes(void **state) {
        (void)state;
        struct buf b = { 0 };
        struct lock_view v = sample_view();
        assert_int_equal(journal_put_lock(&b, &v), 0);
        for (size_t cut = 1; cut < b.len; cut++) {
                size_t off = 0;
                struct jrec r;
                assert_int_equal(journal_next(b.data, cut, JOURNAL_VERSION, &off, &r), -ENODATA);
                assert_int_equal(off, 0);
        }
        buf_free(&b);
}

/* Any single flipped bit is caught by the checksum or the frame. */
static void test_every_bit_flip_is_detected(void **state) {
        (void)state;
        struct buf b = { 0 };
        struct lock_view v = sample_view();
        assert_int_equal(journal_put_lock(&b, &v), 0);
        for (size_t i = 0; i < b.len * 8; i++) {
                b.data[i / 8] ^= (uint8_t)(1u << (i % 8));
                size_t off = 0;
                struct jrec r;
                int rc = journal_next(b.data, b.len, JOURNAL_VERSION, &off, &r);
                /* a longer length reads as a torn tail: the file ends early */
                assert_true(rc == -EBADMSG || (rc == -ENODATA && i < 32));
                b.data[i / 8] ^= (uint8_t)(1u << (i % 8));
        }
        buf_free(&b);
}

/* Random bytes (with valid frames around them, so the body parser itself
 * is exercised) never read out of bounds: run under ASan. */
static void test_random_bodies_are_rejected_safely(void **state) {
        (void)state;
        srand(12345);
        uint8_t buf[8 + 512];
        int decoded = 0;
        for (int round = 0; round < 200000; round++) {
                uint32_t n = 1 + (uint32_t)(rand() % 512);
                for (uint32_t i = 0; i < n; i++)
                        buf[8 + i] = (uint8_t)rand();
                buf[8] = (uint8_t)(1 + rand() % 3); /* a known type, mostly */
                uint32_t crc = crc32c(0, buf + 8, n);
                memcpy(buf, &n, 4);
                memcpy(buf + 4, &crc, 4);
                size_t off = 0;
                struct jrec r;
                int rc = journal_next(buf, 8 + n, JOURNAL_VERSION, &off, &r);
                assert_true(rc == 1 || rc == -EBADMSG);
                if (rc == 1) {
                        decoded++;
                        assert_int_equal(off, 8 + n);
                        assert_true(r.raw_len == 8 + n);
                }
        }
        /* Only 9-byte DEL bodies can be valid at random: some must be. */
        assert_true(decoded > 0);
}


/* ---- the encoder refuses what the decoder rejects ------------------------ */

static void assert_refused(const struct lock_view *v, int err) {
        struct buf b = { 0 };
        assert_int_equal(journal_put_dir(&b, 20, 1, "d", 0, 0), 0);
        size_t len = b.len;
        assert_int_equal(journal_put_lock(&b, v), err);
        assert_int_equal(b.len, len); /* nothing written */
        buf_free(&b);
}

static void test_encoder_refuses_what_cannot_decode(void **state) {
        (void)state;
        struct lock_view v = sample_view();
        char long_path[300] = "/";
        memset(long_path + 1, 'n', 256);
        struct lock_alias bad_alias[2] = { { .parent_ino = 1, .name = "a" },
                                           { .parent_ino = 1, .name = "x/y" } };
        struct lock_alias empty_alias[1] = { { .parent_ino = 1, .name = "" } };

        v.ino = 0;
        assert_refused(&v, -EINVAL);
        v = sample_view();
        v.path = "/d/";
        assert_refused(&v, -EINVAL);
        v.path = long_path;
        assert_refused(&v, -EINVAL);
        long_path[256] = '\0'; /* 255 bytes: fine */
        struct buf b = { 0 };
        assert_int_equal(journal_put_lock(&b, &v), 0);
        v = sample_view();
        v.pid = -1;
        assert_refused(&v, -EINVAL);
        v.pid = 0; /* held, yet no holder */
        assert_refused(&v, -EINVAL);
        v.detached = true; /* a detached lock has none: fine */
        v.how = LOCK_HOW_DETACHED;
        assert_int_equal(journal_put_lock(&b, &v), 0);
        v = sample_view();
        v.how = LOCK_HOW_COUNT;
        assert_refused(&v, -EINVAL);
        v = sample_view();
        v.aliases = bad_alias;
        assert_refused(&v, -EINVAL);
        v.aliases = empty_alias;
        v.n_aliases = 1;
        assert_refused(&v, -EINVAL);
        v = sample_view();
        v.content_len = JOURNAL_CONTENT_MAX + 1; /* refused before it is read */
        assert_refused(&v, -EMSGSIZE);
        v = sample_view();
        v.n_aliases = JOURNAL_ALIASES_MAX + 1;
        v.aliases = calloc(v.n_aliases, sizeof(*v.aliases));
        for (size_t i = 0; i < v.n_aliases; i++)
                v.aliases[i] = (struct lock_alias){ .parent_ino = 1, .name = "a" };
        assert_refused(&v, -EMSGSIZE);
        v.n_aliases = JOURNAL_ALIASES_MAX; /* the most: fine, and decodes */
        b.len = 0;
        assert_int_equal(journal_put_lock(&b, &v), 0);
        size_t off = 0;
        struct jrec r;
        assert_int_equal(journal_next(b.data, b.len, JOURNAL_VERSION, &off, &r), 1);
        assert_int_equal(r.n_aliases, JOURNAL_ALIASES_MAX);
        free(v.aliases);

        size_t len = b.len;
        assert_int_equal(journal_put_dir(&b, 0, 1, "d", 0, 0), -EINVAL);
        assert_int_equal(journal_put_dir(&b, 5, 1, "", 0, 0), -EINVAL);
        assert_int_equal(journal_put_dir(&b, 5, 1, "a/b", 0, 0), -EINVAL);
        assert_int_equal(journal_put_dir(&b, 5, 1, long_path + 1, 0, 0), 0);
        b.len = len;
        long_path[256] = 'n';
        assert_int_equal(journal_put_dir(&b, 5, 1, long_path + 1, 0, 0), -EINVAL);
        assert_int_equal(journal_put_del(&b, 0), -EINVAL);
        assert_int_equal(b.len, len);
        buf_free(&b);
}

/* ---- round trip: random views, including every limit --------------------- */

static uint64_t rnd64(void) {
        return ((uint64_t)(unsigned)rand() << 62) ^ ((uint64_t)(unsigned)rand() << 31) ^
               (uint64_t)(unsigned)rand();
}

/* An extreme value half the time, else a random one. */
static uint64_t pick64(void) {
        static const uint64_t edge[] = { 0, 1, UINT32_MAX, INT64_MAX, (uint64_t)INT64_MIN,
                                         UINT64_MAX };
        return rand() % 2 ? edge[rand() % 6] : rnd64();
}

/* A name of len bytes: any byte but '/' and NUL. */
static char *rand_name(size_t len) {
        char *s = malloc(len + 1);
        for (size_t i = 0; i < len; i++) {
                do
                        s[i] = (char)(1 + rand() % 255);
                while (s[i] == '/');
        }
        s[len] = '\0';
        return s;
}

static size_t rand_len(size_t max) {
        switch (rand() % 4) {
        case 0: return max;
        case 1: return 1;
        default: return 1 + (size_t)rand() % max;
        }
}

static void rand_view(struct lock_view *v, size_t max_aliases, size_t max_content) {
        *v = (struct lock_view){ 0 };
        char *name = rand_name(rand_len(JOURNAL_NAME_MAX));
        if (asprintf(&v->path, "/dir/%s", name) < 0)
                abort();
        free(name);
        do
                v->ino = pick64();
        while (v->ino == 0);
        v->parent_ino = pick64();
        v->fence = pick64();
        v->how = (enum lock_how)(rand() % LOCK_HOW_COUNT);
        v->detached = rand() % 2;
        v->liveness_known = rand() % 2;
        v->pid = rand() % 3 == 0 ? INT32_MAX : 1 + rand() % INT32_MAX;
        if (v->detached && rand() % 2)
                v->pid = 0;
        v->uid = (uid_t)pick64();
        v->gid = (gid_t)pick64();
        v->start_time = pick64();
        v->acquired_at_ms = (int64_t)pick64();
        v->renewed_at_ms = (int64_t)pick64();
        v->ttl_s = (uint32_t)pick64();
        v->deadline_mono_ms = (int64_t)pick64();
        v->claim_ignored_pid = (pid_t)pick64();
        v->n_aliases = rand() % 3 == 0 ? max_aliases : (size_t)rand() % (max_aliases + 1);
        v->aliases = calloc(v->n_aliases ? v->n_aliases : 1, sizeof(*v->aliases));
        for (size_t i = 0; i < v->n_aliases; i++) {
                v->aliases[i].parent_ino = pick64();
                v->aliases[i].name = rand_name(rand_len(JOURNAL_NAME_MAX));
        }
        v->content_len = rand() % 3 == 0 ? max_content : (size_t)rand() % (max_content + 1);
        v->content = malloc(v->content_len ? v->content_len : 1);
        for (size_t i = 0; i < v->content_len; i++)
                v->content[i] = (char)rand();
        v->n_sharers = (size_t)rand() % 4;
        v->sharers = calloc(v->n_sharers ? v->n_sharers : 1, sizeof(*v->sharers));
        for (size_t i = 0; i < v->n_sharers; i++)
                v->sharers[i] = (struct lock_party){
                        .pid = 1 + rand() % INT32_MAX, .start_time = pick64(),
                        .uid = (uid_t)pick64(), .gid = (gid_t)pick64(), .shared = true,
                        .how = rand() % 2 ? LOCK_HOW_FLOCK : LOCK_HOW_FCNTL,
                        .since_ms = (int64_t)pick64() };
}

static void assert_round_trip(const struct lock_view *v, struct buf *b) {
        b->len = 0;
        assert_int_equal(journal_put_lock(b, v), 0);
        size_t off = 0;
        struct jrec r;
        assert_int_equal(journal_next(b->data, b->len, JOURNAL_VERSION, &off, &r), 1);
        assert_int_equal(off, b->len);
        assert_int_equal(r.type, JOURNAL_LOCK);
        assert_true(r.key == v->ino && r.parent == v->parent_ino);
        /* every field of the lock record, as the one list names them */
#define SAME_FIELD(type, field, what)                                                          \
        if (r.field != v->field)                                                               \
                fail_msg("record field %s: read back differs", #field);
        LOCK_RECORD_FIELDS(SAME_FIELD)
#undef SAME_FIELD
        const char *name = strrchr(v->path, '/') + 1;
        assert_int_equal(r.name_len, strlen(name));
        assert_memory_equal(r.name, name, r.name_len);
        assert_int_equal(r.detached, v->detached);
        assert_int_equal(r.pid, v->pid);
        assert_true(r.start_time == v->start_time && r.deadline_mono_ms == v->deadline_mono_ms);
        assert_int_equal(r.n_aliases, v->n_aliases);
        const uint8_t *p = r.aliases;
        for (size_t i = 0; i < v->n_aliases; i++) {
                uint64_t parent;
                const char *an;
                size_t len;
                p = jrec_alias_next(p, &parent, &an, &len);
                assert_true(parent == v->aliases[i].parent_ino);
                assert_int_equal(len, strlen(v->aliases[i].name));
                assert_memory_equal(an, v->aliases[i].name, len);
        }
        assert_int_equal(r.content_len, v->content_len);
        if (v->content_len)
                assert_memory_equal(r.content, v->content, v->content_len);
        assert_int_equal(r.n_sharers, v->n_sharers);
        for (size_t i = 0; i < v->n_sharers; i++) {
                struct lock_party s;
                jrec_sharer(&r, i, &s);
                const struct lock_party *w = &v->sharers[i];
                assert_true(s.pid == w->pid && s.start_time == w->start_time &&
                            s.uid == w->uid && s.gid == w->gid && s.how == w->how &&
                            s.since_ms == w->since_ms);
        }
        assert_int_equal(journal_next(b->data, b->len, JOURNAL_VERSION, &off, &r), 0);
}

static void free_view(struct lock_view *v) {
        for (size_t i = 0; i < v->n_aliases; i++)
                free(v->aliases[i].name);
        free(v->aliases);
        free(v->content);
        free(v->path);
        free(v->sharers);
}

/* Random views within the daemon's limits round-trip exactly: 2000 small
 * ones, 200 at -o max_names=LOCKFS_MAX_NAMES_LIMIT names, a few with
 * -o max_content's most, and one at the format's own limits. */
static void test_random_views_round_trip(void **state) {
        (void)state;
        srand(4242);
        struct buf b = { 0 };
        struct lock_view v;
        for (int i = 0; i < 2000; i++) {
                rand_view(&v, 4, 300);
                assert_round_trip(&v, &b);
                free_view(&v);
        }
        for (int i = 0; i < 200; i++) {
                rand_view(&v, LOCKFS_MAX_NAMES_LIMIT - 1, 4096);
                assert_round_trip(&v, &b);
                free_view(&v);
        }
        for (int i = 0; i < 4; i++) {
                rand_view(&v, LOCKFS_MAX_NAMES_LIMIT - 1, LOCKFS_MAX_CONTENT_LIMIT);
                assert_round_trip(&v, &b);
                free_view(&v);
        }
        /* every limit at once: the largest record there can be */
        rand_view(&v, 0, 0);
        free(v.path);
        char *name = rand_name(JOURNAL_NAME_MAX);
        assert_true(asprintf(&v.path, "/%s", name) > 0);
        free(name);
        free(v.aliases);
        v.n_aliases = JOURNAL_ALIASES_MAX;
        v.aliases = calloc(v.n_aliases, sizeof(*v.aliases));
        for (size_t i = 0; i < v.n_aliases; i++)
                v.aliases[i] = (struct lock_alias){ pick64(), rand_name(JOURNAL_NAME_MAX), NULL };
        free(v.content);
        v.content_len = JOURNAL_CONTENT_MAX;
        v.content = malloc(v.content_len);
        memset(v.content, 0xa5, v.content_len);
        free(v.sharers);
        v.n_sharers = JOURNAL_SHARERS_MAX;
        v.sharers = calloc(v.n_sharers, sizeof(*v.sharers));
        for (size_t i = 0; i < v.n_sharers; i++)
                v.sharers[i] = (struct lock_party){ .pid = (pid_t)(i + 1), .how = LOCK_HOW_FCNTL };
        assert_round_trip(&v, &b);
        assert_int_equal(b.len, 8 + JOURNAL_RECORD_MAX);
        free_view(&v);
        buf_free(&b);
}

/* ---- version 1 ------------------------------------------------------------ */

/* The record of v (no sharers) as version 1 wrote it: the alias count in a
 * u16 (the low bits of n when n is given, as the old writer wrapped it),
 * and no sharer count. */
static void put_v1(struct buf *b, const struct lock_view *v, long count) {
        struct buf v2 = { 0 };
        assert_int_equal(journal_put_lock(&v2, v), 0);
        v2.len -= 4; /* the sharer count (version 3) */
        size_t at = 8 + JOURNAL_LOCK_FIXED + 2 + strlen(strrchr(v->path, '/') + 1);
        uint32_t n = (uint32_t)(v2.len - 8 - 2), crc;
        uint16_t c16 = (uint16_t)(count < 0 ? (long)v->n_aliases : count);
        assert_int_equal(buf_reserve(b, v2.len), 0);
        uint8_t *f = (uint8_t *)b->data + b->len;
        memcpy(f + 8, v2.data + 8, at - 8);
        memcpy(f + at, &c16, 2);
        memcpy(f + at + 2, v2.data + at + 4, v2.len - at - 4);
        crc = crc32c(0, f + 8, n);
        memcpy(f, &n, 4);
        memcpy(f + 4, &crc, 4);
        b->len += 8 + n;
        buf_free(&v2);
}

static void test_version_1_records_still_decode(void **state) {
        (void)state;
        struct buf b = { 0 };
        struct lock_view v = sample_view();
        put_v1(&b, &v, -1);
        size_t off = 0;
        struct jrec r;
        assert_int_equal(journal_next(b.data, b.len, 1, &off, &r), 1);
        assert_int_equal(r.n_aliases, 2);
        assert_int_equal(r.key, 21);
        assert_int_equal(r.content_len, v.content_len);
        assert_memory_equal(r.content, v.content, v.content_len);
        uint64_t parent;
        const char *name;
        size_t len;
        jrec_alias_next(r.aliases, &parent, &name, &len);
        assert_memory_equal(name, "tmp.123", len);
        /* read as version 2 it does not decode (the count is 2 bytes short) */
        off = 0;
        assert_int_equal(journal_next(b.data, b.len, 2, &off, &r), -EBADMSG);
        assert_int_equal(journal_next(b.data, b.len, JOURNAL_VERSION + 1, &off, &r), -EBADMSG);
        assert_int_equal(journal_next(b.data, b.len, 0, &off, &r), -EBADMSG);
        /* the review's record: more names than the u16 said (valid CRC) */
        b.len = 0;
        put_v1(&b, &v, 0);
        assert_int_equal(journal_next(b.data, b.len, 1, &off, &r), -EBADMSG);
        buf_free(&b);
}

/* A version 2 count past JOURNAL_ALIASES_MAX is corrupt even where the
 * bytes would follow (the count is checked before any alias is read). */
static void test_version_2_count_is_capped(void **state) {
        (void)state;
        struct buf b = { 0 };
        struct lock_view v = sample_view();
        assert_int_equal(journal_put_lock(&b, &v), 0);
        size_t at = 8 + JOURNAL_LOCK_FIXED + 2 + strlen("state.lock");
        uint32_t big = JOURNAL_ALIASES_MAX + 1, n, crc;
        memcpy(b.data + at, &big, 4);
        memcpy(&n, b.data, 4);
        crc = crc32c(0, b.data + 8, n);
        memcpy(b.data + 4, &crc, 4);
        size_t off = 0;
        struct jrec r;
        assert_int_equal(journal_next(b.data, b.len, JOURNAL_VERSION, &off, &r), -EBADMSG);
        buf_free(&b);
}

/* Re-frame the record at the start of b after its body was changed. */
static void reframe(struct buf *b, size_t body_len) {
        uint32_t n = (uint32_t)body_len, crc = crc32c(0, b->data + 8, body_len);
        memcpy(b->data, &n, 4);
        memcpy(b->data + 4, &crc, 4);
        b->len = 8 + body_len;
}

/* Version 3's sharers (SPEC R7.3): the encoder refuses a sharer the
 * decoder would (pid 0, a way of holding other than flock or fcntl) and
 * more than JOURNAL_SHARERS_MAX; the decoder refuses a count over the cap
 * and a bad sharer even under a valid checksum; a version 2 record (no
 * sharer count) still decodes, without sharers. */
static void test_sharers_are_checked(void **state) {
        (void)state;
        struct lock_view v = sample_view();
        struct lock_party one = { .pid = 7, .how = LOCK_HOW_FLOCK, .shared = true };
        v.sharers = &one;
        v.n_sharers = 1;
        one.pid = 0;
        assert_refused(&v, -EINVAL);
        one.pid = 7;
        one.how = LOCK_HOW_CREATOR;
        assert_refused(&v, -EINVAL);
        one.how = LOCK_HOW_FLOCK;
        v.n_sharers = JOURNAL_SHARERS_MAX + 1;
        assert_refused(&v, -EMSGSIZE);
        v.n_sharers = 1;

        struct buf b = { 0 };
        assert_int_equal(journal_put_lock(&b, &v), 0);
        size_t body = b.len - 8, off = 0;
        struct jrec r;
        assert_int_equal(journal_next(b.data, b.len, JOURNAL_VERSION, &off, &r), 1);
        assert_int_equal(r.n_sharers, 1);
        uint8_t *sharer = (uint8_t *)b.data + b.len - JOURNAL_SHARER_SIZE;
        sharer[20] = LOCK_HOW_DETACHED; /* its how */
        reframe(&b, body);
        off = 0;
        assert_int_equal(journal_next(b.data, b.len, JOURNAL_VERSION, &off, &r), -EBADMSG);
        sharer[20] = LOCK_HOW_FCNTL;
        uint32_t big = JOURNAL_SHARERS_MAX + 1;
        memcpy(sharer - 4, &big, 4);
        reframe(&b, body);
        off = 0;
        assert_int_equal(journal_next(b.data, b.len, JOURNAL_VERSION, &off, &r), -EBADMSG);

        b.len = 0; /* version 2: the same record without its sharer count */
        v.n_sharers = 0;
        assert_int_equal(journal_put_lock(&b, &v), 0);
        reframe(&b, b.len - 8 - 4);
        off = 0;
        assert_int_equal(journal_next(b.data, b.len, 2, &off, &r), 1);
        assert_int_equal(r.n_sharers, 0);
        assert_int_equal(off, b.len);
        buf_free(&b);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_header_round_trip_and_checks),
                cmocka_unit_test(test_other_version_is_refused),
                cmocka_unit_test(test_records_round_trip),
                cmocka_unit_test(test_torn_record_never_decodes),
                cmocka_unit_test(test_every_bit_flip_is_detected),
                cmocka_unit_test(test_random_bodies_are_rejected_safely),
                cmocka_unit_test(test_encoder_refuses_what_cannot_decode),
                cmocka_unit_test(test_random_views_round_trip),
                cmocka_unit_test(test_version_1_records_still_decode),
                cmocka_unit_test(test_version_2_count_is_capped),
                cmocka_unit_test(test_sharers_are_checked),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
