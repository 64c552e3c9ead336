#!/bin/bash
# fsck -D (deep): pass 4 reads every file's data and verifies its checksums
# (problem code 0x0401). Damaged data has no repair: each damaged file is
# named by its path with its bad blocks, fsck exits 4 whatever the answers,
# preen does not stop for it, and the superblock is not marked with errors
# (a later check without -f finds it clean). Without -D no data is read.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fuse/common.sh"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fsck/common.sh"
fsck_init

# large: 3 MiB written at once (several read runs); medium.clone shares
# medium's blocks (copy_file_range clones whole blocks); longlink: a
# symlink too long to be inline
extra() {
	py 'import os,sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, os.urandom(3 << 20)); os.close(fd)' "$M/large" || exit 99
	py 'import os,sys
src = os.open(sys.argv[1], os.O_RDONLY)
dst = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT, 0o644)
n = os.fstat(src).st_size
while n > 0:
    n -= os.copy_file_range(src, dst, n)
os.close(src); os.close(dst)' "$M/medium" "$M/medium.clone" || exit 99
	ln -s "$(head -c 3000 /dev/zero | tr '\0' l)" "$M/longlink"
}
populate extra
img=$T_DIR/d.img

# --- clean: -D reads it all, finds nothing, and also checks a clean one -----
cp "$BASE" "$img"
run_status st "$FSCK" -n -D "$img"
expect_eq "clean, -n -D: exit" "$st" 0
expect_match "clean, -n -D: a full check with pass 4" "$OUT" "Pass 4: Checking data checksums"
run_status st "$FSCK" -fn "$img"
printf '%s' "$OUT" | grep -q "Pass 4" && not_ok "without -D: no pass 4" || ok "without -D: no pass 4"
run_status st "$FSCK" -fn -D -C 3 "$img" 3> "$T_DIR/progress"
expect_match "-D -C 3: pass 4 reported (as 5)" \
	"$(cut -d' ' -f1 "$T_DIR/progress" | sort -u | tr '\n' ' ')" "^1 2 3 4 5 $"

# --- damaged blocks ---------------------------------------------------------
"$DAMAGE" "$img" data "$(ino medium)" 0 >/dev/null || exit 99
"$DAMAGE" "$img" data "$(ino medium)" 15 >/dev/null || exit 99
"$DAMAGE" "$img" data "$(ino longlink)" 0 >/dev/null || exit 99
for b in 0 1 2 3 4 5 6 7 8 9 700; do
	"$DAMAGE" "$img" data "$(ino large)" $b >/dev/null || exit 99
done
cp "$img" "$img.before"
run_status st "$FSCK" -fn "$img"
expect_eq "damaged data, -fn: no data read, clean" "$st" 0
run_status st "$FSCK" -fn -D "$img"
expect_eq "damaged data, -fn -D: exit" "$st" 4
expect_match "-D: the file by path, each bad block" "$OUT" \
	"/medium \\(inode $(ino medium)\\): 2 bad blocks: offset 0 \\(device block [0-9]+\\), offset 61440 \\(device block [0-9]+\\)"
expect_match "-D: the clone sharing the blocks is named too" "$OUT" \
	"/medium.clone \\(inode $(ino medium.clone)\\): 2 bad blocks"
expect_match "-D: a long list is cut" "$OUT" \
	"/large \\(inode $(ino large)\\): 11 bad blocks: (offset [0-9]+ \\(device block [0-9]+\\), ){7}offset 28672 \\(device block [0-9]+\\) and 3 more"
expect_match "-D: a symlink's data too" "$OUT" "/longlink \\(inode $(ino longlink)\\): 1 bad block"
expect_match "-D: the problem code" "$OUT" "problem 0x0401"
expect_match "-D: the advice" "$OUT" "Restore the file from a backup"
expect_match "-D: the summary" "$OUT" "4 files with damaged data \\(16 blocks\\)"
expect_eq "-D: nothing else named" "$(printf '%s\n' "$OUT" | grep -c 'problem 0x0401')" 4
printf '%s' "$OUT" | grep -q "? no" && not_ok "-D: no question asked" || ok "-D: no question asked"
cmp -s "$img" "$img.before" && ok "-n -D left the image as it was" ||
	not_ok "-n -D changed the image"
