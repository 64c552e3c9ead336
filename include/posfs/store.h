/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libposfs object store (src/store): objects (an onode, data extents, an
 * omap, xattrs) kept on a posfs device by sharded partitions, each with its
 * own WAL, caches and lock.
 *
 * Changes are made by transactions: a list of operations built with the
 * pfs_txn_* calls and submitted at once. A transaction is all-or-nothing;
 * pfs_store_submit returns once it is applied in memory (every later read
 * sees it), and it is durable when pfs_store_wait returns for its token (or
 * at once with PFS_SUBMIT_DURABLE). Concurrent transactions share one WAL
 * write and one flush (group commit).
 *
 * Errors: 0 or -errno. -ENOENT no such object, -EEXIST it exists, -ENOSPC
 * the device is full (the transaction changed nothing), -EUCLEAN or
 * -EBADMSG corrupt metadata found (the store is marked as needing fsck),
 * -EIO a device error (the store refuses further changes), -EROFS opened
 * read-only. Thread-safe unless said otherwise.
 */
#ifndef POSFS_STORE_H
#define POSFS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "posfs/disk.h"

struct pfs_store;
struct pfs_dev;

/* ---- store.c: open, close, statfs --------------------------------------- */

/*
 * What the store found damaged: the first corrupt metadata it met, at open
 * or since (pfs_store_opts.damage, pfs_store_damage). The file system is
 * then marked as having errors (POSFS_STATE_ERRORS) on the device at
 * once, unless it is read-only or its superblocks are what is damaged.
 */
enum pfs_damage_kind {
	PFS_DAMAGE_NONE = 0,
	PFS_DAMAGE_NOT_POSFS,		/* neither superblock copy has the posfs magic */
	PFS_DAMAGE_SUPER,		/* both superblock copies are damaged */
	PFS_DAMAGE_SIZE,		/* the device is smaller than the file system */
	PFS_DAMAGE_HEADER,		/* a shard header: both slots, or out of step */
	PFS_DAMAGE_JOURNAL,		/* a WAL record that replay cannot apply */
	PFS_DAMAGE_FREE_TREE,		/* a shard's free-space tree */
	PFS_DAMAGE_ONODE_TREE,		/* a shard's onode radix tree */
	PFS_DAMAGE_REFCOUNT_TREE,	/* a shard's shared-blob tree */
	PFS_DAMAGE_CSUM_TABLE,		/* a shard's data checksum table */
	PFS_DAMAGE_EXTENT_MAP,		/* an object's extent tree */
	PFS_DAMAGE_OMAP,		/* an object's omap */
	PFS_DAMAGE_OBJECT,		/* an object's onode or extents (detail) */
	PFS_DAMAGE_METADATA,		/* other metadata (detail: what, if known) */
};

struct pfs_store_damage {
	enum pfs_damage_kind kind;
	uint32_t shard;			/* HEADER .. CSUM_TABLE: the shard
					 * (POSFS_SHARD_GLOBAL: the global journal) */
	uint64_t oid;			/* EXTENT_MAP, OMAP, OBJECT: the object */
	uint64_t blkno;			/* the block that failed its checks, or 0 */
	char detail[160];		/* OBJECT: what is wrong with it; HEADER:
					 * how; METADATA: what it is */
	bool marked;			/* POSFS_STATE_ERRORS is on the device */
};

/*
 * d in words, for a message: "the free-space tree of shard 1 is damaged
 * (block 1234)", "both superblocks are damaged", "no posfs superblock was
 * found"... Returns buf.
 */
const char *pfs_store_damage_str(const struct pfs_store_damage *d, char *buf, size_t len);

