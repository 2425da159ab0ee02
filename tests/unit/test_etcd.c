/* SPDX-License-Identifier: MIT */
/* Unit tests for the etcd client against a real etcd this test starts (and
 * stops, restarts and compacts) on free loopback ports. */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "etcd.h"

#define WAIT_MS 30000           /* for a watch event; etcd restarts are in there */
#define DEADLINE_MS 30000       /* for a state or a return: a deadline, not a bound */

/* ---- the etcd server ---- */

static struct {
        char dir[64], data[96], log[96];
        int port, port2, peer, dead; /* client, alternate client, peer, unused */
        pid_t pid;
} srv;

static int64_t now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int free_port(void) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(a);
        if (fd < 0)
                return -1;
        if (bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0 ||
            getsockname(fd, (struct sockaddr *)&a, &len) < 0) {
                close(fd);
                return -1;
        }
        close(fd);
        return ntohs(a.sin_port);
}

static char *url(int port) {
        static char s[4][64];
        static int i;
        char *u = s[i++ % 4];
        snprintf(u, sizeof(s[0]), "http://127.0.0.1:%d", port);
        return u;
}

static size_t collect(char *p, size_t size, size_t n, void *data) {
        char **out = data;
        size_t old = *out ? strlen(*out) : 0;
        char *q = realloc(*out, old + size * n + 1);
        if (!q)
                return 0;
        memcpy(q + old, p, size * n);
        q[old + size * n] = '\0';
        *out = q;
        return size * n;
}

/* A plain HTTP request to etcd (POST when body is set): the HTTP status,
 * or -1 when nothing answered; the answer in *out (malloc'd) if out. */
static long raw_http(int port, const char *path, const char *body, char **out) {
        char u[128], *answer = NULL;
        long status = -1;
        snprintf(u, sizeof(u), "%s%s", url(port), path);
        CURL *h = curl_easy_init();
        curl_easy_setopt(h, CURLOPT_URL, u);
        curl_easy_setopt(h, CURLOPT_PROXY, "");
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 2000L);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &answer);
        if (body)
                curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        if (curl_easy_perform(h) == CURLE_OK)
                curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(h);
        if (out)
                *out = answer;
        else
                free(answer);
        return status;
}

/* Start etcd on the data dir serving clients on port; 0 once /health says
 * it has a leader. */
static int etcd_spawn(int port) {
        char listen[64], peer[64], cluster[80];
        snprintf(listen, sizeof(listen), "%s", url(port));
        snprintf(peer, sizeof(peer), "%s", url(srv.peer));
        snprintf(cluster, sizeof(cluster), "t=%s", peer);
        const char *bin = getenv("ETCD_BIN") ? getenv("ETCD_BIN") : "etcd";
        pid_t pid = fork();
        if (pid < 0)
                return -1;
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL); /* no stray etcd if this test dies */
                int fd = open(srv.log, O_WRONLY | O_CREAT | O_APPEND, 0644);
                if (fd >= 0) {
                        dup2(fd, 1);
                        dup2(fd, 2);
                }
                execlp(bin, bin, "--name", "t", "--data-dir", srv.data, "--listen-client-urls", listen,
                       "--advertise-client-urls", listen, "--listen-peer-urls", peer,
                       "--initial-advertise-peer-urls", peer, "--initial-cluster", cluster,
                       "--unsafe-no-fsync", "--heartbeat-interval", "50", "--election-timeout", "500",
                       "--log-level", "error", (char *)NULL);
                _exit(127);
        }
        srv.pid = pid;
        int64_t deadline = now_ms() + 30000;
        while (now_ms() < deadline) {
                char *answer = NULL;
                long status = raw_http(port, "/health", NULL, &answer);
                bool ok = status == 200 && answer && strstr(answer, "\"health\":\"true\"");
                free(answer);
                if (ok)
                        return 0;
                if (waitpid(pid, NULL, WNOHANG) == pid) {
                        srv.pid = 0;
                        return -1;
                }
                nanosleep(&(struct timespec){ 0, 20 * 1000 * 1000 }, NULL);
        }
        return -1;
}

/* SIGTERM, then SIGKILL after 5 s; wait for it. */
static void etcd_stop(void) {
        if (srv.pid <= 0)
                return;
        kill(srv.pid, SIGCONT);
        kill(srv.pid, SIGTERM);
        int64_t deadline = now_ms() + 5000;
        while (waitpid(srv.pid, NULL, WNOHANG) == 0) {
                if (now_ms() > deadline) {
                        kill(srv.pid, SIGKILL);
                        waitpid(srv.pid, NULL, 0);
                        break;
                }
                nanosleep(&(struct timespec){ 0, 10 * 1000 * 1000 }, NULL);
        }
        srv.pid = 0;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void)st;
        (void)flag;
        (void)ftw;
        remove(path);
        return 0;
}

