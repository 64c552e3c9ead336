/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Directories: entries, create, link, unlink, rmdir, rename, readdir.
 *
 * A directory's entries live in its omap, two records each (format.h,
 * coded by dent.c):
 *   'n' + name        -> struct pfs_ddent: le64 ino, u8 DT_* type, le64 seq
 *   's' + be64(seq)   -> name
 * seq numbers the entries of one directory in the order they were added
 * (an entry renamed within the directory keeps its own, one moved in from
 * another gets a new one). The next seq is one past the largest
 * 's' key (pfs_dent_seq_next, then kept in memory while mounted), or
 * POSFS_DENT_FIRST_SEQ = 3: cookies 1 and 2 are "." and "..", which are
 * not stored ("." is the directory, ".." its onode's parent field).
 * readdir walks the 's' keys after the cookie, so an entry present during
 * a whole listing is returned exactly once.
 *
 * Invariants:
 *  1. Each 'n' record has exactly one 's' record with its seq and name,
 *     and the other way round; both change in one transaction.
 *  2. A directory's nlink is 2 + its subdirectories; a directory's parent
 *     field names the one directory holding an entry for it (the root:
 *     itself). A non-directory's nlink is the number of its entries. A
 *     directory removed while open (rmdir, a rename over it) is an orphan
 *     with nlink 0 and no entries (fs.c invariant 1), and none are added
 *     to it (dir_stat).
 *  3. Names are 1..POSFS_NAME_MAX bytes without '/' or NUL, never "." or
 *     "..": checked before anything else, so a longer name is never
 *     stored and gives -ENAMETOOLONG everywhere.
 *  4. The check-then-change logic of an operation runs under the locks of
 *     the directories it changes (and of a directory it removes), taken in
 *     stripe order; renames between directories also hold rename_lock, so
 *     the '..' chains a loop check reads cannot change meanwhile.
 *  5. chattr +i and +a (fs.h) are checked where the VFS's may_create and
 *     may_delete check them for ext4, after the lookups (-ENOENT, -EEXIST
 *     first) and before the type checks (-EISDIR, -ENOTDIR, -ENOTEMPTY):
 *     an entry may be added to a directory that is not immutable, removed
 *     (unlink, rmdir, either side of a rename) only from one neither
 *     immutable nor append-only, and only when its inode is neither.
 *  6. A rename within one directory keeps the entry's seq: a listing
 *     that renames what it reads (a loop over readdir that renames each
 *     entry) meets each entry once and ends, after no more entries than
 *     the directory held and those added to it meanwhile.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/acl.h"
#include "fs/fs_internal.h"
#include "fs/place.h"

/* ---- names and entries ------------------------------------------------- */

/* 0, or 1 for "." and 2 for ".." (then *len too), or -errno (invariant 3). */
static int name_check(const char *name, size_t *len)
{
	size_t n = strnlen(name, POSFS_NAME_MAX + 1);

	if (n > POSFS_NAME_MAX)
		return -ENAMETOOLONG;
	if (!n)
		return -ENOENT;
	if (memchr(name, '/', n))
		return -EINVAL;
	*len = n;
	if (name[0] == '.' && (n == 1 || (n == 2 && name[1] == '.')))
		return (int)n;
	return 0;
}

/* Keys and values of one entry's records, alive until submit. */
struct dent_rec {
	uint8_t nkey[PFS_DENT_NAME_KEY_MAX];
	size_t nklen;
	uint8_t val[POSFS_DENT_VLEN];
	uint8_t skey[POSFS_DENT_SEQ_KEY_LEN];
};

static void dent_rec_fill(struct dent_rec *r, const char *name, size_t nlen,
			  const struct pfs_dent *d)
{
	r->nklen = pfs_dent_name_key(r->nkey, name, nlen);
	pfs_dent_encode(r->val, d);
	pfs_dent_seq_key(r->skey, d->seq);
}

static int dent_get(struct pfs_fs *fs, uint64_t dir, const char *name, size_t nlen,
		    struct pfs_dent *d)
{
	uint8_t key[PFS_DENT_NAME_KEY_MAX], val[POSFS_DENT_VLEN];
	size_t klen = pfs_dent_name_key(key, name, nlen);
	ssize_t r;

	r = pfs_store_omap_get(fs->st, dir, key, klen, val, sizeof(val));
	if (r < 0)
		return (int)r;
	return pfs_dent_decode(val, (size_t)r, d);
}

/* Add the records of a new entry (r filled) to t. */
static void dent_add(struct pfs_txn *t, uint64_t dir, const struct dent_rec *r)
{
	pfs_txn_omap_insert(t, dir, r->nkey, r->nklen, r->val, POSFS_DENT_VLEN);
	pfs_txn_omap_insert(t, dir, r->skey, POSFS_DENT_SEQ_KEY_LEN, r->nkey + 1, r->nklen - 1);
}

static void dent_del(struct pfs_txn *t, uint64_t dir, const struct dent_rec *r)
{
	pfs_txn_omap_rm(t, dir, r->nkey, r->nklen);
	pfs_txn_omap_rm(t, dir, r->skey, POSFS_DENT_SEQ_KEY_LEN);
}

static uint8_t dt_of(uint32_t mode)
{
	return (uint8_t)((mode & S_IFMT) >> 12);
}

/* The next seq of dir, with dir's lock held (-EOVERFLOW: none left). */
static int seq_next(struct pfs_fs *fs, uint64_t dir, uint64_t *seq)
{
	uint64_t n = pfs_fs_seq_get(fs, dir);

	if (n) {
		*seq = n;
		return 0;
	}
	return pfs_dent_seq_next(fs->st, dir, seq);
}

/* dir must be an existing directory. */
static int dir_stat(struct pfs_fs *fs, uint64_t dir, struct pfs_onode *o)
{
	int ret = pfs_fs_stat(fs, dir, o);

	if (!ret && !S_ISDIR(o->mode))
		ret = -ENOTDIR;
	if (!ret && !o->nlink)
		ret = -ENOENT;	/* removed while open: nothing goes in */
	return ret;
}

static int empty_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	(void)arg;
	(void)val;
	(void)vlen;
	return klen >= 1 && ((const uint8_t *)key)[0] == POSFS_DENT_NAME ? 1 : 2;
}

