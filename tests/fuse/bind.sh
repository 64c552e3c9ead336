#!/bin/bash
# A second mount of a mounted device, as the kernel does it for ext4: a
# bind mount of the first, served by the one daemon (posfs and
# mount.posfs alike). Both show the same file system; a second mount with
# another read-only state is refused, as the kernel refuses it; a user
# gets the claim's message; unmounting either mount leaves the other
# served, and the daemon ends only with the last; on SIGTERM the daemon
# detaches the binds too; the file system checks clean after.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fuse/common.sh"
: "${FSCK:=$top_builddir/fsck/fsck.posfs}"
command -v losetup >/dev/null || skip "losetup (util-linux) missing"
command -v setpriv >/dev/null || skip "setpriv (util-linux) is needed"
fuse_init
[ -x "$FSCK" ] || skip "$FSCK is not built"

OTHER=4242
img=$T_DIR/img
a=$T_DIR/a
b=$T_DIR/b
c=$T_DIR/c
mkdir -p "$a" "$b" "$c"
chmod 755 "$T_DIR"
truncate -s 64M "$img"
loop_attach "$img" || skip "no loop device could be attached"
loop=$LOOP
"$MKFS" -q "$loop" || exit 99
ln -s "$POSFS" "$T_DIR/mount.posfs" || exit 99

# daemon: the pid of the posfs daemon holding $loop, or nothing
daemon() {
	local p
	for p in $(pgrep -x posfs); do
		readlink /proc/$p/fd/* 2>/dev/null | grep -qx "$loop" && { echo "$p"; return; }
	done
}
# gone PID: wait (10 s) until PID has exited
gone() {
	for i in $(seq 100); do
		kill -0 "$1" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}
# expect_no_match NAME STRING REGEX
expect_no_match() { [[ $2 =~ $3 ]] && not_ok "$1: '$2' matches /$3/" || ok "$1"; }
# mnt_of DIR: the line of /proc/mounts for DIR
mnt_of() { grep " $1 " /proc/mounts; }
# dev_of DIR: the device numbers of the mount at DIR
dev_of() { stat -c %d "$1"; }

# --- posfs DEVICE twice: the second is a bind of the first ---------------------
reg_mount "$a"
reg_mount "$b"
reg_mount "$c"
run_status st "$POSFS" -o nosuid "$loop" "$a"
expect_eq "first mount" "$st" 0
pid=$(daemon)
[ -n "$pid" ] || { not_ok "no daemon holds $loop"; test_done; exit; }
echo one > "$a/f"
run_status st "$POSFS" -o nodev "$loop" "$b"
expect_eq "second posfs DEVICE: status" "$st" 0
expect_eq "second posfs DEVICE: quiet" "$OUT" ""
expect_match "second mount in the table" "$(mnt_of "$b")" "^$loop $b fuse\.posfs rw,"
expect_eq "one daemon" "$(pgrep -x posfs | while read -r p; do
	readlink /proc/$p/fd/* 2>/dev/null | grep -qx "$loop" && echo "$p"; done | wc -l)" 1
expect_eq "the same file system" "$(dev_of "$b")" "$(dev_of "$a")"
expect_eq "a file through the bind" "$(cat "$b/f")" one
echo two > "$b/g"
expect_eq "a file written through the bind" "$(cat "$a/g")" two
# each mount's own flags are as given to it
expect_match "first: nosuid" "$(mnt_of "$a" | cut -d' ' -f4)" "(^|,)nosuid(,|$)"
expect_no_match "first: dev" "$(mnt_of "$a" | cut -d' ' -f4)" "(^|,)nodev(,|$)"
expect_match "second: nodev" "$(mnt_of "$b" | cut -d' ' -f4)" "(^|,)nodev(,|$)"
expect_no_match "second: suid" "$(mnt_of "$b" | cut -d' ' -f4)" "(^|,)nosuid(,|$)"

# --- through mount.posfs (as mount(8) runs it), by another path -----------------
ln -s "$loop" "$T_DIR/dev-link"
run_status st "$T_DIR/mount.posfs" "$T_DIR/dev-link" "$c" -o defaults
expect_eq "mount.posfs of a mounted device: status" "$st" 0
expect_eq "mount.posfs: the same file system" "$(dev_of "$c")" "$(dev_of "$a")"
umount "$c"
expect_eq "c unmounted" "$(mnt_of "$c")" ""

# --- read-only state must match, as for the kernel ------------------------------
run_status st "$POSFS" -o ro "$loop" "$c"
expect_eq "ro over rw refused" "$st" 1
expect_match "ro over rw message" "$OUT" "^posfs: $loop is mounted read-write on $a: cannot mount it read-only as well"
expect_eq "ro over rw: nothing mounted" "$(mnt_of "$c")" ""
run_status st "$POSFS" "$loop" "$a"
expect_eq "the same directory again refused" "$st" 1
expect_match "the same directory message" "$OUT" "is already mounted on $a\$"

# --- a user cannot bind: the claim's message -------------------------------------
chmod 666 "$loop"
run_status st setpriv --reuid=$OTHER --regid=$OTHER --clear-groups -- "$POSFS" "$loop" "$c"
chmod 660 "$loop"
expect_eq "a user's second mount refused" "$st" 1
expect_match "a user's message" "$OUT" "$loop is in use: mounted on $a"

# --- unmount the first: the bind goes on; the daemon ends with the last ----------
umount "$a"
expect_eq "first unmounted" "$(mnt_of "$a")" ""
sleep 0.5
expect_eq "the daemon lives on" "$(kill -0 "$pid" 2>/dev/null && echo yes)" yes
expect_eq "the bind still reads" "$(cat "$b/f" 2>&1)" one
echo three > "$b/h" && sync
expect_eq "the bind still writes" "$(cat "$b/h" 2>&1)" three
umount "$b"
gone "$pid" && ok "the daemon ended with the last mount" || not_ok "the daemon is still there"

# --- the other way round, and mount.posfs for the first --------------------------
run_status st "$T_DIR/mount.posfs" "$loop" "$a" -o ro
expect_eq "ro first mount" "$st" 0
pid=$(daemon)
run_status st "$POSFS" "$loop" "$b"
expect_eq "rw over ro refused" "$st" 1
expect_match "rw over ro message" "$OUT" "^posfs: $loop is mounted read-only on $a: cannot mount it read-write as well \(mount it with -o ro"
run_status st "$POSFS" -o ro "$loop" "$b"
expect_eq "ro over ro: a bind" "$st" 0
expect_match "ro bind in the table" "$(mnt_of "$b")" "^$loop $b fuse\.posfs ro,"
umount "$b"
expect_eq "the daemon lives on after the bind's unmount" "$(kill -0 "$pid" 2>/dev/null && echo yes)" yes
expect_eq "the first still reads" "$(cat "$a/h" 2>&1)" three
umount "$a"
gone "$pid" && ok "the daemon ended" || not_ok "the daemon is still there"

# --- SIGTERM: the daemon detaches every mount of its file system ----------------
run_status st "$POSFS" "$loop" "$a"
pid=$(daemon)
run_status st "$POSFS" "$loop" "$b"
expect_eq "bind before SIGTERM" "$st" 0
kill -TERM "$pid"
gone "$pid" && ok "the daemon ended on SIGTERM" || not_ok "the daemon is still there"
expect_eq "SIGTERM: first unmounted" "$(mnt_of "$a")" ""
expect_eq "SIGTERM: bind unmounted" "$(mnt_of "$b")" ""

run_status st "$FSCK" -f -n "$loop"
expect_eq "fsck -f -n clean" "$st" 0
test_done
