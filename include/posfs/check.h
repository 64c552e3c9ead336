/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libposfs checker (src/check): the engine of fsck.posfs. It checks a
 * posfs device in passes and repairs what it is allowed to:
 *
 *   pass 0  superblocks and shard headers, then WAL replay (in memory
 *           only when no change is allowed)
 *   pass 1  objects: each shard's onode radix tree, each object's extent
 *           map and omap; every block found in use is marked
 *   pass 2  space: the free-space trees against the blocks in use, the
 *           shared-blob counts, the shard counters
 *   pass 3  namespace: directory entries, reachability, link counts,
 *           '..', the orphan lists
 *   pass 4  data (deep mode only): every data block of every regular file
 *           and symlink read and verified against its data checksums; the
 *           damaged files named by path
 *
 * Each problem has a stable code (PFS_PROBLEMS below, listed in
 * fsck.posfs(8)); the caller's ask() decides for each whether to fix it.
 * Damaged file data has no fix (there is no second copy to take it
 * from): it is reported, counted apart from the problems, and leaves the
 * superblock's error state alone (that state is for metadata).
 * The store and the namespace layer are reused for every read and every
 * repair, so the checker reads the format exactly as the daemon does.
 */
#ifndef POSFS_CHECK_H
#define POSFS_CHECK_H

#include <stdbool.h>
#include <stdint.h>

#include "posfs/io.h"
#include "posfs/store.h"

struct pfs_dev;

/*
 * X(code, name, preen, what is wrong, what the fix does). preen: the fix
 * is safe to make without asking (fsck -p), as e2fsck's PR_PREEN_OK. A
 * fix of NULL: fsck cannot repair it (ask() is told, its answer unused).
 * Codes are never renumbered: pass in the high byte.
 */
#define PFS_PROBLEMS(X)								\
	X(0x0001, SB_PRIMARY, 1, "primary superblock is damaged", "rewrite it from the backup") \
	X(0x0002, SB_BACKUP, 1, "backup superblock is damaged or out of date", "rewrite it") \
	X(0x0003, SHARD_SLOT, 1, "a shard header slot is damaged", "rewrite it from the other slot") \
	X(0x0101, RADIX_NODE, 0, "onode tree block is damaged", "cut it from the tree (the objects under it are lost)") \
	X(0x0102, ONODE, 0, "onode is damaged", "clear it (the object is lost)") \
	X(0x0103, RADIX_COUNT, 1, "onode tree block has a wrong count", "correct it") \
	X(0x0104, EXTENT_TREE, 0, "object's extent map is damaged", "drop the object's data (it reads as zeros)") \
	X(0x0105, EXTENT, 0, "extent points outside the data area or at blocks already in use", "drop the extent (a hole)") \
	X(0x0106, OMAP, 0, "object's omap is damaged", "drop its directory entries and large xattrs") \
	X(0x0107, BLOCKS, 1, "object's block count is wrong", "correct it") \
	X(0x0108, XATTRS, 0, "object's inline xattrs are damaged", "drop them") \
	X(0x0109, OMAP_COUNT, 1, "object's omap record or xattr count is wrong", "correct it") \
	X(0x0110, CSUM_TABLE, 1, "data checksum table block is damaged", "recompute its checksums from the data") \
	X(0x0201, FREE_TREE, 1, "free-space tree is damaged", "rebuild it") \
	X(0x0202, LEAK, 1, "blocks are neither in use nor free", "rebuild the free-space tree") \
	X(0x0203, FREE_USED, 1, "blocks in use are in the free-space tree", "rebuild the free-space tree") \
	X(0x0204, FREE_COUNT, 1, "free block count is wrong", "correct it") \
	X(0x0205, ONODE_COUNT, 1, "object count is wrong", "correct it") \
	X(0x0206, NEXT_LOCAL, 1, "next object number is not past the last object", "correct it") \
	X(0x0207, REFCOUNT, 0, "shared-blob counts are wrong or their tree is damaged", "rebuild the tree") \
	X(0x0301, ROOT, 0, "root directory is missing or not a directory", "make a new, empty root directory") \
	X(0x0302, DANGLING, 0, "entry points at an object that does not exist", "remove the entry") \
	X(0x0303, DIRENT_TYPE, 1, "entry's file type is not the object's", "correct it") \
	X(0x0304, DIRENT_INDEX, 1, "entry and its listing record disagree", "rebuild the listing record") \
	X(0x0305, DIR_LINKS, 0, "directory has more than one entry", "remove the extra entries") \
	X(0x0306, DOTDOT, 1, "directory's '..' is wrong", "correct it") \
	X(0x0307, UNREACHABLE, 0, "object is not reachable from the root", "connect it in /lost+found") \
	X(0x0308, NLINK, 1, "link count is wrong", "correct it") \
	X(0x0309, ORPHAN, 1, "unlinked object on an orphan list but not marked an orphan", "reclaim it") \
	X(0x030a, ORPHAN_RECORD, 1, "orphan list and object disagree", "correct the list and the object") \
	X(0x030b, LOST_FOUND, 0, "/lost+found is missing or not a directory", "make it") \
	X(0x030c, BAD_TYPE, 0, "object has no valid file type", "clear it") \
	X(0x0401, DATA_CSUM, 0, "file data does not match its checksums", NULL)

