/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * test_io.c: the libcheck suite of src/io (include/posfs/io.h).
 *
 * Files live in a directory made under $TMPDIR or /var/tmp, never on a
 * tmpfs (where O_DIRECT may be refused or meaningless). The loop-device,
 * tmpfs/ramfs and XFS cases need root, losetup and mount (XFS also
 * mkfs.xfs); without them their tests pass and print "skipped: <why>".
 * Every loop device and mount is made by an unchecked fixture (run in the
 * parent process) and undone by its teardown, which runs even when the
 * tests in between fail or crash.
 *
 * The random workload (run_workload) issues batches of reads, writes and
 * flushes with overlap only across flushes, so its outcome is defined on
 * every backend; each run is checked against an in-memory model, and the
 * final images of the backends against each other.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <unistd.h>

#include "posfs/io.h"

#define KiB		1024ull
#define MiB		(1024ull * 1024)
#define TMPFS_MAGIC_	0x01021994
#define RAMFS_MAGIC_	0x858458f6

#define SHORT_PATH	512

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

static void path_in(char *out, size_t outlen, const char *dir,
		    const char *name)
{
	int n = snprintf(out, outlen, "%s/%s", dir, name);

	ck_assert_msg(n > 0 && (size_t)n < outlen, "path too long");
}

static void make_file(const char *path, uint64_t size)
{
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);

	ck_assert_msg(fd >= 0, "create %s: %s", path, strerror(errno));
	ck_assert_int_eq(ftruncate(fd, (off_t)size), 0);
	close(fd);
}

/* The 512-byte units a file holds on its file system. */
static uint64_t file_blocks(const char *path)
{
	struct stat st;

	ck_assert_int_eq(stat(path, &st), 0);
	return (uint64_t)st.st_blocks;
}

static struct pfs_dev *open_dev(const char *path, enum pfs_dev_backend be,
				bool exclusive, bool readonly)
{
	struct pfs_dev_opts o = {
		.backend = be, .exclusive = exclusive, .readonly = readonly,
	};
	struct pfs_dev *dev = NULL;
	int ret = pfs_dev_open(path, &o, &dev);

	ck_assert_msg(ret == 0, "open %s: %s", path, strerror(-ret));
	return dev;
}

/* Compare whole regions, reporting the first differing byte. */
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

/* Read [0, len) of dev into a new aligned buffer. */
static unsigned char *read_image(struct pfs_dev *dev, size_t len)
{
	unsigned char *img = pfs_dev_buf_alloc(len);

	ck_assert_ptr_nonnull(img);
	ck_assert_int_eq(pfs_dev_pread(dev, img, len, 0), 0);
	return img;
}

/* [0, size) of dev is pattern except [off, off + len), which is zeros. */
static void assert_discarded(struct pfs_dev *dev, const unsigned char *pattern, size_t size,
			     uint64_t off, uint64_t len, const char *what)
{
	unsigned char *img = read_image(dev, size);
	unsigned char *want = malloc(size);

	ck_assert_ptr_nonnull(want);
	memcpy(want, pattern, size);
	memset(want + off, 0, len);
	assert_same(img, want, size, what);
	free(want);
	pfs_dev_buf_free(img);
}

/* The range checks every backend shares. */
static void check_discard_errors(struct pfs_dev *dev)
{
	const struct pfs_dev_info *in = pfs_dev_info(dev);
	uint32_t ls = in->logical_sector;

	ck_assert_int_eq(pfs_dev_discard(dev, 0, 0), 0);
	if (ls > 1) {
		ck_assert_int_eq(pfs_dev_discard(dev, ls / 2, ls), -EINVAL);
		ck_assert_int_eq(pfs_dev_discard(dev, 0, ls / 2), -EINVAL);
	}
	ck_assert_int_eq(pfs_dev_discard(dev, in->size, ls), -EINVAL);
	ck_assert_int_eq(pfs_dev_discard(dev, in->size - ls, 2 * (uint64_t)ls), -EINVAL);
	ck_assert_int_eq(pfs_dev_discard(dev, UINT64_MAX - ls + 1, ls), -EINVAL);
}

static void zero_region(struct pfs_dev *dev, size_t len)
{
	size_t chunk = 1 * MiB, off;
	void *z = pfs_dev_buf_alloc(chunk);

	for (off = 0; off < len; off += chunk) {
		size_t l = len - off < chunk ? len - off : chunk;

		ck_assert_int_eq(pfs_dev_pwrite(dev, z, l, off), 0);
	}
	ck_assert_int_eq(pfs_dev_flush(dev), 0);
	pfs_dev_buf_free(z);
}

static bool is_root(void)
{
	return geteuid() == 0;
}

static bool have_cmd(const char *cmd)
{
	char line[256];

	snprintf(line, sizeof(line), "command -v %s >/dev/null 2>&1", cmd);
	return system(line) == 0;
}

