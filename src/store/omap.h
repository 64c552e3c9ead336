/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The omap of an object (private to src/store and its
 * second user, the checker in src/check): an ordered key/value
 * B+tree. Directories keep their entries here, large xattrs too. The node
 * layout is format.h's (struct pfs_domap_node, pfs_domap_cell,
 * pfs_domap_vref); see omap.c for the design.
 *
 * Keys are 1 .. POSFS_OMAP_KEY_MAX (1024) bytes, ordered as memcmp over
 * the common length, the shorter first on a tie. Values are 0 ..
 * POSFS_OMAP_VALUE_MAX (64 KiB) bytes; a value too big to keep in its node
 * lives out of line in raw blocks whose crc32c is checked on every read.
 *
 * Every function works inside a transaction (src/store/tx.h) and follows
 * its rules: when a function fails (except where it says nothing was
 * changed), the caller aborts the transaction and restores its copies of
 * *root and *count (T2). They are only written on the way to success.
 *
 * Locking: none of its own. The store holds the object's shard for the
 * whole transaction, which covers the tree, its root and its count.
 *
 * Errors common to all: -EINVAL for an argument out of range (a key of 0
 * or more than 1024 bytes, a value above 64 KiB, a block size that is not
 * a power of two in 4 KiB .. 64 KiB); -EUCLEAN for a tree that is not what
 * it must be (a node of the wrong type, owner or level, a cell or field
 * out of its block, a root whose blkno and height disagree, a height above
 * PFS_OMAP_MAX_HEIGHT); -EBADMSG for a block or an out-of-line value whose
 * checksum does not verify; -EIO, -ENOMEM from reading a block
 * (pfs_tx_get); -ENOSPC, -ENOMEM from allocating one or from the scratch
 * memory that splits and merges use.
 */
#ifndef POSFS_STORE_OMAP_H
#define POSFS_STORE_OMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "posfs/disk.h"
#include "store/tx.h"

/* Most levels an omap tree may have (deeper is corrupt). */
#define PFS_OMAP_MAX_HEIGHT	32u

/* The block verifier of an omap node (blockops.h, BV1, BV2): 0 or
 * -EUCLEAN. */
int pfs_omap_node_verify(uint32_t bs, const void *data, const struct pfs_blockhdr *h);

/*
 * One object's omap. root and count point at the caller's copies (they
 * live in the onode: omap and omap_count): root is {0, 0} for an empty
 * tree, else the root block and the height (1: the root is a leaf);
 * count is the exact number of records. New nodes and out-of-line values
 * are allocated from shard; owner (the object's oid) goes into every node
 * header and is checked on every read.
 */
struct pfs_omap {
	struct pfs_tree_root *root;
	uint64_t *count;
	uint32_t shard;
	uint64_t owner;
};

/*
 * Look key up. One descent, no allocation.
 *   val, vcap: where the value goes. val NULL asks only whether the key
 *     is there (and how long its value is): nothing is copied.
 *   vlen: if not NULL, receives the value's length whenever key is found,
 *     also with -ERANGE.
 * Errors: -ENOENT (not there), -ERANGE when val is given and vcap is
 * smaller than the value (nothing copied), -EBADMSG when an out-of-line
 * value's crc32c does not verify (val holds garbage then).
 */
int pfs_omap_get(struct pfs_tx *tx, const struct pfs_omap *om,
		 const void *key, size_t klen, void *val, size_t vcap,
		 size_t *vlen);

/*
 * Insert key -> val (vlen bytes; val may be NULL when vlen is 0), or
 * replace the value when key is there (an out-of-line old value is freed).
 * *count grows by one for a new key. The common case (a small value, room
 * in the leaf) allocates nothing and moves only slot offsets.
 */
int pfs_omap_set(struct pfs_tx *tx, const struct pfs_omap *om,
		 const void *key, size_t klen, const void *val, size_t vlen);

/*
 * As pfs_omap_set, but -EEXIST when key is already there (nothing is
 * changed then): a directory's create-exclusive in one descent.
 */
int pfs_omap_insert(struct pfs_tx *tx, const struct pfs_omap *om,
		    const void *key, size_t klen, const void *val, size_t vlen);

/*
 * Remove key (and free its out-of-line value). Nodes left below a quarter
 * full are merged with or refilled from a sibling, a root with one child
 * is collapsed, an empty tree is {0, 0}.
 * Errors: -ENOENT (nothing is changed).
 */
int pfs_omap_remove(struct pfs_tx *tx, const struct pfs_omap *om,
		    const void *key, size_t klen);

/*
 * Remove every key k with start <= k < end. start NULL (or slen 0) means
 * from the first key, end NULL to the last one. Out-of-line values are
 * freed and node space is given back as pfs_omap_remove does, one descent
 * per leaf touched. *removed (if not NULL) gets the number of records
 * removed (also on error: those removed so far). An empty range is not an
 * error.
 */
int pfs_omap_remove_range(struct pfs_tx *tx, const struct pfs_omap *om,
			  const void *start, size_t slen,
			  const void *end, size_t elen, uint64_t *removed);

