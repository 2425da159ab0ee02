/* SPDX-License-Identifier: MIT */
/* The lock table's tree: nodes (directories, locks and a lock's other
 * names), their inode numbers and names, the checks a new or removed name
 * passes, attributes, and the walkers from a store's paths to nodes. The
 * bottom of the table besides its accounting (lt_quota.c) and what it
 * owes outside the mutex (lt_deliver.c). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "clock.h"
#include "globs.h"
#include "lt_internal.h"

/* ---- nodes ------------------------------------------------------------------ */

static uint64_t name_hash(uint64_t parent, const char *name) {
        return htab_hash_bytes(htab_hash_u64(parent), name, strlen(name));
}

/* A node of kind named name (copied), on no list; NULL without memory. */
static struct node *node_alloc(enum lt_kind kind, const char *name) {
        struct node *n = calloc(1, sizeof(*n));
        if (!n)
                return NULL;
        n->name = strdup(name);
        if (!n->name) {
                free(n);
                return NULL;
        }
        n->kind = kind;
        list_init(&n->sib);
        list_init(&n->children);
        list_init(&n->hl);
        list_init(&n->all);
        list_init(&n->wq);
        list_init(&n->shares);
        list_init(&n->order.link);
        list_init(&n->aliases);
        list_init(&n->alias_link);
        heap_entry_init(&n->deadline);
        return n;
}

void lt_remote_free(struct node *n) {
        if (!n->remote)
                return;
        free(n->remote->host);
        free(n->remote->cmdline);
        free(n->remote);
        n->remote = NULL;
}

static void node_destroy(struct node *n) {
        lt_remote_free(n);
        free(n->name);
        free(n->content);
        free(n);
}

static void node_free(struct locktable *t, struct node *n) {
        htab_remove(&t->inodes, &n->by_ino);
        node_destroy(n);
}

struct node *lt_node_new(struct locktable *t, enum lt_kind kind, const char *name) {
        struct node *n = node_alloc(kind, name);
        if (!n)
                return NULL;
        n->ino = t->next_ino++;
        n->ctime_ms = clock_wall_ms();
        htab_insert(&t->inodes, &n->by_ino, htab_hash_u64(n->ino));
        return n;
}

int lt_root_new(struct locktable *t) {
        t->root = node_alloc(LT_DIR, "");
        if (!t->root)
                return -ENOMEM;
        t->root->ino = LT_INO_ROOT;
        t->root->ctime_ms = clock_wall_ms();
        htab_insert(&t->inodes, &t->root->by_ino, htab_hash_u64(LT_INO_ROOT));
        return 0;
}

void lt_nodes_free(struct locktable *t) {
        for (size_t i = 0; t->inodes.buckets && i <= t->inodes.mask; i++) {
                struct hlink *l = t->inodes.buckets[i];
                while (l) {
                        struct hlink *next = l->next;
                        node_destroy(container_of(l, struct node, by_ino));
                        l = next;
                }
        }
        htab_free(&t->inodes);
        htab_free(&t->names);
}

void lt_node_maybe_free(struct locktable *t, struct node *n) {
        if (!n->linked && n->nlookup == 0 && n != t->root)
                node_free(t, n);
}

struct node *lt_node_by_ino(struct locktable *t, uint64_t ino) {
        uint64_t hash = htab_hash_u64(ino);
        struct node *n;
        htab_for_each_possible(&t->inodes, hash, n, struct node, by_ino)
                if (n->ino == ino)
                        return n;
        return NULL;
}

struct node *lt_name_get(struct locktable *t, const struct node *dir, const char *name) {
        uint64_t hash = name_hash(dir->ino, name);
        struct node *n;
        htab_for_each_possible(&t->names, hash, n, struct node, by_name)
                if (n->parent == dir && strcmp(n->name, name) == 0)
                        return n;
        return NULL;
}

