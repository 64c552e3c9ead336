/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * src/fs/place.c: where new directories go. Top-level directories spread
 * over the shards (P1); any other stays in its parent's shard (P2) until
 * that shard is short of space or holds far more objects than the others,
 * and then goes where P1 would put it. The shards' loads the rule reads
 * (pfs_store_shard_load) follow commits and survive a remount. The other
 * two policies do what they say.
 */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "posfs/format.h"
#include "posfs/fs.h"
#include "posfs/io.h"
#include "posfs/store.h"
#include "testdev.h"

static const struct pfs_fs_cred user = { .uid = 1000, .gid = 1000, .setid = PFS_FS_SETID_KEEP };

struct mnt {
	struct pfs_store *st;
	struct pfs_fs *fs;
};

static struct mnt mount_dev(struct pfs_dev *dev)
{
	struct pfs_store_opts o = { .cache_blocks = 4096, .ckpt_interval_ms = -1 };
	struct mnt m;

	ck_assert_ptr_nonnull(dev);
	ck_assert_int_eq(pfs_store_open_dev(dev, &o, &m.st), 0);
	ck_assert_int_eq(pfs_fs_open(m.st, &m.fs), 0);
	return m;
}

static struct mnt mount_mem(uint64_t size, uint32_t shards)
{
	return mount_dev(pfs_test_newfs_mem(size, shards, 2 << 20));
}

static void umount(struct mnt m)
{
	pfs_fs_close(m.fs);
	ck_assert_int_eq(pfs_store_close(m.st), 0);
}

static uint64_t mk(struct pfs_fs *fs, uint64_t dir, const char *name, uint32_t mode)
{
	struct pfs_fs_attr a;
	int ret = !(mode & S_IFMT) ? pfs_fs_mkdir(fs, dir, name, mode, &user, &a)
				: pfs_fs_mknod(fs, dir, name, mode, 0, &user, &a);

	ck_assert_msg(ret == 0, "create %s: %d", name, ret);
	return a.ino;
}

static uint32_t shard_of(uint64_t ino)
{
	return POSFS_OID_SHARD(ino);
}

START_TEST(top_level_spread)
{
	struct mnt m = mount_mem(64ull << 20, 4);
	unsigned seen = 0;
	char name[16];
	uint64_t d;

	/* files in the root (its shard's) change nothing */
	for (int i = 0; i < 20; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		mk(m.fs, POSFS_ROOT_OID, name, S_IFREG | 0644);
	}
	for (int i = 0; i < 4; i++) {
		snprintf(name, sizeof(name), "t%d", i);
		d = mk(m.fs, POSFS_ROOT_OID, name, 0755);
		ck_assert_msg(!(seen & (1u << shard_of(d))), "t%d shares shard %u", i, shard_of(d));
		seen |= 1u << shard_of(d);
	}
	ck_assert_uint_eq(seen, 0xf);
	/* and again, over all four */
	seen = 0;
	for (int i = 4; i < 8; i++) {
		snprintf(name, sizeof(name), "t%d", i);
		seen |= 1u << shard_of(mk(m.fs, POSFS_ROOT_OID, name, 0755));
	}
	ck_assert_uint_eq(seen, 0xf);
	umount(m);
}
END_TEST

START_TEST(subdirs_stay)
{
	struct mnt m = mount_mem(64ull << 20, 4);
	struct pfs_store_counters c0, c1;
	uint64_t top[3], d, f;
	char name[16];

	for (int i = 0; i < 3; i++) {
		snprintf(name, sizeof(name), "t%d", i);
		top[i] = mk(m.fs, POSFS_ROOT_OID, name, 0755);
	}
	pfs_store_counters(m.st, &c0);
	for (int i = 0; i < 3; i++) {
		d = top[i];
		for (int depth = 0; depth < 4; depth++) {
			d = mk(m.fs, d, "sub", 0755);
			ck_assert_uint_eq(shard_of(d), shard_of(top[i]));
			f = mk(m.fs, d, "file", S_IFREG | 0644);
			ck_assert_uint_eq(shard_of(f), shard_of(d));
		}
	}
	/* twelve mkdirs, twelve creates: not one crossed shards */
	pfs_store_counters(m.st, &c1);
	ck_assert_uint_ge(c1.commits - c0.commits, 24);
	ck_assert_uint_eq(c1.cross_shard, c0.cross_shard);
	/* a rename between two top-level trees does */
	ck_assert_int_eq(pfs_fs_rename(m.fs, top[0], "sub", top[1], "moved", 0), 0);
	pfs_store_counters(m.st, &c0);
	ck_assert_uint_eq(c0.cross_shard, c1.cross_shard + 1);
	umount(m);
}
END_TEST

