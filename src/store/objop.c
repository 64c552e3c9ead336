/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The operation engine: the operations of a transaction applied, on an
 * object context (object_internal.h), to onodes (the radix tree), data
 * extents (the extent trees and the data blocks), xattrs and omaps.
 * pfs_store_submit (submit.c) runs it; the reads (read.c) share its
 * onode, extent and frame lookups.
 *
 * Data writes follow the PoseidonStore procedure:
 *   - a write of at most small_write bytes changes the data blocks in the
 *     cache, and the WAL record carries them; the checkpoint writes them in
 *     place (holes get new blocks, zero-filled around the written bytes);
 *   - a larger write goes out of place: new extents are allocated, the
 *     data (with the old bytes of partial edge blocks) is written to them
 *     before the commit (the journal flushes it before the record, W2),
 *     then the extent tree points at them and the old blocks are freed,
 *     reusable only after the next checkpoint (W4);
 *   - when the object's shard has no room left for data (each shard keeps
 *     a little for metadata), a write goes out of place into the next
 *     shards' blocks, flagged shared as a clone's are (spill_shard).
 * Onodes touched by a transaction are decoded once into a small table and
 * written back to their radix slots before the commit.
 *
 * Xattrs live in the object's omap under keys "\0x" + name: the store's
 * own key space (keys starting with a zero byte), which omap callers may
 * not use.
 *
 * Clones share blocks: both objects' extents carry POSFS_EXTENT_SHARED and
 * the shard's refcount tree counts the owners (refcount.c). A write to a
 * shared block copies it first (copy on write); unmapping a shared block
 * drops a reference, and the last one frees it. A clone may cross shards:
 * an object then points at blocks of another shard's space. Those blocks
 * are never written in place (they are shared, and stay flagged so), and
 * only blocks that are home on the device are shared across shards (one
 * changed since the last checkpoint is copied instead), so reads take
 * them from the device without that shard's lock; changing their counts
 * needs that shard's lock, and a transaction that finds it needs one it
 * did not take (-EXDEV) begins again with it.
 */
#include <errno.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "posfs/store.h"
#include "format/endian.h"
#include "store/btree.h"
#include "store/compress.h"
#include "store/csum.h"
#include "store/extmap.h"
#include "store/omap.h"
#include "store/radix.h"
#include "store/refcount.h"
#include "store/store_internal.h"
#include "store/object_internal.h"

/* ---- scratch buffers for data I/O ----------------------------------------- */

/*
 * Data I/O (a large write's blocks, a read's bounce) goes through the
 * thread's scratch buffer (pfs_thread_buf), not zeroed: every user fills
 * what it writes. Needs above SCRATCH_KEEP, alignments above the
 * buffer's, and a second use while the first is out get a buffer of their
 * own.
 */
#define SCRATCH_KEEP	(2u << 20)
#define SCRATCH_ALIGN	4096u	/* pfs_thread_buf's */

static struct pfs_thread_buf scratch_buf = PFS_THREAD_BUF_INIT;
static __thread uint8_t *scratch_out;	/* the thread's buffer, in use */

uint8_t *pfs_scratch_get(size_t len, size_t align)
{
	void *p;

	if (scratch_out || len > SCRATCH_KEEP || align > SCRATCH_ALIGN)
		return posix_memalign(&p, align > SCRATCH_ALIGN ? align : SCRATCH_ALIGN,
				      len ? len : 1) ? NULL : p;
	scratch_out = pfs_thread_buf_get(&scratch_buf, SCRATCH_KEEP);
	return scratch_out;
}

void pfs_scratch_put(uint8_t *p)
{
	if (p && p == scratch_out)
		scratch_out = NULL;
	else
		free(p);
}

/* ---- ids ------------------------------------------------------------------ */

int pfs_store_oid_alloc(struct pfs_store *st, uint32_t shard, uint64_t *oid)
{
	struct pfs_shard *sh;
	int ret = 0;

	if (shard >= st->nshards)
		return -EINVAL;
	sh = &st->shards[shard];
	pthread_mutex_lock(&sh->lock);
	if (sh->hdr.next_local > POSFS_OID_LOCAL_MASK)
		ret = -ENOSPC;
	else
		*oid = POSFS_OID(shard, sh->hdr.next_local++);
	pthread_mutex_unlock(&sh->lock);
	return ret;
}

/* ---- onodes ------------------------------------------------------------- */

/* The object's onode, decoded once per transaction. */
int pfs_obj_get(struct objctx *c, uint64_t oid, struct obj **op)
{
	struct pfs_radix rx;
	struct pfs_shard *sh;
	struct obj *ob;
	int ret;

	for (unsigned i = 0; i < c->n; i++) {
		if (c->objs[i].oid == oid) {
			if (c->objs[i].removed)
				return -ENOENT;
			*op = &c->objs[i];
			return 0;
		}
	}
	if (!oid_ok(c->st, oid))
		return -ENOENT;
	if (c->n == TX_OBJ_MAX)
		return -E2BIG;
	ob = &c->objs[c->n];
	memset(ob, 0, sizeof(*ob));
	sh = &c->st->shards[POSFS_OID_SHARD(oid)];
	if (!pfs_ocache_get(&sh->onodes, oid, &ob->o)) {
		rx = radix_of(c->st, POSFS_OID_SHARD(oid));
		ret = pfs_radix_lookup(c->tx, &rx, POSFS_OID_LOCAL(oid), &ob->o);
		if (!ret && pfs_onode_extents_ok(&ob->o))
			return pfs_store_object_error(c->st, oid, "bad inline extents");
		if (ret == -EUCLEAN)
			return pfs_store_object_error(c->st, oid, "bad onode");
		if (!ret && pfs_verify_bad_onode(sh, oid))		/* V2 */
			ret = -EUCLEAN;
		if (ret)
			return ret;
		pfs_ocache_put(&sh->onodes, &ob->o);	/* the committed onode */
	}
	ob->oid = oid;
	c->n++;
	*op = ob;
	return 0;
}

int pfs_obj_writeback(struct objctx *c)
{
	for (unsigned i = 0; i < c->n; i++) {
		struct obj *ob = &c->objs[i];
		struct pfs_radix rx = radix_of(c->st, POSFS_OID_SHARD(ob->oid));
		int ret = 0;

		/* read-through cache: what this transaction changes is read
		 * again from the radix tree once committed */
		if (ob->removed || ob->dirty)
			pfs_ocache_drop(&c->st->shards[POSFS_OID_SHARD(ob->oid)].onodes, ob->oid);
		if (ob->removed || !ob->dirty)
			continue;
		ob->o.version++;
		ret = ob->is_new ? pfs_radix_insert(c->tx, &rx, &ob->o)
				 : pfs_radix_update(c->tx, &rx, &ob->o);
		if (ret)
			return ret;
	}
	return 0;
}

static void attr_apply(struct pfs_onode *o, const struct pfs_attr *a, uint32_t mask)
{
	if (mask & PFS_ATTR_MODE)
		o->mode = a->mode;
	if (mask & PFS_ATTR_UID)
		o->uid = a->uid;
	if (mask & PFS_ATTR_GID)
		o->gid = a->gid;
	if (mask & PFS_ATTR_NLINK)
		o->nlink = a->nlink;
	if (mask & PFS_ATTR_RDEV)
		o->rdev = a->rdev;
	if (mask & PFS_ATTR_ATIME)
		o->atime = a->atime;
	if (mask & PFS_ATTR_MTIME)
		o->mtime = a->mtime;
	if (mask & PFS_ATTR_CTIME)
		o->ctime = a->ctime;
	if (mask & PFS_ATTR_BTIME)
		o->btime = a->btime;
	if (mask & PFS_ATTR_FLAGS)
		o->attr_flags = a->attr_flags;
	if (mask & PFS_ATTR_ONODE_FLAGS)
		o->flags = a->onode_flags & POSFS_ONODE_ORPHAN;
	if (mask & PFS_ATTR_PARENT)
		o->parent = a->parent;
}

static int times_ok(const struct pfs_attr *a)
{
	return a->atime.nsec < 1000000000u && a->mtime.nsec < 1000000000u &&
	       a->ctime.nsec < 1000000000u && a->btime.nsec < 1000000000u;
}

