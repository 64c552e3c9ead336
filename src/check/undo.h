/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The undo file of fsck.posfs, as e2fsprogs' undo_io and e2undo have it:
 * the old contents of every 4096-byte unit of a device that fsck
 * overwrites, saved durably before the overwrite, in an LMDB database held
 * in one file. pfs_undo_restore() writes them back: the device is then bit
 * for bit what it was before fsck ran.
 *
 * Use: pfs_undo_create() on the device fsck opened, wrap that device with
 * pfs_dev_hook_wrap() whose before_write calls pfs_undo_save(), run fsck
 * on the hook device, then pfs_undo_close() before the hook device is
 * closed (the undo file reads the device at close).
 *
 * Identity: the undo file holds the device size and the crc32c of the
 * identity region, bytes [4096, 12288) (both superblocks), as it was at
 * create (before fsck) and at close (after fsck). Restore accepts a device
 * of the same size whose region matches one of them: after fsck, or
 * before (fsck never changed it, or a restore already completed, so
 * writing the units again changes nothing). A file never closed (fsck
 * crashed) knows no "after" state: when fsck wrote the region, only force
 * restores it.
 *
 * Every function returns 0 or a negative errno; nothing prints.
 */
#ifndef POSFS_CHECK_UNDO_H
#define POSFS_CHECK_UNDO_H

#include <stdbool.h>
#include <stdint.h>

#include "posfs/io.h"

#define PFS_UNDO_UNIT	4096u	/* bytes per saved unit */

struct pfs_undo;

/*
 * Create the undo file path (mode 0600, refused when path exists) for dev
 * and record dev's size and identity region. dev must stay open until
 * pfs_undo_close(). The file and its directory entry are durable on
 * return. On failure nothing is left at path (unless it existed).
 * Errors: -EEXIST, -EINVAL (NULL argument, an empty device, a logical
 * sector above 4096), -ENOMEM, -ENOSPC, a read error of dev, -EIO or
 * another -errno from LMDB or the file system.
 */
int pfs_undo_create(const char *path, struct pfs_dev *dev,
		    struct pfs_undo **up);

/*
 * Before [off, off + len) of dev is written: save the old contents of
 * every unit the range touches (a range not 4096-aligned: every unit it
 * touches) that is not saved yet, and make them durable (an fsync'ed LMDB
 * commit) before returning. A unit is saved once: its first copy, the
 * original, is never replaced. dev is the device of create (or the same
 * device through another handle, such as the inner device a hook device
 * passes to its callback). Thread-safe: calls are serialised. On failure
 * the units of this call may be partly saved; the caller must not write
 * the range. Errors: -EINVAL (range outside the device, a device of
 * another size), -ENOSPC (the undo file's map is full), dev's read
 * errors, -ENOMEM, -EIO or another -errno from LMDB.
 */
int pfs_undo_save(struct pfs_undo *u, struct pfs_dev *dev, uint64_t off,
		  size_t len);

/*
 * Record the identity region as it is now (the state after fsck), mark
 * the file complete (every write it covers has happened) and close it;
 * frees u whatever happens. Call it also after an error: the file stays
 * usable for restore. When the region cannot be read or the mark not
 * written, the file stays as a file never closed (see above) and the error
 * is returned. NULL is fine.
 */
int pfs_undo_close(struct pfs_undo *u);

/* Number of units saved so far through u. */
uint64_t pfs_undo_units(const struct pfs_undo *u);

/*
 * Write every unit saved in the undo file path back to dev and flush.
 * Everything is checked before anything is written: the file, every
 * unit's crc32c, and dev's identity (above). The identity region is
 * written last, after a flush, so an interrupted restore can be run again.
 * *units (may be NULL) gets the number of units written.
 * Errors: -ENOENT, -EINVAL (not an undo file; or a unit beyond dev's end
 * or not aligned to its sector, with force), -EUCLEAN (dev is not the
 * device the file was made for, or not in a state it can be restored
 * from; force skips this check), -EBADMSG (a damaged unit in the file),
 * -EROFS (dev is read-only), dev's read and write errors, -ENOMEM, -EIO
 * or another -errno from LMDB.
 */
int pfs_undo_restore(const char *path, struct pfs_dev *dev, bool force,
		     uint64_t *units);

#endif /* POSFS_CHECK_UNDO_H */
