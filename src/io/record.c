/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * record.c: the recording device for crash tests.
 *
 * The device forwards everything to inner and appends an event for each
 * write (with a copy of its data) and each flush that succeeded, plus the
 * caller's marks. One mutex is held across "forward to inner, then append"
 * for writes and flushes, so writes and flushes from all threads are
 * serialised: the stream is then an exact history of the device. Event k
 * completed before event k+1 was issued, so completion order, issue order
 * and stream order are one, a flush in the stream covers exactly the
 * writes before it, and replaying any prefix gives a state the device
 * really went through. Reads are forwarded without the lock. A write or
 * flush that fails is not recorded (the error goes to the caller).
 *
 * Events live in fixed-size chunks that never move, so a pointer from
 * pfs_devrec_event() stays valid as events are added (until reset or
 * close). Data copies are 4096-byte aligned, so they can be written back
 * with O_DIRECT to any target. A write longer than PFS_REC_MAX_LEN is
 * recorded as several consecutive events.
 *
 * A discard that inner accepted is recorded as DISCARD events (of at most
 * PFS_REC_MAX_LEN bytes each), in the same order under the same lock;
 * one that inner refused (-EOPNOTSUPP) is not, since nothing changed.
 * Applying a DISCARD writes zeros (pfs_devrec_apply), or the caller's
 * fill (pfs_devrec_apply_discard): crash tests may take discarded blocks
 * as either.
 *
 * Queues on a recording device run sequentially through this device's own
 * pread/pwrite/flush (ioq.c), so queued writes are recorded too.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE	/* O_DIRECT, pwritev2, syscall */
#endif
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "io/dev_internal.h"

#define PFS_REC_CHUNK		256u		/* events per chunk */
#define PFS_REC_MAX_LEN		(1u << 30)	/* bytes per WRITE event */

struct pfs_devrec {
	pthread_mutex_t lock;
	struct pfs_dev *inner;
	struct pfs_devrec_event **chunks;
	size_t nchunks;		/* allocated chunks */
	size_t chunks_cap;	/* room in chunks[] */
	size_t count;		/* events */
};

static struct pfs_devrec_event *pfs_rec_at(const struct pfs_devrec *rec,
					   size_t i)
{
	return &rec->chunks[i / PFS_REC_CHUNK][i % PFS_REC_CHUNK];
}

/* Room for n more events; under the lock. */
static int pfs_rec_reserve(struct pfs_devrec *rec, size_t n)
{
	size_t need = (rec->count + n + PFS_REC_CHUNK - 1) / PFS_REC_CHUNK;

	while (rec->nchunks < need) {
		if (rec->nchunks == rec->chunks_cap) {
			size_t cap = rec->chunks_cap ? 2 * rec->chunks_cap : 16;
			void *p = realloc(rec->chunks, cap * sizeof(*rec->chunks));

			if (!p)
				return -ENOMEM;
			rec->chunks = p;
			rec->chunks_cap = cap;
		}
		rec->chunks[rec->nchunks] =
			calloc(PFS_REC_CHUNK, sizeof(struct pfs_devrec_event));
		if (!rec->chunks[rec->nchunks])
			return -ENOMEM;
		rec->nchunks++;
	}
	return 0;
}

static void pfs_rec_free_events(struct pfs_devrec *rec)
{
	size_t i;

	for (i = 0; i < rec->count; i++)
		free((void *)pfs_rec_at(rec, i)->data);
	for (i = 0; i < rec->nchunks; i++)
		free(rec->chunks[i]);
	free(rec->chunks);
	rec->chunks = NULL;
	rec->nchunks = 0;
	rec->chunks_cap = 0;
	rec->count = 0;
}

static int pfs_rec_pread(struct pfs_dev *dev, void *buf, size_t len,
			 uint64_t off)
{
	struct pfs_devrec *rec = dev->priv;

	return pfs_dev_pread(rec->inner, buf, len, off);
}

