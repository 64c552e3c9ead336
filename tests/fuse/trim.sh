#!/bin/bash
# fstrim(8) and -o discard. On an image file and on a loop device over
# one, fstrim -v gives the free space back (the image holds fewer blocks)
# and says how much; the files left read back intact and fsck finds
# nothing. With -o discard, removing a large file shrinks the image with
# no fstrim, once a checkpoint has made the removal durable. fstrim by
# anyone but root is refused. kill -9 of the daemon right after a remove
# and a trim loses nothing that was fsynced, and fsck is clean after.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fuse/common.sh"
fuse_init
command -v fstrim >/dev/null || skip "fstrim (util-linux) is needed"
command -v setpriv >/dev/null || skip "setpriv (util-linux) is needed"
: "${FSCK:=$top_builddir/fsck/fsck.posfs}"

img=$T_DIR/img
m=$T_DIR/mnt

# KiB the image file holds on its file system
held_kb() { echo $(($(stat -c %b "$img") * $(stat -c %B "$img") / 1024)); }

# write_files DIR: f1..f8 of 8 MiB each, fsynced; their sums in $T_DIR/sums
write_files() {
	local i
	for i in 1 2 3 4 5 6 7 8; do
		dd if=/dev/urandom of="$1/f$i" bs=1M count=8 conv=fsync status=none || return 1
	done
	(cd "$1" && md5sum f7 f8) > "$T_DIR/sums"
}

# trimmed OUTPUT: the bytes of "fstrim -v" output
trimmed() { printf '%s' "$1" | sed -n 's/.*(\([0-9]*\) bytes) trimmed.*/\1/p'; }

# check_fstrim WHAT DEVICE: the whole round on a posfs made on DEVICE
check_fstrim() {
	local what=$1 dev=$2 before after st n
	"$MKFS" -q -f -s 2 "$dev" >/dev/null || { not_ok "$what: mkfs"; return; }
	pfs_mount "$dev" "$m" || { not_ok "$what: mount"; return; }
	write_files "$m" || not_ok "$what: writing the files"
	rm "$m"/f[1-6]
	sync
	before=$(held_kb)
	run_status st fstrim -v "$m"
	expect_eq "$what: fstrim -v" "$st" 0
	n=$(trimmed "$OUT")
	expect_match "$what: fstrim says what it trimmed" "$OUT" "^$m: .*\\([0-9]+ bytes\\) trimmed"
	[ -n "$n" ] && [ "$n" -ge $((48 << 20)) ] && [ "$n" -le $((256 << 20)) ] &&
		ok "$what: $n bytes trimmed, the 48 MiB removed among them" ||
		not_ok "$what: $n bytes trimmed ($OUT)"
	after=$(held_kb)
	[ "$after" -le $((before - 40 * 1024)) ] &&
		ok "$what: the image holds $before KiB before, $after KiB after" ||
		not_ok "$what: the image held $before KiB, $after KiB after fstrim"
	expect_eq "$what: the files left read back" "$(cd "$m" && md5sum f7 f8)" "$(cat "$T_DIR/sums")"
	pfs_umount "$m"
	expect_eq "$what: clean unmount" "$UMOUNT_STATUS" 0
	pfs_mount "$dev" "$m" || { not_ok "$what: remount"; return; }
	expect_eq "$what: and after a remount" "$(cd "$m" && md5sum f7 f8)" "$(cat "$T_DIR/sums")"
	pfs_umount "$m"
	run_status st "$FSCK" -fn "$dev"
	expect_eq "$what: fsck -fn finds nothing" "$st" 0
	[ "$st" = 0 ] || echo "$OUT"
}

# 1. an image file: FITRIM punches holes in it
truncate -s 256M "$img"
check_fstrim "image file" "$img"

# 2. a loop device over one: BLKDISCARD, which the loop driver punches
rm -f "$img"
truncate -s 256M "$img"
if loop_attach "$img"; then
	check_fstrim "loop device" "$LOOP"
	loop_detach "$LOOP"
