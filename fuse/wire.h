/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The daemon's hooks on the /dev/fuse stream (wire.c): FUSE_HANDLE_KILLPRIV_V2
 * and FUSE over io_uring, which libfuse 3.14 cannot negotiate, the
 * per-request set-ID kill flags that libfuse drops, and request counts.
 */
#ifndef POSFS_FUSE_WIRE_H
#define POSFS_FUSE_WIRE_H

#include <stdbool.h>
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

#endif /* POSFS_FUSE_WIRE_H */
