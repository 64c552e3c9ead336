/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The onode radix tree of a shard.
 *
 * Design. With S onodes per leaf and F children per interior block (both
 * fixed by the block size, format.h), number n lives in slot n % S of the
 * leaf reached from the root by the base-F digits of n / S, most
 * significant first. So a lookup is one descent of `height` blocks with no
 * search and no allocation: the digits are computed up front (radix_split,
 * with the divisors as compile-time constants per block size, so they are
 * multiplications), then each level costs one pfs_tx_get and a few header
 * checks. A tree of height h covers numbers 0 .. S * F^(h-1) - 1; numbers
 * are handed out densely by the store, so leaves fill up, and the height
 * stays as small as the largest number needs.
 *
 * Digits. dig[0] is the slot in the leaf, dig[L] (L >= 1) the child index
 * in the node at level L. They are filled for the levels the number needs
 * and zero above, which is what a taller tree's path looks like.
 *
 * Invariants (checked by pfs_radix_check; the operations keep them):
 *   R1. root {0, 0} is the empty tree; otherwise root.blkno is a node at
 *       level root.height - 1 and 1 <= root.height <= max height (the
 *       smallest height covering 2^48 - 1).
 *   R2. Every node is at the level its path says (so a path is finite and
 *       has no cycle), of type PFRX (level >= 1) or PFON (level 0), owned
 *       by the shard, with flags 0.
 *   R3. hdr.nr is the number of non-zero children or used slots, and is
 *       never 0: empty nodes are released at once, up to the root.
 *   R4. The root, if interior, does not have child 0 as its only child
 *       (else the height would be one too many: remove collapses it).
 *   R5. A used slot holds oid POSFS_OID(shard, its position) and decodes;
 *       a free slot is all zeros (oid 0 = free, as format.h says). So
 *       number 0 of shard 0 (oid 0) can never be stored.
 *
 * Trust. Every node read checks magic and owner (pfs_tx_get), level and
 * 1 <= nr <= capacity (node_get). The full count of R3 costs a scan of the
 * block, so the operations check it only where they act on it: before a
 * node is released as empty, before a root is collapsed, before a count
 * would pass the capacity. The fsck walk checks everything.
 *
 * Space. Growing stacks new roots above the old one (as their child 0)
 * until the height covers the number, then allocates the missing nodes of
 * its path. Removing releases the leaf once it is empty, then every
 * ancestor left without a child, and collapses the root while child 0 is
 * its only child. There is no merging or borrowing as in a B+tree: a
 * number's place is fixed by its digits, so a sparse node cannot move its
 * entries; the store's dense numbering is what keeps leaves full, and a
 * node that holds nothing never stays.
 *
 * Errors half way (T2): insert may fail after allocating nodes or stacking
 * new roots; the transaction rolls the blocks back and *rx->root, written
 * only on success, was never touched. -ENOENT and -EEXIST are always found
 * before anything changes.
 */

#include <endian.h>
#include <errno.h>
#include <string.h>

#include "store/radix.h"

/* >= every block size's max height (7 for 4 KiB); sizes the digit arrays. */
#define RADIX_MAX_HEIGHT	8u

struct radix_geo {
	uint32_t bs;
	uint32_t S;		/* onodes per leaf */
	uint32_t F;		/* children per interior node */
	uint32_t maxh;		/* R1 */
	uint32_t shard;
	uint64_t owner;
};

/* ---- index math ---------------------------------------------------------- */

static inline __attribute__((always_inline)) unsigned
split_by(uint64_t n, uint32_t s, uint32_t f, uint32_t *dig)
{
	unsigned h = 1;

	dig[0] = (uint32_t)(n % s);
	n /= s;
	while (n && h < RADIX_MAX_HEIGHT) {
		dig[h++] = (uint32_t)(n % f);
		n /= f;
	}
	return h;
}

#define RADIX_S(bs)	((uint32_t)POSFS_ONODES_PER_LEAF(bs))
#define RADIX_F(bs)	((uint32_t)POSFS_RADIX_FANOUT(bs))

/*
 * Digits of n (n <= POSFS_OID_LOCAL_MASK) into dig[0 .. h-1]; returns h,
 * the smallest height whose tree holds n, or 0 for an unsupported block
 * size. Entries of dig above h-1 are not touched. One case per block size
 * so that every division is by a constant.
 */