else
	not_ok "losetup of the image"
fi

# 3. -o discard: a remove shrinks the image at the next checkpoint
rm -f "$img"
"$MKFS" -q -s 2 "$img" 256M || exit 99
pfs_mount "$img" "$m" -o discard || { not_ok "mount -o discard"; test_done; exit 1; }
dd if=/dev/urandom of="$m/big" bs=1M count=64 conv=fsync status=none
echo kept > "$m/kept" && sync "$m/kept"
before=$(held_kb)
rm "$m/big"
sync
after=$before
for n in $(seq 150); do		# the checkpoint timer: 5 s
	after=$(held_kb)
	[ "$after" -le $((before - 56 * 1024)) ] && break
	sleep 0.1
done
[ "$after" -le $((before - 56 * 1024)) ] &&
	ok "-o discard: removing 64 MiB, the image holds $before KiB, then $after KiB" ||
	not_ok "-o discard: the image still holds $after KiB (had $before KiB)"
expect_eq "-o discard: the other file reads back" "$(cat "$m/kept")" kept
pfs_umount "$m"
expect_eq "-o discard: clean unmount" "$UMOUNT_STATUS" 0
run_status st "$FSCK" -fn "$img"
expect_eq "-o discard: fsck -fn finds nothing" "$st" 0
[ "$st" = 0 ] || echo "$OUT"

# 4. fstrim by another user: refused (allow_other and a way through
# T_DIR, so that it gets as far as the ioctl)
chmod 755 "$T_DIR"
pfs_mount "$img" "$m" -o allow_other || { not_ok "mount -o allow_other"; test_done; exit 1; }
run_status st setpriv --reuid=65534 --regid=65534 --clear-groups -- fstrim -v "$m"
[ "$st" != 0 ] && ok "fstrim by uid 65534 fails" || not_ok "fstrim by uid 65534: $OUT"
expect_match "fstrim by uid 65534: refused" "$OUT" "Operation not permitted"
pfs_umount "$m"

# 5. kill -9 right after a remove and a trim: nothing fsynced is lost
rm -f "$img"
"$MKFS" -q -s 2 "$img" 256M || exit 99
pfs_mount "$img" "$m" -o discard || { not_ok "mount for kill -9"; test_done; exit 1; }
write_files "$m" || not_ok "kill -9: writing the files"
rm "$m"/f[1-6]
py "
import os
d = os.open('$m', os.O_RDONLY); os.fsync(d); os.close(d)"
run_status st fstrim "$m"
expect_eq "kill -9: fstrim" "$st" 0
dd if=/dev/urandom of="$m/late" bs=1M count=4 conv=fsync status=none
(cd "$m" && md5sum late) >> "$T_DIR/sums"
rm "$m/f7"
kill -9 "$PFS_PID"
wait "$PFS_PID" 2>/dev/null
umount "$m" 2>/dev/null || umount -l "$m"
run_status st "$FSCK" -fn "$img"
expect_eq "kill -9: fsck -fn before any mount" "$st" 0
[ "$st" = 0 ] || echo "$OUT"
pfs_mount "$img" "$m" || { not_ok "remount after kill -9"; test_done; exit 1; }
expect_eq "kill -9: the fsynced files read back" \
	"$(cd "$m" && md5sum f8 late)" "$(grep -v ' f7$' "$T_DIR/sums")"
if [ -e "$m/f7" ]; then	# its remove was not fsynced: either way, never garbage
	expect_eq "kill -9: f7, whose remove was lost, reads back" \
		"$(cd "$m" && md5sum f7)" "$(grep ' f7$' "$T_DIR/sums")"
else
	ok "kill -9: f7's remove reached the device"
fi
pfs_umount "$m"
expect_eq "kill -9: clean unmount" "$UMOUNT_STATUS" 0
run_status st "$FSCK" -fn "$img"
expect_eq "kill -9: fsck -fn after the remount" "$st" 0
[ "$st" = 0 ] || echo "$OUT"
test_done