static int group_teardown(void **state) {
        (void)state;
        etcd_stop();
        if (srv.dir[0])
                nftw(srv.dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
        return 0;
}

static int group_setup(void **state) {
        curl_global_init(CURL_GLOBAL_ALL);
        strcpy(srv.dir, "/tmp/test-etcd-XXXXXX");
        if (!mkdtemp(srv.dir)) {
                srv.dir[0] = '\0';
                return -1;
        }
        snprintf(srv.data, sizeof(srv.data), "%s/data", srv.dir);
        snprintf(srv.log, sizeof(srv.log), "%s/etcd.log", srv.dir);
        srv.port = free_port();
        srv.port2 = free_port();
        srv.peer = free_port();
        srv.dead = free_port();
        if (srv.port < 0 || srv.port2 < 0 || srv.peer < 0 || srv.dead < 0 ||
            etcd_spawn(srv.port) < 0) {
                fprintf(stderr, "etcd did not start (log in %s)\n", srv.log);
                group_teardown(state);
                return -1;
        }
        return 0;
}

/* ---- watch event recorder ---- */

#define MAX_EVENTS 4096

struct event {
        enum etcd_watch_event ev;
        char key[128], value[64];
        size_t key_len, value_len;
        int64_t create_revision, mod_revision, lease;
};

struct rec {
        pthread_mutex_t lock;
        pthread_cond_t cond;
        struct event v[MAX_EVENTS];
        size_t n;
};

static void rec_cb(void *ctx, enum etcd_watch_event ev, const struct etcd_kv *kv) {
        struct rec *r = ctx;
        pthread_mutex_lock(&r->lock);
        if (r->n < MAX_EVENTS) {
                struct event *e = &r->v[r->n];
                memset(e, 0, sizeof(*e));
                e->ev = ev;
                if (kv) {
                        e->key_len = kv->key_len;
                        e->value_len = kv->value_len;
                        memcpy(e->key, kv->key, kv->key_len < 127 ? kv->key_len : 127);
                        memcpy(e->value, kv->value, kv->value_len < 63 ? kv->value_len : 63);
                        e->create_revision = kv->create_revision;
                        e->mod_revision = kv->mod_revision;
                        e->lease = kv->lease;
                }
        }
        r->n++;
        pthread_cond_broadcast(&r->cond);
        pthread_mutex_unlock(&r->lock);
}

/* Index of the first event ev (any event when ev < 0) at or after from,
 * waiting up to WAIT_MS for it; -1 if none came. */
static long rec_wait(struct rec *r, size_t from, int ev) {
        struct timespec dl;
        clock_gettime(CLOCK_MONOTONIC, &dl);
        dl.tv_sec += WAIT_MS / 1000;
        long found = -1;
        pthread_mutex_lock(&r->lock);
        for (;;) {
                for (size_t i = from; i < r->n && i < MAX_EVENTS; i++) {
                        if (ev < 0 || r->v[i].ev == (enum etcd_watch_event)ev) {
                                found = (long)i;
                                break;
                        }
                }
                if (found >= 0 || pthread_cond_timedwait(&r->cond, &r->lock, &dl) == ETIMEDOUT)
                        break;
        }
        pthread_mutex_unlock(&r->lock);
        return found;
}

static size_t rec_count(struct rec *r) {
        pthread_mutex_lock(&r->lock);
        size_t n = r->n;
        pthread_mutex_unlock(&r->lock);
        return n;
}

static void assert_event(struct rec *r, long i, enum etcd_watch_event ev, const char *key) {
        assert_true(i >= 0);
        assert_true((size_t)i < rec_count(r));
        assert_int_equal(r->v[i].ev, ev);
        if (key) {
                assert_int_equal(r->v[i].key_len, strlen(key));
                assert_string_equal(r->v[i].key, key);
        }
}

/* ---- per-test fixture ---- */

struct fixture {
        struct etcd *e;
        struct etcd_watch *w;
        struct rec *rec;
};

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof(*f));
        f->rec = calloc(1, sizeof(*f->rec));
        pthread_mutex_init(&f->rec->lock, NULL);
        pthread_condattr_t ca;
        pthread_condattr_init(&ca);
        pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
        pthread_cond_init(&f->rec->cond, &ca);
        pthread_condattr_destroy(&ca);
        if (etcd_new(url(srv.port), &f->e) < 0)
                return -1;
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;
        etcd_watch_stop(f->w);
        etcd_free(f->e);
        pthread_mutex_destroy(&f->rec->lock);
        pthread_cond_destroy(&f->rec->cond);
        free(f->rec);
        free(f);
        return 0;
}

static void watch(struct fixture *f, const char *prefix, int64_t start_rev) {
        assert_int_equal(etcd_watch_start(f->e, prefix, start_rev, rec_cb, f->rec, &f->w), 0);
}

static int64_t create(struct etcd *e, const char *key, const char *value, int64_t lease) {
        int64_t rev = 0;
        assert_int_equal(etcd_create(e, key, value, strlen(value), lease, &rev, NULL), 0);
        assert_true(rev > 0);
        return rev;
}

/* ---- tests ---- */

static void test_new_checks_endpoints(void **state) {
        (void)state;
        struct etcd *e = NULL;
        assert_int_equal(etcd_new("", &e), -EINVAL);
        assert_int_equal(etcd_new(" , ", &e), -EINVAL);
        assert_int_equal(etcd_new("127.0.0.1:2379", &e), -EINVAL);
        assert_int_equal(etcd_new("http://a:1,ftp://b", &e), -EINVAL);
        assert_int_equal(etcd_new("http://", &e), -EINVAL);
        assert_null(e);
        assert_int_equal(etcd_new("http://a:1, https://b:2/", &e), 0);
        etcd_free(e);
        etcd_free(NULL);
}

/* Binary values go through etcd intact, and etcd reads our base64 as we mean it. */
static void test_binary_values(void **state) {
        struct fixture *f = *state;
        char key[32], value[16];
        for (int len = 0; len <= 10; len++) {
                for (int i = 0; i < len; i++)
                        value[i] = (char)(i % 3 == 0 ? 0 : 0xff - i);
                snprintf(key, sizeof(key), "/bin/%02d", len);
                int64_t rev = 0;
                assert_int_equal(etcd_create(f->e, key, value, (size_t)len, 0, &rev, NULL), 0);
                assert_true(rev > 0);
        }
        struct etcd_kv *kvs;
        size_t n;
        assert_int_equal(etcd_range_prefix(f->e, "/bin/", &kvs, &n, NULL), 0);
        assert_int_equal(n, 11);
        for (size_t k = 0; k < n; k++) {
                for (size_t i = 0; i < k; i++)
                        value[i] = (char)(i % 3 == 0 ? 0 : 0xff - i);
                assert_int_equal(kvs[k].value_len, k);
                assert_memory_equal(kvs[k].value, value, k);
                assert_int_equal(kvs[k].value[k], '\0');
        }
        etcd_kvs_free(kvs, n);
        /* "/bin/b64" = L2Jpbi9iNjQ=, "foobar" = Zm9vYmFy, as etcd itself sees them */
        create(f->e, "/bin/b64", "foobar", 0);
        char *answer = NULL;
        long status = raw_http(srv.port, "/v3/kv/range", "{\"key\":\"L2Jpbi9iNjQ=\"}", &answer);
        assert_int_equal(status, 200);
        assert_non_null(strstr(answer, "\"value\":\"Zm9vYmFy\""));
        free(answer);
}

