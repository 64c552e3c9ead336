#!/bin/bash
# Mounting: an fstab line (mount DIR, umount DIR), the atime policies
# (relatime by default, noatime, strictatime), the readahead option, and refusals of file
# systems with features this posfs does not know: an unknown incompat
# feature refuses the mount, an unknown ro_compat one allows -o ro only.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fuse/common.sh"
command -v mount >/dev/null || skip "mount (util-linux) missing"
fuse_init

img=$T_DIR/img
m=$T_DIR/mnt
"$MKFS" -q "$img" 64M || exit 99

# atime of F in ns, after reading it once
atime_after_read() {
	py 'import os,sys; f=sys.argv[1]; open(f).read(); print(os.stat(f).st_atime_ns)' "$1"
}
atime() {
	py 'import os,sys; print(os.stat(sys.argv[1]).st_atime_ns)' "$1"
}

# --- atime policies -------------------------------------------------------
pfs_mount "$img" "$m" || { not_ok "mount"; test_done; exit; }
echo data > "$m/f"
py 'import os,sys; os.utime(sys.argv[1], ns=(1000000000, 2000000000))' "$m/f"	# atime < mtime
a1=$(atime_after_read "$m/f")
[ "$a1" -gt 2000000000 ] && ok "relatime: atime older than mtime is updated by a read" ||
	not_ok "relatime: atime $a1 not updated"
# atime > mtime and > ctime (which the utime itself sets to the daemon's clock,
# so an atime of "now" could fall behind it), and recent
py 'import os,sys,time; t=time.time_ns(); os.utime(sys.argv[1], ns=(t+60*10**9, t-10**9))' "$m/f"
a2=$(atime "$m/f")
a3=$(atime_after_read "$m/f")
expect_eq "relatime: a recent atime newer than mtime stays" "$a3" "$a2"
pfs_umount "$m"

pfs_mount "$img" "$m" -o noatime || { not_ok "mount noatime"; test_done; exit; }
py 'import os,sys; os.utime(sys.argv[1], ns=(1000000000, 2000000000))' "$m/f"
a4=$(atime_after_read "$m/f")
expect_eq "noatime: a read leaves atime" "$a4" 1000000000
expect_match "noatime in /proc/mounts" "$(grep " $m " /proc/mounts)" "noatime"
pfs_umount "$m"

# --- readahead: 1024 KiB after the first open, or as asked -------------------
ra_kb() { cat "/sys/class/bdi/$(awk -v m="$1" '$5 == m { mm = $3 } END { print mm }' /proc/self/mountinfo)/read_ahead_kb"; }
pfs_mount "$img" "$m" || { not_ok "mount"; test_done; exit; }
cat "$m/f" > /dev/null
expect_eq "readahead: 1024 KiB by default once a file is open" "$(ra_kb "$m")" 1024
pfs_umount "$m"
pfs_mount "$img" "$m" -o readahead=256 || { not_ok "mount readahead=256"; test_done; exit; }
cat "$m/f" > /dev/null
expect_eq "readahead=256" "$(ra_kb "$m")" 256
pfs_umount "$m"
pfs_mount "$img" "$m" -o readahead=0 || { not_ok "mount readahead=0"; test_done; exit; }
cat "$m/f" > /dev/null
expect_eq "readahead=0 leaves the kernel's 128" "$(ra_kb "$m")" 128
pfs_umount "$m"

pfs_mount "$img" "$m" -o strictatime || { not_ok "mount strictatime"; test_done; exit; }
py 'import os,sys,time; t=time.time_ns()-10**9; os.utime(sys.argv[1], ns=(t, t-10**9))' "$m/f"
a5=$(atime "$m/f")
a6=$(atime_after_read "$m/f")
[ "$a6" -gt "$a5" ] && ok "strictatime: every read updates atime" || not_ok "strictatime: $a6 <= $a5"
pfs_umount "$m"

# --- an fstab line, with mount.posfs in /sbin ------------------------------
# one test at a time puts helpers in /sbin (helper.sh too); held to the end
exec 9> /var/tmp/posfs-tests-sbin.lock
flock 9
if [ -e /sbin/mount.posfs ] || [ -e /sbin/mount.fuse.posfs ]; then
	echo "# /sbin/mount.*posfs installed already: fstab case not run"
else
	ln -s "$POSFS" /sbin/mount.posfs && F_LINKS+=(/sbin/mount.posfs) || exit 99
	fstab=$T_DIR/fstab
	cp /etc/fstab "$fstab.saved" 2>/dev/null || : > "$fstab.saved"
	restore_fstab() { cp "$fstab.saved" /etc/fstab; }
	trap 'restore_fstab; f_cleanup; t_cleanup' EXIT
	echo "$img $m posfs noatime,noauto 0 0" >> /etc/fstab
	reg_mount "$m"
	run_status st mount "$m"
	expect_eq "mount DIR from an fstab line" "$st" 0
	expect_match "fstab mount in /proc/mounts" "$(grep " $m " /proc/mounts)" "^$img $m fuse\.posfs rw,.*noatime"
	expect_eq "data through the fstab mount" "$(cat "$m/f")" data
	run_status st umount "$m"
	expect_eq "umount DIR" "$st" 0
	for n in $(seq 100); do pgrep -f "posfs.* $m\$" >/dev/null || break; sleep 0.1; done
	pgrep -f "posfs.* $m\$" >/dev/null && not_ok "daemon still running after umount" ||
		ok "daemon gone after umount"
	restore_fstab
fi

# --- unknown features -------------------------------------------------------
# Set a bit in the superblock's feature words (both copies) and reseal them
# (crc32c of bytes 4..4095 at offset 0).
set_feature() {	# word offset (0x54 ro_compat, 0x58 incompat), bit
	py '
import struct, sys
def crc32c(data, crc=0):
    crc ^= 0xffffffff
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xffffffff
img, word, bit = sys.argv[1], int(sys.argv[2], 0), int(sys.argv[3])
with open(img, "r+b") as f:
    for off in (4096, 8192):
        f.seek(off)
        sb = bytearray(f.read(4096))
        v = struct.unpack_from("<I", sb, word)[0] | (1 << bit)
        struct.pack_into("<I", sb, word, v)
        struct.pack_into("<I", sb, 0, crc32c(bytes(sb[4:])))
        f.seek(off)
        f.write(sb)
' "$img" "$1" "$2"
}
cp "$img" "$T_DIR/orig"
set_feature 0x58 30
run_status st "$POSFS" -f "$img" "$m"
expect_eq "unknown incompat feature: mount refused" "$st" 1
expect_match "unknown incompat feature: message" "$OUT" "incompat"
cp "$T_DIR/orig" "$img"
set_feature 0x54 30
run_status st "$POSFS" -f "$img" "$m"
expect_eq "unknown ro_compat feature: read-write refused" "$st" 1
expect_match "unknown ro_compat feature: message names -o ro" "$OUT" "-o ro"
pfs_mount "$img" "$m" -o ro && ok "unknown ro_compat feature: -o ro mounts" ||
	not_ok "unknown ro_compat feature: -o ro refused"
expect_eq "read-only mount reads" "$(cat "$m/f" 2>&1)" data
run_status st sh -c "echo x > '$m/g'"
expect_match "read-only mount refuses a write" "$OUT" "Read-only file system"
pfs_umount "$m"

test_done
