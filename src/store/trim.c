/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Discard of free space: pfs_store_trim (FITRIM, fstrim(8)) and the
 * discard of each checkpoint's released frees (pfs_store_opts.discard,
 * the daemon's -o discard).
 *
 * Which blocks may be discarded. A discarded block reads back as zeros or
 * as anything, so it must be one that nothing will read again, now or
 * after a crash:
 *   D1. Never a block in use: only extents the shard's allocator holds as
 *       free, looked up and discarded under the shard's lock, so that no
 *       allocation can take them meanwhile (every allocation is made under
 *       that lock, alloc.h).
 *   D2. Never a block a replayable WAL record still needs. A block freed
 *       by a transaction stays pending, not free, until the checkpoint
 *       after that transaction completes (W4), that is until the record
 *       that freed it, and every record before it, is behind the WAL
 *       tails (W5). Replay starts at the tails, so no record it applies
 *       names the old contents of a block the allocator holds as free;
 *       and a record after the tails that allocated such a block made it
 *       in use (D1). So the free extents are exactly "free as of the last
 *       checkpoint and not allocated since", which is what may go.
 *   D3. The discard of a checkpoint's frees (-o discard) is made in that
 *       checkpoint, after its shard headers are written and flushed (the
 *       new tails durable) and before the ranges become free: no record
 *       left to replay needs them, and nothing can allocate them until the
 *       discard is done.
 * A discard is advisory. One lost in a crash leaves the blocks free and
 * their old contents in place, which is harmless; a device that cannot
 * discard (-EOPNOTSUPP) turns -o discard off for the store.
 *
 * pfs_store_trim checkpoints first, so that what was freed since the last
 * checkpoint is free and trimmed too, then walks each shard's free extents
 * in pieces of at most TRIM_PIECE blocks, taking the shard's lock for one
 * piece at a time so that transactions go on between pieces.
 */
#include <errno.h>
#include <stdint.h>

#include "store/store_internal.h"

#define TRIM_PIECE 16384u	/* blocks discarded under one lock hold */

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

/* Count a discard of n blocks. */
static void trim_count(struct pfs_store *st, uint64_t n)
{
	__atomic_add_fetch(&st->stat_discards, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&st->stat_discard_blocks, n, __ATOMIC_RELAXED);
}

/*
 * The free extents of sh inside [first, end) of at least minblk blocks
 * (clipped to the range), discarded; *trimmed grows by the blocks.
 */
static int trim_shard(struct pfs_store *st, struct pfs_shard *sh, uint64_t first,
		      uint64_t end, uint64_t minblk, uint64_t *trimmed)
{
	uint32_t bs = st->sb.block_size;
	uint64_t pos = first;
	int ret = 0;

	while (!ret && pos < end) {
		uint64_t s, l, e;

		pthread_mutex_lock(&sh->lock);
		if (__atomic_load_n(&st->remount_ro, __ATOMIC_ACQUIRE)) {
			ret = -EROFS;
		} else if (st->err) {
			ret = st->err;
		} else if (pfs_alloc_find(&sh->alloc, pos, &s, &l) || s >= end) {
			pos = end;
		} else {
			if (s < pos) {
				l -= pos - s;
				s = pos;
			}
			e = s + min_u64(l, end - s);	/* D1: free, clipped */
			if (e - s < minblk) {
				pos = e;
			} else {
				e = s + min_u64(e - s, TRIM_PIECE);
				ret = pfs_dev_discard(st->dev, s * bs, (e - s) * bs);
				if (!ret) {
					trim_count(st, e - s);
					*trimmed += e - s;
				}
				pos = e;
			}
		}
		pthread_mutex_unlock(&sh->lock);
	}
	return ret;
}

int pfs_store_trim(struct pfs_store *st, uint64_t start, uint64_t len, uint64_t minlen,
		   uint64_t *trimmed)
{
	uint32_t bs = st->sb.block_size;
	uint64_t first, end, minblk, done = 0;
	int ret;

	*trimmed = 0;
	if (st->readonly || __atomic_load_n(&st->remount_ro, __ATOMIC_ACQUIRE))
		return -EROFS;
	if (!st->space_loaded)
		return -EINVAL;
	/* as ext4 does: less than a block, or a start or a minimum length
	 * past the file system, is -EINVAL */
	if (len < bs || start / bs >= st->sb.total_blocks ||
	    minlen / bs > st->sb.total_blocks)
		return -EINVAL;
	first = start / bs;
	end = len / bs > st->sb.total_blocks - first ? st->sb.total_blocks : first + len / bs;
	minblk = minlen ? (minlen + bs - 1) / bs : 1;

	ret = pfs_store_checkpoint(st);	/* D2: the frees since, free */
	for (uint32_t i = 0; !ret && i < st->nshards; i++) {
		struct pfs_shard *sh = &st->shards[i];
		uint64_t ds = sh->geo.data_start, de = ds + sh->geo.data_blocks;

		if (de <= first || ds >= end)
			continue;
		ret = trim_shard(st, sh, first > ds ? first : ds, end < de ? end : de, minblk,
				 &done);
	}
	*trimmed = done * bs;
	return ret;
}

/* One pending range of a checkpoint: discarded if its sequence is
 * released by it (D3). Stops at the first error. */
struct ckpt_discard {
	struct pfs_store *st;
	uint64_t upto;
};

static int ckpt_discard_one(void *arg, uint64_t start, uint64_t len, uint64_t seq)
{
	struct ckpt_discard *d = arg;
	uint32_t bs = d->st->sb.block_size;
	int ret;

	if (seq > d->upto)
		return 0;
	ret = pfs_dev_discard(d->st->dev, start * bs, len * bs);
	if (!ret)
		trim_count(d->st, len);
	return ret;
}

void pfs_store_discard_released(struct pfs_store *st, struct pfs_shard *sh, uint64_t upto)
{
	struct ckpt_discard d = { st, upto };

	if (!st->discard)
		return;
	if (pfs_alloc_foreach_pending(&sh->alloc, ckpt_discard_one, &d) == -EOPNOTSUPP)
		st->discard = false;	/* this device cannot: stop asking */
}
