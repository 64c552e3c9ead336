/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Pass 3: the namespace. It reads the records of src/fs (format.h lays
 * them out; src/fs/dent.h codes them and hands out seqs, as for the layer)
 * through the public store API and repairs them in store transactions,
 * one per problem, without opening the namespace layer (pfs_fs_open
 * reclaims orphans itself and would hide them).
 *
 * What it knows of each inode lives in scratch maps, never in arrays that
 * grow with the file system: "inodes" (oid -> struct ino_rec), "dirs" (the
 * directories, walked while "inodes" changes: a map is never changed while
 * it is iterated, the other maps and the store are used meanwhile) and
 * "bad" (objects with no valid type). Omap records are copied out of the
 * shard lock a fixed batch at a time. Objects numbered below
 * POSFS_LOCAL_FIRST other than the root are the store's and the layer's
 * own (the orphan lists): no inodes, and entries naming them dangle.
 * Steps, in order:
 *
 *   1. scan every shard's objects into the maps;
 *   2. read the orphan lists: mark what they name, drop records for
 *      objects that are gone or of another shard (ORPHAN_RECORD);
 *   3. the root (ROOT); then objects with no valid type (BAD_TYPE);
 *   4. walk every directory: malformed and dangling entries, entries
 *      naming the root, the 'n'/'s' pairing, entry types; count the
 *      entries naming each inode and the subdirectories of each directory;
 *   5. a directory named by several entries keeps one (DIR_LINKS): the one
 *      in the directory its '..' names, else the first met (directories
 *      in oid order, entries in name order); the keeper is its "holder";
 *   6. '..' is made the holder (DOTDOT);
 *   7. reachability of directories, by following holders up (a walk stamp
 *      finds cycles); the top of each unreachable tree (no holder, or the
 *      directory where its cycle closed, whose entry is then removed) is
 *      connected in /lost+found (UNREACHABLE), its subtree with it;
 *   8. every inode: files no entry names (UNREACHABLE when nlink > 0, else
 *      reclaimed: ORPHAN when on its orphan list, ORPHAN_RECORD when not),
 *      orphan flag and record on linked inodes (ORPHAN_RECORD), nlink
 *      (NLINK); the counts of the result.
 *
 * Invariants the order keeps, so that a second run finds nothing:
 *   N1. Counts (links, subdirs) are of the entries left after each step's
 *       fixes; NLINK is decided last, from them.
 *   N2. Fixes that remove a damaged entry leave link counts to NLINK; the
 *       checker's own additions (/lost+found and what is connected there)
 *       change nlink as the layer would, and the maps follow.
 *   N3. Nothing is ever added to an orphan list: a linked inode is no
 *       orphan (flag and record go), an unlinked one is reclaimed.
 *
 * Choices: entries the layer cannot have written (a name with '/' or NUL,
 * "." or "..", a value not of 17 bytes, inode 0) are DANGLING and removed.
 * lost+found is made (mode 0700, in the root) only when something must go
 * there, after asking LOST_FOUND. When the root's "lost+found" is not a
 * directory, a new directory takes the name and the old entry moves into
 * it as "#<ino>", so nothing is lost. Names in lost+found are "#<ino>",
 * then "#<ino>.1", "#<ino>.2", ... when taken. A directory is never
 * reclaimed, but for what a crash leaves of one removed while open: empty,
 * nlink 0, flagged and listed as an orphan, and named by no entry, it is
 * reclaimed as such a file is (step 7 leaves it, step 8 removes it); any
 * other that no entry names goes there too, whatever its nlink or orphan
 * flag. Without a root (not fixed), reachability is not checked.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "check/check_internal.h"
#include "fs/dent.h"

/* What the pass knows of an inode (map "inodes"). */
struct ino_rec {
	uint64_t parent;	/* the onode's parent field: a directory's '..' */
	uint64_t first;		/* dirs: the first directory met holding an entry */
	uint64_t holder;	/* dirs: the directory whose entry is kept, 0 none */
	uint64_t stamp;		/* dirs: the reachability walk that last passed */
	uint32_t mode, nlink, oflags;
	uint32_t links;		/* entries naming it */
	uint32_t subdirs;	/* dirs: its entries naming directories */
	uint32_t bits;		/* R_* */
};
_Static_assert(sizeof(struct ino_rec) <= 64, "a scratch map value is at most 64 bytes");

#define R_BAD		0x01u	/* no valid file type, not cleared */
#define R_LISTED	0x02u	/* on its shard's orphan list */
#define R_IN_PARENT	0x04u	/* dirs: its parent field's directory holds an entry */
#define R_KEPT		0x08u	/* dirs: step 5 met the kept entry */
#define R_REACH		0x10u	/* dirs: reachable from the root */
#define R_UNREACH	0x20u	/* dirs: unreachable, its top was reported */
#define R_ENTRIES	0x40u	/* dirs: step 4 met entries in it */
#define R_RECLAIM	0x80u	/* dirs: an orphan removed while open (step 7) */

/* Omap records copied out of the shard lock, a batch at a time. */
#define BATCH		32u
#define VAL_MAX		256u

struct brec {
	uint16_t klen;
	uint32_t vlen;			/* the whole value's length */
	uint8_t key[POSFS_OMAP_KEY_MAX];
	uint8_t val[VAL_MAX];		/* its first VAL_MAX bytes */
};

struct batch {
	unsigned n;
	struct brec r[BATCH];
	uint8_t after[POSFS_OMAP_KEY_MAX];
	size_t alen;
};

struct names {
	struct pfs_check *c;
	struct pfs_store *st;
	uint32_t shards;
	struct pfs_map *inodes, *dirs, *bad;
	struct batch *b;
	bool have_root;
	bool multi;			/* some directory has several entries */
	bool final;			/* step 8: "inodes" is being iterated */
	bool lf_looked;			/* lost+found looked up (lf 0: none) */
	uint64_t lf, lf_seq;		/* lost+found and its next seq (0 unknown) */
	uint64_t walk;
	uint64_t objects, ndirs, entries;
	uint64_t done, total;
	int err;			/* what stops the pass */
};

static const uint8_t one = 1;

/* ---- small helpers ------------------------------------------------------ */

static bool type_ok(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: case S_IFDIR: case S_IFLNK: case S_IFCHR: case S_IFBLK:
	case S_IFIFO: case S_IFSOCK:
		return true;
	}
	return false;
}

static uint8_t dt_of(uint32_t mode)
{
	return (uint8_t)((mode & S_IFMT) >> 12);
}

static bool is_inode(uint64_t oid)
{
	return oid == POSFS_ROOT_OID || POSFS_OID_LOCAL(oid) >= POSFS_LOCAL_FIRST;
}

/* A name fit for a message: non-printing bytes as \xNN, long ones cut
 * (check_internal.h). */
const char *pfs_check_name_show(char *buf, size_t cap, const uint8_t *name, size_t len)
{
	size_t o = 0, i;

	for (i = 0; i < len && o + 8 < cap; i++) {
		if (name[i] >= 0x20 && name[i] < 0x7f && name[i] != '\\' && name[i] != '"')
			buf[o++] = (char)name[i];
		else
			o += (size_t)snprintf(buf + o, cap - o, "\\x%02x", name[i]);
	}
	if (i < len)
		o += (size_t)snprintf(buf + o, cap - o, "...");
	buf[o] = 0;
	return buf;
}

