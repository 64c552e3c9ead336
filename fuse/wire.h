/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The daemon's hooks on the /dev/fuse stream (wire.c): FUSE_HANDLE_KILLPRIV_V2
 * and FUSE over io_uring, which libfuse 3.14 cannot negotiate, the
 * per-request set-ID kill flags that libfuse drops, the requests libfuse
 * 3.14 does not know (FUSE_TMPFILE, FUSE_STATX: answered by wire.c with
 * ops.c's handlers below), and request counts.
 */
#ifndef POSFS_FUSE_WIRE_H
#define POSFS_FUSE_WIRE_H

#include <linux/fuse.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "posfs.h"
#include "posfs/fs.h"
#include "posfs/ioctl.h"

/* Read and write the session's /dev/fuse through the hooks (after
 * fuse_session_mount). 0 or a negative errno. */
int pfs_wire_attach(struct fuse_session *se);

/* For the request the calling loop thread is handling: PFS_FS_SETID_KEEP
 * or _CLEAR when the kernel says (with KILLPRIV_V2: write, setattr, open,
 * create), PFS_FS_SETID_BY_UID otherwise. */
uint8_t pfs_wire_setid(void);

/* The kernel took FUSE_HANDLE_KILLPRIV_V2. */
bool pfs_wire_killpriv_v2(void);

/* A request that came another way (uring.c): note its set-ID flags for
 * the calling thread, as a read from /dev/fuse does. */
void pfs_wire_note(const void *buf, size_t n);

/* Requests read from /dev/fuse since the mount, by opcode (slot 0: any
 * past the table). */
void pfs_wire_dev_ops(uint64_t ops[POSFS_TRANSPORT_OPS]);

/*
 * A request of an opcode libfuse 3.14 does not know (FUSE_TMPFILE,
 * FUSE_STATX; libfuse would answer ENOSYS), in buf (n bytes: the
 * fuse_in_header and its arguments): answered here, the reply sent as a
 * libfuse reply is (the writev hook: into the ring entry on a ring
 * thread, else to /dev/fuse), and true; false for any other opcode, which
 * the caller hands to libfuse. uring.c calls it for each request it
 * serves; wire.c's read hook for each one read from /dev/fuse.
 */
bool pfs_wire_intercept(struct fuse_session *se, const void *buf, size_t n);

/*
 * FUSE_STATX, from the kernel's include/uapi/linux/fuse.h, ABI 7.39 (this
 * system's <linux/fuse.h> may be older).
 */
#define PFS_FUSE_STATX		52

struct pfs_fuse_sx_time {
	int64_t tv_sec;
	uint32_t tv_nsec;
	int32_t reserved;
};

struct pfs_fuse_statx {
	uint32_t mask;
	uint32_t blksize;
	uint64_t attributes;
	uint32_t nlink;
	uint32_t uid;
	uint32_t gid;
	uint16_t mode;
	uint16_t spare0[1];
	uint64_t ino;
	uint64_t size;
	uint64_t blocks;
	uint64_t attributes_mask;
	struct pfs_fuse_sx_time atime, btime, ctime, mtime;
	uint32_t rdev_major, rdev_minor;
	uint32_t dev_major, dev_minor;
	uint64_t spare2[14];
};

struct pfs_fuse_statx_in {
	uint32_t getattr_flags;
	uint32_t reserved;
	uint64_t fh;
	uint32_t sx_flags;
	uint32_t sx_mask;
};

struct pfs_fuse_statx_out {
	uint64_t attr_valid;		/* cache timeout of the attributes */
	uint32_t attr_valid_nsec;
	uint32_t flags;
	uint64_t spare[2];
	struct pfs_fuse_statx stat;
};

_Static_assert(sizeof(struct pfs_fuse_statx) == 256, "fuse_statx (ABI 7.39)");
_Static_assert(sizeof(struct pfs_fuse_statx_in) == 24, "fuse_statx_in (ABI 7.39)");
_Static_assert(sizeof(struct pfs_fuse_statx_out) == 288, "fuse_statx_out (ABI 7.39)");

/* The reply to FUSE_TMPFILE, as to FUSE_CREATE. */
struct pfs_wire_create_out {
	struct fuse_entry_out entry;
	struct fuse_open_out open;
};

/*
 * ops.c: the handlers of the intercepted requests, each a call of the
 * namespace layer; 0 or a negative errno (the reply's error).
 *
 * pfs_ops_tmpfile: open(dir, O_TMPFILE) by uid and gid (in: the request's
 * mode, umask and open flags): an unnamed file, counted open and looked
 * up once, as a CREATE reply counts them. When the reply cannot be
 * delivered (the request was interrupted), pfs_ops_tmpfile_lost(ino)
 * takes both back (then the file goes).
 *
 * pfs_ops_statx: ino's attributes with its creation time and chattr
 * attributes (STATX_ATTR_*) for a statx(2).
 */
int pfs_ops_tmpfile(uint64_t dir, uint32_t uid, uint32_t gid, const struct fuse_create_in *in,
		    struct pfs_wire_create_out *out);
void pfs_ops_tmpfile_lost(uint64_t ino);
int pfs_ops_statx(uint64_t ino, const struct pfs_fuse_statx_in *in, struct pfs_fuse_statx_out *out);

#endif /* POSFS_FUSE_WIRE_H */
