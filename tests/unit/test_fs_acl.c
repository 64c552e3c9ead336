/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * POSIX ACLs in the namespace layer (src/fs/acl.c) on a memory device
 * with two shards: default ACL inheritance by files and directories (the
 * mode masked as Linux's posix_acl_create does, the umask ignored), the
 * umask without a default ACL, chmod updating the access ACL, setxattr of
 * the access ACL setting the mode, an ACL equivalent to the mode stored as
 * the mode only, malformed ACLs refused, and where ACLs are not allowed.
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "posfs/format.h"
#include "posfs/fs.h"
#include "posfs/io.h"
#include "posfs/store.h"
#include "testdev.h"

#define ACC	"system.posix_acl_access"
#define DEF	"system.posix_acl_default"

enum { UO = 0x01, U = 0x02, GO = 0x04, G = 0x08, M = 0x10, O = 0x20 };
#define NOID	0xffffffffu

static const struct pfs_fs_cred root = { .uid = 0, .gid = 0 };

struct ent {
	uint16_t tag, perm;
	uint32_t id;
};

struct mnt {
	struct pfs_store *st;
	struct pfs_fs *fs;
};

static struct mnt m;

static void setup(void)
{
	struct pfs_store_opts o = { .cache_blocks = 1024, .ckpt_interval_ms = -1 };
	struct pfs_dev *dev = pfs_test_newfs_mem(64ull << 20, 2, 2 << 20);

	ck_assert_ptr_nonnull(dev);
	ck_assert_int_eq(pfs_store_open_dev(dev, &o, &m.st), 0);
	ck_assert_int_eq(pfs_fs_open(m.st, &m.fs), 0);
}

static void teardown(void)
{
	pfs_fs_close(m.fs);
	ck_assert_int_eq(pfs_store_close(m.st), 0);
}

static void put16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, v);
	put16(p + 2, v >> 16);
}

/* The xattr bytes of n entries (version 2) into buf; their length. */
static size_t acl_build(uint8_t *buf, const struct ent *e, size_t n)
{
	put32(buf, 2);
	for (size_t i = 0; i < n; i++) {
		put16(buf + 4 + 8 * i, e[i].tag);
		put16(buf + 6 + 8 * i, e[i].perm);
		put32(buf + 8 + 8 * i, e[i].id);
	}
	return 4 + 8 * n;
}

#define ACL(buf, ...) \
	acl_build(buf, (const struct ent[]){ __VA_ARGS__ }, \
		  sizeof((const struct ent[]){ __VA_ARGS__ }) / sizeof(struct ent))

static uint32_t mode_of(uint64_t ino)
{
	struct pfs_fs_attr a;

	ck_assert_int_eq(pfs_fs_getattr(m.fs, ino, &a), 0);
	return a.mode;
}

/* ino's xattr name must be exactly want (wlen bytes). */
static void expect_xattr(uint64_t ino, const char *name, const uint8_t *want, size_t wlen)
{
	uint8_t buf[512];
	ssize_t n = pfs_fs_getxattr(m.fs, ino, name, buf, sizeof(buf));

	ck_assert_int_eq(n, (ssize_t)wlen);
	ck_assert_mem_eq(buf, want, wlen);
}

static void expect_none(uint64_t ino, const char *name)
{
	ck_assert_int_eq(pfs_fs_getxattr(m.fs, ino, name, NULL, 0), -ENODATA);
}

static uint64_t mkdir_root(const char *name, uint32_t mode)
{
	struct pfs_fs_attr a;

	ck_assert_int_eq(pfs_fs_mkdir(m.fs, POSFS_ROOT_OID, name, mode, &root, &a), 0);
	return a.ino;
}

/* A directory with default ACL u::rwx u:1001:rwx g::r-x m::rwx o::r-x. */
static uint64_t dir_with_default(const char *name, uint8_t *dacl, size_t *dlen)
{
	uint64_t d = mkdir_root(name, 0755);

	*dlen = ACL(dacl, { UO, 7, NOID }, { U, 7, 1001 }, { GO, 5, NOID }, { M, 7, NOID },
		    { O, 5, NOID });
	ck_assert_int_eq(pfs_fs_setxattr(m.fs, d, DEF, dacl, *dlen, 0), 0);
	ck_assert_uint_eq(mode_of(d), S_IFDIR | 0755);	/* a default ACL leaves the mode */
	expect_none(d, ACC);
	return d;
}

