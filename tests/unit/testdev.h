/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Test helpers: a new posfs on an in-memory device. */
#ifndef POSFS_TESTS_TESTDEV_H
#define POSFS_TESTS_TESTDEV_H

#include <stdint.h>

#include "posfs/disk.h"
#include "posfs/io.h"

/*
 * Make a posfs of size bytes (4 KiB blocks, shards shards, WALs of
 * wal_bytes each, a 1 MiB global WAL) on a new memory device, as mkfs
 * would. Returns the device (the caller closes it, or a store owns it),
 * NULL on failure (with the reason on stderr).
 */
struct pfs_dev *pfs_test_newfs_mem(uint64_t size, uint32_t shards, uint64_t wal_bytes);

#endif
