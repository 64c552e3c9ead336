/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * mount.posfs (and mount.fuse.posfs): the mount(8) helper. mount(8) runs
 *     /sbin/mount.posfs DEVICE DIR [-sfnv] [-o OPTS] [-t TYPE]
 * for `mount -t posfs` and fstab entries of type posfs (fuse.posfs for
 * mount.fuse.posfs). The helper drops the options that are mount(8)'s own
 * (rw, defaults, auto, noauto, user, users, nouser, owner, group, nofail,
 * _netdev, comment=, x-*), and execs the daemon of this very binary
 * (/proc/self/exe) in the background: `posfs -o OPTS DEVICE DIR`, whose
 * parent waits until the mount is up, so the exit status is the mount's.
 * -s (sloppy) also drops options the daemon does not know; -f (fake)
 * checks and prints the command without running it; -n is accepted
 * (there is no mtab to write); -v prints the command.
 *
 * `mount -o remount,ro DIR` (and remount,rw) runs the helper too, with
 * remount among the options, which then hold the mount's present ones
 * as well (mountinfo's, helper=, user_id=...). The kernel's FUSE tells
 * the daemon nothing of a remount, so the helper does both halves, in
 * the order that leaves nothing half done when one fails:
 *   ro: mount(2) MS_REMOUNT|MS_RDONLY first (the kernel syncs its cached
 *       pages and refuses while a file is open for writing, EBUSY, as on
 *       ext4), then POSFS_IOC_REMOUNT on DIR: the daemon writes
 *       everything home and takes no more changes;
 *   rw: POSFS_IOC_REMOUNT first (refused when the daemon opened its
 *       device read-only, -o ro), then mount(2) MS_REMOUNT; should that
 *       fail, the daemon is made read-only again.
 * The other flags of the kernel's (nosuid, nodev, noexec, sync, dirsync,
 * the atime ones, lazytime, nosymfollow) go to mount(2) as given, and
 * the atime ones and nodiratime (or its absence) to the daemon too,
 * which keeps atime itself (the ioctl says how it reads relatime:
 * strictatime, which the kernel shows as relatime, stays; nodiratime
 * the daemon put in the kernel's flags, watch.c); the daemon's other
 * options cannot change on a remount and are passed over.
 *
 * DEVICE may be LABEL=x or UUID=x, found among the block devices as
 * blkid would (findfs.c), for the helper run by hand or by a program.
 * mount(8) itself resolves those two through libblkid, which knows no
 * posfs, and fails ("can't find LABEL=x") before it runs the helper; it
 * passes label=x and uuid=x on as they are, so those are the spellings
 * for `mount -t posfs` and fstab. A device mounted already is bound on
 * DIR by the daemon (bind.c).
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <unistd.h>

#include "posfs/io.h"
#include "posfs/ioctl.h"
#include "posfs.h"

static const char *const dropped[] = {
	"rw", "defaults", "auto", "noauto", "user", "users", "nouser", "owner", "group",
	"nofail", "_netdev", "loud", "silent",
};

/* What the daemon takes (see usage in main.c); for -s. */
static const char *const known[] = {
	"ro", "allow_other", "default_permissions", "writeback", "nowriteback",
	"cache_blocks", "onode_cache", "small_write", "threads", "readahead", "entry_timeout",
	"attr_timeout", "relatime", "noatime", "strictatime", "nodiratime", "diratime",
	"nosuid", "nodev", "noexec", "suid", "dev", "exec", "sync", "async", "dirsync",
	"lazytime", "nolazytime", "iversion", "noiversion", "mand", "nomand",
	"compress", "compress_level", "discard", "nodiscard", "uring", "nouring",
	"uring_threads", "poll",
};

#define ATIME_FLAGS	(MS_NOATIME | MS_RELATIME | MS_STRICTATIME)

/* The kernel's flags a remount sets (set) or clears (!set). */
static const struct {
	const char *name;
	unsigned long flag;
	bool set;
} remount_flags[] = {
	{ "nosuid", MS_NOSUID, true }, { "suid", MS_NOSUID, false },
	{ "nodev", MS_NODEV, true }, { "dev", MS_NODEV, false },
	{ "noexec", MS_NOEXEC, true }, { "exec", MS_NOEXEC, false },
	{ "sync", MS_SYNCHRONOUS, true }, { "async", MS_SYNCHRONOUS, false },
	{ "dirsync", MS_DIRSYNC, true },
	{ "noatime", MS_NOATIME, true }, { "atime", MS_NOATIME, false },
	{ "nodiratime", MS_NODIRATIME, true }, { "diratime", MS_NODIRATIME, false },
	{ "relatime", MS_RELATIME, true }, { "norelatime", MS_RELATIME, false },
	{ "strictatime", MS_STRICTATIME, true }, { "nostrictatime", MS_STRICTATIME, false },
	{ "lazytime", MS_LAZYTIME, true }, { "nolazytime", MS_LAZYTIME, false },
	{ "nosymfollow", MS_NOSYMFOLLOW, true }, { "symfollow", MS_NOSYMFOLLOW, false },
};

static bool in_list(const char *opt, const char *const *list, size_t n)
{
	size_t klen = strcspn(opt, "=");

	for (size_t i = 0; i < n; i++)
		if (strlen(list[i]) == klen && !strncmp(opt, list[i], klen))
			return true;
	return false;
}

static void helper_usage(void)
{
	fprintf(stderr,
		"Usage: mount.posfs DEVICE DIR [-sfnv] [-o OPTS]\n"
		"The mount(8) helper for posfs: mount -t posfs DEVICE DIR -o OPTS\n"
		"runs it. OPTS are those of posfs(8); mount(8)'s own (rw, defaults,\n"
		"auto, noauto, user, users, nouser, owner, group, nofail, _netdev,\n"
		"comment=..., x-...) are dropped. With remount (mount -o remount,ro\n"
		"DIR, remount,rw) the posfs mount at DIR is made read-only or\n"
		"writable again, and the kernel's flags changed as OPTS say.\n"
		"DEVICE may be LABEL=x or UUID=x; mount(8) resolves those itself and\n"
		"fails, so through it write label=x or uuid=x.\n"
		"  -o OPTS  mount options\n"
		"  -s       sloppy: drop options posfs does not know\n"
		"  -f       fake: print the command, do not mount\n"
		"  -n       do not write /etc/mtab (accepted; there is none)\n"
		"  -v       verbose: print the command\n"
		"  -h       print this help and exit\n");
}

/* Append the options of list that the daemon should see to *out. */
static int filter_opts(const char *list, bool sloppy, char **out)
{
	char *copy = strdup(list), *save = NULL, *tok;
	int ret = 0;

	if (!copy)
		return -ENOMEM;
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (!*tok || in_list(tok, dropped, sizeof(dropped) / sizeof(dropped[0])) ||
		    !strncmp(tok, "x-", 2) || !strncmp(tok, "comment=", 8))
			continue;
		if (sloppy && !in_list(tok, known, sizeof(known) / sizeof(known[0])))
			continue;
		if (fuse_opt_add_opt(out, tok)) {
			ret = -ENOMEM;
			break;
		}
	}
	free(copy);
	return ret;
}

