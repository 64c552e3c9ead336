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
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "posfs.h"

static const char *const dropped[] = {
	"rw", "defaults", "auto", "noauto", "user", "users", "nouser", "owner", "group",
	"nofail", "_netdev", "loud", "silent",
};

/* What the daemon takes (see usage in main.c); for -s. */
static const char *const known[] = {
	"ro", "allow_other", "default_permissions", "writeback", "nowriteback",
	"cache_blocks", "onode_cache", "small_write", "threads", "readahead", "entry_timeout",
	"attr_timeout", "relatime", "noatime", "strictatime", "nosuid", "nodev",
	"noexec", "suid", "dev", "exec", "sync", "async", "dirsync",
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
		"comment=..., x-...) are dropped.\n"
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

int pfs_mount_helper(int argc, char **argv)
{
	const char *pos[2] = { NULL, NULL };
	bool sloppy = false, fake = false, verbose = false;
	char *opts = NULL, *raw = NULL;
	char *nargv[8];
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
