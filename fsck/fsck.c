/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * fsck.posfs: check and repair a posfs, with the options, the answers,
 * the progress lines and the exit codes of e2fsck and fsck(8). The checking
 * is libposfs's (include/posfs/check.h); this program decides what to
 * answer, shows it, keeps the undo file and refuses what is unsafe.
 *
 * Exit status (fsck(8)): 0 no problems, 1 problems corrected, 4 problems
 * left (or, with -D, files whose data is damaged: fsck has no repair for
 * those), 8 operational error, 16 usage error, 32 cancelled by the user.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "posfs/check.h"
#include "posfs/disk.h"
#include "posfs/io.h"

#define FSCK_OK		0
#define FSCK_FIXED	1
#define FSCK_LEFT	4
#define FSCK_ERROR	8
#define FSCK_USAGE	16
#define FSCK_CANCELED	32

static const char *prog = "fsck.posfs";

enum answer_mode { ASK, PREEN, YES, NO };

struct fsck {
	const char *device;
	enum answer_mode mode;
	bool force, verbose;
	bool deep;			/* -D, -E deep: pass 4 reads the data */
	int progress_fd;		/* -C: -1 none, 0 a bar on stdout */
	const char *undo_path;		/* -z */
	struct pfs_undo *undo;
	struct pfs_dev *undo_dev;	/* the device as the undo file reads it */
	const char *scratch_dir;	/* -E scratch_dir= */
	uint64_t max_memory;		/* -E max_memory= */
	bool preen_halt;		/* -p met a problem it must not fix */
	bool all_yes, all_no;		/* interactive: 'a' answered */
	struct timespec last_progress;
	int last_pass;
	bool bar_drawn;
};

static void usage(void) __attribute__((noreturn));
static void usage(void)
{
	fprintf(stderr,
		"Usage: %s [-panyrfvVD] [-C fd] [-z undo_file] [-E extended-options] device\n"
		"       %s --undo undo_file [-f] device\n"
		"       %s --list-problems\n"
		"  -p, -a  fix what is safe to fix without asking\n"
		"  -n      change nothing, answer no to every question\n"
		"  -y      answer yes to every question\n"
		"  -r      ask (the default on a terminal)\n"
		"  -f      check even if the file system seems clean\n"
		"  -v      verbose\n"
		"  -V      print the version and exit\n"
		"  -D      deep: read every file's data and verify its checksums\n"
		"  -C fd   progress lines to file descriptor fd (0: a bar on the terminal)\n"
		"  -z file save every block before it is overwritten, for --undo\n"
		"  -E scratch_dir=DIR,max_memory=SIZE\n"
		"          keep fsck's maps in DIR once they outgrow SIZE bytes (K, M, G)\n"
		"  -E deep the same as -D\n",
		prog, prog, prog);
	exit(FSCK_USAGE);
}

static void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void die(int code, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(code);
}

/* ---- SIGINT: the store is crash safe, so stopping is a crash at worst --- */

static void on_signal(int sig)
{
	static const char msg[] = "\nfsck.posfs: cancelled\n";

	(void)sig;
	if (write(STDERR_FILENO, msg, sizeof(msg) - 1) < 0)
		_exit(FSCK_CANCELED);
	_exit(FSCK_CANCELED);
}

/* ---- devices ------------------------------------------------------------------ */

static int undo_hook(void *arg, struct pfs_dev *inner, uint64_t off, size_t len)
{
	return pfs_undo_save(arg, inner, off, len);
}

static int open_dev(void *arg, bool readonly, struct pfs_dev **devp)
{
	struct fsck *f = arg;
	struct pfs_dev_opts o = { .readonly = readonly, .exclusive = !readonly };
	struct pfs_dev *dev;
	int ret = pfs_dev_open(f->device, &o, &dev);

	if (ret)
		return ret;
	if (readonly || !f->undo) {
		*devp = dev;
		return 0;
	}
	{
		struct pfs_dev_hook hook = { undo_hook, f->undo };

		ret = pfs_dev_hook_wrap(dev, &hook, devp);
	}
	if (ret)
		pfs_dev_close(dev);
	return ret;
}

/* What holds path (mounted, claimed, a loop device over the same file
 * busy: include/posfs/io.h), or NULL. */
