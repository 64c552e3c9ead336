/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The whole store against a simple in-memory model: random transactions of
 * creates, writes around the small-write threshold (through the WAL and
 * out of place), truncates, zeroes, omap and xattr changes and removes,
 * over several shards; reads, xattrs and omaps compared after every batch;
 * close and reopen; and power cuts through the recording device, after
 * which the store must be exactly the model after some whole transaction
 * that is no older than the last one acknowledged durable, with the free
 * space exactly accounted for. The seed is printed; POSFS_TEST_SEED or the
 * first argument sets it (a random one when "random").
 */
#include <check.h>
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <time.h>
#include <unistd.h>

#include "posfs/io.h"
#include "testdev.h"
#include "posfs/store.h"
#include "store/compress.h"
#include "store/store_internal.h"

static unsigned seed;

#define NOBJ 6
#define MAXSZ (96u * 1024)
#define NKEYS 8
#define NXA 4
/* xattr x's value length: small ones go inline, the last one to the omap */
#define XA_LEN(x) ((x) == NXA - 1 ? 300u : 10u + (unsigned)(x))

struct mobj {
	uint64_t oid;			/* 0: none */
	uint32_t mode;
	uint64_t size;
	uint8_t data[MAXSZ];
	uint8_t key_set[NKEYS];		/* omap key "k<i>" present, value byte */
	uint8_t key_val[NKEYS];
	uint16_t key_len[NKEYS];
	uint8_t xa_set[NXA];
	uint8_t xa_val[NXA];
};

struct model {
	struct mobj o[NOBJ];
	uint32_t txno;
};

static uint64_t DEVSZ = 48ull << 20;
static int compress_mode;	/* pfs_store_opts.compress of the tests' stores */
static bool discard_mode;	/* pfs_store_opts.discard of the tests' stores */
static int seen_fmt[3];		/* objects seen with each data_fmt */

static struct pfs_dev *newfs_mem(uint32_t shards)
{
	struct pfs_dev *dev = pfs_test_newfs_mem(DEVSZ, shards, 2 << 20);

	ck_assert_ptr_nonnull(dev);
	return dev;
}

/* A new file system of shards shards in a new image file at path (a
 * mkstemp template): the file's descriptor. */
static int newfs_file(uint32_t shards, char *path)
{
	struct pfs_dev *dev = newfs_mem(shards);
	uint8_t *img = pfs_dev_buf_alloc(DEVSZ);
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pfs_dev_pread(dev, img, DEVSZ, 0), 0);
	ck_assert_int_eq(pwrite(fd, img, DEVSZ, 0), (ssize_t)DEVSZ);
	pfs_dev_close(dev);
	pfs_dev_buf_free(img);
	return fd;
}

static struct pfs_store *open_dev(struct pfs_dev *dev)
{
	/* small caches: eviction paths run too */
	struct pfs_store_opts o = { .cache_blocks = 512, .onode_cache = 3, .ckpt_interval_ms = -1,
				    .compress = compress_mode, .discard = discard_mode };
	struct pfs_store *st;
	int ret = pfs_store_open_dev(dev, &o, &st);

	ck_assert_msg(ret == 0, "open: %d, seed %u", ret, seed);
	return st;
}

static void key_name(int i, char *k, uint16_t len)
{
	memset(k, 'a' + i, len);
	k[0] = 'k';
	k[1] = (char)('0' + i);
}

/* ---- compare the store with the model ----------------------------------- */

struct omap_seen {
	const struct mobj *m;
	int n;
	int bad;
};

static int omap_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	struct omap_seen *s = arg;
	const char *k = key;
	int i = k[1] - '0';

	if (klen < 2 || k[0] != 'k' || i < 0 || i >= NKEYS || !s->m->key_set[i] ||
	    klen != s->m->key_len[i] || vlen != 100u + i ||
	    ((const uint8_t *)val)[vlen - 1] != s->m->key_val[i])
		s->bad++;
	s->n++;
	return 0;
}

static void verify(struct pfs_store *st, const struct model *m, const char *when)
{
	uint8_t *buf = malloc(MAXSZ + 4096);

	for (int i = 0; i < NOBJ; i++) {
		const struct mobj *o = &m->o[i];
		struct pfs_onode on;
		struct omap_seen seen = { o, 0, 0 };
		int nkeys = 0;
		ssize_t r;

		if (!o->oid)
			continue;
		ck_assert_msg(pfs_store_stat(st, o->oid, &on) == 0, "%s: object %d gone, seed %u",
			      when, i, seed);
		ck_assert_msg(on.size == o->size, "%s: object %d size %llu, want %llu, seed %u", when,
			      i, (unsigned long long)on.size, (unsigned long long)o->size, seed);
		ck_assert_uint_eq(on.mode, o->mode);
		seen_fmt[on.data_fmt % 3]++;
		r = pfs_store_read(st, o->oid, 0, MAXSZ + 4096, buf);
		ck_assert_msg(r == (ssize_t)o->size, "%s: read %zd, seed %u", when, r, seed);
		for (uint64_t k = 0; k < o->size; k++)
			if (buf[k] != o->data[k])
				ck_abort_msg("%s: object %d byte %llu is %u, want %u, seed %u", when, i,
					     (unsigned long long)k, buf[k], o->data[k], seed);
		/* a read at an odd offset */
		if (o->size > 10) {
			uint64_t off = (uint64_t)rand() % (o->size - 5);

			r = pfs_store_read(st, o->oid, off, 5000, buf);
			ck_assert_int_eq(r, (ssize_t)(o->size - off < 5000 ? o->size - off : 5000));
			ck_assert_int_eq(memcmp(buf, o->data + off, (size_t)r), 0);
		}
		ck_assert_int_eq(pfs_store_omap_iterate(st, o->oid, NULL, 0, omap_cb, &seen), 0);
		for (int k = 0; k < NKEYS; k++)
			nkeys += o->key_set[k];
		ck_assert_msg(seen.n == nkeys && !seen.bad, "%s: omap of %d: %d keys (%d bad), want %d, seed %u",
			      when, i, seen.n, seen.bad, nkeys, seed);
		for (int x = 0; x < NXA; x++) {
			char name[16], v[400];

			snprintf(name, sizeof(name), "user.a%d", x);
			r = pfs_store_getxattr(st, o->oid, name, v, sizeof(v));
			if (o->xa_set[x]) {
				ck_assert_msg(r == (ssize_t)XA_LEN(x) && v[0] == (char)o->xa_val[x],
					      "%s: xattr %s of %d: %zd, seed %u", when, name, i, r, seed);
			} else {
				ck_assert_msg(r == -ENODATA, "%s: xattr %s of %d present, seed %u", when,
					      name, i, seed);
			}
		}
	}
	free(buf);
}

/* Free space: every data block is free, pending, or referenced. */
static void space_verify(struct pfs_store *st)
{
	struct pfs_statfs sfs;

	ck_assert_int_eq(pfs_store_statfs(st, &sfs), 0);
	for (uint32_t s = 0; s < st->nshards; s++) {
		struct pfs_shard *sh = &st->shards[s];

		ck_assert_uint_eq(sh->hdr.free_blocks, pfs_alloc_free_blocks(&sh->alloc) +
				  pfs_alloc_pending_blocks(&sh->alloc));
		ck_assert_int_eq(pfs_alloc_check(&sh->alloc), 0);
	}
}

/* ---- random transactions ------------------------------------------------ */

static uint8_t *scratch;
static int nclones;

static uint64_t rand_len(void)
{
	switch (rand() % 6) {
	case 0: return 1 + (uint64_t)rand() % 100;
	case 1: return 1 + (uint64_t)rand() % 8192;
	case 2: return 30000 + (uint64_t)rand() % 6000;	/* around 32 KiB */
	case 3: return 32768;
	case 4: return 4096 * (1 + (uint64_t)rand() % 12);
	default: return 1 + (uint64_t)rand() % 70000;
	}
}

/* One random transaction; m is updated only when it commits. */
static int random_txn(struct pfs_store *st, struct model *m, uint64_t counter_oid, bool durable,
		      struct pfs_commit *tok)
{
	struct model *next = malloc(sizeof(*next));
	struct pfs_txn t;
	int nops = 1 + rand() % 3, ret;
	char keys[NKEYS + NXA][300];
	uint8_t vals[8][400];
	int nk = 0, nv = 0;
	uint32_t txno = m->txno + 1;
	char cval[16];

	memcpy(next, m, sizeof(*next));
	pfs_txn_init(&t);
	for (int k = 0; k < nops; k++) {
		int i = rand() % NOBJ;
		struct mobj *o = &next->o[i];

		if (!o->oid) {
			struct pfs_attr a = { .mode = S_IFREG | 0644, .nlink = 1 };
			uint64_t oid;

			ck_assert_int_eq(pfs_store_oid_alloc(st, (uint32_t)(rand() % st->nshards), &oid), 0);
			pfs_txn_create(&t, oid, &a);
			memset(o, 0, sizeof(*o));
			o->oid = oid;
			o->mode = a.mode;
			continue;
		}
		switch (rand() % 10) {
		case 0: case 1: case 2: case 3: {
			uint64_t len = rand_len(), off = (uint64_t)rand() % MAXSZ;

			if (i == 0 || rand() % 4 == 0) {	/* small objects: inline data */
				off = (uint64_t)rand() % 300;
				len = 1 + (uint64_t)rand() % 100;
			}
			uint8_t *d = scratch + (size_t)k * MAXSZ;

			if (off + len > MAXSZ)
				len = MAXSZ - off;
			for (uint64_t b = 0; b < len; b++)
				d[b] = (uint8_t)(txno * 31 + b * 7 + (uint64_t)i);
			pfs_txn_write(&t, o->oid, off, len, d);
			memcpy(o->data + off, d, len);
			if (off + len > o->size)
				o->size = off + len;
			break;
		}
		case 4: {
			uint64_t size = (uint64_t)rand() % (i == 0 ? 400 : MAXSZ);

			if (i == 0 && rand() % 2)
				size = 0;	/* object 0 goes back to inline data */

			pfs_txn_truncate(&t, o->oid, size);
			if (size < o->size)
				memset(o->data + size, 0, o->size - size);
			o->size = size;
			break;
		}
		case 5: {
			uint64_t off = o->size ? (uint64_t)rand() % o->size : 0, len = rand_len();

			if (off + len > o->size)
				len = o->size - off;
			pfs_txn_zero(&t, o->oid, off, len);
			memset(o->data + off, 0, len);
			break;
		}
		case 6: {
			int key = rand() % NKEYS;
			uint16_t klen = (uint16_t)(2 + rand() % 250);

			if (o->key_set[key])
				klen = o->key_len[key];
			key_name(key, keys[nk], klen);
			if (o->key_set[key] && rand() % 2) {
				pfs_txn_omap_rm(&t, o->oid, keys[nk], klen);
				o->key_set[key] = 0;
			} else {
				memset(vals[nv], (int)txno, 100 + (size_t)key);
				pfs_txn_omap_set(&t, o->oid, keys[nk], klen, vals[nv], 100 + (size_t)key);
				o->key_set[key] = 1;
				o->key_val[key] = (uint8_t)txno;
				o->key_len[key] = klen;
				nv++;
			}
			nk++;
			break;
		}
		case 7: case 8: {
			int x = rand() % NXA;

			snprintf(keys[nk], sizeof(keys[nk]), "user.a%d", x);
			if (o->xa_set[x] && rand() % 2) {
				pfs_txn_rmxattr(&t, o->oid, keys[nk]);
				o->xa_set[x] = 0;
			} else {
				memset(vals[nv], (int)txno, XA_LEN(x));
				pfs_txn_setxattr(&t, o->oid, keys[nk], vals[nv], XA_LEN(x), 0);
				o->xa_set[x] = 1;
				o->xa_val[x] = (uint8_t)txno;
				nv++;
			}
			nk++;
			break;
		}
		default: {
			int j = rand() % NOBJ;
			struct mobj *d = &next->o[j];
			uint64_t soff, len, doff, rl;

			if (rand() % 3 == 0) {
				pfs_txn_remove(&t, o->oid);
				memset(o, 0, sizeof(*o));
				break;
			}
			/* a clone into another object, of any shard */
			if (j == i || !d->oid || !o->size)
				break;
			soff = (uint64_t)(rand() % (int)((o->size + 4095) / 4096)) * 4096;
			len = 4096 * (1 + (uint64_t)rand() % 8);
			if (soff >= o->size)
				break;
			if (soff + len >= o->size)
				len = o->size - soff;
			rl = (len + 4095) / 4096 * 4096;
			doff = (uint64_t)(rand() % (int)(MAXSZ / 4096)) * 4096;
			if (doff + rl > MAXSZ)
				break;
			if (rand() % 4 == 0 && o->size <= MAXSZ) {
				pfs_txn_clone(&t, o->oid, d->oid);
				nclones++;
				memcpy(d->data, o->data, o->size);
				memset(d->data + o->size, 0, MAXSZ - o->size);
				d->size = o->size;
				break;
			}
			pfs_txn_clone_range(&t, o->oid, soff, d->oid, doff, len);
			nclones++;
			memcpy(d->data + doff, o->data + soff, len);
			memset(d->data + doff + len, 0, rl - len);
			if (doff + len > d->size)
				d->size = doff + len;
			if (d->size < doff + rl && d->size > doff + len)
				d->size = d->size;
			break;
		}
		}
		if (nv >= 8 || nk >= NKEYS + NXA - 1)
			break;
	}
	if (counter_oid) {
		memcpy(cval, &txno, 4);
		pfs_txn_setxattr(&t, counter_oid, "user.n", cval, 4, 0);
	}
	ret = pfs_store_submit(st, &t, durable ? PFS_SUBMIT_DURABLE : 0, tok);
	pfs_txn_fini(&t);
	if (!ret) {
		next->txno = txno;
		memcpy(m, next, sizeof(*m));
	}
	free(next);
	return ret;
}

