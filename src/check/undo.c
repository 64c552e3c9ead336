/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * undo.c: the undo file of fsck.posfs (see undo.h).
 *
 * The file is an LMDB environment in one file (MDB_NOSUBDIR; MDB_NOLOCK,
 * so no lock file: fsck is its only user and serialises its own calls)
 * with two named databases:
 *
 *   meta   key "header": struct pfs_dundo_hdr, little-endian
 *   units  key: the unit index, 8 bytes big-endian (keys sort by place);
 *          value: the unit's old bytes (4096, fewer for a last partial
 *          unit of a device whose size is not a multiple of 4096), then
 *          le32 crc32c of (key, bytes)
 *
 * Invariants:
 *
 * (1) A unit's saved copy is its original. It is saved before the first
 *     write to it: pfs_undo_save() returns only after its commit, and the
 *     hook device writes only after the callback returned 0. It is saved
 *     once: the in-memory set skips saved units and MDB_NOOVERWRITE keeps
 *     the first copy if a unit came back.
 * (2) Saved is durable. LMDB fdatasyncs the file at every commit (the
 *     environment is never opened MDB_NOSYNC), and create fsyncs the
 *     directory entry, so a saved unit survives a crash of fsck or of the
 *     machine.
 * (3) A unit counts as saved in memory only once its transaction has
 *     committed; after a failed commit it is saved again next time.
 * (4) Restore reads the file only (MDB_RDONLY) and checks all of it (the
 *     header, every unit's crc and place, the device's identity) before
 *     it writes anything.
 * (5) Restore writes the identity region last, after a flush of every
 *     other unit: while the region still shows the state after fsck the
 *     restore has not finished and may be run again; once it shows the
 *     state before fsck, every other unit is back on disk too. (A restore
 *     cut inside the region leaves it in neither state: force then.)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "posfs/crc32c.h"
#include "posfs/format.h"
#include "posfs/check.h"

#define PFS_UNDO_MAGIC		POSFS_MAGIC4('P', 'F', 'U', 'N')
#define PFS_UNDO_VERSION	1u
#define PFS_UNDO_OPEN		1u	/* being written, or fsck crashed */
#define PFS_UNDO_COMPLETE	2u	/* closed: id_after is valid */

/* The identity region: both superblocks. */
#define PFS_UNDO_ID_OFF		POSFS_SB_OFFSET
#define PFS_UNDO_ID_END		(POSFS_SB_BACKUP_OFFSET + POSFS_SB_SIZE)

#define PFS_UNDO_RUN		256u		/* units per device I/O */
#define PFS_UNDO_TXN_UNITS	16384u		/* units per LMDB transaction */
#define PFS_UNDO_MAP_MIN	(64ull << 20)
#define PFS_UNDO_MAP_MAX	(16ull << 40)	/* address space, not disk */
#define PFS_UNDO_LEAF_BITS	32768u		/* units per bitmap leaf */

#define PFS_UNDO_DB_META	"meta"
#define PFS_UNDO_DB_UNITS	"units"
#define PFS_UNDO_KEY_HDR	"header"

/* The header record in the meta database. */
struct pfs_dundo_hdr {
	uint32_t crc;		/* 0x00 crc32c of bytes 0x04 up to the end */
	uint32_t magic;		/* 0x04 PFS_UNDO_MAGIC */
	uint32_t version;	/* 0x08 PFS_UNDO_VERSION */
	uint32_t unit;		/* 0x0c bytes per unit: PFS_UNDO_UNIT */
	uint64_t dev_size;	/* 0x10 device size, bytes */
	uint32_t state;		/* 0x18 PFS_UNDO_OPEN or PFS_UNDO_COMPLETE */
	uint32_t id_len;	/* 0x1c bytes of the identity region here */
	uint32_t id_before;	/* 0x20 crc32c of the region at create */
	uint32_t id_after;	/* 0x24 crc32c of the region at close */
};
_Static_assert(sizeof(struct pfs_dundo_hdr) == 0x28, "undo header is 40 bytes");

/* The in-memory header: the same fields in CPU order. */
struct pfs_undo_hdr {
	uint64_t dev_size;
	uint32_t state;
	uint32_t id_len;
	uint32_t id_before;
	uint32_t id_after;
};