START_TEST(inherit_file)
{
	struct pfs_fs_cred cr = { .uid = 1000, .gid = 1000, .umask = 077 };
	uint8_t dacl[64], want[64];
	struct pfs_fs_attr a;
	size_t dlen, wlen;
	uint64_t d = dir_with_default("d", dacl, &dlen);

	/* 0666 & ACL: u rw-, mask rw- (group bits), o r--; umask 077 ignored */
	ck_assert_int_eq(pfs_fs_mknod(m.fs, d, "f", S_IFREG | 0666, 0, &cr, &a), 0);
	ck_assert_uint_eq(a.mode, S_IFREG | 0664);
	ck_assert_uint_eq(a.uid, 1000);
	wlen = ACL(want, { UO, 6, NOID }, { U, 7, 1001 }, { GO, 5, NOID }, { M, 6, NOID },
		   { O, 4, NOID });
	expect_xattr(a.ino, ACC, want, wlen);
	expect_none(a.ino, DEF);	/* only directories inherit the default */

	/* 0700: everything but the owner masked away; the named entry stays */
	ck_assert_int_eq(pfs_fs_mknod(m.fs, d, "g", S_IFREG | 0700, 0, &cr, &a), 0);
	ck_assert_uint_eq(a.mode, S_IFREG | 0700);
	wlen = ACL(want, { UO, 7, NOID }, { U, 7, 1001 }, { GO, 5, NOID }, { M, 0, NOID },
		   { O, 0, NOID });
	expect_xattr(a.ino, ACC, want, wlen);

	/* a fifo too; a symlink gets neither ACL nor umask */
	ck_assert_int_eq(pfs_fs_mknod(m.fs, d, "p", S_IFIFO | 0640, 0, &cr, &a), 0);
	ck_assert_uint_eq(a.mode, S_IFIFO | 0640);
	ck_assert_int_gt(pfs_fs_getxattr(m.fs, a.ino, ACC, NULL, 0), 0);
	ck_assert_int_eq(pfs_fs_symlink(m.fs, d, "l", "f", &cr, &a), 0);
	ck_assert_uint_eq(a.mode, S_IFLNK | 0777);
	expect_none(a.ino, ACC);
}
END_TEST

/* An O_TMPFILE inherits the default ACL as a create does, and keeps its
 * access ACL once linked. */
START_TEST(inherit_tmpfile)
{
	struct pfs_fs_cred cr = { .uid = 1000, .gid = 1000, .umask = 077 };
	uint8_t dacl[64], want[64];
	struct pfs_fs_attr a;
	size_t dlen, wlen;
	uint64_t d = dir_with_default("d", dacl, &dlen);

	ck_assert_int_eq(pfs_fs_tmpfile(m.fs, d, 0666, O_RDWR, &cr, &a), 0);
	ck_assert_uint_eq(a.mode, S_IFREG | 0664);
	ck_assert_uint_eq(a.nlink, 0);
	wlen = ACL(want, { UO, 6, NOID }, { U, 7, 1001 }, { GO, 5, NOID }, { M, 6, NOID },
		   { O, 4, NOID });
	expect_xattr(a.ino, ACC, want, wlen);
	expect_none(a.ino, DEF);
	ck_assert_int_eq(pfs_fs_link(m.fs, a.ino, d, "t", NULL), 0);
	expect_xattr(a.ino, ACC, want, wlen);
	ck_assert_int_eq(pfs_fs_inode_release(m.fs, a.ino), 0);
	/* without a default ACL: the umask */
	ck_assert_int_eq(pfs_fs_tmpfile(m.fs, POSFS_ROOT_OID, 0666, O_RDWR, &cr, &a), 0);
	ck_assert_uint_eq(a.mode, S_IFREG | 0600);
	expect_none(a.ino, ACC);
	ck_assert_int_eq(pfs_fs_inode_release(m.fs, a.ino), 0);
}
END_TEST

