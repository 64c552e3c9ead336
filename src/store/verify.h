/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the store checks of the block pointers it follows (src/store/
 * verify.c), so that a crafted image cannot make a read loop forever, read
 * past a buffer, or reach another file's data.
 *
 * Invariants (cited as V1..V3):
 *   V1. Every extent record the store follows (inline in an onode or in an
 *       extent-tree leaf) passes pfs_extent_from_disk (len > 0, lblk + len
 *       <= POSFS_FILE_BLOCKS_MAX, no wrap) and maps device blocks inside
 *       the data area of one shard: never the head, a shard header, a WAL
 *       or a checksum table. A record that does not is -EUCLEAN for its
 *       object, reported once (pfs_store_opts.object_error).
 *   V2. A record that was on the device when the store was opened (its
 *       block's LSN is below open_txid) maps no block that was free then
 *       (the free space at open, kept per shard: "free0"). Blocks written
 *       since carry newer LSNs and were made by this store, so a record
 *       that points at space a later allocation hands to another file is
 *       refused however long the reader waits for that allocation. Two
 *       files that share blocks both allocated at open (a cross-link) are
 *       fsck's to find (pass 3), as on ext4.
 *   V3. The checks of V2 run when a block enters the cache from the
 *       device, the only time its records are known to be as they were at
 *       open: an extent leaf (of one object) that fails is -EUCLEAN; a
 *       radix leaf holds the onodes of several objects, so the objects
 *       whose inline extents fail go on the shard's list of bad onodes
 *       (pfs_verify_bad_onode), and the leaf serves the others. The blocks
 *       replay left in the cache, and the onodes cached, are dropped once
 *       free0 is taken, so that none escapes the checks.
 * Without loaded space (fsck) V2 is not checked: the checker walks every
 * reference itself.
 */
#ifndef POSFS_STORE_VERIFY_H
#define POSFS_STORE_VERIFY_H

#include <stdbool.h>
#include <stdint.h>

#include "posfs/disk.h"

struct pfs_store;
struct pfs_shard;

/* One shard's free extents at open, sorted by start (V2), and the onodes
 * found bad when their radix leaf was read (V3). Under the shard lock
 * once the store is open (free0 does not change). */
struct pfs_free0 {
	uint64_t *start;
	uint64_t *len;
	size_t n;
	uint64_t *bad;
	size_t nbad, bad_cap;
};

/* Take every shard's free0 from its loaded allocator, note open_txid and
 * drop the clean cached blocks (V3). 0 or -ENOMEM. */
int pfs_verify_open(struct pfs_store *st);

/* Free what pfs_verify_open took. */
void pfs_verify_close(struct pfs_store *st);

/* [pblk, pblk + n) is inside the data area of one shard. */
bool pfs_verify_data_range(struct pfs_store *st, uint64_t pblk, uint64_t n);

/*
 * An extent record of object oid as the store follows it: V1, and V2 when
 * lsn (of the block that holds it) is below open_txid. 0, or -EUCLEAN
 * reported once for oid.
 */
int pfs_verify_extent(struct pfs_store *st, uint64_t oid, const struct pfs_dextent *d,
		      uint64_t lsn);

/* The inline extents of an onode read from a radix leaf of that lsn. */
int pfs_verify_onode(struct pfs_store *st, const struct pfs_onode *o, uint64_t lsn);

/* Was object oid's onode found bad when its radix leaf was read (V3)? */
bool pfs_verify_bad_onode(const struct pfs_shard *sh, uint64_t oid);

/*
 * The content check of a block read from the device, by its type (after
 * its header and checksum verified): an extent-tree leaf's records (V1,
 * V2: -EUCLEAN), a radix leaf's onodes (V2: the bad ones are noted).
 */
int pfs_verify_block(struct pfs_store *st, const void *data, const struct pfs_blockhdr *h);

#endif /* POSFS_STORE_VERIFY_H */
