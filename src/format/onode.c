/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Onodes and extent records: the one pair of conversions between struct
 * pfs_donode (disk) and struct pfs_onode (memory), and between
 * pfs_dextent and pfs_extent. Decoding checks every field that a later
 * reader would otherwise trust to index or size something.
 */

#include <errno.h>
#include <string.h>

#include "posfs/disk.h"
#include "format/endian.h"

#define NSEC_PER_SEC 1000000000u
#define EXTENT_FLAGS_KNOWN (POSFS_EXTENT_SHARED | POSFS_EXTENT_COMPRESSED)

void pfs_onode_to_disk(const struct pfs_onode *o, struct pfs_donode *d)
{
	memset(d, 0, sizeof(*d));
	if (!o->oid)
		return;		/* a free slot is all zeros */
	d->oid = le64_put(o->oid);
	d->generation = le64_put(o->generation);
	d->mode = le32_put(o->mode);
	d->uid = le32_put(o->uid);
	d->gid = le32_put(o->gid);
	d->nlink = le32_put(o->nlink);
	d->size = le64_put(o->size);
	d->blocks = le64_put(o->blocks);
	d->rdev = le64_put(o->rdev);
	d->atime_sec = le64_put((uint64_t)o->atime.sec);
	d->mtime_sec = le64_put((uint64_t)o->mtime.sec);
	d->ctime_sec = le64_put((uint64_t)o->ctime.sec);
	d->btime_sec = le64_put((uint64_t)o->btime.sec);
	d->atime_nsec = le32_put(o->atime.nsec);
	d->mtime_nsec = le32_put(o->mtime.nsec);
	d->ctime_nsec = le32_put(o->ctime.nsec);
	d->btime_nsec = le32_put(o->btime.nsec);
	d->flags = le32_put(o->flags);
	d->attr_flags = le32_put(o->attr_flags);
	d->parent = le64_put(o->parent);
	d->version = le64_put(o->version);
	d->omap.blkno = le64_put(o->omap.blkno);
	d->omap.height = le32_put(o->omap.height);
	d->omap_count = le64_put(o->omap_count);
	d->extents.blkno = le64_put(o->extents.blkno);
	d->extents.height = le32_put(o->extents.height);
	d->data_fmt = o->data_fmt;
	d->data_len = le16_put(o->data_len);
	d->xattr_len = le16_put(o->xattr_len);
	d->xattr_count = le16_put(o->xattr_count);
	d->xattr_omap_count = le64_put(o->xattr_omap_count);
	memcpy(d->inline_area, o->inline_area, POSFS_INLINE_SIZE);
}

static int bytes_zero(const void *p, size_t n)
{
	const uint8_t *b = p;

	while (n--)
		if (*b++)
			return 0;
	return 1;
}

