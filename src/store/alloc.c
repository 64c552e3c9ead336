/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The in-memory free-space index of a shard (see alloc.h for the contract).
 *
 * Design. Four in-memory B+trees of 16-byte keys (k0, k1) with a u64
 * value, in nodes of up to BT_MAX entries (64: about 1.5 KiB):
 *
 *   free_by_start   (start, 0)   -> len    the free extents
 *   free_by_len     (len, start) -> 0      the same extents, for best fit
 *   pend_by_start   (start, seq) -> len    pending ranges (start unique)
 *   pend_by_seq     (seq, start) -> len    the same, in release order
 *
 * B+trees rather than red-black trees because this write-path structure
 * is walked at random places (a hint, a freed block): over 100,000
 * extents a binary tree is ~17 dependent cache misses deep, a B+tree
 * three or four nodes, the upper ones staying in cache. Measured on the
 * development VM, one random lookup: ~440 ns in a red-black tree (the
 * first version of this file), ~120 ns here. Each operation is a few
 * descents (best fit: the extent at the hint, the best length, the one
 * nearest the hint, its free_by_start entry, the remainder's new
 * free_by_len entry); bt_delete_at and bt_insert_after skip the descent
 * when the change stays inside one leaf, which is the common case.
 *
 * B+tree rules. Leaves hold the entries and are doubly linked in key
 * order. An interior node of n children keeps n keys; key[0] is unused
 * and key[i] (i >= 1) separates: every key below child i-1 < key[i] <=
 * every key below child i. Separators are lower bounds, not copies kept
 * in step: deleting the first entry of a leaf leaves them valid. Every
 * node but the root holds at least BT_MIN entries; an underfull node
 * borrows from a sibling that has more than BT_MIN, or else merges with
 * it; a root with one child is replaced by that child. An entry's key may
 * change in place only when it keeps its order and no separator can be
 * crossed (bt_rekey); otherwise it is deleted and inserted again.
 *
 * Memory: nodes come from a pool (slabs of SLAB_NODES, a free list,
 * released by pfs_alloc_fini only). Every public function that can add
 * entries first makes sure the pool holds enough spare nodes for its worst
 * case (op_need: every insert it makes splitting up through a new root),
 * so -ENOMEM comes before any change and the operations below that never
 * fail. The steady state does not call malloc.
 *
 * Invariants (checked by pfs_alloc_check):
 *   A1. Free extents are non-empty, end at or before UINT64_MAX, and are
 *       sorted, disjoint and never adjacent (always merged).
 *   A2. free_by_len holds exactly the extents of free_by_start; the
 *       counters are exact.
 *   A3. Pending ranges are non-empty, sorted, disjoint, and overlap no
 *       free extent (adjacency is allowed: ranges of different seqs, or a
 *       range next to free space, stay apart).
 *   A4. pend_by_seq holds exactly the ranges of pend_by_start; the
 *       counters are exact.
 *   A5. Every tree obeys the B+tree rules above: levels uniform, fill,
 *       order within and across nodes, the leaf chain, its entry count.
 */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "store/alloc.h"

/*
 * Entries or children per node. The unit tests also build this file with
 * tiny nodes (-DPFS_ALLOC_BT_MAX=6) so that small models grow deep trees.
 */
#ifndef PFS_ALLOC_BT_MAX
#define PFS_ALLOC_BT_MAX 64
#endif
#define BT_MAX PFS_ALLOC_BT_MAX
#define BT_MIN (BT_MAX / 3)	/* at least, in every node but the root */
#define BT_HEIGHT_MAX 66	/* > 1 + log_BT_MIN(2^64): never reached */
#define SLAB_NODES 64

_Static_assert(BT_MAX >= 6 && BT_MAX <= 1024, "node size");
_Static_assert(2 * BT_MIN - 1 <= BT_MAX && BT_MAX / 2 >= BT_MIN, "fill rules");

struct pfs_alloc_btnode {
	uint16_t n;			/* entries (leaf), children (interior) */
	uint16_t level;			/* 0: leaf */
	struct pfs_alloc_btnode *prev;	/* leaves: neighbours in key order */
	struct pfs_alloc_btnode *next;
	uint64_t k0[BT_MAX];
	uint64_t k1[BT_MAX];
	union {
		uint64_t v[BT_MAX];			/* leaf */
		struct pfs_alloc_btnode *c[BT_MAX];	/* interior */
	} u;
};

struct pfs_alloc_slab {
	struct pfs_alloc_slab *next;
	struct pfs_alloc_btnode node[SLAB_NODES];
};

/* An entry of a tree: a leaf and an index; leaf NULL is "none". */
struct bt_cur {
	struct pfs_alloc_btnode *leaf;
	unsigned i;
};

/* The nodes of a descent, by level (interior levels only). */
struct bt_path {
	struct pfs_alloc_btnode *node[BT_HEIGHT_MAX];
	unsigned idx[BT_HEIGHT_MAX];
};

/* ---- node pool ---------------------------------------------------------- */

static int pool_grow(struct pfs_alloc *a)
{
	struct pfs_alloc_slab *s = malloc(sizeof(*s));

	if (!s)
		return -ENOMEM;
	s->next = a->slabs;
	a->slabs = s;
	for (size_t i = 0; i < SLAB_NODES; i++) {
		s->node[i].next = a->spare;
		a->spare = &s->node[i];
	}
	a->spare_count += SLAB_NODES;
	return 0;
}

static int pool_ensure(struct pfs_alloc *a, size_t nodes)
{
	while (a->spare_count < nodes)
		if (pool_grow(a))
			return -ENOMEM;
	return 0;
}

