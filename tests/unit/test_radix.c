/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The onode radix tree against a reference model: random inserts,
 * updates, removes, lookups, in-place slot edits and next() over numbers
 * drawn densely (handed out in sequence, as the store does) and sparsely
 * (anywhere up to 2^48-1, so the height grows and shrinks), committed in
 * batches and read back in new transactions, with -ENOSPC injected half
 * way and rolled back, the fsck walk run along the way, and every block
 * given back when the tree is emptied. Then corrupt trees (a sealed node
 * that is wrong): every operation and the check say -EUCLEAN, never crash.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "memtx.h"
#include "store/radix.h"

#define SHARD	1u	/* number 0 is storable in a shard other than 0 */

/* ---- random numbers ------------------------------------------------------ */

static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static uint64_t rng_below(uint64_t *s, uint64_t n)
{
	return n ? rng_next(s) % n : 0;
}

/* ---- onodes -------------------------------------------------------------- */

/* The onode of number local at version ver: every field derived from both. */
static void make_onode(uint32_t shard, uint64_t local, uint32_t ver, struct pfs_onode *o)
{
	uint64_t s = local * 31 + ver;

	memset(o, 0, sizeof(*o));
	o->oid = POSFS_OID(shard, local);
	o->generation = ver;
	o->mode = S_IFREG | 0644;
	o->uid = (uint32_t)local;
	o->gid = ver;
	o->nlink = 1;
	o->data_fmt = POSFS_DATA_INLINE;
	o->data_len = (uint16_t)(rng_next(&s) % 200);
	o->size = o->data_len + ver;
	o->mtime.sec = (int64_t)local;
	o->mtime.nsec = ver % 1000000000u;
	o->version = ver;
	for (unsigned i = 0; i < o->data_len; i++)
		o->inline_area[i] = (uint8_t)rng_next(&s);
}

static bool onode_same(const struct pfs_onode *a, const struct pfs_onode *b)
{
	struct pfs_donode da, db;

	pfs_onode_to_disk(a, &da);
	pfs_onode_to_disk(b, &db);
	return !memcmp(&da, &db, sizeof(da));
}

/* ---- the reference model: a sorted array of (number, version) ----------- */

struct model {
	uint64_t *key;
	uint32_t *ver;
	size_t n, cap;
};

static void model_init(struct model *m, size_t cap)
{
	m->key = malloc(cap * sizeof(*m->key));
	m->ver = malloc(cap * sizeof(*m->ver));
	m->n = 0;
	m->cap = cap;
}

static void model_free(struct model *m)
{
	free(m->key);
	free(m->ver);
}

static void model_copy(struct model *dst, const struct model *src)
{
	memcpy(dst->key, src->key, src->n * sizeof(*src->key));
	memcpy(dst->ver, src->ver, src->n * sizeof(*src->ver));
	dst->n = src->n;
}

