/* SPDX-License-Identifier: MIT */
/* Unit tests for status.c: JSON status rendering, metrics and time
 * formatting (claim parsing: test_claim.c). Every rendered document is
 * parsed back with cJSON. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <cjson/cJSON.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "status.h"

#define ACQUIRED_MS INT64_C(1700000000123) /* 2023-11-14T22:13:20.123Z */

/* ---- rendering helpers ---- */

static struct lock_view view_make(const char *content) {
        struct lock_view v;

        memset(&v, 0, sizeof(v));
        v.path = strdup("/jobs/deploy.lock");
        assert_non_null(v.path);
        v.ino = 7;
        v.fence = 42;
        v.how = LOCK_HOW_CREATOR;
        v.liveness_known = true;
        v.pid = 4242;
        v.uid = 0;
        v.gid = 0;
        strcpy(v.comm, "deploy");
        strcpy(v.cmdline, "/usr/bin/deploy --fast");
        v.acquired_at_ms = ACQUIRED_MS;
        v.renewed_at_ms = ACQUIRED_MS + 1000;
        v.ttl_s = 60;
        v.expires_at_ms = ACQUIRED_MS + 1000 + 60000;
        if (content) {
                v.content = strdup(content);
                assert_non_null(v.content);
                v.content_len = strlen(content);
        }
        return v;
}

static void view_free(struct lock_view *v) {
        free(v->path);
        free(v->content);
        v->path = v->content = NULL;
}

/* Check the output is valid UTF-8 (own decoder, independent of status.c). */
static bool valid_utf8(const char *s, size_t n) {
        size_t i = 0;

        while (i < n) {
                unsigned char c = (unsigned char)s[i];
                uint32_t cp;
                size_t k, len;

                if (c < 0x80) {
                        i++;
                        continue;
                }
                if ((c & 0xE0) == 0xC0) {
                        len = 2;
                        cp = c & 0x1F;
                } else if ((c & 0xF0) == 0xE0) {
                        len = 3;
                        cp = c & 0x0F;
                } else if ((c & 0xF8) == 0xF0) {
                        len = 4;
                        cp = c & 0x07;
                } else {
                        return false;
                }
                if (i + len > n)
                        return false;
                for (k = 1; k < len; k++) {
                        if (((unsigned char)s[i + k] & 0xC0) != 0x80)
                                return false;
                        cp = (cp << 6) | ((unsigned char)s[i + k] & 0x3F);
                }
                if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) ||
                    (len == 4 && cp < 0x10000) || cp > 0x10FFFF ||
                    (cp >= 0xD800 && cp <= 0xDFFF))
                        return false;
                i += len;
        }
        return true;
}

/* Check a rendered document's framing and return it parsed. */
static cJSON *parse_document(char *out, size_t len) {
        cJSON *j;

        assert_non_null(out);
        assert_int_equal(len, strlen(out));
        assert_true(len >= 2);
        assert_int_equal(out[len - 1], '\n');
        assert_true(valid_utf8(out, len));
        j = cJSON_Parse(out);
        if (!j)
                fail_msg("output does not parse:\n%s", out);
        free(out);
        return j;
}

static cJSON *render(const struct lock_view *v, int64_t now_ms) {
        size_t len = 0;
        char *out = status_render(v, now_ms, "node-1", &len);

        return parse_document(out, len);
}

static const char *get_str(const cJSON *o, const char *key) {
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);

        if (!cJSON_IsString(it))
                fail_msg("\"%s\" is not a string", key);
        return it->valuestring;
}

static double get_num(const cJSON *o, const char *key) {
        const cJSON *it = cJSON_GetObjectItemCaseSensitive(o, key);

        if (!cJSON_IsNumber(it))
                fail_msg("\"%s\" is not a number", key);
        return it->valuedouble;
}

static const cJSON *get_lockfs(const cJSON *o) {
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(o, "lockfs");

        assert_true(cJSON_IsObject(l));
        return l;
}

/* Assert the keys of o, in order, are exactly keys[0..n). */
static void assert_keys(const cJSON *o, const char *const *keys, size_t n) {
        const cJSON *it;
        size_t i = 0;

        cJSON_ArrayForEach(it, o) {
                assert_true(i < n);
                assert_string_equal(it->string, keys[i]);
                i++;
        }
        assert_int_equal(i, n);
}

/* ---- rendering ---- */

