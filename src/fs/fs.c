/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The namespace layer's mount state: inode attributes, open counts and
 * orphans, commit tokens for fsync, statfs, xattrs, and the striped locks
 * the other files use (lock order in fs_internal.h).
 *
 * Invariants:
 *  1. An inode is on its shard's orphan list (key 'o' + be64 ino in object
 *     POSFS_OID(shard, POSFS_LOCAL_ORPHANS)) exactly when its onode has
 *     POSFS_ONODE_ORPHAN, and then its nlink is 0. Both are set in the
 *     transaction that removes its last link, and both go (with the
 *     object) in the transaction of its last release, or at the next
 *     pfs_fs_open after a crash.
 *     An O_TMPFILE inode (pfs_fs_tmpfile) is made in that state, open,
 *     and leaves it only in the transaction of pfs_fs_link that gives
 *     it its first name (then it is an ordinary inode: no orphan flag,
 *     no record, nlink 1).
 *  2. An inode with nlink 0 and no open count does not exist: the
 *     transaction that removes the last link of an inode nobody has open
 *     removes the object too. Open counts change under the inode lock,
 *     and the unlink path reads them under the same lock.
 *  3. For every inode, state->local / state->global are the tokens of the
 *     last transactions touching it in its shard's WAL and in the global
 *     WAL; waiting for both makes everything submitted for it durable
 *     (commits of one WAL become durable in order). An inode with no state
 *     has had nothing submitted since mount, when everything was durable.
 *     (States are kept until close, in a table that doubles its buckets
 *     as it fills: a lookup costs the same at a million inodes as at ten.)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>

#include "plant.h"
#include "fs/acl.h"
#include "fs/fs_internal.h"

/* ---- locks ------------------------------------------------------------- */

static unsigned lock_index(uint64_t ino)
{
	uint64_t h = ino * UINT64_C(0x9e3779b97f4a7c15);

	return (unsigned)(h >> 56) % PFS_FS_LOCKS;
}

void pfs_lockset_init(struct pfs_lockset *ls, pthread_mutex_t *base)
{
	ls->base = base;
	ls->n = 0;
}

void pfs_lockset_add(struct pfs_lockset *ls, uint64_t ino)
{
	unsigned idx = lock_index(ino), i;

	for (i = 0; i < ls->n; i++)
		if (ls->idx[i] == idx)
			return;
	/* insertion sort: a handful of entries */
	for (i = ls->n; i > 0 && ls->idx[i - 1] > idx; i--)
		ls->idx[i] = ls->idx[i - 1];
	ls->idx[i] = idx;
	ls->n++;
}

void pfs_lockset_lock(struct pfs_lockset *ls)
{
	for (unsigned i = 0; i < ls->n; i++)
		pthread_mutex_lock(&ls->base[ls->idx[i]]);
}

void pfs_lockset_unlock(struct pfs_lockset *ls)
{
	for (unsigned i = ls->n; i > 0; i--)
		pthread_mutex_unlock(&ls->base[ls->idx[i - 1]]);
}

pthread_mutex_t *pfs_fs_ilock(struct pfs_fs *fs, uint64_t ino)
{
	return &fs->ilock[lock_index(ino)];
}

/* ---- inode state ------------------------------------------------------- */

/* The bucket of ino among n (a power of two). */
static size_t state_bucket(uint64_t ino, size_t n)
{
	return (size_t)((ino * UINT64_C(0x9e3779b97f4a7c15)) >> 32) & (n - 1);
}

/* With state_lock held: twice the buckets, so that a lookup stays one or
 * two steps however many inodes have states (a failed allocation keeps
 * the table as it is: longer chains, nothing lost). */
static void state_grow(struct pfs_fs *fs)
{
	size_t n = fs->state_buckets * 2;
	struct pfs_istate **t = calloc(n, sizeof(*t));

	if (!t)
		return;
	for (size_t b = 0; b < fs->state_buckets; b++) {
		struct pfs_istate *s = fs->state[b], *next;

		for (; s; s = next) {
			size_t nb = state_bucket(s->ino, n);

			next = s->next;
			s->next = t[nb];
			t[nb] = s;
		}
	}
	free(fs->state);
	fs->state = t;
	fs->state_buckets = n;
}

/* With state_lock held. NULL when create is false and there is none, or
 * out of memory. */
