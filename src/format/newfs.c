/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Laying down a new file system (mkfs.posfs's "initialise and write"
 * steps). Order is the invariant:
 *   MK1. The head, with any old superblock, is zeroed first.
 *   MK2. Then every shard header, WAL start, tree block and checksum table
 *       block, then a flush.
 *   MK3. The superblock pair last (pfs_super_write flushes after each).
 * A crash anywhere before MK3 completes leaves no valid posfs superblock,
 * so a device is either the old content or a whole new file system.
 */
#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "posfs/disk.h"
#include "posfs/io.h"
#include "format/endian.h"

static int write_block(struct pfs_dev *dev, const struct pfs_super *sb,
		       uint64_t blkno, const void *buf)
{
	return pfs_dev_pwrite(dev, buf, sb->block_size, blkno * sb->block_size);
}

static void block_hdr(const struct pfs_super *sb, void *buf, uint32_t magic,
		      uint64_t blkno, uint64_t owner, uint16_t nr)
{
	struct pfs_blockhdr h = {
		.magic = magic,
		.size = sb->block_size,
		.nr = nr,
		.blkno = blkno,
		.owner = owner,
	};

	memcpy(h.uuid, sb->uuid, POSFS_UUID_SIZE);
	pfs_block_hdr_encode(buf, &h);
}

/* Free-space tree of one leaf: everything from first_free to the end. */
static int write_free_leaf(struct pfs_dev *dev, const struct pfs_super *sb,
			   const struct pfs_shard_geo *g, uint64_t blkno,
			   uint64_t first_free, void *buf)
{
	struct pfs_dfree *rec = (struct pfs_dfree *)((uint8_t *)buf + sizeof(struct pfs_dblock_hdr));

	memset(buf, 0, sb->block_size);
	block_hdr(sb, buf, POSFS_MAGIC_FREE, blkno, POSFS_OWNER_SHARD(g->shard), 1);
	rec->start = le64_put(first_free);
	rec->len = le64_put(g->data_start + g->data_blocks - first_free);
	pfs_block_seal(buf);
	return write_block(dev, sb, blkno, buf);
}

/* The data checksum table: every block, its entries zero (buf holds
 * POSFS_HEAD_SIZE bytes, or a block when larger). */
static int write_csum_table(struct pfs_dev *dev, const struct pfs_super *sb,
			    const struct pfs_shard_geo *g, uint8_t *buf)
{
	uint64_t per = POSFS_HEAD_SIZE > sb->block_size ? POSFS_HEAD_SIZE / sb->block_size : 1;
	int ret = 0;

	for (uint64_t b = 0; !ret && b < g->csum_blocks; b += per) {
		uint64_t n = g->csum_blocks - b < per ? g->csum_blocks - b : per;

		memset(buf, 0, n * sb->block_size);
		for (uint64_t i = 0; i < n; i++) {
			uint8_t *blk = buf + i * sb->block_size;

			block_hdr(sb, blk, POSFS_MAGIC_CSUM, g->csum_start + b + i,
				  POSFS_OWNER_SHARD(g->shard), 0);
			pfs_block_seal(blk);
		}
		ret = pfs_dev_pwrite(dev, buf, n * sb->block_size,
				     (g->csum_start + b) * sb->block_size);
	}
	return ret;
}

/* Onode radix tree of shard 0: one leaf holding the root directory. */
static int write_root_leaf(struct pfs_dev *dev, const struct pfs_super *sb,
			   uint64_t blkno, const struct pfs_newfs_opts *o,
			   uint64_t generation, void *buf)
{
	struct pfs_donode_leaf *leaf = buf;
	struct pfs_onode root = {
		.oid = POSFS_ROOT_OID,
		.generation = generation,
		.mode = S_IFDIR | (o->root_mode & 07777),
		.uid = o->root_uid,
		.gid = o->root_gid,
		.nlink = 2,
		.atime = { o->now, 0 },
		.mtime = { o->now, 0 },
		.ctime = { o->now, 0 },
		.btime = { o->now, 0 },
		.parent = POSFS_ROOT_OID,
		.data_fmt = POSFS_DATA_INLINE,
	};
	uint64_t slot = POSFS_OID_LOCAL(POSFS_ROOT_OID) % POSFS_ONODES_PER_LEAF(sb->block_size);

	memset(buf, 0, sb->block_size);
	block_hdr(sb, buf, POSFS_MAGIC_ONODES, blkno, POSFS_OWNER_SHARD(0), 1);
	pfs_onode_to_disk(&root, &leaf->onode[slot]);
	pfs_block_seal(buf);
	return write_block(dev, sb, blkno, buf);
}