/* First index with key >= k. */
static size_t model_lb(const struct model *m, uint64_t k)
{
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (m->key[mid] < k)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static bool model_has(const struct model *m, uint64_t k, size_t *idx)
{
	size_t i = model_lb(m, k);

	if (idx)
		*idx = i;
	return i < m->n && m->key[i] == k;
}

static void model_insert(struct model *m, uint64_t k, uint32_t ver)
{
	size_t i = model_lb(m, k);

	ck_assert(m->n < m->cap);
	memmove(m->key + i + 1, m->key + i, (m->n - i) * sizeof(*m->key));
	memmove(m->ver + i + 1, m->ver + i, (m->n - i) * sizeof(*m->ver));
	m->key[i] = k;
	m->ver[i] = ver;
	m->n++;
}

static void model_remove_at(struct model *m, size_t i)
{
	memmove(m->key + i, m->key + i + 1, (m->n - i - 1) * sizeof(*m->key));
	memmove(m->ver + i, m->ver + i + 1, (m->n - i - 1) * sizeof(*m->ver));
	m->n--;
}

/* ---- a tree over a memstore ---------------------------------------------- */

struct fix {
	struct pfs_memstore *ms;
	struct pfs_tx *tx;
	struct pfs_tree_root root;	/* the tree's root as a shard header keeps it */
	struct pfs_tree_root committed;	/* ... and as of the last commit */
	struct pfs_radix rx;
	uint32_t bs, shard;
};

static void fix_init(struct fix *f, uint32_t bs, uint32_t shard, uint64_t blocks)
{
	memset(f, 0, sizeof(*f));
	f->bs = bs;
	f->shard = shard;
	f->ms = pfs_memstore_create(bs, shard + 1, blocks);
	f->rx.root = &f->root;
	f->rx.shard = shard;
	f->tx = pfs_memtx_begin(f->ms);
}

/* Commit (which also checks rules T1 and T3) and reopen. */
static void fix_commit(struct fix *f)
{
	ck_assert_int_eq(pfs_memtx_commit(f->tx), 0);
	f->committed = f->root;
	f->tx = pfs_memtx_begin(f->ms);
}

static void fix_abort(struct fix *f)
{
	pfs_memtx_abort(f->tx);
	f->root = f->committed;
	f->tx = pfs_memtx_begin(f->ms);
}

static void fix_done(struct fix *f)
{
	if (f->tx)
		pfs_memtx_abort(f->tx);
	pfs_memstore_destroy(f->ms);
}

static int ins(struct fix *f, uint64_t local, uint32_t ver)
{
	struct pfs_onode o;

	make_onode(f->shard, local, ver, &o);
	return pfs_radix_insert(f->tx, &f->rx, &o);
}

static int upd(struct fix *f, uint64_t local, uint32_t ver)
{
	struct pfs_onode o;

	make_onode(f->shard, local, ver, &o);
	return pfs_radix_update(f->tx, &f->rx, &o);
}

static int look(struct fix *f, uint64_t local)
{
	struct pfs_onode o;

	return pfs_radix_lookup(f->tx, &f->rx, local, &o);
}

static int rem(struct fix *f, uint64_t local)
{
	return pfs_radix_remove(f->tx, &f->rx, local);
}

static int nxt(struct fix *f, uint64_t local)
{
	struct pfs_onode o;

	return pfs_radix_next(f->tx, &f->rx, &local, &o);
}

static int chk(struct fix *f, struct pfs_radix_stats *st)
{
	return pfs_radix_check(f->tx, &f->rx, NULL, st);
}

/* Walk the whole tree with next() and compare it with the model. */
static void compare_all(struct fix *f, const struct model *m, uint64_t seed, long op)
{
	struct pfs_onode o, e;
	uint64_t at = 0;
	size_t i = 0;
	int ret;

	for (;;) {
		ret = pfs_radix_next(f->tx, &f->rx, &at, &o);
		if (ret == -ENOENT)
			break;
		ck_assert_msg(ret == 0, "seed %llu op %ld: next %d",
			      (unsigned long long)seed, op, ret);
		ck_assert_msg(i < m->n && at == m->key[i],
			      "seed %llu op %ld: next found %llu, model has %llu at %zu/%zu",
			      (unsigned long long)seed, op, (unsigned long long)at,
			      (unsigned long long)(i < m->n ? m->key[i] : 0), i, m->n);
		make_onode(f->shard, at, m->ver[i], &e);
		ck_assert_msg(onode_same(&o, &e), "seed %llu op %ld: onode %llu differs",
			      (unsigned long long)seed, op, (unsigned long long)at);
		i++;
		if (at == POSFS_OID_LOCAL_MASK)
			break;
		at++;
	}
	ck_assert_msg(i == m->n, "seed %llu op %ld: next found %zu objects, model %zu",
		      (unsigned long long)seed, op, i, m->n);
}

/* The check walk, comparing every onode it visits with the model: one
 * visit per node, so it is also the cheap way to see the whole tree. */
struct walk_cmp {
	const struct model *m;
	uint32_t shard;
	size_t i;
	bool bad;
};

static int walk_onode(void *arg, uint64_t local, const struct pfs_onode *o)
{
	struct walk_cmp *w = arg;
	struct pfs_onode e;

	if (w->i >= w->m->n || w->m->key[w->i] != local) {
		w->bad = true;
		return -EDOM;
	}
	make_onode(w->shard, local, w->m->ver[w->i], &e);
	if (!onode_same(o, &e)) {
		w->bad = true;
		return -EDOM;
	}
	w->i++;
	return 0;
}

static void check_tree(struct fix *f, const struct model *m, uint64_t seed, long op)
{
	struct walk_cmp w = { .m = m, .shard = f->shard };
	struct pfs_radix_check_ops ops = { .onode = walk_onode, .arg = &w };
	struct pfs_radix_stats st;
	int ret = pfs_radix_check(f->tx, &f->rx, &ops, &st);

	ck_assert_msg(!w.bad, "seed %llu op %ld: tree and model differ at %zu (%llu)",
		      (unsigned long long)seed, op, w.i,
		      (unsigned long long)(w.i < m->n ? m->key[w.i] : 0));
	ck_assert_msg(ret == 0, "seed %llu op %ld: check %d", (unsigned long long)seed, op, ret);
	ck_assert_msg(st.onodes == m->n && w.i == m->n,
		      "seed %llu op %ld: check counted %llu, model %zu",
		      (unsigned long long)seed, op, (unsigned long long)st.onodes, m->n);
	ck_assert_msg(st.height == f->root.height, "seed %llu op %ld", (unsigned long long)seed, op);
}

/* ---- the model test ------------------------------------------------------ */

struct model_params {
	uint32_t bs;
	long nops;
	unsigned sparse_pct;	/* of inserts */
	uint64_t budget;	/* blocks in use beyond which removes dominate */
	size_t max_live;
	unsigned fault_every;	/* one insert in this many gets -ENOSPC injected */
	unsigned max_batch;	/* operations per transaction: 1 .. max_batch */
	long check_every;	/* operations between check walks */
	long compare_every;	/* ... and between full walks with next() */
	unsigned remove_max_pct;	/* of removes: the largest number (shrinks) */
};

/* A number anywhere in 0 .. 2^48-1, often at a boundary of a height. */
static uint64_t draw_sparse(uint64_t *s, uint32_t bs)
{
	uint64_t S = POSFS_ONODES_PER_LEAF(bs), F = POSFS_RADIX_FANOUT(bs);
	uint64_t v, cover = S;

	switch (rng_below(s, 8)) {
	case 0:
		for (uint64_t k = rng_below(s, pfs_radix_max_height(bs)); k > 0; k--)
			cover *= F;
		v = cover + rng_below(s, 3) - 1;
		return v > POSFS_OID_LOCAL_MASK ? POSFS_OID_LOCAL_MASK : v;
	case 1:
		return POSFS_OID_LOCAL_MASK - rng_below(s, 2 * S);
	default:
		return rng_next(s) & ((UINT64_C(1) << (1 + rng_below(s, 48))) - 1);
	}
}

static void model_run(const struct model_params *p, uint64_t seed)
{
	struct model m, snap;
	struct fix f;
	uint64_t s = seed, next_local = 0;
	uint32_t ver = 1;
	long batch_left = 0, faults = 0, fault_hits = 0;
	uint32_t maxh_seen = 0;

	fix_init(&f, p->bs, SHARD, p->budget + 2048);	/* the budget is soft */
	model_init(&m, p->max_live + 16);
	model_init(&snap, p->max_live + 16);

	for (long op = 0; op < p->nops; op++) {
		uint64_t r = rng_below(&s, 100), k;
		bool full = pfs_memstore_used(f.ms, SHARD) > p->budget || m.n >= p->max_live;
		struct pfs_onode o, e;
		size_t i;
		int ret;

		if (batch_left-- <= 0) {
			fix_commit(&f);
			model_copy(&snap, &m);
			batch_left = (long)rng_below(&s, p->max_batch);
			if (f.root.height > maxh_seen)
				maxh_seen = f.root.height;
		}
		if (full && r < 40)
			r = 75 + r % 17;	/* over budget: remove instead */

		if (r < 40) {
			/* insert: dense (the next number), sparse, or taken */
			uint64_t rr = rng_below(&s, 100);

			bool fault = !rng_below(&s, p->fault_every);

			if (fault || rr < p->sparse_pct)
				k = draw_sparse(&s, p->bs);
			else if (rr < 97 || !m.n)
				k = next_local++;
			else
				k = m.key[rng_below(&s, m.n)];
			make_onode(SHARD, k, ver, &o);
			if (fault) {
				/* -ENOSPC half way: the whole batch rolls back */
				long n = (long)rng_below(&s, 6);

				faults++;
				pfs_memstore_fail_after(f.ms, n);
				ret = pfs_radix_insert(f.tx, &f.rx, &o);
				pfs_memstore_fail_after(f.ms, -1);
				if (ret == -ENOSPC) {
					uint64_t used = pfs_memstore_used(f.ms, SHARD);

					fault_hits++;
					fix_abort(&f);
					model_copy(&m, &snap);
					ck_assert_msg(pfs_memstore_used(f.ms, SHARD) == used,
						      "seed %llu op %ld", (unsigned long long)seed, op);
					check_tree(&f, &m, seed, op);	/* == the model */
					continue;
				}
			} else {
				ret = pfs_radix_insert(f.tx, &f.rx, &o);
			}
			if (model_has(&m, k, NULL)) {
				ck_assert_msg(ret == -EEXIST, "seed %llu op %ld: insert %llu twice: %d",
					      (unsigned long long)seed, op, (unsigned long long)k, ret);
			} else {
				ck_assert_msg(ret == 0, "seed %llu op %ld: insert %llu: %d",
					      (unsigned long long)seed, op, (unsigned long long)k, ret);
				model_insert(&m, k, ver);
			}
			ver++;
		} else if (r < 55) {
			/* update, through the codec or in place through the slot */
			bool present = m.n && rng_below(&s, 10);

			k = present ? m.key[rng_below(&s, m.n)] : draw_sparse(&s, p->bs);
			present = model_has(&m, k, &i);
			if (rng_below(&s, 2)) {
				ret = upd(&f, k, ver);
			} else {
				struct pfs_buf *leaf;
				struct pfs_donode *slot;

				ret = pfs_radix_slot(f.tx, &f.rx, k, true, &leaf, &slot);
				if (!ret) {
					make_onode(SHARD, k, ver, &o);
					pfs_onode_to_disk(&o, slot);
					pfs_buf_put(leaf);
				}
			}
			ck_assert_msg(ret == (present ? 0 : -ENOENT), "seed %llu op %ld: update %llu: %d",
				      (unsigned long long)seed, op, (unsigned long long)k, ret);
			if (present)
				m.ver[i] = ver;
			ver++;
		} else if (r < 75) {
			/* lookup, present or not */
			uint64_t rr = rng_below(&s, 10);

			if (rr < 6 && m.n)
				k = m.key[rng_below(&s, m.n)];
			else if (rr < 8)
				k = rng_below(&s, next_local + 10);
			else
				k = draw_sparse(&s, p->bs);
			ret = pfs_radix_lookup(f.tx, &f.rx, k, &o);
			if (model_has(&m, k, &i)) {
				ck_assert_msg(ret == 0, "seed %llu op %ld: lookup %llu: %d",
					      (unsigned long long)seed, op, (unsigned long long)k, ret);
				make_onode(SHARD, k, m.ver[i], &e);
				ck_assert_msg(onode_same(&o, &e), "seed %llu op %ld: lookup %llu differs",
					      (unsigned long long)seed, op, (unsigned long long)k);
			} else {
				ck_assert_msg(ret == -ENOENT, "seed %llu op %ld: lookup absent %llu: %d",
					      (unsigned long long)seed, op, (unsigned long long)k, ret);
			}
		} else if (r < 92) {
			/* remove, present or not */
			bool present = m.n && rng_below(&s, 12);

			if (present && rng_below(&s, 100) < p->remove_max_pct)
				k = m.key[m.n - 1];
			else if (present)
				k = m.key[rng_below(&s, m.n)];
			else
				k = rng_below(&s, next_local + 10);
			present = model_has(&m, k, &i);
			ret = rem(&f, k);
			ck_assert_msg(ret == (present ? 0 : -ENOENT), "seed %llu op %ld: remove %llu: %d",
				      (unsigned long long)seed, op, (unsigned long long)k, ret);
			if (present)
				model_remove_at(&m, i);
		} else {
			/* next from anywhere, then a few steps */
			k = rng_below(&s, 2) ? rng_below(&s, next_local + 10) : draw_sparse(&s, p->bs);
			for (int step = (int)rng_below(&s, 4); step >= 0; step--) {
				uint64_t at = k;

				i = model_lb(&m, k);
				ret = pfs_radix_next(f.tx, &f.rx, &at, &o);
				if (i == m.n) {
					ck_assert_msg(ret == -ENOENT, "seed %llu op %ld: next %llu: %d",
						      (unsigned long long)seed, op, (unsigned long long)k, ret);
					break;
				}
				ck_assert_msg(ret == 0 && at == m.key[i],
					      "seed %llu op %ld: next %llu: %d at %llu, model %llu",
					      (unsigned long long)seed, op, (unsigned long long)k, ret,
					      (unsigned long long)at, (unsigned long long)m.key[i]);
				make_onode(SHARD, at, m.ver[i], &e);
				ck_assert_msg(onode_same(&o, &e), "seed %llu op %ld", (unsigned long long)seed, op);
				if (at == POSFS_OID_LOCAL_MASK)
					break;
				k = at + 1;
			}
		}

		if (op % p->check_every == p->check_every - 1)
			check_tree(&f, &m, seed, op);
		if (op % p->compare_every == p->compare_every - 1)
			compare_all(&f, &m, seed, op);
	}

	fix_commit(&f);
	check_tree(&f, &m, seed, p->nops);
	compare_all(&f, &m, seed, p->nops);
	ck_assert_msg(fault_hits > 0 || faults == 0, "seed %llu: no fault hit", (unsigned long long)seed);
	ck_assert_msg(maxh_seen >= 3, "seed %llu: height only %u", (unsigned long long)seed, maxh_seen);

	/* remove everything, in random order: every block comes back */
	while (m.n) {
		size_t j = rng_below(&s, m.n);

		ck_assert_msg(rem(&f, m.key[j]) == 0, "seed %llu: final remove %llu",
			      (unsigned long long)seed, (unsigned long long)m.key[j]);
		model_remove_at(&m, j);
		if (!rng_below(&s, 50))
			fix_commit(&f);
		if (!rng_below(&s, 500))
			check_tree(&f, &m, seed, p->nops);
	}
	fix_commit(&f);
	ck_assert_msg(f.root.blkno == 0 && f.root.height == 0, "seed %llu: root {%llu, %u}",
		      (unsigned long long)seed, (unsigned long long)f.root.blkno, f.root.height);
	ck_assert_msg(pfs_memstore_used(f.ms, SHARD) == 0, "seed %llu: %llu blocks left",
		      (unsigned long long)seed, (unsigned long long)pfs_memstore_used(f.ms, SHARD));
	ck_assert_int_eq(chk(&f, NULL), 0);
	ck_assert_int_eq(nxt(&f, 0), -ENOENT);

	model_free(&m);
	model_free(&snap);
	fix_done(&f);
}

static uint64_t random_seed(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 20 ^ (uint64_t)getpid() << 40;
}

static const struct model_params params_4k = {
	.bs = 4096, .nops = 100000, .sparse_pct = 8, .budget = 4000, .max_live = 2500,
	.fault_every = 300, .max_batch = 64, .check_every = 5000, .compare_every = 10000,
	.remove_max_pct = 5,
};
static const struct model_params params_64k = {
	.bs = 65536, .nops = 100000, .sparse_pct = 2, .budget = 300, .max_live = 2000,
	.fault_every = 1000, .max_batch = 200, .check_every = 5000, .compare_every = 25000,
	.remove_max_pct = 30,
};

START_TEST(model_4k_fixed)
{
	model_run(&params_4k, 0x5eed4b);
}
END_TEST

START_TEST(model_4k_random)
{
	model_run(&params_4k, random_seed());
}
END_TEST

START_TEST(model_64k_fixed)
{
	model_run(&params_64k, 0x5eed64b);
}
END_TEST

START_TEST(model_64k_random)
{
	model_run(&params_64k, random_seed());
}
END_TEST

/* ---- geometry and heights ------------------------------------------------ */

START_TEST(max_height)
{
	for (uint32_t bs = 4096; bs <= 65536; bs *= 2) {
		uint64_t S = POSFS_ONODES_PER_LEAF(bs), F = POSFS_RADIX_FANOUT(bs);
		uint64_t cover = S;
		uint32_t h = 1;

		while (cover <= POSFS_OID_LOCAL_MASK) {
			cover *= F;
			h++;
		}
		ck_assert_uint_eq(pfs_radix_max_height(bs), h);
	}
	ck_assert_uint_eq(pfs_radix_max_height(4096), 7);
	ck_assert_uint_eq(pfs_radix_max_height(2048), 0);
	ck_assert_uint_eq(pfs_radix_max_height(131072), 0);
	ck_assert_uint_eq(pfs_radix_max_height(12288), 0);
}
END_TEST

/* The smallest height whose tree holds n. */
static uint32_t height_for(uint32_t bs, uint64_t n)
{
	uint64_t cover = POSFS_ONODES_PER_LEAF(bs);
	uint32_t h = 1;

	while (n >= cover) {
		cover *= POSFS_RADIX_FANOUT(bs);
		h++;
	}
	return h;
}

/* The height follows the largest number, up and down, at every boundary. */
static void heights_for(uint32_t bs)
{
	uint64_t S = POSFS_ONODES_PER_LEAF(bs), F = POSFS_RADIX_FANOUT(bs);
	uint32_t maxh = pfs_radix_max_height(bs);
	struct pfs_radix_stats st;
	struct fix f;
	uint64_t cover = S;

	fix_init(&f, bs, SHARD, 256);
	ck_assert_int_eq(ins(&f, 0, 1), 0);
	ck_assert_uint_eq(f.root.height, 1);
	ck_assert_int_eq(ins(&f, S - 1, 1), 0);
	ck_assert_uint_eq(f.root.height, 1);
	for (uint32_t h = 2; h <= maxh; h++) {
		/* cover = S * F^(h-2): the first number that needs height h */
		ck_assert_int_eq(ins(&f, cover - 1, 1), h == 2 ? -EEXIST : 0);
		ck_assert_uint_eq(f.root.height, h - 1);
		ck_assert_int_eq(ins(&f, cover, 1), 0);
		ck_assert_uint_eq(f.root.height, h);
		fix_commit(&f);
		ck_assert_int_eq(chk(&f, &st), 0);
		if (h < maxh)
			cover *= F;
	}
	ck_assert_int_eq(ins(&f, POSFS_OID_LOCAL_MASK, 1), 0);
	ck_assert_uint_eq(f.root.height, maxh);
	ck_assert_int_eq(ins(&f, POSFS_OID_LOCAL_MASK, 2), -EEXIST);
	ck_assert_int_eq(look(&f, POSFS_OID_LOCAL_MASK), 0);
	ck_assert_int_eq(look(&f, POSFS_OID_LOCAL_MASK - 1), -ENOENT);
	ck_assert_int_eq(look(&f, POSFS_OID_LOCAL_MASK + 1), -EINVAL);
	ck_assert_int_eq(rem(&f, POSFS_OID_LOCAL_MASK + 1), -EINVAL);
	ck_assert_int_eq(nxt(&f, POSFS_OID_LOCAL_MASK + 1), -ENOENT);
	fix_commit(&f);
	ck_assert_int_eq(chk(&f, &st), 0);
	ck_assert_uint_eq(st.height, maxh);
	ck_assert_uint_eq(st.onodes, 2 * maxh);
	ck_assert_uint_eq(st.interior + st.leaves, pfs_memstore_used(f.ms, SHARD));

	/* down again: each removal of the largest number leaves the height
	 * its new largest number needs */
	for (;;) {
		uint64_t at = 0, last = 0;
		uint32_t n = 0;
		struct pfs_onode o;

		while (at <= POSFS_OID_LOCAL_MASK && pfs_radix_next(f.tx, &f.rx, &at, &o) == 0) {
			last = at++;
			n++;
		}
		if (n == 2)
			break;
		ck_assert_int_eq(rem(&f, last), 0);
		at = 0;
		last = 0;
		while (at <= POSFS_OID_LOCAL_MASK && pfs_radix_next(f.tx, &f.rx, &at, &o) == 0)
			last = at++;
		ck_assert_uint_eq(f.root.height, height_for(bs, last));
		ck_assert_int_eq(chk(&f, &st), 0);
		fix_commit(&f);
	}
	ck_assert_int_le(f.root.height, 2);
	ck_assert_int_eq(rem(&f, 0), 0);
	ck_assert_int_eq(rem(&f, 0), -ENOENT);
	ck_assert_int_eq(chk(&f, &st), 0);
	ck_assert_uint_eq(f.root.height, 1);
	ck_assert_int_eq(rem(&f, S - 1), 0);
	ck_assert_uint_eq(f.root.blkno, 0);
	ck_assert_uint_eq(f.root.height, 0);
	fix_commit(&f);
	ck_assert_uint_eq(pfs_memstore_used(f.ms, SHARD), 0);
	fix_done(&f);
}

START_TEST(heights)
{
	heights_for(4096);
	heights_for(8192);
	heights_for(65536);
}
END_TEST

/* Removing the only child other than 0 collapses chains of roots. */
START_TEST(collapse_chain)
{
	struct fix f;
	uint64_t big = POSFS_OID_LOCAL_MASK;

	fix_init(&f, 4096, SHARD, 256);
	ck_assert_int_eq(ins(&f, 3, 1), 0);
	ck_assert_int_eq(ins(&f, big, 1), 0);
	ck_assert_uint_eq(f.root.height, 7);
	fix_commit(&f);
	ck_assert_uint_eq(pfs_memstore_used(f.ms, SHARD), 1 + 6 + 6);
	ck_assert_int_eq(rem(&f, big), 0);
	ck_assert_uint_eq(f.root.height, 1);
	fix_commit(&f);
	ck_assert_uint_eq(pfs_memstore_used(f.ms, SHARD), 1);
	ck_assert_int_eq(look(&f, 3), 0);
	ck_assert_int_eq(chk(&f, NULL), 0);
	/* and the other way: removing the low one leaves a tall, thin tree */
	ck_assert_int_eq(ins(&f, big, 2), 0);
	ck_assert_int_eq(rem(&f, 3), 0);
	ck_assert_uint_eq(f.root.height, 7);
	fix_commit(&f);
	ck_assert_uint_eq(pfs_memstore_used(f.ms, SHARD), 7);
	ck_assert_int_eq(chk(&f, NULL), 0);
	ck_assert_int_eq(rem(&f, big), 0);
	ck_assert_uint_eq(f.root.height, 0);
	fix_commit(&f);
	ck_assert_uint_eq(pfs_memstore_used(f.ms, SHARD), 0);
	fix_done(&f);
}
END_TEST

/* next() skips empty subtrees: a walk over two far-apart objects in the
 * tallest tree touches a handful of nodes (this would never finish if it
 * stepped through the numbers or the empty children one by one per
 * number). */
START_TEST(next_skips)
{
	struct fix f;
	struct pfs_onode o;
	uint64_t at;

	fix_init(&f, 4096, SHARD, 256);
	ck_assert_int_eq(ins(&f, 0, 1), 0);
	ck_assert_int_eq(ins(&f, 1000000007, 1), 0);
	ck_assert_int_eq(ins(&f, POSFS_OID_LOCAL_MASK, 1), 0);
	fix_commit(&f);
	for (int rep = 0; rep < 1000; rep++) {
		at = 1;
		ck_assert_int_eq(pfs_radix_next(f.tx, &f.rx, &at, &o), 0);
		ck_assert_uint_eq(at, 1000000007);
		ck_assert_uint_eq(o.oid, POSFS_OID(SHARD, 1000000007));
		at++;
		ck_assert_int_eq(pfs_radix_next(f.tx, &f.rx, &at, &o), 0);
		ck_assert_uint_eq(at, POSFS_OID_LOCAL_MASK);
		at = 0;
		ck_assert_int_eq(pfs_radix_next(f.tx, &f.rx, &at, &o), 0);
		ck_assert_uint_eq(at, 0);
	}
	ck_assert_int_eq(nxt(&f, POSFS_OID_LOCAL_MASK), 0);
	ck_assert_int_eq(rem(&f, POSFS_OID_LOCAL_MASK), 0);
	ck_assert_int_eq(nxt(&f, 1000000008), -ENOENT);
	fix_commit(&f);
	fix_done(&f);
}
END_TEST

/* Arguments out of range are -EINVAL, and change nothing. */
START_TEST(bad_arguments)
{
	struct fix f;
	struct pfs_onode o;
	struct pfs_buf *leaf;
	struct pfs_donode *slot;

	fix_init(&f, 4096, SHARD, 64);
	make_onode(SHARD, 5, 1, &o);
	o.oid = 0;
	ck_assert_int_eq(pfs_radix_insert(f.tx, &f.rx, &o), -EINVAL);
	make_onode(SHARD + 1, 5, 1, &o);	/* another shard's object */
	ck_assert_int_eq(pfs_radix_insert(f.tx, &f.rx, &o), -EINVAL);
	make_onode(SHARD, 5, 1, &o);
	o.oid |= UINT64_C(1) << 60;		/* above POSFS_OID_MAX */
	ck_assert_int_eq(pfs_radix_insert(f.tx, &f.rx, &o), -EINVAL);
	make_onode(SHARD, 5, 1, &o);
	o.mtime.nsec = 1000000000;		/* would not decode */
	ck_assert_int_eq(pfs_radix_insert(f.tx, &f.rx, &o), -EINVAL);
	ck_assert_uint_eq(f.root.height, 0);
	ck_assert_int_eq(ins(&f, 5, 1), 0);
	ck_assert_int_eq(pfs_radix_update(f.tx, &f.rx, &o), -EINVAL);
	ck_assert_int_eq(look(&f, 5), 0);
	ck_assert_int_eq(pfs_radix_slot(f.tx, &f.rx, 6, true, &leaf, &slot), -ENOENT);
	ck_assert_ptr_null(leaf);
	ck_assert_int_eq(pfs_radix_slot(f.tx, &f.rx, 5, false, &leaf, &slot), 0);
	ck_assert_uint_eq(slot->oid, htole64(POSFS_OID(SHARD, 5)));
	pfs_buf_put(leaf);
	fix_commit(&f);

	/* shard 0: number 0 is oid 0, the free slot, so it cannot be stored */
	{
		struct fix z;

		fix_init(&z, 4096, 0, 64);
		make_onode(0, 0, 1, &o);
		ck_assert_int_eq(pfs_radix_insert(z.tx, &z.rx, &o), -EINVAL);
		make_onode(0, POSFS_ROOT_OID, 1, &o);
		ck_assert_int_eq(pfs_radix_insert(z.tx, &z.rx, &o), 0);
		ck_assert_int_eq(look(&z, 0), -ENOENT);
		ck_assert_int_eq(look(&z, POSFS_ROOT_OID), 0);
		ck_assert_int_eq(nxt(&z, 0), 0);
		fix_commit(&z);
		ck_assert_int_eq(chk(&z, NULL), 0);
		fix_done(&z);
	}
	/* a shard out of range, a block size posfs does not have */
	f.rx.shard = POSFS_MAX_SHARDS;
	ck_assert_int_eq(look(&f, 5), -EINVAL);
	f.rx.shard = SHARD;
	fix_done(&f);
	{
		struct fix z;

		fix_init(&z, 2048, SHARD, 64);
		ck_assert_int_eq(ins(&z, 1, 1), -EINVAL);
		ck_assert_int_eq(look(&z, 1), -EINVAL);
		fix_done(&z);
	}
}
END_TEST

/* -ENOSPC at every point of a tall insert leaks no reference (commit would
 * say -EPROTO) and an abort restores the tree. Also with a hard limit. */
START_TEST(enospc_points)
{
	/* 4 blocks, then 5 new roots and a new path of 6: 11 allocations */
	for (long n = 0; n <= 11; n++) {
		struct fix f;

		fix_init(&f, 4096, SHARD, 256);
		pfs_memstore_unchecked(f.ms);
		for (uint64_t k = 0; k < 20; k++)
			ck_assert_int_eq(ins(&f, k, 1), 0);
		fix_commit(&f);
		pfs_memstore_fail_after(f.ms, n);
		ck_assert_int_eq(ins(&f, POSFS_OID_LOCAL_MASK - 3, 1), n < 11 ? -ENOSPC : 0);
		pfs_memstore_fail_after(f.ms, -1);
		ck_assert_int_eq(pfs_memtx_commit(f.tx), 0);	/* T3: no leaked reference */
		f.tx = NULL;
		fix_done(&f);

		fix_init(&f, 4096, SHARD, 256);
		pfs_memstore_unchecked(f.ms);
		for (uint64_t k = 0; k < 20; k++)
			ck_assert_int_eq(ins(&f, k, 1), 0);
		fix_commit(&f);
		pfs_memstore_fail_after(f.ms, n);
		ck_assert_int_eq(ins(&f, POSFS_OID_LOCAL_MASK - 3, 1), n < 11 ? -ENOSPC : 0);
		pfs_memstore_fail_after(f.ms, -1);
		fix_abort(&f);
		ck_assert_uint_eq(f.root.height, 2);
		ck_assert_uint_eq(pfs_memstore_used(f.ms, SHARD), 4);
		ck_assert_int_eq(chk(&f, NULL), 0);
		ck_assert_int_eq(look(&f, POSFS_OID_LOCAL_MASK - 3), -ENOENT);
		for (uint64_t k = 0; k < 20; k++)
			ck_assert_int_eq(look(&f, k), 0);
		fix_done(&f);
	}
	{
		struct fix f;
		uint64_t k;
		int ret = 0;

		fix_init(&f, 4096, SHARD, 256);
		pfs_memstore_unchecked(f.ms);
		pfs_memstore_set_limit(f.ms, SHARD, 10);
		for (k = 0; k < 1000 && !ret; k++) {
			ret = ins(&f, k, 1);
			if (!ret && k % 5 == 0)
				fix_commit(&f);
		}
		ck_assert_int_eq(ret, -ENOSPC);
		fix_abort(&f);
		ck_assert_int_eq(chk(&f, NULL), 0);
		ck_assert_int_le(pfs_memstore_used(f.ms, SHARD), 10);
		ck_assert_int_eq(nxt(&f, 0), 0);
		fix_done(&f);
	}
}
END_TEST

/* ---- corrupt trees ------------------------------------------------------- */

struct blk_rec {
	uint64_t blkno[64];
	uint16_t level[64];
	int n;
};

static int rec_node(void *arg, uint64_t blkno, uint16_t level)
{
	struct blk_rec *r = arg;

	if (r->n < 64) {
		r->blkno[r->n] = blkno;
		r->level[r->n] = level;
		r->n++;
	}
	return 0;
}

/* Numbers of the corruption trees (4 KiB: S = 7, F = 504): dense 0..99
 * (leaves 0..14 under one level-1 node), then 3528 = S*F (another level-1
 * node), and 10^7 (height 4). */
static const uint64_t corrupt_keys[] = {
	0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20,
	21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32, 33, 34, 35, 36, 37, 38, 39,
	40, 41, 42, 43, 44, 45, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58,
	59, 60, 61, 62, 63, 64, 65, 66, 67, 68, 69, 70, 71, 72, 73, 74, 75, 76, 77,
	78, 79, 80, 81, 82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95, 96,
	97, 98, 99, 3528, 10000000,
};
#define NKEYS (sizeof(corrupt_keys) / sizeof(corrupt_keys[0]))

static void corrupt_build(struct fix *f, struct blk_rec *r)
{
	struct pfs_radix_check_ops ops = { .node = rec_node, .arg = r };

	fix_init(f, 4096, SHARD, 256);
	for (size_t i = 0; i < NKEYS; i++)
		ck_assert_int_eq(ins(f, corrupt_keys[i], 1), 0);
	fix_commit(f);
	pfs_memstore_unchecked(f->ms);	/* the tests plant malformed nodes */
	memset(r, 0, sizeof(*r));
	ck_assert_int_eq(pfs_radix_check(f->tx, &f->rx, &ops, NULL), 0);
	ck_assert_uint_eq(f->root.height, 4);
}

/* Get node blkno of the given level, dirty, for breaking. */
static struct pfs_buf *node_for_edit(struct fix *f, uint64_t blkno, uint16_t level)
{
	struct pfs_block_expect exp = {
		.magic = level ? POSFS_MAGIC_RADIX : POSFS_MAGIC_ONODES,
	};
	struct pfs_buf *b;

	ck_assert_int_eq(pfs_tx_get(f->tx, blkno, &exp, &b), 0);
	ck_assert_int_eq(pfs_tx_dirty(f->tx, b), 0);
	return b;
}

/* The n-th node of a level in key order. */
static uint64_t nth_node(const struct blk_rec *r, uint16_t level, int n)
{
	for (int i = 0; i < r->n; i++)
		if (r->level[i] == level && n-- == 0)
			return r->blkno[i];
	ck_abort_msg("no node %d at level %u", n, level);
	return 0;
}

static uint64_t *child_ptr(struct pfs_buf *b, uint32_t i)
{
	return &((struct pfs_dradix *)pfs_buf_data(b))->child[i];
}

static struct pfs_dblock_hdr *hdr_ptr(struct pfs_buf *b)
{
	return (struct pfs_dblock_hdr *)pfs_buf_data(b);
}

/* Every operation touching number k says -EUCLEAN; commit after each to
 * prove that no error path leaks a reference. */
static void expect_corrupt(struct fix *f, uint64_t k)
{
	struct pfs_buf *leaf;
	struct pfs_donode *slot;
	struct pfs_onode o;
	uint64_t at = k;

	ck_assert_int_eq(look(f, k), -EUCLEAN);
	fix_commit(f);
	ck_assert_int_eq(upd(f, k, 7), -EUCLEAN);
	fix_commit(f);
	ck_assert_int_eq(pfs_radix_slot(f->tx, &f->rx, k, true, &leaf, &slot), -EUCLEAN);
	ck_assert_ptr_null(leaf);
	fix_commit(f);
	ck_assert_int_eq(pfs_radix_next(f->tx, &f->rx, &at, &o), -EUCLEAN);
	ck_assert_uint_eq(at, k);
	fix_commit(f);
	ck_assert_int_eq(chk(f, NULL), -EUCLEAN);
	fix_commit(f);
	ck_assert_int_eq(rem(f, k), -EUCLEAN);
	fix_commit(f);
}

START_TEST(corrupt_onode_oid)
{
	struct fix f;
	struct blk_rec r;
	struct pfs_buf *leaf;
	struct pfs_donode *slot;

	/* another number's oid in the slot */
	corrupt_build(&f, &r);
	ck_assert_int_eq(pfs_radix_slot(f.tx, &f.rx, 30, true, &leaf, &slot), 0);
	slot->oid = htole64(POSFS_OID(SHARD, 31));
	pfs_buf_put(leaf);
	fix_commit(&f);
	expect_corrupt(&f, 30);
	ck_assert_int_eq(ins(&f, 30, 2), -EUCLEAN);
	fix_commit(&f);
	ck_assert_int_eq(look(&f, 31), 0);
	ck_assert_int_eq(nxt(&f, 0), 0);
	fix_done(&f);

	/* another shard's oid */
	corrupt_build(&f, &r);
	ck_assert_int_eq(pfs_radix_slot(f.tx, &f.rx, 3528, true, &leaf, &slot), 0);
	slot->oid = htole64(POSFS_OID(SHARD + 1, 3528));
	pfs_buf_put(leaf);
	fix_commit(&f);
	expect_corrupt(&f, 3528);
	fix_done(&f);

	/* an onode that does not decode */
	corrupt_build(&f, &r);
	ck_assert_int_eq(pfs_radix_slot(f.tx, &f.rx, 10000000, true, &leaf, &slot), 0);
	slot->data_fmt = 9;
	pfs_buf_put(leaf);
	fix_commit(&f);
	ck_assert_int_eq(look(&f, 10000000), -EUCLEAN);
	ck_assert_int_eq(nxt(&f, 3529), -EUCLEAN);
	ck_assert_int_eq(chk(&f, NULL), -EUCLEAN);
	fix_commit(&f);
	fix_done(&f);

	/* garbage in a free slot, and after a leaf's last slot */
	corrupt_build(&f, &r);
	ck_assert_int_eq(pfs_radix_slot(f.tx, &f.rx, 3528, true, &leaf, &slot), 0);
	slot[1].mode = 1;	/* number 3529: free */
	pfs_buf_put(leaf);
	fix_commit(&f);
	ck_assert_int_eq(look(&f, 3529), -ENOENT);
	ck_assert_int_eq(ins(&f, 3529, 1), -EUCLEAN);
	ck_assert_int_eq(chk(&f, NULL), -EUCLEAN);
	fix_commit(&f);
	fix_done(&f);

	corrupt_build(&f, &r);
	leaf = node_for_edit(&f, nth_node(&r, 0, 0), 0);
	pfs_buf_data(leaf)[4095] = 1;
	pfs_buf_put(leaf);
	fix_commit(&f);
	ck_assert_int_eq(look(&f, 0), 0);
	ck_assert_int_eq(chk(&f, NULL), -EUCLEAN);
	fix_commit(&f);
	fix_done(&f);
}
END_TEST

START_TEST(corrupt_child_pointer)
{
	struct fix f;
	struct blk_rec r;
	struct pfs_buf *b, *x;

	/* level-1 node (numbers 0..99) points at an interior node: a leaf
	 * was expected, the magic is wrong */
	corrupt_build(&f, &r);
	b = node_for_edit(&f, nth_node(&r, 1, 0), 1);
	*child_ptr(b, 2) = htole64(nth_node(&r, 2, 0));
	pfs_buf_put(b);
	fix_commit(&f);
	expect_corrupt(&f, 14);
	ck_assert_int_eq(look(&f, 13), 0);
	ck_assert_int_eq(ins(&f, 15, 1), -EUCLEAN);
	fix_commit(&f);
	fix_done(&f);

	/* level-2 node points at a leaf where an interior node belongs */
	corrupt_build(&f, &r);
	b = node_for_edit(&f, nth_node(&r, 2, 0), 2);
	ck_assert_uint_ne(*child_ptr(b, 0), 0);
	*child_ptr(b, 0) = htole64(nth_node(&r, 0, 3));
	pfs_buf_put(b);
	fix_commit(&f);
	expect_corrupt(&f, 50);
	fix_done(&f);

	/* a node points at itself: the level says no, no endless descent */
	corrupt_build(&f, &r);
	b = node_for_edit(&f, nth_node(&r, 2, 0), 2);
	*child_ptr(b, 0) = htole64(pfs_buf_blkno(b));
	pfs_buf_put(b);
	fix_commit(&f);
	expect_corrupt(&f, 50);
	fix_done(&f);

	/* a block of another tree type */
	corrupt_build(&f, &r);
	ck_assert_int_eq(pfs_tx_new(f.tx, SHARD, POSFS_MAGIC_FREE, POSFS_OWNER_SHARD(SHARD), 0, &x), 0);
	hdr_ptr(x)->nr = htole16(1);
	b = node_for_edit(&f, nth_node(&r, 1, 0), 1);
	*child_ptr(b, 0) = htole64(pfs_buf_blkno(x));
	pfs_buf_put(b);
	pfs_buf_put(x);
	fix_commit(&f);
	expect_corrupt(&f, 3);
	fix_done(&f);

	/* a free block, a block past the end */
	for (int t = 0; t < 2; t++) {
		corrupt_build(&f, &r);
		b = node_for_edit(&f, nth_node(&r, 1, 0), 1);
		*child_ptr(b, 1) = htole64(t ? UINT64_C(1) << 40 : 200);
		pfs_buf_put(b);
		fix_commit(&f);
		expect_corrupt(&f, 8);
		fix_done(&f);
	}

	/* a right-type node of another place (shared by two parents): its
	 * onodes are in the wrong position there */
	corrupt_build(&f, &r);
	b = node_for_edit(&f, nth_node(&r, 1, 0), 1);
	*child_ptr(b, 2) = *child_ptr(b, 1);
	pfs_buf_put(b);
	fix_commit(&f);
	expect_corrupt(&f, 14);
	ck_assert_int_eq(look(&f, 7), 0);
	fix_done(&f);

	/* another owner */
	corrupt_build(&f, &r);
	b = node_for_edit(&f, nth_node(&r, 0, 2), 0);
	hdr_ptr(b)->owner = htole64(POSFS_OWNER_SHARD(SHARD + 1));
	pfs_buf_put(b);
	fix_commit(&f);
	expect_corrupt(&f, 15);
	fix_done(&f);

	/* a wrong level */
	corrupt_build(&f, &r);
	b = node_for_edit(&f, nth_node(&r, 1, 0), 1);
	hdr_ptr(b)->level = htole16(2);
	pfs_buf_put(b);
	fix_commit(&f);
	expect_corrupt(&f, 15);
	fix_done(&f);

	/* non-zero flags: only the check cares */
	corrupt_build(&f, &r);
	b = node_for_edit(&f, nth_node(&r, 1, 0), 1);
	hdr_ptr(b)->flags = htole32(1);
	pfs_buf_put(b);
	fix_commit(&f);
	ck_assert_int_eq(look(&f, 15), 0);
	ck_assert_int_eq(chk(&f, NULL), -EUCLEAN);
	fix_commit(&f);
	fix_done(&f);
}
END_TEST

START_TEST(corrupt_counts)
{
	struct fix f;
	struct blk_rec r;
	struct pfs_buf *b;

	/* leaf nr one too many: the check counts */
	corrupt_build(&f, &r);
	b = node_for_edit(&f, nth_node(&r, 0, 14), 0);	/* numbers 98, 99 */
	ck_assert_uint_eq(le16toh(hdr_ptr(b)->nr), 2);
	hdr_ptr(b)->nr = htole16(3);
	pfs_buf_put(b);
	fix_commit(&f);
	ck_assert_int_eq(look(&f, 98), 0);
	ck_assert_int_eq(chk(&f, NULL), -EUCLEAN);
	fix_commit(&f);
	fix_done(&f);

	/* leaf nr one too few: removing one would free a used leaf */
	corrupt_build(&f, &r);
	b = node_for_edit(&f, nth_node(&r, 0, 14), 0);
	hdr_ptr(b)->nr = htole16(1);
	pfs_buf_put(b);
	fix_commit(&f);
	ck_assert_int_eq(chk(&f, NULL), -EUCLEAN);
	fix_commit(&f);
	ck_assert_int_eq(rem(&f, 98), -EUCLEAN);
	fix_abort(&f);
	ck_assert_int_eq(look(&f, 99), 0);
	fix_done(&f);

	/* nr 0, and nr past the capacity */
	for (int t = 0; t < 2; t++) {
		corrupt_build(&f, &r);
		b = node_for_edit(&f, nth_node(&r, t, 0), (uint16_t)t);
		hdr_ptr(b)->nr = htole16(t ? 505 : 0);
		pfs_buf_put(b);
		fix_commit(&f);
		expect_corrupt(&f, 2);
		ck_assert_int_eq(ins(&f, 2, 2), -EUCLEAN);
		fix_commit(&f);
		fix_done(&f);
	}

	/* interior nr says full: an insert that needs a new child */
	corrupt_build(&f, &r);
	b = node_for_edit(&f, nth_node(&r, 1, 0), 1);
	hdr_ptr(b)->nr = htole16(504);
	pfs_buf_put(b);
	fix_commit(&f);
	ck_assert_int_eq(ins(&f, 200, 1), -EUCLEAN);
	fix_commit(&f);
	ck_assert_int_eq(chk(&f, NULL), -EUCLEAN);
	fix_commit(&f);
	fix_done(&f);

	/* root nr says one child while there are two: the collapse after a
	 * removal looks, and the check counts */
	corrupt_build(&f, &r);
	ck_assert_int_eq(rem(&f, 10000000), 0);
	ck_assert_uint_eq(f.root.height, 3);
	fix_commit(&f);
	b = node_for_edit(&f, f.root.blkno, 2);
	hdr_ptr(b)->nr = htole16(1);
	pfs_buf_put(b);
	fix_commit(&f);
	ck_assert_int_eq(chk(&f, NULL), -EUCLEAN);
	ck_assert_int_eq(look(&f, 3528), 0);
	ck_assert_int_eq(rem(&f, 3528), -EUCLEAN);
	fix_abort(&f);
	fix_done(&f);

	/* a root with child 0 only (one level too many) */
	corrupt_build(&f, &r);
	ck_assert_int_eq(rem(&f, 10000000), 0);
	fix_commit(&f);
	b = node_for_edit(&f, f.root.blkno, 2);
	ck_assert_uint_ne(*child_ptr(b, 1), 0);
	*child_ptr(b, 1) = 0;
	hdr_ptr(b)->nr = htole16(1);
	pfs_buf_put(b);
	fix_commit(&f);
	ck_assert_int_eq(look(&f, 5), 0);
	ck_assert_int_eq(chk(&f, NULL), -EUCLEAN);
	fix_commit(&f);
	fix_done(&f);

	/* the caller's root is wrong */
	corrupt_build(&f, &r);
	{
		struct pfs_tree_root good = f.root;
		struct pfs_tree_root bad[] = {
			{ good.blkno, 8 },		/* past the max height */
			{ good.blkno, 100 },
			{ 0, 3 },			/* blkno and height disagree */
			{ good.blkno, 0 },
			{ good.blkno, 3 },		/* wrong level */
			{ nth_node(&r, 0, 0), 2 },	/* a leaf as interior */
			{ nth_node(&r, 1, 0), 1 },	/* interior as a leaf */
		};

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			f.root = bad[i];
			ck_assert_int_eq(look(&f, 3), -EUCLEAN);
			ck_assert_int_eq(ins(&f, 3, 1), -EUCLEAN);
			ck_assert_int_eq(nxt(&f, 0), -EUCLEAN);
			ck_assert_int_eq(rem(&f, 3), -EUCLEAN);
			ck_assert_int_eq(chk(&f, NULL), -EUCLEAN);
			fix_commit(&f);
		}
		f.root = good;
		ck_assert_int_eq(chk(&f, NULL), 0);
	}
	fix_done(&f);
}
END_TEST

