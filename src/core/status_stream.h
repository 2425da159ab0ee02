/* SPDX-License-Identifier: MIT */
/* .lockfs/locks.json read in pieces: one open file's view of the JSON
 * array of held locks, rendered a batch at a time as it is read, so an
 * open costs a cursor, and a reader only what it has not read yet of the
 * batches it asked for (charged to its budget).
 *
 * The document lists the locks held at the open that are still held when
 * the reader reaches them, in the order they were acquired, each once; its
 * text is always one valid JSON array, whatever happens to the locks
 * meanwhile. Reads must be sequential: a read may start anywhere from the
 * last read's offset (so a read whose answer was lost can be repeated) up
 * to the end of what is rendered, in practice where the last read ended;
 * an offset before or past that fails with -ESPIPE. Not thread-safe: the
 * caller serializes reads of one stream. */
#ifndef LOCKFS_STATUS_STREAM_H
#define LOCKFS_STATUS_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "locktable.h"
#include "status_budget.h"

/* Locks copied per step under the table mutex, and the content (with path
 * and cmdline) after which a step stops (always at least one lock). */
#define STATUS_STREAM_BATCH 64
#define STATUS_STREAM_BATCH_BYTES ((size_t)256 << 10)

struct status_stream;

/* A stream over t's locks for an opener of uid, rendered with host as this
 * machine's name (host must outlive the stream), charged to b (NULL: no
 * limit). -ENOMEM. */
int status_stream_new(struct locktable *t, struct status_budget *b, uid_t uid, const char *host,
                      struct status_stream **ret);
/* Bytes [off, off + size) of the document, or fewer at its end (0 bytes:
 * past the end): *ret points into the stream and stays valid until the
 * next call. -ESPIPE for an offset out of sequence; -ENOMEM when the
 * opener's budget (or memory) is exhausted and nothing is ready to read
 * (the same read may succeed later: nothing is lost). */
int status_stream_read(struct status_stream *s, uint64_t off, size_t size, const char **ret,
                       size_t *ret_len);
/* Free s and give back its charge (NULL is a no-op). */
void status_stream_free(struct status_stream *s);

#endif
