/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Opening and closing the store. Open reads the superblock and every
 * shard header, replays the WALs into the caches (journal.c), writes the
 * result home with a checkpoint, loads each shard's free tree into its
 * allocator, and marks the superblock not clean until close marks it clean
 * again (as ext4's s_state).
 *
 * Corrupt metadata, met at open or later, is recorded (the first damage,
 * for the message) and marks the superblock with POSFS_STATE_ERRORS at
 * once, as ext4 sets EXT2_ERROR_FS: an open that fails on it, or a daemon
 * killed after meeting it, leaves a file system that fsck checks without
 * being forced. Marking is one superblock write and flush per open.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "posfs/io.h"
#include "posfs/store.h"
#include "store/store_internal.h"

/* the block cache per shard by default: 1/64 of the memory over the
 * shards, within these bounds (buffers are allocated as they are used) */
#define CACHE_BLOCKS_MIN 4096u
#define CACHE_BLOCKS_MAX 32768u
#define ONODE_CACHE_DEFAULT 8192u
#define FILL_PCT_DEFAULT 50u

/* ---- the checkpoint timer ------------------------------------------------ */

bool pfs_store_dirty(struct pfs_store *st)
{
	bool dirty = __atomic_load_n(&st->global_wal.used, __ATOMIC_RELAXED) > 0;

	for (uint32_t i = 0; !dirty && i < st->nshards; i++) {
		struct pfs_shard *sh = &st->shards[i];

		pthread_mutex_lock(&sh->lock);
		dirty = sh->cache.ndirty || sh->wal.used || sh->group.ntx;
		pthread_mutex_unlock(&sh->lock);
	}
	return dirty;
}

static void *timer_main(void *arg)
{
	struct pfs_store *st = arg;

	pthread_mutex_lock(&st->timer_lock);
	while (!st->timer_stop) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += st->interval_ms / 1000;
		ts.tv_nsec += (long)(st->interval_ms % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&st->timer_cond, &st->timer_lock, &ts);
		if (st->timer_stop)
			break;
		pthread_mutex_unlock(&st->timer_lock);
		if (!st->err && pfs_store_dirty(st))
			pfs_store_checkpoint(st);	/* an error sticks in st->err */
		pthread_mutex_lock(&st->timer_lock);
	}
	pthread_mutex_unlock(&st->timer_lock);
	return NULL;
}

static void timer_stop(struct pfs_store *st)
{
	if (!st->timer_running)
		return;
	pthread_mutex_lock(&st->timer_lock);
	st->timer_stop = true;
	pthread_cond_signal(&st->timer_cond);
	pthread_mutex_unlock(&st->timer_lock);
	pthread_join(st->timer, NULL);
	st->timer_running = false;
}

bool pfs_store_has_errors(const struct pfs_store *st)
{
	return __atomic_load_n(&st->corrupt, __ATOMIC_RELAXED);
}

uint64_t pfs_store_data_errors(const struct pfs_store *st)
{
	return __atomic_load_n(&st->data_errors, __ATOMIC_RELAXED);
}

/* First report of key (of the last n in ring) under data_error_lock? */
static bool first_report(struct pfs_store *st, uint64_t *ring, unsigned n, unsigned *next,
			 uint64_t key)
{
	bool seen = false;

	pthread_mutex_lock(&st->data_error_lock);
	for (unsigned i = 0; i < n && !seen; i++)
		seen = ring[i] == key + 1;
	if (!seen) {
		ring[*next] = key + 1;
		*next = (*next + 1) % n;
	}
	pthread_mutex_unlock(&st->data_error_lock);
	return !seen;
}

#define RING_LEN(a) (unsigned)(sizeof(a) / sizeof((a)[0]))

