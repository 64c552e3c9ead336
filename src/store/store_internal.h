/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The object store's private structures (src/store). Its second user is
 * src/check: fsck walks and repairs the store through these, as e2fsck
 * does libext2fs, and keeps the rules written here.
 *
 * Lock order (never taken the other way):
 *   0. store->remount_lock (pfs_store_set_readonly: one change at a time)
 *   1. store->ckpt_lock  (rwlock: transactions read, checkpoint writes)
 *   2. shard->lock       (mutexes, in increasing shard index)
 *   3. store->global_lock (the global WAL: a cross-shard transaction, after
 *                        its shard locks; a checkpoint, after all of them)
 *   4. wal->mutex        (per WAL: writing sealed records in order)
 *   5. store->sb_lock    (the damage record and the superblock's error
 *                        mark: taken under any of the above, nothing
 *                        under it)
 * A thread that waits for durability holds no shard lock while it waits,
 * except a cross-shard commit, which waits only on wal mutexes (whose
 * holders never take a shard lock), so it cannot deadlock.
 */
#ifndef POSFS_STORE_INTERNAL_H
#define POSFS_STORE_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <errno.h>
#include <stdint.h>

#include "posfs/disk.h"
#include "posfs/io.h"
#include "posfs/store.h"
#include "store/alloc.h"
#include "store/bcache.h"
#include "store/ocache.h"
#include "store/tx.h"
#include "store/verify.h"

/* A sealed WAL record waiting for (or under) its write. */
struct pfs_wal_sealed {
	uint64_t seq;			/* order of sealing in this WAL */
	uint8_t *buf;			/* pad block (if any) then the record */
	uint64_t pad_at;		/* WAL block of the pad record, or ~0 */
	uint64_t at;			/* WAL block of the record */
	uint32_t nblocks;		/* of the record */
	bool preflush;			/* out-of-place data to flush first */
	struct pfs_wal_sealed *next;
};

/* One circular log: a shard's or the global one. */
struct pfs_wal {
	uint32_t index;			/* shard, or POSFS_SHARD_GLOBAL */
	uint64_t owner;			/* owner field of its records */
	uint64_t start;			/* first WAL block on the device */
	uint32_t nblocks;
	/* under the shard lock (global: the global lock) */
	uint64_t head;			/* where the next record goes */
	uint64_t next_lsn;
	uint64_t tail;			/* oldest record replay needs */
	uint64_t tail_lsn;
	uint64_t used;			/* blocks from tail to head, pads included */
	uint64_t sealed_seq;		/* last sequence handed out */
	/* under mutex */
	pthread_mutex_t mutex;
	pthread_cond_t cond;
	uint64_t durable_seq;		/* every record up to here is durable */
	bool writing;			/* a thread is writing records now */
	int err;			/* a write or flush failed: the WAL is dead */
	struct pfs_wal_sealed *queue;	/* sealed, not yet durable, in order */
};

/* The open group of a shard: what its next WAL record will carry. */
struct pfs_group {
	uint64_t id;			/* increases; buffers listed carry it */
	struct pfs_buf *blocks;		/* via gnext */
	uint32_t nblocks;
	uint32_t ntx;
	uint64_t min_txid;
	bool state_dirty;		/* the shard header state changed */
	bool preflush;			/* a transaction wrote data out of place */
};

struct pfs_shard {
	pthread_mutex_t lock;
	uint32_t index;
	struct pfs_shard_geo geo;
	struct pfs_shard_hdr hdr;	/* current state: roots, counters */
	struct pfs_shard_hdr ondisk;	/* as last written (tail, slot, seq) */
	struct pfs_bcache cache;
	struct pfs_ocache onodes;	/* decoded onodes, read-through */
	struct pfs_alloc alloc;
	struct pfs_wal wal;
	struct pfs_group group;
	uint64_t group_durable;		/* last group id known durable */
	struct pfs_free0 free0;		/* free at open (verify.h, V2) */
	/* free blocks (pending included) and objects as the last writing
	 * transaction left them: written under lock, read without it
	 * (pfs_store_shard_load, a placement hint) */
	uint64_t load_free, load_objects;
};