static struct pfs_istate *state_find(struct pfs_fs *fs, uint64_t ino, bool create)
{
	struct pfs_istate **pp = &fs->state[state_bucket(ino, fs->state_buckets)], *s;

	for (s = *pp; s; s = s->next)
		if (s->ino == ino)
			return s;
	if (!create)
		return NULL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return NULL;
	s->ino = ino;
	s->next = *pp;
	*pp = s;
	if (++fs->state_count > 2 * fs->state_buckets)
		state_grow(fs);
	return s;
}

void pfs_fs_note_commit(struct pfs_fs *fs, const uint64_t *inos, unsigned n,
			const struct pfs_commit *token)
{
	pthread_mutex_lock(&fs->state_lock);
	for (unsigned i = 0; i < n; i++) {
		struct pfs_istate *s = state_find(fs, inos[i], true);

		if (!s) {
			/* out of memory: fsync of this inode syncs the store */
			continue;
		}
		if (token->shard == POSFS_SHARD_GLOBAL) {
			s->global = *token;
			s->has_global = true;
		} else {
			s->local = *token;
			s->has_local = true;
		}
	}
	pthread_mutex_unlock(&fs->state_lock);
}

uint32_t pfs_fs_opens(struct pfs_fs *fs, uint64_t ino)
{
	struct pfs_istate *s;
	uint32_t n;

	pthread_mutex_lock(&fs->state_lock);
	s = state_find(fs, ino, false);
	n = s ? s->opens : 0;
	pthread_mutex_unlock(&fs->state_lock);
	return n;
}

int pfs_fs_tmpfile_opened(struct pfs_fs *fs, uint64_t ino, bool linkable)
{
	struct pfs_istate *s;

	pthread_mutex_lock(&fs->state_lock);
	s = state_find(fs, ino, true);
	if (s) {
		s->opens++;
		s->linkable = linkable;
	}
	pthread_mutex_unlock(&fs->state_lock);
	return s ? 0 : -ENOMEM;
}

bool pfs_fs_linkable(struct pfs_fs *fs, uint64_t ino, bool clear)
{
	struct pfs_istate *s;
	bool ok;

	pthread_mutex_lock(&fs->state_lock);
	s = state_find(fs, ino, false);
	ok = s && s->opens && s->linkable;
	if (s && clear)
		s->linkable = false;
	pthread_mutex_unlock(&fs->state_lock);
	return ok;
}

uint64_t pfs_fs_seq_get(struct pfs_fs *fs, uint64_t dir)
{
	struct pfs_istate *s;
	uint64_t n;

	pthread_mutex_lock(&fs->state_lock);
	s = state_find(fs, dir, false);
	n = s ? s->next_seq : 0;
	pthread_mutex_unlock(&fs->state_lock);
	return n;
}

void pfs_fs_seq_set(struct pfs_fs *fs, uint64_t dir, uint64_t next)
{
	struct pfs_istate *s;

	pthread_mutex_lock(&fs->state_lock);
	s = state_find(fs, dir, true);
	if (s)
		s->next_seq = next;
	pthread_mutex_unlock(&fs->state_lock);
}

/* ---- helpers ----------------------------------------------------------- */

struct pfs_timespec pfs_fs_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (struct pfs_timespec){ .sec = ts.tv_sec, .nsec = (uint32_t)ts.tv_nsec };
}

void pfs_fs_attr_from_onode(const struct pfs_fs *fs, const struct pfs_onode *o,
			    struct pfs_fs_attr *a)
{
	memset(a, 0, sizeof(*a));
	a->ino = o->oid;
	a->generation = o->generation;
	a->mode = o->mode;
	a->uid = o->uid;
	a->gid = o->gid;
	a->nlink = o->nlink;
	a->size = o->size;
	a->blocks = o->blocks;
	a->rdev = o->rdev;
	a->atime = o->atime;
	a->mtime = o->mtime;
	a->ctime = o->ctime;
	a->btime = o->btime;
	a->flags = o->attr_flags;
	a->blksize = fs->block_size;
	if (S_ISDIR(o->mode)) {
		/* one block per 128 entries, at least one */
		uint64_t entries = (o->omap_count - o->xattr_omap_count) / 2;

		a->size = (uint64_t)fs->block_size * (1 + entries / 128);
		a->blocks = a->size / 512;
	}
}

