/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * hook.c: a device that calls back before each write.
 *
 * The device forwards everything to inner. A write first calls the
 * caller's before_write(arg, inner, off, len) and reaches inner only when
 * that returned 0; fsck uses it to save the old contents of the range in
 * its undo file before they are overwritten. One mutex is held across
 * "call back, then write", so writes from all threads are serialised and
 * the callback never runs twice at once: it sees inner as it was before
 * this write and after every earlier one. A discard changes the contents
 * as a write does, so it goes through the callback the same way. Reads
 * and flushes are forwarded without the lock.
 *
 * The range reaching the callback is already checked (dev.c checks every
 * public call against this device's info, a copy of inner's), so off and
 * len are aligned to the logical sector and inside the device.
 *
 * Queues on a hook device run sequentially through this device's own
 * pread/pwrite/flush (ioq.c), so queued writes go through the hook too.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* O_DIRECT, pwritev2, syscall */
#endif
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "io/dev_internal.h"

struct pfs_hookdev {
	pthread_mutex_t lock;	/* held across callback and write */
	struct pfs_dev *inner;
	struct pfs_dev_hook hook;
};

static int pfs_hook_pread(struct pfs_dev *dev, void *buf, size_t len,
			  uint64_t off)
{
	struct pfs_hookdev *h = dev->priv;

	return pfs_dev_pread(h->inner, buf, len, off);
}

static int pfs_hook_pwrite(struct pfs_dev *dev, const void *buf, size_t len,
			   uint64_t off)
{
	struct pfs_hookdev *h = dev->priv;
	int ret;

	pthread_mutex_lock(&h->lock);
	ret = h->hook.before_write(h->hook.arg, h->inner, off, len);
	if (ret > 0)
		ret = -EIO;	/* not a -errno: still a failure */
	if (!ret)
		ret = pfs_dev_pwrite(h->inner, buf, len, off);
	pthread_mutex_unlock(&h->lock);
	return ret;
}

static int pfs_hook_discard(struct pfs_dev *dev, uint64_t off, uint64_t len)
{
	struct pfs_hookdev *h = dev->priv;
	int ret;

	pthread_mutex_lock(&h->lock);
	ret = h->hook.before_write(h->hook.arg, h->inner, off, (size_t)len);
	if (ret > 0)
		ret = -EIO;
	if (!ret)
		ret = pfs_dev_discard(h->inner, off, len);
	pthread_mutex_unlock(&h->lock);
	return ret;
}

static int pfs_hook_flush(struct pfs_dev *dev)
{
	struct pfs_hookdev *h = dev->priv;

	return pfs_dev_flush(h->inner);
}

static void pfs_hook_close(struct pfs_dev *dev)
{
	struct pfs_hookdev *h = dev->priv;

	if (!h)
		return;
	pfs_dev_close(h->inner);
	pthread_mutex_destroy(&h->lock);
	free(h);
	dev->priv = NULL;
}

static const struct pfs_dev_ops pfs_dev_hook_ops = {
	.name = "hook",
	.pread = pfs_hook_pread,
	.pwrite = pfs_hook_pwrite,
	.flush = pfs_hook_flush,
	.discard = pfs_hook_discard,
	.close = pfs_hook_close,
};

int pfs_dev_hook_wrap(struct pfs_dev *inner, const struct pfs_dev_hook *hook,
		      struct pfs_dev **devp)
{
	struct pfs_dev *dev = NULL;
	struct pfs_hookdev *h;
	int ret;

	*devp = NULL;
	if (!inner || !hook || !hook->before_write) {
		ret = -EINVAL;
		goto out;
	}
	dev = pfs_dev_alloc_over(&pfs_dev_hook_ops, inner);
	if (!dev) {
		ret = -ENOMEM;
		goto out;
	}
	h = calloc(1, sizeof(*h));
	if (!h) {
		ret = -ENOMEM;
		goto out;
	}
	ret = -pthread_mutex_init(&h->lock, NULL);
	if (ret) {
		free(h);
		goto out;
	}
	h->inner = inner;
	h->hook = *hook;
	dev->priv = h;
	*devp = dev;
	dev = NULL;
out:
	if (dev)
		pfs_dev_close(dev);
	return ret;
}
