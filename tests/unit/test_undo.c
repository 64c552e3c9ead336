/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_undo.c: the libcheck suite of src/check/undo.c, the undo file.
 *
 * Images and undo files live in a directory made under $TMPDIR or
 * /var/tmp (never on a tmpfs), removed at the end whatever the outcome.
 * The pattern of every test: fill a device with random bytes, keep a copy,
 * create an undo file, wrap the device with a hook device whose callback
 * saves through pfs_undo_save(), write through the hook device, close the
 * undo file, restore, and compare the whole device with the copy bit for
 * bit. A crash of fsck is a child process that exits without closing.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "posfs/io.h"
#include "posfs/check.h"

#define KiB		1024ull
#define MiB		(1024ull * 1024)
#define UNIT		4096u
#define TMPFS_MAGIC_	0x01021994
#define RAMFS_MAGIC_	0x858458f6

static char g_dir[256];		/* scratch directory, not on tmpfs */

/* ---- helpers ------------------------------------------------------------ */

static uint64_t rnd_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rnd_below(uint64_t *s, uint64_t n)
{
	return rnd_next(s) % n;
}

static void rnd_fill(uint64_t *s, void *buf, size_t len)
{
	unsigned char *p = buf;
	size_t i;

	for (i = 0; i < len; i += 8) {
		uint64_t v = rnd_next(s);
		size_t k = len - i < 8 ? len - i : 8;

		memcpy(p + i, &v, k);
	}
}

static void path_in(char *out, size_t outlen, const char *name)
{
	int n = snprintf(out, outlen, "%s/%s", g_dir, name);

	ck_assert_msg(n > 0 && (size_t)n < outlen, "path too long");
}

/* A file of size random bytes (seed); returns a copy of its contents. */
static unsigned char *make_image(const char *path, size_t size, uint64_t seed)
{
	unsigned char *img = malloc(size);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);

	ck_assert_msg(fd >= 0, "create %s: %s", path, strerror(errno));
	ck_assert_ptr_nonnull(img);
	rnd_fill(&seed, img, size);
	ck_assert_int_eq(pwrite(fd, img, size, 0), (ssize_t)size);
	close(fd);
	return img;
}

static unsigned char *read_file(const char *path, size_t size)
{
	unsigned char *b = malloc(size + 1);
	int fd = open(path, O_RDONLY);

	ck_assert_msg(fd >= 0, "open %s: %s", path, strerror(errno));
	ck_assert_ptr_nonnull(b);
	/* the whole file, and nothing after it */
	ck_assert_int_eq(pread(fd, b, size + 1, 0), (ssize_t)size);
	close(fd);
	return b;
}

static struct pfs_dev *open_dev(const char *path, bool readonly)
{
	struct pfs_dev_opts o = { .backend = PFS_DEV_AUTO,
				  .readonly = readonly };
	struct pfs_dev *dev = NULL;
	int ret = pfs_dev_open(path, &o, &dev);

	ck_assert_msg(ret == 0, "open %s: %s", path, strerror(-ret));
	return dev;
}

static unsigned char *read_dev(struct pfs_dev *dev)
{
	size_t size = pfs_dev_info(dev)->size;
	unsigned char *b = pfs_dev_buf_alloc(size);

	ck_assert_ptr_nonnull(b);
	ck_assert_int_eq(pfs_dev_pread(dev, b, size, 0), 0);
	return b;
}

static void assert_same(const void *a, const void *b, size_t len,
			const char *what)
{
	const unsigned char *x = a, *y = b;
	size_t i;

	for (i = 0; i < len; i++)
		if (x[i] != y[i])
			break;
	ck_assert_msg(i == len, "%s: first difference at byte %zu", what, i);
}

static void assert_dev_is(struct pfs_dev *dev, const void *img,
			  const char *what)
{
	unsigned char *b = read_dev(dev);

	assert_same(b, img, pfs_dev_info(dev)->size, what);
	pfs_dev_buf_free(b);
}

static void assert_file_is(const char *path, const void *img, size_t size,
			   const char *what)
{
	unsigned char *b = read_file(path, size);

	assert_same(b, img, size, what);
	free(b);
}

static bool file_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

static int rm_one(const char *p, const struct stat *st, int flag,
		  struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(p);
}