/* 1 when dir has no entries, 0 when it has, or -errno. */
static int dir_empty(struct pfs_fs *fs, uint64_t dir)
{
	static const uint8_t after[1] = { POSFS_DENT_NAME };
	int ret = pfs_store_omap_iterate(fs->st, dir, after, 1, empty_cb, NULL);

	return ret < 0 ? ret : ret != 1;
}

/* ---- lookup ------------------------------------------------------------ */

int pfs_fs_lookup(struct pfs_fs *fs, uint64_t dir, const char *name, struct pfs_fs_attr *attr)
{
	struct pfs_onode o;
	struct pfs_dent d;
	size_t nlen;
	int ret, dots = name_check(name, &nlen);

	if (dots < 0)
		return dots;
	ret = dir_stat(fs, dir, &o);
	if (ret)
		return ret;
	if (dots)
		return pfs_fs_getattr(fs, dots == 1 ? dir : o.parent, attr);
	ret = dent_get(fs, dir, name, nlen, &d);
	if (!ret)
		ret = pfs_fs_getattr(fs, d.ino, attr);
	return ret;
}

/* ---- a set of inode changes for one transaction ------------------------ */

struct touch {
	unsigned n;
	uint64_t ino[6];
	struct pfs_attr a[6];
	uint32_t mask[6];
};

/* The attributes to change for ino (its current nlink and parent loaded by
 * the caller through touch_load). */
static struct pfs_attr *touch_get(struct touch *tc, uint64_t ino, uint32_t mask)
{
	for (unsigned i = 0; i < tc->n; i++)
		if (tc->ino[i] == ino) {
			tc->mask[i] |= mask;
			return &tc->a[i];
		}
	tc->ino[tc->n] = ino;
	memset(&tc->a[tc->n], 0, sizeof(tc->a[0]));
	tc->mask[tc->n] = mask;
	return &tc->a[tc->n++];
}

static void touch_load(struct touch *tc, const struct pfs_onode *o)
{
	struct pfs_attr *a = touch_get(tc, o->oid, 0);

	a->nlink = o->nlink;
	a->parent = o->parent;
	a->mode = o->mode;
}

static void touch_emit(struct touch *tc, struct pfs_txn *t, struct pfs_timespec now)
{
	for (unsigned i = 0; i < tc->n; i++) {
		if (tc->mask[i] & PFS_ATTR_MTIME)
			tc->a[i].mtime = now;
		if (tc->mask[i] & PFS_ATTR_CTIME)
			tc->a[i].ctime = now;
		if (tc->mask[i])
			pfs_txn_setattr(t, tc->ino[i], &tc->a[i], tc->mask[i]);
	}
}

/* flags: PFS_SUBMIT_RESERVE for a transaction that gives space back */
static int submit(struct pfs_fs *fs, struct pfs_txn *t, const struct touch *tc,
		  const uint64_t *more, unsigned nmore, int flags)
{
	struct pfs_commit tok;
	int ret = pfs_store_submit(fs->st, t, flags, &tok);

	if (ret)
		return ret;
	pfs_fs_note_commit(fs, tc->ino, tc->n, &tok);
	if (nmore)
		pfs_fs_note_commit(fs, more, nmore, &tok);
	return 0;
}

/* ---- create ------------------------------------------------------------ */

/*
 * name NULL: an O_TMPFILE inode (pfs_fs_tmpfile), made an orphan in its
 * own transaction (fs.c invariant 1) and counted open before anyone can
 * know it; linkable says whether pfs_fs_link may name it. dir's times
 * stay, as ext4's.
 */
