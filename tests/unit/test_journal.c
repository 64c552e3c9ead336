/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The journal, with the free-space trees and allocators under it, on an
 * in-memory device: transactions of raw blocks against a model of what
 * each block must hold.
 *
 *  - commit, abort (every block and the free space back as they were),
 *    checkpoint, close and reopen;
 *  - a full WAL: -EAGAIN, checkpoint, retry; nothing lost;
 *  - group commit: concurrent durable commits share WAL writes;
 *  - power cuts: the workload runs on the recording device; for every
 *    flush, the device as it was at that flush (plus, in other runs, a
 *    random subset of the writes in flight after it, and torn writes) is
 *    opened: every transaction acknowledged durable before the cut is
 *    there byte for byte, the state is exactly that after some whole
 *    transaction (never half of one), and the free space adds up exactly.
 */
#include <check.h>
#include <endian.h>
#include <errno.h>
#include <signal.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "posfs/io.h"
#include "testdev.h"
#include "posfs/store.h"
#include "store/blockops.h"
#include "store/btree.h"
#include "store/store_internal.h"

#define DEV_SIZE (24ull << 20)
#define BS 4096u

static unsigned seed;

/* ---- a fresh file system on a memory device ----------------------------- */

static struct pfs_dev *newfs_mem(uint32_t shards, uint64_t wal_bytes)
{
	struct pfs_dev *dev = pfs_test_newfs_mem(DEV_SIZE, shards, wal_bytes);

	ck_assert_ptr_nonnull(dev);
	return dev;
}

static uint8_t *dev_snapshot(struct pfs_dev *dev)
{
	uint8_t *img = pfs_dev_buf_alloc(DEV_SIZE);

	ck_assert_int_eq(pfs_dev_pread(dev, img, DEV_SIZE, 0), 0);
	return img;
}

static struct pfs_dev *dev_from(const uint8_t *img)
{
	struct pfs_dev *dev;

	ck_assert_int_eq(pfs_dev_open_mem(DEV_SIZE, 512, &dev), 0);
	ck_assert_int_eq(pfs_dev_pwrite(dev, img, DEV_SIZE, 0), 0);
	return dev;
}

/* ---- the model: which raw blocks hold what ------------------------------ */

#define MAXB 4096

struct model {
	uint64_t blk[MAXB];	/* raw blocks in use */
	uint32_t tag[MAXB];	/* what fills each */
	uint32_t shard[MAXB];
	int n;
	uint32_t txno;		/* transactions applied */
};

static void fill(uint8_t *d, uint32_t tag, uint64_t blk)
{
	for (uint32_t i = 0; i < BS; i += 16) {
		memcpy(d + i, &tag, 4);
		memcpy(d + i + 4, &blk, 8);
		memcpy(d + i + 12, &i, 4);
	}
}

static int read_raw(struct pfs_store *st, uint32_t shard, uint64_t blk, uint8_t *out)
{
	struct pfs_tx *tx;
	struct pfs_buf *b;
	int ret;

	ret = pfs_tx_begin_read(st, &shard, 1, &tx);
	if (ret)
		return ret;
	ret = pfs_tx_get_raw(tx, blk, &b);
	if (!ret) {
		memcpy(out, pfs_buf_data(b), BS);
		pfs_buf_put(b);
	}
	pfs_tx_abort(tx);
	return ret;
}

/* Every block of the model holds its tag. */
static void model_verify(struct pfs_store *st, const struct model *m, const char *when)
{
	uint8_t *got = malloc(BS), *want = malloc(BS);

	for (int i = 0; i < m->n; i++) {
		ck_assert_int_eq(read_raw(st, m->shard[i], m->blk[i], got), 0);
		fill(want, m->tag[i], m->blk[i]);
		ck_assert_msg(!memcmp(got, want, BS), "%s: block %llu (tag %u) differs, seed %u",
			      when, (unsigned long long)m->blk[i], m->tag[i], seed);
	}
	free(got);
	free(want);
}

