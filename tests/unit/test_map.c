/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fsck's scratch maps (src/check/map.c): random puts, gets, deletes and
 * iterations against a reference model (a direct array over a key space of
 * 1024 keys spread over the whole 64-bit range), every result and the
 * count compared after every operation, many seeds; in memory, with a
 * tiny memory limit and a scratch directory (the move to LMDB happens part
 * way: every map is on disk at once and holds what it held), and with
 * several maps in one environment, changed from inside each other's
 * iterations (moves included). Then the edges: value sizes and names,
 * scratch directories that cannot be used, iteration order and early
 * stop, an iteration whose sort array triggers the move, a scratch file
 * that cannot grow (RLIMIT_FSIZE: -ENOSPC, nothing changed, and usable
 * again once there is room), and 200,000 keys each way. The same suite
 * runs against map.c built with tiny tunables (test_map_small), where
 * LMDB commits every few changes and its map fills and grows repeatedly.
 */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check/map.h"

/* A directory of our own under $TMPDIR (else /var/tmp), for scratch files. */
static char scratch[PATH_MAX];

/*
 * Assertions for hot loops: libcheck's ck_assert_* report every passing
 * check to the runner; these call into check only on failure, and name
 * the seed and operation of the random run.
 */
static uint64_t cur_seed;
static long cur_op = -1;

#define MUST(cond, ...)							\
	do {								\
		if (!(cond))						\
			ck_abort_msg(__VA_ARGS__);			\
	} while (0)

