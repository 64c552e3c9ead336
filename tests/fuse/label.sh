#!/bin/bash
# Volume labels over a real mount: FS_IOC_GETFSLABEL for anyone,
# FS_IOC_SETFSLABEL for root only (EPERM for a user, EINVAL past 64
# bytes, EROFS on a read-only mount), the new label in both superblock
# copies on the device before any unmount, and kept; mounting by
# LABEL=x and UUID=x (posfs and mount.posfs, found among the block
# devices), label=x and uuid=x through mount(8) and an fstab; an unknown
# label, and one that two loop devices hold, refused with a message.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fuse/common.sh"
command -v losetup >/dev/null || skip "losetup (util-linux) missing"
command -v mount >/dev/null || skip "mount (util-linux) missing"
command -v setpriv >/dev/null || skip "setpriv (util-linux) is needed"
fuse_init
UPY=
for p in /usr/bin/python3 /usr/local/bin/python3; do
	[ -x "$p" ] && { UPY=$p; break; }
done
[ -n "$UPY" ] || skip "no system python3 another uid can run"

OTHER=4242
img=$T_DIR/img
m=$T_DIR/mnt
mkdir -p "$m"
chmod 755 "$T_DIR"
truncate -s 64M "$img"
loop_attach "$img" || skip "no loop device could be attached"
loop=$LOOP
# unique on this machine: other tests' devices have labels too
lbl="lbl-$$-$RANDOM"
out=$("$MKFS" -L "$lbl" "$loop") || exit 99
expect_match "mkfs summary shows the label" "$out" "Label: +$lbl\$"
uuid=$(sed -n 's/^UUID: *//p' <<<"$out")

# FSLABEL CMD [LABEL]: python's result of FS_IOC_GETFSLABEL (CMD get) or
# FS_IOC_SETFSLABEL (CMD set) on $m: the label, OK, or the errno's name.
FSLABEL_PY='import os, sys, errno, fcntl
GET, SET = 0x81009431, 0x41009432
try:
    fd = os.open(sys.argv[1], os.O_RDONLY)
    if sys.argv[2] == "get":
        print(fcntl.ioctl(fd, GET, bytes(256)).rstrip(b"\0").decode())
    else:
        fcntl.ioctl(fd, SET, sys.argv[3].encode().ljust(256, b"\0")[:256])
        print("OK")
except OSError as e:
    print(errno.errorcode[e.errno])'
