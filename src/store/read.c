/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Reads: an object's onode (stat), its data (read, scrub, seek), its
 * xattrs and its omap, and the walk over a shard's objects. Each runs in a
 * read transaction of the object's shard (read_begin: its lock, no WAL
 * record) and changes nothing.
 *
 * A data read leaves the shard's lock while it waits for the device: the
 * other readers and the writers of the shard go on. What it read is good
 * unless a checkpoint ran meanwhile (read_unlocked); blocks of another
 * shard are checked under that shard's lock.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "posfs/store.h"
#include "format/endian.h"
#include "store/csum.h"
#include "store/extmap.h"
#include "store/omap.h"
#include "store/radix.h"
#include "store/store_internal.h"
#include "store/object_internal.h"

static int read_begin(struct pfs_store *st, uint64_t oid, struct objctx *c, struct obj **ob)
{
	uint32_t shard;
	int ret;

	if (!oid_ok(st, oid))
		return -ENOENT;
	shard = POSFS_OID_SHARD(oid);
	/* not the whole context (16 onodes, 8 KiB): pfs_obj_get clears each
	 * object it takes */
	c->st = st;
	c->tx = NULL;
	c->n = 0;
	ret = pfs_tx_begin_read(st, &shard, 1, &c->tx);
	if (ret)
		return ret;
	ret = pfs_obj_get(c, oid, ob);
	if (ret) {
		pfs_tx_abort(c->tx);
		c->tx = NULL;
	}
	return pfs_store_note(st, ret);
}

static void read_end(struct objctx *c)
{
	pfs_tx_abort(c->tx);
}

int pfs_store_iterate_objects(struct pfs_store *st, uint32_t shard, pfs_object_fn fn, void *arg)
{
	struct pfs_radix rx;
	struct pfs_onode o;
	struct pfs_tx *tx;
	uint64_t local = 0;
	int ret;

	if (shard >= st->nshards)
		return -EINVAL;
	ret = pfs_tx_begin_read(st, &shard, 1, &tx);
	if (ret)
		return ret;
	rx = radix_of(st, shard);
	while (!(ret = pfs_radix_next(tx, &rx, &local, &o))) {
		ret = fn(arg, &o);
		if (ret)
			break;
		local++;
	}
	pfs_tx_abort(tx);
	return pfs_store_note(st, ret == -ENOENT ? 0 : ret);
}

int pfs_store_stat(struct pfs_store *st, uint64_t oid, struct pfs_onode *o)
{
	struct objctx c;
	struct obj *ob;
	int ret = read_begin(st, oid, &c, &ob);

	if (ret)
		return ret;
	*o = ob->o;
	read_end(&c);
	return 0;
}

#define READ_RUN_BLOCKS 256u	/* at most this much per device read */
#define READ_UNLOCKED_TRIES 3	/* then a read holds the lock over its I/O */

/*
 * Check blocks of another shard (a clone's or a spill's, never changed in
 * place) against that shard's table, under its lock: the caller holds no
 * shard lock.
 */
static int check_foreign(struct pfs_store *st, uint32_t shard, uint64_t blkno, uint64_t n,
			 const uint8_t *data, uint64_t *bad)
{
	struct pfs_tx *tx;
	int ret = pfs_tx_begin_read(st, &shard, 1, &tx);

	if (ret)
		return ret;
	ret = pfs_csum_check(tx, blkno, n, data, bad);
	pfs_tx_abort(tx);
	return ret;
}

/* A data read under way (store_read): the object, its shard's read
 * transaction, and where the bytes go. */
struct reader {
	struct pfs_store *st;
	uint64_t oid;
	struct objctx c;
	struct obj *ob;
	bool locked;		/* c.tx is the shard's read transaction */
	bool scrub;
	int tries;		/* checkpoints that made an unlocked I/O void */
	uint8_t *out;		/* the caller's buffer, for byte off */
	uint64_t off, end;
	uint8_t *bounce;	/* for runs not read into out directly */
	size_t bounce_len;
};

/* A checkpoint ran during an unlocked I/O: the extent is looked up again. */
#define READ_AGAIN 1

typedef int read_io_fn(struct reader *r, void *arg);

/*
 * The device read runs without the shard's lock, so that readers and
 * writers of the shard go on. Only a checkpoint changes the device under a
 * mapped block (writing home, or letting a freed block be reused: W4), and
 * a checkpoint shows in ckpt_started: after one, the run is read again, at
 * most READ_UNLOCKED_TRIES times before a read keeps the lock.
 *
 * io runs with the lock dropped while tries remain, and always when it
 * reads another shard's blocks (foreign: it takes that shard's lock).
 * Returns io's result; READ_AGAIN when a checkpoint ran meanwhile; or the
 * error of taking the lock again (r->locked is false then).
 */
