/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Placement of new directories on shards: Orlov's allocator (ext2/3/4's
 * find_group_orlov) with shards for block groups.
 *
 * A directory in its parent's shard makes mkdir, and every create, unlink
 * and rename inside the subtree, a one-shard transaction; a directory in
 * another shard makes its mkdir, rmdir and every rename that crosses the
 * border a cross-shard one (the global WAL, with both shards locked). Yet
 * a file system whose directories all stay in the root's shard fills that
 * shard and leaves the others idle. So:
 *
 *   P1  A directory made in the root directory (a top-level one: a home, a
 *       project, a mount's worth of data) goes to the next shard in turn
 *       that is in balance (below); when none is, to the one with the most
 *       room: top-level trees spread over the shards.
 *   P2  Any other directory goes to its parent's shard while that shard is
 *       in balance, and where P1 would put it otherwise.
 *
 * In balance: a free fraction at least 3/4 of the average, and no more
 * objects than 3/2 of the average and PFS_PLACE_SLACK more. A shard short
 * of space or crowded with inodes takes no new directories, so the trees
 * below them grow elsewhere; the other shards' own subtrees stay whole.
 *
 * The loads are the shards' own (pfs_store_shard_load), read without their
 * locks: a moment old under concurrent commits, which a hint may be. The
 * figures behind the rule (cross-shard commits and balance under each
 * policy) come from tests/bench/place-bench.
 */
#include <stdbool.h>

#include "fs/fs_internal.h"
#include "fs/place.h"
#include "posfs/store.h"

/* Objects a shard may hold over 3/2 of the average and stay in balance: no
 * spreading over a few thousand inodes, where parallel shards buy little. */
#define PFS_PLACE_SLACK 8192u

struct place_load {
	uint64_t free[POSFS_MAX_SHARDS], total[POSFS_MAX_SHARDS], objects[POSFS_MAX_SHARDS];
	uint64_t sum_free, sum_total, sum_objects;
};

static void place_load(struct pfs_fs *fs, struct place_load *l)
{
	l->sum_free = l->sum_total = l->sum_objects = 0;
	for (uint32_t i = 0; i < fs->shards; i++) {
		struct pfs_shard_load s = { 0 };

		(void)pfs_store_shard_load(fs->st, i, &s);
		l->free[i] = s.free_blocks;
		l->total[i] = s.total_blocks ? s.total_blocks : 1;
		l->objects[i] = s.objects;
		l->sum_free += s.free_blocks;
		l->sum_total += l->total[i];
		l->sum_objects += s.objects;
	}
}

/* free[i]/total[i] >= num/den of the average free fraction */
static bool free_at_least(const struct place_load *l, uint32_t i, uint64_t num, uint64_t den)
{
	return (unsigned __int128)l->free[i] * l->sum_total * den >=
	       (unsigned __int128)l->sum_free * l->total[i] * num;
}

static bool in_balance(const struct pfs_fs *fs, const struct place_load *l, uint32_t i)
{
	return free_at_least(l, i, 3, 4) &&
	       2 * l->objects[i] * fs->shards <=
		       3 * l->sum_objects + 2 * (uint64_t)PFS_PLACE_SLACK * fs->shards;
}

/* P1: from the shard after the last one P1 chose, the first in balance;
 * when none is, the one with the most room. */
static uint32_t place_spread(struct pfs_fs *fs, const struct place_load *l)
{
	uint32_t start = __atomic_load_n(&fs->next_dir_shard, __ATOMIC_RELAXED) % fs->shards;
	uint32_t best = start, pick = UINT32_MAX;

	for (uint32_t k = 0; k < fs->shards && pick == UINT32_MAX; k++) {
		uint32_t i = (start + k) % fs->shards;

		if (in_balance(fs, l, i))
			pick = i;
		else if ((unsigned __int128)l->free[i] * l->total[best] >
			 (unsigned __int128)l->free[best] * l->total[i])
			best = i;
	}
	if (pick == UINT32_MAX)
		pick = best;
	__atomic_store_n(&fs->next_dir_shard, pick + 1, __ATOMIC_RELAXED);
	return pick;
}

uint32_t pfs_place_dir(struct pfs_fs *fs, uint64_t dir)
{
	uint32_t parent = POSFS_OID_SHARD(dir);
	struct place_load l;

	if (fs->shards == 1)
		return 0;
	switch (fs->placement) {
	case PFS_FS_PLACE_PARENT:
		return parent;
	case PFS_FS_PLACE_SPREAD:
		return __atomic_fetch_add(&fs->next_dir_shard, 1, __ATOMIC_RELAXED) % fs->shards;
	default:
		break;
	}
	place_load(fs, &l);
	if (dir != POSFS_ROOT_OID && in_balance(fs, &l, parent))
		return parent;				/* P2 */
	return place_spread(fs, &l);			/* P1 */
}

void pfs_fs_set_placement(struct pfs_fs *fs, enum pfs_fs_placement p)
{
	fs->placement = p;
}
