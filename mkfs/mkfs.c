/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * mkfs.posfs: format a block device or an image file.
 *
 * A straight pipeline, as xfs_mkfs: parse, validate (options, the target,
 * what it already holds, whether it is in use), calculate (the geometry,
 * through libposfs), then initialise and write (libposfs pfs_newfs_write).
 * Every refusal happens before the first byte is written, so a refused
 * device is untouched; an image file that mkfs created is removed again.
 *
 * Exit status: 0 formatted (or a dry run that would have), 1 refused or
 * failed, 2 usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "posfs/crc32c.h"
#include "posfs/disk.h"
#include "posfs/io.h"

#define EXIT_REFUSED 1
#define EXIT_USAGE 2

static const char *prog = "mkfs.posfs";

struct mkfs_cfg {
	const char *path;
	uint64_t size;			/* bytes asked for, 0 = the whole target */
	const char *size_arg;
	struct pfs_mkfs_params geo;
	char label[POSFS_LABEL_SIZE + 1];
	uint8_t uuid[POSFS_UUID_SIZE];
	bool uuid_given;
	uint32_t root_uid, root_gid;
	int force;
	bool dry_run, quiet, verbose;
	bool lazy_wal;
	bool compress;			/* -O compression */
	unsigned compress_level;	/* -E compress_level=N; 0 the default */
};

static void die_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die_usage(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s -h' for more information.\n", prog);
	exit(EXIT_USAGE);
}