static int read_unlocked(struct reader *r, bool foreign, read_io_fn *io, void *arg)
{
	bool unlocked = r->tries < READ_UNLOCKED_TRIES;
	uint64_t gen = r->st->ckpt_started;
	int ret, r2;

	if (unlocked || foreign)
		read_end(&r->c);
	ret = io(r, arg);
	if (unlocked || foreign) {
		r2 = read_begin(r->st, r->oid, &r->c, &r->ob);
		if (r2) {
			r->locked = false;
			return r2;
		}
	}
	if (ret)
		return ret;
	if (r->st->ckpt_started != gen && unlocked) {
		r->tries++;
		return READ_AGAIN;
	}
	return 0;
}

/* A hole at *pos: zeros up to the next extent or the end. */
static int read_hole(struct reader *r, uint64_t *pos)
{
	uint32_t bs = r->st->sb.block_size;
	struct pfs_extmap em = ext_map(&r->c, r->ob);
	struct pfs_dextent d;
	uint64_t next = UINT64_MAX, run_end;
	int ret = pfs_extmap_lookup_ge(&em, *pos / bs, &d);

	if (!ret)
		next = le64_get(d.lblk);
	else if (ret != -ENOENT)
		return ret;
	run_end = next == UINT64_MAX || next * bs > r->end ? r->end : next * bs;
	if (run_end <= *pos)	/* no progress: E4 says never */
		return -EUCLEAN;
	memset(r->out + (*pos - r->off), 0, run_end - *pos);
	*pos = run_end;
	return 0;
}

struct frame_read {
	const struct pfs_extent *e;
	uint8_t *frame;
};

static int frame_read_io(struct reader *r, void *arg)
{
	struct frame_read *f = arg;

	return pfs_frame_fetch(r->st, f->e, &f->frame);
}

/*
 * A compressed extent at *pos: the frame, read as a run is (its blocks
 * change only by a checkpoint's reuse), then checked and unpacked under
 * the lock: only the extent the read touches.
 */
static int read_compressed(struct reader *r, const struct pfs_extent *e, uint64_t *pos)
{
	uint32_t bs = r->st->sb.block_size;
	uint64_t stop = (e->lblk + e->len) * bs < r->end ? (e->lblk + e->len) * bs : r->end;
	struct frame_read f = { e, NULL };
	uint8_t *plain;
	int ret = read_unlocked(r, false, frame_read_io, &f);

	if (!ret)
		ret = pfs_frame_unpack(r->st, r->oid, e, f.frame, &plain);
	if (ret)
		return ret;
	memcpy(r->out + (*pos - r->off), plain + (*pos - e->lblk * bs), stop - *pos);
	*pos = stop;
	return 0;
}

/* A run of a mapped extent: n blocks from pblk (of shard sh) into dst. */
struct run_read {
	struct pfs_shard *sh;
	uint64_t pblk, n;
	uint8_t *dst;
	bool foreign;		/* sh is not the object's shard */
	int cret;		/* the checksums' verdict */
	uint64_t bad;		/* the first bad block, for -EBADMSG */
};

static int run_read_io(struct reader *r, void *arg)
{
	struct run_read *a = arg;
	uint32_t bs = r->st->sb.block_size;
	int ret = pfs_dev_pread(r->st->dev, a->dst, a->n * bs, a->pblk * bs);

	if (!ret && a->foreign)
		a->cret = check_foreign(r->st, a->sh->index, a->pblk, a->n, a->dst, &a->bad);	/* C2 */
	return ret;
}

/*
 * What the cache has newer than the device, over the run read; blocks not
 * from a cached copy known good are checked (C2). A scrub takes only what
 * is not home yet from the cache.
 */
static int run_read_cached(struct reader *r, struct run_read *a)
{
	uint32_t bs = r->st->sb.block_size;
	uint64_t from = 0;
	int cret = 0;

	for (uint64_t i = 0; !cret && i <= a->n; i++) {
		struct pfs_buf *b = i < a->n ? pfs_bcache_find(&a->sh->cache, a->pblk + i) : NULL;
		bool good = false;

		if (b) {
			if ((b->flags & PFS_BUF_VALID) &&
			    (!r->scrub || (b->flags & PFS_BUF_DIRTY))) {
				memcpy(a->dst + i * bs, b->data, bs);
				good = r->scrub || (b->flags & PFS_BUF_CSUM_OK);
			}
			pfs_bcache_put(b);
		}
		if ((good || i == a->n) && i > from)
			cret = pfs_csum_check(r->c.tx, a->pblk + from, i - from,
					      a->dst + from * bs, &a->bad);
		if (good || i == a->n)
			from = i + 1;
	}
	return cret;
}