START_TEST(inherit_dir)
{
	struct pfs_fs_cred cr = { .uid = 1000, .gid = 1000, .umask = 077 };
	uint8_t dacl[64], want[64];
	struct pfs_fs_attr a, b, c;
	size_t dlen, wlen;
	uint64_t d = dir_with_default("d", dacl, &dlen);

	ck_assert_int_eq(pfs_fs_mkdir(m.fs, d, "sub", 0777, &cr, &a), 0);
	ck_assert_uint_eq(a.mode, S_IFDIR | 0775);
	wlen = ACL(want, { UO, 7, NOID }, { U, 7, 1001 }, { GO, 5, NOID }, { M, 7, NOID },
		   { O, 5, NOID });
	expect_xattr(a.ino, ACC, want, wlen);
	expect_xattr(a.ino, DEF, dacl, dlen);	/* the default itself, unmasked */

	/* and on down: a grandchild directory and file */
	ck_assert_int_eq(pfs_fs_mkdir(m.fs, a.ino, "sub2", 0750, &cr, &b), 0);
	ck_assert_uint_eq(b.mode, S_IFDIR | 0750);
	expect_xattr(b.ino, DEF, dacl, dlen);
	wlen = ACL(want, { UO, 7, NOID }, { U, 7, 1001 }, { GO, 5, NOID }, { M, 5, NOID },
		   { O, 0, NOID });
	expect_xattr(b.ino, ACC, want, wlen);
	ck_assert_int_eq(pfs_fs_mknod(m.fs, b.ino, "f", S_IFREG | 0644, 0, &cr, &c), 0);
	ck_assert_uint_eq(c.mode, S_IFREG | 0644);
	wlen = ACL(want, { UO, 6, NOID }, { U, 7, 1001 }, { GO, 5, NOID }, { M, 4, NOID },
		   { O, 4, NOID });
	expect_xattr(c.ino, ACC, want, wlen);

	/* a setgid parent still passes S_ISGID on beside the ACL */
	ck_assert_int_eq(pfs_fs_setattr(m.fs, d, &(struct pfs_fs_attr){ .mode = 02755 },
					PFS_FS_SET_MODE, &root, NULL), 0);
	ck_assert_int_eq(pfs_fs_mkdir(m.fs, d, "sg", 0777, &cr, &a), 0);
	ck_assert_uint_eq(a.mode, S_IFDIR | 02775);
	expect_xattr(a.ino, DEF, dacl, dlen);
}
END_TEST

START_TEST(inherit_minimal)
{
	struct pfs_fs_cred cr = { .uid = 1000, .gid = 1000, .umask = 0 };
	uint8_t dacl[64];
	struct pfs_fs_attr a;
	uint64_t d = mkdir_root("d", 0777);
	size_t dlen = ACL(dacl, { UO, 7, NOID }, { GO, 5, NOID }, { O, 0, NOID });

	ck_assert_int_eq(pfs_fs_setxattr(m.fs, d, DEF, dacl, dlen, 0), 0);
	expect_xattr(d, DEF, dacl, dlen);
	/* equivalent to a mode: the file gets the mode, no access ACL */
	ck_assert_int_eq(pfs_fs_mknod(m.fs, d, "f", S_IFREG | 0666, 0, &cr, &a), 0);
	ck_assert_uint_eq(a.mode, S_IFREG | 0640);
	expect_none(a.ino, ACC);
	ck_assert_int_eq(pfs_fs_mkdir(m.fs, d, "s", 0777, &cr, &a), 0);
	ck_assert_uint_eq(a.mode, S_IFDIR | 0750);
	expect_none(a.ino, ACC);
	expect_xattr(a.ino, DEF, dacl, dlen);

	/* a bare header removes the default: the umask is back */
	cr.umask = 022;
	ck_assert_int_eq(pfs_fs_setxattr(m.fs, d, DEF, dacl, 4, 0), 0);
	expect_none(d, DEF);
	ck_assert_int_eq(pfs_fs_mknod(m.fs, d, "g", S_IFREG | 0666, 0, &cr, &a), 0);
	ck_assert_uint_eq(a.mode, S_IFREG | 0644);
}
END_TEST

