#!/bin/bash
# mkfs.posfs on image files: sizes, shard counts and options, each result
# read back through libposfs (pfs-inspect) and checked field by field.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
test_init

img=$T_DIR/img

# check_image IMG: every structure verifies and the space adds up.
check_image() {
	local out=$T_DIR/inspect n i sum fb
	"$PFSTOOL" "$1" > "$out"
	expect_eq "pfs-inspect status" "$?" 0
	expect_eq "no structure fails" "$(grep -c '^error=' "$out")" 0
	expect_eq "primary superblock valid" "$(field "$out" super.primary)" 0
	expect_eq "backup superblock valid" "$(field "$out" super.backup)" 0
	n=$(field "$out" shard_count)
	for ((i = 0; i < n; i++)); do
		fb=$(field "$out" "shard$i.free_blocks")
		sum=$(field "$out" "shard$i.free_sum")
		expect_eq "shard $i free tree holds free_blocks" "$sum" "$fb"
		expect_eq "shard $i both header slots valid" \
			"$(field "$out" "shard$i.slot_a")/$(field "$out" "shard$i.slot_b")" "0/0"
		expect_eq "shard $i empty WAL" "$(field "$out" "shard$i.wal_tail_lsn")" 1
	done
	cp "$out" "$T_DIR/last"
}

# 1. Defaults on a new 16 MiB image.
run_status st "$MKFS" -q "$img" 16M
expect_eq "mkfs 16M exit" "$st" 0
expect_eq "image size" "$(stat -c %s "$img")" $((16 << 20))
check_image "$img"
L=$T_DIR/last
expect_eq "block size" "$(field $L block_size)" 4096
expect_eq "total blocks" "$(field $L total_blocks)" 4096
expect_eq "one shard for 16M" "$(field $L shard_count)" 1
expect_eq "small writes" "$(field $L small_write)" 32768
expect_eq "WAL 1 MiB" "$(field $L wal_blocks)" 256
expect_eq "incompat features" "$(field $L features_incompat)" global_wal
expect_eq "root directory" "$(field $L onode.1.mode)" 40755
expect_eq "root nlink" "$(field $L onode.1.nlink)" 2
expect_eq "root owner" "$(field $L onode.1.uid)" "$(id -u)"
expect_eq "root is its own parent" "$(field $L onode.1.parent)" 1
expect_eq "state clean" "$(field $L state)" 1
rm -f "$img"

# 2. Every option at once on a 1 GiB image.
run_status st "$MKFS" -q -b 8192 -s 4 -J size=4M,global=2M -w 16K -L "my volume" \
	-U 0123abcd-4567-89ab-cdef-0123456789ab -E root_owner=1000:100 "$img" 1G
expect_eq "mkfs all options exit" "$st" 0
check_image "$img"
expect_eq "block size" "$(field $L block_size)" 8192
expect_eq "total blocks" "$(field $L total_blocks)" 131072
expect_eq "shards" "$(field $L shard_count)" 4
expect_eq "WAL blocks" "$(field $L wal_blocks)" 512
expect_eq "global WAL blocks" "$(field $L global_wal_blocks)" 256
expect_eq "small writes" "$(field $L small_write)" 16384
expect_eq "label" "$(field $L label)" "my volume"
expect_eq "uuid" "$(field $L uuid)" 0123abcd-4567-89ab-cdef-0123456789ab
expect_eq "root uid" "$(field $L onode.1.uid)" 1000
expect_eq "root gid" "$(field $L onode.1.gid)" 100
expect_eq "label at its fixed offset" \
	"$(dd if="$img" bs=1 skip=$((4096 + 0x100)) count=9 2>/dev/null)" "my volume"
expect_eq "magic at its fixed offset" \
	"$(dd if="$img" bs=1 skip=4100 count=4 2>/dev/null)" "PFSB"

# 3. Several sizes and shard counts.
for spec in "64M 1" "64M 3" "300M 0" "2G 2" "2G 0" "5G 16"; do
	set -- $spec
	rm -f "$img"
	if [ "$2" = 0 ]; then sopt=(); else sopt=(-s "$2"); fi
	run_status st "$MKFS" -q "${sopt[@]}" "$img" "$1"
	expect_eq "mkfs $1 with ${2} shards" "$st" 0
	check_image "$img"
	[ "$2" != 0 ] && expect_eq "$1 shard count" "$(field $L shard_count)" "$2"
