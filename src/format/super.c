/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The superblock pair. Both copies are written on every update, primary
 * first, each followed by a flush, with the same generation; a reader takes
 * the valid copy with the highest generation. Invariants:
 *   S1. After pfs_super_write returns, both copies hold the new superblock.
 *   S2. A crash inside pfs_super_write leaves at least one valid copy, of
 *       the old or of the new superblock, because the two writes are
 *       separated by a flush.
 *   S3. A copy is used only after its crc32c, magic, self offset and
 *       geometry check out.
 */

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "posfs/disk.h"
#include "posfs/io.h"
#include "format/endian.h"

static void copy_str_out(char *dst, size_t dlen, const char *src)
{
	size_t n = strnlen(src, dlen);

	memset(dst, 0, dlen);
	memcpy(dst, src, n);
}

void pfs_super_to_disk(const struct pfs_super *sb, uint64_t off,
		       struct pfs_dsuper *d)
{
	struct pfs_blockhdr hdr = {
		.magic = POSFS_MAGIC_SUPER,
		.size = POSFS_SB_SIZE,
		.blkno = off,
		.owner = POSFS_OWNER_SUPER,
		.lsn = 0,
	};

	memset(d, 0, sizeof(*d));
	memcpy(hdr.uuid, sb->uuid, POSFS_UUID_SIZE);
	pfs_block_hdr_encode(d, &hdr);
	d->rev = le32_put(sb->rev);
	d->block_size = le32_put(sb->block_size);
	d->total_blocks = le64_put(sb->total_blocks);
	d->feature_compat = le32_put(sb->feature_compat);
	d->feature_ro_compat = le32_put(sb->feature_ro_compat);
	d->feature_incompat = le32_put(sb->feature_incompat);
	d->shard_count = le32_put(sb->shard_count);
	d->first_shard_block = le64_put(sb->first_shard_block);
	d->shard_blocks = le64_put(sb->shard_blocks);
	d->wal_blocks = le32_put(sb->wal_blocks);
	d->global_wal_blocks = le32_put(sb->global_wal_blocks);
	d->global_block = le64_put(sb->global_block);
	d->small_write = le32_put(sb->small_write);
	d->onode_size = le32_put(sb->onode_size);
	d->csum_chunk = le32_put(sb->csum_chunk);
	d->sector_size = le32_put(sb->sector_size);
	d->atomic_write = le32_put(sb->atomic_write);
	d->state = le16_put(sb->state);
	d->errors = le16_put(sb->errors);
	d->generation = le64_put(sb->generation);
	d->mkfs_time = le64_put(sb->mkfs_time);
	d->mount_time = le64_put(sb->mount_time);
	d->write_time = le64_put(sb->write_time);
	d->check_time = le64_put(sb->check_time);
	d->mount_count = le32_put(sb->mount_count);
	d->max_mount_count = le32_put(sb->max_mount_count);
	d->root_oid = le64_put(sb->root_oid);
	d->root_uid = le32_put(sb->root_uid);
	d->root_gid = le32_put(sb->root_gid);
	d->compress = sb->compress;
	d->compress_level = sb->compress_level;
	copy_str_out(d->label, sizeof(d->label), sb->label);
	copy_str_out(d->last_mounted, sizeof(d->last_mounted), sb->last_mounted);
	pfs_block_seal(d);
}

static int all_zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	for (size_t i = 0; i < n; i++)
		if (b[i])
			return 0;
	return 1;
}

int pfs_super_from_disk(const struct pfs_dsuper *d, uint64_t off,
			struct pfs_super *sb)
{
	struct pfs_block_expect exp = {
		.magic = POSFS_MAGIC_SUPER,
		.size = POSFS_SB_SIZE,
		.blkno = off,
		.check_blkno = true,
		.owner = POSFS_OWNER_SUPER,
		.check_owner = true,
	};
	struct pfs_blockhdr hdr;
	int ret;