static void test_render_json_content(void **state) {
        static const char *const keys[] = {"operation", "version", "nested", "pid",
                                           "created_at", "lockfs"};
        struct lock_view v = view_make(
                "{\"pid\": 999, \"operation\": \"deploy\", \"created_at\": \"fake\", "
                "\"version\": 3, \"nested\": {\"a\": [1, 2]}, \"lockfs\": \"fake\"}\n");
        cJSON *o = render(&v, ACQUIRED_MS + 5000);
        const cJSON *nested;

        (void)state;
        assert_keys(o, keys, 6);
        assert_string_equal(get_str(o, "operation"), "deploy");
        assert_int_equal((int)get_num(o, "version"), 3);
        nested = cJSON_GetObjectItemCaseSensitive(o, "nested");
        assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(nested, "a")), 2);
        assert_int_equal((int)get_num(o, "pid"), 4242);
        assert_string_equal(get_str(o, "created_at"), "2023-11-14T22:13:20.123Z");
        assert_null(cJSON_GetObjectItemCaseSensitive(o, "content"));
        assert_true(cJSON_IsObject(get_lockfs(o)));
        cJSON_Delete(o);
        view_free(&v);
}

static void test_render_lockfs_fields(void **state) {
        static const char *const keys[] = {
                "path", "pid", "uid", "user", "comm", "cmdline", "host", "acquired_at",
                "renewed_at", "age_ms", "ttl_s", "expires_at", "fence", "how",
                "liveness_known"};
        struct lock_view v = view_make(NULL);
        struct passwd pw, *res = NULL;
        char buf[2048];
        cJSON *o;
        const cJSON *l;

        (void)state;
        o = render(&v, ACQUIRED_MS + 5000);
        l = get_lockfs(o);
        assert_keys(l, keys, sizeof(keys) / sizeof(keys[0]));
        assert_string_equal(get_str(l, "path"), "/jobs/deploy.lock");
        assert_int_equal((int)get_num(l, "pid"), 4242);
        assert_int_equal((int)get_num(l, "uid"), 0);
        if (getpwuid_r(0, &pw, buf, sizeof(buf), &res) == 0 && res)
                assert_string_equal(get_str(l, "user"), res->pw_name);
        assert_string_equal(get_str(l, "comm"), "deploy");
        assert_string_equal(get_str(l, "cmdline"), "/usr/bin/deploy --fast");
        assert_string_equal(get_str(l, "host"), "node-1");
        assert_string_equal(get_str(l, "acquired_at"), "2023-11-14T22:13:20.123Z");
        assert_string_equal(get_str(l, "renewed_at"), "2023-11-14T22:13:21.123Z");
        assert_int_equal((int)get_num(l, "age_ms"), 5000);
        assert_int_equal((int)get_num(l, "ttl_s"), 60);
        assert_string_equal(get_str(l, "expires_at"), "2023-11-14T22:14:21.123Z");
        assert_int_equal((int)get_num(l, "fence"), 42);
        assert_string_equal(get_str(l, "how"), "creator");
        assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(l, "liveness_known")));
        cJSON_Delete(o);
        view_free(&v);
}

static void test_render_text_content(void **state) {
        static const char *const texts[] = {"hello world\n", "1234\n", "[1, 2]", "{\"a\": 1} x",
                                            "tab\there \"quoted\" \\ back"};
        static const char *const keys[] = {"content", "pid", "created_at", "lockfs"};
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
                struct lock_view v = view_make(texts[i]);
                cJSON *o = render(&v, ACQUIRED_MS);

                assert_keys(o, keys, 4);
                assert_string_equal(get_str(o, "content"), texts[i]);
                cJSON_Delete(o);
                view_free(&v);
        }
}

static void test_render_empty_content(void **state) {
        static const char *const keys[] = {"pid", "created_at", "lockfs"};
        struct lock_view v = view_make(NULL);
        cJSON *o;

        (void)state;
        o = render(&v, ACQUIRED_MS);
        assert_keys(o, keys, 3);
        cJSON_Delete(o);

        /* a non-NULL buffer of length 0 is empty too */
        v.content = strdup("junk");
        v.content_len = 0;
        o = render(&v, ACQUIRED_MS);
        assert_keys(o, keys, 3);
        cJSON_Delete(o);
        view_free(&v);
}

