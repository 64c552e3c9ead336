/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * FUSE low-level request handlers: each one a call of the namespace layer
 * (include/posfs/fs.h), its errors returned as the layer gives them.
 *
 * Design:
 *  1. Inode numbers are the layer's (object ids); the root is FUSE_ROOT_ID
 *     = POSFS_ROOT_OID. The FUSE generation is the onode's (0 for the root,
 *     which the kernel requires).
 *  2. The inode table counts the kernel's lookups per inode, as
 *     passthrough_hp does: every entry reply (lookup, create, mknod,
 *     mkdir, symlink, link, readdirplus entries other than "." and "..")
 *     raises the count by one before the reply goes out; forget and
 *     forget_multi lower it; a forget of more than was counted is a bug
 *     that abort()s. The root is not counted (the kernel holds it for the
 *     whole mount). The table keeps no state the layer needs: it is the
 *     check that the protocol is kept, and the place to hang per-inode
 *     state later.
 *  3. Open counts belong to the layer: open, create and opendir call
 *     pfs_fs_inode_open, release and releasedir pfs_fs_inode_release, so
 *     an unlinked file, or a directory removed or replaced by a rename,
 *     lives until its last release (or the next mount reclaims it): fstat,
 *     fchmod, fchown, futimens and xattrs work on its descriptor, and a
 *     directory lists as empty (the kernel marks it dead and does not ask).
 *  4. Threads: every handler may run in any loop thread at once; the
 *     layer is thread-safe. The only lock here is the table's (striped,
 *     a leaf: never held across a call of the layer or a reply).
 *  5. atime: the kernel never updates atime on FUSE (S_NOATIME), so read
 *     and readdir do it through pfs_fs_setattr(ATIME) by the mount's
 *     policy (relatime, noatime, strictatime), before the reply: a stat
 *     that follows the read sees the new atime. An inode with chattr +A
 *     (FS_NOATIME_FL) keeps its atime whatever the policy, and so does a
 *     directory with -o nodiratime.
 *  6. ACLs: op_init asks for FUSE_CAP_POSIX_ACL and FUSE_CAP_DONT_MASK
 *     when offered; the kernel then checks ACLs and sends ACL changes as
 *     setxattr/removexattr of system.posix_acl_*, and the layer does the
 *     rest (include/posfs/fs.h). The caller's umask goes to the layer in
 *     struct pfs_fs_cred (req_cred: libfuse fills it for create, mknod
 *     and mkdir, 0 otherwise).
 *  7. No flush handler: every write is applied when it returns and
 *     durability is fsync's, so close has nothing to do here. libfuse
 *     answers the first FLUSH with ENOSYS and the kernel sends no more,
 *     which saves a round trip on every close (the kernel still writes
 *     back its cached pages and reports their errors at close).
 *  8. ioctls (include/posfs/ioctl.h): chattr flags, FITRIM (root: the
 *     free space to the device as discards), POSFS_IOC_SCRUB and
 *     POSFS_IOC_REMOUNT (read-only at run time: p->readonly follows the
 *     store, so that the daemon's own atime writes stop too; watch.c,
 *     started at INIT and stopped at destroy, does the same for a
 *     remount that mount.posfs did not tell of), on
 *     the kernel's restricted path only (fixed-size arguments, never a
 *     retry). chattr reaches the daemon through the kernel's fileattr
 *     calls, which hold the inode lock from their FS_IOC_FSGETXATTR to
 *     their FS_IOC_SETFLAGS: a flags change reads and writes the flags
 *     without a race with another change of the same inode.
 *  9. Set-ID bits (include/posfs/fs.h): the kernel says per request
 *     whether the caller lacks CAP_FSETID (wire.c); whether it is in the
 *     file's group needs its supplementary groups, which only /proc has
 *     (fuse_req_getgroups). They are read only where they decide
 *     something: a set-group-ID file not of the caller's own gid (a write,
 *     truncate or fallocate of one without S_IXGRP; an access ACL set on
 *     one by a caller other than uid 0). Everything else costs nothing.
 * 10. O_DIRECT writes drop the cached pages of their range before their
 *     reply (direct_written), as ext4 does at their completion.
 * 11. chattr +i and +a: the layer refuses what they forbid (include/posfs/
 *     fs.h), an open for writing too, as may_open does for ext4, so that
 *     with the writeback cache no write of an immutable file reaches the
 *     page cache. An append-only file opened for writing is opened for
 *     direct I/O (FOPEN_DIRECT_IO): its writes come one by one, each at
 *     the end the kernel knows, never as the write-back of pages that
 *     hold bytes from before the end, and no shared writable mapping can
 *     change those. setattr says which times are the caller's "now"
 *     (PFS_FS_SET_TOUCH), which an append-only file takes: every time
 *     asked is UTIME_NOW, or (writeback cache) the kernel sends its own
 *     ctime, mtime and at most atime now. With the writeback cache, a
 *     descriptor opened for writing before a chattr +i or +a still writes
 *     into the kernel's cache: those pages are refused at their
 *     write-back (fsync and close report EPERM; posfs(8) says so).
 * 12. Requests libfuse 3.14 does not know come through wire.c
 *     (pfs_wire_intercept) to pfs_ops_tmpfile and pfs_ops_statx, with
 *     no fuse_req_t: they reach the mount through wire_mnt, set at INIT.
 *     O_TMPFILE is a create without a name (the layer's pfs_fs_tmpfile:
 *     nlink 0, an orphan, open once), counted as CREATE counts; statx
 *     adds the creation time and the chattr attributes (STATX_ATTR_
 *     COMPRESSED, _IMMUTABLE, _APPEND, _NODUMP) to what getattr says.
 */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "posfs/fs.h"
#include "posfs/io.h"
#include "posfs/ioctl.h"
#include "posfs/store.h"
#include "posfs.h"
#include "uring.h"
#include "wire.h"

#define ATIME_RELATIME_SECS	(24 * 60 * 60)
#define COPY_CHUNK		(1u << 20)	/* daemon-side copy_file_range */
#define COPY_MAX		(16u << 20)	/* at most this much per request */

/* The mount, for the handlers wire.c calls without a libfuse request (set
 * at INIT: no such request comes before). */
static struct pfs_daemon *wire_mnt;

