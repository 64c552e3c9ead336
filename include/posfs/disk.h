/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libposfs format layer (src/format): the in-memory forms of the on-disk
 * structures of format.h, and the one pair of functions that converts each
 * (_to_disk seals the checksum, _from_disk verifies before it trusts a
 * byte). Also the geometry a superblock implies, and reading and writing
 * the superblock pair and shard header slots on a device.
 *
 * Errors: 0 or -errno. -EBADMSG: a checksum does not verify. -EUCLEAN: the
 * structure verifies but is not what it should be (magic, self-address,
 * uuid, owner, a field out of range). Nothing here prints or exits.
 */
#ifndef POSFS_DISK_H
#define POSFS_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "posfs/format.h"

struct pfs_dev;

/* ---- block.c: the common block header --------------------------------- */

struct pfs_blockhdr {
	uint32_t magic;
	uint32_t size;
	uint16_t level;
	uint16_t nr;
	uint64_t blkno;
	uint64_t owner;
	uint64_t lsn;
	uint8_t uuid[POSFS_UUID_SIZE];
	uint32_t flags;
};

/* What a reader expects of a block; a zero field is not checked. */
struct pfs_block_expect {
	uint32_t magic;
	uint32_t size;
	uint64_t blkno;
	bool check_blkno;		/* blkno 0 is a real address */
	uint64_t owner;
	bool check_owner;
	const uint8_t *uuid;		/* NULL: not checked */
	uint64_t max_lsn;		/* 0: not checked; else the lsn must be
					 * below it (no block from the future) */
};

/*
 * Write hdr into the first 64 bytes of buf (the crc is left for
 * pfs_block_seal). The structure the header covers is hdr->size bytes.
 */
void pfs_block_hdr_encode(void *buf, const struct pfs_blockhdr *hdr);
void pfs_block_hdr_decode(const void *buf, struct pfs_blockhdr *hdr);

/* Compute and store the crc32c of buf over [4, size) from its header. */
void pfs_block_seal(void *buf);

/*
 * Check buf, buflen bytes long: the covered size fits (else -EUCLEAN), the
 * crc32c verifies (else -EBADMSG), then magic, size, blkno, owner and uuid
 * as exp asks (else -EUCLEAN). hdr, if not NULL, receives the header.
 */
int pfs_block_verify(const void *buf, size_t buflen,
		     const struct pfs_block_expect *exp, struct pfs_blockhdr *hdr);

/*
 * The data checksum of a chunk (data_csum): crc32c of its len bytes,
 * seeded with devoff, the chunk's byte offset on the device.
 */
uint32_t pfs_data_csum(uint64_t devoff, const void *chunk, size_t len);

/* ---- super.c: the superblock pair -------------------------------------- */

struct pfs_super {
	uint32_t rev;
	uint32_t block_size;
	uint64_t total_blocks;
	uint32_t feature_compat;
	uint32_t feature_ro_compat;
	uint32_t feature_incompat;
	uint32_t shard_count;
	uint64_t first_shard_block;
	uint64_t shard_blocks;
	uint32_t wal_blocks;
	uint32_t global_wal_blocks;
	uint64_t global_block;
	uint32_t small_write;
	uint32_t onode_size;
	uint32_t csum_chunk;
	uint32_t sector_size;
	uint32_t atomic_write;
	uint16_t state;
	uint16_t errors;
	uint64_t generation;
	uint64_t mkfs_time;
	uint64_t mount_time;
	uint64_t write_time;
	uint64_t check_time;
	uint32_t mount_count;
	uint32_t max_mount_count;
	uint64_t root_oid;
	uint32_t root_uid;
	uint32_t root_gid;
	uint8_t compress;		/* POSFS_COMPRESS_* */
	uint8_t compress_level;		/* 0: POSFS_COMPRESS_LEVEL_DEFAULT */
	uint8_t uuid[POSFS_UUID_SIZE];
	char label[POSFS_LABEL_SIZE + 1];	/* NUL-terminated */
	char last_mounted[64 + 1];		/* NUL-terminated */
};