#define SHOW_MAX 96

static struct pfs_timespec now_ts(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (struct pfs_timespec){ .sec = ts.tv_sec, .nsec = (uint32_t)ts.tv_nsec };
}

static int rec_get(struct names *n, uint64_t oid, struct ino_rec *r)
{
	return pfs_map_get(n->inodes, oid, r);
}

static int rec_put(struct names *n, uint64_t oid, const struct ino_rec *r)
{
	return pfs_map_put(n->inodes, oid, r);
}

/* Also called with a shard locked (step 1): the progress callback makes
 * no store call. */
static void progress(struct names *n)
{
	if ((++n->done & 1023) == 0)
		pfs_check_progress(n->c, PFS_PASS_NAMES, n->done,
				   n->total > n->done ? n->total : n->done);
}

/*
 * A fix was tried: report how it went. Errors that say the store cannot
 * go on (device, corruption, memory) stop the pass; the others (no space,
 * too large, a name taken) leave this problem unfixed and go on.
 */
static int fixed(struct names *n, int err)
{
	if (!err) {
		pfs_check_fixed(n->c);
		return 0;
	}
	pfs_check_unfixed(n->c, err);
	if (err == -ENOSPC || err == -E2BIG || err == -EEXIST || err == -ENOENT ||
	    err == -EOVERFLOW || err == -EMLINK)
		return 0;
	n->err = err;
	return err;
}

static int submit(struct names *n, struct pfs_txn *t)
{
	return pfs_store_submit(n->st, t, 0, NULL);
}

/* ---- omap batches --------------------------------------------------------- */

static int batch_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct batch *b = arg;
	struct brec *r = &b->r[b->n];

	if (klen > POSFS_OMAP_KEY_MAX)
		return -EUCLEAN;
	r->klen = (uint16_t)klen;
	memcpy(r->key, key, klen);
	r->vlen = (uint32_t)vlen;
	memcpy(r->val, val, vlen < VAL_MAX ? vlen : VAL_MAX);
	return ++b->n == BATCH ? 1 : 0;
}

/*
 * The next batch of oid's omap records into n->b: 1 when there may be
 * more after it, 0 at the end, or -errno. Start with b->alen = 0.
 */
static int batch_next(struct names *n, uint64_t oid, bool first)
{
	struct batch *b = n->b;
	int ret;

	b->n = 0;
	ret = pfs_store_omap_iterate(n->st, oid, first ? NULL : b->after, first ? 0 : b->alen,
				     batch_cb, b);
	if (ret < 0)
		return ret;
	if (b->n) {
		b->alen = b->r[b->n - 1].klen;
		memcpy(b->after, b->r[b->n - 1].key, b->alen);
	}
	return ret == 1;
}

/* ---- entries one at a time (pass 4) ----------------------------------------- */

struct dirent_next {
	struct pfs_check_dirent *e;
	uint8_t *key;
	size_t *klen;
};

static int dirent_next_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct dirent_next *dn = arg;
	const uint8_t *k = key, *name;
	struct pfs_dent d;
	size_t len;
	int ret = pfs_dent_name_key_decode(key, klen, &name, &len);

	if (ret == -ENOENT)
		return !klen || k[0] < POSFS_DENT_NAME ? 0 : 2;	/* the 'n' records are one run */
	if (ret || pfs_dent_decode(val, vlen, &d))
		return 0;
	if (!is_inode(d.ino) || d.ino == POSFS_ROOT_OID)
		return 0;
	dn->e->ino = d.ino;
	dn->e->type = d.type;
	dn->e->len = (uint16_t)len;
	memcpy(dn->e->name, name, len);
	memcpy(dn->key, key, klen);
	*dn->klen = klen;
	return 1;
}

int pfs_check_dirent_next(struct pfs_store *st, uint64_t dir, uint8_t *key, size_t *klen,
			  struct pfs_check_dirent *e)
{
	struct dirent_next dn = { e, key, klen };
	uint8_t after[1 + POSFS_NAME_MAX];
	size_t alen = *klen;
	int ret;

	/* from "n": the first entry, past whatever keys sort before it */
	if (!alen || alen > sizeof(after)) {
		after[0] = POSFS_DENT_NAME;
		alen = 1;
	} else {
		memcpy(after, key, alen);	/* the callback moves the cursor */
	}
	ret = pfs_store_omap_iterate(st, dir, after, alen, dirent_next_cb, &dn);
	return ret < 0 ? ret : ret == 1;
}

/* ---- removing entries ------------------------------------------------------ */

/* Add to t the removal of dir's entry nkey (and of its 's' record when that
 * names it back). */
static int dent_rm_txn(struct names *n, struct pfs_txn *t, uint64_t dir, const uint8_t *nkey,
		       size_t nklen, uint64_t seq, uint8_t skey[POSFS_DENT_SEQ_KEY_LEN])
{
	uint8_t name[VAL_MAX];
	ssize_t r;

	pfs_txn_omap_rm(t, dir, nkey, nklen);
	if (seq < POSFS_DENT_FIRST_SEQ)
		return 0;
	pfs_dent_seq_key(skey, seq);
	r = pfs_store_omap_get(n->st, dir, skey, POSFS_DENT_SEQ_KEY_LEN, name, sizeof(name));
	if (r == -ENOENT || r == -ERANGE)
		return 0;
	if (r < 0)
		return (int)r;
	if ((size_t)r == nklen - 1 && !memcmp(name, nkey + 1, nklen - 1))
		pfs_txn_omap_rm(t, dir, skey, POSFS_DENT_SEQ_KEY_LEN);
	return 0;
}

static int dent_remove(struct names *n, uint64_t dir, const uint8_t *nkey, size_t nklen,
		       uint64_t seq)
{
	uint8_t skey[POSFS_DENT_SEQ_KEY_LEN];
	struct pfs_txn t;
	int ret;

	pfs_txn_init(&t);
	ret = dent_rm_txn(n, &t, dir, nkey, nklen, seq, skey);
	if (!ret)
		ret = submit(n, &t);
	pfs_txn_fini(&t);
	return ret;
}

static int omap_rm1(struct names *n, uint64_t oid, const void *key, size_t klen)
{
	struct pfs_txn t;
	int ret;

	pfs_txn_init(&t);
	pfs_txn_omap_rm(&t, oid, key, klen);
	ret = submit(n, &t);
	pfs_txn_fini(&t);
	return ret;
}

static int setattr1(struct names *n, uint64_t oid, const struct pfs_attr *a, uint32_t mask)
{
	struct pfs_txn t;
	int ret;

	pfs_txn_init(&t);
	pfs_txn_setattr(&t, oid, a, mask);
	ret = submit(n, &t);
	pfs_txn_fini(&t);
	return ret;
}

/* ---- step 1: objects -------------------------------------------------------- */