static unsigned radix_split(uint32_t bs, uint64_t n, uint32_t *dig)
{
	switch (bs) {
	case 4096:
		return split_by(n, RADIX_S(4096), RADIX_F(4096), dig);
	case 8192:
		return split_by(n, RADIX_S(8192), RADIX_F(8192), dig);
	case 16384:
		return split_by(n, RADIX_S(16384), RADIX_F(16384), dig);
	case 32768:
		return split_by(n, RADIX_S(32768), RADIX_F(32768), dig);
	case 65536:
		return split_by(n, RADIX_S(65536), RADIX_F(65536), dig);
	default:
		return 0;
	}
}

uint32_t pfs_radix_max_height(uint32_t bs)
{
	/* radix_split(bs, POSFS_OID_LOCAL_MASK), worked out once per size
	 * (the unit test recomputes them) */
	switch (bs) {
	case 4096:	return 7;	/* 7 * 504^6 > 2^48 > 7 * 504^5 */
	case 8192:	return 6;
	case 16384:	return 5;
	case 32768:	return 5;
	case 65536:	return 5;	/* 127 * 8184^4 > 2^48 > 127 * 8184^3 */
	default:	return 0;
	}
}

/*
 * Inverse of radix_split for a path of height h. A path through a root
 * child past the last number can overflow 64 bits (32 KiB blocks: S *
 * F^5 > 2^64): then UINT64_MAX, which is past POSFS_OID_LOCAL_MASK too.
 */
static uint64_t radix_join(const struct radix_geo *g, const uint32_t *dig, uint32_t h)
{
	uint64_t n = 0;

	for (uint32_t l = h - 1; l > 0; l--)
		if (__builtin_mul_overflow(n, g->F, &n) || __builtin_add_overflow(n, dig[l], &n))
			return UINT64_MAX;
	if (__builtin_mul_overflow(n, g->S, &n) || __builtin_add_overflow(n, dig[0], &n))
		return UINT64_MAX;
	return n;
}

/*
 * The geometry of a call and a validated copy of its root (R1: blkno and
 * height agree, the height is at most the block size's max height, which
 * also bounds every path walk and the digit arrays).
 */
static int radix_geo(const struct pfs_tx *tx, const struct pfs_radix *rx,
		     struct radix_geo *g, struct pfs_tree_root *root)
{
	g->bs = pfs_tx_block_size(tx);
	g->maxh = pfs_radix_max_height(g->bs);
	if (!g->maxh || rx->shard >= POSFS_MAX_SHARDS)
		return -EINVAL;
	g->S = RADIX_S(g->bs);
	g->F = RADIX_F(g->bs);
	g->shard = rx->shard;
	g->owner = POSFS_OWNER_SHARD(rx->shard);
	*root = *rx->root;
	if (!root->blkno != !root->height || root->height > g->maxh)
		return -EUCLEAN;
	return 0;
}

/* ---- nodes --------------------------------------------------------------- */

static inline struct pfs_dblock_hdr *node_hdr(struct pfs_buf *b)
{
	return (struct pfs_dblock_hdr *)pfs_buf_data(b);
}

static inline uint16_t node_nr(struct pfs_buf *b)
{
	return le16toh(node_hdr(b)->nr);
}

static inline void node_set_nr(struct pfs_buf *b, uint16_t nr)
{
	node_hdr(b)->nr = htole16(nr);
}

static inline uint64_t node_child(struct pfs_buf *b, uint32_t i)
{
	return le64toh(((struct pfs_dradix *)pfs_buf_data(b))->child[i]);
}

static inline void node_set_child(struct pfs_buf *b, uint32_t i, uint64_t blkno)
{
	((struct pfs_dradix *)pfs_buf_data(b))->child[i] = htole64(blkno);
}

static inline struct pfs_donode *node_slot(struct pfs_buf *b, uint32_t i)
{
	return &((struct pfs_donode_leaf *)pfs_buf_data(b))->onode[i];
}

/*
 * Read node blkno expected at level: type and owner (by pfs_tx_get), level
 * and 1 <= nr <= capacity (R2, the cheap half of R3). blkno must not be 0.
 */
static int node_get(struct pfs_tx *tx, const struct radix_geo *g,
		    uint64_t blkno, uint32_t level, struct pfs_buf **bp)
{
	struct pfs_block_expect exp = {
		.magic = level ? POSFS_MAGIC_RADIX : POSFS_MAGIC_ONODES,
		.owner = g->owner,
		.check_owner = true,
	};
	struct pfs_dblock_hdr *h;
	uint16_t nr;
	int ret;

	ret = pfs_tx_get(tx, blkno, &exp, bp);
	if (ret)
		return ret;
	h = node_hdr(*bp);
	nr = le16toh(h->nr);
	if (le16toh(h->level) != level || !nr || nr > (level ? g->F : g->S)) {
		pfs_buf_put(*bp);
		*bp = NULL;
		return -EUCLEAN;
	}
	return 0;
}

