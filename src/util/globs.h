/* SPDX-License-Identifier: MIT */
/* A list of fnmatch(3) globs, as an option gives it ("*.pid:*.PID"),
 * matched against one name (globs.c). */
#ifndef LOCKFS_GLOBS_H
#define LOCKFS_GLOBS_H

#include <stdbool.h>
#include <stddef.h>

struct globs;

/* The separator of globs in a list: ':' (a -o list already uses ','). */
#define GLOBS_SEP ':'

/* Parse spec, globs separated by GLOBS_SEP, into *ret (globs_free it).
 * "" is the empty list. An empty glob ("a::b", a leading or trailing ':')
 * or one with a '/' (it would never match a single name) is -EINVAL;
 * -ENOMEM. */
int globs_parse(const char *spec, struct globs **ret);
/* Check spec as globs_parse would, without keeping the list: 0 or -EINVAL. */
int globs_check(const char *spec);
/* True when name (one path component) matches a glob of g, by fnmatch(3)
 * without flags: '*' and '?' also match a leading '.'. NULL, like the
 * empty list, matches nothing. Any thread; g does not change. */
bool globs_match(const struct globs *g, const char *name);
/* The number of globs in g (0 for NULL). */
size_t globs_count(const struct globs *g);
/* NULL is a no-op. */
void globs_free(struct globs *g);

#endif
