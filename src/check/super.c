/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Pass 0: the superblock pair and the header slots of every shard and of
 * the global journal, read straight from the device before the store is
 * opened (the store takes the newest valid copy of each and would not say
 * that the other is damaged).
 *
 * Repairs: both superblocks are written at the end of the run
 * (pfs_super_write writes both copies); a damaged header slot is written
 * by the checkpoint the store makes when it opens writable (a checkpoint
 * writes the slot that does not hold the newest copy: the damaged one).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "check/check_internal.h"
#include "posfs/io.h"

/* Does the superblock ask for a full check? e2fsck's reasons. */
static const char *needs_check(const struct pfs_super *sb)
{
	if (sb->state & POSFS_STATE_ERRORS)
		return "contains a file system with errors";
	if (!(sb->state & POSFS_STATE_CLEAN))
		return "was not cleanly unmounted";
	if (sb->max_mount_count && sb->max_mount_count != UINT32_MAX &&
	    sb->mount_count >= sb->max_mount_count)
		return "has been mounted too many times without being checked";
	return NULL;
}

static int check_slots(struct pfs_check *c, struct pfs_dev *dev, uint32_t shard)
{
	struct pfs_shard_hdr h[2];
	int err[2];
	int ret = pfs_shard_hdr_read_slots(dev, &c->sb, shard, h, err);
	char name[32];

	if (ret)
		return ret;
	if (shard == POSFS_SHARD_GLOBAL)
		snprintf(name, sizeof(name), "global journal");
	else
		snprintf(name, sizeof(name), "shard %u", shard);
	if (err[0] && err[1]) {
		pfs_check_info(c, "%s: both header slots are damaged: it cannot be repaired", name);
		c->res->damage.kind = PFS_DAMAGE_HEADER;
		c->res->damage.shard = shard;
		snprintf(c->res->damage.detail, sizeof(c->res->damage.detail), "both slots");
		return err[0] == -EBADMSG || err[1] == -EBADMSG ? -EBADMSG : -EUCLEAN;
	}
	if (shard != POSFS_SHARD_GLOBAL) {
		int n = err[0] ? 1 : err[1] ? 0 : h[1].seq > h[0].seq;

		c->free_blocks += h[n].free_blocks;
	}
	for (int i = 0; i < 2; i++) {
		if (!err[i])
			continue;
		if (pfs_check_problem(c, PFS_PR_SHARD_SLOT, "%s: header slot %c: %s", name,
				      i ? 'B' : 'A', err[i] == -EBADMSG ? "bad checksum" :
				      "not what it must be")) {
			c->fix_slots = true;
			pfs_check_fixed(c);
		}
	}
	return 0;
}

int pfs_check_super(struct pfs_check *c)
{
	struct pfs_super_status sst;
	struct pfs_dev *dev;
	const char *why;
	int ret;

	ret = c->ops->open_dev(c->ops->arg, true, &dev);
	if (ret)
		return ret;
	ret = pfs_super_read(dev, &c->sb, &sst);
	if (ret == -EUCLEAN || ret == -EBADMSG) {
		pfs_check_info(c, "no valid superblock (primary: %s, backup: %s)",
			       sst.primary_err == -EBADMSG ? "bad checksum" : "not what it must be",
			       sst.backup_err == -EBADMSG ? "bad checksum" : "not what it must be");
		c->res->damage.kind = sst.found ? PFS_DAMAGE_SUPER : PFS_DAMAGE_NOT_POSFS;
	}
	if (ret)
		goto out;
	if (sst.primary_err || (sst.stale && sst.used == PFS_SUPER_BACKUP)) {
		if (pfs_check_problem(c, PFS_PR_SB_PRIMARY, "%s", sst.primary_err == -EBADMSG ?
				      "bad checksum" : sst.primary_err ? "not what it must be" :
				      "older than the backup")) {
			c->fix_super = true;
			pfs_check_fixed(c);
		}
	} else if (sst.backup_err || sst.stale) {
		if (pfs_check_problem(c, PFS_PR_SB_BACKUP, "%s", sst.backup_err == -EBADMSG ?
				      "bad checksum" : sst.backup_err ? "not what it must be" :
				      "older than the primary")) {
			c->fix_super = true;
			pfs_check_fixed(c);
		}
	}
	ret = pfs_super_features_ok(&c->sb, c->readonly, NULL);
	if (ret) {
		pfs_check_info(c, "the file system has features this fsck.posfs does not know");
		goto out;
	}
	if ((uint64_t)c->sb.total_blocks * c->sb.block_size > pfs_dev_info(dev)->size) {
		pfs_check_info(c, "the file system is larger than the device (%" PRIu64
			       " blocks): was the device truncated?", c->sb.total_blocks);
		c->res->damage.kind = PFS_DAMAGE_SIZE;
		ret = -EUCLEAN;
		goto out;
	}
	for (uint32_t s = 0; !ret && s < c->sb.shard_count; s++)
		ret = check_slots(c, dev, s);
	if (!ret)
		ret = check_slots(c, dev, POSFS_SHARD_GLOBAL);
	if (ret)
		goto out;
	why = needs_check(&c->sb);
	if (why) {
		if (c->ops->forced)
			c->ops->forced(c->ops->arg, why);
	} else if (!c->o->force && !c->o->deep && !c->res->found) {
		c->res->skipped = true;	/* deep mode reads the data of a clean one too */
	}
out:
	pfs_dev_close(dev);
	return ret;
}
