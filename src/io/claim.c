/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * claim.c: one claim per device, whatever the path that reaches it.
 *
 * An image file and every loop device over it are one device. Claim
 * (pfs_dev_claim, from pfs_dev_open with exclusive set):
 *
 *   1. a regular file: flock(LOCK_EX | LOCK_NB) on the descriptor opened;
 *   2. a block device: O_EXCL, taken by the open. A loop device over a
 *      file also takes the flock of 1 on that file, through a descriptor
 *      of its own kept until pfs_dev_close. The file is the one that
 *      LOOP_GET_STATUS64 names by device and inode, reached by the path
 *      sysfs gives (/sys/dev/block/M:m/loop/backing_file) and checked
 *      against them; a file that cannot be reached so (deleted, outside
 *      this mount namespace, unreadable) is not locked, and 3 still holds;
 *   3. then no other loop device over the same file may be busy: each is
 *      opened O_EXCL and closed again, so a kernel mount of it or any
 *      program holding it exclusively refuses the claim. Tested, not held:
 *      held, it would put off the detach of that loop device (losetup -d)
 *      until the claim ends.
 *
 * Two posfs programs so meet at the file's flock whatever paths they took;
 * 3 covers the users of a loop device that take no flock.
 *
 * pfs_dev_in_use explains who holds a device, without claiming it. Which
 * loop devices are over which file is learnt once per call (loops_scan):
 * LOOP_GET_STATUS64 on each bound loop device, or, when it cannot be
 * opened, a stat of the path sysfs gives.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/loop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include "io/dev_internal.h"

/* What a path is: a block device, and the file under it (the path itself,
 * or the file a loop device is over). */
struct dev_id {
	bool blk;
	dev_t rdev;
	bool file;
	dev_t dev;
	ino_t ino;
	char back[PATH_MAX];	/* a loop device's file, as sysfs names it */
};

struct loop {
	char path[32];		/* /dev/loopN */
	dev_t rdev;
	bool file;		/* over a file we know: dev, ino */
	dev_t dev;
	ino_t ino;
};

struct loops {
	struct loop *v;
	size_t n;
};

static bool same_file(const struct dev_id *id, dev_t dev, ino_t ino)
{
	return id->file && id->dev == dev && id->ino == ino;
}

/* The first line of a small sysfs or procfs file, without its newline.
 * -errno when it cannot be read. */
static int read_line(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "re");
	int ret = 0;

	if (!f)
		return -errno;
	if (!fgets(buf, (int)len, f))
		ret = ferror(f) ? -EIO : -ENODATA;
	fclose(f);
	if (!ret)
		buf[strcspn(buf, "\n")] = '\0';
	return ret;
}

/*
 * Is the block device rdev a loop device over a file? Fills id's file part
 * and id->back. The file is the one LOOP_GET_STATUS64 on fd names (when fd
 * is an open descriptor of the device), else the one sysfs's path names.
 * -ENOENT: not a bound loop device; 0 with id->file false: a loop device
 * over a file unknown here.
 */
static int loop_file(int fd, dev_t rdev, struct dev_id *id)
{
	char p[96];
	struct loop_info64 li;
	struct stat st;
	size_t n;
	int ret;

	id->file = false;
	snprintf(p, sizeof(p), "/sys/dev/block/%u:%u/loop/backing_file", major(rdev),
		 minor(rdev));
	ret = read_line(p, id->back, sizeof(id->back));
	if (ret)
		return -ENOENT;
	n = strlen(id->back);
	if (n > 10 && !strcmp(id->back + n - 10, " (deleted)"))
		id->back[0] = '\0';	/* no path reaches it */
	if (fd >= 0 && ioctl(fd, LOOP_GET_STATUS64, &li) == 0) {
		id->file = true;
		id->dev = (dev_t)li.lo_device;
		id->ino = (ino_t)li.lo_inode;
	} else if (id->back[0] && stat(id->back, &st) == 0) {
		id->file = true;
		id->dev = st.st_dev;
		id->ino = st.st_ino;
	}
	return 0;
}

/* Every bound loop device and the file it is over. A system without
 * /sys/block has none. Errors: -ENOMEM. */
