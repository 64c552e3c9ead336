/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fsck's scratch maps (see map.h for the contract).
 *
 * Memory. Each map is an open-addressing hash table: a power-of-two
 * number of slots of 8 + vsize bytes (the key, then the value, packed),
 * an occupancy bitmap in front of them in the same allocation, linear
 * probing from the slot the murmur3 finaliser of the key picks (keys are
 * often dense inode or block numbers, which must not cluster), growth by
 * doubling before the load passes 0.7, deletion by backward shift, so
 * there are no tombstones:
 *   H1. Every record lies in the run of used slots that begins at its
 *       home slot: no empty slot between its home and itself.
 *   H2. At most 0.7 * cap slots are used: a probe always ends.
 * Iteration copies the keys out, sorts them (introsort, in place) and
 * looks each one up again.
 *
 * LMDB. The environment moves once and for all: when a table would grow,
 * or an iteration's key array be made, past mem_limit. The move reserves
 * file space for an estimate of what the maps need, opens one named
 * sub-database per map, and then per map packs the used slots to the
 * front of the table, sorts them and appends them (MDB_APPEND: full
 * pages, no splits) before freeing the table. Keys are big-endian, so
 * LMDB's memcmp order is key order.
 *
 * All LMDB work is done in one long write transaction, committed every
 * PFS_MAP_LOG_RECS changes. The flags (no sync, no meta sync, no lock
 * file) suit a file nobody reads after us, and no read-ahead one that may
 * be bigger than memory and is read at random; MDB_WRITEMAP keeps dirty
 * pages in the file's page cache instead of malloc'd memory, which is the
 * point of the exercise. LMDB aborts a write transaction at its first real
 * failure (MDB_MAP_FULL among them) and everything since the last commit
 * is lost, so the environment keeps a log of those changes:
 *   L1. While on_disk, txn is an open write transaction holding exactly
 *       the last committed state plus the changes in the log, in order.
 *   L2. Any failed LMDB call is therefore undone by aborting, (growing
 *       the map if it was full,) beginning again and replaying the log;
 *       the call then changed nothing, and may be retried.
 *   L3. Opening a sub-database is a logged change too: a handle opened in
 *       an aborted transaction is closed, and the replay opens it again.
 *   L4. Cursors die with their transaction. gen counts transaction ends;
 *       an iteration whose callback let gen move seeks its place again
 *       (the next key) in the new transaction.
 *   L5. LMDB never writes past the reserved (posix_fallocate) part of
 *       the file: mapsize is only raised after the space is reserved.
 *       With MDB_WRITEMAP a write to an unreserved page of a full file
 *       system would be a SIGBUS, not an error.
 * Failures that cannot be undone (replay failing, LMDB unable to map the
 * file again, the move failing half way through the tables) break the
 * environment: err is set and every later call returns it.
 */

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "format/endian.h"
#include "check/map.h"

/* Tunables; the unit tests also build this file with tiny ones. */
#ifndef PFS_MAP_MIN_CAP
#define PFS_MAP_MIN_CAP		16		/* slots of a first table */
#endif
#ifndef PFS_MAP_LOG_RECS
#define PFS_MAP_LOG_RECS	65536		/* changes per transaction */
#endif
#ifndef PFS_MAP_LOG_BYTES
#define PFS_MAP_LOG_BYTES	(4u << 20)	/* ... and bytes of log */
#endif
#ifndef PFS_MAP_LMDB_MIN
#define PFS_MAP_LMDB_MIN	(1u << 20)	/* first LMDB map size */
#endif
#ifndef PFS_MAP_SORT_DEPTH
#define PFS_MAP_SORT_DEPTH	2		/* quicksort levels per bit of n */
#endif

#define STRIDE_MAX	(8 + PFS_MAP_VSIZE_MAX)
#define LM_FLAGS	(MDB_NOSUBDIR | MDB_NOSYNC | MDB_NOMETASYNC | \
			 MDB_WRITEMAP | MDB_NOLOCK | MDB_NORDAHEAD)

