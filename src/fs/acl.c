/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * POSIX ACLs. The kernel enforces them (the daemon asks for
 * FUSE_CAP_POSIX_ACL, with default_permissions) from the xattr
 * system.posix_acl_access; what Linux leaves to each file system is here,
 * written after fs/posix_acl.c:
 *  - posix_acl_create: a new inode under a directory with a default ACL
 *    gets its access ACL (and a new directory the default ACL too), its
 *    mode masked by it; without one, the caller's umask applies (with
 *    FUSE_CAP_DONT_MASK the kernel leaves both to us);
 *  - posix_acl_update_mode: setting the access ACL sets the mode's
 *    permission bits, and an ACL the mode says in full is not stored;
 *  - posix_acl_chmod: chmod updates the access ACL;
 *  - a default ACL only on directories (-EACCES, as ext4), no ACLs on
 *    symlinks (-EOPNOTSUPP).
 *
 * Invariants:
 *  1. A stored ACL is valid (pfs_acl_valid > 0): every path that stores
 *     one checks it first. One that is not is corruption (-EUCLEAN).
 *  2. The mode's permission bits and the access ACL change in one
 *     transaction, under the inode's lock (pfs_fs_ilock), so they never
 *     disagree: group bits = MASK (GROUP_OBJ without a mask), user bits =
 *     USER_OBJ, other bits = OTHER.
 *  3. A new inode's ACLs are written in the transaction that creates it.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "fs/acl.h"