static const char *in_use(const char *path, struct pfs_dev_use *use)
{
	if (pfs_dev_in_use(path, use) != 0 || use->state != PFS_DEV_BUSY)
		return NULL;
	return use->why;
}

/* ---- answers ------------------------------------------------------------------- */

static bool ask_terminal(struct fsck *f, const char *question)
{
	char buf[64];

	if (f->all_yes || f->all_no) {
		printf("%s? %s\n\n", question, f->all_yes ? "yes" : "no");
		return f->all_yes;
	}
	for (;;) {
		printf("%s<y>? ", question);
		fflush(stdout);
		if (!fgets(buf, sizeof(buf), stdin)) {
			printf("\n");
			die(FSCK_CANCELED, "no answer: cancelled");
		}
		switch (buf[0]) {
		case 'y': case 'Y': case '\n':
			printf("yes\n\n");
			return true;
		case 'n': case 'N':
			printf("no\n\n");
			return false;
		case 'a': case 'A':
			f->all_yes = true;
			printf("yes to all\n\n");
			return true;
		default:
			printf("answer y (yes), n (no) or a (yes to all)\n");
		}
	}
}

/* Damage fsck has no repair for (file data): said, never asked, and no
 * reason for preen to stop. */
static bool tell(struct fsck *f, const struct pfs_problem_desc *d, const char *msg)
{
	if (f->mode == PREEN)
		printf("%s: %s: %s (problem %#06x): restore the file from a backup.\n",
		       f->device, msg, d->what, d->code);
	else
		printf("%s: %s (problem %#06x).\nRestore the file from a backup.\n\n", msg,
		       d->what, d->code);
	return false;
}

/* The fix as a question: "Rebuild it?" */
static bool ask(void *arg, const struct pfs_problem_desc *d, const char *msg)
{
	struct fsck *f = arg;
	bool fix;

	if (f->bar_drawn) {
		printf("\r%*s\r", 72, "");
		f->bar_drawn = false;
	}
	if (!d->fix)
		return tell(f, d, msg);
	switch (f->mode) {
	case PREEN:
		if (!d->preen) {
			printf("%s: %s: %s (problem %#06x).\n", f->device, msg, d->what, d->code);
			f->preen_halt = true;
			return false;
		}
		printf("%s: %s: %s (problem %#06x). FIXED: %s.\n", f->device, msg, d->what,
		       d->code, d->fix);
		return true;
	case YES:
	case NO:
		fix = f->mode == YES;
		printf("%s: %s (problem %#06x).\n%c%s? %s\n\n", msg, d->what, d->code,
		       d->fix[0] >= 'a' && d->fix[0] <= 'z' ? d->fix[0] - 'a' + 'A' : d->fix[0],
		       d->fix + 1, fix ? "yes" : "no");
		return fix;
	default:
		printf("%s: %s (problem %#06x).\n", msg, d->what, d->code);
		{
			char q[256];

			snprintf(q, sizeof(q), "%c%s",
				 d->fix[0] >= 'a' && d->fix[0] <= 'z' ? d->fix[0] - 'a' + 'A' :
				 d->fix[0], d->fix + 1);
			return ask_terminal(f, q);
		}
	}
}

static void info(void *arg, const char *msg)
{
	struct fsck *f = arg;

	(void)f;
	fprintf(stderr, "%s: %s\n", f->device, msg);
}

/* e2fsck's line for a check that was not asked for with -f. */
static void forced(void *arg, const char *why)
{
	struct fsck *f = arg;

	if (f->force)
		return;
	printf("%s %s, check forced.\n", f->device, why);
	fflush(stdout);
}

