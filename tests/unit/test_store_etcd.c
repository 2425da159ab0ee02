/* SPDX-License-Identifier: MIT */
/* Unit tests for what the cluster store trusts least: the lock values it
 * reads back from etcd (anyone with write access to the prefix can forge
 * them) and the password file of etcd_setup. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "etcd_setup.h"
#include "lockview.h"
#include "status.h"
#include "etcd_value.h"
#include "store_etcd.h"

/* A value as a daemon writes it, with field name's value replaced by
 * repl (raw JSON text) or dropped (repl NULL); name NULL: unchanged. */
static char *value_with(const char *name, const char *repl) {
        static const char *const fields[][2] = {
                { "host", "\"db-1\"" }, { "pid", "4242" }, { "uid", "1000" }, { "gid", "1000" },
                { "comm", "\"bash\"" }, { "cmdline", "\"bash -c sleep\"" },
                { "how", "\"creator\"" }, { "liveness_known", "true" },
                { "acquired_at_ms", "1764000000000" }, { "renewed_at_ms", "1764000001000" },
                { "ttl_s", "30" }, { "content", "\"{\\\"job\\\":1}\"" },
        };
        char *out = strdup("{");
        bool first = true;
        for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
                const char *v = fields[i][1];
                if (name && !strcmp(name, fields[i][0])) {
                        if (!repl)
                                continue;
                        v = repl;
                }
                char *next;
                assert_true(asprintf(&next, "%s%s\"%s\":%s", out, first ? "" : ",", fields[i][0],
                                     v) > 0);
                free(out);
                out = next;
                first = false;
        }
        char *done;
        assert_true(asprintf(&done, "%s}", out) > 0);
        free(out);
        return done;
}

static int decode(const char *text, struct lock_view *v, char *why) {
        memset(v, 0, sizeof(*v));
        return store_etcd_value_decode(text, strlen(text), v, why, 128);
}

/* field = repl must decode (ok) or be refused naming the field */
static void expect(const char *field, const char *repl, bool ok) {
        char *text = value_with(field, repl);
        struct lock_view v;
        char why[128];
        int r = decode(text, &v, why);
        if (ok && r != 0)
                fail_msg("%s: refused: %s", text, why);
        if (!ok) {
                if (r != -EINVAL)
                        fail_msg("%s: accepted (pid %d uid %u)", text, (int)v.pid,
                                 (unsigned)v.uid);
                if (!strstr(why, field))
                        fail_msg("%s: reason '%s' does not name %s", text, why, field);
                assert_null(v.host); /* nothing was set */
                assert_null(v.content);
                assert_int_equal(v.uid, 0);
        }
        lock_view_clear(&v);
        free(text);
}

static void test_good_value(void **state) {
        (void)state;
        char *text = value_with(NULL, NULL);
        struct lock_view v;
        char why[128];
        assert_int_equal(decode(text, &v, why), 0);
        assert_string_equal(v.host, "db-1");
        assert_int_equal(v.pid, 4242);
        assert_int_equal(v.uid, 1000);
        assert_int_equal(v.gid, 1000);
        assert_string_equal(v.comm, "bash");
        assert_string_equal(v.cmdline, "bash -c sleep");
        assert_int_equal(v.how, LOCK_HOW_CREATOR);
        assert_false(v.detached);
        assert_true(v.liveness_known);
        assert_int_equal(v.acquired_at_ms, 1764000000000);
        assert_int_equal(v.renewed_at_ms, 1764000001000);
        assert_int_equal(v.ttl_s, 30);
        assert_int_equal(v.expires_at_ms, 1764000031000);
        assert_int_equal(v.content_len, 9);
        assert_memory_equal(v.content, "{\"job\":1}", 9);
        lock_view_clear(&v);
        free(text);
        /* unknown extra fields are allowed (a newer daemon) */
        assert_int_equal(decode("{\"host\":\"h\",\"pid\":0,\"uid\":5,\"gid\":5,\"comm\":\"\","
                                "\"cmdline\":\"\",\"how\":\"detached\",\"liveness_known\":false,"
                                "\"acquired_at_ms\":0,\"renewed_at_ms\":0,\"ttl_s\":0,"
                                "\"content\":\"\",\"new\":[1]} \n", &v, why), 0);
        assert_true(v.detached);
        assert_int_equal(v.pid, 0);
        assert_null(v.content);
        lock_view_clear(&v);
}