static int op_create(struct objctx *c, const struct pfs_op *op)
{
	uint32_t shard = POSFS_OID_SHARD(op->oid);
	struct pfs_shard *sh;
	struct obj *ob;
	int ret;

	if (!oid_ok(c->st, op->oid) || !times_ok(&op->attr))
		return -EINVAL;
	ret = pfs_obj_get(c, op->oid, &ob);
	if (!ret)
		return -EEXIST;
	if (ret != -ENOENT)
		return ret;
	sh = pfs_tx_shard(c->tx, shard);
	if (!sh || POSFS_OID_LOCAL(op->oid) >= sh->hdr.next_local)
		return -EINVAL;		/* not an id pfs_store_oid_alloc gave */
	for (unsigned i = 0; i < c->n; i++)
		if (c->objs[i].oid == op->oid)	/* removed earlier in this tx */
			return -EEXIST;
	if (c->n == TX_OBJ_MAX)
		return -E2BIG;
	ob = &c->objs[c->n++];
	memset(ob, 0, sizeof(*ob));
	ob->oid = op->oid;
	ob->is_new = true;
	ob->dirty = true;
	ob->o.oid = op->oid;
	ob->o.generation = sh->hdr.next_generation++;
	attr_apply(&ob->o, &op->attr, PFS_ATTR_ALL);
	ob->o.data_fmt = POSFS_DATA_EXTENTS;	/* no extent yet, inline */
	sh->hdr.onode_count++;
	return 0;
}

/* ---- extents ------------------------------------------------------------ */

static struct pfs_dextent ext_put(const struct pfs_extent *e)
{
	struct pfs_dextent d;

	pfs_extent_to_disk(e, &d);
	return d;
}

/* The extent that maps lblk: 0; -ENOENT for a hole. */
int pfs_ext_find(struct objctx *c, struct obj *ob, uint64_t lblk, struct pfs_extent *e)
{
	struct pfs_extmap em = ext_map(c, ob);
	struct pfs_dextent d;
	int ret;

	ret = pfs_extmap_lookup_le(&em, lblk, &d);
	if (ret)
		return ret;
	ext_get(&d, e);
	return lblk < e->lblk + e->len ? 0 : -ENOENT;
}

/* Device blocks an extent holds (a compressed one, fewer than it maps). */
static uint64_t ext_pblocks(const struct pfs_extent *e)
{
	return e->flags & POSFS_EXTENT_COMPRESSED ? e->plen : e->len;
}

/* Give an extent's device blocks back (a shared one: its count). */
static int ext_release(struct objctx *c, const struct pfs_extent *e, uint64_t pblk, uint64_t n)
{
	if (e->flags & POSFS_EXTENT_SHARED)
		return pfs_refcount_dec(c->tx, pblk, n);
	return pfs_tx_free_data(c->tx, pblk, n);
}

static uint64_t sectors(struct pfs_store *st, uint64_t blocks)
{
	return blocks * (st->sb.block_size / 512);
}

/* Map [e.lblk, +len) (a range that is a hole), merged with its left
 * neighbour when both are contiguous. */
static int ext_insert(struct objctx *c, struct obj *ob, const struct pfs_extent *e)
{
	struct pfs_extmap em = ext_map(c, ob);
	struct pfs_extent l;
	struct pfs_dextent d;

	ob->dirty = true;
	ob->o.blocks += sectors(c->st, ext_pblocks(e));
	if (e->lblk && !(e->flags & POSFS_EXTENT_COMPRESSED) && !pfs_ext_find(c, ob, e->lblk - 1, &l) &&
	    l.pblk + l.len == e->pblk && l.flags == e->flags && (uint64_t)l.len + e->len <= UINT32_MAX) {
		l.len += e->len;
		l.plen = l.len;
		d = ext_put(&l);
		return pfs_extmap_update(&em, &d);
	}
	d = ext_put(e);
	return pfs_extmap_insert(&em, &d);
}

static int unpack_extent(struct objctx *c, struct obj *ob, const struct pfs_extent *e);

/* Unmap [start, end) and free its blocks. */
static int ext_punch(struct objctx *c, struct obj *ob, uint64_t start, uint64_t end)
{
	struct pfs_extmap em = ext_map(c, ob);
	int ret;

	while (!pfs_extmap_empty(&em) && start < end) {
		struct pfs_dextent d;
		struct pfs_extent e, keep;
		uint64_t cs, ce;

		ret = pfs_extmap_lookup_le(&em, start, &d);
		if (!ret) {
			ext_get(&d, &e);
			if (e.lblk + e.len <= start)
				ret = -ENOENT;
		}
		if (ret == -ENOENT) {
			ret = pfs_extmap_lookup_ge(&em, start, &d);
			if (ret == -ENOENT)
				return 0;
			if (ret)
				return ret;
			ext_get(&d, &e);
			if (e.lblk >= end)
				return 0;
		} else if (ret) {
			return ret;
		}
		cs = e.lblk > start ? e.lblk : start;
		ce = e.lblk + e.len < end ? e.lblk + e.len : end;
		if (e.flags & POSFS_EXTENT_COMPRESSED) {
			/* a frame is never cut: all of it goes, or it is
			 * unpacked into plain blocks first */
			if (cs != e.lblk || ce != e.lblk + e.len) {
				ret = unpack_extent(c, ob, &e);
				if (ret)
					return ret;
				continue;
			}
			ret = ext_release(c, &e, e.pblk, e.plen);
			if (!ret)
				ret = pfs_extmap_delete(&em, e.lblk);
			if (ret)
				return ret;
			ob->dirty = true;
			ob->o.blocks -= sectors(c->st, e.plen);
			start = ce;
			continue;
		}
		ret = ext_release(c, &e, e.pblk + (cs - e.lblk), ce - cs);
		if (ret)
			return ret;
		ob->dirty = true;
		ob->o.blocks -= sectors(c->st, ce - cs);
		if (cs == e.lblk && ce == e.lblk + e.len) {
			ret = pfs_extmap_delete(&em, e.lblk);
		} else if (cs == e.lblk) {
			keep = e;
			keep.lblk = ce;
			keep.pblk = e.pblk + (ce - e.lblk);
			keep.len = keep.plen = (uint32_t)(e.lblk + e.len - ce);
			d = ext_put(&keep);
			ret = pfs_extmap_replace(&em, e.lblk, &d);
		} else {
			keep = e;
			keep.len = keep.plen = (uint32_t)(cs - e.lblk);
			d = ext_put(&keep);
			ret = pfs_extmap_update(&em, &d);
			if (!ret && ce < e.lblk + e.len) {
				keep = e;
				keep.lblk = ce;
				keep.pblk = e.pblk + (ce - e.lblk);
				keep.len = keep.plen = (uint32_t)(e.lblk + e.len - ce);
				d = ext_put(&keep);
				ret = pfs_extmap_insert(&em, &d);
			}
		}
		if (ret)
			return ret;
		start = ce;
	}
	return 0;
}

/* ---- data --------------------------------------------------------------- */

static int read_block(struct objctx *c, struct obj *ob, uint64_t lblk, uint8_t *buf);

/*
 * A cached data block about to be used (merged into a write, copied): its
 * bytes must match its checksums (csum.h C2, C3). -EIO, reported, when
 * they do not.
 */
static int data_block_check(struct objctx *c, struct obj *ob, uint64_t lblk,
			    struct pfs_buf *b)
{
	uint64_t bad;
	int ret;

	if (b->flags & PFS_BUF_CSUM_OK)
		return 0;
	ret = pfs_csum_check(c->tx, pfs_buf_blkno(b), 1, pfs_buf_data(b), &bad);
	if (ret == -EBADMSG)
		return pfs_store_data_error(c->st, ob->oid, lblk * c->st->sb.block_size, bad);
	if (!ret)
		b->flags |= PFS_BUF_CSUM_OK;
	return ret;
}

