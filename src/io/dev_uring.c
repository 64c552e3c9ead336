/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * dev_uring.c: the io_uring backend (liburing).
 *
 * The kernel's io_uring is probed at run time, at each open that may use
 * it: a ring must set up (io_uring may be compiled out, or disabled by the
 * kernel.io_uring_disabled sysctl or a seccomp filter) and the opcodes
 * READ, WRITE, READ_FIXED, WRITE_FIXED and FSYNC must be supported.
 *
 * The synchronous calls (pfs_dev_pread/pwrite/flush) use the fd loops of
 * dev_sync.c: they are thread-safe as they stand and need no shared ring.
 * Batched I/O goes through the ring owned by each pfs_ioq (one thread at a
 * time per queue, so no lock).
 *
 * A segment (ioq.c: the requests between two flushes) runs as a window of
 * at most depth requests in flight. Each in-flight request holds a slot
 * (its index in the batch and the bytes done so far); the slot number is
 * the SQE's user_data. The window is filled, then submitted and waited on
 * with one io_uring_enter (io_uring_submit_and_wait): while requests are
 * left over it waits for one completion and refills the window, once all
 * are in the ring it waits for all of them. A segment no larger than the
 * depth thus costs a single system call. A short transfer or
 * -EAGAIN/-EINTR resubmits the remainder from the same slot; a short read
 * that ends at the end of a regular file fills the rest with zeros. A
 * flush is one IORING_OP_FSYNC with IORING_FSYNC_DATASYNC, issued alone
 * on an empty ring.
 *
 * If io_uring_enter itself fails (not EINTR/EAGAIN/EBUSY), what is in the
 * kernel is waited for, and the queue is dead: every later run fails with
 * that error.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* O_DIRECT, pwritev2, syscall */
#endif
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include <liburing.h>

#include "io/dev_internal.h"

/* Largest single SQE transfer (the SQE length is 32 bits). */
#define PFS_URING_CHUNK		(1u << 30)
#define PFS_URING_FLUSH_TAG	UINT64_MAX

struct pfs_uring_slot {
	unsigned idx;		/* request index in the segment */
	size_t done;		/* bytes transferred so far */
};

struct pfs_uring_q {
	struct io_uring ring;
	bool registered;
	struct pfs_uring_slot *slots;	/* depth of them */
	unsigned *free;			/* free slot numbers (a stack) */
	unsigned nfree;
	unsigned *retry;		/* slots to resubmit */
	unsigned nretry;
};

int pfs_uring_probe(void)
{
	static const int need[] = {
		IORING_OP_READ, IORING_OP_WRITE, IORING_OP_READ_FIXED,
		IORING_OP_WRITE_FIXED, IORING_OP_FSYNC,
	};
	struct io_uring ring;
	struct io_uring_probe *probe;
	unsigned i;
	int ret;

	ret = io_uring_queue_init(4, &ring, 0);
	if (ret)
		return ret;
	probe = io_uring_get_probe_ring(&ring);
	if (!probe) {
		ret = -EOPNOTSUPP;
		goto out;
	}
	for (i = 0; i < sizeof(need) / sizeof(need[0]); i++)
		if (!io_uring_opcode_supported(probe, need[i]))
			ret = -EOPNOTSUPP;
	io_uring_free_probe(probe);
out:
	io_uring_queue_exit(&ring);
	return ret;
}

static void pfs_uring_ioq_fini(struct pfs_ioq *q)
{
	struct pfs_uring_q *u = q->priv;

	if (!u)
		return;
	io_uring_queue_exit(&u->ring);
	free(u->slots);
	free(u->free);
	free(u->retry);
	free(u);
	q->priv = NULL;
}

static int pfs_uring_ioq_init(struct pfs_ioq *q)
{
	struct pfs_uring_q *u;
	unsigned i;
	int ret;

	u = calloc(1, sizeof(*u));
	if (!u)
		return -ENOMEM;
	u->slots = calloc(q->depth, sizeof(*u->slots));
	u->free = calloc(q->depth, sizeof(*u->free));
	u->retry = calloc(q->depth, sizeof(*u->retry));
	if (!u->slots || !u->free || !u->retry) {
		ret = -ENOMEM;
		goto out;
	}
	ret = io_uring_queue_init(q->depth, &u->ring, 0);
	if (ret)
		goto out;
	for (i = 0; i < q->depth; i++)
		u->free[i] = q->depth - 1 - i;
	u->nfree = q->depth;
	q->priv = u;
	return 0;
out:
	free(u->slots);
	free(u->free);
	free(u->retry);
	free(u);
	return ret;
}