START_TEST(model_random)
{
	struct pfs_dev *dev = newfs_mem(3);
	struct pfs_store *st = open_dev(dev);
	struct model *m = calloc(1, sizeof(*m));
	struct pfs_statfs before, after;
	struct pfs_txn t;
	int ret;

	srand(seed);
	ck_assert_int_eq(pfs_store_statfs(st, &before), 0);
	nclones = 0;
	for (int i = 0; i < 2500; i++) {
		ret = random_txn(st, m, 0, rand() % 4 == 0, NULL);
		ck_assert_msg(ret == 0, "txn %d: %d, seed %u", i, ret, seed);
		if (m->o[0].oid) {
			struct pfs_onode on;

			ck_assert_int_eq(pfs_store_stat(st, m->o[0].oid, &on), 0);
			seen_fmt[on.data_fmt % 3]++;
		}
		if (i % 250 == 249) {
			verify(st, m, "running");
			space_verify(st);
		}
		if (i % 600 == 300)
			ck_assert_int_eq(pfs_store_sync(st), 0);
	}
	verify(st, m, "end");
	ck_assert_msg(nclones > 20, "only %d clones, seed %u", nclones, seed);
	/* every data form was met: inline data, inline extents, a B+tree */
	ck_assert_msg(seen_fmt[POSFS_DATA_INLINE] && seen_fmt[POSFS_DATA_EXTENTS] &&
		      seen_fmt[POSFS_DATA_BTREE], "inline data %d, inline maps %d, trees %d, seed %u",
		      seen_fmt[POSFS_DATA_INLINE], seen_fmt[POSFS_DATA_EXTENTS],
		      seen_fmt[POSFS_DATA_BTREE], seed);
	/* remove everything: every block comes back, shared ones included */
	pfs_txn_init(&t);
	for (int i = 0; i < NOBJ; i++)
		if (m->o[i].oid)
			pfs_txn_remove(&t, m->o[i].oid);
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	pfs_txn_fini(&t);
	ck_assert_int_eq(pfs_store_sync(st), 0);
	ck_assert_int_eq(pfs_store_statfs(st, &after), 0);
	ck_assert_msg(after.free_blocks == before.free_blocks && after.objects == before.objects,
		      "leak: %llu free blocks after removing everything, %llu before, seed %u",
		      (unsigned long long)after.free_blocks, (unsigned long long)before.free_blocks, seed);
	for (uint32_t s = 0; s < st->nshards; s++)
		ck_assert_uint_eq(st->shards[s].hdr.refcount.blkno, 0);
	ck_assert_int_eq(pfs_store_close(st), 0);
	free(m);
}
END_TEST

START_TEST(close_and_reopen)
{
	char path[] = "/var/tmp/posfs-store.XXXXXX";
	struct model *m = calloc(1, sizeof(*m));
	struct pfs_store *st;
	int ret;

	/* an image file: close for real, open by path */
	close(newfs_file(2, path));
	srand(seed + 1);
	for (int round = 0; round < 4; round++) {
		struct pfs_store_opts o = { .cache_blocks = 128, .ckpt_interval_ms = -1,
					    .compress = compress_mode };

		ck_assert_int_eq(pfs_store_open(path, &o, &st), 0);
		verify(st, m, "after reopen");
		space_verify(st);
		for (int i = 0; i < 300; i++) {
			ret = random_txn(st, m, 0, false, NULL);
			ck_assert_msg(ret == 0, "txn: %d, seed %u", ret, seed);
		}
		verify(st, m, "before close");
		ck_assert_int_eq(pfs_store_close(st), 0);
	}
	{
		struct pfs_store_opts o = { .readonly = true };
		struct pfs_txn t;

		ck_assert_int_eq(pfs_store_open(path, &o, &st), 0);
		verify(st, m, "read-only");
		pfs_txn_init(&t);
		pfs_txn_truncate(&t, POSFS_ROOT_OID, 0);
		ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), -EROFS);
		pfs_txn_fini(&t);
		ck_assert_int_eq(pfs_store_close(st), 0);
	}
	unlink(path);
	free(m);
}
END_TEST

START_TEST(errors_change_nothing)
{
	struct pfs_dev *dev = newfs_mem(2);
	struct pfs_store *st = open_dev(dev);
	struct model *m = calloc(1, sizeof(*m));
	struct pfs_attr a = { .mode = S_IFREG | 0600 };
	struct pfs_txn t;
	uint64_t oid, bogus;
	char v[8] = "value";

	srand(seed + 2);
	for (int i = 0; i < 200; i++)
		ck_assert_int_eq(random_txn(st, m, 0, false, NULL), 0);
	/* a transaction whose last operation fails leaves nothing behind */
	ck_assert_int_eq(pfs_store_oid_alloc(st, 1, &oid), 0);
	pfs_txn_init(&t);
	pfs_txn_create(&t, oid, &a);
	pfs_txn_write(&t, oid, 0, 5, v);
	for (int i = 0; i < NOBJ; i++)
		if (m->o[i].oid) {
			pfs_txn_write(&t, m->o[i].oid, 0, 5, v);
			pfs_txn_omap_set(&t, m->o[i].oid, "knew", 4, v, 5);
		}
	pfs_txn_rmxattr(&t, oid, "user.none");		/* -ENODATA */
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), -ENODATA);
	pfs_txn_fini(&t);
	{
		struct pfs_onode on;

		ck_assert_int_eq(pfs_store_stat(st, oid, &on), -ENOENT);
	}
	verify(st, m, "after a failed transaction");
	/* each error as documented */
	pfs_txn_init(&t);
	pfs_txn_create(&t, oid, &a);
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	pfs_txn_reset(&t);
	pfs_txn_create(&t, oid, &a);
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), -EEXIST);
	pfs_txn_reset(&t);
	bogus = POSFS_OID(1, 1000000);
	pfs_txn_write(&t, bogus, 0, 5, v);
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), -ENOENT);
	pfs_txn_reset(&t);
	pfs_txn_omap_insert(&t, oid, "kx", 2, v, 1);
	pfs_txn_omap_insert(&t, oid, "kx", 2, v, 1);
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), -EEXIST);
	pfs_txn_reset(&t);
	pfs_txn_omap_set(&t, oid, "\0bad", 4, v, 1);	/* the store's key space */
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), -EINVAL);
	pfs_txn_reset(&t);
	pfs_txn_setxattr(&t, oid, "user.r", v, 1, XATTR_REPLACE);
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), -ENODATA);
	pfs_txn_reset(&t);
	pfs_txn_write(&t, oid, UINT64_MAX - 10, 5, v);
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), -EFBIG);
	pfs_txn_reset(&t);
	pfs_txn_setxattr(&t, oid, "user.c", v, 1, XATTR_CREATE);
	pfs_txn_setxattr(&t, oid, "user.c", v, 1, XATTR_CREATE);
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), -EEXIST);
	pfs_txn_fini(&t);
	ck_assert_int_eq(pfs_store_getxattr(st, oid, "user.c", v, sizeof(v)), -ENODATA);
	ck_assert_int_eq(pfs_store_listxattr(st, oid, NULL, 0), 0);
	verify(st, m, "after the errors");
	ck_assert_int_eq(pfs_store_close(st), 0);
	free(m);
}
END_TEST

START_TEST(enospc_is_whole)
{
	struct pfs_dev *dev = newfs_mem(1);
	struct pfs_store *st = open_dev(dev);
	struct pfs_attr a = { .mode = S_IFREG | 0600 };
	struct pfs_statfs sfs, sfs2;
	uint8_t *big = calloc(1, 8 << 20);
	struct pfs_txn t;
	uint64_t oid, oid2;
	int ret, n = 0;

	ck_assert_int_eq(pfs_store_oid_alloc(st, 0, &oid), 0);
	pfs_txn_init(&t);
	pfs_txn_create(&t, oid, &a);
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	/* fill the device, 8 MiB at a time, then smaller */
	for (uint64_t off = 0, len = 8 << 20; len >= 4096;) {
		pfs_txn_reset(&t);
		pfs_txn_write(&t, oid, off, len, big);
		ret = pfs_store_submit(st, &t, 0, NULL);
		if (ret == -ENOSPC) {
			len /= 2;
			continue;
		}
		ck_assert_int_eq(ret, 0);
		off += len;
		n++;
	}
	ck_assert_int_gt(n, 3);
	ck_assert_int_eq(pfs_store_statfs(st, &sfs), 0);
	/* a transaction that cannot be satisfied fails whole */
	ck_assert_int_eq(pfs_store_oid_alloc(st, 0, &oid2), 0);
	pfs_txn_reset(&t);
	pfs_txn_create(&t, oid2, &a);
	pfs_txn_write(&t, oid2, 0, 1 << 20, big);
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), -ENOSPC);
	ck_assert_int_eq(pfs_store_statfs(st, &sfs2), 0);
	ck_assert_uint_eq(sfs2.free_blocks, sfs.free_blocks);
	ck_assert_uint_eq(sfs2.objects, sfs.objects);
	{
		struct pfs_onode on;

		ck_assert_int_eq(pfs_store_stat(st, oid2, &on), -ENOENT);
	}
	/* removing the big object gives the space back */
	pfs_txn_reset(&t);
	pfs_txn_remove(&t, oid);
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	ck_assert_int_eq(pfs_store_sync(st), 0);
	ck_assert_int_eq(pfs_store_statfs(st, &sfs2), 0);
	ck_assert_uint_gt(sfs2.free_blocks, sfs.free_blocks + (uint64_t)n * 256);
	pfs_txn_reset(&t);
	pfs_txn_create(&t, oid2, &a);
	pfs_txn_write(&t, oid2, 0, 1 << 20, big);
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	pfs_txn_fini(&t);
	space_verify(st);
	ck_assert_int_eq(pfs_store_close(st), 0);
	free(big);
}
END_TEST

/*
 * One object in shard 0 fills it and goes on into shards 1 and 2 (large
 * writes, and small ones once its shard is full): the file system is full
 * only when every shard is. The data reads back, also after a reopen, and
 * removing the object gives every shard its space back.
 */
static struct pfs_store *open_path(const char *path)
{
	struct pfs_store_opts o = { .cache_blocks = 512, .ckpt_interval_ms = -1,
				    .compress = compress_mode };
	struct pfs_store *st;

	ck_assert_int_eq(pfs_store_open(path, &o, &st), 0);
	return st;
}

START_TEST(full_shard_spills_over)
{
	char path[] = "/var/tmp/posfs-store.XXXXXX";
	struct pfs_store *st;
	struct pfs_attr a = { .mode = S_IFREG | 0600 };
	struct pfs_statfs before, full, after;
	uint64_t shard_blocks, off = 0, oid;
	size_t len = 1 << 20;
	uint8_t *buf = malloc(len), *back = malloc(len);
	struct pfs_txn t;
	int ret;

	/* an image file, to open again after a close */
	close(newfs_file(3, path));
	st = open_path(path);
	shard_blocks = st->shards[0].geo.data_blocks;
	ck_assert_int_eq(pfs_store_statfs(st, &before), 0);
	ck_assert_int_eq(pfs_store_oid_alloc(st, 0, &oid), 0);
	pfs_txn_init(&t);
	pfs_txn_create(&t, oid, &a);
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	/* large writes, then small ones (through the WAL while there is room) */
	for (;;) {
		for (size_t i = 0; i < len; i++)
			buf[i] = (uint8_t)((off + i) * 7 / 4096 + (off + i) / 13);
		pfs_txn_reset(&t);
		pfs_txn_write(&t, oid, off, len, buf);
		ret = pfs_store_submit(st, &t, 0, NULL);
		if (ret == -ENOSPC && len > 8192) {
			len /= 4;
			continue;
		}
		if (ret == -ENOSPC)
			break;
		ck_assert_int_eq(ret, 0);
		off += len;
	}
	/* well past one shard's space: the others took the rest */
	ck_assert_uint_gt(off / 4096, shard_blocks * 2);
	ck_assert_int_eq(pfs_store_statfs(st, &full), 0);
	ck_assert_uint_lt(full.free_blocks, before.free_blocks / 20);
	space_verify(st);
	ck_assert_int_eq(pfs_store_close(st), 0);
	st = open_path(path);
	for (uint64_t at = 0; at < off; at += 1 << 20) {
		size_t n = off - at < (1u << 20) ? (size_t)(off - at) : 1u << 20;

		ck_assert_int_eq(pfs_store_read(st, oid, at, n, back), (ssize_t)n);
		for (size_t i = 0; i < n; i++)
			if (back[i] != (uint8_t)((at + i) * 7 / 4096 + (at + i) / 13))
				ck_abort_msg("byte %" PRIu64 " differs", at + i);
	}
	pfs_txn_reset(&t);
	pfs_txn_remove(&t, oid);
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	pfs_txn_fini(&t);
	ck_assert_int_eq(pfs_store_sync(st), 0);
	ck_assert_int_eq(pfs_store_statfs(st, &after), 0);
	ck_assert_uint_eq(after.free_blocks, before.free_blocks);
	space_verify(st);
	ck_assert_int_eq(pfs_store_close(st), 0);
	unlink(path);
	free(buf);
	free(back);
}
END_TEST

/* The counters: commits, cross-shard ones, checkpoints and their time,
 * and a transaction's wait for a shard lock another holds. */
struct counted_submit {
	struct pfs_store *st;
	uint64_t oid;
	int ret;
};

static void *counted_submit_main(void *p)
{
	struct counted_submit *cs = p;
	struct pfs_txn t;

	pfs_txn_init(&t);
	pfs_txn_write(&t, cs->oid, 0, 5, "hello");
	cs->ret = pfs_store_submit(cs->st, &t, 0, NULL);
	pfs_txn_fini(&t);
	return NULL;
}

