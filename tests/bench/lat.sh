#!/usr/bin/env bash
# lat.sh - posfs's request latency and CPU per request over each FUSE transport:
# /dev/fuse (-o nouring), io_uring (the default), io_uring with -o poll[=US], in
# interleaved rounds on one loop-backed image, mounted with entry_timeout=0 and
# attr_timeout=0 so that every request reaches the daemon. tests/bench/lat-bench does the
# measuring; each line is one round of one transport; the medians come last.
#
# usage: lat.sh [-r ROUNDS] [-n OPS] [-p POLL_US] [-d DIR]
# Needs root (a loop device, a mount, the kernel's enable_uring, turned on for the run
# and put back at exit). The build: $POSFS_BUILDDIR (default: two levels above).
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
B=${POSFS_BUILDDIR:-$(cd "$HERE/../.." && pwd -P)}
ROUNDS=3 OPS=20000 POLL=50 DIR=/var/tmp
while getopts r:n:p:d: c; do
	case $c in
	r) ROUNDS=$OPTARG ;; n) OPS=$OPTARG ;; p) POLL=$OPTARG ;; d) DIR=$OPTARG ;;
	*) sed -n '2,10p' "$0"; exit 2 ;;
	esac
done
[[ $EUID -eq 0 ]] || { echo "lat.sh: needs root" >&2; exit 1; }
PARAM=/sys/module/fuse/parameters/enable_uring
[[ -w $PARAM ]] || { echo "lat.sh: this kernel has no FUSE over io_uring" >&2; exit 1; }
W=$(mktemp -d "$DIR/posfs-lat.XXXXXX")
OLD=$(cat "$PARAM")
LOOP="" PID=""
cleanup() {
	set +e
	if [[ -n $PID ]]; then umount "$W/mnt" 2>/dev/null || umount -l "$W/mnt"; wait "$PID"; fi
	[[ -z $LOOP ]] || losetup -d "$LOOP"
	echo "$OLD" > "$PARAM"
	rm -rf "$W"
}
trap cleanup EXIT
echo 1 > "$PARAM"
truncate -s 2G "$W/img"
LOOP=$(losetup -f --show --direct-io=on "$W/img")
mkdir -p "$W/mnt"
declare -A MODES=([fuse]=nouring [uring]="" [uring-poll]="poll=$POLL")
for ((r = 1; r <= ROUNDS; r++)); do
	for mode in fuse uring uring-poll; do
		"$B/mkfs/mkfs.posfs" -q -f "$LOOP"
		o="entry_timeout=0,attr_timeout=0${MODES[$mode]:+,${MODES[$mode]}}"
		"$B/fuse/posfs" -f -o "$o" "$LOOP" "$W/mnt" 2>"$W/log" &
		PID=$!
		for i in $(seq 100); do mountpoint -q "$W/mnt" && break; sleep 0.05; done
		"$B/tests/bench/lat-bench" -n "$OPS" "$W/mnt" "$PID" | sed "s/^/$mode r$r /" | tee -a "$W/out"
		umount "$W/mnt"
		wait "$PID"
		PID=""
	done
done
echo "# medians over $ROUNDS rounds: p50_us p99_us daemon_cpu_us"
python3 - "$W/out" <<'PY'
import statistics, sys, collections
d = collections.defaultdict(lambda: collections.defaultdict(list))
for line in open(sys.argv[1]):
    f = line.split()
    mode, wl = f[0], f[2]
    kv = dict(zip(f[3::2], f[4::2]))
    for k in ("p50_us", "p99_us", "daemon_cpu_us"):
        d[wl][(mode, k)].append(float(kv[k]))
for wl, m in d.items():
    print(wl)
    for mode in ("fuse", "uring", "uring-poll"):
        print("  %-11s" % mode + "".join(" %s %7.1f" % (k, statistics.median(m[(mode, k)]))
                                         for k in ("p50_us", "p99_us", "daemon_cpu_us")))
PY