static struct pfs_daemon *mnt(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct pfs_fs_cred req_cred(fuse_req_t req)
{
	const struct fuse_ctx *c = fuse_req_ctx(req);
	struct pfs_fs_cred cr = { .uid = (uint32_t)c->uid, .gid = (uint32_t)c->gid,
				   .umask = (uint32_t)c->umask, .setid = pfs_wire_setid() };

	return cr;
}

/* Design 9: the caller's supplementary groups, when they are needed. */
#define REQ_GROUPS	32

_Static_assert(sizeof(gid_t) == sizeof(uint32_t), "gid_t is a uint32_t");

struct req_groups {
	gid_t small[REQ_GROUPS];
	gid_t *big;
};

/* For cr, about an inode a: read the groups when its group is not cr's
 * gid and it has S_ISGID. Without them (no /proc, no memory) cr's gid
 * alone says, which errs towards clearing the bit. */
static void req_groups_get(fuse_req_t req, const struct pfs_fs_attr *a, struct pfs_fs_cred *cr,
			   struct req_groups *g)
{
	gid_t *list = g->small;
	int n, cap = REQ_GROUPS;

	if (!(a->mode & S_ISGID) || a->gid == cr->gid || cr->groups)
		return;
	n = fuse_req_getgroups(req, cap, list);
	if (n > cap) {
		cap = n;
		g->big = malloc(sizeof(gid_t) * (size_t)cap);
		if (!g->big)
			return;
		list = g->big;
		n = fuse_req_getgroups(req, cap, list);
	}
	if (n <= 0)
		return;
	if (n > cap)
		n = cap;	/* groups added meanwhile */
	cr->groups = (const uint32_t *)list;
	cr->ngroups = (uint32_t)n;
}

static void req_groups_free(struct req_groups *g)
{
	free(g->big);
	g->big = NULL;
}

static bool setid_to_clear(fuse_req_t req, fuse_ino_t ino, struct pfs_fs_cred *cr,
			   struct req_groups *g);

/* An error of the layer: corruption and I/O errors also go to the log. */
/* At most one such message per ERR_LOG_SECS (a damaged file read in a
 * loop must not flood the log; the store names each bad block once). */
#define ERR_LOG_SECS	10

static int reply_err(fuse_req_t req, int neg)
{
	static int64_t last;	/* atomic: seconds of the last message */
	static uint64_t quiet;	/* atomic: errors since, not logged */
	int e = -neg;

	if (e == EUCLEAN || e == EBADMSG || e == EIO) {
		int64_t now = (int64_t)time(NULL), prev = __atomic_load_n(&last, __ATOMIC_RELAXED);

		if (now - prev >= ERR_LOG_SECS &&
		    __atomic_compare_exchange_n(&last, &prev, now, false, __ATOMIC_RELAXED,
						__ATOMIC_RELAXED)) {
			uint64_t n = __atomic_exchange_n(&quiet, 0, __ATOMIC_RELAXED);

			if (n)
				pfs_log(LOG_ERR, "%s: run fsck.posfs after unmounting "
					  "(%" PRIu64 " more errors in the last %d s)",
					  strerror(e), n, ERR_LOG_SECS);
			else
				pfs_log(LOG_ERR, "%s: run fsck.posfs after unmounting",
					  strerror(e));
		} else {
			__atomic_add_fetch(&quiet, 1, __ATOMIC_RELAXED);
		}
	}
	return fuse_reply_err(req, e);
}

/* ---- the inode table (design 2) ------------------------------------------ */

#define IT_BUCKETS	(1u << 16)
#define IT_STRIPES	64u

struct it_ent {
	uint64_t ino;
	uint64_t nlookup;
	struct it_ent *next;
};

static struct it_ent **it_bucket;
static pthread_mutex_t it_lock[IT_STRIPES];

static unsigned it_hash(uint64_t ino)
{
	ino *= UINT64_C(0x9e3779b97f4a7c15);
	return (unsigned)(ino >> 48) & (IT_BUCKETS - 1);
}

int pfs_itable_init(void)
{
	it_bucket = calloc(IT_BUCKETS, sizeof(*it_bucket));
	if (!it_bucket)
		return -ENOMEM;
	for (unsigned i = 0; i < IT_STRIPES; i++)
		pthread_mutex_init(&it_lock[i], NULL);
	return 0;
}

void pfs_itable_fini(void)
{
	if (!it_bucket)
		return;
	for (unsigned b = 0; b < IT_BUCKETS; b++) {
		struct it_ent *e = it_bucket[b], *n;

		for (; e; e = n) {
			n = e->next;
			free(e);
		}
	}
	free(it_bucket);
	it_bucket = NULL;
	for (unsigned i = 0; i < IT_STRIPES; i++)
		pthread_mutex_destroy(&it_lock[i]);
}

/* One more lookup of ino by the kernel. -ENOMEM when the table cannot grow. */
static int it_ref(uint64_t ino)
{
	unsigned b = it_hash(ino);
	pthread_mutex_t *l = &it_lock[b % IT_STRIPES];
	struct it_ent *e;
	int ret = 0;

	if (ino == FUSE_ROOT_ID)
		return 0;
	pthread_mutex_lock(l);
	for (e = it_bucket[b]; e && e->ino != ino; e = e->next)
		;
	if (!e) {
		e = calloc(1, sizeof(*e));
		if (!e) {
			ret = -ENOMEM;
			goto out;
		}
		e->ino = ino;
		e->next = it_bucket[b];
		it_bucket[b] = e;
	}
	e->nlookup++;
out:
	pthread_mutex_unlock(l);
	return ret;
}

static void it_forget(uint64_t ino, uint64_t n)
{
	unsigned b = it_hash(ino);
	pthread_mutex_t *l = &it_lock[b % IT_STRIPES];
	struct it_ent **pp, *e;

	if (ino == FUSE_ROOT_ID)
		return;
	pthread_mutex_lock(l);
	for (pp = &it_bucket[b]; *pp && (*pp)->ino != ino; pp = &(*pp)->next)
		;
	e = *pp;
	if (!e || e->nlookup < n) {
		pfs_log(LOG_CRIT, "forget of inode %llu by %llu, but it was looked up %llu times",
			  (unsigned long long)ino, (unsigned long long)n,
			  (unsigned long long)(e ? e->nlookup : 0));
		abort();
	}
	e->nlookup -= n;
	if (!e->nlookup) {
		*pp = e->next;
		free(e);
	}
	pthread_mutex_unlock(l);
}

/* ---- attributes and entries ---------------------------------------------- */

static void attr_to_stat(const struct pfs_fs_attr *a, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = a->ino;
	st->st_mode = a->mode;
	st->st_nlink = a->nlink;
	st->st_uid = a->uid;
	st->st_gid = a->gid;
	st->st_rdev = a->rdev;
	st->st_size = (off_t)a->size;
	st->st_blksize = a->blksize;
	st->st_blocks = (blkcnt_t)a->blocks;
	st->st_atim.tv_sec = a->atime.sec;
	st->st_atim.tv_nsec = a->atime.nsec;
	st->st_mtim.tv_sec = a->mtime.sec;
	st->st_mtim.tv_nsec = a->mtime.nsec;
	st->st_ctim.tv_sec = a->ctime.sec;
	st->st_ctim.tv_nsec = a->ctime.nsec;
}

static void fill_entry(struct pfs_daemon *p, const struct pfs_fs_attr *a, struct fuse_entry_param *e)
{
	memset(e, 0, sizeof(*e));
	e->ino = a->ino;
	e->generation = a->ino == FUSE_ROOT_ID ? 0 : a->generation;
	attr_to_stat(a, &e->attr);
	e->attr_timeout = p->attr_timeout;
	e->entry_timeout = p->entry_timeout;
}

/* Reply with an entry, counting the lookup first (design 2). */
static void reply_entry(fuse_req_t req, const struct pfs_fs_attr *a)
{
	struct fuse_entry_param e;
	int ret = it_ref(a->ino);

	if (ret) {
		reply_err(req, ret);
		return;
	}
	fill_entry(mnt(req), a, &e);
	fuse_reply_entry(req, &e);
}

static struct pfs_timespec ts_now(void)
{
	struct timespec t;
	struct pfs_timespec r;

	clock_gettime(CLOCK_REALTIME, &t);
	r.sec = t.tv_sec;
	r.nsec = (uint32_t)t.tv_nsec;
	return r;
}

static int ts_cmp(struct pfs_timespec a, struct pfs_timespec b)
{
	if (a.sec != b.sec)
		return a.sec < b.sec ? -1 : 1;
	return a.nsec < b.nsec ? -1 : a.nsec > b.nsec;
}

/* Design 5: after a read or a listing of ino (not of one with chattr +A). */
static void touch_atime(struct pfs_daemon *p, uint64_t ino)
{
	enum pfs_atime policy = __atomic_load_n(&p->atime, __ATOMIC_RELAXED);
	struct pfs_fs_attr a;
	struct pfs_timespec now;

	if (__atomic_load_n(&p->readonly, __ATOMIC_ACQUIRE) || policy == POSFS_ATIME_NOATIME)
		return;
	if (pfs_fs_getattr(p->fs, ino, &a) || (a.flags & FS_NOATIME_FL))
		return;
	now = ts_now();
	if (policy == POSFS_ATIME_RELATIME && ts_cmp(a.atime, a.mtime) > 0 &&
	    ts_cmp(a.atime, a.ctime) > 0 && now.sec - a.atime.sec < ATIME_RELATIME_SECS)
		return;
	a.atime = now;
	(void)pfs_fs_setattr(p->fs, ino, &a, PFS_FS_SET_ATIME | PFS_FS_SET_KEEP_CTIME, NULL,
			     NULL);
}

/* ---- init, destroy ------------------------------------------------------- */

static void op_init(void *userdata, struct fuse_conn_info *conn)
{
	struct pfs_daemon *p = userdata;
	int ret;

	wire_mnt = p;
	if (conn->capable & FUSE_CAP_EXPORT_SUPPORT)
		conn->want |= FUSE_CAP_EXPORT_SUPPORT;
	if (p->writeback && (conn->capable & FUSE_CAP_WRITEBACK_CACHE))
		conn->want |= FUSE_CAP_WRITEBACK_CACHE;
	else
		conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
	if (conn->capable & FUSE_CAP_ATOMIC_O_TRUNC)
		conn->want |= FUSE_CAP_ATOMIC_O_TRUNC;
	/*
	 * POSIX ACLs (design 6): the kernel enforces them (and forces
	 * default_permissions); the layer inherits default ACLs and keeps
	 * the mode in step. With DONT_MASK the kernel sends the raw mode and
	 * the umask, which the layer applies only where there is no default
	 * ACL. A kernel without POSIX_ACL masks by the umask itself (our
	 * second mask is then a no-op) and refuses system.posix_acl_*.
	 */
	if ((conn->capable & FUSE_CAP_POSIX_ACL) && (conn->capable & FUSE_CAP_DONT_MASK))
		conn->want |= FUSE_CAP_POSIX_ACL | FUSE_CAP_DONT_MASK;
	/* chattr on directories too (design 8); libfuse refuses their
	 * ioctls without it */
	if (conn->capable & FUSE_CAP_IOCTL_DIR)
		conn->want |= FUSE_CAP_IOCTL_DIR;
	/* No lock handlers: flock and fcntl locks stay in the kernel. */
	conn->want &= ~(FUSE_CAP_FLOCK_LOCKS | FUSE_CAP_POSIX_LOCKS);
	conn->max_write = 1u << 20;
	conn->time_gran = 1;
	/* a remount that mount.posfs did not tell us of (watch.c) */
	ret = p->watch ? 0 : pfs_watch_start(p);
	if (ret)
		pfs_log(LOG_WARNING, "remounts without mount.posfs go unnoticed: %s",
			  strerror(-ret));
}

static void op_destroy(void *userdata)
{
	pfs_watch_stop(userdata);
}

/* ---- names ---------------------------------------------------------------- */

static void op_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct pfs_fs_attr a;
	int ret;

	if (!strcmp(name, ".")) {
		/*
		 * An export handle the kernel no longer has in its cache: it
		 * asks for "." of the inode (any type). The kernel compares
		 * the generation itself; an unlinked inode is stale.
		 */
		ret = pfs_fs_getattr(mnt(req)->fs, parent, &a);
		if (!ret && !a.nlink)
			ret = -ESTALE;
		if (ret)
			reply_err(req, ret == -ENOENT ? -ESTALE : ret);
		else
			reply_entry(req, &a);
		return;
	}
	ret = pfs_fs_lookup(mnt(req)->fs, parent, name, &a);

	if (ret == -ENOENT) {
		/* a negative entry: only this mount changes the namespace */
		struct fuse_entry_param e = { .ino = 0,
					      .entry_timeout = mnt(req)->entry_timeout };

		fuse_reply_entry(req, &e);
		return;
	}
	if (ret) {
		reply_err(req, ret);
		return;
	}
	reply_entry(req, &a);
}

