#!/bin/bash
# umount.posfs, the umount(8) helper: `umount DIR` returns once the daemon
# has written its last checkpoint and let go of the device, so that right
# after it fsck.posfs -n finds the file system clean and a new mount of it
# works (rounds with dirty data, on an image file and on a loop device).
# umount(8) run by root on an absolute path finds the helper through the
# daemon's helper=posfs line in libmount's utab (a file of the test's own
# here, LIBMOUNT_UTAB), otherwise through the type fuse.posfs: both names
# are links in /sbin to a copy of the daemon, made for the test and removed
# after. Also: the helper run by hand (-v, a device, not mounted, not
# posfs), a busy DIR (refused; -r remounts read-only), -l (returns at once),
# a bind mount left (no wait), the bound on the wait (a stopped daemon),
# the utab line gone after other ways of unmounting, a mount point with a
# space, and a user's mount through fusermount3 when /dev/fuse is open to
# users. T_UMOUNT='umount -i' runs the rounds without the helper, as umount
# worked before it: they fail.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fuse/common.sh"
: "${FSCK:=$top_builddir/fsck/fsck.posfs}"
: "${T_UMOUNT:=umount}"
command -v umount >/dev/null || skip "umount (util-linux) missing"
command -v losetup >/dev/null || skip "losetup (util-linux) missing"
[ -x "$FSCK" ] || skip "$FSCK is not built"
fuse_init

# One test at a time puts helpers in /sbin (helper.sh and mount.sh too):
# held until this script exits.
exec 9> /var/tmp/posfs-tests-sbin.lock
flock 9
for h in /sbin/umount.posfs /sbin/umount.fuse.posfs; do
	[ -e "$h" ] && skip "$h is installed already: not replacing it"
done
# A copy, so that a rebuild while the test runs cannot take it away.
cp "$POSFS" "$T_DIR/posfs" || exit 99
for h in /sbin/umount.posfs /sbin/umount.fuse.posfs; do
	ln -s "$T_DIR/posfs" "$h" && F_LINKS+=("$h") || exit 99
done
ln -s posfs "$T_DIR/umount.posfs" || exit 99
U=$T_DIR/umount.posfs
# The daemons' utab lines go to a file of the test's own (libmount reads
# LIBMOUNT_UTAB for root).
export LIBMOUNT_UTAB=$T_DIR/utab
: > "$LIBMOUNT_UTAB"
# utab_lines DIR: how many utab lines there are for DIR
utab_lines() {
	grep -cF "TARGET=$1 " "$LIBMOUNT_UTAB"
}

img=$T_DIR/img
m=$T_DIR/mnt
mkdir -p "$m"
# One shard with a large WAL: the final checkpoint has much to write.
"$MKFS" -q -s 1 -J size=64M "$img" 512M || exit 99
reg_mount "$m"

# write_files DIR N: N new files of 24000 bytes (small writes: their data
# waits in the WAL for the checkpoint, with the metadata)
write_files() {
	py 'import os, sys
os.mkdir(sys.argv[1])
buf = os.urandom(24000)
for i in range(int(sys.argv[2])):
    with open("%s/f%d" % (sys.argv[1], i), "wb") as f:
        f.write(buf)' "$1" "$2"
}

# rounds DEVICE N CHECK: N times mount DEVICE (at once after the last
# umount), check the last round's files, remove them, write new ones and
# umount; with CHECK=fsck, fsck -n at once after each umount, with
# CHECK=mount only after the last (the next mount comes first).
rounds() {
	local dev=$1 n=$2 check=$3 r st
	for r in $(seq "$n"); do
		run_status st "$POSFS" "$dev" "$m"
		expect_eq "$dev round $r: mount right after umount" "$st" 0
		[ "$st" = 0 ] || { echo "$OUT"; return; }
		if [ "$r" -gt 1 ]; then
			expect_eq "$dev round $r: files of round $((r - 1))" \
				"$(ls "$m/d$((r - 1))" | wc -l)" 1000
			rm -rf "$m/d$((r - 1))"
		fi
		write_files "$m/d$r" 1000
		[ "$r" = 1 ] && expect_eq "$dev round $r: the daemon's utab line" "$(utab_lines "$m")" 1
		run_status st $T_UMOUNT "$m"
		expect_eq "$dev round $r: $T_UMOUNT" "$st" 0
		expect_eq "$dev round $r: utab line removed" "$(utab_lines "$m")" 0
		[ "$check" = fsck ] || [ "$r" = "$n" ] || continue
		run_status st "$FSCK" -n "$dev"
		expect_eq "$dev round $r: fsck -n right after umount" "$st" 0
		expect_match "$dev round $r: fsck -n finds it clean" "$OUT" ": clean, "
	done
	run_status st "$POSFS" "$dev" "$m"
	expect_eq "$dev: mount after the last round" "$st" 0
	expect_eq "$dev: files of round $n" "$(ls "$m/d$n" 2>&1 | wc -l)" 1000
	rm -rf "$m/d$n"
	run_status st umount "$m"
	expect_eq "$dev: umount" "$st" 0
}