bool pfs_fs_cred_kills(const struct pfs_fs_cred *cred)
{
	if (!cred)
		return false;
	if (cred->setid == PFS_FS_SETID_BY_UID)
		return cred->uid != 0;
	return cred->setid == PFS_FS_SETID_CLEAR;
}

bool pfs_fs_cred_in_group(const struct pfs_fs_cred *cred, uint32_t gid)
{
	if (!cred)
		return false;
	if (cred->gid == gid)
		return true;
	for (uint32_t i = 0; cred->groups && i < cred->ngroups; i++)
		if (cred->groups[i] == gid)
			return true;
	return false;
}

/* setattr_should_drop_sgid, capable meaning CAP_FSETID */
static bool drop_sgid(uint32_t mode, uint32_t gid, const struct pfs_fs_cred *cred, bool capable)
{
	if (!(mode & S_ISGID))
		return false;
	if (mode & S_IXGRP)
		return true;
	return !capable && !pfs_fs_cred_in_group(cred, gid);
}

uint32_t pfs_fs_kill_suid(uint32_t mode, uint32_t gid, const struct pfs_fs_cred *cred)
{
	uint32_t kill = 0;

	if (!S_ISREG(mode) || !pfs_fs_cred_kills(cred))
		return 0;
	if (mode & S_ISUID)
		kill |= S_ISUID;
	if (drop_sgid(mode, gid, cred, false))
		kill |= S_ISGID;
	return kill;
}

/* The kernel's kill of a chown (chown_common) of a non-directory. */
static uint32_t kill_chown(uint32_t mode, uint32_t gid, const struct pfs_fs_cred *cred)
{
	uint32_t kill = 0;

	if (S_ISDIR(mode))
		return 0;
	if (mode & S_ISUID)
		kill |= S_ISUID;
	if (drop_sgid(mode, gid, cred, cred->uid == 0))
		kill |= S_ISGID;
	return kill;
}

void pfs_fs_orphan_add(struct pfs_txn *t, uint64_t ino, uint8_t key[POSFS_ORPHAN_KEY_LEN])
{
	struct pfs_attr a = { .onode_flags = POSFS_ONODE_ORPHAN };

	pfs_orphan_key(key, ino);
	pfs_txn_setattr(t, ino, &a, PFS_ATTR_ONODE_FLAGS);
	pfs_txn_omap_set(t, POSFS_OID(POSFS_OID_SHARD(ino), POSFS_LOCAL_ORPHANS), key,
			 POSFS_ORPHAN_KEY_LEN, "", 0);
}

int pfs_fs_reap(struct pfs_fs *fs, uint64_t ino)
{
	return pfs_fs_remove_steps(fs->st, ino, true);
}

/*
 * Every step gives space back, so it may take the metadata reserve
 * (PFS_SUBMIT_RESERVE). A step too large for a WAL (-E2BIG) or for the
 * reserve of a full shard (-ENOSPC: freeing a long run of extents can
 * need more free-tree nodes than are left) is cut in half, down to one
 * block; a step that works lets the next one grow again.
 */
int pfs_fs_remove_steps(struct pfs_store *st, uint64_t ino, bool listed)
{
	const uint64_t max_step = 64ull << 20;
	uint64_t list = POSFS_OID(POSFS_OID_SHARD(ino), POSFS_LOCAL_ORPHANS);
	uint64_t bs = pfs_store_super(st)->block_size, step = max_step;
	struct pfs_onode o;
	struct pfs_txn t;
	uint8_t key[POSFS_ORPHAN_KEY_LEN];
	int ret, err;

	pfs_orphan_key(key, ino);
	pfs_txn_init(&t);
	for (;;) {
		pfs_txn_reset(&t);
		pfs_txn_remove(&t, ino);
		if (listed)
			pfs_txn_omap_rm(&t, list, key, sizeof(key));
		ret = pfs_store_submit(st, &t, PFS_SUBMIT_RESERVE, NULL);
		if (ret != -E2BIG && ret != -ENOSPC)
			break;
		/* too large for one transaction: shorten it, then again */
		err = pfs_store_stat(st, ino, &o);
		if (err || !o.size) {
			ret = err ? err : ret;	/* not its data: nothing to shorten */
			break;
		}
		while (o.size) {
			uint64_t size = o.size > step ? o.size - step : 0;

			pfs_txn_reset(&t);
			pfs_txn_truncate(&t, ino, size);
			ret = pfs_store_submit(st, &t, PFS_SUBMIT_RESERVE, NULL);
			if ((ret == -E2BIG || ret == -ENOSPC) && step > bs) {
				step /= 2;
				continue;
			}
			if (ret)
				goto out;
			o.size = size;
			if (step < max_step)
				step *= 2;
		}
	}
out:
	pfs_txn_fini(&t);
	return ret;
}