int pfs_onode_from_disk(const struct pfs_donode *d, struct pfs_onode *o)
{
	memset(o, 0, sizeof(*o));
	o->oid = le64_get(d->oid);
	if (!o->oid)
		return bytes_zero(d, sizeof(*d)) ? 0 : -EUCLEAN;
	if (o->oid > POSFS_OID_MAX)
		return -EUCLEAN;
	o->generation = le64_get(d->generation);
	o->mode = le32_get(d->mode);
	o->uid = le32_get(d->uid);
	o->gid = le32_get(d->gid);
	o->nlink = le32_get(d->nlink);
	o->size = le64_get(d->size);
	o->blocks = le64_get(d->blocks);
	o->rdev = le64_get(d->rdev);
	o->atime.sec = (int64_t)le64_get(d->atime_sec);
	o->mtime.sec = (int64_t)le64_get(d->mtime_sec);
	o->ctime.sec = (int64_t)le64_get(d->ctime_sec);
	o->btime.sec = (int64_t)le64_get(d->btime_sec);
	o->atime.nsec = le32_get(d->atime_nsec);
	o->mtime.nsec = le32_get(d->mtime_nsec);
	o->ctime.nsec = le32_get(d->ctime_nsec);
	o->btime.nsec = le32_get(d->btime_nsec);
	o->flags = le32_get(d->flags);
	o->attr_flags = le32_get(d->attr_flags);
	o->parent = le64_get(d->parent);
	o->version = le64_get(d->version);
	o->omap.blkno = le64_get(d->omap.blkno);
	o->omap.height = le32_get(d->omap.height);
	o->omap_count = le64_get(d->omap_count);
	o->extents.blkno = le64_get(d->extents.blkno);
	o->extents.height = le32_get(d->extents.height);
	o->data_fmt = d->data_fmt;
	o->data_len = le16_get(d->data_len);
	o->xattr_len = le16_get(d->xattr_len);
	o->xattr_count = le16_get(d->xattr_count);
	o->xattr_omap_count = le64_get(d->xattr_omap_count);
	memcpy(o->inline_area, d->inline_area, POSFS_INLINE_SIZE);

	if (o->atime.nsec >= NSEC_PER_SEC || o->mtime.nsec >= NSEC_PER_SEC ||
	    o->ctime.nsec >= NSEC_PER_SEC || o->btime.nsec >= NSEC_PER_SEC)
		return -EUCLEAN;
	if (o->data_fmt > POSFS_DATA_BTREE)
		return -EUCLEAN;
	if ((uint32_t)o->data_len + o->xattr_len > POSFS_INLINE_SIZE)
		return -EUCLEAN;
	if (o->data_fmt == POSFS_DATA_EXTENTS && o->data_len % sizeof(struct pfs_dextent))
		return -EUCLEAN;
	if (o->data_fmt == POSFS_DATA_INLINE && o->data_len > o->size)
		return -EUCLEAN;
	if ((o->data_fmt == POSFS_DATA_BTREE) != (o->extents.blkno != 0))
		return -EUCLEAN;
	if (!o->omap.blkno != !o->omap.height || !o->extents.blkno != !o->extents.height)
		return -EUCLEAN;
	if (o->flags & ~POSFS_ONODE_ORPHAN)
		return -EUCLEAN;
	if (d->reserved0 || !bytes_zero(d->reserved, sizeof(d->reserved)) ||
	    d->omap.reserved || d->extents.reserved)
		return -EUCLEAN;
	return 0;
}

void pfs_extent_to_disk(const struct pfs_extent *e, struct pfs_dextent *d)
{
	d->lblk = le64_put(e->lblk);
	d->pblk = le64_put(e->pblk);
	d->len = le32_put(e->len);
	d->plen = le32_put(e->plen);
	d->flags = le32_put(e->flags);
	d->csum = le32_put(e->csum);
}

int pfs_extent_from_disk(const struct pfs_dextent *d, struct pfs_extent *e)
{
	e->lblk = le64_get(d->lblk);
	e->pblk = le64_get(d->pblk);
	e->len = le32_get(d->len);
	e->plen = le32_get(d->plen);
	e->flags = le32_get(d->flags);
	e->csum = le32_get(d->csum);
	if (!e->len || !e->plen || (e->flags & ~EXTENT_FLAGS_KNOWN))
		return -EUCLEAN;
	if (!(e->flags & POSFS_EXTENT_COMPRESSED) && (e->plen != e->len || e->csum))
		return -EUCLEAN;
	if (e->lblk >= POSFS_FILE_BLOCKS_MAX || e->len > POSFS_FILE_BLOCKS_MAX - e->lblk ||
	    e->pblk + e->plen < e->pblk || !e->pblk)
		return -EUCLEAN;
	return 0;
}

int pfs_onode_extents_ok(const struct pfs_onode *o)
{
	uint64_t end = 0;

	if (o->data_fmt != POSFS_DATA_EXTENTS)
		return 0;
	for (unsigned i = 0; i < o->data_len / sizeof(struct pfs_dextent); i++) {
		struct pfs_dextent d;
		struct pfs_extent e;

		memcpy(&d, o->inline_area + i * sizeof(d), sizeof(d));
		if (pfs_extent_from_disk(&d, &e) || e.lblk < end)
			return -EUCLEAN;
		end = e.lblk + e.len;
	}
	return 0;
}
