/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Pass 1, last step: the data checksum tables (data_csum). Every table
 * block of every shard is read as the store reads it (pfs_tx_get: magic
 * PFCS, owner the shard, its own block number, the uuid, the crc32c, no
 * LSN from the future), TABLE_BATCH blocks per read transaction so that
 * the cache never holds more of them at once.
 *
 * A damaged one (CSUM_TABLE) is written anew in a store transaction of
 * its own (pfs_tx_rewrite), every entry recomputed from the bytes its
 * data block holds now: the block cache's copy where the cache has one
 * (newer than the device until the next checkpoint), else the device's.
 * The data blocks are read from the device in runs, not entered into the
 * transaction (pfs_tx_get_raw), which would keep every one of them in the
 * cache until the commit: a table block covers up to 16368 data blocks,
 * 1 GiB with 64 KiB blocks.
 *
 * The repair cannot tell good data from bad once a table block is lost:
 * it makes the entries agree with what the blocks hold, so that a block
 * damaged as well goes unnoticed from then on. The other way, every read
 * under the lost table block fails.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "check/check_internal.h"
#include "format/endian.h"
#include "posfs/io.h"
#include "store/store_internal.h"
#include "store/tx.h"

#define TABLE_BATCH	256u		/* table blocks per read transaction */
#define RUN_BYTES	(1u << 20)	/* data read from the device at once */

struct tables {
	struct pfs_check *c;
	uint32_t bs;
	uint32_t chunk;			/* bytes per entry */
	uint32_t per_block;		/* entries per data block (K) */
	uint32_t per_table;		/* entries per table block (E) */
	uint8_t *run;			/* RUN_BYTES, aligned for the device */
	uint64_t done, total;		/* progress */
};

uint64_t pfs_check_csum_table_count(const struct pfs_check *c)
{
	uint64_t n = 0;

	for (uint32_t s = 0; s < c->st->nshards; s++)
		n += c->st->shards[s].geo.csum_blocks;
	return n;
}

static struct pfs_block_expect table_expect(uint32_t shard)
{
	return (struct pfs_block_expect){
		.magic = POSFS_MAGIC_CSUM,
		.owner = POSFS_OWNER_SHARD(shard),
		.check_owner = true,
	};
}

/* Data blocks from blkno, n of them, into tb->run: the device's bytes,
 * then the cache's where it has them (the shard locked by the caller). */
static int run_read(struct tables *tb, struct pfs_shard *sh, uint64_t blkno, uint64_t n)
{
	struct pfs_store *st = tb->c->st;
	int ret = pfs_dev_pread(st->dev, tb->run, n * tb->bs, blkno * tb->bs);

	if (ret)
		return ret;
	for (uint64_t i = 0; i < n; i++) {
		struct pfs_buf *b = pfs_bcache_find(&sh->cache, blkno + i);

		if (!b)
			continue;
		if (b->flags & PFS_BUF_VALID)
			memcpy(tb->run + i * tb->bs, b->data, tb->bs);
		pfs_bcache_put(b);
	}
	return 0;
}

/*
 * The entries of table block t of sh (t counted from the table's start)
 * into ent: entry i of the shard is chunk i % K of data block i / K (from
 * data_start), format.h's pfs_dcsum. Entries past the data area stay 0.
 */
static int table_fill(struct tables *tb, struct pfs_shard *sh, uint64_t t, pfs_le32 *ent)
{
	uint64_t first = t * tb->per_table;
	uint64_t all = sh->geo.data_blocks * tb->per_block;
	uint64_t end = first + tb->per_table < all ? first + tb->per_table : all;
	uint64_t per_run = RUN_BYTES / tb->bs;
	int ret = 0;

	if (first >= end)
		return 0;
	/* the data blocks whose chunks this table block holds, a run at a time */
	for (uint64_t b = first / tb->per_block; !ret && b <= (end - 1) / tb->per_block;
	     b += per_run) {
		uint64_t n = (end - 1) / tb->per_block + 1 - b;

		if (n > per_run)
			n = per_run;
		ret = run_read(tb, sh, sh->geo.data_start + b, n);
		for (uint64_t i = 0; !ret && i < n * tb->per_block; i++) {
			uint64_t idx = b * tb->per_block + i;
			uint64_t devoff = (sh->geo.data_start + b) * tb->bs + i * tb->chunk;

			if (idx >= first && idx < end)
				ent[idx - first] = le32_put(pfs_data_csum(devoff, tb->run +
								i * tb->chunk, tb->chunk));
		}
	}
	return ret;
}

