#!/bin/bash
# Removal on a full file system. Each size and shard count is filled with
# file data until ENOSPC, then with empty files until ENOSPC (they take
# the metadata space the data leaves); then every way of giving space back
# must work: rmdir, unlink of many small files, truncate to half and to 0,
# rm of a large file (its removal goes through the orphan list), also
# after a remount while full. Afterwards the space is back and fsck finds
# nothing to repair.
#
# FULL_REMOVE_SIZES and FULL_REMOVE_SHARDS (space separated) choose the
# configurations; the images are sparse, so the large ones cost only the
# data written.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fuse/common.sh"
fuse_init

sizes=${FULL_REMOVE_SIZES:-64M 512M 4G}
shard_counts=${FULL_REMOVE_SHARDS:-1 4}

# df_kb DIR FIELD: one df figure in KiB
df_kb() {
	df -k --output="$2" "$1" | tail -n 1 | tr -d " "
}

# fill_data FILE: write zeros to FILE until ENOSPC; its status in FILL_ST
fill_data() {
	run_status FILL_ST dd if=/dev/zero of="$1" bs=1M status=none
	printf '%s' "$OUT" | grep -q "No space left on device" || FILL_ST=ok
}

# fill_names DIR: empty files until ENOSPC, in new directories when one is
# refused (they take the shards in turn), until 16 in a row hold nothing
# or a directory cannot be made; prints how many it made, or an error
fill_names() {
	py '
import errno, os, sys
top = sys.argv[1]
made = empty = 0
for d in range(100000):
    dn = os.path.join(top, "n%d" % d)
    try:
        os.mkdir(dn)
    except FileExistsError:
        continue
    except OSError as e:
        if e.errno == errno.ENOSPC:
            break
        raise
    k = 0
    while True:
        try:
            os.close(os.open(os.path.join(dn, "f%d" % k), os.O_CREAT | os.O_WRONLY, 0o644))
        except OSError as e:
            if e.errno == errno.ENOSPC:
                break
            raise
        k += 1
        made += 1
    empty = empty + 1 if k == 0 else 0
    if empty == 16:
        break
print(made)
' "$1" 2>&1
}

# fill DIR TAG: data, then names, until ENOSPC both ways
fill() {
	local n
	fill_data "$1/fill$FILLS"
	FILLS=$((FILLS + 1))
	n=$(fill_names "$1")
	case $n in
	*[!0-9]*|"") not_ok "$2: filling with names: $n" ;;
	esac
	[ "$FILL_ST" = ok ] && not_ok "$2: filling with data ended without ENOSPC"
	return 0
}

run_one() {
	local size=$1 shards=$2 tag="$1, $2 shard(s)"
	local img=$T_DIR/img m=$T_DIR/mnt total avail big_kb st n i

	rm -f "$img"
	FILLS=0
	if ! "$MKFS" -q -s "$shards" "$img" "$size"; then
		not_ok "$tag: mkfs"
		return
	fi
	pfs_mount "$img" "$m" || { not_ok "$tag: mount"; return; }
	total=$(df_kb "$m" size)
	mkdir "$m/e1" "$m/e2" "$m/small"
	for i in $(seq 200); do
		printf 'small %d\n' "$i" > "$m/small/s$i"
	done
	dd if=/dev/zero of="$m/t0" bs=1M count=$((total / 8 / 1024)) status=none
	dd if=/dev/zero of="$m/th" bs=1M count=$((total / 8 / 1024)) status=none
	dd if=/dev/zero of="$m/big2" bs=1M count=$((total / 4 / 1024)) status=none
	fill_data "$m/big"
	expect_eq "$tag: the large file is written until ENOSPC" "$FILL_ST" 1
	n=$(fill_names "$m")
	expect_match "$tag: then empty files until ENOSPC" "$n" '^[0-9]+$'
	expect_eq "$tag: df shows nothing available" "$(df_kb "$m" avail)" 0

	run_status st rmdir "$m/e1"
	expect_eq "$tag: rmdir when full" "$st" 0
	fill "$m" "$tag"
	st=0
	for i in $(seq 200); do
		rm "$m/small/s$i" 2>/dev/null || st=$((st + 1))
	done
	expect_eq "$tag: unlink of 200 small files when full (failures)" "$st" 0
	fill "$m" "$tag"
	run_status st truncate -s $((total / 16))K "$m/th"
	expect_eq "$tag: truncate to half when full" "$st" 0
	fill "$m" "$tag"
	run_status st truncate -s 0 "$m/t0"
	expect_eq "$tag: truncate to 0 when full" "$st" 0
	fill "$m" "$tag"
	run_status st rm "$m/big2"
	expect_eq "$tag: rm of a large file when full" "$st" 0
	fill "$m" "$tag"

	pfs_umount "$m"
	expect_eq "$tag: clean unmount when full" "$UMOUNT_STATUS" 0
	pfs_mount "$img" "$m" || { not_ok "$tag: remount when full"; return; }
	run_status st rmdir "$m/e2"
	expect_eq "$tag: rmdir after a remount when full" "$st" 0
	big_kb=$(($(stat -c %s "$m/big") / 1024))
	avail=$(df_kb "$m" avail)
	run_status st rm "$m/big"
	expect_eq "$tag: rm of the large file after a remount when full" "$st" 0
	[ "$st" = 0 ] || echo "$OUT"
	[ $(($(df_kb "$m" avail) - avail)) -ge $((big_kb * 9 / 10)) ] &&
		ok "$tag: its $big_kb KiB are available again" ||
		not_ok "$tag: $big_kb KiB removed, available $avail -> $(df_kb "$m" avail) KiB"
	run_status st rm -rf "$m/small" "$m/th" "$m/t0" "$m"/fill* "$m"/n*
	expect_eq "$tag: everything else removed" "$st" 0
	[ "$(df_kb "$m" avail)" -ge $((total * 9 / 10)) ] &&
		ok "$tag: the space is back" ||
		not_ok "$tag: empty, but only $(df_kb "$m" avail) of $total KiB available"
	pfs_umount "$m"
	expect_eq "$tag: clean unmount" "$UMOUNT_STATUS" 0
	if [ -x "${FSCK:-}" ]; then
		run_status st "$FSCK" -fn "$img"
		expect_eq "$tag: fsck -fn finds nothing" "$st" 0
		[ "$st" = 0 ] || echo "$OUT"
	fi
	rm -f "$img"
}

for size in $sizes; do
	for shards in $shard_counts; do
		run_one "$size" "$shards"
	done
done
test_done
