/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fuzz target: the checker on a mutated image, as fsck -f -y then fsck -f
 * -n. After a -y run that fixed everything it found, the -n run must find
 * nothing and must not fail: abort() otherwise, as that is a checker bug
 * (a repair that does not hold, or one that breaks something else).
 *
 * The checker opens the device once per pass and the store closes what it
 * is given, so the image must outlive the devices: it lives in a memfd,
 * and each open_dev opens it afresh (sync backend, buffered) through
 * /proc/self/fd. Repairs written by one open are seen by the next.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "posfs/check.h"
#include "fuzz.h"

static int image_fd = -1;
static char image_path[64];

static int open_dev(void *arg, bool readonly, struct pfs_dev **devp)
{
	struct pfs_dev_opts o = {
		.backend = PFS_DEV_SYNC,
		.readonly = readonly,
		.buffered = true,
	};

	(void)arg;
	return pfs_dev_open(image_path, &o, devp);
}

static bool ask_yes(void *arg, const struct pfs_problem_desc *d, const char *msg)
{
	(void)arg;
	(void)d;
	(void)msg;
	return true;
}

static bool ask_no(void *arg, const struct pfs_problem_desc *d, const char *msg)
{
	(void)arg;
	if (getenv("PFS_FUZZ_VERBOSE"))
		fprintf(stderr, "second run: %04x %s: %s\n", d->code, d->name, msg);
	return false;
}

/* Put the input into the memfd: the device, zero-padded. */
static int load(const uint8_t *data, size_t size)
{
	uint64_t dsize = pfs_fuzz_image_size(size);
	size_t done = 0;

	if (image_fd < 0) {
		image_fd = memfd_create("posfs-fuzz", MFD_CLOEXEC);
		if (image_fd < 0)
			return -errno;
		snprintf(image_path, sizeof(image_path), "/proc/self/fd/%d", image_fd);
	}
	if (ftruncate(image_fd, 0) || ftruncate(image_fd, (off_t)dsize))
		return -errno;
	if (size > dsize)
		size = (size_t)dsize;
	while (done < size) {
		ssize_t n = pwrite(image_fd, data + done, size - done, (off_t)done);

		if (n <= 0)
			return n ? -errno : -EIO;
		done += (size_t)n;
	}
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct pfs_check_ops yes = { .open_dev = open_dev, .ask = ask_yes };
	struct pfs_check_ops no = { .open_dev = open_dev, .ask = ask_no };
	struct pfs_check_opts fix = { .readonly = false, .force = true };
	struct pfs_check_opts look = { .readonly = true, .force = true };
	struct pfs_check_result r1, r2;
	int ret;

	if (size < POSFS_HEAD_SIZE || size > PFS_FUZZ_IMAGE_MAX)
		return 0;
	if (load(data, size))
		abort();
	ret = pfs_check_run(&fix, &yes, &r1);
	if (getenv("PFS_FUZZ_VERBOSE"))
		fprintf(stderr, "fsck -y: %d, found %llu, fixed %llu, replayed %llu\n", ret,
			(unsigned long long)r1.found, (unsigned long long)r1.fixed,
			(unsigned long long)r1.replayed);
	if (ret || r1.left)
		return 0;
	ret = pfs_check_run(&look, &no, &r2);
	if (ret || r2.found) {
		fprintf(stderr, "fsck -y found %llu, fixed %llu; then fsck -n: %d (%s), "
			"found %llu\n", (unsigned long long)r1.found,
			(unsigned long long)r1.fixed, ret, strerror(-ret),
			(unsigned long long)r2.found);
		abort();
	}
	return 0;
}

size_t LLVMFuzzerCustomMutator(uint8_t *data, size_t size, size_t max_size,
			       unsigned int seed)
{
	return pfs_fuzz_mutate_image(data, size, max_size, seed);
}
