#!/bin/bash
# mkfs.posfs refusals: each with its exit status and message, and the
# target untouched afterwards.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
test_init

img=$T_DIR/img

# refuse NAME STATUS REGEX TARGET -- MKFS-ARGS...: mkfs refuses, says why,
# and the target's bytes are as they were.
refuse() {
	local name=$1 want=$2 re=$3 target=$4 before after st
	shift 5
	before=$( [ -e "$target" ] && md5sum < "$target" || echo absent)
	run_status st "$MKFS" "$@"
	after=$( [ -e "$target" ] && md5sum < "$target" || echo absent)
	expect_eq "$name: exit status" "$st" "$want"
	expect_match "$name: message" "$OUT" "$re"
	expect_eq "$name: target untouched" "$after" "$before"
}

# Existing file systems.
"$MKFS" -q "$img" 16M
refuse "over posfs" 1 "contains an existing posfs file system; use -f" "$img" -- "$img"
"$MKFS" -q -f -L keepme "$img"
refuse "over labelled posfs" 1 "posfs file system labelled 'keepme'" "$img" -- "$img"
if command -v mkfs.ext4 >/dev/null; then
	rm -f "$img"; truncate -s 32M "$img"; mkfs.ext4 -q -F -L home "$img"
	refuse "over ext4" 1 "contains an existing ext4 file system labelled 'home'" "$img" -- "$img"
	rm -f "$img"; truncate -s 32M "$img"; mkfs.ext2 -q -F "$img"
	refuse "over ext2" 1 "existing ext2 file system" "$img" -- -q "$img"
else
	not_ok "mkfs.ext4 missing (e2fsprogs)"
fi
if command -v mkfs.xfs >/dev/null; then
	rm -f "$img"; truncate -s 512M "$img"; mkfs.xfs -q -f "$img"
	refuse "over xfs" 1 "existing xfs file system" "$img" -- "$img"
else
	not_ok "mkfs.xfs missing (xfsprogs)"
fi
if command -v mkfs.btrfs >/dev/null; then
	rm -f "$img"; truncate -s 256M "$img"; mkfs.btrfs -q -f "$img" >/dev/null
	refuse "over btrfs" 1 "existing btrfs file system" "$img" -- "$img"
	run_status st "$MKFS" -q -f "$img"
	expect_eq "-f formats over btrfs" "$st" 0
	"$PFSTOOL" "$img" >/dev/null && ok "btrfs replaced by a valid posfs" || not_ok "posfs invalid after -f"
else
	not_ok "mkfs.btrfs missing (btrfs-progs)"
fi

# Sizes and paths.
rm -f "$img"
refuse "too small" 1 "too small .* needs at least" "$img" -- "$img" 1M
[ ! -e "$img" ] && ok "too small: no file left" || not_ok "too small left a file"
refuse "too small for 8 shards" 1 "needs at least" "$img" -- -s 8 "$img" 16M
refuse "missing file, no size" 1 "does not exist: give a SIZE" "$img" -- "$img"
truncate -s 0 "$img"
refuse "empty file, no size" 1 "is empty: give a SIZE" "$img" -- "$img"
truncate -s 2M "$img"
refuse "small existing file" 1 "too small" "$img" -- "$img"
refuse "a directory" 1 "neither a block device nor a regular file" "$img" -- "$T_DIR"
refuse "a character device" 1 "neither a block device nor a regular file" "$img" -- /dev/null
refuse "no such directory" 1 "cannot create" "$img" -- "$T_DIR/no/such/img" 16M

# Usage errors: exit 2, nothing touched.
truncate -s 16M "$img"
refuse "bad block size" 2 "bad block size '1000'" "$img" -- -b 1000 "$img"
refuse "block size too big" 2 "bad block size" "$img" -- -b 128K "$img"
refuse "zero shards" 2 "bad shard count '0'" "$img" -- -s 0 "$img"
refuse "too many shards" 2 "bad shard count '257' \(1 to 256\)" "$img" -- -s 257 "$img"
refuse "long label" 2 "is 65 bytes long; at most 64" "$img" -- \
	-L "$(printf 'x%.0s' {1..65})" "$img"
refuse "bad uuid" 2 "bad UUID 'xyz'" "$img" -- -U xyz "$img"
refuse "bad WAL size" 2 "bad WAL size 'lots'" "$img" -- -J size=lots "$img"
refuse "unknown -J" 2 "unknown -J option 'huge'" "$img" -- -J huge "$img"
refuse "WAL below four small writes" 2 "at least four small writes" "$img" -- -J size=1M -w 512K "$img"
refuse "small write too big" 2 "bad small-write threshold" "$img" -- -w 2M "$img"
refuse "bad size" 2 "bad size '12Q'" "$img" -- "$img" 12Q
refuse "unknown option" 2 "Try 'mkfs.posfs -h'" "$img" -- -Z "$img"
refuse "unknown -E" 2 "unknown extended option 'bogus'" "$img" -- -E bogus "$img"
refuse "bad root_owner" 2 "bad root_owner" "$img" -- -E root_owner=a:b "$img"
refuse "extra argument" 2 "unexpected argument 'extra'" "$img" -- "$img" 16M extra
refuse "no device" 2 "no device or file given" "$img" --
refuse "WAL below minimum" 2 "WAL size '512K' is below the minimum of 1M" "$img" -- -J size=512K "$img"
refuse "global WAL below minimum" 2 "global WAL size '64K' is below" "$img" -- -J global=64K "$img"
refuse "WAL above maximum" 2 "WAL size '5G' is above the maximum of 4G" "$img" -- -J size=5G "$img" 64G
refuse "global WAL above maximum" 2 "global WAL size '8G' is above" "$img" -- -J global=8G "$img"

# In use: locked by a running posfs (flock), attached to a loop device,
# mounted through a loop device over it.
truncate -s 16M "$T_DIR/locked"
flock -x "$T_DIR/locked" sleep 30 &
lockpid=$!
for _ in $(seq 50); do flock -n -x "$T_DIR/locked" true || break; sleep 0.1; done
refuse "locked image" 1 "is in use: locked by flock \(pid $lockpid\)" "$T_DIR/locked" -- -f "$T_DIR/locked"
kill "$lockpid" 2>/dev/null; wait "$lockpid" 2>/dev/null

if [ "$(id -u)" = 0 ] && command -v losetup >/dev/null; then
	rm -f "$img"; truncate -s 64M "$img"
	loop_attach "$img" || { not_ok "losetup failed"; test_done; exit; }
	loop=$LOOP
	refuse "image attached to a loop device" 1 "attached to $loop \(use -f twice" "$img" -- -f "$img"
	# A mounted block device is busy even with -f.
	mkfs.ext4 -q -F "$loop"
	mkdir -p "$T_DIR/mnt"
	if mount_reg "$loop" "$T_DIR/mnt"; then
		refuse "mounted device" 1 "is in use: mounted on $T_DIR/mnt" "$img" -- -f "$loop"
		refuse "mounted device's image" 1 \
			"in use: loop device $loop over the same file is mounted on $T_DIR/mnt" \
			"$img" -- -f -f "$img"
		umount "$T_DIR/mnt"
	else
		not_ok "could not mount ext4 on $loop"
	fi
	refuse "size past the device" 1 "is larger than" "$img" -- -f "$loop" 128M
else
	echo "# loop device cases need root and losetup: not run"
fi

test_done