START_TEST(umask_without_default)
{
	struct pfs_fs_cred cr = { .uid = 1000, .gid = 1000, .umask = 022 };
	struct pfs_fs_attr a;

	ck_assert_int_eq(pfs_fs_mkdir(m.fs, POSFS_ROOT_OID, "d", 0777, &cr, &a), 0);
	ck_assert_uint_eq(a.mode, S_IFDIR | 0755);
	expect_none(a.ino, ACC);
	expect_none(a.ino, DEF);
	cr.umask = 027;
	ck_assert_int_eq(pfs_fs_mknod(m.fs, a.ino, "f", S_IFREG | 0666, 0, &cr, &a), 0);
	ck_assert_uint_eq(a.mode, S_IFREG | 0640);
	/* the umask leaves set-ID and sticky bits alone */
	cr.umask = 0777;
	ck_assert_int_eq(pfs_fs_mkdir(m.fs, POSFS_ROOT_OID, "t", 01777, &cr, &a), 0);
	ck_assert_uint_eq(a.mode, S_IFDIR | 01000);
	ck_assert_int_eq(pfs_fs_symlink(m.fs, POSFS_ROOT_OID, "l", "x", &cr, &a), 0);
	ck_assert_uint_eq(a.mode, S_IFLNK | 0777);
	/* no cred, or umask 0: the mode as asked */
	ck_assert_int_eq(pfs_fs_mknod(m.fs, POSFS_ROOT_OID, "n", S_IFREG | 0666, 0, NULL, &a), 0);
	ck_assert_uint_eq(a.mode, S_IFREG | 0666);
}
END_TEST

START_TEST(chmod_updates_acl)
{
	struct pfs_fs_attr a, out;
	uint8_t acl[64], want[64];
	size_t len, wlen;

	ck_assert_int_eq(pfs_fs_mknod(m.fs, POSFS_ROOT_OID, "f", S_IFREG | 0644, 0, &root, &a), 0);
	len = ACL(acl, { UO, 6, NOID }, { U, 6, 1001 }, { GO, 4, NOID }, { G, 2, 50 },
		  { M, 6, NOID }, { O, 4, NOID });
	ck_assert_int_eq(pfs_fs_setxattr(m.fs, a.ino, ACC, acl, len, 0), 0);
	ck_assert_uint_eq(mode_of(a.ino), S_IFREG | 0664);
	/* chmod 0751: USER_OBJ rwx, MASK r-x, OTHER --x; the rest stays */
	ck_assert_int_eq(pfs_fs_setattr(m.fs, a.ino, &(struct pfs_fs_attr){ .mode = 0751 },
					PFS_FS_SET_MODE, &root, &out), 0);
	ck_assert_uint_eq(out.mode, S_IFREG | 0751);
	wlen = ACL(want, { UO, 7, NOID }, { U, 6, 1001 }, { GO, 4, NOID }, { G, 2, 50 },
		   { M, 5, NOID }, { O, 1, NOID });
	expect_xattr(a.ino, ACC, want, wlen);
	/* other attribute changes leave the ACL alone */
	ck_assert_int_eq(pfs_fs_setattr(m.fs, a.ino, &(struct pfs_fs_attr){ .uid = 7 },
					PFS_FS_SET_UID, &root, NULL), 0);
	expect_xattr(a.ino, ACC, want, wlen);
	/* a file without an ACL still gets none */
	ck_assert_int_eq(pfs_fs_mknod(m.fs, POSFS_ROOT_OID, "g", S_IFREG | 0644, 0, &root, &a), 0);
	ck_assert_int_eq(pfs_fs_setattr(m.fs, a.ino, &(struct pfs_fs_attr){ .mode = 0600 },
					PFS_FS_SET_MODE, &root, NULL), 0);
	expect_none(a.ino, ACC);

	/* the default ACL of a directory is not touched by chmod */
	uint64_t d = mkdir_root("d", 0755);

	len = ACL(acl, { UO, 7, NOID }, { GO, 5, NOID }, { O, 5, NOID });
	ck_assert_int_eq(pfs_fs_setxattr(m.fs, d, DEF, acl, len, 0), 0);
	ck_assert_int_eq(pfs_fs_setattr(m.fs, d, &(struct pfs_fs_attr){ .mode = 0700 },
					PFS_FS_SET_MODE, &root, NULL), 0);
	expect_xattr(d, DEF, acl, len);
	expect_none(d, ACC);
}
END_TEST

