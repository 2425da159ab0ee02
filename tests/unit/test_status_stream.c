/* SPDX-License-Identifier: MIT */
/* Unit tests for reading .lockfs/locks.json in pieces: the lock table's
 * cursors (src/lt_cursor.c), the status budget (src/status_budget.c) and
 * the stream that joins them (src/status_stream.c). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "clock.h"
#include "locktable.h"
#include "status.h"
#include "status_budget.h"
#include "status_stream.h"
#include "store.h"
#include "store_mem.h"

struct fixture {
        struct store *store;
        struct locktable *t;
        struct caller self;
};

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof(*f));
        struct locktable_config cfg = { .max_locks = 5000, .max_content = 65536, .max_depth = 4 };
        assert_int_equal(store_mem_new(&f->store), 0);
        assert_int_equal(locktable_new(&cfg, f->store, &f->t), 0);
        assert_int_equal(holder_identify(getpid(), 0, 0, &f->self), 0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;
        locktable_free(f->t);
        store_free(f->store);
        free(f);
        return 0;
}

/* Take lock "l<i>" with len bytes of content c. */
static void take(struct fixture *f, int i, size_t len, char c) {
        char name[32];
        struct lt_attr a;
        struct lt_handle h;
        snprintf(name, sizeof(name), "l%d", i);
        assert_int_equal(locktable_create(f->t, LT_INO_ROOT, name, &f->self,
                                          O_WRONLY | O_CREAT | O_EXCL, &a, &h), 0);
        if (len) {
                char *buf = malloc(len);
                memset(buf, c, len);
                assert_int_equal(locktable_write(f->t, &h, &f->self, 0, buf, len), (ssize_t)len);
                free(buf);
        }
}

static void drop(struct fixture *f, int i) {
        char name[32];
        struct lock_view forced;
        snprintf(name, sizeof(name), "l%d", i);
        assert_int_equal(locktable_unlink(f->t, LT_INO_ROOT, name, &f->self, &forced), 0);
        lock_view_clear(&forced);
}

/* The number in "/l<n>". */
static int num_of(const struct lock_view *v) {
        return atoi(v->path + 2);
}

/* Peek up to max and commit; the lock numbers go to out. Returns the
 * peek's answer. */
static int next(struct fixture *f, struct lt_cursor *c, size_t max, size_t max_bytes, int *out,
                size_t *ret_n) {
        struct lock_view v[64];
        uint64_t seq;
        assert_true(max <= 64);
        int r = locktable_cursor_peek(f->t, c, v, max, max_bytes, ret_n, &seq);
        assert_true(r >= 0);
        for (size_t i = 0; i < *ret_n; i++)
                out[i] = num_of(&v[i]);
        for (size_t i = 0; i < *ret_n; i++)
                lock_view_clear(&v[i]);
        locktable_cursor_commit(f->t, c, seq);
        return r;
}

/* Oldest first, in batches of at most max, each lock once. */
static void test_cursor_order_and_batches(void **state) {
        struct fixture *f = *state;
        for (int i = 0; i < 10; i++)
                take(f, i, 0, 0);
        struct lt_cursor *c;
        assert_int_equal(locktable_cursor_new(f->t, &c), 0);
        int got[64], all[16];
        size_t n, total = 0;
        int r;
        do {
                r = next(f, c, 3, SIZE_MAX, got, &n);
                assert_true(n <= 3);
                memcpy(all + total, got, n * sizeof(int));
                total += n;
        } while (r == 0);
        assert_int_equal(total, 10);
        for (int i = 0; i < 10; i++)
                assert_int_equal(all[i], i);
        /* after the end: nothing more, still the end */
        assert_int_equal(next(f, c, 3, SIZE_MAX, got, &n), 1);
        assert_int_equal(n, 0);
        locktable_cursor_free(f->t, c);
}

/* The lock next to the cursor, and the one it just passed, go: the walk
 * goes on with the rest, nothing twice. */
