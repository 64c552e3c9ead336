/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Pass 1: objects. For each shard, the onode radix tree is walked by its
 * salvage walk (a damaged node or onode is reported and, when allowed,
 * cut); then each object's extent map and omap are walked by their own
 * fsck walks. Every block found is marked in the block map:
 *
 *   K1. A block is marked once. A block met a second time is damage in
 *       whatever met it second (an extent is dropped, a tree reset), except
 *       that blocks under extents flagged shared are counted in c->shared
 *       instead (pass 2 compares those counts with the shared-blob tree).
 *   K2. A tree found damaged gives back every mark it made, so that its
 *       blocks count as free (pass 2 then rebuilds the free tree).
 *
 * Repairs drop what is damaged and never allocate: the free trees are not
 * loaded during this pass (the store is opened for fsck), and blocks a
 * repair lets go of are simply not marked. Last, the data checksum tables
 * (csums.c).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "check/check_internal.h"
#include "format/endian.h"
#include "store/btree.h"
#include "store/extmap.h"
#include "store/omap.h"
#include "store/radix.h"
#include "store/store_internal.h"

#define BATCH 64u	/* objects checked per transaction */

/* Blocks marked by the tree under walk (K2). */
struct marks {
	uint64_t *b;
	size_t n, cap;
};

static int marks_add(struct marks *m, uint64_t b)
{
	if (m->n == m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 64;
		uint64_t *nb = realloc(m->b, cap * sizeof(*nb));

		if (!nb)
			return -ENOMEM;
		m->b = nb;
		m->cap = cap;
	}
	m->b[m->n++] = b;
	return 0;
}

static void marks_undo(struct pfs_check *c, struct marks *m, size_t from)
{
	for (size_t i = from; i < m->n; i++)
		pfs_check_unmark(c, m->b[i]);
	m->n = from;
}

/* Mark a metadata block of a tree: -EEXIST when taken (K1), -ERANGE
 * when outside every data area. */
static int mark_meta(struct pfs_check *c, struct marks *m, uint64_t b)
{
	if (pfs_geo_block_shard(&c->sb, b) < 0)
		return -ERANGE;
	if (pfs_check_used(c, b))
		return -EEXIST;
	pfs_check_mark(c, b);
	return m ? marks_add(m, b) : 0;
}

/* ---- phase A: the radix tree ----------------------------------------------- */

struct radix_walk {
	struct pfs_check *c;
	uint32_t shard;
	struct pfs_map *objects;	/* oid -> nothing: what phase B visits */
};

static int rw_node(void *arg, uint64_t blkno, uint16_t level)
{
	struct radix_walk *w = arg;
	int ret = mark_meta(w->c, NULL, blkno);

	if (!ret)
		return 0;
	if (pfs_check_problem(w->c, PFS_PR_RADIX_NODE,
			      "shard %u: onode tree block %" PRIu64 " (level %u) %s", w->shard,
			      blkno, level, ret == -EEXIST ? "is also used elsewhere" :
			      "is outside the data area")) {
		pfs_check_fixed(w->c);
		return PFS_RADIX_CUT;
	}
	return 0;
}

/* In a map, not an array: on a device with more objects than memory
 * holds, the map moves to the scratch database. */
static int rw_onode(void *arg, uint64_t local, const struct pfs_onode *o)
{
	struct radix_walk *w = arg;
	uint8_t none = 0;

	(void)local;
	return pfs_map_put(w->objects, o->oid, &none);
}

