/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The namespace layer (src/fs) on a memory device with three shards: each
 * operation with its success and error cases as ext4 gives them; nlink and
 * '..' after directory changes across shards; the rename matrix; a
 * directory of 20,000 entries listed while it changes; sparse and huge
 * files; orphans (last release, and recovery at the next mount after a
 * "crash"); persistence across close and reopen; xattrs, fallocate,
 * copy_range; chattr +i and +a on every path (who may set them, files,
 * directories); and a random run of namespace operations against an
 * in-memory model. POSFS_TEST_SEED or the first argument sets the seed.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <linux/fs.h>
#include <fcntl.h>
#include <pthread.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "posfs/format.h"
#include "posfs/fs.h"
#include "posfs/io.h"
#include "testdev.h"
#include "posfs/store.h"

static unsigned seed = 1;
static const uint64_t DEVSZ = 64ull << 20;
static const struct pfs_fs_cred user = { .uid = 1000, .gid = 1000 };
static const struct pfs_fs_cred root = { .uid = 0, .gid = 0 };

static struct pfs_dev *newfs_mem(uint32_t shards)
{
	struct pfs_dev *dev = pfs_test_newfs_mem(DEVSZ, shards, 2 << 20);

	ck_assert_ptr_nonnull(dev);
	return dev;
}

struct mnt {
	struct pfs_store *st;
	struct pfs_fs *fs;
};

static struct mnt mount_dev(struct pfs_dev *dev)
{
	struct pfs_store_opts o = { .cache_blocks = 1024, .ckpt_interval_ms = -1 };
	struct mnt m;

	ck_assert_int_eq(pfs_store_open_dev(dev, &o, &m.st), 0);
	ck_assert_int_eq(pfs_fs_open(m.st, &m.fs), 0);
	return m;
}

static struct mnt mount_mem(uint32_t shards)
{
	return mount_dev(newfs_mem(shards));
}

static struct mnt mount_path(const char *path)
{
	struct pfs_store_opts o = { .cache_blocks = 1024, .ckpt_interval_ms = -1 };
	struct mnt m;

	ck_assert_int_eq(pfs_store_open(path, &o, &m.st), 0);
	ck_assert_int_eq(pfs_fs_open(m.st, &m.fs), 0);
	return m;
}

static void umount(struct mnt m)
{
	pfs_fs_close(m.fs);
	ck_assert_int_eq(pfs_store_close(m.st), 0);
}

/* A fresh file system as an image file under /var/tmp. */
static void image_new(char *path, uint32_t shards)
{
	struct pfs_dev *dev = newfs_mem(shards);
	uint8_t *img = pfs_dev_buf_alloc(DEVSZ);
	int fd;

	ck_assert_int_eq(pfs_dev_pread(dev, img, DEVSZ, 0), 0);
	pfs_dev_close(dev);
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, img, DEVSZ, 0), (ssize_t)DEVSZ);
	close(fd);
	pfs_dev_buf_free(img);
}

static uint64_t mk(struct pfs_fs *fs, uint64_t dir, const char *name, uint32_t mode)
{
	struct pfs_fs_attr a;
	int ret = !(mode & S_IFMT) ? pfs_fs_mkdir(fs, dir, name, mode, &user, &a)
				: pfs_fs_mknod(fs, dir, name, mode, 0, &user, &a);

	ck_assert_msg(ret == 0, "create %s: %d", name, ret);
	return a.ino;
}

static uint64_t ino_of(struct pfs_fs *fs, uint64_t dir, const char *name)
{
	struct pfs_fs_attr a;
	int ret = pfs_fs_lookup(fs, dir, name, &a);

	ck_assert_msg(ret == 0, "lookup %s: %d", name, ret);
	return a.ino;
}

static uint32_t nlink_of(struct pfs_fs *fs, uint64_t ino)
{
	struct pfs_fs_attr a;

	ck_assert_int_eq(pfs_fs_getattr(fs, ino, &a), 0);
	return a.nlink;
}

static int lookup_err(struct pfs_fs *fs, uint64_t dir, const char *name)
{
	struct pfs_fs_attr a;

	return pfs_fs_lookup(fs, dir, name, &a);
}

/* (mode without type bits: a directory) */

/* ---- readdir helpers ----------------------------------------------------- */

struct listing {
	unsigned n;
	char (*names)[POSFS_NAME_MAX + 1];
	uint64_t *inos;
	unsigned cap;
};

static int list_cb(void *arg, const char *name, uint64_t ino, unsigned type, uint64_t next)
{
	struct listing *l = arg;

	(void)type;
	(void)next;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return 0;
	ck_assert_uint_lt(l->n, l->cap);
	strcpy(l->names[l->n], name);
	l->inos[l->n++] = ino;
	return 0;
}

static unsigned count_entries(struct pfs_fs *fs, uint64_t dir)
{
	struct listing l = { 0 };

	l.cap = 1024;
	l.names = malloc(sizeof(*l.names) * l.cap);
	l.inos = malloc(sizeof(*l.inos) * l.cap);
	ck_assert_int_eq(pfs_fs_readdir(fs, dir, 0, list_cb, &l), 0);
	free(l.names);
	free(l.inos);
	return l.n;
}

struct dots {
	uint64_t dot, dotdot;
};

static int dots_cb(void *arg, const char *name, uint64_t ino, unsigned type, uint64_t next)
{
	struct dots *d = arg;

	(void)next;
	ck_assert_uint_eq(type, DT_DIR);
	if (!strcmp(name, "."))
		d->dot = ino;
	else if (!strcmp(name, ".."))
		d->dotdot = ino;
	return 1;
}

static uint64_t dotdot_of(struct pfs_fs *fs, uint64_t dir)
{
	struct dots d = { 0, 0 };

	ck_assert_int_eq(pfs_fs_readdir(fs, dir, 1, dots_cb, &d), 0);
	ck_assert_uint_eq(ino_of(fs, dir, ".."), d.dotdot);
	return d.dotdot;
}

/* ---- tests ------------------------------------------------------------- */

START_TEST(create_lookup_errors)
{
	struct mnt m = mount_mem(3);
	struct pfs_fs *fs = m.fs;
	char n255[256], n256[257], buf[64];
	struct pfs_fs_attr a, b;
	uint64_t d, f;

	memset(n255, 'a', 255);
	n255[255] = 0;
	memset(n256, 'b', 256);
	n256[256] = 0;
	ck_assert_int_eq(pfs_fs_getattr(fs, POSFS_ROOT_OID, &a), 0);
	ck_assert(S_ISDIR(a.mode));
	ck_assert_uint_eq(a.nlink, 2);
	d = mk(fs, POSFS_ROOT_OID, "d", 0755);
	f = mk(fs, d, "f", S_IFREG | 0644);
	ck_assert_int_eq(pfs_fs_getattr(fs, f, &a), 0);
	ck_assert_uint_eq(a.uid, 1000);
	ck_assert_uint_eq(a.gid, 1000);
	ck_assert_uint_eq(a.nlink, 1);
	ck_assert_uint_eq(a.size, 0);
	ck_assert(S_ISREG(a.mode));
	ck_assert_int_eq(a.btime.sec, a.ctime.sec);
	ck_assert_uint_eq(POSFS_OID_SHARD(f), POSFS_OID_SHARD(d));	/* parent's shard */
	ck_assert_uint_eq(ino_of(fs, d, "f"), f);
	ck_assert_uint_eq(ino_of(fs, d, "."), d);
	ck_assert_uint_eq(ino_of(fs, d, ".."), POSFS_ROOT_OID);
	ck_assert_uint_eq(ino_of(fs, POSFS_ROOT_OID, ".."), POSFS_ROOT_OID);
	/* errors */
	ck_assert_int_eq(lookup_err(fs, d, "nope"), -ENOENT);
	ck_assert_int_eq(lookup_err(fs, f, "x"), -ENOTDIR);
	ck_assert_int_eq(pfs_fs_mknod(fs, d, "f", S_IFREG | 0644, 0, &user, NULL), -EEXIST);
	ck_assert_int_eq(pfs_fs_mkdir(fs, d, "f", 0755, &user, NULL), -EEXIST);
	ck_assert_int_eq(pfs_fs_symlink(fs, d, "f", "t", &user, NULL), -EEXIST);
	ck_assert_int_eq(pfs_fs_mkdir(fs, d, ".", 0755, &user, NULL), -EEXIST);
	ck_assert_int_eq(pfs_fs_mknod(fs, f, "x", S_IFREG | 0644, 0, &user, NULL), -ENOTDIR);
	ck_assert_int_eq(pfs_fs_mknod(fs, d, "x", S_IFDIR | 0644, 0, &user, NULL), -EINVAL);
	ck_assert_int_eq(pfs_fs_mknod(fs, d, "a/b", S_IFREG | 0644, 0, &user, NULL), -EINVAL);
	ck_assert_int_eq(pfs_fs_unlink(fs, d, "nope"), -ENOENT);
	ck_assert_int_eq(pfs_fs_rmdir(fs, d, "nope"), -ENOENT);
	ck_assert_int_eq(pfs_fs_rmdir(fs, d, "f"), -ENOTDIR);
	ck_assert_int_eq(pfs_fs_unlink(fs, POSFS_ROOT_OID, "d"), -EISDIR);
	ck_assert_int_eq(pfs_fs_rmdir(fs, POSFS_ROOT_OID, "d"), -ENOTEMPTY);
	ck_assert_int_eq(pfs_fs_rmdir(fs, d, "."), -EINVAL);
	ck_assert_int_eq(pfs_fs_rmdir(fs, d, ".."), -ENOTEMPTY);
	ck_assert_int_eq(pfs_fs_link(fs, d, POSFS_ROOT_OID, "dl", NULL), -EPERM);
	ck_assert_int_eq(pfs_fs_link(fs, f, d, "f", NULL), -EEXIST);
	/* 255 accepted, 256 refused everywhere */
	ck_assert_int_eq(pfs_fs_mknod(fs, d, n255, S_IFREG | 0600, 0, &user, NULL), 0);
	ck_assert_int_eq(lookup_err(fs, d, n255), 0);
	ck_assert_int_eq(lookup_err(fs, d, n256), -ENAMETOOLONG);
	ck_assert_int_eq(pfs_fs_mknod(fs, d, n256, S_IFREG | 0600, 0, &user, NULL), -ENAMETOOLONG);
	ck_assert_int_eq(pfs_fs_mkdir(fs, d, n256, 0700, &user, NULL), -ENAMETOOLONG);
	ck_assert_int_eq(pfs_fs_mknod(fs, d, n256, S_IFIFO | 0600, 0, &user, NULL), -ENAMETOOLONG);
	ck_assert_int_eq(pfs_fs_symlink(fs, d, n256, "t", &user, NULL), -ENAMETOOLONG);
	ck_assert_int_eq(pfs_fs_link(fs, f, d, n256, NULL), -ENAMETOOLONG);
	ck_assert_int_eq(pfs_fs_unlink(fs, d, n256), -ENAMETOOLONG);
	ck_assert_int_eq(pfs_fs_rmdir(fs, d, n256), -ENAMETOOLONG);
	ck_assert_int_eq(pfs_fs_rename(fs, d, "f", d, n256, 0), -ENAMETOOLONG);
	ck_assert_int_eq(pfs_fs_rename(fs, d, n256, d, "g", 0), -ENAMETOOLONG);
	ck_assert_int_eq(pfs_fs_rename(fs, d, n255, d, "g", 0), 0);
	ck_assert_int_eq(pfs_fs_rename(fs, d, "g", d, n255, 0), 0);
	ck_assert_uint_eq(count_entries(fs, d), 2);
	/* special files and symlinks */
	ck_assert_int_eq(pfs_fs_mknod(fs, d, "c", S_IFCHR | 0600, makedev(1, 3), &root, &a), 0);
	ck_assert_uint_eq(a.rdev, makedev(1, 3));
	ck_assert_uint_eq(a.uid, 0);
	ck_assert_int_eq(pfs_fs_mknod(fs, d, "p", S_IFIFO | 0600, 0, &user, &a), 0);
	ck_assert(S_ISFIFO(a.mode));
	ck_assert_int_eq(pfs_fs_mknod(fs, d, "s", S_IFSOCK | 0600, 0, &user, &a), 0);
	ck_assert_int_eq(pfs_fs_symlink(fs, d, "l", "../some/target", &user, &b), 0);
	ck_assert(S_ISLNK(b.mode));
	ck_assert_uint_eq(b.size, 14);
	ck_assert_int_eq(pfs_fs_readlink(fs, b.ino, buf, sizeof(buf)), 14);
	ck_assert_mem_eq(buf, "../some/target", 14);
	ck_assert_int_eq(pfs_fs_readlink(fs, f, buf, sizeof(buf)), -EINVAL);
	ck_assert_int_eq(pfs_fs_symlink(fs, d, "l2", "", &user, NULL), -ENOENT);
	/* the directory's times moved */
	ck_assert_int_eq(pfs_fs_getattr(fs, d, &a), 0);
	ck_assert_uint_eq(a.nlink, 2);
	ck_assert_uint_eq(a.size, 4096);
	umount(m);
}
END_TEST

START_TEST(dirs_across_shards)
{
	struct mnt m = mount_mem(3);
	struct pfs_fs *fs = m.fs;
	uint64_t d[6], sub;
	unsigned shards_seen = 0;
	char name[16];

	for (int i = 0; i < 6; i++) {
		snprintf(name, sizeof(name), "d%d", i);
		d[i] = mk(fs, POSFS_ROOT_OID, name, 0755);
		shards_seen |= 1u << POSFS_OID_SHARD(d[i]);
		ck_assert_uint_eq(dotdot_of(fs, d[i]), POSFS_ROOT_OID);
	}
	ck_assert_uint_eq(shards_seen, 7);	/* round-robin over 3 shards */
	ck_assert_uint_eq(nlink_of(fs, POSFS_ROOT_OID), 8);
	sub = mk(fs, d[0], "sub", 0755);
	mk(fs, sub, "file", S_IFREG | 0644);
	ck_assert_uint_eq(nlink_of(fs, d[0]), 3);
	/* move sub from d0 to d1 and on to d2 (other shards) */
	ck_assert_int_eq(pfs_fs_rename(fs, d[0], "sub", d[1], "sub", 0), 0);
	ck_assert_uint_eq(nlink_of(fs, d[0]), 2);
	ck_assert_uint_eq(nlink_of(fs, d[1]), 3);
	ck_assert_uint_eq(dotdot_of(fs, sub), d[1]);
	ck_assert_int_eq(pfs_fs_rename(fs, d[1], "sub", d[2], "moved", 0), 0);
	ck_assert_uint_eq(nlink_of(fs, d[1]), 2);
	ck_assert_uint_eq(nlink_of(fs, d[2]), 3);
	ck_assert_uint_eq(dotdot_of(fs, sub), d[2]);
	ck_assert_uint_eq(ino_of(fs, ino_of(fs, d[2], "moved"), "file"), ino_of(fs, sub, "file"));
	/* into its own subtree: EINVAL; the root's '..' chain is fine */
	ck_assert_int_eq(pfs_fs_rename(fs, d[2], "moved", sub, "x", 0), -EINVAL);
	ck_assert_int_eq(pfs_fs_rename(fs, POSFS_ROOT_OID, "d2", sub, "x", 0), -EINVAL);
	ck_assert_int_eq(pfs_fs_rename(fs, d[2], ".", d[3], "x", 0), -EINVAL);
	ck_assert_int_eq(pfs_fs_rename(fs, d[2], "moved", d[3], "..", 0), -EINVAL);
	/* over an ancestor: not empty */
	ck_assert_int_eq(pfs_fs_rename(fs, d[2], "moved", POSFS_ROOT_OID, "d2", 0), -ENOTEMPTY);
	/* rmdir */
	ck_assert_int_eq(pfs_fs_rmdir(fs, d[2], "moved"), -ENOTEMPTY);
	ck_assert_int_eq(pfs_fs_unlink(fs, sub, "file"), 0);
	ck_assert_int_eq(pfs_fs_rmdir(fs, d[2], "moved"), 0);
	ck_assert_uint_eq(nlink_of(fs, d[2]), 2);
	ck_assert_int_eq(lookup_err(fs, d[2], "moved"), -ENOENT);
	ck_assert_int_eq(pfs_fs_getattr(fs, sub, &(struct pfs_fs_attr){ 0 }), -ENOENT);
	ck_assert_int_eq(pfs_fs_mknod(fs, sub, "x", S_IFREG, 0, &user, NULL), -ENOENT);
	for (int i = 0; i < 6; i++) {
		snprintf(name, sizeof(name), "d%d", i);
		ck_assert_int_eq(pfs_fs_rmdir(fs, POSFS_ROOT_OID, name), 0);
	}
	ck_assert_uint_eq(nlink_of(fs, POSFS_ROOT_OID), 2);
	ck_assert_uint_eq(count_entries(fs, POSFS_ROOT_OID), 0);
	umount(m);
}
END_TEST