/* BV1/BV2 (blockops.h): a node's type matches its level (R2), which is
 * below the largest height, and 1 <= nr <= capacity (R3), flags 0. */
int pfs_radix_node_verify(uint32_t bs, const void *data, const struct pfs_blockhdr *h)
{
	uint32_t maxh = pfs_radix_max_height(bs);

	(void)data;
	if (!maxh || h->level >= maxh || h->flags ||
	    h->magic != (h->level ? POSFS_MAGIC_RADIX : POSFS_MAGIC_ONODES))
		return -EUCLEAN;
	if (!h->nr || h->nr > (h->level ? RADIX_F(bs) : RADIX_S(bs)))
		return -EUCLEAN;
	return 0;
}

/* A new, empty node at level (dirty, nr 0). */
static int node_new(struct pfs_tx *tx, const struct radix_geo *g,
		    uint32_t level, struct pfs_buf **bp)
{
	return pfs_tx_new(tx, g->shard, level ? POSFS_MAGIC_RADIX : POSFS_MAGIC_ONODES,
			  g->owner, (uint16_t)level, bp);
}

/* Are entries from..capacity-1 of a node all unused? */
static bool node_empty_from(const struct radix_geo *g, struct pfs_buf *b,
			    uint32_t level, uint32_t from)
{
	if (level) {
		for (uint32_t i = from; i < g->F; i++)
			if (node_child(b, i))
				return false;
	} else {
		for (uint32_t i = from; i < g->S; i++)
			if (node_slot(b, i)->oid)
				return false;
	}
	return true;
}

static bool bytes_zero(const void *p, size_t len)
{
	const uint8_t *c = p;

	for (size_t i = 0; i < len; i++)
		if (c[i])
			return false;
	return true;
}

/*
 * Encode o for this tree into d: its oid must be of the tree's shard and
 * not 0, and the slot must decode again (so that nothing is stored that
 * a later lookup would call corrupt). -EINVAL otherwise.
 */
static int onode_encode(const struct radix_geo *g, const struct pfs_onode *o,
			struct pfs_donode *d, uint64_t *local)
{
	struct pfs_onode chk;

	if (!o->oid || o->oid > POSFS_OID_MAX || POSFS_OID_SHARD(o->oid) != g->shard)
		return -EINVAL;
	pfs_onode_to_disk(o, d);
	if (pfs_onode_from_disk(d, &chk))
		return -EINVAL;
	*local = POSFS_OID_LOCAL(o->oid);
	return 0;
}

/* ---- lookup -------------------------------------------------------------- */

/*
 * The used slot of number local: one descent, the leaf returned referenced.
 * -ENOENT when absent, -EUCLEAN when the slot holds another oid (R5).
 */
static int radix_find(struct pfs_tx *tx, const struct radix_geo *g,
		      const struct pfs_tree_root *root, uint64_t local,
		      struct pfs_buf **leafp, struct pfs_donode **slotp)
{
	uint32_t dig[RADIX_MAX_HEIGHT] = { 0 };
	struct pfs_buf *b;
	struct pfs_donode *d;
	uint64_t blk = root->blkno;
	unsigned need;
	int ret;

	*leafp = NULL;
	if (local > POSFS_OID_LOCAL_MASK)
		return -EINVAL;
	need = radix_split(g->bs, local, dig);
	if (!blk || need > root->height)
		return -ENOENT;
	for (uint32_t l = root->height - 1; l > 0; l--) {
		ret = node_get(tx, g, blk, l, &b);
		if (ret)
			return ret;
		blk = node_child(b, dig[l]);
		pfs_buf_put(b);
		if (!blk)
			return -ENOENT;
	}
	ret = node_get(tx, g, blk, 0, &b);
	if (ret)
		return ret;
	d = node_slot(b, dig[0]);
	if (!d->oid) {
		pfs_buf_put(b);
		return -ENOENT;
	}
	if (le64toh(d->oid) != POSFS_OID(g->shard, local)) {
		pfs_buf_put(b);
		return -EUCLEAN;
	}
	*leafp = b;
	*slotp = d;
	return 0;
}