struct pfs_undo {
	pthread_mutex_t lock;	/* serialises save, close and the count:
				 * under MDB_NOLOCK, LMDB leaves it to us */
	MDB_env *env;
	MDB_dbi meta;
	MDB_dbi units_db;
	struct pfs_dev *dev;	/* read again at close */
	struct pfs_undo_hdr hdr;
	uint64_t nunits;	/* units on the device */
	unsigned char **leaves;	/* saved units: a bitmap, leaves on demand */
	size_t nleaves;
	uint64_t units;		/* units saved */
	void *buf;		/* PFS_UNDO_RUN units, aligned for O_DIRECT */
};

/* LMDB's codes to -errno: its positive codes are errno values already. */
static int pfs_undo_err(int rc)
{
	if (rc == 0)
		return 0;
	if (rc > 0)
		return -rc;
	if (rc == MDB_MAP_FULL)
		return -ENOSPC;
	return -EIO;
}

static uint32_t pfs_undo_unit_len(uint64_t dev_size, uint64_t unit)
{
	uint64_t off = unit * PFS_UNDO_UNIT;

	return dev_size - off < PFS_UNDO_UNIT ? (uint32_t)(dev_size - off) :
						PFS_UNDO_UNIT;
}

static uint32_t pfs_undo_id_len(uint64_t dev_size)
{
	if (dev_size <= PFS_UNDO_ID_OFF)
		return 0;
	if (dev_size >= PFS_UNDO_ID_END)
		return PFS_UNDO_ID_END - PFS_UNDO_ID_OFF;
	return (uint32_t)(dev_size - PFS_UNDO_ID_OFF);
}

/* crc32c of the identity region [4096, 4096 + id_len) of dev. */
static int pfs_undo_id_crc(struct pfs_dev *dev, uint32_t id_len,
			   uint32_t *crc)
{
	void *b;
	int ret;

	if (id_len == 0) {	/* a device too small to hold a superblock */
		*crc = pfs_crc32c(0, "", 0);
		return 0;
	}
	b = pfs_dev_buf_alloc(id_len);
	if (!b)
		return -ENOMEM;
	ret = pfs_dev_pread(dev, b, id_len, PFS_UNDO_ID_OFF);
	if (!ret)
		*crc = pfs_crc32c(0, b, id_len);
	pfs_dev_buf_free(b);
	return ret;
}

/* The crc ending a unit record: it binds the bytes to their place. */
static uint32_t pfs_undo_unit_crc(const uint64_t *bekey, const void *data,
				  size_t len)
{
	return pfs_crc32c(pfs_crc32c(0, bekey, sizeof(*bekey)), data, len);
}

/* ---- the header --------------------------------------------------------- */

static void pfs_undo_hdr_encode(struct pfs_dundo_hdr *d,
				const struct pfs_undo_hdr *h)
{
	memset(d, 0, sizeof(*d));
	d->magic = htole32(PFS_UNDO_MAGIC);
	d->version = htole32(PFS_UNDO_VERSION);
	d->unit = htole32(PFS_UNDO_UNIT);
	d->dev_size = htole64(h->dev_size);
	d->state = htole32(h->state);
	d->id_len = htole32(h->id_len);
	d->id_before = htole32(h->id_before);
	d->id_after = htole32(h->id_after);
	d->crc = htole32(pfs_crc32c(0, (const char *)d + 4, sizeof(*d) - 4));
}

/* -EINVAL unless v is a header this code wrote. */
static int pfs_undo_hdr_decode(const MDB_val *v, struct pfs_undo_hdr *h)
{
	struct pfs_dundo_hdr d;

	if (v->mv_size != sizeof(d))
		return -EINVAL;
	memcpy(&d, v->mv_data, sizeof(d));
	if (le32toh(d.crc) !=
	    pfs_crc32c(0, (const char *)&d + 4, sizeof(d) - 4))
		return -EINVAL;
	if (le32toh(d.magic) != PFS_UNDO_MAGIC ||
	    le32toh(d.version) != PFS_UNDO_VERSION ||
	    le32toh(d.unit) != PFS_UNDO_UNIT)
		return -EINVAL;
	h->dev_size = le64toh(d.dev_size);
	h->state = le32toh(d.state);
	h->id_len = le32toh(d.id_len);
	h->id_before = le32toh(d.id_before);
	h->id_after = le32toh(d.id_after);
	if (h->dev_size == 0 || h->id_len != pfs_undo_id_len(h->dev_size) ||
	    (h->state != PFS_UNDO_OPEN && h->state != PFS_UNDO_COMPLETE))
		return -EINVAL;
	return 0;
}