/* A root child past the last number (its numbers would be above 2^48-1,
 * or not even fit 64 bits with 32 KiB blocks). */
START_TEST(corrupt_root_range)
{
	for (uint32_t bs = 4096; bs <= 65536; bs *= 2) {
		uint32_t F = POSFS_RADIX_FANOUT(bs);
		struct fix f;
		struct pfs_buf *b;
		uint64_t at = 0;
		struct pfs_onode o;

		fix_init(&f, bs, SHARD, 64);
		ck_assert_int_eq(ins(&f, POSFS_OID_LOCAL_MASK, 1), 0);
		fix_commit(&f);
		ck_assert_uint_eq(f.root.height, pfs_radix_max_height(bs));
		b = node_for_edit(&f, f.root.blkno, (uint16_t)(f.root.height - 1));
		for (uint32_t i = 0; i < F - 1; i++) {
			if (*child_ptr(b, i)) {
				*child_ptr(b, F - 1) = *child_ptr(b, i);
				*child_ptr(b, i) = 0;
				break;
			}
		}
		ck_assert_uint_ne(*child_ptr(b, F - 1), 0);
		pfs_buf_put(b);
		fix_commit(&f);
		ck_assert_int_eq(pfs_radix_next(f.tx, &f.rx, &at, &o), -EUCLEAN);
		ck_assert_int_eq(chk(&f, NULL), -EUCLEAN);
		ck_assert_int_eq(look(&f, POSFS_OID_LOCAL_MASK), -ENOENT);
		fix_commit(&f);
		fix_done(&f);
	}
}
END_TEST