int pfs_store_data_error(struct pfs_store *st, uint64_t oid, uint64_t off, uint64_t blkno)
{
	__atomic_add_fetch(&st->data_errors, 1, __ATOMIC_RELAXED);
	if (first_report(st, st->data_error_seen, RING_LEN(st->data_error_seen),
			 &st->data_error_next, blkno) && st->data_error)
		st->data_error(st->data_error_arg, oid, off, blkno);
	return -EIO;
}

/* ---- damage and the error mark ----------------------------------------- */

void pfs_store_damage_note(struct pfs_store *st, enum pfs_damage_kind kind, uint32_t shard,
			   uint64_t oid, uint64_t blkno, const char *detail)
{
	pthread_mutex_lock(&st->sb_lock);
	if (st->damage.kind == PFS_DAMAGE_NONE) {
		st->damage.kind = kind;
		st->damage.shard = shard;
		st->damage.oid = oid;
		st->damage.blkno = blkno;
		snprintf(st->damage.detail, sizeof(st->damage.detail), "%s", detail ? detail : "");
	}
	pthread_mutex_unlock(&st->sb_lock);
}

void pfs_store_damage_block(struct pfs_store *st, uint32_t magic, uint64_t owner,
			    uint64_t blkno)
{
	enum pfs_damage_kind kind = PFS_DAMAGE_METADATA;
	uint32_t shard = 0;
	uint64_t oid = 0;

	switch (magic) {
	case POSFS_MAGIC_RADIX:
	case POSFS_MAGIC_ONODES:
		kind = PFS_DAMAGE_ONODE_TREE;
		break;
	case POSFS_MAGIC_FREE:
		kind = PFS_DAMAGE_FREE_TREE;
		break;
	case POSFS_MAGIC_REFCOUNT:
		kind = PFS_DAMAGE_REFCOUNT_TREE;
		break;
	case POSFS_MAGIC_CSUM:
		kind = PFS_DAMAGE_CSUM_TABLE;
		break;
	case POSFS_MAGIC_EXTENT:
		kind = PFS_DAMAGE_EXTENT_MAP;
		break;
	case POSFS_MAGIC_OMAP:
		kind = PFS_DAMAGE_OMAP;
		break;
	}
	if (POSFS_OWNER_IS_SHARD(owner)) {
		shard = (uint32_t)(owner - POSFS_OWNER_SHARD(0));
	} else if (owner && owner < POSFS_OWNER_GLOBAL) {
		oid = owner;
		shard = POSFS_OID_SHARD(oid);
	}
	if ((kind == PFS_DAMAGE_EXTENT_MAP || kind == PFS_DAMAGE_OMAP) && !oid)
		kind = PFS_DAMAGE_METADATA;
	pfs_store_damage_note(st, kind, shard, oid, blkno, NULL);
}

void pfs_store_mark_errors(struct pfs_store *st)
{
	struct pfs_super sb;

	if (__atomic_exchange_n(&st->corrupt, true, __ATOMIC_ACQ_REL))
		return;		/* marked already, or being marked */
	pfs_store_damage_note(st, PFS_DAMAGE_METADATA, 0, 0, 0, NULL);
	pthread_mutex_lock(&st->sb_lock);
	if (!st->damage.marked && st->sb_ok && !st->readonly &&
	    !__atomic_load_n(&st->remount_ro, __ATOMIC_ACQUIRE) && !st->err) {
		sb = st->sb;
		sb.state |= POSFS_STATE_ERRORS;
		if (!pfs_super_write(st->dev, &sb)) {
			/* only these change: no other thread reads them */
			st->sb.state = sb.state;
			st->sb.generation = sb.generation;
			st->sb.write_time = sb.write_time;
			st->damage.marked = true;
		}
	}
	pthread_mutex_unlock(&st->sb_lock);
}

bool pfs_store_damage(struct pfs_store *st, struct pfs_store_damage *d)
{
	pthread_mutex_lock(&st->sb_lock);
	*d = st->damage;
	pthread_mutex_unlock(&st->sb_lock);
	return d->kind != PFS_DAMAGE_NONE;
}

