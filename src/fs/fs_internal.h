/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Private to src/fs: the layer's in-memory state and the helpers its files
 * share.
 *
 * Lock order (outermost first; a thread never takes an earlier one while
 * holding a later one):
 *   1. fs->rename_lock: renames between two directories (loop checks read
 *      '..' chains, which only such renames change);
 *   2. directory locks (fs->dlock[], striped by inode number), several at
 *      once in increasing stripe index (struct pfs_lockset);
 *   3. inode locks (fs->ilock[], striped likewise), in increasing index:
 *      taken for read-modify-write of an inode's nlink, mode or open count;
 *   4. fs->state_lock: the inode state table, for short moments only;
 *      never held across a store call.
 * Store calls are made with any of 1-3 held; store callbacks never call
 * back into the layer.
 */
#ifndef POSFS_FS_INTERNAL_H
#define POSFS_FS_INTERNAL_H

#include <errno.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "fs/dent.h"
#include "posfs/format.h"
#include "posfs/fs.h"
#include "posfs/store.h"

#define PFS_FS_LOCKS		256u	/* stripes of directory and inode locks */
#define PFS_FS_STATE_BUCKETS	4096u	/* at first; doubled past 2 states a bucket */

/* What the layer remembers about an inode while mounted. */
struct pfs_istate {
	uint64_t ino;
	uint32_t opens;			/* pfs_fs_inode_open - release */
	bool linkable;			/* made by pfs_fs_tmpfile without O_EXCL, not linked yet */
	bool has_local, has_global;
	struct pfs_commit local;	/* last commit in the inode's shard */
	struct pfs_commit global;	/* last cross-shard commit */
	uint64_t next_seq;		/* directories: next entry seq; 0 unknown */
	struct pfs_istate *next;	/* hash chain */
};

struct pfs_fs {
	struct pfs_store *st;
	uint32_t shards;
	uint32_t block_size;
	pthread_mutex_t rename_lock;
	pthread_mutex_t dlock[PFS_FS_LOCKS];
	pthread_mutex_t ilock[PFS_FS_LOCKS];
	pthread_mutex_t state_lock;
	struct pfs_istate **state;	/* hash by ino, state_buckets chains */
	size_t state_buckets, state_count;
	enum pfs_fs_placement placement;	/* of new directories (place.c) */
	uint32_t next_dir_shard;	/* place.c's turn (atomic) */
};

/* A set of striped locks taken in index order. */
struct pfs_lockset {
	pthread_mutex_t *base;
	unsigned idx[6];
	unsigned n;
};

void pfs_lockset_init(struct pfs_lockset *ls, pthread_mutex_t *base);
void pfs_lockset_add(struct pfs_lockset *ls, uint64_t ino);
void pfs_lockset_lock(struct pfs_lockset *ls);
void pfs_lockset_unlock(struct pfs_lockset *ls);

/* fs.c */
/* The inode lock of ino. */
pthread_mutex_t *pfs_fs_ilock(struct pfs_fs *fs, uint64_t ino);
/* pfs_store_stat of an inode: -ENOENT for the layer's own objects. */
int pfs_fs_stat(struct pfs_fs *fs, uint64_t ino, struct pfs_onode *o);
struct pfs_timespec pfs_fs_now(void);
void pfs_fs_attr_from_onode(const struct pfs_fs *fs, const struct pfs_onode *o,
			    struct pfs_fs_attr *a);
/* Remember token as the last commit of each of the n inodes. */
void pfs_fs_note_commit(struct pfs_fs *fs, const uint64_t *inos, unsigned n,
			const struct pfs_commit *token);
/* Open count of ino (call with ino's inode lock held). */
uint32_t pfs_fs_opens(struct pfs_fs *fs, uint64_t ino);
/* ino was just made by pfs_fs_tmpfile (nobody else knows it yet): count
 * its first open and whether pfs_fs_link may give it a name. -ENOMEM. */
int pfs_fs_tmpfile_opened(struct pfs_fs *fs, uint64_t ino, bool linkable);
/* Whether ino is open and linkable (above); with clear, it stops being
 * linkable (once linked, as Linux clears I_LINKABLE). Call with ino's
 * inode lock held. */
bool pfs_fs_linkable(struct pfs_fs *fs, uint64_t ino, bool clear);
/* Directory seq cache (call with the directory's lock held). */
uint64_t pfs_fs_seq_get(struct pfs_fs *fs, uint64_t dir);
void pfs_fs_seq_set(struct pfs_fs *fs, uint64_t dir, uint64_t next);
/* Add to t what makes ino (nlink now 0, still open) an orphan; key (its
 * orphan record's) must live until submit. */
void pfs_fs_orphan_add(struct pfs_txn *t, uint64_t ino, uint8_t key[POSFS_ORPHAN_KEY_LEN]);

/*
 * Objects at least this large (in 512-byte sectors) are not removed in the
 * transaction that drops their last link: they become orphans there, and
 * pfs_fs_reap removes them afterwards, truncating in steps, so that no
 * transaction outgrows a WAL (the store's -E2BIG) or, on a full device,
 * the shards' metadata reserve (-ENOSPC).
 */
#define PFS_FS_REAP_SECTORS (16u << 11)		/* 16 MiB */

/* Remove the orphan ino (nlink 0, on its shard's orphan list) and its
 * record, truncating it in steps first when it is large. Each step is
 * its own transaction; until the last one it stays on the orphan list, so
 * a crash part way is finished at the next mount. */
int pfs_fs_reap(struct pfs_fs *fs, uint64_t ino);
/* The same on the bare store, for fsck: pfs_fs_remove_steps (dent.h). */

/* chattr flags a new inode takes from its directory, as ext4's: compress
 * (c), no compression (m), no atime (A), no dump (d). */
#define PFS_FS_FL_INHERITED	(FS_COMPR_FL | FS_NOCOMP_FL | FS_NOATIME_FL | FS_NODUMP_FL)

/* chattr +i and +a (fs.h): what they refuse is -EPERM. */
#define PFS_FS_FL_LOCKED	(FS_IMMUTABLE_FL | FS_APPEND_FL)

/* -EPERM when o has one of the chattr flags fl, else 0. */
static inline int pfs_fs_fl_refuse(const struct pfs_onode *o, uint32_t fl)
{
	return (o->attr_flags & fl) ? -EPERM : 0;
}

/* A write or truncate by cred clears set-ID bits (it lacks CAP_FSETID). */
bool pfs_fs_cred_kills(const struct pfs_fs_cred *cred);
/* cred's gid or one of its groups is gid (NULL cred: false). */
bool pfs_fs_cred_in_group(const struct pfs_fs_cred *cred, uint32_t gid);
/* Set-ID bits a write by cred clears from an inode of mode (with its
 * type) and group gid (0 when none): the kernel's should_remove_suid. */
uint32_t pfs_fs_kill_suid(uint32_t mode, uint32_t gid, const struct pfs_fs_cred *cred);

#endif /* POSFS_FS_INTERNAL_H */
