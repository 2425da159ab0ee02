/* SPDX-License-Identifier: MIT */
/* lockctl ls: list the locks held under a directory of a lockfs mount, as
 * a table (in the manner of lslocks) or as JSON. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "buf.h"
#include "lockctl.h"


enum { COL_NAME, COL_PID, COL_USER, COL_COMMAND, COL_AGE, COL_TTL, COL_FENCE, N_COLS };

static const struct {
        const char *name;
        bool right; /* numbers are right-aligned */
} columns[N_COLS] = {
        [COL_NAME] = {"NAME", false},   [COL_PID] = {"PID", true},
        [COL_USER] = {"USER", false},   [COL_COMMAND] = {"COMMAND", false},
        [COL_AGE] = {"AGE", true},      [COL_TTL] = {"TTL", true},
        [COL_FENCE] = {"FENCE", true},
};

/* One table line: terminal-safe cells and their display widths. */
struct row {
        char *cell[N_COLS];
        size_t width[N_COLS];
};

/* A lock to list: its status text and what it says. */
struct entry {
        struct lc_span doc;
        struct lc_lock lock;
};

/* Order by path, bytewise (ls(1) order in the C locale). */
static int entry_cmp(const void *a, const void *b) {
        const struct lc_lock *x = &((const struct entry *)a)->lock;
        const struct lc_lock *y = &((const struct entry *)b)->lock;
        size_t n = x->path_len < y->path_len ? x->path_len : y->path_len;
        int c = memcmp(x->path, y->path, n);

        if (c != 0)
                return c;
        return x->path_len < y->path_len ? -1 : x->path_len > y->path_len;
}

/* Whether the lock path (as lockfs names it) lies at or under rel. */
static bool under(const struct lc_lock *l, const char *rel) {
        size_t n = strlen(rel);

        if (n == 0)
                return true;
        return l->path_len >= n && memcmp(l->path, rel, n) == 0 &&
               (l->path_len == n || l->path[n] == '/');
}

static void set_cell(struct row *r, int col, const char *s, size_t n, bool escape) {
        if (escape) {
                r->cell[col] = lc_escape(s, n, true, &r->width[col]);
        } else {
                r->cell[col] = lc_oom(strndup(s, n));
                r->width[col] = n;
        }
}

static void fill_row(struct row *r, const struct lc_lock *l) {
        char buf[32];

        set_cell(r, COL_NAME, l->path, l->path_len, true);
        if (l->detached)
                snprintf(buf, sizeof(buf), "-");
        else
                snprintf(buf, sizeof(buf), "%lld", (long long)l->pid);
        set_cell(r, COL_PID, buf, strlen(buf), false);
        set_cell(r, COL_USER, l->user, l->user_len, true);
        set_cell(r, COL_COMMAND, l->comm, l->comm_len, true);
        if (l->age_ms < 0)
                snprintf(buf, sizeof(buf), "?");
        else
                lc_duration(l->age_ms, buf, sizeof(buf));
        set_cell(r, COL_AGE, buf, strlen(buf), false);
        if (l->ttl_left_ms == -1)
                snprintf(buf, sizeof(buf), "-");
        else if (l->ttl_left_ms < 0)
                snprintf(buf, sizeof(buf), "?");
        else
                lc_duration(l->ttl_left_ms, buf, sizeof(buf));
        set_cell(r, COL_TTL, buf, strlen(buf), false);
        set_cell(r, COL_FENCE, l->fence, strlen(l->fence), true);
}

static void pad(size_t n) {
        while (n-- > 0)
                putchar(' ');
}

static void print_row(char *const cell[], const size_t width[], const size_t colw[]) {
        for (int c = 0; c < N_COLS; c++) {
                if (c > 0)
                        putchar(' ');
                if (columns[c].right)
                        pad(colw[c] - width[c]);
                fputs(cell[c], stdout);
                if (!columns[c].right && c < N_COLS - 1)
                        pad(colw[c] - width[c]);
        }
        putchar('\n');
}

static void print_table(struct row *rows, size_t n, bool headings) {
        size_t colw[N_COLS], hw[N_COLS];
        char *head[N_COLS];

        for (int c = 0; c < N_COLS; c++) {
                head[c] = (char *)columns[c].name;
                hw[c] = colw[c] = strlen(columns[c].name);
                for (size_t i = 0; i < n; i++)
                        if (rows[i].width[c] > colw[c])
                                colw[c] = rows[i].width[c];
        }
        if (headings)
                print_row(head, hw, colw);
        for (size_t i = 0; i < n; i++)
                print_row(rows[i].cell, rows[i].width, colw);
}

static void print_locks(const struct entry *e, size_t n, bool headings) {
        struct row *rows = lc_oom(calloc(n ? n : 1, sizeof(*rows)));

        for (size_t i = 0; i < n; i++)
                fill_row(&rows[i], &e[i].lock);
        print_table(rows, n, headings);
        for (size_t i = 0; i < n; i++)
                for (int c = 0; c < N_COLS; c++)
                        free(rows[i].cell[c]);
        free(rows);
}

