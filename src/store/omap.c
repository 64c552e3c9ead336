/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * omap: an object's ordered key/value B+tree (see omap.h for the API).
 *
 * Nodes. A node is a slotted block (struct pfs_domap_node): the 64-byte
 * block header, free_start, free_end, free_bytes, then hdr.nr le16 cell
 * offsets sorted by key; the cells are packed from the block's end down.
 *   free_start = 72 + 2 * nr            (end of the slot array)
 *   free_end   = lowest byte of the cell area; for an empty 64 KiB node
 *                that is 65536, stored as 0 (the field is 16 bits)
 *   free_bytes = (bs - free_start) - sum of cell sizes
 *              = (free_end - free_start) + holes left by removed cells
 * "used" is cap - free_bytes with cap = bs - 72: the slots and the cells.
 * A leaf cell is struct pfs_domap_cell, the key, then the value inline or,
 * with POSFS_OMAP_VAL_EXTERNAL, a struct pfs_domap_vref. An interior cell
 * is struct pfs_domap_cell (value_len 8, flags 0), the key, then the le64
 * child block.
 *
 * Keys of interior cells. Cell i of an interior node is the lower bound of
 * its child: every key below child i is >= key i and < key i+1 (or the
 * node's own upper bound). The first cell's key is the parent's separator
 * for the node itself, and empty along the leftmost path (the empty key
 * sorts before every key, so it is minus infinity). Because of that rule a
 * cell moves between interior siblings unchanged (merging and refilling
 * never pull keys down or push them through the parent): the separator
 * for a right sibling is always a copy of its first key. Separators above
 * leaves are suffix-truncated: the shortest prefix of the right leaf's
 * first key that is greater than the left leaf's last one.
 *
 * Values. Inline when the cell stays at most a quarter of the node
 * (8 + key + value <= cap / 4) or the value is at most 16 bytes (the size
 * of a vref); else out of line in raw blocks (pfs_tx_new_raw): a value of
 * one block is in the block vref.pblk names; a longer one in nblocks data
 * blocks listed by a raw index block at vref.pblk (nblocks le64 block
 * numbers, then a le32 crc32c, see index_crc), because tx.h cannot
 * allocate contiguous runs. vref.crc is pfs_crc32c(0, value, len),
 * checked on every read (-EBADMSG).
 *
 * Sizes. With M the largest cell plus its slot (max(cap/4, 8+1024+16)+2)
 * and U = cap/4 the fill threshold: M <= 1.5 U and 2 M <= cap for every
 * block size 4 .. 64 KiB. Hence (I1) any node holds two maximal cells,
 * and (I2) any sequence of cells of total T with cap < T <= cap + M, or
 * with T > cap made of an underfull node and a sibling, splits into two
 * nodes of at least 1.25 U each (the balanced split point is at most M/2
 * off the middle). An interior cell is at most 1042 bytes < 1.25 U, so
 * both halves of an interior split hold 2 cells or more.
 *
 * Invariants (checked by pfs_omap_check, restored by every operation):
 *   M1 keys strictly increase within a node and across the tree;
 *   M2 keys below interior cell i lie in [key i, key i+1), and key 0 is
 *      the node's lower bound (empty on the leftmost path);
 *   M3 all leaves at level 0, the root at height - 1;
 *   M4 every node but the root is used >= U, and holds >= 1 cell (leaf)
 *      or >= 2 cells (interior); an interior root has >= 2 cells; an
 *      empty tree is {0, 0}.
 * Deletes: a node breaking M4 is merged into its sibling when both fit in
 * one node, else the pair is redistributed (I2 keeps both above U); the
 * parent loses a cell or gets a new separator, which can itself split or
 * underflow the parent, and so on upward. An interior root with one child
 * is collapsed. Inserts: a cell goes in by moving slot offsets; when the
 * contiguous gap is short but free_bytes is not, the node is compacted;
 * when the node is full it is split (I2) and the separator goes up. At
 * the tree's right (left) edge, where names created in order arrive, the
 * split leaves the old node as full as it can and the new one just over
 * U (74% fill instead of 50% for ordered inserts).
 *
 * Never trusting the disk: every node is read with pfs_tx_get (crc, magic,
 * owner, blkno), then its header is checked against the level the path
 * expects (node_check_hdr) and every cell is bounds-checked when it is
 * touched (cell_get), so a corrupt node costs O(1) checks per access and
 * yields -EUCLEAN, never a wild access. Descents are bounded by the root's
 * height (<= 32) and each level must be one less than its parent's.
 * The full check of every cell (order, overlap, accounting) is
 * pfs_omap_check's.
 *
 * Memory: the common path (lookup, insert with room, remove without
 * underflow) allocates nothing. Splits, merges and compaction use one
 * scratch area per operation, allocated on first need.
 */
#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "posfs/crc32c.h"
#include "posfs/format.h"
#include "format/endian.h"
#include "store/omap.h"

#define NODE_HDR	((uint32_t)sizeof(struct pfs_domap_node))	/* 72 */
#define CELL_HDR	((uint32_t)sizeof(struct pfs_domap_cell))	/* 8 */
#define VREF_SIZE	((uint32_t)sizeof(struct pfs_domap_vref))	/* 16 */
#define CHILD_SIZE	8u
#define SLOT_SIZE	2u
#define KEY_MAX		POSFS_OMAP_KEY_MAX
#define VALUE_MAX	POSFS_OMAP_VALUE_MAX
#define VALUE_BLOCKS_MAX (POSFS_OMAP_VALUE_MAX / POSFS_MIN_BLOCK_SIZE)

#define OFF_LEVEL	offsetof(struct pfs_dblock_hdr, level)
#define OFF_NR		offsetof(struct pfs_dblock_hdr, nr)
#define OFF_FLAGS	offsetof(struct pfs_dblock_hdr, flags)
#define OFF_FSTART	offsetof(struct pfs_domap_node, free_start)
#define OFF_FEND	offsetof(struct pfs_domap_node, free_end)
#define OFF_FBYTES	offsetof(struct pfs_domap_node, free_bytes)

static int key_cmp(const void *a, size_t al, const void *b, size_t bl)
{
	size_t n = al < bl ? al : bl;
	int r = n ? memcmp(a, b, n) : 0;

	if (r)
		return r;
	return (al > bl) - (al < bl);
}

/* ---- per-operation context --------------------------------------------- */

/* A cell image somewhere in memory: what node_build copies. */
struct cref {
	const uint8_t *p;
	uint32_t size;
};

struct omctx {
	struct pfs_tx *tx;
	struct pfs_tree_root *root;
	uint64_t *count;
	uint64_t owner;
	uint32_t shard;
	uint32_t bs;
	uint32_t cap;		/* bs - 72: bytes for slots and cells */
	uint32_t min_used;	/* U = cap / 4 */
	uint32_t inline_max;	/* largest inline cell (header, key, value) */
	/*
	 * Scratch, allocated on first need (splits, merges, compaction):
	 * [0, bs) and [bs, 2 bs) copies of nodes, [2 bs, 3 bs) a new cell's
	 * image, then two separator buffers of KEY_MAX bytes.
	 */
	uint8_t *scratch;
	struct cref *list;
	uint32_t list_cap;
};

static int ctx_init(struct omctx *c, struct pfs_tx *tx, const struct pfs_omap *om)
{
	uint32_t bs = pfs_tx_block_size(tx);

	if (bs < POSFS_MIN_BLOCK_SIZE || bs > POSFS_MAX_BLOCK_SIZE || (bs & (bs - 1)))
		return -EINVAL;
	c->tx = tx;
	c->root = om->root;
	c->count = om->count;
	c->owner = om->owner;
	c->shard = om->shard;
	c->bs = bs;
	c->cap = bs - NODE_HDR;
	c->min_used = c->cap / 4;
	c->inline_max = c->cap / 4;
	c->scratch = NULL;
	c->list = NULL;
	/* smallest leaf cell: header + 1 key byte, plus its slot */
	c->list_cap = 2 * (c->cap / (CELL_HDR + 1 + SLOT_SIZE) + 1) + 2;
	return 0;
}

static void ctx_fini(struct omctx *c)
{
	free(c->scratch);
	free(c->list);
	c->scratch = NULL;
	c->list = NULL;
}

static int scratch_get(struct omctx *c)
{
	if (c->scratch)
		return 0;
	c->scratch = malloc(3 * (size_t)c->bs + 2 * KEY_MAX);
	c->list = malloc(c->list_cap * sizeof(*c->list));
	if (!c->scratch || !c->list) {
		ctx_fini(c);
		return -ENOMEM;
	}
	return 0;
}

static uint8_t *scratch_copy(struct omctx *c, int i) { return c->scratch + (size_t)i * c->bs; }
static uint8_t *scratch_img(struct omctx *c) { return c->scratch + 2 * (size_t)c->bs; }
static uint8_t *scratch_sep(struct omctx *c, int i)
{
	return c->scratch + 3 * (size_t)c->bs + (size_t)i * KEY_MAX;
}

/* ---- node header -------------------------------------------------------- */

static unsigned node_nr(const uint8_t *d) { return ld_le16(d + OFF_NR); }
static unsigned node_level(const uint8_t *d) { return ld_le16(d + OFF_LEVEL); }
static uint32_t node_fstart(const uint8_t *d) { return ld_le16(d + OFF_FSTART); }
static uint32_t node_fbytes(const uint8_t *d) { return ld_le32(d + OFF_FBYTES); }

static uint32_t fend_of(uint32_t bs, const uint8_t *d)
{
	uint32_t v = ld_le16(d + OFF_FEND);

	return (v == 0 && bs == 65536) ? 65536 : v;
}

static uint32_t node_fend(const struct omctx *c, const uint8_t *d)
{
	return fend_of(c->bs, d);
}

static void node_set(uint8_t *d, unsigned nr, uint32_t fend, uint32_t fbytes)
{
	st_le16(d + OFF_NR, (uint16_t)nr);
	st_le16(d + OFF_FSTART, (uint16_t)(NODE_HDR + SLOT_SIZE * nr));
	st_le16(d + OFF_FEND, (uint16_t)fend);	/* 65536 is stored as 0 */
	st_le32(d + OFF_FBYTES, fbytes);
}

static uint32_t node_used(const struct omctx *c, const uint8_t *d)
{
	return c->cap - node_fbytes(d);
}

static bool node_underfull(const struct omctx *c, const uint8_t *d, unsigned level)
{
	return node_used(c, d) < c->min_used || node_nr(d) < (level ? 2u : 1u);
}

static void node_init(const struct omctx *c, uint8_t *d)
{
	node_set(d, 0, c->bs, c->cap);
}

/*
 * The O(1) checks of a node's header, made at every read: the level the
 * path expects, the slot array and the free area inside the block, and
 * free_bytes consistent with them.
 */
static int hdr_check(uint32_t bs, const uint8_t *d, unsigned level)
{
	unsigned nr = node_nr(d);
	uint32_t fs = node_fstart(d), fe = fend_of(bs, d), fb = node_fbytes(d);

	if (node_level(d) != level || ld_le32(d + OFF_FLAGS) != 0)
		return -EUCLEAN;
	if (fs != NODE_HDR + SLOT_SIZE * nr || fe < fs || fe > bs)
		return -EUCLEAN;
	if (fb < fe - fs || fb > bs - fs)
		return -EUCLEAN;
	/* the cells must at least have their smallest size */
	if ((uint64_t)(bs - fs - fb) < (uint64_t)nr * (CELL_HDR + (level ? CHILD_SIZE : 1)))
		return -EUCLEAN;
	return 0;
}

static int node_check_hdr(const struct omctx *c, const uint8_t *d, unsigned level)
{
	return hdr_check(c->bs, d, level);
}

/* BV1/BV2 (blockops.h): the checks of every read, at the node's own level
 * (below the largest height). */
int pfs_omap_node_verify(uint32_t bs, const void *data, const struct pfs_blockhdr *h)
{
	if (h->level >= PFS_OMAP_MAX_HEIGHT)
		return -EUCLEAN;
	return hdr_check(bs, data, h->level);
}

static int node_get(struct omctx *c, uint64_t blkno, unsigned level, struct pfs_buf **bp)
{
	struct pfs_block_expect exp = {
		.magic = POSFS_MAGIC_OMAP,
		.owner = c->owner,
		.check_owner = true,
	};
	int ret;

	ret = pfs_tx_get(c->tx, blkno, &exp, bp);
	if (ret)
		return ret;
	ret = node_check_hdr(c, pfs_buf_data(*bp), level);
	if (ret) {
		pfs_buf_put(*bp);
		*bp = NULL;
	}
	return ret;
}

/* ---- cells -------------------------------------------------------------- */

struct cell {
	uint32_t off;		/* in the block */
	uint32_t size;		/* header + key + payload */
	uint32_t klen;
	uint32_t flags;
	uint32_t vlen;		/* value_len */
	uint32_t plen;		/* payload bytes in the cell */
	const uint8_t *key;
	const uint8_t *pay;	/* inline value, vref or child */
};

/* Parse the cell an image starts with (bounds already known good). */
static void cell_parse(const uint8_t *p, unsigned level, struct cell *ce)
{
	ce->klen = ld_le16(p);
	ce->flags = ld_le16(p + 2);
	ce->vlen = ld_le32(p + 4);
	ce->key = p + CELL_HDR;
	if (level)
		ce->plen = CHILD_SIZE;
	else
		ce->plen = (ce->flags & POSFS_OMAP_VAL_EXTERNAL) ? VREF_SIZE : ce->vlen;
	ce->pay = ce->key + ce->klen;
	ce->size = CELL_HDR + ce->klen + ce->plen;
}

/*
 * Cell i (< nr) of node d at level: bounds-checked, fields in range.
 * Interior: value_len 8, flags 0, an empty key only at i = 0. Leaf: a key
 * of 1 .. KEY_MAX bytes, only known flags, an external value not empty.
 */
static int cell_get(const struct omctx *c, const uint8_t *d, unsigned level,
		    unsigned i, struct cell *ce)
{
	uint32_t off = ld_le16(d + NODE_HDR + SLOT_SIZE * i);

	if (off < node_fend(c, d) || off > c->bs - CELL_HDR)
		return -EUCLEAN;
	cell_parse(d + off, level, ce);
	ce->off = off;
	if (ce->klen > KEY_MAX || ce->vlen > VALUE_MAX)
		return -EUCLEAN;
	if (level) {
		if (ce->vlen != CHILD_SIZE || ce->flags || (ce->klen == 0 && i != 0))
			return -EUCLEAN;
	} else {
		if (ce->klen == 0 || (ce->flags & ~(uint32_t)POSFS_OMAP_VAL_EXTERNAL))
			return -EUCLEAN;
		if ((ce->flags & POSFS_OMAP_VAL_EXTERNAL) && ce->vlen == 0)
			return -EUCLEAN;
	}
	if (off + ce->size > c->bs)
		return -EUCLEAN;
	return 0;
}

/* A cell to be written: header fields, key and payload from anywhere. */
struct ncell {
	const uint8_t *key;
	uint32_t klen;
	uint32_t flags;
	uint32_t vlen;
	const uint8_t *pay;
	uint32_t plen;
};

static uint32_t ncell_size(const struct ncell *n)
{
	return CELL_HDR + n->klen + n->plen;
}

static void ncell_write(uint8_t *dst, const struct ncell *n)
{
	st_le16(dst, (uint16_t)n->klen);
	st_le16(dst + 2, (uint16_t)n->flags);
	st_le32(dst + 4, n->vlen);
	if (n->klen)
		memmove(dst + CELL_HDR, n->key, n->klen);
	if (n->plen)
		memmove(dst + CELL_HDR + n->klen, n->pay, n->plen);
}

/*
 * Binary search: *pos = the first index whose key is >= key, *eq when
 * that key equals key. O(log nr) cells touched.
 */
static int node_search(const struct omctx *c, const uint8_t *d, unsigned level,
		       const void *key, size_t klen, unsigned *pos, bool *eq)
{
	unsigned lo = 0, hi = node_nr(d);
	struct cell ce;
	int ret;

	*eq = false;
	while (lo < hi) {
		unsigned mid = lo + (hi - lo) / 2;

		ret = cell_get(c, d, level, mid, &ce);
		if (ret)
			return ret;
		if (key_cmp(ce.key, ce.klen, key, klen) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*pos = lo;
	if (lo < node_nr(d)) {
		ret = cell_get(c, d, level, lo, &ce);
		if (ret)
			return ret;
		*eq = key_cmp(ce.key, ce.klen, key, klen) == 0;
	}
	return 0;
}

/* Insert n (sz bytes) at index idx; the contiguous gap must hold it. */
static void node_insert_raw(const struct omctx *c, uint8_t *d, unsigned idx,
			    const struct ncell *n, uint32_t sz)
{
	unsigned nr = node_nr(d);
	uint32_t fe = node_fend(c, d) - sz;
	uint8_t *slots = d + NODE_HDR;

	ncell_write(d + fe, n);
	memmove(slots + SLOT_SIZE * (idx + 1), slots + SLOT_SIZE * idx,
		SLOT_SIZE * (nr - idx));
	st_le16(slots + SLOT_SIZE * idx, (uint16_t)fe);
	node_set(d, nr + 1, fe, node_fbytes(d) - sz - SLOT_SIZE);
}

/* Remove cells [i, j) whose sizes add up to bytes. */
static void node_remove_raw(const struct omctx *c, uint8_t *d, unsigned i, unsigned j,
			    uint32_t bytes, uint32_t first_off)
{
	unsigned nr = node_nr(d);
	uint32_t fe = node_fend(c, d);
	uint8_t *slots = d + NODE_HDR;

	memmove(slots + SLOT_SIZE * i, slots + SLOT_SIZE * j, SLOT_SIZE * (nr - j));
	nr -= j - i;
	if (nr == 0) {
		node_init(c, d);
		return;
	}
	/* a single cell at the low end of the cell area: give its bytes
	 * back to the gap rather than leave a hole */
	if (j == i + 1 && first_off == fe)
		fe += bytes;
	node_set(d, nr, fe, node_fbytes(d) + bytes + SLOT_SIZE * (j - i));
}

/* Rewrite the cell area without holes. */
static int node_compact(struct omctx *c, uint8_t *d, unsigned level)
{
	unsigned nr = node_nr(d);
	uint32_t fs = node_fstart(d), fe = c->bs;
	uint8_t *copy;
	struct cell ce;
	int ret;

	ret = scratch_get(c);
	if (ret)
		return ret;
	copy = scratch_copy(c, 0);
	memcpy(copy, d, c->bs);
	for (unsigned i = 0; i < nr; i++) {
		ret = cell_get(c, copy, level, i, &ce);
		if (ret)
			return ret;
		if (fe - fs < ce.size)
			return -EUCLEAN;	/* the cells overlap */
		fe -= ce.size;
		memcpy(d + fe, copy + ce.off, ce.size);
		st_le16(d + NODE_HDR + SLOT_SIZE * i, (uint16_t)fe);
	}
	memset(d + fs, 0, fe - fs);
	node_set(d, nr, fe, fe - fs);
	return 0;
}

/* Fill d (its header kept) with the n cells of list, in order. */
static int node_build(const struct omctx *c, uint8_t *d, const struct cref *list, unsigned n)
{
	uint32_t fs = NODE_HDR + SLOT_SIZE * n, fe = c->bs;

	if (fs > c->bs)
		return -EUCLEAN;
	for (unsigned i = 0; i < n; i++) {
		if (fe - fs < list[i].size)
			return -EUCLEAN;
		fe -= list[i].size;
		memcpy(d + fe, list[i].p, list[i].size);
		st_le16(d + NODE_HDR + SLOT_SIZE * i, (uint16_t)fe);
	}
	memset(d + fs, 0, fe - fs);
	node_set(d, n, fe, fe - fs);
	return 0;
}

/* Append the cells of node image d to c->list; *total grows by their
 * bytes, slots included. */
static int list_gather(struct omctx *c, const uint8_t *d, unsigned level,
		       unsigned *n, uint64_t *total)
{
	unsigned nr = node_nr(d);
	struct cell ce;
	int ret;

	for (unsigned i = 0; i < nr; i++) {
		ret = cell_get(c, d, level, i, &ce);
		if (ret)
			return ret;
		if (*n >= c->list_cap)
			return -EUCLEAN;
		c->list[*n].p = d + ce.off;
		c->list[*n].size = ce.size;
		(*n)++;
		*total += ce.size + SLOT_SIZE;
	}
	return 0;
}

/*
 * Where to cut list[0..n) (total bytes with slots) into two nodes: the k
 * in 1 .. n-1 whose halves both fit and are closest to equal (I2).
 */
static int split_point(const struct omctx *c, unsigned n, uint64_t total, unsigned *kp)
{
	uint64_t left = 0, best = UINT64_MAX;
	unsigned k;

	*kp = 0;
	for (k = 1; k < n; k++) {
		uint64_t dev;

		left += c->list[k - 1].size + SLOT_SIZE;
		if (left > c->cap)
			break;
		if (total - left > c->cap)
			continue;
		dev = 2 * left > total ? 2 * left - total : total - 2 * left;
		if (dev < best) {
			best = dev;
			*kp = k;
		}
	}
	return *kp ? 0 : -EUCLEAN;
}

/*
 * A split for keys arriving in order at the right edge of the tree (bias
 * 1) or at its left edge (bias -1): the node that will not see more
 * inserts is left as full as it can be, the other gets just over U (and
 * two cells if interior), so files created in name order fill nodes to
 * 3/4 or more rather than 1/2. Falls back to split_point.
 */
static int split_point_biased(const struct omctx *c, unsigned level, unsigned n,
			      uint64_t total, int bias, unsigned *kp)
{
	unsigned mincells = level ? 2 : 1, k;
	uint64_t left = 0;

	if (bias > 0) {
		/* the largest k with a right part >= U */
		for (k = 1; k < n; k++)
			left += c->list[k - 1].size + SLOT_SIZE;
		for (k = n - 1; k >= 1; k--) {
			uint64_t right = total - left;

			if (left <= c->cap && right <= c->cap && right >= c->min_used &&
			    n - k >= mincells && k >= mincells && left >= c->min_used) {
				*kp = k;
				return 0;
			}
			left -= c->list[k - 1].size + SLOT_SIZE;
		}
	} else if (bias < 0) {
		/* the smallest k with a left part >= U */
		for (k = 1; k < n; k++) {
			uint64_t right;

			left += c->list[k - 1].size + SLOT_SIZE;
			right = total - left;
			if (left <= c->cap && right <= c->cap && left >= c->min_used &&
			    k >= mincells && n - k >= mincells && right >= c->min_used) {
				*kp = k;
				return 0;
			}
		}
	}
	return split_point(c, n, total, kp);
}

/*
 * The separator between two neighbour nodes at level, from the images of
 * the left one's last cell and the right one's first: for leaves the
 * shortest prefix of r's key greater than l's, for interior nodes r's key.
 * Written to out (KEY_MAX bytes).
 */
static int make_sep(const uint8_t *l, const uint8_t *r, unsigned level,
		    uint8_t *out, uint32_t *outlen)
{
	struct cell lc, rc;
	uint32_t i = 0, n;

	cell_parse(l, level, &lc);
	cell_parse(r, level, &rc);
	if (key_cmp(lc.key, lc.klen, rc.key, rc.klen) >= 0 || rc.klen == 0)
		return -EUCLEAN;
	if (level) {
		memcpy(out, rc.key, rc.klen);
		*outlen = rc.klen;
		return 0;
	}
	n = lc.klen < rc.klen ? lc.klen : rc.klen;
	while (i < n && lc.key[i] == rc.key[i])
		i++;
	/* lc < rc, so rc is longer than the common prefix */
	*outlen = i + 1;
	memcpy(out, rc.key, i + 1);
	return 0;
}

/* ---- out-of-line values ------------------------------------------------- */

struct vref {
	uint64_t pblk;
	uint32_t nblocks;
	uint32_t crc;
};

static uint32_t value_nblocks(const struct omctx *c, uint32_t vlen)
{
	return (vlen + c->bs - 1) / c->bs;
}

/* Whether a value goes inline with this key (see the design note). */
static bool value_inline(const struct omctx *c, size_t klen, size_t vlen)
{
	return vlen <= VREF_SIZE || CELL_HDR + klen + vlen <= c->inline_max;
}

static int vref_parse(const struct omctx *c, const uint8_t *pay, uint32_t vlen,
		      struct vref *v)
{
	v->pblk = ld_le64(pay);
	v->nblocks = ld_le32(pay + 8);
	v->crc = ld_le32(pay + 12);
	if (vlen == 0 || v->pblk == 0 || v->nblocks != value_nblocks(c, vlen))
		return -EUCLEAN;
	return 0;
}

/*
 * The crc32c that ends an index block: seeded with the value's crc, over
 * the index's own block number (le64) then its nblocks pointers, so an
 * index is bound to its place and its value (a stale or misdirected one
 * never gets other blocks freed).
 */
static uint32_t index_crc(const struct vref *v, const uint8_t *d)
{
	uint8_t self[8];

	st_le64(self, v->pblk);
	return pfs_crc32c(pfs_crc32c(v->crc, self, sizeof(self)), d, 8 * (size_t)v->nblocks);
}

/*
 * The data blocks of value v into blks[]. For nblocks > 1 the index block
 * is read and its crc verified; *ibp (if not NULL) keeps a reference to it.
 */
static int value_blocks(struct omctx *c, const struct vref *v, uint64_t *blks,
			struct pfs_buf **ibp)
{
	struct pfs_buf *ib;
	const uint8_t *d;
	int ret = 0;

	if (ibp)
		*ibp = NULL;
	if (v->nblocks == 1) {
		blks[0] = v->pblk;
		return 0;
	}
	ret = pfs_tx_get_raw(c->tx, v->pblk, &ib);
	if (ret)
		return ret;
	d = pfs_buf_data(ib);
	if (index_crc(v, d) != ld_le32(d + 8 * (size_t)v->nblocks)) {
		ret = -EBADMSG;
		goto out;
	}
	for (uint32_t i = 0; i < v->nblocks; i++) {
		blks[i] = ld_le64(d + 8 * (size_t)i);
		if (!blks[i] || blks[i] == v->pblk) {
			ret = -EUCLEAN;
			goto out;
		}
	}
out:
	if (ret || !ibp)
		pfs_buf_put(ib);
	else
		*ibp = ib;
	return ret;
}

/* Write val (vlen > 0) out of line; out gets the vref. */
static int value_store(struct omctx *c, const void *val, uint32_t vlen, uint8_t *out)
{
	uint32_t n = value_nblocks(c, vlen);
	struct pfs_buf *ib = NULL, *db = NULL;
	struct vref v = { .nblocks = n, .crc = pfs_crc32c(0, val, vlen) };
	int ret;

	if (n == 1) {
		ret = pfs_tx_new_raw(c->tx, c->shard, &db);
		if (ret)
			return ret;
		memcpy(pfs_buf_data(db), val, vlen);
		v.pblk = pfs_buf_blkno(db);
		pfs_buf_put(db);
	} else {
		uint8_t *id;

		ret = pfs_tx_new_raw(c->tx, c->shard, &ib);
		if (ret)
			return ret;
		id = pfs_buf_data(ib);
		for (uint32_t i = 0; i < n; i++) {
			uint32_t off = i * c->bs;
			uint32_t len = vlen - off < c->bs ? vlen - off : c->bs;

			ret = pfs_tx_new_raw(c->tx, c->shard, &db);
			if (ret) {
				pfs_buf_put(ib);
				return ret;
			}
			memcpy(pfs_buf_data(db), (const uint8_t *)val + off, len);
			st_le64(id + 8 * (size_t)i, pfs_buf_blkno(db));
			pfs_buf_put(db);
		}
		v.pblk = pfs_buf_blkno(ib);
		st_le32(id + 8 * (size_t)n, index_crc(&v, id));
		pfs_buf_put(ib);
	}
	st_le64(out, v.pblk);
	st_le32(out + 8, v.nblocks);
	st_le32(out + 12, v.crc);
	return 0;
}

/* Read an out-of-line value (its cell's payload pay) into out (vlen bytes). */
static int value_read(struct omctx *c, const uint8_t *pay, uint32_t vlen, void *out)
{
	uint64_t blks[VALUE_BLOCKS_MAX];
	struct vref v;
	uint32_t crc = 0;
	int ret;

	ret = vref_parse(c, pay, vlen, &v);
	if (ret)
		return ret;
	ret = value_blocks(c, &v, blks, NULL);
	if (ret)
		return ret;
	for (uint32_t i = 0; i < v.nblocks; i++) {
		uint32_t off = i * c->bs;
		uint32_t len = vlen - off < c->bs ? vlen - off : c->bs;
		struct pfs_buf *db;

		ret = pfs_tx_get_raw(c->tx, blks[i], &db);
		if (ret)
			return ret;
		memcpy((uint8_t *)out + off, pfs_buf_data(db), len);
		crc = pfs_crc32c(crc, pfs_buf_data(db), len);
		pfs_buf_put(db);
	}
	return crc == v.crc ? 0 : -EBADMSG;
}

/* Release the blocks of an out-of-line value (the cell's payload pay, copied
 * by the caller if the cell may move). */
static int value_free(struct omctx *c, const uint8_t *pay, uint32_t vlen)
{
	uint64_t blks[VALUE_BLOCKS_MAX];
	struct pfs_buf *ib, *db;
	struct vref v;
	int ret;

	ret = vref_parse(c, pay, vlen, &v);
	if (ret)
		return ret;
	ret = value_blocks(c, &v, blks, &ib);
	if (ret)
		return ret;
	for (uint32_t i = 0; i < v.nblocks; i++) {
		ret = pfs_tx_get_raw(c->tx, blks[i], &db);
		if (!ret)
			ret = pfs_tx_release(c->tx, db);
		if (ret) {
			pfs_buf_put(ib);
			return ret;
		}
	}
	return ib ? pfs_tx_release(c->tx, ib) : 0;
}

/* ---- paths -------------------------------------------------------------- */

/* The nodes from the root (b[height-1]) down to a leaf (b[0]) and the
 * position taken in each. Holds one reference per non-NULL b[]. */
struct path {
	unsigned height;
	struct pfs_buf *b[PFS_OMAP_MAX_HEIGHT];
	unsigned idx[PFS_OMAP_MAX_HEIGHT];
};

static void path_put(struct path *p)
{
	for (unsigned l = 0; l < p->height; l++) {
		pfs_buf_put(p->b[l]);
		p->b[l] = NULL;
	}
	p->height = 0;
}

/* The child block of interior cell i of d. */
static int child_of(const struct omctx *c, const uint8_t *d, unsigned level,
		    unsigned i, uint64_t *blk)
{
	struct cell ce;
	int ret;

	if (i >= node_nr(d))
		return -EUCLEAN;
	ret = cell_get(c, d, level, i, &ce);
	if (ret)
		return ret;
	*blk = ld_le64(ce.pay);
	return 0;
}

/* A root that says it is empty must be {0, 0}; else its height in range. */
static int root_check(const struct omctx *c)
{
	if (!c->root->blkno)
		return c->root->height ? -EUCLEAN : 0;
	if (c->root->height == 0 || c->root->height > PFS_OMAP_MAX_HEIGHT)
		return -EUCLEAN;
	return 0;
}

/*
 * One descent to the leaf where key belongs (key NULL or klen 0: the
 * first leaf). p->idx[0] is the first position >= key in that leaf and
 * *eq says whether it holds key. -ENOENT for an empty tree. The caller
 * puts p in every case.
 */
static int tree_descend(struct omctx *c, const void *key, size_t klen,
			struct path *p, bool *eq)
{
	uint64_t blk = c->root->blkno;
	unsigned level;
	int ret;

	p->height = 0;
	*eq = false;
	ret = root_check(c);
	if (ret)
		return ret;
	if (!blk)
		return -ENOENT;
	p->height = c->root->height;
	for (level = 0; level < p->height; level++)
		p->b[level] = NULL;
	for (level = p->height; level-- > 0;) {
		const uint8_t *d;
		unsigned pos = 0;
		bool e = false;

		ret = node_get(c, blk, level, &p->b[level]);
		if (ret)
			return ret;
		d = pfs_buf_data(p->b[level]);
		if (key && klen) {
			ret = node_search(c, d, level, key, klen, &pos, &e);
			if (ret)
				return ret;
		}
		if (level == 0) {
			p->idx[0] = pos;
			*eq = e;
			return 0;
		}
		/* the last cell whose key is <= key */
		pos = e ? pos : (pos ? pos - 1 : 0);
		p->idx[level] = pos;
		ret = child_of(c, d, level, pos, &blk);
		if (ret)
			return ret;
	}
	return -EUCLEAN;	/* not reached: level 0 returns */
}

/* ---- growing: insert a cell, split upward ------------------------------- */

/* A fresh root above the old one (which stays child 0) and the node
 * split off it (child 1, separator sep). */
static int root_grow(struct omctx *c, struct pfs_buf *old, unsigned level,
		     const uint8_t *sep, uint32_t seplen, uint64_t rblk)
{
	uint8_t lchild[8], rchild[8];
	struct ncell l = { .key = NULL, .klen = 0, .vlen = CHILD_SIZE, .pay = lchild, .plen = CHILD_SIZE };
	struct ncell r = { .key = sep, .klen = seplen, .vlen = CHILD_SIZE, .pay = rchild, .plen = CHILD_SIZE };
	struct pfs_buf *nb;
	uint8_t *d;
	int ret;

	if (level + 1 >= PFS_OMAP_MAX_HEIGHT)
		return -EUCLEAN;	/* cannot happen short of corruption */
	ret = pfs_tx_new(c->tx, c->shard, POSFS_MAGIC_OMAP, c->owner,
			 (uint16_t)(level + 1), &nb);
	if (ret)
		return ret;
	d = pfs_buf_data(nb);
	st_le64(lchild, pfs_buf_blkno(old));
	st_le64(rchild, rblk);
	node_init(c, d);
	node_insert_raw(c, d, 0, &l, ncell_size(&l));
	node_insert_raw(c, d, 1, &r, ncell_size(&r));
	c->root->blkno = pfs_buf_blkno(nb);
	c->root->height = level + 2;
	pfs_buf_put(nb);
	return 0;
}

/*
 * Split node b (level) while putting n at index idx: b keeps the left
 * half, a new node the right half. sep/seplen: the separator for the new
 * node, *rblk its block.
 */
static int node_split(struct omctx *c, struct pfs_buf *b, unsigned level, unsigned idx,
		      const struct ncell *n, int bias, uint8_t *sep, uint32_t *seplen,
		      uint64_t *rblk)
{
	uint8_t *d = pfs_buf_data(b), *copy, *img;
	struct pfs_buf *rb;
	unsigned nr = node_nr(d), cnt = 0, k, i;
	uint64_t total = 0;
	struct cell ce;
	int ret;

	ret = scratch_get(c);
	if (ret)
		return ret;
	copy = scratch_copy(c, 0);
	img = scratch_img(c);
	memcpy(copy, d, c->bs);
	ncell_write(img, n);
	for (i = 0; i <= nr; i++) {
		if (i == idx) {
			c->list[cnt].p = img;
			c->list[cnt].size = ncell_size(n);
			total += c->list[cnt].size + SLOT_SIZE;
			cnt++;
		}
		if (i == nr)
			break;
		ret = cell_get(c, copy, level, i, &ce);
		if (ret)
			return ret;
		if (cnt >= c->list_cap)
			return -EUCLEAN;
		c->list[cnt].p = copy + ce.off;
		c->list[cnt].size = ce.size;
		total += ce.size + SLOT_SIZE;
		cnt++;
	}
	ret = split_point_biased(c, level, cnt, total,
				 (bias > 0 && idx == nr) || (bias < 0 && idx == 0) ? bias : 0, &k);
	if (ret)
		return ret;
	ret = make_sep(c->list[k - 1].p, c->list[k].p, level, sep, seplen);
	if (ret)
		return ret;
	ret = pfs_tx_new(c->tx, c->shard, POSFS_MAGIC_OMAP, c->owner, (uint16_t)level, &rb);
	if (ret)
		return ret;
	ret = node_build(c, d, c->list, k);
	if (!ret)
		ret = node_build(c, pfs_buf_data(rb), c->list + k, cnt - k);
	*rblk = pfs_buf_blkno(rb);
	pfs_buf_put(rb);
	return ret;
}

/*
 * Whether the path's node at level is on the right edge of the tree (1:
 * the last child all the way up), the left edge (-1) or neither (0).
 */
static int path_edge(const struct path *p, unsigned level)
{
	bool right = true, left = true;

	for (unsigned l = level + 1; l < p->height; l++) {
		right = right && p->idx[l] + 1 == node_nr(pfs_buf_data(p->b[l]));
		left = left && p->idx[l] == 0;
	}
	return right ? 1 : left ? -1 : 0;
}

/*
 * Put cell n at index idx of the path's node at level (replacing the cell
 * there when replace). When the node cannot hold it the node is split and
 * the separator of the new node goes into the parent, and so on up to a
 * new root. *split (if not NULL) is set when a split happened; the path
 * below the split level is stale then.
 *
 * n must not point into the node or into the scratch copies; separators
 * made on the way alternate between the two scratch separator buffers, so
 * one may be the one n points at: it is consumed (written into the cell
 * image) before the split writes the next separator.
 */
static int tree_put(struct omctx *c, struct path *p, unsigned level, unsigned idx,
		    struct ncell n, bool replace, bool *split)
{
	uint8_t childbuf[8];
	int which = 0;
	int ret;

	if (split)
		*split = false;
	for (;;) {
		struct pfs_buf *b = p->b[level];
		uint8_t *d = pfs_buf_data(b);
		uint32_t sz = ncell_size(&n), need = sz + SLOT_SIZE, seplen, fs, fe;
		uint64_t rblk;
		uint8_t *sep;

		ret = pfs_tx_dirty(c->tx, b);
		if (ret)
			return ret;
		if (idx > node_nr(d) || (replace && idx == node_nr(d)))
			return -EUCLEAN;
		if (replace) {
			struct cell old;

			ret = cell_get(c, d, level, idx, &old);
			if (ret)
				return ret;
			if (old.size == sz) {
				ncell_write(d + old.off, &n);
				return 0;
			}
			node_remove_raw(c, d, idx, idx + 1, old.size, old.off);
		}
		fs = node_fstart(d);
		fe = node_fend(c, d);
		if (fe - fs < need && node_fbytes(d) >= need) {
			ret = node_compact(c, d, level);
			if (ret)
				return ret;
			fe = node_fend(c, d);
		}
		if (fe - fs >= need) {
			node_insert_raw(c, d, idx, &n, sz);
			return 0;
		}
		/* full: split, and put the separator one level up */
		ret = scratch_get(c);
		if (ret)
			return ret;
		sep = scratch_sep(c, which);
		ret = node_split(c, b, level, idx, &n, path_edge(p, level), sep, &seplen, &rblk);
		if (ret)
			return ret;
		if (split)
			*split = true;
		if (level + 1 >= p->height)
			return root_grow(c, b, level, sep, seplen, rblk);
		st_le64(childbuf, rblk);
		n = (struct ncell){ .key = sep, .klen = seplen, .vlen = CHILD_SIZE,
				    .pay = childbuf, .plen = CHILD_SIZE };
		idx = p->idx[level + 1] + 1;
		replace = false;
		level++;
		which ^= 1;
	}
}

/* ---- shrinking: merge, redistribute, collapse --------------------------- */

/* The root at level may be left empty (a leaf) or with one child. */
static int root_shrink(struct omctx *c, struct path *p, unsigned level)
{
	struct pfs_buf *b = p->b[level];
	uint64_t child;
	int ret;

	if (level == 0) {
		if (node_nr(pfs_buf_data(b)) != 0)
			return 0;
		p->b[0] = NULL;
		ret = pfs_tx_release(c->tx, b);
		if (ret)
			return ret;
		c->root->blkno = 0;
		c->root->height = 0;
		return 0;
	}
	/* An interior root with one child: the child becomes the root (its
	 * first key is the root's, empty), possibly several times over. */
	p->b[level] = NULL;
	while (node_nr(pfs_buf_data(b)) == 1) {
		ret = child_of(c, pfs_buf_data(b), level, 0, &child);
		if (ret)
			goto fail;
		ret = pfs_tx_release(c->tx, b);
		b = NULL;
		if (ret)
			return ret;
		c->root->blkno = child;
		c->root->height = level;
		if (--level == 0)
			return 0;
		ret = node_get(c, child, level, &b);
		if (ret)
			return ret;
	}
	ret = node_nr(pfs_buf_data(b)) ? 0 : -EUCLEAN;
fail:
	pfs_buf_put(b);
	return ret;
}

/*
 * Merge L and R (neighbours at level, L left) into L when they fit in one
 * node (*merged), else share their cells evenly between them and write
 * the new separator for R to sep.
 */
static int pair_rebuild(struct omctx *c, unsigned level, uint8_t *ld, uint8_t *rd,
			bool *merged, uint8_t *sep, uint32_t *seplen)
{
	uint8_t *lcopy = scratch_copy(c, 0), *rcopy = scratch_copy(c, 1);
	uint64_t total = 0;
	unsigned n = 0, k;
	int ret;

	memcpy(lcopy, ld, c->bs);
	memcpy(rcopy, rd, c->bs);
	ret = list_gather(c, lcopy, level, &n, &total);
	if (!ret)
		ret = list_gather(c, rcopy, level, &n, &total);
	if (ret)
		return ret;
	if (total <= c->cap) {
		*merged = true;
		return node_build(c, ld, c->list, n);
	}
	*merged = false;
	ret = split_point(c, n, total, &k);
	if (!ret)
		ret = make_sep(c->list[k - 1].p, c->list[k].p, level, sep, seplen);
	if (!ret)
		ret = node_build(c, ld, c->list, k);
	if (!ret)
		ret = node_build(c, rd, c->list + k, n - k);
	return ret;
}

/*
 * Restore M4 from the path's node at level upward, after cells were
 * removed from it (or replaced by smaller ones).
 */
static int tree_rebalance(struct omctx *c, struct path *p, unsigned level)
{
	for (;;) {
		struct pfs_buf *b = p->b[level], *sb = NULL, *lb, *rb, *pb;
		uint8_t *pd, childbuf[8];
		unsigned pnr, j, li;
		uint32_t seplen;
		uint64_t sblk;
		bool merged, split;
		struct cell pc;
		int ret;

		if (level + 1 >= p->height)
			return root_shrink(c, p, level);
		if (!node_underfull(c, pfs_buf_data(b), level))
			return 0;
		pb = p->b[level + 1];
		pd = pfs_buf_data(pb);
		pnr = node_nr(pd);
		j = p->idx[level + 1];
		if (pnr < 2 || j >= pnr)
			return -EUCLEAN;
		li = j + 1 < pnr ? j : j - 1;	/* the pair is (li, li + 1) */
		ret = child_of(c, pd, level + 1, li == j ? j + 1 : j - 1, &sblk);
		if (ret)
			return ret;
		if (sblk == pfs_buf_blkno(b))
			return -EUCLEAN;	/* a node cannot be its own sibling */
		ret = node_get(c, sblk, level, &sb);
		if (ret)
			return ret;
		lb = li == j ? b : sb;
		rb = li == j ? sb : b;
		ret = pfs_tx_dirty(c->tx, lb);
		if (!ret)
			ret = pfs_tx_dirty(c->tx, rb);
		if (!ret)
			ret = pfs_tx_dirty(c->tx, pb);
		if (!ret)
			ret = scratch_get(c);
		if (!ret)
			ret = pair_rebuild(c, level, pfs_buf_data(lb), pfs_buf_data(rb),
					   &merged, scratch_sep(c, 1), &seplen);
		if (ret)
			goto fail;
		if (merged) {
			/* R is gone: its cell leaves the parent */
			ret = cell_get(c, pd, level + 1, li + 1, &pc);
			if (ret)
				goto fail;
			node_remove_raw(c, pd, li + 1, li + 2, pc.size, pc.off);
			if (rb == b)
				p->b[level] = NULL;
			else
				sb = NULL;
			ret = pfs_tx_release(c->tx, rb);
			pfs_buf_put(sb);
			if (ret)
				return ret;
			level++;
			continue;
		}
		/* redistributed: R's separator in the parent changes */
		st_le64(childbuf, pfs_buf_blkno(rb));
		pfs_buf_put(sb);
		sb = NULL;
		ret = tree_put(c, p, level + 1, li + 1,
			       (struct ncell){ .key = scratch_sep(c, 1), .klen = seplen,
					       .vlen = CHILD_SIZE, .pay = childbuf,
					       .plen = CHILD_SIZE },
			       true, &split);
		if (ret || split)
			return ret;	/* a split leaves halves >= U */
		level++;
		continue;
fail:
		pfs_buf_put(sb);
		return ret;
	}
}

/* ---- public operations --------------------------------------------------- */

static bool key_ok(const void *key, size_t klen)
{
	return key && klen >= 1 && klen <= KEY_MAX;
}

int pfs_omap_get(struct pfs_tx *tx, const struct pfs_omap *om,
		 const void *key, size_t klen, void *val, size_t vcap,
		 size_t *vlen)
{
	struct path p = { .height = 0 };
	struct omctx c;
	struct cell ce;
	bool eq;
	int ret;

	if (!key_ok(key, klen))
		return -EINVAL;
	ret = ctx_init(&c, tx, om);
	if (ret)
		return ret;
	ret = tree_descend(&c, key, klen, &p, &eq);
	if (ret)
		goto out;
	if (!eq) {
		ret = -ENOENT;
		goto out;
	}
	ret = cell_get(&c, pfs_buf_data(p.b[0]), 0, p.idx[0], &ce);
	if (ret)
		goto out;
	if (vlen)
		*vlen = ce.vlen;
	if (!val)
		goto out;
	if (vcap < ce.vlen) {
		ret = -ERANGE;
		goto out;
	}
	if (ce.flags & POSFS_OMAP_VAL_EXTERNAL)
		ret = value_read(&c, ce.pay, ce.vlen, val);
	else if (ce.vlen)
		memcpy(val, ce.pay, ce.vlen);
out:
	path_put(&p);
	ctx_fini(&c);
	return ret;
}

static int omap_put(struct pfs_tx *tx, const struct pfs_omap *om, const void *key,
		    size_t klen, const void *val, size_t vlen, bool excl)
{
	struct path p = { .height = 0 };
	uint8_t vref[VREF_SIZE], oldvref[VREF_SIZE];
	struct ncell n;
	struct omctx c;
	bool eq = false, empty, split;
	int ret;

	if (!key_ok(key, klen) || vlen > VALUE_MAX || (vlen && !val))
		return -EINVAL;
	ret = ctx_init(&c, tx, om);
	if (ret)
		return ret;
	ret = tree_descend(&c, key, klen, &p, &eq);
	empty = ret == -ENOENT;
	if (ret && !empty)
		goto out;
	ret = 0;
	if (eq && excl) {
		ret = -EEXIST;
		goto out;
	}
	n = (struct ncell){ .key = key, .klen = (uint32_t)klen, .vlen = (uint32_t)vlen,
			    .pay = val, .plen = (uint32_t)vlen };
	if (!value_inline(&c, klen, vlen)) {
		ret = value_store(&c, val, (uint32_t)vlen, vref);
		if (ret)
			goto out;
		n.flags = POSFS_OMAP_VAL_EXTERNAL;
		n.pay = vref;
		n.plen = VREF_SIZE;
	}
	if (empty) {
		/* an empty tree: the first leaf is the root */
		struct pfs_buf *b;

		ret = pfs_tx_new(tx, c.shard, POSFS_MAGIC_OMAP, c.owner, 0, &b);
		if (ret)
			goto out;
		node_init(&c, pfs_buf_data(b));
		node_insert_raw(&c, pfs_buf_data(b), 0, &n, ncell_size(&n));
		c.root->blkno = pfs_buf_blkno(b);
		c.root->height = 1;
		pfs_buf_put(b);
		(*c.count)++;
		goto out;
	}
	if (!eq) {
		ret = tree_put(&c, &p, 0, p.idx[0], n, false, NULL);
		if (!ret)
			(*c.count)++;
		goto out;
	}
	/* replace: keep the old vref to free once the cell is rewritten */
	{
		struct cell old;
		uint32_t oldflags, oldvlen;

		ret = cell_get(&c, pfs_buf_data(p.b[0]), 0, p.idx[0], &old);
		if (ret)
			goto out;
		oldflags = old.flags;
		oldvlen = old.vlen;
		if (oldflags & POSFS_OMAP_VAL_EXTERNAL)
			memcpy(oldvref, old.pay, VREF_SIZE);
		ret = tree_put(&c, &p, 0, p.idx[0], n, true, &split);
		if (!ret && (oldflags & POSFS_OMAP_VAL_EXTERNAL))
			ret = value_free(&c, oldvref, oldvlen);
		if (!ret && !split)
			ret = tree_rebalance(&c, &p, 0);
	}
out:
	path_put(&p);
	ctx_fini(&c);
	return ret;
}

int pfs_omap_set(struct pfs_tx *tx, const struct pfs_omap *om,
		 const void *key, size_t klen, const void *val, size_t vlen)
{
	return omap_put(tx, om, key, klen, val, vlen, false);
}

int pfs_omap_insert(struct pfs_tx *tx, const struct pfs_omap *om,
		    const void *key, size_t klen, const void *val, size_t vlen)
{
	return omap_put(tx, om, key, klen, val, vlen, true);
}

/* Remove the leaf cells [i, j) of the path's leaf, freeing their values. */
static int leaf_remove(struct omctx *c, struct path *p, unsigned i, unsigned j)
{
	uint8_t *d = pfs_buf_data(p->b[0]);
	uint32_t bytes = 0, first_off = 0;
	struct cell ce;
	int ret;

	ret = pfs_tx_dirty(c->tx, p->b[0]);
	if (ret)
		return ret;
	for (unsigned k = i; k < j; k++) {
		ret = cell_get(c, d, 0, k, &ce);
		if (ret)
			return ret;
		if (k == i)
			first_off = ce.off;
		bytes += ce.size;
		if (ce.flags & POSFS_OMAP_VAL_EXTERNAL) {
			ret = value_free(c, ce.pay, ce.vlen);
			if (ret)
				return ret;
		}
	}
	node_remove_raw(c, d, i, j, bytes, first_off);
	*c->count -= j - i;
	return tree_rebalance(c, p, 0);
}

int pfs_omap_remove(struct pfs_tx *tx, const struct pfs_omap *om,
		    const void *key, size_t klen)
{
	struct path p = { .height = 0 };
	struct omctx c;
	bool eq;
	int ret;

	if (!key_ok(key, klen))
		return -EINVAL;
	ret = ctx_init(&c, tx, om);
	if (ret)
		return ret;
	ret = tree_descend(&c, key, klen, &p, &eq);
	if (!ret && !eq)
		ret = -ENOENT;
	if (!ret)
		ret = leaf_remove(&c, &p, p.idx[0], p.idx[0] + 1);
	path_put(&p);
	ctx_fini(&c);
	return ret;
}

int pfs_omap_remove_range(struct pfs_tx *tx, const struct pfs_omap *om,
			  const void *start, size_t slen,
			  const void *end, size_t elen, uint64_t *removed)
{
	uint8_t cur[KEY_MAX], next[KEY_MAX];
	struct path p = { .height = 0 };
	size_t clen = 0, nlen;
	uint64_t done = 0;
	struct omctx c;
	int ret;

	if (removed)
		*removed = 0;
	if (!start)
		slen = 0;
	if (slen > KEY_MAX || (end && !key_ok(end, elen)))
		return -EINVAL;
	ret = ctx_init(&c, tx, om);
	if (ret)
		return ret;
	if (slen) {
		memcpy(cur, start, slen);
		clen = slen;
	}
	if (end && key_cmp(cur, clen, end, elen) >= 0)
		goto out;
	for (;;) {
		unsigned i, j, nr;
		const uint8_t *d;
		bool eq, more = false;

		ret = tree_descend(&c, cur, clen, &p, &eq);
		if (ret == -ENOENT) {
			ret = 0;	/* empty tree */
			break;
		}
		if (ret)
			break;
		d = pfs_buf_data(p.b[0]);
		nr = node_nr(d);
		i = p.idx[0];
		j = nr;
		if (end) {
			ret = node_search(&c, d, 0, end, elen, &j, &eq);
			if (ret)
				break;
			if (j < i)
				j = i;
		}
		if (j == nr) {
			/* the range may go on in the next leaf: its lower bound
			 * is the next separator up the path */
			for (unsigned l = 1; l < p.height; l++) {
				const uint8_t *pd = pfs_buf_data(p.b[l]);
				struct cell ce;

				if (p.idx[l] + 1 >= node_nr(pd))
					continue;
				ret = cell_get(&c, pd, l, p.idx[l] + 1, &ce);
				if (ret)
					goto out;
				memcpy(next, ce.key, ce.klen);
				nlen = ce.klen;
				more = true;
				break;
			}
		}
		if (i < j) {
			ret = leaf_remove(&c, &p, i, j);
			if (ret)
				break;
			done += j - i;
		}
		path_put(&p);
		if (!more || (end && key_cmp(next, nlen, end, elen) >= 0))
			break;
		if (key_cmp(next, nlen, cur, clen) <= 0) {
			ret = -EUCLEAN;	/* separators must move forward */
			break;
		}
		memcpy(cur, next, nlen);
		clen = nlen;
	}
out:
	if (removed)
		*removed = done;
	path_put(&p);
	ctx_fini(&c);
	return ret;
}

/* Release the subtree at blk (level) and its values. Depth <= 32. */
static int destroy_node(struct omctx *c, uint64_t blk, unsigned level)
{
	struct pfs_buf *b;
	const uint8_t *d;
	struct cell ce;
	int ret;

	ret = node_get(c, blk, level, &b);
	if (ret)
		return ret;
	d = pfs_buf_data(b);
	for (unsigned i = 0; i < node_nr(d); i++) {
		ret = cell_get(c, d, level, i, &ce);
		if (ret)
			goto fail;
		if (level)
			ret = destroy_node(c, ld_le64(ce.pay), level - 1);
		else if (ce.flags & POSFS_OMAP_VAL_EXTERNAL)
			ret = value_free(c, ce.pay, ce.vlen);
		if (ret)
			goto fail;
	}
	return pfs_tx_release(c->tx, b);
fail:
	pfs_buf_put(b);
	return ret;
}

int pfs_omap_destroy(struct pfs_tx *tx, const struct pfs_omap *om)
{
	struct omctx c;
	int ret;

	ret = ctx_init(&c, tx, om);
	if (ret)
		return ret;
	ret = root_check(&c);
	if (!ret && c.root->blkno)
		ret = destroy_node(&c, c.root->blkno, c.root->height - 1);
	if (!ret) {
		c.root->blkno = 0;
		c.root->height = 0;
		*c.count = 0;
	}
	ctx_fini(&c);
	return ret;
}

/* ---- cursors ------------------------------------------------------------- */

static int cursor_seek(struct pfs_tx *tx, const struct pfs_omap *om, const void *key,
		       size_t klen, struct pfs_omap_cursor *cur, bool after)
{
	struct path p = { .height = 0 };
	struct omctx c;
	bool eq;
	int ret;

	memset(cur, 0, sizeof(*cur));
	cur->tx = tx;
	cur->om = *om;
	if (key && !key_ok(key, klen))
		return -EINVAL;
	ret = ctx_init(&c, tx, om);
	if (ret)
		return ret;
	ret = tree_descend(&c, key, key ? klen : 0, &p, &eq);
	if (ret == -ENOENT) {
		cur->end = true;
		return 0;
	}
	if (ret) {
		path_put(&p);
		return ret;
	}
	cur->height = p.height;
	for (unsigned l = 0; l < p.height; l++) {
		cur->b[l] = p.b[l];
		cur->idx[l] = p.idx[l];
	}
	if (after && eq)
		cur->idx[0]++;
	return 0;
}

int pfs_omap_cursor_seek(struct pfs_tx *tx, const struct pfs_omap *om,
			 const void *key, size_t klen, struct pfs_omap_cursor *cur)
{
	return cursor_seek(tx, om, key, klen, cur, false);
}

int pfs_omap_cursor_seek_after(struct pfs_tx *tx, const struct pfs_omap *om,
			       const void *key, size_t klen, struct pfs_omap_cursor *cur)
{
	if (!key)
		return -EINVAL;
	return cursor_seek(tx, om, key, klen, cur, true);
}

/* Move the cursor to the first cell of the next leaf; -ENOENT at the end. */
static int cursor_advance(struct omctx *c, struct pfs_omap_cursor *cur)
{
	unsigned l = 1;
	uint64_t blk;
	int ret;

	while (l < cur->height && cur->idx[l] + 1 >= node_nr(pfs_buf_data(cur->b[l])))
		l++;
	if (l >= cur->height)
		return -ENOENT;
	cur->idx[l]++;
	for (; l > 0; l--) {
		struct pfs_buf *nb;

		ret = child_of(c, pfs_buf_data(cur->b[l]), l, cur->idx[l], &blk);
		if (ret)
			return ret;
		ret = node_get(c, blk, l - 1, &nb);
		if (ret)
			return ret;
		pfs_buf_put(cur->b[l - 1]);
		cur->b[l - 1] = nb;
		cur->idx[l - 1] = 0;
	}
	return 0;
}

int pfs_omap_cursor_next(struct pfs_omap_cursor *cur, void *key, size_t kcap,
			 size_t *klen, void *val, size_t vcap, size_t *vlen)
{
	struct omctx c;
	const uint8_t *d;
	struct cell ce;
	int ret;

	if (cur->end || !cur->height)
		return -ENOENT;
	ret = ctx_init(&c, cur->tx, &cur->om);
	if (ret)
		return ret;
	while (cur->idx[0] >= node_nr(pfs_buf_data(cur->b[0]))) {
		ret = cursor_advance(&c, cur);
		if (ret == -ENOENT)
			cur->end = true;
		if (ret)
			return ret;
	}
	d = pfs_buf_data(cur->b[0]);
	ret = cell_get(&c, d, 0, cur->idx[0], &ce);
	if (ret)
		return ret;
	if (klen)
		*klen = ce.klen;
	if (vlen)
		*vlen = ce.vlen;
	if ((key && kcap < ce.klen) || (val && vcap < ce.vlen))
		return -ERANGE;
	if (key)
		memcpy(key, ce.key, ce.klen);
	if (val) {
		if (ce.flags & POSFS_OMAP_VAL_EXTERNAL)
			ret = value_read(&c, ce.pay, ce.vlen, val);
		else if (ce.vlen)
			memcpy(val, ce.pay, ce.vlen);
		if (ret)
			return ret;
	}
	cur->idx[0]++;
	return 0;
}

void pfs_omap_cursor_release(struct pfs_omap_cursor *cur)
{
	for (unsigned l = 0; l < PFS_OMAP_MAX_HEIGHT; l++) {
		pfs_buf_put(cur->b[l]);
		cur->b[l] = NULL;
	}
	cur->height = 0;
	cur->end = true;
}

/* ---- fsck ---------------------------------------------------------------- */

/* A bound on keys: key (len bytes), or none (minus / plus infinity). */
struct bound {
	const uint8_t *key;
	uint32_t len;
	bool inf;
};

struct span {
	uint32_t off;
	uint32_t size;
};

struct chk {
	struct omctx *c;
	const struct pfs_omap_check_ops *ops;
	struct pfs_omap_stats st;
	uint8_t *vbuf;		/* VALUE_MAX bytes */
	struct span *spans;	/* list_cap entries */
};

static int span_cmp(const void *a, const void *b)
{
	const struct span *x = a, *y = b;

	return (x->off > y->off) - (x->off < y->off);
}

static int check_value(struct chk *k, const struct cell *ce, const void **val)
{
	uint64_t blks[VALUE_BLOCKS_MAX];
	struct omctx *c = k->c;
	struct vref v;
	int ret;

	*val = ce->pay;
	if (!(ce->flags & POSFS_OMAP_VAL_EXTERNAL))
		return 0;
	k->st.external++;
	ret = vref_parse(c, ce->pay, ce->vlen, &v);
	if (ret)
		return ret;
	ret = value_blocks(c, &v, blks, NULL);
	if (ret)
		return ret;
	if (v.nblocks > 1) {
		k->st.value_blocks++;
		if (k->ops && k->ops->block) {
			ret = k->ops->block(k->ops->arg, v.pblk, PFS_OMAP_BLOCK_VINDEX, 0);
			if (ret)
				return ret;
		}
	}
	for (uint32_t i = 0; i < v.nblocks; i++) {
		k->st.value_blocks++;
		if (k->ops && k->ops->block) {
			ret = k->ops->block(k->ops->arg, blks[i], PFS_OMAP_BLOCK_VALUE, 0);
			if (ret)
				return ret;
		}
	}
	ret = value_read(c, ce->pay, ce->vlen, k->vbuf);
	*val = k->vbuf;
	return ret;
}

/*
 * Verify the subtree at blk: the node as a whole (cells in bounds, no
 * overlap, exact free-space accounting, order, bounds lo <= key < hi, its
 * first key if interior, fill), then its children or records.
 */
static int check_node(struct chk *k, uint64_t blk, unsigned level,
		      struct bound lo, struct bound hi, bool root)
{
	struct omctx *c = k->c;
	struct pfs_buf *b;
	const uint8_t *d;
	unsigned nr;
	uint64_t sum = 0;
	struct cell ce, prev = { .klen = 0 };
	int ret;

	ret = node_get(c, blk, level, &b);
	if (ret)
		return ret;
	d = pfs_buf_data(b);
	nr = node_nr(d);
	if (k->ops && k->ops->block) {
		ret = k->ops->block(k->ops->arg, blk, PFS_OMAP_BLOCK_NODE, level);
		if (ret)
			goto out;
	}
	ret = -EUCLEAN;
	if (nr > c->list_cap)
		goto out;
	for (unsigned i = 0; i < nr; i++) {
		ret = cell_get(c, d, level, i, &ce);
		if (ret)
			goto out;
		ret = -EUCLEAN;
		k->spans[i].off = ce.off;
		k->spans[i].size = ce.size;
		sum += ce.size;
		if (i && key_cmp(prev.key, prev.klen, ce.key, ce.klen) >= 0)
			goto out;
		if (!hi.inf && key_cmp(ce.key, ce.klen, hi.key, hi.len) >= 0)
			goto out;
		if (level && i == 0) {
			/* M2: the first key is the node's lower bound */
			if (lo.inf ? ce.klen != 0 :
			    key_cmp(ce.key, ce.klen, lo.key, lo.len) != 0)
				goto out;
		} else if (!lo.inf && key_cmp(ce.key, ce.klen, lo.key, lo.len) < 0) {
			goto out;
		}
		prev = ce;
	}
	if (sum != c->bs - node_fstart(d) - node_fbytes(d))
		goto out;
	qsort(k->spans, nr, sizeof(*k->spans), span_cmp);
	for (unsigned i = 0; i + 1 < nr; i++)
		if (k->spans[i].off + k->spans[i].size > k->spans[i + 1].off)
			goto out;
	if (root ? nr < (level ? 2u : 1u) : node_underfull(c, d, level))
		goto out;
	k->st.nodes++;
	k->st.bytes_used += node_used(c, d);
	k->st.bytes_free += node_fbytes(d);
	ret = 0;
	if (level == 0) {
		k->st.leaves++;
		for (unsigned i = 0; i < nr && !ret; i++) {
			const void *val;

			ret = cell_get(c, d, 0, i, &ce);
			if (!ret)
				ret = check_value(k, &ce, &val);
			if (!ret && k->ops && k->ops->record)
				ret = k->ops->record(k->ops->arg, ce.key, ce.klen, val, ce.vlen);
			k->st.records++;
		}
		goto out;
	}
	for (unsigned i = 0; i < nr && !ret; i++) {
		struct bound clo = lo, chi = hi;
		struct cell next;

		ret = cell_get(c, d, level, i, &ce);
		if (ret)
			break;
		if (i) {
			clo = (struct bound){ .key = ce.key, .len = ce.klen, .inf = false };
		}
		if (i + 1 < nr) {
			ret = cell_get(c, d, level, i + 1, &next);
			if (ret)
				break;
			chi = (struct bound){ .key = next.key, .len = next.klen, .inf = false };
		}
		ret = check_node(k, ld_le64(ce.pay), level - 1, clo, chi, false);
	}
out:
	pfs_buf_put(b);
	return ret;
}

int pfs_omap_check(struct pfs_tx *tx, const struct pfs_omap *om,
		   const struct pfs_omap_check_ops *ops, struct pfs_omap_stats *st)
{
	struct bound none = { .key = NULL, .len = 0, .inf = true };
	struct omctx c;
	struct chk k;
	int ret;

	ret = ctx_init(&c, tx, om);
	if (ret)
		return ret;
	memset(&k, 0, sizeof(k));
	k.c = &c;
	k.ops = ops;
	ret = root_check(&c);
	if (ret)
		goto out;
	k.st.height = c.root->height;
	if (c.root->blkno) {
		k.vbuf = malloc(VALUE_MAX);
		k.spans = malloc(c.list_cap * sizeof(*k.spans));
		if (!k.vbuf || !k.spans) {
			ret = -ENOMEM;
			goto out;
		}
		ret = check_node(&k, c.root->blkno, c.root->height - 1, none, none, true);
		if (ret)
			goto out;
	}
	if (k.st.records != *c.count)
		ret = -EUCLEAN;
out:
	if (st)
		*st = k.st;
	free(k.vbuf);
	free(k.spans);
	ctx_fini(&c);
	return ret;
}
