/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Data checksums (src/store/csum.c): the crc32c of every csum_chunk bytes
 * of every data block, kept in its shard's checksum table (struct
 * pfs_dcsum, format.h) and changed in the same transaction as the data.
 *
 * Invariants (cited as C1..C3):
 *   C1. Whenever a transaction changes a data block's bytes (in place
 *       through the WAL, or out of place before its commit), it records
 *       the block's checksums in that transaction: a crash leaves either
 *       both the old bytes and checksums or both the new.
 *   C2. Bytes read from the device are checked before they are returned
 *       or merged into a write; a block that does not verify is an error
 *       (-EIO to the caller, reported once), never data.
 *   C3. A cached data block flagged PFS_BUF_CSUM_OK matches its recorded
 *       checksums; the flag is set when they are checked or recorded.
 * Without data_csum (csum_chunk 0) every call does nothing.
 */
#ifndef POSFS_STORE_CSUM_H
#define POSFS_STORE_CSUM_H

#include <stdint.h>

struct pfs_tx;

/* Record the checksums of n data blocks from blkno (one shard's, locked by
 * tx), whose bytes are data (n blocks). Errors: those of pfs_tx_get. */
int pfs_csum_record(struct pfs_tx *tx, uint64_t blkno, uint64_t n, const uint8_t *data);

/*
 * Check n data blocks from blkno (one shard's, locked by tx, which may be
 * a read transaction) against their recorded checksums: 0, or -EBADMSG
 * with *bad the first block that does not verify.
 */
int pfs_csum_check(struct pfs_tx *tx, uint64_t blkno, uint64_t n, const uint8_t *data,
		   uint64_t *bad);

#endif /* POSFS_STORE_CSUM_H */
