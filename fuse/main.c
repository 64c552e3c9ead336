/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * posfs: mount a posfs device through FUSE. A straight pipeline:
 *   1. parse the options (bad ones: usage, exit 2); a DEVICE given as
 *      LABEL=x or UUID=x is found among the block devices (findfs.c);
 *      one that a posfs daemon has mounted already is bound on
 *      MOUNTPOINT instead, by root, and posfs exits 0 (bind.c);
 *   2. without -f, fork: the parent waits on a pipe for the child's word
 *      and exits 0 once the mount is up, 1 when start-up failed (so
 *      mount(8) and scripts see errors); the child goes on, in a new
 *      session. The fork comes before the store opens: the store's
 *      threads, io_uring and exclusive claim must belong to the daemon;
 *   3. open the store (WAL replay) and the namespace layer (orphans);
 *      errors to stderr with a clear message, exit 1;
 *   4. make the FUSE session and mount it (fsname=DEVICE, subtype=posfs,
 *      default_permissions always);
 *   5. daemonized: stdio to /dev/null, messages to syslog; run the loop
 *      (multi-threaded unless -s) until unmount or SIGTERM/SIGINT/SIGHUP;
 *      where the kernel offers FUSE over io_uring, the ring's threads
 *      (uring.c) serve the requests and the loop the rest;
 *   6. unmount, pfs_fs_close, pfs_store_close (checkpoint, mark clean).
 *      The loop ends when the last mount of the file system is gone (a
 *      bind of it keeps the FUSE connection, and the daemon, alive after
 *      MOUNTPOINT is unmounted), or on a signal: then the other mounts
 *      of the file system (binds) are detached too, not left without a
 *      daemon.
 * Run by root, it notes the mount in libmount's utab for umount(8) from
 * step 4 to 6 (utab.c).
 * argv[0] named mount.posfs or mount.fuse.posfs runs helper.c instead,
 * umount.posfs or umount.fuse.posfs umount.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <fcntl.h>
#include <limits.h>
#include <malloc.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "posfs/disk.h"
#include "posfs/fs.h"
#include "posfs/io.h"
#include "posfs/store.h"
#include "posfs.h"
#include "uring.h"
#include "wire.h"

static const char *prog = "posfs";
static bool use_syslog;

void pfs_log(int prio, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	if (use_syslog) {
		vsyslog(prio, fmt, ap);
	} else {
		fprintf(stderr, "%s: ", prog);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	}
	va_end(ap);
}

