#!/bin/bash
# mkfs.posfs on a loop device: the whole device, a size smaller than it,
# read back through libposfs.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
need_root
command -v losetup >/dev/null || skip "losetup (util-linux) missing"
test_init

img=$T_DIR/img
truncate -s 96M "$img"
loop_attach "$img" || skip "no loop device could be attached"
loop=$LOOP
out=$T_DIR/inspect

run_status st "$MKFS" -s 2 -L loopfs "$loop"
expect_eq "mkfs on $loop" "$st" 0
expect_match "summary names a block device" "$OUT" "block device"
"$PFSTOOL" "$loop" > "$out"
expect_eq "pfs-inspect on $loop" "$?" 0
expect_eq "total blocks = device size" "$(field "$out" total_blocks)" $((96 << 20 >> 12))
expect_eq "shards" "$(field "$out" shard_count)" 2
expect_eq "label" "$(field "$out" label)" loopfs
expect_eq "sector size recorded" "$(field "$out" sector_size)" "$(blockdev --getss "$loop")"
expect_eq "root directory" "$(field "$out" onode.1.mode)" 40755

# A size smaller than the device.
run_status st "$MKFS" -q -f "$loop" 32M
expect_eq "mkfs 32M on $loop" "$st" 0
"$PFSTOOL" "$loop" > "$out"
expect_eq "total blocks = size asked" "$(field "$out" total_blocks)" $((32 << 20 >> 12))

# The image file behind the loop device reads the same.
loop_detach "$loop"
"$PFSTOOL" "$img" > "$T_DIR/inspect2"
expect_eq "image reads as the device did" "$(grep -v '^super.used' "$T_DIR/inspect2" | md5sum)" \
	"$(grep -v '^super.used' "$out" | md5sum)"

test_done
