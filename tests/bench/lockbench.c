/* SPDX-License-Identifier: MIT */
/* lockbench: the measuring client of the lockfs benchmarks (tests/bench/run.sh
 * runs every mode side by side and prints the table). Each mode prints
 * `name value` lines on stdout (values are plain numbers, or n/a), progress
 * and errors on stderr.
 *
 * usage: lockbench MODE ARGS... [--req=FILE] [--daemon=PID] [--metrics=FILE]
 *                               [--json=FILE] [--procs=P] [--threads=T]
 *                               [--samples=K] [--gap-ms=MS] [--ttl=S]
 *   cycle DIR SECONDS          create(O_EXCL)+close+unlink of one name: cycles_per_s,
 *                              p50_us/p99_us; with --req=FILE the FUSE requests per
 *                              cycle from the `*fuse_requests_total{op="X"} N` lines
 *                              of FILE (lockfs .lockfs/metrics, nullfs .requests),
 *                              diffed around the run: req_per_cycle and req_X
 *   flock FILE SECONDS         flock(LOCK_EX)+flock(LOCK_UN) on one open file
 *   status DIR SECONDS         open+read to EOF+close of a lock this process holds
 *                              (reads_per_s, p50_us/p99_us, bytes; --req as above)
 *   contend DIR PROCS SECONDS excl|flock
 *                              PROCS processes on one name. excl: create(O_EXCL) or
 *                              EEXIST, a winner closes and unlinks at once. flock:
 *                              open(O_CREAT), flock(LOCK_EX) (waits), LOCK_UN, close.
 *                              acq_per_s, eexist_per_s, eexist_rate, errors, and with
 *                              --daemon=PID daemon_cpu (CPUs busy, from /proc/PID/stat)
 *   killed DIR TRIALS          a child holds a lock, SIGKILL, time until our
 *                              create(O_EXCL) succeeds: p50_us, p99_us, max_us
 *   ttl DIR TRIALS             locks written {"ttl_s":S} (--ttl=S, default 1), one
 *                              every --gap-ms (default 2); an inotify IN_DELETE_SELF
 *                              watch on each: vanish minus deadline (the daemon's
 *                              expires_at when the status has it, counted in
 *                              daemon_deadlines), p50_ms, p99_ms, min_ms, max_ms, missing
 *   scale DIR N                N locks held in directory DIR (made if missing) by
 *                              --procs=P processes (default 1; with 1, created by
 *                              --threads=T threads, default 4), then: daemon RSS per
 *                              lock (--daemon=PID), acquire and release p50/p99 of
 *                              fresh names there (--samples=K, default 2000), the
 *                              readdir count and its time, the time to read --json=FILE
 *                              (.lockfs/locks.json), and, after SIGKILL of every
 *                              holder, the time until lockfs_locks_held in
 *                              --metrics=FILE is back at its value before */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- options and output ------------------------------------------------- */

static struct {
        const char *req;        /* FUSE request counts file */
        const char *metrics;    /* lockfs .lockfs/metrics */
        const char *json;       /* lockfs .lockfs/locks.json */
        pid_t daemon;
        long procs, threads, samples, ttl_s;
        double gap_ms;
} opt = { .procs = 1, .threads = 4, .samples = 2000, .ttl_s = 1, .gap_ms = 2 };

static void out(const char *name, double v) {
        printf("%s %.9g\n", name, v);
}

static void out_na(const char *name) {
        printf("%s n/a\n", name);
}

static double now_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void path_join(char *buf, size_t size, const char *dir, const char *name) {
        snprintf(buf, size, "%s/%s", dir, name);
}

/* ---- samples ------------------------------------------------------------ */

struct samples {
        double *v;
        size_t n, cap;
};

static int samples_add(struct samples *s, double x) {
        if (s->n == s->cap) {
                size_t cap = s->cap ? s->cap * 2 : 4096;
                double *v = realloc(s->v, cap * sizeof(*v));
                if (!v)
                        return -1;
                s->v = v;
                s->cap = cap;
        }
        s->v[s->n++] = x;
        return 0;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *)a, y = *(const double *)b;
        return x < y ? -1 : x > y;
}