static void rm_tree(const char *dir)
{
	nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

/* ---- fsck's view: a hook device saving into the undo file --------------- */

/* The hook's argument; u NULL once the undo file is closed. */
struct undo_hook {
	struct pfs_undo *u;
	unsigned calls;
};

static int undo_before_write(void *arg, struct pfs_dev *inner, uint64_t off,
			     size_t len)
{
	struct undo_hook *h = arg;

	h->calls++;
	return h->u ? pfs_undo_save(h->u, inner, off, len) : 0;
}

static struct pfs_dev *hook_wrap(struct pfs_dev *inner, struct undo_hook *h)
{
	struct pfs_dev_hook hook = { .before_write = undo_before_write,
				     .arg = h };
	struct pfs_dev *dev;

	ck_assert_int_eq(pfs_dev_hook_wrap(inner, &hook, &dev), 0);
	return dev;
}

/* Mark the units [off, off + len) touches in a map of the device's units. */
static void touch(unsigned char *units, uint64_t off, size_t len)
{
	uint64_t u;

	for (u = off / UNIT; u <= (off + len - 1) / UNIT; u++)
		units[u] = 1;
}

static uint64_t count_touched(const unsigned char *units, uint64_t n)
{
	uint64_t i, c = 0;

	for (i = 0; i < n; i++)
		c += units[i];
	return c;
}

/*
 * A random workload through dev (a hook device): steps writes of every
 * kind (sector-sized and unaligned to 4 KiB, whole units, the head and
 * its superblocks, queued batches with flushes, big ones, the same units
 * again and again). model follows the content; units marks what was
 * written. head: whether the identity region [4096, 12288) may be hit.
 */
/* A random multiple of step in [lo, hi]. */
static uint64_t rnd_at(uint64_t *s, uint64_t lo, uint64_t hi, uint64_t step)
{
	return lo + step * rnd_below(s, (hi - lo) / step + 1);
}

static void workload(struct pfs_dev *dev, uint64_t seed, unsigned steps,
		     bool head, unsigned char *model, unsigned char *units)
{
	const struct pfs_dev_info *in = pfs_dev_info(dev);
	const uint64_t size = in->size, sec = in->logical_sector;
	const uint64_t low = head ? 0 : 3 * UNIT;	/* first byte to hit */
	unsigned char *buf = pfs_dev_buf_alloc(1 * MiB);
	uint64_t hot[8], s = seed;
	unsigned step, i;

	ck_assert_ptr_nonnull(buf);
	ck_assert_uint_gt(size, low + 2 * MiB);
	for (i = 0; i < 8; i++)
		hot[i] = low + UNIT * rnd_below(&s, (size - low) / UNIT - 16);

	for (step = 0; step < steps; step++) {
		unsigned r = (unsigned)rnd_below(&s, 100);
		uint64_t off;
		size_t len;

		if (r < 10) {
			/* a queued batch: W W F W over hot units */
			struct pfs_ioq *q;
			struct pfs_io io[4];

			rnd_fill(&s, buf, 3 * 8192);
			for (i = 0; i < 4; i++) {
				io[i] = (struct pfs_io){ .op = PFS_IO_WRITE,
					.buf = buf + 8192 * (i < 2 ? i : 2),
					.len = rnd_at(&s, sec, 8192, sec),
					.off = hot[rnd_below(&s, 8)] +
					       2 * UNIT * (i & 1),
					.buf_index = -1 };
			}
			/* 0 and 1 never overlap: 0 on an even unit, 1 odd */
			io[0].len = io[0].len > 2 * UNIT ? 2 * UNIT : io[0].len;
			io[1].off = io[0].off + 2 * UNIT;
			io[2] = (struct pfs_io){ .op = PFS_IO_FLUSH,
						 .buf_index = -1 };
			io[3].buf = buf + 16384;
			ck_assert_int_eq(pfs_ioq_create(dev, 4, &q), 0);
			ck_assert_int_eq(pfs_ioq_run(q, io, 4), 0);
			pfs_ioq_destroy(q);
			for (i = 0; i < 4; i++) {
				if (io[i].op != PFS_IO_WRITE)
					continue;
				memcpy(model + io[i].off, io[i].buf, io[i].len);
				touch(units, io[i].off, io[i].len);
			}
			continue;
		}
		if (r < 45) {
			/* sectors, mostly not 4 KiB aligned */
			len = rnd_at(&s, sec, 24 * sec, sec);
			off = rnd_at(&s, low, size - len, sec);
		} else if (r < 70) {
			/* whole units */
			len = rnd_at(&s, UNIT, 8 * UNIT, UNIT);
			off = rnd_at(&s, low, size - len, UNIT);
		} else if (r < 85) {
			/* the same units again */
			len = rnd_at(&s, sec, 2 * UNIT, sec);
			off = hot[rnd_below(&s, 8)] + sec * rnd_below(&s, 4);
		} else if (r < 95) {
			/* the head: superblocks (if allowed) and around */
			len = rnd_at(&s, sec, 3 * UNIT, sec);
			off = rnd_at(&s, low, low + 64 * KiB - sec, sec);
		} else {
			/* big */
			len = rnd_at(&s, sec, 1 * MiB, sec);
			off = rnd_at(&s, low, size - len, sec);
		}
		rnd_fill(&s, buf, len);
		ck_assert_int_eq(pfs_dev_pwrite(dev, buf, len, off), 0);
		memcpy(model + off, buf, len);
		touch(units, off, len);
	}
	ck_assert_int_eq(pfs_dev_flush(dev), 0);
	pfs_dev_buf_free(buf);
}

/* ---- tests -------------------------------------------------------------- */

/*
 * Save, close, restore, restore again: on an image file (_i == 0), and
 * on a memory device whose size is not a multiple of 4 KiB (_i == 1: a
 * last partial unit, 512-byte sectors).
 */
START_TEST(test_undo_roundtrip)
{
	const size_t size = _i == 0 ? 8 * MiB : 4 * MiB + 1536;
	const uint64_t nunits = (size + UNIT - 1) / UNIT;
	struct undo_hook h = { 0 };
	struct pfs_dev *inner, *dev;
	unsigned char *orig, *model, *tail, *units = calloc(nunits, 1);
	char img[PATH_MAX], upath[PATH_MAX];
	uint64_t n = 0, touched;

	path_in(img, sizeof(img), "roundtrip.img");
	path_in(upath, sizeof(upath), "roundtrip.undo");
	unlink(upath);
	ck_assert_ptr_nonnull(units);
	if (_i == 0) {
		orig = make_image(img, size, 1);
		inner = open_dev(img, false);
	} else {
		uint64_t s = 2;
		unsigned char *b = pfs_dev_buf_alloc(size);

		ck_assert_int_eq(pfs_dev_open_mem(size, 512, &inner), 0);
		orig = malloc(size);
		rnd_fill(&s, orig, size);
		memcpy(b, orig, size);
		ck_assert_int_eq(pfs_dev_pwrite(inner, b, size, 0), 0);
		pfs_dev_buf_free(b);
	}
	ck_assert_uint_eq(pfs_dev_info(inner)->size, size);
	model = malloc(size);
	memcpy(model, orig, size);

	ck_assert_int_eq(pfs_undo_create(upath, inner, &h.u), 0);
	ck_assert_uint_eq(pfs_undo_units(h.u), 0);
	dev = hook_wrap(inner, &h);
	workload(dev, 100 + _i, 400, true, model, units);
	/* the end of the device: on the memory device, the partial unit */
	tail = pfs_dev_buf_alloc(8192);
	memset(tail, 0x3c, 8192);
	ck_assert_int_eq(pfs_dev_pwrite(dev, tail, 2048, size - 2048), 0);
	memcpy(model + size - 2048, tail, 2048);
	touch(units, size - 2048, 2048);
	pfs_dev_buf_free(tail);
	touched = count_touched(units, nunits);
	ck_assert_uint_eq(pfs_undo_units(h.u), touched);
	assert_dev_is(dev, model, "device after the workload");
	ck_assert_int_eq(pfs_undo_close(h.u), 0);
	h.u = NULL;

	/* restore through the hook device, which now saves nothing */
	ck_assert_int_eq(pfs_undo_restore(upath, dev, false, &n), 0);
	ck_assert_uint_eq(n, touched);
	assert_dev_is(dev, orig, "device after restore");
	n = 0;
	ck_assert_int_eq(pfs_undo_restore(upath, dev, false, &n), 0);
	ck_assert_uint_eq(n, touched);
	assert_dev_is(dev, orig, "device after a second restore");
	ck_assert_int_eq(pfs_undo_restore(upath, dev, false, NULL), 0);
	pfs_dev_close(dev);
	if (_i == 0)
		assert_file_is(img, orig, size, "image file after restore");
	unlink(img);
	unlink(upath);
	free(orig);
	free(model);
	free(units);
}
END_TEST

/* The undo file of a run that wrote units (list), closed. */
static void make_undo(const char *img, const char *upath, size_t size,
		      uint64_t seed, const uint64_t *offs, unsigned n,
		      unsigned char **origp)
{
	struct undo_hook h = { 0 };
	struct pfs_dev *dev;
	unsigned char *b = pfs_dev_buf_alloc(UNIT);
	unsigned i;

	*origp = make_image(img, size, seed);
	unlink(upath);
	dev = open_dev(img, false);
	ck_assert_int_eq(pfs_undo_create(upath, dev, &h.u), 0);
	dev = hook_wrap(dev, &h);
	for (i = 0; i < n; i++) {
		memset(b, 0xc0 + i, UNIT);
		ck_assert_int_eq(pfs_dev_pwrite(dev, b, UNIT, offs[i]), 0);
	}
	ck_assert_uint_eq(pfs_undo_units(h.u), n);
	ck_assert_int_eq(pfs_undo_close(h.u), 0);
	pfs_dev_close(dev);
	pfs_dev_buf_free(b);
}

/* Restore refuses another device, or this one changed since; force. */
START_TEST(test_undo_identity)
{
	const size_t size = 4 * MiB;
	/* both superblocks, unit 0, and units further on */
	const uint64_t offs[] = { 4096, 8192, 0, 65536, 1 * MiB, 3 * MiB };
	const unsigned n = sizeof(offs) / sizeof(offs[0]);
	char a[PATH_MAX], b[PATH_MAX], c[PATH_MAX], upath[PATH_MAX];
	unsigned char *orig_a, *orig_b, *orig_c, *expect, *after;
	unsigned char *blk = pfs_dev_buf_alloc(UNIT);
	struct pfs_dev *dev;
	uint64_t got = 99;
	unsigned i;

	path_in(a, sizeof(a), "id-a.img");
	path_in(b, sizeof(b), "id-b.img");
	path_in(c, sizeof(c), "id-c.img");
	path_in(upath, sizeof(upath), "id.undo");
	make_undo(a, upath, size, 10, offs, n, &orig_a);
	after = read_file(a, size);
	orig_b = make_image(b, size, 11);
	orig_c = make_image(c, size + 4096, 12);

	/* another device of the same size, another size */
	dev = open_dev(b, false);
	ck_assert_int_eq(pfs_undo_restore(upath, dev, false, &got), -EUCLEAN);
	ck_assert_uint_eq(got, 0);
	pfs_dev_close(dev);
	assert_file_is(b, orig_b, size, "other device refused");
	dev = open_dev(c, false);
	ck_assert_int_eq(pfs_undo_restore(upath, dev, false, NULL), -EUCLEAN);
	pfs_dev_close(dev);
	assert_file_is(c, orig_c, size + 4096, "other size refused");

	/* force: the saved units land on b, the rest of b stays */
	dev = open_dev(b, false);
	ck_assert_int_eq(pfs_undo_restore(upath, dev, true, &got), 0);
	ck_assert_uint_eq(got, n);
	pfs_dev_close(dev);
	expect = malloc(size);
	memcpy(expect, orig_b, size);
	for (i = 0; i < n; i++)
		memcpy(expect + offs[i], orig_a + offs[i], UNIT);
	assert_file_is(b, expect, size, "forced restore on another device");

	/* the device changed its superblock since (mounted): refused */
	dev = open_dev(a, false);
	memset(blk, 0x11, UNIT);
	ck_assert_int_eq(pfs_dev_pwrite(dev, blk, 512, 8192), 0);
	ck_assert_int_eq(pfs_undo_restore(upath, dev, false, NULL), -EUCLEAN);
	pfs_dev_close(dev);
	memset(after + 8192, 0x11, 512);	/* nothing else changed */
	assert_file_is(a, after, size, "changed device refused");
	dev = open_dev(a, false);
	ck_assert_int_eq(pfs_undo_restore(upath, dev, true, &got), 0);
	ck_assert_uint_eq(got, n);
	pfs_dev_close(dev);
	assert_file_is(a, orig_a, size, "forced restore on the changed device");
	/* back in the state before: accepted again, changes nothing */
	dev = open_dev(a, false);
	ck_assert_int_eq(pfs_undo_restore(upath, dev, false, &got), 0);
	pfs_dev_close(dev);
	assert_file_is(a, orig_a, size, "restore of a restored device");

	/* a read-only device */
	dev = open_dev(a, true);
	ck_assert_int_eq(pfs_undo_restore(upath, dev, false, NULL), -EROFS);
	pfs_dev_close(dev);

	unlink(a);
	unlink(b);
	unlink(c);
	unlink(upath);
	free(orig_a);
	free(orig_b);
	free(orig_c);
	free(expect);
	free(after);
	pfs_dev_buf_free(blk);
}
END_TEST

/* An LMDB file at path made by someone else: how depends on kind. */
static void make_lmdb(const char *path, int kind)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k = { 4, "meta" }, v = { 5, "hello" };

	unlink(path);
	ck_assert_int_eq(mdb_env_create(&env), 0);
	ck_assert_int_eq(mdb_env_set_maxdbs(env, 4), 0);
	ck_assert_int_eq(mdb_env_open(env, path, MDB_NOSUBDIR | MDB_NOLOCK,
				      0600), 0);
	ck_assert_int_eq(mdb_txn_begin(env, NULL, 0, &txn), 0);
	if (kind == 0) {		/* other databases only */
		ck_assert_int_eq(mdb_dbi_open(txn, "other", MDB_CREATE,
					      &dbi), 0);
		ck_assert_int_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
	} else if (kind == 1) {		/* "meta" a plain key */
		ck_assert_int_eq(mdb_dbi_open(txn, NULL, 0, &dbi), 0);
		ck_assert_int_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
	} else {			/* "meta" a database, no header */
		ck_assert_int_eq(mdb_dbi_open(txn, "meta", MDB_CREATE,
					      &dbi), 0);
		ck_assert_int_eq(mdb_put(txn, dbi, &k, &v, 0), 0);
	}
	ck_assert_int_eq(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

/* Files that are not undo files; create's and save's refusals. */
START_TEST(test_undo_refusals)
{
	const size_t size = 2 * MiB;
	char img[PATH_MAX], p[PATH_MAX];
	unsigned char *orig, *junk;
	struct pfs_dev *dev, *big;
	struct pfs_undo *u = (struct pfs_undo *)&u;
	uint64_t s = 3, got = 7;
	int fd, kind;

	path_in(img, sizeof(img), "refuse.img");
	path_in(p, sizeof(p), "refuse.undo");
	orig = make_image(img, size, 30);
	dev = open_dev(img, false);

	/* not undo files */
	unlink(p);
	ck_assert_int_eq(pfs_undo_restore(p, dev, false, &got), -ENOENT);
	ck_assert_uint_eq(got, 0);
	ck_assert_int_eq(pfs_undo_restore(g_dir, dev, true, NULL), -EINVAL);
	fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pfs_undo_restore(p, dev, true, NULL), -EINVAL);
	junk = malloc(64 * KiB);
	rnd_fill(&s, junk, 64 * KiB);
	ck_assert_int_eq(pwrite(fd, junk, 64 * KiB, 0), (ssize_t)(64 * KiB));
	close(fd);
	ck_assert_int_eq(pfs_undo_restore(p, dev, true, NULL), -EINVAL);
	for (kind = 0; kind < 3; kind++) {
		make_lmdb(p, kind);
		ck_assert_msg(pfs_undo_restore(p, dev, true, NULL) == -EINVAL,
			      "LMDB file of kind %d", kind);
	}
	assert_dev_is(dev, orig, "device after refused restores");

	/* create refuses an existing path and leaves it alone */
	fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, junk, 4096, 0), 4096);
	close(fd);
	ck_assert_int_eq(pfs_undo_create(p, dev, &u), -EEXIST);
	ck_assert_ptr_null(u);
	assert_file_is(p, junk, 4096, "existing file after create");
	ck_assert_int_eq(pfs_undo_create(g_dir, dev, &u), -EEXIST);
	unlink(p);
	ck_assert_int_eq(pfs_undo_create(NULL, dev, &u), -EINVAL);
	ck_assert_int_eq(pfs_undo_create(p, NULL, &u), -EINVAL);
	/* sectors above a unit: refused, nothing left behind */
	ck_assert_int_eq(pfs_dev_open_mem(1 * MiB, 8192, &big), 0);
	ck_assert_int_eq(pfs_undo_create(p, big, &u), -EINVAL);
	ck_assert(!file_exists(p));
	pfs_dev_close(big);
	ck_assert_int_eq(pfs_undo_restore(NULL, dev, false, NULL), -EINVAL);

	/* save: checked ranges, another device, nothing to do */
	ck_assert_int_eq(pfs_undo_create(p, dev, &u), 0);
	ck_assert_int_eq(pfs_undo_save(u, dev, 0, 0), 0);
	ck_assert_int_eq(pfs_undo_save(u, dev, size, 512), -EINVAL);
	ck_assert_int_eq(pfs_undo_save(u, dev, size - 512, 1024), -EINVAL);
	ck_assert_int_eq(pfs_undo_save(u, dev, UINT64_MAX - 511, 512), -EINVAL);
	ck_assert_int_eq(pfs_dev_open_mem(size * 2, 512, &big), 0);
	ck_assert_int_eq(pfs_undo_save(u, big, 0, 512), -EINVAL);
	pfs_dev_close(big);
	ck_assert_int_eq(pfs_undo_save(NULL, dev, 0, 512), -EINVAL);
	ck_assert_uint_eq(pfs_undo_units(u), 0);
	/* a byte range inside one unit, then the same unit again */
	ck_assert_int_eq(pfs_undo_save(u, dev, 4100, 3), 0);
	ck_assert_uint_eq(pfs_undo_units(u), 1);
	ck_assert_int_eq(pfs_undo_save(u, dev, 4096, 4096), 0);
	ck_assert_uint_eq(pfs_undo_units(u), 1);
	ck_assert_int_eq(pfs_undo_save(u, dev, 4095, 2), 0);
	ck_assert_uint_eq(pfs_undo_units(u), 2);
	ck_assert_int_eq(pfs_undo_close(u), 0);
	ck_assert_int_eq(pfs_undo_close(NULL), 0);
	/* nothing was written: restoring rewrites the same bytes */
	ck_assert_int_eq(pfs_undo_restore(p, dev, false, &got), 0);
	ck_assert_uint_eq(got, 2);
	assert_dev_is(dev, orig, "device after a no-op restore");

	pfs_dev_close(dev);
	unlink(img);
	unlink(p);
	free(orig);
	free(junk);
}
END_TEST