START_TEST(rename_matrix)
{
	struct mnt m = mount_mem(3);
	struct pfs_fs *fs = m.fs;
	uint64_t a = mk(fs, POSFS_ROOT_OID, "a", 0755);
	uint64_t b = mk(fs, POSFS_ROOT_OID, "b", 0755);
	uint64_t f1, f2, e, n, x, t;

	ck_assert_uint_ne(POSFS_OID_SHARD(a), POSFS_OID_SHARD(b));
	f1 = mk(fs, a, "f1", S_IFREG | 0644);
	f2 = mk(fs, b, "f2", S_IFREG | 0644);
	e = mk(fs, b, "empty", 0755);
	n = mk(fs, b, "full", 0755);
	mk(fs, n, "inside", S_IFREG | 0644);
	x = mk(fs, a, "dir", 0755);
	/* plain, same directory */
	ck_assert_int_eq(pfs_fs_rename(fs, a, "f1", a, "g1", 0), 0);
	ck_assert_int_eq(lookup_err(fs, a, "f1"), -ENOENT);
	ck_assert_uint_eq(ino_of(fs, a, "g1"), f1);
	ck_assert_int_eq(pfs_fs_rename(fs, a, "nope", a, "z", 0), -ENOENT);
	/* file over file across shards: the old one goes */
	ck_assert_int_eq(pfs_fs_rename(fs, a, "g1", b, "f2", 0), 0);
	ck_assert_uint_eq(ino_of(fs, b, "f2"), f1);
	ck_assert_int_eq(pfs_fs_getattr(fs, f2, &(struct pfs_fs_attr){ 0 }), -ENOENT);
	/* file over directories, directory over a file */
	ck_assert_int_eq(pfs_fs_rename(fs, b, "f2", b, "empty", 0), -EISDIR);
	ck_assert_int_eq(pfs_fs_rename(fs, a, "dir", b, "f2", 0), -ENOTDIR);
	/* directory over an empty / non-empty directory */
	ck_assert_int_eq(pfs_fs_rename(fs, a, "dir", b, "full", 0), -ENOTEMPTY);
	ck_assert_uint_eq(nlink_of(fs, b), 4);
	ck_assert_int_eq(pfs_fs_rename(fs, a, "dir", b, "empty", 0), 0);
	ck_assert_int_eq(pfs_fs_getattr(fs, e, &(struct pfs_fs_attr){ 0 }), -ENOENT);
	ck_assert_uint_eq(ino_of(fs, b, "empty"), x);
	ck_assert_uint_eq(nlink_of(fs, a), 2);
	ck_assert_uint_eq(nlink_of(fs, b), 4);
	ck_assert_uint_eq(dotdot_of(fs, x), b);
	/* NOREPLACE */
	ck_assert_int_eq(pfs_fs_rename(fs, b, "f2", b, "full", RENAME_NOREPLACE), -EEXIST);
	ck_assert_int_eq(pfs_fs_rename(fs, b, "f2", a, "new", RENAME_NOREPLACE), 0);
	ck_assert_int_eq(pfs_fs_rename(fs, a, "new", a, "n2", RENAME_NOREPLACE | RENAME_EXCHANGE),
			 -EINVAL);
	ck_assert_int_eq(pfs_fs_rename(fs, a, "new", a, "n2", 0x80), -EINVAL);
	/* EXCHANGE: needs both; file and directory across shards */
	ck_assert_int_eq(pfs_fs_rename(fs, a, "new", a, "none", RENAME_EXCHANGE), -ENOENT);
	ck_assert_int_eq(pfs_fs_rename(fs, a, "new", b, "full", RENAME_EXCHANGE), 0);
	ck_assert_uint_eq(ino_of(fs, b, "full"), f1);
	ck_assert_uint_eq(ino_of(fs, a, "new"), n);
	ck_assert_uint_eq(dotdot_of(fs, n), a);
	ck_assert_uint_eq(nlink_of(fs, a), 3);
	ck_assert_uint_eq(nlink_of(fs, b), 3);
	ck_assert_uint_eq(ino_of(fs, n, "inside"), ino_of(fs, ino_of(fs, a, "new"), "inside"));
	/* exchange a directory with its own descendant's entry: loop */
	t = mk(fs, n, "deep", 0755);
	ck_assert_int_eq(pfs_fs_rename(fs, a, "new", n, "deep", RENAME_EXCHANGE), -EINVAL);
	(void)t;
	/* rename onto another link of the same inode: nothing happens */
	ck_assert_int_eq(pfs_fs_link(fs, f1, b, "hard", NULL), 0);
	ck_assert_int_eq(pfs_fs_rename(fs, b, "full", b, "hard", 0), 0);
	ck_assert_uint_eq(ino_of(fs, b, "full"), f1);
	ck_assert_uint_eq(nlink_of(fs, f1), 2);
	ck_assert_int_eq(pfs_fs_rename(fs, b, "full", b, "full", 0), 0);
	/* over a file with another link: that inode keeps one */
	ck_assert_int_eq(pfs_fs_rename(fs, a, "new", a, "n3", 0), 0);
	mk(fs, a, "f3", S_IFREG | 0644);
	ck_assert_int_eq(pfs_fs_rename(fs, a, "f3", b, "hard", 0), 0);
	ck_assert_uint_eq(nlink_of(fs, f1), 1);
	umount(m);
}
END_TEST

START_TEST(hard_links)
{
	struct mnt m = mount_mem(3);
	struct pfs_fs *fs = m.fs;
	uint64_t a = mk(fs, POSFS_ROOT_OID, "a", 0755);
	uint64_t b = mk(fs, POSFS_ROOT_OID, "b", 0755);
	uint64_t f = mk(fs, a, "f", S_IFREG | 0644);
	struct pfs_fs_attr at;
	char buf[8];

	ck_assert_int_eq(pfs_fs_write(fs, f, 0, 5, "hello", &user), 5);
	ck_assert_int_eq(pfs_fs_link(fs, f, b, "g", &at), 0);
	ck_assert_uint_eq(at.nlink, 2);
	ck_assert_int_eq(pfs_fs_link(fs, f, a, "h", &at), 0);
	ck_assert_uint_eq(at.nlink, 3);
	ck_assert_uint_eq(ino_of(fs, b, "g"), f);
	ck_assert_int_eq(pfs_fs_unlink(fs, a, "f"), 0);
	ck_assert_int_eq(pfs_fs_unlink(fs, a, "h"), 0);
	ck_assert_uint_eq(nlink_of(fs, f), 1);
	ck_assert_int_eq(pfs_fs_read(fs, f, 0, 8, buf), 5);
	ck_assert_mem_eq(buf, "hello", 5);
	ck_assert_int_eq(pfs_fs_unlink(fs, b, "g"), 0);
	ck_assert_int_eq(pfs_fs_getattr(fs, f, &at), -ENOENT);
	ck_assert_int_eq(pfs_fs_link(fs, f, b, "g", &at), -ENOENT);
	umount(m);
}
END_TEST

/* ---- a big directory listed while it changes ---------------------------- */

#define BIG 20000

struct big_walk {
	struct pfs_fs *fs;
	uint64_t dir;
	uint32_t *seen;		/* per stable entry */
	unsigned calls, extra;
	uint64_t last;
};

static int big_cb(void *arg, const char *name, uint64_t ino, unsigned type, uint64_t next)
{
	struct big_walk *w = arg;
	char nm[32];

	(void)ino;
	(void)type;
	w->last = next;
	if (name[0] == 's')
		w->seen[atoi(name + 1)]++;
	else if (name[0] == 'v')
		w->extra++;
	/* churn: add and remove volatile entries while listing */
	if (++w->calls % 10 == 0) {
		snprintf(nm, sizeof(nm), "v%u", w->calls);
		ck_assert_int_eq(pfs_fs_mknod(w->fs, w->dir, nm, S_IFREG | 0600, 0, &user, NULL), 0);
		snprintf(nm, sizeof(nm), "v%u", w->calls - 20);
		if (w->calls > 20)
			ck_assert_int_eq(pfs_fs_unlink(w->fs, w->dir, nm), 0);
	}
	/* stop now and then: the listing resumes from the cookie */
	return w->calls % 1000 == 0;
}

START_TEST(big_directory_listing)
{
	struct mnt m = mount_mem(2);
	struct pfs_fs *fs = m.fs;
	uint64_t dir = mk(fs, POSFS_ROOT_OID, "big", 0755);
	struct big_walk w = { fs, dir, calloc(BIG, sizeof(uint32_t)), 0, 0, 0 };
	struct pfs_fs_attr a;
	char nm[32];
	unsigned rounds = 0;

	/* interleave stable entries with ones removed before the listing */
	for (unsigned i = 0; i < BIG; i++) {
		snprintf(nm, sizeof(nm), "s%u", i);
		ck_assert_int_eq(pfs_fs_mknod(fs, dir, nm, S_IFREG | 0600, 0, &user, NULL), 0);
		if (i % 5 == 0) {
			snprintf(nm, sizeof(nm), "gone%u", i);
			ck_assert_int_eq(pfs_fs_mknod(fs, dir, nm, S_IFREG | 0600, 0, &user, NULL), 0);
			ck_assert_int_eq(pfs_fs_unlink(fs, dir, nm), 0);
		}
	}
	ck_assert_int_eq(pfs_fs_getattr(fs, dir, &a), 0);
	ck_assert_uint_eq(a.size, 4096 * (1 + BIG / 128));
	do {
		uint64_t before = w.calls;

		ck_assert_int_eq(pfs_fs_readdir(fs, dir, w.last, big_cb, &w), 0);
		rounds++;
		if (w.calls == before)
			break;
		if (w.calls % 1000)
			break;	/* ended, not stopped */
	} while (rounds < 1000);
	for (unsigned i = 0; i < BIG; i++)
		ck_assert_msg(w.seen[i] == 1, "entry s%u seen %u times", i, w.seen[i]);
	ck_assert_uint_gt(rounds, 10);
	free(w.seen);
	umount(m);
}
END_TEST

/* A listing that renames what it reads, 16 entries at a time. */
struct rename_walk {
	char name[16][32];
	uint64_t cookie[16];
	unsigned n;
};

static int rename_walk_cb(void *arg, const char *name, uint64_t ino, unsigned type,
			  uint64_t cookie)
{
	struct rename_walk *w = arg;

	(void)ino;
	(void)type;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return 0;
	snprintf(w->name[w->n], sizeof(w->name[0]), "%s", name);
	w->cookie[w->n] = cookie;
	return ++w->n == 16;
}

/*
 * Rename every entry as the listing returns it, within the directory
 * (issue: a renamed entry got a new place past the cursor, so such a loop
 * never ended): the listing ends after at most as many entries as the
 * directory holds, and returns no name twice.
 */
START_TEST(readdir_while_renaming)
{
	enum { N = 3000 };
	struct mnt m = mount_mem(1);
	struct pfs_fs *fs = m.fs;
	uint64_t dir = mk(fs, POSFS_ROOT_OID, "r", 0755), cookie = 0;
	unsigned *seen = calloc(N, sizeof(*seen)), returned = 0, gen = 0;
	char nm[32];

	ck_assert_ptr_nonnull(seen);
	for (unsigned i = 0; i < N; i++) {
		snprintf(nm, sizeof(nm), "e%u.0", i);
		ck_assert_int_eq(pfs_fs_mknod(fs, dir, nm, S_IFREG | 0600, 0, &user, NULL), 0);
	}
	for (;;) {
		struct rename_walk w = { .n = 0 };

		ck_assert_int_eq(pfs_fs_readdir(fs, dir, cookie, rename_walk_cb, &w), 0);
		if (!w.n)
			break;
		for (unsigned i = 0; i < w.n; i++) {
			unsigned e, g;
			char to[48];

			ck_assert_int_eq(sscanf(w.name[i], "e%u.%u", &e, &g), 2);
			ck_assert_uint_lt(e, N);
			seen[e]++;
			snprintf(to, sizeof(to), "e%u.%u", e, ++gen);
			ck_assert_int_eq(pfs_fs_rename(fs, dir, w.name[i], dir, to, 0), 0);
		}
		returned += w.n;
		cookie = w.cookie[w.n - 1];
		ck_assert_uint_le(returned, N);
	}
	ck_assert_uint_eq(returned, N);
	for (unsigned i = 0; i < N; i++)
		ck_assert_msg(seen[i] == 1, "entry %u returned %u times", i, seen[i]);
	/* every entry has its new name, and the names resolve */
	returned = 0;
	{
		struct rename_walk w = { .n = 0 };

		ck_assert_int_eq(pfs_fs_readdir(fs, dir, 0, rename_walk_cb, &w), 0);
		ck_assert_uint_eq(w.n, 16);
		for (unsigned i = 0; i < w.n; i++) {
			unsigned e, g;

			ck_assert_int_eq(sscanf(w.name[i], "e%u.%u", &e, &g), 2);
			ck_assert_uint_gt(g, 0);
			(void)ino_of(fs, dir, w.name[i]);
		}
	}
	free(seen);
	umount(m);
}
END_TEST

/* ---- data ------------------------------------------------------------- */

