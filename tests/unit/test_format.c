/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Format layer codecs: every on-disk struct round-trips through its pair
 * of conversions; every single-bit flip of a sealed block is -EBADMSG;
 * a well-formed block in the wrong place, of the wrong owner, type or file
 * system is -EUCLEAN; decoders reject fields that would be trusted later.
 */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "posfs/crc32c.h"
#include "posfs/disk.h"

static const uint8_t uuid_a[16] = { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16 };
static const uint8_t uuid_b[16] = { 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1 };

static uint64_t rnd64(void)
{
	return (uint64_t)rand() << 42 ^ (uint64_t)rand() << 21 ^ (uint64_t)rand();
}

/* A sealed metadata block of bs bytes with random payload. */
static void *make_block(uint32_t bs, uint32_t magic, uint64_t blkno, uint64_t owner)
{
	uint8_t *b = calloc(1, bs);
	struct pfs_blockhdr h = {
		.magic = magic, .size = bs, .level = 2, .nr = 17,
		.blkno = blkno, .owner = owner, .lsn = 99, .flags = 0,
	};

	memcpy(h.uuid, uuid_a, 16);
	for (uint32_t i = sizeof(struct pfs_dblock_hdr); i < bs; i++)
		b[i] = (uint8_t)rand();
	pfs_block_hdr_encode(b, &h);
	pfs_block_seal(b);
	return b;
}

START_TEST(block_header_round_trip)
{
	struct pfs_blockhdr in, out;
	uint8_t buf[8192] = { 0 };

	memset(&in, 0, sizeof(in));
	memset(&out, 0xee, sizeof(out));
	in.magic = POSFS_MAGIC_EXTENT;
	in.size = 8192;
	in.level = 3;
	in.nr = 250;
	in.blkno = 0x123456789aull;
	in.owner = POSFS_OID(7, 12345);
	in.lsn = 0xfedcba9876ull;
	in.flags = 0x55aa;
	memcpy(in.uuid, uuid_a, 16);
	pfs_block_hdr_encode(buf, &in);
	pfs_block_seal(buf);
	ck_assert_int_eq(pfs_block_verify(buf, sizeof(buf), NULL, &out), 0);
	ck_assert_uint_eq(out.magic, in.magic);
	ck_assert_uint_eq(out.size, in.size);
	ck_assert_uint_eq(out.level, in.level);
	ck_assert_uint_eq(out.nr, in.nr);
	ck_assert_uint_eq(out.blkno, in.blkno);
	ck_assert_uint_eq(out.owner, in.owner);
	ck_assert_uint_eq(out.lsn, in.lsn);
	ck_assert_uint_eq(out.flags, in.flags);
	ck_assert_int_eq(memcmp(out.uuid, in.uuid, 16), 0);
	/* The magic reads as ASCII in a hex dump. */
	ck_assert_int_eq(memcmp(buf + 4, "PFEX", 4), 0);
}
END_TEST

/*
 * Single-bit flips are detected as -EBADMSG: every bit of a 4 KiB block;
 * of a 64 KiB block every bit of its first and last 4 KiB and every 61st
 * bit between (crc32c detects all single-bit errors at these lengths; the
 * sample keeps the test fast under sanitizers).
 */
static void every_bit_flip(uint32_t bs, uint32_t magic)
{
	uint8_t *b = make_block(bs, magic, 1234, POSFS_OWNER_SHARD(3));
	struct pfs_block_expect exp = {
		.magic = magic, .size = bs, .blkno = 1234, .check_blkno = true,
		.owner = POSFS_OWNER_SHARD(3), .check_owner = true, .uuid = uuid_a,
	};

	ck_assert_int_eq(pfs_block_verify(b, bs, &exp, NULL), 0);
	for (uint32_t bit = 0; bit < bs * 8;
	     bit += (bit < 4096 * 8 || bit >= (bs - 4096) * 8) ? 1 : 61) {
		b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
		ck_assert_msg(pfs_block_verify(b, bs, &exp, NULL) == -EBADMSG,
			      "flip of bit %u not detected", bit);
		b[bit / 8] ^= (uint8_t)(1u << (bit % 8));
	}
	ck_assert_int_eq(pfs_block_verify(b, bs, &exp, NULL), 0);
	free(b);
}

