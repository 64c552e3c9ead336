/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * identify.c: what the device is and what it guarantees.
 *
 * Sizes and alignment:
 *   block device   size BLKGETSIZE64, logical sector BLKSSZGET, physical
 *                  sector BLKPBSZGET.
 *   regular file   size st_size; logical sector statx stx_dio_offset_align
 *                  when the file system reports one, else 512 (never less
 *                  than 512); physical sector st_blksize when it is a power
 *                  of two in [logical, 64 KiB] (the file system block, the
 *                  unit of its read-modify-write), else 4096.
 *   dio_mem_align  statx stx_dio_mem_align when reported (Linux 6.1+),
 *                  else 4096: one page satisfies every O_DIRECT
 *                  implementation, and pfs_dev_buf_alloc() gives it.
 * The same values apply when O_DIRECT is off (buffered, or refused), so
 * code tested on tmpfs is held to the rules of a real disk.
 * size is rounded down to the logical sector.
 *
 * Atomic write unit, first source that answers:
 *   1. NVMe (block devices whose fd answers nvme_get_nsid): identify
 *      controller and namespace; (NAWUPF+1) LBAs when NSFEAT bit 1 says the
 *      namespace fields are valid, else (AWUPF+1) LBAs from the controller.
 *      The device guarantees it for any write: no flag needed.
 *   2. statx STATX_WRITE_ATOMIC, trusted only when the returned mask has
 *      the bit and unit_max is nonzero (ext4 sets the bit with zero units
 *      on devices without support), and only with O_DIRECT in effect: the
 *      kernel guarantees it for writes issued with RWF_ATOMIC (a power of
 *      two in [unit_min, unit_max], naturally aligned), and the backends
 *      add RWF_ATOMIC to every such write.
 *   3. Nothing: the logical sector, PFS_ATOMIC_NONE.
 * Identification failures are never fatal; only a failure to learn the
 * size or the sector size fails the open.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* O_DIRECT, pwritev2, syscall */
#endif
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <nvme/ioctl.h>
#include <nvme/types.h>

#include "io/dev_internal.h"

#define PFS_STATX_BASIC		0x000007ffU
#define PFS_STATX_DIOALIGN	0x00002000U
#define PFS_STATX_WRITE_ATOMIC	0x00010000U

/*
 * struct statx as the kernel lays it out (Linux 6.11+); glibc 2.36 has no
 * atomic-write fields. Only the fields whose bits come back in stx_mask
 * are trusted: an older kernel leaves the rest zero.
 */
struct pfs_statx {
	uint32_t stx_mask;			/* 0x00 */
	uint32_t stx_blksize;
	uint64_t stx_attributes;
	uint32_t stx_nlink;			/* 0x10 */
	uint32_t stx_uid;
	uint32_t stx_gid;
	uint16_t stx_mode;
	uint16_t spare0;
	uint64_t stx_ino;			/* 0x20 */
	uint64_t stx_size;
	uint64_t stx_blocks;
	uint64_t stx_attributes_mask;
	uint64_t stx_timestamps[8];		/* 0x40: a, b, c, m times */
	uint32_t stx_rdev_major;		/* 0x80 */
	uint32_t stx_rdev_minor;
	uint32_t stx_dev_major;
	uint32_t stx_dev_minor;
	uint64_t stx_mnt_id;			/* 0x90 */
	uint32_t stx_dio_mem_align;
	uint32_t stx_dio_offset_align;
	uint64_t stx_subvol;			/* 0xa0 */
	uint32_t stx_atomic_write_unit_min;
	uint32_t stx_atomic_write_unit_max;
	uint32_t stx_atomic_write_segments_max;	/* 0xb0 */
	uint32_t stx_dio_read_offset_align;
	uint32_t stx_atomic_write_unit_max_opt;
	uint32_t spare2;
	uint64_t spare3[8];			/* 0xc0 */
};
_Static_assert(sizeof(struct pfs_statx) == 0x100, "struct statx layout");
_Static_assert(offsetof(struct pfs_statx, stx_dio_mem_align) == 0x98,
	       "struct statx layout");
_Static_assert(offsetof(struct pfs_statx, stx_atomic_write_unit_min) == 0xa8,
	       "struct statx layout");

static bool pfs_pow2(uint64_t v)
{
	return v && (v & (v - 1)) == 0;
}

static int pfs_statx_fd(int fd, struct pfs_statx *sx)
{
	memset(sx, 0, sizeof(*sx));
	if (syscall(SYS_statx, fd, "", AT_EMPTY_PATH,
		    PFS_STATX_BASIC | PFS_STATX_DIOALIGN |
		    PFS_STATX_WRITE_ATOMIC, sx) != 0)
		return -errno;
	return 0;
}

/* Copy a fixed-width blank-padded ASCII field, trimming trailing blanks. */
static void pfs_copy_trim(char *dst, size_t dstlen, const char *src,
			  size_t srclen)
{
	size_t n = srclen < dstlen - 1 ? srclen : dstlen - 1;

	memcpy(dst, src, n);
	while (n > 0 && (dst[n - 1] == ' ' || dst[n - 1] == '\0'))
		n--;
	dst[n] = '\0';
}

