/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The generic B+tree (src/store/btree.c) over memtx.
 *
 * Model runs: random insert / delete / update / replace / lookups /
 * cursor walks against an array model, for the free-space, extent and
 * refcount trees, with 4 KiB and 64 KiB blocks, a fixed and a random seed
 * (every failure message starts with the seed). The tree grows and shrinks in phases; batches are
 * committed and a new transaction begun, so every read goes back through
 * block verification; at each commit the tree is iterated both ways and
 * compared with the model, checked with pfs_btree_check, and its nodes
 * must be every block the shard uses. Now and then a batch runs with
 * -ENOSPC injected: the failed insert must leave the tree as it was, and
 * after the abort the tree must be the committed model again. Every run
 * ends by deleting all records: no block may remain.
 *
 * Then: depth 3 with 4 KiB blocks, the split policy's fill, lookup_le/ge
 * and cursors at leaf and key-space boundaries (a test tree keyed at
 * offset 8, keys 0 and UINT64_MAX), error codes, destroy, and corrupt
 * nodes (sealed by a commit, and random byte flips) that must give
 * -EUCLEAN, never a crash; the corrupt-node cases and the fuzz end with a
 * commit, so the error paths too must put every buffer (T3) and dirty
 * what they change (T1).
 *
 * Environment: BTREE_SEED=n replays a random-seed test, BTREE_ONLY=name
 * runs the tests whose name contains it, BTREE_VERBOSE=1 prints what the
 * model runs reached (height, grow cycles, -ENOSPC hits).
 */
#include <check.h>
#include <endian.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "memtx.h"
#include "store/btree.h"

#define SHARD		1u		/* the trees live in shard 1 of 2 */
#define OID		POSFS_OID(1, 1234)

static uint64_t g_seed;
static long g_step;

