/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Onode cache of one shard (private to src/store): decoded onodes by oid,
 * least recently used out first. Read-through: an entry is always the
 * committed onode; a transaction that changes an onode drops its entry
 * before it commits, and the next read decodes it again. The shard lock
 * covers every call.
 */
#ifndef POSFS_STORE_OCACHE_H
#define POSFS_STORE_OCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "posfs/disk.h"

struct pfs_ocache_ent;

struct pfs_ocache {
	size_t capacity, count, nhash;
	struct pfs_ocache_ent **hash;
	struct pfs_ocache_ent *head, *tail;	/* most, least recently used */
	uint64_t hits, misses;
};

/* capacity 0: no caching (every get misses). */
int pfs_ocache_init(struct pfs_ocache *c, size_t capacity);
void pfs_ocache_fini(struct pfs_ocache *c);
bool pfs_ocache_get(struct pfs_ocache *c, uint64_t oid, struct pfs_onode *o);
void pfs_ocache_put(struct pfs_ocache *c, const struct pfs_onode *o);
void pfs_ocache_drop(struct pfs_ocache *c, uint64_t oid);

#endif
