/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The generic B+tree of fixed-size records (see btree.h).
 *
 * Design note. A node is a metadata block: the 64-byte header, then nr
 * records packed from byte 64, sorted by key; nothing else. Leaf records
 * are the tree's own (ops->rec_size bytes, key at ops->key_off); interior
 * records are struct pfs_dbtree_ptr. Every operation makes one descent from
 * the root and keeps the path (node, index per level) on the stack, so
 * splits, merges and separator updates walk back up it without reading a
 * node twice; the CPU cost is a binary search per level and memmoves
 * within one leaf, and nothing is allocated but the transaction's buffers.
 *
 * Invariants (checked by pfs_btree_check; B1-B3 also on every read):
 *   B1. A node at level l of a tree of height h is reached from the root
 *       through exactly h-1-l interior nodes; leaves are level 0. The
 *       root's level is h-1, every child's level is its parent's minus one,
 *       so a descent ends after at most h <= PFS_BTREE_MAX_HEIGHT reads and
 *       a cycle in the pointers cannot loop.
 *   B2. 1 <= nr <= capacity for every node; at least capacity/4 except at
 *       the root; an interior root has at least two children; an empty tree
 *       is root {0, 0} and has no node.
 *   B3. Separators are exact: key[i] of an interior node is the smallest key
 *       of child i's subtree, and every key of child i is below key[i+1]
 *       (or below the parent's own bound for the last child). A descent
 *       therefore checks two keys per node (first = separator, last < the
 *       bound) and an operation that changes the first key of a node
 *       rewrites its separators upwards (fix_min) while it is the first
 *       child.
 *   B4. Keys strictly increase within a node; with B3 they strictly
 *       increase across the whole tree. The hot paths only rely on the
 *       binary search being memory-safe on unsorted keys; the full order is
 *       pfs_btree_check's to verify.
 *
 * Insert: descend; if the nodes to split (the full ones from the leaf up,
 * plus a new root when all are full) exceed the spare nodes in hand, drop
 * the path, allocate the spares and descend again. So no byte changes
 * before every allocation succeeded (-ENOSPC leaves the tree as it was),
 * and an allocator that itself changes this tree while allocating (the
 * free-space tree's own nodes) cannot invalidate a path in use. A full
 * node splits in halves, except an append at the right end of the tree
 * (or a prepend at its left end), which leaves a quarter in the new node
 * and three quarters in the old: sequential inserts fill nodes to 3/4.
 *
 * Delete: a node that falls below a quarter is merged with its sibling
 * under the same parent (left one preferred) when both fit in 3/4 of a
 * node, so a merge is never followed at once by a split; otherwise the two
 * even out. A merge removes a parent entry, which may cascade; an interior
 * root left with one child is replaced by it. Merges and borrows never
 * change the first key of the parent (the removed or changed separator is
 * never entry 0), except when a corrupt-but-readable tree had an empty
 * node, which fix_min covers.
 */

#include <endian.h>
#include <errno.h>
#include <string.h>

#include "format/endian.h"
#include "store/btree.h"

#define HDR	sizeof(struct pfs_dblock_hdr)
#define PTR	sizeof(struct pfs_dbtree_ptr)

/* What one operation needs to know about its tree, computed once. */
struct bt_ctx {
	struct pfs_tx *tx;
	const struct pfs_btree *bt;
	const struct pfs_btree_ops *ops;
	struct pfs_block_expect exp;
	uint32_t rs;		/* leaf record size */
	uint32_t ko;		/* key offset in a leaf record */
	uint32_t cap[2];	/* [0] leaf, [1] interior capacity */
};

/* ---- little helpers ------------------------------------------------------- */

static inline unsigned nd_nr(const uint8_t *d)
{
	return le16toh(((const struct pfs_dblock_hdr *)d)->nr);
}

static inline void nd_set_nr(uint8_t *d, unsigned nr)
{
	((struct pfs_dblock_hdr *)d)->nr = htole16((uint16_t)nr);
}

static inline unsigned nd_level(const uint8_t *d)
{
	return le16toh(((const struct pfs_dblock_hdr *)d)->level);
}

static inline void nd_set_level(uint8_t *d, unsigned level)
{
	((struct pfs_dblock_hdr *)d)->level = htole16((uint16_t)level);
}

static inline uint32_t lv_rs(const struct bt_ctx *c, unsigned l)
{
	return l ? (uint32_t)PTR : c->rs;
}

static inline uint32_t lv_ko(const struct bt_ctx *c, unsigned l)
{
	return l ? 0 : c->ko;
}

static inline uint32_t lv_cap(const struct bt_ctx *c, unsigned l)
{
	return c->cap[l != 0];
}

static inline uint32_t lv_min(const struct bt_ctx *c, unsigned l)
{
	return lv_cap(c, l) / 4;
}

static inline uint8_t *nd_rec(const struct bt_ctx *c, uint8_t *d, unsigned l, unsigned i)
{
	return d + HDR + (size_t)i * lv_rs(c, l);
}

static inline uint64_t nd_key(const struct bt_ctx *c, const uint8_t *d, unsigned l, unsigned i)
{
	return ld_le64(d + HDR + (size_t)i * lv_rs(c, l) + lv_ko(c, l));
}

static inline bool path_has_hi(const struct pfs_btree_path *p, unsigned l)
{
	return (p->has_hi >> l) & 1u;
}

/*
 * First index in [0, n) whose key is >= key (lower_bound) or > key
 * (upper_bound); n when none. Branch-free halving: the comparison feeds a
 * conditional move, so no probe pays a mispredicted branch, and both
 * possible next probes are prefetched, so a node that is not in the CPU
 * cache costs about one memory latency per two probes, not per probe.
 * (Measured on 4 KiB nodes: about half the time of a plain binary search
 * in cache, a quarter less out of it.) On unsorted keys (a corrupt node)
 * the result is still in [0, n].
 */
static unsigned lower_bound(const uint8_t *base, unsigned n, size_t rsz, size_t ko,
			    uint64_t key)
{
	unsigned b = 0;

	if (!n)
		return 0;
	while (n > 1) {
		unsigned half = n / 2;

		__builtin_prefetch(base + (size_t)(b + half / 2) * rsz + ko);
		__builtin_prefetch(base + (size_t)(b + half + half / 2) * rsz + ko);
		b = ld_le64(base + (size_t)(b + half) * rsz + ko) < key ? b + half : b;
		n -= half;
	}
	return b + (ld_le64(base + (size_t)b * rsz + ko) < key);
}

static unsigned upper_bound(const uint8_t *base, unsigned n, size_t rsz, size_t ko,
			    uint64_t key)
{
	unsigned b = 0;

	if (!n)
		return 0;
	while (n > 1) {
		unsigned half = n / 2;

		__builtin_prefetch(base + (size_t)(b + half / 2) * rsz + ko);
		__builtin_prefetch(base + (size_t)(b + half + half / 2) * rsz + ko);
		b = ld_le64(base + (size_t)(b + half) * rsz + ko) <= key ? b + half : b;
		n -= half;
	}
	return b + (ld_le64(base + (size_t)b * rsz + ko) <= key);
}

static int ctx_init(struct bt_ctx *c, struct pfs_tx *tx, const struct pfs_btree *bt)
{
	const struct pfs_btree_ops *ops = bt->ops;
	uint32_t bs = pfs_tx_block_size(tx);

	if (!ops || !bt->root || !ops->rec_size || ops->rec_size % 8 ||
	    ops->rec_size > PFS_BTREE_REC_MAX || ops->key_off + 8u > ops->rec_size ||
	    bs < POSFS_MIN_BLOCK_SIZE || bs > POSFS_MAX_BLOCK_SIZE)
		return -EINVAL;
	c->tx = tx;
	c->bt = bt;
	c->ops = ops;
	memset(&c->exp, 0, sizeof(c->exp));
	c->exp.magic = ops->magic;
	c->exp.owner = bt->owner;
	c->exp.check_owner = true;
	c->rs = ops->rec_size;
	c->ko = ops->key_off;
	c->cap[0] = (bs - (uint32_t)HDR) / c->rs;
	c->cap[1] = (bs - (uint32_t)HDR) / (uint32_t)PTR;
	return 0;
}

uint32_t pfs_btree_capacity(const struct pfs_btree_ops *ops, uint32_t block_size,
			    unsigned level)
{
	return (block_size - (uint32_t)HDR) / (level ? (uint32_t)PTR : ops->rec_size);
}

uint64_t pfs_btree_rec_key(const struct pfs_btree_ops *ops, const void *rec)
{
	return ld_le64((const uint8_t *)rec + ops->key_off);
}

/* A record read from the tree, on its way out: validate, then copy. */
static int rec_out(const struct pfs_btree_ops *ops, const uint8_t *r, void *out)
{
	if (ops->rec_check && ops->rec_check(r))
		return -EUCLEAN;
	if (out)
		memcpy(out, r, ops->rec_size);
	return 0;
}

/*
 * BV1/BV2 (blockops.h) for a node of a tree of these ops, on its own: a
 * level below the largest height, 1 <= nr <= capacity (B2), keys strictly
 * increasing (B4), leaf records that pass rec_check and rec_order,
 * interior records with a child.
 */
int pfs_btree_node_verify(const struct pfs_btree_ops *ops, uint32_t bs, const void *data,
			  const struct pfs_blockhdr *h)
{
	const uint8_t *d = data;
	uint32_t rs = h->level ? (uint32_t)PTR : ops->rec_size;
	uint32_t ko = h->level ? 0 : ops->key_off;
	const uint8_t *r = d + HDR, *prev = NULL;

	if (h->level >= PFS_BTREE_MAX_HEIGHT || !h->nr || h->nr > (bs - (uint32_t)HDR) / rs)
		return -EUCLEAN;
	for (unsigned i = 0; i < h->nr; i++, prev = r, r += rs) {
		if (prev && ld_le64(prev + ko) >= ld_le64(r + ko))
			return -EUCLEAN;
		if (h->level) {
			if (!ld_le64(r + offsetof(struct pfs_dbtree_ptr, child)))
				return -EUCLEAN;
		} else if ((ops->rec_check && ops->rec_check(r)) ||
			   (prev && ops->rec_order && ops->rec_order(prev, r))) {
			return -EUCLEAN;
		}
	}
	return 0;
}

/* ---- reading nodes -------------------------------------------------------- */

/*
 * What is wrong with node d, expected at this level (B1, B2, B3 in O(1)):
 * NULL when nothing. lo is its separator (not checked at the root), hi the
 * bound of its keys when has_hi.
 */
static const char *node_problem(const struct bt_ctx *c, const uint8_t *d, unsigned level,
				bool root, uint64_t lo, bool has_hi, uint64_t hi)
{
	unsigned nr = nd_nr(d);

	if (nd_level(d) != level)
		return "level does not match its place in the tree";
	if (nr == 0 || nr > lv_cap(c, level))
		return "record count out of range";
	if (!root && nd_key(c, d, level, 0) != lo)
		return "first key differs from its separator";
	if (has_hi && nd_key(c, d, level, nr - 1) >= hi)
		return "key not below the next separator";
	return NULL;
}

/* B4 for one node, in O(nr). */
static bool keys_sorted(const struct bt_ctx *c, const uint8_t *d, unsigned level)
{
	unsigned nr = nd_nr(d);

	for (unsigned i = 1; i < nr; i++)
		if (nd_key(c, d, level, i - 1) >= nd_key(c, d, level, i))
			return false;
	return true;
}

static int node_read(const struct bt_ctx *c, uint64_t blkno, unsigned level, bool root,
		     uint64_t lo, bool has_hi, uint64_t hi, struct pfs_buf **bp)
{
	struct pfs_buf *b;
	int ret;

	*bp = NULL;
	if (!blkno)
		return -EUCLEAN;
	ret = pfs_tx_get(c->tx, blkno, &c->exp, &b);
	if (ret)
		return ret;
	if (node_problem(c, pfs_buf_data(b), level, root, lo, has_hi, hi)) {
		pfs_buf_put(b);
		return -EUCLEAN;
	}
	*bp = b;
	return 0;
}

/*
 * Read child i of the interior node pd at level pl, whose keys are below
 * *hi when *has_hi; on return *has_hi, *hi bound the child's keys.
 */
static int child_read(const struct bt_ctx *c, const uint8_t *pd, unsigned pl, unsigned i,
		      bool *has_hi, uint64_t *hi, struct pfs_buf **bp)
{
	const uint8_t *ptr = pd + HDR + (size_t)i * PTR;

	if (i + 1 < nd_nr(pd)) {
		*hi = ld_le64(ptr + PTR);
		*has_hi = true;
	}
	return node_read(c, ld_le64(ptr + 8), pl - 1, false, ld_le64(ptr), *has_hi, *hi, bp);
}

/* ---- paths ------------------------------------------------------------------ */

static void path_put(struct pfs_btree_path *p)
{
	for (unsigned l = 0; l < p->height; l++) {
		pfs_buf_put(p->b[l]);
		p->b[l] = NULL;
	}
	p->height = 0;
	p->has_hi = 0;
}

static void path_set(struct pfs_btree_path *p, unsigned l, struct pfs_buf *b,
		     bool has_hi, uint64_t hi)
{
	p->b[l] = b;
	p->d[l] = pfs_buf_data(b);
	p->hi[l] = hi;
	if (has_hi)
		p->has_hi |= 1u << l;
	else
		p->has_hi &= ~(1u << l);
}

/*
 * Descend from the root towards key: at each interior level the last child
 * whose separator is <= key (the first child when key is below them all),
 * at the leaf the first record >= key (nr when none). p must hold nothing.
 * -ENOENT: the tree is empty (p holds nothing). On any error the caller
 * still path_put()s.
 */
static int path_descend(const struct bt_ctx *c, struct pfs_btree_path *p, uint64_t key)
{
	const struct pfs_tree_root *r = c->bt->root;
	uint64_t blkno = r->blkno, lo = 0, hi = 0;
	bool has_hi = false;
	unsigned l;
	int ret;

	p->height = 0;
	p->has_hi = 0;
	if (!blkno)
		return r->height ? -EUCLEAN : -ENOENT;
	if (!r->height || r->height > PFS_BTREE_MAX_HEIGHT)
		return -EUCLEAN;
	p->height = r->height;
	for (l = 0; l < p->height; l++)
		p->b[l] = NULL;
	for (l = p->height - 1;; l--) {
		struct pfs_buf *b;
		const uint8_t *d, *ptr;
		unsigned nr, i;

		ret = node_read(c, blkno, l, l == p->height - 1, lo, has_hi, hi, &b);
		if (ret)
			return ret;
		path_set(p, l, b, has_hi, hi);
		d = p->d[l];
		nr = nd_nr(d);
		if (l == 0) {
			p->idx[0] = (int32_t)lower_bound(d + HDR, nr, c->rs, c->ko, key);
			return 0;
		}
		i = upper_bound(d + HDR, nr, PTR, 0, key);
		i = i ? i - 1 : 0;
		p->idx[l] = (int32_t)i;
		ptr = d + HDR + (size_t)i * PTR;
		lo = ld_le64(ptr);
		blkno = ld_le64(ptr + 8);
		if (i + 1 < nr) {
			hi = ld_le64(ptr + PTR);
			has_hi = true;
		}
	}
}

/*
 * Move the path to the next leaf (dir 1) or the previous one (dir -1),
 * its index on its first or last record. -ENOENT: there is none, and the
 * path is unchanged. Another error leaves the path partly loaded.
 */
static int path_step_leaf(const struct bt_ctx *c, struct pfs_btree_path *p, int dir)
{
	unsigned l;
	int ret;

	for (l = 1; l < p->height; l++) {
		int n = (int)nd_nr(p->d[l]);

		if (dir > 0 ? p->idx[l] + 1 < n : p->idx[l] > 0)
			break;
	}
	if (l >= p->height)
		return -ENOENT;
	p->idx[l] += dir;
	while (l-- > 0) {
		struct pfs_buf *b;
		bool has_hi = path_has_hi(p, l + 1);
		uint64_t hi = p->hi[l + 1];

		pfs_buf_put(p->b[l]);
		p->b[l] = NULL;
		ret = child_read(c, p->d[l + 1], l + 1, (unsigned)p->idx[l + 1], &has_hi, &hi, &b);
		if (ret)
			return ret;
		path_set(p, l, b, has_hi, hi);
		p->idx[l] = dir > 0 ? 0 : (int32_t)nd_nr(p->d[l]) - 1;
	}
	return 0;
}

/*
 * The node at level l has a new first key: rewrite its separator in the
 * parent, and upwards while the node is a first child (B3).
 */
static int fix_min(const struct bt_ctx *c, struct pfs_btree_path *p, unsigned l, uint64_t key)
{
	int ret;

	for (unsigned m = l + 1; m < p->height; m++) {
		ret = pfs_tx_dirty(c->tx, p->b[m]);
		if (ret)
			return ret;
		st_le64(p->d[m] + HDR + (size_t)p->idx[m] * PTR, key);
		if (p->idx[m] != 0)
			break;
	}
	return 0;
}

/* ---- lookups and cursors ----------------------------------------------------- */

int pfs_btree_lookup(struct pfs_tx *tx, const struct pfs_btree *bt, uint64_t key, void *rec)
{
	struct pfs_btree_path p;
	struct bt_ctx c;
	unsigned q;
	int ret;

	ret = ctx_init(&c, tx, bt);
	if (ret)
		return ret;
	ret = path_descend(&c, &p, key);
	if (ret)
		goto out;
	q = (unsigned)p.idx[0];
	if (q < nd_nr(p.d[0]) && nd_key(&c, p.d[0], 0, q) == key)
		ret = rec_out(c.ops, nd_rec(&c, p.d[0], 0, q), rec);
	else
		ret = -ENOENT;
out:
	path_put(&p);
	return ret;
}

void pfs_btree_cur_init(struct pfs_btree_cur *cur, struct pfs_tx *tx,
			const struct pfs_btree *bt)
{
	cur->tx = tx;
	cur->bt = bt;
	cur->err = 0;
	cur->path.height = 0;
	cur->path.has_hi = 0;
}

void pfs_btree_cur_release(struct pfs_btree_cur *cur)
{
	path_put(&cur->path);
}

static int cur_fail(struct pfs_btree_cur *cur, int err)
{
	path_put(&cur->path);
	cur->err = err;
	return err;
}

/* The record under the cursor, validated and copied. */
static int cur_out(struct pfs_btree_cur *cur, const struct bt_ctx *c, void *rec)
{
	struct pfs_btree_path *p = &cur->path;
	int ret = rec_out(c->ops, nd_rec(c, p->d[0], 0, (unsigned)p->idx[0]), rec);

	return ret ? cur_fail(cur, ret) : 0;
}

int pfs_btree_cur_seek(struct pfs_btree_cur *cur, uint64_t key, void *rec)
{
	struct pfs_btree_path *p = &cur->path;
	struct bt_ctx c;
	int ret;

	path_put(p);
	cur->err = 0;
	ret = ctx_init(&c, cur->tx, cur->bt);
	if (ret)
		return cur_fail(cur, ret);
	ret = path_descend(&c, p, key);
	if (ret == -ENOENT) {
		path_put(p);
		return ret;
	}
	if (ret)
		return cur_fail(cur, ret);
	if ((unsigned)p->idx[0] == nd_nr(p->d[0])) {
		ret = path_step_leaf(&c, p, 1);
		if (ret == -ENOENT)
			return ret;	/* after the last record */
		if (ret)
			return cur_fail(cur, ret);
	}
	return cur_out(cur, &c, rec);
}

int pfs_btree_cur_seek_le(struct pfs_btree_cur *cur, uint64_t key, void *rec)
{
	struct pfs_btree_path *p = &cur->path;
	struct bt_ctx c;
	unsigned q;
	int ret;

	path_put(p);
	cur->err = 0;
	ret = ctx_init(&c, cur->tx, cur->bt);
	if (ret)
		return cur_fail(cur, ret);
	ret = path_descend(&c, p, key);
	if (ret == -ENOENT) {
		path_put(p);
		return ret;
	}
	if (ret)
		return cur_fail(cur, ret);
	q = (unsigned)p->idx[0];
	if (q < nd_nr(p->d[0]) && nd_key(&c, p->d[0], 0, q) == key)
		return cur_out(cur, &c, rec);
	if (q > 0) {
		p->idx[0] = (int32_t)q - 1;
		return cur_out(cur, &c, rec);
	}
	/* below the leaf's first key: only the leftmost leaf in a sound tree */
	ret = path_step_leaf(&c, p, -1);
	if (ret == -ENOENT) {
		p->idx[0] = -1;		/* before the first record */
		return ret;
	}
	if (ret)
		return cur_fail(cur, ret);
	return cur_out(cur, &c, rec);
}

static int cur_move(struct pfs_btree_cur *cur, int dir, void *rec)
{
	struct pfs_btree_path *p = &cur->path;
	const struct pfs_btree_ops *ops = cur->bt->ops;
	struct bt_ctx c;
	int nr, next, ret;

	if (cur->err)
		return cur->err;
	if (!p->height)
		return -ENOENT;
	nr = (int)nd_nr(p->d[0]);
	next = p->idx[0] + dir;
	if (next >= 0 && next < nr) {
		/* the common case: the same leaf, no context needed */
		p->idx[0] = next;
		ret = rec_out(ops, p->d[0] + HDR + (size_t)next * ops->rec_size, rec);
		return ret ? cur_fail(cur, ret) : 0;
	}
	ret = ctx_init(&c, cur->tx, cur->bt);
	if (ret)
		return cur_fail(cur, ret);
	ret = path_step_leaf(&c, p, dir);
	if (ret == -ENOENT) {
		p->idx[0] = dir > 0 ? nr : -1;
		return ret;
	}
	if (ret)
		return cur_fail(cur, ret);
	return cur_out(cur, &c, rec);
}

int pfs_btree_cur_next(struct pfs_btree_cur *cur, void *rec)
{
	return cur_move(cur, 1, rec);
}

int pfs_btree_cur_prev(struct pfs_btree_cur *cur, void *rec)
{
	return cur_move(cur, -1, rec);
}

int pfs_btree_lookup_le(struct pfs_tx *tx, const struct pfs_btree *bt, uint64_t key, void *rec)
{
	struct pfs_btree_cur cur;
	int ret;

	pfs_btree_cur_init(&cur, tx, bt);
	ret = pfs_btree_cur_seek_le(&cur, key, rec);
	pfs_btree_cur_release(&cur);
	return ret;
}

int pfs_btree_lookup_ge(struct pfs_tx *tx, const struct pfs_btree *bt, uint64_t key, void *rec)
{
	struct pfs_btree_cur cur;
	int ret;

	pfs_btree_cur_init(&cur, tx, bt);
	ret = pfs_btree_cur_seek(&cur, key, rec);
	pfs_btree_cur_release(&cur);
	return ret;
}

/* ---- insert ----------------------------------------------------------------- */

/* Nodes an insert along p needs: the full ones from the leaf up, and a new
 * root when the root is full too. */
static unsigned splits_needed(const struct bt_ctx *c, const struct pfs_btree_path *p)
{
	for (unsigned l = 0; l < p->height; l++)
		if (nd_nr(p->d[l]) < lv_cap(c, l))
			return l;
	return p->height + 1;
}

/*
 * How many of the cap + 1 records stay in the left node when the full node
 * at level l splits for an insertion at pos: 3/4 when appending at the
 * right end of the tree, 1/4 when prepending at its left end, else half.
 */
static unsigned split_point(const struct bt_ctx *c, const struct pfs_btree_path *p,
			    unsigned l, unsigned pos)
{
	unsigned cap = lv_cap(c, l), m;

	if (pos == cap) {
		for (m = l + 1; m < p->height; m++)
			if ((unsigned)p->idx[m] + 1 != nd_nr(p->d[m]))
				break;
		if (m == p->height)
			return cap + 1 - lv_min(c, l);
	}
	if (pos == 0) {
		for (m = l + 1; m < p->height; m++)
			if (p->idx[m] != 0)
				break;
		if (m == p->height)
			return lv_min(c, l);
	}
	return (cap + 1) / 2;
}

/*
 * The n (full) records of A plus item at pos become A's first L records
 * and R's remaining n + 1 - L (R empty). A's vacated slots are zeroed.
 */
static void split_insert(uint8_t *a, uint8_t *r, unsigned n, size_t rsz, unsigned pos,
			 const uint8_t *item, unsigned L)
{
	uint8_t *ar = a + HDR, *rr = r + HDR;

	if (pos < L) {
		memcpy(rr, ar + (size_t)(L - 1) * rsz, (size_t)(n - L + 1) * rsz);
		memmove(ar + (size_t)(pos + 1) * rsz, ar + (size_t)pos * rsz,
			(size_t)(L - 1 - pos) * rsz);
		memcpy(ar + (size_t)pos * rsz, item, rsz);
	} else {
		unsigned k = pos - L;

		memcpy(rr, ar + (size_t)L * rsz, (size_t)k * rsz);
		memcpy(rr + (size_t)k * rsz, item, rsz);
		memcpy(rr + (size_t)(k + 1) * rsz, ar + (size_t)pos * rsz,
		       (size_t)(n - pos) * rsz);
	}
	memset(ar + (size_t)L * rsz, 0, (size_t)(n - L) * rsz);
}

/* Insert rec (key) at the leaf position of p, using spare nodes for splits;
 * *nspare spares are enough (splits_needed). */
static int insert_at(const struct bt_ctx *c, struct pfs_btree_path *p, const void *rec,
		     uint64_t key, struct pfs_buf **spare, unsigned *nspare)
{
	struct pfs_tree_root *root = c->bt->root;
	const uint8_t *item = rec;
	uint8_t carry[PTR];
	unsigned pos = (unsigned)p->idx[0], h = p->height, l;
	struct pfs_buf *rb;
	uint8_t *rd;
	int ret;

	if (pos == 0) {
		ret = fix_min(c, p, 0, key);
		if (ret)
			return ret;
	}
	for (l = 0; l < h; l++) {
		uint8_t *d = p->d[l];
		unsigned nr = nd_nr(d), cap = lv_cap(c, l), L;
		size_t rsz = lv_rs(c, l);

		ret = pfs_tx_dirty(c->tx, p->b[l]);
		if (ret)
			return ret;
		if (nr < cap) {
			uint8_t *at = d + HDR + pos * rsz;

			memmove(at + rsz, at, (nr - pos) * rsz);
			memcpy(at, item, rsz);
			nd_set_nr(d, nr + 1);
			return 0;
		}
		L = split_point(c, p, l, pos);
		rb = spare[--*nspare];
		rd = pfs_buf_data(rb);
		nd_set_level(rd, l);
		split_insert(d, rd, cap, rsz, pos, item, L);
		nd_set_nr(d, L);
		nd_set_nr(rd, cap + 1 - L);
		st_le64(carry, nd_key(c, rd, l, 0));
		st_le64(carry + 8, pfs_buf_blkno(rb));
		pfs_buf_put(rb);
		item = carry;
		if (l + 1 < h)
			pos = (unsigned)p->idx[l + 1] + 1;
	}
	/* the root split: a new root above the old one and its new sibling */
	rb = spare[--*nspare];
	rd = pfs_buf_data(rb);
	nd_set_level(rd, h);
	st_le64(rd + HDR, nd_key(c, p->d[h - 1], h - 1, 0));
	st_le64(rd + HDR + 8, pfs_buf_blkno(p->b[h - 1]));
	memcpy(rd + HDR + PTR, carry, PTR);
	nd_set_nr(rd, 2);
	root->blkno = pfs_buf_blkno(rb);
	root->height = h + 1;
	pfs_buf_put(rb);
	return 0;
}

/* The first record of an empty tree: a leaf root. */
static int insert_first(const struct bt_ctx *c, const void *rec)
{
	struct pfs_buf *b;
	uint8_t *d;
	int ret;

	ret = pfs_tx_new(c->tx, c->bt->shard, c->ops->magic, c->bt->owner, 0, &b);
	if (ret)
		return ret;
	d = pfs_buf_data(b);
	memcpy(d + HDR, rec, c->rs);
	nd_set_nr(d, 1);
	c->bt->root->blkno = pfs_buf_blkno(b);
	c->bt->root->height = 1;
	pfs_buf_put(b);
	return 0;
}

int pfs_btree_insert(struct pfs_tx *tx, const struct pfs_btree *bt, const void *rec)
{
	struct pfs_btree_path p;
	struct pfs_buf *spare[PFS_BTREE_MAX_HEIGHT + 1];
	unsigned nspare = 0, need, q;
	struct bt_ctx c;
	uint64_t key;
	int ret;

	ret = ctx_init(&c, tx, bt);
	if (ret)
		return ret;
	if (c.ops->rec_check && c.ops->rec_check(rec))
		return -EINVAL;
	key = pfs_btree_rec_key(c.ops, rec);
	for (;;) {
		ret = path_descend(&c, &p, key);
		if (ret == -ENOENT) {
			ret = insert_first(&c, rec);
			goto out;
		}
		if (ret)
			goto out;
		q = (unsigned)p.idx[0];
		if (q < nd_nr(p.d[0]) && nd_key(&c, p.d[0], 0, q) == key) {
			ret = -EEXIST;
			goto out;
		}
		need = splits_needed(&c, &p);
		if (need <= nspare)
			break;
		if (need > PFS_BTREE_MAX_HEIGHT) {
			ret = -EFBIG;
			goto out;
		}
		/* allocate before changing anything, then look again */
		path_put(&p);
		while (nspare < need) {
			ret = pfs_tx_new(tx, bt->shard, c.ops->magic, bt->owner, 0,
					 &spare[nspare]);
			if (ret)
				goto out;
			nspare++;
		}
	}
	ret = insert_at(&c, &p, rec, key, spare, &nspare);
out:
	path_put(&p);
	while (nspare) {
		int r2 = pfs_tx_release(tx, spare[--nspare]);

		if (!ret)
			ret = r2;
	}
	return ret;
}

/* ---- delete ------------------------------------------------------------------ */

/*
 * The node at level l of p is below a quarter: merge it with a sibling
 * under the same parent, or even the two out. Returns 1 when the parent
 * lost an entry (it may be underfull now), 0 when not, or an error.
 */
static int rebalance(const struct bt_ctx *c, struct pfs_btree_path *p, unsigned l)
{
	uint8_t *pd = p->d[l + 1];
	unsigned pn = nd_nr(pd), i = (unsigned)p->idx[l + 1];
	unsigned n = nd_nr(p->d[l]), cap = lv_cap(c, l), an, bn, bi, k;
	size_t rsz = lv_rs(c, l);
	bool left = i > 0;
	bool has_hi = path_has_hi(p, l + 1);
	uint64_t hi = p->hi[l + 1];
	struct pfs_buf *sb, *ab, *bb;
	uint8_t *ad, *bd;
	int ret;

	if (pn < 2)
		return 0;	/* no sibling: the root collapse takes it */
	ret = child_read(c, pd, l + 1, left ? i - 1 : i + 1, &has_hi, &hi, &sb);
	if (ret)
		return ret;
	if (pfs_buf_blkno(sb) == pfs_buf_blkno(p->b[l])) {
		ret = -EUCLEAN;		/* two entries, one child: B4 broken */
		goto out;
	}
	/* A, B: the left and the right one of the pair; bi: B's parent entry */
	ab = left ? sb : p->b[l];
	bb = left ? p->b[l] : sb;
	bi = left ? i : i + 1;
	ad = pfs_buf_data(ab);
	bd = pfs_buf_data(bb);
	an = nd_nr(ad);
	bn = nd_nr(bd);
	ret = pfs_tx_dirty(c->tx, ab);
	if (!ret)
		ret = pfs_tx_dirty(c->tx, p->b[l + 1]);
	if (ret)
		goto out;
	if (n == 0 || an + bn <= cap * 3 / 4) {
		/* merge B into A, drop B and its parent entry */
		memcpy(ad + HDR + (size_t)an * rsz, bd + HDR, (size_t)bn * rsz);
		nd_set_nr(ad, an + bn);
		if (bb == sb)
			sb = NULL;
		else
			p->b[l] = NULL;
		ret = pfs_tx_release(c->tx, bb);
		if (ret)
			goto out;
		memmove(pd + HDR + (size_t)bi * PTR, pd + HDR + (size_t)(bi + 1) * PTR,
			(size_t)(pn - bi - 1) * PTR);
		memset(pd + HDR + (size_t)(pn - 1) * PTR, 0, PTR);
		nd_set_nr(pd, pn - 1);
		ret = 1;
	} else {
		ret = pfs_tx_dirty(c->tx, bb);
		if (ret)
			goto out;
		if (an > bn) {
			k = (an - bn) / 2;
			memmove(bd + HDR + (size_t)k * rsz, bd + HDR, (size_t)bn * rsz);
			memcpy(bd + HDR, ad + HDR + (size_t)(an - k) * rsz, (size_t)k * rsz);
			memset(ad + HDR + (size_t)(an - k) * rsz, 0, (size_t)k * rsz);
			nd_set_nr(ad, an - k);
			nd_set_nr(bd, bn + k);
		} else {
			k = (bn - an) / 2;
			memcpy(ad + HDR + (size_t)an * rsz, bd + HDR, (size_t)k * rsz);
			memmove(bd + HDR, bd + HDR + (size_t)k * rsz, (size_t)(bn - k) * rsz);
			memset(bd + HDR + (size_t)(bn - k) * rsz, 0, (size_t)k * rsz);
			nd_set_nr(ad, an + k);
			nd_set_nr(bd, bn - k);
		}
		st_le64(pd + HDR + (size_t)bi * PTR, nd_key(c, bd, l, 0));
		ret = 0;
	}
	if (!left && n == 0) {
		/* the node was empty (only in a tree that was underfull): its
		 * first key is new */
		int r2 = fix_min(c, p, l, nd_key(c, ad, l, 0));

		if (r2)
			ret = r2;
	}
out:
	pfs_buf_put(sb);
	return ret;
}

/* An interior root with one child gives way to the child, repeatedly. */
static int collapse_root(const struct bt_ctx *c, struct pfs_btree_path *p)
{
	struct pfs_tree_root *root = c->bt->root;
	unsigned h = p->height;
	struct pfs_buf *b = p->b[h - 1];
	int ret = 0;

	p->b[h - 1] = NULL;	/* the reference is ours now */
	while (h > 1 && nd_nr(pfs_buf_data(b)) == 1) {
		uint64_t child = ld_le64(pfs_buf_data(b) + HDR + 8);

		ret = pfs_tx_release(c->tx, b);
		b = NULL;
		if (ret)
			break;
		h--;
		root->blkno = child;
		root->height = h;
		ret = node_read(c, child, h - 1, true, 0, false, 0, &b);
		if (ret)
			break;
	}
	pfs_buf_put(b);
	return ret;
}

/* Remove the record at the leaf position of p and restore B2, B3. */
static int remove_at(const struct bt_ctx *c, struct pfs_btree_path *p)
{
	uint8_t *d = p->d[0];
	unsigned nr = nd_nr(d), q = (unsigned)p->idx[0], h = p->height, l;
	size_t rsz = c->rs;
	int ret;

	ret = pfs_tx_dirty(c->tx, p->b[0]);
	if (ret)
		return ret;
	memmove(d + HDR + q * rsz, d + HDR + (q + 1) * rsz, (nr - q - 1) * rsz);
	memset(d + HDR + (nr - 1) * rsz, 0, rsz);
	nd_set_nr(d, --nr);
	if (nr == 0 && h == 1) {
		ret = pfs_tx_release(c->tx, p->b[0]);
		p->b[0] = NULL;
		c->bt->root->blkno = 0;
		c->bt->root->height = 0;
		return ret;
	}
	if (q == 0 && nr > 0) {
		ret = fix_min(c, p, 0, nd_key(c, d, 0, 0));
		if (ret)
			return ret;
	}
	for (l = 0; l + 1 < h; l++) {
		if (nd_nr(p->d[l]) >= lv_min(c, l))
			break;
		ret = rebalance(c, p, l);
		if (ret <= 0)
			break;
	}
	if (ret < 0)
		return ret;
	return collapse_root(c, p);
}

int pfs_btree_delete(struct pfs_tx *tx, const struct pfs_btree *bt, uint64_t key)
{
	struct pfs_btree_path p;
	struct bt_ctx c;
	unsigned q;
	int ret;

	ret = ctx_init(&c, tx, bt);
	if (ret)
		return ret;
	ret = path_descend(&c, &p, key);
	if (ret)
		goto out;
	q = (unsigned)p.idx[0];
	if (q >= nd_nr(p.d[0]) || nd_key(&c, p.d[0], 0, q) != key) {
		ret = -ENOENT;
		goto out;
	}
	ret = remove_at(&c, &p);
out:
	path_put(&p);
	return ret;
}

/* ---- update, replace ---------------------------------------------------------- */

int pfs_btree_update(struct pfs_tx *tx, const struct pfs_btree *bt, const void *rec)
{
	struct pfs_btree_path p;
	struct bt_ctx c;
	uint64_t key;
	unsigned q;
	int ret;

	ret = ctx_init(&c, tx, bt);
	if (ret)
		return ret;
	if (c.ops->rec_check && c.ops->rec_check(rec))
		return -EINVAL;
	key = pfs_btree_rec_key(c.ops, rec);
	ret = path_descend(&c, &p, key);
	if (ret)
		goto out;
	q = (unsigned)p.idx[0];
	if (q >= nd_nr(p.d[0]) || nd_key(&c, p.d[0], 0, q) != key) {
		ret = -ENOENT;
		goto out;
	}
	ret = pfs_tx_dirty(tx, p.b[0]);
	if (!ret)
		memcpy(nd_rec(&c, p.d[0], 0, q), rec, c.rs);
out:
	path_put(&p);
	return ret;
}

int pfs_btree_replace(struct pfs_tx *tx, const struct pfs_btree *bt, uint64_t old_key,
		      const void *rec)
{
	struct pfs_btree_path p;
	struct bt_ctx c;
	uint64_t key;
	unsigned q, nr, m;
	bool fits;
	int ret;

	ret = ctx_init(&c, tx, bt);
	if (ret)
		return ret;
	if (c.ops->rec_check && c.ops->rec_check(rec))
		return -EINVAL;
	key = pfs_btree_rec_key(c.ops, rec);
	ret = path_descend(&c, &p, old_key);
	if (ret)
		goto out;
	q = (unsigned)p.idx[0];
	nr = nd_nr(p.d[0]);
	if (q >= nr || nd_key(&c, p.d[0], 0, q) != old_key) {
		ret = -ENOENT;
		goto out;
	}
	/* Does key keep the record's place? Between its neighbours in the
	 * leaf, below the leaf's bound, and, as a new first key, not below
	 * the old one unless the leaf is the leftmost. */
	if (q + 1 < nr)
		fits = key < nd_key(&c, p.d[0], 0, q + 1);
	else
		fits = !path_has_hi(&p, 0) || key < p.hi[0];
	if (q > 0) {
		fits = fits && nd_key(&c, p.d[0], 0, q - 1) < key;
	} else if (key < old_key) {
		for (m = 1; m < p.height; m++)
			if (p.idx[m] != 0)
				fits = false;
	}
	if (fits) {
		ret = pfs_tx_dirty(tx, p.b[0]);
		if (ret)
			goto out;
		memcpy(nd_rec(&c, p.d[0], 0, q), rec, c.rs);
		if (q == 0 && key != old_key)
			ret = fix_min(&c, &p, 0, key);
		goto out;
	}
	/* Elsewhere: insert first (all of its allocation happens before any
	 * change, and -EEXIST is found), then delete, which never allocates. */
	path_put(&p);
	ret = pfs_btree_insert(tx, bt, rec);
	if (!ret)
		ret = pfs_btree_delete(tx, bt, old_key);
out:
	path_put(&p);
	return ret;
}

/* ---- destroy ------------------------------------------------------------------ */

/*
 * Release node b and its subtree. Every node's keys are checked in full
 * order (B4) before its children are visited: with B3 this makes the key
 * ranges of any two subtrees disjoint, so no block can be reached, and
 * released, twice.
 */
static int destroy_node(const struct bt_ctx *c, struct pfs_buf *b, unsigned level,
			bool has_hi, uint64_t hi,
			int (*rec_fn)(void *arg, const void *rec), void *arg)
{
	uint8_t *d = pfs_buf_data(b);
	unsigned nr = nd_nr(d), i;
	int ret = keys_sorted(c, d, level) ? 0 : -EUCLEAN;

	for (i = 0; i < nr && !ret; i++) {
		if (level) {
			struct pfs_buf *cb;
			bool chi = has_hi;
			uint64_t hv = hi;

			ret = child_read(c, d, level, i, &chi, &hv, &cb);
			if (!ret)
				ret = destroy_node(c, cb, level - 1, chi, hv, rec_fn, arg);
		} else if (rec_fn) {
			const uint8_t *r = nd_rec(c, d, 0, i);

			if (c->ops->rec_check && c->ops->rec_check(r))
				ret = -EUCLEAN;
			else
				ret = rec_fn(arg, r);
		}
	}
	if (ret) {
		pfs_buf_put(b);
		return ret;
	}
	return pfs_tx_release(c->tx, b);
}

int pfs_btree_destroy(struct pfs_tx *tx, const struct pfs_btree *bt,
		      int (*rec_fn)(void *arg, const void *rec), void *arg)
{
	struct pfs_tree_root *r = bt->root;
	struct pfs_buf *b;
	struct bt_ctx c;
	int ret;

	ret = ctx_init(&c, tx, bt);
	if (ret)
		return ret;
	if (!r->blkno)
		return r->height ? -EUCLEAN : 0;
	if (!r->height || r->height > PFS_BTREE_MAX_HEIGHT)
		return -EUCLEAN;
	ret = node_read(&c, r->blkno, r->height - 1, true, 0, false, 0, &b);
	if (!ret)
		ret = destroy_node(&c, b, r->height - 1, false, 0, rec_fn, arg);
	if (!ret) {
		r->blkno = 0;
		r->height = 0;
	}
	return ret;
}

/* ---- check ---------------------------------------------------------------------- */

struct check_ctx {
	struct bt_ctx c;
	const struct pfs_btree_check_cb *cb;
	struct pfs_btree_stats *st;
	bool have_prev;
	uint8_t prev[PFS_BTREE_REC_MAX];
};

static int check_fail(struct check_ctx *k, uint64_t blkno, unsigned level,
		      const char *why, int err)
{
	k->st->bad_blkno = blkno;
	k->st->bad_level = level;
	k->st->problem = why;
	return err;
}

static int check_node(struct check_ctx *k, uint64_t blkno, unsigned level, bool root,
		      uint64_t lo, bool has_hi, uint64_t hi)
{
	const struct bt_ctx *c = &k->c;
	const struct pfs_btree_check_cb *cb = k->cb;
	struct pfs_btree_stats *st = k->st;
	const char *why;
	struct pfs_buf *b;
	const uint8_t *d;
	unsigned nr, i;
	int ret;

	if (!blkno)
		return check_fail(k, 0, level, "null child pointer", -EUCLEAN);
	ret = pfs_tx_get(c->tx, blkno, &c->exp, &b);
	if (ret)
		return check_fail(k, blkno, level, ret == -EBADMSG ? "bad checksum" :
				  "unreadable, or wrong magic, owner or address", ret);
	d = pfs_buf_data(b);
	nr = nd_nr(d);
	why = node_problem(c, d, level, root, lo, has_hi, hi);
	if (!why && !root && nr < lv_min(c, level))
		why = "node less than a quarter full";
	if (!why && root && level > 0 && nr < 2)
		why = "interior root with a single child";
	if (!why && !keys_sorted(c, d, level))
		why = "keys out of order";
	if (why) {
		ret = check_fail(k, blkno, level, why, -EUCLEAN);
		goto out;
	}
	st->nodes++;
	if (cb && cb->node) {
		ret = cb->node(cb->arg, blkno, level);
		if (ret)
			goto out;
	}
	if (level == 0) {
		st->leaves++;
		st->leaf_slots += lv_cap(c, 0);
		for (i = 0; i < nr; i++) {
			const uint8_t *r = d + HDR + (size_t)i * c->rs;

			if (c->ops->rec_check && c->ops->rec_check(r)) {
				ret = check_fail(k, blkno, 0, "bad record", -EUCLEAN);
				goto out;
			}
			if (k->have_prev && c->ops->rec_order &&
			    c->ops->rec_order(k->prev, r)) {
				ret = check_fail(k, blkno, 0, "records overlap", -EUCLEAN);
				goto out;
			}
			memcpy(k->prev, r, c->rs);
			k->have_prev = true;
			st->records++;
			if (cb && cb->rec) {
				ret = cb->rec(cb->arg, r);
				if (ret)
					goto out;
			}
		}
		goto out;
	}
	for (i = 0; i < nr; i++) {
		const uint8_t *ptr = d + HDR + (size_t)i * PTR;
		bool chi = i + 1 < nr ? true : has_hi;
		uint64_t hv = i + 1 < nr ? ld_le64(ptr + PTR) : hi;

		ret = check_node(k, ld_le64(ptr + 8), level - 1, false, ld_le64(ptr), chi, hv);
		if (ret)
			goto out;
	}
out:
	pfs_buf_put(b);
	return ret;
}

int pfs_btree_check(struct pfs_tx *tx, const struct pfs_btree *bt,
		    const struct pfs_btree_check_cb *cb, struct pfs_btree_stats *st)
{
	struct pfs_btree_stats local;
	struct check_ctx k;
	const struct pfs_tree_root *r = bt->root;
	int ret;

	if (!st)
		st = &local;
	memset(st, 0, sizeof(*st));
	ret = ctx_init(&k.c, tx, bt);
	if (ret)
		return ret;
	k.cb = cb;
	k.st = st;
	k.have_prev = false;
	st->height = r->height;
	if (!r->blkno)
		return r->height ? check_fail(&k, 0, 0, "empty tree with a height", -EUCLEAN) : 0;
	if (!r->height || r->height > PFS_BTREE_MAX_HEIGHT)
		return check_fail(&k, r->blkno, 0, "root height out of range", -EUCLEAN);
	return check_node(&k, r->blkno, r->height - 1, true, 0, false, 0);
}

/* ---- the three trees --------------------------------------------------------------- */

/* Records come from callers' buffers too, which need not be aligned: the
 * validators read fields by offset. */
#define F64(rec, type, field)	ld_le64((const uint8_t *)(rec) + offsetof(type, field))
#define F32(rec, type, field)	ld_le32((const uint8_t *)(rec) + offsetof(type, field))

static int free_check(const void *rec)
{
	uint64_t start = F64(rec, struct pfs_dfree, start);
	uint64_t len = F64(rec, struct pfs_dfree, len);

	if (!start || !len || start + len < start)
		return -EUCLEAN;
	return 0;
}

static int free_order(const void *prev, const void *next)
{
	return F64(prev, struct pfs_dfree, start) + F64(prev, struct pfs_dfree, len) <=
	       F64(next, struct pfs_dfree, start) ? 0 : -EUCLEAN;
}

static int extent_check(const void *rec)
{
	struct pfs_dextent d;
	struct pfs_extent e;

	memcpy(&d, rec, sizeof(d));
	return pfs_extent_from_disk(&d, &e) ? -EUCLEAN : 0;
}

static int extent_order(const void *prev, const void *next)
{
	return F64(prev, struct pfs_dextent, lblk) + F32(prev, struct pfs_dextent, len) <=
	       F64(next, struct pfs_dextent, lblk) ? 0 : -EUCLEAN;
}

static int refcount_check(const void *rec)
{
	uint64_t pblk = F64(rec, struct pfs_drefcount, pblk);
	uint32_t len = F32(rec, struct pfs_drefcount, len);

	if (!pblk || !len || F32(rec, struct pfs_drefcount, refs) < 2 || pblk + len < pblk)
		return -EUCLEAN;
	return 0;
}

static int refcount_order(const void *prev, const void *next)
{
	return F64(prev, struct pfs_drefcount, pblk) + F32(prev, struct pfs_drefcount, len) <=
	       F64(next, struct pfs_drefcount, pblk) ? 0 : -EUCLEAN;
}

const struct pfs_btree_ops pfs_btree_free_ops = {
	.name = "free",
	.magic = POSFS_MAGIC_FREE,
	.rec_size = sizeof(struct pfs_dfree),
	.key_off = offsetof(struct pfs_dfree, start),
	.rec_check = free_check,
	.rec_order = free_order,
};

const struct pfs_btree_ops pfs_btree_extent_ops = {
	.name = "extent",
	.magic = POSFS_MAGIC_EXTENT,
	.rec_size = sizeof(struct pfs_dextent),
	.key_off = offsetof(struct pfs_dextent, lblk),
	.rec_check = extent_check,
	.rec_order = extent_order,
};

const struct pfs_btree_ops pfs_btree_refcount_ops = {
	.name = "refcount",
	.magic = POSFS_MAGIC_REFCOUNT,
	.rec_size = sizeof(struct pfs_drefcount),
	.key_off = offsetof(struct pfs_drefcount, pblk),
	.rec_check = refcount_check,
	.rec_order = refcount_order,
};