static void test_lease(void **state) {
        struct fixture *f = *state;
        int64_t id = 0, ttl = 0, left = 0, rev;
        assert_int_equal(etcd_lease_grant(f->e, 30, &id, &ttl), 0);
        assert_true(id != 0);
        assert_int_equal(ttl, 30);
        assert_int_equal(etcd_lease_keepalive(f->e, id, &left), 0);
        assert_true(left > 0 && left <= 30);
        assert_int_equal(etcd_lease_keepalive(f->e, id, NULL), 0);
        create(f->e, "/lease/a", "1", id);
        create(f->e, "/lease/b", "2", id);
        rev = create(f->e, "/lease/c", "3", 0);
        assert_int_equal(etcd_update(f->e, "/lease/c", "4", 1, id, rev), 0);

        assert_int_equal(etcd_lease_revoke(f->e, id), 0);
        assert_int_equal(etcd_lease_keepalive(f->e, id, &left), -ENOENT);
        assert_int_equal(etcd_lease_revoke(f->e, id), -ENOENT);
        struct etcd_kv *kvs;
        size_t n;
        assert_int_equal(etcd_range_prefix(f->e, "/lease/", &kvs, &n, NULL), 0);
        assert_int_equal(n, 0); /* c was moved onto the lease by the update */
        assert_null(kvs);
        assert_int_equal(etcd_create(f->e, "/lease/d", "x", 1, id, &rev, NULL), -ENOENT);
        rev = create(f->e, "/lease/d", "x", 0);
        assert_int_equal(etcd_update(f->e, "/lease/d", "y", 1, id, rev), -ENOENT);
        assert_int_equal(etcd_lease_keepalive(f->e, 12345, NULL), -ENOENT);

        /* a lease that runs out takes its keys along */
        assert_int_equal(etcd_lease_grant(f->e, 1, &id, &ttl), 0);
        create(f->e, "/lease/short", "x", id);
        int64_t deadline = now_ms() + DEADLINE_MS;
        do {
                assert_int_equal(etcd_range_prefix(f->e, "/lease/short", &kvs, &n, NULL), 0);
                etcd_kvs_free(kvs, n);
                if (n)
                        nanosleep(&(struct timespec){ 0, 50 * 1000 * 1000 }, NULL);
        } while (n && now_ms() < deadline);
        assert_int_equal(n, 0);
        assert_int_equal(etcd_lease_keepalive(f->e, id, NULL), -ENOENT);
}

static void test_create_exists(void **state) {
        struct fixture *f = *state;
        int64_t id, rev = 0, rev2 = 0;
        assert_int_equal(etcd_lease_grant(f->e, 60, &id, NULL), 0);
        assert_int_equal(etcd_create(f->e, "/c/k", "holder\0A", 8, id, &rev, NULL), 0);
        struct etcd_kv holder = { 0 };
        assert_int_equal(etcd_create(f->e, "/c/k", "B", 1, 0, &rev2, &holder), -EEXIST);
        assert_int_equal(rev2, 0);
        assert_int_equal(holder.key_len, 4);
        assert_string_equal(holder.key, "/c/k");
        assert_int_equal(holder.value_len, 8);
        assert_memory_equal(holder.value, "holder\0A", 8);
        assert_int_equal(holder.create_revision, rev);
        assert_int_equal(holder.mod_revision, rev);
        assert_int_equal(holder.lease, id);
        /* the holder is cleared before it is filled again */
        assert_int_equal(etcd_create(f->e, "/c/k", "B", 1, 0, NULL, &holder), -EEXIST);
        assert_int_equal(holder.create_revision, rev);
        etcd_kv_clear(&holder);
        etcd_kv_clear(&holder);
        assert_null(holder.key);

        /* the revision returned is the key's create revision */
        struct etcd_kv *kvs;
        size_t n;
        int64_t at;
        assert_int_equal(etcd_range_prefix(f->e, "/c/k", &kvs, &n, &at), 0);
        assert_int_equal(n, 1);
        assert_int_equal(kvs[0].create_revision, rev);
        assert_int_equal(kvs[0].lease, id);
        assert_true(at >= rev);
        etcd_kvs_free(kvs, n);

        /* create revisions strictly increase */
        int64_t last = rev;
        for (int i = 0; i < 10; i++) {
                char key[32];
                snprintf(key, sizeof(key), "/c/seq%d", i);
                int64_t r = create(f->e, key, "", 0);
                assert_true(r > last);
                last = r;
        }
        assert_int_equal(etcd_lease_revoke(f->e, id), 0);
        int64_t again = create(f->e, "/c/k", "C", 0);
        assert_true(again > last);
}

static void test_update(void **state) {
        struct fixture *f = *state;
        int64_t rev = create(f->e, "/u/k", "one", 0);
        assert_int_equal(etcd_update(f->e, "/u/k", "two", 3, 0, rev + 1), -ESTALE);
        struct etcd_kv *kvs;
        size_t n;
        assert_int_equal(etcd_range_prefix(f->e, "/u/k", &kvs, &n, NULL), 0);
        assert_int_equal(n, 1);
        assert_string_equal(kvs[0].value, "one");
        etcd_kvs_free(kvs, n);

        assert_int_equal(etcd_update(f->e, "/u/k", "two", 3, 0, rev), 0);
        assert_int_equal(etcd_range_prefix(f->e, "/u/k", &kvs, &n, NULL), 0);
        assert_int_equal(n, 1);
        assert_string_equal(kvs[0].value, "two");
        assert_int_equal(kvs[0].create_revision, rev);
        assert_true(kvs[0].mod_revision > rev);
        etcd_kvs_free(kvs, n);

        /* gone, then created anew: the old revision no longer fits */
        assert_int_equal(etcd_delete_if(f->e, "/u/k", rev), 0);
        assert_int_equal(etcd_update(f->e, "/u/k", "three", 5, 0, rev), -ESTALE);
        assert_int_equal(etcd_range_prefix(f->e, "/u/k", &kvs, &n, NULL), 0);
        assert_int_equal(n, 0);
        int64_t rev2 = create(f->e, "/u/k", "four", 0);
        assert_int_equal(etcd_update(f->e, "/u/k", "five", 4, 0, rev), -ESTALE);
        assert_int_equal(etcd_update(f->e, "/u/k", "five", 4, 0, rev2), 0);
        assert_int_equal(etcd_update(f->e, "/u/k", "x", 1, 0, 0), -EINVAL);
}

static void test_delete_if(void **state) {
        struct fixture *f = *state;
        int64_t rev = create(f->e, "/d/k", "v", 0);
        struct etcd_kv *kvs;
        size_t n;
        assert_int_equal(etcd_delete_if(f->e, "/d/k", rev - 1), -ESTALE);
        assert_int_equal(etcd_delete_if(f->e, "/d/k", rev + 1), -ESTALE);
        assert_int_equal(etcd_range_prefix(f->e, "/d/k", &kvs, &n, NULL), 0);
        assert_int_equal(n, 1);
        etcd_kvs_free(kvs, n);
        assert_int_equal(etcd_delete_if(f->e, "/d/k", rev), 0);
        assert_int_equal(etcd_range_prefix(f->e, "/d/k", &kvs, &n, NULL), 0);
        assert_int_equal(n, 0);
        assert_int_equal(etcd_delete_if(f->e, "/d/k", rev), -ESTALE);
        int64_t rev2 = create(f->e, "/d/k", "w", 0);
        assert_int_equal(etcd_delete_if(f->e, "/d/k", rev), -ESTALE);
        assert_int_equal(etcd_delete_if(f->e, "/d/k", rev2), 0);
}

