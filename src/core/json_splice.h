/* SPDX-License-Identifier: MIT */
/* Splicing a holder's JSON object into the status document (SPEC R4.2):
 * its members are copied as written, not re-printed by cJSON, which would
 * round numbers (9007199254740993) and cut strings at \u0000. Where cJSON
 * is laxer than JSON (raw control characters in strings, a bad \u escape,
 * numbers such as 01, 1. or -.5, control bytes between tokens), the copy
 * is repaired so the output stays JSON. */
#ifndef LOCKFS_JSON_SPLICE_H
#define LOCKFS_JSON_SPLICE_H

#include <stddef.h>

#include "buf.h"

/* Append to b the members of the object s[0..n), each as
 * "\n\t<key>:\t<value>," (the layout cJSON_Print gives the members of a
 * top-level object, so they can go just after its '{'). s must be text
 * cJSON accepted as one object of count members (the scan relies on that
 * for meaning, but checks every index against n). Left out: a member
 * whose decoded key (as cJSON decodes it) is one of drop[] (a
 * NULL-terminated list, or NULL), and all but the last of members with
 * the same decoded key (JSON readers take the last one). Returns 0, or
 * -ENOMEM with b holding part of the members. */
int json_splice_members(struct buf *b, const char *s, size_t n, size_t count,
                        const char *const *drop);

#endif