/* Encode sb into the 4 KiB d for byte offset off (4096 or 8192), sealed. */
void pfs_super_to_disk(const struct pfs_super *sb, uint64_t off,
		       struct pfs_dsuper *d);

/*
 * Decode and verify the copy at byte offset off: checksum, magic, self
 * offset, then pfs_super_check. -EBADMSG / -EUCLEAN.
 */
int pfs_super_from_disk(const struct pfs_dsuper *d, uint64_t off,
			struct pfs_super *sb);

/*
 * Geometry and field checks: block size, revision, shard layout inside
 * total_blocks, WAL sizes, label terminated... -EUCLEAN when wrong. Feature
 * words are not judged here (see pfs_super_features_ok).
 */
int pfs_super_check(const struct pfs_super *sb);

/*
 * Can this libposfs use a file system with these features? 0 yes;
 * -EOPNOTSUPP unknown incompat features (must not be opened); -EROFS
 * unknown ro_compat features and !readonly. *unknown (if not NULL) gets
 * the offending bits.
 */
int pfs_super_features_ok(const struct pfs_super *sb, bool readonly,
			  uint32_t *unknown);

/* Which copy pfs_super_read took. */
enum pfs_super_copy {
	PFS_SUPER_PRIMARY = 0,
	PFS_SUPER_BACKUP = 1,
};

struct pfs_super_status {
	enum pfs_super_copy used;	/* the newest valid copy */
	int primary_err;		/* 0, -EBADMSG or -EUCLEAN */
	int backup_err;
	bool stale;			/* both valid, generations differ */
	bool found;			/* a copy has the posfs magic, valid or
					 * not (none: not a posfs device) */
};

/*
 * Read both copies and take the valid one with the highest generation.
 * -EBADMSG or -EUCLEAN when neither is valid (the primary's error; st says
 * what each copy is), or an I/O error. st may be NULL.
 */
int pfs_super_read(struct pfs_dev *dev, struct pfs_super *sb,
		   struct pfs_super_status *st);

/*
 * Write sb with generation + 1 (sb->generation is updated) and write_time
 * set: the primary, a flush, the backup, a flush. A crash at any point
 * leaves one valid copy of either the old or the new superblock.
 */
int pfs_super_write(struct pfs_dev *dev, struct pfs_super *sb);

/* Bytes from the device start that hold both superblock copies. */
#define PFS_SUPER_HEAD_SIZE	(POSFS_SB_BACKUP_OFFSET + POSFS_SB_SIZE)

/*
 * The newest valid superblock in head, the first len bytes of a device
 * read as they are (no claim, no O_DIRECT: what blkid does to find a
 * label), as pfs_super_read chooses. -EINVAL when len is shorter than
 * PFS_SUPER_HEAD_SIZE; -EBADMSG or -EUCLEAN (the primary's) when neither
 * copy is valid.
 */
int pfs_super_from_head(const void *head, size_t len, struct pfs_super *sb);

/* A uuid as text: 36 characters and a NUL, lower case, 8-4-4-4-12. */
#define PFS_UUID_STR_SIZE	37u
void pfs_uuid_format(const uint8_t uuid[POSFS_UUID_SIZE], char out[PFS_UUID_STR_SIZE]);

/* 32 hex digits, either case, with any dashes between pairs (as mke2fs
 * -U takes them). -EINVAL for anything else. */
int pfs_uuid_parse(const char *s, uint8_t uuid[POSFS_UUID_SIZE]);

/* Feature names for messages: "name1,name2" of the known bits in mask,
 * and "0x..." for unknown ones. Returns buf. */
const char *pfs_feature_names(int word, uint32_t mask, char *buf, size_t len);
#define PFS_FEATURE_WORD_COMPAT		0
#define PFS_FEATURE_WORD_RO_COMPAT	1
#define PFS_FEATURE_WORD_INCOMPAT	2

/* ---- size.c: sizes on the command line --------------------------------- */

