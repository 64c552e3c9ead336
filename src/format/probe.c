/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Signature probe: does a device already hold something worth keeping?
 * mkfs.posfs refuses to format over any of these without -f, as mke2fs
 * does. A short table of magics at fixed offsets, after blkid's; it reads
 * only the first PFS_PROBE_SIZE bytes it is given.
 */
#include <endian.h>
#include <stdio.h>
#include <string.h>

#include "posfs/disk.h"

struct sig {
	const char *type;
	size_t off;
	const char *magic;
	size_t len;
	size_t label_off;	/* 0: no label */
	size_t label_len;
};

static const struct sig sigs[] = {
	{ "posfs", POSFS_SB_OFFSET + 4, "PFSB", 4, POSFS_SB_OFFSET + 0x100, POSFS_LABEL_SIZE },
	{ "posfs", POSFS_SB_BACKUP_OFFSET + 4, "PFSB", 4, POSFS_SB_BACKUP_OFFSET + 0x100, POSFS_LABEL_SIZE },
	{ "xfs", 0, "XFSB", 4, 0x6c, 12 },
	{ "btrfs", 65536 + 0x40, "_BHRfS_M", 8, 65536 + 0x12b, 256 },
	{ "crypto_LUKS", 0, "LUKS\xba\xbe", 6, 0, 0 },
	{ "swap", 4096 - 10, "SWAPSPACE2", 10, 1024 + 0x1c, 16 },
	{ "swap", 4096 - 10, "SWAP-SPACE", 10, 0, 0 },
	{ "swap", 65536 - 10, "SWAPSPACE2", 10, 1024 + 0x1c, 16 },
	{ "f2fs", 1024, "\x10\x20\xf5\xf2", 4, 0, 0 },
	{ "ntfs", 3, "NTFS    ", 8, 0, 0 },
	{ "squashfs", 0, "hsqs", 4, 0, 0 },
	{ "iso9660", 32769, "CD001", 5, 32808, 32 },
	{ "LVM2_member", 512 + 0x18, "LVM2 001", 8, 0, 0 },
	{ "linux_raid_member", 4096, "\xfc\x4e\x2b\xa9", 4, 0, 0 },
	{ "vfat", 0x52, "FAT32   ", 8, 0x47, 11 },
	{ "vfat", 0x36, "FAT16   ", 8, 0x2b, 11 },
	{ "vfat", 0x36, "FAT12   ", 8, 0x2b, 11 },
	{ "gpt", 512, "EFI PART", 8, 0, 0 },
	{ "gpt", 4096, "EFI PART", 8, 0, 0 },
};

static void copy_label(char *dst, size_t dlen, const uint8_t *src, size_t n)
{
	size_t i;

	if (n >= dlen)
		n = dlen - 1;
	for (i = 0; i < n && src[i]; i++)
		dst[i] = (src[i] >= 0x20 && src[i] < 0x7f) ? (char)src[i] : '?';
	while (i > 0 && dst[i - 1] == ' ')
		i--;
	dst[i] = 0;
}

static int probe_ext(const uint8_t *b, size_t len, struct pfs_probe_result *r)
{
	const uint8_t *s = b + 1024;
	uint32_t compat, incompat;
	uint16_t magic;

	if (len < 1024 + 0x100)
		return 0;
	memcpy(&magic, s + 0x38, 2);
	if (le16toh(magic) != 0xEF53)
		return 0;
	memcpy(&compat, s + 0x5c, 4);
	memcpy(&incompat, s + 0x60, 4);
	compat = le32toh(compat);
	incompat = le32toh(incompat);
	if (incompat & (0x40 | 0x80 | 0x200))	/* extents, 64bit, flex_bg */
		snprintf(r->type, sizeof(r->type), "ext4");
	else if (compat & 0x4)			/* has_journal */
		snprintf(r->type, sizeof(r->type), "ext3");
	else
		snprintf(r->type, sizeof(r->type), "ext2");
	copy_label(r->label, sizeof(r->label), s + 0x78, 16);
	return 1;
}

static int probe_mbr(const uint8_t *b, size_t len, struct pfs_probe_result *r)
{
	if (len < 512 || b[510] != 0x55 || b[511] != 0xaa)
		return 0;
	for (int i = 0; i < 4; i++) {
		const uint8_t *e = b + 446 + 16 * i;

		if (e[4] != 0 && (e[0] == 0 || e[0] == 0x80)) {
			snprintf(r->type, sizeof(r->type), "dos");
			return 1;
		}
	}
	return 0;
}

int pfs_probe(const void *head, size_t len, struct pfs_probe_result *r)
{
	const uint8_t *b = head;

	memset(r, 0, sizeof(*r));
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++) {
		const struct sig *s = &sigs[i];

		if (s->off + s->len > len || memcmp(b + s->off, s->magic, s->len))
			continue;
		snprintf(r->type, sizeof(r->type), "%s", s->type);
		if (s->label_off && s->label_off + s->label_len <= len)
			copy_label(r->label, sizeof(r->label), b + s->label_off, s->label_len);
		return 1;
	}
	if (probe_ext(b, len, r))
		return 1;
	return probe_mbr(b, len, r);
}
