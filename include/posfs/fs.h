/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libposfs namespace layer (src/fs): a POSIX file system on the objects of
 * the store. inode = object, inode number = object id (the root directory
 * is POSFS_ROOT_OID, FUSE's root id), FUSE generation = the onode's
 * generation. The FUSE daemon (fuse/) and fsck call this layer; it knows
 * nothing of FUSE.
 *
 * Every call that changes the namespace is one store transaction, so it is
 * atomic and crash-safe (cross-shard ones too). Calls return once the
 * change is applied (every later call sees it); pfs_fs_fsync makes the
 * changes of one inode durable.
 *
 * Errors: 0 (or a count) or -errno, as ext4 gives them: -ENOENT, -EEXIST,
 * -ENOTDIR, -EISDIR, -ENOTEMPTY, -ENAMETOOLONG (a name past
 * POSFS_NAME_MAX = 255 bytes, on every path; such a name is never stored),
 * -EINVAL, -EPERM, -EMLINK (PFS_FS_LINK_MAX), -ENOSPC, -EFBIG, -EROFS
 * (read-only store), -EIO, -EUCLEAN/-EBADMSG (corruption found: run fsck).
 *
 * Permissions are not checked here: the daemon mounts with
 * default_permissions and the kernel checks modes and ACLs. What the
 * kernel cannot do is done here: ownership of new inodes (the caller's
 * uid and gid, setgid-directory inheritance), the clearing of set-user-
 * and set-group-ID on a write or truncate, and the POSIX ACL work Linux
 * leaves to each file system (acl.c): ACLs are the xattrs
 * system.posix_acl_access and system.posix_acl_default (Linux's xattr
 * format), validated when set; a new inode inherits its directory's
 * default ACL (or gets the caller's umask, struct pfs_fs_cred); the mode
 * and the access ACL are kept in step by setxattr and chmod.
 *
 * chattr +i and +a (FS_IMMUTABLE_FL, FS_APPEND_FL in the onode's chattr
 * flags) are enforced here too, on every path, as the kernel's VFS and
 * ext4 enforce them (the kernel checks nothing of them for FUSE); what
 * they refuse is -EPERM. An immutable inode: no write, truncate,
 * fallocate or copy into it, no setattr but its chattr flags (and the
 * atime a read sets, PFS_FS_SET_KEEP_CTIME), no xattr or ACL set or
 * removed, no open for writing or O_TRUNC, no new link to it, and it is
 * not unlinked, removed or renamed; an immutable directory takes no
 * entry in and gives none up. An append-only inode: writes only at its
 * end, fallocate only of modes 0 and FALLOC_FL_KEEP_SIZE, no truncate, no
 * chmod, chown or explicit times (a touch, PFS_FS_SET_TOUCH, is fine), no
 * xattrs, opens for writing only with O_APPEND and never O_TRUNC, no new
 * link, not unlinked or renamed; an append-only directory takes new
 * entries and gives none up. Setting or clearing either flag takes
 * CAP_LINUX_IMMUTABLE, which this layer takes uid 0 as holding; an inode
 * that stays immutable changes no other flag.
 *
 * Thread-safe: every function may be called from any thread at any time
 * between pfs_fs_open and pfs_fs_close.
 */
#ifndef POSFS_FS_H
#define POSFS_FS_H

#include <stdint.h>
#include <sys/types.h>

#include "posfs/disk.h"

struct pfs_store;
struct pfs_fs;

#define PFS_FS_LINK_MAX		65000u	/* hard links of a file, subdirectories + 2 of a dir (ext4) */
#define PFS_FS_SYMLINK_MAX	4095u	/* bytes of a symlink target (PATH_MAX - 1) */
#define PFS_FS_XATTR_NAME_MAX	255u	/* bytes of an xattr name */
#define PFS_FS_XATTR_SIZE_MAX	65536u	/* bytes of an xattr value */

/* What a stat(2) reply needs. */
struct pfs_fs_attr {
	uint64_t ino;
	uint64_t generation;
	uint32_t mode, uid, gid, nlink;
	uint64_t size;
	uint64_t blocks;		/* 512-byte units */
	uint64_t rdev;
	struct pfs_timespec atime, mtime, ctime, btime;
	uint32_t flags;			/* chattr flags (FS_*_FL) */
	uint32_t blksize;		/* preferred I/O size: the block size */
};

/* Who asks (the FUSE request's uid and gid). uid 0 is taken as holding
 * CAP_FOWNER, and CAP_FSETID unless setid says otherwise. umask: the
 * caller's, for mknod and mkdir (FUSE: fuse_req_ctx()->umask); it masks the
 * new inode's mode unless the directory has a default ACL (then the ACL
 * masks it instead, as Linux's posix_acl_create); 0 masks nothing. setid:
 * what the request does to a file's set-ID bits, when the kernel says
 * (FUSE_HANDLE_KILLPRIV_V2: it weighed CAP_FSETID, chown and the like).
 * Initialise with designated initialisers: fields may be added. */
struct pfs_fs_cred {
	uint32_t uid, gid;
	uint32_t umask;
	uint8_t setid;			/* PFS_FS_SETID_* */
	/* supplementary groups of the caller (may be NULL: then gid alone
	 * says who is "in the group" of an inode, for the set-group-ID rules) */
	uint32_t ngroups;
	const uint32_t *groups;
};

/*
 * Set-ID bits and a change of data (write, truncate, fallocate, copy into
 * the file), as the kernel's should_remove_suid: a caller without
 * CAP_FSETID clears S_ISUID of a regular file always, and S_ISGID when the
 * file is group-executable or the caller is not in its group (gid or
 * groups). setid says whether the caller holds CAP_FSETID:
 */
/* not said: uid 0 is taken as holding it */
#define PFS_FS_SETID_BY_UID	0
/* it does (the kernel said so): keep the bits */
#define PFS_FS_SETID_KEEP	1
/* it does not (the kernel said so); in a setattr also the kernel's kill
 * of a chown, which clears S_ISUID always and S_ISGID as
 * setattr_should_drop_sgid (uid 0 taken as holding CAP_FSETID there) */
#define PFS_FS_SETID_CLEAR	2

/* ---- fs.c: mount, inodes, attributes, orphans, statfs, fsync ---------- */

/*
 * Start the namespace layer on an open store (the caller keeps owning the
 * store and closes it after pfs_fs_close). Recovers from a crash: every
 * object left on a shard's orphan list (unlinked while open) is removed.
 * Creates the shards' orphan-list objects where missing. A read-only store
 * is accepted (orphans are then left alone; changes fail with -EROFS).
 * Errors: -ENOMEM, -EUCLEAN (no root directory), those of the store.
 */
int pfs_fs_open(struct pfs_store *st, struct pfs_fs **fsp);

/*
 * Where new directories go (fs/place.c). ORLOV, the default: the parent's
 * shard unless the shards are out of balance, top-level directories
 * spread. PARENT: always the parent's shard; SPREAD: every directory on
 * the next shard in turn. The other two are for measurement
 * (tests/bench/place-bench).
 */
enum pfs_fs_placement {
	PFS_FS_PLACE_ORLOV,
	PFS_FS_PLACE_PARENT,
	PFS_FS_PLACE_SPREAD,
};

void pfs_fs_set_placement(struct pfs_fs *fs, enum pfs_fs_placement p);

/*
 * Free the layer. Inodes still open (pfs_fs_inode_open without release)
 * that are orphans stay on the orphan list: the next pfs_fs_open reclaims
 * them. Does not sync or close the store. NULL is fine.
 */
void pfs_fs_close(struct pfs_fs *fs);

/* Attributes of ino. -ENOENT when there is no such inode. */
int pfs_fs_getattr(struct pfs_fs *fs, uint64_t ino, struct pfs_fs_attr *attr);

/*
 * For export handles (NFS): as pfs_fs_getattr, but -ESTALE when ino is
 * gone, is an unlinked orphan, or its generation is not generation.
 */
int pfs_fs_getattr_gen(struct pfs_fs *fs, uint64_t ino, uint64_t generation,
		       struct pfs_fs_attr *attr);

/* pfs_fs_setattr mask */
#define PFS_FS_SET_MODE		0x0001u	/* permission bits (and S_ISUID/S_ISGID/S_ISVTX) */
#define PFS_FS_SET_UID		0x0002u
#define PFS_FS_SET_GID		0x0004u
#define PFS_FS_SET_SIZE		0x0008u	/* truncate or extend (sparse) */
#define PFS_FS_SET_ATIME	0x0010u
#define PFS_FS_SET_MTIME	0x0020u
#define PFS_FS_SET_CTIME	0x0040u	/* explicit ctime; otherwise ctime = now */
#define PFS_FS_SET_BTIME	0x0080u
#define PFS_FS_SET_FLAGS	0x0100u	/* chattr flags */
#define PFS_FS_SET_KEEP_CTIME	0x0200u	/* leave ctime (an atime update by a read) */
#define PFS_FS_SET_TOUCH	0x0400u	/* the times given are "now" (utimes(NULL)) */

/*
 * Change the attributes of ino named by mask, from attr (UTIME_NOW is the
 * daemon's business: it passes real times). ctime becomes now unless
 * PFS_FS_SET_CTIME gives it or PFS_FS_SET_KEEP_CTIME keeps it (an atime
 * update by a read, as relatime makes); a change of one time alone (the
 * other UTIME_OMIT) changes ctime, as any change does. A mask of 0 changes
 * nothing (futimens with UTIME_OMIT twice), unless cred clears set-ID bits
 * (below). PFS_FS_SET_SIZE: regular files only; mtime and ctime
 * become now (when the size changes or not, as ftruncate) and set-ID bits
 * are cleared as a write by cred clears them (PFS_FS_SETID_*). With
 * cred->setid PFS_FS_SETID_CLEAR they are cleared whatever mask holds: by
 * the chown rules with PFS_FS_SET_UID or _GID, else (the kernel's kill
 * alone, mask 0) by the write rules. cred may be NULL (taken as uid 0,
 * setid not said). attr_out (may be NULL) gets the
 * new attributes. PFS_FS_SET_TOUCH says that the times asked are the
 * caller's "now", not times of its choosing (utimensat with NULL or
 * UTIME_NOW), which an append-only inode takes. Errors: -ENOENT, -EISDIR
 * (size of a directory), -EINVAL (size of another non-regular file),
 * -EFBIG (past the largest file the format allows), -EPERM (chattr +i or
 * +a refuse it, above; +i or +a set or cleared by a cred other than uid
 * 0), -ENOSPC, -EROFS.
 */
int pfs_fs_setattr(struct pfs_fs *fs, uint64_t ino, const struct pfs_fs_attr *attr,
		   uint32_t mask, const struct pfs_fs_cred *cred, struct pfs_fs_attr *attr_out);

/*
 * Open counts, kept in memory: the daemon calls pfs_fs_inode_open at each
 * open/create of a file and opendir of a directory (anything it keeps
 * open) and pfs_fs_inode_release at each release. An inode whose last
 * link goes while it is open (unlink; rmdir, or a rename over it, of a
 * directory) becomes an orphan (POSFS_ONODE_ORPHAN, recorded on its
 * shard's orphan list) with nlink 0, keeps its attributes and xattrs, and
 * is removed at its last release, in one transaction with its orphan
 * record. Nothing can be made in a directory that is an orphan (-ENOENT),
 * and pfs_fs_readdir of one is -ENOENT. Errors: -ENOENT (no such inode, or
 * an orphan already: open), -EINVAL (release without open), those of the
 * store (release: the count is dropped anyway; the next mount reclaims).
 */
int pfs_fs_inode_open(struct pfs_fs *fs, uint64_t ino);
/* As pfs_fs_inode_open, for an open(2) with oflags (O_ACCMODE, O_APPEND,
 * O_TRUNC; others are ignored): -EPERM for a write or O_TRUNC open of an
 * immutable inode, and for an append-only one without O_APPEND or with
 * O_TRUNC (chattr +i, +a, above), then nothing is counted. */
int pfs_fs_inode_open_for(struct pfs_fs *fs, uint64_t ino, int oflags);
int pfs_fs_inode_release(struct pfs_fs *fs, uint64_t ino);

struct pfs_fs_statfs {
	uint32_t bsize;			/* block size */
	uint64_t blocks, bfree, bavail;
	uint64_t files, ffree;		/* objects; ffree: free blocks (an estimate) */
	uint32_t namemax;		/* POSFS_NAME_MAX */
};

int pfs_fs_statfs(struct pfs_fs *fs, struct pfs_fs_statfs *sfs);

/*
 * Return once everything submitted for ino (its data, attributes, and for
 * a directory its entries) is durable. datasync is accepted and treated
 * as a full fsync (the metadata rides in the same WAL records). This is
 * fsync, fdatasync and fsyncdir. Errors: -EIO, those of the store.
 */
int pfs_fs_fsync(struct pfs_fs *fs, uint64_t ino, int datasync);

/* ---- fs.c: xattrs (names as "user.x"; namespaces are the kernel's) ------ */

/*
 * flags: 0, XATTR_CREATE (-EEXIST when there) or XATTR_REPLACE (-ENODATA
 * when not). ctime becomes now. Errors: -ERANGE (name empty or past 255
 * bytes), -E2BIG (value past 64 KiB), -EINVAL (other flags), -ENOENT,
 * -EPERM (chattr +i or +a, also for ACLs and removexattr), -ENOSPC, -EROFS.
 *
 * ACLs (acl.c), as Linux (fs/posix_acl.c) and ext4 do them:
 * system.posix_acl_access and system.posix_acl_default values must be
 * valid ACLs (struct posix_acl_xattr_header, version 2, then entries in
 * tag order; -EINVAL otherwise, -EOPNOTSUPP for another version); a bare
 * header removes the ACL; XATTR_CREATE/REPLACE are ignored. Setting the
 * access ACL sets the mode's permission bits from it, and one the mode
 * says in full (no named entries, no mask) is not stored. A default ACL
 * on a non-directory is -EACCES; ACLs on a symlink -EOPNOTSUPP. Removing
 * the access ACL leaves the mode. pfs_fs_setattr(PFS_FS_SET_MODE) updates
 * the access ACL's USER_OBJ, MASK (or GROUP_OBJ) and OTHER entries.
 */
int pfs_fs_setxattr(struct pfs_fs *fs, uint64_t ino, const char *name, const void *value,
		    size_t size, int flags);
/*
 * As pfs_fs_setxattr, by cred (NULL: as uid 0): setting an access ACL by a
 * caller who is not in the file's group (gid or groups) and is not uid 0
 * (taken as holding CAP_FSETID) clears S_ISGID, as posix_acl_update_mode.
 */
int pfs_fs_setxattr_cred(struct pfs_fs *fs, uint64_t ino, const char *name, const void *value,
			 size_t size, int flags, const struct pfs_fs_cred *cred);
/* The value's length (cap 0: just the length); -ENODATA, -ERANGE (cap too
 * small), -ENOENT. */
ssize_t pfs_fs_getxattr(struct pfs_fs *fs, uint64_t ino, const char *name, void *buf,
			size_t cap);
/* NUL-terminated names, as listxattr(2); -ERANGE, cap 0 as above. */
ssize_t pfs_fs_listxattr(struct pfs_fs *fs, uint64_t ino, char *buf, size_t cap);
/* -ENODATA when there is no such xattr. ctime becomes now. */
int pfs_fs_removexattr(struct pfs_fs *fs, uint64_t ino, const char *name);

/* ---- namei.c: directories -------------------------------------------- */

/*
 * Look name up in directory dir ("." and ".." too). Errors: -ENOENT,
 * -ENOTDIR (dir is not a directory), -ENAMETOOLONG, -EINVAL (a '/' in
 * name).
 */
int pfs_fs_lookup(struct pfs_fs *fs, uint64_t dir, const char *name, struct pfs_fs_attr *attr);

/*
 * Make a regular file (S_IFREG, or no type bits), fifo, socket, character
 * or block device (rdev) named name in dir, owned by cred (gid: dir's when
 * dir has S_ISGID). All four times are now; dir's mtime and ctime too.
 * The new file goes to dir's shard. Permission bits: with a default ACL
 * on dir, mode & the ACL, and the new inode gets an access ACL from it
 * (posix_acl_create; a new directory gets the default ACL too); without,
 * mode & ~cred->umask. attr gets its attributes (may be NULL). create(2)
 * is this with S_IFREG. -EUCLEAN: dir's default ACL is damaged. Errors: -EEXIST, -ENOENT (dir
 * gone), -ENOTDIR, -EPERM (dir is immutable), -ENAMETOOLONG, -EINVAL (S_IFDIR, S_IFLNK or unknown
 * type; '/' in name), -ENOSPC, -EROFS.
 */
int pfs_fs_mknod(struct pfs_fs *fs, uint64_t dir, const char *name, uint32_t mode,
		 uint64_t rdev, const struct pfs_fs_cred *cred, struct pfs_fs_attr *attr);

/*
 * open(2) of dir with O_TMPFILE: a regular file without a name (mode: its
 * permission bits, S_IFREG or no type bits), made as mknod makes one
 * (owner, setgid-directory group, default ACL or umask, inherited chattr
 * flags; dir's times stay), with nlink 0 and on the orphan list (an
 * unlinked-while-open file), and counted open once: the caller's
 * pfs_fs_inode_release of it removes it, as does the next pfs_fs_open
 * after a crash. Unless oflags has O_EXCL, pfs_fs_link may give it its
 * first name while it is open. attr gets its attributes (may be NULL).
 * Errors: those of mknod but -EEXIST and -ENAMETOOLONG; -EINVAL (another
 * type).
 */
int pfs_fs_tmpfile(struct pfs_fs *fs, uint64_t dir, uint32_t mode, int oflags,
		   const struct pfs_fs_cred *cred, struct pfs_fs_attr *attr);

/* As mknod, for a directory (S_IFDIR is added; S_ISGID inherited from a
 * setgid dir). New directories go round-robin over the shards. dir's nlink
 * rises by one; -EMLINK at PFS_FS_LINK_MAX. */
int pfs_fs_mkdir(struct pfs_fs *fs, uint64_t dir, const char *name, uint32_t mode,
		 const struct pfs_fs_cred *cred, struct pfs_fs_attr *attr);

/* As mknod, for a symlink to target (1 .. PFS_FS_SYMLINK_MAX bytes, else
 * -ENOENT for empty and -ENAMETOOLONG), mode 0777 (no umask, no ACL). */
int pfs_fs_symlink(struct pfs_fs *fs, uint64_t dir, const char *name, const char *target,
		   const struct pfs_fs_cred *cred, struct pfs_fs_attr *attr);

/* Copy ino's target to buf (at most cap bytes, not NUL-terminated) and
 * return its full length. Errors: -EINVAL (not a symlink), -ENOENT. */
ssize_t pfs_fs_readlink(struct pfs_fs *fs, uint64_t ino, char *buf, size_t cap);

/*
 * A new link newname in newdir to ino (any shard). ino's nlink rises and
 * its ctime becomes now. An open O_TMPFILE inode (pfs_fs_tmpfile without
 * O_EXCL) not linked before gets its first name so (nlink 1, off the
 * orphan list): linkat(fd, "", ..., AT_EMPTY_PATH). Errors: -EPERM (ino
 * is a directory, immutable or append-only; newdir immutable), -EMLINK,
 * -ENOENT (ino gone, or unlinked and not such an O_TMPFILE inode, as
 * Linux), -EEXIST, and those of mknod.
 */
int pfs_fs_link(struct pfs_fs *fs, uint64_t ino, uint64_t newdir, const char *newname,
		struct pfs_fs_attr *attr);

/* Remove the entry name (not a directory: -EISDIR) from dir. The inode
 * goes with its last link, or becomes an orphan while open. -EPERM: dir or
 * the inode is immutable or append-only. */
int pfs_fs_unlink(struct pfs_fs *fs, uint64_t dir, const char *name);

/* Remove the empty directory name from dir (an orphan while it is open:
 * pfs_fs_inode_open). Errors: -ENOTDIR, -ENOTEMPTY (also for ".."),
 * -EINVAL ("."), -ENOENT, -EPERM (dir or name immutable or append-only). */
int pfs_fs_rmdir(struct pfs_fs *fs, uint64_t dir, const char *name);

#ifndef RENAME_NOREPLACE
#define RENAME_NOREPLACE	(1 << 0)
#endif
#ifndef RENAME_EXCHANGE
#define RENAME_EXCHANGE		(1 << 1)
#endif

/*
 * rename(2)/renameat2(2), in one transaction, also across directories and
 * shards (never -EXDEV). flags: 0, RENAME_NOREPLACE (-EEXIST when newname
 * exists) or RENAME_EXCHANGE (swap the two, which must both exist).
 * Errors: -ENOENT, -EEXIST, -ENOTDIR (a directory over a non-directory, or
 * newdir not a directory), -EISDIR (a non-directory over a directory),
 * -ENOTEMPTY, -EINVAL (a directory into its own subtree; "." or ".."; bad
 * flags), -EMLINK, -ENAMETOOLONG, -EPERM (either inode, dir, or newdir when
 * an entry of it goes, immutable or append-only; newdir immutable). Renaming a name onto a link of the same
 * inode does nothing (0).
 */
int pfs_fs_rename(struct pfs_fs *fs, uint64_t dir, const char *name, uint64_t newdir,
		  const char *newname, unsigned int flags);

/*
 * Called for each entry: name (NUL-terminated), its inode and DT_* type,
 * and the cookie to resume after it. A nonzero return stops readdir (the
 * entry is then taken as not consumed by the caller's choice: resume with
 * the last cookie it did take). fn runs with no lock of the layer held.
 */
typedef int (*pfs_fs_dirent_fn)(void *arg, const char *name, uint64_t ino, unsigned type,
				uint64_t next_cookie);

/*
 * List dir from cookie (0: the start): ".", "..", then the entries in the
 * order they were added. Cookies stay valid while entries come and go: an
 * entry present during a whole listing is returned exactly once; one added
 * or removed meanwhile may or may not be; one renamed within dir keeps its
 * place, so a listing that renames what it reads ends. Returns 0 at the end or when fn
 * stopped. Errors: -ENOENT, -ENOTDIR.
 */
int pfs_fs_readdir(struct pfs_fs *fs, uint64_t dir, uint64_t cookie, pfs_fs_dirent_fn fn,
		   void *arg);

/* ---- file.c: data ------------------------------------------------------ */

/* Up to len bytes at off: the count read (short or 0 at the end). -EISDIR,
 * -EINVAL (not a regular file or symlink). */
ssize_t pfs_fs_read(struct pfs_fs *fs, uint64_t ino, uint64_t off, size_t len, void *buf);

/* Scrub up to len bytes at off (pfs_store_scrub: checked as the device
 * holds them; buf is scratch): the count checked, -EIO at the first block
 * that does not match its checksum, -EISDIR, -EINVAL (not a regular file
 * or symlink). */
ssize_t pfs_fs_scrub(struct pfs_fs *fs, uint64_t ino, uint64_t off, size_t len, void *buf);

/*
 * Write len bytes at off and return len. mtime and ctime become now;
 * S_ISUID and (with S_IXGRP) S_ISGID are cleared, as Linux does for a
 * writer without CAP_FSETID: as cred->setid says, or when it does not
 * say, unless cred is uid 0 (or NULL). Errors: -EPERM (immutable, or
 * append-only and off is not the size), -EISDIR,
 * -EINVAL (not a regular file), -EFBIG, -ENOSPC, -EROFS.
 */
ssize_t pfs_fs_write(struct pfs_fs *fs, uint64_t ino, uint64_t off, size_t len,
		     const void *buf, const struct pfs_fs_cred *cred);

/*
 * fallocate(2). There are no unwritten extents yet, so:
 *  - 0 and FALLOC_FL_KEEP_SIZE: the holes of the range (within the file's
 *    size with KEEP_SIZE) are written with zeros, so the range reads as
 *    before and later writes there have their blocks; mode 0 extends the
 *    size to off + len.
 *  - FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE: the range (within the
 *    size) reads as zeros and whole blocks are given back.
 *  - FALLOC_FL_ZERO_RANGE (with or without KEEP_SIZE): the range reads as
 *    zeros (whole blocks given back: a later write may still hit
 *    -ENOSPC); the size extends to off + len unless KEEP_SIZE.
 * mtime and ctime become now. Errors: -EPERM (immutable; append-only and
 * a mode other than 0 and KEEP_SIZE), -EOPNOTSUPP (any other mode,
 * PUNCH_HOLE without KEEP_SIZE), -EINVAL (len 0), -EFBIG, -EISDIR,
 * -ENODEV (not a regular file), -ENOSPC, -EROFS.
 */
int pfs_fs_fallocate(struct pfs_fs *fs, uint64_t ino, int mode, uint64_t off, uint64_t len);

/* lseek(2) SEEK_DATA / SEEK_HOLE (whence); -ENXIO at or past the end or no
 * data after off; -EINVAL for another whence. */
int pfs_fs_lseek(struct pfs_fs *fs, uint64_t ino, uint64_t off, int whence, uint64_t *result);

/*
 * copy_file_range(2) between regular files: the bytes copied (short at the
 * end of ino_in, 0 past it; a call may copy less than asked, as the
 * syscall may). Whole blocks at matching block offsets are cloned (shared
 * copy on write, also between files of different shards); the rest is
 * copied. Errors: -EPERM (ino_out immutable or append-only), -EINVAL (overlapping
 * ranges of one file), -EISDIR, -EFBIG, -ENOSPC. The destination's mtime
 * and ctime become now and its set-ID bits go as for a write.
 */
ssize_t pfs_fs_copy_range(struct pfs_fs *fs, uint64_t ino_in, uint64_t off_in,
			  uint64_t ino_out, uint64_t off_out, size_t len,
			  const struct pfs_fs_cred *cred);

#endif /* POSFS_FS_H */
