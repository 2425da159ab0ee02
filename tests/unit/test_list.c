/* SPDX-License-Identifier: MIT */
/* Unit tests for the intrusive list: order of add and add_tail, deletion
 * anywhere (also inside a _safe walk), and the state of an element on no
 * list. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "list.h"

struct item {
        int v;
        struct list link;
};

/* The values of head's items in order, as decimal digits (items hold 0..9). */
static int digits(struct list *head) {
        int n = 0;
        struct list *pos;

        list_for_each(pos, head)
                n = n * 10 + list_entry(pos, struct item, link)->v;
        return n;
}

static void test_empty_and_unlinked(void **state) {
        (void)state;
        struct list head = LIST_INIT(head);
        struct item a = { .v = 1 };

        assert_true(list_empty(&head));
        assert_null(list_first_entry_or_null(&head, struct item, link));
        list_init(&a.link);
        assert_false(list_is_linked(&a.link));
        list_del(&a.link);                        /* on no list: a no-op */
        assert_false(list_is_linked(&a.link));
        assert_true(list_empty(&head));
}

static void test_add_and_add_tail(void **state) {
        (void)state;
        struct list head;
        struct item it[4] = { { .v = 1 }, { .v = 2 }, { .v = 3 }, { .v = 4 } };

        list_init(&head);
        list_add_tail(&head, &it[1].link);        /* 2 */
        list_add_tail(&head, &it[2].link);        /* 2 3 */
        list_add(&head, &it[0].link);             /* 1 2 3 */
        list_add_tail(&head, &it[3].link);        /* 1 2 3 4 */
        assert_int_equal(digits(&head), 1234);
        assert_false(list_empty(&head));
        assert_true(list_is_linked(&it[2].link));
        assert_ptr_equal(list_first_entry_or_null(&head, struct item, link), &it[0]);
        assert_ptr_equal(head.prev, &it[3].link);
}

static void test_del_anywhere(void **state) {
        (void)state;
        struct list head = LIST_INIT(head);
        struct item it[3] = { { .v = 1 }, { .v = 2 }, { .v = 3 } };

        for (int i = 0; i < 3; i++)
                list_add_tail(&head, &it[i].link);
        list_del(&it[1].link);                    /* middle */
        assert_int_equal(digits(&head), 13);
        assert_false(list_is_linked(&it[1].link));
        list_del(&it[0].link);                    /* first */
        assert_int_equal(digits(&head), 3);
        list_del(&it[2].link);                    /* last */
        assert_true(list_empty(&head));
        assert_ptr_equal(head.next, &head);
        assert_ptr_equal(head.prev, &head);
        list_add(&head, &it[1].link);             /* a deleted element can go back */
        assert_int_equal(digits(&head), 2);
}

/* list_for_each_safe allows deleting the element it stands on. */
static void test_delete_while_walking(void **state) {
        (void)state;
        struct list head = LIST_INIT(head);
        struct item it[6];
        struct list *pos, *tmp;

        for (int i = 0; i < 6; i++) {
                it[i].v = i;
                list_add_tail(&head, &it[i].link);
        }
        int visited = 0;
        list_for_each_safe(pos, tmp, &head) {
                visited++;
                if (list_entry(pos, struct item, link)->v % 2)
                        list_del(pos);
        }
        assert_int_equal(visited, 6);
        assert_int_equal(digits(&head), 24);       /* 0 2 4 */
        list_for_each_safe(pos, tmp, &head)
                list_del(pos);
        assert_true(list_empty(&head));
}

static void test_splice_tail_init(void **state) {
        (void)state;
        struct list from = LIST_INIT(from), to = LIST_INIT(to);
        struct item it[5] = { { .v = 1 }, { .v = 2 }, { .v = 3 }, { .v = 4 }, { .v = 5 } };

        list_splice_tail_init(&from, &to);        /* empty onto empty */
        assert_true(list_empty(&to));
        assert_true(list_empty(&from));
        list_add_tail(&to, &it[0].link);
        list_add_tail(&from, &it[1].link);
        list_add_tail(&from, &it[2].link);
        list_splice_tail_init(&from, &to);        /* 1 2 3 */
        assert_int_equal(digits(&to), 123);
        assert_true(list_empty(&from));
        assert_ptr_equal(to.prev, &it[2].link);
        assert_ptr_equal(it[1].link.prev, &it[0].link);
        list_add_tail(&from, &it[3].link);
        list_add_tail(&from, &it[4].link);
        struct list fresh = LIST_INIT(fresh);
        list_splice_tail_init(&to, &fresh);       /* onto an empty head */
        list_splice_tail_init(&from, &fresh);     /* 1 2 3 4 5 */
        assert_int_equal(digits(&fresh), 12345);
        assert_true(list_empty(&to));
        int back = 0;                             /* the prev links agree */
        for (struct list *pos = fresh.prev; pos != &fresh; pos = pos->prev)
                back = back * 10 + list_entry(pos, struct item, link)->v;
        assert_int_equal(back, 54321);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_empty_and_unlinked),
                cmocka_unit_test(test_add_and_add_tail),
                cmocka_unit_test(test_del_anywhere),
                cmocka_unit_test(test_delete_while_walking),
                cmocka_unit_test(test_splice_tail_init),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