static int create_node(struct pfs_fs *fs, uint64_t dir, const char *name, uint32_t mode,
		       uint64_t rdev, const char *target, const struct pfs_fs_cred *cred,
		       bool linkable, struct pfs_fs_attr *attr)
{
	uint8_t okey[POSFS_ORPHAN_KEY_LEN];
	struct pfs_acl_new acl = { 0 };
	struct pfs_lockset ls;
	struct pfs_onode po;
	struct dent_rec rec;
	struct touch tc = { 0 };
	struct pfs_attr a = { 0 };
	struct pfs_timespec now;
	struct pfs_txn t;
	struct pfs_dent d;
	uint32_t shard;
	size_t nlen;
	int ret;

	ret = name ? name_check(name, &nlen) : 0;
	if (ret)
		return ret > 0 ? -EEXIST : ret;
	pfs_txn_init(&t);
	pfs_lockset_init(&ls, fs->dlock);
	pfs_lockset_add(&ls, dir);
	pfs_lockset_lock(&ls);
	ret = dir_stat(fs, dir, &po);
	if (ret)
		goto out;
	ret = name ? dent_get(fs, dir, name, nlen, &d) : -ENOENT;
	if (ret != -ENOENT) {
		ret = ret ? ret : -EEXIST;
		goto out;
	}
	ret = pfs_fs_fl_refuse(&po, FS_IMMUTABLE_FL);	/* invariant 5 */
	if (ret)
		goto out;
	if (S_ISDIR(mode) && po.nlink >= PFS_FS_LINK_MAX) {
		ret = -EMLINK;
		goto out;
	}
	shard = S_ISDIR(mode) ? pfs_place_dir(fs, dir) : POSFS_OID_SHARD(dir);
	ret = pfs_store_oid_alloc(fs->st, shard, &d.ino);
	if (!ret && name)
		ret = seq_next(fs, dir, &d.seq);
	/* the parent's default ACL, or the umask (acl.c) */
	if (!ret)
		ret = pfs_acl_inherit(fs, dir, &mode, cred ? cred->umask : 0, &acl);
	if (ret)
		goto out;
	d.type = dt_of(mode);
	now = pfs_fs_now();
	a.mode = mode;
	a.uid = cred ? cred->uid : 0;
	a.gid = cred ? cred->gid : 0;
	if (po.mode & S_ISGID) {
		a.gid = po.gid;
		if (S_ISDIR(mode))
			a.mode |= S_ISGID;
	} else if (!S_ISDIR(mode) && (a.mode & (S_ISGID | S_IXGRP)) == (S_ISGID | S_IXGRP) &&
		   a.uid != 0 && a.gid != (cred ? cred->gid : 0)) {
		a.mode &= ~(uint32_t)S_ISGID;	/* not in the group */
	}
	a.nlink = S_ISDIR(mode) ? 2 : name ? 1 : 0;
	a.rdev = (S_ISCHR(mode) || S_ISBLK(mode)) ? rdev : 0;
	a.atime = a.mtime = a.ctime = a.btime = now;
	a.parent = S_ISDIR(mode) ? dir : 0;
	a.attr_flags = po.attr_flags & PFS_FS_FL_INHERITED;
	pfs_txn_create(&t, d.ino, &a);
	pfs_acl_new_emit(&t, d.ino, &acl);	/* acl.c invariant 3 */
	if (target)
		pfs_txn_write(&t, d.ino, 0, strlen(target), target);
	if (!name) {
		pfs_fs_orphan_add(&t, d.ino, okey);
		ret = submit(fs, &t, &tc, &d.ino, 1, 0);
		if (!ret)
			ret = pfs_fs_tmpfile_opened(fs, d.ino, linkable);
		if (ret == -ENOMEM)
			(void)pfs_fs_reap(fs, d.ino);	/* never counted: nobody has it */
		if (!ret && attr)
			ret = pfs_fs_getattr(fs, d.ino, attr);
		goto out;
	}
	dent_rec_fill(&rec, name, nlen, &d);
	dent_add(&t, dir, &rec);
	touch_load(&tc, &po);
	touch_get(&tc, dir, PFS_ATTR_MTIME | PFS_ATTR_CTIME);
	if (S_ISDIR(mode))
		touch_get(&tc, dir, PFS_ATTR_NLINK)->nlink++;
	touch_emit(&tc, &t, now);
	ret = submit(fs, &t, &tc, &d.ino, 1, 0);
	if (ret)
		goto out;
	pfs_fs_seq_set(fs, dir, d.seq + 1);
	if (attr)
		ret = pfs_fs_getattr(fs, d.ino, attr);
out:
	pfs_lockset_unlock(&ls);
	pfs_txn_fini(&t);
	pfs_acl_new_free(&acl);
	return ret;
}

int pfs_fs_mknod(struct pfs_fs *fs, uint64_t dir, const char *name, uint32_t mode,
		 uint64_t rdev, const struct pfs_fs_cred *cred, struct pfs_fs_attr *attr)
{
	if (!(mode & S_IFMT))
		mode |= S_IFREG;
	switch (mode & S_IFMT) {
	case S_IFREG: case S_IFIFO: case S_IFSOCK: case S_IFCHR: case S_IFBLK:
		break;
	default:
		return -EINVAL;
	}
	return create_node(fs, dir, name, mode & (S_IFMT | 07777), rdev, NULL, cred, false, attr);
}

int pfs_fs_mkdir(struct pfs_fs *fs, uint64_t dir, const char *name, uint32_t mode,
		 const struct pfs_fs_cred *cred, struct pfs_fs_attr *attr)
{
	return create_node(fs, dir, name, S_IFDIR | (mode & 07777), 0, NULL, cred, false, attr);
}

int pfs_fs_symlink(struct pfs_fs *fs, uint64_t dir, const char *name, const char *target,
		   const struct pfs_fs_cred *cred, struct pfs_fs_attr *attr)
{
	size_t tlen = strnlen(target, PFS_FS_SYMLINK_MAX + 1);
	size_t nlen;
	int ret = name_check(name, &nlen);

	if (ret)
		return ret > 0 ? -EEXIST : ret;
	if (!tlen)
		return -ENOENT;
	if (tlen > PFS_FS_SYMLINK_MAX)
		return -ENAMETOOLONG;
	return create_node(fs, dir, name, S_IFLNK | 0777, 0, target, cred, false, attr);
}

int pfs_fs_tmpfile(struct pfs_fs *fs, uint64_t dir, uint32_t mode, int oflags,
		   const struct pfs_fs_cred *cred, struct pfs_fs_attr *attr)
{
	if ((mode & S_IFMT) && !S_ISREG(mode))
		return -EINVAL;
	return create_node(fs, dir, NULL, S_IFREG | (mode & 07777), 0, NULL, cred,
			   !(oflags & O_EXCL), attr);
}

