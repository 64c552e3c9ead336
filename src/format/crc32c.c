/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * crc32c. No Debian package ships a C crc32c library, so posfs carries its
 * own: the CPU instruction where the CPU has one (checked once at run time,
 * not assumed at build time), else slicing-by-8 over tables built once.
 * Both paths compute the same function; the self-test checks both.
 */

#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "posfs/crc32c.h"

#define CRC32C_POLY_REFLECTED 0x82F63B78u

static uint32_t crc_table[8][256];
static pthread_once_t crc_table_once = PTHREAD_ONCE_INIT;

static void crc_table_build(void)
{
	for (unsigned i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (CRC32C_POLY_REFLECTED & (0u - (c & 1)));
		crc_table[0][i] = c;
	}
	for (unsigned i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			crc_table[t][i] = (crc_table[t - 1][i] >> 8) ^
					  crc_table[0][crc_table[t - 1][i] & 0xff];
}

uint32_t pfs_crc32c_sw(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	pthread_once(&crc_table_once, crc_table_build);
	crc = ~crc;
	while (len && ((uintptr_t)p & 7)) {
		crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
		len--;
	}
	while (len >= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		w ^= crc;
		crc = crc_table[7][w & 0xff] ^ crc_table[6][(w >> 8) & 0xff] ^
		      crc_table[5][(w >> 16) & 0xff] ^ crc_table[4][(w >> 24) & 0xff] ^
		      crc_table[3][(w >> 32) & 0xff] ^ crc_table[2][(w >> 40) & 0xff] ^
		      crc_table[1][(w >> 48) & 0xff] ^ crc_table[0][w >> 56];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = (crc >> 8) ^ crc_table[0][(crc ^ *p++) & 0xff];
	return ~crc;
}

#if defined(__x86_64__)
#include <cpuid.h>
#include <nmmintrin.h>

__attribute__((target("sse4.2")))
static uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;
	uint64_t c = ~crc;

	while (len && ((uintptr_t)p & 7)) {
		c = _mm_crc32_u8((uint32_t)c, *p++);
		len--;
	}
	while (len >= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		c = _mm_crc32_u64(c, w);
		p += 8;
		len -= 8;
	}
	while (len--)
		c = _mm_crc32_u8((uint32_t)c, *p++);
	return ~(uint32_t)c;
}

static int crc32c_hw_present(void)
{
	unsigned a, b, c, d;

	if (!__get_cpuid(1, &a, &b, &c, &d))
		return 0;
	return !!(c & bit_SSE4_2);
}
#elif defined(__aarch64__)
#include <arm_acle.h>
#include <sys/auxv.h>
#include <asm/hwcap.h>

__attribute__((target("+crc")))
static uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	crc = ~crc;
	while (len && ((uintptr_t)p & 7)) {
		crc = __crc32cb(crc, *p++);
		len--;
	}
	while (len >= 8) {
		uint64_t w;

		memcpy(&w, p, 8);
		crc = __crc32cd(crc, w);
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = __crc32cb(crc, *p++);
	return ~crc;
}

static int crc32c_hw_present(void)
{
	return !!(getauxval(AT_HWCAP) & HWCAP_CRC32);
}
#else
static uint32_t crc32c_hw(uint32_t crc, const void *buf, size_t len)
{
	return pfs_crc32c_sw(crc, buf, len);
}

static int crc32c_hw_present(void)
{
	return 0;
}
#endif

static uint32_t (*crc32c_fn)(uint32_t, const void *, size_t);
static pthread_once_t crc32c_fn_once = PTHREAD_ONCE_INIT;

static void crc32c_choose(void)
{
	crc32c_fn = crc32c_hw_present() ? crc32c_hw : pfs_crc32c_sw;
}

uint32_t pfs_crc32c(uint32_t crc, const void *buf, size_t len)
{
	pthread_once(&crc32c_fn_once, crc32c_choose);
	return crc32c_fn(crc, buf, len);
}

const char *pfs_crc32c_impl(void)
{
	pthread_once(&crc32c_fn_once, crc32c_choose);
	return crc32c_fn == pfs_crc32c_sw ? "sw" : "hw";
}

int pfs_crc32c_selftest(void)
{
	static const char check[] = "123456789";

	if (pfs_crc32c_sw(0, check, 9) != 0xE3069283u)
		return -EIO;
	if (pfs_crc32c(0, check, 9) != 0xE3069283u)
		return -EIO;
	return 0;
}
