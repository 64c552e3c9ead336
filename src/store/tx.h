/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The interface between the store's trees and its block cache/journal
 * (private to src/store, and to the checker in src/check, its second
 * user, which repairs through transactions under the same rules).
 *
 * Trees (radix, B+trees, omap) never do I/O and never seal checksums: they
 * read metadata blocks through a transaction, declare each block they are
 * about to change (pfs_tx_dirty), allocate and release blocks through it,
 * and change bytes in pfs_buf_data(). The transaction layer keeps a
 * before-image of every block the first time it is dirtied, so that an
 * aborted transaction (an error half way through a tree operation, ENOSPC
 * included) puts every block back as it was; at commit it fills in the LSN,
 * seals the crc32c and logs the block images in the WAL.
 *
 * Rules for tree code:
 *   T1. Call pfs_tx_dirty(tx, b) before the first change to b's bytes in
 *       this transaction. Changing a block without it is a bug the debug
 *       build catches (the commit finds the bytes changed but not logged).
 *   T2. A tree function may fail half way; it returns the error and leaves
 *       the blocks for the transaction to roll back. Whatever the caller
 *       keeps outside blocks (a struct pfs_tree_root it passed in) the
 *       caller restores on abort.
 *   T3. Every pfs_tx_get / pfs_tx_new / pfs_tx_new_raw / pfs_tx_get_raw is
 *       paired with one pfs_buf_put (pfs_tx_release consumes the reference
 *       instead). A buffer stays valid while referenced.
 *   T4. The block header (struct pfs_dblock_hdr) of a metadata block is the
 *       tree's to keep (level, nr, flags); magic, size, blkno, owner, uuid
 *       are set by pfs_tx_new and must not change; lsn and crc are set at
 *       commit.
 *
 * Locking: a transaction belongs to one thread; the shards it touches are
 * locked by the store for its whole life.
 */
#ifndef POSFS_STORE_TX_H
#define POSFS_STORE_TX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "posfs/disk.h"

struct pfs_tx;
struct pfs_buf;

/* The bytes of a buffer (block_size of them) and its block number. */
uint8_t *pfs_buf_data(struct pfs_buf *b);
uint64_t pfs_buf_blkno(const struct pfs_buf *b);

/* Drop a reference. NULL is fine. */
void pfs_buf_put(struct pfs_buf *b);

uint32_t pfs_tx_block_size(const struct pfs_tx *tx);

/*
 * Read metadata block blkno (from the cache, or the device) and check it
 * against exp (pfs_block_verify: -EBADMSG, -EUCLEAN). exp->size and
 * exp->uuid are filled in by the transaction when left 0/NULL. A block
 * the transaction itself created or changed is returned as it is now.
 * Errors: -EBADMSG, -EUCLEAN, -EIO, -ENOMEM.
 */
int pfs_tx_get(struct pfs_tx *tx, uint64_t blkno,
	       const struct pfs_block_expect *exp, struct pfs_buf **bp);

/* Declare that b is about to change in this transaction (rule T1). */
int pfs_tx_dirty(struct pfs_tx *tx, struct pfs_buf *b);

/*
 * A new metadata block allocated from shard's space: zeroed, its header
 * set (magic, size, blkno, owner, level, uuid; nr 0), already dirty.
 * Errors: -ENOSPC, -ENOMEM.
 */
int pfs_tx_new(struct pfs_tx *tx, uint32_t shard, uint32_t magic,
	       uint64_t owner, uint16_t level, struct pfs_buf **bp);

/*
 * A metadata block that is not allocated from a shard's space (a checksum
 * table block, between a shard's WAL and its data area) written anew,
 * whatever it holds now: zeroed, its header set as pfs_tx_new sets it,
 * already dirty, sealed at commit like any other (fsck's repair of a
 * damaged one). Errors: -EINVAL (a block of a data area: those come from
 * pfs_tx_new), -EROFS (a read transaction), -EUCLEAN (outside every
 * shard, or released in this transaction), -EXDEV (its shard is not
 * locked by tx), -ENOMEM.
 */
int pfs_tx_rewrite(struct pfs_tx *tx, uint64_t blkno, uint32_t magic, uint64_t owner,
		   uint16_t level, struct pfs_buf **bp);

/*
 * Give a metadata block back: its space returns to the shard's free space
 * when the transaction commits (and may be reused only once the commit is
 * durable). Consumes the reference.
 */
int pfs_tx_release(struct pfs_tx *tx, struct pfs_buf *b);

/*
 * Raw blocks: no header, no checksum of their own (whoever points at them
 * keeps a crc32c: an out-of-line omap value, for example). New raw blocks
 * are zeroed and dirty; raw blocks are logged and rolled back like any
 * other. Release a raw block with pfs_tx_release too.
 */
int pfs_tx_new_raw(struct pfs_tx *tx, uint32_t shard, struct pfs_buf **bp);
int pfs_tx_get_raw(struct pfs_tx *tx, uint64_t blkno, struct pfs_buf **bp);

#endif /* POSFS_STORE_TX_H */
