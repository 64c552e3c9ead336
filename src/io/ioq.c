/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ioq.c: batched I/O, the part every backend shares.
 *
 * pfs_ioq_run() cuts the batch at each flush into segments and runs them
 * in order:
 *
 *   segment 0 | flush | segment 1 | flush | ... | segment k
 *
 * A segment's requests are checked (the rules of pfs_dev_check_io, plus
 * buf_index naming a registered buffer that holds [buf, buf + len)), then
 * all of its valid requests are handed to the backend at once and may
 * complete in any order; the segment is over when every one has. Only
 * then is the flush issued, alone, and only once it has completed does the
 * next segment start. That is the barrier of io.h, kept by construction.
 *
 * A failure anywhere in a segment (a request refused by the checks
 * included) cancels the flush after it and everything behind that flush
 * (result -ECANCELED, nothing issued): a commit record queued after a
 * flush must never reach the disk when the data it commits did not.
 *
 * Backends with an ioq_segment (uring) run a segment in their own ring,
 * up to the queue depth in flight; the others (sync, mem, record) run the
 * segment's requests one by one through their pread/pwrite/flush, in
 * order.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* O_DIRECT, pwritev2, syscall */
#endif
#include <errno.h>
#include <stdlib.h>

#include "io/dev_internal.h"

/* io_uring limits: 16384 registered buffers of at most 1 GiB each. */
#define PFS_IOQ_MAX_BUFS	16384u
#define PFS_IOQ_MAX_BUF_LEN	(1ul << 30)

int pfs_ioq_create(struct pfs_dev *dev, unsigned depth, struct pfs_ioq **qp)
{
	struct pfs_ioq *q = NULL;
	int ret = 0;

	*qp = NULL;
	if (!dev) {
		ret = -EINVAL;
		goto out;
	}
	if (depth == 0)
		depth = dev->queue_depth;
	if (depth > PFS_DEV_MAX_DEPTH) {
		ret = -EINVAL;
		goto out;
	}
	q = calloc(1, sizeof(*q));
	if (!q) {
		ret = -ENOMEM;
		goto out;
	}
	q->dev = dev;
	q->depth = depth;
	if (dev->ops->ioq_init) {
		ret = dev->ops->ioq_init(q);
		if (ret)
			goto out;
	}
	*qp = q;
	q = NULL;
out:
	free(q);
	return ret;
}

void pfs_ioq_destroy(struct pfs_ioq *q)
{
	if (!q)
		return;
	if (q->dev->ops->ioq_fini)
		q->dev->ops->ioq_fini(q);
	free(q->bufs);
	free(q);
}

int pfs_ioq_register_buffers(struct pfs_ioq *q, void *const *bufs,
			     const size_t *lens, unsigned n)
{
	struct iovec *iov = NULL;
	unsigned i;
	int ret = 0;

	if (n && (!bufs || !lens)) {
		ret = -EINVAL;
		goto out;
	}
	if (n > PFS_IOQ_MAX_BUFS) {
		ret = -EINVAL;
		goto out;
	}
	if (n) {
		iov = calloc(n, sizeof(*iov));
		if (!iov) {
			ret = -ENOMEM;
			goto out;
		}
	}
	for (i = 0; i < n; i++) {
		if (!bufs[i] || lens[i] == 0 || lens[i] > PFS_IOQ_MAX_BUF_LEN) {
			ret = -EINVAL;
			goto out;
		}
		iov[i].iov_base = bufs[i];
		iov[i].iov_len = lens[i];
	}
	/* Out with the old set first: on failure none is registered. */
	free(q->bufs);
	q->bufs = NULL;
	q->nbufs = 0;
	if (q->dev->ops->ioq_register) {
		ret = q->dev->ops->ioq_register(q, iov, n);
		if (ret)
			goto out;
	}
	q->bufs = iov;
	q->nbufs = n;
	iov = NULL;
out:
	free(iov);
	return ret;
}

static int pfs_ioq_check(const struct pfs_ioq *q, const struct pfs_io *io)
{
	const struct iovec *rb;
	const char *p;
	int ret;

	if (io->op != PFS_IO_READ && io->op != PFS_IO_WRITE)
		return -EINVAL;
	ret = pfs_dev_check_io(q->dev, io->buf, io->len, io->off,
			       io->op == PFS_IO_WRITE);
	if (ret)
		return ret;
	if (io->buf_index < 0)
		return 0;
	if ((unsigned)io->buf_index >= q->nbufs)
		return -EINVAL;
	rb = &q->bufs[io->buf_index];
	p = io->buf;
	if (p < (const char *)rb->iov_base || io->len > rb->iov_len ||
	    (size_t)(p - (const char *)rb->iov_base) > rb->iov_len - io->len)
		return -EINVAL;
	return 0;
}

/* The sequential segment: one request after another, in queue order. */
static int pfs_ioq_seq_segment(struct pfs_ioq *q, struct pfs_io *ios,
			       unsigned n)
{
	struct pfs_dev *dev = q->dev;
	unsigned i;

	for (i = 0; i < n; i++) {
		struct pfs_io *io = &ios[i];

		if (io->result != -EINPROGRESS)
			continue;
		if (io->op == PFS_IO_READ)
			io->result = dev->ops->pread(dev, io->buf, io->len,
						     io->off);
		else
			io->result = dev->ops->pwrite(dev, io->buf, io->len,
						      io->off);
	}
	return 0;
}

static void pfs_ioq_fail(struct pfs_io *ios, unsigned from, unsigned n,
			 int err)
{
	unsigned i;

	for (i = from; i < n; i++)
		ios[i].result = err;
}

int pfs_ioq_run(struct pfs_ioq *q, struct pfs_io *ios, unsigned n)
{
	const struct pfs_dev_ops *ops = q->dev->ops;
	unsigned i = 0, j, k;
	int ret;

	if (n == 0)
		return 0;
	if (!ios)
		return -EINVAL;
	if (q->dead) {
		pfs_ioq_fail(ios, 0, n, q->dead);
		return q->dead;
	}

	while (i < n) {
		bool failed = false;

		for (j = i; j < n && ios[j].op != PFS_IO_FLUSH; j++) {
			ret = pfs_ioq_check(q, &ios[j]);
			if (ret)
				ios[j].result = ret;
			else
				ios[j].result = ios[j].len ? -EINPROGRESS : 0;
		}
		if (ops->ioq_segment)
			ret = ops->ioq_segment(q, ios + i, j - i);
		else
			ret = pfs_ioq_seq_segment(q, ios + i, j - i);
		if (ret) {
			/* The queue broke: what did not run never will. */
			q->dead = ret;
			for (k = i; k < j; k++)
				if (ios[k].result == -EINPROGRESS)
					ios[k].result = ret;
			pfs_ioq_fail(ios, j, n, -ECANCELED);
			break;
		}
		for (k = i; k < j; k++)
			if (ios[k].result != 0)
				failed = true;
		if (j == n)
			break;
		if (failed) {
			pfs_ioq_fail(ios, j, n, -ECANCELED);
			break;
		}
		/* ios[j] is a flush: the barrier between two segments. */
		if (ops->ioq_flush)
			ios[j].result = ops->ioq_flush(q);
		else
			ios[j].result = ops->flush(q->dev);
		if (ios[j].result != 0) {
			pfs_ioq_fail(ios, j + 1, n, -ECANCELED);
			break;
		}
		i = j + 1;
	}

	for (k = 0; k < n; k++)
		if (ios[k].result != 0)
			return ios[k].result;
	return 0;
}
