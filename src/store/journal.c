/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The journal: transactions over cached blocks, group commit into the
 * shards' WALs, checkpoints and replay (the PoseidonStore I/O procedure).
 *
 * A transaction locks its shards, reads and changes blocks in their caches
 * (keeping a before-image of each block the first time it is dirtied, so
 * that abort restores it), and at commit seals the blocks (LSN = txid,
 * crc32c) and lists them in the shard's open group. The group becomes one
 * WAL record holding the full image of every block it changed and the
 * shard's header state; the record is written and flushed by whichever
 * committer waits first (group commit), while others keep applying into
 * the next group. Changed blocks stay dirty in the cache, pinned, until a
 * checkpoint writes them home and advances the WAL tails.
 *
 * Invariants (cited as W1..W7 in the code):
 *   W1. The records of a WAL are contiguous: record k+1 starts where k
 *       ended (or at block 0 after a PAD record) and has LSN k + 1; replay
 *       stops at the first record that is not exactly the expected one.
 *   W2. A transaction is reported durable only once its record, every
 *       record before it in its WAL, and any data it wrote out of place
 *       (flushed before the record is written) are on stable storage.
 *   W3. Records hold full block images, so replay, which applies every
 *       record from the tails in transaction-id order, rebuilds any home
 *       block that a crash tore, whatever the device's atomic write unit:
 *       the torn-write invariant of ARCHITECTURE.md.
 *   W4. A block freed by a transaction is not reused before the next
 *       checkpoint completes, so no record still in a WAL can hold an image
 *       of a block that now holds something else. Nor is it discarded
 *       before then (trim.c, D2 and D3).
 *   W5. A WAL tail advances only after every block changed by the records
 *       before it is home and flushed.
 *   W6. A cross-shard transaction goes to the global WAL, and only after
 *       the open groups of its shards are durable, so that replay in
 *       transaction-id order sees every shard's changes in commit order.
 *   W7. A transaction is accepted only if its record fits in the WAL with
 *       what is already there; otherwise it is rolled back with -EAGAIN
 *       and the caller checkpoints and retries: a full WAL forces a
 *       checkpoint, never a lost record or a deadlock.
 *   W8. A record holds at most POSFS_WAL_MAX_ENTRIES entries (the count on
 *       the device is 16 bits): an open group half way there is sealed
 *       when the next transaction begins, and a transaction that would
 *       take a group past it is refused as W7 refuses one too large for
 *       the WAL. Replay refuses a record whose entries do not end exactly
 *       where its size says.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "posfs/crc32c.h"
#include "format/endian.h"
#include "plant.h"
#include "store/blockops.h"
#include "store/store_internal.h"

enum txb_state { TXB_READ, TXB_DIRTY, TXB_NEW, TXB_RELEASED };

struct pfs_txb {
	struct pfs_buf *buf;
	struct pfs_shard *sh;
	uint8_t *before;		/* image before this tx dirtied it */
	uint32_t before_flags;
	uint32_t refs;			/* references the tree code holds */
	enum txb_state state;
	bool raw;
#ifdef POSFS_DEBUG
	uint8_t *shadow;		/* T1: the bytes as this tx first read them */
#endif
};

#define TX_MAX_SHARDS 8

struct pfs_tx {
	struct pfs_store *st;
	uint64_t txid;
	unsigned nshards;
	struct pfs_shard *shards[TX_MAX_SHARDS];
	struct pfs_shard_hdr saved[TX_MAX_SHARDS];	/* for abort */
	struct pfs_txb *b;
	size_t nb, capb;
	struct pfs_space_change *sp;
	size_t nsp, capsp;
	bool data_written;
	bool read_only;			/* pfs_tx_begin_read: looks, never changes */
	bool in_space;			/* pfs_space_apply: may use the reserve */
	bool reserve;			/* gives space back: may use meta_reserve */
	int64_t xdev_shard;		/* a shard it needed but did not lock, or -1 */
};

void pfs_tx_set_reserve(struct pfs_tx *tx)
{
	tx->reserve = true;
}

void pfs_tx_set_xdev(struct pfs_tx *tx, uint32_t shard)
{
	tx->xdev_shard = shard;
}

int64_t pfs_tx_xdev(const struct pfs_tx *tx)
{
	return tx->xdev_shard;
}

/*
 * The space of every shard is kept back in three layers, from the bottom:
 *
 *   SPACE_RESERVE  16 blocks for the free-space tree itself: only its
 *                  updates at commit (pfs_space_apply) may take them, so
 *                  that they always find the nodes they need.
 *   meta_reserve   64 blocks (a sixteenth of the data area of a shard
 *                  smaller than 1024 blocks) for the metadata of
 *                  transactions that give space back (PFS_SUBMIT_RESERVE:
 *                  unlink, rmdir, truncate down, punch, the orphan list).
 *                  An unlink needs a few tree blocks before it frees
 *                  anything (an orphan record may take a new omap block),
 *                  so removal works on a full shard; a step of it takes at
 *                  most a tree height of blocks per tree it changes, far
 *                  less than this, and a step that needs more is cut
 *                  smaller (fs.c: pfs_fs_remove_steps).
 *   data room      about 0.4% of the shard, at least 64 blocks, that data
 *                  leaves to ordinary metadata: when a shard's data is
 *                  full its objects can still be created and renamed, and
 *                  large writes go on in the other shards (objop.c:
 *                  spill_shard).
 *
 * An allocation that would go below its layer's floor fails with -ENOSPC
 * before it changes anything: ordinary metadata stops at meta_reserve +
 * SPACE_RESERVE, data at pfs_shard_data_reserve(), and the metadata of a
 * reserve transaction at SPACE_RESERVE (its data, a partial block
 * rewritten, at the ordinary metadata floor). statfs counts only what
 * data can take as available (pfs_store_statfs).
 */
#define SPACE_RESERVE 16u
#define META_RESERVE 64u

static uint64_t meta_reserve(const struct pfs_shard *sh)
{
	uint64_t small = sh->geo.data_blocks / 16;

	return small < META_RESERVE ? small : META_RESERVE;
}

/* The floor of ordinary metadata allocations. */
static uint64_t meta_floor(const struct pfs_shard *sh)
{
	return SPACE_RESERVE + meta_reserve(sh);
}

uint64_t pfs_shard_data_reserve(const struct pfs_shard *sh)
{
	uint64_t room = sh->geo.data_blocks / 256;

	return meta_floor(sh) + (room > 64 ? room : 64);
}

/* -ENOSPC when n blocks would leave the shard fewer than floor free. */
static int floor_check(const struct pfs_tx *tx, struct pfs_shard *sh, uint64_t n,
		       uint64_t floor)
{
	if (tx->in_space)
		return 0;
	return pfs_alloc_free_blocks(&sh->alloc) < n + floor ? -ENOSPC : 0;
}

static int reserve_check(const struct pfs_tx *tx, struct pfs_shard *sh, uint64_t n)
{
	return floor_check(tx, sh, n, tx->reserve ? SPACE_RESERVE : meta_floor(sh));
}

static uint64_t data_floor(const struct pfs_tx *tx, const struct pfs_shard *sh)
{
	return tx->reserve ? meta_floor(sh) : pfs_shard_data_reserve(sh);
}

static int data_reserve_check(const struct pfs_tx *tx, struct pfs_shard *sh, uint64_t n)
{
	return floor_check(tx, sh, n, data_floor(tx, sh));
}

/* ---- small helpers ------------------------------------------------------ */

static uint32_t bsize(const struct pfs_store *st)
{
	return st->sb.block_size;
}

struct pfs_shard *pfs_store_block_shard(struct pfs_store *st, uint64_t blkno)
{
	int i = pfs_geo_block_shard(&st->sb, blkno);

	return i < 0 ? NULL : &st->shards[i];
}

struct pfs_shard *pfs_store_cached_shard(struct pfs_store *st, uint64_t blkno)
{
	int i = pfs_geo_block_shard(&st->sb, blkno);

	if (i < 0)
		i = pfs_geo_csum_shard(&st->sb, blkno);
	return i < 0 ? NULL : &st->shards[i];
}

uint8_t *pfs_buf_data(struct pfs_buf *b)
{
	return b->data;
}

uint64_t pfs_buf_blkno(const struct pfs_buf *b)
{
	return b->blkno;
}

uint32_t pfs_tx_block_size(const struct pfs_tx *tx)
{
	return tx->st->sb.block_size;
}

uint64_t pfs_tx_id(const struct pfs_tx *tx)
{
	return tx->txid;
}