START_TEST(store_counters)
{
	struct pfs_store *st = open_dev(newfs_mem(2));
	struct pfs_attr a = { .mode = S_IFREG | 0600, .nlink = 1 };
	struct pfs_store_counters c0, c1;
	struct counted_submit cs = { st, 0, -1 };
	uint64_t x, y;
	struct pfs_txn t;
	pthread_t th;

	ck_assert_int_eq(pfs_store_oid_alloc(st, 0, &x), 0);
	ck_assert_int_eq(pfs_store_oid_alloc(st, 1, &y), 0);
	pfs_store_counters(st, &c0);
	pfs_txn_init(&t);
	pfs_txn_create(&t, x, &a);
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	pfs_txn_reset(&t);
	pfs_txn_create(&t, y, &a);
	pfs_txn_write(&t, x, 0, 3, "abc");
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);	/* two shards */
	pfs_txn_fini(&t);
	ck_assert_int_eq(pfs_store_checkpoint(st), 0);
	pfs_store_counters(st, &c1);
	ck_assert_uint_eq(c1.commits - c0.commits, 2);
	ck_assert_uint_eq(c1.cross_shard - c0.cross_shard, 1);
	ck_assert_uint_eq(c1.checkpoints - c0.checkpoints, 1);
	ck_assert_uint_gt(c1.ckpt_ns, c0.ckpt_ns);
	ck_assert_uint_eq(c1.lock_waits, c0.lock_waits);
	/* a transaction that finds its shard locked waits, and is counted */
	cs.oid = x;
	pthread_mutex_lock(&st->shards[0].lock);
	ck_assert_int_eq(pthread_create(&th, NULL, counted_submit_main, &cs), 0);
	usleep(50000);
	pthread_mutex_unlock(&st->shards[0].lock);
	pthread_join(th, NULL);
	ck_assert_int_eq(cs.ret, 0);
	pfs_store_counters(st, &c0);
	ck_assert_uint_eq(c0.lock_waits - c1.lock_waits, 1);
	ck_assert_uint_ge(c0.lock_wait_ns - c1.lock_wait_ns, 20000000u);
	ck_assert_int_eq(pfs_store_close(st), 0);
}
END_TEST

/*
 * A full store keeps a metadata reserve for transactions that give space
 * back (PFS_SUBMIT_RESERVE): one shard filled with data, then with omap
 * records until ENOSPC; ordinary transactions then fail without taking
 * the reserve, and statfs shows nothing available; a reserve transaction
 * that needs new blocks still works, also after a reopen, and so do a
 * truncate and a removal, which give the space back.
 */
static int fill_omap(struct pfs_store *st, uint64_t oid, unsigned *next, int flags)
{
	static char val[400];
	struct pfs_txn t;
	char key[16];
	int ret;

	pfs_txn_init(&t);
	snprintf(key, sizeof(key), "k%08u", (*next)++);
	pfs_txn_omap_set(&t, oid, key, strlen(key), val, sizeof(val));
	ret = pfs_store_submit(st, &t, flags, NULL);
	pfs_txn_fini(&t);
	return ret;
}

START_TEST(reserve_for_removal)
{
	char path[] = "/var/tmp/posfs-store.XXXXXX";
	struct pfs_attr a = { .mode = S_IFREG | 0600 };
	struct pfs_statfs sfs, full, after;
	size_t len = 1 << 20;
	uint8_t *buf = calloc(1, len);
	struct pfs_store *st;
	struct pfs_txn t;
	uint64_t big, meta, off = 0, low;
	unsigned next = 0, n;
	int ret;

	close(newfs_file(1, path));
	st = open_path(path);
	ck_assert_int_eq(pfs_store_statfs(st, &sfs), 0);
	ck_assert_uint_lt(sfs.avail_blocks, sfs.free_blocks);
	ck_assert_int_eq(pfs_store_oid_alloc(st, 0, &big), 0);
	ck_assert_int_eq(pfs_store_oid_alloc(st, 0, &meta), 0);
	pfs_txn_init(&t);
	pfs_txn_create(&t, big, &a);
	pfs_txn_create(&t, meta, &a);
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	for (;;) {
		pfs_txn_reset(&t);
		pfs_txn_write(&t, big, off, len, buf);
		ret = pfs_store_submit(st, &t, 0, NULL);
		if (ret == -ENOSPC && len > 4096) {
			len /= 2;
			continue;
		}
		if (ret == -ENOSPC)
			break;
		ck_assert_int_eq(ret, 0);
		off += len;
	}
	ck_assert_int_eq(pfs_store_statfs(st, &full), 0);
	ck_assert_uint_eq(full.avail_blocks, 0);
	/* data is full: metadata goes on, down to the reserve */
	for (n = 0; (ret = fill_omap(st, meta, &next, 0)) == 0; n++)
		;
	ck_assert_int_eq(ret, -ENOSPC);
	ck_assert_uint_gt(n, 100);
	low = pfs_alloc_free_blocks(&st->shards[0].alloc);
	ck_assert_uint_ge(low, 64);
	/* ordinary transactions do not take it, however many */
	for (int i = 0; i < 20; i++)
		ck_assert_int_eq(fill_omap(st, meta, &next, 0), -ENOSPC);
	pfs_txn_reset(&t);
	pfs_txn_write(&t, big, off, 4096, buf);
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), -ENOSPC);
	ck_assert_uint_eq(pfs_alloc_free_blocks(&st->shards[0].alloc), low);
	/* a transaction that gives space back may: here a new omap block */
	ck_assert_int_eq(fill_omap(st, meta, &next, PFS_SUBMIT_RESERVE), 0);
	ck_assert_int_eq(fill_omap(st, meta, &next, PFS_SUBMIT_RESERVE), 0);
	space_verify(st);
	ck_assert_int_eq(pfs_store_close(st), 0);

	/* reopened, still full: the same (the new leaf has room for a few) */
	st = open_path(path);
	for (n = 0; (ret = fill_omap(st, meta, &next, 0)) == 0; n++)
		ck_assert_uint_lt(n, 50);
	ck_assert_int_eq(ret, -ENOSPC);
	ck_assert_int_eq(fill_omap(st, meta, &next, PFS_SUBMIT_RESERVE), 0);
	pfs_txn_reset(&t);
	pfs_txn_truncate(&t, big, off / 2);
	ck_assert_int_eq(pfs_store_submit(st, &t, PFS_SUBMIT_RESERVE, NULL), 0);
	ck_assert_int_eq(pfs_store_sync(st), 0);
	ck_assert_int_eq(pfs_store_statfs(st, &after), 0);
	ck_assert_uint_gt(after.avail_blocks, off / 2 / 4096 * 9 / 10);
	pfs_txn_reset(&t);
	pfs_txn_remove(&t, big);
	pfs_txn_remove(&t, meta);
	ck_assert_int_eq(pfs_store_submit(st, &t, PFS_SUBMIT_RESERVE, NULL), 0);
	pfs_txn_fini(&t);
	ck_assert_int_eq(pfs_store_sync(st), 0);
	ck_assert_int_eq(pfs_store_statfs(st, &after), 0);
	ck_assert_uint_eq(after.free_blocks, sfs.free_blocks);
	ck_assert_uint_eq(after.avail_blocks, sfs.avail_blocks);
	space_verify(st);
	ck_assert_int_eq(pfs_store_close(st), 0);
	unlink(path);
	free(buf);
}
END_TEST

START_TEST(onode_cache_serves_stats)
{
	struct pfs_dev *dev = newfs_mem(1);
	struct pfs_store_opts o = { .ckpt_interval_ms = -1 };
	struct pfs_attr a = { .mode = S_IFREG | 0644 };
	struct pfs_store *st;
	struct pfs_onode on;
	struct pfs_txn t;
	uint64_t oid, hits;

	ck_assert_int_eq(pfs_store_open_dev(dev, &o, &st), 0);
	ck_assert_int_eq(pfs_store_oid_alloc(st, 0, &oid), 0);
	pfs_txn_init(&t);
	pfs_txn_create(&t, oid, &a);
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	ck_assert_int_eq(pfs_store_stat(st, oid, &on), 0);
	hits = st->shards[0].onodes.hits;
	for (int i = 0; i < 10; i++)
		ck_assert_int_eq(pfs_store_stat(st, oid, &on), 0);
	ck_assert_uint_eq(st->shards[0].onodes.hits, hits + 10);
	/* a change is seen at once: the entry was dropped, not kept stale */
	pfs_txn_reset(&t);
	pfs_txn_write(&t, oid, 0, 7, "changed");
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	ck_assert_int_eq(pfs_store_stat(st, oid, &on), 0);
	ck_assert_uint_eq(on.size, 7);
	/* an aborted transaction leaves the committed onode */
	pfs_txn_reset(&t);
	pfs_txn_write(&t, oid, 0, sizeof(on.inline_area), on.inline_area);
	pfs_txn_rmxattr(&t, oid, "user.none");
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), -ENODATA);
	ck_assert_int_eq(pfs_store_stat(st, oid, &on), 0);
	ck_assert_uint_eq(on.size, 7);
	pfs_txn_fini(&t);
	ck_assert_int_eq(pfs_store_close(st), 0);
}
END_TEST

START_TEST(seek_data_and_holes)
{
	struct pfs_dev *dev = newfs_mem(1);
	struct pfs_store *st = open_dev(dev);
	struct pfs_attr a = { .mode = S_IFREG | 0644 };
	static char blk[4096];
	struct pfs_txn t;
	uint64_t oid, r;

	ck_assert_int_eq(pfs_store_oid_alloc(st, 0, &oid), 0);
	pfs_txn_init(&t);
	pfs_txn_create(&t, oid, &a);
	pfs_txn_write(&t, oid, 0, 4096, blk);
	pfs_txn_write(&t, oid, 65536, 4000, blk);
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	pfs_txn_fini(&t);
	ck_assert_int_eq(pfs_store_seek(st, oid, 0, false, &r), 0);
	ck_assert_uint_eq(r, 0);
	ck_assert_int_eq(pfs_store_seek(st, oid, 100, true, &r), 0);
	ck_assert_uint_eq(r, 4096);
	ck_assert_int_eq(pfs_store_seek(st, oid, 5000, false, &r), 0);
	ck_assert_uint_eq(r, 65536);
	ck_assert_int_eq(pfs_store_seek(st, oid, 65536, true, &r), 0);
	ck_assert_uint_eq(r, 69536);			/* the end is a hole */
	ck_assert_int_eq(pfs_store_seek(st, oid, 69536, false, &r), -ENXIO);
	ck_assert_int_eq(pfs_store_seek(st, oid, 1 << 30, true, &r), -ENXIO);
	ck_assert_int_eq(pfs_store_close(st), 0);
}
END_TEST

START_TEST(xattrs_inline_and_omap)
{
	struct pfs_dev *dev = newfs_mem(1);
	struct pfs_store *st = open_dev(dev);
	struct pfs_attr a = { .mode = S_IFREG | 0644 };
	static char blk[4096], list[4096], v[200];
	struct pfs_onode on;
	struct pfs_txn t;
	uint64_t oid;
	ssize_t n;

	ck_assert_int_eq(pfs_store_oid_alloc(st, 0, &oid), 0);
	pfs_txn_init(&t);
	pfs_txn_create(&t, oid, &a);
	/* eight extents inline: every other block */
	for (int i = 0; i < 8; i++)
		pfs_txn_write(&t, oid, (uint64_t)i * 8192, 4096, blk);
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	ck_assert_int_eq(pfs_store_stat(st, oid, &on), 0);
	ck_assert_uint_eq(on.data_fmt, POSFS_DATA_EXTENTS);
	ck_assert_uint_eq(on.data_len, 8 * sizeof(struct pfs_dextent));
	/* xattrs: the first that fits goes inline, the rest to the omap */
	for (int i = 0; i < 20; i++) {
		char name[32];

		snprintf(name, sizeof(name), "user.attr%02d", i);
		memset(v, 'a' + i, 20);
		pfs_txn_reset(&t);
		pfs_txn_setxattr(&t, oid, name, v, 20, XATTR_CREATE);
		ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	}
	pfs_txn_reset(&t);
	pfs_txn_setxattr(&t, oid, "trusted.other", "x", 1, 0);
	pfs_txn_setxattr(&t, oid, "security.selinux", "ctx", 3, 0);
	pfs_txn_setxattr(&t, oid, "user.empty", "", 0, 0);
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	ck_assert_int_eq(pfs_store_stat(st, oid, &on), 0);
	ck_assert_uint_gt(on.xattr_count, 0);		/* some inline */
	ck_assert_uint_gt(on.xattr_omap_count, 0);	/* some in the omap */
	ck_assert_uint_eq(on.xattr_count + on.xattr_omap_count, 23);
	n = pfs_store_listxattr(st, oid, NULL, 0);
	ck_assert_int_gt(n, 0);
	ck_assert_int_eq(pfs_store_listxattr(st, oid, list, (size_t)n), n);
	ck_assert_int_eq(pfs_store_listxattr(st, oid, list, (size_t)n - 1), -ERANGE);
	{
		int count = 0;

		for (ssize_t p = 0; p < n; p += (ssize_t)strlen(list + p) + 1)
			count++;
		ck_assert_int_eq(count, 23);
	}
	for (int i = 0; i < 20; i++) {
		char name[32];

		snprintf(name, sizeof(name), "user.attr%02d", i);
		ck_assert_int_eq(pfs_store_getxattr(st, oid, name, v, sizeof(v)), 20);
		ck_assert_int_eq(v[19], 'a' + i);
		ck_assert_int_eq(pfs_store_getxattr(st, oid, name, v, 5), -ERANGE);
		ck_assert_int_eq(pfs_store_getxattr(st, oid, name, NULL, 0), 20);
	}
	ck_assert_int_eq(pfs_store_getxattr(st, oid, "user.empty", v, sizeof(v)), 0);
	ck_assert_int_eq(pfs_store_getxattr(st, oid, "security.selinux", v, sizeof(v)), 3);
	/* more extents than fit beside the xattrs: the map becomes a tree */
	pfs_txn_reset(&t);
	for (int i = 8; i < 14; i++)
		pfs_txn_write(&t, oid, (uint64_t)i * 8192, 4096, blk);
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	ck_assert_int_eq(pfs_store_stat(st, oid, &on), 0);
	ck_assert_uint_eq(on.data_fmt, POSFS_DATA_BTREE);
	ck_assert_int_eq(pfs_store_read(st, oid, 13 * 8192, 4096, list), 4096);
	/* replace and remove, wherever they live */
	for (int i = 0; i < 20; i++) {
		char name[32];

		snprintf(name, sizeof(name), "user.attr%02d", i);
		pfs_txn_reset(&t);
		pfs_txn_setxattr(&t, oid, name, "new", 3, XATTR_REPLACE);
		ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
		ck_assert_int_eq(pfs_store_getxattr(st, oid, name, v, sizeof(v)), 3);
		pfs_txn_reset(&t);
		pfs_txn_rmxattr(&t, oid, name);
		ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
		ck_assert_int_eq(pfs_store_getxattr(st, oid, name, v, sizeof(v)), -ENODATA);
	}
	pfs_txn_reset(&t);
	pfs_txn_rmxattr(&t, oid, "trusted.other");
	pfs_txn_rmxattr(&t, oid, "security.selinux");
	pfs_txn_rmxattr(&t, oid, "user.empty");
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	pfs_txn_fini(&t);
	ck_assert_int_eq(pfs_store_listxattr(st, oid, list, sizeof(list)), 0);
	ck_assert_int_eq(pfs_store_stat(st, oid, &on), 0);
	ck_assert_uint_eq(on.xattr_count, 0);
	ck_assert_uint_eq(on.xattr_omap_count, 0);
	ck_assert_uint_eq(on.xattr_len, 0);
	ck_assert_int_eq(pfs_store_close(st), 0);
}
END_TEST

