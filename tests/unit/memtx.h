/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * memtx: an in-memory implementation of src/store/tx.h for the trees' unit
 * and model tests. Blocks live in memory; commit seals them as the real
 * journal does; abort restores before-images. It also checks the rules of
 * tx.h: a block changed without pfs_tx_dirty (T1), a reference not put
 * (T3) or a block of a type blockops.h knows left malformed (BV2) makes
 * pfs_memtx_commit fail with -EPROTO.
 */
#ifndef POSFS_TESTS_MEMTX_H
#define POSFS_TESTS_MEMTX_H

#include <stdint.h>

#include "store/tx.h"

struct pfs_memstore;

/* nshards shards of blocks_per_shard blocks each; block 0 is never used. */
struct pfs_memstore *pfs_memstore_create(uint32_t block_size, uint32_t nshards,
					 uint64_t blocks_per_shard);
void pfs_memstore_destroy(struct pfs_memstore *ms);

/* Blocks in use in a shard (committed state). */
uint64_t pfs_memstore_used(const struct pfs_memstore *ms, uint32_t shard);

/* At most this many blocks may be in use in a shard: beyond, -ENOSPC. */
void pfs_memstore_set_limit(struct pfs_memstore *ms, uint32_t shard, uint64_t max_used);

/* Make every allocation after the next n fail with -ENOSPC (n < 0: off). */
void pfs_memstore_fail_after(struct pfs_memstore *ms, long n);

/* Commit without the block verifiers (BV2), for a test that plants
 * malformed blocks, or commits after a failed operation to count
 * references. */
void pfs_memstore_unchecked(struct pfs_memstore *ms);

struct pfs_tx *pfs_memtx_begin(struct pfs_memstore *ms);
/* 0, or -EPROTO when a rule of tx.h was broken (the tx is aborted then). */
int pfs_memtx_commit(struct pfs_tx *tx);
void pfs_memtx_abort(struct pfs_tx *tx);

#endif