/* Put the header in txn; an LMDB code. */
static int pfs_undo_hdr_put(struct pfs_undo *u, MDB_txn *txn)
{
	struct pfs_dundo_hdr d;
	MDB_val k = { sizeof(PFS_UNDO_KEY_HDR) - 1, PFS_UNDO_KEY_HDR };
	MDB_val v = { sizeof(d), &d };

	pfs_undo_hdr_encode(&d, &u->hdr);
	return mdb_put(txn, u->meta, &k, &v, 0);
}

/* Write the header in a transaction of its own, committed (so synced). */
static int pfs_undo_hdr_commit(struct pfs_undo *u)
{
	MDB_txn *txn;
	int rc;

	rc = mdb_txn_begin(u->env, NULL, 0, &txn);
	if (rc)
		return pfs_undo_err(rc);
	rc = pfs_undo_hdr_put(u, txn);
	if (rc) {
		mdb_txn_abort(txn);
		return pfs_undo_err(rc);
	}
	return pfs_undo_err(mdb_txn_commit(txn));
}

/* ---- the set of saved units --------------------------------------------- */

static bool pfs_undo_is_saved(const struct pfs_undo *u, uint64_t unit)
{
	const unsigned char *leaf = u->leaves[unit / PFS_UNDO_LEAF_BITS];
	uint64_t bit = unit % PFS_UNDO_LEAF_BITS;

	return leaf && (leaf[bit / 8] >> (bit % 8)) & 1;
}

/* Make sure the leaves of [first, end) exist, so marking cannot fail. */
static int pfs_undo_leaves(struct pfs_undo *u, uint64_t first, uint64_t end)
{
	uint64_t i;

	for (i = first / PFS_UNDO_LEAF_BITS;
	     i <= (end - 1) / PFS_UNDO_LEAF_BITS; i++) {
		if (u->leaves[i])
			continue;
		u->leaves[i] = calloc(1, PFS_UNDO_LEAF_BITS / 8);
		if (!u->leaves[i])
			return -ENOMEM;
	}
	return 0;
}

static void pfs_undo_mark(struct pfs_undo *u, uint64_t first, uint64_t end)
{
	uint64_t unit;

	for (unit = first; unit < end; unit++) {
		uint64_t bit = unit % PFS_UNDO_LEAF_BITS;

		u->leaves[unit / PFS_UNDO_LEAF_BITS][bit / 8] |=
			(unsigned char)(1u << (bit % 8));
	}
}

/* ---- create, save, close ------------------------------------------------ */

/* fsync the directory holding path, so that the new name is durable. */
static int pfs_undo_sync_dir(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir;
	int fd, ret = 0;

	if (!slash)
		dir = strdup(".");
	else if (slash == path)
		dir = strdup("/");
	else
		dir = strndup(path, (size_t)(slash - path));
	if (!dir)
		return -ENOMEM;
	fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		ret = -errno;
	else if (fsync(fd) != 0)
		ret = -errno;
	if (fd >= 0)
		close(fd);
	free(dir);
	return ret;
}

/*
 * The map bounds the file. A unit takes two 4 KiB LMDB pages (4100 bytes
 * do not fit one overflow page with its header), so room for every unit
 * of the device twice over, plus the tree, up to an address-space cap.
 */
static size_t pfs_undo_map_size(uint64_t dev_size)
{
	uint64_t m = 2 * dev_size + dev_size / 16 + PFS_UNDO_MAP_MIN;
	uint64_t cap = sizeof(size_t) >= 8 ? PFS_UNDO_MAP_MAX : (1ull << 30);

	if (m > cap)
		m = cap;
	return (size_t)((m + 65535) & ~65535ull);
}

static void pfs_undo_free(struct pfs_undo *u)
{
	size_t i;

	if (u->env)
		mdb_env_close(u->env);
	for (i = 0; u->leaves && i < u->nleaves; i++)
		free(u->leaves[i]);
	free(u->leaves);
	pfs_dev_buf_free(u->buf);
	pthread_mutex_destroy(&u->lock);
	free(u);
}

