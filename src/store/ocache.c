/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Onode cache: a hash table of decoded onodes with an LRU list. Entries
 * are allocated up to the capacity and then reused from the LRU tail, so
 * memory stays bounded by the capacity.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "store/ocache.h"

struct pfs_ocache_ent {
	struct pfs_onode o;
	struct pfs_ocache_ent *hnext, *prev, *next;
};

static size_t slot(const struct pfs_ocache *c, uint64_t oid)
{
	return (size_t)((oid * 0x9E3779B97F4A7C15ull) >> 29) & (c->nhash - 1);
}

int pfs_ocache_init(struct pfs_ocache *c, size_t capacity)
{
	memset(c, 0, sizeof(*c));
	c->capacity = capacity;
	if (!capacity)
		return 0;
	c->nhash = 16;
	while (c->nhash < capacity)
		c->nhash <<= 1;
	c->hash = calloc(c->nhash, sizeof(*c->hash));
	return c->hash ? 0 : -ENOMEM;
}

void pfs_ocache_fini(struct pfs_ocache *c)
{
	struct pfs_ocache_ent *e = c->head, *n;

	for (; e; e = n) {
		n = e->next;
		free(e);
	}
	free(c->hash);
	memset(c, 0, sizeof(*c));
}

static struct pfs_ocache_ent **find(struct pfs_ocache *c, uint64_t oid)
{
	struct pfs_ocache_ent **pp = &c->hash[slot(c, oid)];

	while (*pp && (*pp)->o.oid != oid)
		pp = &(*pp)->hnext;
	return pp;
}

static void unlink_lru(struct pfs_ocache *c, struct pfs_ocache_ent *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		c->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		c->tail = e->prev;
	e->prev = e->next = NULL;
}

static void push_front(struct pfs_ocache *c, struct pfs_ocache_ent *e)
{
	e->prev = NULL;
	e->next = c->head;
	if (c->head)
		c->head->prev = e;
	c->head = e;
	if (!c->tail)
		c->tail = e;
}

bool pfs_ocache_get(struct pfs_ocache *c, uint64_t oid, struct pfs_onode *o)
{
	struct pfs_ocache_ent *e;

	if (!c->capacity)
		return false;
	e = *find(c, oid);
	if (!e) {
		c->misses++;
		return false;
	}
	c->hits++;
	if (c->head != e) {
		unlink_lru(c, e);
		push_front(c, e);
	}
	*o = e->o;
	return true;
}

void pfs_ocache_put(struct pfs_ocache *c, const struct pfs_onode *o)
{
	struct pfs_ocache_ent **pp, *e;

	if (!c->capacity)
		return;
	pp = find(c, o->oid);
	e = *pp;
	if (e) {
		unlink_lru(c, e);
	} else if (c->count < c->capacity) {
		e = malloc(sizeof(*e));
		if (!e)
			return;		/* a cache: nothing is lost */
		c->count++;
		e->hnext = *pp;
		*pp = e;
	} else {
		/* reuse the least recently used entry */
		e = c->tail;
		unlink_lru(c, e);
		*find(c, e->o.oid) = e->hnext;
		pp = find(c, o->oid);
		e->hnext = *pp;
		*pp = e;
	}
	e->o = *o;
	push_front(c, e);
}

void pfs_ocache_drop(struct pfs_ocache *c, uint64_t oid)
{
	struct pfs_ocache_ent **pp, *e;

	if (!c->capacity)
		return;
	pp = find(c, oid);
	e = *pp;
	if (!e)
		return;
	*pp = e->hnext;
	unlink_lru(c, e);
	free(e);
	c->count--;
}
