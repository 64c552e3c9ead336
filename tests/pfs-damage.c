/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pfs-damage: damage exactly one structure of a posfs image, for the fsck
 * tests (tests/fsck). The image must be cleanly unmounted (nothing in its
 * WALs). Structural damage is written straight to the device (a flipped
 * byte for a bad checksum, or a changed field with the checksum sealed
 * again so that only the field is wrong); namespace damage is made in
 * store transactions, as a buggy daemon would have.
 *
 *   pfs-damage IMG WHAT [ARGS]   (objects as decimal inode numbers)
 *
 * Exit status 0 done, 1 failed, 2 usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "format/endian.h"
#include "posfs/disk.h"
#include "posfs/io.h"
#include "posfs/store.h"
#include "store/radix.h"
#include "store/store_internal.h"

static const char *img;

static void die(const char *what, int err)
{
	fprintf(stderr, "pfs-damage: %s: %s\n", what, strerror(-err));
	exit(1);
}

static uint64_t num(const char *s)
{
	return strtoull(s, NULL, 0);
}

/* ---- raw blocks ------------------------------------------------------------ */

static struct pfs_dev *dev_open(void)
{
	struct pfs_dev_opts o = { .buffered = true };
	struct pfs_dev *dev;
	int ret = pfs_dev_open(img, &o, &dev);

	if (ret)
		die("open", ret);
	return dev;
}

static void *rd(struct pfs_dev *dev, uint64_t off, size_t len)
{
	void *b = pfs_dev_buf_alloc(len);
	int ret = pfs_dev_pread(dev, b, len, off);

	if (ret)
		die("read", ret);
	return b;
}

static void wr(struct pfs_dev *dev, const void *b, size_t len, uint64_t off)
{
	int ret = pfs_dev_pwrite(dev, b, len, off);

	if (!ret)
		ret = pfs_dev_flush(dev);
	if (ret)
		die("write", ret);
}

/* Flip one byte at off (a bad checksum for whatever covers it). */
static void flip(uint64_t off)
{
	struct pfs_dev *dev = dev_open();
	uint64_t base = off & ~UINT64_C(4095);
	uint8_t *b = rd(dev, base, 4096);

	b[off - base] ^= 0x5a;
	wr(dev, b, 4096, base);
	pfs_dev_buf_free(b);
	pfs_dev_close(dev);
}

/* ---- finding blocks through the store ------------------------------------------- */

struct place {
	uint32_t bs;
	uint64_t total_blocks;
	uint64_t leaf;			/* radix leaf of the object */
	uint32_t slot_off;		/* byte offset of its slot in the leaf */
	struct pfs_onode o;
	struct pfs_shard_hdr hdr;	/* of the object's shard (or the one asked) */
	struct pfs_super sb;
};

static uint64_t first_free;	/* of the shard find looked at */

static void find(uint64_t oid, uint32_t shard, struct place *p)
{
	struct pfs_store_opts so = { .readonly = true };
	struct pfs_store *st;
	struct pfs_tx *tx;
	int ret = pfs_store_open(img, &so, &st);

	if (ret)
		die("store open", ret);
	p->bs = st->sb.block_size;
	p->total_blocks = st->sb.total_blocks;
	p->sb = st->sb;
	if (oid)
		shard = POSFS_OID_SHARD(oid);
	p->hdr = st->shards[shard].hdr;
	{
		uint64_t len;

		if (pfs_alloc_find(&st->shards[shard].alloc, 0, &first_free, &len))
			first_free = 0;
	}
	if (oid) {
		struct pfs_radix rx = { &st->shards[shard].hdr.onodes, shard };
		struct pfs_buf *leaf;
		struct pfs_donode *slot;

		ret = pfs_tx_begin_read(st, &shard, 1, &tx);
		if (!ret)
			ret = pfs_radix_slot(tx, &rx, POSFS_OID_LOCAL(oid), false, &leaf, &slot);
		if (ret)
			die("find object", ret);
		p->leaf = pfs_buf_blkno(leaf);
		p->slot_off = (uint32_t)((uint8_t *)slot - pfs_buf_data(leaf));
		pfs_onode_from_disk(slot, &p->o);
		pfs_buf_put(leaf);
		pfs_tx_abort(tx);
	}
	pfs_store_close(st);
}

