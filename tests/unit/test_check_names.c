/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Pass 3 of the checker (src/check/names.c), built into this program with
 * stand-ins for the reporting calls of check.c. Each case makes a file
 * system with the namespace layer, damages one thing with raw store
 * transactions, then checks it three times: read-only (the problem is
 * reported and the image does not change by a byte), repairing (reported
 * and fixed), and again (nothing found). The layer then reads the result:
 * lookups, nlink, '..', listings; what was not damaged is intact.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check/check_internal.h"
#include "fs/dent.h"
#include "posfs/fs.h"
#include "posfs/io.h"
#include "posfs/store.h"
#include "testdev.h"

static const uint64_t DEVSZ = 64ull << 20;
static const struct pfs_fs_cred user = { .uid = 1000, .gid = 1000 };

/* ---- stand-ins for check.c's reporting ------------------------------------ */

#define DESC_(code, nm, pr, w, f) { PFS_PR_##nm, #nm, pr, w, f },
static const struct pfs_problem_desc descs[] = { PFS_PROBLEMS(DESC_) };
#undef DESC_

/* What a run saw. */
struct run {
	unsigned n;
	enum pfs_problem code[256];
	unsigned open;			/* problems to be fixed, not yet reported done */
	unsigned unfixed;
	unsigned infos, progress;
	bool readonly;
};

static bool verbose;
static uint64_t mem_limit = 64 << 20;	/* of the scratch maps */
static bool maps_moved;			/* they went to LMDB in the last run */

bool pfs_check_problem(struct pfs_check *c, enum pfs_problem code, const char *fmt, ...)
{
	const struct pfs_problem_desc *d = NULL;
	struct run *r = c->ops->arg;
	char msg[512];
	va_list ap;
	bool fix;

	for (size_t i = 0; i < sizeof(descs) / sizeof(descs[0]); i++)
		if (descs[i].code == code)
			d = &descs[i];
	ck_assert_ptr_nonnull(d);
	ck_assert_msg(r->open == 0, "a problem asked while another is being fixed");
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->res->found++;
	fix = c->ops->ask(c->ops->arg, d, msg) && !c->readonly;
	if (fix)
		r->open++;
	else
		c->res->left++;
	return fix;
}

void pfs_check_fixed(struct pfs_check *c)
{
	struct run *r = c->ops->arg;

	ck_assert_uint_eq(r->open, 1);
	r->open--;
	c->res->fixed++;
}

void pfs_check_unfixed(struct pfs_check *c, int err)
{
	struct run *r = c->ops->arg;

	ck_assert_uint_eq(r->open, 1);
	r->open--;
	r->unfixed++;
	c->res->left++;
	fprintf(stderr, "  unfixed: %d\n", err);
}