/* Nearest-rank percentile p (0-100) of the sorted samples. */
static double pct(const struct samples *s, double p) {
        if (s->n == 0)
                return NAN;
        size_t rank = (size_t)ceil(p / 100.0 * (double)s->n);
        return s->v[rank > 0 ? rank - 1 : 0];
}

/* Sort s and print NAME_p50_UNIT and NAME_p99_UNIT scaled by scale. */
static void out_pcts(struct samples *s, const char *prefix, const char *unit, double scale) {
        char name[128];
        qsort(s->v, s->n, sizeof(*s->v), cmp_double);
        snprintf(name, sizeof(name), "%sp50_%s", prefix, unit);
        out(name, pct(s, 50) * scale);
        snprintf(name, sizeof(name), "%sp99_%s", prefix, unit);
        out(name, pct(s, 99) * scale);
}

/* ---- files the daemon renders ------------------------------------------- */

/* open + read to EOF + close; the bytes read, or -1. Keeps the text in
 * *ret (malloc'd, NUL-terminated) when ret is non-NULL. */
static ssize_t read_all(const char *path, char **ret) {
        int fd = open(path, O_RDONLY);
        if (fd < 0)
                return -1;
        size_t len = 0, cap = 65536;
        char *buf = malloc(cap + 1);
        ssize_t n = buf ? 1 : -1;
        while (n > 0) {
                if (len == cap) {
                        char *nb = realloc(buf, cap * 2 + 1);
                        if (!nb) {
                                n = -1;
                                break;
                        }
                        buf = nb;
                        cap *= 2;
                }
                n = read(fd, buf + len, cap - len);
                if (n > 0)
                        len += (size_t)n;
        }
        close(fd);
        if (n < 0) {
                free(buf);
                return -1;
        }
        buf[len] = '\0';
        if (ret)
                *ret = buf;
        else
                free(buf);
        return (ssize_t)len;
}

#define MAX_OPS 64

struct req_counts {
        int n;
        char op[MAX_OPS][24];
        double count[MAX_OPS];
};

/* Parse every `...fuse_requests_total{op="X"} N` line of path; 0 when some
 * were found, -1 when the file has none (or cannot be read). */
static int req_read(const char *path, struct req_counts *rc) {
        char *text;
        rc->n = 0;
        if (!path || read_all(path, &text) < 0)
                return -1;
        static const char tag[] = "fuse_requests_total{op=\"";
        for (char *line = strtok(text, "\n"); line && rc->n < MAX_OPS; line = strtok(NULL, "\n")) {
                char *p = strstr(line, tag);
                if (line[0] == '#' || !p)
                        continue;
                p += sizeof(tag) - 1;
                char *q = strstr(p, "\"}");
                if (!q || (size_t)(q - p) >= sizeof(rc->op[0]))
                        continue;
                snprintf(rc->op[rc->n], sizeof(rc->op[0]), "%.*s", (int)(q - p), p);
                rc->count[rc->n++] = strtod(q + 2, NULL);
        }
        free(text);
        return rc->n > 0 ? 0 : -1;
}

/* Print req_per_UNIT and req_OP for each opcode that moved, per cycle. */
static void out_req_diff(const struct req_counts *a, const struct req_counts *b, int ok,
                         long cycles, const char *unit) {
        char name[64];
        snprintf(name, sizeof(name), "req_per_%s", unit);
        if (!ok || cycles <= 0) {
                out_na(name);
                return;
        }
        double total = 0;
        for (int i = 0; i < b->n; i++) {
                double before = 0;
                for (int j = 0; j < a->n; j++)
                        if (strcmp(a->op[j], b->op[i]) == 0)
                                before = a->count[j];
                double d = (b->count[i] - before) / (double)cycles;
                total += d;
                if (d >= 0.005) {
                        snprintf(name, sizeof(name), "req_%s", b->op[i]);
                        out(name, d);
                }
        }
        snprintf(name, sizeof(name), "req_per_%s", unit);
        out(name, total);
}

/* One unlabelled value (`NAME V`) from a Prometheus text file, or NAN. */
static double metric_value(const char *path, const char *metric) {
        char *text;
        if (!path || read_all(path, &text) < 0)
                return NAN;
        double v = NAN;
        size_t len = strlen(metric);
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n"))
                if (strncmp(line, metric, len) == 0 && line[len] == ' ')
                        v = strtod(line + len + 1, NULL);
        free(text);
        return v;
}