/* Change the onode of oid with fn, seal the leaf again. */
static void edit_onode(uint64_t oid, void (*fn)(struct pfs_donode *d, const struct place *p))
{
	struct place p;
	struct pfs_dev *dev;
	uint8_t *b;

	find(oid, 0, &p);
	dev = dev_open();
	b = rd(dev, p.leaf * p.bs, p.bs);
	fn((struct pfs_donode *)(b + p.slot_off), &p);
	pfs_block_seal(b);
	wr(dev, b, p.bs, p.leaf * p.bs);
	pfs_dev_buf_free(b);
	pfs_dev_close(dev);
}

static void on_bad_fmt(struct pfs_donode *d, const struct place *p)
{
	(void)p;
	d->data_fmt = 9;
}

static void on_xattrs(struct pfs_donode *d, const struct place *p)
{
	(void)p;
	d->xattr_len = le16_put(8);	/* zeros: no namespace 0 */
	d->xattr_count = le16_put(1);
}

static void on_omap_count(struct pfs_donode *d, const struct place *p)
{
	(void)p;
	d->omap_count = le64_put(le64_get(d->omap_count) + 3);
}

static void on_blocks(struct pfs_donode *d, const struct place *p)
{
	(void)p;
	d->blocks = le64_put(le64_get(d->blocks) + 8);
}

static void on_extent_out(struct pfs_donode *d, const struct place *p)
{
	struct pfs_dextent *e = (struct pfs_dextent *)d->inline_area;

	if (d->data_fmt != POSFS_DATA_EXTENTS || !d->data_len)
		die("extent: the object has no inline extents", -EINVAL);
	e->pblk = le64_put(p->total_blocks + 100);
}

static uint64_t dup_pblk;

static void on_extent_dup(struct pfs_donode *d, const struct place *p)
{
	struct pfs_dextent *e = (struct pfs_dextent *)d->inline_area;

	(void)p;
	if (d->data_fmt != POSFS_DATA_EXTENTS || !d->data_len)
		die("extent: the object has no inline extents", -EINVAL);
	e->pblk = le64_put(dup_pblk);
}

/* ---- hostile extents ------------------------------------------------------------ */

static const char *set_field;
static uint64_t set_value;

static void set_extent(struct pfs_dextent *e)
{
	if (!strcmp(set_field, "lblk"))
		e->lblk = le64_put(set_value);
	else if (!strcmp(set_field, "len"))
		e->len = e->plen = le32_put((uint32_t)set_value);
	else if (!strcmp(set_field, "pblk"))
		e->pblk = le64_put(set_value);
	else
		die("extent-set: the field is lblk, len or pblk", -EINVAL);
}

static void on_extent_set(struct pfs_donode *d, const struct place *p)
{
	(void)p;
	if (d->data_fmt != POSFS_DATA_EXTENTS || !d->data_len)
		die("extent-set: the object has no inline extents", -EINVAL);
	set_extent((struct pfs_dextent *)d->inline_area);
}

/*
 * A place named by what an attacker aims at, in the object's shard s:
 * "wal", "csum" (its checksum table), "header" (the next shard's header
 * slot), "free" (its first free block), "head" (block 1), or a number.
 */
static uint64_t aim(const struct place *p, uint64_t oid, const char *v)
{
	uint32_t s = POSFS_OID_SHARD(oid);
	struct pfs_shard_geo g;

	if (pfs_geo_shard(&p->sb, s, &g))
		die("geometry", -EINVAL);
	if (!strcmp(v, "wal"))
		return g.wal_start;
	if (!strcmp(v, "csum")) {
		if (!g.csum_blocks)
			die("extent-set: no checksum table", -EINVAL);
		return g.csum_start;
	}
	if (!strcmp(v, "header")) {
		pfs_geo_shard(&p->sb, (s + 1) % p->sb.shard_count, &g);
		return g.start_block;
	}
	if (!strcmp(v, "head"))
		return 1;
	if (!strcmp(v, "free"))
		return first_free;
	return num(v);
}