int pfs_radix_lookup(struct pfs_tx *tx, const struct pfs_radix *rx,
		     uint64_t local, struct pfs_onode *o)
{
	struct radix_geo g;
	struct pfs_tree_root root;
	struct pfs_buf *leaf = NULL;
	struct pfs_donode *d;
	int ret;

	ret = radix_geo(tx, rx, &g, &root);
	if (ret)
		return ret;
	ret = radix_find(tx, &g, &root, local, &leaf, &d);
	if (ret)
		return ret;
	if (pfs_onode_from_disk(d, o))
		ret = -EUCLEAN;
	pfs_buf_put(leaf);
	return ret;
}

int pfs_radix_slot(struct pfs_tx *tx, const struct pfs_radix *rx,
		   uint64_t local, bool dirty, struct pfs_buf **leaf,
		   struct pfs_donode **slot)
{
	struct radix_geo g;
	struct pfs_tree_root root;
	int ret;

	*leaf = NULL;
	*slot = NULL;
	ret = radix_geo(tx, rx, &g, &root);
	if (ret)
		return ret;
	ret = radix_find(tx, &g, &root, local, leaf, slot);
	if (ret)
		return ret;
	if (dirty) {
		ret = pfs_tx_dirty(tx, *leaf);
		if (ret) {
			pfs_buf_put(*leaf);
			*leaf = NULL;
			*slot = NULL;
		}
	}
	return ret;
}

int pfs_radix_update(struct pfs_tx *tx, const struct pfs_radix *rx,
		     const struct pfs_onode *o)
{
	struct radix_geo g;
	struct pfs_tree_root root;
	struct pfs_donode d;
	struct pfs_buf *leaf = NULL;
	struct pfs_donode *slot;
	uint64_t local;
	int ret;

	ret = radix_geo(tx, rx, &g, &root);
	if (ret)
		return ret;
	ret = onode_encode(&g, o, &d, &local);
	if (ret)
		return ret;
	ret = radix_find(tx, &g, &root, local, &leaf, &slot);
	if (ret)
		return ret;
	ret = pfs_tx_dirty(tx, leaf);
	if (!ret)
		memcpy(slot, &d, sizeof(d));
	pfs_buf_put(leaf);
	return ret;
}

/* ---- insert -------------------------------------------------------------- */

int pfs_radix_insert(struct pfs_tx *tx, const struct pfs_radix *rx,
		     const struct pfs_onode *o)
{
	uint32_t dig[RADIX_MAX_HEIGHT] = { 0 };
	struct radix_geo g;
	struct pfs_tree_root root;
	struct pfs_donode d;
	struct pfs_donode *slot;
	struct pfs_buf *b = NULL, *c = NULL;
	uint64_t local;
	unsigned need;
	uint16_t nr;
	int ret;

	ret = radix_geo(tx, rx, &g, &root);
	if (ret)
		return ret;
	ret = onode_encode(&g, o, &d, &local);
	if (ret)
		return ret;
	need = radix_split(g.bs, local, dig);

	if (!root.blkno) {
		ret = node_new(tx, &g, need - 1, &b);
		if (ret)
			goto out;
		root.blkno = pfs_buf_blkno(b);
		root.height = need;
	} else {
		/* the old root is checked before it goes under new ones */
		ret = node_get(tx, &g, root.blkno, root.height - 1, &b);
		if (ret)
			goto out;
		while (root.height < need) {
			/* grow: a new root with the old one as child 0 (R4
			 * holds: n's digit at the new top level is not 0) */
			ret = node_new(tx, &g, root.height, &c);
			if (ret)
				goto out;
			node_set_child(c, 0, root.blkno);
			node_set_nr(c, 1);
			pfs_buf_put(b);
			b = c;
			c = NULL;
			root.blkno = pfs_buf_blkno(b);
			root.height++;
		}
	}

	for (uint32_t l = root.height - 1; l > 0; l--) {
		uint64_t blk = node_child(b, dig[l]);

		if (blk) {
			ret = node_get(tx, &g, blk, l - 1, &c);
			if (ret)
				goto out;
		} else {
			nr = node_nr(b);
			if (nr >= g.F) {
				ret = -EUCLEAN;	/* R3: a zero child, yet full */
				goto out;
			}
			ret = node_new(tx, &g, l - 1, &c);
			if (ret)
				goto out;
			ret = pfs_tx_dirty(tx, b);
			if (ret)
				goto out;
			node_set_child(b, dig[l], pfs_buf_blkno(c));
			node_set_nr(b, (uint16_t)(nr + 1));
		}
		pfs_buf_put(b);
		b = c;
		c = NULL;
	}

	slot = node_slot(b, dig[0]);
	if (slot->oid) {
		ret = le64toh(slot->oid) == o->oid ? -EEXIST : -EUCLEAN;
		goto out;
	}
	nr = node_nr(b);
	if (nr >= g.S || !bytes_zero(slot, sizeof(*slot))) {
		ret = -EUCLEAN;	/* R3, R5 */
		goto out;
	}
	ret = pfs_tx_dirty(tx, b);
	if (ret)
		goto out;
	memcpy(slot, &d, sizeof(d));
	node_set_nr(b, (uint16_t)(nr + 1));
	*rx->root = root;
out:
	pfs_buf_put(c);
	pfs_buf_put(b);
	return ret;
}