	ret = pfs_block_verify(d, sizeof(*d), &exp, &hdr);
	if (ret)
		return ret;
	if (!all_zero(d->reserved0, sizeof(d->reserved0)) ||
	    !all_zero(d->reserved, sizeof(d->reserved)) ||
	    hdr.level || hdr.nr || hdr.flags || hdr.lsn)
		return -EUCLEAN;
	memset(sb, 0, sizeof(*sb));
	memcpy(sb->uuid, hdr.uuid, POSFS_UUID_SIZE);
	sb->rev = le32_get(d->rev);
	sb->block_size = le32_get(d->block_size);
	sb->total_blocks = le64_get(d->total_blocks);
	sb->feature_compat = le32_get(d->feature_compat);
	sb->feature_ro_compat = le32_get(d->feature_ro_compat);
	sb->feature_incompat = le32_get(d->feature_incompat);
	sb->shard_count = le32_get(d->shard_count);
	sb->first_shard_block = le64_get(d->first_shard_block);
	sb->shard_blocks = le64_get(d->shard_blocks);
	sb->wal_blocks = le32_get(d->wal_blocks);
	sb->global_wal_blocks = le32_get(d->global_wal_blocks);
	sb->global_block = le64_get(d->global_block);
	sb->small_write = le32_get(d->small_write);
	sb->onode_size = le32_get(d->onode_size);
	sb->csum_chunk = le32_get(d->csum_chunk);
	sb->sector_size = le32_get(d->sector_size);
	sb->atomic_write = le32_get(d->atomic_write);
	sb->state = le16_get(d->state);
	sb->errors = le16_get(d->errors);
	sb->generation = le64_get(d->generation);
	sb->mkfs_time = le64_get(d->mkfs_time);
	sb->mount_time = le64_get(d->mount_time);
	sb->write_time = le64_get(d->write_time);
	sb->check_time = le64_get(d->check_time);
	sb->mount_count = le32_get(d->mount_count);
	sb->max_mount_count = le32_get(d->max_mount_count);
	sb->root_oid = le64_get(d->root_oid);
	sb->root_uid = le32_get(d->root_uid);
	sb->root_gid = le32_get(d->root_gid);
	sb->compress = d->compress;
	sb->compress_level = d->compress_level;
	memcpy(sb->label, d->label, sizeof(d->label));
	sb->label[sizeof(d->label)] = 0;
	memcpy(sb->last_mounted, d->last_mounted, sizeof(d->last_mounted));
	sb->last_mounted[sizeof(d->last_mounted)] = 0;
	return pfs_super_check(sb);
}

static int is_pow2(uint64_t v)
{
	return v && !(v & (v - 1));
}