START_TEST(sparse_and_huge)
{
	struct mnt m = mount_mem(2);
	struct pfs_fs *fs = m.fs;
	uint64_t f = mk(fs, POSFS_ROOT_OID, "sparse", S_IFREG | 0644);
	uint64_t big = 5ull << 30, res;
	struct pfs_fs_attr a = { 0 }, b;
	char buf[16];

	ck_assert_int_eq(pfs_fs_write(fs, f, big, 6, "faraway", &user), 6);
	ck_assert_int_eq(pfs_fs_getattr(fs, f, &b), 0);
	ck_assert_uint_eq(b.size, big + 6);
	ck_assert_uint_lt(b.blocks, 64);
	ck_assert_int_eq(pfs_fs_read(fs, f, big - 4, 16, buf), 10);
	ck_assert_mem_eq(buf, "\0\0\0\0farawa", 10);
	ck_assert_int_eq(pfs_fs_lseek(fs, f, 0, SEEK_DATA, &res), 0);
	ck_assert_uint_eq(res, big / 4096 * 4096);
	ck_assert_int_eq(pfs_fs_lseek(fs, f, 0, SEEK_HOLE, &res), 0);
	ck_assert_uint_eq(res, 0);
	/* truncate to a huge size: sparse; past the format's limit: EFBIG */
	a.size = 1ull << 50;
	ck_assert_int_eq(pfs_fs_setattr(fs, f, &a, PFS_FS_SET_SIZE, &user, &b), 0);
	ck_assert_uint_eq(b.size, 1ull << 50);
	a.size = UINT64_MAX - 4096;
	ck_assert_int_eq(pfs_fs_setattr(fs, f, &a, PFS_FS_SET_SIZE, &user, NULL), -EFBIG);
	ck_assert_int_eq(pfs_fs_write(fs, f, UINT64_MAX - 2, 6, "abcdef", &user), -EFBIG);
	a.size = 3;
	ck_assert_int_eq(pfs_fs_setattr(fs, f, &a, PFS_FS_SET_SIZE, &user, &b), 0);
	ck_assert_uint_eq(b.size, 3);
	ck_assert_int_eq(pfs_fs_setattr(fs, POSFS_ROOT_OID, &a, PFS_FS_SET_SIZE, &user, NULL),
			 -EISDIR);
	ck_assert_int_eq(pfs_fs_read(fs, POSFS_ROOT_OID, 0, 4, buf), -EISDIR);
	ck_assert_int_eq(pfs_fs_write(fs, POSFS_ROOT_OID, 0, 4, buf, &user), -EISDIR);
	umount(m);
}
END_TEST

START_TEST(suid_times_setattr)
{
	struct mnt m = mount_mem(2);
	struct pfs_fs *fs = m.fs;
	struct pfs_fs_cred other = { .uid = 2000, .gid = 2000 };
	uint64_t sg = mk(fs, POSFS_ROOT_OID, "sg", 0755);
	struct pfs_fs_attr a = { 0 }, b;
	uint64_t f;

	/* setgid directory: group inherited, S_ISGID on subdirectories */
	a.mode = 02775;
	a.gid = 50;
	ck_assert_int_eq(pfs_fs_setattr(fs, sg, &a, PFS_FS_SET_MODE | PFS_FS_SET_GID, &root, &b), 0);
	ck_assert_uint_eq(b.mode, S_IFDIR | 02775);
	ck_assert_int_eq(pfs_fs_mkdir(fs, sg, "sub", 0755, &user, &b), 0);
	ck_assert_uint_eq(b.gid, 50);
	ck_assert_uint_eq(b.mode, S_IFDIR | 02755);
	ck_assert_int_eq(pfs_fs_mknod(fs, sg, "f", S_IFREG | 0644, 0, &user, &b), 0);
	ck_assert_uint_eq(b.gid, 50);
	f = b.ino;
	/* write by another user clears the set-ID bits */
	a.mode = 06755;
	ck_assert_int_eq(pfs_fs_setattr(fs, f, &a, PFS_FS_SET_MODE, &root, &b), 0);
	ck_assert_uint_eq(b.mode, S_IFREG | 06755);
	ck_assert_int_eq(pfs_fs_write(fs, f, 0, 3, "abc", &root), 3);
	ck_assert_int_eq(pfs_fs_getattr(fs, f, &b), 0);
	ck_assert_uint_eq(b.mode, S_IFREG | 06755);
	ck_assert_int_eq(pfs_fs_write(fs, f, 0, 3, "abc", &other), 3);
	ck_assert_int_eq(pfs_fs_getattr(fs, f, &b), 0);
	ck_assert_uint_eq(b.mode, S_IFREG | 0755);
	ck_assert_int_eq(pfs_fs_setattr(fs, f, &a, PFS_FS_SET_MODE, &root, &b), 0);
	a.size = 1;
	ck_assert_int_eq(pfs_fs_setattr(fs, f, &a, PFS_FS_SET_SIZE, &other, &b), 0);
	ck_assert_uint_eq(b.mode, S_IFREG | 0755);
	/* when the kernel says (FUSE_HANDLE_KILLPRIV_V2), its word, not the uid */
	{
		struct pfs_fs_cred clear = { .uid = 0, .gid = 0,
					     .setid = PFS_FS_SETID_CLEAR };
		struct pfs_fs_cred keep = { .uid = 2000, .gid = 2000,
					    .setid = PFS_FS_SETID_KEEP };

		a.mode = 06755;
		ck_assert_int_eq(pfs_fs_setattr(fs, f, &a, PFS_FS_SET_MODE, &root, &b), 0);
		ck_assert_int_eq(pfs_fs_write(fs, f, 0, 3, "abc", &keep), 3);
		a.size = 2;
		ck_assert_int_eq(pfs_fs_setattr(fs, f, &a, PFS_FS_SET_SIZE, &keep, &b), 0);
		ck_assert_uint_eq(b.mode, S_IFREG | 06755);
		ck_assert_int_eq(pfs_fs_write(fs, f, 0, 3, "abc", &clear), 3);
		ck_assert_int_eq(pfs_fs_getattr(fs, f, &b), 0);
		ck_assert_uint_eq(b.mode, S_IFREG | 0755);
		ck_assert_int_eq(pfs_fs_setattr(fs, f, &a, PFS_FS_SET_MODE, &root, &b), 0);
		ck_assert_int_eq(pfs_fs_setattr(fs, f, &a, PFS_FS_SET_SIZE, &clear, &b), 0);
		ck_assert_uint_eq(b.mode, S_IFREG | 0755);
		/* the kernel's kill alone; a chown it marks; sgid stays
		 * without group exec; a directory keeps its bits */
		ck_assert_int_eq(pfs_fs_setattr(fs, f, &a, PFS_FS_SET_MODE, &root, &b), 0);
		ck_assert_int_eq(pfs_fs_setattr(fs, f, &a, 0, &clear, &b), 0);
		ck_assert_uint_eq(b.mode, S_IFREG | 0755);
		a.mode = 06745;
		a.uid = 7;
		ck_assert_int_eq(pfs_fs_setattr(fs, f, &a, PFS_FS_SET_MODE, &root, &b), 0);
		ck_assert_int_eq(pfs_fs_setattr(fs, f, &a, PFS_FS_SET_UID, &clear, &b), 0);
		ck_assert_uint_eq(b.mode, S_IFREG | 02745);
		ck_assert_uint_eq(b.uid, 7);
		ck_assert_int_eq(pfs_fs_setattr(fs, sg, &a, PFS_FS_SET_UID, &clear, &b), 0);
		ck_assert_uint_eq(b.mode, S_IFDIR | 02775);
		a.mode = 06755;
		ck_assert_int_eq(pfs_fs_setattr(fs, f, &a, PFS_FS_SET_MODE, &root, &b), 0);
	}
	/* explicit times; atime alone changes ctime too, unless the read's
	 * update keeps it (PFS_FS_SET_KEEP_CTIME); a mask of 0 changes nothing */
	a.atime = (struct pfs_timespec){ 1000, 5 };
	a.mtime = (struct pfs_timespec){ 2000, 7 };
	ck_assert_int_eq(pfs_fs_setattr(fs, f, &a, PFS_FS_SET_ATIME | PFS_FS_SET_MTIME, &user,
					&b), 0);
	ck_assert_int_eq(b.atime.sec, 1000);
	ck_assert_uint_eq(b.atime.nsec, 5);
	ck_assert_int_eq(b.mtime.sec, 2000);
	ck_assert_int_gt(b.ctime.sec, 2000);
	a.ctime = (struct pfs_timespec){ 3000, 0 };
	ck_assert_int_eq(pfs_fs_setattr(fs, f, &a, PFS_FS_SET_CTIME, &user, &b), 0);
	a.atime = (struct pfs_timespec){ 4000, 0 };
	ck_assert_int_eq(pfs_fs_setattr(fs, f, &a, PFS_FS_SET_ATIME | PFS_FS_SET_KEEP_CTIME,
					NULL, &b), 0);
	ck_assert_int_eq(b.ctime.sec, 3000);
	ck_assert_int_eq(b.atime.sec, 4000);
	ck_assert_int_eq(pfs_fs_setattr(fs, f, &a, 0, &user, &b), 0);
	ck_assert_int_eq(b.ctime.sec, 3000);
	ck_assert_int_eq(pfs_fs_setattr(fs, f, &a, 0, NULL, &b), 0);
	ck_assert_int_eq(b.ctime.sec, 3000);
	a.atime = (struct pfs_timespec){ 5000, 0 };
	ck_assert_int_eq(pfs_fs_setattr(fs, f, &a, PFS_FS_SET_ATIME, &user, &b), 0);
	ck_assert_int_eq(b.atime.sec, 5000);
	ck_assert_int_gt(b.ctime.sec, 3000);
	ck_assert_int_eq(b.mtime.sec, 2000);
	a.ctime = (struct pfs_timespec){ 3000, 0 };
	ck_assert_int_eq(pfs_fs_setattr(fs, f, &a, PFS_FS_SET_CTIME, &user, &b), 0);
	a.mtime = (struct pfs_timespec){ 6000, 0 };
	ck_assert_int_eq(pfs_fs_setattr(fs, f, &a, PFS_FS_SET_MTIME, &user, &b), 0);
	ck_assert_int_eq(b.mtime.sec, 6000);
	ck_assert_int_eq(b.atime.sec, 5000);
	ck_assert_int_gt(b.ctime.sec, 3000);
	/* export handles */
	ck_assert_int_eq(pfs_fs_getattr_gen(fs, f, b.generation, &b), 0);
	ck_assert_int_eq(pfs_fs_getattr_gen(fs, f, b.generation + 1, &b), -ESTALE);
	ck_assert_int_eq(pfs_fs_unlink(fs, sg, "f"), 0);
	ck_assert_int_eq(pfs_fs_getattr_gen(fs, f, b.generation, &b), -ESTALE);
	umount(m);
}
END_TEST

/* should_remove_suid: S_ISGID without S_IXGRP goes for a writer outside
 * the file's group (gid and supplementary groups), S_ISUID always; a
 * chown the kernel marks keeps S_ISGID without S_IXGRP for uid 0 */
START_TEST(sgid_and_groups)
{
	static const uint32_t in[] = { 7, 50 }, out[] = { 7, 8 };
	struct mnt m = mount_mem(1);
	struct pfs_fs *fs = m.fs;
	struct pfs_fs_cred outside = { .uid = 2000, .gid = 2000, .setid = PFS_FS_SETID_CLEAR,
				       .ngroups = 2, .groups = out };
	struct pfs_fs_cred member = { .uid = 2000, .gid = 2000, .setid = PFS_FS_SETID_CLEAR,
				      .ngroups = 2, .groups = in };
	struct pfs_fs_cred primary = { .uid = 2000, .gid = 50, .setid = PFS_FS_SETID_CLEAR };
	struct pfs_fs_cred byuid = { .uid = 2000, .gid = 2000 };
	struct pfs_fs_cred rootclear = { .uid = 0, .gid = 0, .setid = PFS_FS_SETID_CLEAR };
	struct pfs_fs_attr a = { .gid = 50 }, b;
	uint64_t f;

	ck_assert_int_eq(pfs_fs_mknod(fs, POSFS_ROOT_OID, "f", S_IFREG | 0644, 0, &root, &b), 0);
	f = b.ino;
	ck_assert_int_eq(pfs_fs_setattr(fs, f, &a, PFS_FS_SET_GID, &root, NULL), 0);
#define SETMODE(md) do { \
		a.mode = (md); \
		ck_assert_int_eq(pfs_fs_setattr(fs, f, &a, PFS_FS_SET_MODE, &root, NULL), 0); \
	} while (0)
#define MODE_IS(md) do { \
		ck_assert_int_eq(pfs_fs_getattr(fs, f, &b), 0); \
		ck_assert_uint_eq(b.mode, S_IFREG | (md)); \
	} while (0)
	SETMODE(02666);
	ck_assert_int_eq(pfs_fs_write(fs, f, 0, 1, "x", &member), 1);
	MODE_IS(02666);
	ck_assert_int_eq(pfs_fs_write(fs, f, 0, 1, "x", &primary), 1);
	MODE_IS(02666);
	ck_assert_int_eq(pfs_fs_write(fs, f, 0, 1, "x", &outside), 1);
	MODE_IS(0666);
	SETMODE(06666);
	ck_assert_int_eq(pfs_fs_write(fs, f, 0, 1, "x", &member), 1);
	MODE_IS(02666);
	ck_assert_int_eq(pfs_fs_write(fs, f, 0, 1, "x", &byuid), 1);
	MODE_IS(0666);
	SETMODE(02676);
	ck_assert_int_eq(pfs_fs_write(fs, f, 0, 1, "x", &member), 1);
	MODE_IS(0676);
	/* truncate, and the kernel's kill alone (fallocate) */
	SETMODE(02666);
	a.size = 1;
	ck_assert_int_eq(pfs_fs_setattr(fs, f, &a, PFS_FS_SET_SIZE, &member, NULL), 0);
	MODE_IS(02666);
	ck_assert_int_eq(pfs_fs_setattr(fs, f, &a, 0, &member, NULL), 0);
	MODE_IS(02666);
	ck_assert_int_eq(pfs_fs_setattr(fs, f, &a, PFS_FS_SET_SIZE, &outside, NULL), 0);
	MODE_IS(0666);
	SETMODE(02666);
	ck_assert_int_eq(pfs_fs_setattr(fs, f, &a, 0, &outside, NULL), 0);
	MODE_IS(0666);
	/* copy into the file */
	SETMODE(06666);
	ck_assert_int_eq(pfs_fs_copy_range(fs, f, 0, f, 4096, 1, &outside), 1);
	MODE_IS(0666);
	/* chown: S_ISUID goes always; S_ISGID without S_IXGRP stays for uid 0
	 * and for a member, goes for an owner outside the group */
	SETMODE(06666);
	a.uid = 3;
	ck_assert_int_eq(pfs_fs_setattr(fs, f, &a, PFS_FS_SET_UID, &rootclear, NULL), 0);
	MODE_IS(02666);
	ck_assert_int_eq(pfs_fs_setattr(fs, f, &a, PFS_FS_SET_GID, &member, NULL), 0);
	MODE_IS(02666);
	a.gid = 8;
	ck_assert_int_eq(pfs_fs_setattr(fs, f, &a, PFS_FS_SET_GID, &outside, NULL), 0);
	MODE_IS(0666);
	/* not a regular file: nothing */
	ck_assert_int_eq(pfs_fs_mkdir(fs, POSFS_ROOT_OID, "d", 0777, &root, &b), 0);
	a.mode = 02777;
	ck_assert_int_eq(pfs_fs_setattr(fs, b.ino, &a, PFS_FS_SET_MODE, &root, NULL), 0);
	ck_assert_int_eq(pfs_fs_setattr(fs, b.ino, &a, 0, &outside, &b), 0);
	ck_assert_uint_eq(b.mode, S_IFDIR | 02777);