static int scan_cb(void *arg, const struct pfs_onode *o)
{
	struct names *n = arg;
	struct ino_rec r = { 0 };
	int ret;

	progress(n);
	if (!is_inode(o->oid))
		return 0;	/* the store's and the layer's own objects */
	r.mode = o->mode;
	r.nlink = o->nlink;
	r.oflags = o->flags;
	r.parent = o->parent;
	if (!type_ok(o->mode))
		r.bits |= R_BAD;
	ret = rec_put(n, o->oid, &r);
	if (!ret && (r.bits & R_BAD))
		ret = pfs_map_put(n->bad, o->oid, &one);
	else if (!ret && S_ISDIR(o->mode))
		ret = pfs_map_put(n->dirs, o->oid, &one);
	n->objects++;
	return ret;
}

/* ---- step 2: orphan lists ---------------------------------------------------- */

static int orphan_list_read(struct names *n, uint32_t shard)
{
	uint64_t list = POSFS_OID(shard, POSFS_LOCAL_ORPHANS);
	struct batch *b = n->b;
	bool first = true;
	int more;

	do {
		more = batch_next(n, list, first);
		if (more == -ENOENT && first)
			return 0;	/* no list in this shard (mkfs makes none) */
		if (more < 0)
			return more;
		first = false;
		for (unsigned i = 0; i < b->n; i++) {
			const struct brec *k = &b->r[i];
			struct ino_rec r;
			uint64_t oid;
			int ret;

			if (pfs_orphan_key_decode(k->key, k->klen, &oid))
				continue;	/* not the layer's: left alone, as it does */
			ret = POSFS_OID_SHARD(oid) == shard && is_inode(oid) ?
			      rec_get(n, oid, &r) : -ENOENT;
			if (!ret) {
				r.bits |= R_LISTED;
				ret = rec_put(n, oid, &r);
				if (ret)
					return ret;
				continue;
			}
			if (ret != -ENOENT)
				return ret;
			if (pfs_check_problem(n->c, PFS_PR_ORPHAN_RECORD, "shard %u: orphan list "
					      "names object %#" PRIx64 ", which %s", shard, oid,
					      POSFS_OID_SHARD(oid) != shard ?
					      "is of another shard" : "does not exist") &&
			    fixed(n, omap_rm1(n, list, k->key, k->klen)))
				return n->err;
		}
	} while (more);
	return 0;
}

/* ---- step 3: the root, objects of no type ------------------------------------ */

/* Create the directory oid (nlink 2) in t. */
static void dir_create_txn(struct pfs_txn *t, uint64_t oid, uint64_t parent, uint32_t perm,
			   uint32_t uid, uint32_t gid)
{
	struct pfs_attr a = { .mode = S_IFDIR | perm, .uid = uid, .gid = gid, .nlink = 2,
			      .parent = parent };

	a.atime = a.mtime = a.ctime = a.btime = now_ts();
	pfs_txn_create(t, oid, &a);
}

static int root_check(struct names *n)
{
	const struct pfs_super *sb = pfs_store_super(n->st);
	struct ino_rec r;
	struct pfs_txn t;
	bool exists;
	int ret;

	ret = rec_get(n, POSFS_ROOT_OID, &r);
	if (ret && ret != -ENOENT)
		return ret;
	exists = !ret;
	if (exists && S_ISDIR(r.mode)) {
		n->have_root = true;
		goto reach;
	}
	if (!(exists ? pfs_check_problem(n->c, PFS_PR_ROOT, "object %#" PRIx64 ": the root "
					 "is not a directory (mode %#o)", POSFS_ROOT_OID, r.mode)
		     : pfs_check_problem(n->c, PFS_PR_ROOT,
					 "object %#" PRIx64 ": the root directory is missing",
					 POSFS_ROOT_OID)))
		return 0;
	if (exists) {
		ret = pfs_fs_remove_steps(n->st, POSFS_ROOT_OID, r.bits & R_LISTED);
		if (ret)
			return fixed(n, ret);
		ret = pfs_map_del(n->inodes, POSFS_ROOT_OID);
		if (!ret && (r.bits & R_BAD))
			ret = pfs_map_del(n->bad, POSFS_ROOT_OID);
		if (ret)
			return fixed(n, ret);
	}
	/* as mkfs makes it */
	pfs_txn_init(&t);
	dir_create_txn(&t, POSFS_ROOT_OID, POSFS_ROOT_OID, 0755, sb->root_uid, sb->root_gid);
	ret = submit(n, &t);
	pfs_txn_fini(&t);
	if (fixed(n, ret) || ret)
		return n->err;
	memset(&r, 0, sizeof(r));
	r.mode = S_IFDIR | 0755;
	r.nlink = 2;
	r.parent = POSFS_ROOT_OID;
	ret = pfs_map_put(n->dirs, POSFS_ROOT_OID, &one);
	if (ret)
		return ret;
	n->have_root = true;
reach:
	r.bits |= R_REACH;
	return rec_put(n, POSFS_ROOT_OID, &r);
}

static int bad_cb(void *arg, uint64_t oid, const void *val)
{
	struct names *n = arg;
	struct ino_rec r;
	int ret;

	(void)val;
	if (oid == POSFS_ROOT_OID)
		return 0;	/* ROOT's (the fix was declined) */
	ret = rec_get(n, oid, &r);
	if (ret)
		return ret;
	if (!pfs_check_problem(n->c, PFS_PR_BAD_TYPE, "object %#" PRIx64 ": mode %#o has no "
			       "valid file type", oid, r.mode))
		return 0;
	ret = pfs_fs_remove_steps(n->st, oid, r.bits & R_LISTED);
	if (ret)
		return fixed(n, ret);
	fixed(n, 0);
	/* gone: entries naming it are now dangling */
	return pfs_map_del(n->inodes, oid);
}

/* ---- step 4: entries ---------------------------------------------------------- */

struct dwalk {
	uint64_t dir;
	uint64_t next_seq;		/* a fresh seq for the directory, 0 unknown */
};

static int fresh_seq(struct names *n, struct dwalk *w, uint64_t *seq)
{
	int ret = 0;

	if (!w->next_seq)
		ret = pfs_dent_seq_next(n->st, w->dir, &w->next_seq);
	if (!ret)
		*seq = w->next_seq++;
	return ret;
}