START_TEST(setxattr_sets_mode)
{
	uint8_t acl[64], buf[512];
	struct pfs_fs_attr a;
	size_t len;
	ssize_t n;

	ck_assert_int_eq(pfs_fs_mknod(m.fs, POSFS_ROOT_OID, "f",
				      S_IFREG | S_ISUID | 0644, 0, &root, &a), 0);
	len = ACL(acl, { UO, 6, NOID }, { U, 4, 1001 }, { GO, 4, NOID }, { M, 6, NOID },
		  { O, 0, NOID });
	ck_assert_int_eq(pfs_fs_setxattr(m.fs, a.ino, ACC, acl, len, XATTR_CREATE), 0);
	ck_assert_uint_eq(mode_of(a.ino), S_IFREG | S_ISUID | 0660);	/* group bits = mask */
	expect_xattr(a.ino, ACC, acl, len);
	n = pfs_fs_listxattr(m.fs, a.ino, (char *)buf, sizeof(buf));
	ck_assert_int_eq(n, (ssize_t)sizeof(ACC));
	ck_assert_str_eq((char *)buf, ACC);

	/* minimal (equivalent to a mode): the mode, and the stored one goes */
	len = ACL(acl, { UO, 7, NOID }, { GO, 5, NOID }, { O, 1, NOID });
	ck_assert_int_eq(pfs_fs_setxattr(m.fs, a.ino, ACC, acl, len, XATTR_CREATE), 0);
	ck_assert_uint_eq(mode_of(a.ino), S_IFREG | S_ISUID | 0751);
	expect_none(a.ino, ACC);
	/* XATTR_REPLACE is ignored for ACLs too (Linux ignores both) */
	ck_assert_int_eq(pfs_fs_setxattr(m.fs, a.ino, ACC, acl, len, XATTR_REPLACE), 0);
	expect_none(a.ino, ACC);

	/* removing the access ACL leaves the mode; removing none: ENODATA */
	len = ACL(acl, { UO, 7, NOID }, { GO, 7, NOID }, { G, 7, 9 }, { M, 1, NOID },
		  { O, 0, NOID });
	ck_assert_int_eq(pfs_fs_setxattr(m.fs, a.ino, ACC, acl, len, 0), 0);
	ck_assert_uint_eq(mode_of(a.ino), S_IFREG | S_ISUID | 0710);
	ck_assert_int_eq(pfs_fs_removexattr(m.fs, a.ino, ACC), 0);
	ck_assert_uint_eq(mode_of(a.ino), S_IFREG | S_ISUID | 0710);
	expect_none(a.ino, ACC);
	ck_assert_int_eq(pfs_fs_removexattr(m.fs, a.ino, ACC), -ENODATA);
	/* a bare header removes it as well */
	ck_assert_int_eq(pfs_fs_setxattr(m.fs, a.ino, ACC, acl, len, 0), 0);
	ck_assert_int_eq(pfs_fs_setxattr(m.fs, a.ino, ACC, acl, 4, 0), 0);
	expect_none(a.ino, ACC);
	ck_assert_int_eq(pfs_fs_setxattr(m.fs, a.ino, ACC, acl, 4, 0), 0);

	/* other xattrs are not ACLs */
	ck_assert_int_eq(pfs_fs_setxattr(m.fs, a.ino, "system.posix_acl_accessx", "x", 1, 0), 0);
	ck_assert_int_eq(pfs_fs_setxattr(m.fs, a.ino, "user.a", "x", 1, 0), 0);
}
END_TEST