static int loops_scan(struct loops *lt)
{
	DIR *d = opendir("/sys/block");
	struct dirent *e;
	int ret = 0;

	lt->v = NULL;
	lt->n = 0;
	if (!d)
		return 0;
	while ((e = readdir(d)) != NULL) {
		struct dev_id id;
		struct loop *l, *v;
		struct stat st;
		unsigned ma, mi;
		char p[96], num[32];
		int fd;

		if (strncmp(e->d_name, "loop", 4) || !isdigit((unsigned char)e->d_name[4]) ||
		    strlen(e->d_name) > 20)
			continue;
		snprintf(p, sizeof(p), "/sys/block/%s/loop", e->d_name);
		if (access(p, F_OK) != 0)
			continue;	/* not bound: not opened */
		snprintf(p, sizeof(p), "/sys/block/%s/dev", e->d_name);
		if (read_line(p, num, sizeof(num)) || sscanf(num, "%u:%u", &ma, &mi) != 2)
			continue;
		v = realloc(lt->v, (lt->n + 1) * sizeof(*v));
		if (!v) {
			ret = -ENOMEM;
			break;
		}
		lt->v = v;
		l = &v[lt->n];
		snprintf(l->path, sizeof(l->path), "/dev/%s", e->d_name);
		l->rdev = makedev(ma, mi);
		fd = open(l->path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
		if (fd >= 0 && (fstat(fd, &st) || !S_ISBLK(st.st_mode) || st.st_rdev != l->rdev)) {
			close(fd);	/* not the node sysfs means */
			fd = -1;
		}
		ret = loop_file(fd, l->rdev, &id);
		if (fd >= 0)
			close(fd);
		if (ret) {
			ret = 0;	/* unbound since */
			continue;
		}
		l->file = id.file;
		l->dev = id.dev;
		l->ino = id.ino;
		lt->n++;
	}
	closedir(d);
	if (ret) {
		free(lt->v);
		lt->v = NULL;
		lt->n = 0;
	}
	return ret;
}

/* The loop device rdev, if it is bound. */
static const struct loop *loop_of(const struct loops *lt, dev_t rdev)
{
	for (size_t i = 0; i < lt->n; i++)
		if (lt->v[i].rdev == rdev)
			return &lt->v[i];
	return NULL;
}

/* Does an O_EXCL open of the block device at path fail with EBUSY? */
static bool excl_busy(const char *path)
{
	int fd = open(path, O_RDONLY | O_EXCL | O_CLOEXEC | O_NONBLOCK);

	if (fd >= 0) {
		close(fd);
		return false;
	}
	return errno == EBUSY;
}

/* A loop device over id's file other than id's own device. */
static bool sibling(const struct dev_id *id, const struct loop *l)
{
	return !(id->blk && l->rdev == id->rdev) && l->file && same_file(id, l->dev, l->ino);
}

int pfs_dev_claim(int fd, const struct stat *st, int *lock_fd)
{
	struct dev_id id = { 0 };
	struct loops lt = { 0 };
	struct stat bs;
	int ret = 0, lfd = -1;

	*lock_fd = -1;
	if (S_ISREG(st->st_mode)) {
		if (flock(fd, LOCK_EX | LOCK_NB) != 0)
			return errno == EWOULDBLOCK ? -EBUSY : -errno;
		id.file = true;
		id.dev = st->st_dev;
		id.ino = st->st_ino;
	} else {
		id.blk = true;
		id.rdev = st->st_rdev;
		if (loop_file(fd, st->st_rdev, &id) != 0 || !id.file)
			return 0;	/* not a loop device over a file we know */
		if (id.back[0])
			lfd = open(id.back, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
		if (lfd >= 0 && (fstat(lfd, &bs) != 0 || !same_file(&id, bs.st_dev, bs.st_ino))) {
			close(lfd);	/* another file now has that name */
			lfd = -1;
		}
		if (lfd >= 0 && flock(lfd, LOCK_EX | LOCK_NB) != 0) {
			ret = errno == EWOULDBLOCK ? -EBUSY : -errno;
			goto out;
		}
	}
	ret = loops_scan(&lt);
	for (size_t i = 0; !ret && i < lt.n; i++)
		if (sibling(&id, &lt.v[i]) && excl_busy(lt.v[i].path))
			ret = -EBUSY;
	if (!ret) {
		*lock_fd = lfd;
		lfd = -1;
	}
out:
	free(lt.v);
	if (lfd >= 0)
		close(lfd);
	return ret;
}

/* ---- the mount table -------------------------------------------------------- */

/* Decode mountinfo's \ooo escapes (a space, tab, newline or backslash in a
 * path or a source) in place. */
static void unescape(char *s)
{
	char *r, *w;

	for (r = w = s; *r; w++) {
		if (r[0] == '\\' && r[1] >= '0' && r[1] <= '3' && r[2] >= '0' && r[2] <= '7' &&
		    r[3] >= '0' && r[3] <= '7') {
			*w = (char)((r[1] - '0') * 64 + (r[2] - '0') * 8 + (r[3] - '0'));
			r += 4;
		} else {
			*w = *r++;
		}
	}
	*w = '\0';
}

/*
 * "36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw":
 * id, parent, major:minor, root, mount point, options, optional fields up
 * to "-", then type, source, super options.
 */
int pfs_mountinfo_parse(char *line, struct pfs_mount_entry *m)
{
	char *f[6], *save = NULL, *t, *type, *src;
	unsigned i = 0;

	line[strcspn(line, "\n")] = '\0';
	for (t = strtok_r(line, " ", &save); t && i < 6; t = strtok_r(NULL, " ", &save))
		f[i++] = t;
	if (i < 6 || sscanf(f[2], "%u:%u", &m->major, &m->minor) != 2)
		return -EINVAL;
	while (t && strcmp(t, "-"))
		t = strtok_r(NULL, " ", &save);
	if (!t)
		return -EINVAL;
	type = strtok_r(NULL, " ", &save);
	src = strtok_r(NULL, " ", &save);
	if (!type || !src)
		return -EINVAL;
	unescape(f[4]);
	unescape(type);
	unescape(src);
	m->mountpoint = f[4];
	m->fstype = type;
	m->source = src;
	return 0;
}

int pfs_mountinfo_each(int (*fn)(void *arg, const struct pfs_mount_entry *m),
		       void *arg)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	struct pfs_mount_entry m;
	char *line = NULL;
	size_t cap = 0;
	int ret = 0;

	if (!f)
		return -errno;
	while (!ret) {
		errno = 0;
		if (getline(&line, &cap, f) < 0) {
			ret = errno == ENOMEM ? -ENOMEM : 0;
			break;
		}
		if (pfs_mountinfo_parse(line, &m) == 0)
			ret = fn(arg, &m);
	}
	free(line);
	fclose(f);
	return ret;
}

/* ---- who holds it ----------------------------------------------------------- */

struct use_scan {
	const struct dev_id *id;
	const struct loops *lt;
	struct pfs_dev_use *u;
};

/* A mount of id's device: by its device number (a kernel mount of a block
 * device), else by what its source is (a FUSE mount names its device). */
static int mount_match(void *arg, const struct pfs_mount_entry *m)
{
	struct use_scan *s = arg;
	const struct dev_id *id = s->id;
	const struct loop *l = NULL;
	struct pfs_dev_use *u = s->u;
	struct stat st;
	dev_t mm = makedev(m->major, m->minor);

	if (m->major && id->blk && mm == id->rdev)
		goto direct;
	if (m->major && (l = loop_of(s->lt, mm)) != NULL && sibling(id, l))
		goto through_loop;
	if (m->source[0] != '/' || stat(m->source, &st) != 0)
		return 0;
	if (S_ISBLK(st.st_mode)) {
		if (id->blk && st.st_rdev == id->rdev)
			goto direct;
		if ((l = loop_of(s->lt, st.st_rdev)) != NULL && sibling(id, l))
			goto through_loop;
		return 0;
	}
	if (!S_ISREG(st.st_mode) || !same_file(id, st.st_dev, st.st_ino))
		return 0;
	if (!id->blk)
		goto direct;
	snprintf(u->why, sizeof(u->why), "its file %s is mounted on %s", m->source,
		 m->mountpoint);
	return 1;
direct:
	snprintf(u->why, sizeof(u->why), "mounted on %s", m->mountpoint);
	return 1;
through_loop:
	snprintf(u->why, sizeof(u->why), "loop device %s over the same file is mounted on %s",
		 l->path, m->mountpoint);
	return 1;
}

/* Who holds the flock on id's file (/proc/locks): 1 and u->why filled. */
static int lock_holder(const struct dev_id *id, struct pfs_dev_use *u)
{
	FILE *f = fopen("/proc/locks", "re");
	char line[256], kind[16], comm[64], p[64];
	unsigned ma, mi;
	unsigned long ino;
	int pid, found = 0;

	if (!f)
		return 0;
	while (!found && fgets(line, sizeof(line), f)) {
		/* "1: FLOCK  ADVISORY  WRITE 42 fe:00:1234 0 EOF"; not a waiter
		 * ("1: -> FLOCK ..."), nor a POSIX or OFD lock */
		if (sscanf(line, "%*d: %15s %*s %*s %d %x:%x:%lu", kind, &pid, &ma, &mi,
			   &ino) != 5 || strcmp(kind, "FLOCK"))
			continue;
		if (ma != major(id->dev) || mi != minor(id->dev) ||
		    ino != (unsigned long)id->ino)
			continue;
		found = 1;
		snprintf(p, sizeof(p), "/proc/%d/comm", pid);
		if (pid > 0 && read_line(p, comm, sizeof(comm)) == 0)
			snprintf(comm + strlen(comm), sizeof(comm) - strlen(comm), " (pid %d)",
				 pid);
		else
			snprintf(comm, sizeof(comm), "another program");
		if (id->blk && id->back[0])
			snprintf(u->why, sizeof(u->why), "its file %s is locked by %s", id->back,
				 comm);
		else if (id->blk)
			snprintf(u->why, sizeof(u->why), "its file is locked by %s", comm);
		else
			snprintf(u->why, sizeof(u->why), "locked by %s", comm);
	}
	fclose(f);
	return found;
}

int pfs_dev_in_use(const char *path, struct pfs_dev_use *u)
{
	struct dev_id idv = { 0 }, *id = &idv;
	struct loops lt = { 0 };
	struct use_scan s;
	struct stat st;
	int ret = 0, fd;

	u->state = PFS_DEV_FREE;
	u->why[0] = '\0';
	if (stat(path, &st) != 0)
		return -errno;
	if (!S_ISBLK(st.st_mode) && !S_ISREG(st.st_mode))
		return -ENOTBLK;
	if (S_ISREG(st.st_mode)) {
		id->file = true;
		id->dev = st.st_dev;
		id->ino = st.st_ino;
	} else {
		id->blk = true;
		id->rdev = st.st_rdev;
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
		loop_file(fd, st.st_rdev, id);
		if (fd >= 0)
			close(fd);
	}
	if (id->file) {
		ret = loops_scan(&lt);
		if (ret)
			goto out;
	}

	s = (struct use_scan){ id, &lt, u };
	if (pfs_mountinfo_each(mount_match, &s) > 0)
		goto busy;
	if (id->file && lock_holder(id, u))
		goto busy;
	if (id->blk && excl_busy(path)) {
		snprintf(u->why, sizeof(u->why), "open exclusively by another program");
		goto busy;
	}
	for (size_t i = 0; i < lt.n; i++) {
		if (sibling(id, &lt.v[i]) && excl_busy(lt.v[i].path)) {
			snprintf(u->why, sizeof(u->why), "loop device %s over the same file is "
				 "open exclusively by another program", lt.v[i].path);
			goto busy;
		}
	}
	for (size_t i = 0; i < lt.n; i++) {
		if (!sibling(id, &lt.v[i]))
			continue;
		u->state = PFS_DEV_LOOPED;
		if (id->blk)
			snprintf(u->why, sizeof(u->why), "loop device %s is over the same file",
				 lt.v[i].path);
		else
			snprintf(u->why, sizeof(u->why), "attached to %s", lt.v[i].path);
		break;
	}
	goto out;
busy:
	u->state = PFS_DEV_BUSY;
out:
	free(lt.v);
	return ret;
}