#undef SETMODE
#undef MODE_IS
	umount(m);
}
END_TEST

START_TEST(flags_inherited)
{
	struct mnt m = mount_mem(2);
	struct pfs_fs *fs = m.fs;
	uint64_t d = mk(fs, POSFS_ROOT_OID, "d", 0755);
	struct pfs_fs_attr a = { .flags = FS_COMPR_FL | FS_NODUMP_FL | FS_SYNC_FL }, b;

	/* what a directory's new inodes take from it: c, m, A, d (as ext4) */
	ck_assert_int_eq(pfs_fs_setattr(fs, d, &a, PFS_FS_SET_FLAGS, &root, &b), 0);
	ck_assert_uint_eq(b.flags, FS_COMPR_FL | FS_NODUMP_FL | FS_SYNC_FL);
	ck_assert_int_eq(pfs_fs_mknod(fs, d, "f", S_IFREG | 0644, 0, &user, &b), 0);
	ck_assert_uint_eq(b.flags, FS_COMPR_FL | FS_NODUMP_FL);
	ck_assert_int_eq(pfs_fs_mkdir(fs, d, "sub", 0755, &user, &b), 0);
	ck_assert_uint_eq(b.flags, FS_COMPR_FL | FS_NODUMP_FL);
	ck_assert_int_eq(pfs_fs_mknod(fs, POSFS_ROOT_OID, "g", S_IFREG | 0644, 0, &user, &b), 0);
	ck_assert_uint_eq(b.flags, 0);
	umount(m);
}
END_TEST

/* chattr flags fl on ino by root (uid 0 holds CAP_LINUX_IMMUTABLE). */
static void set_flags(struct pfs_fs *fs, uint64_t ino, uint32_t fl)
{
	struct pfs_fs_attr a = { .flags = fl }, b;

	ck_assert_int_eq(pfs_fs_setattr(fs, ino, &a, PFS_FS_SET_FLAGS, &root, &b), 0);
	ck_assert_uint_eq(b.flags, fl);
}

static int setattr_err(struct pfs_fs *fs, uint64_t ino, uint32_t mask)
{
	struct pfs_fs_attr a = { .mode = 0600, .uid = 7, .gid = 7, .size = 1,
				 .atime = { 5, 0 }, .mtime = { 5, 0 }, .btime = { 5, 0 },
				 .ctime = { 5, 0 } };

	return pfs_fs_setattr(fs, ino, &a, mask, &root, NULL);
}

/* chattr +i and +a: who may set them, and the other flags of an
 * immutable inode (ext4's fileattr rules). */
START_TEST(immutable_flags_by_root)
{
	struct mnt m = mount_mem(2);
	struct pfs_fs *fs = m.fs;
	uint64_t f = mk(fs, POSFS_ROOT_OID, "f", S_IFREG | 0644);
	struct pfs_fs_attr a = { .flags = FS_IMMUTABLE_FL }, b;

	/* the owner, not uid 0: EPERM for i and a; other flags are fine */
	ck_assert_int_eq(pfs_fs_setattr(fs, f, &a, PFS_FS_SET_FLAGS, &user, NULL), -EPERM);
	a.flags = FS_APPEND_FL;
	ck_assert_int_eq(pfs_fs_setattr(fs, f, &a, PFS_FS_SET_FLAGS, &user, NULL), -EPERM);
	a.flags = FS_NODUMP_FL;
	ck_assert_int_eq(pfs_fs_setattr(fs, f, &a, PFS_FS_SET_FLAGS, &user, &b), 0);
	ck_assert_uint_eq(b.flags, FS_NODUMP_FL);
	/* root sets i; the owner can then neither clear it nor change d */
	set_flags(fs, f, FS_NODUMP_FL | FS_IMMUTABLE_FL);
	a.flags = FS_NODUMP_FL;
	ck_assert_int_eq(pfs_fs_setattr(fs, f, &a, PFS_FS_SET_FLAGS, &user, NULL), -EPERM);
	a.flags = FS_IMMUTABLE_FL;
	ck_assert_int_eq(pfs_fs_setattr(fs, f, &a, PFS_FS_SET_FLAGS, &user, NULL), -EPERM);
	/* nor root, while i stays (ext4_ioctl_check_immutable) */
	ck_assert_int_eq(pfs_fs_setattr(fs, f, &a, PFS_FS_SET_FLAGS, &root, NULL), -EPERM);
	a.flags = FS_IMMUTABLE_FL | FS_NODUMP_FL | FS_APPEND_FL;
	ck_assert_int_eq(pfs_fs_setattr(fs, f, &a, PFS_FS_SET_FLAGS, &root, NULL), -EPERM);
	/* clearing i and changing others at once is fine; a NULL cred is root */
	a.flags = FS_APPEND_FL;
	ck_assert_int_eq(pfs_fs_setattr(fs, f, &a, PFS_FS_SET_FLAGS, NULL, &b), 0);
	ck_assert_uint_eq(b.flags, FS_APPEND_FL);
	/* a is the owner's to keep, not to clear */
	a.flags = FS_APPEND_FL | FS_NOATIME_FL;
	ck_assert_int_eq(pfs_fs_setattr(fs, f, &a, PFS_FS_SET_FLAGS, &user, &b), 0);
	a.flags = FS_NOATIME_FL;
	ck_assert_int_eq(pfs_fs_setattr(fs, f, &a, PFS_FS_SET_FLAGS, &user, NULL), -EPERM);
	set_flags(fs, f, 0);
	/* i and a are not inherited (ext4's EXT4_FL_INHERITED has neither) */
	set_flags(fs, POSFS_ROOT_OID, FS_APPEND_FL | FS_NODUMP_FL);
	ck_assert_int_eq(pfs_fs_mknod(fs, POSFS_ROOT_OID, "g", S_IFREG | 0644, 0, &user, &b), 0);
	ck_assert_uint_eq(b.flags, FS_NODUMP_FL);
	umount(m);
}
END_TEST

/* An immutable file: nothing of it changes but its flags and a read's
 * atime; it cannot be opened for writing, linked, unlinked or renamed. */
START_TEST(immutable_file)
{
	struct mnt m = mount_mem(2);
	struct pfs_fs *fs = m.fs;
	uint64_t d = mk(fs, POSFS_ROOT_OID, "d", 0755);
	uint64_t f = mk(fs, d, "f", S_IFREG | 0644);
	uint64_t g = mk(fs, d, "g", S_IFREG | 0644);
	struct pfs_fs_attr a, b;
	char buf[8];

	ck_assert_int_eq(pfs_fs_write(fs, f, 0, 4, "data", &user), 4);
	ck_assert_int_eq(pfs_fs_write(fs, g, 0, 2, "gg", &user), 2);
	ck_assert_int_eq(pfs_fs_setxattr(fs, f, "user.k", "v", 1, 0), 0);
	set_flags(fs, f, FS_IMMUTABLE_FL);
	ck_assert_int_eq(pfs_fs_getattr(fs, f, &a), 0);
	/* data */
	ck_assert_int_eq(pfs_fs_write(fs, f, 0, 1, "x", &user), -EPERM);
	ck_assert_int_eq(pfs_fs_write(fs, f, 4, 1, "x", &root), -EPERM);
	ck_assert_int_eq(pfs_fs_fallocate(fs, f, 0, 0, 4096), -EPERM);
	ck_assert_int_eq(pfs_fs_fallocate(fs, f, FALLOC_FL_KEEP_SIZE, 0, 4096), -EPERM);
	ck_assert_int_eq(pfs_fs_fallocate(fs, f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					  0, 4), -EPERM);
	ck_assert_int_eq(pfs_fs_copy_range(fs, g, 0, f, 0, 2, &root), -EPERM);
	ck_assert_int_eq(pfs_fs_copy_range(fs, f, 0, g, 0, 4, &root), 4);	/* from it: fine */
	/* attributes, root's too */
	ck_assert_int_eq(setattr_err(fs, f, PFS_FS_SET_SIZE), -EPERM);
	ck_assert_int_eq(setattr_err(fs, f, PFS_FS_SET_MODE), -EPERM);
	ck_assert_int_eq(setattr_err(fs, f, PFS_FS_SET_UID), -EPERM);
	ck_assert_int_eq(setattr_err(fs, f, PFS_FS_SET_GID), -EPERM);
	ck_assert_int_eq(setattr_err(fs, f, PFS_FS_SET_MTIME), -EPERM);
	ck_assert_int_eq(setattr_err(fs, f, PFS_FS_SET_ATIME | PFS_FS_SET_MTIME |
					    PFS_FS_SET_TOUCH), -EPERM);
	ck_assert_int_eq(setattr_err(fs, f, PFS_FS_SET_CTIME), -EPERM);
	ck_assert_int_eq(setattr_err(fs, f, PFS_FS_SET_BTIME), -EPERM);
	/* the atime of a read goes on (the daemon's relatime) */
	ck_assert_int_eq(setattr_err(fs, f, PFS_FS_SET_ATIME | PFS_FS_SET_KEEP_CTIME), 0);
	/* xattrs and ACLs */
	ck_assert_int_eq(pfs_fs_setxattr(fs, f, "user.k", "w", 1, 0), -EPERM);
	ck_assert_int_eq(pfs_fs_setxattr_cred(fs, f, "user.n", "w", 1, 0, &root), -EPERM);
	ck_assert_int_eq(pfs_fs_removexattr(fs, f, "user.k"), -EPERM);
	ck_assert_int_eq(pfs_fs_removexattr(fs, f, "system.posix_acl_access"), -EPERM);
	ck_assert_int_eq(pfs_fs_getxattr(fs, f, "user.k", buf, sizeof(buf)), 1);
	/* opens */
	ck_assert_int_eq(pfs_fs_inode_open_for(fs, f, O_WRONLY), -EPERM);
	ck_assert_int_eq(pfs_fs_inode_open_for(fs, f, O_RDWR | O_APPEND), -EPERM);
	ck_assert_int_eq(pfs_fs_inode_open_for(fs, f, O_RDONLY | O_TRUNC), -EPERM);
	ck_assert_int_eq(pfs_fs_inode_open_for(fs, f, O_RDONLY), 0);
	ck_assert_int_eq(pfs_fs_inode_release(fs, f), 0);
	/* names: no link, unlink, rename of it or over it, in any direction */
	ck_assert_int_eq(pfs_fs_link(fs, f, d, "f2", NULL), -EPERM);
	ck_assert_int_eq(pfs_fs_unlink(fs, d, "f"), -EPERM);
	ck_assert_int_eq(pfs_fs_rename(fs, d, "f", d, "h", 0), -EPERM);
	ck_assert_int_eq(pfs_fs_rename(fs, d, "f", POSFS_ROOT_OID, "h", 0), -EPERM);
	ck_assert_int_eq(pfs_fs_rename(fs, d, "g", d, "f", 0), -EPERM);
	ck_assert_int_eq(pfs_fs_rename(fs, d, "g", d, "f", RENAME_EXCHANGE), -EPERM);
	/* lookups still come first; the name check too */
	ck_assert_int_eq(pfs_fs_unlink(fs, d, "nope"), -ENOENT);
	ck_assert_int_eq(pfs_fs_rename(fs, d, "g", d, "f", RENAME_NOREPLACE), -EEXIST);
	/* nothing changed */
	ck_assert_int_eq(pfs_fs_getattr(fs, f, &b), 0);
	ck_assert_uint_eq(b.size, 4);
	ck_assert_uint_eq(b.mode, a.mode);
	ck_assert_uint_eq(b.nlink, 1);
	ck_assert_int_eq(b.mtime.sec, a.mtime.sec);
	ck_assert_int_eq(b.mtime.nsec, a.mtime.nsec);
	ck_assert_int_eq(pfs_fs_read(fs, f, 0, sizeof(buf), buf), 4);
	ck_assert_mem_eq(buf, "data", 4);
	ck_assert_uint_eq(ino_of(fs, d, "f"), f);
	/* cleared by root, it is an ordinary file again */
	set_flags(fs, f, 0);
	ck_assert_int_eq(pfs_fs_write(fs, f, 0, 1, "D", &user), 1);
	ck_assert_int_eq(pfs_fs_rename(fs, d, "f", d, "h", 0), 0);
	ck_assert_int_eq(pfs_fs_unlink(fs, d, "h"), 0);
	umount(m);
}
END_TEST

/* An append-only file: writes at its end, no truncate, no explicit times,
 * mode or owner, no xattrs; opens for writing only with O_APPEND. */
START_TEST(append_only_file)
{
	struct mnt m = mount_mem(2);
	struct pfs_fs *fs = m.fs;
	uint64_t f = mk(fs, POSFS_ROOT_OID, "f", S_IFREG | 0644);
	uint64_t g = mk(fs, POSFS_ROOT_OID, "g", S_IFREG | 0644);
	struct pfs_fs_attr b;
	char buf[16];

	ck_assert_int_eq(pfs_fs_write(fs, f, 0, 4, "data", &user), 4);
	ck_assert_int_eq(pfs_fs_write(fs, g, 0, 4, "gggg", &user), 4);
	set_flags(fs, f, FS_APPEND_FL);
	/* writes: at the end only */
	ck_assert_int_eq(pfs_fs_write(fs, f, 0, 1, "x", &user), -EPERM);
	ck_assert_int_eq(pfs_fs_write(fs, f, 3, 2, "xy", &root), -EPERM);
	ck_assert_int_eq(pfs_fs_write(fs, f, 5, 1, "x", &user), -EPERM);
	ck_assert_int_eq(pfs_fs_write(fs, f, 4, 4, "more", &user), 4);
	ck_assert_int_eq(pfs_fs_write(fs, f, 8, 1, "!", &user), 1);
	ck_assert_int_eq(pfs_fs_read(fs, f, 0, sizeof(buf), buf), 9);
	ck_assert_mem_eq(buf, "datamore!", 9);
	/* fallocate that changes no byte; not punch or zero */
	ck_assert_int_eq(pfs_fs_fallocate(fs, f, FALLOC_FL_KEEP_SIZE, 0, 8192), 0);
	ck_assert_int_eq(pfs_fs_fallocate(fs, f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					  0, 4), -EPERM);
	ck_assert_int_eq(pfs_fs_fallocate(fs, f, FALLOC_FL_ZERO_RANGE, 0, 4), -EPERM);
	ck_assert_int_eq(pfs_fs_copy_range(fs, g, 0, f, 9, 4, &root), -EPERM);
	/* attributes */
	ck_assert_int_eq(setattr_err(fs, f, PFS_FS_SET_SIZE), -EPERM);
	ck_assert_int_eq(setattr_err(fs, f, PFS_FS_SET_MODE), -EPERM);
	ck_assert_int_eq(setattr_err(fs, f, PFS_FS_SET_UID), -EPERM);
	ck_assert_int_eq(setattr_err(fs, f, PFS_FS_SET_GID), -EPERM);
	ck_assert_int_eq(setattr_err(fs, f, PFS_FS_SET_MTIME), -EPERM);
	ck_assert_int_eq(setattr_err(fs, f, PFS_FS_SET_ATIME | PFS_FS_SET_MTIME), -EPERM);
	ck_assert_int_eq(setattr_err(fs, f, PFS_FS_SET_BTIME), -EPERM);
	/* a touch (utimes with NULL) and a read's atime are fine */
	ck_assert_int_eq(setattr_err(fs, f, PFS_FS_SET_ATIME | PFS_FS_SET_MTIME |
					    PFS_FS_SET_TOUCH), 0);
	ck_assert_int_eq(setattr_err(fs, f, PFS_FS_SET_ATIME | PFS_FS_SET_KEEP_CTIME), 0);
	ck_assert_int_eq(pfs_fs_getattr(fs, f, &b), 0);
	ck_assert_int_eq(b.mtime.sec, 5);
	ck_assert_uint_eq(b.size, 9);
	ck_assert_uint_eq(b.mode, S_IFREG | 0644);
	/* xattrs */
	ck_assert_int_eq(pfs_fs_setxattr(fs, f, "user.k", "v", 1, 0), -EPERM);
	ck_assert_int_eq(pfs_fs_removexattr(fs, f, "user.k"), -EPERM);
	/* opens */
	ck_assert_int_eq(pfs_fs_inode_open_for(fs, f, O_WRONLY), -EPERM);
	ck_assert_int_eq(pfs_fs_inode_open_for(fs, f, O_RDWR), -EPERM);
	ck_assert_int_eq(pfs_fs_inode_open_for(fs, f, O_WRONLY | O_APPEND | O_TRUNC), -EPERM);
	ck_assert_int_eq(pfs_fs_inode_open_for(fs, f, O_RDONLY | O_TRUNC), -EPERM);
	ck_assert_int_eq(pfs_fs_inode_open_for(fs, f, O_WRONLY | O_APPEND), 0);
	ck_assert_int_eq(pfs_fs_inode_open_for(fs, f, O_RDONLY), 0);
	ck_assert_int_eq(pfs_fs_inode_release(fs, f), 0);
	ck_assert_int_eq(pfs_fs_inode_release(fs, f), 0);
	/* names */
	ck_assert_int_eq(pfs_fs_link(fs, f, POSFS_ROOT_OID, "f2", NULL), -EPERM);
	ck_assert_int_eq(pfs_fs_unlink(fs, POSFS_ROOT_OID, "f"), -EPERM);
	ck_assert_int_eq(pfs_fs_rename(fs, POSFS_ROOT_OID, "f", POSFS_ROOT_OID, "h", 0), -EPERM);
	ck_assert_int_eq(pfs_fs_rename(fs, POSFS_ROOT_OID, "g", POSFS_ROOT_OID, "f", 0), -EPERM);
	ck_assert_uint_eq(ino_of(fs, POSFS_ROOT_OID, "f"), f);
	umount(m);
}
END_TEST

