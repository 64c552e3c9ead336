/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * crashtest: crash consistency of the namespace layer and the store, in
 * the manner of B3 (bounded workloads) over a recording device (as
 * xfstests over dm-log-writes), in process.
 *
 * A workload is a sequence of operations, each followed by a persistence
 * call (fsync, fdatasync, or fsync of the parent directory). The operations
 * (enum op) cover the namespace, small and large writes, and one write
 * larger than its shard's free space, which goes on in the other shard. It runs on a
 * fresh file system whose device records every write and flush. After
 * each operation the whole tree is captured (names, types, modes, link
 * counts, sizes, contents, symlink targets, xattrs): S_0 .. S_n.
 *
 * Crash states: every prefix of the recording up to a flush, plus the
 * writes in flight after it (every subset when there are at most three,
 * random subsets otherwise), one of them torn at a sector boundary. Each
 * is recovered (the store replays its WALs) and captured again as C. The
 * oracle, per inode (a shard's WAL is ordered, but shards are not ordered
 * against each other, so only what each call promises is checked):
 *
 *   O1. For every persistence call acknowledged before the crash point,
 *       what it synced (fsync: the file's data, size, attributes and
 *       xattrs; fdatasync: data and size; fsync of a directory: its
 *       entries and attributes) is in C as it was then or as a later
 *       operation left it. A rename is never half done (both directories'
 *       entries are whole states), a file never shows another's data
 *       (each write has its own byte).
 *   O1b. Every inode in C is as some S_j had it, promised or not: an
 *       operation is all there or not at all.
 *   O2. fsck.posfs's checker, read-only on the crashed image, finds
 *       nothing to repair.
 *   O3. A crash during recovery is a crash point too: recovery's own
 *       writes are recorded, cut at each of its flushes, recovered again,
 *       and held to O1.
 *
 * Random runs, in the manner of fsx: a thread runs random operations
 * (writes of every size, truncate, punch, zero range, fallocate, rename
 * with and without NOREPLACE, unlink, xattrs, copy_file_range clones)
 * over a few files of its own directories, each followed at random by
 * nothing, fsync, fdatasync or fsync of the directory, and reads every
 * file back against an in-memory model after each operation. One thread,
 * then three at once over directories spread across four shards: each
 * thread's subtree has its own history, held to the same oracle.
 *
 * Usage: crashtest [-1DfLrxz] [-s SEED] [-R T:N:SEED] [-v] | -P. By default the bounded set
 * of make check runs (every one-operation workload, 150 of two and 30 of
 * three, six random runs at a sample of their crash points); -f runs
 * every one- and two-operation workload, 200 of three and 20 long random
 * runs at every crash point (make crashtest); -1 only the one-operation
 * workloads; -r only the random runs; -R T:N:SEED the one random run a
 * failure names; -L the random runs without their crash states (the
 * live checks only, fast); -x stops at the first failure; -z compresses
 * every large write (mount option compress; the random runs' data then
 * compresses too, and writes into compressed extents write them again);
 * -D discards (mount option discard: each checkpoint discards what it
 * frees, and every operation of a bounded workload is followed by a trim
 * of the whole device before its persistence call, while its frees are
 * not yet durable; a discarded range is rebuilt as garbage,
 * not zeros, in every crash state, and a discard in flight at the crash
 * is lost, its old bytes left).
 * -P
 * says whether the planted bugs are built in (src/plant.h). Prints the
 * workloads and crash states checked and the failures; exits 1 when any
 * failed.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/stat.h>
#include <unistd.h>

#include "posfs/check.h"
#include "posfs/crc32c.h"
#include "posfs/fs.h"
#include "posfs/io.h"
#include "posfs/store.h"
#include "../unit/testdev.h"

#define DEVSZ		(16ull << 20)	/* small: every crash state copies it several times */
#define MAXOPS		3
#define SUBSETS		8	/* random subsets of in-flight writes when many */

static const struct pfs_fs_cred root = { .uid = 0, .gid = 0, .umask = 022 };
static uint64_t rng_state = 1;
static bool verbose;
static bool first_failure;	/* -x: stop at the first failure */
static bool live_only;		/* -L: random runs without their crash states */

static uint64_t rng_next(uint64_t *state)
{
	uint64_t z = (*state += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
}

static uint64_t rng(void)
{
	return rng_next(&rng_state);
}

/* ---- capturing a tree ------------------------------------------------------ */

struct text {
	char *s;
	size_t n, cap;
};

static void put(struct text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct text *t, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(t->s ? t->s + t->n : NULL, t->s ? t->cap - t->n : 0, fmt, ap);
		va_end(ap);
		if (t->s && t->n + (size_t)n < t->cap)
			break;
		t->cap = (t->cap + (size_t)n + 1) * 2;
		t->s = realloc(t->s, t->cap);
		if (!t->s)
			abort();
	}
	t->n += (size_t)n;
}

struct dent {
	char name[256];
	uint64_t ino;
};

struct dlist {
	struct dent *d;
	size_t n, cap;
};

static int list_fn(void *arg, const char *name, uint64_t ino, unsigned type, uint64_t next)
{
	struct dlist *l = arg;

	(void)type;
	(void)next;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return 0;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 16;
		l->d = realloc(l->d, l->cap * sizeof(*l->d));
	}
	snprintf(l->d[l->n].name, sizeof(l->d[l->n].name), "%s", name);
	l->d[l->n++].ino = ino;
	return 0;
}

static int dent_cmp(const void *a, const void *b)
{
	return strcmp(((const struct dent *)a)->name, ((const struct dent *)b)->name);
}

/*
 * Everything a user can see of the tree under dir, a line per inode,
 * starting "<ino> ": a directory's entries (name=ino, in name order) and
 * attributes; a file's size and data checksum, then after " |" its
 * attributes and xattrs (what fdatasync does not promise). Hard links
 * repeat a file's line.
 */