struct pfs_map {
	struct pfs_map_env *env;
	struct pfs_map *next;		/* env->maps, in creation order */
	size_t vsize;
	size_t stride;			/* 8 + vsize */
	uint64_t count;
	unsigned iterating;		/* pfs_map_iterate calls under way */
	/* in memory */
	uint64_t *used;			/* occupancy bits; the allocation */
	uint8_t *slots;			/* cap slots: key, value */
	size_t cap;			/* 0 or a power of two */
	size_t bytes;			/* of the allocation (env->mem) */
	/* in LMDB */
	MDB_dbi dbi;
	char name[PFS_MAP_NAME_MAX + 1];
};

struct pfs_map_env {
	struct pfs_map *maps, **tail;
	unsigned nmaps;
	uint64_t mem_limit;
	uint64_t mem;			/* bytes counted against the limit */
	bool on_disk;
	int err;			/* broken: every call returns it */
	/* LMDB (mdb NULL: memory only) */
	MDB_env *mdb;
	MDB_txn *txn;			/* L1 */
	int fd;
	size_t mapsize;			/* reserved and mapped (L5) */
	uint64_t gen;			/* L4 */
	uint8_t *log;			/* PFS_MAP_LOG_BYTES: struct logrec... */
	size_t log_len, log_n;
};

enum { OP_OPEN, OP_PUT, OP_DEL };

/* One logged change; a put is followed by its value, padded to 8 bytes. */
struct logrec {
	struct pfs_map *m;
	uint64_t key;
	uint32_t op;
	uint32_t flags;			/* of mdb_put */
};

#define LOGREC_MAX	(sizeof(struct logrec) + PFS_MAP_VSIZE_MAX)

static int env_move(struct pfs_map_env *e);
static int lm_change(struct pfs_map *m, int op, uint64_t key, const void *val,
		     unsigned flags);
static int lm_iterate(struct pfs_map *m, uint64_t from, pfs_map_fn fn, void *arg);

/* ---- helpers ------------------------------------------------------------ */

/* murmur3's 64-bit finaliser: every key bit reaches every hash bit. */
static inline uint64_t mix64(uint64_t k)
{
	k ^= k >> 33;
	k *= 0xff51afd7ed558ccdull;
	k ^= k >> 33;
	k *= 0xc4ceb9fe1a85ec53ull;
	k ^= k >> 33;
	return k;
}

static inline uint64_t key_at(const uint8_t *p)
{
	uint64_t k;

	memcpy(&k, p, 8);
	return k;
}

static bool over_limit(const struct pfs_map_env *e, uint64_t more)
{
	return e->mdb && e->mem + more > e->mem_limit;
}

static int env_break(struct pfs_map_env *e, int err)
{
	if (!e->err)
		e->err = err;
	if (e->txn) {
		mdb_txn_abort(e->txn);
		e->txn = NULL;
		e->gen++;
	}
	return e->err;
}

/* ---- sorting records by their first 8 bytes ----------------------------- */

static void rec_swap(uint8_t *a, uint8_t *b, size_t stride)
{
	uint8_t t[STRIDE_MAX];

	memcpy(t, a, stride);
	memcpy(a, b, stride);
	memcpy(b, t, stride);
}

static void heap_sift(uint8_t *base, size_t n, size_t stride, size_t i)
{
	for (;;) {
		size_t c = 2 * i + 1;

		if (c >= n)
			return;
		if (c + 1 < n && key_at(base + (c + 1) * stride) > key_at(base + c * stride))
			c++;
		if (key_at(base + i * stride) >= key_at(base + c * stride))
			return;
		rec_swap(base + i * stride, base + c * stride, stride);
		i = c;
	}
}

static void heap_sort(uint8_t *base, size_t n, size_t stride)
{
	for (size_t i = n / 2; i-- > 0;)
		heap_sift(base, n, stride, i);
	for (size_t end = n; end-- > 1;) {
		rec_swap(base, base + end * stride, stride);
		heap_sift(base, end, stride, 0);
	}
}