/* Change bytes [boff, bend) of logical block lblk through the WAL. */
static int small_block(struct objctx *c, struct obj *ob, uint64_t lblk, uint32_t boff,
		       uint32_t bend, const void *src, uint64_t *hint)
{
	uint32_t shard = POSFS_OID_SHARD(ob->oid);
	struct pfs_extent e;
	struct pfs_buf *b;
	bool fresh = false, whole, checked = false;
	uint64_t pblk, got;
	int ret;

	ret = pfs_ext_find(c, ob, lblk, &e);
	if (!ret && (e.flags & POSFS_EXTENT_COMPRESSED)) {
		/* never in place: plain blocks first */
		ret = unpack_extent(c, ob, &e);
		if (!ret)
			ret = pfs_ext_find(c, ob, lblk, &e);
	}
	if (!ret && (e.flags & POSFS_EXTENT_SHARED)) {
		/* copy on write: a block of our own with the old bytes (none
		 * needed when the write covers the block) */
		bool cover = src && !boff && bend == c->st->sb.block_size;
		uint8_t *old = cover ? NULL : malloc(c->st->sb.block_size);
		struct pfs_buf *nb;

		if (!cover && !old)
			return -ENOMEM;
		if (!cover)
			ret = read_block(c, ob, lblk, old);
		if (!ret)
			ret = ext_punch(c, ob, lblk, lblk + 1);
		if (!ret)
			ret = pfs_tx_alloc_data(c->tx, shard, 1, *hint, true, &pblk, &got);
		if (!ret) {
			e = (struct pfs_extent){ .lblk = lblk, .pblk = pblk, .len = 1, .plen = 1 };
			ret = ext_insert(c, ob, &e);
		}
		if (!ret)
			ret = pfs_tx_data_block(c->tx, pblk, true, &nb);
		if (!ret) {
			if (old)
				memcpy(pfs_buf_data(nb), old, c->st->sb.block_size);
			pfs_buf_put(nb);
		}
		free(old);
		if (ret)
			return ret;
		fresh = false;
		checked = true;		/* read_block checked the old bytes */
	} else if (!ret) {
		pblk = e.pblk + (lblk - e.lblk);
		fresh = false;
	} else if (ret == -ENOENT) {
		if (!src)
			return 0;		/* zeroing a hole: nothing to do */
		ret = pfs_tx_alloc_data(c->tx, shard, 1, *hint, true, &pblk, &got);
		if (ret)
			return ret;
		e = (struct pfs_extent){ .lblk = lblk, .pblk = pblk, .len = 1, .plen = 1 };
		ret = ext_insert(c, ob, &e);
		if (ret)
			return ret;
		fresh = true;
	} else {
		return ret;
	}
	*hint = pblk + 1;
	/* a block written whole is not read first */
	whole = src && !boff && bend == c->st->sb.block_size;
	ret = pfs_tx_data_block(c->tx, pblk, fresh || whole, &b);
	if (ret)
		return ret;
	if (!fresh && !whole && !checked)
		ret = data_block_check(c, ob, lblk, b);
	if (!ret) {
		if (src)
			memcpy(pfs_buf_data(b) + boff, src, bend - boff);
		else
			memset(pfs_buf_data(b) + boff, 0, bend - boff);
		ret = pfs_csum_record(c->tx, pblk, 1, pfs_buf_data(b));	/* C1 */
	}
	if (!ret)
		b->flags |= PFS_BUF_CSUM_OK;
	pfs_buf_put(b);
	return ret;
}

/* The current bytes of logical block lblk into buf (zeros for a hole). */
static int read_block(struct objctx *c, struct obj *ob, uint64_t lblk, uint8_t *buf)
{
	uint32_t bs = c->st->sb.block_size;
	struct pfs_extent e;
	struct pfs_buf *b;
	int ret;

	ret = pfs_ext_find(c, ob, lblk, &e);
	if (ret == -ENOENT) {
		memset(buf, 0, bs);
		return 0;
	}
	if (ret)
		return ret;
	if (e.flags & POSFS_EXTENT_COMPRESSED) {
		uint8_t *frame, *plain;

		ret = pfs_frame_fetch(c->st, &e, &frame);
		if (!ret)
			ret = pfs_frame_unpack(c->st, ob->oid, &e, frame, &plain);
		if (!ret)
			memcpy(buf, plain + (lblk - e.lblk) * bs, bs);
		return ret;
	}
	ret = pfs_tx_get_raw(c->tx, e.pblk + (lblk - e.lblk), &b);
	if (ret)
		return ret;
	ret = data_block_check(c, ob, lblk, b);
	if (!ret)
		memcpy(buf, pfs_buf_data(b), bs);
	pfs_buf_put(b);
	return ret;
}

/*
 * The shard that a large write takes its blocks from runs out of space:
 * the next one after it (in shard order, from the object's own) that is
 * not the object's. Its blocks are used as a clone uses another shard's:
 * the extents are flagged shared (with one owner, no count recorded), so
 * they are never written in place and only that shard's space changes for
 * them; the object's shard is full, not the file system. The shard must
 * be in the transaction: -EXDEV makes it begin again with its lock.
 * -ENOSPC when every shard has been tried.
 */
static int spill_shard(struct objctx *c, uint32_t home, uint32_t *cur)
{
	uint32_t next = (*cur + 1) % c->st->nshards;

	if (next == home)
		return -ENOSPC;
	*cur = next;
	if (!pfs_tx_has_shard(c->tx, next)) {
		pfs_tx_set_xdev(c->tx, next);
		return -EXDEV;
	}
	return 0;
}

/* ---- compressed frames -------------------------------------------------- */

/* Each thread's frame and plain buffers (compress.h: PFS_COMPRESS_MAX, or
 * a block when larger), aligned for device I/O. */
static struct pfs_thread_buf zframe_buf = PFS_THREAD_BUF_INIT;
static struct pfs_thread_buf zplain_buf = PFS_THREAD_BUF_INIT;

static size_t zbuf_len(const struct pfs_store *st)
{
	return PFS_COMPRESS_MAX > st->sb.block_size ? PFS_COMPRESS_MAX : st->sb.block_size;
}

/* A compressed extent's frame from the device (home since its commit and
 * never changed in place) into the thread's frame buffer. */
int pfs_frame_fetch(struct pfs_store *st, const struct pfs_extent *e, uint8_t **frame)
{
	uint32_t bs = st->sb.block_size;

	if ((uint64_t)e->plen * bs > zbuf_len(st) || e->plen > e->len)
		return -EUCLEAN;
	*frame = pfs_thread_buf_get(&zframe_buf, zbuf_len(st));
	if (!*frame)
		return -ENOMEM;
	return pfs_dev_pread(st->dev, *frame, (size_t)e->plen * bs, e->pblk * bs);
}

/* Check a fetched frame (C2) and decompress it into the thread's plain
 * buffer: -EIO, reported, when it does not match or does not decompress. */
int pfs_frame_unpack(struct pfs_store *st, uint64_t oid, const struct pfs_extent *e,
		     const uint8_t *frame, uint8_t **plain)
{
	uint32_t bs = st->sb.block_size;
	size_t n = (size_t)e->len * bs;

	if (n > zbuf_len(st))
		return -EUCLEAN;
	*plain = pfs_thread_buf_get(&zplain_buf, zbuf_len(st));
	if (!*plain)
		return -ENOMEM;
	if (pfs_data_csum(e->pblk * bs, frame, (size_t)e->plen * bs) != e->csum ||
	    pfs_decompress(frame, (size_t)e->plen * bs, *plain, n))
		return pfs_store_data_error(st, oid, e->lblk * bs, e->pblk);
	return 0;
}

/* ---- writes out of place -------------------------------------------------- */

/* zstd level for new data of ob, or 0: not compressed (compress.h). */
static int compress_level(const struct objctx *c, const struct obj *ob)
{
	if (!(c->st->sb.feature_incompat & POSFS_FEATURE_compression) ||
	    (ob->o.attr_flags & FS_NOCOMP_FL))
		return 0;
	if (!(ob->o.attr_flags & FS_COMPR_FL) && !c->st->compress)
		return 0;
	return c->st->compress_level;
}

/* Where the blocks after lblk - 1 would best go: right after it. */
static uint64_t alloc_hint(struct objctx *c, struct obj *ob, uint64_t lblk)
{
	struct pfs_extent prev;

	if (!lblk || pfs_ext_find(c, ob, lblk - 1, &prev))
		return 0;
	if (prev.flags & POSFS_EXTENT_COMPRESSED)
		return prev.pblk + prev.plen;
	return prev.pblk + (lblk - 1 - prev.lblk) + 1;
}

