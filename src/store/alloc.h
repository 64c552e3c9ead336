/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The in-memory free-space index of one shard (private to src/store).
 *
 * The on-disk free-space B+tree (POSFS_MAGIC_FREE) is the persistent
 * record; at mount the store loads every free extent of it into a
 * struct pfs_alloc with pfs_alloc_add_free, and from then on every
 * allocation decision of the shard is made here. Nothing here does I/O.
 *
 * Block numbers are u64; an extent [start, start + len) has len >= 1 and
 * start + len <= UINT64_MAX (so block UINT64_MAX is never free, and
 * PFS_ALLOC_NO_HINT cannot name a free block).
 *
 * Two kinds of space are tracked:
 *   free     extents that may be handed out now. Kept fully merged:
 *            adjacent free extents are always one extent.
 *   pending  ranges freed by a transaction that is not yet durable, each
 *            with the commit sequence number that frees it. They are not
 *            handed out until pfs_alloc_release_upto says that sequence is
 *            durable (deferred reuse: a crash before then must find the
 *            old data where the old metadata points).
 * A block is at most one of free, pending or in use; freeing a block that
 * is already free or pending is a double free and is refused (-EEXIST),
 * never merged silently.
 *
 * Aborted transactions: give back what the transaction took with
 * pfs_alloc_add_free (one call per range it took, any order), and cancel
 * the deferrals it made with pfs_alloc_undefer (per range) or
 * pfs_alloc_undefer_seq (all of one sequence). These calls can fail only
 * with -ENOMEM, and not at all after pfs_alloc_reserve(a, k) for k calls
 * (call it when the ranges are taken, say, where failing is fine).
 *
 * Cost: O(log n) per operation in the number of extents, with no scans:
 * four in-memory B+trees (free extents by start and by (length, start),
 * pending ranges by start and by (seq, start)) in nodes from a pool that
 * grows in slabs and shrinks only at pfs_alloc_fini, so the steady state
 * does not call malloc. Some 60 to 80 bytes per free extent.
 *
 * Errors: 0 or -errno. -EINVAL: len 0 or an extent past UINT64_MAX.
 * -ENOMEM: the node pool could not grow (nothing changed).
 *
 * Locking: none inside. A struct pfs_alloc belongs to one shard and every
 * call is made under that shard's lock (the iteration callbacks included).
 */
#ifndef POSFS_STORE_ALLOC_H
#define POSFS_STORE_ALLOC_H

#include <stddef.h>
#include <stdint.h>

/* "No preferred position" for the hint argument of the allocators. */
#define PFS_ALLOC_NO_HINT UINT64_MAX

struct pfs_alloc_btnode;
struct pfs_alloc_slab;

/* An in-memory B+tree (private to alloc.c). */
struct pfs_alloc_bt {
	struct pfs_alloc_btnode *root;
	size_t count;				/* entries */
};

/*
 * One shard's index. The fields are private to alloc.c; callers embed the
 * struct and use the functions below.
 */
struct pfs_alloc {
	struct pfs_alloc_bt free_by_start;	/* start -> len */
	struct pfs_alloc_bt free_by_len;	/* (len, start) */
	struct pfs_alloc_bt pend_by_start;	/* (start, seq) -> len */
	struct pfs_alloc_bt pend_by_seq;	/* (seq, start) -> len */
	uint64_t free_blocks;
	uint64_t pending_blocks;
	struct pfs_alloc_btnode *spare;		/* node pool free list */
	size_t spare_count;
	struct pfs_alloc_slab *slabs;		/* every slab, for fini */
};

/* ---- life cycle --------------------------------------------------------- */

/* An empty index (nothing free, nothing pending). Returns 0. */
int pfs_alloc_init(struct pfs_alloc *a);

/* Free everything the index holds. a may then be initialised again. */
void pfs_alloc_fini(struct pfs_alloc *a);

/*
 * Grow the node pool now so that the next `calls' calls that change the
 * index (whichever they are) cannot fail with -ENOMEM. The bound allows
 * the trees to grow by one level meanwhile, which takes the index growing
 * many times over.
 * Errors: -ENOMEM (the pool may have grown part of the way).
 */
int pfs_alloc_reserve(struct pfs_alloc *a, size_t calls);

/* ---- free space --------------------------------------------------------- */

/*
 * Make [start, start + len) free: loading the on-disk tree at mount, and
 * giving space back (an aborted transaction's allocations, for instance).
 * Merges with adjacent free extents.
 * Errors: -EINVAL; -EEXIST if any block of the range is already free or
 * pending (a double free; nothing changed); -ENOMEM.
 */
int pfs_alloc_add_free(struct pfs_alloc *a, uint64_t start, uint64_t len);

/*
 * Remove the specific range [start, start + len), which must be entirely
 * free (WAL replay, fsck, a caller that chose the blocks itself).
 * Errors: -EINVAL; -ENOENT if some block of it is not free (nothing
 * changed); -ENOMEM.
 */
int pfs_alloc_take(struct pfs_alloc *a, uint64_t start, uint64_t len);

