#!/usr/bin/env bash
# fsbench.sh - posfs's workload harness: a fixed set of workloads run on any mounted
# directory (posfs, a kernel file system or another FUSE daemon), so that file systems can
# be compared side by side. tests/bench/bench.sh drives it over posfs and its peers.
#
# usage: fsbench.sh [--quick] [--json OUT] [--label NAME] [--only W1,W2,..] [--meta-n N]
#                   [--no-drop] MOUNTPOINT [DAEMON_PID[,PID...]]
#
# Prints one line per workload: name, value, unit, then client / daemon CPU cost.
#   --quick     smaller sizes / shorter runs (about 1 min instead of 3-5 min)
#   --json OUT  also write all figures (incl. fio latencies, wall and CPU times) as JSON
#   --label     free-form label stored in the JSON (e.g. "ext4" or "posfs@abc123")
#   --only      comma list of workload names (or prefixes) to run; seq_write always runs
#               first when a rand_* / seq_read workload is chosen (they use its files)
#   --meta-n N  files for the meta_* workloads (default 20000, quick 10000). passthrough_ll
#               needs one fd per known inode: under a 20000 RLIMIT_NOFILE use <= 19000
#   --no-drop   do not 'sync; echo 3 > /proc/sys/vm/drop_caches' before each workload
#               (default when root: drop, so reads are cold at every layer of every stack)
#
# Workloads, in order (work files in MOUNTPOINT/fsbench.<pid>/, removed at the end):
#   seq_write_1M    fio psync 1 MiB writes, 4 files x 256 MiB (quick 4 x 64), end_fsync  MB/s
#   seq_read_1M     the same files, cold                                              MB/s
#   rand_write_4k / rand_read_4k   4 psync jobs, 4 KiB random I/O over those files    IOPS
#   rand_write_4k_direct / rand_read_4k_direct   the same with O_DIRECT               IOPS
#   rand_read_4k_uring16_direct    one io_uring job, iodepth 16, O_DIRECT             IOPS
#   dsync_write_4k  4 KiB appends + fdatasync each (p99 latencies in the JSON extra)  IOPS
#   meta_create / meta_stat / meta_readdir / meta_unlink   N empty files in one dir   ops/s
#   tree_untar / tree_rm   extract a tree of ~7,000 small files (built once from
#                   /usr/include and /usr/share/perl), then rm -rf it                 s
#   cp_1g           untimed: fio writes a 1 GiB file (quick 256 MiB; 1 MiB writes,
#                   end_fsync) and caches are dropped; timed: cp SRC DST; sync DST
#                   (coreutils cp tries copy_file_range, which a file system may answer
#                   with a clone). Both files removed afterwards. MB/s in JSON extra  s
#
# DAEMON_PID: its CPU time (all threads) is sampled before/after each workload - per-thread
# schedstat (ns) when no thread exited meanwhile, else utime+stime from /proc/PID/stat
# (10 ms ticks) - and reported as CPU-s per GiB (MB/s rows and cp_1g), per 1k ops, or per
# run (other s rows). Untimed set-up and clean-up steps are outside the samples.
# "client" CPU is the benchmark process's own (fio / fsb_meta / tar / rm / cp, via wait4
# rusage). Kernel threads (loop workers, jbd2, io-wq, kworkers) are in neither; see
# sys_busy_s in the JSON.
#
# Needs: bash, python3, fio, gcc (compiles a small metadata helper once), tar, coreutils.
# Cache (helper binary + source-tree tarball): $FSBENCH_CACHE (default:
# ${TMPDIR:-/tmp}/fsbench-cache); scratch files go to ${TMPDIR:-/tmp}.
set -euo pipefail

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
die() { echo "fsbench.sh: $*" >&2; exit 2; }