static void test_not_an_object(void **state) {
        (void)state;
        const char *bad[] = { "", " ", "null", "[]", "\"x\"", "42", "{", "{\"host\":}",
                              "{} {}", "{}x", "\xff\xfe", "{\"host\":\"h\"", "{}" };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                struct lock_view v;
                char why[128];
                if (decode(bad[i], &v, why) != -EINVAL)
                        fail_msg("'%s' accepted", bad[i]);
                assert_true(why[0]);
                assert_null(v.host);
        }
        /* a NUL inside the value ends nothing early: the rest must be JSON too */
        char *good = value_with(NULL, NULL);
        size_t n = strlen(good);
        char *nul = malloc(n + 3);
        memcpy(nul, good, n);
        memcpy(nul + n, "\0x", 2);
        struct lock_view v = { 0 };
        char why[128];
        assert_int_equal(store_etcd_value_decode(nul, n + 2, &v, why, sizeof(why)), -EINVAL);
        free(nul);
        free(good);
}

static void test_every_field_is_required(void **state) {
        (void)state;
        const char *names[] = { "host", "pid", "uid", "gid", "comm", "cmdline", "how",
                                "liveness_known", "acquired_at_ms", "renewed_at_ms", "ttl_s",
                                "content" };
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                expect(names[i], NULL, false);       /* missing */
                expect(names[i], "null", false);     /* wrong type */
                expect(names[i], "{}", false);
        }
        /* numbers as strings, strings as numbers, booleans */
        expect("pid", "\"4242\"", false);
        expect("uid", "true", false);
        expect("host", "7", false);
        expect("liveness_known", "1", false);
        expect("content", "[]", false);
}

static void test_numbers_are_range_checked(void **state) {
        (void)state;
        /* the review's forged value: pid 1e20 became -2147483648 */
        expect("pid", "1e20", false);
        expect("pid", "-1", false);
        expect("pid", "0", false);       /* a live holder has a pid */
        expect("pid", "1.5", false);
        expect("pid", "1e400", false);   /* cJSON: infinity */
        expect("pid", "-1e400", false);
        expect("pid", "4194305", false);
        expect("pid", "4194304", true);
        expect("pid", "1", true);
        expect("uid", "-1", false);
        expect("uid", "4294967295", false); /* (uid_t)-1 is no uid */
        expect("uid", "4294967294", true);
        expect("uid", "1e300", false);
        expect("uid", "0.5", false);
        expect("gid", "4294967296", false);
        expect("gid", "0", true);
        expect("acquired_at_ms", "-1", false);
        expect("acquired_at_ms", "1e300", false);
        expect("renewed_at_ms", "-1e300", false);
        expect("renewed_at_ms", "-9223372036854775808", false);
        expect("renewed_at_ms", "9223372036854775807", false);
        expect("renewed_at_ms", "253402300800000", false); /* after 9999 */
        expect("renewed_at_ms", "253402300799999", true);
        expect("acquired_at_ms", "0", true);
        expect("ttl_s", "1e30", false);
        expect("ttl_s", "-1", false);
        expect("ttl_s", "4294967296", false);
        expect("ttl_s", "4294967295", true);

        /* the largest times and TTL still give an exact expiry */
        char *text = value_with("ttl_s", "4294967295");
        char *t2 = NULL;
        const char *at = strstr(text, "1764000001000");
        assert_non_null(at);
        assert_true(asprintf(&t2, "%.*s253402300799999%s", (int)(at - text), text, at + 13) > 0);
        struct lock_view v;
        char why[128];
        assert_int_equal(decode(t2, &v, why), 0);
        assert_int_equal(v.expires_at_ms, INT64_C(253402300799999) + INT64_C(4294967295) * 1000);
        lock_view_clear(&v);
        free(t2);
        free(text);
}