/* ---- remove -------------------------------------------------------------- */

int pfs_radix_remove(struct pfs_tx *tx, const struct pfs_radix *rx,
		     uint64_t local)
{
	struct pfs_buf *path[RADIX_MAX_HEIGHT] = { NULL };
	uint32_t dig[RADIX_MAX_HEIGHT] = { 0 };
	struct pfs_buf *top = NULL, *b;
	struct radix_geo g;
	struct pfs_tree_root root;
	struct pfs_donode *slot;
	uint64_t blk;
	uint32_t l, h;
	int ret;

	ret = radix_geo(tx, rx, &g, &root);
	if (ret)
		return ret;
	if (local > POSFS_OID_LOCAL_MASK)
		return -EINVAL;
	h = root.height;
	if (!root.blkno || radix_split(g.bs, local, dig) > h)
		return -ENOENT;

	/* descend, keeping the path: emptied nodes are released bottom up */
	blk = root.blkno;
	for (l = h - 1;; l--) {
		ret = node_get(tx, &g, blk, l, &path[l]);
		if (ret)
			goto out;
		if (!l)
			break;
		blk = node_child(path[l], dig[l]);
		if (!blk) {
			ret = -ENOENT;
			goto out;
		}
	}
	slot = node_slot(path[0], dig[0]);
	if (!slot->oid) {
		ret = -ENOENT;
		goto out;
	}
	if (le64toh(slot->oid) != POSFS_OID(g.shard, local)) {
		ret = -EUCLEAN;
		goto out;
	}
	ret = pfs_tx_dirty(tx, path[0]);
	if (ret)
		goto out;
	memset(slot, 0, sizeof(*slot));
	node_set_nr(path[0], (uint16_t)(node_nr(path[0]) - 1));	/* nr >= 1 */

	/* R3: release empty nodes, up to the root */
	for (l = 0; !node_nr(path[l]); l++) {
		if (!node_empty_from(&g, path[l], l, 0)) {
			ret = -EUCLEAN;	/* nr said empty, it is not */
			goto out;
		}
		b = path[l];
		path[l] = NULL;
		ret = pfs_tx_release(tx, b);
		if (ret)
			goto out;
		if (l == h - 1) {
			root.blkno = 0;
			root.height = 0;
			goto done;
		}
		ret = pfs_tx_dirty(tx, path[l + 1]);
		if (ret)
			goto out;
		node_set_child(path[l + 1], dig[l + 1], 0);
		node_set_nr(path[l + 1], (uint16_t)(node_nr(path[l + 1]) - 1));
	}

	/* R4: collapse a root whose only child is child 0 */
	top = path[h - 1];
	path[h - 1] = NULL;
	while (root.height > 1 && node_nr(top) == 1 && (blk = node_child(top, 0))) {
		if (!node_empty_from(&g, top, root.height - 1, 1)) {
			ret = -EUCLEAN;	/* nr said one child, there are more */
			goto out;
		}
		b = top;
		top = NULL;
		ret = pfs_tx_release(tx, b);
		if (ret)
			goto out;
		root.blkno = blk;
		root.height--;
		ret = node_get(tx, &g, blk, root.height - 1, &top);
		if (ret)
			goto out;
	}
done:
	*rx->root = root;
out:
	pfs_buf_put(top);
	for (l = 0; l < RADIX_MAX_HEIGHT; l++)
		pfs_buf_put(path[l]);
	return ret;
}

/* ---- iteration ----------------------------------------------------------- */