static int capture_dir(struct pfs_fs *fs, uint64_t dir, struct text *t)
{
	struct dlist l = { 0 };
	struct pfs_fs_attr da;
	int ret = pfs_fs_readdir(fs, dir, 0, list_fn, &l);

	if (!ret)
		ret = pfs_fs_getattr(fs, dir, &da);
	if (ret) {
		free(l.d);
		return ret;
	}
	if (l.n)	/* an empty directory has no array at all */
		qsort(l.d, l.n, sizeof(*l.d), dent_cmp);
	put(t, "%" PRIu64 " dir", dir);
	for (size_t i = 0; i < l.n; i++)
		put(t, " %s=%" PRIu64, l.d[i].name, l.d[i].ino);
	put(t, " | m%o n%u\n", da.mode, da.nlink);
	for (size_t i = 0; !ret && i < l.n; i++) {
		struct pfs_fs_attr a;
		char xl[1024];
		ssize_t xn;

		ret = pfs_fs_getattr(fs, l.d[i].ino, &a);
		if (ret)
			break;
		if (S_ISDIR(a.mode)) {
			ret = capture_dir(fs, l.d[i].ino, t);
			continue;
		}
		put(t, "%" PRIu64 " s%" PRIu64, a.ino, a.size);
		if (S_ISREG(a.mode)) {
			uint8_t *buf = malloc(a.size ? a.size : 1);
			ssize_t n = pfs_fs_read(fs, l.d[i].ino, 0, a.size, buf);

			if (n != (ssize_t)a.size) {
				free(buf);
				ret = n < 0 ? (int)n : -EIO;
				break;
			}
			put(t, " c%08x", pfs_crc32c(0, buf, a.size));
			free(buf);
		} else if (S_ISLNK(a.mode)) {
			char target[256];
			ssize_t n = pfs_fs_readlink(fs, l.d[i].ino, target, sizeof(target) - 1);

			if (n < 0) {
				ret = (int)n;
				break;
			}
			target[n] = 0;
			put(t, " -> %s", target);
		}
		put(t, " | m%o n%u", a.mode, a.nlink);
		xn = pfs_fs_listxattr(fs, l.d[i].ino, xl, sizeof(xl));
		for (ssize_t p = 0; xn > 0 && p < xn; p += (ssize_t)strlen(xl + p) + 1) {
			char v[256];
			ssize_t vn = pfs_fs_getxattr(fs, l.d[i].ino, xl + p, v, sizeof(v));

			put(t, " x:%s=%zd:%08x", xl + p, vn, vn > 0 ? pfs_crc32c(0, v, (size_t)vn) : 0);
		}
		put(t, "\n");
	}
	free(l.d);
	return ret;
}

static char *capture(struct pfs_fs *fs)
{
	struct text t = { 0 };

	put(&t, "\n");		/* every line, the first too, follows a newline */
	if (capture_dir(fs, POSFS_ROOT_OID, &t)) {
		free(t.s);
		return NULL;
	}
	return t.s;
}

/* The view of inode ino in a capture ("" when absent): its whole line,
 * or with data_only the part before " |". */
static void view(const char *cap, uint64_t ino, bool data_only, char *out, size_t len)
{
	char key[32];
	const char *p, *e;
	size_t n;

	snprintf(key, sizeof(key), "\n%" PRIu64 " ", ino);
	p = strstr(cap, key);
	if (!p) {
		out[0] = 0;
		return;
	}
	p++;
	e = strchr(p, '\n');
	if (data_only && strstr(p, " |") && strstr(p, " |") < e)
		e = strstr(p, " |");
	n = (size_t)(e - p) < len - 1 ? (size_t)(e - p) : len - 1;
	memcpy(out, p, n);
	out[n] = 0;
}

/* ---- operations -------------------------------------------------------------- */

enum op {
	OP_CREATE, OP_MKDIR, OP_WRITE, OP_OVERWRITE, OP_APPEND, OP_TRUNCATE, OP_FALLOCATE,
	OP_PUNCH, OP_LINK, OP_UNLINK, OP_RENAME, OP_RENAME_NOREPLACE, OP_RENAME_EXCHANGE,
	OP_SYMLINK, OP_SETXATTR, OP_RMXATTR, OP_RMDIR, OP_BIGWRITE, OP_FILL, NOPS
};

static const char *const op_names[] = {
	"create", "mkdir", "write", "overwrite", "append", "truncate", "fallocate", "punch",
	"link", "unlink", "rename", "rename_noreplace", "rename_exchange", "symlink",
	"setxattr", "removexattr", "rmdir", "bigwrite", "fill",
};

enum persist { P_FSYNC, P_FDATASYNC, P_FSYNCDIR, NPERSIST };
static const char *const persist_names[] = { "fsync", "fdatasync", "fsyncdir" };

/* The starting tree: /A/foo (8 KiB, an xattr), /A/sub/, /B/, /bar (4 KiB). */
struct names {
	uint64_t A, B, sub, foo, bar;
};

static uint64_t lookup(struct pfs_fs *fs, uint64_t dir, const char *name)
{
	struct pfs_fs_attr a;

	return pfs_fs_lookup(fs, dir, name, &a) ? 0 : a.ino;
}

static int write_pattern(struct pfs_fs *fs, uint64_t ino, uint64_t off, size_t len, int tag)
{
	static __thread uint8_t buf[65536];
	ssize_t n;

	if (len > sizeof(buf))
		return -EINVAL;
	memset(buf, tag, len);
	n = pfs_fs_write(fs, ino, off, len, buf, &root);
	return n < 0 ? (int)n : 0;
}

static int setup(struct pfs_fs *fs, struct names *nm)
{
	struct pfs_fs_attr a;
	int ret;

	ret = pfs_fs_mkdir(fs, POSFS_ROOT_OID, "A", 0755, &root, &a);
	nm->A = a.ino;
	if (!ret)
		ret = pfs_fs_mkdir(fs, POSFS_ROOT_OID, "B", 0755, &root, &a);
	nm->B = a.ino;
	if (!ret)
		ret = pfs_fs_mkdir(fs, nm->A, "sub", 0755, &root, &a);
	nm->sub = a.ino;
	if (!ret)
		ret = pfs_fs_mknod(fs, nm->A, "foo", S_IFREG | 0644, 0, &root, &a);
	nm->foo = a.ino;
	if (!ret)
		ret = write_pattern(fs, nm->foo, 0, 8192, 'f');
	if (!ret)
		ret = pfs_fs_setxattr(fs, nm->foo, "user.a", "one", 3, 0);
	if (!ret)
		ret = pfs_fs_mknod(fs, POSFS_ROOT_OID, "bar", S_IFREG | 0644, 0, &root, &a);
	nm->bar = a.ino;
	if (!ret)
		ret = write_pattern(fs, nm->bar, 0, 4096, 'b');
	/* the workloads' renames between A and B are cross-shard ones:
	 * top-level directories go to different shards (fs/place.c, P1) */
	if (!ret && POSFS_OID_SHARD(nm->A) == POSFS_OID_SHARD(nm->B))
		ret = -EXDEV;
	return ret;
}

/*
 * Operation op as the i-th of its workload. Errors are results (an
 * operation on a name a previous one removed fails, as it would for a
 * program); *target and *parent get what the persistence call syncs.
 */
struct history;
static void history_add(struct history *h, char *s);

