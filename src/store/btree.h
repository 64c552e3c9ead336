/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The store's B+tree of fixed-size records (private to src/store and its
 * second user, the checker in src/check): one
 * generic tree, specialised per tree by an ops table (as xfs's
 * libxfs/xfs_btree.h), used for the per-shard free-space tree, the
 * per-object extent trees and the per-shard shared-blob (refcount) tree.
 *
 * Records are passed in and out in their on-disk form (struct pfs_dfree,
 * struct pfs_dextent, struct pfs_drefcount: little-endian), so the tree
 * never converts them; keys are host-order uint64_t, unique in a tree.
 * Nodes are metadata blocks: struct pfs_dblock_hdr (level 0 = leaf, nr =
 * records) followed by nr records, leaf records in a leaf and struct
 * pfs_dbtree_ptr {key, child} in an interior node. Capacity is
 * (block_size - 64) / record size; every node but the root holds at least
 * a quarter of it. The key of an interior record is exactly the smallest
 * key of its child's subtree (see btree.c).
 *
 * Blocks are read, changed, allocated and released only through the
 * transaction of src/store/tx.h (rules T1-T4). Errors common to every
 * function that reads the tree: -EUCLEAN (a node or record is not what it
 * must be: magic, owner, level along the path, nr, key bounds, a record
 * the ops' validator rejects, a height above PFS_BTREE_MAX_HEIGHT),
 * -EBADMSG (a node's checksum does not verify), -EIO, -ENOMEM (from the
 * transaction). A function that changes the tree may fail half way (rule
 * T2): the caller aborts the transaction and restores its copy of the
 * root. Insertions allocate every node they need before they change a
 * byte, so an -ENOSPC from pfs_btree_insert or pfs_btree_replace leaves the
 * tree (and the root) as it was.
 *
 * Locking: none here. A struct pfs_btree and its root belong to the
 * transaction's thread; the store holds the shard's lock around it.
 */
#ifndef POSFS_STORE_BTREE_H
#define POSFS_STORE_BTREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "posfs/disk.h"
#include "store/tx.h"

/* Levels a tree may have (root height). Deeper on disk is -EUCLEAN. */
#define PFS_BTREE_MAX_HEIGHT	32u

/* Largest leaf record an ops table may declare, in bytes. */
#define PFS_BTREE_REC_MAX	256u

/*
 * What makes one tree different from another.
 *
 * magic:      pfs_dblock_hdr.magic of its nodes (POSFS_MAGIC_*).
 * rec_size:   bytes of a leaf record, a multiple of 8, at most
 *             PFS_BTREE_REC_MAX.
 * key_off:    byte offset in a leaf record of its key, a little-endian
 *             64-bit integer (key_off + 8 <= rec_size). A plain offset
 *             rather than a callback: the binary search reads keys in its
 *             inner loop.
 * rec_check:  NULL, or checks one record alone: 0, or -EUCLEAN when the
 *             record cannot be valid (a zero length, a range that wraps).
 *             Every record read from disk that a function returns or hands
 *             to a callback goes through it (-EUCLEAN), and so does every
 *             record given to insert/update/replace (-EINVAL).
 * rec_order:  NULL, or checks two consecutive records of the tree (prev's
 *             key < next's key): 0, or -EUCLEAN when they overlap.
 *             pfs_btree_check calls it for each pair, across leaves too.
 *             Both callbacks may be handed unaligned pointers (a caller's
 *             buffer) and must read fields with memcpy-style loads.
 * name:       for messages ("free", "extent", "refcount").
 */
struct pfs_btree_ops {
	const char *name;
	uint32_t magic;
	uint16_t rec_size;
	uint16_t key_off;
	int (*rec_check)(const void *rec);
	int (*rec_order)(const void *prev, const void *next);
};

/* Free-space tree: POSFS_MAGIC_FREE, struct pfs_dfree keyed by start;
 * start > 0, len > 0, no wrap, no overlap between records (adjacent
 * records are allowed: merging them is the allocator's policy). */
extern const struct pfs_btree_ops pfs_btree_free_ops;
/* Extent tree of an object: POSFS_MAGIC_EXTENT, struct pfs_dextent keyed
 * by lblk; pfs_extent_from_disk must accept it; logical ranges do not
 * overlap. */
extern const struct pfs_btree_ops pfs_btree_extent_ops;
/* Shared-blob tree: POSFS_MAGIC_REFCOUNT, struct pfs_drefcount keyed by
 * pblk; pblk > 0, len > 0, refs >= 2, no wrap, no overlap. */
extern const struct pfs_btree_ops pfs_btree_refcount_ops;

/* The block verifier of a node of a tree of these ops (blockops.h, BV1,
 * BV2): 0 or -EUCLEAN. */
int pfs_btree_node_verify(const struct pfs_btree_ops *ops, uint32_t block_size,
			  const void *data, const struct pfs_blockhdr *h);

/*
 * One tree, as a caller names it for the length of an operation.
 *
 * root:   the caller's root (in a shard header or an onode); the tree
 *         functions change it when the height changes or the tree becomes
 *         empty ({0, 0}). The caller writes it back and restores it on an
 *         abort.
 * shard:  the shard new nodes are allocated from (pfs_tx_new).
 * owner:  pfs_dblock_hdr.owner of every node: the object's oid, or
 *         POSFS_OWNER_SHARD(n) for a shard's trees. Nodes of another owner
 *         are -EUCLEAN.
 */
struct pfs_btree {
	const struct pfs_btree_ops *ops;
	struct pfs_tree_root *root;
	uint32_t shard;
	uint64_t owner;
};

/* Records a node of this level holds with this block size. */
uint32_t pfs_btree_capacity(const struct pfs_btree_ops *ops,
			    uint32_t block_size, unsigned level);

/* The key of a leaf record of this tree. */
uint64_t pfs_btree_rec_key(const struct pfs_btree_ops *ops, const void *rec);

/* ---- lookups: one descent each ------------------------------------------ */

/*
 * The record with exactly this key (pfs_btree_lookup), the one with the
 * greatest key <= key (_le) or the smallest key >= key (_ge), copied into
 * rec (ops->rec_size bytes; rec may be NULL to test for presence).
 * Returns 0, -ENOENT when there is none, or an error above.
 */
int pfs_btree_lookup(struct pfs_tx *tx, const struct pfs_btree *bt,
		     uint64_t key, void *rec);
int pfs_btree_lookup_le(struct pfs_tx *tx, const struct pfs_btree *bt,
			uint64_t key, void *rec);
int pfs_btree_lookup_ge(struct pfs_tx *tx, const struct pfs_btree *bt,
			uint64_t key, void *rec);

/* ---- changes -------------------------------------------------------------- */

/*
 * Insert rec (ops->rec_size bytes, on-disk form). Splits full nodes on the
 * way (halves; an append at the right end of the tree or a prepend at its
 * left end splits 3:1 so that sequential inserts leave nodes 3/4 full).
 * -EEXIST: a record with its key is there (nothing changed). -EINVAL: the
 * record fails ops->rec_check. -ENOSPC: no block for a new node (nothing
 * changed). -EFBIG: the tree would pass PFS_BTREE_MAX_HEIGHT levels.
 */
int pfs_btree_insert(struct pfs_tx *tx, const struct pfs_btree *bt,
		     const void *rec);

/*
 * Replace the record with rec's key by rec (the key stays, the other
 * fields change). -ENOENT: no such record. -EINVAL: rec fails rec_check.
 */
int pfs_btree_update(struct pfs_tx *tx, const struct pfs_btree *bt,
		     const void *rec);

/*
 * Replace the record with key old_key by rec, whose key may differ (a free
 * extent allocated from its front, an extent merged with its left
 * neighbour). When the new key keeps the record's place among its
 * neighbours (the common case) this is one descent and an overwrite;
 * otherwise it is an insert then a delete. -ENOENT: no record old_key.
 * -EEXIST: another record has rec's key. -EINVAL: rec fails rec_check.
 * -ENOSPC (nothing changed), -EFBIG as pfs_btree_insert.
 */
int pfs_btree_replace(struct pfs_tx *tx, const struct pfs_btree *bt,
		      uint64_t old_key, const void *rec);

/*
 * Delete the record with this key. A node left below a quarter full is
 * merged with a sibling (when the two fit in 3/4 of a node) or takes
 * records from it; an interior root left with one child is replaced by
 * that child; an empty tree has root {0, 0}. Released nodes go back to the
 * shard at commit (pfs_tx_release). Never allocates. -ENOENT: no such
 * record (nothing changed).
 */
int pfs_btree_delete(struct pfs_tx *tx, const struct pfs_btree *bt,
		     uint64_t key);

/*
 * Release every node of the tree; the root becomes {0, 0}. If rec_fn is
 * not NULL it is called with each leaf record (checked by rec_check) in
 * key order before its leaf is released (to free an object's data extents
 * in the same pass); a nonzero return stops the walk and is returned.
 */
int pfs_btree_destroy(struct pfs_tx *tx, const struct pfs_btree *bt,
		      int (*rec_fn)(void *arg, const void *rec), void *arg);

/* ---- cursors -------------------------------------------------------------- */

/*
 * A position in a tree: the path of nodes from the root to a leaf and the
 * index taken at each level. A cursor holds a buffer reference on every
 * node of its path (rule T3), so it must be released before the
 * transaction commits, and it is invalid after any change to the tree
 * (release it, change, seek again). Lives on the caller's stack; no
 * allocation. Between records a cursor may sit before the first or after
 * the last record: next from before-first gives the first record, prev
 * from after-last gives the last.
 */
struct pfs_btree_path {
	uint32_t height;			/* levels held: 0 = none */
	uint32_t has_hi;			/* bit l: hi[l] bounds level l */
	struct pfs_buf *b[PFS_BTREE_MAX_HEIGHT];	/* node at each level, 0 = leaf */
	uint8_t *d[PFS_BTREE_MAX_HEIGHT];	/* pfs_buf_data(b[l]) */
	int32_t idx[PFS_BTREE_MAX_HEIGHT];	/* child / record index (leaf: -1 .. nr) */
	uint64_t hi[PFS_BTREE_MAX_HEIGHT];	/* every key of node l is below hi[l] */
};

struct pfs_btree_cur {
	struct pfs_tx *tx;
	const struct pfs_btree *bt;
	int err;				/* sticky error of a failed move */
	struct pfs_btree_path path;
};

/* Set up a cursor on bt; no I/O. */
void pfs_btree_cur_init(struct pfs_btree_cur *cur, struct pfs_tx *tx,
			const struct pfs_btree *bt);

/*
 * Position at the first record with key >= key (seek) or at the last with
 * key <= key (seek_le) and copy it to rec (may be NULL). -ENOENT: none; the
 * cursor then sits after the last (seek) or before the first (seek_le)
 * record, so prev / next still work.
 */
int pfs_btree_cur_seek(struct pfs_btree_cur *cur, uint64_t key, void *rec);
int pfs_btree_cur_seek_le(struct pfs_btree_cur *cur, uint64_t key, void *rec);

/*
 * Move to the next (previous) record and copy it to rec (may be NULL).
 * -ENOENT at the end (the start): the cursor stays there. After any other
 * error the cursor has released its path and keeps returning that error.
 */
int pfs_btree_cur_next(struct pfs_btree_cur *cur, void *rec);
int pfs_btree_cur_prev(struct pfs_btree_cur *cur, void *rec);

/* Drop the cursor's buffer references. Safe to call more than once. */
void pfs_btree_cur_release(struct pfs_btree_cur *cur);

/* ---- fsck ------------------------------------------------------------------ */

/*
 * Called by pfs_btree_check: node() for every node (blkno, level) before
 * its records, rec() for every leaf record in key order. Either may be
 * NULL. A nonzero return stops the walk and is returned by the check.
 */
struct pfs_btree_check_cb {
	int (*node)(void *arg, uint64_t blkno, unsigned level);
	int (*rec)(void *arg, const void *rec);
	void *arg;
};

struct pfs_btree_stats {
	uint32_t height;	/* the root's height */
	uint64_t nodes;		/* all nodes */
	uint64_t leaves;
	uint64_t records;	/* leaf records */
	uint64_t leaf_slots;	/* leaves * leaf capacity: records / leaf_slots is the fill */
	/* the first problem found (check returned -EUCLEAN or -EBADMSG) */
	uint64_t bad_blkno;	/* the node; 0 for a null pointer or an empty root with a height */
	uint32_t bad_level;
	const char *problem;	/* static text, NULL when none */
};

/*
 * Walk the whole tree and verify it: every node's header (magic, owner,
 * level = parent's level - 1, so every leaf at depth = root height), nr
 * within capacity and, except at the root, at least a quarter of it, an
 * interior root with at least two children, keys strictly increasing
 * within a node, each child's first key equal to its separator and its
 * last key below the next separator, every record accepted by rec_check
 * and consecutive records by rec_order, the root {0, 0} exactly when
 * empty. Strict key order with exact separators also means that no block
 * is reached twice; fsck marks blocks in use from the node callback, so a
 * block shared with another structure shows there.
 *
 * Returns 0; the first problem as -EUCLEAN (or the node's -EBADMSG) with
 * st->problem, bad_blkno and bad_level set; or a callback's nonzero value.
 * cb and st may be NULL.
 */
int pfs_btree_check(struct pfs_tx *tx, const struct pfs_btree *bt,
		    const struct pfs_btree_check_cb *cb,
		    struct pfs_btree_stats *st);

#endif /* POSFS_STORE_BTREE_H */
