/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * store-bench: the object store's own figures, on an image file opened
 * with O_DIRECT (io_uring backend where the kernel has it):
 *
 *   durable 4 KiB writes   transactions/s and CPU us per transaction, with
 *                          1 and N threads (group commit shares flushes)
 *   creates                objects created per second (not durable each)
 *   omap                   inserts and lookups per second, K keys in one
 *                          object (1,000,000 by default)
 *   sequential 1 MiB       writes (out of place), MB/s, then a sync
 *   random 4 KiB reads     of that file, reads/s and CPU us per read (the
 *                          extent lookup, its checks, the checksum check
 *                          and the device read)
 *   stats                  of the created objects, stats/s and CPU us each
 *
 * Under each writing figure, what the store counted meanwhile
 * (pfs_store_counters): commits and cross-shard ones, WAL records,
 * checkpoints and their time, and the waits of transactions for a shard's
 * lock or for a checkpoint to end.
 *
 * usage: store-bench [-q] [-t THREADS] [-k KEYS] [-s SIZE_MB] [-c CACHE_BLOCKS] IMAGE_PATH
 * CACHE_BLOCKS: the block cache per shard (default 65536: 256 MiB of 4 KiB
 * blocks, enough for the omap of 1,000,000 keys; a smaller cache measures
 * the device instead).
 * IMAGE_PATH is created (and removed afterwards) on a disk-backed file
 * system. Prints one line per figure and a JSON object at the end. Not a
 * test: figures vary with the machine; compare runs on one machine.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "posfs/disk.h"