void pfs_check_info(struct pfs_check *c, const char *fmt, ...)
{
	va_list ap;

	((struct run *)c->ops->arg)->infos++;
	if (!verbose)
		return;
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

void pfs_check_progress(struct pfs_check *c, enum pfs_check_pass pass, uint64_t cur,
			uint64_t max)
{
	ck_assert_int_eq(pass, PFS_PASS_NAMES);
	ck_assert_uint_le(cur, max);
	((struct run *)c->ops->arg)->progress++;
}

static bool ask(void *arg, const struct pfs_problem_desc *d, const char *msg)
{
	struct run *r = arg;

	if (verbose)
		fprintf(stderr, "  %s%s: %s\n", r->readonly ? "(-n) " : "", d->name, msg);
	ck_assert_uint_lt(r->n, 256);
	r->code[r->n++] = d->code;
	return !r->readonly;
}

/* Pass 3 on st. */
static void run_names(struct pfs_store *st, bool readonly, struct run *r,
		      struct pfs_check_result *res)
{
	struct pfs_check_opts o = { .readonly = readonly, .scratch_dir = "/var/tmp",
				    .mem_limit = mem_limit };
	struct pfs_check_ops ops = { .ask = ask, .arg = r };
	struct pfs_map_opts mo = { .scratch_dir = "/var/tmp", .mem_limit = mem_limit };
	struct pfs_check *c = calloc(1, sizeof(*c));
	struct pfs_map *probe;

	memset(r, 0, sizeof(*r));
	memset(res, 0, sizeof(*res));
	r->readonly = readonly;
	ck_assert_ptr_nonnull(c);
	c->o = &o;
	c->ops = &ops;
	c->res = res;
	c->st = st;
	c->readonly = readonly;
	ck_assert_int_eq(pfs_map_env_create(&mo, &c->maps), 0);
	ck_assert_int_eq(pfs_map_create(c->maps, "probe", 1, &probe), 0);
	ck_assert_int_eq(pfs_check_names(c), 0);
	maps_moved = pfs_map_on_disk(probe);
	ck_assert_uint_eq(r->open, 0);
	ck_assert_uint_ge(r->infos, 1);	/* the summary, and a line per orphan */
	pfs_map_env_destroy(c->maps);
	free(c);
}

static bool has(const struct run *r, enum pfs_problem code)
{
	for (unsigned i = 0; i < r->n; i++)
		if (r->code[i] == code)
			return true;
	return false;
}

/* The codes r saw are exactly those of want (each at least once). */
static void expect(const struct run *r, const enum pfs_problem *want, unsigned nwant,
		   const char *what)
{
	for (unsigned i = 0; i < nwant; i++)
		ck_assert_msg(has(r, want[i]), "%s: %#x not reported", what, want[i]);
	for (unsigned i = 0; i < r->n; i++) {
		bool ok = false;

		for (unsigned j = 0; j < nwant; j++)
			ok |= r->code[i] == want[j];
		ck_assert_msg(ok, "%s: %#x reported", what, r->code[i]);
	}
}

/* ---- images ---------------------------------------------------------------- */

/* A fresh file system (3 shards) in an image file under /var/tmp. */
static void image_new(char *path)
{
	struct pfs_dev *dev = pfs_test_newfs_mem(DEVSZ, 3, 2 << 20);
	uint8_t *img = pfs_dev_buf_alloc(1 << 20);
	static const uint8_t zero[4096];
	int fd;

	ck_assert_ptr_nonnull(dev);
	fd = mkstemp(path);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(ftruncate(fd, (off_t)DEVSZ), 0);
	for (uint64_t off = 0; off < DEVSZ; off += 1 << 20) {
		ck_assert_int_eq(pfs_dev_pread(dev, img, 1 << 20, off), 0);
		for (unsigned b = 0; b < (1 << 20); b += 4096)	/* sparse */
			if (memcmp(img + b, zero, 4096))
				ck_assert_int_eq(pwrite(fd, img + b, 4096, (off_t)(off + b)), 4096);
	}
	close(fd);
	pfs_dev_close(dev);
	pfs_dev_buf_free(img);
}

static uint64_t image_hash(const char *path)
{
	uint64_t h = 0xcbf29ce484222325ull;
	uint8_t *buf = malloc(1 << 20);
	int fd = open(path, O_RDONLY);
	ssize_t got;

	ck_assert_int_ge(fd, 0);
	while ((got = read(fd, buf, 1 << 20)) > 0)
		for (ssize_t i = 0; i < got; i++)
			h = (h ^ buf[i]) * 0x100000001b3ull;
	close(fd);
	free(buf);
	return h;
}

static struct pfs_store *st_open(const char *path, bool readonly)
{
	struct pfs_store_opts o = { .readonly = readonly, .cache_blocks = 1024,
				    .ckpt_interval_ms = -1 };
	struct pfs_store *st;

	ck_assert_int_eq(pfs_store_open(path, &o, &st), 0);
	return st;
}

struct mnt {
	struct pfs_store *st;
	struct pfs_fs *fs;
};

static struct mnt mount_path(const char *path)
{
	struct mnt m = { st_open(path, false), NULL };

	ck_assert_int_eq(pfs_fs_open(m.st, &m.fs), 0);
	return m;
}

static void umount_fs(struct mnt m)
{
	pfs_fs_close(m.fs);
	ck_assert_int_eq(pfs_store_close(m.st), 0);
}

/*
 * The damaged image at path: read-only, the codes ro and not a byte
 * changed; repairing, the codes rw, all fixed; again, nothing. res gets
 * the repairing run's result.
 */
static void check_cycle(const char *path, const enum pfs_problem *ro, unsigned nro,
			const enum pfs_problem *rw, unsigned nrw, struct pfs_check_result *res)
{
	uint64_t h0 = image_hash(path);
	struct pfs_check_result r2;
	struct pfs_store *st;
	struct run r;

	st = st_open(path, true);
	run_names(st, true, &r, res);
	ck_assert_int_eq(pfs_store_close(st), 0);
	expect(&r, ro, nro, "read-only");
	ck_assert_uint_eq(res->fixed, 0);
	ck_assert_uint_eq(image_hash(path), h0);

	st = st_open(path, false);
	run_names(st, false, &r, res);
	expect(&r, rw, nrw, "repair");
	ck_assert_uint_eq(r.unfixed, 0);
	ck_assert_uint_eq(res->fixed, res->found);
	ck_assert_uint_eq(res->left, 0);
	ck_assert_int_eq(pfs_store_close(st), 0);

	st = st_open(path, false);
	run_names(st, false, &r, &r2);
	if (r.n)
		fprintf(stderr, "second run: %u problems, first %#x\n", r.n, r.code[0]);
	ck_assert_uint_eq(r.n, 0);
	ck_assert_uint_eq(r2.files, res->files);
	ck_assert_uint_eq(r2.dirs, res->dirs);
	ck_assert_uint_eq(r2.others, res->others);
	ck_assert_int_eq(pfs_store_close(st), 0);
}

/* ---- the tree every case starts from ------------------------------------------- */

struct tree {
	uint64_t a, b, sub;		/* /a, /b, /a/sub */
	uint64_t f1, f2, g, h;		/* /a/f1 "hello", /a/f2, /a/sub/g, /h = /a/hl */
	uint64_t sym, fifo;		/* /sym -> a/f1, /fifo */
};

static uint64_t mk(struct pfs_fs *fs, uint64_t dir, const char *name, uint32_t mode)
{
	struct pfs_fs_attr a;
	int ret = !(mode & S_IFMT) ? pfs_fs_mkdir(fs, dir, name, mode, &user, &a)
				: pfs_fs_mknod(fs, dir, name, mode, 0, &user, &a);

	ck_assert_msg(ret == 0, "create %s: %d", name, ret);
	return a.ino;
}

static void populate(struct pfs_fs *fs, struct tree *t)
{
	struct pfs_fs_attr a;

	t->a = mk(fs, POSFS_ROOT_OID, "a", 0755);
	t->b = mk(fs, POSFS_ROOT_OID, "b", 0755);
	t->sub = mk(fs, t->a, "sub", 0750);
	t->f1 = mk(fs, t->a, "f1", S_IFREG | 0644);
	ck_assert_int_eq(pfs_fs_write(fs, t->f1, 0, 5, "hello", &user), 5);
	t->f2 = mk(fs, t->a, "f2", S_IFREG | 0600);
	t->g = mk(fs, t->sub, "g", S_IFREG | 0600);
	t->h = mk(fs, POSFS_ROOT_OID, "h", S_IFREG | 0644);
	ck_assert_int_eq(pfs_fs_link(fs, t->h, t->a, "hl", NULL), 0);
	ck_assert_int_eq(pfs_fs_symlink(fs, POSFS_ROOT_OID, "sym", "a/f1", &user, &a), 0);
	t->sym = a.ino;
	t->fifo = mk(fs, POSFS_ROOT_OID, "fifo", S_IFIFO | 0600);
}

/* A new image holding the tree, the layer closed; the store stays open
 * for the damage. */
static struct pfs_store *setup(char *path, struct tree *t)
{
	struct mnt m;

	image_new(path);
	m = mount_path(path);
	populate(m.fs, t);
	pfs_fs_close(m.fs);
	return m.st;
}

/* ---- raw damage ------------------------------------------------------------------- */

struct rdent {
	uint64_t ino, seq;
	uint8_t type;
};

static void enc(uint8_t *v, uint64_t ino, uint8_t type, uint64_t seq)
{
	for (int i = 0; i < 8; i++) {
		v[i] = (uint8_t)(ino >> (8 * i));
		v[9 + i] = (uint8_t)(seq >> (8 * i));
	}
	v[8] = type;
}

static struct rdent raw_get(struct pfs_store *st, uint64_t dir, const char *name)
{
	uint8_t key[256], v[POSFS_DENT_VLEN];
	struct rdent d = { 0 };
	size_t n = strlen(name);

	key[0] = POSFS_DENT_NAME;
	memcpy(key + 1, name, n);
	ck_assert_int_eq(pfs_store_omap_get(st, dir, key, n + 1, v, sizeof(v)), POSFS_DENT_VLEN);
	for (int i = 7; i >= 0; i--) {
		d.ino = d.ino << 8 | v[i];
		d.seq = d.seq << 8 | v[9 + i];
	}
	d.type = v[8];
	return d;
}

static void submit_ok(struct pfs_store *st, struct pfs_txn *t)
{
	ck_assert_int_eq(pfs_store_submit(st, t, PFS_SUBMIT_DURABLE, NULL), 0);
	pfs_txn_fini(t);
}

/* Set dir's records of an entry: the 'n' record and/or the 's' record. */
static void raw_set(struct pfs_store *st, uint64_t dir, const char *name, uint64_t ino,
		    uint8_t type, uint64_t seq, bool nrec, bool srec)
{
	uint8_t key[256], v[POSFS_DENT_VLEN], skey[9];
	size_t n = strlen(name);
	struct pfs_txn t;

	key[0] = POSFS_DENT_NAME;
	memcpy(key + 1, name, n);
	enc(v, ino, type, seq);
	pfs_dent_seq_key(skey, seq);
	pfs_txn_init(&t);
	if (nrec)
		pfs_txn_omap_set(&t, dir, key, n + 1, v, POSFS_DENT_VLEN);
	if (srec)
		pfs_txn_omap_set(&t, dir, skey, 9, name, n);
	submit_ok(st, &t);
}

/* Remove dir's records of an entry. */
static void raw_rm(struct pfs_store *st, uint64_t dir, const char *name, bool nrec, bool srec)
{
	struct rdent d = raw_get(st, dir, name);
	uint8_t key[256], skey[9];
	size_t n = strlen(name);
	struct pfs_txn t;

	key[0] = POSFS_DENT_NAME;
	memcpy(key + 1, name, n);
	pfs_dent_seq_key(skey, d.seq);
	pfs_txn_init(&t);
	if (nrec)
		pfs_txn_omap_rm(&t, dir, key, n + 1);
	if (srec)
		pfs_txn_omap_rm(&t, dir, skey, 9);
	submit_ok(st, &t);
}

static void raw_setattr(struct pfs_store *st, uint64_t oid, const struct pfs_attr *a,
			uint32_t mask)
{
	struct pfs_txn t;

	pfs_txn_init(&t);
	pfs_txn_setattr(&t, oid, a, mask);
	submit_ok(st, &t);
}

static void raw_orphan_rec(struct pfs_store *st, uint32_t shard, uint64_t oid)
{
	uint8_t key[9];
	struct pfs_txn t;

	pfs_orphan_key(key, oid);
	pfs_txn_init(&t);
	pfs_txn_omap_set(&t, POSFS_OID(shard, POSFS_LOCAL_ORPHANS), key, 9, "", 0);
	submit_ok(st, &t);
}

/* ---- reading the result with the layer ------------------------------------------------ */

static uint64_t ino_of(struct pfs_fs *fs, uint64_t dir, const char *name)
{
	struct pfs_fs_attr a;
	int ret = pfs_fs_lookup(fs, dir, name, &a);

	ck_assert_msg(ret == 0, "lookup %s: %d", name, ret);
	return a.ino;
}

static int lookup_err(struct pfs_fs *fs, uint64_t dir, const char *name)
{
	struct pfs_fs_attr a;

	return pfs_fs_lookup(fs, dir, name, &a);
}

static struct pfs_fs_attr attr_of(struct pfs_fs *fs, uint64_t ino)
{
	struct pfs_fs_attr a;

	ck_assert_int_eq(pfs_fs_getattr(fs, ino, &a), 0);
	return a;
}

struct listing {
	unsigned n;
	char names[64][POSFS_NAME_MAX + 1];
	uint64_t inos[64];
	unsigned types[64];
};

static int list_cb(void *arg, const char *name, uint64_t ino, unsigned type, uint64_t next)
{
	struct listing *l = arg;

	(void)next;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return 0;
	ck_assert_uint_lt(l->n, 64);
	for (unsigned i = 0; i < l->n; i++)
		ck_assert_msg(strcmp(l->names[i], name), "%s listed twice", name);
	snprintf(l->names[l->n], sizeof(l->names[0]), "%s", name);
	l->types[l->n] = type;
	l->inos[l->n++] = ino;
	return 0;
}

/* dir lists exactly the names given (NULL-terminated), in any order. */
static void lists(struct pfs_fs *fs, uint64_t dir, ...)
{
	struct listing *l = calloc(1, sizeof(*l));
	unsigned want = 0;
	const char *s;
	va_list ap;

	ck_assert_int_eq(pfs_fs_readdir(fs, dir, 0, list_cb, l), 0);
	va_start(ap, dir);
	while ((s = va_arg(ap, const char *))) {
		bool found = false;

		for (unsigned i = 0; i < l->n; i++)
			found |= !strcmp(l->names[i], s);
		ck_assert_msg(found, "%s not listed in %#llx", s, (unsigned long long)dir);
		want++;
	}
	va_end(ap);
	ck_assert_uint_eq(l->n, want);
	for (unsigned i = 0; i < l->n; i++) {
		struct pfs_fs_attr a = attr_of(fs, l->inos[i]);

		ck_assert_uint_eq(l->types[i], (a.mode & S_IFMT) >> 12);
	}
	free(l);
}

static uint64_t dotdot(struct pfs_fs *fs, uint64_t dir)
{
	return ino_of(fs, dir, "..");
}

static const char *hashname(char *buf, uint64_t ino)
{
	sprintf(buf, "#%llu", (unsigned long long)ino);
	return buf;
}

/* What no case damages: f1's data, the symlink, the fifo, sub/g. */
static void intact(struct pfs_fs *fs, const struct tree *t)
{
	char buf[16];

	ck_assert_int_eq(pfs_fs_read(fs, t->f1, 0, sizeof(buf), buf), 5);
	ck_assert_mem_eq(buf, "hello", 5);
	ck_assert_uint_eq(attr_of(fs, t->f1).nlink, 1);
	ck_assert_int_eq(pfs_fs_readlink(fs, t->sym, buf, sizeof(buf)), 4);
	ck_assert_mem_eq(buf, "a/f1", 4);
	ck_assert(S_ISFIFO(attr_of(fs, t->fifo).mode));
	ck_assert_uint_eq(ino_of(fs, t->sub, "g"), t->g);
	ck_assert_uint_eq(attr_of(fs, t->g).nlink, 1);
}

/* ---- cases ------------------------------------------------------------------------- */

#define CODES(...) (const enum pfs_problem[]){ __VA_ARGS__ }, \
	sizeof((const enum pfs_problem[]){ __VA_ARGS__ }) / sizeof(enum pfs_problem)

START_TEST(clean)
{
	char path[] = "/var/tmp/posfs-names.XXXXXX";
	struct pfs_check_result res;
	struct pfs_store *st;
	struct tree t;
	struct run r;
	struct mnt m;

	st = setup(path, &t);
	run_names(st, true, &r, &res);
	ck_assert_uint_eq(r.n, 0);
	run_names(st, false, &r, &res);
	ck_assert_uint_eq(r.n, 0);
	ck_assert_uint_gt(r.progress, 0);
	ck_assert_uint_eq(res.files, 4);	/* f1 f2 g h */
	ck_assert_uint_eq(res.dirs, 4);		/* / a b sub */
	ck_assert_uint_eq(res.others, 2);	/* sym fifo */
	ck_assert_int_eq(pfs_store_close(st), 0);
	m = mount_path(path);
	intact(m.fs, &t);
	umount_fs(m);
	unlink(path);
}
END_TEST

START_TEST(unreachable_file)
{
	char path[] = "/var/tmp/posfs-names.XXXXXX", nm[32];
	struct pfs_check_result res;
	struct pfs_store *st;
	struct tree t;
	struct mnt m;
	uint64_t lf;

	st = setup(path, &t);
	raw_rm(st, t.a, "f2", true, true);
	ck_assert_int_eq(pfs_store_close(st), 0);
	check_cycle(path, CODES(PFS_PR_UNREACHABLE, PFS_PR_LOST_FOUND),
		    CODES(PFS_PR_UNREACHABLE, PFS_PR_LOST_FOUND), &res);
	ck_assert_uint_eq(res.files, 4);
	ck_assert_uint_eq(res.dirs, 5);
	m = mount_path(path);
	lf = ino_of(m.fs, POSFS_ROOT_OID, "lost+found");
	ck_assert_uint_eq(attr_of(m.fs, lf).mode, S_IFDIR | 0700);
	ck_assert_uint_eq(attr_of(m.fs, lf).nlink, 2);
	ck_assert_uint_eq(dotdot(m.fs, lf), POSFS_ROOT_OID);
	ck_assert_uint_eq(attr_of(m.fs, POSFS_ROOT_OID).nlink, 5);
	ck_assert_uint_eq(ino_of(m.fs, lf, hashname(nm, t.f2)), t.f2);
	ck_assert_uint_eq(attr_of(m.fs, t.f2).nlink, 1);
	lists(m.fs, lf, nm, NULL);
	lists(m.fs, t.a, "f1", "sub", "hl", NULL);
	lists(m.fs, POSFS_ROOT_OID, "a", "b", "h", "sym", "fifo", "lost+found", NULL);
	intact(m.fs, &t);
	umount_fs(m);
	unlink(path);
}
END_TEST

START_TEST(unreachable_dir)
{
	char path[] = "/var/tmp/posfs-names.XXXXXX", nm[32];
	struct pfs_check_result res;
	struct pfs_store *st;
	struct tree t;
	struct mnt m;
	uint64_t lf;

	st = setup(path, &t);
	raw_rm(st, t.a, "sub", true, true);
	ck_assert_int_eq(pfs_store_close(st), 0);
	/* a loses its subdirectory: its nlink is one too many */
	check_cycle(path, CODES(PFS_PR_UNREACHABLE, PFS_PR_LOST_FOUND, PFS_PR_NLINK),
		    CODES(PFS_PR_UNREACHABLE, PFS_PR_LOST_FOUND, PFS_PR_NLINK), &res);
	m = mount_path(path);
	lf = ino_of(m.fs, POSFS_ROOT_OID, "lost+found");
	ck_assert_uint_eq(ino_of(m.fs, lf, hashname(nm, t.sub)), t.sub);
	ck_assert_uint_eq(dotdot(m.fs, t.sub), lf);
	ck_assert_uint_eq(attr_of(m.fs, lf).nlink, 3);
	ck_assert_uint_eq(attr_of(m.fs, t.a).nlink, 2);
	ck_assert_uint_eq(attr_of(m.fs, POSFS_ROOT_OID).nlink, 5);
	lists(m.fs, t.a, "f1", "f2", "hl", NULL);
	intact(m.fs, &t);
	/* usable as ever */
	ck_assert_int_eq(pfs_fs_rename(m.fs, lf, nm, POSFS_ROOT_OID, "sub", 0), 0);
	ck_assert_uint_eq(attr_of(m.fs, lf).nlink, 2);
	ck_assert_uint_eq(dotdot(m.fs, t.sub), POSFS_ROOT_OID);
	umount_fs(m);
	unlink(path);
}
END_TEST

START_TEST(nlink)
{
	char path[] = "/var/tmp/posfs-names.XXXXXX";
	struct pfs_check_result res;
	struct pfs_attr a = { .nlink = 7 };
	struct pfs_store *st;
	struct tree t;
	struct mnt m;

	st = setup(path, &t);
	raw_setattr(st, t.h, &a, PFS_ATTR_NLINK);
	a.nlink = 9;
	raw_setattr(st, t.b, &a, PFS_ATTR_NLINK);
	a.nlink = 0;
	raw_setattr(st, t.fifo, &a, PFS_ATTR_NLINK);	/* linked, nlink 0 */
	ck_assert_int_eq(pfs_store_close(st), 0);
	check_cycle(path, CODES(PFS_PR_NLINK), CODES(PFS_PR_NLINK), &res);
	m = mount_path(path);
	ck_assert_uint_eq(attr_of(m.fs, t.h).nlink, 2);
	ck_assert_uint_eq(attr_of(m.fs, t.b).nlink, 2);
	ck_assert_uint_eq(attr_of(m.fs, t.fifo).nlink, 1);
	ck_assert_uint_eq(attr_of(m.fs, POSFS_ROOT_OID).nlink, 4);
	intact(m.fs, &t);
	umount_fs(m);
	unlink(path);
}
END_TEST

START_TEST(dangling)
{
	char path[] = "/var/tmp/posfs-names.XXXXXX";
	struct pfs_check_result res;
	struct pfs_store *st;
	struct tree t;
	struct mnt m;

	st = setup(path, &t);
	raw_set(st, t.b, "ghost", POSFS_OID(1, 5000), DT_REG, 100, true, true);
	raw_set(st, t.b, "inner", POSFS_OID(2, POSFS_LOCAL_ORPHANS), DT_REG, 101, true, true);
	raw_set(st, t.a, "bad/name", t.f1, DT_REG, 102, true, true);
	ck_assert_int_eq(pfs_store_close(st), 0);
	check_cycle(path, CODES(PFS_PR_DANGLING), CODES(PFS_PR_DANGLING), &res);
	m = mount_path(path);
	ck_assert_int_eq(lookup_err(m.fs, t.b, "ghost"), -ENOENT);
	lists(m.fs, t.b, NULL);
	lists(m.fs, t.a, "f1", "f2", "sub", "hl", NULL);
	ck_assert_uint_eq(attr_of(m.fs, t.f1).nlink, 1);
	intact(m.fs, &t);
	umount_fs(m);
	unlink(path);
}
END_TEST

START_TEST(dirent_type)
{
	char path[] = "/var/tmp/posfs-names.XXXXXX";
	struct pfs_check_result res;
	struct pfs_store *st;
	struct rdent d;
	struct tree t;
	struct mnt m;

	st = setup(path, &t);
	d = raw_get(st, t.a, "f2");
	raw_set(st, t.a, "f2", d.ino, DT_DIR, d.seq, true, false);
	d = raw_get(st, POSFS_ROOT_OID, "b");
	raw_set(st, POSFS_ROOT_OID, "b", d.ino, DT_REG, d.seq, true, false);
	ck_assert_int_eq(pfs_store_close(st), 0);
	check_cycle(path, CODES(PFS_PR_DIRENT_TYPE), CODES(PFS_PR_DIRENT_TYPE), &res);
	m = mount_path(path);
	lists(m.fs, t.a, "f1", "f2", "sub", "hl", NULL);	/* types checked there */
	lists(m.fs, POSFS_ROOT_OID, "a", "b", "h", "sym", "fifo", NULL);
	intact(m.fs, &t);
	umount_fs(m);
	unlink(path);
}
END_TEST

START_TEST(dirent_index)
{
	char path[] = "/var/tmp/posfs-names.XXXXXX";
	struct pfs_check_result res;
	struct pfs_fs_attr at;
	struct pfs_store *st;
	struct rdent d, s;
	struct tree t;
	struct mnt m;

	st = setup(path, &t);
	raw_rm(st, t.a, "f1", false, true);			/* no 's' */
	raw_set(st, t.b, "nothing", 0, 0, 999, false, true);	/* stray 's' */
	d = raw_get(st, t.a, "f2");
	s = raw_get(st, t.a, "sub");
	raw_set(st, t.a, "f2", d.ino, d.type, s.seq, true, false);	/* seq taken */
	raw_set(st, t.a, "hl", t.h, DT_REG, 1, true, false);	/* a reserved seq */
	ck_assert_int_eq(pfs_store_close(st), 0);
	check_cycle(path, CODES(PFS_PR_DIRENT_INDEX), CODES(PFS_PR_DIRENT_INDEX), &res);
	m = mount_path(path);
	lists(m.fs, t.a, "f1", "f2", "sub", "hl", NULL);
	lists(m.fs, t.b, NULL);
	/* new entries still get fresh seqs */
	ck_assert_int_eq(pfs_fs_mknod(m.fs, t.a, "new", S_IFREG | 0600, 0, &user, &at), 0);
	lists(m.fs, t.a, "f1", "f2", "sub", "hl", "new", NULL);
	intact(m.fs, &t);
	umount_fs(m);
	unlink(path);
}
END_TEST

START_TEST(dir_links)
{
	char path[] = "/var/tmp/posfs-names.XXXXXX";
	struct pfs_check_result res;
	struct pfs_store *st;
	struct tree t;
	struct mnt m;

	st = setup(path, &t);
	/* a second entry for a/sub in b (sub's '..' is a: b's goes), one
	 * for the root */
	raw_set(st, t.b, "alias", t.sub, DT_DIR, 50, true, true);
	raw_set(st, t.b, "root", POSFS_ROOT_OID, DT_DIR, 51, true, true);
	raw_set(st, t.b, "self", t.b, DT_DIR, 52, true, true);
	ck_assert_int_eq(pfs_store_close(st), 0);
	/* read-only, b's nlink counts them */
	check_cycle(path, CODES(PFS_PR_DIR_LINKS, PFS_PR_NLINK), CODES(PFS_PR_DIR_LINKS), &res);
	m = mount_path(path);
	lists(m.fs, t.b, NULL);
	ck_assert_uint_eq(ino_of(m.fs, t.a, "sub"), t.sub);
	ck_assert_uint_eq(dotdot(m.fs, t.sub), t.a);
	ck_assert_uint_eq(attr_of(m.fs, t.a).nlink, 3);
	ck_assert_uint_eq(attr_of(m.fs, t.b).nlink, 2);
	intact(m.fs, &t);
	umount_fs(m);
	unlink(path);
}
END_TEST

START_TEST(dir_links_parent_wins)
{
	char path[] = "/var/tmp/posfs-names.XXXXXX";
	struct pfs_check_result res;
	struct pfs_attr a = { 0 };
	struct pfs_store *st;
	struct tree t;
	struct mnt m;

	st = setup(path, &t);
	/* sub is in a and in b, and its '..' says b: a's entry goes */
	raw_set(st, t.b, "alias", t.sub, DT_DIR, 50, true, true);
	a.parent = t.b;
	raw_setattr(st, t.sub, &a, PFS_ATTR_PARENT);
	ck_assert_int_eq(pfs_store_close(st), 0);
	check_cycle(path, CODES(PFS_PR_DIR_LINKS, PFS_PR_NLINK),
		    CODES(PFS_PR_DIR_LINKS, PFS_PR_NLINK), &res);
	m = mount_path(path);
	ck_assert_int_eq(lookup_err(m.fs, t.a, "sub"), -ENOENT);
	ck_assert_uint_eq(ino_of(m.fs, t.b, "alias"), t.sub);
	ck_assert_uint_eq(dotdot(m.fs, t.sub), t.b);
	ck_assert_uint_eq(attr_of(m.fs, t.a).nlink, 2);
	ck_assert_uint_eq(attr_of(m.fs, t.b).nlink, 3);
	ck_assert_uint_eq(ino_of(m.fs, t.sub, "g"), t.g);
	umount_fs(m);
	unlink(path);
}
END_TEST

START_TEST(dotdot_wrong)
{
	char path[] = "/var/tmp/posfs-names.XXXXXX";
	struct pfs_check_result res;
	struct pfs_attr a = { 0 };
	struct pfs_store *st;
	struct tree t;
	struct mnt m;

	st = setup(path, &t);
	a.parent = t.b;
	raw_setattr(st, t.sub, &a, PFS_ATTR_PARENT);
	a.parent = t.a;
	raw_setattr(st, POSFS_ROOT_OID, &a, PFS_ATTR_PARENT);
	a.parent = POSFS_OID(2, 4242);
	raw_setattr(st, t.b, &a, PFS_ATTR_PARENT);
	ck_assert_int_eq(pfs_store_close(st), 0);
	check_cycle(path, CODES(PFS_PR_DOTDOT), CODES(PFS_PR_DOTDOT), &res);
	m = mount_path(path);
	ck_assert_uint_eq(dotdot(m.fs, t.sub), t.a);
	ck_assert_uint_eq(dotdot(m.fs, t.b), POSFS_ROOT_OID);
	ck_assert_uint_eq(dotdot(m.fs, POSFS_ROOT_OID), POSFS_ROOT_OID);
	intact(m.fs, &t);
	umount_fs(m);
	unlink(path);
}
END_TEST

/* Records on the orphan list of shard s. */
static int count_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	(void)val;
	(void)vlen;
	if (klen == 9 && ((const uint8_t *)key)[0] == POSFS_ORPHAN_KEY)
		++*(unsigned *)arg;
	return 0;
}

