/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * posfs-scrub: check every data block of a mounted posfs against its
 * checksum, online, at a bounded rate. A straight pipeline:
 *   1. parse the options (bad ones: usage, exit 2);
 *   2. make sure the path is on a posfs mount (/proc/self/mountinfo says
 *      fuse.posfs for its device), else exit 8;
 *   3. with -p, a first walk counts the files and their data, for the
 *      progress line;
 *   4. walk the tree (fts: one file system, no symlink followed); for each
 *      regular file, its data ranges (SEEK_DATA / SEEK_HOLE: holes are
 *      never read) go to the daemon as POSFS_IOC_SCRUB requests of at most
 *      a chunk each, with a pause after each to hold the rate; a bad block
 *      is reported when found and the scrub goes on after it;
 *   5. the summary; the exit status says what was found (the manual).
 * The daemon does the checking (include/posfs/ioctl.h); this program asks,
 * in order, and keeps count.
 */
#include <errno.h>
#include <fcntl.h>
#include <fts.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include "posfs/ioctl.h"

#define EXIT_CLEAN	0
#define EXIT_DAMAGE	1	/* bad blocks or damaged metadata found */
#define EXIT_USAGE	2
#define EXIT_UNCHECKED	4	/* something could not be checked */
#define EXIT_ERROR	8	/* the scrub could not run, or stopped */
#define EXIT_CANCELED	32	/* SIGINT or SIGTERM */

#define RATE_DEFAULT	64.0		/* MB/s */
#define RATE_MAX	1e6		/* MB/s: past any device */
#define CHUNK_MAX	(4u << 20)	/* bytes per request, at most */
#define CHUNK_MIN	(64u << 10)
#define LIST_MAX	8		/* bad blocks named per file */

static const char *prog = "posfs-scrub";
static volatile sig_atomic_t stop;

struct opts {
	double rate_mb;			/* 0: no limit */
	bool progress, quiet, verbose, transport;
	const char *path;
};

/* A file found damaged, for the summary. */
struct damaged {
	char *path;
	uint64_t off[LIST_MAX];		/* the first bad blocks */
	uint64_t nbad;			/* all of them */
	int meta_err;			/* errno: its metadata is damaged */
	struct damaged *next;
};

struct scrub {
	const struct opts *o;
	dev_t dev;			/* the file system's */
	uint64_t rate;			/* bytes per second; 0: no limit */
	size_t chunk;			/* bytes per request */
	double start, next_turn;	/* monotonic seconds: the rate's clock */
	double next_progress;
	bool tty;
	uint64_t files, bytes;		/* checked */
	uint64_t total_files, total_bytes;	/* -p: the first walk's */
	uint64_t unchecked;		/* files or directories not checked */
	uint64_t ndamaged;
	struct damaged *damaged, **tail;
	int status;			/* EXIT_* bits */
};

static void usage(FILE *f)
{
	fprintf(f,
"Usage: posfs-scrub [options] MOUNTPOINT\n"
"Check every data block of the posfs mounted at MOUNTPOINT against its\n"
"checksum, while it is in use. A directory or file inside the mount checks\n"
"that part of the tree only.\n"
"\n"
"  -r RATE   check at most RATE megabytes per second (default 64; 0: no limit)\n"
"  -p        print progress to stderr\n"
"  -q        quiet: print only the damage found, no summary\n"
"  -v        verbose: the rate limit, and each file as it is checked\n"
"  -t        print how the mount's requests reach its daemon (the FUSE\n"
"            transport) and the requests served, by opcode, then exit\n"
"  -h        print this help and exit\n"
"  -V        print the version and exit\n");
}