static void test_strings_are_checked(void **state) {
        (void)state;
        expect("host", "\"\"", false);
        expect("host", "\"db\\n1\"", false);
        expect("host", "\"db\\u001b[31m\"", false);
        char big[300];
        memset(big, 'h', sizeof(big));
        snprintf(big, sizeof(big), "\"%.*s\"", 256, "hhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh"
                 "hhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh"
                 "hhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh"
                 "hhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhhh");
        expect("host", big, false); /* 256 bytes */
        big[256] = '\0';            /* 255 bytes and the quote */
        big[255] = '"';
        expect("host", big, true);
        expect("comm", "\"123456789012345\"", true);   /* 15: what /proc gives */
        expect("comm", "\"1234567890123456\"", false); /* 16 */
        expect("comm", "\"a\\tb\"", true); /* any bytes, as /proc shows them */
        expect("cmdline", "\"python3 -c \\\"\\nimport os\\\"\"", true);
        expect("how", "\"root\"", false);
        expect("how", "\"\"", false);
        expect("how", "\"flock\"", true);
        expect("how", "\"claim\"", true);
        /* detached: pid 0 allowed then */
        expect("how", "\"detached\"", true);
        char *cmd = malloc(1100);
        memset(cmd, 'c', 1100);
        cmd[0] = '"';
        cmd[1024] = '"';
        cmd[1025] = '\0'; /* 1023 bytes */
        expect("cmdline", cmd, true);
        cmd[1024] = 'c';
        cmd[1025] = '"';
        cmd[1026] = '\0'; /* 1024 bytes */
        expect("cmdline", cmd, false);
        free(cmd);
        /* content is the holder's own bytes: control characters pass */
        expect("content", "\"line\\nline\\u0001\"", true);
}

/* Random damage to a good value never crashes or overflows (run under
 * ASan/UBSan), and whatever is accepted is in range. */
static void test_mutations(void **state) {
        (void)state;
        char *good = value_with(NULL, NULL);
        size_t n = strlen(good);
        char *buf = malloc(n + 1);
        const char alphabet[] = "{}[]\",:-+.eE0123456789tfnul \\\x01\xff";
        unsigned seed = 12345;
        for (int round = 0; round < 20000; round++) {
                memcpy(buf, good, n + 1);
                int edits = 1 + (int)(rand_r(&seed) % 4);
                for (int k = 0; k < edits; k++)
                        buf[rand_r(&seed) % n] = alphabet[rand_r(&seed) % (sizeof(alphabet) - 1)];
                size_t len = n - (rand_r(&seed) % 8 == 0 ? rand_r(&seed) % n : 0);
                struct lock_view v = { 0 };
                char why[128];
                int r = store_etcd_value_decode(buf, len, &v, why, sizeof(why));
                assert_true(r == 0 || r == -EINVAL);
                if (r == 0) {
                        assert_true(v.pid >= 0 && v.pid <= 4194304);
                        assert_true(v.uid != (uid_t)-1 && v.gid != (gid_t)-1);
                        assert_true(v.acquired_at_ms >= 0 && v.renewed_at_ms >= 0);
                        assert_true(v.expires_at_ms >= v.renewed_at_ms);
                        assert_non_null(v.host);
                }
                lock_view_clear(&v);
        }
        free(buf);
        free(good);
}

/* The good value with one more member (raw JSON text "name":value). */
static char *value_plus(const char *member) {
        char *good = value_with(NULL, NULL), *out;
        assert_true(asprintf(&out, "%.*s,%s}", (int)strlen(good) - 1, good, member) > 0);
        free(good);
        return out;
}

/* claim_ignored_pid = repl decodes to want, or (want < 0) is refused
 * naming the field. */