static int pfs_rec_pwrite(struct pfs_dev *dev, const void *buf, size_t len,
			  uint64_t off)
{
	struct pfs_devrec *rec = dev->priv;
	size_t n = (len + PFS_REC_MAX_LEN - 1) / PFS_REC_MAX_LEN, i;
	void **copies;
	int ret;

	copies = calloc(n, sizeof(*copies));
	if (!copies)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		size_t l = len - i * PFS_REC_MAX_LEN;

		if (l > PFS_REC_MAX_LEN)
			l = PFS_REC_MAX_LEN;
		copies[i] = pfs_dev_buf_alloc(l);
		if (!copies[i]) {
			ret = -ENOMEM;
			goto out;
		}
		memcpy(copies[i], (const char *)buf + i * PFS_REC_MAX_LEN, l);
	}

	pthread_mutex_lock(&rec->lock);
	ret = pfs_rec_reserve(rec, n);
	if (!ret)
		ret = pfs_dev_pwrite(rec->inner, buf, len, off);
	if (!ret) {
		for (i = 0; i < n; i++) {
			struct pfs_devrec_event *ev = pfs_rec_at(rec, rec->count++);
			size_t l = len - i * PFS_REC_MAX_LEN;

			ev->kind = PFS_REC_WRITE;
			ev->off = off + i * PFS_REC_MAX_LEN;
			ev->len = l > PFS_REC_MAX_LEN ? PFS_REC_MAX_LEN : l;
			ev->data = copies[i];
			ev->mark = 0;
			copies[i] = NULL;
		}
	}
	pthread_mutex_unlock(&rec->lock);
out:
	for (i = 0; i < n; i++)
		pfs_dev_buf_free(copies[i]);
	free(copies);
	return ret;
}

/* Append a FLUSH or MARK event; under the lock. */
static int pfs_rec_append(struct pfs_devrec *rec, enum pfs_devrec_kind kind,
			  uint64_t mark)
{
	struct pfs_devrec_event *ev;
	int ret = pfs_rec_reserve(rec, 1);

	if (ret)
		return ret;
	ev = pfs_rec_at(rec, rec->count++);
	memset(ev, 0, sizeof(*ev));
	ev->kind = kind;
	ev->mark = mark;
	return 0;
}

static int pfs_rec_flush(struct pfs_dev *dev)
{
	struct pfs_devrec *rec = dev->priv;
	int ret;

	pthread_mutex_lock(&rec->lock);
	ret = pfs_rec_reserve(rec, 1);
	if (!ret)
		ret = pfs_dev_flush(rec->inner);
	if (!ret)
		ret = pfs_rec_append(rec, PFS_REC_FLUSH, 0);
	pthread_mutex_unlock(&rec->lock);
	return ret;
}

static int pfs_rec_discard(struct pfs_dev *dev, uint64_t off, uint64_t len)
{
	struct pfs_devrec *rec = dev->priv;
	size_t n = (size_t)((len + PFS_REC_MAX_LEN - 1) / PFS_REC_MAX_LEN);
	int ret;

	pthread_mutex_lock(&rec->lock);
	ret = pfs_rec_reserve(rec, n);
	if (!ret)
		ret = pfs_dev_discard(rec->inner, off, len);
	for (size_t i = 0; !ret && i < n; i++) {
		struct pfs_devrec_event *ev = pfs_rec_at(rec, rec->count++);
		uint64_t l = len - (uint64_t)i * PFS_REC_MAX_LEN;

		memset(ev, 0, sizeof(*ev));
		ev->kind = PFS_REC_DISCARD;
		ev->off = off + (uint64_t)i * PFS_REC_MAX_LEN;
		ev->len = l > PFS_REC_MAX_LEN ? PFS_REC_MAX_LEN : (uint32_t)l;
	}
	pthread_mutex_unlock(&rec->lock);
	return ret;
}

static void pfs_rec_close(struct pfs_dev *dev)
{
	struct pfs_devrec *rec = dev->priv;

	if (!rec)
		return;
	pfs_rec_free_events(rec);
	pfs_dev_close(rec->inner);
	pthread_mutex_destroy(&rec->lock);
	free(rec);
	dev->priv = NULL;
}

static const struct pfs_dev_ops pfs_dev_record_ops = {
	.name = "record",
	.pread = pfs_rec_pread,
	.pwrite = pfs_rec_pwrite,
	.flush = pfs_rec_flush,
	.discard = pfs_rec_discard,
	.close = pfs_rec_close,
};

int pfs_devrec_wrap(struct pfs_dev *inner, struct pfs_dev **devp)
{
	struct pfs_dev *dev = NULL;
	struct pfs_devrec *rec;
	int ret;

	*devp = NULL;
	if (!inner) {
		ret = -EINVAL;
		goto out;
	}
	dev = pfs_dev_alloc_over(&pfs_dev_record_ops, inner);
	if (!dev) {
		ret = -ENOMEM;
		goto out;
	}
	rec = calloc(1, sizeof(*rec));
	if (!rec) {
		ret = -ENOMEM;
		goto out;
	}
	ret = -pthread_mutex_init(&rec->lock, NULL);
	if (ret) {
		free(rec);
		goto out;
	}
	rec->inner = inner;
	dev->priv = rec;
	*devp = dev;
	dev = NULL;
out:
	if (dev)
		pfs_dev_close(dev);
	return ret;
}