static void insertion_sort(uint8_t *base, size_t n, size_t stride)
{
	uint8_t t[STRIDE_MAX];

	for (size_t i = 1; i < n; i++) {
		uint64_t k = key_at(base + i * stride);
		size_t j = i;

		if (key_at(base + (i - 1) * stride) <= k)
			continue;
		while (j > 0 && key_at(base + (j - 1) * stride) > k)
			j--;
		memcpy(t, base + i * stride, stride);
		memmove(base + (j + 1) * stride, base + j * stride, (i - j) * stride);
		memcpy(base + j * stride, t, stride);
	}
}

/* Introsort: quicksort (median of three, Hoare), heapsort past depth. */
static void sort_part(uint8_t *base, size_t n, size_t stride, unsigned depth)
{
	while (n > 16) {
		uint8_t *lo = base, *mid = base + (n - 1) / 2 * stride;
		uint8_t *hi = base + (n - 1) * stride;
		size_t i = (size_t)-1, j = n;
		uint64_t p;

		if (!depth--) {
			heap_sort(base, n, stride);
			return;
		}
		if (key_at(mid) < key_at(lo))
			rec_swap(mid, lo, stride);
		if (key_at(hi) < key_at(mid)) {
			rec_swap(hi, mid, stride);
			if (key_at(mid) < key_at(lo))
				rec_swap(mid, lo, stride);
		}
		/* The pivot sits at the lower middle: 0 <= j <= n - 2. */
		p = key_at(mid);
		for (;;) {
			do
				i++;
			while (key_at(base + i * stride) < p);
			do
				j--;
			while (key_at(base + j * stride) > p);
			if (i >= j)
				break;
			rec_swap(base + i * stride, base + j * stride, stride);
		}
		/* [0, j] <= p <= [j + 1, n): the smaller part by recursion. */
		if (j + 1 < n - (j + 1)) {
			sort_part(base, j + 1, stride, depth);
			base += (j + 1) * stride;
			n -= j + 1;
		} else {
			sort_part(base + (j + 1) * stride, n - (j + 1), stride, depth);
			n = j + 1;
		}
	}
	insertion_sort(base, n, stride);
}

static void sort_recs(uint8_t *base, size_t n, size_t stride)
{
	unsigned depth = 0;

	for (size_t x = n; x > 1; x >>= 1)
		depth += PFS_MAP_SORT_DEPTH;
	sort_part(base, n, stride, depth);
}

/* ---- the hash table ----------------------------------------------------- */

static inline bool slot_used(const struct pfs_map *m, size_t i)
{
	return m->used[i / 64] >> (i % 64) & 1;
}

static inline void slot_set(struct pfs_map *m, size_t i, bool on)
{
	if (on)
		m->used[i / 64] |= 1ull << (i % 64);
	else
		m->used[i / 64] &= ~(1ull << (i % 64));
}

static inline uint8_t *slot_at(const struct pfs_map *m, size_t i)
{
	return m->slots + i * m->stride;
}

/* The slot holding key, or else the empty slot that ends its probe. */
static size_t mem_find(const struct pfs_map *m, uint64_t key, bool *found)
{
	size_t mask = m->cap - 1, i = mix64(key) & mask;

	while (slot_used(m, i)) {
		if (key_at(slot_at(m, i)) == key) {
			*found = true;
			return i;
		}
		i = (i + 1) & mask;
	}
	*found = false;
	return i;
}

static void mem_free(struct pfs_map *m)
{
	free(m->used);
	m->env->mem -= m->bytes;
	m->used = NULL;
	m->slots = NULL;
	m->cap = 0;
	m->bytes = 0;
}