struct pfs_store {
	struct pfs_dev *dev;
	struct pfs_super sb;
	uint32_t nshards;
	struct pfs_shard *shards;
	/* the global journal (cross-shard transactions) */
	pthread_mutex_t global_lock;
	struct pfs_shard_hdr global_hdr;
	struct pfs_wal global_wal;

	pthread_rwlock_t ckpt_lock;
	struct pfs_ioq *ckpt_q;		/* the checkpoint's home writes */
	uint64_t ckpt_gen;		/* checkpoints completed */
	uint64_t ckpt_started;		/* checkpoints begun (under ckpt_lock
					 * for writing; read in a transaction) */
	uint64_t next_txid;		/* atomic */
	uint32_t small_write;
	uint32_t fill_pct;		/* checkpoint when a WAL is this full */
	bool readonly;			/* opened read-only: never writes */
	bool remount_ro;		/* atomic: read-only since
					 * pfs_store_set_readonly (written
					 * under ckpt_lock for writing) */
	pthread_mutex_t remount_lock;
	int err;			/* sticky: after an I/O failure, -EIO */
	bool corrupt;			/* corrupt metadata met: fsck needed */
	/* data checksum failures (csum.h): the count, and the last blocks
	 * reported, so that each is reported once */
	uint64_t data_errors;		/* atomic */
	pthread_mutex_t data_error_lock;
	uint64_t data_error_seen[256];
	unsigned data_error_next;
	void (*data_error)(void *arg, uint64_t oid, uint64_t off, uint64_t blkno);
	void *data_error_arg;
	bool discard;			/* discard each checkpoint's frees
					 * (trim.c, D3); under every shard lock */
	bool compress;			/* new data compressed by default */
	int compress_level;		/* zstd level */
	bool space_loaded;		/* free trees in the allocators; until
					 * then (fsck) frees are forgotten */
	bool free0_taken;		/* pfs_verify_open: V2 is checked */
	uint64_t open_txid;		/* blocks below it were there at open */
	/* corrupt objects met (verify.h): the last reported, each once */
	uint64_t object_error_seen[64];
	unsigned object_error_next;
	void (*object_error)(void *arg, uint64_t oid, const char *what);
	void *object_error_arg;
	/* the first damage met, and whether the superblock is marked with
	 * it (damage.marked): under sb_lock */
	pthread_mutex_t sb_lock;
	struct pfs_store_damage damage;
	bool sb_ok;			/* the superblock is read and fits the
					 * device: it can carry the mark */
	/* the checkpoint timer */
	pthread_t timer;
	bool timer_running;
	bool timer_stop;
	int interval_ms;
	pthread_mutex_t timer_lock;
	pthread_cond_t timer_cond;
	/* counters (atomic; pfs_store_counters) */
	uint64_t stat_commits, stat_groups, stat_checkpoints, stat_wal_writes;
	uint64_t stat_cross_shard;	/* commits through the global WAL */
	uint64_t stat_discards, stat_discard_blocks;	/* trim.c */
	uint64_t stat_lock_waits, stat_lock_wait_ns;	/* a shard lock taken */
	uint64_t stat_ckpt_waits, stat_ckpt_wait_ns;	/* a checkpoint running */
	uint64_t stat_ckpt_ns;		/* checkpoints' time, all shards stopped */
};

/* Set sh->load_free and load_objects from its allocator and header (sh
 * locked): each writing transaction does as it lets the shard go
 * (journal.c), and the open once the free trees are loaded. */
void pfs_shard_publish_load(struct pfs_shard *sh);

/* trim.c: with the store's discard on, discard every pending range of sh
 * whose sequence is at most upto (the checkpoint that releases them, with
 * every shard locked, after its headers are durable: D3). */
void pfs_store_discard_released(struct pfs_store *st, struct pfs_shard *sh, uint64_t upto);

/* The shard whose data area holds blkno, or NULL. */
struct pfs_shard *pfs_store_block_shard(struct pfs_store *st, uint64_t blkno);
/* The shard whose cache holds block blkno: its data area's, or its data
 * checksum table's (no allocation or free ever names those). */
struct pfs_shard *pfs_store_cached_shard(struct pfs_store *st, uint64_t blkno);

/* The first corrupt metadata met: note the store as needing fsck and
 * mark the superblock with POSFS_STATE_ERRORS (a superblock write and
 * flush, once; not on a read-only store). Any thread, any lock held. */
