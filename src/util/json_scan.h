/* SPDX-License-Identifier: MIT */
/* A scanner over JSON text in place: where a string or a value ends, what
 * a string says (its escapes decoded), and where each object of a stream
 * of objects ends. It never parses: it finds spans, so whoever copies them
 * keeps numbers and strings exactly as written (cJSON would round integers
 * past 2^53 and cut strings at \u0000). It trusts its caller for syntax
 * (text a parser accepted, or the daemon's own output) but checks every
 * index against the length it is given, so no text makes it read past. */
#ifndef LOCKFS_JSON_SCAN_H
#define LOCKFS_JSON_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One of JSON's four whitespace bytes (space, tab, LF, CR). */
static inline bool json_is_space(char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The first index at or after i (at most n) of s[0..n) that is not JSON
 * whitespace. */
size_t json_skip_space(const char *s, size_t n, size_t i);

/* The index just past the string whose opening quote is s[i], or 0 when
 * it has no closing quote within s[0..n). A backslash escapes the byte
 * after it, whatever it is. */
size_t json_string_end(const char *s, size_t n, size_t i);

/* The index just past the value that starts at s[i] (no whitespace is
 * skipped), or 0 when there is no complete value there (i >= n, an
 * unclosed string, object or array). A string ends at its closing quote;
 * an object or array at the bracket that brings the depth back to zero
 * (depth counted with a counter, not recursion, so no nesting exhausts the
 * stack; strings inside are skipped; '{' and '[' are not told apart); a
 * number or literal is the longest run of digits, lower-case letters,
 * '+', '-', '.' and 'E' (its syntax is not checked). */
size_t json_value_end(const char *s, size_t n, size_t i);

/* Parse 4 hex digits at s (n bytes available) into *ret; false when there
 * are fewer or one is not a hex digit. */
bool json_hex4(const char *s, size_t n, uint32_t *ret);

/* Decode the \u escape whose hex digits start at s (n bytes available,
 * just past the 'u'), joining a high surrogate with a following \uDC00-
 * \uDFFF escape. Returns the bytes used after the 'u' (4, or 10 for a
 * pair) and the code point in *ret_cp (an unpaired surrogate as is), or 0
 * when s does not start with 4 hex digits. */
size_t json_u_escape(const char *s, size_t n, uint32_t *ret_cp);

/* Length of a bad \u escape (not 4 hex digits) at s[0..n), counted from
 * its backslash (n >= 2), as cJSON reads it: cJSON takes 6 bytes as
 * U+0000; this counts no more of them than are ASCII, so that a multi-byte
 * UTF-8 character after the "\u" stays whole. */
size_t json_bad_u_len(const char *s, size_t n);

/* What json_decode_string makes of a \u escape that is not 4 hex digits,
 * and of a surrogate that is not half of a pair. */
enum json_u_policy {
        /* As cJSON reads it: a bad escape is one NUL byte and takes
         * json_bad_u_len bytes; a lone surrogate is encoded as it is
         * (cJSON refuses text with one). The output is never longer than
         * the input. */
        JSON_U_AS_CJSON,
        /* For display: both become U+FFFD; a bad escape takes only its
         * "\u". The output is at most 3/2 of the input (a 2-byte "\u"
         * becomes 3 bytes). */
        JSON_U_REPLACE,
};

/* Decode the content of a JSON string, s[0..n) (inside its quotes), into
 * out, which has room for n bytes (JSON_U_AS_CJSON) or n + n / 2 + 1 bytes
 * (JSON_U_REPLACE). \b \f \n \r \t and \uXXXX (UTF-8 encoded) are
 * decoded; a backslash before any other byte gives that byte (\" \\ \/);
 * a backslash as the last byte (never the case in a closed string) is
 * kept. Returns the decoded length; out is not NUL-terminated, and may
 * hold NULs (from \u0000). */
size_t json_decode_string(const char *s, size_t n, char *out, enum json_u_policy policy);

/* An incremental framer for a byte stream of JSON objects separated by
 * nothing but JSON whitespace (an HTTP stream of JSON answers, such as
 * etcd's watch). Feed it the stream as it grows; it says where each
 * top-level object ends. It counts brackets outside strings and does not
 * check syntax: parse each object it frames. A zeroed struct starts a
 * stream. */
struct json_frame {
        size_t pos;      /* the next byte to look at */
        size_t start;    /* where the object being framed began (depth > 0) */
        size_t depth;    /* brackets open; 0 between objects */
        bool in_string;  /* inside a string of the object */
        bool escaped;    /* the byte before was a backslash in that string */
};

enum json_frame_result {
        JSON_FRAME_MORE,   /* s[0..n) ends before the next object does */
        JSON_FRAME_OBJECT, /* an object is complete: see json_frame_next */
        JSON_FRAME_BAD,    /* a byte other than whitespace or '{' between objects */
};

/* Look at the stream s[f->pos..n), where s[0..n) is the whole stream the
 * caller keeps (the same bytes at the same offsets as in earlier calls,
 * possibly more of them, minus what json_frame_shift dropped).
 * Returns JSON_FRAME_OBJECT when the object that began at *ret_start ends
 * just before *ret_end (<= n): its closing '}' (or a ']' that brings the
 * depth to zero) is s[*ret_end - 1], and f->pos == *ret_end; call again for
 * the next one. JSON_FRAME_MORE: all of s is looked at without completing
 * an object (f remembers where it is inside one); call again once the
 * stream has grown. JSON_FRAME_BAD: s[f->pos] is neither JSON whitespace
 * nor '{' outside any object; the stream is not one this framer reads
 * (f->pos stays at that byte). */
enum json_frame_result json_frame_next(struct json_frame *f, const char *s, size_t n,
                                       size_t *ret_start, size_t *ret_end);

/* How many leading bytes of s[0..n) the caller no longer needs after a
 * JSON_FRAME_MORE: all of them between objects, else those before the
 * object being framed. */
size_t json_frame_unneeded(const struct json_frame *f, size_t n);

/* The caller dropped the first k bytes (k <= json_frame_unneeded) and
 * moved the rest to offset 0: adjust f's offsets. */
void json_frame_shift(struct json_frame *f, size_t k);

#endif