/* ---- mount ------------------------------------------------------------- */

struct orphan_batch {
	uint64_t oid[128];
	unsigned n;
	uint8_t last[POSFS_ORPHAN_KEY_LEN];
};

static int orphan_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct orphan_batch *b = arg;

	(void)val;
	(void)vlen;
	if (pfs_orphan_key_decode(key, klen, &b->oid[b->n]))
		return 0;	/* not ours: skip */
	memcpy(b->last, key, POSFS_ORPHAN_KEY_LEN);
	b->n++;
	return b->n == 128 ? 1 : 0;
}

/* Remove every object on shard's orphan list, and the list's records. */
static int orphans_reclaim(struct pfs_fs *fs, uint32_t shard)
{
	uint64_t list = POSFS_OID(shard, POSFS_LOCAL_ORPHANS);
	struct orphan_batch b;
	struct pfs_onode o;
	struct pfs_txn t;
	int ret;

	pfs_txn_init(&t);
	for (;;) {
		b.n = 0;
		ret = pfs_store_omap_iterate(fs->st, list, NULL, 0, orphan_cb, &b);
		if (ret < 0 || !b.n)
			break;
		for (unsigned i = 0; i < b.n; i++) {
			uint8_t key[POSFS_ORPHAN_KEY_LEN];

			pfs_orphan_key(key, b.oid[i]);
			pfs_txn_reset(&t);
			ret = pfs_store_stat(fs->st, b.oid[i], &o);
			if (ret && ret != -ENOENT)
				goto out;
			/* an inode linked again (never made so) is left alone */
			if (!ret && o.nlink == 0) {
				ret = pfs_fs_reap(fs, b.oid[i]);
			} else {
				pfs_txn_omap_rm(&t, list, key, sizeof(key));
				ret = pfs_store_submit(fs->st, &t, PFS_SUBMIT_RESERVE, NULL);
			}
			if (ret)
				goto out;
		}
	}
out:
	pfs_txn_fini(&t);
	return ret > 0 ? 0 : ret;
}

/* Create the orphan-list objects that are missing (mkfs made none). */
static int orphans_prepare(struct pfs_fs *fs, uint32_t shard)
{
	uint64_t list = POSFS_OID(shard, POSFS_LOCAL_ORPHANS);
	struct pfs_attr a = { .mode = S_IFREG | 0600, .nlink = 1 };
	struct pfs_onode o;
	struct pfs_txn t;
	int ret;

	ret = pfs_store_stat(fs->st, list, &o);
	if (ret != -ENOENT)
		return ret;
	a.atime = a.mtime = a.ctime = a.btime = pfs_fs_now();
	pfs_txn_init(&t);
	pfs_txn_create(&t, list, &a);
	/* an onode and no more: the orphan list must work when full */
	ret = pfs_store_submit(fs->st, &t, PFS_SUBMIT_RESERVE, NULL);
	pfs_txn_fini(&t);
	return ret;
}

int pfs_fs_open(struct pfs_store *st, struct pfs_fs **fsp)
{
	const struct pfs_super *sb = pfs_store_super(st);
	struct pfs_onode root;
	struct pfs_fs *fs;
	int ret;

	*fsp = NULL;
	ret = pfs_store_stat(st, POSFS_ROOT_OID, &root);
	if (ret)
		return ret == -ENOENT ? -EUCLEAN : ret;
	if (!S_ISDIR(root.mode))
		return -EUCLEAN;
	fs = calloc(1, sizeof(*fs));
	if (!fs)
		return -ENOMEM;
	fs->state = calloc(PFS_FS_STATE_BUCKETS, sizeof(*fs->state));
	if (!fs->state) {
		free(fs);
		return -ENOMEM;
	}
	fs->state_buckets = PFS_FS_STATE_BUCKETS;
	fs->st = st;
	fs->shards = sb->shard_count;
	fs->block_size = sb->block_size;
	pthread_mutex_init(&fs->rename_lock, NULL);
	pthread_mutex_init(&fs->state_lock, NULL);
	for (unsigned i = 0; i < PFS_FS_LOCKS; i++) {
		pthread_mutex_init(&fs->dlock[i], NULL);
		pthread_mutex_init(&fs->ilock[i], NULL);
	}
	for (uint32_t s = 0; s < fs->shards; s++) {
		ret = orphans_prepare(fs, s);
		if (!ret)
			ret = orphans_reclaim(fs, s);
		if (ret == -EROFS) {
			ret = 0;	/* read-only: orphans stay for a writable mount */
			break;
		}
		if (ret)
			goto out;
	}
	*fsp = fs;
out:
	if (ret)
		pfs_fs_close(fs);
	return ret;
}

