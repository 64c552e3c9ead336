/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * File data: read, write, fallocate, SEEK_DATA/SEEK_HOLE, copy_file_range.
 * The bytes are the object's data; the store keeps the size, the holes
 * and the block sharing of clones.
 *
 * Invariants:
 *  1. A write (or copy into a file) changes the data, mtime, ctime and,
 *     for a writer without CAP_FSETID, clears S_ISUID/S_ISGID in one
 *     transaction: no crash shows new data with the old set-ID bits.
 *  2. Data calls take the inode lock only to read and change the mode
 *     (set-ID clearing); the store orders concurrent writes itself.
 *  3. chattr +i and +a (fs.h) are checked against the onode read before
 *     the change: no data change of an immutable file; of an append-only
 *     one only writes at its size, and fallocate that changes no byte.
 *     The kernel serialises a file's writes at its end (the inode lock
 *     of an O_APPEND write), so "at its size" is exact for them.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/fs_internal.h"

/* A regular file: 0, -EISDIR or other_err. */
static int reg_stat(struct pfs_fs *fs, uint64_t ino, struct pfs_onode *o, int other_err)
{
	int ret = pfs_fs_stat(fs, ino, o);

	if (ret)
		return ret;
	if (S_ISDIR(o->mode))
		return -EISDIR;
	return S_ISREG(o->mode) ? 0 : other_err;
}

/* An inode with data to read (a regular file or a symlink): 0, -EISDIR,
 * -EINVAL. */
static int data_stat(struct pfs_fs *fs, uint64_t ino)
{
	struct pfs_onode o;
	int ret = pfs_fs_stat(fs, ino, &o);

	if (ret)
		return ret;
	if (S_ISDIR(o.mode))
		return -EISDIR;
	return S_ISREG(o.mode) || S_ISLNK(o.mode) ? 0 : -EINVAL;
}

ssize_t pfs_fs_read(struct pfs_fs *fs, uint64_t ino, uint64_t off, size_t len, void *buf)
{
	int ret = data_stat(fs, ino);

	return ret ? ret : pfs_store_read(fs->st, ino, off, len, buf);
}

ssize_t pfs_fs_scrub(struct pfs_fs *fs, uint64_t ino, uint64_t off, size_t len, void *buf)
{
	int ret = data_stat(fs, ino);

	return ret ? ret : pfs_store_scrub(fs->st, ino, off, len, buf);
}

/*
 * Submit t (data changes of ino already in it) with ino's mtime and ctime
 * set to now and its set-ID bits cleared for cred (invariant 1); flags
 * for pfs_store_submit.
 */
static int data_submit(struct pfs_fs *fs, struct pfs_txn *t, uint64_t ino,
		       const struct pfs_fs_cred *cred, int flags)
{
	struct pfs_attr a = { 0 };
	uint32_t mask = PFS_ATTR_MTIME | PFS_ATTR_CTIME, kill;
	pthread_mutex_t *il = NULL;
	struct pfs_commit tok;
	struct pfs_onode o;
	int ret;

	a.mtime = a.ctime = pfs_fs_now();
	if (pfs_fs_cred_kills(cred)) {
		il = pfs_fs_ilock(fs, ino);
		pthread_mutex_lock(il);
		ret = pfs_fs_stat(fs, ino, &o);
		if (ret)
			goto out;
		kill = pfs_fs_kill_suid(o.mode, o.gid, cred);
		if (kill) {
			a.mode = o.mode & ~kill;
			mask |= PFS_ATTR_MODE;
		}
	}
	pfs_txn_setattr(t, ino, &a, mask);
	ret = pfs_store_submit(fs->st, t, flags, &tok);
	if (!ret)
		pfs_fs_note_commit(fs, &ino, 1, &tok);
out:
	if (il)
		pthread_mutex_unlock(il);
	return ret;
}