int pfs_undo_create(const char *path, struct pfs_dev *dev,
		    struct pfs_undo **up)
{
	const struct pfs_dev_info *in;
	struct pfs_undo *u = NULL;
	MDB_txn *txn = NULL;
	bool made = false;
	int fd, rc, ret;

	*up = NULL;
	if (!path || !dev) {
		ret = -EINVAL;
		goto out;
	}
	in = pfs_dev_info(dev);
	if (in->size == 0 || in->logical_sector > PFS_UNDO_UNIT) {
		ret = -EINVAL;
		goto out;
	}

	/* The name is ours alone from here (O_EXCL); LMDB fills the file. */
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		ret = -errno;
		goto out;
	}
	close(fd);
	made = true;

	u = calloc(1, sizeof(*u));
	if (!u) {
		ret = -ENOMEM;
		goto out;
	}
	ret = -pthread_mutex_init(&u->lock, NULL);
	if (ret) {
		free(u);
		u = NULL;
		goto out;
	}
	u->dev = dev;
	u->hdr.dev_size = in->size;
	u->hdr.state = PFS_UNDO_OPEN;
	u->hdr.id_len = pfs_undo_id_len(in->size);
	u->nunits = (in->size + PFS_UNDO_UNIT - 1) / PFS_UNDO_UNIT;
	u->nleaves = (u->nunits + PFS_UNDO_LEAF_BITS - 1) / PFS_UNDO_LEAF_BITS;
	u->leaves = calloc(u->nleaves, sizeof(*u->leaves));
	u->buf = pfs_dev_buf_alloc((size_t)PFS_UNDO_RUN * PFS_UNDO_UNIT);
	if (!u->leaves || !u->buf) {
		ret = -ENOMEM;
		goto out;
	}
	ret = pfs_undo_id_crc(dev, u->hdr.id_len, &u->hdr.id_before);
	if (ret)
		goto out;

	rc = mdb_env_create(&u->env);
	if (!rc)
		rc = mdb_env_set_maxdbs(u->env, 2);
	if (!rc)
		rc = mdb_env_set_mapsize(u->env, pfs_undo_map_size(in->size));
	if (!rc)
		rc = mdb_env_open(u->env, path, MDB_NOSUBDIR | MDB_NOLOCK,
				  0600);
	if (!rc)
		rc = mdb_txn_begin(u->env, NULL, 0, &txn);
	if (!rc)
		rc = mdb_dbi_open(txn, PFS_UNDO_DB_META, MDB_CREATE, &u->meta);
	if (!rc)
		rc = mdb_dbi_open(txn, PFS_UNDO_DB_UNITS, MDB_CREATE,
				  &u->units_db);
	if (!rc)
		rc = pfs_undo_hdr_put(u, txn);
	if (!rc) {
		rc = mdb_txn_commit(txn);
		txn = NULL;
	}
	ret = pfs_undo_err(rc);
	if (!ret)
		ret = pfs_undo_sync_dir(path);
	if (ret)
		goto out;
	*up = u;
	u = NULL;
out:
	if (txn)
		mdb_txn_abort(txn);
	if (u)
		pfs_undo_free(u);
	if (ret && made)
		unlink(path);
	return ret;
}

/*
 * Read units [first, end) of dev (all unsaved, end - first at most
 * PFS_UNDO_RUN) and put them in txn. *added counts the new records.
 */
static int pfs_undo_put_run(struct pfs_undo *u, MDB_txn *txn,
			    struct pfs_dev *dev, uint64_t first, uint64_t end,
			    uint64_t *added)
{
	const unsigned char *buf = u->buf;
	uint64_t off = first * PFS_UNDO_UNIT, unit;
	uint64_t stop = end * PFS_UNDO_UNIT;
	int ret;

	if (stop > u->hdr.dev_size)
		stop = u->hdr.dev_size;
	ret = pfs_dev_pread(dev, u->buf, (size_t)(stop - off), off);
	if (ret)
		return ret;
	for (unit = first; unit < end; unit++) {
		size_t at = (size_t)(unit - first) * PFS_UNDO_UNIT;
		const unsigned char *data = buf + at;
		uint32_t len = pfs_undo_unit_len(u->hdr.dev_size, unit);
		uint64_t bekey = htobe64(unit);
		uint32_t crc = htole32(pfs_undo_unit_crc(&bekey, data, len));
		MDB_val k = { sizeof(bekey), &bekey };
		MDB_val v = { len + sizeof(crc), NULL };
		int rc;

		rc = mdb_put(txn, u->units_db, &k, &v,
			     MDB_NOOVERWRITE | MDB_RESERVE);
		if (rc == MDB_KEYEXIST)
			continue;	/* (1): the first copy stays */
		if (rc)
			return pfs_undo_err(rc);
		memcpy(v.mv_data, data, len);
		memcpy((unsigned char *)v.mv_data + len, &crc, sizeof(crc));
		(*added)++;
	}
	return 0;
}