/* ---- /proc of the daemon ------------------------------------------------ */

/* utime + stime of pid in seconds, or NAN. */
static double proc_cpu_s(pid_t pid) {
        char path[64], buf[2048];
        snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
        FILE *f = fopen(path, "r");
        if (!f)
                return NAN;
        size_t n = fread(buf, 1, sizeof(buf) - 1, f);
        fclose(f);
        buf[n] = '\0';
        char *p = strrchr(buf, ')'); /* comm may hold spaces */
        unsigned long ut, st;
        if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
                return NAN;
        return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* VmRSS of pid in kB, or NAN. */
static double proc_rss_kb(pid_t pid) {
        char path[64], line[256];
        snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
        FILE *f = fopen(path, "r");
        if (!f)
                return NAN;
        double v = NAN;
        while (fgets(line, sizeof(line), f))
                if (strncmp(line, "VmRSS:", 6) == 0)
                        v = strtod(line + 6, NULL);
        fclose(f);
        return v;
}

/* ---- cycle, flock, status ----------------------------------------------- */

static int bench_cycle(const char *dir, double seconds) {
        char path[4096];
        path_join(path, sizeof(path), dir, "bench-cycle.lock");
        struct samples s = {0};
        struct req_counts a, b;
        int ok = req_read(opt.req, &a) == 0;
        double start = now_s(), end = start + seconds, t = start;
        while (t < end) {
                double t0 = t;
                int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
                if (fd < 0 || close(fd) < 0 || unlink(path) < 0) {
                        perror(path);
                        return 1;
                }
                t = now_s();
                if (samples_add(&s, t - t0) < 0)
                        return 1;
        }
        double elapsed = now_s() - start;
        ok = ok && req_read(opt.req, &b) == 0;
        out("cycles", (double)s.n);
        out("cycles_per_s", (double)s.n / elapsed);
        out_pcts(&s, "", "us", 1e6);
        out_req_diff(&a, &b, ok, (long)s.n, "cycle");
        free(s.v);
        return 0;
}

static int bench_flock(const char *file, double seconds) {
        int fd = open(file, O_RDWR | O_CREAT, 0644);
        if (fd < 0) {
                perror(file);
                return 1;
        }
        long n = 0;
        double start = now_s(), end = start + seconds;
        while (now_s() < end) {
                for (int i = 0; i < 100; i++, n++) {
                        if (flock(fd, LOCK_EX) < 0 || flock(fd, LOCK_UN) < 0) {
                                perror("flock");
                                close(fd);
                                return 1;
                        }
                }
        }
        out("cycles_per_s", (double)n / (now_s() - start));
        close(fd);
        return 0;
}

static int bench_status(const char *dir, double seconds) {
        char path[4096];
        static const char content[] = "{\"operation\":\"bench\",\"version\":\"1.2.3\"}";
        path_join(path, sizeof(path), dir, "bench-status.lock");
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd < 0 || write(fd, content, sizeof(content) - 1) < 0 || close(fd) < 0) {
                perror(path);
                return 1;
        }
        struct samples s = {0};
        struct req_counts a, b;
        int ok = req_read(opt.req, &a) == 0;
        ssize_t bytes = 0;
        double start = now_s(), end = start + seconds, t = start;
        while (t < end) {
                double t0 = t;
                if ((bytes = read_all(path, NULL)) < 0) {
                        perror(path);
                        unlink(path);
                        return 1;
                }
                t = now_s();
                samples_add(&s, t - t0);
        }
        double elapsed = now_s() - start;
        ok = ok && req_read(opt.req, &b) == 0;
        unlink(path);
        out("reads_per_s", (double)s.n / elapsed);
        out_pcts(&s, "", "us", 1e6);
        out("bytes", (double)bytes);
        out_req_diff(&a, &b, ok, (long)s.n, "read");
        free(s.v);
        return 0;
}

/* ---- contention ---------------------------------------------------------- */

struct contender {
        atomic_long acq, eexist, errors;
        char pad[64];
};

struct arena {
        atomic_int stop;
        struct contender c[];
};