/* The first leaf of an extent tree (leftmost descent from its root). */
static uint64_t first_leaf(const struct place *p)
{
	struct pfs_dev *dev = dev_open();
	uint64_t blk = p->o.extents.blkno;

	for (uint32_t h = p->o.extents.height; h > 1; h--) {
		uint8_t *b = rd(dev, blk * p->bs, p->bs);
		struct pfs_dbtree_ptr ptr;

		memcpy(&ptr, b + sizeof(struct pfs_dblock_hdr), sizeof(ptr));
		blk = le64_get(ptr.child);
		pfs_dev_buf_free(b);
	}
	pfs_dev_close(dev);
	return blk;
}

static void on_leaf_set(uint8_t *b)
{
	set_extent((struct pfs_dextent *)(b + sizeof(struct pfs_dblock_hdr)));
}

/* Change a field of a metadata block, seal it again. */
static void edit_block(uint64_t blkno, uint32_t bs, void (*fn)(uint8_t *b))
{
	struct pfs_dev *dev = dev_open();
	uint8_t *b = rd(dev, blkno * bs, bs);

	fn(b);
	pfs_block_seal(b);
	wr(dev, b, bs, blkno * bs);
	pfs_dev_buf_free(b);
	pfs_dev_close(dev);
}

static void on_nr_minus(uint8_t *b)
{
	struct pfs_dblock_hdr *h = (struct pfs_dblock_hdr *)b;

	h->nr = le16_put((uint16_t)(le16_get(h->nr) - 1));
}

/* the first record of a free-tree leaf */
static void on_future(uint8_t *b)
{
	struct pfs_dblock_hdr *h = (struct pfs_dblock_hdr *)b;

	h->lsn = le64_put(UINT64_C(1) << 40);
}

static void on_leak(uint8_t *b)
{
	struct pfs_dfree *r = (struct pfs_dfree *)(b + sizeof(struct pfs_dblock_hdr));

	r->start = le64_put(le64_get(r->start) + 1);
	r->len = le64_put(le64_get(r->len) - 1);
}

static void on_free_used(uint8_t *b)
{
	struct pfs_dfree *r = (struct pfs_dfree *)(b + sizeof(struct pfs_dblock_hdr));

	r->start = le64_put(le64_get(r->start) - 1);
	r->len = le64_put(le64_get(r->len) + 1);
}

static void on_refs_plus(uint8_t *b)
{
	struct pfs_drefcount *r = (struct pfs_drefcount *)(b + sizeof(struct pfs_dblock_hdr));

	r->refs = le32_put(le32_get(r->refs) + 1);
}

/* Rewrite a shard header with fn applied (into the other slot). */
static void edit_header(uint32_t shard, void (*fn)(struct pfs_shard_hdr *h))
{
	struct pfs_dev *dev = dev_open();
	struct pfs_super sb;
	struct pfs_shard_hdr h;
	int ret = pfs_super_read(dev, &sb, NULL);

	if (!ret)
		ret = pfs_shard_hdr_read(dev, &sb, shard, &h, NULL);
	if (ret)
		die("header", ret);
	fn(&h);
	ret = pfs_shard_hdr_write(dev, &sb, &h);
	if (ret)
		die("header write", ret);
	pfs_dev_close(dev);
}

static void on_free_count(struct pfs_shard_hdr *h) { h->free_blocks += 3; }
static void on_onode_count(struct pfs_shard_hdr *h) { h->onode_count += 1; }
static void on_next_local(struct pfs_shard_hdr *h) { h->next_local = POSFS_LOCAL_FIRST; }
/* the onode tree's root at a block of another type: the free tree's root */
static void on_radix_root(struct pfs_shard_hdr *h) { h->onodes.blkno = h->free.blkno; }

/* ---- namespace damage in transactions ------------------------------------------- */

static struct pfs_store *ns_open(void)
{
	struct pfs_store_opts so = { .ckpt_interval_ms = -1 };
	struct pfs_store *st;
	int ret = pfs_store_open(img, &so, &st);

	if (ret)
		die("store open", ret);
	return st;
}

