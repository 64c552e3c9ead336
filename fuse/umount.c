/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * umount.posfs (and umount.fuse.posfs): the umount(8) helper. umount(8)
 * runs
 *     /sbin/umount.posfs DIR [-flnrv] [-N NS] -t fuse.posfs
 * for a mount whose line in libmount's utab says helper=posfs (a root
 * daemon writes one: utab.c), else, by the mount's type fuse.posfs,
 *     /sbin/umount.fuse.posfs DIR [-flnrv] [-N NS]
 * It can be run by hand too. umount(2) of a FUSE mount returns once the
 * mount is detached: the kernel sends FUSE_DESTROY only to fuseblk mounts,
 * and the daemon learns of the unmount when its reads of /dev/fuse fail;
 * its final checkpoint and the release of the device come after. The
 * helper makes umount return when the file system is finished, as a kernel
 * one's does:
 *   1. find DIR (or DEVICE) in /proc/self/mountinfo: the top mount there
 *      must be fuse.posfs, and its source is the device the daemon holds
 *      (the daemon mounts with fsname = the absolute path of DEVICE);
 *   2. open that device, without a claim, so the wait in step 5 looks at
 *      that very inode whatever happens to the path;
 *   3. unmount: umount2(DIR) as root (-f MNT_FORCE, -l MNT_DETACH; -r: a
 *      read-only remount when DIR is busy), fusermount3 -u [-z] for anyone
 *      else (a user's mount; fusermount3 checks that it is theirs);
 *   4. no wait after -l (the file system lives until its last user lets
 *      go), nor while another mount of the same file system is left in
 *      this namespace (a bind mount: the daemon goes on serving it);
 *   5. wait, bounded, until the device can be claimed the way posfs and
 *      fsck.posfs claim it (pfs_dev_open, exclusive). The daemon claims it
 *      before it mounts and lets go only when the store is closed
 *      (checkpointed and marked clean), so from then on a new mount or an
 *      fsck of the device finds it free and clean.
 * Why the claim rather than the daemon's pid: it is the very condition the
 * next mount and fsck test; it needs no pid file (none to go stale, and
 * none that a user's daemon could not write under /run); and it does not
 * wait on the reaping of a daemon that has already let go. The probe
 * holds the claim only for the moment of its open.
 *
 * Exit status as umount(8)'s: 0 done, 1 bad usage, 2 system error,
 * 32 the unmount failed or the daemon did not let go in time.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libmount/libmount.h>

#include "posfs/io.h"
#include "posfs.h"

#define UMOUNT_EX_USAGE		1
#define UMOUNT_EX_SYSERR	2
#define UMOUNT_EX_FAIL		32

#define WAIT_DEFAULT	120.0	/* seconds; POSFS_UMOUNT_TIMEOUT, 0 = no bound */
#define WAIT_SAY	5.0	/* say that we wait, once, after this long */

static const char *prog = "umount.posfs";

/*
 * The absolute path of path without resolving its last component when
 * that fails: the root of a FUSE mount whose daemon died answers ENOTCONN.
 */
static bool canonical(const char *path, char out[PATH_MAX])
{
	char dir[PATH_MAX], *copy, *base;
	const char *parent = ".";
	bool ok = false;

	if (realpath(path, out))
		return true;
	copy = strdup(path);
	if (!copy)
		return false;
	base = strrchr(copy, '/');
	if (base) {
		*base++ = 0;
		parent = *copy ? copy : "/";
	} else {
		base = copy;
	}
	if (*base && realpath(parent, dir))
		ok = snprintf(out, PATH_MAX, "%s/%s", strcmp(dir, "/") ? dir : "", base) <
		     PATH_MAX;
	free(copy);
	return ok;
}

/* Step 1: what the helper was given, as the exact target, a canonical
 * path to a target, or a source: the topmost such mount, or NULL. */
static struct libmnt_fs *find_mount(struct libmnt_table *tb, const char *arg)
{
	struct libmnt_fs *fs = mnt_table_find_target(tb, arg, MNT_ITER_BACKWARD);
	char path[PATH_MAX];

	if (fs || !canonical(arg, path))
		return fs;
	fs = mnt_table_find_target(tb, path, MNT_ITER_BACKWARD);
	return fs ? fs : mnt_table_find_srcpath(tb, path, MNT_ITER_BACKWARD);
}

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/*
 * Step 5: until the device held open at fd can be claimed. 0 released,
 * -ETIMEDOUT past timeout seconds (0: no bound), another -errno when the
 * probe cannot tell (it cannot open the device).
 */
static int wait_released(int fd, const char *device, double timeout, double *waited)
{
	const struct pfs_dev_opts o = {
		.backend = PFS_DEV_SYNC, .readonly = true, .exclusive = true, .buffered = true,
	};
	struct timespec nap = { 0, 5 * 1000 * 1000 };
	double start = now();
	char path[64];
	bool said = false;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	for (;;) {
		struct pfs_dev *dev;
		int ret = pfs_dev_open(path, &o, &dev);

		*waited = now() - start;
		if (!ret)
			pfs_dev_close(dev);
		if (ret != -EBUSY)
			return ret;
		if (timeout > 0 && *waited >= timeout)
			return -ETIMEDOUT;
		if (!said && *waited >= WAIT_SAY) {
			fprintf(stderr, "%s: waiting for the posfs daemon to finish with %s\n",
				prog, device);
			said = true;
		}
		nanosleep(&nap, NULL);
		if (nap.tv_nsec < 50 * 1000 * 1000)
			nap.tv_nsec *= 2;
	}
}

/* Step 3 for anyone but root: fusermount3 -u [-z] DIR. 0 or UMOUNT_EX_*. */
static int fusermount_u(const char *target, bool lazy, bool verbose)
{
	char *argv[5];
	int n = 0, status;
	pid_t pid;

	argv[n++] = "fusermount3";
	argv[n++] = "-u";
	if (lazy)
		argv[n++] = "-z";
	argv[n++] = (char *)target;
	argv[n] = NULL;
	if (verbose)
		printf("fusermount3 -u%s %s\n", lazy ? " -z" : "", target);
	fflush(stdout);
	pid = fork();
	if (pid < 0) {
		fprintf(stderr, "%s: fork: %s\n", prog, strerror(errno));
		return UMOUNT_EX_SYSERR;
	}
	if (pid == 0) {
		execvp(argv[0], argv);
		fprintf(stderr, "%s: cannot run fusermount3: %s\n", prog, strerror(errno));
		_exit(127);
	}
	if (waitpid(pid, &status, 0) < 0) {
		fprintf(stderr, "%s: waitpid: %s\n", prog, strerror(errno));
		return UMOUNT_EX_SYSERR;
	}
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : UMOUNT_EX_FAIL;
}

static void umount_usage(FILE *f)
{
	fprintf(f,
		"Usage: umount.posfs {DIR|DEVICE} [-flnrv] [-N NS] [-t TYPE]\n"
		"The umount(8) helper for posfs: umount DIR runs it. It unmounts DIR and\n"
		"returns once the posfs daemon has written its last checkpoint and let go\n"
		"of the device.\n"
		"  -f       force: end the daemon's pending requests first (root)\n"
		"  -l       lazy: detach DIR now, do not wait for the daemon\n"
		"  -n       do not write /etc/mtab (accepted; there is none)\n"
		"  -r       remount DIR read-only when it is busy (root)\n"
		"  -v       verbose: say how long the daemon took to let go of the device\n"
		"  -N NS    unmount in the mount namespace NS (a path to it)\n"
		"  -t TYPE  the type umount(8) saw (accepted)\n"
		"  -h       print this help and exit\n");
}

static double wait_bound(void)
{
	const char *s = getenv("POSFS_UMOUNT_TIMEOUT");
	char *end;
	double v;

	if (!s || !*s)
		return WAIT_DEFAULT;
	errno = 0;
	v = strtod(s, &end);
	if (errno || *end || !(v >= 0)) {
		fprintf(stderr, "%s: POSFS_UMOUNT_TIMEOUT=%s is not a number of seconds: "
			"waiting %.0f s at most\n", prog, s, WAIT_DEFAULT);
		return WAIT_DEFAULT;
	}
	return v;
}

/*
 * A mount of the same file system left after the unmount (a bind): the same
 * device numbers and the same source. The source too because the kernel
 * gives the numbers of a file system whose last mount is gone to the next
 * FUSE mount at once, another daemon's.
 */
static struct libmnt_fs *mount_left(struct libmnt_table *tb, dev_t devno, const char *source)
{
	struct libmnt_iter *it = mnt_new_iter(MNT_ITER_BACKWARD);
	struct libmnt_fs *fs, *found = NULL;

	while (it && !found && mnt_table_next_fs(tb, it, &fs) == 0) {
		const char *src = mnt_fs_get_srcpath(fs);

		if (mnt_fs_get_devno(fs) == devno && src && !strcmp(src, source))
			found = fs;
	}
	mnt_free_iter(it);
	return found;
}

int pfs_umount_helper(int argc, char **argv)
{
	bool force = false, lazy = false, rdonly = false, verbose = false;
	const char *arg = NULL, *ns = NULL, *target, *source, *type;
	struct libmnt_table *tb = NULL, *after = NULL;
	struct libmnt_fs *fs, *left;
	double waited = 0, bound = wait_bound();
	int devfd = -1, ret, status = UMOUNT_EX_USAGE;
	dev_t devno;

	/* umount(8) puts the options after the operand: scan by hand, as
	 * mount.posfs does. */
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (a[0] != '-' || !a[1]) {
			if (arg) {
				umount_usage(stderr);
				goto out;
			}
			arg = a;
			continue;
		}
		if (!strcmp(a, "-N") || !strcmp(a, "-t")) {
			if (i + 1 >= argc) {
				umount_usage(stderr);
				goto out;
			}
			if (a[1] == 'N')
				ns = argv[i + 1];
			i++;
			continue;
		}
		for (const char *f = a + 1; *f; f++) {
			switch (*f) {
			case 'f': force = true; break;
			case 'l': lazy = true; break;
			case 'n': break;
			case 'r': rdonly = true; break;
			case 'v': verbose = true; break;
			case 'h':
				umount_usage(stdout);
				status = 0;
				goto out;
			default:
				fprintf(stderr, "%s: unknown option -%c\n", prog, *f);
				umount_usage(stderr);
				goto out;
			}
		}
	}
	if (!arg) {
		umount_usage(stderr);
		goto out;
	}
	status = UMOUNT_EX_SYSERR;
	if (ns) {
		int fd = open(ns, O_RDONLY | O_CLOEXEC);

		if (fd < 0 || setns(fd, CLONE_NEWNS)) {
			fprintf(stderr, "%s: cannot enter the mount namespace %s: %s\n", prog, ns,
				strerror(errno));
			if (fd >= 0)
				close(fd);
			goto out;
		}
		close(fd);
	}

	/* 1, 2: the mount, and its device held open */
	tb = mnt_new_table_from_file("/proc/self/mountinfo");
	if (!tb) {
		fprintf(stderr, "%s: cannot read /proc/self/mountinfo: %s\n", prog,
			strerror(errno));
		goto out;
	}
	status = UMOUNT_EX_FAIL;
	fs = find_mount(tb, arg);
	if (!fs) {
		fprintf(stderr, "%s: %s: not mounted\n", prog, arg);
		goto out;
	}
	target = mnt_fs_get_target(fs);
	source = mnt_fs_get_srcpath(fs);
	type = mnt_fs_get_fstype(fs);
	devno = mnt_fs_get_devno(fs);
	if (!type || strcmp(type, "fuse.posfs") || !source) {
		fprintf(stderr, "%s: %s: not a posfs mount (type %s)\n", prog, target,
			type ? type : "unknown");
		goto out;
	}
	devfd = open(source, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
	if (devfd < 0)
		fprintf(stderr, "%s: cannot open %s (%s): not waiting for the daemon to let "
			"go of it\n", prog, source, strerror(errno));

	/* 3 */
	if (geteuid() != 0) {
		status = fusermount_u(target, lazy, verbose);
		if (status)
			goto out;
	} else if (umount2(target, (force ? MNT_FORCE : 0) | (lazy ? MNT_DETACH : 0))) {
		int err = errno;

		if (err == EBUSY && rdonly &&
		    !mount(NULL, target, NULL, MS_REMOUNT | MS_RDONLY, NULL)) {
			fprintf(stderr, "%s: %s busy - remounted read-only\n", prog, target);
			status = 0;
			goto out;
		}
		fprintf(stderr, "%s: %s: %s\n", prog, target,
			err == EBUSY ? "target is busy" : strerror(err));
		goto out;
	}
	status = 0;

	/* 4 */
	if (lazy || devfd < 0)
		goto out;
	after = devno ? mnt_new_table_from_file("/proc/self/mountinfo") : NULL;
	left = after ? mount_left(after, devno, source) : NULL;
	if (left) {
		fprintf(stderr, "%s: %s is still mounted on %s: the daemon goes on serving it\n",
			prog, source, mnt_fs_get_target(left));
		goto out;
	}

	/* 5 */
	ret = wait_released(devfd, source, bound, &waited);
	if (ret == -ETIMEDOUT) {
		fprintf(stderr, "%s: %s is unmounted, but after %.0f s the posfs daemon still "
			"holds %s (is it mounted in another mount namespace? the daemon's "
			"messages are in the system log)\n", prog, target, waited, source);
		status = UMOUNT_EX_FAIL;
	} else if (ret) {
		fprintf(stderr, "%s: cannot tell whether the daemon has let go of %s: %s\n",
			prog, source, strerror(-ret));
	} else if (verbose) {
		printf("%s: %s released by the daemon after %.2f s\n", prog, source, waited);
	}
out:
	if (devfd >= 0)
		close(devfd);
	mnt_unref_table(tb);
	mnt_unref_table(after);
	return status;
}