QUICK=0 JSON="" LABEL="" ONLY="" DROP=1 METAN=""
while [[ $# -gt 0 ]]; do
	case $1 in
	--quick) QUICK=1 ;;
	--json) JSON=${2:?--json needs a path}; shift ;;
	--label) LABEL=${2:?}; shift ;;
	--only) ONLY=${2:?}; shift ;;
	--no-drop) DROP=0 ;;
	--meta-n) METAN=${2:?}; shift ;;
	-h|--help) usage; exit 0 ;;
	--) shift; break ;;
	-*) die "unknown option $1" ;;
	*) break ;;
	esac
	shift
done
[[ $# -ge 1 && $# -le 2 ]] || { usage >&2; exit 2; }
MNT=$(cd "$1" && pwd -P) || die "no such directory: $1"
PIDS=${2:-}; [[ $PIDS == - ]] && PIDS=
[[ -w $MNT ]] || die "$MNT is not writable"
for t in fio python3 gcc tar; do command -v "$t" >/dev/null || die "missing tool: $t"; done

CACHE=${FSBENCH_CACHE:-${TMPDIR:-/tmp}/fsbench-cache}
mkdir -p "$CACHE"

# ---- metadata helper (compiled once; recompiled when this embedded source changes) ----
META_SRC=$(cat <<'EOF'
/* fsb_meta: metadata phases for fsbench.sh. usage: fsb_meta create|stat|readdir|unlink DIR N
 * prints "<ops> <seconds>" (timing covers only the syscall loop). */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/syscall.h>
static double now(void) { struct timespec t; clock_gettime(CLOCK_MONOTONIC, &t); return t.tv_sec + t.tv_nsec / 1e9; }
int main(int argc, char **argv)
{
	if (argc < 4) { fprintf(stderr, "usage: %s create|stat|readdir|unlink DIR N\n", argv[0]); return 2; }
	const char *ph = argv[1], *dir = argv[2];
	long n = atol(argv[3]), ops = 0;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	if (dfd < 0) { perror(dir); return 1; }
	char name[64];
	double t0 = now();
	if (!strcmp(ph, "create")) {
		for (long i = 0; i < n; i++) {
			snprintf(name, sizeof name, "f%07ld", i);
			int fd = openat(dfd, name, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0644);
			if (fd < 0) { perror(name); return 1; }
			close(fd); ops++;
		}
	} else if (!strcmp(ph, "stat")) {
		struct stat st;
		for (long i = 0; i < n; i++) {
			snprintf(name, sizeof name, "f%07ld", i);
			if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) { perror(name); return 1; }
			ops++;
		}
	} else if (!strcmp(ph, "readdir")) {
		static char buf[1 << 16];
		for (;;) {
			long r = syscall(SYS_getdents64, dfd, buf, sizeof buf);
			if (r < 0) { perror("getdents64"); return 1; }
			if (r == 0) break;
			for (long off = 0; off < r;) {
				unsigned short reclen = *(unsigned short *)(buf + off + 16);
				const char *nm = buf + off + 19;
				if (strcmp(nm, ".") && strcmp(nm, "..")) ops++;
				off += reclen;
			}
		}
		if (n > 0 && ops != n) { fprintf(stderr, "readdir: got %ld entries, want %ld\n", ops, n); return 1; }
	} else if (!strcmp(ph, "unlink")) {
		for (long i = 0; i < n; i++) {
			snprintf(name, sizeof name, "f%07ld", i);
			if (unlinkat(dfd, name, 0) < 0) { perror(name); return 1; }
			ops++;
		}
	} else { fprintf(stderr, "bad phase %s\n", ph); return 2; }
	printf("%ld %.6f\n", ops, now() - t0);
	return 0;
}
EOF
)
META_BIN=$CACHE/fsb_meta
if [[ ! -x $META_BIN || ! -f $CACHE/fsb_meta.c ]] || [[ "$(cat "$CACHE/fsb_meta.c")" != "$META_SRC" ]]; then
	printf '%s\n' "$META_SRC" >"$CACHE/fsb_meta.c"
	gcc -O2 -Wall -o "$META_BIN.tmp" "$CACHE/fsb_meta.c" && mv "$META_BIN.tmp" "$META_BIN"
fi

# ---- small-file tree tarball (built once from local headers + perl modules) ----
TARBALL=${FSBENCH_TARBALL:-$CACHE/tree.tar}
if [[ ! -s $TARBALL ]]; then
	echo "fsbench.sh: building $TARBALL (once)" >&2
	srcs=()
	for d in usr/include usr/share/perl; do [[ -d /$d ]] && srcs+=("$d"); done
	tar -C / --exclude=usr/include/node --sort=name -cf "$TARBALL.tmp" "${srcs[@]}" 2>/dev/null || true
	mv "$TARBALL.tmp" "$TARBALL"
fi

export FSB_MNT=$MNT FSB_PIDS=$PIDS FSB_QUICK=$QUICK FSB_JSON=$JSON FSB_LABEL=$LABEL \
	FSB_ONLY=$ONLY FSB_DROP=$DROP FSB_METAN=$METAN FSB_META=$META_BIN FSB_TAR=$TARBALL
exec python3 - <<'PYEOF'
import atexit, json, os, signal, sys, time, subprocess, shutil, datetime, socket, platform

E = os.environ
MNT, QUICK, DROP = E["FSB_MNT"], E["FSB_QUICK"] == "1", E["FSB_DROP"] == "1"
PIDS = [int(p) for p in E["FSB_PIDS"].split(",") if p.strip()]
ONLY = [w for w in E["FSB_ONLY"].split(",") if w]
META, TARBALL = E["FSB_META"], E["FSB_TAR"]
CLK = os.sysconf("SC_CLK_TCK")
GiB = 1 << 30

# ---- parameters -------------------------------------------------------------------------
if QUICK:
    SEQ_TOTAL, RAND_IO_PER_JOB, RAND_CAP, DSYNC_T, META_N = 256 << 20, 16 << 20, 10, 4, 10000
else:
    SEQ_TOTAL, RAND_IO_PER_JOB, RAND_CAP, DSYNC_T, META_N = 1 << 30, 128 << 20, 30, 10, 20000
CP_SIZE = (256 << 20) if QUICK else GiB
if E.get("FSB_METAN"):
    META_N = int(E["FSB_METAN"])
NJ = 4                      # psync jobs for the random workloads, one file each
PER_FILE = SEQ_TOTAL // NJ  # seq_write writes NJ files; rand_* jobs reuse one each
if DROP and os.geteuid() != 0:
    DROP = False
    print("# note: not root -> page/dentry caches are NOT dropped between workloads", file=sys.stderr)

WD = os.path.join(MNT, "fsbench.%d" % os.getpid())
os.mkdir(WD)
TMP = os.path.join(E.get("TMPDIR") or "/tmp", "fsbench-tmp.%d" % os.getpid())
os.mkdir(TMP)
atexit.register(shutil.rmtree, TMP, True)   # also when stopped by SIGTERM or SIGINT

def on_term(signum, frame):
    raise SystemExit(128 + signum)
signal.signal(signal.SIGTERM, on_term)

def fstype(path):
    best = ("?", "?", "")
    for line in open("/proc/self/mountinfo"):
        f = line.split()
        mp = f[4].replace("\\040", " ")
        sep = f.index("-")
        if (path == mp or path.startswith(mp.rstrip("/") + "/")) and len(mp) >= len(best[2]):
            best = (f[sep + 1], f[sep + 2], mp)
    return best

def daemon_sample():
    """(utime+stime of all PIDS from /proc/PID/stat [10ms ticks, includes exited threads],
        sum of per-thread schedstat run time [ns precision, live threads only], tid set)"""
    if not PIDS:
        return None
    st, ns, tids = 0.0, 0, set()
    for p in PIDS:
        try:
            s = open("/proc/%d/stat" % p).read()
        except OSError:
            return None
        f = s[s.rindex(")") + 2:].split()
        st += (int(f[11]) + int(f[12])) / CLK   # utime, stime (fields 14, 15)
        try:
            for t in os.listdir("/proc/%d/task" % p):
                try:
                    ns += int(open("/proc/%d/task/%s/schedstat" % (p, t)).read().split()[0])
                    tids.add((p, t))
                except (OSError, ValueError, IndexError):
                    pass
        except OSError:
            pass
    return st, ns / 1e9, tids

def daemon_delta(a, b):
    """precise schedstat delta if no thread that existed at 'a' is gone at 'b', else ticks"""
    if a is None or b is None:
        return None, None
    if a[2] and a[2] <= b[2]:
        return b[1] - a[1], "schedstat"
    return b[0] - a[0], "stat"

def sys_busy():
    """machine-wide (busy CPU-s excluding steal, steal CPU-s) from /proc/stat"""
    f = [int(x) for x in open("/proc/stat").readline().split()[1:]]
    return ((f[0] + f[1] + f[2] + f[5] + f[6]) / CLK, f[7] / CLK)

def drop_caches():
    if not DROP:
        return
    os.sync()
    with open("/proc/sys/vm/drop_caches", "w") as fh:
        fh.write("3\n")

def run(argv, cwd=None):
    """run a command, return (rc, wall_s, cpu_s of it and its waited children, stderr tail)"""
    errf = open(os.path.join(TMP, "stderr"), "w+")
    t0 = time.monotonic()
    p = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL, stdout=errf, stderr=errf)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.monotonic() - t0
    p.returncode = os.waitstatus_to_exitcode(status)
    errf.seek(0)
    err = errf.read()[-2000:]
    errf.close()
    return p.returncode, wall, ru.ru_utime + ru.ru_stime, err

