#!/bin/bash
# posfs over a real mount: data checksums. A byte flipped in a data block on
# the image makes reads of that block fail with EIO (never the wrong bytes),
# the log names the inode, offset and device block once, the other blocks
# and files read fine, a partial write into the block fails and a whole one
# heals it. fsck.posfs -D (deep) reads every file's data and names a
# damaged file by its path, exits 4 and leaves the superblock's error state
# alone; without -D it reads no data. A file system made with
# -O ^data_csum reads what the device holds, as before the feature.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fuse/common.sh"
fuse_init
: "${DAMAGE:=$top_builddir/tests/pfs-damage}"
: "${FSCK:=$top_builddir/fsck/fsck.posfs}"
[ -x "$DAMAGE" ] || skip "tests/pfs-damage is not built"
[ -x "$FSCK" ] || skip "$FSCK is not built"

img=$T_DIR/img
m=$T_DIR/mnt
log=$T_DIR/daemon.log

# count REGEX: lines of the daemon log that match
count() { grep -cE "$1" "$log"; }

# populate: a (64 KiB), b (64 KiB) in a directory, c (tiny, inline)
populate() {
	mkdir "$m/d"
	head -c 65536 /dev/urandom > "$m/d/a"
	head -c 65536 /dev/urandom > "$m/d/b"
	echo tiny > "$m/c"
	A_MD5=$(md5sum < "$m/d/a")
	A_HEAD=$(head -c 12288 "$m/d/a" | md5sum)
	B_MD5=$(md5sum < "$m/d/b")
	A_INO=$(stat -c %i "$m/d/a")
}

# ---- with data checksums (the default), 4 KiB chunks ------------------------
"$MKFS" -q -s 2 "$img" 256M || exit 99
expect_match "mkfs: checksums on" "$("$MKFS" -n -f -s 2 "$img" 256M 2>&1)" "Data checksums: +crc32c per 4096 bytes"
pfs_mount "$img" "$m" || { not_ok "mount"; test_done; exit 1; }
populate
pfs_umount "$m"
"$DAMAGE" "$img" data "$A_INO" 3 || { not_ok "pfs-damage data"; test_done; exit 1; }

: > "$log"
pfs_mount "$img" "$m" || { not_ok "mount after damage"; test_done; exit 1; }
expect_eq "other file reads fine" "$(md5sum < "$m/d/b")" "$B_MD5"
expect_eq "inline file reads fine" "$(cat "$m/c")" tiny
expect_eq "blocks before the bad one read fine" \
	"$(dd if="$m/d/a" bs=4096 count=3 status=none | md5sum)" "$A_HEAD"
expect_eq "the bad block: EIO, no bytes" "$(py "import os, errno
fd = os.open('$m/d/a', os.O_RDONLY)
try:
    os.pread(fd, 4096, 3 * 4096); print('read')
except OSError as e:
    print(errno.errorcode[e.errno])")" EIO
expect_eq "a read across it: EIO" "$(cat "$m/d/a" >/dev/null 2>&1 && echo read || echo failed)" failed
expect_eq "blocks after it read fine" "$(py "import os
fd = os.open('$m/d/a', os.O_RDONLY)
print(len(os.pread(fd, 8192, 4 * 4096)))")" 8192
expect_eq "the log names inode, offset and device block once" \
	"$(count "data checksum mismatch: inode $A_INO, offset 12288, device block [0-9]+")" 1
expect_eq "a partial write into the bad block: EIO" "$(py "import os, errno
fd = os.open('$m/d/a', os.O_WRONLY)
try:
    os.pwrite(fd, b'x' * 100, 3 * 4096 + 10); print('written')
except OSError as e:
    print(errno.errorcode[e.errno])")" EIO
expect_eq "a whole-block write heals it" "$(py "import os
fd = os.open('$m/d/a', os.O_RDWR)
os.pwrite(fd, b'y' * 4096, 3 * 4096); os.fsync(fd)
print(os.pread(fd, 4096, 3 * 4096) == b'y' * 4096, len(os.pread(fd, 65536, 0)))")" "True 65536"
pfs_umount "$m"
expect_eq "clean unmount" "$UMOUNT_STATUS" 0
pfs_mount "$img" "$m" || { not_ok "mount after heal"; test_done; exit 1; }
expect_eq "healed after a remount" "$(py "import os
fd = os.open('$m/d/a', os.O_RDONLY)
print(os.pread(fd, 4096, 3 * 4096) == b'y' * 4096, len(os.pread(fd, 65536, 0)))")" "True 65536"
pfs_umount "$m"

