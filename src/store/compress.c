/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * zstd for data extents (compress.h). Contexts are per thread, made at a
 * thread's first use and freed when it ends.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <zstd.h>
#include <zstd_errors.h>

#include "store/compress.h"

static pthread_once_t keys_once = PTHREAD_ONCE_INIT;
static pthread_key_t cctx_key, dctx_key;

static void free_cctx(void *p)
{
	ZSTD_freeCCtx(p);
}

static void free_dctx(void *p)
{
	ZSTD_freeDCtx(p);
}

static void make_keys(void)
{
	(void)pthread_key_create(&cctx_key, free_cctx);
	(void)pthread_key_create(&dctx_key, free_dctx);
}

static ZSTD_CCtx *cctx(void)
{
	ZSTD_CCtx *c;

	pthread_once(&keys_once, make_keys);
	c = pthread_getspecific(cctx_key);
	if (!c) {
		c = ZSTD_createCCtx();
		if (c && pthread_setspecific(cctx_key, c)) {
			ZSTD_freeCCtx(c);
			c = NULL;
		}
	}
	return c;
}

static ZSTD_DCtx *dctx(void)
{
	ZSTD_DCtx *d;

	pthread_once(&keys_once, make_keys);
	d = pthread_getspecific(dctx_key);
	if (!d) {
		d = ZSTD_createDCtx();
		if (d && pthread_setspecific(dctx_key, d)) {
			ZSTD_freeDCtx(d);
			d = NULL;
		}
	}
	return d;
}

long pfs_compress(const void *src, size_t n, void *dst, size_t cap, int level)
{
	ZSTD_CCtx *c = cctx();
	size_t r;

	if (!c)
		return -ENOMEM;
	r = ZSTD_compressCCtx(c, dst, cap, src, n, level);
	if (ZSTD_isError(r))
		return ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation ? -ENOMEM : 0;
	return (long)r;
}

int pfs_decompress(const void *src, size_t srclen, void *dst, size_t n)
{
	ZSTD_DCtx *d = dctx();
	size_t flen, r;

	if (!d)
		return -ENOMEM;
	flen = ZSTD_findFrameCompressedSize(src, srclen);
	if (ZSTD_isError(flen))
		return -EUCLEAN;
	r = ZSTD_decompressDCtx(d, dst, n, src, flen);
	if (ZSTD_isError(r))
		return ZSTD_getErrorCode(r) == ZSTD_error_memory_allocation ? -ENOMEM : -EUCLEAN;
	return r == n ? 0 : -EUCLEAN;
}
