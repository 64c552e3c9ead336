/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The kernel's read-only flag of the mount, followed. mount.posfs tells
 * the daemon of a remount itself (POSFS_IOC_REMOUNT, ops.c), but the
 * kernel's flag can change without it: mount(8) runs no helper when it
 * is given the source as well as the mount point, a program may call
 * mount(2) with MS_REMOUNT, the kernel remounts everything read-only on
 * an emergency (SysRq u). The FUSE protocol says nothing of any of them.
 *
 * So a thread waits on /proc/self/mountinfo (poll(2) reports POLLPRI on
 * every change of the mount table) and reads the super options of this
 * mount's file system (the ones after " - TYPE SOURCE", which a
 * read-only bind mount elsewhere does not change): when they say ro and
 * the daemon is writable, the store is made read-only as by the ioctl
 * (everything home, marked clean, EROFS from then on); when they say rw
 * again, writable. Only a change of the flag counts (every mount in the
 * namespace wakes the thread). The ioctl and the thread may both ask: the
 * store does one change at a time and a repeated one is nothing.
 *
 * The file system is the one of the mount point at start (its device
 * numbers), found when INIT arrives: libfuse reads the first request
 * once mount(2) has returned, so the mount is in the table by then.
 *
 * -o nodiratime: libfuse does not pass it to the kernel, which then does
 * not show it, and mount(8) would leave it out of a remount's options
 * (it gives the mount's present flags and drops diratime, which only
 * clears one). So the daemon, run by root, sets the mount's own
 * MS_NODIRATIME at start (mount(2) MS_REMOUNT|MS_BIND, the mount's other
 * flags as they are; a read-only mount writes no atime and is left
 * alone): a remount's options then say nodiratime until diratime is
 * given, as for ext4.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <syslog.h>
#include <unistd.h>

#include <libmount/libmount.h>

#include "posfs/io.h"
#include "posfs/store.h"
#include "posfs.h"

struct pfs_watch {
	struct pfs_daemon *p;
	pthread_t thread;
	int stop[2];			/* a pipe: written to end the thread */
	int fd;				/* /proc/self/mountinfo, polled */
	unsigned major, minor;		/* the file system's device numbers */
	int kernel_ro;			/* as last read: 1, 0, or -errno */
};

/* The device numbers of the posfs mount at mountpoint (the top one). */
struct watch_find {
	const char *mountpoint;
	unsigned major, minor;
	bool found;
};

static int watch_find(void *arg, const struct pfs_mount_entry *m)
{
	struct watch_find *w = arg;

	if (!strcmp(m->fstype, "fuse.posfs") && !strcmp(m->mountpoint, w->mountpoint)) {
		w->major = m->major;
		w->minor = m->minor;
		w->found = true;
	}
	return 0;
}

/*
 * Read the whole table from fd (reading it is what clears the poll
 * event) and say whether the file system's super options begin with
 * ro: 1 ro, 0 rw, -ENOENT not in the table (being unmounted), or -errno.
 */
static int watch_read(struct pfs_watch *w)
{
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap), *line, *save = NULL;
	int ret = -ENOENT;
	ssize_t n;

	if (!buf)
		return -ENOMEM;
	if (lseek(w->fd, 0, SEEK_SET) < 0) {
		ret = -errno;
		free(buf);
		return ret;
	}
	for (;;) {
		if (len + 1 >= cap) {
			char *nb = realloc(buf, cap * 2);

			if (!nb) {
				free(buf);
				return -ENOMEM;
			}
			buf = nb;
			cap *= 2;
		}
		n = read(w->fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = -errno;
			free(buf);
			return ret;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		unsigned maj, min;
		char *sep, *opts;

		if (sscanf(line, "%*u %*u %u:%u", &maj, &min) != 2 || maj != w->major ||
		    min != w->minor)
			continue;
		sep = strstr(line, " - ");
		if (!sep)
			continue;
		/* " - TYPE SOURCE SUPEROPTS" */
		opts = strchr(sep + 3, ' ');
		opts = opts ? strchr(opts + 1, ' ') : NULL;
		if (!opts)
			continue;
		opts++;
		ret = !strncmp(opts, "ro", 2) && (opts[2] == ',' || !opts[2]);
		break;
	}
	free(buf);
	return ret;
}