int pfs_super_check(const struct pfs_super *sb)
{
	uint64_t bs = sb->block_size, head_blocks, last_start, gend;

	if (sb->rev != POSFS_REV)
		return -EUCLEAN;
	if (!is_pow2(bs) || bs < POSFS_MIN_BLOCK_SIZE || bs > POSFS_MAX_BLOCK_SIZE)
		return -EUCLEAN;
	if (sb->onode_size != POSFS_ONODE_SIZE || sb->root_oid != POSFS_ROOT_OID)
		return -EUCLEAN;
	if (!sb->shard_count || sb->shard_count > POSFS_MAX_SHARDS)
		return -EUCLEAN;
	if (!is_pow2(sb->sector_size) || sb->sector_size < 512 || sb->sector_size > bs)
		return -EUCLEAN;
	if (sb->small_write > POSFS_SMALL_WRITE_MAX)
		return -EUCLEAN;
	if (sb->state & ~(POSFS_STATE_CLEAN | POSFS_STATE_ERRORS))
		return -EUCLEAN;
	if (sb->csum_chunk && (!is_pow2(sb->csum_chunk) || sb->csum_chunk < POSFS_CSUM_CHUNK_MIN ||
			       sb->csum_chunk > bs))
		return -EUCLEAN;
	if (!sb->csum_chunk != !(sb->feature_ro_compat & POSFS_FEATURE_data_csum))
		return -EUCLEAN;
	if (sb->compress > POSFS_COMPRESS_ZSTD || sb->compress_level > POSFS_COMPRESS_LEVEL_MAX ||
	    (sb->compress && !(sb->feature_incompat & POSFS_FEATURE_compression)))
		return -EUCLEAN;
	head_blocks = (POSFS_HEAD_SIZE + bs - 1) / bs;
	if (sb->total_blocks > UINT64_MAX / bs / 2)
		return -EUCLEAN;
	/* head | global journal | shard 0 .. shard N-1, all inside the fs */
	if (sb->global_block < head_blocks || sb->global_wal_blocks < 2)
		return -EUCLEAN;
	gend = sb->global_block + POSFS_SHARD_HDR_SLOTS + sb->global_wal_blocks;
	if (sb->first_shard_block < gend || sb->wal_blocks < 2)
		return -EUCLEAN;
	if (sb->shard_blocks < POSFS_SHARD_HDR_SLOTS + (uint64_t)sb->wal_blocks + 2)
		return -EUCLEAN;
	if (sb->shard_blocks > sb->total_blocks)
		return -EUCLEAN;
	last_start = sb->first_shard_block + (uint64_t)(sb->shard_count - 1) * sb->shard_blocks;
	if (last_start < sb->first_shard_block || last_start > sb->total_blocks ||
	    sb->total_blocks - last_start < sb->shard_blocks)
		return -EUCLEAN;
	if (memchr(sb->label, 0, sizeof(sb->label)) == NULL)
		return -EUCLEAN;
	return 0;
}

int pfs_super_features_ok(const struct pfs_super *sb, bool readonly,
			  uint32_t *unknown)
{
	uint32_t inc = sb->feature_incompat & ~POSFS_FEATURE_INCOMPAT_SUPP;
	uint32_t roc = sb->feature_ro_compat & ~POSFS_FEATURE_RO_COMPAT_SUPP;

	if (inc) {
		if (unknown)
			*unknown = inc;
		return -EOPNOTSUPP;
	}
	if (roc && !readonly) {
		if (unknown)
			*unknown = roc;
		return -EROFS;
	}
	if (unknown)
		*unknown = 0;
	return 0;
}