run_status st "$FSCK" -fp -D "$img"
expect_eq "-p -D: exit" "$st" 4
expect_match "-p -D: said" "$OUT" "/medium \\(inode .*\\(problem 0x0401\\): restore the file from a backup"
printf '%s' "$OUT" | grep -q "UNEXPECTED INCONSISTENCY" && not_ok "-p -D: preen does not stop" ||
	ok "-p -D: preen does not stop"
run_status st "$FSCK" -fy -D "$img"
expect_eq "-y -D: still damaged" "$st" 4
run_status st "$FSCK" -n "$img"
expect_eq "after -y -D: no error state, clean without -f" "$st" 0
expect_match "after -y -D: says clean" "$OUT" "clean, [0-9]+/[0-9]+ blocks"
run_status st "$FSCK" -fn -D "$img"
expect_eq "a second -D: the same" "$st" 4
expect_eq "a second -D: the same files" "$(printf '%s\n' "$OUT" | grep -c 'problem 0x0401')" 4
CASE="damaged data"
verify "$img" '^(medium|medium\.clone|large)$'

# --- a damaged file no entry names ---------------------------------------------
cp "$BASE" "$img"
"$DAMAGE" "$img" data "$(ino medium2)" 2 >/dev/null || exit 99
"$DAMAGE" "$img" unlink-entry 1 medium2 >/dev/null || exit 99
run_status st "$FSCK" -fn -D "$img"
expect_eq "unnamed, -n -D: exit" "$st" 4
expect_match "unnamed, -n -D: by inode" "$OUT" \
	"inode $(ino medium2) \\(no entry names it\\): 1 bad block: offset 8192"
run_status st "$FSCK" -fy -D "$img"
expect_eq "unnamed, -y -D: exit" "$st" 4
expect_match "unnamed, -y -D: named in lost+found" "$OUT" \
	"/lost\\+found/#$(ino medium2) \\(inode $(ino medium2)\\): 1 bad block"
run_status st "$FSCK" -fn "$img"
expect_eq "unnamed, after -y -D: the namespace is clean" "$st" 0

# --- what stops pass 4 --------------------------------------------------------------
cp "$BASE" "$img"
"$DAMAGE" "$img" csum-table 0 >/dev/null || exit 99
run_status st "$FSCK" -fn -D "$img"
expect_eq "table damaged, -n -D: exit" "$st" 4
expect_match "table damaged, -n -D: pass 4 skipped" "$OUT" \
	"pass 4 skipped: 1 data checksum table block is still damaged"
run_status st "$FSCK" -fy -D "$img"
expect_eq "table damaged, -y -D: repaired, then pass 4" "$st" 1
expect_match "table damaged, -y -D: pass 4 ran" "$OUT" "Pass 4: Checking data checksums"
cp "$BASE" "$img"
"$DAMAGE" "$img" extent-tree "$(ino big)" >/dev/null || exit 99
run_status st "$FSCK" -fn -D "$img"
expect_eq "tree damaged, -n -D: exit" "$st" 4
expect_match "tree damaged, -n -D: pass 4 skipped" "$OUT" "pass 4 skipped: pass 3 did not run"
"$MKFS" -q -f -O ^data_csum "$img" 64M || exit 99
run_status st "$FSCK" -fn -D "$img"
expect_eq "no data_csum, -D: exit" "$st" 0
expect_match "no data_csum, -D: said" "$OUT" "pass 4 skipped: the file system keeps no data checksums"

# --- usage ------------------------------------------------------------------------
run_status st "$FSCK" -fn -E deep=1 "$img"
expect_eq "-E deep takes no value: usage error" "$st" 16
test_done
