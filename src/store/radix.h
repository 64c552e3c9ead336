/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The onode radix tree of a shard (private to src/store and its
 * second user, the checker in src/check): maps an object's
 * number within its shard (its local number, POSFS_OID_LOCAL(oid), 0 ..
 * 2^48-1) to its 512-byte onode. The layout is format.h's (struct
 * pfs_dradix, struct pfs_donode_leaf); see radix.c for the design.
 *
 * Every function works inside a transaction (src/store/tx.h) and follows
 * its rules: on an error other than the ones a function says leave the
 * tree unchanged, the caller aborts the transaction and restores its copy
 * of the root (T2). The functions only ever write *rx->root on success.
 *
 * Locking: none of its own. The store holds the shard's lock for the whole
 * transaction, which covers the tree and its root.
 *
 * Errors common to all: -EINVAL for an argument out of range (a number
 * above 2^48-1, an onode of another shard, a shard above 255, a block
 * size that is not a power of two in 4 KiB .. 64 KiB); -EUCLEAN for a
 * tree that is not what it must be (a node of the wrong type, owner or
 * level, a count out of range, an onode whose oid is not its position,
 * a root whose blkno and height disagree); -EBADMSG, -EIO, -ENOMEM from
 * reading a block (pfs_tx_get); -ENOSPC, -ENOMEM from allocating one.
 */
#ifndef POSFS_STORE_RADIX_H
#define POSFS_STORE_RADIX_H

#include <stdbool.h>
#include <stdint.h>

#include "posfs/disk.h"
#include "store/tx.h"

/*
 * A shard's tree: root points at the caller's root (it lives in the shard
 * header state: {0, 0} for an empty tree, else the root block and the
 * height, 1 when the root is a leaf). Node blocks are allocated from, and
 * owned by (POSFS_OWNER_SHARD), shard.
 */
struct pfs_radix {
	struct pfs_tree_root *root;
	uint32_t shard;
};

/* The highest height a tree can have for block size bs (the smallest one
 * that covers every number up to 2^48-1: 7 for 4 KiB, 5 for 64 KiB), or 0
 * for a block size posfs does not support. */
uint32_t pfs_radix_max_height(uint32_t bs);

/* The block verifier of a radix node (blockops.h, BV1, BV2): 0 or
 * -EUCLEAN. */
int pfs_radix_node_verify(uint32_t bs, const void *data, const struct pfs_blockhdr *h);

/*
 * Read the onode of number local into *o. One descent from the root, no
 * allocation. The slot is decoded with pfs_onode_from_disk and its oid
 * must be POSFS_OID(rx->shard, local).
 * Errors: -ENOENT when there is no such object (nothing is changed),
 * -EUCLEAN when the slot does not decode or holds another oid. *o is
 * undefined after an error.
 */
int pfs_radix_lookup(struct pfs_tx *tx, const struct pfs_radix *rx,
		     uint64_t local, struct pfs_onode *o);

/*
 * Insert onode o at its number POSFS_OID_LOCAL(o->oid). o->oid must be of
 * shard rx->shard and not 0 (so number 0 of shard 0 cannot be stored), and
 * o must encode to a slot pfs_onode_from_disk accepts (else -EINVAL,
 * nothing changed). The tree grows in height as the number needs: new
 * roots are stacked above the old one (as its child 0), and the missing
 * nodes along the path are allocated. *rx->root is updated on success.
 * Errors: -EEXIST when the number is taken (nothing is changed), -ENOSPC.
 */
int pfs_radix_insert(struct pfs_tx *tx, const struct pfs_radix *rx,
		     const struct pfs_onode *o);

/*
 * Replace the onode at POSFS_OID_LOCAL(o->oid) with o (same checks of o as
 * insert). Errors: -ENOENT when absent (nothing is changed), -EUCLEAN
 * when the slot there holds another oid.
 */
int pfs_radix_update(struct pfs_tx *tx, const struct pfs_radix *rx,
		     const struct pfs_onode *o);

/*
 * Remove the onode of number local. A leaf left empty is released, and so
 * is every interior node left without a child, up to the root (the tree
 * becomes {0, 0}); then while the root is an interior node whose only
 * child is child 0, that child becomes the root (the height shrinks).
 * *rx->root is updated on success. Nothing is allocated: no -ENOSPC.
 * Errors: -ENOENT when absent (nothing is changed), -EUCLEAN when the slot
 * holds another oid or a node's count disagrees with its entries at the
 * point where the removal relies on it.
 */
int pfs_radix_remove(struct pfs_tx *tx, const struct pfs_radix *rx,
		     uint64_t local);

/*
 * Find the present object with the smallest number >= *local: set *local
 * to its number and decode it into *o (checked as by lookup). Empty
 * subtrees are skipped through the child pointers, so a walk over the
 * whole tree costs about one visit per node. To iterate, call again with
 * *local + 1. *local above 2^48-1 is simply the end.
 * Errors: -ENOENT when there is none. After any error *local is
 * unchanged and *o undefined.
 */
