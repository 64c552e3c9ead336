#!/bin/bash
# mount -o remount,ro and remount,rw through mount.posfs, as on ext4: ro
# stops every write (EROFS; the daemon writes home and marks the file
# system clean, then leaves the device alone), rw takes writes again, all
# without unmounting; a remount,ro is refused while a file is open for
# writing or deleted while open; a remount,rw of a mount made with -o ro
# (device opened read-only) fails with a clear message; a remount by
# mount(2) alone, without the helper, is followed by the daemon. The
# options mount(8) passes to every file system (nodiratime, lazytime,
# iversion, mand...) are taken at mount and remount, and nodiratime keeps
# a directory's atime; the atime policy follows a remount (noatime,
# relatime, strictatime, diratime).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fuse/common.sh"
command -v mount >/dev/null || skip "mount (util-linux) missing"
fuse_init

# one test at a time puts helpers in /sbin (helper.sh, mount.sh too)
exec 9> /var/tmp/posfs-tests-sbin.lock
flock 9
for h in /sbin/mount.posfs /sbin/mount.fuse.posfs; do
	[ -e "$h" ] && skip "$h is installed already: not replacing it"
done
# mount(8) runs mount.fuse.posfs on a remount (the type mountinfo has)
ln -s "$POSFS" /sbin/mount.posfs && F_LINKS+=(/sbin/mount.posfs) || exit 99
ln -s "$POSFS" /sbin/mount.fuse.posfs && F_LINKS+=(/sbin/mount.fuse.posfs) || exit 99

img=$T_DIR/img
m=$T_DIR/mnt
mkdir -p "$m"
"$MKFS" -q "$img" 64M || exit 99

mntopts() { grep " $m fuse.posfs " /proc/mounts | cut -d' ' -f4; }
state() { "$PFSTOOL" "$img" | sed -n 's/^state=//p'; }
# umount_wait: unmount, and wait (10 s) for the daemon to close the store
umount_wait() {
	local n
	umount "$m" || return 1
	for n in $(seq 100); do
		pgrep -f "^posfs .*$img" >/dev/null || return 0
		sleep 0.1
	done
	return 1
}
atime() { py 'import os,sys; print(os.stat(sys.argv[1]).st_atime_ns)' "$1"; }

reg_mount "$m"
run_status st mount -t posfs "$img" "$m"
expect_eq "mount -t posfs" "$st" 0
echo before > "$m/f"
expect_eq "not clean while writable" "$(state)" 0

# --- remount,ro ------------------------------------------------------------
run_status st mount -o remount,ro "$m"
expect_eq "remount,ro status" "$st:$OUT" "0:"
expect_match "remount,ro: ro in /proc/mounts" "$(mntopts)" "^ro,"
run_status st sh -c "echo x > '$m/g'"
expect_match "remount,ro: a new file is refused" "$OUT" "Read-only file system"
run_status st sh -c "echo x >> '$m/f'"
expect_match "remount,ro: a write is refused" "$OUT" "Read-only file system"
expect_eq "remount,ro: what was written reads back" "$(cat "$m/f")" before
expect_eq "remount,ro: home and marked clean on the device" "$(state)" 1
sum1=$(md5sum < "$img")
py 'import os,sys; os.utime(sys.argv[1], ns=(1000000000, 2000000000))' "$m/f" 2>/dev/null &&
	not_ok "remount,ro: utime was taken"
cat "$m/f" > /dev/null
ls -la "$m" > /dev/null
sleep 6		# past the checkpoint timer (5 s)
expect_eq "remount,ro: nothing written to the device (atime, timer)" "$(md5sum < "$img")" "$sum1"

# --- remount,rw ------------------------------------------------------------
run_status st mount -o remount,rw "$m"
expect_eq "remount,rw status" "$st:$OUT" "0:"
expect_match "remount,rw: rw in /proc/mounts" "$(mntopts)" "^rw,"
echo after > "$m/g"
expect_eq "remount,rw: writes again" "$(cat "$m/g")" after
expect_eq "remount,rw: not clean again" "$(state)" 0

