/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz target: every decoder of disk.h on one buffer of 4 KiB .. 64 KiB.
 *
 * The buffer is read as a superblock (both offsets), as a block of each
 * type through pfs_block_verify, as shard header slots (against the
 * superblock it holds when that decodes, else a fixed valid one), as a WAL
 * record at the place its own header names, as onode slots and as extent
 * records, and through pfs_probe. Nothing may read past the buffer or
 * trip UBSan, whatever the bytes; what decodes must encode back to a form
 * that decodes to the same thing.
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"

static const uint32_t magics[] = {
	0, POSFS_MAGIC_SUPER, POSFS_MAGIC_SHARD, POSFS_MAGIC_WAL,
	POSFS_MAGIC_RADIX, POSFS_MAGIC_ONODES, POSFS_MAGIC_FREE,
	POSFS_MAGIC_EXTENT, POSFS_MAGIC_REFCOUNT, POSFS_MAGIC_OMAP,
};

/* The superblock of a small file system, for when the input has none. */
static void default_super(struct pfs_super *sb)
{
	struct pfs_mkfs_params p = {
		.size = 8u << 20, .block_size = 4096, .shard_count = 2,
		.wal_bytes = POSFS_WAL_MIN, .global_wal_bytes = POSFS_WAL_MIN,
		.ncpu = 1,
	};

	memset(sb, 0, sizeof(*sb));
	if (pfs_geo_compute(&p, sb, NULL))
		abort();
	sb->feature_incompat = POSFS_FEATURE_global_wal;
}

static void super_roundtrip(const struct pfs_super *sb, uint64_t off)
{
	struct pfs_dsuper *d = malloc(sizeof(*d));
	struct pfs_super again;

	if (!d)
		return;
	pfs_super_to_disk(sb, off, d);
	if (pfs_super_from_disk(d, off, &again) ||
	    again.generation != sb->generation || again.total_blocks != sb->total_blocks ||
	    memcmp(again.uuid, sb->uuid, POSFS_UUID_SIZE))
		abort();
	free(d);
}

static void shards(const struct pfs_super *sb, const uint8_t *buf, size_t len)
{
	struct pfs_shard_geo geo;
	struct pfs_shard_hdr h;
	uint32_t n = sb->shard_count < 4 ? sb->shard_count : 4;

	if (len < sb->block_size)
		return;
	for (uint32_t i = 0; i <= n; i++) {
		uint32_t shard = i == n ? POSFS_SHARD_GLOBAL : i;

		if (pfs_geo_shard(sb, shard, &geo))
			continue;
		for (uint64_t slot = 0; slot < POSFS_SHARD_HDR_SLOTS; slot++) {
			uint64_t blkno = geo.start_block + slot;
			uint8_t *again;

			if (pfs_shard_hdr_from_disk(sb, shard, blkno, buf, &h))
				continue;
			again = calloc(1, sb->block_size);
			if (!again)
				return;
			pfs_shard_hdr_to_disk(sb, &h, blkno, again);
			if (pfs_shard_hdr_from_disk(sb, shard, blkno, again, &h))
				abort();
			free(again);
		}
	}
	(void)pfs_geo_block_shard(sb, len);
}

static void wal(const uint8_t *buf, size_t len)
{
	struct pfs_blockhdr hdr;
	struct pfs_wal_rec r;

	pfs_block_hdr_decode(buf, &hdr);
	for (uint32_t bs = 4096; bs <= 65536; bs <<= 4)
		(void)pfs_wal_rec_verify(buf, len, hdr.blkno, hdr.lsn, hdr.owner, hdr.uuid,
					 bs, (uint32_t)(len / 4096 + hdr.blkno), &r);
}

static void onodes(const uint8_t *buf, size_t len)
{
	struct pfs_donode *d = malloc(sizeof(*d));
	struct pfs_onode o, again;

	if (!d)
		return;
	for (size_t off = 64; off + sizeof(*d) <= len; off += sizeof(*d)) {
		memcpy(d, buf + off, sizeof(*d));
		if (pfs_onode_from_disk(d, &o))
			continue;
		pfs_onode_to_disk(&o, d);
		if (pfs_onode_from_disk(d, &again) || again.oid != o.oid ||
		    again.size != o.size || again.data_len != o.data_len)
			abort();
	}
	free(d);
}

static void extents(const uint8_t *buf, size_t len)
{
	struct pfs_dextent d;
	struct pfs_extent e, again;

	for (size_t off = 64; off + sizeof(d) <= len && off < 64 + 128 * sizeof(d);
	     off += sizeof(d)) {
		memcpy(&d, buf + off, sizeof(d));
		if (pfs_extent_from_disk(&d, &e))
			continue;
		pfs_extent_to_disk(&e, &d);
		if (pfs_extent_from_disk(&d, &again) || memcmp(&e, &again, sizeof(e)))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pfs_probe_result pr;
	struct pfs_blockhdr hdr;
	struct pfs_super sb;
	uint8_t *buf;

	if (size < 4096 || size > 65536)
		return 0;
	/* A copy of exactly size bytes, so ASan sees every overread. */
	buf = malloc(size);
	if (!buf)
		return 0;
	memcpy(buf, data, size);

	for (size_t i = 0; i < sizeof(magics) / sizeof(magics[0]); i++) {
		struct pfs_block_expect exp = {
			.magic = magics[i], .size = (uint32_t)size, .uuid = buf + 0x28,
			.max_lsn = 1000,
		};

		(void)pfs_block_verify(buf, size, i ? &exp : NULL, &hdr);
	}
	pfs_block_hdr_decode(buf, &hdr);

	if (!pfs_super_from_disk((const struct pfs_dsuper *)buf, POSFS_SB_OFFSET, &sb) ||
	    !pfs_super_from_disk((const struct pfs_dsuper *)buf, POSFS_SB_BACKUP_OFFSET, &sb)) {
		uint32_t unknown;
		char names[128];

		super_roundtrip(&sb, hdr.blkno);
		(void)pfs_super_features_ok(&sb, false, &unknown);
		pfs_feature_names(PFS_FEATURE_WORD_INCOMPAT, sb.feature_incompat, names,
				  sizeof(names));
		shards(&sb, buf, size);
	}
	/* The same bytes as a superblock that skipped the decoder's checks. */
	default_super(&sb);
	shards(&sb, buf, size);

	wal(buf, size);
	onodes(buf, size);
	extents(buf, size);
	(void)pfs_probe(buf, size, &pr);
	free(buf);
	return 0;
}