/*
 * fsck crashes: a child saves and writes through the hook device and
 * exits without closing the undo file. With the identity region untouched
 * (_i == 0) restore takes the file as it is; once the crashed run wrote
 * the region (_i == 1) only force does.
 */
START_TEST(test_undo_crash)
{
	const size_t size = 4 * MiB;
	const uint64_t nunits = size / UNIT;
	char img[PATH_MAX], upath[PATH_MAX];
	unsigned char *orig, *model, *units;
	struct pfs_dev *dev;
	uint64_t got, touched = 0;
	int pfd[2], st;
	pid_t pid;

	path_in(img, sizeof(img), "crash.img");
	path_in(upath, sizeof(upath), "crash.undo");
	unlink(upath);
	orig = make_image(img, size, 40 + _i);
	ck_assert_int_eq(pipe(pfd), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct undo_hook h = { 0 };
		struct pfs_dev_hook hook = { .before_write = undo_before_write,
					     .arg = &h };
		struct pfs_dev *inner, *hd;

		/* a failure in here (a check assert too) ends the child
		 * before it writes the pipe */
		close(pfd[0]);
		model = malloc(size);
		units = calloc(nunits, 1);
		if (!model || !units || pfs_dev_open(img, NULL, &inner) ||
		    pfs_undo_create(upath, inner, &h.u) ||
		    pfs_dev_hook_wrap(inner, &hook, &hd))
			_exit(1);
		memcpy(model, orig, size);
		workload(hd, 400 + _i, 150, _i == 1, model, units);
		if (_i == 1) {
			/* the superblocks, surely */
			unsigned char *b = pfs_dev_buf_alloc(8192);

			if (!b || pfs_dev_pwrite(hd, b, 8192, 4096))
				_exit(1);
			touch(units, 4096, 8192);
			pfs_dev_buf_free(b);
		}
		touched = count_touched(units, nunits);
		if (pfs_undo_units(h.u) != touched ||
		    write(pfd[1], &touched, sizeof(touched)) != sizeof(touched))
			_exit(1);
		_exit(0);	/* the crash: no close */
	}
	close(pfd[1]);
	ck_assert_int_eq(read(pfd[0], &touched, sizeof(touched)),
			 sizeof(touched));
	close(pfd[0]);
	ck_assert_int_eq(waitpid(pid, &st, 0), pid);
	ck_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	ck_assert_uint_gt(touched, 0);

	dev = open_dev(img, false);
	if (_i == 1) {
		ck_assert_int_eq(pfs_undo_restore(upath, dev, false, &got),
				 -EUCLEAN);
		ck_assert_int_eq(pfs_undo_restore(upath, dev, true, &got), 0);
	} else {
		ck_assert_int_eq(pfs_undo_restore(upath, dev, false, &got), 0);
	}
	ck_assert_uint_eq(got, touched);
	assert_dev_is(dev, orig, "device after restoring a crashed run");
	/* restored: the region is the original again, so it is accepted */
	ck_assert_int_eq(pfs_undo_restore(upath, dev, false, &got), 0);
	pfs_dev_close(dev);
	assert_file_is(img, orig, size, "image after restoring a crashed run");
	unlink(img);
	unlink(upath);
	free(orig);
}
END_TEST