ssize_t pfs_fs_readlink(struct pfs_fs *fs, uint64_t ino, char *buf, size_t cap)
{
	struct pfs_onode o;
	ssize_t r;
	int ret = pfs_fs_stat(fs, ino, &o);

	if (ret)
		return ret;
	if (!S_ISLNK(o.mode))
		return -EINVAL;
	if (cap > o.size)
		cap = o.size;
	r = pfs_store_read(fs->st, ino, 0, cap, buf);
	return r < 0 ? r : (ssize_t)o.size;
}

/* ---- link, unlink, rmdir ------------------------------------------------ */

int pfs_fs_link(struct pfs_fs *fs, uint64_t ino, uint64_t newdir, const char *newname,
		struct pfs_fs_attr *attr)
{
	uint8_t okey[POSFS_ORPHAN_KEY_LEN];
	struct pfs_lockset ls, il;
	bool tmp;
	struct pfs_onode po, o;
	struct touch tc = { 0 };
	struct dent_rec rec;
	struct pfs_txn t;
	struct pfs_dent d;
	size_t nlen;
	int ret;

	ret = name_check(newname, &nlen);
	if (ret)
		return ret > 0 ? -EEXIST : ret;
	pfs_txn_init(&t);
	pfs_lockset_init(&ls, fs->dlock);
	pfs_lockset_add(&ls, newdir);
	pfs_lockset_init(&il, fs->ilock);
	pfs_lockset_add(&il, ino);
	pfs_lockset_lock(&ls);
	pfs_lockset_lock(&il);
	ret = dir_stat(fs, newdir, &po);
	if (ret)
		goto out;
	ret = pfs_fs_stat(fs, ino, &o);
	if (ret)
		goto out;
	if (S_ISDIR(o.mode)) {
		ret = -EPERM;
		goto out;
	}
	/* an O_TMPFILE inode gets its first name; any other with nlink 0
	 * was unlinked and stays so (vfs_link: I_LINKABLE) */
	tmp = o.nlink == 0 && (o.flags & POSFS_ONODE_ORPHAN) && pfs_fs_linkable(fs, ino, false);
	if (o.nlink == 0 && !tmp) {
		ret = -ENOENT;
		goto out;
	}
	if (o.nlink >= PFS_FS_LINK_MAX) {
		ret = -EMLINK;
		goto out;
	}
	ret = dent_get(fs, newdir, newname, nlen, &d);
	if (ret != -ENOENT) {
		ret = ret ? ret : -EEXIST;
		goto out;
	}
	/* invariant 5; vfs_link refuses a new link to +i and +a too */
	ret = pfs_fs_fl_refuse(&po, FS_IMMUTABLE_FL);
	if (!ret)
		ret = pfs_fs_fl_refuse(&o, PFS_FS_FL_LOCKED);
	if (!ret)
		ret = seq_next(fs, newdir, &d.seq);
	if (ret)
		goto out;
	d.ino = ino;
	d.type = dt_of(o.mode);
	dent_rec_fill(&rec, newname, nlen, &d);
	dent_add(&t, newdir, &rec);
	touch_load(&tc, &po);
	touch_load(&tc, &o);
	touch_get(&tc, newdir, PFS_ATTR_MTIME | PFS_ATTR_CTIME);
	touch_get(&tc, ino, PFS_ATTR_NLINK | PFS_ATTR_CTIME)->nlink++;
	if (tmp) {
		/* fs.c invariant 1: off the orphan list with its first link */
		touch_get(&tc, ino, PFS_ATTR_ONODE_FLAGS)->onode_flags = 0;
		pfs_orphan_key(okey, ino);
		pfs_txn_omap_rm(&t, POSFS_OID(POSFS_OID_SHARD(ino), POSFS_LOCAL_ORPHANS), okey,
				sizeof(okey));
	}
	touch_emit(&tc, &t, pfs_fs_now());
	ret = submit(fs, &t, &tc, NULL, 0, 0);
	if (ret)
		goto out;
	if (tmp)
		(void)pfs_fs_linkable(fs, ino, true);
	pfs_fs_seq_set(fs, newdir, d.seq + 1);
	if (attr)
		ret = pfs_fs_getattr(fs, ino, attr);
out:
	pfs_lockset_unlock(&il);
	pfs_lockset_unlock(&ls);
	pfs_txn_fini(&t);
	return ret;
}

/*
 * Add to t the loss of one link of the non-directory o (touch loaded):
 * with its last link it goes, or becomes an orphan while open (fs.c
 * invariant 1), or, when large, becomes an orphan that the caller reaps
 * (pfs_fs_reap) once the transaction is in and the locks are dropped.
 * The caller holds o's inode lock.
 */
static void drop_link(struct pfs_fs *fs, struct pfs_txn *t, struct touch *tc,
		      const struct pfs_onode *o, uint8_t okey[POSFS_ORPHAN_KEY_LEN], bool *removed, bool *reap)
{
	struct pfs_attr *a = touch_get(tc, o->oid, PFS_ATTR_NLINK | PFS_ATTR_CTIME);

	*removed = false;
	*reap = false;
	if (--a->nlink)
		return;
	if (pfs_fs_opens(fs, o->oid)) {
		pfs_fs_orphan_add(t, o->oid, okey);
		return;
	}
	if (o->blocks >= PFS_FS_REAP_SECTORS) {
		/* large: an orphan now, removed in steps after the commit */
		pfs_fs_orphan_add(t, o->oid, okey);
		*reap = true;
		return;
	}
	/* removed: no setattr for it */
	for (unsigned i = 0; i < tc->n; i++)
		if (tc->ino[i] == o->oid)
			tc->mask[i] = 0;
	*removed = true;
}