/* Directories: +i takes no entry in and gives none up; +a takes new ones
 * and gives none up. The entries' own inodes stay changeable. */
START_TEST(immutable_append_dirs)
{
	struct mnt m = mount_mem(3);
	struct pfs_fs *fs = m.fs;
	uint64_t i = mk(fs, POSFS_ROOT_OID, "i", 0755);
	uint64_t ap = mk(fs, POSFS_ROOT_OID, "a", 0755);
	uint64_t o = mk(fs, POSFS_ROOT_OID, "o", 0755);
	uint64_t fi = mk(fs, i, "f", S_IFREG | 0644);
	uint64_t fa = mk(fs, ap, "f", S_IFREG | 0644);
	uint64_t x = mk(fs, o, "x", S_IFREG | 0644);
	struct pfs_fs_attr b;

	mk(fs, i, "sub", 0755);
	mk(fs, ap, "sub", 0755);
	set_flags(fs, i, FS_IMMUTABLE_FL);
	set_flags(fs, ap, FS_APPEND_FL);
	/* +i: nothing made in it (an existing name is still -EEXIST) */
	ck_assert_int_eq(pfs_fs_mknod(fs, i, "n", S_IFREG | 0644, 0, &user, NULL), -EPERM);
	ck_assert_int_eq(pfs_fs_mknod(fs, i, "f", S_IFREG | 0644, 0, &user, NULL), -EEXIST);
	ck_assert_int_eq(pfs_fs_mkdir(fs, i, "n", 0755, &user, NULL), -EPERM);
	ck_assert_int_eq(pfs_fs_symlink(fs, i, "n", "t", &user, NULL), -EPERM);
	ck_assert_int_eq(pfs_fs_link(fs, x, i, "n", NULL), -EPERM);
	ck_assert_int_eq(pfs_fs_link(fs, x, i, "f", NULL), -EEXIST);
	ck_assert_int_eq(pfs_fs_rename(fs, o, "x", i, "n", 0), -EPERM);
	/* ... nothing taken out */
	ck_assert_int_eq(pfs_fs_unlink(fs, i, "f"), -EPERM);
	ck_assert_int_eq(pfs_fs_rmdir(fs, i, "sub"), -EPERM);
	ck_assert_int_eq(pfs_fs_rename(fs, i, "f", i, "g", 0), -EPERM);
	ck_assert_int_eq(pfs_fs_rename(fs, i, "f", o, "g", 0), -EPERM);
	ck_assert_int_eq(pfs_fs_rename(fs, o, "x", i, "f", RENAME_EXCHANGE), -EPERM);
	/* ... and it is not removed or renamed itself */
	ck_assert_int_eq(pfs_fs_rename(fs, POSFS_ROOT_OID, "i", POSFS_ROOT_OID, "j", 0), -EPERM);
	set_flags(fs, i, 0);
	ck_assert_int_eq(pfs_fs_unlink(fs, i, "f"), 0);
	ck_assert_int_eq(pfs_fs_rmdir(fs, i, "sub"), 0);
	set_flags(fs, i, FS_IMMUTABLE_FL);
	ck_assert_int_eq(pfs_fs_rmdir(fs, POSFS_ROOT_OID, "i"), -EPERM);
	/* its entries' inodes are not immutable themselves (ext4 too) */
	(void)fi;
	/* +a: entries come in */
	ck_assert_int_eq(pfs_fs_mknod(fs, ap, "n", S_IFREG | 0644, 0, &user, NULL), 0);
	ck_assert_int_eq(pfs_fs_mkdir(fs, ap, "nd", 0755, &user, NULL), 0);
	ck_assert_int_eq(pfs_fs_symlink(fs, ap, "s", "t", &user, NULL), 0);
	ck_assert_int_eq(pfs_fs_link(fs, x, ap, "x2", NULL), 0);
	ck_assert_int_eq(pfs_fs_rename(fs, o, "x", ap, "x3", 0), 0);
	ck_assert_uint_eq(nlink_of(fs, ap), 4);
	/* ... and none go, nor are replaced */
	ck_assert_int_eq(pfs_fs_unlink(fs, ap, "n"), -EPERM);
	ck_assert_int_eq(pfs_fs_unlink(fs, ap, "s"), -EPERM);
	ck_assert_int_eq(pfs_fs_rmdir(fs, ap, "nd"), -EPERM);
	ck_assert_int_eq(pfs_fs_rename(fs, ap, "n", ap, "m", 0), -EPERM);
	ck_assert_int_eq(pfs_fs_rename(fs, ap, "n", o, "m", 0), -EPERM);
	ck_assert_int_eq(pfs_fs_rename(fs, o, "x", ap, "n", 0), -ENOENT);
	mk(fs, o, "y", S_IFREG | 0644);
	ck_assert_int_eq(pfs_fs_rename(fs, o, "y", ap, "n", 0), -EPERM);
	ck_assert_int_eq(pfs_fs_rename(fs, o, "y", ap, "n", RENAME_EXCHANGE), -EPERM);
	/* the files in it are ordinary */
	ck_assert_int_eq(pfs_fs_write(fs, fa, 0, 3, "abc", &user), 3);
	b.size = 1;
	ck_assert_int_eq(pfs_fs_setattr(fs, fa, &b, PFS_FS_SET_SIZE, &user, NULL), 0);
	ck_assert_int_eq(pfs_fs_setxattr(fs, ap, "user.k", "v", 1, 0), -EPERM);
	ck_assert_int_eq(pfs_fs_rmdir(fs, POSFS_ROOT_OID, "a"), -EPERM);
	set_flags(fs, ap, 0);
	ck_assert_int_eq(pfs_fs_unlink(fs, ap, "n"), 0);
	umount(m);
}
END_TEST

START_TEST(xattrs)
{
	struct mnt m = mount_mem(2);
	struct pfs_fs *fs = m.fs;
	uint64_t f = mk(fs, POSFS_ROOT_OID, "x", S_IFREG | 0644);
	char name[300], buf[128];
	void *bigv = calloc(1, 65537);

	ck_assert_int_eq(pfs_fs_getxattr(fs, f, "user.a", buf, sizeof(buf)), -ENODATA);
	ck_assert_int_eq(pfs_fs_setxattr(fs, f, "user.a", "1", 1, XATTR_REPLACE), -ENODATA);
	ck_assert_int_eq(pfs_fs_setxattr(fs, f, "user.a", "1", 1, XATTR_CREATE), 0);
	ck_assert_int_eq(pfs_fs_setxattr(fs, f, "user.a", "2", 1, XATTR_CREATE), -EEXIST);
	ck_assert_int_eq(pfs_fs_setxattr(fs, f, "user.a", "22", 2, XATTR_REPLACE), 0);
	ck_assert_int_eq(pfs_fs_setxattr(fs, f, "user.empty", "", 0, 0), 0);
	ck_assert_int_eq(pfs_fs_getxattr(fs, f, "user.a", NULL, 0), 2);
	ck_assert_int_eq(pfs_fs_getxattr(fs, f, "user.a", buf, 1), -ERANGE);
	ck_assert_int_eq(pfs_fs_getxattr(fs, f, "user.a", buf, sizeof(buf)), 2);
	ck_assert_mem_eq(buf, "22", 2);
	ck_assert_int_eq(pfs_fs_getxattr(fs, f, "user.empty", buf, sizeof(buf)), 0);
	ck_assert_int_eq(pfs_fs_listxattr(fs, f, NULL, 0), 18);
	ck_assert_int_eq(pfs_fs_listxattr(fs, f, buf, 5), -ERANGE);
	ck_assert_int_eq(pfs_fs_listxattr(fs, f, buf, sizeof(buf)), 18);
	/* in the store's order */
	ck_assert(!memcmp(buf, "user.a\0user.empty\0", 18) ||
		  !memcmp(buf, "user.empty\0user.a\0", 18));
	memset(name, 'n', sizeof(name));
	memcpy(name, "user.", 5);
	name[255] = 0;
	ck_assert_int_eq(pfs_fs_setxattr(fs, f, name, "v", 1, 0), 0);
	name[255] = 'n';
	name[256] = 0;
	ck_assert_int_eq(pfs_fs_setxattr(fs, f, name, "v", 1, 0), -ERANGE);
	ck_assert_int_eq(pfs_fs_setxattr(fs, f, "user.big", bigv, 65536, 0), 0);
	ck_assert_int_eq(pfs_fs_setxattr(fs, f, "user.big", bigv, 65537, 0), -E2BIG);
	ck_assert_int_eq(pfs_fs_removexattr(fs, f, "user.a"), 0);
	ck_assert_int_eq(pfs_fs_removexattr(fs, f, "user.a"), -ENODATA);
	/* xattrs do not count as directory entries */
	ck_assert_int_eq(pfs_fs_setxattr(fs, POSFS_ROOT_OID, "user.d", "v", 1, 0), 0);
	ck_assert_uint_eq(count_entries(fs, POSFS_ROOT_OID), 1);
	ck_assert_int_eq(pfs_fs_rmdir(fs, POSFS_ROOT_OID, "x"), -ENOTDIR);
	free(bigv);
	umount(m);
}
END_TEST

START_TEST(fallocate_and_copy)
{
	struct mnt m = mount_mem(2);
	struct pfs_fs *fs = m.fs;
	uint64_t f = mk(fs, POSFS_ROOT_OID, "f", S_IFREG | 0644);
	uint64_t g = mk(fs, POSFS_ROOT_OID, "g", S_IFREG | 0644);
	uint64_t d = mk(fs, POSFS_ROOT_OID, "d", 0755);
	uint64_t other = 0, res;
	uint8_t *buf = malloc(65536), *back = malloc(65536);
	struct pfs_fs_attr a;

	for (int i = 0; i < 65536; i++)
		buf[i] = (uint8_t)(i * 7 + 3);
	ck_assert_int_eq(pfs_fs_write(fs, f, 0, 40000, buf, &user), 40000);
	/* modes posfs lacks: EOPNOTSUPP, never EINVAL */
	ck_assert_int_eq(pfs_fs_fallocate(fs, f, FALLOC_FL_COLLAPSE_RANGE, 0, 4096), -EOPNOTSUPP);
	ck_assert_int_eq(pfs_fs_fallocate(fs, f, FALLOC_FL_INSERT_RANGE, 0, 4096), -EOPNOTSUPP);
	ck_assert_int_eq(pfs_fs_fallocate(fs, f, FALLOC_FL_PUNCH_HOLE, 0, 4096), -EOPNOTSUPP);
	ck_assert_int_eq(pfs_fs_fallocate(fs, f, 0, 0, 0), -EINVAL);
	ck_assert_int_eq(pfs_fs_fallocate(fs, POSFS_ROOT_OID, 0, 0, 1), -EISDIR);
	/* punch: zeros inside, size kept */
	ck_assert_int_eq(pfs_fs_fallocate(fs, f, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 100,
					  9000), 0);
	ck_assert_int_eq(pfs_fs_read(fs, f, 0, 65536, back), 40000);
	for (int i = 0; i < 40000; i++)
		ck_assert_uint_eq(back[i], i >= 100 && i < 9100 ? 0 : buf[i]);
	ck_assert_int_eq(pfs_fs_lseek(fs, f, 4096, SEEK_HOLE, &res), 0);
	ck_assert_uint_eq(res, 4096);
	/* allocate: the hole is filled, the data unchanged; size grows */
	ck_assert_int_eq(pfs_fs_fallocate(fs, f, 0, 0, 50000), 0);
	ck_assert_int_eq(pfs_fs_getattr(fs, f, &a), 0);
	ck_assert_uint_eq(a.size, 50000);
	ck_assert_int_eq(pfs_fs_lseek(fs, f, 0, SEEK_HOLE, &res), 0);
	ck_assert_uint_eq(res, 50000);
	ck_assert_int_eq(pfs_fs_read(fs, f, 0, 65536, back), 50000);
	for (int i = 0; i < 50000; i++)
		ck_assert_uint_eq(back[i], (i >= 100 && i < 9100) || i >= 40000 ? 0 : buf[i]);
	ck_assert_int_eq(pfs_fs_fallocate(fs, f, FALLOC_FL_KEEP_SIZE, 0, 60000), 0);
	ck_assert_int_eq(pfs_fs_getattr(fs, f, &a), 0);
	ck_assert_uint_eq(a.size, 50000);
	ck_assert_int_eq(pfs_fs_fallocate(fs, f, FALLOC_FL_ZERO_RANGE, 49000, 2000), 0);
	ck_assert_int_eq(pfs_fs_getattr(fs, f, &a), 0);
	ck_assert_uint_eq(a.size, 51000);
	/* copy_range: unaligned edges plus cloned blocks */
	ck_assert_int_eq(pfs_fs_write(fs, f, 0, 40000, buf, &user), 40000);
	ck_assert_int_eq(pfs_fs_copy_range(fs, f, 100, g, 100, 30000, &user), 30000);
	ck_assert_int_eq(pfs_fs_read(fs, g, 0, 65536, back), 30100);
	for (int i = 0; i < 30100; i++)
		ck_assert_uint_eq(back[i], i < 100 ? 0 : buf[i]);
	ck_assert_int_eq(pfs_fs_copy_range(fs, f, 5, g, 7, 1000, &user), 1000);
	ck_assert_int_eq(pfs_fs_read(fs, g, 7, 1000, back), 1000);
	ck_assert_mem_eq(back, buf + 5, 1000);
	ck_assert_int_eq(pfs_fs_copy_range(fs, f, 60000, g, 0, 10, &user), 0);
	ck_assert_int_eq(pfs_fs_copy_range(fs, f, 0, f, 100, 1000, &user), -EINVAL);
	/* a file in the other shard: cloned all the same */
	if (POSFS_OID_SHARD(d) != POSFS_OID_SHARD(f))
		other = mk(fs, d, "o", S_IFREG | 0644);
	if (other) {
		ck_assert_int_eq(pfs_fs_copy_range(fs, f, 0, other, 0, 30000, &user), 30000);
		ck_assert_int_eq(pfs_fs_read(fs, other, 0, 30000, back), 30000);
		ck_assert_int_eq(pfs_fs_read(fs, f, 0, 30000, buf), 30000);
		ck_assert_mem_eq(back, buf, 30000);
	}
	free(buf);
	free(back);
	umount(m);
}
END_TEST