static void expect_claim_ignored(const char *repl, long want) {
        char member[128];
        snprintf(member, sizeof(member), "\"claim_ignored_pid\":%s", repl);
        char *text = value_plus(member), why[128];
        struct lock_view v;
        int r = decode(text, &v, why);
        if (want >= 0 && r != 0)
                fail_msg("%s: refused: %s", text, why);
        if (want >= 0)
                assert_int_equal(v.claim_ignored_pid, want);
        if (want < 0 && r != -EINVAL)
                fail_msg("%s: accepted (claim_ignored_pid %d)", text, (int)v.claim_ignored_pid);
        if (want < 0 && !strstr(why, "claim_ignored_pid"))
                fail_msg("%s: reason '%s' does not name claim_ignored_pid", text, why);
        if (want < 0)
                assert_null(v.host);
        lock_view_clear(&v);
        free(text);
}

/* Each way of holding is written as the name it had before lock_how.c
 * held the one table of them, byte for byte, and reads back as itself. */
static void test_how_written_and_read(void **state) {
        (void)state;
        static const struct {
                enum lock_how how;
                const char *text;
        } hows[] = {
                { LOCK_HOW_CREATOR, "{\"host\":\"db-1\",\"pid\":7,\"uid\":1,\"gid\":2,\"comm\":\"sh\","
                                    "\"cmdline\":\"sh\",\"how\":\"creator\",\"liveness_known\":true,"
                                    "\"acquired_at_ms\":5,\"renewed_at_ms\":6,\"ttl_s\":30,"
                                    "\"content\":\"\"}" },
                { LOCK_HOW_CLAIM, "{\"host\":\"db-1\",\"pid\":7,\"uid\":1,\"gid\":2,\"comm\":\"sh\","
                                  "\"cmdline\":\"sh\",\"how\":\"claim\",\"liveness_known\":true,"
                                  "\"acquired_at_ms\":5,\"renewed_at_ms\":6,\"ttl_s\":30,"
                                  "\"content\":\"\"}" },
                { LOCK_HOW_FLOCK, "{\"host\":\"db-1\",\"pid\":7,\"uid\":1,\"gid\":2,\"comm\":\"sh\","
                                  "\"cmdline\":\"sh\",\"how\":\"flock\",\"liveness_known\":true,"
                                  "\"acquired_at_ms\":5,\"renewed_at_ms\":6,\"ttl_s\":30,"
                                  "\"content\":\"\"}" },
                { LOCK_HOW_DETACHED, "{\"host\":\"db-1\",\"pid\":7,\"uid\":1,\"gid\":2,\"comm\":\"sh\","
                                     "\"cmdline\":\"sh\",\"how\":\"detached\",\"liveness_known\":true,"
                                     "\"acquired_at_ms\":5,\"renewed_at_ms\":6,\"ttl_s\":30,"
                                     "\"content\":\"\"}" },
                { LOCK_HOW_MKDIR, "{\"host\":\"db-1\",\"pid\":7,\"uid\":1,\"gid\":2,\"comm\":\"sh\","
                                  "\"cmdline\":\"sh\",\"how\":\"mkdir\",\"liveness_known\":true,"
                                  "\"acquired_at_ms\":5,\"renewed_at_ms\":6,\"ttl_s\":30,"
                                  "\"content\":\"\"}" },
        };
        for (size_t i = 0; i < sizeof(hows) / sizeof(hows[0]); i++) {
                struct lock_view in = {
                        .how = hows[i].how, .liveness_known = true, .pid = 7, .uid = 1, .gid = 2,
                        .comm = "sh", .cmdline = "sh", .acquired_at_ms = 5, .renewed_at_ms = 6,
                        .ttl_s = 30,
                };
                size_t len;
                char *text = store_etcd_value_encode(&in, "db-1", &len), why[128];
                assert_non_null(text);
                assert_string_equal(text, hows[i].text);
                struct lock_view out;
                assert_int_equal(decode(text, &out, why), 0);
                assert_int_equal(out.how, hows[i].how);
                assert_int_equal(out.detached, hows[i].how == LOCK_HOW_DETACHED);
                lock_view_clear(&out);
                free(text);
        }
        /* a directory lock nobody's process holds stays one, detached (R7.5) */
        struct lock_view in = { .how = LOCK_HOW_MKDIR, .liveness_known = false, .uid = 1,
                                .gid = 2, .comm = "sh", .cmdline = "sh", .acquired_at_ms = 5,
                                .renewed_at_ms = 6, .ttl_s = 30 };
        size_t len;
        char *text = store_etcd_value_encode(&in, "db-1", &len), why[128];
        assert_non_null(text);
        struct lock_view out;
        assert_int_equal(decode(text, &out, why), 0);
        assert_int_equal(out.how, LOCK_HOW_MKDIR);
        assert_true(out.detached);
        lock_view_clear(&out);
        free(text);
        /* only the exact names: no other case, no padding, no prefix */
        expect("how", "\"Creator\"", false);
        expect("how", "\"FLOCK\"", false);
        expect("how", "\"claim \"", false);
        expect("how", "\"detache\"", false);
        expect("how", "\"detachedx\"", false);
        expect("how", "\"unknown\"", false);
        expect("how", "0", false);
        expect("how", "null", false);
}