START_TEST(inline_data)
{
	struct pfs_dev *dev = newfs_mem(1);
	struct pfs_store *st = open_dev(dev);
	struct pfs_attr a = { .mode = S_IFLNK | 0777 };
	struct pfs_statfs s0, s1;
	struct pfs_onode on;
	struct pfs_txn t;
	char buf[8192], big[5000];
	uint64_t oid, oid2, r;

	struct pfs_statfs s2;

	ck_assert_int_eq(pfs_store_statfs(st, &s0), 0);
	ck_assert_int_eq(pfs_store_oid_alloc(st, 0, &oid), 0);
	ck_assert_int_eq(pfs_store_oid_alloc(st, 0, &oid2), 0);
	pfs_txn_init(&t);
	pfs_txn_create(&t, oid, &a);
	pfs_txn_create(&t, oid2, &a);
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	ck_assert_int_eq(pfs_store_sync(st), 0);
	ck_assert_int_eq(pfs_store_statfs(st, &s2), 0);
	pfs_txn_reset(&t);
	pfs_txn_write(&t, oid, 0, 12, "/target/path");
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	ck_assert_int_eq(pfs_store_sync(st), 0);
	ck_assert_int_eq(pfs_store_statfs(st, &s1), 0);
	ck_assert_uint_eq(s1.free_blocks, s2.free_blocks);	/* no block for the data */
	ck_assert_int_eq(pfs_store_stat(st, oid, &on), 0);
	ck_assert_uint_eq(on.data_fmt, POSFS_DATA_INLINE);
	ck_assert_uint_eq(on.size, 12);
	ck_assert_int_eq(pfs_store_read(st, oid, 0, sizeof(buf), buf), 12);
	ck_assert_int_eq(memcmp(buf, "/target/path", 12), 0);
	ck_assert_int_eq(pfs_store_seek(st, oid, 3, true, &r), 0);
	ck_assert_uint_eq(r, 12);
	/* truncate up reads zeros, down cuts */
	pfs_txn_reset(&t);
	pfs_txn_truncate(&t, oid, 100);
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	ck_assert_int_eq(pfs_store_read(st, oid, 0, sizeof(buf), buf), 100);
	ck_assert_int_eq(buf[50], 0);
	pfs_txn_reset(&t);
	pfs_txn_truncate(&t, oid, 4);
	pfs_txn_write(&t, oid, 8, 2, "zz");
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	ck_assert_int_eq(pfs_store_read(st, oid, 0, sizeof(buf), buf), 10);
	ck_assert_int_eq(memcmp(buf, "/tar\0\0\0\0zz", 10), 0);
	/* a clone of an inline object copies the bytes */
	pfs_txn_reset(&t);
	pfs_txn_clone(&t, oid, oid2);
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	ck_assert_int_eq(pfs_store_read(st, oid2, 0, sizeof(buf), buf), 10);
	ck_assert_int_eq(memcmp(buf, "/tar\0\0\0\0zz", 10), 0);
	/* a write past the inline area moves the bytes to a block */
	memset(big, 'b', sizeof(big));
	pfs_txn_reset(&t);
	pfs_txn_write(&t, oid, 4000, sizeof(big), big);
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	ck_assert_int_eq(pfs_store_stat(st, oid, &on), 0);
	ck_assert_uint_ne(on.data_fmt, POSFS_DATA_INLINE);
	ck_assert_int_eq(pfs_store_read(st, oid, 0, sizeof(buf), buf), 8192);
	ck_assert_int_eq(memcmp(buf, "/tar\0\0\0\0zz", 10), 0);
	ck_assert_int_eq(buf[3999], 0);
	ck_assert_int_eq(buf[4000], 'b');
	pfs_txn_reset(&t);
	pfs_txn_remove(&t, oid);
	pfs_txn_remove(&t, oid2);
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	pfs_txn_fini(&t);
	ck_assert_int_eq(pfs_store_sync(st), 0);
	ck_assert_int_eq(pfs_store_statfs(st, &s1), 0);
	ck_assert_uint_eq(s1.free_blocks, s0.free_blocks);
	ck_assert_int_eq(pfs_store_close(st), 0);
}
END_TEST

START_TEST(transaction_larger_than_the_wal)
{
	const uint64_t size_dev = 192ull << 20;
	struct pfs_mkfs_params p = { .size = size_dev, .block_size = 4096, .shard_count = 1,
				     .wal_bytes = 1 << 20, .global_wal_bytes = 1 << 20, .ncpu = 1 };
	struct pfs_newfs_opts no = { .root_mode = 0755, .now = 1700000000 };
	struct pfs_attr a = { .mode = S_IFREG | 0644 };
	struct pfs_super sb = { 0 };
	struct pfs_statfs before, after;
	static char blk[4096];
	struct pfs_store *st;
	struct pfs_dev *dev;
	struct pfs_txn t;
	uint64_t oid, oid2, size;
	const uint64_t n = 16000;
	int ret;

	ck_assert_int_eq(pfs_dev_open_mem(size_dev, 512, &dev), 0);
	ck_assert_int_eq(pfs_geo_compute(&p, &sb, NULL), 0);
	sb.feature_incompat = POSFS_FEATURE_global_wal;
	sb.state = POSFS_STATE_CLEAN;
	sb.max_mount_count = UINT32_MAX;
	ck_assert_int_eq(pfs_newfs_write(dev, &sb, &no), 0);
	st = open_dev(dev);
	ck_assert_int_eq(pfs_store_statfs(st, &before), 0);
	ck_assert_int_eq(pfs_store_oid_alloc(st, 0, &oid), 0);
	ck_assert_int_eq(pfs_store_oid_alloc(st, 0, &oid2), 0);
	pfs_txn_init(&t);
	pfs_txn_create(&t, oid, &a);
	pfs_txn_create(&t, oid2, &a);
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	/* two objects written in turn, every other block: each has many
	 * extents, none of them next to another on the device */
	for (uint64_t i = 0; i < n; i++) {
		pfs_txn_reset(&t);
		pfs_txn_write(&t, oid, i * 8192, 4096, blk);
		pfs_txn_write(&t, oid2, i * 8192, 4096, blk);
		ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	}
	/* removing it at once changes more blocks than the 1 MiB WAL holds */
	pfs_txn_reset(&t);
	pfs_txn_remove(&t, oid);
	ret = pfs_store_submit(st, &t, 0, NULL);
	ck_assert_int_eq(ret, -E2BIG);
	{
		struct pfs_onode on;

		ck_assert_int_eq(pfs_store_stat(st, oid, &on), 0);	/* nothing changed */
		ck_assert_uint_eq(on.size, (n - 1) * 8192 + 4096);
	}
	/* in steps it goes */
	for (size = (n - 1) * 8192 + 4096; size > 0;) {
		size = size > 2000 * 8192 ? size - 2000 * 8192 : 0;
		pfs_txn_reset(&t);
		pfs_txn_truncate(&t, oid, size);
		ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	}
	pfs_txn_reset(&t);
	pfs_txn_remove(&t, oid);
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	for (size = (n - 1) * 8192 + 4096; size > 0;) {
		size = size > 2000 * 8192 ? size - 2000 * 8192 : 0;
		pfs_txn_reset(&t);
		pfs_txn_truncate(&t, oid2, size);
		ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	}
	pfs_txn_reset(&t);
	pfs_txn_remove(&t, oid2);
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	pfs_txn_fini(&t);
	ck_assert_int_eq(pfs_store_sync(st), 0);
	ck_assert_int_eq(pfs_store_statfs(st, &after), 0);
	ck_assert_uint_eq(after.free_blocks, before.free_blocks);
	ck_assert_int_eq(pfs_store_close(st), 0);
}
END_TEST

/* ---- threads ------------------------------------------------------------ */

struct thr {
	struct pfs_store *st;
	uint64_t oid[3];
	uint8_t data[3][16384];
	uint64_t size[3];
	uint8_t back[16384];
	unsigned seed;
	int err;
};

/*
 * A thread's own three objects in three shards: writes, cross-shard
 * clones (global WAL), durable waits and reads, while the timer
 * checkpoints. Lock order mistakes show up as a hang (the test's
 * timeout), lost updates or reads of a reused block as a mismatch.
 */
static void *thr_main(void *p)
{
	struct thr *th = p;
	struct pfs_txn t;

	pfs_txn_init(&t);
	for (int i = 0; i < 400 && !th->err; i++) {
		int a = rand_r(&th->seed) % 3, b = (a + 1 + rand_r(&th->seed) % 2) % 3;
		uint64_t off = (uint64_t)(rand_r(&th->seed) % 3) * 4096, len = 4096;
		uint8_t buf[4096];

		int dst = a;

		pfs_txn_reset(&t);
		if (rand_r(&th->seed) % 3 == 0 && th->size[a] >= off + len) {
			/* share a block of a with b at the same offset */
			pfs_txn_clone_range(&t, th->oid[a], off, th->oid[b], off, len);
			memcpy(th->data[b] + off, th->data[a] + off, len);
			dst = b;
		} else {
			memset(buf, i & 0xff, sizeof(buf));
			pfs_txn_write(&t, th->oid[a], off, len, buf);
			memcpy(th->data[a] + off, buf, len);
		}
		if (off + len > th->size[dst])
			th->size[dst] = off + len;
		th->err = pfs_store_submit(th->st, &t, rand_r(&th->seed) % 4 ? 0 : PFS_SUBMIT_DURABLE,
					   NULL);
		if (!th->err) {
			/* reads run beside the others' writes, clones and the
			 * timer's checkpoints (their device reads unlocked) */
			ssize_t n = pfs_store_read(th->st, th->oid[dst], 0, sizeof(th->back),
						   th->back);

			if (n != (ssize_t)th->size[dst] || memcmp(th->back, th->data[dst], (size_t)n))
				th->err = -EILSEQ;
		}
	}
	pfs_txn_fini(&t);
	return NULL;
}

START_TEST(threads_across_shards)
{
	struct pfs_dev *dev = newfs_mem(3);
	struct pfs_store_opts o = { .ckpt_interval_ms = 20 };
	struct pfs_attr a = { .mode = S_IFREG | 0644 };
	struct thr th[4];
	pthread_t pt[4];
	struct pfs_store *st;
	struct pfs_txn t;
	static uint8_t back[16384];

	ck_assert_int_eq(pfs_store_open_dev(dev, &o, &st), 0);
	pfs_txn_init(&t);
	memset(th, 0, sizeof(th));
	for (int i = 0; i < 4; i++) {
		th[i].st = st;
		th[i].seed = seed * 31 + (unsigned)i;
		for (uint32_t s = 0; s < 3; s++) {
			ck_assert_int_eq(pfs_store_oid_alloc(st, s, &th[i].oid[s]), 0);
			pfs_txn_create(&t, th[i].oid[s], &a);
		}
	}
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	pfs_txn_fini(&t);
	for (int i = 0; i < 4; i++)
		pthread_create(&pt[i], NULL, thr_main, &th[i]);
	for (int i = 0; i < 4; i++)
		pthread_join(pt[i], NULL);
	for (int i = 0; i < 4; i++) {
		ck_assert_msg(th[i].err == 0, "thread %d: %d, seed %u", i, th[i].err, seed);
		for (int k = 0; k < 3; k++) {
			ck_assert_int_eq(pfs_store_read(st, th[i].oid[k], 0, sizeof(back), back),
					 (ssize_t)th[i].size[k]);
			ck_assert_msg(!memcmp(back, th[i].data[k], th[i].size[k]),
				      "thread %d object %d differs, seed %u", i, k, seed);
		}
	}
	space_verify(st);
	ck_assert_int_eq(pfs_store_close(st), 0);
}
END_TEST