START_TEST(bit_flips_4k)
{
	every_bit_flip(4096, POSFS_MAGIC_FREE);
}
END_TEST

START_TEST(bit_flips_64k)
{
	every_bit_flip(65536, POSFS_MAGIC_OMAP);
}
END_TEST

START_TEST(misdirected_blocks)
{
	uint8_t *b = make_block(4096, POSFS_MAGIC_RADIX, 500, POSFS_OWNER_SHARD(1));
	struct pfs_block_expect exp = {
		.magic = POSFS_MAGIC_RADIX, .size = 4096, .blkno = 500, .check_blkno = true,
		.owner = POSFS_OWNER_SHARD(1), .check_owner = true, .uuid = uuid_a,
	}, e;

	ck_assert_int_eq(pfs_block_verify(b, 4096, &exp, NULL), 0);
	e = exp; e.blkno = 501;				/* written to the wrong place */
	ck_assert_int_eq(pfs_block_verify(b, 4096, &e, NULL), -EUCLEAN);
	e = exp; e.blkno = 0;				/* block 0 is an address too */
	ck_assert_int_eq(pfs_block_verify(b, 4096, &e, NULL), -EUCLEAN);
	e = exp; e.owner = POSFS_OWNER_SHARD(2);	/* another shard's block */
	ck_assert_int_eq(pfs_block_verify(b, 4096, &e, NULL), -EUCLEAN);
	e = exp; e.uuid = uuid_b;			/* another file system's block */
	ck_assert_int_eq(pfs_block_verify(b, 4096, &e, NULL), -EUCLEAN);
	e = exp; e.magic = POSFS_MAGIC_ONODES;		/* another type */
	ck_assert_int_eq(pfs_block_verify(b, 4096, &e, NULL), -EUCLEAN);
	e = exp; e.size = 8192;				/* another block size */
	ck_assert_int_eq(pfs_block_verify(b, 4096, &e, NULL), -EUCLEAN);
	/* A buffer shorter than the size the block claims. */
	ck_assert_int_eq(pfs_block_verify(b, 2048, NULL, NULL), -EUCLEAN);
	ck_assert_int_eq(pfs_block_verify(b, 10, NULL, NULL), -EUCLEAN);
	/* All zeros (a never-written block) is a checksum failure, not a crash. */
	memset(b, 0, 4096);
	ck_assert_int_ne(pfs_block_verify(b, 4096, &exp, NULL), 0);
	free(b);
}
END_TEST

static void random_onode(struct pfs_onode *o)
{
	memset(o, 0, sizeof(*o));
	o->oid = rnd64() & POSFS_OID_MAX;
	if (!o->oid)
		o->oid = 1;
	o->generation = rnd64();
	o->mode = S_IFREG | 0644;
	o->uid = (uint32_t)rand();
	o->gid = (uint32_t)rand();
	o->nlink = (uint32_t)rand();
	o->size = rnd64();
	o->blocks = rnd64();
	o->rdev = rnd64();
	o->atime = (struct pfs_timespec){ -(int64_t)(rnd64() >> 2), 999999999 };
	o->mtime = (struct pfs_timespec){ (int64_t)(rnd64() >> 2), (uint32_t)rand() % 1000000000 };
	o->ctime = (struct pfs_timespec){ 1, 0 };
	o->btime = (struct pfs_timespec){ 1700000000, 123 };
	o->flags = POSFS_ONODE_ORPHAN;
	o->attr_flags = (uint32_t)rand();
	o->parent = rnd64() & POSFS_OID_MAX;
	o->version = rnd64();
	o->omap = (struct pfs_tree_root){ 77, 2 };
	o->omap_count = rnd64();
	o->extents = (struct pfs_tree_root){ 88, 3 };
	o->data_fmt = POSFS_DATA_BTREE;
	o->data_len = 0;
	o->xattr_len = 100;
	o->xattr_count = 3;
	o->xattr_omap_count = rnd64();
	for (unsigned i = 0; i < POSFS_INLINE_SIZE; i++)
		o->inline_area[i] = (uint8_t)rand();
}