/* The kernel's flag changed to ro: the daemon follows. */
static void watch_apply(struct pfs_watch *w, bool ro)
{
	struct pfs_daemon *p = w->p;
	int ret;

	ret = pfs_store_set_readonly(p->st, ro);
	if (ro || !ret)
		__atomic_store_n(&p->readonly, ro, __ATOMIC_RELEASE);
	if (ret == -EROFS)
		pfs_log(LOG_ERR, "the kernel's mount is read-write again, but the device was "
			  "opened read-only (-o ro): changes fail with EROFS; unmount and mount "
			  "it read-write");
	else if (ret)
		pfs_log(LOG_ERR, "the kernel's mount is read-%s: %s", ro ? "only" : "write",
			  strerror(-ret));
	else
		pfs_log(LOG_INFO, "the kernel's mount is read-%s: remounted so",
			  ro ? "only" : "write");
}

static void *watch_main(void *arg)
{
	struct pfs_watch *w = arg;

	for (;;) {
		struct pollfd pf[2] = {
			{ .fd = w->fd, .events = POLLPRI },
			{ .fd = w->stop[0], .events = POLLIN },
		};
		int ro;

		if (poll(pf, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			pfs_log(LOG_WARNING, "mount table: %s: remounts without mount.posfs go "
				  "unnoticed", strerror(errno));
			break;
		}
		if (pf[1].revents)
			break;
		if (!(pf[0].revents & (POLLPRI | POLLERR)))
			continue;
		/* any mount in the namespace wakes us: only a change of
		 * this file system's flag counts */
		ro = watch_read(w);
		if (ro >= 0 && ro != w->kernel_ro)
			watch_apply(w, ro);
		if (ro != -ENOENT)
			w->kernel_ro = ro;
	}
	return NULL;
}

/* -o nodiratime into the kernel's flags of the mount (see the top). */
static void kernel_nodiratime(struct pfs_daemon *p)
{
	struct libmnt_table *tb;
	struct libmnt_iter *it;
	struct libmnt_fs *fs, *top = NULL;
	unsigned long flags = 0;

	if (!p->nodiratime || geteuid() != 0)
		return;
	tb = mnt_new_table_from_file("/proc/self/mountinfo");
	it = mnt_new_iter(MNT_ITER_FORWARD);
	/* by name alone: a lookup that stats would ask this very daemon */
	while (tb && it && !mnt_table_next_fs(tb, it, &fs))
		if (!strcmp(mnt_fs_get_target(fs) ?: "", p->mountpoint) &&
		    !strcmp(mnt_fs_get_fstype(fs) ?: "", "fuse.posfs"))
			top = fs;
	if (!top || mnt_optstr_get_flags(mnt_fs_get_vfs_options(top), &flags,
					 mnt_get_builtin_optmap(MNT_LINUX_MAP)))
		top = NULL;
	if (top && !(flags & (MS_RDONLY | MS_NODIRATIME))) {
		if (!(flags & (MS_NOATIME | MS_RELATIME)))
			flags |= MS_STRICTATIME;
		if (mount(NULL, p->mountpoint, NULL, MS_REMOUNT | MS_BIND | flags | MS_NODIRATIME,
			  NULL))
			pfs_log(LOG_WARNING, "nodiratime is not in the kernel's flags of %s: %s "
				  "(give it again on a remount)", p->mountpoint, strerror(errno));
	}
	mnt_free_iter(it);
	mnt_unref_table(tb);
}

int pfs_watch_start(struct pfs_daemon *p)
{
	struct watch_find f = { .mountpoint = p->mountpoint };
	struct pfs_watch *w;
	int ret;

	kernel_nodiratime(p);
	ret = pfs_mountinfo_each(watch_find, &f);
	if (ret)
		return ret;
	if (!f.found)
		return -ENOENT;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->p = p;
	w->major = f.major;
	w->minor = f.minor;
	w->fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	if (w->fd < 0) {
		ret = -errno;
		free(w);
		return ret;
	}
	if (pipe2(w->stop, O_CLOEXEC)) {
		ret = -errno;
		goto out;
	}
	w->kernel_ro = watch_read(w);	/* the table as it is: no event yet */
	ret = -pthread_create(&w->thread, NULL, watch_main, w);
	if (ret) {
		close(w->stop[0]);
		close(w->stop[1]);
		goto out;
	}
	p->watch = w;
	return 0;
out:
	close(w->fd);
	free(w);
	return ret;
}

void pfs_watch_stop(struct pfs_daemon *p)
{
	struct pfs_watch *w = p->watch;
	char c = 0;

	if (!w)
		return;
	if (write(w->stop[1], &c, 1) != 1)
		pfs_log(LOG_WARNING, "mount table watch: %s", strerror(errno));
	pthread_join(w->thread, NULL);
	close(w->stop[0]);
	close(w->stop[1]);
	close(w->fd);
	free(w);
	p->watch = NULL;
}