/* Free space adds up: free + raw blocks in use + tree nodes = data blocks. */
static void space_verify(struct pfs_store *st, const struct model *m)
{
	for (uint32_t s = 0; s < st->nshards; s++) {
		struct pfs_shard *sh = &st->shards[s];
		struct pfs_btree bt = { &pfs_btree_free_ops, &sh->hdr.free, s, POSFS_OWNER_SHARD(s) };
		struct pfs_btree_stats stats;
		uint64_t used = 0, meta;
		struct pfs_tx *tx;

		for (int i = 0; i < m->n; i++)
			used += m->shard[i] == s;
		ck_assert_int_eq(pfs_tx_begin_read(st, &s, 1, &tx), 0);
		ck_assert_int_eq(pfs_btree_check(tx, &bt, NULL, &stats), 0);
		pfs_tx_abort(tx);
		meta = stats.nodes + (s == 0 ? 1 : 0);	/* + the root's onode leaf */
		ck_assert_msg(pfs_alloc_free_blocks(&sh->alloc) + pfs_alloc_pending_blocks(&sh->alloc) +
			      used + meta == sh->geo.data_blocks,
			      "shard %u: free %llu + pending %llu + used %llu + meta %llu != %llu, seed %u",
			      s, (unsigned long long)pfs_alloc_free_blocks(&sh->alloc),
			      (unsigned long long)pfs_alloc_pending_blocks(&sh->alloc),
			      (unsigned long long)used, (unsigned long long)meta,
			      (unsigned long long)sh->geo.data_blocks, seed);
		ck_assert_uint_eq(sh->hdr.free_blocks, pfs_alloc_free_blocks(&sh->alloc) +
				  pfs_alloc_pending_blocks(&sh->alloc));
	}
}

/*
 * One random transaction on shard s: allocate some raw blocks, rewrite some,
 * free some. Applies to m only if it commits. Returns the commit result.
 */
static bool with_counter;	/* model entry 0 is a counter every tx rewrites */

static int random_tx(struct pfs_store *st, struct model *m, uint32_t s, bool durable,
		     bool abort_it)
{
	struct model next = *m;
	struct pfs_durable tok;
	struct pfs_tx *tx;
	int nnew = rand() % 4, nmod = m->n ? rand() % 3 : 0, nfree = m->n > 8 ? rand() % 3 : 0;
	uint32_t tag = m->txno + 1;
	int ret;

	ret = pfs_tx_begin(st, &s, 1, &tx);
	if (ret)
		return ret;
	for (int i = 0; i < nnew && next.n < MAXB; i++) {
		struct pfs_buf *b;

		ret = pfs_tx_new_raw(tx, s, &b);
		if (ret)
			goto fail;
		fill(pfs_buf_data(b), tag, pfs_buf_blkno(b));
		next.blk[next.n] = pfs_buf_blkno(b);
		next.tag[next.n] = tag;
		next.shard[next.n++] = s;
		pfs_buf_put(b);
	}
	for (int i = 0; i < nmod + with_counter; i++) {
		int k = i == nmod ? 0 : rand() % next.n;
		struct pfs_buf *b;

		if (next.shard[k] != s)
			continue;
		ret = pfs_tx_get_raw(tx, next.blk[k], &b);
		if (!ret)
			ret = pfs_tx_dirty(tx, b);
		if (ret) {
			pfs_buf_put(b);
			goto fail;
		}
		fill(pfs_buf_data(b), tag, next.blk[k]);
		next.tag[k] = tag;
		pfs_buf_put(b);
	}
	for (int i = 0; i < nfree; i++) {
		int k = rand() % next.n;
		struct pfs_buf *b;

		if (next.shard[k] != s || (with_counter && k == 0))
			continue;
		ret = pfs_tx_get_raw(tx, next.blk[k], &b);
		if (!ret)
			ret = pfs_tx_release(tx, b);
		if (ret)
			goto fail;
		next.blk[k] = next.blk[next.n - 1];
		next.tag[k] = next.tag[next.n - 1];
		next.shard[k] = next.shard[next.n - 1];
		next.n--;
	}
	if (abort_it) {
		pfs_tx_abort(tx);
		return 0;
	}
	ret = pfs_tx_commit(tx, &tok);
	if (ret)
		return ret;
	next.txno = tag;
	*m = next;
	if (durable)
		ret = pfs_tx_wait_durable(st, &tok);
	return ret;
fail:
	pfs_tx_abort(tx);
	return ret;
}

static struct pfs_store *open_dev(struct pfs_dev *dev)
{
	struct pfs_store_opts o = { .cache_blocks = 256, .ckpt_interval_ms = -1 };
	struct pfs_store *st;
	int ret = pfs_store_open_dev(dev, &o, &st);

	ck_assert_msg(ret == 0, "open: %d, seed %u", ret, seed);
	return st;
}

/* ---- tests -------------------------------------------------------------- */

