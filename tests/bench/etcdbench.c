/* SPDX-License-Identifier: MIT */
/* The etcd baseline for the lockfs benchmarks: create-if-absent + delete
 * cycles of one key through the project's own etcd client (src/etcd.h),
 * over its kept-alive connection, the round trips a lock service on etcd
 * pays at the least.
 *
 * usage: etcdbench ENDPOINTS CYCLES [KEY]
 *   each cycle: etcd_create(KEY, small value, no lease) + etcd_delete_if(KEY, rev)
 *   KEY defaults to /bench/etcdbench.lock. Prints `name value` lines:
 *   cycles, cycles_per_s, p50_us, p99_us, max_us (one cycle's time). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "etcd.h"

static double now_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

/* One create + delete of key: 0, or a negative errno. */
static int cycle(struct etcd *e, const char *key) {
        static const char value[] = "{\"pid\":1,\"bench\":\"etcd\"}";
        int64_t rev = 0;
        int r = etcd_create(e, key, value, sizeof(value) - 1, 0, &rev, NULL);
        if (r < 0)
                return r;
        return etcd_delete_if(e, key, rev);
}

int main(int argc, char **argv) {
        if (argc < 3 || atol(argv[2]) <= 0) {
                fprintf(stderr, "usage: %s ENDPOINTS CYCLES [KEY]\n", argv[0]);
                return 64;
        }
        long n = atol(argv[2]);
        const char *key = argc > 3 ? argv[3] : "/bench/etcdbench.lock";
        struct etcd *e;
        int r = etcd_new(argv[1], &e);
        if (r < 0) {
                fprintf(stderr, "etcdbench: %s: %s\n", argv[1], strerror(-r));
                return 1;
        }
        double *v = malloc((size_t)n * sizeof(*v));
        if (!v) {
                etcd_free(e);
                return 1;
        }
        /* one warm-up cycle opens the connection that the others keep */
        r = cycle(e, key);
        double start = now_s();
        for (long i = 0; r == 0 && i < n; i++) {
                double t0 = now_s();
                r = cycle(e, key);
                v[i] = now_s() - t0;
        }
        double elapsed = now_s() - start;
        etcd_free(e);
        if (r < 0) {
                fprintf(stderr, "etcdbench: cycle failed: %s\n", strerror(-r));
                free(v);
                return 1;
        }
        qsort(v, (size_t)n, sizeof(*v), cmp_double);
        printf("cycles %ld\ncycles_per_s %.1f\np50_us %.1f\np99_us %.1f\nmax_us %.1f\n", n,
               (double)n / elapsed, v[n / 2] * 1e6, v[(n * 99) / 100] * 1e6, v[n - 1] * 1e6);
        free(v);
        return 0;
}
