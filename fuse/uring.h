/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * FUSE over io_uring (uring.c): the kernel's requests served from one ring
 * queue per CPU, each by its own thread, the reply and the wait for the
 * next request in one submission. /dev/fuse (wire.c, libfuse's loop) keeps
 * INIT, FORGET, INTERRUPT and notifications, and is the fallback.
 *
 * The order at start-up, driven by wire.c: pfs_uring_offered() with the
 * kernel's INIT request; pfs_uring_prepare() before the INIT reply goes out
 * (queues, threads and buffers made: only then may the reply announce the
 * ring, because the kernel holds every request once it was announced until
 * every queue has registered); pfs_uring_go() once the reply is written.
 */
#ifndef POSFS_FUSE_URING_H
#define POSFS_FUSE_URING_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "posfs/ioctl.h"

struct fuse_session;

enum pfs_uring_mode {
	PFS_URING_AUTO = 0,	/* the ring where the kernel offers it (default) */
	PFS_URING_ON,		/* -o uring: the same, a warning where it cannot */
	PFS_URING_OFF,		/* -o nouring: /dev/fuse only */
	PFS_URING_ENABLE,	/* -o uring=enable: turn the kernel's parameter on */
};

struct pfs_uring_opts {
	enum pfs_uring_mode mode;
	unsigned poll_us;	/* -o poll[=US]: busy-poll so long before sleeping */
	unsigned threads;	/* -o uring_threads=N: per queue (0: the default) */
};

#define PFS_URING_POLL_DEFAULT_US	50	/* -o poll without a value */
#define PFS_URING_POLL_MAX_US		1000000
#define PFS_URING_THREADS_DEFAULT	4	/* threads per queue, one entry each */
#define PFS_URING_THREADS_MAX		64
#define PFS_URING_INIT_FLAGS2		(1u << (41 - 32))	/* FUSE_OVER_IO_URING */

/* main.c, before the mount: keep the options; with PFS_URING_ENABLE, write
 * 1 to the kernel's enable_uring parameter (and log it). 0 or a negative
 * errno (the parameter could not be written). */
int pfs_uring_configure(struct fuse_session *se, const struct pfs_uring_opts *o);

/* wire.c, at the INIT request: whether the kernel offered the ring. Logs,
 * once, why a mount that wants it will not have it. */
void pfs_uring_offered(bool offered);

/* wire.c, before the INIT reply: true when the ring is wanted and offered
 * and every queue is ready to register (the reply may announce it).
 * max_payload: the largest request or reply payload the kernel will use
 * (its max_write and max_pages, as the reply sets them). */
bool pfs_uring_prepare(uint32_t max_payload);

/* wire.c, after the INIT reply: written is whether the kernel took it.
 * The queues register (written) or are taken down. */
void pfs_uring_go(bool written);

/* wire.c: when the calling thread is a ring thread replying to the request
 * it is serving, the reply (a fuse_out_header, then the payload) goes into
 * that entry; returns the bytes taken. -1 otherwise: the caller writes it
 * to /dev/fuse (notifications always). */
ssize_t pfs_uring_reply(const struct iovec *iov, int count);

/* A handler on a ring thread that may wait on the kernel for another
 * request of its own queue (page invalidation after an O_DIRECT write):
 * run fn(arg) on the deferral thread instead, which must reply; the ring
 * thread goes on with its next request. false when the calling thread is
 * not serving a ring entry (or the deferral thread is gone): do the work
 * in place. */
bool pfs_uring_defer(void (*fn)(void *arg), void *arg);

/* main.c, after the request loop: stop the ring threads and free them. */
void pfs_uring_stop(void);

/* ops.c: the ring's part of POSFS_IOC_TRANSPORT (transport, queues, depth,
 * poll_us, uring_ops). */
void pfs_uring_status(struct posfs_transport *t);

#endif /* POSFS_FUSE_URING_H */