/* Write table block blkno of shard anew from the data it covers. */
static int table_rewrite(struct tables *tb, uint32_t shard, uint64_t blkno)
{
	struct pfs_check *c = tb->c;
	struct pfs_shard *sh = &c->st->shards[shard];
	struct pfs_buf *b;
	struct pfs_tx *tx;
	int ret = 0;

	/* room in the WAL for one block's record */
	if (pfs_store_wal_full(c->st))
		ret = pfs_store_checkpoint(c->st);
	if (!ret)
		ret = pfs_tx_begin(c->st, &shard, 1, &tx);
	if (ret)
		return ret;
	ret = pfs_tx_rewrite(tx, blkno, POSFS_MAGIC_CSUM, POSFS_OWNER_SHARD(shard), 0, &b);
	if (!ret) {
		ret = table_fill(tb, sh, blkno - sh->geo.csum_start,
				 (pfs_le32 *)(pfs_buf_data(b) + sizeof(struct pfs_dblock_hdr)));
		pfs_buf_put(b);
	}
	if (ret) {
		pfs_tx_abort(tx);
		return ret;
	}
	ret = pfs_tx_commit_durable(tx);
	return ret;
}

/* A damaged table block: report it, and rewrite it when allowed. */
static int table_damaged(struct tables *tb, uint32_t shard, uint64_t blkno, int err)
{
	struct pfs_check *c = tb->c;
	struct pfs_shard *sh = &c->st->shards[shard];
	uint64_t first = (blkno - sh->geo.csum_start) * tb->per_table / tb->per_block;
	uint64_t last = ((blkno - sh->geo.csum_start + 1) * tb->per_table - 1) / tb->per_block;
	int ret;

	if (last >= sh->geo.data_blocks)
		last = sh->geo.data_blocks - 1;
	if (!pfs_check_problem(c, PFS_PR_CSUM_TABLE, "shard %u: checksum table block %" PRIu64
			       " (data blocks %" PRIu64 " to %" PRIu64 "): %s", shard, blkno,
			       sh->geo.data_start + first, sh->geo.data_start + last,
			       err == -EBADMSG ? "bad checksum" : "not what it must be")) {
		c->tables_left++;
		return 0;
	}
	ret = table_rewrite(tb, shard, blkno);
	if (!ret) {
		pfs_check_fixed(c);
		return 0;
	}
	pfs_check_unfixed(c, ret);
	c->tables_left++;
	return ret == -ENOMEM || ret == -EIO ? ret : 0;
}

/* Table blocks [from, from + n) of shard: read, then the damaged ones
 * reported (and repaired) once the read transaction is over. */
static int tables_batch(struct tables *tb, uint32_t shard, uint64_t from, unsigned n)
{
	struct pfs_check *c = tb->c;
	uint64_t bad[TABLE_BATCH];
	int err[TABLE_BATCH];
	unsigned nbad = 0;
	struct pfs_tx *tx;
	int ret = pfs_tx_begin_read(c->st, &shard, 1, &tx);

	for (unsigned i = 0; !ret && i < n; i++) {
		struct pfs_block_expect exp = table_expect(shard);
		struct pfs_buf *b;

		ret = pfs_tx_get(tx, from + i, &exp, &b);
		pfs_buf_put(b);
		if (ret == -EBADMSG || ret == -EUCLEAN) {
			bad[nbad] = from + i;
			err[nbad++] = ret;
			ret = 0;
		}
	}
	pfs_tx_abort(tx);
	for (unsigned i = 0; !ret && i < nbad; i++)
		ret = table_damaged(tb, shard, bad[i], err[i]);
	return ret;
}

int pfs_check_csum_tables(struct pfs_check *c, uint64_t done, uint64_t total)
{
	struct tables tb = { .c = c, .bs = c->sb.block_size, .chunk = c->sb.csum_chunk,
			     .done = done, .total = total };
	int ret = 0;

	if (!(c->sb.feature_ro_compat & POSFS_FEATURE_data_csum) || !tb.chunk)
		return 0;
	tb.per_block = tb.bs / tb.chunk;
	tb.per_table = (uint32_t)POSFS_CSUMS_PER_BLOCK(tb.bs);
	if (!c->readonly) {
		tb.run = pfs_dev_buf_alloc(RUN_BYTES);
		if (!tb.run)
			return -ENOMEM;
	}
	for (uint32_t s = 0; !ret && s < c->st->nshards; s++) {
		const struct pfs_shard_geo *g = &c->st->shards[s].geo;

		for (uint64_t t = 0; !ret && t < g->csum_blocks; t += TABLE_BATCH) {
			unsigned n = g->csum_blocks - t < TABLE_BATCH ?
				     (unsigned)(g->csum_blocks - t) : TABLE_BATCH;

			ret = tables_batch(&tb, s, g->csum_start + t, n);
			tb.done += n;
			pfs_check_progress(c, PFS_PASS_OBJECTS, tb.done,
					   tb.total > tb.done ? tb.total : tb.done);
		}
	}
	pfs_dev_buf_free(tb.run);
	return ret;
}