/* An empty node; the caller made sure of the pool (op_need). */
static struct pfs_alloc_btnode *node_get(struct pfs_alloc *a, uint16_t level)
{
	struct pfs_alloc_btnode *x = a->spare;

	a->spare = x->next;
	a->spare_count--;
	x->n = 0;
	x->level = level;
	x->prev = x->next = NULL;
	return x;
}

static void node_put(struct pfs_alloc *a, struct pfs_alloc_btnode *x)
{
	x->next = a->spare;
	a->spare = x;
	a->spare_count++;
}

static unsigned bt_height(const struct pfs_alloc_bt *t)
{
	return t->root ? t->root->level + 1u : 0u;
}

/*
 * Spare nodes one public operation may need: it makes at most three
 * inserts, each of which splits at most every level and adds a root;
 * counted as four, at the tallest tree's height plus one.
 */
static size_t op_need(const struct pfs_alloc *a)
{
	unsigned h = bt_height(&a->free_by_start);

	if (bt_height(&a->free_by_len) > h)
		h = bt_height(&a->free_by_len);
	if (bt_height(&a->pend_by_start) > h)
		h = bt_height(&a->pend_by_start);
	if (bt_height(&a->pend_by_seq) > h)
		h = bt_height(&a->pend_by_seq);
	return 4 * ((size_t)h + 2);
}

/* ---- B+tree ------------------------------------------------------------- */

/* (a0, a1) < (b0, b1) */
static inline bool kless(uint64_t a0, uint64_t a1, uint64_t b0, uint64_t b1)
{
	return a0 < b0 || (a0 == b0 && a1 < b1);
}

/* The first index in [lo, n) whose key is > (k0, k1), or n. */
static unsigned node_upper(const struct pfs_alloc_btnode *x, unsigned lo, uint64_t k0,
			   uint64_t k1)
{
	unsigned hi = x->n;

	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;

		if (kless(k0, k1, x->k0[mid], x->k1[mid]))
			hi = mid;
		else
			lo = mid + 1;
	}
	return lo;
}

