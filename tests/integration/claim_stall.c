/* SPDX-License-Identifier: MIT */
/* The claim-stall attack of issue 11 (finding 1), bounded: a process P
 * makes a /proc read of itself slow while the daemon serves a claim of P.
 *
 * Each try: child W holds w.lock and writes a claim naming its parent P
 * (a long one, so the daemon spends a while on it); meanwhile P starts a READ of its own lock p.lock (through
 * readahead on a fresh descriptor, after a 1-byte write at 8191 so the
 * kernel has a page to fetch) and an mmap of p.lock, which takes P's
 * memory-map lock and waits for that READ's page. If the daemon read
 * /proc/P/cmdline (which needs P's memory-map lock) while holding the table
 * mutex that P's READ waits for, all three would wait for ever.
 *
 * usage: claim_stall MOUNT TRIES
 * Prints one line per try; exits 0 when every try's claim write returned,
 * 2 when one did not within STALL_MS (the daemon is then stuck), 1 on a
 * set-up error. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { STALL_MS = 5000, CLAIM_BYTES = 65000 };

static int read_fd = -1, map_fd = -1;

static void *start_read(void *arg) {
        (void)arg;
        readahead(read_fd, 0, 8192);
        return NULL;
}

static void *start_map(void *arg) {
        (void)arg;
        void *p = mmap(NULL, 4096, PROT_READ, MAP_PRIVATE, map_fd, 0);
        if (p != MAP_FAILED)
                munmap(p, 4096);
        return NULL;
}

static void pause_us(long us) {
        struct timespec ts = { .tv_sec = 0, .tv_nsec = us * 1000 };
        nanosleep(&ts, NULL);
}

/* W: hold w.lock; on 's' write its own pid, on 'c' a claim of its parent;
 * answer 'k' after each write. */
static void writer(const char *path, int cmd, int ack) {
        int fd = open(path, O_RDWR | O_CREAT | O_EXCL, 0644);
        if (fd < 0) {
                perror(path);
                _exit(1);
        }
        static char buf[CLAIM_BYTES + 64];
        char c;
        if (write(ack, "r", 1) != 1)
                _exit(1);
        while (read(cmd, &c, 1) == 1) {
                int n;
                if (c == 'c') {
                        n = snprintf(buf, sizeof(buf), "{\"x\": [0");
                        while (n < CLAIM_BYTES) {
                                buf[n++] = ',';
                                buf[n++] = '0';
                        }
                        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "], \"pid\": %d}",
                                      (int)getppid());
                } else {
                        n = snprintf(buf, sizeof(buf), "%d\n", (int)getpid());
                }
                if (ftruncate(fd, 0) < 0 || pwrite(fd, buf, (size_t)n, 0) != n)
                        fprintf(stderr, "writer: %s\n", strerror(errno));
                if (write(ack, "k", 1) != 1)
                        _exit(1);
        }
        _exit(0);
}

/* One byte from W within ms; false when it did not come. */
static bool await_ack(int ack, int ms) {
        struct pollfd p = { .fd = ack, .events = POLLIN };
        char c;
        return poll(&p, 1, ms) == 1 && read(ack, &c, 1) == 1;
}

int main(int argc, char **argv) {
        if (argc != 3) {
                fprintf(stderr, "usage: claim_stall MOUNT TRIES\n");
                return 1;
        }
        setvbuf(stdout, NULL, _IOLBF, 0);
        char own[4096], other[4096];
        snprintf(own, sizeof(own), "%s/stall-p%d.lock", argv[1], (int)getpid());
        snprintf(other, sizeof(other), "%s/stall-w%d.lock", argv[1], (int)getpid());
        int tries = atoi(argv[2]);
        int fd = open(own, O_RDWR | O_CREAT | O_EXCL, 0644);
        if (fd < 0) {
                perror(own);
                return 1;
        }
        int cmd[2], ack[2];
        if (pipe(cmd) < 0 || pipe(ack) < 0)
                return 1;
        pid_t w = fork();
        if (w == 0) {
                close(cmd[1]);
                close(ack[0]);
                writer(other, cmd[0], ack[1]);
        }
        close(cmd[0]);
        close(ack[1]);
        if (!await_ack(ack[0], STALL_MS)) {
                fprintf(stderr, "writer did not start\n");
                return 1;
        }
        for (int i = 0; i < tries; i++) {
                if (write(cmd[1], "s", 1) != 1 || !await_ack(ack[0], STALL_MS)) {
                        printf("try %d: writer stuck before the claim\n", i);
                        return 2;
                }
                map_fd = open(own, O_RDONLY);
                read_fd = open(own, O_RDWR);
                if (map_fd < 0 || read_fd < 0 || pwrite(read_fd, "x", 1, 8191) != 1) {
                        perror("reopen");
                        return 1;
                }
                if (write(cmd[1], "c", 1) != 1)
                        return 1;
                pthread_t rt, mt;
                pause_us(500);
                pthread_create(&rt, NULL, start_read, NULL);
                pause_us(300);
                pthread_create(&mt, NULL, start_map, NULL);
                if (!await_ack(ack[0], STALL_MS)) {
                        printf("try %d: claim write stuck\n", i);
                        return 2; /* the threads are stuck too: exit without them */
                }
                pthread_join(rt, NULL);
                pthread_join(mt, NULL);
                close(read_fd);
                close(map_fd);
                printf("try %d: ok\n", i);
        }
        close(cmd[1]);
        waitpid(w, NULL, 0);
        close(fd);
        printf("no stall in %d tries\n", tries);
        return 0;
}
