/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The table of metadata block types and their verifiers (see blockops.h,
 * BV1 and BV2). Each verifier lives with the code that owns the layout
 * (btree.c, omap.c, radix.c); this file says which is which, and holds
 * the one for checksum table blocks, whose layout (format.h) has no
 * header fields of its own to check.
 */
#include <errno.h>
#include <stddef.h>

#include "store/blockops.h"
#include "store/btree.h"
#include "store/omap.h"
#include "store/radix.h"

static int free_verify(uint32_t bs, const void *data, const struct pfs_blockhdr *h)
{
	return pfs_btree_node_verify(&pfs_btree_free_ops, bs, data, h);
}

static int extent_verify(uint32_t bs, const void *data, const struct pfs_blockhdr *h)
{
	return pfs_btree_node_verify(&pfs_btree_extent_ops, bs, data, h);
}

static int refcount_verify(uint32_t bs, const void *data, const struct pfs_blockhdr *h)
{
	return pfs_btree_node_verify(&pfs_btree_refcount_ops, bs, data, h);
}

/* A table block is a leaf with flags 0; its count field is unused (the
 * table's geometry says how many entries it holds). */
static int csum_verify(uint32_t bs, const void *data, const struct pfs_blockhdr *h)
{
	(void)bs;
	(void)data;
	return h->level || h->flags ? -EUCLEAN : 0;
}

static const struct pfs_block_ops block_ops[] = {
	{ POSFS_MAGIC_RADIX, "radix interior node", pfs_radix_node_verify },
	{ POSFS_MAGIC_ONODES, "radix leaf (onodes)", pfs_radix_node_verify },
	{ POSFS_MAGIC_FREE, "free-space tree node", free_verify },
	{ POSFS_MAGIC_EXTENT, "extent tree node", extent_verify },
	{ POSFS_MAGIC_REFCOUNT, "shared-blob tree node", refcount_verify },
	{ POSFS_MAGIC_OMAP, "omap tree node", pfs_omap_node_verify },
	{ POSFS_MAGIC_CSUM, "checksum table block", csum_verify },
};

const struct pfs_block_ops *pfs_block_ops_find(uint32_t magic)
{
	for (size_t i = 0; i < sizeof(block_ops) / sizeof(block_ops[0]); i++)
		if (block_ops[i].magic == magic)
			return &block_ops[i];
	return NULL;
}

int pfs_block_ops_verify(uint32_t bs, const void *data, const struct pfs_blockhdr *h)
{
	const struct pfs_block_ops *ops = pfs_block_ops_find(h->magic);

	return ops ? ops->verify(bs, data, h) : -EUCLEAN;
}