int pfs_store_report_damage(struct pfs_store *st, enum pfs_damage_kind kind, uint64_t oid,
			    const char *detail)
{
	pfs_store_damage_note(st, kind, POSFS_OID_SHARD(oid), oid, 0, detail);
	return pfs_store_note(st, -EUCLEAN);
}

const char *pfs_store_damage_str(const struct pfs_store_damage *d, char *buf, size_t len)
{
	static const char *const tree[] = {
		[PFS_DAMAGE_FREE_TREE] = "free-space tree",
		[PFS_DAMAGE_ONODE_TREE] = "onode tree",
		[PFS_DAMAGE_REFCOUNT_TREE] = "shared-blob tree",
		[PFS_DAMAGE_CSUM_TABLE] = "data checksum table",
		[PFS_DAMAGE_EXTENT_MAP] = "extent map",
		[PFS_DAMAGE_OMAP] = "omap",
	};
	bool global = d->shard == POSFS_SHARD_GLOBAL;
	int n = 0;

	if (!len)
		return buf;
	switch (d->kind) {
	case PFS_DAMAGE_NONE:
		n = snprintf(buf, len, "nothing is damaged");
		break;
	case PFS_DAMAGE_NOT_POSFS:
		n = snprintf(buf, len, "no posfs superblock was found");
		break;
	case PFS_DAMAGE_SUPER:
		n = snprintf(buf, len, "both superblocks are damaged");
		break;
	case PFS_DAMAGE_SIZE:
		n = snprintf(buf, len, "the device is smaller than the file system on it");
		break;
	case PFS_DAMAGE_HEADER:
		n = global ? snprintf(buf, len, "the header of the global journal is damaged") :
		    snprintf(buf, len, "the header of shard %" PRIu32 " is damaged", d->shard);
		break;
	case PFS_DAMAGE_JOURNAL:
		n = global ? snprintf(buf, len, "the global journal is damaged") :
		    snprintf(buf, len, "the journal of shard %" PRIu32 " is damaged", d->shard);
		break;
	case PFS_DAMAGE_FREE_TREE:
	case PFS_DAMAGE_ONODE_TREE:
	case PFS_DAMAGE_REFCOUNT_TREE:
	case PFS_DAMAGE_CSUM_TABLE:
		n = snprintf(buf, len, "the %s of shard %" PRIu32 " is damaged", tree[d->kind],
			     d->shard);
		break;
	case PFS_DAMAGE_EXTENT_MAP:
	case PFS_DAMAGE_OMAP:
		n = snprintf(buf, len, "the %s of inode %" PRIu64 " is damaged", tree[d->kind],
			     d->oid);
		break;
	case PFS_DAMAGE_OBJECT:
		n = snprintf(buf, len, "inode %" PRIu64 " is damaged", d->oid);
		break;
	default:
		/* the reader's words for it, when it has any */
		n = snprintf(buf, len, "%s is damaged", d->detail[0] ? d->detail : "metadata");
		break;
	}
	if (n >= 0 && (size_t)n < len && d->blkno)
		n += snprintf(buf + n, len - (size_t)n, " (block %" PRIu64 ")", d->blkno);
	if (n >= 0 && (size_t)n < len && d->detail[0] && d->kind != PFS_DAMAGE_METADATA)
		snprintf(buf + n, len - (size_t)n, ": %s", d->detail);
	return buf;
}

int pfs_store_object_error(struct pfs_store *st, uint64_t oid, const char *what)
{
	pfs_store_damage_note(st, PFS_DAMAGE_OBJECT, POSFS_OID_SHARD(oid), oid, 0, what);
	pfs_store_note(st, -EUCLEAN);
	if (first_report(st, st->object_error_seen, RING_LEN(st->object_error_seen),
			 &st->object_error_next, oid) && st->object_error)
		st->object_error(st->object_error_arg, oid, what);
	return -EUCLEAN;
}