/* Random single-byte damage anywhere in a sealed node (past crc and size,
 * which the transaction itself needs): every operation returns one of the
 * documented codes, never crashes, never loops. */
START_TEST(corrupt_random_bytes)
{
	uint64_t s = 0xbadb10c;
	int caught = 0;

	for (int iter = 0; iter < 300; iter++) {
		struct fix f;
		struct blk_rec r;
		struct pfs_buf *b;
		struct pfs_onode o;
		int which, ret;
		uint32_t off;

		corrupt_build(&f, &r);
		which = (int)rng_below(&s, r.n);
		b = node_for_edit(&f, r.blkno[which], r.level[which]);
		off = r.level[which] ? 12 + (uint32_t)rng_below(&s, 64 + 8 * 16 - 12)
				     : 12 + (uint32_t)rng_below(&s, 4096 - 12);
		if (off >= 0x20 && off < 0x28)
			off = 0x0e;	/* the lsn is rewritten at commit */
		pfs_buf_data(b)[off] ^= (uint8_t)(1 + rng_below(&s, 255));
		pfs_buf_put(b);
		fix_commit(&f);

		ret = chk(&f, NULL);
		ck_assert(ret == 0 || ret == -EUCLEAN);
		caught += ret == -EUCLEAN;
		for (size_t i = 0; i < NKEYS; i++) {
			uint64_t at = corrupt_keys[i];

			ret = look(&f, corrupt_keys[i]);
			ck_assert(ret == 0 || ret == -ENOENT || ret == -EUCLEAN);
			ret = pfs_radix_next(f.tx, &f.rx, &at, &o);
			ck_assert(ret == 0 || ret == -ENOENT || ret == -EUCLEAN);
		}
		fix_commit(&f);
		for (size_t i = 0; i < NKEYS; i += 7) {
			ret = ins(&f, corrupt_keys[i] + 1000, 3);
			ck_assert(ret == 0 || ret == -EEXIST || ret == -EUCLEAN);
			ret = rem(&f, corrupt_keys[i]);
			ck_assert(ret == 0 || ret == -ENOENT || ret == -EUCLEAN);
		}
		ck_assert_int_eq(pfs_memtx_commit(f.tx), 0);
		f.tx = NULL;
		fix_done(&f);
	}
	ck_assert_int_gt(caught, 100);
}
END_TEST

