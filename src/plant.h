/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Planted bugs, to prove that the crash tests can fail: built only with
 * ./configure --enable-planted-bugs (never in a real build, where
 * pfs_planted() is the constant false), chosen at run time by
 * POSFS_PLANT=name. The names and what each breaks:
 *   skip-flush          the flush after a WAL record (fsync returns early)
 *   record-before-data  the flush of out-of-place data before its record
 *   fsyncdir-noop       fsync of a directory does nothing
 * tests/crash/planted.sh runs the crash test with each and expects it to
 * fail.
 */
#ifndef POSFS_PLANT_H
#define POSFS_PLANT_H

#include <stdbool.h>

#ifdef PFS_PLANTED_BUGS
#include <stdlib.h>
#include <string.h>

static inline bool pfs_planted(const char *name)
{
	const char *p = getenv("POSFS_PLANT");

	return p && !strcmp(p, name);
}
#else
static inline bool pfs_planted(const char *name)
{
	(void)name;
	return false;
}
#endif

#endif /* POSFS_PLANT_H */
