/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The ioctls of a mounted posfs: the contract between the daemon (fuse/,
 * which answers them) and the tools that ask (posfs-scrub). An ioctl on a
 * FUSE file reaches the daemon through the kernel's restricted path: the
 * kernel copies in and out exactly _IOC_SIZE(cmd) bytes at the argument,
 * so every argument here is a fixed-size struct without pointers, laid out
 * the same for 32- and 64-bit callers (no implicit padding, checked below).
 *
 * The daemon answers, on regular files and directories:
 *
 *   FS_IOC_GETFLAGS, FS_IOC_SETFLAGS (lsattr, chattr; 32-bit callers'
 *   FS_IOC32_* too): an int argument (FUSE passes 4 bytes whatever the
 *   macro's type says). The flags are POSFS_FL_USER; setting another is
 *   EOPNOTSUPP, as ext4 answers for flags it does not know, and setting
 *   FS_COMPR_FL with FS_NOCOMP_FL is EINVAL, as btrfs answers. Only the
 *   owner or uid 0 may set them (EPERM); FS_IMMUTABLE_FL and FS_APPEND_FL
 *   only uid 0 (the daemon's stand-in for CAP_LINUX_IMMUTABLE, which the
 *   kernel checks too), and of an immutable inode no other flag changes
 *   while FS_IMMUTABLE_FL stays (EPERM, as ext4).
 *
 *   FS_IOC_FSGETXATTR, FS_IOC_FSSETXATTR (xfs_io chattr, and the kernel
 *   itself before every FS_IOC_SETFLAGS): the flags above that have an
 *   FS_XFLAG_* (FS_XFLAG_IMMUTABLE, FS_XFLAG_APPEND, FS_XFLAG_NODUMP,
 *   FS_XFLAG_NOATIME); other xflags and a project id are EOPNOTSUPP.
 *
 *   POSFS_IOC_SCRUB, on regular files only: below.
 *
 * Any other ioctl is ENOTTY.
 */
#ifndef POSFS_IOCTL_H
#define POSFS_IOCTL_H

#include <linux/fs.h>
#include <linux/ioctl.h>
#include <stddef.h>
#include <stdint.h>

/* chattr flags a posfs keeps; FS_IMMUTABLE_FL and FS_APPEND_FL are
 * enforced by the namespace layer (posfs/fs.h), FS_NOATIME_FL is honoured
 * by the daemon, the compression flags by the store, FS_NODUMP_FL is kept
 * for dump. */
#define POSFS_FL_USER	(FS_COMPR_FL | FS_NOCOMP_FL | FS_NODUMP_FL | FS_NOATIME_FL | \
			 FS_IMMUTABLE_FL | FS_APPEND_FL)

/*
 * POSFS_IOC_SCRUB: check a range of a file's data as the device holds it.
 * Every data block in the range is read from the device (a copy cached
 * clean is read again) and checked against its checksum; a block changed
 * since the last checkpoint, not written home yet, is passed over (the
 * next scrub after the checkpoint checks it). Holes and inline data pass
 * as checked. Only reads: anyone who could open the file may ask.
 *
 * In: offset, length. The daemon checks at most POSFS_SCRUB_MAX bytes per
 * call. Out:
 *   error 0: [offset, offset + checked) was checked and is good. checked
 *     is short at the end of the file (0 at or past it) or at the
 *     daemon's limit: go on from offset + checked until checked is 0.
 *   error EIO: [offset, offset + checked) is good, and the block at
 *     bad_offset, bad_length bytes, does not match its checksum or cannot
 *     be read from the device (the daemon logs it, as it does for a read
 *     that meets it). bad_offset is the block's start: a multiple of
 *     bad_length (the block size), before offset when offset is inside
 *     the block. Go on from bad_offset + bad_length to find the next.
 * The ioctl itself fails (-1 and errno) when nothing could be said about
 * the range: EISDIR, EINVAL (a short argument), EUCLEAN or EBADMSG (the
 * file's metadata is damaged: run fsck.posfs), ENOMEM, and those of a
 * read.
 */
struct posfs_scrub_range {
	uint64_t offset;	/* 0x00 in: the first byte to check */
	uint64_t length;	/* 0x08 in: bytes to check */
	uint64_t checked;	/* 0x10 out: bytes from offset found good */
	int32_t error;		/* 0x18 out: 0 or EIO (a positive errno) */
	uint32_t bad_length;	/* 0x1c out: bytes of the bad block */
	uint64_t bad_offset;	/* 0x20 out: where the bad block starts */
};

_Static_assert(sizeof(struct posfs_scrub_range) == 0x28, "posfs_scrub_range size");
_Static_assert(offsetof(struct posfs_scrub_range, bad_offset) == 0x20,
	       "posfs_scrub_range layout");

#define POSFS_IOC_SCRUB		_IOWR('p', 1, struct posfs_scrub_range)
#define POSFS_SCRUB_MAX		(16u << 20)	/* bytes checked per call, at most */

#endif /* POSFS_IOCTL_H */
