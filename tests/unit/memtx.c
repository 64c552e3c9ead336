/* SPDX-License-Identifier: GPL-2.0-or-later */
/* memtx: see memtx.h. Simple and slow on purpose: it is a reference. */
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "posfs/crc32c.h"
#include "memtx.h"
#include "store/blockops.h"

struct pfs_buf {
	uint64_t blkno;
	uint8_t *data;		/* the tx's working copy */
	int refs;
	struct pfs_tx *tx;
};

struct mblock {
	uint8_t *data;		/* committed image, NULL = free */
	bool raw;
};

struct pfs_memstore {
	uint32_t bs;
	uint32_t nshards;
	uint64_t per_shard;
	struct mblock *blk;	/* nshards * per_shard */
	uint64_t *used;
	uint64_t *limit;
	long fail_after;
	bool unchecked;		/* BV2 off: a test plants malformed blocks */
	uint64_t lsn;
	uint8_t uuid[16];
};

enum tstate { T_CLEAN, T_DIRTY, T_NEW, T_RELEASED };

struct tblock {
	struct pfs_buf buf;
	uint8_t *before;	/* committed image when first touched (NULL: new) */
	enum tstate state;
	bool raw;
};

struct pfs_tx {
	struct pfs_memstore *ms;
	struct tblock **tb;	/* indexed by blkno, NULL = untouched */
	int64_t *delta_used;
};

uint8_t *pfs_buf_data(struct pfs_buf *b) { return b->data; }
uint64_t pfs_buf_blkno(const struct pfs_buf *b) { return b->blkno; }
uint32_t pfs_tx_block_size(const struct pfs_tx *tx) { return tx->ms->bs; }

void pfs_buf_put(struct pfs_buf *b)
{
	if (!b)
		return;
	if (b->refs <= 0) {
		fprintf(stderr, "memtx: put of block %llu with no reference\n",
			(unsigned long long)b->blkno);
		abort();
	}
	b->refs--;
}

struct pfs_memstore *pfs_memstore_create(uint32_t bs, uint32_t nshards, uint64_t per_shard)
{
	struct pfs_memstore *ms = calloc(1, sizeof(*ms));

	ms->bs = bs;
	ms->nshards = nshards;
	ms->per_shard = per_shard;
	ms->blk = calloc(nshards * per_shard, sizeof(*ms->blk));
	ms->used = calloc(nshards, sizeof(uint64_t));
	ms->limit = calloc(nshards, sizeof(uint64_t));
	for (uint32_t i = 0; i < nshards; i++)
		ms->limit[i] = per_shard - 1;
	ms->fail_after = -1;
	for (int i = 0; i < 16; i++)
		ms->uuid[i] = (uint8_t)(0xa0 + i);
	return ms;
}

void pfs_memstore_destroy(struct pfs_memstore *ms)
{
	for (uint64_t i = 0; i < ms->nshards * ms->per_shard; i++)
		free(ms->blk[i].data);
	free(ms->blk);
	free(ms->used);
	free(ms->limit);
	free(ms);
}

uint64_t pfs_memstore_used(const struct pfs_memstore *ms, uint32_t shard)
{
	return ms->used[shard];
}

void pfs_memstore_set_limit(struct pfs_memstore *ms, uint32_t shard, uint64_t max_used)
{
	ms->limit[shard] = max_used;
}

void pfs_memstore_unchecked(struct pfs_memstore *ms)
{
	ms->unchecked = true;
}

void pfs_memstore_fail_after(struct pfs_memstore *ms, long n)
{
	ms->fail_after = n;
}

struct pfs_tx *pfs_memtx_begin(struct pfs_memstore *ms)
{
	struct pfs_tx *tx = calloc(1, sizeof(*tx));

	tx->ms = ms;
	tx->tb = calloc(ms->nshards * ms->per_shard, sizeof(*tx->tb));
	tx->delta_used = calloc(ms->nshards, sizeof(int64_t));
	return tx;
}

static struct tblock *touch(struct pfs_tx *tx, uint64_t blkno, bool raw)
{
	struct pfs_memstore *ms = tx->ms;
	struct tblock *t = tx->tb[blkno];

