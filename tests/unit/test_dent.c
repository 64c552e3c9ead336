/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * src/fs/dent.c: the codec of directory entry and orphan records (round
 * trips, the bytes format.h lays out, malformed keys and values refused)
 * and the seq allocator on a memory store (reserved seqs, records of
 * other kinds, malformed seq keys passed over, overflow), also as the
 * namespace layer uses it.
 */
#include <check.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>

#include "fs/dent.h"
#include "posfs/format.h"
#include "posfs/fs.h"
#include "posfs/io.h"
#include "posfs/store.h"
#include "testdev.h"

static const struct pfs_fs_cred user = { .uid = 1000, .gid = 1000 };

/* ---- codec ------------------------------------------------------------- */

START_TEST(value_round_trip)
{
	static const struct pfs_dent cases[] = {
		{ .ino = 0, .seq = 0, .type = 0 },
		{ .ino = POSFS_ROOT_OID, .seq = POSFS_DENT_FIRST_SEQ, .type = 4 },
		{ .ino = UINT64_C(0x0102030405060708), .seq = UINT64_C(0x1112131415161718), .type = 8 },
		{ .ino = UINT64_MAX, .seq = UINT64_MAX, .type = 0xff },
	};
	uint8_t v[POSFS_DENT_VLEN];

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct pfs_dent d;

		pfs_dent_encode(v, &cases[i]);
		ck_assert_int_eq(pfs_dent_decode(v, sizeof(v), &d), 0);
		ck_assert_uint_eq(d.ino, cases[i].ino);
		ck_assert_uint_eq(d.seq, cases[i].seq);
		ck_assert_uint_eq(d.type, cases[i].type);
	}
	/* the bytes of struct pfs_ddent: le64 ino at 0, type at 8, le64 seq at 9 */
	pfs_dent_encode(v, &cases[2]);
	ck_assert_uint_eq(offsetof(struct pfs_ddent, type), 8);
	ck_assert_uint_eq(offsetof(struct pfs_ddent, seq), 9);
	for (int i = 0; i < 8; i++) {
		ck_assert_uint_eq(v[i], 8 - i);
		ck_assert_uint_eq(v[9 + i], 0x18 - i);
	}
	ck_assert_uint_eq(v[8], 8);
}
END_TEST

START_TEST(value_malformed)
{
	struct pfs_dent d = { .ino = 7, .seq = 9, .type = 1 };
	uint8_t v[POSFS_DENT_VLEN + 1] = { 0xaa };

	ck_assert_int_eq(pfs_dent_decode(v, 0, &d), -EUCLEAN);
	ck_assert_int_eq(pfs_dent_decode(v, POSFS_DENT_VLEN - 1, &d), -EUCLEAN);
	ck_assert_int_eq(pfs_dent_decode(v, POSFS_DENT_VLEN + 1, &d), -EUCLEAN);
	/* untouched */
	ck_assert_uint_eq(d.ino, 7);
	ck_assert_uint_eq(d.seq, 9);
	ck_assert_uint_eq(d.type, 1);
}
END_TEST

START_TEST(name_keys)
{
	uint8_t key[PFS_DENT_NAME_KEY_MAX + 1], name[POSFS_NAME_MAX + 1];
	const uint8_t *got;
	size_t klen, len;

	klen = pfs_dent_name_key(key, "hello", 5);
	ck_assert_uint_eq(klen, 6);
	ck_assert_uint_eq(key[0], POSFS_DENT_NAME);
	ck_assert_int_eq(pfs_dent_name_key_decode(key, klen, &got, &len), 0);
	ck_assert_uint_eq(len, 5);
	ck_assert_int_eq(memcmp(got, "hello", 5), 0);
	ck_assert_ptr_eq(got, key + 1);

	memset(name, 'x', sizeof(name));
	klen = pfs_dent_name_key(key, name, POSFS_NAME_MAX);
	ck_assert_uint_eq(klen, PFS_DENT_NAME_KEY_MAX);
	ck_assert_int_eq(pfs_dent_name_key_decode(key, klen, &got, &len), 0);
	ck_assert_uint_eq(len, POSFS_NAME_MAX);
	/* "..." and a name with a high byte are names */
	ck_assert(pfs_dent_name_ok("...", 3));
	ck_assert(pfs_dent_name_ok("\xff", 1));

	/* another record: not a name key */
	ck_assert_int_eq(pfs_dent_name_key_decode(key, 0, &got, &len), -ENOENT);
	ck_assert_int_eq(pfs_dent_name_key_decode("sabc", 4, &got, &len), -ENOENT);
	ck_assert_int_eq(pfs_dent_name_key_decode("oabc", 4, &got, &len), -ENOENT);
	/* names the layer cannot have written */
	ck_assert_int_eq(pfs_dent_name_key_decode("n", 1, &got, &len), -EUCLEAN);
	ck_assert_int_eq(pfs_dent_name_key_decode("n.", 2, &got, &len), -EUCLEAN);
	ck_assert_int_eq(pfs_dent_name_key_decode("n..", 3, &got, &len), -EUCLEAN);
	ck_assert_int_eq(pfs_dent_name_key_decode("na/b", 4, &got, &len), -EUCLEAN);
	ck_assert_int_eq(pfs_dent_name_key_decode("na\0b", 4, &got, &len), -EUCLEAN);
	key[0] = POSFS_DENT_NAME;
	memset(key + 1, 'x', POSFS_NAME_MAX + 1);
	ck_assert_int_eq(pfs_dent_name_key_decode(key, PFS_DENT_NAME_KEY_MAX + 1, &got, &len),
			 -EUCLEAN);
}
END_TEST