void pfs_fs_close(struct pfs_fs *fs)
{
	if (!fs)
		return;
	for (size_t b = 0; b < fs->state_buckets; b++) {
		struct pfs_istate *s = fs->state[b], *n;

		for (; s; s = n) {
			n = s->next;
			free(s);
		}
	}
	free(fs->state);
	pthread_mutex_destroy(&fs->rename_lock);
	pthread_mutex_destroy(&fs->state_lock);
	for (unsigned i = 0; i < PFS_FS_LOCKS; i++) {
		pthread_mutex_destroy(&fs->dlock[i]);
		pthread_mutex_destroy(&fs->ilock[i]);
	}
	free(fs);
}

/* ---- attributes -------------------------------------------------------- */

int pfs_fs_stat(struct pfs_fs *fs, uint64_t ino, struct pfs_onode *o)
{
	if (POSFS_OID_LOCAL(ino) < POSFS_LOCAL_FIRST && ino != POSFS_ROOT_OID)
		return -ENOENT;		/* the layer's own objects are not inodes */
	return pfs_store_stat(fs->st, ino, o);
}

int pfs_fs_getattr(struct pfs_fs *fs, uint64_t ino, struct pfs_fs_attr *attr)
{
	struct pfs_onode o;
	int ret;

	ret = pfs_fs_stat(fs, ino, &o);
	if (!ret)
		pfs_fs_attr_from_onode(fs, &o, attr);
	return ret;
}

int pfs_fs_getattr_gen(struct pfs_fs *fs, uint64_t ino, uint64_t generation,
		       struct pfs_fs_attr *attr)
{
	int ret = pfs_fs_getattr(fs, ino, attr);

	if (ret == -ENOENT || (!ret && (attr->generation != generation || attr->nlink == 0)))
		return -ESTALE;
	return ret;
}

/*
 * chattr +i and +a against a setattr of o (fs.h), as ext4's fileattr_set
 * and the VFS's notify_change: the two flags set or cleared only by uid 0
 * (CAP_LINUX_IMMUTABLE; NULL cred is uid 0), and no other flag of an
 * inode that stays immutable (ext4_ioctl_check_immutable). Of an
 * immutable inode nothing else but the atime a read sets; of an
 * append-only one no mode, owner, size or btime, and times only as a
 * touch (PFS_FS_SET_TOUCH). The kernel's kill alone (mask 0, PFS_FS_SETID_CLEAR) comes
 * before a write, which an immutable inode refuses anyway.
 */
static int setattr_allowed(const struct pfs_onode *o, const struct pfs_fs_attr *attr,
			   uint32_t mask, const struct pfs_fs_cred *cred)
{
	const uint32_t read_atime = PFS_FS_SET_ATIME | PFS_FS_SET_KEEP_CTIME;
	uint32_t fl = o->attr_flags, rest = mask & ~(PFS_FS_SET_FLAGS | PFS_FS_SET_TOUCH);

	if (mask & PFS_FS_SET_FLAGS) {
		if (((fl ^ attr->flags) & PFS_FS_FL_LOCKED) && cred && cred->uid != 0)
			return -EPERM;
		if ((fl & attr->flags & FS_IMMUTABLE_FL) && fl != attr->flags)
			return -EPERM;
	}
	if (!(fl & PFS_FS_FL_LOCKED) || rest == read_atime)
		return 0;
	if (fl & FS_IMMUTABLE_FL) {
		if (rest || (!mask && cred && cred->setid == PFS_FS_SETID_CLEAR))
			return -EPERM;
		return 0;
	}
	if (rest & (PFS_FS_SET_MODE | PFS_FS_SET_UID | PFS_FS_SET_GID | PFS_FS_SET_SIZE |
		    PFS_FS_SET_BTIME))
		return -EPERM;
	if ((rest & (PFS_FS_SET_ATIME | PFS_FS_SET_MTIME)) && !(mask & PFS_FS_SET_TOUCH))
		return -EPERM;
	return 0;
}