static unsigned orphan_records(struct pfs_store *st, uint32_t s)
{
	unsigned n = 0;

	ck_assert_int_eq(pfs_store_omap_iterate(st, POSFS_OID(s, POSFS_LOCAL_ORPHANS), NULL, 0,
						count_cb, &n), 0);
	return n;
}

START_TEST(orphan_after_crash)
{
	char path[] = "/var/tmp/posfs-names.XXXXXX";
	struct pfs_check_result res;
	struct pfs_statfs s0, s1;
	struct pfs_onode on;
	uint8_t *buf = malloc(1 << 20);
	struct tree t;
	struct mnt m;
	uint64_t o;

	image_new(path);
	m = mount_path(path);
	populate(m.fs, &t);
	ck_assert_int_eq(pfs_store_sync(m.st), 0);
	ck_assert_int_eq(pfs_store_statfs(m.st, &s0), 0);
	o = mk(m.fs, t.a, "open", S_IFREG | 0600);
	memset(buf, 7, 1 << 20);
	ck_assert_int_eq(pfs_fs_write(m.fs, o, 0, 1 << 20, buf, &user), 1 << 20);
	ck_assert_int_eq(pfs_fs_inode_open(m.fs, o), 0);
	ck_assert_int_eq(pfs_fs_unlink(m.fs, t.a, "open"), 0);
	/* "crash": never released */
	pfs_fs_close(m.fs);
	ck_assert_int_eq(pfs_store_stat(m.st, o, &on), 0);
	ck_assert_uint_eq(on.flags & POSFS_ONODE_ORPHAN, POSFS_ONODE_ORPHAN);
	ck_assert_int_eq(pfs_store_close(m.st), 0);
	/* a consistent leftover of a crash: reclaimed, no problem counted */
	check_cycle(path, NULL, 0, NULL, 0, &res);
	m.st = st_open(path, false);
	ck_assert_int_eq(pfs_store_stat(m.st, o, &on), -ENOENT);
	for (uint32_t s = 0; s < 3; s++)
		ck_assert_uint_eq(orphan_records(m.st, s), 0);
	ck_assert_int_eq(pfs_store_sync(m.st), 0);
	ck_assert_int_eq(pfs_store_statfs(m.st, &s1), 0);
	ck_assert_uint_eq(s1.objects, s0.objects);
	ck_assert_uint_ge(s1.free_blocks + 8, s0.free_blocks);
	ck_assert_int_eq(pfs_fs_open(m.st, &m.fs), 0);
	lists(m.fs, t.a, "f1", "f2", "sub", "hl", NULL);
	intact(m.fs, &t);
	umount_fs(m);
	unlink(path);
	free(buf);
}
END_TEST

