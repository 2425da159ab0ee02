// SPDX-License-Identifier: MIT
/*
 * race_client: many concurrent creators race to take one lockfs name, round
 * after round, and the outcome of every round is printed as one
 * machine-readable line for tests/integration/test_race.py (SPEC R2.3).
 *
 * Usage:
 *   race_client [-r ROUNDS] [-R exit|unlink|alt] [-m METRICS] [-t SECONDS]
 *               MODE FLAGS N PATH
 *     MODE   procs   N processes, one contender each
 *            threads one process with N contender threads
 *            hybrid  N/4 processes with 4 contender threads each
 *     FLAGS  excl (O_CREAT|O_EXCL), trunc (O_CREAT|O_TRUNC), creat (O_CREAT),
 *            mixed (contender i uses excl, trunc, creat for i % 3 = 0, 1, 2)
 *     -R     how the winner releases: by exiting (exit), by unlink(2) before
 *            exiting (unlink), or alternating per round (alt, the default)
 *     -m     path of the mount's .lockfs/metrics, to count acquisitions
 *   race_client churn [-r ITERATIONS] [-t SECONDS] FLAGS N PATH
 *            N workers loop: create PATH, write their pid, and release it
 *            again (by unlink, or, for every fourth worker, by a child that
 *            takes the name and exits); counts every outcome.
 *
 * Each contender opens PATH with O_WRONLY|O_CREAT|<flags> and writes its
 * process id ("<pid>\n"); it has taken the name when both succeed. All
 * contenders of a round are released together: processes block on one pipe
 * whose write end the parent closes, threads of a process on a
 * pthread_barrier. While every contender is still alive the parent reads the
 * lock's status to learn the holder pid and fence, then lets them all exit
 * and waits until the name is gone before the next round.
 *
 * Output, one line per round:
 *   round=K procs=P threads=T winners=W win_pid=PID ok=.. ok_excl=..
 *   excl_total=.. win_nonexcl=.. eexist_open=.. eexist_write=.. other=..
 *   other_errno=.. other_stage=.. holder=PID fence=F acq_delta=D
 *   exit_bad=.. release=exit|unlink vanish_us=US
 * then "summary rounds=R ...". Churn prints one "churn ..." line.
 * Exit status: 0 when the run completed (the test judges the lines),
 * 1 on a timeout or a system error, 2 on bad usage.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum kind { K_EXCL = 0, K_TRUNC = 1, K_CREAT = 2 };
enum stage { ST_OK = 0, ST_OPEN = 1, ST_WRITE = 2, ST_CLOSE = 3 };
enum release { REL_EXIT, REL_UNLINK, REL_ALT };

struct report {                 /* one per contender process, < PIPE_BUF */
	int32_t pid;
	int32_t ok;             /* threads whose open and write succeeded */
	int32_t ok_excl;        /* ... of them with O_EXCL */
	int32_t nonexcl;        /* threads of this process using no O_EXCL */
	int32_t eexist_open;
	int32_t eexist_write;
	int32_t other;          /* any other failure */
	int32_t other_errno;
	int32_t other_stage;
};

struct attempt {
	enum kind kind;
	enum stage stage;
	int err;
};

struct thread_arg {
	const char *path;
	pthread_barrier_t *barrier;
	struct attempt a;
};

static const char *flags_name;
static int timeout_s = 60;

