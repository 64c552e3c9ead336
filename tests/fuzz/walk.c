/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz target: walk a hostile image the way a user of a mount does, and
 * change nothing: open it as the daemon does (replay, checkpoint, free
 * space, orphans), then from the root readdir every directory, look up and
 * stat every entry, read every file at its start, middle and end, SEEK_DATA
 * and SEEK_HOLE, list and get every xattr, readlink every symlink. Any
 * error is a fine answer; a crash, a sanitizer report, a leak or a hang is
 * not (libFuzzer's -timeout turns a hang into a crash; the replay driver
 * sets an alarm per input). Bounded: WALK_DIRS directories, WALK_ENTRIES
 * entries in all, so a directory cycle in a crafted image ends too.
 *
 * The input is not an image but the damage done to one, so that a run
 * costs what the store does and not megabytes of copies:
 *
 *   byte 0        which base image (mod BASES): 0 populated, 1 the same as
 *                 a crash leaves it (WALs to replay, an orphan), 2
 *                 populated with 2 shards; built in memory at the first run
 *   then patches  u16 block (an index into the base's metadata blocks, mod
 *                 their count), u16 offset (mod 4096), u8 n (bits 0-5: 1 +
 *                 bytes that follow; bit 7: do not seal the block again),
 *                 then the bytes
 *
 * A patched block is sealed again (its crc32c) unless bit 7 says not, as
 * an attacker would, so the damage reaches the code past the checksums.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "posfs/fs.h"
#include "posfs/store.h"
#include "fuzz.h"

#define WALK_DIRS	64
#define WALK_ENTRIES	1024
#define WALK_PER_DIR	256
#define WALK_READ	(64 * 1024)

struct walk {
	struct pfs_fs *fs;
	uint64_t dirs[WALK_DIRS];
	unsigned ndirs, entries;
	uint8_t *buf;
	char *names;			/* listxattr */
};

struct dir_list {
	char (*names)[POSFS_NAME_MAX + 1];
	unsigned n;
};

static int collect(void *arg, const char *name, uint64_t ino, unsigned type,
		   uint64_t next_cookie)
{
	struct dir_list *l = arg;

	(void)ino;
	(void)type;
	(void)next_cookie;
	if (l->n == WALK_PER_DIR)
		return 1;
	if (strcmp(name, ".") && strcmp(name, "..")) {
		strncpy(l->names[l->n], name, POSFS_NAME_MAX);
		l->names[l->n][POSFS_NAME_MAX] = 0;
		l->n++;
	}
	return 0;
}

static void walk_xattrs(struct walk *w, uint64_t ino)
{
	ssize_t n = pfs_fs_listxattr(w->fs, ino, w->names, WALK_READ);

	for (ssize_t at = 0; n > 0 && at < n; at += (ssize_t)strlen(w->names + at) + 1) {
		if (!w->names[at])
			break;
		(void)pfs_fs_getxattr(w->fs, ino, w->names + at, w->buf, WALK_READ);
		(void)pfs_fs_getxattr(w->fs, ino, w->names + at, NULL, 0);
	}
}

static void walk_file(struct walk *w, const struct pfs_fs_attr *a)
{
	const uint64_t offs[] = { 0, a->size / 2, a->size ? a->size - 1 : 0, a->size };
	uint64_t pos;

	for (unsigned i = 0; i < sizeof(offs) / sizeof(offs[0]); i++) {
		(void)pfs_fs_read(w->fs, a->ino, offs[i], WALK_READ, w->buf);
		(void)pfs_fs_lseek(w->fs, a->ino, offs[i], SEEK_DATA, &pos);
		(void)pfs_fs_lseek(w->fs, a->ino, offs[i], SEEK_HOLE, &pos);
	}
}

static bool seen_dir(const struct walk *w, uint64_t ino)
{
	for (unsigned i = 0; i < w->ndirs; i++)
		if (w->dirs[i] == ino)
			return true;
	return false;
}

static void walk(struct walk *w)
{
	struct dir_list l = { malloc(WALK_PER_DIR * sizeof(*l.names)), 0 };
	struct pfs_fs_attr a;

	if (!l.names)
		return;
	if (pfs_fs_getattr(w->fs, POSFS_ROOT_OID, &a))
		goto out;
	w->dirs[w->ndirs++] = POSFS_ROOT_OID;
	walk_xattrs(w, POSFS_ROOT_OID);
	for (unsigned d = 0; d < w->ndirs && w->entries < WALK_ENTRIES; d++) {
		uint64_t dir = w->dirs[d];

		l.n = 0;
		if (pfs_fs_readdir(w->fs, dir, 0, collect, &l))
			continue;
		for (unsigned i = 0; i < l.n && w->entries < WALK_ENTRIES; i++, w->entries++) {
			if (pfs_fs_lookup(w->fs, dir, l.names[i], &a))
				continue;
			(void)pfs_fs_getattr(w->fs, a.ino, &a);
			walk_xattrs(w, a.ino);
			if (S_ISREG(a.mode)) {
				walk_file(w, &a);
			} else if (S_ISLNK(a.mode)) {
				(void)pfs_fs_readlink(w->fs, a.ino, (char *)w->buf, WALK_READ);
			} else if (S_ISDIR(a.mode) && w->ndirs < WALK_DIRS && !seen_dir(w, a.ino)) {
				w->dirs[w->ndirs++] = a.ino;
			}
		}
	}
out:
	free(l.names);
}