static uint16_t le16_get(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32_get(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

static void perm_put(uint8_t *e, uint32_t perm)
{
	e[2] = (uint8_t)(perm & 7);
	e[3] = 0;
}

enum pfs_acl_type pfs_acl_type(const char *name)
{
	if (!strcmp(name, PFS_ACL_ACCESS))
		return PFS_ACL_TYPE_ACCESS;
	if (!strcmp(name, PFS_ACL_DEFAULT))
		return PFS_ACL_TYPE_DEFAULT;
	return PFS_ACL_TYPE_NONE;
}

int pfs_acl_valid(const void *val, size_t len)
{
	const uint8_t *e = (const uint8_t *)val + PFS_ACL_HDR;
	unsigned state = PFS_ACL_USER_OBJ;
	bool needs_mask = false;
	size_t count;

	if (len < PFS_ACL_HDR || (len - PFS_ACL_HDR) % PFS_ACL_ENTRY)
		return -EINVAL;
	if (le32_get(val) != PFS_ACL_VERSION)
		return -EOPNOTSUPP;
	count = (len - PFS_ACL_HDR) / PFS_ACL_ENTRY;
	if (!count)
		return 0;
	if (count > (PFS_FS_XATTR_SIZE_MAX - PFS_ACL_HDR) / PFS_ACL_ENTRY)
		return -EINVAL;
	/* the state machine of posix_acl_valid: state is the next tag allowed */
	for (size_t i = 0; i < count; i++, e += PFS_ACL_ENTRY) {
		uint16_t tag = le16_get(e), perm = le16_get(e + 2);
		uint32_t id = le32_get(e + 4);

		if (perm & ~7u)
			return -EINVAL;
		switch (tag) {
		case PFS_ACL_USER_OBJ:
			if (state != PFS_ACL_USER_OBJ)
				return -EINVAL;
			state = PFS_ACL_USER;
			break;
		case PFS_ACL_USER:
		case PFS_ACL_GROUP:
			if (state != tag || id == PFS_ACL_UNDEFINED_ID)
				return -EINVAL;
			needs_mask = true;
			break;
		case PFS_ACL_GROUP_OBJ:
			if (state != PFS_ACL_USER)
				return -EINVAL;
			state = PFS_ACL_GROUP;
			break;
		case PFS_ACL_MASK:
			if (state != PFS_ACL_GROUP)
				return -EINVAL;
			state = PFS_ACL_OTHER;
			break;
		case PFS_ACL_OTHER:
			if (state != PFS_ACL_OTHER && (state != PFS_ACL_GROUP || needs_mask))
				return -EINVAL;
			state = 0;
			break;
		default:
			return -EINVAL;
		}
	}
	return state == 0 ? (int)count : -EINVAL;
}

int pfs_acl_equiv_mode(const void *val, size_t len, uint32_t *mode)
{
	const uint8_t *e = (const uint8_t *)val + PFS_ACL_HDR;
	size_t count = (len - PFS_ACL_HDR) / PFS_ACL_ENTRY;
	uint32_t m = 0;
	int not_equiv = 0;

	for (size_t i = 0; i < count; i++, e += PFS_ACL_ENTRY) {
		uint32_t perm = le16_get(e + 2) & 7u;

		switch (le16_get(e)) {
		case PFS_ACL_USER_OBJ:
			m |= perm << 6;
			break;
		case PFS_ACL_GROUP_OBJ:
			m |= perm << 3;
			break;
		case PFS_ACL_OTHER:
			m |= perm;
			break;
		case PFS_ACL_MASK:	/* after GROUP_OBJ: the group bits are the mask */
			m = (m & ~(uint32_t)S_IRWXG) | perm << 3;
			not_equiv = 1;
			break;
		default:		/* USER, GROUP */
			not_equiv = 1;
			break;
		}
	}
	*mode = (*mode & ~0777u) | m;
	return not_equiv;
}

void pfs_acl_chmod(void *val, size_t len, uint32_t mode)
{
	uint8_t *e = (uint8_t *)val + PFS_ACL_HDR, *group_obj = NULL, *mask = NULL;
	size_t count = (len - PFS_ACL_HDR) / PFS_ACL_ENTRY;

	for (size_t i = 0; i < count; i++, e += PFS_ACL_ENTRY) {
		switch (le16_get(e)) {
		case PFS_ACL_USER_OBJ:
			perm_put(e, mode >> 6);
			break;
		case PFS_ACL_GROUP_OBJ:
			group_obj = e;
			break;
		case PFS_ACL_MASK:
			mask = e;
			break;
		case PFS_ACL_OTHER:
			perm_put(e, mode);
			break;
		default:
			break;
		}
	}
	if (mask)
		perm_put(mask, mode >> 3);
	else if (group_obj)	/* always there in a valid ACL */
		perm_put(group_obj, mode >> 3);
}

int pfs_acl_create_masq(void *val, size_t len, uint32_t *mode)
{
	uint8_t *e = (uint8_t *)val + PFS_ACL_HDR, *group_obj = NULL, *mask = NULL;
	size_t count = (len - PFS_ACL_HDR) / PFS_ACL_ENTRY;
	uint32_t m = *mode & 0777u, perm;
	int not_equiv = 0;

	for (size_t i = 0; i < count; i++, e += PFS_ACL_ENTRY) {
		perm = le16_get(e + 2) & 7u;
		switch (le16_get(e)) {
		case PFS_ACL_USER_OBJ:
			perm &= m >> 6;
			perm_put(e, perm);
			m &= perm << 6 | ~(uint32_t)S_IRWXU;
			break;
		case PFS_ACL_GROUP_OBJ:
			group_obj = e;
			break;
		case PFS_ACL_MASK:
			mask = e;
			not_equiv = 1;
			break;
		case PFS_ACL_OTHER:
			perm &= m;
			perm_put(e, perm);
			m &= perm | ~(uint32_t)S_IRWXO;
			break;
		default:		/* USER, GROUP */
			not_equiv = 1;
			break;
		}
	}
	e = mask ? mask : group_obj;
	if (e) {		/* always: the ACL is valid */
		perm = le16_get(e + 2) & (m >> 3) & 7u;
		perm_put(e, perm);
		m &= perm << 3 | ~(uint32_t)S_IRWXG;
	}
	*mode = (*mode & ~0777u) | m;
	return not_equiv;
}

/* ---- reading and writing ----------------------------------------------- */

/* ino's xattr name into b (malloc'd): 0, -ENODATA when none, -errno. */
static int acl_read(struct pfs_fs *fs, uint64_t ino, const char *name, struct pfs_acl_buf *b)
{
	ssize_t n;

	b->p = NULL;
	b->len = 0;
	for (;;) {
		n = pfs_store_getxattr(fs->st, ino, name, NULL, 0);
		if (n < 0)
			return (int)n;
		free(b->p);
		b->p = malloc(n ? (size_t)n : 1);
		if (!b->p)
			return -ENOMEM;
		n = pfs_store_getxattr(fs->st, ino, name, b->p, (size_t)n);
		if (n != -ERANGE)
			break;		/* grew meanwhile: again */
	}
	if (n < 0) {
		free(b->p);
		b->p = NULL;
		return (int)n;
	}
	b->len = (size_t)n;
	/* invariant 1: what we stored is valid; a bare header is no ACL */
	if (pfs_acl_valid(b->p, b->len) <= 0) {
		free(b->p);
		b->p = NULL;
		b->len = 0;
		return -EUCLEAN;
	}
	return 0;
}

int pfs_acl_inherit(struct pfs_fs *fs, uint64_t dir, uint32_t *mode, uint32_t umask,
		    struct pfs_acl_new *n)
{
	struct pfs_acl_buf d;
	int ret;

	memset(n, 0, sizeof(*n));
	if (S_ISLNK(*mode))
		return 0;
	ret = acl_read(fs, dir, PFS_ACL_DEFAULT, &d);
	if (ret == -ENODATA) {
		*mode &= ~(umask & 0777u);
		return 0;
	}
	if (ret)
		return ret;
	if (S_ISDIR(*mode)) {
		n->dflt.p = malloc(d.len);
		if (!n->dflt.p) {
			free(d.p);
			return -ENOMEM;
		}
		memcpy(n->dflt.p, d.p, d.len);
		n->dflt.len = d.len;
	}
	if (pfs_acl_create_masq(d.p, d.len, mode)) {
		n->access = d;
	} else {
		free(d.p);	/* the mode says it all */
	}
	return 0;
}

void pfs_acl_new_emit(struct pfs_txn *t, uint64_t ino, const struct pfs_acl_new *n)
{
	if (n->access.p)
		pfs_txn_setxattr(t, ino, PFS_ACL_ACCESS, n->access.p, n->access.len, 0);
	if (n->dflt.p)
		pfs_txn_setxattr(t, ino, PFS_ACL_DEFAULT, n->dflt.p, n->dflt.len, 0);
}

void pfs_acl_new_free(struct pfs_acl_new *n)
{
	free(n->access.p);
	free(n->dflt.p);
	memset(n, 0, sizeof(*n));
}

int pfs_acl_chmod_txn(struct pfs_fs *fs, const struct pfs_onode *o, uint32_t mode,
		      struct pfs_txn *t, struct pfs_acl_buf *b)
{
	int ret;

	b->p = NULL;
	b->len = 0;
	if (S_ISLNK(o->mode))
		return 0;
	ret = acl_read(fs, o->oid, PFS_ACL_ACCESS, b);
	if (ret == -ENODATA)
		return 0;
	if (ret)
		return ret;
	pfs_acl_chmod(b->p, b->len, mode);
	pfs_txn_setxattr(t, o->oid, PFS_ACL_ACCESS, b->p, b->len, 0);
	return 0;
}

int pfs_acl_set(struct pfs_fs *fs, uint64_t ino, enum pfs_acl_type type, const void *val,
		size_t len, int flags, const struct pfs_fs_cred *cred)
{
	const char *name = type == PFS_ACL_TYPE_ACCESS ? PFS_ACL_ACCESS : PFS_ACL_DEFAULT;
	pthread_mutex_t *il = pfs_fs_ilock(fs, ino);
	struct pfs_attr a = { .ctime = pfs_fs_now() };
	uint32_t amask = PFS_ATTR_CTIME;
	bool store = val != NULL, exists;
	struct pfs_commit tok;
	struct pfs_onode o;
	struct pfs_txn t;
	ssize_t n;
	int ret = 0;

	if (flags & ~(XATTR_CREATE | XATTR_REPLACE))
		return -EINVAL;
	if (val) {
		if (len > PFS_FS_XATTR_SIZE_MAX)
			return -E2BIG;
		ret = pfs_acl_valid(val, len);
		if (ret < 0)
			return ret;
		store = ret > 0;	/* a bare header: no ACL */
	}
	pfs_txn_init(&t);
	pthread_mutex_lock(il);
	ret = pfs_fs_stat(fs, ino, &o);
	if (!ret)
		ret = pfs_fs_fl_refuse(&o, PFS_FS_FL_LOCKED);	/* chattr +i, +a */
	if (ret)
		goto out;
	if (S_ISLNK(o.mode)) {
		ret = -EOPNOTSUPP;
		goto out;
	}
	if (type == PFS_ACL_TYPE_DEFAULT && !S_ISDIR(o.mode)) {
		/* Linux's set_posix_acl: refused, but removing one is fine */
		ret = store ? -EACCES : val ? 0 : -ENODATA;
		goto out;
	}
	n = pfs_store_getxattr(fs->st, ino, name, NULL, 0);
	if (n < 0 && n != -ENODATA) {
		ret = (int)n;
		goto out;
	}
	exists = n >= 0;
	if (store && type == PFS_ACL_TYPE_ACCESS) {
		/* posix_acl_update_mode (invariant 2) */
		a.mode = o.mode;
		if (!pfs_acl_equiv_mode(val, len, &a.mode))
			store = false;
		/* not in the group, not CAP_FSETID (uid 0 taken as it) */
		if (cred && cred->uid != 0 && !pfs_fs_cred_in_group(cred, o.gid))
			a.mode &= ~(uint32_t)S_ISGID;
		amask |= PFS_ATTR_MODE;
	}
	if (store) {
		pfs_txn_setxattr(&t, ino, name, val, len, 0);
	} else if (exists) {
		pfs_txn_rmxattr(&t, ino, name);
	} else if (!val) {
		ret = -ENODATA;		/* removexattr of none */
		goto out;
	}
	pfs_txn_setattr(&t, ino, &a, amask);
	ret = pfs_store_submit(fs->st, &t, 0, &tok);
	if (!ret)
		pfs_fs_note_commit(fs, &ino, 1, &tok);
out:
	pthread_mutex_unlock(il);
	pfs_txn_fini(&t);
	return ret;
}
