/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * LABEL=x and UUID=x as a device, for the daemon and mount.posfs. mount(8)
 * resolves those tags itself through libblkid, which knows no posfs, and
 * fails with "can't find LABEL=x" before it runs any helper; the lower
 * case label=x and uuid=x are no tags to it, and reach mount.posfs as
 * they are (from the command line and from fstab). So both spellings are
 * resolved here, the way blkid finds a file system: every block device
 * of /proc/partitions with a size (partitions and attached loop devices
 * included), its first PFS_SUPER_HEAD_SIZE bytes read without a claim
 * (O_DIRECT where the device takes it: the daemon writes its superblock
 * with O_DIRECT, and a cached copy could be stale), the newest valid
 * superblock copy taken (pfs_super_from_head), and its label or uuid
 * compared. Two devices that match are an error: which one to mount is
 * not a guess to make (a second loop device over the same image, a
 * copied disk).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "posfs/disk.h"
#include "posfs.h"

/* The superblock of the block device at path: 0, or -errno. */
static int read_super(const char *path, struct pfs_super *sb)
{
	void *head = NULL;
	struct stat st;
	ssize_t n;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_DIRECT);
	if (fd < 0 && errno == EINVAL)
		fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st) || !S_ISBLK(st.st_mode)) {
		ret = -ENOTBLK;
		goto out;
	}
	if (posix_memalign(&head, 4096, PFS_SUPER_HEAD_SIZE)) {
		ret = -ENOMEM;
		goto out;
	}
	n = pread(fd, head, PFS_SUPER_HEAD_SIZE, 0);
	if (n < 0) {
		ret = -errno;
		goto out;
	}
	ret = pfs_super_from_head(head, (size_t)n, sb);
out:
	free(head);
	close(fd);
	return ret;
}

int pfs_find_fs(const char *spec, char *dev, size_t len, char *other, size_t olen)
{
	uint8_t uuid[POSFS_UUID_SIZE];
	const char *want;
	bool by_label;
	char line[256], name[200], path[256];
	unsigned long long blocks;
	unsigned maj, min;
	int found = 0;
	FILE *f;

	if (!strncmp(spec, "LABEL=", 6) || !strncmp(spec, "label=", 6)) {
		by_label = true;
		want = spec + 6;
	} else if (!strncmp(spec, "UUID=", 5) || !strncmp(spec, "uuid=", 5)) {
		by_label = false;
		want = spec + 5;
		if (pfs_uuid_parse(want, uuid))
			return -EINVAL;
	} else {
		return 1;
	}
	f = fopen("/proc/partitions", "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		struct pfs_super sb;

		if (sscanf(line, " %u %u %llu %199s", &maj, &min, &blocks, name) != 4 || !blocks)
			continue;
		for (char *c = name; *c; c++)
			if (*c == '!')		/* the kernel's spelling of a / */
				*c = '/';
		snprintf(path, sizeof(path), "/dev/%s", name);
		if (read_super(path, &sb))
			continue;
		if (by_label ? strcmp(sb.label, want) : memcmp(sb.uuid, uuid, sizeof(uuid)))
			continue;
		if (found++) {
			snprintf(other, olen, "%s", path);
			break;
		}
		snprintf(dev, len, "%s", path);
	}
	fclose(f);
	return found == 0 ? -ENOENT : found > 1 ? -ENOTUNIQ : 0;
}

int pfs_find_fs_msg(const char *prog, const char *spec, char *dev, size_t len)
{
	char other[256] = "";
	int ret = pfs_find_fs(spec, dev, len, other, sizeof(other));

	switch (ret) {
	case 0:
	case 1:
		return ret;
	case -EINVAL:
		fprintf(stderr, "%s: %s: not a UUID (32 hex digits, as "
			"xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx)\n", prog, spec);
		break;
	case -ENOENT:
		fprintf(stderr, "%s: can't find %s: no block device holds a posfs file "
			"system with that %s\n", prog, spec,
			spec[0] == 'L' || spec[0] == 'l' ? "label" : "UUID");
		break;
	case -ENOTUNIQ:
		fprintf(stderr, "%s: %s is ambiguous: %s and %s both hold it; name the "
			"device\n", prog, spec, dev, other);
		break;
	default:
		fprintf(stderr, "%s: can't look for %s: /proc/partitions: %s\n", prog, spec,
			strerror(-ret));
		break;
	}
	return -1;
}
