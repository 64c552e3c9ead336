/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Pass 4 (deep mode, fsck -D): data checksums. Every data block of every
 * regular file and symlink is read through the store, which verifies it
 * against its shard's checksum table (csum.h C2) and tells the checker of
 * a block that does not match (pfs_check_data_error, the store's
 * data_error); then the damaged files are named by path. Steps:
 *
 *   1. scan every shard's objects: the regular files and symlinks whose
 *      data is not inline (map "data.files");
 *   2. read each from one data extent to the next (holes and unwritten
 *      extents cost nothing: pfs_store_seek), RUN bytes at a time; a run
 *      that fails with -EIO is read again block by block, so that every
 *      bad block is found. A damaged file goes in "data.damaged", its
 *      first BAD_SHOWN bad blocks in "data.blocks";
 *   3. when some are damaged, walk the namespace from the root, depth
 *      first, and report each damaged file at the first path met
 *      (DATA_CSUM); the walk ends once all are named. One that no entry
 *      names (with -n, pass 3 may have left it so) is reported as
 *      "inode N".
 *
 * Memory: what grows with the file system or with the damage is in the
 * scratch maps; the walk holds one cursor per directory of the path it is
 * on, and the path ("data.dirs" marks the directories walked, so that a
 * cycle or a directory with several entries, left by pass 3 under -n, is
 * walked once).
 *
 * Damaged data has no repair (there is no second copy): pfs_check_damage
 * counts it apart from the problems, and the superblock's error state,
 * which is for the metadata, is left alone.
 *
 * The store reports a block once (it remembers the last blocks it
 * reported): a block read a second time, by the block-by-block read or
 * as a block a clone shares with a file read before, fails with -EIO
 * unreported, as does a block the device cannot read. Its device block is
 * then the one the run's report named, or is found in the object's
 * extent map here.
 */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "check/check_internal.h"
#include "posfs/io.h"
#include "store/extmap.h"
#include "store/store_internal.h"

#define RUN		(1u << 20)	/* bytes per read */
#define BAD_SHOWN	8u		/* bad blocks listed per file */
#define SHOW_MAX	(4 * POSFS_NAME_MAX + 8)	/* a name, escaped */

/* A bad block: its byte offset in the file, its device block. */
struct bad_block {
	uint64_t off, blkno;
};

/* A damaged file (map "data.damaged"). */
struct damaged {
	uint64_t nbad;			/* its blocks that do not verify */
	uint64_t first;			/* the key of its first in "data.blocks" */
	uint64_t named;			/* reported at a path */
};

/* One directory on the walk's path. */
struct level {
	uint64_t dir;
	size_t plen;			/* the path's length at this directory */
	size_t klen;			/* the cursor in it */
	uint8_t key[1 + POSFS_NAME_MAX];
};

struct pfs_check_data {
	struct pfs_check *c;
	struct pfs_store *st;
	uint32_t bs;
	struct pfs_map *files, *damaged, *blocks, *dirs;
	uint8_t *buf;			/* RUN bytes */
	uint64_t next_key;		/* of "data.blocks" */

	/* the file being read, and what the store reported meanwhile */
	uint64_t oid;
	struct damaged cur;
	bool reported;
	struct bad_block last;

	uint64_t done, total;		/* progress: bytes */
	uint64_t nfiles, named;

	/* the walk */
	struct level *lv;
	size_t nlv, caplv;
	char *path;
	size_t pcap;
};

void pfs_check_data_error(void *arg, uint64_t oid, uint64_t off, uint64_t blkno)
{
	struct pfs_check *c = arg;
	struct pfs_check_data *d = c->data;

	if (!d || oid != d->oid)
		return;
	d->reported = true;
	d->last = (struct bad_block){ off, blkno };
}

static void progress(struct pfs_check_data *d)
{
	pfs_check_progress(d->c, PFS_PASS_DATA, d->done, d->total > d->done ? d->total : d->done);
}

/* ---- 1: the files ------------------------------------------------------------- */

/* With the shard locked: the maps only. Objects numbered below
 * POSFS_LOCAL_FIRST are the store's and the layer's own, no files. */