START_TEST(onode_round_trip)
{
	struct pfs_onode in, out;
	struct pfs_donode d;

	for (int i = 0; i < 1000; i++) {
		random_onode(&in);
		pfs_onode_to_disk(&in, &d);
		ck_assert_int_eq(pfs_onode_from_disk(&d, &out), 0);
		ck_assert_int_eq(memcmp(&in, &out, sizeof(in)), 0);
	}
	/* A free slot is all zeros and decodes as oid 0. */
	memset(&in, 0, sizeof(in));
	pfs_onode_to_disk(&in, &d);
	ck_assert_int_eq(pfs_onode_from_disk(&d, &out), 0);
	ck_assert_uint_eq(out.oid, 0);
}
END_TEST

START_TEST(onode_rejects_bad_fields)
{
	struct pfs_onode in, out;
	struct pfs_donode d, good;

	random_onode(&in);
	pfs_onode_to_disk(&in, &good);

	d = good; d.mtime_nsec = 1000000000;
	ck_assert_int_eq(pfs_onode_from_disk(&d, &out), -EUCLEAN);
	d = good; d.data_fmt = 3;
	ck_assert_int_eq(pfs_onode_from_disk(&d, &out), -EUCLEAN);
	d = good; d.data_len = 300; d.xattr_len = 21;	/* past the inline area */
	ck_assert_int_eq(pfs_onode_from_disk(&d, &out), -EUCLEAN);
	d = good; d.data_fmt = POSFS_DATA_EXTENTS; d.extents.blkno = 0; d.extents.height = 0;
	d.data_len = 33;				/* not whole extent records */
	ck_assert_int_eq(pfs_onode_from_disk(&d, &out), -EUCLEAN);
	d = good; d.data_fmt = POSFS_DATA_INLINE; d.extents.blkno = 0; d.extents.height = 0;
	d.size = 10; d.data_len = 11;			/* more inline data than size */
	ck_assert_int_eq(pfs_onode_from_disk(&d, &out), -EUCLEAN);
	d = good; d.extents.blkno = 0;			/* BTREE without a root */
	ck_assert_int_eq(pfs_onode_from_disk(&d, &out), -EUCLEAN);
	d = good; d.omap.height = 0;			/* root without a height */
	ck_assert_int_eq(pfs_onode_from_disk(&d, &out), -EUCLEAN);
	d = good; d.oid = UINT64_MAX;
	ck_assert_int_eq(pfs_onode_from_disk(&d, &out), -EUCLEAN);
	d = good; d.flags = 0x80;
	ck_assert_int_eq(pfs_onode_from_disk(&d, &out), -EUCLEAN);
	d = good; d.reserved[3] = 1;
	ck_assert_int_eq(pfs_onode_from_disk(&d, &out), -EUCLEAN);
	memset(&d, 0, sizeof(d)); d.mode = 1;		/* a free slot with garbage */
	ck_assert_int_eq(pfs_onode_from_disk(&d, &out), -EUCLEAN);
}
END_TEST