static void op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	it_forget(ino, nlookup);
	fuse_reply_none(req);
}

static void op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	for (size_t i = 0; i < count; i++)
		it_forget(forgets[i].ino, forgets[i].nlookup);
	fuse_reply_none(req);
}

static void op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct pfs_fs_attr a;
	struct stat st;
	int ret = pfs_fs_getattr(mnt(req)->fs, ino, &a);

	(void)fi;
	if (ret) {
		reply_err(req, ret);
		return;
	}
	attr_to_stat(&a, &st);
	fuse_reply_attr(req, &st, mnt(req)->attr_timeout);
}

static void op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *st, int to_set,
		       struct fuse_file_info *fi)
{
	struct pfs_fs_cred cr = req_cred(req);
	struct pfs_fs_attr a = { 0 }, out;
	struct req_groups g = { .big = NULL };
	struct pfs_timespec now = ts_now();
	uint32_t mask = 0;
	struct stat rst;
	int ret;

	(void)fi;
	if (to_set & FUSE_SET_ATTR_MODE) {
		a.mode = st->st_mode;
		mask |= PFS_FS_SET_MODE;
	}
	if (to_set & FUSE_SET_ATTR_UID) {
		a.uid = st->st_uid;
		mask |= PFS_FS_SET_UID;
	}
	if (to_set & FUSE_SET_ATTR_GID) {
		a.gid = st->st_gid;
		mask |= PFS_FS_SET_GID;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		a.size = (uint64_t)st->st_size;
		mask |= PFS_FS_SET_SIZE;
	}
	if (to_set & FUSE_SET_ATTR_ATIME_NOW) {
		a.atime = now;
		mask |= PFS_FS_SET_ATIME;
	} else if (to_set & FUSE_SET_ATTR_ATIME) {
		a.atime.sec = st->st_atim.tv_sec;
		a.atime.nsec = (uint32_t)st->st_atim.tv_nsec;
		mask |= PFS_FS_SET_ATIME;
	}
	if (to_set & FUSE_SET_ATTR_MTIME_NOW) {
		a.mtime = now;
		mask |= PFS_FS_SET_MTIME;
	} else if (to_set & FUSE_SET_ATTR_MTIME) {
		a.mtime.sec = st->st_mtim.tv_sec;
		a.mtime.nsec = (uint32_t)st->st_mtim.tv_nsec;
		mask |= PFS_FS_SET_MTIME;
	}
	if (to_set & FUSE_SET_ATTR_CTIME) {
		/* the kernel's own ctime (writeback cache) */
		a.ctime.sec = st->st_ctim.tv_sec;
		a.ctime.nsec = (uint32_t)st->st_ctim.tv_nsec;
		mask |= PFS_FS_SET_CTIME;
	}
	/* design 11: times that are "now" (mask stays 0 without times: the
	 * kill alone, below) */
	if ((to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) &&
	    (!(to_set & FUSE_SET_ATTR_ATIME) || (to_set & FUSE_SET_ATTR_ATIME_NOW)) &&
	    (!(to_set & FUSE_SET_ATTR_MTIME) || (to_set & FUSE_SET_ATTR_MTIME_NOW) ||
	     (to_set & FUSE_SET_ATTR_CTIME)))
		mask |= PFS_FS_SET_TOUCH;
	/* design 9: a truncate, or a chown the kernel marks */
	if ((mask & PFS_FS_SET_SIZE) ||
	    ((mask & (PFS_FS_SET_UID | PFS_FS_SET_GID)) && cr.setid == PFS_FS_SETID_CLEAR))
		(void)setid_to_clear(req, ino, &cr, &g);
	/* nothing to set: the kernel's kill alone (setid_by_uid), from a
	 * caller without CAP_FSETID */
	if (!mask && pfs_wire_killpriv_v2()) {
		cr.setid = PFS_FS_SETID_CLEAR;
		(void)setid_to_clear(req, ino, &cr, &g);
	}
	ret = pfs_fs_setattr(mnt(req)->fs, ino, &a, mask, &cr, &out);
	req_groups_free(&g);
	if (ret) {
		reply_err(req, ret);
		return;
	}
	attr_to_stat(&out, &rst);
	fuse_reply_attr(req, &rst, mnt(req)->attr_timeout);
}

static void op_readlink(fuse_req_t req, fuse_ino_t ino)
{
	char buf[PFS_FS_SYMLINK_MAX + 1];
	ssize_t n = pfs_fs_readlink(mnt(req)->fs, ino, buf, sizeof(buf) - 1);

	if (n < 0) {
		reply_err(req, (int)n);
		return;
	}
	if ((size_t)n > sizeof(buf) - 1) {
		reply_err(req, -ENAMETOOLONG);
		return;
	}
	buf[n] = '\0';
	fuse_reply_readlink(req, buf);
}

static void op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		     dev_t rdev)
{
	struct pfs_fs_cred cr = req_cred(req);
	struct pfs_fs_attr a;
	int ret = pfs_fs_mknod(mnt(req)->fs, parent, name, mode, rdev, &cr, &a);

	if (ret)
		reply_err(req, ret);
	else
		reply_entry(req, &a);
}

static void op_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	struct pfs_fs_cred cr = req_cred(req);
	struct pfs_fs_attr a;
	int ret = pfs_fs_mkdir(mnt(req)->fs, parent, name, mode, &cr, &a);

	if (ret)
		reply_err(req, ret);
	else
		reply_entry(req, &a);
}

static void op_symlink(fuse_req_t req, const char *target, fuse_ino_t parent, const char *name)
{
	struct pfs_fs_cred cr = req_cred(req);
	struct pfs_fs_attr a;
	int ret = pfs_fs_symlink(mnt(req)->fs, parent, name, target, &cr, &a);

	if (ret)
		reply_err(req, ret);
	else
		reply_entry(req, &a);
}

static void op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	struct pfs_fs_attr a;
	int ret = pfs_fs_link(mnt(req)->fs, ino, newparent, newname, &a);

	if (ret)
		reply_err(req, ret);
	else
		reply_entry(req, &a);
}

static void op_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, -pfs_fs_unlink(mnt(req)->fs, parent, name));
}

static void op_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	fuse_reply_err(req, -pfs_fs_rmdir(mnt(req)->fs, parent, name));
}

static void op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		      const char *newname, unsigned int flags)
{
	int ret = pfs_fs_rename(mnt(req)->fs, parent, name, newparent, newname, flags);

	if (ret)
		reply_err(req, ret);
	else
		fuse_reply_err(req, 0);
}

/* ---- files ----------------------------------------------------------------- */