/* ---- orphans and persistence ------------------------------------------- */

START_TEST(orphans)
{
	struct mnt m = mount_mem(2);
	struct pfs_fs *fs = m.fs;
	uint64_t f = mk(fs, POSFS_ROOT_OID, "f", S_IFREG | 0644);
	uint8_t *buf = malloc(1 << 20), *back = malloc(1 << 20);
	struct pfs_fs_statfs s0, s1, s2;
	struct pfs_fs_attr a;

	memset(buf, 0x5a, 1 << 20);
	ck_assert_int_eq(pfs_fs_statfs(fs, &s0), 0);
	ck_assert_uint_eq(s0.namemax, 255);
	ck_assert_int_eq(pfs_fs_write(fs, f, 0, 1 << 20, buf, &user), 1 << 20);
	ck_assert_int_eq(pfs_fs_inode_open(fs, f), 0);
	ck_assert_int_eq(pfs_fs_inode_open(fs, f), 0);
	ck_assert_int_eq(pfs_fs_unlink(fs, POSFS_ROOT_OID, "f"), 0);
	ck_assert_int_eq(lookup_err(fs, POSFS_ROOT_OID, "f"), -ENOENT);
	ck_assert_int_eq(pfs_fs_getattr(fs, f, &a), 0);
	ck_assert_uint_eq(a.nlink, 0);
	ck_assert_int_eq(pfs_fs_read(fs, f, 0, 1 << 20, back), 1 << 20);
	ck_assert_mem_eq(back, buf, 1 << 20);
	ck_assert_int_eq(pfs_fs_write(fs, f, 0, 4, "more", &user), 4);
	ck_assert_int_eq(pfs_fs_statfs(fs, &s1), 0);
	ck_assert_uint_lt(s1.bfree, s0.bfree - 200);
	ck_assert_int_eq(pfs_fs_inode_release(fs, f), 0);
	ck_assert_int_eq(pfs_fs_getattr(fs, f, &a), 0);
	ck_assert_int_eq(pfs_fs_inode_release(fs, f), 0);
	ck_assert_int_eq(pfs_fs_getattr(fs, f, &a), -ENOENT);
	ck_assert_int_eq(pfs_fs_inode_release(fs, f), -EINVAL);
	ck_assert_int_eq(pfs_store_sync(m.st), 0);
	ck_assert_int_eq(pfs_fs_statfs(fs, &s2), 0);
	ck_assert_uint_ge(s2.bfree + 8, s0.bfree);
	free(buf);
	free(back);
	umount(m);
}
END_TEST

static int count_cb(void *arg, const char *name, uint64_t ino, unsigned type, uint64_t next)
{
	(void)name;
	(void)ino;
	(void)type;
	(void)next;
	(*(unsigned *)arg)++;
	return 0;
}

/* A directory removed (rmdir, or replaced by a rename) while open lives,
 * nlink 0, until its last release; a remount reclaims one left open. */
START_TEST(open_dir_orphans)
{
	struct mnt m = mount_mem(2);
	struct pfs_fs *fs = m.fs;
	uint64_t p = mk(fs, POSFS_ROOT_OID, "p", 0755), a, b, c;
	struct pfs_fs_attr at = { .mode = 0700, .uid = 5 }, x;
	struct pfs_fs_attr pa;
	unsigned n = 0;
	char v[8];

	a = mk(fs, p, "a", 0755);
	b = mk(fs, p, "b", 0755);
	c = mk(fs, p, "c", 0755);
	ck_assert_int_eq(pfs_fs_setxattr(fs, b, "user.k", "v", 1, 0), 0);
	ck_assert_int_eq(pfs_fs_inode_open(fs, b), 0);
	ck_assert_int_eq(pfs_fs_rename(fs, p, "a", p, "b", 0), 0);
	ck_assert_int_eq(ino_of(fs, p, "b"), a);
	ck_assert_int_eq(pfs_fs_getattr(fs, b, &x), 0);
	ck_assert_uint_eq(x.nlink, 0);
	ck_assert_uint_eq(x.mode, S_IFDIR | 0755);
	ck_assert_int_eq(pfs_fs_getattr(fs, p, &pa), 0);
	ck_assert_uint_eq(pa.nlink, 4);		/* 2 + b (was a) + c */
	ck_assert_int_eq(pfs_fs_setattr(fs, b, &at, PFS_FS_SET_MODE | PFS_FS_SET_UID, &root, &x),
			 0);
	ck_assert_uint_eq(x.mode, S_IFDIR | 0700);
	ck_assert_uint_eq(x.uid, 5);
	ck_assert_int_eq(pfs_fs_getxattr(fs, b, "user.k", v, sizeof(v)), 1);
	ck_assert_int_eq(pfs_fs_setxattr(fs, b, "user.n", "w", 1, 0), 0);
	/* nothing goes in; it lists as gone (the daemon shows it empty) */
	ck_assert_int_eq(pfs_fs_mknod(fs, b, "f", S_IFREG | 0644, 0, &user, &x), -ENOENT);
	ck_assert_int_eq(pfs_fs_mkdir(fs, b, "d", 0755, &user, &x), -ENOENT);
	ck_assert_int_eq(pfs_fs_readdir(fs, b, 0, count_cb, &n), -ENOENT);
	ck_assert_int_eq(pfs_fs_inode_open(fs, b), 0);
	ck_assert_int_eq(pfs_fs_inode_release(fs, b), 0);
	ck_assert_int_eq(pfs_fs_getattr(fs, b, &x), 0);
	ck_assert_int_eq(pfs_fs_inode_release(fs, b), 0);
	ck_assert_int_eq(pfs_fs_getattr(fs, b, &x), -ENOENT);
	ck_assert_int_eq(pfs_fs_inode_open(fs, b), -ENOENT);
	/* rmdir while open; not open: gone at once */
	ck_assert_int_eq(pfs_fs_inode_open(fs, c), 0);
	ck_assert_int_eq(pfs_fs_rmdir(fs, p, "c"), 0);
	ck_assert_int_eq(pfs_fs_getattr(fs, c, &x), 0);
	ck_assert_uint_eq(x.nlink, 0);
	ck_assert_int_eq(pfs_fs_getattr(fs, p, &pa), 0);
	ck_assert_uint_eq(pa.nlink, 3);
	ck_assert_int_eq(pfs_fs_rmdir(fs, p, "b"), 0);
	ck_assert_int_eq(pfs_fs_getattr(fs, a, &x), -ENOENT);
	/* c stays open over a remount: reclaimed there */
	ck_assert_int_eq(pfs_store_sync(m.st), 0);
	pfs_fs_close(m.fs);
	ck_assert_int_eq(pfs_fs_open(m.st, &m.fs), 0);
	fs = m.fs;
	ck_assert_int_eq(pfs_fs_getattr(fs, c, &x), -ENOENT);
	ck_assert_int_eq(pfs_fs_getattr(fs, p, &pa), 0);
	ck_assert_uint_eq(pa.nlink, 2);
	umount(m);
}
END_TEST

/*
 * Open counts and commit tokens live in a table that grows as inodes get
 * states: every one survives the growth (a lost open count makes the
 * release fail with EINVAL, a lost token an fsync that waits for nothing).
 */
START_TEST(inode_states_grow)
{
	enum { N = 9000 };	/* past twice the table's first 4096 buckets */
	struct mnt m = mount_mem(1);
	struct pfs_fs *fs = m.fs;
	uint64_t d = mk(fs, POSFS_ROOT_OID, "d", 0755), *ino = malloc(N * sizeof(*ino));
	char name[32];

	ck_assert_ptr_nonnull(ino);
	for (unsigned i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "f%u", i);
		ino[i] = mk(fs, d, name, S_IFREG | 0644);
		ck_assert_int_eq(pfs_fs_inode_open(fs, ino[i]), 0);
	}
	for (unsigned i = 0; i < N; i += 97)
		ck_assert_int_eq(pfs_fs_fsync(fs, ino[i], 0), 0);
	for (unsigned i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "f%u", i);
		ck_assert_int_eq(pfs_fs_unlink(fs, d, name), 0);
		ck_assert_int_eq(pfs_fs_inode_release(fs, ino[i]), 0);
		ck_assert_int_eq(pfs_fs_inode_release(fs, ino[i]), -EINVAL);
		ck_assert_int_eq(lookup_err(fs, d, name), -ENOENT);
	}
	free(ino);
	umount(m);
}
END_TEST

START_TEST(persistence_and_crash_orphans)
{
	char path[] = "/var/tmp/posfs-fs.XXXXXX";
	uint8_t *buf = malloc(1 << 20);
	struct pfs_fs_statfs s0, s1;
	struct pfs_fs_attr a;
	uint64_t d, f, o, l;
	struct mnt m;
	char t[32];

	image_new(path, 3);
	m = mount_path(path);
	ck_assert_int_eq(pfs_fs_statfs(m.fs, &s0), 0);
	d = mk(m.fs, POSFS_ROOT_OID, "dir", 0750);
	f = mk(m.fs, d, "file", S_IFREG | 0640);
	ck_assert_int_eq(pfs_fs_write(m.fs, f, 10, 5, "hello", &user), 5);
	ck_assert_int_eq(pfs_fs_symlink(m.fs, d, "link", "file", &user, &a), 0);
	l = a.ino;
	ck_assert_int_eq(pfs_fs_link(m.fs, f, POSFS_ROOT_OID, "hard", NULL), 0);
	ck_assert_int_eq(pfs_fs_setxattr(m.fs, f, "user.k", "v", 1, 0), 0);
	o = mk(m.fs, d, "orphan", S_IFREG | 0600);
	memset(buf, 1, 1 << 20);
	ck_assert_int_eq(pfs_fs_write(m.fs, o, 0, 1 << 20, buf, &user), 1 << 20);
	ck_assert_int_eq(pfs_fs_inode_open(m.fs, o), 0);
	ck_assert_int_eq(pfs_fs_unlink(m.fs, d, "orphan"), 0);
	ck_assert_int_eq(pfs_fs_fsync(m.fs, f, 0), 0);
	ck_assert_int_eq(pfs_fs_fsync(m.fs, d, 0), 0);
	/* "crash": no release; the store goes away with the orphan listed */
	umount(m);
	m = mount_path(path);
	ck_assert_int_eq(pfs_fs_getattr(m.fs, o, &a), -ENOENT);
	ck_assert_uint_eq(ino_of(m.fs, POSFS_ROOT_OID, "dir"), d);
	ck_assert_uint_eq(ino_of(m.fs, d, "file"), f);
	ck_assert_uint_eq(ino_of(m.fs, POSFS_ROOT_OID, "hard"), f);
	ck_assert_uint_eq(nlink_of(m.fs, f), 2);
	ck_assert_uint_eq(nlink_of(m.fs, POSFS_ROOT_OID), 3);
	ck_assert_int_eq(pfs_fs_read(m.fs, f, 0, 32, t), 15);
	ck_assert_mem_eq(t + 10, "hello", 5);
	ck_assert_int_eq(pfs_fs_readlink(m.fs, l, t, sizeof(t)), 4);
	ck_assert_int_eq(pfs_fs_getxattr(m.fs, f, "user.k", t, sizeof(t)), 1);
	ck_assert_int_eq(pfs_fs_getattr(m.fs, d, &a), 0);
	ck_assert_uint_eq(a.mode, S_IFDIR | 0750);
	ck_assert_uint_eq(count_entries(m.fs, d), 2);
	/* new entries after a remount get fresh cookies */
	mk(m.fs, d, "after", S_IFREG | 0600);
	ck_assert_uint_eq(count_entries(m.fs, d), 3);
	ck_assert_int_eq(pfs_store_sync(m.st), 0);
	ck_assert_int_eq(pfs_fs_statfs(m.fs, &s1), 0);
	ck_assert_uint_ge(s1.bfree + 16, s0.bfree);
	umount(m);
	unlink(path);
	free(buf);
}
END_TEST

/* O_TMPFILE: an unnamed inode (nlink 0, an orphan, open once) that
 * pfs_fs_link names, or that goes at its release or at the next mount;
 * an ordinary unlinked file and one made with O_EXCL stay unnamed. */
