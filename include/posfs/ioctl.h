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
 *   FITRIM (fstrim), on any file or directory, uid 0 only (EPERM; the
 *   daemon's stand-in for CAP_SYS_ADMIN): struct fstrim_range of
 *   <linux/fs.h>, in and out (24 bytes, one layout). The free space of
 *   [start, start + len) in free extents of at least minlen bytes goes to
 *   the device as discards (pfs_store_trim); len comes back as the bytes
 *   discarded, as ext4 answers. EINVAL for len below a block or start
 *   past the file system, EROFS read-only, EOPNOTSUPP where the device
 *   cannot discard.
 *
 *   POSFS_IOC_SCRUB, on regular files only: below.
 *
 *   POSFS_IOC_TRANSPORT, on any file or directory: below.
 *   POSFS_IOC_REMOUNT, on the root directory only: below.
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

/* FITRIM's argument, <linux/fs.h>: three u64, no padding */
_Static_assert(sizeof(struct fstrim_range) == 0x18, "fstrim_range size");

_Static_assert(sizeof(struct posfs_scrub_range) == 0x28, "posfs_scrub_range size");
_Static_assert(offsetof(struct posfs_scrub_range, bad_offset) == 0x20,
	       "posfs_scrub_range layout");

#define POSFS_IOC_SCRUB		_IOWR('p', 1, struct posfs_scrub_range)
#define POSFS_SCRUB_MAX		(16u << 20)	/* bytes checked per call, at most */

/*
 * POSFS_IOC_TRANSPORT: how the kernel's requests reach the daemon. Over
 * /dev/fuse (read and write, one request each), or over FUSE's io_uring
 * (one queue per CPU, each with `depth` entries: the reply and the wait
 * for the next request in one submission). The counts are of requests
 * served since the mount, by FUSE opcode (the kernel's numbers; slot 0
 * counts any opcode past the table). Over the ring, /dev/fuse still
 * carries INIT, FORGET, BATCH_FORGET and INTERRUPT, and every request
 * made before the ring was ready. Anyone may ask.
 */
#define POSFS_TRANSPORT_DEV	1	/* /dev/fuse only */
#define POSFS_TRANSPORT_URING	2	/* FUSE over io_uring */
#define POSFS_TRANSPORT_OPS	64	/* opcodes counted one by one */

struct posfs_transport {
	uint32_t transport;	/* 0x000 POSFS_TRANSPORT_* */
	uint32_t queues;	/* 0x004 ring queues (0 over /dev/fuse) */
	uint32_t depth;		/* 0x008 entries per queue */
	uint32_t poll_us;	/* 0x00c busy-polling before each sleep, us */
	uint64_t dev_ops[POSFS_TRANSPORT_OPS];	/* 0x010 read from /dev/fuse */
	uint64_t uring_ops[POSFS_TRANSPORT_OPS];	/* 0x210 served over the ring */
};

_Static_assert(sizeof(struct posfs_transport) == 0x410, "posfs_transport size");
_Static_assert(offsetof(struct posfs_transport, uring_ops) == 0x210,
	       "posfs_transport layout");

#define POSFS_IOC_TRANSPORT	_IOR('p', 3, struct posfs_transport)

/*
 * POSFS_IOC_REMOUNT: make the mount read-only or writable again, the
 * daemon's half of `mount -o remount,ro` / `remount,rw` (the kernel's
 * FUSE sends nothing on a remount; mount.posfs asks this, and changes
 * the kernel's flags with mount(2) MS_REMOUNT). Only uid 0, on the root
 * directory of the mount. In: flags, atime.
 *   POSFS_REMOUNT_RDONLY set: every change under way ends, everything is
 *     written home (a checkpoint) and the file system is marked clean on
 *     the device; from then every change fails with EROFS and the daemon
 *     writes nothing (no atime either). Already read-only: nothing to do.
 *   clear: writable again (the clean mark goes first).
 *   POSFS_REMOUNT_ATIME: the atime policy becomes atime's, one of
 *     POSFS_REMOUNT_NOATIME, POSFS_REMOUNT_STRICTATIME and
 *     POSFS_REMOUNT_RELATIME; relatime is what the kernel shows of a
 *     strictatime mount too (FUSE is not told of strictatime), so it
 *     turns noatime into relatime and leaves strictatime. Without the
 *     flag, atime must be 0 and the policy stays.
 *   POSFS_REMOUNT_NODIRATIME, POSFS_REMOUNT_DIRATIME: directories' atime
 *     left alone, or not (not both); neither: as it was.
 * The ioctl fails (-1 and errno) with EPERM (not uid 0), EINVAL (not the
 * root directory, unknown flags or atime), EROFS (writable asked
 * of a mount whose device was opened read-only: unmount and mount it
 * without -o ro), EIO (the checkpoint or the superblock write failed, or
 * an earlier device error: asked read-only, the mount is read-only all
 * the same).
 */
struct posfs_remount {
	uint32_t flags;		/* 0x00 in: POSFS_REMOUNT_* flags */
	uint32_t atime;		/* 0x04 in: with POSFS_REMOUNT_ATIME */
};

_Static_assert(sizeof(struct posfs_remount) == 0x8, "posfs_remount size");

#define POSFS_REMOUNT_RDONLY		0x1u
#define POSFS_REMOUNT_ATIME		0x2u
#define POSFS_REMOUNT_NODIRATIME	0x4u
#define POSFS_REMOUNT_DIRATIME		0x8u

/* posfs_remount.atime */
#define POSFS_REMOUNT_RELATIME		0u
#define POSFS_REMOUNT_NOATIME		1u
#define POSFS_REMOUNT_STRICTATIME	2u

#define POSFS_IOC_REMOUNT	_IOW('p', 2, struct posfs_remount)

#endif /* POSFS_IOCTL_H */