static void progress(void *arg, enum pfs_check_pass pass, uint64_t cur, uint64_t max)
{
	struct fsck *f = arg;
	struct timespec now;
	bool pass_change = (int)pass != f->last_pass;
	char line[128];
	int n;

	if (pass_change && f->mode != PREEN) {
		if (f->bar_drawn) {
			printf("\r%*s\r", 72, "");
			f->bar_drawn = false;
		}
		for (int p = f->last_pass + 1; p <= (int)pass; p++)
			printf("%s\n", pfs_check_pass_name((enum pfs_check_pass)p));
		fflush(stdout);
	}
	f->last_pass = (int)pass;
	if (f->progress_fd < 0)
		return;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!pass_change && cur < max &&
	    (now.tv_sec - f->last_progress.tv_sec) * 1000 +
	    (now.tv_nsec - f->last_progress.tv_nsec) / 1000000 < 100)
		return;		/* at most ten lines a second */
	f->last_progress = now;
	if (f->progress_fd > 0) {
		/* fsck(8) and systemd-fsck read "pass current max device" */
		n = snprintf(line, sizeof(line), "%d %" PRIu64 " %" PRIu64 " %s\n", (int)pass + 1,
			     cur, max, f->device);
		if (n > 0 && write(f->progress_fd, line, (size_t)n) < 0)
			f->progress_fd = -1;
		return;
	}
	if (isatty(STDOUT_FILENO)) {
		int width = 40, done = max ? (int)(cur * (uint64_t)width / max) : width;

		printf("\r%s: |%.*s%*s| %5.1f%%", f->device, done,
		       "========================================", width - done, "",
		       max ? 100.0 * (double)cur / (double)max : 100.0);
		fflush(stdout);
		f->bar_drawn = true;
	}
}

/* ---- options ------------------------------------------------------------------- */

static uint64_t parse_size(const char *s)
{
	uint64_t v;

	if (pfs_parse_size(s, 1, &v))
		die(FSCK_USAGE, "bad size '%s' (a number with K, M, G or T)", s);
	return v;
}

static void parse_extended(struct fsck *f, char *arg)
{
	for (char *tok = strtok(arg, ","); tok; tok = strtok(NULL, ",")) {
		char *val = strchr(tok, '=');

		if (val)
			*val++ = 0;
		if (!strcmp(tok, "scratch_dir") && val && *val)
			f->scratch_dir = val;
		else if (!strcmp(tok, "max_memory") && val)
			f->max_memory = parse_size(val);
		else if (!strcmp(tok, "deep") && !val)
			f->deep = true;
		else
			die(FSCK_USAGE, "unknown extended option '%s' (scratch_dir=DIR, "
			    "max_memory=SIZE, deep)", tok);
	}
}

static void list_problems(void)
{
	unsigned n;
	const struct pfs_problem_desc *d = pfs_problem_table(&n);

	for (unsigned i = 0; i < n; i++)
		printf("%#06x %-14s %-5s %s; repair: %s\n", d[i].code, d[i].name,
		       !d[i].fix ? "none" : d[i].preen ? "preen" : "ask", d[i].what,
		       d[i].fix ? d[i].fix : "none (restore the file from a backup)");
}

