/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libFuzzer targets for libposfs: what the targets, the seed generator and
 * the replay driver share (common.c).
 *
 * An image input is a whole posfs device: byte i of the input is byte i of
 * the device. The device is the input rounded up to a sector, at least
 * the head, at most PFS_FUZZ_IMAGE_MAX; the rest reads as zeros.
 */
#ifndef POSFS_TESTS_FUZZ_H
#define POSFS_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>

#include "posfs/disk.h"
#include "posfs/io.h"

#define PFS_FUZZ_SECTOR		512u
#define PFS_FUZZ_IMAGE_MAX	(16u << 20)

/* The entry points libFuzzer calls. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
			       unsigned int seed);

/* xorshift32 (*s not 0): a mutation must follow from its seed alone. */
uint32_t pfs_fuzz_rnd(uint32_t *s);

/* Bytes of the device an image input of len bytes becomes. */
uint64_t pfs_fuzz_image_size(size_t len);

/* A memory device holding the image input. 0 or -errno. */
int pfs_fuzz_image_dev(const uint8_t *data, size_t len, struct pfs_dev **devp);

/*
 * The layout-aware mutation of an image input, in place: pick a metadata
 * block (a posfs magic at offset 4), change a few bytes of it, and when
 * bit 0 of seed is set re-seal its crc32c so that the change gets past
 * the checksum. Returns the new size; when there is no metadata block or
 * the seed says so, the generic mutator's result.
 */
size_t pfs_fuzz_mutate_image(uint8_t *data, size_t size, size_t max_size,
			     unsigned int seed);

/*
 * A new file system of size bytes (4 KiB blocks, shards shards, the
 * smallest WALs mkfs allows) on a new memory device. 0 or -errno.
 */
int pfs_fuzz_newfs(uint64_t size, uint32_t shards, struct pfs_dev **devp);

/* Populate a file system as the seed images are: files small and large,
 * xattrs, a directory of 120 entries, a symlink, a hard link, a fifo, a
 * file of 48 extents (an extent tree), and an open file unlinked (its
 * inode in *orphan). 0 or -errno. */
struct pfs_fs;
int pfs_fuzz_populate(struct pfs_fs *fs, uint64_t *orphan);

#endif
