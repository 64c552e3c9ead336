/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dev_mem.c: a device that lives in memory (unit tests, crash-state images).
 *
 * The image is one calloc'ed block of size bytes. The device reports
 * logical = physical = dio_mem_align = atomic_write_unit = the sector size
 * it was made with: the alignment a disk of that sector size would demand
 * of O_DIRECT, so code that passes on a mem device passes on a disk.
 * dev.c checks every request exactly as for a disk. A mutex makes reads and
 * writes atomic with respect to each other (no torn copies between
 * threads). Flush has nothing to do and returns 0. A discard zeroes its
 * range. Queues run sequentially (ioq.c).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* O_DIRECT, pwritev2, syscall */
#endif
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "io/dev_internal.h"

struct pfs_mem {
	pthread_mutex_t lock;
	unsigned char *image;
	bool borrowed;			/* the caller's: not freed */
};

static int pfs_mem_pread(struct pfs_dev *dev, void *buf, size_t len,
			 uint64_t off)
{
	struct pfs_mem *m = dev->priv;

	pthread_mutex_lock(&m->lock);
	memcpy(buf, m->image + off, len);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static int pfs_mem_pwrite(struct pfs_dev *dev, const void *buf, size_t len,
			  uint64_t off)
{
	struct pfs_mem *m = dev->priv;

	pthread_mutex_lock(&m->lock);
	memcpy(m->image + off, buf, len);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

static int pfs_mem_discard(struct pfs_dev *dev, uint64_t off, uint64_t len)
{
	struct pfs_mem *m = dev->priv;

	pthread_mutex_lock(&m->lock);
	memset(m->image + off, 0, (size_t)len);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

/* Memory is as durable as it gets here: a flush has nothing to do. */
static int pfs_mem_flush(struct pfs_dev *dev __attribute__((unused)))
{
	return 0;
}

static void pfs_mem_close(struct pfs_dev *dev)
{
	struct pfs_mem *m = dev->priv;

	if (!m)
		return;
	pthread_mutex_destroy(&m->lock);
	if (!m->borrowed)
		free(m->image);
	free(m);
	dev->priv = NULL;
}

static const struct pfs_dev_ops pfs_dev_mem_ops = {
	.name = "mem",
	.pread = pfs_mem_pread,
	.pwrite = pfs_mem_pwrite,
	.flush = pfs_mem_flush,
	.discard = pfs_mem_discard,
	.close = pfs_mem_close,
};

static int mem_open(void *image, uint64_t size, uint32_t sector, struct pfs_dev **devp)
{
	struct pfs_dev *dev = NULL;
	struct pfs_mem *m;
	int ret;

	*devp = NULL;
	if (sector < 512 || sector > 65536 || (sector & (sector - 1)) != 0 ||
	    size == 0 || size % sector != 0 || (uint64_t)(size_t)size != size) {
		ret = -EINVAL;
		goto out;
	}
	dev = pfs_dev_alloc(&pfs_dev_mem_ops);
	if (!dev) {
		ret = -ENOMEM;
		goto out;
	}
	m = calloc(1, sizeof(*m));
	if (!m) {
		ret = -ENOMEM;
		goto out;
	}
	dev->priv = m;
	ret = -pthread_mutex_init(&m->lock, NULL);
	if (ret) {
		free(m);
		dev->priv = NULL;
		goto out;
	}
	m->borrowed = image != NULL;
	m->image = image ? image : calloc(1, (size_t)size);
	if (!m->image) {
		ret = -ENOMEM;
		goto out;
	}
	dev->info.size = size;
	dev->info.logical_sector = sector;
	dev->info.physical_sector = sector;
	dev->info.dio_mem_align = sector;
	dev->info.atomic_write_unit = sector;
	dev->info.atomic_write_min = sector;
	dev->info.atomic_source = PFS_ATOMIC_NONE;
	*devp = dev;
	dev = NULL;
out:
	pfs_dev_close(dev);
	return ret;
}

int pfs_dev_open_mem(uint64_t size, uint32_t sector, struct pfs_dev **devp)
{
	return mem_open(NULL, size, sector, devp);
}

int pfs_dev_open_mem_over(void *image, uint64_t size, uint32_t sector,
			  struct pfs_dev **devp)
{
	if (!image) {
		*devp = NULL;
		return -EINVAL;
	}
	return mem_open(image, size, sector, devp);
}