static int rw_bad(void *arg, enum pfs_radix_bad what, uint64_t blkno, uint32_t slot, int err)
{
	struct radix_walk *w = arg;
	const char *why = err == -EBADMSG ? "bad checksum" : "not what it must be";
	bool fix;

	switch (what) {
	case PFS_RADIX_BAD_NODE:
		fix = pfs_check_problem(w->c, PFS_PR_RADIX_NODE, "shard %u: onode tree block %" PRIu64
					": %s", w->shard, blkno, why);
		break;
	case PFS_RADIX_BAD_ONODE:
		fix = pfs_check_problem(w->c, PFS_PR_ONODE, "shard %u: onode in block %" PRIu64
					" slot %u does not decode or is out of place",
					w->shard, blkno, slot);
		break;
	default:
		fix = pfs_check_problem(w->c, PFS_PR_RADIX_COUNT, "shard %u: onode tree block %"
					PRIu64 ": count, flags or unused bytes wrong",
					w->shard, blkno);
		break;
	}
	if (!fix)
		return 0;
	if (what == PFS_RADIX_BAD_NODE)
		pfs_check_unmark(w->c, blkno);	/* K2 */
	pfs_check_fixed(w->c);
	return PFS_RADIX_CUT;
}

/* A node marked on the way down that the repairs took out of the tree:
 * its block is free (K2). */
static void rw_cut(void *arg, uint64_t blkno)
{
	struct radix_walk *w = arg;

	pfs_check_unmark(w->c, blkno);
}

static int walk_radix(struct pfs_check *c, uint32_t shard, struct radix_walk *w)
{
	struct pfs_shard *sh = &c->st->shards[shard];
	struct pfs_radix_check_ops ops = { rw_node, rw_onode, rw_bad, rw_cut, w };
	struct pfs_radix rx = { &sh->hdr.onodes, shard };
	struct pfs_tx *tx;
	int ret;

	w->shard = shard;
	ret = c->readonly ? pfs_tx_begin_read(c->st, &shard, 1, &tx) :
			    pfs_tx_begin(c->st, &shard, 1, &tx);
	if (ret)
		return ret;
	ret = pfs_radix_salvage(tx, &rx, &ops, NULL);
	if (ret || c->readonly) {
		pfs_tx_abort(tx);
		return ret;
	}
	ret = pfs_tx_commit_durable(tx);
	return ret;
}

/* ---- phase B: each object ------------------------------------------------- */

struct obj_walk {
	struct pfs_check *c;
	struct pfs_onode *o;
	struct marks *m;
	uint64_t sectors;		/* data blocks found, in 512-byte units */
	uint64_t bad_lblk;		/* extent to drop */
	const char *why;
	int nbad;
	uint64_t xattrs;		/* xattr records met in the omap */
};

static uint64_t sectors_of(const struct pfs_check *c, uint64_t blocks)
{
	return blocks * (c->sb.block_size / 512);
}

/* One extent of the object: 0, or -ESRCH when it must be dropped. */
static int extent_mark(struct obj_walk *w, const struct pfs_extent *e)
{
	struct pfs_check *c = w->c;
	int s0 = pfs_geo_block_shard(&c->sb, e->pblk);
	size_t from = w->m->n;

	if (!e->plen || s0 < 0 || e->pblk + e->plen < e->pblk ||
	    pfs_geo_block_shard(&c->sb, e->pblk + e->plen - 1) != s0) {
		w->why = "points outside the data area";
		return -ESRCH;
	}
	for (uint64_t b = e->pblk; b < e->pblk + e->plen; b++) {
		if (e->flags & POSFS_EXTENT_SHARED) {
			uint32_t n = 0;
			int ret = pfs_map_get(c->shared, b, &n);

			if (ret && ret != -ENOENT)
				return ret;
			if (!ret || !pfs_check_used(c, b)) {
				n++;
				ret = pfs_map_put(c->shared, b, &n);
				if (ret)
					return ret;
				if (n == 1) {
					pfs_check_mark(c, b);
					ret = marks_add(w->m, b);
					if (ret)
						return ret;
				}
				continue;
			}
			/* used by a block that is not shared */
		} else if (!pfs_check_used(c, b)) {
			pfs_check_mark(c, b);
			if (marks_add(w->m, b))
				return -ENOMEM;
			continue;
		}
		marks_undo(c, w->m, from);
		w->why = "points at blocks already in use";
		return -ESRCH;
	}
	w->sectors += sectors_of(c, e->flags & POSFS_EXTENT_COMPRESSED ? e->plen : e->len);
	return 0;
}