START_TEST(commit_abort_reopen)
{
	struct pfs_dev *dev = newfs_mem(2, 0);
	struct pfs_store *st = open_dev(dev);
	uint8_t *img;
	struct model m = { 0 }, before;
	int ret;

	srand(seed);
	for (int i = 0; i < 3000; i++) {
		uint32_t s = (uint32_t)(rand() % 2);
		bool ab = rand() % 5 == 0;

		before = m;
		ret = random_tx(st, &m, s, rand() % 3 == 0, ab);
		if (ret == -EAGAIN) {
			ck_assert_int_eq(pfs_store_checkpoint(st), 0);
			continue;
		}
		ck_assert_msg(ret == 0, "tx %d: %d, seed %u", i, ret, seed);
		if (ab)
			ck_assert_int_eq(memcmp(&m, &before, sizeof(m)), 0);
		if (i % 500 == 0) {
			model_verify(st, &m, "running");
			space_verify(st, &m);
		}
		if (i % 700 == 350)
			ck_assert_int_eq(pfs_store_checkpoint(st), 0);
	}
	model_verify(st, &m, "before close");
	space_verify(st, &m);
	/* close, snapshot, reopen from the image */
	{
		struct pfs_dev *d2;

		/* everything home; the image is then what a reopen must read */
		ck_assert_int_eq(pfs_store_checkpoint(st), 0);
		img = dev_snapshot(dev);	/* still valid: the store owns it */
		ck_assert_int_eq(pfs_store_close(st), 0);
		d2 = dev_from(img);
		st = open_dev(d2);
		ck_assert(!(st->sb.state & POSFS_STATE_CLEAN));	/* mounted now */
		model_verify(st, &m, "after reopen");
		space_verify(st, &m);
		ck_assert_int_eq(pfs_store_close(st), 0);
		pfs_dev_buf_free(img);
	}
}
END_TEST

START_TEST(wal_full_forces_checkpoint)
{
	struct pfs_dev *dev = newfs_mem(1, 1 << 20);	/* a 256-block WAL */
	struct pfs_store *st = open_dev(dev);
	struct model m = { 0 };
	int again = 0, ret;

	srand(seed);
	for (int i = 0; i < 2000; i++) {
		ret = random_tx(st, &m, 0, false, false);
		if (ret == -EAGAIN) {
			again++;
			ck_assert_int_eq(pfs_store_checkpoint(st), 0);
			ck_assert_int_eq(random_tx(st, &m, 0, false, false), 0);
		} else {
			ck_assert_msg(ret == 0, "tx %d: %d", i, ret);
		}
		if (pfs_store_wal_full(st))
			ck_assert_int_eq(pfs_store_checkpoint(st), 0);
	}
	ck_assert_int_gt((int)st->stat_checkpoints, 3);
	model_verify(st, &m, "full WAL");
	space_verify(st, &m);
	ck_assert_int_eq(pfs_store_close(st), 0);
	(void)again;
}
END_TEST

/* A copy of a device of size bytes, and a memory device made from one. */
static uint8_t *dev_copy(struct pfs_dev *dev, uint64_t size)
{
	uint8_t *img = pfs_dev_buf_alloc(size);

	ck_assert_ptr_nonnull(img);
	ck_assert_int_eq(pfs_dev_pread(dev, img, size, 0), 0);
	return img;
}

static struct pfs_dev *dev_of(const uint8_t *img, uint64_t size)
{
	struct pfs_dev *dev;

	ck_assert_int_eq(pfs_dev_open_mem(size, 512, &dev), 0);
	ck_assert_int_eq(pfs_dev_pwrite(dev, img, size, 0), 0);
	return dev;
}

/*
 * W8: more block images in one group than a record's 16-bit entry count
 * holds, in a WAL large enough for all of them, made durable without a
 * checkpoint; after a crash, replay gives back every block. (A group of
 * 70,000 images once went out as one record counting 4,465 entries:
 * replay dropped the rest and the shard state.)
 */
