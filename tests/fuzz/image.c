/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz target: open a mutated image (superblock, shard headers, WAL
 * replay, checkpoint), start the namespace layer on it (orphan recovery),
 * then run a short fixed script: look at the root and what it holds,
 * create a file, write, read back, mkdir, rename, xattrs, unlink, fsync,
 * close. Any error is a fine answer; a crash, a sanitizer report or a leak
 * is not.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "posfs/fs.h"
#include "posfs/store.h"
#include "fuzz.h"

#define MAX_VISIT	8

struct visit {
	char names[MAX_VISIT][POSFS_NAME_MAX + 1];
	unsigned n;
};

static int collect(void *arg, const char *name, uint64_t ino, unsigned type,
		   uint64_t next_cookie)
{
	struct visit *v = arg;

	(void)ino;
	(void)type;
	(void)next_cookie;
	if (v->n == MAX_VISIT)
		return 1;
	if (strcmp(name, ".") && strcmp(name, "..")) {
		strncpy(v->names[v->n], name, POSFS_NAME_MAX);
		v->names[v->n][POSFS_NAME_MAX] = 0;
		v->n++;
	}
	return 0;
}

/* Read what is there: attributes, data, xattrs, one level down. */
static void visit(struct pfs_fs *fs, uint64_t dir, uint8_t *buf, size_t cap, int depth)
{
	struct pfs_fs_attr a;
	struct visit v = { .n = 0 };

	if (pfs_fs_readdir(fs, dir, 0, collect, &v))
		return;
	for (unsigned i = 0; i < v.n; i++) {
		if (pfs_fs_lookup(fs, dir, v.names[i], &a))
			continue;
		(void)pfs_fs_listxattr(fs, a.ino, (char *)buf, cap);
		(void)pfs_fs_getxattr(fs, a.ino, "user.a", buf, cap);
		if (S_ISREG(a.mode)) {
			uint64_t pos;

			(void)pfs_fs_read(fs, a.ino, 0, cap, buf);
			if (a.size > cap)
				(void)pfs_fs_read(fs, a.ino, a.size - cap / 2, cap, buf);
			(void)pfs_fs_lseek(fs, a.ino, 0, SEEK_HOLE, &pos);
		} else if (S_ISLNK(a.mode)) {
			(void)pfs_fs_readlink(fs, a.ino, (char *)buf, cap);
		} else if (S_ISDIR(a.mode) && depth) {
			visit(fs, a.ino, buf, cap, depth - 1);
		}
	}
}

static void script(struct pfs_fs *fs)
{
	const struct pfs_fs_cred cred = { .uid = 0, .gid = 0 };
	const size_t cap = 80 * 1024;
	struct pfs_fs_attr a, d;
	struct pfs_fs_statfs sfs;
	uint8_t *wbuf, *rbuf;
	bool opened = false;

	wbuf = malloc(cap);
	rbuf = malloc(cap);
	if (!wbuf || !rbuf)
		goto out;
	for (size_t i = 0; i < cap; i++)
		wbuf[i] = (uint8_t)(i * 31 + 7);

	if (pfs_fs_getattr(fs, POSFS_ROOT_OID, &a))
		goto out;
	(void)pfs_fs_statfs(fs, &sfs);
	visit(fs, POSFS_ROOT_OID, rbuf, cap, 1);

	if (pfs_fs_mknod(fs, POSFS_ROOT_OID, "fuzz.f", S_IFREG | 0644, 0, &cred, &a))
		goto out;
	opened = !pfs_fs_inode_open(fs, a.ino);
	/* small (through the WAL), then large (an extent), then read both */
	(void)pfs_fs_write(fs, a.ino, 0, 100, wbuf, &cred);
	(void)pfs_fs_write(fs, a.ino, 12288, 65536, wbuf, &cred);
	(void)pfs_fs_read(fs, a.ino, 0, cap, rbuf);
	(void)pfs_fs_setxattr(fs, a.ino, "user.a", wbuf, 40, 0);
	(void)pfs_fs_setxattr(fs, a.ino, "user.big", wbuf, 3000, 0);
	(void)pfs_fs_fsync(fs, a.ino, 0);

	if (!pfs_fs_mkdir(fs, POSFS_ROOT_OID, "fuzz.d", 0755, &cred, &d)) {
		(void)pfs_fs_rename(fs, POSFS_ROOT_OID, "fuzz.f", d.ino, "moved", 0);
		(void)pfs_fs_symlink(fs, d.ino, "link", "moved", &cred, NULL);
		(void)pfs_fs_readdir(fs, d.ino, 0, collect, &(struct visit){ .n = 0 });
		(void)pfs_fs_unlink(fs, d.ino, "moved");
		(void)pfs_fs_unlink(fs, d.ino, "link");
		(void)pfs_fs_fsync(fs, d.ino, 0);
		(void)pfs_fs_rmdir(fs, POSFS_ROOT_OID, "fuzz.d");
	}
	/* the file is an orphan now if it went while open */
	(void)pfs_fs_read(fs, a.ino, 0, 4096, rbuf);
	if (opened)
		(void)pfs_fs_inode_release(fs, a.ino);
	(void)pfs_fs_fsync(fs, POSFS_ROOT_OID, 0);
out:
	free(wbuf);
	free(rbuf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pfs_store_opts so = {
		.cache_blocks = 256,
		.onode_cache = 256,
		.ckpt_interval_ms = -1,
	};
	struct pfs_store *st;
	struct pfs_dev *dev;
	struct pfs_fs *fs;
	int ret, cret = 0;

	if (size < POSFS_HEAD_SIZE || size > PFS_FUZZ_IMAGE_MAX)
		return 0;
	if (pfs_fuzz_image_dev(data, size, &dev))
		return 0;
	ret = pfs_store_open_dev(dev, &so, &st);
	if (!ret) {
		ret = pfs_fs_open(st, &fs);
		if (!ret) {
			script(fs);
			pfs_fs_close(fs);
		}
		cret = pfs_store_close(st);
	}
	if (getenv("PFS_FUZZ_VERBOSE"))
		fprintf(stderr, "open: %d, close: %d\n", ret, cret);
	return 0;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
			       unsigned int seed)
{
	return pfs_fuzz_mutate_image(data, size, max_size, seed);
}