/* Double the table. Returns 0, 1 if the environment moved instead, -errno. */
static int mem_grow(struct pfs_map *m)
{
	struct pfs_map_env *e = m->env;
	size_t cap = m->cap ? 2 * m->cap : PFS_MAP_MIN_CAP, words, bytes;
	struct pfs_map old = *m;
	int rc;

	if (cap < m->cap || cap > SIZE_MAX / (m->stride + 1))
		return -ENOMEM;
	words = (cap + 63) / 64;
	bytes = words * 8 + cap * m->stride;
	/* The old table is still counted: the peak is old plus new. */
	if (over_limit(e, bytes)) {
		rc = env_move(e);
		return rc ? rc : 1;
	}
	m->used = calloc(1, bytes);
	if (!m->used) {
		m->used = old.used;
		return -ENOMEM;
	}
	m->slots = (uint8_t *)(m->used + words);
	m->cap = cap;
	m->bytes = bytes;
	e->mem += bytes;
	for (size_t i = 0; i < old.cap; i++) {
		const uint8_t *p = slot_at(&old, i);
		bool found;
		size_t j;

		if (!slot_used(&old, i))
			continue;
		j = mem_find(m, key_at(p), &found);
		memcpy(slot_at(m, j), p, m->stride);
		slot_set(m, j, true);
	}
	free(old.used);
	e->mem -= old.bytes;
	return 0;
}

static int mem_put(struct pfs_map *m, uint64_t key, const void *val)
{
	bool found = false;
	size_t i = 0;
	uint8_t *p;
	int rc;

	if (m->cap) {
		i = mem_find(m, key, &found);
		if (found) {
			memcpy(slot_at(m, i) + 8, val, m->vsize);
			return 0;
		}
	}
	if ((m->count + 1) * 10 > (uint64_t)m->cap * 7) {
		rc = mem_grow(m);
		if (rc > 0)
			return lm_change(m, OP_PUT, key, val, 0);
		if (rc < 0)
			return rc;
		i = mem_find(m, key, &found);
	}
	p = slot_at(m, i);
	memcpy(p, &key, 8);
	memcpy(p + 8, val, m->vsize);
	slot_set(m, i, true);
	m->count++;
	return 0;
}

/* Backward shift: pull later records of the run into the hole (H1). */
static int mem_del(struct pfs_map *m, uint64_t key)
{
	size_t mask = m->cap - 1, i = 0, j, h;
	bool found = false;

	if (m->cap)
		i = mem_find(m, key, &found);
	if (!found)
		return -ENOENT;
	for (j = i;;) {
		j = (j + 1) & mask;
		if (!slot_used(m, j))
			break;
		h = mix64(key_at(slot_at(m, j))) & mask;
		/* A record whose home is cyclically in (i, j] must stay. */
		if (i <= j ? (i < h && h <= j) : (i < h || h <= j))
			continue;
		memcpy(slot_at(m, i), slot_at(m, j), m->stride);
		i = j;
	}
	slot_set(m, i, false);
	m->count--;
	return 0;
}

static int mem_iterate(struct pfs_map *m, pfs_map_fn fn, void *arg)
{
	struct pfs_map_env *e = m->env;
	uint64_t buf[PFS_MAP_VSIZE_MAX / 8];
	size_t n = m->count, k = 0;
	uint64_t *keys;
	bool found;
	int rc = 0;

	if (!n)
		return 0;
	if (over_limit(e, n * 8)) {
		rc = env_move(e);
		return rc ? rc : lm_iterate(m, 0, fn, arg);
	}
	keys = malloc(n * 8);
	if (!keys)
		return -ENOMEM;
	e->mem += n * 8;
	for (size_t i = 0; i < m->cap; i++)
		if (slot_used(m, i))
			keys[k++] = key_at(slot_at(m, i));
	sort_recs((uint8_t *)keys, n, 8);
	for (k = 0; k < n; k++) {
		/* fn may have moved the environment: carry on there (L4). */
		if (e->on_disk) {
			rc = lm_iterate(m, keys[k], fn, arg);
			break;
		}
		memcpy(buf, slot_at(m, mem_find(m, keys[k], &found)) + 8, m->vsize);
		rc = fn(arg, keys[k], buf);
		if (rc)
			break;
	}
	free(keys);
	e->mem -= n * 8;
	return rc;
}