	if (t)
		return t;
	t = calloc(1, sizeof(*t));
	t->buf.blkno = blkno;
	t->buf.tx = tx;
	t->buf.data = malloc(ms->bs);
	t->raw = raw;
	if (ms->blk[blkno].data) {
		memcpy(t->buf.data, ms->blk[blkno].data, ms->bs);
		t->before = malloc(ms->bs);
		memcpy(t->before, ms->blk[blkno].data, ms->bs);
	} else {
		memset(t->buf.data, 0, ms->bs);
	}
	tx->tb[blkno] = t;
	return t;
}

int pfs_tx_get(struct pfs_tx *tx, uint64_t blkno, const struct pfs_block_expect *exp,
	       struct pfs_buf **bp)
{
	struct pfs_memstore *ms = tx->ms;
	struct pfs_block_expect e = *exp;
	struct tblock *t;
	int ret;

	*bp = NULL;
	if (!blkno || blkno >= ms->nshards * ms->per_shard)
		return -EUCLEAN;
	t = tx->tb[blkno];
	if (t && t->state == T_RELEASED)
		return -EUCLEAN;
	if (!t && !ms->blk[blkno].data)
		return -EUCLEAN;	/* a free block read as metadata */
	if (!e.size)
		e.size = ms->bs;
	if (!e.uuid)
		e.uuid = ms->uuid;
	e.blkno = blkno;
	e.check_blkno = true;
	t = touch(tx, blkno, false);
	if (t->state == T_CLEAN) {
		ret = pfs_block_verify(t->buf.data, ms->bs, &e, NULL);
		if (ret)
			return ret;
	} else {
		struct pfs_blockhdr h;

		pfs_block_hdr_decode(t->buf.data, &h);
		if ((e.magic && h.magic != e.magic) || (e.check_owner && h.owner != e.owner))
			return -EUCLEAN;
	}
	t->buf.refs++;
	*bp = &t->buf;
	return 0;
}

int pfs_tx_get_raw(struct pfs_tx *tx, uint64_t blkno, struct pfs_buf **bp)
{
	struct pfs_memstore *ms = tx->ms;
	struct tblock *t;

	*bp = NULL;
	if (!blkno || blkno >= ms->nshards * ms->per_shard)
		return -EUCLEAN;
	t = tx->tb[blkno];
	if ((t && t->state == T_RELEASED) || (!t && !ms->blk[blkno].data))
		return -EUCLEAN;
	t = touch(tx, blkno, true);
	t->buf.refs++;
	*bp = &t->buf;
	return 0;
}

int pfs_tx_dirty(struct pfs_tx *tx, struct pfs_buf *b)
{
	struct tblock *t = (struct tblock *)b;

	if (b->tx != tx || t->state == T_RELEASED)
		return -EINVAL;
	if (t->state == T_CLEAN)
		t->state = T_DIRTY;
	return 0;
}

static int alloc_block(struct pfs_tx *tx, uint32_t shard, bool raw, struct tblock **tp)
{
	struct pfs_memstore *ms = tx->ms;
	uint64_t first = shard * ms->per_shard, b;

	if (shard >= ms->nshards)
		return -EINVAL;
	if (ms->fail_after == 0)
		return -ENOSPC;
	if ((int64_t)ms->used[shard] + tx->delta_used[shard] >= (int64_t)ms->limit[shard])
		return -ENOSPC;
	for (b = first ? first : 1; b < first + ms->per_shard; b++) {
		struct tblock *t = tx->tb[b];

		/* free in the committed state and not taken by this tx; a block
		 * released by this tx is not reused before commit */
		if (!ms->blk[b].data && !t)
			break;
	}
	if (b == first + ms->per_shard)
		return -ENOSPC;
	if (ms->fail_after > 0)
		ms->fail_after--;
	*tp = touch(tx, b, raw);
	(*tp)->state = T_NEW;
	tx->delta_used[shard]++;
	return 0;
}

int pfs_tx_new(struct pfs_tx *tx, uint32_t shard, uint32_t magic, uint64_t owner,
	       uint16_t level, struct pfs_buf **bp)
{
	struct pfs_blockhdr h = { .magic = magic, .size = tx->ms->bs, .level = level,
				  .owner = owner };
	struct tblock *t;
	int ret;

	*bp = NULL;
	ret = alloc_block(tx, shard, false, &t);
	if (ret)
		return ret;
	h.blkno = t->buf.blkno;
	memcpy(h.uuid, tx->ms->uuid, 16);
	pfs_block_hdr_encode(t->buf.data, &h);
	t->buf.refs++;
	*bp = &t->buf;
	return 0;
}