#define PFS_PROBLEM_ENUM_(code, name, preen, what, fix) PFS_PR_##name = code,
enum pfs_problem { PFS_PROBLEMS(PFS_PROBLEM_ENUM_) };
#undef PFS_PROBLEM_ENUM_

struct pfs_problem_desc {
	enum pfs_problem code;
	const char *name;		/* "SB_PRIMARY" */
	bool preen;
	const char *what;
	const char *fix;		/* NULL: no repair (damaged data) */
};

/* The description of a code, or NULL. */
const struct pfs_problem_desc *pfs_problem_desc(enum pfs_problem code);
/* Every description, in code order; *n gets the count. */
const struct pfs_problem_desc *pfs_problem_table(unsigned *n);

enum pfs_check_pass {
	PFS_PASS_SUPER = 0,
	PFS_PASS_OBJECTS = 1,
	PFS_PASS_SPACE = 2,
	PFS_PASS_NAMES = 3,
	PFS_PASS_DATA = 4,		/* deep mode only */
};

struct pfs_check_ops {
	/*
	 * Open the device (called once per store open: the checker may
	 * close and reopen the store between passes). The store owns what it
	 * returns. Required.
	 */
	int (*open_dev)(void *arg, bool readonly, struct pfs_dev **devp);
	/* A problem: return true to fix it. msg says where ("object 0x..:
	 * ..."). One with no fix (d->fix NULL) is only told: the answer is
	 * not used. Required. */
	bool (*ask)(void *arg, const struct pfs_problem_desc *d, const char *msg);
	/* Progress: pass, done, total (total may grow). May be NULL. */
	void (*progress)(void *arg, enum pfs_check_pass pass, uint64_t cur, uint64_t max);
	/* Informational lines (-v). May be NULL. */
	void (*info)(void *arg, const char *msg);
	/* Why a file system that was not forced is checked, at the end of
	 * pass 0: "contains a file system with errors", "was not cleanly
	 * unmounted"... (e2fsck's "check forced"). May be NULL. */
	void (*forced)(void *arg, const char *why);
	void *arg;
};

struct pfs_check_opts {
	bool readonly;			/* -n: open read-only, change nothing */
	bool force;			/* -f: check even if clean */
	const char *scratch_dir;	/* LMDB scratch maps go here ... */
	uint64_t mem_limit;		/* ... when the maps outgrow this (bytes) */
	bool deep;			/* -D: pass 4 reads every file's data (a
					 * clean file system is checked too) */
};

struct pfs_check_result {
	bool skipped;			/* clean, not forced nor deep: only
					 * pass 0 ran */
	uint64_t found;			/* problems found */
	uint64_t fixed;			/* of them fixed */
	uint64_t left;			/* found and not fixed */
	uint64_t replayed;		/* WAL records replayed */
	uint64_t damaged_files;		/* pass 4: files whose data does not
					 * verify (not counted in found or left) */
	uint64_t damaged_blocks;	/* pass 4: their blocks that do not */
	bool data_checked;		/* pass 4 ran to its end */
	/* what the file system holds (after repair) */
	uint64_t files, dirs, others;
	uint64_t blocks_total, blocks_used;
	uint32_t block_size;
	char label[65];
	bool maps_on_disk;		/* the scratch maps moved to LMDB */
	/* when the run fails on damage it cannot repair (-EUCLEAN,
	 * -EBADMSG): what it is; kind PFS_DAMAGE_NONE otherwise */
	struct pfs_store_damage damage;
};

/*
 * Check (and repair, by ask()'s answers) the posfs on the device ops
 * open. Returns 0 when the check ran to its end (result says what it
 * found and fixed, and in deep mode which files' data is damaged: each
 * one a DATA_CSUM ask()), or a -errno when it could not run: -EBADMSG /
 * -EUCLEAN (no valid superblock, a shard header lost, damage that stops
 * the walk: result->damage says what), -EOPNOTSUPP (unknown incompat
 * features), -EIO, -ENOMEM. A superblock marked with errors
 * (POSFS_STATE_ERRORS) is checked as if forced; a check that leaves
 * nothing clears the mark.
 */