/* The 'n' record's 's' record: make it exist and name it back. */
static int dent_index(struct names *n, struct dwalk *w, const struct brec *k, struct pfs_dent *d,
		      const char *show)
{
	uint8_t skey[POSFS_DENT_SEQ_KEY_LEN], name[VAL_MAX], val[POSFS_DENT_VLEN];
	size_t nlen = k->klen - 1u;
	struct pfs_txn t;
	uint64_t seq;
	ssize_t r = -ENOENT;
	int ret;

	if (d->seq >= POSFS_DENT_FIRST_SEQ) {
		pfs_dent_seq_key(skey, d->seq);
		r = pfs_store_omap_get(n->st, w->dir, skey, sizeof(skey), name, sizeof(name));
		if (r >= 0 && (size_t)r == nlen && !memcmp(name, k->key + 1, nlen))
			return 0;
		if (r < 0 && r != -ENOENT && r != -ERANGE)
			return (int)r;
		if (r == -ENOENT) {
			if (!pfs_check_problem(n->c, PFS_PR_DIRENT_INDEX, "directory %#" PRIx64
					       ": entry \"%s\" has no listing record %" PRIu64,
					       w->dir, show, d->seq))
				return 0;
			pfs_txn_init(&t);
			pfs_txn_omap_insert(&t, w->dir, skey, sizeof(skey), k->key + 1, nlen);
			ret = submit(n, &t);
			pfs_txn_fini(&t);
			if (!ret && w->next_seq && d->seq >= w->next_seq)
				w->next_seq = d->seq + 1;	/* fresh ones stay fresh */
			return fixed(n, ret);
		}
	}
	if (!pfs_check_problem(n->c, PFS_PR_DIRENT_INDEX, "directory %#" PRIx64 ": entry \"%s\": "
			       "listing record %" PRIu64 " %s", w->dir, show, d->seq,
			       d->seq < POSFS_DENT_FIRST_SEQ ? "is reserved" :
			       "names another entry"))
		return 0;
	ret = fresh_seq(n, w, &seq);
	if (ret)
		return fixed(n, ret);
	pfs_dent_encode(val, &(struct pfs_dent){ .ino = d->ino, .seq = seq, .type = d->type });
	pfs_dent_seq_key(skey, seq);
	pfs_txn_init(&t);
	pfs_txn_omap_set(&t, w->dir, k->key, k->klen, val, POSFS_DENT_VLEN);
	pfs_txn_omap_insert(&t, w->dir, skey, sizeof(skey), k->key + 1, nlen);
	ret = submit(n, &t);
	pfs_txn_fini(&t);
	if (!ret)
		d->seq = seq;
	return fixed(n, ret);
}

static int dent_check(struct names *n, struct dwalk *w, const struct brec *k)
{
	char show[SHOW_MAX];
	uint8_t val[POSFS_DENT_VLEN];
	struct ino_rec r, dr;
	struct pfs_txn t;
	struct pfs_dent d;
	int ret;

	pfs_check_name_show(show, sizeof(show), k->key + 1, k->klen - 1u);
	n->entries++;
	if (!pfs_dent_name_ok(k->key + 1, k->klen - 1u) || k->vlen != POSFS_DENT_VLEN) {
		if (!pfs_check_problem(n->c, PFS_PR_DANGLING, "directory %#" PRIx64 ": entry \"%s\""
				       " is malformed (%s)", w->dir, show,
				       k->vlen != POSFS_DENT_VLEN ? "value length" : "name"))
			return 0;
		if (k->vlen != POSFS_DENT_VLEN)	/* its 's' record, if any, is then stray */
			return fixed(n, omap_rm1(n, w->dir, k->key, k->klen));
		pfs_dent_decode(k->val, k->vlen, &d);
		return fixed(n, dent_remove(n, w->dir, k->key, k->klen, d.seq));
	}
	pfs_dent_decode(k->val, k->vlen, &d);
	ret = is_inode(d.ino) ? rec_get(n, d.ino, &r) : -ENOENT;
	if (ret && ret != -ENOENT)
		return ret;
	if (ret) {
		if (pfs_check_problem(n->c, PFS_PR_DANGLING, "directory %#" PRIx64 ": entry \"%s\""
				      " names object %#" PRIx64 ", which does not exist", w->dir,
				      show, d.ino))
			return fixed(n, dent_remove(n, w->dir, k->key, k->klen, d.seq));
		return 0;
	}
	if (d.ino == POSFS_ROOT_OID) {
		/* the root is named by no entry: its '..' is itself */
		if (pfs_check_problem(n->c, PFS_PR_DIR_LINKS, "directory %#" PRIx64 ": entry \"%s\""
				      " names the root directory", w->dir, show))
			return fixed(n, dent_remove(n, w->dir, k->key, k->klen, d.seq));
		return 0;
	}
	ret = dent_index(n, w, k, &d, show);
	if (ret)
		return ret;
	if (r.bits & R_BAD)
		return 0;	/* left as it is, as the object was */
	if (d.type != dt_of(r.mode) &&
	    pfs_check_problem(n->c, PFS_PR_DIRENT_TYPE, "directory %#" PRIx64 ": entry \"%s\" "
			      "-> object %#" PRIx64 ": type %u, the object's is %u", w->dir, show,
			      d.ino, d.type, dt_of(r.mode))) {
		d.type = dt_of(r.mode);
		pfs_dent_encode(val, &d);
		pfs_txn_init(&t);
		pfs_txn_omap_set(&t, w->dir, k->key, k->klen, val, POSFS_DENT_VLEN);
		ret = submit(n, &t);
		pfs_txn_fini(&t);
		if (fixed(n, ret))
			return n->err;
	}
	r.links++;
	if (!S_ISDIR(r.mode))
		return rec_put(n, d.ino, &r);
	/* an entry of a directory in itself is never the one to keep */
	if (r.parent == w->dir && w->dir != d.ino)
		r.bits |= R_IN_PARENT;
	if (!r.first || r.first == d.ino)
		r.first = w->dir;
	if (r.links > 1)
		n->multi = true;
	ret = rec_put(n, d.ino, &r);
	if (!ret)
		ret = rec_get(n, w->dir, &dr);
	if (ret)
		return ret;
	dr.subdirs++;
	return rec_put(n, w->dir, &dr);
}

/*
 * An 's' record: it must name an 'n' record that has its seq. The batch's
 * copy may be stale: a fix of an 'n' record earlier in the batch may have
 * removed it.
 */
static int seq_check(struct names *n, struct dwalk *w, struct brec *k)
{
	uint8_t nkey[1 + POSFS_NAME_MAX], val[POSFS_DENT_VLEN];
	char show[SHOW_MAX];
	const char *why = NULL;
	bool named = false;
	uint64_t seq = 0;
	struct pfs_dent d;
	ssize_t r;

	r = pfs_store_omap_get(n->st, w->dir, k->key, k->klen, k->val, VAL_MAX);
	if (r == -ENOENT)
		return 0;
	if (r < 0 && r != -ERANGE)
		return (int)r;
	if (r >= 0)
		k->vlen = (uint32_t)r;
	if (pfs_dent_seq_key_decode(k->key, k->klen, &seq))
		why = "has a malformed key";
	else if (!k->vlen || k->vlen > POSFS_NAME_MAX)
		why = "holds no valid name";
	if (!why) {
		size_t nklen = pfs_dent_name_key(nkey, k->val, k->vlen);

		pfs_check_name_show(show, sizeof(show), k->val, k->vlen);
		r = pfs_store_omap_get(n->st, w->dir, nkey, nklen, val, sizeof(val));
		if (r < 0 && r != -ENOENT && r != -ERANGE)
			return (int)r;
		if (r >= 0 && !pfs_dent_decode(val, (size_t)r, &d) && d.seq == seq)
			return 0;
		why = r == -ENOENT ? "which is not an entry" : "whose entry has another seq";
		named = true;
	}
	if (!(named ? pfs_check_problem(n->c, PFS_PR_DIRENT_INDEX, "directory %#" PRIx64
					": listing record %" PRIu64 " names \"%s\", %s", w->dir,
					seq, show, why)
		    : pfs_check_problem(n->c, PFS_PR_DIRENT_INDEX, "directory %#" PRIx64
					": listing record %" PRIu64 " %s", w->dir, seq, why)))
		return 0;
	return fixed(n, omap_rm1(n, w->dir, k->key, k->klen));
}