def fio(name, *opts):
    out = os.path.join(TMP, name + ".json")
    rc, wall, cpu, err = run(["fio", "--output-format=json", "--output=" + out,
                              "--directory=" + WD, "--ioengine=psync", "--group_reporting"] + list(opts))
    if rc != 0:
        lines = [l for l in err.splitlines() if l.strip()] or ["rc=%d" % rc]
        msg = next((l for l in lines if "error" in l.lower() or "invalid" in l.lower()), lines[-1])
        raise RuntimeError("fio: " + msg.strip()[:200])
    j = json.load(open(out))
    jobs = j["jobs"]
    if any(jb.get("error") for jb in jobs):
        raise RuntimeError("fio job error %s" % [jb.get("error") for jb in jobs])
    return jobs[0], wall, cpu

def pct(lat, p="99.000000"):
    try:
        return lat["percentile"][p] / 1000.0
    except (KeyError, TypeError):
        return None

# ---- workloads --------------------------------------------------------------------------
# each returns dict(value, unit, ops|bytes, extra) plus wall/cpu measured by harness
def w_seq_write():
    jb, wall, cpu = fio("seq_write", "--name=seq", "--rw=write", "--bs=1M", "--nrfiles=%d" % NJ,
                        "--size=%d" % SEQ_TOTAL, "--file_service_type=sequential",
                        "--fallocate=none", "--end_fsync=1")
    d = jb["write"]
    return dict(value=d["bw_bytes"] / 1e6, unit="MB/s", bytes=d["io_bytes"], wall=wall, cpu=cpu,
                extra=dict(runtime_ms=d["runtime"]))

