/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Little-endian field access for the format layer (private). */
#ifndef POSFS_FORMAT_ENDIAN_H
#define POSFS_FORMAT_ENDIAN_H

#include <endian.h>
#include <stdint.h>

#include "posfs/format.h"

static inline uint16_t le16_get(pfs_le16 v) { return le16toh(v); }
static inline uint32_t le32_get(pfs_le32 v) { return le32toh(v); }
static inline uint64_t le64_get(pfs_le64 v) { return le64toh(v); }
static inline pfs_le16 le16_put(uint16_t v) { return htole16(v); }
static inline pfs_le32 le32_put(uint32_t v) { return htole32(v); }
static inline pfs_le64 le64_put(uint64_t v) { return htole64(v); }

#endif
