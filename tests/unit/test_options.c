/* SPDX-License-Identifier: MIT */
/* Unit tests for the daemon's command-line parser. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "options.h"

static int parse(struct lockfs_options *o, char *err, int argc, ...) {
        char *argv[16] = { "lockfs" };
        va_list ap;
        va_start(ap, argc);
        for (int i = 1; i < argc; i++)
                argv[i] = va_arg(ap, char *);
        va_end(ap);
        return options_parse(argc, argv, o, err, 256);
}

static void test_defaults(void **state) {
        (void)state;
        struct lockfs_options o;
        char err[256];
        assert_int_equal(parse(&o, err, 2, "/mnt"), 0);
        assert_string_equal(o.mountpoint, "/mnt");
        assert_int_equal(o.ttl_s, 3600);
        assert_int_equal(o.holder_ttl_s, 0); /* live holders: no TTL (SPEC R5.3) */
        assert_int_equal(o.max_content, 65536);
        assert_int_equal(o.max_locks, LOCKFS_DEFAULT_MAX_LOCKS);
        assert_int_equal(o.max_names, 64);
        assert_false(o.foreground);
        assert_false(o.allow_other);
}

static void test_option_lists(void **state) {
        (void)state;
        struct lockfs_options o;
        char err[256];
        assert_int_equal(parse(&o, err, 6, "-f", "-o", "ttl=0,max_locks=5", "-omax_content=10,allow_other",
                               "/m"), 0);
        assert_true(o.foreground);
        assert_int_equal(o.ttl_s, 0);
        assert_int_equal(o.max_locks, 5);
        assert_int_equal(o.max_content, 10);
        assert_true(o.allow_other);
        assert_int_equal(parse(&o, err, 3, "-d", "/m"), 0);
        assert_true(o.debug);
        assert_true(o.foreground);
        assert_int_equal(parse(&o, err, 4, "-o", "max_depth=3,debug", "/m"), 0);
        assert_int_equal(o.max_depth, 3);
        assert_true(o.debug);
        assert_int_equal(parse(&o, err, 4, "-o", "max_names=1", "/m"), 0);
        assert_int_equal(o.max_names, 1);
        assert_int_equal(parse(&o, err, 4, "-o", "max_names=1024", "/m"), 0);
        assert_int_equal(o.max_names, LOCKFS_MAX_NAMES_LIMIT);
        assert_false(o.foreground); /* -o debug logs more, wherever the log goes */
        assert_int_equal(o.status_mem_per_uid, 0); /* 0: the budget's defaults */
        assert_int_equal(o.status_mem_total, 0);
        assert_int_equal(parse(&o, err, 4, "-o", "status_mem_per_uid=1048576,status_mem_total=9",
                               "/m"), 0);
        assert_int_equal(o.status_mem_per_uid, 1048576);
        assert_int_equal(o.status_mem_total, 9);
}

static void test_bad_input_is_rejected_with_a_reason(void **state) {
        (void)state;
        struct lockfs_options o;
        char err[256];
        const char *bad[] = { "ttl=abc", "ttl=-1", "ttl=", "ttl", "max_content=0",
                              "max_content=999999999", "bogus=1", "allow_other=1", "ttl=99999999999",
                              "max_names=0", "max_names=1025", "max_names=", "max_names",
                              "max_names=-1", "max_names=4294967297",
                              "status_mem_per_uid=", "status_mem_total=1k" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
                assert_int_equal(parse(&o, err, 4, "-o", bad[i], "/m"), -EINVAL);
                assert_true(strlen(err) > 0);
        }
        assert_int_equal(parse(&o, err, 1), -EINVAL);
        assert_non_null(strstr(err, "mount point"));
        assert_int_equal(parse(&o, err, 4, "/a", "/b", "/c"), -EINVAL);
        assert_int_equal(parse(&o, err, 4, "-o", "ro", "/m"), -EINVAL);
        assert_non_null(strstr(err, "read-only"));
        assert_int_equal(parse(&o, err, 3, "-x", "/a"), -EINVAL);
        assert_int_equal(parse(&o, err, 2, "-o"), -EINVAL);
}