def w_seq_read():
    jb, wall, cpu = fio("seq_read", "--name=seq", "--rw=read", "--bs=1M", "--nrfiles=%d" % NJ,
                        "--size=%d" % SEQ_TOTAL, "--file_service_type=sequential")
    d = jb["read"]
    return dict(value=d["bw_bytes"] / 1e6, unit="MB/s", bytes=d["io_bytes"], wall=wall, cpu=cpu,
                extra=dict(runtime_ms=d["runtime"]))

def rand(rw, direct, engine="psync", depth=1, jobs=NJ):
    """4 KiB random I/O over the NJ files written by seq_write, a fixed amount of I/O
    (no block touched twice: fio's random map), capped at RAND_CAP seconds.
    jobs == NJ: one file per job; jobs == 1: one job spreading I/O over all NJ files."""
    def f():
        if jobs == NJ:
            where = ["--numjobs=%d" % NJ, "--filename_format=seq.0.$jobnum",
                     "--size=%d" % PER_FILE, "--io_size=%d" % RAND_IO_PER_JOB]
        else:
            where = ["--filename=" + ":".join("seq.0.%d" % i for i in range(NJ)),
                     "--size=%d" % SEQ_TOTAL, "--io_size=%d" % (NJ * RAND_IO_PER_JOB)]
        opts = ["--name=rand", "--rw=" + rw, "--bs=4k", "--runtime=%d" % RAND_CAP,
                "--ioengine=" + engine, "--iodepth=%d" % depth, "--direct=%d" % direct] + where
        if rw == "randwrite" and not direct:
            opts.append("--end_fsync=1")
        jb, wall, cpu = fio("rand", *opts)
        d = jb["read" if rw == "randread" else "write"]
        return dict(value=d["iops"], unit="IOPS", ops=d["total_ios"], bytes=d["io_bytes"],
                    wall=wall, cpu=cpu,
                    extra=dict(runtime_ms=d["runtime"], clat_p50_us=pct(d["clat_ns"], "50.000000"),
                               clat_p99_us=pct(d["clat_ns"])))
    return f