/* Is remount among the options? */
static bool is_remount(const char *list)
{
	size_t n = strlen("remount");

	for (const char *p = list; (p = strstr(p, "remount")); p += n)
		if ((p == list || p[-1] == ',') && (!p[n] || p[n] == ','))
			return true;
	return false;
}

/* The mount point of a posfs mount at dir (the top one): 1 found. */
struct posfs_at {
	const char *dir;
	bool found;
};

static int posfs_at(void *arg, const struct pfs_mount_entry *m)
{
	struct posfs_at *a = arg;

	if (!strcmp(m->mountpoint, a->dir))
		a->found = !strcmp(m->fstype, "fuse.posfs");
	return 0;
}

/* The daemon's half (POSFS_IOC_REMOUNT on the mount's root): 0 or -errno.
 * r carries the atime policy; its RDONLY flag is set from ro. */
static int daemon_remount(int fd, struct posfs_remount r, bool ro)
{
	r.flags = (r.flags & ~POSFS_REMOUNT_RDONLY) | (ro ? POSFS_REMOUNT_RDONLY : 0);
	return ioctl(fd, POSFS_IOC_REMOUNT, &r) ? -errno : 0;
}

/* mount -o remount,...: see the top of the file. */
static int remount(const char *dev, const char *dir, const char *list, bool fake,
		   bool verbose)
{
	char *copy = strdup(list), *save = NULL, *tok;
	char real[PATH_MAX];
	struct posfs_at at = { real, false };
	unsigned long flags = MS_REMOUNT;
	struct posfs_remount r = { 0 };
	bool ro = false;
	int fd = -1, ret = 1, err;

	if (!copy) {
		fprintf(stderr, "mount.posfs: out of memory\n");
		return 1;
	}
	for (tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		if (!strcmp(tok, "ro") || !strcmp(tok, "rw")) {
			ro = tok[1] == 'o';
			continue;
		}
		/* the daemon's atime policy: the last one said wins */
		if (!strcmp(tok, "noatime") || !strcmp(tok, "strictatime") ||
		    !strcmp(tok, "relatime") || !strcmp(tok, "atime") ||
		    !strcmp(tok, "norelatime")) {
			r.flags |= POSFS_REMOUNT_ATIME;
			r.atime = !strcmp(tok, "noatime") ? POSFS_REMOUNT_NOATIME :
				  !strcmp(tok, "strictatime") ? POSFS_REMOUNT_STRICTATIME :
				  POSFS_REMOUNT_RELATIME;
		}
		/* mount(8) gives the mount's flags, drops diratime: the
		 * daemon's nodiratime is in them when it is still wanted */
		if (!strcmp(tok, "nodiratime") || !strcmp(tok, "diratime")) {
			r.flags &= ~(POSFS_REMOUNT_NODIRATIME | POSFS_REMOUNT_DIRATIME);
			r.flags |= tok[0] == 'n' ? POSFS_REMOUNT_NODIRATIME : 0;
		}
		for (size_t i = 0; i < sizeof(remount_flags) / sizeof(remount_flags[0]); i++) {
			if (strcmp(tok, remount_flags[i].name))
				continue;
			/* one atime rule at a time, the last one said */
			if (remount_flags[i].set && remount_flags[i].flag & ATIME_FLAGS)
				flags &= ~ATIME_FLAGS;
			if (remount_flags[i].set)
				flags |= remount_flags[i].flag;
			else
				flags &= ~remount_flags[i].flag;
		}
	}
	if (ro)
		flags |= MS_RDONLY;
	if (!(r.flags & POSFS_REMOUNT_NODIRATIME))
		r.flags |= POSFS_REMOUNT_DIRATIME;
	if (!realpath(dir, real)) {
		fprintf(stderr, "mount.posfs: cannot remount %s: %s\n", dir, strerror(errno));
		goto out;
	}
	err = pfs_mountinfo_each(posfs_at, &at);
	if (err || !at.found) {
		fprintf(stderr, "mount.posfs: cannot remount %s: %s\n", real,
			err ? strerror(-err) : "not a posfs mount");
		goto out;
	}
	if (verbose || fake)
		printf("remount %s %s\n", real, ro ? "read-only" : "read-write");
	if (fake) {
		ret = 0;
		goto out;
	}
	fd = open(real, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "mount.posfs: cannot remount %s: %s\n", real, strerror(errno));
		goto out;
	}
	if (ro) {
		if (mount(dev, real, NULL, flags, NULL)) {
			fprintf(stderr, "mount.posfs: cannot remount %s read-only: %s\n", real,
				errno == EBUSY ? "busy: a file is open for writing (or "
				"was deleted while open)" : strerror(errno));
			goto out;
		}
		err = daemon_remount(fd, r, true);
		if (err) {
			fprintf(stderr, "mount.posfs: %s is read-only, but posfs could not "
				"write it home: %s (see the system log)\n", real, strerror(-err));
			goto out;
		}
	} else {
		err = daemon_remount(fd, r, false);
		if (err == -EROFS) {
			fprintf(stderr, "mount.posfs: cannot remount %s read-write: %s was "
				"mounted with -o ro, which opens the device read-only: unmount "
				"it and mount it read-write\n", real, dev);
			goto out;
		}
		if (err) {
			fprintf(stderr, "mount.posfs: cannot remount %s read-write: %s\n", real,
				strerror(-err));
			goto out;
		}
		if (mount(dev, real, NULL, flags, NULL)) {
			fprintf(stderr, "mount.posfs: cannot remount %s read-write: %s\n", real,
				strerror(errno));
			(void)daemon_remount(fd, (struct posfs_remount){ 0 }, true);
			goto out;
		}
	}
	ret = 0;