/*
 * Allocate exactly len contiguous blocks; *start receives the first.
 * Policy, in order:
 *   1. Continuation: if hint != PFS_ALLOC_NO_HINT, block hint is free and
 *      the free extent holding it extends at least len blocks from hint,
 *      the result is hint (a file grows in place).
 *   2. Best fit: among the free extents with len >= the request, those of
 *      the smallest length; of these the one whose start is nearest hint
 *      (|start - hint|; on a tie, or with no hint, the lowest start). The
 *      blocks are taken from that extent's start.
 * Errors: -EINVAL; -ENOSPC if no free extent holds len blocks (nothing
 * changed); -ENOMEM (nothing changed).
 */
int pfs_alloc_best_fit(struct pfs_alloc *a, uint64_t len, uint64_t hint,
		       uint64_t *start);

/*
 * Allocate up to len contiguous blocks, for a write that can be split:
 * *start receives the first and *got how many (1 <= *got <= len). If len
 * blocks are available contiguously this is exactly pfs_alloc_best_fit;
 * otherwise the whole of a largest free extent is taken (the one whose
 * start is nearest hint among the largest, ties to the lowest start).
 * Errors: -EINVAL (len 0); -ENOSPC only when nothing at all is free;
 * -ENOMEM as for pfs_alloc_best_fit.
 */
int pfs_alloc_some(struct pfs_alloc *a, uint64_t len, uint64_t hint,
		   uint64_t *start, uint64_t *got);

/* Free blocks (pending ones not included), and free extents. */
uint64_t pfs_alloc_free_blocks(const struct pfs_alloc *a);
size_t pfs_alloc_extent_count(const struct pfs_alloc *a);

/*
 * The free extent that holds block blk, or else the first one after it:
 * *start, *len. Errors: -ENOENT if there is none.
 */
int pfs_alloc_find(const struct pfs_alloc *a, uint64_t blk, uint64_t *start,
		   uint64_t *len);

/*
 * Callback for the iterations: one extent or pending range (seq is 0 for
 * free extents). A non-zero return stops the walk, which returns it. The
 * callback must not change the index.
 */
typedef int (*pfs_alloc_iter_fn)(void *arg, uint64_t start, uint64_t len,
				 uint64_t seq);

/*
 * Call fn for every free extent that ends after block from (that is,
 * starting with the one holding or following from; 0 for all), in order
 * of start. Returns 0 or fn's first non-zero return.
 */
int pfs_alloc_foreach_free(const struct pfs_alloc *a, uint64_t from,
			   pfs_alloc_iter_fn fn, void *arg);

/* ---- deferred reuse ----------------------------------------------------- */

/*
 * Record that [start, start + len) is freed by the transaction with
 * commit sequence seq: it becomes pending, not free. Adjacent pending
 * ranges of the same seq are merged into one record.
 * Errors: -EINVAL; -EEXIST if any block of it is already free or pending
 * (nothing changed); -ENOMEM.
 */
int pfs_alloc_defer(struct pfs_alloc *a, uint64_t start, uint64_t len,
		    uint64_t seq);

/*
 * Sequences up to durable_seq are durable: every pending range with
 * seq <= durable_seq becomes free (merging), lowest seq first.
 * Errors: -ENOMEM (the ranges released so far are free, the others still
 * pending: nothing is lost, call again); -EUCLEAN only if the index's own
 * invariants were broken (a pending range overlapping free space; it
 * stays pending).
 */
int pfs_alloc_release_upto(struct pfs_alloc *a, uint64_t durable_seq);

/*
 * Cancel a deferral (the transaction that freed the range aborted): the
 * blocks of [start, start + len) go back to in use. The range must be
 * entirely pending; it may span records of several sequences.
 * Errors: -EINVAL; -ENOENT if some block is not pending (nothing
 * changed); -ENOMEM.
 */
int pfs_alloc_undefer(struct pfs_alloc *a, uint64_t start, uint64_t len);

/*
 * Cancel every pending range of sequence seq (back to in use). Never
 * allocates. Returns 0, whether or not there were any.
 */
int pfs_alloc_undefer_seq(struct pfs_alloc *a, uint64_t seq);

/* Pending blocks, and pending records. */
uint64_t pfs_alloc_pending_blocks(const struct pfs_alloc *a);
size_t pfs_alloc_pending_count(const struct pfs_alloc *a);

/* Call fn for every pending record in order of start (as for free). */
int pfs_alloc_foreach_pending(const struct pfs_alloc *a, pfs_alloc_iter_fn fn,
			      void *arg);

/* ---- checking ----------------------------------------------------------- */

/*
 * Verify every invariant of the index (O(n log n)): each B+tree is sound
 * (uniform depth, node fill, keys ordered within and across nodes,
 * separators bounding their subtrees, the leaf chain, its entry count);
 * free extents are sorted, non-empty, non-overlapping and non-adjacent;
 * the length index holds exactly the extents of the start index; pending
 * ranges are sorted and overlap neither each other nor free space; the
 * seq index holds exactly the pending ranges; the counters are exact.
 * Errors: -EUCLEAN at the first violation.
 */
int pfs_alloc_check(const struct pfs_alloc *a);

#endif /* POSFS_STORE_ALLOC_H */