/* Open ino for fi (design 3); O_TRUNC when the kernel leaves it to us. */
/*
 * A write or a truncating open that the kernel marks PFS_FS_SETID_CLEAR
 * (FUSE_HANDLE_KILLPRIV_V2, wire.c) clears set-ID bits here, and its reply
 * carries no attributes: the kernel would show the old mode until its
 * cache expires. When there are bits to clear, the daemon invalidates the
 * kernel's attributes of the inode (only those: no page cache, no lock).
 * The kernel holds the inode lock over the request, so no chmod of this
 * mount comes between the look and the change. On the way it reads the
 * caller's groups into cr (into g, freed by req_groups_free) where the
 * layer needs them (design 9), for any caller the layer takes as lacking
 * CAP_FSETID.
 */
static bool setid_to_clear(fuse_req_t req, fuse_ino_t ino, struct pfs_fs_cred *cr,
			   struct req_groups *g)
{
	struct pfs_fs_attr a;
	bool kills = cr->setid == PFS_FS_SETID_CLEAR ||
		     (cr->setid == PFS_FS_SETID_BY_UID && cr->uid != 0);

	if (!kills || pfs_fs_getattr(mnt(req)->fs, ino, &a) || !S_ISREG(a.mode))
		return false;
	if (!(a.mode & S_IXGRP))
		req_groups_get(req, &a, cr, g);	/* design 9 */
	if (cr->setid != PFS_FS_SETID_CLEAR)
		return false;	/* the kernel clears them itself, by a setattr */
	if (a.mode & S_ISUID)
		return true;
	if (!(a.mode & S_ISGID))
		return false;
	if (a.mode & S_IXGRP)
		return true;
	if (a.gid == cr->gid)
		return false;
	for (uint32_t i = 0; i < cr->ngroups; i++)
		if (cr->groups[i] == a.gid)
			return false;
	return true;
}

static void setid_cleared(struct pfs_daemon *p, fuse_ino_t ino)
{
	(void)fuse_lowlevel_notify_inval_inode(p->se, ino, -1, 0);
}

/*
 * fallocate and copy_file_range carry no word of the kernel's. Before
 * them the kernel's file_modified asks for the kill itself, by its own
 * rules (should_remove_suid: CAP_FSETID, S_IXGRP, the caller's groups), as
 * a SETATTR that sets nothing, which with KILLPRIV_V2 is the daemon's to
 * carry out (op_setattr): the request itself then keeps the bits. Without
 * KILLPRIV_V2 the layer takes uid 0 as holding CAP_FSETID.
 */
static void setid_by_uid(struct pfs_fs_cred *cr)
{
	if (cr->setid == PFS_FS_SETID_BY_UID && pfs_wire_killpriv_v2())
		cr->setid = PFS_FS_SETID_KEEP;
}

static int do_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		   struct pfs_fs_cred *cr)
{
	struct pfs_daemon *p = mnt(req);
	struct pfs_fs_attr fa;
	int ret = pfs_fs_inode_open_for(p->fs, ino, fi->flags);	/* design 11 */

	if (ret)
		return ret;
	if ((fi->flags & O_ACCMODE) != O_RDONLY && !pfs_fs_getattr(p->fs, ino, &fa) &&
	    (fa.flags & FS_APPEND_FL))
		fi->direct_io = 1;
	if (fi->flags & O_TRUNC) {
		struct pfs_fs_attr a = { .size = 0 };
		struct req_groups g = { .big = NULL };
		bool clear = setid_to_clear(req, ino, cr, &g);

		ret = pfs_fs_setattr(p->fs, ino, &a, PFS_FS_SET_SIZE, cr, NULL);
		req_groups_free(&g);
		cr->groups = NULL;
		cr->ngroups = 0;
		if (ret) {
			(void)pfs_fs_inode_release(p->fs, ino);
			return ret;
		}
		if (clear)
			setid_cleared(p, ino);
	}
	fi->fh = ino;
	/* Only this mount changes the data: keep the page cache across
	 * opens. A truncating open starts afresh. */
	fi->keep_cache = !(fi->flags & O_TRUNC);
	return 0;
}

static void op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct pfs_daemon *p = mnt(req);	/* req is gone after the reply */
	struct pfs_fs_cred cr = req_cred(req);
	int ret;

	pfs_readahead(p);	/* before the kernel sets up this file's */
	ret = do_open(req, ino, fi, &cr);

	if (ret) {
		reply_err(req, ret);
		return;
	}
	if (fuse_reply_open(req, fi) == -ENOENT)	/* interrupted: no release will come */
		(void)pfs_fs_inode_release(p->fs, ino);
}

static void op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		      struct fuse_file_info *fi)
{
	struct pfs_daemon *p = mnt(req);
	struct pfs_fs_cred cr = req_cred(req);
	struct fuse_entry_param e;
	struct pfs_fs_attr a;
	int ret;

	pfs_readahead(p);
	ret = pfs_fs_mknod(p->fs, parent, name, S_IFREG | (mode & 07777), 0, &cr, &a);
	if (ret == -EEXIST && !(fi->flags & O_EXCL)) {
		/* made by another request meanwhile: open it */
		ret = pfs_fs_lookup(p->fs, parent, name, &a);
		if (!ret && S_ISDIR(a.mode))
			ret = -EISDIR;
	}
	if (ret)
		goto err;
	ret = do_open(req, a.ino, fi, &cr);
	if (ret)
		goto err;
	if (fi->flags & O_TRUNC)
		(void)pfs_fs_getattr(p->fs, a.ino, &a);
	ret = it_ref(a.ino);
	if (ret) {
		(void)pfs_fs_inode_release(p->fs, a.ino);
		goto err;
	}
	fill_entry(p, &a, &e);
	if (fuse_reply_create(req, &e, fi) == -ENOENT) {
		it_forget(a.ino, 1);
		(void)pfs_fs_inode_release(p->fs, a.ino);
	}
	return;
err:
	reply_err(req, ret);
}

/*
 * Each loop thread reads into one buffer of its own, aligned for device
 * I/O (the store reads whole blocks straight into it, without a bounce)
 * and reused; the reply copies it out before the thread takes another
 * request.
 */
static struct pfs_thread_buf read_buf = PFS_THREAD_BUF_INIT;

static void op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct pfs_daemon *p = mnt(req);	/* req is gone after the reply */
	char *buf = pfs_thread_buf_get(&read_buf, size ? size : 1);
	ssize_t n;

	(void)fi;
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	n = pfs_fs_read(p->fs, ino, (uint64_t)off, size, buf);
	if (n > 0)
		touch_atime(p, ino);
	if (n < 0)
		reply_err(req, (int)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
}

/*
 * Design 10: after a write through an O_DIRECT descriptor, applied and not
 * yet answered, the cached pages of its range go (and the attributes with
 * them, as setid_cleared does). The kernel invalidates the range before a
 * direct write and, for a synchronous one, after it; an asynchronous one
 * (io_submit) it leaves, so a buffered read that came while the write was
 * on its way kept the old bytes in the page cache, where ext4 drops them
 * at the write's completion. Here the pages go before the kernel sees the
 * completion, and a read in flight holds its locked page, which the
 * invalidation waits for and then drops. Buffered writes (and the
 * kernel's write-back) never come here: one flag test is their cost.
 */
static void direct_written(struct pfs_daemon *p, fuse_ino_t ino, off_t off, size_t n)
{
	(void)fuse_lowlevel_notify_inval_inode(p->se, ino, off, (off_t)n);
}

/*
 * Over the ring, the invalidation waits for the page locks of readers
 * whose READ may be queued behind this very write on the same queue: the
 * invalidation and the reply go to the ring's deferral thread (uring.h).
 */
struct direct_reply {
	struct pfs_daemon *p;
	fuse_req_t req;
	fuse_ino_t ino;
	off_t off;
	size_t n;
};

static void direct_reply(void *arg)
{
	struct direct_reply *d = arg;

	direct_written(d->p, d->ino, d->off, d->n);
	fuse_reply_write(d->req, d->n);
	free(d);
}

/* The reply to an O_DIRECT write of n bytes, after the invalidation. */
static void direct_written_reply(struct pfs_daemon *p, fuse_req_t req, fuse_ino_t ino, off_t off,
				 size_t n)
{
	struct direct_reply *d = malloc(sizeof(*d));

	if (d) {
		*d = (struct direct_reply){ .p = p, .req = req, .ino = ino, .off = off, .n = n };
		if (pfs_uring_defer(direct_reply, d))
			return;
		free(d);
	}
	direct_written(p, ino, off, n);
	fuse_reply_write(req, n);
}