START_TEST(wal_record_entry_cap)
{
	const uint64_t size = 1ull << 30;
	const int per_tx = 1000, ntx = 70;
	struct pfs_store_opts o = { .cache_blocks = 80000, .ckpt_interval_ms = -1 };
	struct pfs_dev *dev = pfs_test_newfs_mem(size, 1, 600ull << 20);
	uint64_t *blk = malloc(sizeof(*blk) * per_tx * ntx);
	uint8_t got[BS], want[BS], *img;
	struct pfs_durable tok;
	struct pfs_store *st;
	uint32_t shard = 0;
	uint64_t ckpts, groups;
	int n = 0;

	ck_assert_ptr_nonnull(dev);
	ck_assert_ptr_nonnull(blk);
	ck_assert_int_eq(pfs_store_open_dev(dev, &o, &st), 0);
	ckpts = st->stat_checkpoints;
	groups = st->stat_groups;
	for (int t = 0; t < ntx; t++) {
		struct pfs_tx *tx;

		ck_assert_int_eq(pfs_tx_begin(st, &shard, 1, &tx), 0);
		for (int i = 0; i < per_tx; i++) {
			struct pfs_buf *b;

			ck_assert_int_eq(pfs_tx_new_raw(tx, 0, &b), 0);
			fill(pfs_buf_data(b), 7, pfs_buf_blkno(b));
			blk[n++] = pfs_buf_blkno(b);
			pfs_buf_put(b);
		}
		ck_assert_int_eq(pfs_tx_commit(tx, &tok), 0);	/* never refused: sealed */
	}
	ck_assert_int_eq(pfs_tx_wait_durable(st, &tok), 0);
	ck_assert_int_eq(st->stat_checkpoints, ckpts);		/* nothing went home */
	groups = st->stat_groups - groups;
	img = dev_copy(dev, size);	/* the crash: what the device holds now */
	ck_assert_int_eq(pfs_store_close(st), 0);
	ck_assert_int_eq(pfs_store_open_dev(dev_of(img, size), &o, &st), 0);
	pfs_dev_buf_free(img);
	for (int i = 0; i < n; i++) {
		ck_assert_int_eq(read_raw(st, 0, blk[i], got), 0);
		fill(want, 7, blk[i]);
		ck_assert_msg(!memcmp(got, want, BS), "block %d of %d (%llu) lost", i, n,
			      (unsigned long long)blk[i]);
	}
	ck_assert_int_ge(groups, 2);	/* more than one record */
	ck_assert_int_eq(pfs_store_close(st), 0);
	free(blk);
}
END_TEST

/*
 * W8: a record whose entries end before its size (bytes after the last
 * entry the count gives, as a wrapped count leaves) is refused by replay.
 */
START_TEST(wal_record_left_over_refused)
{
	struct pfs_dev *dev = newfs_mem(1, 0);
	struct pfs_store *st = open_dev(dev);
	struct pfs_store_opts o = { .cache_blocks = 256, .ckpt_interval_ms = -1 };
	struct pfs_wal_rec r = { 0 }, last = { 0 };
	struct pfs_durable tok;
	struct pfs_tx *tx;
	struct pfs_buf *b;
	uint8_t *img;
	uint32_t shard = 0;
	uint64_t pos, lsn, at = UINT64_MAX, start, wblocks, owner;
	uint8_t uuid[POSFS_UUID_SIZE];

	ck_assert_int_eq(pfs_tx_begin(st, &shard, 1, &tx), 0);
	ck_assert_int_eq(pfs_tx_new_raw(tx, 0, &b), 0);
	fill(pfs_buf_data(b), 9, pfs_buf_blkno(b));
	pfs_buf_put(b);
	ck_assert_int_eq(pfs_tx_commit(tx, &tok), 0);
	ck_assert_int_eq(pfs_tx_wait_durable(st, &tok), 0);
	start = st->shards[0].wal.start;
	wblocks = st->shards[0].wal.nblocks;
	owner = st->shards[0].wal.owner;
	pos = st->shards[0].wal.tail;
	lsn = st->shards[0].wal.tail_lsn;
	memcpy(uuid, st->sb.uuid, sizeof(uuid));
	img = dev_snapshot(dev);
	ck_assert_int_eq(pfs_store_close(st), 0);
	/* the last record replay would apply */
	while (!pfs_wal_rec_verify(img + (start + pos) * BS, (wblocks - pos) * BS, pos, lsn,
				   owner, uuid, BS, (uint32_t)wblocks, &r)) {
		if (!(r.flags & POSFS_WAL_PAD)) {
			last = r;
			at = pos;
		}
		pos = r.flags & POSFS_WAL_PAD ? 0 : pos + r.nblocks;
		lsn++;
	}
	ck_assert_msg(at != UINT64_MAX, "no record in the WAL");
	ck_assert_uint_le(last.size + 64, (uint64_t)last.nblocks * BS);
	last.size += 64;	/* zeros after the last entry, inside the crc */
	pfs_wal_rec_seal(&last, uuid, img + (start + at) * BS);
	{
		int ret = pfs_store_open_dev(dev_from(img), &o, &st);

		if (!ret)
			pfs_store_close(st);
		ck_assert_int_eq(ret, -EUCLEAN);
	}
	pfs_dev_buf_free(img);
}
END_TEST

/*
 * BV2: a transaction that leaves a free-space node malformed (keys out of
 * order, a count past the capacity, a level past the largest height) is
 * refused at commit with -EPROTO and the node stays as it was. BV1: the
 * same node put on the device with a valid crc is refused when it is read.
 */
