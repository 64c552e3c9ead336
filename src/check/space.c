/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Pass 2: space. Each shard's free-space tree is walked and compared with
 * the block map of pass 1; the shared-blob tree with the shared counts;
 * the header's counters with what pass 1 found.
 *
 *   K3. After this pass (when repairs are allowed) a shard's free tree
 *       holds exactly the blocks of its data area that are not marked:
 *       a damaged or disagreeing tree is rebuilt from the block map
 *       (pfs_space_rebuild), as e2fsck recomputes its bitmaps.
 *   K4. A shared-blob record exists for exactly the blocks found under
 *       two extents or more, with that count.
 *
 * Then the free trees are loaded into the allocators: from here on the
 * store allocates and frees as it does when mounted (pass 3 repairs).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "check/check_internal.h"
#include "format/endian.h"
#include "store/btree.h"
#include "store/refcount.h"
#include "store/store_internal.h"

struct range {
	uint64_t start, len;
};

struct ranges {
	struct range *r;
	size_t n, cap;
};

static int ranges_add(struct ranges *v, uint64_t start, uint64_t len)
{
	if (v->n == v->cap) {
		size_t cap = v->cap ? v->cap * 2 : 256;
		struct range *nr = realloc(v->r, cap * sizeof(*nr));

		if (!nr)
			return -ENOMEM;
		v->r = nr;
		v->cap = cap;
	}
	v->r[v->n++] = (struct range){ start, len };
	return 0;
}

static void unmark(struct pfs_check *c, const struct ranges *v)
{
	for (size_t i = 0; i < v->n; i++)
		pfs_check_unmark(c, v->r[i].start);
}

/* A tree walk of pass 2: its node blocks, its records. */
struct tree_walk {
	struct pfs_check *c;
	const struct pfs_shard_geo *g;
	struct ranges nodes;		/* marked by the walk (len 1) */
	struct ranges recs;		/* free: start, len; refcount: pblk, len | refs << 32 */
	uint64_t prev_end;
	bool refcount;
	const char *why;
};

static int tw_node(void *arg, uint64_t blkno, unsigned level)
{
	struct tree_walk *w = arg;

	(void)level;
	if (blkno < w->g->data_start || blkno >= w->g->data_start + w->g->data_blocks) {
		w->why = "a tree block is outside the shard's data area";
		return -EUCLEAN;
	}
	if (pfs_check_used(w->c, blkno)) {
		w->why = "a tree block is also used elsewhere";
		return -EUCLEAN;
	}
	pfs_check_mark(w->c, blkno);
	return ranges_add(&w->nodes, blkno, 1);
}

static int tw_rec(void *arg, const void *rec)
{
	struct tree_walk *w = arg;
	uint64_t start, len, end = w->g->data_start + w->g->data_blocks;

	if (w->refcount) {
		const struct pfs_drefcount *r = rec;

		start = le64_get(r->pblk);
		len = le32_get(r->len) | (uint64_t)le32_get(r->refs) << 32;
		if (start < w->g->data_start || start + le32_get(r->len) > end ||
		    le32_get(r->refs) < 2) {
			w->why = "a record is out of range";
			return -EUCLEAN;
		}
	} else {
		const struct pfs_dfree *r = rec;

		start = le64_get(r->start);
		len = le64_get(r->len);
		if (start < w->g->data_start || start + len > end || start + len < start ||
		    start < w->prev_end) {
			w->why = "a record is out of range";
			return -EUCLEAN;
		}
		w->prev_end = start + len;
	}
	return ranges_add(&w->recs, start, len);
}

static int walk_tree(struct pfs_check *c, uint32_t shard, bool refcount, struct tree_walk *w)
{
	struct pfs_shard *sh = &c->st->shards[shard];
	struct pfs_btree bt = {
		refcount ? &pfs_btree_refcount_ops : &pfs_btree_free_ops,
		refcount ? &sh->hdr.refcount : &sh->hdr.free,
		shard, POSFS_OWNER_SHARD(shard),
	};
	struct pfs_btree_check_cb cb = { tw_node, tw_rec, w };
	struct pfs_btree_stats bs = { 0 };
	struct pfs_tx *tx;
	int ret;

	w->c = c;
	w->g = &sh->geo;
	w->refcount = refcount;
	ret = pfs_tx_begin_read(c->st, &shard, 1, &tx);
	if (ret)
		return ret;
	ret = pfs_btree_check(tx, &bt, &cb, &bs);
	pfs_tx_abort(tx);
	if (ret == -EUCLEAN && !w->why)
		w->why = bs.problem;
	if (ret == -EBADMSG && !w->why)
		w->why = "bad checksum";
	if (ret == -EUCLEAN || ret == -EBADMSG) {
		unmark(c, &w->nodes);	/* K2 */
		w->nodes.n = 0;
	}
	return ret;
}