static int scan_cb(void *arg, const struct pfs_onode *o)
{
	struct pfs_check_data *d = arg;
	uint8_t none = 0;

	if ((!S_ISREG(o->mode) && !S_ISLNK(o->mode)) || o->data_fmt == POSFS_DATA_INLINE ||
	    POSFS_OID_LOCAL(o->oid) < POSFS_LOCAL_FIRST)
		return 0;
	d->total += o->blocks * 512;
	return pfs_map_put(d->files, o->oid, &none);
}

/* ---- 2: reading ----------------------------------------------------------------- */

/* The device block under byte off of the file being read (a block the
 * store did not report again): from its extent map. */
static int block_lookup(struct pfs_check_data *d, uint64_t off, uint64_t *blkno)
{
	uint32_t shard = POSFS_OID_SHARD(d->oid);
	uint64_t lblk = off / d->bs;
	struct pfs_dextent de;
	struct pfs_onode o;
	struct pfs_extent e;
	struct pfs_tx *tx;
	int ret = pfs_store_stat(d->st, d->oid, &o);

	if (!ret)
		ret = pfs_tx_begin_read(d->st, &shard, 1, &tx);
	if (ret)
		return ret;
	{
		struct pfs_extmap em = { tx, &o, shard };

		ret = pfs_extmap_lookup_le(&em, lblk, &de);
	}
	if (!ret)
		ret = pfs_extent_from_disk(&de, &e);
	pfs_tx_abort(tx);
	if (ret)
		return ret;
	if (lblk >= e.lblk + e.len)
		return -ENOENT;
	/* a compressed extent's blocks are its frame's: the frame's first */
	*blkno = e.pblk + ((e.flags & POSFS_EXTENT_COMPRESSED) ? 0 : lblk - e.lblk);
	return 0;
}

static int bad_add(struct pfs_check_data *d, struct bad_block bb)
{
	int ret = 0;

	if (d->cur.nbad < BAD_SHOWN) {
		if (!d->cur.nbad)
			d->cur.first = d->next_key;
		ret = pfs_map_put(d->blocks, d->next_key++, &bb);
	}
	d->cur.nbad++;
	d->c->res->damaged_blocks++;
	return ret;
}

/*
 * The run [off, off + len) failed with -EIO: each block read alone. first
 * is what the store reported for the run (the first bad block in it),
 * when it reported anything. The blocks of one bad compressed frame all
 * fail on the frame's device block: it counts once, at its first.
 */
static int run_by_block(struct pfs_check_data *d, uint64_t off, size_t len,
			const struct bad_block *first)
{
	uint64_t prev = UINT64_MAX;

	for (uint64_t b = off; b < off + len; b += d->bs) {
		size_t n = off + len - b < d->bs ? off + len - b : d->bs;
		struct bad_block bb = { b, 0 };
		ssize_t r;
		int ret = 0;

		d->reported = false;
		r = pfs_store_read(d->st, d->oid, b, n, d->buf);
		if (r >= 0)
			continue;
		if (r != -EIO)
			return (int)r;
		/* reported now, reported for the run, or reported before (or a
		 * block the device could not read) */
		if (d->reported)
			bb = d->last;
		else if (first && first->off == b)
			bb = *first;
		else
			ret = block_lookup(d, b, &bb.blkno);
		if (!ret && bb.blkno != prev)
			ret = bad_add(d, bb);
		if (ret)
			return ret;
		prev = bb.blkno;
	}
	return 0;
}

/* Read [off, off + len) of the file (block aligned off, len <= RUN). */
static int run_read(struct pfs_check_data *d, uint64_t off, size_t len)
{
	struct bad_block first;
	bool had;
	ssize_t r;

	d->reported = false;
	r = pfs_store_read(d->st, d->oid, off, len, d->buf);
	if (r >= 0)
		return 0;
	if (r != -EIO)
		return (int)r;
	had = d->reported;
	first = d->last;
	return run_by_block(d, off, len, had ? &first : NULL);
}

/* Every data extent of the file, a run at a time. */
static int file_read(struct pfs_check_data *d)
{
	uint64_t pos = 0, start, end;
	int ret;

	for (;;) {
		ret = pfs_store_seek(d->st, d->oid, pos, false, &start);
		if (ret == -ENXIO)
			return 0;	/* no data past pos */
		if (!ret)
			ret = pfs_store_seek(d->st, d->oid, start, true, &end);
		if (ret)
			return ret;
		for (pos = start; pos < end;) {
			size_t len = end - pos < RUN ? (size_t)(end - pos) : RUN;

			ret = run_read(d, pos, len);
			if (ret)
				return ret;
			pos += len;
			d->done += len;
			progress(d);
		}
	}
}