static void store_free(struct pfs_store *st)
{
	if (!st)
		return;
	timer_stop(st);
	pthread_mutex_destroy(&st->timer_lock);
	pthread_cond_destroy(&st->timer_cond);
	pfs_verify_close(st);
	if (st->shards) {
		pfs_journal_fini(st);
		for (uint32_t i = 0; i < st->nshards; i++) {
			struct pfs_shard *sh = &st->shards[i];

			pfs_bcache_fini(&sh->cache);
			pfs_ocache_fini(&sh->onodes);
			pfs_alloc_fini(&sh->alloc);
			pthread_mutex_destroy(&sh->lock);
		}
		free(st->shards);
	}
	pthread_mutex_destroy(&st->global_lock);
	pthread_mutex_destroy(&st->data_error_lock);
	pthread_mutex_destroy(&st->sb_lock);
	pthread_mutex_destroy(&st->remount_lock);
	pthread_rwlock_destroy(&st->ckpt_lock);
	pfs_dev_close(st->dev);
	free(st);
}

/*
 * The header slots to start from. A checkpoint writes every WAL's header
 * with the next generation; a crash part way through leaves some headers a
 * generation ahead. Those are taken from their other slot, which still
 * describes the previous checkpoint (slots alternate), so that every WAL
 * replays from the same checkpoint and no record is replayed against
 * blocks newer than it (W5).
 */
struct slots {
	struct pfs_shard_hdr h[2];
	int err[2];
	int newest;
};

static int slots_read(struct pfs_store *st, uint32_t shard, struct slots *s)
{
	int ret = pfs_shard_hdr_read_slots(st->dev, &st->sb, shard, s->h, s->err);

	if (ret)
		return ret;
	if (s->err[0] && s->err[1])
		return s->err[0] == -EBADMSG || s->err[1] == -EBADMSG ? -EBADMSG : s->err[0];
	s->newest = s->err[0] ? 1 : s->err[1] ? 0 : s->h[1].seq > s->h[0].seq;
	return 0;
}

static int slots_pick(const struct slots *s, uint64_t gen, struct pfs_shard_hdr *out)
{
	int other = s->newest ^ 1;

	if (s->h[s->newest].ckpt_gen == gen) {
		*out = s->h[s->newest];
		return 0;
	}
	if (s->err[other] || s->h[other].ckpt_gen != gen)
		return -EUCLEAN;
	*out = s->h[other];
	return 0;
}

/*
 * The default block cache of a shard. It must hold the blocks a WAL's worth
 * of commits leaves dirty (pinned until the checkpoint) and the trees'
 * nodes beside them; smaller, every miss evicts a clean node that is read
 * again soon after.
 */
static uint32_t cache_blocks_default(const struct pfs_store *st)
{
	long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
	uint64_t n;

	if (pages <= 0 || psize <= 0)
		return CACHE_BLOCKS_MIN;
	n = (uint64_t)pages * (uint64_t)psize / 64 / st->nshards / st->sb.block_size;
	return n < CACHE_BLOCKS_MIN ? CACHE_BLOCKS_MIN : n > CACHE_BLOCKS_MAX ? CACHE_BLOCKS_MAX :
	       (uint32_t)n;
}