def w_fdatasync():
    jb, wall, cpu = fio("dsync", "--name=dsync", "--rw=write", "--bs=4k", "--fdatasync=1",
                        "--size=1G", "--runtime=%d" % DSYNC_T, "--fallocate=none")
    d, s = jb["write"], jb["sync"]
    p99s = pct(s["lat_ns"])
    p99w = pct(d["clat_ns"])
    mean_op_us = d["runtime"] * 1000.0 / max(d["total_ios"], 1)
    return dict(value=d["iops"], unit="IOPS", ops=d["total_ios"], bytes=d["io_bytes"], wall=wall,
                cpu=cpu, extra=dict(sync_p99_us=p99s, write_p99_us=p99w, mean_op_us=mean_op_us,
                                    sync_p50_us=pct(s["lat_ns"], "50.000000")),
                note="p99 fdatasync %.0f us, p99 write %.0f us" % (p99s or -1, p99w or -1))

METADIR = os.path.join(WD, "meta")
def meta(phase):
    def f():
        if phase == "create":
            os.mkdir(METADIR)
        rc, wall, cpu, err = run([META, phase, METADIR, str(META_N)])
        if rc != 0:
            raise RuntimeError(err.strip().splitlines()[-1][:200] if err.strip() else "rc=%d" % rc)
        ops, secs = open(os.path.join(TMP, "stderr")).read().split()[:2]
        ops, secs = int(ops), float(secs)
        return dict(value=ops / secs, unit="ops/s", ops=ops, wall=wall, cpu=cpu,
                    extra=dict(loop_s=secs))
    return f

TREEDIR = os.path.join(WD, "tree")
def w_untar():
    os.mkdir(TREEDIR)
    rc, wall, cpu, err = run(["tar", "-xf", TARBALL, "-C", TREEDIR])
    if rc != 0:
        raise RuntimeError("tar: " + err.strip()[-200:])
    return dict(value=wall, unit="s", ops=TAR_FILES, bytes=TAR_BYTES, wall=wall, cpu=cpu,
                extra=dict(files=TAR_FILES, bytes=TAR_BYTES))

def w_rmtree():
    rc, wall, cpu, err = run(["rm", "-rf", TREEDIR])
    if rc != 0:
        raise RuntimeError("rm: " + err.strip()[-200:])
    return dict(value=wall, unit="s", ops=TAR_FILES, wall=wall, cpu=cpu, extra={})