/*
 * Commit txn (2: synced), then count units [first, end) as saved (3);
 * added of them are new. txn is gone either way.
 */
static int pfs_undo_commit(struct pfs_undo *u, MDB_txn *txn, uint64_t first,
			   uint64_t end, uint64_t added)
{
	int ret = pfs_undo_err(mdb_txn_commit(txn));

	if (ret)
		return ret;
	pfs_undo_mark(u, first, end);
	u->units += added;
	return 0;
}

int pfs_undo_save(struct pfs_undo *u, struct pfs_dev *dev, uint64_t off,
		  size_t len)
{
	MDB_txn *txn = NULL;
	uint64_t unit, end, txn_first = 0, txn_units = 0, added = 0;
	int rc, ret = 0;

	if (!u || !dev)
		return -EINVAL;
	if (len == 0)
		return 0;
	if (pfs_dev_info(dev)->size != u->hdr.dev_size ||
	    off > u->hdr.dev_size || len > u->hdr.dev_size - off)
		return -EINVAL;
	end = (off + len - 1) / PFS_UNDO_UNIT + 1;

	pthread_mutex_lock(&u->lock);
	unit = off / PFS_UNDO_UNIT;
	while (unit < end) {
		uint64_t run_end = unit + 1;

		if (pfs_undo_is_saved(u, unit)) {
			unit++;
			continue;
		}
		while (run_end < end && run_end - unit < PFS_UNDO_RUN &&
		       !pfs_undo_is_saved(u, run_end))
			run_end++;
		ret = pfs_undo_leaves(u, unit, run_end);
		if (ret)
			goto out;
		if (!txn) {
			rc = mdb_txn_begin(u->env, NULL, 0, &txn);
			if (rc) {
				txn = NULL;
				ret = pfs_undo_err(rc);
				goto out;
			}
			txn_first = unit;
			txn_units = 0;
			added = 0;
		}
		ret = pfs_undo_put_run(u, txn, dev, unit, run_end, &added);
		if (ret)
			goto out;
		txn_units += run_end - unit;
		unit = run_end;
		if (txn_units >= PFS_UNDO_TXN_UNITS) {
			/* a big range: several commits, as LMDB bounds a txn */
			ret = pfs_undo_commit(u, txn, txn_first, unit, added);
			txn = NULL;
			if (ret)
				goto out;
		}
	}
	if (txn) {
		ret = pfs_undo_commit(u, txn, txn_first, unit, added);
		txn = NULL;
	}
out:
	if (txn)
		mdb_txn_abort(txn);
	pthread_mutex_unlock(&u->lock);
	return ret;
}

int pfs_undo_close(struct pfs_undo *u)
{
	int ret;

	if (!u)
		return 0;
	pthread_mutex_lock(&u->lock);
	ret = pfs_undo_id_crc(u->dev, u->hdr.id_len, &u->hdr.id_after);
	if (!ret) {
		u->hdr.state = PFS_UNDO_COMPLETE;
		ret = pfs_undo_hdr_commit(u);
	}
	pthread_mutex_unlock(&u->lock);
	pfs_undo_free(u);
	return ret;
}

uint64_t pfs_undo_units(const struct pfs_undo *u)
{
	struct pfs_undo *w = (struct pfs_undo *)u;
	uint64_t n;

	if (!w)
		return 0;
	pthread_mutex_lock(&w->lock);
	n = w->units;
	pthread_mutex_unlock(&w->lock);
	return n;
}

/* ---- restore ------------------------------------------------------------ */

struct pfs_undo_rd {
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi units_db;
	struct pfs_undo_hdr hdr;
	struct pfs_dev *dev;
	unsigned char *buf;	/* PFS_UNDO_RUN units: a run being written */
	uint64_t run_off;
	size_t run_len;
	uint64_t written;
};

