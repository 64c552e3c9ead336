/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Shared blobs (src/store/refcount.c): reference counts of device blocks
 * that several extents point at (clones). Blocks without a record have one
 * owner. Each function needs the shard that holds the blocks locked by tx
 * (-EXDEV otherwise: the caller retries with that shard in the
 * transaction).
 */
#ifndef POSFS_STORE_REFCOUNT_H
#define POSFS_STORE_REFCOUNT_H

#include <stdint.h>

struct pfs_tx;

/* One more extent points at [pblk, pblk+n). */
int pfs_refcount_inc(struct pfs_tx *tx, uint64_t pblk, uint64_t n);

/* One extent fewer points at [pblk, pblk+n): blocks left with no owner
 * are freed (pfs_tx_free_data). */
int pfs_refcount_dec(struct pfs_tx *tx, uint64_t pblk, uint64_t n);

/* The count of pblk and how many blocks from pblk on have that same count
 * (UINT64_MAX - pblk when the rest of the space has one owner). */
int pfs_refcount_get(struct pfs_tx *tx, uint64_t pblk, uint32_t *refs, uint64_t *run);

#endif
