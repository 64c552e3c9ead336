/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dev.c: opening a device, and the checked entry points every backend
 * shares.
 *
 * Open is a straight pipeline: check the options; stat the path (only
 * block devices and regular files pass, so a FIFO never blocks the open);
 * open it, O_DIRECT first unless told not to, falling back to buffered I/O
 * when the file system refuses O_DIRECT with EINVAL (info.direct_refused);
 * take the exclusive claim (O_EXCL on a block device, then claim.c: flock
 * on a file, or on the file under a loop device);
 * pick the backend (uring when the kernel has it and AUTO or URING was
 * asked); identify (identify.c).
 *
 * Every public I/O call goes through pfs_dev_check_io() before it reaches
 * a backend, so all backends refuse the same misaligned or out-of-range
 * requests, whether or not O_DIRECT is in effect.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* O_DIRECT, pwritev2, syscall */
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/dev_internal.h"

struct pfs_dev *pfs_dev_alloc(const struct pfs_dev_ops *ops)
{
	struct pfs_dev *dev = calloc(1, sizeof(*dev));

	if (!dev)
		return NULL;
	dev->ops = ops;
	dev->fd = -1;
	dev->lock_fd = -1;
	dev->queue_depth = PFS_DEV_DEFAULT_DEPTH;
	pfs_dev_set_name(dev, ops->name);
	return dev;
}

struct pfs_dev *pfs_dev_alloc_over(const struct pfs_dev_ops *ops, const struct pfs_dev *inner)
{
	struct pfs_dev *dev = pfs_dev_alloc(ops);

	if (!dev)
		return NULL;
	/* Same geometry and rules as inner; no ring of its own. */
	dev->info = inner->info;
	dev->info.uring = false;
	pfs_dev_set_name(dev, ops->name);	/* over inner's */
	dev->queue_depth = inner->queue_depth;
	return dev;
}

void pfs_dev_set_name(struct pfs_dev *dev, const char *name)
{
	size_t n = strlen(name);

	if (n >= sizeof(dev->info.backend_name))
		n = sizeof(dev->info.backend_name) - 1;
	memcpy(dev->info.backend_name, name, n);
	dev->info.backend_name[n] = '\0';
}

/*
 * The rules of io.h: writes on a read-only device -EROFS; buffer aligned
 * to dio_mem_align, offset and length to logical_sector, and the range
 * inside [0, size), else -EINVAL. A zero length is a valid no-op.
 */
int pfs_dev_check_io(const struct pfs_dev *dev, const void *buf, size_t len,
		     uint64_t off, bool write)
{
	const struct pfs_dev_info *in = &dev->info;

	if (write && in->readonly)
		return -EROFS;
	if (!buf || in->logical_sector == 0 || in->dio_mem_align == 0)
		return -EINVAL;
	if ((uintptr_t)buf % in->dio_mem_align != 0)
		return -EINVAL;
	if (off % in->logical_sector != 0 || len % in->logical_sector != 0)
		return -EINVAL;
	if (off > in->size || (uint64_t)len > in->size - off)
		return -EINVAL;
	return 0;
}

int pfs_dev_check_range(const struct pfs_dev *dev, uint64_t off, uint64_t len)
{
	const struct pfs_dev_info *in = &dev->info;

	if (in->readonly)
		return -EROFS;
	if (in->logical_sector == 0)
		return -EINVAL;
	if (off % in->logical_sector != 0 || len % in->logical_sector != 0)
		return -EINVAL;
	if (off > in->size || len > in->size - off)
		return -EINVAL;
	return 0;
}

/*
 * After a short read at pos: is pos at or past the end of a regular file
 * (truncated under us)? Then the rest reads as zeros. Never true for a
 * block device, where a short read inside the size is an error.
 */
bool pfs_dev_past_eof(const struct pfs_dev *dev, uint64_t pos)
{
	struct stat st;

	if (dev->fd < 0 || dev->info.is_blockdev)
		return false;
	if (fstat(dev->fd, &st) != 0 || !S_ISREG(st.st_mode))
		return false;
	return pos >= (uint64_t)st.st_size;
}

/*
 * RWF_ATOMIC for a write the kernel promised to make atomic (statx
 * STATX_WRITE_ATOMIC): a power of two in [atomic_write_min,
 * atomic_write_unit], naturally aligned, with O_DIRECT. Other writes get
 * no flag.
 */
int pfs_dev_write_flags(const struct pfs_dev *dev, size_t len, uint64_t off)
{
	const struct pfs_dev_info *in = &dev->info;

	if (!dev->rwf_atomic || len == 0 || (len & (len - 1)) != 0)
		return 0;
	if (len < in->atomic_write_min || len > in->atomic_write_unit)
		return 0;
	if (off % len != 0)
		return 0;
	return RWF_ATOMIC;
}

static int pfs_dev_check_opts(const struct pfs_dev_opts *o)
{
	if (o->backend != PFS_DEV_AUTO && o->backend != PFS_DEV_SYNC &&
	    o->backend != PFS_DEV_URING)
		return -EINVAL;
	if (o->queue_depth > PFS_DEV_MAX_DEPTH)
		return -EINVAL;
	return 0;
}

int pfs_dev_open(const char *path, const struct pfs_dev_opts *opts,
		 struct pfs_dev **devp)
{
	static const struct pfs_dev_opts defaults = { .backend = PFS_DEV_AUTO };
	const struct pfs_dev_opts *o = opts ? opts : &defaults;
	struct pfs_dev *dev = NULL;
	struct stat st;
	bool blk, refused = false, uring = false;
	int flags, fd = -1, lock_fd = -1, ret;

