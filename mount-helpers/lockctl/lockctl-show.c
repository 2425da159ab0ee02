/* SPDX-License-Identifier: MIT */
/* lockctl show and break: one lock's status, readable; a forced release
 * that says whom it took the lock from. */
#include <errno.h>
#include <getopt.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "buf.h"
#include "lockctl.h"
#include "lockfs_ioctl.h"

/* One "key: value" line, both terminal-safe. */
struct field {
        char *key;
        size_t key_width;
        char *value;
};

struct fields {
        struct field *v;
        size_t n, cap;
};

/* v as display text: a string decoded, null as "-", anything else as
 * compact JSON. The caller frees. */
static char *value_text(struct lc_span v) {
        _cleanup_free_ char *raw = NULL;
        size_t len = 0;
        FILE *f;

        switch (lc_json_type(v)) {
        case '"':
                if (lc_json_string(v, &raw, &len) < 0)
                        break;
                return lc_escape(raw, len, true, NULL);
        case 'n':
                return lc_oom(strdup("-"));
        default:
                break;
        }
        f = lc_oom(open_memstream(&raw, &len));
        lc_json_print(f, v, false, 0);
        if (fclose(f) != 0)
                lc_oom(NULL);
        /* JSON text has its own escapes: only unprintable bytes need ours */
        return lc_escape(raw, len, false, NULL);
}

/* A human reading of age_ms and expires_at, appended to their values. */
static char *annotate(const char *key, char *value, const struct lc_lock *l) {
        const char *prefix = "";
        char d[32];
        char *out;

        if (strcmp(key, "age_ms") == 0 && l->age_ms >= 0) {
                lc_duration(l->age_ms, d, sizeof(d));
        } else if (strcmp(key, "expires_at") == 0 && l->ttl_left_ms >= 0) {
                lc_duration(l->ttl_left_ms, d, sizeof(d));
                prefix = "in ";
        } else {
                return value;
        }
        if (asprintf(&out, "%s (%s%s)", value, prefix, d) < 0)
                lc_oom(NULL);
        free(value);
        return out;
}

/* Append the members of object obj (all but skip) to fs. */
static int add_fields(struct fields *fs, struct lc_span obj, const char *skip,
                      const struct lc_lock *l) {
        struct lc_json_iter it;
        struct lc_span k, v;
        int r = lc_json_iter_init(&it, obj, '}');

        while (r >= 0 && (r = lc_json_next(&it, &k, &v)) > 0) {
                _cleanup_free_ char *key = NULL;
                size_t key_len;
                struct field *f;

                if (lc_json_string(k, &key, &key_len) < 0)
                        return -EINVAL;
                if (skip && strcmp(key, skip) == 0 && strlen(skip) == key_len)
                        continue;
                if (array_grow(&fs->v, &fs->cap, fs->n + 1, sizeof(*fs->v), 16) < 0)
                        lc_oom(NULL);
                f = &fs->v[fs->n++];
                f->key = lc_escape(key, key_len, true, &f->key_width);
                f->value = value_text(v);
                if (l && strlen(key) == key_len)
                        f->value = annotate(key, f->value, l);
        }
        return r;
}

static void print_fields(const struct fields *fs, size_t n_daemon) {
        size_t w = 0;

        for (size_t i = 0; i < fs->n; i++)
                if (fs->v[i].key_width > w)
                        w = fs->v[i].key_width;
        for (size_t i = 0; i < fs->n; i++) {
                if (i == n_daemon && i > 0)
                        putchar('\n'); /* the holder's own fields follow */
                printf("%s:%*s %s\n", fs->v[i].key, (int)(w - fs->v[i].key_width), "",
                       fs->v[i].value);
        }
}

static void fields_free(struct fields *fs) {
        for (size_t i = 0; i < fs->n; i++) {
                free(fs->v[i].key);
                free(fs->v[i].value);
        }
        free(fs->v);
}

/* Parse the options of show/break: --json (when json is not NULL), --help.
 * Returns -1 to go on with argv[optind] as the one FILE, else an exit
 * status. */