int pfs_fs_setattr(struct pfs_fs *fs, uint64_t ino, const struct pfs_fs_attr *attr,
		   uint32_t mask, const struct pfs_fs_cred *cred, struct pfs_fs_attr *attr_out)
{
	pthread_mutex_t *il = pfs_fs_ilock(fs, ino);
	struct pfs_acl_buf acl = { 0 };
	struct pfs_attr a = { 0 };
	struct pfs_commit tok;
	struct pfs_onode o;
	uint32_t amask = 0;
	struct pfs_txn t;
	int flags = 0, ret;

	pfs_txn_init(&t);
	pthread_mutex_lock(il);
	ret = pfs_fs_stat(fs, ino, &o);
	if (!ret)
		ret = setattr_allowed(&o, attr, mask, cred);
	if (ret)
		goto out;
	a.mode = o.mode;
	if (mask & PFS_FS_SET_MODE) {
		a.mode = (o.mode & S_IFMT) | (attr->mode & 07777);
		amask |= PFS_ATTR_MODE;
		/* posix_acl_chmod: the access ACL follows (acl.c invariant 2) */
		ret = pfs_acl_chmod_txn(fs, &o, a.mode, &t, &acl);
		if (ret)
			goto out;
	}
	if (mask & PFS_FS_SET_UID) {
		a.uid = attr->uid;
		amask |= PFS_ATTR_UID;
	}
	if (mask & PFS_FS_SET_GID) {
		a.gid = attr->gid;
		amask |= PFS_ATTR_GID;
	}
	if (mask & PFS_FS_SET_ATIME) {
		a.atime = attr->atime;
		amask |= PFS_ATTR_ATIME;
	}
	if (mask & PFS_FS_SET_MTIME) {
		a.mtime = attr->mtime;
		amask |= PFS_ATTR_MTIME;
	}
	if (mask & PFS_FS_SET_BTIME) {
		a.btime = attr->btime;
		amask |= PFS_ATTR_BTIME;
	}
	if (mask & PFS_FS_SET_FLAGS) {
		a.attr_flags = attr->flags;
		amask |= PFS_ATTR_FLAGS;
	}
	if (mask & PFS_FS_SET_SIZE) {
		if (S_ISDIR(o.mode)) {
			ret = -EISDIR;
			goto out;
		}
		if (!S_ISREG(o.mode)) {
			ret = -EINVAL;
			goto out;
		}
		pfs_txn_truncate(&t, ino, attr->size);
		if (!(mask & PFS_FS_SET_MTIME)) {
			a.mtime = pfs_fs_now();
			amask |= PFS_ATTR_MTIME;
		}
	}
	/* a truncate by cred, or a change the kernel marks (a chown) */
	if ((mask & PFS_FS_SET_SIZE) || (cred && cred->setid == PFS_FS_SETID_CLEAR)) {
		uint32_t kill;

		if (!(mask & PFS_FS_SET_SIZE) && (mask & (PFS_FS_SET_UID | PFS_FS_SET_GID)))
			kill = kill_chown(a.mode, o.gid, cred);
		else
			kill = pfs_fs_kill_suid(a.mode, o.gid, cred);

		if (kill) {
			a.mode &= ~kill;
			amask |= PFS_ATTR_MODE;
		}
	}
	/* nothing asked and no set-ID bit to clear: nothing changes, not
	 * even ctime (UTIME_OMIT for both times) */
	if (!amask && !(mask & (PFS_FS_SET_SIZE | PFS_FS_SET_CTIME))) {
		if (attr_out)
			ret = pfs_fs_getattr(fs, ino, attr_out);
		goto out;
	}
	if (mask & PFS_FS_SET_CTIME)
		a.ctime = attr->ctime;
	else
		a.ctime = pfs_fs_now();
	if (!(mask & PFS_FS_SET_KEEP_CTIME) || (mask & PFS_FS_SET_CTIME))
		amask |= PFS_ATTR_CTIME;
	pfs_txn_setattr(&t, ino, &a, amask);
	/* a truncate down gives space back (a chmod may add an ACL: not that) */
	if ((mask & PFS_FS_SET_SIZE) && attr->size < o.size && !(mask & PFS_FS_SET_MODE))
		flags = PFS_SUBMIT_RESERVE;
	ret = pfs_store_submit(fs->st, &t, flags, &tok);
	if (ret)
		goto out;
	pfs_fs_note_commit(fs, &ino, 1, &tok);
	if (attr_out)
		ret = pfs_fs_getattr(fs, ino, attr_out);
out:
	pthread_mutex_unlock(il);
	pfs_txn_fini(&t);
	free(acl.p);
	return ret;
}