static void usage(FILE *f)
{
	fprintf(f,
"Usage: posfs [options] DEVICE MOUNTPOINT\n"
"Mount the posfs file system on DEVICE (a block device or an image file)\n"
"at MOUNTPOINT through FUSE. DEVICE may be LABEL=x or UUID=x (or label=x,\n"
"uuid=x); one mounted already is bound on MOUNTPOINT (root), as for ext4.\n"
"\n"
"  -f                stay in the foreground (log to stderr)\n"
"  -d                debug: print every FUSE request (implies -f)\n"
"  -s                single-threaded request loop\n"
"  -o OPTS           mount options, comma separated:\n"
"      ro                  read-only (the WAL is replayed in memory only)\n"
"      rw                  read-write (default)\n"
"      allow_other         let other users in (permissions are always\n"
"                          checked by the kernel: default_permissions)\n"
"      writeback           kernel write-back cache: writes are cached in the\n"
"                          page cache and sent later (fsync still durable)\n"
"      nowriteback         write-through: each write reaches posfs before\n"
"                          it returns (default)\n"
"      cache_blocks=N      block cache per shard, in blocks (default: 1/64 of\n"
"                          the memory over the shards, 4096 to 32768)\n"
"      onode_cache=N       decoded onodes cached per shard (default 8192)\n"
"      small_write=BYTES   writes up to BYTES go through the WAL (default:\n"
"                          the threshold set by mkfs.posfs)\n"
"      threads=N           at most N request threads over /dev/fuse (default 10)\n"
"      uring               serve requests over FUSE's io_uring, one queue per\n"
"                          CPU, where the kernel offers it (default)\n"
"      uring=enable        the same, turning the kernel's enable_uring\n"
"                          parameter on first (root)\n"
"      nouring             serve requests over /dev/fuse only\n"
"      uring_threads=N     threads serving each of the ring's queues, one\n"
"                          request each at a time (default 4)\n"
"      poll[=US]           the ring's threads busy-poll US microseconds\n"
"                          (default 50) before each sleep\n"
"      compress            compress new data with zstd; sets the compression\n"
"                          feature on the file system\n"
"      compress=none       store new data uncompressed, except in files with\n"
"                          chattr +c\n"
"      compress_level=N    zstd level, 1 to 19 (default: the level mkfs.posfs\n"
"                          set, else 1)\n"
"      discard             discard freed space on the device (TRIM, a hole in\n"
"                          an image file) at each checkpoint after the\n"
"                          frees; fstrim(8) does it on demand\n"
"      nodiscard           do not (default)\n"
"      readahead=KB        the kernel's readahead on this mount (default 1024;\n"
"                          0 leaves the kernel's own)\n"
"      entry_timeout=SECS  how long the kernel caches names (default 1)\n"
"      attr_timeout=SECS   how long the kernel caches attributes (default 1)\n"
"      relatime            update atime on read when it is not newer than\n"
"                          mtime or ctime, or is a day old (default)\n"
"      noatime             never update atime\n"
"      strictatime         update atime on every read\n"
"      nodiratime          never update the atime of a directory\n"
"      diratime            update it as of a file (default)\n"
"      default_permissions\n"
"                          accepted; always on\n"
"      nosuid, nodev, noexec, suid, dev, exec, sync, async, dirsync\n"
"                          passed to the kernel as for any mount; mounted by\n"
"                          root, suid and dev are the default, as mount(8)\n"
"                          has them; nosuid and nodev otherwise\n"
"      lazytime, nolazytime, iversion, noiversion, mand, nomand\n"
"                          accepted, as mount(8) passes them to every file\n"
"                          system; no effect\n"
"  -h                print this help and exit\n"
"  -V                print the version and exit\n");
}

struct opts {
	const char *device, *mountpoint;
	bool foreground, debug, single, allow_other;
	bool suid_set, dev_set;		/* suid/nosuid, dev/nodev given */
	unsigned threads;
	struct pfs_store_opts so;
	struct pfs_uring_opts uring;
	char *kopts;			/* passed on to FUSE's mount */
};

/*
 * The kernel reads ahead 128 KiB on a FUSE mount unless told otherwise;
 * posfs answers with device reads that are cheaper the larger they are, so
 * the mount's readahead is set through its bdi (/sys/class/bdi/MAJ:MIN,
 * the numbers mountinfo gives the mount, not a stat of the mount point,
 * which would ask this very daemon). The kernel sets the bdi's readahead
 * again when it reads the reply to INIT, so this runs at the first open
 * (the kernel takes a file's readahead from the bdi when it opens it).
 * Root only; a failure leaves the kernel's default and says so in the log.
 */
struct bdi_find {
	const char *mountpoint;
	char bdi[32];
};

static int bdi_of(void *arg, const struct pfs_mount_entry *m)
{
	struct bdi_find *b = arg;

	/* the last one found wins: the top mount */
	if (!strncmp(m->fstype, "fuse", 4) && !strcmp(m->mountpoint, b->mountpoint))
		snprintf(b->bdi, sizeof(b->bdi), "%u:%u", m->major, m->minor);
	return 0;
}

static void set_readahead(const char *mountpoint, unsigned long long kb)
{
	struct bdi_find b = { mountpoint, "" };
	char path[128];
	int fd;

	if (pfs_mountinfo_each(bdi_of, &b) != 0 || !b.bdi[0])
		return;
	snprintf(path, sizeof(path), "/sys/class/bdi/%s/read_ahead_kb", b.bdi);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || dprintf(fd, "%llu\n", kb) < 0)
		pfs_log(LOG_INFO, "readahead left as the kernel's: %s: %s", path,
			  strerror(errno));
	if (fd >= 0)
		close(fd);
}

void pfs_readahead(struct pfs_daemon *p)
{
	if (!p->readahead_kb || __atomic_load_n(&p->readahead_set, __ATOMIC_ACQUIRE) ||
	    __atomic_exchange_n(&p->readahead_set, 1, __ATOMIC_ACQ_REL))
		return;
	set_readahead(p->mountpoint, p->readahead_kb);
}