static void test_mount_helper_form_and_fstab_words(void **state) {
        (void)state;
        struct lockfs_options o;
        char err[256];
        /* mount.fuse3 runs: lockfs SOURCE MOUNTPOINT -o OPTIONS */
        assert_int_equal(parse(&o, err, 5, "lockfs", "/run/locks", "-o",
                               "rw,nosuid,nodev,noatime,_netdev,nofail,noauto,user,x-systemd.automount,ttl=600"), 0);
        assert_string_equal(o.source, "lockfs");
        assert_string_equal(o.mountpoint, "/run/locks");
        assert_int_equal(o.ttl_s, 600);
        assert_int_equal(parse(&o, err, 4, "-o", "nosuid=1", "/m"), -EINVAL);
}

/* SPEC R7.5: dirlocks= takes globs as raw= does, "" for none; *.lock by
 * default. */
static void test_dirlocks_globs(void **state) {
        (void)state;
        struct lockfs_options o;
        char err[256];
        assert_int_equal(parse(&o, err, 2, "/m"), 0);
        assert_string_equal(o.dirlocks, "*.lock");
        assert_int_equal(parse(&o, err, 4, "-o", "dirlocks=*.lock:*.lck,raw=", "/m"), 0);
        assert_string_equal(o.dirlocks, "*.lock:*.lck");
        assert_string_equal(o.raw, "");
        assert_int_equal(parse(&o, err, 4, "-o", "dirlocks=", "/m"), 0);
        assert_string_equal(o.dirlocks, "");
        static const char *const bad[] = { "dirlocks", "dirlocks=a::b", "dirlocks=x/*.lock" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++)
                assert_int_equal(parse(&o, err, 4, "-o", bad[i], "/m"), -EINVAL);
}

/* SPEC R4.4a: raw= takes globs separated by ':', "" for none; *.pid by
 * default. */
static void test_raw_globs(void **state) {
        (void)state;
        struct lockfs_options o;
        char err[256];
        assert_int_equal(parse(&o, err, 2, "/m"), 0);
        assert_string_equal(o.raw, "*.pid");
        assert_int_equal(parse(&o, err, 4, "-o", "raw=*.pid:*.run,ttl=5", "/m"), 0);
        assert_string_equal(o.raw, "*.pid:*.run");
        assert_int_equal(o.ttl_s, 5);
        assert_int_equal(parse(&o, err, 4, "-o", "raw=", "/m"), 0);
        assert_string_equal(o.raw, "");
        static const char *const bad[] = { "raw", "raw=*.pid:", "raw=a::b", "raw=run/*.pid" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
                assert_int_equal(parse(&o, err, 4, "-o", bad[i], "/m"), -EINVAL);
                char want[64];
                snprintf(want, sizeof(want), "bad value in option '%s'", bad[i]);
                assert_string_equal(err, want);
        }
}