/* Inline extent records: each valid alone, sorted, no overlap. */
START_TEST(onode_inline_extents)
{
	struct pfs_extent e[2] = {
		{ .lblk = 0, .pblk = 100, .len = 4, .plen = 4 },
		{ .lblk = 8, .pblk = 200, .len = 2, .plen = 2 },
	};
	struct pfs_onode in, out;
	struct pfs_donode d;

	random_onode(&in);
	in.data_fmt = POSFS_DATA_EXTENTS;
	in.extents = (struct pfs_tree_root){ 0, 0 };
	in.xattr_len = 0;
	in.xattr_count = 0;
	in.data_len = 2 * sizeof(struct pfs_dextent);
	memset(in.inline_area, 0, sizeof(in.inline_area));
	for (int i = 0; i < 2; i++)
		pfs_extent_to_disk(&e[i], (struct pfs_dextent *)in.inline_area + i);
	pfs_onode_to_disk(&in, &d);
	ck_assert_int_eq(pfs_onode_from_disk(&d, &out), 0);
	ck_assert_int_eq(pfs_onode_extents_ok(&out), 0);

	e[1].len = 0;					/* empty */
	pfs_extent_to_disk(&e[1], (struct pfs_dextent *)in.inline_area + 1);
	pfs_onode_to_disk(&in, &d);
	ck_assert_int_eq(pfs_onode_from_disk(&d, &out), 0);
	ck_assert_int_eq(pfs_onode_extents_ok(&out), -EUCLEAN);
	e[1].len = e[1].plen = 2;
	e[1].lblk = 1ull << 52;				/* far past the largest file */
	pfs_extent_to_disk(&e[1], (struct pfs_dextent *)in.inline_area + 1);
	pfs_onode_to_disk(&in, &d);
	ck_assert_int_eq(pfs_onode_from_disk(&d, &out), 0);
	ck_assert_int_eq(pfs_onode_extents_ok(&out), -EUCLEAN);
	e[1].lblk = 3;					/* overlaps the first */
	pfs_extent_to_disk(&e[1], (struct pfs_dextent *)in.inline_area + 1);
	pfs_onode_to_disk(&in, &d);
	ck_assert_int_eq(pfs_onode_from_disk(&d, &out), 0);
	ck_assert_int_eq(pfs_onode_extents_ok(&out), -EUCLEAN);
	e[1].lblk = 4;					/* adjacent: fine */
	pfs_extent_to_disk(&e[1], (struct pfs_dextent *)in.inline_area + 1);
	pfs_onode_to_disk(&in, &d);
	ck_assert_int_eq(pfs_onode_from_disk(&d, &out), 0);
	ck_assert_int_eq(pfs_onode_extents_ok(&out), 0);
	pfs_extent_to_disk(&e[0], (struct pfs_dextent *)in.inline_area + 1);
	pfs_extent_to_disk(&e[1], (struct pfs_dextent *)in.inline_area);
	pfs_onode_to_disk(&in, &d);			/* out of order */
	ck_assert_int_eq(pfs_onode_from_disk(&d, &out), 0);
	ck_assert_int_eq(pfs_onode_extents_ok(&out), -EUCLEAN);
}
END_TEST

START_TEST(extent_round_trip)
{
	struct pfs_extent in = { .lblk = POSFS_FILE_BLOCKS_MAX - 256, .pblk = 12345, .len = 256, .plen = 256,
				 .flags = POSFS_EXTENT_SHARED }, out;
	struct pfs_dextent d;

	pfs_extent_to_disk(&in, &d);
	ck_assert_int_eq(pfs_extent_from_disk(&d, &out), 0);
	ck_assert_int_eq(memcmp(&in, &out, sizeof(in)), 0);
	in.flags |= POSFS_EXTENT_UNWRITTEN;	/* reserved: no posfs writes it */
	pfs_extent_to_disk(&in, &d);
	ck_assert_int_eq(pfs_extent_from_disk(&d, &out), -EUCLEAN);
	in.flags = POSFS_EXTENT_SHARED;
	in.flags = POSFS_EXTENT_COMPRESSED; in.plen = 3; in.csum = 0xabcdef01;
	pfs_extent_to_disk(&in, &d);
	ck_assert_int_eq(pfs_extent_from_disk(&d, &out), 0);
	ck_assert_int_eq(memcmp(&in, &out, sizeof(in)), 0);

	in = (struct pfs_extent){ .lblk = 0, .pblk = 10, .len = 0, .plen = 0 };
	pfs_extent_to_disk(&in, &d);
	ck_assert_int_eq(pfs_extent_from_disk(&d, &out), -EUCLEAN);	/* empty */
	in = (struct pfs_extent){ .lblk = UINT64_MAX - 1, .pblk = 10, .len = 5, .plen = 5 };
	pfs_extent_to_disk(&in, &d);
	ck_assert_int_eq(pfs_extent_from_disk(&d, &out), -EUCLEAN);	/* wraps */
	in = (struct pfs_extent){ .lblk = POSFS_FILE_BLOCKS_MAX - 255, .pblk = 10, .len = 256,
				  .plen = 256 };
	pfs_extent_to_disk(&in, &d);
	ck_assert_int_eq(pfs_extent_from_disk(&d, &out), -EUCLEAN);	/* past the largest file */
	in = (struct pfs_extent){ .lblk = 1ull << 52, .pblk = 10, .len = 1, .plen = 1 };
	pfs_extent_to_disk(&in, &d);
	ck_assert_int_eq(pfs_extent_from_disk(&d, &out), -EUCLEAN);	/* bytes would wrap */
	in = (struct pfs_extent){ .lblk = 0, .pblk = 10, .len = 5, .plen = 4 };
	pfs_extent_to_disk(&in, &d);
	ck_assert_int_eq(pfs_extent_from_disk(&d, &out), -EUCLEAN);	/* plen != len raw */
	in = (struct pfs_extent){ .lblk = 0, .pblk = 10, .len = 5, .plen = 5, .flags = 0x100 };
	pfs_extent_to_disk(&in, &d);
	ck_assert_int_eq(pfs_extent_from_disk(&d, &out), -EUCLEAN);	/* unknown flag */
	in = (struct pfs_extent){ .lblk = 0, .pblk = 0, .len = 5, .plen = 5 };
	pfs_extent_to_disk(&in, &d);
	ck_assert_int_eq(pfs_extent_from_disk(&d, &out), -EUCLEAN);	/* block 0 */
}
END_TEST

