/* SPDX-License-Identifier: MIT */
/* The lock table's outbox: every store call (journal write, fence
 * reservation, etcd transaction) is queued under the table mutex, in the
 * order the table changed, and made later outside it, so a slow or stalled
 * store never holds up requests on other names.
 *
 * Contract:
 * - lt_op_*() queue a call; they expect t->mu held and copy what they need.
 * - lt_flush() makes every call queued so far, in queue order, with
 *   t->store_mu held (one flusher at a time; lock order store_mu -> mu, and
 *   t->mu is never held while waiting for store_mu). After a call, its
 *   done() callback runs under t->mu (to commit or roll back what the call
 *   was for), then waiters of t->settled are woken.
 * - lt_unlock() unlocks t->mu, delivers owed replies (lt_deliver.c) and
 *   flushes; so a request is answered only once its store calls are made.
 * - While the table is restoring (t->restoring), calls are made at once:
 *   restore runs before the mount serves anyone. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "lt_internal.h"

static struct lt_op *op_new(struct locktable *t, enum lt_op_kind kind, uint64_t ino) {
        struct lt_op *op = calloc(1, sizeof(*op));
        if (!op)
                return NULL;
        list_init(&op->link);
        op->kind = kind;
        op->ino = ino;
        op->t = t;
        return op;
}

void lt_op_free(struct lt_op *op) {
        if (!op)
                return;
        lock_view_clear(&op->view);
        free(op->path);
        free(op->name);
        free(op);
}

static int op_call(struct locktable *t, struct lt_op *op) {
        const struct store_ops *s = t->store->ops;
        switch (op->kind) {
        case LT_OP_ACQUIRE:
                return s->acquire(t->store, &op->view, &op->fence);
        case LT_OP_UPDATE:
                return s->update ? s->update(t->store, &op->view) : 0;
        case LT_OP_RELEASE:
                return s->release ? s->release(t->store, op->ino, op->path, op->fence) : 0;
        case LT_OP_PUT_DIR:
                return s->put_dir ? s->put_dir(t->store, op->ino, op->parent, op->name, op->uid,
                                               op->gid)
                                  : 0;
        case LT_OP_REMOVE_DIR:
                return s->remove_dir ? s->remove_dir(t->store, op->ino) : 0;
        }
        return -EINVAL;
}

/* Queue op (t->mu held); while restoring, make the call at once and run
 * its done() callback. */
static void op_queue(struct locktable *t, struct lt_op *op) {
        op->seq = ++t->ops_queued;
        if (t->restoring) {
                op->err = op_call(t, op);
                t->ops_done = op->seq;
                if (op->done)
                        op->done(t, op);
                op->finished = true;
                if (!op->waited)
                        lt_op_free(op);
                return;
        }
        list_add_tail(&t->ops, &op->link);
}

/* A view-carrying call for lock n; NULL without memory (logged). */
static struct lt_op *lock_op(struct locktable *t, enum lt_op_kind kind, const struct node *n) {
        struct lt_op *op = op_new(t, kind, n->ino);
        if (op && lt_store_view(n, &op->view) == 0)
                return op;
        free(op);
        log_msg(LOG_ERR, "cannot record the state of %s: %s", n->name, strerror(ENOMEM));
        return NULL;
}

struct lt_op *lt_op_update(struct locktable *t, const struct node *n) {
        if (!t->store->ops->update)
                return NULL;
        struct lt_op *op = lock_op(t, LT_OP_UPDATE, n);
        if (op)
                op_queue(t, op);
        return op;
}

int lt_op_acquire(struct locktable *t, const struct lock_view *v, lt_op_done_fn done, void *arg,
                  bool waited, struct lt_op **ret) {
        struct lt_op *op = op_new(t, LT_OP_ACQUIRE, v->ino);
        if (!op)
                return -ENOMEM;
        op->view = *v; /* takes over what v owns */
        op->done = done;
        op->arg = arg;
        op->waited = waited;
        if (ret)
                *ret = op;
        op_queue(t, op);
        return 0;
}