/* Open path read-only and read its header: -EINVAL if not an undo file. */
static int pfs_undo_rd_open(struct pfs_undo_rd *r, const char *path)
{
	MDB_val k = { sizeof(PFS_UNDO_KEY_HDR) - 1, PFS_UNDO_KEY_HDR };
	MDB_val v;
	MDB_dbi meta;
	struct stat st;
	int rc;

	if (stat(path, &st) != 0)
		return -errno;
	/* LMDB would take an empty file for a new environment */
	if (!S_ISREG(st.st_mode) || st.st_size == 0)
		return -EINVAL;
	rc = mdb_env_create(&r->env);
	if (rc) {
		r->env = NULL;
		return pfs_undo_err(rc);
	}
	rc = mdb_env_set_maxdbs(r->env, 2);
	if (!rc)
		rc = mdb_env_open(r->env, path,
				  MDB_NOSUBDIR | MDB_NOLOCK | MDB_RDONLY, 0600);
	if (rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH)
		return -EINVAL;
	if (!rc)
		rc = mdb_txn_begin(r->env, NULL, MDB_RDONLY, &r->txn);
	if (rc) {
		r->txn = NULL;
		return pfs_undo_err(rc);
	}
	rc = mdb_dbi_open(r->txn, PFS_UNDO_DB_META, 0, &meta);
	if (!rc)
		rc = mdb_get(r->txn, meta, &k, &v);
	if (!rc)
		rc = mdb_dbi_open(r->txn, PFS_UNDO_DB_UNITS, 0, &r->units_db);
	/* another LMDB file: no such database, or a plain key of that name */
	if (rc == MDB_NOTFOUND || rc == MDB_INCOMPATIBLE)
		return -EINVAL;
	if (rc)
		return pfs_undo_err(rc);
	return pfs_undo_hdr_decode(&v, &r->hdr);
}

static void pfs_undo_rd_close(struct pfs_undo_rd *r)
{
	if (r->txn)
		mdb_txn_abort(r->txn);
	if (r->env)
		mdb_env_close(r->env);
	pfs_dev_buf_free(r->buf);
}

/* Is dev the device, in a state the file restores from? See undo.h. */
static int pfs_undo_rd_identify(struct pfs_undo_rd *r)
{
	uint32_t crc;
	int ret;

	if (pfs_dev_info(r->dev)->size != r->hdr.dev_size)
		return -EUCLEAN;
	ret = pfs_undo_id_crc(r->dev, r->hdr.id_len, &crc);
	if (ret)
		return ret;
	if (crc == r->hdr.id_before)
		return 0;
	if (r->hdr.state == PFS_UNDO_COMPLETE && crc == r->hdr.id_after)
		return 0;
	return -EUCLEAN;
}

/* One unit record: its index and bytes, or -EBADMSG. */
static int pfs_undo_rd_unit(const struct pfs_undo_rd *r, const MDB_val *k,
			    const MDB_val *v, uint64_t *unit, size_t *len)
{
	uint64_t bekey;
	uint32_t crc;

	if (k->mv_size != sizeof(bekey))
		return -EBADMSG;
	memcpy(&bekey, k->mv_data, sizeof(bekey));
	*unit = be64toh(bekey);
	if (*unit >= (r->hdr.dev_size + PFS_UNDO_UNIT - 1) / PFS_UNDO_UNIT)
		return -EBADMSG;
	*len = pfs_undo_unit_len(r->hdr.dev_size, *unit);
	if (v->mv_size != *len + sizeof(crc))
		return -EBADMSG;
	memcpy(&crc, (const unsigned char *)v->mv_data + *len, sizeof(crc));
	if (le32toh(crc) != pfs_undo_unit_crc(&bekey, v->mv_data, *len))
		return -EBADMSG;
	return 0;
}