/* "64M" -> bytes; a bare number is in units of bare_unit bytes. -EINVAL
 * for what is not a size, -ERANGE for one past 2^64 - 1. */
int pfs_parse_size(const char *s, uint64_t bare_unit, uint64_t *out);

/* ---- geometry.c: what a superblock implies ------------------------------ */

/* The place of one shard (or of the global journal). */
struct pfs_shard_geo {
	uint32_t shard;			/* index, or POSFS_SHARD_GLOBAL */
	uint64_t start_block;		/* slot A */
	uint64_t nblocks;
	uint64_t wal_start;
	uint32_t wal_blocks;
	uint64_t csum_start;		/* data checksum table (data_csum) */
	uint64_t csum_blocks;		/* 0 without data_csum */
	uint64_t data_start;		/* first allocatable block */
	uint64_t data_blocks;		/* allocatable blocks (0 for global) */
};

/* Geometry of shard i (0 .. shard_count-1) or of POSFS_SHARD_GLOBAL.
 * -EINVAL for an index out of range. */
int pfs_geo_shard(const struct pfs_super *sb, uint32_t shard,
		  struct pfs_shard_geo *geo);

/* The shard whose data area holds block blkno, or -EINVAL (a block in no
 * shard's data area: the head, the global journal, a header or WAL). */
int pfs_geo_block_shard(const struct pfs_super *sb, uint64_t blkno);

/* The shard whose checksum table holds block blkno, or -EINVAL. */
int pfs_geo_csum_shard(const struct pfs_super *sb, uint64_t blkno);

/* What mkfs asks for. 0 means "choose the default". */
struct pfs_mkfs_params {
	uint64_t size;			/* bytes of the file system */
	uint32_t block_size;
	uint32_t shard_count;
	uint64_t wal_bytes;		/* per shard */
	uint64_t global_wal_bytes;
	uint32_t small_write;		/* bytes; POSFS_SMALL_WRITE_DEFAULT when 0 */
	uint32_t sector_size;		/* the device's logical sector */
	uint32_t atomic_write;		/* the device's atomic write unit */
	unsigned ncpu;			/* for the default shard count */
	bool no_data_csum;		/* no data checksums (data_csum off) */
	uint32_t csum_chunk;		/* bytes per data checksum; 0: the default */
};

#define POSFS_COMPRESS_NONE		0
#define POSFS_COMPRESS_ZSTD		1
#define POSFS_COMPRESS_LEVEL_DEFAULT	1
#define POSFS_COMPRESS_LEVEL_MAX	19

#define POSFS_CSUM_CHUNK_DEFAULT	4096u
#define POSFS_CSUM_CHUNK_MIN		512u

#define POSFS_SMALL_WRITE_DEFAULT	(32u * 1024)
#define POSFS_SMALL_WRITE_MAX		(1024u * 1024)
#define POSFS_WAL_DEFAULT_MAX		(64u * 1024 * 1024)	/* per shard */
#define POSFS_WAL_MIN			(1024u * 1024)
#define POSFS_WAL_MAX			(4ull << 30)	/* a WAL's largest size (mkfs -J) */
#define POSFS_SHARD_MIN_DATA		(1024u * 1024)	/* bytes of data per shard */
#define POSFS_SHARD_DEFAULT_SIZE	(256ull * 1024 * 1024)

/*
 * Lay out a new file system: fill the geometry fields of sb (block size,
 * total blocks, shards, WALs, global journal, small-write threshold, data
 * checksum chunk and its feature flag) from p, choosing defaults for the
 * zero fields. The chunk is a power of two from POSFS_CSUM_CHUNK_MIN to the
 * block size (the default is 4 KiB, or the block size when smaller). Other fields of sb are left.
 * -EINVAL for a parameter out of range; -ENOSPC when size cannot hold the
 * layout (*min_size, if not NULL, gets the smallest size that would).
 */
int pfs_geo_compute(const struct pfs_mkfs_params *p, struct pfs_super *sb,
		    uint64_t *min_size);