START_TEST(timer_checkpoints)
{
	struct pfs_dev *dev = newfs_mem(1);
	struct pfs_store_opts o = { .ckpt_interval_ms = 50 };
	struct pfs_attr a = { .mode = S_IFREG | 0644 };
	struct pfs_store *st;
	struct pfs_txn t;
	uint64_t oid;

	ck_assert_int_eq(pfs_store_open_dev(dev, &o, &st), 0);
	ck_assert_int_eq(pfs_store_oid_alloc(st, 0, &oid), 0);
	pfs_txn_init(&t);
	pfs_txn_create(&t, oid, &a);
	pfs_txn_write(&t, oid, 0, 5, "hello");
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);	/* not durable */
	pfs_txn_fini(&t);
	ck_assert(pfs_store_dirty(st));
	for (int i = 0; i < 200 && pfs_store_dirty(st); i++)
		usleep(10000);
	ck_assert_msg(!pfs_store_dirty(st), "no checkpoint within 2 s of a 50 ms timer");
	ck_assert_uint_ge(st->stat_checkpoints, 2);	/* the one at open, then the timer's */
	ck_assert_int_eq(pfs_store_close(st), 0);
}
END_TEST

/* Read-only at run time (a remount): home and clean at once, changes
 * refused, the device left alone; writable again; not for a store opened
 * read-only. */
START_TEST(remount_readonly)
{
	char path[] = "/var/tmp/posfs-store.XXXXXX";
	struct pfs_store_opts rw = { .ckpt_interval_ms = -1 }, ro = { .readonly = true };
	struct pfs_attr a = { .mode = S_IFREG | 0644 };
	struct pfs_store *st;
	uint8_t *img1 = pfs_dev_buf_alloc(DEVSZ), *img2 = pfs_dev_buf_alloc(DEVSZ);
	struct pfs_txn t;
	uint64_t oid;
	char buf[8];

	close(newfs_file(2, path));
	ck_assert_int_eq(pfs_store_open(path, &rw, &st), 0);
	ck_assert_int_eq(pfs_store_oid_alloc(st, 1, &oid), 0);
	pfs_txn_init(&t);
	pfs_txn_create(&t, oid, &a);
	pfs_txn_write(&t, oid, 0, 5, "hello");
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);	/* not durable */
	ck_assert(pfs_store_dirty(st));
	ck_assert(!pfs_store_is_readonly(st));

	ck_assert_int_eq(pfs_store_set_readonly(st, true), 0);
	ck_assert(pfs_store_is_readonly(st));
	ck_assert(!pfs_store_dirty(st));
	ck_assert(st->sb.state & POSFS_STATE_CLEAN);
	ck_assert_int_eq(pfs_dev_pread(st->dev, img1, DEVSZ, 0), 0);
	pfs_txn_reset(&t);
	pfs_txn_write(&t, oid, 0, 5, "world");
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), -EROFS);
	ck_assert_int_eq(pfs_store_read(st, oid, 0, sizeof(buf), buf), 5);
	ck_assert(!memcmp(buf, "hello", 5));
	ck_assert_int_eq(pfs_store_sync(st), 0);
	ck_assert_int_eq(pfs_store_set_readonly(st, true), 0);	/* nothing to do */
	ck_assert_int_eq(pfs_dev_pread(st->dev, img2, DEVSZ, 0), 0);
	ck_assert_msg(!memcmp(img1, img2, DEVSZ), "the device changed while read-only");

	ck_assert_int_eq(pfs_store_set_readonly(st, false), 0);
	ck_assert(!pfs_store_is_readonly(st));
	ck_assert(!(st->sb.state & POSFS_STATE_CLEAN));
	ck_assert_int_eq(pfs_store_submit(st, &t, PFS_SUBMIT_DURABLE, NULL), 0);
	pfs_txn_fini(&t);
	ck_assert_int_eq(pfs_store_read(st, oid, 0, sizeof(buf), buf), 5);
	ck_assert(!memcmp(buf, "world", 5));
	/* close after a remount,ro: clean, and what was written is there */
	ck_assert_int_eq(pfs_store_set_readonly(st, true), 0);
	ck_assert_int_eq(pfs_store_close(st), 0);

	ck_assert_int_eq(pfs_store_open(path, &ro, &st), 0);
	ck_assert(st->sb.state & POSFS_STATE_CLEAN);
	ck_assert_int_eq(pfs_store_read(st, oid, 0, sizeof(buf), buf), 5);
	ck_assert(!memcmp(buf, "world", 5));
	ck_assert(pfs_store_is_readonly(st));
	ck_assert_int_eq(pfs_store_set_readonly(st, true), 0);
	ck_assert_int_eq(pfs_store_set_readonly(st, false), -EROFS);
	ck_assert_int_eq(pfs_store_close(st), 0);
	unlink(path);
	pfs_dev_buf_free(img1);
	pfs_dev_buf_free(img2);
}
END_TEST

/* The label: both superblock copies hold the new one at return, it is
 * there after a reopen; too long, read-only, and a read-only open are
 * refused and change nothing. */
START_TEST(label_set)
{
	char path[] = "/var/tmp/posfs-store.XXXXXX";
	struct pfs_store_opts rw = { .ckpt_interval_ms = -1 }, ro = { .readonly = true };
	char label[POSFS_LABEL_SIZE + 2], got[POSFS_LABEL_SIZE + 1];
	uint8_t *head = pfs_dev_buf_alloc(PFS_SUPER_HEAD_SIZE);
	struct pfs_super sb;
	struct pfs_dsuper *d;
	struct pfs_store *st;
	uint64_t gen;

	close(newfs_file(1, path));
	ck_assert_int_eq(pfs_store_open(path, &rw, &st), 0);
	pfs_store_label(st, got);
	ck_assert_str_eq(got, "");
	gen = st->sb.generation;
	ck_assert_int_eq(pfs_store_set_label(st, "backup-2026"), 0);
	ck_assert_uint_eq(st->sb.generation, gen + 1);
	pfs_store_label(st, got);
	ck_assert_str_eq(got, "backup-2026");
	/* on the device, both copies, before any close */
	ck_assert_int_eq(pfs_dev_pread(st->dev, head, PFS_SUPER_HEAD_SIZE, 0), 0);
	for (int i = 0; i < 2; i++) {
		uint64_t off = i ? POSFS_SB_BACKUP_OFFSET : POSFS_SB_OFFSET;

		d = (struct pfs_dsuper *)(head + off);
		ck_assert_int_eq(pfs_super_from_disk(d, off, &sb), 0);
		ck_assert_str_eq(sb.label, "backup-2026");
		ck_assert_uint_eq(sb.generation, gen + 1);
		ck_assert(!(sb.state & POSFS_STATE_CLEAN));	/* still mounted */
	}
	memset(label, 'x', POSFS_LABEL_SIZE + 1);
	label[POSFS_LABEL_SIZE + 1] = 0;
	ck_assert_int_eq(pfs_store_set_label(st, label), -EINVAL);
	label[POSFS_LABEL_SIZE] = 0;				/* the longest */
	ck_assert_int_eq(pfs_store_set_label(st, label), 0);
	pfs_store_label(st, got);
	ck_assert_str_eq(got, label);
	ck_assert_int_eq(pfs_store_set_readonly(st, true), 0);
	ck_assert_int_eq(pfs_store_set_label(st, "no"), -EROFS);
	ck_assert_int_eq(pfs_store_set_readonly(st, false), 0);
	ck_assert_int_eq(pfs_store_set_label(st, ""), 0);	/* cleared */
	ck_assert_int_eq(pfs_store_set_label(st, "kept"), 0);
	ck_assert_int_eq(pfs_store_close(st), 0);

	ck_assert_int_eq(pfs_store_open(path, &ro, &st), 0);
	pfs_store_label(st, got);
	ck_assert_str_eq(got, "kept");
	ck_assert(st->sb.state & POSFS_STATE_CLEAN);
	ck_assert_int_eq(pfs_store_set_label(st, "no"), -EROFS);
	ck_assert_int_eq(pfs_store_close(st), 0);
	unlink(path);
	pfs_dev_buf_free(head);
}
END_TEST

/* ---- data checksums ---------------------------------------------------------- */

struct data_errs {
	unsigned n;
	uint64_t oid, off, blkno;
};

static void on_data_error(void *arg, uint64_t oid, uint64_t off, uint64_t blkno)
{
	struct data_errs *d = arg;

	d->n++;
	d->oid = oid;
	d->off = off;
	d->blkno = blkno;
}

/* The device block of shard's data area that holds the 4 KiB at want (the
 * WAL may hold copies: only the data area is searched). */
static uint64_t find_block(int fd, struct pfs_store *st, uint32_t shard, const uint8_t *want)
{
	const struct pfs_shard_geo *g = &st->shards[shard].geo;
	uint8_t b[4096];

	for (uint64_t blk = g->data_start; blk < g->data_start + g->data_blocks; blk++) {
		ck_assert_int_eq(pread(fd, b, sizeof(b), (off_t)blk * 4096), 4096);
		if (!memcmp(b, want, sizeof(b)))
			return blk;
	}
	ck_abort_msg("block not found");
	return 0;
}

static void flip_block(int fd, uint64_t blk)
{
	uint8_t c;

	ck_assert_int_eq(pread(fd, &c, 1, (off_t)blk * 4096 + 77), 1);
	c ^= 0x10;
	ck_assert_int_eq(pwrite(fd, &c, 1, (off_t)blk * 4096 + 77), 1);
}

START_TEST(data_checksums)
{
	char path[] = "/var/tmp/posfs-csum.XXXXXX";
	struct data_errs errs = { 0 };
	struct pfs_store_opts o = { .ckpt_interval_ms = -1, .data_error = on_data_error,
				    .data_error_arg = &errs };
	struct pfs_attr a = { .mode = S_IFREG | 0644 };
	uint8_t *da = malloc(65536), *db = malloc(3 * 4096), *back = malloc(65536);
	uint64_t oa, ob, oc, bad_a, bad_b;
	struct pfs_store *st;
	struct pfs_txn t;
	int fd = newfs_file(2, path);

	for (size_t i = 0; i < 65536; i++)
		da[i] = (uint8_t)rand_r(&seed);
	for (size_t i = 0; i < 3 * 4096; i++)
		db[i] = (uint8_t)rand_r(&seed);

	/* a: 64 KiB out of place; b: three blocks in place through the WAL;
	 * c: a clone of a */
	ck_assert_int_eq(pfs_store_open(path, &o, &st), 0);
	ck_assert_uint_eq(st->sb.csum_chunk, 4096);
	ck_assert_int_eq(pfs_store_oid_alloc(st, 0, &oa), 0);
	ck_assert_int_eq(pfs_store_oid_alloc(st, 0, &ob), 0);
	ck_assert_int_eq(pfs_store_oid_alloc(st, 0, &oc), 0);
	pfs_txn_init(&t);
	pfs_txn_create(&t, oa, &a);
	pfs_txn_create(&t, ob, &a);
	pfs_txn_create(&t, oc, &a);
	pfs_txn_write(&t, oa, 0, 65536, da);
	for (int i = 0; i < 3; i++)
		pfs_txn_write(&t, ob, (uint64_t)i * 4096, 4096, db + i * 4096);
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	pfs_txn_reset(&t);
	pfs_txn_clone(&t, oa, oc);
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	pfs_txn_reset(&t);
	ck_assert_int_eq(pfs_store_close(st), 0);
	ck_assert_int_eq(pfs_store_open(path, &o, &st), 0);
	bad_a = find_block(fd, st, 0, da + 5 * 4096);
	bad_b = find_block(fd, st, 0, db + 4096);
	ck_assert_int_eq(pfs_store_close(st), 0);
	flip_block(fd, bad_a);
	flip_block(fd, bad_b);

	ck_assert_int_eq(pfs_store_open(path, &o, &st), 0);
	/* the blocks around the bad one read fine */
	ck_assert_int_eq(pfs_store_read(st, oa, 0, 5 * 4096, back), 5 * 4096);
	ck_assert_int_eq(memcmp(back, da, 5 * 4096), 0);
	ck_assert_int_eq(pfs_store_read(st, oa, 6 * 4096, 4096, back), 4096);
	ck_assert_int_eq(memcmp(back, da + 6 * 4096, 4096), 0);
	/* the bad one: EIO, reported once with the object, offset and block */
	ck_assert_int_eq(pfs_store_read(st, oa, 5 * 4096 + 100, 10, back), -EIO);
	ck_assert_uint_eq(errs.n, 1);
	ck_assert_uint_eq(errs.oid, oa);
	ck_assert_uint_eq(errs.off, 5 * 4096);
	ck_assert_uint_eq(errs.blkno, bad_a);
	ck_assert_int_eq(pfs_store_read(st, oa, 0, 65536, back), -EIO);
	ck_assert_uint_eq(errs.n, 1);
	/* the clone shares the block, and its fault */
	ck_assert_int_eq(pfs_store_read(st, oc, 5 * 4096, 4096, back), -EIO);
	ck_assert_int_eq(pfs_store_read(st, oc, 4 * 4096, 4096, back), 4096);
	/* a block written in place */
	ck_assert_int_eq(pfs_store_read(st, ob, 0, 4096, back), 4096);
	ck_assert_int_eq(pfs_store_read(st, ob, 4096, 4096, back), -EIO);
	ck_assert_uint_eq(errs.n, 2);
	ck_assert_uint_eq(errs.oid, ob);
	ck_assert_uint_eq(errs.off, 4096);
	ck_assert_uint_eq(errs.blkno, bad_b);
	ck_assert_uint_eq(pfs_store_data_errors(st), 4);	/* every failed read */
	/* a partial write into a bad block fails and changes nothing */
	pfs_txn_write(&t, ob, 4096 + 10, 100, da);
	pfs_txn_write(&t, ob, 0, 5, "hello");
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), -EIO);
	pfs_txn_reset(&t);
	ck_assert_int_eq(pfs_store_read(st, ob, 0, 4096, back), 4096);
	ck_assert_int_eq(memcmp(back, db, 4096), 0);
	/* a whole-block write heals it; a's copy on write leaves c's fault */
	pfs_txn_write(&t, ob, 4096, 4096, da);
	pfs_txn_write(&t, oa, 5 * 4096, 4096, db);
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	pfs_txn_fini(&t);
	ck_assert_int_eq(pfs_store_close(st), 0);
	ck_assert_int_eq(pfs_store_open(path, &o, &st), 0);
	ck_assert_int_eq(pfs_store_read(st, ob, 4096, 4096, back), 4096);
	ck_assert_int_eq(memcmp(back, da, 4096), 0);
	ck_assert_int_eq(pfs_store_read(st, oa, 0, 65536, back), 65536);
	ck_assert_int_eq(memcmp(back + 5 * 4096, db, 4096), 0);
	ck_assert_int_eq(memcmp(back + 6 * 4096, da + 6 * 4096, 4096), 0);
	ck_assert_int_eq(pfs_store_read(st, oc, 5 * 4096, 4096, back), -EIO);
	ck_assert(!pfs_store_has_errors(st));	/* data damage is no metadata damage */
	/* scrub checks the device: a cached copy, clean, hides no damage */
	for (size_t i = 0; i < 8192; i++)
		da[i] = (uint8_t)rand_r(&seed);		/* bytes no other block holds */
	pfs_txn_init(&t);
	pfs_txn_write(&t, ob, 0, 4096, da);
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	pfs_txn_reset(&t);
	ck_assert_int_eq(pfs_store_sync(st), 0);	/* home, and clean in the cache */
	bad_b = find_block(fd, st, 0, da);
	flip_block(fd, bad_b);
	ck_assert_int_eq(pfs_store_read(st, ob, 0, 4096, back), 4096);
	ck_assert_int_eq(memcmp(back, da, 4096), 0);
	ck_assert_int_eq(pfs_store_scrub(st, ob, 0, 8192, back), -EIO);
	ck_assert_uint_eq(errs.blkno, bad_b);
	ck_assert_int_eq(pfs_store_scrub(st, ob, 4096, 8192, back), 8192);
	/* ... and a block not home yet is not the device's to answer for */
	pfs_txn_write(&t, ob, 0, 4096, da + 4096);
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	pfs_txn_fini(&t);
	ck_assert_int_eq(pfs_store_scrub(st, ob, 0, 3 * 4096, back), 3 * 4096);
	ck_assert_int_eq(pfs_store_close(st), 0);
	close(fd);
	unlink(path);
	free(da);
	free(db);
	free(back);
}
END_TEST