/* Directories removed (rmdir, replaced by a rename) while open, then a
 * crash: reclaimed as an unlinked file is, no problem counted. */
START_TEST(orphan_dir_after_crash)
{
	char path[] = "/var/tmp/posfs-names.XXXXXX";
	struct pfs_check_result res;
	struct pfs_statfs s0, s1;
	struct pfs_onode on;
	struct tree t;
	struct mnt m;
	uint64_t d1, d2;

	image_new(path);
	m = mount_path(path);
	populate(m.fs, &t);
	ck_assert_int_eq(pfs_store_sync(m.st), 0);
	ck_assert_int_eq(pfs_store_statfs(m.st, &s0), 0);
	d1 = mk(m.fs, t.a, "gone", 0755);
	d2 = mk(m.fs, t.a, "over", 0755);
	(void)mk(m.fs, t.a, "new", 0755);
	ck_assert_int_eq(pfs_fs_setxattr(m.fs, d2, "user.x", "1", 1, 0), 0);
	ck_assert_int_eq(pfs_fs_inode_open(m.fs, d1), 0);
	ck_assert_int_eq(pfs_fs_inode_open(m.fs, d2), 0);
	ck_assert_int_eq(pfs_fs_rmdir(m.fs, t.a, "gone"), 0);
	ck_assert_int_eq(pfs_fs_rename(m.fs, t.a, "new", t.a, "over", 0), 0);
	ck_assert_int_eq(pfs_fs_rmdir(m.fs, t.a, "over"), 0);
	/* "crash": never released */
	pfs_fs_close(m.fs);
	ck_assert_int_eq(pfs_store_stat(m.st, d2, &on), 0);
	ck_assert_uint_eq(on.flags & POSFS_ONODE_ORPHAN, POSFS_ONODE_ORPHAN);
	ck_assert_uint_eq(on.nlink, 0);
	ck_assert_int_eq(pfs_store_close(m.st), 0);
	check_cycle(path, NULL, 0, NULL, 0, &res);
	m.st = st_open(path, false);
	ck_assert_int_eq(pfs_store_stat(m.st, d1, &on), -ENOENT);
	ck_assert_int_eq(pfs_store_stat(m.st, d2, &on), -ENOENT);
	for (uint32_t s = 0; s < 3; s++)
		ck_assert_uint_eq(orphan_records(m.st, s), 0);
	ck_assert_int_eq(pfs_store_sync(m.st), 0);
	ck_assert_int_eq(pfs_store_statfs(m.st, &s1), 0);
	ck_assert_uint_eq(s1.objects, s0.objects);
	ck_assert_int_eq(pfs_fs_open(m.st, &m.fs), 0);
	lists(m.fs, t.a, "f1", "f2", "sub", "hl", NULL);
	intact(m.fs, &t);
	umount_fs(m);
	unlink(path);
}
END_TEST