static int do_undo(const char *undo, const char *device, bool force)
{
	struct pfs_dev_opts o = { .exclusive = true };
	struct pfs_dev_use use;
	struct pfs_dev *dev;
	const char *why;
	uint64_t units = 0;
	int ret;

	why = in_use(device, &use);
	if (why)
		die(FSCK_ERROR, "%s is in use: %s: will not write to it", device, why);
	ret = pfs_dev_open(device, &o, &dev);
	if (ret == -EBUSY)
		die(FSCK_ERROR, "%s is in use (open by another program): will not write to it",
		    device);
	if (ret)
		die(FSCK_ERROR, "cannot open %s: %s", device, strerror(-ret));
	ret = pfs_undo_restore(undo, dev, force, &units);
	if (!ret)
		ret = pfs_dev_flush(dev);
	pfs_dev_close(dev);
	if (ret == -EUCLEAN)
		die(FSCK_ERROR, "%s was not made for %s as it is now (use -f to restore anyway)",
		    undo, device);
	if (ret == -EINVAL)
		die(FSCK_ERROR, "%s is not an undo file", undo);
	if (ret)
		die(FSCK_ERROR, "restoring %s from %s: %s", device, undo, strerror(-ret));
	printf("%s: %" PRIu64 " blocks of %u bytes put back from %s\n", device, units,
	       PFS_UNDO_UNIT, undo);
	return FSCK_OK;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "undo", required_argument, NULL, 'U' },
		{ "list-problems", no_argument, NULL, 'L' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct fsck f = { .mode = ASK, .progress_fd = -1, .last_pass = -1 };
	struct pfs_check_ops ops = {
		.open_dev = open_dev, .ask = ask, .progress = progress, .info = info,
		.forced = forced, .arg = &f,
	};
	struct pfs_check_opts opts = { 0 };
	struct pfs_check_result r;
	struct pfs_dev_use use;
	const char *undo_restore = NULL, *why;
	int c, modes = 0, ret, code;
	char *end;

	while ((c = getopt_long(argc, argv, "panyrfvVDC:z:E:hsc", longopts, NULL)) != -1) {
		switch (c) {
		case 'p':
		case 'a':
			f.mode = PREEN;
			modes |= 1;
			break;
		case 'n':
			f.mode = NO;
			modes |= 2;
			break;
		case 'y':
			f.mode = YES;
			modes |= 4;
			break;
		case 'r':
			break;
		case 'f':
			f.force = true;
			break;
		case 'v':
			f.verbose = true;
			break;
		case 'D':
			f.deep = true;
			break;
		case 'V':
			printf("fsck.posfs %s\n", PACKAGE_VERSION);
			return FSCK_OK;
		case 'C':
			errno = 0;
			f.progress_fd = (int)strtol(optarg, &end, 10);
			if (errno || *end || f.progress_fd < 0)
				die(FSCK_USAGE, "bad file descriptor for -C: '%s'", optarg);
			break;
		case 'z':
			f.undo_path = optarg;
			break;
		case 'E':
			parse_extended(&f, optarg);
			break;
		case 'U':
			undo_restore = optarg;
			break;
		case 'L':
			list_problems();
			return FSCK_OK;
		case 'h':
			usage();
		default:
			usage();
		}
	}
	if (optind != argc - 1)
		usage();
	f.device = argv[optind];
	if (undo_restore)
		return do_undo(undo_restore, f.device, f.force);
	if (modes & (modes - 1))
		die(FSCK_USAGE, "only one of the options -p/-a, -n or -y may be given");
	if (f.mode == ASK && !isatty(STDIN_FILENO))
		die(FSCK_USAGE, "need a terminal for interactive repairs (use -p, -n or -y)");
	if (f.mode == NO && f.undo_path)
		die(FSCK_USAGE, "-z makes no sense with -n: nothing is written");
	if (f.progress_fd > 0 && fcntl(f.progress_fd, F_GETFD) < 0)
		die(FSCK_USAGE, "-C %d: not an open file descriptor", f.progress_fd);
	if (f.progress_fd == 0 && !isatty(STDOUT_FILENO))
		f.progress_fd = -1;
	if (f.scratch_dir) {
		struct stat sd;

		errno = 0;
		if (stat(f.scratch_dir, &sd) || !S_ISDIR(sd.st_mode) ||
		    access(f.scratch_dir, W_OK | X_OK))
			die(FSCK_ERROR, "scratch_dir %s: %s", f.scratch_dir,
			    errno ? strerror(errno) : "not a directory");
	}
	if (f.undo_path && access(f.undo_path, F_OK) == 0)
		die(FSCK_USAGE, "the undo file %s exists already: name a new one", f.undo_path);
	why = in_use(f.device, &use);
	if (why) {
		if (f.mode != NO)
			die(FSCK_ERROR, "%s is in use: %s: will not check it for repair "
			    "(unmount it, or use -n)", f.device, why);
		fprintf(stderr, "%s: warning: %s is in use: %s: a check now may report "
			"problems that are only changes in flight\n", prog, f.device, why);
	}
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);

	opts.readonly = f.mode == NO;
	opts.force = f.force;
	opts.scratch_dir = f.scratch_dir;
	opts.mem_limit = f.max_memory;
	opts.deep = f.deep;
	if (f.undo_path) {
		/* its own descriptor, open until the undo file is closed (not
		 * exclusive: the checker's writable opens take the lock) */
		struct pfs_dev_opts o = { .readonly = true };

		ret = pfs_dev_open(f.device, &o, &f.undo_dev);
		if (ret)
			die(FSCK_ERROR, "cannot open %s: %s", f.device, strerror(-ret));
		ret = pfs_undo_create(f.undo_path, f.undo_dev, &f.undo);
		if (ret)
			die(FSCK_ERROR, "cannot create the undo file %s: %s", f.undo_path,
			    strerror(-ret));
	}
	if (f.mode != PREEN)
		printf("fsck.posfs %s\n", PACKAGE_VERSION);
	ret = pfs_check_run(&opts, &ops, &r);
	if (f.bar_drawn)
		printf("\r%*s\r", 72, "");
	if (f.undo) {
		int uret = pfs_undo_close(f.undo);

		if (uret && !ret)
			ret = uret;
		else if (!uret && f.verbose)
			printf("%s: undo file %s written\n", f.device, f.undo_path);
		pfs_dev_close(f.undo_dev);
	}
	if (ret == -EBUSY) {
		why = in_use(f.device, &use);
		die(FSCK_ERROR, "%s is in use: %s", f.device,
		    why ? why : "open by another program");
	}
	if (ret == -ENOENT || ret == -ENODEV || ret == -EACCES || ret == -EPERM)
		die(FSCK_ERROR, "cannot open %s: %s", f.device, strerror(-ret));
	if (ret == -EOPNOTSUPP || ret == -EROFS)
		die(FSCK_ERROR, "%s has features this fsck.posfs does not know: "
		    "use a newer fsck.posfs", f.device);
	if ((ret == -EBADMSG || ret == -EUCLEAN) && r.damage.kind == PFS_DAMAGE_NOT_POSFS)
		die(FSCK_ERROR, "%s: not a posfs file system (no posfs superblock)", f.device);
	if ((ret == -EBADMSG || ret == -EUCLEAN) && r.damage.kind != PFS_DAMAGE_NONE) {
		char what[256];

		die(FSCK_ERROR, "%s: %s: fsck.posfs cannot repair %s%s", f.device,
		    pfs_store_damage_str(&r.damage, what, sizeof(what)),
		    r.damage.kind == PFS_DAMAGE_SUPER ? "them" : "it",
		    r.damage.marked ? " (the file system is marked as having errors)" : "");
	}
	if (ret == -EBADMSG || ret == -EUCLEAN)
		die(FSCK_ERROR, "%s: damage fsck.posfs cannot repair: no valid superblock, or "
		    "a shard header or journal lost", f.device);
	if (ret)
		die(FSCK_ERROR, "checking %s: %s", f.device, strerror(-ret));

	if (r.skipped) {
		printf("%s: clean, %" PRIu64 "/%" PRIu64 " blocks\n", f.device, r.blocks_used,
		       r.blocks_total);
		return FSCK_OK;
	}
	if (f.verbose)
		printf("\n%12" PRIu64 " regular files\n%12" PRIu64 " directories\n%12" PRIu64
		       " other objects\n%12" PRIu64 " problems found, %" PRIu64 " fixed\n",
		       r.files, r.dirs, r.others, r.found, r.fixed);
	if (f.verbose && r.data_checked)
		printf("%12" PRIu64 " files with damaged data\n", r.damaged_files);
	if (f.verbose && r.maps_on_disk)
		printf("%s: the maps outgrew %" PRIu64 " bytes: kept in LMDB in %s\n", f.device,
		       f.max_memory, f.scratch_dir);
	if (r.fixed && f.mode != PREEN)
		printf("\n%s: ***** FILE SYSTEM WAS MODIFIED *****\n", f.device);
	printf("%s: %" PRIu64 " files, %" PRIu64 " directories, %" PRIu64 "/%" PRIu64
	       " blocks\n", f.device, r.files + r.others, r.dirs, r.blocks_used, r.blocks_total);
	if (f.preen_halt)
		printf("\n%s: UNEXPECTED INCONSISTENCY; RUN fsck MANUALLY.\n"
		       "\t(i.e., without -a or -p options)\n", f.device);
	if (r.damaged_files)
		printf("\n%s: %" PRIu64 " file%s with damaged data (%" PRIu64 " block%s): "
		       "fsck cannot repair data; restore %s from a backup\n", f.device,
		       r.damaged_files, r.damaged_files == 1 ? "" : "s", r.damaged_blocks,
		       r.damaged_blocks == 1 ? "" : "s", r.damaged_files == 1 ? "it" : "them");
	/* damaged data is left uncorrected, whatever the answers */
	code = r.left || r.damaged_files ? FSCK_LEFT : r.fixed ? FSCK_FIXED : FSCK_OK;
	if (r.left && f.mode != NO && f.mode != PREEN)
		printf("\n%s: ********** WARNING: Filesystem still has errors **********\n",
		       f.device);
	return code;
}