/* n plain blocks at lblk from data (a hole now), in as many extents as
 * the free space gives. */
static int write_plain(struct objctx *c, struct obj *ob, uint64_t lblk, uint64_t n,
		       const uint8_t *data, uint32_t *from, uint64_t *hint)
{
	uint32_t bs = c->st->sb.block_size, shard = POSFS_OID_SHARD(ob->oid);
	uint64_t done = 0;
	int ret = 0;

	while (!ret && done < n) {
		uint64_t start, got;
		struct pfs_extent e;

		ret = pfs_tx_alloc_data(c->tx, *from, n - done > UINT32_MAX ? UINT32_MAX : n - done,
					*hint, false, &start, &got);
		if (ret == -ENOSPC) {
			ret = spill_shard(c, shard, from);
			*hint = 0;
			continue;
		}
		if (ret)
			break;
		ret = pfs_csum_record(c->tx, start, got, data + done * bs);	/* C1 */
		if (!ret)
			ret = pfs_dev_pwrite(c->st->dev, data + done * bs, got * bs, start * bs);
		if (ret)
			break;
		e = (struct pfs_extent){ .lblk = lblk + done, .pblk = start, .len = (uint32_t)got,
					 .plen = (uint32_t)got,
					 .flags = *from != shard ? POSFS_EXTENT_SHARED : 0 };
		ret = ext_insert(c, ob, &e);
		done += got;
		*hint = start + got;
	}
	return ret;
}

/* Frames on consecutive blocks go to the device in one write. */
struct frame_batch {
	uint8_t *buf;		/* cap bytes, aligned for device I/O */
	size_t cap, len;
	uint64_t start;		/* the device block of buf[0] */
};

static int batch_flush(struct objctx *c, struct frame_batch *fb)
{
	int ret = 0;

	if (fb->len)
		ret = pfs_dev_pwrite(c->st->dev, fb->buf, fb->len,
				     fb->start * c->st->sb.block_size);
	fb->len = 0;
	return ret;
}

/* frame (plen blocks) at device block start, into the batch. */
static int batch_add(struct objctx *c, struct frame_batch *fb, const uint8_t *frame,
		     uint64_t start, uint64_t plen)
{
	uint32_t bs = c->st->sb.block_size;
	int ret = 0;

	if (fb->len && (fb->start + fb->len / bs != start || fb->len + plen * bs > fb->cap))
		ret = batch_flush(c, fb);
	if (ret)
		return ret;
	if (!fb->len)
		fb->start = start;
	memcpy(fb->buf + fb->len, frame, plen * bs);
	fb->len += plen * bs;
	return 0;
}

/*
 * Compress n blocks of data into the thread's frame buffer, zero padded to
 * whole blocks: the frame's blocks, or 0 when it would not save an eighth
 * of them (BlueStore's required ratio, 0.875): they are stored plain.
 */
static long frame_make(struct objctx *c, uint64_t n, const uint8_t *data, int level,
		       uint8_t **frame)
{
	uint32_t bs = c->st->sb.block_size;
	size_t raw = (size_t)n * bs, cap = (raw - raw / 8) / bs * bs;
	uint64_t plen;
	long z;

	*frame = pfs_thread_buf_get(&zframe_buf, zbuf_len(c->st));
	if (!*frame)
		return -ENOMEM;
	z = pfs_compress(data, raw, *frame, cap, level);
	if (z <= 0)
		return z;
	plen = ((uint64_t)z + bs - 1) / bs;
	memset(*frame + z, 0, plen * bs - (uint64_t)z);
	return (long)plen;
}

/* The frame frame_make made (plen blocks) as the compressed extent of n
 * blocks at lblk (a hole now), its bytes into fb. */
static int write_compressed(struct objctx *c, struct obj *ob, uint64_t lblk, uint64_t n,
			    const uint8_t *frame, uint64_t plen, uint32_t *from, uint64_t *hint,
			    struct frame_batch *fb)
{
	uint32_t bs = c->st->sb.block_size, shard = POSFS_OID_SHARD(ob->oid);
	uint64_t start, got;
	struct pfs_extent e;
	int ret;

	for (;;) {
		ret = pfs_tx_alloc_data(c->tx, *from, plen, *hint, true, &start, &got);
		if (ret != -ENOSPC)
			break;
		ret = spill_shard(c, shard, from);
		*hint = 0;
		if (ret)
			return ret;
	}
	if (ret)
		return ret;
	ret = batch_add(c, fb, frame, start, plen);
	if (ret)
		return ret;
	e = (struct pfs_extent){ .lblk = lblk, .pblk = start, .len = (uint32_t)n,
				 .plen = (uint32_t)plen,
				 .flags = POSFS_EXTENT_COMPRESSED |
					  (*from != shard ? POSFS_EXTENT_SHARED : 0),
				 .csum = pfs_data_csum(start * bs, frame, plen * bs) };
	ret = ext_insert(c, ob, &e);
	*hint = start + plen;
	return ret;
}

#define FRAME_BATCH_MAX	(1u << 20)

/*
 * n whole blocks at first from buf, out of place, in place of what they
 * mapped; with level > 0 in compressed extents of at most PFS_COMPRESS_MAX
 * (ending at its multiples, so that rewrites of a region line up) where
 * they are at least PFS_COMPRESS_MIN and save an eighth. Pieces that stay
 * plain are written together, and so are frames on consecutive blocks:
 * a large write costs a few device writes, not one per piece.
 */
static int write_blocks(struct objctx *c, struct obj *ob, uint64_t first, uint64_t n,
			const uint8_t *buf, int level)
{
	uint32_t bs = c->st->sb.block_size, from = POSFS_OID_SHARD(ob->oid);
	uint64_t unit = PFS_COMPRESS_MAX / bs, least = PFS_COMPRESS_MIN / bs, done = 0;
	uint64_t hint = alloc_hint(c, ob, first), plain = 0, nplain = 0;
	struct frame_batch fb = { 0 };
	int ret = ext_punch(c, ob, first, first + n);

	if (least < 2)
		least = 2;
	if (level && unit >= least && n >= least) {
		fb.cap = (size_t)n * bs < FRAME_BATCH_MAX ? (size_t)n * bs : FRAME_BATCH_MAX;
		if (fb.cap < zbuf_len(c->st))
			fb.cap = zbuf_len(c->st);
		fb.buf = pfs_scratch_get(fb.cap, pfs_dev_info(c->st->dev)->dio_mem_align);
		if (!fb.buf)
			ret = -ENOMEM;
	}
	while (!ret && done < n) {
		uint64_t lb = first + done, run = n - done;

		if (fb.buf) {
			uint64_t stop = (lb / unit + 1) * unit;

			if (stop - lb < run)
				run = stop - lb;
			if (run >= least) {
				uint8_t *frame;
				long plen = frame_make(c, run, buf + done * bs, level, &frame);

				if (plen < 0) {
					ret = (int)plen;
					break;
				}
				if (plen) {
					/* the plain run before it first, in order */
					if (nplain)
						ret = write_plain(c, ob, first + plain, nplain,
								  buf + plain * bs, &from, &hint);
					nplain = 0;
					if (!ret)
						ret = write_compressed(c, ob, lb, run, frame,
								       (uint64_t)plen, &from,
								       &hint, &fb);
					done += run;
					continue;
				}
			}
		}
		if (!nplain)
			plain = done;
		nplain += run;
		done += run;
	}
	if (!ret && nplain)
		ret = write_plain(c, ob, first + plain, nplain, buf + plain * bs, &from, &hint);
	if (!ret)
		ret = batch_flush(c, &fb);
	pfs_scratch_put(fb.buf);
	if (!ret)
		pfs_tx_note_data(c->tx);
	return ret;
}

/* A compressed extent becomes plain blocks (before a write into it, or a
 * punch or clone of part of it): the same bytes, its frame released. */
static int unpack_extent(struct objctx *c, struct obj *ob, const struct pfs_extent *e)
{
	uint8_t *frame, *plain;
	int ret = pfs_frame_fetch(c->st, e, &frame);

	if (!ret)
		ret = pfs_frame_unpack(c->st, ob->oid, e, frame, &plain);
	if (!ret)
		ret = write_blocks(c, ob, e->lblk, e->len, plain, 0);
	return ret;
}