START_TEST(orphan_records_disagree)
{
	char path[] = "/var/tmp/posfs-names.XXXXXX";
	struct pfs_check_result res;
	struct pfs_attr a = { .onode_flags = POSFS_ONODE_ORPHAN };
	struct pfs_store *st;
	struct pfs_onode on;
	struct tree t;
	struct mnt m;
	uint64_t u;

	image_new(path);
	m = mount_path(path);
	populate(m.fs, &t);
	u = mk(m.fs, t.b, "u", S_IFREG | 0600);
	pfs_fs_close(m.fs);
	st = m.st;
	/* a record for an object that does not exist, one in the wrong list */
	raw_orphan_rec(st, 1, POSFS_OID(1, 7777));
	raw_orphan_rec(st, (POSFS_OID_SHARD(t.f2) + 1) % 3, t.f2);
	/* linked, flagged; linked, listed */
	raw_setattr(st, t.h, &a, PFS_ATTR_ONODE_FLAGS);
	raw_orphan_rec(st, POSFS_OID_SHARD(t.f1), t.f1);
	raw_setattr(st, t.sub, &a, PFS_ATTR_ONODE_FLAGS);
	/* unlinked, nlink 0, on no list */
	raw_rm(st, t.b, "u", true, true);
	a.nlink = 0;
	raw_setattr(st, u, &a, PFS_ATTR_NLINK);
	ck_assert_int_eq(pfs_store_close(st), 0);
	check_cycle(path, CODES(PFS_PR_ORPHAN_RECORD), CODES(PFS_PR_ORPHAN_RECORD), &res);
	st = st_open(path, false);
	for (uint32_t s = 0; s < 3; s++)
		ck_assert_uint_eq(orphan_records(st, s), 0);
	ck_assert_int_eq(pfs_store_stat(st, u, &on), -ENOENT);
	ck_assert_int_eq(pfs_store_stat(st, t.h, &on), 0);
	ck_assert_uint_eq(on.flags, 0);
	ck_assert_uint_eq(on.nlink, 2);
	ck_assert_int_eq(pfs_store_stat(st, t.sub, &on), 0);
	ck_assert_uint_eq(on.flags, 0);
	ck_assert_int_eq(pfs_store_close(st), 0);
	m = mount_path(path);
	ck_assert_uint_eq(ino_of(m.fs, POSFS_ROOT_OID, "h"), t.h);
	lists(m.fs, t.b, NULL);
	intact(m.fs, &t);
	umount_fs(m);
	unlink(path);
}
END_TEST

