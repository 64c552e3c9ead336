/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Data compression (src/store/compress.c): zstd frames of whole extents,
 * with one compression and one decompression context per thread.
 *
 * A compressed extent (POSFS_EXTENT_COMPRESSED) holds len logical blocks
 * as one zstd frame in plen device blocks, zero padded; its record's csum
 * is pfs_data_csum over the plen blocks. It is never changed in place: a
 * write into it, or a punch that cuts it, first turns it into plain
 * blocks (objop.c).
 */
#ifndef POSFS_STORE_COMPRESS_H
#define POSFS_STORE_COMPRESS_H

#include <stddef.h>
#include <stdint.h>

/* Logical bytes per compressed extent at most (a random read decompresses
 * no more than this). */
#define PFS_COMPRESS_MAX	(128u * 1024)
/* Logical bytes per compressed extent at least (smaller runs are stored
 * plain: a frame must save whole blocks); writes of this much or more go
 * out of place when they may be compressed. */
#define PFS_COMPRESS_MIN	(8u * 1024)

/*
 * Compress n bytes of src into dst (cap bytes) at level. Returns the
 * frame's size, or 0 when it would not fit in cap (store the data raw),
 * or -ENOMEM.
 */
long pfs_compress(const void *src, size_t n, void *dst, size_t cap, int level);

/* Decompress the frame at the start of src (srclen bytes, padding after
 * the frame allowed) into exactly n bytes of dst: 0, or -EUCLEAN when the
 * frame is not one of n bytes, or -ENOMEM. */
int pfs_decompress(const void *src, size_t srclen, void *dst, size_t n);

#endif /* POSFS_STORE_COMPRESS_H */