/* ---- LMDB --------------------------------------------------------------- */

static int lm_err(int rc)
{
	if (rc >= 0)
		return -rc;		/* 0 or an errno */
	switch (rc) {
	case MDB_NOTFOUND:
		return -ENOENT;
	case MDB_MAP_FULL:
		return -ENOSPC;
	default:
		return -EIO;
	}
}

/* Make the first size bytes of the file real blocks (L5). */
static int lm_reserve(struct pfs_map_env *e, size_t size)
{
	int rc = posix_fallocate(e->fd, 0, (off_t)size);

	if (rc == EOPNOTSUPP || rc == ENOSYS)
		return 0;		/* nothing to be done: stays sparse */
	if (rc == EFBIG)
		return -ENOSPC;
	return -rc;
}

/* Reserve, then map size bytes. No transaction may be open. */
static int lm_resize(struct pfs_map_env *e, size_t size)
{
	int rc = lm_reserve(e, size);

	if (rc)
		return rc;
	rc = mdb_env_set_mapsize(e->mdb, size);
	if (rc)
		return env_break(e, lm_err(rc));	/* the old map is gone */
	e->mapsize = size;
	return 0;
}

static int lm_grow(struct pfs_map_env *e)
{
	if (e->mapsize > SIZE_MAX / 2)
		return -ENOSPC;
	return lm_resize(e, e->mapsize * 2);
}

static int lm_begin(struct pfs_map_env *e)
{
	int rc = mdb_txn_begin(e->mdb, NULL, 0, &e->txn);

	if (rc) {
		e->txn = NULL;
		return lm_err(rc);
	}
	return 0;
}

static void lm_abort(struct pfs_map_env *e)
{
	mdb_txn_abort(e->txn);
	e->txn = NULL;
	e->gen++;
}

static size_t logrec_size(const struct pfs_map *m, uint32_t op)
{
	return sizeof(struct logrec) + (op == OP_PUT ? (m->vsize + 7) / 8 * 8 : 0);
}

/* One change in the current transaction; returns LMDB's code. */
static int lm_apply(struct pfs_map *m, uint32_t op, uint64_t key, const void *val,
		    unsigned flags)
{
	MDB_txn *txn = m->env->txn;
	uint8_t kb[8];
	MDB_val k = { 8, kb }, v = { m->vsize, (void *)val };

	st_be64(kb, key);
	switch (op) {
	case OP_OPEN:
		return mdb_dbi_open(txn, m->name, MDB_CREATE, &m->dbi);
	case OP_PUT:
		return mdb_put(txn, m->dbi, &k, &v, flags);
	default:
		return mdb_del(txn, m->dbi, &k, NULL);
	}
}

/* Begin a transaction and redo the log in it (L1). Breaks on failure. */
static int lm_redo(struct pfs_map_env *e)
{
	int rc;

	if (e->err)
		return e->err;
	rc = lm_begin(e);
	for (size_t off = 0; !rc && off < e->log_len;) {
		const struct logrec *r = (const void *)(e->log + off);

		rc = lm_err(lm_apply(r->m, r->op, r->key, r + 1, r->flags));
		off += logrec_size(r->m, r->op);
	}
	return rc ? env_break(e, rc) : 0;
}

/*
 * Commit, and begin the next transaction. If the commit fails the
 * transaction is redone from the log (L2): -ENOSPC or the error then
 * means nothing is committed, and nothing lost.
 */
static int lm_commit(struct pfs_map_env *e)
{
	for (int tries = 0;; tries++) {
		int rc = mdb_txn_commit(e->txn), ret;

		e->txn = NULL;
		e->gen++;
		if (!rc) {
			e->log_len = 0;
			e->log_n = 0;
			rc = lm_begin(e);
			return rc ? env_break(e, rc) : 0;
		}
		ret = rc == MDB_MAP_FULL && tries < 8 ? lm_grow(e) : lm_err(rc);
		rc = lm_redo(e);
		if (rc)
			return rc;
		if (ret)
			return ret;
	}
}