/* ck_assert_* marks a point per call (a write to the runner); this does not. */
#define EXPECT(cond, fmt, ...)							\
	do {									\
		if (!(cond))							\
			ck_abort_msg("seed %llu step %ld: " fmt,		\
				     (unsigned long long)g_seed, g_step, ##__VA_ARGS__); \
	} while (0)

/* ---- randomness ------------------------------------------------------------ */

struct rng {
	uint64_t s;
};

static uint64_t rnd(struct rng *r)
{
	uint64_t z = (r->s += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static uint64_t rnd_below(struct rng *r, uint64_t n)
{
	return rnd(r) % n;
}

static uint64_t random_seed(unsigned salt)
{
	const char *env = getenv("BTREE_SEED");
	struct timespec ts;

	if (env && *env)
		return strtoull(env, NULL, 0);
	clock_gettime(CLOCK_REALTIME, &ts);
	return ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)ts.tv_nsec ^
	       ((uint64_t)getpid() << 40) ^ salt;
}

/* ---- the kinds of tree and their records ------------------------------------ */

/* Record i of a model sits at key 1 + 16 i and covers at most 16 blocks,
 * so records never overlap whatever their lengths. */
#define STRIDE 16u

static uint64_t slot_key(uint64_t s)
{
	return 1 + STRIDE * s;
}

static void make_free(struct rng *r, uint64_t key, void *rec)
{
	struct pfs_dfree f;

	f.start = htole64(key);
	f.len = htole64(1 + rnd_below(r, STRIDE));
	memcpy(rec, &f, sizeof(f));
}

static void make_extent(struct rng *r, uint64_t key, void *rec)
{
	struct pfs_extent e = { .lblk = key, .pblk = 1 + rnd_below(r, UINT64_C(1) << 40) };
	struct pfs_dextent d;

	e.len = (uint32_t)(1 + rnd_below(r, STRIDE));
	e.plen = e.len;
	switch (rnd_below(r, 4)) {
	case 1:
	case 2:
		e.flags = POSFS_EXTENT_SHARED;
		break;
	case 3:
		e.flags = POSFS_EXTENT_COMPRESSED;
		e.plen = (uint32_t)(1 + rnd_below(r, e.len));
		e.csum = (uint32_t)rnd(r);
		break;
	default:
		break;
	}
	pfs_extent_to_disk(&e, &d);
	memcpy(rec, &d, sizeof(d));
}

static void make_refcount(struct rng *r, uint64_t key, void *rec)
{
	struct pfs_drefcount c;

	c.pblk = htole64(key);
	c.len = htole32((uint32_t)(1 + rnd_below(r, STRIDE)));
	c.refs = htole32((uint32_t)(2 + rnd_below(r, 100000)));
	memcpy(rec, &c, sizeof(c));
}

struct kind {
	const char *name;
	const struct pfs_btree_ops *ops;
	uint64_t owner;
	void (*make)(struct rng *r, uint64_t key, void *rec);
};

static const struct kind kind_free = {
	"free", &pfs_btree_free_ops, POSFS_OWNER_SHARD(SHARD), make_free
};
static const struct kind kind_extent = {
	"extent", &pfs_btree_extent_ops, OID, make_extent
};
static const struct kind kind_refcount = {
	"refcount", &pfs_btree_refcount_ops, POSFS_OWNER_SHARD(SHARD), make_refcount
};

/* ---- environment: a memstore, a transaction and a tree ---------------------- */

struct env {
	struct pfs_memstore *ms;
	struct pfs_tx *tx;
	struct pfs_tree_root root;
	struct pfs_tree_root committed;
	struct pfs_btree bt;
	uint32_t bs;
	uint64_t per_shard;
};

static void env_init(struct env *e, const struct pfs_btree_ops *ops, uint64_t owner,
		     uint32_t bs, uint64_t per_shard)
{
	memset(e, 0, sizeof(*e));
	e->ms = pfs_memstore_create(bs, 2, per_shard);
	e->tx = pfs_memtx_begin(e->ms);
	e->bt.ops = ops;
	e->bt.root = &e->root;
	e->bt.shard = SHARD;
	e->bt.owner = owner;
	e->bs = bs;
	e->per_shard = per_shard;
}

/* Commit, then begin the next transaction ("close and reopen"). */
static void env_commit(struct env *e)
{
	int ret = pfs_memtx_commit(e->tx);

	EXPECT(ret == 0, "commit: %d", ret);
	e->committed = e->root;
	e->tx = pfs_memtx_begin(e->ms);
}

/* Abort, restore the root as a caller does (rule T2), begin again. */
static void env_abort(struct env *e)
{
	pfs_memtx_abort(e->tx);
	e->root = e->committed;
	e->tx = pfs_memtx_begin(e->ms);
}

static void env_fini(struct env *e)
{
	pfs_memtx_abort(e->tx);
	pfs_memstore_destroy(e->ms);
}

/* ---- the model ---------------------------------------------------------------- */

struct model {
	uint32_t nslots;
	uint32_t rs;
	uint64_t count;
	uint8_t *present;	/* per slot */
	uint8_t *recs;		/* per slot, rs bytes */
	uint32_t *list;		/* the present slots, in no order */
	uint32_t *pos;		/* slot -> index in list */
};

static void model_init(struct model *m, uint32_t nslots, uint32_t rs)
{
	m->nslots = nslots;
	m->rs = rs;
	m->count = 0;
	m->present = calloc(nslots, 1);
	m->recs = calloc(nslots, rs);
	m->list = calloc(nslots, sizeof(uint32_t));
	m->pos = calloc(nslots, sizeof(uint32_t));
}

static void model_fini(struct model *m)
{
	free(m->present);
	free(m->recs);
	free(m->list);
	free(m->pos);
}

static void model_copy(struct model *dst, const struct model *src)
{
	dst->count = src->count;
	memcpy(dst->present, src->present, src->nslots);
	memcpy(dst->recs, src->recs, (size_t)src->nslots * src->rs);
	memcpy(dst->list, src->list, src->nslots * sizeof(uint32_t));
	memcpy(dst->pos, src->pos, src->nslots * sizeof(uint32_t));
}

static uint8_t *model_rec(const struct model *m, uint64_t s)
{
	return m->recs + s * m->rs;
}

static void model_set(struct model *m, uint64_t s, const void *rec)
{
	if (!m->present[s]) {
		m->present[s] = 1;
		m->pos[s] = (uint32_t)m->count;
		m->list[m->count++] = (uint32_t)s;
	}
	memcpy(model_rec(m, s), rec, m->rs);
}

static void model_del(struct model *m, uint64_t s)
{
	uint32_t last = m->list[--m->count];

	m->present[s] = 0;
	m->list[m->pos[s]] = last;
	m->pos[last] = m->pos[s];
}

static uint64_t model_pick_present(const struct model *m, struct rng *r)
{
	return m->list[rnd_below(r, m->count)];
}

static uint64_t model_pick_absent(const struct model *m, struct rng *r)
{
	uint64_t s;

	do
		s = rnd_below(r, m->nslots);
	while (m->present[s] && m->count < m->nslots);
	return s;
}

/* Greatest slot with key <= key, or -1. */
static long model_le(const struct model *m, uint64_t key)
{
	long s;

	if (key < 1)
		return -1;
	s = (long)((key - 1) / STRIDE);
	if (s >= (long)m->nslots)
		s = (long)m->nslots - 1;
	for (; s >= 0; s--)
		if (m->present[s])
			return s;
	return -1;
}

/* Smallest slot with key >= key, or -1. */
static long model_ge(const struct model *m, uint64_t key)
{
	uint64_t s = key <= 1 ? 0 : (key - 1 + STRIDE - 1) / STRIDE;

	for (; s < m->nslots; s++)
		if (m->present[s])
			return (long)s;
	return -1;
}

/* ---- whole-tree verification ----------------------------------------------------- */

struct walk {
	uint8_t *seen;
	uint64_t lo, hi;
	uint64_t nodes;
};

static int walk_node(void *arg, uint64_t blkno, unsigned level)
{
	struct walk *w = arg;

	(void)level;
	if (blkno < w->lo || blkno >= w->hi)
		return -ERANGE;		/* not from the tree's shard */
	if (w->seen[blkno - w->lo])
		return -ELOOP;		/* reached twice */
	w->seen[blkno - w->lo] = 1;
	w->nodes++;
	return 0;
}

/*
 * Iterate both ways and compare with the model, then check. fresh: no
 * change in this transaction yet, so the shard's used blocks are exactly
 * the tree's nodes.
 */
static void verify_tree(struct env *e, const struct model *m, bool fresh)
{
	uint8_t rec[PFS_BTREE_REC_MAX];
	struct pfs_btree_cur cur;
	struct pfs_btree_stats st;
	struct walk w = { .lo = SHARD * e->per_shard, .hi = (SHARD + 1) * e->per_shard };
	struct pfs_btree_check_cb cb = { .node = walk_node, .arg = &w };
	uint64_t n = 0;
	long s;
	int ret;

	pfs_btree_cur_init(&cur, e->tx, &e->bt);
	ret = pfs_btree_cur_seek(&cur, 0, rec);
	for (s = 0; s < (long)m->nslots; s++) {
		if (!m->present[s])
			continue;
		EXPECT(ret == 0, "forward walk: %d at slot %ld", ret, s);
		EXPECT(!memcmp(rec, model_rec(m, (uint64_t)s), m->rs),
		       "forward walk: record differs at slot %ld", s);
		ret = pfs_btree_cur_next(&cur, rec);
		n++;
	}
	EXPECT(ret == -ENOENT, "forward walk: %d past the end", ret);
	EXPECT(n == m->count, "forward walk: %llu records", (unsigned long long)n);
	ret = pfs_btree_cur_seek_le(&cur, UINT64_MAX, rec);
	for (s = (long)m->nslots - 1; s >= 0; s--) {
		if (!m->present[s])
			continue;
		EXPECT(ret == 0, "backward walk: %d at slot %ld", ret, s);
		EXPECT(!memcmp(rec, model_rec(m, (uint64_t)s), m->rs),
		       "backward walk: record differs at slot %ld", s);
		ret = pfs_btree_cur_prev(&cur, rec);
	}
	EXPECT(ret == -ENOENT, "backward walk: %d past the start", ret);
	pfs_btree_cur_release(&cur);

	w.seen = calloc(e->per_shard, 1);
	ret = pfs_btree_check(e->tx, &e->bt, &cb, &st);
	free(w.seen);
	EXPECT(ret == 0, "check: %d, %s at block %llu level %u", ret,
	       st.problem ? st.problem : "-", (unsigned long long)st.bad_blkno, st.bad_level);
	EXPECT(st.records == m->count, "check counted %llu records, model %llu",
	       (unsigned long long)st.records, (unsigned long long)m->count);
	EXPECT(st.height == e->root.height, "height");
	EXPECT(st.nodes == w.nodes, "node callback");
	EXPECT((e->root.blkno == 0) == (m->count == 0), "root of an empty tree");
	if (fresh) {
		EXPECT(pfs_memstore_used(e->ms, SHARD) == st.nodes,
		       "shard uses %llu blocks, the tree has %llu nodes",
		       (unsigned long long)pfs_memstore_used(e->ms, SHARD),
		       (unsigned long long)st.nodes);
		EXPECT(pfs_memstore_used(e->ms, 0) == 0, "blocks taken from shard 0");
	}
}

/* ---- random operations ------------------------------------------------------------ */

static void op_insert(struct env *e, const struct kind *k, struct model *m, struct rng *r)
{
	uint8_t rec[PFS_BTREE_REC_MAX];
	uint64_t s = rnd_below(r, 100) < 85 ? model_pick_absent(m, r) : rnd_below(r, m->nslots);
	int ret;

	k->make(r, slot_key(s), rec);
	ret = pfs_btree_insert(e->tx, &e->bt, rec);
	EXPECT(ret == (m->present[s] ? -EEXIST : 0), "insert slot %llu: %d",
	       (unsigned long long)s, ret);
	if (!ret)
		model_set(m, s, rec);
}

static void op_delete(struct env *e, struct model *m, struct rng *r)
{
	uint64_t s = m->count && rnd_below(r, 100) < 85 ? model_pick_present(m, r)
						       : rnd_below(r, m->nslots);
	int ret = pfs_btree_delete(e->tx, &e->bt, slot_key(s));

	EXPECT(ret == (m->present[s] ? 0 : -ENOENT), "delete slot %llu: %d",
	       (unsigned long long)s, ret);
	if (!ret)
		model_del(m, s);
}

static void op_update(struct env *e, const struct kind *k, struct model *m, struct rng *r)
{
	uint8_t rec[PFS_BTREE_REC_MAX];
	uint64_t s = m->count && rnd_below(r, 100) < 80 ? model_pick_present(m, r)
						       : rnd_below(r, m->nslots);
	int ret;

	k->make(r, slot_key(s), rec);
	ret = pfs_btree_update(e->tx, &e->bt, rec);
	EXPECT(ret == (m->present[s] ? 0 : -ENOENT), "update slot %llu: %d",
	       (unsigned long long)s, ret);
	if (!ret)
		model_set(m, s, rec);
}

static int op_replace(struct env *e, const struct kind *k, struct model *m, struct rng *r)
{
	uint8_t rec[PFS_BTREE_REC_MAX];
	uint64_t o = m->count && rnd_below(r, 100) < 85 ? model_pick_present(m, r)
						       : rnd_below(r, m->nslots);
	int64_t n = (int64_t)o;
	int ret, want;

	if (rnd_below(r, 100) < 70)
		n += (int64_t)rnd_below(r, 5) - 2;	/* near: usually the fast path */
	else
		n = (int64_t)rnd_below(r, m->nslots);
	if (n < 0)
		n = 0;
	if (n >= (int64_t)m->nslots)
		n = (int64_t)m->nslots - 1;
	k->make(r, slot_key((uint64_t)n), rec);
	ret = pfs_btree_replace(e->tx, &e->bt, slot_key(o), rec);
	if (ret == -ENOSPC)
		return ret;
	want = !m->present[o] ? -ENOENT : (uint64_t)n != o && m->present[n] ? -EEXIST : 0;
	EXPECT(ret == want, "replace slot %llu by %lld: %d, want %d",
	       (unsigned long long)o, (long long)n, ret, want);
	if (!ret) {
		model_del(m, o);
		model_set(m, (uint64_t)n, rec);
	}
	return ret;
}

static void op_lookup(struct env *e, struct model *m, struct rng *r)
{
	uint8_t rec[PFS_BTREE_REC_MAX];
	uint64_t s = m->count && rnd_below(r, 2) ? model_pick_present(m, r)
						: rnd_below(r, m->nslots);
	uint64_t key = slot_key(s) + (rnd_below(r, 8) == 0);	/* sometimes between keys */
	bool there = m->present[s] && key == slot_key(s);
	int ret = pfs_btree_lookup(e->tx, &e->bt, key, rec);

	EXPECT(ret == (there ? 0 : -ENOENT), "lookup %llu: %d", (unsigned long long)key, ret);
	if (there)
		EXPECT(!memcmp(rec, model_rec(m, s), m->rs), "lookup %llu: record differs",
		       (unsigned long long)key);
}

static void op_lege(struct env *e, struct model *m, struct rng *r)
{
	uint8_t rec[PFS_BTREE_REC_MAX];
	uint64_t key = rnd_below(r, slot_key(m->nslots) + 40);
	bool le = rnd_below(r, 2);
	long s = le ? model_le(m, key) : model_ge(m, key);
	int ret = le ? pfs_btree_lookup_le(e->tx, &e->bt, key, rec)
		     : pfs_btree_lookup_ge(e->tx, &e->bt, key, rec);

	EXPECT(ret == (s >= 0 ? 0 : -ENOENT), "lookup_%s %llu: %d", le ? "le" : "ge",
	       (unsigned long long)key, ret);
	if (s >= 0)
		EXPECT(!memcmp(rec, model_rec(m, (uint64_t)s), m->rs),
		       "lookup_%s %llu: record differs", le ? "le" : "ge",
		       (unsigned long long)key);
}

static void op_cursor(struct env *e, struct model *m, struct rng *r)
{
	uint8_t rec[PFS_BTREE_REC_MAX];
	struct pfs_btree_cur cur;
	uint64_t key = rnd_below(r, slot_key(m->nslots) + 40);
	bool le = rnd_below(r, 2);
	int dir = le ? -1 : 1;
	long pos, steps = (long)rnd_below(r, 300);
	int ret;

	pfs_btree_cur_init(&cur, e->tx, &e->bt);
	pos = le ? model_le(m, key) : model_ge(m, key);
	ret = le ? pfs_btree_cur_seek_le(&cur, key, rec) : pfs_btree_cur_seek(&cur, key, rec);
	if (pos < 0)
		pos = le ? -1 : (long)m->nslots;	/* before the first / after the last */
	for (long i = 0;; i++) {
		bool there = pos >= 0 && pos < (long)m->nslots;

		EXPECT(ret == (there ? 0 : -ENOENT), "cursor from %llu, step %ld: %d",
		       (unsigned long long)key, i, ret);
		if (there)
			EXPECT(!memcmp(rec, model_rec(m, (uint64_t)pos), m->rs),
			       "cursor from %llu, step %ld: record differs",
			       (unsigned long long)key, i);
		if (i == steps)
			break;
		if (rnd_below(r, 10) == 0)
			dir = -dir;
		do
			pos += dir;
		while (pos >= 0 && pos < (long)m->nslots && !m->present[pos]);
		if (pos < 0)
			pos = -1;
		if (pos > (long)m->nslots)
			pos = (long)m->nslots;
		ret = dir > 0 ? pfs_btree_cur_next(&cur, rec) : pfs_btree_cur_prev(&cur, rec);
	}
	pfs_btree_cur_release(&cur);
}

static void random_op(struct env *e, const struct kind *k, struct model *m, struct rng *r,
		      bool grow)
{
	unsigned w = (unsigned)rnd_below(r, 100);

	if (w < (grow ? 62u : 8u))
		op_insert(e, k, m, r);
	else if (w < 70)
		op_delete(e, m, r);
	else if (w < 77)
		op_update(e, k, m, r);
	else if (w < 84)
		op_replace(e, k, m, r);
	else if (w < 89)
		op_lookup(e, m, r);
	else if (w < 96)
		op_lege(e, m, r);
	else
		op_cursor(e, m, r);
}

/*
 * From a committed state: run inserts (and a few deletes and replaces)
 * with allocations failing after a few, until one fails with -ENOSPC. That
 * one must have changed nothing; after the abort the tree is the committed
 * model. The inserts go to consecutive free slots from a random one, so
 * one leaf fills up and splits soon even with 64 KiB blocks. Returns 1
 * when -ENOSPC was hit.
 */
static int enospc_round(struct env *e, const struct kind *k, struct model *m,
			const struct model *mc, struct rng *r)
{
	uint8_t rec[PFS_BTREE_REC_MAX];
	uint64_t s = rnd_below(r, m->nslots);
	int hit = 0;

	pfs_memstore_fail_after(e->ms, (long)rnd_below(r, 3));
	for (int i = 0; i < 6000 && !hit && m->count + 100 < m->nslots; i++) {
		unsigned w = (unsigned)rnd_below(r, 100);
		int ret;

		if (w < 10 && m->count) {
			op_delete(e, m, r);	/* never allocates: must work */
			continue;
		}
		if (w < 20) {
			hit = op_replace(e, k, m, r) == -ENOSPC;
		} else {
			while (m->present[s])
				s = (s + 1) % m->nslots;
			k->make(r, slot_key(s), rec);
			ret = pfs_btree_insert(e->tx, &e->bt, rec);
			hit = ret == -ENOSPC;
			EXPECT(hit || ret == 0, "insert under ENOSPC: %d", ret);
			if (!ret)
				model_set(m, s, rec);
		}
		if (hit)
			verify_tree(e, m, false);	/* the failed call changed nothing */
	}
	pfs_memstore_fail_after(e->ms, -1);
	env_abort(e);
	model_copy(m, mc);
	verify_tree(e, m, true);
	return hit;
}

/* Delete every record in random order; at the end no block is in use. */
static void drain(struct env *e, struct model *m, struct rng *r, uint32_t *max_height_seen)
{
	uint32_t last_height = e->root.height;
	long n = 0;

	while (m->count) {
		uint64_t s = model_pick_present(m, r);
		int ret = pfs_btree_delete(e->tx, &e->bt, slot_key(s));

		EXPECT(ret == 0, "drain: delete slot %llu: %d", (unsigned long long)s, ret);
		model_del(m, s);
		EXPECT(e->root.height <= last_height, "height grew on a delete");
		last_height = e->root.height;
		if (max_height_seen && e->root.height > *max_height_seen)
			*max_height_seen = e->root.height;
		if (++n % 1000 == 0) {
			env_commit(e);
			if (n % 8000 == 0)
				verify_tree(e, m, true);
		}
	}
	EXPECT(e->root.blkno == 0 && e->root.height == 0, "empty tree root {%llu, %u}",
	       (unsigned long long)e->root.blkno, e->root.height);
	env_commit(e);
	EXPECT(pfs_memstore_used(e->ms, SHARD) == 0, "%llu blocks left in use",
	       (unsigned long long)pfs_memstore_used(e->ms, SHARD));
	verify_tree(e, m, true);
}

/*
 * nops random operations on a tree of kind k; keys from nslots slots; the
 * tree grows to hi records, shrinks to hi / 16, grows again...
 */
static void model_run(const struct kind *k, uint32_t bs, uint64_t seed, long nops,
		      uint32_t nslots, uint32_t hi)
{
	struct env e;
	struct model m, mc;
	struct rng r = { seed };
	uint32_t max_height = 0;
	long batch = 1;
	int enospc = 0, rounds = 0, cycles = 0;
	bool grow = true;

	g_seed = seed;
	env_init(&e, k->ops, k->owner, bs, 4096);
	model_init(&m, nslots, k->ops->rec_size);
	model_init(&mc, nslots, k->ops->rec_size);
	for (g_step = 0; g_step < nops; g_step++) {
		random_op(&e, k, &m, &r, grow);
		if (grow && m.count >= hi) {
			grow = false;
			cycles++;
		} else if (!grow && m.count <= hi / 16) {
			grow = true;
		}
		if (e.root.height > max_height)
			max_height = e.root.height;
		if (--batch == 0) {
			env_commit(&e);
			model_copy(&mc, &m);
			verify_tree(&e, &m, true);
			if (rnd_below(&r, 10) == 0) {
				rounds++;
				enospc += enospc_round(&e, k, &m, &mc, &r);
			}
			batch = 1 + (long)rnd_below(&r, 800);
		}
	}
	env_commit(&e);
	verify_tree(&e, &m, true);
	EXPECT(enospc > 0, "ENOSPC never hit in %d rounds", rounds);
	EXPECT(max_height >= 2, "the %s tree never grew past one leaf", k->name);
	EXPECT(cycles >= 1, "the %s tree never reached %u records", k->name, hi);
	if (getenv("BTREE_VERBOSE"))
		printf("%s/%u seed %llu: %ld ops, height <= %u, %d grow cycles, "
		       "ENOSPC in %d of %d rounds\n", k->name, bs, (unsigned long long)seed,
		       nops, max_height, cycles, enospc, rounds);
	drain(&e, &m, &r, NULL);
	model_fini(&m);
	model_fini(&mc);
	env_fini(&e);
}

START_TEST(model_free_4k_fixed)
{
	model_run(&kind_free, 4096, 0x5eed0001, 120000, 40000, 12000);
}
END_TEST

START_TEST(model_free_4k_random)
{
	model_run(&kind_free, 4096, random_seed(1), 120000, 40000, 12000);
}
END_TEST

START_TEST(model_extent_4k_fixed)
{
	model_run(&kind_extent, 4096, 0x5eed0002, 120000, 40000, 12000);
}
END_TEST

START_TEST(model_extent_4k_random)
{
	model_run(&kind_extent, 4096, random_seed(2), 120000, 40000, 12000);
}
END_TEST

START_TEST(model_refcount_4k)
{
	model_run(&kind_refcount, 4096, 0x5eed0003, 40000, 20000, 6000);
}
END_TEST

START_TEST(model_free_64k_fixed)
{
	model_run(&kind_free, 65536, 0x5eed0004, 100000, 120000, 24000);
}
END_TEST

START_TEST(model_free_64k_random)
{
	model_run(&kind_free, 65536, random_seed(3), 100000, 120000, 24000);
}
END_TEST

START_TEST(model_extent_64k_fixed)
{
	model_run(&kind_extent, 65536, 0x5eed0005, 100000, 120000, 24000);
}
END_TEST

START_TEST(model_extent_64k_random)
{
	model_run(&kind_extent, 65536, random_seed(4), 100000, 120000, 24000);
}
END_TEST

/* ---- depth and fill ----------------------------------------------------------- */

/* 4 KiB blocks, enough records in random order for three levels, random
 * operations at that depth, then back to nothing through 2 and 1. */
START_TEST(depth3_free_4k)
{
	const uint32_t nslots = 80000, ninsert = 60000;
	struct env e;
	struct model m, mc;
	struct rng r = { random_seed(5) };
	uint32_t *perm = malloc(nslots * sizeof(uint32_t));
	uint8_t rec[PFS_BTREE_REC_MAX];

	g_seed = r.s;
	env_init(&e, &pfs_btree_free_ops, kind_free.owner, 4096, 8192);
	model_init(&m, nslots, 16);
	model_init(&mc, nslots, 16);
	for (uint32_t i = 0; i < nslots; i++)
		perm[i] = i;
	for (uint32_t i = nslots - 1; i > 0; i--) {
		uint32_t j = (uint32_t)rnd_below(&r, i + 1), t = perm[i];

		perm[i] = perm[j];
		perm[j] = t;
	}
	for (g_step = 0; g_step < (long)ninsert; g_step++) {
		int ret;

		make_free(&r, slot_key(perm[g_step]), rec);
		ret = pfs_btree_insert(e.tx, &e.bt, rec);
		EXPECT(ret == 0, "insert: %d", ret);
		model_set(&m, perm[g_step], rec);
		if (g_step % 5000 == 4999)
			env_commit(&e);
	}
	env_commit(&e);
	EXPECT(e.root.height >= 3, "height %u with %u records", e.root.height, ninsert);
	verify_tree(&e, &m, true);
	for (g_step = 0; g_step < 20000; g_step++) {
		random_op(&e, &kind_free, &m, &r, g_step % 8000 < 4000);
		if (g_step % 2000 == 1999) {
			env_commit(&e);
			model_copy(&mc, &m);
		}
	}
	env_commit(&e);
	model_copy(&mc, &m);
	verify_tree(&e, &m, true);
	EXPECT(e.root.height >= 3, "height %u after random operations", e.root.height);
	EXPECT(enospc_round(&e, &kind_free, &m, &mc, &r) == 1, "no ENOSPC at depth 3");
	drain(&e, &m, &r, NULL);
	free(perm);
	model_fini(&m);
	model_fini(&mc);
	env_fini(&e);
}
END_TEST

static double fill_after(int order, uint32_t n, uint32_t *height)
{
	struct env e;
	struct pfs_btree_stats st;
	struct rng r = { 42 };
	uint8_t rec[16];
	int ret;

	env_init(&e, &pfs_btree_free_ops, kind_free.owner, 4096, 4096);
	for (uint32_t i = 0; i < n; i++) {
		uint64_t s = order > 0 ? i : order < 0 ? n - 1 - i : rnd_below(&r, 1u << 30);

		make_free(&r, slot_key(s), rec);
		ret = pfs_btree_insert(e.tx, &e.bt, rec);
		EXPECT(ret == 0 || (order == 0 && ret == -EEXIST), "insert: %d", ret);
	}
	env_commit(&e);
	ret = pfs_btree_check(e.tx, &e.bt, NULL, &st);
	EXPECT(ret == 0, "check: %d %s", ret, st.problem ? st.problem : "");
	*height = st.height;
	env_fini(&e);
	return (double)st.records / (double)st.leaf_slots;
}

/* Appends and prepends split 3:1 and leave leaves 3/4 full; random order
 * splits in halves. */
START_TEST(split_policy_fill)
{
	uint32_t h;
	double up = fill_after(1, 30000, &h), down, rand;

	g_seed = 42;
	EXPECT(up > 0.74, "ascending fill %.3f", up);
	EXPECT(h == 2, "ascending height %u", h);
	down = fill_after(-1, 30000, &h);
	EXPECT(down > 0.74, "descending fill %.3f", down);
	rand = fill_after(0, 30000, &h);
	EXPECT(rand > 0.55 && rand < 0.85, "random fill %.3f", rand);
}
END_TEST

/* ---- boundaries ---------------------------------------------------------------- */

/* A test tree: 24-byte records keyed at offset 8, no validator, any key. */
struct trec {
	uint64_t a;
	uint64_t key;
	uint64_t b;
};

static const struct pfs_btree_ops test_ops = {
	.name = "test",
	.magic = POSFS_MAGIC4('T', 'E', 'S', 'T'),
	.rec_size = sizeof(struct trec),
	.key_off = offsetof(struct trec, key),
};

static struct trec trec_make(uint64_t key)
{
	struct trec t = { .a = htole64(~key), .key = htole64(key), .b = htole64(key * 7 + 3) };

	return t;
}

static void expect_trec(const struct trec *t, uint64_t key, const char *what)
{
	struct trec w = trec_make(key);

	EXPECT(!memcmp(t, &w, sizeof(w)), "%s: got key %llu, want %llu", what,
	       (unsigned long long)le64toh(t->key), (unsigned long long)key);
}

static int leaf_first_key(void *arg, uint64_t blkno, unsigned level)
{
	uint64_t *leaves = arg;

	if (level == 0 && leaves[0] < 255)
		leaves[++leaves[0]] = blkno;
	return 0;
}

START_TEST(lookup_and_cursor_boundaries)
{
	enum { N = 1000 };
	uint64_t keys[N + 2], leaves[256] = { 0 };
	struct pfs_btree_check_cb cb = { .node = leaf_first_key, .arg = leaves };
	struct pfs_btree_cur cur;
	struct env e;
	struct trec t;
	size_t nk = 0, i;
	int ret;

	g_seed = 0;
	env_init(&e, &test_ops, OID, 4096, 1024);
	/* empty tree */
	EXPECT(pfs_btree_lookup(e.tx, &e.bt, 0, &t) == -ENOENT, "empty lookup");
	EXPECT(pfs_btree_lookup_le(e.tx, &e.bt, UINT64_MAX, &t) == -ENOENT, "empty le");
	EXPECT(pfs_btree_lookup_ge(e.tx, &e.bt, 0, &t) == -ENOENT, "empty ge");
	EXPECT(pfs_btree_delete(e.tx, &e.bt, 5) == -ENOENT, "empty delete");
	t = trec_make(5);
	EXPECT(pfs_btree_update(e.tx, &e.bt, &t) == -ENOENT, "empty update");
	EXPECT(pfs_btree_replace(e.tx, &e.bt, 5, &t) == -ENOENT, "empty replace");
	pfs_btree_cur_init(&cur, e.tx, &e.bt);
	EXPECT(pfs_btree_cur_seek(&cur, 0, &t) == -ENOENT, "empty seek");
	EXPECT(pfs_btree_cur_next(&cur, &t) == -ENOENT, "empty next");
	EXPECT(pfs_btree_cur_prev(&cur, &t) == -ENOENT, "empty prev");
	EXPECT(pfs_btree_cur_seek_le(&cur, UINT64_MAX, &t) == -ENOENT, "empty seek_le");
	pfs_btree_cur_release(&cur);
	EXPECT(pfs_btree_check(e.tx, &e.bt, NULL, NULL) == 0, "empty check");
	EXPECT(pfs_btree_destroy(e.tx, &e.bt, NULL, NULL) == 0, "empty destroy");

	/* keys 0, 3, 6, ... and the two largest; inserted from both ends */
	keys[nk++] = 0;
	for (i = 1; i < N; i++)
		keys[nk++] = 3 * i;
	keys[nk++] = UINT64_MAX - 1;
	keys[nk++] = UINT64_MAX;
	for (i = 0; i < nk; i++) {
		size_t j = i % 2 ? nk - 1 - i / 2 : i / 2;

		t = trec_make(keys[j]);
		ret = pfs_btree_insert(e.tx, &e.bt, &t);
		EXPECT(ret == 0, "insert %llu: %d", (unsigned long long)keys[j], ret);
	}
	env_commit(&e);
	EXPECT(pfs_btree_check(e.tx, &e.bt, &cb, NULL) == 0, "check");
	EXPECT(leaves[0] >= 5, "only %llu leaves", (unsigned long long)leaves[0]);

	/* every key and its two neighbours, exact / le / ge */
	for (i = 0; i < nk; i++) {
		uint64_t k = keys[i];

		EXPECT(pfs_btree_lookup(e.tx, &e.bt, k, &t) == 0, "lookup %llu",
		       (unsigned long long)k);
		expect_trec(&t, k, "lookup");
		EXPECT(pfs_btree_lookup_le(e.tx, &e.bt, k, &t) == 0, "le");
		expect_trec(&t, k, "le exact");
		EXPECT(pfs_btree_lookup_ge(e.tx, &e.bt, k, &t) == 0, "ge");
		expect_trec(&t, k, "ge exact");
		if (k > 0 && (i == 0 || keys[i - 1] != k - 1)) {
			EXPECT(pfs_btree_lookup(e.tx, &e.bt, k - 1, NULL) == -ENOENT, "lookup -1");
			ret = pfs_btree_lookup_le(e.tx, &e.bt, k - 1, &t);
			EXPECT(ret == (i ? 0 : -ENOENT), "le below %llu: %d",
			       (unsigned long long)k, ret);
			if (i)
				expect_trec(&t, keys[i - 1], "le below");
			EXPECT(pfs_btree_lookup_ge(e.tx, &e.bt, k - 1, &t) == 0, "ge below");
			expect_trec(&t, k, "ge below");
		}
		if (k < UINT64_MAX && (i + 1 == nk || keys[i + 1] != k + 1)) {
			ret = pfs_btree_lookup_ge(e.tx, &e.bt, k + 1, &t);
			EXPECT(ret == (i + 1 < nk ? 0 : -ENOENT), "ge above %llu: %d",
			       (unsigned long long)k, ret);
			if (i + 1 < nk)
				expect_trec(&t, keys[i + 1], "ge above");
			EXPECT(pfs_btree_lookup_le(e.tx, &e.bt, k + 1, &t) == 0, "le above");
			expect_trec(&t, k, "le above");
		}
	}

	/* cursor: all the way forward, off the end, back, off the start */
	pfs_btree_cur_init(&cur, e.tx, &e.bt);
	EXPECT(pfs_btree_cur_seek(&cur, 0, &t) == 0, "seek 0");
	for (i = 0; i < nk; i++) {
		expect_trec(&t, keys[i], "forward");
		ret = pfs_btree_cur_next(&cur, &t);
		EXPECT(ret == (i + 1 < nk ? 0 : -ENOENT), "next: %d", ret);
	}
	EXPECT(pfs_btree_cur_next(&cur, &t) == -ENOENT, "next past the end, again");
	for (i = nk; i-- > 0;) {
		EXPECT(pfs_btree_cur_prev(&cur, &t) == 0, "prev");
		expect_trec(&t, keys[i], "backward");
	}
	EXPECT(pfs_btree_cur_prev(&cur, &t) == -ENOENT, "prev past the start");
	EXPECT(pfs_btree_cur_prev(&cur, &t) == -ENOENT, "prev past the start, again");
	EXPECT(pfs_btree_cur_next(&cur, &t) == 0, "next from before the start");
	expect_trec(&t, 0, "first again");
	/* seek past the last key, then back */
	EXPECT(pfs_btree_cur_seek(&cur, UINT64_MAX, &t) == 0, "seek max");
	expect_trec(&t, UINT64_MAX, "seek max");
	EXPECT(pfs_btree_cur_next(&cur, NULL) == -ENOENT, "next after max");
	EXPECT(pfs_btree_cur_prev(&cur, &t) == 0, "prev after max");
	expect_trec(&t, UINT64_MAX, "prev after max");
	EXPECT(pfs_btree_cur_seek(&cur, 3 * (N - 1) + 1, &t) == 0, "seek into the gap");
	expect_trec(&t, UINT64_MAX - 1, "seek into the gap");
	EXPECT(pfs_btree_cur_seek_le(&cur, UINT64_MAX - 2, &t) == 0, "seek_le into the gap");
	expect_trec(&t, 3 * (N - 1), "seek_le into the gap");
	EXPECT(pfs_btree_cur_next(&cur, &t) == 0, "next out of the gap");
	expect_trec(&t, UINT64_MAX - 1, "next out of the gap");
	EXPECT(pfs_btree_cur_seek_le(&cur, 0, &t) == 0, "seek_le 0");
	expect_trec(&t, 0, "seek_le 0");
	EXPECT(pfs_btree_cur_prev(&cur, &t) == -ENOENT, "prev before 0");

	/* across each leaf boundary: the key just before a leaf's first */
	for (i = 2; i <= leaves[0]; i++) {
		struct pfs_block_expect exp = { .magic = test_ops.magic };
		struct pfs_buf *b;
		struct trec first;
		size_t at;

		EXPECT(pfs_tx_get(e.tx, leaves[i], &exp, &b) == 0, "get leaf");
		memcpy(&first, pfs_buf_data(b) + 64, sizeof(first));
		pfs_buf_put(b);
		for (at = 0; keys[at] != le64toh(first.key); at++)
			;
		EXPECT(at > 0, "a later leaf starts at the first key");
		EXPECT(pfs_btree_cur_seek(&cur, keys[at - 1] + 1, &t) == 0, "seek at a boundary");
		expect_trec(&t, keys[at], "seek at a boundary");
		EXPECT(pfs_btree_cur_prev(&cur, &t) == 0, "prev over a boundary");
		expect_trec(&t, keys[at - 1], "prev over a boundary");
		EXPECT(pfs_btree_cur_next(&cur, &t) == 0, "next over a boundary");
		expect_trec(&t, keys[at], "next over a boundary");
		EXPECT(pfs_btree_lookup_le(e.tx, &e.bt, keys[at] - 1, &t) == 0, "le at a boundary");
		expect_trec(&t, keys[at - 1], "le at a boundary");
	}
	pfs_btree_cur_release(&cur);

	/* two keys swapped in a leaf of a tree without rec_order: only the
	 * key order shows it */
	{
		struct pfs_block_expect exp = { .magic = test_ops.magic };
		struct pfs_btree_stats st;
		struct pfs_buf *b;
		uint8_t *d, tmp[8];

		EXPECT(pfs_tx_get(e.tx, leaves[2], &exp, &b) == 0, "get leaf");
		EXPECT(pfs_tx_dirty(e.tx, b) == 0, "dirty");
		d = pfs_buf_data(b) + 64 + 8;
		memcpy(tmp, d + 10 * 24, 8);
		memcpy(d + 10 * 24, d + 11 * 24, 8);
		memcpy(d + 11 * 24, tmp, 8);
		pfs_buf_put(b);
		EXPECT(pfs_btree_check(e.tx, &e.bt, NULL, &st) == -EUCLEAN &&
		       !strcmp(st.problem, "keys out of order") && st.bad_blkno == leaves[2],
		       "swapped keys: %s", st.problem ? st.problem : "-");
		env_abort(&e);
	}

	/* delete the first key and the last: the separators follow */
	EXPECT(pfs_btree_delete(e.tx, &e.bt, 0) == 0, "delete 0");
	EXPECT(pfs_btree_delete(e.tx, &e.bt, UINT64_MAX) == 0, "delete max");
	EXPECT(pfs_btree_lookup_le(e.tx, &e.bt, 2, &t) == -ENOENT, "le after deleting 0");
	EXPECT(pfs_btree_lookup_ge(e.tx, &e.bt, UINT64_MAX, &t) == -ENOENT, "ge max deleted");
	t = trec_make(1);	/* a new smallest key */
	EXPECT(pfs_btree_insert(e.tx, &e.bt, &t) == 0, "insert 1");
	EXPECT(pfs_btree_check(e.tx, &e.bt, NULL, NULL) == 0, "check after edge changes");
	env_commit(&e);
	EXPECT(pfs_btree_destroy(e.tx, &e.bt, NULL, NULL) == 0, "destroy");
	env_commit(&e);
	EXPECT(pfs_memstore_used(e.ms, SHARD) == 0, "destroy left blocks");
	env_fini(&e);
}
END_TEST

/* ---- error codes, replace, destroy ------------------------------------------------ */

START_TEST(errors_and_replace)
{
	struct env e;
	struct pfs_dfree f, got;
	struct pfs_btree_stats st;
	uint64_t used;
	int ret;

	g_seed = 0;
	env_init(&e, &pfs_btree_free_ops, kind_free.owner, 4096, 1024);
	/* records the validator refuses */
	f.start = htole64(100);
	f.len = 0;
	EXPECT(pfs_btree_insert(e.tx, &e.bt, &f) == -EINVAL, "len 0");
	f.start = htole64(UINT64_MAX - 1);
	f.len = htole64(2);
	EXPECT(pfs_btree_insert(e.tx, &e.bt, &f) == -EINVAL, "wrapping range");
	f.start = 0;
	f.len = htole64(2);
	EXPECT(pfs_btree_insert(e.tx, &e.bt, &f) == -EINVAL, "block 0");
	/* ENOSPC on the very first node: nothing changes */
	pfs_memstore_fail_after(e.ms, 0);
	f.start = htole64(100);
	f.len = htole64(10);
	EXPECT(pfs_btree_insert(e.tx, &e.bt, &f) == -ENOSPC, "first node ENOSPC");
	EXPECT(e.root.blkno == 0 && e.root.height == 0, "root after ENOSPC");
	pfs_memstore_fail_after(e.ms, -1);
	/* 1000 records 100, 120, ... of length 10 */
	for (uint64_t i = 0; i < 1000; i++) {
		f.start = htole64(100 + 20 * i);
		f.len = htole64(10);
		EXPECT(pfs_btree_insert(e.tx, &e.bt, &f) == 0, "insert");
	}
	EXPECT(pfs_btree_insert(e.tx, &e.bt, &f) == -EEXIST, "duplicate");
	env_commit(&e);
	/* update changes the length only */
	f.start = htole64(120);
	f.len = htole64(15);
	EXPECT(pfs_btree_update(e.tx, &e.bt, &f) == 0, "update");
	EXPECT(pfs_btree_lookup(e.tx, &e.bt, 120, &got) == 0 && le64toh(got.len) == 15, "updated");
	f.start = htole64(121);
	EXPECT(pfs_btree_update(e.tx, &e.bt, &f) == -ENOENT, "update of a missing key");
	/* replace: allocate from the front (new key above the old) */
	f.start = htole64(125);
	f.len = htole64(10);
	EXPECT(pfs_btree_replace(e.tx, &e.bt, 120, &f) == 0, "replace forward");
	EXPECT(pfs_btree_lookup(e.tx, &e.bt, 120, NULL) == -ENOENT, "old key gone");
	EXPECT(pfs_btree_lookup(e.tx, &e.bt, 125, &got) == 0 && le64toh(got.len) == 10, "new key");
	/* merge with a left gap (new key below the old), on the first key of
	 * every leaf and at the tree's first key */
	f.start = htole64(95);
	f.len = htole64(15);
	EXPECT(pfs_btree_replace(e.tx, &e.bt, 100, &f) == 0, "replace below the first key");
	for (uint64_t i = 11; i < 1000; i += 7) {
		uint64_t k = 100 + 20 * i;

		f.start = htole64(k - 3);
		f.len = htole64(13);
		ret = pfs_btree_replace(e.tx, &e.bt, k, &f);
		EXPECT(ret == 0, "replace %llu: %d", (unsigned long long)k, ret);
	}
	/* far away: insert + delete; onto an existing key: -EEXIST */
	f.start = htole64(1000000);
	f.len = htole64(1);
	EXPECT(pfs_btree_replace(e.tx, &e.bt, 140, &f) == 0, "replace far");
	EXPECT(pfs_btree_lookup_le(e.tx, &e.bt, UINT64_MAX, &got) == 0 &&
	       le64toh(got.start) == 1000000, "far key is the last");
	f.start = htole64(180);
	f.len = htole64(1);
	EXPECT(pfs_btree_replace(e.tx, &e.bt, 160, &f) == -EEXIST, "replace onto a key");
	EXPECT(pfs_btree_replace(e.tx, &e.bt, 161, &f) == -ENOENT, "replace a missing key");
	f.len = 0;
	EXPECT(pfs_btree_replace(e.tx, &e.bt, 160, &f) == -EINVAL, "replace by a bad record");
	EXPECT(pfs_btree_check(e.tx, &e.bt, NULL, &st) == 0, "check: %s",
	       st.problem ? st.problem : "");
	EXPECT(st.records == 1000, "records %llu", (unsigned long long)st.records);
	env_commit(&e);

	/* ENOSPC at the limit: an insert needing a node changes nothing,
	 * deletes still work, and the transaction can even commit */
	used = pfs_memstore_used(e.ms, SHARD);
	pfs_memstore_set_limit(e.ms, SHARD, used);
	for (uint64_t i = 0;; i++) {
		f.start = htole64(100000 + i);
		f.len = htole64(1);
		ret = pfs_btree_insert(e.tx, &e.bt, &f);
		if (ret == -ENOSPC)
			break;
		EXPECT(ret == 0 && i < 1000, "insert at the limit: %d", ret);
	}
	EXPECT(pfs_btree_check(e.tx, &e.bt, NULL, &st) == 0, "check after ENOSPC");
	EXPECT(pfs_btree_lookup(e.tx, &e.bt, le64toh(f.start), NULL) == -ENOENT,
	       "the failed record is not there");
	EXPECT(pfs_btree_delete(e.tx, &e.bt, 300) == 0, "delete at the limit");
	env_commit(&e);
	EXPECT(pfs_memstore_used(e.ms, SHARD) <= used, "blocks after ENOSPC");
	pfs_memstore_set_limit(e.ms, SHARD, e.per_shard - 1);
	env_fini(&e);
}
END_TEST

struct destroy_arg {
	uint64_t n;
	uint64_t last;
	uint64_t stop_at;
};

static int destroy_rec(void *arg, const void *rec)
{
	struct destroy_arg *a = arg;
	uint64_t k = pfs_btree_rec_key(&pfs_btree_extent_ops, rec);

	if (a->n && k <= a->last)
		return -EDOM;		/* not in key order */
	a->last = k;
	if (++a->n == a->stop_at)
		return -ECANCELED;
	return 0;
}

START_TEST(destroy_frees_everything)
{
	struct env e;
	struct rng r = { 7 };
	struct destroy_arg a = { 0, 0, 5000 };
	uint8_t rec[32];
	int ret;

	g_seed = 7;
	env_init(&e, &pfs_btree_extent_ops, OID, 4096, 4096);
	for (uint64_t i = 0; i < 40000; i++) {
		make_extent(&r, slot_key(rnd_below(&r, 1u << 20)), rec);
		ret = pfs_btree_insert(e.tx, &e.bt, rec);
		EXPECT(ret == 0 || ret == -EEXIST, "insert: %d", ret);
		if (!ret)
			a.n++;
	}
	env_commit(&e);
	EXPECT(e.root.height >= 3, "height %u", e.root.height);
	/* a callback error stops the walk and comes back */
	{
		uint64_t total = a.n;

		a.n = 0;
		ret = pfs_btree_destroy(e.tx, &e.bt, destroy_rec, &a);
		EXPECT(ret == -ECANCELED, "stopped destroy: %d", ret);
		env_abort(&e);
		a.n = 0;
		a.stop_at = 0;
		ret = pfs_btree_destroy(e.tx, &e.bt, destroy_rec, &a);
		EXPECT(ret == 0, "destroy: %d", ret);
		EXPECT(a.n == total, "destroy saw %llu records of %llu",
		       (unsigned long long)a.n, (unsigned long long)total);
	}
	EXPECT(e.root.blkno == 0 && e.root.height == 0, "root after destroy");
	env_commit(&e);
	EXPECT(pfs_memstore_used(e.ms, SHARD) == 0, "destroy left %llu blocks",
	       (unsigned long long)pfs_memstore_used(e.ms, SHARD));
	env_fini(&e);
}
END_TEST

/* ---- corrupt nodes -------------------------------------------------------------- */

struct nodes {
	uint64_t blk[4096];
	unsigned level[4096];
	unsigned n;
};

static int collect_node(void *arg, uint64_t blkno, unsigned level)
{
	struct nodes *ns = arg;

	if (ns->n < 4096) {
		ns->blk[ns->n] = blkno;
		ns->level[ns->n++] = level;
	}
	return 0;
}

/* A free tree of height 2 with n records 1 + 16 i, committed. */
static void build_free(struct env *e, struct nodes *ns, uint32_t n)
{
	struct pfs_btree_check_cb cb = { .node = collect_node, .arg = ns };
	struct pfs_dfree f;

	env_init(e, &pfs_btree_free_ops, kind_free.owner, 4096, 2048);
	for (uint32_t i = 0; i < n; i++) {
		f.start = htole64(slot_key(i));
		f.len = htole64(8);
		EXPECT(pfs_btree_insert(e->tx, &e->bt, &f) == 0, "build");
	}
	env_commit(e);
	ns->n = 0;
	EXPECT(pfs_btree_check(e->tx, &e->bt, &cb, NULL) == 0, "build check");
	EXPECT(e->root.height == 2, "build height %u", e->root.height);
}

static bool rc_allowed(int ret)
{
	return ret == 0 || ret == -ENOENT || ret == -EEXIST || ret == -EUCLEAN ||
	       ret == -EBADMSG;
}

/*
 * Operations over every key of a corrupt tree (n records 1 + 16 i): any
 * result but a crash is allowed from the operations; returns how many gave
 * -EUCLEAN, and in *walk_ret what a cursor walk over the whole tree ended
 * with. check must say -EUCLEAN when expect_check_fails.
 */
static unsigned poke_everything(struct env *e, uint32_t n, bool expect_check_fails,
				const char *what, int *walk_ret)
{
	struct pfs_btree_stats st;
	struct pfs_btree_cur cur;
	struct pfs_dfree f;
	unsigned euclean = 0;
	int ret;

	for (uint32_t i = 0; i < n; i += 3) {
		ret = pfs_btree_lookup(e->tx, &e->bt, slot_key(i), &f);
		EXPECT(rc_allowed(ret), "%s: lookup %d", what, ret);
		euclean += ret == -EUCLEAN;
		ret = pfs_btree_lookup_ge(e->tx, &e->bt, slot_key(i) + 1, &f);
		EXPECT(rc_allowed(ret), "%s: ge %d", what, ret);
		euclean += ret == -EUCLEAN;
		ret = pfs_btree_lookup_le(e->tx, &e->bt, slot_key(i) + 1, &f);
		EXPECT(rc_allowed(ret), "%s: le %d", what, ret);
		euclean += ret == -EUCLEAN;
	}
	pfs_btree_cur_init(&cur, e->tx, &e->bt);
	ret = pfs_btree_cur_seek(&cur, 0, &f);
	for (uint32_t i = 0; i < 2 * n && !ret; i++)
		ret = pfs_btree_cur_next(&cur, &f);
	EXPECT(rc_allowed(ret), "%s: cursor %d", what, ret);
	euclean += ret == -EUCLEAN;
	*walk_ret = ret;
	if (ret == -EUCLEAN)
		EXPECT(pfs_btree_cur_next(&cur, &f) == -EUCLEAN, "%s: sticky cursor error", what);
	pfs_btree_cur_release(&cur);
	ret = pfs_btree_check(e->tx, &e->bt, NULL, &st);
	if (expect_check_fails)
		EXPECT(ret == -EUCLEAN && st.problem, "%s: check %d", what, ret);
	/* changes: whatever they do, they must not crash */
	for (uint32_t i = 0; i < n; i += 5) {
		f.start = htole64(slot_key(i) + 9);
		f.len = htole64(1);
		ret = pfs_btree_insert(e->tx, &e->bt, &f);
		EXPECT(rc_allowed(ret), "%s: insert %d", what, ret);
		euclean += ret == -EUCLEAN;
		ret = pfs_btree_delete(e->tx, &e->bt, slot_key(i + 1));
		EXPECT(rc_allowed(ret), "%s: delete %d", what, ret);
		euclean += ret == -EUCLEAN;
		f.start = htole64(slot_key(i + 2) + 1);
		f.len = htole64(2);
		ret = pfs_btree_replace(e->tx, &e->bt, slot_key(i + 2), &f);
		EXPECT(rc_allowed(ret), "%s: replace %d", what, ret);
		euclean += ret == -EUCLEAN;
	}
	ret = pfs_btree_check(e->tx, &e->bt, NULL, &st);
	EXPECT(rc_allowed(ret), "%s: check after changes %d", what, ret);
	ret = pfs_btree_destroy(e->tx, &e->bt, NULL, NULL);
	EXPECT(rc_allowed(ret), "%s: destroy %d", what, ret);
	return euclean;
}

enum corruption {
	C_NR_OVER, C_LEVEL, C_SWAP, C_FIRST_KEY, C_LAST_KEY, C_CHILD_SELF, C_CHILD_ZERO,
	C_REC_LEN0, C_OVERLAP, C_OWNER, C_MAGIC, C_UNDERFULL, C_ROOT_ONE_CHILD,
	C_SEP_ORDER, C_COUNT
};

static const char *const corruption_name[C_COUNT] = {
	"leaf nr over capacity", "leaf level", "swapped keys", "leaf first key",
	"leaf last key", "child points at its parent", "null child", "record len 0",
	"overlapping records", "owner", "magic", "underfull leaf",
	"interior root with one child", "separators out of order",
};

/* What pfs_btree_check must report for each (a prefix of st.problem). */
static const char *const corruption_problem[C_COUNT] = {
	"record count", "level", "keys out of order", "first key", "key not below",
	"level", "null child", "bad record", "records overlap", "unreadable",
	"unreadable", "node less than a quarter", "interior root", "keys out of order",
};

START_TEST(corrupt_nodes)
{
	const uint32_t n = 3000;
	enum corruption c = (enum corruption)_i;
	const char *what = corruption_name[c];
	struct nodes *ns = calloc(1, sizeof(*ns));
	struct pfs_block_expect exp = { .magic = POSFS_MAGIC_FREE };
	struct pfs_dblock_hdr *h;
	struct pfs_buf *b;
	struct env e;
	uint8_t *d;
	uint64_t target = 0, v;
	unsigned euclean, nr;
	bool ops_must_see = true;
	int walk_ret;

	g_seed = (uint64_t)c;
	build_free(&e, ns, n);
	pfs_memstore_unchecked(e.ms);	/* it plants malformed nodes */
	if (c == 0) {
		/* a root that does not match the tree */
		struct pfs_tree_root good = e.root;
		const struct pfs_tree_root bad[] = {
			{ good.blkno, good.height + 1 }, { good.blkno, good.height - 1 },
			{ good.blkno, 0 }, { good.blkno, PFS_BTREE_MAX_HEIGHT + 1 }, { 0, 1 },
		};

		for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			struct pfs_dfree f = { htole64(5), htole64(1) };
			struct pfs_btree_cur cur;

			e.root = bad[i];
			EXPECT(pfs_btree_lookup(e.tx, &e.bt, 1, NULL) == -EUCLEAN, "bad root %u", i);
			EXPECT(pfs_btree_lookup_ge(e.tx, &e.bt, 1, NULL) == -EUCLEAN, "bad root %u", i);
			EXPECT(pfs_btree_insert(e.tx, &e.bt, &f) == -EUCLEAN, "bad root %u", i);
			EXPECT(pfs_btree_delete(e.tx, &e.bt, 1) == -EUCLEAN, "bad root %u", i);
			EXPECT(pfs_btree_check(e.tx, &e.bt, NULL, NULL) == -EUCLEAN, "bad root %u", i);
			EXPECT(pfs_btree_destroy(e.tx, &e.bt, NULL, NULL) == -EUCLEAN, "bad root %u", i);
			pfs_btree_cur_init(&cur, e.tx, &e.bt);
			EXPECT(pfs_btree_cur_seek_le(&cur, 1, NULL) == -EUCLEAN, "bad root %u", i);
			EXPECT(pfs_btree_cur_next(&cur, NULL) == -EUCLEAN, "bad root %u", i);
			pfs_btree_cur_release(&cur);
		}
		e.root = good;
	}
	/* a leaf in the middle, or the root */
	for (unsigned i = 0; i < ns->n; i++)
		if (ns->level[i] == 0 && !target && i > ns->n / 2)
			target = ns->blk[i];
	if (c == C_CHILD_SELF || c == C_CHILD_ZERO || c == C_ROOT_ONE_CHILD || c == C_SEP_ORDER)
		target = e.root.blkno;
	EXPECT(pfs_tx_get(e.tx, target, &exp, &b) == 0, "get");
	EXPECT(pfs_tx_dirty(e.tx, b) == 0, "dirty");
	d = pfs_buf_data(b);
	h = (struct pfs_dblock_hdr *)d;
	nr = le16toh(h->nr);
	switch (c) {
	case C_NR_OVER:
		h->nr = htole16((uint16_t)(pfs_btree_capacity(&pfs_btree_free_ops, 4096, 0) + 1));
		break;
	case C_LEVEL:
		h->level = htole16(1);
		break;
	case C_SWAP:	/* keys 3 and 4 of the leaf swap places, records intact */
		memcpy(&v, d + 64 + 3 * 16, 8);
		memcpy(d + 64 + 3 * 16, d + 64 + 4 * 16, 8);
		memcpy(d + 64 + 4 * 16, &v, 8);
		ops_must_see = false;
		break;
	case C_FIRST_KEY:
		v = htole64(le64toh(*(uint64_t *)(d + 64)) + 1);
		memcpy(d + 64, &v, 8);
		break;
	case C_LAST_KEY:
		v = htole64(UINT64_MAX / 2);
		memcpy(d + 64 + (nr - 1) * 16, &v, 8);
		break;
	case C_CHILD_SELF:
		v = htole64(target);
		memcpy(d + 64 + 1 * 16 + 8, &v, 8);
		break;
	case C_CHILD_ZERO:
		memset(d + 64 + 1 * 16 + 8, 0, 8);
		break;
	case C_REC_LEN0:
		memset(d + 64 + 5 * 16 + 8, 0, 8);
		break;
	case C_OVERLAP:
		v = htole64(100);
		memcpy(d + 64 + 5 * 16 + 8, &v, 8);
		ops_must_see = false;
		break;
	case C_OWNER:
		h->owner = htole64(OID);
		break;
	case C_MAGIC:
		h->magic = htole32(POSFS_MAGIC_EXTENT);
		break;
	case C_UNDERFULL:
		h->nr = htole16(2);
		ops_must_see = false;
		break;
	case C_ROOT_ONE_CHILD:
		h->nr = htole16(1);
		ops_must_see = false;
		break;
	case C_SEP_ORDER:	/* separator 2 below separator 1 */
		v = htole64(le64toh(*(uint64_t *)(d + 64 + 16)) - 1);
		memcpy(d + 64 + 2 * 16, &v, 8);
		break;
	case C_COUNT:
		break;
	}
	pfs_buf_put(b);
	env_commit(&e);		/* sealed: only the content is wrong */
	{
		struct pfs_btree_stats st;
		int ret = pfs_btree_check(e.tx, &e.bt, NULL, &st);

		EXPECT(ret == -EUCLEAN, "%s: check %d", what, ret);
		EXPECT(st.problem && !strncmp(st.problem, corruption_problem[c],
					      strlen(corruption_problem[c])),
		       "%s: check says \"%s\"", what, st.problem ? st.problem : "");
		if (c != C_ROOT_ONE_CHILD && c != C_SEP_ORDER && c != C_CHILD_SELF &&
		    c != C_CHILD_ZERO)
			EXPECT(st.bad_blkno == target, "%s: check blames block %llu, not %llu",
			       what, (unsigned long long)st.bad_blkno,
			       (unsigned long long)target);
	}
	euclean = poke_everything(&e, n, true, what, &walk_ret);
	if (ops_must_see) {
		EXPECT(euclean > 0, "%s: no operation noticed", what);
		EXPECT(walk_ret == -EUCLEAN, "%s: a walk over every record ended with %d",
		       what, walk_ret);
	}
	env_commit(&e);		/* buffers put and changes declared on every error path */
	free(ns);
	env_fini(&e);
}
END_TEST

/* The extent tree's own record checks (pfs_extent_from_disk) and header
 * checks, on a sealed corrupt leaf. */
START_TEST(corrupt_extent)
{
	static const char *const what[] = {
		"extent len 0", "extent unknown flags", "extent plen != len", "leaf of another object",
		"leaf nr over capacity",
	};
	const unsigned c = (unsigned)_i;
	struct pfs_block_expect exp = { .magic = POSFS_MAGIC_EXTENT, .owner = OID, .check_owner = true };
	struct pfs_btree_check_cb cb;
	struct pfs_btree_stats st;
	struct pfs_btree_cur cur;
	struct nodes *ns = calloc(1, sizeof(*ns));
	struct rng r = { 99 };
	struct pfs_dextent d;
	struct pfs_buf *b;
	struct env e;
	uint64_t leaf = 0, first;
	uint8_t *data, *rec;
	unsigned euclean = 0;
	int ret;

	g_seed = c;
	env_init(&e, &pfs_btree_extent_ops, OID, 4096, 2048);
	pfs_memstore_unchecked(e.ms);	/* it plants malformed nodes */
	for (uint32_t i = 0; i < 2000; i++) {
		make_extent(&r, slot_key(i), &d);
		EXPECT(pfs_btree_insert(e.tx, &e.bt, &d) == 0, "build");
	}
	env_commit(&e);
	cb.node = collect_node;
	cb.rec = NULL;
	cb.arg = ns;
	EXPECT(pfs_btree_check(e.tx, &e.bt, &cb, NULL) == 0 && e.root.height == 2, "build check");
	for (unsigned i = ns->n / 2; i < ns->n && !leaf; i++)
		if (ns->level[i] == 0)
			leaf = ns->blk[i];
	EXPECT(pfs_tx_get(e.tx, leaf, &exp, &b) == 0 && pfs_tx_dirty(e.tx, b) == 0, "get leaf");
	data = pfs_buf_data(b);
	first = le64toh(((struct pfs_dextent *)(data + 64))->lblk);
	rec = data + 64 + 7 * 32;	/* the record with key first + 7 * 16 */
	switch (c) {
	case 0:
		memset(rec + offsetof(struct pfs_dextent, len), 0, 4);
		break;
	case 1:
		rec[offsetof(struct pfs_dextent, flags)] = 0x80;
		break;
	case 2:	/* plen differs from len in an uncompressed extent */
		memset(rec + offsetof(struct pfs_dextent, flags), 0, 8);
		rec[offsetof(struct pfs_dextent, plen)] ^= 0x40;
		break;
	case 3:
		((struct pfs_dblock_hdr *)data)->owner = htole64(OID + 1);
		break;
	default:
		((struct pfs_dblock_hdr *)data)->nr = htole16(127);
		break;
	}
	pfs_buf_put(b);
	env_commit(&e);
	ret = pfs_btree_check(e.tx, &e.bt, NULL, &st);
	EXPECT(ret == -EUCLEAN && st.bad_blkno == leaf, "%s: check %d at %llu (%s)", what[c], ret,
	       (unsigned long long)st.bad_blkno, st.problem ? st.problem : "-");
	ret = pfs_btree_lookup(e.tx, &e.bt, first + 7 * 16, &d);
	EXPECT(ret == -EUCLEAN, "%s: lookup %d", what[c], ret);
	ret = pfs_btree_lookup_le(e.tx, &e.bt, first + 7 * 16 + 3, &d);
	EXPECT(ret == -EUCLEAN, "%s: lookup_le %d", what[c], ret);
	ret = pfs_btree_lookup_ge(e.tx, &e.bt, first + 6 * 16 + 3, &d);
	EXPECT(ret == -EUCLEAN, "%s: lookup_ge %d", what[c], ret);
	pfs_btree_cur_init(&cur, e.tx, &e.bt);
	for (ret = pfs_btree_cur_seek(&cur, 0, &d); !ret; ret = pfs_btree_cur_next(&cur, &d))
		;
	pfs_btree_cur_release(&cur);
	EXPECT(ret == -EUCLEAN, "%s: walk %d", what[c], ret);
	ret = pfs_btree_destroy(e.tx, &e.bt, NULL, NULL);
	EXPECT(ret == (c >= 3 ? -EUCLEAN : 0), "%s: destroy without a callback %d", what[c], ret);
	env_abort(&e);
	ret = pfs_btree_destroy(e.tx, &e.bt, destroy_rec, &(struct destroy_arg){ 0, 0, 0 });
	EXPECT(ret == -EUCLEAN, "%s: destroy %d", what[c], ret);
	env_abort(&e);
	/* records elsewhere still work */
	for (uint32_t i = 0; i < 2000; i += 50) {
		ret = pfs_btree_lookup(e.tx, &e.bt, slot_key(i), &d);
		euclean += ret == -EUCLEAN;
		EXPECT(ret == 0 || ret == -EUCLEAN, "%s: lookup elsewhere %d", what[c], ret);
	}
	EXPECT(euclean <= 3, "%s: %u lookups elsewhere failed", what[c], euclean);
	free(ns);
	env_fini(&e);
}
END_TEST

/* Random bytes of random nodes changed inside a transaction: operations
 * may fail, but only with an error, and never touch memory they should
 * not (run under ASan). */
START_TEST(corrupt_fuzz)
{
	const uint32_t n = 1500;
	struct nodes *ns = calloc(1, sizeof(*ns));
	struct rng r = { random_seed(6) };
	struct env e;

	g_seed = r.s;
	for (g_step = 0; g_step < 200; g_step++) {
		struct pfs_block_expect exp = { .magic = POSFS_MAGIC_FREE };
		unsigned i, nr, flips = 1 + (unsigned)rnd_below(&r, 3);
		struct pfs_buf *b;
		int walk_ret;
		uint8_t *d;

		build_free(&e, ns, n);
		pfs_memstore_unchecked(e.ms);	/* it plants malformed nodes */
		i = (unsigned)rnd_below(&r, ns->n);

		EXPECT(pfs_tx_get(e.tx, ns->blk[i], &exp, &b) == 0, "get");
		EXPECT(pfs_tx_dirty(e.tx, b) == 0, "dirty");
		d = pfs_buf_data(b);
		nr = le16toh(((struct pfs_dblock_hdr *)d)->nr);
		while (flips--) {
			size_t off;

			if (rnd_below(&r, 4) == 0)
				off = 0x0c + rnd_below(&r, 4);		/* level, nr */
			else
				off = 64 + rnd_below(&r, (uint64_t)nr * 16);
			d[off] = (uint8_t)rnd(&r);
		}
		pfs_buf_put(b);
		(void)poke_everything(&e, n, false, "fuzz", &walk_ret);
		env_commit(&e);	/* rules T1 and T3 held on every error path */
		env_fini(&e);
	}
	free(ns);
}
END_TEST

/* BTREE_ONLY=name in the environment runs only the tests whose name has it. */
static void add(TCase *tc, const TTest *t, int loop_end)
{
	const char *only = getenv("BTREE_ONLY");

	if (only && *only && !strstr(t->name, only))
		return;
	if (loop_end)
		tcase_add_loop_test(tc, t, 0, loop_end);
	else
		tcase_add_test(tc, t);
}

int main(void)
{
	Suite *s = suite_create("btree");
	TCase *tc = tcase_create("btree");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 300);
	add(tc, lookup_and_cursor_boundaries, 0);
	add(tc, errors_and_replace, 0);
	add(tc, destroy_frees_everything, 0);
	add(tc, split_policy_fill, 0);
	add(tc, corrupt_nodes, C_COUNT);
	add(tc, corrupt_extent, 5);
	add(tc, corrupt_fuzz, 0);
	add(tc, model_free_4k_fixed, 0);
	add(tc, model_free_4k_random, 0);
	add(tc, model_extent_4k_fixed, 0);
	add(tc, model_extent_4k_random, 0);
	add(tc, model_refcount_4k, 0);
	add(tc, model_free_64k_fixed, 0);
	add(tc, model_free_64k_random, 0);
	add(tc, model_extent_64k_fixed, 0);
	add(tc, model_extent_64k_random, 0);
	add(tc, depth3_free_4k, 0);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