START_TEST(tmpfile_link_release)
{
	struct mnt m = mount_mem(2);
	struct pfs_fs *fs = m.fs;
	struct pfs_fs_cred um = { .uid = 1000, .gid = 1000, .umask = 022 };
	uint64_t d = mk(fs, POSFS_ROOT_OID, "d", 0755), t, x, u;
	uint8_t *buf = malloc(1 << 20);
	struct pfs_fs_statfs s0, s1, s2;
	struct pfs_fs_attr a, da0, da1;
	char back[8];

	memset(buf, 0x3c, 1 << 20);
	ck_assert_int_eq(pfs_store_sync(m.st), 0);
	ck_assert_int_eq(pfs_fs_statfs(fs, &s0), 0);
	ck_assert_int_eq(pfs_fs_getattr(fs, d, &da0), 0);
	ck_assert_int_eq(pfs_fs_tmpfile(fs, d, S_IFDIR | 0777, O_RDWR, &um, &a), -EINVAL);
	ck_assert_int_eq(pfs_fs_tmpfile(fs, d, 0666, O_RDWR, &um, &a), 0);
	t = a.ino;
	ck_assert_uint_eq(a.mode, S_IFREG | 0644);
	ck_assert_uint_eq(a.uid, 1000);
	ck_assert_uint_eq(a.nlink, 0);
	ck_assert_uint_eq(count_entries(fs, d), 0);
	ck_assert_int_eq(pfs_fs_getattr(fs, d, &da1), 0);
	ck_assert_int_eq(da1.mtime.sec, da0.mtime.sec);
	ck_assert_int_eq(da1.mtime.nsec, da0.mtime.nsec);
	ck_assert_int_eq(pfs_fs_write(fs, t, 0, 5, "hello", &user), 5);
	ck_assert_int_eq(pfs_fs_link(fs, t, d, "named", &a), 0);
	ck_assert_uint_eq(a.nlink, 1);
	ck_assert_uint_eq(ino_of(fs, d, "named"), t);
	ck_assert_int_eq(pfs_fs_inode_release(fs, t), 0);
	ck_assert_int_eq(pfs_fs_read(fs, t, 0, sizeof(back), back), 5);
	ck_assert_mem_eq(back, "hello", 5);
	/* once named, unlinked while open it is an ordinary orphan again */
	ck_assert_int_eq(pfs_fs_inode_open(fs, t), 0);
	ck_assert_int_eq(pfs_fs_unlink(fs, d, "named"), 0);
	ck_assert_int_eq(pfs_fs_link(fs, t, d, "again", NULL), -ENOENT);
	ck_assert_int_eq(pfs_fs_inode_release(fs, t), 0);
	ck_assert_int_eq(pfs_fs_getattr(fs, t, &a), -ENOENT);

	/* an ordinary file unlinked while open is not resurrected */
	u = mk(fs, d, "u", S_IFREG | 0600);
	ck_assert_int_eq(pfs_fs_inode_open(fs, u), 0);
	ck_assert_int_eq(pfs_fs_unlink(fs, d, "u"), 0);
	ck_assert_int_eq(pfs_fs_link(fs, u, d, "u2", NULL), -ENOENT);
	ck_assert_int_eq(pfs_fs_inode_release(fs, u), 0);

	/* O_EXCL: never linkable */
	ck_assert_int_eq(pfs_fs_tmpfile(fs, d, 0600, O_RDWR | O_EXCL, &user, &a), 0);
	x = a.ino;
	ck_assert_int_eq(pfs_fs_link(fs, x, d, "x", NULL), -ENOENT);
	ck_assert_int_eq(pfs_fs_inode_release(fs, x), 0);
	ck_assert_int_eq(pfs_fs_getattr(fs, x, &a), -ENOENT);

	/* unnamed: it goes at its last release, and its space with it */
	ck_assert_int_eq(pfs_fs_tmpfile(fs, d, 0600, O_RDWR, &user, &a), 0);
	x = a.ino;
	ck_assert_int_eq(pfs_fs_write(fs, x, 0, 1 << 20, buf, &user), 1 << 20);
	ck_assert_int_eq(pfs_fs_inode_open(fs, x), 0);	/* /proc/self/fd/N opened */
	ck_assert_int_eq(pfs_store_sync(m.st), 0);
	ck_assert_int_eq(pfs_fs_statfs(fs, &s1), 0);
	ck_assert_uint_lt(s1.bfree, s0.bfree - 200);
	ck_assert_int_eq(pfs_fs_inode_release(fs, x), 0);
	ck_assert_int_eq(pfs_fs_getattr(fs, x, &a), 0);
	ck_assert_int_eq(pfs_fs_inode_release(fs, x), 0);
	ck_assert_int_eq(pfs_fs_getattr(fs, x, &a), -ENOENT);
	ck_assert_int_eq(pfs_fs_unlink(fs, d, "u2"), -ENOENT);
	ck_assert_int_eq(pfs_store_sync(m.st), 0);
	ck_assert_int_eq(pfs_fs_statfs(fs, &s2), 0);
	ck_assert_uint_ge(s2.bfree + 16, s0.bfree);
	ck_assert_uint_eq(count_entries(fs, d), 0);
	free(buf);
	umount(m);
}
END_TEST

/* A crash with an O_TMPFILE open: the next mount reclaims it; one named
 * before the crash stays, off the orphan list. btime stays across writes,
 * setattr and a remount. */
START_TEST(tmpfile_crash_and_btime)
{
	char path[] = "/var/tmp/posfs-fs.XXXXXX";
	uint8_t *buf = malloc(1 << 20);
	struct pfs_fs_statfs s0, s1;
	struct pfs_fs_attr a, b;
	struct pfs_timespec bt;
	uint64_t t, n;
	struct mnt m;

	image_new(path, 2);
	m = mount_path(path);
	ck_assert_int_eq(pfs_store_sync(m.st), 0);
	ck_assert_int_eq(pfs_fs_statfs(m.fs, &s0), 0);
	memset(buf, 7, 1 << 20);
	ck_assert_int_eq(pfs_fs_tmpfile(m.fs, POSFS_ROOT_OID, 0600, O_RDWR, &user, &a), 0);
	t = a.ino;
	ck_assert_int_eq(pfs_fs_write(m.fs, t, 0, 1 << 20, buf, &user), 1 << 20);
	ck_assert_int_eq(pfs_fs_fsync(m.fs, t, 0), 0);
	ck_assert_int_eq(pfs_fs_tmpfile(m.fs, POSFS_ROOT_OID, 0600, O_RDWR, &user, &a), 0);
	n = a.ino;
	bt = a.btime;
	ck_assert_int_eq(pfs_fs_link(m.fs, n, POSFS_ROOT_OID, "n", NULL), 0);
	ck_assert_int_eq(pfs_fs_fsync(m.fs, n, 0), 0);
	/* "crash": neither released */
	umount(m);
	m = mount_path(path);
	ck_assert_int_eq(pfs_fs_getattr(m.fs, t, &a), -ENOENT);
	ck_assert_uint_eq(ino_of(m.fs, POSFS_ROOT_OID, "n"), n);
	ck_assert_int_eq(pfs_fs_getattr(m.fs, n, &a), 0);
	ck_assert_uint_eq(a.nlink, 1);
	ck_assert_int_eq(a.btime.sec, bt.sec);
	ck_assert_int_eq(a.btime.nsec, bt.nsec);
	ck_assert_int_eq(pfs_store_sync(m.st), 0);
	ck_assert_int_eq(pfs_fs_statfs(m.fs, &s1), 0);
	ck_assert_uint_ge(s1.bfree + 16, s0.bfree);
	/* btime: not changed by writes, chmod, truncate */
	ck_assert_int_eq(pfs_fs_write(m.fs, n, 0, 5, "hello", &user), 5);
	b = (struct pfs_fs_attr){ .mode = 0640, .size = 2 };
	ck_assert_int_eq(pfs_fs_setattr(m.fs, n, &b, PFS_FS_SET_MODE | PFS_FS_SET_SIZE, &user,
					&a), 0);
	ck_assert_int_eq(a.btime.sec, bt.sec);
	ck_assert_int_eq(a.btime.nsec, bt.nsec);
	/* the unlinked orphan stays gone: it is not on the list any more */
	umount(m);
	m = mount_path(path);
	ck_assert_int_eq(pfs_fs_getattr(m.fs, n, &a), 0);
	ck_assert_int_eq(a.btime.sec, bt.sec);
	ck_assert_int_eq(a.btime.nsec, bt.nsec);
	umount(m);
	unlink(path);
	free(buf);
}
END_TEST

/* ---- random namespace operations against a model ------------------------ */

#define MN 48			/* model nodes */

struct mnode {
	bool used, isdir;
	uint64_t ino;
	int parent;		/* dirs */
	int nlink;		/* files */
};

struct mentry {
	bool used;
	int dir, node;
	char name[8];
};

#define ME 128

struct model {
	struct mnode n[MN];
	struct mentry e[ME];
};

static int m_find(struct model *md, int dir, const char *name)
{
	for (int i = 0; i < ME; i++)
		if (md->e[i].used && md->e[i].dir == dir && !strcmp(md->e[i].name, name))
			return i;
	return -1;
}

static int m_count(struct model *md, int dir)
{
	int c = 0;

	for (int i = 0; i < ME; i++)
		c += md->e[i].used && md->e[i].dir == dir;
	return c;
}

static int m_subdirs(struct model *md, int dir)
{
	int c = 0;

	for (int i = 0; i < ME; i++)
		c += md->e[i].used && md->e[i].dir == dir && md->n[md->e[i].node].isdir;
	return c;
}

static bool m_ancestor(struct model *md, int anc, int dir)
{
	for (;;) {
		if (dir == anc)
			return true;
		if (dir == 0)
			return false;
		dir = md->n[dir].parent;
	}
}

static int m_free_node(struct model *md)
{
	for (int i = 1; i < MN; i++)
		if (!md->n[i].used)
			return i;
	return -1;
}

static int m_free_entry(struct model *md)
{
	for (int i = 0; i < ME; i++)
		if (!md->e[i].used)
			return i;
	return -1;
}

static int m_rand_dir(struct model *md)
{
	for (;;) {
		int i = rand() % MN;

		if (md->n[i].used && md->n[i].isdir)
			return i;
	}
}

static void m_verify(struct pfs_fs *fs, struct model *md)
{
	for (int i = 0; i < MN; i++) {
		struct pfs_fs_attr a;

		if (!md->n[i].used)
			continue;
		ck_assert_int_eq(pfs_fs_getattr(fs, md->n[i].ino, &a), 0);
		if (md->n[i].isdir) {
			ck_assert_uint_eq(a.nlink, 2 + (unsigned)m_subdirs(md, i));
			ck_assert_uint_eq(count_entries(fs, md->n[i].ino), (unsigned)m_count(md, i));
			ck_assert_uint_eq(ino_of(fs, md->n[i].ino, ".."),
					  md->n[md->n[i].parent].ino);
		} else {
			ck_assert_uint_eq(a.nlink, (unsigned)md->n[i].nlink);
		}
	}
	for (int i = 0; i < ME; i++)
		if (md->e[i].used)
			ck_assert_uint_eq(ino_of(fs, md->n[md->e[i].dir].ino, md->e[i].name),
					  md->n[md->e[i].node].ino);
}

static void m_drop(struct model *md, int e)
{
	int n = md->e[e].node;

	md->e[e].used = false;
	if (md->n[n].isdir || --md->n[n].nlink == 0)
		md->n[n].used = false;
}

START_TEST(model_random)
{
	struct mnt m = mount_mem(3);
	struct pfs_fs *fs = m.fs;
	struct model *md = calloc(1, sizeof(*md));

	srand(seed);
	md->n[0] = (struct mnode){ true, true, POSFS_ROOT_OID, 0, 0 };
	for (int step = 0; step < 3000; step++) {
		int op = rand() % 6, dir = m_rand_dir(md), dir2 = m_rand_dir(md);
		char name[8], name2[8];
		int e, e2, n, ret, want;

		snprintf(name, sizeof(name), "n%d", rand() % 6);
		snprintf(name2, sizeof(name2), "n%d", rand() % 6);
		e = m_find(md, dir, name);
		e2 = m_find(md, dir2, name2);
		switch (op) {
		case 0:	/* create a file or a directory */
		case 1:
			n = m_free_node(md);
			if (n < 0 || m_free_entry(md) < 0)
				break;
			if (op == 0)
				ret = pfs_fs_mknod(fs, md->n[dir].ino, name, S_IFREG | 0644, 0, &user,
						   &(struct pfs_fs_attr){ 0 });
			else
				ret = pfs_fs_mkdir(fs, md->n[dir].ino, name, 0755, &user, NULL);
			ck_assert_int_eq(ret, e >= 0 ? -EEXIST : 0);
			if (e >= 0)
				break;
			md->n[n] = (struct mnode){ true, op == 1, ino_of(fs, md->n[dir].ino, name),
						   dir, 1 };
			e = m_free_entry(md);
			md->e[e] = (struct mentry){ true, dir, n, "" };
			strcpy(md->e[e].name, name);
			break;
		case 2:	/* unlink or rmdir */
			if (e < 0) {
				ck_assert_int_eq(pfs_fs_unlink(fs, md->n[dir].ino, name), -ENOENT);
				break;
			}
			n = md->e[e].node;
			if (md->n[n].isdir) {
				want = m_count(md, n) ? -ENOTEMPTY : 0;
				ck_assert_int_eq(pfs_fs_unlink(fs, md->n[dir].ino, name), -EISDIR);
				ck_assert_int_eq(pfs_fs_rmdir(fs, md->n[dir].ino, name), want);
			} else {
				want = 0;
				ck_assert_int_eq(pfs_fs_rmdir(fs, md->n[dir].ino, name), -ENOTDIR);
				ck_assert_int_eq(pfs_fs_unlink(fs, md->n[dir].ino, name), 0);
			}
			if (!want)
				m_drop(md, e);
			break;
		case 3:	/* link */
			if (e < 0 || m_free_entry(md) < 0)
				break;
			n = md->e[e].node;
			ret = pfs_fs_link(fs, md->n[n].ino, md->n[dir2].ino, name2, NULL);
			want = md->n[n].isdir ? -EPERM : e2 >= 0 ? -EEXIST : 0;
			ck_assert_int_eq(ret, want);
			if (!want) {
				e2 = m_free_entry(md);
				md->e[e2] = (struct mentry){ true, dir2, n, "" };
				strcpy(md->e[e2].name, name2);
				md->n[n].nlink++;
			}
			break;
		default: {	/* rename, sometimes with flags */
			unsigned flags = rand() % 4 == 0 ? RENAME_NOREPLACE :
					 rand() % 4 == 0 ? RENAME_EXCHANGE : 0;
			int sn, tn = e2 >= 0 ? md->e[e2].node : -1;

			ret = pfs_fs_rename(fs, md->n[dir].ino, name, md->n[dir2].ino, name2, flags);
			if (e < 0) {
				ck_assert_int_eq(ret, -ENOENT);
				break;
			}
			sn = md->e[e].node;
			if (flags == RENAME_EXCHANGE) {
				if (e2 < 0)
					want = -ENOENT;
				else if (sn == tn)
					want = 0;
				else if ((md->n[sn].isdir && m_ancestor(md, sn, dir2)) ||
					 (md->n[tn].isdir && m_ancestor(md, tn, dir)))
					want = -EINVAL;
				else
					want = 0;
				ck_assert_msg(ret == want, "step %d exchange: %d want %d", step, ret, want);
				if (!want && sn != tn) {
					md->e[e].node = tn;
					md->e[e2].node = sn;
					if (md->n[sn].isdir)
						md->n[sn].parent = dir2;
					if (md->n[tn].isdir)
						md->n[tn].parent = dir;
				}
				break;
			}
			if (e2 >= 0 && flags == RENAME_NOREPLACE)
				want = -EEXIST;
			else if (e2 >= 0 && sn == tn)
				want = 0;
			else if (md->n[sn].isdir && dir != dir2 && m_ancestor(md, sn, dir2))
				want = -EINVAL;
			else if (e2 >= 0 && md->n[sn].isdir && !md->n[tn].isdir)
				want = -ENOTDIR;
			else if (e2 >= 0 && !md->n[sn].isdir && md->n[tn].isdir)
				want = -EISDIR;
			else if (e2 >= 0 && md->n[tn].isdir && m_count(md, tn))
				want = -ENOTEMPTY;
			else
				want = 0;
			ck_assert_msg(ret == want, "step %d rename: %d want %d", step, ret, want);
			if (want || (e2 >= 0 && sn == tn))
				break;
			if (e2 >= 0)
				m_drop(md, e2);
			md->e[e].dir = dir2;
			strcpy(md->e[e].name, name2);
			if (md->n[sn].isdir)
				md->n[sn].parent = dir2;
			break;
		}
		}
		if (step % 250 == 0)
			m_verify(fs, md);
	}
	m_verify(fs, md);
	free(md);
	umount(m);
}
END_TEST

/* ---- threads racing in shared directories ------------------------------ */

struct racer {
	struct pfs_fs *fs;
	uint64_t dirs[3];
	unsigned seed;
};