/* ---- compression ------------------------------------------------------------- */

/* Text-like bytes: compressible, not trivially. */
static void fill_text(uint8_t *p, size_t n, unsigned salt)
{
	static const char *const words[] = { "posfs ", "extent ", "shard ", "write-ahead ",
					     "log ", "onode ", "zstd ", "checksum\n" };

	for (size_t i = 0; i < n;) {
		const char *w = words[(i / 7 + salt + i / 61) % 8];

		for (size_t j = 0; w[j] && i < n; j++)
			p[i++] = (uint8_t)w[j];
	}
}

static uint64_t blocks_of(struct pfs_store *st, uint64_t oid)
{
	struct pfs_onode on;

	ck_assert_int_eq(pfs_store_stat(st, oid, &on), 0);
	return on.blocks / 8;	/* 4 KiB blocks */
}

START_TEST(compression)
{
	char path[] = "/var/tmp/posfs-zstd.XXXXXX";
	struct data_errs errs = { 0 };
	struct pfs_store_opts o = { .ckpt_interval_ms = -1, .compress = 1,
				    .data_error = on_data_error, .data_error_arg = &errs };
	struct pfs_attr a = { .mode = S_IFREG | 0644 };
	size_t big = 1 << 20;
	uint8_t *text = malloc(big), *rnd = malloc(big), *mix = malloc(big), *back = malloc(big);
	uint8_t *model = calloc(1, 4 << 20);
	uint64_t ot, orn, om, os, oc, frame;
	struct pfs_statfs s0, s1;
	struct pfs_store *st;
	struct pfs_txn t;
	int fd = newfs_file(2, path);

	fill_text(text, big, 0);
	for (size_t i = 0; i < big; i++)
		rnd[i] = (uint8_t)rand_r(&seed);
	for (size_t i = 0; i < big; i += 65536)		/* 64 KiB of each in turn */
		memcpy(mix + i, (i / 65536) % 2 ? rnd + i : text + i, 65536);

	ck_assert_int_eq(pfs_store_open(path, &o, &st), 0);
	ck_assert(st->sb.feature_incompat & POSFS_FEATURE_compression);
	ck_assert_int_eq(pfs_store_statfs(st, &s0), 0);
	ck_assert_int_eq(pfs_store_oid_alloc(st, 0, &ot), 0);
	ck_assert_int_eq(pfs_store_oid_alloc(st, 0, &orn), 0);
	ck_assert_int_eq(pfs_store_oid_alloc(st, 0, &om), 0);
	ck_assert_int_eq(pfs_store_oid_alloc(st, 0, &os), 0);
	ck_assert_int_eq(pfs_store_oid_alloc(st, 1, &oc), 0);
	pfs_txn_init(&t);
	pfs_txn_create(&t, ot, &a);
	pfs_txn_create(&t, orn, &a);
	pfs_txn_create(&t, om, &a);
	pfs_txn_create(&t, os, &a);
	pfs_txn_create(&t, oc, &a);
	pfs_txn_write(&t, ot, 0, big, text);
	pfs_txn_write(&t, orn, 0, big, rnd);
	pfs_txn_write(&t, om, 0, big, mix);
	pfs_txn_write(&t, os, 3u << 20, 200000, text);	/* sparse: data past a hole */
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	pfs_txn_reset(&t);
	/* space actually used: text compresses, random does not, mixed half */
	ck_assert_uint_lt(blocks_of(st, ot), 256 / 4);
	ck_assert_uint_eq(blocks_of(st, orn), 256);
	ck_assert_uint_gt(blocks_of(st, om), 128);
	ck_assert_uint_lt(blocks_of(st, om), 128 + 256 / 8);
	ck_assert_uint_lt(blocks_of(st, os), 200000 / 4096 / 2);
	ck_assert_int_eq(pfs_store_read(st, ot, 0, big, back), (ssize_t)big);
	ck_assert_int_eq(memcmp(back, text, big), 0);
	ck_assert_int_eq(pfs_store_read(st, orn, 0, big, back), (ssize_t)big);
	ck_assert_int_eq(memcmp(back, rnd, big), 0);
	ck_assert_int_eq(pfs_store_read(st, om, 0, big, back), (ssize_t)big);
	ck_assert_int_eq(memcmp(back, mix, big), 0);
	/* random reads inside a frame; a read across frames */
	ck_assert_int_eq(pfs_store_read(st, ot, 200001, 777, back), 777);
	ck_assert_int_eq(memcmp(back, text + 200001, 777), 0);
	ck_assert_int_eq(pfs_store_read(st, ot, 131000, 5000, back), 5000);
	ck_assert_int_eq(memcmp(back, text + 131000, 5000), 0);
	/* the sparse one: zeros, then the data */
	ck_assert_int_eq(pfs_store_read(st, os, (3u << 20) - 4096, 8192, back), 8192);
	ck_assert(!memcmp(back, model, 4096) && !memcmp(back + 4096, text, 4096));
	{
		uint64_t d;

		ck_assert_int_eq(pfs_store_seek(st, os, 0, false, &d), 0);
		ck_assert_uint_eq(d, 3u << 20);
	}

	/* overwrites inside compressed extents: small (in place after the
	 * frame is unpacked), large across frame edges, a punch, a truncate */
	memcpy(model, text, big);
	pfs_txn_write(&t, ot, 5000, 100, rnd);
	memcpy(model + 5000, rnd, 100);
	pfs_txn_write(&t, ot, 100000, 70000, rnd + 100);
	memcpy(model + 100000, rnd + 100, 70000);
	pfs_txn_zero(&t, ot, 300000, 50000);
	memset(model + 300000, 0, 50000);
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	pfs_txn_reset(&t);
	pfs_txn_truncate(&t, ot, 700001);
	memset(model + 700001, 0, big - 700001);
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	pfs_txn_reset(&t);
	pfs_txn_truncate(&t, ot, big);
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	pfs_txn_reset(&t);
	ck_assert_int_eq(pfs_store_read(st, ot, 0, big, back), (ssize_t)big);
	ck_assert_int_eq(memcmp(back, model, big), 0);

	/* clones share frames, across shards too; a write to the clone
	 * leaves the source alone; a clone of part of a frame */
	pfs_txn_clone(&t, om, oc);
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	pfs_txn_reset(&t);
	pfs_txn_write(&t, oc, 4096, 4096, rnd);
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	pfs_txn_reset(&t);
	ck_assert_int_eq(pfs_store_read(st, oc, 0, big, back), (ssize_t)big);
	ck_assert(!memcmp(back, mix, 4096) && !memcmp(back + 4096, rnd, 4096) &&
		  !memcmp(back + 8192, mix + 8192, big - 8192));
	ck_assert_int_eq(pfs_store_read(st, om, 0, big, back), (ssize_t)big);
	ck_assert_int_eq(memcmp(back, mix, big), 0);
	pfs_txn_clone_range(&t, ot, 8192, os, 0, 16384);
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	pfs_txn_reset(&t);
	ck_assert_int_eq(pfs_store_read(st, os, 0, 16384, back), 16384);
	ck_assert_int_eq(memcmp(back, model + 8192, 16384), 0);
	ck_assert_int_eq(pfs_store_read(st, ot, 0, big, back), (ssize_t)big);
	ck_assert_int_eq(memcmp(back, model, big), 0);

	/* all of it again after a reopen */
	ck_assert_int_eq(pfs_store_close(st), 0);
	ck_assert_int_eq(pfs_store_open(path, &o, &st), 0);
	ck_assert_int_eq(pfs_store_read(st, ot, 0, big, back), (ssize_t)big);
	ck_assert_int_eq(memcmp(back, model, big), 0);
	ck_assert_int_eq(pfs_store_read(st, oc, 8192, big - 8192, back), (ssize_t)(big - 8192));
	ck_assert_int_eq(memcmp(back, mix + 8192, big - 8192), 0);
	/* a damaged frame: EIO, reported with the extent's place (the frame
	 * is found as zstd makes it again from the same bytes) */
	{
		uint8_t *z = malloc(PFS_COMPRESS_MAX);

		ck_assert_int_gt(pfs_compress(mix, PFS_COMPRESS_MAX, z, PFS_COMPRESS_MAX,
					      POSFS_COMPRESS_LEVEL_DEFAULT), 4096);
		frame = find_block(fd, st, 0, z);
		free(z);
	}
	ck_assert_int_eq(pfs_store_close(st), 0);
	flip_block(fd, frame);
	ck_assert_int_eq(pfs_store_open(path, &o, &st), 0);
	ck_assert_int_eq(pfs_store_read(st, om, 70000, 10, back), -EIO);
	ck_assert_uint_eq(errs.n, 1);
	ck_assert_uint_eq(errs.oid, om);
	ck_assert_uint_eq(errs.off, 0);
	ck_assert_uint_eq(errs.blkno, frame);
	ck_assert_int_eq(pfs_store_read(st, om, PFS_COMPRESS_MAX, 4096, back), 4096);
	ck_assert_int_eq(memcmp(back, mix + PFS_COMPRESS_MAX, 4096), 0);
	errs.n = 0;
	ck_assert_int_eq(pfs_store_close(st), 0);

	/* -o compress=none: new data plain, the old still read */
	o.compress = -1;
	ck_assert_int_eq(pfs_store_open(path, &o, &st), 0);
	pfs_txn_write(&t, orn, 0, big, text);
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	pfs_txn_reset(&t);
	ck_assert_uint_eq(blocks_of(st, orn), 256);
	ck_assert_int_eq(pfs_store_read(st, ot, 0, big, back), (ssize_t)big);
	ck_assert_int_eq(memcmp(back, model, big), 0);
	/* everything removed: every block back */
	pfs_txn_remove(&t, ot);
	pfs_txn_remove(&t, orn);
	pfs_txn_remove(&t, om);
	pfs_txn_remove(&t, os);
	pfs_txn_remove(&t, oc);
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	pfs_txn_fini(&t);
	ck_assert_int_eq(pfs_store_sync(st), 0);
	ck_assert_int_eq(pfs_store_statfs(st, &s1), 0);
	ck_assert_uint_eq(s1.free_blocks, s0.free_blocks);
	ck_assert_uint_eq(errs.n, 0);
	ck_assert_int_eq(pfs_store_close(st), 0);
	close(fd);
	unlink(path);
	free(text);
	free(rnd);
	free(mix);
	free(back);
	free(model);
}
END_TEST

static void compressed_setup(void)
{
	compress_mode = 1;
}

static void compressed_teardown(void)
{
	compress_mode = 0;
}

/* The superblock state on the device at path, read beside any store. */
static uint16_t super_state(const char *path)
{
	struct pfs_dev_opts dopts = { .readonly = true };
	struct pfs_super sb;
	struct pfs_dev *d;

	ck_assert_int_eq(pfs_dev_open(path, &dopts, &d), 0);
	ck_assert_int_eq(pfs_super_read(d, &sb, NULL), 0);
	pfs_dev_close(d);
	return sb.state;
}

