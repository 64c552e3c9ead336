# Helpers for the tests over a real posfs mount (sourced after tests/lib.sh;
# not a test itself). fuse_init skips without root or /dev/fuse, makes
# T_DIR and chains its own cleanup before lib.sh's: every daemon started
# here is unmounted and waited for (killed after a bounded wait), every
# helper symlink removed, then lib.sh detaches loop devices and removes
# T_DIR. POSFS is the daemon under test.
: "${POSFS:=$top_builddir/fuse/posfs}"

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
	"$POSFS" -f "$@" "$img" "$dir" 2>>"$T_DIR/daemon.log" &
	PFS_PID=$!
	F_MOUNTS+=("$dir")
	F_PIDS+=("$PFS_PID")
	if ! wait_mounted "$dir"; then
		cat "$T_DIR/daemon.log" >&2
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