/* ---- free space ------------------------------------------------------------ */

struct free_cmp {
	uint64_t leaked, leak_at;	/* blocks free by the map, not in the tree */
	uint64_t used, used_at;		/* blocks in the tree and in use */
};

static void compare_free(const struct pfs_check *c, const struct pfs_shard_geo *g,
			 const struct ranges *f, struct free_cmp *r)
{
	uint64_t b = g->data_start, end = g->data_start + g->data_blocks;

	memset(r, 0, sizeof(*r));
	for (size_t i = 0; i <= f->n; i++) {
		uint64_t fs = i < f->n ? f->r[i].start : end;
		uint64_t fe = i < f->n ? fs + f->r[i].len : end;

		for (; b < fs; b++)
			if (!pfs_check_used(c, b) && !r->leaked++)
				r->leak_at = b;
		for (; b < fe; b++)
			if (pfs_check_used(c, b) && !r->used++)
				r->used_at = b;
	}
}

/* The free extents of the block map, for pfs_space_rebuild. */
struct free_iter {
	const struct pfs_check *c;
	uint64_t b, end;
};

static int free_next(void *arg, uint64_t *start, uint64_t *len)
{
	struct free_iter *it = arg;

	while (it->b < it->end && pfs_check_used(it->c, it->b))
		it->b++;
	if (it->b >= it->end)
		return -ENOENT;
	*start = it->b;
	while (it->b < it->end && !pfs_check_used(it->c, it->b))
		it->b++;
	*len = it->b - *start;
	return 0;
}

/* ---- shared blobs ------------------------------------------------------------ */

struct shared_cmp {
	struct pfs_check *c;
	const struct pfs_shard_geo *g;
	uint64_t wrong, wrong_at;
};

/* Count found for b (0: none or one owner). */
static uint32_t shared_count(struct pfs_check *c, uint64_t b)
{
	uint32_t n = 0;

	return pfs_map_get(c->shared, b, &n) || n < 2 ? 0 : n;
}

static void compare_refcount(struct pfs_check *c, const struct pfs_shard_geo *g,
			     const struct ranges *recs, struct shared_cmp *r)
{
	/* every record's blocks have its count ... */
	for (size_t i = 0; i < recs->n; i++) {
		uint64_t s = recs->r[i].start, n = recs->r[i].len & 0xffffffffu;
		uint32_t refs = (uint32_t)(recs->r[i].len >> 32);

		for (uint64_t b = s; b < s + n; b++)
			if (shared_count(c, b) != refs && !r->wrong++)
				r->wrong_at = b;
	}
	(void)g;
}

/* ... and every block counted twice or more has a record. */
struct shared_scan {
	struct pfs_check *c;
	const struct pfs_shard_geo *g;
	const struct ranges *recs;
	struct shared_cmp *r;
};

static bool in_recs(const struct ranges *recs, uint64_t b)
{
	size_t lo = 0, hi = recs->n;

	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		uint64_t s = recs->r[mid].start, n = recs->r[mid].len & 0xffffffffu;

		if (b < s)
			hi = mid;
		else if (b >= s + n)
			lo = mid + 1;
		else
			return true;
	}
	return false;
}

static int shared_scan_fn(void *arg, uint64_t key, const void *val)
{
	struct shared_scan *sc = arg;
	uint32_t n;

	memcpy(&n, val, sizeof(n));
	if (key < sc->g->data_start || key >= sc->g->data_start + sc->g->data_blocks || n < 2)
		return 0;
	if (!in_recs(sc->recs, key) && !sc->r->wrong++)
		sc->r->wrong_at = key;
	return 0;
}

/* Put the counts of the block map into the (empty) shared-blob tree of
 * shard: n - 1 increments for a block found under n extents. */
struct refill {
	struct pfs_check *c;
	uint32_t shard;
	const struct pfs_shard_geo *g;
	uint64_t run_start, run_len;
	uint32_t run_refs;
	int err;
};

