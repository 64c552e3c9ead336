/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Block cache of one shard (private to src/store).
 *
 * Every metadata block, raw block (out-of-line values) and small-write
 * data block the store touches goes through its shard's cache. A buffer
 * is in one of three states:
 *   referenced   refs > 0: in use by a transaction or a reader;
 *   dirty        changed since the last checkpoint: pinned until the
 *                checkpoint writes it home (never evicted);
 *   clean        on the LRU list, evicted when the cache is over its size.
 * Memory is bounded by the cache size plus the dirty set, and the dirty set
 * is bounded by the WAL (a checkpoint runs before the WAL fills).
 *
 * Locking: the shard lock covers every call.
 */
#ifndef POSFS_STORE_BCACHE_H
#define POSFS_STORE_BCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pfs_dev;
struct pfs_txb;

/* pfs_buf.flags */
#define PFS_BUF_VALID		0x01	/* data holds the block's content */
#define PFS_BUF_VERIFIED	0x02	/* checked as metadata since it was read */
#define PFS_BUF_DIRTY		0x04	/* changed since the last checkpoint */
#define PFS_BUF_RAW		0x08	/* no header of its own */
#define PFS_BUF_NEW		0x10	/* allocated since the last checkpoint */
#define PFS_BUF_GONE		0x20	/* forgotten: freed at the last put */
#define PFS_BUF_CSUM_OK		0x40	/* data matching its recorded checksums (csum.h C3) */

struct pfs_buf {
	uint64_t blkno;
	uint8_t *data;
	uint32_t refs;
	uint32_t flags;
	struct pfs_buf *hnext;			/* hash chain */
	struct pfs_buf *lprev, *lnext;		/* LRU (clean, unreferenced) */
	/* the shard's dirty list and the open group's blocks: each a list
	 * with a back pointer (the link that points here), so that a block
	 * leaves it in O(1) */
	struct pfs_buf *dnext, **dpprev;
	struct pfs_buf *gnext, **gpprev;
	uint64_t group;				/* open group it is listed in, 0 none */
	struct pfs_txb *txb;			/* the transaction that holds it */
	struct pfs_bcache *cache;
};

struct pfs_bcache {
	struct pfs_dev *dev;
	uint32_t block_size;
	size_t capacity;		/* buffers kept at most, dirty ones excepted */
	size_t count;			/* buffers allocated */
	size_t nhash;
	struct pfs_buf **hash;
	struct pfs_buf lru;		/* list head: lnext = most recent */
	struct pfs_buf *dirty;		/* dirty list */
	size_t ndirty;
	uint64_t hits, misses, evictions;
	struct pfs_buf *spare;		/* freed buffers kept for reuse (hnext) */
	size_t nspare;
};

int pfs_bcache_init(struct pfs_bcache *c, struct pfs_dev *dev, uint32_t block_size,
		    size_t capacity);
void pfs_bcache_fini(struct pfs_bcache *c);

/* The buffer of blkno if cached (referenced), else NULL. */
struct pfs_buf *pfs_bcache_find(struct pfs_bcache *c, uint64_t blkno);

/*
 * The buffer of blkno, referenced; read from the device when read is true
 * and the buffer is not yet valid, else left zeroed and not valid.
 * Errors: -ENOMEM, -EIO (from the device).
 */
int pfs_bcache_get(struct pfs_bcache *c, uint64_t blkno, bool read, struct pfs_buf **bp);

void pfs_bcache_put(struct pfs_buf *b);

/* Mark dirty (pinned until pfs_bcache_clean_all). */
void pfs_bcache_mark_dirty(struct pfs_buf *b);

/* Forget a block (it was freed): drop it from the cache once unreferenced,
 * dirty or not. */
void pfs_bcache_forget(struct pfs_buf *b);

/* After a checkpoint: every dirty buffer becomes clean. */
void pfs_bcache_clean_all(struct pfs_bcache *c);

/* Drop every clean unreferenced buffer (tests: force re-reads). */
void pfs_bcache_drop_clean(struct pfs_bcache *c);

#endif /* POSFS_STORE_BCACHE_H */