struct pfs_devrec *pfs_devrec_of(struct pfs_dev *dev)
{
	if (!dev || dev->ops != &pfs_dev_record_ops)
		return NULL;
	return dev->priv;
}

int pfs_devrec_mark(struct pfs_devrec *rec, uint64_t mark)
{
	int ret;

	if (!rec)
		return -EINVAL;
	pthread_mutex_lock(&rec->lock);
	ret = pfs_rec_append(rec, PFS_REC_MARK, mark);
	pthread_mutex_unlock(&rec->lock);
	return ret;
}

size_t pfs_devrec_count(const struct pfs_devrec *rec)
{
	struct pfs_devrec *r = (struct pfs_devrec *)rec;
	size_t n;

	pthread_mutex_lock(&r->lock);
	n = r->count;
	pthread_mutex_unlock(&r->lock);
	return n;
}

const struct pfs_devrec_event *pfs_devrec_event(const struct pfs_devrec *rec,
						size_t i)
{
	struct pfs_devrec *r = (struct pfs_devrec *)rec;
	const struct pfs_devrec_event *ev = NULL;

	pthread_mutex_lock(&r->lock);
	if (i < r->count)
		ev = pfs_rec_at(r, i);
	pthread_mutex_unlock(&r->lock);
	return ev;
}

void pfs_devrec_reset(struct pfs_devrec *rec)
{
	pthread_mutex_lock(&rec->lock);
	pfs_rec_free_events(rec);
	pthread_mutex_unlock(&rec->lock);
}

/* A discard event's range on target, every byte fill. */
static int pfs_rec_fill(const struct pfs_devrec_event *ev, uint8_t fill,
			struct pfs_dev *target)
{
	size_t piece = ev->len < (1u << 20) ? ev->len : (1u << 20);
	uint8_t *buf = pfs_dev_buf_alloc(piece);
	int ret = 0;

	if (!buf)
		return -ENOMEM;
	memset(buf, fill, piece);
	for (uint64_t done = 0; !ret && done < ev->len; done += piece) {
		size_t l = ev->len - done < piece ? (size_t)(ev->len - done) : piece;

		ret = pfs_dev_pwrite(target, buf, l, ev->off + done);
	}
	pfs_dev_buf_free(buf);
	return ret;
}

int pfs_devrec_apply(const struct pfs_devrec *rec, size_t from, size_t to,
		     struct pfs_dev *target)
{
	size_t i;
	int ret;

	if (from > to || to > pfs_devrec_count(rec) || !target)
		return -EINVAL;
	for (i = from; i < to; i++) {
		const struct pfs_devrec_event *ev = pfs_devrec_event(rec, i);

		if (ev->kind == PFS_REC_DISCARD)
			ret = pfs_rec_fill(ev, 0, target);
		else if (ev->kind == PFS_REC_WRITE)
			ret = pfs_dev_pwrite(target, ev->data, ev->len, ev->off);
		else
			continue;
		if (ret)
			return ret;
	}
	return 0;
}

int pfs_devrec_apply_discard(const struct pfs_devrec *rec, size_t i, uint8_t fill,
			     struct pfs_dev *target)
{
	const struct pfs_devrec_event *ev = pfs_devrec_event(rec, i);

	if (!ev || ev->kind != PFS_REC_DISCARD || !target)
		return -EINVAL;
	return pfs_rec_fill(ev, fill, target);
}

int pfs_devrec_apply_one(const struct pfs_devrec *rec, size_t i,
			 uint32_t torn_len, struct pfs_dev *target)
{
	const struct pfs_devrec_event *ev = pfs_devrec_event(rec, i);
	uint32_t len;

	if (!ev || ev->kind != PFS_REC_WRITE || !target)
		return -EINVAL;
	len = ev->len;
	if (torn_len) {
		if (torn_len > ev->len ||
		    torn_len % target->info.logical_sector != 0)
			return -EINVAL;
		len = torn_len;
	}
	return pfs_dev_pwrite(target, ev->data, len, ev->off);
}