/* One round of the excl loop: create or EEXIST; a winner releases at once. */
static void contend_excl(const char *path, struct contender *me) {
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd >= 0) {
                atomic_fetch_add(&me->acq, 1);
                close(fd);
                if (unlink(path) < 0)
                        atomic_fetch_add(&me->errors, 1);
        } else {
                atomic_fetch_add(errno == EEXIST ? &me->eexist : &me->errors, 1);
        }
}

/* One round of the flock loop: open (creating when free), wait, release. */
static void contend_flock(const char *path, struct contender *me) {
        int fd = open(path, O_WRONLY | O_CREAT, 0644);
        if (fd < 0) {
                atomic_fetch_add(errno == EEXIST ? &me->eexist : &me->errors, 1);
                return;
        }
        if (flock(fd, LOCK_EX) == 0) {
                atomic_fetch_add(&me->acq, 1);
                flock(fd, LOCK_UN);
        } else {
                atomic_fetch_add(&me->errors, 1);
        }
        close(fd);
}

static void contender_main(const char *path, bool excl, struct arena *a, int i, int go) {
        char c;
        if (read(go, &c, 1) < 0) /* returns 0 when the parent closes it: go */
                _exit(1);
        while (!atomic_load(&a->stop)) {
                if (excl)
                        contend_excl(path, &a->c[i]);
                else
                        contend_flock(path, &a->c[i]);
        }
        _exit(0);
}

/* Sum the counters of n contenders. */
static void contend_sum(struct arena *a, int n, long *acq, long *eexist, long *errors) {
        *acq = *eexist = *errors = 0;
        for (int i = 0; i < n; i++) {
                *acq += atomic_load(&a->c[i].acq);
                *eexist += atomic_load(&a->c[i].eexist);
                *errors += atomic_load(&a->c[i].errors);
        }
}

/* Wait for the contenders; kill those still running after a few seconds
 * (a flock waiter whose last peer died with the lock, for instance). */
static void contend_reap(pid_t *pids, int n) {
        double deadline = now_s() + 5;
        int left = n;
        while (left > 0 && now_s() < deadline) {
                pid_t p = waitpid(-1, NULL, WNOHANG);
                if (p > 0)
                        left--;
                else
                        usleep(1000);
        }
        for (int i = 0; left > 0 && i < n; i++)
                kill(pids[i], SIGKILL);
        while (left > 0 && waitpid(-1, NULL, 0) > 0)
                left--;
}

static int bench_contend(const char *dir, int procs, double seconds, const char *mode) {
        bool excl = strcmp(mode, "excl") == 0;
        if (!excl && strcmp(mode, "flock") != 0)
                return 64;
        char path[4096];
        path_join(path, sizeof(path), dir, "bench-contend.lock");
        size_t size = sizeof(struct arena) + (size_t)procs * sizeof(struct contender);
        struct arena *a = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        pid_t *pids = calloc((size_t)procs, sizeof(*pids));
        int go[2];
        if (a == MAP_FAILED || !pids || pipe(go) < 0)
                return 1;
        for (int i = 0; i < procs; i++) {
                pids[i] = fork();
                if (pids[i] == 0) {
                        prctl(PR_SET_PDEATHSIG, SIGKILL);
                        close(go[1]);
                        contender_main(path, excl, a, i, go[0]);
                }
        }
        close(go[0]);
        usleep(100000); /* let every child reach its read */
        double cpu0 = opt.daemon ? proc_cpu_s(opt.daemon) : NAN, t0 = now_s();
        close(go[1]);
        usleep((useconds_t)(seconds * 1e6));
        long acq, eexist, errors;
        contend_sum(a, procs, &acq, &eexist, &errors);
        double elapsed = now_s() - t0, cpu1 = opt.daemon ? proc_cpu_s(opt.daemon) : NAN;
        atomic_store(&a->stop, 1);
        contend_reap(pids, procs);
        unlink(path);
        out("acq_per_s", (double)acq / elapsed);
        out("eexist_per_s", (double)eexist / elapsed);
        out("eexist_rate", acq + eexist ? (double)eexist / (double)(acq + eexist) : 0);
        out("errors", (double)errors);
        if (opt.daemon)
                out("daemon_cpu", (cpu1 - cpu0) / elapsed);
        else
                out_na("daemon_cpu");
        munmap(a, size);
        free(pids);
        return 0;
}

