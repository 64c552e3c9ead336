/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Test helpers: see testdev.h. */
#include <stdio.h>
#include <string.h>

#include "testdev.h"

struct pfs_dev *pfs_test_newfs_mem(uint64_t size, uint32_t shards, uint64_t wal_bytes)
{
	struct pfs_mkfs_params p = { .size = size, .block_size = 4096, .shard_count = shards,
				     .wal_bytes = wal_bytes, .global_wal_bytes = 1 << 20, .ncpu = 1 };
	struct pfs_newfs_opts o = { .root_mode = 0755, .now = 1700000000 };
	struct pfs_super sb;
	struct pfs_dev *dev;
	int ret;

	memset(&sb, 0, sizeof(sb));
	ret = pfs_dev_open_mem(size, 512, &dev);
	if (ret) {
		fprintf(stderr, "memory device: %d\n", ret);
		return NULL;
	}
	ret = pfs_geo_compute(&p, &sb, NULL);
	for (int i = 0; i < 16; i++)
		sb.uuid[i] = (uint8_t)(i * 7 + 1);
	sb.feature_incompat = POSFS_FEATURE_global_wal;
	sb.state = POSFS_STATE_CLEAN;
	sb.errors = 1;
	sb.max_mount_count = UINT32_MAX;
	if (!ret)
		ret = pfs_newfs_write(dev, &sb, &o);
	if (ret) {
		fprintf(stderr, "newfs: %d\n", ret);
		pfs_dev_close(dev);
		return NULL;
	}
	return dev;
}
