/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Shared blobs: how many extents point at a device block, for clones. The
 * record lives in the shard whose space holds the block, which may not be
 * the shard of the object that points at it (a clone across shards).
 *
 * A block referenced by one extent has no record (refs 1 is implicit); a
 * block shared by several has a record in the refcount tree of the shard
 * whose space holds it: {pblk, len, refs >= 2}. Extents that point at
 * shared blocks carry POSFS_EXTENT_SHARED. Invariants:
 *   R1. Records never overlap, and refs >= 2 in every record.
 *   R2. A block is free exactly when no extent points at it: dropping the
 *       last reference (no record left) frees it, never earlier.
 */
#include <errno.h>

#include "format/endian.h"
#include "store/btree.h"
#include "store/refcount.h"
#include "store/store_internal.h"

static int tree_of(struct pfs_tx *tx, uint64_t pblk, struct pfs_btree *bt)
{
	struct pfs_shard *sh = pfs_store_block_shard(pfs_tx_store(tx), pblk);

	if (!sh)
		return -EUCLEAN;
	if (!pfs_tx_has_shard(tx, sh->index)) {
		pfs_tx_set_xdev(tx, sh->index);
		return -EXDEV;
	}
	bt->ops = &pfs_btree_refcount_ops;
	bt->root = &sh->hdr.refcount;
	bt->shard = sh->index;
	bt->owner = POSFS_OWNER_SHARD(sh->index);
	return 0;
}

static struct pfs_drefcount rec_make(uint64_t pblk, uint64_t len, uint32_t refs)
{
	struct pfs_drefcount r = { .pblk = le64_put(pblk), .len = le32_put((uint32_t)len),
				   .refs = le32_put(refs) };

	return r;
}

/*
 * The record covering pos (0), or -ENOENT with *gap_end the start of the
 * next record (or UINT64_MAX).
 */
static int rec_at(struct pfs_tx *tx, struct pfs_btree *bt, uint64_t pos, uint64_t *start,
		  uint64_t *len, uint32_t *refs, uint64_t *gap_end)
{
	struct pfs_drefcount r;
	int ret;

	*gap_end = UINT64_MAX;
	if (!bt->root->blkno)
		return -ENOENT;
	ret = pfs_btree_lookup_le(tx, bt, pos, &r);
	if (!ret) {
		*start = le64_get(r.pblk);
		*len = le32_get(r.len);
		*refs = le32_get(r.refs);
		if (*refs < 2 || !*len)
			return -EUCLEAN;	/* R1 */
		if (pos < *start + *len)
			return 0;
	} else if (ret != -ENOENT) {
		return ret;
	}
	ret = pfs_btree_lookup_ge(tx, bt, pos, &r);
	if (!ret)
		*gap_end = le64_get(r.pblk);
	else if (ret != -ENOENT)
		return ret;
	return -ENOENT;
}

static int change(struct pfs_tx *tx, uint64_t pblk, uint64_t n, int delta)
{
	struct pfs_btree bt;
	uint64_t pos = pblk, end = pblk + n;
	int ret = tree_of(tx, pblk, &bt);

	if (ret)
		return ret;
	if (n == 0 || end < pblk)
		return -EINVAL;
	while (!ret && pos < end) {
		uint64_t start, len, gap_end, piece_end;
		uint32_t refs;
		struct pfs_drefcount r;

		ret = rec_at(tx, &bt, pos, &start, &len, &refs, &gap_end);
		if (ret == -ENOENT) {
			/* blocks with one owner */
			piece_end = gap_end < end ? gap_end : end;
			if (delta > 0) {
				r = rec_make(pos, piece_end - pos, 2);
				ret = pfs_btree_insert(tx, &bt, &r);
			} else {
				ret = pfs_tx_free_data(tx, pos, piece_end - pos);	/* R2 */
			}
			pos = piece_end;
			continue;
		}
		if (ret)
			break;
		piece_end = start + len < end ? start + len : end;
		/* split so that [pos, piece_end) is one record */
		if (pos > start) {
			uint64_t rend = start + len;

			r = rec_make(start, pos - start, refs);
			ret = pfs_btree_update(tx, &bt, &r);
			if (!ret) {
				r = rec_make(pos, rend - pos, refs);
				ret = pfs_btree_insert(tx, &bt, &r);
			}
			if (ret)
				break;
			start = pos;
			len = rend - pos;
		}
		if (piece_end < start + len) {
			r = rec_make(start, piece_end - start, refs);
			ret = pfs_btree_update(tx, &bt, &r);
			if (!ret) {
				r = rec_make(piece_end, start + len - piece_end, refs);
				ret = pfs_btree_insert(tx, &bt, &r);
			}
			if (ret)
				break;
		}
		if (delta < 0 && refs == 2) {
			ret = pfs_btree_delete(tx, &bt, start);
		} else {
			r = rec_make(start, piece_end - start, (uint32_t)((int64_t)refs + delta));
			ret = pfs_btree_update(tx, &bt, &r);
		}
		pos = piece_end;
	}
	return ret;
}

int pfs_refcount_inc(struct pfs_tx *tx, uint64_t pblk, uint64_t n)
{
	return change(tx, pblk, n, 1);
}

int pfs_refcount_dec(struct pfs_tx *tx, uint64_t pblk, uint64_t n)
{
	return change(tx, pblk, n, -1);
}

int pfs_refcount_get(struct pfs_tx *tx, uint64_t pblk, uint32_t *refs, uint64_t *run)
{
	struct pfs_btree bt;
	uint64_t start, len, gap_end;
	int ret = tree_of(tx, pblk, &bt);

	if (ret)
		return ret;
	ret = rec_at(tx, &bt, pblk, &start, &len, refs, &gap_end);
	if (ret == -ENOENT) {
		*refs = 1;
		*run = gap_end - pblk;
		return 0;
	}
	if (!ret)
		*run = start + len - pblk;
	return ret;
}