static void run_op(struct pfs_fs *fs, const struct names *nm, enum op op, int i,
		   uint64_t *target, uint64_t *parent, struct history *h)
{
	struct pfs_fs_attr a;
	char name[32];
	uint64_t foo = lookup(fs, nm->A, "foo"), bar = lookup(fs, POSFS_ROOT_OID, "bar");
	int tag = 'p' + i;

	*target = foo;
	*parent = nm->A;
	switch (op) {
	case OP_CREATE:
		snprintf(name, sizeof(name), "c%d", i);
		if (!pfs_fs_mknod(fs, nm->A, name, S_IFREG | 0644, 0, &root, &a)) {
			/* two operations: a commit (a cross-shard one flushes
			 * the shard's group) may fall between them */
			history_add(h, capture(fs));
			*target = a.ino;
			write_pattern(fs, a.ino, 0, 3000, tag);
		}
		break;
	case OP_MKDIR:
		snprintf(name, sizeof(name), "d%d", i);
		*parent = nm->B;
		*target = pfs_fs_mkdir(fs, nm->B, name, 0755, &root, &a) ? nm->B : a.ino;
		break;
	case OP_WRITE:
		if (foo)
			write_pattern(fs, foo, 0, 12288, tag);
		break;
	case OP_OVERWRITE:
		if (foo)
			write_pattern(fs, foo, 2048, 4096, tag);
		break;
	case OP_APPEND:
		*target = bar;
		*parent = POSFS_ROOT_OID;
		if (bar) {
			struct pfs_fs_attr b;

			if (!pfs_fs_getattr(fs, bar, &b))
				write_pattern(fs, bar, b.size, 5000, tag);
		}
		break;
	case OP_TRUNCATE:
		if (foo) {
			a = (struct pfs_fs_attr){ .size = 3000 };
			pfs_fs_setattr(fs, foo, &a, PFS_FS_SET_SIZE, &root, NULL);
		}
		break;
	case OP_FALLOCATE:
		*target = bar;
		*parent = POSFS_ROOT_OID;
		if (bar)
			pfs_fs_fallocate(fs, bar, 0, 0, 65536);
		break;
	case OP_PUNCH:
		if (foo)
			pfs_fs_fallocate(fs, foo, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, 0, 4096);
		break;
	case OP_LINK:
		snprintf(name, sizeof(name), "l%d", i);
		*parent = nm->B;
		if (foo)
			pfs_fs_link(fs, foo, nm->B, name, &a);
		break;
	case OP_UNLINK:
		*target = nm->A;
		pfs_fs_unlink(fs, nm->A, "foo");
		break;
	case OP_RENAME:
		snprintf(name, sizeof(name), "r%d", i);
		*parent = nm->B;
		pfs_fs_rename(fs, nm->A, "foo", nm->B, name, 0);
		break;
	case OP_RENAME_NOREPLACE:
		*target = bar;
		pfs_fs_rename(fs, POSFS_ROOT_OID, "bar", nm->A, "foo", RENAME_NOREPLACE);
		break;
	case OP_RENAME_EXCHANGE:
		pfs_fs_rename(fs, nm->A, "foo", POSFS_ROOT_OID, "bar", RENAME_EXCHANGE);
		break;
	case OP_SYMLINK:
		snprintf(name, sizeof(name), "s%d", i);
		*target = pfs_fs_symlink(fs, nm->A, name, "foo", &root, &a) ? nm->A : a.ino;
		break;
	case OP_SETXATTR:
		if (foo)
			pfs_fs_setxattr(fs, foo, "user.b", "two-values", 10, 0);
		break;
	case OP_RMXATTR:
		if (foo)
			pfs_fs_removexattr(fs, foo, "user.a");
		break;
	case OP_RMDIR:
		*target = nm->A;
		pfs_fs_rmdir(fs, nm->A, "sub");
		break;
	case OP_FILL:
		/* one write of more than A's shard holds: it goes on in the
		 * other shard's blocks (cross-shard, through the global WAL) */
		if (foo) {
			struct pfs_fs_statfs sfs;
			size_t want = 0;
			uint8_t *big;

			if (!pfs_fs_statfs(fs, &sfs))
				want = (size_t)(sfs.bfree * sfs.bsize * 3 / 4) & ~(size_t)4095;
			big = want ? malloc(want) : NULL;
			if (big) {
				memset(big, tag, want);
				pfs_fs_write(fs, foo, 0, want, big, &root);
				free(big);
			}
		}
		break;
	case OP_BIGWRITE:
		/* past the small-write threshold: out of place, data first */
		if (foo) {
			/* three writes: states between them are states too */
			write_pattern(fs, foo, 0, 16384, tag);
			history_add(h, capture(fs));
			write_pattern(fs, foo, 16384, 16384, tag);
			history_add(h, capture(fs));
			write_pattern(fs, foo, 0, 65536, tag);
		}
		break;
	default:
		break;
	}
	if (!*target)
		*target = *parent;
}

/* ---- recordings and their oracle ---------------------------------------------------- */

/*
 * The states a part of the tree went through: S[0] after the setup, S[j]
 * after the j-th operation of whoever owns that part (the one workload,
 * or one thread of a threaded run; only the owner changes it).
 */
struct history {
	char **S;
	int len, cap;
};

static void history_add(struct history *h, char *s)
{
	if (h->len == h->cap) {
		h->cap = h->cap ? h->cap * 2 : 8;
		h->S = realloc(h->S, (size_t)h->cap * sizeof(*h->S));
		if (!h->S)
			abort();
	}
	h->S[h->len++] = s;
}

/* What a persistence call acknowledged at event ev promised: inode ino of
 * history h as in some state from S[k] on. */
struct promise {
	size_t ev;
	uint64_t ino;
	bool data_only;		/* fdatasync */
	int h, k;
};

/* One recorded run: the device's writes from the base image on. */
struct recording {
	char name[512];		/* what ran, for failure messages */
	struct pfs_devrec *rec;
	const uint8_t *base;
	size_t setup_end;	/* first event after the setup's sync */
	struct history *H;
	int nh;
	struct promise *pr;
	size_t npr, prcap;
};

static void promise_add(struct recording *rc, struct promise p)
{
	if (rc->npr == rc->prcap) {
		rc->prcap = rc->prcap ? rc->prcap * 2 : 16;
		rc->pr = realloc(rc->pr, rc->prcap * sizeof(*rc->pr));
		if (!rc->pr)
			abort();
	}
	rc->pr[rc->npr++] = p;
}

struct result {
	uint64_t workloads, states, recovery_states, failed;
};

static int compress_mode;	/* -z: pfs_store_opts.compress */
static bool discard_mode;	/* -D: pfs_store_opts.discard, and trims */

static int open_fs(struct pfs_dev *dev, struct pfs_store **st, struct pfs_fs **fs)
{
	struct pfs_store_opts so = { .ckpt_interval_ms = -1, .cache_blocks = 512,
				     .compress = compress_mode, .discard = discard_mode };
	int ret = pfs_store_open_dev(dev, &so, st);

	if (ret)
		return ret;
	ret = pfs_fs_open(*st, fs);
	if (ret) {
		pfs_store_close(*st);
		*st = NULL;
	}
	return ret;
}

/* A memory device holding bytes. */
static struct pfs_dev *mem_with(const uint8_t *bytes)
{
	struct pfs_dev *dev;

	if (pfs_dev_open_mem(DEVSZ, 512, &dev))
		return NULL;
	if (pfs_dev_pwrite(dev, bytes, DEVSZ, 0)) {
		pfs_dev_close(dev);
		return NULL;
	}
	return dev;
}

/* O2: the checker, read-only, on a copy of the crashed image. */
struct fsck_ctx {
	const uint8_t *img;
	uint64_t found;
	char first[256];
};

static int fsck_open(void *arg, bool readonly, struct pfs_dev **devp)
{
	struct fsck_ctx *f = arg;

	(void)readonly;
	*devp = mem_with(f->img);
	return *devp ? 0 : -ENOMEM;
}

