/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Free space on disk: each shard's free-space B+tree, kept equal to its
 * allocator plus the ranges waiting for the next checkpoint (W4).
 *
 * Allocation decisions are made in memory (alloc.c); a transaction notes
 * each allocation and free, and at commit pfs_space_apply carries them
 * into the free trees, in order. Updating a free tree may itself allocate
 * or release tree nodes, which are noted in turn and applied in the same
 * loop until nothing is left: the loop ends because every pass shrinks or
 * grows the tree by at most one node per change.
 *
 * Invariants:
 *   F1. After every commit, a shard's free tree holds exactly the blocks
 *       that no structure references, and free_blocks in its header is
 *       their count.
 *   F2. Freeing a range that overlaps a free one is corruption (a double
 *       free): -EUCLEAN, never a silent merge.
 */
#include <errno.h>
#include <string.h>

#include "format/endian.h"
#include "store/btree.h"
#include "store/store_internal.h"

static void free_tree(struct pfs_shard *sh, struct pfs_btree *bt)
{
	bt->ops = &pfs_btree_free_ops;
	bt->root = &sh->hdr.free;
	bt->shard = sh->index;
	bt->owner = POSFS_OWNER_SHARD(sh->index);
}

static struct pfs_dfree rec_make(uint64_t start, uint64_t len)
{
	struct pfs_dfree r = { .start = le64_put(start), .len = le64_put(len) };

	return r;
}

/* Take [s, s+n) out of the free tree: it lies inside one free record. */
static int tree_alloc(struct pfs_tx *tx, struct pfs_shard *sh, uint64_t s, uint64_t n)
{
	struct pfs_btree bt;
	struct pfs_dfree r, nr;
	uint64_t rs, re;
	int ret;

	free_tree(sh, &bt);
	ret = pfs_btree_lookup_le(tx, &bt, s, &r);
	if (ret)
		return ret == -ENOENT ? -EUCLEAN : ret;
	rs = le64_get(r.start);
	re = rs + le64_get(r.len);
	if (s + n > re || s < rs)
		return -EUCLEAN;	/* allocated space the tree says is in use */
	if (rs == s && re == s + n) {
		ret = pfs_btree_delete(tx, &bt, rs);
	} else if (rs == s) {
		nr = rec_make(s + n, re - s - n);
		ret = pfs_btree_replace(tx, &bt, rs, &nr);
	} else {
		nr = rec_make(rs, s - rs);
		ret = pfs_btree_update(tx, &bt, &nr);
		if (!ret && re > s + n) {
			nr = rec_make(s + n, re - s - n);
			ret = pfs_btree_insert(tx, &bt, &nr);
		}
	}
	if (!ret)
		sh->hdr.free_blocks -= n;
	return ret;
}

/* Put [s, s+n) into the free tree, merged with its neighbours (F2). */
static int tree_free(struct pfs_tx *tx, struct pfs_shard *sh, uint64_t s, uint64_t n)
{
	struct pfs_btree bt;
	struct pfs_dfree l, r, nr;
	bool has_l, has_r, join_l, join_r;
	uint64_t ls = 0, le = 0, rs = 0, rl = 0;
	int ret;

	free_tree(sh, &bt);
	ret = pfs_btree_lookup_le(tx, &bt, s, &l);
	if (ret && ret != -ENOENT)
		return ret;
	has_l = !ret;
	if (has_l) {
		ls = le64_get(l.start);
		le = ls + le64_get(l.len);
		if (le > s)
			return -EUCLEAN;	/* F2 */
	}
	ret = pfs_btree_lookup_ge(tx, &bt, s, &r);
	if (ret && ret != -ENOENT)
		return ret;
	has_r = !ret;
	if (has_r) {
		rs = le64_get(r.start);
		rl = le64_get(r.len);
		if (rs < s + n)
			return -EUCLEAN;	/* F2 */
	}
	join_l = has_l && le == s;
	join_r = has_r && rs == s + n;
	if (join_l && join_r) {
		ret = pfs_btree_delete(tx, &bt, rs);
		if (!ret) {
			nr = rec_make(ls, le - ls + n + rl);
			ret = pfs_btree_update(tx, &bt, &nr);
		}
	} else if (join_l) {
		nr = rec_make(ls, le - ls + n);
		ret = pfs_btree_update(tx, &bt, &nr);
	} else if (join_r) {
		nr = rec_make(s, n + rl);
		ret = pfs_btree_replace(tx, &bt, rs, &nr);
	} else {
		nr = rec_make(s, n);
		ret = pfs_btree_insert(tx, &bt, &nr);
	}
	if (!ret)
		sh->hdr.free_blocks += n;
	return ret;
}