static int refill_flush(struct refill *rf)
{
	struct pfs_tx *tx;
	int ret;

	if (!rf->run_len)
		return 0;
	ret = pfs_tx_begin(rf->c->st, &rf->shard, 1, &tx);
	for (uint32_t i = 1; !ret && i < rf->run_refs; i++)
		ret = pfs_refcount_inc(tx, rf->run_start, rf->run_len);
	if (ret) {
		if (tx)
			pfs_tx_abort(tx);
		return ret;
	}
	ret = pfs_tx_commit_durable(tx);
	if (!ret && pfs_store_wal_full(rf->c->st))
		ret = pfs_store_checkpoint(rf->c->st);
	rf->run_len = 0;
	return ret;
}

static int refill_fn(void *arg, uint64_t key, const void *val)
{
	struct refill *rf = arg;
	uint32_t n;
	int ret;

	memcpy(&n, val, sizeof(n));
	if (key < rf->g->data_start || key >= rf->g->data_start + rf->g->data_blocks || n < 2)
		return 0;
	if (rf->run_len && rf->run_start + rf->run_len == key && rf->run_refs == n &&
	    rf->run_len < 1024) {
		rf->run_len++;
		return 0;
	}
	ret = refill_flush(rf);
	if (ret)
		return ret;
	rf->run_start = key;
	rf->run_len = 1;
	rf->run_refs = n;
	return 0;
}

/* ---- the pass ---------------------------------------------------------------- */

/* Set header counters of shard in a transaction. */
static int set_counters(struct pfs_check *c, uint32_t shard, const uint64_t *free_blocks,
			const uint64_t *onodes, const uint64_t *next_local,
			const struct pfs_tree_root *refcount)
{
	struct pfs_shard *sh = &c->st->shards[shard];
	struct pfs_tx *tx;
	int ret = pfs_tx_begin(c->st, &shard, 1, &tx);

	if (ret)
		return ret;
	if (free_blocks)
		sh->hdr.free_blocks = *free_blocks;
	if (onodes)
		sh->hdr.onode_count = *onodes;
	if (next_local)
		sh->hdr.next_local = *next_local;
	if (refcount)
		sh->hdr.refcount = *refcount;
	ret = pfs_tx_commit_durable(tx);
	return ret;
}