START_TEST(block_verifiers)
{
	struct pfs_dev *dev = newfs_mem(1, 0);
	struct pfs_store *st = open_dev(dev);
	struct pfs_block_expect exp = { .magic = POSFS_MAGIC_FREE };
	uint8_t before[BS], *img;
	uint64_t root = st->shards[0].hdr.free.blkno, off;
	uint32_t shard = 0;
	struct pfs_tx *tx;
	struct pfs_buf *b;

	ck_assert_uint_ne(root, 0);
	for (int how = 0; how < 3; how++) {
		struct pfs_dblock_hdr *h;

		ck_assert_int_eq(pfs_tx_begin(st, &shard, 1, &tx), 0);
		ck_assert_int_eq(pfs_tx_get(tx, root, &exp, &b), 0);
		memcpy(before, pfs_buf_data(b), BS);
		ck_assert_int_eq(pfs_tx_dirty(tx, b), 0);
		h = (struct pfs_dblock_hdr *)pfs_buf_data(b);
		if (how == 0)
			h->nr = htole16(BS);			/* past the capacity */
		else if (how == 1)
			h->level = htole16(40);			/* past the largest height */
		else						/* a second, lower key */
			memcpy(pfs_buf_data(b) + sizeof(*h) + 16 * le16toh(h->nr),
			       pfs_buf_data(b) + sizeof(*h), 16), h->nr = htole16(le16toh(h->nr) + 1);
		pfs_buf_put(b);
		ck_assert_int_eq(pfs_tx_commit(tx, &(struct pfs_durable){ 0 }), -EPROTO);
		ck_assert_int_eq(pfs_tx_begin_read(st, &shard, 1, &tx), 0);
		ck_assert_int_eq(pfs_tx_get(tx, root, &exp, &b), 0);
		ck_assert_msg(!memcmp(pfs_buf_data(b), before, BS), "case %d: node changed", how);
		pfs_buf_put(b);
		pfs_tx_abort(tx);
	}
	/* BV1: on the device, sealed, with its first record twice: the open,
	 * which loads the free space, refuses it */
	ck_assert_int_eq(pfs_store_checkpoint(st), 0);
	img = dev_snapshot(dev);
	ck_assert_int_eq(pfs_store_close(st), 0);
	off = root * BS;
	{
		struct pfs_dblock_hdr *h = (struct pfs_dblock_hdr *)(img + off);
		struct pfs_store_opts o = { .cache_blocks = 256, .ckpt_interval_ms = -1 };
		unsigned nr = le16toh(h->nr);

		memmove(img + off + sizeof(*h) + 16, img + off + sizeof(*h), 16 * (size_t)nr);
		h->nr = htole16((uint16_t)(nr + 1));
		pfs_block_seal(img + off);
		struct pfs_blockhdr bh;

		ck_assert_int_eq(pfs_store_open_dev(dev_from(img), &o, &st), -EUCLEAN);
		/* the verifier itself, on that node and on others of its kind */
		pfs_block_hdr_decode(img + off, &bh);
		ck_assert_int_eq(pfs_block_ops_verify(BS, img + off, &bh), -EUCLEAN);
		memmove(img + off + sizeof(*h), img + off + sizeof(*h) + 16, 16 * (size_t)nr);
		h->nr = htole16((uint16_t)nr);
		pfs_block_hdr_decode(img + off, &bh);
		ck_assert_int_eq(pfs_block_ops_verify(BS, img + off, &bh), 0);
		bh.nr = (uint16_t)((BS - sizeof(*h)) / 16 + 1);
		ck_assert_int_eq(pfs_block_ops_verify(BS, img + off, &bh), -EUCLEAN);
		bh.nr = 0;
		ck_assert_int_eq(pfs_block_ops_verify(BS, img + off, &bh), -EUCLEAN);
		bh.nr = (uint16_t)nr;
		bh.level = 1;	/* its records read as child pointers: sizes as starts */
		bh.magic = POSFS_MAGIC_CSUM;
		ck_assert_int_eq(pfs_block_ops_verify(BS, img + off, &bh), -EUCLEAN);
		bh.magic = POSFS_MAGIC_ONODES;	/* a leaf type at level 1 */
		ck_assert_int_eq(pfs_block_ops_verify(BS, img + off, &bh), -EUCLEAN);
		bh.level = 0;
		bh.flags = 1;
		ck_assert_int_eq(pfs_block_ops_verify(BS, img + off, &bh), -EUCLEAN);
		bh.magic = POSFS_MAGIC_WAL;	/* not a tree's block */
		bh.flags = 0;
		ck_assert_int_eq(pfs_block_ops_verify(BS, img + off, &bh), -EUCLEAN);
	}
	pfs_dev_buf_free(img);
}
END_TEST

