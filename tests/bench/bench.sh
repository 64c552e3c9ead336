#!/usr/bin/env bash
# bench.sh - posfs's benchmark: posfs against kernel ext4, fuse2fs and libfuse's
# passthrough_ll in one interleaved run (round 1: A B C D, round 2: A B C D, ...), every run
# on a freshly formatted loop-backed image, the workloads of fsbench.sh on each.
#
# usage: bench.sh [--quick] [-r ROUNDS] [-o OUTDIR] [-s SIZE] [-d DIR]
#                 [-S "posfs posfs-fuse ext4 fuse2fs pt"] [-a "EXTRA FSBENCH ARGS"] [--posfs-opts OPTS]
#                 [--mkfs-opts OPTS] [--variant NAME:BUILDDIR:OPTS ...]
#
#   --quick        fsbench.sh --quick, 2G images, 1 round (unless -r says otherwise)
#   -r ROUNDS      rounds (default 3); every round runs each system once, in -S order
#   -o OUTDIR      results (default: bench-out/YYYYmmdd-HHMMSS in the current directory):
#                  SYS.rR.json (fsbench), SYS.rR.daemon.log, log.txt, machine.json,
#                  summary.json and summary.txt (report.py); a failed run's JSON is kept
#                  as SYS.rR.failed.json, out of the report
#   -s SIZE        image size, the same for every system (default 4G, quick 2G)
#   -d DIR         a directory on a disk (not tmpfs) for DIR/posfs-bench-cache/: the images
#                  (SYS.img, zero-filled once, reused while the size matches), mount points,
#                  passthrough_ll, fsbench's helpers and scratch files (default /var/tmp)
#   -S SYSTEMS     which systems, in this order (default "posfs posfs-fuse ext4 fuse2fs pt"):
#                    posfs    mkfs.posfs -q -f, then fuse/posfs -f [-o OPTS]: over FUSE's
#                             io_uring where the kernel has it (the run turns the kernel's
#                             enable_uring on, and puts it back at exit)
#                    posfs-fuse  the same with -o nouring: over /dev/fuse
#                    ext4     mkfs.ext4 (no discard, no lazy init), kernel mount
#                    fuse2fs  the same ext4 through fuse2fs -f
#                    pt       libfuse's passthrough_ll example (built from the source that
#                             libfuse3-dev ships) over the same ext4 mounted below it
#   -a ARGS        extra fsbench.sh arguments, e.g. "--only seq_write,meta,cp --meta-n 5000"
#   --posfs-opts O posfs -o options, e.g. writeback
#   --mkfs-opts O  mkfs.posfs options, e.g. "-O ^data_csum" (to measure what a feature costs)
#   --variant V    one more posfs system, posfs-NAME, for -S: NAME:BUILDDIR:OPTS, the build
#                  (empty: the same as posfs) and its -o options (empty: --posfs-opts), e.g.
#                  -S "posfs posfs-old pt" --variant old:/var/tmp/old-build: measures two
#                  builds in the same interleaved rounds; report.py's ratios stay posfs/peer
#
# Images are attached with losetup --direct-io=on (no second page cache under the file
# system). passthrough_ll keeps one fd per inode: the open-file limit is raised to the hard
# limit, and with pt selected and no --meta-n in ARGS, meta_* use (limit - 1000) files for
# every system when the default would not fit.
# The build: $POSFS_BUILDDIR (default: two levels above this script), holding fuse/posfs and
# mkfs/mkfs.posfs; `make bench` / `make bench-quick` pass it.
# Needs root (loop devices, mounts, drop_caches); missing tools are installed with apt-get.
# Whatever it attached, mounted or started is undone at exit, also on failure and Ctrl-C.
# The report at the end is report.py OUTDIR; compare runs with report.py --compare OLD NEW.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
SRCDIR=$(cd "$HERE/../.." && pwd -P)
PT_SRC=/usr/share/doc/libfuse3-dev/examples/passthrough_ll.c
MKFS_EXT4=(mkfs.ext4 -q -F -E "nodiscard,lazy_itable_init=0,lazy_journal_init=0")
ALL_SYSTEMS="posfs posfs-fuse ext4 fuse2fs pt"
URING_PARAM=/sys/module/fuse/parameters/enable_uring
URING_OLD=""            # the kernel's enable_uring before the run, put back at exit
MOUNT_TIMEOUT=30        # seconds for a daemon to mount
DAEMON_EXIT_TIMEOUT=60  # seconds for a daemon to exit after its unmount