int pfs_space_apply(struct pfs_tx *tx)
{
	struct pfs_store *st = pfs_tx_store(tx);
	int ret = 0;

	/* the count grows while tree nodes are allocated and released */
	for (size_t i = 0; !ret && i < pfs_tx_space_count(tx); i++) {
		struct pfs_space_change c = *pfs_tx_space_at(tx, i);
		struct pfs_shard *sh = &st->shards[c.shard];

		ret = c.is_free ? tree_free(tx, sh, c.start, c.len)
				: tree_alloc(tx, sh, c.start, c.len);
	}
	return ret;
}

int pfs_space_load(struct pfs_store *st, struct pfs_shard *sh, struct pfs_tx *tx)
{
	struct pfs_btree bt;
	struct pfs_btree_cur cur;
	struct pfs_dfree r;
	uint64_t sum = 0, prev_end = 0;
	int ret;

	(void)st;
	free_tree(sh, &bt);
	pfs_btree_cur_init(&cur, tx, &bt);
	ret = pfs_btree_cur_seek(&cur, 0, &r);
	while (!ret) {
		uint64_t s = le64_get(r.start), n = le64_get(r.len);

		if (s < sh->geo.data_start || s + n > sh->geo.data_start + sh->geo.data_blocks ||
		    s < prev_end) {
			ret = -EUCLEAN;
			break;
		}
		ret = pfs_alloc_add_free(&sh->alloc, s, n);
		if (ret) {
			ret = ret == -ENOMEM ? ret : -EUCLEAN;
			break;
		}
		sum += n;
		prev_end = s + n;
		ret = pfs_btree_cur_next(&cur, &r);
	}
	pfs_btree_cur_release(&cur);
	if (ret == -ENOENT)
		ret = 0;
	if (!ret && sum != sh->hdr.free_blocks)
		ret = -EUCLEAN;
	return ret;
}

/* ---- fsck: a new free tree ------------------------------------------------ */

#define REBUILD_CHUNK 256u	/* extents per transaction */

/*
 * The tree is built by the commit machinery itself: each chunk of extents
 * is added to the allocator and noted as tree-only frees; pfs_space_apply
 * inserts them, and the nodes it allocates come from extents already
 * noted (earlier in the same loop, or in an earlier chunk), so that every
 * allocation finds its blocks in the tree (F1 holds after each commit).
 */
int pfs_space_rebuild(struct pfs_store *st, uint32_t shard, pfs_space_next_fn next, void *arg)
{
	struct pfs_shard *sh;
	uint64_t prev_end = 0, start, len;
	bool first = true, more = true;
	int ret = 0;

	if (shard >= st->nshards)
		return -EINVAL;
	sh = &st->shards[shard];
	ret = pfs_store_checkpoint(st);
	st->space_loaded = true;	/* from here on the tree follows */
	while (!ret && more) {
		struct pfs_tx *tx;

		ret = pfs_tx_begin(st, &shard, 1, &tx);
		if (ret)
			break;
		if (first) {
			/* the old tree's blocks are among the extents given */
			sh->hdr.free = (struct pfs_tree_root){ 0, 0 };
			sh->hdr.free_blocks = 0;
			pfs_alloc_fini(&sh->alloc);
			ret = pfs_alloc_init(&sh->alloc);
			first = false;
		}
		for (unsigned n = 0; !ret && n < REBUILD_CHUNK; n++) {
			ret = next(arg, &start, &len);
			if (ret == -ENOENT) {
				ret = 0;
				more = false;
				break;
			}
			if (ret)
				break;
			if (!len || start < sh->geo.data_start || start < prev_end ||
			    (prev_end && start == prev_end) ||
			    start + len > sh->geo.data_start + sh->geo.data_blocks) {
				ret = -EUCLEAN;
				break;
			}
			prev_end = start + len;
			ret = pfs_alloc_add_free(&sh->alloc, start, len);
			if (!ret)
				ret = pfs_tx_space_tree_free(tx, shard, start, len);
		}
		if (ret) {
			pfs_tx_abort(tx);
			break;
		}
		ret = pfs_tx_commit_durable(tx);
		if (!ret && (pfs_store_wal_full(st) || !more))
			ret = pfs_store_checkpoint(st);
	}
	return ret;
}