static void test_render_detached(void **state) {
        struct lock_view v = view_make("0\n");
        cJSON *o;
        const cJSON *l;

        (void)state;
        v.detached = true;
        v.pid = 0;
        v.how = LOCK_HOW_DETACHED;
        v.liveness_known = false;
        o = render(&v, ACQUIRED_MS);
        l = get_lockfs(o);
        assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, "pid")));
        assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(l, "pid")));
        assert_string_equal(get_str(l, "how"), "detached");
        assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(l, "liveness_known")));
        assert_string_equal(get_str(o, "content"), "0\n");
        cJSON_Delete(o);
        view_free(&v);
}

static void test_render_how_names(void **state) {
        static const char *const names[] = {"creator", "claim", "flock", "detached", "fcntl",
                                             "mkdir"};
        enum lock_how how;

        (void)state;
        for (how = LOCK_HOW_CREATOR; how < LOCK_HOW_COUNT; how++) {
                struct lock_view v = view_make(NULL);
                cJSON *o;

                v.how = how;
                o = render(&v, ACQUIRED_MS);
                assert_string_equal(get_str(get_lockfs(o), "how"), names[how]);
                cJSON_Delete(o);
                view_free(&v);
        }
}

static void test_render_ttl_zero(void **state) {
        struct lock_view v = view_make(NULL);
        cJSON *o;
        const cJSON *l;

        (void)state;
        v.ttl_s = 0;
        o = render(&v, ACQUIRED_MS);
        l = get_lockfs(o);
        assert_int_equal((int)get_num(l, "ttl_s"), 0);
        assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(l, "expires_at")));
        cJSON_Delete(o);
        view_free(&v);
}

static void test_render_claim_ignored_pid(void **state) {
        struct lock_view v = view_make("4243\n");
        cJSON *o;

        (void)state;
        o = render(&v, ACQUIRED_MS);
        assert_null(cJSON_GetObjectItemCaseSensitive(get_lockfs(o), "claim_ignored_pid"));
        cJSON_Delete(o);

        v.claim_ignored_pid = 4243;
        o = render(&v, ACQUIRED_MS);
        assert_int_equal((int)get_num(get_lockfs(o), "claim_ignored_pid"), 4243);
        cJSON_Delete(o);
        view_free(&v);
}

static void test_render_age_never_negative(void **state) {
        struct lock_view v = view_make(NULL);
        cJSON *o;

        (void)state;
        o = render(&v, ACQUIRED_MS - 10000); /* wall clock stepped back */
        assert_int_equal((int)get_num(get_lockfs(o), "age_ms"), 0);
        cJSON_Delete(o);
        view_free(&v);
}

static void test_render_exact_integers(void **state) {
        struct lock_view v = view_make(NULL);
        size_t len = 0;
        char *out;

        (void)state;
        v.fence = UINT64_C(9007199254740993); /* 2^53 + 1: not a double */
        v.uid = 4000000000u;                  /* no passwd entry expected */
        out = status_render(&v, ACQUIRED_MS, "h", &len);
        assert_non_null(out);
        assert_non_null(strstr(out, "9007199254740993"));
        assert_non_null(strstr(out, "\"uid\":\t4000000000"));
        if (!getpwuid(4000000000u))
                assert_non_null(strstr(out, "\"user\":\t\"4000000000\""));
        cJSON_Delete(parse_document(out, len));
        view_free(&v);
}

static void test_render_hostile_strings(void **state) {
        struct lock_view v = view_make(NULL);
        cJSON *o;
        const cJSON *l;

        (void)state;
        free(v.path);
        v.path = strdup("/a\"b\nc\\d\xff\xfe\x01.lock");
        memcpy(v.comm, "x\xc3(\n\"\x7f", 6);
        memset(v.comm + 6, 'z', sizeof(v.comm) - 6); /* not NUL-terminated */
        strcpy(v.cmdline, "run \xed\xa0\x80 \xf4\x90\x80\x80 \xc0\xaf \xe2\x82");
        o = render(&v, ACQUIRED_MS);
        l = get_lockfs(o);
        assert_string_equal(get_str(l, "path"), "/a\"b\nc\\d\xEF\xBF\xBD\xEF\xBF\xBD\x01.lock");
        assert_string_equal(get_str(l, "comm"), "x\xEF\xBF\xBD(\n\"\x7fzzzzzzzzzz");
        /* surrogate, above U+10FFFF and overlong: one U+FFFD per byte; a
         * truncated sequence: one U+FFFD */
        assert_string_equal(get_str(l, "cmdline"),
                            "run \xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD "
                            "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD "
                            "\xEF\xBF\xBD\xEF\xBF\xBD \xEF\xBF\xBD");
        cJSON_Delete(o);
        view_free(&v);
}