static int walk_entries(struct names *n, uint64_t dir)
{
	struct dwalk w = { .dir = dir };
	struct batch *b = n->b;
	uint64_t entries = n->entries;
	struct ino_rec r;
	bool first = true;
	int more, ret;

	do {
		more = batch_next(n, dir, first);
		if (more < 0)
			return more;
		first = false;
		for (unsigned i = 0; i < b->n; i++) {
			struct brec *k = &b->r[i];

			if (k->klen >= 1 && k->key[0] == POSFS_DENT_NAME)
				ret = dent_check(n, &w, k);
			else if (k->klen >= 1 && k->key[0] == POSFS_DENT_SEQ)
				ret = seq_check(n, &w, k);
			else
				ret = 0;	/* not the layer's: left alone */
			if (ret)
				return ret;
		}
	} while (more);
	if (n->entries == entries)
		return 0;
	ret = rec_get(n, dir, &r);
	if (ret)
		return ret;
	r.bits |= R_ENTRIES;
	return rec_put(n, dir, &r);
}

static int walk1_cb(void *arg, uint64_t dir, const void *val)
{
	struct names *n = arg;

	(void)val;
	progress(n);
	n->ndirs++;
	return walk_entries(n, dir);
}

/* ---- step 5: directories with several entries --------------------------------- */

static int holder_cb(void *arg, uint64_t dir, const void *val)
{
	struct names *n = arg;
	struct ino_rec r;
	int ret;

	(void)val;
	ret = rec_get(n, dir, &r);
	if (ret)
		return ret;
	r.holder = 0;
	if (r.links && dir != POSFS_ROOT_OID)
		r.holder = (r.bits & R_IN_PARENT) ? r.parent : r.first;
	return rec_put(n, dir, &r);
}

static int links_dir(struct names *n, uint64_t dir)
{
	struct batch *b = n->b;
	bool first = true;
	int more, ret;

	do {
		more = batch_next(n, dir, first);
		if (more < 0)
			return more;
		first = false;
		for (unsigned i = 0; i < b->n; i++) {
			const struct brec *k = &b->r[i];
			char show[SHOW_MAX];
			struct ino_rec r, dr;
			struct pfs_dent d;

			if (k->klen < 2 || k->key[0] != POSFS_DENT_NAME || k->vlen != POSFS_DENT_VLEN)
				continue;
			pfs_dent_decode(k->val, k->vlen, &d);
			if (!is_inode(d.ino) || d.ino == POSFS_ROOT_OID)
				continue;
			ret = rec_get(n, d.ino, &r);
			if (ret == -ENOENT)
				continue;
			if (ret)
				return ret;
			if (!S_ISDIR(r.mode) || (r.bits & R_BAD) || r.links < 2)
				continue;
			if (r.holder == dir && !(r.bits & R_KEPT)) {
				r.bits |= R_KEPT;
				ret = rec_put(n, d.ino, &r);
				if (ret)
					return ret;
				continue;
			}
			pfs_check_name_show(show, sizeof(show), k->key + 1, k->klen - 1u);
			if (!pfs_check_problem(n->c, PFS_PR_DIR_LINKS, "directory %#" PRIx64
					       ": entry \"%s\" names directory %#" PRIx64 ", which "
					       "is kept in directory %#" PRIx64, dir, show, d.ino,
					       r.holder))
				continue;
			ret = dent_remove(n, dir, k->key, k->klen, d.seq);
			if (fixed(n, ret))
				return n->err;
			if (ret)
				continue;
			r.links--;
			ret = rec_put(n, d.ino, &r);
			if (!ret)
				ret = rec_get(n, dir, &dr);
			if (ret)
				return ret;
			dr.subdirs--;
			ret = rec_put(n, dir, &dr);
			if (ret)
				return ret;
		}
	} while (more);
	return 0;
}

static int links_cb(void *arg, uint64_t dir, const void *val)
{
	struct names *n = arg;
	struct ino_rec r;
	int ret;

	(void)val;
	ret = rec_get(n, dir, &r);
	if (ret || !r.subdirs)
		return ret;
	return links_dir(n, dir);
}

/* ---- step 6: '..' ---------------------------------------------------------------- */

static int dotdot_cb(void *arg, uint64_t dir, const void *val)
{
	struct names *n = arg;
	struct pfs_attr a = { 0 };
	struct ino_rec r;
	uint64_t want;
	int ret;

	(void)val;
	ret = rec_get(n, dir, &r);
	if (ret)
		return ret;
	want = dir == POSFS_ROOT_OID ? POSFS_ROOT_OID : r.holder;
	if (!want || r.parent == want)
		return 0;	/* no entry: step 7 connects it */
	if (!pfs_check_problem(n->c, PFS_PR_DOTDOT, "directory %#" PRIx64 ": '..' is %#" PRIx64
			       ", its entry is in %#" PRIx64, dir, r.parent, want))
		return 0;
	a.parent = want;
	ret = setattr1(n, dir, &a, PFS_ATTR_PARENT);
	if (fixed(n, ret) || ret)
		return n->err;
	r.parent = want;
	r.bits |= R_IN_PARENT;
	return rec_put(n, dir, &r);
}

/* ---- lost+found ---------------------------------------------------------------- */

static const uint8_t lf_key[] = "nlost+found";
#define LF_KLEN (sizeof(lf_key) - 1)

/* The name "#<ino>" (or "#<ino>.<k>" when taken) for ino in lost+found. */
static int lf_name(struct names *n, uint64_t ino, uint8_t *key, size_t *klen)
{
	for (unsigned k = 0; k < 1000; k++) {
		uint8_t val[POSFS_DENT_VLEN];
		ssize_t r;
		int len;

		len = k ? snprintf((char *)key + 1, POSFS_NAME_MAX, "#%" PRIu64 ".%u", ino, k)
			: snprintf((char *)key + 1, POSFS_NAME_MAX, "#%" PRIu64, ino);
		key[0] = POSFS_DENT_NAME;
		*klen = (size_t)len + 1;
		r = pfs_store_omap_get(n->st, n->lf, key, *klen, val, sizeof(val));
		if (r == -ENOENT)
			return 0;
		if (r < 0 && r != -ERANGE)
			return (int)r;
	}
	return -EEXIST;
}

/* Add to t the entry of ino (type dt) in lost+found; *seq gets its seq. */
static int lf_add_txn(struct names *n, struct pfs_txn *t, uint64_t ino, uint8_t dt,
		      uint8_t *nkey, size_t *nklen, uint8_t val[POSFS_DENT_VLEN], uint8_t skey[POSFS_DENT_SEQ_KEY_LEN])
{
	struct pfs_dent d = { .ino = ino, .type = dt };
	int ret;

	ret = lf_name(n, ino, nkey, nklen);
	if (!ret && !n->lf_seq)
		ret = pfs_dent_seq_next(n->st, n->lf, &n->lf_seq);
	if (ret)
		return ret;
	d.seq = n->lf_seq;
	pfs_dent_encode(val, &d);
	pfs_dent_seq_key(skey, d.seq);
	pfs_txn_omap_insert(t, n->lf, nkey, *nklen, val, POSFS_DENT_VLEN);
	pfs_txn_omap_insert(t, n->lf, skey, POSFS_DENT_SEQ_KEY_LEN, nkey + 1, *nklen - 1);
	return 0;
}