static int file_cb(void *arg, uint64_t oid, const void *val)
{
	struct pfs_check_data *d = arg;
	int ret;

	(void)val;
	d->oid = oid;
	memset(&d->cur, 0, sizeof(d->cur));
	ret = file_read(d);
	d->oid = 0;
	d->nfiles++;
	if (ret == -EUCLEAN || ret == -EBADMSG || ret == -ENOENT) {
		/* damage of the metadata, which pass 1 reported (with -n, an
		 * extent it was not let drop); the other errors stop the pass */
		pfs_check_info(d->c, "inode %" PRIu64 ": its data cannot be read to the end (%s)",
			       oid, strerror(-ret));
		ret = 0;
	}
	if (!ret && d->cur.nbad)
		ret = pfs_map_put(d->damaged, oid, &d->cur);
	return ret;
}

/* ---- 3: names ------------------------------------------------------------------- */

/* "offset O (device block B), ... and N more" for dm, into buf. */
static int blocks_show(struct pfs_check_data *d, const struct damaged *dm, char *buf, size_t cap)
{
	size_t o = 0;

	buf[0] = 0;
	for (uint64_t i = 0; i < dm->nbad && i < BAD_SHOWN && o < cap; i++) {
		struct bad_block bb;
		int ret = pfs_map_get(d->blocks, dm->first + i, &bb);

		if (ret)
			return ret;
		o += (size_t)snprintf(buf + o, cap - o, "%soffset %" PRIu64 " (device block %"
				      PRIu64 ")", i ? ", " : "", bb.off, bb.blkno);
	}
	if (dm->nbad > BAD_SHOWN && o < cap)
		snprintf(buf + o, cap - o, " and %" PRIu64 " more", dm->nbad - BAD_SHOWN);
	return 0;
}

/* Report ino (damage dm) as at where: a path, or NULL for none. */
static int report(struct pfs_check_data *d, uint64_t ino, const struct damaged *dm,
		  const char *where)
{
	char list[BAD_SHOWN * 64 + 32];
	int ret = blocks_show(d, dm, list, sizeof(list));

	if (ret)
		return ret;
	if (where)
		pfs_check_damage(d->c, PFS_PR_DATA_CSUM, "%s (inode %" PRIu64 "): %" PRIu64
				 " bad block%s: %s", where, ino, dm->nbad, dm->nbad == 1 ? "" : "s",
				 list);
	else
		pfs_check_damage(d->c, PFS_PR_DATA_CSUM, "inode %" PRIu64 " (no entry names "
				 "it): %" PRIu64 " bad block%s: %s", ino, dm->nbad,
				 dm->nbad == 1 ? "" : "s", list);
	return 0;
}

/* d->path: its first plen bytes (a directory's path), "/", e's name. */
static int path_set(struct pfs_check_data *d, size_t plen, const struct pfs_check_dirent *e,
		    size_t *len)
{
	char show[SHOW_MAX];
	size_t n;

	pfs_check_name_show(show, sizeof(show), e->name, e->len);
	n = strlen(show);
	if (plen + n + 2 > d->pcap) {
		size_t cap = (plen + n + 2) * 2;
		char *p = realloc(d->path, cap);

		if (!p)
			return -ENOMEM;
		d->path = p;
		d->pcap = cap;
	}
	d->path[plen] = '/';
	memcpy(d->path + plen + 1, show, n + 1);
	*len = plen + 1 + n;
	return 0;
}

static int level_push(struct pfs_check_data *d, uint64_t dir, size_t plen)
{
	uint8_t one = 1;
	int ret = pfs_map_get(d->dirs, dir, &one);

	if (ret != -ENOENT)
		return ret;	/* walked already (0), or an error */
	ret = pfs_map_put(d->dirs, dir, &one);
	if (ret)
		return ret;
	if (d->nlv == d->caplv) {
		size_t cap = d->caplv ? d->caplv * 2 : 16;
		struct level *lv = realloc(d->lv, cap * sizeof(*lv));

		if (!lv)
			return -ENOMEM;
		d->lv = lv;
		d->caplv = cap;
	}
	d->lv[d->nlv++] = (struct level){ .dir = dir, .plen = plen };
	return 0;
}

