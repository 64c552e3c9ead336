/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * lat-bench: the latency of single requests on a mounted file system, one
 * at a time, and the CPU its daemon spends on each: stat(2) of one file
 * (mount with attr_timeout=0 so that each reaches the daemon) and 4 KiB
 * O_DIRECT preads at random offsets of a 64 MiB file. Prints, per
 * workload, one line: ops, p50, p99 and mean in microseconds, and the
 * daemon's CPU per op (the sum over its threads' schedstat, in ns); then
 * creates (open O_CREAT and close) and unlinks of files in one directory.
 *
 *   lat-bench [-n OPS] DIR DAEMON_PID
 *
 * A figure, never a test (tests/bench/lat.sh runs it over each transport).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define FILE_SIZE	(64u << 20)
#define IO_SIZE		4096u

static uint64_t now_ns(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (uint64_t)t.tv_sec * 1000000000u + (uint64_t)t.tv_nsec;
}

/* The CPU time of every thread of pid, in ns (schedstat's first field). */
static uint64_t daemon_cpu_ns(int pid)
{
	char path[64];
	struct dirent *de;
	uint64_t sum = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/task", pid);
	d = opendir(path);
	if (!d)
		return 0;
	while ((de = readdir(d))) {
		char p[300];
		unsigned long long v;
		FILE *f;

		if (de->d_name[0] == '.')
			continue;
		snprintf(p, sizeof(p), "/proc/%d/task/%s/schedstat", pid, de->d_name);
		f = fopen(p, "r");
		if (!f)
			continue;
		if (fscanf(f, "%llu", &v) == 1)
			sum += v;
		fclose(f);
	}
	closedir(d);
	return sum;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static void report(const char *name, uint64_t *lat, unsigned n, uint64_t cpu)
{
	uint64_t sum = 0;

	for (unsigned i = 0; i < n; i++)
		sum += lat[i];
	qsort(lat, n, sizeof(*lat), cmp_u64);
	printf("%-14s ops %u p50_us %.1f p99_us %.1f mean_us %.1f daemon_cpu_us %.1f\n", name, n,
	       (double)lat[n / 2] / 1e3, (double)lat[(uint64_t)n * 99 / 100] / 1e3,
	       (double)sum / n / 1e3, (double)cpu / n / 1e3);
}

int main(int argc, char **argv)
{
	unsigned n = 20000;
	char path[4096];
	uint64_t *lat, c0, t;
	void *buf;
	int c, pid, fd;
	struct stat st;

	while ((c = getopt(argc, argv, "n:")) != -1) {
		if (c != 'n' || !(n = (unsigned)strtoul(optarg, NULL, 10))) {
			fprintf(stderr, "usage: lat-bench [-n OPS] DIR DAEMON_PID\n");
			return 2;
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr, "usage: lat-bench [-n OPS] DIR DAEMON_PID\n");
		return 2;
	}
	pid = atoi(argv[optind + 1]);
	lat = calloc(n, sizeof(*lat));
	if (!lat || posix_memalign(&buf, 4096, FILE_SIZE < (1u << 20) ? FILE_SIZE : (1u << 20)))
		return 1;
	memset(buf, 0x5a, 1u << 20);
	snprintf(path, sizeof(path), "%s/lat-bench.data", argv[optind]);
	fd = open(path, O_CREAT | O_TRUNC | O_WRONLY, 0644);
	if (fd < 0) {
		fprintf(stderr, "lat-bench: %s: %s\n", path, strerror(errno));
		return 1;
	}
	for (unsigned off = 0; off < FILE_SIZE; off += 1u << 20) {
		if (pwrite(fd, buf, 1u << 20, off) != 1u << 20) {
			fprintf(stderr, "lat-bench: writing %s: %s\n", path, strerror(errno));
			return 1;
		}
	}
	fsync(fd);
	close(fd);

	/* stat */
	for (unsigned i = 0; i < 200; i++)
		stat(path, &st);
	c0 = daemon_cpu_ns(pid);
	for (unsigned i = 0; i < n; i++) {
		t = now_ns();
		if (stat(path, &st)) {
			fprintf(stderr, "lat-bench: stat: %s\n", strerror(errno));
			return 1;
		}
		lat[i] = now_ns() - t;
	}
	report("stat", lat, n, daemon_cpu_ns(pid) - c0);

	/* 4 KiB O_DIRECT reads */
	fd = open(path, O_RDONLY | O_DIRECT);
	if (fd < 0) {
		fprintf(stderr, "lat-bench: %s: %s\n", path, strerror(errno));
		return 1;
	}
	srandom(1);
	c0 = daemon_cpu_ns(pid);
	for (unsigned i = 0; i < n; i++) {
		off_t off = (off_t)((uint64_t)random() % (FILE_SIZE / IO_SIZE)) * IO_SIZE;

		t = now_ns();
		if (pread(fd, buf, IO_SIZE, off) != IO_SIZE) {
			fprintf(stderr, "lat-bench: pread: %s\n", strerror(errno));
			return 1;
		}
		lat[i] = now_ns() - t;
	}
	report("read_4k_direct", lat, n, daemon_cpu_ns(pid) - c0);
	close(fd);

	/* create (open O_CREAT, close) and unlink, in one directory */
	snprintf(path, sizeof(path), "%s/lat-bench.d", argv[optind]);
	if (mkdir(path, 0755)) {
		fprintf(stderr, "lat-bench: %s: %s\n", path, strerror(errno));
		return 1;
	}
	c0 = daemon_cpu_ns(pid);
	for (unsigned i = 0; i < n; i++) {
		char f[4200];

		snprintf(f, sizeof(f), "%s/f%u", path, i);
		t = now_ns();
		fd = open(f, O_CREAT | O_EXCL | O_WRONLY, 0644);
		if (fd < 0 || close(fd)) {
			fprintf(stderr, "lat-bench: create: %s\n", strerror(errno));
			return 1;
		}
		lat[i] = now_ns() - t;
	}
	report("create", lat, n, daemon_cpu_ns(pid) - c0);
	c0 = daemon_cpu_ns(pid);
	for (unsigned i = 0; i < n; i++) {
		char f[4200];

		snprintf(f, sizeof(f), "%s/f%u", path, i);
		t = now_ns();
		if (unlink(f)) {
			fprintf(stderr, "lat-bench: unlink: %s\n", strerror(errno));
			return 1;
		}
		lat[i] = now_ns() - t;
	}
	report("unlink", lat, n, daemon_cpu_ns(pid) - c0);
	rmdir(path);
	snprintf(path, sizeof(path), "%s/lat-bench.data", argv[optind]);
	unlink(path);
	free(lat);
	free(buf);
	return 0;
}
