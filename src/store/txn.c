/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The transaction builder (pfs_txn_*): a caller's list of operations,
 * grown as it is built and applied only by pfs_store_submit (submit.c).
 * Building never fails on its own: the first allocation failure is kept
 * in t->err, the calls after it do nothing, and the submit returns it.
 * A pfs_op points at its caller's buffers (data, names, keys, values):
 * they must stay until the submit returns.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "posfs/store.h"

void pfs_txn_init(struct pfs_txn *t)
{
	memset(t, 0, sizeof(*t));
}

void pfs_txn_fini(struct pfs_txn *t)
{
	free(t->ops);
	memset(t, 0, sizeof(*t));
}

void pfs_txn_reset(struct pfs_txn *t)
{
	t->n = 0;
	t->err = 0;
}

static struct pfs_op *op_add(struct pfs_txn *t, enum pfs_op_type type, uint64_t oid)
{
	struct pfs_op *op;

	if (t->err)
		return NULL;
	if (t->n == t->cap) {
		size_t cap = t->cap ? t->cap * 2 : 8;
		struct pfs_op *n = realloc(t->ops, cap * sizeof(*n));

		if (!n) {
			t->err = -ENOMEM;
			return NULL;
		}
		t->ops = n;
		t->cap = cap;
	}
	op = &t->ops[t->n++];
	memset(op, 0, sizeof(*op));
	op->type = type;
	op->oid = oid;
	return op;
}

void pfs_txn_create(struct pfs_txn *t, uint64_t oid, const struct pfs_attr *a)
{
	struct pfs_op *op = op_add(t, PFS_OP_CREATE, oid);

	if (op && a)
		op->attr = *a;
}

void pfs_txn_remove(struct pfs_txn *t, uint64_t oid)
{
	op_add(t, PFS_OP_REMOVE, oid);
}

void pfs_txn_write(struct pfs_txn *t, uint64_t oid, uint64_t off, uint64_t len,
		   const void *data)
{
	struct pfs_op *op = op_add(t, PFS_OP_WRITE, oid);

	if (op) {
		op->off = off;
		op->len = len;
		op->data = data;
	}
}

void pfs_txn_zero(struct pfs_txn *t, uint64_t oid, uint64_t off, uint64_t len)
{
	struct pfs_op *op = op_add(t, PFS_OP_ZERO, oid);

	if (op) {
		op->off = off;
		op->len = len;
	}
}

void pfs_txn_truncate(struct pfs_txn *t, uint64_t oid, uint64_t size)
{
	struct pfs_op *op = op_add(t, PFS_OP_TRUNCATE, oid);

	if (op)
		op->off = size;
}

void pfs_txn_setattr(struct pfs_txn *t, uint64_t oid, const struct pfs_attr *a,
		     uint32_t mask)
{
	struct pfs_op *op = op_add(t, PFS_OP_SETATTR, oid);

	if (op) {
		op->attr = *a;
		op->mask = mask;
	}
}

void pfs_txn_setxattr(struct pfs_txn *t, uint64_t oid, const char *name, const void *val,
		      size_t vlen, int flags)
{
	struct pfs_op *op = op_add(t, PFS_OP_SETXATTR, oid);

	if (op) {
		op->key = name;
		op->klen = strlen(name);
		op->val = val;
		op->vlen = vlen;
		op->flags = flags;
	}
}

void pfs_txn_rmxattr(struct pfs_txn *t, uint64_t oid, const char *name)
{
	struct pfs_op *op = op_add(t, PFS_OP_RMXATTR, oid);

	if (op) {
		op->key = name;
		op->klen = strlen(name);
	}
}

void pfs_txn_clone(struct pfs_txn *t, uint64_t src, uint64_t dst)
{
	struct pfs_op *op = op_add(t, PFS_OP_CLONE, src);

	if (op)
		op->oid2 = dst;
}

void pfs_txn_clone_range(struct pfs_txn *t, uint64_t src, uint64_t soff, uint64_t dst,
			 uint64_t doff, uint64_t len)
{
	struct pfs_op *op = op_add(t, PFS_OP_CLONE_RANGE, src);

	if (op) {
		op->oid2 = dst;
		op->off = soff;
		op->off2 = doff;
		op->len = len;
	}
}

static void omap_op(struct pfs_txn *t, enum pfs_op_type type, uint64_t oid, const void *key,
		    size_t klen, const void *val, size_t vlen)
{
	struct pfs_op *op = op_add(t, type, oid);

	if (op) {
		op->key = key;
		op->klen = klen;
		op->val = val;
		op->vlen = vlen;
	}
}

void pfs_txn_omap_set(struct pfs_txn *t, uint64_t oid, const void *key, size_t klen,
		      const void *val, size_t vlen)
{
	omap_op(t, PFS_OP_OMAP_SET, oid, key, klen, val, vlen);
}

void pfs_txn_omap_insert(struct pfs_txn *t, uint64_t oid, const void *key, size_t klen,
			 const void *val, size_t vlen)
{
	omap_op(t, PFS_OP_OMAP_INSERT, oid, key, klen, val, vlen);
}

void pfs_txn_omap_rm(struct pfs_txn *t, uint64_t oid, const void *key, size_t klen)
{
	omap_op(t, PFS_OP_OMAP_RM, oid, key, klen, NULL, 0);
}

void pfs_txn_omap_rmrange(struct pfs_txn *t, uint64_t oid, const void *start, size_t slen,
			  const void *end, size_t elen)
{
	struct pfs_op *op = op_add(t, PFS_OP_OMAP_RMRANGE, oid);

	if (op) {
		op->key = start;
		op->klen = slen;
		op->key2 = end;
		op->klen2 = elen;
	}
}