START_TEST(seq_keys)
{
	static const uint64_t seqs[] = { 0, 1, 2, POSFS_DENT_FIRST_SEQ, 255, 256,
					 UINT64_C(1) << 32, UINT64_MAX - 1, UINT64_MAX };
	uint8_t key[POSFS_DENT_SEQ_KEY_LEN + 1], prev[POSFS_DENT_SEQ_KEY_LEN];
	uint64_t seq;

	for (unsigned i = 0; i < sizeof(seqs) / sizeof(seqs[0]); i++) {
		pfs_dent_seq_key(key, seqs[i]);
		ck_assert_uint_eq(key[0], POSFS_DENT_SEQ);
		ck_assert_int_eq(pfs_dent_seq_key_decode(key, POSFS_DENT_SEQ_KEY_LEN, &seq), 0);
		ck_assert_uint_eq(seq, seqs[i]);
		/* big-endian: key order is seq order */
		if (i)
			ck_assert_int_lt(memcmp(prev, key, sizeof(prev)), 0);
		memcpy(prev, key, sizeof(prev));
	}
	pfs_dent_seq_key(key, UINT64_C(0x0102030405060708));
	for (int i = 1; i <= 8; i++)
		ck_assert_uint_eq(key[i], i);

	seq = 42;
	ck_assert_int_eq(pfs_dent_seq_key_decode(key, 0, &seq), -ENOENT);
	ck_assert_int_eq(pfs_dent_seq_key_decode("nabcdefgh", 9, &seq), -ENOENT);
	ck_assert_int_eq(pfs_dent_seq_key_decode(key, 1, &seq), -EUCLEAN);
	ck_assert_int_eq(pfs_dent_seq_key_decode(key, POSFS_DENT_SEQ_KEY_LEN - 1, &seq), -EUCLEAN);
	key[POSFS_DENT_SEQ_KEY_LEN] = 0;
	ck_assert_int_eq(pfs_dent_seq_key_decode(key, POSFS_DENT_SEQ_KEY_LEN + 1, &seq), -EUCLEAN);
	ck_assert_uint_eq(seq, 42);
}
END_TEST

START_TEST(orphan_keys)
{
	uint8_t key[POSFS_ORPHAN_KEY_LEN + 1] = { 0 };
	uint64_t oid = POSFS_OID(3, 12345), got = 0;

	pfs_orphan_key(key, oid);
	ck_assert_uint_eq(key[0], POSFS_ORPHAN_KEY);
	ck_assert_uint_eq(key[2], 3);	/* be64: the shard byte second */
	ck_assert_int_eq(pfs_orphan_key_decode(key, POSFS_ORPHAN_KEY_LEN, &got), 0);
	ck_assert_uint_eq(got, oid);

	got = 42;
	ck_assert_int_eq(pfs_orphan_key_decode(key, 0, &got), -ENOENT);
	ck_assert_int_eq(pfs_orphan_key_decode("sabcdefgh", 9, &got), -ENOENT);
	ck_assert_int_eq(pfs_orphan_key_decode(key, POSFS_ORPHAN_KEY_LEN - 1, &got), -EUCLEAN);
	ck_assert_int_eq(pfs_orphan_key_decode(key, POSFS_ORPHAN_KEY_LEN + 1, &got), -EUCLEAN);
	ck_assert_uint_eq(got, 42);
}
END_TEST

/* ---- the seq allocator ------------------------------------------------- */

#define DEVSZ (48ull << 20)