static void test_render_hostile_content(void **state) {
        static const char json[] = "{\"k\xff\": \"v\xfe\", \"ok\": \"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}";
        static const char text[] = "a\0b\xff\n\"}";
        struct lock_view v = view_make(NULL);
        cJSON *o;

        (void)state;
        v.content = malloc(sizeof(json) - 1);
        assert_non_null(v.content);
        memcpy(v.content, json, sizeof(json) - 1);
        v.content_len = sizeof(json) - 1;
        o = render(&v, ACQUIRED_MS);
        assert_string_equal(get_str(o, "k\xEF\xBF\xBD"), "v\xEF\xBF\xBD");
        assert_string_equal(get_str(o, "ok"), "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
        cJSON_Delete(o);
        free(v.content);

        v.content = malloc(sizeof(text) - 1);
        assert_non_null(v.content);
        memcpy(v.content, text, sizeof(text) - 1);
        v.content_len = sizeof(text) - 1;
        o = render(&v, ACQUIRED_MS);
        assert_string_equal(get_str(o, "content"), "a\xEF\xBF\xBD" "b\xEF\xBF\xBD\n\"}");
        cJSON_Delete(o);
        view_free(&v);
}

static void test_render_null_host_and_path(void **state) {
        struct lock_view v = view_make(NULL);
        size_t len = 0;
        char *out;
        cJSON *o;
        const cJSON *l;

        (void)state;
        free(v.path);
        v.path = NULL;
        out = status_render(&v, ACQUIRED_MS, NULL, &len);
        o = parse_document(out, len);
        l = get_lockfs(o);
        assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(l, "path")));
        assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(l, "host")));
        cJSON_Delete(o);
        view_free(&v);
}

static void test_render_array(void **state) {
        struct lock_view v[2];
        size_t len = 0;
        char *out;
        cJSON *a;

        (void)state;
        out = status_render_array(NULL, 0, ACQUIRED_MS, "h", &len);
        assert_non_null(out);
        assert_string_equal(out, "[]\n");
        assert_int_equal(len, 3);
        free(out);

        v[0] = view_make("{\"op\": \"a\"}");
        v[1] = view_make("text");
        free(v[1].path);
        v[1].path = strdup("/other");
        v[1].detached = true;
        out = status_render_array(v, 2, ACQUIRED_MS, "h", &len);
        a = parse_document(out, len);
        assert_true(cJSON_IsArray(a));
        assert_int_equal(cJSON_GetArraySize(a), 2);
        assert_string_equal(get_str(cJSON_GetArrayItem(a, 0), "op"), "a");
        assert_string_equal(get_str(get_lockfs(cJSON_GetArrayItem(a, 0)), "path"),
                            "/jobs/deploy.lock");
        assert_string_equal(get_str(cJSON_GetArrayItem(a, 1), "content"), "text");
        assert_string_equal(get_str(get_lockfs(cJSON_GetArrayItem(a, 1)), "path"), "/other");
        assert_true(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(a, 1), "pid")));
        cJSON_Delete(a);
        view_free(&v[0]);
        view_free(&v[1]);
}

/* ---- splicing the holder's object ---- */

/* Render len bytes of content (an exact-size heap copy, for ASan) and
 * return the output text; *ret gets it parsed and checked as by
 * parse_document(). The caller frees both. */
static char *render_text(const char *content, size_t len, cJSON **ret) {
        struct lock_view v = view_make(NULL);
        size_t out_len = 0;
        char *out, *copy;

        v.content = malloc(len ? len : 1);
        assert_non_null(v.content);
        memcpy(v.content, content, len);
        v.content_len = len;
        out = status_render(&v, ACQUIRED_MS, "node-1", &out_len);
        assert_non_null(out);
        copy = strdup(out);
        assert_non_null(copy);
        *ret = parse_document(out, out_len);
        view_free(&v);
        return copy;
}

static void assert_contains(const char *text, const char *needle) {
        if (!strstr(text, needle))
                fail_msg("output lacks \"%s\":\n%s", needle, text);
}