/* ---- release visibility after SIGKILL ----------------------------------- */

/* One trial: a child takes the lock and reports; we kill it and time how
 * long until our own exclusive create succeeds. Returns seconds or -1. */
static double killed_trial(const char *path) {
        int p[2];
        if (pipe(p) < 0)
                return -1;
        pid_t pid = fork();
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGKILL);
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
        path_join(path, sizeof(path), dir, "bench-killed.lock");
        struct samples s = {0};
        for (int i = 0; i < trials; i++) {
                double dt = killed_trial(path);
                if (dt < 0) {
                        fprintf(stderr, "trial %d failed: %s\n", i, strerror(errno));
                        free(s.v);
                        return 1;
                }
                samples_add(&s, dt);
        }
        out("trials", (double)trials);
        out_pcts(&s, "", "us", 1e6);
        out("max_us", s.v[s.n - 1] * 1e6);
        free(s.v);
        return 0;
}

/* ---- TTL expiry accuracy ------------------------------------------------ */

/* The deadline of a trial is the daemon's own, `expires_at` of the lock's
 * status (wall clock, ms), read right after the write that set the TTL;
 * failing that, the midpoint of that write plus the TTL (monotonic clock). */
struct ttl_trial {
        int wd;
        bool wall;                      /* deadline from the daemon's expires_at */
        double deadline;                /* seconds, wall or monotonic */
        double vanished, vanished_wall; /* 0 = not yet */
};

struct ttl_watch {
        int fd, n;
        struct ttl_trial *t;
        atomic_int added, seen, stop;
};