static int pfs_uring_register(struct pfs_ioq *q, const struct iovec *iov,
			      unsigned n)
{
	struct pfs_uring_q *u = q->priv;
	int ret;

	if (u->registered) {
		ret = io_uring_unregister_buffers(&u->ring);
		if (ret)
			return ret;
		u->registered = false;
	}
	if (n == 0)
		return 0;
	ret = io_uring_register_buffers(&u->ring, iov, n);
	if (ret)
		return ret;
	u->registered = true;
	return 0;
}

/* Queue (the rest of) io on sqe, tagged with slot s. */
static void pfs_uring_prep(struct pfs_ioq *q, struct io_uring_sqe *sqe,
			   const struct pfs_io *io, unsigned s, size_t done)
{
	int fd = q->dev->fd;
	char *p = (char *)io->buf + done;
	uint64_t off = io->off + done;
	size_t len = io->len - done;

	if (len > PFS_URING_CHUNK)
		len = PFS_URING_CHUNK;
	if (io->op == PFS_IO_READ) {
		if (io->buf_index >= 0)
			io_uring_prep_read_fixed(sqe, fd, p, (unsigned)len,
						 off, io->buf_index);
		else
			io_uring_prep_read(sqe, fd, p, (unsigned)len, off);
	} else {
		if (io->buf_index >= 0)
			io_uring_prep_write_fixed(sqe, fd, p, (unsigned)len,
						  off, io->buf_index);
		else
			io_uring_prep_write(sqe, fd, p, (unsigned)len, off);
		if (done == 0)
			sqe->rw_flags = pfs_dev_write_flags(q->dev, io->len,
							    io->off);
	}
	io_uring_sqe_set_data64(sqe, s);
}

/*
 * One completion for slot sl of io: true when io is finished (its result
 * set), false when the rest must be resubmitted.
 */
static bool pfs_uring_complete(struct pfs_ioq *q, struct pfs_io *io,
			       struct pfs_uring_slot *sl, int res)
{
	size_t want = io->len - sl->done;

	if (res == -EINTR || res == -EAGAIN)
		return false;
	if (res < 0) {
		io->result = res;
		return true;
	}
	if (want > PFS_URING_CHUNK)
		want = PFS_URING_CHUNK;
	if ((size_t)res < want && io->op == PFS_IO_READ &&
	    pfs_dev_past_eof(q->dev, io->off + sl->done + res)) {
		memset((char *)io->buf + sl->done + res, 0,
		       io->len - sl->done - res);
		io->result = 0;
		return true;
	}
	if (res == 0) {
		io->result = -EIO;
		return true;
	}
	sl->done += res;
	if (sl->done == io->len) {
		io->result = 0;
		return true;
	}
	return false;
}

/* Handle every completion there is; returns how many. */
static unsigned pfs_uring_reap(struct pfs_ioq *q, struct pfs_io *ios,
			       unsigned *busy)
{
	struct pfs_uring_q *u = q->priv;
	struct io_uring_cqe *cqe;
	unsigned head, seen = 0;

	io_uring_for_each_cqe(&u->ring, head, cqe) {
		unsigned s = (unsigned)io_uring_cqe_get_data64(cqe);
		struct pfs_uring_slot *sl = &u->slots[s];

		seen++;
		if (pfs_uring_complete(q, &ios[sl->idx], sl, cqe->res)) {
			u->free[u->nfree++] = s;
			(*busy)--;
		} else {
			u->retry[u->nretry++] = s;
		}
	}
	io_uring_cq_advance(&u->ring, seen);
	return seen;
}

/* Submit what is queued and wait for wait_nr completions; 0 or a fatal
 * -errno. */