/* A damaged unit in the undo file: -EBADMSG, and nothing written. */
START_TEST(test_undo_damaged)
{
	const size_t size = 1 * MiB;
	const uint64_t offs[] = { 65536, 131072, 4096 };
	char img[PATH_MAX], upath[PATH_MAX];
	unsigned char *orig, *after, *file;
	struct stat st;
	size_t flen, i, hits = 0;
	int fd;

	path_in(img, sizeof(img), "damaged.img");
	path_in(upath, sizeof(upath), "damaged.undo");
	make_undo(img, upath, size, 50, offs, 3, &orig);
	after = read_file(img, size);

	/* the saved bytes of unit 32 (offset 128 KiB) are in the file as is */
	ck_assert_int_eq(stat(upath, &st), 0);
	flen = (size_t)st.st_size;
	file = read_file(upath, flen);
	for (i = 0; i + UNIT <= flen; i++) {
		if (memcmp(file + i, orig + 131072, UNIT) != 0)
			continue;
		file[i + 1000] ^= 0x40;
		hits++;
	}
	ck_assert_uint_ge(hits, 1);
	fd = open(upath, O_WRONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, file, flen, 0), (ssize_t)flen);
	close(fd);

	{
		struct pfs_dev *dev = open_dev(img, false);
		uint64_t got = 5;

		ck_assert_int_eq(pfs_undo_restore(upath, dev, false, &got),
				 -EBADMSG);
		ck_assert_uint_eq(got, 0);
		ck_assert_int_eq(pfs_undo_restore(upath, dev, true, &got),
				 -EBADMSG);
		pfs_dev_close(dev);
	}
	assert_file_is(img, after, size, "device after a damaged undo file");
	unlink(img);
	unlink(upath);
	free(orig);
	free(after);
	free(file);
}
END_TEST

