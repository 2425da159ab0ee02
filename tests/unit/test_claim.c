/* SPDX-License-Identifier: MIT */
/* Unit tests for claim.c: the pid and TTL claims in what a holder wrote,
 * and its content read as one JSON object. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "claim.h"

/* ---- claim parsing ---- */

struct claim_case {
        const char *content;
        size_t len; /* 0: strlen(content) */
        bool has_pid;
        pid_t pid;
        bool has_ttl;
        uint32_t ttl_s;
};

static const struct claim_case claim_cases[] = {
        /* decimal pids, classic pid-file formats */
        {"1234", 0, true, 1234, false, 0},
        {"1234\n", 0, true, 1234, false, 0},
        {"  1234\n", 0, true, 1234, false, 0},
        {"      1234", 0, true, 1234, false, 0},   /* HDB: 10 bytes, space padded */
        {"      1234\n", 0, true, 1234, false, 0}, /* HDB with newline */
        {"\t1234\r\n", 0, true, 1234, false, 0},
        {"0", 0, true, 0, false, 0},
        {"0\n", 0, true, 0, false, 0},
        {"00001234", 0, true, 1234, false, 0},
        {"2147483647", 0, true, INT32_MAX, false, 0},
        {"1234X", 4, true, 1234, false, 0}, /* length is honoured */
        /* not a decimal pid */
        {"2147483648", 0, false, 0, false, 0},
        {"99999999999999999999", 0, false, 0, false, 0},
        {"-1", 0, false, 0, false, 0},
        {"+5", 0, false, 0, false, 0},
        {"12abc", 0, false, 0, false, 0},
        {"12 34", 0, false, 0, false, 0},
        {"12.5", 0, false, 0, false, 0},
        {"0x10", 0, false, 0, false, 0},
        {"", 0, false, 0, false, 0},
        {" \n\t ", 0, false, 0, false, 0},
        {"12\0", 3, false, 0, false, 0},
        {"hello", 0, false, 0, false, 0},
        /* JSON objects */
        {"{\"pid\": 1234}", 0, true, 1234, false, 0},
        {"  {\"pid\":7}\n", 0, true, 7, false, 0},
        {"{\"pid\": 0}", 0, true, 0, false, 0},
        {"{\"pid\": 2147483647}", 0, true, INT32_MAX, false, 0},
        {"{\"pid\": 1e3}", 0, true, 1000, false, 0},
        {"{\"pid\": 1, \"pid\": 2}", 0, true, 2, false, 0},
        {"{\"pid\": 1234, \"ttl_s\": 60}", 0, true, 1234, true, 60},
        {"{\"ttl_s\": 0}", 0, false, 0, true, 0},
        {"{\"ttl_s\": 315360000}", 0, false, 0, true, 315360000},
        {"{\"pid\":55}XYZ", 10, true, 55, false, 0}, /* length is honoured */
        {"{\"operation\": \"x\", \"pid\": 5, \"ttl_s\": 30, \"n\": [1]}", 0, true, 5, true, 30},
        /* JSON that claims nothing */
        {"{\"pid\": 12.5}", 0, false, 0, false, 0},
        {"{\"pid\": -1}", 0, false, 0, false, 0},
        {"{\"pid\": 2147483648}", 0, false, 0, false, 0},
        {"{\"pid\": \"1234\"}", 0, false, 0, false, 0},
        {"{\"pid\": true}", 0, false, 0, false, 0},
        {"{\"pid\": null}", 0, false, 0, false, 0},
        {"{\"pid\": [1]}", 0, false, 0, false, 0},
        {"{\"a\": {\"pid\": 5}}", 0, false, 0, false, 0},
        {"{\"PID\": 5}", 0, false, 0, false, 0},
        {"{\"ttl_s\": -5}", 0, false, 0, false, 0},
        {"{\"ttl_s\": 1.5}", 0, false, 0, false, 0},
        {"{\"ttl_s\": 315360001}", 0, false, 0, false, 0},
        {"{\"ttl_s\": \"60\"}", 0, false, 0, false, 0},
        {"{\"pid\": 5} trailing", 0, false, 0, false, 0},
        {"{\"pid\": 5}{}", 0, false, 0, false, 0},
        {"{\"pid\":5}\0", 10, false, 0, false, 0},
        {"{\"pid\": 5", 0, false, 0, false, 0},
        {"{", 0, false, 0, false, 0},
        {"[1234]", 0, false, 0, false, 0},
        {"\"1234\"", 0, false, 0, false, 0},
        {"1234.0", 0, false, 0, false, 0},
        {"null", 0, false, 0, false, 0},
};

static void test_parse_claim_matrix(void **state) {
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(claim_cases) / sizeof(claim_cases[0]); i++) {
                const struct claim_case *t = &claim_cases[i];
                size_t len = t->len ? t->len : strlen(t->content);
                /* a heap copy of exactly len bytes: ASan catches reads past it */
                char *copy = malloc(len ? len : 1);
                struct content_claim c;

                assert_non_null(copy);
                memcpy(copy, t->content, len);
                c = status_parse_claim(copy, len);
                free(copy);
                if (c.has_pid != t->has_pid || c.pid != t->pid || c.has_ttl != t->has_ttl ||
                    c.ttl_s != t->ttl_s)
                        fail_msg("case %zu \"%s\": got pid %d/%d ttl %d/%u", i, t->content,
                                 c.has_pid, (int)c.pid, c.has_ttl, c.ttl_s);
        }
}

static void test_parse_claim_null(void **state) {
        struct content_claim c = status_parse_claim(NULL, 0);

        (void)state;
        assert_false(c.has_pid);
        assert_false(c.has_ttl);
}

/* ---- the content as one JSON object ---- */

/* content_parse_object over a heap copy of the first n bytes of s (NUL at
 * copy[n], as its contract asks): the object's member count, or -1 when
 * it gives no object. */
static int object_members(const char *s, size_t n) {
        char *copy = malloc(n + 1);
        assert_non_null(copy);
        memcpy(copy, s, n);
        copy[n] = '\0';
        cJSON *o = content_parse_object(copy, n);
        free(copy);
        if (!o)
                return -1;
        assert_true(cJSON_IsObject(o));
        int members = cJSON_GetArraySize(o);
        cJSON_Delete(o);
        return members;
}

static int members_of(const char *s) {
        return object_members(s, strlen(s));
}

static void test_parse_object(void **state) {
        (void)state;
        assert_int_equal(members_of("{}"), 0);
        assert_int_equal(members_of(" \t\r\n{\"a\":1,\"b\":[2]} \n"), 2);
        /* only JSON whitespace around it, nothing else */
        assert_int_equal(members_of("{} x"), -1);
        assert_int_equal(members_of("{}{}"), -1);
        assert_int_equal(members_of("\x01{}"), -1);
        assert_int_equal(members_of("{}\x01"), -1);
        /* not an object */
        assert_int_equal(members_of("[1]"), -1);
        assert_int_equal(members_of("1"), -1);
        assert_int_equal(members_of("\"{}\""), -1);
        assert_int_equal(members_of(""), -1);
        assert_int_equal(members_of("   "), -1);
        /* not complete, or the length cuts it */
        assert_int_equal(members_of("{\"a\":"), -1);
        assert_int_equal(object_members("{\"a\":1}", 6), -1);
        assert_int_equal(object_members("{\"a\":1}xyz", 7), 1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_claim_matrix),
                cmocka_unit_test(test_parse_claim_null),
                cmocka_unit_test(test_parse_object),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