/* NVMe identify; leaves info alone when the fd is no NVMe namespace. */
static void pfs_identify_nvme(struct pfs_dev *dev)
{
	struct pfs_dev_info *in = &dev->info;
	struct nvme_id_ctrl ctrl;
	struct nvme_id_ns ns;
	uint32_t nsid = 0, lba;
	unsigned fmt, awu;

	if (nvme_get_nsid(dev->fd, &nsid) != 0 || nsid == 0)
		return;
	memset(&ctrl, 0, sizeof(ctrl));
	memset(&ns, 0, sizeof(ns));
	/* libnvme: 0, -1 with errno, or a positive NVMe status. */
	if (nvme_identify_ctrl(dev->fd, &ctrl) != 0 ||
	    nvme_identify_ns(dev->fd, nsid, &ns) != 0)
		return;

	in->nvme = true;
	in->nvme_nsid = nsid;
	pfs_copy_trim(in->nvme_model, sizeof(in->nvme_model), ctrl.mn,
		      sizeof(ctrl.mn));
	pfs_copy_trim(in->nvme_serial, sizeof(in->nvme_serial), ctrl.sn,
		      sizeof(ctrl.sn));

	fmt = (ns.flbas & NVME_NS_FLBAS_LOWER_MASK) |
	      ((ns.flbas & NVME_NS_FLBAS_HIGHER_MASK) >> 1);
	if (fmt >= 64 || ns.lbaf[fmt].ds < 9 || ns.lbaf[fmt].ds > 16)
		return;
	lba = 1u << ns.lbaf[fmt].ds;
	if (ns.nsfeat & NVME_NS_FEAT_NATOMIC)
		awu = le16toh(ns.nawupf);
	else
		awu = le16toh(ctrl.awupf);
	/* 0's based; AWUPF is in LBAs of the namespace. */
	if ((uint64_t)(awu + 1) * lba > UINT32_MAX)
		return;
	in->atomic_write_unit = (awu + 1) * lba;
	in->atomic_write_min = in->logical_sector;
	in->atomic_source = PFS_ATOMIC_NVME;
}

int pfs_dev_identify(struct pfs_dev *dev, const struct stat *st)
{
	struct pfs_dev_info *in = &dev->info;
	struct pfs_statx sx;
	bool have_sx;

	have_sx = pfs_statx_fd(dev->fd, &sx) == 0;

	if (in->is_blockdev) {
		uint64_t size;
		int lss;
		unsigned int pss;

		if (ioctl(dev->fd, BLKGETSIZE64, &size) != 0)
			return -errno;
		if (ioctl(dev->fd, BLKSSZGET, &lss) != 0)
			return -errno;
		if (ioctl(dev->fd, BLKPBSZGET, &pss) != 0)
			pss = 0;
		if (lss <= 0 || !pfs_pow2((unsigned)lss))
			return -EINVAL;
		in->logical_sector = (uint32_t)lss;
		in->physical_sector = pfs_pow2(pss) && pss >= (unsigned)lss
				      ? pss : (uint32_t)lss;
		in->size = size;
	} else {
		uint32_t lss = 512, pss = 4096;

		if (have_sx && (sx.stx_mask & PFS_STATX_DIOALIGN) &&
		    pfs_pow2(sx.stx_dio_offset_align) &&
		    sx.stx_dio_offset_align > lss)
			lss = sx.stx_dio_offset_align;
		if (pfs_pow2(st->st_blksize) && st->st_blksize >= lss &&
		    st->st_blksize <= 65536)
			pss = st->st_blksize;
		if (pss < lss)
			pss = lss;
		in->logical_sector = lss;
		in->physical_sector = pss;
		in->size = st->st_size > 0 ? (uint64_t)st->st_size : 0;
	}
	in->size -= in->size % in->logical_sector;

	in->dio_mem_align = PFS_DEV_FALLBACK_ALIGN;
	if (have_sx && (sx.stx_mask & PFS_STATX_DIOALIGN) &&
	    pfs_pow2(sx.stx_dio_mem_align))
		in->dio_mem_align = sx.stx_dio_mem_align;

	in->atomic_write_unit = in->logical_sector;
	in->atomic_write_min = in->logical_sector;
	in->atomic_source = PFS_ATOMIC_NONE;
	if (in->is_blockdev)
		pfs_identify_nvme(dev);
	if (in->atomic_source == PFS_ATOMIC_NONE && have_sx &&
	    (sx.stx_mask & PFS_STATX_WRITE_ATOMIC) &&
	    pfs_pow2(sx.stx_atomic_write_unit_max) &&
	    pfs_pow2(sx.stx_atomic_write_unit_min) &&
	    sx.stx_atomic_write_unit_min <= sx.stx_atomic_write_unit_max &&
	    sx.stx_atomic_write_unit_max >= in->logical_sector &&
	    in->direct) {
		/* RWF_ATOMIC needs O_DIRECT (Linux 6.11 - 6.18): buffered,
		 * nothing makes the writes atomic, so nothing is claimed. */
		in->atomic_write_unit = sx.stx_atomic_write_unit_max;
		in->atomic_write_min = sx.stx_atomic_write_unit_min;
		if (in->atomic_write_min < in->logical_sector)
			in->atomic_write_min = in->logical_sector;
		in->atomic_source = PFS_ATOMIC_STATX;
		dev->rwf_atomic = !in->readonly;
	}
	return 0;
}
