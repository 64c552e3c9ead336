/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The checks of the block pointers the store follows; see verify.h for
 * the invariants V1-V3.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/endian.h"
#include "store/store_internal.h"
#include "store/verify.h"

/* ---- free0: the free space at open ---------------------------------------- */

struct free0_fill {
	struct pfs_free0 *f;
	size_t cap;
};

static int free0_add(void *arg, uint64_t start, uint64_t len, uint64_t seq)
{
	struct free0_fill *w = arg;

	(void)seq;
	if (w->f->n == w->cap)
		return -ENOMEM;		/* the count changed under us: cannot */
	w->f->start[w->f->n] = start;
	w->f->len[w->f->n] = len;
	w->f->n++;
	return 0;
}

int pfs_verify_open(struct pfs_store *st)
{
	int ret = 0;

	st->open_txid = __atomic_load_n(&st->next_txid, __ATOMIC_RELAXED);
	for (uint32_t i = 0; !ret && i < st->nshards; i++) {
		struct pfs_shard *sh = &st->shards[i];
		size_t n = pfs_alloc_extent_count(&sh->alloc);
		struct free0_fill w = { &sh->free0, n };

		sh->free0.n = 0;
		sh->free0.start = malloc((n ? n : 1) * sizeof(uint64_t));
		sh->free0.len = malloc((n ? n : 1) * sizeof(uint64_t));
		if (!sh->free0.start || !sh->free0.len)
			ret = -ENOMEM;
		else
			ret = pfs_alloc_foreach_free(&sh->alloc, 0, free0_add, &w);
		/* V3: what replay read is read again, through the checks */
		pfs_bcache_drop_clean(&sh->cache);
		if (!ret) {
			size_t cap = sh->onodes.capacity;

			pfs_ocache_fini(&sh->onodes);
			ret = pfs_ocache_init(&sh->onodes, cap);
		}
	}
	if (!ret)
		st->free0_taken = true;
	return ret;
}

void pfs_verify_close(struct pfs_store *st)
{
	for (uint32_t i = 0; st->shards && i < st->nshards; i++) {
		free(st->shards[i].free0.start);
		free(st->shards[i].free0.len);
		free(st->shards[i].free0.bad);
		memset(&st->shards[i].free0, 0, sizeof(st->shards[i].free0));
	}
	st->free0_taken = false;
}

/* Does [pblk, pblk + n) of shard sh overlap its free0? */
static bool free0_overlaps(const struct pfs_free0 *f, uint64_t pblk, uint64_t n)
{
	size_t lo = 0, hi = f->n;

	/* the last extent that starts before the range's end */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (f->start[mid] < pblk + n)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo && f->start[lo - 1] + f->len[lo - 1] > pblk;
}

/* ---- extents ---------------------------------------------------------------- */

bool pfs_verify_data_range(struct pfs_store *st, uint64_t pblk, uint64_t n)
{
	struct pfs_shard *sh = pfs_store_block_shard(st, pblk);

	return sh && n && pblk + n > pblk &&
	       pblk + n <= sh->geo.data_start + sh->geo.data_blocks;
}

static int extent_bad(struct pfs_store *st, uint64_t oid, const struct pfs_extent *e,
		      const char *why)
{
	char what[160];

	snprintf(what, sizeof(what), "%s (logical block %" PRIu64 ", device block %" PRIu64
		 ", %" PRIu32 " blocks)", why, e->lblk, e->pblk, e->plen);
	return pfs_store_object_error(st, oid, what);
}

int pfs_verify_extent(struct pfs_store *st, uint64_t oid, const struct pfs_dextent *d,
		      uint64_t lsn)
{
	struct pfs_extent e;

	if (pfs_extent_from_disk(d, &e)) {
		e.lblk = le64_get(d->lblk);
		e.pblk = le64_get(d->pblk);
		e.plen = le32_get(d->plen);
		return extent_bad(st, oid, &e, "bad extent record");
	}
	if (!pfs_verify_data_range(st, e.pblk, e.plen))			/* V1 */
		return extent_bad(st, oid, &e, "extent outside the data area");
	if (st->free0_taken && lsn < st->open_txid &&
	    free0_overlaps(&pfs_store_block_shard(st, e.pblk)->free0, e.pblk, e.plen))
		return extent_bad(st, oid, &e, "extent over free space");	/* V2 */
	return 0;
}