/* The current bytes of n logical blocks from lb into buf (a compressed
 * extent's frame unpacked once for all the blocks it holds). */
static int read_range(struct objctx *c, struct obj *ob, uint64_t lb, uint64_t n, uint8_t *buf)
{
	uint32_t bs = c->st->sb.block_size;
	int ret = 0;

	for (uint64_t i = 0; !ret && i < n;) {
		struct pfs_extent e;
		uint8_t *frame, *plain;
		uint64_t k;

		if (pfs_ext_find(c, ob, lb + i, &e) || !(e.flags & POSFS_EXTENT_COMPRESSED)) {
			ret = read_block(c, ob, lb + i, buf + i * bs);
			i++;
			continue;
		}
		ret = pfs_frame_fetch(c->st, &e, &frame);
		if (!ret)
			ret = pfs_frame_unpack(c->st, ob->oid, &e, frame, &plain);
		k = e.lblk + e.len - (lb + i) < n - i ? e.lblk + e.len - (lb + i) : n - i;
		if (!ret)
			memcpy(buf + i * bs, plain + (lb + i - e.lblk) * bs, k * bs);
		i += k;
	}
	return ret;
}

/*
 * A large write: new extents, data written before the commit. A
 * compressed extent at either edge is taken in whole, its old bytes
 * around the new ones, so that its frame is written again (compressed
 * again) rather than cut or unpacked: an appending writer keeps its data
 * compressed.
 */
static int write_out_of_place(struct objctx *c, struct obj *ob, uint64_t off, uint64_t len,
			      const uint8_t *data)
{
	struct pfs_store *st = c->st;
	uint32_t bs = st->sb.block_size;
	uint64_t first = off / bs, last = (off + len - 1) / bs, n, head, tail;
	struct pfs_extent e;
	uint8_t *buf;
	int ret = 0;

	if (!pfs_ext_find(c, ob, off / bs, &e) && (e.flags & POSFS_EXTENT_COMPRESSED))
		first = e.lblk;
	if (!pfs_ext_find(c, ob, last, &e) && (e.flags & POSFS_EXTENT_COMPRESSED))
		last = e.lblk + e.len - 1;
	n = last - first + 1;
	/* blocks [first, first + head) and [tail, last] hold old bytes */
	head = off / bs - first + (off % bs ? 1 : 0);
	tail = (off + len) / bs;
	if (tail < first + head)
		tail = first + head;
	buf = pfs_scratch_get(n * bs, pfs_dev_info(st->dev)->dio_mem_align);
	if (!buf)
		return -ENOMEM;
	if (head)
		ret = read_range(c, ob, first, head, buf);
	if (!ret && tail <= last)
		ret = read_range(c, ob, tail, last - tail + 1, buf + (tail - first) * bs);
	if (!ret) {
		memcpy(buf + (off - first * bs), data, len);
		ret = write_blocks(c, ob, first, n, buf, compress_level(c, ob));
	}
	pfs_scratch_put(buf);
	return ret;
}

/*
 * Inline data: an object without extents whose bytes all lie in the first
 * POSFS_INLINE_SIZE - xattr_len bytes keeps them in the onode (data_fmt
 * INLINE, data_len bytes, zeros after them up to size): a small file or a
 * symlink costs no block. The first write that does not fit moves the
 * bytes to a block (through the WAL) and the object has extents from then.
 */
static bool inline_fits(const struct obj *ob, uint64_t end)
{
	bool no_extents = is_inline_data(ob) ||
			  (ob->o.data_fmt == POSFS_DATA_EXTENTS && !ob->o.data_len);

	return no_extents && end <= POSFS_INLINE_SIZE - ob->o.xattr_len;
}

/* Move inline bytes to a data block: the object gets an extent map. */
static int inline_to_extents(struct objctx *c, struct obj *ob)
{
	uint8_t bytes[POSFS_INLINE_SIZE];
	uint16_t n = ob->o.data_len;
	uint64_t hint = 0;

	if (!is_inline_data(ob))
		return 0;
	memcpy(bytes, ob->o.inline_area, n);
	memset(ob->o.inline_area, 0, n);
	ob->o.data_len = 0;
	ob->o.data_fmt = POSFS_DATA_EXTENTS;
	ob->dirty = true;
	if (!n)
		return 0;
	/* no room in the object's shard: out of place, into another's */
	if (pfs_tx_space_short(c->tx, POSFS_OID_SHARD(ob->oid), 1))
		return write_out_of_place(c, ob, 0, n, bytes);
	return small_block(c, ob, 0, 0, n, bytes, &hint);
}

/* Write (data) or zero (data NULL) [off, end) of an inline object. */
static void inline_write(struct obj *ob, uint64_t off, uint64_t end, const void *data)
{
	if (!is_inline_data(ob)) {
		ob->o.data_fmt = POSFS_DATA_INLINE;
		ob->o.data_len = 0;
	}
	if (data) {
		memcpy(ob->o.inline_area + off, data, end - off);
		if (end > ob->o.data_len)
			ob->o.data_len = (uint16_t)end;
	} else if (off < ob->o.data_len) {
		memset(ob->o.inline_area + off, 0, (end < ob->o.data_len ? end : ob->o.data_len) - off);
	}
	ob->dirty = true;
}

/* Does a compressed extent hold logical block lb? */
static bool in_frame(struct objctx *c, struct obj *ob, uint64_t lb)
{
	struct pfs_extent e;

	return !pfs_ext_find(c, ob, lb, &e) && (e.flags & POSFS_EXTENT_COMPRESSED);
}

static int op_write(struct objctx *c, const struct pfs_op *op, bool zero)
{
	uint32_t bs = c->st->sb.block_size;
	const uint8_t *src = op->data;
	uint64_t off = op->off, end = op->off + op->len, hint = 0;
	struct obj *ob;
	int ret;

	if (end < off || (op->len && (end - 1) / bs >= POSFS_FILE_BLOCKS_MAX))
		return -EFBIG;
	ret = pfs_obj_get(c, op->oid, &ob);
	if (ret || !op->len)
		return ret;
	ob->dirty = true;
	if (is_inline_data(ob) && zero) {
		inline_write(ob, off < ob->o.data_len ? off : ob->o.data_len,
			     end < ob->o.data_len ? end : ob->o.data_len, NULL);
		return 0;
	}
	if (!zero && inline_fits(ob, end)) {
		inline_write(ob, off, end, src);
		if (end > ob->o.size)
			ob->o.size = end;
		return 0;
	}
	ret = inline_to_extents(c, ob);
	if (ret)
		return ret;
	/* large writes go out of place, and those that may be compressed,
	 * and those into a compressed extent (its frame is written again
	 * with them); so do small ones when the object's shard has no room
	 * for them (out of place, they may spill over) */
	if (!zero && (op->len > c->st->small_write ||
		      (op->len >= PFS_COMPRESS_MIN && compress_level(c, ob)) ||
		      in_frame(c, ob, off / bs) || in_frame(c, ob, (end - 1) / bs) ||
		      pfs_tx_space_short(c->tx, POSFS_OID_SHARD(op->oid),
					 (end - 1) / bs - off / bs + 1)))
		ret = write_out_of_place(c, ob, off, op->len, src);
	else if (zero) {
		uint64_t fs = (off + bs - 1) / bs, fe = end / bs;

		/* whole blocks go; the edges are zeroed in place */
		if (fs < fe)
			ret = ext_punch(c, ob, fs, fe);
		if (!ret && off % bs)
			ret = small_block(c, ob, off / bs, off % bs,
					  end / bs == off / bs ? end % bs : bs, NULL, &hint);
		if (!ret && end % bs && (end / bs != off / bs || !(off % bs)) && end / bs >= fs)
			ret = small_block(c, ob, end / bs, 0, end % bs, NULL, &hint);
		return ret;
	} else {
		for (uint64_t lb = off / bs; !ret && lb <= (end - 1) / bs; lb++) {
			uint32_t boff = lb == off / bs ? off % bs : 0;
			uint32_t bend = lb == (end - 1) / bs ? (uint32_t)((end - 1) % bs + 1) : bs;

			ret = small_block(c, ob, lb, boff, bend, src, &hint);
			src += bend - boff;
		}
	}
	if (!ret && end > ob->o.size)
		ob->o.size = end;
	return ret;
}