int pfs_fs_unlink(struct pfs_fs *fs, uint64_t dir, const char *name)
{
	struct pfs_lockset ls, il;
	struct pfs_onode po, o;
	struct touch tc = { 0 };
	struct dent_rec rec;
	uint8_t okey[POSFS_ORPHAN_KEY_LEN];
	struct pfs_txn t;
	struct pfs_dent d;
	bool removed, reap = false;
	size_t nlen;
	int ret;

	ret = name_check(name, &nlen);
	if (ret)
		return ret == 1 ? -EISDIR : ret == 2 ? -ENOTEMPTY : ret;
	pfs_txn_init(&t);
	pfs_lockset_init(&ls, fs->dlock);
	pfs_lockset_add(&ls, dir);
	pfs_lockset_init(&il, fs->ilock);
	pfs_lockset_lock(&ls);
	ret = dir_stat(fs, dir, &po);
	if (!ret)
		ret = dent_get(fs, dir, name, nlen, &d);
	if (ret)
		goto out;
	pfs_lockset_add(&il, d.ino);
	pfs_lockset_lock(&il);
	ret = pfs_fs_stat(fs, d.ino, &o);
	if (!ret)
		ret = pfs_fs_fl_refuse(&po, PFS_FS_FL_LOCKED);	/* invariant 5 */
	if (!ret)
		ret = pfs_fs_fl_refuse(&o, PFS_FS_FL_LOCKED);
	if (ret)
		goto out;
	if (S_ISDIR(o.mode)) {
		ret = -EISDIR;
		goto out;
	}
	dent_rec_fill(&rec, name, nlen, &d);
	dent_del(&t, dir, &rec);
	touch_load(&tc, &po);
	touch_load(&tc, &o);
	touch_get(&tc, dir, PFS_ATTR_MTIME | PFS_ATTR_CTIME);
	drop_link(fs, &t, &tc, &o, okey, &removed, &reap);
	touch_emit(&tc, &t, pfs_fs_now());
	if (removed)
		pfs_txn_remove(&t, o.oid);
	/* a name goes, maybe an orphan record comes: works when full */
	ret = submit(fs, &t, &tc, NULL, 0, PFS_SUBMIT_RESERVE);
out:
	pfs_lockset_unlock(&il);
	pfs_lockset_unlock(&ls);
	pfs_txn_fini(&t);
	if (!ret && reap)
		ret = pfs_fs_reap(fs, o.oid);
	return ret;
}

/*
 * Lock the directories of ls plus the inode of an entry that must stay
 * what it was when looked up without the locks: retry until it does.
 * *d gets the entry (-ENOENT when there is none; ls then holds only the
 * directories, locked).
 */
static int lock_with_entry(struct pfs_fs *fs, struct pfs_lockset *ls, uint64_t dir,
			   const char *name, size_t nlen, struct pfs_dent *d)
{
	struct pfs_lockset base = *ls;
	struct pfs_dent d2;
	int ret;

	for (;;) {
		*ls = base;
		ret = dent_get(fs, dir, name, nlen, d);
		if (ret == -ENOENT) {
			pfs_lockset_lock(ls);
			ret = dent_get(fs, dir, name, nlen, d);
			if (ret == -ENOENT)
				return ret;
			pfs_lockset_unlock(ls);
			continue;
		}
		if (ret)
			return ret;
		pfs_lockset_add(ls, d->ino);
		pfs_lockset_lock(ls);
		ret = dent_get(fs, dir, name, nlen, &d2);
		if (!ret && d2.ino == d->ino) {
			*d = d2;
			return 0;
		}
		pfs_lockset_unlock(ls);
	}
}

/*
 * Add to t the end of the empty directory o (touch loaded), whose entry
 * goes: removed, or, while open, an orphan with nlink 0 (fs.c invariant 1)
 * that keeps its attributes and xattrs until its last release. The caller
 * holds o's inode lock.
 */
static void drop_dir(struct pfs_fs *fs, struct pfs_txn *t, struct touch *tc,
		     const struct pfs_onode *o, uint8_t okey[POSFS_ORPHAN_KEY_LEN])
{
	if (pfs_fs_opens(fs, o->oid)) {
		touch_load(tc, o);
		touch_get(tc, o->oid, PFS_ATTR_NLINK | PFS_ATTR_CTIME)->nlink = 0;
		pfs_fs_orphan_add(t, o->oid, okey);
		return;
	}
	pfs_txn_remove(t, o->oid);
}

