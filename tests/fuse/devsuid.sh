#!/bin/bash
# Device nodes and set-user-ID programs on a mount made by root: mount(8)'s
# defaults (suid, dev), as on ext4, so a character device made with mknod
# opens and a set-user-ID program runs as its owner; -o nosuid,nodev (and
# each alone) take them away again. The program runs as uid 65534 through
# setpriv, so the mount has allow_other.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fuse/common.sh"
fuse_init
command -v setpriv >/dev/null || skip "setpriv (util-linux) is needed"
ID=$(command -v id) || skip "id (coreutils) is needed"

img=$T_DIR/img
m=$T_DIR/mnt
"$MKFS" -q "$img" 64M || exit 99
chmod 755 "$T_DIR"	# for uid 65534 to reach the mount
OWNER=4242

mntopts() { grep " $m fuse.posfs " /proc/mounts | cut -d' ' -f4; }
# euid of the set-user-ID copy of id, run by uid 65534
suid_euid() { setpriv --reuid=65534 --regid=65534 --clear-groups "$m/id" -u 2>&1; }
dev_write() { (echo x > "$m/null") 2>&1 && echo ok; }

pfs_mount "$img" "$m" -o allow_other || { not_ok "mount"; test_done; exit; }
if [[ ",$(mntopts)," == *,nosuid,* || ",$(mntopts)," == *,nodev,* ]]; then
	not_ok "root's mount is nosuid or nodev: $(mntopts)"
else
	ok "root's mount has neither nosuid nor nodev: $(mntopts)"
fi
mknod "$m/null" c 1 3 && mknod "$m/zero" c 1 5 || not_ok "mknod"
expect_eq "a character device opens and takes a write" "$(dev_write)" ok
expect_eq "a character device reads" "$(head -c 4 "$m/zero" | od -An -tx1 | tr -d ' ')" 00000000
cp "$ID" "$m/id" && chown "$OWNER" "$m/id" && chmod 4755 "$m/id" || not_ok "set-user-ID copy"
expect_eq "a set-user-ID program runs as its owner" "$(suid_euid)" "$OWNER"
pfs_umount "$m"

pfs_mount "$img" "$m" -o allow_other,nosuid,nodev || { not_ok "mount nosuid,nodev"; test_done; exit; }
expect_match "nosuid,nodev in /proc/mounts" "$(mntopts)" "nosuid,nodev"
expect_match "nodev: the device does not open" "$(dev_write)" "Permission denied"
expect_eq "nosuid: the program runs as its caller" "$(suid_euid)" 65534
pfs_umount "$m"

pfs_mount "$img" "$m" -o allow_other,nosuid || { not_ok "mount nosuid"; test_done; exit; }
expect_eq "nosuid alone: the device opens" "$(dev_write)" ok
expect_eq "nosuid alone: the program runs as its caller" "$(suid_euid)" 65534
pfs_umount "$m"

pfs_mount "$img" "$m" -o allow_other,nodev || { not_ok "mount nodev"; test_done; exit; }
expect_match "nodev alone: the device does not open" "$(dev_write)" "Permission denied"
expect_eq "nodev alone: the program runs as its owner" "$(suid_euid)" "$OWNER"
pfs_umount "$m"
test_done