static int parse_uint(const char *s, unsigned long long max, unsigned long long *v)
{
	char *end;

	if (!*s || *s == '-')
		return -1;
	errno = 0;
	*v = strtoull(s, &end, 10);
	if (errno || *end || *v > max)
		return -1;
	return 0;
}

static int parse_secs(const char *s, double *v)
{
	char *end;

	errno = 0;
	*v = strtod(s, &end);
	if (errno || *end || end == s || !(*v >= 0) || *v > 86400.0 * 365)
		return -1;
	return 0;
}

static int parse_one(struct pfs_daemon *p, struct opts *o, const char *opt)
{
	static const char *const passed[] = {
		"nosuid", "nodev", "noexec", "suid", "dev", "exec", "sync", "async", "dirsync",
	};
	/* mount(8)'s for every file system, which FUSE has no use for: the
	 * kernel keeps no timestamps of FUSE inodes to write lazily nor an
	 * i_version, and Linux has had no mandatory locks since 5.15 */
	static const char *const ignored[] = {
		"lazytime", "nolazytime", "iversion", "noiversion", "mand", "nomand",
	};
	const char *eq = strchr(opt, '=');
	const char *val = eq ? eq + 1 : NULL;
	size_t klen = eq ? (size_t)(eq - opt) : strlen(opt);
	unsigned long long v;

#define IS(k) (klen == strlen(k) && !strncmp(opt, k, klen))
	if (!*opt)
		return 0;
	if (IS("ro") && !val) {
		o->so.readonly = true;
		p->readonly = true;
	} else if (IS("rw") && !val) {
		o->so.readonly = false;
		p->readonly = false;
	} else if (IS("allow_other") && !val) {
		o->allow_other = true;
	} else if (IS("default_permissions") && !val) {
		/* always */
	} else if (IS("writeback") && !val) {
		p->writeback = true;
	} else if (IS("nowriteback") && !val) {
		p->writeback = false;
	} else if (IS("relatime") && !val) {
		p->atime = POSFS_ATIME_RELATIME;
	} else if (IS("noatime") && !val) {
		p->atime = POSFS_ATIME_NOATIME;
	} else if (IS("strictatime") && !val) {
		p->atime = POSFS_ATIME_STRICTATIME;
	} else if (IS("nodiratime") && !val) {
		p->nodiratime = true;
	} else if (IS("diratime") && !val) {
		p->nodiratime = false;
	} else if (IS("remount")) {
		fprintf(stderr, "%s: remount is mount(8)'s: mount -o remount,ro DIR "
			"(or remount,rw) through mount.posfs\n", prog);
		return -1;
	} else if (IS("cache_blocks") && val && !parse_uint(val, UINT32_MAX, &v) && v) {
		o->so.cache_blocks = (uint32_t)v;
	} else if (IS("onode_cache") && val && !parse_uint(val, UINT32_MAX, &v) && v) {
		o->so.onode_cache = (uint32_t)v;
	} else if (IS("small_write") && val && !parse_uint(val, 1u << 20, &v)) {
		o->so.small_write = (uint32_t)v;
	} else if (IS("uring") && !val) {
		o->uring.mode = PFS_URING_ON;
	} else if (IS("uring") && !strcmp(val, "enable")) {
		o->uring.mode = PFS_URING_ENABLE;
	} else if (IS("nouring") && !val) {
		o->uring.mode = PFS_URING_OFF;
	} else if (IS("uring_threads") && val && !parse_uint(val, PFS_URING_THREADS_MAX, &v) && v) {
		o->uring.threads = (unsigned)v;
	} else if (IS("poll") && !val) {
		o->uring.poll_us = PFS_URING_POLL_DEFAULT_US;
	} else if (IS("poll") && !parse_uint(val, PFS_URING_POLL_MAX_US, &v)) {
		o->uring.poll_us = (unsigned)v;
	} else if (IS("threads") && val && !parse_uint(val, 1024, &v) && v) {
		o->threads = (unsigned)v;
	} else if (IS("compress") && (!val || !strcmp(val, "zstd"))) {
		o->so.compress = 1;
	} else if (IS("compress") && !strcmp(val, "none")) {
		o->so.compress = -1;
	} else if (IS("compress_level") && val &&
		   !parse_uint(val, POSFS_COMPRESS_LEVEL_MAX, &v) && v) {
		o->so.compress_level = (int)v;
	} else if (IS("discard") && !val) {
		o->so.discard = true;
	} else if (IS("nodiscard") && !val) {
		o->so.discard = false;
	} else if (IS("readahead") && val && !parse_uint(val, 1u << 20, &v)) {
		p->readahead_kb = v;
	} else if (IS("entry_timeout") && val && !parse_secs(val, &p->entry_timeout)) {
		;
	} else if (IS("attr_timeout") && val && !parse_secs(val, &p->attr_timeout)) {
		;
	} else {
		for (size_t i = 0; i < sizeof(ignored) / sizeof(ignored[0]); i++) {
			if (!val && IS(ignored[i]))
				return 0;
		}
		for (size_t i = 0; i < sizeof(passed) / sizeof(passed[0]); i++) {
			if (!val && IS(passed[i])) {
				if (strstr(passed[i], "suid"))
					o->suid_set = true;
				else if (strstr(passed[i], "dev"))
					o->dev_set = true;
				return fuse_opt_add_opt(&o->kopts, opt) ? -1 : 0;
			}
		}
		fprintf(stderr, "%s: bad mount option '%s'\n", prog, opt);
		return -1;
	}
#undef IS
	return 0;
}