int pfs_tx_new_raw(struct pfs_tx *tx, uint32_t shard, struct pfs_buf **bp)
{
	struct tblock *t;
	int ret;

	*bp = NULL;
	ret = alloc_block(tx, shard, true, &t);
	if (ret)
		return ret;
	t->buf.refs++;
	*bp = &t->buf;
	return 0;
}

int pfs_tx_release(struct pfs_tx *tx, struct pfs_buf *b)
{
	struct tblock *t = (struct tblock *)b;
	uint32_t shard = (uint32_t)(b->blkno / tx->ms->per_shard);

	if (b->tx != tx || t->state == T_RELEASED)
		return -EINVAL;
	pfs_buf_put(b);
	t->state = T_RELEASED;
	tx->delta_used[shard]--;
	return 0;
}

static void tx_free(struct pfs_tx *tx)
{
	for (uint64_t i = 0; i < tx->ms->nshards * tx->ms->per_shard; i++) {
		if (!tx->tb[i])
			continue;
		free(tx->tb[i]->buf.data);
		free(tx->tb[i]->before);
		free(tx->tb[i]);
	}
	free(tx->tb);
	free(tx->delta_used);
	free(tx);
}

void pfs_memtx_abort(struct pfs_tx *tx)
{
	tx_free(tx);	/* the committed images were never touched */
}

int pfs_memtx_commit(struct pfs_tx *tx)
{
	struct pfs_memstore *ms = tx->ms;
	uint64_t n = ms->nshards * ms->per_shard;
	int bad = 0;

	for (uint64_t i = 0; i < n; i++) {
		struct tblock *t = tx->tb[i];

		if (!t)
			continue;
		if (t->buf.refs) {
			fprintf(stderr, "memtx: block %llu still has %d reference(s) at commit (T3)\n",
				(unsigned long long)i, t->buf.refs);
			bad = 1;
		}
		if (t->state == T_CLEAN && t->before &&
		    memcmp(t->before, t->buf.data, ms->bs)) {
			fprintf(stderr, "memtx: block %llu changed without pfs_tx_dirty (T1)\n",
				(unsigned long long)i);
			bad = 1;
		}
		if ((t->state == T_DIRTY || t->state == T_NEW) && !t->raw && !ms->unchecked) {
			struct pfs_blockhdr h;

			pfs_block_hdr_decode(t->buf.data, &h);
			if (pfs_block_ops_find(h.magic) &&	/* a test's own type: not */
			    pfs_block_ops_verify(ms->bs, t->buf.data, &h)) {
				fprintf(stderr, "memtx: block %llu (magic 0x%08x, level %u, nr %u) "
					"malformed at commit (BV2)\n", (unsigned long long)i,
					h.magic, h.level, h.nr);
				bad = 1;
			}
		}
	}
	if (bad) {
		tx_free(tx);
		return -EPROTO;
	}
	ms->lsn++;
	for (uint64_t i = 0; i < n; i++) {
		struct tblock *t = tx->tb[i];
		uint32_t shard = (uint32_t)(i / ms->per_shard);

		if (!t)
			continue;
		if (t->state == T_RELEASED) {
			if (ms->blk[i].data) {
				free(ms->blk[i].data);
				ms->blk[i].data = NULL;
				ms->used[shard]--;
			}
			continue;
		}
		if (t->state == T_CLEAN)
			continue;
		if (!t->raw) {
			struct pfs_dblock_hdr *h = (struct pfs_dblock_hdr *)t->buf.data;

			h->lsn = htole64(ms->lsn);
			pfs_block_seal(t->buf.data);
		}
		if (!ms->blk[i].data) {
			ms->blk[i].data = malloc(ms->bs);
			ms->used[shard]++;
		}
		memcpy(ms->blk[i].data, t->buf.data, ms->bs);
		ms->blk[i].raw = t->raw;
	}
	tx_free(tx);
	return 0;
}