static void msg_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void msg_err(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static void usage(void)
{
	printf("Usage: %s [options] DEVICE|FILE [SIZE]\n"
	       "Format DEVICE, or the image FILE (created with SIZE if it does not exist),\n"
	       "with a new posfs file system.\n\n"
	       "  -b BLOCK_SIZE     block size: 4096 (default), 8192, 16384, 32768 or 65536\n"
	       "  -s SHARDS         number of shards, 1 to %u (default: one per CPU, each\n"
	       "                    at least 256 MiB)\n"
	       "  -J size=SIZE[,global=SIZE]\n"
	       "                    WAL size per shard (default: 1/16 of a shard, 1 MiB to\n"
	       "                    64 MiB) and of the global WAL (default: a quarter of it)\n"
	       "  -w SIZE           small-write threshold: writes up to SIZE bytes go through\n"
	       "                    the WAL (default 32K, at most 1M)\n"
	       "  -L LABEL          volume label, at most %u bytes\n"
	       "  -U UUID           file system UUID, or 'random' (default)\n"
	       "  -O FEATURES       features to set or (with ^) clear, comma separated:\n"
	       "                      data_csum  crc32c of every data chunk, checked on\n"
	       "                      every read (default: set)\n"
	       "                      compression  new data compressed with zstd by\n"
	       "                      default (mount -o compress=none overrides)\n"
	       "  -E OPTS           extended options, comma separated:\n"
	       "                      root_owner[=UID:GID]  owner of the root directory\n"
	       "                      (default: the user running mkfs)\n"
	       "                      lazy_journal_init[=0|1]  do not zero the WALs\n"
	       "                      csum_chunk=SIZE  bytes of data per checksum, 512 to\n"
	       "                      the block size (default 4K)\n"
	       "                      compress_level=N  zstd level with compression, 1 to\n"
	       "                      19 (default 1)\n"
	       "  -n                dry run: check and print the layout, write nothing\n"
	       "  -f, -F            format even over an existing file system (twice: even\n"
	       "                    over an image file in use by a loop device)\n"
	       "  -q                quiet\n"
	       "  -v                verbose\n"
	       "  -V                print the version and exit\n"
	       "  -h                print this help and exit\n\n"
	       "SIZE takes the suffixes K, M, G, T (powers of 1024); without a suffix it is\n"
	       "in KiB, or in blocks when -b is given, as for mke2fs.\n",
	       prog, POSFS_MAX_SHARDS, POSFS_LABEL_SIZE);
}

static int random_uuid(uint8_t *uuid)
{
	if (getrandom(uuid, POSFS_UUID_SIZE, 0) != POSFS_UUID_SIZE)
		return -errno;
	uuid[6] = (uint8_t)((uuid[6] & 0x0f) | 0x40);	/* version 4 */
	uuid[8] = (uint8_t)((uuid[8] & 0x3f) | 0x80);	/* RFC 4122 variant */
	return 0;
}

static const char *human(uint64_t bytes, char *buf, size_t len)
{
	static const char *unit[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
	double v = (double)bytes;
	int u = 0;

	while (v >= 1024 && u < 5) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%" PRIu64 " B", bytes);
	else
		snprintf(buf, len, "%.1f %s", v, unit[u]);
	return buf;
}

static void parse_journal_opts(struct mkfs_cfg *c, char *arg)
{
	for (char *tok = strtok(arg, ","); tok; tok = strtok(NULL, ",")) {
		uint64_t v;

		if (!strncmp(tok, "size=", 5)) {
			if (pfs_parse_size(tok + 5, 1ull << 20, &v))
				die_usage("bad WAL size '%s' (a size such as 8M)", tok + 5);
			if (v < POSFS_WAL_MIN)
				die_usage("WAL size '%s' is below the minimum of 1M", tok + 5);
			if (v > POSFS_WAL_MAX)
				die_usage("WAL size '%s' is above the maximum of 4G", tok + 5);
			c->geo.wal_bytes = v;
		} else if (!strncmp(tok, "global=", 7)) {
			if (pfs_parse_size(tok + 7, 1ull << 20, &v))
				die_usage("bad global WAL size '%s' (a size such as 2M)", tok + 7);
			if (v < POSFS_WAL_MIN)
				die_usage("global WAL size '%s' is below the minimum of 1M", tok + 7);
			if (v > POSFS_WAL_MAX)
				die_usage("global WAL size '%s' is above the maximum of 4G", tok + 7);
			c->geo.global_wal_bytes = v;
		} else {
			die_usage("unknown -J option '%s' (size=, global=)", tok);
		}
	}
}

static void parse_extended_opts(struct mkfs_cfg *c, char *arg)
{
	for (char *tok = strtok(arg, ","); tok; tok = strtok(NULL, ",")) {
		if (!strcmp(tok, "root_owner")) {
			c->root_uid = getuid();
			c->root_gid = getgid();
		} else if (!strcmp(tok, "lazy_journal_init") || !strcmp(tok, "lazy_journal_init=1")) {
			c->lazy_wal = true;
		} else if (!strcmp(tok, "lazy_journal_init=0")) {
			c->lazy_wal = false;
		} else if (!strncmp(tok, "root_owner=", 11)) {
			unsigned long u, g;
			char *end;

			errno = 0;
			u = strtoul(tok + 11, &end, 10);
			if (errno || *end != ':' || end == tok + 11)
				die_usage("bad root_owner '%s' (UID:GID)", tok + 11);
			g = strtoul(end + 1, &end, 10);
			if (errno || *end || u > UINT32_MAX - 1 || g > UINT32_MAX - 1)
				die_usage("bad root_owner '%s' (UID:GID)", tok + 11);
			c->root_uid = (uint32_t)u;
			c->root_gid = (uint32_t)g;
		} else if (!strncmp(tok, "csum_chunk=", 11)) {
			uint64_t v;

			if (pfs_parse_size(tok + 11, 1, &v) || v < POSFS_CSUM_CHUNK_MIN ||
			    v > POSFS_MAX_BLOCK_SIZE || (v & (v - 1)))
				die_usage("bad csum_chunk '%s' (a power of two from 512 to the block size)",
					  tok + 11);
			c->geo.csum_chunk = (uint32_t)v;
		} else if (!strncmp(tok, "compress_level=", 15)) {
			char *end;
			unsigned long v;

			errno = 0;
			v = strtoul(tok + 15, &end, 10);
			if (errno || *end || end == tok + 15 || !v || v > POSFS_COMPRESS_LEVEL_MAX)
				die_usage("bad compress_level '%s' (1 to %u)", tok + 15,
					  POSFS_COMPRESS_LEVEL_MAX);
			c->compress_level = (unsigned)v;
		} else {
			die_usage("unknown extended option '%s' (root_owner=UID:GID, lazy_journal_init, "
				  "csum_chunk=SIZE, compress_level=N)", tok);
		}
	}
}

static void parse_features(struct mkfs_cfg *c, char *arg)
{
	for (char *tok = strtok(arg, ","); tok; tok = strtok(NULL, ",")) {
		bool clear = *tok == '^';

		if (!strcmp(tok + clear, "data_csum"))
			c->geo.no_data_csum = clear;
		else if (!strcmp(tok + clear, "compression"))
			c->compress = !clear;
		else
			die_usage("unknown feature '%s' (data_csum, compression)", tok + clear);
	}
}

static void parse_args(struct mkfs_cfg *c, int argc, char **argv)
{
	bool block_size_given = false;
	uint64_t v;
	int opt;

	c->root_uid = getuid();
	c->root_gid = getgid();
	while ((opt = getopt(argc, argv, "b:s:J:w:L:U:E:O:nfFqvVh")) != -1) {
		switch (opt) {
		case 'b':
			if (pfs_parse_size(optarg, 1, &v) || v < POSFS_MIN_BLOCK_SIZE ||
			    v > POSFS_MAX_BLOCK_SIZE || (v & (v - 1)))
				die_usage("bad block size '%s' (4096, 8192, 16384, 32768 or 65536)", optarg);
			c->geo.block_size = (uint32_t)v;
			block_size_given = true;
			break;
		case 's': {
			char *end;
			unsigned long n;

			errno = 0;
			n = strtoul(optarg, &end, 10);
			if (errno || *end || n < 1 || n > POSFS_MAX_SHARDS)
				die_usage("bad shard count '%s' (1 to %u)", optarg, POSFS_MAX_SHARDS);
			c->geo.shard_count = (uint32_t)n;
			break;
		}
		case 'J':
			parse_journal_opts(c, optarg);
			break;
		case 'w':
			if (pfs_parse_size(optarg, 1, &v) || v > POSFS_SMALL_WRITE_MAX)
				die_usage("bad small-write threshold '%s' (0 to 1M)", optarg);
			c->geo.small_write = (uint32_t)v;
			break;
		case 'L':
			if (strlen(optarg) > POSFS_LABEL_SIZE)
				die_usage("label '%s' is %zu bytes long; at most %u", optarg,
					  strlen(optarg), POSFS_LABEL_SIZE);
			snprintf(c->label, sizeof(c->label), "%s", optarg);
			break;
		case 'U':
			if (!strcmp(optarg, "random"))
				break;
			if (pfs_uuid_parse(optarg, c->uuid))
				die_usage("bad UUID '%s'", optarg);
			c->uuid_given = true;
			break;
		case 'E':
			parse_extended_opts(c, optarg);
			break;
		case 'O':
			parse_features(c, optarg);
			break;
		case 'n': c->dry_run = true; break;
		case 'f': case 'F': c->force++; break;
		case 'q': c->quiet = true; break;
		case 'v': c->verbose = true; break;
		case 'V':
			printf("%s %s\n", prog, PACKAGE_VERSION);
			exit(0);
		case 'h':
			usage();
			exit(0);
		default:
			fprintf(stderr, "Try '%s -h' for more information.\n", prog);
			exit(EXIT_USAGE);
		}
	}
	if (optind >= argc)
		die_usage("no device or file given");
	c->path = argv[optind++];
	if (optind < argc) {
		c->size_arg = argv[optind++];
		if (pfs_parse_size(c->size_arg, block_size_given ? c->geo.block_size : 1024, &c->size) ||
		    !c->size)
			die_usage("bad size '%s' (a number with K, M, G or T)", c->size_arg);
	}
	if (optind < argc)
		die_usage("unexpected argument '%s'", argv[optind]);
	if (c->geo.small_write && c->geo.wal_bytes && c->geo.wal_bytes < 4ull * c->geo.small_write)
		die_usage("the WAL must hold at least four small writes (-J size >= 4 x -w)");
	if (c->compress_level && !c->compress)
		die_usage("compress_level needs compression (-O compression)");
	if (c->geo.csum_chunk && c->geo.no_data_csum)
		die_usage("csum_chunk needs data_csum (-O ^data_csum turns checksums off)");
	if (c->geo.csum_chunk > (c->geo.block_size ? c->geo.block_size : POSFS_MIN_BLOCK_SIZE))
		die_usage("csum_chunk %u is larger than the block size", c->geo.csum_chunk);
}

static unsigned online_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n > 0 ? (unsigned)n : 1;
}

static void print_summary(const struct mkfs_cfg *c, const struct pfs_super *sb,
			  const struct pfs_dev_info *info)
{
	char b1[32], b2[32], b3[32], ustr[40];
	struct pfs_shard_geo g;
	uint64_t data = 0;

	for (uint32_t i = 0; i < sb->shard_count; i++) {
		pfs_geo_shard(sb, i, &g);
		data += g.data_blocks;
	}
	pfs_geo_shard(sb, 0, &g);
	pfs_uuid_format(sb->uuid, ustr);
	printf("%s %s\n", prog, PACKAGE_VERSION);
	printf("Device:            %s (%s%s%s)\n", c->path,
	       info->is_blockdev ? "block device" : "image file",
	       info->nvme ? ", NVMe " : "", info->nvme ? info->nvme_model : "");
	printf("Capacity:          %s (%" PRIu64 " blocks of %u bytes)\n",
	       human(sb->total_blocks * sb->block_size, b1, sizeof(b1)),
	       sb->total_blocks, sb->block_size);
	printf("Data space:        %s\n", human(data * sb->block_size, b1, sizeof(b1)));
	printf("Shards:            %u of %s, WAL %s each\n", sb->shard_count,
	       human(sb->shard_blocks * sb->block_size, b1, sizeof(b1)),
	       human((uint64_t)sb->wal_blocks * sb->block_size, b2, sizeof(b2)));
	printf("Global WAL:        %s\n",
	       human((uint64_t)sb->global_wal_blocks * sb->block_size, b3, sizeof(b3)));
	printf("Small writes:      up to %u bytes go through the WAL\n", sb->small_write);
	if (sb->csum_chunk)
		printf("Data checksums:    crc32c per %u bytes\n", sb->csum_chunk);
	else
		printf("Data checksums:    none\n");
	if (sb->compress)
		printf("Compression:       zstd, level %u, by default\n",
		       sb->compress_level ? sb->compress_level : POSFS_COMPRESS_LEVEL_DEFAULT);
	else
		printf("Compression:       off by default (mount -o compress turns it on)\n");
	printf("Block size:        %u bytes (device sector %u bytes)\n",
	       sb->block_size, info->logical_sector);
	if (info->atomic_source == PFS_ATOMIC_NONE)
		printf("Atomic write unit: none reported (sector %u bytes); torn home blocks\n"
		       "                   are rebuilt from the WAL\n", info->atomic_write_unit);
	else
		printf("Atomic write unit: %u bytes (%s)\n", info->atomic_write_unit,
		       info->atomic_source == PFS_ATOMIC_NVME ? "NVMe" : "statx");
	printf("I/O:               %s, %s\n", info->uring ? "io_uring" : "synchronous",
	       info->direct ? "O_DIRECT" : "buffered");
	printf("UUID:              %s\n", ustr);
	if (sb->label[0])
		printf("Label:             %s\n", sb->label);
	if (c->verbose) {
		printf("Root directory:    owner %u:%u\n", sb->root_uid, sb->root_gid);
		printf("Global journal:    blocks %" PRIu64 "..%" PRIu64 "\n", sb->global_block,
		       sb->global_block + POSFS_SHARD_HDR_SLOTS + sb->global_wal_blocks - 1);
		for (uint32_t i = 0; i < sb->shard_count; i++) {
			pfs_geo_shard(sb, i, &g);
			printf("Shard %-3u          blocks %" PRIu64 "..%" PRIu64
			       ", WAL at %" PRIu64 ", checksums at %" PRIu64 " (%" PRIu64
			       "), data from %" PRIu64 "\n", i,
			       g.start_block, g.start_block + g.nblocks - 1, g.wal_start,
			       g.csum_start, g.csum_blocks, g.data_start);
		}
		printf("crc32c:            %s\n", pfs_crc32c_impl());
	}
}

int main(int argc, char **argv)
{
	struct mkfs_cfg c = { 0 };
	struct pfs_dev_opts dopts = { .exclusive = true };
	struct pfs_dev *dev = NULL;
	const struct pfs_dev_info *info;
	struct pfs_super sb = { 0 };
	struct pfs_newfs_opts nopts;
	struct pfs_probe_result probe;
	struct stat st;
	bool created = false;
	uint64_t min_size, target;
	struct pfs_dev_use use;
	char b1[32], b2[32];
	void *head = NULL;
	int ret, status = EXIT_REFUSED;

	parse_args(&c, argc, argv);
	if (pfs_crc32c_selftest()) {
		msg_err("crc32c self-test failed: this build computes wrong checksums");
		return EXIT_REFUSED;
	}

	/* Validate the target. */
	if (stat(c.path, &st) == 0) {
		if (!S_ISREG(st.st_mode) && !S_ISBLK(st.st_mode)) {
			msg_err("%s is neither a block device nor a regular file", c.path);
			return EXIT_REFUSED;
		}
		/* mounted, claimed, a loop device over the same file: see io.h */
		if (pfs_dev_in_use(c.path, &use) == 0 &&
		    (use.state == PFS_DEV_BUSY || (use.state == PFS_DEV_LOOPED && c.force < 2))) {
			msg_err("%s is in use: %s%s", c.path, use.why,
				use.state == PFS_DEV_LOOPED ? " (use -f twice to format it anyway)" : "");
			return EXIT_REFUSED;
		}
		if (S_ISREG(st.st_mode) && !c.size && st.st_size == 0) {
			msg_err("%s is empty: give a SIZE to make an image of that size", c.path);
			return EXIT_REFUSED;
		}
	} else if (errno == ENOENT) {
		if (!c.size) {
			msg_err("%s does not exist: give a SIZE to create an image file", c.path);
			return EXIT_REFUSED;
		}
	} else {
		msg_err("cannot access %s: %s", c.path, strerror(errno));
		return EXIT_REFUSED;
	}

	/* Calculate before touching anything: a too-small size is refused here. */
	c.geo.ncpu = online_cpus();
	if (c.size) {
		c.geo.size = c.size;
		ret = pfs_geo_compute(&c.geo, &sb, &min_size);
		if (ret == -ENOSPC) {
			msg_err("%s is too small for this layout: it needs at least %s (%" PRIu64 " bytes)",
				human(c.size, b1, sizeof(b1)), human(min_size, b2, sizeof(b2)), min_size);
			return EXIT_REFUSED;
		}
		if (ret) {
			msg_err("these options give no valid layout: %s", strerror(-ret));
			return EXIT_REFUSED;
		}
	}

	if (stat(c.path, &st) != 0) {
		int fd;

		if (c.dry_run) {
			printf("%s would be created as an image file of %s\n", c.path,
			       human(c.size, b1, sizeof(b1)));
			return 0;
		}
		fd = open(c.path, O_WRONLY | O_CREAT | O_EXCL, 0644);
		if (fd < 0) {
			msg_err("cannot create %s: %s", c.path, strerror(errno));
			return EXIT_REFUSED;
		}
		created = true;
		ret = ftruncate(fd, (off_t)c.size) ? -errno : 0;
		close(fd);
		if (ret) {
			msg_err("cannot make %s %s long: %s", c.path,
				human(c.size, b1, sizeof(b1)), strerror(-ret));
			goto out;
		}
	}

	dopts.readonly = c.dry_run;
	ret = pfs_dev_open(c.path, &dopts, &dev);
	if (ret) {
		if (ret == -EBUSY)
			msg_err("%s is in use (mounted, or open by another program)", c.path);
		else
			msg_err("cannot open %s: %s", c.path, strerror(-ret));
		goto out;
	}
	info = pfs_dev_info(dev);
	if (info->direct_refused && !c.quiet)
		fprintf(stderr, "%s: warning: the file system holding %s refuses O_DIRECT; "
			"using buffered I/O\n", prog, c.path);

	/* What is there already? */
	if (!created) {
		size_t n = info->size < PFS_PROBE_SIZE ? info->size : PFS_PROBE_SIZE;

		n -= n % info->logical_sector;
		head = pfs_dev_buf_alloc(PFS_PROBE_SIZE);
		if (!head) {
			msg_err("out of memory");
			goto out;
		}
		ret = n ? pfs_dev_pread(dev, head, n, 0) : 0;
		if (ret) {
			msg_err("cannot read %s: %s", c.path, strerror(-ret));
			goto out;
		}
		if (pfs_probe(head, n, &probe) && !c.force) {
			bool table = !strcmp(probe.type, "dos") || !strcmp(probe.type, "gpt");

			msg_err("%s contains %s %s %s%s%s%s; use -f to format it anyway", c.path,
				table ? "a" : "an existing", probe.type,
				table ? "partition table" : "file system",
				probe.label[0] ? " labelled '" : "", probe.label,
				probe.label[0] ? "'" : "");
			goto out;
		}
	}

	/* The size: the target's, or the one asked for (an image may grow). */
	target = c.size ? c.size : info->size;
	if (c.size && c.size > info->size) {
		if (info->is_blockdev) {
			msg_err("size %s is larger than %s (%s)", human(c.size, b1, sizeof(b1)),
				c.path, human(info->size, b2, sizeof(b2)));
			goto out;
		}
	}
	c.geo.size = target;
	c.geo.sector_size = info->logical_sector;
	c.geo.atomic_write = info->atomic_write_unit;
	memset(&sb, 0, sizeof(sb));
	ret = pfs_geo_compute(&c.geo, &sb, &min_size);
	if (ret == -ENOSPC) {
		msg_err("%s (%s) is too small: posfs with these options needs at least %s",
			c.path, human(target, b1, sizeof(b1)), human(min_size, b2, sizeof(b2)));
		goto out;
	}
	if (ret) {
		msg_err("these options give no valid layout for %s: %s", c.path, strerror(-ret));
		goto out;
	}
	if (sb.block_size < info->logical_sector) {
		msg_err("block size %u is smaller than the sector size of %s (%u)",
			sb.block_size, c.path, info->logical_sector);
		goto out;
	}

	if (c.uuid_given)
		memcpy(sb.uuid, c.uuid, POSFS_UUID_SIZE);
	else if ((ret = random_uuid(sb.uuid)) != 0) {
		msg_err("cannot make a UUID: %s", strerror(-ret));
		goto out;
	}
	memcpy(sb.label, c.label, sizeof(sb.label));
	sb.feature_incompat = POSFS_FEATURE_global_wal;
	if (c.compress) {
		sb.feature_incompat |= POSFS_FEATURE_compression;
		sb.compress = POSFS_COMPRESS_ZSTD;
		sb.compress_level = (uint8_t)c.compress_level;
	}
	sb.state = POSFS_STATE_CLEAN;
	sb.errors = 1;
	sb.mkfs_time = (uint64_t)time(NULL);
	sb.check_time = sb.mkfs_time;
	sb.max_mount_count = UINT32_MAX;
	sb.root_uid = c.root_uid;
	sb.root_gid = c.root_gid;

	if (!c.quiet)
		print_summary(&c, &sb, info);
	if (c.dry_run) {
		if (!c.quiet)
			printf("Dry run: nothing was written.\n");
		status = 0;
		goto out;
	}

	/* Initialise and write. */
	if (!info->is_blockdev && c.size && c.size > info->size) {
		pfs_dev_close(dev);
		dev = NULL;
		if (truncate(c.path, (off_t)c.size)) {
			msg_err("cannot grow %s to %s: %s", c.path, human(c.size, b1, sizeof(b1)),
				strerror(errno));
			goto out;
		}
		ret = pfs_dev_open(c.path, &dopts, &dev);
		if (ret) {
			msg_err("cannot open %s: %s", c.path, strerror(-ret));
			goto out;
		}
	}
	nopts = (struct pfs_newfs_opts){
		.root_uid = c.root_uid,
		.root_gid = c.root_gid,
		.root_mode = 0755,
		.now = (int64_t)sb.mkfs_time,
		.lazy_wal = c.lazy_wal,
	};
	ret = pfs_newfs_write(dev, &sb, &nopts);
	if (ret) {
		msg_err("writing %s failed: %s", c.path, strerror(-ret));
		if (ret == -ENOSPC)
			msg_err("the device is full or smaller than it said");
		goto out;
	}
	if (!c.quiet)
		printf("Writing superblocks, shard headers and the root directory: done\n");
	status = 0;
out:
	pfs_dev_buf_free(head);
	pfs_dev_close(dev);
	if (status != 0 && created)
		unlink(c.path);
	return status;
}
