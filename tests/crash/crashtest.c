/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * crashtest: crash consistency of the namespace layer and the store, in
 * the manner of B3 (bounded workloads) over a recording device (as
 * xfstests over dm-log-writes), in process.
 *
 * A workload is a sequence of operations, each followed by a persistence
 * call (fsync, fdatasync, or fsync of the parent directory). It runs on a
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
 * Usage: crashtest [-1fx] [-s SEED] [-v] | -P. By default the bounded set of
 * make check runs (every one-operation workload, samples of two and
 * three); -f runs every one- and two-operation workload and 200 of three
 * (make crashtest); -1 only the one-operation ones; -x stops at the first
 * failure. -P says whether the
 * planted bugs are built in (src/plant.h). Prints
 * the workloads and crash states checked and the failures; exits 1 when
 * any failed.
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
#include <sys/stat.h>
#include <unistd.h>

#include "posfs/check.h"
#include "posfs/crc32c.h"
#include "posfs/fs.h"
#include "posfs/io.h"
#include "posfs/store.h"
#include "../unit/testdev.h"

#define DEVSZ		(32ull << 20)
#define MAXOPS		3
#define SUBSETS		8	/* random subsets of in-flight writes when many */

static const struct pfs_fs_cred root = { 0, 0, 022 };
static uint64_t rng_state = 1;
static bool verbose;
static bool first_failure;	/* -x: stop at the first failure */

static uint64_t rng(void)
{
	uint64_t z = (rng_state += UINT64_C(0x9e3779b97f4a7c15));

	z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
	z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
	return z ^ (z >> 31);
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
	OP_SYMLINK, OP_SETXATTR, OP_RMXATTR, OP_RMDIR, OP_BIGWRITE, NOPS
};

static const char *const op_names[] = {
	"create", "mkdir", "write", "overwrite", "append", "truncate", "fallocate", "punch",
	"link", "unlink", "rename", "rename_noreplace", "rename_exchange", "symlink",
	"setxattr", "removexattr", "rmdir", "bigwrite",
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
	return ret;
}

/*
 * Operation op as the i-th of its workload. Errors are results (an
 * operation on a name a previous one removed fails, as it would for a
 * program); *target and *parent get what the persistence call syncs.
 */
static void run_op(struct pfs_fs *fs, const struct names *nm, enum op op, int i,
		   uint64_t *target, uint64_t *parent)
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
	case OP_BIGWRITE:
		/* past the small-write threshold: out of place, data first */
		if (foo)
			write_pattern(fs, foo, 0, 16384, tag), write_pattern(fs, foo, 16384, 16384, tag),
			write_pattern(fs, foo, 0, 65536, tag);
		break;
	default:
		break;
	}
	if (!*target)
		*target = *parent;
}

/* ---- one workload ---------------------------------------------------------------- */

struct workload {
	int n;
	enum op op[MAXOPS];
	enum persist p[MAXOPS];
};

struct result {
	uint64_t workloads, states, recovery_states, failed;
};

static void describe(const struct workload *w, char *buf, size_t cap)
{
	size_t o = 0;

	for (int i = 0; i < w->n; i++)
		o += (size_t)snprintf(buf + o, cap - o, "%s%s+%s", i ? ", " : "",
				      op_names[w->op[i]], persist_names[w->p[i]]);
}

