#!/bin/bash
# One claim per device, whatever the path: an image mounted through its
# file, through a loop device over it, or through one of two loop devices
# over it. A second daemon by another path, fsck's repair and mkfs are each
# refused with a message that says what holds the device; fsck -n still
# checks, with a warning; the file system is intact afterwards.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fuse/common.sh"
: "${FSCK:=$top_builddir/fsck/fsck.posfs}"
command -v losetup >/dev/null || skip "losetup (util-linux) missing"
fuse_init
[ -x "$FSCK" ] || skip "$FSCK is not built"

img=$T_DIR/img
m=$T_DIR/mnt
m2=$T_DIR/mnt2
mkdir -p "$m" "$m2"
"$MKFS" -q "$img" 64M || exit 99
rimg=$(realpath "$img")
rmnt=$(realpath "$m")

# second_mount NAME DEVICE REGEX: a daemon on DEVICE (daemonized, as
# mount(8) starts it) fails and says REGEX. Should it mount, it is
# unmounted at once (and at exit).
second_mount() {
	reg_mount "$m2"
	run_status st "$POSFS" "$2" "$m2"
	expect_eq "$1: second daemon refused" "$st" 1
	expect_match "$1: its message" "$OUT" "$3"
	grep -qs " $m2 fuse" /proc/mounts && umount "$m2"
}

# tools_refused NAME DEVICE REGEX: fsck -f -y and mkfs.posfs -f -f on
# DEVICE are refused with REGEX; fsck -f -n checks, with a warning.
tools_refused() {
	run_status st "$FSCK" -f -y "$2"
	expect_eq "$1: fsck -f -y refused" "$st" 8
	expect_match "$1: fsck -f -y message" "$OUT" "$3: will not check it for repair"
	run_status st "$FSCK" -f -n "$2"
	[ "$st" != 8 ] && ok "$1: fsck -f -n checks ($st)" || not_ok "$1: fsck -f -n: $OUT"
	expect_match "$1: fsck -f -n warning" "$OUT" "warning: $3"
	run_status st "$MKFS" -q -f -f "$2"
	expect_eq "$1: mkfs -f -f refused" "$st" 1
	expect_match "$1: mkfs message" "$OUT" "$3"
}

# intact NAME: the image, unmounted, checks clean and keeps its file.
intact() {
	run_status st "$FSCK" -f -n "$img"
	expect_eq "$1: fsck -f -n of the image" "$st" 0
	pfs_mount "$img" "$m" || { not_ok "$1: mount"; return; }
	expect_eq "$1: the file" "$(cat "$m/keep")" kept
	pfs_umount "$m"
}

# --- mounted through the file; a loop device over it ---------------------------
pfs_mount "$img" "$m" || { not_ok "mount through the file"; test_done; exit; }
echo kept > "$m/keep"
sync
loop_attach "$img" || skip "no loop device could be attached"
loop=$LOOP
second_mount "file mounted" "$loop" "^posfs: $loop is in use: its file $rimg is mounted on $rmnt\$"
tools_refused "file mounted, loop device" "$loop" "$loop is in use: its file $rimg is mounted on $rmnt"
tools_refused "file mounted, the file" "$img" "$img is in use: mounted on $rmnt"
expect_eq "file mounted: the file still reads" "$(cat "$m/keep")" kept
pfs_umount "$m"
expect_eq "file mounted: clean unmount" "$UMOUNT_STATUS" 0
intact "after the file's mount"

# --- two loop devices over one file: mounted through the first ------------------
loop_attach "$img" || { not_ok "a second loop device"; test_done; exit; }
loop2=$LOOP
via="loop device $loop over the same file is mounted on $rmnt"
pfs_mount "$loop" "$m" || { not_ok "mount through $loop"; test_done; exit; }
second_mount "loop mounted, the other loop device" "$loop2" "^posfs: $loop2 is in use: $via\$"
tools_refused "loop mounted, the other loop device" "$loop2" "$loop2 is in use: $via"

# --- the reverse: mounted through a loop device, the file refused --------------
second_mount "loop mounted, the file" "$img" "^posfs: $rimg is in use: $via\$"
tools_refused "loop mounted, the file" "$img" "$img is in use: $via"
expect_eq "loop mounted: the file still reads" "$(cat "$m/keep")" kept
pfs_umount "$m"
expect_eq "loop mounted: clean unmount" "$UMOUNT_STATUS" 0
intact "after the loop device's mount"

test_done