static void op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	struct pfs_daemon *p = mnt(req);
	struct pfs_fs_cred cr = req_cred(req);
	struct req_groups g = { .big = NULL };
	bool clear = setid_to_clear(req, ino, &cr, &g);
	ssize_t n;

	n = pfs_fs_write(p->fs, ino, (uint64_t)off, size, buf, &cr);
	req_groups_free(&g);
	if (n > 0 && (fi->flags & O_DIRECT) && !fi->writepage) {
		direct_written_reply(p, req, ino, off, (size_t)n);
		return;
	}
	if (n > 0 && clear)
		setid_cleared(p, ino);
	if (n < 0)
		reply_err(req, (int)n);
	else
		fuse_reply_write(req, (size_t)n);
}

static void op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	int ret = pfs_fs_inode_release(mnt(req)->fs, ino);

	(void)fi;
	if (ret && ret != -EINVAL)
		pfs_log(LOG_WARNING, "release of inode %llu: %s (the next mount reclaims it)",
			  (unsigned long long)ino, strerror(-ret));
	fuse_reply_err(req, 0);
}

static void op_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	int ret = pfs_fs_fsync(mnt(req)->fs, ino, datasync);

	(void)fi;
	if (ret)
		reply_err(req, ret);
	else
		fuse_reply_err(req, 0);
}

static void op_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t off, off_t len,
			 struct fuse_file_info *fi)
{
	struct pfs_daemon *p = mnt(req);
	struct pfs_fs_cred cr = req_cred(req);
	struct req_groups g = { .big = NULL };
	int ret;

	(void)fi;
	if (off < 0 || len <= 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	setid_by_uid(&cr);
	if (setid_to_clear(req, ino, &cr, &g)) {
		struct pfs_fs_attr a = { 0 };

		ret = pfs_fs_setattr(p->fs, ino, &a, 0, &cr, NULL);
		req_groups_free(&g);
		if (ret) {
			reply_err(req, ret);
			return;
		}
		setid_cleared(p, ino);
	}
	req_groups_free(&g);
	ret = pfs_fs_fallocate(p->fs, ino, mode, (uint64_t)off, (uint64_t)len);
	if (ret)
		reply_err(req, ret);
	else
		fuse_reply_err(req, 0);
}

static void op_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
		     struct fuse_file_info *fi)
{
	uint64_t res;
	int ret;

	(void)fi;
	if (off < 0) {
		fuse_reply_err(req, ENXIO);
		return;
	}
	ret = pfs_fs_lseek(mnt(req)->fs, ino, (uint64_t)off, whence, &res);
	if (ret)
		reply_err(req, ret);
	else
		fuse_reply_lseek(req, (off_t)res);
}

/*
 * copy_file_range: cloned by the layer where it can. -EXDEV from the
 * layer means the two files are in different shards: the daemon copies
 * through a buffer itself (the kernel would fall back to a page-cache
 * copy on EXDEV too, at the cost of two more trips per chunk), so the
 * caller never sees EXDEV between two files of one posfs.
 */
static void op_copy_file_range(fuse_req_t req, fuse_ino_t ino_in, off_t off_in,
			       struct fuse_file_info *fi_in, fuse_ino_t ino_out, off_t off_out,
			       struct fuse_file_info *fi_out, size_t len, int flags)
{
	struct pfs_daemon *p = mnt(req);
	struct pfs_fs_cred cr = req_cred(req);
	struct req_groups g = { .big = NULL };
	size_t done = 0;
	bool clear;
	char *buf;
	ssize_t n;

	(void)fi_in;
	(void)fi_out;
	if (flags) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	setid_by_uid(&cr);
	clear = setid_to_clear(req, ino_out, &cr, &g);
	n = pfs_fs_copy_range(p->fs, ino_in, (uint64_t)off_in, ino_out, (uint64_t)off_out, len,
			      &cr);
	if (n != -EXDEV) {
		if (n > 0 && clear)
			setid_cleared(p, ino_out);
		if (n < 0)
			reply_err(req, (int)n);
		else
			fuse_reply_write(req, (size_t)n);
		req_groups_free(&g);
		return;
	}
	buf = malloc(COPY_CHUNK);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		req_groups_free(&g);
		return;
	}
	if (len > COPY_MAX)
		len = COPY_MAX;
	while (done < len) {
		size_t want = len - done < COPY_CHUNK ? len - done : COPY_CHUNK;

		n = pfs_fs_read(p->fs, ino_in, (uint64_t)off_in + done, want, buf);
		if (n <= 0)
			break;
		n = pfs_fs_write(p->fs, ino_out, (uint64_t)off_out + done, (size_t)n, buf, &cr);
		if (n <= 0)
			break;
		done += (size_t)n;
		if ((size_t)n < want)
			break;
	}
	free(buf);
	req_groups_free(&g);
	if (done && clear)
		setid_cleared(p, ino_out);
	if (n < 0 && !done)
		reply_err(req, (int)n);
	else
		fuse_reply_write(req, done);
}

/* ---- directories --------------------------------------------------------- */

static void op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct pfs_fs *fs = mnt(req)->fs;	/* req is gone after the reply */
	struct pfs_fs_attr a;
	int ret = pfs_fs_getattr(fs, ino, &a);

	if (!ret && !S_ISDIR(a.mode))
		ret = -ENOTDIR;
	if (!ret)
		ret = pfs_fs_inode_open(fs, ino);	/* design 3 */
	if (ret) {
		reply_err(req, ret);
		return;
	}
	fi->fh = ino;
	fi->cache_readdir = 0;
	if (fuse_reply_open(req, fi) == -ENOENT)	/* interrupted: no release will come */
		(void)pfs_fs_inode_release(fs, ino);
}

static void op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	op_release(req, ino, fi);
}

struct rd_ctx {
	fuse_req_t req;
	struct pfs_daemon *p;
	char *buf;
	size_t size, pos;
	bool plus;
	int err;
};

static bool is_dot(const char *name)
{
	return name[0] == '.' && (!name[1] || (name[1] == '.' && !name[2]));
}

static int rd_entry(void *arg, const char *name, uint64_t ino, unsigned type, uint64_t next)
{
	struct rd_ctx *c = arg;
	size_t room = c->size - c->pos, n;

	if (!c->plus) {
		struct stat st = { .st_ino = ino, .st_mode = type << 12 };

		n = fuse_add_direntry(c->req, c->buf + c->pos, room, name, &st, (off_t)next);
		if (n > room)
			return 1;
	} else {
		struct fuse_entry_param e = { 0 };
		struct pfs_fs_attr a;
		int ret;

		if (is_dot(name)) {
			/* the kernel takes no lookup for these: ino 0 */
			e.attr.st_ino = ino;
			e.attr.st_mode = type << 12;
		} else {
			ret = pfs_fs_getattr(c->p->fs, ino, &a);
			if (ret == -ENOENT)
				return 0;	/* removed meanwhile */
			if (ret) {
				c->err = ret;
				return 1;
			}
			fill_entry(c->p, &a, &e);
		}
		n = fuse_add_direntry_plus(c->req, c->buf + c->pos, room, name, &e, (off_t)next);
		if (n > room)
			return 1;
		if (e.ino) {
			ret = it_ref(e.ino);
			if (ret) {
				c->err = ret;
				return 1;	/* entry not sent: not counted */
			}
		}
	}
	c->pos += n;
	return 0;
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
	struct rd_ctx c = { .req = req, .p = mnt(req), .size = size, .plus = plus };
	int ret;

	c.buf = malloc(size ? size : 1);
	if (!c.buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	ret = pfs_fs_readdir(c.p->fs, ino, (uint64_t)off, rd_entry, &c);
	if (ret == -ENOENT)
		ret = 0;	/* removed while open: lists as empty */
	if (!ret && c.err && !c.pos)
		ret = c.err;
	if (!ret && off == 0 && !__atomic_load_n(&c.p->nodiratime, __ATOMIC_RELAXED))
		touch_atime(c.p, ino);
	if (ret)
		reply_err(req, ret);
	else
		fuse_reply_buf(req, c.buf, c.pos);
	free(c.buf);
}

static void op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, false);
}

static void op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			   struct fuse_file_info *fi)
{
	(void)fi;
	do_readdir(req, ino, size, off, true);
}

static void op_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	op_fsync(req, ino, datasync, fi);
}

static void op_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct pfs_fs_statfs s;
	struct statvfs v = { 0 };
	int ret = pfs_fs_statfs(mnt(req)->fs, &s);

	(void)ino;
	if (ret) {
		reply_err(req, ret);
		return;
	}
	v.f_bsize = s.bsize;
	v.f_frsize = s.bsize;
	v.f_blocks = s.blocks;
	v.f_bfree = s.bfree;
	v.f_bavail = s.bavail;
	v.f_files = s.files;
	v.f_ffree = s.ffree;
	v.f_favail = s.ffree;
	v.f_namemax = s.namemax;
	fuse_reply_statfs(req, &v);
}