struct pfs_store_opts {
	bool readonly;			/* replay in memory only; no writes */
	uint32_t small_write;		/* 0: the superblock's threshold */
	uint32_t cache_blocks;		/* block cache per shard; 0: 1/64 of
					 * the memory over the shards, 4096
					 * to 32768 blocks */
	uint32_t onode_cache;		/* decoded onodes per shard; 0: 8192 */
	uint32_t fill_pct;		/* checkpoint at this WAL fill; 0: 50 */
	int backend;			/* enum pfs_dev_backend */
	int ckpt_interval_ms;		/* checkpoint this often when there is
					 * anything to write home; 0: 5000,
					 * < 0: only at the fill mark and close */
	bool fsck;			/* for the checker: the free trees are not
					 * loaded (nothing can be allocated until
					 * it loads them), no mount is counted */
	/*
	 * A data block that does not match its checksum (data_csum): the
	 * read or write that met it fails with -EIO, and data_error (when
	 * set) hears of it once per block (of the last 256 reported), from
	 * the thread that met it: the object, the byte offset of the block
	 * in it, the device block.
	 */
	void (*data_error)(void *arg, uint64_t oid, uint64_t off, uint64_t blkno);
	void *data_error_arg;
	/*
	 * Corrupt metadata of one object met while the store followed it (an
	 * extent that maps blocks outside the data area, over space free at
	 * open, or past the largest file): what fails with -EUCLEAN, and
	 * object_error (when set) hears of it once per object (of the last 64
	 * reported), with a short description.
	 */
	void (*object_error)(void *arg, uint64_t oid, const char *what);
	void *object_error_arg;
	/*
	 * Compression of new data of objects without FS_COMPR_FL or
	 * FS_NOCOMP_FL in their chattr flags (those always, never): 0 as the
	 * superblock's default; 1 zstd (the compression feature is set if
	 * missing, unless read-only); -1 none. Objects are
	 * compressed only on a file system with the compression feature.
	 */
	int compress;
	int compress_level;		/* 1 to 19; 0: the superblock's */
	/*
	 * Discard freed space as it becomes reusable: each checkpoint sends
	 * the device a discard (pfs_dev_discard) for the ranges freed by the
	 * transactions it makes durable and home, before they can be
	 * allocated again. Turned off by the first -EOPNOTSUPP. Ignored
	 * read-only. See pfs_store_trim for the same on demand.
	 */
	bool discard;
	/*
	 * When the open fails on corrupt metadata (-EUCLEAN, -EBADMSG), what
	 * was damaged, and whether the file system is now marked as having
	 * errors; kind PFS_DAMAGE_NONE otherwise. May be NULL.
	 */
	struct pfs_store_damage *damage;
};

/*
 * Open the posfs on path (exclusively: -EBUSY when another posfs has it),
 * replay its WALs and, unless read-only, checkpoint. Errors: those of
 * pfs_dev_open, -EBADMSG/-EUCLEAN (no posfs there, or damaged metadata:
 * opts->damage says which, and a writable open with a good superblock
 * marks the file system as having errors before it fails), -EOPNOTSUPP
 * (unknown incompat features), -EROFS (unknown ro_compat features and not
 * read-only).
 */
int pfs_store_open(const char *path, const struct pfs_store_opts *opts,
		   struct pfs_store **stp);

/* The same on a device already open; the store owns dev afterwards (also
 * when the open fails). */
int pfs_store_open_dev(struct pfs_dev *dev, const struct pfs_store_opts *opts,
		       struct pfs_store **stp);

/* Checkpoint, mark clean, close. Returns the first error seen; the store
 * is freed in any case. */
int pfs_store_close(struct pfs_store *st);

/* Make everything submitted durable and write it home (a checkpoint). */
int pfs_store_sync(struct pfs_store *st);

/*
 * Read-only, or writable again, without closing (a remount). ro: the
 * transactions under way end, everything goes home (a checkpoint) and
 * the superblock is marked clean, as close leaves it; from then every
 * change fails with -EROFS and nothing is written to the device. !ro:
 * the clean mark goes, changes are taken again. Asking for the state
 * the store is in does nothing. Errors: -EROFS (!ro on a store opened
 * read-only: its device may not even be open for writing), -EIO (the
 * checkpoint or the superblock write failed, or an earlier device error:
 * with ro the store is read-only all the same).
 */
int pfs_store_set_readonly(struct pfs_store *st, bool ro);

/* Opened read-only, or made so by pfs_store_set_readonly. */
bool pfs_store_is_readonly(const struct pfs_store *st);

struct pfs_statfs {
	uint32_t block_size;
	uint64_t total_blocks;		/* data areas of all shards */
	uint64_t free_blocks;		/* free now or after the next checkpoint */
	uint64_t avail_blocks;		/* of those, what data may take: each
					 * shard's reserve left out */
	uint64_t objects;
	uint32_t shards;
};

int pfs_store_statfs(struct pfs_store *st, struct pfs_statfs *sfs);

/*
 * One shard's space and objects as its last writing transaction left
 * them, read without its lock: a hint for placement (fs/place.c), a
 * moment old under concurrent commits. -EINVAL for no such shard.
 */
struct pfs_shard_load {
	uint64_t total_blocks;		/* its data area */
	uint64_t free_blocks;		/* free now or after the next checkpoint */
	uint64_t objects;
};

int pfs_store_shard_load(struct pfs_store *st, uint32_t shard, struct pfs_shard_load *l);

