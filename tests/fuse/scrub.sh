#!/bin/bash
# posfs-scrub over a real mount, and the daemon's ioctls. A clean file
# system scrubs clean (exit 0, bytes checked = the data written, a sparse
# file's holes never read); after blocks of one file are damaged on the
# image, the scrub names exactly that file and the blocks' offsets (every
# bad block: it goes on after one; more than 8 are counted), exits 1, and
# the daemon logs each block once; a directory or a file inside the mount
# scrubs only that; -r shows in -v; a non-posfs path is refused (8), bad
# options are usage errors (2), unreadable files are reported (4). chattr
# +c, +m, +d, +A show in lsattr (files and directories) and survive a
# remount; +S is EOPNOTSUPP, +c with +m EINVAL, a non-owner's chattr EPERM;
# +A keeps the atime on read where relatime changes it. The manual has
# every option of -h.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fuse/common.sh"
fuse_init
: "${DAMAGE:=$top_builddir/tests/pfs-damage}"
: "${SCRUB:=$top_builddir/scrub/posfs-scrub}"
[ -x "$DAMAGE" ] || skip "tests/pfs-damage is not built"
[ -x "$SCRUB" ] || skip "scrub/posfs-scrub is not built"
command -v chattr >/dev/null && command -v lsattr >/dev/null ||
	skip "chattr and lsattr (e2fsprogs) are needed"
command -v setpriv >/dev/null || skip "setpriv (util-linux) is needed"

img=$T_DIR/img
m=$T_DIR/mnt
log=$T_DIR/daemon.log
OTHER=4242		# a uid that owns nothing here (no account needed)

# as_other CMD...: run CMD as uid OTHER, without groups
as_other() {
	(cd / && setpriv --reuid=$OTHER --regid=$OTHER --clear-groups -- "$@")
}
# field NAME: the value of "NAME: value" in the scrub output OUT
sfield() { printf '%s\n' "$OUT" | sed -n "s/^$1: //p"; }
# flags FILE: lsattr's flags of FILE (a directory itself, not its entries)
flags() { lsattr -d "$1" 2>&1 | cut -d' ' -f1; }
atime() { stat -c %X "$1"; }
remount() {
	pfs_umount "$m" && pfs_mount "$img" "$m" -o allow_other
}

# ---- the manual has every option of -h --------------------------------------
"$SCRUB" -h > "$T_DIR/scrub.help"
expect_eq "-h status" "$?" 0
run_status st python3 - "$T_DIR/scrub.help" "$top_srcdir/man/posfs-scrub.8" <<'EOF'
import re, sys
help_text, man = open(sys.argv[1]).read(), open(sys.argv[2]).read()

def norm(s):
    return re.sub(r'\s+', ' ', s).strip().rstrip('.').lower()

opts = [m.groups() for m in
        (re.match(r'^ {2,6}(-\w)(?: [A-Z]+)? {2,}(.*)$', l) for l in help_text.splitlines())
        if m]
text = re.sub(r'^\.(?:B|I|BI|BR|IR|RB)\s+', '', man, flags=re.M)
text = re.sub(r'^\.\S+.*$', '', text, flags=re.M).replace('\\-', '-').replace('"', '')
flat = norm(text.replace('.\n', '\n')).replace('. ', ' ')
bad = [o for o, d in opts if o not in text or norm(d) not in flat]
print(len(opts), 'options', 'missing:', bad)
sys.exit(1 if bad or len(opts) < 6 else 0)
EOF
expect_eq "posfs-scrub.8 has every option of -h ($OUT)" "$st" 0
expect_match "-V" "$("$SCRUB" -V)" "^posfs-scrub [0-9]"

