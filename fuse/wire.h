/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The daemon's hooks on the /dev/fuse stream (wire.c): FUSE_HANDLE_KILLPRIV_V2,
 * which libfuse 3.14 cannot negotiate, and the per-request set-ID kill flags
 * that libfuse drops.
 */
#ifndef POSFS_FUSE_WIRE_H
#define POSFS_FUSE_WIRE_H

#include <stdbool.h>
#include <stdint.h>

#include "posfs.h"
#include "posfs/fs.h"

/* Read and write the session's /dev/fuse through the hooks (after
 * fuse_session_mount). 0 or a negative errno. */
int pfs_wire_attach(struct fuse_session *se);

/* For the request the calling loop thread is handling: PFS_FS_SETID_KEEP
 * or _CLEAR when the kernel says (with KILLPRIV_V2: write, setattr, open,
 * create), PFS_FS_SETID_BY_UID otherwise. */
uint8_t pfs_wire_setid(void);

/* The kernel took FUSE_HANDLE_KILLPRIV_V2. */
bool pfs_wire_killpriv_v2(void);

#endif /* POSFS_FUSE_WIRE_H */
