/* SPDX-License-Identifier: MIT */
/* Glob lists (globs.h). */
#include <errno.h>
#include <fnmatch.h>
#include <stdlib.h>
#include <string.h>

#include "globs.h"

struct globs {
        size_t n;
        char *text;   /* the spec, each GLOBS_SEP turned into a NUL */
        char **glob;  /* n pointers into text */
};

/* The number of globs in spec, or -EINVAL (see globs_parse). */
static int count_globs(const char *spec) {
        if (!*spec)
                return 0;
        int n = 1;
        const char *start = spec;
        for (const char *p = spec;; p++) {
                if (*p != GLOBS_SEP && *p)
                        continue;
                if (p == start || memchr(start, '/', (size_t)(p - start)))
                        return -EINVAL;
                if (!*p)
                        return n;
                n++;
                start = p + 1;
        }
}

int globs_check(const char *spec) {
        int n = count_globs(spec);
        return n < 0 ? n : 0;
}

int globs_parse(const char *spec, struct globs **ret) {
        int n = count_globs(spec);
        if (n < 0)
                return n;
        struct globs *g = calloc(1, sizeof(*g));
        if (!g)
                return -ENOMEM;
        g->text = strdup(spec);
        g->glob = calloc((size_t)n + 1, sizeof(*g->glob));
        if (!g->text || !g->glob) {
                globs_free(g);
                return -ENOMEM;
        }
        for (char *p = g->text; n > 0; p++) {
                g->glob[g->n++] = p;
                p = strchrnul(p, GLOBS_SEP);
                if (!*p)
                        break;
                *p = '\0';
        }
        *ret = g;
        return 0;
}

bool globs_match(const struct globs *g, const char *name) {
        for (size_t i = 0; g && i < g->n; i++)
                if (fnmatch(g->glob[i], name, 0) == 0)
                        return true;
        return false;
}

size_t globs_count(const struct globs *g) {
        return g ? g->n : 0;
}

void globs_free(struct globs *g) {
        if (!g)
                return;
        free(g->glob);
        free(g->text);
        free(g);
}
