#!/bin/bash
# mount.posfs, the mount(8) helper: `mount -t posfs` on a loop device
# through /sbin/mount.posfs (a symlink to the daemon, made for the test and
# removed after), mount(8)'s own options dropped, -f (fake) and -v, -s
# (sloppy), mount.fuse.posfs for type fuse.posfs, the exit status of a
# failed mount, a second mount of the device (a bind), and the daemon's name (posfs in comm and argv[0], not the
# exe of /proc/self/exe).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fuse/common.sh"
command -v losetup >/dev/null || skip "losetup (util-linux) missing"
command -v mount >/dev/null || skip "mount (util-linux) missing"
fuse_init

# One test at a time puts helpers in /sbin (make check runs tests in
# parallel; mount.sh does the same): held until this script exits.
exec 9> /var/tmp/posfs-tests-sbin.lock
flock 9
for h in /sbin/mount.posfs /sbin/mount.fuse.posfs; do
	[ -e "$h" ] && skip "$h is installed already: not replacing it"
done
ln -s "$POSFS" /sbin/mount.posfs && F_LINKS+=(/sbin/mount.posfs) || exit 99
ln -s "$POSFS" /sbin/mount.fuse.posfs && F_LINKS+=(/sbin/mount.fuse.posfs) || exit 99

img=$T_DIR/img
m=$T_DIR/mnt
mkdir -p "$m"
truncate -s 256M "$img"
loop_attach "$img" || skip "no loop device could be attached"
"$MKFS" -q -s 2 "$LOOP" || exit 99

# The helper directly, as mount(8) calls it.
run_status st /sbin/mount.posfs "$LOOP" "$m" -f -o rw,defaults,noauto,nofail,_netdev,x-systemd.foo,noatime,threads=4
expect_eq "fake mount status" "$st" 0
expect_eq "mount(8) options dropped" "$OUT" "posfs -o noatime,threads=4 $LOOP $m"
run_status st /sbin/mount.posfs "$LOOP" "$m" -f -s -o noatime,whatever=1
expect_eq "sloppy drops unknown" "$OUT" "posfs -o noatime $LOOP $m"
run_status st /sbin/mount.posfs "$LOOP" "$m" -o whatever=1
expect_eq "unknown option fails the mount" "$st" 2

# mount -t posfs
reg_mount "$m"
run_status st mount -t posfs -o noauto,noatime "$LOOP" "$m"
expect_eq "mount -t posfs status" "$st" 0
expect_match "/proc/mounts" "$(grep " $m " /proc/mounts)" "^$LOOP $m fuse\.posfs rw,.*noatime"
echo on-loop > "$m/f"
sync
expect_eq "read back on $LOOP" "$(cat "$m/f")" on-loop
# The daemon mount.posfs started (as /proc/self/exe) is posfs to ps, top,
# pgrep -x and systemd: its comm and argv[0]; every thread's name starts
# with posfs (the ring's threads are posfs-urQ.N, its deferral thread
# posfs-udefer, for top -H).
dpid=$(pgrep -f "^posfs .*$LOOP" | head -n 1)
if [ -z "$dpid" ]; then
	not_ok "the daemon of $LOOP not found by its command line"
else
	expect_eq "daemon comm" "$(cat "/proc/$dpid/comm")" posfs
	expect_eq "daemon threads' comm not posfs..." \
		"$(sort -u /proc/$dpid/task/*/comm | grep -v '^posfs' | tr '\n' ' ')" ""
	expect_eq "daemon argv[0]" "$(tr '\0' '\n' < "/proc/$dpid/cmdline" | head -n 1)" posfs
	expect_match "pgrep -x posfs finds it" " $(pgrep -x posfs | tr '\n' ' ')" " $dpid "
fi
# a second mount of the device is a bind of the first (tests/fuse/bind.sh)
mkdir -p "$T_DIR/second"
reg_mount "$T_DIR/second"
run_status st mount -t posfs "$LOOP" "$T_DIR/second"
expect_eq "second mount -t posfs: a bind" "$st:$(cat "$T_DIR/second/f" 2>&1)" 0:on-loop
umount "$T_DIR/second"
umount "$m"
expect_eq "umount" "$(grep -c " $m " /proc/mounts)" 0
for i in $(seq 50); do
	pgrep -f "^posfs .*$LOOP" >/dev/null || break
	sleep 0.1
done

# fstab-style type fuse.posfs goes through mount.fuse.posfs
run_status st mount -t fuse.posfs -o ro "$LOOP" "$m"
expect_eq "mount -t fuse.posfs status" "$st" 0
expect_eq "content through fuse.posfs, ro" "$(cat "$m/f"):$(grep " $m " /proc/mounts | cut -d' ' -f4 | cut -d, -f1)" on-loop:ro
umount "$m"
for i in $(seq 50); do
	pgrep -f "^posfs .*$LOOP" >/dev/null || break
	sleep 0.1
done
expect_eq "daemon gone" "$(pgrep -f "^posfs .*$LOOP" || echo none)" none
test_done