#ifdef POSFS_DEBUG
/* T1 in a debug build: a block changed without pfs_tx_dirty stops the
 * program at commit (the test expects SIGABRT). */
START_TEST(t1_change_without_dirty_stops)
{
	struct pfs_dev *dev = newfs_mem(1, 0);
	struct pfs_store *st = open_dev(dev);
	struct pfs_block_expect exp = { .magic = POSFS_MAGIC_FREE };
	uint32_t shard = 0;
	struct pfs_tx *tx;
	struct pfs_buf *b;

	ck_assert_int_eq(pfs_tx_begin(st, &shard, 1, &tx), 0);
	ck_assert_int_eq(pfs_tx_get(tx, st->shards[0].hdr.free.blkno, &exp, &b), 0);
	pfs_buf_data(b)[BS - 1] ^= 1;		/* no pfs_tx_dirty */
	pfs_buf_put(b);
	pfs_tx_commit(tx, &(struct pfs_durable){ 0 });
}
END_TEST
#endif

START_TEST(enospc_changes_nothing)
{
	struct pfs_dev *dev = newfs_mem(1, 0);
	struct pfs_store *st = open_dev(dev);
	struct model m = { 0 };
	uint64_t free_before;
	struct pfs_statfs sfs;
	struct pfs_tx *tx;
	uint32_t s = 0;
	int ret, n = 0;

	/* fill the shard with raw blocks, one transaction each */
	for (;;) {
		struct pfs_buf *b;
		struct pfs_durable tok;

		ck_assert_int_eq(pfs_tx_begin(st, &s, 1, &tx), 0);
		ret = pfs_tx_new_raw(tx, 0, &b);
		if (ret) {
			ck_assert_int_eq(ret, -ENOSPC);
			pfs_tx_abort(tx);
			break;
		}
		pfs_buf_put(b);
		ret = pfs_tx_commit(tx, &tok);
		if (ret == -EAGAIN || pfs_store_wal_full(st)) {
			ck_assert_int_eq(pfs_store_checkpoint(st), 0);
			continue;
		}
		ck_assert_int_eq(ret, 0);
		n++;
	}
	ck_assert_int_gt(n, 1000);
	ck_assert_int_eq(pfs_store_statfs(st, &sfs), 0);
	free_before = sfs.free_blocks;
	/* a transaction that allocates and then runs out changes nothing */
	ck_assert_int_eq(pfs_tx_begin(st, &s, 1, &tx), 0);
	for (;;) {
		struct pfs_buf *b;

		ret = pfs_tx_new_raw(tx, 0, &b);
		if (ret)
			break;
		pfs_buf_put(b);
	}
	ck_assert_int_eq(ret, -ENOSPC);
	pfs_tx_abort(tx);
	ck_assert_int_eq(pfs_store_statfs(st, &sfs), 0);
	ck_assert_uint_eq(sfs.free_blocks, free_before);
	ck_assert_int_eq(pfs_store_close(st), 0);
	(void)m;
}
END_TEST

/* ---- group commit ------------------------------------------------------- */

struct gc_arg {
	struct pfs_store *st;
	int n;
};

static void *gc_worker(void *p)
{
	struct gc_arg *a = p;

	for (int i = 0; i < a->n; i++) {
		struct pfs_durable tok;
		struct pfs_tx *tx;
		struct pfs_buf *b;
		uint32_t s = 0;
		int ret;

		for (;;) {
			ret = pfs_tx_begin(a->st, &s, 1, &tx);
			if (ret)
				return (void *)(intptr_t)ret;
			ret = pfs_tx_new_raw(tx, 0, &b);
			if (ret) {
				pfs_tx_abort(tx);
				return (void *)(intptr_t)ret;
			}
			memset(pfs_buf_data(b), i, BS);
			pfs_buf_put(b);
			ret = pfs_tx_commit(tx, &tok);
			if (ret != -EAGAIN)
				break;
			ret = pfs_store_checkpoint(a->st);
			if (ret)
				return (void *)(intptr_t)ret;
		}
		if (!ret)
			ret = pfs_tx_wait_durable(a->st, &tok);
		if (ret)
			return (void *)(intptr_t)ret;
	}
	return NULL;
}

