/* SPDX-License-Identifier: MIT */
/* Unit tests for the intrusive hash table: what is inserted is found
 * (through its chain and htab_for_each_possible) until it is removed,
 * across growth, and with colliding hashes; the two hash functions. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "htab.h"

struct item {
        int key;
        int pad;             /* so the link is not the first member */
        struct hlink link;
};

/* The item with key whose hash is hash, or NULL. */
static struct item *find(const struct htab *t, uint64_t hash, int key) {
        struct item *it;

        htab_for_each_possible(t, hash, it, struct item, link)
                if (it->key == key)
                        return it;
        return NULL;
}

/* How many links the table holds, counted over every bucket. */
static size_t count_links(const struct htab *t) {
        size_t n = 0;

        for (size_t i = 0; i <= t->mask; i++)
                for (struct hlink *l = t->buckets[i]; l; l = l->next)
                        n++;
        return n;
}

static uint64_t hash_of(int key) {
        return htab_hash_u64((uint64_t)key);
}

static void test_insert_find_remove(void **state) {
        (void)state;
        struct htab t;
        struct item a = { .key = 1 }, b = { .key = 2 };

        assert_int_equal(htab_init(&t), 0);
        assert_null(find(&t, hash_of(1), 1));
        htab_insert(&t, &a.link, hash_of(1));
        htab_insert(&t, &b.link, hash_of(2));
        assert_int_equal(t.n, 2);
        assert_ptr_equal(find(&t, hash_of(1), 1), &a);
        assert_ptr_equal(find(&t, hash_of(2), 2), &b);
        assert_int_equal(a.link.hash, hash_of(1));
        htab_remove(&t, &a.link);
        assert_int_equal(t.n, 1);
        assert_null(a.link.next);
        assert_null(find(&t, hash_of(1), 1));
        assert_ptr_equal(find(&t, hash_of(2), 2), &b);
        htab_remove(&t, &b.link);
        assert_int_equal(t.n, 0);
        assert_int_equal(count_links(&t), 0);
        htab_free(&t);
        assert_null(t.buckets);
}

/* Many inserts grow the table (a power of two, at most about two links
 * per bucket) and every item stays findable; removing every other one
 * leaves exactly the rest. */
static void test_growth_keeps_everything(void **state) {
        (void)state;
        enum { N = 5000 };
        struct item *items = calloc(N, sizeof(*items));
        struct htab t;

        assert_non_null(items);
        assert_int_equal(htab_init(&t), 0);
        size_t first_buckets = t.mask + 1;
        for (int i = 0; i < N; i++) {
                items[i].key = i;
                htab_insert(&t, &items[i].link, hash_of(i));
        }
        assert_int_equal(t.n, N);
        assert_true(t.mask + 1 > first_buckets);
        assert_int_equal((t.mask + 1) & t.mask, 0);
        assert_true(t.n <= 2 * (t.mask + 1));
        assert_int_equal(count_links(&t), N);
        for (int i = 0; i < N; i++)
                assert_ptr_equal(find(&t, hash_of(i), i), &items[i]);
        for (int i = 0; i < N; i += 2)
                htab_remove(&t, &items[i].link);
        assert_int_equal(t.n, N / 2);
        assert_int_equal(count_links(&t), N / 2);
        for (int i = 0; i < N; i++)
                assert_ptr_equal(find(&t, hash_of(i), i), i % 2 ? &items[i] : NULL);
        htab_free(&t);
        free(items);
}

/* Equal hashes share a chain: the walk visits each item of that hash (and
 * no other), and the caller's key comparison tells them apart. */
static void test_for_each_possible_visits_equal_hashes_only(void **state) {
        (void)state;
        struct htab t;
        struct item same[3] = { { .key = 10 }, { .key = 11 }, { .key = 12 } };
        struct item other = { .key = 13 };
        /* named `hash` on purpose: the macro's parameter has the name of
         * the member it reads (->hash), so any other argument expression
         * replaces the member name and does not compile */
        uint64_t hash = 0x40;                  /* bucket 0 of 64 */
        uint64_t h_other = 0x80;               /* the same bucket, another hash */

        assert_int_equal(htab_init(&t), 0);
        for (int i = 0; i < 3; i++)
                htab_insert(&t, &same[i].link, hash);
        htab_insert(&t, &other.link, h_other);
        assert_ptr_equal(htab_chain(&t, hash), htab_chain(&t, h_other));
        int seen = 0, visits = 0;
        struct item *it;
        htab_for_each_possible(&t, hash, it, struct item, link) {
                assert_true(it->key >= 10 && it->key <= 12);
                seen |= 1 << (it->key - 10);
                visits++;
        }
        assert_int_equal(seen, 7);
        assert_int_equal(visits, 3);
        assert_ptr_equal(find(&t, hash, 11), &same[1]);
        assert_null(find(&t, hash, 13));
        assert_ptr_equal(find(&t, h_other, 13), &other);
        htab_remove(&t, &same[1].link);
        assert_null(find(&t, hash, 11));
        assert_ptr_equal(find(&t, hash, 10), &same[0]);
        assert_ptr_equal(find(&t, hash, 12), &same[2]);
        htab_free(&t);
}

/* Removing a link that is not in the table changes nothing. */
static void test_remove_of_an_absent_link(void **state) {
        (void)state;
        struct htab t;
        struct item in = { .key = 1 }, out = { .key = 2 };

        assert_int_equal(htab_init(&t), 0);
        htab_insert(&t, &in.link, hash_of(1));
        out.link.hash = hash_of(1);
        htab_remove(&t, &out.link);
        assert_int_equal(t.n, 1);
        assert_ptr_equal(find(&t, hash_of(1), 1), &in);
        htab_free(&t);
}

/* FNV-1a: the published 64-bit values, and continuing over pieces. */
static void test_hash_bytes(void **state) {
        (void)state;
        assert_true(htab_hash_bytes(HTAB_SEED, "", 0) == 0xcbf29ce484222325ULL);
        assert_true(htab_hash_bytes(HTAB_SEED, "a", 1) == 0xaf63dc4c8601ec8cULL);
        assert_true(htab_hash_bytes(HTAB_SEED, "foobar", 6) == 0x85944171f73967e8ULL);
        uint64_t h = htab_hash_bytes(HTAB_SEED, "foo", 3);
        assert_true(htab_hash_bytes(h, "bar", 3) == 0x85944171f73967e8ULL);
}

/* The integer hash spreads consecutive keys over the buckets: no bucket
 * of 64 gets more than a few times its share of 6400 keys. */
static void test_hash_u64_spreads(void **state) {
        (void)state;
        unsigned buckets[64] = { 0 };

        assert_true(htab_hash_u64(1) != htab_hash_u64(2));
        for (uint64_t k = 0; k < 6400; k++)
                buckets[htab_hash_u64(k) & 63]++;
        for (int i = 0; i < 64; i++)
                assert_true(buckets[i] > 50 && buckets[i] < 200);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_insert_find_remove),
                cmocka_unit_test(test_growth_keeps_everything),
                cmocka_unit_test(test_for_each_possible_visits_equal_hashes_only),
                cmocka_unit_test(test_remove_of_an_absent_link),
                cmocka_unit_test(test_hash_bytes),
                cmocka_unit_test(test_hash_u64_spreads),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