/*
 * Release every node and every out-of-line value block of the tree;
 * *root becomes {0, 0} and *count 0.
 */
int pfs_omap_destroy(struct pfs_tx *tx, const struct pfs_omap *om);

/*
 * Ordered iteration. A cursor holds references to the blocks on its path
 * (rule T3): always call pfs_omap_cursor_release, also after an error and
 * before the transaction commits. A cursor is invalid after any change to
 * its tree (set, insert, remove, ...): resume with pfs_omap_cursor_seek_after
 * on the last key seen, which is what a readdir cookie leads back to.
 * The cursor struct is the caller's; no allocation.
 */
struct pfs_omap_cursor {
	struct pfs_tx *tx;
	struct pfs_omap om;
	uint32_t height;		/* 0: empty tree */
	bool end;			/* past the last record */
	struct pfs_buf *b[PFS_OMAP_MAX_HEIGHT];	/* b[level], level 0 = leaf */
	uint32_t idx[PFS_OMAP_MAX_HEIGHT];	/* position in b[level] */
};

/*
 * Position cur at the first key >= key (key NULL: at the first key).
 * On error cur holds nothing (release is still allowed).
 */
int pfs_omap_cursor_seek(struct pfs_tx *tx, const struct pfs_omap *om,
			 const void *key, size_t klen,
			 struct pfs_omap_cursor *cur);

/* Position cur at the first key > key (strictly after it): resuming an
 * iteration that last returned key, whether or not key still exists. */
int pfs_omap_cursor_seek_after(struct pfs_tx *tx, const struct pfs_omap *om,
			       const void *key, size_t klen,
			       struct pfs_omap_cursor *cur);

/*
 * Return the record at the cursor and step past it.
 *   key, kcap: buffer for the key (POSFS_OMAP_KEY_MAX is always enough);
 *     key NULL: the key is not copied.
 *   klen, vlen: if not NULL, receive the key's and the value's length.
 *   val, vcap: buffer for the value; val NULL: the value is not read.
 * Errors: -ENOENT past the last record; -ERANGE when a given buffer is too
 * small (klen and vlen are set and the cursor stays on the record, so the
 * caller can retry with bigger buffers); -EBADMSG for an out-of-line value
 * that does not verify (the cursor stays too).
 */
int pfs_omap_cursor_next(struct pfs_omap_cursor *cur, void *key, size_t kcap,
			 size_t *klen, void *val, size_t vcap, size_t *vlen);

/* Drop the cursor's references. Safe to call twice. */
void pfs_omap_cursor_release(struct pfs_omap_cursor *cur);

/* fsck: what a block reported to pfs_omap_check_ops.block is. */
enum pfs_omap_block_kind {
	PFS_OMAP_BLOCK_NODE = 1,	/* a tree node (metadata, PFOM) */
	PFS_OMAP_BLOCK_VINDEX = 2,	/* raw: index of a multi-block value */
	PFS_OMAP_BLOCK_VALUE = 3,	/* raw: bytes of an out-of-line value */
};

/*
 * Callbacks of pfs_omap_check (either may be NULL). A nonzero return
 * stops the walk and is what pfs_omap_check returns.
 *   block: every block the tree uses, once each as the tree names it
 *     (fsck marks them in use; a block named twice is fsck's to find).
 *   record: every record in key order, value included (out-of-line ones
 *     read and verified); the pointers are valid during the call only.
 */
struct pfs_omap_check_ops {
	int (*block)(void *arg, uint64_t blkno, enum pfs_omap_block_kind kind,
		     uint32_t level);
	int (*record)(void *arg, const void *key, size_t klen,
		      const void *val, size_t vlen);
	void *arg;
};

struct pfs_omap_stats {
	uint32_t height;
	uint64_t nodes;			/* node blocks, leaves included */
	uint64_t leaves;
	uint64_t records;
	uint64_t external;		/* records with an out-of-line value */
	uint64_t value_blocks;		/* raw blocks of those, index blocks included */
	uint64_t bytes_used;		/* cells and slots in all nodes */
	uint64_t bytes_free;		/* free bytes in all nodes, holes included */
};

/*
 * Walk the whole tree and verify it: every node's header (magic, owner,
 * level along the path, the slot array, free_start/free_end/free_bytes
 * agreeing with the cells), every cell inside its block and no two
 * overlapping, keys strictly increasing within a node and inside the
 * bounds its parent's separators give (an interior node's first key is
 * its parent's separator for it, empty along the leftmost path), uniform
 * depth, every node but the root at least a quarter full (in bytes) and
 * an interior node holding 2 children or more, every out-of-line value's
 * index and crc32c, and the number of records against *count.
 * ops and st may be NULL. Nothing is changed.
 * Errors: -EUCLEAN for the first problem found, -EBADMSG for a node or a
 * value whose checksum does not verify, a callback's nonzero return.
 */
int pfs_omap_check(struct pfs_tx *tx, const struct pfs_omap *om,
		   const struct pfs_omap_check_ops *ops,
		   struct pfs_omap_stats *st);

#endif /* POSFS_STORE_OMAP_H */