static double wall_s(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void ttl_mark(struct ttl_watch *w, int wd, double when, double when_wall) {
        int added = atomic_load(&w->added);
        for (int i = added - 1; i >= 0; i--)
                if (w->t[i].wd == wd && w->t[i].vanished == 0) {
                        w->t[i].vanished_wall = when_wall;
                        w->t[i].vanished = when;
                        atomic_fetch_add(&w->seen, 1);
                        return;
                }
}

/* The watcher thread: timestamps each IN_DELETE_SELF as it arrives. */
static void *ttl_watcher(void *arg) {
        struct ttl_watch *w = arg;
        char buf[64 * 1024] __attribute__((aligned(__alignof__(struct inotify_event))));
        while (!atomic_load(&w->stop)) {
                struct pollfd p = { .fd = w->fd, .events = POLLIN };
                if (poll(&p, 1, 50) <= 0)
                        continue;
                ssize_t n = read(w->fd, buf, sizeof(buf));
                double when = now_s(), when_wall = wall_s();
                for (ssize_t off = 0; n > 0 && off < n;) {
                        const struct inotify_event *ev = (const void *)(buf + off);
                        if (ev->mask & IN_DELETE_SELF)
                                ttl_mark(w, ev->wd, when, when_wall);
                        off += (ssize_t)sizeof(*ev) + ev->len;
                }
        }
        return NULL;
}

/* `"expires_at": "YYYY-MM-DDTHH:MM:SS.mmmZ"` from the status at path, as
 * wall-clock seconds; 0 when absent. */
static double status_expires_at(const char *path) {
        char *text;
        if (read_all(path, &text) < 0)
                return 0;
        static const char key[] = "\"expires_at\"";
        const char *p = strstr(text, key);
        struct tm tm = {0};
        int ms = 0;
        double v = 0;
        if (p)
                p += sizeof(key) - 1 + strspn(p + sizeof(key) - 1, ": \t\"");
        if (p && sscanf(p, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon,
                        &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) == 7) {
                tm.tm_year -= 1900;
                tm.tm_mon -= 1;
                v = (double)timegm(&tm) + ms / 1000.0;
        }
        free(text);
        return v;
}

/* Take lock i with a TTL and watch it. */
static int ttl_take(struct ttl_watch *w, const char *dir, int i) {
        char path[4096], name[64], content[64];
        snprintf(name, sizeof(name), "bench-ttl-%d.lock", i);
        path_join(path, sizeof(path), dir, name);
        int len = snprintf(content, sizeof(content), "{\"ttl_s\":%ld}", opt.ttl_s);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
        if (fd < 0)
                return -1;
        struct ttl_trial *t = &w->t[i];
        t->wd = inotify_add_watch(w->fd, path, IN_DELETE_SELF);
        atomic_store(&w->added, i + 1);
        double t0 = now_s();
        ssize_t n = write(fd, content, (size_t)len);
        double t1 = now_s();
        close(fd);
        t->deadline = (t0 + t1) / 2 + (double)opt.ttl_s;
        double expires = status_expires_at(path);
        if (expires > 0) {
                t->deadline = expires;
                t->wall = true;
        }
        return t->wd < 0 || n != len ? -1 : 0;
}

static int bench_ttl(const char *dir, int trials) {
        struct ttl_watch w = { .fd = inotify_init1(IN_CLOEXEC), .n = trials };
        w.t = calloc((size_t)trials, sizeof(*w.t));
        pthread_t th;
        if (w.fd < 0 || !w.t || pthread_create(&th, NULL, ttl_watcher, &w) != 0)
                return 1;
        double next = now_s();
        int r = 0;
        for (int i = 0; i < trials && r == 0; i++) {
                while (now_s() < next)
                        usleep(200);
                next += opt.gap_ms / 1000.0;
                if ((r = ttl_take(&w, dir, i)) < 0)
                        fprintf(stderr, "ttl trial %d: %s\n", i, strerror(errno));
        }
        double give_up = now_s() + (double)opt.ttl_s + 5;
        while (atomic_load(&w.seen) < atomic_load(&w.added) && now_s() < give_up)
                usleep(10000);
        atomic_store(&w.stop, 1);
        pthread_join(th, NULL);
        struct samples s = {0};
        int wall = 0;
        for (int i = 0; i < atomic_load(&w.added); i++) {
                const struct ttl_trial *t = &w.t[i];
                wall += t->wall;
                if (t->vanished > 0)
                        samples_add(&s, (t->wall ? t->vanished_wall : t->vanished) - t->deadline);
        }
        out("daemon_deadlines", wall);
        out("trials", (double)atomic_load(&w.added));
        out("missing", (double)(atomic_load(&w.added) - (int)s.n));
        out_pcts(&s, "", "ms", 1e3);
        out("min_ms", s.n ? s.v[0] * 1e3 : NAN);
        out("max_ms", s.n ? s.v[s.n - 1] * 1e3 : NAN);
        close(w.fd);
        free(w.t);
        free(s.v);
        return r < 0 ? 1 : 0;
}

/* ---- scale -------------------------------------------------------------- */

struct scale_shared {
        atomic_long created, failed;
        atomic_int ready, first_errno;
};

struct creator {
        const char *dir;
        long from, to;
        struct scale_shared *sh;
};

/* Create locks [from, to) in dir, each named l<i>; the caller stays their holder. */
static void *create_range(void *arg) {
        const struct creator *c = arg;
        char path[4096];
        for (long i = c->from; i < c->to; i++) {
                snprintf(path, sizeof(path), "%s/l%ld", c->dir, i);
                int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
                if (fd < 0) {
                        int zero = 0;
                        atomic_compare_exchange_strong(&c->sh->first_errno, &zero, errno);
                        atomic_fetch_add(&c->sh->failed, 1);
                        continue;
                }
                close(fd);
                atomic_fetch_add(&c->sh->created, 1);
        }
        return NULL;
}

/* A holder process: create [from, to) with threads, report, wait for SIGKILL. */
static void holder_main(const char *dir, long from, long to, int threads, struct scale_shared *sh) {
        pthread_t th[64];
        struct creator c[64];
        long span = to - from;
        if (threads > 64)
                threads = 64;
        if (threads > span)
                threads = span > 0 ? (int)span : 1;
        for (int i = 0; i < threads; i++) {
                c[i] = (struct creator){ dir, from + span * i / threads, from + span * (i + 1) / threads, sh };
                if (i > 0 && pthread_create(&th[i], NULL, create_range, &c[i]) != 0)
                        create_range(&c[i]);
        }
        create_range(&c[0]);
        for (int i = 1; i < threads; i++)
                pthread_join(th[i], NULL);
        atomic_fetch_add(&sh->ready, 1);
        for (;;)
                pause();
}

/* Fork procs holders of n locks in one new process group (its id in
 * *pgid, 0 if none was forked); 0 once all of them hold their share, -1
 * when a fork failed or a holder died before. */
static int holders_start(const char *dir, long n, long procs, struct scale_shared *sh, pid_t *pgid) {
        double last = now_s();
        *pgid = 0;
        for (long i = 0; i < procs; i++) {
                pid_t pid = fork();
                if (pid == 0) {
                        prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive lockbench */
                        setpgid(0, *pgid);
                        holder_main(dir, n * i / procs, n * (i + 1) / procs,
                                    procs == 1 ? (int)opt.threads : 1, sh);
                }
                if (pid < 0) {
                        perror("fork");
                        return -1;
                }
                setpgid(pid, *pgid ? *pgid : pid);
                if (!*pgid)
                        *pgid = pid;
        }
        while (atomic_load(&sh->ready) < procs) {
                if (waitpid(-*pgid, NULL, WNOHANG) > 0) {
                        fprintf(stderr, "scale: a holder died while creating\n");
                        return -1;
                }
                if (now_s() - last >= 10) {
                        last = now_s();
                        fprintf(stderr, "scale: %ld of %ld locks taken\n", atomic_load(&sh->created), n);
                }
                usleep(5000);
        }
        return 0;
}

/* Kill the group and collect every holder. */
static void holders_kill(pid_t pgid) {
        if (pgid <= 0)
                return;
        kill(-pgid, SIGKILL);
        while (waitpid(-pgid, NULL, 0) > 0 || errno == EINTR)
                ;
}

/* Acquire (create+close) and release (unlink) latency of fresh names in dir. */
static void scale_latency(const char *dir) {
        struct samples acq = {0}, rel = {0};
        char path[4096];
        for (long i = 0; i < opt.samples; i++) {
                snprintf(path, sizeof(path), "%s/probe-%ld", dir, i);
                double t0 = now_s();
                int fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0644);
                if (fd < 0) {
                        perror(path);
                        break;
                }
                close(fd);
                double t1 = now_s();
                if (unlink(path) < 0)
                        perror(path);
                samples_add(&acq, t1 - t0);
                samples_add(&rel, now_s() - t1);
        }
        out_pcts(&acq, "acquire_", "us", 1e6);
        out_pcts(&rel, "release_", "us", 1e6);
        free(acq.v);
        free(rel.v);
}