static bool fsck_ask(void *arg, const struct pfs_problem_desc *d, const char *msg)
{
	struct fsck_ctx *f = arg;

	if (!f->found++)
		snprintf(f->first, sizeof(f->first), "%#06x %s: %s", d->code, d->name, msg);
	return false;
}

static int fsck_clean(const uint8_t *img, char *why, size_t cap)
{
	struct fsck_ctx f = { .img = img };
	struct pfs_check_ops ops = { .open_dev = fsck_open, .ask = fsck_ask, .arg = &f };
	struct pfs_check_opts o = { .readonly = true, .force = true };
	struct pfs_check_result r;
	int ret = pfs_check_run(&o, &ops, &r);

	if (ret)
		snprintf(why, cap, "fsck could not run: %s", strerror(-ret));
	else if (f.found)
		snprintf(why, cap, "fsck found %" PRIu64 " problems, first %s", f.found, f.first);
	return ret || f.found ? -1 : 0;
}

/* Recover img and capture it: NULL with why on failure. */
static char *recover(const uint8_t *img, char *why, size_t cap)
{
	struct pfs_dev *dev = mem_with(img);
	struct pfs_store *st;
	struct pfs_fs *fs;
	char *c;
	int ret;

	if (!dev) {
		snprintf(why, cap, "no memory");
		return NULL;
	}
	ret = open_fs(dev, &st, &fs);
	if (ret) {
		snprintf(why, cap, "recovery failed: %s", strerror(-ret));
		return NULL;
	}
	c = capture(fs);
	if (!c)
		snprintf(why, cap, "the recovered tree does not read back");
	pfs_fs_close(fs);
	pfs_store_close(st);
	return c;
}

/* Is ino's view in c the one of some S_j of h, j >= k? */
static bool holds(const struct history *h, int k, const char *c, uint64_t ino, bool data_only)
{
	char want[4096], got[4096];

	view(c, ino, data_only, got, sizeof(got));
	for (int j = k; j < h->len; j++) {
		view(h->S[j], ino, data_only, want, sizeof(want));
		if (!strcmp(want, got))
			return true;
	}
	return false;
}

static bool appears(const struct history *h, uint64_t ino)
{
	char key[32];

	snprintf(key, sizeof(key), "\n%" PRIu64 " ", ino);
	for (int j = 0; j < h->len; j++)
		if (strstr(h->S[j], key))
			return true;
	return false;
}

struct inoset {
	uint64_t *v;
	size_t n, cap;
};

static void inoset_add_lines(struct inoset *s, const char *t)
{
	for (const char *p = strchr(t, '\n'); p && p[1]; p = strchr(p + 1, '\n')) {
		uint64_t ino = strtoull(p + 1, NULL, 10);
		size_t i;

		for (i = 0; i < s->n && s->v[i] != ino; i++)
			;
		if (i < s->n)
			continue;
		if (s->n == s->cap) {
			s->cap = s->cap ? s->cap * 2 : 32;
			s->v = realloc(s->v, s->cap * sizeof(*s->v));
			if (!s->v)
				abort();
		}
		s->v[s->n++] = ino;
	}
}

/*
 * O1b: every inode of c (and of every state) is as some state of a
 * history it belongs to had it: an operation is never half there, whether
 * or not it was promised (a record replayed without the data it points
 * at shows here).
 */
static bool states_whole(const struct recording *rc, const char *c, char *why, size_t cap)
{
	struct inoset s = { 0 };
	bool ok = true;

	inoset_add_lines(&s, c);
	for (int h = 0; h < rc->nh; h++)
		for (int j = 0; j < rc->H[h].len; j++)
			inoset_add_lines(&s, rc->H[h].S[j]);
	for (size_t i = 0; ok && i < s.n; i++) {
		bool owned = false, seen = false;

		for (int h = 0; !seen && h < rc->nh; h++) {
			if (!appears(&rc->H[h], s.v[i]))
				continue;
			owned = true;
			seen = holds(&rc->H[h], 0, c, s.v[i], false);
		}
		if (!seen) {
			char got[256];

			view(c, s.v[i], false, got, sizeof(got));
			snprintf(why, cap, "inode %" PRIu64 " is '%s', a state it never had%s",
				 s.v[i], got, owned ? "" : " (unknown inode)");
			ok = false;
		}
	}
	free(s.v);
	return ok;
}

/* O1: every promise acknowledged up to event limit holds in c. */
static bool promises_hold(const struct recording *rc, size_t limit, const char *c, char *why,
			  size_t cap)
{
	for (size_t i = 0; i < rc->npr; i++) {
		const struct promise *p = &rc->pr[i];

		if (p->ev > limit)
			continue;
		if (!holds(&rc->H[p->h], p->k, c, p->ino, p->data_only)) {
			char got[256];

			view(c, p->ino, p->data_only, got, sizeof(got));
			snprintf(why, cap, "inode %" PRIu64 " synced at state %d%s is '%s', "
				 "no state from then on", p->ino, p->k,
				 rc->nh > 1 ? " of its thread" : "", got);
			return false;
		}
	}
	return true;
}

static void fail(struct result *r, const char *name, const char *what, const char *why)
{
	r->failed++;
	if (r->failed <= 20)
		fprintf(stderr, "FAILED: [%s] %s: %s\n", name, what, why);
	if (first_failure) {
		printf("crashtest: stopped at the first failure\n");
		exit(1);
	}
}

/*
 * O3: recover img on a recording device; then every flush of that
 * recovery is a crash point of its own, recovered again (from a copy,
 * tmp) and held to O1.
 */
static void crash_recovery(const uint8_t *img, uint8_t *tmp, const struct recording *rc,
			   size_t limit, struct result *r)
{
	struct pfs_dev *dev = mem_with(img), *rdev;
	struct pfs_devrec *rec;
	struct pfs_store *st;
	struct pfs_fs *fs;
	char why[512], what[128];

	if (!dev || pfs_devrec_wrap(dev, &rdev)) {
		if (dev)
			pfs_dev_close(dev);
		fail(r, rc->name, "recording a recovery", "no memory");
		return;
	}
	rec = pfs_devrec_of(rdev);
	if (open_fs(rdev, &st, &fs)) {
		fail(r, rc->name, "recording a recovery", "recovery failed");
		return;
	}
	/* the recording lives while the store (its owner) is open */
	for (size_t g = 0; g < pfs_devrec_count(rec); g++) {
		struct pfs_dev *d;
		char *c;

		if (pfs_devrec_event(rec, g)->kind != PFS_REC_FLUSH)
			continue;
		d = mem_with(img);
		if (!d || pfs_devrec_apply(rec, 0, g + 1, d) || pfs_dev_pread(d, tmp, DEVSZ, 0)) {
			if (d)
				pfs_dev_close(d);
			continue;
		}
		pfs_dev_close(d);
		r->recovery_states++;
		snprintf(what, sizeof(what), "crash before event %zu, then in its recovery at %zu",
			 limit, g);
		c = recover(tmp, why, sizeof(why));
		if (!c || !promises_hold(rc, limit, c, why, sizeof(why)) ||
		    !states_whole(rc, c, why, sizeof(why)))
			fail(r, rc->name, what, why);
		free(c);
	}
	pfs_fs_close(fs);
	pfs_store_close(st);
}