/* ---- the base images -------------------------------------------------------- */

#define BASES		3
#define MAX_PATCHES	64

struct base {
	uint8_t *img;
	size_t size;
	uint32_t *meta;		/* 4 KiB blocks that hold a posfs magic */
	size_t nmeta;
};

static struct base bases[BASES];
static uint8_t *work;		/* the image a run opens, reused */
static size_t work_size;

static uint32_t get32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static bool is_meta(const uint8_t *blk)
{
	return (get32(blk + 4) & 0xffff) == ('P' | 'F' << 8);
}

static int build(struct base *b, uint64_t size, uint32_t shards, bool crash)
{
	struct pfs_store_opts so = { .ckpt_interval_ms = -1 };
	struct pfs_dev *dev;
	struct pfs_store *st;
	struct pfs_fs *fs;
	uint64_t orphan;
	uint8_t *img;
	int ret;

	img = pfs_dev_buf_alloc((size_t)size);
	if (!img)
		return -ENOMEM;
	ret = pfs_fuzz_newfs(size, shards, &dev);
	if (ret)
		return ret;
	ret = pfs_dev_pread(dev, img, (size_t)size, 0);
	pfs_dev_close(dev);
	if (!ret)
		ret = pfs_dev_open_mem_over(img, size, PFS_FUZZ_SECTOR, &dev);
	if (!ret)
		ret = pfs_store_open_dev(dev, &so, &st);
	if (ret)
		return ret;
	ret = pfs_fs_open(st, &fs);
	if (!ret) {
		ret = pfs_fuzz_populate(fs, &orphan);
		if (!ret && crash) {
			b->img = malloc((size_t)size);	/* as the device is now */
			if (b->img)
				memcpy(b->img, img, (size_t)size);
		}
		if (!ret)
			ret = pfs_fs_inode_release(fs, orphan);
		pfs_fs_close(fs);
	}
	if (pfs_store_close(st) && !ret)
		ret = -EIO;
	if (ret)
		return ret;
	if (!crash) {
		b->img = malloc((size_t)size);
		if (b->img)
			memcpy(b->img, img, (size_t)size);
	}
	pfs_dev_buf_free(img);
	if (!b->img)
		return -ENOMEM;
	b->size = (size_t)size;
	b->meta = malloc((b->size / 4096) * sizeof(*b->meta));
	if (!b->meta)
		return -ENOMEM;
	for (size_t i = 1; i < b->size / 4096; i++)
		if (is_meta(b->img + i * 4096))
			b->meta[b->nmeta++] = (uint32_t)i;
	return 0;
}

/* The bases and the work buffer, once per process. */
static int setup(void)
{
	static int done;

	if (done)
		return done < 0 ? -EIO : 0;
	done = -1;
	if (build(&bases[0], 4u << 20, 1, false) || build(&bases[1], 4u << 20, 1, true) ||
	    build(&bases[2], 8u << 20, 2, false)) {
		fprintf(stderr, "walk: cannot build the base images\n");
		abort();
	}
	work_size = 8u << 20;
	work = pfs_dev_buf_alloc(work_size);
	if (!work)
		abort();
	done = 1;
	return 0;
}

