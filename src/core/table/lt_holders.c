/* SPDX-License-Identifier: MIT */
/* Holder records of the lock table: one per process, its death watched
 * through a pidfd (or polled where pidfds are missing), and pid claims. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include "lt_internal.h"

uint64_t lt_holder_key(const struct proc_id *p) {
        return ((uint64_t)p->start_time << 22) | (uint64_t)(p->pid & 0x3fffff);
}

struct proc_id lt_holder_key_proc(uint64_t key) {
        return (struct proc_id){ .pid = (pid_t)(key & 0x3fffff), .start_time = key >> 22 };
}

struct holder *lt_holder_find(struct locktable *t, const struct proc_id *p) {
        uint64_t hash = htab_hash_u64((uint64_t)p->pid);
        struct holder *h;
        htab_for_each_possible(&t->holders, hash, h, struct holder, by_pid)
                if (h->proc.pid == p->pid && h->proc.start_time == p->start_time)
                        return h;
        return NULL;
}

static void poll_timer_set(struct locktable *t, bool on) {
        struct itimerspec its = { 0 };
        if (on) {
                its.it_interval.tv_nsec = POLL_PERIOD_MS * 1000000L;
                its.it_value = its.it_interval;
        }
        timerfd_settime(t->pollfd, 0, &its, NULL);
}

/* Watch h's death: its pidfd in the epoll set, or the polling fallback. */
static int holder_watch(struct locktable *t, struct holder *h) {
        if (h->pidfd < 0) {
                if (t->n_polled++ == 0)
                        poll_timer_set(t, true);
                return 0;
        }
        struct epoll_event ev = { .events = EPOLLIN, .data.u64 = lt_holder_key(&h->proc) };
        return epoll_ctl(t->epfd, EPOLL_CTL_ADD, h->pidfd, &ev) < 0 ? -errno : 0;
}

static void holder_unwatch(struct locktable *t, struct holder *h) {
        if (h->dead && h->pidfd < 0)
                return; /* unwatched when it was reaped */
        if (h->pidfd < 0) {
                if (--t->n_polled == 0)
                        poll_timer_set(t, false);
                return;
        }
        epoll_ctl(t->epfd, EPOLL_CTL_DEL, h->pidfd, NULL);
        close(h->pidfd);
}

static void idle_remove(struct locktable *t, struct holder *h) {
        list_del(&h->idle);
        t->n_idle--;
}

static void holder_free(struct locktable *t, struct holder *h) {
        holder_unwatch(t, h);
        htab_remove(&t->holders, &h->by_pid);
        free(h->cmdline);
        free(h);
}

/* Free idle holder h (its process died, or the table goes). */
static void holder_forget_idle(struct locktable *t, struct holder *h) {
        idle_remove(t, h);
        holder_free(t, h);
}

void lt_holders_free_idle(struct locktable *t) {
        while (!list_empty(&t->idle))
                holder_forget_idle(t, list_entry(t->idle.next, struct holder, idle));
}

void lt_prep_proc(struct lt_prep *prep, const struct proc_id *p) {
        *prep = (struct lt_prep){ .ready = true, .pidfd = -1 };
        int fd = holder_pidfd_open(p);
        if (fd == -ENOSYS || fd == -EMFILE || fd == -ENFILE) /* watched by polling /proc */
                prep->err = holder_alive(p) ? 0 : -ESRCH;
        else if (fd < 0)
                prep->err = fd;
        else
                prep->pidfd = fd;
}

void lt_prep_done(struct lt_prep *prep) {
        if (prep->pidfd >= 0)
                close(prep->pidfd);
        *prep = (struct lt_prep){ .pidfd = -1 };
}

bool lt_holder_dead(struct holder *h) {
        if (h->dead)
                return true;
        if (h->pidfd < 0) /* no pidfd: a signal-0 probe (no /proc read) */
                return kill(h->proc.pid, 0) < 0 && errno == ESRCH;
        struct pollfd p = { .fd = h->pidfd, .events = POLLIN };
        return poll(&p, 1, 0) == 1;
}

