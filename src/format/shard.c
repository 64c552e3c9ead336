/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Shard header slots. A shard's first two blocks hold its header, written
 * alternately (LMDB's meta pages). Invariants:
 *   H1. A header write goes to the slot that does not hold the newest
 *       valid copy, with seq one higher.
 *   H2. So a torn header write destroys at most the older copy; the newer
 *       one, which describes a consistent checkpoint, stays readable.
 *   H3. A reader takes the valid slot with the highest seq; "valid" means
 *       crc, magic, self-address, owner, uuid, and the geometry that the
 *       superblock implies for the shard all check out.
 */

#include <errno.h>
#include <string.h>

#include "posfs/disk.h"
#include "posfs/io.h"
#include "format/endian.h"

#define TREE_HEIGHT_MAX 32u

static uint64_t shard_owner(uint32_t shard)
{
	return shard == POSFS_SHARD_GLOBAL ? POSFS_OWNER_GLOBAL : POSFS_OWNER_SHARD(shard);
}

static void root_put(struct pfs_droot *d, const struct pfs_tree_root *r)
{
	d->blkno = htole64(r->blkno);
	d->height = htole32(r->height);
	d->reserved = 0;
}

static void root_get(const struct pfs_droot *d, struct pfs_tree_root *r)
{
	r->blkno = le64_get(d->blkno);
	r->height = le32_get(d->height);
}

void pfs_shard_hdr_to_disk(const struct pfs_super *sb,
			   const struct pfs_shard_hdr *h, uint64_t blkno,
			   void *block)
{
	struct pfs_dshard *d = block;
	struct pfs_blockhdr hdr = {
		.magic = POSFS_MAGIC_SHARD,
		.size = sb->block_size,
		.blkno = blkno,
		.owner = shard_owner(h->shard),
		.lsn = h->lsn,
	};

	memset(block, 0, sb->block_size);
	memcpy(hdr.uuid, sb->uuid, POSFS_UUID_SIZE);
	pfs_block_hdr_encode(d, &hdr);
	d->shard = le32_put(h->shard);
	d->slot = le32_put(h->slot);
	d->seq = le64_put(h->seq);
	d->start_block = le64_put(h->start_block);
	d->nblocks = le64_put(h->nblocks);
	d->wal_start = le64_put(h->wal_start);
	d->wal_blocks = le32_put(h->wal_blocks);
	d->wal_tail = le64_put(h->wal_tail);
	d->wal_tail_lsn = le64_put(h->wal_tail_lsn);
	d->checkpoint_lsn = le64_put(h->checkpoint_lsn);
	d->data_start = le64_put(h->data_start);
	root_put(&d->onodes, &h->onodes);
	root_put(&d->free, &h->free);
	root_put(&d->refcount, &h->refcount);
	d->free_blocks = le64_put(h->free_blocks);
	d->onode_count = le64_put(h->onode_count);
	d->next_local = le64_put(h->next_local);
	d->next_generation = le64_put(h->next_generation);
	d->next_txid = le64_put(h->next_txid);
	d->ckpt_gen = le64_put(h->ckpt_gen);
	pfs_block_seal(d);
}

static int root_ok(const struct pfs_tree_root *r, const struct pfs_shard_geo *g)
{
	if (!r->blkno)
		return r->height == 0;
	return r->height >= 1 && r->height <= TREE_HEIGHT_MAX &&
	       r->blkno >= g->data_start && r->blkno < g->data_start + g->data_blocks;
}

int pfs_shard_hdr_from_disk(const struct pfs_super *sb, uint32_t shard,
			    uint64_t blkno, const void *block,
			    struct pfs_shard_hdr *h)
{
	const struct pfs_dshard *d = block;
	struct pfs_block_expect exp = {
		.magic = POSFS_MAGIC_SHARD,
		.size = sb->block_size,
		.blkno = blkno,
		.check_blkno = true,
		.owner = shard_owner(shard),
		.check_owner = true,
		.uuid = sb->uuid,
	};
	struct pfs_shard_geo g;
	struct pfs_blockhdr hdr;
	const uint8_t *rest;
	int ret;

	ret = pfs_geo_shard(sb, shard, &g);
	if (ret)
		return ret;
	ret = pfs_block_verify(block, sb->block_size, &exp, &hdr);
	if (ret)
		return ret;
	memset(h, 0, sizeof(*h));
	h->lsn = hdr.lsn;
	h->shard = le32_get(d->shard);
	h->slot = le32_get(d->slot);
	h->seq = le64_get(d->seq);
	h->start_block = le64_get(d->start_block);
	h->nblocks = le64_get(d->nblocks);
	h->wal_start = le64_get(d->wal_start);
	h->wal_blocks = le32_get(d->wal_blocks);
	h->wal_tail = le64_get(d->wal_tail);
	h->wal_tail_lsn = le64_get(d->wal_tail_lsn);
	h->checkpoint_lsn = le64_get(d->checkpoint_lsn);
	h->data_start = le64_get(d->data_start);
	root_get(&d->onodes, &h->onodes);
	root_get(&d->free, &h->free);
	root_get(&d->refcount, &h->refcount);
	h->free_blocks = le64_get(d->free_blocks);
	h->onode_count = le64_get(d->onode_count);
	h->next_local = le64_get(d->next_local);
	h->next_generation = le64_get(d->next_generation);
	h->next_txid = le64_get(d->next_txid);
	h->ckpt_gen = le64_get(d->ckpt_gen);

	if (h->shard != shard || h->slot >= POSFS_SHARD_HDR_SLOTS ||
	    blkno != g.start_block + h->slot)
		return -EUCLEAN;
	if (h->start_block != g.start_block || h->nblocks != g.nblocks ||
	    h->wal_start != g.wal_start || h->wal_blocks != g.wal_blocks ||
	    h->data_start != g.data_start)
		return -EUCLEAN;
	if (h->wal_tail >= h->wal_blocks || !h->wal_tail_lsn ||
	    h->checkpoint_lsn > h->wal_tail_lsn)
		return -EUCLEAN;
	if (!root_ok(&h->onodes, &g) || !root_ok(&h->free, &g) ||
	    !root_ok(&h->refcount, &g))
		return -EUCLEAN;
	if (h->free_blocks > g.data_blocks || h->next_local > POSFS_OID_LOCAL_MASK)
		return -EUCLEAN;
	if (hdr.level || hdr.nr || hdr.flags || d->reserved0)
		return -EUCLEAN;
	rest = (const uint8_t *)block + offsetof(struct pfs_dshard, reserved);
	for (size_t i = 0; i < sb->block_size - offsetof(struct pfs_dshard, reserved); i++)
		if (rest[i])
			return -EUCLEAN;
	return 0;
}

int pfs_shard_hdr_read_slots(struct pfs_dev *dev, const struct pfs_super *sb,
			     uint32_t shard, struct pfs_shard_hdr h[2], int err[2])
{
	struct pfs_shard_geo g;
	void *buf;
	int ret;

	ret = pfs_geo_shard(sb, shard, &g);
	if (ret)
		return ret;
	buf = pfs_dev_buf_alloc(sb->block_size);
	if (!buf)
		return -ENOMEM;
	for (unsigned i = 0; i < POSFS_SHARD_HDR_SLOTS; i++) {
		ret = pfs_dev_pread(dev, buf, sb->block_size, (g.start_block + i) * sb->block_size);
		if (ret)
			break;
		err[i] = pfs_shard_hdr_from_disk(sb, shard, g.start_block + i, buf, &h[i]);
	}
	pfs_dev_buf_free(buf);
	return ret;
}

int pfs_shard_hdr_read(struct pfs_dev *dev, const struct pfs_super *sb,
		       uint32_t shard, struct pfs_shard_hdr *h,
		       struct pfs_shard_status *st)
{
	struct pfs_shard_hdr slot[POSFS_SHARD_HDR_SLOTS];
	int err[POSFS_SHARD_HDR_SLOTS], ret, use;
	struct pfs_shard_geo g;
	void *buf;

	ret = pfs_geo_shard(sb, shard, &g);
	if (ret)
		return ret;
	buf = pfs_dev_buf_alloc(sb->block_size);
	if (!buf)
		return -ENOMEM;
	for (unsigned i = 0; i < POSFS_SHARD_HDR_SLOTS; i++) {
		ret = pfs_dev_pread(dev, buf, sb->block_size,
				    (g.start_block + i) * sb->block_size);
		if (ret)
			goto out;
		err[i] = pfs_shard_hdr_from_disk(sb, shard, g.start_block + i, buf, &slot[i]);
		if (st)
			st->slot_err[i] = err[i];
	}
	if (err[0] && err[1]) {
		ret = err[0] == -EBADMSG || err[1] == -EBADMSG ? -EBADMSG : err[0];
		goto out;
	}
	if (!err[0] && !err[1])
		use = slot[1].seq > slot[0].seq;
	else
		use = err[0] ? 1 : 0;
	*h = slot[use];
out:
	pfs_dev_buf_free(buf);
	return ret;
}

int pfs_shard_hdr_write(struct pfs_dev *dev, const struct pfs_super *sb,
			struct pfs_shard_hdr *h)
{
	struct pfs_shard_hdr next = *h;
	void *buf;
	int ret;

	next.slot = h->slot ^ 1;	/* H1 */
	next.seq = h->seq + 1;
	buf = pfs_dev_buf_alloc(sb->block_size);
	if (!buf)
		return -ENOMEM;
	pfs_shard_hdr_to_disk(sb, &next, next.start_block + next.slot, buf);
	ret = pfs_dev_pwrite(dev, buf, sb->block_size,
			     (next.start_block + next.slot) * sb->block_size);
	if (!ret)
		ret = pfs_dev_flush(dev);
	if (!ret)
		*h = next;
	pfs_dev_buf_free(buf);
	return ret;
}
