#!/bin/bash
# A full file system: files go to their directory's shard, so one large
# file fills that shard first; large writes then take blocks of the other
# shards, and the device is full only when every shard is. Files can still
# be created beside it and, full, removed; the data reads back after a
# remount and fsck finds nothing to repair.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fuse/common.sh"
fuse_init

img=$T_DIR/img
m=$T_DIR/mnt
"$MKFS" -q -s 2 "$img" 256M || exit 99

pfs_mount "$img" "$m" || { not_ok "mount"; test_done; exit 1; }
total_kb=$(df -k --output=size "$m" | tail -n 1 | tr -d " ")
# about 70% of the device: well past the one shard's half
big_mb=$((total_kb * 7 / 10 / 1024))
run_status st dd if=/dev/urandom of="$m/big" bs=1M count="$big_mb" conv=fsync status=none
expect_eq "a file of $big_mb MiB (more than one shard holds) is written" "$st" 0
sum=$(md5sum < "$m/big")
for i in 1 2 3 4 5; do head -c 3000 /dev/urandom > "$m/s$i" || break; done
expect_eq "small files beside it, in the full shard" "$(ls "$m" | grep -c '^s')" 5
mkdir "$m/d" && echo hi > "$m/d/x"
expect_eq "a directory and a file in it" "$(cat "$m/d/x")" hi
printf tiny > "$m/t" && head -c 5000 /dev/zero | tr '\0' x >> "$m/t"
expect_eq "a tiny file in the full shard grows out of its onode" "$(wc -c < "$m/t")" 5004
run_status st dd if=/dev/zero of="$m/fill" bs=1M status=none
expect_match "filling the rest ends in ENOSPC" "$OUT" "No space left on device"
used=$(df -k --output=used "$m" | tail -n 1 | tr -d " ")
[ "$used" -gt $((total_kb * 95 / 100)) ] && ok "the device is full: $used of $total_kb KiB" ||
	not_ok "ENOSPC with $used of $total_kb KiB used"
run_status st rm "$m/fill"
expect_eq "a full file system still removes a file" "$st" 0
pfs_umount "$m"
expect_eq "clean unmount" "$UMOUNT_STATUS" 0

pfs_mount "$img" "$m" || { not_ok "remount"; test_done; exit 1; }
expect_eq "the large file reads back" "$(md5sum < "$m/big")" "$sum"
run_status st rm "$m/big"
expect_eq "and is removed" "$st" 0
pfs_umount "$m"
if [ -x "${FSCK:-}" ]; then
	run_status st "$FSCK" -fn "$img"
	expect_eq "fsck -fn finds nothing" "$st" 0
	[ "$st" = 0 ] || echo "$OUT"
fi
test_done