int pfs_fs_rmdir(struct pfs_fs *fs, uint64_t dir, const char *name)
{
	struct pfs_lockset ls, il;
	struct pfs_onode po, o;
	struct touch tc = { 0 };
	struct dent_rec rec;
	uint8_t okey[POSFS_ORPHAN_KEY_LEN];
	struct pfs_txn t;
	struct pfs_dent d;
	bool il_locked = false;
	size_t nlen;
	int ret;

	ret = name_check(name, &nlen);
	if (ret)
		return ret == 1 ? -EINVAL : ret == 2 ? -ENOTEMPTY : ret;
	pfs_txn_init(&t);
	pfs_lockset_init(&ls, fs->dlock);
	pfs_lockset_add(&ls, dir);
	ret = dir_stat(fs, dir, &po);
	if (ret) {
		pfs_txn_fini(&t);
		return ret;
	}
	ret = lock_with_entry(fs, &ls, dir, name, nlen, &d);
	if (ret == -ENOENT)
		goto out;
	if (ret) {
		pfs_txn_fini(&t);
		return ret;
	}
	/* the open count is read under the inode lock (fs.c invariant 2) */
	pfs_lockset_init(&il, fs->ilock);
	pfs_lockset_add(&il, d.ino);
	pfs_lockset_lock(&il);
	il_locked = true;
	ret = dir_stat(fs, dir, &po);
	if (!ret)
		ret = pfs_fs_stat(fs, d.ino, &o);
	if (!ret)
		ret = pfs_fs_fl_refuse(&po, PFS_FS_FL_LOCKED);	/* invariant 5 */
	if (!ret)
		ret = pfs_fs_fl_refuse(&o, PFS_FS_FL_LOCKED);
	if (ret)
		goto out;
	if (!S_ISDIR(o.mode)) {
		ret = -ENOTDIR;
		goto out;
	}
	ret = dir_empty(fs, d.ino);
	if (ret < 0)
		goto out;
	if (!ret) {
		ret = -ENOTEMPTY;
		goto out;
	}
	dent_rec_fill(&rec, name, nlen, &d);
	dent_del(&t, dir, &rec);
	touch_load(&tc, &po);
	touch_get(&tc, dir, PFS_ATTR_MTIME | PFS_ATTR_CTIME | PFS_ATTR_NLINK)->nlink--;
	drop_dir(fs, &t, &tc, &o, okey);
	touch_emit(&tc, &t, pfs_fs_now());
	ret = submit(fs, &t, &tc, NULL, 0, PFS_SUBMIT_RESERVE);
out:
	if (il_locked)
		pfs_lockset_unlock(&il);
	pfs_lockset_unlock(&ls);
	pfs_txn_fini(&t);
	return ret;
}

/* ---- rename ------------------------------------------------------------ */

/* Is anc dir itself or one of its ancestors? 1, 0 or -errno (rename_lock
 * held). */
static int is_ancestor(struct pfs_fs *fs, uint64_t anc, uint64_t dir)
{
	struct pfs_onode o;
	int ret;

	for (unsigned depth = 0; depth < 100000; depth++) {
		if (dir == anc)
			return 1;
		if (dir == POSFS_ROOT_OID)
			return 0;
		ret = pfs_fs_stat(fs, dir, &o);
		if (ret)
			return ret;
		dir = o.parent;
	}
	return -EUCLEAN;
}

/*
 * One rename, in three phases: lock (rename_lock), validate (rename_check)
 * and build the transaction (rename_exchange or rename_move). The records
 * the transaction points at live here until it is submitted.
 */
struct rename_op {
	struct pfs_fs *fs;
	uint64_t dir, newdir;
	const char *name, *newname;
	size_t nlen, nnlen;
	bool cross, exchange, have_t;
	struct pfs_lockset dl, il;
	bool dl_locked, il_locked;
	struct pfs_onode dpo, npo, so, to;	/* the directories, source, target */
	struct pfs_dent sd, td;
	struct dent_rec srec, trec, nrec, xrec;
	struct touch tc;
	struct pfs_txn t;
	uint64_t nseq;
	bool nseq_new;			/* nseq was allocated (not the entry's own) */
	bool removed, reap;
	uint8_t okey[POSFS_ORPHAN_KEY_LEN];
};

/*
 * Lock both directories and the directories named by both entries (taken
 * again until the entries are the ones looked up before locking), then
 * the two inodes; load what the checks need. 0 or -errno.
 */
static int rename_lock(struct rename_op *op)
{
	struct pfs_fs *fs = op->fs;
	int ret, r2;

	for (;;) {
		struct pfs_dent a, b;
		int ra, rb;

		pfs_lockset_init(&op->dl, fs->dlock);
		pfs_lockset_add(&op->dl, op->dir);
		pfs_lockset_add(&op->dl, op->newdir);
		ra = dent_get(fs, op->dir, op->name, op->nlen, &a);
		rb = dent_get(fs, op->newdir, op->newname, op->nnlen, &b);
		if ((ra && ra != -ENOENT) || (rb && rb != -ENOENT))
			return ra && ra != -ENOENT ? ra : rb;
		if (!ra && a.type == DT_DIR)
			pfs_lockset_add(&op->dl, a.ino);
		if (!rb && b.type == DT_DIR)
			pfs_lockset_add(&op->dl, b.ino);
		pfs_lockset_lock(&op->dl);
		op->dl_locked = true;
		ret = dent_get(fs, op->dir, op->name, op->nlen, &op->sd);
		r2 = dent_get(fs, op->newdir, op->newname, op->nnlen, &op->td);
		if ((ret == ra && (ret || op->sd.ino == a.ino)) &&
		    (r2 == rb && (r2 || op->td.ino == b.ino)))
			break;
		pfs_lockset_unlock(&op->dl);
		op->dl_locked = false;
	}
	ret = dir_stat(fs, op->dir, &op->dpo);
	if (!ret)
		ret = dir_stat(fs, op->newdir, &op->npo);
	if (!ret)
		ret = dent_get(fs, op->dir, op->name, op->nlen, &op->sd);
	if (ret)
		return ret;
	r2 = dent_get(fs, op->newdir, op->newname, op->nnlen, &op->td);
	if (r2 && r2 != -ENOENT)
		return r2;
	op->have_t = !r2;
	pfs_lockset_init(&op->il, fs->ilock);
	pfs_lockset_add(&op->il, op->sd.ino);
	if (op->have_t)
		pfs_lockset_add(&op->il, op->td.ino);
	pfs_lockset_lock(&op->il);
	op->il_locked = true;
	ret = pfs_fs_stat(fs, op->sd.ino, &op->so);
	if (!ret && op->have_t)
		ret = pfs_fs_stat(fs, op->td.ino, &op->to);
	return ret;
}

/* What rename(2) refuses: 0 to go on, 1 when there is nothing to do (two
 * links of one inode), or -errno. */