static int parse_opts(struct pfs_daemon *p, struct opts *o, const char *list)
{
	char *copy = strdup(list), *save = NULL, *tok;
	int ret = 0;

	if (!copy)
		return -1;
	for (tok = strtok_r(copy, ",", &save); tok && !ret; tok = strtok_r(NULL, ",", &save))
		ret = parse_one(p, o, tok);
	free(copy);
	return ret;
}

static int parse_args(int argc, char **argv, struct pfs_daemon *p, struct opts *o)
{
	int c;

	while ((c = getopt(argc, argv, "fdso:hV")) != -1) {
		switch (c) {
		case 'f':
			o->foreground = true;
			break;
		case 'd':
			o->debug = o->foreground = true;
			break;
		case 's':
			o->single = true;
			break;
		case 'o':
			if (parse_opts(p, o, optarg))
				return 2;
			break;
		case 'h':
			usage(stdout);
			exit(0);
		case 'V':
			printf("%s %s (libfuse %s)\n", prog, PACKAGE_VERSION, fuse_pkgversion());
			exit(0);
		default:
			return 2;
		}
	}
	if (argc - optind != 2) {
		fprintf(stderr, "%s: %s\n", prog,
			argc - optind < 2 ? "DEVICE and MOUNTPOINT are needed" : "too many arguments");
		return 2;
	}
	o->device = argv[optind];
	o->mountpoint = argv[optind + 1];
	/*
	 * libfuse mounts nosuid,nodev unless told otherwise; mounted by root
	 * (really: not a user's mount through a set-user-ID mount(8)), the
	 * defaults are mount(8)'s, as for ext4: set-ID bits and device nodes
	 * work unless the options say nosuid or nodev.
	 */
	if (getuid() == 0 && geteuid() == 0 &&
	    ((!o->suid_set && fuse_opt_add_opt(&o->kopts, "suid")) ||
	     (!o->dev_set && fuse_opt_add_opt(&o->kopts, "dev")))) {
		fprintf(stderr, "%s: out of memory\n", prog);
		return 1;
	}
	return 0;
}

/* What is damaged, plainly, with what to do about it. */
static void damage_error(const char *dev, const struct pfs_store_damage *d)
{
	char what[256];

	pfs_store_damage_str(d, what, sizeof(what));
	switch (d->kind) {
	case PFS_DAMAGE_NOT_POSFS:
		pfs_log(LOG_ERR, "%s: not a posfs file system (no posfs superblock)", dev);
		break;
	case PFS_DAMAGE_SIZE:
		pfs_log(LOG_ERR, "%s: %s (was the device truncated?)", dev, what);
		break;
	default:
		pfs_log(LOG_ERR, "%s: %s%s: run fsck.posfs %s", dev, what,
			  d->marked ? "; the file system is marked as having errors" : "", dev);
		break;
	}
}