struct pfs_store *pfs_tx_store(struct pfs_tx *tx)
{
	return tx->st;
}

void pfs_tx_note_data(struct pfs_tx *tx)
{
	tx->data_written = true;
}

bool pfs_tx_has_shard(const struct pfs_tx *tx, uint32_t shard)
{
	for (unsigned i = 0; i < tx->nshards; i++)
		if (tx->shards[i]->index == shard)
			return true;
	return false;
}

struct pfs_shard *pfs_tx_shard(struct pfs_tx *tx, uint32_t shard)
{
	for (unsigned i = 0; i < tx->nshards; i++)
		if (tx->shards[i]->index == shard)
			return tx->shards[i];
	return NULL;
}

size_t pfs_tx_space_count(const struct pfs_tx *tx)
{
	return tx->nsp;
}

const struct pfs_space_change *pfs_tx_space_at(const struct pfs_tx *tx, size_t i)
{
	return &tx->sp[i];
}

static struct pfs_txb *txb_find(struct pfs_tx *tx, const struct pfs_buf *b)
{
	return b->txb && b->txb >= tx->b && b->txb < tx->b + tx->nb ? b->txb : NULL;
}

static struct pfs_txb *txb_add(struct pfs_tx *tx, struct pfs_shard *sh, struct pfs_buf *b)
{
	struct pfs_txb *t;

	if (tx->nb == tx->capb) {
		size_t cap = tx->capb ? tx->capb * 2 : 16;
		struct pfs_txb *nb = realloc(tx->b, cap * sizeof(*nb));

		if (!nb)
			return NULL;
		/* buffers point at their entries: move the pointers along */
		for (size_t i = 0; i < tx->nb; i++)
			nb[i].buf->txb = &nb[i];
		tx->b = nb;
		tx->capb = cap;
	}
	t = &tx->b[tx->nb++];
	memset(t, 0, sizeof(*t));
	t->buf = b;
	t->sh = sh;
	t->state = TXB_READ;
	b->txb = t;
	return t;
}

/*
 * T1 (tx.h) in a debug build (configure --enable-debug): every block a
 * transaction reads is copied, and a block whose bytes changed before its
 * pfs_tx_dirty, or without one by the commit or the abort, stops the
 * program with the block named: the change would reach the device
 * without a WAL record, or survive an abort.
 */
#ifdef POSFS_DEBUG
static void t1_note(struct pfs_tx *tx, struct pfs_txb *t)
{
	t->shadow = malloc(bsize(tx->st));
	if (t->shadow)
		memcpy(t->shadow, t->buf->data, bsize(tx->st));
}

static void t1_check(struct pfs_tx *tx, struct pfs_txb *t, const char *how)
{
	if (t->shadow && memcmp(t->shadow, t->buf->data, bsize(tx->st))) {
		fprintf(stderr, "posfs: T1 broken: block %llu (magic 0x%08x) changed %s\n",
			(unsigned long long)t->buf->blkno,
			le32_get(((const struct pfs_dblock_hdr *)t->shadow)->magic), how);
		abort();
	}
}

static void t1_forget(struct pfs_txb *t)
{
	free(t->shadow);
	t->shadow = NULL;
}
#else
static inline void t1_note(struct pfs_tx *tx, struct pfs_txb *t) { (void)tx; (void)t; }
static inline void t1_check(struct pfs_tx *tx, struct pfs_txb *t, const char *how)
{
	(void)tx;
	(void)t;
	(void)how;
}
static inline void t1_forget(struct pfs_txb *t) { (void)t; }
#endif