/* ---- xattrs ---------------------------------------------------------------- */

static void op_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			size_t size, int flags)
{
	struct pfs_fs_cred cr = req_cred(req);
	struct req_groups g = { .big = NULL };
	struct pfs_fs_attr a;
	int ret;

	/* design 9: an access ACL by a caller other than uid 0 */
	if (cr.uid != 0 && !strcmp(name, "system.posix_acl_access") &&
	    !pfs_fs_getattr(mnt(req)->fs, ino, &a))
		req_groups_get(req, &a, &cr, &g);
	ret = pfs_fs_setxattr_cred(mnt(req)->fs, ino, name, value, size, flags, &cr);
	req_groups_free(&g);
	if (ret)
		reply_err(req, ret);
	else
		fuse_reply_err(req, 0);
}

static void op_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	char *buf = NULL;
	ssize_t n;

	if (size) {
		buf = malloc(size);
		if (!buf) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
	}
	n = pfs_fs_getxattr(mnt(req)->fs, ino, name, buf, size);
	if (n < 0)
		reply_err(req, (int)n);
	else if (!size)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	char *buf = NULL;
	ssize_t n;

	if (size) {
		buf = malloc(size);
		if (!buf) {
			fuse_reply_err(req, ENOMEM);
			return;
		}
	}
	n = pfs_fs_listxattr(mnt(req)->fs, ino, buf, size);
	if (n < 0)
		reply_err(req, (int)n);
	else if (!size)
		fuse_reply_xattr(req, (size_t)n);
	else
		fuse_reply_buf(req, buf, (size_t)n);
	free(buf);
}

static void op_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	int ret = pfs_fs_removexattr(mnt(req)->fs, ino, name);

	if (ret)
		reply_err(req, ret);
	else
		fuse_reply_err(req, 0);
}

/* ---- ioctls (design 8) ---------------------------------------------------- */

/* chattr flags with an xflag (FS_IOC_FSGETXATTR / FS_IOC_FSSETXATTR) */
static const struct {
	uint32_t fl, xfl;
} xflag_map[] = {
	{ FS_IMMUTABLE_FL, FS_XFLAG_IMMUTABLE },
	{ FS_APPEND_FL, FS_XFLAG_APPEND },
	{ FS_NODUMP_FL, FS_XFLAG_NODUMP },
	{ FS_NOATIME_FL, FS_XFLAG_NOATIME },
};
#define XFLAG_MAP_N	(sizeof(xflag_map) / sizeof(xflag_map[0]))

static uint32_t flags_to_xflags(uint32_t fl)
{
	uint32_t x = 0;

	for (size_t i = 0; i < XFLAG_MAP_N; i++)
		if (fl & xflag_map[i].fl)
			x |= xflag_map[i].xfl;
	return x;
}

/*
 * Set the chattr flags of ino named by mask (within POSFS_FL_USER) as
 * flags has them, keeping the rest. Only the owner or uid 0 (as holding
 * CAP_FOWNER): -EPERM; +i and +a the layer allows to uid 0 alone.
 * Compress and do-not-compress at once: -EINVAL.
 */
static int flags_set(fuse_req_t req, fuse_ino_t ino, uint32_t mask, uint32_t flags)
{
	struct pfs_daemon *p = mnt(req);
	struct pfs_fs_cred cr = req_cred(req);
	struct pfs_fs_attr a;
	int ret = pfs_fs_getattr(p->fs, ino, &a);

	if (ret)
		return ret;
	if (cr.uid != 0 && cr.uid != a.uid)
		return -EPERM;
	a.flags = (a.flags & ~mask) | (flags & mask);
	if ((a.flags & (FS_COMPR_FL | FS_NOCOMP_FL)) == (FS_COMPR_FL | FS_NOCOMP_FL))
		return -EINVAL;
	ret = pfs_fs_setattr(p->fs, ino, &a, PFS_FS_SET_FLAGS, &cr, NULL);
	if (!ret)
		(void)fuse_lowlevel_notify_inval_inode(p->se, ino, -1, 0);	/* its ctime */
	return ret;
}

/* FS_IOC_GETFLAGS: an int, whatever the macro says (FUSE copies 4 bytes
 * on the kernel's fileattr path; an older kernel's 8 hold the int first). */
