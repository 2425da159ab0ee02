/* SPDX-License-Identifier: MIT */
/* Unit tests for the deadline min-heap. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "heap.h"

#define N 1000

static struct heap_entry *pop(struct heap *h) {
        struct heap_entry *e = heap_top(h);
        if (e)
                heap_remove(h, e);
        return e;
}

static void test_pops_in_key_order(void **state) {
        (void)state;
        struct heap h = HEAP_INIT;
        struct heap_entry *e = calloc(N, sizeof(*e));
        srand(7);
        for (int i = 0; i < N; i++) {
                heap_entry_init(&e[i]);
                assert_int_equal(heap_push(&h, &e[i], rand() % 5000), 0);
        }
        int64_t last = -1;
        for (int i = 0; i < N; i++) {
                struct heap_entry *t = pop(&h);
                assert_non_null(t);
                assert_true(t->key >= last);
                assert_int_equal(t->index, HEAP_NOT_QUEUED);
                last = t->key;
        }
        assert_null(heap_top(&h));
        heap_free(&h);
        free(e);
}

static void test_remove_and_rekey_anywhere(void **state) {
        (void)state;
        struct heap h = HEAP_INIT;
        struct heap_entry e[64];
        for (int i = 0; i < 64; i++) {
                heap_entry_init(&e[i]);
                assert_int_equal(heap_push(&h, &e[i], 1000 + i), 0);
        }
        for (int i = 0; i < 64; i += 3)
                heap_remove(&h, &e[i]);
        heap_remove(&h, &e[0]); /* not queued: a no-op */
        heap_rekey(&h, &e[50], 1);   /* to the front */
        heap_rekey(&h, &e[1], 99999); /* to the back */
        assert_ptr_equal(heap_top(&h), &e[50]);
        int64_t last = -1;
        size_t count = 0;
        struct heap_entry *t;
        while ((t = pop(&h))) {
                assert_true(t->key >= last);
                last = t->key;
                count++;
        }
        assert_int_equal(count, 64 - 22);
        assert_int_equal(last, 99999);
        heap_free(&h);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_pops_in_key_order),
                cmocka_unit_test(test_remove_and_rekey_anywhere),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
