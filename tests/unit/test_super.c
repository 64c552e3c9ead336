/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Superblock pair, shard header slots, geometry and newfs, on an in-memory
 * device: round trips field by field, the newest valid copy wins, a torn
 * or corrupt copy falls back to the other, geometry never overlaps or
 * leaves the device, and a new file system reads back as mkfs wrote it.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "posfs/disk.h"
#include "posfs/io.h"

static const uint8_t uuid_a[16] = { 0xde, 0xad, 0xbe, 0xef, 5, 6, 0x47, 8, 0x89, 10, 11, 12, 13, 14, 15, 16 };

static void layout(struct pfs_super *sb, uint64_t size, uint32_t bs, uint32_t shards)
{
	struct pfs_mkfs_params p = { .size = size, .block_size = bs, .shard_count = shards, .ncpu = 2 };

	memset(sb, 0, sizeof(*sb));
	ck_assert_int_eq(pfs_geo_compute(&p, sb, NULL), 0);
	memcpy(sb->uuid, uuid_a, 16);
	snprintf(sb->label, sizeof(sb->label), "test-volume");
	sb->feature_incompat = POSFS_FEATURE_global_wal;
	sb->state = POSFS_STATE_CLEAN;
	sb->errors = 1;
	sb->mkfs_time = 1700000000;
	sb->max_mount_count = UINT32_MAX;
}

static void assert_super_eq(const struct pfs_super *a, const struct pfs_super *b)
{
	ck_assert_uint_eq(a->rev, b->rev);
	ck_assert_uint_eq(a->block_size, b->block_size);
	ck_assert_uint_eq(a->total_blocks, b->total_blocks);
	ck_assert_uint_eq(a->feature_compat, b->feature_compat);
	ck_assert_uint_eq(a->feature_ro_compat, b->feature_ro_compat);
	ck_assert_uint_eq(a->feature_incompat, b->feature_incompat);
	ck_assert_uint_eq(a->shard_count, b->shard_count);
	ck_assert_uint_eq(a->first_shard_block, b->first_shard_block);
	ck_assert_uint_eq(a->shard_blocks, b->shard_blocks);
	ck_assert_uint_eq(a->wal_blocks, b->wal_blocks);
	ck_assert_uint_eq(a->global_wal_blocks, b->global_wal_blocks);
	ck_assert_uint_eq(a->global_block, b->global_block);
	ck_assert_uint_eq(a->small_write, b->small_write);
	ck_assert_uint_eq(a->onode_size, b->onode_size);
	ck_assert_uint_eq(a->csum_chunk, b->csum_chunk);
	ck_assert_uint_eq(a->sector_size, b->sector_size);
	ck_assert_uint_eq(a->atomic_write, b->atomic_write);
	ck_assert_uint_eq(a->state, b->state);
	ck_assert_uint_eq(a->errors, b->errors);
	ck_assert_uint_eq(a->generation, b->generation);
	ck_assert_uint_eq(a->mkfs_time, b->mkfs_time);
	ck_assert_uint_eq(a->mount_time, b->mount_time);
	ck_assert_uint_eq(a->write_time, b->write_time);
	ck_assert_uint_eq(a->check_time, b->check_time);
	ck_assert_uint_eq(a->mount_count, b->mount_count);
	ck_assert_uint_eq(a->max_mount_count, b->max_mount_count);
	ck_assert_uint_eq(a->root_oid, b->root_oid);
	ck_assert_uint_eq(a->root_uid, b->root_uid);
	ck_assert_uint_eq(a->root_gid, b->root_gid);
	ck_assert_int_eq(memcmp(a->uuid, b->uuid, 16), 0);
	ck_assert_str_eq(a->label, b->label);
	ck_assert_str_eq(a->last_mounted, b->last_mounted);
}

