/* SPDX-License-Identifier: GPL-2.0-or-later */
/* crc32c: known answers, hardware and table paths agree, composition. */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "posfs/crc32c.h"

START_TEST(known_answers)
{
	static const uint8_t zeros[32], ones[32] = {
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
	uint8_t inc[32], dec[32];

	for (int i = 0; i < 32; i++) {
		inc[i] = (uint8_t)i;
		dec[i] = (uint8_t)(31 - i);
	}
	/* The standard check value and the RFC 3720 (iSCSI) B.4 vectors. */
	ck_assert_uint_eq(pfs_crc32c(0, "123456789", 9), 0xE3069283u);
	ck_assert_uint_eq(pfs_crc32c(0, zeros, 32), 0x8A9136AAu);
	ck_assert_uint_eq(pfs_crc32c(0, ones, 32), 0x62A8AB43u);
	ck_assert_uint_eq(pfs_crc32c(0, inc, 32), 0x46DD794Eu);
	ck_assert_uint_eq(pfs_crc32c(0, dec, 32), 0x113FDB5Cu);
	ck_assert_uint_eq(pfs_crc32c_sw(0, "123456789", 9), 0xE3069283u);
	ck_assert_uint_eq(pfs_crc32c_sw(0, inc, 32), 0x46DD794Eu);
	ck_assert_uint_eq(pfs_crc32c(0, "", 0), 0);
	ck_assert_int_eq(pfs_crc32c_selftest(), 0);
}
END_TEST

START_TEST(hw_matches_table)
{
	size_t len = 1 << 16;
	uint8_t *buf = malloc(len + 16);

	ck_assert_ptr_nonnull(buf);
	srand(42);
	for (size_t i = 0; i < len + 16; i++)
		buf[i] = (uint8_t)rand();
	/* Every alignment and many lengths, so both loops' edges run. */
	for (size_t align = 0; align < 16; align++)
		for (size_t n = 0; n < 300; n += 1 + n / 8)
			ck_assert_uint_eq(pfs_crc32c(7, buf + align, n),
					  pfs_crc32c_sw(7, buf + align, n));
	ck_assert_uint_eq(pfs_crc32c(0, buf, len), pfs_crc32c_sw(0, buf, len));
	free(buf);
}
END_TEST

START_TEST(composes)
{
	const char *s = "posfs keeps a crc32c of every block";
	size_t n = strlen(s);

	for (size_t cut = 0; cut <= n; cut++) {
		uint32_t a = pfs_crc32c(0, s, cut);

		ck_assert_uint_eq(pfs_crc32c(a, s + cut, n - cut), pfs_crc32c(0, s, n));
		ck_assert_uint_eq(pfs_crc32c_sw(pfs_crc32c_sw(0, s, cut), s + cut, n - cut),
				  pfs_crc32c(0, s, n));
	}
	ck_assert(strcmp(pfs_crc32c_impl(), "hw") == 0 || strcmp(pfs_crc32c_impl(), "sw") == 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("crc32c");
	TCase *tc = tcase_create("crc32c");
	SRunner *sr;
	int failed;

	tcase_add_test(tc, known_answers);
	tcase_add_test(tc, hw_matches_table);
	tcase_add_test(tc, composes);
	suite_add_tcase(s, tc);
	sr = srunner_create(s);
	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed ? 1 : 0;
}