/* One more reference to h, c's known record; an idle record is c's
 * process back: it takes c's names (it may have exec'd since) and
 * credentials. 0 or -ENOMEM. */
static int holder_reuse(struct locktable *t, struct holder *h, const struct caller *c) {
        if (h->refs == 0) {
                bool names = c->comm[0] && !c->no_cmdline;
                char *cmdline = names ? strdup(c->cmdline) : NULL;
                if (names && !cmdline)
                        return -ENOMEM;
                idle_remove(t, h);
                if (cmdline) {
                        free(h->cmdline);
                        h->cmdline = cmdline;
                        memcpy(h->comm, c->comm, sizeof(h->comm));
                }
                h->uid = c->uid;
                h->gid = c->gid;
        }
        h->refs++;
        return 0;
}

/* A new record (one reference) for c, watched through prep's pidfd (taken
 * over on success). 0, prep's -errno, or the watch's -errno. */
static int holder_make(struct locktable *t, const struct caller *c, struct lt_prep *prep,
                       struct holder **ret) {
        if (prep->err < 0)
                return prep->err;
        struct holder *h = calloc(1, sizeof(*h));
        if (h && !(h->cmdline = strdup(c->cmdline))) {
                free(h);
                h = NULL;
        }
        if (!h)
                return -ENOMEM;
        h->proc = c->self;
        h->uid = c->uid;
        h->gid = c->gid;
        memcpy(h->comm, c->comm, sizeof(h->comm));
        h->pidfd = prep->pidfd;
        h->refs = 1;
        list_init(&h->waits);
        list_init(&h->shares);
        list_init(&h->locks);
        list_init(&h->idle);
        int r = holder_watch(t, h);
        if (r < 0) {
                free(h->cmdline);
                free(h);
                return r; /* the pidfd stays with prep */
        }
        prep->pidfd = -1; /* the record's now */
        htab_insert(&t->holders, &h->by_pid, htab_hash_u64((uint64_t)h->proc.pid));
        *ret = h;
        return 0;
}

int lt_holder_ref(struct locktable *t, const struct caller *c, struct lt_prep *prep,
                  struct holder **ret) {
        struct holder *h = lt_holder_find(t, &c->self);
        if (h && h->dead)
                return -ESRCH;
        /* without the cmdline, only a known process whose comm is the same
         * (no exec since) will do */
        if (c->no_cmdline && (!h || strcmp(h->comm, c->comm)))
                return LT_NEED_CMDLINE;
        if (h) {
                int r = holder_reuse(t, h, c);
                if (r == 0)
                        *ret = h;
                return r;
        }
        if (!prep || !prep->ready)
                return LT_NEED_PROC; /* its pidfd is opened outside the lock */
        return holder_make(t, c, prep, ret);
}

/* h's process died: its death is no longer watched (a dead pidfd stays
 * readable); the reference taken here is the caller's. */
void lt_holder_reaped(struct locktable *t, struct holder *h) {
        h->refs++;
        if (h->refs == 1)
                idle_remove(t, h);
        holder_unwatch(t, h);
        h->pidfd = -1;
        h->dead = true;
}

void lt_holder_unref(struct locktable *t, struct holder *h) {
        if (--h->refs > 0)
                return;
        if (t->closing || h->dead) {
                holder_free(t, h);
                return;
        }
        list_add(&t->idle, &h->idle);
        if (++t->n_idle > LT_IDLE_HOLDERS)
                holder_forget_idle(t, list_entry(t->idle.prev, struct holder, idle));
}

void lt_attach_holder(struct node *n, struct holder *h) {
        n->holder = h;
        n->uid = h->uid;
        n->gid = h->gid;
        list_add(&h->locks, &n->hl);
}

void lt_detach_holder(struct locktable *t, struct node *n) {
        struct holder *h = n->holder;
        if (!h)
                return;
        list_del(&n->hl);
        n->holder = NULL;
        lt_holder_unref(t, h);
}

void lt_set_holder(struct locktable *t, struct node *n, struct holder *h) {
        lt_detach_holder(t, n);
        if (h)
                lt_attach_holder(n, h);
}