static void test_cluster_options(void **state) {
        (void)state;
        struct lockfs_options o;
        char err[256];
        assert_int_equal(parse(&o, err, 2, "/m"), 0);
        assert_false(o.backend_etcd);
        assert_string_equal(o.prefix, "/lockfs/");
        assert_int_equal(o.lease_ttl_s, 10);
        /* a list of endpoints keeps its commas; options after it still apply */
        assert_int_equal(parse(&o, err, 4, "-o",
                               "backend=etcd,endpoints=http://a:2379,https://b:2379,"
                               "prefix=/lockfs/x/,lease_ttl=3,ttl=5", "/m"), 0);
        assert_true(o.backend_etcd);
        assert_string_equal(o.endpoints, "http://a:2379,https://b:2379");
        assert_string_equal(o.prefix, "/lockfs/x/");
        assert_int_equal(o.lease_ttl_s, 3);
        assert_int_equal(o.ttl_s, 5);
        /* a URL outside an endpoints list is no option */
        assert_int_equal(parse(&o, err, 4, "-o", "ttl=5,http://a:2379", "/m"), -EINVAL);
        assert_non_null(strstr(err, "unknown option"));
        const struct { const char *opts, *reason; } bad[] = {
                { "backend=etcd", "needs endpoints" },
                { "endpoints=http://a:2379", "needs backend=etcd" },
                { "backend=zookeeper", "bad value" },
                { "backend=etcd,endpoints=http://a:2379,prefix=lockfs/", "prefix must" },
                { "backend=etcd,endpoints=http://a:2379,prefix=/lockfs", "prefix must" },
                { "backend=etcd,endpoints=http://a:2379,lease_ttl=1", "bad value" },
                { "backend=etcd,endpoints=http://a:2379,lease_ttl=x", "bad value" },
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                assert_int_equal(parse(&o, err, 4, "-o", bad[i].opts, "/m"), -EINVAL);
                if (!strstr(err, bad[i].reason))
                        fail_msg("%s: '%s' does not say '%s'", bad[i].opts, err, bad[i].reason);
        }
}

static void test_etcd_security_options(void **state) {
        (void)state;
        struct lockfs_options o;
        char err[256];
        const char *ep = "backend=etcd,endpoints=https://a:1,https://b:2,"
                         "cacert=/c/ca.pem,cert=/c/me.pem,key=/c/me.key,"
                         "etcd_user=lockfs,etcd_password_file=/c/pw";
        assert_int_equal(parse(&o, err, 4, "-o", ep, "/m"), 0);
        assert_string_equal(o.endpoints, "https://a:1,https://b:2");
        assert_string_equal(o.cacert, "/c/ca.pem");
        assert_string_equal(o.cert, "/c/me.pem");
        assert_string_equal(o.key, "/c/me.key");
        assert_string_equal(o.etcd_user, "lockfs");
        assert_string_equal(o.etcd_password_file, "/c/pw");
        /* a CA alone is fine (server verification only) */
        assert_int_equal(parse(&o, err, 4, "-o", "backend=etcd,endpoints=https://a:1,cacert=/x",
                               "/m"), 0);
        struct {
                const char *opts, *reason;
        } bad[] = {
                { "backend=etcd,endpoints=https://a:1,cert=/x", "go together" },
                { "backend=etcd,endpoints=https://a:1,key=/x", "go together" },
                { "backend=etcd,endpoints=http://a:1,etcd_user=u", "go together" },
                { "backend=etcd,endpoints=http://a:1,etcd_password_file=/p", "go together" },
                { "backend=etcd,endpoints=http://a:1,etcd_user=u,etcd_password=secret",
                  "no password on the command line" },
                { "cacert=/x", "needs backend=etcd" },
                { "etcd_user=u,etcd_password_file=/p", "needs backend=etcd" },
                { "backend=etcd,endpoints=http://a:1,cacert=", "bad value" },
                { "backend=etcd,endpoints=http://a:1,etcd_user=,etcd_password_file=/p",
                  "bad value" },
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                assert_int_equal(parse(&o, err, 4, "-o", bad[i].opts, "/m"), -EINVAL);
                if (!strstr(err, bad[i].reason))
                        fail_msg("-o %s: '%s' lacks '%s'", bad[i].opts, err, bad[i].reason);
                /* the message never repeats a password */
                assert_null(strstr(err, "secret"));
        }
}

static void test_help_and_version_need_no_mountpoint(void **state) {
        (void)state;
        struct lockfs_options o;
        char err[256];
        assert_int_equal(parse(&o, err, 2, "--help"), 0);
        assert_true(o.show_help);
        assert_int_equal(parse(&o, err, 2, "-V"), 0);
        assert_true(o.show_version);
}