static int op_truncate(struct objctx *c, const struct pfs_op *op)
{
	uint32_t bs = c->st->sb.block_size;
	uint64_t size = op->off, hint = 0;
	struct obj *ob;
	int ret;

	if ((size + bs - 1) / bs > POSFS_FILE_BLOCKS_MAX)
		return -EFBIG;
	ret = pfs_obj_get(c, op->oid, &ob);
	if (ret)
		return ret;
	ob->dirty = true;
	if (is_inline_data(ob)) {
		if (size < ob->o.data_len) {
			inline_write(ob, size, ob->o.data_len, NULL);
			ob->o.data_len = (uint16_t)size;
		}
	} else if (size < ob->o.size) {
		ret = ext_punch(c, ob, (size + bs - 1) / bs, UINT64_MAX);
		if (!ret && size % bs)
			ret = small_block(c, ob, size / bs, size % bs, bs, NULL, &hint);
	}
	if (!ret)
		ob->o.size = size;
	return ret;
}

static int free_extent_cb(void *arg, const void *rec)
{
	struct objctx *c = arg;
	struct pfs_extent e;

	ext_get(rec, &e);
	return ext_release(c, &e, e.pblk, ext_pblocks(&e));
}

static int op_remove(struct objctx *c, const struct pfs_op *op)
{
	struct pfs_extmap em;
	struct pfs_omap om;
	struct pfs_radix rx;
	struct obj *ob;
	int ret;

	ret = pfs_obj_get(c, op->oid, &ob);
	if (ret)
		return ret;
	em = ext_map(c, ob);
	om = omap_of(ob);
	if (!pfs_extmap_empty(&em)) {
		ret = pfs_extmap_destroy(&em, free_extent_cb, c);
		if (ret)
			return ret;
	}
	if (ob->o.omap.blkno) {
		ret = pfs_omap_destroy(c->tx, &om);
		if (ret)
			return ret;
	}
	if (!ob->is_new) {
		rx = radix_of(c->st, POSFS_OID_SHARD(ob->oid));
		ret = pfs_radix_remove(c->tx, &rx, POSFS_OID_LOCAL(ob->oid));
		if (ret)
			return ret;
	}
	pfs_tx_shard(c->tx, POSFS_OID_SHARD(ob->oid))->hdr.onode_count--;
	ob->removed = true;
	ob->dirty = false;
	return 0;
}

/* ---- clones ------------------------------------------------------------- */

/* Flag [lb, lb+n) of ob (inside the extent e) as shared, splitting e. */
static int ext_mark_shared(struct objctx *c, struct obj *ob, const struct pfs_extent *e,
			   uint64_t lb, uint64_t n)
{
	struct pfs_extmap em = ext_map(c, ob);
	struct pfs_extent part;
	struct pfs_dextent d;
	uint64_t end = e->lblk + e->len;
	int ret;

	if (e->flags & POSFS_EXTENT_SHARED)
		return 0;
	if (e->flags & POSFS_EXTENT_COMPRESSED) {
		/* shared whole (the caller never cuts a frame) */
		part = *e;
		part.flags |= POSFS_EXTENT_SHARED;
		d = ext_put(&part);
		ob->dirty = true;
		return pfs_extmap_update(&em, &d);
	}
	if (lb > e->lblk) {
		part = *e;
		part.len = part.plen = (uint32_t)(lb - e->lblk);
		d = ext_put(&part);
		ret = pfs_extmap_update(&em, &d);
		part.lblk = lb;
		part.pblk = e->pblk + (lb - e->lblk);
		part.len = part.plen = (uint32_t)n;
		part.flags |= POSFS_EXTENT_SHARED;
		d = ext_put(&part);
		if (!ret)
			ret = pfs_extmap_insert(&em, &d);
	} else {
		part = *e;
		part.len = part.plen = (uint32_t)n;
		part.flags |= POSFS_EXTENT_SHARED;
		d = ext_put(&part);
		ret = pfs_extmap_update(&em, &d);
	}
	if (!ret && lb + n < end) {
		part = *e;
		part.lblk = lb + n;
		part.pblk = e->pblk + (lb + n - e->lblk);
		part.len = part.plen = (uint32_t)(end - lb - n);
		d = ext_put(&part);
		ret = pfs_extmap_insert(&em, &d);
	}
	ob->dirty = true;
	return ret;
}

/* Look up both objects of a clone_range and check its ranges. */
static int clone_range_check(struct objctx *c, const struct pfs_op *op, struct obj **src,
			     struct obj **dst)
{
	uint32_t bs = c->st->sb.block_size;
	int ret;

	ret = pfs_obj_get(c, op->oid, src);
	if (!ret)
		ret = pfs_obj_get(c, op->oid2, dst);
	if (ret)
		return ret;
	if (op->off % bs || op->off2 % bs || op->off + op->len < op->off ||
	    op->off2 + op->len < op->off2)
		return -EINVAL;
	if (op->len % bs && op->off + op->len < (*src)->o.size)
		return -EINVAL;
	if (op->off2 + op->len > POSFS_FILE_BLOCKS_MAX * bs)
		return -EFBIG;
	if (*src == *dst && op->off < op->off2 + op->len && op->off2 < op->off + op->len)
		return -EINVAL;		/* overlapping ranges of one object */
	return 0;
}

/*
 * An inline src: a few bytes, copied rather than sharing a block; the rest
 * of the range reads as zeros in dst, as it does in src.
 */
static int clone_inline(struct objctx *c, const struct pfs_op *op, struct obj *src,
			struct obj *dst)
{
	uint32_t bs = c->st->sb.block_size;
	uint64_t avail = src->o.size > op->off ? src->o.size - op->off : 0;
	struct pfs_op w = { .type = PFS_OP_WRITE, .oid = op->oid2, .off = op->off2 };
	uint64_t n_copy = 0;
	int ret;

	if (avail > op->len)
		avail = op->len;
	if (op->off < src->o.data_len)
		n_copy = src->o.data_len - op->off < avail ? src->o.data_len - op->off : avail;
	if (n_copy) {
		uint8_t bytes[POSFS_INLINE_SIZE];

		memcpy(bytes, src->o.inline_area + op->off, n_copy);
		w.len = n_copy;
		w.data = bytes;
		ret = op_write(c, &w, false);
		if (ret)
			return ret;
	}
	/* zeros to the end of the range's last block, as a shared
	 * block would read past src's end */
	if (n_copy < (op->len + bs - 1) / bs * bs) {
		w.off = op->off2 + n_copy;
		w.len = (op->len + bs - 1) / bs * bs - n_copy;
		ret = op_write(c, &w, true);
		if (ret)
			return ret;
	}
	if (dst->o.size < op->off2 + avail) {
		dst->o.size = op->off2 + avail;
		dst->dirty = true;
	}
	return 0;
}

/* src's next mapped block at or after lb, into *next: -ENOENT if none. */
static int clone_skip_hole(struct objctx *c, struct obj *src, uint64_t lb, uint64_t *next)
{
	struct pfs_extmap em = ext_map(c, src);
	struct pfs_dextent d;
	int ret = pfs_extmap_lookup_ge(&em, lb, &d);

	if (!ret)
		*next = le64_get(d.lblk);
	return ret;
}

/*
 * Share n blocks of src's extent e from its block slb as dst's from dlb.
 * A compressed extent is shared whole (slb and n are all of it): its
 * frame is home on the device since its commit, in any shard.
 */
static int clone_share(struct objctx *c, struct obj *src, struct obj *dst,
		       const struct pfs_extent *e, uint64_t slb, uint64_t dlb, uint64_t n)
{
	struct pfs_extent de;
	int ret;

	if (e->flags & POSFS_EXTENT_COMPRESSED) {
		de = *e;
		de.lblk = dlb;
		de.flags |= POSFS_EXTENT_SHARED;
	} else {
		de = (struct pfs_extent){ .lblk = dlb, .pblk = e->pblk + (slb - e->lblk),
					  .len = (uint32_t)n, .plen = (uint32_t)n,
					  .flags = POSFS_EXTENT_SHARED };
	}
	ret = ext_mark_shared(c, src, e, slb, n);
	if (!ret)
		ret = pfs_refcount_inc(c->tx, de.pblk, de.plen);
	if (!ret)
		ret = ext_insert(c, dst, &de);
	return ret;
}