/* A file under /var/tmp: flushes take real time there, as on a disk. */
static struct pfs_dev *newfs_file(char *path, size_t len)
{
	struct pfs_dev *mem = newfs_mem(1, 4 << 20), *dev;
	struct pfs_dev_opts o = { .backend = PFS_DEV_SYNC };
	uint8_t *img = dev_snapshot(mem);
	const char *dir = getenv("TMPDIR_DISK") ? getenv("TMPDIR_DISK") : "/var/tmp";
	int fd;

	pfs_dev_close(mem);
	snprintf(path, len, "%s/posfs-journal.XXXXXX", dir);
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, DEV_SIZE), 0);
	close(fd);
	ck_assert_int_eq(pfs_dev_open(path, &o, &dev), 0);
	ck_assert_int_eq(pfs_dev_pwrite(dev, img, DEV_SIZE, 0), 0);
	pfs_dev_buf_free(img);
	return dev;
}

START_TEST(group_commit_shares_writes)
{
	char path[256];
	struct pfs_dev *dev = newfs_file(path, sizeof(path));
	struct pfs_store *st = open_dev(dev);
	struct gc_arg a = { st, 150 };
	pthread_t th[8];
	uint64_t commits0 = st->stat_commits, groups0 = st->stat_groups;

	for (int i = 0; i < 8; i++)
		pthread_create(&th[i], NULL, gc_worker, &a);
	for (int i = 0; i < 8; i++) {
		void *r;

		pthread_join(th[i], &r);
		ck_assert_ptr_null(r);
	}
	ck_assert_uint_eq(st->stat_commits - commits0, 8 * 150);
	/* every commit waited for durability, yet fewer records were written */
	ck_assert_uint_lt(st->stat_groups - groups0, st->stat_commits - commits0);
	ck_assert_uint_lt(st->stat_wal_writes, st->stat_commits - commits0);
	ck_assert_int_eq(pfs_store_close(st), 0);
	unlink(path);
}
END_TEST

/* ---- power cuts --------------------------------------------------------- */

#define MAX_SNAP 400

struct crash_run {
	struct model snap[MAX_SNAP];	/* state after transaction k (by txno) */
	size_t mark_ev[MAX_SNAP];	/* event index of the durability mark */
	uint32_t acked[MAX_SNAP];	/* txno acknowledged at that mark */
	int nmarks;
	uint64_t counter_blk;
};

/* After a cut: the counter block names the last whole transaction N; the
 * state must be snap[N] exactly, and N >= everything acknowledged. */
static void crash_check(struct crash_run *cr, const uint8_t *base, struct pfs_devrec *rec,
			size_t upto, int mode, uint32_t must_have)
{
	struct pfs_dev *dev = dev_from(base);
	struct pfs_store *st;
	uint8_t *got = malloc(BS);
	uint32_t n;

	ck_assert_int_eq(pfs_devrec_apply(rec, 0, upto, dev), 0);
	if (mode) {
		/* writes in flight after the flush: a random subset, some torn */
		size_t next = upto;

		while (next < pfs_devrec_count(rec) &&
		       pfs_devrec_event(rec, next)->kind != PFS_REC_FLUSH)
			next++;
		for (size_t i = upto; i < next; i++) {
			const struct pfs_devrec_event *e = pfs_devrec_event(rec, i);

			if (e->kind != PFS_REC_WRITE || rand() % 2)
				continue;
			ck_assert_int_eq(pfs_devrec_apply_one(rec, i,
				mode == 2 && e->len > 512 ? 512 * (1 + rand() % (e->len / 512)) : 0,
				dev), 0);
		}
	}
	st = open_dev(dev);
	ck_assert_int_eq(read_raw(st, 0, cr->counter_blk, got), 0);
	memcpy(&n, got, 4);
	ck_assert_msg(n < MAX_SNAP, "counter %u, seed %u", n, seed);
	ck_assert_msg(n >= must_have, "cut at event %zu (mode %d): transaction %u was "
		      "acknowledged durable but the store has only %u, seed %u",
		      upto, mode, must_have, n, seed);
	model_verify(st, &cr->snap[n], "after a power cut");
	space_verify(st, &cr->snap[n]);
	/* and the recovered store works: one more transaction */
	{
		struct model after = cr->snap[n];

		ck_assert_int_eq(random_tx(st, &after, 0, true, false), 0);
	}
	ck_assert_int_eq(pfs_store_close(st), 0);
	free(got);
}