START_TEST(corrupt_block_is_reported)
{
	char path[] = "/var/tmp/posfs-corrupt.XXXXXX";
	struct pfs_store_opts o = { .ckpt_interval_ms = -1 };
	struct pfs_store_damage dmg;
	struct pfs_attr a = { .mode = S_IFREG | 0644 };
	struct pfs_super sb;
	struct pfs_onode on;
	struct pfs_store *st;
	uint64_t oid0, oid1, leaf;
	struct pfs_txn t;
	uint8_t *img = pfs_dev_buf_alloc(4096);	/* a block, as the device holds it */
	char buf[8];
	int fd = newfs_file(2, path);

	ck_assert_int_eq(pfs_store_open(path, &o, &st), 0);
	ck_assert_int_eq(pfs_store_oid_alloc(st, 0, &oid0), 0);
	ck_assert_int_eq(pfs_store_oid_alloc(st, 1, &oid1), 0);
	pfs_txn_init(&t);
	pfs_txn_create(&t, oid0, &a);
	pfs_txn_create(&t, oid1, &a);
	pfs_txn_write(&t, oid0, 0, 5, "zero!");
	pfs_txn_write(&t, oid1, 0, 5, "one!!");
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	pfs_txn_fini(&t);
	leaf = st->shards[1].hdr.onodes.blkno;	/* shard 1's onode leaf */
	ck_assert_int_eq(pfs_store_close(st), 0);
	/* one flipped bit in that block on the device */
	ck_assert_int_eq(pread(fd, img, 4096, (off_t)leaf * 4096), 4096);
	img[700] ^= 0x04;
	ck_assert_int_eq(pwrite(fd, img, 4096, (off_t)leaf * 4096), 4096);
	ck_assert_int_eq(pfs_store_open(path, &o, &st), 0);
	ck_assert_int_eq(pfs_store_stat(st, oid1, &on), -EBADMSG);
	/* the damage is named, and the superblock marked at once */
	ck_assert(pfs_store_damage(st, &dmg));
	ck_assert_int_eq(dmg.kind, PFS_DAMAGE_ONODE_TREE);
	ck_assert_uint_eq(dmg.shard, 1);
	ck_assert_uint_eq(dmg.blkno, leaf);
	ck_assert(dmg.marked);
	ck_assert(super_state(path) & POSFS_STATE_ERRORS);
	ck_assert_int_eq(pfs_store_read(st, oid1, 0, 5, buf), -EBADMSG);
	pfs_txn_init(&t);
	pfs_txn_write(&t, oid1, 0, 5, "again");
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), -EBADMSG);
	pfs_txn_fini(&t);
	/* the other shard is untouched and works */
	ck_assert_int_eq(pfs_store_read(st, oid0, 0, 5, buf), 5);
	ck_assert_int_eq(memcmp(buf, "zero!", 5), 0);
	ck_assert(pfs_store_has_errors(st));
	ck_assert_int_eq(pfs_store_close(st), 0);
	/* and the superblock says fsck is needed */
	{
		struct pfs_dev *d;

		ck_assert_int_eq(pfs_dev_open(path, NULL, &d), 0);
		ck_assert_int_eq(pfs_super_read(d, &sb, NULL), 0);
		ck_assert(sb.state & POSFS_STATE_ERRORS);
		pfs_dev_close(d);
	}
	close(fd);
	unlink(path);
	pfs_dev_buf_free(img);
}
END_TEST

/*
 * An open that fails on damaged metadata under good superblocks (a free
 * tree block with a bad checksum) says what and where, and marks the
 * file system as having errors, unless read-only; two damaged superblocks
 * and a device with no posfs are told apart.
 */
START_TEST(open_on_damage_marks)
{
	char path[] = "/var/tmp/posfs-damage.XXXXXX";
	struct pfs_store_damage dmg;
	struct pfs_store_opts o = { .ckpt_interval_ms = -1, .damage = &dmg };
	struct pfs_store *st;
	uint8_t *img = pfs_dev_buf_alloc(4096);
	uint64_t froot;
	char what[256];
	int fd = newfs_file(2, path);

	ck_assert_int_eq(pfs_store_open(path, &o, &st), 0);
	ck_assert_int_eq(dmg.kind, PFS_DAMAGE_NONE);
	froot = st->shards[1].hdr.free.blkno;
	ck_assert_int_eq(pfs_store_close(st), 0);
	ck_assert_int_eq(pread(fd, img, 4096, (off_t)froot * 4096), 4096);
	img[300] ^= 0x10;
	ck_assert_int_eq(pwrite(fd, img, 4096, (off_t)froot * 4096), 4096);

	o.readonly = true;
	ck_assert_int_eq(pfs_store_open(path, &o, &st), -EBADMSG);
	ck_assert_int_eq(dmg.kind, PFS_DAMAGE_FREE_TREE);
	ck_assert(!dmg.marked);
	ck_assert(!(super_state(path) & POSFS_STATE_ERRORS));
	o.readonly = false;
	ck_assert_int_eq(pfs_store_open(path, &o, &st), -EBADMSG);
	ck_assert_int_eq(dmg.kind, PFS_DAMAGE_FREE_TREE);
	ck_assert_uint_eq(dmg.shard, 1);
	ck_assert_uint_eq(dmg.blkno, froot);
	ck_assert(dmg.marked);
	ck_assert(super_state(path) & POSFS_STATE_ERRORS);
	snprintf(what, sizeof(what), "the free-space tree of shard 1 is damaged (block %" PRIu64
		 ")", froot);
	ck_assert_str_eq(pfs_store_damage_str(&dmg, what + 128, 128), what);

	/* both superblock copies with bad checksums: damaged, not foreign */
	for (off_t off = POSFS_SB_OFFSET; off <= POSFS_SB_BACKUP_OFFSET; off += 4096) {
		ck_assert_int_eq(pread(fd, img, 4096, off), 4096);
		img[0x200] ^= 0x5a;
		ck_assert_int_eq(pwrite(fd, img, 4096, off), 4096);
	}
	ck_assert_int_eq(pfs_store_open(path, &o, &st), -EBADMSG);
	ck_assert_int_eq(dmg.kind, PFS_DAMAGE_SUPER);
	ck_assert(!dmg.marked);
	/* no posfs magic in either: not a posfs device */
	memset(img, 0, 4096);
	ck_assert_int_eq(pwrite(fd, img, 4096, POSFS_SB_OFFSET), 4096);
	ck_assert_int_eq(pwrite(fd, img, 4096, POSFS_SB_BACKUP_OFFSET), 4096);
	ck_assert_int_lt(pfs_store_open(path, &o, &st), 0);
	ck_assert_int_eq(dmg.kind, PFS_DAMAGE_NOT_POSFS);
	close(fd);
	unlink(path);
	pfs_dev_buf_free(img);
}
END_TEST

/* ---- power cuts --------------------------------------------------------- */

#define NTX_CUT 60

START_TEST(power_cuts)
{
	struct model *snap = calloc(NTX_CUT + 1, sizeof(*snap));
	size_t mark_ev[NTX_CUT + 1];
	uint32_t acked[NTX_CUT + 1];
	int nmarks = 0;
	struct pfs_dev *mem = newfs_mem(2), *recdev;
	struct pfs_devrec *rec;
	struct pfs_store *st;
	struct pfs_attr a = { .mode = S_IFREG | 0644 };
	struct pfs_txn t;
	uint64_t counter;
	uint8_t *base = pfs_dev_buf_alloc(DEVSZ);
	size_t setup_end, cuts = 0;
	char zero4[4] = { 0 };

	struct pfs_statfs empty;

	srand(seed + 3);
	ck_assert_int_eq(pfs_dev_pread(mem, base, DEVSZ, 0), 0);
	ck_assert_int_eq(pfs_devrec_wrap(mem, &recdev), 0);
	rec = pfs_devrec_of(recdev);
	st = open_dev(recdev);
	ck_assert_int_eq(pfs_store_statfs(st, &empty), 0);
	ck_assert_int_eq(pfs_store_oid_alloc(st, 0, &counter), 0);
	pfs_txn_init(&t);
	pfs_txn_create(&t, counter, &a);
	pfs_txn_setxattr(&t, counter, "user.n", zero4, 4, 0);
	ck_assert_int_eq(pfs_store_submit(st, &t, PFS_SUBMIT_DURABLE, NULL), 0);
	pfs_txn_fini(&t);
	ck_assert_int_eq(pfs_store_sync(st), 0);
	setup_end = pfs_devrec_count(rec);
	for (int k = 1; k <= NTX_CUT; k++) {
		bool durable = rand() % 2;

		snap[k] = snap[k - 1];
		ck_assert_int_eq(random_txn(st, &snap[k], counter, durable, NULL), 0);
		ck_assert_uint_eq(snap[k].txno, (uint32_t)k);
		if (durable) {
			mark_ev[nmarks] = pfs_devrec_count(rec);
			acked[nmarks++] = (uint32_t)k;
		}
		if (k % 20 == 0)
			ck_assert_int_eq(pfs_store_sync(st), 0);
		if (discard_mode && k % 15 == 0) {
			uint64_t trimmed;

			ck_assert_int_eq(pfs_store_trim(st, 0, UINT64_MAX, 0, &trimmed), 0);
			ck_assert_uint_gt(trimmed, 0);
		}
	}
	for (size_t f = setup_end; f < pfs_devrec_count(rec); f++) {
		struct pfs_dev *dev;
		struct pfs_store *s2;
		uint32_t must = 0, n;
		char v[8];

		if (pfs_devrec_event(rec, f)->kind != PFS_REC_FLUSH)
			continue;
		for (int i = 0; i < nmarks && mark_ev[i] <= f; i++)
			must = acked[i];
		ck_assert_int_eq(pfs_dev_open_mem(DEVSZ, 512, &dev), 0);
		ck_assert_int_eq(pfs_dev_pwrite(dev, base, DEVSZ, 0), 0);
		if (!discard_mode) {
			ck_assert_int_eq(pfs_devrec_apply(rec, 0, f + 1, dev), 0);
		} else {
			/* discarded blocks read back as garbage, not zeros */
			for (size_t i = 0; i <= f; i++) {
				const struct pfs_devrec_event *e = pfs_devrec_event(rec, i);

				if (e->kind == PFS_REC_WRITE)
					ck_assert_int_eq(pfs_devrec_apply_one(rec, i, 0, dev), 0);
				else if (e->kind == PFS_REC_DISCARD)
					ck_assert_int_eq(pfs_devrec_apply_discard(rec, i, 0xa5, dev), 0);
			}
		}
		/* the writes in flight after the flush: a random subset, some
		 * torn (discards in flight are lost: the old bytes stay) */
		for (size_t i = f + 1; i < pfs_devrec_count(rec) &&
		     pfs_devrec_event(rec, i)->kind != PFS_REC_FLUSH; i++) {
			const struct pfs_devrec_event *e = pfs_devrec_event(rec, i);

			if (e->kind == PFS_REC_WRITE && rand() % 3 == 0)
				ck_assert_int_eq(pfs_devrec_apply_one(rec, i,
					rand() % 2 ? 0 : 512 * (1 + (uint32_t)rand() % (e->len / 512)), dev), 0);
		}
		s2 = open_dev(dev);
		ck_assert_int_eq(pfs_store_getxattr(s2, counter, "user.n", v, sizeof(v)), 4);
		memcpy(&n, v, 4);
		ck_assert_msg(n <= NTX_CUT && n >= must, "cut at %zu: store at transaction %u, "
			      "acknowledged %u, seed %u", f, n, must, seed);
		verify(s2, &snap[n], "after a power cut");
		space_verify(s2);
		/* exact accounting: with every object gone, every block is free */
		{
			struct pfs_statfs sfs;
			struct pfs_txn rm;

			pfs_txn_init(&rm);
			pfs_txn_remove(&rm, counter);
			for (int i = 0; i < NOBJ; i++)
				if (snap[n].o[i].oid)
					pfs_txn_remove(&rm, snap[n].o[i].oid);
			ck_assert_int_eq(pfs_store_submit(s2, &rm, 0, NULL), 0);
			pfs_txn_fini(&rm);
			ck_assert_int_eq(pfs_store_sync(s2), 0);
			ck_assert_int_eq(pfs_store_statfs(s2, &sfs), 0);
			ck_assert_msg(sfs.free_blocks == empty.free_blocks && sfs.objects == empty.objects,
				      "cut at %zu: %llu blocks free with nothing left, %llu at first, seed %u",
				      f, (unsigned long long)sfs.free_blocks,
				      (unsigned long long)empty.free_blocks, seed);
		}
		ck_assert_int_eq(pfs_store_close(s2), 0);
		cuts++;
	}
	ck_assert_uint_gt(cuts, NTX_CUT / 3);
	ck_assert_int_eq(pfs_store_close(st), 0);
	pfs_dev_buf_free(base);
	free(snap);
}
END_TEST

/* ---- trim and discard (trim.c) -------------------------------------------- */

static void discard_setup(void)
{
	discard_mode = true;
}

static void discard_teardown(void)
{
	discard_mode = false;
}

/*
 * The DISCARD events of rec from event from on: each lies inside one free
 * extent of st as it is now (nothing ran since), and is overwritten on raw
 * (the device under the recording) with garbage, as a device may return
 * for discarded blocks. Returns their bytes.
 */
static uint64_t discards_check(struct pfs_store *st, struct pfs_devrec *rec, size_t from,
			       struct pfs_dev *raw)
{
	uint32_t bs = st->sb.block_size;
	uint64_t bytes = 0;