void lt_op_release(struct locktable *t, const struct node *n) {
        if (!t->store->ops->release || t->closing)
                return;
        struct lt_op *op = op_new(t, LT_OP_RELEASE, n->ino);
        if (op && !(op->path = lt_node_path(n))) {
                free(op);
                op = NULL;
        }
        if (!op) {
                log_msg(LOG_ERR, "cannot record the release of %s: %s", n->name,
                        strerror(ENOMEM));
                return;
        }
        op->fence = n->fence;
        op_queue(t, op);
}

struct lt_op *lt_op_put_dir(struct locktable *t, const struct node *n, lt_op_done_fn done,
                            void *arg) {
        if (!t->store->ops->put_dir)
                return NULL;
        struct lt_op *op = op_new(t, LT_OP_PUT_DIR, n->ino);
        if (op && !(op->name = strdup(n->name))) {
                free(op);
                op = NULL;
        }
        if (!op) {
                log_msg(LOG_ERR, "cannot record directory %s: %s", n->name, strerror(ENOMEM));
                return NULL;
        }
        op->parent = n->parent->ino;
        op->uid = n->uid;
        op->gid = n->gid;
        op->done = done;
        op->arg = arg;
        op_queue(t, op);
        return op;
}

void lt_op_remove_dir(struct locktable *t, const struct node *n) {
        if (!t->store->ops->remove_dir)
                return;
        struct lt_op *op = op_new(t, LT_OP_REMOVE_DIR, n->ino);
        if (!op) {
                log_msg(LOG_ERR, "cannot record the removal of directory %s", n->name);
                return;
        }
        op_queue(t, op);
}

/* A failed call that nobody rolls back: say so (the local store rewrites
 * its journal at its next change). */
static void log_failure(const struct lt_op *op) {
        static const char *const what[] = {
                [LT_OP_ACQUIRE] = "acquisition", [LT_OP_UPDATE] = "state",
                [LT_OP_RELEASE] = "release", [LT_OP_PUT_DIR] = "directory",
                [LT_OP_REMOVE_DIR] = "directory removal",
        };
        const char *name = op->view.path ? op->view.path : op->path ? op->path
                         : op->name ? op->name : "?";
        log_msg(LOG_ERR, "cannot record the %s of %s: %s", what[op->kind], name,
                strerror(-op->err));
}

/* Calls queued and not yet taken by a flusher. A request that queued
 * nothing has nothing to wait for here (calls in flight are waited for, where
 * needed, on t->settled); one that queued something finds, once it holds
 * store_mu and the queue is empty, that its calls have been made: only a
 * holder of store_mu takes calls off the queue, and makes them before
 * letting go of it. */
static bool flush_needed(const struct locktable *t) {
        return !list_empty(&t->ops);
}

void lt_flush(struct locktable *t) {
        pthread_mutex_lock(&t->store_mu);
        for (;;) {
                struct list batch = LIST_INIT(batch), *l, *tmp;
                pthread_mutex_lock(&t->mu);
                list_splice_tail_init(&t->ops, &batch);
                pthread_mutex_unlock(&t->mu);
                if (list_empty(&batch))
                        break;
                list_for_each(l, &batch) { /* without t->mu: nobody else sees batch */
                        struct lt_op *op = list_entry(l, struct lt_op, link);
                        op->err = op_call(t, op);
                }
                pthread_mutex_lock(&t->mu);
                list_for_each_safe(l, tmp, &batch) {
                        struct lt_op *op = list_entry(l, struct lt_op, link);
                        list_del(&op->link);
                        t->ops_done = op->seq;
                        if (op->done)
                                op->done(t, op);
                        else if (op->err < 0)
                                log_failure(op);
                        op->finished = true;
                        if (!op->waited)
                                lt_op_free(op);
                }
                pthread_cond_broadcast(&t->settled);
                lt_deliver(t); /* unlocks t->mu */
        }
        pthread_mutex_unlock(&t->store_mu);
}

void lt_unlock(struct locktable *t) {
        bool flush = flush_needed(t);
        lt_deliver(t);
        if (flush)
                lt_flush(t);
}

void lt_ops_free(struct locktable *t) {
        struct lt_op *op;
        while ((op = list_first_entry_or_null(&t->ops, struct lt_op, link))) {
                list_del(&op->link);
                lt_op_free(op);
        }
}

void lt_wait_settled(struct locktable *t) {
        pthread_cond_wait(&t->settled, &t->mu);
}
