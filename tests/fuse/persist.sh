#!/bin/bash
# posfs across mounts: a tree of files keeps its checksums over unmount and
# remount (and a daemonized mount); kill -9 of the daemon, then a remount
# finds every fsynced file intact (WAL replay) and an unlinked-while-open
# file reclaimed; a second mount of the same image is a bind of the
# first; start-up errors (bad option: 2; not a posfs, missing device: 1);
# -o ro.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fuse/common.sh"
fuse_init

img=$T_DIR/img
m=$T_DIR/mnt
m2=$T_DIR/mnt2
mkdir -p "$m2"
"$MKFS" -q -s 2 "$img" 256M || exit 99

sums() { (cd "$1" && find . -type f -print0 | sort -z | xargs -0 md5sum; \
	find . -printf '%p %y %m %s\n' | sort) | md5sum; }

pfs_mount "$img" "$m" || { not_ok "mount"; test_done; exit 1; }
mkdir -p "$m/t/a/b" "$m/t/c"
for i in $(seq 1 40); do head -c $((i * 1531)) /dev/urandom > "$m/t/a/f$i"; done
head -c 5000000 /dev/urandom > "$m/t/c/big"
ln -s ../c/big "$m/t/a/b/link"
ln "$m/t/a/f1" "$m/t/c/hard"
before=$(sums "$m/t")

# a second mount of the image is a bind of the first (tests/fuse/bind.sh)
reg_mount "$m2"
run_status st "$POSFS" -f "$img" "$m2"
expect_eq "second mount of the image: a bind" "$st:$(sums "$m2/t")" "0:$before"
umount "$m2"

pfs_umount "$m"
expect_eq "clean unmount" "$UMOUNT_STATUS" 0

# Remount, daemonized this time.
run_status st "$POSFS" "$img" "$m"
expect_eq "daemonized mount status" "$st" 0
reg_mount "$m"
wait_mounted "$m"
expect_eq "tree after remount" "$(sums "$m/t")" "$before"
umount "$m"
for i in $(seq 50); do
	pgrep -f "^$POSFS $img $m\$" >/dev/null || break
	sleep 0.1
done
expect_eq "daemon gone after umount" "$(pgrep -f "^$POSFS $img $m\$" || echo none)" none

# kill -9 with fsynced and unsynced data, an unlinked file held open.
pfs_mount "$img" "$m" || { not_ok "remount"; test_done; exit 1; }
expect_eq "tree after second remount" "$(sums "$m/t")" "$before"
py "import os
for i in range(20):
    fd = os.open('$m/sync%d' % i, os.O_CREAT|os.O_WRONLY, 0o644)
    os.write(fd, (b'%d' % i) * 10000)
    os.fsync(fd); os.close(fd)
d = os.open('$m', os.O_RDONLY); os.fsync(d); os.close(d)"
head -c 100000 /dev/urandom > "$m/nosync"
exec 9>"$m/orphan"
echo data >&9
rm "$m/orphan"
kill -9 "$PFS_PID"
wait "$PFS_PID" 2>/dev/null
exec 9>&-
umount -l "$m" 2>/dev/null || fusermount3 -u -z "$m" 2>/dev/null
expect_eq "mount gone after kill -9" "$(grep -c " $m " /proc/mounts)" 0
# a crash leaves nothing for fsck to repair: replaying the WAL (in memory
# with -n) is all it takes; the orphan is the mount's to reclaim
if [ -x "${FSCK:-}" ]; then
	run_status st "$FSCK" -fn "$img"
	expect_eq "fsck after kill -9: nothing to repair" "$st" 0
	[ "$st" = 0 ] || printf '%s\n' "$OUT" | sed 's/^/# /'
fi

pfs_mount "$img" "$m" || { not_ok "mount after kill -9"; test_done; exit 1; }
ok "mount after kill -9 (WAL replay)"
good=0
for i in $(seq 0 19); do
	[ "$(head -c 10000 "$m/sync$i" | md5sum)" = "$(py "import sys; sys.stdout.buffer.write(b'$i' * 10000)" | head -c 10000 | md5sum)" ] &&
		good=$((good + 1))
done
expect_eq "fsynced files intact" "$good" 20
expect_eq "tree after crash" "$(sums "$m/t")" "$before"
expect_eq "unlinked-while-open file gone after recovery" "$(ls "$m" | grep -c orphan)" 0
pfs_umount "$m"
expect_eq "clean unmount after crash" "$UMOUNT_STATUS" 0
if [ -x "${FSCK:-}" ]; then
	run_status st "$FSCK" -fn "$img"
	expect_eq "fsck after the recovery mount" "$st" 0
fi

# SIGTERM: unmount, checkpoint, exit 0.
pfs_mount "$img" "$m" || { not_ok "mount for SIGTERM"; test_done; exit 1; }
echo term > "$m/term"
kill -TERM "$PFS_PID"
wait "$PFS_PID"
expect_eq "exit status after SIGTERM" "$?" 0
expect_eq "unmounted by SIGTERM" "$(grep -c " $m " /proc/mounts)" 0
pfs_mount "$img" "$m" || { not_ok "mount after SIGTERM"; test_done; exit 1; }
expect_eq "file written before SIGTERM" "$(cat "$m/term")" term
pfs_umount "$m"

# Read-only.
pfs_mount "$img" "$m" -o ro || { not_ok "mount -o ro"; test_done; exit 1; }
expect_match "ro in /proc/mounts" "$(grep " $m " /proc/mounts)" " fuse\.posfs ro,"
expect_eq "tree read-only" "$(sums "$m/t")" "$before"
run_status st touch "$m/new"
expect_match "write on ro" "$OUT" "Read-only file system"
pfs_umount "$m"

# Start-up errors.
run_status st "$POSFS" -o no_such_option "$img" "$m"
expect_eq "bad option status" "$st" 2
expect_match "bad option usage" "$OUT" "Usage: posfs"
run_status st "$POSFS" "$img"
expect_eq "missing operand status" "$st" 2
truncate -s 64M "$T_DIR/zero"
run_status st "$POSFS" "$T_DIR/zero" "$m"
expect_eq "not a posfs status" "$st" 1
expect_match "not a posfs message" "$OUT" "not a posfs file system \(no posfs superblock\)"
run_status st "$POSFS" "$T_DIR/missing" "$m"
expect_eq "missing device status" "$st" 1
expect_match "missing device message" "$OUT" "No such file"
expect_eq "nothing left mounted" "$(grep -c " $m " /proc/mounts)" 0
run_status st "$POSFS" -V
expect_match "-V" "$OUT" "^posfs [0-9]"
test_done