static int pfs_uring_enter(struct io_uring *ring, unsigned wait_nr)
{
	int ret = io_uring_submit_and_wait(ring, wait_nr);

	if (ret >= 0 || ret == -EINTR || ret == -EAGAIN || ret == -EBUSY)
		return 0;
	return ret;
}

/*
 * The ring broke with err: wait for what the kernel has (the buffers are
 * the caller's and must be quiet when we return), fail the rest.
 */
static int pfs_uring_broken(struct pfs_ioq *q, struct pfs_io *ios,
			    unsigned n, unsigned busy, int err)
{
	struct pfs_uring_q *u = q->priv;
	unsigned i, inkernel;

	inkernel = busy - u->nretry - io_uring_sq_ready(&u->ring);
	while (inkernel > 0) {
		struct io_uring_cqe *cqe;
		int ret = io_uring_wait_cqe(&u->ring, &cqe);

		if (ret == -EINTR || ret == -EAGAIN)
			continue;
		if (ret)
			break;
		io_uring_cqe_seen(&u->ring, cqe);
		inkernel--;
	}
	for (i = 0; i < n; i++)
		if (ios[i].result == -EINPROGRESS)
			ios[i].result = err;
	q->dead = err;
	return err;
}

static int pfs_uring_segment(struct pfs_ioq *q, struct pfs_io *ios,
			     unsigned n)
{
	struct pfs_uring_q *u = q->priv;
	unsigned next = 0, busy = 0;
	int ret;

	u->nretry = 0;
	for (;;) {
		/* Fill the window: resubmissions first, then new requests. */
		for (;;) {
			struct io_uring_sqe *sqe;
			unsigned s;

			if (u->nretry == 0) {
				while (next < n &&
				       ios[next].result != -EINPROGRESS)
					next++;
				if (next == n || busy == q->depth)
					break;
			}
			sqe = io_uring_get_sqe(&u->ring);
			if (!sqe)
				break;
			if (u->nretry) {
				s = u->retry[--u->nretry];
			} else {
				s = u->free[--u->nfree];
				u->slots[s].idx = next++;
				u->slots[s].done = 0;
				busy++;
			}
			pfs_uring_prep(q, sqe, &ios[u->slots[s].idx], s,
				       u->slots[s].done);
		}
		if (busy == 0)
			return 0;
		/*
		 * Everything is in the ring: wait for all of it (one
		 * io_uring_enter for a batch within the depth). Else wait
		 * for one, to refill the window.
		 */
		ret = pfs_uring_enter(&u->ring,
				      next == n ? busy - u->nretry : 1);
		if (ret)
			return pfs_uring_broken(q, ios, n, busy, ret);
		if (pfs_uring_reap(q, ios, &busy) == 0)
			sched_yield();	/* EAGAIN/EBUSY: let the kernel catch up */
	}
}

static int pfs_uring_flush(struct pfs_ioq *q)
{
	struct pfs_uring_q *u = q->priv;
	struct io_uring_sqe *sqe;
	struct io_uring_cqe *cqe;
	int ret, res;

	for (;;) {
		sqe = io_uring_get_sqe(&u->ring);
		if (!sqe)
			return -EBUSY;	/* cannot happen: the ring is idle */
		io_uring_prep_fsync(sqe, q->dev->fd, IORING_FSYNC_DATASYNC);
		io_uring_sqe_set_data64(sqe, PFS_URING_FLUSH_TAG);
		do {
			ret = pfs_uring_enter(&u->ring, 1);
			if (ret) {
				q->dead = ret;
				return ret;
			}
		} while (io_uring_peek_cqe(&u->ring, &cqe) != 0);
		res = cqe->res;
		io_uring_cqe_seen(&u->ring, cqe);
		if (res != -EINTR && res != -EAGAIN)
			return res;
	}
}

const struct pfs_dev_ops pfs_dev_uring_ops = {
	.name = "uring",
	.pread = pfs_fd_pread,
	.pwrite = pfs_fd_pwrite,
	.flush = pfs_fd_flush,
	.discard = pfs_fd_discard,
	.ioq_init = pfs_uring_ioq_init,
	.ioq_fini = pfs_uring_ioq_fini,
	.ioq_register = pfs_uring_register,
	.ioq_segment = pfs_uring_segment,
	.ioq_flush = pfs_uring_flush,
};
