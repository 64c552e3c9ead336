/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The in-memory free-space index (src/store/alloc.c): random operations
 * against a reference model (a state per block: in use, free or pending
 * with its seq), every result compared and every invariant checked after
 * every operation, best-fit answers included (the model computes the
 * documented policy by brute force); double frees and overlaps refused
 * with nothing changed; -ENOSPC with nothing changed; undoing an aborted
 * transaction; iteration, and check() catching damage; and a scale run
 * over 100,000 fragmented extents. The same suite also runs against
 * alloc.c built with 6-entry B+tree nodes (test_alloc_small), where the
 * small models make trees deep enough to split, borrow and merge at every
 * level.
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "store/alloc.h"

/*
 * Assertions for hot loops. libcheck's ck_assert_* tell the runner about
 * every passing check (a write system call each); these call into check
 * only on failure, and name the seed and operation of the random run.
 */
static uint64_t cur_seed;
static long cur_op = -1;

#define MUST(cond, ...)							\
	do {								\
		if (!(cond))						\
			ck_abort_msg(__VA_ARGS__);			\
	} while (0)

#define MUST_INT_EQ(x, y)						\
	do {								\
		intmax_t x_ = (x), y_ = (y);				\
		if (x_ != y_)						\
			ck_abort_msg("%s == %jd, not %jd: seed %" PRIu64 \
				     " op %ld", #x, x_, y_, cur_seed, cur_op); \
	} while (0)

#define MUST_UINT_EQ(x, y)						\
	do {								\
		uintmax_t x_ = (x), y_ = (y);				\
		if (x_ != y_)						\
			ck_abort_msg("%s == %ju, not %ju: seed %" PRIu64 \
				     " op %ld", #x, x_, y_, cur_seed, cur_op); \
	} while (0)

/* ---- random numbers ----------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t x = rng_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545F4914F6CDD1Dull;
}

/* Uniform enough in [0, n), n > 0. */
static uint64_t rnd_below(uint64_t n)
{
	return rnd() % n;
}

static void rng_seed(uint64_t seed)
{
	cur_seed = seed;
	cur_op = -1;
	rng_state = seed ? seed : 0x9e3779b97f4a7c15ull;
	for (int i = 0; i < 4; i++)
		rnd();
}

/* ---- snapshots of the index --------------------------------------------- */

struct rec {
	uint64_t start, len, seq;
};

struct recs {
	struct rec *v;
	size_t n, cap;
};

static int recs_push(void *arg, uint64_t start, uint64_t len, uint64_t seq)
{
	struct recs *r = arg;

	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 256;
		r->v = realloc(r->v, r->cap * sizeof(*r->v));
		ck_assert_ptr_nonnull(r->v);
	}
	r->v[r->n++] = (struct rec){ start, len, seq };
	return 0;
}

static void snap(const struct pfs_alloc *a, struct recs *fr, struct recs *pr)
{
	fr->n = 0;
	pr->n = 0;
	MUST_INT_EQ(pfs_alloc_foreach_free(a, 0, recs_push, fr), 0);
	MUST_INT_EQ(pfs_alloc_foreach_pending(a, recs_push, pr), 0);
}

static bool recs_equal(const struct recs *x, const struct recs *y)
{
	return x->n == y->n && (!x->n || !memcmp(x->v, y->v, x->n * sizeof(*x->v)));
}

/* ---- the reference model ------------------------------------------------ */

#define NB 4096				/* blocks in the model shard */
#define B0 ((1ull << 40) + 12345)	/* block number of model block 0 */

enum { USED, FREE, PEND };

struct model {
	uint8_t st[NB];
	uint64_t seq[NB];
	uint64_t nfree, npend;
	struct rec runs[NB];		/* free runs, scratch */
	size_t nruns;
};

static void model_runs(struct model *m)
{
	m->nruns = 0;
	for (size_t i = 0; i < NB;) {
		size_t j = i;

		if (m->st[i] != FREE) {
			i++;
			continue;
		}
		while (j < NB && m->st[j] == FREE)
			j++;
		m->runs[m->nruns++] = (struct rec){ B0 + i, j - i, 0 };
		i = j;
	}
}

static void model_set(struct model *m, uint64_t blk, uint64_t len, int st, uint64_t seq)
{
	for (uint64_t b = blk - B0; b < blk - B0 + len; b++) {
		m->nfree -= m->st[b] == FREE;
		m->npend -= m->st[b] == PEND;
		m->st[b] = (uint8_t)st;
		m->seq[b] = seq;
		m->nfree += st == FREE;
		m->npend += st == PEND;
	}
}

/* Do all blocks of [blk, blk + len) (model range) have state st? */
static bool model_all(const struct model *m, uint64_t blk, uint64_t len, int st)
{
	for (uint64_t b = blk - B0; b < blk - B0 + len; b++)
		if (m->st[b] != st)
			return false;
	return true;
}

static bool model_any_not_used(const struct model *m, uint64_t blk, uint64_t len)
{
	for (uint64_t b = blk - B0; b < blk - B0 + len; b++)
		if (m->st[b] != USED)
			return true;
	return false;
}

static uint64_t dist(uint64_t x, uint64_t y)
{
	return x > y ? x - y : y - x;
}

/* Of the runs of length exactly l, the nearest to hint (policy). */
static const struct rec *model_nearest(const struct model *m, uint64_t l, uint64_t hint)
{
	const struct rec *best = NULL;

	for (size_t i = 0; i < m->nruns; i++) {
		const struct rec *r = &m->runs[i];

		if (r->len != l)
			continue;
		if (!best || (hint != PFS_ALLOC_NO_HINT &&
			      dist(r->start, hint) < dist(best->start, hint)))
			best = r;
	}
	return best;
}

/* The documented pfs_alloc_best_fit policy by brute force; false: ENOSPC. */
static bool model_best_fit(struct model *m, uint64_t len, uint64_t hint, uint64_t *at)
{
	uint64_t l = UINT64_MAX;

	model_runs(m);
	for (size_t i = 0; i < m->nruns; i++) {
		const struct rec *r = &m->runs[i];

		if (hint != PFS_ALLOC_NO_HINT && r->start <= hint &&
		    hint < r->start + r->len && r->start + r->len - hint >= len) {
			*at = hint;
			return true;
		}
		if (r->len >= len && r->len < l)
			l = r->len;
	}
	if (l == UINT64_MAX)
		return false;
	*at = model_nearest(m, l, hint)->start;
	return true;
}

static bool model_some(struct model *m, uint64_t len, uint64_t hint, uint64_t *at,
		       uint64_t *got)
{
	uint64_t l = 0;

	if (model_best_fit(m, len, hint, at)) {
		*got = len;
		return true;
	}
	for (size_t i = 0; i < m->nruns; i++)
		if (m->runs[i].len > l)
			l = m->runs[i].len;
	if (!l)
		return false;
	*at = model_nearest(m, l, hint)->start;
	*got = l;
	return true;
}

/* The index equals the model, and its own invariants hold. */
static void compare(const struct pfs_alloc *a, struct model *m, struct recs *fr,
		    struct recs *pr, uint64_t seed, long op)
{
	uint64_t pblocks = 0;

	MUST(pfs_alloc_check(a) == 0, "check failed: seed %" PRIu64 " op %ld",
		      seed, op);
	snap(a, fr, pr);
	model_runs(m);
	MUST(fr->n == m->nruns, "extents %zu != model %zu: seed %" PRIu64 " op %ld",
		      fr->n, m->nruns, seed, op);
	for (size_t i = 0; i < fr->n; i++)
		MUST(fr->v[i].start == m->runs[i].start && fr->v[i].len == m->runs[i].len,
			      "extent %zu differs: seed %" PRIu64 " op %ld", i, seed, op);
	MUST(pfs_alloc_extent_count(a) == m->nruns && pfs_alloc_free_blocks(a) == m->nfree,
		      "counters: seed %" PRIu64 " op %ld", seed, op);
	for (size_t i = 0; i < pr->n; i++) {
		const struct rec *r = &pr->v[i];

		MUST(r->start >= B0 && r->start + r->len <= B0 + NB,
			      "pending outside: seed %" PRIu64 " op %ld", seed, op);
		for (uint64_t b = r->start - B0; b < r->start - B0 + r->len; b++)
			MUST(m->st[b] == PEND && m->seq[b] == r->seq,
				      "pending block %" PRIu64 ": seed %" PRIu64 " op %ld",
				      b, seed, op);
		pblocks += r->len;
	}
	/* Records are disjoint (check): covering npend blocks covers all. */
	MUST(pblocks == m->npend && pfs_alloc_pending_blocks(a) == m->npend &&
		      pfs_alloc_pending_count(a) == pr->n,
		      "pending counters: seed %" PRIu64 " op %ld", seed, op);
}

/* A random model range [*start, *start + *len) of at most max blocks. */
static void rnd_range(uint64_t max, uint64_t *start, uint64_t *len)
{
	uint64_t b = rnd_below(NB);

	*start = B0 + b;
	*len = 1 + rnd_below(max);
	if (b + *len > NB)
		*len = NB - b;
}

/*
 * A range of blocks all in state st: from a random block of that state
 * (searching from a random place), at most max long. False if none.
 */
static bool rnd_range_in(const struct model *m, int st, uint64_t max, uint64_t *start,
			 uint64_t *len)
{
	uint64_t b = rnd_below(NB), n = 0, l = 1 + rnd_below(max);

	while (n < NB && m->st[(b + n) % NB] != st)
		n++;
	if (n == NB)
		return false;
	b = (b + n) % NB;
	n = 1;
	while (n < l && b + n < NB && m->st[b + n] == st)
		n++;
	*start = B0 + b;
	*len = n;
	return true;
}

static uint64_t rnd_hint(uint64_t last_end)
{
	switch (rnd_below(4)) {
	case 0:
		return PFS_ALLOC_NO_HINT;
	case 1:
		return last_end;
	default:
		return B0 + rnd_below(NB + 8);
	}
}

static uint64_t rnd_alloc_len(void)
{
	return rnd_below(8) ? 1 + rnd_below(12) : 1 + rnd_below(200);
}

static void run_model(uint64_t seed, long ops)
{
	struct pfs_alloc a;
	struct model *m = calloc(1, sizeof(*m));
	struct recs fr = { 0 }, pr = { 0 };
	uint64_t cur_seq = 10, last_end = B0, start, len, at, got, exp_at, exp_got;
	uint64_t piece[NB / 64];
	long stat_ok = 0, stat_fail = 0;
	int ret, exp;

	ck_assert_ptr_nonnull(m);
	rng_seed(seed);
	MUST_INT_EQ(pfs_alloc_init(&a), 0);

	/* Load: every block free, in pieces, in random order. */
	for (size_t i = 0; i < NB / 64; i++)
		piece[i] = i * 64;
	for (size_t i = NB / 64; i > 1; i--) {
		size_t j = rnd_below(i);
		uint64_t t = piece[i - 1];

		piece[i - 1] = piece[j];
		piece[j] = t;
	}
	for (size_t i = 0; i < NB / 64; i++) {
		uint64_t o = piece[i];

		MUST_INT_EQ(pfs_alloc_add_free(&a, B0 + o, 40), 0);
		MUST_INT_EQ(pfs_alloc_add_free(&a, B0 + o + 40, 24), 0);
		model_set(m, B0 + o, 64, FREE, 0);
	}
	compare(&a, m, &fr, &pr, seed, -1);
	MUST_UINT_EQ(pfs_alloc_extent_count(&a), 1);

	for (long op = 0; op < ops; op++) {
		unsigned kind = (unsigned)rnd_below(100);

		cur_op = op;

		if (rnd_below(8) == 0)
			cur_seq++;
		if (kind < 22) {
			/* add_free: mostly blocks in use (success), some random. */
			if (!(rnd_below(4) && rnd_range_in(m, USED, 48, &start, &len)))
				rnd_range(32, &start, &len);
			exp = model_any_not_used(m, start, len) ? -EEXIST : 0;
			ret = pfs_alloc_add_free(&a, start, len);
			MUST(ret == exp, "add_free %d != %d: seed %" PRIu64 " op %ld",
				      ret, exp, seed, op);
			if (!ret)
				model_set(m, start, len, FREE, 0);
		} else if (kind < 30) {
			/* take */
			if (rnd_below(2) && rnd_range_in(m, FREE, 24, &start, &len)) {
				uint64_t skip = rnd_below(len);

				start += skip;
				len -= skip;
				len = 1 + rnd_below(len);
			} else {
				rnd_range(16, &start, &len);
			}
			exp = model_all(m, start, len, FREE) ? 0 : -ENOENT;
			ret = pfs_alloc_take(&a, start, len);
			MUST(ret == exp, "take %d != %d: seed %" PRIu64 " op %ld",
				      ret, exp, seed, op);
			if (!ret)
				model_set(m, start, len, USED, 0);
		} else if (kind < 48) {
			uint64_t hint = rnd_hint(last_end);

			len = rnd_alloc_len();
			exp = model_best_fit(m, len, hint, &exp_at) ? 0 : -ENOSPC;
			ret = pfs_alloc_best_fit(&a, len, hint, &at);
			MUST(ret == exp, "best_fit %d != %d: seed %" PRIu64 " op %ld",
				      ret, exp, seed, op);
			if (!ret) {
				MUST(at == exp_at, "best_fit at %" PRIu64 " != %" PRIu64
					      ": seed %" PRIu64 " op %ld", at, exp_at, seed, op);
				model_set(m, at, len, USED, 0);
				last_end = at + len;
			}
		} else if (kind < 58) {
			uint64_t hint = rnd_hint(last_end);

			len = rnd_alloc_len() * (rnd_below(4) ? 1 : 8);
			exp = model_some(m, len, hint, &exp_at, &exp_got) ? 0 : -ENOSPC;
			ret = pfs_alloc_some(&a, len, hint, &at, &got);
			MUST(ret == exp, "some %d != %d: seed %" PRIu64 " op %ld",
				      ret, exp, seed, op);
			if (!ret) {
				MUST(at == exp_at && got == exp_got,
					      "some (%" PRIu64 ",%" PRIu64 ") != (%" PRIu64 ",%" PRIu64
					      "): seed %" PRIu64 " op %ld",
					      at, got, exp_at, exp_got, seed, op);
				model_set(m, at, got, USED, 0);
				last_end = at + got;
			}
		} else if (kind < 74) {
			/* defer: mostly the current seq, sometimes an older one */
			uint64_t seq = cur_seq - (rnd_below(6) ? 0 : rnd_below(4));

			if (!(rnd_below(4) && rnd_range_in(m, USED, 32, &start, &len)))
				rnd_range(16, &start, &len);
			exp = model_any_not_used(m, start, len) ? -EEXIST : 0;
			ret = pfs_alloc_defer(&a, start, len, seq);
			MUST(ret == exp, "defer %d != %d: seed %" PRIu64 " op %ld",
				      ret, exp, seed, op);
			if (!ret)
				model_set(m, start, len, PEND, seq);
		} else if (kind < 82) {
			uint64_t d = cur_seq - rnd_below(8);

			MUST_INT_EQ(pfs_alloc_release_upto(&a, d), 0);
			for (size_t b = 0; b < NB; b++)
				if (m->st[b] == PEND && m->seq[b] <= d)
					model_set(m, B0 + b, 1, FREE, 0);
		} else if (kind < 90) {
			/* undefer: a pending run (maybe of several seqs) or random */
			if (rnd_below(3) && rnd_range_in(m, PEND, 24, &start, &len)) {
				uint64_t skip = rnd_below(len);

				start += skip;
				len = 1 + rnd_below(len - skip);
			} else {
				rnd_range(8, &start, &len);
			}
			exp = model_all(m, start, len, PEND) ? 0 : -ENOENT;
			ret = pfs_alloc_undefer(&a, start, len);
			MUST(ret == exp, "undefer %d != %d: seed %" PRIu64 " op %ld",
				      ret, exp, seed, op);
			if (!ret)
				model_set(m, start, len, USED, 0);
		} else if (kind < 93) {
			uint64_t seq = cur_seq - rnd_below(12);

			MUST_INT_EQ(pfs_alloc_undefer_seq(&a, seq), 0);
			for (size_t b = 0; b < NB; b++)
				if (m->st[b] == PEND && m->seq[b] == seq)
					model_set(m, B0 + b, 1, USED, 0);
		} else {
			/* find: the run holding or following a block */
			uint64_t blk = B0 - 2 + rnd_below(NB + 4), fs = 0, fl = 0;
			const struct rec *want = NULL;

			model_runs(m);
			for (size_t i = 0; i < m->nruns && !want; i++)
				if (m->runs[i].start + m->runs[i].len > blk)
					want = &m->runs[i];
			ret = pfs_alloc_find(&a, blk, &fs, &fl);
			MUST(ret == (want ? 0 : -ENOENT),
				      "find: seed %" PRIu64 " op %ld", seed, op);
			if (want)
				MUST(fs == want->start && fl == want->len,
					      "find: seed %" PRIu64 " op %ld", seed, op);
			if (rnd_below(16) == 0)
				MUST_INT_EQ(pfs_alloc_reserve(&a, rnd_below(600)), 0);
		}
		if (ret)
			stat_fail++;
		else
			stat_ok++;
		ret = 0;
		compare(&a, m, &fr, &pr, seed, op);
	}
	/* Both outcomes were exercised. */
	MUST(stat_ok > ops / 4 && stat_fail > ops / 20,
		      "ok %ld fail %ld: seed %" PRIu64, stat_ok, stat_fail, seed);

	/* Everything back: one extent again. */
	MUST_INT_EQ(pfs_alloc_release_upto(&a, UINT64_MAX), 0);
	for (size_t b = 0; b < NB; b++)
		if (m->st[b] == USED)
			MUST_INT_EQ(pfs_alloc_add_free(&a, B0 + b, 1), 0);
	MUST_INT_EQ(pfs_alloc_check(&a), 0);
	MUST_UINT_EQ(pfs_alloc_extent_count(&a), 1);
	MUST_UINT_EQ(pfs_alloc_free_blocks(&a), NB);
	MUST_UINT_EQ(pfs_alloc_pending_blocks(&a), 0);

	pfs_alloc_fini(&a);
	free(fr.v);
	free(pr.v);
	free(m);
}

START_TEST(model_fixed_seed)
{
	run_model(0x5eed0001ull, 150000);
}
END_TEST

START_TEST(model_random_seed)
{
	uint64_t seed = (uint64_t)time(NULL) * 1000003u ^ (uint64_t)getpid();

	run_model(seed, 150000);
}
END_TEST

/* ---- explicit cases ----------------------------------------------------- */

/* Errors leave everything as it was. */
static void assert_unchanged(const struct pfs_alloc *a, const struct recs *f0,
			     const struct recs *p0)
{
	struct recs f1 = { 0 }, p1 = { 0 };

	MUST_INT_EQ(pfs_alloc_check(a), 0);
	snap(a, &f1, &p1);
	MUST(recs_equal(f0, &f1), "free extents changed: seed %" PRIu64, cur_seed);
	MUST(recs_equal(p0, &p1), "pending changed: seed %" PRIu64, cur_seed);
	free(f1.v);
	free(p1.v);
}

START_TEST(double_free_and_overlap)
{
	struct pfs_alloc a;
	struct recs f0 = { 0 }, p0 = { 0 };

	pfs_alloc_init(&a);
	MUST_INT_EQ(pfs_alloc_add_free(&a, 100, 10), 0);	/* [100,110) */
	MUST_INT_EQ(pfs_alloc_add_free(&a, 200, 10), 0);	/* [200,210) */
	MUST_INT_EQ(pfs_alloc_defer(&a, 150, 10, 7), 0);	/* [150,160) */
	snap(&a, &f0, &p0);

	/* Free ranges overlapping free space: exact, inside, around, edges. */
	static const uint64_t bad[][2] = {
		{ 100, 10 }, { 103, 2 }, { 90, 30 }, { 95, 6 }, { 109, 5 },
		{ 99, 2 }, { 109, 1 }, { 100, 1 }, { 0, 1000 },
		/* ... and pending space */
		{ 150, 10 }, { 155, 1 }, { 145, 6 }, { 159, 3 }, { 140, 40 },
		/* ... and both */
		{ 105, 50 },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		MUST_INT_EQ(pfs_alloc_add_free(&a, bad[i][0], bad[i][1]), -EEXIST);
		MUST_INT_EQ(pfs_alloc_defer(&a, bad[i][0], bad[i][1], 7), -EEXIST);
		MUST_INT_EQ(pfs_alloc_defer(&a, bad[i][0], bad[i][1], 8), -EEXIST);
		assert_unchanged(&a, &f0, &p0);
	}
	/* Invalid ranges. */
	MUST_INT_EQ(pfs_alloc_add_free(&a, 5, 0), -EINVAL);
	MUST_INT_EQ(pfs_alloc_add_free(&a, UINT64_MAX, 1), -EINVAL);
	MUST_INT_EQ(pfs_alloc_add_free(&a, UINT64_MAX - 5, 6), -EINVAL);
	MUST_INT_EQ(pfs_alloc_take(&a, 100, 0), -EINVAL);
	MUST_INT_EQ(pfs_alloc_defer(&a, 1, UINT64_MAX, 1), -EINVAL);
	MUST_INT_EQ(pfs_alloc_undefer(&a, 150, 0), -EINVAL);
	/* Taking what is not (entirely) free; undeferring what is not pending. */
	MUST_INT_EQ(pfs_alloc_take(&a, 99, 2), -ENOENT);
	MUST_INT_EQ(pfs_alloc_take(&a, 105, 6), -ENOENT);
	MUST_INT_EQ(pfs_alloc_take(&a, 150, 1), -ENOENT);
	MUST_INT_EQ(pfs_alloc_take(&a, 0, 1), -ENOENT);
	MUST_INT_EQ(pfs_alloc_undefer(&a, 149, 2), -ENOENT);
	MUST_INT_EQ(pfs_alloc_undefer(&a, 159, 2), -ENOENT);
	MUST_INT_EQ(pfs_alloc_undefer(&a, 100, 1), -ENOENT);
	assert_unchanged(&a, &f0, &p0);

	/* Adjacent is fine, and merges: [90,100) + [100,110) + [110,150). */
	MUST_INT_EQ(pfs_alloc_add_free(&a, 90, 10), 0);
	MUST_INT_EQ(pfs_alloc_add_free(&a, 110, 40), 0);
	MUST_UINT_EQ(pfs_alloc_extent_count(&a), 2);	/* [90,150) [200,210) */
	MUST_UINT_EQ(pfs_alloc_free_blocks(&a), 70);
	/* Pending next to free stays apart; becomes one when released. */
	MUST_INT_EQ(pfs_alloc_defer(&a, 160, 40, 9), 0);
	MUST_INT_EQ(pfs_alloc_defer(&a, 160, 1, 9), -EEXIST);
	MUST_UINT_EQ(pfs_alloc_pending_count(&a), 2);
	MUST_UINT_EQ(pfs_alloc_pending_blocks(&a), 50);
	MUST_INT_EQ(pfs_alloc_release_upto(&a, 8), 0);	/* seq 7 only */
	MUST_UINT_EQ(pfs_alloc_extent_count(&a), 2);	/* [90,160) [200,210) */
	MUST_UINT_EQ(pfs_alloc_pending_blocks(&a), 40);
	MUST_INT_EQ(pfs_alloc_add_free(&a, 170, 1), -EEXIST);
	MUST_INT_EQ(pfs_alloc_release_upto(&a, 9), 0);
	MUST_UINT_EQ(pfs_alloc_extent_count(&a), 1);	/* [90,210) */
	MUST_UINT_EQ(pfs_alloc_free_blocks(&a), 120);
	MUST_UINT_EQ(pfs_alloc_pending_count(&a), 0);
	MUST_INT_EQ(pfs_alloc_check(&a), 0);

	/* The very top of the block space. */
	MUST_INT_EQ(pfs_alloc_add_free(&a, UINT64_MAX - 10, 10), 0);
	MUST_INT_EQ(pfs_alloc_add_free(&a, UINT64_MAX - 1, 1), -EEXIST);
	MUST_INT_EQ(pfs_alloc_take(&a, UINT64_MAX - 1, 1), 0);
	MUST_INT_EQ(pfs_alloc_add_free(&a, UINT64_MAX - 1, 1), 0);
	MUST_INT_EQ(pfs_alloc_check(&a), 0);

	pfs_alloc_fini(&a);
	free(f0.v);
	free(p0.v);
}
END_TEST

START_TEST(enospc_changes_nothing)
{
	struct pfs_alloc a;
	struct recs f0 = { 0 }, p0 = { 0 };
	uint64_t at = 12345, got = 678;

	pfs_alloc_init(&a);
	/* Empty: nothing at all. */
	MUST_INT_EQ(pfs_alloc_best_fit(&a, 1, PFS_ALLOC_NO_HINT, &at), -ENOSPC);
	MUST_INT_EQ(pfs_alloc_some(&a, 1, 5, &at, &got), -ENOSPC);
	MUST_UINT_EQ(at, 12345);
	MUST_UINT_EQ(got, 678);
	MUST_INT_EQ(pfs_alloc_best_fit(&a, 0, 5, &at), -EINVAL);
	MUST_INT_EQ(pfs_alloc_some(&a, 0, 5, &at, &got), -EINVAL);

	/* Pending space is not allocatable. */
	MUST_INT_EQ(pfs_alloc_defer(&a, 1000, 500, 3), 0);
	MUST_INT_EQ(pfs_alloc_best_fit(&a, 1, 1000, &at), -ENOSPC);
	MUST_INT_EQ(pfs_alloc_some(&a, 1, 1000, &at, &got), -ENOSPC);

	MUST_INT_EQ(pfs_alloc_add_free(&a, 10, 5), 0);
	MUST_INT_EQ(pfs_alloc_add_free(&a, 20, 8), 0);
	MUST_INT_EQ(pfs_alloc_add_free(&a, 40, 8), 0);
	snap(&a, &f0, &p0);
	MUST_INT_EQ(pfs_alloc_best_fit(&a, 9, PFS_ALLOC_NO_HINT, &at), -ENOSPC);
	MUST_INT_EQ(pfs_alloc_best_fit(&a, 9, 20, &at), -ENOSPC);
	MUST_INT_EQ(pfs_alloc_best_fit(&a, UINT64_MAX, 20, &at), -ENOSPC);
	MUST_UINT_EQ(at, 12345);
	assert_unchanged(&a, &f0, &p0);

	/* some: the largest, nearest the hint; then down to nothing. */
	MUST_INT_EQ(pfs_alloc_some(&a, 100, 45, &at, &got), 0);
	MUST_UINT_EQ(at, 40);
	MUST_UINT_EQ(got, 8);
	MUST_INT_EQ(pfs_alloc_some(&a, 100, PFS_ALLOC_NO_HINT, &at, &got), 0);
	MUST_UINT_EQ(at, 20);
	MUST_UINT_EQ(got, 8);
	MUST_INT_EQ(pfs_alloc_some(&a, 3, PFS_ALLOC_NO_HINT, &at, &got), 0);
	MUST_UINT_EQ(at, 10);
	MUST_UINT_EQ(got, 3);
	MUST_INT_EQ(pfs_alloc_some(&a, 3, PFS_ALLOC_NO_HINT, &at, &got), 0);
	MUST_UINT_EQ(at, 13);
	MUST_UINT_EQ(got, 2);
	MUST_INT_EQ(pfs_alloc_some(&a, 3, PFS_ALLOC_NO_HINT, &at, &got), -ENOSPC);
	MUST_UINT_EQ(pfs_alloc_free_blocks(&a), 0);
	MUST_UINT_EQ(pfs_alloc_pending_blocks(&a), 500);
	MUST_INT_EQ(pfs_alloc_check(&a), 0);
	pfs_alloc_fini(&a);
	free(f0.v);
	free(p0.v);
}
END_TEST

START_TEST(hint_policy)
{
	struct pfs_alloc a;
	uint64_t at;

	pfs_alloc_init(&a);
	/* Extents: [0,4) [10,14) [100,104) [200,300) [1000,1004) */
	MUST_INT_EQ(pfs_alloc_add_free(&a, 0, 4), 0);
	MUST_INT_EQ(pfs_alloc_add_free(&a, 10, 4), 0);
	MUST_INT_EQ(pfs_alloc_add_free(&a, 100, 4), 0);
	MUST_INT_EQ(pfs_alloc_add_free(&a, 200, 100), 0);
	MUST_INT_EQ(pfs_alloc_add_free(&a, 1000, 4), 0);

	/* Continuation inside the big extent: split in two. */
	MUST_INT_EQ(pfs_alloc_best_fit(&a, 10, 250, &at), 0);
	MUST_UINT_EQ(at, 250);
	MUST_UINT_EQ(pfs_alloc_extent_count(&a), 6);
	/* Continuation too short at 295 (5 left): best fit, nearest 295. */
	MUST_INT_EQ(pfs_alloc_best_fit(&a, 6, 295, &at), 0);
	MUST_UINT_EQ(at, 260);	/* [260,300) is the fit of length 40 vs 50 */
	/* Ties of length 4: nearest the hint, else lowest start. */
	MUST_INT_EQ(pfs_alloc_best_fit(&a, 3, 700, &at), 0);
	MUST_UINT_EQ(at, 1000);	/* 1000 is 300 away, 100 is 600 */
	MUST_INT_EQ(pfs_alloc_best_fit(&a, 4, 55, &at), 0);
	MUST_UINT_EQ(at, 10);	/* 10 and 100 are 45 away: lowest */
	MUST_INT_EQ(pfs_alloc_best_fit(&a, 4, PFS_ALLOC_NO_HINT, &at), 0);
	MUST_UINT_EQ(at, 0);
	/* Hint on a block that is not free: best fit. */
	MUST_INT_EQ(pfs_alloc_best_fit(&a, 1, 0, &at), 0);
	MUST_UINT_EQ(at, 1003);	/* the only extent of length 1 */
	MUST_INT_EQ(pfs_alloc_check(&a), 0);
	pfs_alloc_fini(&a);
}
END_TEST

/*
 * An aborted transaction: what it took is given back with add_free in any
 * order after a reserve, what it deferred is cancelled; the index is then
 * exactly as before.
 */
START_TEST(abort_undo)
{
	struct pfs_alloc a;
	struct recs f0 = { 0 }, p0 = { 0 };
	struct rec took[64];
	size_t ntook = 0;
	uint64_t at, got;

	rng_seed(77);
	pfs_alloc_init(&a);
	for (uint64_t i = 0; i < 500; i++)
		MUST_INT_EQ(pfs_alloc_add_free(&a, i * 20, 1 + rnd_below(19)), 0);
	MUST_INT_EQ(pfs_alloc_defer(&a, 19 * 20 - 1, 1, 4), 0);
	snap(&a, &f0, &p0);

	for (int round = 0; round < 50; round++) {
		ntook = 0;
		for (int i = 0; i < 32; i++) {
			uint64_t hint = rnd_below(3) ? PFS_ALLOC_NO_HINT : rnd_below(10000);

			if (rnd_below(2)) {
				uint64_t len = 1 + rnd_below(6);

				MUST_INT_EQ(pfs_alloc_best_fit(&a, len, hint, &at), 0);
				took[ntook++] = (struct rec){ at, len, 0 };
			} else {
				MUST_INT_EQ(pfs_alloc_some(&a, 1 + rnd_below(30), hint, &at, &got), 0);
				took[ntook++] = (struct rec){ at, got, 0 };
			}
		}
		/* Some of it freed by the transaction itself (deferred). */
		for (size_t i = 0; i < ntook; i += 3)
			MUST_INT_EQ(pfs_alloc_defer(&a, took[i].start, took[i].len, 100 + round), 0);
		/* Abort: cancel deferrals, give back what was taken, shuffled. */
		MUST_INT_EQ(pfs_alloc_undefer_seq(&a, 100 + round), 0);
		for (size_t i = ntook; i > 1; i--) {
			size_t j = rnd_below(i);
			struct rec t = took[i - 1];

			took[i - 1] = took[j];
			took[j] = t;
		}
		MUST_INT_EQ(pfs_alloc_reserve(&a, ntook), 0);
		for (size_t i = 0; i < ntook; i++)
			MUST_INT_EQ(pfs_alloc_add_free(&a, took[i].start, took[i].len), 0);
		assert_unchanged(&a, &f0, &p0);
	}
	pfs_alloc_fini(&a);
	free(f0.v);
	free(p0.v);
}
END_TEST

static int stop_at_third(void *arg, uint64_t start, uint64_t len, uint64_t seq)
{
	int *n = arg;

	(void)start;
	(void)len;
	(void)seq;
	return ++*n == 3 ? 42 : 0;
}

/* Iteration from a block, early stop; check() sees damaged counters and trees. */
START_TEST(iterate_and_check)
{
	struct pfs_alloc a, saved;
	struct pfs_alloc_bt t;
	struct recs fr = { 0 }, pr = { 0 };
	int n = 0;

	rng_seed(99);
	pfs_alloc_init(&a);
	for (uint64_t i = 0; i < 3000; i++)
		MUST_INT_EQ(pfs_alloc_add_free(&a, 100 + i * 10, 4), 0);
	for (uint64_t i = 0; i < 500; i++)
		MUST_INT_EQ(pfs_alloc_defer(&a, 105 + i * 20, 2, i / 7), 0);
	MUST_INT_EQ(pfs_alloc_check(&a), 0);

	/* From a block inside an extent, and from one between extents. */
	MUST_INT_EQ(pfs_alloc_foreach_free(&a, 1002, recs_push, &fr), 0);
	MUST_UINT_EQ(fr.n, 3000 - 90);
	MUST_UINT_EQ(fr.v[0].start, 1000);
	fr.n = 0;
	MUST_INT_EQ(pfs_alloc_foreach_free(&a, 1004, recs_push, &fr), 0);
	MUST_UINT_EQ(fr.v[0].start, 1010);
	fr.n = 0;
	MUST_INT_EQ(pfs_alloc_foreach_free(&a, 100 + 3000 * 10, recs_push, &fr), 0);
	MUST_UINT_EQ(fr.n, 0);
	MUST_INT_EQ(pfs_alloc_foreach_free(&a, 0, stop_at_third, &n), 42);
	MUST_INT_EQ(n, 3);
	n = 0;
	MUST_INT_EQ(pfs_alloc_foreach_pending(&a, stop_at_third, &n), 42);
	MUST_INT_EQ(pfs_alloc_foreach_pending(&a, recs_push, &pr), 0);
	MUST_UINT_EQ(pr.n, 500);
	MUST_UINT_EQ(pr.v[499].start, 105 + 499 * 20);
	MUST_UINT_EQ(pr.v[499].seq, 499 / 7);

	/* Damage: counters, and trees swapped for one another. */
	saved = a;
	a.free_blocks++;
	MUST_INT_EQ(pfs_alloc_check(&a), -EUCLEAN);
	a = saved;
	a.pending_blocks--;
	MUST_INT_EQ(pfs_alloc_check(&a), -EUCLEAN);
	a = saved;
	a.free_by_len.count++;
	MUST_INT_EQ(pfs_alloc_check(&a), -EUCLEAN);
	a = saved;
	a.pend_by_start.count--;
	MUST_INT_EQ(pfs_alloc_check(&a), -EUCLEAN);
	a = saved;
	t = a.free_by_len;
	a.free_by_len = a.free_by_start;
	a.free_by_start = t;
	MUST_INT_EQ(pfs_alloc_check(&a), -EUCLEAN);
	a = saved;
	t = a.pend_by_seq;
	a.pend_by_seq = a.pend_by_start;
	a.pend_by_start = t;
	MUST_INT_EQ(pfs_alloc_check(&a), -EUCLEAN);
	a = saved;
	t = a.free_by_start;
	a.free_by_start = a.pend_by_start;
	a.pend_by_start = t;
	MUST_INT_EQ(pfs_alloc_check(&a), -EUCLEAN);
	a = saved;
	MUST_INT_EQ(pfs_alloc_check(&a), 0);

	/* Reserve, then many calls. */
	MUST_INT_EQ(pfs_alloc_reserve(&a, 1000), 0);
	MUST_INT_EQ(pfs_alloc_reserve(&a, SIZE_MAX), -ENOMEM);
	MUST_INT_EQ(pfs_alloc_check(&a), 0);
	pfs_alloc_fini(&a);
	free(fr.v);
	free(pr.v);
}
END_TEST

/*
 * Scale: 100,000 fragmented extents (and 20,000 pending ranges); a mix of
 * operations that must keep the counters and the invariants exact, then
 * everything given back.
 */
START_TEST(scale_100k)
{
	enum { NEXT = 100000, OPS = 200000 };
	struct pfs_alloc a;
	struct rec *held = malloc(OPS * sizeof(*held));
	size_t nheld = 0;
	uint64_t pos = 1000, total = 0, at, got, seq = 1;

	ck_assert_ptr_nonnull(held);
	rng_seed(4242);
	pfs_alloc_init(&a);
	for (int i = 0; i < NEXT; i++) {
		uint64_t len = 1 + rnd_below(16);

		MUST_INT_EQ(pfs_alloc_add_free(&a, pos, len), 0);
		total += len;
		pos += len + 1 + rnd_below(4);
	}
	MUST_UINT_EQ(pfs_alloc_extent_count(&a), NEXT);
	MUST_UINT_EQ(pfs_alloc_free_blocks(&a), total);
	MUST_INT_EQ(pfs_alloc_check(&a), 0);

	for (int op = 0; op < OPS; op++) {
		unsigned k = (unsigned)rnd_below(10);

		cur_op = op;
		uint64_t hint = rnd_below(2) ? PFS_ALLOC_NO_HINT : 1000 + rnd_below(pos);

		if (k < 4 || !nheld) {
			uint64_t len = 1 + rnd_below(8);

			MUST_INT_EQ(pfs_alloc_best_fit(&a, len, hint, &at), 0);
			held[nheld++] = (struct rec){ at, len, 0 };
		} else if (k < 5) {
			MUST_INT_EQ(pfs_alloc_some(&a, 1 + rnd_below(64), hint, &at, &got), 0);
			held[nheld++] = (struct rec){ at, got, 0 };
		} else {
			size_t i = rnd_below(nheld);
			struct rec r = held[i];

			held[i] = held[--nheld];
			if (k < 8) {
				MUST_INT_EQ(pfs_alloc_add_free(&a, r.start, r.len), 0);
				MUST_INT_EQ(pfs_alloc_add_free(&a, r.start, r.len), -EEXIST);
			} else {
				MUST_INT_EQ(pfs_alloc_defer(&a, r.start, r.len, seq), 0);
				if (rnd_below(64) == 0)
					MUST_INT_EQ(pfs_alloc_release_upto(&a, seq - 8), 0);
				if (rnd_below(4) == 0)
					seq++;
			}
		}
		if (op % 50000 == 0)
			MUST_INT_EQ(pfs_alloc_check(&a), 0);
	}
	MUST_INT_EQ(pfs_alloc_check(&a), 0);
	{
		uint64_t held_blocks = 0;

		for (size_t i = 0; i < nheld; i++)
			held_blocks += held[i].len;
		MUST_UINT_EQ(pfs_alloc_free_blocks(&a) + pfs_alloc_pending_blocks(&a) +
				  held_blocks, total);
	}
	/* Everything back: the original 100,000 extents. */
	MUST_INT_EQ(pfs_alloc_release_upto(&a, UINT64_MAX), 0);
	for (size_t i = 0; i < nheld; i++)
		MUST_INT_EQ(pfs_alloc_add_free(&a, held[i].start, held[i].len), 0);
	MUST_UINT_EQ(pfs_alloc_extent_count(&a), NEXT);
	MUST_UINT_EQ(pfs_alloc_free_blocks(&a), total);
	MUST_UINT_EQ(pfs_alloc_pending_blocks(&a), 0);
	MUST_INT_EQ(pfs_alloc_check(&a), 0);
	pfs_alloc_fini(&a);
	free(held);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("alloc");
	TCase *tc = tcase_create("alloc");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, double_free_and_overlap);
	tcase_add_test(tc, enospc_changes_nothing);
	tcase_add_test(tc, hint_policy);
	tcase_add_test(tc, abort_undo);
	tcase_add_test(tc, iterate_and_check);
	tcase_add_test(tc, model_fixed_seed);
	tcase_add_test(tc, model_random_seed);
	tcase_add_test(tc, scale_100k);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