static int shards_load(struct pfs_store *st, const struct pfs_store_opts *o)
{
	uint32_t cache = o && o->cache_blocks ? o->cache_blocks : cache_blocks_default(st);
	struct slots *sl;
	uint64_t gen;
	int ret;

	st->shards = calloc(st->nshards, sizeof(*st->shards));
	sl = calloc(st->nshards + 1, sizeof(*sl));
	if (!st->shards || !sl) {
		free(sl);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < st->nshards; i++) {
		struct pfs_shard *sh = &st->shards[i];

		pthread_mutex_init(&sh->lock, NULL);
		sh->index = i;
		ret = pfs_alloc_init(&sh->alloc);
		if (!ret)
			ret = pfs_bcache_init(&sh->cache, st->dev, st->sb.block_size, cache);
		if (!ret)
			ret = pfs_ocache_init(&sh->onodes, o && o->onode_cache ? o->onode_cache :
					      ONODE_CACHE_DEFAULT);
		if (!ret)
			ret = pfs_geo_shard(&st->sb, i, &sh->geo);
		if (!ret) {
			ret = slots_read(st, i, &sl[i]);
			if (ret == -EUCLEAN || ret == -EBADMSG)
				pfs_store_damage_note(st, PFS_DAMAGE_HEADER, i, 0, 0, "both slots");
		}
		if (ret)
			goto out;
	}
	ret = slots_read(st, POSFS_SHARD_GLOBAL, &sl[st->nshards]);
	if (ret == -EUCLEAN || ret == -EBADMSG)
		pfs_store_damage_note(st, PFS_DAMAGE_HEADER, POSFS_SHARD_GLOBAL, 0, 0, "both slots");
	if (ret)
		goto out;
	gen = UINT64_MAX;
	for (uint32_t i = 0; i <= st->nshards; i++)
		if (sl[i].h[sl[i].newest].ckpt_gen < gen)
			gen = sl[i].h[sl[i].newest].ckpt_gen;
	for (uint32_t i = 0; !ret && i < st->nshards; i++) {
		ret = slots_pick(&sl[i], gen, &st->shards[i].ondisk);
		st->shards[i].hdr = st->shards[i].ondisk;
		if (ret)
			pfs_store_damage_note(st, PFS_DAMAGE_HEADER, i, 0, 0,
					      "out of step with the other headers");
	}
	if (!ret) {
		ret = slots_pick(&sl[st->nshards], gen, &st->global_hdr);
		if (ret)
			pfs_store_damage_note(st, PFS_DAMAGE_HEADER, POSFS_SHARD_GLOBAL, 0, 0,
					      "out of step with the shard headers");
	}
	st->ckpt_gen = gen;
out:
	free(sl);
	return ret;
}

int pfs_store_load_space(struct pfs_store *st)
{
	int ret = 0;

	for (uint32_t i = 0; !ret && i < st->nshards; i++) {
		struct pfs_tx *tx;
		uint32_t s = i;

		ret = pfs_tx_begin_read(st, &s, 1, &tx);
		if (ret)
			break;
		/* from empty: fsck loads again after rebuilding trees */
		pfs_alloc_fini(&st->shards[i].alloc);
		ret = pfs_alloc_init(&st->shards[i].alloc);
		if (!ret)
			ret = pfs_space_load(st, &st->shards[i], tx);
		if (!ret)
			pfs_shard_publish_load(&st->shards[i]);
		pfs_tx_abort(tx);
		if (ret == -EUCLEAN || ret == -EBADMSG)
			pfs_store_damage_note(st, PFS_DAMAGE_FREE_TREE, i, 0, 0, NULL);
	}
	if (!ret)
		st->space_loaded = true;
	return ret;
}

/* The compression policy: the superblock's, or the mount's; a mount that
 * asks for it on a file system without the feature sets the feature (the
 * superblock is written by the open right after). */
static int compress_setup(struct pfs_store *st, const struct pfs_store_opts *o)
{
	int want = o ? o->compress : 0;

	st->compress_level = o && o->compress_level ? o->compress_level :
			     st->sb.compress_level ? st->sb.compress_level :
			     POSFS_COMPRESS_LEVEL_DEFAULT;
	if (st->compress_level < 1 || st->compress_level > POSFS_COMPRESS_LEVEL_MAX)
		return -EINVAL;
	if (want > 0 && !st->readonly)
		st->sb.feature_incompat |= POSFS_FEATURE_compression;
	st->compress = want > 0 || (!want && st->sb.compress == POSFS_COMPRESS_ZSTD);
	return 0;
}