static int check_shard(struct pfs_check *c, uint32_t s, bool *refill)
{
	struct pfs_shard *sh = &c->st->shards[s];
	struct tree_walk fw = { 0 }, rw = { 0 };
	struct free_cmp fc;
	struct shared_cmp sc = { 0 };
	bool rebuild = false, fix;
	uint64_t sum = 0;
	int ret, fret, rret;

	/* shared blobs first: their tree's blocks are in use (or free, when
	 * the tree is rebuilt) before the free space is compared */
	rret = walk_tree(c, s, true, &rw);
	if (rret && rret != -EUCLEAN && rret != -EBADMSG) {
		ret = rret;
		goto out;
	}
	if (!rret) {
		struct shared_scan ss = { c, &sh->geo, &rw.recs, &sc };

		compare_refcount(c, &sh->geo, &rw.recs, &sc);
		ret = pfs_map_iterate(c->shared, shared_scan_fn, &ss);
		if (ret)
			goto out;
	}
	if (rret || sc.wrong) {
		if (rret)
			fix = pfs_check_problem(c, PFS_PR_REFCOUNT, "shard %u: shared-blob tree: %s",
						s, rw.why ? rw.why : "damaged");
		else
			fix = pfs_check_problem(c, PFS_PR_REFCOUNT, "shard %u: %" PRIu64
						" blocks with a wrong shared count, first %" PRIu64,
						s, sc.wrong, sc.wrong_at);
		if (fix) {
			struct pfs_tree_root empty = { 0, 0 };

			unmark(c, &rw.nodes);	/* the old tree's blocks become free */
			ret = set_counters(c, s, NULL, NULL, NULL, &empty);
			if (ret) {
				pfs_check_unfixed(c, ret);
				goto out;
			}
			*refill = true;		/* after the free trees are loaded */
			rebuild = true;		/* its blocks are free now */
			pfs_check_fixed(c);
		}
	}

	fret = walk_tree(c, s, false, &fw);
	if (fret && fret != -EUCLEAN && fret != -EBADMSG) {
		ret = fret;
		goto out;
	}
	if (fret) {
		if (pfs_check_problem(c, PFS_PR_FREE_TREE, "shard %u: %s", s,
				      fw.why ? fw.why : "damaged"))
			rebuild = true;
	} else {
		compare_free(c, &sh->geo, &fw.recs, &fc);
		for (size_t i = 0; i < fw.recs.n; i++)
			sum += fw.recs.r[i].len;
		if (fc.leaked && pfs_check_problem(c, PFS_PR_LEAK, "shard %u: %" PRIu64
						   " blocks, the first at %" PRIu64,
						   s, fc.leaked, fc.leak_at))
			rebuild = true;
		if (fc.used && pfs_check_problem(c, PFS_PR_FREE_USED, "shard %u: %" PRIu64
						 " blocks, the first at %" PRIu64,
						 s, fc.used, fc.used_at))
			rebuild = true;
		if (!fc.leaked && !fc.used && sum != sh->hdr.free_blocks &&
		    pfs_check_problem(c, PFS_PR_FREE_COUNT, "shard %u: %" PRIu64 " counted, %"
				      PRIu64 " free", s, sh->hdr.free_blocks, sum)) {
			ret = set_counters(c, s, &sum, NULL, NULL, NULL);
			if (ret) {
				pfs_check_unfixed(c, ret);
				goto out;
			}
			pfs_check_fixed(c);
		}
	}
	if (rebuild && !c->readonly) {
		struct free_iter it = { c, sh->geo.data_start,
					sh->geo.data_start + sh->geo.data_blocks };

		unmark(c, &fw.nodes);	/* the old tree's blocks are free */
		ret = pfs_space_rebuild(c->st, s, free_next, &it);
		if (ret) {
			pfs_check_unfixed(c, ret);
			goto out;
		}
		/* every problem of this tree asked with yes is now fixed */
		if (fret)
			pfs_check_fixed(c);
		else {
			if (fc.leaked)
				pfs_check_fixed(c);
			if (fc.used)
				pfs_check_fixed(c);
		}
	}

	if (c->onodes[s] != sh->hdr.onode_count &&
	    pfs_check_problem(c, PFS_PR_ONODE_COUNT, "shard %u: %" PRIu64 " counted, %" PRIu64
			      " found", s, sh->hdr.onode_count, c->onodes[s])) {
		ret = set_counters(c, s, NULL, &c->onodes[s], NULL, NULL);
		if (ret) {
			pfs_check_unfixed(c, ret);
			goto out;
		}
		pfs_check_fixed(c);
	}
	if (sh->hdr.next_local < c->max_local[s] &&
	    pfs_check_problem(c, PFS_PR_NEXT_LOCAL, "shard %u: next %" PRIu64 ", last object %"
			      PRIu64, s, sh->hdr.next_local, c->max_local[s] - 1)) {
		ret = set_counters(c, s, NULL, NULL, &c->max_local[s], NULL);
		if (ret) {
			pfs_check_unfixed(c, ret);
			goto out;
		}
		pfs_check_fixed(c);
	}
	ret = 0;
out:
	free(fw.nodes.r);
	free(fw.recs.r);
	free(rw.nodes.r);
	free(rw.recs.r);
	return ret;
}

int pfs_check_space(struct pfs_check *c)
{
	bool *refill = calloc(c->st->nshards, sizeof(*refill));
	int ret = refill ? 0 : -ENOMEM;

	for (uint32_t s = 0; !ret && s < c->st->nshards; s++) {
		ret = check_shard(c, s, &refill[s]);
		pfs_check_progress(c, PFS_PASS_SPACE, s + 1, c->st->nshards);
	}
	if (!ret && !c->readonly) {
		ret = pfs_store_load_space(c->st);
		if ((ret == -EUCLEAN || ret == -EBADMSG) && c->res->left) {
			/* a damaged free tree the answer kept: nothing can be
			 * allocated, so pass 3 cannot repair */
			c->no_space = true;
			ret = 0;
		}
	}
	for (uint32_t s = 0; !ret && !c->no_space && s < c->st->nshards; s++) {
		struct refill rf = { c, s, &c->st->shards[s].geo, 0, 0, 0, 0 };

		if (!refill[s])
			continue;
		ret = pfs_map_iterate(c->shared, refill_fn, &rf);
		if (!ret)
			ret = refill_flush(&rf);
	}
	free(refill);
	return ret;
}