struct node *lt_child_get(struct locktable *t, const struct node *dir, const char *name) {
        struct node *n = lt_name_get(t, dir, name);
        return n && n->target ? n->target : n;
}

void lt_node_link(struct locktable *t, struct node *dir, struct node *n) {
        n->parent = dir;
        n->parent_was = dir->ino;
        n->linked = true;
        dir->n_children++;
        list_add(&dir->children, &n->sib);
        htab_insert(&t->names, &n->by_name, name_hash(dir->ino, n->name));
}

void lt_node_unlink(struct locktable *t, struct node *n) {
        htab_remove(&t->names, &n->by_name);
        n->parent->n_children--;
        list_del(&n->sib);
        n->parent = NULL;
        n->linked = false;
}

unsigned lt_node_depth(const struct node *n) {
        unsigned d = 0;
        for (; n && n->parent; n = n->parent)
                d++;
        return d;
}

char *lt_node_path(const struct node *n) {
        size_t len = 0;
        for (const struct node *p = n; p->parent; p = p->parent)
                len += strlen(p->name) + 1;
        char *s = malloc(len ? len + 1 : 2);
        if (!s)
                return NULL;
        if (!len)
                return strcpy(s, "/");
        s[len] = '\0';
        for (const struct node *p = n; p->parent; p = p->parent) {
                size_t l = strlen(p->name);
                len -= l;
                memcpy(s + len, p->name, l);
                s[--len] = '/';
        }
        return s;
}

/* ---- checks and attributes ---------------------------------------------------- */

bool lt_name_is_meta(const struct node *dir, const char *name) {
        return dir->ino == LT_INO_ROOT && strcmp(name, LT_META_DIR_NAME) == 0;
}

bool lt_ino_is_meta_file(uint64_t ino) {
        return ino == LT_INO_META_LOCKS || ino == LT_INO_META_METRICS;
}

int lt_dir_get(struct locktable *t, uint64_t ino, struct node **ret) {
        if (ino == LT_INO_META_DIR)
                return -EACCES;
        if (lt_ino_is_meta_file(ino))
                return -ENOTDIR;
        struct node *d = lt_node_by_ino(t, ino);
        if (!d || (!d->linked && d != t->root))
                return -ENOENT;
        if (lt_is_dirlock(d))
                return -EACCES; /* a directory lock holds nothing (SPEC R7.5) */
        if (d->kind != LT_DIR)
                return -ENOTDIR;
        *ret = d;
        return 0;
}

int lt_dir_for_removal(struct locktable *t, uint64_t parent, const char *name,
                       struct node **ret) {
        int r = lt_dir_get(t, parent, ret);
        if (r == 0 && lt_name_is_meta(*ret, name))
                r = -EACCES;
        return r;
}

int lt_name_check(const char *name) {
        size_t len = strlen(name);
        if (len == 0)
                return -ENOENT;
        if (len > LT_NAME_MAX)
                return -ENAMETOOLONG;
        return 0;
}

int lt_room_check(struct locktable *t, const struct node *dir, const char *name) {
        int r = lt_name_check(name);
        if (r < 0)
                return r;
        if (t->cfg.max_depth && lt_node_depth(dir) + 1 > t->cfg.max_depth)
                return -ENAMETOOLONG;
        if (t->cfg.max_locks && t->n_nodes >= t->cfg.max_locks)
                return -ENOSPC;
        return 0;
}