START_TEST(super_round_trip)
{
	struct pfs_super in, out;
	struct pfs_dsuper d;

	layout(&in, 1ull << 30, 8192, 3);
	in.generation = 77;
	in.mount_time = 1;
	in.write_time = 2;
	in.check_time = 3;
	in.mount_count = 4;
	in.root_uid = 1000;
	in.root_gid = 100;
	in.csum_chunk = 4096;
	in.feature_ro_compat = POSFS_FEATURE_data_csum;
	memset(in.label, 'x', POSFS_LABEL_SIZE);	/* a full-length label */
	in.label[POSFS_LABEL_SIZE] = 0;
	snprintf(in.last_mounted, sizeof(in.last_mounted), "/mnt/data");
	pfs_super_to_disk(&in, POSFS_SB_OFFSET, &d);
	ck_assert_int_eq(memcmp((uint8_t *)&d + 4, "PFSB", 4), 0);
	ck_assert_int_eq(memcmp((uint8_t *)&d + 0x28, uuid_a, 16), 0);	/* uuid at 4136 */
	ck_assert_int_eq(pfs_super_from_disk(&d, POSFS_SB_OFFSET, &out), 0);
	assert_super_eq(&in, &out);
	/* The backup at the primary's place is misdirected. */
	ck_assert_int_eq(pfs_super_from_disk(&d, POSFS_SB_BACKUP_OFFSET, &out), -EUCLEAN);
}
END_TEST

START_TEST(super_rejects_bad_geometry)
{
	struct pfs_super sb, bad;
	struct pfs_dsuper d;

	layout(&sb, 256ull << 20, 4096, 2);
	ck_assert_int_eq(pfs_super_check(&sb), 0);
	bad = sb; bad.block_size = 3000;
	ck_assert_int_eq(pfs_super_check(&bad), -EUCLEAN);
	bad = sb; bad.shard_count = 0;
	ck_assert_int_eq(pfs_super_check(&bad), -EUCLEAN);
	bad = sb; bad.shard_count = 3;		/* shards run past the end */
	ck_assert_int_eq(pfs_super_check(&bad), -EUCLEAN);
	bad = sb; bad.first_shard_block = sb.global_block;	/* overlaps the global WAL */
	ck_assert_int_eq(pfs_super_check(&bad), -EUCLEAN);
	bad = sb; bad.global_block = 0;		/* inside the head */
	ck_assert_int_eq(pfs_super_check(&bad), -EUCLEAN);
	bad = sb; bad.rev = 2;
	ck_assert_int_eq(pfs_super_check(&bad), -EUCLEAN);
	bad = sb; bad.wal_blocks = (uint32_t)sb.shard_blocks;	/* WAL fills the shard */
	ck_assert_int_eq(pfs_super_check(&bad), -EUCLEAN);
	bad = sb; bad.total_blocks = UINT64_MAX;
	ck_assert_int_eq(pfs_super_check(&bad), -EUCLEAN);
	/* A sealed superblock with such a field: checksum fine, still refused. */
	bad = sb; bad.shard_count = 300;
	pfs_super_to_disk(&bad, POSFS_SB_OFFSET, &d);
	ck_assert_int_eq(pfs_super_from_disk(&d, POSFS_SB_OFFSET, &bad), -EUCLEAN);
}
END_TEST

START_TEST(super_features)
{
	struct pfs_super sb;
	uint32_t unknown;

	layout(&sb, 64ull << 20, 4096, 1);
	ck_assert_int_eq(pfs_super_features_ok(&sb, false, &unknown), 0);
	sb.feature_compat = 0x80;			/* unknown compat: fine */
	ck_assert_int_eq(pfs_super_features_ok(&sb, false, &unknown), 0);
	sb.feature_ro_compat = 0x40;			/* unknown ro_compat */
	ck_assert_int_eq(pfs_super_features_ok(&sb, false, &unknown), -EROFS);
	ck_assert_uint_eq(unknown, 0x40);
	ck_assert_int_eq(pfs_super_features_ok(&sb, true, &unknown), 0);
	sb.feature_incompat |= 0x100;			/* unknown incompat */
	ck_assert_int_eq(pfs_super_features_ok(&sb, true, &unknown), -EOPNOTSUPP);
	ck_assert_uint_eq(unknown, 0x100);
}
END_TEST

static struct pfs_dev *mem_dev(uint64_t size)
{
	struct pfs_dev *dev = NULL;

	ck_assert_int_eq(pfs_dev_open_mem(size, 512, &dev), 0);
	return dev;
}