/* Salvage: whatever one random byte broke, the repaired tree passes the
 * check, a second salvage finds nothing, and every number reads back as
 * it was or is gone (never a wrong onode, never an error). */
static int salvage_bad_cb(void *arg, enum pfs_radix_bad what, uint64_t blkno, uint32_t slot,
			  int err)
{
	int *n = arg;

	(void)what;
	(void)blkno;
	(void)slot;
	ck_assert(err == -EUCLEAN || err == -EBADMSG);
	(*n)++;
	return PFS_RADIX_CUT;
}

/*
 * The blocks of a salvage, as fsck counts them: every node given to
 * node() is in the tree afterwards unless bad() cut it or cut() says
 * repairs took it out (fsck's block map depends on it).
 */
struct salvage_acct {
	int bad;
	uint64_t seen[512], gone[512], after[512];
	int nseen, ngone, nafter;
};

static void acct_add(uint64_t *v, int *n, uint64_t b)
{
	ck_assert_int_lt(*n, 512);
	v[(*n)++] = b;
}

static bool acct_has(const uint64_t *v, int n, uint64_t b)
{
	for (int i = 0; i < n; i++)
		if (v[i] == b)
			return true;
	return false;
}

static int acct_node(void *arg, uint64_t blkno, uint16_t level)
{
	struct salvage_acct *a = arg;

	(void)level;
	acct_add(a->seen, &a->nseen, blkno);
	return 0;
}

