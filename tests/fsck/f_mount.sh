#!/bin/bash
# A mount that meets damaged metadata, as ext4 with EXT2_ERROR_FS: the
# mount (the daemon, and mount -t posfs through mount.posfs) of an image
# with a damaged free-space tree, onode tree root or root directory fails
# with a message that names what is damaged, never "not a posfs file
# system" and never advice to run mkfs; the superblock state gets
# POSFS_STATE_ERRORS, so that fsck -p or -y without -f checks it
# ("contains a file system with errors, check forced"), repairs it (or,
# -p, stops where it must ask), and a second fsck -n finds nothing; then
# the mount works. Damage met at run time (an omap block, a crafted
# extent) fails the request with EUCLEAN or EBADMSG and marks the device
# at once, before any unmount (a daemon killed with -9 leaves the mark).
# Both superblocks with bad checksums are "damaged"; "not a posfs file
# system" is only for a device with no posfs superblock.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fuse/common.sh"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fsck/common.sh"
fsck_init
[ -x "$DAMAGE" ] || skip "tests/pfs-damage is not built"

base=$T_DIR/base.img
img=$T_DIR/img
m=$T_DIR/mnt
mkdir -p "$m"

# Two shards: files in the root's shard 0, a directory tree in shard 1
# (directories spread to the emptier shard), so each shard has objects.
"$MKFS" -q -s 2 "$base" 128M || exit 99
pfs_mount "$base" "$m" || { not_ok "mount the base image"; test_done; exit 1; }
echo small > "$m/small"
head -c 65536 /dev/urandom > "$m/medium"
for d in d1 d2 d3; do
	mkdir "$m/$d"
	for i in 1 2 3 4; do echo "$d $i" > "$m/$d/f$i"; done
done
MEDIUM_INO=$(stat -c %i "$m/medium")
pfs_umount "$m"

# has_errors IMG: is POSFS_STATE_ERRORS in the superblock state?
has_errors() {
	local st
	"$PFSTOOL" "$1" > "$T_DIR/inspect" 2>&1
	st=$(field "$T_DIR/inspect" state)
	[ -n "$st" ] && [ $((st & 2)) -ne 0 ]
}

# no_bad_advice WHAT TEXT: the message says neither "not a posfs" nor mkfs
no_bad_advice() {
	if printf '%s' "$2" | grep -Eq "not a posfs|mkfs"; then
		not_ok "$1: '$2' says 'not a posfs' or advises mkfs"
	else
		ok "$1: no 'not a posfs', no mkfs advice"
	fi
}

# daemon_fails WHAT REGEX: the daemon (in the background, as mount.posfs
# runs it) refuses $img with a message matching REGEX
daemon_fails() {
	local st
	reg_mount "$m"
	run_status st "$POSFS" "$img" "$m"
	expect_eq "$1: the daemon fails" "$st" 1
	if [ "$st" = 0 ]; then
		umount "$m"
		sleep 0.5
	fi
	expect_match "$1: the message names the damage" "$OUT" "$2"
	expect_match "$1: the message names the device" "$OUT" "^posfs: $img: "
	no_bad_advice "$1" "$OUT"
}

# marked WHAT: the superblock of $img now says "errors"
marked() {
	has_errors "$img" && ok "$1: the superblock is marked with errors" ||
		not_ok "$1: the superblock is not marked with errors ($(grep '^state=' "$T_DIR/inspect"))"
}

# fsck_forced WHAT MODE STATUS: fsck MODE (no -f) checks $img because of
# the mark, and exits STATUS
fsck_forced() {
	local st
	run_status st "$FSCK" "$2" "$img"
	expect_eq "$1: fsck $2 (no -f) exit" "$st" "$3"
	expect_match "$1: fsck $2 says why it checks" "$OUT" \
		"$img contains a file system with errors, check forced"
	[ "$st" = "$3" ] || printf '%s\n' "$OUT" | sed 's/^/# /'
}

# repaired WHAT [ENTRIES_LOST]: a second fsck -n finds nothing; the mark
# is gone; the image mounts and (unless the root's entries were what was
# damaged: then its files are in /lost+found) /small reads back
repaired() {
	local st
	run_status st "$FSCK" -n "$img"
	expect_eq "$1: fsck -n after the repair" "$st" 0
	[ "$st" = 0 ] || printf '%s\n' "$OUT" | sed 's/^/# /'
	has_errors "$img" && not_ok "$1: still marked with errors after the repair" ||
		ok "$1: the mark is cleared by the repair"
	if pfs_mount "$img" "$m"; then
		ok "$1: the repaired image mounts"
		if [ -z "${2:-}" ]; then
			expect_eq "$1: small reads back" "$(cat "$m/small")" small
		else
			expect_eq "$1: the root's files are in /lost+found" \
				"$(cat "$m"/lost+found/* 2>/dev/null | grep -c '^small$')" 1
		fi
		pfs_umount "$m"
	else
		not_ok "$1: the repaired image mounts"
	fi
}

# ---- damage that fails the mount ----------------------------------------------
CASE="free-space tree"
cp "$base" "$img" && "$DAMAGE" "$img" free-tree 1 || exit 99
daemon_fails "$CASE" "the free-space tree of shard 1 is damaged.*run fsck\.posfs"
marked "$CASE"
fsck_forced "$CASE" -p 1
repaired "$CASE"