static void corrupt(struct pfs_dev *dev, uint64_t off)
{
	uint8_t *b = pfs_dev_buf_alloc(512);

	ck_assert_int_eq(pfs_dev_pread(dev, b, 512, off), 0);
	b[100] ^= 0x10;
	ck_assert_int_eq(pfs_dev_pwrite(dev, b, 512, off), 0);
	pfs_dev_buf_free(b);
}

START_TEST(super_newest_valid_wins)
{
	struct pfs_dev *dev = mem_dev(64ull << 20);
	struct pfs_super sb, got, old;
	struct pfs_super_status st;
	struct pfs_dsuper *d = pfs_dev_buf_alloc(POSFS_SB_SIZE);

	layout(&sb, 64ull << 20, 4096, 1);
	/* Nothing there: neither copy is valid. */
	ck_assert_int_eq(pfs_super_read(dev, &got, &st), -EBADMSG);
	ck_assert_int_eq(pfs_super_write(dev, &sb), 0);
	ck_assert_uint_eq(sb.generation, 1);
	ck_assert_int_eq(pfs_super_read(dev, &got, &st), 0);
	assert_super_eq(&sb, &got);
	ck_assert_int_eq(st.used, PFS_SUPER_PRIMARY);
	ck_assert(!st.stale);
	old = sb;
	sb.mount_count = 5;
	ck_assert_int_eq(pfs_super_write(dev, &sb), 0);
	ck_assert_uint_eq(sb.generation, 2);

	/* A crash after the primary reached the device: backup is older. */
	pfs_super_to_disk(&old, POSFS_SB_BACKUP_OFFSET, d);
	ck_assert_int_eq(pfs_dev_pwrite(dev, d, POSFS_SB_SIZE, POSFS_SB_BACKUP_OFFSET), 0);
	ck_assert_int_eq(pfs_super_read(dev, &got, &st), 0);
	ck_assert_uint_eq(got.generation, 2);
	ck_assert_uint_eq(got.mount_count, 5);
	ck_assert(st.stale);

	/* A torn primary: the backup (older but valid) is used. */
	corrupt(dev, POSFS_SB_OFFSET);
	ck_assert_int_eq(pfs_super_read(dev, &got, &st), 0);
	ck_assert_int_eq(st.used, PFS_SUPER_BACKUP);
	ck_assert_int_eq(st.primary_err, -EBADMSG);
	ck_assert_uint_eq(got.generation, 1);
	assert_super_eq(&old, &got);

	/* A newer backup wins over a valid older primary. */
	ck_assert_int_eq(pfs_super_write(dev, &sb), 0);
	sb.generation = 9;
	pfs_super_to_disk(&sb, POSFS_SB_BACKUP_OFFSET, d);
	ck_assert_int_eq(pfs_dev_pwrite(dev, d, POSFS_SB_SIZE, POSFS_SB_BACKUP_OFFSET), 0);
	ck_assert_int_eq(pfs_super_read(dev, &got, &st), 0);
	ck_assert_int_eq(st.used, PFS_SUPER_BACKUP);
	ck_assert_uint_eq(got.generation, 9);

	/* Both bad: an error, never a guess. */
	corrupt(dev, POSFS_SB_OFFSET);
	corrupt(dev, POSFS_SB_BACKUP_OFFSET);
	ck_assert_int_eq(pfs_super_read(dev, &got, &st), -EBADMSG);
	pfs_dev_buf_free(d);
	pfs_dev_close(dev);
}
END_TEST

/* The superblock from a device's first bytes as read by hand (what the
 * mount helper does to find LABEL= and UUID=): the newest valid copy. */