# --- remount,ro while a file is open for writing: refused, as on ext4 -------
exec 8>> "$m/g"
run_status st mount -o remount,ro "$m"
[ "$st" != 0 ] && ok "remount,ro with a writer refused ($st)" || not_ok "remount,ro with a writer succeeded"
expect_match "remount,ro with a writer: message" "$OUT" "a file is open for writing"
expect_match "remount,ro with a writer: still rw" "$(mntopts)" "^rw,"
exec 8>&-
echo more >> "$m/g"
expect_eq "still writable after the refusal" "$(tail -n 1 "$m/g")" more
# ... and while a file deleted while open is held (its space is given
# back at the last close, a write)
echo gone > "$m/u"
exec 8< "$m/u"
rm "$m/u"
run_status st mount -o remount,ro "$m"
[ "$st" != 0 ] && ok "remount,ro with a deleted file open refused ($st)" ||
	not_ok "remount,ro with a deleted file open succeeded"
expect_match "remount,ro with a deleted file open: message" "$OUT" "deleted while open"
exec 8<&-

# --- the options mount(8) passes to every file system ------------------------
run_status st mount -o remount,rw,nodiratime,lazytime,iversion,nomand "$m"
expect_eq "remount with nodiratime,lazytime,iversion,nomand" "$st:$OUT" "0:"
expect_match "remount: nodiratime in /proc/mounts" "$(mntopts)" "nodiratime"
umount_wait
expect_eq "umount: clean" "$(state)" 1

run_status st mount -t posfs -o nodiratime,lazytime,nolazytime,iversion,noiversion,mand,nomand "$img" "$m"
expect_eq "mount with mount(8)'s common options" "$st:$OUT" "0:"
expect_match "nodiratime in the kernel's flags (/proc/mounts)" "$(mntopts)" "nodiratime"
mkdir -p "$m/d"
echo x > "$m/d/x"
py 'import os,sys; [os.utime(p, ns=(1000000000, 2000000000)) for p in sys.argv[1:]]' "$m/d" "$m/d/x"
ls "$m/d" > /dev/null
cat "$m/d/x" > /dev/null
expect_eq "nodiratime: a listing leaves the directory's atime" "$(atime "$m/d")" 1000000000
[ "$(atime "$m/d/x")" -gt 2000000000 ] && ok "nodiratime: a file's atime is updated (relatime)" ||
	not_ok "nodiratime: the file's atime was not updated"
umount_wait

# --- the atime policy follows a remount (the daemon keeps atime) ------------
# old_atime F: atime older than mtime, so that relatime updates it
old_atime() { py 'import os,sys; os.utime(sys.argv[1], ns=(1000000000, 2000000000))' "$1"; }
# recent_atime F: atime newer than mtime and ctime and recent: only
# strictatime updates it
recent_atime() {
	py 'import os,sys,time; t=time.time_ns(); os.utime(sys.argv[1], ns=(t+60*10**9, t-10**9))' "$1"
}
read_updates() {
	local a=$(atime "$1")
	cat "$1" > /dev/null
	[ "$(atime "$1")" != "$a" ] && echo yes || echo no
}
run_status st mount -t posfs "$img" "$m"
expect_eq "mount (relatime)" "$st" 0
run_status st mount -o remount,noatime "$m"
expect_eq "remount,noatime" "$st:$OUT" "0:"
expect_match "remount,noatime in /proc/mounts" "$(mntopts)" "noatime"
old_atime "$m/f"
expect_eq "remount,noatime: a read leaves atime" "$(read_updates "$m/f")" no
run_status st mount -o remount,relatime "$m"
expect_eq "remount,relatime" "$st:$OUT" "0:"
expect_match "remount,relatime in /proc/mounts" "$(mntopts)" "relatime"
expect_eq "remount,relatime: an old atime is updated" "$(read_updates "$m/f")" yes
recent_atime "$m/f"
expect_eq "remount,relatime: a recent atime stays" "$(read_updates "$m/f")" no
run_status st mount -o remount,strictatime "$m"
expect_eq "remount,strictatime" "$st:$OUT" "0:"
recent_atime "$m/f"
expect_eq "remount,strictatime: every read updates atime" "$(read_updates "$m/f")" yes
umount_wait
# mounted strictatime, the kernel shows relatime (FUSE is not told): a
# remount,ro and back keeps strictatime
run_status st mount -t posfs -o strictatime "$img" "$m"
expect_eq "mount -o strictatime" "$st" 0
mount -o remount,ro "$m" && mount -o remount,rw "$m" || not_ok "remount ro and rw"
recent_atime "$m/f"
expect_eq "strictatime kept over remounts" "$(read_updates "$m/f")" yes
# nodiratime given at mount (not shown by the kernel) stays over a remount
umount_wait
run_status st mount -t posfs -o nodiratime "$img" "$m"
mount -o remount,ro "$m" && mount -o remount,rw "$m" || not_ok "remount ro and rw"
old_atime "$m/d"
ls "$m/d" > /dev/null
expect_eq "nodiratime kept over remounts" "$(atime "$m/d")" 1000000000
run_status st mount -o remount,diratime "$m"
ls "$m/d" > /dev/null
[ "$(atime "$m/d")" != 1000000000 ] && ok "remount,diratime: a listing updates atime" ||
	not_ok "remount,diratime: atime left"