# fsck -D names the damaged file by its path; without -D it reads no data
"$MKFS" -q -f -s 2 "$img" 256M || exit 99
pfs_mount "$img" "$m" || { not_ok "mount"; test_done; exit 1; }
populate
pfs_umount "$m"
"$DAMAGE" "$img" data "$A_INO" 0 || { not_ok "pfs-damage data"; test_done; exit 1; }
run_status st "$FSCK" -fn "$img"
expect_eq "fsck -fn: data not read, clean" "$st" 0
run_status st "$FSCK" -fn -D "$img"
expect_eq "fsck -fn -D: errors left" "$st" 4
expect_match "fsck -D names the file" "$OUT" "/d/a"
expect_eq "fsck -D names only it" "$(printf '%s\n' "$OUT" | grep -c '/d/b')" 0
expect_match "fsck -D: inode, offset and device block" "$OUT" \
	"/d/a \(inode $A_INO\): 1 bad block: offset 0 \(device block [0-9]+\)"
run_status st "$FSCK" -fn -E deep "$img"
expect_eq "fsck -E deep is -D" "$st" 4
# -y cannot repair data: still 4, and no error state for the metadata
run_status st "$FSCK" -fy -D "$img"
expect_eq "fsck -fy -D: data left damaged" "$st" 4
expect_match "fsck -fy -D: restore from a backup" "$OUT" "[Rr]estore the file from a backup"
run_status st "$FSCK" -n "$img"
expect_eq "after -fy -D: the superblock says clean" "$st" 0
expect_match "after -fy -D: clean, not checked again" "$OUT" "clean, [0-9]+/[0-9]+ blocks"
pfs_mount "$img" "$m" || { not_ok "mount after fsck -D"; test_done; exit 1; }
expect_eq "after fsck -D: the other file reads fine" "$(md5sum < "$m/d/b")" "$B_MD5"
pfs_umount "$m"

# ---- a larger block with smaller chunks ------------------------------------
"$MKFS" -q -f -s 2 -b 8192 -E csum_chunk=1024 "$img" 256M || exit 99
pfs_mount "$img" "$m" || { not_ok "mount (8K blocks)"; test_done; exit 1; }
populate
pfs_umount "$m"
"$DAMAGE" "$img" data "$A_INO" 2 || { not_ok "pfs-damage data (8K)"; test_done; exit 1; }
: > "$log"
pfs_mount "$img" "$m" || { not_ok "mount after damage (8K)"; test_done; exit 1; }
expect_eq "8K blocks, 1K chunks: the bad block is EIO" "$(py "import os, errno
fd = os.open('$m/d/a', os.O_RDONLY)
out = [len(os.pread(fd, 8192, 8192))]
try:
    os.pread(fd, 8192, 2 * 8192); out.append('read')
except OSError as e:
    out.append(errno.errorcode[e.errno])
print(*out)")" "8192 EIO"
expect_eq "8K blocks: other file reads fine" "$(md5sum < "$m/d/b")" "$B_MD5"
expect_eq "8K blocks: logged at offset 16384" "$(count "inode $A_INO, offset 16384,")" 1
pfs_umount "$m"

# ---- without data checksums: the device's bytes, as before the feature -----
"$MKFS" -q -f -s 2 -O ^data_csum "$img" 256M || exit 99
expect_match "mkfs -O ^data_csum" "$("$MKFS" -n -f -s 2 -O ^data_csum "$img" 256M 2>&1)" "Data checksums: +none"
pfs_mount "$img" "$m" || { not_ok "mount (no checksums)"; test_done; exit 1; }
populate
pfs_umount "$m"
"$DAMAGE" "$img" data "$A_INO" 3 || { not_ok "pfs-damage data (no checksums)"; test_done; exit 1; }
pfs_mount "$img" "$m" || { not_ok "mount after damage (no checksums)"; test_done; exit 1; }
expect_eq "no checksums: the flipped bytes read back" \
	"$( [ "$(md5sum < "$m/d/a")" != "$A_MD5" ] && wc -c < "$m/d/a")" 65536
pfs_umount "$m"

# ---- bad options ------------------------------------------------------------
run_status st "$MKFS" -q -f -E csum_chunk=256 "$img" 256M
expect_eq "csum_chunk below 512: usage error" "$st" 2
run_status st "$MKFS" -q -f -E csum_chunk=8192 "$img" 256M
expect_eq "csum_chunk above the block: usage error" "$st" 2
run_status st "$MKFS" -q -f -O ^data_csum -E csum_chunk=4096 "$img" 256M
expect_eq "csum_chunk without data_csum: usage error" "$st" 2
run_status st "$MKFS" -q -f -O frobnicate "$img" 256M
expect_eq "unknown feature: usage error" "$st" 2
expect_match "unknown feature: named" "$OUT" "unknown feature 'frobnicate'"
test_done