/* Run a command; its first output line into out (may be NULL). */
static int run_cmd(char *out, size_t outlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int run_cmd(char *out, size_t outlen, const char *fmt, ...)
{
	char cmd[PATH_MAX * 3];
	char line[PATH_MAX];
	va_list ap;
	FILE *f;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	f = popen(cmd, "r");
	if (!f)
		return -1;
	if (out && outlen) {
		out[0] = '\0';
		if (fgets(line, sizeof(line), f)) {
			size_t l = strcspn(line, "\n");

			if (l >= outlen)
				l = outlen - 1;
			memcpy(out, line, l);
			out[l] = '\0';
		}
	}
	while (fgets(line, sizeof(line), f))
		;
	st = pclose(f);
	return st;
}

static void skip(const char *why)
{
	printf("skipped: %s: %s\n", tcase_name(), why);
	fflush(stdout);
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

/* ---- the random workload ------------------------------------------------ */

/*
 * Batches of random reads, writes and flushes over [0, region) of dev,
 * in units of unit bytes. Within a segment (between flushes) no write
 * overlaps another request, so any completion order gives one result.
 * model holds the expected content of the region (updated here); every
 * read is checked against it. With fixed, all buffers come from one
 * registered buffer (buf_index 0).
 */
struct wl {
	unsigned depth;
	unsigned batches;
	unsigned max_batch;
	unsigned max_units;	/* longest request, in units */
	bool fixed;
};

#define WL_BUF	(4 * MiB)

static void run_workload(struct pfs_dev *dev, const struct wl *w,
			 uint64_t seed, size_t region, unsigned char *model)
{
	uint32_t unit = pfs_dev_info(dev)->logical_sector;
	size_t nunits = region / unit;
	struct pfs_ioq *q = NULL;
	struct pfs_io *ios;
	unsigned char *buf, *busy;
	uint64_t s = seed;
	unsigned b, i;

	ck_assert_int_eq(pfs_ioq_create(dev, w->depth, &q), 0);
	buf = pfs_dev_buf_alloc(WL_BUF);
	ios = calloc(w->max_batch, sizeof(*ios));
	busy = calloc(nunits, 1);	/* 1 read, 2 written in this segment */
	ck_assert(buf && ios && busy);
	if (w->fixed) {
		void *bufs[1] = { buf };
		size_t lens[1] = { WL_BUF };

		ck_assert_int_eq(pfs_ioq_register_buffers(q, bufs, lens, 1), 0);
	}

	for (b = 0; b < w->batches; b++) {
		unsigned n = 1 + (unsigned)rnd_below(&s, w->max_batch);
		size_t used = 0;

		memset(busy, 0, nunits);
		for (i = 0; i < n; i++) {
			struct pfs_io *io = &ios[i];
			unsigned r = (unsigned)rnd_below(&s, 100), tries;
			size_t len = 0, off = 0, u, k;
			bool write = r < 60, ok = false;

			memset(io, 0, sizeof(*io));
			io->buf_index = -1;
			if (r >= 92 && i > 0) {
				io->op = PFS_IO_FLUSH;
				memset(busy, 0, nunits);
				continue;
			}
			for (tries = 0; tries < 20 && !ok; tries++) {
				size_t lu = 1 + rnd_below(&s, w->max_units);

				if (lu > nunits)
					lu = nunits;
				u = rnd_below(&s, nunits - lu + 1);
				ok = true;
				for (k = u; k < u + lu; k++)
					if (busy[k] == 2 || (write && busy[k]))
						ok = false;
				len = lu * unit;
				off = u * unit;
			}
			/* no room, or no buffer left: a flush instead */
			used = (used + 4095) & ~(size_t)4095;
			if (!ok || used + len > WL_BUF) {
				io->op = PFS_IO_FLUSH;
				memset(busy, 0, nunits);
				continue;
			}
			for (k = off / unit; k < (off + len) / unit; k++)
				busy[k] = write ? 2 : 1;
			io->op = write ? PFS_IO_WRITE : PFS_IO_READ;
			io->buf = buf + used;
			io->len = len;
			io->off = off;
			io->buf_index = w->fixed ? 0 : -1;
			io->result = 12345;
			if (write)
				rnd_fill(&s, io->buf, len);
			else
				memset(io->buf, 0xa5, len);
			used += len;
		}
		ck_assert_int_eq(pfs_ioq_run(q, ios, n), 0);
		for (i = 0; i < n; i++) {
			struct pfs_io *io = &ios[i];

			ck_assert_int_eq(io->result, 0);
			if (io->op == PFS_IO_WRITE)
				memcpy(model + io->off, io->buf, io->len);
			else if (io->op == PFS_IO_READ)
				assert_same(io->buf, model + io->off, io->len,
					    "workload read");
		}
	}
	pfs_ioq_destroy(q);
	pfs_dev_buf_free(buf);
	free(ios);
	free(busy);
}

/* ---- file devices ------------------------------------------------------- */

START_TEST(test_file_roundtrip)
{
	static const enum pfs_dev_backend bes[] = {
		PFS_DEV_AUTO, PFS_DEV_SYNC, PFS_DEV_URING,
	};
	char path[PATH_MAX];
	struct pfs_dev *dev;
	const struct pfs_dev_info *in;
	unsigned char *a, *b;
	uint64_t s = 42;
	int fd;

	path_in(path, sizeof(path), g_dir, "rt.img");
	make_file(path, 8 * MiB + 100);
	dev = open_dev(path, bes[_i], false, false);
	in = pfs_dev_info(dev);
	ck_assert_uint_eq(in->size, 8 * MiB + 100 - (100 % in->logical_sector));
	ck_assert(in->direct);
	ck_assert(!in->direct_refused);
	ck_assert(!in->is_blockdev);
	ck_assert(!in->readonly);
	ck_assert(!in->nvme);
	ck_assert_str_eq(in->backend_name, in->uring ? "uring" : "sync");
	if (bes[_i] == PFS_DEV_SYNC)
		ck_assert(!in->uring);
	if (bes[_i] == PFS_DEV_URING)
		ck_assert(in->uring);

	a = pfs_dev_buf_alloc(256 * KiB);
	b = pfs_dev_buf_alloc(256 * KiB);
	rnd_fill(&s, a, 256 * KiB);
	ck_assert_int_eq(pfs_dev_pwrite(dev, a, 256 * KiB, 1 * MiB), 0);
	ck_assert_int_eq(pfs_dev_pwrite(dev, a, 512, 0), 0);
	ck_assert_int_eq(pfs_dev_pwrite(dev, a + 4096, 4096, in->size - 4096),
			 0);
	ck_assert_int_eq(pfs_dev_flush(dev), 0);
	ck_assert_int_eq(pfs_dev_pread(dev, b, 256 * KiB, 1 * MiB), 0);
	assert_same(a, b, 256 * KiB, "1 MiB");
	ck_assert_int_eq(pfs_dev_pread(dev, b, 4096, in->size - 4096), 0);
	assert_same(a + 4096, b, 4096, "last block");
	ck_assert_int_eq(pfs_dev_pread(dev, b, 0, 0), 0);	/* no-op */
	pfs_dev_close(dev);

	/* The bytes are in the file. */
	fd = open(path, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pread(fd, b, 256 * KiB, 1 * MiB), 256 * KiB);
	assert_same(a, b, 256 * KiB, "file content");
	ck_assert_int_eq(pread(fd, b, 512, 0), 512);
	assert_same(a, b, 512, "sector 0");
	close(fd);
	pfs_dev_buf_free(a);
	pfs_dev_buf_free(b);
	unlink(path);
}
END_TEST

/* A file truncated under an open device reads as zeros past its end. */
START_TEST(test_file_eof_zeros)
{
	char path[PATH_MAX];
	struct pfs_dev *dev;
	struct pfs_ioq *q;
	struct pfs_io io[2];
	unsigned char *a, *b, *c;
	uint64_t s = 7;

	path_in(path, sizeof(path), g_dir, "eof.img");
	make_file(path, 64 * KiB);
	dev = open_dev(path, _i ? PFS_DEV_URING : PFS_DEV_SYNC, false, false);
	a = pfs_dev_buf_alloc(64 * KiB);
	b = pfs_dev_buf_alloc(64 * KiB);
	c = pfs_dev_buf_alloc(64 * KiB);
	rnd_fill(&s, a, 64 * KiB);
	ck_assert_int_eq(pfs_dev_pwrite(dev, a, 64 * KiB, 0), 0);
	ck_assert_int_eq(truncate(path, 5000), 0);
	memset(c, 0, 64 * KiB);
	memcpy(c, a, 5000);

	memset(b, 0xee, 64 * KiB);
	ck_assert_int_eq(pfs_dev_pread(dev, b, 8192, 0), 0);
	assert_same(b, c, 8192, "read across EOF");
	memset(b, 0xee, 64 * KiB);
	ck_assert_int_eq(pfs_dev_pread(dev, b, 16384, 16384), 0);
	assert_same(b, c + 16384, 16384, "read past EOF");

	ck_assert_int_eq(pfs_ioq_create(dev, 4, &q), 0);
	memset(b, 0xee, 64 * KiB);
	memset(io, 0, sizeof(io));
	io[0] = (struct pfs_io){ .op = PFS_IO_READ, .buf = b, .len = 8192,
				 .off = 0, .buf_index = -1 };
	io[1] = (struct pfs_io){ .op = PFS_IO_READ, .buf = b + 32768,
				 .len = 32768, .off = 32768, .buf_index = -1 };
	ck_assert_int_eq(pfs_ioq_run(q, io, 2), 0);
	assert_same(b, c, 8192, "ioq read across EOF");
	assert_same(b + 32768, c + 32768, 32768, "ioq read past EOF");
	pfs_ioq_destroy(q);
	pfs_dev_close(dev);
	pfs_dev_buf_free(a);
	pfs_dev_buf_free(b);
	pfs_dev_buf_free(c);
	unlink(path);
}
END_TEST

/*
 * The same random workload on sync, uring, uring with registered buffers
 * and mem gives the same images, equal to the model: batches larger than
 * the queue depth, flushes in the middle. _i picks the depth.
 */
START_TEST(test_backends_agree)
{
	static const unsigned depths[] = { 1, 4, 16 };
	const size_t region = 2 * MiB;
	const struct wl w = {
		.depth = depths[_i], .batches = 40,
		.max_batch = 3 * depths[_i] + 9, .max_units = 48,
	};
	struct wl wf = w;
	char p1[PATH_MAX], p2[PATH_MAX], p3[PATH_MAX];
	struct pfs_dev *d1, *d2, *d3, *d4;
	unsigned char *m1, *m2, *m3, *m4, *i1, *i2, *i3, *i4;

	wf.fixed = true;
	path_in(p1, sizeof(p1), g_dir, "agree-sync.img");
	path_in(p2, sizeof(p2), g_dir, "agree-uring.img");
	path_in(p3, sizeof(p3), g_dir, "agree-fixed.img");
	make_file(p1, region);
	make_file(p2, region);
	make_file(p3, region);
	d1 = open_dev(p1, PFS_DEV_SYNC, false, false);
	d2 = open_dev(p2, PFS_DEV_URING, false, false);
	d3 = open_dev(p3, PFS_DEV_URING, false, false);
	ck_assert_int_eq(pfs_dev_open_mem(region, 512, &d4), 0);
	ck_assert(!pfs_dev_info(d1)->uring && pfs_dev_info(d2)->uring);
	m1 = calloc(1, region);
	m2 = calloc(1, region);
	m3 = calloc(1, region);
	m4 = calloc(1, region);

	run_workload(d1, &w, 1000 + _i, region, m1);
	run_workload(d2, &w, 1000 + _i, region, m2);
	run_workload(d3, &wf, 1000 + _i, region, m3);
	run_workload(d4, &w, 1000 + _i, region, m4);
	assert_same(m1, m2, region, "models");
	i1 = read_image(d1, region);
	i2 = read_image(d2, region);
	i3 = read_image(d3, region);
	i4 = read_image(d4, region);
	assert_same(i1, m1, region, "sync image vs model");
	assert_same(i1, i2, region, "sync vs uring");
	assert_same(i1, i3, region, "sync vs uring fixed buffers");
	assert_same(i1, i4, region, "sync vs mem");

	pfs_dev_close(d1);
	pfs_dev_close(d2);
	pfs_dev_close(d3);
	pfs_dev_close(d4);
	free(m1);
	free(m2);
	free(m3);
	free(m4);
	pfs_dev_buf_free(i1);
	pfs_dev_buf_free(i2);
	pfs_dev_buf_free(i3);
	pfs_dev_buf_free(i4);
	unlink(p1);
	unlink(p2);
	unlink(p3);
}
END_TEST

/* Registered buffers: fixed reads and writes move the same bytes. */
START_TEST(test_registered_buffers)
{
	char path[PATH_MAX];
	struct pfs_dev *dev;
	struct pfs_ioq *q;
	struct pfs_io io[4];
	unsigned char *r0, *r1, *plain, *src;
	void *bufs[2];
	size_t lens[2] = { 256 * KiB, 256 * KiB };
	uint64_t s = 99;

	path_in(path, sizeof(path), g_dir, "fixed.img");
	make_file(path, 4 * MiB);
	dev = open_dev(path, _i ? PFS_DEV_URING : PFS_DEV_SYNC, false, false);
	r0 = pfs_dev_buf_alloc(256 * KiB);
	r1 = pfs_dev_buf_alloc(256 * KiB);
	plain = pfs_dev_buf_alloc(256 * KiB);
	src = pfs_dev_buf_alloc(256 * KiB);
	bufs[0] = r0;
	bufs[1] = r1;
	ck_assert_int_eq(pfs_ioq_create(dev, 8, &q), 0);
	ck_assert_int_eq(pfs_ioq_register_buffers(q, bufs, lens, 2), 0);

	rnd_fill(&s, src, 256 * KiB);
	memcpy(r0, src, 256 * KiB);
	/* fixed write from inside buffer 0, at an offset into it */
	io[0] = (struct pfs_io){ .op = PFS_IO_WRITE, .buf = r0, .len = 128 * KiB,
				 .off = 0, .buf_index = 0 };
	io[1] = (struct pfs_io){ .op = PFS_IO_WRITE, .buf = r0 + 128 * KiB,
				 .len = 128 * KiB, .off = 1 * MiB,
				 .buf_index = 0 };
	io[2] = (struct pfs_io){ .op = PFS_IO_FLUSH, .buf_index = -1 };
	ck_assert_int_eq(pfs_ioq_run(q, io, 3), 0);

	/* fixed read into buffer 1 and a plain read agree */
	io[0] = (struct pfs_io){ .op = PFS_IO_READ, .buf = r1, .len = 128 * KiB,
				 .off = 0, .buf_index = 1 };
	io[1] = (struct pfs_io){ .op = PFS_IO_READ, .buf = r1 + 128 * KiB,
				 .len = 128 * KiB, .off = 1 * MiB,
				 .buf_index = 1 };
	io[2] = (struct pfs_io){ .op = PFS_IO_READ, .buf = plain,
				 .len = 128 * KiB, .off = 0, .buf_index = -1 };
	io[3] = (struct pfs_io){ .op = PFS_IO_READ, .buf = plain + 128 * KiB,
				 .len = 128 * KiB, .off = 1 * MiB,
				 .buf_index = -1 };
	ck_assert_int_eq(pfs_ioq_run(q, io, 4), 0);
	assert_same(r1, src, 256 * KiB, "fixed read");
	assert_same(plain, src, 256 * KiB, "plain read");

	/* buf_index checked on every backend */
	io[0] = (struct pfs_io){ .op = PFS_IO_READ, .buf = r1, .len = 4096,
				 .off = 0, .buf_index = 2 };
	ck_assert_int_eq(pfs_ioq_run(q, io, 1), -EINVAL);
	io[0] = (struct pfs_io){ .op = PFS_IO_READ, .buf = r1, .len = 4096,
				 .off = 0, .buf_index = 0 };
	ck_assert_int_eq(pfs_ioq_run(q, io, 1), -EINVAL);
	io[0] = (struct pfs_io){ .op = PFS_IO_READ, .buf = r1 + 252 * KiB,
				 .len = 8192, .off = 0, .buf_index = 1 };
	ck_assert_int_eq(pfs_ioq_run(q, io, 1), -EINVAL);

	/* re-register, then unregister */
	ck_assert_int_eq(pfs_ioq_register_buffers(q, bufs + 1, lens, 1), 0);
	io[0] = (struct pfs_io){ .op = PFS_IO_READ, .buf = r1, .len = 4096,
				 .off = 0, .buf_index = 0 };
	ck_assert_int_eq(pfs_ioq_run(q, io, 1), 0);
	ck_assert_int_eq(pfs_ioq_register_buffers(q, NULL, NULL, 0), 0);
	ck_assert_int_eq(pfs_ioq_run(q, io, 1), -EINVAL);
	bufs[0] = NULL;
	ck_assert_int_eq(pfs_ioq_register_buffers(q, bufs, lens, 1), -EINVAL);

	pfs_ioq_destroy(q);
	pfs_dev_close(dev);
	pfs_dev_buf_free(r0);
	pfs_dev_buf_free(r1);
	pfs_dev_buf_free(plain);
	pfs_dev_buf_free(src);
	unlink(path);
}
END_TEST

/*
 * A flush is a barrier: writes to the same blocks on either side of it
 * land in queue order, even with more requests than the queue depth.
 */
START_TEST(test_flush_barrier)
{
	char path[PATH_MAX];
	struct pfs_dev *dev;
	struct pfs_ioq *q;
	struct pfs_io io[64];
	unsigned char *w = pfs_dev_buf_alloc(3 * 8 * 4096);
	unsigned char *r = pfs_dev_buf_alloc(8 * 4096);
	unsigned i, round, n = 0;

	path_in(path, sizeof(path), g_dir, "barrier.img");
	make_file(path, 1 * MiB);
	dev = open_dev(path, _i ? PFS_DEV_URING : PFS_DEV_SYNC, false, false);
	ck_assert_int_eq(pfs_ioq_create(dev, 2, &q), 0);
	for (round = 0; round < 3; round++) {
		for (i = 0; i < 8; i++) {
			unsigned char *b = w + (round * 8 + i) * 4096;

			memset(b, (int)(round * 8 + i + 1), 4096);
			io[n++] = (struct pfs_io){ .op = PFS_IO_WRITE, .buf = b,
						   .len = 4096, .off = i * 4096,
						   .buf_index = -1 };
		}
		io[n++] = (struct pfs_io){ .op = PFS_IO_FLUSH, .buf_index = -1 };
	}
	for (i = 0; i < 8; i++)
		io[n++] = (struct pfs_io){ .op = PFS_IO_READ,
					   .buf = r + i * 4096, .len = 4096,
					   .off = i * 4096, .buf_index = -1 };
	ck_assert_int_eq(pfs_ioq_run(q, io, n), 0);
	assert_same(r, w + 2 * 8 * 4096, 8 * 4096, "last round wins");
	pfs_ioq_destroy(q);
	pfs_dev_close(dev);
	pfs_dev_buf_free(w);
	pfs_dev_buf_free(r);
	unlink(path);
}
END_TEST

static bool under_valgrind(void)
{
	const char *p = getenv("LD_PRELOAD");

	return p && strstr(p, "vgpreload");
}

/*
 * A short write (RLIMIT_FSIZE cuts it at the limit) is continued from where
 * it stopped; the continuation then fails with EFBIG, which is reported.
 */
START_TEST(test_short_write)
{
	char path[PATH_MAX];
	struct pfs_dev *dev;
	struct pfs_ioq *q;
	struct pfs_io io;
	struct rlimit old, lim;
	unsigned char *w, *r;
	void (*oldsig)(int);
	int ret1, ret2;

	if (_i && under_valgrind()) {
		/* valgrind kills the process with the SIGXFSZ that a write
		 * inside io_uring_enter raises, SIG_IGN or not */
		skip("valgrind cannot run this one on io_uring");
		return;
	}
	w = pfs_dev_buf_alloc(8192);
	r = pfs_dev_buf_alloc(8192);

	path_in(path, sizeof(path), g_dir, "short.img");
	make_file(path, 1 * MiB);
	dev = open_dev(path, _i ? PFS_DEV_URING : PFS_DEV_SYNC, false, false);
	ck_assert_int_eq(pfs_ioq_create(dev, 4, &q), 0);
	memset(w, 0x3c, 8192);
	memset(w + 4096, 0x4d, 4096);
	ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);
	lim = old;
	lim.rlim_cur = 65536 + 1024;
	oldsig = signal(SIGXFSZ, SIG_IGN);
	ck_assert_int_eq(setrlimit(RLIMIT_FSIZE, &lim), 0);
	ret1 = pfs_dev_pwrite(dev, w, 8192, 65536);
	io = (struct pfs_io){ .op = PFS_IO_WRITE, .buf = w, .len = 8192,
			      .off = 65536 - 4096, .buf_index = -1 };
	ret2 = pfs_ioq_run(q, &io, 1);
	setrlimit(RLIMIT_FSIZE, &old);
	signal(SIGXFSZ, oldsig);
	ck_assert_int_eq(ret1, -EFBIG);
	ck_assert_int_eq(ret2, -EFBIG);
	ck_assert_int_eq(io.result, -EFBIG);
	/* what was below the limit went through */
	ck_assert_int_eq(pfs_dev_pread(dev, r, 8192, 65536 - 4096), 0);
	assert_same(r, w, 5120, "the part below the limit");
	pfs_ioq_destroy(q);
	pfs_dev_close(dev);
	pfs_dev_buf_free(w);
	pfs_dev_buf_free(r);
	unlink(path);
}
END_TEST

/* Several threads, each with its own queue, plus synchronous calls. */
struct thr_arg {
	struct pfs_dev *dev;
	unsigned id;
	int fail;
};

static void *thr_main(void *p)
{
	struct thr_arg *a = p;
	const size_t region = 1 * MiB;
	struct pfs_ioq *q = NULL;
	struct pfs_io io[17];
	unsigned char *w = pfs_dev_buf_alloc(region);
	unsigned char *r = pfs_dev_buf_alloc(region);
	uint64_t s = a->id * 1000 + 1, base = a->id * region;
	unsigned round, i;

	if (!w || !r || pfs_ioq_create(a->dev, 4, &q) != 0) {
		a->fail = 1;
		goto out;
	}
	for (round = 0; round < 20 && !a->fail; round++) {
		rnd_fill(&s, w, region);
		for (i = 0; i < 16; i++)
			io[i] = (struct pfs_io){
				.op = PFS_IO_WRITE, .buf = w + i * 64 * KiB,
				.len = 64 * KiB, .off = base + i * 64 * KiB,
				.buf_index = -1 };
		io[16] = (struct pfs_io){ .op = PFS_IO_FLUSH, .buf_index = -1 };
		if (pfs_ioq_run(q, io, 17) != 0)
			a->fail = 2;
		memset(r, 0, region);
		if (pfs_dev_pread(a->dev, r, region, base) != 0 ||
		    memcmp(r, w, region) != 0)
			a->fail = 3;
		rnd_fill(&s, w, 64 * KiB);
		if (pfs_dev_pwrite(a->dev, w, 64 * KiB, base) != 0 ||
		    pfs_dev_flush(a->dev) != 0)
			a->fail = 4;
		io[0] = (struct pfs_io){ .op = PFS_IO_READ, .buf = r,
					 .len = 64 * KiB, .off = base,
					 .buf_index = -1 };
		if (pfs_ioq_run(q, io, 1) != 0 || memcmp(r, w, 64 * KiB) != 0)
			a->fail = 5;
	}
out:
	pfs_ioq_destroy(q);
	pfs_dev_buf_free(w);
	pfs_dev_buf_free(r);
	return NULL;
}

START_TEST(test_threads)
{
	char path[PATH_MAX];
	struct pfs_dev *dev;
	pthread_t t[4];
	struct thr_arg a[4];
	unsigned i;

	path_in(path, sizeof(path), g_dir, "threads.img");
	make_file(path, 4 * MiB);
	dev = open_dev(path, _i ? PFS_DEV_URING : PFS_DEV_SYNC, false, false);
	for (i = 0; i < 4; i++) {
		a[i] = (struct thr_arg){ .dev = dev, .id = i };
		ck_assert_int_eq(pthread_create(&t[i], NULL, thr_main, &a[i]),
				 0);
	}
	for (i = 0; i < 4; i++)
		pthread_join(t[i], NULL);
	for (i = 0; i < 4; i++)
		ck_assert_msg(a[i].fail == 0, "thread %u failed at step %d", i,
			      a[i].fail);
	pfs_dev_close(dev);
	unlink(path);
}
END_TEST

/* ---- errors ------------------------------------------------------------- */

static void check_bad_io(struct pfs_dev *dev)
{
	const struct pfs_dev_info *in = pfs_dev_info(dev);
	uint32_t ls = in->logical_sector;
	unsigned char *buf = pfs_dev_buf_alloc(4 * ls + 4096);
	struct pfs_ioq *q;
	struct pfs_io io;

	ck_assert_uint_gt(in->dio_mem_align, 8);
	/* misaligned buffer, offset, length */
	ck_assert_int_eq(pfs_dev_pread(dev, buf + 8, ls, 0), -EINVAL);
	ck_assert_int_eq(pfs_dev_pwrite(dev, buf + 8, ls, 0), -EINVAL);
	ck_assert_int_eq(pfs_dev_pread(dev, buf, ls, 100), -EINVAL);
	ck_assert_int_eq(pfs_dev_pwrite(dev, buf, ls, ls / 2), -EINVAL);
	ck_assert_int_eq(pfs_dev_pread(dev, buf, 100, 0), -EINVAL);
	ck_assert_int_eq(pfs_dev_pwrite(dev, buf, ls + 100, 0), -EINVAL);
	ck_assert_int_eq(pfs_dev_pwrite(dev, NULL, ls, 0), -EINVAL);
	/* out of range */
	ck_assert_int_eq(pfs_dev_pread(dev, buf, ls, in->size), -EINVAL);
	ck_assert_int_eq(pfs_dev_pwrite(dev, buf, 2 * ls, in->size - ls),
			 -EINVAL);
	ck_assert_int_eq(pfs_dev_pread(dev, buf, 2 * ls,
				       UINT64_MAX - ls + 1), -EINVAL);
	/* the last sector is fine */
	ck_assert_int_eq(pfs_dev_pwrite(dev, buf, ls, in->size - ls), 0);
	ck_assert_int_eq(pfs_dev_pread(dev, buf, ls, in->size - ls), 0);

	/* the same checks in a queue */
	ck_assert_int_eq(pfs_ioq_create(dev, 0, &q), 0);
	io = (struct pfs_io){ .op = PFS_IO_READ, .buf = buf + 8, .len = ls,
			      .buf_index = -1 };
	ck_assert_int_eq(pfs_ioq_run(q, &io, 1), -EINVAL);
	ck_assert_int_eq(io.result, -EINVAL);
	io = (struct pfs_io){ .op = PFS_IO_WRITE, .buf = buf, .len = ls,
			      .off = in->size, .buf_index = -1 };
	ck_assert_int_eq(pfs_ioq_run(q, &io, 1), -EINVAL);
	io = (struct pfs_io){ .op = 7, .buf = buf, .len = ls, .buf_index = -1 };
	ck_assert_int_eq(pfs_ioq_run(q, &io, 1), -EINVAL);
	pfs_ioq_destroy(q);
	ck_assert_int_eq(pfs_ioq_create(dev, 5000, &q), -EINVAL);
	ck_assert_ptr_null(q);
	pfs_dev_buf_free(buf);
}

/*
 * A failure cancels the flush after it and everything behind; the rest of
 * its own segment still runs.
 */
static void check_cancel(struct pfs_dev *dev)
{
	uint32_t ls = pfs_dev_info(dev)->logical_sector;
	unsigned char *buf = pfs_dev_buf_alloc(8 * ls);
	unsigned char *rd = pfs_dev_buf_alloc(8 * ls);
	unsigned char *zero = pfs_dev_buf_alloc(8 * ls);
	struct pfs_ioq *q;
	struct pfs_io io[5];

	memset(buf, 0x5a, 8 * ls);
	zero_region(dev, 8 * ls);
	ck_assert_int_eq(pfs_ioq_create(dev, 2, &q), 0);
	io[0] = (struct pfs_io){ .op = PFS_IO_WRITE, .buf = buf, .len = ls,
				 .off = 0, .buf_index = -1 };
	io[1] = (struct pfs_io){ .op = PFS_IO_WRITE, .buf = buf, .len = 100,
				 .off = ls, .buf_index = -1 };
	io[2] = (struct pfs_io){ .op = PFS_IO_WRITE, .buf = buf, .len = ls,
				 .off = 2 * ls, .buf_index = -1 };
	io[3] = (struct pfs_io){ .op = PFS_IO_FLUSH, .buf_index = -1 };
	io[4] = (struct pfs_io){ .op = PFS_IO_WRITE, .buf = buf, .len = ls,
				 .off = 3 * ls, .buf_index = -1 };
	ck_assert_int_eq(pfs_ioq_run(q, io, 5), -EINVAL);
	ck_assert_int_eq(io[0].result, 0);
	ck_assert_int_eq(io[1].result, -EINVAL);
	ck_assert_int_eq(io[2].result, 0);
	ck_assert_int_eq(io[3].result, -ECANCELED);
	ck_assert_int_eq(io[4].result, -ECANCELED);
	ck_assert_int_eq(pfs_dev_pread(dev, rd, 4 * ls, 0), 0);
	assert_same(rd, buf, ls, "sector 0 written");
	assert_same(rd + ls, zero, ls, "sector 1 untouched");
	assert_same(rd + 2 * ls, buf, ls, "sector 2 written");
	assert_same(rd + 3 * ls, zero, ls, "sector 3 never issued");
	/* the queue still works */
	ck_assert_int_eq(pfs_ioq_run(q, io + 3, 2), 0);
	pfs_ioq_destroy(q);
	pfs_dev_buf_free(buf);
	pfs_dev_buf_free(rd);
	pfs_dev_buf_free(zero);
}

START_TEST(test_bad_io)
{
	char path[PATH_MAX];
	struct pfs_dev *dev;

	if (_i < 2) {
		path_in(path, sizeof(path), g_dir, "bad.img");
		make_file(path, 1 * MiB);
		dev = open_dev(path, _i ? PFS_DEV_URING : PFS_DEV_SYNC, false,
			       false);
	} else {
		ck_assert_int_eq(pfs_dev_open_mem(1 * MiB, _i == 2 ? 512 : 4096,
						  &dev), 0);
	}
	check_bad_io(dev);
	check_cancel(dev);
	pfs_dev_close(dev);
	if (_i < 2)
		unlink(path);
}
END_TEST

START_TEST(test_readonly)
{
	char path[PATH_MAX];
	struct pfs_dev *dev;
	struct pfs_ioq *q;
	struct pfs_io io[2];
	unsigned char *buf = pfs_dev_buf_alloc(4096);

	path_in(path, sizeof(path), g_dir, "ro.img");
	make_file(path, 1 * MiB);
	dev = open_dev(path, _i ? PFS_DEV_URING : PFS_DEV_SYNC, false, true);
	ck_assert(pfs_dev_info(dev)->readonly);
	ck_assert_int_eq(pfs_dev_pwrite(dev, buf, 4096, 0), -EROFS);
	ck_assert_int_eq(pfs_dev_pwrite(dev, buf + 1, 100, 3), -EROFS);
	ck_assert_int_eq(pfs_dev_pread(dev, buf, 4096, 0), 0);
	ck_assert_int_eq(pfs_dev_flush(dev), 0);
	ck_assert_int_eq(pfs_ioq_create(dev, 0, &q), 0);
	io[0] = (struct pfs_io){ .op = PFS_IO_WRITE, .buf = buf, .len = 4096,
				 .buf_index = -1 };
	io[1] = (struct pfs_io){ .op = PFS_IO_READ, .buf = buf, .len = 4096,
				 .buf_index = -1 };
	ck_assert_int_eq(pfs_ioq_run(q, io, 2), -EROFS);
	ck_assert_int_eq(io[0].result, -EROFS);
	ck_assert_int_eq(io[1].result, 0);
	pfs_ioq_destroy(q);
	pfs_dev_close(dev);
	pfs_dev_buf_free(buf);
	unlink(path);
}
END_TEST

START_TEST(test_open_errors)
{
	struct pfs_dev_opts o = { 0 };
	struct pfs_dev *dev = (struct pfs_dev *)1;
	char path[PATH_MAX];

	path_in(path, sizeof(path), g_dir, "does-not-exist");
	ck_assert_int_eq(pfs_dev_open(path, NULL, &dev), -ENOENT);
	ck_assert_ptr_null(dev);
	ck_assert_int_eq(pfs_dev_open(g_dir, NULL, &dev), -ENOTBLK);
	ck_assert_int_eq(pfs_dev_open("/dev/null", NULL, &dev), -ENOTBLK);
	path_in(path, sizeof(path), g_dir, "fifo");
	ck_assert_int_eq(mkfifo(path, 0600), 0);
	ck_assert_int_eq(pfs_dev_open(path, NULL, &dev), -ENOTBLK);
	unlink(path);

	path_in(path, sizeof(path), g_dir, "opts.img");
	make_file(path, 1 * MiB);
	o.backend = 9;
	ck_assert_int_eq(pfs_dev_open(path, &o, &dev), -EINVAL);
	o.backend = PFS_DEV_AUTO;
	o.queue_depth = 100000;
	ck_assert_int_eq(pfs_dev_open(path, &o, &dev), -EINVAL);
	ck_assert_ptr_null(dev);
	unlink(path);

	ck_assert_int_eq(pfs_dev_open_mem(1 * MiB, 1000, &dev), -EINVAL);
	ck_assert_int_eq(pfs_dev_open_mem(1 * MiB, 256, &dev), -EINVAL);
	ck_assert_int_eq(pfs_dev_open_mem(1000, 512, &dev), -EINVAL);
	ck_assert_int_eq(pfs_dev_open_mem(0, 512, &dev), -EINVAL);
	ck_assert_ptr_null(dev);
	pfs_dev_close(NULL);
}
END_TEST

START_TEST(test_exclusive_file)
{
	char path[PATH_MAX];
	struct pfs_dev_opts o = { .exclusive = true };
	struct pfs_dev *d1, *d2 = NULL, *d3;

	path_in(path, sizeof(path), g_dir, "excl.img");
	make_file(path, 1 * MiB);
	d1 = open_dev(path, PFS_DEV_AUTO, true, false);
	ck_assert_int_eq(pfs_dev_open(path, &o, &d2), -EBUSY);
	ck_assert_ptr_null(d2);
	o.readonly = true;
	ck_assert_int_eq(pfs_dev_open(path, &o, &d2), -EBUSY);
	d3 = open_dev(path, PFS_DEV_AUTO, false, false);  /* not exclusive */
	pfs_dev_close(d3);
	pfs_dev_close(d1);
	o.readonly = false;
	ck_assert_int_eq(pfs_dev_open(path, &o, &d2), 0);
	pfs_dev_close(d2);
	unlink(path);
}
END_TEST

/* ---- claim.c: the mount table, who holds a device ------------------------ */

START_TEST(test_mountinfo_parse)
{
	struct pfs_mount_entry m;
	char l1[] = "36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 - ext3 "
		    "/dev/root rw,errors=continue\n";
	char l2[] = "45 26 0:40 / /var/tmp/a\\011b\\012c rw,relatime - fuse.posfs "
		    "/var/tmp/g\\134x\\040y.img rw,user_id=0";
	char l3[] = "50 26 259:1048575 / /m rw shared:1 master:2 propagate_from:3 - "
		    "xfs /dev/nvme0n1p1 rw";
	char l4[] = "51 26 0:41 / /not\\9an\\08escape\\04 rw - tmpfs tmp\\040fs rw";
	char bad1[] = "garbage";
	char bad2[] = "1 2 3:4 / /m rw";
	char bad3[] = "1 2 x / /m rw - t s o";
	char bad4[] = "1 2 3:4 / /m rw - t";

	ck_assert_int_eq(pfs_mountinfo_parse(l1, &m), 0);
	ck_assert_uint_eq(m.major, 98);
	ck_assert_uint_eq(m.minor, 0);
	ck_assert_str_eq(m.mountpoint, "/mnt/with space");
	ck_assert_str_eq(m.fstype, "ext3");
	ck_assert_str_eq(m.source, "/dev/root");

	ck_assert_int_eq(pfs_mountinfo_parse(l2, &m), 0);
	ck_assert_uint_eq(m.major, 0);
	ck_assert_uint_eq(m.minor, 40);
	ck_assert_str_eq(m.mountpoint, "/var/tmp/a\tb\nc");
	ck_assert_str_eq(m.fstype, "fuse.posfs");
	ck_assert_str_eq(m.source, "/var/tmp/g\\x y.img");

	ck_assert_int_eq(pfs_mountinfo_parse(l3, &m), 0);
	ck_assert_uint_eq(m.major, 259);
	ck_assert_uint_eq(m.minor, 1048575);
	ck_assert_str_eq(m.mountpoint, "/m");
	ck_assert_str_eq(m.fstype, "xfs");
	ck_assert_str_eq(m.source, "/dev/nvme0n1p1");

	/* only \ooo with three octal digits is an escape */
	ck_assert_int_eq(pfs_mountinfo_parse(l4, &m), 0);
	ck_assert_str_eq(m.mountpoint, "/not\\9an\\08escape\\04");
	ck_assert_str_eq(m.source, "tmp fs");

	ck_assert_int_eq(pfs_mountinfo_parse(bad1, &m), -EINVAL);
	ck_assert_int_eq(pfs_mountinfo_parse(bad2, &m), -EINVAL);
	ck_assert_int_eq(pfs_mountinfo_parse(bad3, &m), -EINVAL);
	ck_assert_int_eq(pfs_mountinfo_parse(bad4, &m), -EINVAL);
}
END_TEST

static int count_mounts(void *arg, const struct pfs_mount_entry *m)
{
	unsigned *n = arg;

	ck_assert_ptr_nonnull(m->mountpoint);
	return ++*n == 3 ? 42 : 0;
}

/* Every mount is seen; fn's nonzero return stops the walk and is returned. */
START_TEST(test_mountinfo_each)
{
	unsigned n = 0;
	int ret = pfs_mountinfo_each(count_mounts, &n);

	ck_assert(ret == 0 || ret == 42);
	ck_assert_uint_ge(n, 1);
	ck_assert(ret == 0 ? n < 3 : n == 3);
}
END_TEST

/* An image file: free, held (our own claim names this program), free. */
START_TEST(test_in_use_file)
{
	char path[PATH_MAX], want[64];
	struct pfs_dev_use u;
	struct pfs_dev *d;

	path_in(path, sizeof(path), g_dir, "use.img");
	make_file(path, 1 * MiB);
	ck_assert_int_eq(pfs_dev_in_use(path, &u), 0);
	ck_assert_int_eq(u.state, PFS_DEV_FREE);
	ck_assert_str_eq(u.why, "");
	d = open_dev(path, PFS_DEV_SYNC, true, false);
	ck_assert_int_eq(pfs_dev_in_use(path, &u), 0);
	ck_assert_int_eq(u.state, PFS_DEV_BUSY);
	snprintf(want, sizeof(want), " (pid %d)", (int)getpid());
	ck_assert_msg(!strncmp(u.why, "locked by ", 10) && strstr(u.why, want),
		      "why: %s", u.why);
	pfs_dev_close(d);
	ck_assert_int_eq(pfs_dev_in_use(path, &u), 0);
	ck_assert_int_eq(u.state, PFS_DEV_FREE);
	unlink(path);
	ck_assert_int_eq(pfs_dev_in_use(path, &u), -ENOENT);
	ck_assert_int_eq(pfs_dev_in_use(g_dir, &u), -ENOTBLK);
}
END_TEST

START_TEST(test_backend_choice)
{
	char path[PATH_MAX];
	struct pfs_dev *auto_dev, *dev = NULL;
	struct pfs_dev_opts o = { .backend = PFS_DEV_URING };
	const struct pfs_dev_info *in;
	int ret;

	path_in(path, sizeof(path), g_dir, "be.img");
	make_file(path, 1 * MiB);
	auto_dev = open_dev(path, PFS_DEV_AUTO, false, false);
	ret = pfs_dev_open(path, &o, &dev);
	if (pfs_dev_info(auto_dev)->uring) {
		/* AUTO picked uring: URING must work too */
		ck_assert_int_eq(ret, 0);
		in = pfs_dev_info(dev);
		ck_assert(in->uring);
		ck_assert_str_eq(in->backend_name, "uring");
		pfs_dev_close(dev);
	} else {
		ck_assert_int_ne(ret, 0);
		ck_assert_str_eq(pfs_dev_info(auto_dev)->backend_name, "sync");
		skip("no io_uring on this kernel");
	}
	pfs_dev_close(auto_dev);
	dev = open_dev(path, PFS_DEV_SYNC, false, false);
	ck_assert(!pfs_dev_info(dev)->uring);
	ck_assert_str_eq(pfs_dev_info(dev)->backend_name, "sync");
	pfs_dev_close(dev);
	unlink(path);
}
END_TEST

/* ---- mem device --------------------------------------------------------- */

START_TEST(test_mem)
{
	struct pfs_dev *dev;
	const struct pfs_dev_info *in;
	unsigned char *a = pfs_dev_buf_alloc(64 * KiB);
	unsigned char *b = pfs_dev_buf_alloc(64 * KiB);
	uint64_t s = 3;

	ck_assert_int_eq(pfs_dev_open_mem(4 * MiB, 4096, &dev), 0);
	in = pfs_dev_info(dev);
	ck_assert_uint_eq(in->size, 4 * MiB);
	ck_assert_uint_eq(in->logical_sector, 4096);
	ck_assert_uint_eq(in->physical_sector, 4096);
	ck_assert_uint_eq(in->dio_mem_align, 4096);
	ck_assert_uint_eq(in->atomic_write_unit, 4096);
	ck_assert_int_eq(in->atomic_source, PFS_ATOMIC_NONE);
	ck_assert_str_eq(in->backend_name, "mem");
	ck_assert(!in->uring && !in->direct && !in->is_blockdev);
	ck_assert_ptr_null(pfs_devrec_of(dev));

	ck_assert_int_eq(pfs_dev_pread(dev, b, 64 * KiB, 0), 0);
	memset(a, 0, 64 * KiB);
	assert_same(a, b, 64 * KiB, "fresh mem is zero");
	rnd_fill(&s, a, 64 * KiB);
	ck_assert_int_eq(pfs_dev_pwrite(dev, a, 64 * KiB, 4 * MiB - 64 * KiB),
			 0);
	ck_assert_int_eq(pfs_dev_flush(dev), 0);
	ck_assert_int_eq(pfs_dev_pread(dev, b, 64 * KiB, 4 * MiB - 64 * KiB),
			 0);
	assert_same(a, b, 64 * KiB, "mem round trip");
	/* 4096 sectors: 512 is misaligned */
	ck_assert_int_eq(pfs_dev_pread(dev, b, 512, 0), -EINVAL);
	ck_assert_int_eq(pfs_dev_pread(dev, b, 4096, 512), -EINVAL);
	ck_assert_int_eq(pfs_dev_pread(dev, b + 512, 4096, 0), -EINVAL);
	pfs_dev_close(dev);
	pfs_dev_buf_free(a);
	pfs_dev_buf_free(b);
}
END_TEST

/* ---- O_DIRECT refused: tmpfs and ramfs ---------------------------------- */

static char g_shm_dir[SHORT_PATH];	/* a tmpfs directory */
static char g_ramfs[SHORT_PATH];		/* our ramfs mount, or "" */
static bool g_tmpfs_mounted;
static const char *g_ramfs_skip;

static bool fs_is(const char *path, long magic)
{
	struct statfs sf;

	return statfs(path, &sf) == 0 && (long)sf.f_type == magic;
}

static void memfs_setup(void)
{
	char mnt[SHORT_PATH];

	g_ramfs_skip = NULL;
	g_ramfs[0] = '\0';
	g_shm_dir[0] = '\0';
	g_tmpfs_mounted = false;
	if (fs_is("/dev/shm", TMPFS_MAGIC_) && access("/dev/shm", W_OK) == 0) {
		snprintf(g_shm_dir, sizeof(g_shm_dir), "/dev/shm");
	} else if (is_root()) {
		snprintf(mnt, sizeof(mnt), "%s/tmpfs", g_dir);
		if (mkdir(mnt, 0700) == 0 &&
		    run_cmd(NULL, 0, "mount -t tmpfs -o size=16m posfs-test '%s' 2>&1",
			    mnt) == 0) {
			snprintf(g_shm_dir, sizeof(g_shm_dir), "%s", mnt);
			g_tmpfs_mounted = true;
		}
	}
	if (!is_root()) {
		g_ramfs_skip = "not root (cannot mount a ramfs)";
		return;
	}
	snprintf(mnt, sizeof(mnt), "%s/ramfs", g_dir);
	if (mkdir(mnt, 0700) != 0 ||
	    run_cmd(NULL, 0, "mount -t ramfs posfs-test '%s' 2>&1", mnt) != 0) {
		g_ramfs_skip = "mount -t ramfs failed";
		return;
	}
	snprintf(g_ramfs, sizeof(g_ramfs), "%s", mnt);
}

static void memfs_teardown(void)
{
	if (g_ramfs[0]) {
		run_cmd(NULL, 0, "umount '%s' 2>&1", g_ramfs);
		rmdir(g_ramfs);
		g_ramfs[0] = '\0';
	}
	if (g_tmpfs_mounted) {
		run_cmd(NULL, 0, "umount '%s' 2>&1", g_shm_dir);
		rmdir(g_shm_dir);
		g_tmpfs_mounted = false;
	}
}

/* I/O on a device however it was opened: sync calls and a queue. */
static void check_buffered_io(struct pfs_dev *dev)
{
	unsigned char *a = pfs_dev_buf_alloc(128 * KiB);
	unsigned char *b = pfs_dev_buf_alloc(128 * KiB);
	struct pfs_ioq *q;
	struct pfs_io io[3];
	uint64_t s = 11;

	rnd_fill(&s, a, 128 * KiB);
	ck_assert_int_eq(pfs_dev_pwrite(dev, a, 64 * KiB, 0), 0);
	ck_assert_int_eq(pfs_ioq_create(dev, 2, &q), 0);
	io[0] = (struct pfs_io){ .op = PFS_IO_WRITE, .buf = a + 64 * KiB,
				 .len = 64 * KiB, .off = 64 * KiB,
				 .buf_index = -1 };
	io[1] = (struct pfs_io){ .op = PFS_IO_FLUSH, .buf_index = -1 };
	io[2] = (struct pfs_io){ .op = PFS_IO_READ, .buf = b, .len = 128 * KiB,
				 .off = 0, .buf_index = -1 };
	ck_assert_int_eq(pfs_ioq_run(q, io, 3), 0);
	assert_same(a, b, 128 * KiB, "buffered round trip");
	memset(b, 0, 128 * KiB);
	ck_assert_int_eq(pfs_dev_pread(dev, b, 128 * KiB, 0), 0);
	assert_same(a, b, 128 * KiB, "buffered pread");
	/* the alignment rules hold without O_DIRECT too */
	ck_assert_int_eq(pfs_dev_pread(dev, b + 8, 512, 0), -EINVAL);
	ck_assert_int_eq(pfs_dev_pread(dev, b, 512, 8), -EINVAL);
	pfs_ioq_destroy(q);
	pfs_dev_buf_free(a);
	pfs_dev_buf_free(b);
}

/* tmpfs: Linux 6.6+ accepts O_DIRECT there, older kernels refuse it. */
START_TEST(test_tmpfs)
{
	char path[PATH_MAX];
	struct pfs_dev *dev;
	const struct pfs_dev_info *in;

	if (!g_shm_dir[0]) {
		skip("no tmpfs: /dev/shm is none and cannot mount one");
		return;
	}
	path_in(path, sizeof(path), g_shm_dir, "posfs-test-io.img");
	make_file(path, 1 * MiB);
	dev = open_dev(path, _i ? PFS_DEV_URING : PFS_DEV_SYNC, false, false);
	in = pfs_dev_info(dev);
	ck_assert(in->direct != in->direct_refused);
	printf("note: tmpfs O_DIRECT %s\n",
	       in->direct ? "accepted (Linux 6.6+)" : "refused: buffered");
	fflush(stdout);
	ck_assert_uint_eq(in->logical_sector, 512);
	ck_assert_uint_eq(in->dio_mem_align, 4096);
	check_buffered_io(dev);
	pfs_dev_close(dev);
	unlink(path);
}
END_TEST

/* ramfs refuses O_DIRECT on every kernel: the fallback must kick in. */
START_TEST(test_direct_refused)
{
	char path[PATH_MAX];
	struct pfs_dev *dev;
	const struct pfs_dev_info *in;
	struct pfs_dev_opts o = { .buffered = true };

	if (g_ramfs_skip) {
		skip(g_ramfs_skip);
		return;
	}
	path_in(path, sizeof(path), g_ramfs, "img");
	make_file(path, 1 * MiB);
	dev = open_dev(path, _i ? PFS_DEV_URING : PFS_DEV_SYNC, false, false);
	in = pfs_dev_info(dev);
	ck_assert(in->direct_refused);
	ck_assert(!in->direct);
	ck_assert_int_eq(in->atomic_source, PFS_ATOMIC_NONE);
	check_buffered_io(dev);
	pfs_dev_close(dev);

	/* buffered asked for: nothing refused */
	ck_assert_int_eq(pfs_dev_open(path, &o, &dev), 0);
	ck_assert(!pfs_dev_info(dev)->direct);
	ck_assert(!pfs_dev_info(dev)->direct_refused);
	pfs_dev_close(dev);
	unlink(path);
}
END_TEST

START_TEST(test_buffered_opt)
{
	char path[PATH_MAX];
	struct pfs_dev_opts o = { .buffered = true, .backend = PFS_DEV_AUTO };
	struct pfs_dev *dev;

	path_in(path, sizeof(path), g_dir, "buffered.img");
	make_file(path, 1 * MiB);
	ck_assert_int_eq(pfs_dev_open(path, &o, &dev), 0);
	ck_assert(!pfs_dev_info(dev)->direct);
	ck_assert(!pfs_dev_info(dev)->direct_refused);
	check_buffered_io(dev);
	pfs_dev_close(dev);
	unlink(path);
}
END_TEST

/* ---- identify ----------------------------------------------------------- */

static void check_info_sane(const struct pfs_dev_info *in)
{
	uint32_t ls = in->logical_sector;

	ck_assert_uint_ge(ls, 512);
	ck_assert_uint_eq(ls & (ls - 1), 0);
	ck_assert_uint_ge(in->physical_sector, ls);
	ck_assert_uint_eq(in->physical_sector & (in->physical_sector - 1), 0);
	ck_assert_uint_gt(in->dio_mem_align, 0);
	ck_assert_uint_eq(in->dio_mem_align & (in->dio_mem_align - 1), 0);
	ck_assert_uint_le(in->dio_mem_align, 4096);
	ck_assert_uint_eq(in->size % ls, 0);
	ck_assert_uint_ge(in->atomic_write_unit, ls);
	ck_assert_uint_ge(in->atomic_write_min, ls);
	ck_assert_uint_le(in->atomic_write_min, in->atomic_write_unit);
	if (in->atomic_source == PFS_ATOMIC_NONE)
		ck_assert_uint_eq(in->atomic_write_unit, ls);
	if (!in->nvme) {
		ck_assert_uint_eq(in->nvme_nsid, 0);
		ck_assert_str_eq(in->nvme_model, "");
		ck_assert_str_eq(in->nvme_serial, "");
	}
}

START_TEST(test_identify_file)
{
	char path[PATH_MAX];
	struct pfs_dev *dev;
	const struct pfs_dev_info *in;

	path_in(path, sizeof(path), g_dir, "id.img");
	make_file(path, 3 * MiB + 1000);
	dev = open_dev(path, PFS_DEV_AUTO, false, false);
	in = pfs_dev_info(dev);
	check_info_sane(in);
	ck_assert(in->atomic_source == PFS_ATOMIC_NONE ||
		  in->atomic_source == PFS_ATOMIC_STATX);
	ck_assert(!in->nvme && !in->is_blockdev);
	ck_assert_uint_eq(in->size, (3 * MiB + 1000) / in->logical_sector *
					in->logical_sector);
	printf("note: file: logical %u physical %u dio_mem_align %u "
	       "atomic %u (%s)\n", in->logical_sector, in->physical_sector,
	       in->dio_mem_align, in->atomic_write_unit,
	       in->atomic_source == PFS_ATOMIC_STATX ? "statx" : "none");
	fflush(stdout);
	pfs_dev_close(dev);
	unlink(path);
}
END_TEST

/* ---- loop devices ------------------------------------------------------- */

static char g_loop[2][64];		/* 512- and 4096-byte sectors */
static char g_loop_img[2][SHORT_PATH];
static const char *g_loop_skip;
static char g_loop_err[1024];
#define LOOP_SIZE	(64 * MiB)

static void loop_setup(void)
{
	static const unsigned ss[2] = { 512, 4096 };
	unsigned i;

	g_loop_skip = NULL;
	g_loop_err[0] = '\0';
	if (!is_root()) {
		g_loop_skip = "not root";
		return;
	}
	if (!have_cmd("losetup")) {
		g_loop_skip = "losetup is missing";
		return;
	}
	for (i = 0; i < 2; i++) {
		char name[32];
		int fd;

		g_loop[i][0] = '\0';
		snprintf(name, sizeof(name), "loop%u.img", ss[i]);
		snprintf(g_loop_img[i], sizeof(g_loop_img[i]), "%s/%s", g_dir,
			 name);
		fd = open(g_loop_img[i], O_RDWR | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || ftruncate(fd, LOOP_SIZE) != 0) {
			snprintf(g_loop_err, sizeof(g_loop_err),
				 "cannot make %s", g_loop_img[i]);
			if (fd >= 0)
				close(fd);
			return;
		}
		close(fd);
		if (run_cmd(g_loop[i], sizeof(g_loop[i]),
			    "losetup --find --show --direct-io=on "
			    "--sector-size %u '%s'", ss[i], g_loop_img[i]) != 0 ||
		    strncmp(g_loop[i], "/dev/loop", 9) != 0) {
			snprintf(g_loop_err, sizeof(g_loop_err),
				 "losetup failed for %s (%s)", g_loop_img[i],
				 g_loop[i]);
			g_loop[i][0] = '\0';
			return;
		}
	}
}

static void loop_teardown(void)
{
	unsigned i;

	for (i = 0; i < 2; i++) {
		if (g_loop[i][0])
			run_cmd(NULL, 0, "losetup -d '%s' 2>&1", g_loop[i]);
		g_loop[i][0] = '\0';
		/* and any a test attached over the same image (test_loop_claim) */
		if (g_loop_img[i][0])
			run_cmd(NULL, 0, "losetup -n -O NAME -j '%s' | xargs -r losetup -d 2>&1",
				g_loop_img[i]);
		if (g_loop_img[i][0])
			unlink(g_loop_img[i]);
		g_loop_img[i][0] = '\0';
	}
}

static bool loop_ready(void)
{
	if (g_loop_skip) {
		skip(g_loop_skip);
		return false;
	}
	ck_assert_msg(g_loop_err[0] == '\0', "%s", g_loop_err);
	return true;
}

START_TEST(test_loop_identify)
{
	static const unsigned ss[2] = { 512, 4096 };
	struct pfs_dev *dev;
	const struct pfs_dev_info *in;

	if (!loop_ready())
		return;
	dev = open_dev(g_loop[_i], PFS_DEV_AUTO, false, false);
	in = pfs_dev_info(dev);
	check_info_sane(in);
	ck_assert(in->is_blockdev);
	ck_assert(in->direct && !in->direct_refused);
	ck_assert(!in->nvme);
	ck_assert_uint_eq(in->size, LOOP_SIZE);
	ck_assert_uint_eq(in->logical_sector, ss[_i]);
	ck_assert(in->atomic_source == PFS_ATOMIC_NONE ||
		  in->atomic_source == PFS_ATOMIC_STATX);
	printf("note: %s: logical %u physical %u dio_mem_align %u atomic %u\n",
	       g_loop[_i], in->logical_sector, in->physical_sector,
	       in->dio_mem_align, in->atomic_write_unit);
	fflush(stdout);
	if (_i == 1) {
		unsigned char *b = pfs_dev_buf_alloc(8192);

		ck_assert_int_eq(pfs_dev_pread(dev, b, 512, 0), -EINVAL);
		ck_assert_int_eq(pfs_dev_pread(dev, b, 4096, 512), -EINVAL);
		ck_assert_int_eq(pfs_dev_pread(dev, b, 4096, 4096), 0);
		pfs_dev_buf_free(b);
	}
	pfs_dev_close(dev);
}
END_TEST

START_TEST(test_loop_roundtrip)
{
	const size_t region = 4 * MiB;
	const struct wl w = { .depth = 8, .batches = 30, .max_batch = 40,
			      .max_units = 16 };
	struct wl wf = w;
	struct pfs_dev *dev, *file;
	unsigned char *m1, *m2, *m3, *i1, *i2, *i3, *fi;

	if (!loop_ready())
		return;
	wf.fixed = true;
	m1 = calloc(1, region);
	m2 = calloc(1, region);
	m3 = calloc(1, region);

	dev = open_dev(g_loop[_i], PFS_DEV_URING, false, false);
	zero_region(dev, region);
	run_workload(dev, &w, 77, region, m1);
	ck_assert_int_eq(pfs_dev_flush(dev), 0);
	i1 = read_image(dev, region);
	assert_same(i1, m1, region, "uring loop vs model");
	pfs_dev_close(dev);

	/* the bytes reached the backing file */
	file = open_dev(g_loop_img[_i], PFS_DEV_SYNC, false, true);
	fi = read_image(file, region);
	assert_same(fi, m1, region, "backing file vs model");
	pfs_dev_close(file);

	dev = open_dev(g_loop[_i], PFS_DEV_SYNC, false, false);
	zero_region(dev, region);
	run_workload(dev, &w, 77, region, m2);
	i2 = read_image(dev, region);
	assert_same(i1, i2, region, "uring vs sync on loop");
	pfs_dev_close(dev);

	dev = open_dev(g_loop[_i], PFS_DEV_URING, false, false);
	zero_region(dev, region);
	run_workload(dev, &wf, 77, region, m3);
	i3 = read_image(dev, region);
	assert_same(i1, i3, region, "plain vs fixed buffers on loop");
	pfs_dev_close(dev);

	free(m1);
	free(m2);
	free(m3);
	pfs_dev_buf_free(i1);
	pfs_dev_buf_free(i2);
	pfs_dev_buf_free(i3);
	pfs_dev_buf_free(fi);
}
END_TEST

/* A loop device over a file: BLKDISCARD, which the loop driver turns into
 * a hole in its backing file; the range reads as zeros. */
START_TEST(test_loop_discard)
{
	const size_t size = 4 * MiB;
	unsigned char *pat;
	struct pfs_dev *dev;
	uint64_t s = 21, before, after;
	int ret;

	if (!loop_ready())
		return;
	pat = pfs_dev_buf_alloc(size);
	dev = open_dev(g_loop[_i], PFS_DEV_SYNC, false, false);
	rnd_fill(&s, pat, size);
	ck_assert_int_eq(pfs_dev_pwrite(dev, pat, size, 0), 0);
	ck_assert_int_eq(pfs_dev_flush(dev), 0);
	before = file_blocks(g_loop_img[_i]);
	ret = pfs_dev_discard(dev, 1 * MiB, 2 * MiB);
	if (ret == -EOPNOTSUPP) {
		skip("this loop device does not discard");
	} else {
		ck_assert_int_eq(ret, 0);
		assert_discarded(dev, pat, size, 1 * MiB, 2 * MiB, "loop after discard");
		after = file_blocks(g_loop_img[_i]);
		ck_assert_msg(after + 2 * MiB / 512 <= before, "backing blocks %llu -> %llu",
			      (unsigned long long)before, (unsigned long long)after);
		check_discard_errors(dev);
	}
	pfs_dev_close(dev);
	pfs_dev_buf_free(pat);
}
END_TEST

START_TEST(test_loop_errors)
{
	struct pfs_dev *dev;

	if (!loop_ready())
		return;
	dev = open_dev(g_loop[_i], _i ? PFS_DEV_SYNC : PFS_DEV_URING, false,
		       false);
	check_bad_io(dev);
	check_cancel(dev);
	pfs_dev_close(dev);
}
END_TEST

START_TEST(test_loop_exclusive)
{
	struct pfs_dev_opts o = { .exclusive = true };
	struct pfs_dev *d1, *d2 = NULL, *d3;

	if (!loop_ready())
		return;
	d1 = open_dev(g_loop[0], PFS_DEV_AUTO, true, false);
	ck_assert_int_eq(pfs_dev_open(g_loop[0], &o, &d2), -EBUSY);
	ck_assert_ptr_null(d2);
	d3 = open_dev(g_loop[0], PFS_DEV_AUTO, false, true);
	pfs_dev_close(d3);
	pfs_dev_close(d1);
	ck_assert_int_eq(pfs_dev_open(g_loop[0], &o, &d2), 0);
	pfs_dev_close(d2);
}
END_TEST

/*
 * One claim per device: the image file and every loop device over it are
 * one device, whichever path each opener takes.
 */
START_TEST(test_loop_claim)
{
	struct pfs_dev_opts o = { .exclusive = true };
	const char *img = g_loop_img[0], *loop = g_loop[0];
	char loop2[64] = "", want[PATH_MAX];
	struct pfs_dev_use u;
	struct pfs_dev *d, *d2 = NULL;

	if (!loop_ready())
		return;
	/* through the file: the loop device is refused */
	d = open_dev(img, PFS_DEV_SYNC, true, false);
	ck_assert_int_eq(pfs_dev_open(loop, &o, &d2), -EBUSY);
	ck_assert_ptr_null(d2);
	ck_assert_int_eq(pfs_dev_in_use(loop, &u), 0);
	ck_assert_int_eq(u.state, PFS_DEV_BUSY);
	ck_assert_msg(!strncmp(u.why, "its file ", 9) && strstr(u.why, " is locked by "),
		      "why: %s", u.why);
	pfs_dev_close(d);

	/* through the loop device: the file is refused; then free, but looped */
	d = open_dev(loop, PFS_DEV_SYNC, true, false);
	ck_assert_int_eq(pfs_dev_open(img, &o, &d2), -EBUSY);
	ck_assert_ptr_null(d2);
	ck_assert_int_eq(pfs_dev_in_use(img, &u), 0);
	ck_assert_int_eq(u.state, PFS_DEV_BUSY);
	pfs_dev_close(d);
	ck_assert_int_eq(pfs_dev_in_use(img, &u), 0);
	ck_assert_int_eq(u.state, PFS_DEV_LOOPED);
	snprintf(want, sizeof(want), "attached to %s", loop);
	ck_assert_str_eq(u.why, want);
	ck_assert_int_eq(pfs_dev_in_use(loop, &u), 0);
	ck_assert_int_eq(u.state, PFS_DEV_FREE);

	/* two loop devices over one file: one claim */
	ck_assert_int_eq(run_cmd(loop2, sizeof(loop2), "losetup --find --show '%s'", img), 0);
	ck_assert_msg(!strncmp(loop2, "/dev/loop", 9), "losetup: %s", loop2);
	d = open_dev(loop, PFS_DEV_SYNC, true, false);
	ck_assert_int_eq(pfs_dev_open(loop2, &o, &d2), -EBUSY);
	pfs_dev_close(d);
	d = open_dev(loop2, PFS_DEV_SYNC, true, false);
	ck_assert_int_eq(pfs_dev_open(loop, &o, &d2), -EBUSY);
	ck_assert_int_eq(pfs_dev_open(img, &o, &d2), -EBUSY);
	pfs_dev_close(d);
	ck_assert_int_eq(pfs_dev_in_use(loop, &u), 0);
	ck_assert_int_eq(u.state, PFS_DEV_LOOPED);
	snprintf(want, sizeof(want), "loop device %s is over the same file", loop2);
	ck_assert_str_eq(u.why, want);
	/* a not exclusive open claims nothing */
	d = open_dev(loop2, PFS_DEV_SYNC, false, true);
	d2 = open_dev(img, PFS_DEV_SYNC, true, false);
	pfs_dev_close(d2);
	pfs_dev_close(d);
	run_cmd(NULL, 0, "losetup -d '%s' 2>&1", loop2);
}
END_TEST

/* ---- XFS: statx atomic writes, a mounted device ------------------------- */

static char g_xfs_loop[64];
static char g_xfs_img[SHORT_PATH];
static char g_xfs_mnt[SHORT_PATH];
static bool g_xfs_mounted;
static const char *g_xfs_skip;
static char g_xfs_err[1024];

static void xfs_setup(void)
{
	int fd;

	g_xfs_skip = NULL;
	g_xfs_err[0] = '\0';
	g_xfs_loop[0] = '\0';
	g_xfs_mounted = false;
	if (!is_root()) {
		g_xfs_skip = "not root";
		return;
	}
	if (!have_cmd("losetup") || !have_cmd("mkfs.xfs")) {
		g_xfs_skip = "losetup or mkfs.xfs is missing";
		return;
	}
	snprintf(g_xfs_img, sizeof(g_xfs_img), "%s/xfs.img", g_dir);
	snprintf(g_xfs_mnt, sizeof(g_xfs_mnt), "%s/xfs", g_dir);
	fd = open(g_xfs_img, O_RDWR | O_CREAT | O_TRUNC, 0644);
	if (fd < 0 || ftruncate(fd, 512 * MiB) != 0) {
		snprintf(g_xfs_err, sizeof(g_xfs_err), "cannot make %s",
			 g_xfs_img);
		if (fd >= 0)
			close(fd);
		return;
	}
	close(fd);
	if (run_cmd(g_xfs_loop, sizeof(g_xfs_loop),
		    "losetup --find --show '%s'", g_xfs_img) != 0 ||
	    strncmp(g_xfs_loop, "/dev/loop", 9) != 0) {
		snprintf(g_xfs_err, sizeof(g_xfs_err), "losetup failed");
		g_xfs_loop[0] = '\0';
		return;
	}
	if (run_cmd(NULL, 0, "mkfs.xfs -q -f -m reflink=1 '%s' 2>&1",
		    g_xfs_loop) != 0) {
		g_xfs_skip = "mkfs.xfs -m reflink=1 failed";
		return;
	}
	if (mkdir(g_xfs_mnt, 0700) != 0 ||
	    run_cmd(NULL, 0, "mount -t xfs '%s' '%s' 2>&1", g_xfs_loop,
		    g_xfs_mnt) != 0) {
		g_xfs_skip = "cannot mount XFS";
		return;
	}
	g_xfs_mounted = true;
}

static void xfs_teardown(void)
{
	if (g_xfs_mounted)
		run_cmd(NULL, 0, "umount '%s' 2>&1", g_xfs_mnt);
	g_xfs_mounted = false;
	rmdir(g_xfs_mnt);
	if (g_xfs_loop[0])
		run_cmd(NULL, 0, "losetup -d '%s' 2>&1", g_xfs_loop);
	g_xfs_loop[0] = '\0';
	unlink(g_xfs_img);
}

static bool xfs_ready(void)
{
	if (g_xfs_skip) {
		skip(g_xfs_skip);
		return false;
	}
	ck_assert_msg(g_xfs_err[0] == '\0', "%s", g_xfs_err);
	return true;
}

/* A mounted block device cannot be opened exclusively. */
START_TEST(test_mounted_busy)
{
	struct pfs_dev_opts o = { .exclusive = true };
	struct pfs_dev *dev = NULL;

	if (!xfs_ready())
		return;
	ck_assert_int_eq(pfs_dev_open(g_xfs_loop, &o, &dev), -EBUSY);
	ck_assert_ptr_null(dev);
	o.readonly = true;
	ck_assert_int_eq(pfs_dev_open(g_xfs_loop, &o, &dev), -EBUSY);
}
END_TEST

/*
 * XFS with reflink (Linux 6.16+) offers atomic writes through statx. With
 * O_DIRECT the device reports them (PFS_ATOMIC_STATX) and writes of the
 * atomic sizes go out with RWF_ATOMIC; buffered, nothing is claimed.
 */
START_TEST(test_statx_atomic)
{
	char path[PATH_MAX];
	struct pfs_dev *dev;
	struct pfs_dev_opts o = { .buffered = true };
	const struct pfs_dev_info *in;
	struct pfs_ioq *q;
	struct pfs_io io[3];
	unsigned char *a, *b;
	uint32_t mn, mx;
	uint64_t s = 5;

	if (!xfs_ready())
		return;
	path_in(path, sizeof(path), g_xfs_mnt, "atomic.img");
	make_file(path, 64 * MiB);
	dev = open_dev(path, _i ? PFS_DEV_URING : PFS_DEV_SYNC, false, false);
	in = pfs_dev_info(dev);
	check_info_sane(in);
	if (in->atomic_source != PFS_ATOMIC_STATX) {
		ck_assert_int_eq(in->atomic_source, PFS_ATOMIC_NONE);
		skip("no STATX_WRITE_ATOMIC on XFS with this kernel");
		pfs_dev_close(dev);
		return;
	}
	mn = in->atomic_write_min;
	mx = in->atomic_write_unit;
	ck_assert_uint_le(6 * (uint64_t)mx, in->size);
	printf("note: XFS atomic writes %u..%u bytes\n", mn, mx);
	fflush(stdout);
	a = pfs_dev_buf_alloc(2 * (size_t)mx);
	b = pfs_dev_buf_alloc(2 * (size_t)mx);
	rnd_fill(&s, a, 2 * (size_t)mx);
	/* atomic sizes (RWF_ATOMIC) and others (plain), sync and queued */
	ck_assert_int_eq(pfs_dev_pwrite(dev, a, mn, mn), 0);
	ck_assert_int_eq(pfs_dev_pwrite(dev, a, mx, mx), 0);
	ck_assert_int_eq(pfs_dev_pwrite(dev, a + mx, 3 * 512, 2 * mx), 0);
	ck_assert_int_eq(pfs_ioq_create(dev, 4, &q), 0);
	io[0] = (struct pfs_io){ .op = PFS_IO_WRITE, .buf = a + mx, .len = mn,
				 .off = 4 * (uint64_t)mx, .buf_index = -1 };
	io[1] = (struct pfs_io){ .op = PFS_IO_WRITE, .buf = a, .len = mx,
				 .off = 5 * (uint64_t)mx, .buf_index = -1 };
	io[2] = (struct pfs_io){ .op = PFS_IO_FLUSH, .buf_index = -1 };
	ck_assert_int_eq(pfs_ioq_run(q, io, 3), 0);
	pfs_ioq_destroy(q);
	ck_assert_int_eq(pfs_dev_pread(dev, b, mn, mn), 0);
	assert_same(a, b, mn, "atomic min write");
	ck_assert_int_eq(pfs_dev_pread(dev, b, mx, mx), 0);
	assert_same(a, b, mx, "atomic max write");
	ck_assert_int_eq(pfs_dev_pread(dev, b, 3 * 512, 2 * mx), 0);
	assert_same(a + mx, b, 3 * 512, "plain write");
	ck_assert_int_eq(pfs_dev_pread(dev, b, mn, 4 * (uint64_t)mx), 0);
	assert_same(a + mx, b, mn, "queued atomic min write");
	ck_assert_int_eq(pfs_dev_pread(dev, b, mx, 5 * (uint64_t)mx), 0);
	assert_same(a, b, mx, "queued atomic max write");
	pfs_dev_close(dev);

	ck_assert_int_eq(pfs_dev_open(path, &o, &dev), 0);
	ck_assert_int_eq(pfs_dev_info(dev)->atomic_source, PFS_ATOMIC_NONE);
	pfs_dev_close(dev);
	pfs_dev_buf_free(a);
	pfs_dev_buf_free(b);
	unlink(path);
}
END_TEST

/* ---- the recording device ----------------------------------------------- */

struct exp_ev {
	enum pfs_devrec_kind kind;
	uint64_t off;
	uint32_t len;
	unsigned char *data;
	uint64_t mark;
};

static void check_events(struct pfs_devrec *rec, const struct exp_ev *e,
			 size_t n)
{
	size_t i;

	ck_assert_uint_eq(pfs_devrec_count(rec), n);
	for (i = 0; i < n; i++) {
		const struct pfs_devrec_event *ev = pfs_devrec_event(rec, i);

		ck_assert_ptr_nonnull(ev);
		ck_assert_msg(ev->kind == e[i].kind, "event %zu kind %d, not %d",
			      i, ev->kind, e[i].kind);
		if (ev->kind == PFS_REC_WRITE) {
			ck_assert_uint_eq(ev->off, e[i].off);
			ck_assert_uint_eq(ev->len, e[i].len);
			ck_assert_uint_eq((uintptr_t)ev->data % 4096, 0);
			assert_same(ev->data, e[i].data, ev->len, "event data");
		} else if (ev->kind == PFS_REC_MARK) {
			ck_assert_uint_eq(ev->mark, e[i].mark);
		}
	}
	ck_assert_ptr_null(pfs_devrec_event(rec, n));
}

START_TEST(test_record_replay)
{
	const size_t size = 128 * KiB;
	const unsigned steps = 160;
	struct pfs_dev *inner, *dev, *t;
	struct pfs_devrec *rec;
	const struct pfs_dev_info *in;
	struct exp_ev *e = calloc(steps * 4, sizeof(*e));
	unsigned char **snap = calloc(steps * 4 + 1, sizeof(*snap));
	bool *have = calloc(steps * 4 + 1, sizeof(*have));
	unsigned char *buf = pfs_dev_buf_alloc(16 * 512 * 4);
	unsigned char *img;
	size_t ne = 0, k;
	uint64_t s = 2024;
	unsigned step;

	ck_assert(e && snap && have && buf);
	ck_assert_int_eq(pfs_dev_open_mem(size, 512, &inner), 0);
	ck_assert_int_eq(pfs_devrec_wrap(inner, &dev), 0);
	rec = pfs_devrec_of(dev);
	ck_assert_ptr_nonnull(rec);
	in = pfs_dev_info(dev);
	ck_assert_str_eq(in->backend_name, "record");
	ck_assert_uint_eq(in->size, size);
	ck_assert_uint_eq(in->logical_sector, 512);
	ck_assert_uint_eq(pfs_devrec_count(rec), 0);

	snap[0] = read_image(dev, size);
	have[0] = true;
	for (step = 0; step < steps; step++) {
		unsigned r = (unsigned)rnd_below(&s, 100);

		if (r < 60) {
			uint32_t len = 512 * (1 + (uint32_t)rnd_below(&s, 16));
			uint64_t off = 512 * rnd_below(&s, (size - len) / 512 + 1);

			rnd_fill(&s, buf, len);
			ck_assert_int_eq(pfs_dev_pwrite(dev, buf, len, off), 0);
			e[ne] = (struct exp_ev){ PFS_REC_WRITE, off, len,
						 malloc(len), 0 };
			memcpy(e[ne].data, buf, len);
			ne++;
		} else if (r < 75) {
			ck_assert_int_eq(pfs_dev_flush(dev), 0);
			e[ne++] = (struct exp_ev){ .kind = PFS_REC_FLUSH };
		} else if (r < 88) {
			ck_assert_int_eq(pfs_devrec_mark(rec, step), 0);
			e[ne++] = (struct exp_ev){ .kind = PFS_REC_MARK,
						   .mark = step };
		} else {
			/* a queued batch: W W F W, recorded in queue order */
			struct pfs_ioq *q;
			struct pfs_io io[4];
			unsigned j;

			rnd_fill(&s, buf, 3 * 2048);
			io[0] = (struct pfs_io){ .op = PFS_IO_WRITE, .buf = buf,
						 .len = 2048, .off = 4096,
						 .buf_index = -1 };
			io[1] = (struct pfs_io){ .op = PFS_IO_WRITE,
						 .buf = buf + 2048, .len = 2048,
						 .off = 2048 * rnd_below(&s, 60),
						 .buf_index = -1 };
			io[2] = (struct pfs_io){ .op = PFS_IO_FLUSH,
						 .buf_index = -1 };
			io[3] = (struct pfs_io){ .op = PFS_IO_WRITE,
						 .buf = buf + 4096, .len = 2048,
						 .off = 4096, .buf_index = -1 };
			ck_assert_int_eq(pfs_ioq_create(dev, 0, &q), 0);
			ck_assert_int_eq(pfs_ioq_run(q, io, 4), 0);
			pfs_ioq_destroy(q);
			for (j = 0; j < 4; j++) {
				if (io[j].op == PFS_IO_FLUSH) {
					e[ne++] = (struct exp_ev){
						.kind = PFS_REC_FLUSH };
					continue;
				}
				e[ne] = (struct exp_ev){ PFS_REC_WRITE,
					io[j].off, (uint32_t)io[j].len,
					malloc(io[j].len), 0 };
				memcpy(e[ne].data, io[j].buf, io[j].len);
				ne++;
			}
		}
		ck_assert_uint_eq(pfs_devrec_count(rec), ne);
		snap[ne] = read_image(dev, size);
		have[ne] = true;
	}
	check_events(rec, e, ne);

	/* Every recorded prefix rebuilds the state the device was in. */
	for (k = 0; k <= ne; k++) {
		if (!have[k])
			continue;
		ck_assert_int_eq(pfs_dev_open_mem(size, 512, &t), 0);
		if (k % 3 == 0) {
			ck_assert_int_eq(pfs_devrec_apply(rec, 0, k, t), 0);
		} else {
			ck_assert_int_eq(pfs_devrec_apply(rec, 0, k / 2, t), 0);
			ck_assert_int_eq(pfs_devrec_apply(rec, k / 2, k, t), 0);
		}
		img = read_image(t, size);
		assert_same(img, snap[k], size, "replayed prefix");
		pfs_dev_buf_free(img);
		pfs_dev_close(t);
	}
	ck_assert_int_eq(pfs_devrec_apply(rec, 2, 1, inner), -EINVAL);
	ck_assert_int_eq(pfs_devrec_apply(rec, 0, ne + 1, inner), -EINVAL);

	/* reset forgets the events, not the content */
	img = read_image(dev, size);
	pfs_devrec_reset(rec);
	ck_assert_uint_eq(pfs_devrec_count(rec), 0);
	ck_assert_ptr_null(pfs_devrec_event(rec, 0));
	assert_same(img, snap[ne], size, "content after reset");
	ck_assert_int_eq(pfs_dev_pwrite(dev, buf, 512, 0), 0);
	ck_assert_uint_eq(pfs_devrec_count(rec), 1);
	pfs_dev_buf_free(img);

	pfs_dev_close(dev);	/* closes inner too */
	for (k = 0; k < ne; k++)
		free(e[k].data);
	for (k = 0; k <= ne; k++)
		pfs_dev_buf_free(snap[k]);
	free(e);
	free(snap);
	free(have);
	pfs_dev_buf_free(buf);
}
END_TEST

START_TEST(test_record_torn)
{
	struct pfs_dev *inner, *dev, *t, *t4k, *f;
	struct pfs_devrec *rec;
	unsigned char *a = pfs_dev_buf_alloc(8192);
	unsigned char *b = pfs_dev_buf_alloc(8192);
	unsigned char *z = pfs_dev_buf_alloc(8192);
	char path[PATH_MAX];
	uint64_t s = 1;

	ck_assert_int_eq(pfs_dev_open_mem(1 * MiB, 512, &inner), 0);
	ck_assert_int_eq(pfs_devrec_wrap(inner, &dev), 0);
	rec = pfs_devrec_of(dev);
	rnd_fill(&s, a, 8192);
	ck_assert_int_eq(pfs_dev_pwrite(dev, a, 8192, 16384), 0);	/* 0 */
	ck_assert_int_eq(pfs_dev_flush(dev), 0);			/* 1 */
	ck_assert_int_eq(pfs_devrec_mark(rec, 77), 0);			/* 2 */
	ck_assert_int_eq(pfs_dev_pwrite(dev, a + 4096, 4096, 0), 0);	/* 3 */
	ck_assert_uint_eq(pfs_devrec_count(rec), 4);

	ck_assert_int_eq(pfs_dev_open_mem(1 * MiB, 512, &t), 0);
	ck_assert_int_eq(pfs_devrec_apply_one(rec, 0, 1536, t), 0);
	ck_assert_int_eq(pfs_dev_pread(t, b, 8192, 16384), 0);
	assert_same(b, a, 1536, "torn head");
	assert_same(b + 1536, z, 8192 - 1536, "torn tail not written");
	ck_assert_int_eq(pfs_devrec_apply_one(rec, 3, 0, t), 0);
	ck_assert_int_eq(pfs_dev_pread(t, b, 4096, 0), 0);
	assert_same(b, a + 4096, 4096, "whole write");
	ck_assert_int_eq(pfs_devrec_apply_one(rec, 0, 100, t), -EINVAL);
	ck_assert_int_eq(pfs_devrec_apply_one(rec, 0, 8704, t), -EINVAL);
	ck_assert_int_eq(pfs_devrec_apply_one(rec, 1, 0, t), -EINVAL);
	ck_assert_int_eq(pfs_devrec_apply_one(rec, 2, 0, t), -EINVAL);
	ck_assert_int_eq(pfs_devrec_apply_one(rec, 4, 0, t), -EINVAL);
	/* torn_len in units of the target's sector */
	ck_assert_int_eq(pfs_dev_open_mem(1 * MiB, 4096, &t4k), 0);
	ck_assert_int_eq(pfs_devrec_apply_one(rec, 0, 512, t4k), -EINVAL);
	ck_assert_int_eq(pfs_devrec_apply_one(rec, 0, 4096, t4k), 0);
	ck_assert_int_eq(pfs_dev_pread(t4k, b, 8192, 16384), 0);
	assert_same(b, a, 4096, "4k torn head");
	assert_same(b + 4096, z, 4096, "4k torn tail");

	/* apply onto an O_DIRECT file: the copies are aligned */
	path_in(path, sizeof(path), g_dir, "rec-target.img");
	make_file(path, 1 * MiB);
	f = open_dev(path, PFS_DEV_AUTO, false, false);
	ck_assert_int_eq(pfs_devrec_apply(rec, 0, 4, f), 0);
	ck_assert_int_eq(pfs_dev_pread(f, b, 8192, 16384), 0);
	assert_same(b, a, 8192, "applied to a file");
	pfs_dev_close(f);
	unlink(path);

	ck_assert_ptr_null(pfs_devrec_of(t));
	ck_assert_int_eq(pfs_devrec_mark(NULL, 1), -EINVAL);
	pfs_dev_close(t);
	pfs_dev_close(t4k);
	pfs_dev_close(dev);
	pfs_dev_buf_free(a);
	pfs_dev_buf_free(b);
	pfs_dev_buf_free(z);
}
END_TEST

/* Concurrent writers: every write recorded once, the stream replays. */
struct rec_arg {
	struct pfs_dev *dev;
	unsigned id;
	int fail;
};

static void *rec_thr(void *p)
{
	struct rec_arg *a = p;
	unsigned char *buf = pfs_dev_buf_alloc(512);
	unsigned i;

	for (i = 0; i < 100 && buf; i++) {
		memset(buf, (int)(a->id * 100 + i) & 0xff, 512);
		buf[0] = (unsigned char)a->id;
		buf[1] = (unsigned char)i;
		if (pfs_dev_pwrite(a->dev, buf, 512,
				   512 * (uint64_t)(a->id * 100 + i)) != 0)
			a->fail = 1;
		if (i % 10 == 9 && pfs_dev_flush(a->dev) != 0)
			a->fail = 2;
		if (i % 25 == 0 &&
		    pfs_devrec_mark(pfs_devrec_of(a->dev), a->id) != 0)
			a->fail = 3;
	}
	pfs_dev_buf_free(buf);
	return NULL;
}

START_TEST(test_record_threads)
{
	const size_t size = 4 * 100 * 512;
	struct pfs_dev *inner, *dev, *t;
	struct pfs_devrec *rec;
	pthread_t th[4];
	struct rec_arg a[4];
	unsigned char *i1, *i2;
	unsigned i, writes = 0, flushes = 0, marks = 0, last[4] = { 0 };
	size_t k, n;

	ck_assert_int_eq(pfs_dev_open_mem(size, 512, &inner), 0);
	ck_assert_int_eq(pfs_devrec_wrap(inner, &dev), 0);
	rec = pfs_devrec_of(dev);
	for (i = 0; i < 4; i++) {
		a[i] = (struct rec_arg){ .dev = dev, .id = i };
		ck_assert_int_eq(pthread_create(&th[i], NULL, rec_thr, &a[i]),
				 0);
	}
	for (i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(a[i].fail, 0);
	n = pfs_devrec_count(rec);
	for (k = 0; k < n; k++) {
		const struct pfs_devrec_event *ev = pfs_devrec_event(rec, k);
		const unsigned char *d = ev->data;

		if (ev->kind == PFS_REC_FLUSH) {
			flushes++;
		} else if (ev->kind == PFS_REC_MARK) {
			marks++;
		} else {
			writes++;
			ck_assert_uint_eq(ev->len, 512);
			ck_assert_uint_eq(ev->off,
					  512 * (uint64_t)(d[0] * 100 + d[1]));
			/* each thread's writes in its own order */
			ck_assert_uint_eq(d[1], last[d[0]]);
			last[d[0]]++;
		}
	}
	ck_assert_uint_eq(writes, 400);
	ck_assert_uint_eq(flushes, 40);
	ck_assert_uint_eq(marks, 16);
	ck_assert_int_eq(pfs_dev_open_mem(size, 512, &t), 0);
	ck_assert_int_eq(pfs_devrec_apply(rec, 0, n, t), 0);
	i1 = read_image(dev, size);
	i2 = read_image(t, size);
	assert_same(i1, i2, size, "replay of concurrent writes");
	pfs_dev_buf_free(i1);
	pfs_dev_buf_free(i2);
	pfs_dev_close(t);
	pfs_dev_close(dev);
}
END_TEST

/* ---- the hook device ---------------------------------------------------- */

#define HOOK_MAX_CALLS	64

/*
 * The callback's view: every call (off, len), whether inner still held the
 * old bytes of the range (model holds what the device should contain before
 * the write), and an error to return on call fail_at.
 */
struct hook_ctx {
	unsigned char *model;
	unsigned calls;
	uint64_t off[HOOK_MAX_CALLS];
	size_t len[HOOK_MAX_CALLS];
	bool old_ok[HOOK_MAX_CALLS];
	unsigned fail_at;	/* call index that fails, or UINT_MAX */
	int err;
	int inside;		/* callbacks running now */
	int overlap;		/* a callback ran while another did */
};

static int hook_cb(void *arg, struct pfs_dev *inner, uint64_t off, size_t len)
{
	struct hook_ctx *c = arg;
	unsigned i = c->calls++;
	unsigned char *b;
	int ret = 0;

	if (__atomic_fetch_add(&c->inside, 1, __ATOMIC_SEQ_CST) != 0)
		c->overlap = 1;
	if (i < HOOK_MAX_CALLS) {
		c->off[i] = off;
		c->len[i] = len;
		b = pfs_dev_buf_alloc(len);
		c->old_ok[i] = b && c->model &&
			       pfs_dev_pread(inner, b, len, off) == 0 &&
			       memcmp(b, c->model + off, len) == 0;
		pfs_dev_buf_free(b);
	}
	if (i == c->fail_at)
		ret = c->err;
	__atomic_fetch_sub(&c->inside, 1, __ATOMIC_SEQ_CST);
	return ret;
}

START_TEST(test_hook_writes)
{
	const size_t size = 256 * KiB;
	struct hook_ctx c = { .fail_at = UINT_MAX };
	struct pfs_dev_hook hook = { .before_write = hook_cb, .arg = &c };
	struct pfs_dev *inner, *dev;
	const struct pfs_dev_info *in;
	unsigned char *model = malloc(size);
	unsigned char *buf = pfs_dev_buf_alloc(64 * KiB);
	unsigned char *img;
	uint64_t s = 77;
	unsigned i;

	ck_assert(model && buf);
	ck_assert_int_eq(pfs_dev_open_mem(size, 512, &inner), 0);
	rnd_fill(&s, model, size);
	img = pfs_dev_buf_alloc(size);
	memcpy(img, model, size);
	ck_assert_int_eq(pfs_dev_pwrite(inner, img, size, 0), 0);
	pfs_dev_buf_free(img);
	c.model = model;

	ck_assert_int_eq(pfs_dev_hook_wrap(inner, &hook, &dev), 0);
	in = pfs_dev_info(dev);
	ck_assert_str_eq(in->backend_name, "hook");
	ck_assert_uint_eq(in->size, size);
	ck_assert_uint_eq(in->logical_sector, 512);
	ck_assert_uint_eq(in->physical_sector,
			  pfs_dev_info(inner)->physical_sector);
	ck_assert_uint_eq(in->dio_mem_align,
			  pfs_dev_info(inner)->dio_mem_align);
	ck_assert(!in->readonly && !in->uring);

	/* every write: one call, right range, old bytes still in inner */
	for (i = 0; i < 40; i++) {
		size_t len = 512 * (1 + (size_t)rnd_below(&s, 128));
		uint64_t off = 512 * rnd_below(&s, (size - len) / 512 + 1);

		rnd_fill(&s, buf, len);
		ck_assert_int_eq(pfs_dev_pwrite(dev, buf, len, off), 0);
		ck_assert_uint_eq(c.calls, i + 1);
		ck_assert_uint_eq(c.off[i], off);
		ck_assert_uint_eq(c.len[i], len);
		ck_assert_msg(c.old_ok[i], "call %u saw new bytes", i);
		memcpy(model + off, buf, len);
	}
	img = read_image(inner, size);
	assert_same(img, model, size, "inner after hooked writes");
	pfs_dev_buf_free(img);

	/* zero length: no call; checks come before the callback */
	ck_assert_int_eq(pfs_dev_pwrite(dev, buf, 0, 0), 0);
	ck_assert_int_eq(pfs_dev_pwrite(dev, buf, 512, size), -EINVAL);
	ck_assert_int_eq(pfs_dev_pwrite(dev, buf, 100, 0), -EINVAL);
	ck_assert_uint_eq(c.calls, 40);

	/* a failing callback fails the write; inner keeps its bytes */
	c.fail_at = c.calls;
	c.err = -ENOSPC;
	memset(buf, 0xa5, 8192);
	ck_assert_int_eq(pfs_dev_pwrite(dev, buf, 8192, 4096), -ENOSPC);
	c.fail_at = c.calls;
	c.err = 5;	/* not a -errno */
	ck_assert_int_eq(pfs_dev_pwrite(dev, buf, 512, 0), -EIO);
	ck_assert_uint_eq(c.calls, 42);
	img = read_image(dev, size);
	assert_same(img, model, size, "after failed callbacks");
	pfs_dev_buf_free(img);

	/* reads and flushes do not call back */
	ck_assert_int_eq(pfs_dev_pread(dev, buf, 4096, 8192), 0);
	assert_same(buf, model + 8192, 4096, "read through hook");
	ck_assert_int_eq(pfs_dev_flush(dev), 0);
	ck_assert_uint_eq(c.calls, 42);

	pfs_dev_close(dev);	/* closes inner too */
	free(model);
	pfs_dev_buf_free(buf);
}
END_TEST

START_TEST(test_hook_ioq)
{
	const size_t size = 128 * KiB;
	struct hook_ctx c = { .fail_at = UINT_MAX };
	struct pfs_dev_hook hook = { .before_write = hook_cb, .arg = &c };
	struct pfs_dev *inner, *dev;
	struct pfs_ioq *q;
	struct pfs_io io[5];
	unsigned char *model = calloc(1, size);
	unsigned char *buf = pfs_dev_buf_alloc(5 * 4096);
	unsigned char *img;
	uint64_t s = 78;
	unsigned i;

	ck_assert(model && buf);
	ck_assert_int_eq(pfs_dev_open_mem(size, 512, &inner), 0);
	c.model = model;
	ck_assert_int_eq(pfs_dev_hook_wrap(inner, &hook, &dev), 0);
	ck_assert_int_eq(pfs_ioq_create(dev, 4, &q), 0);

	/* W W F W R: three calls, in queue order, the read none (the
	 * writes do not overlap: the callback compares with the model) */
	rnd_fill(&s, buf, 4 * 4096);
	io[0] = (struct pfs_io){ .op = PFS_IO_WRITE, .buf = buf, .len = 4096,
				 .off = 0, .buf_index = -1 };
	io[1] = (struct pfs_io){ .op = PFS_IO_WRITE, .buf = buf + 4096,
				 .len = 1536, .off = 10240, .buf_index = -1 };
	io[2] = (struct pfs_io){ .op = PFS_IO_FLUSH, .buf_index = -1 };
	io[3] = (struct pfs_io){ .op = PFS_IO_WRITE, .buf = buf + 8192,
				 .len = 8192, .off = 16384, .buf_index = -1 };
	io[4] = (struct pfs_io){ .op = PFS_IO_READ, .buf = buf + 16384,
				 .len = 4096, .off = 65536, .buf_index = -1 };
	ck_assert_int_eq(pfs_ioq_run(q, io, 5), 0);
	ck_assert_uint_eq(c.calls, 3);
	for (i = 0; i < 3; i++) {
		const struct pfs_io *w = &io[i < 2 ? i : 3];

		ck_assert_uint_eq(c.off[i], w->off);
		ck_assert_uint_eq(c.len[i], w->len);
		ck_assert(c.old_ok[i]);
		memcpy(model + w->off, w->buf, w->len);
	}
	img = read_image(inner, size);
	assert_same(img, model, size, "queued writes through hook");
	pfs_dev_buf_free(img);

	/* a refused write fails its request and cancels past the flush */
	c.fail_at = c.calls;
	c.err = -EIO;
	memset(buf, 0x5a, 3 * 4096);
	io[0] = (struct pfs_io){ .op = PFS_IO_WRITE, .buf = buf, .len = 4096,
				 .off = 4096, .buf_index = -1 };
	io[1] = (struct pfs_io){ .op = PFS_IO_FLUSH, .buf_index = -1 };
	io[2] = (struct pfs_io){ .op = PFS_IO_WRITE, .buf = buf + 4096,
				 .len = 4096, .off = 32768, .buf_index = -1 };
	ck_assert_int_eq(pfs_ioq_run(q, io, 3), -EIO);
	ck_assert_int_eq(io[0].result, -EIO);
	ck_assert_int_eq(io[1].result, -ECANCELED);
	ck_assert_int_eq(io[2].result, -ECANCELED);
	ck_assert_uint_eq(c.calls, 4);
	img = read_image(inner, size);
	assert_same(img, model, size, "after a refused queued write");
	pfs_dev_buf_free(img);

	pfs_ioq_destroy(q);
	pfs_dev_close(dev);
	free(model);
	pfs_dev_buf_free(buf);
}
END_TEST

struct hook_thr_arg {
	struct pfs_dev *dev;
	unsigned id;
	int fail;
};

static void *hook_thr(void *p)
{
	struct hook_thr_arg *a = p;
	unsigned char *b = pfs_dev_buf_alloc(512);
	unsigned i;

	for (i = 0; i < 100 && b; i++) {
		uint64_t n = a->id * 100 + i;

		memset(b, (int)(n & 0xff), 512);
		if (pfs_dev_pwrite(a->dev, b, 512, 512 * n))
			a->fail = 1;
	}
	if (!b)
		a->fail = 1;
	pfs_dev_buf_free(b);
	return NULL;
}

START_TEST(test_hook_misc)
{
	struct hook_ctx c = { .fail_at = UINT_MAX };
	struct pfs_dev_hook hook = { .before_write = hook_cb, .arg = &c };
	struct pfs_dev_hook nocb = { .before_write = NULL };
	struct pfs_dev *inner, *dev, *f;
	struct hook_thr_arg a[4];
	pthread_t th[4];
	char path[PATH_MAX];
	unsigned char *b = pfs_dev_buf_alloc(4096);
	unsigned i;

	/* wrap errors leave inner the caller's */
	ck_assert_int_eq(pfs_dev_open_mem(400 * 512 * 4, 512, &inner), 0);
	dev = inner;
	ck_assert_int_eq(pfs_dev_hook_wrap(inner, &nocb, &dev), -EINVAL);
	ck_assert_ptr_null(dev);
	ck_assert_int_eq(pfs_dev_hook_wrap(inner, NULL, &dev), -EINVAL);
	ck_assert_int_eq(pfs_dev_hook_wrap(NULL, &hook, &dev), -EINVAL);
	ck_assert_int_eq(pfs_dev_pwrite(inner, b, 4096, 0), 0);

	/* writes from several threads: one callback at a time */
	ck_assert_int_eq(pfs_dev_hook_wrap(inner, &hook, &dev), 0);
	for (i = 0; i < 4; i++) {
		a[i] = (struct hook_thr_arg){ .dev = dev, .id = i };
		ck_assert_int_eq(pthread_create(&th[i], NULL, hook_thr, &a[i]),
				 0);
	}
	for (i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < 4; i++)
		ck_assert_int_eq(a[i].fail, 0);
	ck_assert_uint_eq(c.calls, 400);
	ck_assert_int_eq(c.overlap, 0);
	pfs_dev_close(dev);

	/* a read-only inner: the hook device is read-only, no call */
	path_in(path, sizeof(path), g_dir, "hook-ro.img");
	make_file(path, 1 * MiB);
	f = open_dev(path, PFS_DEV_SYNC, false, true);
	ck_assert_int_eq(pfs_dev_hook_wrap(f, &hook, &dev), 0);
	ck_assert(pfs_dev_info(dev)->readonly);
	ck_assert_uint_eq(pfs_dev_info(dev)->size, 1 * MiB);
	ck_assert_uint_eq(pfs_dev_info(dev)->logical_sector,
			  pfs_dev_info(f)->logical_sector);
	ck_assert_int_eq(pfs_dev_info(dev)->direct, pfs_dev_info(f)->direct);
	c.calls = 0;
	ck_assert_int_eq(pfs_dev_pwrite(dev, b, 4096, 0), -EROFS);
	ck_assert_uint_eq(c.calls, 0);
	ck_assert_int_eq(pfs_dev_pread(dev, b, 4096, 0), 0);
	pfs_dev_close(dev);
	unlink(path);
	pfs_dev_buf_free(b);
}
END_TEST

/* ---- suite -------------------------------------------------------------- */

/* pfs_thread_buf: one aligned buffer per thread and use, kept and grown. */
static struct pfs_thread_buf tb_a = PFS_THREAD_BUF_INIT, tb_b = PFS_THREAD_BUF_INIT;

static void *tb_thread(void *arg)
{
	(void)arg;
	return pfs_thread_buf_get(&tb_a, 100);
}

START_TEST(test_thread_buf)
{
	uint8_t *a = pfs_thread_buf_get(&tb_a, 4096), *b = pfs_thread_buf_get(&tb_b, 4096);
	uint8_t *a2, *other;
	pthread_t th;

	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_ptr_ne(a, b);
	ck_assert_uint_eq((uintptr_t)a % 4096, 0);
	memset(a, 0x5a, 4096);
	ck_assert_ptr_eq(pfs_thread_buf_get(&tb_a, 100), a);	/* kept */
	a2 = pfs_thread_buf_get(&tb_a, 3u << 20);			/* grown */
	ck_assert_ptr_nonnull(a2);
	ck_assert_uint_eq((uintptr_t)a2 % 4096, 0);
	memset(a2, 0, 3u << 20);
	ck_assert_ptr_eq(pfs_thread_buf_get(&tb_a, 4096), a2);
	ck_assert_int_eq(pthread_create(&th, NULL, tb_thread, NULL), 0);
	ck_assert_int_eq(pthread_join(th, (void **)&other), 0);
	ck_assert_ptr_nonnull(other);
	ck_assert_ptr_ne(other, a2);					/* its own */
}
END_TEST

/* ---- discard -------------------------------------------------------------- */

/* Mem: a discard zeroes its range, nothing else. */
START_TEST(test_mem_discard)
{
	const size_t size = 1 * MiB;
	unsigned char *pat = pfs_dev_buf_alloc(size);
	struct pfs_dev *dev;
	uint64_t s = 11;

	ck_assert_int_eq(pfs_dev_open_mem(size, 4096, &dev), 0);
	rnd_fill(&s, pat, size);
	ck_assert_int_eq(pfs_dev_pwrite(dev, pat, size, 0), 0);
	ck_assert_int_eq(pfs_dev_discard(dev, 64 * KiB, 128 * KiB), 0);
	assert_discarded(dev, pat, size, 64 * KiB, 128 * KiB, "mem after discard");
	ck_assert_int_eq(pfs_dev_discard(dev, size - 4096, 4096), 0);
	memset(pat + 64 * KiB, 0, 128 * KiB);
	assert_discarded(dev, pat, size, size - 4096, 4096, "mem, the last sector");
	check_discard_errors(dev);
	pfs_dev_close(dev);
	pfs_dev_buf_free(pat);
}
END_TEST

/*
 * An image file, sync (_i 0) and uring (_i 1): a discard punches a hole
 * (the file keeps its size, gives the space back) and the range reads as
 * zeros; a read-only device refuses with -EROFS.
 */
START_TEST(test_file_discard)
{
	const size_t size = 4 * MiB;
	unsigned char *pat = pfs_dev_buf_alloc(size);
	char path[SHORT_PATH];
	struct pfs_dev *dev;
	uint64_t s = 5, before, after;
	struct stat st;
	int ret;

	path_in(path, sizeof(path), g_dir, "discard.img");
	make_file(path, size);
	dev = open_dev(path, _i ? PFS_DEV_URING : PFS_DEV_SYNC, false, false);
	rnd_fill(&s, pat, size);
	ck_assert_int_eq(pfs_dev_pwrite(dev, pat, size, 0), 0);
	ck_assert_int_eq(pfs_dev_flush(dev), 0);
	before = file_blocks(path);
	ret = pfs_dev_discard(dev, 1 * MiB, 2 * MiB);
	if (ret == -EOPNOTSUPP) {
		skip("the scratch file system cannot punch holes");
		goto out;
	}
	ck_assert_int_eq(ret, 0);
	after = file_blocks(path);
	ck_assert_msg(after + 2 * MiB / 512 <= before, "blocks %llu -> %llu",
		      (unsigned long long)before, (unsigned long long)after);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_uint_eq((uint64_t)st.st_size, size);
	assert_discarded(dev, pat, size, 1 * MiB, 2 * MiB, "file after discard");
	check_discard_errors(dev);
	pfs_dev_close(dev);

	dev = open_dev(path, PFS_DEV_SYNC, false, true);
	ck_assert_int_eq(pfs_dev_discard(dev, 0, 4096), -EROFS);
out:
	pfs_dev_close(dev);
	unlink(path);
	pfs_dev_buf_free(pat);
}
END_TEST

/*
 * Record: a discard is forwarded and recorded (split at 1 GiB); applying
 * the stream writes zeros there, pfs_devrec_apply_discard the caller's
 * garbage; a refused discard is not recorded.
 */
START_TEST(test_record_discard)
{
	const size_t size = 1 * MiB;
	unsigned char *pat = pfs_dev_buf_alloc(size);
	unsigned char *img = pfs_dev_buf_alloc(size);
	struct pfs_dev *inner, *dev, *target;
	const struct pfs_devrec_event *ev;
	struct pfs_devrec *rec;
	uint64_t s = 9;

	ck_assert_int_eq(pfs_dev_open_mem(size, 512, &inner), 0);
	ck_assert_int_eq(pfs_devrec_wrap(inner, &dev), 0);
	rec = pfs_devrec_of(dev);
	rnd_fill(&s, pat, size);
	ck_assert_int_eq(pfs_dev_pwrite(dev, pat, size, 0), 0);
	ck_assert_int_eq(pfs_dev_flush(dev), 0);
	ck_assert_int_eq(pfs_dev_discard(dev, 4096, 8192), 0);
	ck_assert_int_eq(pfs_dev_discard(dev, 4096, 513), -EINVAL);	/* not recorded */
	ck_assert_int_eq(pfs_dev_flush(dev), 0);
	ck_assert_uint_eq(pfs_devrec_count(rec), 4);
	ev = pfs_devrec_event(rec, 2);
	ck_assert_int_eq(ev->kind, PFS_REC_DISCARD);
	ck_assert_uint_eq(ev->off, 4096);
	ck_assert_uint_eq(ev->len, 8192);
	ck_assert_ptr_null(ev->data);
	assert_discarded(dev, pat, size, 4096, 8192, "record forwards the discard");

	/* rebuilt on a target full of something else: zeros there */
	ck_assert_int_eq(pfs_dev_open_mem(size, 512, &target), 0);
	memset(img, 0x5a, size);
	ck_assert_int_eq(pfs_dev_pwrite(target, img, size, 0), 0);
	ck_assert_int_eq(pfs_devrec_apply(rec, 0, pfs_devrec_count(rec), target), 0);
	assert_discarded(target, pat, size, 4096, 8192, "apply: discards as zeros");
	/* or as garbage */
	ck_assert_int_eq(pfs_devrec_apply_discard(rec, 2, 0xa5, target), 0);
	ck_assert_int_eq(pfs_dev_pread(target, img, size, 0), 0);
	for (size_t i = 4096; i < 4096 + 8192; i++)
		ck_assert_uint_eq(img[i], 0xa5);
	assert_same(img, pat, 4096, "apply_discard: before the range");
	assert_same(img + 12288, pat + 12288, size - 12288, "apply_discard: after it");
	ck_assert_int_eq(pfs_devrec_apply_discard(rec, 0, 0, target), -EINVAL);	/* a WRITE */
	ck_assert_int_eq(pfs_devrec_apply_discard(rec, 9, 0, target), -EINVAL);
	ck_assert_int_eq(pfs_devrec_apply_one(rec, 2, 0, target), -EINVAL);	/* a DISCARD */
	pfs_dev_close(target);

	pfs_dev_close(dev);
	pfs_dev_buf_free(pat);
	pfs_dev_buf_free(img);
}
END_TEST

struct discard_hook {
	unsigned calls;
	uint64_t off;
	size_t len;
	int ret;
};

static int discard_hook_cb(void *arg, struct pfs_dev *inner, uint64_t off, size_t len)
{
	struct discard_hook *h = arg;

	(void)inner;
	h->calls++;
	h->off = off;
	h->len = len;
	return h->ret;
}

/* Hook: before_write hears of a discard; its failure stops it. */
START_TEST(test_hook_discard)
{
	const size_t size = 256 * KiB;
	struct discard_hook h = { 0 };
	struct pfs_dev_hook hook = { .before_write = discard_hook_cb, .arg = &h };
	unsigned char *pat = pfs_dev_buf_alloc(size);
	struct pfs_dev *inner, *dev;
	uint64_t s = 13;

	ck_assert_int_eq(pfs_dev_open_mem(size, 512, &inner), 0);
	rnd_fill(&s, pat, size);
	ck_assert_int_eq(pfs_dev_pwrite(inner, pat, size, 0), 0);
	ck_assert_int_eq(pfs_dev_hook_wrap(inner, &hook, &dev), 0);
	h.ret = -ENOSPC;
	ck_assert_int_eq(pfs_dev_discard(dev, 1024, 2048), -ENOSPC);
	ck_assert_uint_eq(h.calls, 1);
	assert_discarded(dev, pat, size, 0, 0, "a refused discard changes nothing");
	h.ret = 0;
	ck_assert_int_eq(pfs_dev_discard(dev, 1024, 2048), 0);
	ck_assert_uint_eq(h.calls, 2);
	ck_assert_uint_eq(h.off, 1024);
	ck_assert_uint_eq(h.len, 2048);
	assert_discarded(dev, pat, size, 1024, 2048, "hook forwards the discard");
	check_discard_errors(dev);
	ck_assert_uint_eq(h.calls, 2);	/* bad ranges never reach it */
	pfs_dev_close(dev);
	pfs_dev_buf_free(pat);
}
END_TEST

static Suite *io_suite(void)
{
	Suite *s = suite_create("io");
	TCase *tc;

	tc = tcase_create("file");
	tcase_set_timeout(tc, 120);
	tcase_add_loop_test(tc, test_file_roundtrip, 0, 3);
	tcase_add_loop_test(tc, test_file_eof_zeros, 0, 2);
	tcase_add_loop_test(tc, test_backends_agree, 0, 3);
	tcase_add_loop_test(tc, test_registered_buffers, 0, 2);
	tcase_add_loop_test(tc, test_threads, 0, 2);
	tcase_add_loop_test(tc, test_flush_barrier, 0, 2);
	tcase_add_loop_test(tc, test_short_write, 0, 2);
	tcase_add_test(tc, test_backend_choice);
	tcase_add_test(tc, test_identify_file);
	tcase_add_test(tc, test_buffered_opt);
	tcase_add_loop_test(tc, test_file_discard, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("errors");
	tcase_set_timeout(tc, 60);
	tcase_add_loop_test(tc, test_bad_io, 0, 4);
	tcase_add_loop_test(tc, test_readonly, 0, 2);
	tcase_add_test(tc, test_open_errors);
	tcase_add_test(tc, test_exclusive_file);
	suite_add_tcase(s, tc);

	tc = tcase_create("claim");
	tcase_add_test(tc, test_mountinfo_parse);
	tcase_add_test(tc, test_mountinfo_each);
	tcase_add_test(tc, test_in_use_file);
	suite_add_tcase(s, tc);

	tc = tcase_create("mem");
	tcase_add_test(tc, test_mem);
	tcase_add_test(tc, test_mem_discard);
	suite_add_tcase(s, tc);

	tc = tcase_create("memfs");
	tcase_set_timeout(tc, 60);
	tcase_add_unchecked_fixture(tc, memfs_setup, memfs_teardown);
	tcase_add_loop_test(tc, test_tmpfs, 0, 2);
	tcase_add_loop_test(tc, test_direct_refused, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("loop");
	tcase_set_timeout(tc, 120);
	tcase_add_unchecked_fixture(tc, loop_setup, loop_teardown);
	tcase_add_loop_test(tc, test_loop_identify, 0, 2);
	tcase_add_loop_test(tc, test_loop_roundtrip, 0, 2);
	tcase_add_loop_test(tc, test_loop_errors, 0, 2);
	tcase_add_loop_test(tc, test_loop_discard, 0, 2);
	tcase_add_test(tc, test_loop_exclusive);
	tcase_add_test(tc, test_loop_claim);
	suite_add_tcase(s, tc);

	tc = tcase_create("xfs");
	tcase_set_timeout(tc, 120);
	tcase_add_unchecked_fixture(tc, xfs_setup, xfs_teardown);
	tcase_add_test(tc, test_mounted_busy);
	tcase_add_loop_test(tc, test_statx_atomic, 0, 2);
	suite_add_tcase(s, tc);

	tc = tcase_create("record");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_record_replay);
	tcase_add_test(tc, test_record_torn);
	tcase_add_test(tc, test_record_threads);
	tcase_add_test(tc, test_record_discard);
	suite_add_tcase(s, tc);

	tc = tcase_create("hook");
	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, test_hook_writes);
	tcase_add_test(tc, test_hook_ioq);
	tcase_add_test(tc, test_hook_misc);
	tcase_add_test(tc, test_hook_discard);
	tcase_add_test(tc, test_thread_buf);
	suite_add_tcase(s, tc);
	return s;
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
		n = snprintf(g_dir, sizeof(g_dir), "%s/posfs-test-io.XXXXXX", d);
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
		fprintf(stderr, "test_io: no scratch directory off tmpfs\n");
		return 1;
	}
	sr = srunner_create(io_suite());
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	rm_tree(g_dir);
	return failed ? 1 : 0;
}