/* How the crash states of a recording are chosen. */
struct sampling {
	int recovery_every;	/* O3 for every n-th state */
	int max_points;		/* flushes to crash at (0: all), chosen at random */
	int max_variants;	/* subsets of the in-flight writes when many */
};

/* Build the image of a crash after the flush at f with the subset of the
 * in-flight writes, one torn when torn is set. */
static int crash_image(const struct recording *rc, size_t f, const size_t *inflight, size_t nin,
		       uint64_t subset, bool torn, uint8_t *img)
{
	struct pfs_dev *d = mem_with(rc->base);
	int ret;

	if (!d)
		return -ENOMEM;
	if (!discard_mode) {
		ret = pfs_devrec_apply(rc->rec, 0, f + 1, d);
	} else {
		/* -D: discarded blocks read back as garbage */
		ret = 0;
		for (size_t i = 0; !ret && i <= f; i++) {
			const struct pfs_devrec_event *e = pfs_devrec_event(rc->rec, i);

			if (e->kind == PFS_REC_WRITE)
				ret = pfs_devrec_apply_one(rc->rec, i, 0, d);
			else if (e->kind == PFS_REC_DISCARD)
				ret = pfs_devrec_apply_discard(rc->rec, i, 0xa5, d);
		}
	}
	for (size_t i = 0; !ret && i < nin; i++) {
		const struct pfs_devrec_event *e = pfs_devrec_event(rc->rec, inflight[i]);
		uint32_t cut = 0;

		if (!(subset >> (i % 64) & 1))
			continue;
		/* a torn write: only its first sectors */
		if (torn && e->len > 512)
			cut = 512 * (1 + (uint32_t)(rng() % (e->len / 512 - 1 ? e->len / 512 - 1 : 1)));
		ret = pfs_devrec_apply_one(rc->rec, inflight[i], cut < e->len ? cut : 0, d);
	}
	if (!ret)
		ret = pfs_dev_pread(d, img, DEVSZ, 0);
	pfs_dev_close(d);
	return ret;
}

/*
 * Check the crash states of a recording: after a flush f (the setup's
 * last one first), with a subset of the writes issued before the next
 * flush. The crash may come just before that next flush, so every
 * promise made before it (limit) must hold.
 */
static void check_states(const struct recording *rc, const struct sampling *sm, struct result *r)
{
	uint8_t *img = pfs_dev_buf_alloc(DEVSZ), *img2 = pfs_dev_buf_alloc(DEVSZ);
	size_t nev = pfs_devrec_count(rc->rec), npoints = 0, *points = NULL;
	char why[512], what[128];
	uint64_t nstate = 0;

	if (!img || !img2)
		goto out;
	points = malloc((nev + 1) * sizeof(*points));
	if (!points)
		goto out;
	for (size_t f = rc->setup_end - 1; f < nev; f++)
		if (pfs_devrec_event(rc->rec, f)->kind == PFS_REC_FLUSH)
			points[npoints++] = f;
	/* a random sample of the points, kept in order */
	while (sm->max_points && npoints > (size_t)sm->max_points) {
		size_t drop = rng() % npoints;

		memmove(points + drop, points + drop + 1, (npoints - drop - 1) * sizeof(*points));
		npoints--;
	}
	for (size_t p = 0; p < npoints; p++) {
		size_t f = points[p], inflight[64], nin = 0, limit = f + 1;
		int variants;

		for (; limit < nev && pfs_devrec_event(rc->rec, limit)->kind != PFS_REC_FLUSH;
		     limit++)
			if (pfs_devrec_event(rc->rec, limit)->kind == PFS_REC_WRITE && nin < 64)
				inflight[nin++] = limit;
		variants = nin <= 3 ? 1 << nin : sm->max_variants;
		/* the last variant tears a write */
		for (int v = 0; v <= variants; v++) {
			uint64_t subset = v < variants && nin <= 3 ? (uint64_t)v : rng();
			char *c;

			if (crash_image(rc, f, inflight, nin, subset, v == variants, img)) {
				fail(r, rc->name, "replaying the recording", "device error");
				continue;
			}
			nstate++;
			snprintf(what, sizeof(what), "crash at event %zu, variant %d", f, v);
			if (fsck_clean(img, why, sizeof(why)))
				fail(r, rc->name, what, why);
			c = recover(img, why, sizeof(why));
			if (!c) {
				fail(r, rc->name, what, why);
				continue;
			}
			if (!promises_hold(rc, limit, c, why, sizeof(why)) ||
			    !states_whole(rc, c, why, sizeof(why))) {
				fail(r, rc->name, what, why);
				if (verbose)
					fprintf(stderr, "--- recovered:%s", c);
			}
			if (nstate % (uint64_t)sm->recovery_every == 0)
				crash_recovery(img, img2, rc, limit, r);
			free(c);
		}
	}
	r->states += nstate;
out:
	free(points);
	pfs_dev_buf_free(img);
	pfs_dev_buf_free(img2);
}

static void recording_free(struct recording *rc)
{
	for (int h = 0; rc->H && h < rc->nh; h++) {
		for (int j = 0; j < rc->H[h].len; j++)
			free(rc->H[h].S[j]);
		free(rc->H[h].S);
	}
	free(rc->H);
	free(rc->pr);
}

/*
 * A fresh file system on a recording device over a memory one (base
 * holds its bytes before the recording): *fs, with the recording.
 */
static int start_recording(struct recording *rc, uint32_t shards, uint8_t *base,
			   struct pfs_store **st, struct pfs_fs **fs)
{
	struct pfs_dev *mem = pfs_test_newfs_mem(DEVSZ, shards, 1 << 20), *recdev;

	if (!mem)
		return -ENOMEM;
	if (pfs_dev_pread(mem, base, DEVSZ, 0) || pfs_devrec_wrap(mem, &recdev)) {
		pfs_dev_close(mem);
		return -EIO;
	}
	rc->base = base;
	rc->rec = pfs_devrec_of(recdev);
	return open_fs(recdev, st, fs);
}

/* ---- bounded workloads (B3's seq-1, seq-2, seq-3) ------------------------------------ */

struct workload {
	int n;
	enum op op[MAXOPS];
	enum persist p[MAXOPS];
};

static void describe(const struct workload *w, char *buf, size_t cap)
{
	size_t o = 0;

	for (int i = 0; i < w->n; i++)
		o += (size_t)snprintf(buf + o, cap - o, "%s%s+%s", i ? ", " : "",
				      op_names[w->op[i]], persist_names[w->p[i]]);
}