void pfs_store_mark_errors(struct pfs_store *st);

/* Note an error: corrupt metadata marks the store as needing fsck. */
static inline int pfs_store_note(struct pfs_store *st, int err)
{
	if ((err == -EUCLEAN || err == -EBADMSG) &&
	    !__atomic_load_n(&st->corrupt, __ATOMIC_ACQUIRE))
		pfs_store_mark_errors(st);
	return err;
}

/* Record what is damaged, unless something is recorded already (the
 * first damage met is the one told). detail may be NULL. */
void pfs_store_damage_note(struct pfs_store *st, enum pfs_damage_kind kind, uint32_t shard,
			   uint64_t oid, uint64_t blkno, const char *detail);

/* Record the damage of a metadata block of type magic (POSFS_MAGIC_*)
 * and owner (0: unknown) that failed its checks. */
void pfs_store_damage_block(struct pfs_store *st, uint32_t magic, uint64_t owner,
			    uint64_t blkno);

/* Corrupt metadata of object oid (what: a short description): note it,
 * report it once (pfs_store_opts.object_error). Returns -EUCLEAN. */
int pfs_store_object_error(struct pfs_store *st, uint64_t oid, const char *what);

/* A data block that failed its checksum: count it, report it once
 * (pfs_store_opts.data_error). Returns -EIO. */
int pfs_store_data_error(struct pfs_store *st, uint64_t oid, uint64_t off, uint64_t blkno);

/* Load every shard's free tree into its allocator (open; fsck after it
 * rebuilt them). */
int pfs_store_load_space(struct pfs_store *st);

/* Is anything waiting to be written home? */
bool pfs_store_dirty(struct pfs_store *st);

/* fsck: are o's inline xattrs well formed (entries inside the area, known
 * namespaces, xattr_count of them)? 0 or -EUCLEAN. */
int pfs_onode_check_xattrs(const struct pfs_onode *o);

/* ---- journal.c ---------------------------------------------------------- */

/*
 * Begin a transaction on the shards in mask order: shards[] sorted and
 * unique, n >= 1. Takes the checkpoint lock (read) and the shard locks.
 */
int pfs_tx_begin(struct pfs_store *st, const uint32_t *shards, unsigned n,
		 struct pfs_tx **txp);

/* A transaction that only reads (also on a read-only store): it locks the
 * shards, and is ended with pfs_tx_abort. Changes return -EROFS. */
int pfs_tx_begin_read(struct pfs_store *st, const uint32_t *shards, unsigned n,
		      struct pfs_tx **txp);

/* Record that out-of-place data was written for this transaction: its
 * record must not reach the device before that data is flushed. */
void pfs_tx_note_data(struct pfs_tx *tx);

/* The transaction's id (global commit order). */
uint64_t pfs_tx_id(const struct pfs_tx *tx);

/*
 * The transaction gives space back (PFS_SUBMIT_RESERVE): its allocations
 * may take the shards' metadata reserve (journal.c, above SPACE_RESERVE).
 */
void pfs_tx_set_reserve(struct pfs_tx *tx);

/* Free blocks of sh that ordinary data leaves alone (journal.c). */
uint64_t pfs_shard_data_reserve(const struct pfs_shard *sh);

/*
 * A block of a shard the transaction did not lock was needed (-EXDEV):
 * which shard, so that the caller can begin again with it; -1 if none.
 */
void pfs_tx_set_xdev(struct pfs_tx *tx, uint32_t shard);
int64_t pfs_tx_xdev(const struct pfs_tx *tx);

/* Is the shard locked by tx? */
bool pfs_tx_has_shard(const struct pfs_tx *tx, uint32_t shard);

struct pfs_shard *pfs_tx_shard(struct pfs_tx *tx, uint32_t shard);
struct pfs_store *pfs_tx_store(struct pfs_tx *tx);

/*
 * Allocate len blocks (contiguous when contig, else up to len) for data
 * from the shard's free space; the on-disk free tree is updated at commit,
 * the allocation is undone on abort. *got: blocks given.
 */
int pfs_tx_alloc_data(struct pfs_tx *tx, uint32_t shard, uint64_t len, uint64_t hint,
		      bool contig, uint64_t *start, uint64_t *got);