START_TEST(super_from_head)
{
	struct pfs_dev *dev = mem_dev(64ull << 20);
	struct pfs_super sb, got;
	uint8_t *head = pfs_dev_buf_alloc(PFS_SUPER_HEAD_SIZE);
	struct pfs_dsuper *d = pfs_dev_buf_alloc(POSFS_SB_SIZE);

	layout(&sb, 64ull << 20, 4096, 1);
	ck_assert_int_eq(pfs_dev_pread(dev, head, PFS_SUPER_HEAD_SIZE, 0), 0);
	ck_assert_int_eq(pfs_super_from_head(head, PFS_SUPER_HEAD_SIZE, &got), -EBADMSG);
	ck_assert_int_eq(pfs_super_write(dev, &sb), 0);
	ck_assert_int_eq(pfs_dev_pread(dev, head, PFS_SUPER_HEAD_SIZE, 0), 0);
	ck_assert_int_eq(pfs_super_from_head(head, PFS_SUPER_HEAD_SIZE - 1, &got), -EINVAL);
	ck_assert_int_eq(pfs_super_from_head(head, PFS_SUPER_HEAD_SIZE, &got), 0);
	assert_super_eq(&sb, &got);

	/* a label set later: the newer backup wins over an older primary */
	snprintf(sb.label, sizeof(sb.label), "renamed");
	sb.generation = 7;
	pfs_super_to_disk(&sb, POSFS_SB_BACKUP_OFFSET, d);
	ck_assert_int_eq(pfs_dev_pwrite(dev, d, POSFS_SB_SIZE, POSFS_SB_BACKUP_OFFSET), 0);
	ck_assert_int_eq(pfs_dev_pread(dev, head, PFS_SUPER_HEAD_SIZE, 0), 0);
	ck_assert_int_eq(pfs_super_from_head(head, PFS_SUPER_HEAD_SIZE, &got), 0);
	ck_assert_str_eq(got.label, "renamed");

	/* a torn backup: the primary */
	corrupt(dev, POSFS_SB_BACKUP_OFFSET);
	ck_assert_int_eq(pfs_dev_pread(dev, head, PFS_SUPER_HEAD_SIZE, 0), 0);
	ck_assert_int_eq(pfs_super_from_head(head, PFS_SUPER_HEAD_SIZE, &got), 0);
	ck_assert_str_eq(got.label, "test-volume");
	pfs_dev_buf_free(d);
	pfs_dev_buf_free(head);
	pfs_dev_close(dev);
}
END_TEST

START_TEST(uuid_text)
{
	uint8_t u[POSFS_UUID_SIZE], v[POSFS_UUID_SIZE];
	char s[PFS_UUID_STR_SIZE];

	for (unsigned i = 0; i < sizeof(u); i++)
		u[i] = (uint8_t)(0x10 * i + 0xa);
	pfs_uuid_format(u, s);
	ck_assert_str_eq(s, "0a1a2a3a-4a5a-6a7a-8a9a-aabacadaeafa");
	ck_assert_int_eq(pfs_uuid_parse(s, v), 0);
	ck_assert_mem_eq(u, v, sizeof(u));
	ck_assert_int_eq(pfs_uuid_parse("0A1A2A3A4A5A6A7A8A9AAABACADAEAFA", v), 0);
	ck_assert_mem_eq(u, v, sizeof(u));
	memset(v, 0x55, sizeof(v));
	ck_assert_int_eq(pfs_uuid_parse("0a1a2a3a-4a5a-6a7a-8a9a-aabacadaeaf", v), -EINVAL);
	ck_assert_int_eq(pfs_uuid_parse("0a1a2a3a-4a5a-6a7a-8a9a-aabacadaeafa00", v), -EINVAL);
	ck_assert_int_eq(pfs_uuid_parse("0a1a2a3a-4a5a-6a7a-8a9a-aabacadaeafg", v), -EINVAL);
	ck_assert_int_eq(pfs_uuid_parse("", v), -EINVAL);
	ck_assert_uint_eq(v[0], 0x55);	/* unchanged on error */
}
END_TEST