/* The per-uid limits: defaults that keep one uid from filling the table,
 * explicit values (0 = none), and combinations refused with a reason. */
static void test_quota_options(void **state) {
        (void)state;
        struct lockfs_options o;
        char err[256];
        assert_int_equal(parse(&o, err, 2, "/m"), 0);
        assert_int_equal(o.max_locks_per_uid, LOCKFS_DEFAULT_MAX_LOCKS / 4);
        assert_int_equal(o.max_content_per_uid, 16u << 20);
        assert_int_equal(parse(&o, err, 4, "-o", "max_locks=200", "/m"), 0);
        assert_int_equal(o.max_locks_per_uid, 50);
        assert_int_equal(parse(&o, err, 4, "-o", "max_locks=3", "/m"), 0);
        assert_int_equal(o.max_locks_per_uid, 1); /* never 0 (= no limit) by rounding */
        assert_int_equal(parse(&o, err, 4, "-o", "max_locks=0", "/m"), 0);
        assert_int_equal(o.max_locks_per_uid, LOCKFS_DEFAULT_MAX_LOCKS / 4);
        /* in either order */
        assert_int_equal(parse(&o, err, 4, "-o", "max_locks_per_uid=3,max_locks=200", "/m"), 0);
        assert_int_equal(o.max_locks_per_uid, 3);
        assert_int_equal(o.max_locks, 200);
        assert_int_equal(parse(&o, err, 4, "-o", "max_locks_per_uid=0,max_content_per_uid=0",
                               "/m"), 0);
        assert_int_equal(o.max_locks_per_uid, 0);
        assert_int_equal(o.max_content_per_uid, 0);
        assert_int_equal(parse(&o, err, 4, "-o", "max_content=1024,max_content_per_uid=4096",
                               "/m"), 0);
        assert_int_equal(o.max_content_per_uid, 4096);
        static const struct { const char *opts, *reason; } bad[] = {
                { "max_locks_per_uid=abc", "bad value" },
                { "max_locks_per_uid=-1", "bad value" },
                { "max_locks_per_uid=", "bad value" },
                { "max_content_per_uid=1x", "bad value" },
                { "max_content_per_uid=-5", "bad value" },
                { "max_content_per_uid", "bad value" },
                { "max_locks=200,max_locks_per_uid=201", "is above max_locks=200" },
                { "max_content_per_uid=100", "is below max_content=65536" },
                { "max_content_per_uid=99999999999999999999", "bad value" },
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(*bad); i++) {
                assert_int_equal(parse(&o, err, 4, "-o", bad[i].opts, "/m"), -EINVAL);
                if (!strstr(err, bad[i].reason))
                        fail_msg("%s: '%s' does not say '%s'", bad[i].opts, err, bad[i].reason);
        }
}

/* Every numeric key at both ends of its range, stored whole in its field
 * whatever the field's width, and one past them refused. */