int pfs_radix_next(struct pfs_tx *tx, const struct pfs_radix *rx,
		   uint64_t *local, struct pfs_onode *o)
{
	struct pfs_buf *path[RADIX_MAX_HEIGHT] = { NULL };
	uint32_t dig[RADIX_MAX_HEIGHT] = { 0 };
	struct radix_geo g;
	struct pfs_tree_root root;
	uint64_t n = *local;
	uint32_t l, h;
	int ret;

	ret = radix_geo(tx, rx, &g, &root);
	if (ret)
		return ret;
	h = root.height;
	if (n > POSFS_OID_LOCAL_MASK || !root.blkno || radix_split(g.bs, n, dig) > h)
		return -ENOENT;

	/*
	 * Depth first from n's path: in each node, the first used entry at
	 * or after the path's digit; a node with none sends the walk back to
	 * its parent, one entry further, with every lower digit reset to 0.
	 * Each level's node stays referenced while the walk is below it.
	 */
	l = h - 1;
	ret = node_get(tx, &g, root.blkno, l, &path[l]);
	if (ret)
		goto out;
	for (;;) {
		uint32_t end = l ? g.F : g.S, i;

		for (i = dig[l]; i < end; i++)
			if (l ? node_child(path[l], i) != 0 : node_slot(path[l], i)->oid != 0)
				break;
		if (i < end) {
			if (i != dig[l]) {
				dig[l] = i;
				memset(dig, 0, l * sizeof(dig[0]));
			}
			if (!l)
				break;
			ret = node_get(tx, &g, node_child(path[l], i), l - 1, &path[l - 1]);
			if (ret)
				goto out;
			l--;
			continue;
		}
		pfs_buf_put(path[l]);
		path[l] = NULL;
		if (l == h - 1) {
			ret = -ENOENT;
			goto out;
		}
		l++;
		dig[l]++;
		memset(dig, 0, l * sizeof(dig[0]));
	}

	n = radix_join(&g, dig, h);
	if (pfs_onode_from_disk(node_slot(path[0], dig[0]), o) ||
	    n > POSFS_OID_LOCAL_MASK || o->oid != POSFS_OID(g.shard, n)) {
		ret = -EUCLEAN;
		goto out;
	}
	*local = n;
out:
	for (l = 0; l < RADIX_MAX_HEIGHT; l++)
		pfs_buf_put(path[l]);
	return ret;
}

/* ---- fsck ---------------------------------------------------------------- */

struct check_ctx {
	struct pfs_tx *tx;
	const struct radix_geo *g;
	const struct pfs_radix_check_ops *ops;
	struct pfs_radix_stats *st;
	uint64_t cover[RADIX_MAX_HEIGHT];	/* numbers under a node at level l */
	bool repaired;				/* salvage changed the tree */
};

/* ---- salvage: the same walk, reporting and repairing ---------------------- */

static int salvage_bad(struct check_ctx *c, enum pfs_radix_bad what, uint64_t blkno,
		       uint32_t slot, int err)
{
	int r = c->ops->bad(c->ops->arg, what, blkno, slot, err);

	return r < 0 ? r : r == PFS_RADIX_CUT;
}