/*
 * Across shards only blocks that are home on the device are shared
 * (readers of dst take them from the device); a block changed since the
 * last checkpoint, or in this transaction, is copied into dst's shard
 * instead. Block slb of src (in its extent e) as dst's block dlb: *copied
 * says whether it was copied; if not, the caller shares it.
 */
static int clone_cross_shard(struct objctx *c, struct obj *src, struct obj *dst,
			     const struct pfs_extent *e, uint64_t slb, uint64_t dlb,
			     bool *copied)
{
	uint32_t bs = c->st->sb.block_size;
	struct pfs_shard *bsh = pfs_store_block_shard(c->st, e->pblk);
	uint64_t pb = e->pblk + (slb - e->lblk), hint = 0;
	struct pfs_buf *b;
	uint8_t *copy;
	int ret;

	*copied = false;
	if (!bsh)
		return -EUCLEAN;
	if (!pfs_tx_has_shard(c->tx, bsh->index)) {
		pfs_tx_set_xdev(c->tx, bsh->index);
		return -EXDEV;
	}
	b = pfs_bcache_find(&bsh->cache, pb);
	if (!b || (!(b->flags & PFS_BUF_DIRTY) && !b->txb)) {
		pfs_bcache_put(b);
		return 0;	/* settled: shared */
	}
	pfs_bcache_put(b);
	*copied = true;
	copy = malloc(bs);
	if (!copy)
		return -ENOMEM;
	ret = read_block(c, src, slb, copy);
	if (!ret)
		ret = small_block(c, dst, dlb, 0, bs, copy, &hint);
	free(copy);
	return ret;
}

/* dst's n blocks from dlb share (or copy) src's from slb; dst's old
 * blocks there are gone already. */
static int clone_extents(struct objctx *c, struct obj *src, struct obj *dst, uint64_t slb,
			 uint64_t dlb, uint64_t n)
{
	int ret = 0;

	for (uint64_t i = 0; !ret && i < n;) {
		struct pfs_extent e;
		uint64_t piece, next;
		bool copied;

		ret = pfs_ext_find(c, src, slb + i, &e);
		if (ret == -ENOENT) {
			/* a hole: skip to the next extent */
			ret = clone_skip_hole(c, src, slb + i, &next);
			if (ret == -ENOENT)
				return 0;
			if (!ret)
				i = next - slb;
			continue;
		}
		if (ret)
			break;
		piece = e.lblk + e.len - (slb + i);
		if (piece > n - i)
			piece = n - i;
		if (e.flags & POSFS_EXTENT_COMPRESSED) {
			/* a frame is shared whole, or unpacked first */
			if (slb + i != e.lblk || piece != e.len) {
				ret = unpack_extent(c, src, &e);
				continue;
			}
			ret = clone_share(c, src, dst, &e, e.lblk, dlb + i, e.len);
			i += piece;
			continue;
		}
		if ((int)POSFS_OID_SHARD(dst->oid) != pfs_geo_block_shard(&c->st->sb, e.pblk)) {
			piece = 1;	/* one block at a time across shards */
			ret = clone_cross_shard(c, src, dst, &e, slb + i, dlb + i, &copied);
			if (ret || copied) {
				i += piece;
				continue;
			}
		}
		ret = clone_share(c, src, dst, &e, slb + i, dlb + i, piece);
		i += piece;
	}
	return ret;
}

/*
 * dst [doff, doff+len) shares src's blocks [soff, soff+len). Offsets are
 * block aligned; len too, unless the range reaches src's end (its last
 * block is then shared whole: the bytes past the end are zeros).
 */
static int op_clone_range(struct objctx *c, const struct pfs_op *op)
{
	uint32_t bs = c->st->sb.block_size;
	uint64_t dlb = op->off2 / bs, n = (op->len + bs - 1) / bs, avail, end;
	struct obj *src, *dst;
	int ret;

	ret = clone_range_check(c, op, &src, &dst);
	if (ret || !op->len)
		return ret;
	if (is_inline_data(src))
		return clone_inline(c, op, src, dst);
	ret = inline_to_extents(c, dst);
	if (!ret)
		ret = ext_punch(c, dst, dlb, dlb + n);
	if (!ret)
		ret = clone_extents(c, src, dst, op->off / bs, dlb, n);
	if (ret)
		return ret;
	avail = src->o.size > op->off ? src->o.size - op->off : 0;
	end = op->off2 + (op->len < avail ? op->len : avail);
	if (end > dst->o.size)
		dst->o.size = end;
	dst->dirty = true;
	return 0;
}

/* dst becomes a copy of src's data (dst's own data goes). */
static int op_clone(struct objctx *c, const struct pfs_op *op)
{
	struct pfs_op r = *op;
	struct obj *src, *dst;
	int ret;

	if (op->oid == op->oid2)
		return -EINVAL;
	ret = pfs_obj_get(c, op->oid, &src);
	if (!ret)
		ret = pfs_obj_get(c, op->oid2, &dst);
	if (ret)
		return ret;
	if (is_inline_data(dst)) {
		memset(dst->o.inline_area, 0, dst->o.data_len);
		dst->o.data_len = 0;
		dst->o.data_fmt = POSFS_DATA_EXTENTS;
	}
	ret = ext_punch(c, dst, 0, UINT64_MAX);
	if (ret)
		return ret;
	dst->o.size = 0;
	dst->dirty = true;
	r.off = r.off2 = 0;
	r.len = src->o.size;
	return op_clone_range(c, &r);
}

/* ---- xattrs and omap ---------------------------------------------------- */

int pfs_xattr_key(const struct pfs_op *op, uint8_t *key, size_t *klen)
{
	if (!op->klen || op->klen > 255)
		return op->klen ? -ERANGE : -EINVAL;
	key[0] = 0;
	key[1] = 'x';
	memcpy(key + 2, op->key, op->klen);
	*klen = op->klen + 2;
	return 0;
}

/*
 * Inline xattrs: entries packed at the end of the onode's inline area,
 * [POSFS_INLINE_SIZE - xattr_len, POSFS_INLINE_SIZE): struct pfs_dxattr,
 * the name without its namespace prefix, the value, padded to 4 bytes.
 * Small xattrs of the four known namespaces go there while they fit beside
 * the inline extents; the others live in the omap.
 */
#define XATTR_INLINE_MAX 128u	/* bytes of one inline entry at most */

const char *const pfs_xattr_ns_prefix[POSFS_XATTR_SYSTEM + 1] = {
	[POSFS_XATTR_USER] = "user.",
	[POSFS_XATTR_TRUSTED] = "trusted.",
	[POSFS_XATTR_SECURITY] = "security.",
	[POSFS_XATTR_SYSTEM] = "system.",
};

/* The namespace of name and the length of its prefix; 0 if none known. */
static int xattr_ns(const char *name, size_t len, size_t *plen)
{
	for (int ns = POSFS_XATTR_USER; ns <= POSFS_XATTR_SYSTEM; ns++) {
		size_t l = strlen(pfs_xattr_ns_prefix[ns]);

		if (len > l && !memcmp(name, pfs_xattr_ns_prefix[ns], l)) {
			*plen = l;
			return ns;
		}
	}
	return 0;
}

static uint32_t xa_entlen(size_t nlen, size_t vlen)
{
	return (uint32_t)((sizeof(struct pfs_dxattr) + nlen + vlen + 3) & ~(size_t)3);
}

/* Entry at *pos (advanced past it): 1, 0 at the end, -EUCLEAN if bad. */
int pfs_xa_next(const struct pfs_onode *o, uint32_t *pos, struct xa_ent *e)
{
	const uint8_t *d;

	if (*pos >= POSFS_INLINE_SIZE)
		return 0;
	if (POSFS_INLINE_SIZE - *pos < sizeof(struct pfs_dxattr))
		return -EUCLEAN;
	/* bytewise: a damaged xattr_len may leave pos unaligned */
	d = o->inline_area + *pos;
	e->off = *pos;
	e->ns = d[0];
	e->nlen = d[1];
	e->vlen = (uint16_t)(d[2] | d[3] << 8);
	e->len = xa_entlen(e->nlen, e->vlen);
	if (e->ns < POSFS_XATTR_USER || e->ns > POSFS_XATTR_SYSTEM || !e->nlen ||
	    e->len > POSFS_INLINE_SIZE - *pos)
		return -EUCLEAN;
	e->name = o->inline_area + *pos + sizeof(struct pfs_dxattr);
	e->val = e->name + e->nlen;
	*pos += e->len;
	return 1;
}

