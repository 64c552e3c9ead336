/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A second mount of a mounted device, as the kernel does it for ext4:
 * `mount /dev/x /a; mount /dev/x /b` makes /b a bind mount of /a, served
 * by the one daemon, instead of a second daemon that the device's claim
 * refuses. Before it forks, the daemon (run as posfs, or by mount.posfs)
 * looks in /proc/self/mountinfo for a fuse.posfs mount whose source is
 * the same device (the same block device, or the same image file, by
 * stat: any path to it) and, run by root, binds it (mount(2) MS_BIND)
 * on the new directory and exits 0: no daemon, nothing claimed. A user
 * cannot bind, and gets the claim's message, as before.
 *
 * What must match the first mount, as the kernel's get_tree_bdev has it:
 * the read-only state of the file system. A rw mount of a file system
 * mounted ro, or a ro one of a rw one, is refused (the kernel says "Can't
 * mount, would change RO state" and fails with EBUSY): remount the first
 * one, or ask for what it is. The flags of the mount itself (nosuid,
 * nodev, noexec, sync, dirsync) are the new mount's, as given; the atime
 * ones are the first mount's (the daemon keeps atime, for the whole file
 * system); the daemon's own options (cache sizes, writeback, compression,
 * allow_other...) are the first mount's, and the ones given are not used,
 * as the kernel ignores the options of a second mount of a block device.
 *
 * The bind gets its utab line (utab.c), so that umount(8) runs
 * umount.posfs for it: unmounting either mount leaves the other served
 * (the FUSE connection lives while any mount of it does), and the daemon
 * ends when the last one goes, its reads of /dev/fuse failing then.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <syslog.h>
#include <unistd.h>

#include <libmount/libmount.h>

#include "posfs.h"

/* Do a and b name the same device or image file? */
static bool same_file(const struct stat *a, const struct stat *b)
{
	if (S_ISBLK(a->st_mode) && S_ISBLK(b->st_mode))
		return a->st_rdev == b->st_rdev;
	return !S_ISBLK(a->st_mode) && !S_ISBLK(b->st_mode) &&
	       a->st_dev == b->st_dev && a->st_ino == b->st_ino;
}

/* The mount's own flags that the options in kopts (main.c's, passed to
 * FUSE's mount) ask for. */
static unsigned long kopts_flags(const char *kopts)
{
	static const struct {
		const char *name;
		unsigned long flag;
		bool set;
	} map[] = {
		{ "nosuid", MS_NOSUID, true }, { "suid", MS_NOSUID, false },
		{ "nodev", MS_NODEV, true }, { "dev", MS_NODEV, false },
		{ "noexec", MS_NOEXEC, true }, { "exec", MS_NOEXEC, false },
		{ "sync", MS_SYNCHRONOUS, true }, { "async", MS_SYNCHRONOUS, false },
		{ "dirsync", MS_DIRSYNC, true },
	};
	/* libfuse's defaults, which main.c overrides for root */
	unsigned long flags = MS_NOSUID | MS_NODEV;
	char *copy = kopts ? strdup(kopts) : NULL, *save = NULL, *tok;

	for (tok = copy ? strtok_r(copy, ",", &save) : NULL; tok; tok = strtok_r(NULL, ",", &save))
		for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
			if (!strcmp(tok, map[i].name))
				flags = map[i].set ? flags | map[i].flag : flags & ~map[i].flag;
	free(copy);
	return flags;
}

/* The atime flags of the mount at dir, to keep on its bind (a remount of
 * a bind sets them all anew). */
static unsigned long atime_flags(const char *dir)
{
	struct statvfs sv;
	unsigned long flags = 0;

	if (statvfs(dir, &sv))
		return MS_RELATIME;
	if (sv.f_flag & ST_NOATIME)
		flags |= MS_NOATIME;
	if (sv.f_flag & ST_NODIRATIME)
		flags |= MS_NODIRATIME;
	if (sv.f_flag & ST_RELATIME)
		flags |= MS_RELATIME;
	if (!(flags & (MS_NOATIME | MS_RELATIME)))
		flags |= MS_STRICTATIME;
	return flags;
}

