/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Submit: a built transaction (txn.c) applied by the operation engine
 * (objop.c) inside one store transaction, all or nothing, and committed.
 *
 * The transaction locks the shards of the objects it names. An operation
 * that finds it needs another shard too (a clone's or a spill's blocks)
 * fails with -EXDEV naming it: everything is undone, and it begins again
 * with that shard's lock as well (eight times at most). A WAL too full for
 * the record (-EAGAIN), or space that only the next checkpoint gives back
 * (-ENOSPC while freed blocks wait for it, W4), makes it checkpoint and
 * begin again, twice at most; a record still too large for an empty WAL
 * is -E2BIG.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "posfs/store.h"
#include "store/store_internal.h"
#include "store/object_internal.h"

static int txn_shards(struct pfs_store *st, const struct pfs_txn *t, uint32_t *sh, unsigned *n)
{
	unsigned k = 0;

	for (size_t i = 0; i < t->n; i++) {
		uint64_t oids[2] = { t->ops[i].oid, t->ops[i].oid2 };

		for (int j = 0; j < 2; j++) {
			uint32_t s;
			unsigned p;

			if (!oids[j])
				continue;
			if (!oid_ok(st, oids[j]))
				return -ENOENT;
			s = POSFS_OID_SHARD(oids[j]);
			for (p = 0; p < k && sh[p] < s; p++)
				;
			if (p < k && sh[p] == s)
				continue;
			if (k == 8)
				return -E2BIG;
			memmove(sh + p + 1, sh + p, (k - p) * sizeof(*sh));
			sh[p] = s;
			k++;
		}
	}
	*n = k;
	return k ? 0 : -EINVAL;
}

int pfs_store_submit(struct pfs_store *st, struct pfs_txn *t, int flags,
		     struct pfs_commit *token)
{
	struct objctx *c;
	struct pfs_durable tok = { POSFS_SHARD_GLOBAL, 0 };
	uint32_t shards[8];
	unsigned nsh;
	int ret, tries = 0, xdev_tries = 0;

	if (t->err)
		return t->err;
	if (!t->n) {
		if (token)
			*token = (struct pfs_commit){ POSFS_SHARD_GLOBAL, 0 };
		return 0;
	}
	ret = txn_shards(st, t, shards, &nsh);
	if (ret)
		return ret;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->st = st;
	for (;;) {
		if (pfs_store_wal_full(st)) {
			ret = pfs_store_checkpoint(st);
			if (ret)
				break;
		}
		ret = pfs_tx_begin(st, shards, nsh, &c->tx);
		if (ret)
			break;
		if (flags & PFS_SUBMIT_RESERVE)
			pfs_tx_set_reserve(c->tx);
		c->n = 0;
		for (size_t i = 0; !ret && i < t->n; i++)
			ret = pfs_obj_apply(c, &t->ops[i]);
		if (!ret)
			ret = pfs_obj_writeback(c);
		if (ret == -EXDEV && pfs_tx_xdev(c->tx) >= 0 && nsh < 8 && xdev_tries++ < 8) {
			/* it needs another shard's lock too: begin again with it */
			uint32_t x = (uint32_t)pfs_tx_xdev(c->tx);
			unsigned p;

			pfs_tx_abort(c->tx);
			c->tx = NULL;
			for (p = 0; p < nsh && shards[p] < x; p++)
				;
			if (p == nsh || shards[p] != x) {
				memmove(shards + p + 1, shards + p, (nsh - p) * sizeof(*shards));
				shards[p] = x;
				nsh++;
			}
			continue;
		}
		if (ret) {
			pfs_tx_abort(c->tx);
		} else {
			ret = pfs_tx_commit(c->tx, &tok);
		}
		c->tx = NULL;
		/* a full WAL, or space that the next checkpoint gives back */
		if ((ret == -EAGAIN || ret == -ENOSPC) && tries++ < 2) {
			bool pending = false;

			for (uint32_t i = 0; i < st->nshards; i++)
				pending |= pfs_alloc_pending_blocks(&st->shards[i].alloc) > 0;
			if (ret == -ENOSPC && !pending)
				break;
			ret = pfs_store_checkpoint(st);
			if (ret)
				break;
			continue;
		}
		break;
	}
	free(c);
	/* still too large right after a checkpoint: it cannot fit in a WAL */
	if (ret == -EAGAIN)
		ret = -E2BIG;
	if (ret)
		return pfs_store_note(st, ret);
	if (token)
		*token = (struct pfs_commit){ tok.shard, tok.group };
	if (flags & PFS_SUBMIT_DURABLE)
		ret = pfs_tx_wait_durable(st, &tok);
	return ret;
}

int pfs_store_wait(struct pfs_store *st, const struct pfs_commit *token)
{
	struct pfs_durable tok = { token->shard, token->group };

	return pfs_tx_wait_durable(st, &tok);
}
