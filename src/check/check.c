/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A check run: pass 0 on the bare device, then the store opened for fsck
 * (WAL replay, written home unless read-only; the free trees not loaded),
 * passes 1 to 3, in deep mode pass 4, and the superblock: clean, checked
 * now, mount count 0 when nothing is left; marked with errors when
 * something is. Damaged file data (pass 4) is not something left: it has
 * no repair, and the superblock's error state is for the metadata.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check/check_internal.h"
#include "posfs/io.h"
#include "store/store_internal.h"

#define PFS_PROBLEM_DESC_(code_, name_, preen_, what_, fix_) \
	{ .code = code_, .name = #name_, .preen = preen_, .what = what_, .fix = fix_ },
static const struct pfs_problem_desc problems[] = { PFS_PROBLEMS(PFS_PROBLEM_DESC_) };
#undef PFS_PROBLEM_DESC_

const struct pfs_problem_desc *pfs_problem_table(unsigned *n)
{
	*n = sizeof(problems) / sizeof(problems[0]);
	return problems;
}

const struct pfs_problem_desc *pfs_problem_desc(enum pfs_problem code)
{
	for (size_t i = 0; i < sizeof(problems) / sizeof(problems[0]); i++)
		if (problems[i].code == code)
			return &problems[i];
	return NULL;
}

/* Damage that leaves a tree unreadable where it is (pass 3 then cannot
 * trust what it reads). */
static bool tree_damage(enum pfs_problem code)
{
	return code == PFS_PR_RADIX_NODE || code == PFS_PR_ONODE ||
	       code == PFS_PR_EXTENT_TREE || code == PFS_PR_OMAP;
}

bool pfs_check_problem(struct pfs_check *c, enum pfs_problem code, const char *fmt, ...)
{
	const struct pfs_problem_desc *d = pfs_problem_desc(code);
	char msg[512];
	va_list ap;
	bool fix;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->res->found++;
	c->res->left++;
	c->last = code;
	c->trees_left += tree_damage(code);
	fix = c->ops->ask(c->ops->arg, d, msg);
	return fix && !c->readonly;
}

void pfs_check_fixed(struct pfs_check *c)
{
	c->trees_left -= tree_damage(c->last);
	c->res->left--;
	c->res->fixed++;
}

void pfs_check_unfixed(struct pfs_check *c, int err)
{
	pfs_check_info(c, "the repair failed: %s", strerror(-err));
}

void pfs_check_damage(struct pfs_check *c, enum pfs_problem code, const char *fmt, ...)
{
	char msg[8192];		/* a path, and the blocks */
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->res->damaged_files++;
	c->ops->ask(c->ops->arg, pfs_problem_desc(code), msg);
}

void pfs_check_info(struct pfs_check *c, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (!c->ops->info)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	c->ops->info(c->ops->arg, msg);
}

void pfs_check_progress(struct pfs_check *c, enum pfs_check_pass pass, uint64_t cur,
			uint64_t max)
{
	if (c->ops->progress)
		c->ops->progress(c->ops->arg, pass, cur, max);
}

static int store_open(struct pfs_check *c)
{
	struct pfs_store_opts so = {
		.readonly = c->readonly,
		.fsck = true,
		.ckpt_interval_ms = -1,
		.data_error = pfs_check_data_error,
		.data_error_arg = c,
		.damage = &c->res->damage,
	};
	struct pfs_dev *dev;
	int ret = c->ops->open_dev(c->ops->arg, c->readonly, &dev);

	if (ret)
		return ret;
	ret = pfs_store_open_dev(dev, &so, &c->st);
	if (ret == -EUCLEAN || ret == -EBADMSG) {
		char what[256];

		pfs_check_info(c, "the store does not open: %s, beyond what replay can use",
			       pfs_store_damage_str(&c->res->damage, what, sizeof(what)));
	} else if (ret) {
		pfs_check_info(c, "the store does not open: %s", strerror(-ret));
	}
	return ret;
}

/* Fill in what the file system holds, from the shard headers. */
static void usage(struct pfs_check *c)
{
	struct pfs_check_result *r = c->res;

	r->block_size = c->sb.block_size;
	memcpy(r->label, c->sb.label, sizeof(c->sb.label));
	r->label[sizeof(r->label) - 1] = 0;
	r->blocks_total = c->sb.total_blocks;
	r->blocks_used = c->sb.total_blocks - (c->free_blocks < c->sb.total_blocks ?
					       c->free_blocks : c->sb.total_blocks);
	if (!c->st)
		return;
	r->blocks_used = c->sb.total_blocks;
	for (uint32_t s = 0; s < c->st->nshards; s++) {
		uint64_t f = c->st->shards[s].hdr.free_blocks;

		r->blocks_used -= f < r->blocks_used ? f : r->blocks_used;
	}
}

/* Pass 4, when it can run: after pass 3 (the namespace it names files
 * by, and no damaged tree left), on checksums it can trust. */
static int deep_check(struct pfs_check *c, bool names_ran)
{
	if (!names_ran) {
		pfs_check_info(c, "pass 4 skipped: pass 3 did not run");
		return 0;
	}
	if (!(c->sb.feature_ro_compat & POSFS_FEATURE_data_csum)) {
		pfs_check_info(c, "pass 4 skipped: the file system keeps no data checksums "
			       "(made without data_csum)");
		return 0;
	}
	if (c->tables_left) {
		pfs_check_info(c, "pass 4 skipped: %" PRIu64 " data checksum table block%s still "
			       "damaged", c->tables_left, c->tables_left == 1 ? " is" : "s are");
		return 0;
	}
	pfs_check_progress(c, PFS_PASS_DATA, 0, 1);
	return pfs_check_data(c);
}

/* The superblock after a full check. */
static int super_finish(struct pfs_check *c)
{
	struct pfs_super sb;
	struct pfs_dev *dev;
	int ret = c->ops->open_dev(c->ops->arg, false, &dev);

	if (ret)
		return ret;
	ret = pfs_super_read(dev, &sb, NULL);
	if (!ret) {
		if (c->res->left) {
			sb.state |= POSFS_STATE_ERRORS;
		} else {
			sb.state = (uint16_t)((sb.state | POSFS_STATE_CLEAN) & ~POSFS_STATE_ERRORS);
			sb.mount_count = 0;
			sb.check_time = (uint64_t)time(NULL);
		}
		ret = pfs_super_write(dev, &sb);
	}
	if (!ret)
		ret = pfs_dev_flush(dev);
	pfs_dev_close(dev);
	return ret;
}

const char *pfs_check_pass_name(enum pfs_check_pass pass)
{
	static const char *const names[] = {
		[PFS_PASS_SUPER] = "Pass 0: Checking superblocks and shard headers",
		[PFS_PASS_OBJECTS] = "Pass 1: Checking objects, extent maps and omaps",
		[PFS_PASS_SPACE] = "Pass 2: Checking free space and shared blocks",
		[PFS_PASS_NAMES] = "Pass 3: Checking directories, links and orphans",
		[PFS_PASS_DATA] = "Pass 4: Checking data checksums",
	};

	return (unsigned)pass < sizeof(names) / sizeof(names[0]) ? names[pass] : NULL;
}

int pfs_check_run(const struct pfs_check_opts *opts, const struct pfs_check_ops *ops,
		  struct pfs_check_result *res)
{
	struct pfs_map_opts mo = { opts->scratch_dir, opts->mem_limit };
	struct pfs_check c = { .o = opts, .ops = ops, .res = res, .readonly = opts->readonly };
	bool names_ran = false;
	int ret, cret;

	memset(res, 0, sizeof(*res));
	pfs_check_progress(&c, PFS_PASS_SUPER, 0, 1);
	ret = pfs_check_super(&c);
	if (ret || res->skipped) {
		usage(&c);
		return ret;
	}
	ret = pfs_map_env_create(&mo, &c.maps);
	if (!ret)
		ret = pfs_map_create(c.maps, "shared", sizeof(uint32_t), &c.shared);
	if (ret)
		goto out;
	c.nblocks = c.sb.total_blocks;
	c.used = calloc((c.nblocks + 7) / 8, 1);
	c.onodes = calloc(c.sb.shard_count, sizeof(*c.onodes));
	c.max_local = calloc(c.sb.shard_count, sizeof(*c.max_local));
	if (!c.used || !c.onodes || !c.max_local) {
		ret = -ENOMEM;
		goto out;
	}
	ret = store_open(&c);
	if (ret)
		goto out;
	if (c.fix_slots)
		ret = pfs_store_checkpoint(c.st);	/* the open made one: now both */
	if (!ret) {
		pfs_check_progress(&c, PFS_PASS_OBJECTS, 0, 1);
		ret = pfs_check_objects(&c);
	}
	if (!ret) {
		pfs_check_progress(&c, PFS_PASS_SPACE, 0, 1);
		ret = pfs_check_space(&c);
	}
	if (!ret && c.no_space) {
		pfs_check_info(&c, "pass 3 skipped: the free space is still damaged");
	} else if (!ret && c.trees_left) {
		/* damaged trees left in place would make pass 3 misread the
		 * namespace (and its repairs unsafe): it waits for a repair */
		pfs_check_info(&c, "pass 3 skipped: the damage pass 1 found is still there");
	} else if (!ret) {
		pfs_check_progress(&c, PFS_PASS_NAMES, 0, 1);
		ret = pfs_check_names(&c);
		names_ran = !ret;
	}
	if (!ret && opts->deep)
		ret = deep_check(&c, names_ran);
	if (!ret && !c.readonly)
		ret = pfs_store_checkpoint(c.st);
	usage(&c);
	res->maps_on_disk = pfs_map_on_disk(c.shared);
	if (ret == -EUCLEAN || ret == -EBADMSG)
		pfs_store_damage(c.st, &res->damage);	/* what stopped the walk */
	cret = pfs_store_close(c.st);
	c.st = NULL;
	if (!ret)
		ret = cret;
	if (!ret && !c.readonly)
		ret = super_finish(&c);
out:
	if (c.st)
		pfs_store_close(c.st);
	pfs_map_env_destroy(c.maps);
	free(c.used);
	free(c.onodes);
	free(c.max_local);
	return ret;
}