int pfs_check_run(const struct pfs_check_opts *opts, const struct pfs_check_ops *ops,
		  struct pfs_check_result *res);

/* "Pass 1: Checking objects, extent maps and omaps": the line fsck prints
 * when a pass begins (NULL for a pass that does not exist). */
const char *pfs_check_pass_name(enum pfs_check_pass pass);

/* ---- src/check/undo.c: fsck's undo file ------------------------------------ */

/*
 * The undo file of fsck.posfs, as e2fsprogs' undo_io and e2undo have it:
 * the old contents of every 4096-byte unit of a device that fsck
 * overwrites, saved durably before the overwrite, in an LMDB database held
 * in one file. pfs_undo_restore() writes them back: the device is then bit
 * for bit what it was before fsck ran.
 *
 * Use: pfs_undo_create() on the device fsck opened, wrap that device with
 * pfs_dev_hook_wrap() whose before_write calls pfs_undo_save(), run fsck
 * on the hook device, then pfs_undo_close() before the hook device is
 * closed (the undo file reads the device at close).
 *
 * Identity: the undo file holds the device size and the crc32c of the
 * identity region, bytes [4096, 12288) (both superblocks), as it was at
 * create (before fsck) and at close (after fsck). Restore accepts a device
 * of the same size whose region matches one of them: after fsck, or
 * before (fsck never changed it, or a restore already completed, so
 * writing the units again changes nothing). A file never closed (fsck
 * crashed) knows no "after" state: when fsck wrote the region, only force
 * restores it.
 *
 * Every function returns 0 or a negative errno; nothing prints.
 */
#define PFS_UNDO_UNIT	4096u	/* bytes per saved unit */

struct pfs_undo;

/*
 * Create the undo file path (mode 0600, refused when path exists) for dev
 * and record dev's size and identity region. dev must stay open until
 * pfs_undo_close(). The file and its directory entry are durable on
 * return. On failure nothing is left at path (unless it existed).
 * Errors: -EEXIST, -EINVAL (NULL argument, an empty device, a logical
 * sector above 4096), -ENOMEM, -ENOSPC, a read error of dev, -EIO or
 * another -errno from LMDB or the file system.
 */
int pfs_undo_create(const char *path, struct pfs_dev *dev,
		    struct pfs_undo **up);

/*
 * Before [off, off + len) of dev is written: save the old contents of
 * every unit the range touches (a range not 4096-aligned: every unit it
 * touches) that is not saved yet, and make them durable (an fsync'ed LMDB
 * commit) before returning. A unit is saved once: its first copy, the
 * original, is never replaced. dev is the device of create (or the same
 * device through another handle, such as the inner device a hook device
 * passes to its callback). Thread-safe: calls are serialised. On failure
 * the units of this call may be partly saved; the caller must not write
 * the range. Errors: -EINVAL (range outside the device, a device of
 * another size), -ENOSPC (the undo file's map is full), dev's read
 * errors, -ENOMEM, -EIO or another -errno from LMDB.
 */
int pfs_undo_save(struct pfs_undo *u, struct pfs_dev *dev, uint64_t off,
		  size_t len);

/*
 * Record the identity region as it is now (the state after fsck), mark
 * the file complete (every write it covers has happened) and close it;
 * frees u whatever happens. Call it also after an error: the file stays
 * usable for restore. When the region cannot be read or the mark not
 * written, the file stays as a file never closed (see above) and the error
 * is returned. NULL is fine.
 */
int pfs_undo_close(struct pfs_undo *u);

/* Number of units saved so far through u. */
uint64_t pfs_undo_units(const struct pfs_undo *u);

/*
 * Write every unit saved in the undo file path back to dev and flush.
 * Everything is checked before anything is written: the file, every
 * unit's crc32c, and dev's identity (above). The identity region is
 * written last, after a flush, so an interrupted restore can be run again.
 * *units (may be NULL) gets the number of units written.
 * Errors: -ENOENT, -EINVAL (not an undo file; or a unit beyond dev's end
 * or not aligned to its sector, with force), -EUCLEAN (dev is not the
 * device the file was made for, or not in a state it can be restored
 * from; force skips this check), -EBADMSG (a damaged unit in the file),
 * -EROFS (dev is read-only), dev's read and write errors, -ENOMEM, -EIO
 * or another -errno from LMDB.
 */
int pfs_undo_restore(const char *path, struct pfs_dev *dev, bool force,
		     uint64_t *units);

#endif /* POSFS_CHECK_H */