void lt_fill_attr(const struct node *n, struct lt_attr *a) {
        bool live = n->linked || n->ino == LT_INO_ROOT;
        *a = (struct lt_attr){
                .ino = n->ino,
                .kind = n->kind,
                .uid = n->uid,
                .gid = n->gid,
                .ctime_ms = n->ctime_ms,
        };
        if (n->kind == LT_DIR) {
                a->mode = S_IFDIR | 01777;
                a->nlink = live ? 2 : 0;
                a->mtime_ms = n->ctime_ms;
        } else if (lt_is_dirlock(n)) { /* an empty directory of its holder's */
                a->kind = LT_DIR;
                a->mode = S_IFDIR | 0755;
                a->nlink = live ? 2 : 0;
                a->mtime_ms = n->renewed_at_ms;
        } else {
                a->mode = S_IFREG | 0644;
                a->nlink = live ? 1 + n->n_aliases : 0;
                a->mtime_ms = n->renewed_at_ms;
        }
        if (n->times_set) {
                a->times_set = true;
                a->atime = n->atime;
                a->mtime = n->mtime;
        }
}

bool lt_is_dirlock(const struct node *n) {
        return n->kind == LT_LOCK && n->how == LOCK_HOW_MKDIR;
}

bool lt_dirlock_name(const struct locktable *t, const char *name) {
        return globs_match(t->cfg.dirlocks, name);
}

bool lt_is_raw(const struct locktable *t, const struct node *n) {
        return n->kind == LT_LOCK && n->linked && !lt_is_dirlock(n) &&
               globs_match(t->cfg.raw, n->name);
}

void lt_fill_lock_attr(const struct locktable *t, const struct node *n, struct lt_attr *a) {
        lt_fill_attr(n, a);
        if (lt_is_raw(t, n)) {
                a->raw = true;
                a->size = n->content_len;
        }
}

void lt_fill_meta_attr(uint64_t ino, struct lt_attr *a) {
        *a = (struct lt_attr){ .ino = ino, .mtime_ms = clock_wall_ms() };
        a->ctime_ms = a->mtime_ms;
        if (ino == LT_INO_META_DIR) {
                a->kind = LT_DIR;
                a->mode = S_IFDIR | 0555;
                a->nlink = 2;
        } else {
                a->kind = LT_META_FILE;
                a->mode = S_IFREG | 0444;
                a->nlink = 1;
        }
}

/* ---- directories ----------------------------------------------------------------- */

struct node *lt_dir_new(struct locktable *t, struct node *dir, const char *name, uid_t uid,
                        gid_t gid) {
        struct node *n = lt_node_new(t, LT_DIR, name);
        if (!n)
                return NULL;
        n->uid = uid;
        n->gid = gid;
        lt_node_link(t, dir, n);
        t->n_nodes++;
        t->m.directories++;
        lt_quota_charge(t, n);
        return n;
}

void lt_dir_remove(struct locktable *t, struct node *n) {
        lt_quota_uncharge(t, n);
        lt_node_unlink(t, n);
        t->n_nodes--;
        t->m.directories--;
}

/* ---- a lock's other names (link(2)) ---------------------------------------------- */

int lt_alias_add(struct locktable *t, struct node *n, struct node *dir, const char *name,
                 struct node **ret) {
        struct node *a = node_alloc(LT_LOCK, name);
        if (!a)
                return -ENOMEM;
        a->target = n;
        list_add(&n->aliases, &a->alias_link);
        n->n_aliases++;
        lt_node_link(t, dir, a);
        t->n_nodes++;
        lt_quota_charge(t, a); /* the lock's uid's, as at link(2) */
        if (ret)
                *ret = a;
        return 0;
}

void lt_alias_swap(struct locktable *t, struct node *n, struct node *a) {
        struct node *n_dir = n->parent, *a_dir = a->parent;
        char *n_name = n->name;
        lt_node_unlink(t, n);
        lt_node_unlink(t, a);
        n->name = a->name;
        a->name = n_name;
        lt_node_link(t, a_dir, n);
        lt_node_link(t, n_dir, a);
}

/* Free other name a, already off the tree and off its lock's list. */
static void alias_free(struct locktable *t, struct node *a) {
        lt_quota_uncharge(t, a);
        t->n_nodes--;
        node_destroy(a);
}

void lt_alias_remove(struct locktable *t, struct node *a) {
        list_del(&a->alias_link);
        a->target->n_aliases--;
        lt_node_unlink(t, a);
        alias_free(t, a);
}