static void expect_keys(struct etcd *e, const char *prefix, const char **keys, size_t count) {
        struct etcd_kv *kvs;
        size_t n;
        int64_t rev = 0;
        assert_int_equal(etcd_range_prefix(e, prefix, &kvs, &n, &rev), 0);
        assert_true(rev > 0);
        assert_int_equal(n, count);
        for (size_t i = 0; i < n; i++) {
                assert_int_equal(kvs[i].key_len, strlen(keys[i]));
                assert_string_equal(kvs[i].key, keys[i]);
                assert_true(kvs[i].create_revision > 0 && kvs[i].mod_revision <= rev);
        }
        if (!n)
                assert_null(kvs);
        etcd_kvs_free(kvs, n);
}

static void test_range_prefix(void **state) {
        struct fixture *f = *state;
        static const char *all[] = { "/r", "/r/a", "/r/a/x", "/r/ab", "/r/b", "/r0", "/r\xff",
                                     "/r\xff\xff", "/r\xff" "a", "/s" };
        for (size_t i = 0; i < sizeof(all) / sizeof(all[0]); i++)
                create(f->e, all[i], all[i], 0);
        expect_keys(f->e, "/r/", (const char *[]){ "/r/a", "/r/a/x", "/r/ab", "/r/b" }, 4);
        expect_keys(f->e, "/r/a", (const char *[]){ "/r/a", "/r/a/x", "/r/ab" }, 3);
        expect_keys(f->e, "/r/a/", (const char *[]){ "/r/a/x" }, 1);
        expect_keys(f->e, "/r/c", NULL, 0);
        expect_keys(f->e, "/r\xff", (const char *[]){ "/r\xff", "/r\xff" "a", "/r\xff\xff" }, 3);
        expect_keys(f->e, "/r\xff\xff", (const char *[]){ "/r\xff\xff" }, 1);
        struct etcd_kv *kvs;
        size_t n;
        assert_int_equal(etcd_range_prefix(f->e, "", &kvs, &n, NULL), 0);
        assert_true(n >= sizeof(all) / sizeof(all[0]));
        etcd_kvs_free(kvs, n);
}

/* Threads share one client (and its handle pool); one key is fought over. */
struct worker {
        struct etcd *e;
        int id, won, failed;
};

static void *worker_main(void *data) {
        struct worker *wk = data;
        char key[32];
        snprintf(key, sizeof(key), "/mt/%d", wk->id);
        for (int i = 0; i < 50; i++) {
                int64_t rev = 0, shared = 0;
                if (etcd_create(wk->e, key, "v", 1, 0, &rev, NULL) < 0 ||
                    etcd_delete_if(wk->e, key, rev) < 0)
                        wk->failed++;
                int r = etcd_create(wk->e, "/mt/shared", "s", 1, 0, &shared, NULL);
                if (r == 0) {
                        wk->won++;
                        if (etcd_delete_if(wk->e, "/mt/shared", shared) < 0)
                                wk->failed++;
                } else if (r != -EEXIST) {
                        wk->failed++;
                }
        }
        return NULL;
}

static void test_threads(void **state) {
        struct fixture *f = *state;
        struct worker wk[4];
        pthread_t t[4];
        for (int i = 0; i < 4; i++) {
                wk[i] = (struct worker){ .e = f->e, .id = i };
                assert_int_equal(pthread_create(&t[i], NULL, worker_main, &wk[i]), 0);
        }
        int won = 0;
        for (int i = 0; i < 4; i++) {
                pthread_join(t[i], NULL);
                assert_int_equal(wk[i].failed, 0);
                won += wk[i].won;
        }
        assert_true(won > 0);
        expect_keys(f->e, "/mt/", NULL, 0);
}

static void test_unreachable(void **state) {
        (void)state;
        struct etcd *e;
        assert_int_equal(etcd_new(url(srv.dead), &e), 0);
        int64_t t0 = now_ms(), id, rev;
        struct etcd_kv *kvs;
        size_t n;
        assert_int_equal(etcd_lease_grant(e, 10, &id, NULL), -ENOTCONN);
        assert_int_equal(etcd_lease_keepalive(e, 1, NULL), -ENOTCONN);
        assert_int_equal(etcd_create(e, "/x", "v", 1, 0, &rev, NULL), -ENOTCONN);
        assert_int_equal(etcd_delete_if(e, "/x", 1), -ENOTCONN);
        assert_int_equal(etcd_range_prefix(e, "/x", &kvs, &n, NULL), -ENOTCONN);
        /* a refused connection is an answer: printed, not asserted */
        fprintf(stderr, "# five calls to a dead endpoint: %lld ms\n", (long long)(now_ms() - t0));
        etcd_free(e);
}

static void test_failover(void **state) {
        (void)state;
        char eps[160];
        struct etcd *e;
        snprintf(eps, sizeof(eps), "%s,%s", url(srv.dead), url(srv.port));
        assert_int_equal(etcd_new(eps, &e), 0);
        int64_t t0 = now_ms(), id, rev;
        assert_int_equal(etcd_lease_grant(e, 10, &id, NULL), 0);
        rev = create(e, "/fo/k", "v", id);
        assert_int_equal(etcd_delete_if(e, "/fo/k", rev), 0);
        assert_int_equal(etcd_lease_revoke(e, id), 0);
        fprintf(stderr, "# four calls with a dead first endpoint: %lld ms\n",
                (long long)(now_ms() - t0));
        etcd_free(e);
}