static void test_render_numbers_verbatim(void **state) {
        static const char content[] =
                "{\"a\": 9007199254740991, \"b\": 12345678901234567, \"c\": 1e400, "
                "\"d\": -0.0, \"e\": 1.50, \"f\": [1.50, -0.0, 1E+2, 12345678901234567]}";
        static const char *const keys[] = {"a", "b", "c", "d", "e", "f",
                                           "pid", "created_at", "lockfs"};
        cJSON *o;
        char *out = render_text(content, sizeof(content) - 1, &o);

        (void)state;
        assert_keys(o, keys, sizeof(keys) / sizeof(keys[0]));
        assert_contains(out, "{\n\t\"a\":\t9007199254740991,\n");
        assert_contains(out, "\n\t\"b\":\t12345678901234567,\n");
        assert_contains(out, "\n\t\"c\":\t1e400,\n");
        assert_contains(out, "\n\t\"d\":\t-0.0,\n");
        assert_contains(out, "\n\t\"e\":\t1.50,\n");
        assert_contains(out, "\n\t\"f\":\t[1.50, -0.0, 1E+2, 12345678901234567],\n\t\"pid\":\t4242,");
        cJSON_Delete(o);
        free(out);
}

static void test_render_nul_escapes(void **state) {
        static const char content[] =
                "{\"s\": \"a\\u0000b\", \"k\\u0000\": 1, \"pid\\u0000\": 2, \"pid\": 3}";
        cJSON *o;
        char *out = render_text(content, sizeof(content) - 1, &o);

        (void)state;
        assert_contains(out, "\n\t\"s\":\t\"a\\u0000b\",\n");
        assert_contains(out, "\n\t\"k\\u0000\":\t1,\n");
        /* "pid\u0000" is not "pid": kept (cJSON reads it back as "pid") */
        assert_contains(out, "\n\t\"pid\\u0000\":\t2,\n\t\"pid\":\t4242,");
        assert_null(strstr(out, "\"pid\":\t3"));
        cJSON_Delete(o);
        free(out);
}

static void test_render_escaped_reserved_keys(void **state) {
        static const char content[] = "{\"p\\u0069d\": 5, \"cr\\u0065ated_at\": \"x\", "
                                      "\"\\u006Cockfs\": 1, \"op\": \"y\", \"PID\": 6}";
        static const char *const keys[] = {"op", "PID", "pid", "created_at", "lockfs"};
        cJSON *o;
        char *out = render_text(content, sizeof(content) - 1, &o);

        (void)state;
        assert_keys(o, keys, sizeof(keys) / sizeof(keys[0]));
        assert_int_equal((int)get_num(o, "pid"), 4242);
        assert_string_equal(get_str(o, "created_at"), "2023-11-14T22:13:20.123Z");
        assert_string_equal(get_str(get_lockfs(o), "how"), "creator");
        assert_null(strstr(out, "\\u0069"));
        cJSON_Delete(o);
        free(out);
}

static void test_render_nested_brackets(void **state) {
        static const char content[] =
                "{\"n\": {\"x\": \"}]{[\", \"y\": [1, {\"z\": \"\\\"]}\\\\\"}], \"e\": {}, "
                "\"a\": [[]]}, \"after\": \"ok\", \"l\": [\"]\", {\"}\": \"[\"}]}";
        static const char *const keys[] = {"n", "after", "l", "pid", "created_at", "lockfs"};
        const cJSON *n;
        cJSON *o;
        char *out = render_text(content, sizeof(content) - 1, &o);

        (void)state;
        assert_keys(o, keys, sizeof(keys) / sizeof(keys[0]));
        assert_contains(out, "\n\t\"n\":\t{\"x\": \"}]{[\", \"y\": [1, {\"z\": \"\\\"]}\\\\\"}], "
                             "\"e\": {}, \"a\": [[]]},\n");
        assert_contains(out, "\n\t\"l\":\t[\"]\", {\"}\": \"[\"}],\n");
        n = cJSON_GetObjectItemCaseSensitive(o, "n");
        assert_string_equal(get_str(n, "x"), "}]{[");
        assert_string_equal(get_str(o, "after"), "ok");
        cJSON_Delete(o);
        free(out);
}