START_TEST(wal_record)
{
	uint32_t bs = 4096;
	uint8_t *buf = calloc(1, 3 * bs);
	struct pfs_wal_rec in = {
		.lsn = 41, .wal_block = 10, .owner = POSFS_OWNER_SHARD(0),
		.size = 2 * bs + 100, .nentries = 3, .txid = 7, .ntx = 2,
		.nblocks = 3, .checkpoint_lsn = 30,
	}, out;

	for (uint32_t i = sizeof(struct pfs_dwal_rec); i < in.size; i++)
		buf[i] = (uint8_t)rand();
	pfs_wal_rec_seal(&in, uuid_a, buf);
	ck_assert_int_eq(pfs_wal_rec_verify(buf, 3 * bs, 10, 41, POSFS_OWNER_SHARD(0),
					    uuid_a, bs, 64, &out), 0);
	ck_assert_uint_eq(out.lsn, 41);
	ck_assert_uint_eq(out.txid, 7);
	ck_assert_uint_eq(out.ntx, 2);
	ck_assert_uint_eq(out.nblocks, 3);
	ck_assert_uint_eq(out.size, 2 * bs + 100);
	ck_assert_uint_eq(out.nentries, 3);
	ck_assert_uint_eq(out.checkpoint_lsn, 30);
	/* A record from an earlier lap, another place, shard or fs: not it. */
	ck_assert_int_eq(pfs_wal_rec_verify(buf, 3 * bs, 10, 42, POSFS_OWNER_SHARD(0),
					    uuid_a, bs, 64, &out), -EUCLEAN);
	ck_assert_int_eq(pfs_wal_rec_verify(buf, 3 * bs, 11, 41, POSFS_OWNER_SHARD(0),
					    uuid_a, bs, 64, &out), -EUCLEAN);
	ck_assert_int_eq(pfs_wal_rec_verify(buf, 3 * bs, 10, 41, POSFS_OWNER_SHARD(1),
					    uuid_a, bs, 64, &out), -EUCLEAN);
	ck_assert_int_eq(pfs_wal_rec_verify(buf, 3 * bs, 10, 41, POSFS_OWNER_SHARD(0),
					    uuid_b, bs, 64, &out), -EUCLEAN);
	/* A record that would run past the WAL's end. */
	ck_assert_int_eq(pfs_wal_rec_verify(buf, 3 * bs, 10, 41, POSFS_OWNER_SHARD(0),
					    uuid_a, bs, 12, &out), -EUCLEAN);
	/* Torn: its last sector never reached the device. */
	memset(buf + 2 * bs, 0, 512);
	ck_assert_int_eq(pfs_wal_rec_verify(buf, 3 * bs, 10, 41, POSFS_OWNER_SHARD(0),
					    uuid_a, bs, 64, &out), -EBADMSG);
	free(buf);
}
END_TEST

