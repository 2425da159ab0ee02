/* SPDX-License-Identifier: MIT */
/* CRC-32C, table-driven (one byte per step); fast enough for records of a
 * few hundred bytes. */
#include <pthread.h>

#include "crc32c.h"

static uint32_t table[256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_init(void) {
        for (uint32_t i = 0; i < 256; i++) {
                uint32_t c = i;
                for (int k = 0; k < 8; k++)
                        c = c & 1 ? (c >> 1) ^ 0x82f63b78u : c >> 1;
                table[i] = c;
        }
}

uint32_t crc32c(uint32_t crc, const void *buf, size_t len) {
        pthread_once(&table_once, table_init);
        const unsigned char *p = buf;
        crc = ~crc;
        while (len--)
                crc = table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
        return ~crc;
}
