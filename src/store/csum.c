/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Data checksums: the shard's checksum table, one crc32c per chunk of
 * every block of its data area (format.h, struct pfs_dcsum). See csum.h
 * for the invariants.
 */
#include <errno.h>

#include "format/endian.h"
#include "store/csum.h"
#include "store/store_internal.h"
#include "store/tx.h"

struct table_walk {
	struct pfs_tx *tx;
	struct pfs_store *st;
	struct pfs_shard *sh;
	uint32_t chunk, per_block, per_table;
	struct pfs_buf *b;		/* the table block at cur */
	uint64_t cur;
	bool dirty;
};

static int walk_start(struct table_walk *w, struct pfs_tx *tx, uint64_t blkno, uint64_t n,
		      bool dirty)
{
	w->tx = tx;
	w->st = pfs_tx_store(tx);
	w->chunk = w->st->sb.csum_chunk;
	if (!w->chunk || !n)
		return 1;
	w->sh = pfs_store_block_shard(w->st, blkno);
	if (!w->sh || !w->sh->geo.csum_blocks || blkno < w->sh->geo.data_start ||
	    blkno + n > w->sh->geo.data_start + w->sh->geo.data_blocks)
		return -EUCLEAN;	/* not in one shard's data area */
	w->per_block = w->st->sb.block_size / w->chunk;
	w->per_table = (uint32_t)POSFS_CSUMS_PER_BLOCK(w->st->sb.block_size);
	w->b = NULL;
	w->cur = 0;
	w->dirty = dirty;
	return 0;
}

/* The entry of chunk j of block blkno. */
static int walk_entry(struct table_walk *w, uint64_t blkno, uint32_t j, pfs_le32 **ent)
{
	uint64_t idx = (blkno - w->sh->geo.data_start) * w->per_block + j;
	uint64_t t = w->sh->geo.csum_start + idx / w->per_table;
	int ret;

	if (!w->b || t != w->cur) {
		struct pfs_block_expect exp = {
			.magic = POSFS_MAGIC_CSUM,
			.owner = POSFS_OWNER_SHARD(w->sh->index),
			.check_owner = true,
		};

		pfs_buf_put(w->b);
		w->b = NULL;
		ret = pfs_tx_get(w->tx, t, &exp, &w->b);
		if (!ret && w->dirty)
			ret = pfs_tx_dirty(w->tx, w->b);
		if (ret) {
			pfs_buf_put(w->b);
			w->b = NULL;
			return ret;
		}
		w->cur = t;
	}
	*ent = (pfs_le32 *)(pfs_buf_data(w->b) + sizeof(struct pfs_dblock_hdr)) +
	       idx % w->per_table;
	return 0;
}

/*
 * Walk the entries of n blocks from blkno: record their checksums of data
 * (bad NULL), or check them (the first block that does not verify in
 * *bad, -EBADMSG).
 */
static int walk_blocks(struct pfs_tx *tx, uint64_t blkno, uint64_t n, const uint8_t *data,
		       uint64_t *bad)
{
	struct table_walk w;
	int ret = walk_start(&w, tx, blkno, n, !bad);

	if (ret)
		return ret < 0 ? ret : 0;
	for (uint64_t i = 0; !ret && i < n; i++) {
		for (uint32_t j = 0; !ret && j < w.per_block; j++) {
			uint64_t off = (blkno + i) * w.st->sb.block_size + (uint64_t)j * w.chunk;
			uint32_t crc = pfs_data_csum(off, data + (off - blkno * w.st->sb.block_size),
						     w.chunk);
			pfs_le32 *ent;

			ret = walk_entry(&w, blkno + i, j, &ent);
			if (ret)
				break;
			if (!bad) {
				*ent = le32_put(crc);
			} else if (le32_get(*ent) != crc) {
				*bad = blkno + i;
				ret = -EBADMSG;
			}
		}
	}
	pfs_buf_put(w.b);
	return ret;
}

int pfs_csum_record(struct pfs_tx *tx, uint64_t blkno, uint64_t n, const uint8_t *data)
{
	return walk_blocks(tx, blkno, n, data, NULL);
}

int pfs_csum_check(struct pfs_tx *tx, uint64_t blkno, uint64_t n, const uint8_t *data,
		   uint64_t *bad)
{
	return walk_blocks(tx, blkno, n, data, bad);
}