static double now_secs(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

/* "512 B", "1.5 KiB", ... */
static const char *human(char *buf, size_t len, uint64_t v)
{
	static const char *const unit[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB" };
	double d = (double)v;
	unsigned u = 0;

	while (d >= 1024 && u < sizeof(unit) / sizeof(unit[0]) - 1) {
		d /= 1024;
		u++;
	}
	if (!u)
		snprintf(buf, len, "%" PRIu64 " B", v);
	else
		snprintf(buf, len, "%.1f %s", d, unit[u]);
	return buf;
}

/* ---- options ------------------------------------------------------------- */

static int parse_rate(const char *s, double *mb)
{
	char *end;

	errno = 0;
	*mb = strtod(s, &end);
	if (errno || end == s || *end || !isfinite(*mb) || *mb < 0 || *mb > RATE_MAX)
		return -1;
	return 0;
}

static int parse_args(int argc, char **argv, struct opts *o)
{
	int c;

	while ((c = getopt(argc, argv, "r:pqvthV")) != -1) {
		switch (c) {
		case 'r':
			if (parse_rate(optarg, &o->rate_mb)) {
				fprintf(stderr, "%s: bad rate '%s' (megabytes per second; "
					"0: no limit)\n", prog, optarg);
				return -1;
			}
			break;
		case 'p':
			o->progress = true;
			break;
		case 'q':
			o->quiet = true;
			break;
		case 'v':
			o->verbose = true;
			break;
		case 't':
			o->transport = true;
			break;
		case 'h':
			usage(stdout);
			exit(EXIT_CLEAN);
		case 'V':
			printf("%s %s\n", prog, PACKAGE_VERSION);
			exit(EXIT_CLEAN);
		default:
			return -1;
		}
	}
	if (argc - optind != 1) {
		fprintf(stderr, "%s: %s\n", prog,
			argc == optind ? "MOUNTPOINT is needed" : "too many arguments");
		return -1;
	}
	o->path = argv[optind];
	return 0;
}

/* ---- is it posfs? ---------------------------------------------------------- */

/*
 * The mount that holds dev, from /proc/self/mountinfo (its "major:minor"
 * field): its type and its source into type and source. 0, -ENOENT when
 * no mount has dev, or -errno.
 */
static int mount_of(dev_t dev, char *type, size_t tlen, char *source, size_t slen)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	int ret = -ENOENT;

	if (!f)
		return -errno;
	while (getline(&line, &cap, f) > 0) {
		const char *sep = strstr(line, " - ");
		unsigned maj, mnr;
		char t[256], src[4096];

		if (!sep || sscanf(line, "%*s %*s %u:%u", &maj, &mnr) != 2 ||
		    maj != major(dev) || mnr != minor(dev) ||
		    sscanf(sep + 3, "%255s %4095s", t, src) != 2)
			continue;
		snprintf(type, tlen, "%s", t);
		snprintf(source, slen, "%s", src);
		ret = 0;
		break;
	}
	free(line);
	fclose(f);
	return ret;
}

/* Step 2: 0 when path is on a posfs mount (s->dev set), else a message. */
static int check_posfs(struct scrub *s, const char *path)
{
	char type[256], source[4096];
	struct stat st;
	int ret;

	if (stat(path, &st)) {
		fprintf(stderr, "%s: %s: %s\n", prog, path, strerror(errno));
		return -1;
	}
	ret = mount_of(st.st_dev, type, sizeof(type), source, sizeof(source));
	if (ret) {
		fprintf(stderr, "%s: %s: cannot find its mount in /proc/self/mountinfo: %s\n",
			prog, path, ret == -ENOENT ? "not listed" : strerror(-ret));
		return -1;
	}
	if (strcmp(type, "fuse.posfs")) {
		fprintf(stderr, "%s: %s: not a posfs file system (it is %s)\n", prog, path, type);
		return -1;
	}
	s->dev = st.st_dev;
	if (s->o->verbose)
		printf("%s: posfs on %s\n", path, source);
	return 0;
}

/* ---- pace and progress ---------------------------------------------------- */

/* Set the rate and the request size: a request is at most a quarter of a
 * second's worth, so that the pauses between them stay short. */
static void pace_init(struct scrub *s)
{
	s->rate = (uint64_t)(s->o->rate_mb * 1e6);
	s->chunk = CHUNK_MAX;
	if (s->rate && s->rate / 4 < CHUNK_MAX) {
		s->chunk = (size_t)(s->rate / 4) / CHUNK_MIN * CHUNK_MIN;
		if (s->chunk < CHUNK_MIN)
			s->chunk = CHUNK_MIN;
	}
	s->start = s->next_turn = now_secs();
	if (s->o->verbose) {
		if (s->rate)
			printf("rate limit: %g MB/s\n", s->o->rate_mb);
		else
			printf("rate limit: none\n");
	}
}

/*
 * After n bytes were checked: wait until the rate allows the next request.
 * Invariant: next_turn is never earlier than the last request's end, so
 * time spent elsewhere (small files, a slow device) earns no burst later.
 */
static void pace(struct scrub *s, uint64_t n)
{
	double now = now_secs(), wait;
	struct timespec ts;

	if (!s->rate)
		return;
	if (s->next_turn < now)
		s->next_turn = now;
	s->next_turn += (double)n / (double)s->rate;
	wait = s->next_turn - now;
	if (wait <= 0 || stop)
		return;
	ts.tv_sec = (time_t)wait;
	ts.tv_nsec = (long)((wait - (double)ts.tv_sec) * 1e9);
	nanosleep(&ts, NULL);	/* a signal cuts it short: stop is set */
}

#define PROGRESS_TTY_SECS	1.0
#define PROGRESS_LOG_SECS	10.0

static void progress(struct scrub *s, bool last)
{
	double now = now_secs(), el = now - s->start;
	char done[32], total[32];
	double pct;

	if (!s->o->progress || (!last && now < s->next_progress))
		return;
	s->next_progress = now + (s->tty ? PROGRESS_TTY_SECS : PROGRESS_LOG_SECS);
	pct = s->total_bytes ? 100.0 * (double)s->bytes / (double)s->total_bytes : 100.0;
	if (pct > 100.0 || last)
		pct = 100.0;	/* files grew since the first walk */
	fprintf(stderr, "%s%s of %s (%.1f%%), %" PRIu64 " of %" PRIu64 " files, %.0f s, "
		"%.1f MB/s%s",
		s->tty ? "\r" : "", human(done, sizeof(done), s->bytes),
		human(total, sizeof(total), s->total_bytes), pct, s->files, s->total_files, el,
		el > 0 ? (double)s->bytes / el / 1e6 : 0.0,
		s->tty ? (last ? "\033[K\n" : "\033[K") : "\n");
}

/* ---- findings --------------------------------------------------------------- */

static void unchecked(struct scrub *s, const char *path, const char *what, int err)
{
	fprintf(stderr, "%s: %s: %s: %s\n", prog, path, what, strerror(err));
	s->unchecked++;
	s->status |= EXIT_UNCHECKED;
}

static struct damaged *damaged_get(struct scrub *s, struct damaged **d, const char *path)
{
	if (*d)
		return *d;
	*d = calloc(1, sizeof(**d));
	if (!*d || !((*d)->path = strdup(path))) {
		fprintf(stderr, "%s: out of memory\n", prog);
		exit(EXIT_ERROR);
	}
	*s->tail = *d;
	s->tail = &(*d)->next;
	s->ndamaged++;
	s->status |= EXIT_DAMAGE;
	return *d;
}

static void bad_block(struct scrub *s, struct damaged **d, const char *path, uint64_t off,
		      uint32_t len)
{
	struct damaged *f = damaged_get(s, d, path);

	if (f->nbad < LIST_MAX) {
		f->off[f->nbad] = off;
		printf("%s: bad block at offset %" PRIu64 " (%" PRIu32 " bytes)\n", path, off, len);
	}
	f->nbad++;
	fflush(stdout);
}

static void bad_metadata(struct scrub *s, struct damaged **d, const char *path, int err)
{
	damaged_get(s, d, path)->meta_err = err;
	printf("%s: its metadata is damaged (%s): run fsck.posfs\n", path, strerror(err));
	fflush(stdout);
}

/* ---- one file ---------------------------------------------------------------- */

/* A request for the file (lseek, the ioctl) failed with err: report it;
 * the scrub of this file ends (0), or the whole scrub (-1). */
static int request_failed(struct scrub *s, struct damaged **d, const char *path, int err)
{
	switch (err) {
	case ENOENT:
	case ESTALE:
		return 0;		/* gone meanwhile */
	case EUCLEAN:
	case EBADMSG:
		bad_metadata(s, d, path, err);
		return 0;
	case ENOTTY:
	case ENOSYS:
		fprintf(stderr, "%s: %s: the posfs daemon cannot scrub (%s): a newer posfs "
			"is needed\n", prog, path, strerror(err));
		s->status |= EXIT_ERROR;
		return -1;
	case ENOTCONN:
	case ECONNABORTED:
		fprintf(stderr, "%s: %s: %s (the posfs daemon is gone)\n", prog, path,
			strerror(err));
		s->status |= EXIT_ERROR;
		return -1;
	default:
		unchecked(s, path, "cannot scrub", err);
		return 0;
	}
}

/*
 * Scrub [pos, end) of the open file fd: 1 when the file ended before end
 * (it shrank), 0 done, else -errno of the request that failed.
 */
static int scrub_extent(struct scrub *s, struct damaged **d, int fd, const char *path,
			uint64_t pos, uint64_t end)
{
	while (pos < end && !stop) {
		struct posfs_scrub_range r = { .offset = pos };
		uint64_t next;

		r.length = end - pos < s->chunk ? end - pos : s->chunk;
		if (ioctl(fd, POSFS_IOC_SCRUB, &r) < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (r.error == EIO) {
			next = r.bad_offset + r.bad_length;
			if (!r.bad_length || next <= pos)
				return -EPROTO;
			bad_block(s, d, path, r.bad_offset, r.bad_length);
			if (next > end)
				next = end;
		} else if (r.error) {
			return -r.error;
		} else {
			if (!r.checked)
				return 1;
			next = pos + r.checked;
		}
		s->bytes += next - pos;
		pace(s, next - pos);
		pos = next;
		progress(s, false);
	}
	return 0;
}

/* The data ranges of fd, each scrubbed. 0, or -1 to end the whole scrub. */
static int scrub_data(struct scrub *s, struct damaged **d, int fd, const char *path)
{
	off_t pos = 0, data, hole;
	int ret;

	while (!stop) {
		data = lseek(fd, pos, SEEK_DATA);
		hole = data < 0 ? -1 : lseek(fd, data, SEEK_HOLE);
		if (data < 0 || hole < 0)
			return errno == ENXIO ? 0 : request_failed(s, d, path, errno);
		ret = scrub_extent(s, d, fd, path, (uint64_t)data, (uint64_t)hole);
		if (ret < 0)
			return request_failed(s, d, path, -ret);
		if (ret > 0)
			return 0;
		pos = hole;
	}
	return 0;
}

/* One regular file: 0, or -1 to end the whole scrub. */
static int scrub_file(struct scrub *s, const FTSENT *e)
{
	struct damaged *d = NULL;
	uint64_t before = s->bytes;
	struct stat st;
	int fd, ret;

	if (e->fts_statp->st_dev != s->dev)
		return 0;		/* a file mounted over this one */
	fd = open(e->fts_accpath, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		if (errno != ENOENT && errno != ELOOP)	/* gone, or now a symlink */
			unchecked(s, e->fts_path, "cannot open", errno);
		return 0;
	}
	/* replaced since the walk saw it: not what we were asked about */
	if (fstat(fd, &st) || !S_ISREG(st.st_mode) || st.st_dev != s->dev) {
		close(fd);
		return 0;
	}
	ret = scrub_data(s, &d, fd, e->fts_path);
	close(fd);
	if (d && d->nbad > LIST_MAX)
		printf("%s: and %" PRIu64 " more bad blocks\n", e->fts_path, d->nbad - LIST_MAX);
	if (!stop)
		s->files++;	/* checked to its end */
	if (s->o->verbose)
		printf("%s: %" PRIu64 " bytes checked\n", e->fts_path, s->bytes - before);
	progress(s, false);
	return ret;
}

/* ---- the walk ---------------------------------------------------------------- */

/* One entry of the walk that is not a regular file. */
static void walk_other(struct scrub *s, const FTSENT *e)
{
	switch (e->fts_info) {
	case FTS_DNR:
	case FTS_NS:
	case FTS_ERR:
		if (e->fts_errno != ENOENT)	/* gone meanwhile: nothing to say */
			unchecked(s, e->fts_path, e->fts_info == FTS_DNR ?
				  "cannot read the directory" : "cannot look at it", e->fts_errno);
		break;
	default:
		break;		/* directories, symlinks, devices, fifos, sockets */
	}
}

static FTS *walk_open(struct scrub *s)
{
	char *paths[] = { (char *)s->o->path, NULL };
	FTS *fts = fts_open(paths, FTS_PHYSICAL | FTS_XDEV, NULL);

	if (!fts)
		fprintf(stderr, "%s: %s: %s\n", prog, s->o->path, strerror(errno));
	return fts;
}

static int walk_close(struct scrub *s, FTS *fts)
{
	int ret = 0;

	if (errno && !stop) {
		fprintf(stderr, "%s: walking %s: %s\n", prog, s->o->path, strerror(errno));
		s->status |= EXIT_ERROR;
		ret = -1;
	}
	fts_close(fts);
	return ret;
}

/* Step 3 (-p): the files and data the scrub will meet, as it starts. */
static int count_data(struct scrub *s)
{
	FTS *fts = walk_open(s);
	FTSENT *e;

	if (!fts)
		return -1;
	errno = 0;
	while (!stop && (e = fts_read(fts))) {
		const struct stat *st = e->fts_statp;

		if (e->fts_info != FTS_F || st->st_dev != s->dev)
			continue;
		s->total_files++;
		/* allocated data, within the size: what SEEK_DATA will give */
		s->total_bytes += (uint64_t)st->st_blocks * 512 < (uint64_t)st->st_size ?
				  (uint64_t)st->st_blocks * 512 : (uint64_t)st->st_size;
		errno = 0;
	}
	return walk_close(s, fts);
}

/* Step 4. */
static int scrub_tree(struct scrub *s)
{
	FTS *fts = walk_open(s);
	FTSENT *e;
	int ret = 0;

	if (!fts)
		return -1;
	errno = 0;
	while (!stop && (e = fts_read(fts))) {
		if (e->fts_info == FTS_F)
			ret = scrub_file(s, e);
		else
			walk_other(s, e);
		if (ret) {
			fts_close(fts);
			return ret;
		}
		errno = 0;
	}
	return walk_close(s, fts);
}

/* ---- the end -------------------------------------------------------------------- */

static void summary(struct scrub *s)
{
	double el = now_secs() - s->start;
	char h[32];

	printf("files checked: %" PRIu64 "\n", s->files);
	printf("bytes checked: %" PRIu64 " (%s)\n", s->bytes, human(h, sizeof(h), s->bytes));
	printf("elapsed: %.1f s (%.1f MB/s)\n", el, el > 0 ? (double)s->bytes / el / 1e6 : 0.0);
	if (s->unchecked)
		printf("not checked: %" PRIu64 " (see the messages above)\n", s->unchecked);
	printf("damaged files: %" PRIu64 "\n", s->ndamaged);
	for (struct damaged *d = s->damaged; d; d = d->next) {
		if (d->meta_err)
			printf("  %s: metadata damaged: run fsck.posfs\n", d->path);
		if (!d->nbad)
			continue;
		printf("  %s: %s", d->path, d->nbad > 1 ? "bad blocks at offsets" :
		       "bad block at offset");
		for (uint64_t i = 0; i < d->nbad && i < LIST_MAX; i++)
			printf("%s %" PRIu64, i ? "," : "", d->off[i]);
		if (d->nbad > LIST_MAX)
			printf(" and %" PRIu64 " more", d->nbad - LIST_MAX);
		printf("\n");
	}
}

static void damaged_free(struct scrub *s)
{
	struct damaged *d = s->damaged, *n;

	for (; d; d = n) {
		n = d->next;
		free(d->path);
		free(d);
	}
	s->damaged = NULL;
}

static void signals_catch(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

/* ---- -t: the transport ------------------------------------------------------ */

/* FUSE's opcodes (include/uapi/linux/fuse.h), by number. */
static const char *const fuse_opname[POSFS_TRANSPORT_OPS] = {
	[1] = "LOOKUP", [2] = "FORGET", [3] = "GETATTR", [4] = "SETATTR",
	[5] = "READLINK", [6] = "SYMLINK", [8] = "MKNOD", [9] = "MKDIR",
	[10] = "UNLINK", [11] = "RMDIR", [12] = "RENAME", [13] = "LINK",
	[14] = "OPEN", [15] = "READ", [16] = "WRITE", [17] = "STATFS",
	[18] = "RELEASE", [20] = "FSYNC", [21] = "SETXATTR", [22] = "GETXATTR",
	[23] = "LISTXATTR", [24] = "REMOVEXATTR", [25] = "FLUSH", [26] = "INIT",
	[27] = "OPENDIR", [28] = "READDIR", [29] = "RELEASEDIR", [30] = "FSYNCDIR",
	[31] = "GETLK", [32] = "SETLK", [33] = "SETLKW", [34] = "ACCESS",
	[35] = "CREATE", [36] = "INTERRUPT", [37] = "BMAP", [38] = "DESTROY",
	[39] = "IOCTL", [40] = "POLL", [41] = "NOTIFY_REPLY", [42] = "BATCH_FORGET",
	[43] = "FALLOCATE", [44] = "READDIRPLUS", [45] = "RENAME2", [46] = "LSEEK",
	[47] = "COPY_FILE_RANGE", [48] = "SETUPMAPPING", [49] = "REMOVEMAPPING",
	[50] = "SYNCFS", [51] = "TMPFILE", [52] = "STATX",
};

/* The mount's transport and its request counts, on stdout. */
static int print_transport(const char *path)
{
	struct posfs_transport t;
	uint64_t ring = 0, dev = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0) {
		fprintf(stderr, "%s: cannot open %s: %s\n", prog, path, strerror(errno));
		return EXIT_ERROR;
	}
	if (ioctl(fd, POSFS_IOC_TRANSPORT, &t)) {
		fprintf(stderr, "%s: %s: cannot read the transport: %s\n", prog, path,
			strerror(errno));
		close(fd);
		return EXIT_ERROR;
	}
	close(fd);
	if (t.transport == POSFS_TRANSPORT_URING) {
		printf("transport: io_uring, %u queues of %u entries, ", t.queues, t.depth);
		if (t.poll_us)
			printf("polling %u us before each sleep\n", t.poll_us);
		else
			printf("sleeping when idle\n");
	} else {
		printf("transport: /dev/fuse\n");
	}
	for (unsigned op = 0; op < POSFS_TRANSPORT_OPS; op++) {
		ring += t.uring_ops[op];
		dev += t.dev_ops[op];
	}
	printf("requests: %" PRIu64 " over io_uring, %" PRIu64 " over /dev/fuse\n", ring, dev);
	printf("%-16s %12s %12s\n", "opcode", "io_uring", "/dev/fuse");
	for (unsigned op = 0; op < POSFS_TRANSPORT_OPS; op++) {
		char other[16];

		if (!t.uring_ops[op] && !t.dev_ops[op])
			continue;
		snprintf(other, sizeof(other), "%u", op);
		printf("%-16s %12" PRIu64 " %12" PRIu64 "\n",
		       op == 0 ? "other" : fuse_opname[op] ? fuse_opname[op] : other,
		       t.uring_ops[op], t.dev_ops[op]);
	}
	return EXIT_CLEAN;
}

int main(int argc, char **argv)
{
	struct opts o = { .rate_mb = RATE_DEFAULT };
	struct scrub s = { .o = &o };

	if (parse_args(argc, argv, &o)) {
		usage(stderr);
		return EXIT_USAGE;
	}
	s.tail = &s.damaged;
	s.tty = isatty(STDERR_FILENO);
	if (check_posfs(&s, o.path))
		return EXIT_ERROR;
	if (o.transport)
		return print_transport(o.path);
	signals_catch();
	pace_init(&s);
	if (o.progress && !count_data(&s))
		s.start = s.next_turn = now_secs();	/* the first walk is not the scrub's time */
	if (!(s.status & EXIT_ERROR))
		scrub_tree(&s);
	progress(&s, true);
	if (stop) {
		fprintf(stderr, "%s: interrupted: the summary covers what was checked\n", prog);
		s.status |= EXIT_CANCELED;
	}
	if (!o.quiet)
		summary(&s);
	damaged_free(&s);
	fflush(stdout);
	return s.status;
}