# ---- usage errors and refusals ---------------------------------------------
run_status st "$SCRUB"
expect_eq "no mount point: usage" "$st" 2
run_status st "$SCRUB" -x "$T_DIR"
expect_eq "unknown option: usage" "$st" 2
run_status st "$SCRUB" -r fast "$T_DIR"
expect_eq "bad rate: usage" "$st" 2
expect_match "bad rate: named" "$OUT" "bad rate 'fast'"
run_status st "$SCRUB" -r -1 "$T_DIR"
expect_eq "negative rate: usage" "$st" 2
run_status st "$SCRUB" "$T_DIR" "$T_DIR"
expect_eq "two paths: usage" "$st" 2
run_status st "$SCRUB" "$T_DIR"
expect_eq "not a posfs: refused" "$st" 8
expect_match "not a posfs: said" "$OUT" "$T_DIR: not a posfs file system"
run_status st "$SCRUB" "$T_DIR/nowhere"
expect_eq "no such path" "$st" 8

# ---- a clean file system -------------------------------------------------------
chmod 755 "$T_DIR"
"$MKFS" -q -s 2 "$img" 256M || exit 99
pfs_mount "$img" "$m" -o allow_other || { not_ok "mount"; test_done; exit 1; }
chmod 755 "$m"
mkdir "$m/d"
head -c 65536 /dev/urandom > "$m/d/a"
head -c 65536 /dev/urandom > "$m/d/b"
head -c 65536 /dev/urandom > "$m/e"
echo tiny > "$m/c"				# 5 bytes, inline
: > "$m/empty"
ln -s d/a "$m/link"
mkfifo "$m/fifo"
truncate -s 1G "$m/sparse"			# one 4 KiB block at 512 MiB
dd if=/dev/urandom of="$m/sparse" bs=4096 seek=131072 count=1 conv=notrunc status=none
A_INO=$(stat -c %i "$m/d/a")
E_INO=$(stat -c %i "$m/e")
remount || { not_ok "remount"; test_done; exit 1; }	# data home, caches cold

run_status st "$SCRUB" "$m"
expect_eq "clean: exit 0" "$st" 0
expect_eq "clean: files checked" "$(sfield "files checked")" 6
expect_eq "clean: bytes checked = the data" "$(sfield "bytes checked" | cut -d' ' -f1)" \
	$((3 * 65536 + 5 + 4096))
expect_eq "clean: nothing damaged" "$(sfield "damaged files")" 0
run_status st "$SCRUB" -r 0 -v "$m/sparse"
expect_eq "the sparse file alone: exit 0" "$st" 0
expect_eq "the sparse file: only its data block is read" "$(sfield "bytes checked" | cut -d' ' -f1)" 4096
expect_match "-r 0 -v: no limit" "$OUT" "^rate limit: none$"
expect_match "-v names the device" "$OUT" "$m/sparse: posfs on $img"
expect_match "-v names each file" "$OUT" "$m/sparse: 4096 bytes checked"
run_status st "$SCRUB" -v -r 2.5 "$m/d"
expect_match "-r 2.5 -v: the rate" "$OUT" "rate limit: 2.5 MB/s"
expect_eq "a directory: its files only" "$(sfield "files checked")" 2
run_status st "$SCRUB" -v "$m/c"
expect_match "default rate" "$OUT" "rate limit: 64 MB/s"
run_status st "$SCRUB" -q "$m"
expect_eq "-q clean: no output" "$st:$OUT" "0:"
run_status st "$SCRUB" -p -r 0 "$m"
expect_match "-p: progress to stderr" "$OUT" "196\.0 KiB of 196\.0 KiB \(100\.0%\), 6 of 6 files"

# ---- unreadable files: reported, not damage ------------------------------------
if as_other test -x "$SCRUB"; then
	chmod 600 "$m/d/b"
	run_status st as_other "$SCRUB" "$m/d"
	expect_eq "a file the user cannot open: exit 4" "$st" 4
	expect_match "named" "$OUT" "$m/d/b: cannot open: Permission denied"
	expect_eq "counted" "$(sfield "not checked")" "1 (see the messages above)"
	expect_eq "the readable one is checked" "$(sfield "files checked")" 1
	chmod 644 "$m/d/b"