static void test_cursor_survives_removals(void **state) {
        struct fixture *f = *state;
        for (int i = 0; i < 6; i++)
                take(f, i, 0, 0);
        struct lt_cursor *c;
        assert_int_equal(locktable_cursor_new(f->t, &c), 0);
        int got[64];
        size_t n;
        assert_int_equal(next(f, c, 2, SIZE_MAX, got, &n), 0);
        assert_int_equal(n, 2);
        assert_int_equal(got[0], 0);
        assert_int_equal(got[1], 1);
        drop(f, 1); /* the one just handed out */
        drop(f, 2); /* the next one */
        assert_int_equal(next(f, c, 2, SIZE_MAX, got, &n), 0);
        assert_int_equal(n, 2);
        assert_int_equal(got[0], 3);
        assert_int_equal(got[1], 4);
        drop(f, 0);
        drop(f, 3);
        drop(f, 4);
        drop(f, 5); /* everything goes: the end */
        assert_int_equal(next(f, c, 2, SIZE_MAX, got, &n), 1);
        assert_int_equal(n, 0);
        locktable_cursor_free(f->t, c);
}

/* Locks taken after the cursor was made are never shown, also a name
 * released and taken again (no name twice in one walk). */
static void test_cursor_ignores_later_locks(void **state) {
        struct fixture *f = *state;
        take(f, 0, 0, 0);
        take(f, 1, 0, 0);
        struct lt_cursor *c;
        assert_int_equal(locktable_cursor_new(f->t, &c), 0);
        take(f, 2, 0, 0);
        int got[64];
        size_t n;
        assert_int_equal(next(f, c, 1, SIZE_MAX, got, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(got[0], 0);
        drop(f, 0);
        take(f, 0, 0, 0); /* taken anew: a later lock */
        take(f, 3, 0, 0);
        assert_int_equal(next(f, c, 8, SIZE_MAX, got, &n), 1);
        assert_int_equal(n, 1);
        assert_int_equal(got[0], 1);
        locktable_cursor_free(f->t, c);
        /* a cursor made now sees them all, oldest first */
        assert_int_equal(locktable_cursor_new(f->t, &c), 0);
        assert_int_equal(next(f, c, 8, SIZE_MAX, got, &n), 1);
        assert_int_equal(n, 4);
        assert_int_equal(got[0], 1);
        assert_int_equal(got[1], 2);
        assert_int_equal(got[2], 0);
        assert_int_equal(got[3], 3);
        locktable_cursor_free(f->t, c);
}

/* Without a commit, the same locks come again (a reader out of budget
 * loses nothing). */
static void test_cursor_peek_without_commit_repeats(void **state) {
        struct fixture *f = *state;
        for (int i = 0; i < 4; i++)
                take(f, i, 0, 0);
        struct lt_cursor *c;
        assert_int_equal(locktable_cursor_new(f->t, &c), 0);
        struct lock_view v[4];
        size_t n;
        uint64_t seq;
        assert_int_equal(locktable_cursor_peek(f->t, c, v, 2, SIZE_MAX, &n, &seq), 0);
        assert_int_equal(n, 2);
        assert_int_equal(num_of(&v[0]), 0);
        lock_view_clear(&v[0]);
        lock_view_clear(&v[1]);
        drop(f, 0);
        assert_int_equal(locktable_cursor_peek(f->t, c, v, 2, SIZE_MAX, &n, &seq), 0);
        assert_int_equal(n, 2);
        assert_int_equal(num_of(&v[0]), 1);
        assert_int_equal(num_of(&v[1]), 2);
        lock_view_clear(&v[0]);
        lock_view_clear(&v[1]);
        locktable_cursor_free(f->t, c);
}

/* A batch stops once max_bytes of content are copied, but always copies
 * one lock. */
static void test_cursor_batch_bytes(void **state) {
        struct fixture *f = *state;
        for (int i = 0; i < 5; i++)
                take(f, i, 4000, 'x');
        struct lt_cursor *c;
        assert_int_equal(locktable_cursor_new(f->t, &c), 0);
        int got[64];
        size_t n;
        assert_int_equal(next(f, c, 64, 1, got, &n), 0);
        assert_int_equal(n, 1); /* one, even past max_bytes */
        assert_int_equal(next(f, c, 64, 8000, got, &n), 0);
        assert_int_equal(n, 2); /* 4000 + path..., then 8000 + : stop */
        assert_int_equal(got[0], 1);
        assert_int_equal(got[1], 2);
        locktable_cursor_free(f->t, c);
}

/* Other readers' cursors in the way are passed over, a bounded number per
 * call: a peek may answer 0 locks and "more", then goes on. */
static void test_cursor_skips_other_cursors_boundedly(void **state) {
        struct fixture *f = *state;
        enum { N = LT_CURSOR_SKIP_MAX + 10 };
        struct lt_cursor **others = calloc(N, sizeof(*others));
        for (int i = 0; i < N; i++)
                assert_int_equal(locktable_cursor_new(f->t, &others[i]), 0);
        take(f, 0, 0, 0);
        struct lt_cursor *c;
        assert_int_equal(locktable_cursor_new(f->t, &c), 0);
        /* c is before every other cursor: they are in its way */
        int got[64];
        size_t n, calls = 0, total = 0;
        int r;
        do {
                r = next(f, c, 8, SIZE_MAX, got, &n);
                total += n;
                calls++;
                assert_true(calls < 10);
        } while (r == 0);
        assert_int_equal(total, 1);
        assert_int_equal(got[0], 0);
        assert_true(calls >= 2);
        for (int i = 0; i < N; i++)
                locktable_cursor_free(f->t, others[i]);
        free(others);
        locktable_cursor_free(f->t, c);
}

/* ---- the budget ---- */

static void test_budget_per_uid_and_total(void **state) {
        (void)state;
        struct status_budget *b = status_budget_new(100, 250, 0);
        assert_non_null(b);
        assert_int_equal(status_budget_per_uid(b), 100);
        assert_int_equal(status_budget_total(b), 250);
        assert_int_equal(status_budget_charge(b, 1000, 60), 0);
        assert_int_equal(status_budget_charge(b, 1000, 41), -ENOMEM); /* past the uid's */
        assert_int_equal(status_budget_used(b, 1000), 60);
        assert_int_equal(status_budget_charge(b, 1000, 40), 0);
        assert_int_equal(status_budget_charge(b, 1001, 100), 0);
        assert_int_equal(status_budget_charge(b, 1002, 51), -ENOMEM); /* past the total */
        assert_int_equal(status_budget_used(b, 1002), 0);
        assert_int_equal(status_budget_charge(b, 1002, 50), 0);
        assert_int_equal(status_budget_total_used(b), 250);
        /* root: its own limit, not the total */
        assert_int_equal(status_budget_charge(b, 0, 100), 0);
        assert_int_equal(status_budget_charge(b, 0, 1), -ENOMEM);
        status_budget_release(b, 1000, 100);
        assert_int_equal(status_budget_used(b, 1000), 0);
        assert_int_equal(status_budget_charge(b, 1000, 100), -ENOMEM); /* root took the room */
        status_budget_release(b, 0, 100);
        assert_int_equal(status_budget_charge(b, 1000, 100), 0);
        assert_int_equal(status_budget_total_used(b), 250);
        status_budget_free(b);
        /* NULL: no limit */
        assert_int_equal(status_budget_charge(NULL, 5, SIZE_MAX), 0);
}

static void test_budget_defaults_fit_one_lock(void **state) {
        (void)state;
        struct status_budget *b = status_budget_new(0, 0, 1000);
        assert_int_equal(status_budget_per_uid(b), STATUS_BUDGET_DEFAULT_PER_UID);
        assert_int_equal(status_budget_total(b), STATUS_BUDGET_DEFAULT_TOTAL);
        status_budget_free(b);
        b = status_budget_new(0, 0, (size_t)100 << 20);
        assert_int_equal(status_budget_per_uid(b), (size_t)200 << 20);
        assert_int_equal(status_budget_total(b), (size_t)1600 << 20);
        status_budget_free(b);
}

/* ---- the stream ---- */

/* A growing copy of what was read. */
struct text {
        char *p;
        size_t len, cap;
};

static void text_add(struct text *t, const char *s, size_t n) {
        if (t->len + n + 1 > t->cap) {
                t->cap = (t->len + n + 1) * 2;
                t->p = realloc(t->p, t->cap);
                assert_non_null(t->p);
        }
        memcpy(t->p + t->len, s, n);
        t->len += n;
        t->p[t->len] = '\0';
}

/* Read the whole document with reads of size bytes. */
static char *read_all(struct status_stream *s, size_t size, size_t *ret_len) {
        struct text t = {0};
        text_add(&t, "", 0);
        for (;;) {
                const char *p;
                size_t n;
                int r = status_stream_read(s, t.len, size, &p, &n);
                assert_int_equal(r, 0);
                if (n == 0)
                        break;
                assert_true(n <= size);
                text_add(&t, p, n);
        }
        *ret_len = t.len;
        return t.p;
}

/* Read in pieces, the text is exactly the array rendered at once. */
static void test_stream_matches_array(void **state) {
        struct fixture *f = *state;
        for (int i = 0; i < 150; i++)
                take(f, i, (size_t)(i % 7) * 3000, (char)(1 + i % 3));
        struct lock_view *v;
        size_t n, len, ref_len;
        assert_int_equal(locktable_views(f->t, &v, &n), 0);
        /* locktable_views lists newest first; the stream oldest first */
        for (size_t i = 0; i < n / 2; i++) {
                struct lock_view tmp = v[i];
                v[i] = v[n - 1 - i];
                v[n - 1 - i] = tmp;
        }
        char *ref = status_render_array(v, n, clock_wall_ms(), "h", &ref_len);
        lock_views_free(v, n);
        struct status_budget *b = status_budget_new(0, 0, 0);
        struct status_stream *s;
        assert_int_equal(status_stream_new(f->t, b, 1000, "h", &s), 0);
        char *doc = read_all(s, 100, &len);
        /* age_ms differs between the two renderings: compare parsed, minus it */
        cJSON *a = cJSON_Parse(doc), *r = cJSON_Parse(ref);
        assert_non_null(a);
        assert_non_null(r);
        assert_int_equal(cJSON_GetArraySize(a), 150);
        for (int i = 0; i < 150; i++) {
                cJSON_DeleteItemFromObject(cJSON_GetObjectItem(cJSON_GetArrayItem(a, i), "lockfs"), "age_ms");
                cJSON_DeleteItemFromObject(cJSON_GetObjectItem(cJSON_GetArrayItem(r, i), "lockfs"), "age_ms");
        }
        assert_true(cJSON_Compare(a, r, true));
        assert_int_equal(doc[len - 1], '\n');
        cJSON_Delete(a);
        cJSON_Delete(r);
        free(doc);
        free(ref);
        status_stream_free(s);
        assert_int_equal(status_budget_total_used(b), 0);
        status_budget_free(b);
}

static void test_stream_empty(void **state) {
        struct fixture *f = *state;
        struct status_stream *s;
        size_t len;
        assert_int_equal(status_stream_new(f->t, NULL, 1000, "h", &s), 0);
        char *doc = read_all(s, 1, &len);
        assert_string_equal(doc, "[]\n");
        free(doc);
        status_stream_free(s);
}

/* Small reads while locks come and go: one valid array, each lock once,
 * only locks held at the open. */
static void test_stream_valid_under_churn(void **state) {
        struct fixture *f = *state;
        for (int i = 0; i < 300; i++)
                take(f, i, 100, 'a');
        struct status_stream *s;
        assert_int_equal(status_stream_new(f->t, NULL, 1000, "h", &s), 0);
        struct text t = {0};
        int next_new = 1000, next_drop = 0;
        text_add(&t, "", 0);
        for (;;) {
                const char *p;
                size_t n;
                assert_int_equal(status_stream_read(s, t.len, 100, &p, &n), 0);
                if (n == 0)
                        break;
                text_add(&t, p, n);
                /* churn: one lock goes (from the oldest), one comes */
                if (next_drop < 300 && t.len % 3 == 0)
                        drop(f, next_drop++);
                if (next_new < 1300)
                        take(f, next_new++, 50, 'b');
        }
        char *doc = t.p;
        cJSON *a = cJSON_Parse(doc);
        assert_non_null(a);
        assert_true(cJSON_IsArray(a));
        int count = cJSON_GetArraySize(a), last = -1;
        assert_true(count > 0 && count <= 300);
        for (int i = 0; i < count; i++) {
                const char *path = cJSON_GetObjectItem(cJSON_GetObjectItem(cJSON_GetArrayItem(a, i),
                                                                           "lockfs"), "path")->valuestring;
                int k = atoi(path + 2);
                assert_true(k < 300);   /* none taken after the open */
                assert_true(k > last);  /* in order, each once */
                last = k;
        }
        cJSON_Delete(a);
        free(doc);
        status_stream_free(s);
}

/* Offsets out of sequence are refused; the last read's offset may be read
 * again. */
static void test_stream_sequential_only(void **state) {
        struct fixture *f = *state;
        take(f, 0, 0, 0);
        struct status_stream *s;
        const char *p;
        size_t n;
        char first[10];
        assert_int_equal(status_stream_new(f->t, NULL, 1000, "h", &s), 0);
        assert_int_equal(status_stream_read(s, 100, 10, &p, &n), -ESPIPE); /* ahead */
        assert_int_equal(status_stream_read(s, 0, 10, &p, &n), 0);
        assert_int_equal(n, 10);
        memcpy(first, p, 10);
        assert_int_equal(status_stream_read(s, 0, 10, &p, &n), 0); /* again */
        assert_memory_equal(p, first, 10);
        assert_int_equal(status_stream_read(s, 10, 10, &p, &n), 0);
        assert_int_equal(status_stream_read(s, 5, 10, &p, &n), -ESPIPE); /* back */
        assert_int_equal(status_stream_read(s, 0, 10, &p, &n), -ESPIPE);
        status_stream_free(s);
}

/* Past its budget a reader gets ENOMEM and loses nothing: once room is
 * made, the same read goes on and the document is complete. Another uid
 * reads meanwhile. */
static void test_stream_budget(void **state) {
        struct fixture *f = *state;
        for (int i = 0; i < 100; i++)
                take(f, i, 60000, 1); /* ~360 KB rendered each */
        struct status_budget *b = status_budget_new(4 << 20, 64 << 20, 0);
        struct status_stream *s[8];
        const char *p;
        size_t n;
        int refused = -1;
        for (int i = 0; i < 8; i++) {
                assert_int_equal(status_stream_new(f->t, b, 1000, "h", &s[i]), 0);
                int r = status_stream_read(s[i], 0, 1, &p, &n);
                if (r == -ENOMEM && refused < 0)
                        refused = i;
                assert_true(status_budget_used(b, 1000) <= (4 << 20));
        }
        assert_true(refused > 0); /* a few batches fit, then ENOMEM */
        /* another user still reads it all */
        struct status_stream *other;
        size_t len;
        assert_int_equal(status_stream_new(f->t, b, 1001, "h", &other), 0);
        char *doc = read_all(other, 4096, &len);
        cJSON *a = cJSON_Parse(doc);
        assert_int_equal(cJSON_GetArraySize(a), 100);
        cJSON_Delete(a);
        free(doc);
        status_stream_free(other);
        /* room made: the refused reader goes on from where it was */
        for (int i = 0; i < 8; i++)
                if (i != refused)
                        status_stream_free(s[i]);
        assert_int_equal(status_budget_used(b, 1000), 0);
        doc = read_all(s[refused], 4096, &len);
        a = cJSON_Parse(doc);
        assert_int_equal(cJSON_GetArraySize(a), 100);
        cJSON_Delete(a);
        free(doc);
        status_stream_free(s[refused]);
        assert_int_equal(status_budget_total_used(b), 0);
        status_budget_free(b);
}

int main(void) {
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
        const struct CMUnitTest tests[] = {
                T(test_cursor_order_and_batches),
                T(test_cursor_survives_removals),
                T(test_cursor_ignores_later_locks),
                T(test_cursor_peek_without_commit_repeats),
                T(test_cursor_batch_bytes),
                T(test_cursor_skips_other_cursors_boundedly),
                cmocka_unit_test(test_budget_per_uid_and_total),
                cmocka_unit_test(test_budget_defaults_fit_one_lock),
                T(test_stream_matches_array),
                T(test_stream_empty),
                T(test_stream_valid_under_churn),
                T(test_stream_sequential_only),
                T(test_stream_budget),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