/* A block of a tree under walk: a problem stops the walk as damage. */
static int walk_mark(struct obj_walk *w, uint64_t blkno)
{
	int ret = mark_meta(w->c, w->m, blkno);

	if (ret == -EEXIST || ret == -ERANGE) {
		w->why = ret == -EEXIST ? "a block of it is also used elsewhere" :
					  "a block of it is outside the data area";
		return -EUCLEAN;
	}
	return ret;
}

static int ow_ext_node(void *arg, uint64_t blkno, unsigned level)
{
	(void)level;
	return walk_mark(arg, blkno);
}

static int ow_ext_rec(void *arg, const void *rec)
{
	struct obj_walk *w = arg;
	struct pfs_extent e;
	int ret;

	if (pfs_extent_from_disk(rec, &e))
		return -EUCLEAN;
	ret = extent_mark(w, &e);
	if (ret == -ESRCH) {
		/* the tree is sound: drop this extent after the walk */
		if (!w->nbad++)
			w->bad_lblk = e.lblk;
		return 0;
	}
	return ret;
}

static int ow_omap_block(void *arg, uint64_t blkno, enum pfs_omap_block_kind kind,
			 uint32_t level)
{
	(void)kind;
	(void)level;
	return walk_mark(arg, blkno);
}

static const char *err_why(int err, const char *why)
{
	if (why)
		return why;
	return err == -EBADMSG ? "bad checksum" : "not what it must be";
}

/* The extent map of o: its marks, and repairs into o (*dirty). */
static int check_extents(struct pfs_check *c, struct pfs_tx *tx, struct pfs_onode *o,
			 struct marks *m, bool *dirty)
{
	uint32_t shard = POSFS_OID_SHARD(o->oid);
	struct obj_walk w = { .c = c, .o = o, .m = m };
	size_t from = m->n;
	int ret = 0;

	if (o->data_fmt == POSFS_DATA_INLINE)
		goto blocks;
	for (int round = 0; round < 64; round++) {
		struct pfs_extmap em = { tx, o, shard };

		w.sectors = 0;
		w.nbad = 0;
		w.why = NULL;
		if (o->data_fmt == POSFS_DATA_EXTENTS) {
			size_t n = o->data_len / sizeof(struct pfs_dextent);
			uint64_t next = 0;

			ret = o->data_len % sizeof(struct pfs_dextent) ? -EUCLEAN : 0;
			for (size_t i = 0; !ret && i < n; i++) {
				struct pfs_dextent d;
				struct pfs_extent e;

				memcpy(&d, o->inline_area + i * sizeof(d), sizeof(d));
				ret = pfs_extent_from_disk(&d, &e);
				if (!ret && (e.lblk < next || !e.len))
					ret = -EUCLEAN;
				if (!ret) {
					next = e.lblk + e.len;
					ret = ow_ext_rec(&w, &d);
				}
			}
		} else {
			struct pfs_btree bt = { &pfs_btree_extent_ops, &o->extents, shard, o->oid };
			struct pfs_btree_check_cb cb = { ow_ext_node, ow_ext_rec, &w };
			struct pfs_btree_stats bs = { 0 };

			ret = pfs_btree_check(tx, &bt, &cb, &bs);
			if (ret == -EUCLEAN && !w.why)
				w.why = bs.problem;
		}
		if (ret == -ENOMEM || ret == -EIO)
			return ret;
		if (ret) {
			marks_undo(c, m, from);		/* K2 */
			if (pfs_check_problem(c, PFS_PR_EXTENT_TREE, "object %#" PRIx64 ": %s",
					      o->oid, err_why(ret, w.why))) {
				o->data_fmt = POSFS_DATA_EXTENTS;
				o->data_len = 0;
				o->extents = (struct pfs_tree_root){ 0, 0 };
				*dirty = true;
				pfs_check_fixed(c);
			}
			w.sectors = 0;
			break;
		}
		if (!w.nbad)
			break;
		/* drop the first bad extent, walk again (a tree may change) */
		if (!pfs_check_problem(c, PFS_PR_EXTENT, "object %#" PRIx64 ": extent at block %"
				       PRIu64 " %s", o->oid, w.bad_lblk, w.why))
			break;
		marks_undo(c, m, from);
		ret = pfs_extmap_delete(&em, w.bad_lblk);
		if (ret) {
			pfs_check_unfixed(c, ret);
			return ret == -ENOMEM || ret == -EIO ? ret : 0;
		}
		*dirty = true;
		pfs_check_fixed(c);
	}
blocks:
	if (w.sectors != o->blocks &&
	    pfs_check_problem(c, PFS_PR_BLOCKS, "object %#" PRIx64 ": %" PRIu64
			      " sectors counted, %" PRIu64 " found", o->oid, o->blocks, w.sectors)) {
		o->blocks = w.sectors;
		*dirty = true;
		pfs_check_fixed(c);
	}
	return 0;
}