struct save_arg {
	struct pfs_undo *u;
	struct pfs_dev *dev;
	unsigned id;
	int ret;
};

/* Overlapping ranges from four threads: [id * 64 KiB, + 192 KiB). */
static void *save_thr(void *p)
{
	struct save_arg *a = p;
	uint64_t s = a->id;
	unsigned i;

	for (i = 0; i < 200 && !a->ret; i++) {
		uint64_t off = a->id * 64 * KiB + 512 * rnd_below(&s, 384 - 16);

		a->ret = pfs_undo_save(a->u, a->dev, off,
				       512 * (1 + rnd_below(&s, 16)));
	}
	if (!a->ret)
		a->ret = pfs_undo_save(a->u, a->dev, a->id * 64 * KiB,
				       192 * KiB);
	return NULL;
}

/* pfs_undo_save from several threads; a tiny device; a big range. */
START_TEST(test_undo_save_misc)
{
	char p[PATH_MAX];
	struct pfs_dev *dev, *hd;
	struct pfs_undo *u;
	struct save_arg a[4];
	struct undo_hook h = { 0 };
	pthread_t th[4];
	unsigned char *orig, *b;
	uint64_t s = 60, got;
	size_t size;
	unsigned i;

	path_in(p, sizeof(p), "misc.undo");

	/* threads: 4 overlapping ranges cover units [0, 96) */
	unlink(p);
	ck_assert_int_eq(pfs_dev_open_mem(1 * MiB, 512, &dev), 0);
	ck_assert_int_eq(pfs_undo_create(p, dev, &u), 0);
	for (i = 0; i < 4; i++) {
		a[i] = (struct save_arg){ .u = u, .dev = dev, .id = i };
		ck_assert_int_eq(pthread_create(&th[i], NULL, save_thr,
						&a[i]), 0);
	}
	for (i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(a[i].ret, 0);
	ck_assert_uint_eq(pfs_undo_units(u), 96);
	ck_assert_int_eq(pfs_undo_close(u), 0);
	ck_assert_int_eq(pfs_undo_restore(p, dev, false, &got), 0);
	ck_assert_uint_eq(got, 96);
	pfs_dev_close(dev);

	/* a device smaller than a unit: no identity region at all */
	unlink(p);
	size = 3072;
	orig = malloc(size);
	b = pfs_dev_buf_alloc(size);
	rnd_fill(&s, orig, size);
	memcpy(b, orig, size);
	ck_assert_int_eq(pfs_dev_open_mem(size, 512, &dev), 0);
	ck_assert_int_eq(pfs_dev_pwrite(dev, b, size, 0), 0);
	ck_assert_int_eq(pfs_undo_create(p, dev, &h.u), 0);
	hd = hook_wrap(dev, &h);
	memset(b, 0xee, size);
	ck_assert_int_eq(pfs_dev_pwrite(hd, b, 1024, 2048), 0);
	ck_assert_int_eq(pfs_dev_pwrite(hd, b, 512, 0), 0);
	ck_assert_uint_eq(pfs_undo_units(h.u), 1);
	ck_assert_int_eq(pfs_undo_close(h.u), 0);
	h.u = NULL;
	ck_assert_int_eq(pfs_undo_restore(p, hd, false, &got), 0);
	ck_assert_uint_eq(got, 1);
	assert_dev_is(hd, orig, "tiny device after restore");
	pfs_dev_close(hd);
	free(orig);
	pfs_dev_buf_free(b);

	/* one write over more units than one LMDB transaction takes */
	unlink(p);
	size = 72 * MiB;
	ck_assert_int_eq(pfs_dev_open_mem(size, 4096, &dev), 0);
	orig = malloc(size);
	b = pfs_dev_buf_alloc(size);
	ck_assert(orig && b);
	rnd_fill(&s, orig, size);
	memcpy(b, orig, size);
	ck_assert_int_eq(pfs_dev_pwrite(dev, b, size, 0), 0);
	ck_assert_int_eq(pfs_undo_create(p, dev, &h.u), 0);
	hd = hook_wrap(dev, &h);
	memset(b, 0x77, 4096);
	ck_assert_int_eq(pfs_dev_pwrite(hd, b, 4096, 40 * MiB), 0);
	memset(b, 0x99, size);
	ck_assert_int_eq(pfs_dev_pwrite(hd, b, size - 4096, 4096), 0);
	ck_assert_uint_eq(pfs_undo_units(h.u), size / UNIT - 1);
	ck_assert_int_eq(pfs_undo_close(h.u), 0);
	h.u = NULL;
	ck_assert_int_eq(pfs_undo_restore(p, hd, false, &got), 0);
	ck_assert_uint_eq(got, size / UNIT - 1);
	assert_dev_is(hd, orig, "big device after restore");
	pfs_dev_close(hd);
	free(orig);
	pfs_dev_buf_free(b);
	unlink(p);
}
END_TEST

/* ---- suite -------------------------------------------------------------- */

static Suite *undo_suite(void)
{
	Suite *s = suite_create("undo");
	TCase *tc;

	tc = tcase_create("undo");
	tcase_set_timeout(tc, 300);
	tcase_add_loop_test(tc, test_undo_roundtrip, 0, 2);
	tcase_add_test(tc, test_undo_identity);
	tcase_add_test(tc, test_undo_refusals);
	tcase_add_loop_test(tc, test_undo_crash, 0, 2);
	tcase_add_test(tc, test_undo_damaged);
	tcase_add_test(tc, test_undo_save_misc);
	suite_add_tcase(s, tc);
	return s;
}

static bool fs_is(const char *path, long magic)
{
	struct statfs sf;

	return statfs(path, &sf) == 0 && (long)sf.f_type == magic;
}

/* A scratch directory under $TMPDIR or /var/tmp, never on a tmpfs. */
static int make_scratch(void)
{
	const char *cands[] = { getenv("TMPDIR"), "/var/tmp", "." };
	unsigned i;
	int n;

	for (i = 0; i < sizeof(cands) / sizeof(cands[0]); i++) {
		const char *d = cands[i];

		if (!d || !*d || fs_is(d, TMPFS_MAGIC_) ||
		    fs_is(d, RAMFS_MAGIC_))
			continue;
		n = snprintf(g_dir, sizeof(g_dir), "%s/posfs-test-undo.XXXXXX",
			     d);
		if (n > 0 && (size_t)n < sizeof(g_dir) && mkdtemp(g_dir))
			return 0;
	}
	return -1;
}

int main(void)
{
	SRunner *sr;
	int failed;

	if (make_scratch() != 0) {
		fprintf(stderr, "test_undo: no scratch directory off tmpfs\n");
		return 1;
	}
	sr = srunner_create(undo_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	rm_tree(g_dir);
	return failed ? 1 : 0;
}
