/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * place-bench: where new directories should go (fs/place.c), measured.
 *
 * Each workload runs on a fresh file system in memory (N shards) once per
 * placement policy (orlov, the default; parent; spread, the old round-
 * robin), through the namespace layer, and prints per run:
 *
 *   commits      transactions committed
 *   cross        of those, cross-shard (through the global WAL, with two
 *                shards locked): what placement should keep rare
 *   objects      per shard, the largest over the mean (1.00: even)
 *   used         blocks used per shard, the largest over the mean
 *
 * Workloads (deterministic: a fixed seed):
 *   source   one top-level tree (260 directories, 12 files each), then a
 *            build in it: each object file written as a temporary and
 *            renamed into place, a quarter of them installed into a
 *            second top-level tree, 20 subtrees moved under other parents
 *   homes    8 top-level trees (84 directories each) with files, and each
 *            owner moving files between their own directories
 *   big      one top-level tree of 40,000 small files in 400 directories:
 *            past the point where one shard should hold it all
 *
 * usage: place-bench [-s SHARDS] [-m SIZE_MB] [-w WORKLOAD] [-p POLICY]
 * Not a test: it prints figures; the choice of rule in place.c rests on
 * them.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "posfs/disk.h"
#include "posfs/fs.h"
#include "posfs/io.h"
#include "posfs/store.h"

static const struct pfs_fs_cred cred = { .uid = 0, .gid = 0, .umask = 022,
					.setid = PFS_FS_SETID_KEEP };
static unsigned char data[64 << 10];
static uint64_t rng = 88172645463325252ull;

static uint64_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return rng;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "place-bench: %s: %s\n", what, strerror(-err));
	exit(1);
}

struct run {
	struct pfs_dev *dev;
	struct pfs_store *st;
	struct pfs_fs *fs;
};

static void run_open(struct run *r, uint64_t size, uint32_t shards, enum pfs_fs_placement p)
{
	struct pfs_mkfs_params mp = { .size = size, .block_size = 4096, .shard_count = shards,
				      .ncpu = shards };
	struct pfs_newfs_opts o = { .root_mode = 0755, .now = 1700000000 };
	struct pfs_store_opts so = { .ckpt_interval_ms = -1 };
	struct pfs_super sb = { 0 };
	int ret;

	ret = pfs_dev_open_mem(size, 512, &r->dev);
	if (ret)
		die("memory device", ret);
	ret = pfs_geo_compute(&mp, &sb, NULL);
	if (ret)
		die("geometry", ret);
	sb.feature_incompat |= POSFS_FEATURE_global_wal;
	sb.max_mount_count = UINT32_MAX;
	ret = pfs_newfs_write(r->dev, &sb, &o);
	if (ret)
		die("newfs", ret);
	ret = pfs_store_open_dev(r->dev, &so, &r->st);
	if (ret)
		die("store open", ret);
	ret = pfs_fs_open(r->st, &r->fs);
	if (ret)
		die("fs open", ret);
	pfs_fs_set_placement(r->fs, p);
}

static uint64_t mkdir_in(struct run *r, uint64_t dir, const char *name)
{
	struct pfs_fs_attr a;
	int ret = pfs_fs_mkdir(r->fs, dir, name, S_IFDIR | 0755, &cred, &a);

	if (ret)
		die("mkdir", ret);
	return a.ino;
}

static uint64_t file_in(struct run *r, uint64_t dir, const char *name, size_t len)
{
	struct pfs_fs_attr a;
	ssize_t n;
	int ret = pfs_fs_mknod(r->fs, dir, name, S_IFREG | 0644, 0, &cred, &a);

	if (ret)
		die("create", ret);
	if (len) {
		n = pfs_fs_write(r->fs, a.ino, 0, len, data, &cred);
		if (n < 0)
			die("write", (int)n);
	}
	return a.ino;
}

static void rename_to(struct run *r, uint64_t d1, const char *n1, uint64_t d2, const char *n2)
{
	int ret = pfs_fs_rename(r->fs, d1, n1, d2, n2, 0);

	if (ret)
		die("rename", ret);
}

/* A tree of fanout[0] x fanout[1] x ... directories under dir, files in
 * each; the directories made, in order, into out (returns the count). */
static size_t tree(struct run *r, uint64_t dir, const unsigned *fanout, unsigned depth,
		   unsigned files, size_t maxlen, uint64_t *out, size_t n)
{
	char name[32];

	for (unsigned f = 0; f < files; f++) {
		snprintf(name, sizeof(name), "f%u.c", f);
		file_in(r, dir, name, 1 + rnd() % maxlen);
	}
	if (!depth)
		return n;
	for (unsigned i = 0; i < fanout[0]; i++) {
		uint64_t d;

		snprintf(name, sizeof(name), "d%u", i);
		d = mkdir_in(r, dir, name);
		out[n++] = d;
		n = tree(r, d, fanout + 1, depth - 1, files, maxlen, out, n);
	}
	return n;
}