	*devp = NULL;
	ret = pfs_dev_check_opts(o);
	if (ret)
		goto out;
	if (!path) {
		ret = -EINVAL;
		goto out;
	}
	if (stat(path, &st) != 0) {
		ret = -errno;
		goto out;
	}
	if (!S_ISBLK(st.st_mode) && !S_ISREG(st.st_mode)) {
		ret = -ENOTBLK;
		goto out;
	}
	blk = S_ISBLK(st.st_mode);

	flags = (o->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	if (blk && o->exclusive)
		flags |= O_EXCL;
	if (!o->buffered) {
		fd = open(path, flags | O_DIRECT);
		if (fd < 0 && errno == EINVAL)
			refused = true;
		else if (fd < 0) {
			ret = -errno;
			goto out;
		}
	}
	if (fd < 0) {
		fd = open(path, flags);
		if (fd < 0) {
			ret = -errno;
			goto out;
		}
	}

	/* The path may have changed between stat and open. */
	if (fstat(fd, &st) != 0) {
		ret = -errno;
		goto out;
	}
	if (S_ISBLK(st.st_mode) != blk ||
	    (!S_ISBLK(st.st_mode) && !S_ISREG(st.st_mode))) {
		ret = -ENOTBLK;
		goto out;
	}
	if (o->exclusive) {
		ret = pfs_dev_claim(fd, &st, &lock_fd);
		if (ret)
			goto out;
	}

	if (o->backend != PFS_DEV_SYNC) {
		ret = pfs_uring_probe();
		if (ret && o->backend == PFS_DEV_URING)
			goto out;
		uring = ret == 0;
	}
	dev = pfs_dev_alloc(uring ? &pfs_dev_uring_ops : &pfs_dev_sync_ops);
	if (!dev) {
		ret = -ENOMEM;
		goto out;
	}
	dev->info.uring = uring;
	dev->fd = fd;
	fd = -1;
	dev->lock_fd = lock_fd;
	lock_fd = -1;
	dev->queue_depth = o->queue_depth ? o->queue_depth
					  : PFS_DEV_DEFAULT_DEPTH;
	dev->info.is_blockdev = blk;
	dev->info.readonly = o->readonly;
	dev->info.direct = !o->buffered && !refused;
	dev->info.direct_refused = refused;

	ret = pfs_dev_identify(dev, &st);
	if (ret)
		goto out;
	*devp = dev;
	dev = NULL;
out:
	if (dev)
		pfs_dev_close(dev);
	if (fd >= 0)
		close(fd);
	if (lock_fd >= 0)
		close(lock_fd);
	return ret;
}

void pfs_dev_close(struct pfs_dev *dev)
{
	if (!dev)
		return;
	if (dev->ops->close)
		dev->ops->close(dev);
	if (dev->fd >= 0)
		close(dev->fd);	/* drops the flock or O_EXCL claim */
	if (dev->lock_fd >= 0)
		close(dev->lock_fd);
	free(dev);
}

const struct pfs_dev_info *pfs_dev_info(const struct pfs_dev *dev)
{
	return &dev->info;
}

int pfs_dev_pread(struct pfs_dev *dev, void *buf, size_t len, uint64_t off)
{
	int ret = pfs_dev_check_io(dev, buf, len, off, false);

	if (ret || len == 0)
		return ret;
	return dev->ops->pread(dev, buf, len, off);
}

int pfs_dev_pwrite(struct pfs_dev *dev, const void *buf, size_t len,
		   uint64_t off)
{
	int ret = pfs_dev_check_io(dev, buf, len, off, true);

	if (ret || len == 0)
		return ret;
	return dev->ops->pwrite(dev, buf, len, off);
}

int pfs_dev_flush(struct pfs_dev *dev)
{
	return dev->ops->flush(dev);
}

int pfs_dev_discard(struct pfs_dev *dev, uint64_t off, uint64_t len)
{
	int ret = pfs_dev_check_range(dev, off, len);

	if (ret || len == 0)
		return ret;
	if (!dev->ops->discard)
		return -EOPNOTSUPP;
	return dev->ops->discard(dev, off, len);
}

void *pfs_dev_buf_alloc(size_t len)
{
	void *p = NULL;

	if (posix_memalign(&p, PFS_DEV_BUF_ALIGN, len ? len : 1) != 0)
		return NULL;
	memset(p, 0, len);
	return p;
}

void pfs_dev_buf_free(void *buf)
{
	free(buf);
}

/* A thread's buffer of one struct pfs_thread_buf (its key's value). */
struct thread_buf {
	void *p;
	size_t cap;
};

static void thread_buf_free(void *v)
{
	struct thread_buf *t = v;

	free(t->p);
	free(t);
}

/* pthread_once takes no argument: the key being made is passed here. */
static __thread struct pfs_thread_buf *thread_buf_making;

static void thread_buf_key_make(void)
{
	if (pthread_key_create(&thread_buf_making->key, thread_buf_free))
		abort();
}

void *pfs_thread_buf_get(struct pfs_thread_buf *tb, size_t len)
{
	struct thread_buf *t;
	void *p;

	thread_buf_making = tb;
	pthread_once(&tb->once, thread_buf_key_make);
	t = pthread_getspecific(tb->key);
	if (t && len <= t->cap)
		return t->p;
	if (!t) {
		t = calloc(1, sizeof(*t));
		if (!t || pthread_setspecific(tb->key, t)) {
			free(t);
			return NULL;
		}
	}
	len = (len + 65535) & ~(size_t)65535;
	if (posix_memalign(&p, PFS_DEV_BUF_ALIGN, len))
		return NULL;
	free(t->p);
	t->p = p;
	t->cap = len;
	return p;
}