static void test_watch_listing_and_live(void **state) {
        struct fixture *f = *state;
        struct rec *r = f->rec;
        int64_t id;
        assert_int_equal(etcd_lease_grant(f->e, 60, &id, NULL), 0);
        int64_t ra = create(f->e, "/w/a", "A", id);
        create(f->e, "/w/b", "", 0);
        create(f->e, "/w0", "sibling", 0);
        watch(f, "/w/", 0);
        long i = rec_wait(r, 0, ETCD_WATCH_SYNC_END);
        assert_int_equal(i, 3);
        assert_true(r->v[3].mod_revision >= ra); /* the listing's revision */
        assert_event(r, 0, ETCD_WATCH_SYNC_BEGIN, NULL);
        assert_event(r, 1, ETCD_WATCH_PUT, "/w/a");
        assert_string_equal(r->v[1].value, "A");
        assert_int_equal(r->v[1].create_revision, ra);
        assert_int_equal(r->v[1].mod_revision, ra);
        assert_int_equal(r->v[1].lease, id);
        assert_event(r, 2, ETCD_WATCH_PUT, "/w/b");
        assert_int_equal(r->v[2].value_len, 0);

        /* live: put, update, delete, a sibling prefix that must not show */
        int64_t rc = create(f->e, "/w/c", "C", id);
        assert_int_equal(etcd_update(f->e, "/w/c", "C2", 2, 0, rc), 0);
        create(f->e, "/w0/x", "no", 0);
        create(f->e, "/x", "no", 0);
        assert_int_equal(etcd_delete_if(f->e, "/w/c", rc), 0);
        assert_true(rec_wait(r, 4, ETCD_WATCH_DELETE) == 6);
        assert_event(r, 4, ETCD_WATCH_PUT, "/w/c");
        assert_string_equal(r->v[4].value, "C");
        assert_int_equal(r->v[4].create_revision, rc);
        assert_int_equal(r->v[4].mod_revision, rc);
        assert_int_equal(r->v[4].lease, id);
        assert_event(r, 5, ETCD_WATCH_PUT, "/w/c");
        assert_string_equal(r->v[5].value, "C2");
        assert_int_equal(r->v[5].create_revision, rc);
        assert_true(r->v[5].mod_revision > rc);
        assert_int_equal(r->v[5].lease, 0);
        assert_event(r, 6, ETCD_WATCH_DELETE, "/w/c");
        assert_true(r->v[6].mod_revision > r->v[5].mod_revision + 2);

        /* a revoke deletes every key of the lease at one revision */
        create(f->e, "/w/d", "D", id);
        assert_int_equal(etcd_lease_revoke(f->e, id), 0);
        long d1 = rec_wait(r, 8, ETCD_WATCH_DELETE);
        long d2 = rec_wait(r, (size_t)d1 + 1, ETCD_WATCH_DELETE);
        assert_event(r, 7, ETCD_WATCH_PUT, "/w/d");
        assert_int_equal(d1, 8);
        assert_int_equal(d2, 9);
        assert_int_equal(r->v[8].mod_revision, r->v[9].mod_revision);
        assert_true(r->v[8].mod_revision > r->v[7].mod_revision);
        bool a_first = !strcmp(r->v[8].key, "/w/a");
        assert_string_equal(r->v[a_first ? 8 : 9].key, "/w/a");
        assert_string_equal(r->v[a_first ? 9 : 8].key, "/w/d");
        assert_int_equal(rec_count(r), 10);

        /* stopping returns (the watch thread is joined); a generous
         * deadline, how long it took is printed */
        int64_t t0 = now_ms();
        etcd_watch_stop(f->w);
        f->w = NULL;
        int64_t took = now_ms() - t0;
        fprintf(stderr, "# watch stop: %lld ms\n", (long long)took);
        assert_true(took < DEADLINE_MS);
}

static void test_watch_from_revision(void **state) {
        struct fixture *f = *state;
        struct rec *r = f->rec;
        int64_t r1 = create(f->e, "/wf/1", "1", 0);
        int64_t r2 = create(f->e, "/wf/2", "2", 0);
        assert_int_equal(etcd_delete_if(f->e, "/wf/1", r1), 0);
        watch(f, "/wf/", r2);
        long i = rec_wait(r, 0, ETCD_WATCH_DELETE);
        assert_int_equal(i, 1);
        assert_event(r, 0, ETCD_WATCH_PUT, "/wf/2");
        assert_int_equal(r->v[0].mod_revision, r2);
        assert_event(r, 1, ETCD_WATCH_DELETE, "/wf/1");
}

/* A watch on a cluster that does not answer says DOWN once and still stops at once. */
static void test_watch_unreachable(void **state) {
        struct fixture *f = *state;
        struct rec *r = f->rec;
        struct etcd *dead;
        assert_int_equal(etcd_new(url(srv.dead), &dead), 0);
        assert_int_equal(etcd_watch_start(dead, "/", 0, rec_cb, r, &f->w), 0);
        assert_int_equal(rec_wait(r, 0, ETCD_WATCH_DOWN), 0);
        /* stopping does not wait for the dead cluster: it returns while
         * nothing answers; a generous deadline, the time is printed */
        int64_t t0 = now_ms();
        etcd_watch_stop(f->w);
        f->w = NULL;
        int64_t took = now_ms() - t0;
        fprintf(stderr, "# watch stop, cluster dead: %lld ms\n", (long long)took);
        assert_true(took < DEADLINE_MS);
        assert_int_equal(rec_count(r), 1);
        etcd_free(dead);
}

/* A fake gateway on a free port: it serves conns connections, one request
 * each, with reply (a whole HTTP answer) or, without reply, a watch stream
 * cut at odd places: an object split inside a string, two objects in one
 * chunk with no newline, braces inside strings, an object a byte per chunk. */
#define FAKE_MAX 8

struct fake {
        int fd, port, conns;
        const char *reply;
        const char *const *replies; /* one per connection, when set */
        pthread_t thread;
        char request[2048];     /* the last one */
        char requests[FAKE_MAX][2048]; /* with replies: each one */
};

static const char *fake_chunks[] = {
        "{\"result\":{\"header\":{\"revision\":\"5\"},\"created\":true}}\n{\"result\":{\"header\":"
        "{\"revision\":\"5\"},\"events\":[{\"kv\":{\"key\":\"L2Yv",
        "YQ==\",\"create_revision\":\"5\",\"mod_revision\":\"5\",\"value\":\"eA==\",\"lease\":\"7\","
        "\"x\":\"}{\\\"}]\"}}]}}{\"result\":{\"events\":[{\"type\":\"DELETE\",\"kv\":{\"key\":"
        "\"L2YvYQ==\",\"mod_revision\":\"6\"}}]}}\r\n",
        NULL, /* then this object byte by byte: */
        "{\"result\":{\"events\":[{\"kv\":{\"key\":\"L2YvYg==\",\"create_revision\":\"7\","
        "\"mod_revision\":\"8\",\"version\":\"2\"}}]}}",
};

static bool fake_write(int fd, const char *p, size_t n) {
        return send(fd, p, n, MSG_NOSIGNAL) == (ssize_t)n;
}

static void fake_chunk(int fd, const char *p, size_t n) {
        char head[32];
        int h = snprintf(head, sizeof(head), "%zx\r\n", n);
        if (fake_write(fd, head, (size_t)h) && fake_write(fd, p, n) && fake_write(fd, "\r\n", 2))
                nanosleep(&(struct timespec){ 0, 5 * 1000 * 1000 }, NULL); /* one read per chunk */
}

static void fake_serve(struct fake *fk, int c) {
        size_t n = 0;
        char *body;
        while (n < sizeof(fk->request) - 1) {
                ssize_t k = read(c, fk->request + n, sizeof(fk->request) - 1 - n);
                if (k <= 0)
                        break;
                n += (size_t)k;
                fk->request[n] = '\0';
                const char *cl = strcasestr(fk->request, "Content-Length:");
                if ((body = strstr(fk->request, "\r\n\r\n")) && cl &&
                    (size_t)(fk->request + n - body - 4) >= strtoul(cl + 15, NULL, 10))
                        break;
        }
        if (fk->reply) {
                fake_write(c, fk->reply, strlen(fk->reply));
                return;
        }
        static const char head[] = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                                   "Transfer-Encoding: chunked\r\n\r\n";
        if (!fake_write(c, head, sizeof(head) - 1))
                return;
        fake_chunk(c, fake_chunks[0], strlen(fake_chunks[0]));
        fake_chunk(c, fake_chunks[1], strlen(fake_chunks[1]));
        for (const char *p = fake_chunks[3]; *p; p++)
                fake_chunk(c, p, 1);
        fake_write(c, "0\r\n\r\n", 5);
}