START_TEST(root_missing)
{
	char path[] = "/var/tmp/posfs-names.XXXXXX", nm[32];
	struct pfs_check_result res;
	struct pfs_store *st;
	struct pfs_txn tx;
	struct tree t;
	struct mnt m;
	uint64_t lf;

	st = setup(path, &t);
	pfs_txn_init(&tx);
	pfs_txn_remove(&tx, POSFS_ROOT_OID);
	submit_ok(st, &tx);
	ck_assert_int_eq(pfs_store_close(st), 0);
	/* read-only: without a root, reachability is not judged. h lost an
	 * entry with it; reachable through a/hl, it keeps that one */
	check_cycle(path, CODES(PFS_PR_ROOT, PFS_PR_NLINK),
		    CODES(PFS_PR_ROOT, PFS_PR_UNREACHABLE, PFS_PR_LOST_FOUND, PFS_PR_NLINK), &res);
	ck_assert_uint_eq(res.dirs, 5);
	m = mount_path(path);
	ck_assert_uint_eq(attr_of(m.fs, POSFS_ROOT_OID).mode, S_IFDIR | 0755);
	ck_assert_uint_eq(attr_of(m.fs, POSFS_ROOT_OID).nlink, 3);
	lf = ino_of(m.fs, POSFS_ROOT_OID, "lost+found");
	lists(m.fs, POSFS_ROOT_OID, "lost+found", NULL);
	ck_assert_uint_eq(ino_of(m.fs, lf, hashname(nm, t.a)), t.a);
	ck_assert_uint_eq(dotdot(m.fs, t.a), lf);
	ck_assert_uint_eq(ino_of(m.fs, lf, hashname(nm, t.b)), t.b);
	ck_assert_uint_eq(ino_of(m.fs, lf, hashname(nm, t.sym)), t.sym);
	ck_assert_uint_eq(ino_of(m.fs, lf, hashname(nm, t.fifo)), t.fifo);
	ck_assert_int_eq(lookup_err(m.fs, lf, hashname(nm, t.h)), -ENOENT);
	ck_assert_uint_eq(attr_of(m.fs, lf).nlink, 4);
	ck_assert_uint_eq(attr_of(m.fs, t.h).nlink, 1);	/* a/hl */
	ck_assert_uint_eq(ino_of(m.fs, t.a, "f1"), t.f1);
	intact(m.fs, &t);
	umount_fs(m);
	unlink(path);
}
END_TEST

START_TEST(root_not_dir)
{
	char path[] = "/var/tmp/posfs-names.XXXXXX";
	struct pfs_check_result res;
	struct pfs_attr a = { .mode = S_IFREG | 0644 };
	struct pfs_store *st;
	struct tree t;
	struct mnt m;

	st = setup(path, &t);
	raw_setattr(st, POSFS_ROOT_OID, &a, PFS_ATTR_MODE);
	ck_assert_int_eq(pfs_store_close(st), 0);
	check_cycle(path, CODES(PFS_PR_ROOT, PFS_PR_NLINK),
		    CODES(PFS_PR_ROOT, PFS_PR_UNREACHABLE, PFS_PR_LOST_FOUND, PFS_PR_NLINK), &res);
	m = mount_path(path);
	ck_assert_uint_eq(attr_of(m.fs, POSFS_ROOT_OID).mode, S_IFDIR | 0755);
	ck_assert_uint_eq(ino_of(m.fs, t.a, "f1"), t.f1);
	intact(m.fs, &t);
	umount_fs(m);
	unlink(path);
}
END_TEST