/* A clear message for each way pfs_store_open fails. */
static void store_open_error(const char *dev, int ret, const struct pfs_store_damage *d)
{
	struct pfs_dev_use use;

	switch (ret) {
	case -EBUSY:
		if (pfs_dev_in_use(dev, &use) == 0 && use.state == PFS_DEV_BUSY)
			pfs_log(LOG_ERR, "%s is in use: %s", dev, use.why);
		else
			pfs_log(LOG_ERR, "%s is in use (already mounted?)", dev);
		break;
	case -EOPNOTSUPP:
		pfs_log(LOG_ERR, "%s has incompatible features this posfs does not know: "
			  "a newer posfs is needed", dev);
		break;
	case -EROFS:
		pfs_log(LOG_ERR, "%s has read-only-compatible features this posfs does not "
			  "know: mount it with -o ro, or use a newer posfs", dev);
		break;
	case -EBADMSG:
	case -EUCLEAN:
		damage_error(dev, d);
		break;
	case -EINVAL:
		pfs_log(LOG_ERR, "cannot open %s: %s (not a posfs image or device?)", dev,
			  strerror(-ret));
		break;
	default:
		pfs_log(LOG_ERR, "cannot open %s: %s", dev, strerror(-ret));
		break;
	}
}

/* Step 2: returns in the child (or at once with -f); *status_fd is where
 * the child writes its word. The parent exits here. */
static void fork_daemon(int *status_fd)
{
	int fds[2];
	char word;
	pid_t pid;

	if (pipe(fds)) {
		pfs_log(LOG_ERR, "pipe: %s", strerror(errno));
		exit(1);
	}
	pid = fork();
	if (pid < 0) {
		pfs_log(LOG_ERR, "fork: %s", strerror(errno));
		exit(1);
	}
	if (pid > 0) {
		close(fds[1]);
		if (read(fds[0], &word, 1) != 1)
			exit(1);	/* the child died before its word */
		exit(word ? 1 : 0);
	}
	close(fds[0]);
	if (setsid() < 0)
		pfs_log(LOG_WARNING, "setsid: %s", strerror(errno));
	*status_fd = fds[1];
}

/* Step 5 for a daemon: tell the parent, leave the terminal. */
static void daemon_ready(int status_fd)
{
	char word = 0;
	int nullfd;

	if (status_fd < 0)
		return;
	openlog(prog, LOG_PID, LOG_DAEMON);
	use_syslog = true;
	if (chdir("/"))
		pfs_log(LOG_WARNING, "chdir /: %s", strerror(errno));
	nullfd = open("/dev/null", O_RDWR);
	if (nullfd >= 0) {
		dup2(nullfd, 0);
		dup2(nullfd, 1);
		dup2(nullfd, 2);
		if (nullfd > 2)
			close(nullfd);
	}
	if (write(status_fd, &word, 1) != 1)
		pfs_log(LOG_WARNING, "cannot reach the parent: %s", strerror(errno));
	close(status_fd);
}

/* A data block that failed its checksum (the read or write fails with
 * EIO); the store reports each block once. */
static void data_error_log(void *arg, uint64_t oid, uint64_t off, uint64_t blkno)
{
	const char *device = arg;

	pfs_log(LOG_ERR,
		  "%s: data checksum mismatch: inode %" PRIu64 ", offset %" PRIu64
		  ", device block %" PRIu64 " (run fsck.posfs -D to list damaged files)",
		  device, oid, off, blkno);
}

/* Requests are being served: damage met before is told by the mount's
 * own failure message. */
static bool serving;

/* Corrupt metadata of one inode (what fails with EUCLEAN); the store
 * reports each inode once. */
static void object_error_log(void *arg, uint64_t oid, const char *what)
{
	const char *device = arg;

	if (!__atomic_load_n(&serving, __ATOMIC_RELAXED))
		return;
	pfs_log(LOG_ERR, "%s: inode %" PRIu64 " is damaged: %s (unmount and run fsck.posfs)",
		  device, oid, what);
}