CASE="onode tree root in the shard header"
cp "$base" "$img" && "$DAMAGE" "$img" radix-root 1 || exit 99
daemon_fails "$CASE" "the onode tree of shard 1 is damaged.*run fsck\.posfs"
marked "$CASE"
# -p does not cut a tree without asking: it stops, as e2fsck does
fsck_forced "$CASE" -p 4
expect_match "$CASE: -p stops" "$OUT" "UNEXPECTED INCONSISTENCY"
fsck_forced "$CASE" -y 1
repaired "$CASE"

# damage the namespace layer finds: the store has nothing to say
CASE="root directory not a directory"
cp "$base" "$img" && "$DAMAGE" "$img" mode 1 100644 || exit 99
daemon_fails "$CASE" "the root directory or an orphan list is damaged.*run fsck\.posfs"
marked "$CASE"
fsck_forced "$CASE" -y 1
run_status st "$FSCK" -n "$img"
expect_eq "$CASE: fsck -n after the repair" "$st" 0

# the same refusal through mount(8) and mount.posfs, on a loop device
if command -v losetup >/dev/null && command -v mount >/dev/null &&
   [ ! -e /sbin/mount.posfs ]; then
	exec 9> /var/tmp/posfs-tests-sbin.lock
	flock 9
	if [ ! -e /sbin/mount.posfs ] && ln -s "$POSFS" /sbin/mount.posfs; then
		F_LINKS+=(/sbin/mount.posfs)
		cp "$base" "$img" && "$DAMAGE" "$img" free-tree 1 || exit 99
		if loop_attach "$img"; then
			reg_mount "$m"
			run_status st mount -t posfs "$LOOP" "$m"
			expect_eq "mount -t posfs: fails" "$st" 1
			[ "$st" = 0 ] && umount "$m"
			expect_match "mount -t posfs: names the damage" "$OUT" \
				"$LOOP: the free-space tree of shard 1 is damaged.*run fsck\.posfs"
			no_bad_advice "mount -t posfs" "$OUT"
			loop_detach "$LOOP"
			marked "mount -t posfs"
		else
			echo "# no loop device: mount -t posfs not tried"
		fi
		rm -f /sbin/mount.posfs
	fi
	exec 9>&-
else
	echo "# losetup or mount missing, or a mount.posfs installed: mount -t posfs not tried"
fi

# ---- damage met at run time -----------------------------------------------------
# runtime WHAT DAMAGE_ARGS PATH_TO_READ: the mount works; reading PATH fails
# with EUCLEAN; the mark is on the device while mounted; kill -9; fsck -p
# checks for the errors (not only for the unclean unmount)
runtime() {
	local what=$1 path=$3 got
	cp "$base" "$img" && "$DAMAGE" "$img" $2 > /dev/null || exit 99
	has_errors "$img" && not_ok "$what: marked before the mount" ||
		ok "$what: not marked before the mount"
	if ! pfs_mount "$img" "$m"; then
		not_ok "$what: mount"
		return
	fi
	got=$(py 'import os, sys, errno
p = sys.argv[1]
try:
    if os.path.isdir(p):
        os.listdir(p)
    else:
        with open(p, "rb") as f:
            f.read()
    print("ok")
except OSError as e:
    print(errno.errorcode[e.errno])' "$m/$path")
	expect_match "$what: reading /$path" "$got" "^(EUCLEAN|EBADMSG)$"
	marked "$what: while mounted"
	kill -9 "$PFS_PID"
	wait "$PFS_PID" 2>/dev/null
	umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
	marked "$what: after kill -9"
}

CASE="omap of the root directory"
runtime "$CASE" "omap 1" ""
fsck_forced "$CASE" -p 4
fsck_forced "$CASE" -y 1
repaired "$CASE" entries-lost

CASE="extent far past the largest file"
runtime "$CASE" "extent-set $MEDIUM_INO lblk 4503599627370496" medium
fsck_forced "$CASE" -p 4
fsck_forced "$CASE" -y 1
repaired "$CASE"

# ---- the superblocks ----------------------------------------------------------------
CASE="both superblocks"
cp "$base" "$img" && "$DAMAGE" "$img" sb-primary && "$DAMAGE" "$img" sb-backup || exit 99
daemon_fails "$CASE" "both superblocks are damaged.*run fsck\.posfs"
run_status st "$FSCK" -n "$img"
expect_eq "$CASE: fsck cannot repair them" "$st" 8
expect_match "$CASE: fsck says so" "$OUT" "both superblocks are damaged"
no_bad_advice "$CASE: fsck" "$OUT"

CASE="no posfs at all"
truncate -s 64M "$T_DIR/zero.img"
reg_mount "$m"
run_status st "$POSFS" "$T_DIR/zero.img" "$m"
expect_eq "$CASE: the daemon fails" "$st" 1
[ "$st" = 0 ] && umount "$m"
expect_match "$CASE: the message" "$OUT" "$T_DIR/zero.img: not a posfs file system"
run_status st "$FSCK" -n "$T_DIR/zero.img"
expect_eq "$CASE: fsck" "$st" 8
expect_match "$CASE: fsck says so" "$OUT" "$T_DIR/zero.img: not a posfs file system"
test_done
