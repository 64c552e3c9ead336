/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * posfs device layer (src/io): the only code in posfs that talks to a block
 * device or an image file.
 *
 * A struct pfs_dev is an opened device with a backend behind an ops table,
 * in the manner of e2fsprogs' io_manager:
 *
 *   sync    pread/pwrite/fdatasync; the backend of tools and tests
 *   uring   io_uring with batching and registered buffers; the daemon's
 *   mem     a device that lives in memory (tests, crash-state images)
 *   record  wraps another device and keeps every write with its data and
 *           every flush, so that crash tests can rebuild the device as it
 *           was after any prefix of the write stream
 *   hook    wraps another device and calls back before each write (fsck
 *           saves the old contents in its undo file there)
 *
 * Each backend also discards (pfs_dev_discard): BLKDISCARD on a block
 * device, a punched hole in an image file, zeros in memory; the recording
 * device records discards as events of their own.
 *
 * Every function returns 0 (or a count) on success and a negative errno on
 * failure; errno is never used to report an error, and nothing here prints.
 *
 * Alignment: with O_DIRECT in effect, buffers must be aligned to
 * info.dio_mem_align and offsets and lengths to info.logical_sector.
 * pfs_dev_buf_alloc() returns memory suitably aligned for any device.
 * Every backend enforces the same alignment rules (-EINVAL otherwise), so a
 * bug that only O_DIRECT would reveal shows up in tests on any backend.
 */
#ifndef POSFS_IO_H
#define POSFS_IO_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>