/* Run w and check the crash states of its recording. */
static void run_workload(const struct workload *w, struct result *r, int recovery_every)
{
	uint8_t *base = pfs_dev_buf_alloc(DEVSZ);
	struct recording rc = { .H = calloc(1, sizeof(struct history)), .nh = 1 };
	struct history *h = rc.H;
	struct sampling sm = { .recovery_every = recovery_every, .max_variants = SUBSETS };
	struct pfs_store *st = NULL;
	struct pfs_fs *fs = NULL;
	struct names nm;

	describe(w, rc.name, sizeof(rc.name));
	if (!base || !h || start_recording(&rc, 2, base, &st, &fs)) {
		fail(r, rc.name, "setup", "cannot make the file system");
		goto out;
	}
	if (setup(fs, &nm) || pfs_store_sync(st)) {
		fail(r, rc.name, "setup", "cannot make the starting tree");
		goto out_fs;
	}
	rc.setup_end = pfs_devrec_count(rc.rec);
	history_add(h, capture(fs));
	for (int i = 0; i < w->n; i++) {
		uint64_t target, parent;
		struct promise p = { .data_only = w->p[i] == P_FDATASYNC };
		char *s;

		run_op(fs, &nm, w->op[i], i, &target, &parent, h);
		if (discard_mode) {
			/* before the persistence call: its frees are not durable yet */
			uint64_t trimmed;

			if (pfs_store_trim(st, 0, UINT64_MAX, 0, &trimmed) || !trimmed) {
				fail(r, rc.name, op_names[w->op[i]], "the trim failed");
				goto out_fs;
			}
		}
		s = capture(fs);
		p.ino = w->p[i] == P_FSYNCDIR ? parent : target;
		if (!s || !h->S[0] || pfs_fs_fsync(fs, p.ino, p.data_only)) {
			free(s);
			fail(r, rc.name, op_names[w->op[i]], "the persistence call or capture failed");
			goto out_fs;
		}
		history_add(h, s);
		p.k = h->len - 1;	/* this operation's state */
		p.ev = pfs_devrec_count(rc.rec);	/* acknowledged here */
		promise_add(&rc, p);
	}
	for (int j = 0; j < h->len; j++)
		if (!h->S[j]) {
			fail(r, rc.name, "capture", "the tree does not read back");
			goto out_fs;
		}
	r->workloads++;
	check_states(&rc, &sm, r);
out_fs:
	pfs_fs_close(fs);
	pfs_store_close(st);
out:
	recording_free(&rc);
	pfs_dev_buf_free(base);
}

/* ---- random runs: fsx-style, in one thread or in several across shards ------------- */

/*
 * Each thread owns a directory T<n> with a subdirectory (the runs place
 * every directory on the next shard in turn, PFS_FS_PLACE_SPREAD, not in
 * its parent's, so that a thread spans two shards and threads spread over
 * all of them) and RFILES file slots in them. It runs random
 * operations, each followed at random by nothing, fsync, fdatasync or
 * fsync of the file's directory, and checks every file against an
 * in-memory model after every operation, as fsx does. Its history is the
 * states of its directory's subtree, which only it changes.
 */
#define RFILES		4
#define RMAXSIZE	(256u << 10)
#define RMAXTHREADS	4

struct rfile {
	uint64_t ino;		/* 0: absent */
	uint64_t dir;
	char name[16];
	uint8_t *data;		/* the model; zeros past size */
	size_t size;
};

struct rthread {
	struct pfs_fs *fs;
	struct recording *rc;
	pthread_mutex_t *lock;	/* over rc's promises */
	int h;			/* its history in rc */
	int nops;
	uint64_t rng, dir, sub;
	struct rfile f[RFILES];
	uint8_t *buf;
	char err[512];
};

static uint64_t trng(struct rthread *t)
{
	return rng_next(&t->rng);
}

static char *capture_at(struct pfs_fs *fs, uint64_t dir)
{
	struct text t = { 0 };

	put(&t, "\n");
	if (capture_dir(fs, dir, &t)) {
		free(t.s);
		return NULL;
	}
	return t.s;
}

/* The slot at (dir, name), or -1. */
static int slot_at(struct rthread *t, uint64_t dir, const char *name)
{
	for (int i = 0; i < RFILES; i++)
		if (t->f[i].ino && t->f[i].dir == dir && !strcmp(t->f[i].name, name))
			return i;
	return -1;
}

/* The live check: every file reads back as the model has it. */
static int rcheck(struct rthread *t, const char *op)
{
	for (int i = 0; i < RFILES; i++) {
		struct rfile *f = &t->f[i];
		struct pfs_fs_attr a;
		ssize_t n;

		if (!f->ino)
			continue;
		if (pfs_fs_getattr(t->fs, f->ino, &a) || a.size != f->size) {
			snprintf(t->err, sizeof(t->err), "after %s, file %s has size %" PRIu64
				 ", the model %zu", op, f->name, a.size, f->size);
			return -1;
		}
		n = pfs_fs_read(t->fs, f->ino, 0, f->size, t->buf);
		if (n != (ssize_t)f->size || memcmp(t->buf, f->data, f->size)) {
			size_t at = 0;

			while (n == (ssize_t)f->size && at < f->size && t->buf[at] == f->data[at])
				at++;
			snprintf(t->err, sizeof(t->err), "after %s, file %s reads back wrong "
				 "(read %zd of %zu, first difference at %zu)", op, f->name, n,
				 f->size, at);
			return -1;
		}
	}
	return 0;
}

static void rfill(struct rthread *t, uint8_t *p, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i += 8) {
		/* with -z, bytes that compress: a value per 64 */
		if (!compress_mode || i % 64 == 0)
			v = trng(t);
		memcpy(p + i, &v, n - i < 8 ? n - i : 8);
	}
}

/* A random range for a write-like operation: [*off, *off + *len) below
 * RMAXSIZE, often block aligned, sometimes past the out-of-place size. */
static void rrange(struct rthread *t, uint64_t *off, size_t *len)
{
	unsigned k = (unsigned)(trng(t) % 10);

	if (k < 5)
		*len = 1 + trng(t) % 8192;
	else if (k < 8)
		*len = 4096 * (1 + trng(t) % 4);
	else
		*len = 16384 + trng(t) % 49152;
	*off = trng(t) % (RMAXSIZE - *len);
	if (k >= 5 && k < 8)
		*off &= ~(uint64_t)4095;
}

/* One random operation and its persistence call. Returns -1 on a live
 * failure (t->err). */