int pfs_bind_existing(const char *prog, const char *device, const char *mountpoint, bool ro,
		      const char *kopts)
{
	struct libmnt_table *tb = NULL;
	struct libmnt_iter *it = NULL;
	struct libmnt_fs *fs;
	struct stat dst, sst, mst;
	const char *target = NULL;
	bool first_ro = false;
	unsigned long flags;
	int ret = 1;

	if (geteuid() != 0 || getuid() != 0 || stat(device, &dst))
		return 1;	/* a user: the claim says who holds it */
	tb = mnt_new_table_from_file("/proc/self/mountinfo");
	it = mnt_new_iter(MNT_ITER_FORWARD);
	if (!tb || !it)
		goto out;
	while (mnt_table_next_fs(tb, it, &fs) == 0) {
		const char *type = mnt_fs_get_fstype(fs), *src = mnt_fs_get_source(fs);
		const char *tgt = mnt_fs_get_target(fs);

		if (!type || strcmp(type, "fuse.posfs") || !src || !tgt || stat(src, &sst) ||
		    !same_file(&dst, &sst))
			continue;
		/* the mount is reachable there (nothing mounted over it) and
		 * its daemon answers */
		if (stat(tgt, &mst) || mst.st_dev != mnt_fs_get_devno(fs))
			continue;
		target = tgt;
		first_ro = mnt_optstr_get_option(mnt_fs_get_fs_options(fs), "ro", NULL, NULL) == 0;
		break;
	}
	if (!target)
		goto out;
	if (ro != first_ro) {
		fprintf(stderr, "%s: %s is mounted %s on %s: cannot mount it %s as well "
			"(%s, or remount %s %s first)\n", prog, device,
			first_ro ? "read-only" : "read-write", target,
			ro ? "read-only" : "read-write",
			first_ro ? "mount it with -o ro" : "leave out -o ro", target,
			ro ? "read-only" : "read-write");
		ret = -1;
		goto out;
	}
	if (!strcmp(target, mountpoint)) {
		fprintf(stderr, "%s: %s is already mounted on %s\n", prog, device, target);
		ret = -1;
		goto out;
	}
	if (mount(target, mountpoint, NULL, MS_BIND, NULL)) {
		fprintf(stderr, "%s: %s is mounted on %s; cannot bind it on %s: %s\n", prog,
			device, target, mountpoint, strerror(errno));
		ret = -1;
		goto out;
	}
	flags = MS_REMOUNT | MS_BIND | (ro ? MS_RDONLY : 0) | kopts_flags(kopts) |
		atime_flags(target);
	if (mount(NULL, mountpoint, NULL, flags, NULL)) {
		fprintf(stderr, "%s: cannot set the flags of the bind of %s on %s: %s\n", prog,
			target, mountpoint, strerror(errno));
		(void)umount2(mountpoint, MNT_DETACH);
		ret = -1;
		goto out;
	}
	pfs_utab_add(device, mountpoint);
	ret = 0;
out:
	mnt_free_iter(it);
	mnt_unref_table(tb);
	return ret;
}

dev_t pfs_mount_devno(const char *mountpoint)
{
	struct libmnt_table *tb = mnt_new_table_from_file("/proc/self/mountinfo");
	struct libmnt_iter *it = mnt_new_iter(MNT_ITER_FORWARD);
	struct libmnt_fs *fs;
	dev_t devno = 0;

	/* the last one found: the top mount there */
	while (tb && it && mnt_table_next_fs(tb, it, &fs) == 0) {
		const char *type = mnt_fs_get_fstype(fs), *tgt = mnt_fs_get_target(fs);

		if (type && !strcmp(type, "fuse.posfs") && tgt && !strcmp(tgt, mountpoint))
			devno = mnt_fs_get_devno(fs);
	}
	mnt_free_iter(it);
	mnt_unref_table(tb);
	return devno;
}

void pfs_unmount_binds(dev_t devno, const char *device, const char *mountpoint)
{
	struct libmnt_table *tb;
	struct libmnt_iter *it;
	struct libmnt_fs *fs;

	if (!devno || geteuid() != 0)
		return;
	tb = mnt_new_table_from_file("/proc/self/mountinfo");
	it = mnt_new_iter(MNT_ITER_BACKWARD);	/* the ones on top first */
	while (tb && it && mnt_table_next_fs(tb, it, &fs) == 0) {
		const char *tgt = mnt_fs_get_target(fs);

		if (mnt_fs_get_devno(fs) != devno || !tgt || !strcmp(tgt, mountpoint))
			continue;
		if (umount2(tgt, MNT_DETACH))
			pfs_log(LOG_WARNING, "cannot unmount %s, a mount of this file system: %s",
				tgt, strerror(errno));
		else
			pfs_utab_remove(device, tgt);
	}
	mnt_free_iter(it);
	mnt_unref_table(tb);
}
