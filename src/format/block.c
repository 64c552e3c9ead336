/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The common header of every metadata block. Verification order matters:
 * the covered size is bounded first (so the crc never reads past the
 * buffer), then the crc32c (any flipped bit: -EBADMSG), and only then the
 * fields a reader expects (a well-formed block in the wrong place, of
 * another type or another file system: -EUCLEAN).
 */

#include <errno.h>
#include <string.h>

#include "posfs/crc32c.h"
#include "posfs/disk.h"
#include "format/endian.h"

void pfs_block_hdr_encode(void *buf, const struct pfs_blockhdr *hdr)
{
	struct pfs_dblock_hdr *d = buf;

	d->crc = 0;
	d->magic = le32_put(hdr->magic);
	d->size = le32_put(hdr->size);
	d->level = le16_put(hdr->level);
	d->nr = le16_put(hdr->nr);
	d->blkno = le64_put(hdr->blkno);
	d->owner = le64_put(hdr->owner);
	d->lsn = le64_put(hdr->lsn);
	memcpy(d->uuid, hdr->uuid, POSFS_UUID_SIZE);
	d->flags = le32_put(hdr->flags);
	d->reserved = 0;
}

void pfs_block_hdr_decode(const void *buf, struct pfs_blockhdr *hdr)
{
	const struct pfs_dblock_hdr *d = buf;

	hdr->magic = le32_get(d->magic);
	hdr->size = le32_get(d->size);
	hdr->level = le16_get(d->level);
	hdr->nr = le16_get(d->nr);
	hdr->blkno = le64_get(d->blkno);
	hdr->owner = le64_get(d->owner);
	hdr->lsn = le64_get(d->lsn);
	memcpy(hdr->uuid, d->uuid, POSFS_UUID_SIZE);
	hdr->flags = le32_get(d->flags);
}

static uint32_t block_crc(const void *buf, uint32_t size)
{
	return pfs_crc32c(0, (const uint8_t *)buf + 4, size - 4);
}

void pfs_block_seal(void *buf)
{
	struct pfs_dblock_hdr *d = buf;

	d->crc = le32_put(block_crc(buf, le32_get(d->size)));
}

int pfs_block_verify(const void *buf, size_t buflen,
		     const struct pfs_block_expect *exp, struct pfs_blockhdr *out)
{
	const struct pfs_dblock_hdr *d = buf;
	struct pfs_blockhdr hdr;
	uint32_t size;

	if (buflen < sizeof(*d))
		return -EUCLEAN;
	size = le32_get(d->size);
	if (size < sizeof(*d) || size > buflen) {
		/* A flipped bit in size must still count as a bad checksum
		 * when the block would verify with the size it should have. */
		if (exp && exp->size && exp->size <= buflen &&
		    block_crc(buf, exp->size) != le32_get(d->crc))
			return -EBADMSG;
		return -EUCLEAN;
	}
	if (block_crc(buf, size) != le32_get(d->crc))
		return -EBADMSG;
	pfs_block_hdr_decode(buf, &hdr);
	if (out)
		*out = hdr;
	if (!exp)
		return 0;
	if (exp->magic && hdr.magic != exp->magic)
		return -EUCLEAN;
	if (exp->size && hdr.size != exp->size)
		return -EUCLEAN;
	if ((exp->check_blkno || exp->blkno) && hdr.blkno != exp->blkno)
		return -EUCLEAN;
	if (exp->check_owner && hdr.owner != exp->owner)
		return -EUCLEAN;
	if (exp->uuid && memcmp(hdr.uuid, exp->uuid, POSFS_UUID_SIZE) != 0)
		return -EUCLEAN;
	if (exp->max_lsn && hdr.lsn >= exp->max_lsn)
		return -EUCLEAN;
	if (d->reserved)
		return -EUCLEAN;
	return 0;
}

uint32_t pfs_data_csum(uint64_t devoff, const void *chunk, size_t len)
{
	pfs_le64 seed = le64_put(devoff);

	return pfs_crc32c(pfs_crc32c(0, &seed, sizeof(seed)), chunk, len);
}