/* Geometry: shards tile the device after the global journal, no overlap. */
static void check_geometry(const struct pfs_super *sb)
{
	struct pfs_shard_geo g, gg;
	uint64_t next;

	ck_assert_int_eq(pfs_super_check(sb), 0);
	ck_assert_int_eq(pfs_geo_shard(sb, POSFS_SHARD_GLOBAL, &gg), 0);
	ck_assert_uint_ge(gg.start_block * sb->block_size, POSFS_HEAD_SIZE);
	ck_assert_uint_eq(gg.data_blocks, 0);
	next = gg.start_block + gg.nblocks;
	ck_assert_uint_eq(next, sb->first_shard_block);
	for (uint32_t i = 0; i < sb->shard_count; i++) {
		ck_assert_int_eq(pfs_geo_shard(sb, i, &g), 0);
		ck_assert_uint_eq(g.start_block, next);
		ck_assert_uint_eq(g.wal_start, g.start_block + 2);
		ck_assert_uint_eq(g.csum_start, g.wal_start + g.wal_blocks);
		ck_assert_uint_eq(g.data_start, g.csum_start + g.csum_blocks);
		if (sb->csum_chunk) {
			/* the table covers the data area, with less than a block to spare */
			uint64_t need = g.data_blocks * (sb->block_size / sb->csum_chunk);
			uint64_t per = POSFS_CSUMS_PER_BLOCK(sb->block_size);

			ck_assert_uint_ge(g.csum_blocks * per, need);
			ck_assert_uint_lt((g.csum_blocks - 1) * per, need);
			ck_assert_int_eq(pfs_geo_csum_shard(sb, g.csum_start), (int)i);
			ck_assert_int_eq(pfs_geo_csum_shard(sb, g.data_start - 1), (int)i);
			ck_assert_int_eq(pfs_geo_csum_shard(sb, g.data_start), -EINVAL);
			ck_assert_int_eq(pfs_geo_block_shard(sb, g.csum_start), -EINVAL);
		} else {
			ck_assert_uint_eq(g.csum_blocks, 0);
		}
		ck_assert_uint_ge(g.data_blocks * sb->block_size, POSFS_SHARD_MIN_DATA);
		ck_assert_uint_eq(g.data_start + g.data_blocks, g.start_block + g.nblocks);
		/* Block ownership at the data area's edges. */
		ck_assert_int_eq(pfs_geo_block_shard(sb, g.data_start), (int)i);
		ck_assert_int_eq(pfs_geo_block_shard(sb, g.data_start + g.data_blocks - 1), (int)i);
		ck_assert_int_eq(pfs_geo_block_shard(sb, g.wal_start), -EINVAL);
		ck_assert_int_eq(pfs_geo_block_shard(sb, g.start_block), -EINVAL);
		next = g.start_block + g.nblocks;
	}
	ck_assert_uint_eq(next, sb->total_blocks);
	ck_assert_int_eq(pfs_geo_block_shard(sb, sb->total_blocks), -EINVAL);
	ck_assert_int_eq(pfs_geo_block_shard(sb, 0), -EINVAL);
	ck_assert_int_eq(pfs_geo_shard(sb, sb->shard_count, &g), -EINVAL);
}

START_TEST(geometry_layouts)
{
	static const uint64_t sizes[] = { 8ull << 20, 100ull << 20, (1ull << 30) + 12345,
					  64ull << 30, 3ull << 40 };
	static const uint32_t bss[] = { 4096, 8192, 65536 };
	struct pfs_mkfs_params p;
	struct pfs_super sb;
	uint64_t min;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		for (size_t j = 0; j < sizeof(bss) / sizeof(bss[0]); j++)
			for (uint32_t shards = 0; shards <= 8; shards += 4) {
				p = (struct pfs_mkfs_params){ .size = sizes[i], .block_size = bss[j],
							      .shard_count = shards, .ncpu = 4 };
				/* checksums: the default, none, the smallest chunk */
				p.no_data_csum = shards == 4;
				p.csum_chunk = shards == 8 ? POSFS_CSUM_CHUNK_MIN : 0;
				memset(&sb, 0, sizeof(sb));
				if (pfs_geo_compute(&p, &sb, &min) == -ENOSPC) {
					ck_assert_uint_gt(min, sizes[i]);
					continue;
				}
				check_geometry(&sb);
				ck_assert_uint_eq(sb.csum_chunk, shards == 4 ? 0 :
						  shards == 8 ? POSFS_CSUM_CHUNK_MIN : 4096);
				ck_assert_uint_eq(sb.feature_ro_compat, shards == 4 ? 0 :
						  POSFS_FEATURE_data_csum);
				if (!shards) {	/* default: one per CPU, each >= 256 MiB */
					uint64_t want = sizes[i] / POSFS_SHARD_DEFAULT_SIZE;

					want = want < 1 ? 1 : want > 4 ? 4 : want;
					ck_assert_uint_eq(sb.shard_count, want);
				}
				ck_assert_uint_eq(sb.small_write, POSFS_SMALL_WRITE_DEFAULT);
				ck_assert_uint_le((uint64_t)sb.wal_blocks * sb.block_size,
						  POSFS_WAL_DEFAULT_MAX);
			}
}
END_TEST