static int space_note(struct pfs_tx *tx, uint32_t shard, uint64_t start, uint64_t len,
		      bool is_free)
{
	if (tx->nsp == tx->capsp) {
		size_t cap = tx->capsp ? tx->capsp * 2 : 8;
		struct pfs_space_change *n = realloc(tx->sp, cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		tx->sp = n;
		tx->capsp = cap;
	}
	tx->sp[tx->nsp++] = (struct pfs_space_change){ shard, start, len, is_free, false };
	return 0;
}

int pfs_tx_space_tree_free(struct pfs_tx *tx, uint32_t shard, uint64_t start, uint64_t len)
{
	int ret = space_note(tx, shard, start, len, true);

	if (!ret)
		tx->sp[tx->nsp - 1].tree_only = true;
	return ret;
}

/* ---- begin -------------------------------------------------------------- */

static void tx_unlock(struct pfs_tx *tx);
static int groups_flush_locked(struct pfs_store *st, struct pfs_shard *sh);

static int group_seal(struct pfs_store *st, struct pfs_shard *sh, uint64_t *seq);

static uint64_t mono_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* Take a shard's lock, counting the waits (pfs_store_counters): the
 * clock is read only when the lock is taken already. */
static void shard_lock(struct pfs_store *st, struct pfs_shard *sh)
{
	uint64_t t0;

	if (!pthread_mutex_trylock(&sh->lock))
		return;
	t0 = mono_ns();
	pthread_mutex_lock(&sh->lock);
	__atomic_add_fetch(&st->stat_lock_waits, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&st->stat_lock_wait_ns, mono_ns() - t0, __ATOMIC_RELAXED);
}

/* The checkpoint lock for a transaction: a wait here is a checkpoint's
 * stop of every shard. */
static void ckpt_enter(struct pfs_store *st)
{
	uint64_t t0;

	if (!pthread_rwlock_tryrdlock(&st->ckpt_lock))
		return;
	t0 = mono_ns();
	pthread_rwlock_rdlock(&st->ckpt_lock);
	__atomic_add_fetch(&st->stat_ckpt_waits, 1, __ATOMIC_RELAXED);
	__atomic_add_fetch(&st->stat_ckpt_wait_ns, mono_ns() - t0, __ATOMIC_RELAXED);
}

static int tx_start(struct pfs_store *st, const uint32_t *shards, unsigned n, bool ro,
		    struct pfs_tx **txp)
{
	struct pfs_tx *tx;

	*txp = NULL;
	if (!n || n > TX_MAX_SHARDS)
		return -EINVAL;
	if (!ro && st->readonly)
		return -EROFS;
	if (!ro && st->err)
		return st->err;
	tx = calloc(1, sizeof(*tx));
	if (!tx)
		return -ENOMEM;
	tx->st = st;
	tx->read_only = ro;
	tx->xdev_shard = -1;
	ckpt_enter(st);
	/* read under ckpt_lock: pfs_store_set_readonly changes it under the
	 * lock for writing, so no change starts once it has */
	if (!ro && __atomic_load_n(&st->remount_ro, __ATOMIC_ACQUIRE)) {
		pthread_rwlock_unlock(&st->ckpt_lock);
		free(tx);
		return -EROFS;
	}
	for (unsigned i = 0; i < n; i++) {
		if (shards[i] >= st->nshards || (i && shards[i] <= shards[i - 1])) {
			for (unsigned j = 0; j < tx->nshards; j++)
				pthread_mutex_unlock(&tx->shards[j]->lock);
			pthread_rwlock_unlock(&st->ckpt_lock);
			free(tx);
			return -EINVAL;
		}
		tx->shards[i] = &st->shards[shards[i]];
		shard_lock(st, tx->shards[i]);
		tx->saved[i] = tx->shards[i]->hdr;
		tx->nshards++;
	}
	if (n > 1) {
		pthread_mutex_lock(&st->global_lock);
		/*
		 * W6: the shards' open groups go to their WALs before this
		 * transaction changes anything, so that no shard record can
		 * carry a block or a header state half way through it.
		 */
		if (!ro) {
			int ret = 0;

			for (unsigned i = 0; !ret && i < n; i++)
				ret = groups_flush_locked(st, tx->shards[i]);
			if (ret) {
				tx_unlock(tx);
				free(tx);
				return ret;
			}
		}
	}
	/*
	 * W8: a group half way to the most entries a record holds is sealed
	 * now, before this transaction changes a block of it (the record
	 * goes out with the next write); one that would still outgrow it
	 * meets W7's refusal at commit.
	 */
	if (n == 1 && !ro && tx->shards[0]->group.nblocks >= POSFS_WAL_MAX_ENTRIES / 2) {
		uint64_t seq;
		int ret = group_seal(st, tx->shards[0], &seq);

		if (ret) {
			tx_unlock(tx);
			free(tx);
			return ret;
		}
	}
	/* Under the shard locks: ids follow the commit order of every shard. */
	if (!ro)
		tx->txid = __atomic_fetch_add(&st->next_txid, 1, __ATOMIC_SEQ_CST);
	*txp = tx;
	return 0;
}

int pfs_tx_begin(struct pfs_store *st, const uint32_t *shards, unsigned n,
		 struct pfs_tx **txp)
{
	return tx_start(st, shards, n, false, txp);
}

int pfs_tx_begin_read(struct pfs_store *st, const uint32_t *shards, unsigned n,
		      struct pfs_tx **txp)
{
	return tx_start(st, shards, n, true, txp);
}

/* ---- tx.h: blocks ------------------------------------------------------- */

static int tx_buf(struct pfs_tx *tx, uint64_t blkno, bool read, struct pfs_shard **shp,
		  struct pfs_buf **bp, struct pfs_txb **tp)
{
	struct pfs_shard *sh = pfs_store_cached_shard(tx->st, blkno);
	struct pfs_buf *b;
	struct pfs_txb *t;
	int ret;

	if (!sh)
		return -EUCLEAN;	/* a pointer out of every shard */
	if (!pfs_tx_has_shard(tx, sh->index)) {
		tx->xdev_shard = sh->index;	/* the caller may retry with it */
		return -EXDEV;
	}
	ret = pfs_bcache_get(&sh->cache, blkno, read, &b);
	if (ret)
		return ret;
	t = txb_find(tx, b);
	if (t) {
		pfs_bcache_put(b);	/* the tx holds one reference already */
		if (t->state == TXB_RELEASED)
			return -EUCLEAN;
	} else {
		t = txb_add(tx, sh, b);
		if (!t) {
			pfs_bcache_put(b);
			return -ENOMEM;
		}
		if (read)
			t1_note(tx, t);
	}
	*shp = sh;
	*bp = t->buf;
	*tp = t;
	return 0;
}

int pfs_tx_get(struct pfs_tx *tx, uint64_t blkno, const struct pfs_block_expect *exp,
	       struct pfs_buf **bp)
{
	struct pfs_block_expect e = *exp;
	struct pfs_shard *sh;
	struct pfs_buf *b;
	struct pfs_txb *t;
	int ret;

	*bp = NULL;
	ret = tx_buf(tx, blkno, true, &sh, &b, &t);
	if (ret == -EUCLEAN)	/* a pointer out of every shard */
		pfs_store_damage_block(tx->st, e.magic, e.check_owner ? e.owner : 0, 0);
	if (ret)
		return ret;
	if (!e.size)
		e.size = bsize(tx->st);
	if (!e.uuid)
		e.uuid = tx->st->sb.uuid;
	e.blkno = blkno;
	e.check_blkno = true;
	/* every change carries a transaction id handed out already */
	e.max_lsn = __atomic_load_n(&tx->st->next_txid, __ATOMIC_RELAXED);
	if ((b->flags & PFS_BUF_VERIFIED) || t->state != TXB_READ) {
		/* verified once; the type and owner must still be what this
		 * reader expects (two trees must never share a block) */
		struct pfs_blockhdr h;

		pfs_block_hdr_decode(b->data, &h);
		if ((e.magic && h.magic != e.magic) || (e.check_owner && h.owner != e.owner) ||
		    (b->flags & PFS_BUF_RAW)) {
			pfs_store_damage_block(tx->st, e.magic, e.check_owner ? e.owner : 0,
					       blkno);
			return -EUCLEAN;
		}
	} else {
		struct pfs_blockhdr h;

		ret = pfs_block_verify(b->data, bsize(tx->st), &e, &h);
		if (!ret && tx->st->free0_taken)
			ret = pfs_verify_block(tx->st, b->data, &h);	/* V3 */
		if (!ret && pfs_block_ops_verify(bsize(tx->st), b->data, &h)) {	/* BV1 */
			/* a tree of one object: that object is damaged, not the store */
			if (h.magic == POSFS_MAGIC_EXTENT || h.magic == POSFS_MAGIC_OMAP)
				ret = pfs_store_object_error(tx->st, h.owner,
							     pfs_block_ops_find(h.magic)->name);
			else
				ret = -EUCLEAN;
		}
		if (ret == -EUCLEAN || ret == -EBADMSG)
			pfs_store_damage_block(tx->st, e.magic, e.check_owner ? e.owner : 0,
					       blkno);
		if (ret)
			return ret;
		b->flags |= PFS_BUF_VERIFIED;
	}
	t->refs++;
	*bp = b;
	return 0;
}

int pfs_tx_get_raw(struct pfs_tx *tx, uint64_t blkno, struct pfs_buf **bp)
{
	struct pfs_shard *sh;
	struct pfs_buf *b;
	struct pfs_txb *t;
	int ret;

	*bp = NULL;
	ret = tx_buf(tx, blkno, true, &sh, &b, &t);
	if (ret)
		return ret;
	t->raw = true;
	t->refs++;
	*bp = b;
	return 0;
}

void pfs_buf_put(struct pfs_buf *b)
{
	if (b && b->txb && b->txb->refs)
		b->txb->refs--;
	/* the cache reference stays with the transaction until it ends */
}

static int before_save(struct pfs_tx *tx, struct pfs_txb *t)
{
	uint32_t bs = bsize(tx->st);

	t->before = malloc(bs);
	if (!t->before)
		return -ENOMEM;
	memcpy(t->before, t->buf->data, bs);
	t->before_flags = t->buf->flags;
	return 0;
}

/* The first change to t in this transaction keeps its before-image. */
static int txb_dirty(struct pfs_tx *tx, struct pfs_txb *t)
{
	int ret;

	if (t->state != TXB_READ)
		return 0;
	t1_check(tx, t, "before its pfs_tx_dirty");
	t1_forget(t);
	ret = before_save(tx, t);
	if (!ret)
		t->state = TXB_DIRTY;
	return ret;
}

int pfs_tx_dirty(struct pfs_tx *tx, struct pfs_buf *b)
{
	struct pfs_txb *t = txb_find(tx, b);

	if (tx->read_only)
		return -EROFS;
	if (!t || t->state == TXB_RELEASED)
		return -EINVAL;
	return txb_dirty(tx, t);
}

static int tx_new_block(struct pfs_tx *tx, uint32_t shard, bool raw, struct pfs_buf **bp)
{
	struct pfs_shard *sh = pfs_tx_shard(tx, shard);
	struct pfs_buf *b;
	struct pfs_txb *t;
	uint64_t blkno, got;
	int ret;

	if (!sh)
		return -EINVAL;
	if (tx->read_only)
		return -EROFS;
	ret = reserve_check(tx, sh, 1);
	if (ret)
		return ret;
	ret = pfs_alloc_best_fit(&sh->alloc, 1, 0, &blkno);
	if (ret)
		return ret;
	got = 1;
	ret = space_note(tx, shard, blkno, got, false);
	if (ret) {
		pfs_alloc_add_free(&sh->alloc, blkno, got);
		return ret;
	}
	ret = pfs_bcache_get(&sh->cache, blkno, false, &b);
	if (ret)
		return ret;	/* the allocation is undone at abort */
	t = txb_find(tx, b);
	if (!t)
		t = txb_add(tx, sh, b);
	else
		pfs_bcache_put(b);
	if (!t)
		return -ENOMEM;
	if (t->state != TXB_READ || t->refs) {
		/* the allocator gave out a block this tx holds: corrupt state */
		return -EUCLEAN;
	}
	ret = before_save(tx, t);
	if (ret)
		return ret;
	memset(b->data, 0, bsize(tx->st));
	b->flags = (b->flags & PFS_BUF_DIRTY) | PFS_BUF_VALID | PFS_BUF_NEW |
		   (raw ? PFS_BUF_RAW : PFS_BUF_VERIFIED);
	t->state = TXB_NEW;
	t->raw = raw;
	t->refs++;
	*bp = b;
	return 0;
}

int pfs_tx_new(struct pfs_tx *tx, uint32_t shard, uint32_t magic, uint64_t owner,
	       uint16_t level, struct pfs_buf **bp)
{
	struct pfs_blockhdr h = {
		.magic = magic,
		.size = bsize(tx->st),
		.level = level,
		.owner = owner,
	};
	int ret;

	*bp = NULL;
	ret = tx_new_block(tx, shard, false, bp);
	if (ret)
		return ret;
	h.blkno = (*bp)->blkno;
	memcpy(h.uuid, tx->st->sb.uuid, POSFS_UUID_SIZE);
	pfs_block_hdr_encode((*bp)->data, &h);
	return 0;
}

int pfs_tx_rewrite(struct pfs_tx *tx, uint64_t blkno, uint32_t magic, uint64_t owner,
		   uint16_t level, struct pfs_buf **bp)
{
	struct pfs_blockhdr h = {
		.magic = magic,
		.size = bsize(tx->st),
		.level = level,
		.blkno = blkno,
		.owner = owner,
	};
	struct pfs_shard *sh;
	struct pfs_buf *b;
	struct pfs_txb *t;
	int ret;

	*bp = NULL;
	if (tx->read_only)
		return -EROFS;
	if (pfs_geo_block_shard(&tx->st->sb, blkno) >= 0)
		return -EINVAL;
	/* not read: whatever the device holds is replaced */
	ret = tx_buf(tx, blkno, false, &sh, &b, &t);
	if (ret)
		return ret;
	ret = txb_dirty(tx, t);
	if (ret)
		return ret;
	memset(b->data, 0, bsize(tx->st));
	memcpy(h.uuid, tx->st->sb.uuid, POSFS_UUID_SIZE);
	pfs_block_hdr_encode(b->data, &h);
	/* valid now, verified once sealed at commit */
	b->flags = (b->flags & (PFS_BUF_DIRTY | PFS_BUF_NEW)) | PFS_BUF_VALID;
	t->raw = false;
	t->refs++;
	*bp = b;
	return 0;
}

int pfs_tx_new_raw(struct pfs_tx *tx, uint32_t shard, struct pfs_buf **bp)
{
	*bp = NULL;
	return tx_new_block(tx, shard, true, bp);
}

int pfs_tx_release(struct pfs_tx *tx, struct pfs_buf *b)
{
	struct pfs_txb *t = txb_find(tx, b);
	int ret;

	if (tx->read_only)
		return -EROFS;
	if (!t || t->state == TXB_RELEASED)
		return -EINVAL;
	if (t->refs)
		t->refs--;
	if (t->state == TXB_READ) {
		ret = before_save(tx, t);
		if (ret)
			return ret;
	}
	ret = space_note(tx, t->sh->index, b->blkno, 1, true);
	if (ret)
		return ret;
	t->state = TXB_RELEASED;
	return 0;
}

/* ---- tx: data blocks ---------------------------------------------------- */

int pfs_tx_alloc_data(struct pfs_tx *tx, uint32_t shard, uint64_t len, uint64_t hint,
		      bool contig, uint64_t *start, uint64_t *got)
{
	struct pfs_shard *sh = pfs_tx_shard(tx, shard);
	uint64_t room;
	int ret;

	if (!sh)
		return -EINVAL;
	ret = data_reserve_check(tx, sh, contig ? len : 1);
	if (ret)
		return ret;
	room = pfs_alloc_free_blocks(&sh->alloc) - data_floor(tx, sh);
	if (!contig && !tx->in_space && len > room)
		len = room;
	if (contig) {
		ret = pfs_alloc_best_fit(&sh->alloc, len, hint, start);
		*got = len;
	} else {
		ret = pfs_alloc_some(&sh->alloc, len, hint, start, got);
	}
	if (ret)
		return ret;
	ret = space_note(tx, shard, *start, *got, false);
	if (ret)
		pfs_alloc_add_free(&sh->alloc, *start, *got);
	return ret;
}

bool pfs_tx_space_short(struct pfs_tx *tx, uint32_t shard, uint64_t len)
{
	struct pfs_shard *sh = pfs_tx_shard(tx, shard);

	return sh && data_reserve_check(tx, sh, len) == -ENOSPC;
}

int pfs_tx_free_data(struct pfs_tx *tx, uint64_t start, uint64_t len)
{
	struct pfs_shard *sh = pfs_store_block_shard(tx->st, start);

	if (!sh || !len || pfs_store_block_shard(tx->st, start + len - 1) != sh)
		return -EUCLEAN;
	if (!pfs_tx_has_shard(tx, sh->index)) {
		tx->xdev_shard = sh->index;	/* the caller must lock it too */
		return -EXDEV;
	}
	/* Cached copies of those blocks (small writes) must not be written
	 * home over whatever reuses them: forget them at commit. */
	for (uint64_t b = start; b < start + len; b++) {
		struct pfs_buf *buf = pfs_bcache_find(&sh->cache, b);
		struct pfs_txb *t;

		if (!buf)
			continue;
		t = txb_find(tx, buf);
		if (t) {
			pfs_bcache_put(buf);
		} else {
			t = txb_add(tx, sh, buf);
			if (!t) {
				pfs_bcache_put(buf);
				return -ENOMEM;
			}
		}
		if (t->state == TXB_READ && before_save(tx, t))
			return -ENOMEM;
		t->state = TXB_RELEASED;
		t->raw = true;
	}
	return space_note(tx, sh->index, start, len, true);
}

int pfs_tx_data_block(struct pfs_tx *tx, uint64_t blkno, bool fresh, struct pfs_buf **bp)
{
	struct pfs_shard *sh;
	struct pfs_buf *b;
	struct pfs_txb *t;
	int ret;

	*bp = NULL;
	ret = tx_buf(tx, blkno, !fresh, &sh, &b, &t);
	if (ret)
		return ret;
	ret = txb_dirty(tx, t);
	if (ret)
		return ret;
	if (fresh) {
		memset(b->data, 0, bsize(tx->st));
		b->flags |= PFS_BUF_VALID;
	}
	b->flags |= PFS_BUF_RAW;
	b->flags &= ~PFS_BUF_VERIFIED;
	t->raw = true;
	t->refs++;
	*bp = b;
	return 0;
}

/* ---- abort -------------------------------------------------------------- */

void pfs_shard_publish_load(struct pfs_shard *sh)
{
	uint64_t free = pfs_alloc_free_blocks(&sh->alloc) + pfs_alloc_pending_blocks(&sh->alloc);

	__atomic_store_n(&sh->load_free, free, __ATOMIC_RELAXED);
	__atomic_store_n(&sh->load_objects, sh->hdr.onode_count, __ATOMIC_RELAXED);
}

static void tx_unlock(struct pfs_tx *tx)
{
	if (tx->nshards > 1)
		pthread_mutex_unlock(&tx->st->global_lock);
	for (unsigned i = tx->nshards; i-- > 0;) {
		if (!tx->read_only)
			pfs_shard_publish_load(tx->shards[i]);
		pthread_mutex_unlock(&tx->shards[i]->lock);
	}
	pthread_rwlock_unlock(&tx->st->ckpt_lock);
}

static void tx_free(struct pfs_tx *tx)
{
	for (size_t i = 0; i < tx->nb; i++) {
		free(tx->b[i].before);
		t1_forget(&tx->b[i]);
	}
	free(tx->b);
	free(tx->sp);
	free(tx);
}

void pfs_tx_abort(struct pfs_tx *tx)
{
	uint32_t bs = bsize(tx->st);

	if (!tx)
		return;
	for (size_t i = 0; i < tx->nb; i++)
		if (tx->b[i].state == TXB_READ)
			t1_check(tx, &tx->b[i], "without pfs_tx_dirty (at abort)");
	/* blocks back as they were */
	for (size_t i = tx->nb; i-- > 0;) {
		struct pfs_txb *t = &tx->b[i];
		struct pfs_buf *b = t->buf;

		if (t->before) {
			memcpy(b->data, t->before, bs);
			b->flags = t->before_flags;
		}
		b->txb = NULL;
		pfs_bcache_put(b);
	}
	/* allocations back to the allocators (frees were only noted) */
	for (size_t i = tx->nsp; i-- > 0;) {
		const struct pfs_space_change *c = &tx->sp[i];

		if (!c->is_free)
			pfs_alloc_add_free(&tx->st->shards[c->shard].alloc, c->start, c->len);
	}
	for (unsigned i = 0; i < tx->nshards; i++)
		tx->shards[i]->hdr = tx->saved[i];
	tx_unlock(tx);
	tx_free(tx);
}

/* ---- commit ------------------------------------------------------------- */

/* Bytes a record needs for these many block images plus a shard state. */
static uint64_t record_bytes(uint32_t bs, uint64_t nimages, uint64_t nstates)
{
	return sizeof(struct pfs_dwal_rec) +
	       (nimages + nstates) * (sizeof(struct pfs_dwal_entry) + bs);
}

static uint64_t bytes_to_blocks(uint64_t bytes, uint32_t bs)
{
	return (bytes + bs - 1) / bs;
}

/* Blocks free in a WAL for one more record of nblocks (+ a pad). */
static bool wal_fits(const struct pfs_wal *w, uint64_t nblocks)
{
	/* room for the record and for the pad that may precede it */
	return w->used + 2 * nblocks + 1 < w->nblocks;
}

static bool group_fits(struct pfs_shard *sh, uint32_t bs, uint64_t more_images)
{
	uint64_t images = sh->group.nblocks + more_images;

	return images + 1 <= POSFS_WAL_MAX_ENTRIES &&		/* W8 */
	       wal_fits(&sh->wal, bytes_to_blocks(record_bytes(bs, images, 1), bs));
}

/* Seal a block for logging: LSN and crc32c of a metadata block. */
static void block_seal(struct pfs_buf *b, bool raw, uint64_t txid)
{
	if (!raw) {
		struct pfs_dblock_hdr *h = (struct pfs_dblock_hdr *)b->data;

		h->lsn = le64_put(txid);
		pfs_block_seal(b->data);
		b->flags |= PFS_BUF_VERIFIED;
		b->flags &= ~PFS_BUF_RAW;
	} else {
		b->flags |= PFS_BUF_RAW;
		b->flags &= ~PFS_BUF_VERIFIED;
	}
}

static int tx_prepare(struct pfs_tx *tx)
{
	int ret;

	tx->in_space = true;
	ret = tx->st->space_loaded ? pfs_space_apply(tx) : 0;
	tx->in_space = false;

	if (ret)
		return ret;
	for (size_t i = 0; i < tx->nb; i++) {
		struct pfs_txb *t = &tx->b[i];

		if (t->refs)
			return -EPROTO;		/* a tree kept a reference (T3) */
		if (t->state == TXB_READ)
			t1_check(tx, t, "without pfs_tx_dirty (at commit)");
		if ((t->state == TXB_DIRTY || t->state == TXB_NEW) && !t->raw) {
			struct pfs_blockhdr h;

			pfs_block_hdr_decode(t->buf->data, &h);
			if (pfs_block_ops_verify(bsize(tx->st), t->buf->data, &h))
				return -EPROTO;	/* BV2: a tree left it malformed */
		}
		if (t->state == TXB_DIRTY || t->state == TXB_NEW)
			block_seal(t->buf, t->raw, tx->txid);
	}
	return 0;
}

/* After the images are safe: the blocks become dirty cache state. */
static void tx_finish_blocks(struct pfs_tx *tx, bool into_group)
{
	struct pfs_store *st = tx->st;

	for (size_t i = 0; i < tx->nb; i++) {
		struct pfs_txb *t = &tx->b[i];
		struct pfs_buf *b = t->buf;
		struct pfs_shard *sh = t->sh;

		b->txb = NULL;
		if (t->state == TXB_RELEASED) {
			if (b->group && b->group == sh->group.id) {
				*b->gpprev = b->gnext;		/* out of the group */
				if (b->gnext)
					b->gnext->gpprev = b->gpprev;
				b->gnext = NULL;
				b->gpprev = NULL;
				sh->group.nblocks--;
				b->group = 0;
			}
			pfs_bcache_forget(b);
			pfs_bcache_put(b);
			continue;
		}
		if (t->state != TXB_READ) {
			pfs_bcache_mark_dirty(b);
			if (into_group && b->group != sh->group.id) {
				b->group = sh->group.id;
				b->gnext = sh->group.blocks;
				if (b->gnext)
					b->gnext->gpprev = &b->gnext;
				sh->group.blocks = b;
				b->gpprev = &sh->group.blocks;
				sh->group.nblocks++;
			}
		}
		pfs_bcache_put(b);
	}
	/* W4: freed space is reusable only after the next checkpoint. */
	for (size_t i = 0; i < tx->nsp; i++) {
		const struct pfs_space_change *c = &tx->sp[i];

		if (c->is_free && !c->tree_only && st->space_loaded)
			pfs_alloc_defer(&st->shards[c->shard].alloc, c->start, c->len,
					st->ckpt_gen + 1);
	}
}

static int global_commit(struct pfs_tx *tx);

int pfs_tx_commit(struct pfs_tx *tx, struct pfs_durable *token)
{
	struct pfs_store *st = tx->st;
	struct pfs_shard *sh = tx->shards[0];
	uint32_t bs = bsize(st);
	uint64_t nimg = 0;
	int ret;

	ret = tx_prepare(tx);
	if (ret) {
		pfs_tx_abort(tx);
		return ret;
	}
	if (tx->nshards > 1) {
		ret = global_commit(tx);
		if (ret) {
			pfs_tx_abort(tx);
			return ret;
		}
		tx_finish_blocks(tx, false);
		token->shard = POSFS_SHARD_GLOBAL;
		token->group = 0;
		__atomic_add_fetch(&st->stat_cross_shard, 1, __ATOMIC_RELAXED);
		goto done;
	}
	for (size_t i = 0; i < tx->nb; i++)
		if ((tx->b[i].state == TXB_DIRTY || tx->b[i].state == TXB_NEW) &&
		    tx->b[i].buf->group != sh->group.id)
			nimg++;
	if (!group_fits(sh, bs, nimg)) {	/* W7, W8 */
		pfs_tx_abort(tx);
		return -EAGAIN;
	}
	tx_finish_blocks(tx, true);
	if (!sh->group.ntx++ || tx->txid < sh->group.min_txid)
		sh->group.min_txid = tx->txid;
	sh->group.state_dirty = true;
	if (tx->data_written)
		sh->group.preflush = true;
	if (tx->txid >= sh->hdr.next_txid)
		sh->hdr.next_txid = tx->txid + 1;
	token->shard = sh->index;
	token->group = sh->group.id;
done:
	__atomic_add_fetch(&st->stat_commits, 1, __ATOMIC_RELAXED);
	tx_unlock(tx);
	tx_free(tx);
	return 0;
}

/* ---- WAL records -------------------------------------------------------- */

static uint8_t *entry_put(uint8_t *p, uint16_t type, uint16_t flags, uint32_t len,
			  uint64_t a, uint64_t b)
{
	struct pfs_dwal_entry *e = (struct pfs_dwal_entry *)p;

	e->type = le16_put(type);
	e->flags = le16_put(flags);
	e->len = le32_put(len);
	e->a = le64_put(a);
	e->b = le64_put(b);
	return p + sizeof(*e);
}

static uint8_t *state_put(struct pfs_store *st, uint8_t *p, const struct pfs_shard_hdr *h,
			  uint32_t shard, uint64_t start_block)
{
	uint32_t bs = bsize(st);
	struct pfs_shard_hdr s = *h;

	s.slot = 0;
	p = entry_put(p, POSFS_WAL_SHARD_STATE, 0, bs, shard, 0);
	pfs_shard_hdr_to_disk(&st->sb, &s, start_block, p);
	return p + bs;
}

/*
 * Reserve the place of a record of size bytes in w (W1): a pad record first
 * when it does not fit before the WAL's end. Returns the sealed record
 * skeleton with buf holding room for pad + record; the caller fills the
 * record at rec_at(s).
 */
static struct pfs_wal_sealed *wal_reserve(struct pfs_wal *w, uint32_t bs, uint64_t bytes)
{
	uint32_t nblocks = (uint32_t)bytes_to_blocks(bytes, bs);
	struct pfs_wal_sealed *s = calloc(1, sizeof(*s));
	bool pad = w->head + nblocks > w->nblocks;

	if (!s)
		return NULL;
	s->buf = pfs_dev_buf_alloc(((size_t)nblocks + pad) * bs);
	if (!s->buf) {
		free(s);
		return NULL;
	}
	s->pad_at = pad ? w->head : UINT64_MAX;
	s->nblocks = nblocks;
	if (pad) {
		__atomic_add_fetch(&w->used, w->nblocks - w->head, __ATOMIC_RELAXED);
		w->head = 0;
	}
	s->at = w->head;
	return s;
}

static uint8_t *rec_at(struct pfs_wal_sealed *s, uint32_t bs)
{
	return s->buf + (s->pad_at != UINT64_MAX ? bs : 0);
}

/* Seal header(s) of the reserved record; advance the WAL head (W1). */
static void wal_seal(struct pfs_store *st, struct pfs_wal *w, struct pfs_wal_sealed *s,
		     uint32_t size, uint16_t nentries, uint64_t txid, uint32_t ntx)
{
	uint32_t bs = bsize(st);
	struct pfs_wal_rec r = {
		.owner = w->owner,
		.txid = txid,
		.ntx = ntx,
		.checkpoint_lsn = w->tail_lsn,
	};

	if (s->pad_at != UINT64_MAX) {
		r.lsn = w->next_lsn++;
		r.wal_block = s->pad_at;
		r.size = sizeof(struct pfs_dwal_rec);
		r.flags = POSFS_WAL_PAD;
		r.nblocks = w->nblocks - (uint32_t)s->pad_at;
		r.nentries = 0;
		memset(s->buf, 0, bs);
		pfs_wal_rec_seal(&r, st->sb.uuid, s->buf);
	}
	r.lsn = w->next_lsn++;
	r.wal_block = s->at;
	r.size = size;
	r.flags = 0;
	r.nblocks = s->nblocks;
	r.nentries = nentries;
	pfs_wal_rec_seal(&r, st->sb.uuid, rec_at(s, bs));
	w->head = s->at + s->nblocks;
	if (w->head == w->nblocks)
		w->head = 0;
	__atomic_add_fetch(&w->used, s->nblocks, __ATOMIC_RELAXED);
	s->seq = ++w->sealed_seq;
	/* queue in order */
	pthread_mutex_lock(&w->mutex);
	{
		struct pfs_wal_sealed **pp = &w->queue;

		while (*pp)
			pp = &(*pp)->next;
		*pp = s;
	}
	pthread_mutex_unlock(&w->mutex);
}

/* Seal the open group of sh into a record (shard lock held). Returns the
 * WAL sequence to wait for, 0 when the group was empty. */
static int group_seal(struct pfs_store *st, struct pfs_shard *sh, uint64_t *seq)
{
	struct pfs_group *g = &sh->group;
	uint32_t bs = bsize(st);
	struct pfs_wal_sealed *s;
	uint64_t bytes;
	uint8_t *p, *rec;
	uint16_t n = 0;

	*seq = 0;
	if (!g->ntx && !g->nblocks && !g->state_dirty)
		return 0;
	bytes = record_bytes(bs, g->nblocks, 1);
	s = wal_reserve(&sh->wal, bs, bytes);
	if (!s)
		return -ENOMEM;
	s->preflush = g->preflush;
	rec = rec_at(s, bs);
	memset(rec, 0, (size_t)s->nblocks * bs);
	p = rec + sizeof(struct pfs_dwal_rec);
	for (struct pfs_buf *b = g->blocks, *next; b; b = next) {
		bool raw = b->flags & PFS_BUF_RAW;

		next = b->gnext;
		b->gnext = NULL;
		b->gpprev = NULL;

		p = entry_put(p, POSFS_WAL_BLOCK_IMAGE, raw ? POSFS_WAL_ENTRY_RAW : 0, bs,
			      b->blkno, 0);
		memcpy(p, b->data, bs);
		p += bs;
		n++;
		b->group = 0;
	}
	p = state_put(st, p, &sh->hdr, sh->index, sh->geo.start_block);
	n++;
	wal_seal(st, &sh->wal, s, (uint32_t)(p - rec), n, g->min_txid ? g->min_txid : 1,
		 g->ntx);
	*seq = s->seq;
	/* a new open group */
	g->blocks = NULL;
	g->nblocks = 0;
	g->ntx = 0;
	g->min_txid = 0;
	g->state_dirty = false;
	g->preflush = false;
	g->id++;
	__atomic_add_fetch(&st->stat_groups, 1, __ATOMIC_RELAXED);
	return 0;
}

/*
 * Make WAL w durable up to sequence seq: write the sealed records in order
 * (whoever gets there first writes every sealed record queued so far: one
 * write and one flush for all of them), flush, wake the others.
 */
static int wal_write_upto(struct pfs_store *st, struct pfs_wal *w, uint64_t seq)
{
	uint32_t bs = bsize(st);
	int ret = 0;

	pthread_mutex_lock(&w->mutex);
	while (w->durable_seq < seq && !w->err) {
		struct pfs_wal_sealed *s, *batch = w->queue;
		bool preflush = false;

		if (!batch || w->writing) {	/* another thread is writing ours */
			pthread_cond_wait(&w->cond, &w->mutex);
			continue;
		}
		w->queue = NULL;	/* this thread writes them all */
		w->writing = true;
		for (s = batch; s; s = s->next)
			preflush |= s->preflush;
		pthread_mutex_unlock(&w->mutex);
		if (preflush && !pfs_planted("record-before-data"))
			ret = pfs_dev_flush(st->dev);	/* W2: data before record */
		for (s = batch; !ret && s; s = s->next) {
			if (s->pad_at != UINT64_MAX)
				ret = pfs_dev_pwrite(st->dev, s->buf, bs,
						     (w->start + s->pad_at) * bs);
			if (!ret)
				ret = pfs_dev_pwrite(st->dev, rec_at(s, bs), (size_t)s->nblocks * bs,
						     (w->start + s->at) * bs);
		}
		if (!ret && !pfs_planted("skip-flush"))
			ret = pfs_dev_flush(st->dev);
		__atomic_add_fetch(&st->stat_wal_writes, 1, __ATOMIC_RELAXED);
		pthread_mutex_lock(&w->mutex);
		for (s = batch; s;) {
			struct pfs_wal_sealed *n = s->next;

			if (!ret)
				w->durable_seq = s->seq;
			pfs_dev_buf_free(s->buf);
			free(s);
			s = n;
		}
		if (ret) {
			w->err = ret;
			st->err = -EIO;
		}
		w->writing = false;
		pthread_cond_broadcast(&w->cond);
	}
	if (w->err)
		ret = w->err;
	pthread_mutex_unlock(&w->mutex);
	return ret;
}

/* Wait until no record write is under way in w. */
static void wal_wait_idle(struct pfs_wal *w)
{
	pthread_mutex_lock(&w->mutex);
	while (w->writing)
		pthread_cond_wait(&w->cond, &w->mutex);
	pthread_mutex_unlock(&w->mutex);
}

int pfs_tx_commit_durable(struct pfs_tx *tx)
{
	struct pfs_store *st = tx->st;	/* tx is gone after the commit */
	struct pfs_durable tok;
	int ret = pfs_tx_commit(tx, &tok);

	return ret ? ret : pfs_tx_wait_durable(st, &tok);
}

int pfs_tx_wait_durable(struct pfs_store *st, const struct pfs_durable *token)
{
	struct pfs_shard *sh;
	uint64_t seq;
	bool busy;
	int ret;

	if (token->shard == POSFS_SHARD_GLOBAL)
		return 0;
	sh = &st->shards[token->shard];
	for (;;) {
		pthread_mutex_lock(&sh->lock);
		if (sh->group_durable >= token->group) {
			pthread_mutex_unlock(&sh->lock);
			return 0;
		}
		if (sh->group.id != token->group) {
			/* sealed already: wait for every record sealed so far */
			seq = sh->wal.sealed_seq;
			pthread_mutex_unlock(&sh->lock);
			break;
		}
		/*
		 * Group commit: while a record is being written, let the open
		 * group grow; seal it when the device is free, so that every
		 * transaction that arrived meanwhile shares the next write.
		 */
		pthread_mutex_lock(&sh->wal.mutex);
		busy = sh->wal.writing;
		pthread_mutex_unlock(&sh->wal.mutex);
		if (busy) {
			pthread_mutex_unlock(&sh->lock);
			wal_wait_idle(&sh->wal);
			continue;
		}
		ret = group_seal(st, sh, &seq);
		pthread_mutex_unlock(&sh->lock);
		if (ret)
			return ret;
		break;
	}
	ret = wal_write_upto(st, &sh->wal, seq);
	if (!ret) {
		pthread_mutex_lock(&sh->lock);
		if (sh->group_durable < token->group)
			sh->group_durable = token->group;
		pthread_mutex_unlock(&sh->lock);
	}
	return ret;
}

/* W6: the shards' open groups durable, then one global record. */
static int global_commit(struct pfs_tx *tx)
{
	struct pfs_store *st = tx->st;
	uint32_t bs = bsize(st);
	struct pfs_wal *w = &st->global_wal;
	struct pfs_wal_sealed *s;
	uint64_t nimg = 0, bytes;
	uint8_t *p, *rec;
	uint16_t n = 0;

	for (unsigned i = 0; i < tx->nshards; i++)
		if (tx->shards[i]->group.ntx || tx->shards[i]->group.nblocks)
			return -EPROTO;		/* W6: flushed at begin */
	for (size_t i = 0; i < tx->nb; i++)
		if (tx->b[i].state == TXB_DIRTY || tx->b[i].state == TXB_NEW)
			nimg++;
	bytes = record_bytes(bs, nimg, tx->nshards);
	if (nimg + tx->nshards > POSFS_WAL_MAX_ENTRIES || !wal_fits(w, bytes_to_blocks(bytes, bs)))
		return -EAGAIN;		/* W7, W8 */
	s = wal_reserve(w, bs, bytes);
	if (!s)
		return -ENOMEM;
	s->preflush = tx->data_written;
	rec = rec_at(s, bs);
	memset(rec, 0, (size_t)s->nblocks * bs);
	p = rec + sizeof(struct pfs_dwal_rec);
	for (size_t i = 0; i < tx->nb; i++) {
		struct pfs_txb *t = &tx->b[i];

		if (t->state != TXB_DIRTY && t->state != TXB_NEW)
			continue;
		p = entry_put(p, POSFS_WAL_BLOCK_IMAGE, t->raw ? POSFS_WAL_ENTRY_RAW : 0, bs,
			      t->buf->blkno, 0);
		memcpy(p, t->buf->data, bs);
		p += bs;
		n++;
	}
	for (unsigned i = 0; i < tx->nshards; i++) {
		struct pfs_shard *sh = tx->shards[i];

		if (tx->txid >= sh->hdr.next_txid)
			sh->hdr.next_txid = tx->txid + 1;
		p = state_put(st, p, &sh->hdr, sh->index, sh->geo.start_block);
		n++;
	}
	wal_seal(st, w, s, (uint32_t)(p - rec), n, tx->txid, 1);
	return wal_write_upto(st, w, s->seq);
}

/* Seal the shard's open group and make it durable (shard lock held). */
static int groups_flush_locked(struct pfs_store *st, struct pfs_shard *sh)
{
	uint64_t seq;
	int ret = group_seal(st, sh, &seq);

	if (!ret)
		ret = wal_write_upto(st, &sh->wal, sh->wal.sealed_seq);
	if (!ret)
		sh->group_durable = sh->group.id - 1;
	return ret;
}

/* ---- checkpoint --------------------------------------------------------- */

/* Unlocked: a hint that a checkpoint is due (used is updated atomically
 * under the shard lock; W7 at commit is the check that counts). */
bool pfs_store_wal_full(struct pfs_store *st)
{
	for (uint32_t i = 0; i < st->nshards; i++) {
		struct pfs_wal *w = &st->shards[i].wal;

		if (__atomic_load_n(&w->used, __ATOMIC_RELAXED) * 100 >=
		    (uint64_t)w->nblocks * st->fill_pct)
			return true;
	}
	return __atomic_load_n(&st->global_wal.used, __ATOMIC_RELAXED) * 100 >=
	       (uint64_t)st->global_wal.nblocks * st->fill_pct;
}

/*
 * Every dirty block of sh to its home. They go out in batches through the
 * checkpoint's I/O queue (on io_uring, many in flight at once); one by
 * one when there is no queue. The caller flushes after.
 */
#define HOME_BATCH 64u	/* home writes per queue run (the default depth) */

static int write_home(struct pfs_store *st, struct pfs_shard *sh)
{
	uint32_t bs = bsize(st);
	struct pfs_io ios[HOME_BATCH];
	unsigned n = 0;
	int ret = 0;

	for (struct pfs_buf *b = sh->cache.dirty; !ret && b; b = b->dnext) {
		if (!st->ckpt_q) {
			ret = pfs_dev_pwrite(st->dev, b->data, bs, b->blkno * bs);
			continue;
		}
		ios[n++] = (struct pfs_io){ .op = PFS_IO_WRITE, .buf = b->data, .len = bs,
					    .off = b->blkno * bs, .buf_index = -1 };
		if (n == HOME_BATCH || !b->dnext) {
			ret = pfs_ioq_run(st->ckpt_q, ios, n);
			n = 0;
		}
	}
	return ret;
}

static int header_write(struct pfs_store *st, struct pfs_wal *w, struct pfs_shard_hdr *state,
			struct pfs_shard_hdr *ondisk)
{
	struct pfs_shard_hdr h = *state;
	int ret;

	h.slot = ondisk->slot;
	h.seq = ondisk->seq;
	h.ckpt_gen = st->ckpt_gen + 1;
	h.wal_tail = w->head;
	h.wal_tail_lsn = w->next_lsn;
	h.checkpoint_lsn = w->next_lsn;
	ret = pfs_shard_hdr_write(st->dev, &st->sb, &h);
	if (ret)
		return ret;
	*ondisk = h;
	state->slot = h.slot;
	state->seq = h.seq;
	state->wal_tail = h.wal_tail;
	state->wal_tail_lsn = h.wal_tail_lsn;
	state->checkpoint_lsn = h.checkpoint_lsn;
	state->ckpt_gen = h.ckpt_gen;
	w->tail = w->head;
	w->tail_lsn = w->next_lsn;
	__atomic_store_n(&w->used, 0, __ATOMIC_RELAXED);
	return 0;
}

/* Everything durable, home, and the tails advanced (W5). The caller holds
 * the checkpoint lock for writing (no transaction is running). */
static int checkpoint_locked(struct pfs_store *st)
{
	int ret = 0;

	if (st->err)
		return st->err;
	st->ckpt_started++;	/* unlocked reads of data read again */
	for (uint32_t i = 0; !ret && i < st->nshards; i++)
		ret = groups_flush_locked(st, &st->shards[i]);
	for (uint32_t i = 0; !ret && i < st->nshards; i++)
		ret = write_home(st, &st->shards[i]);
	if (!ret)
		ret = pfs_dev_flush(st->dev);
	for (uint32_t i = 0; !ret && i < st->nshards; i++) {
		struct pfs_shard *sh = &st->shards[i];

		ret = header_write(st, &sh->wal, &sh->hdr, &sh->ondisk);
	}
	if (!ret)
		ret = header_write(st, &st->global_wal, &st->global_hdr, &st->global_hdr);
	if (ret) {
		st->err = -EIO;
		return ret;
	}
	st->ckpt_gen++;
	for (uint32_t i = 0; i < st->nshards; i++) {
		struct pfs_shard *sh = &st->shards[i];

		pfs_bcache_clean_all(&sh->cache);
		pfs_store_discard_released(st, sh, st->ckpt_gen);	/* trim.c D3 */
		pfs_alloc_release_upto(&sh->alloc, st->ckpt_gen);	/* W4 */
	}
	__atomic_add_fetch(&st->stat_checkpoints, 1, __ATOMIC_RELAXED);
	return 0;
}

int pfs_store_checkpoint(struct pfs_store *st)
{
	uint64_t t0;
	int ret;

	if (st->readonly)
		return 0;
	pthread_rwlock_wrlock(&st->ckpt_lock);
	t0 = mono_ns();
	for (uint32_t i = 0; i < st->nshards; i++)
		pthread_mutex_lock(&st->shards[i].lock);
	pthread_mutex_lock(&st->global_lock);
	/* remounted read-only: everything went home then, nothing since */
	ret = st->remount_ro ? 0 : checkpoint_locked(st);
	__atomic_add_fetch(&st->stat_ckpt_ns, mono_ns() - t0, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&st->global_lock);
	for (uint32_t i = st->nshards; i-- > 0;)
		pthread_mutex_unlock(&st->shards[i].lock);
	pthread_rwlock_unlock(&st->ckpt_lock);
	return ret;
}

/*
 * Read-only at run time (a remount): the last checkpoint and the change
 * of the flag happen with every shard locked and ckpt_lock held for
 * writing, so that a transaction either committed before (and is home
 * now) or starts after and sees the flag (tx_start).
 */
int pfs_journal_set_readonly(struct pfs_store *st, bool ro)
{
	int ret = 0;

	pthread_rwlock_wrlock(&st->ckpt_lock);
	for (uint32_t i = 0; i < st->nshards; i++)
		pthread_mutex_lock(&st->shards[i].lock);
	pthread_mutex_lock(&st->global_lock);
	if (ro && !st->remount_ro)
		ret = checkpoint_locked(st);
	__atomic_store_n(&st->remount_ro, ro, __ATOMIC_RELEASE);
	pthread_mutex_unlock(&st->global_lock);
	for (uint32_t i = st->nshards; i-- > 0;)
		pthread_mutex_unlock(&st->shards[i].lock);
	pthread_rwlock_unlock(&st->ckpt_lock);
	return ret;
}

/* ---- init --------------------------------------------------------------- */

static void wal_init(struct pfs_wal *w, uint32_t index, uint64_t owner,
		     const struct pfs_shard_hdr *h)
{
	memset(w, 0, sizeof(*w));
	w->index = index;
	w->owner = owner;
	w->start = h->wal_start;
	w->nblocks = h->wal_blocks;
	w->tail = h->wal_tail;
	w->tail_lsn = h->wal_tail_lsn;
	w->head = h->wal_tail;
	w->next_lsn = h->wal_tail_lsn;
	pthread_mutex_init(&w->mutex, NULL);
	pthread_cond_init(&w->cond, NULL);
}

static void wal_fini(struct pfs_wal *w)
{
	while (w->queue) {
		struct pfs_wal_sealed *n = w->queue->next;

		pfs_dev_buf_free(w->queue->buf);
		free(w->queue);
		w->queue = n;
	}
	pthread_mutex_destroy(&w->mutex);
	pthread_cond_destroy(&w->cond);
}

int pfs_journal_init(struct pfs_store *st)
{
	/* the checkpoint's queue (used under ckpt_lock for writing: one user
	 * at a time); without one, home writes go one by one */
	if (!st->readonly && pfs_ioq_create(st->dev, 0, &st->ckpt_q))
		st->ckpt_q = NULL;
	wal_init(&st->global_wal, POSFS_SHARD_GLOBAL, POSFS_OWNER_GLOBAL, &st->global_hdr);
	for (uint32_t i = 0; i < st->nshards; i++) {
		struct pfs_shard *sh = &st->shards[i];

		wal_init(&sh->wal, i, POSFS_OWNER_SHARD(i), &sh->ondisk);
		sh->group.id = 1;
	}
	return 0;
}

void pfs_journal_fini(struct pfs_store *st)
{
	pfs_ioq_destroy(st->ckpt_q);
	st->ckpt_q = NULL;
	wal_fini(&st->global_wal);
	for (uint32_t i = 0; i < st->nshards; i++)
		wal_fini(&st->shards[i].wal);
}

/* ---- replay ------------------------------------------------------------- */

struct replay_rec {
	uint8_t *buf;
	struct pfs_wal_rec r;
	struct pfs_wal *w;
};

struct replay {
	struct replay_rec *v;
	size_t n, cap;
};

/* Read the chain of valid records of w from its tail (W1). */
static int replay_scan(struct pfs_store *st, struct pfs_wal *w, struct replay *rp)
{
	uint32_t bs = bsize(st);
	uint8_t *first = pfs_dev_buf_alloc(bs);
	uint64_t pos = w->tail, lsn = w->tail_lsn, used = 0;
	int ret = 0;

	if (!first)
		return -ENOMEM;
	for (;;) {
		const struct pfs_dwal_rec *d = (const void *)first;
		struct pfs_wal_rec r;
		uint32_t nblocks;
		uint8_t *buf;

		ret = pfs_dev_pread(st->dev, first, bs, (w->start + pos) * bs);
		if (ret)
			break;
		if (le32_get(d->hdr.magic) != POSFS_MAGIC_WAL)
			break;
		nblocks = le32_get(d->nblocks);
		if (!nblocks || nblocks > w->nblocks - pos)
			break;
		buf = pfs_dev_buf_alloc((size_t)nblocks * bs);
		if (!buf) {
			ret = -ENOMEM;
			break;
		}
		memcpy(buf, first, bs);
		if (nblocks > 1)
			ret = pfs_dev_pread(st->dev, buf + bs, (size_t)(nblocks - 1) * bs,
					    (w->start + pos + 1) * bs);
		if (ret || pfs_wal_rec_verify(buf, (size_t)nblocks * bs, pos, lsn, w->owner,
					      st->sb.uuid, bs, w->nblocks, &r)) {
			pfs_dev_buf_free(buf);
			break;
		}
		used += r.nblocks;
		lsn++;
		if (r.flags & POSFS_WAL_PAD) {
			pfs_dev_buf_free(buf);
			pos = 0;
			continue;
		}
		if (rp->n == rp->cap) {
			size_t cap = rp->cap ? rp->cap * 2 : 64;
			struct replay_rec *v = realloc(rp->v, cap * sizeof(*v));

			if (!v) {
				pfs_dev_buf_free(buf);
				ret = -ENOMEM;
				break;
			}
			rp->v = v;
			rp->cap = cap;
		}
		rp->v[rp->n++] = (struct replay_rec){ buf, r, w };
		pos += r.nblocks;
		if (pos == w->nblocks)
			pos = 0;
		if (used >= w->nblocks)
			break;		/* a full lap: cannot be */
	}
	pfs_dev_buf_free(first);
	w->head = pos;
	w->next_lsn = lsn;
	__atomic_store_n(&w->used, used, __ATOMIC_RELAXED);
	return ret;
}

static int replay_cmp(const void *a, const void *b)
{
	const struct replay_rec *x = a, *y = b;

	return x->r.txid < y->r.txid ? -1 : x->r.txid > y->r.txid;
}

/* Apply one record into the caches as dirty blocks (W3). */
static int replay_apply(struct pfs_store *st, struct replay_rec *rr, uint64_t *max_txid)
{
	uint32_t bs = bsize(st);
	const uint8_t *p = rr->buf + sizeof(struct pfs_dwal_rec);
	const uint8_t *end = rr->buf + rr->r.size;
	int ret;

	if (rr->r.txid + rr->r.ntx > *max_txid)
		*max_txid = rr->r.txid + rr->r.ntx;
	for (uint16_t i = 0; i < rr->r.nentries; i++) {
		const struct pfs_dwal_entry *e = (const void *)p;
		uint32_t len;
		uint16_t type;

		if ((size_t)(end - p) < sizeof(*e))
			return -EUCLEAN;
		type = le16_get(e->type);
		len = le32_get(e->len);
		p += sizeof(*e);
		if ((size_t)(end - p) < len)
			return -EUCLEAN;
		if (type == POSFS_WAL_BLOCK_IMAGE) {
			struct pfs_shard *sh = pfs_store_cached_shard(st, le64_get(e->a));
			struct pfs_buf *b;

			if (len != bs || !sh)
				return -EUCLEAN;
			ret = pfs_bcache_get(&sh->cache, le64_get(e->a), false, &b);
			if (ret)
				return ret;
			memcpy(b->data, p, bs);
			b->flags = (b->flags & PFS_BUF_DIRTY) | PFS_BUF_VALID |
				   ((le16_get(e->flags) & POSFS_WAL_ENTRY_RAW) ? PFS_BUF_RAW : 0);
			pfs_bcache_mark_dirty(b);
			pfs_bcache_put(b);
		} else if (type == POSFS_WAL_SHARD_STATE) {
			uint64_t shard = le64_get(e->a);
			struct pfs_shard_hdr h;
			struct pfs_shard *sh;

			if (shard >= st->nshards || len != bs)
				return -EUCLEAN;
			sh = &st->shards[shard];
			ret = pfs_shard_hdr_from_disk(&st->sb, (uint32_t)shard, sh->geo.start_block,
						      p, &h);
			if (ret)
				return ret;
			/* the state; where the WAL is stays as the header says */
			h.slot = sh->hdr.slot;
			h.seq = sh->hdr.seq;
			h.wal_tail = sh->hdr.wal_tail;
			h.wal_tail_lsn = sh->hdr.wal_tail_lsn;
			h.checkpoint_lsn = sh->hdr.checkpoint_lsn;
			h.ckpt_gen = sh->hdr.ckpt_gen;
			sh->hdr = h;
		} else {
			return -EUCLEAN;	/* not written by this version */
		}
		p += len;
	}
	return p == end ? 0 : -EUCLEAN;	/* W8: nothing after the last entry */
}

int pfs_journal_replay(struct pfs_store *st)
{
	struct replay rp = { 0 };
	uint64_t max_txid = 1;
	int ret;

	ret = replay_scan(st, &st->global_wal, &rp);
	for (uint32_t i = 0; !ret && i < st->nshards; i++)
		ret = replay_scan(st, &st->shards[i].wal, &rp);
	if (!ret && rp.n)
		qsort(rp.v, rp.n, sizeof(*rp.v), replay_cmp);
	for (size_t i = 0; !ret && i < rp.n; i++) {
		ret = replay_apply(st, &rp.v[i], &max_txid);
		if (ret == -EUCLEAN || ret == -EBADMSG)
			pfs_store_damage_note(st, PFS_DAMAGE_JOURNAL, rp.v[i].w->index, 0,
					      rp.v[i].w->start + rp.v[i].r.wal_block, NULL);
	}
	for (size_t i = 0; i < rp.n; i++)
		pfs_dev_buf_free(rp.v[i].buf);
	free(rp.v);
	for (uint32_t i = 0; i < st->nshards; i++)
		if (st->shards[i].hdr.next_txid > max_txid)
			max_txid = st->shards[i].hdr.next_txid;
	st->next_txid = max_txid;
	return ret;
}
