/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * posfs on-disk format: every byte posfs writes is described here, and only
 * here. mkfs.posfs, fsck.posfs and the daemon read and write it through
 * libposfs (src/format), so there is one implementation of this format.
 *
 * Overview of a posfs device (B = block size, 4 KiB .. 64 KiB):
 *
 *   byte 0          4 KiB reserved (boot sector, partition label): untouched
 *   byte 4096       superblock, primary copy       (struct pfs_dsuper, 4 KiB)
 *   byte 8192       superblock, backup copy        (same layout)
 *   byte 12288..    zero up to 64 KiB (POSFS_HEAD_SIZE)
 *   global journal  at block global_block: two header slots (struct
 *                   pfs_dshard with shard = POSFS_SHARD_GLOBAL), then the
 *                   global WAL of global_wal_blocks blocks (cross-shard
 *                   transactions)
 *   shard 0..N-1    from first_shard_block, shard_blocks blocks each (the
 *                   last shard takes the remainder):
 *                     block +0, +1  shard header slots A and B (pfs_dshard)
 *                     block +2 ..   the shard's WAL (wal_blocks blocks)
 *                     then, with data_csum, the checksum table (struct
 *                       pfs_dcsum blocks): the crc32c of every csum_chunk
 *                       bytes of every block of the allocatable space
 *                     data_start .. end: the shard's allocatable space,
 *                       metadata blocks (radix, B+tree nodes) and data
 *                       extents, tracked by its free-space B+tree
 *
 * Copies that alternate, newest valid wins (LMDB's meta pages): the two
 * superblocks carry a generation, the two slots of a shard header a
 * sequence number; a reader takes the valid copy with the highest number,
 * so a write torn by a crash never loses the previous state.
 *
 * Every metadata block (and the superblock, shard headers and WAL records)
 * opens with struct pfs_dblock_hdr: crc32c, magic, covered size, level,
 * count, its own block number, owner, LSN and the file system uuid. A block
 * whose crc32c does not verify is -EBADMSG; a block that verifies but is
 * not what the reader expected (magic, block number, owner, uuid, size) is
 * -EUCLEAN. Nothing is trusted before both checks pass.
 *
 * Objects: an object id (oid) is 64 bits: bits 63..56 zero, bits 55..48
 * the shard, bits 47..0 the object's number within its shard. An object is
 * an onode (struct pfs_donode, 512 bytes) in its shard's onode radix tree,
 * an extent map (inline in the onode, or a B+tree), and an omap (an ordered
 * key/value B+tree: directory entries, orphan lists, large xattrs).
 *
 * All integers are little-endian and fixed width; there are no bitfields.
 * Each field's comment starts with its hex offset: the build checks those
 * offsets (tests/format-offsets) and man/posfs.5 is generated from them, so
 * the header, the checks and the manual cannot drift apart. Persisted enum
 * values are never renumbered.
 */
#ifndef POSFS_FORMAT_H
#define POSFS_FORMAT_H

#include <stdint.h>
#include <stddef.h>

typedef uint16_t pfs_le16;
typedef uint32_t pfs_le32;
typedef uint64_t pfs_le64;

/* Four ASCII characters, stored so that a hex dump reads them in order. */
#define POSFS_MAGIC4(a, b, c, d) \
	((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)

/* Block types (magic of struct pfs_dblock_hdr). */
#define POSFS_MAGIC_SUPER	POSFS_MAGIC4('P', 'F', 'S', 'B')	/* superblock */
#define POSFS_MAGIC_SHARD	POSFS_MAGIC4('P', 'F', 'S', 'H')	/* shard header */
#define POSFS_MAGIC_WAL		POSFS_MAGIC4('P', 'F', 'W', 'L')	/* WAL record */
#define POSFS_MAGIC_RADIX	POSFS_MAGIC4('P', 'F', 'R', 'X')	/* radix interior */
#define POSFS_MAGIC_ONODES	POSFS_MAGIC4('P', 'F', 'O', 'N')	/* radix leaf: onodes */
#define POSFS_MAGIC_FREE	POSFS_MAGIC4('P', 'F', 'F', 'S')	/* free-space B+tree */
#define POSFS_MAGIC_EXTENT	POSFS_MAGIC4('P', 'F', 'E', 'X')	/* extent B+tree */
#define POSFS_MAGIC_REFCOUNT	POSFS_MAGIC4('P', 'F', 'R', 'C')	/* shared-blob B+tree */
#define POSFS_MAGIC_OMAP	POSFS_MAGIC4('P', 'F', 'O', 'M')	/* omap B+tree */
#define POSFS_MAGIC_CSUM	POSFS_MAGIC4('P', 'F', 'C', 'S')	/* data checksum table */

/* Fixed places and sizes. */
#define POSFS_SB_OFFSET		4096u		/* primary superblock, bytes */
#define POSFS_SB_BACKUP_OFFSET	8192u		/* backup superblock, bytes */
#define POSFS_SB_SIZE		4096u		/* bytes each copy covers */
#define POSFS_HEAD_SIZE		65536u		/* reserved head of the device */
#define POSFS_MIN_BLOCK_SIZE	4096u
#define POSFS_MAX_BLOCK_SIZE	65536u
#define POSFS_ONODE_SIZE	512u
#define POSFS_MAX_SHARDS	256u
#define POSFS_SHARD_GLOBAL	0xffffffffu	/* pfs_dshard.shard of the global journal */
#define POSFS_SHARD_HDR_SLOTS	2u		/* header slots A, B at a shard's start */
#define POSFS_LABEL_SIZE	64u		/* label bytes, NUL padded */
#define POSFS_UUID_SIZE		16u
#define POSFS_NAME_MAX		255u		/* bytes in a file name */
#define POSFS_REV		1u		/* format revision */

/* Object ids. */
#define POSFS_OID_SHARD_SHIFT	48
#define POSFS_OID_LOCAL_MASK	((UINT64_C(1) << POSFS_OID_SHARD_SHIFT) - 1)
#define POSFS_OID_MAX		((UINT64_C(1) << 56) - 1)
#define POSFS_OID(shard, local)	(((uint64_t)(shard) << POSFS_OID_SHARD_SHIFT) | (local))
#define POSFS_OID_SHARD(oid)	((uint32_t)((oid) >> POSFS_OID_SHARD_SHIFT) & 0xff)
#define POSFS_OID_LOCAL(oid)	((oid) & POSFS_OID_LOCAL_MASK)
#define POSFS_ROOT_OID		UINT64_C(1)	/* root directory: FUSE's root id */
#define POSFS_LOCAL_ORPHANS	UINT64_C(2)	/* per shard: the orphan list object */
#define POSFS_LOCAL_FIRST	UINT64_C(16)	/* first number for ordinary objects */

/* Owners of blocks that belong to no object (pfs_dblock_hdr.owner). */
#define POSFS_OWNER_SUPER	UINT64_C(0xffffffffffffffff)
#define POSFS_OWNER_GLOBAL	UINT64_C(0xfffffffffffffffe)
#define POSFS_OWNER_SHARD(n)	(UINT64_C(0xff00000000000000) | (uint64_t)(n))
#define POSFS_OWNER_IS_SHARD(o)	(((o) >> 56) == 0xff && (o) < POSFS_OWNER_GLOBAL)

/*
 * Features, as ext4 has them: a reader that does not know a compat feature
 * may use the file system; one that does not know a ro_compat feature may
 * only read it; one that does not know an incompat feature must refuse it.
 * X-macros: (name, bit). Bits are never reused.
 */
#define POSFS_FEATURES_COMPAT(X)					\
	X(dir_nlink, 0)		/* directory nlink saturates at 1 past the limit */
#define POSFS_FEATURES_RO_COMPAT(X)					\
	X(data_csum, 0)		/* data extents carry crc32c per chunk */
#define POSFS_FEATURES_INCOMPAT(X)					\
	X(compression, 0)	/* data extents may be zstd compressed */	\
	X(global_wal, 1)	/* cross-shard transactions in the global WAL */

#define POSFS_FEATURE_BIT_(name, bit) POSFS_FEATURE_##name = UINT32_C(1) << (bit),
enum pfs_feature_compat { POSFS_FEATURES_COMPAT(POSFS_FEATURE_BIT_) };
enum pfs_feature_ro_compat { POSFS_FEATURES_RO_COMPAT(POSFS_FEATURE_BIT_) };
enum pfs_feature_incompat { POSFS_FEATURES_INCOMPAT(POSFS_FEATURE_BIT_) };
#undef POSFS_FEATURE_BIT_

/* What this version of libposfs implements. */
#define POSFS_FEATURE_COMPAT_SUPP	0u
#define POSFS_FEATURE_RO_COMPAT_SUPP	POSFS_FEATURE_data_csum
#define POSFS_FEATURE_INCOMPAT_SUPP	(POSFS_FEATURE_global_wal | POSFS_FEATURE_compression)

/* Superblock state (pfs_dsuper.state), as ext4's s_state. */
#define POSFS_STATE_CLEAN	0x0001u	/* unmounted cleanly */
#define POSFS_STATE_ERRORS	0x0002u	/* corruption seen: fsck needed */

/*
 * The header of every metadata block, of both superblocks, of both shard
 * header slots and of every WAL record (64 bytes).
 */
struct pfs_dblock_hdr {
	pfs_le32 crc;		/* 0x00 crc32c of bytes 0x04 up to size */
	pfs_le32 magic;		/* 0x04 block type: four ASCII characters */
	pfs_le32 size;		/* 0x08 bytes covered by crc: the block size, 4096 for a superblock, the record length for a WAL record */
	pfs_le16 level;		/* 0x0c tree level, 0 = leaf */
	pfs_le16 nr;		/* 0x0e records in use */
	pfs_le64 blkno;		/* 0x10 where it belongs: its block number (a superblock: its byte offset) */
	pfs_le64 owner;		/* 0x18 oid of the owning object, or POSFS_OWNER_* */
	pfs_le64 lsn;		/* 0x20 LSN of the last change written into it */
	uint8_t uuid[16];	/* 0x28 file system uuid */
	pfs_le32 flags;		/* 0x38 per block type */
	pfs_le32 reserved;	/* 0x3c zero */
};

/* Tree root as kept in a shard header or an onode (16 bytes). */
struct pfs_droot {
	pfs_le64 blkno;		/* 0x00 root block, 0 = empty tree */
	pfs_le32 height;	/* 0x08 levels, 0 = empty, 1 = root is a leaf */
	pfs_le32 reserved;	/* 0x0c zero */
};

/*
 * Superblock: 4 KiB at byte 4096 (primary) and 8192 (backup). The magic is
 * at byte 4100, the uuid at byte 4136, the label at byte 4352.
 */
struct pfs_dsuper {
	struct pfs_dblock_hdr hdr;	/* 0x000 magic PFSB, owner POSFS_OWNER_SUPER */
	pfs_le32 rev;			/* 0x040 format revision, POSFS_REV */
	pfs_le32 block_size;		/* 0x044 bytes per block, power of two */
	pfs_le64 total_blocks;		/* 0x048 size of the file system in blocks */
	pfs_le32 feature_compat;	/* 0x050 POSFS_FEATURES_COMPAT */
	pfs_le32 feature_ro_compat;	/* 0x054 POSFS_FEATURES_RO_COMPAT */
	pfs_le32 feature_incompat;	/* 0x058 POSFS_FEATURES_INCOMPAT */
	pfs_le32 shard_count;		/* 0x05c number of shards, 1 to 256 */
	pfs_le64 first_shard_block;	/* 0x060 first block of shard 0 */
	pfs_le64 shard_blocks;		/* 0x068 blocks per shard; the last shard takes the remainder */
	pfs_le32 wal_blocks;		/* 0x070 WAL blocks per shard */
	pfs_le32 global_wal_blocks;	/* 0x074 blocks of the global WAL */
	pfs_le64 global_block;		/* 0x078 first block of the global journal (its header slots) */
	pfs_le32 small_write;		/* 0x080 writes up to this many bytes go through the WAL */
	pfs_le32 onode_size;		/* 0x084 POSFS_ONODE_SIZE */
	pfs_le32 csum_chunk;		/* 0x088 data checksum chunk in bytes (data_csum), else 0 */
	pfs_le32 sector_size;		/* 0x08c logical sector of the device at mkfs */
	pfs_le32 atomic_write;		/* 0x090 atomic write unit found at mkfs, bytes */
	pfs_le16 state;			/* 0x094 POSFS_STATE_* */
	pfs_le16 errors;		/* 0x096 on corruption: 1 continue, 2 remount read-only */
	pfs_le64 generation;		/* 0x098 incremented at every write: the newest valid copy wins */
	pfs_le64 mkfs_time;		/* 0x0a0 seconds since the epoch */
	pfs_le64 mount_time;		/* 0x0a8 last mount */
	pfs_le64 write_time;		/* 0x0b0 last superblock write */
	pfs_le64 check_time;		/* 0x0b8 last full fsck */
	pfs_le32 mount_count;		/* 0x0c0 mounts since the last full fsck */
	pfs_le32 max_mount_count;	/* 0x0c4 fsck after this many mounts; 0xffffffff never */
	pfs_le64 root_oid;		/* 0x0c8 oid of the root directory, POSFS_ROOT_OID */
	pfs_le32 root_uid;		/* 0x0d0 owner of the root directory at mkfs */
	pfs_le32 root_gid;		/* 0x0d4 group of the root directory at mkfs */
	uint8_t compress;		/* 0x0d8 new data compressed by default: 0 no, 1 zstd (needs compression) */
	uint8_t compress_level;		/* 0x0d9 zstd level, 1 to 19; 0: the default, 1 */
	uint8_t reserved0[38];		/* 0x0da zero */
	char label[64];			/* 0x100 volume label, NUL padded */
	char last_mounted[64];		/* 0x140 directory where last mounted, NUL padded */
	uint8_t reserved[3712];		/* 0x180 zero */
};

/*
 * Shard header: a metadata block in two slots at a shard's first two
 * blocks (the same for the global journal). A checkpoint writes the slot
 * that does not hold the newest copy, with seq + 1.
 */
struct pfs_dshard {
	struct pfs_dblock_hdr hdr;	/* 0x000 magic PFSH, owner POSFS_OWNER_SHARD(shard) or POSFS_OWNER_GLOBAL */
	pfs_le32 shard;			/* 0x040 shard index, POSFS_SHARD_GLOBAL for the global journal */
	pfs_le32 slot;			/* 0x044 0 = A, 1 = B */
	pfs_le64 seq;			/* 0x048 header write count: the newest valid slot wins */
	pfs_le64 start_block;		/* 0x050 first block of the shard (slot A) */
	pfs_le64 nblocks;		/* 0x058 blocks in the shard, headers and WAL included */
	pfs_le64 wal_start;		/* 0x060 first block of the WAL */
	pfs_le32 wal_blocks;		/* 0x068 blocks in the WAL */
	pfs_le32 reserved0;		/* 0x06c zero */
	pfs_le64 wal_tail;		/* 0x070 WAL block where replay starts (0 .. wal_blocks-1) */
	pfs_le64 wal_tail_lsn;		/* 0x078 LSN of the record replay expects there */
	pfs_le64 checkpoint_lsn;	/* 0x080 every change below this LSN is in its home block */
	pfs_le64 data_start;		/* 0x088 first allocatable block */
	struct pfs_droot onodes;	/* 0x090 onode radix tree */
	struct pfs_droot free;		/* 0x0a0 free-space B+tree */
	struct pfs_droot refcount;	/* 0x0b0 shared-blob B+tree */
	pfs_le64 free_blocks;		/* 0x0c0 blocks in the free-space tree */
	pfs_le64 onode_count;		/* 0x0c8 objects in the shard */
	pfs_le64 next_local;		/* 0x0d0 next object number to hand out */
	pfs_le64 next_generation;	/* 0x0d8 next FUSE generation to hand out */
	pfs_le64 next_txid;		/* 0x0e0 next transaction id */
	pfs_le64 ckpt_gen;		/* 0x0e8 checkpoint generation: a header ahead of the others belongs to a checkpoint that did not finish */
	uint8_t reserved[16];		/* 0x0f0 zero; the rest of the block is zero too */
};

/*
 * Onode radix tree. Object number n of a shard lives in leaf slot
 * n % S (S = onodes per leaf, (B - 64) / 512: 7 for 4 KiB blocks) of the
 * leaf reached by the base-F digits of n / S from the root (F = children
 * per interior block, (B - 64) / 8). An interior block is a header and F
 * child block numbers (0 = no child); a leaf is a header and S onodes
 * (oid 0 = free slot). hdr.nr counts used children or onodes.
 */
struct pfs_dradix {
	struct pfs_dblock_hdr hdr;	/* 0x000 magic PFRX, level >= 1, owner the shard */
	pfs_le64 child[];		/* 0x040 child block numbers */
};

/* Data format of an object (pfs_donode.data_fmt). */
enum pfs_data_fmt {
	POSFS_DATA_INLINE = 0,		/* bytes in the onode's inline area */
	POSFS_DATA_EXTENTS = 1,		/* pfs_dextent records in the inline area */
	POSFS_DATA_BTREE = 2,		/* extent B+tree rooted at extent_root */
};

/* pfs_donode.flags */
#define POSFS_ONODE_ORPHAN	0x0001u	/* unlinked, on the shard's orphan list */

#define POSFS_INLINE_SIZE	320u	/* bytes of the onode's inline area */

/*
 * Onode: 512 bytes in a radix leaf. The inline area holds, from its start,
 * inline data or inline extent records (data_len bytes), and from its end
 * backwards the inline xattrs (xattr_len bytes, struct pfs_dxattr each).
 */
struct pfs_donode {
	pfs_le64 oid;			/* 0x000 object id; 0 = free slot */
	pfs_le64 generation;		/* 0x008 FUSE generation */
	pfs_le32 mode;			/* 0x010 type and permissions, as st_mode */
	pfs_le32 uid;			/* 0x014 owner */
	pfs_le32 gid;			/* 0x018 group */
	pfs_le32 nlink;			/* 0x01c hard links */
	pfs_le64 size;			/* 0x020 bytes */
	pfs_le64 blocks;		/* 0x028 512-byte units allocated, as st_blocks */
	pfs_le64 rdev;			/* 0x030 device number of a device node */
	pfs_le64 atime_sec;		/* 0x038 access time, seconds since the epoch */
	pfs_le64 mtime_sec;		/* 0x040 modification time */
	pfs_le64 ctime_sec;		/* 0x048 change time */
	pfs_le64 btime_sec;		/* 0x050 birth time */
	pfs_le32 atime_nsec;		/* 0x058 nanoseconds of atime */
	pfs_le32 mtime_nsec;		/* 0x05c nanoseconds of mtime */
	pfs_le32 ctime_nsec;		/* 0x060 nanoseconds of ctime */
	pfs_le32 btime_nsec;		/* 0x064 nanoseconds of btime */
	pfs_le32 flags;			/* 0x068 POSFS_ONODE_* */
	pfs_le32 attr_flags;		/* 0x06c chattr flags (FS_*_FL) */
	pfs_le64 parent;		/* 0x070 a directory's parent oid (its '..'), else 0 */
	pfs_le64 version;		/* 0x078 change counter (i_version) */
	struct pfs_droot omap;		/* 0x080 omap B+tree */
	pfs_le64 omap_count;		/* 0x090 omap records */
	struct pfs_droot extents;	/* 0x098 extent B+tree when data_fmt is BTREE */
	uint8_t data_fmt;		/* 0x0a8 enum pfs_data_fmt */
	uint8_t reserved0;		/* 0x0a9 zero */
	pfs_le16 data_len;		/* 0x0aa bytes used at the start of the inline area */
	pfs_le16 xattr_len;		/* 0x0ac bytes used at the end of the inline area */
	pfs_le16 xattr_count;		/* 0x0ae inline xattrs */
	pfs_le64 xattr_omap_count;	/* 0x0b0 xattrs kept in the omap */
	uint8_t reserved[8];		/* 0x0b8 zero */
	uint8_t inline_area[320];	/* 0x0c0 inline data or extents, and xattrs */
};

struct pfs_donode_leaf {
	struct pfs_dblock_hdr hdr;	/* 0x000 magic PFON, level 0, owner the shard */
	struct pfs_donode onode[];	/* 0x040 POSFS_ONODES_PER_LEAF slots */
};

/* Inline xattr entry, 4-byte aligned, followed by name then value. */
enum pfs_xattr_ns {
	POSFS_XATTR_USER = 1,		/* "user." */
	POSFS_XATTR_TRUSTED = 2,	/* "trusted." */
	POSFS_XATTR_SECURITY = 3,	/* "security." */
	POSFS_XATTR_SYSTEM = 4,		/* "system." (POSIX ACLs) */
};

struct pfs_dxattr {
	uint8_t ns;			/* 0x0 enum pfs_xattr_ns */
	uint8_t name_len;		/* 0x1 bytes of name after the prefix */
	pfs_le16 value_len;		/* 0x2 bytes of value */
};

/*
 * Extent record: inline in an onode or in an extent B+tree leaf. A valid
 * record has len >= 1 and plen >= 1, lblk + len <= POSFS_FILE_BLOCKS_MAX
 * (the largest file, so that byte offsets never wrap), and its device
 * blocks [pblk, pblk + plen) inside the data area of one shard; inline
 * records are sorted by lblk and do not overlap.
 */
#define POSFS_FILE_BLOCKS_MAX	(UINT64_C(1) << 40)
#define POSFS_EXTENT_UNWRITTEN	0x0001u	/* reserved: never written, refused by the decoder */
#define POSFS_EXTENT_SHARED	0x0002u	/* blocks in the shard's refcount tree */
#define POSFS_EXTENT_COMPRESSED	0x0004u	/* zstd frame of len blocks in plen, zero padded */

struct pfs_dextent {
	pfs_le64 lblk;			/* 0x00 first logical block in the object */
	pfs_le64 pblk;			/* 0x08 first device block */
	pfs_le32 len;			/* 0x10 logical blocks */
	pfs_le32 plen;			/* 0x14 device blocks (len unless compressed) */
	pfs_le32 flags;			/* 0x18 POSFS_EXTENT_* */
	pfs_le32 csum;			/* 0x1c compressed: pfs_data_csum of its plen blocks, else 0 */
};

/*
 * Data checksum table (data_csum): csum_blocks blocks between a shard's
 * WAL and its data_start. Entry i = (b - data_start) * K + j (K =
 * block_size / csum_chunk) is the crc32c of chunk j of block b, seeded
 * with the chunk's byte offset on the device (pfs_data_csum), so that a
 * block written to the wrong place does not verify either. Entry i is in
 * table block i / E (E = (B - 64) / 4) at slot i % E. An entry is kept
 * for every block that holds data of an extent neither unwritten nor
 * compressed (a compressed extent's record holds its frame's crc32c);
 * entries of other blocks mean nothing. Every block is written at mkfs.
 */
struct pfs_dcsum {
	struct pfs_dblock_hdr hdr;	/* 0x000 magic PFCS, level 0, owner the shard */
	pfs_le32 crc[];			/* 0x040 E entries */
};

/*
 * Fixed-record B+trees (free space, extents, refcounts): a header and nr
 * records. Interior records are (key, child); leaf records are the tree's
 * own. Records are sorted by key; a node is at least a quarter full
 * unless it is the root.
 */
struct pfs_dbtree_ptr {
	pfs_le64 key;			/* 0x00 smallest key below child */
	pfs_le64 child;			/* 0x08 child block */
};

/* Free-space leaf record: blocks [start, start + len) are free. */
struct pfs_dfree {
	pfs_le64 start;			/* 0x00 first free block */
	pfs_le64 len;			/* 0x08 free blocks */
};

/* Shared-blob leaf record: blocks [pblk, pblk + len) have refs owners. */
struct pfs_drefcount {
	pfs_le64 pblk;			/* 0x00 first device block */
	pfs_le32 len;			/* 0x08 blocks */
	pfs_le32 refs;			/* 0x0c extents that point at them, >= 2 */
};

/*
 * Omap B+tree node: a slotted block. After the header, nr little-endian
 * 16-bit offsets (sorted by key) point at cells packed from the block's
 * end. Leaf cell: pfs_domap_cell, key, then value (inline) or a
 * pfs_domap_vref (out of line, POSFS_OMAP_VAL_EXTERNAL). Interior cell:
 * pfs_domap_cell with value_len 8, key, then the child block number.
 */
#define POSFS_OMAP_KEY_MAX	1024u	/* bytes */
#define POSFS_OMAP_VALUE_MAX	65536u	/* bytes */
#define POSFS_OMAP_VAL_EXTERNAL	0x0001u

struct pfs_domap_node {
	/*
	 * free_end of an empty 64 KiB node is 65536, stored as 0 (the
	 * only value that does not fit 16 bits; 0 is never valid else).
	 */
	struct pfs_dblock_hdr hdr;	/* 0x00 magic PFOM, owner the object */
	pfs_le16 free_start;		/* 0x40 end of the slot array */
	pfs_le16 free_end;		/* 0x42 start of the cell area */
	pfs_le32 free_bytes;		/* 0x44 free bytes, holes included */
	pfs_le16 slot[];		/* 0x48 cell offsets */
};

struct pfs_domap_cell {
	pfs_le16 key_len;		/* 0x0 bytes of key */
	pfs_le16 flags;			/* 0x2 POSFS_OMAP_VAL_* */
	pfs_le32 value_len;		/* 0x4 bytes of value (inline or external) */
};

struct pfs_domap_vref {
	/*
	 * Raw blocks (no header). nblocks = value_len / block size rounded
	 * up. nblocks 1: the value is in block pblk. nblocks > 1: pblk is
	 * an index block holding nblocks le64 block numbers (the value's
	 * blocks, in order) then a le32 crc32c, seeded with crc, over pblk
	 * (as le64) followed by those 8 * nblocks bytes.
	 */
	pfs_le64 pblk;			/* 0x0 first block of the value */
	pfs_le32 nblocks;		/* 0x8 blocks */
	pfs_le32 crc;			/* 0xc crc32c of the value_len bytes */
};

/*
 * Directory entries and orphan lists: omap records the namespace layer
 * writes. A directory's omap holds two records per entry:
 *
 *   POSFS_DENT_NAME + name    -> struct pfs_ddent (17 bytes)
 *   POSFS_DENT_SEQ + be64 seq -> the name
 *
 * A name is 1 to POSFS_NAME_MAX bytes without '/' or NUL, never "." or
 * "..". seq numbers a directory's entries in the order they were added (a
 * renamed entry gets a new one); each entry has exactly one seq record
 * naming it back, and the seq records, big-endian, sort in seq order, so
 * readdir walks them and its cookies are seqs. Cookies 1 and 2 are "."
 * and "..", which are not stored ("." is the directory, ".." its onode's
 * parent field): seqs start at POSFS_DENT_FIRST_SEQ. A new entry takes one
 * past the largest seq; a directory whose largest is 2^64 - 1 takes no new
 * entry. A seq key not of POSFS_DENT_SEQ_KEY_LEN bytes is damage: it is no
 * seq.
 *
 * Each shard's orphan list (object POSFS_LOCAL_ORPHANS of the shard) holds
 * POSFS_ORPHAN_KEY + be64 oid -> empty value, for each inode of the shard
 * unlinked while open (its onode flagged POSFS_ONODE_ORPHAN). Other keys
 * there are no orphan records.
 */
#define POSFS_DENT_NAME		'n'	/* key prefix: name -> struct pfs_ddent */
#define POSFS_DENT_SEQ		's'	/* key prefix: be64 seq -> name */
#define POSFS_DENT_SEQ_KEY_LEN	9u	/* 's' and a be64 */
#define POSFS_DENT_VLEN		17u	/* sizeof(struct pfs_ddent) */
#define POSFS_DENT_FIRST_SEQ	3u	/* 1 and 2 are the cookies of "." and ".." */
#define POSFS_ORPHAN_KEY	'o'	/* key prefix in an orphan list: be64 oid -> empty */
#define POSFS_ORPHAN_KEY_LEN	9u	/* 'o' and a be64 */

/* The value of a name record: unaligned, so its integers are byte arrays. */
struct pfs_ddent {
	uint8_t ino[8];			/* 0x00 le64 oid of the inode the entry names */
	uint8_t type;			/* 0x08 DT_* file type: the inode's S_IFMT bits >> 12 */
	uint8_t seq[8];			/* 0x09 le64 the entry's seq (its seq record's key) */
};

/*
 * WAL record: starts at a block boundary of its WAL and spans nblocks
 * blocks. hdr.lsn is the record's LSN, one more than the record before it;
 * hdr.blkno is the WAL block (0 .. wal_blocks-1) where it starts; hdr.size
 * the bytes covered by hdr.crc (header and entries). Replay starts at the
 * shard header's wal_tail with wal_tail_lsn and stops at the first record
 * whose crc, magic, uuid, blkno or lsn is not the expected one. A record
 * flagged POSFS_WAL_PAD means: the WAL goes on at block 0.
 */
#define POSFS_WAL_PAD		0x0001u

struct pfs_dwal_rec {
	struct pfs_dblock_hdr hdr;	/* 0x00 magic PFWL, owner the shard or POSFS_OWNER_GLOBAL */
	pfs_le64 txid;			/* 0x40 first transaction in the record */
	pfs_le32 ntx;			/* 0x48 transactions in the record (group commit) */
	pfs_le32 nblocks;		/* 0x4c WAL blocks the record spans */
	pfs_le64 checkpoint_lsn;	/* 0x50 the shard's checkpoint LSN when written */
	pfs_le64 reserved;		/* 0x58 zero */
};

/*
 * WAL entry: after the record header, 8-byte aligned, nr of them (hdr.nr,
 * 16 bits: a record holds at most POSFS_WAL_MAX_ENTRIES, and its entries
 * end exactly at hdr.size). The store defines the meaning of a, b and the
 * payload per type.
 */
#define POSFS_WAL_MAX_ENTRIES	65535u
enum pfs_wal_entry_type {
	/* 1, 2, 4 and 5 are reserved: no posfs writes them, replay refuses them */
	POSFS_WAL_BLOCK_IMAGE = 3,	/* a = blkno; payload: the whole block */
	POSFS_WAL_SHARD_STATE = 6,	/* a = shard; payload: its header block (roots, counters) */
};

/* pfs_dwal_entry.flags of a BLOCK_IMAGE */
#define POSFS_WAL_ENTRY_RAW	0x0001u	/* a block without a header (data, values) */

struct pfs_dwal_entry {
	pfs_le16 type;			/* 0x00 enum pfs_wal_entry_type */
	pfs_le16 flags;			/* 0x02 POSFS_WAL_ENTRY_RAW of a BLOCK_IMAGE, else zero */
	pfs_le32 len;			/* 0x04 payload bytes after this entry */
	pfs_le64 a;			/* 0x08 per type */
	pfs_le64 b;			/* 0x10 per type */
};

/* Sizes the format depends on. */
_Static_assert(sizeof(struct pfs_dblock_hdr) == 64, "block header is 64 bytes");
_Static_assert(sizeof(struct pfs_droot) == 16, "tree root is 16 bytes");
_Static_assert(sizeof(struct pfs_dsuper) == POSFS_SB_SIZE, "superblock is 4 KiB");
_Static_assert(sizeof(struct pfs_dshard) == 0x100, "shard header is 256 bytes");
_Static_assert(sizeof(struct pfs_dradix) == 64, "radix header");
_Static_assert(sizeof(struct pfs_donode_leaf) == 64, "onode leaf header");
_Static_assert(sizeof(struct pfs_dcsum) == 64, "checksum table header");
_Static_assert(sizeof(struct pfs_donode) == POSFS_ONODE_SIZE, "onode is 512 bytes");
_Static_assert(offsetof(struct pfs_donode, inline_area) + POSFS_INLINE_SIZE == POSFS_ONODE_SIZE,
	       "inline area ends the onode");
_Static_assert(sizeof(struct pfs_dxattr) == 4, "xattr entry");
_Static_assert(sizeof(struct pfs_dextent) == 32, "extent record is 32 bytes");
_Static_assert(sizeof(struct pfs_dbtree_ptr) == 16, "B+tree pointer");
_Static_assert(sizeof(struct pfs_dfree) == 16, "free record");
_Static_assert(sizeof(struct pfs_drefcount) == 16, "refcount record");
_Static_assert(sizeof(struct pfs_domap_node) == 0x48, "omap node header");
_Static_assert(sizeof(struct pfs_domap_cell) == 8, "omap cell");
_Static_assert(sizeof(struct pfs_domap_vref) == 16, "omap value reference");
_Static_assert(sizeof(struct pfs_ddent) == POSFS_DENT_VLEN, "directory entry value is 17 bytes");
_Static_assert(sizeof(struct pfs_dwal_rec) == 0x60, "WAL record header");
_Static_assert(sizeof(struct pfs_dwal_entry) == 24, "WAL entry");
_Static_assert(POSFS_SB_BACKUP_OFFSET + POSFS_SB_SIZE <= POSFS_HEAD_SIZE, "superblocks in the head");
_Static_assert(offsetof(struct pfs_dsuper, label) == 0x100, "label at a fixed offset");

/* Derived geometry. */
#define POSFS_ONODES_PER_LEAF(bs)	(((bs) - sizeof(struct pfs_dblock_hdr)) / POSFS_ONODE_SIZE)
#define POSFS_RADIX_FANOUT(bs)		(((bs) - sizeof(struct pfs_dblock_hdr)) / sizeof(pfs_le64))
#define POSFS_CSUMS_PER_BLOCK(bs)	(((bs) - sizeof(struct pfs_dblock_hdr)) / sizeof(pfs_le32))

#endif /* POSFS_FORMAT_H */