/* What the store did since open (counters read without a lock). */
struct pfs_store_counters {
	uint64_t commits;		/* transactions committed */
	uint64_t cross_shard;		/* of those, through the global WAL */
	uint64_t groups;		/* records the shards' WALs got */
	uint64_t checkpoints;
	uint64_t ckpt_ns;		/* their time: every shard stopped */
	/* transactions that waited: for a shard's lock (another
	 * transaction of that shard), for a checkpoint to end */
	uint64_t lock_waits, lock_wait_ns;
	uint64_t ckpt_waits, ckpt_wait_ns;
	/* discards sent to the device (pfs_store_trim and the discard
	 * option), and the blocks they covered */
	uint64_t discards, discard_blocks;
};

void pfs_store_counters(struct pfs_store *st, struct pfs_store_counters *c);

const struct pfs_super *pfs_store_super(const struct pfs_store *st);

/*
 * The volume label (FS_IOC_GETFSLABEL): copied into buf, NUL-terminated.
 * Any thread; a label being set is seen whole, old or new.
 */
void pfs_store_label(struct pfs_store *st, char buf[POSFS_LABEL_SIZE + 1]);

/*
 * Set the volume label (FS_IOC_SETFSLABEL): both superblock copies are
 * written, each followed by a flush, under the lock every superblock
 * write of the store takes, before it returns; a crash leaves the old
 * label or the new one. Any thread. Errors: -EINVAL (longer than
 * POSFS_LABEL_SIZE bytes), -EROFS (opened or remounted read-only), the
 * store's earlier device error, the superblock write's -errno (the label
 * is then the old one).
 */
int pfs_store_set_label(struct pfs_store *st, const char *label);

/* Has corrupt metadata been met since open? The superblock is then marked
 * with POSFS_STATE_ERRORS (at once, and again at close), so that fsck
 * checks it. */
bool pfs_store_has_errors(const struct pfs_store *st);

/* The first damage met since open into *d; false (d->kind
 * PFS_DAMAGE_NONE) when none was. */
bool pfs_store_damage(struct pfs_store *st, struct pfs_store_damage *d);

/*
 * Corrupt metadata found above the store (the file system layer: a root
 * that is not a directory...): note it as the store's own (kind and oid
 * recorded unless some damage is already) and mark the superblock.
 * Returns -EUCLEAN.
 */
int pfs_store_report_damage(struct pfs_store *st, enum pfs_damage_kind kind, uint64_t oid,
			    const char *detail);

/* Data blocks met since open that did not match their checksums. */
uint64_t pfs_store_data_errors(const struct pfs_store *st);

/* ---- trim.c: discard of free space --------------------------------------- */

/*
 * Discard the free space in the byte range [start, start + len) of the
 * device (FITRIM): a checkpoint first, so that what was freed since the
 * last one is free too, then every free extent of the range at least
 * minlen bytes long (after clipping to the range) goes to the device as
 * a discard (pfs_dev_discard). Only blocks no structure uses and no WAL
 * record left to replay needs are discarded; transactions go on meanwhile
 * (the range is done in pieces, each under its shard's lock). *trimmed:
 * the bytes discarded (also on failure, what was done before it).
 * Errors: -EINVAL (len below a block, start or minlen past the file
 * system, a store opened for fsck), -EROFS (read-only), -EOPNOTSUPP (the
 * device cannot discard), -EIO and the checkpoint's errors.
 */
int pfs_store_trim(struct pfs_store *st, uint64_t start, uint64_t len, uint64_t minlen,
		   uint64_t *trimmed);

/* ---- objop.c: object ids ----------------------------------------------- */

/*
 * Reserve a new object id in shard (its onode is made by PFS_OP_CREATE in
 * a later transaction). A reserved id that is never created is skipped,
 * never reused. Errors: -EINVAL (no such shard), -ENOSPC (ids exhausted).
 */
int pfs_store_oid_alloc(struct pfs_store *st, uint32_t shard, uint64_t *oid);

/* ---- txn.c: transactions ----------------------------------------------- */

/* Attributes of an object, as the onode keeps them. */
struct pfs_attr {
	uint32_t mode, uid, gid, nlink;
	uint64_t rdev;
	struct pfs_timespec atime, mtime, ctime, btime;
	uint32_t attr_flags;		/* chattr flags */
	uint32_t onode_flags;		/* POSFS_ONODE_* (orphan) */
	uint64_t parent;
};