START_TEST(geometry_minimum_is_exact)
{
	struct pfs_mkfs_params p = { .block_size = 4096, .shard_count = 3, .ncpu = 1 };
	struct pfs_super sb;
	uint64_t min, min2;

	memset(&sb, 0, sizeof(sb));
	p.size = 1 << 20;
	ck_assert_int_eq(pfs_geo_compute(&p, &sb, &min), -ENOSPC);
	p.size = min;
	ck_assert_int_eq(pfs_geo_compute(&p, &sb, &min2), 0);
	check_geometry(&sb);
	p.size = min - 4096;
	ck_assert_int_eq(pfs_geo_compute(&p, &sb, &min2), -ENOSPC);
	ck_assert_uint_eq(min2, min);
	/* Options out of range. */
	p.size = 1ull << 30;
	p.csum_chunk = 256;
	ck_assert_int_eq(pfs_geo_compute(&p, &sb, NULL), -EINVAL);
	p.csum_chunk = 8192;		/* larger than the block */
	ck_assert_int_eq(pfs_geo_compute(&p, &sb, NULL), -EINVAL);
	p.csum_chunk = 1024;
	p.no_data_csum = true;
	ck_assert_int_eq(pfs_geo_compute(&p, &sb, NULL), -EINVAL);
	p.csum_chunk = 0;
	p.no_data_csum = false;
	p.block_size = 2048;
	ck_assert_int_eq(pfs_geo_compute(&p, &sb, NULL), -EINVAL);
	p.block_size = 4096;
	p.small_write = 2u << 20;
	ck_assert_int_eq(pfs_geo_compute(&p, &sb, NULL), -EINVAL);
	p.small_write = 512u << 10;
	p.wal_bytes = 1u << 20;		/* fewer than four small writes */
	ck_assert_int_eq(pfs_geo_compute(&p, &sb, NULL), -EINVAL);
	p.small_write = 0;
	p.wal_bytes = 0;
	p.shard_count = 257;
	ck_assert_int_eq(pfs_geo_compute(&p, &sb, NULL), -EINVAL);
}
END_TEST

START_TEST(shard_header_slots)
{
	struct pfs_dev *dev = mem_dev(64ull << 20);
	struct pfs_super sb;
	struct pfs_newfs_opts o = { .root_mode = 0755, .now = 1700000000 };
	struct pfs_shard_hdr h, h2;
	struct pfs_shard_status st;
	struct pfs_shard_geo g;

	layout(&sb, 64ull << 20, 4096, 2);
	ck_assert_int_eq(pfs_newfs_write(dev, &sb, &o), 0);
	ck_assert_int_eq(pfs_shard_hdr_read(dev, &sb, 1, &h, &st), 0);
	ck_assert_int_eq(st.slot_err[0], 0);
	ck_assert_int_eq(st.slot_err[1], 0);
	ck_assert_uint_eq(h.slot, 0);
	ck_assert_uint_eq(h.seq, 1);

	/* Each write goes to the other slot with seq + 1. */
	for (int i = 0; i < 5; i++) {
		uint32_t prev = h.slot;

		h.wal_tail = (uint64_t)i + 1;
		h.wal_tail_lsn = 10 + (uint64_t)i;
		h.checkpoint_lsn = 10 + (uint64_t)i;
		ck_assert_int_eq(pfs_shard_hdr_write(dev, &sb, &h), 0);
		ck_assert_uint_eq(h.slot, prev ^ 1);
		ck_assert_int_eq(pfs_shard_hdr_read(dev, &sb, 1, &h2, NULL), 0);
		ck_assert_uint_eq(h2.seq, h.seq);
		ck_assert_uint_eq(h2.slot, h.slot);
		ck_assert_uint_eq(h2.wal_tail, (uint64_t)i + 1);
	}
	/* The newest slot torn: the older one, a consistent state, is read. */
	ck_assert_int_eq(pfs_geo_shard(&sb, 1, &g), 0);
	corrupt(dev, (g.start_block + h.slot) * sb.block_size);
	ck_assert_int_eq(pfs_shard_hdr_read(dev, &sb, 1, &h2, &st), 0);
	ck_assert_int_eq(st.slot_err[h.slot], -EBADMSG);
	ck_assert_uint_eq(h2.seq, h.seq - 1);
	ck_assert_uint_eq(h2.wal_tail, 4);
	/* The next write replaces the torn slot, not the good one. */
	h = h2;
	ck_assert_int_eq(pfs_shard_hdr_write(dev, &sb, &h), 0);
	ck_assert_int_eq(pfs_shard_hdr_read(dev, &sb, 1, &h2, &st), 0);
	ck_assert_int_eq(st.slot_err[0], 0);
	ck_assert_int_eq(st.slot_err[1], 0);
	/* Shard 0's header is not shard 1's: read at the wrong place fails. */
	ck_assert_int_eq(pfs_geo_shard(&sb, 0, &g), 0);
	{
		uint8_t *b = pfs_dev_buf_alloc(4096);

		ck_assert_int_eq(pfs_dev_pread(dev, b, 4096, g.start_block * 4096), 0);
		ck_assert_int_eq(pfs_shard_hdr_from_disk(&sb, 1, g.start_block, b, &h2), -EUCLEAN);
		pfs_dev_buf_free(b);
	}
	pfs_dev_close(dev);
}
END_TEST