const char *pfs_feature_names(int word, uint32_t mask, char *buf, size_t len)
{
	size_t pos = 0;
	uint32_t known = 0;

#define NAME_(name, bit)						\
	if (mask & (UINT32_C(1) << (bit))) {				\
		known |= UINT32_C(1) << (bit);				\
		pos += (size_t)snprintf(buf + pos, pos < len ? len - pos : 0,	\
					"%s%s", pos ? "," : "", #name); \
	}
	if (len)
		buf[0] = 0;
	switch (word) {
	case PFS_FEATURE_WORD_COMPAT:
		POSFS_FEATURES_COMPAT(NAME_)
		break;
	case PFS_FEATURE_WORD_RO_COMPAT:
		POSFS_FEATURES_RO_COMPAT(NAME_)
		break;
	case PFS_FEATURE_WORD_INCOMPAT:
		POSFS_FEATURES_INCOMPAT(NAME_)
		break;
	}
#undef NAME_
	if (mask & ~known)
		snprintf(buf + (pos < len ? pos : len), pos < len ? len - pos : 0,
			 "%s0x%x", pos ? "," : "", mask & ~known);
	return buf;
}

int pfs_super_read(struct pfs_dev *dev, struct pfs_super *sb,
		   struct pfs_super_status *st)
{
	static const uint64_t offs[2] = { POSFS_SB_OFFSET, POSFS_SB_BACKUP_OFFSET };
	struct pfs_super copy[2];
	struct pfs_super_status s = { 0 };
	int err[2], ret = 0, use;
	void *buf;

	buf = pfs_dev_buf_alloc(POSFS_SB_SIZE);
	if (!buf)
		return -ENOMEM;
	for (int i = 0; i < 2; i++) {
		const struct pfs_dblock_hdr *h = buf;

		ret = pfs_dev_pread(dev, buf, POSFS_SB_SIZE, offs[i]);
		if (ret)
			goto out;
		err[i] = pfs_super_from_disk(buf, offs[i], &copy[i]);
		if (le32_get(h->magic) == POSFS_MAGIC_SUPER)
			s.found = true;
	}
	s.primary_err = err[0];
	s.backup_err = err[1];
	if (err[0] && err[1]) {
		ret = err[0];
		if (st)
			*st = s;
		goto out;
	}
	if (!err[0] && !err[1]) {
		use = copy[1].generation > copy[0].generation;
		s.stale = copy[0].generation != copy[1].generation;
	} else {
		use = err[0] ? 1 : 0;
	}
	s.used = use ? PFS_SUPER_BACKUP : PFS_SUPER_PRIMARY;
	*sb = copy[use];
	if (st)
		*st = s;
out:
	pfs_dev_buf_free(buf);
	return ret;
}

int pfs_super_write(struct pfs_dev *dev, struct pfs_super *sb)
{
	static const uint64_t offs[2] = { POSFS_SB_OFFSET, POSFS_SB_BACKUP_OFFSET };
	struct pfs_super next = *sb;
	void *buf;
	int ret = 0;

	next.generation++;
	next.write_time = (uint64_t)time(NULL);
	ret = pfs_super_check(&next);
	if (ret)
		return ret;
	buf = pfs_dev_buf_alloc(POSFS_SB_SIZE);
	if (!buf)
		return -ENOMEM;
	for (int i = 0; i < 2; i++) {
		pfs_super_to_disk(&next, offs[i], buf);
		ret = pfs_dev_pwrite(dev, buf, POSFS_SB_SIZE, offs[i]);
		if (!ret)
			ret = pfs_dev_flush(dev);	/* S2 */
		if (ret)
			goto out;
	}
	*sb = next;
out:
	pfs_dev_buf_free(buf);
	return ret;
}

int pfs_super_from_head(const void *head, size_t len, struct pfs_super *sb)
{
	static const uint64_t offs[2] = { POSFS_SB_OFFSET, POSFS_SB_BACKUP_OFFSET };
	struct pfs_dsuper d;
	struct pfs_super copy[2];
	int err[2];

	if (len < PFS_SUPER_HEAD_SIZE)
		return -EINVAL;
	for (int i = 0; i < 2; i++) {
		memcpy(&d, (const uint8_t *)head + offs[i], sizeof(d));	/* aligned */
		err[i] = pfs_super_from_disk(&d, offs[i], &copy[i]);
	}
	if (err[0] && err[1])
		return err[0];
	if (!err[0] && !err[1])
		*sb = copy[copy[1].generation > copy[0].generation];
	else
		*sb = copy[err[0] ? 1 : 0];
	return 0;
}

void pfs_uuid_format(const uint8_t uuid[POSFS_UUID_SIZE], char out[PFS_UUID_STR_SIZE])
{
	const uint8_t *u = uuid;

	snprintf(out, PFS_UUID_STR_SIZE,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 u[0], u[1], u[2], u[3], u[4], u[5], u[6], u[7], u[8], u[9],
		 u[10], u[11], u[12], u[13], u[14], u[15]);
}

static int hex_digit(char c)
{
	return isdigit((unsigned char)c) ? c - '0' : tolower((unsigned char)c) - 'a' + 10;
}

int pfs_uuid_parse(const char *s, uint8_t uuid[POSFS_UUID_SIZE])
{
	uint8_t u[POSFS_UUID_SIZE];
	unsigned n = 0;

	for (const char *p = s; *p; p++) {
		if (*p == '-')
			continue;
		if (n == POSFS_UUID_SIZE || !isxdigit((unsigned char)p[0]) ||
		    !isxdigit((unsigned char)p[1]))
			return -EINVAL;
		u[n++] = (uint8_t)(hex_digit(p[0]) << 4 | hex_digit(p[1]));
		p++;
	}
	if (n != POSFS_UUID_SIZE)
		return -EINVAL;
	memcpy(uuid, u, sizeof(u));
	return 0;
}
