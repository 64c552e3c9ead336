/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * mkcorpus DIR: write the seed corpora of the fuzz targets.
 *
 *   DIR/image, DIR/fsck  empty.img      a new file system, 1 shard
 *                        full.img       populated (files, a directory of
 *                                       120 entries, a symlink, a hard link,
 *                                       small and large xattrs, a file of
 *                                       48 extents: an extent tree), closed
 *                        crash.img      the same, as a crash leaves it after
 *                                       the last fsync: WALs to replay and
 *                                       an open, unlinked file (an orphan)
 *                        full2.img      populated, 2 shards (cross-shard
 *                                       entries and the global WAL)
 *   DIR/walk             base0, base1, base2: each base of the walk
 *                        target, undamaged (its inputs are damage: walk.c)
 *   DIR/decode           every metadata block of full.img and crash.img,
 *                        one file each (the superblock as its 4 KiB)
 *
 * Images are made on a memory device, then run by the store from a file
 * (the store closes its device, and the bytes must outlive it).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "posfs/fs.h"
#include "posfs/store.h"
#include "fuzz.h"

#define SMALL_IMAGE	(4u << 20)
#define SHARDED_IMAGE	(8u << 20)

static __attribute__((noreturn)) void die(const char *what, int err)
{
	fprintf(stderr, "mkcorpus: %s: %s\n", what, strerror(err < 0 ? -err : err));
	exit(1);
}

/* path = printf(fmt, ...), or die. */
static char *mkpath(char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static char *mkpath(char *path, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(path, PATH_MAX, fmt, ap);
	va_end(ap);
	if (n < 0 || n >= PATH_MAX)
		die("path too long", ENAMETOOLONG);
	return path;
}

static void write_file(const char *path, const void *buf, size_t len)
{
	FILE *f = fopen(path, "wb");

	if (!f || fwrite(buf, 1, len, f) != len || fclose(f))
		die(path, errno ? errno : EIO);
}

static void *read_file(const char *path, size_t len)
{
	void *buf = malloc(len);
	FILE *f = fopen(path, "rb");

	if (!buf || !f || fread(buf, 1, len, f) != len)
		die(path, errno ? errno : EIO);
	fclose(f);
	return buf;
}

/* A new file system in the file path. */
static void newfs_file(const char *path, uint64_t size, uint32_t shards)
{
	struct pfs_dev *dev;
	void *buf;
	int ret;

	ret = pfs_fuzz_newfs(size, shards, &dev);
	if (ret)
		die("newfs", ret);
	buf = pfs_dev_buf_alloc((size_t)size);
	if (!buf)
		die("memory", -ENOMEM);
	ret = pfs_dev_pread(dev, buf, (size_t)size, 0);
	if (ret)
		die("read back", ret);
	write_file(path, buf, (size_t)size);
	pfs_dev_buf_free(buf);
	pfs_dev_close(dev);
}

static void check(const char *what, long ret)
{
	if (ret < 0)
		die(what, (int)ret);
}

/*
 * Populate the image in path; with crash, also copy it as it is after the
 * last fsync (the store still open) to crash.
 */
static void populate_file(const char *path, uint64_t size, const char *crash)
{
	struct pfs_store_opts so = { .backend = PFS_DEV_SYNC, .ckpt_interval_ms = -1 };
	struct pfs_store *st;
	struct pfs_fs *fs;
	uint64_t orphan;
	int ret;

	ret = pfs_store_open(path, &so, &st);
	if (ret)
		die("store open", ret);
	ret = pfs_fs_open(st, &fs);
	if (ret)
		die("fs open", ret);
	check("populate", pfs_fuzz_populate(fs, &orphan));
	if (crash) {
		void *buf = read_file(path, (size_t)size);

		write_file(crash, buf, (size_t)size);
		free(buf);
	}
	check("release", pfs_fs_inode_release(fs, orphan));
	pfs_fs_close(fs);
	ret = pfs_store_close(st);
	if (ret)
		die("store close", ret);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

/* Every metadata block of an image as a decode seed. */
static void split_blocks(const char *img, uint64_t size, const char *dir, const char *tag)
{
	uint8_t *buf = read_file(img, (size_t)size);
	char path[PATH_MAX];

	for (uint64_t off = 4096; off < size; off += 4096) {
		uint32_t magic = le32(buf + off + 4);
		uint32_t len = le32(buf + off + 8);

		if ((magic & 0xffff) != ('P' | 'F' << 8))
			continue;
		/* a WAL record may span blocks: keep all of it */
		len = len > 4096 && len <= 65536 && off + len <= size ?
		      (len + 4095) & ~4095u : 4096;
		mkpath(path, "%s/%s-%08llx", dir, tag, (unsigned long long)(off / 4096));
		write_file(path, buf + off, len);
	}
	free(buf);
}

static void mkdir_p(const char *path)
{
	if (mkdir(path, 0755) && errno != EEXIST)
		die(path, errno);
}

static void copy(const char *from, const char *to, uint64_t size)
{
	void *buf = read_file(from, (size_t)size);

	write_file(to, buf, (size_t)size);
	free(buf);
}

int main(int argc, char **argv)
{
	static const char *names[] = { "empty.img", "full.img", "crash.img", "full2.img" };
	char img[PATH_MAX], fsck[PATH_MAX], walk[PATH_MAX], dec[PATH_MAX], a[PATH_MAX],
	     b[PATH_MAX];
	const char *dir;

	if (argc != 2) {
		fprintf(stderr, "usage: mkcorpus DIR\n");
		return 2;
	}
	dir = argv[1];
	mkpath(img, "%s/image", dir);
	mkpath(fsck, "%s/fsck", dir);
	mkpath(walk, "%s/walk", dir);
	mkpath(dec, "%s/decode", dir);
	mkdir_p(dir);
	mkdir_p(img);
	mkdir_p(fsck);
	mkdir_p(walk);
	mkdir_p(dec);

	mkpath(a, "%s/empty.img", img);
	newfs_file(a, SMALL_IMAGE, 1);
	mkpath(a, "%s/full.img", img);
	mkpath(b, "%s/crash.img", img);
	newfs_file(a, SMALL_IMAGE, 1);
	populate_file(a, SMALL_IMAGE, b);
	mkpath(a, "%s/full2.img", img);
	newfs_file(a, SHARDED_IMAGE, 2);
	populate_file(a, SHARDED_IMAGE, NULL);

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		uint64_t size = i == 3 ? SHARDED_IMAGE : SMALL_IMAGE;

		mkpath(a, "%s/%s", img, names[i]);
		mkpath(b, "%s/%s", fsck, names[i]);
		copy(a, b, size);
		if (i == 1 || i == 2)
			split_blocks(a, size, dec, i == 1 ? "full" : "crash");
	}
	/* walk: no damage to each of its three bases (walk.c) */
	for (uint8_t i = 0; i < 3; i++) {
		mkpath(a, "%s/base%u", walk, (unsigned)i);
		write_file(a, &i, 1);
	}
	return 0;
}