static struct pfs_store *store_new(void)
{
	struct pfs_store_opts o = { .cache_blocks = 512, .ckpt_interval_ms = -1 };
	struct pfs_dev *dev = pfs_test_newfs_mem(DEVSZ, 1, 2 << 20);
	struct pfs_store *st;

	ck_assert_ptr_nonnull(dev);
	ck_assert_int_eq(pfs_store_open_dev(dev, &o, &st), 0);
	return st;
}

static uint64_t dir_new(struct pfs_store *st)
{
	struct pfs_attr a = { .mode = S_IFDIR | 0755, .nlink = 2, .parent = POSFS_ROOT_OID };
	struct pfs_txn t;
	uint64_t oid;

	ck_assert_int_eq(pfs_store_oid_alloc(st, 0, &oid), 0);
	pfs_txn_init(&t);
	pfs_txn_create(&t, oid, &a);
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	pfs_txn_fini(&t);
	return oid;
}

static void rec_put(struct pfs_store *st, uint64_t oid, const void *key, size_t klen)
{
	struct pfs_txn t;

	pfs_txn_init(&t);
	pfs_txn_omap_set(&t, oid, key, klen, "x", 1);
	ck_assert_int_eq(pfs_store_submit(st, &t, 0, NULL), 0);
	pfs_txn_fini(&t);
}

static void seq_put(struct pfs_store *st, uint64_t dir, uint64_t seq)
{
	uint8_t key[POSFS_DENT_SEQ_KEY_LEN];

	pfs_dent_seq_key(key, seq);
	rec_put(st, dir, key, sizeof(key));
}

/* A seq key of klen bytes (up to 16) that sorts just after seq's. */
static void bad_seq_put(struct pfs_store *st, uint64_t dir, uint64_t seq, size_t klen)
{
	uint8_t key[16] = { 0 };

	pfs_dent_seq_key(key, seq);
	memset(key + POSFS_DENT_SEQ_KEY_LEN, 'z', sizeof(key) - POSFS_DENT_SEQ_KEY_LEN);
	rec_put(st, dir, key, klen);
}

static uint64_t next(struct pfs_store *st, uint64_t dir)
{
	uint64_t seq = 0;

	ck_assert_int_eq(pfs_dent_seq_next(st, dir, &seq), 0);
	return seq;
}

START_TEST(seq_next_basic)
{
	struct pfs_store *st = store_new();
	uint64_t d = dir_new(st);

	ck_assert_uint_eq(next(st, d), POSFS_DENT_FIRST_SEQ);
	/* records of other kinds around the seq records are not seqs */
	rec_put(st, d, "nname", 5);
	rec_put(st, d, "t", 1);
	rec_put(st, d, "\xff\xff", 2);
	ck_assert_uint_eq(next(st, d), POSFS_DENT_FIRST_SEQ);
	/* reserved seqs (the layer writes none) give the first one still */
	seq_put(st, d, 0);
	seq_put(st, d, 2);
	ck_assert_uint_eq(next(st, d), POSFS_DENT_FIRST_SEQ);
	seq_put(st, d, 3);
	ck_assert_uint_eq(next(st, d), 4);
	seq_put(st, d, 1000);
	seq_put(st, d, 77);
	ck_assert_uint_eq(next(st, d), 1001);
	seq_put(st, d, UINT64_C(1) << 40);
	ck_assert_uint_eq(next(st, d), (UINT64_C(1) << 40) + 1);
	ck_assert_int_eq(pfs_store_close(st), 0);
}
END_TEST

/* A malformed seq key is no seq, and not the end of the seq keys either. */
START_TEST(seq_next_malformed)
{
	struct pfs_store *st = store_new();
	uint64_t d = dir_new(st);

	/* only malformed ones: the first seq */
	bad_seq_put(st, d, 500, 10);
	bad_seq_put(st, d, 9, 5);
	rec_put(st, d, "s", 1);
	ck_assert_uint_eq(next(st, d), POSFS_DENT_FIRST_SEQ);
	/* between and after the seqs in use: passed over */
	seq_put(st, d, 3);
	seq_put(st, d, 4);
	seq_put(st, d, 1000);
	bad_seq_put(st, d, 3, 16);
	bad_seq_put(st, d, 4, 10);
	bad_seq_put(st, d, 1000, 12);
	bad_seq_put(st, d, UINT64_MAX, 10);
	ck_assert_uint_eq(next(st, d), 1001);
	/* the search ends probing past seq 3, where the malformed key is */
	d = dir_new(st);
	seq_put(st, d, 3);
	seq_put(st, d, 4);
	bad_seq_put(st, d, 3, 10);
	ck_assert_uint_eq(next(st, d), 5);
	ck_assert_int_eq(pfs_store_close(st), 0);
}
END_TEST