int pfs_store_open_dev(struct pfs_dev *dev, const struct pfs_store_opts *o,
		       struct pfs_store **stp)
{
	struct pfs_super_status sst;
	struct pfs_store *st;
	bool ro = o && o->readonly;
	int ret;

	*stp = NULL;
	st = calloc(1, sizeof(*st));
	if (!st) {
		pfs_dev_close(dev);
		return -ENOMEM;
	}
	st->dev = dev;
	pthread_mutex_init(&st->timer_lock, NULL);
	pthread_cond_init(&st->timer_cond, NULL);
	pthread_mutex_init(&st->global_lock, NULL);
	pthread_mutex_init(&st->data_error_lock, NULL);
	pthread_mutex_init(&st->sb_lock, NULL);
	pthread_mutex_init(&st->remount_lock, NULL);
	pthread_rwlock_init(&st->ckpt_lock, NULL);
	if (o && o->damage)
		memset(o->damage, 0, sizeof(*o->damage));
	if (o) {
		st->data_error = o->data_error;
		st->data_error_arg = o->data_error_arg;
		st->object_error = o->object_error;
		st->object_error_arg = o->object_error_arg;
	}
	st->readonly = ro || pfs_dev_info(dev)->readonly;
	st->fill_pct = o && o->fill_pct ? o->fill_pct : FILL_PCT_DEFAULT;
	st->discard = o && o->discard && !st->readonly;
	ret = pfs_super_read(dev, &st->sb, &sst);
	if (ret == -EUCLEAN || ret == -EBADMSG)
		pfs_store_damage_note(st, sst.found ? PFS_DAMAGE_SUPER : PFS_DAMAGE_NOT_POSFS,
				      0, 0, 0, NULL);
	if (ret)
		goto out;
	ret = pfs_super_features_ok(&st->sb, st->readonly, NULL);
	if (ret)
		goto out;
	if ((uint64_t)st->sb.total_blocks * st->sb.block_size > pfs_dev_info(dev)->size) {
		pfs_store_damage_note(st, PFS_DAMAGE_SIZE, 0, 0, 0, NULL);
		ret = -EUCLEAN;		/* the device is smaller than the fs */
		goto out;
	}
	st->sb_ok = true;
	st->small_write = o && o->small_write ? o->small_write : st->sb.small_write;
	st->nshards = st->sb.shard_count;
	ret = shards_load(st, o);
	if (ret)
		goto out;
	ret = pfs_journal_init(st);
	if (ret)
		goto out;
	ret = pfs_journal_replay(st);
	if (ret) {
		pfs_store_note(st, ret);
		goto out;
	}
	if (!st->readonly) {
		ret = pfs_store_checkpoint(st);
		if (ret)
			goto out;
	}
	if (!(o && o->fsck)) {
		ret = pfs_store_load_space(st);
		if (!ret)
			ret = pfs_verify_open(st);	/* V2, V3 */
		if (ret)
			goto out;
	}
	ret = compress_setup(st, o);
	if (ret)
		goto out;
	if (!st->readonly) {
		st->sb.state &= (uint16_t)~POSFS_STATE_CLEAN;
		if (!(o && o->fsck)) {
			st->sb.mount_count++;
			st->sb.mount_time = (uint64_t)time(NULL);
		}
		ret = pfs_super_write(dev, &st->sb);
		if (ret)
			goto out;
		st->interval_ms = o && o->ckpt_interval_ms ? o->ckpt_interval_ms : 5000;
		if (st->interval_ms > 0) {
			ret = -pthread_create(&st->timer, NULL, timer_main, st);
			if (ret)
				goto out;
			st->timer_running = true;
		}
	}
	*stp = st;
	return 0;
out:
	if (ret == -EUCLEAN || ret == -EBADMSG) {
		pfs_store_mark_errors(st);	/* once, if the superblock can */
		if (o && o->damage)
			pfs_store_damage(st, o->damage);
	}
	store_free(st);
	return ret;
}