static int write_shard(struct pfs_dev *dev, const struct pfs_super *sb,
		       uint32_t shard, const struct pfs_newfs_opts *o, void *buf)
{
	struct pfs_shard_geo g;
	struct pfs_shard_hdr h = { 0 };
	uint64_t next = 0;
	int ret;

	ret = pfs_geo_shard(sb, shard, &g);
	if (ret)
		return ret;
	h.shard = shard;
	h.start_block = g.start_block;
	h.nblocks = g.nblocks;
	h.wal_start = g.wal_start;
	h.wal_blocks = g.wal_blocks;
	h.data_start = g.data_start;
	h.wal_tail = 0;
	h.wal_tail_lsn = 1;
	h.checkpoint_lsn = 1;
	h.next_local = POSFS_LOCAL_FIRST;
	h.next_generation = 1;
	h.next_txid = 1;

	if (shard != POSFS_SHARD_GLOBAL) {
		next = g.data_start;
		h.free.blkno = next++;
		h.free.height = 1;
		if (shard == 0) {
			h.onodes.blkno = next++;
			h.onodes.height = 1;
			h.onode_count = 1;
			ret = write_root_leaf(dev, sb, h.onodes.blkno, o,
					      h.next_generation++, buf);
			if (ret)
				return ret;
		}
		ret = write_free_leaf(dev, sb, &g, h.free.blkno, next, buf);
		if (ret)
			return ret;
		h.free_blocks = g.data_start + g.data_blocks - next;
		ret = write_csum_table(dev, sb, &g, buf);
		if (ret)
			return ret;
	}

	/*
	 * An empty WAL: nothing valid where replay starts. The whole WAL is
	 * zeroed unless lazy: on an image file that also allocates its blocks
	 * now, so that a commit's flush does not wait for the host file
	 * system to allocate them.
	 */
	memset(buf, 0, POSFS_HEAD_SIZE > sb->block_size ? POSFS_HEAD_SIZE : sb->block_size);
	ret = write_block(dev, sb, g.wal_start, buf);
	for (uint64_t b = 1; !ret && !o->lazy_wal && b < g.wal_blocks;) {
		uint64_t n = POSFS_HEAD_SIZE / sb->block_size;

		if (n < 1)
			n = 1;
		if (n > g.wal_blocks - b)
			n = g.wal_blocks - b;
		ret = pfs_dev_pwrite(dev, buf, n * sb->block_size, (g.wal_start + b) * sb->block_size);
		b += n;
	}
	if (ret)
		return ret;

	/* Both slots valid; slot A is the newer. */
	for (uint32_t slot = 0; slot < POSFS_SHARD_HDR_SLOTS; slot++) {
		h.slot = slot;
		h.seq = slot == 0 ? 1 : 0;
		pfs_shard_hdr_to_disk(sb, &h, g.start_block + slot, buf);
		ret = write_block(dev, sb, g.start_block + slot, buf);
		if (ret)
			return ret;
	}
	return 0;
}

int pfs_newfs_write(struct pfs_dev *dev, struct pfs_super *sb,
		    const struct pfs_newfs_opts *o)
{
	uint8_t *buf;
	int ret;

	ret = pfs_super_check(sb);
	if (ret)
		return -EINVAL;
	if ((uint64_t)sb->total_blocks * sb->block_size > pfs_dev_info(dev)->size)
		return -ENOSPC;
	buf = pfs_dev_buf_alloc(POSFS_HEAD_SIZE > sb->block_size ?
				POSFS_HEAD_SIZE : sb->block_size);
	if (!buf)
		return -ENOMEM;

	ret = pfs_dev_pwrite(dev, buf, POSFS_HEAD_SIZE, 0);	/* MK1 */
	if (ret)
		goto out;
	ret = write_shard(dev, sb, POSFS_SHARD_GLOBAL, o, buf);	/* MK2 */
	for (uint32_t i = 0; !ret && i < sb->shard_count; i++)
		ret = write_shard(dev, sb, i, o, buf);
	if (!ret)
		ret = pfs_dev_flush(dev);
	if (!ret)
		ret = pfs_super_write(dev, sb);			/* MK3 */
out:
	pfs_dev_buf_free(buf);
	return ret;
}