static int ow_omap_rec(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct obj_walk *w = arg;
	const uint8_t *k = key;

	(void)val;
	(void)vlen;
	if (klen >= 2 && !k[0] && k[1] == 'x')
		w->xattrs++;	/* the store's xattr records: "\0x" + name */
	return 0;
}

static int check_omap(struct pfs_check *c, struct pfs_tx *tx, struct pfs_onode *o,
		      struct marks *m, bool *dirty)
{
	uint64_t count = o->omap_count;
	struct pfs_omap om = { &o->omap, &count, POSFS_OID_SHARD(o->oid), o->oid };
	struct obj_walk w = { .c = c, .o = o, .m = m };
	struct pfs_omap_check_ops ops = { ow_omap_block, ow_omap_rec, &w };
	struct pfs_omap_stats st = { 0 };
	size_t from = m->n;
	int ret;

	if (!o->omap.blkno && !o->omap.height && !o->omap_count && !o->xattr_omap_count)
		return 0;
	ret = pfs_omap_check(tx, &om, &ops, &st);
	if (ret == -EUCLEAN && st.records != count) {
		/* only the count? the same walk with the count it found */
		marks_undo(c, m, from);
		count = st.records;
		w.xattrs = 0;
		ret = pfs_omap_check(tx, &om, &ops, &st);
	}
	if (ret == -ENOMEM || ret == -EIO)
		return ret;
	if (!ret) {
		if ((count != o->omap_count || w.xattrs != o->xattr_omap_count) &&
		    pfs_check_problem(c, PFS_PR_OMAP_COUNT, "object %#" PRIx64 ": %" PRIu64
				      " records and %" PRIu64 " xattrs counted, %" PRIu64 " and %"
				      PRIu64 " found", o->oid, o->omap_count, o->xattr_omap_count,
				      count, w.xattrs)) {
			o->omap_count = count;
			o->xattr_omap_count = w.xattrs;
			*dirty = true;
			pfs_check_fixed(c);
		}
		return 0;
	}
	marks_undo(c, m, from);		/* K2 */
	if (pfs_check_problem(c, PFS_PR_OMAP, "object %#" PRIx64 ": %s", o->oid,
			      err_why(ret, w.why))) {
		o->omap = (struct pfs_tree_root){ 0, 0 };
		o->omap_count = 0;
		o->xattr_omap_count = 0;
		*dirty = true;
		pfs_check_fixed(c);
	}
	return 0;
}

static int check_batch(struct pfs_check *c, uint32_t shard, const uint64_t *locals, size_t n,
		       struct marks *m)
{
	struct pfs_shard *sh = &c->st->shards[shard];
	struct pfs_radix rx = { &sh->hdr.onodes, shard };
	struct pfs_tx *tx;
	bool changed = false;
	int ret;