/* ---- probe.c: what a device already holds ------------------------------- */

/* Bytes from the device start that pfs_probe needs to see. */
#define PFS_PROBE_SIZE	(128u * 1024)

struct pfs_probe_result {
	char type[32];		/* "posfs", "ext4", "xfs", "btrfs", ... or "" */
	char label[80];		/* its label when the type has one, else "" */
};

/*
 * Look for a file system, swap, LUKS or partition-table signature in the
 * first len bytes of a device (PFS_PROBE_SIZE or the whole device when it
 * is smaller). Returns 1 and fills r when one is found, 0 when none.
 * A posfs signature counts when its magic is there, valid or not.
 */
int pfs_probe(const void *head, size_t len, struct pfs_probe_result *r);

/* ---- newfs.c: laying down a new file system ----------------------------- */

struct pfs_newfs_opts {
	uint32_t root_uid;
	uint32_t root_gid;
	uint32_t root_mode;		/* permission bits of the root directory */
	int64_t now;			/* seconds since the epoch, for all times */
	bool lazy_wal;			/* do not zero the WALs (as mke2fs's
					 * lazy_journal_init): only their first
					 * block is zeroed */
};

/*
 * Write a new, empty file system with the geometry, uuid, label and
 * features of sb (pfs_geo_compute filled the geometry): the head zeroed
 * (old superblocks gone first), the global journal's and every shard's
 * header slots, an empty WAL, a free-space tree holding every data block
 * not used here, the onode radix tree of shard 0 with the root directory,
 * and last, after a flush, the superblock pair. A crash before the end
 * leaves no valid superblock, so never half a file system. sb->generation
 * and write_time are updated.
 */
int pfs_newfs_write(struct pfs_dev *dev, struct pfs_super *sb,
		    const struct pfs_newfs_opts *opts);

/* ---- shard.c: shard header slots --------------------------------------- */

struct pfs_tree_root {
	uint64_t blkno;
	uint32_t height;
};

struct pfs_shard_hdr {
	uint32_t shard;
	uint32_t slot;			/* the slot it was read from / goes to */
	uint64_t seq;
	uint64_t lsn;			/* header block's LSN */
	uint64_t start_block;
	uint64_t nblocks;
	uint64_t wal_start;
	uint32_t wal_blocks;
	uint64_t wal_tail;
	uint64_t wal_tail_lsn;
	uint64_t checkpoint_lsn;
	uint64_t data_start;
	struct pfs_tree_root onodes;
	struct pfs_tree_root free;
	struct pfs_tree_root refcount;
	uint64_t free_blocks;
	uint64_t onode_count;
	uint64_t next_local;
	uint64_t next_generation;
	uint64_t next_txid;
	uint64_t ckpt_gen;
};

/* Encode into a block of sb->block_size bytes at blkno, sealed. */
void pfs_shard_hdr_to_disk(const struct pfs_super *sb,
			   const struct pfs_shard_hdr *h, uint64_t blkno,
			   void *block);

/* Decode and verify the slot at blkno, and that it agrees with the
 * geometry the superblock implies for that shard. */
int pfs_shard_hdr_from_disk(const struct pfs_super *sb, uint32_t shard,
			    uint64_t blkno, const void *block,
			    struct pfs_shard_hdr *h);

/* Why each slot was or was not taken. */
struct pfs_shard_status {
	int slot_err[POSFS_SHARD_HDR_SLOTS];	/* 0, -EBADMSG, -EUCLEAN */
};

/*
 * Read both slots of a shard (or the global journal) and take the valid
 * one with the highest seq. h->slot says which. st may be NULL.
 */
int pfs_shard_hdr_read(struct pfs_dev *dev, const struct pfs_super *sb,
		       uint32_t shard, struct pfs_shard_hdr *h,
		       struct pfs_shard_status *st);

/* Read and decode both slots; err[i] 0 when slot i is valid. Fails only
 * on an I/O error or -ENOMEM. */