/* A mapped extent at *pos: a run read from the device, then what the
 * cache has newer. */
static int read_mapped(struct reader *r, const struct pfs_extent *e, uint64_t *pos)
{
	struct pfs_store *st = r->st;
	uint32_t bs = st->sb.block_size;
	size_t align = pfs_dev_info(st->dev)->dio_mem_align;
	uint64_t lb = *pos / bs, boff = *pos % bs, chunk;
	struct run_read a = { 0 };
	int ret;

	a.n = e->lblk + e->len - lb;
	if (a.n > READ_RUN_BLOCKS)
		a.n = READ_RUN_BLOCKS;
	if ((lb + a.n) * bs > r->end)
		a.n = (r->end - 1) / bs - lb + 1;
	/* whole blocks into an aligned buffer go there directly; the
	 * rest through a bounce buffer as large as the reads need */
	a.dst = r->out + (*pos - r->off);
	if (boff || (lb + a.n) * bs > r->end || (uintptr_t)a.dst % align) {
		if (!r->bounce) {
			size_t want = ((r->end - *pos + boff + bs - 1) / bs) * bs;

			r->bounce_len = want < READ_RUN_BLOCKS * (size_t)bs ? want :
					READ_RUN_BLOCKS * (size_t)bs;
			r->bounce = pfs_scratch_get(r->bounce_len, align);
			if (!r->bounce)
				return -ENOMEM;
		}
		if (a.n * bs > r->bounce_len)
			a.n = r->bounce_len / bs;
		a.dst = r->bounce;
	}
	a.pblk = e->pblk + (lb - e->lblk);
	/* a block of another shard (a clone's, a spill's) is home and
	 * never changes in place: the device has it; that shard's cache
	 * and checksums are not ours to look at without its lock */
	a.sh = pfs_store_block_shard(st, a.pblk);
	if (!a.sh)		/* V1 says never: no block of no shard */
		return -EUCLEAN;
	a.foreign = a.sh->index != POSFS_OID_SHARD(r->oid);
	ret = read_unlocked(r, a.foreign, run_read_io, &a);
	if (ret)
		return ret;
	if (!a.foreign)
		a.cret = run_read_cached(r, &a);
	if (a.cret == -EBADMSG)
		return pfs_store_data_error(st, r->oid, (lb + (a.bad - a.pblk)) * bs, a.bad);
	if (a.cret)
		return a.cret;
	chunk = a.n * bs - boff;
	if (*pos + chunk > r->end)
		chunk = r->end - *pos;
	if (a.dst == r->bounce)
		memcpy(r->out + (*pos - r->off), r->bounce + boff, chunk);
	*pos += chunk;
	return 0;
}

/* pfs_store_read, or with scrub pfs_store_scrub. */
static ssize_t store_read(struct pfs_store *st, uint64_t oid, uint64_t off, size_t len, void *buf,
			  bool scrub)
{
	uint32_t bs = st->sb.block_size;
	struct reader r;	/* not cleared: read_begin sets up r.c */
	struct obj *ob;
	uint64_t pos;
	int ret = read_begin(st, oid, &r.c, &r.ob);

	if (ret)
		return ret;
	r.st = st;
	r.oid = oid;
	r.locked = true;
	r.scrub = scrub;
	r.tries = 0;
	r.out = buf;
	r.off = off;
	r.bounce = NULL;
	r.bounce_len = 0;
	ob = r.ob;
	if (off >= ob->o.size || !len) {
		read_end(&r.c);
		return 0;
	}
	r.end = off + len > ob->o.size ? ob->o.size : off + len;
	if (is_inline_data(ob)) {
		memset(r.out, 0, r.end - off);
		if (off < ob->o.data_len)
			memcpy(r.out, ob->o.inline_area + off,
			       (r.end < ob->o.data_len ? r.end : ob->o.data_len) - off);
		read_end(&r.c);
		return (ssize_t)(r.end - off);
	}
	for (pos = off; pos < r.end;) {
		struct pfs_extent e;

		ret = pfs_ext_find(&r.c, r.ob, pos / bs, &e);
		if (ret == -ENOENT)
			ret = read_hole(&r, &pos);
		else if (!ret && (e.flags & POSFS_EXTENT_COMPRESSED))
			ret = read_compressed(&r, &e, &pos);
		else if (!ret)
			ret = read_mapped(&r, &e, &pos);
		if (ret == READ_AGAIN)
			ret = 0;
		else if (ret)
			break;
	}
	pfs_scratch_put(r.bounce);
	if (!r.locked)
		return ret;	/* read_begin has noted it */
	read_end(&r.c);
	return ret ? pfs_store_note(st, ret) : (ssize_t)(r.end - off);
}