START_TEST(bad_type)
{
	char path[] = "/var/tmp/posfs-names.XXXXXX";
	struct pfs_check_result res;
	struct pfs_attr a = { .mode = 0644 };
	struct pfs_store *st;
	struct pfs_onode on;
	struct tree t;
	struct mnt m;

	st = setup(path, &t);
	raw_setattr(st, t.f2, &a, PFS_ATTR_MODE);
	ck_assert_int_eq(pfs_store_close(st), 0);
	/* cleared, its entry dangles */
	check_cycle(path, CODES(PFS_PR_BAD_TYPE), CODES(PFS_PR_BAD_TYPE, PFS_PR_DANGLING), &res);
	ck_assert_uint_eq(res.files, 3);
	m = mount_path(path);
	ck_assert_int_eq(pfs_store_stat(m.st, t.f2, &on), -ENOENT);
	lists(m.fs, t.a, "f1", "sub", "hl", NULL);
	intact(m.fs, &t);
	umount_fs(m);
	unlink(path);
}
END_TEST

START_TEST(cycle)
{
	char path[] = "/var/tmp/posfs-names.XXXXXX", nm[32];
	struct pfs_check_result res;
	struct pfs_attr at = { 0 };
	struct tree t;
	struct mnt m;
	uint64_t A, B, C, lf;

	image_new(path);
	m = mount_path(path);
	populate(m.fs, &t);
	A = mk(m.fs, POSFS_ROOT_OID, "A", 0755);
	B = mk(m.fs, A, "B", 0755);
	mk(m.fs, B, "file", S_IFREG | 0600);
	C = mk(m.fs, POSFS_ROOT_OID, "C", 0755);
	pfs_fs_close(m.fs);
	/* A leaves the root for B: A and B hold each other */
	raw_rm(m.st, POSFS_ROOT_OID, "A", true, true);
	raw_set(m.st, B, "back", A, DT_DIR, 77, true, true);
	at.parent = B;
	raw_setattr(m.st, A, &at, PFS_ATTR_PARENT);
	/* C leaves the root for itself */
	raw_rm(m.st, POSFS_ROOT_OID, "C", true, true);
	raw_set(m.st, C, "me", C, DT_DIR, 78, true, true);
	at.parent = C;
	raw_setattr(m.st, C, &at, PFS_ATTR_PARENT);
	ck_assert_int_eq(pfs_store_close(m.st), 0);
	/* read-only, B's nlink misses A; the root's counts A, which left */
	check_cycle(path, CODES(PFS_PR_UNREACHABLE, PFS_PR_LOST_FOUND, PFS_PR_NLINK),
		    CODES(PFS_PR_UNREACHABLE, PFS_PR_LOST_FOUND, PFS_PR_NLINK), &res);
	m = mount_path(path);
	lf = ino_of(m.fs, POSFS_ROOT_OID, "lost+found");
	ck_assert_uint_eq(ino_of(m.fs, lf, hashname(nm, A)), A);
	ck_assert_uint_eq(dotdot(m.fs, A), lf);
	ck_assert_uint_eq(ino_of(m.fs, A, "B"), B);
	ck_assert_uint_eq(dotdot(m.fs, B), A);
	lists(m.fs, B, "file", NULL);
	ck_assert_uint_eq(attr_of(m.fs, A).nlink, 3);
	ck_assert_uint_eq(attr_of(m.fs, B).nlink, 2);
	ck_assert_uint_eq(ino_of(m.fs, lf, hashname(nm, C)), C);
	ck_assert_uint_eq(dotdot(m.fs, C), lf);
	lists(m.fs, C, NULL);
	ck_assert_uint_eq(attr_of(m.fs, C).nlink, 2);
	ck_assert_uint_eq(attr_of(m.fs, lf).nlink, 4);
	ck_assert_uint_eq(attr_of(m.fs, POSFS_ROOT_OID).nlink, 5);
	intact(m.fs, &t);
	umount_fs(m);
	unlink(path);
}
END_TEST

START_TEST(lost_found_not_dir)
{
	char path[] = "/var/tmp/posfs-names.XXXXXX", nm[32];
	struct pfs_check_result res;
	struct tree t;
	struct mnt m;
	uint64_t old, lf;

	image_new(path);
	m = mount_path(path);
	populate(m.fs, &t);
	old = mk(m.fs, POSFS_ROOT_OID, "lost+found", S_IFREG | 0600);
	pfs_fs_close(m.fs);
	raw_rm(m.st, t.a, "f2", true, true);
	ck_assert_int_eq(pfs_store_close(m.st), 0);
	check_cycle(path, CODES(PFS_PR_UNREACHABLE, PFS_PR_LOST_FOUND),
		    CODES(PFS_PR_UNREACHABLE, PFS_PR_LOST_FOUND), &res);
	m = mount_path(path);
	lf = ino_of(m.fs, POSFS_ROOT_OID, "lost+found");
	ck_assert(S_ISDIR(attr_of(m.fs, lf).mode));
	ck_assert_uint_eq(ino_of(m.fs, lf, hashname(nm, old)), old);
	ck_assert_uint_eq(attr_of(m.fs, old).nlink, 1);
	ck_assert_uint_eq(ino_of(m.fs, lf, hashname(nm, t.f2)), t.f2);
	ck_assert_uint_eq(attr_of(m.fs, POSFS_ROOT_OID).nlink, 5);
	intact(m.fs, &t);
	umount_fs(m);
	unlink(path);
}
END_TEST

START_TEST(lost_found_name_taken)
{
	char path[] = "/var/tmp/posfs-names.XXXXXX", nm[32], nm1[40];
	struct pfs_check_result res;
	struct tree t;
	struct mnt m;
	uint64_t lf, other;

	image_new(path);
	m = mount_path(path);
	populate(m.fs, &t);
	lf = mk(m.fs, POSFS_ROOT_OID, "lost+found", 0700);
	other = mk(m.fs, lf, hashname(nm, t.f2), S_IFREG | 0600);
	pfs_fs_close(m.fs);
	raw_rm(m.st, t.a, "f2", true, true);
	ck_assert_int_eq(pfs_store_close(m.st), 0);
	check_cycle(path, CODES(PFS_PR_UNREACHABLE), CODES(PFS_PR_UNREACHABLE), &res);
	m = mount_path(path);
	snprintf(nm1, sizeof(nm1), "%s.1", nm);
	ck_assert_uint_eq(ino_of(m.fs, lf, nm), other);
	ck_assert_uint_eq(ino_of(m.fs, lf, nm1), t.f2);
	lists(m.fs, lf, nm, nm1, NULL);
	intact(m.fs, &t);
	umount_fs(m);
	unlink(path);
}
END_TEST

/* Entries of dir: each listed once, each looked up to what was listed. */
struct count {
	struct pfs_fs *fs;
	uint64_t dir;
	unsigned n;
};

static int count_dir_cb(void *arg, const char *name, uint64_t ino, unsigned type,
			uint64_t next)
{
	struct count *c = arg;
	struct pfs_fs_attr a;

	(void)next;
	if (!strcmp(name, ".") || !strcmp(name, ".."))
		return 0;
	ck_assert_int_eq(pfs_fs_lookup(c->fs, c->dir, name, &a), 0);
	ck_assert_uint_eq(a.ino, ino);
	ck_assert_uint_eq((a.mode & S_IFMT) >> 12, type);
	c->n++;
	return 0;
}

static unsigned count_dir(struct pfs_fs *fs, uint64_t dir)
{
	struct count c = { fs, dir, 0 };

	ck_assert_int_eq(pfs_fs_readdir(fs, dir, 0, count_dir_cb, &c), 0);
	return c.n;
}