static int rstep(struct rthread *t, int step)
{
	struct pfs_fs *fs = t->fs;
	int s = (int)(trng(t) % RFILES);
	struct rfile *f = &t->f[s];
	unsigned k = (unsigned)(trng(t) % 100);
	uint64_t off, target, parent;
	struct pfs_fs_attr a;
	const char *op = "write";
	size_t len;
	int ret = 0;
	char *state;

	if (!f->ino || k < 30) {
		if (!f->ino) {
			/* a free name: 2 * RFILES places for RFILES files */
			for (unsigned c = (unsigned)trng(t);; c++) {
				f->dir = c & 1 ? t->sub : t->dir;
				snprintf(f->name, sizeof(f->name), "f%u", (c >> 1) % RFILES);
				if (slot_at(t, f->dir, f->name) < 0)
					break;
			}
			ret = pfs_fs_mknod(fs, f->dir, f->name, S_IFREG | 0644, 0, &root, &a);
			if (ret)
				goto failed;
			f->ino = a.ino;
			f->size = 0;
			memset(f->data, 0, RMAXSIZE);
			op = "create+write";
			/* two operations: a crash (another thread's fsync
			 * seals the group) may come between them */
			state = capture_at(fs, t->dir);
			if (!state) {
				snprintf(t->err, sizeof(t->err), "after create, the tree does not "
					 "read back");
				return -1;
			}
			history_add(&t->rc->H[t->h], state);
		}
		rrange(t, &off, &len);
		rfill(t, t->buf, len);
		if (pfs_fs_write(fs, f->ino, off, len, t->buf, &root) != (ssize_t)len)
			ret = -EIO;
		memcpy(f->data + off, t->buf, len);
		if (off + len > f->size)
			f->size = off + len;
	} else if (k < 40) {
		size_t to = trng(t) % 4 ? trng(t) % RMAXSIZE : 0;

		op = "truncate";
		a = (struct pfs_fs_attr){ .size = to };
		ret = pfs_fs_setattr(fs, f->ino, &a, PFS_FS_SET_SIZE, &root, NULL);
		if (to < f->size)
			memset(f->data + to, 0, f->size - to);
		f->size = to;
	} else if (k < 56) {
		int mode;

		rrange(t, &off, &len);
		switch (k % 4) {
		case 0:
			op = "punch";
			mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
			break;
		case 1:
			op = "zero range";
			mode = FALLOC_FL_ZERO_RANGE;
			break;
		case 2:
			op = "fallocate keep size";
			mode = FALLOC_FL_KEEP_SIZE;
			break;
		default:
			op = "fallocate";
			mode = 0;
			break;
		}
		ret = pfs_fs_fallocate(fs, f->ino, mode, off, len);
		if (mode & (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_ZERO_RANGE)) {
			size_t end = mode & FALLOC_FL_KEEP_SIZE ? f->size : off + len;

			if (off < end)
				memset(f->data + off, 0, (off + len < end ? off + len : end) - off);
		}
		if (!(mode & FALLOC_FL_KEEP_SIZE) && off + len > f->size)
			f->size = off + len;
	} else if (k < 66) {
		uint64_t ddir = trng(t) & 1 ? t->sub : t->dir, odir = f->dir;
		char dname[16];
		int g, flags = trng(t) % 3 ? 0 : RENAME_NOREPLACE;

		op = flags ? "rename noreplace" : "rename";
		snprintf(dname, sizeof(dname), "f%d", (int)(trng(t) % RFILES));
		g = slot_at(t, ddir, dname);
		ret = pfs_fs_rename(fs, f->dir, f->name, ddir, dname, (unsigned)flags);
		if (g == s) {
			/* onto itself: nothing happens (NOREPLACE: EEXIST) */
			if (ret == -EEXIST && flags)
				ret = 0;
		} else if (g >= 0 && flags) {
			ret = ret == -EEXIST ? 0 : ret ? ret : -EINVAL;
		} else if (!ret) {
			if (g >= 0)
				t->f[g].ino = 0;
			f->dir = ddir;
			snprintf(f->name, sizeof(f->name), "%s", dname);
		}
		(void)odir;
	} else if (k < 72) {
		op = "unlink";
		ret = pfs_fs_unlink(fs, f->dir, f->name);
		f->ino = 0;
	} else if (k < 84) {
		char xn[16], xv[200];

		snprintf(xn, sizeof(xn), "user.x%d", (int)(trng(t) % 3));
		if (k < 80) {
			size_t vn = 1 + trng(t) % sizeof(xv);

			op = "setxattr";
			rfill(t, (uint8_t *)xv, vn);
			ret = pfs_fs_setxattr(fs, f->ino, xn, xv, vn, 0);
		} else {
			op = "removexattr";
			ret = pfs_fs_removexattr(fs, f->ino, xn);
			if (ret == -ENODATA)
				ret = 0;
		}
	} else {
		struct rfile *src = &t->f[(s + 1 + (int)(trng(t) % (RFILES - 1))) % RFILES];
		uint64_t in;
		ssize_t n;
		size_t want;

		op = "copy_file_range";
		if (!src->ino || !src->size)
			src = f;	/* from itself, ranges apart */
		rrange(t, &off, &len);
		in = trng(t) % (src->size ? src->size : 1);
		if (trng(t) & 1)
			in &= ~(uint64_t)4095, off = (off & ~(uint64_t)4095) | (in & 4095);
		if (src == f && (in < off + len && off < in + len))
			goto persist;
		n = pfs_fs_copy_range(fs, src->ino, in, f->ino, off, len, &root);
		want = in < src->size ? (src->size - in < len ? src->size - in : len) : 0;
		if (n < 0 || (size_t)n > want) {
			ret = n < 0 ? (int)n : -EINVAL;
		} else {
			memmove(f->data + off, src->data + in, (size_t)n);
			if (n > 0 && off + (size_t)n > f->size)
				f->size = off + (size_t)n;
		}
	}
	if (ret)
		goto failed;
persist:
	if (rcheck(t, op))
		return -1;
	state = capture_at(fs, t->dir);
	if (!state) {
		snprintf(t->err, sizeof(t->err), "after %s, the tree does not read back", op);
		return -1;
	}
	history_add(&t->rc->H[t->h], state);	/* its own: no lock */
	parent = f->dir;
	target = f->ino ? f->ino : parent;
	k = (unsigned)(trng(t) % 10);
	if (k >= 4) {
		struct promise p = { .data_only = k >= 6 && k < 8, .h = t->h,
				     .k = t->rc->H[t->h].len - 1 };	/* this step's state */

		p.ino = k >= 8 ? parent : target;
		ret = pfs_fs_fsync(fs, p.ino, p.data_only);
		if (ret) {
			op = "fsync";
			goto failed;
		}
		pthread_mutex_lock(t->lock);
		p.ev = pfs_devrec_count(t->rc->rec);	/* acknowledged by here */
		promise_add(t->rc, p);
		pthread_mutex_unlock(t->lock);
	}
	return 0;
failed:
	snprintf(t->err, sizeof(t->err), "operation %d, %s on %s: %s", step, op, f->name,
		 strerror(-ret));
	return -1;
}

static void *rthread_main(void *arg)
{
	struct rthread *t = arg;

	for (int i = 1; i <= t->nops; i++)
		if (rstep(t, i))
			break;
	return NULL;
}

/* One random run of nthreads threads of nops operations each. */
static void run_random(int nthreads, int nops, uint64_t seed, const struct sampling *sm,
		       struct result *r)
{
	uint8_t *base = pfs_dev_buf_alloc(DEVSZ);
	struct rthread t[RMAXTHREADS];
	pthread_t tid[RMAXTHREADS];
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	struct recording rc = { .nh = nthreads + 1 };
	struct pfs_store *st = NULL;
	struct pfs_fs *fs = NULL;
	bool ok = true;