out:
	if (fd >= 0)
		close(fd);
	free(copy);
	return ret;
}

int pfs_mount_helper(int argc, char **argv)
{
	const char *pos[2] = { NULL, NULL };
	bool sloppy = false, fake = false, verbose = false;
	char *opts = NULL, *raw = NULL;
	char *nargv[8];
	char found[PATH_MAX] = "";
	int npos = 0, n = 0, ret = 1;

	/* mount(8) puts the options after the operands: no getopt permutation
	 * games, scan by hand. */
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (a[0] != '-' || !a[1]) {
			if (npos == 2) {
				helper_usage();
				goto out;
			}
			pos[npos++] = a;
			continue;
		}
		if (!strcmp(a, "-o") || !strcmp(a, "-t")) {
			if (i + 1 >= argc) {
				helper_usage();
				goto out;
			}
			if (a[1] == 'o' && fuse_opt_add_opt(&raw, argv[i + 1]))
				goto out;
			i++;
			continue;
		}
		for (const char *f = a + 1; *f; f++) {
			switch (*f) {
			case 's': sloppy = true; break;
			case 'f': fake = true; break;
			case 'n': break;
			case 'v': verbose = true; break;
			case 'h':
				helper_usage();
				ret = 0;
				goto out;
			default:
				fprintf(stderr, "mount.posfs: unknown option -%c\n", *f);
				helper_usage();
				goto out;
			}
		}
	}
	if (npos != 2) {
		helper_usage();
		goto out;
	}
	if (raw && is_remount(raw)) {
		ret = remount(pos[0], pos[1], raw, fake, verbose);
		goto out;
	}
	if (pfs_find_fs_msg("mount.posfs", pos[0], found, sizeof(found)) < 0)
		goto out;
	if (found[0])
		pos[0] = found;
	if (raw && filter_opts(raw, sloppy, &opts)) {
		fprintf(stderr, "mount.posfs: out of memory\n");
		goto out;
	}
	nargv[n++] = "posfs";
	if (opts) {
		nargv[n++] = "-o";
		nargv[n++] = opts;
	}
	nargv[n++] = (char *)pos[0];
	nargv[n++] = (char *)pos[1];
	nargv[n] = NULL;
	if (verbose || fake) {
		for (int i = 0; i < n; i++)
			printf("%s%s", i ? " " : "", nargv[i]);
		printf("\n");
		fflush(stdout);
	}
	if (fake) {
		ret = 0;
		goto out;
	}
	execv("/proc/self/exe", nargv);
	fprintf(stderr, "mount.posfs: cannot run the posfs daemon: %s\n", strerror(errno));
out:
	free(raw);
	free(opts);
	return ret;
}