static int rename_check(struct rename_op *op, unsigned int flags)
{
	int ret;

	if (op->exchange && !op->have_t)
		return -ENOENT;
	if (op->have_t && (flags & RENAME_NOREPLACE))
		return -EEXIST;
	if (op->have_t && op->sd.ino == op->td.ino)
		return 1;
	/* loops: a directory into its own subtree */
	if (op->cross && S_ISDIR(op->so.mode)) {
		ret = is_ancestor(op->fs, op->sd.ino, op->newdir);
		if (ret)
			return ret > 0 ? -EINVAL : ret;
	}
	if (op->cross && op->exchange && S_ISDIR(op->to.mode)) {
		ret = is_ancestor(op->fs, op->td.ino, op->dir);
		if (ret)
			return ret > 0 ? -EINVAL : ret;
	}
	/* invariant 5: the source's entry goes; the target's goes or comes */
	ret = pfs_fs_fl_refuse(&op->dpo, PFS_FS_FL_LOCKED);
	if (!ret)
		ret = pfs_fs_fl_refuse(&op->so, PFS_FS_FL_LOCKED);
	if (!ret)
		ret = pfs_fs_fl_refuse(&op->npo, op->have_t ? PFS_FS_FL_LOCKED : FS_IMMUTABLE_FL);
	if (!ret && op->have_t)
		ret = pfs_fs_fl_refuse(&op->to, PFS_FS_FL_LOCKED);
	if (ret)
		return ret;
	if (op->have_t && !op->exchange) {
		if (S_ISDIR(op->so.mode) && !S_ISDIR(op->to.mode))
			return -ENOTDIR;
		if (!S_ISDIR(op->so.mode) && S_ISDIR(op->to.mode))
			return -EISDIR;
		if (S_ISDIR(op->to.mode)) {
			ret = dir_empty(op->fs, op->td.ino);
			if (ret <= 0)
				return ret < 0 ? ret : -ENOTEMPTY;
		}
	}
	if (op->cross && S_ISDIR(op->so.mode) && !op->have_t && !op->exchange &&
	    op->npo.nlink >= PFS_FS_LINK_MAX)
		return -EMLINK;
	return 0;
}

/* A directory moves from one parent to another: its '..' and both link
 * counts follow. */
static void rename_reparent(struct rename_op *op, uint64_t ino, uint64_t from, uint64_t to)
{
	touch_get(&op->tc, ino, PFS_ATTR_PARENT)->parent = to;
	touch_get(&op->tc, from, PFS_ATTR_NLINK)->nlink--;
	touch_get(&op->tc, to, PFS_ATTR_NLINK)->nlink++;
}

/* RENAME_EXCHANGE: each name keeps its seq; the inodes swap. */
static void rename_exchange(struct rename_op *op)
{
	struct pfs_dent a = { .ino = op->td.ino, .type = op->td.type, .seq = op->sd.seq },
			b = { .ino = op->sd.ino, .type = op->sd.type, .seq = op->td.seq };

	dent_rec_fill(&op->srec, op->name, op->nlen, &a);
	dent_rec_fill(&op->trec, op->newname, op->nnlen, &b);
	pfs_txn_omap_set(&op->t, op->dir, op->srec.nkey, op->srec.nklen, op->srec.val,
			 POSFS_DENT_VLEN);
	pfs_txn_omap_set(&op->t, op->newdir, op->trec.nkey, op->trec.nklen, op->trec.val,
			 POSFS_DENT_VLEN);
	touch_get(&op->tc, op->td.ino, PFS_ATTR_CTIME);
	if (op->cross && S_ISDIR(op->so.mode))
		rename_reparent(op, op->sd.ino, op->dir, op->newdir);
	if (op->cross && S_ISDIR(op->to.mode))
		rename_reparent(op, op->td.ino, op->newdir, op->dir);
}

/*
 * A move, replacing the target if there is one. 0 or -errno. Within one
 * directory the entry keeps its seq, its place in the listing (invariant
 * 6); into another it gets a new one there, as a new entry does.
 */
static int rename_move(struct rename_op *op)
{
	struct pfs_dent nd;
	int ret = 0;

	op->nseq = op->sd.seq;
	op->nseq_new = op->cross;
	if (op->cross)
		ret = seq_next(op->fs, op->newdir, &op->nseq);
	if (ret)
		return ret;
	/* the old name goes */
	dent_rec_fill(&op->srec, op->name, op->nlen, &op->sd);
	dent_del(&op->t, op->dir, &op->srec);
	if (op->have_t) {
		/* the replaced entry's records go; its inode loses a link */
		dent_rec_fill(&op->xrec, op->newname, op->nnlen, &op->td);
		dent_del(&op->t, op->newdir, &op->xrec);
		if (S_ISDIR(op->to.mode)) {
			drop_dir(op->fs, &op->t, &op->tc, &op->to, op->okey);
			touch_get(&op->tc, op->newdir, PFS_ATTR_NLINK)->nlink--;
		} else {
			drop_link(op->fs, &op->t, &op->tc, &op->to, op->okey, &op->removed,
				  &op->reap);
		}
	}
	nd = (struct pfs_dent){ .ino = op->sd.ino, .type = op->sd.type, .seq = op->nseq };
	dent_rec_fill(&op->nrec, op->newname, op->nnlen, &nd);
	dent_add(&op->t, op->newdir, &op->nrec);
	if (S_ISDIR(op->so.mode) && op->cross)
		rename_reparent(op, op->sd.ino, op->dir, op->newdir);
	return 0;
}