/* Check every unit (4); with force, also that dev can take it. */
static int pfs_undo_rd_verify(struct pfs_undo_rd *r)
{
	const struct pfs_dev_info *in = pfs_dev_info(r->dev);
	MDB_cursor *c;
	MDB_val k, v;
	uint64_t unit;
	size_t len;
	int rc, ret = 0;

	rc = mdb_cursor_open(r->txn, r->units_db, &c);
	if (rc)
		return pfs_undo_err(rc);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); !rc;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		ret = pfs_undo_rd_unit(r, &k, &v, &unit, &len);
		if (ret)
			break;
		if (unit * PFS_UNDO_UNIT + len > in->size ||
		    len % in->logical_sector != 0) {
			ret = -EINVAL;
			break;
		}
	}
	if (!ret && rc != MDB_NOTFOUND)
		ret = pfs_undo_err(rc);
	mdb_cursor_close(c);
	return ret;
}

static int pfs_undo_rd_flush_run(struct pfs_undo_rd *r)
{
	int ret = 0;

	if (r->run_len)
		ret = pfs_dev_pwrite(r->dev, r->buf, r->run_len, r->run_off);
	r->run_len = 0;
	return ret;
}

/* Queue one unit's bytes for writing; contiguous units go out as one. */
static int pfs_undo_rd_write(struct pfs_undo_rd *r, uint64_t unit,
			     const void *data, size_t len)
{
	uint64_t off = unit * PFS_UNDO_UNIT;
	int ret = 0;

	if (r->run_len && (r->run_off + r->run_len != off ||
			   r->run_len == (size_t)PFS_UNDO_RUN * PFS_UNDO_UNIT))
		ret = pfs_undo_rd_flush_run(r);
	if (ret)
		return ret;
	if (!r->run_len)
		r->run_off = off;
	memcpy(r->buf + r->run_len, data, len);
	r->run_len += len;
	r->written++;
	return 0;
}

static bool pfs_undo_in_id(const struct pfs_undo_rd *r, uint64_t unit)
{
	uint64_t off = unit * PFS_UNDO_UNIT;

	return off + PFS_UNDO_UNIT > PFS_UNDO_ID_OFF &&
	       off < PFS_UNDO_ID_OFF + (uint64_t)r->hdr.id_len;
}

/* Write the units inside (id) or outside (!id) the identity region. */
static int pfs_undo_rd_pass(struct pfs_undo_rd *r, bool id)
{
	MDB_cursor *c;
	MDB_val k, v;
	uint64_t unit;
	size_t len;
	int rc, ret = 0;

	rc = mdb_cursor_open(r->txn, r->units_db, &c);
	if (rc)
		return pfs_undo_err(rc);
	for (rc = mdb_cursor_get(c, &k, &v, MDB_FIRST); !rc;
	     rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
		ret = pfs_undo_rd_unit(r, &k, &v, &unit, &len);
		if (!ret && pfs_undo_in_id(r, unit) == id)
			ret = pfs_undo_rd_write(r, unit, v.mv_data, len);
		if (ret)
			break;
	}
	if (!ret && rc != MDB_NOTFOUND)
		ret = pfs_undo_err(rc);
	mdb_cursor_close(c);
	if (!ret)
		ret = pfs_undo_rd_flush_run(r);
	if (!ret)
		ret = pfs_dev_flush(r->dev);
	return ret;
}

int pfs_undo_restore(const char *path, struct pfs_dev *dev, bool force,
		     uint64_t *units)
{
	struct pfs_undo_rd r = { .dev = dev };
	int ret;

	if (units)
		*units = 0;
	if (!path || !dev)
		return -EINVAL;
	ret = pfs_undo_rd_open(&r, path);
	if (ret)
		goto out;
	if (pfs_dev_info(dev)->readonly) {
		ret = -EROFS;
		goto out;
	}
	if (pfs_dev_info(dev)->logical_sector > PFS_UNDO_UNIT) {
		ret = -EINVAL;
		goto out;
	}
	ret = pfs_undo_rd_identify(&r);
	if (ret == -EUCLEAN && force)
		ret = 0;
	if (ret)
		goto out;
	ret = pfs_undo_rd_verify(&r);
	if (ret)
		goto out;
	r.buf = pfs_dev_buf_alloc((size_t)PFS_UNDO_RUN * PFS_UNDO_UNIT);
	if (!r.buf) {
		ret = -ENOMEM;
		goto out;
	}
	/* (5): everything else first, flushed, then the identity region */
	ret = pfs_undo_rd_pass(&r, false);
	if (!ret)
		ret = pfs_undo_rd_pass(&r, true);
	if (!ret && units)
		*units = r.written;
out:
	pfs_undo_rd_close(&r);
	return ret;
}