/* A new file system reads back block by block as newfs meant it. */
static void newfs_readback(uint64_t size, uint32_t bs, uint32_t shards)
{
	struct pfs_dev *dev = mem_dev(size);
	struct pfs_super sb, got;
	struct pfs_newfs_opts o = { .root_uid = 1000, .root_gid = 50, .root_mode = 0750,
				    .now = 1700000123 };
	struct pfs_shard_hdr h;
	struct pfs_shard_geo g;
	uint8_t *b = pfs_dev_buf_alloc(bs);
	uint64_t free_total = 0;

	layout(&sb, size, bs, shards);
	sb.root_uid = 1000;
	sb.root_gid = 50;
	ck_assert_int_eq(pfs_newfs_write(dev, &sb, &o), 0);
	ck_assert_int_eq(pfs_super_read(dev, &got, NULL), 0);
	assert_super_eq(&sb, &got);
	ck_assert_int_eq(pfs_shard_hdr_read(dev, &sb, POSFS_SHARD_GLOBAL, &h, NULL), 0);
	ck_assert_uint_eq(h.wal_tail_lsn, 1);
	for (uint32_t i = 0; i < sb.shard_count; i++) {
		struct pfs_block_expect fexp = { .magic = POSFS_MAGIC_FREE, .size = bs,
						 .check_owner = true, .owner = POSFS_OWNER_SHARD(i),
						 .check_blkno = true, .uuid = sb.uuid };
		struct pfs_blockhdr bh;
		const struct pfs_dfree *rec;

		ck_assert_int_eq(pfs_geo_shard(&sb, i, &g), 0);
		ck_assert_int_eq(pfs_shard_hdr_read(dev, &sb, i, &h, NULL), 0);
		ck_assert_uint_eq(h.wal_tail, 0);
		ck_assert_uint_eq(h.wal_tail_lsn, 1);
		ck_assert_uint_eq(h.next_local, POSFS_LOCAL_FIRST);
		ck_assert_uint_eq(h.onode_count, i == 0 ? 1 : 0);
		ck_assert_uint_eq(h.free.height, 1);
		ck_assert_uint_eq(h.free.blkno, g.data_start);
		ck_assert_uint_eq(h.refcount.blkno, 0);
		/* The WAL's first block holds no record. */
		ck_assert_int_eq(pfs_dev_pread(dev, b, bs, g.wal_start * bs), 0);
		{
			struct pfs_wal_rec r;

			ck_assert_int_ne(pfs_wal_rec_verify(b, bs, 0, 1, POSFS_OWNER_SHARD(i),
							    sb.uuid, bs, g.wal_blocks, &r), 0);
		}
		/* The free tree: one leaf, one extent, to the shard's end. */
		ck_assert_int_eq(pfs_dev_pread(dev, b, bs, h.free.blkno * bs), 0);
		fexp.blkno = h.free.blkno;
		ck_assert_int_eq(pfs_block_verify(b, bs, &fexp, &bh), 0);
		ck_assert_uint_eq(bh.nr, 1);
		ck_assert_uint_eq(bh.level, 0);
		rec = (const struct pfs_dfree *)(b + sizeof(struct pfs_dblock_hdr));
		ck_assert_uint_eq(rec->start, g.data_start + (i == 0 ? 2 : 1));
		ck_assert_uint_eq(rec->start + rec->len, g.data_start + g.data_blocks);
		ck_assert_uint_eq(rec->len, h.free_blocks);
		free_total += h.free_blocks;
		if (i == 0) {
			struct pfs_block_expect oexp = { .magic = POSFS_MAGIC_ONODES, .size = bs,
							 .blkno = h.onodes.blkno, .check_blkno = true,
							 .owner = POSFS_OWNER_SHARD(0),
							 .check_owner = true, .uuid = sb.uuid };
			const struct pfs_donode_leaf *leaf = (const void *)b;
			struct pfs_onode root;

			ck_assert_uint_eq(h.onodes.height, 1);
			ck_assert_int_eq(pfs_dev_pread(dev, b, bs, h.onodes.blkno * bs), 0);
			ck_assert_int_eq(pfs_block_verify(b, bs, &oexp, &bh), 0);
			ck_assert_uint_eq(bh.nr, 1);
			for (unsigned s = 0; s < POSFS_ONODES_PER_LEAF(bs); s++) {
				ck_assert_int_eq(pfs_onode_from_disk(&leaf->onode[s], &root), 0);
				if (s != 1)
					ck_assert_uint_eq(root.oid, 0);
			}
			ck_assert_int_eq(pfs_onode_from_disk(&leaf->onode[1], &root), 0);
			ck_assert_uint_eq(root.oid, POSFS_ROOT_OID);
			ck_assert_uint_eq(root.mode, S_IFDIR | 0750);
			ck_assert_uint_eq(root.uid, 1000);
			ck_assert_uint_eq(root.gid, 50);
			ck_assert_uint_eq(root.nlink, 2);
			ck_assert_uint_eq(root.parent, POSFS_ROOT_OID);
			ck_assert_int_eq(root.mtime.sec, 1700000123);
			ck_assert_uint_eq(root.omap.blkno, 0);
			ck_assert_uint_eq(h.next_generation, root.generation + 1);
		} else {
			ck_assert_uint_eq(h.onodes.blkno, 0);
		}
	}
	ck_assert_uint_gt(free_total, 0);
	pfs_dev_buf_free(b);
	pfs_dev_close(dev);
}