/* Would an allocation of len blocks in the shard (locked by tx) fail for
 * want of space? */
bool pfs_tx_space_short(struct pfs_tx *tx, uint32_t shard, uint64_t len);

/* Free data blocks [start, start+len): back to the free tree at commit,
 * reusable after the next checkpoint (W4). */
int pfs_tx_free_data(struct pfs_tx *tx, uint64_t start, uint64_t len);

/*
 * A data block to change through the WAL (small writes): the cached
 * block, read from the device unless fresh (then zeroed), dirty in tx.
 */
int pfs_tx_data_block(struct pfs_tx *tx, uint64_t blkno, bool fresh, struct pfs_buf **bp);

/*
 * Commit: apply the space changes, log the changed blocks in the open
 * group of the shard (one shard) or in the global WAL (several: written
 * and flushed before return), release the locks. *wait_token receives
 * what pfs_tx_wait_durable needs. -EAGAIN: the WAL is too full for this
 * transaction: it was aborted, checkpoint and retry.
 */
struct pfs_durable {
	uint32_t shard;		/* POSFS_SHARD_GLOBAL: already durable */
	uint64_t group;
};
int pfs_tx_commit(struct pfs_tx *tx, struct pfs_durable *token);
void pfs_tx_abort(struct pfs_tx *tx);

/* Commit and wait until it is durable (fsck's repairs, rebuilds). */
int pfs_tx_commit_durable(struct pfs_tx *tx);

/* Wait until a committed transaction is on stable storage (group commit:
 * concurrent waiters share one record write and one flush). */
int pfs_tx_wait_durable(struct pfs_store *st, const struct pfs_durable *token);

/* Make everything committed durable and write every dirty block home;
 * advance every WAL's tail. */
int pfs_store_checkpoint(struct pfs_store *st);

/* Checkpoint and refuse every change from now on with -EROFS (ro), or
 * take changes again; the checkpoint's error, if any (the store is
 * read-only in any case). */
int pfs_journal_set_readonly(struct pfs_store *st, bool ro);

/* Is any WAL past its fill mark? */
bool pfs_store_wal_full(struct pfs_store *st);

/* Replay every WAL into the caches (open). */
int pfs_journal_replay(struct pfs_store *st);

/* Initialise / tear down the WAL and group state of the shards. */
int pfs_journal_init(struct pfs_store *st);
void pfs_journal_fini(struct pfs_store *st);

/* The space changes a transaction made, for space.c to apply to the free
 * trees. New ones may be added while they are applied (tree nodes). */
struct pfs_space_change {
	uint32_t shard;
	uint64_t start;
	uint64_t len;
	bool is_free;		/* else an allocation */
	bool tree_only;		/* a free the allocator has already (fsck) */
};
size_t pfs_tx_space_count(const struct pfs_tx *tx);
/* fsck: note that the free tree must take [start, start+len), free in the
 * allocator already (pfs_space_rebuild). */
int pfs_tx_space_tree_free(struct pfs_tx *tx, uint32_t shard, uint64_t start, uint64_t len);
const struct pfs_space_change *pfs_tx_space_at(const struct pfs_tx *tx, size_t i);

/* ---- space.c ------------------------------------------------------------ */

/* Load a shard's free-space tree into its allocator; check the count. */
int pfs_space_load(struct pfs_store *st, struct pfs_shard *sh, struct pfs_tx *tx);

/*
 * fsck: replace shard's free tree and allocator by the free extents next()
 * gives (in increasing order, disjoint, not adjacent; 0, or -ENOENT at the
 * end). Nothing else may run on the store. The new tree is written in
 * transactions of a few hundred extents each. Errors: -EUCLEAN for
 * extents out of order or outside the data area, those of transactions.
 */
typedef int (*pfs_space_next_fn)(void *arg, uint64_t *start, uint64_t *len);
int pfs_space_rebuild(struct pfs_store *st, uint32_t shard, pfs_space_next_fn next, void *arg);

/* Bring the on-disk free trees up to date with the transaction's
 * allocations and frees (called at commit, to a fixed point). */
int pfs_space_apply(struct pfs_tx *tx);

#endif /* POSFS_STORE_INTERNAL_H */