/* posix_acl_update_mode: an owner outside the file's group (gid and
 * groups) and not uid 0 loses S_ISGID when it sets the access ACL */
START_TEST(acl_clears_sgid)
{
	static const uint32_t in[] = { 7, 50 }, out[] = { 7, 8 };
	struct pfs_fs_cred outside = { .uid = 1000, .gid = 1000, .ngroups = 2, .groups = out };
	struct pfs_fs_cred member = { .uid = 1000, .gid = 1000, .ngroups = 2, .groups = in };
	struct pfs_fs_cred primary = { .uid = 1000, .gid = 50 };
	struct pfs_fs_attr a;
	uint8_t named[64], plain[64];
	size_t nlen, plen;

	nlen = ACL(named, { UO, 7, NOID }, { U, 4, 1001 }, { GO, 7, NOID }, { M, 7, NOID },
		   { O, 0, NOID });
	plen = ACL(plain, { UO, 7, NOID }, { GO, 5, NOID }, { O, 0, NOID });
	ck_assert_int_eq(pfs_fs_mknod(m.fs, POSFS_ROOT_OID, "f", S_IFREG | 0644, 0, &root, &a), 0);
	ck_assert_int_eq(pfs_fs_setattr(m.fs, a.ino,
					&(struct pfs_fs_attr){ .mode = 02770, .uid = 1000, .gid = 50 },
					PFS_FS_SET_MODE | PFS_FS_SET_UID | PFS_FS_SET_GID, &root, NULL), 0);
	ck_assert_uint_eq(mode_of(a.ino), S_IFREG | 02770);
	ck_assert_int_eq(pfs_fs_setxattr_cred(m.fs, a.ino, ACC, named, nlen, 0, &member), 0);
	ck_assert_uint_eq(mode_of(a.ino), S_IFREG | 02770);
	ck_assert_int_eq(pfs_fs_setxattr_cred(m.fs, a.ino, ACC, plain, plen, 0, &primary), 0);
	ck_assert_uint_eq(mode_of(a.ino), S_IFREG | 02750);
	ck_assert_int_eq(pfs_fs_setxattr_cred(m.fs, a.ino, ACC, named, nlen, 0, &root), 0);
	ck_assert_uint_eq(mode_of(a.ino), S_IFREG | 02770);
	ck_assert_int_eq(pfs_fs_setxattr(m.fs, a.ino, ACC, plain, plen, 0), 0);
	ck_assert_uint_eq(mode_of(a.ino), S_IFREG | 02750);
	ck_assert_int_eq(pfs_fs_setxattr_cred(m.fs, a.ino, ACC, named, nlen, 0, &outside), 0);
	ck_assert_uint_eq(mode_of(a.ino), S_IFREG | 0770);
	/* the same for an ACL the mode says in full (not stored) */
	ck_assert_int_eq(pfs_fs_setattr(m.fs, a.ino, &(struct pfs_fs_attr){ .mode = 02770 },
					PFS_FS_SET_MODE, &root, NULL), 0);
	ck_assert_int_eq(pfs_fs_setxattr_cred(m.fs, a.ino, ACC, plain, plen, 0, &outside), 0);
	ck_assert_uint_eq(mode_of(a.ino), S_IFREG | 0750);
}
END_TEST