static int open_fs(struct pfs_dev *dev, struct pfs_store **st, struct pfs_fs **fs)
{
	struct pfs_store_opts so = { .ckpt_interval_ms = -1, .cache_blocks = 512 };
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

/* O1: is ino's view in c the one of some S_j, j >= k? */
static bool holds(char *const *S, int n, int k, const char *c, uint64_t ino, bool data_only)
{
	char want[4096], got[4096];

	view(c, ino, data_only, got, sizeof(got));
	for (int j = k; j <= n; j++) {
		view(S[j], ino, data_only, want, sizeof(want));
		if (!strcmp(want, got))
			return true;
	}
	return false;
}

/*
 * Every inode of c (and of every S_j) is as some S_j had it: an operation
 * is never half there, whether or not it was promised (a record replayed
 * without the data it points at shows here).
 */
static bool states_whole(char *const *S, int n, const char *c, char *why, size_t cap)
{
	for (int src = -1; src <= n; src++) {
		const char *t = src < 0 ? c : S[src];

		for (const char *p = strchr(t, '\n'); p && p[1]; p = strchr(p + 1, '\n')) {
			uint64_t ino = strtoull(p + 1, NULL, 10);

			if (!holds(S, n, 0, c, ino, false)) {
				char got[256];

				view(c, ino, false, got, sizeof(got));
				snprintf(why, cap, "inode %" PRIu64 " is '%s', a state it never had",
					 ino, got);
				return false;
			}
		}
	}
	return true;
}

/* Every promise made before the crash point holds in c: NULL, or which
 * does not (why filled). */
struct promise {
	size_t ev;		/* acknowledged at this event */
	uint64_t ino;		/* what was synced */
	bool data_only;		/* fdatasync */
};

static bool promises_hold(char *const *S, int n, const struct promise *pr, size_t limit,
			  const char *c, char *why, size_t cap)
{
	for (int i = 0; i < n; i++) {
		if (pr[i].ev > limit)
			break;
		if (!holds(S, n, i + 1, c, pr[i].ino, pr[i].data_only)) {
			char got[256];

			view(c, pr[i].ino, pr[i].data_only, got, sizeof(got));
			snprintf(why, cap, "inode %" PRIu64 " synced by operation %d is '%s', "
				 "no state from then on", pr[i].ino, i + 1, got);
			return false;
		}
	}
	return true;
}

static void fail(struct result *r, const struct workload *w, const char *what, const char *why)
{
	char d[256];

	describe(w, d, sizeof(d));
	r->failed++;
	if (r->failed <= 20)
		fprintf(stderr, "FAILED: [%s] %s: %s\n", d, what, why);
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
static void crash_recovery(const uint8_t *img, uint8_t *tmp, char *const *S,
			   const struct workload *w, const struct promise *pr, size_t limit,
			   struct result *r)
{
	struct pfs_dev *dev = mem_with(img), *rdev;
	struct pfs_devrec *rec;
	struct pfs_store *st;
	struct pfs_fs *fs;
	char why[512], what[128];

	if (!dev || pfs_devrec_wrap(dev, &rdev)) {
		if (dev)
			pfs_dev_close(dev);
		fail(r, w, "recording a recovery", "no memory");
		return;
	}
	rec = pfs_devrec_of(rdev);
	if (open_fs(rdev, &st, &fs)) {
		fail(r, w, "recording a recovery", "recovery failed");
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
		if (!c || !promises_hold(S, w->n, pr, limit, c, why, sizeof(why)) ||
		    !states_whole(S, w->n, c, why, sizeof(why)))
			fail(r, w, what, why);
		free(c);
	}
	pfs_fs_close(fs);
	pfs_store_close(st);
}

/*
 * Run w; check every crash state of its recording. Recovery crash states
 * (O3) for every recovery_every-th state.
 */
static void run_workload(const struct workload *w, struct result *r, int recovery_every)
{
	struct pfs_dev *mem = pfs_test_newfs_mem(DEVSZ, 2, 1 << 20), *recdev;
	/* device I/O wants aligned buffers */
	uint8_t *base = pfs_dev_buf_alloc(DEVSZ), *img = pfs_dev_buf_alloc(DEVSZ);
	uint8_t *img2 = pfs_dev_buf_alloc(DEVSZ);
	char *S[MAXOPS + 1] = { 0 }, why[512], what[128];
	struct promise pr[MAXOPS];
	size_t setup_end;
	struct pfs_devrec *rec;
	struct pfs_store *st;
	struct pfs_fs *fs;
	struct names nm;
	uint64_t nstate = 0;

	if (!mem || !base || !img || !img2 || pfs_dev_pread(mem, base, DEVSZ, 0) ||
	    pfs_devrec_wrap(mem, &recdev) || open_fs(recdev, &st, &fs)) {
		fail(r, w, "setup", "cannot make the file system");
		goto out;
	}
	rec = pfs_devrec_of(recdev);
	if (setup(fs, &nm) || pfs_store_sync(st)) {
		fail(r, w, "setup", "cannot make the starting tree");
		goto out_fs;
	}
	setup_end = pfs_devrec_count(rec);
	S[0] = capture(fs);
	for (int i = 0; i < w->n; i++) {
		uint64_t target, parent;
		int ret;

		run_op(fs, &nm, w->op[i], i, &target, &parent);
		S[i + 1] = capture(fs);
		pr[i].ino = w->p[i] == P_FSYNCDIR ? parent : target;
		pr[i].data_only = w->p[i] == P_FDATASYNC;
		ret = pfs_fs_fsync(fs, pr[i].ino, pr[i].data_only);
		if (ret || !S[i + 1]) {
			fail(r, w, op_names[w->op[i]], "the persistence call or capture failed");
			goto out_fs;
		}
		pr[i].ev = pfs_devrec_count(rec);	/* acknowledged here */
	}
	r->workloads++;

	/* every flush after the setup is a crash point */
	/*
	 * Crash points: after the flush at f (the setup's last one first),
	 * with any subset of the writes issued before the next flush. The
	 * crash may come just before that next flush, so every promise made
	 * before it (limit) must hold.
	 */
	for (size_t f = setup_end - 1; f < pfs_devrec_count(rec); f++) {
		size_t inflight[64], nin = 0, limit = f + 1;
		int variants;

		if (pfs_devrec_event(rec, f)->kind != PFS_REC_FLUSH)
			continue;
		for (; limit < pfs_devrec_count(rec) &&
		     pfs_devrec_event(rec, limit)->kind != PFS_REC_FLUSH; limit++)
			if (pfs_devrec_event(rec, limit)->kind == PFS_REC_WRITE && nin < 64)
				inflight[nin++] = limit;
		variants = nin <= 3 ? 1 << nin : SUBSETS;
		for (int v = 0; v <= variants; v++) {
			uint64_t subset = v < variants ? (nin <= 3 ? (uint64_t)v : rng()) : rng();
			char *c;

			memcpy(img, base, DEVSZ);
			{
				struct pfs_dev *d = mem_with(base);

				if (!d || pfs_devrec_apply(rec, 0, f + 1, d) ||
				    pfs_dev_pread(d, img, DEVSZ, 0)) {
					if (d)
						pfs_dev_close(d);
					fail(r, w, "replaying the recording", "device error");
					continue;
				}
				for (size_t i = 0; i < nin; i++) {
					const struct pfs_devrec_event *e = pfs_devrec_event(rec, inflight[i]);
					uint32_t torn = 0;

					if (!(subset >> (i % 64) & 1))
						continue;
					/* the last variant tears one write at a sector */
					if (v == variants && e->len > 512)
						torn = 512 * (1 + (uint32_t)(rng() % (e->len / 512 - 1 ? e->len / 512 - 1 : 1)));
					pfs_devrec_apply_one(rec, inflight[i], torn < e->len ? torn : 0, d);
				}
				pfs_dev_pread(d, img, DEVSZ, 0);
				pfs_dev_close(d);
			}
			nstate++;
			snprintf(what, sizeof(what), "crash at event %zu, variant %d", f, v);
			if (fsck_clean(img, why, sizeof(why)))
				fail(r, w, what, why);
			c = recover(img, why, sizeof(why));
			if (!c) {
				fail(r, w, what, why);
				continue;
			}
			if (!promises_hold(S, w->n, pr, limit, c, why, sizeof(why)) ||
			    !states_whole(S, w->n, c, why, sizeof(why))) {
				fail(r, w, what, why);
				if (verbose)
					fprintf(stderr, "--- recovered:%s", c);
			}
			if (nstate % (uint64_t)recovery_every == 0)
				crash_recovery(img, img2, S, w, pr, limit, r);
			free(c);
		}
	}
	r->states += nstate;
out_fs:
	pfs_fs_close(fs);
	pfs_store_close(st);
	mem = NULL;
out:
	if (mem)
		pfs_dev_close(mem);
	for (int i = 0; i <= MAXOPS; i++)
		free(S[i]);
	pfs_dev_buf_free(base);
	pfs_dev_buf_free(img);
	pfs_dev_buf_free(img2);
}

int main(int argc, char **argv)
{
	struct result r = { 0 };
	bool quick = true, only1 = false;
	uint64_t seed = 1;
	int c, sample2;

	while ((c = getopt(argc, argv, "1fPs:vx")) != -1) {
		switch (c) {
		case '1':
			only1 = true;
			break;
		case 'x':
			first_failure = true;
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
		case 's':
			seed = strtoull(optarg, NULL, 0);
			break;
		case 'v':
			verbose = true;
			break;
		default:
			fprintf(stderr, "usage: crashtest [-1fx] [-s SEED] [-v] | -P\n");
			return 2;
		}
	}
	rng_state = seed;
	/* seq-1: every operation with every persistence call */
	for (int o = 0; o < NOPS; o++)
		for (int p = 0; p < NPERSIST; p++) {
			struct workload w = { 1, { o }, { p } };

			run_workload(&w, &r, quick ? 7 : 1);
		}
	/* seq-2: all pairs, or a sample of them; and a sample of seq-3 */
	sample2 = only1 ? 0 : quick ? 24 : NOPS * NPERSIST * NOPS * NPERSIST;
	for (int s = 0; s < sample2; s++) {
		struct workload w = { 2, { 0 }, { 0 } };
		int x = quick ? (int)(rng() % (NOPS * NPERSIST * NOPS * NPERSIST)) : s;

		w.op[0] = (enum op)(x / NPERSIST / NOPS / NPERSIST);
		w.p[0] = (enum persist)(x / NOPS / NPERSIST % NPERSIST);
		w.op[1] = (enum op)(x / NPERSIST % NOPS);
		w.p[1] = (enum persist)(x % NPERSIST);
		run_workload(&w, &r, quick ? 7 : 3);
	}
	for (int s = 0; s < (only1 ? 0 : quick ? 6 : 200); s++) {
		struct workload w = { 3, { 0 }, { 0 } };

		for (int i = 0; i < 3; i++) {
			w.op[i] = (enum op)(rng() % NOPS);
			w.p[i] = (enum persist)(rng() % NPERSIST);
		}
		run_workload(&w, &r, quick ? 7 : 3);
	}
	printf("crashtest: %" PRIu64 " workloads, %" PRIu64 " crash states, %" PRIu64
	       " states of crashes during recovery, %" PRIu64 " failed (seed %" PRIu64 ")\n",
	       r.workloads, r.states, r.recovery_states, r.failed, seed);
	return r.failed ? 1 : 0;
}
