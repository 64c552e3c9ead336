/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Block verifiers (src/store/blockops.c), as xfs's buf_ops: one entry per
 * type of metadata block the trees keep, with what a block of that type
 * must be on its own, whatever tree or object holds it (level and count
 * in range, keys in order, records that decode). The trees' own reads
 * still check what only the path knows (the level it expects, the
 * separators, the owner).
 *
 * Invariants (cited as BV1, BV2):
 *   BV1. Read: a block is checked by its type's verifier when it enters
 *        the cache from the device (pfs_tx_get), after its crc and header
 *        and before any tree code reads a record of it: -EUCLEAN.
 *   BV2. Write: a block a transaction changed or made is checked before it
 *        is sealed into a WAL record (tx_prepare): a tree that left a
 *        malformed block is a bug, and the commit fails with -EPROTO
 *        instead of putting the block on the device.
 * Raw blocks (data, omap values) have no type and are not checked.
 */
#ifndef POSFS_STORE_BLOCKOPS_H
#define POSFS_STORE_BLOCKOPS_H

#include <stdint.h>

#include "posfs/disk.h"

struct pfs_block_ops {
	uint32_t magic;
	const char *name;		/* for messages: "free-space tree node" */
	/* 0, or -EUCLEAN; data holds bs bytes whose header h decoded */
	int (*verify)(uint32_t bs, const void *data, const struct pfs_blockhdr *h);
};

/* The entry of a block type; NULL for a magic the trees do not keep. */
const struct pfs_block_ops *pfs_block_ops_find(uint32_t magic);

/* Check a metadata block by its type: 0, or -EUCLEAN (an unknown type
 * too). */
int pfs_block_ops_verify(uint32_t bs, const void *data, const struct pfs_blockhdr *h);

#endif