int pfs_store_open(const char *path, const struct pfs_store_opts *o,
		   struct pfs_store **stp)
{
	struct pfs_dev_opts dopts = {
		.exclusive = true,
		.readonly = o && o->readonly,
		.backend = o ? (enum pfs_dev_backend)o->backend : PFS_DEV_AUTO,
	};
	struct pfs_dev *dev;
	int ret;

	*stp = NULL;
	ret = pfs_dev_open(path, &dopts, &dev);
	if (ret)
		return ret;
	return pfs_store_open_dev(dev, o, stp);
}

int pfs_store_sync(struct pfs_store *st)
{
	return pfs_store_checkpoint(st);
}

/* The superblock's clean mark, as close leaves it (clean) or open (not):
 * under sb_lock. */
static int super_mark_clean(struct pfs_store *st, bool clean)
{
	int ret;

	pthread_mutex_lock(&st->sb_lock);
	if (clean) {
		st->sb.state |= POSFS_STATE_CLEAN;
		if (pfs_store_has_errors(st))
			st->sb.state |= POSFS_STATE_ERRORS;
	} else {
		st->sb.state &= (uint16_t)~POSFS_STATE_CLEAN;
	}
	ret = pfs_super_write(st->dev, &st->sb);
	pthread_mutex_unlock(&st->sb_lock);
	return ret;
}

int pfs_store_set_readonly(struct pfs_store *st, bool ro)
{
	int ret = 0;

	if (st->readonly)
		return ro ? 0 : -EROFS;
	pthread_mutex_lock(&st->remount_lock);
	if (ro == __atomic_load_n(&st->remount_ro, __ATOMIC_ACQUIRE))
		goto out;
	if (ro) {
		/* home, then clean: as close leaves it */
		ret = pfs_journal_set_readonly(st, true);
		if (!ret && st->err)
			ret = st->err;
		if (!ret)
			ret = super_mark_clean(st, true);
	} else {
		/* not clean before the first change, as open leaves it */
		ret = st->err;
		if (!ret)
			ret = super_mark_clean(st, false);
		if (!ret)
			ret = pfs_journal_set_readonly(st, false);
	}
out:
	pthread_mutex_unlock(&st->remount_lock);
	return ret;
}

bool pfs_store_is_readonly(const struct pfs_store *st)
{
	return st->readonly || __atomic_load_n(&st->remount_ro, __ATOMIC_ACQUIRE);
}

int pfs_store_close(struct pfs_store *st)
{
	int ret = 0;

	if (!st)
		return 0;
	timer_stop(st);
	/* remounted read-only: home and clean already */
	if (!st->readonly && !__atomic_load_n(&st->remount_ro, __ATOMIC_ACQUIRE)) {
		ret = pfs_store_checkpoint(st);
		if (!ret && !st->err) {
			pthread_mutex_lock(&st->sb_lock);
			st->sb.state |= POSFS_STATE_CLEAN;
			if (pfs_store_has_errors(st))
				st->sb.state |= POSFS_STATE_ERRORS;
			ret = pfs_super_write(st->dev, &st->sb);
			pthread_mutex_unlock(&st->sb_lock);
		}
	}
	if (!ret && st->err)
		ret = st->err;
	store_free(st);
	return ret;
}

int pfs_store_statfs(struct pfs_store *st, struct pfs_statfs *sfs)
{
	memset(sfs, 0, sizeof(*sfs));
	sfs->block_size = st->sb.block_size;
	sfs->shards = st->nshards;
	for (uint32_t i = 0; i < st->nshards; i++) {
		struct pfs_shard *sh = &st->shards[i];
		uint64_t free;

		pthread_mutex_lock(&sh->lock);
		sfs->total_blocks += sh->geo.data_blocks;
		free = pfs_alloc_free_blocks(&sh->alloc) + pfs_alloc_pending_blocks(&sh->alloc);
		sfs->free_blocks += free;
		if (free > pfs_shard_data_reserve(sh))
			sfs->avail_blocks += free - pfs_shard_data_reserve(sh);
		sfs->objects += sh->hdr.onode_count;
		pthread_mutex_unlock(&sh->lock);
	}
	return 0;
}

