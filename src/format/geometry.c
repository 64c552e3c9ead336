/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Geometry: where the global journal and each shard sit, from the few
 * numbers a superblock keeps. mkfs chooses them here (pfs_geo_compute) and
 * everything else derives them here (pfs_geo_shard), so the layout rules
 * exist once. See the overview in format.h.
 */

#include <errno.h>

#include "posfs/disk.h"

static uint64_t head_blocks(uint32_t bs)
{
	return (POSFS_HEAD_SIZE + bs - 1) / bs;
}

/* Blocks of checksum table that r blocks after a WAL need: t of them
 * cover the other r - t (t * E >= (r - t) * K). */
static uint64_t csum_table_blocks(uint32_t bs, uint32_t chunk, uint64_t r)
{
	uint64_t k = bs / chunk, e = POSFS_CSUMS_PER_BLOCK(bs);

	return (r * k + e + k - 1) / (e + k);
}

int pfs_geo_shard(const struct pfs_super *sb, uint32_t shard,
		  struct pfs_shard_geo *geo)
{
	geo->shard = shard;
	if (shard == POSFS_SHARD_GLOBAL) {
		geo->start_block = sb->global_block;
		geo->wal_blocks = sb->global_wal_blocks;
		geo->nblocks = POSFS_SHARD_HDR_SLOTS + (uint64_t)sb->global_wal_blocks;
	} else {
		if (shard >= sb->shard_count)
			return -EINVAL;
		geo->start_block = sb->first_shard_block + (uint64_t)shard * sb->shard_blocks;
		geo->nblocks = shard == sb->shard_count - 1 ?
			       sb->total_blocks - geo->start_block : sb->shard_blocks;
		geo->wal_blocks = sb->wal_blocks;
	}
	geo->wal_start = geo->start_block + POSFS_SHARD_HDR_SLOTS;
	geo->csum_start = geo->wal_start + geo->wal_blocks;
	geo->csum_blocks = 0;
	if (shard != POSFS_SHARD_GLOBAL && sb->csum_chunk &&
	    geo->start_block + geo->nblocks > geo->csum_start)
		geo->csum_blocks = csum_table_blocks(sb->block_size, sb->csum_chunk,
						     geo->start_block + geo->nblocks -
						     geo->csum_start);
	geo->data_start = geo->csum_start + geo->csum_blocks;
	geo->data_blocks = geo->start_block + geo->nblocks - geo->data_start;
	return 0;
}

int pfs_geo_block_shard(const struct pfs_super *sb, uint64_t blkno)
{
	struct pfs_shard_geo geo;
	uint64_t i;

	if (blkno < sb->first_shard_block || blkno >= sb->total_blocks)
		return -EINVAL;
	i = (blkno - sb->first_shard_block) / sb->shard_blocks;
	if (i >= sb->shard_count)
		i = sb->shard_count - 1;
	if (pfs_geo_shard(sb, (uint32_t)i, &geo) || blkno < geo.data_start)
		return -EINVAL;
	return (int)i;
}

int pfs_geo_csum_shard(const struct pfs_super *sb, uint64_t blkno)
{
	struct pfs_shard_geo geo;
	uint64_t i;

	if (!sb->csum_chunk || blkno < sb->first_shard_block || blkno >= sb->total_blocks)
		return -EINVAL;
	i = (blkno - sb->first_shard_block) / sb->shard_blocks;
	if (i >= sb->shard_count)
		i = sb->shard_count - 1;
	if (pfs_geo_shard(sb, (uint32_t)i, &geo) || blkno < geo.csum_start ||
	    blkno >= geo.data_start)
		return -EINVAL;
	return (int)i;
}