static int file_args(int argc, char **argv, bool *json) {
        static const struct option opts[] = {
                {"json", no_argument, NULL, 'J'},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        int c;

        opterr = 0;
        while ((c = getopt_long(argc, argv, json ? ":Jh" : ":h", json ? opts : opts + 1,
                                NULL)) >= 0) {
                switch (c) {
                case 'J': *json = true; break;
                case 'h': lc_usage(stdout); return 0;
                default: return lc_bad_option(c, argv);
                }
        }
        if (argc - optind != 1) {
                lc_err("%s takes one FILE", argv[0]);
                return lc_usage_error();
        }
        return -1;
}

int lc_cmd_show(int argc, char **argv) {
        _cleanup_free_ char *doc = NULL;
        struct fields fs = {0};
        struct lc_span obj, lf;
        struct lc_lock l;
        bool json = false;
        size_t n_daemon;
        int r = file_args(argc, argv, &json);

        if (r >= 0)
                return r;
        r = lc_status_read(argv[optind], &doc, &obj);
        if (r < 0)
                return lc_status_error(argv[optind], r);
        if (json) {
                lc_json_print(stdout, obj, true, 0);
                putchar('\n');
                return 0;
        }
        if (lc_lock_parse(obj, &l) < 0 || lc_status_facts(obj, &lf) < 0)
                return lc_status_error(argv[optind], -EBADMSG);
        r = add_fields(&fs, lf, NULL, &l);
        n_daemon = fs.n;
        if (r >= 0)
                r = add_fields(&fs, obj, "lockfs", NULL);
        if (r >= 0)
                print_fields(&fs, n_daemon);
        fields_free(&fs);
        lc_lock_clear(&l);
        return r < 0 ? lc_status_error(argv[optind], -EBADMSG) : 0;
}

/* The fence of a status as a number; false when it is none. */
static bool parse_fence(const char *s, uint64_t *ret) {
        char *end;

        if (*s < '0' || *s > '9')
                return false;
        errno = 0;
        *ret = strtoull(s, &end, 10);
        return errno == 0 && *end == '\0';
}

/* Report failure r (an errno) of the break ioctl; returns the exit status. */
static int break_error(const char *name, const char *fence, int r) {
        switch (r) {
        case ESTALE:
                lc_err("%s changed hands after its status was read (fence %s is over): "
                       "nothing broken; look again and retry", name, fence);
                return LC_EXIT_CHANGED;
        case EPERM:
        case EACCES:
                lc_err("only root (or the holder's uid with -o user_break) may break %s", name);
                return EX_NOPERM;
        case ENOTTY:
        case ENOSYS:
                lc_err("the lockfs daemon serving %s cannot break a lock by its fence "
                       "(it is older than this lockctl): nothing broken; restart it, or "
                       "remove %s with rm(1), which breaks whoever holds it then", name, name);
                return LC_EXIT_OLD_DAEMON;
        case EISDIR:
                lc_err("%s is a directory, not a lock", name);
                return EX_DATAERR;
        default:
                lc_err("cannot break %s: %s", name, strerror(r));
                return EX_OSERR;
        }
}

int lc_cmd_break(int argc, char **argv) {
        _cleanup_free_ char *doc = NULL, *name = NULL, *user = NULL, *comm = NULL;
        struct lockfs_break_arg arg;
        struct lc_span obj;
        struct lc_lock l;
        const char *file;
        int fd, r = file_args(argc, argv, NULL);

        if (r >= 0)
                return r;
        file = argv[optind];
        /* Read first, and break through the descriptor read: only a lockfs
         * lock is ever broken, only the acquisition read (its fence), and
         * we can say whose it was. */
        r = lc_status_open(file, &fd, &doc, &obj);
        if (r < 0)
                return lc_status_error(file, r);
        if (lc_lock_parse(obj, &l) < 0 || !parse_fence(l.fence, &arg.fence)) {
                lc_lock_clear(&l); /* lc_lock_parse zeroes it first */
                close(fd);
                return lc_status_error(file, -EBADMSG);
        }
        name = lc_esc(file);
        user = lc_escape(l.user, l.user_len, true, NULL);
        comm = lc_escape(l.comm, l.comm_len, true, NULL);
        r = ioctl(fd, LOCKFS_IOC_BREAK, &arg) < 0 ? errno : 0;
        close(fd);
        if (r) {
                r = break_error(name, l.fence, r);
        } else if (l.detached) {
                printf("broke %s (detached, user %s), fence %s\n", name, user, l.fence);
        } else {
                printf("broke %s held by pid %lld (%s, %s), fence %s\n", name,
                       (long long)l.pid, user, comm, l.fence);
        }
        lc_lock_clear(&l);
        return r;
}
