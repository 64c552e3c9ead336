/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Block cache: a hash table of buffers by block number, an LRU list of the
 * clean unreferenced ones, and a list of the dirty ones (pinned until the
 * next checkpoint writes them home). Buffers are allocated aligned for
 * O_DIRECT so that they go to the device as they are; up to SPARE_MAX
 * freed ones are kept for the next misses (an aligned allocation and its
 * free were a sixth of a 4 KiB random write's CPU: every such write
 * brings a data block into the cache and evicts another).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "posfs/io.h"
#include "store/bcache.h"

#define SPARE_MAX	64

static size_t hash_of(const struct pfs_bcache *c, uint64_t blkno)
{
	return (size_t)((blkno * 0x9E3779B97F4A7C15ull) >> 32) & (c->nhash - 1);
}

int pfs_bcache_init(struct pfs_bcache *c, struct pfs_dev *dev, uint32_t block_size,
		    size_t capacity)
{
	memset(c, 0, sizeof(*c));
	c->dev = dev;
	c->block_size = block_size;
	c->capacity = capacity < 16 ? 16 : capacity;
	c->nhash = 64;
	while (c->nhash < c->capacity)
		c->nhash <<= 1;
	c->hash = calloc(c->nhash, sizeof(*c->hash));
	if (!c->hash)
		return -ENOMEM;
	c->lru.lnext = c->lru.lprev = &c->lru;
	return 0;
}

static void lru_unlink(struct pfs_buf *b)
{
	if (b->lnext) {
		b->lnext->lprev = b->lprev;
		b->lprev->lnext = b->lnext;
		b->lnext = b->lprev = NULL;
	}
}

static void lru_push(struct pfs_bcache *c, struct pfs_buf *b)
{
	b->lnext = c->lru.lnext;
	b->lprev = &c->lru;
	c->lru.lnext->lprev = b;
	c->lru.lnext = b;
}

static void hash_unlink(struct pfs_bcache *c, struct pfs_buf *b)
{
	struct pfs_buf **pp = &c->hash[hash_of(c, b->blkno)];

	while (*pp && *pp != b)
		pp = &(*pp)->hnext;
	if (*pp)
		*pp = b->hnext;
	b->hnext = NULL;
}

static void dirty_unlink(struct pfs_bcache *c, struct pfs_buf *b)
{
	if (b->dpprev) {
		*b->dpprev = b->dnext;
		if (b->dnext)
			b->dnext->dpprev = b->dpprev;
		c->ndirty--;
	}
	b->dnext = NULL;
	b->dpprev = NULL;
}

static void buf_free(struct pfs_bcache *c, struct pfs_buf *b)
{
	c->count--;
	if (c->nspare < SPARE_MAX) {
		b->hnext = c->spare;
		c->spare = b;
		c->nspare++;
		return;
	}
	pfs_dev_buf_free(b->data);
	free(b);
}

/* A buffer for a miss: a spare one, else a new one. Its data is zeros
 * unless it will be read from the device (read). NULL: out of memory. */
static struct pfs_buf *buf_alloc(struct pfs_bcache *c, bool read)
{
	struct pfs_buf *b = c->spare;

	if (b) {
		void *data = b->data;

		c->spare = b->hnext;
		c->nspare--;
		memset(b, 0, sizeof(*b));
		b->data = data;
		if (!read)
			memset(data, 0, c->block_size);
		return b;
	}
	b = calloc(1, sizeof(*b));
	if (!b)
		return NULL;
	b->data = pfs_dev_buf_alloc(c->block_size);
	if (!b->data) {
		free(b);
		return NULL;
	}
	return b;
}

static void evict(struct pfs_bcache *c)
{
	while (c->count > c->capacity && c->lru.lprev != &c->lru) {
		struct pfs_buf *b = c->lru.lprev;

		lru_unlink(b);
		hash_unlink(c, b);
		buf_free(c, b);
		c->evictions++;
	}
}