done
# 2 GiB, default shards: one per CPU, each at least 256 MiB.
rm -f "$img"
"$MKFS" -q "$img" 2G
"$PFSTOOL" "$img" > "$L"
ncpu=$(nproc); want=$((ncpu < 8 ? ncpu : 8))
expect_eq "default shards for 2G on $ncpu CPUs" "$(field $L shard_count)" "$want"

# 4. A bare size is in KiB, or in blocks with -b (as mke2fs).
rm -f "$img"
"$MKFS" -q "$img" 16384 && expect_eq "bare size in KiB" "$(stat -c %s "$img")" $((16 << 20))
rm -f "$img"
"$MKFS" -q -b 8192 "$img" 2048 && expect_eq "bare size in blocks with -b" "$(stat -c %s "$img")" $((16 << 20))

# 5. An existing file without SIZE keeps its size; a larger SIZE grows it.
rm -f "$img"; truncate -s 20M "$img"
run_status st "$MKFS" -q "$img"
expect_eq "existing file, no size" "$st" 0
expect_eq "file size kept" "$(stat -c %s "$img")" $((20 << 20))
run_status st "$MKFS" -q -f "$img" 40M
expect_eq "reformat larger" "$st" 0
expect_eq "file grown" "$(stat -c %s "$img")" $((40 << 20))
check_image "$img"
expect_eq "fs uses the new size" "$(field $L total_blocks)" 10240

# 6. Reformat with -f: a new uuid, the old superblocks gone.
old=$(field $L uuid)
"$MKFS" -q -f "$img"
"$PFSTOOL" "$img" > "$L"
[ "$(field $L uuid)" != "$old" ] && ok "reformat gives a new uuid" || not_ok "uuid unchanged"

# 7. Dry run writes nothing; on a missing file it creates nothing.
sum=$(md5sum < "$img")
run_status st "$MKFS" -n "$img"
expect_eq "dry run reports the refusal it would make" "$st" 1
run_status st "$MKFS" -n -f "$img"
expect_eq "dry run exit" "$st" 0
expect_match "dry run says so" "$OUT" "Dry run: nothing was written"
expect_eq "dry run left the image alone" "$(md5sum < "$img")" "$sum"
run_status st "$MKFS" -n "$T_DIR/new" 64M
expect_eq "dry run on a new file" "$st" 0
[ ! -e "$T_DIR/new" ] && ok "dry run created no file" || not_ok "dry run created a file"

# 8. The summary and the tools' own flags.
rm -f "$img"
run_status st "$MKFS" "$img" 64M
expect_match "summary capacity" "$OUT" "Capacity: +64\.0 MiB \(16384 blocks of 4096 bytes\)"
expect_match "summary atomic write" "$OUT" "Atomic write unit: "
expect_match "summary uuid" "$OUT" "UUID: +[0-9a-f]{8}-"
run_status st "$MKFS" -V
expect_eq "-V exit" "$st" 0
expect_match "-V" "$OUT" "^mkfs.posfs [0-9]+\.[0-9]+"
run_status st "$MKFS" -h
expect_eq "-h exit" "$st" 0
expect_match "-h" "$OUT" "Usage: mkfs.posfs"

# 9. The manual names every option -h lists, and no other.
help_opts=$("$MKFS" -h | sed -n 's/^  \(-[A-Za-z]\).*/\1/p' | sort -u | tr '\n' ' ')
man_opts=$(sed -n 's/^\.\(B\|BI\|BR\) \\\(-[A-Za-z]\).*/\2/p' "$top_srcdir/man/mkfs.posfs.8" | \
	sed 's/^\\//' | sort -u | tr '\n' ' ')
expect_eq "options in -h and in mkfs.posfs.8" "$man_opts" "$help_opts"
for e in root_owner lazy_journal_init; do
	"$MKFS" -h | grep -q "$e" && grep -q "^\.BR $e" "$top_srcdir/man/mkfs.posfs.8" &&
		ok "extended option $e in -h and the manual" || not_ok "extended option $e"
done

test_done