/* The value carries the pid an ignored claim named (the table shows it
 * as "claim_ignored_pid" in the status), so another host shows it too. */
static void test_claim_ignored_pid_round_trip(void **state) {
        (void)state;
        char content[] = "4243\n";
        struct lock_view in = {
                .how = LOCK_HOW_CREATOR, .liveness_known = true, .pid = 4242, .uid = 1000,
                .gid = 1001, .comm = "sh", .cmdline = "sh -c x", .acquired_at_ms = 1764000000000,
                .renewed_at_ms = 1764000001000, .ttl_s = 30, .claim_ignored_pid = 4243,
                .content = content, .content_len = 5,
        };
        size_t len;
        char *text = store_etcd_value_encode(&in, "db-1", &len), why[128];
        assert_non_null(text);
        assert_int_equal(len, strlen(text));
        assert_non_null(strstr(text, "\"claim_ignored_pid\":4243"));
        struct lock_view out;
        assert_int_equal(decode(text, &out, why), 0);
        assert_int_equal(out.claim_ignored_pid, 4243);
        assert_string_equal(out.host, "db-1");
        assert_int_equal(out.pid, 4242);
        assert_int_equal(out.uid, 1000);
        assert_int_equal(out.gid, 1001);
        assert_string_equal(out.comm, "sh");
        assert_string_equal(out.cmdline, "sh -c x");
        assert_int_equal(out.how, LOCK_HOW_CREATOR);
        assert_true(out.liveness_known);
        assert_int_equal(out.ttl_s, 30);
        /* every field of the lock record (the fence is the key's revision,
         * not in the value: 0 on both sides here) */
#define SAME_FIELD(type, field, what)                                                          \
        if (out.field != in.field)                                                             \
                fail_msg("record field %s: decoded value differs", #field);
        LOCK_RECORD_FIELDS(SAME_FIELD)
#undef SAME_FIELD
        assert_int_equal(out.content_len, 5);
        assert_memory_equal(out.content, content, 5);
        lock_view_clear(&out);
        free(text);
        /* none ignored: the value is what daemons before the field wrote */
        in.claim_ignored_pid = 0;
        text = store_etcd_value_encode(&in, "db-1", &len);
        assert_non_null(text);
        assert_null(strstr(text, "claim_ignored_pid"));
        assert_int_equal(decode(text, &out, why), 0);
        assert_int_equal(out.claim_ignored_pid, 0);
        lock_view_clear(&out);
        free(text);
}

static void test_claim_ignored_pid_is_optional_and_checked(void **state) {
        (void)state;
        char *text = value_with(NULL, NULL), why[128]; /* an older daemon's: none */
        struct lock_view v;
        assert_int_equal(decode(text, &v, why), 0);
        assert_int_equal(v.claim_ignored_pid, 0);
        lock_view_clear(&v);
        free(text);
        expect_claim_ignored("4243", 4243);
        expect_claim_ignored("0", 0);
        expect_claim_ignored("2147483647", 2147483647);     /* the largest claim */
        expect_claim_ignored("2147483648", -1);
        expect_claim_ignored("-1", -1);
        expect_claim_ignored("1.5", -1);
        expect_claim_ignored("1e400", -1);
        expect_claim_ignored("\"4243\"", -1);
        expect_claim_ignored("null", -1);
        expect_claim_ignored("true", -1);
        expect_claim_ignored("{}", -1);
}

static void test_status_age_saturates(void **state) {
        (void)state;
        assert_int_equal(status_sub_sat(1796284133027, INT64_MIN), INT64_MAX);
        assert_int_equal(status_sub_sat(-5, INT64_MAX), INT64_MIN);
        assert_int_equal(status_sub_sat(INT64_MIN, 1), INT64_MIN);
        assert_int_equal(status_sub_sat(10, 3), 7);
        assert_int_equal(status_sub_sat(3, 10), -7);
}

/* ---- the password file ---- */

static char pwdir[64];

static const char *pwfile(const char *content, size_t n, mode_t mode) {
        static char path[128];
        snprintf(path, sizeof(path), "%s/pw", pwdir);
        unlink(path);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, content, n), (ssize_t)n);
        close(fd);
        return path;
}