# --- rounds with dirty data: an image file, then a loop device ----------------
rounds "$img" 3 fsck
rounds "$img" 3 mount
loop_attach "$img" || skip "no loop device could be attached"
rounds "$LOOP" 2 fsck
loop_detach "$LOOP"
[ "$T_UMOUNT" = umount ] || { test_done; exit; }

# --- the helper by hand -----------------------------------------------------
"$POSFS" "$img" "$m" || exit 99
write_files "$m/v" 500
run_status st "$U" "$m" -v
expect_eq "umount.posfs -v" "$st" 0
expect_match "umount.posfs -v says when the device was released" "$OUT" \
	"^umount\.posfs: $img released by the daemon after [0-9.]+ s$"
"$POSFS" "$img" "$m" || exit 99
run_status st "$U" "$img"
expect_eq "umount.posfs DEVICE" "$st" 0
expect_eq "umount.posfs DEVICE unmounts" "$(grep -c " $m " /proc/mounts)" 0
run_status st "$U" "$m"
expect_eq "not mounted: status" "$st" 32
expect_match "not mounted: message" "$OUT" "not mounted"
run_status st "$U" /proc
expect_eq "not posfs: status" "$st" 32
expect_match "not posfs: message" "$OUT" "not a posfs mount \(type proc\)"
run_status st "$U" "$m" -x
expect_eq "bad option: status" "$st" 1

# --- busy, -r, -l -------------------------------------------------------------
"$POSFS" "$img" "$m" || exit 99
exec 8< "$m"
run_status st umount "$m"
expect_eq "busy: status" "$st" 32
expect_match "busy: message" "$OUT" "target is busy"
expect_eq "busy: still mounted" "$(grep -c " $m fuse.posfs " /proc/mounts)" 1
run_status st umount -r "$m"
expect_eq "busy, -r: status" "$st" 0
expect_match "busy, -r: remounted read-only" "$(grep " $m " /proc/mounts)" " ro,"
run_status st umount -l "$m"
expect_eq "-l: status" "$st" 0
expect_eq "-l: detached" "$(grep -c " $m " /proc/mounts)" 0
run_status st "$POSFS" "$img" "$m"
expect_eq "-l: the daemon serves the open directory still" "$st" 1
exec 8<&-
flock -w 10 "$img" true
expect_eq "-l: the daemon lets go once the directory is closed" "$?" 0

# --- a bind mount left: no wait -----------------------------------------------
"$POSFS" "$img" "$m" || exit 99
mkdir -p "$T_DIR/bind"
mount --bind "$m" "$T_DIR/bind" && reg_mount "$T_DIR/bind"
run_status st umount "$m"
expect_eq "bind mount left: status" "$st" 0
expect_match "bind mount left: message" "$OUT" "still mounted on $T_DIR/bind"
expect_eq "bind mount left: still served" "$(ls "$T_DIR/bind" | grep -c '^v$')" 1
run_status st umount "$T_DIR/bind"
expect_eq "bind mount: umount" "$st" 0
run_status st "$FSCK" -n "$img"
expect_match "bind mount: fsck -n right after the last umount" "$OUT" ": clean, "

# --- the bound: a stopped daemon ----------------------------------------------
pfs_mount "$img" "$m" || exit 99
write_files "$m/s" 200
kill -STOP "$PFS_PID"
run_status st env POSFS_UMOUNT_TIMEOUT=1 "$U" "$m"
expect_eq "stopped daemon: status" "$st" 32
expect_match "stopped daemon: message" "$OUT" "after 1 s the posfs daemon still holds $img"
kill -CONT "$PFS_PID"
wait "$PFS_PID"
expect_eq "stopped daemon: exits cleanly once continued" "$?" 0
run_status st "$FSCK" -n "$img"
expect_match "stopped daemon: fsck -n" "$OUT" ": clean, "