/* pfs_txn_setattr mask */
#define PFS_ATTR_MODE		0x0001u
#define PFS_ATTR_UID		0x0002u
#define PFS_ATTR_GID		0x0004u
#define PFS_ATTR_NLINK		0x0008u
#define PFS_ATTR_RDEV		0x0010u
#define PFS_ATTR_ATIME		0x0020u
#define PFS_ATTR_MTIME		0x0040u
#define PFS_ATTR_CTIME		0x0080u
#define PFS_ATTR_BTIME		0x0100u
#define PFS_ATTR_FLAGS		0x0200u
#define PFS_ATTR_ONODE_FLAGS	0x0400u
#define PFS_ATTR_PARENT		0x0800u
#define PFS_ATTR_ALL		0x0fffu

enum pfs_op_type {
	PFS_OP_CREATE, PFS_OP_REMOVE, PFS_OP_WRITE, PFS_OP_ZERO, PFS_OP_TRUNCATE,
	PFS_OP_SETATTR, PFS_OP_SETXATTR, PFS_OP_RMXATTR, PFS_OP_OMAP_SET,
	PFS_OP_OMAP_INSERT, PFS_OP_OMAP_RM, PFS_OP_OMAP_RMRANGE, PFS_OP_CLONE,
	PFS_OP_CLONE_RANGE,
};

struct pfs_op {
	enum pfs_op_type type;
	uint64_t oid, oid2;
	uint64_t off, len, off2;
	const void *data;		/* WRITE */
	const void *key, *key2;		/* OMAP_*, xattr name */
	size_t klen, klen2;
	const void *val;
	size_t vlen;
	struct pfs_attr attr;		/* CREATE, SETATTR */
	uint32_t mask;			/* SETATTR */
	int flags;			/* SETXATTR: XATTR_CREATE / XATTR_REPLACE */
};

/*
 * A transaction under construction: a list of operations applied in
 * order, all or nothing. The data, keys and values it points at must stay
 * valid until pfs_store_submit returns. Building never fails: an error
 * (out of memory, a bad argument) is kept and returned by submit.
 */
struct pfs_txn {
	struct pfs_op *ops;
	size_t n, cap;
	int err;
};

void pfs_txn_init(struct pfs_txn *t);
void pfs_txn_fini(struct pfs_txn *t);
void pfs_txn_reset(struct pfs_txn *t);

void pfs_txn_create(struct pfs_txn *t, uint64_t oid, const struct pfs_attr *a);
void pfs_txn_remove(struct pfs_txn *t, uint64_t oid);
void pfs_txn_write(struct pfs_txn *t, uint64_t oid, uint64_t off, uint64_t len,
		   const void *data);
/* Make [off, off+len) read as zeros (space given back where whole blocks). */
void pfs_txn_zero(struct pfs_txn *t, uint64_t oid, uint64_t off, uint64_t len);
void pfs_txn_truncate(struct pfs_txn *t, uint64_t oid, uint64_t size);
void pfs_txn_setattr(struct pfs_txn *t, uint64_t oid, const struct pfs_attr *a,
		     uint32_t mask);
/* name: the full xattr name ("user.x"); flags: XATTR_CREATE, XATTR_REPLACE */
void pfs_txn_setxattr(struct pfs_txn *t, uint64_t oid, const char *name, const void *val,
		      size_t vlen, int flags);
void pfs_txn_rmxattr(struct pfs_txn *t, uint64_t oid, const char *name);
/* Omap keys must not start with a zero byte (the store's own key space). */
void pfs_txn_omap_set(struct pfs_txn *t, uint64_t oid, const void *key, size_t klen,
		      const void *val, size_t vlen);
/* As omap_set, but the transaction fails with -EEXIST if key is there. */
void pfs_txn_omap_insert(struct pfs_txn *t, uint64_t oid, const void *key, size_t klen,
			 const void *val, size_t vlen);
/* Fails with -ENOENT if key is not there. */
void pfs_txn_omap_rm(struct pfs_txn *t, uint64_t oid, const void *key, size_t klen);
/* Remove keys in [start, end); end NULL: to the last. */
void pfs_txn_omap_rmrange(struct pfs_txn *t, uint64_t oid, const void *start, size_t slen,
			  const void *end, size_t elen);

/*
 * Clones: dst shares src's blocks (copy on write), in any shards.
 * pfs_txn_clone: dst's data becomes src's (xattrs and
 * omap are not copied). pfs_txn_clone_range: offsets block aligned, len
 * too unless the range reaches src's end (-EINVAL otherwise, and for
 * overlapping ranges of one object).
 */
