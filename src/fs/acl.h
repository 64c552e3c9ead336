/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Private to src/fs: POSIX ACLs (acl.c). The ACLs are the xattrs
 * system.posix_acl_access and system.posix_acl_default in Linux's xattr
 * format (linux/posix_acl_xattr.h), which is also how they are stored:
 *
 *   0x00  le32 a_version = PFS_ACL_VERSION (2)
 *   0x04  entries, 8 bytes each:
 *           +0 le16 e_tag   PFS_ACL_USER_OBJ .. PFS_ACL_OTHER
 *           +2 le16 e_perm  PFS_ACL_READ | WRITE | EXECUTE
 *           +4 le32 e_id    uid or gid (ACL_USER, ACL_GROUP), else -1
 *
 * A valid ACL has its entries in tag order: USER_OBJ, USERs, GROUP_OBJ,
 * GROUPs, MASK (required when there is a named entry), OTHER.
 */
#ifndef POSFS_FS_ACL_H
#define POSFS_FS_ACL_H

#include <stddef.h>
#include <stdint.h>

#include "fs/fs_internal.h"

#define PFS_ACL_ACCESS		"system.posix_acl_access"
#define PFS_ACL_DEFAULT		"system.posix_acl_default"

/* The Linux ABI (linux/posix_acl.h, linux/posix_acl_xattr.h). */
#define PFS_ACL_VERSION		2u
#define PFS_ACL_HDR		4u	/* bytes of the header */
#define PFS_ACL_ENTRY		8u	/* bytes of an entry */
#define PFS_ACL_USER_OBJ	0x01u
#define PFS_ACL_USER		0x02u
#define PFS_ACL_GROUP_OBJ	0x04u
#define PFS_ACL_GROUP		0x08u
#define PFS_ACL_MASK		0x10u
#define PFS_ACL_OTHER		0x20u
#define PFS_ACL_READ		0x04u
#define PFS_ACL_WRITE		0x02u
#define PFS_ACL_EXECUTE		0x01u
#define PFS_ACL_UNDEFINED_ID	0xffffffffu

enum pfs_acl_type {
	PFS_ACL_TYPE_NONE = 0,		/* not an ACL name */
	PFS_ACL_TYPE_ACCESS,
	PFS_ACL_TYPE_DEFAULT,
};

/* Which ACL the xattr name is. */
enum pfs_acl_type pfs_acl_type(const char *name);

/*
 * Check an ACL value as Linux's posix_acl_from_xattr + posix_acl_valid do.
 * Returns the number of entries (0: a bare header, which means "no ACL"),
 * -EINVAL (short, not a whole number of entries, bad tag, perm or order,
 * a named entry with id -1) or -EOPNOTSUPP (a_version is not 2).
 */
int pfs_acl_valid(const void *val, size_t len);

/*
 * posix_acl_equiv_mode: set the permission bits (0777) of *mode from the
 * valid ACL val. Returns 0 when the ACL says no more than the mode (it
 * need not be stored), 1 when it has named entries or a mask.
 */
int pfs_acl_equiv_mode(const void *val, size_t len, uint32_t *mode);

/* posix_acl_chmod: set USER_OBJ, MASK (GROUP_OBJ without one) and OTHER of
 * the valid ACL val from mode. */
void pfs_acl_chmod(void *val, size_t len, uint32_t mode);

/*
 * posix_acl_create_masq: val (a copy of the parent's default ACL, valid)
 * becomes the new inode's access ACL and *mode's permission bits are
 * masked by it. Returns 0 when the result is equivalent to the mode (no
 * access ACL is needed), 1 otherwise.
 */
int pfs_acl_create_masq(void *val, size_t len, uint32_t *mode);

/* An xattr value owned by the caller (freed with free(p)). */
struct pfs_acl_buf {
	uint8_t *p;
	size_t len;
};

/* ---- the hooks of namei.c and fs.c ------------------------------------- */

/* What a new inode gets from its directory (pfs_acl_inherit). */
struct pfs_acl_new {
	struct pfs_acl_buf access;	/* p NULL: none */
	struct pfs_acl_buf dflt;	/* new directories: the parent's default */
};

/*
 * For a new inode of *mode in dir (dir's lock held): with a default ACL
 * on dir, *mode's permission bits are masked by it and n gets the access
 * ACL (unless equivalent to the mode) and, for a directory, the default
 * ACL; without one, *mode &= ~umask. Symlinks are left alone. Errors:
 * -ENOMEM, -EUCLEAN (dir's default ACL is not valid), the store's.
 * Free n with pfs_acl_new_free (also on error).
 */
int pfs_acl_inherit(struct pfs_fs *fs, uint64_t dir, uint32_t *mode, uint32_t umask,
		    struct pfs_acl_new *n);
/* Add n's xattrs of the new inode ino to t (after its create). */
void pfs_acl_new_emit(struct pfs_txn *t, uint64_t ino, const struct pfs_acl_new *n);
void pfs_acl_new_free(struct pfs_acl_new *n);

/*
 * chmod of o (its inode lock held) to mode: when o has an access ACL, add
 * to t its update (pfs_acl_chmod); b keeps the value until submit (free
 * b->p after). 0 or -errno (-EUCLEAN: the stored ACL is not valid).
 */
int pfs_acl_chmod_txn(struct pfs_fs *fs, const struct pfs_onode *o, uint32_t mode,
		      struct pfs_txn *t, struct pfs_acl_buf *b);

/*
 * setxattr (val non-NULL) or removexattr (val NULL) of an ACL name, as
 * Linux does it: the value is validated; setting the access ACL sets the
 * mode's permission bits from it, and an ACL equivalent to the mode is
 * not stored (any stored one goes); a bare header removes the ACL.
 * flags other than XATTR_CREATE/REPLACE are -EINVAL; those two are
 * ignored, as Linux ignores them for ACLs. Errors: those of
 * pfs_acl_valid, -EACCES (a default ACL on a non-directory),
 * -EOPNOTSUPP (a symlink), -ENODATA (removing one there is not), -ENOENT,
 * -ENOSPC, -EROFS. Setting the access ACL by a cred (not NULL) that is
 * neither uid 0 nor in the file's group also clears S_ISGID
 * (posix_acl_update_mode).
 */
int pfs_acl_set(struct pfs_fs *fs, uint64_t ino, enum pfs_acl_type type, const void *val,
		size_t len, int flags, const struct pfs_fs_cred *cred);

#endif /* POSFS_FS_ACL_H */