ssize_t pfs_fs_write(struct pfs_fs *fs, uint64_t ino, uint64_t off, size_t len,
		     const void *buf, const struct pfs_fs_cred *cred)
{
	struct pfs_onode o;
	struct pfs_txn t;
	int ret = reg_stat(fs, ino, &o, -EINVAL);

	if (ret)
		return ret;
	/* invariant 3 */
	if ((o.attr_flags & FS_IMMUTABLE_FL) || ((o.attr_flags & FS_APPEND_FL) && off != o.size))
		return -EPERM;
	if (off + len < off)
		return -EFBIG;
	if (!len)
		return 0;
	pfs_txn_init(&t);
	pfs_txn_write(&t, ino, off, len, buf);
	ret = data_submit(fs, &t, ino, cred, 0);
	pfs_txn_fini(&t);
	return ret ? ret : (ssize_t)len;
}

#define ZERO_CHUNK (1u << 20)

/* Write zeros over the holes of [off, end) (mode 0 / KEEP_SIZE). */
static int fill_holes(struct pfs_fs *fs, struct pfs_txn *t, uint64_t ino, uint64_t size,
		      uint64_t off, uint64_t end, const void *zeros)
{
	while (off < end) {
		uint64_t hole, data, stop;
		int ret;

		if (off >= size) {
			hole = off;
			data = end;
		} else {
			ret = pfs_store_seek(fs->st, ino, off, true, &hole);
			if (ret)
				return ret;
			if (hole >= end)
				return 0;
			ret = pfs_store_seek(fs->st, ino, hole, false, &data);
			if (ret == -ENXIO)
				data = end;
			else if (ret)
				return ret;
		}
		stop = data < end ? data : end;
		for (uint64_t p = hole; p < stop;) {
			uint64_t n = stop - p < ZERO_CHUNK ? stop - p : ZERO_CHUNK;

			pfs_txn_write(t, ino, p, n, zeros);
			p += n;
		}
		off = stop;
	}
	return 0;
}

int pfs_fs_fallocate(struct pfs_fs *fs, uint64_t ino, int mode, uint64_t off, uint64_t len)
{
	bool keep = mode & FALLOC_FL_KEEP_SIZE;
	int kind = mode & ~FALLOC_FL_KEEP_SIZE;
	uint64_t end = off + len;
	void *zeros = NULL;
	struct pfs_onode o;
	struct pfs_txn t;
	int ret;

	if (kind != 0 && kind != FALLOC_FL_PUNCH_HOLE && kind != FALLOC_FL_ZERO_RANGE)
		return -EOPNOTSUPP;
	if (kind == FALLOC_FL_PUNCH_HOLE && !keep)
		return -EOPNOTSUPP;
	if (!len)
		return -EINVAL;
	if (end < off)
		return -EFBIG;
	ret = reg_stat(fs, ino, &o, -ENODEV);
	if (ret)
		return ret;
	/* invariant 3: vfs_fallocate's rules */
	if ((o.attr_flags & FS_IMMUTABLE_FL) || ((o.attr_flags & FS_APPEND_FL) && kind))
		return -EPERM;
	pfs_txn_init(&t);
	switch (kind) {
	case 0:
		zeros = calloc(1, ZERO_CHUNK);
		if (!zeros) {
			ret = -ENOMEM;
			goto out;
		}
		if (keep && end > o.size)
			end = o.size;
		/* past the size, the zeros written extend it (mode 0) */
		ret = fill_holes(fs, &t, ino, o.size, off, end, zeros);
		break;
	case FALLOC_FL_PUNCH_HOLE:
		if (off < o.size)
			pfs_txn_zero(&t, ino, off, (end < o.size ? end : o.size) - off);
		break;
	case FALLOC_FL_ZERO_RANGE:
		pfs_txn_zero(&t, ino, off, len);
		if (!keep && end > o.size)
			pfs_txn_truncate(&t, ino, end);
		break;
	}
	/* a punch gives space back: it works when full */
	if (!ret)
		ret = data_submit(fs, &t, ino, NULL,
				  kind == FALLOC_FL_PUNCH_HOLE ? PFS_SUBMIT_RESERVE : 0);
out:
	free(zeros);
	pfs_txn_fini(&t);
	return ret;
}