static void die(const char *what)
{
	fprintf(stderr, "race_client: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void usage(void)
{
	fprintf(stderr,
		"usage: race_client [-r ROUNDS] [-R exit|unlink|alt] [-m METRICS] [-t SECONDS]\n"
		"                   procs|threads|hybrid excl|trunc|creat|mixed N PATH\n"
		"       race_client churn [-r ITERATIONS] [-t SECONDS] excl|trunc|creat|mixed N PATH\n");
	exit(2);
}

static enum kind kind_of(int index)
{
	if (strcmp(flags_name, "excl") == 0)
		return K_EXCL;
	if (strcmp(flags_name, "trunc") == 0)
		return K_TRUNC;
	if (strcmp(flags_name, "creat") == 0)
		return K_CREAT;
	return (enum kind)(index % 3);
}

static int64_t now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* Open path like a contender of the given kind and write our pid into it. */
static void attempt(const char *path, struct attempt *a)
{
	int flags = O_WRONLY | O_CREAT | O_CLOEXEC;
	char buf[32];
	int len, fd;
	ssize_t w;

	if (a->kind == K_EXCL)
		flags |= O_EXCL;
	else if (a->kind == K_TRUNC)
		flags |= O_TRUNC;
	fd = open(path, flags, 0644);
	if (fd < 0) {
		a->stage = ST_OPEN;
		a->err = errno;
		return;
	}
	len = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
	w = write(fd, buf, (size_t)len);
	if (w != len) {
		a->stage = ST_WRITE;
		a->err = w < 0 ? errno : EIO;
		close(fd);
		return;
	}
	if (close(fd) != 0) {
		a->stage = ST_CLOSE;
		a->err = errno;
		return;
	}
	a->stage = ST_OK;
	a->err = 0;
}

static void *thread_main(void *p)
{
	struct thread_arg *ta = p;

	pthread_barrier_wait(ta->barrier);
	attempt(ta->path, &ta->a);
	return NULL;
}

static void tally(struct report *r, const struct attempt *a)
{
	if (a->kind != K_EXCL)
		r->nonexcl++;
	if (a->stage == ST_OK) {
		r->ok++;
		if (a->kind == K_EXCL)
			r->ok_excl++;
	} else if (a->err == EEXIST && a->stage == ST_OPEN) {
		r->eexist_open++;
	} else if (a->err == EEXIST && a->stage == ST_WRITE) {
		r->eexist_write++;
	} else {
		if (!r->other) {
			r->other_errno = a->err;
			r->other_stage = a->stage;
		}
		r->other++;
	}
}

/* Block until the write end of fd is closed by the parent. */
static void wait_eof(int fd)
{
	char c;
	ssize_t n;

	do
		n = read(fd, &c, 1);
	while (n > 0 || (n < 0 && errno == EINTR));
}

/* Body of one contender process: run its threads, report, await release. */
static void contender(const char *path, int first_index, int nthreads, int ready_w,
		      int go_r, int res_w, int rel_r, int unlink_winner)
{
	struct report r;
	struct thread_arg *ta;
	pthread_barrier_t barrier;
	pthread_t *tids;
	int i, code = 0;

	alarm((unsigned)timeout_s);
	memset(&r, 0, sizeof(r));
	r.pid = (int32_t)getpid();
	ta = calloc((size_t)nthreads, sizeof(*ta));
	tids = calloc((size_t)nthreads, sizeof(*tids));
	if (!ta || !tids)
		_exit(4);
	if (nthreads > 1 && pthread_barrier_init(&barrier, NULL, (unsigned)nthreads + 1) != 0)
		_exit(4);
	for (i = 0; i < nthreads; i++) {
		ta[i].path = path;
		ta[i].barrier = &barrier;
		ta[i].a.kind = kind_of(first_index + i);
		if (nthreads > 1 && pthread_create(&tids[i], NULL, thread_main, &ta[i]) != 0)
			_exit(4);
	}
	if (write(ready_w, "r", 1) != 1)
		_exit(4);
	close(ready_w);
	wait_eof(go_r);
	if (nthreads > 1) {
		pthread_barrier_wait(&barrier);
		for (i = 0; i < nthreads; i++)
			pthread_join(tids[i], NULL);
	} else {
		attempt(path, &ta[0].a);
	}
	for (i = 0; i < nthreads; i++)
		tally(&r, &ta[i].a);
	if (write(res_w, &r, sizeof(r)) != (ssize_t)sizeof(r))
		_exit(4);
	close(res_w);
	wait_eof(rel_r);
	if (unlink_winner && r.ok > 0 && unlink(path) != 0)
		code = 3;
	_exit(code);
}

/* Read exactly len bytes from fd within the time limit; 0 or -1. */
static int read_full(int fd, void *buf, size_t len, int64_t deadline_us)
{
	size_t got = 0;

	while (got < len) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		int64_t left = (deadline_us - now_us()) / 1000;
		ssize_t n;

		if (left <= 0)
			return -1;
		if (poll(&pfd, 1, (int)left) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		if (!pfd.revents)
			continue;
		n = read(fd, (char *)buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

/* Whole content of a (small) file, NUL-terminated; NULL on error. */
static char *slurp(const char *path)
{
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (!buf || fd < 0) {
		free(buf);
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	for (;;) {
		if (len + 1 >= cap) {
			char *nb = realloc(buf, cap * 2);

			if (!nb)
				break;
			buf = nb;
			cap *= 2;
		}
		n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	close(fd);
	buf[len] = '\0';
	return buf;
}

/* Number after "key": in the "lockfs" object of a status JSON; -1 if absent or null. */
static long long status_field(const char *json, const char *key)
{
	char pat[64];
	const char *p = json ? strstr(json, "\"lockfs\"") : NULL;

	if (!p)
		return -1;
	snprintf(pat, sizeof(pat), "\"%s\"", key);
	p = strstr(p, pat);
	if (!p)
		return -1;
	p += strlen(pat);
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ':')
		p++;
	if (*p < '0' || *p > '9')
		return -1;
	return strtoll(p, NULL, 10);
}

/* lockfs_acquired_total from the metrics file, -1 if unknown. */
static long long acquired_total(const char *metrics)
{
	char *text, *line;
	long long v = -1;

	if (!metrics)
		return -1;
	text = slurp(metrics);
	if (!text)
		return -1;
	for (line = text; line && *line; line = strchr(line, '\n'), line = line ? line + 1 : NULL) {
		if (strncmp(line, "lockfs_acquired_total", 21) == 0 &&
		    (line[21] == ' ' || line[21] == '{')) {
			char *sp = strchr(line, ' ');

			if (sp)
				v = (long long)strtod(sp + 1, NULL);
			break;
		}
	}
	free(text);
	return v;
}

static void kill_all(pid_t *pids, int n)
{
	for (int i = 0; i < n; i++)
		if (pids[i] > 0)
			kill(pids[i], SIGKILL);
	for (int i = 0; i < n; i++)
		if (pids[i] > 0)
			waitpid(pids[i], NULL, 0);
}

static int run_rounds(const char *mode, int n, const char *path, int rounds,
		      enum release rel_mode, const char *metrics)
{
	int nprocs, nthreads, excl_total = 0, bad_rounds = 0;
	long long last_fence = -1;
	struct report *reps;
	pid_t *pids;

	if (strcmp(mode, "procs") == 0) {
		nprocs = n;
		nthreads = 1;
	} else if (strcmp(mode, "threads") == 0) {
		nprocs = 1;
		nthreads = n;
	} else if (strcmp(mode, "hybrid") == 0) {
		if (n < 8 || n % 4)
			usage();
		nprocs = n / 4;
		nthreads = 4;
	} else {
		usage();
		return 2;
	}
	for (int i = 0; i < n; i++)
		excl_total += kind_of(i) == K_EXCL;
	reps = calloc((size_t)nprocs, sizeof(*reps));
	pids = calloc((size_t)nprocs, sizeof(*pids));
	if (!reps || !pids)
		die("calloc");

	for (int round = 0; round < rounds; round++) {
		int ready[2], go[2], res[2], rel[2];
		int unlink_winner = rel_mode == REL_UNLINK || (rel_mode == REL_ALT && round % 2);
		int64_t deadline = now_us() + (int64_t)timeout_s * 1000000;
		long long acq_before, acq_after, holder, fence;
		struct report sum;
		int winners = 0, win_pid = -1, win_nonexcl = 0, exit_bad = 0;
		int64_t t0, vanish_us = -1;
		char *status;
		char dummy[1024];

		if (pipe(ready) || pipe(go) || pipe(res) || pipe(rel))
			die("pipe");
		fflush(stdout);
		for (int p = 0; p < nprocs; p++) {
			pids[p] = fork();
			if (pids[p] < 0)
				die("fork");
			if (pids[p] == 0) {
				close(ready[0]);
				close(go[1]);
				close(res[0]);
				close(rel[1]);
				contender(path, p * nthreads, nthreads, ready[1], go[0], res[1],
					  rel[0], unlink_winner);
			}
		}
		close(ready[1]);
		close(go[0]);
		close(res[1]);
		close(rel[0]);
		if (read_full(ready[0], dummy, (size_t)nprocs, deadline)) {
			fprintf(stderr, "race_client: round %d: contenders not ready in time\n", round);
			kill_all(pids, nprocs);
			return 1;
		}
		acq_before = acquired_total(metrics);
		close(go[1]);                   /* start the race */
		if (read_full(res[0], reps, sizeof(*reps) * (size_t)nprocs, deadline)) {
			fprintf(stderr, "race_client: round %d: no report in time (contenders stuck)\n",
				round);
			kill_all(pids, nprocs);
			return 1;
		}
		status = slurp(path);           /* every contender is still alive */
		holder = status_field(status, "pid");
		fence = status_field(status, "fence");
		free(status);
		acq_after = acquired_total(metrics);
		memset(&sum, 0, sizeof(sum));
		for (int p = 0; p < nprocs; p++) {
			const struct report *r = &reps[p];

			if (r->ok > 0) {
				if (!winners++) {
					win_pid = r->pid;
					win_nonexcl = r->nonexcl;
				}
			}
			sum.ok += r->ok;
			sum.ok_excl += r->ok_excl;
			sum.eexist_open += r->eexist_open;
			sum.eexist_write += r->eexist_write;
			if (r->other && !sum.other) {
				sum.other_errno = r->other_errno;
				sum.other_stage = r->other_stage;
			}
			sum.other += r->other;
		}
		close(rel[1]);                  /* let them all exit */
		for (int p = 0; p < nprocs; p++) {
			int st;

			if (waitpid(pids[p], &st, 0) < 0)
				die("waitpid");
			if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
				exit_bad++;
			pids[p] = 0;
		}
		close(ready[0]);
		close(res[0]);
		/* The name must vanish: at once after unlink, soon after exit. */
		t0 = now_us();
		for (;;) {
			struct stat sb;

			if (stat(path, &sb) != 0 && errno == ENOENT) {
				vanish_us = now_us() - t0;
				break;
			}
			if (now_us() - t0 > 10 * 1000000LL)
				break;
			usleep(200);
		}
		if (winners != 1 || holder != win_pid || sum.other || exit_bad || vanish_us < 0 ||
		    fence <= last_fence)
			bad_rounds++;
		if (fence > last_fence)
			last_fence = fence;
		printf("round=%d procs=%d threads=%d winners=%d win_pid=%d ok=%d ok_excl=%d "
		       "excl_total=%d win_nonexcl=%d eexist_open=%d eexist_write=%d other=%d "
		       "other_errno=%d other_stage=%d holder=%lld fence=%lld acq_delta=%lld "
		       "exit_bad=%d release=%s vanish_us=%lld\n",
		       round, nprocs, nthreads, winners, win_pid, sum.ok, sum.ok_excl, excl_total,
		       win_nonexcl, sum.eexist_open, sum.eexist_write, sum.other, sum.other_errno,
		       sum.other_stage, holder, fence,
		       (acq_before >= 0 && acq_after >= 0) ? acq_after - acq_before : -1LL,
		       exit_bad, unlink_winner ? "unlink" : "exit", (long long)vanish_us);
		if (vanish_us < 0) {
			fprintf(stderr, "race_client: round %d: %s did not vanish\n", round, path);
			printf("summary rounds=%d bad=%d incomplete=1\n", round + 1, bad_rounds);
			return 1;
		}
	}
	printf("summary rounds=%d bad=%d incomplete=0\n", rounds, bad_rounds);
	free(reps);
	free(pids);
	return 0;
}

/* Churn counters shared by a worker through its result pipe. */
struct churn {
	int32_t took, eexist_open, eexist_write, enoent, other_open, other_write;
	int32_t unlink_fail, child_opened, child_eexist, child_enoent, child_other;
	int32_t first_errno, first_where;
};

static void churn_note(struct churn *c, int err, int where)
{
	if (!c->first_errno) {
		c->first_errno = err;
		c->first_where = where;
	}
}

/* Worker of the churn test: create, write, release by unlink, repeat. */
static void churn_worker(const char *path, int w, int iters, int res_w)
{
	struct churn c;

	memset(&c, 0, sizeof(c));
	alarm((unsigned)timeout_s);
	for (int i = 0; i < iters; i++) {
		struct attempt a = { .kind = kind_of(w + i) };

		if (w % 4 == 3) {
			/* A child takes the name and exits without a claim: release on exit. */
			pid_t pid = fork();
			int st;

			if (pid < 0)
				_exit(4);
			if (pid == 0) {
				int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC |
					      (a.kind == K_EXCL ? O_EXCL : 0), 0644);

				if (fd >= 0)
					_exit(0);       /* creator or contender: exit either way */
				_exit(errno > 0 && errno < 255 ? errno : 255);  /* exit status = errno */
			}
			if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st))
				_exit(4);
			if (WEXITSTATUS(st) == 0) {
				c.child_opened++;
			} else if (WEXITSTATUS(st) == EEXIST && a.kind == K_EXCL) {
				c.child_eexist++;
			} else if (WEXITSTATUS(st) == ENOENT) {
				c.child_enoent++;
				churn_note(&c, ENOENT, 4);
			} else {
				c.child_other++;
				churn_note(&c, WEXITSTATUS(st), 4);
			}
			continue;
		}
		attempt(path, &a);
		if (a.stage == ST_OK) {
			c.took++;
			if (unlink(path) != 0) {
				c.unlink_fail++;
				churn_note(&c, errno, 3);
			}
		} else if (a.stage == ST_OPEN) {
			if (a.err == EEXIST && a.kind == K_EXCL) {
				c.eexist_open++;
			} else if (a.err == ENOENT) {
				c.enoent++;
				churn_note(&c, a.err, 1);
			} else {
				c.other_open++;
				churn_note(&c, a.err, 1);
			}
		} else if (a.err == EEXIST) {
			c.eexist_write++;
		} else {
			c.other_write++;
			churn_note(&c, a.err, 2);
		}
	}
	if (write(res_w, &c, sizeof(c)) != (ssize_t)sizeof(c))
		_exit(4);
	_exit(0);
}

static int run_churn(int n, const char *path, int iters)
{
	struct churn total, c;
	int res[2], bad_exit = 0;
	pid_t *pids = calloc((size_t)n, sizeof(*pids));
	int64_t deadline = now_us() + (int64_t)timeout_s * 1000000;

	if (!pids)
		die("calloc");
	if (pipe(res))
		die("pipe");
	fflush(stdout);
	for (int w = 0; w < n; w++) {
		pids[w] = fork();
		if (pids[w] < 0)
			die("fork");
		if (pids[w] == 0) {
			close(res[0]);
			churn_worker(path, w, iters, res[1]);
		}
	}
	close(res[1]);
	memset(&total, 0, sizeof(total));
	for (int w = 0; w < n; w++) {
		if (read_full(res[0], &c, sizeof(c), deadline)) {
			fprintf(stderr, "race_client: churn workers did not finish in time\n");
			kill_all(pids, n);
			return 1;
		}
		total.took += c.took;
		total.eexist_open += c.eexist_open;
		total.eexist_write += c.eexist_write;
		total.enoent += c.enoent;
		total.other_open += c.other_open;
		total.other_write += c.other_write;
		total.unlink_fail += c.unlink_fail;
		total.child_opened += c.child_opened;
		total.child_eexist += c.child_eexist;
		total.child_enoent += c.child_enoent;
		total.child_other += c.child_other;
		if (!total.first_errno && c.first_errno) {
			total.first_errno = c.first_errno;
			total.first_where = c.first_where;
		}
	}
	for (int w = 0; w < n; w++) {
		int st;

		if (waitpid(pids[w], &st, 0) < 0)
			die("waitpid");
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
			bad_exit++;
	}
	printf("churn workers=%d iters=%d took=%d eexist_open=%d eexist_write=%d enoent=%d "
	       "other_open=%d other_write=%d unlink_fail=%d child_opened=%d child_eexist=%d "
	       "child_enoent=%d child_other=%d first_errno=%d first_where=%d exit_bad=%d\n",
	       n, iters, total.took, total.eexist_open, total.eexist_write, total.enoent,
	       total.other_open, total.other_write, total.unlink_fail, total.child_opened,
	       total.child_eexist, total.child_enoent, total.child_other, total.first_errno,
	       total.first_where, bad_exit);
	free(pids);
	return 0;
}

int main(int argc, char **argv)
{
	int opt, rounds = 200, n;
	enum release rel = REL_ALT;
	const char *metrics = NULL, *mode;

	while ((opt = getopt(argc, argv, "r:R:m:t:")) != -1) {
		switch (opt) {
		case 'r':
			rounds = atoi(optarg);
			break;
		case 'R':
			if (strcmp(optarg, "exit") == 0)
				rel = REL_EXIT;
			else if (strcmp(optarg, "unlink") == 0)
				rel = REL_UNLINK;
			else if (strcmp(optarg, "alt") == 0)
				rel = REL_ALT;
			else
				usage();
			break;
		case 'm':
			metrics = optarg;
			break;
		case 't':
			timeout_s = atoi(optarg);
			break;
		default:
			usage();
		}
	}
	if (argc - optind != 4)
		usage();
	mode = argv[optind];
	flags_name = argv[optind + 1];
	n = atoi(argv[optind + 2]);
	if (strcmp(flags_name, "excl") && strcmp(flags_name, "trunc") &&
	    strcmp(flags_name, "creat") && strcmp(flags_name, "mixed"))
		usage();
	if (n < 1 || n > 4096 || rounds < 1 || timeout_s < 1)
		usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (strcmp(mode, "churn") == 0)
		return run_churn(n, argv[optind + 3], rounds);
	return run_rounds(mode, n, argv[optind + 2 + 1], rounds, rel, metrics);
}
