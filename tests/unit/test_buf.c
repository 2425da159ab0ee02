/* SPDX-License-Identifier: MIT */
/* Unit tests for the growable byte buffer and the array growth rule: what
 * is put is kept in order and NUL-terminated, growth doubles, a size that
 * would overflow is refused with nothing changed. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "buf.h"

static void test_empty_buffer(void **state) {
        (void)state;
        struct buf b = { 0 };

        assert_null(buf_steal(&b));
        buf_free(&b);
        assert_null(b.data);
        assert_int_equal(b.len, 0);
        assert_int_equal(b.cap, 0);
}

static void test_put_puts_printf_append_in_order(void **state) {
        (void)state;
        struct buf b = { 0 };

        assert_int_equal(buf_puts(&b, "lock"), 0);
        assert_int_equal(buf_put(&b, "fs!", 2), 0);
        assert_int_equal(buf_printf(&b, " %d/%s", 42, "x"), 0);
        assert_int_equal(b.len, strlen("lockfs 42/x"));
        assert_string_equal(b.data, "lockfs 42/x");
        assert_true(b.cap > b.len);
        assert_int_equal(buf_put(&b, NULL, 0), 0);     /* nothing: still a string */
        assert_string_equal(b.data, "lockfs 42/x");
        buf_free(&b);
        assert_null(b.data);
}

/* Bytes are kept as they are, NULs included; the terminator is not counted. */
static void test_binary_content(void **state) {
        (void)state;
        struct buf b = { 0 };
        const char bytes[] = { 'a', '\0', 'b', '\xff' };

        assert_int_equal(buf_put(&b, bytes, sizeof(bytes)), 0);
        assert_int_equal(b.len, sizeof(bytes));
        assert_memory_equal(b.data, bytes, sizeof(bytes));
        assert_int_equal(b.data[b.len], '\0');
        buf_free(&b);
}

/* Many small appends: the content is right and the capacity doubles from
 * 256 (so the number of reallocations stays logarithmic). */
static void test_growth(void **state) {
        (void)state;
        struct buf b = { 0 };
        size_t caps_seen = 0, last_cap = 0;

        for (int i = 0; i < 10000; i++) {
                assert_int_equal(buf_printf(&b, "%c", 'a' + i % 26), 0);
                if (b.cap != last_cap) {
                        assert_true(last_cap == 0 ? b.cap == 256 : b.cap == 2 * last_cap);
                        last_cap = b.cap;
                        caps_seen++;
                }
        }
        assert_int_equal(b.len, 10000);
        assert_true(caps_seen <= 7);                   /* 256 .. 16384 */
        for (int i = 0; i < 10000; i++)
                assert_int_equal(b.data[i], 'a' + i % 26);
        assert_int_equal(b.data[10000], '\0');
        buf_free(&b);
}

/* buf_steal gives the string away and leaves an empty buffer to reuse. */
static void test_steal(void **state) {
        (void)state;
        struct buf b = { 0 };

        assert_int_equal(buf_puts(&b, "held"), 0);
        char *s = buf_steal(&b);
        assert_string_equal(s, "held");
        assert_null(b.data);
        assert_int_equal(b.len, 0);
        assert_int_equal(b.cap, 0);
        assert_int_equal(buf_puts(&b, "again"), 0);
        assert_string_equal(b.data, "again");
        free(s);
        buf_free(&b);
}

/* A reservation past SIZE_MAX is refused and leaves the buffer as it was. */
static void test_overflow_is_refused(void **state) {
        (void)state;
        struct buf b = { 0 };

        assert_int_equal(buf_puts(&b, "keep"), 0);
        char *data = b.data;
        size_t cap = b.cap;
        assert_int_equal(buf_reserve(&b, SIZE_MAX), -ENOMEM);
        assert_int_equal(buf_reserve(&b, SIZE_MAX - b.len), -ENOMEM);
        assert_ptr_equal(b.data, data);
        assert_int_equal(b.cap, cap);
        assert_int_equal(b.len, 4);
        assert_string_equal(b.data, "keep");
        buf_free(&b);
}

static void test_array_grow(void **state) {
        (void)state;
        int *items = NULL;
        size_t cap = 0;

        assert_int_equal(array_grow(&items, &cap, 1, sizeof(*items), 4), 0);
        assert_int_equal(cap, 4);
        for (int i = 0; i < 4; i++)
                items[i] = i;
        assert_int_equal(array_grow(&items, &cap, 4, sizeof(*items), 4), 0); /* fits */
        assert_int_equal(cap, 4);
        assert_int_equal(array_grow(&items, &cap, 5, sizeof(*items), 4), 0);
        assert_int_equal(cap, 8);
        assert_int_equal(array_grow(&items, &cap, 33, sizeof(*items), 4), 0);
        assert_int_equal(cap, 64);
        for (int i = 0; i < 4; i++)
                assert_int_equal(items[i], i);          /* kept across growth */
        int *before = items;
        assert_int_equal(array_grow(&items, &cap, SIZE_MAX / 2, sizeof(*items), 4), -ENOMEM);
        assert_int_equal(array_grow(&items, &cap, SIZE_MAX, sizeof(*items), 4), -ENOMEM);
        assert_ptr_equal(items, before);
        assert_int_equal(cap, 64);
        free(items);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_empty_buffer),
                cmocka_unit_test(test_put_puts_printf_append_in_order),
                cmocka_unit_test(test_binary_content),
                cmocka_unit_test(test_growth),
                cmocka_unit_test(test_steal),
                cmocka_unit_test(test_overflow_is_refused),
                cmocka_unit_test(test_array_grow),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