/* readdir of dir, like `ls | wc -l`: the entries (without . and ..) and the time. */
static void scale_readdir(const char *dir) {
        double t0 = now_s();
        DIR *d = opendir(dir);
        long n = 0;
        struct dirent *e;
        while (d && (e = readdir(d)))
                if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
                        n++;
        if (d)
                closedir(d);
        out("readdir_s", now_s() - t0);
        out("readdir_count", (double)n);
}

static void scale_json(void) {
        if (!opt.json) {
                out_na("locksjson_s");
                return;
        }
        double t0 = now_s();
        ssize_t n = read_all(opt.json, NULL);
        out("locksjson_s", n < 0 ? NAN : now_s() - t0);
        out("locksjson_bytes", (double)n);
}

/* SIGKILL every holder; the time until the daemon counts held locks back at base. */
static void scale_mass_death(pid_t pgid, double base) {
        double t0 = now_s(), held = NAN;
        kill(-pgid, SIGKILL);
        while (!isnan(base) && now_s() - t0 < 120) {
                held = metric_value(opt.metrics, "lockfs_locks_held");
                if (isnan(held) || held <= base)
                        break;
        }
        double dt = now_s() - t0;
        holders_kill(pgid);
        if (isnan(base) || isnan(held) || held > base)
                out_na("massdeath_s");
        else
                out("massdeath_s", dt);
}