void pfs_txn_clone(struct pfs_txn *t, uint64_t src, uint64_t dst);
void pfs_txn_clone_range(struct pfs_txn *t, uint64_t src, uint64_t soff, uint64_t dst,
			 uint64_t doff, uint64_t len);

/* ---- submit.c: submit -------------------------------------------------- */

/* pfs_store_submit flags */
#define PFS_SUBMIT_DURABLE	0x1	/* return once durable */
/*
 * The transaction gives space back (an unlink, rmdir, truncate down, a
 * punch, a change of the orphan list): it may take each shard's small
 * metadata reserve, which ordinary transactions leave alone, so that it
 * works on a full device. Only for transactions that free at least what
 * they take, or take a bounded few blocks (an orphan record).
 */
#define PFS_SUBMIT_RESERVE	0x2

struct pfs_commit {
	uint32_t shard;
	uint64_t group;
};

/*
 * Apply t atomically. Returns once applied in memory (or durable, with
 * PFS_SUBMIT_DURABLE); token (may be NULL) is what pfs_store_wait needs.
 * On error nothing of t is applied. Errors: those of the operations
 * (-ENOENT, -EEXIST, -ENODATA for a missing xattr, -ENOSPC, -EFBIG, ...),
 * -E2BIG when the transaction changes more blocks than a WAL can hold
 * (split it: truncate a very large object in steps before removing it),
 * -EUCLEAN / -EBADMSG, -EIO, -EROFS.
 */
int pfs_store_submit(struct pfs_store *st, struct pfs_txn *t, int flags,
		     struct pfs_commit *token);

/* Wait until a submitted transaction is durable. */
int pfs_store_wait(struct pfs_store *st, const struct pfs_commit *token);

/* ---- read.c: reads ------------------------------------------------------- */

/*
 * Call fn for every object of a shard in id order (fsck, scrub). fn runs
 * with the shard locked: it must not call the store. A nonzero return
 * stops the walk and is returned.
 */
typedef int (*pfs_object_fn)(void *arg, const struct pfs_onode *o);
int pfs_store_iterate_objects(struct pfs_store *st, uint32_t shard, pfs_object_fn fn, void *arg);

int pfs_store_stat(struct pfs_store *st, uint64_t oid, struct pfs_onode *o);

/* Read up to len bytes at off: the count read (short at the end of the
 * object, 0 past it); holes read as zeros. -EIO for a data block that does
 * not match its checksum (pfs_store_opts.data_error hears of it). */
ssize_t pfs_store_read(struct pfs_store *st, uint64_t oid, uint64_t off, size_t len,
		       void *buf);

/*
 * Scrub: as pfs_store_read, but every block is checked as the device holds
 * it: a cached copy that is clean (home already) is read from the device
 * again, one changed since the last checkpoint (not home yet) is skipped.
 * The count checked, or -EIO at the first bad block (reported as a read's).
 */
ssize_t pfs_store_scrub(struct pfs_store *st, uint64_t oid, uint64_t off, size_t len,
			void *buf);

/*
 * lseek(2)'s SEEK_DATA (hole false) and SEEK_HOLE (hole true): the first
 * offset >= off that is data (or a hole; the end of the object counts as
 * a hole). -ENXIO when off is at or past the end, or there is no data
 * after off.
 */
int pfs_store_seek(struct pfs_store *st, uint64_t oid, uint64_t off, bool hole,
		   uint64_t *result);

/* The value's length; -ERANGE when cap is too small (cap 0: just the
 * length); -ENODATA when there is no such xattr. */
ssize_t pfs_store_getxattr(struct pfs_store *st, uint64_t oid, const char *name, void *buf,
			   size_t cap);

/* The names, each NUL-terminated, as listxattr(2); -ERANGE, cap 0 as above. */
ssize_t pfs_store_listxattr(struct pfs_store *st, uint64_t oid, char *buf, size_t cap);

/* The value's length; -ENOENT, -ERANGE as above. */
ssize_t pfs_store_omap_get(struct pfs_store *st, uint64_t oid, const void *key, size_t klen,
			   void *val, size_t cap);

/*
 * Call fn for each omap record in key order, from the first key > after
 * (after NULL: from the first key; keys of the store's own space are
 * skipped), until fn returns nonzero (that value is returned) or the end
 * (0). fn runs with the object's shard locked: it must not call the store.
 */
typedef int (*pfs_omap_fn)(void *arg, const void *key, size_t klen, const void *val,
			   size_t vlen);
int pfs_store_omap_iterate(struct pfs_store *st, uint64_t oid, const void *after,
			   size_t alen, pfs_omap_fn fn, void *arg);

#endif /* POSFS_STORE_H */
