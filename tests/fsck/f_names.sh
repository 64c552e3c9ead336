#!/bin/bash
# fsck: the namespace (problem codes 0x03xx).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fuse/common.sh"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fsck/common.sh"
fsck_init
populate
root=1

fsck_case "root directory" 0x0301 '.' remove "$root"
fsck_case "entry at nothing" 0x0302 '' entry "$(ino dir1)" ghost 999999 8 999
fsck_case "entry type" 0x0303 '' entry-type "$root" small 4
fsck_case "listing record" 0x0304 '' unlink-seq "$(ino dir1)" f07
fsck_case "directory in two places" 0x0305 '' entry "$(ino dir2)" again "$(ino dir3)" 4 777
fsck_case "wrong '..'" 0x0306 '' parent "$(ino dir2/sub)" "$root"
fsck_case "unreachable" 0x0307 '^dir1/f03$' unlink-entry "$(ino dir1)" f03
fsck_case "link count" 0x0308 '' nlink "$(ino small)" 5
# a file unlinked while open, then a crash: not a problem (the mount would
# reclaim it too); -n leaves it, -y reclaims it
cp "$BASE" "$T_DIR/or.img"
"$DAMAGE" "$T_DIR/or.img" orphan "$(ino dir1)" f04 || exit 99
run_status st "$FSCK" -fn "$T_DIR/or.img"
expect_eq "orphan after a crash: fsck -n exit" "$st" 0
expect_match "orphan after a crash: said" "$OUT" "an orphan, reclaimed at the next mount"
run_status st "$FSCK" -fy "$T_DIR/or.img"
expect_eq "orphan after a crash: fsck -y exit" "$st" 0
expect_match "orphan after a crash: reclaimed" "$OUT" "an orphan, reclaimed"
run_status st "$FSCK" -fn "$T_DIR/or.img"
printf '%s' "$OUT" | grep -q "an orphan" && not_ok "orphan after a crash: still there" ||
	ok "orphan after a crash: gone"
fsck_case "orphan record" 0x030a '' orphan-record "$(ino medium)"
fsck_case "no file type" 0x030c '^dir1/f05$' mode "$(ino dir1/f05)" 644

# /lost+found taken by a file when something must go there
pfs_mount "$BASE" "$M" || exit 99
echo "not a directory" > "$M/lost+found"
pfs_umount "$M" || exit 99
fsck_case "lost+found not a directory" 0x030b '^dir1/f03$' unlink-entry "$(ino dir1)" f03

# what lost+found holds after an unreachable file is connected there
cp "$BASE" "$T_DIR/lf.img"
"$DAMAGE" "$T_DIR/lf.img" unlink-entry "$(ino dir1)" f03 || exit 99
"$FSCK" -fy "$T_DIR/lf.img" > /dev/null
pfs_mount "$T_DIR/lf.img" "$M" || exit 99
expect_eq "lost+found: the file under its number" "$(cat "$M/lost+found/#$(ino dir1/f03)")" "file 03"
expect_eq "lost+found: mode" "$(stat -c %a "$M/lost+found")" 700
pfs_umount "$M"
test_done