/*
 * The transaction failed with LMDB code why: throw it away and redo the
 * log (L2), growing the map first if it was full, committing after if the
 * transaction was. Returns 0 if the failed call may be tried again.
 */
static int lm_restart(struct pfs_map_env *e, int why)
{
	int ret, rc;

	lm_abort(e);
	if (why == MDB_MAP_FULL)
		ret = lm_grow(e);
	else if (why == MDB_TXN_FULL)
		ret = 0;
	else
		ret = lm_err(why);
	rc = lm_redo(e);
	if (rc)
		return rc;
	if (!ret && why == MDB_TXN_FULL)
		ret = lm_commit(e);
	return ret;
}

/* Make one change (OP_OPEN, OP_PUT, OP_DEL) and log it. */
static int lm_change(struct pfs_map *m, int op, uint64_t key, const void *val,
		     unsigned flags)
{
	struct pfs_map_env *e = m->env;
	struct logrec *r;
	MDB_stat st;
	int rc;

	if (e->log_n >= PFS_MAP_LOG_RECS ||
	    e->log_len + LOGREC_MAX > PFS_MAP_LOG_BYTES) {
		rc = lm_commit(e);
		if (rc)
			return rc;
	}
	for (int tries = 0;; tries++) {
		rc = lm_apply(m, (uint32_t)op, key, val, flags);
		if (!rc)
			break;
		if (rc == MDB_NOTFOUND && op == OP_DEL)
			return -ENOENT;		/* the transaction is fine */
		rc = lm_restart(e, rc);
		if (rc)
			return rc;
		if (tries == 8)
			return -EIO;
	}
	r = (struct logrec *)(e->log + e->log_len);
	r->m = m;
	r->key = key;
	r->op = (uint32_t)op;
	r->flags = flags;
	if (op == OP_PUT)
		memcpy(r + 1, val, m->vsize);
	e->log_len += logrec_size(m, (uint32_t)op);
	e->log_n++;
	if (op == OP_OPEN)
		return 0;
	rc = mdb_stat(e->txn, m->dbi, &st);
	if (rc)
		return lm_err(rc);
	m->count = st.ms_entries;
	return 0;
}

static int lm_get(struct pfs_map *m, uint64_t key, void *val)
{
	uint8_t kb[8];
	MDB_val k = { 8, kb }, v;
	int rc;

	st_be64(kb, key);
	rc = mdb_get(m->env->txn, m->dbi, &k, &v);
	if (rc)
		return lm_err(rc);
	if (v.mv_size != m->vsize)
		return -EIO;
	memcpy(val, v.mv_data, m->vsize);
	return 0;
}

/* Records of m with key >= from, in order. */
static int lm_iterate(struct pfs_map *m, uint64_t from, pfs_map_fn fn, void *arg)
{
	struct pfs_map_env *e = m->env;
	uint64_t buf[PFS_MAP_VSIZE_MAX / 8], key, gen = 0;
	MDB_cursor *c = NULL;
	MDB_val k, v;
	uint8_t kb[8];
	int rc;

	for (;;) {
		if (c && gen == e->gen) {
			rc = mdb_cursor_get(c, &k, &v, MDB_NEXT);
		} else {
			/* The first time, or fn ended the transaction (L4). */
			if (e->err)
				return e->err;
			rc = mdb_cursor_open(e->txn, m->dbi, &c);
			if (rc)
				return lm_err(rc);
			gen = e->gen;
			st_be64(kb, from);
			k.mv_size = 8;
			k.mv_data = kb;
			rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
		}
		if (rc) {
			rc = rc == MDB_NOTFOUND ? 0 : lm_err(rc);
			break;
		}
		if (k.mv_size != 8 || v.mv_size != m->vsize) {
			rc = -EIO;
			break;
		}
		key = ld_be64(k.mv_data);
		memcpy(buf, v.mv_data, m->vsize);
		rc = fn(arg, key, buf);
		if (rc || key == UINT64_MAX)
			break;
		from = key + 1;
	}
	if (gen == e->gen)
		mdb_cursor_close(c);
	return rc;
}

