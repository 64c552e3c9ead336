/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Byte order for the on-disk format (private to src): fields of the
 * format.h structures (le16_get ...), and loads and stores at any
 * alignment inside a block (ld_le16 ...; ld_be64 for keys that must sort
 * as bytes). The one set of these helpers: the trees use them too.
 */
#ifndef POSFS_FORMAT_ENDIAN_H
#define POSFS_FORMAT_ENDIAN_H

#include <endian.h>
#include <stdint.h>
#include <string.h>

#include "posfs/format.h"

static inline uint16_t le16_get(pfs_le16 v) { return le16toh(v); }
static inline uint32_t le32_get(pfs_le32 v) { return le32toh(v); }
static inline uint64_t le64_get(pfs_le64 v) { return le64toh(v); }
static inline pfs_le16 le16_put(uint16_t v) { return htole16(v); }
static inline pfs_le32 le32_put(uint32_t v) { return htole32(v); }
static inline pfs_le64 le64_put(uint64_t v) { return htole64(v); }

static inline uint16_t ld_le16(const void *p)
{
	uint16_t v;

	memcpy(&v, p, sizeof(v));
	return le16toh(v);
}

static inline uint32_t ld_le32(const void *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}

static inline uint64_t ld_le64(const void *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

static inline uint64_t ld_be64(const void *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return be64toh(v);
}

static inline void st_le16(void *p, uint16_t v)
{
	v = htole16(v);
	memcpy(p, &v, sizeof(v));
}

static inline void st_le32(void *p, uint32_t v)
{
	v = htole32(v);
	memcpy(p, &v, sizeof(v));
}

static inline void st_le64(void *p, uint64_t v)
{
	v = htole64(v);
	memcpy(p, &v, sizeof(v));
}

static inline void st_be64(void *p, uint64_t v)
{
	v = htobe64(v);
	memcpy(p, &v, sizeof(v));
}

#endif