void pfs_bcache_fini(struct pfs_bcache *c)
{
	for (size_t i = 0; c->hash && i < c->nhash; i++) {
		struct pfs_buf *b = c->hash[i], *n;

		for (; b; b = n) {
			n = b->hnext;
			buf_free(c, b);
		}
	}
	while (c->spare) {
		struct pfs_buf *b = c->spare;

		c->spare = b->hnext;
		pfs_dev_buf_free(b->data);
		free(b);
	}
	c->nspare = 0;
	free(c->hash);
	c->hash = NULL;
}

struct pfs_buf *pfs_bcache_find(struct pfs_bcache *c, uint64_t blkno)
{
	struct pfs_buf *b = c->hash[hash_of(c, blkno)];

	while (b && b->blkno != blkno)
		b = b->hnext;
	if (b) {
		if (!b->refs++)
			lru_unlink(b);
	}
	return b;
}

int pfs_bcache_get(struct pfs_bcache *c, uint64_t blkno, bool read, struct pfs_buf **bp)
{
	struct pfs_buf *b = pfs_bcache_find(c, blkno);
	int ret;

	if (!b) {
		b = buf_alloc(c, read);
		if (!b)
			return -ENOMEM;
		b->blkno = blkno;
		b->cache = c;
		b->refs = 1;
		b->hnext = c->hash[hash_of(c, blkno)];
		c->hash[hash_of(c, blkno)] = b;
		c->count++;
		c->misses++;
		evict(c);
	} else {
		c->hits++;
	}
	if (read && !(b->flags & PFS_BUF_VALID)) {
		ret = pfs_dev_pread(c->dev, b->data, c->block_size, blkno * c->block_size);
		if (ret) {
			/* not valid: zeros, as a new buffer holds, for a later get
			 * without a read */
			memset(b->data, 0, c->block_size);
			pfs_bcache_put(b);
			return ret;
		}
		b->flags |= PFS_BUF_VALID;
	}
	*bp = b;
	return 0;
}

void pfs_bcache_put(struct pfs_buf *b)
{
	struct pfs_bcache *c;

	if (!b)
		return;
	c = b->cache;
	if (--b->refs)
		return;
	if (b->flags & PFS_BUF_GONE) {	/* forgotten while referenced */
		buf_free(c, b);
		return;
	}
	if (!(b->flags & PFS_BUF_DIRTY)) {
		lru_push(c, b);
		evict(c);
	}
}

void pfs_bcache_mark_dirty(struct pfs_buf *b)
{
	struct pfs_bcache *c = b->cache;

	if (b->flags & PFS_BUF_DIRTY)
		return;
	b->flags |= PFS_BUF_DIRTY;
	lru_unlink(b);
	b->dnext = c->dirty;
	if (c->dirty)
		c->dirty->dpprev = &b->dnext;
	c->dirty = b;
	b->dpprev = &c->dirty;
	c->ndirty++;
}

void pfs_bcache_forget(struct pfs_buf *b)
{
	struct pfs_bcache *c = b->cache;

	if (b->flags & PFS_BUF_DIRTY)
		dirty_unlink(c, b);
	b->flags = PFS_BUF_GONE;
	lru_unlink(b);
	hash_unlink(c, b);
	if (!b->refs)
		buf_free(c, b);
}

void pfs_bcache_clean_all(struct pfs_bcache *c)
{
	struct pfs_buf *b = c->dirty, *n;

	for (; b; b = n) {
		n = b->dnext;
		b->dnext = NULL;
		b->dpprev = NULL;
		b->flags &= ~(PFS_BUF_DIRTY | PFS_BUF_NEW);
		if (!b->refs)
			lru_push(c, b);
	}
	c->dirty = NULL;
	c->ndirty = 0;
	evict(c);
}

void pfs_bcache_drop_clean(struct pfs_bcache *c)
{
	size_t cap = c->capacity;

	c->capacity = 0;
	evict(c);
	c->capacity = cap;
}
