/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * src/io private: the backend ops table, the layout of struct pfs_dev and
 * struct pfs_ioq, and the helpers the backends share. Nothing outside
 * src/io includes this file.
 *
 * Division of work:
 *   dev.c       open (dispatch), close, the checked public I/O entry points
 *   dev_sync.c  fd-based pread/pwrite/fdatasync loops (sync and uring
 *               backends both use them for the synchronous calls)
 *   dev_uring.c io_uring probe and the ring behind each pfs_ioq
 *   dev_mem.c   the in-memory device
 *   identify.c  size, sector sizes, DIO alignment, atomic write unit, NVMe
 *   claim.c     the exclusive claim, who holds a device, the mount table
 *   ioq.c       request validation, barrier segments, sequential fallback
 *   record.c    the recording device
 */
#ifndef POSFS_IO_DEV_INTERNAL_H
#define POSFS_IO_DEV_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "posfs/io.h"

/* Defaults and limits. */
#define PFS_DEV_DEFAULT_DEPTH	64u
#define PFS_DEV_MAX_DEPTH	4096u
#define PFS_DEV_BUF_ALIGN	4096u	/* pfs_dev_buf_alloc() alignment */
#define PFS_DEV_FALLBACK_ALIGN	4096u	/* dio_mem_align when unknown */

/* RWF_ATOMIC (Linux 6.11); the glibc headers here predate it. */
#ifndef RWF_ATOMIC
#define RWF_ATOMIC		0x00000040
#endif

/*
 * Backend operations. pread/pwrite/flush receive requests already checked
 * by dev.c (range, alignment, read-only) and must be thread-safe. They
 * return 0 or -errno and transfer everything or fail.
 *
 * The ioq_* members are optional: a backend without ioq_init gets the
 * sequential queue of ioq.c, which runs every request through pread,
 * pwrite and flush above.
 */
struct pfs_dev_ops {
	const char *name;
	int (*pread)(struct pfs_dev *dev, void *buf, size_t len, uint64_t off);
	int (*pwrite)(struct pfs_dev *dev, const void *buf, size_t len,
		      uint64_t off);
	int (*flush)(struct pfs_dev *dev);
	/* A checked range; NULL: the backend cannot discard (-EOPNOTSUPP). */
	int (*discard)(struct pfs_dev *dev, uint64_t off, uint64_t len);
	void (*close)(struct pfs_dev *dev);	/* frees priv; may be NULL */

	int (*ioq_init)(struct pfs_ioq *q);
	void (*ioq_fini)(struct pfs_ioq *q);
	/* Register the (already validated) buffers; n == 0 unregisters. */
	int (*ioq_register)(struct pfs_ioq *q, const struct iovec *iov,
			    unsigned n);
	/*
	 * Run every request of ios[0..n) whose result is -EINPROGRESS (the
	 * others failed validation); none is a flush, and they may complete
	 * in any order. Sets each such result. Returns 0, or a -errno when
	 * the queue itself broke (the queue is then unusable).
	 */
	int (*ioq_segment)(struct pfs_ioq *q, struct pfs_io *ios, unsigned n);
	int (*ioq_flush)(struct pfs_ioq *q);
};

struct pfs_dev {
	const struct pfs_dev_ops *ops;
	struct pfs_dev_info info;
	int fd;			/* -1 for the mem and record devices */
	int lock_fd;		/* the flock on a loop device's file (claim.c), or -1 */
	unsigned queue_depth;	/* default depth of a pfs_ioq */
	bool rwf_atomic;	/* issue eligible writes with RWF_ATOMIC */
	void *priv;		/* the backend's */
};

struct pfs_ioq {
	struct pfs_dev *dev;
	unsigned depth;
	struct iovec *bufs;	/* registered buffers (every backend keeps
				 * them, to check buf_index the same way) */
	unsigned nbufs;
	int dead;		/* 0, or the -errno that broke the queue */
	void *priv;		/* the backend's */
};

/* dev.c */
struct pfs_dev *pfs_dev_alloc(const struct pfs_dev_ops *ops);
/* A device that forwards to inner (record, hook): inner's info and queue
 * depth, under ops->name, without a ring of its own. */
struct pfs_dev *pfs_dev_alloc_over(const struct pfs_dev_ops *ops, const struct pfs_dev *inner);
void pfs_dev_set_name(struct pfs_dev *dev, const char *name);
int pfs_dev_check_io(const struct pfs_dev *dev, const void *buf, size_t len,
		     uint64_t off, bool write);
/* The same rules for a range without a buffer (a discard: a write). */
int pfs_dev_check_range(const struct pfs_dev *dev, uint64_t off, uint64_t len);
bool pfs_dev_past_eof(const struct pfs_dev *dev, uint64_t pos);
int pfs_dev_write_flags(const struct pfs_dev *dev, size_t len, uint64_t off);

/* dev_sync.c: also the synchronous path of the uring backend */
extern const struct pfs_dev_ops pfs_dev_sync_ops;
int pfs_fd_pread(struct pfs_dev *dev, void *buf, size_t len, uint64_t off);
int pfs_fd_pwrite(struct pfs_dev *dev, const void *buf, size_t len,
		  uint64_t off);
int pfs_fd_flush(struct pfs_dev *dev);
int pfs_fd_discard(struct pfs_dev *dev, uint64_t off, uint64_t len);

/* dev_uring.c */
extern const struct pfs_dev_ops pfs_dev_uring_ops;
int pfs_uring_probe(void);

/*
 * claim.c: the exclusive claim on fd, open on a device whose fstat is st
 * (a block device opened O_EXCL, or a regular file). *lock_fd: a
 * descriptor holding the flock of a loop device's file, or -1; the
 * caller closes it with the device. Errors: -EBUSY, flock's -errno,
 * -ENOMEM.
 */
int pfs_dev_claim(int fd, const struct stat *st, int *lock_fd);

/* identify.c: fills dev->info (all but the backend fields) */
int pfs_dev_identify(struct pfs_dev *dev, const struct stat *st);

#endif /* POSFS_IO_DEV_INTERNAL_H */