static int acct_bad(void *arg, enum pfs_radix_bad what, uint64_t blkno, uint32_t slot, int err)
{
	struct salvage_acct *a = arg;

	if (what == PFS_RADIX_BAD_NODE)
		acct_add(a->gone, &a->ngone, blkno);
	return salvage_bad_cb(&a->bad, what, blkno, slot, err);
}

static void acct_cut(void *arg, uint64_t blkno)
{
	struct salvage_acct *a = arg;

	ck_assert(acct_has(a->seen, a->nseen, blkno));
	acct_add(a->gone, &a->ngone, blkno);
}

static int acct_after(void *arg, uint64_t blkno, uint16_t level)
{
	struct salvage_acct *a = arg;

	(void)level;
	acct_add(a->after, &a->nafter, blkno);
	return 0;
}

static void acct_verify(const struct salvage_acct *a)
{
	for (int i = 0; i < a->nseen; i++)
		ck_assert(acct_has(a->gone, a->ngone, a->seen[i]) ||
			  acct_has(a->after, a->nafter, a->seen[i]));
	for (int i = 0; i < a->nafter; i++) {
		ck_assert(acct_has(a->seen, a->nseen, a->after[i]));
		ck_assert(!acct_has(a->gone, a->ngone, a->after[i]));
	}
}

