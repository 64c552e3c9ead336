/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * An object's extent map: its extent records inline in the onode while
 * they fit (data_fmt EXTENTS: data_len / 32 records at the start of the
 * inline area, sorted by lblk), then a B+tree (data_fmt BTREE). The same
 * calls serve both, so objop.c and read.c never ask which one they have.
 *
 * Invariants:
 *   E1. data_fmt is EXTENTS (possibly with no record) or BTREE; BTREE iff
 *       the extents root is set.
 *   E2. Inline records are sorted by lblk, never overlap, and fit beside
 *       the inline xattrs: data_len + xattr_len <= POSFS_INLINE_SIZE.
 *   E3. The move to a B+tree happens when an insert does not fit inline;
 *       the tree keeps the records afterwards until it is empty (no move
 *       back before), so a map that shrinks and grows again does not
 *       churn.
 *   E4. Every record handed out (lookups, destroy) has passed
 *       pfs_verify_extent (verify.h, V1): a crafted record is -EUCLEAN
 *       here, before any caller computes with it.
 */
#include <errno.h>
#include <string.h>

#include "format/endian.h"
#include "store/extmap.h"
#include "store/store_internal.h"
#include "store/verify.h"

#define REC sizeof(struct pfs_dextent)

static struct pfs_btree tree_of(const struct pfs_extmap *em)
{
	struct pfs_btree bt = { &pfs_btree_extent_ops, &em->o->extents, em->shard, em->o->oid };

	return bt;
}

static bool is_tree(const struct pfs_extmap *em)
{
	return em->o->data_fmt == POSFS_DATA_BTREE;
}

static unsigned inline_count(const struct pfs_extmap *em)
{
	return em->o->data_fmt == POSFS_DATA_EXTENTS ? em->o->data_len / REC : 0;
}

static struct pfs_dextent *inline_rec(struct pfs_extmap *em, unsigned i)
{
	return (struct pfs_dextent *)(em->o->inline_area + i * REC);
}

static uint64_t rec_key(const struct pfs_dextent *d)
{
	return le64_get(d->lblk);
}