int pfs_store_shard_load(struct pfs_store *st, uint32_t shard, struct pfs_shard_load *l)
{
	const struct pfs_shard *sh;

	if (shard >= st->nshards)
		return -EINVAL;
	sh = &st->shards[shard];
	l->total_blocks = sh->geo.data_blocks;
	l->free_blocks = __atomic_load_n(&sh->load_free, __ATOMIC_RELAXED);
	l->objects = __atomic_load_n(&sh->load_objects, __ATOMIC_RELAXED);
	return 0;
}

void pfs_store_counters(struct pfs_store *st, struct pfs_store_counters *c)
{
	c->commits = __atomic_load_n(&st->stat_commits, __ATOMIC_RELAXED);
	c->cross_shard = __atomic_load_n(&st->stat_cross_shard, __ATOMIC_RELAXED);
	c->groups = __atomic_load_n(&st->stat_groups, __ATOMIC_RELAXED);
	c->checkpoints = __atomic_load_n(&st->stat_checkpoints, __ATOMIC_RELAXED);
	c->ckpt_ns = __atomic_load_n(&st->stat_ckpt_ns, __ATOMIC_RELAXED);
	c->lock_waits = __atomic_load_n(&st->stat_lock_waits, __ATOMIC_RELAXED);
	c->lock_wait_ns = __atomic_load_n(&st->stat_lock_wait_ns, __ATOMIC_RELAXED);
	c->ckpt_waits = __atomic_load_n(&st->stat_ckpt_waits, __ATOMIC_RELAXED);
	c->ckpt_wait_ns = __atomic_load_n(&st->stat_ckpt_wait_ns, __ATOMIC_RELAXED);
	c->discards = __atomic_load_n(&st->stat_discards, __ATOMIC_RELAXED);
	c->discard_blocks = __atomic_load_n(&st->stat_discard_blocks, __ATOMIC_RELAXED);
}

void pfs_store_label(struct pfs_store *st, char buf[POSFS_LABEL_SIZE + 1])
{
	pthread_mutex_lock(&st->sb_lock);
	memcpy(buf, st->sb.label, POSFS_LABEL_SIZE + 1);
	pthread_mutex_unlock(&st->sb_lock);
}

/* Under remount_lock (no read-only remount halfway), then sb_lock, as
 * super_mark_clean: the superblock written is st->sb with the new label,
 * and st->sb changes only once it is on the device. */
int pfs_store_set_label(struct pfs_store *st, const char *label)
{
	struct pfs_super sb;
	size_t len = strnlen(label, POSFS_LABEL_SIZE + 1);
	int ret;

	if (len > POSFS_LABEL_SIZE)
		return -EINVAL;
	if (st->readonly)
		return -EROFS;
	pthread_mutex_lock(&st->remount_lock);
	pthread_mutex_lock(&st->sb_lock);
	ret = __atomic_load_n(&st->remount_ro, __ATOMIC_ACQUIRE) ? -EROFS : st->err;
	if (!ret) {
		sb = st->sb;
		memset(sb.label, 0, sizeof(sb.label));
		memcpy(sb.label, label, len);
		ret = pfs_super_write(st->dev, &sb);
		if (!ret) {
			/* only these change; the rest is read unlocked */
			memcpy(st->sb.label, sb.label, sizeof(sb.label));
			st->sb.generation = sb.generation;
			st->sb.write_time = sb.write_time;
		}
	}
	pthread_mutex_unlock(&st->sb_lock);
	pthread_mutex_unlock(&st->remount_lock);
	return ret;
}

const struct pfs_super *pfs_store_super(const struct pfs_store *st)
{
	return &st->sb;
}