/* ---- open counts and orphans ------------------------------------------- */

int pfs_fs_inode_open(struct pfs_fs *fs, uint64_t ino)
{
	return pfs_fs_inode_open_for(fs, ino, O_RDONLY);
}

/* What may_open refuses of chattr +i and +a (fs.h). */
static int open_allowed(const struct pfs_fs_attr *a, int oflags)
{
	bool write = (oflags & O_ACCMODE) != O_RDONLY, trunc = oflags & O_TRUNC;

	if ((a->flags & FS_IMMUTABLE_FL) && (write || trunc))
		return -EPERM;
	if ((a->flags & FS_APPEND_FL) && ((write && !(oflags & O_APPEND)) || trunc))
		return -EPERM;
	return 0;
}

int pfs_fs_inode_open_for(struct pfs_fs *fs, uint64_t ino, int oflags)
{
	pthread_mutex_t *il = pfs_fs_ilock(fs, ino);
	struct pfs_fs_attr a;
	struct pfs_istate *s;
	int ret;

	pthread_mutex_lock(il);
	ret = pfs_fs_getattr(fs, ino, &a);
	if (!ret && a.nlink == 0 && pfs_fs_opens(fs, ino) == 0)
		ret = -ENOENT;	/* an orphan nobody holds: about to go */
	if (!ret)
		ret = open_allowed(&a, oflags);
	if (ret)
		goto out;
	pthread_mutex_lock(&fs->state_lock);
	s = state_find(fs, ino, true);
	if (s)
		s->opens++;
	else
		ret = -ENOMEM;
	pthread_mutex_unlock(&fs->state_lock);
out:
	pthread_mutex_unlock(il);
	return ret;
}

int pfs_fs_inode_release(struct pfs_fs *fs, uint64_t ino)
{
	pthread_mutex_t *il = pfs_fs_ilock(fs, ino);
	struct pfs_istate *s;
	struct pfs_onode o;
	struct pfs_txn t;
	uint32_t opens;
	uint8_t key[9];
	int ret = 0;

	pfs_txn_init(&t);
	pthread_mutex_lock(il);
	pthread_mutex_lock(&fs->state_lock);
	s = state_find(fs, ino, false);
	if (!s || !s->opens) {
		pthread_mutex_unlock(&fs->state_lock);
		ret = -EINVAL;
		goto out;
	}
	opens = --s->opens;
	pthread_mutex_unlock(&fs->state_lock);
	if (opens)
		goto out;
	ret = pfs_store_stat(fs->st, ino, &o);
	if (ret == -ENOENT) {
		ret = 0;
		goto out;
	}
	if (ret || !(o.flags & POSFS_ONODE_ORPHAN) || o.nlink)
		goto out;
	/* invariant 1: the object and its orphan record go together */
	(void)key;
	ret = pfs_fs_reap(fs, ino);
out:
	pthread_mutex_unlock(il);
	pfs_txn_fini(&t);
	return ret;
}

/* ---- statfs, fsync ----------------------------------------------------- */

int pfs_fs_statfs(struct pfs_fs *fs, struct pfs_fs_statfs *sfs)
{
	struct pfs_statfs s;
	int ret = pfs_store_statfs(fs->st, &s);

	if (ret)
		return ret;
	memset(sfs, 0, sizeof(*sfs));
	sfs->bsize = s.block_size;
	sfs->blocks = s.total_blocks;
	sfs->bfree = s.free_blocks;
	sfs->bavail = s.avail_blocks;	/* not the shards' reserves */
	sfs->ffree = s.free_blocks;
	sfs->files = s.objects + s.free_blocks;
	sfs->namemax = POSFS_NAME_MAX;
	return 0;
}

