/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Placement of new directories on shards (place.c). A new file always goes
 * to its directory's shard (the entry and the inode change in one shard's
 * WAL); a new directory does too unless the shards are out of balance.
 */
#ifndef POSFS_FS_PLACE_H
#define POSFS_FS_PLACE_H

#include <stdint.h>

#include "posfs/fs.h"

/* The shard of a new directory in parent dir (PFS_FS_PLACE_* policy). */
uint32_t pfs_place_dir(struct pfs_fs *fs, uint64_t dir);

#endif /* POSFS_FS_PLACE_H */