ssize_t pfs_store_read(struct pfs_store *st, uint64_t oid, uint64_t off, size_t len, void *buf)
{
	return store_read(st, oid, off, len, buf, false);
}

ssize_t pfs_store_scrub(struct pfs_store *st, uint64_t oid, uint64_t off, size_t len, void *buf)
{
	return store_read(st, oid, off, len, buf, true);
}

int pfs_store_seek(struct pfs_store *st, uint64_t oid, uint64_t off, bool hole,
		   uint64_t *result)
{
	uint32_t bs = st->sb.block_size;
	struct objctx c;
	struct obj *ob;
	uint64_t pos;
	int ret = read_begin(st, oid, &c, &ob);

	if (ret)
		return ret;
	if (off >= ob->o.size) {
		read_end(&c);
		return -ENXIO;
	}
	if (is_inline_data(ob)) {	/* all data, up to the end */
		*result = hole ? ob->o.size : off;
		read_end(&c);
		return 0;
	}
	pos = off;
	ret = 0;
	while (pos < ob->o.size) {
		uint64_t next;
		struct pfs_extent e;
		struct pfs_extmap em = ext_map(&c, ob);
		struct pfs_dextent d;
		int r = pfs_ext_find(&c, ob, pos / bs, &e);
		bool data = !r;

		if (r && r != -ENOENT) {
			ret = r;
			break;
		}
		if (data != hole) {
			*result = pos;
			break;
		}
		if (!r) {
			next = (e.lblk + e.len) * bs;	/* past this extent (data or unwritten) */
		} else if (!(r = pfs_extmap_lookup_ge(&em, pos / bs, &d))) {
			next = le64_get(d.lblk) * bs;	/* the next extent */
		} else if (r == -ENOENT) {
			next = ob->o.size;
		} else {
			ret = r;
			break;
		}
		if (next <= pos) {		/* no progress: E4 says never */
			ret = -EUCLEAN;
			break;
		}
		pos = next;
	}
	if (!ret && pos >= ob->o.size) {
		if (hole)
			*result = ob->o.size;	/* the end is a hole */
		else
			ret = -ENXIO;
	}
	read_end(&c);
	return pfs_store_note(st, ret);
}

ssize_t pfs_store_getxattr(struct pfs_store *st, uint64_t oid, const char *name, void *buf,
			   size_t cap)
{
	struct pfs_op op = { .key = name, .klen = strlen(name) };
	uint8_t key[XATTR_KEY_MAX];
	struct pfs_omap om;
	struct objctx c;
	struct obj *ob;
	size_t klen, vlen = 0;
	int ret;

	ret = pfs_xattr_key(&op, key, &klen);
	if (ret)
		return ret == -ERANGE ? -ENODATA : ret;
	ret = read_begin(st, oid, &c, &ob);
	if (ret)
		return ret;
	{
		struct xa_ent e;

		ret = pfs_xa_find(&ob->o, name, op.klen, &e);
		if (!ret) {
			vlen = e.vlen;
			if (cap && cap < vlen)
				ret = -ERANGE;
			else if (cap)
				memcpy(buf, e.val, vlen);
			read_end(&c);
			return ret ? ret : (ssize_t)vlen;
		}
		if (ret != -ENOENT) {
			read_end(&c);
			return pfs_store_note(st, ret);
		}
	}
	om = omap_of(ob);
	ret = ob->o.omap.blkno ? pfs_omap_get(c.tx, &om, key, klen, cap ? buf : NULL, cap, &vlen)
			       : -ENOENT;
	read_end(&c);
	if (ret == -ENOENT)
		return -ENODATA;
	return ret ? ret : (ssize_t)vlen;
}

struct list_ctx {
	char *buf;
	size_t cap, len;
};

