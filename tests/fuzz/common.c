/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the fuzz targets share: images on memory devices, and the mutator
 * that knows the layout.
 *
 * The generic mutator rarely gets a change past a crc32c, so most of what
 * it makes dies at the first pfs_block_verify. The image mutator changes
 * the bytes of one metadata block and, in half of the runs, seals the
 * block again: the store then trusts the change and the deep code (tree
 * walks, replay, the checker's repairs) meets it.
 */
#include <errno.h>
#include <string.h>

#include <stdio.h>
#include <sys/stat.h>

#include "posfs/fs.h"
#include "posfs/store.h"
#include "fuzz.h"

/* libFuzzer's generic mutator, when libFuzzer is linked in. */
size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size)
	__attribute__((weak));

static size_t generic(uint8_t *data, size_t size, size_t max_size)
{
	return LLVMFuzzerMutate ? LLVMFuzzerMutate(data, size, max_size) : size;
}

static const uint32_t magics[] = {
	POSFS_MAGIC_SUPER, POSFS_MAGIC_SHARD, POSFS_MAGIC_WAL,
	POSFS_MAGIC_RADIX, POSFS_MAGIC_ONODES, POSFS_MAGIC_FREE,
	POSFS_MAGIC_EXTENT, POSFS_MAGIC_REFCOUNT, POSFS_MAGIC_OMAP,
};

uint64_t pfs_fuzz_image_size(size_t len)
{
	uint64_t size = ((uint64_t)len + PFS_FUZZ_SECTOR - 1) & ~(uint64_t)(PFS_FUZZ_SECTOR - 1);

	if (size < POSFS_HEAD_SIZE)
		size = POSFS_HEAD_SIZE;
	if (size > PFS_FUZZ_IMAGE_MAX)
		size = PFS_FUZZ_IMAGE_MAX;
	return size;
}

int pfs_fuzz_image_dev(const uint8_t *data, size_t len, struct pfs_dev **devp)
{
	uint64_t size = pfs_fuzz_image_size(len);
	struct pfs_dev *dev;
	void *buf;
	int ret;

	if (len > size)
		len = (size_t)size;
	ret = pfs_dev_open_mem(size, PFS_FUZZ_SECTOR, &dev);
	if (ret)
		return ret;
	buf = pfs_dev_buf_alloc((size_t)size);
	if (!buf) {
		pfs_dev_close(dev);
		return -ENOMEM;
	}
	memcpy(buf, data, len);
	ret = pfs_dev_pwrite(dev, buf, (size_t)size, 0);
	pfs_dev_buf_free(buf);
	if (ret) {
		pfs_dev_close(dev);
		return ret;
	}
	*devp = dev;
	return 0;
}

uint32_t pfs_fuzz_rnd(uint32_t *s)
{
	uint32_t x = *s;

	x ^= x << 13;
	x ^= x >> 17;
	x ^= x << 5;
	*s = x;
	return x;
}

#define rnd pfs_fuzz_rnd

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static int is_magic(uint32_t m)
{
	for (size_t i = 0; i < sizeof(magics) / sizeof(magics[0]); i++)
		if (magics[i] == m)
			return 1;
	return 0;
}

/* Values that sit on the edges of the checks. */
static uint64_t edge_value(uint32_t *s)
{
	static const uint64_t v[] = {
		0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0xfff, 0x1000, 0xffff,
		0x10000, 0x7fffffff, 0x80000000, 0xffffffff, UINT64_C(0x100000000),
		UINT64_C(0xffffffffffffffff), UINT64_C(0x7fffffffffffffff),
	};
	uint64_t x = v[rnd(s) % (sizeof(v) / sizeof(v[0]))];

	switch (rnd(s) % 4) {
	case 0:
		return x;
	case 1:
		return x - 1;
	case 2:
		return x + 1;
	default:
		return ~x;
	}
}

/* Change a few bytes of the block of len bytes at p. */
static void mutate_block(uint8_t *p, size_t len, uint32_t *s)
{
	unsigned n = 1 + rnd(s) % 4;

	for (unsigned i = 0; i < n; i++) {
		/* The headers and the first records are where the fields
		 * are: aim there three times out of four. */
		size_t lim = rnd(s) % 4 ? (len < 512 ? len : 512) : len;
		size_t off = 4 + rnd(s) % (lim - 4);
		unsigned w = 1u << (rnd(s) % 4);
		uint64_t v;

		switch (rnd(s) % 4) {
		case 0:
			p[off] ^= (uint8_t)(1u << (rnd(s) % 8));
			break;
		case 1:
			p[off] = (uint8_t)rnd(s);
			break;
		case 2:
			/* a little-endian field, moved a little */
			if (off + w > len)
				w = 1;
			v = 0;
			for (unsigned b = 0; b < w; b++)
				v |= (uint64_t)p[off + b] << (8 * b);
			v += (uint64_t)(int64_t)(int32_t)(rnd(s) % 33) - 16;
			for (unsigned b = 0; b < w; b++)
				p[off + b] = (uint8_t)(v >> (8 * b));
			break;
		default:
			if (off + w > len)
				w = 1;
			v = edge_value(s);
			for (unsigned b = 0; b < w; b++)
				p[off + b] = (uint8_t)(v >> (8 * b));
			break;
		}
	}
}

