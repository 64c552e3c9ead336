/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The codec of the namespace layer's omap records (directory entries,
 * orphan lists; laid out in format.h) and the allocator of entry seqs,
 * shared by src/fs and the checker (dent.h).
 *
 * The next seq of a directory is one past its largest seq record, found
 * by a binary search over the seq keys: seq_after(x) asks whether some
 * seq record sorts after 's' + be64 x. Seq keys are big-endian, so key
 * order is seq order; a seq key of the wrong length sorts among them but
 * is damage, no seq: the probe goes past it rather than stop there (an
 * answer below a seq in use would hand that seq out again).
 */
#include <endian.h>
#include <errno.h>
#include <string.h>

#include "format/endian.h"
#include "fs/dent.h"

/* Seq and orphan keys alike: a prefix byte, then a be64. */
#define KEY64_LEN 9u
_Static_assert(POSFS_DENT_SEQ_KEY_LEN == KEY64_LEN && POSFS_ORPHAN_KEY_LEN == KEY64_LEN,
	       "seq and orphan keys are a prefix and a be64");

static void key64_put(uint8_t *key, uint8_t prefix, uint64_t v)
{
	key[0] = prefix;
	st_be64(key + 1, v);
}

static int key64_get(const void *key, size_t klen, uint8_t prefix, uint64_t *v)
{
	const uint8_t *k = key;

	if (!klen || k[0] != prefix)
		return -ENOENT;
	if (klen != KEY64_LEN)
		return -EUCLEAN;
	*v = ld_be64(k + 1);
	return 0;
}

/* ---- names ------------------------------------------------------------- */

bool pfs_dent_name_ok(const void *name, size_t len)
{
	const uint8_t *s = name;

	if (!len || len > POSFS_NAME_MAX || memchr(s, '/', len) || memchr(s, 0, len))
		return false;
	return !(s[0] == '.' && (len == 1 || (len == 2 && s[1] == '.')));
}

size_t pfs_dent_name_key(uint8_t key[PFS_DENT_NAME_KEY_MAX], const void *name, size_t len)
{
	key[0] = POSFS_DENT_NAME;
	memcpy(key + 1, name, len);
	return len + 1;
}

int pfs_dent_name_key_decode(const void *key, size_t klen, const uint8_t **name,
			     size_t *len)
{
	const uint8_t *k = key;

	if (!klen || k[0] != POSFS_DENT_NAME)
		return -ENOENT;
	if (!pfs_dent_name_ok(k + 1, klen - 1))
		return -EUCLEAN;
	*name = k + 1;
	*len = klen - 1;
	return 0;
}

/* ---- seq keys and values ----------------------------------------------- */

void pfs_dent_seq_key(uint8_t key[POSFS_DENT_SEQ_KEY_LEN], uint64_t seq)
{
	key64_put(key, POSFS_DENT_SEQ, seq);
}

int pfs_dent_seq_key_decode(const void *key, size_t klen, uint64_t *seq)
{
	return key64_get(key, klen, POSFS_DENT_SEQ, seq);
}

void pfs_dent_encode(uint8_t val[POSFS_DENT_VLEN], const struct pfs_dent *d)
{
	struct pfs_ddent *v = (struct pfs_ddent *)val;

	st_le64(v->ino, d->ino);
	v->type = d->type;
	st_le64(v->seq, d->seq);
}

int pfs_dent_decode(const void *val, size_t vlen, struct pfs_dent *d)
{
	const struct pfs_ddent *v = val;

	if (vlen != POSFS_DENT_VLEN)
		return -EUCLEAN;
	d->ino = ld_le64(v->ino);
	d->type = v->type;
	d->seq = ld_le64(v->seq);
	return 0;
}

/* ---- orphan lists ------------------------------------------------------ */

void pfs_orphan_key(uint8_t key[POSFS_ORPHAN_KEY_LEN], uint64_t oid)
{
	key64_put(key, POSFS_ORPHAN_KEY, oid);
}

int pfs_orphan_key_decode(const void *key, size_t klen, uint64_t *oid)
{
	return key64_get(key, klen, POSFS_ORPHAN_KEY, oid);
}

/* ---- the seq allocator ------------------------------------------------- */

/* 1 at a seq record, 2 past the seq records; malformed ones: go on. */
static int seq_probe_cb(void *arg, const void *key, size_t klen, const void *val, size_t vlen)
{
	uint64_t seq;
	int ret = pfs_dent_seq_key_decode(key, klen, &seq);

	(void)arg;
	(void)val;
	(void)vlen;
	if (ret == -EUCLEAN)
		return 0;
	return ret ? 2 : 1;
}

/* Is there a seq record past seq x in dir? 1, 0 or -errno. */
static int seq_after(struct pfs_store *st, uint64_t dir, uint64_t x)
{
	uint8_t key[POSFS_DENT_SEQ_KEY_LEN];
	int ret;

	pfs_dent_seq_key(key, x);
	ret = pfs_store_omap_iterate(st, dir, key, sizeof(key), seq_probe_cb, NULL);
	return ret < 0 ? ret : ret == 1;
}

int pfs_dent_seq_next(struct pfs_store *st, uint64_t dir, uint64_t *seq)
{
	uint64_t lo = 0, hi = UINT64_MAX;
	int ret = seq_after(st, dir, 0);

	if (ret < 0)
		return ret;
	if (!ret) {
		*seq = POSFS_DENT_FIRST_SEQ;
		return 0;
	}
	/* seq records after lo, none after hi: the largest is hi at the end */
	while (hi - lo > 1) {
		uint64_t mid = lo + (hi - lo) / 2;

		ret = seq_after(st, dir, mid);
		if (ret < 0)
			return ret;
		if (ret)
			lo = mid;
		else
			hi = mid;
	}
	if (hi == UINT64_MAX)
		return -EOVERFLOW;
	*seq = hi + 1 < POSFS_DENT_FIRST_SEQ ? POSFS_DENT_FIRST_SEQ : hi + 1;
	return 0;
}