/* The listed status objects as one indented JSON array. */
static void print_json(const struct entry *e, size_t n) {
        putchar('[');
        for (size_t i = 0; i < n; i++) {
                fputs(i ? ",\n  " : "\n  ", stdout);
                lc_json_print(stdout, e[i].doc, true, 1);
        }
        fputs(n ? "\n]\n" : "]\n", stdout);
}

/* The locks of the mount's list text[0..len) that lie under rel, in
 * *ret (n of them; the caller clears and frees them). Returns 0,
 * -EINVAL when the text is not a JSON array, -EBADMSG when it is damaged
 * (what was read up to there is in *ret). */
static int collect_locks(const char *text, size_t len, const char *rel, struct entry **ret,
                         size_t *ret_n) {
        struct lc_json_iter it;
        struct lc_span elem;
        size_t cap = 0;
        int r;

        if (lc_json_iter_init(&it, (struct lc_span){text, len}, ']') < 0)
                return -EINVAL;
        while ((r = lc_json_next(&it, NULL, &elem)) > 0) {
                struct lc_lock l;

                if (lc_lock_parse(elem, &l) < 0)
                        continue; /* not a lock status: nothing to list */
                if (!under(&l, rel)) {
                        lc_lock_clear(&l);
                        continue;
                }
                if (array_grow(ret, &cap, *ret_n + 1, sizeof(**ret), 16) < 0)
                        lc_oom(NULL);
                (*ret)[(*ret_n)++] = (struct entry){elem, l};
        }
        return r < 0 ? -EBADMSG : 0;
}

/* Parse ls's options. Returns -1 to go on (*ret_dir is the directory),
 * else an exit status. */
static int ls_args(int argc, char **argv, bool *json, bool *headings, const char **ret_dir) {
        static const struct option opts[] = {
                {"json", no_argument, NULL, 'J'},
                {"noheadings", no_argument, NULL, 'n'},
                {"help", no_argument, NULL, 'h'},
                {0},
        };
        int c;

        opterr = 0;
        while ((c = getopt_long(argc, argv, ":Jnh", opts, NULL)) >= 0) {
                switch (c) {
                case 'J': *json = true; break;
                case 'n': *headings = false; break;
                case 'h': lc_usage(stdout); return 0;
                default: return lc_bad_option(c, argv);
                }
        }
        if (argc - optind > 1) {
                lc_err("ls takes one directory");
                return lc_usage_error();
        }
        *ret_dir = optind < argc ? argv[optind] : ".";
        return -1;
}

/* Find the mount that holds dir and read its list of locks. Returns -1 to
 * go on, else an exit status (the error reported). */
static int open_list(const char *dir, char **ret_root, char **ret_rel, char **ret_text,
                     size_t *ret_len) {
        _cleanup_free_ char *edir = lc_esc(dir), *eroot = NULL;
        int r = lc_find_mount(dir, ret_root, ret_rel);

        if (r == -ENOENT && access(dir, F_OK) == 0) {
                lc_err("%s is not in a lockfs mount (no .lockfs/locks.json in it or above it)",
                       edir);
                return EX_NOINPUT;
        }
        if (r < 0) {
                lc_err("cannot access %s: %s", edir, strerror(-r));
                return EX_NOINPUT;
        }
        r = lc_read_locks(*ret_root, ret_text, ret_len);
        if (r < 0) {
                eroot = lc_esc(*ret_root);
                lc_err("cannot read %s" LC_LOCKS_JSON ": %s", eroot, strerror(-r));
                return EX_NOINPUT;
        }
        return -1;
}

int lc_cmd_ls(int argc, char **argv) {
        _cleanup_free_ char *root = NULL, *rel = NULL, *text = NULL, *eroot = NULL;
        _cleanup_free_ struct entry *entries = NULL;
        bool json = false, headings = true;
        const char *dir = NULL;
        size_t len = 0, n = 0;
        int r = ls_args(argc, argv, &json, &headings, &dir);

        if (r >= 0)
                return r;
        r = open_list(dir, &root, &rel, &text, &len);
        if (r >= 0)
                return r;
        eroot = lc_esc(root);
        r = collect_locks(text, len, rel, &entries, &n);
        if (r == -EINVAL) {
                lc_err("%s" LC_LOCKS_JSON " is not a JSON array", eroot);
                return EX_DATAERR;
        }
        if (r < 0) {
                lc_err("%s" LC_LOCKS_JSON " is damaged", eroot);
                r = EX_DATAERR;
        } else {
                if (n > 1)
                        qsort(entries, n, sizeof(*entries), entry_cmp);
                if (json)
                        print_json(entries, n);
                else
                        print_locks(entries, n, headings);
                r = 0;
        }
        for (size_t i = 0; i < n; i++)
                lc_lock_clear(&entries[i].lock);
        return r;
}