static void *fake_main(void *data) {
        struct fake *fk = data;
        for (int i = 0; i < fk->conns; i++) {
                int c = accept(fk->fd, NULL, NULL);
                if (c < 0)
                        break;
                if (fk->replies && i < FAKE_MAX)
                        fk->reply = fk->replies[i];
                fake_serve(fk, c);
                if (fk->replies && i < FAKE_MAX)
                        memcpy(fk->requests[i], fk->request, sizeof(fk->request));
                close(c);
        }
        close(fk->fd);
        return NULL;
}

static void fake_start(struct fake *fk, int conns, const char *reply) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof(a);
        fk->fd = socket(AF_INET, SOCK_STREAM, 0);
        fk->conns = conns;
        fk->reply = reply;
        fk->replies = NULL;
        memset(fk->requests, 0, sizeof(fk->requests));
        assert_int_equal(bind(fk->fd, (struct sockaddr *)&a, sizeof(a)), 0);
        assert_int_equal(getsockname(fk->fd, (struct sockaddr *)&a, &len), 0);
        assert_int_equal(listen(fk->fd, 4), 0);
        fk->port = ntohs(a.sin_port);
        assert_int_equal(pthread_create(&fk->thread, NULL, fake_main, fk), 0);
}

static void test_watch_stream_parsing(void **state) {
        struct fixture *f = *state;
        struct rec *r = f->rec;
        struct fake fk;
        struct etcd *e;
        fake_start(&fk, 1, NULL);
        assert_int_equal(etcd_new(url(fk.port), &e), 0);
        assert_int_equal(etcd_watch_start(e, "/f/", 5, rec_cb, r, &f->w), 0);
        long down = rec_wait(r, 0, ETCD_WATCH_DOWN);
        etcd_watch_stop(f->w);
        f->w = NULL;
        etcd_free(e);
        pthread_join(fk.thread, NULL);
        /* the request: POST /v3/watch for [/f/, /f0) from revision 5 */
        assert_non_null(strstr(fk.request, "POST /v3/watch HTTP/1.1\r\n"));
        assert_non_null(strstr(fk.request, "{\"create_request\":{\"key\":\"L2Yv\","
                                           "\"range_end\":\"L2Yw\",\"start_revision\":\"5\"}}"));
        assert_int_equal(down, 3);
        assert_event(r, 0, ETCD_WATCH_PUT, "/f/a");
        assert_string_equal(r->v[0].value, "x");
        assert_int_equal(r->v[0].create_revision, 5);
        assert_int_equal(r->v[0].mod_revision, 5);
        assert_int_equal(r->v[0].lease, 7);
        assert_event(r, 1, ETCD_WATCH_DELETE, "/f/a");
        assert_int_equal(r->v[1].mod_revision, 6);
        assert_event(r, 2, ETCD_WATCH_PUT, "/f/b");
        assert_int_equal(r->v[2].value_len, 0);
        assert_int_equal(r->v[2].create_revision, 7);
        assert_int_equal(r->v[2].mod_revision, 8);
        assert_int_equal(r->v[2].lease, 0);
        assert_int_equal(rec_count(r), 4);
}

/* What answers that are not plain successes turn into. */
static void test_error_answers(void **state) {
        (void)state;
        static const char not_json[] = "HTTP/1.1 200 OK\r\nContent-Length: 8\r\nConnection: close"
                                       "\r\n\r\nnot json";
        static const char lease_gone[] =
                "HTTP/1.1 404 Not Found\r\nContent-Length: 108\r\nConnection: close\r\n\r\n"
                "{\"error\":\"etcdserver: requested lease not found\",\"message\":"
                "\"etcdserver: requested lease not found\",\"code\":5}";
        static const char unavailable[] =
                "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 77\r\nConnection: close\r\n\r\n"
                "{\"error\":\"etcdserver: no leader\",\"message\":\"etcdserver: no leader\",\"code\":14}";
        struct fake fk;
        struct etcd *e;
        struct etcd_kv *kvs;
        size_t n;
        int64_t rev;

        fake_start(&fk, 1, not_json);
        assert_int_equal(etcd_new(url(fk.port), &e), 0);
        assert_int_equal(etcd_range_prefix(e, "/", &kvs, &n, NULL), -EIO);
        etcd_free(e);
        pthread_join(fk.thread, NULL);

        fake_start(&fk, 4, lease_gone);
        assert_int_equal(etcd_new(url(fk.port), &e), 0);
        assert_int_equal(etcd_lease_keepalive(e, 1, NULL), -ENOENT);
        assert_int_equal(etcd_create(e, "/k", "v", 1, 1, &rev, NULL), -ENOENT);
        assert_int_equal(etcd_update(e, "/k", "v", 1, 1, 5), -ENOENT);
        assert_int_equal(etcd_delete_if(e, "/k", 5), -EIO);
        assert_non_null(strstr(fk.request, "POST /v3/kv/txn HTTP/1.1\r\n"));
        assert_non_null(strstr(fk.request, "{\"compare\":[{\"key\":\"L2s=\",\"target\":\"CREATE\","
                                           "\"result\":\"EQUAL\",\"create_revision\":\"5\"}],"));
        etcd_free(e);
        pthread_join(fk.thread, NULL);

        /* a member that cannot serve: the next endpoint is asked */
        char eps[128];
        fake_start(&fk, 1, unavailable);
        snprintf(eps, sizeof(eps), "%s,%s", url(fk.port), url(srv.port));
        assert_int_equal(etcd_new(eps, &e), 0);
        assert_int_equal(etcd_range_prefix(e, "/", &kvs, &n, NULL), 0);
        etcd_kvs_free(kvs, n);
        pthread_join(fk.thread, NULL);
        assert_int_equal(etcd_range_prefix(e, "/", &kvs, &n, NULL), 0); /* fake is gone */
        etcd_kvs_free(kvs, n);
        etcd_free(e);
}

/* An HTTP answer with body (malloc'd). */
static char *answer(const char *status, const char *body) {
        char *a;
        assert_true(asprintf(&a, "HTTP/1.1 %s\r\nContent-Type: application/json\r\n"
                             "Content-Length: %zu\r\nConnection: close\r\n\r\n%s",
                             status, strlen(body), body) > 0);
        return a;
}

