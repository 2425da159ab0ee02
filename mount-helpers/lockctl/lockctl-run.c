/* SPDX-License-Identifier: MIT */
/* lockctl run: take a lock with flock(2) (waiting, failing at once, or
 * waiting at most a while), run a command under it, release it. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <sys/file.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include "lockctl.h"

static volatile sig_atomic_t timed_out;
static volatile sig_atomic_t child_pid;

static void on_alarm(int sig) {
        (void)sig;
        timed_out = 1;
}

/* Pass a signal sent to lockctl on to the command, so that kill(1) of
 * lockctl ends the command before the lock goes. Signals the terminal
 * sends to the whole foreground group (si_code SI_KERNEL) already reach
 * the command and are not sent twice. */
static void on_forward(int sig, siginfo_t *si, void *uc) {
        (void)uc;
        if (si->si_code <= 0 && child_pid > 0)
                kill((pid_t)child_pid, sig);
}

static const int forwarded[] = {SIGHUP, SIGINT, SIGQUIT, SIGTERM};

static void set_forwarding(bool on) {
        struct sigaction sa = {0};

        if (on) {
                sa.sa_sigaction = on_forward;
                sa.sa_flags = SA_SIGINFO | SA_RESTART;
        } else {
                sa.sa_handler = SIG_DFL;
        }
        sigemptyset(&sa.sa_mask);
        for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
                sigaction(forwarded[i], &sa, NULL);
}

/* Arm SIGALRM after secs, then every 10 ms: a signal that lands just
 * before flock(2) starts to wait is followed by another. No SA_RESTART, so
 * the waiting flock(2) returns EINTR. */
static void arm_timeout(double secs) {
        struct sigaction sa = {0};
        struct itimerval it = {0};

        sa.sa_handler = on_alarm;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGALRM, &sa, NULL);
        it.it_value.tv_sec = (time_t)secs;
        it.it_value.tv_usec = (suseconds_t)((secs - (double)it.it_value.tv_sec) * 1e6);
        if (it.it_value.tv_sec == 0 && it.it_value.tv_usec == 0)
                it.it_value.tv_usec = 1;
        it.it_interval.tv_usec = 10000;
        setitimer(ITIMER_REAL, &it, NULL);
}

static void disarm_timeout(void) {
        struct itimerval it = {0};

        setitimer(ITIMER_REAL, &it, NULL); /* a pending SIGALRM only sets the flag */
}

/* Say who holds file, after a busy -n or a -w timeout. */
static void report_busy(const char *file, bool waited) {
        _cleanup_free_ char *name = lc_esc(file), *doc = NULL, *user = NULL, *comm = NULL;
        const char *what = waited ? "timed out waiting for" : "cannot take";
        struct lc_span obj;
        struct lc_lock l;

        if (lc_status_read(file, &doc, &obj) < 0 || lc_lock_parse(obj, &l) < 0) {
                lc_err("%s %s: it is held", what, name);
                return;
        }
        user = lc_escape(l.user, l.user_len, true, NULL);
        comm = lc_escape(l.comm, l.comm_len, true, NULL);
        if (l.detached)
                lc_err("%s %s: it is held (detached, user %s)", what, name, user);
        else
                lc_err("%s %s: it is held by pid %lld (%s, %s)", what, name, (long long)l.pid,
                       user, comm);
        lc_lock_clear(&l);
}

/* Take the lock on fd. Returns 0, 1 when busy or timed out, or -errno. */
static int take(int fd, bool nonblock, double wait_secs) {
        int r = 0;

        timed_out = 0;
        if (wait_secs > 0)
                arm_timeout(wait_secs);
        for (;;) {
                if (timed_out) {
                        r = 1;
                        break;
                }
                if (flock(fd, LOCK_EX | (nonblock ? LOCK_NB : 0)) == 0)
                        break;
                if (errno == EINTR)
                        continue;
                r = errno == EWOULDBLOCK ? 1 : -errno;
                break;
        }
        if (wait_secs > 0)
                disarm_timeout();
        return r;
}

/* Run cmd as a child and wait for it. Returns its exit status (128+N when
 * signal N killed it), or -errno when it could not be started (*ret_exec
 * tells whether exec(3) or fork(2) failed). */
static int run_child(char **cmd, bool *ret_exec) {
        sigset_t fwd, old;
        int ep[2], status, err = 0;
        ssize_t k;
        pid_t pid;

        *ret_exec = false;
        if (pipe2(ep, O_CLOEXEC) < 0)
                return -errno;
        sigemptyset(&fwd);
        for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++)
                sigaddset(&fwd, forwarded[i]);
        sigprocmask(SIG_BLOCK, &fwd, &old);
        set_forwarding(true);
        fflush(NULL);
        pid = fork();
        if (pid == 0) {
                close(ep[0]);
                set_forwarding(false);
                sigprocmask(SIG_SETMASK, &old, NULL);
                execvp(cmd[0], cmd);
                err = errno;
                k = write(ep[1], &err, sizeof(err)); /* tell the parent why */
                (void)k;
                _exit(EX_UNAVAILABLE);
        }
        if (pid < 0) {
                err = errno;
                set_forwarding(false);
                sigprocmask(SIG_SETMASK, &old, NULL);
                close(ep[0]);
                close(ep[1]);
                return -err;
        }
        child_pid = pid;
        sigprocmask(SIG_SETMASK, &old, NULL);
        close(ep[1]);
        do /* EOF once exec succeeded (close-on-exec) */
                k = read(ep[0], &err, sizeof(err));
        while (k < 0 && errno == EINTR);
        close(ep[0]);
        while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
                ;
        child_pid = 0;
        set_forwarding(false);
        if (k == (ssize_t)sizeof(err)) {
                *ret_exec = true;
                return -err;
        }
        if (WIFSIGNALED(status))
                return 128 + WTERMSIG(status);
        return WEXITSTATUS(status);
}