static int lm_open(struct pfs_map_env *e, const char *dir)
{
	static const char tmpl[] = "/pfs-map-XXXXXX";
	size_t len = strlen(dir);
	char *path = malloc(len + sizeof(tmpl));
	int fd, rc;

	if (!path)
		return -ENOMEM;
	memcpy(path, dir, len);
	memcpy(path + len, tmpl, sizeof(tmpl));
	fd = mkstemp(path);
	if (fd < 0) {
		rc = -errno;
		free(path);
		return rc;
	}
	close(fd);
	/* An empty file is a new environment to LMDB. */
	rc = mdb_env_create(&e->mdb);
	if (rc) {
		e->mdb = NULL;
	} else {
		rc = mdb_env_set_maxdbs(e->mdb, PFS_MAP_MAX_MAPS);
		if (!rc)
			rc = mdb_env_set_mapsize(e->mdb, PFS_MAP_LMDB_MIN);
		if (!rc)
			rc = mdb_env_open(e->mdb, path, LM_FLAGS, 0600);
		if (!rc)
			rc = mdb_env_get_fd(e->mdb, &e->fd);
	}
	unlink(path);
	free(path);
	rc = lm_err(rc);
	if (!rc) {
		e->mapsize = PFS_MAP_LMDB_MIN;
		rc = lm_reserve(e, e->mapsize);
	}
	if (rc && e->mdb) {
		mdb_env_close(e->mdb);
		e->mdb = NULL;
	}
	return rc;
}

/* Pack the used slots to the front, sort them, append them to LMDB. */
static int mem_to_lmdb(struct pfs_map *m)
{
	size_t n = 0;
	int rc = 0;

	for (size_t i = 0; i < m->cap; i++) {
		if (!slot_used(m, i))
			continue;
		if (n != i)
			memcpy(slot_at(m, n), slot_at(m, i), m->stride);
		n++;
	}
	sort_recs(m->slots, n, m->stride);
	for (size_t i = 0; i < n && !rc; i++) {
		const uint8_t *p = slot_at(m, i);

		rc = lm_change(m, OP_PUT, key_at(p), p + 8, MDB_APPEND);
	}
	mem_free(m);
	return rc;
}

/*
 * Move every map to LMDB. Until the tables are taken apart a failure
 * changes nothing (the maps stay in memory); after, it breaks the env.
 */
static int env_move(struct pfs_map_env *e)
{
	uint64_t need = PFS_MAP_LMDB_MIN;
	size_t size = e->mapsize;
	struct pfs_map *m;
	int rc;

	/* Appended pages are full: ~20 + vsize bytes a record, and room. */
	for (m = e->maps; m; m = m->next)
		need += m->count * (20 + m->vsize) / 4 * 5;
	while (size < need) {
		if (size > SIZE_MAX / 2)
			return -ENOSPC;
		size *= 2;
	}
	if (size > e->mapsize) {
		rc = lm_resize(e, size);
		if (rc)
			return rc;
	}
	if (!e->log) {
		e->log = malloc(PFS_MAP_LOG_BYTES);
		if (!e->log)
			return -ENOMEM;
	}
	rc = lm_begin(e);
	if (rc)
		return rc;
	for (m = e->maps; m; m = m->next) {
		rc = lm_change(m, OP_OPEN, 0, NULL, 0);
		if (rc) {
			if (e->err)
				return e->err;
			lm_abort(e);
			e->log_len = 0;
			e->log_n = 0;
			return rc;
		}
	}
	e->on_disk = true;
	for (m = e->maps; m; m = m->next) {
		rc = mem_to_lmdb(m);
		if (rc)
			return env_break(e, rc);
	}
	return 0;
}