START_TEST(short_of_space_moves_on)
{
	struct mnt m = mount_mem(256ull << 20, 4);
	struct pfs_shard_load l, l2;
	static char buf[1 << 20];
	uint64_t t, f, x, y;
	uint32_t s;

	t = mk(m.fs, POSFS_ROOT_OID, "t", 0755);
	s = shard_of(t);
	ck_assert_uint_eq(shard_of(mk(m.fs, t, "before", 0755)), s);
	/* fill most of t's shard (64 MiB) with one file */
	f = mk(m.fs, t, "big", S_IFREG | 0644);
	memset(buf, 0x5a, sizeof(buf));
	for (int i = 0; i < 40; i++)
		ck_assert_int_eq(pfs_fs_write(m.fs, f, (uint64_t)i << 20, sizeof(buf), buf, &user),
				 (ssize_t)sizeof(buf));
	ck_assert_int_eq(pfs_store_shard_load(m.st, s, &l), 0);
	ck_assert_uint_lt(l.free_blocks * 2, l.total_blocks);
	/* P2: the parent's shard is short of space: another, with room */
	x = mk(m.fs, t, "after", 0755);
	ck_assert_uint_ne(shard_of(x), s);
	ck_assert_int_eq(pfs_store_shard_load(m.st, shard_of(x), &l2), 0);
	ck_assert_uint_gt(l2.free_blocks * 4, l2.total_blocks * 3);
	/* and x's own subdirectories stay with it */
	y = mk(m.fs, x, "sub", 0755);
	ck_assert_uint_eq(shard_of(y), shard_of(x));
	/* files still go to their directory's shard, full or not */
	ck_assert_uint_eq(shard_of(mk(m.fs, t, "small", S_IFREG | 0644)), s);
	umount(m);
}
END_TEST

START_TEST(many_objects_move_on)
{
	struct mnt m = mount_mem(256ull << 20, 4);
	uint64_t t, d;
	uint32_t s;
	char name[16];
	int i;

	t = mk(m.fs, POSFS_ROOT_OID, "t", 0755);
	s = shard_of(t);
	/* more than 3/2 of the average and 8192 more: with the other shards
	 * near empty, past 8192 * 8 / 5 = 13,107 objects in t's */
	for (i = 0; i < 13000; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		mk(m.fs, t, name, S_IFREG | 0644);
	}
	ck_assert_uint_eq(shard_of(mk(m.fs, t, "d0", 0755)), s);
	for (; i < 13200; i++) {
		snprintf(name, sizeof(name), "f%d", i);
		mk(m.fs, t, name, S_IFREG | 0644);
	}
	d = mk(m.fs, t, "d1", 0755);
	ck_assert_uint_ne(shard_of(d), s);
	umount(m);
}
END_TEST

START_TEST(loads_follow_commits)
{
	const uint64_t size = 64ull << 20;
	struct pfs_dev *dev = pfs_test_newfs_mem(size, 2, 2 << 20);
	uint8_t *img = pfs_dev_buf_alloc(size);
	struct pfs_shard_load a, b, c;
	static char buf[65536];
	struct mnt m;
	uint64_t f;

	/* the device over an image of our own, so that it outlives a close */
	ck_assert_ptr_nonnull(dev);
	ck_assert_ptr_nonnull(img);
	ck_assert_int_eq(pfs_dev_pread(dev, img, size, 0), 0);
	pfs_dev_close(dev);
	ck_assert_int_eq(pfs_dev_open_mem_over(img, size, 512, &dev), 0);
	m = mount_dev(dev);
	ck_assert_int_eq(pfs_store_shard_load(m.st, 2, &a), -EINVAL);
	ck_assert_int_eq(pfs_store_shard_load(m.st, 0, &a), 0);
	ck_assert_uint_ge(a.objects, 1);			/* the root */
	ck_assert_uint_gt(a.free_blocks, 0);
	ck_assert_uint_le(a.free_blocks, a.total_blocks);
	f = mk(m.fs, POSFS_ROOT_OID, "f", S_IFREG | 0644);
	ck_assert_int_eq(pfs_store_shard_load(m.st, 0, &b), 0);
	ck_assert_uint_eq(b.objects, a.objects + 1);
	memset(buf, 0x33, sizeof(buf));
	ck_assert_int_eq(pfs_fs_write(m.fs, f, 0, sizeof(buf), buf, &user), (ssize_t)sizeof(buf));
	ck_assert_int_eq(pfs_store_shard_load(m.st, 0, &a), 0);
	ck_assert_uint_le(a.free_blocks + sizeof(buf) / 4096, b.free_blocks);
	umount(m);
	/* after a remount, what the last commit left */
	ck_assert_int_eq(pfs_dev_open_mem_over(img, size, 512, &dev), 0);
	m = mount_dev(dev);
	ck_assert_int_eq(pfs_store_shard_load(m.st, 0, &c), 0);
	ck_assert_uint_eq(c.objects, a.objects);
	ck_assert_uint_le(c.free_blocks + sizeof(buf) / 4096, b.free_blocks);
	umount(m);
	pfs_dev_buf_free(img);
}
END_TEST

START_TEST(other_policies)
{
	struct mnt m = mount_mem(64ull << 20, 3);
	uint64_t d, e;
	char name[16];

	pfs_fs_set_placement(m.fs, PFS_FS_PLACE_PARENT);
	d = mk(m.fs, POSFS_ROOT_OID, "p", 0755);
	ck_assert_uint_eq(shard_of(d), shard_of(POSFS_ROOT_OID));
	pfs_fs_set_placement(m.fs, PFS_FS_PLACE_SPREAD);
	d = mk(m.fs, d, "s0", 0755);
	for (int i = 1; i < 4; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		e = mk(m.fs, d, name, 0755);
		ck_assert_uint_eq(shard_of(e), (shard_of(d) + 1) % 3);
		d = e;
	}
	umount(m);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("place");
	TCase *tc = tcase_create("place");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, top_level_spread);
	tcase_add_test(tc, subdirs_stay);
	tcase_add_test(tc, short_of_space_moves_on);
	tcase_add_test(tc, many_objects_move_on);
	tcase_add_test(tc, loads_follow_commits);
	tcase_add_test(tc, other_policies);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
