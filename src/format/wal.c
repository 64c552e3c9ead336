/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * WAL record headers: sealing a record and checking that the bytes at a
 * replay position are exactly the record replay expects there. A record
 * counts only if its crc32c over the whole record verifies and it carries
 * the expected LSN, position, owner and uuid; a stale record from an
 * earlier lap of the circular WAL, or from an earlier file system on the
 * device, fails one of those and ends replay.
 */

#include <errno.h>
#include <string.h>

#include "posfs/disk.h"
#include "format/endian.h"

void pfs_wal_rec_seal(const struct pfs_wal_rec *r, const uint8_t *uuid,
		      void *buf)
{
	struct pfs_dwal_rec *d = buf;
	struct pfs_blockhdr hdr = {
		.magic = POSFS_MAGIC_WAL,
		.size = r->size,
		.nr = r->nentries,
		.blkno = r->wal_block,
		.owner = r->owner,
		.lsn = r->lsn,
		.flags = r->flags,
	};

	memcpy(hdr.uuid, uuid, POSFS_UUID_SIZE);
	pfs_block_hdr_encode(d, &hdr);
	d->txid = le64_put(r->txid);
	d->ntx = le32_put(r->ntx);
	d->nblocks = le32_put(r->nblocks);
	d->checkpoint_lsn = le64_put(r->checkpoint_lsn);
	d->reserved = 0;
	pfs_block_seal(d);
}

int pfs_wal_rec_verify(const void *buf, size_t buflen, uint64_t wal_block,
		       uint64_t lsn, uint64_t owner, const uint8_t *uuid,
		       uint32_t block_size, uint32_t wal_blocks,
		       struct pfs_wal_rec *r)
{
	const struct pfs_dwal_rec *d = buf;
	struct pfs_block_expect exp = {
		.magic = POSFS_MAGIC_WAL,
		.blkno = wal_block,
		.check_blkno = true,
		.owner = owner,
		.check_owner = true,
		.uuid = uuid,
	};
	struct pfs_blockhdr hdr;
	uint64_t span;
	int ret;

	ret = pfs_block_verify(buf, buflen, &exp, &hdr);
	if (ret)
		return ret;
	if (hdr.lsn != lsn || hdr.size < sizeof(*d) || hdr.level ||
	    (hdr.flags & ~POSFS_WAL_PAD) || d->reserved)
		return -EUCLEAN;
	r->lsn = hdr.lsn;
	r->wal_block = hdr.blkno;
	r->owner = hdr.owner;
	r->size = hdr.size;
	r->flags = hdr.flags;
	r->nentries = hdr.nr;
	r->txid = le64_get(d->txid);
	r->ntx = le32_get(d->ntx);
	r->nblocks = le32_get(d->nblocks);
	r->checkpoint_lsn = le64_get(d->checkpoint_lsn);
	span = ((uint64_t)r->size + block_size - 1) / block_size;
	if (r->nblocks < span || wal_block + r->nblocks > wal_blocks ||
	    r->checkpoint_lsn > r->lsn)
		return -EUCLEAN;
	return 0;
}