static void test_every_number_at_its_bounds(void **state) {
        (void)state;
        struct lockfs_options o;
        char err[256];
        assert_int_equal(parse(&o, err, 4, "-o",
                               "ttl=4294967295,holder_ttl=4294967295,max_depth=4096,lease_ttl=3600,"
                               "max_names=1024,"
                               "max_content=16777216,max_locks=18446744073709551615,"
                               "max_locks_per_uid=7,max_content_per_uid=18446744073709551615,"
                               "status_mem_per_uid=18446744073709551615,status_mem_total=1",
                               "/m"), 0);
        assert_int_equal(o.ttl_s, UINT32_MAX);
        assert_int_equal(o.holder_ttl_s, UINT32_MAX);
        assert_int_equal(o.max_depth, 4096);
        assert_int_equal(o.lease_ttl_s, 3600);
        assert_int_equal(o.max_names, LOCKFS_MAX_NAMES_LIMIT);
        assert_int_equal(o.max_content, LOCKFS_MAX_CONTENT_LIMIT);
        assert_true(o.max_locks == UINT64_MAX);
        assert_int_equal(o.max_locks_per_uid, 7);
        assert_true(o.max_locks_per_uid_given);
        assert_true(o.max_content_per_uid == UINT64_MAX);
        assert_true(o.status_mem_per_uid == UINT64_MAX);
        assert_int_equal(o.status_mem_total, 1);
        assert_int_equal(parse(&o, err, 4, "-o", "ttl=0,max_depth=0,lease_ttl=2,max_names=1,"
                               "max_content=1,holder_ttl=0", "/m"), 0);
        assert_int_equal(o.ttl_s, 0);
        assert_int_equal(o.holder_ttl_s, 0);
        assert_int_equal(o.max_depth, 0);
        assert_int_equal(o.lease_ttl_s, 2);
        assert_int_equal(o.max_names, 1);
        assert_int_equal(o.max_content, 1);
        static const char *const beyond[] = {
                "ttl=4294967296", "holder_ttl=4294967296", "max_depth=4097", "lease_ttl=3601",
                "lease_ttl=1", "max_names=1025", "max_names=0", "max_content=16777217", "max_content=0",
                "max_locks=18446744073709551616",
        };
        for (size_t i = 0; i < sizeof(beyond) / sizeof(*beyond); i++) {
                char want[128];
                snprintf(want, sizeof(want), "bad value in option '%s'", beyond[i]);
                assert_int_equal(parse(&o, err, 4, "-o", beyond[i], "/m"), -EINVAL);
                assert_string_equal(err, want);
        }
}

/* The exact messages: a flag given a value is unknown, a valued key
 * without one has a bad value, refused keys say why. */
static void test_messages(void **state) {
        (void)state;
        struct lockfs_options o;
        char err[256];
        static const struct { const char *opts, *err; } cases[] = {
                { "debug=1", "unknown option 'debug=1'" },
                { "user_break=yes", "unknown option 'user_break=yes'" },
                { "ro=1", "unknown option 'ro=1'" },
                { "ttlx=1", "unknown option 'ttlx=1'" },
                { "tt=1", "unknown option 'tt=1'" },
                { "state_dir", "bad value in option 'state_dir'" },
                { "prefix=", "bad value in option 'prefix='" },
                { "backend=zookeeper", "bad value in option 'backend=zookeeper'" },
                { "backend", "bad value in option 'backend'" },
                { "ro", "a lock directory cannot be mounted read-only ('ro')" },
                { "etcd_password=x", "no password on the command line (anyone can read it): "
                                     "put it in a file only root can read and give "
                                     "etcd_password_file=FILE" },
                { "etcd_password", "no password on the command line (anyone can read it): "
                                   "put it in a file only root can read and give "
                                   "etcd_password_file=FILE" },
        };
        for (size_t i = 0; i < sizeof(cases) / sizeof(*cases); i++) {
                assert_int_equal(parse(&o, err, 4, "-o", cases[i].opts, "/m"), -EINVAL);
                assert_string_equal(err, cases[i].err);
        }
        /* ignored words: x-anything and comment= even with values */
        assert_int_equal(parse(&o, err, 4, "-o", "x-foo=bar,comment=hi,comment,defaults", "/m"),
                         0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_option_lists),
                cmocka_unit_test(test_bad_input_is_rejected_with_a_reason),
                cmocka_unit_test(test_mount_helper_form_and_fstab_words),
                cmocka_unit_test(test_raw_globs),
                cmocka_unit_test(test_dirlocks_globs),
                cmocka_unit_test(test_cluster_options),
                cmocka_unit_test(test_etcd_security_options),
                cmocka_unit_test(test_help_and_version_need_no_mountpoint),
                cmocka_unit_test(test_quota_options),
                cmocka_unit_test(test_every_number_at_its_bounds),
                cmocka_unit_test(test_messages),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