int pfs_onode_check_xattrs(const struct pfs_onode *o)
{
	uint32_t pos = POSFS_INLINE_SIZE - o->xattr_len, n = 0;
	struct xa_ent e;
	int ret;

	if (o->data_len + o->xattr_len > POSFS_INLINE_SIZE)
		return -EUCLEAN;
	while ((ret = pfs_xa_next(o, &pos, &e)) > 0)
		n++;
	return ret ? ret : n == o->xattr_count ? 0 : -EUCLEAN;
}

int pfs_xa_find(const struct pfs_onode *o, const char *name, size_t len, struct xa_ent *e)
{
	uint32_t pos = POSFS_INLINE_SIZE - o->xattr_len;
	size_t plen = 0;
	int ns = xattr_ns(name, len, &plen), ret;

	if (o->data_len + o->xattr_len > POSFS_INLINE_SIZE)
		return -EUCLEAN;
	while ((ret = pfs_xa_next(o, &pos, e)) > 0)
		if (ns && e->ns == ns && e->nlen == len - plen && !memcmp(e->name, name + plen, e->nlen))
			return 0;
	return ret ? ret : -ENOENT;
}

static void xa_remove(struct pfs_onode *o, const struct xa_ent *e)
{
	uint32_t start = POSFS_INLINE_SIZE - o->xattr_len;

	memmove(o->inline_area + start + e->len, o->inline_area + start, e->off - start);
	memset(o->inline_area + start, 0, e->len);
	o->xattr_len = (uint16_t)(o->xattr_len - e->len);
	o->xattr_count--;
}

/* Add inline if it fits: 0, or -ENOSPC (then it goes to the omap). */
static int xa_add(struct pfs_onode *o, const char *name, size_t len, const void *val, size_t vlen)
{
	size_t plen = 0;
	int ns = xattr_ns(name, len, &plen);
	uint32_t el = xa_entlen(len - plen, vlen), start;
	struct pfs_dxattr *d;

	if (!ns || len - plen > 255 || el > XATTR_INLINE_MAX ||
	    o->data_len + o->xattr_len + el > POSFS_INLINE_SIZE)
		return -ENOSPC;
	start = POSFS_INLINE_SIZE - o->xattr_len - el;
	memset(o->inline_area + start, 0, el);
	d = (struct pfs_dxattr *)(o->inline_area + start);
	d->ns = (uint8_t)ns;
	d->name_len = (uint8_t)(len - plen);
	d->value_len = le16_put((uint16_t)vlen);
	memcpy(o->inline_area + start + sizeof(*d), name + plen, len - plen);
	if (vlen)
		memcpy(o->inline_area + start + sizeof(*d) + len - plen, val, vlen);
	o->xattr_len = (uint16_t)(o->xattr_len + el);
	o->xattr_count++;
	return 0;
}

static int op_xattr(struct objctx *c, const struct pfs_op *op)
{
	uint8_t key[XATTR_KEY_MAX];
	struct pfs_omap om;
	struct xa_ent inl;
	struct obj *ob;
	size_t klen;
	int ret, exists, in_inline, in_omap;

	ret = pfs_xattr_key(op, key, &klen);
	if (ret)
		return ret;
	if (op->type == PFS_OP_SETXATTR && op->vlen > POSFS_OMAP_VALUE_MAX)
		return -E2BIG;
	ret = pfs_obj_get(c, op->oid, &ob);
	if (ret)
		return ret;
	om = omap_of(ob);
	ret = pfs_xa_find(&ob->o, op->key, op->klen, &inl);
	if (ret && ret != -ENOENT)
		return ret;
	in_inline = !ret;
	if (op->type == PFS_OP_RMXATTR) {
		ob->dirty = true;
		if (in_inline) {
			xa_remove(&ob->o, &inl);
			return 0;
		}
		ret = ob->o.omap.blkno ? pfs_omap_remove(c->tx, &om, key, klen) : -ENOENT;
		if (ret == -ENOENT)
			return -ENODATA;
		if (!ret)
			ob->o.xattr_omap_count--;
		return ret;
	}
	in_omap = 0;
	if (!in_inline) {
		ret = ob->o.omap.blkno ? pfs_omap_get(c->tx, &om, key, klen, NULL, 0, NULL) : -ENOENT;
		if (ret && ret != -ENOENT)
			return ret;
		in_omap = !ret;
	}
	exists = in_inline || in_omap;
	if ((op->flags & XATTR_CREATE) && exists)
		return -EEXIST;
	if ((op->flags & XATTR_REPLACE) && !exists)
		return -ENODATA;
	ob->dirty = true;
	if (in_inline)
		xa_remove(&ob->o, &inl);
	if (!in_omap && !xa_add(&ob->o, op->key, op->klen, op->val, op->vlen))
		return 0;
	ret = pfs_omap_set(c->tx, &om, key, klen, op->val, op->vlen);
	if (!ret && !in_omap)
		ob->o.xattr_omap_count++;
	return ret;
}

static int op_omap(struct objctx *c, const struct pfs_op *op)
{
	struct pfs_omap om;
	struct obj *ob;
	int ret;

	if (op->type != PFS_OP_OMAP_RMRANGE &&
	    (!op->klen || op->klen > POSFS_OMAP_KEY_MAX || !((const uint8_t *)op->key)[0]))
		return -EINVAL;
	if (op->vlen > POSFS_OMAP_VALUE_MAX)
		return -E2BIG;
	ret = pfs_obj_get(c, op->oid, &ob);
	if (ret)
		return ret;
	om = omap_of(ob);
	ob->dirty = true;
	switch (op->type) {
	case PFS_OP_OMAP_SET:
		return pfs_omap_set(c->tx, &om, op->key, op->klen, op->val, op->vlen);
	case PFS_OP_OMAP_INSERT:
		return pfs_omap_insert(c->tx, &om, op->key, op->klen, op->val, op->vlen);
	case PFS_OP_OMAP_RM:
		return ob->o.omap.blkno ? pfs_omap_remove(c->tx, &om, op->key, op->klen) : -ENOENT;
	default: {
		/* never into the store's own key space (xattrs) */
		static const uint8_t user_start[1] = { 1 };
		const void *start = op->key;
		size_t slen = op->klen;
		uint64_t removed = 0;

		if (!ob->o.omap.blkno)
			return 0;
		if (!start || !slen || !((const uint8_t *)start)[0]) {
			start = user_start;
			slen = 1;
		}
		return pfs_omap_remove_range(c->tx, &om, start, slen, op->key2, op->klen2,
					     &removed);
	}
	}
}

/* ---- dispatch ----------------------------------------------------------- */

int pfs_obj_apply(struct objctx *c, const struct pfs_op *op)
{
	struct obj *ob;
	int ret;

	switch (op->type) {
	case PFS_OP_CREATE:
		return op_create(c, op);
	case PFS_OP_REMOVE:
		return op_remove(c, op);
	case PFS_OP_WRITE:
		return op_write(c, op, false);
	case PFS_OP_ZERO:
		return op_write(c, op, true);
	case PFS_OP_TRUNCATE:
		return op_truncate(c, op);
	case PFS_OP_SETATTR:
		if (!times_ok(&op->attr))
			return -EINVAL;
		ret = pfs_obj_get(c, op->oid, &ob);
		if (!ret) {
			attr_apply(&ob->o, &op->attr, op->mask);
			ob->dirty = true;
		}
		return ret;
	case PFS_OP_SETXATTR:
	case PFS_OP_RMXATTR:
		return op_xattr(c, op);
	case PFS_OP_OMAP_SET:
	case PFS_OP_OMAP_INSERT:
	case PFS_OP_OMAP_RM:
	case PFS_OP_OMAP_RMRANGE:
		return op_omap(c, op);
	case PFS_OP_CLONE:
		return op_clone(c, op);
	case PFS_OP_CLONE_RANGE:
		return op_clone_range(c, op);
	}
	return -EINVAL;
}