int pfs_verify_onode(struct pfs_store *st, const struct pfs_onode *o, uint64_t lsn)
{
	if (o->data_fmt != POSFS_DATA_EXTENTS)
		return 0;
	for (unsigned i = 0; i < o->data_len / sizeof(struct pfs_dextent); i++) {
		struct pfs_dextent d;
		int ret;

		memcpy(&d, o->inline_area + i * sizeof(d), sizeof(d));
		ret = pfs_verify_extent(st, o->oid, &d, lsn);
		if (ret)
			return ret;
	}
	return 0;
}

/* ---- block verifiers ---------------------------------------------------------- */

static int extent_leaf_verify(struct pfs_store *st, const void *data,
			      const struct pfs_blockhdr *h)
{
	const uint8_t *rec = (const uint8_t *)data + sizeof(struct pfs_dblock_hdr);
	size_t cap = (st->sb.block_size - sizeof(struct pfs_dblock_hdr)) /
		     sizeof(struct pfs_dextent);

	if (h->level)
		return 0;
	if (h->nr > cap)
		return -EUCLEAN;	/* the tree's own check names it */
	for (unsigned i = 0; i < h->nr; i++) {
		struct pfs_dextent d;
		int ret;

		memcpy(&d, rec + i * sizeof(d), sizeof(d));
		ret = pfs_verify_extent(st, h->owner, &d, h->lsn);
		if (ret)
			return ret;
	}
	return 0;
}

bool pfs_verify_bad_onode(const struct pfs_shard *sh, uint64_t oid)
{
	for (size_t i = 0; i < sh->free0.nbad; i++)
		if (sh->free0.bad[i] == oid)
			return true;
	return false;
}

static void note_bad_onode(struct pfs_shard *sh, uint64_t oid)
{
	if (pfs_verify_bad_onode(sh, oid))
		return;
	if (sh->free0.nbad == sh->free0.bad_cap) {
		size_t cap = sh->free0.bad_cap ? 2 * sh->free0.bad_cap : 8;
		uint64_t *p = realloc(sh->free0.bad, cap * sizeof(*p));

		if (!p)
			return;		/* V2 is then checked at each read below */
		sh->free0.bad = p;
		sh->free0.bad_cap = cap;
	}
	sh->free0.bad[sh->free0.nbad++] = oid;
}

static int onode_leaf_verify(struct pfs_store *st, const void *data,
			     const struct pfs_blockhdr *h)
{
	const struct pfs_donode *slot = (const struct pfs_donode *)
		((const uint8_t *)data + sizeof(struct pfs_dblock_hdr));
	struct pfs_shard *sh;
	int ret = 0;

	if (h->lsn >= st->open_txid || h->owner < POSFS_OWNER_SHARD(0) ||
	    h->owner - POSFS_OWNER_SHARD(0) >= st->nshards)
		return 0;	/* written since open; or the tree's check fails it */
	sh = &st->shards[h->owner - POSFS_OWNER_SHARD(0)];
	for (size_t i = 0; i < POSFS_ONODES_PER_LEAF(st->sb.block_size); i++) {
		struct pfs_onode o;

		if (!slot[i].oid || pfs_onode_from_disk(&slot[i], &o))
			continue;	/* the radix tree's own checks */
		if (pfs_verify_onode(st, &o, h->lsn)) {
			note_bad_onode(sh, o.oid);
			if (!pfs_verify_bad_onode(sh, o.oid))
				ret = -ENOMEM;	/* could not note it: fail the leaf */
		}
	}
	return ret;
}

/* The content verifiers, by block type (as xfs's buf_ops). */
static const struct {
	uint32_t magic;
	int (*verify)(struct pfs_store *st, const void *data, const struct pfs_blockhdr *h);
} verifiers[] = {
	{ POSFS_MAGIC_EXTENT, extent_leaf_verify },
	{ POSFS_MAGIC_ONODES, onode_leaf_verify },
};

int pfs_verify_block(struct pfs_store *st, const void *data, const struct pfs_blockhdr *h)
{
	for (size_t i = 0; i < sizeof(verifiers) / sizeof(verifiers[0]); i++)
		if (verifiers[i].magic == h->magic)
			return verifiers[i].verify(st, data, h);
	return 0;
}