static void *race_thread(void *arg)
{
	struct racer *r = arg;

	for (int i = 0; i < 600; i++) {
		uint64_t d = r->dirs[rand_r(&r->seed) % 3], d2 = r->dirs[rand_r(&r->seed) % 3];
		char n[16], n2[16];
		int op = rand_r(&r->seed) % 5;

		snprintf(n, sizeof(n), "r%u", rand_r(&r->seed) % 8);
		snprintf(n2, sizeof(n2), "r%u", rand_r(&r->seed) % 8);
		if (op == 0)
			pfs_fs_mknod(r->fs, d, n, S_IFREG | 0644, 0, &user, NULL);
		else if (op == 1)
			pfs_fs_mkdir(r->fs, d, n, 0755, &user, NULL);
		else if (op == 2)
			pfs_fs_unlink(r->fs, d, n);
		else if (op == 3)
			pfs_fs_rmdir(r->fs, d, n);
		else
			pfs_fs_rename(r->fs, d, n, d2, n2, rand_r(&r->seed) % 3 == 0 ?
				      RENAME_EXCHANGE : 0);
	}
	return NULL;
}

struct tree_check {
	struct pfs_fs *fs;
	uint64_t dir;
	unsigned subdirs;
};

static int tree_cb(void *arg, const char *name, uint64_t ino, unsigned type, uint64_t next)
{
	struct tree_check *c = arg;
	struct pfs_fs_attr a;

	(void)next;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return 0;
	ck_assert_int_eq(pfs_fs_getattr(c->fs, ino, &a), 0);
	ck_assert_uint_eq(type, (a.mode & S_IFMT) >> 12);
	if (type == DT_DIR) {
		struct tree_check sub = { c->fs, ino, 0 };

		c->subdirs++;
		ck_assert_uint_eq(ino_of(c->fs, ino, ".."), c->dir);
		ck_assert_int_eq(pfs_fs_readdir(c->fs, ino, 0, tree_cb, &sub), 0);
		ck_assert_uint_eq(a.nlink, 2 + sub.subdirs);
	} else {
		ck_assert_uint_ge(a.nlink, 1);
	}
	return 0;
}

/* Write n blocks into each of f and g, every other block: each ends up
 * with n extents, each block between two of the other's. */
static void interleave(struct pfs_fs *fs, uint64_t f, uint64_t g, uint64_t n)
{
	static char blk[4096];

	memset(blk, 'x', sizeof(blk));
	for (uint64_t i = 0; i < n; i++) {
		ck_assert_int_eq(pfs_fs_write(fs, f, i * 8192, 4096, blk, &user), 4096);
		ck_assert_int_eq(pfs_fs_write(fs, g, i * 8192, 4096, blk, &user), 4096);
	}
}

/* Append buf (len bytes, then halves of it down to a block) to ino until
 * the file system is full: the bytes written. */
static uint64_t fill_data(struct pfs_fs *fs, uint64_t ino, const uint8_t *buf, size_t len)
{
	uint64_t off = 0;

	for (;;) {
		ssize_t w = pfs_fs_write(fs, ino, off, len, buf, &user);

		if (w == -ENOSPC && len > 4096) {
			len /= 2;
			continue;
		}
		if (w == -ENOSPC)
			return off;
		ck_assert_int_eq(w, (ssize_t)len);
		off += len;
	}
}

/*
 * Files too large to remove in one transaction on a small WAL (16,000
 * scattered extents each, 1 MiB WALs): unlink and rename over them go
 * through the orphan list and are truncated in steps; every block comes
 * back.
 */
START_TEST(huge_files_go_in_steps)
{
	struct pfs_dev *dev = pfs_test_newfs_mem(192ull << 20, 1, 1 << 20);
	struct mnt m;
	struct pfs_fs_statfs before, after;
	uint64_t f, g, h;
	const uint64_t n = 16000;

	ck_assert_ptr_nonnull(dev);
	m = mount_dev(dev);
	f = mk(m.fs, POSFS_ROOT_OID, "f", S_IFREG | 0644);
	g = mk(m.fs, POSFS_ROOT_OID, "g", S_IFREG | 0644);
	h = mk(m.fs, POSFS_ROOT_OID, "h", S_IFREG | 0644);
	ck_assert_int_eq(pfs_store_sync(m.st), 0);
	ck_assert_int_eq(pfs_fs_statfs(m.fs, &before), 0);	/* three empty files */
	interleave(m.fs, f, g, n);
	ck_assert_int_eq(pfs_fs_unlink(m.fs, POSFS_ROOT_OID, "f"), 0);
	ck_assert_int_eq(pfs_fs_rename(m.fs, POSFS_ROOT_OID, "h", POSFS_ROOT_OID, "g", 0), 0);
	ck_assert_int_eq(ino_of(m.fs, POSFS_ROOT_OID, "g"), h);
	ck_assert_int_eq(pfs_store_sync(m.st), 0);
	ck_assert_int_eq(pfs_fs_statfs(m.fs, &after), 0);
	ck_assert_uint_eq(after.bfree, before.bfree);
	umount(m);
	(void)g;
}
END_TEST

/*
 * A full file system (one shard: data until ENOSPC, then names until
 * ENOSPC) still removes: rmdir, unlink, a punch, truncates down, and the
 * large file (through the orphan list) after a remount while full. Creates
 * meanwhile fail without taking the reserve, and statfs shows nothing
 * available while the reserve is left.
 */
static unsigned fill_names(struct pfs_fs *fs, unsigned *next)
{
	struct pfs_fs_attr a;
	unsigned n = 0;
	char name[32];
	int ret;

	for (;;) {
		snprintf(name, sizeof(name), "n%u", (*next)++);
		ret = pfs_fs_mknod(fs, POSFS_ROOT_OID, name, S_IFREG | 0644, 0, &user, &a);
		if (ret == -ENOSPC)
			return n;
		ck_assert_int_eq(ret, 0);
		n++;
	}
}

START_TEST(full_fs_removes)
{
	char path[] = "/var/tmp/posfs-fs.XXXXXX";
	size_t len = 1 << 20;
	uint8_t *buf = calloc(1, len);
	struct pfs_fs_statfs s0, s1, s2;
	struct pfs_fs_attr a;
	uint64_t big, half, zero, p, off;
	unsigned next = 0;
	struct mnt m;
	char name[32];
	int ret;

	image_new(path, 1);
	m = mount_path(path);
	ck_assert_int_eq(pfs_fs_statfs(m.fs, &s0), 0);
	ck_assert_uint_lt(s0.bavail, s0.bfree);
	mk(m.fs, POSFS_ROOT_OID, "e", 0755);
	half = mk(m.fs, POSFS_ROOT_OID, "half", S_IFREG | 0644);
	zero = mk(m.fs, POSFS_ROOT_OID, "zero", S_IFREG | 0644);
	p = mk(m.fs, POSFS_ROOT_OID, "p", S_IFREG | 0644);
	big = mk(m.fs, POSFS_ROOT_OID, "big", S_IFREG | 0644);
	for (unsigned i = 0; i < 4; i++) {
		ck_assert_int_eq(pfs_fs_write(m.fs, half, i * len, len, buf, &user), (ssize_t)len);
		ck_assert_int_eq(pfs_fs_write(m.fs, zero, i * len, len, buf, &user), (ssize_t)len);
		ck_assert_int_eq(pfs_fs_write(m.fs, p, i * len, len, buf, &user), (ssize_t)len);
	}
	off = fill_data(m.fs, big, buf, len);
	ck_assert_uint_gt(off, 32u << 20);	/* past PFS_FS_REAP_SECTORS */
	ck_assert_uint_gt(fill_names(m.fs, &next), 10);
	ck_assert_int_eq(pfs_fs_statfs(m.fs, &s1), 0);
	ck_assert_uint_eq(s1.bavail, 0);
	ck_assert_uint_gt(s1.bfree, 0);
	/* ordinary changes do not take the reserve */
	for (unsigned i = 0; i < 20; i++)
		ck_assert_uint_eq(fill_names(m.fs, &next), 0);
	ck_assert_int_eq(pfs_fs_mkdir(m.fs, POSFS_ROOT_OID, "d", 0755, &user, &a), -ENOSPC);
	ck_assert_int_eq(pfs_fs_write(m.fs, p, 8 << 20, 4096, buf, &user), -ENOSPC);
	ck_assert_int_eq(pfs_fs_statfs(m.fs, &s2), 0);
	ck_assert_uint_eq(s2.bfree, s1.bfree);

	ck_assert_int_eq(pfs_fs_rmdir(m.fs, POSFS_ROOT_OID, "e"), 0);
	fill_names(m.fs, &next);
	for (unsigned i = 0; i < 100; i++) {
		snprintf(name, sizeof(name), "n%u", i);
		ck_assert_int_eq(pfs_fs_unlink(m.fs, POSFS_ROOT_OID, name), 0);
	}
	fill_names(m.fs, &next);
	ck_assert_int_eq(pfs_fs_fallocate(m.fs, p, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
					  4096, 3u << 20), 0);
	fill_names(m.fs, &next);
	a.size = 2u << 20;
	ck_assert_int_eq(pfs_fs_setattr(m.fs, half, &a, PFS_FS_SET_SIZE, &user, NULL), 0);
	fill_names(m.fs, &next);
	a.size = 0;
	ck_assert_int_eq(pfs_fs_setattr(m.fs, zero, &a, PFS_FS_SET_SIZE, &user, NULL), 0);
	fill_names(m.fs, &next);
	umount(m);

	/* full after a remount: the large file goes, its space comes back */
	m = mount_path(path);
	ck_assert_uint_eq(fill_names(m.fs, &next), 0);
	ck_assert_int_eq(pfs_fs_statfs(m.fs, &s1), 0);
	ck_assert_uint_eq(s1.bavail, 0);
	ret = pfs_fs_unlink(m.fs, POSFS_ROOT_OID, "big");
	ck_assert_int_eq(ret, 0);
	ck_assert_int_eq(pfs_store_sync(m.st), 0);
	ck_assert_int_eq(pfs_fs_statfs(m.fs, &s2), 0);
	ck_assert_uint_gt(s2.bavail, off / s2.bsize * 9 / 10);
	ck_assert_int_eq(pfs_fs_getattr(m.fs, big, &a), -ENOENT);
	umount(m);
	m = mount_path(path);
	ck_assert_int_eq(pfs_fs_statfs(m.fs, &s1), 0);
	ck_assert_uint_eq(s1.bfree, s2.bfree);
	umount(m);
	unlink(path);
	free(buf);
}
END_TEST

/*
 * The worst case for a removal on a full file system: a large file whose
 * every block lies between two of another file's, so that removing it
 * adds a free extent per block, more free-tree nodes than the reserve
 * holds in one transaction; the removal goes in smaller steps.
 */
START_TEST(full_fs_removes_fragmented)
{
	struct pfs_dev *dev = pfs_test_newfs_mem(192ull << 20, 1, 1 << 20);
	struct pfs_fs_statfs s1, s2;
	const uint64_t n = 16000;
	size_t len = 1 << 20;
	uint8_t *buf = calloc(1, len);
	uint64_t f, g, big;
	unsigned next = 0;
	struct mnt m;

	ck_assert_ptr_nonnull(dev);
	m = mount_dev(dev);
	f = mk(m.fs, POSFS_ROOT_OID, "f", S_IFREG | 0644);
	g = mk(m.fs, POSFS_ROOT_OID, "g", S_IFREG | 0644);
	big = mk(m.fs, POSFS_ROOT_OID, "big", S_IFREG | 0644);
	interleave(m.fs, f, g, n);
	ck_assert_uint_gt(fill_data(m.fs, big, buf, len), 0);
	fill_names(m.fs, &next);
	ck_assert_int_eq(pfs_fs_statfs(m.fs, &s1), 0);
	ck_assert_uint_eq(s1.bavail, 0);
	ck_assert_int_eq(pfs_fs_unlink(m.fs, POSFS_ROOT_OID, "f"), 0);
	ck_assert_int_eq(pfs_fs_getattr(m.fs, f, &(struct pfs_fs_attr){ 0 }), -ENOENT);
	ck_assert_int_eq(pfs_store_sync(m.st), 0);
	ck_assert_int_eq(pfs_fs_statfs(m.fs, &s2), 0);
	ck_assert_uint_ge(s2.bfree, s1.bfree + n);
	ck_assert_int_eq(pfs_fs_unlink(m.fs, POSFS_ROOT_OID, "g"), 0);
	umount(m);
	free(buf);
}
END_TEST

START_TEST(threads_race)
{
	struct mnt m = mount_mem(3);
	struct racer r[4];
	pthread_t th[4];
	struct tree_check c = { m.fs, POSFS_ROOT_OID, 0 };
	uint64_t dirs[3];

	for (int i = 0; i < 3; i++) {
		char n[16];

		snprintf(n, sizeof(n), "t%d", i);
		dirs[i] = mk(m.fs, POSFS_ROOT_OID, n, 0755);
	}
	for (int i = 0; i < 4; i++) {
		r[i] = (struct racer){ m.fs, { dirs[0], dirs[1], dirs[2] }, seed * 31 + (unsigned)i };
		ck_assert_int_eq(pthread_create(&th[i], NULL, race_thread, &r[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	ck_assert_int_eq(pfs_fs_readdir(m.fs, POSFS_ROOT_OID, 0, tree_cb, &c), 0);
	ck_assert_uint_eq(nlink_of(m.fs, POSFS_ROOT_OID), 2 + c.subdirs);
	umount(m);
}
END_TEST

int main(int argc, char **argv)
{
	const char *s = argc > 1 ? argv[1] : getenv("POSFS_TEST_SEED");
	Suite *su = suite_create("fs");
	TCase *tc = tcase_create("fs");
	SRunner *sr;
	int failed;

	if (s)
		seed = !strcmp(s, "random") ? (unsigned)time(NULL) : (unsigned)strtoul(s, NULL, 0);
	printf("seed %u\n", seed);
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, create_lookup_errors);
	tcase_add_test(tc, dirs_across_shards);
	tcase_add_test(tc, rename_matrix);
	tcase_add_test(tc, hard_links);
	tcase_add_test(tc, big_directory_listing);
	tcase_add_test(tc, sparse_and_huge);
	tcase_add_test(tc, suid_times_setattr);
	tcase_add_test(tc, sgid_and_groups);
	tcase_add_test(tc, flags_inherited);
	tcase_add_test(tc, immutable_flags_by_root);
	tcase_add_test(tc, immutable_file);
	tcase_add_test(tc, append_only_file);
	tcase_add_test(tc, immutable_append_dirs);
	tcase_add_test(tc, xattrs);
	tcase_add_test(tc, fallocate_and_copy);
	tcase_add_test(tc, orphans);
	tcase_add_test(tc, open_dir_orphans);
	tcase_add_test(tc, inode_states_grow);
	tcase_add_test(tc, readdir_while_renaming);
	tcase_add_test(tc, persistence_and_crash_orphans);
	tcase_add_test(tc, tmpfile_link_release);
	tcase_add_test(tc, tmpfile_crash_and_btime);
	tcase_add_test(tc, model_random);
	tcase_add_test(tc, threads_race);
	tcase_add_test(tc, huge_files_go_in_steps);
	tcase_add_test(tc, full_fs_removes);
	tcase_add_test(tc, full_fs_removes_fragmented);
	suite_add_tcase(su, tc);
	sr = srunner_create(su);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