/* The image of an input in work: its base, patched. Its size, or 0. */
static size_t apply(const uint8_t *data, size_t size)
{
	const struct base *b;
	uint32_t sealed[MAX_PATCHES];
	unsigned nsealed = 0, npatch = 0;
	size_t at = 1;

	if (!size)
		return 0;
	b = &bases[data[0] % BASES];
	memcpy(work, b->img, b->size);
	while (at + 5 <= size && npatch++ < MAX_PATCHES && b->nmeta) {
		uint32_t blk = b->meta[(data[at] | data[at + 1] << 8) % b->nmeta];
		uint32_t off = (uint32_t)(data[at + 2] | data[at + 3] << 8) % 4096;
		unsigned n = 1 + (data[at + 4] & 0x3f);
		bool seal = !(data[at + 4] & 0x80);

		at += 5;
		if (at + n > size)
			n = (unsigned)(size - at);
		if (off + n > 4096)
			n = 4096 - off;
		memcpy(work + (size_t)blk * 4096 + off, data + at, n);
		at += n;
		if (seal && nsealed < MAX_PATCHES)
			sealed[nsealed++] = blk;
	}
	for (unsigned i = 0; i < nsealed; i++) {
		uint8_t *p = work + (size_t)sealed[i] * 4096;
		uint32_t cover = get32(p + 8);

		if (cover >= 64 && cover <= 4096)
			pfs_block_seal(p);
	}
	return b->size;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pfs_store_opts so = {
		.cache_blocks = 64,	/* a few MiB of image; small, so that */
		.onode_cache = 64,	/* eviction paths run too */
		.ckpt_interval_ms = -1,
	};
	struct walk w = { .ndirs = 0 };
	struct pfs_store *st;
	struct pfs_dev *dev;
	size_t len;
	int ret, cret = 0;

	if (setup())
		return 0;
	len = apply(data, size);
	if (!len || pfs_dev_open_mem_over(work, len, PFS_FUZZ_SECTOR, &dev))
		return 0;
	ret = pfs_store_open_dev(dev, &so, &st);
	if (!ret) {
		ret = pfs_fs_open(st, &w.fs);
		if (!ret) {
			w.buf = malloc(WALK_READ);
			w.names = malloc(WALK_READ);
			if (w.buf && w.names)
				walk(&w);
			free(w.buf);
			free(w.names);
			pfs_fs_close(w.fs);
		}
		cret = pfs_store_close(st);
	}
	if (getenv("PFS_FUZZ_VERBOSE"))
		fprintf(stderr, "open: %d, close: %d, dirs %u, entries %u\n", ret, cret,
			w.ndirs, w.entries);
	return 0;
}

/* ---- the mutator -------------------------------------------------------------- */

size_t LLVMFuzzerMutate(uint8_t *data, size_t size, size_t max_size) __attribute__((weak));

#define rnd pfs_fuzz_rnd

/* Values on the edges of the checks, or near what is there. */
static uint64_t value(uint32_t *s, uint64_t old)
{
	static const uint64_t v[] = {
		0, 1, 2, 0x7f, 0x80, 0xff, 0x100, 0xfff, 0x1000, 0xffff, 0x10000,
		0x7fffffff, 0x80000000, 0xffffffff, UINT64_C(0x100000000),
		UINT64_C(1) << 40, UINT64_C(1) << 52, UINT64_C(0x7fffffffffffffff),
		UINT64_C(0xffffffffffffffff),
	};

	switch (rnd(s) % 4) {
	case 0:
		return v[rnd(s) % (sizeof(v) / sizeof(v[0]))];
	case 1:
		return v[rnd(s) % (sizeof(v) / sizeof(v[0]))] - 1;
	case 2:
		return old + (uint64_t)(int64_t)((int32_t)(rnd(s) % 65) - 32);
	default:
		return (uint64_t)rnd(s) << 32 | rnd(s);
	}
}

/*
 * Add a patch (a field of a metadata block of the chosen base, most often
 * in its first 512 bytes where the headers and first records are), change
 * one, or let libFuzzer mutate the bytes.
 */
size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
			       unsigned int seed)
{
	uint32_t s = seed * 2654435761u | 1;
	const struct base *b;
	unsigned w, blk, off;
	uint64_t old = 0, v;

	if (setup() || max_size < 16)
		return size;
	if (!size) {
		data[0] = (uint8_t)rnd(&s);
		size = 1;
	}
	if (rnd(&s) % 8 == 0 && LLVMFuzzerMutate)
		return LLVMFuzzerMutate(data, size, max_size);
	b = &bases[data[0] % BASES];
	if (!b->nmeta)
		return size;
	w = 1u << (rnd(&s) % 4);
	if (size + 5 + w > max_size || (size > 1 && rnd(&s) % 4 == 0))
		size = 1 + (rnd(&s) % 2 ? 0 : (size - 1) / 2);	/* start again, or keep half */
	if (size + 5 + w > max_size)
		return size;
	blk = rnd(&s) % b->nmeta;
	off = rnd(&s) % 4 ? rnd(&s) % 512 : rnd(&s) % 4096;
	if (off + w > 4096)
		off = 4096 - w;
	for (unsigned i = 0; i < w; i++)
		old |= (uint64_t)b->img[(size_t)b->meta[blk] * 4096 + off + i] << (8 * i);
	v = value(&s, old);
	data[size] = (uint8_t)blk;
	data[size + 1] = (uint8_t)(blk >> 8);
	data[size + 2] = (uint8_t)off;
	data[size + 3] = (uint8_t)(off >> 8);
	data[size + 4] = (uint8_t)((w - 1) | (rnd(&s) % 8 == 0 ? 0x80 : 0));
	for (unsigned i = 0; i < w; i++)
		data[size + 5 + i] = (uint8_t)(v >> (8 * i));
	return size + 5 + w;
}