ssize_t pfs_store_listxattr(struct pfs_store *st, uint64_t oid, char *buf, size_t cap)
{
	static const uint8_t prefix[2] = { 0, 'x' };
	struct pfs_omap_cursor cur;
	uint8_t key[POSFS_OMAP_KEY_MAX];
	struct pfs_omap om;
	struct objctx c;
	struct obj *ob;
	size_t klen, total = 0;
	int ret;

	ret = read_begin(st, oid, &c, &ob);
	if (ret)
		return ret;
	{
		uint32_t pos = POSFS_INLINE_SIZE - ob->o.xattr_len;
		struct xa_ent e;

		while ((ret = pfs_xa_next(&ob->o, &pos, &e)) > 0) {
			const char *p = pfs_xattr_ns_prefix[e.ns];
			size_t l = strlen(p) + e.nlen + 1;

			if (cap) {
				if (total + l > cap) {
					read_end(&c);
					return -ERANGE;
				}
				memcpy(buf + total, p, strlen(p));
				memcpy(buf + total + strlen(p), e.name, e.nlen);
				buf[total + l - 1] = 0;
			}
			total += l;
		}
		if (ret < 0) {
			read_end(&c);
			return pfs_store_note(st, ret);
		}
	}
	if (!ob->o.omap.blkno) {
		read_end(&c);
		return (ssize_t)total;
	}
	om = omap_of(ob);
	ret = pfs_omap_cursor_seek(c.tx, &om, prefix, 2, &cur);
	while (!ret) {
		ret = pfs_omap_cursor_next(&cur, key, sizeof(key), &klen, NULL, 0, NULL);
		if (ret)
			break;
		if (klen < 2 || key[0] != 0 || key[1] != 'x')
			break;
		if (cap) {
			if (total + klen - 2 + 1 > cap) {
				ret = -ERANGE;
				break;
			}
			memcpy(buf + total, key + 2, klen - 2);
			buf[total + klen - 2] = 0;
		}
		total += klen - 2 + 1;
	}
	pfs_omap_cursor_release(&cur);
	read_end(&c);
	if (ret == -ENOENT)
		ret = 0;
	return ret ? pfs_store_note(st, ret) : (ssize_t)total;
}

ssize_t pfs_store_omap_get(struct pfs_store *st, uint64_t oid, const void *key, size_t klen,
			   void *val, size_t cap)
{
	struct pfs_omap om;
	struct objctx c;
	struct obj *ob;
	size_t vlen = 0;
	int ret;

	if (!klen || klen > POSFS_OMAP_KEY_MAX)
		return -EINVAL;
	ret = read_begin(st, oid, &c, &ob);
	if (ret)
		return ret;
	om = omap_of(ob);
	ret = ob->o.omap.blkno ? pfs_omap_get(c.tx, &om, key, klen, cap ? val : NULL, cap, &vlen)
			       : -ENOENT;
	read_end(&c);
	return ret ? pfs_store_note(st, ret) : (ssize_t)vlen;
}

int pfs_store_omap_iterate(struct pfs_store *st, uint64_t oid, const void *after, size_t alen,
			   pfs_omap_fn fn, void *arg)
{
	static const uint8_t user_start[1] = { 1 };
	struct pfs_omap_cursor cur;
	uint8_t *key, *val;
	struct pfs_omap om;
	struct objctx c;
	struct obj *ob;
	size_t klen, vlen;
	int ret;

	ret = read_begin(st, oid, &c, &ob);
	if (ret)
		return ret;
	if (!ob->o.omap.blkno) {
		read_end(&c);
		return 0;
	}
	key = malloc(POSFS_OMAP_KEY_MAX);
	val = malloc(POSFS_OMAP_VALUE_MAX);
	if (!key || !val) {
		free(key);
		free(val);
		read_end(&c);
		return -ENOMEM;
	}
	om = omap_of(ob);
	if (after && alen)
		ret = pfs_omap_cursor_seek_after(c.tx, &om, after, alen, &cur);
	else
		ret = pfs_omap_cursor_seek(c.tx, &om, user_start, 1, &cur);
	while (!ret) {
		ret = pfs_omap_cursor_next(&cur, key, POSFS_OMAP_KEY_MAX, &klen, val,
					   POSFS_OMAP_VALUE_MAX, &vlen);
		if (ret)
			break;
		if (!key[0])
			continue;	/* the store's own keys */
		ret = fn(arg, key, klen, val, vlen);
	}
	pfs_omap_cursor_release(&cur);
	read_end(&c);
	free(key);
	free(val);
	return ret == -ENOENT ? 0 : pfs_store_note(st, ret);
}