/*
 * Make /lost+found, a directory (mode 0700, owned by root) in the root.
 * old: the root's entry of that name that is not a directory: it moves
 * into the new directory as "#<ino>".
 */
static int lf_make(struct names *n, const struct pfs_dent *old)
{
	uint8_t val[POSFS_DENT_VLEN], oval[POSFS_DENT_VLEN], skey[POSFS_DENT_SEQ_KEY_LEN], oskey[POSFS_DENT_SEQ_KEY_LEN],
		mskey[POSFS_DENT_SEQ_KEY_LEN], mkey[32];
	struct pfs_attr a = { 0 };
	struct pfs_onode root;
	struct ino_rec r;
	struct pfs_txn t;
	struct pfs_dent d, m;
	uint64_t lf;
	int ret, len;

	ret = pfs_store_stat(n->st, POSFS_ROOT_OID, &root);
	if (!ret)
		ret = pfs_store_oid_alloc(n->st, POSFS_OID_SHARD(POSFS_ROOT_OID), &lf);
	if (!ret)
		ret = pfs_dent_seq_next(n->st, POSFS_ROOT_OID, &d.seq);
	if (ret)
		return ret;
	d.ino = lf;
	d.type = DT_DIR;
	pfs_dent_encode(val, &d);
	pfs_dent_seq_key(skey, d.seq);
	pfs_txn_init(&t);
	dir_create_txn(&t, lf, POSFS_ROOT_OID, 0700, 0, 0);
	if (old) {
		/* the old entry's records go, it moves to "#<ino>" in the new one */
		ret = dent_rm_txn(n, &t, POSFS_ROOT_OID, lf_key, LF_KLEN, old->seq, oskey);
		if (ret)
			goto out;
		m = *old;
		len = snprintf((char *)mkey + 1, sizeof(mkey) - 1, "#%" PRIu64, old->ino);
		mkey[0] = POSFS_DENT_NAME;
		m.seq = POSFS_DENT_FIRST_SEQ;
		pfs_dent_encode(oval, &m);
		pfs_dent_seq_key(mskey, m.seq);
		pfs_txn_omap_insert(&t, lf, mkey, (size_t)len + 1, oval, POSFS_DENT_VLEN);
		pfs_txn_omap_insert(&t, lf, mskey, sizeof(mskey), mkey + 1, (size_t)len);
	}
	pfs_txn_omap_insert(&t, POSFS_ROOT_OID, lf_key, LF_KLEN, val, POSFS_DENT_VLEN);
	pfs_txn_omap_insert(&t, POSFS_ROOT_OID, skey, sizeof(skey), lf_key + 1, LF_KLEN - 1);
	a.nlink = root.nlink + 1;
	a.mtime = a.ctime = now_ts();
	pfs_txn_setattr(&t, POSFS_ROOT_OID, &a, PFS_ATTR_NLINK | PFS_ATTR_MTIME | PFS_ATTR_CTIME);
	ret = submit(n, &t);
out:
	pfs_txn_fini(&t);
	if (ret)
		return ret;
	n->lf = lf;
	n->lf_seq = old ? POSFS_DENT_FIRST_SEQ + 1 : POSFS_DENT_FIRST_SEQ;
	if (n->final) {
		/* "inodes" is being iterated: the new directory is counted here */
		n->c->res->dirs++;
		return 0;
	}
	memset(&r, 0, sizeof(r));
	r.mode = S_IFDIR | 0700;
	r.nlink = 2;
	r.parent = r.first = r.holder = POSFS_ROOT_OID;
	r.links = 1;
	r.bits = R_IN_PARENT | R_REACH;
	ret = rec_put(n, lf, &r);
	if (!ret)
		ret = rec_get(n, POSFS_ROOT_OID, &r);
	if (ret)
		return ret;
	r.subdirs++;
	r.nlink++;
	return rec_put(n, POSFS_ROOT_OID, &r);
}

/*
 * /lost+found, looked up or made once: 0 with n->lf set (0 when there is
 * none to be had), or an error that stops the pass. It reads the onode,
 * not "inodes": step 8 calls it while iterating that map.
 */
static int lost_found(struct names *n)
{
	uint8_t val[POSFS_DENT_VLEN];
	struct pfs_onode o;
	struct pfs_dent d;
	ssize_t got;
	int ret;

	if (n->lf_looked)
		return 0;
	n->lf_looked = true;
	got = pfs_store_omap_get(n->st, POSFS_ROOT_OID, lf_key, LF_KLEN, val, sizeof(val));
	if (got < 0 && got != -ENOENT && got != -ERANGE)
		return (int)got;
	if (got == POSFS_DENT_VLEN) {
		pfs_dent_decode(val, (size_t)got, &d);
		ret = is_inode(d.ino) ? pfs_store_stat(n->st, d.ino, &o) : -ENOENT;
		if (ret && ret != -ENOENT)
			return ret;
		if (!ret && S_ISDIR(o.mode) && d.ino != POSFS_ROOT_OID) {
			n->lf = d.ino;
			return 0;
		}
		if (!pfs_check_problem(n->c, PFS_PR_LOST_FOUND, "directory %#" PRIx64 ": "
				       "lost+found is object %#" PRIx64 ", not a directory",
				       POSFS_ROOT_OID, d.ino))
			return 0;
		ret = lf_make(n, &d);
	} else {
		if (got != -ENOENT)
			return 0;	/* a malformed entry step 4 was not let remove */
		if (!pfs_check_problem(n->c, PFS_PR_LOST_FOUND, "directory %#" PRIx64 ": "
				       "lost+found is missing", POSFS_ROOT_OID))
			return 0;
		ret = lf_make(n, NULL);
	}
	return fixed(n, ret);
}

/* ---- step 7: reachability ----------------------------------------------------- */

/* The first entry of dir naming ino: its key into b->after (and alen),
 * its seq. -ENOENT when there is none. */
static int entry_find(struct names *n, uint64_t dir, uint64_t ino, uint8_t *key, size_t *klen,
		      uint64_t *seq)
{
	struct batch *b = n->b;
	bool first = true;
	int more;

	do {
		more = batch_next(n, dir, first);
		if (more < 0)
			return more;
		first = false;
		for (unsigned i = 0; i < b->n; i++) {
			const struct brec *k = &b->r[i];
			struct pfs_dent d;

			if (k->klen < 2 || k->key[0] != POSFS_DENT_NAME || k->vlen != POSFS_DENT_VLEN)
				continue;
			pfs_dent_decode(k->val, k->vlen, &d);
			if (d.ino != ino)
				continue;
			memcpy(key, k->key, k->klen);
			*klen = k->klen;
			*seq = d.seq;
			return 0;
		}
	} while (more);
	return -ENOENT;
}

