/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * An object's extent map (src/store/extmap.c): inline in the onode while
 * small, a B+tree when large, behind one set of calls with the meaning of
 * the pfs_btree_* calls of btree.h (records are struct pfs_dextent keyed
 * by lblk). The onode is the caller's decoded copy: the caller writes it
 * back. The shard lock covers every call.
 */
#ifndef POSFS_STORE_EXTMAP_H
#define POSFS_STORE_EXTMAP_H

#include <stdbool.h>
#include <stdint.h>

#include "posfs/disk.h"
#include "store/btree.h"

struct pfs_extmap {
	struct pfs_tx *tx;
	struct pfs_onode *o;	/* data_fmt EXTENTS or BTREE */
	uint32_t shard;		/* where tree nodes are allocated */
};

int pfs_extmap_lookup_le(struct pfs_extmap *em, uint64_t key, struct pfs_dextent *d);
int pfs_extmap_lookup_ge(struct pfs_extmap *em, uint64_t key, struct pfs_dextent *d);
int pfs_extmap_insert(struct pfs_extmap *em, const struct pfs_dextent *d);
int pfs_extmap_update(struct pfs_extmap *em, const struct pfs_dextent *d);
int pfs_extmap_replace(struct pfs_extmap *em, uint64_t old_key, const struct pfs_dextent *d);
int pfs_extmap_delete(struct pfs_extmap *em, uint64_t key);
/* Call fn on every record (in key order), then empty the map. */
int pfs_extmap_destroy(struct pfs_extmap *em, int (*fn)(void *arg, const void *rec), void *arg);
bool pfs_extmap_empty(const struct pfs_extmap *em);

#endif
