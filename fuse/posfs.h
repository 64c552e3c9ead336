/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The posfs daemon (fuse/): a thin adapter from FUSE low-level requests to
 * the namespace layer (include/posfs/fs.h). Declarations shared by its
 * files: main.c (options, start-up, the loop), ops.c (the request
 * handlers and the inode table), watch.c (the kernel's read-only flag
 * followed), helper.c (mount.posfs), umount.c
 * (umount.posfs), utab.c (the mount's line for umount(8)), findfs.c
 * (LABEL= and UUID=), bind.c (a second mount of a mounted device).
 */
#ifndef POSFS_FUSE_POSFS_H
#define POSFS_FUSE_POSFS_H

#define FUSE_USE_VERSION 312	/* fuse_loop_cfg_* (max_threads): libfuse >= 3.12 */

#include <fuse_lowlevel.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct pfs_fs;
struct pfs_store;

enum pfs_atime {
	POSFS_ATIME_RELATIME = 0,	/* default */
	POSFS_ATIME_NOATIME,
	POSFS_ATIME_STRICTATIME,
};

/* The mount: set up by main.c before the session starts, read-only after
 * except readonly, atime and nodiratime (atomic: POSFS_IOC_REMOUNT
 * changes them). */
struct pfs_daemon {
	struct pfs_store *st;
	struct pfs_fs *fs;
	struct fuse_session *se;
	double entry_timeout, attr_timeout;
	enum pfs_atime atime;
	bool nodiratime;		/* listings leave a directory's atime */
	bool readonly;
	bool writeback;			/* FUSE_CAP_WRITEBACK_CACHE asked for */
	bool debug;
	const char *mountpoint;
	struct pfs_watch *watch;	/* watch.c: set at INIT, ended at destroy */
	unsigned long long readahead_kb;	/* 0: the kernel's */
	int readahead_set;		/* atomic: pfs_readahead ran */
};

/* ops.c */
extern const struct fuse_lowlevel_ops pfs_ops;
int pfs_itable_init(void);
void pfs_itable_fini(void);

/* main.c: messages to stderr, or to syslog once daemonized */
void pfs_log(int prio, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* main.c: the mount's readahead as asked (once; after INIT, which sets it) */
void pfs_readahead(struct pfs_daemon *p);

/* watch.c: follow the kernel's read-only flag of the mount (a remount
 * that did not go through mount.posfs); started from INIT, stopped at
 * destroy. Errors: -ENOENT (the mount is not in the table), -ENOMEM,
 * those of open, pipe and pthread_create. */
struct pfs_watch;
int pfs_watch_start(struct pfs_daemon *p);
void pfs_watch_stop(struct pfs_daemon *p);

/* helper.c: main of mount.posfs / mount.fuse.posfs */
int pfs_mount_helper(int argc, char **argv);

/* umount.c: main of umount.posfs / umount.fuse.posfs */
int pfs_umount_helper(int argc, char **argv);

/* utab.c: the mount's helper=posfs line in libmount's utab, for umount(8)
 * (root only; failures are logged) */
void pfs_utab_add(const char *device, const char *mountpoint);
void pfs_utab_remove(const char *device, const char *mountpoint);

/*
 * findfs.c: spec LABEL=x, UUID=x (or label=x, uuid=x, which mount(8)
 * leaves alone) to the block device holding that posfs file system, in
 * dev. Returns 1 when spec is none of those (dev untouched), 0 found;
 * -ENOENT none; -ENOTUNIQ two or more (dev and other: two of them);
 * -EINVAL a UUID that does not parse; fopen's -errno for
 * /proc/partitions. pfs_find_fs_msg: the same, printing a message
 * (prog: ...) and returning -1 for each error.
 */
int pfs_find_fs(const char *spec, char *dev, size_t len, char *other, size_t olen);
int pfs_find_fs_msg(const char *prog, const char *spec, char *dev, size_t len);

/*
 * bind.c: device (absolute) is mounted by a posfs daemon already? Run by
 * root, bind that mount on mountpoint (its own flags from kopts, the ones
 * main.c passes to FUSE's mount) and return 0. 1: not mounted, or not
 * root (go on and mount). -1: refused or failed, with a message (prog:
 * ...): the read-only state differs from the first mount's, mount(2)
 * failed.
 */
int pfs_bind_existing(const char *prog, const char *device, const char *mountpoint, bool ro,
		      const char *kopts);

/* bind.c: the device numbers of the posfs mount at mountpoint (0: none). */
dev_t pfs_mount_devno(const char *mountpoint);

/* bind.c: at the daemon's exit on a signal, while mounts of its file
 * system (devno) other than mountpoint are left (binds): detach them, and
 * their utab lines, so none is left with no daemon behind it. Root only. */
void pfs_unmount_binds(dev_t devno, const char *device, const char *mountpoint);

#endif /* POSFS_FUSE_POSFS_H */