CP_SRC, CP_DST = os.path.join(WD, "cp.src"), os.path.join(WD, "cp.dst")
def cp_setup():
    """untimed: a CP_SIZE file written with 1 MiB writes and fsynced, then cold caches"""
    fio("cp_setup", "--name=cp", "--rw=write", "--bs=1M", "--size=%d" % CP_SIZE,
        "--filename=" + os.path.basename(CP_SRC), "--fallocate=none", "--end_fsync=1")
    drop_caches()

def w_cp():
    rc, wall, cpu, err = run(["sh", "-c", 'cp -- "$1" "$2" && sync -- "$2"', "sh", CP_SRC, CP_DST])
    if rc != 0:
        raise RuntimeError("cp/sync: " + err.strip()[-200:])
    if os.stat(CP_DST).st_size != CP_SIZE:
        raise RuntimeError("cp: %s has %d bytes, want %d" % (CP_DST, os.stat(CP_DST).st_size, CP_SIZE))
    return dict(value=wall, unit="s", bytes=CP_SIZE, wall=wall, cpu=cpu, cpu_per="GiB",
                extra=dict(mb_s=CP_SIZE / wall / 1e6, bytes=CP_SIZE),
                note="%.0f MB/s" % (CP_SIZE / wall / 1e6))

def cp_cleanup():
    for f in (CP_SRC, CP_DST):
        try:
            os.unlink(f)
        except FileNotFoundError:
            pass

def tar_stats():
    n = b = 0
    import tarfile
    with tarfile.open(TARBALL) as t:
        for m in t:
            n += 1
            b += m.size
    return n, b

TAR_FILES, TAR_BYTES = tar_stats()

WORKLOADS = [
    ("seq_write_1M",        w_seq_write),
    ("seq_read_1M",         w_seq_read),
    ("rand_write_4k",       rand("randwrite", 0)),
    ("rand_read_4k",        rand("randread", 0)),
    ("rand_write_4k_direct", rand("randwrite", 1)),
    ("rand_read_4k_direct",  rand("randread", 1)),
    ("rand_read_4k_uring16_direct", rand("randread", 1, "io_uring", 16, 1)),
    ("dsync_write_4k",      w_fdatasync),
    ("meta_create",         meta("create")),
    ("meta_stat",           meta("stat")),
    ("meta_readdir",        meta("readdir")),
    ("meta_unlink",         meta("unlink")),
    ("tree_untar",          w_untar),
    ("tree_rm",             w_rmtree),
    ("cp_1g",               w_cp, cp_setup, cp_cleanup),
]
def wanted(name):
    if not ONLY:
        return True
    if name == "seq_write_1M" and any(o.startswith(("rand", "seq_read")) for o in ONLY):
        return True
    if name == "meta_create" and any(o.startswith("meta") for o in ONLY):
        return True
    if name == "meta_unlink" and any(o.startswith("meta") for o in ONLY):
        return True
    if name == "tree_untar" and any(o.startswith("tree") for o in ONLY):
        return True
    return any(name == o or name.startswith(o) for o in ONLY)

# ---- main -------------------------------------------------------------------------------
typ, src, mp = fstype(MNT)
meta_info = dict(label=E["FSB_LABEL"], mountpoint=MNT, fstype=typ, source=src, quick=QUICK,
                 drop_caches=DROP, daemon_pids=PIDS, host=socket.gethostname(),
                 kernel=platform.release(), ncpu=os.cpu_count(),
                 date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                 params=dict(seq_total=SEQ_TOTAL, rand_jobs=NJ, rand_io_per_job=RAND_IO_PER_JOB,
                             rand_cap_s=RAND_CAP, dsync_s=DSYNC_T, meta_n=META_N,
                             tar_files=TAR_FILES, tar_bytes=TAR_BYTES, cp_size=CP_SIZE),
                 fio=subprocess.run(["fio", "--version"], capture_output=True, text=True).stdout.strip())
print("# fsbench %s on %s (%s, src %s) quick=%d drop_caches=%d daemon=%s %s" % (
    meta_info["label"] or "-", MNT, typ, src, QUICK, DROP, ",".join(map(str, PIDS)) or "-",
    meta_info["date"]))
