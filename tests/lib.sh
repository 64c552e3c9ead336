# Shared helpers for the shell tests. Source it, then call test_init.
# Exit status: 0 pass, 77 skip, anything else fail. Everything a test makes
# (files, loop devices, mounts) is registered and undone at exit, also when
# the test fails.
set -u

: "${top_builddir:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${MKFS:=$top_builddir/mkfs/mkfs.posfs}"
: "${PFSTOOL:=$top_builddir/tests/pfs-inspect}"

T_NAME=$(basename "$0" .sh)
T_DIR=
T_LOOPS=()
T_MOUNTS=()
T_FAILS=0
T_CHECKS=0

t_cleanup() {
	local l m
	for m in "${T_MOUNTS[@]:+${T_MOUNTS[@]}}"; do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	done
	for l in "${T_LOOPS[@]:+${T_LOOPS[@]}}"; do
		losetup -d "$l" 2>/dev/null
	done
	[ -n "$T_DIR" ] && rm -rf "$T_DIR"
}

test_init() {
	# A disk-backed scratch directory: O_DIRECT does not work on tmpfs.
	local base=${TEST_TMPDIR:-/var/tmp}
	T_DIR=$(mktemp -d "$base/posfs-$T_NAME.XXXXXX") || exit 99
	trap t_cleanup EXIT
	trap 'exit 99' INT TERM
}

skip() {
	echo "SKIP: $T_NAME: $*"
	exit 77
}

need_root() {
	[ "$(id -u)" = 0 ] || skip "needs root"
}

# Attach FILE to a loop device, set LOOP to it; detached at exit.
# (Not in a $(...) subshell: the registration must reach this shell.)
loop_attach() {
	LOOP=$(losetup --find --show --direct-io=on "$1") || return 1
	T_LOOPS+=("$LOOP")
}

# Detach a loop device now and forget it.
loop_detach() {
	local keep=() l
	losetup -d "$1"
	for l in "${T_LOOPS[@]:+${T_LOOPS[@]}}"; do
		[ "$l" = "$1" ] || keep+=("$l")
	done
	T_LOOPS=("${keep[@]:+${keep[@]}}")
}

# mount_reg ARGS... DIR: mount, and unmount DIR at exit.
mount_reg() {
	mount "$@" || return 1
	T_MOUNTS+=("${@: -1}")
}

ok() {
	T_CHECKS=$((T_CHECKS + 1))
	echo "ok $T_CHECKS - $*"
}

not_ok() {
	T_CHECKS=$((T_CHECKS + 1))
	T_FAILS=$((T_FAILS + 1))
	echo "not ok $T_CHECKS - $*"
}

# expect_eq WHAT GOT WANT
expect_eq() {
	if [ "$2" = "$3" ]; then ok "$1 = $3"; else not_ok "$1: got '$2', want '$3'"; fi
}

# expect_match WHAT TEXT REGEX
expect_match() {
	if printf '%s' "$2" | grep -Eq -- "$3"; then
		ok "$1 matches /$3/"
	else
		not_ok "$1: '$2' does not match /$3/"
	fi
}

# run_status VAR CMD...: run CMD, keep its output in $OUT and status in VAR
run_status() {
	local __var=$1
	shift
	OUT=$("$@" 2>&1)
	printf -v "$__var" '%s' "$?"
}

# field FILE KEY: the value of KEY=... in pfs-inspect output FILE
field() {
	sed -n "s/^$2=//p" "$1" | head -n 1
}

test_done() {
	echo "$((T_CHECKS - T_FAILS)) passed, $T_FAILS failed"
	[ "$T_FAILS" -eq 0 ]
}