#define INVALID_TOKEN "{\"error\":\"etcdserver: invalid auth token\",\"message\":" \
                      "\"etcdserver: invalid auth token\",\"code\":16}"

static void test_auth_token_and_renewal(void **state) {
        (void)state;
        char *tok1 = answer("200 OK", "{\"header\":{},\"token\":\"tok1.abc\"}");
        char *tok2 = answer("200 OK", "{\"header\":{},\"token\":\"tok2.def\"}");
        char *expired = answer("401 Unauthorized", INVALID_TOKEN);
        char *empty = answer("200 OK", "{\"header\":{\"revision\":\"3\"}}");
        char *denied = answer("403 Forbidden", "{\"error\":\"etcdserver: permission denied\","
                              "\"message\":\"etcdserver: permission denied\",\"code\":7}");
        char *wrong = answer("400 Bad Request",
                             "{\"message\":\"etcdserver: authentication failed, invalid user "
                             "ID or password\",\"code\":3}");
        char *bad_token = answer("200 OK", "{\"token\":\"tok\\r\\nX-Injected: 1\"}");
        struct fake fk;
        struct etcd *e;
        struct etcd_kv *kvs;
        size_t n;

        /* first call authenticates; a refused token is renewed once */
        const char *const renew[] = { tok1, empty, expired, tok2, empty };
        fake_start(&fk, 5, NULL);
        fk.replies = renew;
        assert_int_equal(etcd_new(url(fk.port), &e), 0);
        assert_int_equal(etcd_set_auth(e, "lockfs", "p\"w\\"), 0);
        assert_int_equal(etcd_range_prefix(e, "/", &kvs, &n, NULL), 0);
        assert_int_equal(etcd_range_prefix(e, "/", &kvs, &n, NULL), 0);
        pthread_join(fk.thread, NULL);
        etcd_free(e);
        assert_non_null(strstr(fk.requests[0], "POST /v3/auth/authenticate "));
        assert_non_null(strstr(fk.requests[0], "{\"name\":\"lockfs\",\"password\":\"p\\\"w\\\\\"}"));
        assert_null(strcasestr(fk.requests[0], "Authorization:"));
        assert_non_null(strstr(fk.requests[1], "\r\nAuthorization: tok1.abc\r\n"));
        assert_non_null(strstr(fk.requests[2], "\r\nAuthorization: tok1.abc\r\n"));
        /* the renewal never sends the stale token */
        assert_non_null(strstr(fk.requests[3], "POST /v3/auth/authenticate "));
        assert_null(strcasestr(fk.requests[3], "Authorization:"));
        assert_non_null(strstr(fk.requests[4], "\r\nAuthorization: tok2.def\r\n"));

        /* renewed twice at most (the first renewal may pick up another
         * thread's token): a token refused again is an error */
        const char *const twice[] = { tok1, expired, tok2, expired, tok2, expired };
        fake_start(&fk, 6, NULL);
        fk.replies = twice;
        assert_int_equal(etcd_new(url(fk.port), &e), 0);
        assert_int_equal(etcd_set_auth(e, "lockfs", "pw"), 0);
        assert_int_equal(etcd_range_prefix(e, "/", &kvs, &n, NULL), -EACCES);
        pthread_join(fk.thread, NULL);
        etcd_free(e);

        /* no permission: no renewal, -EACCES; the check says why */
        const char *const perm[] = { tok1, denied };
        fake_start(&fk, 2, NULL);
        fk.replies = perm;
        assert_int_equal(etcd_new(url(fk.port), &e), 0);
        assert_int_equal(etcd_set_auth(e, "lockfs", "pw"), 0);
        char why[256];
        assert_int_equal(etcd_check(e, "/p/", why, sizeof(why)), -EACCES);
        assert_non_null(strstr(why, "permission denied"));
        pthread_join(fk.thread, NULL);
        etcd_free(e);

        /* a wrong password; a token that would inject a header */
        const char *const bad[] = { wrong, bad_token };
        fake_start(&fk, 2, NULL);
        fk.replies = bad;
        assert_int_equal(etcd_new(url(fk.port), &e), 0);
        assert_int_equal(etcd_set_auth(e, "lockfs", "pw"), 0);
        assert_int_equal(etcd_range_prefix(e, "/", &kvs, &n, NULL), -EACCES);
        assert_int_equal(etcd_range_prefix(e, "/", &kvs, &n, NULL), -EIO);
        pthread_join(fk.thread, NULL);
        etcd_free(e);
        assert_int_equal(etcd_new("http://a:1", &e), 0);
        assert_int_equal(etcd_set_auth(e, "", "pw"), -EINVAL);
        assert_int_equal(etcd_set_tls(e, NULL, "/c", NULL), -EINVAL);
        etcd_free(e);
        free(tok1);
        free(tok2);
        free(expired);
        free(empty);
        free(denied);
        free(wrong);
        free(bad_token);
}

/* Revisions, leases and numbers from etcd are range-checked. */
static void test_hostile_numbers(void **state) {
        (void)state;
        const char *bodies[] = {
                "{\"header\":{\"revision\":\"3\"},\"kvs\":[{\"key\":\"L2E=\",\"lease\":\"-5\"}]}",
                "{\"header\":{\"revision\":\"3\"},\"kvs\":[{\"key\":\"L2E=\","
                "\"create_revision\":1e300}]}",
                "{\"header\":{\"revision\":\"3\"},\"kvs\":[{\"key\":\"L2E=\","
                "\"mod_revision\":\"99999999999999999999\"}]}",
                "{\"header\":{\"revision\":\"3\"},\"kvs\":[{\"key\":\"L2E=\","
                "\"create_revision\":1.5}]}",
        };
        for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
                char *a = answer("200 OK", bodies[i]);
                struct fake fk;
                struct etcd *e;
                struct etcd_kv *kvs;
                size_t n;
                fake_start(&fk, 1, a);
                assert_int_equal(etcd_new(url(fk.port), &e), 0);
                if (etcd_range_prefix(e, "/", &kvs, &n, NULL) != -EIO)
                        fail_msg("accepted: %s", bodies[i]);
                pthread_join(fk.thread, NULL);
                etcd_free(e);
                free(a);
        }
}