START_TEST(malformed)
{
	uint8_t acl[128];
	struct pfs_fs_attr a;
	uint64_t d = mkdir_root("d", 0755);
	size_t len;

	ck_assert_int_eq(pfs_fs_mknod(m.fs, POSFS_ROOT_OID, "f", S_IFREG | 0644, 0, &root, &a), 0);
#define BAD(want, ...) do { \
		len = ACL(acl, __VA_ARGS__); \
		ck_assert_int_eq(pfs_fs_setxattr(m.fs, a.ino, ACC, acl, len, 0), want); \
		ck_assert_int_eq(pfs_fs_setxattr(m.fs, d, DEF, acl, len, 0), want); \
	} while (0)
	BAD(-EINVAL, { UO, 7, NOID }, { GO, 5, NOID });			/* no OTHER */
	BAD(-EINVAL, { GO, 5, NOID }, { UO, 7, NOID }, { O, 5, NOID });	/* order */
	BAD(-EINVAL, { UO, 7, NOID }, { UO, 7, NOID }, { GO, 5, NOID }, { O, 5, NOID });
	BAD(-EINVAL, { UO, 7, NOID }, { U, 7, 5 }, { GO, 5, NOID }, { O, 5, NOID }); /* no mask */
	BAD(-EINVAL, { UO, 7, NOID }, { GO, 5, NOID }, { G, 7, 5 }, { O, 5, NOID });
	BAD(-EINVAL, { UO, 8, NOID }, { GO, 5, NOID }, { O, 5, NOID });	/* perm */
	BAD(-EINVAL, { UO, 7, NOID }, { GO, 5, NOID }, { 0x40, 5, 0 }, { O, 5, NOID });
	BAD(-EINVAL, { UO, 7, NOID }, { U, 7, NOID }, { GO, 5, NOID }, { M, 7, NOID },
	    { O, 5, NOID });						/* id -1 */
	BAD(-EINVAL, { UO, 7, NOID }, { GO, 5, NOID }, { M, 7, NOID });	/* mask, no OTHER */
	BAD(-EINVAL, { UO, 7, NOID }, { GO, 5, NOID }, { O, 5, NOID }, { M, 7, NOID });
	BAD(-EINVAL, { UO, 7, NOID }, { GO, 5, NOID }, { O, 5, NOID }, { O, 5, NOID });
	BAD(-EINVAL, { UO, 7, NOID }, { G, 7, 3 }, { GO, 5, NOID }, { M, 7, NOID },
	    { O, 5, NOID });						/* GROUP first */
	len = ACL(acl, { UO, 7, NOID }, { GO, 5, NOID }, { O, 5, NOID });
	for (size_t l = 0; l < len; l++) {
		if (l == 4)
			continue;	/* a bare header: "no ACL" */
		ck_assert_int_eq(pfs_fs_setxattr(m.fs, a.ino, ACC, acl, l, 0), -EINVAL);
	}
	acl[0] = 1;		/* version 1 */
	ck_assert_int_eq(pfs_fs_setxattr(m.fs, a.ino, ACC, acl, len, 0), -EOPNOTSUPP);
	ck_assert_int_eq(pfs_fs_setxattr(m.fs, a.ino, ACC, acl, len, 0x4), -EINVAL);
	/* nothing changed */
	ck_assert_uint_eq(mode_of(a.ino), S_IFREG | 0644);
	expect_none(a.ino, ACC);
	expect_none(d, DEF);
#undef BAD
}
END_TEST

START_TEST(where_allowed)
{
	uint8_t acl[64];
	struct pfs_fs_attr a, l;
	size_t len = ACL(acl, { UO, 7, NOID }, { U, 5, 1001 }, { GO, 5, NOID }, { M, 5, NOID },
			 { O, 5, NOID });

	ck_assert_int_eq(pfs_fs_mknod(m.fs, POSFS_ROOT_OID, "f", S_IFREG | 0644, 0, &root, &a), 0);
	/* a default ACL only on directories, as ext4 (set_posix_acl) */
	ck_assert_int_eq(pfs_fs_setxattr(m.fs, a.ino, DEF, acl, len, 0), -EACCES);
	ck_assert_int_eq(pfs_fs_setxattr(m.fs, a.ino, DEF, acl, 4, 0), 0);	/* "none": fine */
	ck_assert_int_eq(pfs_fs_removexattr(m.fs, a.ino, DEF), -ENODATA);
	expect_none(a.ino, DEF);
	ck_assert_int_eq(pfs_fs_mknod(m.fs, POSFS_ROOT_OID, "p", S_IFIFO | 0644, 0, &root, &a), 0);
	ck_assert_int_eq(pfs_fs_setxattr(m.fs, a.ino, DEF, acl, len, 0), -EACCES);
	/* no ACLs on symlinks */
	ck_assert_int_eq(pfs_fs_symlink(m.fs, POSFS_ROOT_OID, "l", "f", &root, &l), 0);
	ck_assert_int_eq(pfs_fs_setxattr(m.fs, l.ino, ACC, acl, len, 0), -EOPNOTSUPP);
	ck_assert_int_eq(pfs_fs_setxattr(m.fs, l.ino, DEF, acl, len, 0), -EOPNOTSUPP);
	/* missing inodes */
	ck_assert_int_eq(pfs_fs_setxattr(m.fs, POSFS_OID(0, 999999), ACC, acl, len, 0), -ENOENT);
	/* the root directory takes both */
	ck_assert_int_eq(pfs_fs_setxattr(m.fs, POSFS_ROOT_OID, DEF, acl, len, 0), 0);
	ck_assert_int_eq(pfs_fs_setxattr(m.fs, POSFS_ROOT_OID, ACC, acl, len, 0), 0);
	ck_assert_uint_eq(mode_of(POSFS_ROOT_OID) & 07777, 0755);
	expect_xattr(POSFS_ROOT_OID, DEF, acl, len);
}
END_TEST