bool lt_is_holder(const struct node *n, const struct caller *c) {
        if (!n->holder)
                return false;
        if (c->self.pid > 0 && c->self.pid == n->holder->proc.pid &&
            c->self.start_time == n->holder->proc.start_time)
                return true;
        /* a descendant only while it runs as the lock's uid: `su other -c rm`
         * is not the holder (SPEC R3.4) */
        return c->uid == n->uid && caller_is_or_descends_from(c, &n->holder->proc);
}

bool lt_may_release(const struct node *n, const struct caller *c) {
        if (n->remote)
                return false; /* another host's: only a force-unlock */
        return n->holder ? lt_is_holder(n, c) : c->uid == n->uid;
}

/* Who pid is for writer c: true with *ret its identity when it is c, an
 * ancestor of c (from c's ancestry), or a descendant of c (from its own
 * ancestry, read here: its chain of parents leads to c, with c's start
 * time). Each link of a chain is a parent no younger than its child, so a
 * reused pid breaks the chain rather than extend it; a descendant whose
 * parent between it and c has died was reparented and is no longer c's.
 * *proc gets pid's identity when it is not c itself (NULL otherwise). */
static bool claim_whom(const struct caller *c, pid_t pid, struct proc_id *ret,
                       struct caller **proc) {
        *proc = NULL;
        bool lineage = caller_find_lineage(c, pid, ret);
        if (lineage && ret->pid == c->self.pid)
                return true;
        if (!lineage && c->self.pid <= 0)
                return false;
        struct caller *p = malloc(sizeof(*p));
        if (!p || holder_identify_process(pid, p) < 0) {
                free(p);
                return false;
        }
        *proc = p;
        if (lineage) /* an ancestor: the same process as in c's ancestry */
                return p->self.start_time == ret->start_time;
        *ret = p->self;
        return caller_is_or_descends_from(p, &c->self); /* a descendant (SPEC R3.3) */
}

void lt_claim_prepare(struct lt_claim *cl, const struct caller *c, pid_t pid) {
        *cl = (struct lt_claim){ .pid = pid, .prep = { .pidfd = -1 } };
        /* init is everyone's ancestor; a lock it "held" would never die */
        if (pid <= 1 || !claim_whom(c, pid, &cl->who, &cl->proc))
                return;
        if (!cl->proc) {
                cl->valid = true; /* the writer itself */
                return;
        }
        if (c->uid != 0 && cl->proc->uid != c->uid)
                return; /* another user's process */
        cl->proc->uid = c->uid; /* the lock stays the writer's (SPEC R3.3) */
        cl->proc->gid = c->gid;
        lt_prep_proc(&cl->prep, &cl->who);
        cl->valid = cl->prep.err == 0;
}

void lt_claim_done(struct lt_claim *cl) {
        free(cl->proc);
        cl->proc = NULL;
        lt_prep_done(&cl->prep);
}

/* Make the process claimed in n's content the holder when cl allows it
 * (SPEC R3.3, R3.3a). */
int lt_apply_claim(struct locktable *t, struct node *n, const struct caller *c,
                   struct lt_claim *cl, struct lt_prep *self_prep) {
        if (cl->pid == 0) {
                lt_detach_holder(t, n);
                n->how = LOCK_HOW_DETACHED;
                n->liveness_known = false; /* no process to watch */
                return 0;
        }
        if (n->holder && n->holder->proc.pid == cl->pid && c->uid == n->uid)
                return 0;
        struct holder *h;
        int r = -ESRCH;
        if (cl->valid && !cl->proc)
                r = lt_holder_ref(t, c, self_prep, &h);
        else if (cl->valid)
                r = lt_holder_ref(t, cl->proc, &cl->prep, &h);
        if (r == LT_NEED_PROC)
                return r;
        if (r != 0) { /* gone, or (never for a write's caller) LT_NEED_CMDLINE */
                n->claim_ignored_pid = cl->pid;
                return 0;
        }
        lt_set_holder(t, n, h);
        n->uid = c->uid;
        n->gid = c->gid;
        lt_quota_charge(t, n);
        n->how = LOCK_HOW_CLAIM;
        n->liveness_known = true;
        n->claim_ignored_pid = 0;
        return 0;
}
