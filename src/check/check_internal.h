/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Private to src/check: the state of one check run and what the passes
 * share. The check layer is the one layer that looks inside the store
 * (src/store's private headers): it walks the trees with their own fsck
 * walks and repairs them in store transactions, so that nothing of the
 * format is read or written a second way.
 *
 * Division of work:
 *   check.c    the run: open, the passes in order, the superblock at the end
 *   super.c    pass 0: superblock pair, shard header slots
 *   objects.c  pass 1: onode trees, extent maps, omaps, the block map
 *   csums.c    pass 1, last: the data checksum tables
 *   space.c    pass 2: free-space trees, shared-blob counts, counters
 *   names.c    pass 3: the namespace (and the directory reading pass 4 uses)
 *   data.c     pass 4 (deep mode): data checksums, damaged files by path
 *   map.c      scratch maps (memory, or LMDB beyond a limit)
 *   undo.c     the undo file (LMDB)
 */
#ifndef POSFS_CHECK_INTERNAL_H
#define POSFS_CHECK_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>

#include "posfs/check.h"
#include "posfs/disk.h"
#include "posfs/store.h"
#include "check/map.h"

struct pfs_check {
	const struct pfs_check_opts *o;
	const struct pfs_check_ops *ops;
	struct pfs_check_result *res;
	struct pfs_store *st;		/* open during passes 1-3 */
	struct pfs_super sb;		/* as pass 0 found it */
	bool readonly;			/* -n: nothing may be written */
	struct pfs_map_env *maps;

	/* pass 0 findings, fixed when the store is opened writable */
	bool fix_super;			/* write both superblocks at the end */
	bool fix_slots;			/* checkpoint twice: every slot rewritten */
	uint64_t free_blocks;		/* the shard headers' sum, as pass 0 read them */

	/* pass 1 -> pass 2: blocks in use (one bit per device block) */
	uint8_t *used;
	uint64_t nblocks;		/* bits in used: total_blocks */
	struct pfs_map *shared;		/* pblk -> le32 extents found on it */
	uint64_t *max_local;		/* per shard: highest object number + 1 */
	uint64_t *onodes;		/* per shard: objects found */
	bool no_space;			/* pass 2 left a free tree that does not load */
	enum pfs_problem last;		/* the problem asked last */
	uint64_t trees_left;		/* damaged trees left in place */
	uint64_t tables_left;		/* damaged checksum table blocks left */

	/* pass 4: where the store's data_error reports go (NULL: nowhere) */
	struct pfs_check_data *data;
};

/*
 * Report a problem at the place fmt names. Returns true when it is to be
 * fixed (never with readonly); the caller then fixes it and calls
 * pfs_check_fixed, or pfs_check_unfixed when the fix failed.
 */
bool pfs_check_problem(struct pfs_check *c, enum pfs_problem code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void pfs_check_fixed(struct pfs_check *c);
void pfs_check_unfixed(struct pfs_check *c, int err);

/*
 * Report damage that has no repair (a problem whose fix is NULL: damaged
 * file data). Counted in res->damaged_files, not in found or left: the
 * superblock's error state is for metadata.
 */
void pfs_check_damage(struct pfs_check *c, enum pfs_problem code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void pfs_check_info(struct pfs_check *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void pfs_check_progress(struct pfs_check *c, enum pfs_check_pass pass, uint64_t cur,
			uint64_t max);

/* Block map of pass 1. */
static inline bool pfs_check_used(const struct pfs_check *c, uint64_t b)
{
	return b < c->nblocks && (c->used[b >> 3] >> (b & 7) & 1);
}

static inline void pfs_check_mark(struct pfs_check *c, uint64_t b)
{
	c->used[b >> 3] |= (uint8_t)(1u << (b & 7));
}

/* A block marked, then found to be in no structure after all (K2). */
static inline void pfs_check_unmark(struct pfs_check *c, uint64_t b)
{
	if (b < c->nblocks)
		c->used[b >> 3] &= (uint8_t)~(1u << (b & 7));
}

/* The passes: 0, or a -errno that stops the run. */
int pfs_check_super(struct pfs_check *c);
int pfs_check_objects(struct pfs_check *c);
int pfs_check_space(struct pfs_check *c);
int pfs_check_names(struct pfs_check *c);
int pfs_check_data(struct pfs_check *c);

/* Pass 1's last step (csums.c): every checksum table block read, the
 * damaged ones rewritten from the data (CSUM_TABLE). Progress goes on from
 * done of total, which counts pfs_check_csum_table_count's blocks. */
uint64_t pfs_check_csum_table_count(const struct pfs_check *c);
int pfs_check_csum_tables(struct pfs_check *c, uint64_t done, uint64_t total);

/* The store's data_error (pfs_store_opts), arg the struct pfs_check: a
 * block that does not match its checksums, for pass 4 (data.c). */
void pfs_check_data_error(void *arg, uint64_t oid, uint64_t off, uint64_t blkno);

/* ---- names.c: directories as src/fs writes them, for pass 4 ---------------- */

/* A well-formed directory entry. */
struct pfs_check_dirent {
	uint64_t ino;
	uint8_t type;			/* DT_* */
	uint16_t len;
	uint8_t name[POSFS_NAME_MAX];	/* not NUL-terminated */
};

/*
 * The next entry of directory dir, in name order, after the cursor (key,
 * *klen: 1 + POSFS_NAME_MAX bytes; *klen 0 before the first call), which
 * then moves to it. Entries pass 3 would remove (malformed, or naming no
 * inode) are passed over. Returns 1 with *e, 0 at the end, or -errno
 * (-ENOENT: no such object). Takes the shard lock for each call only.
 */
int pfs_check_dirent_next(struct pfs_store *st, uint64_t dir, uint8_t *key, size_t *klen,
			  struct pfs_check_dirent *e);

/* A name fit for a message, in buf (cap bytes): non-printing bytes as
 * \xNN, cut with "..." when it does not fit. Returns buf. */
const char *pfs_check_name_show(char *buf, size_t cap, const uint8_t *name, size_t len);

#endif /* POSFS_CHECK_INTERNAL_H */