static void test_password_file(void **state) {
        (void)state;
        snprintf(pwdir, sizeof(pwdir), "/tmp/lockfs-pw-XXXXXX");
        assert_non_null(mkdtemp(pwdir));
        char pw[16], err[512];
        assert_int_equal(etcd_setup_read_password(pwfile("s3cret\n", 7, 0600), pw, sizeof(pw),
                                                  err, sizeof(err)), 0);
        assert_string_equal(pw, "s3cret");
        assert_int_equal(etcd_setup_read_password(pwfile("s3cret\r\nrest", 12, 0600), pw,
                                                  sizeof(pw), err, sizeof(err)), 0);
        assert_string_equal(pw, "s3cret");
        assert_int_equal(etcd_setup_read_password(pwfile("no-newline", 10, 0600), pw, sizeof(pw),
                                                  err, sizeof(err)), 0);
        assert_string_equal(pw, "no-newline");
        /* exactly 15 bytes fit in 16, 16 do not */
        assert_int_equal(etcd_setup_read_password(pwfile("123456789012345", 15, 0600), pw,
                                                  sizeof(pw), err, sizeof(err)), 0);
        assert_int_equal(etcd_setup_read_password(pwfile("1234567890123456\n", 17, 0600), pw,
                                                  sizeof(pw), err, sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "longer than 15"));
        assert_int_equal(etcd_setup_read_password(pwfile("\nx", 2, 0600), pw, sizeof(pw), err,
                                                  sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "empty"));
        assert_int_equal(etcd_setup_read_password(pwfile("a\0b\n", 4, 0600), pw, sizeof(pw), err,
                                                  sizeof(err)), -EINVAL);
        assert_non_null(strstr(err, "NUL"));
        char missing[128];
        snprintf(missing, sizeof(missing), "%s/none", pwdir);
        assert_int_equal(etcd_setup_read_password(missing, pw, sizeof(pw), err, sizeof(err)),
                         -ENOENT);
        assert_non_null(strstr(err, "cannot read etcd_password_file="));
        assert_int_equal(etcd_setup_read_password(pwdir, pw, sizeof(pw), err, sizeof(err)),
                         -EINVAL); /* a directory */
        char path[128];
        snprintf(path, sizeof(path), "%s/pw", pwdir);
        unlink(path);
        rmdir(pwdir);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_good_value),
                cmocka_unit_test(test_not_an_object),
                cmocka_unit_test(test_every_field_is_required),
                cmocka_unit_test(test_numbers_are_range_checked),
                cmocka_unit_test(test_strings_are_checked),
                cmocka_unit_test(test_mutations),
                cmocka_unit_test(test_how_written_and_read),
                cmocka_unit_test(test_claim_ignored_pid_round_trip),
                cmocka_unit_test(test_claim_ignored_pid_is_optional_and_checked),
                cmocka_unit_test(test_status_age_saturates),
                cmocka_unit_test(test_password_file),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