static int bench_scale(const char *dir, long n) {
        if (mkdir(dir, 0755) < 0 && errno != EEXIST) {
                perror(dir);
                return 1;
        }
        struct scale_shared *sh = mmap(NULL, sizeof(*sh), PROT_READ | PROT_WRITE,
                                       MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (sh == MAP_FAILED)
                return 1;
        double base = metric_value(opt.metrics, "lockfs_locks_held");
        double rss0 = opt.daemon ? proc_rss_kb(opt.daemon) : NAN, t0 = now_s();
        pid_t pgid;
        int r = holders_start(dir, n, opt.procs, sh, &pgid);
        double created_s = now_s() - t0;
        if (r < 0) {
                holders_kill(pgid);
                return 1;
        }
        usleep(200000); /* let the daemon settle (release of the creates' files) */
        double rss1 = opt.daemon ? proc_rss_kb(opt.daemon) : NAN;
        out("locks", (double)atomic_load(&sh->created));
        out("failed", (double)atomic_load(&sh->failed));
        if (atomic_load(&sh->failed))
                fprintf(stderr, "scale: %ld creates failed, first: %s\n", atomic_load(&sh->failed),
                        strerror(atomic_load(&sh->first_errno)));
        out("create_s", created_s);
        out("creates_per_s", (double)n / created_s);
        out("rss_before_kb", rss0);
        out("rss_after_kb", rss1);
        out("bytes_per_lock", (rss1 - rss0) * 1024 / (double)n);
        scale_latency(dir);
        scale_readdir(dir);
        scale_json();
        scale_mass_death(pgid, base);
        munmap(sh, sizeof(*sh));
        return 0;
}

/* ---- main ---------------------------------------------------------------- */

static int usage(void) {
        fprintf(stderr, "usage: lockbench cycle DIR SECONDS | flock FILE SECONDS | status DIR SECONDS\n"
                        "       | contend DIR PROCS SECONDS excl|flock | killed DIR TRIALS\n"
                        "       | ttl DIR TRIALS | scale DIR N   [--req=FILE] [--daemon=PID]\n"
                        "       [--metrics=FILE] [--json=FILE] [--procs=P] [--threads=T]\n"
                        "       [--samples=K] [--gap-ms=MS] [--ttl=S]\n");
        return 64;
}

/* Take --name=value options out of argv; returns the count left. */
static int parse_opts(int argc, char **argv) {
        int n = 0;
        for (int i = 0; i < argc; i++) {
                const char *a = argv[i], *v = strchr(a, '=');
                if (strncmp(a, "--", 2) != 0 || !v) {
                        argv[n++] = argv[i];
                        continue;
                }
                v++;
                if (strncmp(a, "--req=", 6) == 0)
                        opt.req = v;
                else if (strncmp(a, "--metrics=", 10) == 0)
                        opt.metrics = v;
                else if (strncmp(a, "--json=", 7) == 0)
                        opt.json = v;
                else if (strncmp(a, "--daemon=", 9) == 0)
                        opt.daemon = (pid_t)atol(v);
                else if (strncmp(a, "--procs=", 8) == 0)
                        opt.procs = atol(v);
                else if (strncmp(a, "--threads=", 10) == 0)
                        opt.threads = atol(v);
                else if (strncmp(a, "--samples=", 10) == 0)
                        opt.samples = atol(v);
                else if (strncmp(a, "--gap-ms=", 9) == 0)
                        opt.gap_ms = atof(v);
                else if (strncmp(a, "--ttl=", 6) == 0)
                        opt.ttl_s = atol(v);
                else
                        return -1;
        }
        return opt.procs > 0 && opt.threads > 0 && opt.samples > 0 && opt.ttl_s > 0 ? n : -1;
}

int main(int argc, char **argv) {
        argc = parse_opts(argc, argv);
        if (argc < 4)
                return usage();
        const char *mode = argv[1], *target = argv[2];
        setvbuf(stdout, NULL, _IOLBF, 0);
        if (strcmp(mode, "cycle") == 0)
                return bench_cycle(target, atof(argv[3]));
        if (strcmp(mode, "flock") == 0)
                return bench_flock(target, atof(argv[3]));
        if (strcmp(mode, "status") == 0)
                return bench_status(target, atof(argv[3]));
        if (strcmp(mode, "contend") == 0 && argc >= 6)
                return bench_contend(target, atoi(argv[3]), atof(argv[4]), argv[5]);
        if (strcmp(mode, "killed") == 0)
                return bench_killed(target, atoi(argv[3]));
        if (strcmp(mode, "ttl") == 0)
                return bench_ttl(target, atoi(argv[3]));
        if (strcmp(mode, "scale") == 0)
                return bench_scale(target, atol(argv[3]));
        return usage();
}
