/* SPDX-License-Identifier: MIT */
/* Unit tests for util/globs.h: glob lists as -o raw= gives them (SPEC
 * R4.4a), parsed and matched against one name. */
#include <errno.h>
#include <stdlib.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "globs.h"

static void test_parse_refuses_empty_globs_and_slashes(void **state) {
        (void)state;
        static const char *const bad[] = { ":", "*.pid:", ":*.pid", "a::b", "run/*.pid",
                                           "/x.pid", "*.pid:a/b" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
                struct globs *g = NULL;
                assert_int_equal(globs_parse(bad[i], &g), -EINVAL);
                assert_null(g);
                assert_int_equal(globs_check(bad[i]), -EINVAL);
        }
        assert_int_equal(globs_check("*.pid:x"), 0);
}

static void test_empty_list_matches_nothing(void **state) {
        (void)state;
        struct globs *g;
        assert_int_equal(globs_parse("", &g), 0);
        assert_int_equal(globs_count(g), 0);
        assert_false(globs_match(g, "x.pid"));
        assert_false(globs_match(g, ""));
        globs_free(g);
        assert_false(globs_match(NULL, "x.pid"));
        assert_int_equal(globs_count(NULL), 0);
        globs_free(NULL);
}

struct match_case {
        const char *name;
        bool match;
};

static void test_match_base_names(void **state) {
        (void)state;
        struct globs *g;
        assert_int_equal(globs_parse("*.pid:daemon-?.lock:[ab]*.run", &g), 0);
        assert_int_equal(globs_count(g), 3);
        static const struct match_case cases[] = {
                { "x.pid", true },        { "sshd.pid", true },    { ".x.pid", true },
                { ".pid", true },         { "x.pid.lock", false }, { "x.PID", false },
                { "xpid", false },        { "daemon-1.lock", true }, { "daemon-12.lock", false },
                { "a1.run", true },       { "b.run", true },       { "c.run", false },
                { "x.lock", false },      { "", false },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++)
                if (globs_match(g, cases[i].name) != cases[i].match)
                        fail_msg("'%s' should %smatch", cases[i].name,
                                 cases[i].match ? "" : "not ");
        globs_free(g);
}

static void test_one_glob(void **state) {
        (void)state;
        struct globs *g;
        assert_int_equal(globs_parse("*", &g), 0);
        assert_int_equal(globs_count(g), 1);
        assert_true(globs_match(g, "anything"));
        globs_free(g);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_refuses_empty_globs_and_slashes),
                cmocka_unit_test(test_empty_list_matches_nothing),
                cmocka_unit_test(test_match_base_names),
                cmocka_unit_test(test_one_glob),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