else
	echo "# $SCRUB cannot be run by uid $OTHER: unreadable files not tried"
fi

# ---- chattr ------------------------------------------------------------------
chattr +c "$m/d/a" && chattr +m "$m/d/b" && chattr +d "$m/c" && chattr +A "$m/e" &&
	chattr +dA "$m/d"
expect_eq "chattr +c, +m, +d, +A: exit 0" "$?" 0
expect_eq "lsattr +c" "$(flags "$m/d/a")" "--------c-------------"
expect_eq "lsattr +m" "$(flags "$m/d/b")" "---------------------m"
expect_eq "lsattr +d" "$(flags "$m/c")" "------d---------------"
expect_eq "lsattr +A" "$(flags "$m/e")" "-------A--------------"
expect_eq "lsattr of a directory" "$(flags "$m/d")" "------dA--------------"
run_status st chattr +S "$m/c"
expect_match "chattr +S: not supported" "$st:$OUT" "^1:.*Operation not supported"
run_status st chattr +m "$m/d/a"
expect_match "chattr +m on a +c file: invalid" "$st:$OUT" "^1:.*Invalid argument"
run_status st as_other chattr +d "$m/e"
expect_match "chattr by a non-owner: EPERM" "$st:$OUT" "^1:.*Operation not permitted"
expect_eq "lsattr by a non-owner" "$(as_other lsattr "$m/e" | cut -d' ' -f1)" "-------A--------------"
chattr -c "$m/d/a"
expect_eq "chattr -c" "$(flags "$m/d/a")" "----------------------"
chattr +c "$m/d/a"
remount || { not_ok "remount (flags)"; test_done; exit 1; }
expect_eq "after a remount: +c" "$(flags "$m/d/a")" "--------c-------------"
expect_eq "after a remount: +m" "$(flags "$m/d/b")" "---------------------m"
expect_eq "after a remount: +d" "$(flags "$m/c")" "------d---------------"
expect_eq "after a remount: +A" "$(flags "$m/e")" "-------A--------------"
expect_eq "after a remount: directory" "$(flags "$m/d")" "------dA--------------"

# +A: a read keeps the atime; the same read of a file without +A changes it
# (relatime: an atime older than mtime is updated). Caches are cold.
touch -a -d "2001-01-01 00:00:00 UTC" "$m/e" "$m/d/b"
expect_eq "atimes set in the past" "$(atime "$m/e") $(atime "$m/d/b")" "978307200 978307200"
cat "$m/e" "$m/d/b" > /dev/null
expect_eq "+A: atime kept on read" "$(atime "$m/e")" 978307200
[ "$(atime "$m/d/b")" -gt 978307200 ] && ok "without +A: atime updated on read" ||
	not_ok "without +A: atime $(atime "$m/d/b") not updated"

# ---- damage ---------------------------------------------------------------------
pfs_umount "$m"
"$DAMAGE" "$img" data "$A_INO" 3 && "$DAMAGE" "$img" data "$A_INO" 7 ||
	{ not_ok "pfs-damage d/a"; test_done; exit 1; }
for b in 0 1 2 3 4 5 6 7 8 9; do
	"$DAMAGE" "$img" data "$E_INO" $b || { not_ok "pfs-damage e $b"; test_done; exit 1; }
done
: > "$log"
pfs_mount "$img" "$m" -o allow_other || { not_ok "mount after damage"; test_done; exit 1; }

run_status st "$SCRUB" "$m"
expect_eq "damage: exit 1" "$st" 1
expect_eq "damage: every file still checked" "$(sfield "files checked")" 6
expect_eq "damage: bytes checked" "$(sfield "bytes checked" | cut -d' ' -f1)" \
	$((3 * 65536 + 5 + 4096))
expect_eq "damage: two damaged files" "$(sfield "damaged files")" 2
expect_match "d/a: the first bad block, when found" "$OUT" \
	"^$m/d/a: bad block at offset 12288 \(4096 bytes\)$"