static void test_render_duplicate_keys(void **state) {
        static const char content[] =
                "{\"a\": 1, \"b\": 2, \"a\": 3, \"\\u0062\": 4, \"c\": 5, "
                "\"\xc3\xa9\": 6, \"\\u00e9\": 7, \"\\ud83d\\ude00\": 8, \"\xf0\x9f\x98\x80\": 9}";
        static const char *const keys[] = {"a", "b", "c", "\xc3\xa9", "\xf0\x9f\x98\x80",
                                           "pid", "created_at", "lockfs"};
        cJSON *o;
        char *out = render_text(content, sizeof(content) - 1, &o);

        (void)state;
        assert_keys(o, keys, sizeof(keys) / sizeof(keys[0]));
        assert_contains(out, "{\n\t\"a\":\t3,\n\t\"\\u0062\":\t4,\n\t\"c\":\t5,\n"
                             "\t\"\\u00e9\":\t7,\n\t\"\xf0\x9f\x98\x80\":\t9,\n");
        cJSON_Delete(o);
        free(out);
}

static void test_render_whitespace_and_pretty(void **state) {
        static const char content[] = " \r\n\t{\n    \"op\": \"x\",\n    \"list\": [\n"
                                      "      1,\n      2\n    ]\n  ,\"z\"\t:\r\nnull}\n\n ";
        static const char *const keys[] = {"op", "list", "z", "pid", "created_at", "lockfs"};
        cJSON *o;
        char *out = render_text(content, sizeof(content) - 1, &o);

        (void)state;
        assert_keys(o, keys, sizeof(keys) / sizeof(keys[0]));
        assert_contains(out, "{\n\t\"op\":\t\"x\",\n\t\"list\":\t[\n      1,\n      2\n    ],\n"
                             "\t\"z\":\tnull,\n\t\"pid\":\t4242,");
        cJSON_Delete(o);
        free(out);
}

static void test_render_zero_members(void **state) {
        static const char *const contents[] = {"{}", " { \n } \n", "{\"pid\": 1, \"lockfs\": {}}"};
        static const char *const keys[] = {"pid", "created_at", "lockfs"};
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(contents) / sizeof(contents[0]); i++) {
                cJSON *o;
                char *out = render_text(contents[i], strlen(contents[i]), &o);

                assert_keys(o, keys, 3);
                assert_int_equal(strncmp(out, "{\n\t\"pid\":\t4242,\n", 16), 0);
                cJSON_Delete(o);
                free(out);
        }
}

static void test_render_large_object(void **state) {
        const size_t size = 64 * 1024;
        char *content = malloc(size + 64), *out;
        size_t len = 1, count = 0, pad;
        cJSON *o;
        char key[16];

        (void)state;
        assert_non_null(content);
        content[0] = '{';
        while (len + 64 < size)
                len += (size_t)sprintf(content + len, "\"k%05zu\": 12345678901234567, ", count++);
        pad = size - len - strlen("\"last\": \"\"}");
        len += (size_t)sprintf(content + len, "\"last\": \"%0*d\"}", (int)pad, 0);
        assert_int_equal(len, size);
        out = render_text(content, len, &o);
        assert_int_equal(cJSON_GetArraySize(o), (int)count + 4);
        snprintf(key, sizeof(key), "k%05zu", count - 1);
        assert_true(cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(o, key)));
        assert_int_equal(strlen(get_str(o, "last")), pad);
        assert_contains(out, "\n\t\"k00000\":\t12345678901234567,\n");
        cJSON_Delete(o);
        free(out);
        free(content);
}

/* cJSON accepts some text JSON does not; the output must stay JSON. */
static void test_render_cjson_leniency_repaired(void **state) {
        static const char content[] =
                "{\"t\": \"x\ny\x01\", \"k\x1f\": 0, \"n1\": 01, \"n2\": 1., \"n3\": -.5, "
                "\"n4\": -00.5e3, \"n5\": 1.e5, \"u\": \"\\u00zz!\", \"q\": \"\\uabc\\\"\", "
                "\"v\": \"\\u00\xff" "00\", \"r\": \"\\uabc\\\\\", \x0b\"w\": [1,\x01\x0b" "2]}";
        cJSON *o;
        char *out = render_text(content, sizeof(content) - 1, &o);

        (void)state;
        assert_contains(out, "\n\t\"t\":\t\"x\\ny\\u0001\",\n");
        assert_contains(out, "\n\t\"k\\u001f\":\t0,\n");
        assert_contains(out, "\n\t\"n1\":\t1,\n");
        assert_contains(out, "\n\t\"n2\":\t1,\n");
        assert_contains(out, "\n\t\"n3\":\t-0.5,\n");
        assert_contains(out, "\n\t\"n4\":\t-0.5e3,\n");
        assert_contains(out, "\n\t\"n5\":\t1e5,\n");
        assert_contains(out, "\n\t\"u\":\t\"\\u0000!\",\n");
        assert_contains(out, "\n\t\"q\":\t\"\\u0000\\\"\",\n");
        /* a bad \u escape running into a non-ASCII character keeps it whole */
        assert_contains(out, "\n\t\"v\":\t\"\\u0000\xEF\xBF\xBD" "00\",\n");
        assert_contains(out, "\n\t\"r\":\t\"\\u0000\\\\\",\n");
        assert_contains(out, "\n\t\"w\":\t[1,  2],\n");
        cJSON_Delete(o);
        free(out);
}