#include "posfs/io.h"
#include "posfs/store.h"

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static double cpu_now(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

static void die(const char *what, int err)
{
	fprintf(stderr, "store-bench: %s: %s\n", what, strerror(-err));
	exit(1);
}

static int mkfs_image(const char *path, uint64_t size)
{
	struct pfs_mkfs_params p = { .size = size, .ncpu = (unsigned)sysconf(_SC_NPROCESSORS_ONLN) };
	struct pfs_newfs_opts o = { .root_mode = 0755, .now = time(NULL) };
	struct pfs_dev_opts d = { 0 };
	struct pfs_super sb = { 0 };
	struct pfs_dev *dev;
	FILE *f = fopen(path, "w");
	int ret;

	if (!f)
		return -errno;
	/*
	 * Write the whole image once, so that the host file system has
	 * allocated every block: what is measured is then posfs and the
	 * device, not block allocation in the file system under the image.
	 */
	{
		static char zeros[1 << 20];

		for (uint64_t off = 0; off < size; off += sizeof(zeros))
			if (fwrite(zeros, sizeof(zeros), 1, f) != 1) {
				fclose(f);
				return -EIO;
			}
	}
	if (fflush(f) || fsync(fileno(f))) {
		fclose(f);
		return -errno;
	}
	fclose(f);
	ret = pfs_dev_open(path, &d, &dev);
	if (ret)
		return ret;
	ret = pfs_geo_compute(&p, &sb, NULL);
	for (int i = 0; i < 16; i++)
		sb.uuid[i] = (uint8_t)rand();
	sb.feature_incompat = POSFS_FEATURE_global_wal;
	sb.state = POSFS_STATE_CLEAN;
	sb.errors = 1;
	sb.max_mount_count = UINT32_MAX;
	if (!ret)
		ret = pfs_newfs_write(dev, &sb, &o);
	pfs_dev_close(dev);
	return ret;
}

struct worker {
	struct pfs_store *st;
	uint64_t oid;
	int n;
	int err;
};

static void *durable_writer(void *p)
{
	struct worker *w = p;
	char buf[4096];
	struct pfs_txn t;

	memset(buf, 'x', sizeof(buf));
	pfs_txn_init(&t);
	for (int i = 0; i < w->n && !w->err; i++) {
		pfs_txn_reset(&t);
		pfs_txn_write(&t, w->oid, (uint64_t)(i % 256) * 4096, 4096, buf);
		w->err = pfs_store_submit(w->st, &t, PFS_SUBMIT_DURABLE, NULL);
	}
	pfs_txn_fini(&t);
	return NULL;
}

static uint64_t new_object(struct pfs_store *st, uint32_t shard)
{
	struct pfs_attr a = { .mode = S_IFREG | 0644, .nlink = 1 };
	struct pfs_txn t;
	uint64_t oid;
	int ret;

	ret = pfs_store_oid_alloc(st, shard, &oid);
	if (ret)
		die("oid", ret);
	pfs_txn_init(&t);
	pfs_txn_create(&t, oid, &a);
	ret = pfs_store_submit(st, &t, 0, NULL);
	pfs_txn_fini(&t);
	if (ret)
		die("create", ret);
	return oid;
}

/* What the store counted since the last call (or open), on one line. */
static void counters(struct pfs_store *st, const char *what)
{
	static struct pfs_store_counters last;
	struct pfs_store_counters c;

	pfs_store_counters(st, &c);
	printf("  %-22s %lu commits (%lu cross-shard), %lu records, %lu checkpoints "
	       "(%.1f ms), lock waits %lu (%.1f ms), checkpoint waits %lu (%.1f ms)\n", what,
	       (unsigned long)(c.commits - last.commits),
	       (unsigned long)(c.cross_shard - last.cross_shard),
	       (unsigned long)(c.groups - last.groups),
	       (unsigned long)(c.checkpoints - last.checkpoints), (double)(c.ckpt_ns - last.ckpt_ns) / 1e6,
	       (unsigned long)(c.lock_waits - last.lock_waits),
	       (double)(c.lock_wait_ns - last.lock_wait_ns) / 1e6,
	       (unsigned long)(c.ckpt_waits - last.ckpt_waits),
	       (double)(c.ckpt_wait_ns - last.ckpt_wait_ns) / 1e6);
	last = c;
}

static double durable_writes(struct pfs_store *st, int threads, int per, double *cpu_us)
{
	struct worker w[64];
	pthread_t th[64];
	double t0, c0, dt;

	for (int i = 0; i < threads; i++)
		w[i] = (struct worker){ st, new_object(st, (uint32_t)i % pfs_store_super(st)->shard_count),
					per, 0 };
	pfs_store_sync(st);
	t0 = now();
	c0 = cpu_now();
	for (int i = 0; i < threads; i++)
		pthread_create(&th[i], NULL, durable_writer, &w[i]);
	for (int i = 0; i < threads; i++) {
		pthread_join(th[i], NULL);
		if (w[i].err)
			die("durable write", w[i].err);
	}
	dt = now() - t0;
	*cpu_us = (cpu_now() - c0) / (threads * per) * 1e6;
	return threads * per / dt;
}

int main(int argc, char **argv)
{
	int threads = 4, quick = 0, opt, ret;
	long keys = 1000000, size_mb = 512;
	struct pfs_store_opts so = { 0 };
	struct pfs_store *st;
	struct pfs_txn t;
	double r1, c1, rn, cn, creates, ins, look, seq, rd, rdc, sta, stac, t0, c0;
	const char *path;
	uint64_t oid, first_create = 0;
	int ncreates;
	char *big;

	so.cache_blocks = 65536;
	while ((opt = getopt(argc, argv, "qt:k:s:c:")) != -1) {
		switch (opt) {
		case 'c': so.cache_blocks = (uint32_t)atol(optarg); break;
		case 'q': quick = 1; break;
		case 't': threads = atoi(optarg); break;
		case 'k': keys = atol(optarg); break;
		case 's': size_mb = atol(optarg); break;
		default:
			fprintf(stderr, "usage: store-bench [-q] [-t THREADS] [-k KEYS] [-s SIZE_MB] "
				"[-c CACHE_BLOCKS] IMAGE\n");
			return 2;
		}
	}
	if (optind != argc - 1 || threads < 1 || threads > 64) {
		fprintf(stderr, "usage: store-bench [-q] [-t THREADS] [-k KEYS] [-s SIZE_MB] IMAGE\n");
		return 2;
	}
	if (quick) {
		keys = keys > 100000 ? 100000 : keys;
		size_mb = size_mb > 128 ? 128 : size_mb;
	}
	path = argv[optind];
	ret = mkfs_image(path, quick ? 1ull << 30 : 4ull << 30);
	if (ret)
		die("mkfs", ret);
	ret = pfs_store_open(path, &so, &st);
	if (ret)
		die("open", ret);

	r1 = durable_writes(st, 1, quick ? 500 : 2000, &c1);
	printf("durable_4k_1thread      %10.0f tx/s   %8.1f cpu-us/tx\n", r1, c1);
	counters(st, "(open, 1 thread)");
	rn = durable_writes(st, threads, quick ? 500 : 2000, &cn);
	printf("durable_4k_%dthreads     %10.0f tx/s   %8.1f cpu-us/tx\n", threads, rn, cn);
	counters(st, "");

	pfs_txn_init(&t);
	{
		int n = quick ? 20000 : 100000;
		struct pfs_attr a = { .mode = S_IFREG | 0644, .nlink = 1 };

		ncreates = n;

		t0 = now();
		c0 = cpu_now();
		for (int i = 0; i < n; i++) {
			ret = pfs_store_oid_alloc(st, 0, &oid);
			pfs_txn_reset(&t);
			pfs_txn_create(&t, oid, &a);
			if (!ret)
				ret = pfs_store_submit(st, &t, 0, NULL);
			if (ret)
				die("create", ret);
			if (!i)
				first_create = oid;
		}
		creates = n / (now() - t0);
		printf("creates                 %10.0f /s     %8.1f cpu-us/op\n", creates,
		       (cpu_now() - c0) / n * 1e6);
		counters(st, "");
	}

	oid = new_object(st, 0);
	t0 = now();
	c0 = cpu_now();
	for (long i = 0; i < keys; i++) {
		char key[32], val[16];
		int kl = snprintf(key, sizeof(key), "d%011ld", (i * 7919) % keys);

		memset(val, 'v', sizeof(val));
		pfs_txn_reset(&t);
		pfs_txn_omap_set(&t, oid, key, (size_t)kl, val, sizeof(val));
		ret = pfs_store_submit(st, &t, 0, NULL);
		if (ret)
			die("omap set", ret);
	}
	ins = keys / (now() - t0);
	printf("omap_insert_%ldk        %10.0f /s     %8.1f cpu-us/op\n", keys / 1000, ins,
	       (cpu_now() - c0) / keys * 1e6);
	counters(st, "");
	t0 = now();
	c0 = cpu_now();
	for (long i = 0; i < keys; i++) {
		char key[32], val[16];
		int kl = snprintf(key, sizeof(key), "d%011ld", (i * 104729) % keys);

		ret = (int)pfs_store_omap_get(st, oid, key, (size_t)kl, val, sizeof(val));
		if (ret != 16)
			die("omap get", ret < 0 ? ret : -EIO);
	}
	look = keys / (now() - t0);
	printf("omap_lookup_%ldk        %10.0f /s     %8.1f cpu-us/op\n", keys / 1000, look,
	       (cpu_now() - c0) / keys * 1e6);

	big = NULL;
	if (posix_memalign((void **)&big, 4096, 1 << 20))
		die("memory", -ENOMEM);
	memset(big, 'b', 1 << 20);
	oid = new_object(st, 0);
	pfs_store_sync(st);
	t0 = now();
	for (long i = 0; i < size_mb; i++) {
		pfs_txn_reset(&t);
		pfs_txn_write(&t, oid, (uint64_t)i << 20, 1 << 20, big);
		ret = pfs_store_submit(st, &t, 0, NULL);
		if (ret)
			die("1 MiB write", ret);
	}
	ret = pfs_store_sync(st);
	if (ret)
		die("sync", ret);
	seq = size_mb / (now() - t0);
	printf("seq_write_1M            %10.1f MB/s\n", seq * 1.048576);
	counters(st, "(and its sync)");

	{
		int n = quick ? 20000 : 100000;
		uint64_t x = 88172645463325252ull, blocks = (uint64_t)size_mb << 8;

		t0 = now();
		c0 = cpu_now();
		for (int i = 0; i < n; i++) {
			ssize_t got;

			x ^= x << 13;
			x ^= x >> 7;
			x ^= x << 17;
			got = pfs_store_read(st, oid, (x % blocks) * 4096, 4096, big);
			if (got != 4096)
				die("4 KiB read", got < 0 ? (int)got : -EIO);
		}
		rd = n / (now() - t0);
		rdc = (cpu_now() - c0) / n * 1e6;
		printf("read_4k_random          %10.0f /s     %8.1f cpu-us/op\n", rd, rdc);
	}
	{
		struct pfs_onode o;

		t0 = now();
		c0 = cpu_now();
		for (int i = 0; i < ncreates; i++) {
			ret = pfs_store_stat(st, first_create + (uint64_t)i, &o);
			if (ret)
				die("stat", ret);
		}
		sta = ncreates / (now() - t0);
		stac = (cpu_now() - c0) / ncreates * 1e6;
		printf("stat                    %10.0f /s     %8.1f cpu-us/op\n", sta, stac);
	}
	pfs_txn_fini(&t);
	free(big);
	ret = pfs_store_close(st);
	unlink(path);
	if (ret)
		die("close", ret);
	printf("{\"durable_4k_1t\": %.0f, \"durable_4k_1t_cpu_us\": %.1f, \"durable_4k_%dt\": %.0f, "
	       "\"durable_4k_nt_cpu_us\": %.1f, \"creates\": %.0f, \"omap_insert\": %.0f, "
	       "\"omap_lookup\": %.0f, \"seq_write_mbs\": %.1f, \"read_4k\": %.0f, "
	       "\"read_4k_cpu_us\": %.2f, \"stat\": %.0f, \"stat_cpu_us\": %.2f}\n", r1, c1, threads,
	       rn, cn, creates, ins, look, seq * 1.048576, rd, rdc, sta, stac);
	return 0;
}