/* The first index whose key is >= (k0, k1), or n. */
static unsigned node_lower(const struct pfs_alloc_btnode *x, uint64_t k0, uint64_t k1)
{
	unsigned lo = 0, hi = x->n;

	while (lo < hi) {
		unsigned mid = (lo + hi) / 2;

		if (kless(x->k0[mid], x->k1[mid], k0, k1))
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The leaf where (k0, k1) is or would be; the tree is not empty. */
static struct pfs_alloc_btnode *bt_descend(const struct pfs_alloc_bt *t, uint64_t k0,
					   uint64_t k1, struct bt_path *p)
{
	struct pfs_alloc_btnode *x = t->root;

	while (x->level) {
		unsigned i = node_upper(x, 1, k0, k1) - 1;

		if (p) {
			p->node[x->level] = x;
			p->idx[x->level] = i;
		}
		x = x->u.c[i];
	}
	return x;
}

static inline uint64_t cur_k0(const struct bt_cur *c)
{
	return c->leaf->k0[c->i];
}

static inline uint64_t cur_k1(const struct bt_cur *c)
{
	return c->leaf->k1[c->i];
}

static inline uint64_t cur_v(const struct bt_cur *c)
{
	return c->leaf->u.v[c->i];
}

static void cur_next(struct bt_cur *c)
{
	if (++c->i >= c->leaf->n) {
		c->leaf = c->leaf->next;
		c->i = 0;
	}
}

static void cur_prev(struct bt_cur *c)
{
	if (c->i) {
		c->i--;
	} else {
		c->leaf = c->leaf->prev;
		c->i = c->leaf ? c->leaf->n - 1u : 0;
	}
}

static void cur_first(const struct pfs_alloc_bt *t, struct bt_cur *c)
{
	struct pfs_alloc_btnode *x = t->root;

	while (x && x->level)
		x = x->u.c[0];
	c->leaf = x;
	c->i = 0;
}

static void cur_last(const struct pfs_alloc_bt *t, struct bt_cur *c)
{
	struct pfs_alloc_btnode *x = t->root;

	while (x && x->level)
		x = x->u.c[x->n - 1];
	c->leaf = x;
	c->i = x ? x->n - 1u : 0;
}

/* The first entry >= (k0, k1). */
static void cur_lower_bound(const struct pfs_alloc_bt *t, uint64_t k0, uint64_t k1,
			    struct bt_cur *c)
{
	if (!t->root) {
		c->leaf = NULL;
		return;
	}
	c->leaf = bt_descend(t, k0, k1, NULL);
	c->i = node_lower(c->leaf, k0, k1);
	if (c->i == c->leaf->n) {
		c->leaf = c->leaf->next;
		c->i = 0;
	}
}

/* The last entry <= (k0, k1). */
static void cur_floor(const struct pfs_alloc_bt *t, uint64_t k0, uint64_t k1,
		      struct bt_cur *c)
{
	if (!t->root) {
		c->leaf = NULL;
		return;
	}
	c->leaf = bt_descend(t, k0, k1, NULL);
	c->i = node_upper(c->leaf, 0, k0, k1);
	cur_prev(c);
}

/* The entry after floor c, or the first entry if c is none. */
static void cur_after(const struct pfs_alloc_bt *t, const struct bt_cur *c,
		      struct bt_cur *next)
{
	if (c->leaf) {
		*next = *c;
		cur_next(next);
	} else {
		cur_first(t, next);
	}
}

/* Open a gap at index i of x (entries i.. move up by one). */
static void node_open(struct pfs_alloc_btnode *x, unsigned i)
{
	unsigned cnt = x->n - i;

	memmove(&x->k0[i + 1], &x->k0[i], cnt * sizeof(x->k0[0]));
	memmove(&x->k1[i + 1], &x->k1[i], cnt * sizeof(x->k1[0]));
	if (x->level)
		memmove(&x->u.c[i + 1], &x->u.c[i], cnt * sizeof(x->u.c[0]));
	else
		memmove(&x->u.v[i + 1], &x->u.v[i], cnt * sizeof(x->u.v[0]));
	x->n++;
}

/* Close the entry at index i of x. */
static void node_close(struct pfs_alloc_btnode *x, unsigned i)
{
	unsigned cnt = x->n - i - 1;

	memmove(&x->k0[i], &x->k0[i + 1], cnt * sizeof(x->k0[0]));
	memmove(&x->k1[i], &x->k1[i + 1], cnt * sizeof(x->k1[0]));
	if (x->level)
		memmove(&x->u.c[i], &x->u.c[i + 1], cnt * sizeof(x->u.c[0]));
	else
		memmove(&x->u.v[i], &x->u.v[i + 1], cnt * sizeof(x->u.v[0]));
	x->n--;
}

/* Append cnt entries of src from index from to dst (same level). */
static void node_append(struct pfs_alloc_btnode *dst, const struct pfs_alloc_btnode *src,
			unsigned from, unsigned cnt)
{
	memcpy(&dst->k0[dst->n], &src->k0[from], cnt * sizeof(dst->k0[0]));
	memcpy(&dst->k1[dst->n], &src->k1[from], cnt * sizeof(dst->k1[0]));
	if (dst->level)
		memcpy(&dst->u.c[dst->n], &src->u.c[from], cnt * sizeof(dst->u.c[0]));
	else
		memcpy(&dst->u.v[dst->n], &src->u.v[from], cnt * sizeof(dst->u.v[0]));
	dst->n += cnt;
}

static void leaf_put(struct pfs_alloc_btnode *x, unsigned i, uint64_t k0, uint64_t k1,
		     uint64_t v)
{
	node_open(x, i);
	x->k0[i] = k0;
	x->k1[i] = k1;
	x->u.v[i] = v;
}

static void interior_put(struct pfs_alloc_btnode *x, unsigned i, uint64_t k0, uint64_t k1,
			 struct pfs_alloc_btnode *child)
{
	node_open(x, i);
	x->k0[i] = k0;
	x->k1[i] = k1;
	x->u.c[i] = child;
}

/*
 * Insert (k0, k1) -> v, a key not in the tree. Needs up to height + 1
 * spare nodes (op_need has made sure of them).
 */
static void bt_insert(struct pfs_alloc *a, struct pfs_alloc_bt *t, uint64_t k0,
		      uint64_t k1, uint64_t v)
{
	const unsigned half = BT_MAX / 2;
	struct bt_path p;
	struct pfs_alloc_btnode *x, *r, *up, *root;
	uint64_t u0, u1;
	unsigned i, top;

	t->count++;
	if (!t->root) {
		x = node_get(a, 0);
		leaf_put(x, 0, k0, k1, v);
		t->root = x;
		return;
	}
	x = bt_descend(t, k0, k1, &p);
	i = node_lower(x, k0, k1);
	if (x->n < BT_MAX) {
		leaf_put(x, i, k0, k1, v);
		return;
	}
	/* Split the leaf: its upper half moves to r, the key goes where it belongs. */
	r = node_get(a, 0);
	node_append(r, x, half, BT_MAX - half);
	x->n = half;
	if (i <= half)
		leaf_put(x, i, k0, k1, v);
	else
		leaf_put(r, i - half, k0, k1, v);
	r->next = x->next;
	if (r->next)
		r->next->prev = r;
	x->next = r;
	r->prev = x;
	u0 = r->k0[0];
	u1 = r->k1[0];
	up = r;

	/* (u0, u1) -> up goes into the parent, which may split in turn. */
	top = t->root->level;
	for (unsigned level = 1; level <= top; level++) {
		struct pfs_alloc_btnode *pn = p.node[level], *q;
		unsigned ci = p.idx[level] + 1;
		uint64_t n0, n1;

		if (pn->n < BT_MAX) {
			interior_put(pn, ci, u0, u1, up);
			return;
		}
		q = node_get(a, (uint16_t)level);
		node_append(q, pn, half, BT_MAX - half);
		pn->n = half;
		n0 = q->k0[0];		/* separates pn from q */
		n1 = q->k1[0];
		if (ci <= half)
			interior_put(pn, ci, u0, u1, up);
		else
			interior_put(q, ci - half, u0, u1, up);
		u0 = n0;
		u1 = n1;
		up = q;
	}
	/* The root split: a new root above it. */
	root = node_get(a, (uint16_t)(top + 1));
	root->n = 2;
	root->k0[0] = root->k1[0] = 0;
	root->u.c[0] = t->root;
	root->k0[1] = u0;
	root->k1[1] = u1;
	root->u.c[1] = up;
	t->root = root;
}

/* Move one entry from left sibling s (child ci - 1 of pn) to x (child ci). */
static void borrow_left(struct pfs_alloc_btnode *pn, unsigned ci,
			struct pfs_alloc_btnode *x, struct pfs_alloc_btnode *s)
{
	unsigned last = s->n - 1u;

	node_open(x, 0);
	if (x->level) {
		x->u.c[0] = s->u.c[last];
		x->k0[1] = pn->k0[ci];		/* x's old first child */
		x->k1[1] = pn->k1[ci];
		pn->k0[ci] = s->k0[last];
		pn->k1[ci] = s->k1[last];
	} else {
		x->k0[0] = s->k0[last];
		x->k1[0] = s->k1[last];
		x->u.v[0] = s->u.v[last];
		pn->k0[ci] = x->k0[0];
		pn->k1[ci] = x->k1[0];
	}
	s->n--;
}

/* Move one entry from right sibling s (child ci + 1 of pn) to x (child ci). */
static void borrow_right(struct pfs_alloc_btnode *pn, unsigned ci,
			 struct pfs_alloc_btnode *x, struct pfs_alloc_btnode *s)
{
	unsigned end = x->n;

	if (x->level) {
		interior_put(x, end, pn->k0[ci + 1], pn->k1[ci + 1], s->u.c[0]);
		pn->k0[ci + 1] = s->k0[1];
		pn->k1[ci + 1] = s->k1[1];
	} else {
		leaf_put(x, end, s->k0[0], s->k1[0], s->u.v[0]);
		pn->k0[ci + 1] = s->k0[1];
		pn->k1[ci + 1] = s->k1[1];
	}
	node_close(s, 0);
}

/* Merge r (child ri of pn) into its left sibling l, and drop r. */
static void merge_right(struct pfs_alloc *a, struct pfs_alloc_btnode *pn, unsigned ri,
			struct pfs_alloc_btnode *l, struct pfs_alloc_btnode *r)
{
	if (l->level) {
		interior_put(l, l->n, pn->k0[ri], pn->k1[ri], r->u.c[0]);
		node_append(l, r, 1, r->n - 1u);
	} else {
		node_append(l, r, 0, r->n);
		l->next = r->next;
		if (l->next)
			l->next->prev = l;
	}
	node_close(pn, ri);
	node_put(a, r);
}

/* Delete key (k0, k1). -ENOENT if it is not there. Never allocates. */
static int bt_delete(struct pfs_alloc *a, struct pfs_alloc_bt *t, uint64_t k0, uint64_t k1)
{
	struct bt_path p;
	struct pfs_alloc_btnode *x;
	unsigned i, level = 0;

	if (!t->root)
		return -ENOENT;
	x = bt_descend(t, k0, k1, &p);
	i = node_lower(x, k0, k1);
	if (i >= x->n || x->k0[i] != k0 || x->k1[i] != k1)
		return -ENOENT;
	node_close(x, i);
	t->count--;
	for (;;) {
		struct pfs_alloc_btnode *pn, *s;
		unsigned ci;

		if (x == t->root) {
			if (!x->n) {
				t->root = NULL;
				node_put(a, x);
			} else if (x->level && x->n == 1) {
				t->root = x->u.c[0];
				node_put(a, x);
			}
			break;
		}
		if (x->n >= BT_MIN)
			break;
		pn = p.node[level + 1];
		ci = p.idx[level + 1];
		if (ci > 0) {
			s = pn->u.c[ci - 1];
			if (s->n > BT_MIN) {
				borrow_left(pn, ci, x, s);
				break;
			}
			merge_right(a, pn, ci, s, x);
		} else {
			s = pn->u.c[1];
			if (s->n > BT_MIN) {
				borrow_right(pn, 0, x, s);
				break;
			}
			merge_right(a, pn, 1, x, s);
		}
		x = pn;
		level++;
	}
	return 0;
}

/*
 * Delete entry c; without a descent when its leaf keeps enough entries
 * (removing an entry never breaks a separator: they are lower bounds).
 */
static void bt_delete_at(struct pfs_alloc *a, struct pfs_alloc_bt *t, const struct bt_cur *c)
{
	struct pfs_alloc_btnode *x = c->leaf;

	if (x->n > BT_MIN || (x == t->root && x->n > 1)) {
		node_close(x, c->i);
		t->count--;
		return;
	}
	bt_delete(a, t, cur_k0(c), cur_k1(c));
}

/*
 * Insert (k0, k1) -> v, a key that sorts right after entry c (or first,
 * if c is none). Without a descent when it lands between two entries of
 * c's leaf and the leaf has room: no separator can be crossed there.
 */
static void bt_insert_after(struct pfs_alloc *a, struct pfs_alloc_bt *t,
			    const struct bt_cur *c, uint64_t k0, uint64_t k1, uint64_t v)
{
	struct pfs_alloc_btnode *x = c->leaf;

	if (x && x->n < BT_MAX && (c->i + 1u < x->n || x == t->root)) {
		leaf_put(x, c->i + 1, k0, k1, v);
		t->count++;
		return;
	}
	bt_insert(a, t, k0, k1, v);
}

/*
 * Change the key of entry c to (k0, k1) and its value to v. The caller
 * guarantees the new key sorts between the entry's neighbours. In place
 * when no separator can be crossed: not lowering a leaf's first key, not
 * raising its last; else by delete and insert (c is then stale).
 */
static void bt_rekey(struct pfs_alloc *a, struct pfs_alloc_bt *t, const struct bt_cur *c,
		     uint64_t k0, uint64_t k1, uint64_t v)
{
	struct pfs_alloc_btnode *x = c->leaf;
	bool up = kless(cur_k0(c), cur_k1(c), k0, k1);

	if (x == t->root || ((c->i > 0 || up) && (c->i + 1u < x->n || !up))) {
		x->k0[c->i] = k0;
		x->k1[c->i] = k1;
		x->u.v[c->i] = v;
		return;
	}
	bt_delete(a, t, cur_k0(c), cur_k1(c));
	bt_insert(a, t, k0, k1, v);
}

/* Set the value of key (k0, k1), which is in the tree. */
static void bt_set(struct pfs_alloc_bt *t, uint64_t k0, uint64_t k1, uint64_t v)
{
	struct bt_cur c;

	cur_lower_bound(t, k0, k1, &c);
	if (c.leaf && cur_k0(&c) == k0 && cur_k1(&c) == k1)
		c.leaf->u.v[c.i] = v;
}

/* Rule A5 below x, whose keys must lie in [lo, hi) where given. */
struct bt_walk {
	const struct pfs_alloc_bt *t;
	const struct pfs_alloc_btnode *last_leaf;
	size_t count;
};

static int bt_check_node(struct bt_walk *w, const struct pfs_alloc_btnode *x,
			 unsigned level, const uint64_t *lo, const uint64_t *hi)
{
	unsigned min = x == w->t->root ? (level ? 2 : 1) : BT_MIN;
	int ret;

	if (level >= BT_HEIGHT_MAX || x->level != level || x->n < min || x->n > BT_MAX)
		return -EUCLEAN;
	for (unsigned i = level ? 1 : 0; i < x->n; i++) {
		if (i > (level ? 1u : 0u) &&
		    !kless(x->k0[i - 1], x->k1[i - 1], x->k0[i], x->k1[i]))
			return -EUCLEAN;
		if (lo && kless(x->k0[i], x->k1[i], lo[0], lo[1]))
			return -EUCLEAN;
		if (hi && !kless(x->k0[i], x->k1[i], hi[0], hi[1]))
			return -EUCLEAN;
	}
	if (!level) {
		if (x->prev != w->last_leaf || (w->last_leaf && w->last_leaf->next != x))
			return -EUCLEAN;
		w->last_leaf = x;
		w->count += x->n;
		return 0;
	}
	for (unsigned i = 0; i < x->n; i++) {
		uint64_t clo[2] = { x->k0[i], x->k1[i] };
		uint64_t chi[2] = { i + 1u < x->n ? x->k0[i + 1] : 0, i + 1u < x->n ? x->k1[i + 1] : 0 };

		if (!x->u.c[i])
			return -EUCLEAN;
		ret = bt_check_node(w, x->u.c[i], level - 1, i ? clo : lo,
				    i + 1u < x->n ? chi : hi);
		if (ret)
			return ret;
	}
	return 0;
}

static int bt_check(const struct pfs_alloc_bt *t)
{
	struct bt_walk w = { .t = t };
	int ret;

	if (!t->root)
		return t->count ? -EUCLEAN : 0;
	ret = bt_check_node(&w, t->root, t->root->level, NULL, NULL);
	if (ret)
		return ret;
	if (w.last_leaf->next || w.count != t->count)
		return -EUCLEAN;
	return 0;
}

/* ---- helpers on the free and pending trees ------------------------------ */

static bool range_valid(uint64_t start, uint64_t len)
{
	return len && len <= UINT64_MAX - start;
}

/* The record holding or preceding block blk of a by-start tree. */
static void start_floor(const struct pfs_alloc_bt *t, uint64_t blk, struct bt_cur *c)
{
	cur_floor(t, blk, UINT64_MAX, c);
}

/* Does [start, end) overlap a record of by-start tree t (len in v)? */
static bool range_overlaps(const struct pfs_alloc_bt *t, uint64_t start, uint64_t end)
{
	struct bt_cur f, n;

	start_floor(t, start, &f);
	if (f.leaf && cur_k0(&f) + cur_v(&f) > start)
		return true;
	cur_after(t, &f, &n);
	return n.leaf && cur_k0(&n) < end;
}

/* ---- life cycle ---------------------------------------------------------- */

int pfs_alloc_init(struct pfs_alloc *a)
{
	*a = (struct pfs_alloc){ 0 };
	return 0;
}

void pfs_alloc_fini(struct pfs_alloc *a)
{
	struct pfs_alloc_slab *s = a->slabs, *next;

	while (s) {
		next = s->next;
		free(s);
		s = next;
	}
	*a = (struct pfs_alloc){ 0 };
}

int pfs_alloc_reserve(struct pfs_alloc *a, size_t calls)
{
	/*
	 * A call consumes at most op_need at one level more than now; the
	 * pool must still hold op_need at that level before the last call.
	 */
	size_t need = op_need(a) + 4;

	if (calls > SIZE_MAX / need)
		return -ENOMEM;
	return pool_ensure(a, calls * need);
}

/* ---- free space --------------------------------------------------------- */

/*
 * Make [start, start + len) free, merging with its neighbours. The pool
 * is ensured. -EEXIST if the range overlaps free space (nothing changed).
 */
static int free_insert(struct pfs_alloc *a, uint64_t start, uint64_t len)
{
	uint64_t end = start + len, pstart = 0, plen = 0, nstart = 0, nlen = 0;
	struct bt_cur prev, next;
	bool join_prev, join_next;

	start_floor(&a->free_by_start, start, &prev);
	cur_after(&a->free_by_start, &prev, &next);
	if (prev.leaf) {
		pstart = cur_k0(&prev);
		plen = cur_v(&prev);
	}
	if (next.leaf) {
		nstart = cur_k0(&next);
		nlen = cur_v(&next);
	}
	if ((prev.leaf && pstart + plen > start) || (next.leaf && nstart < end))
		return -EEXIST;
	join_prev = prev.leaf && pstart + plen == start;
	join_next = next.leaf && nstart == end;
	if (join_prev && join_next) {
		prev.leaf->u.v[prev.i] = plen + len + nlen;
		bt_delete_at(a, &a->free_by_start, &next);
		bt_delete(a, &a->free_by_len, plen, pstart);
		bt_delete(a, &a->free_by_len, nlen, nstart);
		bt_insert(a, &a->free_by_len, plen + len + nlen, pstart, 0);
	} else if (join_prev) {
		prev.leaf->u.v[prev.i] = plen + len;
		bt_delete(a, &a->free_by_len, plen, pstart);
		bt_insert(a, &a->free_by_len, plen + len, pstart, 0);
	} else if (join_next) {
		/* next's start goes down to start; nothing lies between. */
		bt_rekey(a, &a->free_by_start, &next, start, 0, nlen + len);
		bt_delete(a, &a->free_by_len, nlen, nstart);
		bt_insert(a, &a->free_by_len, nlen + len, start, 0);
	} else {
		bt_insert_after(a, &a->free_by_start, &prev, start, 0, len);
		bt_insert(a, &a->free_by_len, len, start, 0);
	}
	a->free_blocks += len;
	return 0;
}

/*
 * Remove [at, at + len) from the free extent at c (free_by_start), which
 * holds it; lc is the same extent in free_by_len if the caller has it
 * (else NULL). The pool is ensured.
 */
static void free_carve(struct pfs_alloc *a, const struct bt_cur *c, const struct bt_cur *lc,
		       uint64_t at, uint64_t len)
{
	uint64_t s = cur_k0(c), l = cur_v(c), end = at + len, e_end = s + l;

	if (lc)
		bt_delete_at(a, &a->free_by_len, lc);
	else
		bt_delete(a, &a->free_by_len, l, s);
	if (at == s && end == e_end) {
		bt_delete_at(a, &a->free_by_start, c);
	} else if (at == s) {
		bt_rekey(a, &a->free_by_start, c, end, 0, l - len);
		bt_insert(a, &a->free_by_len, l - len, end, 0);
	} else if (end == e_end) {
		c->leaf->u.v[c->i] = l - len;
		bt_insert(a, &a->free_by_len, l - len, s, 0);
	} else {
		c->leaf->u.v[c->i] = at - s;
		bt_insert_after(a, &a->free_by_start, c, end, 0, e_end - end);
		bt_insert(a, &a->free_by_len, at - s, s, 0);
		bt_insert(a, &a->free_by_len, e_end - end, end, 0);
	}
	a->free_blocks -= len;
}

int pfs_alloc_add_free(struct pfs_alloc *a, uint64_t start, uint64_t len)
{
	int ret;

	if (!range_valid(start, len))
		return -EINVAL;
	if (range_overlaps(&a->pend_by_start, start, start + len))
		return -EEXIST;
	ret = pool_ensure(a, op_need(a));
	if (ret)
		return ret;
	return free_insert(a, start, len);
}

int pfs_alloc_take(struct pfs_alloc *a, uint64_t start, uint64_t len)
{
	struct bt_cur c;
	int ret;

	if (!range_valid(start, len))
		return -EINVAL;
	start_floor(&a->free_by_start, start, &c);
	if (!c.leaf || cur_k0(&c) + cur_v(&c) < start + len)
		return -ENOENT;
	ret = pool_ensure(a, op_need(a));	/* no tree changes: c stays */
	if (ret)
		return ret;
	free_carve(a, &c, NULL, start, len);
	return 0;
}

/*
 * Of the free extents of length exactly l (there is at least one), the
 * one whose start is nearest hint (ties and no hint: the lowest start):
 * its entry in free_by_len.
 */
static void nearest_of_len(const struct pfs_alloc *a, uint64_t l, uint64_t hint,
			   struct bt_cur *c)
{
	struct bt_cur before;
	bool has_after, has_before;

	if (hint == PFS_ALLOC_NO_HINT) {
		cur_lower_bound(&a->free_by_len, l, 0, c);
		return;
	}
	cur_lower_bound(&a->free_by_len, l, hint, c);
	if (c->leaf) {
		before = *c;
		cur_prev(&before);
	} else {
		cur_last(&a->free_by_len, &before);
	}
	has_after = c->leaf && cur_k0(c) == l;
	has_before = before.leaf && cur_k0(&before) == l;
	/* before < hint <= after */
	if (!has_after || (has_before && hint - cur_k1(&before) <= cur_k1(c) - hint))
		*c = before;
}

/*
 * Allocate len blocks under the policy of pfs_alloc_best_fit (largest:
 * or else all of a largest extent, for pfs_alloc_some). The blocks start
 * at *atp, *lenp of them. -ENOSPC: nothing fits; -ENOMEM.
 */
static int alloc_pick(struct pfs_alloc *a, uint64_t len, uint64_t hint, bool largest,
		      uint64_t *atp, uint64_t *lenp)
{
	struct bt_cur c, lc;
	int ret;

	if (hint != PFS_ALLOC_NO_HINT) {
		start_floor(&a->free_by_start, hint, &c);
		if (c.leaf && cur_k0(&c) + cur_v(&c) > hint && cur_k0(&c) + cur_v(&c) - hint >= len) {
			ret = pool_ensure(a, op_need(a));
			if (ret)
				return ret;
			free_carve(a, &c, NULL, hint, len);
			*atp = hint;
			*lenp = len;
			return 0;
		}
	}
	cur_lower_bound(&a->free_by_len, len, 0, &lc);
	if (!lc.leaf) {
		if (!largest || !a->free_by_len.count)
			return -ENOSPC;
		cur_last(&a->free_by_len, &lc);
		len = cur_k0(&lc);
	}
	nearest_of_len(a, cur_k0(&lc), hint, &lc);
	ret = pool_ensure(a, op_need(a));
	if (ret)
		return ret;
	*atp = cur_k1(&lc);
	*lenp = len;
	start_floor(&a->free_by_start, *atp, &c);
	free_carve(a, &c, &lc, *atp, len);
	return 0;
}

int pfs_alloc_best_fit(struct pfs_alloc *a, uint64_t len, uint64_t hint,
		       uint64_t *start)
{
	uint64_t got;

	if (!len)
		return -EINVAL;
	return alloc_pick(a, len, hint, false, start, &got);
}

int pfs_alloc_some(struct pfs_alloc *a, uint64_t len, uint64_t hint,
		   uint64_t *start, uint64_t *got)
{
	if (!len)
		return -EINVAL;
	return alloc_pick(a, len, hint, true, start, got);
}

uint64_t pfs_alloc_free_blocks(const struct pfs_alloc *a)
{
	return a->free_blocks;
}

size_t pfs_alloc_extent_count(const struct pfs_alloc *a)
{
	return a->free_by_start.count;
}

/* The first record of by-start tree t that ends after blk. */
static void start_from(const struct pfs_alloc_bt *t, uint64_t blk, struct bt_cur *c)
{
	struct bt_cur f;

	start_floor(t, blk, &f);
	if (f.leaf && cur_k0(&f) + cur_v(&f) > blk)
		*c = f;
	else
		cur_after(t, &f, c);
}

int pfs_alloc_find(const struct pfs_alloc *a, uint64_t blk, uint64_t *start,
		   uint64_t *len)
{
	struct bt_cur c;

	start_from(&a->free_by_start, blk, &c);
	if (!c.leaf)
		return -ENOENT;
	*start = cur_k0(&c);
	*len = cur_v(&c);
	return 0;
}

int pfs_alloc_foreach_free(const struct pfs_alloc *a, uint64_t from,
			   pfs_alloc_iter_fn fn, void *arg)
{
	struct bt_cur c;
	int ret;

	for (start_from(&a->free_by_start, from, &c); c.leaf; cur_next(&c)) {
		ret = fn(arg, cur_k0(&c), cur_v(&c), 0);
		if (ret)
			return ret;
	}
	return 0;
}

/* ---- deferred reuse ----------------------------------------------------- */

static void pend_insert(struct pfs_alloc *a, uint64_t start, uint64_t len, uint64_t seq)
{
	bt_insert(a, &a->pend_by_start, start, seq, len);
	bt_insert(a, &a->pend_by_seq, seq, start, len);
	a->pending_blocks += len;
}

static void pend_delete(struct pfs_alloc *a, uint64_t start, uint64_t len, uint64_t seq)
{
	bt_delete(a, &a->pend_by_start, start, seq);
	bt_delete(a, &a->pend_by_seq, seq, start);
	a->pending_blocks -= len;
}

/* Set the length of pending range start (of seq) to len. */
static void pend_resize(struct pfs_alloc *a, const struct bt_cur *c, uint64_t len)
{
	uint64_t start = cur_k0(c), seq = cur_k1(c), old = cur_v(c);

	c->leaf->u.v[c->i] = len;
	bt_set(&a->pend_by_seq, seq, start, len);
	a->pending_blocks = a->pending_blocks - old + len;
}

/*
 * Move the start of pending range c up or down to start, its length to
 * len. The caller guarantees no other range starts in between.
 */
static void pend_move(struct pfs_alloc *a, const struct bt_cur *c, uint64_t start,
		      uint64_t len)
{
	uint64_t ostart = cur_k0(c), seq = cur_k1(c), olen = cur_v(c);
	struct bt_cur q;

	bt_rekey(a, &a->pend_by_start, c, start, seq, len);
	cur_lower_bound(&a->pend_by_seq, seq, ostart, &q);
	/* Same order among seq's ranges: nothing of seq starts in between. */
	bt_rekey(a, &a->pend_by_seq, &q, seq, start, len);
	a->pending_blocks = a->pending_blocks - olen + len;
}

int pfs_alloc_defer(struct pfs_alloc *a, uint64_t start, uint64_t len, uint64_t seq)
{
	uint64_t end = start + len;
	struct bt_cur prev, next;
	bool join_prev, join_next;
	int ret;

	if (!range_valid(start, len))
		return -EINVAL;
	if (range_overlaps(&a->free_by_start, start, end))
		return -EEXIST;
	start_floor(&a->pend_by_start, start, &prev);
	cur_after(&a->pend_by_start, &prev, &next);
	if ((prev.leaf && cur_k0(&prev) + cur_v(&prev) > start) ||
	    (next.leaf && cur_k0(&next) < end))
		return -EEXIST;
	ret = pool_ensure(a, op_need(a));	/* no tree changes: cursors stay */
	if (ret)
		return ret;
	join_prev = prev.leaf && cur_k0(&prev) + cur_v(&prev) == start && cur_k1(&prev) == seq;
	join_next = next.leaf && cur_k0(&next) == end && cur_k1(&next) == seq;
	if (join_prev && join_next) {
		uint64_t nstart = cur_k0(&next), nlen = cur_v(&next);

		pend_resize(a, &prev, cur_v(&prev) + len + nlen);
		pend_delete(a, nstart, nlen, seq);
	} else if (join_prev) {
		pend_resize(a, &prev, cur_v(&prev) + len);
	} else if (join_next) {
		pend_move(a, &next, start, cur_v(&next) + len);
	} else {
		bt_insert_after(a, &a->pend_by_start, &prev, start, seq, len);
		bt_insert(a, &a->pend_by_seq, seq, start, len);
		a->pending_blocks += len;
	}
	return 0;
}

int pfs_alloc_release_upto(struct pfs_alloc *a, uint64_t durable_seq)
{
	struct bt_cur c;
	uint64_t seq, start, len;
	int ret;

	for (;;) {
		cur_first(&a->pend_by_seq, &c);
		if (!c.leaf || cur_k0(&c) > durable_seq)
			return 0;
		seq = cur_k0(&c);
		start = cur_k1(&c);
		len = cur_v(&c);
		ret = pool_ensure(a, op_need(a));
		if (ret)
			return ret;
		if (free_insert(a, start, len))
			return -EUCLEAN;
		/* free_insert left the pending trees alone: c stays. */
		bt_delete_at(a, &a->pend_by_seq, &c);
		bt_delete(a, &a->pend_by_start, start, seq);
		a->pending_blocks -= len;
	}
}

int pfs_alloc_undefer(struct pfs_alloc *a, uint64_t start, uint64_t len)
{
	uint64_t end = start + len, pos, rs, rl;
	struct bt_cur c;
	int ret;

	if (!range_valid(start, len))
		return -EINVAL;
	/* Covered without a gap? */
	start_floor(&a->pend_by_start, start, &c);
	if (!c.leaf || cur_k0(&c) + cur_v(&c) <= start)
		return -ENOENT;
	for (pos = cur_k0(&c) + cur_v(&c); pos < end; pos = cur_k0(&c) + cur_v(&c)) {
		cur_next(&c);
		if (!c.leaf || cur_k0(&c) != pos)
			return -ENOENT;
	}
	ret = pool_ensure(a, op_need(a));
	if (ret)
		return ret;

	for (pos = start; pos < end;) {
		start_floor(&a->pend_by_start, pos, &c);
		rs = cur_k0(&c);
		rl = cur_v(&c);
		if (rs < pos && rs + rl > end) {
			/* Strictly inside one range: split it. */
			uint64_t seq = cur_k1(&c);

			pend_resize(a, &c, pos - rs);
			pend_insert(a, end, rs + rl - end, seq);
			pos = end;
		} else if (rs < pos) {
			pend_resize(a, &c, pos - rs);
			pos = rs + rl;
		} else if (rs + rl > end) {
			/* Keep the tail: no other range starts before it. */
			pend_move(a, &c, end, rs + rl - end);
			pos = end;
		} else {
			pend_delete(a, rs, rl, cur_k1(&c));
			pos = rs + rl;
		}
	}
	return 0;
}

int pfs_alloc_undefer_seq(struct pfs_alloc *a, uint64_t seq)
{
	struct bt_cur c;

	for (;;) {
		cur_lower_bound(&a->pend_by_seq, seq, 0, &c);
		if (!c.leaf || cur_k0(&c) != seq)
			return 0;
		pend_delete(a, cur_k1(&c), cur_v(&c), seq);
	}
}

uint64_t pfs_alloc_pending_blocks(const struct pfs_alloc *a)
{
	return a->pending_blocks;
}

size_t pfs_alloc_pending_count(const struct pfs_alloc *a)
{
	return a->pend_by_start.count;
}

int pfs_alloc_foreach_pending(const struct pfs_alloc *a, pfs_alloc_iter_fn fn,
			      void *arg)
{
	struct bt_cur c;
	int ret;

	for (cur_first(&a->pend_by_start, &c); c.leaf; cur_next(&c)) {
		ret = fn(arg, cur_k0(&c), cur_v(&c), cur_k1(&c));
		if (ret)
			return ret;
	}
	return 0;
}

/* ---- checking ----------------------------------------------------------- */

/* Is (k0, k1) -> v an entry of t? */
static bool bt_has(const struct pfs_alloc_bt *t, uint64_t k0, uint64_t k1, uint64_t v)
{
	struct bt_cur c;

	cur_lower_bound(t, k0, k1, &c);
	return c.leaf && cur_k0(&c) == k0 && cur_k1(&c) == k1 && cur_v(&c) == v;
}

int pfs_alloc_check(const struct pfs_alloc *a)
{
	struct bt_cur c, f;
	uint64_t blocks, prev_end;
	bool first;

	if (bt_check(&a->free_by_start) || bt_check(&a->free_by_len) ||
	    bt_check(&a->pend_by_start) || bt_check(&a->pend_by_seq))
		return -EUCLEAN;

	/* A1, A2 */
	if (a->free_by_len.count != a->free_by_start.count)
		return -EUCLEAN;
	blocks = 0;
	prev_end = 0;
	first = true;
	for (cur_first(&a->free_by_start, &c); c.leaf; cur_next(&c)) {
		if (cur_k1(&c) || !range_valid(cur_k0(&c), cur_v(&c)))
			return -EUCLEAN;
		if (!first && prev_end >= cur_k0(&c))
			return -EUCLEAN;
		blocks += cur_v(&c);
		prev_end = cur_k0(&c) + cur_v(&c);
		first = false;
	}
	if (blocks != a->free_blocks)
		return -EUCLEAN;
	for (cur_first(&a->free_by_len, &c); c.leaf; cur_next(&c))
		if (cur_v(&c) || !bt_has(&a->free_by_start, cur_k1(&c), 0, cur_k0(&c)))
			return -EUCLEAN;

	/* A3, A4 */
	if (a->pend_by_seq.count != a->pend_by_start.count)
		return -EUCLEAN;
	blocks = 0;
	prev_end = 0;
	first = true;
	cur_first(&a->free_by_start, &f);
	for (cur_first(&a->pend_by_start, &c); c.leaf; cur_next(&c)) {
		uint64_t s = cur_k0(&c), e;

		if (!range_valid(s, cur_v(&c)))
			return -EUCLEAN;
		e = s + cur_v(&c);
		if (!first && prev_end > s)
			return -EUCLEAN;
		while (f.leaf && cur_k0(&f) + cur_v(&f) <= s)
			cur_next(&f);
		if (f.leaf && cur_k0(&f) < e)
			return -EUCLEAN;
		blocks += cur_v(&c);
		prev_end = e;
		first = false;
	}
	if (blocks != a->pending_blocks)
		return -EUCLEAN;
	for (cur_first(&a->pend_by_seq, &c); c.leaf; cur_next(&c))
		if (!bt_has(&a->pend_by_start, cur_k1(&c), cur_k0(&c), cur_v(&c)))
			return -EUCLEAN;
	return 0;
}
