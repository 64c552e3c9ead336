/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * crc32c (Castagnoli, polynomial 0x1EDC6F41, reflected), the checksum of
 * every posfs metadata block and WAL record.
 */
#ifndef POSFS_CRC32C_H
#define POSFS_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/*
 * Extend crc (0 to start) over len bytes of buf, with the usual pre- and
 * post-inversion, so that pfs_crc32c(pfs_crc32c(0, a, n), b, m) is the crc
 * of a followed by b. Uses the CPU's crc32 instruction (x86 SSE4.2, ARMv8
 * CRC) when present, a slicing-by-8 table otherwise. Thread-safe.
 */
uint32_t pfs_crc32c(uint32_t crc, const void *buf, size_t len);

/* The portable table implementation, for tests and comparison. */
uint32_t pfs_crc32c_sw(uint32_t crc, const void *buf, size_t len);

/* "hw" or "sw": which implementation pfs_crc32c uses on this CPU. */
const char *pfs_crc32c_impl(void);

/*
 * Known-answer self-test of both implementations (crc32c("123456789") is
 * 0xE3069283). Returns 0, or -EIO when an implementation is wrong.
 */
int pfs_crc32c_selftest(void);

#endif /* POSFS_CRC32C_H */
