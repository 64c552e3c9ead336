/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * pfs-inspect: read a posfs device through libposfs and print what it
 * holds as key=value lines, for the tool tests. Every structure is
 * verified as it is read; the exit status is 0 when all verified, 1 when
 * something did not (with a line "error=..."), 2 on a usage error.
 *
 *   pfs-inspect DEVICE            superblock, shard headers, trees' roots
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "posfs/disk.h"
#include "posfs/io.h"

static int bad;

static void fail(const char *what, int err)
{
	printf("error=%s: %s\n", what, strerror(-err));
	bad = 1;
}

static void print_uuid(const uint8_t *u)
{
	printf("uuid=");
	for (int i = 0; i < 16; i++)
		printf("%s%02x", (i == 4 || i == 6 || i == 8 || i == 10) ? "-" : "", u[i]);
	printf("\n");
}

static void inspect_shard(struct pfs_dev *dev, const struct pfs_super *sb, uint32_t i,
			  uint8_t *buf)
{
	struct pfs_shard_hdr h;
	struct pfs_shard_status st;
	struct pfs_shard_geo g;
	char p[32];
	int ret;

	if (i == POSFS_SHARD_GLOBAL)
		snprintf(p, sizeof(p), "global");
	else
		snprintf(p, sizeof(p), "shard%u", i);
	pfs_geo_shard(sb, i, &g);
	ret = pfs_shard_hdr_read(dev, sb, i, &h, &st);
	printf("%s.slot_a=%d\n%s.slot_b=%d\n", p, st.slot_err[0], p, st.slot_err[1]);
	if (ret) {
		fail(p, ret);
		return;
	}
	printf("%s.seq=%" PRIu64 "\n%s.start=%" PRIu64 "\n%s.nblocks=%" PRIu64 "\n",
	       p, h.seq, p, h.start_block, p, h.nblocks);
	printf("%s.wal_start=%" PRIu64 "\n%s.wal_blocks=%u\n%s.wal_tail=%" PRIu64
	       "\n%s.wal_tail_lsn=%" PRIu64 "\n", p, h.wal_start, p, h.wal_blocks, p,
	       h.wal_tail, p, h.wal_tail_lsn);
	printf("%s.data_start=%" PRIu64 "\n%s.data_blocks=%" PRIu64 "\n", p, h.data_start, p,
	       g.data_blocks);
	printf("%s.free_blocks=%" PRIu64 "\n%s.onode_count=%" PRIu64 "\n%s.next_local=%" PRIu64
	       "\n", p, h.free_blocks, p, h.onode_count, p, h.next_local);
	if (h.free.blkno) {
		struct pfs_block_expect exp = { .magic = POSFS_MAGIC_FREE, .size = sb->block_size,
						.blkno = h.free.blkno, .check_blkno = true,
						.owner = POSFS_OWNER_SHARD(i), .check_owner = true,
						.uuid = sb->uuid };
		struct pfs_blockhdr bh;
		uint64_t sum = 0;

		ret = pfs_dev_pread(dev, buf, sb->block_size, h.free.blkno * sb->block_size);
		if (!ret)
			ret = pfs_block_verify(buf, sb->block_size, &exp, &bh);
		if (ret) {
			fail("free tree", ret);
		} else if (h.free.height == 1) {
			const struct pfs_dfree *r = (const void *)(buf + sizeof(struct pfs_dblock_hdr));

			for (unsigned k = 0; k < bh.nr; k++) {
				printf("%s.free[%u]=%" PRIu64 "+%" PRIu64 "\n", p, k, r[k].start,
				       r[k].len);
				sum += r[k].len;
			}
			printf("%s.free_sum=%" PRIu64 "\n", p, sum);
		}
	}
	if (h.onodes.blkno && h.onodes.height == 1) {
		struct pfs_block_expect exp = { .magic = POSFS_MAGIC_ONODES,
						.size = sb->block_size, .blkno = h.onodes.blkno,
						.check_blkno = true, .owner = POSFS_OWNER_SHARD(i),
						.check_owner = true, .uuid = sb->uuid };
		const struct pfs_donode_leaf *leaf = (const void *)buf;
		struct pfs_onode o;

		ret = pfs_dev_pread(dev, buf, sb->block_size, h.onodes.blkno * sb->block_size);
		if (!ret)
			ret = pfs_block_verify(buf, sb->block_size, &exp, NULL);
		if (ret) {
			fail("onode leaf", ret);
			return;
		}
		for (unsigned s = 0; s < POSFS_ONODES_PER_LEAF(sb->block_size); s++) {
			ret = pfs_onode_from_disk(&leaf->onode[s], &o);
			if (ret) {
				fail("onode", ret);
				continue;
			}
			if (!o.oid)
				continue;
			printf("onode.%" PRIu64 ".mode=%o\nonode.%" PRIu64 ".uid=%u\nonode.%" PRIu64
			       ".gid=%u\nonode.%" PRIu64 ".nlink=%u\nonode.%" PRIu64 ".parent=%" PRIu64
			       "\n", o.oid, o.mode, o.oid, o.uid, o.oid, o.gid, o.oid, o.nlink, o.oid,
			       o.parent);
		}
	}
}