START_TEST(newfs_reads_back)
{
	newfs_readback(16ull << 20, 4096, 1);
	newfs_readback(64ull << 20, 4096, 4);
	newfs_readback(256ull << 20, 65536, 2);
}
END_TEST

START_TEST(newfs_refuses_small_device)
{
	struct pfs_dev *dev = mem_dev(8ull << 20);
	struct pfs_super sb, got;
	struct pfs_newfs_opts o = { .root_mode = 0755 };

	layout(&sb, 64ull << 20, 4096, 1);	/* a layout for a larger device */
	ck_assert_int_eq(pfs_newfs_write(dev, &sb, &o), -ENOSPC);
	ck_assert_int_ne(pfs_super_read(dev, &got, NULL), 0);	/* nothing written */
	pfs_dev_close(dev);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("super");
	TCase *tc = tcase_create("super");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, super_round_trip);
	tcase_add_test(tc, super_rejects_bad_geometry);
	tcase_add_test(tc, super_features);
	tcase_add_test(tc, super_newest_valid_wins);
	tcase_add_test(tc, super_from_head);
	tcase_add_test(tc, uuid_text);
	tcase_add_test(tc, geometry_layouts);
	tcase_add_test(tc, geometry_minimum_is_exact);
	tcase_add_test(tc, shard_header_slots);
	tcase_add_test(tc, newfs_reads_back);
	tcase_add_test(tc, newfs_refuses_small_device);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