void lt_drop_aliases(struct locktable *t, struct node *n, struct removals *report) {
        struct node *a;
        while ((a = list_first_entry_or_null(&n->aliases, struct node, alias_link))) {
                list_del(&a->alias_link);
                n->n_aliases--;
                lt_report(report, a->parent->ino, n->ino, a->name);
                lt_node_unlink(t, a);
                alias_free(t, a);
        }
}

void lt_name_unhook(struct locktable *t, struct node *raw, struct name_change *u) {
        struct node *n = raw->target ? raw->target : raw;
        struct node *a = raw->target ? raw
                                     : list_first_entry_or_null(&n->aliases, struct node, alias_link);
        *u = (struct name_change){ .n = n, .a = a, .a_prev = a->alias_link.prev,
                                   .n_dir = n->parent, .a_dir = a->parent };
        list_del(&a->alias_link);
        n->n_aliases--;
        lt_node_unlink(t, a);
        if (raw == n) {
                lt_node_unlink(t, n);
                u->n_name = n->name;
                n->name = a->name; /* shared with a until name_drop/name_rehook */
                lt_node_link(t, u->a_dir, n);
        }
}

void lt_name_rehook(struct locktable *t, const struct name_change *u) {
        struct node *n = u->n, *a = u->a;
        if (u->n_name) {
                lt_node_unlink(t, n);
                n->name = u->n_name;
                lt_node_link(t, u->n_dir, n);
        }
        lt_node_link(t, u->a_dir, a);
        list_insert_between(&a->alias_link, u->a_prev, u->a_prev->next);
        n->n_aliases++;
}

void lt_name_drop(struct locktable *t, const struct name_change *u) {
        if (u->n_name) {
                free(u->n_name);
                u->a->name = NULL; /* n's now */
        }
        alias_free(t, u->a);
}

/* ---- paths from a store -------------------------------------------------------------- */

int lt_dir_of(struct locktable *t, const char *path, uid_t uid, gid_t gid, struct node **ret,
              const char **name) {
        struct node *dir = t->root;
        const char *p = path;
        for (;;) {
                while (*p == '/')
                        p++;
                const char *slash = strchr(p, '/');
                if (!slash) {
                        *ret = dir;
                        *name = p;
                        return 0;
                }
                char *part = strndup(p, (size_t)(slash - p));
                if (!part)
                        return -ENOMEM;
                struct node *n = lt_name_get(t, dir, part);
                if (!n)
                        n = lt_dir_new(t, dir, part, uid, gid);
                free(part);
                if (!n)
                        return -ENOMEM;
                if (n->kind != LT_DIR)
                        return -ENOTDIR;
                dir = n;
                p = slash + 1;
        }
}

struct node *lt_node_at(struct locktable *t, const char *path) {
        struct node *n = t->root;
        const char *p = path;
        while (n && *p) {
                while (*p == '/')
                        p++;
                size_t len = strcspn(p, "/");
                char *part = strndup(p, len);
                if (!part)
                        return NULL;
                n = n->kind == LT_DIR ? lt_name_get(t, n, part) : NULL;
                free(part);
                p += len;
        }
        return n && n->target ? n->target : n;
}

bool lt_remote_path_ok(const char *path) {
        if (path[0] != '/' || !path[1])
                return false;
        const char *p = path + 1;
        size_t meta = strlen(LT_META_DIR_NAME);
        if (!strncmp(p, LT_META_DIR_NAME, meta) && (p[meta] == '/' || !p[meta]))
                return false;
        for (;;) {
                size_t len = strcspn(p, "/");
                if (len == 0 || len > LT_NAME_MAX || (len == 1 && p[0] == '.') ||
                    (len == 2 && p[0] == '.' && p[1] == '.'))
                        return false;
                if (!p[len])
                        return true;
                p += len + 1;
        }
}