/* Index of the first inline record with key > key. */
static unsigned upper(struct pfs_extmap *em, uint64_t key)
{
	unsigned lo = 0, hi = inline_count(em);

	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;

		if (rec_key(inline_rec(em, mid)) <= key)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* E4: what a lookup hands out. */
static int checked(struct pfs_extmap *em, int ret, const struct pfs_dextent *d)
{
	if (ret)
		return ret;
	return pfs_verify_extent(pfs_tx_store(em->tx), em->o->oid, d, UINT64_MAX);
}

int pfs_extmap_lookup_le(struct pfs_extmap *em, uint64_t key, struct pfs_dextent *d)
{
	unsigned i;

	if (is_tree(em)) {
		struct pfs_btree bt = tree_of(em);

		return checked(em, pfs_btree_lookup_le(em->tx, &bt, key, d), d);
	}
	i = upper(em, key);
	if (!i)
		return -ENOENT;
	memcpy(d, inline_rec(em, i - 1), REC);
	return checked(em, 0, d);
}

int pfs_extmap_lookup_ge(struct pfs_extmap *em, uint64_t key, struct pfs_dextent *d)
{
	unsigned i;

	if (is_tree(em)) {
		struct pfs_btree bt = tree_of(em);

		return checked(em, pfs_btree_lookup_ge(em->tx, &bt, key, d), d);
	}
	i = upper(em, key);
	if (i && rec_key(inline_rec(em, i - 1)) == key)
		i--;
	if (i >= inline_count(em))
		return -ENOENT;
	memcpy(d, inline_rec(em, i), REC);
	return checked(em, 0, d);
}

static int to_tree(struct pfs_extmap *em)
{
	struct pfs_dextent recs[POSFS_INLINE_SIZE / REC];
	unsigned n = inline_count(em);
	struct pfs_btree bt;
	int ret = 0;

	memcpy(recs, em->o->inline_area, n * REC);
	memset(em->o->inline_area, 0, n * REC);
	em->o->data_len = 0;
	em->o->data_fmt = POSFS_DATA_BTREE;
	em->o->extents = (struct pfs_tree_root){ 0, 0 };
	bt = tree_of(em);
	for (unsigned i = 0; !ret && i < n; i++)
		ret = pfs_btree_insert(em->tx, &bt, &recs[i]);
	if (!ret && !em->o->extents.blkno)
		em->o->data_fmt = POSFS_DATA_EXTENTS;	/* nothing was inline */
	return ret;		/* on error the transaction rolls back */
}

int pfs_extmap_insert(struct pfs_extmap *em, const struct pfs_dextent *d)
{
	uint64_t key = rec_key(d);
	unsigned i, n;
	int ret;

	if (!is_tree(em)) {
		n = inline_count(em);
		i = upper(em, key);
		if (i && rec_key(inline_rec(em, i - 1)) == key)
			return -EEXIST;
		if ((n + 1) * REC + em->o->xattr_len <= POSFS_INLINE_SIZE) {	/* E2 */
			memmove(inline_rec(em, i + 1), inline_rec(em, i), (n - i) * REC);
			memcpy(inline_rec(em, i), d, REC);
			em->o->data_fmt = POSFS_DATA_EXTENTS;
			em->o->data_len = (uint16_t)((n + 1) * REC);
			return 0;
		}
		ret = to_tree(em);		/* E3 */
		if (ret)
			return ret;
	}
	{
		struct pfs_btree bt = tree_of(em);

		ret = pfs_btree_insert(em->tx, &bt, d);
		if (!ret)
			em->o->data_fmt = POSFS_DATA_BTREE;
		return ret;
	}
}

int pfs_extmap_update(struct pfs_extmap *em, const struct pfs_dextent *d)
{
	unsigned i;

	if (is_tree(em)) {
		struct pfs_btree bt = tree_of(em);

		return pfs_btree_update(em->tx, &bt, d);
	}
	i = upper(em, rec_key(d));
	if (!i || rec_key(inline_rec(em, i - 1)) != rec_key(d))
		return -ENOENT;
	memcpy(inline_rec(em, i - 1), d, REC);
	return 0;
}

/* E1: a tree emptied by deletes is an empty inline map again. */
static int settle(struct pfs_extmap *em, int ret)
{
	if (!ret && is_tree(em) && !em->o->extents.blkno) {
		em->o->data_fmt = POSFS_DATA_EXTENTS;
		em->o->data_len = 0;
	}
	return ret;
}

int pfs_extmap_delete(struct pfs_extmap *em, uint64_t key)
{
	unsigned i, n;

	if (is_tree(em)) {
		struct pfs_btree bt = tree_of(em);

		return settle(em, pfs_btree_delete(em->tx, &bt, key));
	}
	n = inline_count(em);
	i = upper(em, key);
	if (!i || rec_key(inline_rec(em, i - 1)) != key)
		return -ENOENT;
	memmove(inline_rec(em, i - 1), inline_rec(em, i), (n - i) * REC);
	memset(inline_rec(em, n - 1), 0, REC);
	em->o->data_len = (uint16_t)((n - 1) * REC);
	return 0;
}

int pfs_extmap_replace(struct pfs_extmap *em, uint64_t old_key, const struct pfs_dextent *d)
{
	int ret;

	if (is_tree(em)) {
		struct pfs_btree bt = tree_of(em);

		return settle(em, pfs_btree_replace(em->tx, &bt, old_key, d));
	}
	if (old_key == rec_key(d))
		return pfs_extmap_update(em, d);
	ret = pfs_extmap_delete(em, old_key);
	return ret ? ret : pfs_extmap_insert(em, d);
}

/* E4 for destroy: a record is checked before fn frees its blocks. */
struct destroy_ctx {
	struct pfs_extmap *em;
	int (*fn)(void *arg, const void *rec);
	void *arg;
};

static int destroy_one(void *arg, const void *rec)
{
	struct destroy_ctx *dc = arg;
	struct pfs_dextent d;
	int ret;

	memcpy(&d, rec, REC);
	ret = checked(dc->em, 0, &d);
	return ret ? ret : dc->fn(dc->arg, rec);
}

int pfs_extmap_destroy(struct pfs_extmap *em, int (*fn)(void *arg, const void *rec), void *arg)
{
	struct destroy_ctx dc = { em, fn, arg };
	unsigned n = inline_count(em);
	int ret = 0;

	if (is_tree(em)) {
		struct pfs_btree bt = tree_of(em);

		ret = pfs_btree_destroy(em->tx, &bt, destroy_one, &dc);
		if (!ret) {
			em->o->data_fmt = POSFS_DATA_EXTENTS;
			em->o->data_len = 0;
		}
		return ret;
	}
	for (unsigned i = 0; !ret && i < n; i++)
		ret = destroy_one(&dc, inline_rec(em, i));
	if (!ret) {
		memset(em->o->inline_area, 0, n * REC);
		em->o->data_len = 0;
	}
	return ret;
}

bool pfs_extmap_empty(const struct pfs_extmap *em)
{
	return is_tree(em) ? !em->o->extents.blkno : inline_count(em) == 0;
}