/* A large ACL (out of the onode's inline area) works the same way. */
START_TEST(large_acl)
{
	static uint8_t acl[4 + 8 * 1000], got[sizeof(acl)];
	struct pfs_fs_cred cr = { .uid = 5, .gid = 5, .umask = 077 };
	struct pfs_fs_attr a;
	uint64_t d = mkdir_root("d", 0755);
	size_t n = 0;
	ssize_t r;

	put32(acl, 2);
#define E(t, p, i) do { put16(acl + 4 + 8 * n, t); put16(acl + 6 + 8 * n, p); \
		put32(acl + 8 + 8 * n, i); n++; } while (0)
	E(UO, 7, NOID);
	for (uint32_t i = 0; i < 996; i++)
		E(U, 6, 2000 + i);
	E(GO, 5, NOID);
	E(M, 7, NOID);
	E(O, 0, NOID);
#undef E
	ck_assert_int_eq(pfs_fs_setxattr(m.fs, d, DEF, acl, sizeof(acl), 0), 0);
	ck_assert_int_eq(pfs_fs_mkdir(m.fs, d, "s", 0777, &cr, &a), 0);
	ck_assert_uint_eq(a.mode, S_IFDIR | 0770);
	r = pfs_fs_getxattr(m.fs, a.ino, DEF, got, sizeof(got));
	ck_assert_int_eq(r, (ssize_t)sizeof(acl));
	ck_assert_mem_eq(got, acl, sizeof(acl));
	r = pfs_fs_getxattr(m.fs, a.ino, ACC, got, sizeof(got));
	ck_assert_int_eq(r, (ssize_t)sizeof(acl));
	ck_assert_int_eq(pfs_fs_setattr(m.fs, a.ino, &(struct pfs_fs_attr){ .mode = 0700 },
					PFS_FS_SET_MODE, &root, NULL), 0);
	r = pfs_fs_getxattr(m.fs, a.ino, ACC, got, sizeof(got));
	ck_assert_int_eq(r, (ssize_t)sizeof(acl));
	ck_assert_uint_eq(got[4 + 8 * 998 + 2], 0);	/* the mask */
	ck_assert_uint_eq(got[4 + 8 * 500 + 2], 6);	/* a named user */
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fs_acl");
	TCase *tc = tcase_create("acl");
	SRunner *sr;
	int failed;

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, inherit_file);
	tcase_add_test(tc, inherit_tmpfile);
	tcase_add_test(tc, inherit_dir);
	tcase_add_test(tc, inherit_minimal);
	tcase_add_test(tc, umask_without_default);
	tcase_add_test(tc, chmod_updates_acl);
	tcase_add_test(tc, setxattr_sets_mode);
	tcase_add_test(tc, acl_clears_sgid);
	tcase_add_test(tc, malformed);
	tcase_add_test(tc, where_allowed);
	tcase_add_test(tc, large_acl);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