int pfs_fs_fsync(struct pfs_fs *fs, uint64_t ino, int datasync)
{
	struct pfs_commit local, global;
	bool has_local = false, has_global = false;
	struct pfs_istate *s;
	int ret = 0;

	if (pfs_planted("fsyncdir-noop")) {
		struct pfs_onode po;

		if (!pfs_fs_stat(fs, ino, &po) && S_ISDIR(po.mode))
			return 0;
	}

	(void)datasync;
	pthread_mutex_lock(&fs->state_lock);
	s = state_find(fs, ino, false);
	if (s) {
		has_local = s->has_local;
		has_global = s->has_global;
		local = s->local;
		global = s->global;
	}
	pthread_mutex_unlock(&fs->state_lock);
	if (has_local)
		ret = pfs_store_wait(fs->st, &local);
	if (!ret && has_global)
		ret = pfs_store_wait(fs->st, &global);
	return ret;
}

/* ---- xattrs ------------------------------------------------------------ */

static int xattr_change(struct pfs_fs *fs, uint64_t ino, const char *name, const void *value,
			size_t size, int flags, bool remove)
{
	struct pfs_attr a = { .ctime = pfs_fs_now() };
	size_t nlen = strlen(name);
	struct pfs_commit tok;
	struct pfs_fs_attr at;
	struct pfs_txn t;
	int ret;

	if (!nlen || nlen > PFS_FS_XATTR_NAME_MAX)
		return remove ? -ENODATA : -ERANGE;
	if (!remove && size > PFS_FS_XATTR_SIZE_MAX)
		return -E2BIG;
	if (flags & ~(XATTR_CREATE | XATTR_REPLACE))
		return -EINVAL;
	ret = pfs_fs_getattr(fs, ino, &at);
	if (ret)
		return ret;
	if (at.flags & PFS_FS_FL_LOCKED)
		return -EPERM;		/* chattr +i, +a (fs.h) */
	pfs_txn_init(&t);
	if (remove)
		pfs_txn_rmxattr(&t, ino, name);
	else
		pfs_txn_setxattr(&t, ino, name, size ? value : "", size, flags);
	pfs_txn_setattr(&t, ino, &a, PFS_ATTR_CTIME);
	ret = pfs_store_submit(fs->st, &t, 0, &tok);
	if (!ret)
		pfs_fs_note_commit(fs, &ino, 1, &tok);
	pfs_txn_fini(&t);
	return ret;
}

int pfs_fs_setxattr(struct pfs_fs *fs, uint64_t ino, const char *name, const void *value,
		    size_t size, int flags)
{
	enum pfs_acl_type type = pfs_acl_type(name);

	if (type)
		return pfs_acl_set(fs, ino, type, size ? value : "", size, flags, NULL);
	return xattr_change(fs, ino, name, value, size, flags, false);
}

int pfs_fs_setxattr_cred(struct pfs_fs *fs, uint64_t ino, const char *name, const void *value,
			 size_t size, int flags, const struct pfs_fs_cred *cred)
{
	enum pfs_acl_type type = pfs_acl_type(name);

	if (type)
		return pfs_acl_set(fs, ino, type, size ? value : "", size, flags, cred);
	return xattr_change(fs, ino, name, value, size, flags, false);
}

int pfs_fs_removexattr(struct pfs_fs *fs, uint64_t ino, const char *name)
{
	enum pfs_acl_type type = pfs_acl_type(name);

	if (type)
		return pfs_acl_set(fs, ino, type, NULL, 0, 0, NULL);
	return xattr_change(fs, ino, name, NULL, 0, 0, true);
}

ssize_t pfs_fs_getxattr(struct pfs_fs *fs, uint64_t ino, const char *name, void *buf,
			size_t cap)
{
	size_t nlen = strlen(name);

	if (!nlen || nlen > PFS_FS_XATTR_NAME_MAX)
		return -ERANGE;
	if (POSFS_OID_LOCAL(ino) < POSFS_LOCAL_FIRST && ino != POSFS_ROOT_OID)
		return -ENOENT;
	return pfs_store_getxattr(fs->st, ino, name, buf, cap);
}

ssize_t pfs_fs_listxattr(struct pfs_fs *fs, uint64_t ino, char *buf, size_t cap)
{
	if (POSFS_OID_LOCAL(ino) < POSFS_LOCAL_FIRST && ino != POSFS_ROOT_OID)
		return -ENOENT;
	return pfs_store_listxattr(fs->st, ino, buf, cap);
}