static int run(struct pfs_daemon *p, struct opts *o, int status_fd)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	struct pfs_store_damage damage;
	struct fuse_loop_config *cfg = NULL;
	struct fuse_session *se = NULL;
	char *fopts = NULL;
	char fsname[PATH_MAX + 8];
	bool mounted = false;
	dev_t devno = 0;
	int ret, status = 1;

	o->so.data_error = data_error_log;
	o->so.data_error_arg = (void *)o->device;
	o->so.object_error = object_error_log;
	o->so.object_error_arg = (void *)o->device;
	o->so.damage = &damage;
	ret = pfs_store_open(o->device, &o->so, &p->st);
	if (ret) {
		store_open_error(o->device, ret, &damage);
		goto out;
	}
	ret = pfs_fs_open(p->st, &p->fs);
	if (ret == -EUCLEAN || ret == -EBADMSG) {
		/* the store's own damage, or the namespace's: the root or
		 * an orphan list is not what it must be */
		pfs_store_report_damage(p->st, PFS_DAMAGE_METADATA, 0,
					"the root directory or an orphan list");
		pfs_store_damage(p->st, &damage);
		damage_error(o->device, &damage);
		goto out;
	}
	if (ret) {
		pfs_log(LOG_ERR, "%s: cannot start the file system: %s", o->device,
			  strerror(-ret));
		goto out;
	}
	if (pfs_itable_init()) {
		pfs_log(LOG_ERR, "out of memory");
		goto out;
	}

	snprintf(fsname, sizeof(fsname), "fsname=%s", o->device);
	if (fuse_opt_add_opt_escaped(&fopts, fsname) ||
	    fuse_opt_add_opt(&fopts, "subtype=posfs,default_permissions") ||
	    (o->allow_other && fuse_opt_add_opt(&fopts, "allow_other")) ||
	    (p->readonly && fuse_opt_add_opt(&fopts, "ro")) ||
	    /* the daemon applies the atime policy itself (the kernel updates
	     * no atime on FUSE); libfuse knows noatime, not strictatime */
	    (p->atime == POSFS_ATIME_NOATIME && fuse_opt_add_opt(&fopts, "noatime")) ||
	    (o->kopts && fuse_opt_add_opt(&fopts, o->kopts)) ||
	    fuse_opt_add_arg(&args, prog) || fuse_opt_add_arg(&args, "-o") ||
	    fuse_opt_add_arg(&args, fopts) || (o->debug && fuse_opt_add_arg(&args, "-d"))) {
		pfs_log(LOG_ERR, "out of memory");
		goto out;
	}
	se = fuse_session_new(&args, &pfs_ops, sizeof(pfs_ops), p);
	if (!se) {
		pfs_log(LOG_ERR, "cannot set up the FUSE session");
		goto out;
	}
	p->se = se;
	if (pfs_uring_configure(se, &o->uring))
		goto out;
	if (fuse_set_signal_handlers(se)) {
		pfs_log(LOG_ERR, "cannot install signal handlers");
		goto out;
	}
	if (fuse_session_mount(se, o->mountpoint)) {
		pfs_log(LOG_ERR, "cannot mount %s on %s", o->device, o->mountpoint);
		goto out_signals;
	}
	mounted = true;
	devno = pfs_mount_devno(o->mountpoint);
	ret = pfs_wire_attach(se);
	if (ret) {
		pfs_log(LOG_ERR, "cannot hook the FUSE device: %s", strerror(-ret));
		goto out_signals;
	}
	pfs_utab_add(o->device, o->mountpoint);
	__atomic_store_n(&serving, true, __ATOMIC_RELAXED);
	daemon_ready(status_fd);
	status_fd = -1;
	pfs_log(LOG_INFO, "%s mounted on %s", o->device, o->mountpoint);

	if (o->single) {
		ret = fuse_session_loop(se);
	} else {
		cfg = fuse_loop_cfg_create();
		if (!cfg) {
			pfs_log(LOG_ERR, "out of memory");
			goto out_signals;
		}
		fuse_loop_cfg_set_max_threads(cfg, o->threads);
		fuse_loop_cfg_set_clone_fd(cfg, 0);
		ret = fuse_session_loop_mt(se, cfg);
	}
	pfs_uring_stop();
	status = ret < 0 ? 1 : 0;
	if (ret < 0)
		pfs_log(LOG_ERR, "request loop: %s", strerror(-ret));
