/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The daemon's own reads and writes of /dev/fuse (libfuse's custom I/O
 * hooks), for what libfuse 3.14 cannot ask the kernel:
 * FUSE_HANDLE_KILLPRIV_V2 and FUSE over io_uring (uring.c, whose replies
 * come through the writev hook too), the requests it does not know
 * (FUSE_TMPFILE, FUSE_STATX: pfs_wire_intercept, on both paths, answers
 * them with ops.c's handlers; libfuse would answer ENOSYS, and the kernel
 * would never ask again), and a count of the requests read.
 *
 * Without it the kernel asks for security.capability (a GETXATTR round
 * trip) before every write(2) of every file, because only with it does it
 * mark the super block SB_NOSEC and remember per inode that there is
 * nothing to kill. With it, the file system clears set-ID bits itself
 * where the request says so: FUSE_WRITE_KILL_SUIDGID (a write by a caller
 * without CAP_FSETID), FATTR_KILL_SUIDGID (its truncate, any chown, or the
 * kernel's kill alone, whose reply then carries the new mode),
 * FUSE_OPEN_KILL_SUIDGID (its open with O_TRUNC). libfuse drops those
 * flags, so the read hook notes them for the request the thread is about
 * to handle (a loop thread reads a request and handles it before it reads
 * the next).
 *
 * Invariant: the INIT reply carries FUSE_HANDLE_KILLPRIV_V2 (and
 * FUSE_OVER_IO_URING) only when the kernel offered it; until then, and on a kernel without it, every request
 * reads as "not said" and the namespace layer takes uid 0 as CAP_FSETID.
 */
#include <errno.h>
#include <linux/fuse.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "uring.h"
#include "wire.h"

static atomic_bool init_pending;	/* the INIT reply is still to come */
static atomic_uint_least64_t init_unique;
static atomic_bool init_killpriv;	/* the kernel offered KILLPRIV_V2 */
static atomic_bool killpriv_v2;		/* the INIT reply took it */
static _Atomic uint64_t dev_ops[POSFS_TRANSPORT_OPS];	/* requests read, by opcode */

static _Thread_local uint8_t req_setid;	/* PFS_FS_SETID_* */

/* What the request in buf does to set-ID bits (PFS_FS_SETID_*). */
static uint8_t note_request(const void *buf, size_t n)
{
	const struct fuse_in_header *h = buf;
	const char *arg = (const char *)(h + 1);
	size_t alen = n - sizeof(*h);
	uint32_t kill;

	switch (h->opcode) {
	case FUSE_WRITE:
		if (alen < sizeof(struct fuse_write_in))
			return PFS_FS_SETID_BY_UID;
		kill = ((const struct fuse_write_in *)arg)->write_flags & FUSE_WRITE_KILL_SUIDGID;
		break;
	case FUSE_SETATTR:
		if (alen < sizeof(struct fuse_setattr_in))
			return PFS_FS_SETID_BY_UID;
		kill = ((const struct fuse_setattr_in *)arg)->valid & FATTR_KILL_SUIDGID;
		break;
	case FUSE_OPEN:
		if (alen < sizeof(struct fuse_open_in))
			return PFS_FS_SETID_BY_UID;
		kill = ((const struct fuse_open_in *)arg)->open_flags & FUSE_OPEN_KILL_SUIDGID;
		break;
	case FUSE_CREATE:
		if (alen < sizeof(struct fuse_create_in))
			return PFS_FS_SETID_BY_UID;
		kill = ((const struct fuse_create_in *)arg)->open_flags & FUSE_OPEN_KILL_SUIDGID;
		break;
	default:
		return PFS_FS_SETID_BY_UID;
	}
	return kill ? PFS_FS_SETID_CLEAR : PFS_FS_SETID_KEEP;
}

void pfs_wire_note(const void *buf, size_t n)
{
	req_setid = PFS_FS_SETID_BY_UID;
	if (n >= sizeof(struct fuse_in_header) &&
	    atomic_load_explicit(&killpriv_v2, memory_order_relaxed))
		req_setid = note_request(buf, n);
}

/* The kernel's INIT: what it offers (KILLPRIV_V2, the ring). */
static void note_init(const struct fuse_in_header *h, size_t n)
{
	const struct fuse_init_in *in = (const void *)(h + 1);
	bool ext;

	if (n < sizeof(*h) + offsetof(struct fuse_init_in, flags) + 4 ||
	    in->major != FUSE_KERNEL_VERSION) {
		pfs_uring_offered(false);
		return;
	}
	ext = (in->flags & FUSE_INIT_EXT) && n >= sizeof(*h) + offsetof(struct fuse_init_in, flags2) + 4;
	atomic_store(&init_killpriv, (in->flags & FUSE_HANDLE_KILLPRIV_V2) != 0);
	pfs_uring_offered(ext && (in->flags2 & PFS_URING_INIT_FLAGS2));
	atomic_store(&init_unique, h->unique);
	atomic_store(&init_pending, true);
}

static ssize_t wire_writev(int fd, struct iovec *iov, int count, void *userdata);

/* ---- requests libfuse 3.14 does not know ---------------------------------- */

/*
 * The reply to the request unique: a fuse_out_header, then len bytes of
 * arg unless err. It takes the way a libfuse reply takes (wire_writev):
 * into the ring entry when the calling thread serves it, else to fd.
 * 0 or a negative errno (-ENOENT: the request was interrupted).
 */
static int wire_reply(int fd, uint64_t unique, int err, const void *arg, size_t len)
{
	struct fuse_out_header oh = { .len = (uint32_t)(sizeof(oh) + (err ? 0 : len)),
				      .error = err, .unique = unique };
	struct iovec iov[2] = { { .iov_base = &oh, .iov_len = sizeof(oh) },
				{ .iov_base = (void *)arg, .iov_len = len } };

	return wire_writev(fd, iov, err || !len ? 1 : 2, NULL) < 0 ? -errno : 0;
}

static void serve_tmpfile(int fd, const struct fuse_in_header *h, size_t n)
{
	struct pfs_wire_create_out out;
	int ret = -EINVAL;

	/* fuse_create_in (7.12 on), then the name the kernel gives the
	 * unnamed dentry ("/"), which means nothing here */
	if (n >= sizeof(*h) + sizeof(struct fuse_create_in))
		ret = pfs_ops_tmpfile(h->nodeid, h->uid, h->gid,
				      (const struct fuse_create_in *)(h + 1), &out);
	if (ret) {
		(void)wire_reply(fd, h->unique, ret, NULL, 0);
		return;
	}
	if (wire_reply(fd, h->unique, 0, &out, sizeof(out)) == -ENOENT)
		pfs_ops_tmpfile_lost(out.entry.nodeid);	/* no release will come */
}

static void serve_statx(int fd, const struct fuse_in_header *h, size_t n)
{
	struct pfs_fuse_statx_out out;
	int ret = -EINVAL;

	if (n >= sizeof(*h) + sizeof(struct pfs_fuse_statx_in))
		ret = pfs_ops_statx(h->nodeid, (const struct pfs_fuse_statx_in *)(h + 1), &out);
	(void)wire_reply(fd, h->unique, ret, &out, sizeof(out));
}

/* pfs_wire_intercept, replying to fd when not on a ring thread. */
static bool intercept(int fd, const void *buf, size_t n)
{
	const struct fuse_in_header *h = buf;

	if (n < sizeof(*h))
		return false;
	switch (h->opcode) {
	case FUSE_TMPFILE:
		serve_tmpfile(fd, h, n);
		return true;
	case PFS_FUSE_STATX:
		serve_statx(fd, h, n);
		return true;
	default:
		return false;
	}
}

bool pfs_wire_intercept(struct fuse_session *se, const void *buf, size_t n)
{
	return intercept(fuse_session_fd(se), buf, n);
}

/*
 * libfuse's loop processes whatever the read hook returns, so a request
 * answered here must not be returned: the hook answers it and reads the
 * next one. (Rewriting it into another request libfuse would answer
 * harmlessly needs an opcode whose reply the kernel ignores, and there is
 * none: each would reach a handler or send a reply of its own.) The
 * loop thread blocks in read again, as it would in its next call.
 */
static ssize_t wire_read(int fd, void *buf, size_t len, void *userdata)
{
	const struct fuse_in_header *h = buf;
	ssize_t n;

	(void)userdata;
	do {
		n = read(fd, buf, len);
		req_setid = PFS_FS_SETID_BY_UID;
		if (n < (ssize_t)sizeof(*h))
			return n;
		atomic_fetch_add_explicit(&dev_ops[h->opcode < POSFS_TRANSPORT_OPS ? h->opcode : 0],
					  1, memory_order_relaxed);
		if (h->opcode == FUSE_INIT)
			note_init(h, (size_t)n);
		else
			pfs_wire_note(buf, (size_t)n);
	} while (intercept(fd, buf, (size_t)n));
	return n;
}

/*
 * The INIT reply: a copy with the flags libfuse cannot set, its own left
 * alone. The ring is announced only once its queues are ready to register
 * (uring.h); they start when the kernel has taken the reply.
 */
static ssize_t init_reply(int fd, struct iovec *iov)
{
	struct fuse_init_out out;
	struct iovec v[2];
	uint32_t max_payload;
	bool ring = false;
	ssize_t n;

	memcpy(&out, iov[1].iov_base, iov[1].iov_len);
	if (atomic_load(&init_killpriv))
		out.flags |= FUSE_HANDLE_KILLPRIV_V2;
	if (iov[1].iov_len >= offsetof(struct fuse_init_out, flags2) + 4) {
		max_payload = out.max_write > 8192 ? out.max_write : 8192;
		if (out.flags & FUSE_MAX_PAGES) {
			if ((uint32_t)out.max_pages * 4096 > max_payload)
				max_payload = (uint32_t)out.max_pages * 4096;
		} else if (32 * 4096 > max_payload) {
			max_payload = 32 * 4096;	/* the kernel's default max_pages */
		}
		ring = pfs_uring_prepare(max_payload);
	}
	if (ring) {
		out.flags |= FUSE_INIT_EXT;
		out.flags2 |= PFS_URING_INIT_FLAGS2;
	}
	v[0] = iov[0];
	v[1].iov_base = &out;
	v[1].iov_len = iov[1].iov_len;
	n = writev(fd, v, 2);
	if (n >= 0 && (out.flags & FUSE_HANDLE_KILLPRIV_V2))
		atomic_store(&killpriv_v2, true);
	if (ring)
		pfs_uring_go(n >= 0);
	return n;
}

static ssize_t wire_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	const struct fuse_out_header *oh = iov[0].iov_base;
	ssize_t n;

	(void)userdata;
	n = pfs_uring_reply(iov, count);
	if (n >= 0)
		return n;
	if (!atomic_load_explicit(&init_pending, memory_order_relaxed) || count != 2 ||
	    iov[0].iov_len < sizeof(*oh) || oh->unique != atomic_load(&init_unique))
		return writev(fd, iov, count);
	atomic_store(&init_pending, false);
	if (oh->error || iov[1].iov_len < offsetof(struct fuse_init_out, flags) + 4 ||
	    iov[1].iov_len > sizeof(struct fuse_init_out))
		return writev(fd, iov, count);
	return init_reply(fd, iov);
}

int pfs_wire_attach(struct fuse_session *se)
{
	static const struct fuse_custom_io io = {
		.read = wire_read,
		.writev = wire_writev,
	};

	return fuse_session_custom_io(se, &io, fuse_session_fd(se));
}

uint8_t pfs_wire_setid(void)
{
	return req_setid;
}

bool pfs_wire_killpriv_v2(void)
{
	return atomic_load(&killpriv_v2);
}

void pfs_wire_dev_ops(uint64_t ops[POSFS_TRANSPORT_OPS])
{
	for (unsigned i = 0; i < POSFS_TRANSPORT_OPS; i++)
		ops[i] = atomic_load_explicit(&dev_ops[i], memory_order_relaxed);
}