START_TEST(seq_next_overflow)
{
	struct pfs_store *st = store_new();
	uint64_t d = dir_new(st), seq = 42;

	seq_put(st, d, 3);
	seq_put(st, d, UINT64_MAX - 1);
	ck_assert_uint_eq(next(st, d), UINT64_MAX);
	seq_put(st, d, UINT64_MAX);
	ck_assert_int_eq(pfs_dent_seq_next(st, d, &seq), -EOVERFLOW);
	ck_assert_uint_eq(seq, 42);
	ck_assert_int_eq(pfs_store_close(st), 0);
}
END_TEST

/* ---- as the layer uses it ---------------------------------------------- */

static int count_cb(void *arg, const char *name, uint64_t ino, unsigned type, uint64_t cookie)
{
	(void)name;
	(void)ino;
	(void)type;
	(void)cookie;
	++*(unsigned *)arg;
	return 0;
}

/*
 * A new entry of a directory whose seq keys hold a malformed one, or
 * whose largest seq is the last: after a remount, so that the layer's
 * memory of the next seq is gone and it asks the allocator.
 */
START_TEST(layer_seqs)
{
	struct pfs_store *st = store_new();
	struct pfs_fs_attr a, d, f;
	struct pfs_fs *fs;
	unsigned n = 0;

	ck_assert_int_eq(pfs_fs_open(st, &fs), 0);
	ck_assert_int_eq(pfs_fs_mkdir(fs, POSFS_ROOT_OID, "d", 0755, &user, &d), 0);
	ck_assert_int_eq(pfs_fs_mknod(fs, d.ino, "a", S_IFREG | 0644, 0, &user, &a), 0);
	ck_assert_int_eq(pfs_fs_mknod(fs, d.ino, "b", S_IFREG | 0644, 0, &user, &a), 0);
	ck_assert_int_eq(pfs_fs_mkdir(fs, POSFS_ROOT_OID, "full", 0755, &user, &f), 0);
	pfs_fs_close(fs);

	/* a (seq 3) < malformed < b (seq 4): b's seq is not handed out again */
	bad_seq_put(st, d.ino, POSFS_DENT_FIRST_SEQ, 10);
	seq_put(st, f.ino, UINT64_MAX);
	ck_assert_int_eq(pfs_fs_open(st, &fs), 0);
	ck_assert_int_eq(pfs_fs_mknod(fs, d.ino, "c", S_IFREG | 0644, 0, &user, &a), 0);
	ck_assert_int_eq(pfs_fs_lookup(fs, d.ino, "b", &a), 0);
	ck_assert_int_eq(pfs_fs_mknod(fs, d.ino, "e", S_IFREG | 0644, 0, &user, &a), 0);
	/* c and e have seqs of their own, past b's (cookie 4) */
	ck_assert_int_eq(pfs_fs_readdir(fs, d.ino, 4, count_cb, &n), 0);
	ck_assert_uint_eq(n, 2);
	/* the whole listing goes past the malformed key (once it ended
	 * there: b, c and e were missing), and the damage is told */
	n = 0;
	ck_assert(!pfs_store_has_errors(st));
	ck_assert_int_eq(pfs_fs_readdir(fs, d.ino, 0, count_cb, &n), 0);
	ck_assert_uint_eq(n, 6);	/* ., .., a, b, c, e */
	ck_assert(pfs_store_has_errors(st));
	/* no seq left */
	ck_assert_int_eq(pfs_fs_mknod(fs, f.ino, "x", S_IFREG | 0644, 0, &user, &a), -EOVERFLOW);
	ck_assert_int_eq(pfs_fs_lookup(fs, f.ino, "x", &a), -ENOENT);
	pfs_fs_close(fs);
	ck_assert_int_eq(pfs_store_close(st), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("dent");
	TCase *tc = tcase_create("dent");
	SRunner *sr;
	int failed;

	tcase_set_timeout(tc, 60);
	tcase_add_test(tc, value_round_trip);
	tcase_add_test(tc, value_malformed);
	tcase_add_test(tc, name_keys);
	tcase_add_test(tc, seq_keys);
	tcase_add_test(tc, orphan_keys);
	tcase_add_test(tc, seq_next_basic);
	tcase_add_test(tc, seq_next_malformed);
	tcase_add_test(tc, seq_next_overflow);
	tcase_add_test(tc, layer_seqs);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