static void ioctl_getflags(fuse_req_t req, fuse_ino_t ino, size_t out_bufsz)
{
	struct pfs_fs_attr a;
	uint32_t fl;
	int ret;

	if (out_bufsz < sizeof(fl)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	ret = pfs_fs_getattr(mnt(req)->fs, ino, &a);
	if (ret) {
		reply_err(req, ret);
		return;
	}
	fl = a.flags & POSFS_FL_USER;
	fuse_reply_ioctl(req, 0, &fl, sizeof(fl));
}

/* FS_IOC_SETFLAGS: the whole set, as chattr computes it from GETFLAGS. */
static void ioctl_setflags(fuse_req_t req, fuse_ino_t ino, const void *in_buf, size_t in_bufsz)
{
	uint32_t fl;
	int ret;

	if (in_bufsz < sizeof(fl)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	memcpy(&fl, in_buf, sizeof(fl));
	ret = fl & ~POSFS_FL_USER ? -EOPNOTSUPP : flags_set(req, ino, POSFS_FL_USER, fl);
	if (ret)
		reply_err(req, ret);
	else
		fuse_reply_ioctl(req, 0, NULL, 0);
}

static void ioctl_fsgetxattr(fuse_req_t req, fuse_ino_t ino, size_t out_bufsz)
{
	struct fsxattr x = { 0 };
	struct pfs_fs_attr a;
	int ret;

	if (out_bufsz < sizeof(x)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	ret = pfs_fs_getattr(mnt(req)->fs, ino, &a);
	if (ret) {
		reply_err(req, ret);
		return;
	}
	x.fsx_xflags = flags_to_xflags(a.flags);
	fuse_reply_ioctl(req, 0, &x, sizeof(x));
}

/* FS_IOC_FSSETXATTR: the xflags of xflag_map; no project ids. The extent
 * size hints mean nothing without their xflags, which are refused. */
static void ioctl_fssetxattr(fuse_req_t req, fuse_ino_t ino, const void *in_buf,
			     size_t in_bufsz)
{
	uint32_t mask = 0, fl = 0, known = 0;
	struct fsxattr x;
	int ret;

	if (in_bufsz < sizeof(x)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	memcpy(&x, in_buf, sizeof(x));
	for (size_t i = 0; i < XFLAG_MAP_N; i++) {
		mask |= xflag_map[i].fl;
		known |= xflag_map[i].xfl;
		if (x.fsx_xflags & xflag_map[i].xfl)
			fl |= xflag_map[i].fl;
	}
	if ((x.fsx_xflags & ~known) || x.fsx_projid)
		ret = -EOPNOTSUPP;
	else
		ret = flags_set(req, ino, mask, fl);
	if (ret)
		reply_err(req, ret);
	else
		fuse_reply_ioctl(req, 0, NULL, 0);
}

#define SCRUB_PIECE	(1u << 20)	/* bytes per pfs_fs_scrub call */

/*
 * The layer names no offset with its -EIO: find the first bad block of
 * [pos, pos + len) one block at a time. None found (rewritten or
 * truncated since): r says how far the range was checked, error 0.
 */
static int scrub_find_bad(struct pfs_daemon *p, uint64_t ino, uint64_t pos, size_t len, void *buf,
			  struct posfs_scrub_range *r)
{
	uint64_t end = pos + len, bs, next;
	struct pfs_fs_attr a;
	ssize_t n;
	int ret = pfs_fs_getattr(p->fs, ino, &a);

	if (ret)
		return ret;
	bs = a.blksize;
	for (; pos < end; pos = next) {
		next = (pos / bs + 1) * bs < end ? (pos / bs + 1) * bs : end;
		n = pfs_fs_scrub(p->fs, ino, pos, next - pos, buf);
		if (n == -EIO) {
			r->error = EIO;
			r->bad_offset = pos / bs * bs;
			r->bad_length = (uint32_t)bs;
			break;
		}
		if (n < 0)
			return (int)n;
		if ((uint64_t)n < next - pos) {
			pos += (uint64_t)n;	/* the end of the file */
			break;
		}
	}
	r->checked = pos - r->offset;
	return 0;
}

/* POSFS_IOC_SCRUB (include/posfs/ioctl.h) in pieces of SCRUB_PIECE, into
 * the thread's read buffer (a loop thread handles one request at a time). */
static int scrub_range(struct pfs_daemon *p, uint64_t ino, struct posfs_scrub_range *r)
{
	uint64_t len = r->length < POSFS_SCRUB_MAX ? r->length : POSFS_SCRUB_MAX;
	uint64_t pos = r->offset, end;
	void *buf = pfs_thread_buf_get(&read_buf, SCRUB_PIECE);

	r->checked = r->bad_offset = 0;
	r->error = 0;
	r->bad_length = 0;
	if (!buf)
		return -ENOMEM;
	if (len > UINT64_MAX - pos)
		len = UINT64_MAX - pos;
	end = pos + len;
	while (pos < end) {
		size_t want = end - pos < SCRUB_PIECE ? (size_t)(end - pos) : SCRUB_PIECE;
		ssize_t n = pfs_fs_scrub(p->fs, ino, pos, want, buf);

		if (n == -EIO)
			return scrub_find_bad(p, ino, pos, want, buf, r);
		if (n < 0)
			return (int)n;
		pos += (uint64_t)n;
		if ((size_t)n < want)
			break;		/* the end of the file */
	}
	r->checked = pos - r->offset;
	return 0;
}

static void ioctl_scrub(fuse_req_t req, fuse_ino_t ino, const void *in_buf, size_t in_bufsz,
			size_t out_bufsz)
{
	struct posfs_scrub_range r;
	int ret;

	if (in_bufsz < sizeof(r) || out_bufsz < sizeof(r)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	memcpy(&r, in_buf, sizeof(r));
	ret = scrub_range(mnt(req), ino, &r);
	if (ret)
		reply_err(req, ret);
	else
		fuse_reply_ioctl(req, 0, &r, sizeof(r));
}

/* POSFS_IOC_TRANSPORT (include/posfs/ioctl.h): on any inode, for anyone. */
static void ioctl_transport(fuse_req_t req, size_t out_bufsz)
{
	struct posfs_transport t = { 0 };

	if (out_bufsz < sizeof(t)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	pfs_uring_status(&t);
	pfs_wire_dev_ops(t.dev_ops);
	fuse_reply_ioctl(req, 0, &t, sizeof(t));
}

/* The atime policy of a POSFS_IOC_REMOUNT (checked). */
static void remount_atime(struct pfs_daemon *p, const struct posfs_remount *r)
{
	if (r->flags & POSFS_REMOUNT_ATIME) {
		enum pfs_atime cur = __atomic_load_n(&p->atime, __ATOMIC_RELAXED), want = cur;

		if (r->atime == POSFS_REMOUNT_NOATIME)
			want = POSFS_ATIME_NOATIME;
		else if (r->atime == POSFS_REMOUNT_STRICTATIME)
			want = POSFS_ATIME_STRICTATIME;
		else if (cur == POSFS_ATIME_NOATIME)
			want = POSFS_ATIME_RELATIME;
		__atomic_store_n(&p->atime, want, __ATOMIC_RELAXED);
	}
	if (r->flags & (POSFS_REMOUNT_NODIRATIME | POSFS_REMOUNT_DIRATIME))
		__atomic_store_n(&p->nodiratime, !!(r->flags & POSFS_REMOUNT_NODIRATIME),
				 __ATOMIC_RELAXED);
}

/* POSFS_IOC_REMOUNT (include/posfs/ioctl.h): the store, then the
 * daemon's own writes (atime) stop or go on, and the atime policy
 * changes unless the store refused. */
static void ioctl_remount(fuse_req_t req, fuse_ino_t ino, const void *in_buf, size_t in_bufsz)
{
	struct pfs_daemon *p = mnt(req);
	struct posfs_remount r;
	bool ro;
	int ret;

	if (fuse_req_ctx(req)->uid != 0) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if (ino != FUSE_ROOT_ID || in_bufsz < sizeof(r)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	memcpy(&r, in_buf, sizeof(r));
	if ((r.flags & ~(POSFS_REMOUNT_RDONLY | POSFS_REMOUNT_ATIME | POSFS_REMOUNT_NODIRATIME |
			 POSFS_REMOUNT_DIRATIME)) ||
	    (r.flags & POSFS_REMOUNT_NODIRATIME && r.flags & POSFS_REMOUNT_DIRATIME) ||
	    (r.flags & POSFS_REMOUNT_ATIME ? r.atime > POSFS_REMOUNT_STRICTATIME : r.atime)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	ro = r.flags & POSFS_REMOUNT_RDONLY;
	ret = pfs_store_set_readonly(p->st, ro);
	if (ro || !ret)
		__atomic_store_n(&p->readonly, ro, __ATOMIC_RELEASE);
	if (!ret)
		remount_atime(p, &r);
	if (ret)
		pfs_log(LOG_ERR, "remount %s: %s", ro ? "read-only" : "read-write",
			ret == -EROFS ? "the device was opened read-only" : strerror(-ret));
	else
		pfs_log(LOG_INFO, "remounted %s", ro ? "read-only" : "read-write");
	if (ret)
		reply_err(req, ret);
	else
		fuse_reply_ioctl(req, 0, NULL, 0);
}

/* FS_IOC_GETFSLABEL, as ext4's: on any inode, for anyone; the label in
 * a buffer of FSLABEL_MAX bytes, NUL padded. */
static void ioctl_getfslabel(fuse_req_t req, size_t out_bufsz)
{
	char out[FSLABEL_MAX] = { 0 };

	_Static_assert(POSFS_LABEL_SIZE < FSLABEL_MAX, "a label fits FSLABEL_MAX");
	if (out_bufsz < sizeof(out)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	pfs_store_label(mnt(req)->st, out);
	fuse_reply_ioctl(req, 0, out, sizeof(out));
}

/* FS_IOC_SETFSLABEL, as ext4's: uid 0 only (as holding CAP_SYS_ADMIN),
 * EPERM; longer than the superblock's field, EINVAL; read-only, EROFS.
 * Both superblock copies are written and flushed before the reply. */
static void ioctl_setfslabel(fuse_req_t req, const void *in_buf, size_t in_bufsz)
{
	struct pfs_daemon *p = mnt(req);
	char label[FSLABEL_MAX];
	int ret;

	if (fuse_req_ctx(req)->uid != 0) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if (in_bufsz < sizeof(label)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	memcpy(label, in_buf, sizeof(label));
	if (strnlen(label, sizeof(label)) > POSFS_LABEL_SIZE) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	ret = pfs_store_set_label(p->st, label);
	if (ret) {
		if (ret != -EROFS)
			pfs_log(LOG_ERR, "setting the label: %s", strerror(-ret));
		reply_err(req, ret);
		return;
	}
	pfs_log(LOG_INFO, "label set to '%s'", label);
	fuse_reply_ioctl(req, 0, NULL, 0);
}

/* FITRIM (fstrim(8)), root only, on any inode of the mount: the free
 * space of the range goes to the device as discards (pfs_store_trim);
 * range.len comes back as the bytes discarded, as ext4 answers. */
static void ioctl_fitrim(fuse_req_t req, const void *in_buf, size_t in_bufsz, size_t out_bufsz)
{
	struct pfs_daemon *p = mnt(req);
	struct fstrim_range r;
	uint64_t trimmed;
	int ret;

	if (fuse_req_ctx(req)->uid != 0) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if (in_bufsz < sizeof(r) || out_bufsz < sizeof(r)) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	memcpy(&r, in_buf, sizeof(r));
	ret = pfs_store_trim(p->st, r.start, r.len, r.minlen, &trimmed);
	if (ret && ret != -EOPNOTSUPP && ret != -EINVAL && ret != -EROFS)
		pfs_log(LOG_ERR, "trim: %s", strerror(-ret));
	if (ret) {
		reply_err(req, ret);
		return;
	}
	r.len = trimmed;
	fuse_reply_ioctl(req, 0, &r, sizeof(r));
}

/*
 * Restricted ioctls only: in_buf and out_bufsz are what _IOC_SIZE(cmd)
 * says. The arguments have one layout for 32- and 64-bit callers, so
 * FUSE_IOCTL_COMPAT needs nothing; FS_IOC32_*FLAGS are a 32-bit caller's
 * names of the same requests.
 */
static void op_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg,
		     struct fuse_file_info *fi, unsigned flags, const void *in_buf,
		     size_t in_bufsz, size_t out_bufsz)
{
	(void)arg;
	(void)fi;
	(void)flags;
	if (cmd == FS_IOC_GETFLAGS || cmd == FS_IOC32_GETFLAGS)
		ioctl_getflags(req, ino, out_bufsz);
	else if (cmd == FS_IOC_SETFLAGS || cmd == FS_IOC32_SETFLAGS)
		ioctl_setflags(req, ino, in_buf, in_bufsz);
	else if (cmd == FS_IOC_FSGETXATTR)
		ioctl_fsgetxattr(req, ino, out_bufsz);
	else if (cmd == FS_IOC_FSSETXATTR)
		ioctl_fssetxattr(req, ino, in_buf, in_bufsz);
	else if (cmd == FITRIM)
		ioctl_fitrim(req, in_buf, in_bufsz, out_bufsz);
	else if (cmd == POSFS_IOC_SCRUB)
		ioctl_scrub(req, ino, in_buf, in_bufsz, out_bufsz);
	else if (cmd == POSFS_IOC_TRANSPORT)
		ioctl_transport(req, out_bufsz);
	else if (cmd == POSFS_IOC_REMOUNT)
		ioctl_remount(req, ino, in_buf, in_bufsz);
	else if (cmd == FS_IOC_GETFSLABEL)
		ioctl_getfslabel(req, out_bufsz);
	else if (cmd == FS_IOC_SETFSLABEL)
		ioctl_setfslabel(req, in_buf, in_bufsz);
	else
		fuse_reply_err(req, ENOTTY);
}

/* ---- requests libfuse 3.14 does not know (wire.c) ----------------------- */

static void timeout_split(double t, uint64_t *sec, uint32_t *nsec)
{
	if (t <= 0) {
		*sec = 0;
		*nsec = 0;
		return;
	}
	*sec = t >= (double)UINT64_MAX ? UINT64_MAX : (uint64_t)t;
	*nsec = (uint32_t)((t - (double)*sec) * 1e9);
	if (*nsec >= 1000000000u)
		*nsec = 999999999u;
}

static void attr_to_fuse(const struct pfs_fs_attr *a, struct fuse_attr *fa)
{
	memset(fa, 0, sizeof(*fa));
	fa->ino = a->ino;
	fa->size = a->size;
	fa->blocks = a->blocks;
	fa->atime = (uint64_t)a->atime.sec;
	fa->mtime = (uint64_t)a->mtime.sec;
	fa->ctime = (uint64_t)a->ctime.sec;
	fa->atimensec = a->atime.nsec;
	fa->mtimensec = a->mtime.nsec;
	fa->ctimensec = a->ctime.nsec;
	fa->mode = a->mode;
	fa->nlink = a->nlink;
	fa->uid = a->uid;
	fa->gid = a->gid;
	fa->rdev = (uint32_t)a->rdev;
	fa->blksize = a->blksize;
}

/* Design 3 and 2 for O_TMPFILE: the layer counts the open, the table the
 * lookup; the reply is CREATE's (do_open's fh and cache flag). */
int pfs_ops_tmpfile(uint64_t dir, uint32_t uid, uint32_t gid, const struct fuse_create_in *in,
		    struct pfs_wire_create_out *out)
{
	struct pfs_daemon *p = wire_mnt;
	struct pfs_fs_cred cr = { .uid = uid, .gid = gid, .umask = in->umask };
	struct pfs_fs_attr a;
	int ret;

	if (!p)
		return -ENOSYS;
	pfs_readahead(p);
	ret = pfs_fs_tmpfile(p->fs, dir, in->mode & 07777, (int)in->flags, &cr, &a);
	if (ret)
		return ret;
	ret = it_ref(a.ino);
	if (ret) {
		(void)pfs_fs_inode_release(p->fs, a.ino);
		return ret;
	}
	memset(out, 0, sizeof(*out));
	out->entry.nodeid = a.ino;
	out->entry.generation = a.generation;
	timeout_split(p->entry_timeout, &out->entry.entry_valid, &out->entry.entry_valid_nsec);
	timeout_split(p->attr_timeout, &out->entry.attr_valid, &out->entry.attr_valid_nsec);
	attr_to_fuse(&a, &out->entry.attr);
	out->open.fh = a.ino;
	out->open.open_flags = FOPEN_KEEP_CACHE;
	if (p->debug)
		pfs_log(LOG_DEBUG, "TMPFILE in directory %" PRIu64 ": inode %" PRIu64 ", mode 0%o",
			dir, a.ino, a.mode);
	return 0;
}

void pfs_ops_tmpfile_lost(uint64_t ino)
{
	it_forget(ino, 1);
	(void)pfs_fs_inode_release(wire_mnt->fs, ino);
}

/* chattr flags that statx(2) reports, as ext4's ext4_getattr. */
static const struct {
	uint32_t fl;
	uint64_t attr;
} statx_attrs[] = {
	{ FS_COMPR_FL, STATX_ATTR_COMPRESSED },
	{ FS_IMMUTABLE_FL, STATX_ATTR_IMMUTABLE },
	{ FS_APPEND_FL, STATX_ATTR_APPEND },
	{ FS_NODUMP_FL, STATX_ATTR_NODUMP },
};

static struct pfs_fuse_sx_time sx_time(struct pfs_timespec t)
{
	return (struct pfs_fuse_sx_time){ .tv_sec = t.sec, .tv_nsec = t.nsec };
}

/*
 * statx(2): every basic field and the creation time (the onode's btime,
 * set at create and kept), whatever the request's mask asks (the kernel
 * takes the basic ones to refresh its cache); attributes from the chattr
 * flags, attributes_mask those four.
 */
int pfs_ops_statx(uint64_t ino, const struct pfs_fuse_statx_in *in, struct pfs_fuse_statx_out *out)
{
	struct pfs_daemon *p = wire_mnt;
	struct pfs_fuse_statx *sx = &out->stat;
	struct pfs_fs_attr a;
	int ret;

	(void)in;
	if (!p)
		return -ENOSYS;
	ret = pfs_fs_getattr(p->fs, ino, &a);
	if (ret)
		return ret;
	memset(out, 0, sizeof(*out));
	timeout_split(p->attr_timeout, &out->attr_valid, &out->attr_valid_nsec);
	sx->mask = STATX_BASIC_STATS | STATX_BTIME;
	sx->blksize = a.blksize;
	for (size_t i = 0; i < sizeof(statx_attrs) / sizeof(statx_attrs[0]); i++) {
		sx->attributes_mask |= statx_attrs[i].attr;
		if (a.flags & statx_attrs[i].fl)
			sx->attributes |= statx_attrs[i].attr;
	}
	sx->nlink = a.nlink;
	sx->uid = a.uid;
	sx->gid = a.gid;
	sx->mode = (uint16_t)a.mode;
	sx->ino = a.ino;
	sx->size = a.size;
	sx->blocks = a.blocks;
	sx->atime = sx_time(a.atime);
	sx->btime = sx_time(a.btime);
	sx->ctime = sx_time(a.ctime);
	sx->mtime = sx_time(a.mtime);
	sx->rdev_major = major(a.rdev);
	sx->rdev_minor = minor(a.rdev);
	if (p->debug)	/* -d: libfuse prints none of the requests it does not know */
		pfs_log(LOG_DEBUG, "STATX inode %" PRIu64 ": mask 0x%x, attributes 0x%" PRIx64
			" of 0x%" PRIx64 ", btime %" PRId64 ".%09u", ino, sx->mask,
			sx->attributes, sx->attributes_mask, sx->btime.tv_sec, sx->btime.tv_nsec);
	return 0;
}

/*
 * No access (default_permissions is always on: the kernel checks modes
 * and ACLs and never sends it), no getlk/setlk/flock (locks are
 * kernel-local), no poll, bmap.
 */
const struct fuse_lowlevel_ops pfs_ops = {
	.init = op_init,
	.destroy = op_destroy,
	.lookup = op_lookup,
	.forget = op_forget,
	.forget_multi = op_forget_multi,
	.getattr = op_getattr,
	.setattr = op_setattr,
	.readlink = op_readlink,
	.mknod = op_mknod,
	.mkdir = op_mkdir,
	.unlink = op_unlink,
	.rmdir = op_rmdir,
	.symlink = op_symlink,
	.rename = op_rename,
	.link = op_link,
	.open = op_open,
	.create = op_create,
	.read = op_read,
	.write = op_write,
	.release = op_release,
	.fsync = op_fsync,
	.opendir = op_opendir,
	.readdir = op_readdir,
	.readdirplus = op_readdirplus,
	.releasedir = op_releasedir,
	.fsyncdir = op_fsyncdir,
	.statfs = op_statfs,
	.setxattr = op_setxattr,
	.getxattr = op_getxattr,
	.listxattr = op_listxattr,
	.removexattr = op_removexattr,
	.fallocate = op_fallocate,
	.lseek = op_lseek,
	.copy_file_range = op_copy_file_range,
	.ioctl = op_ioctl,
};