usage() { sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
die() { echo "bench.sh: $*" >&2; exit 1; }
warn() { echo "bench.sh: $*" >&2; }
fail() { echo "bench.sh: $*" >&2; return 1; }  # in run_one: cmd || fail "why" || return
say() { echo "$*" | tee -a "$OUT/log.txt"; }

# ---- options ----------------------------------------------------------------------------
QUICK=0 ROUNDS="" OUT="" SIZE="" DIR=/var/tmp SYSTEMS_ARG=$ALL_SYSTEMS EXTRA_ARG="" POSFS_OPTS=""
MKFS_OPTS=""
declare -A VAR_BUILD=() VAR_OPTS=()
parse_args() {
	while [[ $# -gt 0 ]]; do
		case $1 in
		--quick) QUICK=1 ;;
		-r) ROUNDS=${2:?-r needs a number}; shift ;;
		-o) OUT=${2:?-o needs a directory}; shift ;;
		-s) SIZE=${2:?-s needs a size}; shift ;;
		-d) DIR=${2:?-d needs a directory}; shift ;;
		-S) SYSTEMS_ARG=${2?-S needs a list}; shift ;;
		-a) EXTRA_ARG=${2?-a needs arguments}; shift ;;
		--posfs-opts) POSFS_OPTS=${2?--posfs-opts needs options}; shift ;;
		--mkfs-opts) MKFS_OPTS=${2?--mkfs-opts needs options}; shift ;;
		--variant)
			local v=${2:?--variant needs NAME:BUILDDIR:OPTS} vn
			vn=${v%%:*}
			[[ $v == *:*:* && $vn =~ ^[a-z0-9_]+$ ]] ||
				die "bad --variant '$v' (NAME:BUILDDIR:OPTS, NAME of a-z, 0-9, _)"
			v=${v#*:}
			VAR_BUILD[$vn]=${v%%:*}
			VAR_OPTS[$vn]=${v#*:}
			shift ;;
		-h|--help) usage; exit 0 ;;
		*) usage >&2; exit 2 ;;
		esac
		shift
	done
	[[ -n $ROUNDS ]] || ROUNDS=$((QUICK ? 1 : 3))
	[[ -n $SIZE ]] || SIZE=$((QUICK ? 2 : 4))G
	[[ $ROUNDS =~ ^[1-9][0-9]*$ ]] || die "bad -r '$ROUNDS' (a positive number)"
	SIZE_BYTES=$(numfmt --from=iec "$SIZE" 2>/dev/null) || die "bad -s '$SIZE' (a size such as 4G)"
	((SIZE_BYTES > 0 && SIZE_BYTES % 1048576 == 0)) || die "-s $SIZE: must be a positive multiple of 1M"
	read -ra SYSTEMS <<<"$SYSTEMS_ARG"
	((${#SYSTEMS[@]})) || die "-S: no systems given"
	local s seen=" "
	for s in "${SYSTEMS[@]}"; do
		[[ " $ALL_SYSTEMS " == *" $s "* ]] || [[ $s == posfs-* && -v VAR_BUILD[${s#posfs-}] ]] ||
			die "unknown system '$s' (one of: $ALL_SYSTEMS, or posfs-NAME with --variant NAME:...)"
		[[ $seen != *" $s "* ]] || die "system '$s' given twice"
		seen+="$s "
	done
	read -ra EXTRA <<<"$EXTRA_ARG"
	QUICK_ARG=()
	((QUICK)) && QUICK_ARG=(--quick)
	POSFS_O=()
	[[ -n $POSFS_OPTS ]] && POSFS_O=(-o "$POSFS_OPTS")
	read -ra MKFS_O <<<"$MKFS_OPTS"
	return 0
}
selected() { [[ " ${SYSTEMS[*]} " == *" $1 "* ]]; }

# ---- the build and the tools ------------------------------------------------------------
find_build() {
	BUILDDIR=${POSFS_BUILDDIR:-$SRCDIR}
	POSFS=$BUILDDIR/fuse/posfs
	MKFS_POSFS=$BUILDDIR/mkfs/mkfs.posfs
	local s b
	for s in "${SYSTEMS[@]}"; do
		[[ $s == posfs || $s == posfs-* ]] || continue
		b=$BUILDDIR
		[[ $s == posfs ]] || b=${VAR_BUILD[${s#posfs-}]:-$BUILDDIR}
		[[ -x $b/fuse/posfs && -x $b/mkfs/mkfs.posfs ]] ||
			die "no posfs build in $b (need fuse/posfs and mkfs/mkfs.posfs): run make, or set POSFS_BUILDDIR to the build directory"
	done
}

MISSING=()
need() { # command package
	command -v "$1" >/dev/null 2>&1 || [[ " ${MISSING[*]} " == *" $2 "* ]] || MISSING+=("$2")
}
missing_tools() {
	MISSING=()
	need fio fio
	need python3 python3
	need gcc gcc
	need mkfs.ext4 e2fsprogs
	selected fuse2fs && need fuse2fs fuse2fs
	if selected pt; then
		need pkg-config pkg-config
		[[ -f $PT_SRC ]] || MISSING+=(libfuse3-dev)
	fi
	return 0
}
ensure_tools() {
	local t
	for t in losetup mountpoint findmnt setsid flock numfmt tar; do
		command -v "$t" >/dev/null 2>&1 || die "missing tool: $t"
	done
	missing_tools
	((${#MISSING[@]})) || return 0
	[[ $EUID -eq 0 ]] || die "missing packages: ${MISSING[*]} (as root: apt-get install ${MISSING[*]})"
	command -v apt-get >/dev/null || die "missing packages: ${MISSING[*]}, and no apt-get to install them"
	echo "bench.sh: installing ${MISSING[*]}" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -q --no-install-recommends "${MISSING[@]}" ||
		{ apt-get update -q && apt-get install -y -q --no-install-recommends "${MISSING[@]}"; } ||
		die "could not install ${MISSING[*]}"
	missing_tools
	((${#MISSING[@]} == 0)) || die "still missing after apt-get: ${MISSING[*]}"
}

raise_nofile() {
	ulimit -n "$(ulimit -Hn)" 2>/dev/null || warn "could not raise the open-file limit to $(ulimit -Hn)"
	NOFILE=$(ulimit -n)
	selected pt || return 0
	[[ $NOFILE != unlimited && " ${EXTRA[*]} " != *" --meta-n "* ]] || return 0
	local metan=$((QUICK ? 10000 : 20000))
	if ((NOFILE < metan + 1000)); then
		((NOFILE > 2000)) || die "open-file limit $NOFILE is too low for passthrough_ll"
		EXTRA+=(--meta-n $((NOFILE - 1000)))
		echo "bench.sh: open-file limit $NOFILE: meta_* use --meta-n $((NOFILE - 1000)) on every system (passthrough_ll needs an fd per file)" >&2
	fi
}

# ---- cache dir, images, passthrough_ll --------------------------------------------------
setup_cache() {
	[[ -d $DIR ]] || die "no such directory: $DIR"
	DIR=$(cd "$DIR" && pwd -P)
	[[ $(findmnt -n -o FSTYPE -T "$DIR") != tmpfs ]] || die "$DIR is on tmpfs; the images need a disk (-d DIR)"
	CACHE=$DIR/posfs-bench-cache
	MNTROOT=$CACHE/mnt
	mkdir -p "$CACHE" "$MNTROOT"
	exec 9>"$CACHE/lock"
	flock -n 9 || die "another bench.sh is using $CACHE"
	export FSBENCH_CACHE=${FSBENCH_CACHE:-$CACHE/fsbench}
	SCRATCH=$CACHE/tmp   # fsbench's scratch files, removed at exit whatever happens
	rm -rf "$SCRATCH" "$CACHE"/*.img.tmp
	mkdir -p "$SCRATCH"
	export TMPDIR=$SCRATCH
	local m s img
	m=$(mounts_under "$MNTROOT")
	[[ -z $m ]] || die "left-over mounts from an earlier run: $m (unmount them: umount PATH)"
	for s in "${SYSTEMS[@]}"; do
		img=$CACHE/$s.img
		[[ ! -f $img || -z $(losetup -j "$img") ]] ||
			die "$img is still attached: $(losetup -j "$img" | cut -d: -f1) (detach: losetup -d DEV)"
	done
}

make_images() {
	local s img todo=() avail
	for s in "${SYSTEMS[@]}"; do
		img=$CACHE/$s.img
		if [[ -f $img && $(stat -c %s "$img") -eq $SIZE_BYTES ]]; then continue; fi
		rm -f "$img"
		todo+=("$img")
	done
	((${#todo[@]})) || return 0
	avail=$(df -B1 --output=avail "$CACHE" | tail -n 1)
	((avail > ${#todo[@]} * SIZE_BYTES + (1 << 30))) ||
		die "$CACHE has $(numfmt --to=iec "$avail") free; ${#todo[@]} image(s) of $SIZE need more (-s, -S, -d)"
	for img in "${todo[@]}"; do
		echo "bench.sh: writing $img ($SIZE of zeros, once)" >&2
		run_child dd if=/dev/zero of="$img.tmp" bs=1M count=$((SIZE_BYTES >> 20)) oflag=direct status=none ||
			die "writing $img failed"
		mv "$img.tmp" "$img"
	done
}

build_pt() {
	PT_BIN=$CACHE/passthrough_ll
	selected pt || return 0
	[[ -x $PT_BIN ]] && return 0
	local flags
	flags=$(pkg-config --cflags --libs fuse3) || die "pkg-config knows no fuse3 (libfuse3-dev)"
	echo "bench.sh: building $PT_BIN (once)" >&2
	# shellcheck disable=SC2086 # pkg-config's output is a word list
	gcc -O2 -Wall -I"$(dirname "$PT_SRC")" -o "$PT_BIN.tmp" "$PT_SRC" $flags ||
		die "cannot build passthrough_ll from $PT_SRC"
	mv "$PT_BIN.tmp" "$PT_BIN"
}

# ---- machine facts ----------------------------------------------------------------------
write_machine() {
	local commit=""
	command -v git >/dev/null && commit=$(git -C "$SRCDIR" describe --always --dirty 2>/dev/null || true)
	M_NPROC=$(nproc) \
	M_MEM=$(awk '/^MemTotal:/ { printf "%.0f\n", $2 * 1024 }' /proc/meminfo) \
	M_CPU=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo) \
	M_KERNEL=$(uname -r) \
	M_DIR=$DIR \
	M_DIRFS=$(findmnt -n -o FSTYPE,SOURCE,TARGET -T "$DIR") \
	M_COMMIT=$commit \
	M_DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ) \
	M_HOST=$(hostname) \
	M_SYSTEMS="${SYSTEMS[*]}" M_ROUNDS=$ROUNDS M_QUICK=$QUICK M_SIZE=$SIZE \
	M_EXTRA="${EXTRA[*]}" M_POSFS_OPTS=$POSFS_OPTS M_MKFS_OPTS=$MKFS_OPTS M_NOFILE=$NOFILE \
	M_FIO=$(fio --version 2>/dev/null || true) \
	M_E2FS=$(mkfs.ext4 -V 2>&1 | head -n 1 || true) \
	M_FUSE3=$(pkg-config --modversion fuse3 2>/dev/null || true) \
	python3 - >"$OUT/machine.json" <<'EOF'
import json, os, sys
E = os.environ
fs = (E["M_DIRFS"].split() + ["", "", ""])[:3]
json.dump(dict(
    nproc=int(E["M_NPROC"]), mem_bytes=int(E["M_MEM"]), cpu_model=E["M_CPU"],
    kernel=E["M_KERNEL"], host=E["M_HOST"], date=E["M_DATE"],
    dir=E["M_DIR"], dir_fs=dict(fstype=fs[0], source=fs[1], mountpoint=fs[2]),
    posfs_commit=E["M_COMMIT"] or None,
    systems=E["M_SYSTEMS"].split(), rounds=int(E["M_ROUNDS"]), quick=E["M_QUICK"] == "1",
    image_size=E["M_SIZE"], fsbench_args=E["M_EXTRA"], posfs_opts=E["M_POSFS_OPTS"],
    mkfs_opts=E["M_MKFS_OPTS"],
    nofile=E["M_NOFILE"],
    versions=dict(fio=E["M_FIO"], e2fsprogs=E["M_E2FS"], libfuse3=E["M_FUSE3"]),
), sys.stdout, indent=1)
EOF
}

# ---- what this run attached, mounted and started: undone last-in first-out --------------
UNDO=()        # "loop DEV" | "mount DIR" | "fuse DIR" | "daemon PID"
ALL_PIDS=()    # every daemon started, for the final sweep
CHILD=""       # the foreground job (dd, fsbench), in its own process group
push() { UNDO+=("$*"); }

alive() { # pid: running (not a zombie)
	local s
	s=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	s=${s##*) }
	[[ ${s:0:1} != Z ]]
}
mounts_under() { # dir: mount points at or below it, deepest first
	awk -v d="${1// /\\040}" '$5 == d || index($5, d "/") == 1 { print $5 }' /proc/self/mountinfo |
		sort -r | sed 's/\\040/ /g'
}
is_mounted() { [[ -n $(awk -v d="${1// /\\040}" '$5 == d' /proc/self/mountinfo) ]]; }

unmount() { # dir fuse|kernel
	local i
	for ((i = 0; i < 20; i++)); do
		is_mounted "$1" || return 0
		if [[ $2 == fuse ]] && command -v fusermount3 >/dev/null; then
			fusermount3 -u "$1" 2>/dev/null || umount "$1" 2>/dev/null || true
		else
			umount "$1" 2>/dev/null || true
		fi
		is_mounted "$1" || return 0
		sleep 0.5
	done
	warn "$1 stays busy; detaching it lazily (umount -l)"
	umount -l "$1" || { warn "cannot unmount $1"; return 1; }
}

stop_daemon() { # pid
	local pid=$1 i st=0
	for ((i = 0; i < DAEMON_EXIT_TIMEOUT * 10; i++)); do alive "$pid" || break; sleep 0.1; done
	if alive "$pid"; then
		warn "daemon $pid still running ${DAEMON_EXIT_TIMEOUT}s after its unmount: SIGTERM"
		kill -TERM "$pid" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do alive "$pid" || break; sleep 0.1; done
		alive "$pid" && { warn "daemon $pid: SIGKILL"; kill -KILL "$pid" 2>/dev/null || true; }
	fi
	wait "$pid" 2>/dev/null || st=$?
	((st == 0 || st == 127)) || warn "daemon $pid exited with status $st (see its log in $OUT)"
	return 0
}

detach() { # dev
	local i
	for ((i = 0; i < 10; i++)); do
		losetup -d "$1" 2>/dev/null && return 0
		[[ -e /sys/block/${1#/dev/}/loop/backing_file ]] || return 0
		sleep 0.5
	done
	warn "cannot detach $1"
	return 1
}

undo_all() { # pops the UNDO stack; returns 1 if something could not be undone
	local ok=0 e
	while ((${#UNDO[@]})); do
		e=${UNDO[-1]}
		unset 'UNDO[-1]'
		case $e in
		"loop "*) detach "${e#loop }" || ok=1 ;;
		"mount "*) unmount "${e#mount }" kernel || ok=1 ;;
		"fuse "*) unmount "${e#fuse }" fuse || ok=1 ;;
		"daemon "*) stop_daemon "${e#daemon }" ;;
		esac
	done
	return $ok
}

stop_child() {
	[[ -n $CHILD ]] || return 0
	local i
	kill -TERM -- "-$CHILD" 2>/dev/null || kill -TERM "$CHILD" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do kill -0 -- "-$CHILD" 2>/dev/null || break; sleep 0.1; done
	kill -KILL -- "-$CHILD" 2>/dev/null || true
	wait "$CHILD" 2>/dev/null || true
	CHILD=""
}

# posfs serves over FUSE's io_uring only where the kernel's parameter is on: on for the run
uring_on() {
	[[ " ${SYSTEMS[*]} " == *" posfs"* ]] || return 0
	if [[ ! -w $URING_PARAM ]]; then
		warn "this kernel has no FUSE over io_uring (Linux 6.14+): posfs runs over /dev/fuse"
		return 0
	fi
	URING_OLD=$(cat "$URING_PARAM")
	[[ $URING_OLD == Y ]] && return 0
	echo 1 >"$URING_PARAM" || die "cannot turn $URING_PARAM on"
	warn "turned FUSE over io_uring on for the run ($URING_PARAM; put back at exit)"
}
uring_restore() {
	[[ -z $URING_OLD ]] || echo "$URING_OLD" >"$URING_PARAM"
	URING_OLD=""
}

cleanup() { # EXIT trap: the stack, then a sweep of this run's own paths and daemons
	set +e
	trap '' INT TERM HUP
	stop_child
	undo_all
	uring_restore
	local m s d pid
	if [[ -n ${MNTROOT:-} ]]; then
		while read -r m; do [[ -n $m ]] && unmount "$m" fuse; done < <(mounts_under "$MNTROOT")
		for pid in "${ALL_PIDS[@]}"; do alive "$pid" && stop_daemon "$pid"; done
		for s in "${SYSTEMS[@]}"; do
			for d in $(losetup -j "$CACHE/$s.img" | cut -d: -f1); do detach "$d"; done
		done
		rm -rf "$CACHE"/*.img.tmp "$SCRATCH"
	fi
}
on_signal() {
	trap '' INT TERM HUP
	echo "bench.sh: interrupted by SIG$1; cleaning up" >&2
	exit $((128 + $2))
}

run_child() { # cmd...: in the background in its own process group, so that a signal reaches
	# the trap at once and the trap can stop the whole job
	local st=0
	setsid -w "$@" 9>&- &
	CHILD=$!
	wait "$CHILD" || st=$?
	CHILD=""
	return $st
}

# ---- one run ----------------------------------------------------------------------------
wait_mount() { # mnt pid log
	local i
	for ((i = 0; i < MOUNT_TIMEOUT * 10; i++)); do
		mountpoint -q "$1" && return 0
		if ! alive "$2"; then
			echo "bench.sh: the daemon exited before mounting $1; its log ($3):" >&2
			tail -n 30 "$3" >&2
			return 1
		fi
		sleep 0.1
	done
	echo "bench.sh: $1 not mounted after ${MOUNT_TIMEOUT}s; the daemon's log ($3):" >&2
	tail -n 30 "$3" >&2
	return 1
}

start_daemon() { # mnt log cmd...: start a FUSE daemon in the foreground mode, wait for its mount
	local mnt=$1 log=$2
	shift 2
	echo "# $*" >"$log"
	"$@" </dev/null >>"$log" 2>&1 9>&- &
	DPID=$!
	ALL_PIDS+=("$DPID")
	push daemon "$DPID"
	push fuse "$mnt"
	wait_mount "$mnt" "$DPID" "$log"
}

format_ext4() { "${MKFS_EXT4[@]}" "$1" || fail "mkfs.ext4 $1 failed"; }

run_one() { # sys round. Called in a condition, so errexit is off: every step is checked.
	local sys=$1 r=$2 img=$CACHE/$1.img mnt=$MNTROOT/$1 lower=$MNTROOT/lower
	local log=$OUT/$1.r$2.daemon.log json=$OUT/$1.r$2.json dev st=0
	DPID=""
	mkdir -p "$mnt" || return
	dev=$(losetup -f --show --direct-io=on "$img") || fail "losetup $img failed" || return
	push loop "$dev"
	case $sys in
	posfs)
		"$MKFS_POSFS" -q -f "${MKFS_O[@]}" "$dev" || fail "mkfs.posfs $dev failed" || return
		start_daemon "$mnt" "$log" "$POSFS" -f "${POSFS_O[@]}" "$dev" "$mnt" || return ;;
	posfs-fuse)
		"$MKFS_POSFS" -q -f "${MKFS_O[@]}" "$dev" || fail "mkfs.posfs $dev failed" || return
		start_daemon "$mnt" "$log" "$POSFS" -f -o "nouring${POSFS_OPTS:+,$POSFS_OPTS}" "$dev" "$mnt" ||
			return ;;
	posfs-*)
		local vb=${VAR_BUILD[${sys#posfs-}]:-$BUILDDIR} vo=${VAR_OPTS[${sys#posfs-}]:-$POSFS_OPTS}
		local vopt=()
		[[ -n $vo ]] && vopt=(-o "$vo")
		"$vb/mkfs/mkfs.posfs" -q -f "${MKFS_O[@]}" "$dev" || fail "mkfs.posfs $dev failed" || return
		start_daemon "$mnt" "$log" "$vb/fuse/posfs" -f "${vopt[@]}" "$dev" "$mnt" || return ;;
	ext4)
		format_ext4 "$dev" || return
		mount -t ext4 "$dev" "$mnt" || fail "mount $dev failed" || return
		push mount "$mnt" ;;
	fuse2fs)
		format_ext4 "$dev" || return
		start_daemon "$mnt" "$log" fuse2fs "$dev" "$mnt" -f || return ;;
	pt)
		format_ext4 "$dev" || return
		mkdir -p "$lower" || return
		mount -t ext4 "$dev" "$lower" || fail "mount $dev failed" || return
		push mount "$lower"
		start_daemon "$mnt" "$log" "$PT_BIN" -f -o "source=$lower" "$mnt" || return ;;
	esac
	# shellcheck disable=SC2016 # the inner script expands its own arguments
	run_child bash -c 'log=$1; shift; "$@" 2>&1 | tee -a "$log"; exit "${PIPESTATUS[0]}"' fsbench \
		"$OUT/log.txt" bash "$HERE/fsbench.sh" "${QUICK_ARG[@]}" "${EXTRA[@]}" \
		--label "$sys" --json "$json" "$mnt" ${DPID:+"$DPID"} || st=$?
	((st == 0)) || fail "fsbench.sh on $sys exited with status $st" || return
	[[ -s $json ]] || fail "fsbench.sh wrote no $json" || return
	[[ -z $DPID ]] || alive "$DPID" || fail "the $sys daemon died during the run; see $log" || return
	undo_all || fail "could not tear $sys down cleanly"
}

# ---- main -------------------------------------------------------------------------------
main() {
	parse_args "$@"
	find_build
	ensure_tools
	[[ $EUID -eq 0 ]] || die "needs root (loop devices, mounts, drop_caches)"
	raise_nofile
	trap cleanup EXIT
	trap 'on_signal INT 2' INT
	trap 'on_signal TERM 15' TERM
	trap 'on_signal HUP 1' HUP
	uring_on
	[[ -n $OUT ]] || OUT=bench-out/$(date +%Y%m%d-%H%M%S)
	mkdir -p "$OUT"
	OUT=$(cd "$OUT" && pwd -P)
	compgen -G "$OUT/*.r*.json" >/dev/null && die "$OUT already holds results; give a new -o"
	setup_cache
	make_images
	build_pt
	write_machine
	local fsargs="${QUICK_ARG[*]} ${EXTRA[*]}"
	say "# bench.sh: ${SYSTEMS[*]}, $ROUNDS round(s), $SIZE images in $CACHE; fsbench.sh ${fsargs# }"
	say "# posfs: $BUILDDIR${MKFS_OPTS:+ (mkfs $MKFS_OPTS)}${POSFS_OPTS:+ (-o $POSFS_OPTS)}; results: $OUT"
	local r s t0 failed=()
	for ((r = 1; r <= ROUNDS; r++)); do
		for s in "${SYSTEMS[@]}"; do
			say "=== round $r/$ROUNDS: $s ($(date +%T))"
			t0=$SECONDS
			if ! run_one "$s" "$r"; then
				failed+=("$s.r$r")
				say "=== $s round $r FAILED"
				[[ ! -f $OUT/$s.r$r.json ]] || mv "$OUT/$s.r$r.json" "$OUT/$s.r$r.failed.json"
			fi
			undo_all || die "could not undo the $s run; stopping"
			say "=== $s round $r: $((SECONDS - t0))s"
		done
	done
	echo
	python3 "$HERE/report.py" "$OUT" || warn "report.py failed"
	echo "results: $OUT"
	((${#failed[@]} == 0)) || die "failed runs: ${failed[*]} (see $OUT/log.txt)"
}

main "$@"