print("# %-26s %10s %-6s | %-26s | %-26s | %s" % ("workload", "value", "unit", "client cpu", "daemon cpu", "wall"))
results = []
t_all = time.monotonic()
for name, fn, *hooks in WORKLOADS:
    if not wanted(name):
        continue
    setup, cleanup = (hooks + [None, None])[:2]
    r, err = None, None
    try:
        drop_caches()
    except OSError as e:
        print("# note: drop_caches failed: %s" % e, file=sys.stderr)
    try:
        if setup:
            setup()          # untimed, outside the CPU samples
    except Exception as e:
        err = "setup: %s" % e
    d0, s0 = daemon_sample(), sys_busy()
    if err is None:
        try:
            r = fn()
        except Exception as e:
            r, err = None, str(e)
    d1, s1 = daemon_sample(), sys_busy()
    if cleanup:
        try:
            cleanup()
        except Exception as e:
            print("# warning: clean-up after %s failed: %s" % (name, e), file=sys.stderr)
    if r is None:
        print("%-28s %10s %-6s | (%s)" % (name, "n/a", "", err), flush=True)
        results.append(dict(name=name, value=None, error=err))
        continue
    dcpu, dsrc = daemon_delta(d0, d1)
    if PIDS and d1 is None:
        print("# warning: daemon pid(s) %s gone after %s" % (PIDS, name), file=sys.stderr)
    if r["unit"] == "MB/s" or r.get("cpu_per") == "GiB":
        norm, nunit = r["bytes"] / GiB, "cpu-s/GiB"
    elif r["unit"] == "s":
        norm, nunit = 1.0, "cpu-s"
    else:
        norm, nunit = r["ops"] / 1000.0, "cpu-s/kop"
    ccpu_n = r["cpu"] / norm if norm else None
    dcpu_n = dcpu / norm if (dcpu is not None and norm) else None
    ctxt = "%.4g %s" % (ccpu_n, nunit)
    dtxt = ("%.4g %s" % (dcpu_n, nunit)) if dcpu_n is not None else "-"
    v = r["value"]
    vtxt = "%.0f" % v if v >= 1000 else ("%.1f" % v if v >= 100 else "%.3g" % v)
    line = "%-28s %10s %-6s | client %-19s | daemon %-19s | %5.1fs" % (name, vtxt, r["unit"], ctxt, dtxt, r["wall"])
    if r.get("note"):
        line += " | " + r["note"]
    steal = (s1[1] - s0[1]) / r["wall"] / (os.cpu_count() or 1) if r["wall"] > 0 else 0
    if steal > 0.05:   # hypervisor stole >5% of the machine's CPU time: treat as a noisy sample
        line += " | NOISY steal %.0f%%" % (100 * steal)
    print(line, flush=True)
    results.append(dict(name=name, value=r["value"], unit=r["unit"], wall_s=r["wall"],
                        ops=r.get("ops"), bytes=r.get("bytes"), client_cpu_s=r["cpu"],
                        daemon_cpu_s=dcpu, daemon_cpu_src=dsrc, sys_busy_s=s1[0] - s0[0], steal_s=s1[1] - s0[1], cpu_norm_unit=nunit,
                        client_cpu_norm=ccpu_n, daemon_cpu_norm=dcpu_n, extra=r.get("extra", {}),
                        error=None))
total = time.monotonic() - t_all
rc, _, _, err = run(["rm", "-rf", WD])
if rc != 0:
    print("# warning: cleanup of %s failed: %s" % (WD, err.strip()[-200:]), file=sys.stderr)
shutil.rmtree(TMP, ignore_errors=True)
print("# total %.0fs" % total)
if E["FSB_JSON"]:
    with open(E["FSB_JSON"], "w") as fh:
        json.dump(dict(meta=meta_info, total_s=total, results=results), fh, indent=1)
PYEOF
