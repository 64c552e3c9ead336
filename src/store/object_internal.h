/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the object modules of src/store share, and nothing else may use:
 *   objop.c   the operation engine: an object context applies a
 *             transaction's operations to onodes, extents, data blocks,
 *             compressed frames, clones, xattrs and omaps;
 *   submit.c  pfs_store_submit: the shards' locks, the -EXDEV and -EAGAIN
 *             retries, the commit;
 *   read.c    the reads: stat, data, seek, xattrs and omap, each under one
 *             shard's read transaction;
 *   txn.c     the transaction builder (it needs nothing here).
 * A call on an object context runs under the locks of its transaction
 * (c->tx), which the caller holds. pfs_frame_fetch (a device read of
 * blocks that only a checkpoint changes) and the scratch buffers need no
 * lock: a read runs them with its shard's lock dropped.
 */
#ifndef POSFS_STORE_OBJECT_INTERNAL_H
#define POSFS_STORE_OBJECT_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "posfs/store.h"
#include "format/endian.h"
#include "store/extmap.h"
#include "store/omap.h"
#include "store/radix.h"
#include "store/store_internal.h"

#define XATTR_KEY_MAX (2 + 255)
#define TX_OBJ_MAX 16

struct obj {
	uint64_t oid;
	bool is_new;		/* created in this transaction */
	bool dirty;
	bool removed;
	struct pfs_onode o;
};

struct objctx {
	struct pfs_store *st;
	struct pfs_tx *tx;
	struct obj objs[TX_OBJ_MAX];
	unsigned n;
};

static inline struct pfs_radix radix_of(struct pfs_store *st, uint32_t shard)
{
	struct pfs_radix rx = { &st->shards[shard].hdr.onodes, shard };

	return rx;
}

static inline int oid_ok(const struct pfs_store *st, uint64_t oid)
{
	return oid && oid <= POSFS_OID_MAX && POSFS_OID_SHARD(oid) < st->nshards;
}

static inline struct pfs_extmap ext_map(struct objctx *c, struct obj *ob)
{
	struct pfs_extmap em = { c->tx, &ob->o, POSFS_OID_SHARD(ob->oid) };

	return em;
}

static inline void ext_get(const struct pfs_dextent *d, struct pfs_extent *e)
{
	e->lblk = le64_get(d->lblk);
	e->pblk = le64_get(d->pblk);
	e->len = le32_get(d->len);
	e->plen = le32_get(d->plen);
	e->flags = le32_get(d->flags);
	e->csum = le32_get(d->csum);
}

static inline struct pfs_omap omap_of(struct obj *ob)
{
	struct pfs_omap om = { &ob->o.omap, &ob->o.omap_count, POSFS_OID_SHARD(ob->oid), ob->oid };

	return om;
}

/* Inline data (objop.c says how): the bytes are in the onode. */
static inline bool is_inline_data(const struct obj *ob)
{
	return ob->o.data_fmt == POSFS_DATA_INLINE;
}

/* ---- objop.c ------------------------------------------------------------ */

/* The thread's scratch buffer for data I/O, or one of its own (objop.c). */
uint8_t *pfs_scratch_get(size_t len, size_t align);
void pfs_scratch_put(uint8_t *p);

/* The object's onode, decoded once per transaction. */
int pfs_obj_get(struct objctx *c, uint64_t oid, struct obj **op);
/* The changed onodes back to their radix slots, before the commit. */
int pfs_obj_writeback(struct objctx *c);
/* One operation of a transaction. */
int pfs_obj_apply(struct objctx *c, const struct pfs_op *op);

/* The extent that maps lblk: 0; -ENOENT for a hole. */
int pfs_ext_find(struct objctx *c, struct obj *ob, uint64_t lblk, struct pfs_extent *e);

/* A compressed extent's frame from the device into the thread's frame
 * buffer; checked (C2) and decompressed into the thread's plain buffer. */
int pfs_frame_fetch(struct pfs_store *st, const struct pfs_extent *e, uint8_t **frame);
int pfs_frame_unpack(struct pfs_store *st, uint64_t oid, const struct pfs_extent *e,
		     const uint8_t *frame, uint8_t **plain);

/* An inline xattr entry, as pfs_xa_next finds it in the inline area. */
struct xa_ent {
	uint32_t off;		/* in the inline area */
	uint32_t len;		/* padded */
	uint8_t ns;
	uint8_t nlen;
	uint16_t vlen;
	const uint8_t *name, *val;
};

extern const char *const pfs_xattr_ns_prefix[POSFS_XATTR_SYSTEM + 1];

/* The omap key of an xattr op's name ("\0x" + name). */
int pfs_xattr_key(const struct pfs_op *op, uint8_t *key, size_t *klen);
/* Entry at *pos (advanced past it): 1, 0 at the end, -EUCLEAN if bad. */
int pfs_xa_next(const struct pfs_onode *o, uint32_t *pos, struct xa_ent *e);
/* The inline entry of name: 0, -ENOENT, -EUCLEAN. */
int pfs_xa_find(const struct pfs_onode *o, const char *name, size_t len, struct xa_ent *e);

#endif