static int parse_seconds(const char *s, double *ret) {
        char *end;
        double x;

        errno = 0;
        x = strtod(s, &end);
        if (errno != 0 || end == s || *end != '\0' || !isfinite(x) || x < 0 || x > 1e9)
                return -EINVAL;
        *ret = x;
        return 0;
}

static int parse_code(const char *s, int *ret) {
        char *end;
        long x;

        errno = 0;
        x = strtol(s, &end, 10);
        if (errno != 0 || end == s || *end != '\0' || x < 0 || x > 255)
                return -EINVAL;
        *ret = (int)x;
        return 0;
}

/* What run was asked: the options, FILE and the command. */
struct run_args {
        bool nonblock, have_wait;
        double wait_secs;
        int busy_code;
        const char *file;
        char **cmd;
};

/* Parse run's options into *a. Returns -1 to go on, or 0 for --help. */
static int run_options(int argc, char **argv, struct run_args *a) {
        static const struct option opts[] = {
                {"nonblock", no_argument, NULL, 'n'},
                {"timeout", required_argument, NULL, 'w'},
                {"wait", required_argument, NULL, 'w'},
                {"conflict-exit-code", required_argument, NULL, 'E'},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        int c;

        opterr = 0;
        while ((c = getopt_long(argc, argv, "+:nw:E:h", opts, NULL)) >= 0) {
                switch (c) {
                case 'n':
                        a->nonblock = true;
                        break;
                case 'w':
                        if (parse_seconds(optarg, &a->wait_secs) < 0) {
                                lc_err("bad timeout '%s': give seconds, e.g. 5 or 0.5", optarg);
                                return lc_usage_error();
                        }
                        a->have_wait = true;
                        break;
                case 'E':
                        if (parse_code(optarg, &a->busy_code) < 0) {
                                lc_err("bad exit code '%s': give 0 to 255", optarg);
                                return lc_usage_error();
                        }
                        break;
                case 'h':
                        lc_usage(stdout);
                        return 0;
                default:
                        return lc_bad_option(c, argv);
                }
        }
        return -1;
}

/* Parse run's command line into *a. Returns -1 to go on, else an exit
 * status. */
static int run_args(int argc, char **argv, struct run_args *a) {
        int r = run_options(argc, argv, a);

        if (r >= 0)
                return r;
        if (a->nonblock && a->have_wait) {
                lc_err("-n and -w exclude each other");
                return lc_usage_error();
        }
        if (a->have_wait && a->wait_secs == 0)
                a->nonblock = true; /* as flock -w 0 */
        if (optind >= argc) {
                lc_err("run needs a FILE and a command");
                return lc_usage_error();
        }
        a->file = argv[optind++];
        if (optind < argc && strcmp(argv[optind], "--") == 0)
                optind++;
        if (optind >= argc) {
                lc_err("run needs a command after FILE");
                return lc_usage_error();
        }
        a->cmd = argv + optind;
        return -1;
}

int lc_cmd_run(int argc, char **argv) {
        struct run_args a = { .busy_code = LC_EXIT_BUSY };
        _cleanup_free_ char *name = NULL;
        bool nonblock, have_wait, exec_failed;
        double wait_secs;
        int r = run_args(argc, argv, &a), fd, busy_code;
        const char *file;
        char **cmd;

        if (r >= 0)
                return r;
        nonblock = a.nonblock;
        have_wait = a.have_wait;
        wait_secs = a.wait_secs;
        busy_code = a.busy_code;
        file = a.file;
        cmd = a.cmd;
        name = lc_esc(file);

        /* Creating a free name takes the lock; on a held name the open gives
         * a descriptor to wait on. Close-on-exec: the lock belongs to
         * lockctl, which releases it when the command is done. */
        fd = open(file, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOCTTY, 0644);
        if (fd < 0) {
                lc_err("cannot open %s: %s", name, strerror(errno));
                return EX_NOINPUT;
        }
        r = take(fd, nonblock, have_wait ? wait_secs : 0);
        if (r != 0) {
                if (r == 1)
                        report_busy(file, have_wait && !nonblock);
                else
                        lc_err("cannot lock %s: %s", name, strerror(-r));
                close(fd);
                return r == 1 ? busy_code : EX_OSERR;
        }
        r = run_child(cmd, &exec_failed);
        if (flock(fd, LOCK_UN) < 0 && errno != ENOENT)
                lc_err("releasing %s: %s", name, strerror(errno));
        close(fd);
        if (r < 0) {
                _cleanup_free_ char *ecmd = lc_esc(cmd[0]);
                if (exec_failed) {
                        lc_err("cannot run %s: %s", ecmd, strerror(-r));
                        return EX_UNAVAILABLE;
                }
                lc_err("cannot start %s: %s", ecmd, strerror(-r));
                return EX_OSERR;
        }
        return r;
}