static void test_watch_down_up(void **state) {
        struct fixture *f = *state;
        struct rec *r = f->rec;
        create(f->e, "/wd/a", "a", 0);
        watch(f, "/wd/", 0);
        assert_int_equal(rec_wait(r, 0, ETCD_WATCH_SYNC_END), 2);
        etcd_stop();
        assert_int_equal(rec_wait(r, 3, ETCD_WATCH_DOWN), 3);
        assert_int_equal(etcd_spawn(srv.port), 0);
        assert_int_equal(rec_wait(r, 4, ETCD_WATCH_UP), 4);
        int64_t rev = create(f->e, "/wd/b", "b", 0);
        assert_int_equal(rec_wait(r, 5, ETCD_WATCH_PUT), 5);
        assert_event(r, 5, ETCD_WATCH_PUT, "/wd/b");
        assert_int_equal(r->v[5].create_revision, rev);
        assert_int_equal(rec_count(r), 6);
}

/* A member that accepts connections but never answers (SIGSTOP): calls
 * time out in their bound, and the watch's probe notices it. */
static void test_watch_paused(void **state) {
        struct fixture *f = *state;
        struct rec *r = f->rec;
        watch(f, "/wp/", 0);
        assert_int_equal(rec_wait(r, 0, ETCD_WATCH_SYNC_END), 1);
        int st;
        kill(srv.pid, SIGSTOP);
        assert_int_equal(waitpid(srv.pid, &st, WUNTRACED), srv.pid); /* all its threads stopped */
        assert_true(WIFSTOPPED(st));
        int64_t t0 = now_ms(), rev;
        assert_int_equal(etcd_create(f->e, "/wp/x", "x", 1, 0, &rev, NULL), -ENOTCONN);
        int64_t took = now_ms() - t0;
        fprintf(stderr, "# create against a frozen member: -ENOTCONN after %lld ms\n",
                (long long)took);
        /* it gave up on its own: etcd is still stopped (SIGCONT comes
         * below), and within a generous deadline */
        assert_true(took < DEADLINE_MS);
        /* a kept lower bound, rule (etcd.h): each request has its bounded
         * time, about 2 s; a member slow to answer gets that long, a call
         * must not give up well before it (slowness only makes took longer) */
        assert_true(took >= 1500);
        assert_int_equal(rec_wait(r, 2, ETCD_WATCH_DOWN), 2);
        kill(srv.pid, SIGCONT);
        assert_int_equal(rec_wait(r, 3, ETCD_WATCH_UP), 3);
        rev = create(f->e, "/wp/y", "y", 0);
        /* the create that timed out was sent: etcd may carry it out on SIGCONT */
        long i = rec_wait(r, 4, ETCD_WATCH_PUT);
        if (i == 4 && !strcmp(r->v[4].key, "/wp/x"))
                i = rec_wait(r, 5, ETCD_WATCH_PUT);
        assert_event(r, i, ETCD_WATCH_PUT, "/wp/y");
        assert_int_equal(r->v[i].create_revision, rev);
        assert_int_equal(rec_count(r), (size_t)i + 1);
}

static void test_watch_compacted(void **state) {
        struct fixture *f = *state;
        struct rec *r = f->rec;
        int64_t ra = create(f->e, "/wc/a", "a", 0);
        create(f->e, "/wc/b", "b", 0);
        watch(f, "/wc/", 0);
        assert_int_equal(rec_wait(r, 0, ETCD_WATCH_SYNC_END), 3);
        etcd_stop();
        assert_int_equal(rec_wait(r, 4, ETCD_WATCH_DOWN), 4);

        /* while the watch cannot reach it: changes, then compaction past them */
        assert_int_equal(etcd_spawn(srv.port2), 0);
        struct etcd *e2;
        assert_int_equal(etcd_new(url(srv.port2), &e2), 0);
        assert_int_equal(etcd_delete_if(e2, "/wc/a", ra), 0);
        int64_t rc = create(e2, "/wc/c", "c", 0);
        create(e2, "/wc/d", "d", 0);
        char body[64];
        snprintf(body, sizeof(body), "{\"revision\":\"%lld\",\"physical\":true}", (long long)rc + 1);
        assert_int_equal(raw_http(srv.port2, "/v3/kv/compaction", body, NULL), 200);
        etcd_free(e2);
        etcd_stop();
        assert_int_equal(etcd_spawn(srv.port), 0);

        long end = rec_wait(r, 5, ETCD_WATCH_SYNC_END);
        assert_int_equal(end, 10);
        assert_event(r, 5, ETCD_WATCH_UP, NULL);
        assert_event(r, 6, ETCD_WATCH_SYNC_BEGIN, NULL);
        assert_event(r, 7, ETCD_WATCH_PUT, "/wc/b");
        assert_event(r, 8, ETCD_WATCH_PUT, "/wc/c");
        assert_int_equal(r->v[8].create_revision, rc);
        assert_event(r, 9, ETCD_WATCH_PUT, "/wc/d");
        /* and it goes on live after the listing */
        create(f->e, "/wc/e", "e", 0);
        assert_int_equal(rec_wait(r, 11, ETCD_WATCH_PUT), 11);
        assert_event(r, 11, ETCD_WATCH_PUT, "/wc/e");
        assert_int_equal(rec_count(r), 12);

        /* a start revision that was compacted away gives a listing too */
        etcd_watch_stop(f->w);
        f->w = NULL;
        r->n = 0;
        watch(f, "/wc/", 1);
        assert_int_equal(rec_wait(r, 0, ETCD_WATCH_SYNC_END), 5);
        assert_event(r, 0, ETCD_WATCH_SYNC_BEGIN, NULL);
        assert_event(r, 1, ETCD_WATCH_PUT, "/wc/b");
        assert_event(r, 4, ETCD_WATCH_PUT, "/wc/e");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_new_checks_endpoints),
                cmocka_unit_test_setup_teardown(test_binary_values, setup, teardown),
                cmocka_unit_test_setup_teardown(test_lease, setup, teardown),
                cmocka_unit_test_setup_teardown(test_create_exists, setup, teardown),
                cmocka_unit_test_setup_teardown(test_update, setup, teardown),
                cmocka_unit_test_setup_teardown(test_delete_if, setup, teardown),
                cmocka_unit_test_setup_teardown(test_range_prefix, setup, teardown),
                cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
                cmocka_unit_test(test_unreachable),
                cmocka_unit_test(test_failover),
                cmocka_unit_test_setup_teardown(test_watch_listing_and_live, setup, teardown),
                cmocka_unit_test_setup_teardown(test_watch_from_revision, setup, teardown),
                cmocka_unit_test_setup_teardown(test_watch_unreachable, setup, teardown),
                cmocka_unit_test_setup_teardown(test_watch_stream_parsing, setup, teardown),
                cmocka_unit_test(test_error_answers),
                cmocka_unit_test(test_auth_token_and_renewal),
                cmocka_unit_test(test_hostile_numbers),
                cmocka_unit_test_setup_teardown(test_watch_down_up, setup, teardown),
                cmocka_unit_test_setup_teardown(test_watch_paused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_watch_compacted, setup, teardown),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
