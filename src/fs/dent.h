/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The namespace layer's records in the store, as format.h lays them out
 * (directory entries, orphan lists): the one codec of their keys and
 * values, and the one allocator of entry seqs. src/fs and the checker
 * (src/check) both use it: this is the part of src/fs the checker may
 * include; fs_internal.h stays private to src/fs.
 *
 * Encoders take what the layer writes and cannot fail. Decoders refuse
 * what the layer cannot have written with -EUCLEAN (damage), and say
 * -ENOENT of a key that is not of the kind asked for (another record).
 */
#ifndef POSFS_FS_DENT_H
#define POSFS_FS_DENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "posfs/format.h"
#include "posfs/store.h"

/* A name record's value (struct pfs_ddent), decoded. */
struct pfs_dent {
	uint64_t ino;
	uint64_t seq;
	uint8_t type;		/* DT_* */
};

#define PFS_DENT_NAME_KEY_MAX	(1 + POSFS_NAME_MAX)

/* A name as the layer stores it: 1..POSFS_NAME_MAX bytes, no '/' or NUL,
 * not "." or "..". */
bool pfs_dent_name_ok(const void *name, size_t len);

/* The name record key of name (len <= POSFS_NAME_MAX) into key: its
 * length. */
size_t pfs_dent_name_key(uint8_t key[PFS_DENT_NAME_KEY_MAX], const void *name, size_t len);

/* The name of a name record key (*name points into key): 0; -ENOENT for
 * no name record key, -EUCLEAN for a name pfs_dent_name_ok refuses. */
int pfs_dent_name_key_decode(const void *key, size_t klen, const uint8_t **name,
			     size_t *len);

/* The seq record key of seq. */
void pfs_dent_seq_key(uint8_t key[POSFS_DENT_SEQ_KEY_LEN], uint64_t seq);

/* The seq of a seq record key: 0; -ENOENT for no seq record key (another
 * prefix), -EUCLEAN for one of the wrong length. */
int pfs_dent_seq_key_decode(const void *key, size_t klen, uint64_t *seq);

void pfs_dent_encode(uint8_t val[POSFS_DENT_VLEN], const struct pfs_dent *d);

/* 0, or -EUCLEAN when vlen is not POSFS_DENT_VLEN (d untouched). */
int pfs_dent_decode(const void *val, size_t vlen, struct pfs_dent *d);

/* The orphan list key of oid. */
void pfs_orphan_key(uint8_t key[POSFS_ORPHAN_KEY_LEN], uint64_t oid);

/* The oid of an orphan list key: 0; -ENOENT for another prefix, -EUCLEAN
 * for an orphan key of the wrong length. */
int pfs_orphan_key_decode(const void *key, size_t klen, uint64_t *oid);

/*
 * The seq for a new entry of dir: one past the largest seq of its seq
 * records, POSFS_DENT_FIRST_SEQ when it has none (or only reserved ones):
 * a binary search, at most 65 omap iterations. Seq keys of the wrong
 * length are damage, neither seqs nor the end of the seq records: passed
 * over, so the answer is never a seq in use. The caller keeps dir's
 * entries from changing meanwhile (the layer: the directory's lock).
 * -EOVERFLOW when the largest seq is UINT64_MAX; the store's errors.
 */
int pfs_dent_seq_next(struct pfs_store *st, uint64_t dir, uint64_t *seq);

/*
 * For fsck, on the bare store (fs.c): remove the object ino in steps;
 * with listed, its orphan record goes in the last step. Every step may
 * use the metadata reserve (PFS_SUBMIT_RESERVE). -E2BIG or -ENOSPC when
 * it is still too large with no data left.
 */
int pfs_fs_remove_steps(struct pfs_store *st, uint64_t ino, bool listed);

#endif /* POSFS_FS_DENT_H */
