/* SPDX-License-Identifier: MIT */
/* Render a lock's live JSON status and the metrics page. What a holder
 * wrote is read by claim.h (included here for the table, which calls
 * status_parse_claim). */
#ifndef LOCKFS_STATUS_H
#define LOCKFS_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "claim.h"
#include "lockview.h"

/* Render one lock as a JSON object followed by "\n" (SPEC R4.1-R4.4):
 * the holder's object fields at top level (or its text as "content"),
 * "pid" and "created_at" forced to the truth, and a "lockfs" object with
 * the daemon's facts. now_ms is the wall clock in ms; host is this
 * machine's name. Returns a malloc'd NUL-terminated string and its length
 * in *ret_len, or NULL on allocation failure. */
char *status_render(const struct lock_view *v, int64_t now_ms, const char *host,
                    size_t *ret_len);

/* Render n locks as a JSON array of the same objects, followed by "\n". */
char *status_render_array(const struct lock_view *v, size_t n, int64_t now_ms,
                          const char *host, size_t *ret_len);

/* A piece of that array, for reading it in pieces: "[" when open, then
 * the n locks, each after ",\n" unless first (v[0] is the array's first
 * member), then "]\n" when close. The pieces of one array, in order, make
 * exactly the text status_render_array gives for all their locks. Returns
 * a malloc'd NUL-terminated string (possibly "") or NULL on allocation
 * failure. */
char *status_render_piece(const struct lock_view *v, size_t n, bool open, bool first,
                          bool close, int64_t now_ms, const char *host, size_t *ret_len);

/* Format ms since the epoch as ISO-8601 UTC with milliseconds,
 * "2026-11-26T17:53:33.123Z", into buf (at least 32 bytes). */
/* a - b, saturated to INT64_MIN .. INT64_MAX instead of overflowing (times
 * may come from another host, or from a forged value). */
int64_t status_sub_sat(int64_t a, int64_t b);
void status_format_time(int64_t ms, char *buf, size_t len);

#endif