/* One entry met: what it names is reported if damaged and not named yet;
 * a directory is walked next. */
static int entry_met(struct pfs_check_data *d, size_t plen, const struct pfs_check_dirent *e)
{
	struct damaged dm;
	size_t len;
	int ret = path_set(d, plen, e, &len);

	if (!ret)
		ret = pfs_map_get(d->damaged, e->ino, &dm);
	if (!ret && !dm.named) {
		ret = report(d, e->ino, &dm, d->path);
		dm.named = 1;
		d->named++;
		if (!ret)
			ret = pfs_map_put(d->damaged, e->ino, &dm);
	}
	if (ret == -ENOENT)
		ret = 0;	/* not damaged */
	if (!ret && e->type == DT_DIR)
		ret = level_push(d, e->ino, len);
	return ret;
}

/* Depth first from the root, until every damaged file is named. */
static int names_walk(struct pfs_check_data *d)
{
	uint64_t want = pfs_map_count(d->damaged);
	int ret = level_push(d, POSFS_ROOT_OID, 0);

	while (!ret && d->nlv && d->named < want) {
		struct level *l = &d->lv[d->nlv - 1];
		struct pfs_check_dirent e;
		size_t plen = l->plen;

		ret = pfs_check_dirent_next(d->st, l->dir, l->key, &l->klen, &e);
		if (ret == 1) {
			ret = entry_met(d, plen, &e);	/* may move d->lv */
		} else if (ret == 0 || ret == -ENOENT) {
			d->nlv--;	/* its end; -ENOENT: an entry naming no object */
			ret = 0;
		}
	}
	return ret;
}

/* What the walk did not name: no entry names it. */
static int unnamed_cb(void *arg, uint64_t ino, const void *val)
{
	struct pfs_check_data *d = arg;
	const struct damaged *dm = val;

	return dm->named ? 0 : report(d, ino, dm, NULL);
}

/* ---- the pass ------------------------------------------------------------------- */

static int data_run(struct pfs_check_data *d)
{
	struct pfs_check *c = d->c;
	int ret;

	ret = pfs_map_create(c->maps, "data.files", 1, &d->files);
	if (!ret)
		ret = pfs_map_create(c->maps, "data.damaged", sizeof(struct damaged), &d->damaged);
	if (!ret)
		ret = pfs_map_create(c->maps, "data.blocks", sizeof(struct bad_block), &d->blocks);
	if (!ret)
		ret = pfs_map_create(c->maps, "data.dirs", 1, &d->dirs);
	/* 1 */
	for (uint32_t s = 0; !ret && s < d->st->nshards; s++)
		ret = pfs_store_iterate_objects(d->st, s, scan_cb, d);
	/* 2 */
	if (!ret)
		ret = pfs_map_iterate(d->files, file_cb, d);
	if (ret)
		return ret;
	d->total = d->done;	/* unwritten extents were counted, not read */
	progress(d);
	pfs_check_info(c, "pass 4: %" PRIu64 " files read, %" PRIu64 " bytes of data, %" PRIu64
		       " damaged", d->nfiles, d->done, pfs_map_count(d->damaged));
	if (!pfs_map_count(d->damaged))
		return 0;
	/* 3 */
	ret = names_walk(d);
	if (!ret && d->named < pfs_map_count(d->damaged))
		ret = pfs_map_iterate(d->damaged, unnamed_cb, d);
	return ret;
}

int pfs_check_data(struct pfs_check *c)
{
	struct pfs_check_data d = { .c = c, .st = c->st, .bs = c->sb.block_size };
	int ret;

	d.buf = pfs_dev_buf_alloc(RUN);
	if (!d.buf)
		return -ENOMEM;
	c->data = &d;
	ret = data_run(&d);
	c->data = NULL;
	if (!ret)
		c->res->data_checked = true;
	pfs_dev_buf_free(d.buf);
	free(d.lv);
	free(d.path);
	return ret;
}