static void w_source(struct run *r)
{
	static const unsigned fan[] = { 8, 6, 4 };
	static uint64_t dirs[512];
	uint64_t top = mkdir_in(r, POSFS_ROOT_OID, "src");
	uint64_t inst = mkdir_in(r, POSFS_ROOT_OID, "install");
	size_t n = tree(r, top, fan, 3, 12, 32 << 10, dirs, 0);
	char a[32], b[32];

	for (size_t i = 0; i < n; i++) {
		for (unsigned f = 0; f < 12; f++) {
			snprintf(a, sizeof(a), ".f%u.o.tmp", f);
			snprintf(b, sizeof(b), "f%u.o", f);
			file_in(r, dirs[i], a, 1 + rnd() % (48 << 10));
			rename_to(r, dirs[i], a, dirs[i], b);
			if (f % 4 == 0) {
				snprintf(a, sizeof(a), "i%zu-%u.o", i, f);
				rename_to(r, dirs[i], b, inst, a);
			}
		}
	}
	/* subtrees moved: a level-2 directory under another level-1 one */
	for (unsigned k = 0; k < 20; k++) {
		uint64_t to = dirs[(rnd() % 8) * 31];	/* level-1 directories: every 31st */
		uint64_t from = dirs[(k % 8) * 31];

		snprintf(a, sizeof(a), "d%u", k % 6);
		snprintf(b, sizeof(b), "m%u", k);
		rename_to(r, from, a, to, b);	/* (k % 8, k % 6) never repeats */
	}
}

static void w_homes(struct run *r)
{
	static const unsigned fan[] = { 4, 4, 4 };
	static uint64_t dirs[8][128];
	size_t n[8];
	char a[32], b[32];

	for (unsigned u = 0; u < 8; u++) {
		snprintf(a, sizeof(a), "u%u", u);
		n[u] = tree(r, mkdir_in(r, POSFS_ROOT_OID, a), fan, 3, 6, 16 << 10, dirs[u], 0);
	}
	for (unsigned k = 0; k < 4000; k++) {
		unsigned u = k % 8;
		uint64_t d1 = dirs[u][rnd() % n[u]], d2 = dirs[u][rnd() % n[u]];

		snprintf(a, sizeof(a), "mv%u", k);
		file_in(r, d1, a, 1 + rnd() % 4096);
		snprintf(b, sizeof(b), "mv%u.moved", k);
		rename_to(r, d1, a, d2, b);
	}
}

static void w_big(struct run *r)
{
	uint64_t top = mkdir_in(r, POSFS_ROOT_OID, "big");
	char name[32];

	for (unsigned i = 0; i < 400; i++) {
		uint64_t d;

		snprintf(name, sizeof(name), "d%u", i);
		d = mkdir_in(r, top, name);
		for (unsigned f = 0; f < 100; f++) {
			snprintf(name, sizeof(name), "f%u", f);
			file_in(r, d, name, 1 + rnd() % 2048);
		}
	}
}

static void report(const char *w, const char *p, struct run *r, uint32_t shards)
{
	struct pfs_store_counters c;
	uint64_t omax = 0, osum = 0, umax = 0, usum = 0;

	pfs_store_counters(r->st, &c);
	for (uint32_t i = 0; i < shards; i++) {
		struct pfs_shard_load l;
		uint64_t used;

		if (pfs_store_shard_load(r->st, i, &l))
			continue;
		used = l.total_blocks - l.free_blocks;
		omax = l.objects > omax ? l.objects : omax;
		umax = used > umax ? used : umax;
		osum += l.objects;
		usum += used;
	}
	printf("%-8s %-7s commits %8lu  cross %6lu (%5.2f%%)  objects max/mean %.2f  "
	       "used max/mean %.2f\n",
	       w, p, (unsigned long)c.commits, (unsigned long)c.cross_shard,
	       c.commits ? 100.0 * (double)c.cross_shard / (double)c.commits : 0.0,
	       osum ? (double)omax * shards / (double)osum : 0.0,
	       usum ? (double)umax * shards / (double)usum : 0.0);
}

int main(int argc, char **argv)
{
	static const struct {
		const char *name;
		void (*fn)(struct run *);
	} work[] = { { "source", w_source }, { "homes", w_homes }, { "big", w_big } };
	static const struct {
		const char *name;
		enum pfs_fs_placement p;
	} pol[] = { { "orlov", PFS_FS_PLACE_ORLOV },
		    { "parent", PFS_FS_PLACE_PARENT },
		    { "spread", PFS_FS_PLACE_SPREAD } };
	const char *only_w = NULL, *only_p = NULL;
	uint32_t shards = 4;
	uint64_t size = 2048ull << 20;
	int opt;

	while ((opt = getopt(argc, argv, "s:m:w:p:")) != -1) {
		if (opt == 'w')
			only_w = optarg;
		else if (opt == 'p')
			only_p = optarg;
		else if (opt == 's')
			shards = (uint32_t)strtoul(optarg, NULL, 10);
		else if (opt == 'm')
			size = strtoull(optarg, NULL, 10) << 20;
		else {
			fprintf(stderr, "usage: place-bench [-s SHARDS] [-m SIZE_MB] [-w WORKLOAD] "
					"[-p POLICY]\n");
			return 2;
		}
	}
	memset(data, 0x5a, sizeof(data));
	for (size_t w = 0; w < sizeof(work) / sizeof(work[0]); w++) {
		for (size_t p = 0; p < sizeof(pol) / sizeof(pol[0]); p++) {
			struct run r;
			int ret;

			if ((only_w && strcmp(only_w, work[w].name)) ||
			    (only_p && strcmp(only_p, pol[p].name)))
				continue;

			rng = 88172645463325252ull;
			run_open(&r, size, shards, pol[p].p);
			work[w].fn(&r);
			report(work[w].name, pol[p].name, &r, shards);
			pfs_fs_close(r.fs);
			ret = pfs_store_close(r.st);
			if (ret)
				die("store close", ret);
		}
	}
	return 0;
}