	for (size_t i = from; i < pfs_devrec_count(rec); i++) {
		const struct pfs_devrec_event *e = pfs_devrec_event(rec, i);
		uint64_t blk, n, fs, fl;
		struct pfs_shard *sh;

		if (e->kind != PFS_REC_DISCARD)
			continue;
		ck_assert(e->off % bs == 0 && e->len % bs == 0 && e->len);
		blk = e->off / bs;
		n = e->len / bs;
		sh = pfs_store_block_shard(st, blk);
		ck_assert_msg(sh, "discard of block %llu, outside every data area, seed %u",
			      (unsigned long long)blk, seed);
		ck_assert_msg(pfs_alloc_find(&sh->alloc, blk, &fs, &fl) == 0 && fs <= blk &&
			      blk + n <= fs + fl, "discard of blocks %llu+%llu, not free, seed %u",
			      (unsigned long long)blk, (unsigned long long)n, seed);
		ck_assert_int_eq(pfs_devrec_apply_discard(rec, i, 0xa5, raw), 0);
		bytes += e->len;
	}
	return bytes;
}

/* Every free block of st, in bytes; nothing pending. */
static uint64_t free_bytes(struct pfs_store *st)
{
	uint64_t n = 0;

	for (uint32_t i = 0; i < st->nshards; i++) {
		ck_assert_uint_eq(pfs_alloc_pending_blocks(&st->shards[i].alloc), 0);
		n += pfs_alloc_free_blocks(&st->shards[i].alloc);
	}
	return n * st->sb.block_size;
}

/* A new file system on the caller's image, behind a recording device. */
static struct pfs_store *open_recorded(uint8_t *image, struct pfs_dev **raw, struct pfs_devrec **rec)
{
	struct pfs_dev *recdev;

	ck_assert_int_eq(pfs_dev_open_mem_over(image, DEVSZ, 512, raw), 0);
	ck_assert_int_eq(pfs_devrec_wrap(*raw, &recdev), 0);
	*rec = pfs_devrec_of(recdev);
	return open_dev(recdev);
}

static uint8_t *new_image(uint32_t shards)
{
	struct pfs_dev *dev = newfs_mem(shards);
	uint8_t *image = pfs_dev_buf_alloc(DEVSZ);

	ck_assert_ptr_nonnull(image);
	ck_assert_int_eq(pfs_dev_pread(dev, image, DEVSZ, 0), 0);
	pfs_dev_close(dev);
	return image;
}

/* One object of len bytes of data (out of place), durable. */
static uint64_t big_object(struct pfs_store *st, uint32_t shard, size_t len)
{
	struct pfs_attr a = { .mode = S_IFREG | 0644, .nlink = 1 };
	uint8_t *d = malloc(len);
	struct pfs_txn t;
	uint64_t oid;

	memset(d, 0x3c, len);
	ck_assert_int_eq(pfs_store_oid_alloc(st, shard, &oid), 0);
	pfs_txn_init(&t);
	pfs_txn_create(&t, oid, &a);
	pfs_txn_write(&t, oid, 0, len, d);
	ck_assert_int_eq(pfs_store_submit(st, &t, PFS_SUBMIT_DURABLE, NULL), 0);
	pfs_txn_fini(&t);
	free(d);
	return oid;
}

static void remove_object(struct pfs_store *st, uint64_t oid)
{
	struct pfs_txn t;

	pfs_txn_init(&t);
	pfs_txn_remove(&t, oid);
	ck_assert_int_eq(pfs_store_submit(st, &t, PFS_SUBMIT_DURABLE, NULL), 0);
	pfs_txn_fini(&t);
}

/*
 * pfs_store_trim: every free block and nothing else is discarded, and the
 * count says so; what was freed since the last checkpoint is trimmed too;
 * the range and minlen bound it; the argument errors. Discarded blocks are
 * then garbage on the device, and the data of every live object reads
 * back as the model has it, before and after a reopen.
 */
START_TEST(trim_discards_free_space)
{
	uint8_t *image = new_image(2);
	struct model *m = calloc(1, sizeof(*m));
	struct pfs_store_counters c;
	struct pfs_devrec *rec;
	struct pfs_dev *raw;
	struct pfs_store *st = open_recorded(image, &raw, &rec);
	uint32_t bs = st->sb.block_size;
	uint64_t trimmed, before, big;
	size_t ev;

	srand(seed + 7);
	for (int i = 0; i < 300; i++)
		ck_assert_int_eq(random_txn(st, m, 0, false, NULL), 0);

	/* all of the free space, and nothing but it */
	ev = pfs_devrec_count(rec);
	ck_assert_int_eq(pfs_store_trim(st, 0, UINT64_MAX, 0, &trimmed), 0);
	ck_assert_uint_gt(trimmed, 0);
	ck_assert_uint_eq(trimmed, free_bytes(st));
	ck_assert_uint_eq(discards_check(st, rec, ev, raw), trimmed);
	verify(st, m, "after a trim");
	space_verify(st);
	pfs_store_counters(st, &c);
	ck_assert_uint_eq(c.discard_blocks * bs, trimmed);

	/* a trim after frees discards them: they are free once trim's
	 * checkpoint is done */
	big = big_object(st, 1, 1 << 20);
	ck_assert_int_eq(pfs_store_sync(st), 0);
	before = free_bytes(st);
	remove_object(st, big);
	ev = pfs_devrec_count(rec);
	ck_assert_int_eq(pfs_store_trim(st, 0, UINT64_MAX, 0, &trimmed), 0);
	ck_assert_uint_ge(trimmed, before + (1 << 20));
	ck_assert_uint_eq(trimmed, free_bytes(st));
	ck_assert_uint_eq(discards_check(st, rec, ev, raw), trimmed);

	/* random work between trims: each trims exactly the free space */
	for (int round = 0; round < 6; round++) {
		for (int i = 0; i < 100; i++)
			ck_assert_int_eq(random_txn(st, m, 0, rand() % 5 == 0, NULL), 0);
		ev = pfs_devrec_count(rec);
		ck_assert_int_eq(pfs_store_trim(st, 0, UINT64_MAX, 0, &trimmed), 0);
		ck_assert_uint_eq(trimmed, free_bytes(st));
		ck_assert_uint_eq(discards_check(st, rec, ev, raw), trimmed);
		verify(st, m, "between trims");
		space_verify(st);
	}

	/* a range: only the free blocks inside it */
	{
		struct pfs_shard *sh = &st->shards[1];
		uint64_t lo = sh->geo.data_start + 100, hi = lo + 1000;

		ev = pfs_devrec_count(rec);
		ck_assert_int_eq(pfs_store_trim(st, lo * bs, (hi - lo) * bs, 0, &trimmed), 0);
		ck_assert_uint_eq(discards_check(st, rec, ev, raw), trimmed);
		for (size_t i = ev; i < pfs_devrec_count(rec); i++) {
			const struct pfs_devrec_event *e = pfs_devrec_event(rec, i);

			if (e->kind == PFS_REC_DISCARD)
				ck_assert(e->off >= lo * bs && e->off + e->len <= hi * bs);
		}
	}
	/* minlen: no free extent is that long, so nothing goes */
	ev = pfs_devrec_count(rec);
	ck_assert_int_eq(pfs_store_trim(st, 0, UINT64_MAX, DEVSZ / 2 + 4096, &trimmed), 0);
	ck_assert_uint_eq(trimmed, 0);
	ck_assert_uint_eq(discards_check(st, rec, ev, raw), 0);
	/* the errors, as ext4 answers */
	ck_assert_int_eq(pfs_store_trim(st, 0, bs - 1, 0, &trimmed), -EINVAL);
	ck_assert_int_eq(pfs_store_trim(st, DEVSZ, 1 << 20, 0, &trimmed), -EINVAL);
	ck_assert_int_eq(pfs_store_trim(st, 0, UINT64_MAX, 2 * DEVSZ, &trimmed), -EINVAL);
	verify(st, m, "before close");
	ck_assert_int_eq(pfs_store_close(st), 0);

	/* the image, discarded blocks garbage: everything as the model */
	ck_assert_int_eq(pfs_dev_open_mem_over(image, DEVSZ, 512, &raw), 0);
	st = open_dev(raw);
	verify(st, m, "reopened after trims");
	space_verify(st);
	ck_assert_int_eq(pfs_store_close(st), 0);

	/* read-only: refused */
	{
		struct pfs_store_opts o = { .readonly = true };

		ck_assert_int_eq(pfs_dev_open_mem_over(image, DEVSZ, 512, &raw), 0);
		ck_assert_int_eq(pfs_store_open_dev(raw, &o, &st), 0);
		ck_assert_int_eq(pfs_store_trim(st, 0, UINT64_MAX, 0, &trimmed), -EROFS);
		ck_assert_int_eq(pfs_store_close(st), 0);
	}
	pfs_dev_buf_free(image);
	free(m);
}
END_TEST

/*
 * The discard option: a free is discarded by the checkpoint that makes it
 * reusable, after the shard headers are flushed, never before; then the
 * random model with discards as garbage reads back intact.
 */
START_TEST(discard_at_checkpoint)
{
	uint8_t *image = new_image(2);
	struct model *m = calloc(1, sizeof(*m));
	struct pfs_store_counters c0, c1;
	struct pfs_devrec *rec;
	struct pfs_dev *raw;
	struct pfs_store *st;
	uint64_t big, before, bytes;
	size_t ev, first = SIZE_MAX;

	discard_mode = true;
	st = open_recorded(image, &raw, &rec);
	discard_mode = false;
	srand(seed + 8);
	big = big_object(st, 0, 1 << 20);
	ck_assert_int_eq(pfs_store_sync(st), 0);
	before = free_bytes(st);
	pfs_store_counters(st, &c0);
	ev = pfs_devrec_count(rec);
	remove_object(st, big);
	/* durable, not yet checkpointed: nothing discarded */
	for (size_t i = ev; i < pfs_devrec_count(rec); i++)
		ck_assert_int_ne(pfs_devrec_event(rec, i)->kind, PFS_REC_DISCARD);
	ck_assert_int_eq(pfs_store_sync(st), 0);
	for (size_t i = ev; i < pfs_devrec_count(rec) && first == SIZE_MAX; i++)
		if (pfs_devrec_event(rec, i)->kind == PFS_REC_DISCARD)
			first = i;
	ck_assert_uint_ne(first, SIZE_MAX);
	ck_assert_int_eq(pfs_devrec_event(rec, first - 1)->kind, PFS_REC_FLUSH);
	bytes = discards_check(st, rec, ev, raw);
	ck_assert_uint_ge(bytes, 1 << 20);
	ck_assert_uint_le(bytes, free_bytes(st) - before + (1 << 20));
	pfs_store_counters(st, &c1);
	ck_assert_uint_eq((c1.discard_blocks - c0.discard_blocks) * st->sb.block_size, bytes);

	for (int round = 0; round < 8; round++) {
		for (int i = 0; i < 120; i++)
			ck_assert_int_eq(random_txn(st, m, 0, rand() % 5 == 0, NULL), 0);
		ev = pfs_devrec_count(rec);
		ck_assert_int_eq(pfs_store_sync(st), 0);
		discards_check(st, rec, ev, raw);
		verify(st, m, "after discards");
		space_verify(st);
	}
	ck_assert_int_eq(pfs_store_close(st), 0);
	ck_assert_int_eq(pfs_dev_open_mem_over(image, DEVSZ, 512, &raw), 0);
	st = open_dev(raw);
	verify(st, m, "reopened after discards");
	space_verify(st);
	ck_assert_int_eq(pfs_store_close(st), 0);
	pfs_dev_buf_free(image);
	free(m);
}
END_TEST

int main(int argc, char **argv)
{
	const char *s = argc > 1 ? argv[1] : getenv("POSFS_TEST_SEED");
	Suite *su = suite_create("store");
	TCase *tc = tcase_create("store");
	SRunner *sr;
	int failed;

	seed = 1;
	if (s)
		seed = !strcmp(s, "random") ? (unsigned)time(NULL) : (unsigned)strtoul(s, NULL, 0);
	printf("seed %u\n", seed);
	scratch = malloc(4 * MAXSZ);
	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, model_random);
	tcase_add_test(tc, close_and_reopen);
	tcase_add_test(tc, errors_change_nothing);
	tcase_add_test(tc, enospc_is_whole);
	tcase_add_test(tc, full_shard_spills_over);
	tcase_add_test(tc, reserve_for_removal);
	tcase_add_test(tc, store_counters);
	tcase_add_test(tc, power_cuts);
	tcase_add_test(tc, timer_checkpoints);
	tcase_add_test(tc, remount_readonly);
	tcase_add_test(tc, threads_across_shards);
	tcase_add_test(tc, transaction_larger_than_the_wal);
	tcase_add_test(tc, inline_data);
	tcase_add_test(tc, xattrs_inline_and_omap);
	tcase_add_test(tc, seek_data_and_holes);
	tcase_add_test(tc, onode_cache_serves_stats);
	tcase_add_test(tc, corrupt_block_is_reported);
	tcase_add_test(tc, open_on_damage_marks);
	tcase_add_test(tc, data_checksums);
	tcase_add_test(tc, compression);
	tcase_add_test(tc, trim_discards_free_space);
	tcase_add_test(tc, discard_at_checkpoint);
	suite_add_tcase(su, tc);
	/* power cuts with the discard option on and trims between, the
	 * discarded blocks garbage */
	tc = tcase_create("discard");
	tcase_set_timeout(tc, 300);
	tcase_add_unchecked_fixture(tc, discard_setup, discard_teardown);
	tcase_add_test(tc, power_cuts);
	suite_add_tcase(su, tc);
	/* on its own: CK_RUN_CASE=label */
	tc = tcase_create("label");
	tcase_add_test(tc, label_set);
	suite_add_tcase(su, tc);
	/* the model tests again, compressing every large write */
	tc = tcase_create("compressed");
	tcase_set_timeout(tc, 300);
	tcase_add_unchecked_fixture(tc, compressed_setup, compressed_teardown);
	tcase_add_test(tc, model_random);
	tcase_add_test(tc, close_and_reopen);
	tcase_add_test(tc, power_cuts);
	tcase_add_test(tc, seek_data_and_holes);
	suite_add_tcase(su, tc);
	sr = srunner_create(su);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	free(scratch);
	return failed ? 1 : 0;
}