#define MUST_INT_EQ(x, y)						\
	do {								\
		intmax_t x_ = (x), y_ = (y);				\
		if (x_ != y_)						\
			ck_abort_msg("%s == %jd, not %jd: seed %" PRIu64 \
				     " op %ld", #x, x_, y_, cur_seed, cur_op); \
	} while (0)

#define MUST_UINT_EQ(x, y)						\
	do {								\
		uintmax_t x_ = (x), y_ = (y);				\
		if (x_ != y_)						\
			ck_abort_msg("%s == %ju, not %ju: seed %" PRIu64 \
				     " op %ld", #x, x_, y_, cur_seed, cur_op); \
	} while (0)

/* ---- random numbers ----------------------------------------------------- */

static uint64_t rng_state;

static uint64_t rnd(void)
{
	uint64_t x = rng_state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545F4914F6CDD1Dull;
}

static uint64_t rnd_below(uint64_t n)
{
	return rnd() % n;
}

static void rng_seed(uint64_t seed)
{
	cur_seed = seed;
	cur_op = -1;
	rng_state = seed ? seed : 0x9e3779b97f4a7c15ull;
	for (int i = 0; i < 4; i++)
		rnd();
}

/* ---- the scratch directory ---------------------------------------------- */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(path);
}

static size_t dir_entries(const char *path)
{
	DIR *d = opendir(path);
	struct dirent *de;
	size_t n = 0;

	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

/* ---- the reference model ------------------------------------------------ */

#define NK 1024				/* keys in a model's key space */
#define NMAPS 4

struct model {
	size_t vsize;
	uint64_t key[NK];		/* sorted, distinct */
	bool has[NK];
	uint8_t val[NK][PFS_MAP_VSIZE_MAX];
	uint64_t count;
};

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/*
 * A key space that hashes and sorts in awkward ways: both ends of the
 * range, a dense run (inode numbers), block numbers, keys around 2^32 and
 * 2^63, powers of two, and random keys.
 */
static void model_init(struct model *md, size_t vsize)
{
	uint64_t base = rnd_below(1u << 20);
	size_t n = 0;

	memset(md, 0, sizeof(*md));
	md->vsize = vsize;
	md->key[n++] = 0;
	md->key[n++] = 1;
	md->key[n++] = UINT64_MAX;
	md->key[n++] = UINT64_MAX - 1;
	md->key[n++] = 1ull << 63;
	md->key[n++] = (1ull << 63) - 1;
	for (int i = 0; i < 64; i++)
		md->key[n++] = 1ull << i;
	for (int i = 0; i < 200; i++)
		md->key[n++] = base + i;
	for (int i = 0; i < 100; i++)
		md->key[n++] = (1ull << 40) + ((uint64_t)i << 12);
	for (int i = 0; i < 60; i++)
		md->key[n++] = (1ull << 32) - 30 + i;
	for (;;) {
		size_t d = 0;

		while (n < NK)
			md->key[n++] = rnd() >> rnd_below(64);
		qsort(md->key, n, sizeof(md->key[0]), cmp_u64);
		for (size_t i = 0; i < n; i++)
			if (!d || md->key[i] != md->key[d - 1])
				md->key[d++] = md->key[i];
		n = d;
		if (n == NK)
			break;
	}
}

static void fill_value(uint8_t *v, size_t vsize)
{
	unsigned kind = (unsigned)rnd_below(8);

	for (size_t i = 0; i < vsize; i++)
		v[i] = kind == 0 ? 0 : kind == 1 ? 0xff : (uint8_t)rnd();
}

/* One random put, del or get on m, checked against md. */
static void op_random(struct pfs_map *m, struct model *md)
{
	unsigned kind = (unsigned)rnd_below(100);
	size_t i = rnd_below(NK);
	uint8_t v[PFS_MAP_VSIZE_MAX + 8];
	int rc;

	if (kind < 40) {
		fill_value(v, md->vsize);
		MUST_INT_EQ(pfs_map_put(m, md->key[i], v), 0);
		memcpy(md->val[i], v, md->vsize);
		md->count += !md->has[i];
		md->has[i] = true;
	} else if (kind < 65) {
		rc = pfs_map_del(m, md->key[i]);
		MUST_INT_EQ(rc, md->has[i] ? 0 : -ENOENT);
		md->count -= md->has[i];
		md->has[i] = false;
	} else {
		memset(v, 0xa5, sizeof(v));
		rc = pfs_map_get(m, md->key[i], v);
		MUST_INT_EQ(rc, md->has[i] ? 0 : -ENOENT);
		if (!rc)
			MUST(!memcmp(v, md->val[i], md->vsize),
			     "get %#" PRIx64 ": wrong value: seed %" PRIu64 " op %ld",
			     md->key[i], cur_seed, cur_op);
		for (size_t j = rc ? 0 : md->vsize; j < sizeof(v); j++)
			MUST(v[j] == 0xa5, "get wrote past the value: seed %" PRIu64
			     " op %ld", cur_seed, cur_op);
	}
	MUST_UINT_EQ(pfs_map_count(m), md->count);
}

/* ---- iteration against the model --------------------------------------- */

#define STOPPED 7777

struct walk {
	struct model *md;
	size_t next;			/* model index to look from */
	long calls;
	long stop_at;			/* return STOPPED at this call; 0: never */
	struct pfs_map *self;		/* the map walked: changes are -EBUSY */
	struct pfs_map *other;		/* changed at random meanwhile */
	struct model *mo;
	long moved_at;			/* call at which the env went to LMDB */
};

static int walk_fn(void *arg, uint64_t key, const void *val)
{
	struct walk *w = arg;
	struct model *md = w->md;
	uint8_t v[PFS_MAP_VSIZE_MAX];
	size_t j = w->next;
	bool was_on_disk;

	while (j < NK && !md->has[j])
		j++;
	MUST(j < NK && md->key[j] == key, "iterate gave %#" PRIx64 ", not %#" PRIx64
	     ": seed %" PRIu64 " op %ld", key, j < NK ? md->key[j] : 0,
	     cur_seed, cur_op);
	MUST(!memcmp(val, md->val[j], md->vsize), "iterate %#" PRIx64
	     ": wrong value: seed %" PRIu64 " op %ld", key, cur_seed, cur_op);
	MUST((uintptr_t)val % 8 == 0, "value not aligned");
	w->next = j + 1;
	w->calls++;
	if (w->self && rnd_below(16) == 0) {
		MUST_INT_EQ(pfs_map_put(w->self, key, val), -EBUSY);
		MUST_INT_EQ(pfs_map_del(w->self, key), -EBUSY);
		MUST_INT_EQ(pfs_map_get(w->self, key, v), 0);
		MUST(!memcmp(v, md->val[j], md->vsize), "get inside iterate");
	}
	if (w->other && rnd_below(2)) {
		was_on_disk = pfs_map_on_disk(w->other);
		op_random(w->other, w->mo);
		if (!was_on_disk && pfs_map_on_disk(w->other))
			w->moved_at = w->calls;
	}
	return w->calls == w->stop_at ? STOPPED : 0;
}

/* Iterate all of m: exactly the model's records, in key order. */
static void check_all(struct pfs_map *m, struct model *md)
{
	struct walk w = { .md = md, .self = m };

	MUST_INT_EQ(pfs_map_iterate(m, walk_fn, &w), 0);
	for (size_t j = w.next; j < NK; j++)
		MUST(!md->has[j], "iterate missed %#" PRIx64 ": seed %" PRIu64
		     " op %ld", md->key[j], cur_seed, cur_op);
	MUST_UINT_EQ(w.calls, md->count);
	MUST_UINT_EQ(pfs_map_count(m), md->count);
}

/* Stop after a random number of records: fn's value comes back. */
static void check_stop(struct pfs_map *m, struct model *md)
{
	struct walk w = { .md = md, .self = m };

	if (!md->count)
		return;
	w.stop_at = 1 + (long)rnd_below(md->count);
	MUST_INT_EQ(pfs_map_iterate(m, walk_fn, &w), STOPPED);
	MUST_INT_EQ(w.calls, w.stop_at);
}

/* Iterate m while changing other: m as in the model, other as in its. */
static void check_with_other(struct pfs_map *m, struct model *md,
			     struct pfs_map *other, struct model *mo)
{
	struct walk w = { .md = md, .self = m, .other = other, .mo = mo };

	MUST_INT_EQ(pfs_map_iterate(m, walk_fn, &w), 0);
	MUST_UINT_EQ(w.calls, md->count);
}

/* ---- the random runs ---------------------------------------------------- */

static const size_t vsizes[] = { 1, 4, 8, 12, 64, 16, 3, 63 };

/*
 * ops random operations on nmaps maps of one environment made with o.
 * must_move: the environment must end on disk (else it must stay in
 * memory); the moment it moves, every map must hold all it held.
 */
static void run_model(uint64_t seed, int nmaps, long ops,
		      const struct pfs_map_opts *o, bool must_move)
{
	struct model *md = calloc(NMAPS, sizeof(*md));
	struct pfs_map *m[NMAPS];
	struct pfs_map_env *e;
	long moved_at = -1;
	char name[16];

	ck_assert_ptr_nonnull(md);
	rng_seed(seed);
	MUST_INT_EQ(pfs_map_env_create(o, &e), 0);
	/* The scratch file is unlinked from the start. */
	MUST_UINT_EQ(dir_entries(scratch), 0);
	for (int k = 0; k < nmaps; k++) {
		size_t vsize = rnd_below(3) ? vsizes[rnd_below(8)] : 1 + rnd_below(64);

		model_init(&md[k], vsize);
		snprintf(name, sizeof(name), "map%d", k);
		MUST_INT_EQ(pfs_map_create(e, name, vsize, &m[k]), 0);
		MUST(!pfs_map_on_disk(m[k]), "a new env is in memory");
	}
	for (long op = 0; op < ops; op++) {
		int k = (int)rnd_below((uint64_t)nmaps);
		unsigned r = (unsigned)rnd_below(1000);

		cur_op = op;
		if (r < 2)
			check_all(m[k], &md[k]);
		else if (r < 4)
			check_stop(m[k], &md[k]);
		else if (r < 8 && nmaps > 1)
			check_with_other(m[k], &md[k], m[(k + 1) % nmaps],
					 &md[(k + 1) % nmaps]);
		else
			op_random(m[k], &md[k]);
		if (moved_at < 0 && pfs_map_on_disk(m[k])) {
			moved_at = op;
			for (int j = 0; j < nmaps; j++) {
				MUST(pfs_map_on_disk(m[j]), "all maps move together");
				check_all(m[j], &md[j]);
			}
		}
	}
	cur_op = ops;
	for (int k = 0; k < nmaps; k++)
		check_all(m[k], &md[k]);
	MUST(must_move == (moved_at >= 0), "moved at op %ld: seed %" PRIu64,
	     moved_at, seed);
	pfs_map_env_destroy(e);
	MUST_UINT_EQ(dir_entries(scratch), 0);
	free(md);
}

static uint64_t random_seed(void)
{
	return (uint64_t)time(NULL) * 1000003u ^ (uint64_t)getpid();
}

#define SEEDS 12
#define OPS 20000

START_TEST(model_memory)
{
	struct pfs_map_opts o[3] = {
		{ NULL, 0 },
		{ NULL, 1 },		/* a limit without a directory: ignored */
		{ scratch, 0 },		/* a directory without a limit: unused */
	};

	for (uint64_t s = 0; s < SEEDS; s++)
		run_model(0x6d61700000ull + s, 1, OPS, s % 4 == 3 ? NULL : &o[s % 4], false);
	run_model(random_seed(), 1, OPS, &o[0], false);
}
END_TEST

START_TEST(model_move)
{
	struct pfs_map_opts o = { scratch, 0 };

	for (uint64_t s = 0; s < SEEDS; s++) {
		rng_seed(s);
		o.mem_limit = 1 + rnd_below(8192);
		run_model(0x6d6f766500ull + s, 1, OPS, &o, true);
	}
	o.mem_limit = 1 + random_seed() % 8192;
	run_model(random_seed(), 1, OPS, &o, true);
}
END_TEST

START_TEST(model_several_maps)
{
	struct pfs_map_opts o = { scratch, 0 };

	for (uint64_t s = 0; s < SEEDS; s++) {
		rng_seed(s);
		o.mem_limit = 1 + rnd_below(32768);
		run_model(0x7365760000ull + s, NMAPS, 2 * OPS, &o, true);
		run_model(0x7365760100ull + s, NMAPS, OPS, NULL, false);
	}
	o.mem_limit = 1 + random_seed() % 32768;
	run_model(random_seed(), NMAPS, 2 * OPS, &o, true);
}
END_TEST

/* ---- edges -------------------------------------------------------------- */

/* An env that has moved to LMDB: a tiny limit, and one put. */
static struct pfs_map_env *env_on_disk(void)
{
	struct pfs_map_opts o = { scratch, 1 };
	struct pfs_map_env *e;
	struct pfs_map *m;
	uint64_t v = 1;

	MUST_INT_EQ(pfs_map_env_create(&o, &e), 0);
	MUST_INT_EQ(pfs_map_create(e, "first", 8, &m), 0);
	MUST(!pfs_map_on_disk(m), "in memory until the first put");
	MUST_INT_EQ(pfs_map_put(m, 5, &v), 0);
	MUST(pfs_map_on_disk(m), "on disk after the first put");
	return e;
}

START_TEST(sizes_and_names)
{
	char name[PFS_MAP_NAME_MAX + 2];
	struct pfs_map_env *e;
	struct pfs_map *m, *m2, *m3;
	uint8_t v[PFS_MAP_VSIZE_MAX], got[PFS_MAP_VSIZE_MAX];

	for (int pass = 0; pass < 2; pass++) {
		if (pass == 0)
			MUST_INT_EQ(pfs_map_env_create(NULL, &e), 0);
		else
			e = env_on_disk();
		m = (void *)1;
		MUST_INT_EQ(pfs_map_create(e, "a", 0, &m), -EINVAL);
		MUST(m == NULL, "*mp cleared on error");
		MUST_INT_EQ(pfs_map_create(e, "a", PFS_MAP_VSIZE_MAX + 1, &m), -EINVAL);
		MUST_INT_EQ(pfs_map_create(e, "a", SIZE_MAX, &m), -EINVAL);
		MUST_INT_EQ(pfs_map_create(e, NULL, 8, &m), -EINVAL);
		MUST_INT_EQ(pfs_map_create(e, "", 8, &m), -EINVAL);
		memset(name, 'n', PFS_MAP_NAME_MAX + 1);
		name[PFS_MAP_NAME_MAX + 1] = 0;
		MUST_INT_EQ(pfs_map_create(e, name, 8, &m), -EINVAL);
		name[PFS_MAP_NAME_MAX] = 0;
		MUST_INT_EQ(pfs_map_create(e, name, 1, &m), 0);
		MUST_INT_EQ(pfs_map_create(e, name, 1, &m2), -EEXIST);
		MUST_INT_EQ(pfs_map_create(e, "big", PFS_MAP_VSIZE_MAX, &m2), 0);
		MUST(pfs_map_on_disk(m) == (pass == 1), "a new map of an env on disk is on disk");
		/* The extreme sizes hold their bytes. */
		for (uint64_t k = 0; k < 300; k++) {
			memset(v, (int)k, sizeof(v));
			v[0] = (uint8_t)~k;
			MUST_INT_EQ(pfs_map_put(m, k * 977, v), 0);
			MUST_INT_EQ(pfs_map_put(m2, ~k, v), 0);
		}
		for (uint64_t k = 0; k < 300; k++) {
			memset(got, 0, sizeof(got));
			MUST_INT_EQ(pfs_map_get(m, k * 977, got), 0);
			MUST(got[0] == (uint8_t)~k && got[1] == 0, "vsize 1");
			MUST_INT_EQ(pfs_map_get(m2, ~k, got), 0);
			MUST(got[0] == (uint8_t)~k && got[63] == (uint8_t)k, "vsize 64");
		}
		MUST_UINT_EQ(pfs_map_count(m), 300);
		MUST_UINT_EQ(pfs_map_count(m2), 300);
		/* Up to PFS_MAP_MAX_MAPS maps, names told apart. */
		for (int i = 2 + pass; i < PFS_MAP_MAX_MAPS; i++) {
			snprintf(name, sizeof(name), "m%d", i);
			MUST_INT_EQ(pfs_map_create(e, name, 2, &m2), 0);
			MUST_INT_EQ(pfs_map_put(m2, (uint64_t)i, "ab"), 0);
		}
		MUST_INT_EQ(pfs_map_create(e, "one too many", 2, &m3), -EMFILE);
		MUST_INT_EQ(pfs_map_get(m2, PFS_MAP_MAX_MAPS - 1, got), 0);
		MUST_UINT_EQ(pfs_map_count(m2), 1);
		pfs_map_env_destroy(e);
	}
	pfs_map_env_destroy(NULL);
}
END_TEST

/*
 * A scratch directory that cannot be used is refused when the env is
 * made, with the errno of making a file there; without a memory limit
 * the directory is not looked at.
 */
START_TEST(scratch_dir_errors)
{
	struct pfs_map_opts o = { NULL, 1 << 20 };
	struct pfs_map_env *e = (void *)1;
	char path[PATH_MAX + 32], file[PATH_MAX + 32];
	int status;
	pid_t pid;
	FILE *f;

	snprintf(path, sizeof(path), "%s/none", scratch);
	o.scratch_dir = path;
	MUST_INT_EQ(pfs_map_env_create(&o, &e), -ENOENT);
	MUST(e == NULL, "*ep cleared on error");
	snprintf(file, sizeof(file), "%s/file", scratch);
	f = fopen(file, "w");
	ck_assert_ptr_nonnull(f);
	fclose(f);
	o.scratch_dir = file;
	MUST_INT_EQ(pfs_map_env_create(&o, &e), -ENOTDIR);
	o.scratch_dir = "";
	MUST_INT_EQ(pfs_map_env_create(&o, &e), -EINVAL);
	/* No limit: the directory is never used, so never looked at. */
	o.scratch_dir = path;
	o.mem_limit = 0;
	MUST_INT_EQ(pfs_map_env_create(&o, &e), 0);
	pfs_map_env_destroy(e);
	unlink(file);

	/* A directory we may not write to (as an unprivileged user if root). */
	snprintf(path, sizeof(path), "%s/ro", scratch);
	ck_assert_int_eq(mkdir(path, 0555), 0);
	pid = fork();
	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		struct pfs_map_opts c = { path, 1 << 20 };
		struct pfs_map_env *ce;
		int rc;

		if (geteuid() == 0 && (setgid(65534) || setuid(65534)))
			_exit(77);
		rc = pfs_map_env_create(&c, &ce);
		_exit(rc < 0 ? -rc : 0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status));
	if (WEXITSTATUS(status) == 77)
		fprintf(stderr, "scratch_dir_errors: cannot drop root, EACCES not tried\n");
	else
		ck_assert_int_eq(WEXITSTATUS(status), EACCES);
	rmdir(path);
	MUST_UINT_EQ(dir_entries(scratch), 0);
}
END_TEST

struct order {
	uint64_t last;
	long calls, stop_at;
};

static int order_fn(void *arg, uint64_t key, const void *val)
{
	struct order *o = arg;
	uint64_t v;

	memcpy(&v, val, 8);
	MUST(v == ~key, "value of %#" PRIx64, key);
	MUST(!o->calls || key > o->last, "%#" PRIx64 " after %#" PRIx64, key, o->last);
	o->last = key;
	return ++o->calls == o->stop_at ? -12345 : 0;
}

/* Key patterns that are hard on hashing and sorting, in memory and on disk. */
START_TEST(iterate_order)
{
	enum { N = 5000 };
	struct pfs_map_env *e;
	struct pfs_map *m;
	struct order o;

	for (int pass = 0; pass < 2; pass++) {
		for (int pat = 0; pat < 6; pat++) {
			if (pass == 0)
				MUST_INT_EQ(pfs_map_env_create(NULL, &e), 0);
			else
				e = env_on_disk();
			MUST_INT_EQ(pfs_map_create(e, "order", 8, &m), 0);
			o = (struct order){ 0 };
			MUST_INT_EQ(pfs_map_iterate(m, order_fn, &o), 0);
			MUST_INT_EQ(o.calls, 0);
			rng_seed(pat);
			for (uint64_t i = 0; i < N; i++) {
				uint64_t k, v;

				switch (pat) {
				case 0: k = i; break;			/* ascending */
				case 1: k = UINT64_MAX - i; break;	/* descending */
				case 2: k = i << 32; break;		/* low bits equal */
				case 3: k = (i % 2 ? i : N - i) << 12; break; /* zigzag */
				case 4: k = rnd(); break;
				default: k = i % 64 == 0 ? 1ull << (i / 64 % 64) : i * 0x9e3779b9ull; break;
				}
				v = ~k;
				MUST_INT_EQ(pfs_map_put(m, k, &v), 0);
			}
			o = (struct order){ 0 };
			MUST_INT_EQ(pfs_map_iterate(m, order_fn, &o), 0);
			MUST_UINT_EQ(o.calls, pfs_map_count(m));
			o = (struct order){ .stop_at = 1 };
			MUST_INT_EQ(pfs_map_iterate(m, order_fn, &o), -12345);
			MUST_INT_EQ(o.calls, 1);
			o = (struct order){ .stop_at = (long)pfs_map_count(m) };
			MUST_INT_EQ(pfs_map_iterate(m, order_fn, &o), -12345);
			o = (struct order){ .stop_at = 777 };
			MUST_INT_EQ(pfs_map_iterate(m, order_fn, &o), -12345);
			MUST_INT_EQ(o.calls, 777);
			pfs_map_env_destroy(e);
		}
	}
}
END_TEST

/* Order, and the value byte that is the key's low byte. */
static int byte_fn(void *arg, uint64_t key, const void *val)
{
	struct order *o = arg;

	MUST(*(const uint8_t *)val == (uint8_t)key, "value of %#" PRIx64, key);
	MUST(!o->calls || key > o->last, "%#" PRIx64 " after %#" PRIx64, key, o->last);
	o->last = key;
	o->calls++;
	return 0;
}

struct mover {
	struct pfs_map *other;
	uint64_t last;
	long calls, moved_at;
};

/* Walks 0..299 in order while filling another map, until the env moves. */
static int mover_fn(void *arg, uint64_t key, const void *val)
{
	struct mover *w = arg;
	uint64_t v;

	memcpy(&v, val, 8);
	MUST(key == (uint64_t)w->calls && v == key * 3, "walk at %ld: %" PRIu64,
	     w->calls, key);
	for (int i = 0; i < 4; i++) {
		v = key * 4 + (uint64_t)i;
		MUST_INT_EQ(pfs_map_put(w->other, v, &v), 0);
	}
	w->calls++;
	if (w->moved_at < 0 && pfs_map_on_disk(w->other))
		w->moved_at = w->calls;
	return 0;
}

/*
 * Moves that an iteration causes: its own sort array not fitting under
 * the limit (the move comes first), and fn filling another map (the move
 * comes mid-way, and the walk carries on in LMDB). Each must happen for
 * some limit of a range. (A table's growth counts old and new tables at
 * once, so for the sort array to be the last straw the table must be
 * nearly full and its records small: 350 one-byte values.)
 */
START_TEST(iterate_moves)
{
	bool by_sort = false, by_fn = false;
	struct pfs_map_opts o = { scratch, 0 };
	struct pfs_map_env *e;
	struct pfs_map *a, *b;
	struct mover w;
	struct order ord;
	uint64_t v;

	for (o.mem_limit = 64; o.mem_limit < (48 << 10); o.mem_limit += 64) {
		MUST_INT_EQ(pfs_map_env_create(&o, &e), 0);
		MUST_INT_EQ(pfs_map_create(e, "a", 1, &a), 0);
		MUST_INT_EQ(pfs_map_create(e, "b", 8, &b), 0);
		for (uint64_t k = 0; k < 350; k++) {
			uint8_t c = (uint8_t)(k * 1000003);

			MUST_INT_EQ(pfs_map_put(a, k * 1000003, &c), 0);
		}
		if (!pfs_map_on_disk(a)) {
			ord = (struct order){ 0 };
			MUST_INT_EQ(pfs_map_iterate(a, byte_fn, &ord), 0);
			MUST_INT_EQ(ord.calls, 350);
			by_sort |= pfs_map_on_disk(a);
		}
		pfs_map_env_destroy(e);

		MUST_INT_EQ(pfs_map_env_create(&o, &e), 0);
		MUST_INT_EQ(pfs_map_create(e, "a", 8, &a), 0);
		MUST_INT_EQ(pfs_map_create(e, "b", 8, &b), 0);
		for (uint64_t k = 0; k < 300; k++) {
			v = k * 3;
			MUST_INT_EQ(pfs_map_put(a, k, &v), 0);
		}
		w = (struct mover){ .other = b, .moved_at = -1 };
		if (pfs_map_on_disk(a)) {
			pfs_map_env_destroy(e);
			continue;
		}
		MUST_INT_EQ(pfs_map_iterate(a, mover_fn, &w), 0);
		MUST_INT_EQ(w.calls, 300);
		MUST_UINT_EQ(pfs_map_count(b), 1200);
		for (uint64_t k = 0; k < 1200; k++) {
			MUST_INT_EQ(pfs_map_get(b, k, &v), 0);
			MUST_UINT_EQ(v, k);
		}
		by_fn |= w.moved_at > 1 && w.moved_at < 300;
		pfs_map_env_destroy(e);
	}
	MUST(by_sort, "no limit made the sort array move the env");
	MUST(by_fn, "no limit made fn move the env mid-walk");
}
END_TEST

/*
 * A scratch file that cannot grow (RLIMIT_FSIZE stands in for a full
 * file system): -ENOSPC, and the failed call changed nothing; reads and
 * iteration still work; with room again, so do changes. First at the
 * move (the reservation fails: the maps stay in memory), then in LMDB.
 */
START_TEST(scratch_full)
{
	struct pfs_map_opts o = { scratch, 64 << 10 };
	uint8_t v[PFS_MAP_VSIZE_MAX], got[PFS_MAP_VSIZE_MAX];
	struct rlimit old, lim;
	struct pfs_map_env *e;
	struct pfs_map *m;
	uint64_t n, k, x, top;
	bool gone[50];
	int rc = 0;

	signal(SIGXFSZ, SIG_IGN);
	ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &old), 0);

	/* At the move: the estimate for the maps does not fit. */
	MUST_INT_EQ(pfs_map_env_create(&o, &e), 0);
	MUST_INT_EQ(pfs_map_create(e, "full", PFS_MAP_VSIZE_MAX, &m), 0);
	/*
	 * Inside the window only MUST: a passing ck_assert writes to check's
	 * own files. A limit of one byte: the file can no longer be extended
	 * (LMDB with MDB_WRITEMAP writes nothing but through its map).
	 */
	lim = old;
	lim.rlim_cur = 1;
	MUST(!setrlimit(RLIMIT_FSIZE, &lim), "setrlimit");
	for (n = 0; n < 100000; n++) {
		memset(v, (int)n, sizeof(v));
		rc = pfs_map_put(m, n, v);
		if (rc)
			break;
	}
	MUST_INT_EQ(rc, -ENOSPC);
	MUST(!pfs_map_on_disk(m), "the move failed, the maps stay in memory");
	MUST_UINT_EQ(pfs_map_count(m), n);
	MUST_INT_EQ(pfs_map_get(m, n, got), -ENOENT);
	for (k = 0; k < n; k++) {
		MUST_INT_EQ(pfs_map_get(m, k, got), 0);
		MUST(got[0] == (uint8_t)k, "value of %" PRIu64, k);
	}
	MUST(!setrlimit(RLIMIT_FSIZE, &old), "setrlimit");
	MUST_INT_EQ(pfs_map_put(m, n, v), 0);
	MUST(pfs_map_on_disk(m), "moved once there was room");
	MUST_UINT_EQ(pfs_map_count(m), n + 1);
	pfs_map_env_destroy(e);

	/* In LMDB: fill until the file cannot grow. */
	e = env_on_disk();
	MUST_INT_EQ(pfs_map_create(e, "full", PFS_MAP_VSIZE_MAX, &m), 0);
	MUST(!setrlimit(RLIMIT_FSIZE, &lim), "setrlimit");
	for (n = 0; n < 1000000; n++) {
		x = n * 0x9e3779b97f4a7c15ull;
		memset(v, (int)n, sizeof(v));
		rc = pfs_map_put(m, x, v);
		if (rc)
			break;
	}
	MUST_INT_EQ(rc, -ENOSPC);
	MUST_UINT_EQ(pfs_map_count(m), n);
	MUST_INT_EQ(pfs_map_get(m, n * 0x9e3779b97f4a7c15ull, got), -ENOENT);
	/* Again, a replace, and deletes: refused or done, never half done. */
	top = n;
	for (k = 0; k < 50; k++) {
		x = k * 0x9e3779b97f4a7c15ull;
		memset(v, 0xee, sizeof(v));
		rc = pfs_map_put(m, x, v);
		MUST(rc == 0 || rc == -ENOSPC, "replace: %d", rc);
		MUST_INT_EQ(pfs_map_get(m, x, got), 0);
		MUST(got[0] == (rc ? (uint8_t)k : 0xee), "replace %" PRIu64 ": %d", k, rc);
		x = (top - 1 - k) * 0x9e3779b97f4a7c15ull;
		rc = pfs_map_del(m, x);
		MUST(rc == 0 || rc == -ENOSPC, "del: %d", rc);
		MUST_INT_EQ(pfs_map_get(m, x, got), rc ? 0 : -ENOENT);
		gone[k] = !rc;
		n -= !rc;
	}
	MUST_UINT_EQ(pfs_map_count(m), n);
	MUST(!setrlimit(RLIMIT_FSIZE, &old), "setrlimit");
	/* Room again: everything is there, and it grows. */
	for (k = 50; k < top; k++) {
		x = k * 0x9e3779b97f4a7c15ull;
		rc = pfs_map_get(m, x, got);
		if (top - 1 - k < 50 && gone[top - 1 - k]) {
			MUST_INT_EQ(rc, -ENOENT);
			continue;
		}
		MUST_INT_EQ(rc, 0);
		MUST(got[0] == (uint8_t)k && got[63] == (uint8_t)k, "value %" PRIu64, k);
	}
	for (k = 0; k < 20000; k++) {
		memset(v, 0, sizeof(v));
		memcpy(v, &k, 8);
		MUST_INT_EQ(pfs_map_put(m, k * 2 + 1, v), 0);
	}
	MUST(pfs_map_count(m) >= n + 19000, "count %" PRIu64,
	     (uint64_t)pfs_map_count(m));
	pfs_map_env_destroy(e);
	MUST_UINT_EQ(dir_entries(scratch), 0);
}
END_TEST

