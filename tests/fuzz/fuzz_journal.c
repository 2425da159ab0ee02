/* SPDX-License-Identifier: MIT */
/* libFuzzer harness over the journal reader: the input as a journal file,
 * and the input as one record body framed with a valid length and CRC (so
 * the fuzzer reaches the body parser past the checksum), each read as every
 * format version this build reads. Decoding must
 * never read out of bounds (ASan), never loop, and every record it accepts
 * must lie inside its buffer. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "crc32c.h"
#include "journal.h"

static void decode_all(const uint8_t *data, size_t size, uint32_t version);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        for (uint32_t v = JOURNAL_VERSION_OLDEST; v <= JOURNAL_VERSION; v++)
                decode_all(data, size, v);
        uint8_t *framed = malloc(size + 8);
        if (!framed)
                return 0;
        uint32_t n = (uint32_t)size, crc = crc32c(0, data, size);
        memcpy(framed, &n, 4);
        memcpy(framed + 4, &crc, 4);
        memcpy(framed + 8, data, size);
        for (uint32_t v = JOURNAL_VERSION_OLDEST; v <= JOURNAL_VERSION; v++)
                decode_all(framed, size + 8, v);
        free(framed);
        return 0;
}

static void decode_all(const uint8_t *data, size_t size, uint32_t version) {
        char boot[JOURNAL_BOOT_ID_LEN + 1];
        size_t off = 0;
        uint32_t header_version;
        if (journal_header_check(data, size, boot, &header_version) == 0) {
                off = JOURNAL_HEADER_SIZE;
                version = header_version;
        }
        struct jrec r;
        int rc;
        while ((rc = journal_next(data, size, version, &off, &r)) == 1) {
                if (r.raw < data || r.raw + r.raw_len > data + size || off > size)
                        __builtin_trap();
                const uint8_t *p = r.aliases;
                for (size_t i = 0; r.type == JOURNAL_LOCK && i < r.n_aliases; i++) {
                        uint64_t parent;
                        const char *name;
                        size_t len;
                        p = jrec_alias_next(p, &parent, &name, &len);
                        if ((const uint8_t *)name + len > r.raw + r.raw_len || len == 0)
                                __builtin_trap();
                }
                if (r.type == JOURNAL_LOCK && r.content + r.content_len > r.raw + r.raw_len)
                        __builtin_trap();
        }
        if (rc != 0 && rc != -EBADMSG && rc != -ENODATA)
                __builtin_trap();
}