/* One node: 0, PFS_RADIX_CUT (the caller cuts it), or < 0 to stop. */
static int salvage_node(struct check_ctx *c, uint64_t blkno, uint32_t level, uint64_t base)
{
	const struct radix_geo *g = c->g;
	struct pfs_dblock_hdr *h;
	struct pfs_buf *b = NULL;
	struct pfs_onode o;
	uint32_t count = 0, cuts = 0;
	bool dirty = false, bad_hdr;
	int ret;

	if (c->ops->node) {
		ret = c->ops->node(c->ops->arg, blkno, (uint16_t)level);
		if (ret)
			return ret;
	}
	{
		/* as node_get, but a count out of range is the count's problem */
		struct pfs_block_expect exp = {
			.magic = level ? POSFS_MAGIC_RADIX : POSFS_MAGIC_ONODES,
			.owner = g->owner,
			.check_owner = true,
		};

		ret = pfs_tx_get(c->tx, blkno, &exp, &b);
		if (!ret && le16toh(node_hdr(b)->level) != level) {
			pfs_buf_put(b);
			b = NULL;
			ret = -EUCLEAN;
		}
	}
	if (ret == -ENOMEM || ret == -EIO)
		return ret;
	if (ret)
		return salvage_bad(c, PFS_RADIX_BAD_NODE, blkno, 0, ret);
	h = node_hdr(b);
	if (!level) {
		size_t used = sizeof(struct pfs_dblock_hdr) + (size_t)g->S * POSFS_ONODE_SIZE;

		c->st->leaves++;
		for (uint32_t i = 0; i < g->S; i++) {
			uint64_t n = base + i;
			bool bad = pfs_onode_from_disk(node_slot(b, i), &o) != 0;

			if (!bad && !o.oid)
				continue;
			if (!bad && (n > POSFS_OID_LOCAL_MASK || o.oid != POSFS_OID(g->shard, n)))
				bad = true;
			if (bad) {
				ret = salvage_bad(c, PFS_RADIX_BAD_ONODE, blkno, i, -EUCLEAN);
				if (ret < 0)
					goto out;
				if (ret) {
					if (!dirty && (ret = pfs_tx_dirty(c->tx, b)))
						goto out;
					dirty = true;
					memset(node_slot(b, i), 0, POSFS_ONODE_SIZE);
					cuts++;
				} else {
					count++;	/* left as it is */
				}
				continue;
			}
			count++;
			c->st->onodes++;
			if (c->ops->onode) {
				ret = c->ops->onode(c->ops->arg, n, &o);
				if (ret)
					goto out;
			}
		}
		bad_hdr = !bytes_zero(pfs_buf_data(b) + used, g->bs - used);
	} else {
		c->st->interior++;
		for (uint32_t i = 0; i < g->F; i++) {
			uint64_t child = node_child(b, i);
			uint64_t cbase = base + i * c->cover[level - 1];

			if (!child)
				continue;
			ret = cbase > POSFS_OID_LOCAL_MASK ?
			      salvage_bad(c, PFS_RADIX_BAD_NODE, child, 0, -EUCLEAN) :
			      salvage_node(c, child, level - 1, cbase);
			if (ret < 0)
				goto out;
			if (ret == PFS_RADIX_CUT) {
				if (!dirty && (ret = pfs_tx_dirty(c->tx, b)))
					goto out;
				dirty = true;
				node_set_child(b, i, 0);
				cuts++;
				continue;
			}
			count++;
		}
		bad_hdr = false;
	}
	/* count: what the node holds now, bad parts left included; the count
	 * was wrong before any cut of ours, or flags, or bytes */
	bad_hdr = bad_hdr || h->flags || count + cuts != node_nr(b);
	ret = 0;
	if (bad_hdr) {
		ret = salvage_bad(c, PFS_RADIX_BAD_COUNT, blkno, 0, -EUCLEAN);
		if (ret < 0)
			goto out;
	}
	if (ret || cuts) {
		if (!dirty && (ret = pfs_tx_dirty(c->tx, b)))
			goto out;
		dirty = true;
		c->repaired = true;
		h->flags = 0;
		node_set_nr(b, (uint16_t)count);
		if (!level) {
			size_t used = sizeof(struct pfs_dblock_hdr) + (size_t)g->S * POSFS_ONODE_SIZE;

			memset(pfs_buf_data(b) + used, 0, g->bs - used);
		}
	}
	/* a node left empty by repairs is cut in turn (its block is then in
	 * no tree: the space pass finds it free) */
	ret = dirty && !count ? PFS_RADIX_CUT : 0;
	if (ret && c->ops->cut)
		c->ops->cut(c->ops->arg, blkno);
out:
	pfs_buf_put(b);
	return ret;
}

int pfs_radix_salvage(struct pfs_tx *tx, const struct pfs_radix *rx,
		      const struct pfs_radix_check_ops *ops,
		      struct pfs_radix_stats *stats)
{
	struct pfs_radix_stats st = { 0 };
	struct check_ctx c = { .tx = tx, .ops = ops, .st = &st };
	struct radix_geo g;
	struct pfs_tree_root root;
	int ret;

