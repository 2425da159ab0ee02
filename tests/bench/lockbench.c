/* SPDX-License-Identifier: MIT */
/* Small lockfs benchmark: uncontended take/release cycles on a directory,
 * and release visibility after SIGKILL of the holder (lockfs only).
 *
 * usage: lockbench cycle DIR [SECONDS]     cycles/s of create(O_EXCL)+close+unlink
 *        lockbench killed DIR [TRIALS]     holder SIGKILL -> next create succeeds:
 *                                          p50/p99/max in microseconds */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static double now_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int bench_cycle(const char *dir, double seconds) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/bench-cycle.lock", dir);
        long n = 0;
        double start = now_s(), end = start + seconds;
        while (now_s() < end) {
                for (int i = 0; i < 100; i++, n++) {
                        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
                        if (fd < 0 || close(fd) < 0 || unlink(path) < 0) {
                                perror(path);
                                return 1;
                        }
                }
        }
        printf("cycle %s: %.0f cycles/s\n", dir, (double)n / (now_s() - start));
        return 0;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

/* One trial: a child takes the lock and reports; we kill it and time how
 * long until our own exclusive create succeeds. Returns seconds or -1. */
static double killed_trial(const char *path) {
        int p[2];
        if (pipe(p) < 0)
                return -1;
        pid_t pid = fork();
        if (pid == 0) {
                close(p[0]);
                int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
                char ok = fd >= 0 ? 'y' : 'n';
                if (write(p[1], &ok, 1) != 1)
                        _exit(1);
                pause();
                _exit(0);
        }
        close(p[1]);
        char ok = 'n';
        if (read(p[0], &ok, 1) != 1 || ok != 'y') {
                close(p[0]);
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
                return -1;
        }
        close(p[0]);
        double t0 = now_s();
        kill(pid, SIGKILL);
        int fd;
        while ((fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644)) < 0 && errno == EEXIST)
                ;
        double dt = now_s() - t0;
        waitpid(pid, NULL, 0);
        if (fd < 0)
                return -1;
        close(fd);
        unlink(path);
        return dt;
}

static int bench_killed(const char *dir, int trials) {
        char path[4096];
        snprintf(path, sizeof(path), "%s/bench-killed.lock", dir);
        double *v = calloc((size_t)trials, sizeof(*v));
        if (!v)
                return 1;
        for (int i = 0; i < trials; i++) {
                v[i] = killed_trial(path);
                if (v[i] < 0) {
                        fprintf(stderr, "trial %d failed: %s\n", i, strerror(errno));
                        free(v);
                        return 1;
                }
        }
        qsort(v, (size_t)trials, sizeof(*v), cmp_double);
        printf("killed %s: %d trials, p50 %.0f us, p99 %.0f us, max %.0f us\n", dir, trials,
               v[trials / 2] * 1e6, v[(trials * 99) / 100] * 1e6, v[trials - 1] * 1e6);
        free(v);
        return 0;
}

int main(int argc, char **argv) {
        if (argc >= 3 && strcmp(argv[1], "cycle") == 0)
                return bench_cycle(argv[2], argc > 3 ? atof(argv[3]) : 3.0);
        if (argc >= 3 && strcmp(argv[1], "killed") == 0)
                return bench_killed(argv[2], argc > 3 ? atoi(argv[3]) : 1000);
        fprintf(stderr, "usage: %s cycle DIR [SECONDS] | killed DIR [TRIALS]\n", argv[0]);
        return 64;
}