	snprintf(rc.name, sizeof(rc.name), "random run %d:%d:%#" PRIx64 " (threads, operations, "
		 "seed: -R to run it again)", nthreads, nops, seed);
	memset(t, 0, sizeof(t));
	rc.H = calloc((size_t)rc.nh, sizeof(*rc.H));
	if (!base || !rc.H || start_recording(&rc, nthreads > 1 ? 4 : 2, base, &st, &fs)) {
		fail(r, rc.name, "setup", "cannot make the file system");
		goto out;
	}
	pfs_fs_set_placement(fs, PFS_FS_PLACE_SPREAD);
	for (int i = 0; ok && i < nthreads; i++) {
		struct pfs_fs_attr a;
		char name[16];

		t[i] = (struct rthread){ .fs = fs, .rc = &rc, .lock = &lock, .h = i + 1,
					 .nops = nops, .rng = seed + (uint64_t)i };
		snprintf(name, sizeof(name), "T%d", i);
		ok = !pfs_fs_mkdir(fs, POSFS_ROOT_OID, name, 0755, &root, &a);
		t[i].dir = a.ino;
		ok = ok && !pfs_fs_mkdir(fs, t[i].dir, "sub", 0755, &root, &a);
		t[i].sub = a.ino;
		ok = ok && POSFS_OID_SHARD(t[i].dir) != POSFS_OID_SHARD(t[i].sub);
		t[i].buf = malloc(RMAXSIZE);
		for (int j = 0; ok && j < RFILES; j++)
			ok = (t[i].f[j].data = calloc(1, RMAXSIZE)) != NULL;
		ok = ok && t[i].buf;
	}
	if (!ok || pfs_store_sync(st)) {
		fail(r, rc.name, "setup", "cannot make the starting tree");
		goto out_fs;
	}
	rc.setup_end = pfs_devrec_count(rc.rec);
	history_add(&rc.H[0], capture(fs));
	for (int i = 0; i < nthreads; i++)
		history_add(&rc.H[i + 1], capture_at(fs, t[i].dir));
	for (int i = 0; i < nthreads; i++)
		if (pthread_create(&tid[i], NULL, rthread_main, &t[i]))
			rthread_main(&t[i]), tid[i] = 0;
	for (int i = 0; i < nthreads; i++)
		if (tid[i])
			pthread_join(tid[i], NULL);
	for (int i = 0; i < nthreads; i++)
		if (t[i].err[0]) {
			fail(r, rc.name, "the live run", t[i].err);
			ok = false;
		}
	for (int h = 0; ok && h < rc.nh; h++)
		for (int j = 0; ok && j < rc.H[h].len; j++)
			ok = rc.H[h].S[j] != NULL;
	if (ok) {
		r->workloads++;
		if (verbose)
			fprintf(stderr, "%s: %zu device events, %zu promises\n", rc.name,
				pfs_devrec_count(rc.rec), rc.npr);
		if (!live_only)
			check_states(&rc, sm, r);
	}
out_fs:
	pfs_fs_close(fs);
	pfs_store_close(st);
out:
	for (int i = 0; i < nthreads; i++) {
		free(t[i].buf);
		for (int j = 0; j < RFILES; j++)
			free(t[i].f[j].data);
	}
	recording_free(&rc);
	pfs_dev_buf_free(base);
}

int main(int argc, char **argv)
{
	struct result r = { 0 };
	bool quick = true, only1 = false, only_random = false;
	char one_run[64] = "";
	uint64_t seed = 1;
	int c, sample2, nrandom;
	struct sampling rs;

	while ((c = getopt(argc, argv, "1DfLPrR:s:vxz")) != -1) {
		switch (c) {
		case '1':
			only1 = true;
			break;
		case 'x':
			first_failure = true;
			break;
		case 'L':
			live_only = true;
			only_random = true;
			break;
		case 'P':
#ifdef PFS_PLANTED_BUGS
			puts("planted bugs built in");
			return 0;
#else
			puts("no planted bugs");
			return 1;
#endif
		case 'f':
			quick = false;
			break;
		case 'r':
			only_random = true;
			break;
		case 'R':
			snprintf(one_run, sizeof(one_run), "%s", optarg);
			only_random = true;
			break;
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		case 'v':
			verbose = true;
			break;
		case 'z':
			compress_mode = 1;
			break;
		case 'D':
			discard_mode = true;
			break;
		default:
			fprintf(stderr, "usage: crashtest [-1DfLrxz] [-s SEED] [-R T:N:SEED] [-v] | -P\n");
			return 2;
		}
	}
	rng_state = seed;
	/* seq-1: every operation with every persistence call */
	for (int o = 0; !only_random && o < NOPS; o++)
		for (int p = 0; p < NPERSIST; p++) {
			struct workload w = { 1, { o }, { p } };

			run_workload(&w, &r, quick ? 7 : 1);
		}
	/* seq-2: all pairs, or a sample of them; and a sample of seq-3 */
	sample2 = only1 || only_random ? 0 : quick ? 150 : NOPS * NPERSIST * NOPS * NPERSIST;
	for (int s = 0; s < sample2; s++) {
		struct workload w = { 2, { 0 }, { 0 } };
		int x = quick ? (int)(rng() % (NOPS * NPERSIST * NOPS * NPERSIST)) : s;

		w.op[0] = (enum op)(x / NPERSIST / NOPS / NPERSIST);
		w.p[0] = (enum persist)(x / NOPS / NPERSIST % NPERSIST);
		w.op[1] = (enum op)(x / NPERSIST % NOPS);
		w.p[1] = (enum persist)(x % NPERSIST);
		run_workload(&w, &r, quick ? 7 : 3);
	}
	for (int s = 0; s < (only1 || only_random ? 0 : quick ? 30 : 200); s++) {
		struct workload w = { 3, { 0 }, { 0 } };

		for (int i = 0; i < 3; i++) {
			w.op[i] = (enum op)(rng() % NOPS);
			w.p[i] = (enum persist)(rng() % NPERSIST);
		}
		run_workload(&w, &r, quick ? 7 : 3);
	}
	/* random runs: fsx-style in one thread, then three threads across shards */
	nrandom = only1 || one_run[0] ? 0 : quick ? 3 : 10;
	rs = quick ? (struct sampling){ .recovery_every = 10, .max_points = 12, .max_variants = 3 }
		   : (struct sampling){ .recovery_every = 3, .max_variants = 4 };
	if (one_run[0]) {
		/* -R: one random run again */
		int th = 0, ops = 0;
		uint64_t rs_seed = 0;

		if (sscanf(one_run, "%i:%i:%" SCNi64, &th, &ops, &rs_seed) != 3 || th < 1 ||
		    th > RMAXTHREADS || ops < 1) {
			fprintf(stderr, "crashtest: -R wants THREADS:OPS:SEED, as a failure names it\n");
			return 2;
		}
		run_random(th, ops, rs_seed, &rs, &r);
		nrandom = 0;
	}
	for (int i = 0; i < nrandom; i++)
		run_random(1, quick ? 30 : 100, rng(), &rs, &r);
	for (int i = 0; i < nrandom; i++)
		run_random(3, quick ? 20 : 40, rng(), &rs, &r);
	printf("crashtest: %" PRIu64 " workloads, %" PRIu64 " crash states, %" PRIu64
	       " states of crashes during recovery, %" PRIu64 " failed (seed %" PRIu64 ")\n",
	       r.workloads, r.states, r.recovery_states, r.failed, seed);
	return r.failed ? 1 : 0;
}