/* ---- the interface ------------------------------------------------------ */

int pfs_map_env_create(const struct pfs_map_opts *o, struct pfs_map_env **ep)
{
	struct pfs_map_env *e;
	int rc;

	*ep = NULL;
	if (o && o->scratch_dir && !o->scratch_dir[0])
		return -EINVAL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->tail = &e->maps;
	e->fd = -1;
	if (o && o->scratch_dir && o->mem_limit) {
		e->mem_limit = o->mem_limit;
		rc = lm_open(e, o->scratch_dir);
		if (rc) {
			free(e);
			return rc;
		}
	}
	*ep = e;
	return 0;
}

void pfs_map_env_destroy(struct pfs_map_env *e)
{
	struct pfs_map *m, *next;

	if (!e)
		return;
	if (e->txn)
		mdb_txn_abort(e->txn);
	if (e->mdb)
		mdb_env_close(e->mdb);
	for (m = e->maps; m; m = next) {
		next = m->next;
		free(m->used);
		free(m);
	}
	free(e->log);
	free(e);
}

int pfs_map_create(struct pfs_map_env *e, const char *name, size_t vsize,
		   struct pfs_map **mp)
{
	size_t len = name ? strnlen(name, PFS_MAP_NAME_MAX + 1) : 0;
	struct pfs_map *m;
	int rc;

	*mp = NULL;
	if (!len || len > PFS_MAP_NAME_MAX || !vsize || vsize > PFS_MAP_VSIZE_MAX)
		return -EINVAL;
	if (e->err)
		return e->err;
	for (m = e->maps; m; m = m->next)
		if (!strcmp(m->name, name))
			return -EEXIST;
	if (e->nmaps == PFS_MAP_MAX_MAPS)
		return -EMFILE;
	m = calloc(1, sizeof(*m));
	if (!m)
		return -ENOMEM;
	m->env = e;
	m->vsize = vsize;
	m->stride = 8 + vsize;
	memcpy(m->name, name, len + 1);
	if (e->on_disk) {
		rc = lm_change(m, OP_OPEN, 0, NULL, 0);
		if (rc) {
			free(m);
			return rc;
		}
	}
	*e->tail = m;
	e->tail = &m->next;
	e->nmaps++;
	*mp = m;
	return 0;
}

int pfs_map_get(struct pfs_map *m, uint64_t key, void *val)
{
	bool found = false;
	size_t i = 0;

	if (m->env->err)
		return m->env->err;
	if (m->env->on_disk)
		return lm_get(m, key, val);
	if (m->cap)
		i = mem_find(m, key, &found);
	if (!found)
		return -ENOENT;
	memcpy(val, slot_at(m, i) + 8, m->vsize);
	return 0;
}

int pfs_map_put(struct pfs_map *m, uint64_t key, const void *val)
{
	if (m->env->err)
		return m->env->err;
	if (m->iterating)
		return -EBUSY;
	if (m->env->on_disk)
		return lm_change(m, OP_PUT, key, val, 0);
	return mem_put(m, key, val);
}

int pfs_map_del(struct pfs_map *m, uint64_t key)
{
	if (m->env->err)
		return m->env->err;
	if (m->iterating)
		return -EBUSY;
	if (m->env->on_disk)
		return lm_change(m, OP_DEL, key, NULL, 0);
	return mem_del(m, key);
}

uint64_t pfs_map_count(const struct pfs_map *m)
{
	return m->count;
}

int pfs_map_iterate(struct pfs_map *m, pfs_map_fn fn, void *arg)
{
	int rc;

	if (m->env->err)
		return m->env->err;
	m->iterating++;
	rc = m->env->on_disk ? lm_iterate(m, 0, fn, arg) : mem_iterate(m, fn, arg);
	m->iterating--;
	return rc;
}

bool pfs_map_on_disk(const struct pfs_map *m)
{
	return m->env->on_disk;
}