/*
 * Connect the directory dir (the top of an unreachable tree) in
 * lost+found; in a cycle, its entry in its holder goes. lost+found is
 * looked up (or made) before the question, so that problems never nest.
 */
static int connect_dir(struct names *n, uint64_t dir)
{
	uint8_t nkey[1 + POSFS_NAME_MAX], okey[POSFS_OMAP_KEY_MAX], val[POSFS_DENT_VLEN];
	uint8_t skey[POSFS_DENT_SEQ_KEY_LEN], oskey[POSFS_DENT_SEQ_KEY_LEN];
	struct pfs_attr a = { 0 }, la = { 0 };
	struct ino_rec r, hr;
	struct pfs_onode lo;
	struct pfs_txn t;
	size_t nklen, oklen = 0;
	uint64_t oseq = 0, hold;
	int ret;

	ret = lost_found(n);
	if (!ret)
		ret = rec_get(n, dir, &r);
	if (ret)
		return ret;
	if (!(r.holder ? pfs_check_problem(n->c, PFS_PR_UNREACHABLE, "directory %#" PRIx64 ": "
					   "in a cycle of directories (its entry is in %#"
					   PRIx64 "), not reachable from the root", dir, r.holder)
		       : pfs_check_problem(n->c, PFS_PR_UNREACHABLE, "directory %#" PRIx64 ": no "
					   "entry names it, not reachable from the root", dir)))
		return 0;
	if (!n->lf || n->lf == dir)
		return fixed(n, -ENOENT);
	if (r.holder) {
		ret = entry_find(n, r.holder, dir, okey, &oklen, &oseq);
		if (ret == -ENOENT)
			ret = 0;
	}
	if (!ret)
		ret = pfs_store_stat(n->st, n->lf, &lo);
	if (ret)
		return fixed(n, ret);
	pfs_txn_init(&t);
	if (oklen)
		ret = dent_rm_txn(n, &t, r.holder, okey, oklen, oseq, oskey);
	if (!ret)
		ret = lf_add_txn(n, &t, dir, DT_DIR, nkey, &nklen, val, skey);
	if (!ret) {
		a.parent = n->lf;
		pfs_txn_setattr(&t, dir, &a, PFS_ATTR_PARENT);
		la.nlink = lo.nlink + 1;
		la.mtime = la.ctime = now_ts();
		pfs_txn_setattr(&t, n->lf, &la, PFS_ATTR_NLINK | PFS_ATTR_MTIME | PFS_ATTR_CTIME);
		ret = submit(n, &t);
	}
	pfs_txn_fini(&t);
	if (fixed(n, ret) || ret)
		return n->err;
	n->lf_seq++;
	/* dir's record first: its old holder may be dir itself */
	hold = r.holder;
	if (!oklen)
		r.links++;
	r.parent = r.holder = r.first = n->lf;
	r.bits |= R_IN_PARENT;
	ret = rec_put(n, dir, &r);
	if (!ret && oklen) {
		ret = rec_get(n, hold, &hr);
		hr.subdirs--;
		if (!ret)
			ret = rec_put(n, hold, &hr);
	}
	if (!ret)
		ret = rec_get(n, n->lf, &hr);
	if (ret)
		return ret;
	hr.subdirs++;
	hr.nlink++;
	return rec_put(n, n->lf, &hr);
}

static int reach_cb(void *arg, uint64_t dir, const void *val)
{
	struct names *n = arg;
	struct ino_rec r;
	uint64_t y, top = 0;
	bool reach = false;
	int ret;

	(void)val;
	ret = rec_get(n, dir, &r);
	if (ret || (r.bits & (R_REACH | R_UNREACH | R_RECLAIM)))
		return ret;
	if (dir != POSFS_ROOT_OID && !r.holder && !r.nlink && !(r.bits & R_ENTRIES) &&
	    (r.bits & R_LISTED) && (r.oflags & POSFS_ONODE_ORPHAN)) {
		/* removed while open: step 8 reclaims it */
		r.bits |= R_RECLAIM;
		return rec_put(n, dir, &r);
	}
	/* up the holders to the root, a known directory, the top, or a cycle */
	n->walk++;
	for (y = dir;;) {
		ret = rec_get(n, y, &r);
		if (ret)
			return ret;
		if (r.bits & (R_REACH | R_UNREACH)) {
			reach = r.bits & R_REACH;
			break;
		}
		if (r.stamp == n->walk || !r.holder) {
			top = y;	/* where a cycle closes, or no entry */
			break;
		}
		r.stamp = n->walk;
		ret = rec_put(n, y, &r);
		if (ret)
			return ret;
		y = r.holder;
	}
	for (y = dir; y;) {
		ret = rec_get(n, y, &r);
		if (ret)
			return ret;
		if (r.bits & (R_REACH | R_UNREACH))
			break;
		r.bits |= reach ? R_REACH : R_UNREACH;
		ret = rec_put(n, y, &r);
		if (ret)
			return ret;
		y = r.holder;
	}
	return top ? connect_dir(n, top) : 0;
}

/* ---- step 8: every inode ---------------------------------------------------------- */

/* Connect the non-directory ino in lost+found (looked up already): 0, or
 * what stops the pass. */
static int connect_file(struct names *n, uint64_t ino, const struct ino_rec *r, bool *done)
{
	uint8_t nkey[1 + POSFS_NAME_MAX], val[POSFS_DENT_VLEN], skey[POSFS_DENT_SEQ_KEY_LEN];
	struct pfs_attr la = { 0 };
	struct pfs_txn t;
	size_t nklen;
	int ret;

	*done = false;
	if (!n->lf)
		return fixed(n, -ENOENT);
	pfs_txn_init(&t);
	ret = lf_add_txn(n, &t, ino, dt_of(r->mode), nkey, &nklen, val, skey);
	if (!ret) {
		la.mtime = la.ctime = now_ts();
		pfs_txn_setattr(&t, n->lf, &la, PFS_ATTR_MTIME | PFS_ATTR_CTIME);
		ret = submit(n, &t);
	}
	pfs_txn_fini(&t);
	if (!ret) {
		n->lf_seq++;
		*done = true;
	}
	return fixed(n, ret);
}

/* Linked: the orphan flag and record go (N3). */
static int orphan_clear(struct names *n, uint64_t ino, const struct ino_rec *r)
{
	uint64_t list = POSFS_OID(POSFS_OID_SHARD(ino), POSFS_LOCAL_ORPHANS);
	struct pfs_attr a = { .onode_flags = r->oflags & ~(uint32_t)POSFS_ONODE_ORPHAN };
	struct pfs_txn t;
	uint8_t key[POSFS_ORPHAN_KEY_LEN];
	int ret;

	if (!pfs_check_problem(n->c, PFS_PR_ORPHAN_RECORD, "object %#" PRIx64 ": linked (%u "
			       "entr%s) but %s", ino, r->links, r->links == 1 ? "y" : "ies",
			       (r->bits & R_LISTED) && (r->oflags & POSFS_ONODE_ORPHAN) ?
			       "flagged and listed as an orphan" : (r->bits & R_LISTED) ?
			       "on the orphan list" : "flagged as an orphan"))
		return 0;
	pfs_orphan_key(key, ino);
	pfs_txn_init(&t);
	if (r->oflags & POSFS_ONODE_ORPHAN)
		pfs_txn_setattr(&t, ino, &a, PFS_ATTR_ONODE_FLAGS);
	if (r->bits & R_LISTED)
		pfs_txn_omap_rm(&t, list, key, sizeof(key));
	ret = submit(n, &t);
	pfs_txn_fini(&t);
	return fixed(n, ret);
}