# --- no utab line, a relative path: umount.fuse.posfs by the type ---------------
"$POSFS" "$img" "$m" || exit 99
write_files "$m/t" 1000
run_status st sh -c "cd '$T_DIR' && LIBMOUNT_UTAB=/dev/null LIBMOUNT_DEBUG=cxt umount mnt"
expect_eq "umount.fuse.posfs: status" "$st" 0
expect_match "umount.fuse.posfs: umount(8) ran it" "$OUT" "/sbin/umount.fuse.posfs +\.\.\. found"
run_status st "$FSCK" -n "$img"
expect_match "umount.fuse.posfs: fsck -n right after" "$OUT" ": clean, "
: > "$LIBMOUNT_UTAB"	# the daemon's line, which umount(8) did not see

# --- the utab line goes with other ways of unmounting ---------------------------
"$POSFS" "$img" "$m" || exit 99
expect_eq "utab line while mounted" "$(utab_lines "$m")" 1
fusermount3 -u "$m"
flock -w 10 "$img" true
expect_eq "fusermount3 -u: the daemon removes its utab line" "$(utab_lines "$m")" 0
pfs_mount "$img" "$m" || exit 99
kill -TERM "$PFS_PID"
wait "$PFS_PID"
expect_eq "SIGTERM: clean exit" "$?" 0
expect_eq "SIGTERM: the daemon removes its utab line" "$(utab_lines "$m")" 0

# --- a mount point with a space (mangled in utab) -------------------------------
sp="$T_DIR/a dir"
mkdir -p "$sp"
reg_mount "$sp"
"$POSFS" "$img" "$sp" || exit 99
expect_eq "space: utab line, mangled" "$(utab_lines "$T_DIR/a\\040dir")" 1
write_files "$sp/w" 1000
run_status st umount "$sp"
expect_eq "space: umount" "$st" 0
run_status st "$FSCK" -n "$img"
expect_match "space: fsck -n right after umount" "$OUT" ": clean, "
expect_eq "space: utab line removed" "$(utab_lines "$T_DIR/a\\040dir")" 0

# --- a user's mount: fusermount3 -u ---------------------------------------------
uid=$(id -u nobody 2>/dev/null)
UPY=/usr/bin/python3
if [ -z "$uid" ] || ! command -v fusermount3 >/dev/null || ! command -v setpriv >/dev/null ||
	[ ! -x "$UPY" ] || ! setpriv --reuid="$uid" --regid="$uid" --clear-groups \
		test -r /dev/fuse -a -w /dev/fuse; then
	echo "# a user's mount: not tried (needs user nobody, fusermount3, setpriv and a /dev/fuse open to users)"
else
	as_nobody() {
		(cd / && setpriv --reuid="$uid" --regid="$uid" --clear-groups -- "$@")
	}
	chmod 755 "$T_DIR"
	# the file system's root, the mount point under it and the image
	"$POSFS" "$img" "$m" && chown "$uid" "$m" && umount "$m" &&
		chown "$uid" "$m" "$img" || exit 99
	for r in 1 2; do
		run_status st as_nobody "$T_DIR/posfs" "$img" "$m"
		expect_eq "user round $r: mount" "$st" 0
		[ "$st" = 0 ] || { echo "$OUT"; break; }
		as_nobody "$UPY" -c 'import os, sys
os.mkdir(sys.argv[1])
for i in range(2000):
    with open("%s/f%d" % (sys.argv[1], i), "wb") as f:
        f.write(os.urandom(3000))' "$m/u$r"
		run_status st as_nobody umount "$m"
		expect_eq "user round $r: umount" "$st" 0
		run_status st "$FSCK" -n "$img"
		expect_match "user round $r: fsck -n right after umount" "$OUT" ": clean, "
		run_status st as_nobody "$T_DIR/posfs" "$img" "$m"
		expect_eq "user round $r: mount right after umount" "$st" 0
		run_status st as_nobody "$U" "$m"
		expect_eq "user round $r: umount.posfs" "$st" 0
	done
fi
test_done