struct sum {
	uint64_t n, last, xsum;
};

static int sum_fn(void *arg, uint64_t key, const void *val)
{
	struct sum *s = arg;
	uint32_t v;

	memcpy(&v, val, 4);
	MUST(!s->n || key > s->last, "order");
	MUST(v == (uint32_t)(key * 7), "value");
	s->last = key;
	s->n++;
	s->xsum ^= key;
	return 0;
}

/* 200,000 random keys in memory, and in LMDB; and all deleted again. */
START_TEST(scale_200k)
{
	enum { N = 200000 };
	struct pfs_map_opts o = { scratch, 1 << 20 };
	uint64_t *keys = malloc(N * sizeof(*keys)), xsum = 0;
	struct pfs_map_env *e;
	struct pfs_map *m;
	struct sum s;
	uint32_t v;

	ck_assert_ptr_nonnull(keys);
	for (int pass = 0; pass < 2; pass++) {
		rng_seed(200000 + pass);
		xsum = 0;
		MUST_INT_EQ(pfs_map_env_create(pass ? &o : NULL, &e), 0);
		MUST_INT_EQ(pfs_map_create(e, "scale", 4, &m), 0);
		for (int i = 0; i < N; i++) {
			keys[i] = i % 2 ? rnd() : (uint64_t)i;
			v = (uint32_t)(keys[i] * 7);
			MUST_INT_EQ(pfs_map_put(m, keys[i], &v), 0);
			xsum ^= keys[i];
		}
		MUST(pfs_map_on_disk(m) == (pass == 1), "pass %d", pass);
		MUST_UINT_EQ(pfs_map_count(m), N);
		s = (struct sum){ 0 };
		MUST_INT_EQ(pfs_map_iterate(m, sum_fn, &s), 0);
		MUST_UINT_EQ(s.n, N);
		MUST_UINT_EQ(s.xsum, xsum);
		for (int i = 0; i < N; i++) {
			MUST_INT_EQ(pfs_map_get(m, keys[i], &v), 0);
			MUST_UINT_EQ(v, (uint32_t)(keys[i] * 7));
			MUST_INT_EQ(pfs_map_del(m, keys[i]), 0);
		}
		MUST_UINT_EQ(pfs_map_count(m), 0);
		MUST_INT_EQ(pfs_map_get(m, keys[0], &v), -ENOENT);
		pfs_map_env_destroy(e);
	}
	free(keys);
}
END_TEST

int main(void)
{
	const char *tmp = getenv("TMPDIR");
	Suite *s = suite_create("map");
	TCase *tc = tcase_create("map");
	SRunner *sr;
	int failed;

	snprintf(scratch, sizeof(scratch), "%s/test_map.XXXXXX",
		 tmp && *tmp ? tmp : "/var/tmp");
	if (!mkdtemp(scratch)) {
		perror(scratch);
		return 99;
	}
	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, sizes_and_names);
	tcase_add_test(tc, scratch_dir_errors);
	tcase_add_test(tc, iterate_order);
	tcase_add_test(tc, iterate_moves);
	tcase_add_test(tc, scratch_full);
	tcase_add_test(tc, model_memory);
	tcase_add_test(tc, model_move);
	tcase_add_test(tc, model_several_maps);
	tcase_add_test(tc, scale_200k);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	nftw(scratch, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	return failed ? 1 : 0;
}
