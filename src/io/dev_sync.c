/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dev_sync.c: the sync backend, pread/pwrite/fdatasync on the device fd.
 *
 * These loops are also the synchronous path of the uring backend: plain
 * positional I/O on one fd is thread-safe, so pfs_dev_pread/pwrite/flush
 * need no lock and no ring. Each loop transfers the whole range: a short
 * transfer is continued from where it stopped, EINTR and EAGAIN are
 * retried, a read that ends at the end of a regular file (truncated
 * since open) fills the rest with zeros, and a transfer of zero bytes
 * anywhere else is -EIO. Writes the kernel can make atomic go out with
 * RWF_ATOMIC (pwritev2), see pfs_dev_write_flags().
 *
 * Discard: BLKDISCARD on a block device, a punched hole (the size kept)
 * in a regular file. The errors that mean "this device or file system
 * cannot" (EOPNOTSUPP, ENOTTY, and EINVAL from a block device without
 * discard) all become -EOPNOTSUPP.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* O_DIRECT, pwritev2, syscall */
#endif
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include "io/dev_internal.h"

/* Largest single transfer: Linux moves at most 0x7ffff000 bytes a call. */
#define PFS_FD_CHUNK	(1u << 30)

int pfs_fd_pread(struct pfs_dev *dev, void *buf, size_t len, uint64_t off)
{
	char *p = buf;
	size_t done = 0;

	while (done < len) {
		size_t want = len - done;
		ssize_t r;

		if (want > PFS_FD_CHUNK)
			want = PFS_FD_CHUNK;
		r = pread(dev->fd, p + done, want, (off_t)(off + done));
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		if ((size_t)r < want && pfs_dev_past_eof(dev, off + done + r)) {
			memset(p + done + r, 0, len - done - r);
			return 0;
		}
		if (r == 0)
			return -EIO;
		done += r;
	}
	return 0;
}

int pfs_fd_pwrite(struct pfs_dev *dev, const void *buf, size_t len,
		  uint64_t off)
{
	const char *p = buf;
	size_t done = 0;
	int flags = pfs_dev_write_flags(dev, len, off);

	while (done < len) {
		size_t want = len - done;
		ssize_t r;

		if (want > PFS_FD_CHUNK)
			want = PFS_FD_CHUNK;
		if (flags) {
			struct iovec iov = { (void *)p, len };

			r = pwritev2(dev->fd, &iov, 1, (off_t)off, flags);
		} else {
			r = pwrite(dev->fd, p + done, want, (off_t)(off + done));
		}
		if (r < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		if (r == 0)
			return -EIO;
		done += r;
		flags = 0;	/* a remainder is no longer the atomic unit */
	}
	return 0;
}

int pfs_fd_flush(struct pfs_dev *dev)
{
	while (fdatasync(dev->fd) != 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

int pfs_fd_discard(struct pfs_dev *dev, uint64_t off, uint64_t len)
{
	int r;

	do {
		if (dev->info.is_blockdev) {
			uint64_t range[2] = { off, len };

			r = ioctl(dev->fd, BLKDISCARD, range);
		} else {
			r = fallocate(dev->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
				      (off_t)off, (off_t)len);
		}
	} while (r != 0 && errno == EINTR);
	if (r == 0)
		return 0;
	if (errno == EOPNOTSUPP || errno == ENOTTY ||
	    (errno == EINVAL && dev->info.is_blockdev))
		return -EOPNOTSUPP;
	return -errno;
}

const struct pfs_dev_ops pfs_dev_sync_ops = {
	.name = "sync",
	.pread = pfs_fd_pread,
	.pwrite = pfs_fd_pwrite,
	.flush = pfs_fd_flush,
	.discard = pfs_fd_discard,
};