expect_match "d/a: the next one after it" "$OUT" "^$m/d/a: bad block at offset 28672 \(4096 bytes\)$"
expect_match "d/a in the summary" "$OUT" "^  $m/d/a: bad blocks at offsets 12288, 28672$"
expect_match "e: 8 named, the rest counted" "$OUT" \
	"^  $m/e: bad blocks at offsets 0, 4096, 8192, 12288, 16384, 20480, 24576, 28672 and 2 more$"
expect_match "e: counted when found" "$OUT" "^$m/e: and 2 more bad blocks$"
expect_eq "no other file named" "$(printf '%s\n' "$OUT" | grep -c -e "/d/b" -e "/c:" -e "/sparse")" 0
run_status st "$SCRUB" "$m/d/b"
expect_eq "the other file alone: clean" "$st" 0
run_status st "$SCRUB" -q "$m/d"
expect_eq "-q: the findings only" "$st:$OUT" "1:$m/d/a: bad block at offset 12288 (4096 bytes)
$m/d/a: bad block at offset 28672 (4096 bytes)"
expect_eq "the daemon logs each block once" \
	"$(grep -c "data checksum mismatch: inode $A_INO, offset 12288, device block" "$log")" 1
expect_eq "a read of the bad block: EIO" "$(py "import os, errno
fd = os.open('$m/d/a', os.O_RDONLY)
try:
    os.pread(fd, 4096, 3 * 4096); print('read')
except OSError as e:
    print(errno.errorcode[e.errno])")" EIO
expect_eq "an ioctl the daemon does not know: ENOTTY" "$(py "import os, errno, fcntl
fd = os.open('$m/d/b', os.O_RDONLY)
try:
    fcntl.ioctl(fd, 0xc0287063, bytes(40)); print('done')
except OSError as e:
    print(errno.errorcode[e.errno])")" ENOTTY

# a whole-block write heals a block: the next scrub no longer names it
py "import os
fd = os.open('$m/d/a', os.O_RDWR)
os.pwrite(fd, b'y' * 4096, 3 * 4096); os.fsync(fd)"
remount || { not_ok "remount (healed)"; test_done; exit 1; }
run_status st "$SCRUB" "$m/d"
expect_eq "healed: still damaged elsewhere" "$st" 1
expect_match "healed: only the other block" "$OUT" "^  $m/d/a: bad block at offset 28672$"
pfs_umount "$m"
expect_eq "clean unmount" "$UMOUNT_STATUS" 0

# ---- damaged metadata: a file whose extent tree cannot be read --------------
"$MKFS" -q -f -s 2 "$img" 256M || exit 99
pfs_mount "$img" "$m" || { not_ok "mount (extent tree)"; test_done; exit 1; }
# every other block: more extents than the onode holds, so an extent tree
py 'import os,sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
for i in range(40):
    os.pwrite(fd, os.urandom(4096), i * 8192)
os.close(fd)' "$m/big"
head -c 8192 /dev/urandom > "$m/fine"
BIG_INO=$(stat -c %i "$m/big")
pfs_umount "$m"
"$DAMAGE" "$img" extent-tree "$BIG_INO" || { not_ok "pfs-damage extent-tree"; test_done; exit 1; }
pfs_mount "$img" "$m" || { not_ok "mount after extent-tree damage"; test_done; exit 1; }
run_status st "$SCRUB" "$m"
expect_eq "damaged metadata: exit 1" "$st" 1
expect_match "damaged metadata: named" "$OUT" "^$m/big: its metadata is damaged \(.*\): run fsck.posfs$"
expect_match "damaged metadata: in the summary" "$OUT" "^  $m/big: metadata damaged: run fsck.posfs$"
expect_eq "damaged metadata: the other file checked" "$(sfield "files checked")" 2
pfs_umount "$m"
test_done