	ret = c->readonly ? pfs_tx_begin_read(c->st, &shard, 1, &tx) :
			    pfs_tx_begin(c->st, &shard, 1, &tx);
	if (ret)
		return ret;
	for (size_t i = 0; !ret && i < n; i++) {
		struct pfs_onode o;
		bool dirty = false;

		ret = pfs_radix_lookup(tx, &rx, locals[i], &o);
		if (ret)
			break;	/* phase A saw it */
		m->n = 0;
		if (pfs_onode_check_xattrs(&o) &&
		    pfs_check_problem(c, PFS_PR_XATTRS, "object %#" PRIx64 ": %u bytes, %u entries",
				      o.oid, o.xattr_len, o.xattr_count)) {
			memset(o.inline_area + POSFS_INLINE_SIZE - o.xattr_len, 0, o.xattr_len);
			o.xattr_len = 0;
			o.xattr_count = 0;
			dirty = true;
			pfs_check_fixed(c);
		}
		ret = check_extents(c, tx, &o, m, &dirty);
		if (!ret)
			ret = check_omap(c, tx, &o, m, &dirty);
		if (!ret && dirty) {
			ret = pfs_radix_update(tx, &rx, &o);
			pfs_ocache_drop(&sh->onodes, o.oid);
			changed = true;
		}
		if (!ret) {
			c->onodes[shard]++;
			if (locals[i] + 1 > c->max_local[shard])
				c->max_local[shard] = locals[i] + 1;
		}
	}
	if (ret || !changed) {
		pfs_tx_abort(tx);
		return ret;
	}
	ret = pfs_tx_commit_durable(tx);
	return ret;
}

/* Phase B over the objects map, in oid order: batches of one shard. */
struct batcher {
	struct pfs_check *c;
	struct marks m;
	uint32_t shard;
	uint64_t locals[BATCH];
	size_t n;
	uint64_t done, total;
};

static int batch_flush(struct batcher *bt)
{
	struct pfs_check *c = bt->c;
	int ret = 0;

	if (!bt->n)
		return 0;
	/* room in the WAL for a batch of repairs */
	if (!c->readonly && pfs_store_wal_full(c->st))
		ret = pfs_store_checkpoint(c->st);
	if (!ret)
		ret = check_batch(c, bt->shard, bt->locals, bt->n, &bt->m);
	bt->done += bt->n;
	bt->n = 0;
	pfs_check_progress(c, PFS_PASS_OBJECTS, bt->done,
			   bt->total > bt->done ? bt->total : bt->done);
	return ret;
}

static int batch_add(void *arg, uint64_t oid, const void *val)
{
	struct batcher *bt = arg;
	int ret = 0;

	(void)val;
	if (bt->n && (bt->n == BATCH || POSFS_OID_SHARD(oid) != bt->shard))
		ret = batch_flush(bt);
	bt->shard = POSFS_OID_SHARD(oid);
	bt->locals[bt->n++] = POSFS_OID_LOCAL(oid);
	return ret;
}

int pfs_check_objects(struct pfs_check *c)
{
	struct batcher bt = { .c = c };
	struct radix_walk w = { .c = c };
	int ret;

	for (uint32_t s = 0; s < c->st->nshards; s++)
		bt.total += c->st->shards[s].hdr.onode_count;
	bt.total += pfs_check_csum_table_count(c);
	ret = pfs_map_create(c->maps, "objects", 1, &w.objects);
	for (uint32_t s = 0; !ret && s < c->st->nshards; s++)
		ret = walk_radix(c, s, &w);
	if (!ret)
		ret = pfs_map_iterate(w.objects, batch_add, &bt);
	if (!ret)
		ret = batch_flush(&bt);
	if (!ret)
		ret = pfs_check_csum_tables(c, bt.done, bt.total);
	free(bt.m.b);
	return ret;
}