static void power_cuts(int mode, int ntx)
{
	struct crash_run *cr = calloc(1, sizeof(*cr));
	struct pfs_dev *mem = newfs_mem(1, 1 << 20), *recdev;
	struct pfs_store *st;
	struct pfs_devrec *rec;
	struct model m = { 0 };
	size_t setup_end, nflush = 0;
	uint8_t *base;
	uint32_t s = 0;
	int ret;

	srand(seed + (unsigned)mode);
	base = dev_snapshot(mem);
	ck_assert_int_eq(pfs_devrec_wrap(mem, &recdev), 0);
	rec = pfs_devrec_of(recdev);
	st = open_dev(recdev);
	/* the counter block: transaction 0 */
	{
		struct pfs_durable tok;
		struct pfs_tx *tx;
		struct pfs_buf *b;

		ck_assert_int_eq(pfs_tx_begin(st, &s, 1, &tx), 0);
		ck_assert_int_eq(pfs_tx_new_raw(tx, 0, &b), 0);
		cr->counter_blk = pfs_buf_blkno(b);
		fill(pfs_buf_data(b), 0, cr->counter_blk);
		pfs_buf_put(b);
		ck_assert_int_eq(pfs_tx_commit(tx, &tok), 0);
		ck_assert_int_eq(pfs_tx_wait_durable(st, &tok), 0);
		m.blk[0] = cr->counter_blk;
		m.tag[0] = 0;
		m.shard[0] = 0;
		m.n = 1;
	}
	ck_assert_int_eq(pfs_store_checkpoint(st), 0);
	setup_end = pfs_devrec_count(rec);
	cr->snap[0] = m;
	with_counter = true;
	for (int k = 1; k <= ntx && k < MAX_SNAP; k++) {
		bool durable = rand() % 2;

		ret = random_tx(st, &m, 0, durable, false);
		if (ret == -EAGAIN) {
			ck_assert_int_eq(pfs_store_checkpoint(st), 0);
			ret = random_tx(st, &m, 0, durable, false);
		}
		ck_assert_msg(ret == 0, "tx %d: %d, seed %u", k, ret, seed);
		ck_assert_uint_eq(m.txno, (uint32_t)k);
		cr->snap[k] = m;
		if (durable) {
			cr->mark_ev[cr->nmarks] = pfs_devrec_count(rec);
			cr->acked[cr->nmarks++] = m.txno;
			pfs_devrec_mark(rec, m.txno);
		}
		if (k % 25 == 0 || pfs_store_wal_full(st))
			ck_assert_int_eq(pfs_store_checkpoint(st), 0);
	}
	with_counter = false;
	/* every flush after the set-up is a place to cut the power */
	for (size_t f = setup_end; f < pfs_devrec_count(rec); f++) {
		uint32_t must = 0;

		if (pfs_devrec_event(rec, f)->kind != PFS_REC_FLUSH)
			continue;
		for (int i = 0; i < cr->nmarks && cr->mark_ev[i] <= f; i++)
			must = cr->acked[i];
		crash_check(cr, base, rec, f + 1, mode, must);
		nflush++;
	}
	ck_assert_uint_gt(nflush, (size_t)ntx / 2);
	ck_assert_int_eq(pfs_store_close(st), 0);
	pfs_dev_buf_free(base);
	free(cr);
}

START_TEST(power_cut_at_every_flush)
{
	power_cuts(0, 120);
}
END_TEST

START_TEST(power_cut_with_reordered_writes)
{
	power_cuts(1, 80);
}
END_TEST

START_TEST(power_cut_with_torn_writes)
{
	power_cuts(2, 80);
}
END_TEST

Suite *journal_suite(void);
Suite *journal_suite(void)
{
	Suite *s = suite_create("journal");
	TCase *tc = tcase_create("journal");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, commit_abort_reopen);
	tcase_add_test(tc, wal_full_forces_checkpoint);
	tcase_add_test(tc, enospc_changes_nothing);
	tcase_add_test(tc, wal_record_entry_cap);
	tcase_add_test(tc, wal_record_left_over_refused);
	tcase_add_test(tc, block_verifiers);
#ifdef POSFS_DEBUG
	tcase_add_test_raise_signal(tc, t1_change_without_dirty_stops, SIGABRT);
#endif
	tcase_add_test(tc, group_commit_shares_writes);
	tcase_add_test(tc, power_cut_at_every_flush);
	tcase_add_test(tc, power_cut_with_reordered_writes);
	tcase_add_test(tc, power_cut_with_torn_writes);
	suite_add_tcase(s, tc);
	return s;
}

int main(int argc, char **argv)
{
	SRunner *sr;
	int failed;

	seed = argc > 1 ? (unsigned)strtoul(argv[1], NULL, 0) : 1;
	if (getenv("POSFS_TEST_SEED"))
		seed = (unsigned)strtoul(getenv("POSFS_TEST_SEED"), NULL, 0);
	printf("seed %u\n", seed);
	sr = srunner_create(journal_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
