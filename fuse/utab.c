/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * utab.c: the mount's line in /run/mount/utab, where libmount keeps what
 * the kernel's mount table does not. Once mounted, a daemon run by root
 * adds
 *     SRC=DEVICE TARGET=DIR ROOT=/ OPTS=helper=posfs
 * so that umount(8) runs /sbin/umount.posfs (umount.c) for DIR. Without
 * it, umount(8) run by root on an absolute path takes the type from
 * statfs(2), which says "fuse" for every FUSE mount, and runs no posfs
 * helper. The line has no mount ID: libmount then matches it to a mount by
 * source, target and root, so a line left behind by a killed daemon can
 * only ever apply to posfs on that device at that place again. umount(8)
 * removes the line after the helper; the daemon removes it too at its
 * unmount (fusermount3 -u, umount -i, a signal), before it lets go of the
 * device. Only root may write utab: for a user's daemon both are no-ops,
 * and a user's umount(8) reads the type fuse.posfs from mountinfo and runs
 * umount.fuse.posfs. Through libmount's own update API, which owns the
 * file's format and locking. Failures only cost the wait at umount: they
 * go to the log, never fail the mount.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>
#include <libmount/libmount.h>

#include "posfs.h"

#define UTAB_OPTS	"helper=posfs"

void pfs_utab_add(const char *device, const char *mountpoint)
{
	struct libmnt_update *upd = NULL;
	struct libmnt_fs *fs;
	int ret = -ENOMEM;

	if (geteuid() != 0)
		return;
	fs = mnt_new_fs();
	if (!fs)
		goto out;
	ret = mnt_fs_set_source(fs, device);
	if (!ret)
		ret = mnt_fs_set_target(fs, mountpoint);
	if (!ret)
		ret = mnt_fs_set_fstype(fs, "fuse.posfs");
	if (!ret)
		ret = mnt_fs_set_options(fs, UTAB_OPTS);
	upd = ret ? NULL : mnt_new_update();
	if (!ret && !upd)
		ret = -ENOMEM;
	if (!ret)
		ret = mnt_update_set_fs(upd, 0, NULL, fs);
	if (!ret)
		ret = mnt_update_table(upd, NULL);
out:
	if (ret)
		pfs_log(LOG_WARNING, "cannot note %s in the utab file (umount of %s will not "
			  "wait for posfs): %s", mountpoint, mountpoint,
			  strerror(ret < 0 ? -ret : EINVAL));
	mnt_free_update(upd);
	mnt_unref_fs(fs);
}

/* s as libmount writes it in utab: a space, tab, newline or backslash as
 * \ooo. NULL without memory. */
static char *mangle(const char *s)
{
	char *out = malloc(strlen(s) * 4 + 1), *w = out;

	if (!out)
		return NULL;
	for (; *s; s++) {
		if (strchr(" \t\n\\", *s))
			w += sprintf(w, "\\%03o", (unsigned char)*s);
		else
			*w++ = *s;
	}
	*w = 0;
	return out;
}

/* Where KEY= is in a utab line (fields split by spaces): its value. */
static bool utab_field(const char *line, const char *key, const char **val, size_t *len)
{
	size_t klen = strlen(key);

	for (const char *p = line; *p; p += strcspn(p, " "), p += strspn(p, " ")) {
		if (!strncmp(p, key, klen)) {
			*val = p + klen;
			*len = strcspn(*val, " \n");
			return true;
		}
	}
	return false;
}

static bool field_is(const char *line, const char *key, const char *want)
{
	const char *val;
	size_t len;

	return utab_field(line, key, &val, &len) && len == strlen(want) &&
	       !strncmp(val, want, len);
}

/*
 * Is the last utab line for mountpoint the one pfs_utab_add wrote?
 * (libmount 2.38 reads utab only as part of the mount table, so the file
 * is read here.)
 */
static bool utab_ours(const char *file, const char *device, const char *mountpoint)
{
	char *src = mangle(device), *tgt = mangle(mountpoint), *line = NULL;
	FILE *f = file && src && tgt ? fopen(file, "re") : NULL;
	size_t cap = 0;
	bool ours = false;

	while (f && getline(&line, &cap, f) > 0) {
		if (field_is(line, "TARGET=", tgt))
			ours = field_is(line, "SRC=", src) && field_is(line, "OPTS=", UTAB_OPTS);
	}
	if (f)
		fclose(f);
	free(line);
	free(src);
	free(tgt);
	return ours;
}

void pfs_utab_remove(const char *device, const char *mountpoint)
{
	struct libmnt_update *upd;
	int ret;

	if (geteuid() != 0)
		return;
	upd = mnt_new_update();
	if (!upd)
		return;
	/* umount(8) may have removed it, or another mount may have its own
	 * line for the place by now: only ours goes (checked and removed
	 * under two locks, which is close enough for a hint to umount) */
	ret = mnt_update_set_fs(upd, 0, mountpoint, NULL);
	if (!ret && utab_ours(mnt_update_get_filename(upd), device, mountpoint))
		ret = mnt_update_table(upd, NULL);
	if (ret < 0)
		pfs_log(LOG_WARNING, "cannot remove %s from the utab file: %s", mountpoint,
			  strerror(-ret));
	mnt_free_update(upd);
}