	if (!ops || !ops->bad)
		return -EINVAL;
	ret = radix_geo(tx, rx, &g, &root);
	if (ret == -EUCLEAN) {
		/* a root whose blkno and height disagree: the tree is lost */
		ret = salvage_bad(&c, PFS_RADIX_BAD_NODE, rx->root->blkno, 0, ret);
		if (ret == PFS_RADIX_CUT) {
			*rx->root = (struct pfs_tree_root){ 0, 0 };
			ret = 0;
		}
		if (stats)
			*stats = st;
		return ret;
	}
	if (ret)
		return ret;
	c.g = &g;
	c.cover[0] = g.S;
	for (uint32_t l = 1; l < g.maxh; l++)
		c.cover[l] = c.cover[l - 1] * g.F;
	st.height = root.height;
	if (root.blkno) {
		ret = salvage_node(&c, root.blkno, root.height - 1, 0);
		if (ret == PFS_RADIX_CUT) {
			*rx->root = (struct pfs_tree_root){ 0, 0 };
			ret = 0;
		}
	}
	/* R4 after cuts: an interior root left with child 0 alone steps down
	 * (its block is forgotten, as the cut ones) */
	while (!ret && c.repaired && rx->root->height > 1) {
		struct pfs_buf *b;

		ret = node_get(tx, &g, rx->root->blkno, rx->root->height - 1, &b);
		if (ret)
			break;
		if (node_nr(b) == 1 && node_child(b, 0)) {
			if (ops->cut)
				ops->cut(ops->arg, rx->root->blkno);
			rx->root->blkno = node_child(b, 0);
			rx->root->height--;
			pfs_buf_put(b);
			continue;
		}
		pfs_buf_put(b);
		break;
	}
	if (stats)
		*stats = st;
	return ret;
}

/* One node and its subtree; base is the first number under it. The level
 * falls by one per call, so the recursion is at most max height deep. */
static int check_node(struct check_ctx *c, uint64_t blkno, uint32_t level,
		      uint64_t base, bool is_root)
{
	const struct radix_geo *g = c->g;
	struct pfs_buf *b = NULL;
	struct pfs_onode o;
	uint32_t count = 0;
	int ret;

	ret = node_get(c->tx, g, blkno, level, &b);
	if (ret)
		return ret;
	if (node_hdr(b)->flags) {
		ret = -EUCLEAN;
		goto out;
	}
	if (c->ops && c->ops->node) {
		ret = c->ops->node(c->ops->arg, blkno, (uint16_t)level);
		if (ret)
			goto out;
	}
	if (!level) {
		size_t used = sizeof(struct pfs_dblock_hdr) + (size_t)g->S * POSFS_ONODE_SIZE;

		c->st->leaves++;
		if (!bytes_zero(pfs_buf_data(b) + used, g->bs - used)) {
			ret = -EUCLEAN;
			goto out;
		}
		for (uint32_t i = 0; i < g->S; i++) {
			uint64_t n = base + i;

			if (pfs_onode_from_disk(node_slot(b, i), &o)) {
				ret = -EUCLEAN;
				goto out;
			}
			if (!o.oid)
				continue;
			if (n > POSFS_OID_LOCAL_MASK || o.oid != POSFS_OID(g->shard, n)) {
				ret = -EUCLEAN;
				goto out;
			}
			count++;
			c->st->onodes++;
			if (c->ops && c->ops->onode) {
				ret = c->ops->onode(c->ops->arg, n, &o);
				if (ret)
					goto out;
			}
		}
		if (count != node_nr(b))
			ret = -EUCLEAN;
		goto out;
	}

	c->st->interior++;
	for (uint32_t i = 0; i < g->F; i++)
		count += node_child(b, i) != 0;
	if (count != node_nr(b) || (is_root && count == 1 && node_child(b, 0))) {
		ret = -EUCLEAN;	/* R3, R4 */
		goto out;
	}
	for (uint32_t i = 0; i < g->F; i++) {
		uint64_t child = node_child(b, i);
		uint64_t cbase = base + i * c->cover[level - 1];

		if (!child)
			continue;
		if (cbase > POSFS_OID_LOCAL_MASK) {
			ret = -EUCLEAN;	/* a subtree past the last number */
			goto out;
		}
		ret = check_node(c, child, level - 1, cbase, false);
		if (ret)
			goto out;
	}
out:
	pfs_buf_put(b);
	return ret;
}

int pfs_radix_check(struct pfs_tx *tx, const struct pfs_radix *rx,
		    const struct pfs_radix_check_ops *ops,
		    struct pfs_radix_stats *stats)
{
	struct pfs_radix_stats st = { 0 };
	struct check_ctx c = { .tx = tx, .ops = ops, .st = &st };
	struct radix_geo g;
	struct pfs_tree_root root;
	int ret;

	ret = radix_geo(tx, rx, &g, &root);
	if (ret)
		return ret;
	c.g = &g;
	c.cover[0] = g.S;
	for (uint32_t l = 1; l < g.maxh; l++)
		c.cover[l] = c.cover[l - 1] * g.F;	/* < 2^64: at most S * F^(maxh-1) */
	st.height = root.height;
	if (root.blkno)
		ret = check_node(&c, root.blkno, root.height - 1, 0, true);
	if (stats)
		*stats = st;
	return ret;
}
