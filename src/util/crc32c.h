/* SPDX-License-Identifier: MIT */
/* CRC-32C (Castagnoli), the checksum of journal records. */
#ifndef LOCKFS_CRC32C_H
#define LOCKFS_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* The CRC-32C of len bytes at buf, continuing from crc (start with 0). */
uint32_t crc32c(uint32_t crc, const void *buf, size_t len);

#endif
