/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The daemon's own reads and writes of /dev/fuse (libfuse's custom I/O
 * hooks), for the one thing libfuse 3.14 cannot ask the kernel:
 * FUSE_HANDLE_KILLPRIV_V2.
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
 * Invariant: the INIT reply carries FUSE_HANDLE_KILLPRIV_V2 only when the
 * kernel offered it; until then, and on a kernel without it, every request
 * reads as "not said" and the namespace layer takes uid 0 as CAP_FSETID.
 */
#include <errno.h>
#include <linux/fuse.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include "wire.h"

static atomic_bool init_pending;	/* the kernel offered KILLPRIV_V2 */
static atomic_uint_least64_t init_unique;
static atomic_bool killpriv_v2;		/* the INIT reply took it */

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

static ssize_t wire_read(int fd, void *buf, size_t len, void *userdata)
{
	ssize_t n = read(fd, buf, len);
	const struct fuse_in_header *h = buf;

	(void)userdata;
	req_setid = PFS_FS_SETID_BY_UID;
	if (n < (ssize_t)sizeof(*h))
		return n;
	if (h->opcode == FUSE_INIT) {
		const struct fuse_init_in *in = (const void *)(h + 1);

		if ((size_t)n >= sizeof(*h) + offsetof(struct fuse_init_in, flags) + 4 &&
		    in->major == FUSE_KERNEL_VERSION && (in->flags & FUSE_HANDLE_KILLPRIV_V2)) {
			atomic_store(&init_unique, h->unique);
			atomic_store(&init_pending, true);
		}
	} else if (atomic_load_explicit(&killpriv_v2, memory_order_relaxed)) {
		req_setid = note_request(buf, (size_t)n);
	}
	return n;
}

static ssize_t wire_writev(int fd, struct iovec *iov, int count, void *userdata)
{
	const struct fuse_out_header *oh = iov[0].iov_base;
	struct fuse_init_out out;
	struct iovec v[2];

	(void)userdata;
	if (!atomic_load_explicit(&init_pending, memory_order_relaxed) || count != 2 ||
	    iov[0].iov_len < sizeof(*oh) || oh->unique != atomic_load(&init_unique))
		return writev(fd, iov, count);
	atomic_store(&init_pending, false);
	if (oh->error || iov[1].iov_len < offsetof(struct fuse_init_out, flags) + 4 ||
	    iov[1].iov_len > sizeof(out))
		return writev(fd, iov, count);
	/* the INIT reply: a copy with the flag, libfuse's own left alone */
	memcpy(&out, iov[1].iov_base, iov[1].iov_len);
	out.flags |= FUSE_HANDLE_KILLPRIV_V2;
	v[0] = iov[0];
	v[1].iov_base = &out;
	v[1].iov_len = iov[1].iov_len;
	atomic_store(&killpriv_v2, true);
	return writev(fd, v, 2);
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