static uint64_t clamp_u64(uint64_t v, uint64_t lo, uint64_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

int pfs_geo_compute(const struct pfs_mkfs_params *p, struct pfs_super *sb,
		    uint64_t *min_size)
{
	uint32_t bs = p->block_size ? p->block_size : POSFS_MIN_BLOCK_SIZE;
	uint32_t sector = p->sector_size ? p->sector_size : 512;
	uint32_t small = p->small_write ? p->small_write : POSFS_SMALL_WRITE_DEFAULT;
	uint32_t chunk = 0;
	uint64_t total, shards, wal, gwal, first, shard_blocks, min_data, need;

	if (bs < POSFS_MIN_BLOCK_SIZE || bs > POSFS_MAX_BLOCK_SIZE || (bs & (bs - 1)))
		return -EINVAL;
	if (sector < 512 || (sector & (sector - 1)) || sector > bs)
		return -EINVAL;
	if (small > POSFS_SMALL_WRITE_MAX)
		return -EINVAL;
	if (p->shard_count > POSFS_MAX_SHARDS)
		return -EINVAL;
	if (!p->no_data_csum) {
		chunk = p->csum_chunk ? p->csum_chunk :
			POSFS_CSUM_CHUNK_DEFAULT < bs ? POSFS_CSUM_CHUNK_DEFAULT : bs;
		if (chunk < POSFS_CSUM_CHUNK_MIN || chunk > bs || (chunk & (chunk - 1)))
			return -EINVAL;
	} else if (p->csum_chunk) {
		return -EINVAL;
	}
	total = p->size / bs;

	shards = p->shard_count;
	if (!shards) {
		uint64_t ncpu = p->ncpu ? p->ncpu : 1;

		shards = clamp_u64(p->size / POSFS_SHARD_DEFAULT_SIZE, 1, ncpu);
		shards = clamp_u64(shards, 1, POSFS_MAX_SHARDS);
	}

	/* A WAL holds at least four of the largest small writes. */
	if (p->wal_bytes) {
		wal = p->wal_bytes / bs;
		if (p->wal_bytes < POSFS_WAL_MIN || p->wal_bytes < 4ull * small ||
		    wal > UINT32_MAX)
			return -EINVAL;
	} else {
		uint64_t bytes = clamp_u64(p->size / shards / 16, POSFS_WAL_MIN,
					   POSFS_WAL_DEFAULT_MAX);

		if (bytes < 4ull * small)
			bytes = 4ull * small;
		wal = bytes / bs;
	}
	if (p->global_wal_bytes) {
		gwal = p->global_wal_bytes / bs;
		if (p->global_wal_bytes < POSFS_WAL_MIN || gwal > UINT32_MAX)
			return -EINVAL;
	} else {
		gwal = clamp_u64(wal / 4, POSFS_WAL_MIN / bs, UINT32_MAX);
	}

	min_data = POSFS_SHARD_MIN_DATA / bs;
	if (min_data < 16)
		min_data = 16;
	first = head_blocks(bs) + POSFS_SHARD_HDR_SLOTS + gwal;
	need = first + shards * (POSFS_SHARD_HDR_SLOTS + wal + min_data +
				 (chunk ? csum_table_blocks(bs, chunk, min_data) * 2 : 0));
	if (min_size)
		*min_size = need * bs;
	if (total < need)
		return -ENOSPC;
	shard_blocks = (total - first) / shards;

	sb->rev = POSFS_REV;
	sb->block_size = bs;
	sb->total_blocks = total;
	sb->shard_count = (uint32_t)shards;
	sb->global_block = head_blocks(bs);
	sb->global_wal_blocks = (uint32_t)gwal;
	sb->first_shard_block = first;
	sb->shard_blocks = shard_blocks;
	sb->wal_blocks = (uint32_t)wal;
	sb->small_write = small;
	sb->onode_size = POSFS_ONODE_SIZE;
	sb->sector_size = sector;
	sb->csum_chunk = chunk;
	if (chunk)
		sb->feature_ro_compat |= POSFS_FEATURE_data_csum;
	else
		sb->feature_ro_compat &= ~(uint32_t)POSFS_FEATURE_data_csum;
	sb->atomic_write = p->atomic_write ? p->atomic_write : sector;
	sb->root_oid = POSFS_ROOT_OID;
	return 0;
}
