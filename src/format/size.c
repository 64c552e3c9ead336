/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Sizes as the tools take them on the command line (mkfs.posfs -J, -b, -w
 * and its size argument; fsck.posfs -E max_memory): a decimal number and
 * an optional K, M, G or T suffix (powers of 1024; KiB, MB and the like
 * are accepted too), as mke2fs takes them. One parser for every tool.
 */
#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "posfs/disk.h"

int pfs_parse_size(const char *s, uint64_t bare_unit, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t mul = bare_unit;

	if (!isdigit((unsigned char)*s))
		return -EINVAL;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -EINVAL;
	switch (toupper((unsigned char)*end)) {
	case 0: break;
	case 'K': mul = 1ull << 10; end++; break;
	case 'M': mul = 1ull << 20; end++; break;
	case 'G': mul = 1ull << 30; end++; break;
	case 'T': mul = 1ull << 40; end++; break;
	default: return -EINVAL;
	}
	if (*end == 'i' || *end == 'I')
		end++;
	if ((*end == 'b' || *end == 'B') && mul != bare_unit)
		end++;
	if (*end)
		return -EINVAL;
	if (v && mul > UINT64_MAX / v)
		return -ERANGE;
	*out = v * mul;
	return 0;
}