int pfs_shard_hdr_read_slots(struct pfs_dev *dev, const struct pfs_super *sb,
			     uint32_t shard, struct pfs_shard_hdr h[2], int err[2]);

/*
 * Write h into the slot that does not hold the newest copy (h->slot is
 * flipped and h->seq incremented), then flush. A crash during the write
 * leaves the other slot as the newest valid copy.
 */
int pfs_shard_hdr_write(struct pfs_dev *dev, const struct pfs_super *sb,
			struct pfs_shard_hdr *h);

/* ---- onode.c: onodes and small records --------------------------------- */

struct pfs_timespec {
	int64_t sec;
	uint32_t nsec;
};

struct pfs_onode {
	uint64_t oid;
	uint64_t generation;
	uint32_t mode;
	uint32_t uid;
	uint32_t gid;
	uint32_t nlink;
	uint64_t size;
	uint64_t blocks;
	uint64_t rdev;
	struct pfs_timespec atime, mtime, ctime, btime;
	uint32_t flags;
	uint32_t attr_flags;
	uint64_t parent;
	uint64_t version;
	struct pfs_tree_root omap;
	uint64_t omap_count;
	struct pfs_tree_root extents;
	uint8_t data_fmt;
	uint16_t data_len;
	uint16_t xattr_len;
	uint16_t xattr_count;
	uint64_t xattr_omap_count;
	uint8_t inline_area[POSFS_INLINE_SIZE];
};

void pfs_onode_to_disk(const struct pfs_onode *o, struct pfs_donode *d);

/*
 * Decode an onode slot. A free slot (oid 0) must be all zeros. -EUCLEAN
 * for a field out of range: nsec >= 1e9, data_fmt unknown, inline lengths
 * past the inline area, oid above POSFS_OID_MAX.
 */
int pfs_onode_from_disk(const struct pfs_donode *d, struct pfs_onode *o);

/*
 * The inline extent records of a decoded onode (data_fmt EXTENTS): each one
 * pfs_extent_from_disk accepts, sorted by lblk, none overlapping. 0 or
 * -EUCLEAN. Apart from the decode, so that a checker can keep the object
 * and drop only its data.
 */
int pfs_onode_extents_ok(const struct pfs_onode *o);

struct pfs_extent {
	uint64_t lblk;
	uint64_t pblk;
	uint32_t len;
	uint32_t plen;
	uint32_t flags;
	uint32_t csum;
};

void pfs_extent_to_disk(const struct pfs_extent *e, struct pfs_dextent *d);
/* -EUCLEAN: zero length, unknown flags, ranges that overflow, a logical end
 * past POSFS_FILE_BLOCKS_MAX. Where the device blocks are is the store's
 * check (they need the superblock). */
int pfs_extent_from_disk(const struct pfs_dextent *d, struct pfs_extent *e);

/* ---- wal.c: WAL record headers ----------------------------------------- */

struct pfs_wal_rec {
	uint64_t lsn;
	uint64_t wal_block;		/* where it starts in the WAL */
	uint64_t owner;
	uint32_t size;			/* bytes covered by the crc */
	uint32_t flags;
	uint16_t nentries;
	uint64_t txid;
	uint32_t ntx;
	uint32_t nblocks;
	uint64_t checkpoint_lsn;
};

/* Encode the header of a record at the start of buf and seal the whole
 * record (r->size bytes, which must already hold the entries). */
void pfs_wal_rec_seal(const struct pfs_wal_rec *r, const uint8_t *uuid,
		      void *buf);

/*
 * Verify the record at the start of buf (buflen bytes readable) as the one
 * replay expects: at WAL block wal_block with LSN lsn, of this owner and
 * uuid. -EBADMSG / -EUCLEAN: not the expected record (replay stops there).
 */
int pfs_wal_rec_verify(const void *buf, size_t buflen, uint64_t wal_block,
		       uint64_t lsn, uint64_t owner, const uint8_t *uuid,
		       uint32_t block_size, uint32_t wal_blocks,
		       struct pfs_wal_rec *r);

#endif /* POSFS_DISK_H */
