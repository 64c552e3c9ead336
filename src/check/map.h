/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The scratch maps of fsck (private to src/check and fsck/).
 *
 * fsck keeps what it learns about inodes and blocks (link counts found,
 * parent found, type, reference counts) in maps from a 64-bit key to a
 * fixed-size value. For ordinary devices they live in memory. A device
 * whose maps would not fit in memory can still be checked: the maps are
 * made in an environment with a memory limit and a scratch directory, and
 * when they would grow past the limit every map of the environment moves
 * into one LMDB database in that directory and stays there.
 *
 * Environment. The maps of one fsck run share one struct pfs_map_env: one
 * memory limit (for all of them together) and, when it has a scratch
 * directory, one LMDB file there, each map a named sub-database of it.
 * The file is made by mkstemp in the scratch directory when the
 * environment is created and unlinked as soon as LMDB has it open, so
 * nothing is left behind, however fsck ends. Nothing in it is durable and
 * nothing is ever read back by another run.
 *
 * Memory limit. The bytes counted are those of the maps' hash tables and
 * of the sort arrays pfs_map_iterate makes; with a scratch directory they
 * never exceed mem_limit (a put or an iterate that would take them past it
 * moves the environment to LMDB first). Not counted: the small fixed
 * structs, and in LMDB mode a change log of at most 4 MiB and LMDB's own
 * bookkeeping; the scratch file's pages are the kernel's page cache. In
 * memory a record takes (8 + vsize) / load bytes, the load being between
 * 0.35 and 0.7; in LMDB about 20 + vsize bytes of file just after the
 * move (full pages), up to twice that after random changes.
 *
 * Scratch space. The scratch file is reserved on disk (posix_fallocate)
 * before LMDB may use it, so a full scratch file system is an -ENOSPC
 * from the call that needed the room, never a SIGBUS.
 *
 * Errors: 0 or -errno.
 *   -EINVAL   an argument out of range (vsize, name, options).
 *   -ENOENT   no such key.
 *   -ENOMEM   malloc failed (nothing changed).
 *   -ENOSPC   LMDB mode: the scratch file could not grow (the call that
 *             needed the room changed nothing; the maps stay usable).
 *   -EBUSY    a change to a map from inside its own iteration.
 *   -EIO      any other LMDB failure.
 * Creating an environment with a scratch directory also returns what
 * making a file there returns: -ENOENT, -ENOTDIR, -EACCES, -EROFS and so
 * on. A few failures leave an environment broken (the move to LMDB
 * failing after it began taking the hash tables apart, LMDB unable to map
 * its file again): from then on every call on it returns that error.
 *
 * Locking: none. An environment and its maps belong to one thread.
 */
#ifndef POSFS_CHECK_MAP_H
#define POSFS_CHECK_MAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Value sizes, and the most maps one environment may hold. */
#define PFS_MAP_VSIZE_MAX	64
#define PFS_MAP_MAX_MAPS	64
#define PFS_MAP_NAME_MAX	63

struct pfs_map;
struct pfs_map_env;

struct pfs_map_opts {
	const char *scratch_dir;	/* NULL: memory only */
	uint64_t mem_limit;		/* bytes all maps of the env may use
					 * before moving to LMDB; 0: no limit */
};

/* ---- environments ------------------------------------------------------- */

/*
 * Make an environment; o may be NULL (memory only, no limit). With both a
 * scratch_dir and a mem_limit the scratch file is made now, so that a bad
 * directory is reported before the check begins rather than in the middle
 * of it. Without a mem_limit the scratch directory is never used, and not
 * looked at; without a scratch_dir the limit is ignored (the maps grow in
 * memory until malloc fails).
 * Errors: -EINVAL (empty scratch_dir); -ENOMEM; from the scratch directory
 * -ENOENT, -ENOTDIR, -EACCES, -EROFS, -ENOSPC, ...; -EIO (LMDB would not
 * open the file).
 */
int pfs_map_env_create(const struct pfs_map_opts *o, struct pfs_map_env **ep);

/* Free the environment and every map made in it. e may be NULL. */
void pfs_map_env_destroy(struct pfs_map_env *e);

/* ---- maps --------------------------------------------------------------- */

/*
 * A map of 64-bit keys to vsize-byte values (1 .. PFS_MAP_VSIZE_MAX), in
 * memory or, if the environment has moved, in LMDB. name (1 ..
 * PFS_MAP_NAME_MAX bytes, unique in the environment) names its LMDB
 * sub-database. The map lives until the environment is destroyed.
 * Errors: -EINVAL; -EEXIST (name taken); -EMFILE (PFS_MAP_MAX_MAPS maps
 * already); -ENOMEM; in LMDB mode -ENOSPC, -EIO.
 */
int pfs_map_create(struct pfs_map_env *e, const char *name, size_t vsize,
		   struct pfs_map **mp);

/* Copy the value of key into val (vsize bytes). Errors: -ENOENT, -EIO. */
int pfs_map_get(struct pfs_map *m, uint64_t key, void *val);

/*
 * Insert key with value val, or replace its value. May move the whole
 * environment to LMDB (see above).
 * Errors: -ENOMEM, -ENOSPC (nothing changed); -EBUSY; -EIO.
 */
int pfs_map_put(struct pfs_map *m, uint64_t key, const void *val);

/* Remove key. Errors: -ENOENT (nothing changed); -EBUSY; -ENOSPC, -EIO. */
int pfs_map_del(struct pfs_map *m, uint64_t key);

/* Records in the map. */
uint64_t pfs_map_count(const struct pfs_map *m);

/*
 * Callback of pfs_map_iterate: one record. val points at a copy of the
 * value, aligned for any type and valid until fn returns. A non-zero
 * return stops the iteration, which returns it.
 */
typedef int (*pfs_map_fn)(void *arg, uint64_t key, const void *val);

/*
 * Call fn for every record of m in increasing key order. fn must not
 * change m (a put or del on m from fn returns -EBUSY); it may read m, and
 * read and change the other maps of the environment, even when that moves
 * the environment to LMDB: the iteration carries on from the next key.
 * In memory this sorts the keys (O(n log n), 8 bytes per record, counted
 * against the limit: if they do not fit, the environment moves first).
 * Returns 0, fn's first non-zero return, or -ENOMEM, -ENOSPC, -EIO.
 */
int pfs_map_iterate(struct pfs_map *m, pfs_map_fn fn, void *arg);

/* Is this map (and with it every map of its environment) in LMDB now? */
bool pfs_map_on_disk(const struct pfs_map *m);

#endif /* POSFS_CHECK_MAP_H */
