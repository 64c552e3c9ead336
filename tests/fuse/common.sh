# Helpers for the tests over a real posfs mount (sourced after tests/lib.sh;
# not a test itself). fuse_init skips without root or /dev/fuse, makes
# T_DIR and chains its own cleanup before lib.sh's: every daemon started
# here is unmounted and waited for (killed after a bounded wait), every
# helper symlink removed, the kernel's enable_uring put back, then lib.sh
# detaches loop devices and removes T_DIR. POSFS is the daemon under test.
# POSFS_TRANSPORT=uring or dev: every pfs_mount checks that its daemon
# serves over that transport (tests/fuse/uring.sh sets it).
: "${POSFS:=$top_builddir/fuse/posfs}"
: "${SCRUB:=$top_builddir/scrub/posfs-scrub}"
: "${POSFS_TRANSPORT:=}"
URING_PARAM=/sys/module/fuse/parameters/enable_uring
F_URING_OLD=	# the parameter's value before uring_set, to put back
F_URING_LOCK=	# the lock's fd (uring_lock); never passed on to a daemon

F_MOUNTS=()	# mount points of daemons we started
F_PIDS=()	# their pids (foreground daemons: children of this shell)
F_LINKS=()	# symlinks to remove at exit

f_cleanup() {
	local i m p n
	for i in "${!F_MOUNTS[@]}"; do
		m=${F_MOUNTS[$i]}
		p=${F_PIDS[$i]}
		if grep -qs " $m fuse" /proc/mounts; then
			fusermount3 -u "$m" 2>/dev/null || umount "$m" 2>/dev/null ||
				umount -l "$m" 2>/dev/null
		fi
		if [ -n "$p" ]; then
			for n in $(seq 50); do
				kill -0 "$p" 2>/dev/null || break
				sleep 0.1
			done
			kill -9 "$p" 2>/dev/null
			wait "$p" 2>/dev/null
		fi
	done
	for m in "${F_LINKS[@]:+${F_LINKS[@]}}"; do
		rm -f "$m"
	done
	if [ -n "$F_URING_OLD" ]; then
		echo "$F_URING_OLD" > "$URING_PARAM"
	fi
}

# uring_lock: skip where the kernel has no FUSE over io_uring; else take
# the lock (fd F_URING_LOCK) that tests changing enable_uring hold for their whole run (two
# of them in parallel would change it under each other), and note its
# value, put back at exit.
uring_lock() {
	[ -w "$URING_PARAM" ] || skip "this kernel has no FUSE over io_uring (Linux 6.14 or later)"
	exec {F_URING_LOCK}>"${TMPDIR:-/tmp}/posfs-tests-enable_uring.lock"
	flock -w 1800 "$F_URING_LOCK" ||
		{ echo "$T_NAME: the enable_uring lock is held (30 min): another test hangs" >&2; exit 1; }
	F_URING_OLD=$(cat "$URING_PARAM")
}

# uring_set 1|0: the kernel's enable_uring (after uring_lock).
uring_set() {
	echo "$1" > "$URING_PARAM"
}

# transport_of DIR: "uring" or "dev", as the daemon at DIR says.
transport_of() {
	case $("$SCRUB" -t "$1" | head -n 1) in
	"transport: io_uring"*) echo uring ;;
	"transport: /dev/fuse") echo dev ;;
	*) echo unknown ;;
	esac
}

fuse_init() {
	need_root
	[ -c /dev/fuse ] || skip "/dev/fuse is missing (no FUSE in this kernel or container)"
	[ -x "$POSFS" ] || skip "the daemon $POSFS is not built"
	command -v python3 >/dev/null || skip "python3 is needed for the system-call checks"
	test_init
	trap 'f_cleanup; t_cleanup' EXIT
}

# wait_mounted DIR: until DIR shows in /proc/mounts as fuse.posfs (5 s).
wait_mounted() {
	local n
	for n in $(seq 100); do
		grep -qs " $1 fuse.posfs " /proc/mounts && return 0
		sleep 0.05
	done
	return 1
}

# pfs_mount IMG DIR [DAEMON OPTIONS...]: start the daemon in the foreground
# (a child of this shell, pid in PFS_PID), wait for the mount.
pfs_mount() {
	local img=$1 dir=$2
	shift 2
	mkdir -p "$dir"
	if [ -n "$F_URING_LOCK" ]; then
		"$POSFS" -f "$@" "$img" "$dir" 2>>"$T_DIR/daemon.log" {F_URING_LOCK}>&- &
	else
		"$POSFS" -f "$@" "$img" "$dir" 2>>"$T_DIR/daemon.log" &
	fi
	PFS_PID=$!
	F_MOUNTS+=("$dir")
	F_PIDS+=("$PFS_PID")
	if ! wait_mounted "$dir"; then
		cat "$T_DIR/daemon.log" >&2
		return 1
	fi
	if [ -n "$POSFS_TRANSPORT" ] && [ "$(transport_of "$dir")" != "$POSFS_TRANSPORT" ]; then
		echo "pfs_mount: $dir is served over $(transport_of "$dir"), not $POSFS_TRANSPORT" >&2
		return 1
	fi
}

# reg_mount DIR: a mount made otherwise (daemonized): unmount it at exit.
reg_mount() {
	F_MOUNTS+=("$1")
	F_PIDS+=("")
}

# pfs_umount DIR: unmount and wait (10 s) for the daemon to exit; its
# status in UMOUNT_STATUS.
pfs_umount() {
	local i n
	umount "$1" || return 1
	for i in "${!F_MOUNTS[@]}"; do
		[ "${F_MOUNTS[$i]}" = "$1" ] || continue
		[ -n "${F_PIDS[$i]}" ] || continue
		for n in $(seq 100); do
			kill -0 "${F_PIDS[$i]}" 2>/dev/null || break
			sleep 0.1
		done
		wait "${F_PIDS[$i]}"
		UMOUNT_STATUS=$?
		F_PIDS[$i]=
	done
	return 0
}

# py CODE ARGS...: run a python3 snippet; its stdout is the result.
py() {
	local code=$1
	shift
	python3 -c "$code" "$@"
}