int pfs_fs_rename(struct pfs_fs *fs, uint64_t dir, const char *name, uint64_t newdir,
		  const char *newname, unsigned int flags)
{
	struct rename_op *op;
	int ret, r2;
	size_t nlen, nnlen;

	if (flags & ~(unsigned)(RENAME_NOREPLACE | RENAME_EXCHANGE) ||
	    (flags & RENAME_NOREPLACE && flags & RENAME_EXCHANGE))
		return -EINVAL;
	ret = name_check(name, &nlen);
	r2 = name_check(newname, &nnlen);
	if (ret < 0 || r2 < 0)
		return ret < 0 ? ret : r2;
	if (ret || r2)
		return -EINVAL;		/* "." or ".." */
	op = calloc(1, sizeof(*op));
	if (!op)
		return -ENOMEM;
	*op = (struct rename_op){
		.fs = fs, .dir = dir, .newdir = newdir, .name = name, .newname = newname,
		.nlen = nlen, .nnlen = nnlen, .cross = dir != newdir,
		.exchange = flags & RENAME_EXCHANGE,
	};
	pfs_txn_init(&op->t);
	if (op->cross)
		pthread_mutex_lock(&fs->rename_lock);
	ret = rename_lock(op);
	if (!ret)
		ret = rename_check(op, flags);
	if (ret)
		goto out;	/* 1: nothing to do */
	touch_load(&op->tc, &op->dpo);
	touch_load(&op->tc, &op->npo);
	touch_load(&op->tc, &op->so);
	if (op->have_t)
		touch_load(&op->tc, &op->to);
	touch_get(&op->tc, dir, PFS_ATTR_MTIME | PFS_ATTR_CTIME);
	touch_get(&op->tc, newdir, PFS_ATTR_MTIME | PFS_ATTR_CTIME);
	touch_get(&op->tc, op->sd.ino, PFS_ATTR_CTIME);
	if (op->exchange)
		rename_exchange(op);
	else
		ret = rename_move(op);
	if (ret)
		goto out;
	touch_emit(&op->tc, &op->t, pfs_fs_now());
	if (op->removed)
		pfs_txn_remove(&op->t, op->td.ino);
	ret = submit(fs, &op->t, &op->tc, NULL, 0, 0);
	if (!ret && !op->exchange && op->nseq_new)
		pfs_fs_seq_set(fs, newdir, op->nseq + 1);
out:
	if (ret == 1)
		ret = 0;
	if (op->il_locked)
		pfs_lockset_unlock(&op->il);
	if (op->dl_locked)
		pfs_lockset_unlock(&op->dl);
	if (op->cross)
		pthread_mutex_unlock(&fs->rename_lock);
	pfs_txn_fini(&op->t);
	if (!ret && op->reap)
		ret = pfs_fs_reap(fs, op->td.ino);
	free(op);
	return ret;
}

/* ---- readdir ------------------------------------------------------------ */

#define RD_BATCH 64

struct rd_batch {
	unsigned n;
	uint64_t seq[RD_BATCH];
	uint8_t nlen[RD_BATCH];
	char name[RD_BATCH][POSFS_NAME_MAX + 1];
	bool bad_key;		/* a malformed 's' key was passed over */
};

static int rd_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct rd_batch *b = arg;

	int r = pfs_dent_seq_key_decode(key, klen, &b->seq[b->n]);

	if (r == -ENOENT)
		return 2;	/* past the 's' keys */
	if (r) {
		b->bad_key = true;	/* passed over, as the seq allocator does */
		return 0;
	}
	if (!vlen || vlen > POSFS_NAME_MAX)
		return -EUCLEAN;
	b->nlen[b->n] = (uint8_t)vlen;
	memcpy(b->name[b->n], val, vlen);
	b->name[b->n][vlen] = 0;
	return ++b->n == RD_BATCH ? 1 : 0;
}

int pfs_fs_readdir(struct pfs_fs *fs, uint64_t dir, uint64_t cookie, pfs_fs_dirent_fn fn,
		   void *arg)
{
	struct rd_batch *b;
	struct pfs_onode o;
	uint8_t after[POSFS_DENT_SEQ_KEY_LEN];
	int ret = dir_stat(fs, dir, &o);

	if (ret)
		return ret;
	if (cookie == 0 && fn(arg, ".", dir, DT_DIR, 1))
		return 0;
	if (cookie <= 1 && fn(arg, "..", o.parent, DT_DIR, 2))
		return 0;
	if (cookie < 2)
		cookie = 2;
	b = malloc(sizeof(*b));
	if (!b)
		return -ENOMEM;
	b->bad_key = false;
	for (;;) {
		int r;

		b->n = 0;
		pfs_dent_seq_key(after, cookie);
		r = pfs_store_omap_iterate(fs->st, dir, after, sizeof(after), rd_cb, b);
		if (b->bad_key) {	/* the listing goes on; the damage is told */
			pfs_store_report_damage(fs->st, PFS_DAMAGE_OBJECT, dir,
						"a malformed directory entry key");
			b->bad_key = false;
		}
		if (r < 0) {
			ret = r;
			break;
		}
		for (unsigned i = 0; i < b->n; i++) {
			struct pfs_dent d;

			/* gone or renamed since: skip it */
			ret = dent_get(fs, dir, b->name[i], b->nlen[i], &d);
			if (ret == -ENOENT || (!ret && d.seq != b->seq[i])) {
				ret = 0;
				cookie = b->seq[i];
				continue;
			}
			if (ret)
				goto out;
			if (fn(arg, b->name[i], d.ino, d.type, b->seq[i]))
				goto out;
			cookie = b->seq[i];
		}
		if (r != 1)
			break;
	}
out:
	free(b);
	return ret;
}