/*
 * Damage spread over a directory of 300 entries (many omap batches), with
 * scratch maps that move to LMDB part way.
 */
START_TEST(big_directory)
{
	char path[] = "/var/tmp/posfs-names.XXXXXX", nm[32];
	struct pfs_check_result res;
	static uint64_t ino[300];
	struct tree t;
	struct mnt m;
	uint64_t d, lf;

	image_new(path);
	m = mount_path(path);
	populate(m.fs, &t);
	d = mk(m.fs, POSFS_ROOT_OID, "big", 0755);
	for (unsigned i = 0; i < 300; i++) {
		snprintf(nm, sizeof(nm), "file-%03u", i);
		ino[i] = mk(m.fs, d, nm, S_IFREG | 0600);
	}
	pfs_fs_close(m.fs);
	for (unsigned i = 0; i < 300; i += 7) {
		snprintf(nm, sizeof(nm), "file-%03u", i);
		if (i % 3 == 0) {
			raw_rm(m.st, d, nm, false, true);	/* no 's' */
		} else if (i % 3 == 1) {
			raw_rm(m.st, d, nm, true, false);	/* no 'n': unreachable */
		} else {
			struct rdent e = raw_get(m.st, d, nm);

			raw_set(m.st, d, nm, e.ino, DT_LNK, e.seq, true, false);
		}
	}
	ck_assert_int_eq(pfs_store_close(m.st), 0);
	mem_limit = 8192;
	check_cycle(path, CODES(PFS_PR_DIRENT_INDEX, PFS_PR_UNREACHABLE, PFS_PR_LOST_FOUND,
				PFS_PR_DIRENT_TYPE),
		    CODES(PFS_PR_DIRENT_INDEX, PFS_PR_UNREACHABLE, PFS_PR_LOST_FOUND,
			  PFS_PR_DIRENT_TYPE), &res);
	ck_assert(maps_moved);
	mem_limit = 64 << 20;
	ck_assert_uint_eq(res.files, 304);
	m = mount_path(path);
	lf = ino_of(m.fs, POSFS_ROOT_OID, "lost+found");
	ck_assert_uint_eq(count_dir(m.fs, d), 300 - 14);
	ck_assert_uint_eq(count_dir(m.fs, lf), 14);
	for (unsigned i = 7; i < 300; i += 21)
		ck_assert_uint_eq(ino_of(m.fs, lf, hashname(nm, ino[i])), ino[i]);
	intact(m.fs, &t);
	umount_fs(m);
	unlink(path);
}
END_TEST

/*
 * An orphan too large to remove in one transaction (16,000 extents
 * scattered among another file's, a 1 MiB WAL): reclaimed in steps;
 * every block comes back. On a memory device, one store throughout.
 */
START_TEST(large_orphan)
{
	struct pfs_dev *dev = pfs_test_newfs_mem(192ull << 20, 1, 1 << 20);
	struct pfs_store_opts so = { .cache_blocks = 1024, .ckpt_interval_ms = -1 };
	struct pfs_check_result res;
	struct pfs_statfs s0, s1;
	struct pfs_store *st;
	struct pfs_onode on;
	struct pfs_fs *fs;
	struct pfs_txn tx;
	static char blk[4096];
	uint8_t key[9];
	uint64_t f, g;
	struct run r;

	ck_assert_ptr_nonnull(dev);
	ck_assert_int_eq(pfs_store_open_dev(dev, &so, &st), 0);
	ck_assert_int_eq(pfs_fs_open(st, &fs), 0);
	f = mk(fs, POSFS_ROOT_OID, "big", S_IFREG | 0644);
	g = mk(fs, POSFS_ROOT_OID, "other", S_IFREG | 0644);
	ck_assert_int_eq(pfs_store_sync(st), 0);
	ck_assert_int_eq(pfs_store_statfs(st, &s0), 0);	/* two empty files */
	memset(blk, 'x', sizeof(blk));
	for (uint64_t i = 0; i < 16000; i++) {
		ck_assert_int_eq(pfs_fs_write(fs, f, i * 8192, 4096, blk, &user), 4096);
		ck_assert_int_eq(pfs_fs_write(fs, g, i * 8192, 4096, blk, &user), 4096);
	}
	ck_assert_int_eq(pfs_fs_inode_open(fs, f), 0);
	ck_assert_int_eq(pfs_fs_unlink(fs, POSFS_ROOT_OID, "big"), 0);
	pfs_fs_close(fs);	/* "crash" */
	/* too large for one transaction indeed (which then changes nothing) */
	pfs_orphan_key(key, f);
	pfs_txn_init(&tx);
	pfs_txn_remove(&tx, f);
	pfs_txn_omap_rm(&tx, POSFS_OID(0, POSFS_LOCAL_ORPHANS), key, 9);
	ck_assert_int_eq(pfs_store_submit(st, &tx, 0, NULL), -E2BIG);
	pfs_txn_fini(&tx);

	/* the crash's orphan is no problem: reclaimed (in steps) all the same */
	run_names(st, true, &r, &res);
	ck_assert_uint_eq(r.n, 0);
	ck_assert_int_eq(pfs_store_stat(st, f, &on), 0);
	run_names(st, false, &r, &res);
	ck_assert_uint_eq(r.n, 0);
	ck_assert_uint_eq(res.fixed, 0);
	run_names(st, false, &r, &res);
	ck_assert_uint_eq(r.n, 0);
	ck_assert_int_eq(pfs_store_stat(st, f, &on), -ENOENT);
	ck_assert_uint_eq(orphan_records(st, 0), 0);
	/* the other one goes too (the layer's own steps): all space is back */
	ck_assert_int_eq(pfs_fs_open(st, &fs), 0);
	ck_assert_int_eq(pfs_fs_unlink(fs, POSFS_ROOT_OID, "other"), 0);
	ck_assert_int_eq(pfs_fs_getattr(fs, g, &(struct pfs_fs_attr){ 0 }), -ENOENT);
	pfs_fs_close(fs);
	ck_assert_int_eq(pfs_store_sync(st), 0);
	ck_assert_int_eq(pfs_store_statfs(st, &s1), 0);
	ck_assert_uint_ge(s1.free_blocks + 8, s0.free_blocks);
	ck_assert_int_eq(pfs_store_close(st), 0);
}
END_TEST

int main(void)
{
	Suite *su = suite_create("check_names");
	TCase *tc = tcase_create("names");
	SRunner *sr;
	int failed;

	verbose = getenv("POSFS_TEST_VERBOSE") != NULL;
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, clean);
	tcase_add_test(tc, unreachable_file);
	tcase_add_test(tc, unreachable_dir);
	tcase_add_test(tc, nlink);
	tcase_add_test(tc, dangling);
	tcase_add_test(tc, dirent_type);
	tcase_add_test(tc, dirent_index);
	tcase_add_test(tc, dir_links);
	tcase_add_test(tc, dir_links_parent_wins);
	tcase_add_test(tc, dotdot_wrong);
	tcase_add_test(tc, orphan_after_crash);
	tcase_add_test(tc, orphan_dir_after_crash);
	tcase_add_test(tc, orphan_records_disagree);
	tcase_add_test(tc, root_missing);
	tcase_add_test(tc, root_not_dir);
	tcase_add_test(tc, bad_type);
	tcase_add_test(tc, cycle);
	tcase_add_test(tc, lost_found_not_dir);
	tcase_add_test(tc, lost_found_name_taken);
	tcase_add_test(tc, big_directory);
	tcase_add_test(tc, large_orphan);
	suite_add_tcase(su, tc);
	sr = srunner_create(su);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