umount_wait

# --- remount,rw of a mount whose device was opened read-only ----------------
run_status st mount -t posfs -o ro "$img" "$m"
expect_eq "mount -o ro" "$st" 0
run_status st mount -o remount,rw "$m"
[ "$st" != 0 ] && ok "remount,rw of -o ro refused ($st)" || not_ok "remount,rw of -o ro succeeded"
expect_match "remount,rw of -o ro: message" "$OUT" "mounted with -o ro, which opens the device read-only"
expect_match "remount,rw of -o ro: still ro" "$(mntopts)" "^ro,"
expect_eq "remount,rw of -o ro: still readable" "$(cat "$m/g" | head -n 1)" after
run_status st mount -o remount,ro "$m"
expect_eq "remount,ro of -o ro: nothing to do" "$st:$OUT" "0:"
umount_wait

# --- a remount that bypasses mount.posfs: mount(2) MS_REMOUNT alone ----------
# (mount(8) given the source too, a program, SysRq u): the daemon follows
# the kernel's flag of its file system
kremount() {
	py 'import ctypes,os,sys
libc = ctypes.CDLL(None, use_errno=True)
flags = 32 | (1 if sys.argv[2] == "ro" else 0)	# MS_REMOUNT, MS_RDONLY
if libc.mount(b"none", sys.argv[1].encode(), None, flags, None):
    sys.exit(os.strerror(ctypes.get_errno()))' "$m" "$1"
}
# wait_state S: until the device says state S (5 s)
wait_state() {
	local n
	for n in $(seq 50); do
		[ "$(state)" = "$1" ] && return 0
		sleep 0.1
	done
	return 1
}
run_status st mount -t posfs "$img" "$m"
expect_eq "mount again" "$st" 0
echo k > "$m/k"
run_status st kremount ro
expect_eq "mount(2) MS_REMOUNT|MS_RDONLY" "$st:$OUT" "0:"
wait_state 1 && ok "mount(2) ro alone: the daemon wrote home and marked clean" ||
	not_ok "mount(2) ro alone: the daemon did not follow (state $(state))"
sum2=$(md5sum < "$img")
cat "$m/k" > /dev/null
sleep 6
expect_eq "mount(2) ro alone: nothing written to the device" "$(md5sum < "$img")" "$sum2"
run_status st kremount rw
expect_eq "mount(2) MS_REMOUNT" "$st:$OUT" "0:"
wait_state 0 && ok "mount(2) rw alone: the daemon is writable again" ||
	not_ok "mount(2) rw alone: state $(state)"
echo k2 > "$m/k"
expect_eq "mount(2) rw alone: writes" "$(cat "$m/k")" k2
umount_wait

# the daemon itself does not remount: it says where that is done
run_status st "$POSFS" -f -o remount "$img" "$m"
expect_eq "posfs -o remount: usage" "$st" 2
expect_match "posfs -o remount: message" "$OUT" "remount is mount\(8\)'s"
test_done