int pfs_radix_next(struct pfs_tx *tx, const struct pfs_radix *rx,
		   uint64_t *local, struct pfs_onode *o);

/*
 * The hot path: the slot of number local in place. *leaf gets the leaf
 * buffer (a reference the caller puts with pfs_buf_put) and *slot a
 * pointer into it, valid while the reference is held. With dirty the leaf
 * is declared dirty (pfs_tx_dirty) so the caller may change the slot; it
 * must not change the oid (use pfs_radix_remove to free a slot) and must
 * leave a slot that pfs_onode_from_disk accepts. Only the oid is checked
 * here (it must be POSFS_OID(rx->shard, local)): a caller that trusts
 * other fields decodes them with pfs_onode_from_disk or checks them.
 * Errors: -ENOENT when absent (nothing dirtied, *leaf NULL), -EUCLEAN.
 */
int pfs_radix_slot(struct pfs_tx *tx, const struct pfs_radix *rx,
		   uint64_t local, bool dirty, struct pfs_buf **leaf,
		   struct pfs_donode **slot);

/* What pfs_radix_salvage reports through pfs_radix_check_ops.bad. */
enum pfs_radix_bad {
	PFS_RADIX_BAD_NODE = 1,		/* blkno unreadable, or not the node its
					 * place needs: its subtree is lost */
	PFS_RADIX_BAD_ONODE = 2,	/* slot of leaf blkno does not decode or
					 * holds another number */
	PFS_RADIX_BAD_COUNT = 3,	/* blkno's nr, flags or unused bytes */
};

/* What pfs_radix_check calls; any function may be NULL. A negative
 * return stops the walk and is returned by pfs_radix_check. */
struct pfs_radix_check_ops {
	/* every node block, parents before children, in key order; in a
	 * salvage, PFS_RADIX_CUT cuts the node from the tree unread (a block
	 * that is already in use elsewhere) */
	int (*node)(void *arg, uint64_t blkno, uint16_t level);
	/* every onode, in number order, after its leaf's node() */
	int (*onode)(void *arg, uint64_t local, const struct pfs_onode *o);
	/* salvage only: a problem; return PFS_RADIX_CUT to repair it, 0 to
	 * leave it (a bad subtree is then skipped), < 0 to stop */
	int (*bad)(void *arg, enum pfs_radix_bad what, uint64_t blkno, uint32_t slot, int err);
	/* salvage only: node blkno, given to node() before, is out of the
	 * tree after repairs (left empty, or a root that stepped down) */
	void (*cut)(void *arg, uint64_t blkno);
	void *arg;
};

#define PFS_RADIX_CUT 1

struct pfs_radix_stats {
	uint32_t height;
	uint64_t interior;		/* interior blocks */
	uint64_t leaves;		/* leaf blocks */
	uint64_t onodes;		/* objects */
};

/*
 * fsck walk of the whole tree: the root's blkno and height agree and the
 * height is at most pfs_radix_max_height; every node is of the right
 * type, owner and level along its path, has flags 0, and nr equal to its
 * used slots or non-zero children, never 0; the root, when interior, does
 * not have child 0 as its only child; every slot decodes
 * (pfs_onode_from_disk: a free slot is all zeros), every onode's oid is
 * POSFS_OID(rx->shard, its position) and the bytes after a leaf's last
 * slot are zero. A block shared by two parents shows up as an onode in
 * the wrong position. ops and stats may be NULL.
 * Errors: -EUCLEAN at the first problem; -EBADMSG, -EIO, -ENOMEM from
 * reading; whatever a callback returns.
 */
int pfs_radix_check(struct pfs_tx *tx, const struct pfs_radix *rx,
		    const struct pfs_radix_check_ops *ops,
		    struct pfs_radix_stats *stats);

/*
 * fsck repair walk: as pfs_radix_check, but a problem goes to ops->bad and
 * the walk goes on. A repair (bad() or node() returning PFS_RADIX_CUT)
 * needs a writable tx: a bad node is cut from its parent (the root: the
 * tree becomes empty, *rx->root {0, 0}), a bad slot zeroed, a wrong
 * header corrected; a node left without children or onodes is cut in
 * turn. The objects under a cut node are lost; their blocks are no longer
 * in the tree (fsck's space pass finds them free). The root's shape (R4)
 * is not checked. Errors: -EINVAL for a bad rx, -EROFS for a repair in a
 * read-only tx, -ENOMEM, -EIO, a callback's negative return.
 */
int pfs_radix_salvage(struct pfs_tx *tx, const struct pfs_radix *rx,
		      const struct pfs_radix_check_ops *ops,
		      struct pfs_radix_stats *stats);

#endif /* POSFS_STORE_RADIX_H */