#ifdef __cplusplus
extern "C" {
#endif

struct pfs_dev;
struct pfs_ioq;
struct pfs_devrec;

/* Backend choice at open. */
enum pfs_dev_backend {
	PFS_DEV_AUTO = 0,	/* uring when the kernel has it, else sync */
	PFS_DEV_SYNC = 1,
	PFS_DEV_URING = 2,
};

/* Where the atomic-write unit came from. */
enum pfs_atomic_source {
	PFS_ATOMIC_NONE = 0,	/* nothing known: only the logical sector */
	PFS_ATOMIC_STATX = 1,	/* statx STATX_WRITE_ATOMIC */
	PFS_ATOMIC_NVME = 2,	/* NVMe identify: AWUPF / NAWUPF */
};

struct pfs_dev_opts {
	enum pfs_dev_backend backend;
	bool readonly;		/* O_RDONLY; writes return -EROFS */
	bool exclusive;		/* the claim of claim.c below: one per device,
				 * by whatever path. Busy -> -EBUSY */
	bool buffered;		/* do not even try O_DIRECT */
	unsigned queue_depth;	/* io_uring ring entries; 0 = default (64) */
};

struct pfs_dev_info {
	uint64_t size;			/* bytes, rounded down to logical_sector */
	uint32_t logical_sector;	/* smallest addressable unit, bytes */
	uint32_t physical_sector;	/* bytes */
	uint32_t dio_mem_align;		/* buffer alignment needed, bytes:
					 * statx STATX_DIOALIGN, else 4096 */
	uint32_t atomic_write_unit;	/* bytes written atomically on power
					 * failure; logical_sector when unknown */
	enum pfs_atomic_source atomic_source;
	/*
	 * A write is atomic when its length is in [atomic_write_min,
	 * atomic_write_unit] and its offset a multiple of its length (NVMe:
	 * any length up to the unit inside one aligned unit; min is then
	 * logical_sector). PFS_ATOMIC_STATX: the kernel promises this only
	 * for writes issued with RWF_ATOMIC and O_DIRECT; pfs_dev_pwrite and
	 * queued writes add RWF_ATOMIC to every write whose length is a power
	 * of two in that range, and STATX is reported only with O_DIRECT.
	 */
	uint32_t atomic_write_min;
	bool is_blockdev;
	bool direct;		/* O_DIRECT in effect */
	bool direct_refused;	/* O_DIRECT was asked for and refused by the
				 * file system (ramfs, tmpfs before Linux
				 * 6.6...): buffered fallback */
	bool uring;		/* io_uring backend in effect */
	bool readonly;
	bool nvme;		/* an NVMe namespace, identified via libnvme */
	uint32_t nvme_nsid;
	char nvme_model[41];	/* NUL-terminated, trailing blanks trimmed */
	char nvme_serial[21];
	char backend_name[16];	/* "sync", "uring", "mem", "record", "hook" */
};

/* ---- dev.c: open, close, synchronous I/O -------------------------------- */

/*
 * Open a block device or a regular file. opts may be NULL (defaults: AUTO,
 * read-write, not exclusive, O_DIRECT tried). Errors: -ENOENT, -EACCES,
 * -EBUSY (exclusive and busy), -ENOTBLK (neither a block device nor a
 * regular file), -EINVAL (bad options: unknown backend, queue_depth above
 * 4096), -EOPNOTSUPP or io_uring_queue_init's error (PFS_DEV_URING without
 * a usable io_uring), -ENOMEM, other -errno from open(2). *devp is NULL on
 * failure.
 */
int pfs_dev_open(const char *path, const struct pfs_dev_opts *opts,
		 struct pfs_dev **devp);

/*
 * A device held in memory, zero-filled, of size bytes (a multiple of
 * sector). sector is its logical (and physical) sector size, and also its
 * dio_mem_align: a power of two in [512, 65536]. The image is lost at
 * close. Used by unit and crash tests. Errors: -EINVAL, -ENOMEM.
 */
int pfs_dev_open_mem(uint64_t size, uint32_t sector, struct pfs_dev **devp);

/*
 * The same, over the caller's image of size bytes, which it keeps: not
 * copied, not zeroed, not freed at close; it must outlive the device.
 * The fuzz targets open one image buffer again and again this way.
 */
int pfs_dev_open_mem_over(void *image, uint64_t size, uint32_t sector,
			  struct pfs_dev **devp);

/* Close: waits for nothing (callers flush first); frees all. NULL is fine.
 * Destroy the device's queues first. */
void pfs_dev_close(struct pfs_dev *dev);

const struct pfs_dev_info *pfs_dev_info(const struct pfs_dev *dev);

/*
 * Synchronous I/O, thread-safe. Full transfers only: a short read or write
 * is retried until complete (end of file inside [0, size) reads as
 * zeros). A range outside [0, size) is -EINVAL. Misaligned buffer, offset or
 * length: -EINVAL. Writes on a read-only device: -EROFS.
 */
int pfs_dev_pread(struct pfs_dev *dev, void *buf, size_t len, uint64_t off);
int pfs_dev_pwrite(struct pfs_dev *dev, const void *buf, size_t len,
		   uint64_t off);

/* Make every completed write durable (fdatasync / NVMe flush). */
int pfs_dev_flush(struct pfs_dev *dev);

/*
 * Discard [off, off + len): the device is told those bytes hold nothing
 * of value (TRIM, UNMAP), and they read back as zeros or as anything
 * after. sync and uring: BLKDISCARD on a block device,
 * fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) on an image file
 * (the file keeps its size and gives the space back to its file system);
 * mem: zeros; record: forwarded and recorded (PFS_REC_DISCARD); hook:
 * before_write is called first, as for a write. A discard needs no flush
 * and is not ordered with queued I/O: the caller discards only what no
 * write in flight touches and no crash can make it need again.
 * Offset and length aligned to logical_sector and inside [0, size), else
 * -EINVAL; a zero length is a no-op. Errors: -EROFS (read-only),
 * -EOPNOTSUPP (the device or the file system under the image cannot
 * discard: nothing was changed), other -errno of the ioctl or fallocate.
 */
int pfs_dev_discard(struct pfs_dev *dev, uint64_t off, uint64_t len);

/*
 * Aligned buffer for device I/O (aligned for any backend: 4096 bytes),
 * zero-filled. Free with pfs_dev_buf_free(). NULL on failure.
 */
void *pfs_dev_buf_alloc(size_t len);
void pfs_dev_buf_free(void *buf);

/*
 * One reusable device I/O buffer per thread and per use, for hot paths: a
 * request then does not map, fault in and unmap a fresh one. Declare a
 * struct pfs_thread_buf per use, initialised with PFS_THREAD_BUF_INIT;
 * pfs_thread_buf_get returns the calling thread's buffer, aligned as
 * pfs_dev_buf_alloc's, of at least len bytes (grown as needed, its bytes
 * not zeroed), or NULL when out of memory. It stays the thread's until
 * the thread ends. Using it twice at once in one thread is the caller's
 * to avoid.
 */
struct pfs_thread_buf {
	pthread_once_t once;
	pthread_key_t key;
};
#define PFS_THREAD_BUF_INIT { PTHREAD_ONCE_INIT, 0 }

void *pfs_thread_buf_get(struct pfs_thread_buf *tb, size_t len);

/* ---- claim.c: one claim per device, whatever the path ------------------- */

/*
 * A posfs image is one device whether it is reached through its file or
 * through any loop device over that file. pfs_dev_open with exclusive set
 * claims it so (-EBUSY when another holds it):
 *   - a regular file: flock(LOCK_EX | LOCK_NB) on it;
 *   - a block device: O_EXCL; a loop device over a file also takes the
 *     flock on that file (found by LOOP_GET_STATUS64's device and inode),
 *     held until pfs_dev_close;
 *   - and no other loop device over the same file may be busy (mounted by
 *     the kernel, or open O_EXCL by a program): each is tested with an
 *     O_EXCL open, not held.
 * Two posfs programs thus meet at the file's flock by whatever paths they
 * came. Read-only, non-exclusive opens (fsck -n) claim nothing.
 */

/* What pfs_dev_in_use found. */
enum pfs_dev_user {
	PFS_DEV_FREE = 0,	/* nothing holds it */
	PFS_DEV_LOOPED = 1,	/* a loop device (not busy) is over the same file */
	PFS_DEV_BUSY = 2,	/* mounted, claimed, or a loop device over the
				 * same file busy */
};

#define PFS_DEV_WHY_SIZE 8256	/* two paths and the words between */

struct pfs_dev_use {
	enum pfs_dev_user state;
	/* For LOOPED and BUSY, what holds it, as a phrase to follow "PATH is
	 * in use: ": "mounted on /mnt", "its file /img is mounted on /mnt",
	 * "loop device /dev/loop1 over the same file is mounted on /mnt",
	 * "locked by fsck.posfs (pid 42)", "open exclusively by another
	 * program", "attached to /dev/loop1". Empty for FREE. */
	char why[PFS_DEV_WHY_SIZE];
};

/*
 * Who holds the device at path, for a tool's message or its refusal
 * before any claim (fsck will not repair a mounted file system, mkfs will
 * not format one). Looks, in order, at the mount table (read once; each
 * source compared by what it is, device number or file, not by its name),
 * the flock holders of the file (/proc/locks), an O_EXCL open of a block
 * device, the loop devices over the same file. The first that holds it
 * makes it BUSY. Claims nothing (the O_EXCL tests are closed at once), so
 * a claim may still fail after FREE, or succeed after BUSY when the holder
 * has gone. Errors: -ENOENT, -EACCES (stat of path), -ENOTBLK (neither a
 * block device nor a regular file), -ENOMEM; u->state is FREE then.
 */
int pfs_dev_in_use(const char *path, struct pfs_dev_use *u);

/*
 * One line of /proc/self/mountinfo. The strings point into the line, with
 * the kernel's octal escapes (\040 for a space, \011 a tab, \012 a
 * newline, \134 a backslash) decoded.
 */
struct pfs_mount_entry {
	unsigned major, minor;	/* the mount's st_dev (field 3) */
	const char *mountpoint;
	const char *fstype;
	const char *source;
};

/*
 * Parse one mountinfo line in place (a trailing newline is dropped).
 * Errors: -EINVAL (not a mountinfo line; *m is then undefined).
 */
int pfs_mountinfo_parse(char *line, struct pfs_mount_entry *m);

/*
 * Call fn for every mount of /proc/self/mountinfo, in its order, until fn
 * returns nonzero, which is returned. Lines that do not parse are skipped.
 * Errors: fopen's -errno, -ENOMEM.
 */
int pfs_mountinfo_each(int (*fn)(void *arg, const struct pfs_mount_entry *m),
		       void *arg);

/* ---- ioq.c: batched asynchronous I/O ------------------------------------ */

/*
 * An I/O queue batches reads, writes and flushes and submits them at once
 * (one io_uring_enter for the batch on the uring backend; in order, one by
 * one, on the others). A queue belongs to one thread at a time: the caller
 * serialises its use (a shard owns its queue). Several queues may be open
 * on one device and used from different threads concurrently.
 *
 * Ordering: requests queued before a flush complete before the flush is
 * issued, and the flush completes before any request queued after it is
 * issued (a flush is a barrier in the queue). Requests between two flushes
 * may complete in any order.
 */
enum pfs_ioq_op {
	PFS_IO_READ = 0,
	PFS_IO_WRITE = 1,
	PFS_IO_FLUSH = 2,
};

struct pfs_io {
	enum pfs_ioq_op op;
	void *buf;		/* READ/WRITE; aligned as above */
	size_t len;
	uint64_t off;
	int result;		/* set at completion: 0 or -errno */
	int buf_index;		/* registered buffer index, or -1 */
	void *priv;		/* the caller's */
};

/* depth: most requests in flight; 0 = the device's opts->queue_depth (64).
 * Errors: -EINVAL (depth above 4096), -ENOMEM, io_uring_queue_init's. */
int pfs_ioq_create(struct pfs_dev *dev, unsigned depth, struct pfs_ioq **qp);
void pfs_ioq_destroy(struct pfs_ioq *q);

/*
 * Register buffers with the kernel for this queue (fixed buffers: saves a
 * page pin per I/O). Optional; a no-op returning 0 on backends without it.
 * A struct pfs_io then names its buffer by buf_index (buf must point inside
 * that buffer); buf_index is checked the same way on every backend.
 * Replaces any set registered before; n == 0 just unregisters. On failure
 * no buffer is registered. Errors: -EINVAL (NULL or empty buffer, a buffer
 * over 1 GiB, more than 16384), -ENOMEM, io_uring_register_buffers'.
 */
int pfs_ioq_register_buffers(struct pfs_ioq *q, void *const *bufs,
			     const size_t *lens, unsigned n);

/*
 * Submit n requests and wait until all have completed. Returns 0 when all
 * succeeded, else the first failure's -errno (each io->result says which).
 * Any n is accepted: more than the queue depth is split into rounds.
 * Each request is checked as pfs_dev_pread/pwrite check theirs (-EINVAL,
 * -EROFS in its result). When a request fails, the rest of its segment
 * still runs, but the flush after it and everything queued after that
 * flush are not issued: their result is -ECANCELED (a barrier whose
 * writes failed must not let later writes through).
 */
int pfs_ioq_run(struct pfs_ioq *q, struct pfs_io *ios, unsigned n);

/* ---- record.c: the recording device for crash tests --------------------- */

/*
 * pfs_devrec_wrap() returns a device that forwards everything to inner and
 * records each write (offset, length, a copy of the data) and each flush,
 * in order of completion. Marks are caller-chosen labels (an fsync
 * acknowledged, a transaction committed) placed in the same stream.
 * The recording device owns inner: closing it closes inner (when wrap
 * fails, inner stays the caller's). Writes and flushes through the
 * recording device are serialised (one at a time), so the stream is an
 * exact history; a write or flush that fails is not recorded.
 * pfs_devrec_of() gives the recording of a device made by pfs_devrec_wrap
 * (NULL for any other device).
 */
enum pfs_devrec_kind {
	PFS_REC_WRITE = 0,
	PFS_REC_FLUSH = 1,
	PFS_REC_MARK = 2,
	PFS_REC_DISCARD = 3,	/* a discard that inner accepted */
};

/*
 * A discarded range may read back as zeros or as garbage (the old bytes,
 * or anything): a crash test may rebuild it either way (apply writes
 * zeros, or pfs_devrec_apply_discard with its own fill).
 */
struct pfs_devrec_event {
	enum pfs_devrec_kind kind;
	uint64_t off;		/* WRITE, DISCARD */
	uint32_t len;		/* WRITE, DISCARD (a longer discard is
				 * recorded as several events) */
	const void *data;	/* WRITE: the bytes written */
	uint64_t mark;		/* MARK: the caller's label */
};

int pfs_devrec_wrap(struct pfs_dev *inner, struct pfs_dev **devp);
struct pfs_devrec *pfs_devrec_of(struct pfs_dev *dev);

/* Append a mark to the stream. */
int pfs_devrec_mark(struct pfs_devrec *rec, uint64_t mark);

/* Number of events so far, and event i (NULL when i >= count). The event
 * stays valid until pfs_devrec_reset() or the device closes; event data is
 * 4096-byte aligned. */
size_t pfs_devrec_count(const struct pfs_devrec *rec);
const struct pfs_devrec_event *pfs_devrec_event(const struct pfs_devrec *rec,
						size_t i);

/* Forget every event recorded so far (the device content stays). */
void pfs_devrec_reset(struct pfs_devrec *rec);

/*
 * Apply events [from, to) to target: writes are written, discards written
 * as zeros, flushes and marks skipped. Crash tests open a copy of the base image (or a mem device),
 * apply a prefix, then apply a chosen subset of the writes after it.
 * Errors: those of pfs_dev_pwrite on target.
 */
int pfs_devrec_apply(const struct pfs_devrec *rec, size_t from, size_t to,
		     struct pfs_dev *target);

/* Write just event i (which must be a WRITE) to target; with torn_len
 * nonzero, only its first torn_len bytes (a multiple of the target's
 * logical sector), to model a torn write. */
int pfs_devrec_apply_one(const struct pfs_devrec *rec, size_t i,
			 uint32_t torn_len, struct pfs_dev *target);

/* Write event i (which must be a DISCARD) to target as its range filled
 * with the byte fill: the garbage a device may return for discarded
 * blocks. Errors: -EINVAL, -ENOMEM, those of pfs_dev_pwrite. */
int pfs_devrec_apply_discard(const struct pfs_devrec *rec, size_t i, uint8_t fill,
			     struct pfs_dev *target);

/* ---- hook.c: a device that calls back before each write ----------------- */

/*
 * pfs_dev_hook_wrap() returns a device that forwards everything to inner,
 * and before each write (and each discard) calls before_write(arg, inner,
 * off, len) with the range already checked (aligned, inside the device; a zero-length write
 * is a no-op and calls nothing). before_write returns 0 or a -errno: a
 * nonzero return fails the write with that error (a positive one with
 * -EIO) and inner is not written. Writes through the hook device are
 * serialised (one at a time, the callback included), so the callback sees
 * inner as it is before this write and after every earlier one, and may
 * read it. Reads and flushes go straight to inner; queued writes (pfs_ioq)
 * go through the hook like the others. The hook device owns inner:
 * closing it closes inner (when wrap fails, inner stays the caller's).
 * Errors: -EINVAL (NULL inner, hook or before_write), -ENOMEM.
 */
struct pfs_dev_hook {
	int (*before_write)(void *arg, struct pfs_dev *inner, uint64_t off,
			    size_t len);
	void *arg;
};

int pfs_dev_hook_wrap(struct pfs_dev *inner, const struct pfs_dev_hook *hook,
		      struct pfs_dev **devp);

#ifdef __cplusplus
}
#endif

#endif /* POSFS_IO_H */