fslabel() { "$UPY" -c "$FSLABEL_PY" "$m" "$@"; }
fslabel_other() {
	(cd / && setpriv --reuid=$OTHER --regid=$OTHER --clear-groups -- \
		"$UPY" -c "$FSLABEL_PY" "$m" "$@")
}
# on_disk OFFSET: the label in the superblock copy at OFFSET, read from
# the device (O_DIRECT: what the device holds, not a cache)
on_disk() {
	dd if="$loop" iflag=direct bs=4096 skip=$(($1 / 4096)) count=1 2>/dev/null |
		dd bs=1 skip=256 count=64 2>/dev/null | tr -d '\0'
}
# holds_loop: a posfs daemon has $loop open
holds_loop() {
	local p
	for p in $(pgrep -x posfs); do
		readlink /proc/$p/fd/* 2>/dev/null | grep -qx "$loop" && return 0
	done
	return 1
}
# umount_wait DIR: unmount DIR, wait (10 s) until the daemon let go of $loop
umount_wait() {
	umount "$1" || return 1
	for i in $(seq 100); do
		holds_loop || return 0
		sleep 0.1
	done
	return 1
}

# --- posfs LABEL=x: the daemon finds the device --------------------------------
reg_mount "$m"
run_status st "$POSFS" -o allow_other "LABEL=$lbl" "$m"
expect_eq "posfs LABEL=x status" "$st" 0
expect_match "mounted from the device" "$(grep " $m " /proc/mounts)" "^$loop $m fuse\.posfs "
expect_eq "GETFSLABEL" "$(fslabel get)" "$lbl"
expect_eq "GETFSLABEL as a user" "$(fslabel_other get)" "$lbl"
expect_eq "SETFSLABEL as a user: EPERM" "$(fslabel_other set user-label)" EPERM
expect_eq "SETFSLABEL 65 bytes: EINVAL" "$(fslabel set "$(printf 'x%.0s' $(seq 65))")" EINVAL
expect_eq "label unchanged" "$(fslabel get)" "$lbl"
new="new-$lbl"
expect_eq "SETFSLABEL" "$(fslabel set "$new")" OK
expect_eq "GETFSLABEL after" "$(fslabel get)" "$new"
expect_eq "primary superblock on the device, mounted" "$(on_disk 4096)" "$new"
expect_eq "backup superblock on the device, mounted" "$(on_disk 8192)" "$new"
long=$(printf 'y%.0s' $(seq 64))
expect_eq "SETFSLABEL 64 bytes" "$(fslabel set "$long")" OK
expect_eq "64 bytes back" "$(fslabel get)" "$long"
expect_eq "SETFSLABEL back" "$(fslabel set "$new")" OK
echo kept > "$m/f"
umount_wait "$m" || not_ok "the daemon did not end"

# --- the new label is the one found now; the old one is not -----------------
run_status st "$POSFS" "LABEL=$lbl" "$m"
expect_eq "old label: refused" "$st" 1
expect_match "old label: message" "$OUT" "^posfs: can't find LABEL=$lbl: no block device holds a posfs file system with that label\$"
grep -qs " $m fuse" /proc/mounts && umount "$m"

# --- mount.posfs LABEL=x, run as mount(8) would; then read-only ---------------
ln -s "$POSFS" "$T_DIR/mount.posfs" || exit 99
run_status st "$T_DIR/mount.posfs" "LABEL=$new" "$m" -f -o defaults,noatime
expect_eq "mount.posfs LABEL=x -f" "$OUT" "posfs -o noatime $loop $m"
run_status st "$T_DIR/mount.posfs" "LABEL=$new" "$m" -o ro
expect_eq "mount.posfs LABEL=x status" "$st" 0
expect_eq "content by label" "$(cat "$m/f" 2>&1)" kept
expect_eq "SETFSLABEL read-only: EROFS" "$(fslabel set other)" EROFS
umount_wait "$m" || not_ok "the daemon did not end"

# --- UUID=x and uuid=x --------------------------------------------------------------
run_status st "$POSFS" "UUID=${uuid^^}" "$m"
expect_eq "posfs UUID=x (upper case) status" "$st" 0
expect_eq "content by UUID" "$(cat "$m/f" 2>&1)" kept
umount_wait "$m" || not_ok "the daemon did not end"
run_status st "$POSFS" "UUID=not-a-uuid" "$m"
expect_eq "bad UUID refused" "$st" 1
expect_match "bad UUID message" "$OUT" "UUID=not-a-uuid: not a UUID"

# --- through mount(8): label= and uuid= (LABEL= it resolves itself and fails) --
exec 9> /var/tmp/posfs-tests-sbin.lock
flock 9
if [ -e /sbin/mount.posfs ]; then
	echo "# /sbin/mount.posfs is installed already: mount(8) checks skipped"
else
	ln -s "$POSFS" /sbin/mount.posfs && F_LINKS+=(/sbin/mount.posfs) || exit 99
	run_status st mount -t posfs "label=$new" "$m"
	expect_eq "mount -t posfs label=x status" "$st" 0
	expect_match "mount -t posfs label=x source" "$(grep " $m " /proc/mounts)" "^$loop $m fuse\.posfs "
	umount_wait "$m" || not_ok "the daemon did not end"
	echo "uuid=$uuid $m posfs noauto,ro 0 0" > "$T_DIR/fstab"
	run_status st mount -T "$T_DIR/fstab" "$m"
	expect_eq "fstab uuid=x status" "$st" 0
	expect_eq "fstab uuid=x: content, ro" \
		"$(cat "$m/f"):$(grep " $m " /proc/mounts | cut -d' ' -f4 | cut -d, -f1)" kept:ro
	umount_wait "$m" || not_ok "the daemon did not end"
fi
flock -u 9

# --- two loop devices hold the label: which to mount is not guessed ------------
loop_attach "$img" || { not_ok "a second loop device"; test_done; exit; }
run_status st "$POSFS" "LABEL=$new" "$m"
expect_eq "ambiguous label refused" "$st" 1
expect_match "ambiguous label message" "$OUT" "LABEL=$new is ambiguous: /dev/loop[0-9]+ and /dev/loop[0-9]+ both hold it"
grep -qs " $m fuse" /proc/mounts && umount "$m"
test_done