START_TEST(probe_signatures)
{
	uint8_t *b = calloc(1, PFS_PROBE_SIZE);
	struct pfs_probe_result r;

	ck_assert_int_eq(pfs_probe(b, PFS_PROBE_SIZE, &r), 0);
	b[1024 + 0x38] = 0x53; b[1024 + 0x39] = 0xef;
	memcpy(b + 1024 + 0x78, "mydata", 6);
	ck_assert_int_eq(pfs_probe(b, PFS_PROBE_SIZE, &r), 1);
	ck_assert_str_eq(r.type, "ext2");
	ck_assert_str_eq(r.label, "mydata");
	b[1024 + 0x5c] = 0x4;
	ck_assert_int_eq(pfs_probe(b, PFS_PROBE_SIZE, &r), 1);
	ck_assert_str_eq(r.type, "ext3");
	b[1024 + 0x60] = 0x40;
	ck_assert_int_eq(pfs_probe(b, PFS_PROBE_SIZE, &r), 1);
	ck_assert_str_eq(r.type, "ext4");
	memset(b, 0, PFS_PROBE_SIZE);
	memcpy(b, "XFSB", 4);
	ck_assert_int_eq(pfs_probe(b, PFS_PROBE_SIZE, &r), 1);
	ck_assert_str_eq(r.type, "xfs");
	memset(b, 0, PFS_PROBE_SIZE);
	memcpy(b + 65536 + 0x40, "_BHRfS_M", 8);
	ck_assert_int_eq(pfs_probe(b, PFS_PROBE_SIZE, &r), 1);
	ck_assert_str_eq(r.type, "btrfs");
	/* Too short a buffer to hold the btrfs superblock: no match, no overrun. */
	ck_assert_int_eq(pfs_probe(b, 65536, &r), 0);
	memset(b, 0, PFS_PROBE_SIZE);
	memcpy(b + POSFS_SB_BACKUP_OFFSET + 4, "PFSB", 4);
	ck_assert_int_eq(pfs_probe(b, PFS_PROBE_SIZE, &r), 1);
	ck_assert_str_eq(r.type, "posfs");
	memset(b, 0, PFS_PROBE_SIZE);
	b[510] = 0x55; b[511] = 0xaa; b[446 + 4] = 0x83;
	ck_assert_int_eq(pfs_probe(b, PFS_PROBE_SIZE, &r), 1);
	ck_assert_str_eq(r.type, "dos");
	free(b);
}
END_TEST

START_TEST(feature_names)
{
	char buf[128];

	ck_assert_str_eq(pfs_feature_names(PFS_FEATURE_WORD_INCOMPAT,
					   POSFS_FEATURE_compression | POSFS_FEATURE_global_wal,
					   buf, sizeof(buf)), "compression,global_wal");
	ck_assert_str_eq(pfs_feature_names(PFS_FEATURE_WORD_INCOMPAT, 0x80000000u,
					   buf, sizeof(buf)), "0x80000000");
	ck_assert_str_eq(pfs_feature_names(PFS_FEATURE_WORD_RO_COMPAT,
					   POSFS_FEATURE_data_csum | 0x10, buf, sizeof(buf)),
			 "data_csum,0x10");
	ck_assert_str_eq(pfs_feature_names(PFS_FEATURE_WORD_COMPAT, 0, buf, sizeof(buf)), "");
}
END_TEST

int main(void)
{
	Suite *s = suite_create("format");
	TCase *tc = tcase_create("codecs");
	SRunner *sr;
	int failed;

	srand(1);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, block_header_round_trip);
	tcase_add_test(tc, bit_flips_4k);
	tcase_add_test(tc, bit_flips_64k);
	tcase_add_test(tc, misdirected_blocks);
	tcase_add_test(tc, onode_round_trip);
	tcase_add_test(tc, onode_rejects_bad_fields);
	tcase_add_test(tc, onode_inline_extents);
	tcase_add_test(tc, extent_round_trip);
	tcase_add_test(tc, wal_record);
	tcase_add_test(tc, probe_signatures);
	tcase_add_test(tc, feature_names);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