int main(int argc, char **argv)
{
	struct pfs_dev_opts opts = { .readonly = true, .backend = PFS_DEV_SYNC };
	struct pfs_super_status st;
	struct pfs_super sb;
	struct pfs_dev *dev;
	uint8_t *buf;
	char f[256];
	int ret;

	if (argc != 2) {
		fprintf(stderr, "usage: pfs-inspect DEVICE\n");
		return 2;
	}
	ret = pfs_dev_open(argv[1], &opts, &dev);
	if (ret) {
		printf("error=open: %s\n", strerror(-ret));
		return 1;
	}
	ret = pfs_super_read(dev, &sb, &st);
	printf("super.primary=%d\nsuper.backup=%d\n", st.primary_err, st.backup_err);
	if (ret) {
		fail("superblock", ret);
		pfs_dev_close(dev);
		return 1;
	}
	printf("super.used=%s\n", st.used == PFS_SUPER_PRIMARY ? "primary" : "backup");
	printf("rev=%u\nblock_size=%u\ntotal_blocks=%" PRIu64 "\nshard_count=%u\n", sb.rev,
	       sb.block_size, sb.total_blocks, sb.shard_count);
	printf("shard_blocks=%" PRIu64 "\nwal_blocks=%u\nglobal_wal_blocks=%u\n", sb.shard_blocks,
	       sb.wal_blocks, sb.global_wal_blocks);
	printf("small_write=%u\nsector_size=%u\natomic_write=%u\n", sb.small_write,
	       sb.sector_size, sb.atomic_write);
	printf("state=%u\ngeneration=%" PRIu64 "\nroot_uid=%u\nroot_gid=%u\n", sb.state,
	       sb.generation, sb.root_uid, sb.root_gid);
	printf("features_compat=%s\n", pfs_feature_names(PFS_FEATURE_WORD_COMPAT,
							 sb.feature_compat, f, sizeof(f)));
	printf("features_ro_compat=%s\n", pfs_feature_names(PFS_FEATURE_WORD_RO_COMPAT,
							    sb.feature_ro_compat, f, sizeof(f)));
	printf("features_incompat=%s\n", pfs_feature_names(PFS_FEATURE_WORD_INCOMPAT,
							   sb.feature_incompat, f, sizeof(f)));
	printf("label=%s\n", sb.label);
	print_uuid(sb.uuid);
	buf = pfs_dev_buf_alloc(sb.block_size);
	inspect_shard(dev, &sb, POSFS_SHARD_GLOBAL, buf);
	for (uint32_t i = 0; i < sb.shard_count; i++)
		inspect_shard(dev, &sb, i, buf);
	pfs_dev_buf_free(buf);
	pfs_dev_close(dev);
	return bad;
}