int pfs_fs_lseek(struct pfs_fs *fs, uint64_t ino, uint64_t off, int whence, uint64_t *result)
{
	struct pfs_onode o;
	int ret;

	if (whence != SEEK_DATA && whence != SEEK_HOLE)
		return -EINVAL;
	ret = pfs_fs_stat(fs, ino, &o);
	if (ret)
		return ret;
	return pfs_store_seek(fs->st, ino, off, whence == SEEK_HOLE, result);
}

#define COPY_MAX (1u << 20)	/* bytes copied (not cloned) by one call */

ssize_t pfs_fs_copy_range(struct pfs_fs *fs, uint64_t ino_in, uint64_t off_in,
			  uint64_t ino_out, uint64_t off_out, size_t len,
			  const struct pfs_fs_cred *cred)
{
	uint32_t bs = fs->block_size;
	struct pfs_onode si, so;
	uint64_t head = 0, mid = 0, tail;
	uint8_t *buf = NULL;
	struct pfs_txn t;
	ssize_t r;
	int ret;

	ret = reg_stat(fs, ino_in, &si, -EINVAL);
	if (!ret)
		ret = reg_stat(fs, ino_out, &so, -EINVAL);
	if (!ret)
		ret = pfs_fs_fl_refuse(&so, PFS_FS_FL_LOCKED);	/* invariant 3 */
	if (ret)
		return ret;
	if (off_in >= si.size || !len)
		return 0;
	if (len > si.size - off_in)
		len = (size_t)(si.size - off_in);
	if (off_out + len < off_out)
		return -EFBIG;
	if (ino_in == ino_out && off_in < off_out + len && off_out < off_in + len)
		return -EINVAL;
	/* clone the whole blocks at matching block offsets, copy the edges */
	if (off_in % bs == off_out % bs) {
		head = (bs - off_in % bs) % bs;
		if (head > len)
			head = len;
		mid = (len - head) / bs * (uint64_t)bs;
		/* a range to src's end whose destination ends at or past dst's
		 * end clones its last block too (bytes past the end are zeros:
		 * a compressed extent is shared whole, not unpacked) */
		if (off_in + len == si.size && off_out + len >= so.size)
			mid = len - head;
	}
	tail = len - head - mid;
	if (head + tail > COPY_MAX) {
		/* misaligned: copy a part now; the caller comes back for more */
		if (!mid)
			tail = COPY_MAX;
		else
			tail = 0;
		if (head > COPY_MAX)
			head = COPY_MAX, tail = 0;
		len = head + mid + tail;
	}
	if (head + tail) {
		buf = malloc(head + tail);
		if (!buf)
			return -ENOMEM;
	}
	if (head) {
		r = pfs_store_read(fs->st, ino_in, off_in, head, buf);
		if (r < 0) {
			ret = (int)r;
			goto out_free;
		}
		memset(buf + r, 0, head - (uint64_t)r);
	}
	if (tail) {
		r = pfs_store_read(fs->st, ino_in, off_in + head + mid, tail, buf + head);
		if (r < 0) {
			ret = (int)r;
			goto out_free;
		}
		memset(buf + head + r, 0, tail - (uint64_t)r);
	}
	pfs_txn_init(&t);
	if (head)
		pfs_txn_write(&t, ino_out, off_out, head, buf);
	if (mid)
		pfs_txn_clone_range(&t, ino_in, off_in + head, ino_out, off_out + head, mid);
	if (tail)
		pfs_txn_write(&t, ino_out, off_out + head + mid, tail, buf + head);
	ret = data_submit(fs, &t, ino_out, cred, 0);
	pfs_txn_fini(&t);
out_free:
	free(buf);
	return ret ? ret : (ssize_t)len;
}