static void ns_submit(struct pfs_store *st, struct pfs_txn *t)
{
	int ret = pfs_store_submit(st, t, PFS_SUBMIT_DURABLE, NULL);

	pfs_txn_fini(t);
	if (!ret)
		ret = pfs_store_close(st);
	else
		pfs_store_close(st);
	if (ret)
		die("transaction", ret);
}

static void ns_setattr(uint64_t oid, uint32_t mask, const struct pfs_attr *a)
{
	struct pfs_store *st = ns_open();
	struct pfs_txn t;

	pfs_txn_init(&t);
	pfs_txn_setattr(&t, oid, a, mask);
	ns_submit(st, &t);
}

/* 'n' + name -> (le64 ino, u8 type, le64 seq) */
static size_t dent_key(uint8_t *key, const char *name)
{
	size_t n = strlen(name);

	key[0] = 'n';
	memcpy(key + 1, name, n);
	return n + 1;
}

/* ---- random damage: the corruption sweep ---------------------------------------- */

static uint64_t rng(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

/* One metadata block (a tree node or a shard header) chosen by seed gets
 * 1 to 8 random bytes changed past its checksum; every other time the
 * checksum is sealed again, so that only fields are wrong. Prints what
 * it did. */
static void random_damage(uint64_t seed)
{
	static const uint32_t magics[] = {
		POSFS_MAGIC_SHARD, POSFS_MAGIC_RADIX, POSFS_MAGIC_ONODES, POSFS_MAGIC_FREE,
		POSFS_MAGIC_EXTENT, POSFS_MAGIC_REFCOUNT, POSFS_MAGIC_OMAP,
	};
	struct pfs_dev *dev = dev_open();
	struct pfs_super sb;
	uint64_t s = seed, *cand = NULL, n = 0, blk;
	uint8_t *b;
	int ret = pfs_super_read(dev, &sb, NULL), k;
	bool reseal;

	if (ret)
		die("superblock", ret);
	b = pfs_dev_buf_alloc(sb.block_size);
	for (uint64_t i = POSFS_HEAD_SIZE / sb.block_size; i < sb.total_blocks; i++) {
		uint32_t magic;

		if (pfs_dev_pread(dev, b, sb.block_size, i * sb.block_size))
			continue;
		memcpy(&magic, b + 4, 4);
		magic = le32_get(magic);
		for (size_t m = 0; m < sizeof(magics) / sizeof(magics[0]); m++) {
			if (magic != magics[m])
				continue;
			cand = realloc(cand, (n + 1) * sizeof(*cand));
			cand[n++] = i;
		}
	}
	if (!n)
		die("random: no metadata block", -ENOENT);
	blk = cand[rng(&s) % n];
	free(cand);
	ret = pfs_dev_pread(dev, b, sb.block_size, blk * sb.block_size);
	if (ret)
		die("read", ret);
	k = 1 + (int)(rng(&s) % 8);
	reseal = rng(&s) & 1;
	for (int i = 0; i < k; i++) {
		/* mostly the header and the first records, where the fields are */
		uint32_t off = 4 + (uint32_t)(rng(&s) % ((rng(&s) & 1) ? 252 : sb.block_size - 4));

		if (reseal && off >= 8 && off < 12)
			off = 12;	/* sealing trusts the size field */

		b[off] ^= (uint8_t)(1 + rng(&s) % 255);
	}
	if (reseal)
		pfs_block_seal(b);
	wr(dev, b, sb.block_size, blk * sb.block_size);
	printf("block %" PRIu64 ": %d bytes changed%s\n", blk, k, reseal ? ", sealed" : "");
	pfs_dev_buf_free(b);
	pfs_dev_close(dev);
}

int main(int argc, char **argv)
{
	const char *what;

	if (argc < 3) {
		fprintf(stderr, "usage: pfs-damage IMG WHAT [ARGS]\n");
		return 2;
	}
	img = argv[1];
	what = argv[2];
#define NEED(n) do { if (argc < 3 + (n)) { fprintf(stderr, "pfs-damage: %s needs %d arguments\n", what, n); return 2; } } while (0)
	if (!strcmp(what, "sb-primary")) {
		flip(POSFS_SB_OFFSET + 0x200);
	} else if (!strcmp(what, "sb-backup")) {
		flip(POSFS_SB_BACKUP_OFFSET + 0x200);
	} else if (!strcmp(what, "slot")) {		/* SHARD A|B */
		struct place p;

		NEED(2);
		find(0, (uint32_t)num(argv[3]), &p);
		flip((p.hdr.start_block + (argv[4][0] == 'B')) * p.bs + 0x80);
	} else if (!strcmp(what, "onode")) {		/* OID */
		NEED(1);
		edit_onode(num(argv[3]), on_bad_fmt);
	} else if (!strcmp(what, "radix-node")) {	/* OID: its leaf */
		struct place p;

		NEED(1);
		find(num(argv[3]), 0, &p);
		flip(p.leaf * p.bs + 0x100);
	} else if (!strcmp(what, "lsn")) {		/* OID: its leaf, from the future */
		struct place p;

		NEED(1);
		find(num(argv[3]), 0, &p);
		edit_block(p.leaf, p.bs, on_future);
	} else if (!strcmp(what, "radix-count")) {	/* OID: its leaf */
		struct place p;

		NEED(1);
		find(num(argv[3]), 0, &p);
		edit_block(p.leaf, p.bs, on_nr_minus);
	} else if (!strcmp(what, "extent-tree")) {	/* OID */
		struct place p;

		NEED(1);
		find(num(argv[3]), 0, &p);
		if (p.o.data_fmt != POSFS_DATA_BTREE)
			die("extent-tree: the object has no extent tree", -EINVAL);
		flip(p.o.extents.blkno * p.bs + 0x100);
	} else if (!strcmp(what, "extent")) {		/* OID */
		NEED(1);
		edit_onode(num(argv[3]), on_extent_out);
	} else if (!strcmp(what, "extent-set")) {	/* OID FIELD VALUE: its first extent */
		uint64_t oid;
		struct place p;

		NEED(3);
		oid = num(argv[3]);
		find(oid, 0, &p);
		set_field = argv[4];
		set_value = strcmp(set_field, "pblk") ? num(argv[5]) : aim(&p, oid, argv[5]);
		if (p.o.data_fmt == POSFS_DATA_BTREE)
			edit_block(first_leaf(&p), p.bs, on_leaf_set);
		else
			edit_onode(oid, on_extent_set);
	} else if (!strcmp(what, "extent-dup")) {	/* OID OID2: OID2 takes OID's blocks */
		struct place p;
		struct pfs_dextent e;

		NEED(2);
		find(num(argv[3]), 0, &p);
		if (p.o.data_fmt != POSFS_DATA_EXTENTS || !p.o.data_len)
			die("extent-dup: no inline extents", -EINVAL);
		memcpy(&e, p.o.inline_area, sizeof(e));
		dup_pblk = le64_get(e.pblk);
		edit_onode(num(argv[4]), on_extent_dup);
	} else if (!strcmp(what, "data")) {		/* OID [LBLK]: the data block */
		uint64_t lb = argc > 4 ? num(argv[4]) : 0;
		struct place p;
		bool done = false;

		NEED(1);
		find(num(argv[3]), 0, &p);
		if (p.o.data_fmt != POSFS_DATA_EXTENTS)
			die("data: the object has no inline extents", -EINVAL);
		for (size_t i = 0; !done && i < p.o.data_len / sizeof(struct pfs_dextent); i++) {
			struct pfs_dextent e;
			uint64_t l;

			memcpy(&e, p.o.inline_area + i * sizeof(e), sizeof(e));
			l = le64_get(e.lblk);
			if (lb >= l && lb < l + le32_get(e.len)) {
				flip((le64_get(e.pblk) + lb - l) * p.bs + 0x123);
				done = true;
			}
		}
		if (!done)
			die("data: no extent holds that block", -ENOENT);
	} else if (!strcmp(what, "csum-table")) {	/* SHARD: its first checksum block */
		struct pfs_shard_geo g;
		struct place p;

		NEED(1);
		find(0, (uint32_t)num(argv[3]), &p);
		if (pfs_geo_shard(&p.sb, (uint32_t)num(argv[3]), &g) || !g.csum_blocks)
			die("csum-table: no checksum table", -EINVAL);
		flip(g.csum_start * p.bs + 0x100);
	} else if (!strcmp(what, "omap")) {		/* OID */
		struct place p;

		NEED(1);
		find(num(argv[3]), 0, &p);
		if (!p.o.omap.blkno)
			die("omap: the object has no omap", -EINVAL);
		flip(p.o.omap.blkno * p.bs + 0x100);
	} else if (!strcmp(what, "xattrs")) {		/* OID */
		NEED(1);
		edit_onode(num(argv[3]), on_xattrs);
	} else if (!strcmp(what, "omap-count")) {	/* OID */
		NEED(1);
		edit_onode(num(argv[3]), on_omap_count);
	} else if (!strcmp(what, "blocks")) {		/* OID */
		NEED(1);
		edit_onode(num(argv[3]), on_blocks);
	} else if (!strcmp(what, "free-tree") || !strcmp(what, "leak") ||
		   !strcmp(what, "free-used")) {	/* SHARD */
		struct place p;

		NEED(1);
		find(0, (uint32_t)num(argv[3]), &p);
		if (!strcmp(what, "free-tree"))
			flip(p.hdr.free.blkno * p.bs + 0x100);
		else if (p.hdr.free.height != 1)
			die("free tree of more than one level", -EINVAL);
		else
			edit_block(p.hdr.free.blkno, p.bs,
				   !strcmp(what, "leak") ? on_leak : on_free_used);
	} else if (!strcmp(what, "refcount")) {		/* SHARD */
		struct place p;

		NEED(1);
		find(0, (uint32_t)num(argv[3]), &p);
		if (p.hdr.refcount.height != 1)
			die("refcount: no one-level shared-blob tree", -EINVAL);
		edit_block(p.hdr.refcount.blkno, p.bs, on_refs_plus);
	} else if (!strcmp(what, "free-count")) {
		NEED(1);
		edit_header((uint32_t)num(argv[3]), on_free_count);
	} else if (!strcmp(what, "onode-count")) {
		NEED(1);
		edit_header((uint32_t)num(argv[3]), on_onode_count);
	} else if (!strcmp(what, "next-local")) {
		NEED(1);
		edit_header((uint32_t)num(argv[3]), on_next_local);
	} else if (!strcmp(what, "radix-root")) {	/* SHARD: the header's onode root */
		NEED(1);
		edit_header((uint32_t)num(argv[3]), on_radix_root);
	} else if (!strcmp(what, "nlink")) {		/* OID N */
		struct pfs_attr a = { 0 };

		NEED(2);
		a.nlink = (uint32_t)num(argv[4]);
		ns_setattr(num(argv[3]), PFS_ATTR_NLINK, &a);
	} else if (!strcmp(what, "parent")) {		/* OID PARENT */
		struct pfs_attr a = { 0 };

		NEED(2);
		a.parent = num(argv[4]);
		ns_setattr(num(argv[3]), PFS_ATTR_PARENT, &a);
	} else if (!strcmp(what, "mode")) {		/* OID MODE (octal) */
		struct pfs_attr a = { 0 };

		NEED(2);
		a.mode = (uint32_t)strtoul(argv[4], NULL, 8);
		ns_setattr(num(argv[3]), PFS_ATTR_MODE, &a);
	} else if (!strcmp(what, "unlink-entry")) {	/* DIR NAME: the 'n' record only */
		struct pfs_store *st;
		struct pfs_txn t;
		uint8_t key[1 + POSFS_NAME_MAX];
		size_t kl;

		NEED(2);
		kl = dent_key(key, argv[4]);
		st = ns_open();
		pfs_txn_init(&t);
		pfs_txn_omap_rm(&t, num(argv[3]), key, kl);
		ns_submit(st, &t);
	} else if (!strcmp(what, "entry")) {		/* DIR NAME INO TYPE SEQ: set an 'n' record */
		struct pfs_store *st;
		struct pfs_txn t;
		uint8_t key[1 + POSFS_NAME_MAX], val[17];
		size_t kl;

		NEED(5);
		kl = dent_key(key, argv[4]);
		memcpy(val, &(uint64_t){ le64_put(num(argv[5])) }, 8);
		val[8] = (uint8_t)num(argv[6]);
		memcpy(val + 9, &(uint64_t){ le64_put(num(argv[7])) }, 8);
		st = ns_open();
		pfs_txn_init(&t);
		pfs_txn_omap_set(&t, num(argv[3]), key, kl, val, sizeof(val));
		ns_submit(st, &t);
	} else if (!strcmp(what, "remove")) {		/* OID: the object, not its entries */
		struct pfs_store *st = ns_open();
		struct pfs_txn t;

		NEED(1);
		pfs_txn_init(&t);
		pfs_txn_remove(&t, num(argv[3]));
		ns_submit(st, &t);
	} else if (!strcmp(what, "entry-type") || !strcmp(what, "unlink-seq") ||
		   !strcmp(what, "orphan")) {		/* DIR NAME [TYPE] */
		struct pfs_store *st;
		struct pfs_txn t;
		uint8_t key[1 + POSFS_NAME_MAX], val[17], skey[9], okey[9];
		uint64_t dir, ino, seq;
		size_t kl;
		ssize_t n;

		NEED(2);
		dir = num(argv[3]);
		kl = dent_key(key, argv[4]);
		st = ns_open();
		n = pfs_store_omap_get(st, dir, key, kl, val, sizeof(val));
		if (n != (ssize_t)sizeof(val))
			die("no such entry", n < 0 ? (int)n : -EUCLEAN);
		memcpy(&ino, val, 8);
		memcpy(&seq, val + 9, 8);
		ino = le64_get(ino);
		seq = le64_get(seq);
		skey[0] = 's';
		okey[0] = 'o';
		for (int i = 0; i < 8; i++) {
			skey[1 + i] = (uint8_t)(seq >> (56 - 8 * i));
			okey[1 + i] = (uint8_t)(ino >> (56 - 8 * i));
		}
		pfs_txn_init(&t);
		if (!strcmp(what, "entry-type")) {
			NEED(3);
			val[8] = (uint8_t)num(argv[5]);
			pfs_txn_omap_set(&t, dir, key, kl, val, sizeof(val));
		} else if (!strcmp(what, "unlink-seq")) {
			pfs_txn_omap_rm(&t, dir, skey, sizeof(skey));
		} else {
			/* unlinked while open, then a crash: on its orphan list */
			struct pfs_attr a = { .nlink = 0, .onode_flags = POSFS_ONODE_ORPHAN };

			pfs_txn_omap_rm(&t, dir, key, kl);
			pfs_txn_omap_rm(&t, dir, skey, sizeof(skey));
			pfs_txn_setattr(&t, ino, &a, PFS_ATTR_NLINK | PFS_ATTR_ONODE_FLAGS);
			pfs_txn_omap_set(&t, POSFS_OID(POSFS_OID_SHARD(ino), POSFS_LOCAL_ORPHANS),
					 okey, sizeof(okey), "", 0);
		}
		ns_submit(st, &t);
	} else if (!strcmp(what, "orphan-record")) {	/* OID: listed, still linked */
		struct pfs_store *st;
		struct pfs_txn t;
		uint8_t okey[9];
		uint64_t ino;

		NEED(1);
		ino = num(argv[3]);
		okey[0] = 'o';
		for (int i = 0; i < 8; i++)
			okey[1 + i] = (uint8_t)(ino >> (56 - 8 * i));
		st = ns_open();
		pfs_txn_init(&t);
		pfs_txn_omap_set(&t, POSFS_OID(POSFS_OID_SHARD(ino), POSFS_LOCAL_ORPHANS), okey,
				 sizeof(okey), "", 0);
		ns_submit(st, &t);
	} else if (!strcmp(what, "random")) {		/* SEED */
		NEED(1);
		random_damage(num(argv[3]));
	} else {
		fprintf(stderr, "pfs-damage: unknown damage '%s'\n", what);
		return 2;
	}
	return 0;
}