START_TEST(salvage_random_bytes)
{
	uint64_t s = 0x5a1fa9e;
	int repaired = 0, cuts = 0;

	for (int iter = 0; iter < 300; iter++) {
		struct fix f;
		struct blk_rec r;
		struct pfs_buf *b;
		int which, bad = 0, found = 0, changed = 0, first;
		struct pfs_radix_check_ops ops = { .bad = salvage_bad_cb, .arg = &bad };
		struct salvage_acct acct = { 0 };
		struct pfs_radix_check_ops aops = { acct_node, NULL, acct_bad, acct_cut, &acct };
		struct pfs_radix_check_ops after = { .node = acct_after, .arg = &acct };
		uint32_t off;

		corrupt_build(&f, &r);
		which = (int)rng_below(&s, r.n);
		b = node_for_edit(&f, r.blkno[which], r.level[which]);
		off = r.level[which] ? 12 + (uint32_t)rng_below(&s, 64 + 8 * 16 - 12)
				     : 12 + (uint32_t)rng_below(&s, 4096 - 12);
		if (off >= 0x20 && off < 0x28)
			off = 0x0e;	/* the lsn is rewritten at commit */
		pfs_buf_data(b)[off] ^= (uint8_t)(1 + rng_below(&s, 255));
		pfs_buf_put(b);
		fix_commit(&f);

		ck_assert_int_eq(pfs_radix_salvage(f.tx, &f.rx, &aops, NULL), 0);
		fix_commit(&f);
		bad = acct.bad;
		repaired += bad > 0;
		first = bad;
		ck_assert_int_eq(chk(&f, NULL), 0);
		ck_assert_int_eq(pfs_radix_check(f.tx, &f.rx, &after, NULL), 0);
		acct_verify(&acct);
		for (int i = 0; i < acct.ngone; i++)
			cuts += acct_has(acct.seen, acct.nseen, acct.gone[i]);
		bad = 0;
		ck_assert_int_eq(pfs_radix_salvage(f.tx, &f.rx, &ops, NULL), 0);
		ck_assert_int_eq(bad, 0);
		for (size_t i = 0; i < NKEYS; i++) {
			struct pfs_onode o, want;
			int ret = pfs_radix_lookup(f.tx, &f.rx, corrupt_keys[i], &o);

			ck_assert(ret == 0 || ret == -ENOENT);
			if (ret)
				continue;
			found++;
			make_onode(SHARD, corrupt_keys[i], 1, &want);
			changed += !onode_same(&o, &want);
		}
		/* a byte that still decodes changes one onode at most (the
		 * memory tx seals blocks, so no checksum catches it) */
		ck_assert_int_le(changed, 1);
		/* nothing reported: nothing lost */
		if (!first)
			ck_assert_int_eq(found, (int)NKEYS);
		ck_assert_int_eq(pfs_memtx_commit(f.tx), 0);
		f.tx = NULL;
		fix_done(&f);
	}
	ck_assert_int_gt(repaired, 100);
	ck_assert_int_gt(cuts, 0);
}
END_TEST

static Suite *radix_suite(void)
{
	Suite *s = suite_create("radix");
	TCase *tc = tcase_create("core");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, max_height);
	tcase_add_test(tc, heights);
	tcase_add_test(tc, collapse_chain);
	tcase_add_test(tc, next_skips);
	tcase_add_test(tc, bad_arguments);
	tcase_add_test(tc, enospc_points);
	tcase_add_test(tc, corrupt_onode_oid);
	tcase_add_test(tc, corrupt_child_pointer);
	tcase_add_test(tc, corrupt_counts);
	tcase_add_test(tc, corrupt_root_range);
	tcase_add_test(tc, corrupt_random_bytes);
	tcase_add_test(tc, salvage_random_bytes);
	tcase_add_test(tc, model_4k_fixed);
	tcase_add_test(tc, model_4k_random);
	tcase_add_test(tc, model_64k_fixed);
	tcase_add_test(tc, model_64k_random);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(radix_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