out_signals:
	if (mounted) {
		/*
		 * Only while the connection lives: once the last mount of it is
		 * gone, the kernel gives devno to the next FUSE mount, another
		 * daemon's, which must not be touched.
		 */
		struct pollfd pf = { .fd = fuse_session_fd(se), .events = POLLIN };

		if (poll(&pf, 1, 0) >= 0 && !(pf.revents & (POLLERR | POLLHUP | POLLNVAL)))
			pfs_unmount_binds(devno, o->device, o->mountpoint);
		fuse_session_unmount(se);
		pfs_utab_remove(o->device, o->mountpoint);
	}
	fuse_remove_signal_handlers(se);
out:
	if (se)
		fuse_session_destroy(se);
	if (cfg)
		fuse_loop_cfg_destroy(cfg);
	pfs_fs_close(p->fs);
	p->fs = NULL;
	if (p->st) {
		ret = pfs_store_close(p->st);
		p->st = NULL;
		if (ret) {
			pfs_log(LOG_ERR, "%s: closing the store: %s", o->device, strerror(-ret));
			status = 1;
		} else if (mounted) {
			pfs_log(LOG_INFO, "%s unmounted cleanly", o->device);
		}
	}
	pfs_itable_fini();
	fuse_opt_free_args(&args);
	free(fopts);
	if (status_fd >= 0) {
		char word = 1;

		if (write(status_fd, &word, 1) != 1)
			status = 1;
		close(status_fd);
	}
	return status;
}

int main(int argc, char **argv)
{
	const char *base = strrchr(argv[0], '/');
	struct pfs_daemon p = { .entry_timeout = 1.0, .attr_timeout = 1.0, .readahead_kb = 1024 };
	struct opts o = { .threads = 10 };
	char dev[PATH_MAX], mp[PATH_MAX], found[PATH_MAX];
	struct stat st;
	int status_fd = -1, ret;

	base = base ? base + 1 : argv[0];
	if (!strncmp(base, "mount.", 6))
		return pfs_mount_helper(argc, argv);
	if (!strncmp(base, "umount.", 7))
		return pfs_umount_helper(argc, argv);
	/*
	 * The daemon is posfs wherever one looks (ps, top, pgrep -x posfs,
	 * systemd): mount.posfs runs it as /proc/self/exe, whose name the
	 * kernel would show ("exe"); argv[0] is posfs already. Before any
	 * thread: they take the name from here.
	 */
	(void)prctl(PR_SET_NAME, "posfs", 0, 0, 0);
	/*
	 * Every request allocates and frees a little (transactions, block
	 * before-images): with glibc's default trimming, each loop thread's
	 * heap grows and shrinks again per request (an mprotect call each
	 * time). Keep what was freed for reuse instead.
	 */
	mallopt(M_TRIM_THRESHOLD, 64 << 20);
	mallopt(M_TOP_PAD, 1 << 20);

	ret = parse_args(argc, argv, &p, &o);
	if (ret) {
		usage(stderr);
		return ret;
	}
	ret = pfs_find_fs_msg(prog, o.device, found, sizeof(found));
	if (ret < 0)
		return 1;
	if (ret == 0)
		o.device = found;
	if (!realpath(o.device, dev)) {
		fprintf(stderr, "%s: cannot open %s: %s\n", prog, o.device, strerror(errno));
		return 1;
	}
	if (!realpath(o.mountpoint, mp) || stat(mp, &st)) {
		fprintf(stderr, "%s: bad mount point %s: %s\n", prog, o.mountpoint, strerror(errno));
		return 1;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "%s: bad mount point %s: %s\n", prog, o.mountpoint,
			strerror(ENOTDIR));
		return 1;
	}
	o.device = dev;
	o.mountpoint = mp;
	ret = pfs_bind_existing(prog, dev, mp, o.so.readonly, o.kopts);
	if (ret <= 0)
		return ret ? 1 : 0;
	p.mountpoint = mp;
	p.debug = o.debug;
	if (!o.foreground)
		fork_daemon(&status_fd);
	return run(&p, &o, status_fd);
}
