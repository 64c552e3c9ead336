/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * omap: a model test (random set/insert/get/remove/remove_range/iteration
 * against a sorted array, with commits and reopenings, periodic checks and
 * injected ENOSPC rolled back), at 4 KiB and 64 KiB blocks; a directory of
 * 100,000 names read back in order in readdir-sized chunks; corrupt nodes
 * and values that must give -EUCLEAN / -EBADMSG, never a crash; and every
 * block given back when a tree is emptied or destroyed.
 *
 * A failing random run prints its seed; POSFS_TEST_SEED=<n> replays it.
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
#include "posfs/crc32c.h"
#include "posfs/format.h"
#include "store/omap.h"

#define OWNER	UINT64_C(0x0000000000001234)
#define VBUF	(POSFS_OMAP_VALUE_MAX + 16)

/* ---- random numbers ------------------------------------------------------ */

static uint64_t rnd(uint64_t *s)
{
	uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static uint64_t rnd_below(uint64_t *s, uint64_t n)
{
	return n ? rnd(s) % n : 0;
}

static uint64_t random_seed(void)
{
	const char *env = getenv("POSFS_TEST_SEED");
	struct timespec ts;

	if (env && *env)
		return strtoull(env, NULL, 0);
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_nsec ^ (uint64_t)ts.tv_sec << 20 ^ (uint64_t)getpid() << 40;
}

static int key_cmp(const void *a, size_t al, const void *b, size_t bl)
{
	size_t n = al < bl ? al : bl;
	int r = n ? memcmp(a, b, n) : 0;

	return r ? r : (al > bl) - (al < bl);
}

/* ---- the reference model: a sorted array --------------------------------- */

struct ent {
	uint8_t *key;
	uint32_t klen;
	uint8_t *val;
	uint32_t vlen;
};

struct model {
	struct ent *e;
	size_t n, cap;
};

/* First position whose key is >= key; *found when equal. */
static size_t m_lower(const struct model *m, const void *key, size_t klen, int *found)
{
	size_t lo = 0, hi = m->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (key_cmp(m->e[mid].key, m->e[mid].klen, key, klen) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	*found = lo < m->n && key_cmp(m->e[lo].key, m->e[lo].klen, key, klen) == 0;
	return lo;
}

static void m_set(struct model *m, const void *key, size_t klen, const void *val, size_t vlen)
{
	int found;
	size_t i = m_lower(m, key, klen, &found);
	struct ent *e;

	if (!found) {
		if (m->n == m->cap) {
			m->cap = m->cap ? 2 * m->cap : 1024;
			m->e = realloc(m->e, m->cap * sizeof(*m->e));
		}
		memmove(m->e + i + 1, m->e + i, (m->n - i) * sizeof(*m->e));
		m->n++;
		e = &m->e[i];
		e->key = malloc(klen);
		memcpy(e->key, key, klen);
		e->klen = (uint32_t)klen;
	} else {
		e = &m->e[i];
		free(e->val);
	}
	e->val = malloc(vlen ? vlen : 1);
	if (vlen)
		memcpy(e->val, val, vlen);
	e->vlen = (uint32_t)vlen;
}

static void m_remove_at(struct model *m, size_t i, size_t j)
{
	for (size_t k = i; k < j; k++) {
		free(m->e[k].key);
		free(m->e[k].val);
	}
	memmove(m->e + i, m->e + j, (m->n - j) * sizeof(*m->e));
	m->n -= j - i;
}

static void m_free(struct model *m)
{
	m_remove_at(m, 0, m->n);
	free(m->e);
	memset(m, 0, sizeof(*m));
}

/* ---- a tree over a memstore ---------------------------------------------- */

struct fix {
	struct pfs_memstore *ms;
	struct pfs_tx *tx;
	struct pfs_tree_root root;
	uint64_t count;
	struct pfs_omap om;
	uint32_t bs;
};

static void fix_init(struct fix *f, uint32_t bs, uint64_t blocks)
{
	memset(f, 0, sizeof(*f));
	f->bs = bs;
	f->ms = pfs_memstore_create(bs, 1, blocks);
	f->tx = pfs_memtx_begin(f->ms);
	f->om = (struct pfs_omap){ .root = &f->root, .count = &f->count, .shard = 0, .owner = OWNER };
}

/* Commit and begin a new transaction: every read goes back through
 * block verification ("close and reopen"). */
static void fix_reopen(struct fix *f)
{
	int ret = pfs_memtx_commit(f->tx);

	ck_assert_msg(ret == 0, "commit: %d", ret);
	f->tx = pfs_memtx_begin(f->ms);
}

static void fix_fini(struct fix *f)
{
	if (f->tx)
		pfs_memtx_abort(f->tx);
	pfs_memstore_destroy(f->ms);
}

/* ---- model run ------------------------------------------------------------ */

struct run {
	struct fix f;
	struct model m;
	uint64_t seed;		/* printed on failure */
	uint64_t s;		/* generator state */
	long op;
	uint32_t keyspace;
	int big;		/* values: half of them out of line */
	uint8_t *vbuf, *rbuf;	/* value to write, value read back */
};

/* Asserts in hot loops: libcheck's ck_assert records every passing one
 * (a write to its log), so test first and only fail through it. */
#define FAILIF(cond, ...)							\
	do {									\
		if (cond)							\
			ck_abort_msg(__VA_ARGS__);				\
	} while (0)

#define RCHECK(r, cond, fmt, ...)						\
	FAILIF(!(cond), "bs %u seed %llu op %ld: " fmt, (r)->f.bs,			\
	       (unsigned long long)(r)->seed, (r)->op, ##__VA_ARGS__)

/*
 * Key number id of the run's key space (deterministic): directory-like
 * names, random binary keys of 1..300 bytes, long keys up to 1024 bytes
 * sharing long prefixes (so truncated separators are exercised).
 */
static size_t gen_key(const struct run *r, uint32_t id, uint8_t *k)
{
	uint64_t s = r->seed * 31 + id * UINT64_C(0x100000001b3) + 7;
	uint64_t kind = rnd(&s) % 100;
	size_t len;

	if (kind < 45) {
		static const char *pfx[] = { "file", "IMG_", "a", "zz", "data.", "x" };
		int n = snprintf((char *)k, 64, "d%s%u", pfx[rnd(&s) % 6], (unsigned)(rnd(&s) % 100000));

		return (size_t)n;
	}
	if (kind < 90) {
		len = 1 + rnd(&s) % 300;
		for (size_t i = 0; i < len; i++)
			k[i] = (uint8_t)rnd(&s);
		return len;
	}
	len = 300 + rnd(&s) % (POSFS_OMAP_KEY_MAX - 299);
	memset(k, 'L', len);
	for (size_t i = len - 4; i < len; i++)	/* differs only at the end */
		k[i] = (uint8_t)rnd(&s);
	return len;
}

/* A value length: mostly 0..200 bytes, some up to 2 KiB, some 1..64 KiB. */
static size_t gen_vlen(struct run *r)
{
	uint64_t x = rnd(&r->s) % 100;

	if (r->big && x < 50)
		return 1 + rnd(&r->s) % POSFS_OMAP_VALUE_MAX;
	if (x < 85)
		return rnd(&r->s) % 201;
	if (x < 95)
		return 200 + rnd(&r->s) % 1849;
	return 1 + rnd(&r->s) % POSFS_OMAP_VALUE_MAX;
}

static void gen_val(struct run *r, size_t vlen)
{
	uint64_t x = rnd(&r->s);

	for (size_t i = 0; i < vlen; i++) {
		if (!(i & 7))
			x = rnd(&r->s);
		r->vbuf[i] = (uint8_t)(x >> (8 * (i & 7)));
	}
}

/* The whole tree, iterated in order, equals the model. */
static void compare_all(struct run *r)
{
	struct pfs_omap_cursor cur;
	uint8_t key[POSFS_OMAP_KEY_MAX];
	size_t klen, vlen, i = 0;
	int ret;

	RCHECK(r, r->f.count == r->m.n, "count %llu model %zu",
	       (unsigned long long)r->f.count, r->m.n);
	ret = pfs_omap_cursor_seek(r->f.tx, &r->f.om, NULL, 0, &cur);
	RCHECK(r, ret == 0, "seek: %d", ret);
	for (;;) {
		ret = pfs_omap_cursor_next(&cur, key, sizeof(key), &klen, r->rbuf, VBUF, &vlen);
		if (ret == -ENOENT)
			break;
		RCHECK(r, ret == 0, "next: %d at %zu", ret, i);
		RCHECK(r, i < r->m.n, "iteration finds more than %zu records", r->m.n);
		RCHECK(r, key_cmp(key, klen, r->m.e[i].key, r->m.e[i].klen) == 0,
		       "key %zu differs (len %zu vs %u)", i, klen, r->m.e[i].klen);
		RCHECK(r, vlen == r->m.e[i].vlen && !memcmp(r->rbuf, r->m.e[i].val, vlen),
		       "value %zu differs", i);
		i++;
	}
	pfs_omap_cursor_release(&cur);
	RCHECK(r, i == r->m.n, "iteration found %zu of %zu", i, r->m.n);
}

static void check_tree(struct run *r)
{
	struct pfs_omap_stats st;
	int ret = pfs_omap_check(r->f.tx, &r->f.om, NULL, &st);

	RCHECK(r, ret == 0, "check: %d", ret);
	RCHECK(r, st.records == r->m.n, "check counted %llu, model %zu",
	       (unsigned long long)st.records, r->m.n);
	RCHECK(r, st.height == r->f.root.height, "height");
}

struct walk {
	struct run *r;
	uint64_t *blocks;
	size_t nblocks, cap, nrec;
	uint64_t kinds[4];
};

static int walk_block(void *arg, uint64_t blkno, enum pfs_omap_block_kind kind, uint32_t level)
{
	struct walk *w = arg;

	(void)level;
	if (w->nblocks == w->cap) {
		w->cap = w->cap ? 2 * w->cap : 1024;
		w->blocks = realloc(w->blocks, w->cap * sizeof(*w->blocks));
	}
	w->blocks[w->nblocks++] = blkno;
	w->kinds[kind & 3]++;
	return 0;
}

static int walk_record(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct walk *w = arg;
	struct run *r = w->r;
	struct ent *e;

	RCHECK(r, w->nrec < r->m.n, "check reports more than %zu records", r->m.n);
	e = &r->m.e[w->nrec++];
	RCHECK(r, key_cmp(key, klen, e->key, e->klen) == 0, "check record %zu: key", w->nrec - 1);
	RCHECK(r, vlen == e->vlen && (!vlen || !memcmp(val, e->val, vlen)),
	       "check record %zu: value", w->nrec - 1);
	return w->nrec == 7 && r->op < 0 ? 4242 : 0;	/* op < 0: test the stop */
}

static int u64_cmp(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

/* fsck's view: every block the memstore has in use is reported exactly
 * once, every record in order with its value; a nonzero callback return
 * stops the walk. Right after a commit. */
static void check_walk(struct run *r)
{
	struct pfs_omap_check_ops ops = { .block = walk_block, .record = walk_record };
	struct pfs_omap_stats st;
	struct walk w = { .r = r };
	long op = r->op;
	int ret;

	ops.arg = &w;
	ret = pfs_omap_check(r->f.tx, &r->f.om, &ops, &st);
	RCHECK(r, ret == 0, "check with callbacks: %d", ret);
	RCHECK(r, w.nrec == r->m.n, "check reported %zu records of %zu", w.nrec, r->m.n);
	qsort(w.blocks, w.nblocks, sizeof(*w.blocks), u64_cmp);
	for (size_t i = 1; i < w.nblocks; i++)
		RCHECK(r, w.blocks[i] != w.blocks[i - 1], "block %llu reported twice",
		       (unsigned long long)w.blocks[i]);
	RCHECK(r, w.nblocks == pfs_memstore_used(r->f.ms, 0), "check reported %zu blocks, %llu used",
	       w.nblocks, (unsigned long long)pfs_memstore_used(r->f.ms, 0));
	RCHECK(r, w.kinds[PFS_OMAP_BLOCK_NODE] == st.nodes &&
	       w.kinds[PFS_OMAP_BLOCK_VALUE] + w.kinds[PFS_OMAP_BLOCK_VINDEX] == st.value_blocks,
	       "block kinds against the stats");
	if (r->m.n >= 7) {
		w.nrec = 0;
		r->op = -1;
		ret = pfs_omap_check(r->f.tx, &r->f.om, &ops, NULL);
		r->op = op;
		RCHECK(r, ret == 4242 && w.nrec == 7, "a callback's return stops the walk: %d", ret);
	}
	free(w.blocks);
}

/* Read up to 40 records from a random place and compare with the model. */
static void scan_from(struct run *r)
{
	uint8_t probe[POSFS_OMAP_KEY_MAX], key[POSFS_OMAP_KEY_MAX];
	struct pfs_omap_cursor cur;
	size_t plen, klen, vlen, i;
	int found, after = (int)(rnd(&r->s) & 1), ret;

	if (r->m.n && rnd(&r->s) % 2) {
		struct ent *e = &r->m.e[rnd_below(&r->s, r->m.n)];

		plen = e->klen;
		memcpy(probe, e->key, plen);
	} else {
		plen = gen_key(r, (uint32_t)rnd_below(&r->s, r->keyspace), probe);
	}
	i = m_lower(&r->m, probe, plen, &found);
	if (after && found)
		i++;
	ret = after ? pfs_omap_cursor_seek_after(r->f.tx, &r->f.om, probe, plen, &cur)
		    : pfs_omap_cursor_seek(r->f.tx, &r->f.om, probe, plen, &cur);
	RCHECK(r, ret == 0, "seek: %d", ret);
	for (int n = 0; n < 40; n++, i++) {
		ret = pfs_omap_cursor_next(&cur, key, sizeof(key), &klen, r->rbuf, VBUF, &vlen);
		if (i == r->m.n) {
			RCHECK(r, ret == -ENOENT, "scan past the end: %d", ret);
			break;
		}
		RCHECK(r, ret == 0, "scan next: %d", ret);
		RCHECK(r, key_cmp(key, klen, r->m.e[i].key, r->m.e[i].klen) == 0, "scan key %zu", i);
		RCHECK(r, vlen == r->m.e[i].vlen && !memcmp(r->rbuf, r->m.e[i].val, vlen),
		       "scan value %zu", i);
	}
	pfs_omap_cursor_release(&cur);
}

enum opkind { OP_SET, OP_INSERT, OP_GET, OP_REMOVE, OP_RANGE, OP_SCAN };

/*
 * One operation checked against the model. With failing set, the tree
 * may return -ENOSPC (the model is then left alone and the caller rolls
 * back); otherwise the result must be the model's.
 */
static int do_op(struct run *r, enum opkind kind, int failing)
{
	uint8_t key[POSFS_OMAP_KEY_MAX], end[POSFS_OMAP_KEY_MAX];
	size_t klen, elen, vlen, got;
	int found, ret;
	size_t i;

	if (kind == OP_SCAN) {
		scan_from(r);
		return 0;
	}
	if (kind != OP_RANGE && (kind == OP_SET || kind == OP_INSERT || !r->m.n ||
				 rnd(&r->s) % 4)) {
		klen = gen_key(r, (uint32_t)rnd_below(&r->s, r->keyspace), key);
	} else if (kind != OP_RANGE) {
		struct ent *e = &r->m.e[rnd_below(&r->s, r->m.n)];

		klen = e->klen;
		memcpy(key, e->key, klen);
	}
	switch (kind) {
	case OP_SET:
	case OP_INSERT:
		vlen = gen_vlen(r);
		gen_val(r, vlen);
		i = m_lower(&r->m, key, klen, &found);
		(void)i;
		ret = kind == OP_SET ? pfs_omap_set(r->f.tx, &r->f.om, key, klen, r->vbuf, vlen)
				     : pfs_omap_insert(r->f.tx, &r->f.om, key, klen, r->vbuf, vlen);
		if (failing && ret == -ENOSPC)
			return ret;
		if (kind == OP_INSERT && found) {
			RCHECK(r, ret == -EEXIST, "insert of a present key: %d", ret);
			return 0;
		}
		RCHECK(r, ret == 0, "%s: %d", kind == OP_SET ? "set" : "insert", ret);
		m_set(&r->m, key, klen, r->vbuf, vlen);
		return 0;
	case OP_GET:
		i = m_lower(&r->m, key, klen, &found);
		got = 12345;
		if (found && r->m.e[i].vlen && rnd(&r->s) % 8 == 0) {
			/* too small a buffer: -ERANGE, length reported */
			ret = pfs_omap_get(r->f.tx, &r->f.om, key, klen, r->rbuf,
					   r->m.e[i].vlen - 1, &got);
			RCHECK(r, ret == -ERANGE && got == r->m.e[i].vlen, "get small: %d", ret);
			ret = pfs_omap_get(r->f.tx, &r->f.om, key, klen, NULL, 0, &got);
			RCHECK(r, ret == 0 && got == r->m.e[i].vlen, "get NULL: %d", ret);
			return 0;
		}
		ret = pfs_omap_get(r->f.tx, &r->f.om, key, klen, r->rbuf, VBUF, &got);
		if (!found) {
			RCHECK(r, ret == -ENOENT, "get of an absent key: %d", ret);
			return 0;
		}
		RCHECK(r, ret == 0, "get: %d", ret);
		RCHECK(r, got == r->m.e[i].vlen && !memcmp(r->rbuf, r->m.e[i].val, got),
		       "get: value differs (%zu vs %u)", got, r->m.e[i].vlen);
		return 0;
	case OP_REMOVE:
		i = m_lower(&r->m, key, klen, &found);
		ret = pfs_omap_remove(r->f.tx, &r->f.om, key, klen);
		if (failing && ret == -ENOSPC)
			return ret;
		if (!found) {
			RCHECK(r, ret == -ENOENT, "remove of an absent key: %d", ret);
			return 0;
		}
		RCHECK(r, ret == 0, "remove: %d", ret);
		m_remove_at(&r->m, i, i + 1);
		return 0;
	case OP_RANGE: {
		size_t a, b, span = rnd(&r->s) % 4 ? 1 + rnd(&r->s) % 10 : 1 + rnd(&r->s) % 100;
		const void *sp = key, *ep = end;
		uint64_t removed = 0;

		/* [a key of the model or a generated one, some records later) */
		if (r->m.n && rnd(&r->s) % 2) {
			a = rnd_below(&r->s, r->m.n);
			klen = r->m.e[a].klen;
			memcpy(key, r->m.e[a].key, klen);
		} else {
			klen = gen_key(r, (uint32_t)rnd_below(&r->s, r->keyspace), key);
			a = m_lower(&r->m, key, klen, &found);
		}
		if (rnd(&r->s) % 32 == 0) {
			sp = NULL;
			klen = 0;
			a = 0;
		}
		b = a + span;
		if (b >= r->m.n || rnd(&r->s) % 64 == 0) {
			ep = NULL;
			elen = 0;
			b = r->m.n;
		} else {
			elen = r->m.e[b].klen;
			memcpy(end, r->m.e[b].key, elen);
			if (rnd(&r->s) % 2 && elen > 1)
				elen--;	/* a prefix: ends just before e[b] or earlier */
			b = m_lower(&r->m, end, elen, &found);
			if (b < a)
				b = a;
		}
		ret = pfs_omap_remove_range(r->f.tx, &r->f.om, sp, klen, ep, elen, &removed);
		if (failing && ret == -ENOSPC)
			return ret;
		RCHECK(r, ret == 0, "remove_range: %d", ret);
		RCHECK(r, removed == b - a, "remove_range removed %llu, model %zu",
		       (unsigned long long)removed, b - a);
		m_remove_at(&r->m, a, b);
		return 0;
	}
	case OP_SCAN:
		break;
	}
	return 0;
}

/* A mutating operation with an allocation failure injected: if it fails,
 * the aborted transaction must leave the tree exactly as before. */
static void inject_enospc(struct run *r)
{
	static const enum opkind kinds[] = { OP_SET, OP_SET, OP_INSERT, OP_REMOVE, OP_RANGE };
	struct pfs_tree_root root;
	uint64_t count;
	int ret;

	fix_reopen(&r->f);
	root = r->f.root;
	count = r->f.count;
	pfs_memstore_fail_after(r->f.ms, (long)rnd_below(&r->s, 6));
	r->big = 1;
	ret = do_op(r, kinds[rnd_below(&r->s, 5)], 1);
	r->big = 0;
	pfs_memstore_fail_after(r->f.ms, -1);
	if (ret != -ENOSPC)
		return;
	pfs_memtx_abort(r->f.tx);
	r->f.tx = pfs_memtx_begin(r->f.ms);
	r->f.root = root;
	r->f.count = count;
	check_tree(r);
	compare_all(r);
}

static void model_run(uint32_t bs, uint64_t seed, long nops, int how_to_empty)
{
	static const enum opkind mix[3][20] = {
		/* balanced */
		{ OP_SET, OP_SET, OP_SET, OP_SET, OP_SET, OP_INSERT, OP_INSERT, OP_GET, OP_GET,
		  OP_GET, OP_GET, OP_REMOVE, OP_REMOVE, OP_REMOVE, OP_REMOVE, OP_REMOVE,
		  OP_REMOVE, OP_SCAN, OP_GET, OP_SET },
		/* growing */
		{ OP_SET, OP_SET, OP_SET, OP_SET, OP_SET, OP_SET, OP_INSERT, OP_INSERT, OP_INSERT,
		  OP_GET, OP_GET, OP_GET, OP_GET, OP_REMOVE, OP_REMOVE, OP_SCAN, OP_SET,
		  OP_INSERT, OP_GET, OP_SET },
		/* shrinking */
		{ OP_SET, OP_SET, OP_INSERT, OP_GET, OP_GET, OP_GET, OP_REMOVE, OP_REMOVE,
		  OP_REMOVE, OP_REMOVE, OP_REMOVE, OP_REMOVE, OP_REMOVE, OP_REMOVE, OP_REMOVE,
		  OP_SCAN, OP_GET, OP_REMOVE, OP_REMOVE, OP_SET },
	};
	struct run *r = calloc(1, sizeof(*r));
	long next_commit = 64;
	int ret;

	fix_init(&r->f, bs, bs == 4096 ? 20000 : 6000);
	r->seed = seed;
	r->s = seed;
	r->keyspace = bs == 4096 ? 3000 : 6000;
	r->vbuf = malloc(VBUF);
	r->rbuf = malloc(VBUF);
	for (r->op = 0; r->op < nops; r->op++) {
		int phase = (int)((r->op / 7000) % 3);
		uint64_t x = rnd(&r->s) % 1000;

		if (r->op == next_commit) {
			fix_reopen(&r->f);
			next_commit += 32 + (long)rnd_below(&r->s, 480);
		}
		if (x < 3)
			do_op(r, OP_RANGE, 0);
		else if (x < 7)
			inject_enospc(r);
		else
			do_op(r, mix[phase][rnd_below(&r->s, 20)], 0);
		if (r->op % 5000 == 4999) {
			check_tree(r);
			compare_all(r);
		}
	}
	fix_reopen(&r->f);
	check_tree(r);
	compare_all(r);
	check_walk(r);

	/* Empty it: every block, external values included, comes back. */
	if (how_to_empty == 0) {
		while (r->m.n) {
			struct ent *e = &r->m.e[rnd_below(&r->s, r->m.n)];

			ret = pfs_omap_remove(r->f.tx, &r->f.om, e->key, e->klen);
			RCHECK(r, ret == 0, "emptying remove: %d", ret);
			m_remove_at(&r->m, (size_t)(e - r->m.e), (size_t)(e - r->m.e) + 1);
			if (r->m.n % 300 == 0) {
				check_tree(r);
				fix_reopen(&r->f);
			}
		}
	} else if (how_to_empty == 1) {
		uint64_t removed;

		ret = pfs_omap_remove_range(r->f.tx, &r->f.om, NULL, 0, NULL, 0, &removed);
		RCHECK(r, ret == 0 && removed == r->m.n, "remove_range all: %d %llu", ret,
		       (unsigned long long)removed);
		m_remove_at(&r->m, 0, r->m.n);
	} else {
		ret = pfs_omap_destroy(r->f.tx, &r->f.om);
		RCHECK(r, ret == 0, "destroy: %d", ret);
		m_remove_at(&r->m, 0, r->m.n);
	}
	RCHECK(r, r->f.root.blkno == 0 && r->f.root.height == 0 && r->f.count == 0,
	       "empty tree has root %llu/%u count %llu", (unsigned long long)r->f.root.blkno,
	       r->f.root.height, (unsigned long long)r->f.count);
	check_tree(r);
	fix_reopen(&r->f);
	RCHECK(r, pfs_memstore_used(r->f.ms, 0) == 0, "%llu blocks still used",
	       (unsigned long long)pfs_memstore_used(r->f.ms, 0));
	fix_fini(&r->f);
	m_free(&r->m);
	free(r->vbuf);
	free(r->rbuf);
	free(r);
}

START_TEST(model_4k_fixed)
{
	model_run(4096, 20240611, 100000, 0);
}
END_TEST

START_TEST(model_4k_random)
{
	model_run(4096, random_seed(), 100000, 1);
}
END_TEST

START_TEST(model_64k_fixed)
{
	model_run(65536, 777, 100000, 2);
}
END_TEST

START_TEST(model_64k_random)
{
	model_run(65536, random_seed(), 100000, 1);
}
END_TEST

/* ---- a directory ---------------------------------------------------------- */

static int name_cmp(const void *a, const void *b)
{
	const char *x = *(const char *const *)a, *y = *(const char *const *)b;

	return key_cmp(x, strlen(x), y, strlen(y));
}

static void directory_run(uint32_t bs, int n)
{
	static const char *pfx[] = { "", "file-", "IMG_2024", "a very long file name prefix ",
				     "x", "report.final.v", "~$", "node_modules" };
	char **names = malloc((size_t)n * sizeof(*names));
	char **sorted = malloc((size_t)n * sizeof(*sorted));
	uint8_t key[POSFS_OMAP_KEY_MAX], val[16];
	struct pfs_omap_stats st;
	struct pfs_omap_cursor cur;
	uint64_t s = 99, seen = 0;
	size_t klen, vlen, lastlen = 0;
	uint8_t last[POSFS_OMAP_KEY_MAX];
	struct fix f;
	int ret;

	fix_init(&f, bs, bs == 4096 ? 30000 : 3000);
	for (int i = 0; i < n; i++) {
		char buf[300];
		int len = snprintf(buf, sizeof(buf), "d%s%d", pfx[rnd(&s) % 8], i * 7919 % n);

		if (rnd(&s) % 10 == 0) {	/* some long names, up to 255 bytes */
			size_t extra = rnd(&s) % 250;

			while (extra-- && len < 256)
				buf[len++] = (char)('a' + rnd(&s) % 26);
			buf[len] = 0;
		}
		names[i] = strdup(buf);
	}
	/* insert in a random order */
	for (int i = n - 1; i > 0; i--) {
		int j = (int)rnd_below(&s, (uint64_t)i + 1);
		char *t = names[i];

		names[i] = names[j];
		names[j] = t;
	}
	for (int i = 0; i < n; i++) {
		uint64_t ino = htole64((uint64_t)i + 16);

		memcpy(val, &ino, 8);
		val[8] = 1;
		ret = pfs_omap_insert(f.tx, &f.om, names[i], strlen(names[i]), val, 9);
		FAILIF(ret != 0, "insert %d (%s): %d", i, names[i], ret);
		if (i % 2000 == 1999)
			fix_reopen(&f);
	}
	fix_reopen(&f);
	ck_assert_uint_eq(f.count, (uint64_t)n);
	ret = pfs_omap_insert(f.tx, &f.om, names[n / 2], strlen(names[n / 2]), val, 9);
	ck_assert_int_eq(ret, -EEXIST);
	ret = pfs_omap_check(f.tx, &f.om, NULL, &st);
	ck_assert_int_eq(ret, 0);
	ck_assert_uint_eq(st.records, (uint64_t)n);

	memcpy(sorted, names, (size_t)n * sizeof(*names));
	qsort(sorted, (size_t)n, sizeof(*sorted), name_cmp);

	/* readdir: chunks of 500, each a new transaction resuming after the
	 * last name returned; every name exactly once, in order */
	for (int first = 1;; first = 0) {
		int k;

		ret = first ? pfs_omap_cursor_seek(f.tx, &f.om, NULL, 0, &cur)
			    : pfs_omap_cursor_seek_after(f.tx, &f.om, last, lastlen, &cur);
		ck_assert_int_eq(ret, 0);
		for (k = 0; k < 500; k++) {
			ret = pfs_omap_cursor_next(&cur, key, sizeof(key), &klen, val, sizeof(val), &vlen);
			if (ret == -ENOENT)
				break;
			FAILIF(ret != 0, "readdir next: %d", ret);
			FAILIF(seen >= (uint64_t)n, "readdir returns more than %d names", n);
			FAILIF(klen != strlen(sorted[seen]) || memcmp(key, sorted[seen], klen),
			       "readdir entry %llu out of order", (unsigned long long)seen);
			FAILIF(vlen != 9, "readdir value length %zu", vlen);
			memcpy(last, key, klen);
			lastlen = klen;
			seen++;
		}
		pfs_omap_cursor_release(&cur);
		fix_reopen(&f);
		if (k < 500)
			break;
	}
	ck_assert_uint_eq(seen, (uint64_t)n);

	ret = pfs_omap_destroy(f.tx, &f.om);
	ck_assert_int_eq(ret, 0);
	fix_reopen(&f);
	ck_assert_uint_eq(pfs_memstore_used(f.ms, 0), 0);
	fix_fini(&f);
	for (int i = 0; i < n; i++)
		free(names[i]);
	free(names);
	free(sorted);
}

START_TEST(directory_100k_4k)
{
	directory_run(4096, 100000);
}
END_TEST

START_TEST(directory_20k_64k)
{
	directory_run(65536, 20000);
}
END_TEST

/* Names created in order (ascending, then descending in a second tree)
 * fill the nodes to well over a half; a random order still passes. */
START_TEST(sequential_fill)
{
	for (int dir = 0; dir < 2; dir++) {
		struct pfs_omap_stats st;
		uint8_t key[64];
		struct fix f;
		double fill;

		fix_init(&f, 4096, 4000);
		for (int i = 0; i < 20000; i++) {
			int n = dir ? 19999 - i : i;
			int len = snprintf((char *)key, sizeof(key), "dfile-%08d", n);

			FAILIF(pfs_omap_insert(f.tx, &f.om, key, (size_t)len, "12345678t", 9),
			       "insert %d", i);
		}
		fix_reopen(&f);
		ck_assert_int_eq(pfs_omap_check(f.tx, &f.om, NULL, &st), 0);
		fill = (double)st.bytes_used / (double)(st.bytes_used + st.bytes_free);
		ck_assert_msg(fill > 0.70, "%s order: nodes %.0f%% full",
			      dir ? "descending" : "ascending", fill * 100);
		ck_assert_int_eq(pfs_omap_destroy(f.tx, &f.om), 0);
		fix_reopen(&f);
		ck_assert_uint_eq(pfs_memstore_used(f.ms, 0), 0);
		fix_fini(&f);
	}
}
END_TEST

/* ---- small behaviours ----------------------------------------------------- */

START_TEST(arguments_and_edges)
{
	uint8_t big[POSFS_OMAP_KEY_MAX + 1], v[8];
	size_t vlen = 0;
	uint64_t removed;
	struct pfs_omap_cursor cur;
	struct fix f;

	memset(big, 'k', sizeof(big));
	fix_init(&f, 4096, 100);
	ck_assert_int_eq(pfs_omap_set(f.tx, &f.om, big, 0, "v", 1), -EINVAL);
	ck_assert_int_eq(pfs_omap_set(f.tx, &f.om, big, sizeof(big), "v", 1), -EINVAL);
	ck_assert_int_eq(pfs_omap_set(f.tx, &f.om, big, 4, NULL, POSFS_OMAP_VALUE_MAX + 1), -EINVAL);
	ck_assert_int_eq(pfs_omap_get(f.tx, &f.om, "a", 1, v, sizeof(v), &vlen), -ENOENT);
	ck_assert_int_eq(pfs_omap_remove(f.tx, &f.om, "a", 1), -ENOENT);
	ck_assert_int_eq(pfs_omap_remove_range(f.tx, &f.om, NULL, 0, NULL, 0, &removed), 0);
	ck_assert_uint_eq(removed, 0);
	ck_assert_int_eq(pfs_omap_cursor_seek(f.tx, &f.om, NULL, 0, &cur), 0);
	ck_assert_int_eq(pfs_omap_cursor_next(&cur, NULL, 0, NULL, NULL, 0, NULL), -ENOENT);
	pfs_omap_cursor_release(&cur);
	pfs_omap_cursor_release(&cur);	/* twice is fine */

	/* maximal key with an empty value, and with a maximal value */
	ck_assert_int_eq(pfs_omap_set(f.tx, &f.om, big, POSFS_OMAP_KEY_MAX, NULL, 0), 0);
	ck_assert_int_eq(pfs_omap_get(f.tx, &f.om, big, POSFS_OMAP_KEY_MAX, v, 0, &vlen), 0);
	ck_assert_uint_eq(vlen, 0);
	ck_assert_int_eq(pfs_omap_insert(f.tx, &f.om, big, POSFS_OMAP_KEY_MAX, "x", 1), -EEXIST);
	ck_assert_uint_eq(f.count, 1);
	fix_reopen(&f);
	{
		uint8_t *val = malloc(POSFS_OMAP_VALUE_MAX), *back = malloc(POSFS_OMAP_VALUE_MAX);

		for (size_t i = 0; i < POSFS_OMAP_VALUE_MAX; i++)
			val[i] = (uint8_t)(i * 13);
		ck_assert_int_eq(pfs_omap_set(f.tx, &f.om, big, POSFS_OMAP_KEY_MAX, val,
					      POSFS_OMAP_VALUE_MAX), 0);
		fix_reopen(&f);
		ck_assert_int_eq(pfs_omap_get(f.tx, &f.om, big, POSFS_OMAP_KEY_MAX, back,
					      POSFS_OMAP_VALUE_MAX, &vlen), 0);
		ck_assert_uint_eq(vlen, POSFS_OMAP_VALUE_MAX);
		ck_assert(!memcmp(val, back, vlen));
		/* node + index + 16 data blocks */
		ck_assert_uint_eq(pfs_memstore_used(f.ms, 0), 18);
		/* shorter keys sort first on a tie */
		ck_assert_int_eq(pfs_omap_set(f.tx, &f.om, big, 1, "s", 1), 0);
		ck_assert_int_eq(pfs_omap_cursor_seek(f.tx, &f.om, NULL, 0, &cur), 0);
		ck_assert_int_eq(pfs_omap_cursor_next(&cur, back, POSFS_OMAP_KEY_MAX, &vlen,
						      NULL, 0, NULL), 0);
		ck_assert_uint_eq(vlen, 1);
		/* key buffer too small: -ERANGE, the cursor stays */
		ck_assert_int_eq(pfs_omap_cursor_next(&cur, back, 10, &vlen, NULL, 0, NULL), -ERANGE);
		ck_assert_uint_eq(vlen, POSFS_OMAP_KEY_MAX);
		ck_assert_int_eq(pfs_omap_cursor_next(&cur, back, POSFS_OMAP_KEY_MAX, &vlen,
						      NULL, 0, NULL), 0);
		ck_assert_int_eq(pfs_omap_cursor_next(&cur, NULL, 0, NULL, NULL, 0, NULL), -ENOENT);
		pfs_omap_cursor_release(&cur);
		/* replace the big value by a small one: its blocks come back */
		ck_assert_int_eq(pfs_omap_set(f.tx, &f.om, big, POSFS_OMAP_KEY_MAX, "y", 1), 0);
		fix_reopen(&f);
		ck_assert_uint_eq(pfs_memstore_used(f.ms, 0), 1);
		ck_assert_uint_eq(f.count, 2);
		ck_assert_int_eq(pfs_omap_check(f.tx, &f.om, NULL, NULL), 0);
		ck_assert_int_eq(pfs_omap_remove_range(f.tx, &f.om, big, 1, big, 2, &removed), 0);
		ck_assert_uint_eq(removed, 1);
		ck_assert_int_eq(pfs_omap_remove_range(f.tx, &f.om, big, 2, NULL, 0, &removed), 0);
		ck_assert_uint_eq(removed, 1);
		ck_assert_uint_eq(f.root.blkno, 0);
		fix_reopen(&f);
		ck_assert_uint_eq(pfs_memstore_used(f.ms, 0), 0);
		free(val);
		free(back);
	}
	fix_fini(&f);
}
END_TEST

/* Many maximal cells (1024-byte keys, external values) in 4 KiB nodes:
 * two per node at most, every split and merge at its limit. */
START_TEST(maximal_cells)
{
	uint8_t key[POSFS_OMAP_KEY_MAX], val[2000];
	uint64_t s = 5;
	struct fix f;
	int ret;

	fix_init(&f, 4096, 20000);
	memset(val, 0x5a, sizeof(val));
	for (int i = 0; i < 600; i++) {
		memset(key, 'K', sizeof(key));
		snprintf((char *)key + 1000, 24, "%08d", (int)(rnd(&s) % 100000));
		ret = pfs_omap_set(f.tx, &f.om, key, POSFS_OMAP_KEY_MAX, val,
				   i % 3 ? 1000 - (size_t)(i % 7) : sizeof(val));
		ck_assert_int_eq(ret, 0);
	}
	fix_reopen(&f);
	ck_assert_int_eq(pfs_omap_check(f.tx, &f.om, NULL, NULL), 0);
	s = 5;
	for (int i = 0; i < 600; i++) {
		memset(key, 'K', sizeof(key));
		snprintf((char *)key + 1000, 24, "%08d", (int)(rnd(&s) % 100000));
		ret = pfs_omap_remove(f.tx, &f.om, key, POSFS_OMAP_KEY_MAX);
		ck_assert(ret == 0 || ret == -ENOENT);
		if (i % 50 == 0)
			ck_assert_int_eq(pfs_omap_check(f.tx, &f.om, NULL, NULL), 0);
	}
	ck_assert_uint_eq(f.count, 0);
	fix_reopen(&f);
	ck_assert_uint_eq(pfs_memstore_used(f.ms, 0), 0);
	fix_fini(&f);
}
END_TEST

/* ---- corrupt trees --------------------------------------------------------- */

struct cfix {
	struct fix f;
	uint64_t leaf;		/* the first leaf */
	uint64_t ext_leaf;	/* a leaf holding an external value */
	uint8_t firstkey[16];
	size_t firstlen;
};

/* 3000 keys with some external values, committed; then remember the first
 * leaf. */
static void cfix_build(struct cfix *c, uint32_t bs)
{
	uint8_t key[32], val[6000];
	struct pfs_block_expect exp = { .magic = POSFS_MAGIC_OMAP, .owner = OWNER,
					.check_owner = true };
	struct pfs_buf *b;
	uint64_t blk;

	fix_init(&c->f, bs, 4000);
	memset(val, 0x33, sizeof(val));
	for (int i = 0; i < 3000; i++) {
		int len = snprintf((char *)key, sizeof(key), "k%06d", i);

		ck_assert_int_eq(pfs_omap_set(c->f.tx, &c->f.om, key, (size_t)len, val,
					      i % 100 == 7 ? 5000 : 40), 0);
	}
	c->firstlen = (size_t)snprintf((char *)c->firstkey, sizeof(c->firstkey), "k%06d", 0);
	fix_reopen(&c->f);
	ck_assert_uint_ge(c->f.root.height, 2);
	/* follow child 0 down to the first leaf */
	blk = c->f.root.blkno;
	for (uint32_t l = c->f.root.height - 1; l > 0; l--) {
		struct pfs_domap_node *n;
		uint16_t off, klen;

		ck_assert_int_eq(pfs_tx_get(c->f.tx, blk, &exp, &b), 0);
		n = (struct pfs_domap_node *)pfs_buf_data(b);
		off = le16toh(n->slot[0]);
		memcpy(&klen, pfs_buf_data(b) + off, 2);
		memcpy(&blk, pfs_buf_data(b) + off + 8 + le16toh(klen), 8);
		blk = le64toh(blk);
		pfs_buf_put(b);
	}
	c->leaf = blk;
	pfs_memstore_unchecked(c->f.ms);	/* the tests plant malformed nodes */
}

/* In a new transaction: the first leaf, dirty, for the caller to break. */
static uint8_t *cfix_leaf(struct cfix *c, struct pfs_buf **bp)
{
	struct pfs_block_expect exp = { .magic = POSFS_MAGIC_OMAP, .owner = OWNER,
					.check_owner = true };

	ck_assert_int_eq(pfs_tx_get(c->f.tx, c->leaf, &exp, bp), 0);
	ck_assert_int_eq(pfs_tx_dirty(c->f.tx, *bp), 0);
	return pfs_buf_data(*bp);
}

/* After the break is committed: every operation reaching that leaf fails
 * with err (or -EUCLEAN/-EBADMSG as listed), the check too; no crash. */
static void cfix_expect(struct cfix *c, int err)
{
	uint8_t key[POSFS_OMAP_KEY_MAX], val[8000];
	struct pfs_omap_cursor cur;
	size_t klen, vlen;
	uint64_t removed;
	int ret;

	ret = pfs_omap_check(c->f.tx, &c->f.om, NULL, NULL);
	ck_assert_msg(ret == err, "check: %d, expected %d", ret, err);
	ret = pfs_omap_get(c->f.tx, &c->f.om, c->firstkey, c->firstlen, val, sizeof(val), &vlen);
	ck_assert_msg(ret == err || ret == 0 || ret == -ENOENT, "get: %d", ret);
	ret = pfs_omap_cursor_seek(c->f.tx, &c->f.om, NULL, 0, &cur);
	while (ret == 0)
		ret = pfs_omap_cursor_next(&cur, key, sizeof(key), &klen, val, sizeof(val), &vlen);
	pfs_omap_cursor_release(&cur);
	ck_assert_msg(ret == err, "iteration: %d", ret);
	ret = pfs_omap_set(c->f.tx, &c->f.om, c->firstkey, c->firstlen, "v", 1);
	ck_assert_msg(ret == err || ret == 0 || ret == -EUCLEAN, "set: %d", ret);
	pfs_memtx_abort(c->f.tx);
	c->f.tx = pfs_memtx_begin(c->f.ms);
	ret = pfs_omap_remove_range(c->f.tx, &c->f.om, NULL, 0, NULL, 0, &removed);
	ck_assert_msg(ret == err || ret == -EUCLEAN, "remove_range: %d", ret);
	pfs_memtx_abort(c->f.tx);
	c->f.tx = pfs_memtx_begin(c->f.ms);
	ret = pfs_omap_destroy(c->f.tx, &c->f.om);
	ck_assert_msg(ret == err || ret == -EUCLEAN, "destroy: %d", ret);
	pfs_memtx_abort(c->f.tx);
	c->f.tx = NULL;
	fix_fini(&c->f);
}

static uint16_t slot_get(const uint8_t *d, unsigned i)
{
	const struct pfs_domap_node *n = (const struct pfs_domap_node *)d;

	return le16toh(n->slot[i]);
}

static void slot_put(uint8_t *d, unsigned i, uint16_t v)
{
	struct pfs_domap_node *n = (struct pfs_domap_node *)d;

	n->slot[i] = htole16(v);
}

static unsigned node_nr(const uint8_t *d)
{
	return le16toh(((const struct pfs_dblock_hdr *)d)->nr);
}

/* The slot whose cell sits highest in the block (the end of the block). */
static unsigned slot_highest(const uint8_t *d)
{
	unsigned best = 0;

	for (unsigned i = 1; i < node_nr(d); i++)
		if (slot_get(d, i) > slot_get(d, best))
			best = i;
	return best;
}

START_TEST(corrupt_slot_outside)
{
	struct cfix c;
	struct pfs_buf *b;
	uint8_t *d;

	cfix_build(&c, 4096);
	d = cfix_leaf(&c, &b);
	slot_put(d, 0, 4096 - 4);	/* a cell header past the block's end */
	pfs_buf_put(b);
	fix_reopen(&c.f);
	cfix_expect(&c, -EUCLEAN);
}
END_TEST

START_TEST(corrupt_slot_into_slots)
{
	struct cfix c;
	struct pfs_buf *b;
	uint8_t *d;

	cfix_build(&c, 4096);
	d = cfix_leaf(&c, &b);
	slot_put(d, 0, 80);		/* into the slot array */
	pfs_buf_put(b);
	fix_reopen(&c.f);
	cfix_expect(&c, -EUCLEAN);
}
END_TEST

START_TEST(corrupt_key_len)
{
	struct cfix c;
	struct pfs_buf *b;
	uint8_t *d;
	uint16_t off;

	cfix_build(&c, 4096);
	d = cfix_leaf(&c, &b);
	off = slot_get(d, slot_highest(d));
	d[off] = 0x00;			/* key_len 1024: past the block */
	d[off + 1] = 0x04;
	pfs_buf_put(b);
	fix_reopen(&c.f);
	cfix_expect(&c, -EUCLEAN);
}
END_TEST

START_TEST(corrupt_key_len_huge)
{
	struct cfix c;
	struct pfs_buf *b;
	uint8_t *d;
	uint16_t off;

	cfix_build(&c, 4096);
	d = cfix_leaf(&c, &b);
	off = slot_get(d, 0);
	d[off] = 0xff;			/* key_len 65535 */
	d[off + 1] = 0xff;
	pfs_buf_put(b);
	fix_reopen(&c.f);
	cfix_expect(&c, -EUCLEAN);
}
END_TEST

START_TEST(corrupt_value_len)
{
	struct cfix c;
	struct pfs_buf *b;
	uint8_t *d;
	uint16_t off;
	uint32_t v = htole32(3000);

	cfix_build(&c, 4096);
	d = cfix_leaf(&c, &b);
	off = slot_get(d, slot_highest(d));
	memcpy(d + off + 4, &v, 4);	/* an inline value past the block */
	pfs_buf_put(b);
	fix_reopen(&c.f);
	cfix_expect(&c, -EUCLEAN);
}
END_TEST

START_TEST(corrupt_header_fields)
{
	for (int what = 0; what < 5; what++) {
		struct pfs_domap_node *n;
		struct cfix c;
		struct pfs_buf *b;
		uint8_t *d;

		cfix_build(&c, 4096);
		d = cfix_leaf(&c, &b);
		n = (struct pfs_domap_node *)d;
		switch (what) {
		case 0: n->hdr.level = htole16(1); break;		/* wrong level */
		case 1: n->free_start = htole16(le16toh(n->free_start) + 2); break;
		case 2: n->free_end = htole16(4090); break;		/* cells below it */
		case 3: n->free_bytes = htole32(5000); break;
		case 4: n->hdr.nr = htole16(2000); break;		/* past free_start */
		}
		pfs_buf_put(b);
		fix_reopen(&c.f);
		cfix_expect(&c, -EUCLEAN);
	}
}
END_TEST

START_TEST(corrupt_order)
{
	struct cfix c;
	struct pfs_buf *b;
	uint8_t *d;
	uint16_t a;
	int ret;

	cfix_build(&c, 4096);
	d = cfix_leaf(&c, &b);
	a = slot_get(d, 0);		/* swap the first two keys */
	slot_put(d, 0, slot_get(d, 1));
	slot_put(d, 1, a);
	pfs_buf_put(b);
	fix_reopen(&c.f);
	ret = pfs_omap_check(c.f.tx, &c.f.om, NULL, NULL);
	ck_assert_int_eq(ret, -EUCLEAN);
	fix_fini(&c.f);
}
END_TEST

START_TEST(corrupt_child_pointer)
{
	struct pfs_block_expect exp = { .magic = POSFS_MAGIC_OMAP, .owner = OWNER,
					.check_owner = true };
	for (int what = 0; what < 3; what++) {
		struct cfix c;
		struct pfs_buf *b;
		uint8_t *d;
		uint16_t off, klen;
		uint64_t child;
		int ret;

		cfix_build(&c, 4096);
		ck_assert_int_eq(pfs_tx_get(c.f.tx, c.f.root.blkno, &exp, &b), 0);
		ck_assert_int_eq(pfs_tx_dirty(c.f.tx, b), 0);
		d = pfs_buf_data(b);
		off = slot_get(d, 0);
		memcpy(&klen, d + off, 2);
		klen = le16toh(klen);
		memcpy(&child, d + off + 8 + klen, 8);
		child = le64toh(child);
		/* 0; the root itself (wrong level); a block past the store */
		child = what == 0 ? 0 : what == 1 ? c.f.root.blkno : 1000000;
		child = htole64(child);
		memcpy(d + off + 8 + klen, &child, 8);
		pfs_buf_put(b);
		fix_reopen(&c.f);
		ret = pfs_omap_check(c.f.tx, &c.f.om, NULL, NULL);
		ck_assert_int_eq(ret, -EUCLEAN);
		cfix_expect(&c, -EUCLEAN);
	}
}
END_TEST

START_TEST(corrupt_owner_and_root)
{
	struct cfix c;
	struct pfs_omap other;
	struct pfs_tree_root root;
	uint8_t v[64];
	size_t vlen;

	cfix_build(&c, 4096);
	other = c.f.om;
	other.owner = OWNER + 1;	/* another object's tree */
	ck_assert_int_eq(pfs_omap_get(c.f.tx, &other, c.firstkey, c.firstlen, v, sizeof(v), &vlen),
			 -EUCLEAN);
	ck_assert_int_eq(pfs_omap_check(c.f.tx, &other, NULL, NULL), -EUCLEAN);
	root = c.f.root;
	other = c.f.om;
	other.root = &root;
	root.height++;			/* levels disagree */
	ck_assert_int_eq(pfs_omap_get(c.f.tx, &other, c.firstkey, c.firstlen, v, sizeof(v), &vlen),
			 -EUCLEAN);
	root.height = 40;		/* too deep */
	ck_assert_int_eq(pfs_omap_check(c.f.tx, &other, NULL, NULL), -EUCLEAN);
	root.height = 0;		/* blkno without height */
	ck_assert_int_eq(pfs_omap_set(c.f.tx, &other, "a", 1, "b", 1), -EUCLEAN);
	/* count off by one */
	c.f.count++;
	ck_assert_int_eq(pfs_omap_check(c.f.tx, &c.f.om, NULL, NULL), -EUCLEAN);
	c.f.count--;
	ck_assert_int_eq(pfs_omap_check(c.f.tx, &c.f.om, NULL, NULL), 0);
	fix_fini(&c.f);
}
END_TEST

/* Find an external value's cell in some leaf: its node and vref. */
static int find_external(struct cfix *c, uint8_t *key, size_t *klen, uint64_t *pblk,
			 uint32_t *nblocks)
{
	struct pfs_omap_cursor cur;
	uint8_t v[8000];
	size_t vlen;
	int ret;

	/* keys k000007, k000107, ... have 5000-byte values */
	*klen = (size_t)snprintf((char *)key, 16, "k%06d", 107);
	ret = pfs_omap_cursor_seek(c->f.tx, &c->f.om, key, *klen, &cur);
	ck_assert_int_eq(ret, 0);
	ret = pfs_omap_cursor_next(&cur, NULL, 0, NULL, v, sizeof(v), &vlen);
	ck_assert_int_eq(ret, 0);
	ck_assert_uint_eq(vlen, 5000);
	{
		const uint8_t *d = pfs_buf_data(cur.b[0]);
		uint16_t off = slot_get(d, cur.idx[0] - 1), kl, fl;

		memcpy(&kl, d + off, 2);
		memcpy(&fl, d + off + 2, 2);
		kl = le16toh(kl);
		ck_assert(le16toh(fl) & POSFS_OMAP_VAL_EXTERNAL);
		memcpy(pblk, d + off + 8 + kl, 8);
		*pblk = le64toh(*pblk);
		memcpy(nblocks, d + off + 8 + kl + 8, 4);
		*nblocks = le32toh(*nblocks);
	}
	pfs_omap_cursor_release(&cur);
	return 0;
}

START_TEST(corrupt_external_value)
{
	for (int what = 0; what < 2; what++) {
		uint8_t key[16], v[8000];
		struct cfix c;
		struct pfs_buf *b;
		uint64_t pblk, data;
		uint32_t nblocks;
		size_t klen, vlen;
		int ret;

		cfix_build(&c, 4096);
		find_external(&c, key, &klen, &pblk, &nblocks);
		ck_assert_uint_eq(nblocks, 2);
		ck_assert_int_eq(pfs_tx_get_raw(c.f.tx, pblk, &b), 0);	/* the index */
		memcpy(&data, pfs_buf_data(b) + 8, 8);
		data = le64toh(data);
		ck_assert_int_eq(pfs_tx_dirty(c.f.tx, b), 0);
		if (what == 0) {
			pfs_buf_put(b);		/* a flipped byte in the value */
			ck_assert_int_eq(pfs_tx_get_raw(c.f.tx, data, &b), 0);
			ck_assert_int_eq(pfs_tx_dirty(c.f.tx, b), 0);
			pfs_buf_data(b)[100] ^= 0x40;
		} else {
			pfs_buf_data(b)[3] ^= 0x01;	/* a flipped bit in the index */
		}
		pfs_buf_put(b);
		fix_reopen(&c.f);
		ret = pfs_omap_get(c.f.tx, &c.f.om, key, klen, v, sizeof(v), &vlen);
		ck_assert_int_eq(ret, -EBADMSG);
		ret = pfs_omap_check(c.f.tx, &c.f.om, NULL, NULL);
		ck_assert_int_eq(ret, -EBADMSG);
		/* neighbours still read fine */
		klen = (size_t)snprintf((char *)key, sizeof(key), "k%06d", 108);
		ck_assert_int_eq(pfs_omap_get(c.f.tx, &c.f.om, key, klen, v, sizeof(v), &vlen), 0);
		if (what == 0) {
			/* a bad value can still be removed (its blocks are known) */
			klen = (size_t)snprintf((char *)key, sizeof(key), "k%06d", 107);
			ck_assert_int_eq(pfs_omap_remove(c.f.tx, &c.f.om, key, klen), 0);
			ck_assert_int_eq(pfs_omap_check(c.f.tx, &c.f.om, NULL, NULL), 0);
			fix_fini(&c.f);
		} else {
			cfix_expect(&c, -EBADMSG);
		}
	}
}
END_TEST

/* Random bytes flipped in a node inside a transaction (the working copy,
 * not re-verified by memtx), then every operation: never a crash. */
START_TEST(fuzz_nodes)
{
	static const struct pfs_block_expect exp0 = { .magic = POSFS_MAGIC_OMAP, .owner = OWNER,
						      .check_owner = true };
	uint8_t key[POSFS_OMAP_KEY_MAX], val[8000];
	uint64_t s = random_seed(), seed = s;
	struct cfix c;

	cfix_build(&c, 4096);
	for (int it = 0; it < 1500; it++) {
		struct pfs_block_expect exp = exp0;
		struct pfs_tree_root root = c.f.root;
		uint64_t count = c.f.count;
		struct pfs_omap_cursor cur;
		struct pfs_buf *b;
		uint64_t blk = it % 2 ? c.leaf : c.f.root.blkno, removed;
		size_t klen, vlen;
		int ret, nflip = 1 + (int)rnd_below(&s, 3);

		if (it % 5 == 4)
			blk = c.leaf + rnd_below(&s, 40);	/* some node nearby */
		if (pfs_tx_get(c.f.tx, blk, &exp, &b))
			continue;
		FAILIF(pfs_tx_dirty(c.f.tx, b), "dirty");
		for (int k = 0; k < nflip; k++) {
			/* mostly the node's own fields and cells, not the
			 * magic/owner that memtx still compares */
			size_t at = rnd_below(&s, 4) ? 64 + rnd_below(&s, 4096 - 64) : 0x0c + rnd_below(&s, 4);

			pfs_buf_data(b)[at] ^= (uint8_t)(1 + rnd_below(&s, 255));
		}
		pfs_buf_put(b);
		klen = (size_t)snprintf((char *)key, sizeof(key), "k%06d", (int)rnd_below(&s, 3000));
		ret = pfs_omap_get(c.f.tx, &c.f.om, key, klen, val, sizeof(val), &vlen);
		FAILIF(!(ret == 0 || ret == -ENOENT || ret == -EUCLEAN || ret == -EBADMSG ||
			 ret == -ERANGE), "seed %llu it %d: get %d", (unsigned long long)seed, it, ret);
		ret = pfs_omap_check(c.f.tx, &c.f.om, NULL, NULL);
		FAILIF(!(ret == -EUCLEAN || ret == -EBADMSG || ret == 0),
		       "seed %llu it %d: check %d", (unsigned long long)seed, it, ret);
		ret = pfs_omap_cursor_seek(c.f.tx, &c.f.om, NULL, 0, &cur);
		for (int n = 0; ret == 0 && n < 4000; n++)
			ret = pfs_omap_cursor_next(&cur, key, sizeof(key), &klen, val, sizeof(val), &vlen);
		pfs_omap_cursor_release(&cur);
		switch (it % 4) {
		case 0:
			ret = pfs_omap_set(c.f.tx, &c.f.om, key, 7, val, rnd_below(&s, 3000));
			break;
		case 1:
			ret = pfs_omap_remove(c.f.tx, &c.f.om, "k000500", 7);
			break;
		case 2:
			ret = pfs_omap_remove_range(c.f.tx, &c.f.om, "k000100", 7, "k000900", 7, &removed);
			break;
		default:
			for (int n = 0; n < 50 && ret != -EUCLEAN; n++) {
				klen = (size_t)snprintf((char *)key, sizeof(key), "n%06d", n);
				ret = pfs_omap_insert(c.f.tx, &c.f.om, key, klen, val, 100);
			}
			break;
		}
		FAILIF(!(ret == 0 || ret == -ENOENT || ret == -EUCLEAN || ret == -EBADMSG ||
			 ret == -EEXIST), "seed %llu it %d: op %d", (unsigned long long)seed, it, ret);
		pfs_memtx_abort(c.f.tx);
		c.f.tx = pfs_memtx_begin(c.f.ms);
		c.f.root = root;	/* the caller's part of the roll back */
		c.f.count = count;
	}
	ck_assert_int_eq(pfs_omap_check(c.f.tx, &c.f.om, NULL, NULL), 0);
	fix_fini(&c.f);
}
END_TEST

static Suite *omap_suite(void)
{
	Suite *s = suite_create("omap");
	TCase *tc = tcase_create("omap");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, arguments_and_edges);
	tcase_add_test(tc, maximal_cells);
	tcase_add_test(tc, model_4k_fixed);
	tcase_add_test(tc, model_4k_random);
	tcase_add_test(tc, model_64k_fixed);
	tcase_add_test(tc, model_64k_random);
	tcase_add_test(tc, directory_100k_4k);
	tcase_add_test(tc, directory_20k_64k);
	tcase_add_test(tc, sequential_fill);
	tcase_add_test(tc, corrupt_slot_outside);
	tcase_add_test(tc, corrupt_slot_into_slots);
	tcase_add_test(tc, corrupt_key_len);
	tcase_add_test(tc, corrupt_key_len_huge);
	tcase_add_test(tc, corrupt_value_len);
	tcase_add_test(tc, corrupt_header_fields);
	tcase_add_test(tc, corrupt_order);
	tcase_add_test(tc, corrupt_child_pointer);
	tcase_add_test(tc, corrupt_owner_and_root);
	tcase_add_test(tc, corrupt_external_value);
	tcase_add_test(tc, fuzz_nodes);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	SRunner *sr = srunner_create(omap_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