static int nlink_fix(struct names *n, uint64_t ino, uint32_t nlink, uint32_t want)
{
	struct pfs_attr a = { .nlink = want };

	if (nlink == want ||
	    !pfs_check_problem(n->c, PFS_PR_NLINK, "object %#" PRIx64 ": nlink %u, counted %u",
			       ino, nlink, want))
		return 0;
	return fixed(n, setattr1(n, ino, &a, PFS_ATTR_NLINK));
}

static int final_cb(void *arg, uint64_t ino, const void *val)
{
	struct names *n = arg;
	struct pfs_check_result *res = n->c->res;
	struct ino_rec r;
	bool done;
	int ret;

	memcpy(&r, val, sizeof(r));
	progress(n);
	if (r.bits & R_BAD)
		return 0;
	if (S_ISDIR(r.mode) && (r.bits & R_RECLAIM)) {
		/* as an unlinked file's orphan below */
		if (n->c->readonly) {
			pfs_check_info(n->c, "directory %#" PRIx64 ": an orphan, reclaimed at "
				       "the next mount", ino);
			res->dirs++;
			return 0;
		}
		ret = pfs_fs_remove_steps(n->st, ino, true);
		if (ret)
			return ret;
		pfs_check_info(n->c, "directory %#" PRIx64 ": an orphan, reclaimed", ino);
		return 0;
	}
	if (S_ISDIR(r.mode)) {
		res->dirs++;
		ret = 0;
		if ((r.bits & R_LISTED) || (r.oflags & POSFS_ONODE_ORPHAN))
			ret = orphan_clear(n, ino, &r);
		if (!ret)
			ret = nlink_fix(n, ino, r.nlink, 2 + r.subdirs);
		return ret;
	}
	if (!r.links && r.nlink) {
		if (!n->have_root)
			goto count;	/* nowhere to connect it */
		ret = lost_found(n);
		if (ret)
			return ret;
		if (!pfs_check_problem(n->c, PFS_PR_UNREACHABLE, "object %#" PRIx64 ": nlink %u, "
				       "but no entry names it", ino, r.nlink))
			goto count;
		ret = connect_file(n, ino, &r, &done);
		if (ret)
			return ret;
		if (!done)
			goto count;
		r.links = 1;
	}
	if (!r.links) {
		/*
		 * Unlinked. Listed and flagged: what a crash leaves of a file
		 * unlinked while open, a consistent state that the mount
		 * finishes (as e2fsck's orphan list): reclaimed here without
		 * counting a problem, so that a crash leaves fsck nothing to
		 * repair. Otherwise damage.
		 */
		bool listed = r.bits & R_LISTED;

		if (listed && (r.oflags & POSFS_ONODE_ORPHAN)) {
			if (n->c->readonly) {
				pfs_check_info(n->c, "object %#" PRIx64 ": an orphan, reclaimed at "
					       "the next mount", ino);
				goto count;
			}
			ret = pfs_fs_remove_steps(n->st, ino, true);
			if (ret)
				return ret;
			pfs_check_info(n->c, "object %#" PRIx64 ": an orphan, reclaimed", ino);
			return 0;
		}
		if (!pfs_check_problem(n->c, listed ? PFS_PR_ORPHAN : PFS_PR_ORPHAN_RECORD,
				       "object %#" PRIx64 ": unlinked (nlink 0, no entry), %s", ino,
				       listed ? "listed but not marked an orphan" :
				       "not on the orphan list"))
			goto count;
		ret = pfs_fs_remove_steps(n->st, ino, listed);
		if (fixed(n, ret))
			return n->err;
		if (!ret)
			return 0;
		goto count;
	}
	if ((r.bits & R_LISTED) || (r.oflags & POSFS_ONODE_ORPHAN)) {
		ret = orphan_clear(n, ino, &r);
		if (ret)
			return ret;
	}
	ret = nlink_fix(n, ino, r.nlink, r.links);
	if (ret)
		return ret;
count:
	if (S_ISREG(r.mode))
		res->files++;
	else
		res->others++;
	return 0;
}

/* ---- the pass ------------------------------------------------------------------ */

int pfs_check_names(struct pfs_check *c)
{
	struct names n = { .c = c, .st = c->st };
	struct pfs_statfs sfs;
	int ret;

	n.shards = pfs_store_super(c->st)->shard_count;
	ret = pfs_store_statfs(c->st, &sfs);
	if (ret)
		return ret;
	n.total = 2 * sfs.objects;
	n.b = malloc(sizeof(*n.b));
	if (!n.b)
		return -ENOMEM;
	ret = pfs_map_create(c->maps, "names.inodes", sizeof(struct ino_rec), &n.inodes);
	if (!ret)
		ret = pfs_map_create(c->maps, "names.dirs", 1, &n.dirs);
	if (!ret)
		ret = pfs_map_create(c->maps, "names.bad", 1, &n.bad);
	/* 1 */
	for (uint32_t s = 0; !ret && s < n.shards; s++)
		ret = pfs_store_iterate_objects(c->st, s, scan_cb, &n);
	if (ret)
		goto out;
	n.total += pfs_map_count(n.dirs);
	/* 2 */
	for (uint32_t s = 0; !ret && s < n.shards; s++)
		ret = orphan_list_read(&n, s);
	/* 3 */
	if (!ret)
		ret = root_check(&n);
	if (!ret)
		ret = pfs_map_iterate(n.bad, bad_cb, &n);
	/* 4, 5, 6 */
	if (!ret)
		ret = pfs_map_iterate(n.dirs, walk1_cb, &n);
	if (!ret)
		ret = pfs_map_iterate(n.dirs, holder_cb, &n);
	if (!ret && n.multi)
		ret = pfs_map_iterate(n.dirs, links_cb, &n);
	if (!ret)
		ret = pfs_map_iterate(n.dirs, dotdot_cb, &n);
	/* 7: everything hangs on the root */
	if (!ret && n.have_root)
		ret = pfs_map_iterate(n.dirs, reach_cb, &n);
	/* 8 */
	n.final = true;
	if (!ret)
		ret = pfs_map_iterate(n.inodes, final_cb, &n);
	if (!ret) {
		pfs_check_progress(c, PFS_PASS_NAMES, n.total, n.total);
		pfs_check_info(c, "pass 3: %" PRIu64 " objects, %" PRIu64 " directories, %" PRIu64
			       " entries checked", n.objects, n.ndirs, n.entries);
	}
out:
	free(n.b);
	if (!ret)
		ret = n.err;
	return ret;
}