static void test_render_array_splices(void **state) {
        struct lock_view v[2];
        size_t len = 0;
        char *out;
        cJSON *a;

        (void)state;
        v[0] = view_make("{\"big\": 12345678901234567, \"s\": \"a\\u0000b\"}");
        v[1] = view_make("{\"big\": 9007199254740993}");
        out = status_render_array(v, 2, ACQUIRED_MS, "h", &len);
        assert_non_null(out);
        assert_contains(out, "[{\n\t\"big\":\t12345678901234567,\n\t\"s\":\t\"a\\u0000b\",\n");
        assert_contains(out, "},\n{\n\t\"big\":\t9007199254740993,\n");
        a = parse_document(out, len);
        assert_int_equal(cJSON_GetArraySize(a), 2);
        cJSON_Delete(a);
        view_free(&v[0]);
        view_free(&v[1]);
}

/* ---- time ---- */

static void test_format_time(void **state) {
        static const struct {
                int64_t ms;
                const char *iso;
        } cases[] = {
                {0, "1970-01-01T00:00:00.000Z"},
                {1, "1970-01-01T00:00:00.001Z"},
                {999, "1970-01-01T00:00:00.999Z"},
                {1000, "1970-01-01T00:00:01.000Z"},
                {INT64_C(1700000000123), "2023-11-14T22:13:20.123Z"},
                {INT64_C(951782400999), "2000-02-29T00:00:00.999Z"},
                {INT64_C(4102444799999), "2099-12-31T23:59:59.999Z"},
                {-1, "1970-01-01T00:00:00.000Z"},
                {INT64_MIN, "1970-01-01T00:00:00.000Z"},
                {INT64_MAX, "9999-12-31T23:59:59.999Z"},
        };
        char buf[32];
        size_t i;

        (void)state;
        for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                memset(buf, 'x', sizeof(buf));
                status_format_time(cases[i].ms, buf, sizeof(buf));
                assert_string_equal(buf, cases[i].iso);
        }
}

static void test_format_time_small_buffer(void **state) {
        char buf[12];

        (void)state;
        memset(buf, 'x', sizeof(buf));
        status_format_time(0, buf, 8);
        assert_true(strnlen(buf, 8) < 8); /* terminated inside the given length */
        assert_int_equal(buf[8], 'x');    /* nothing written past it */
        status_format_time(0, buf, 0);    /* no-op */
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_render_json_content),
                cmocka_unit_test(test_render_lockfs_fields),
                cmocka_unit_test(test_render_text_content),
                cmocka_unit_test(test_render_empty_content),
                cmocka_unit_test(test_render_detached),
                cmocka_unit_test(test_render_how_names),
                cmocka_unit_test(test_render_ttl_zero),
                cmocka_unit_test(test_render_claim_ignored_pid),
                cmocka_unit_test(test_render_age_never_negative),
                cmocka_unit_test(test_render_exact_integers),
                cmocka_unit_test(test_render_hostile_strings),
                cmocka_unit_test(test_render_hostile_content),
                cmocka_unit_test(test_render_null_host_and_path),
                cmocka_unit_test(test_render_array),
                cmocka_unit_test(test_render_numbers_verbatim),
                cmocka_unit_test(test_render_nul_escapes),
                cmocka_unit_test(test_render_escaped_reserved_keys),
                cmocka_unit_test(test_render_nested_brackets),
                cmocka_unit_test(test_render_duplicate_keys),
                cmocka_unit_test(test_render_whitespace_and_pretty),
                cmocka_unit_test(test_render_zero_members),
                cmocka_unit_test(test_render_large_object),
                cmocka_unit_test(test_render_cjson_leniency_repaired),
                cmocka_unit_test(test_render_array_splices),
                cmocka_unit_test(test_format_time),
                cmocka_unit_test(test_format_time_small_buffer),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