size_t pfs_fuzz_mutate_image(uint8_t *data, size_t size, size_t max_size,
			     unsigned int seed)
{
	uint32_t s = seed * 2654435761u | 1;
	size_t nblocks, pick, off, len, seen = 0;
	uint32_t cover;

	if (size < POSFS_HEAD_SIZE || rnd(&s) % 16 == 0)
		return generic(data, size, max_size);
	/* Metadata sits on 4 KiB boundaries for every block size (and the
	 * superblocks at 4096 and 8192): count, then pick one uniformly. */
	nblocks = size / 4096;
	for (size_t b = 0; b < nblocks; b++)
		seen += is_magic(get_le32(data + b * 4096 + 4));
	if (!seen)
		return generic(data, size, max_size);
	pick = rnd(&s) % seen;
	off = 0;
	for (size_t b = 0; b < nblocks; b++) {
		if (!is_magic(get_le32(data + b * 4096 + 4)))
			continue;
		if (!pick--) {
			off = b * 4096;
			break;
		}
	}
	/* The covered size, as the header has it, when it is sane. */
	cover = get_le32(data + off + 8);
	len = cover >= 64 && cover <= size - off && cover <= POSFS_MAX_BLOCK_SIZE ?
	      cover : 4096;
	mutate_block(data + off, len, &s);
	if (seed & 1) {
		cover = get_le32(data + off + 8);
		if (cover >= 64 && cover <= size - off)
			pfs_block_seal(data + off);
	}
	return size;
}

int pfs_fuzz_newfs(uint64_t size, uint32_t shards, struct pfs_dev **devp)
{
	struct pfs_mkfs_params p = {
		.size = size, .block_size = 4096, .shard_count = shards,
		.wal_bytes = POSFS_WAL_MIN, .global_wal_bytes = POSFS_WAL_MIN,
		.sector_size = PFS_FUZZ_SECTOR, .atomic_write = PFS_FUZZ_SECTOR,
		.ncpu = 1,
	};
	struct pfs_newfs_opts o = { .root_mode = 0755, .now = 1700000000 };
	struct pfs_super sb;
	struct pfs_dev *dev;
	int ret;

	memset(&sb, 0, sizeof(sb));
	ret = pfs_geo_compute(&p, &sb, NULL);
	if (ret)
		return ret;
	for (unsigned i = 0; i < POSFS_UUID_SIZE; i++)
		sb.uuid[i] = (uint8_t)(i * 7 + 1);
	memcpy(sb.label, "fuzz", 5);
	sb.feature_incompat = POSFS_FEATURE_global_wal;
	sb.state = POSFS_STATE_CLEAN;
	sb.errors = 1;
	sb.max_mount_count = UINT32_MAX;
	ret = pfs_dev_open_mem(size, PFS_FUZZ_SECTOR, &dev);
	if (ret)
		return ret;
	ret = pfs_newfs_write(dev, &sb, &o);
	if (ret) {
		pfs_dev_close(dev);
		return ret;
	}
	*devp = dev;
	return 0;
}

#define TRY(call) do { if ((r = (call)) < 0) return (int)r; } while (0)

/* The files of a populated image; *orphan gets a file unlinked while open. */
int pfs_fuzz_populate(struct pfs_fs *fs, uint64_t *orphan)
{
	struct pfs_fs_attr a, d, f;
	static const struct pfs_fs_cred cred = { .uid = 0, .gid = 0 };
	uint8_t buf[8192];
	char name[32];
	long r;

	for (size_t i = 0; i < sizeof(buf); i++)
		buf[i] = (uint8_t)(i * 13 + 1);
	TRY(pfs_fs_mknod(fs, POSFS_ROOT_OID, "small", S_IFREG | 0644, 0, &cred, &a));
	TRY(pfs_fs_write(fs, a.ino, 0, 100, buf, &cred));
	TRY(pfs_fs_setxattr(fs, a.ino, "user.a", "value", 5, 0));

	TRY(pfs_fs_mknod(fs, POSFS_ROOT_OID, "medium", S_IFREG | 0600, 0, &cred, &f));
	for (int i = 0; i < 5; i++)
		TRY(pfs_fs_write(fs, f.ino, (uint64_t)i * 4096, 4096, buf, &cred));
	TRY(pfs_fs_setxattr(fs, f.ino, "user.big", buf, 2000, 0));

	TRY(pfs_fs_mkdir(fs, POSFS_ROOT_OID, "dir", 0755, &cred, &d));
	for (int i = 0; i < 120; i++) {
		snprintf(name, sizeof(name), "entry-%03d", i);
		TRY(pfs_fs_mknod(fs, d.ino, name, S_IFREG | 0644, 0, &cred, NULL));
	}
	TRY(pfs_fs_mkdir(fs, d.ino, "sub", 0700, &cred, NULL));
	TRY(pfs_fs_symlink(fs, d.ino, "link", "../small", &cred, NULL));
	TRY(pfs_fs_link(fs, a.ino, d.ino, "hard", NULL));
	TRY(pfs_fs_mknod(fs, d.ino, "fifo", S_IFIFO | 0600, 0, &cred, NULL));

	/* holes between the pieces keep the 48 extents apart */
	TRY(pfs_fs_mknod(fs, POSFS_ROOT_OID, "frag", S_IFREG | 0644, 0, &cred, &f));
	for (int i = 0; i < 48; i++)
		TRY(pfs_fs_write(fs, f.ino, (uint64_t)i * 8192, 4096, buf, &cred));

	TRY(pfs_fs_mknod(fs, POSFS_ROOT_OID, "gone", S_IFREG | 0644, 0, &cred, &f));
	TRY(pfs_fs_write(fs, f.ino, 0, 8192, buf, &cred));
	TRY(pfs_fs_inode_open(fs, f.ino));
	TRY(pfs_fs_unlink(fs, POSFS_ROOT_OID, "gone"));
	*orphan = f.ino;
	TRY(pfs_fs_fsync(fs, POSFS_ROOT_OID, 0));
	TRY(pfs_fs_fsync(fs, d.ino, 0));
	return 0;
}
