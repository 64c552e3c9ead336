#!/bin/bash
# fsck.posfs as fsck(8) and an administrator use it: a clean file system
# is passed quickly without -f; -p fixes what is safe and stops at what is
# not; -C writes "pass current max device" lines; a mounted file system is
# refused for repair and checked with -n; fsck(8) finds fsck.fuse.posfs
# for the type fuse.posfs; -z and --undo put the device back bit for bit.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fuse/common.sh"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fsck/common.sh"
fsck_init
populate
img=$T_DIR/o.img

# --- clean, not forced ----------------------------------------------------
cp "$BASE" "$img"
run_status st "$FSCK" -p "$img"
expect_eq "clean, -p: exit" "$st" 0
expect_match "clean, -p: says clean" "$OUT" "clean, [0-9]+/[0-9]+ blocks"
run_status st "$FSCK" -n "$img"
printf '%s' "$OUT" | grep -q "Pass 1" && not_ok "clean, -n: only pass 0 runs" ||
	ok "clean, -n: only pass 0 runs"

# --- preen ------------------------------------------------------------------
"$DAMAGE" "$img" blocks "$(ino medium)" || exit 99
run_status st "$FSCK" -fp "$img"
expect_eq "preen fixes a safe problem: exit" "$st" 1
expect_match "preen: FIXED" "$OUT" "FIXED"
run_status st "$FSCK" -fn "$img"
expect_eq "after preen: clean" "$st" 0
"$DAMAGE" "$img" extent "$(ino medium)" || exit 99
run_status st "$FSCK" -fp "$img"
expect_eq "preen stops at an unsafe problem: exit" "$st" 4
expect_match "preen: run fsck manually" "$OUT" "UNEXPECTED INCONSISTENCY; RUN fsck MANUALLY"
run_status st "$FSCK" -fy "$img"
expect_eq "-y after preen: exit" "$st" 1

# --- interactive, on a terminal (a pty) ---------------------------------------------
# answer: the keys typed at each question; prints the output, exits as fsck
ask() {
	py 'import os, pty, sys
keys, argv = sys.argv[1], sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    os.execv(argv[0], argv)
out = b""
while True:
    try:
        data = os.read(fd, 4096)
    except OSError:
        break
    if not data:
        break
    out += data
    if out.rstrip().endswith(b"<y>?"):
        if keys:
            os.write(fd, keys[0].encode() + b"\n"); keys = keys[1:]
        else:
            os.write(fd, b"\x04")	# end of input
sys.stdout.write(out.decode(errors="replace"))
st = os.waitpid(pid, 0)[1]
sys.exit(os.waitstatus_to_exitcode(st))' "$@"
}
cp "$BASE" "$img"
"$DAMAGE" "$img" blocks "$(ino medium)" || exit 99
run_status st ask n "$FSCK" -f "$img"
expect_eq "interactive, answered no: exit" "$st" 4
expect_match "interactive: the question" "$OUT" "Correct it<y>\\? n"
run_status st ask "" "$FSCK" -f "$img"
expect_eq "interactive, no answer (end of input): cancelled" "$st" 32
run_status st ask a "$FSCK" -f -C 0 "$img"
expect_eq "interactive, yes to all: exit" "$st" 1
expect_match "interactive, -C 0: a progress bar" "$OUT" "\|=*[ ]*\| +[0-9.]+%"
run_status st "$FSCK" -fn "$img"
expect_eq "interactive repairs: clean after" "$st" 0

# --- not clean: checked without -f --------------------------------------------
cp "$BASE" "$img"
py 'import struct,sys
f = open(sys.argv[1], "r+b")
for off in (4096, 8192):
    f.seek(off + 0x94); st = struct.unpack("<H", f.read(2))[0]
    f.seek(off + 0x94); f.write(struct.pack("<H", st | 2))
f.close()' "$img"
# (the superblocks' checksums are now wrong too: both copies damaged)
run_status st "$FSCK" -p "$img"
expect_eq "both superblocks damaged: operational error" "$st" 8
expect_match "both superblocks damaged: message" "$OUT" "superblock"

# --- a crash: not clean, so -p checks it all without -f, and finds the
# fsync'ed file (the replay is the mount's, not a problem) -------------------
cp "$BASE" "$img"
pfs_mount "$img" "$M" || exit 99
py 'import os,sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
os.write(fd, b"durable"); os.fsync(fd); os.close(fd)' "$M/crashed" || exit 99
kill -9 "$PFS_PID"
wait "$PFS_PID" 2>/dev/null
umount -l "$M" 2>/dev/null
run_status st "$FSCK" -p "$img"
expect_eq "after a crash, -p: exit" "$st" 0
expect_match "after a crash, -p: a full check" "$OUT" "[0-9]+ files, [0-9]+ directories"
pfs_mount "$img" "$M" || exit 99
expect_eq "after a crash: the fsync'ed file" "$(cat "$M/crashed")" durable
pfs_umount "$M"

# --- scratch maps in LMDB ------------------------------------------------------
mkdir "$T_DIR/scratch"
cp "$BASE" "$img"
"$DAMAGE" "$img" nlink "$(ino dir1/f03)" 7 || exit 99
run_status st "$FSCK" -fyv -E scratch_dir="$T_DIR/scratch",max_memory=1K "$img"
expect_eq "scratch maps: repaired" "$st" 1
expect_match "scratch maps: moved to LMDB" "$OUT" "kept in LMDB in $T_DIR/scratch"
run_status st "$FSCK" -fn -E scratch_dir="$T_DIR/scratch",max_memory=1K "$img"
expect_eq "scratch maps: clean after" "$st" 0
expect_eq "scratch maps: nothing left in the directory" "$(ls -A "$T_DIR/scratch")" ""
run_status st "$FSCK" -fn -E scratch_dir="$T_DIR/nothere",max_memory=1K "$img"
expect_eq "scratch maps: a missing directory is an operational error" "$st" 8
run_status st "$FSCK" -fn -E max_memory=17179869184G "$img"
expect_eq "max_memory past 2^64 bytes: a usage error" "$st" 16
expect_match "max_memory past 2^64 bytes: said so" "$OUT" "bad size '17179869184G'"
run_status st "$FSCK" -fn -E max_memory=1T "$img"
expect_eq "max_memory=1T: taken" "$st" 0

# --- progress ---------------------------------------------------------------------
cp "$BASE" "$img"
run_status st "$FSCK" -fn -C 3 "$img" 3> "$T_DIR/progress"
expect_eq "-C 3: exit" "$st" 0
expect_match "-C 3: lines of pass current max device" "$(head -n 1 "$T_DIR/progress")" \
	"^1 [0-9]+ [0-9]+ $img\$"
expect_match "-C 3: every pass reported" "$(cut -d' ' -f1 "$T_DIR/progress" | sort -u | tr '\n' ' ')" \
	"^1 2 3 4 $"
run_status st "$FSCK" -fn -C 9 "$img"
expect_eq "-C on a closed descriptor: usage error" "$st" 16

# --- mounted ------------------------------------------------------------------------
pfs_mount "$img" "$M" || exit 99
run_status st "$FSCK" -fy "$img"
expect_eq "mounted, -y: refused" "$st" 8
expect_match "mounted, -y: message" "$OUT" "is in use: mounted on $M: will not check it for repair"
run_status st "$FSCK" -fn "$img"
expect_match "mounted, -n: a warning" "$OUT" "warning: .* is in use: mounted on $M"
pfs_umount "$M"

# --- undo -----------------------------------------------------------------------------
cp "$BASE" "$img"
"$DAMAGE" "$img" omap "$(ino dir1)" || exit 99
cp "$img" "$img.damaged"
run_status st "$FSCK" -fy -z "$T_DIR/undo" "$img"
expect_eq "-z: repaired" "$st" 1
cmp -s "$img" "$img.damaged" && not_ok "-z: the repair changed nothing" || ok "-z: the repair changed the image"
run_status st "$FSCK" -fy -z "$T_DIR/undo" "$img"
expect_eq "-z: an existing undo file is refused" "$st" 16
run_status st "$FSCK" --undo "$T_DIR/undo" "$img"
expect_eq "--undo: exit" "$st" 0
cmp -s "$img" "$img.damaged" && ok "--undo: the image is bit for bit what it was" ||
	not_ok "--undo: the image differs from before the repair"
run_status st "$FSCK" --undo "$T_DIR/undo" "$BASE.nothere"
expect_eq "--undo on a missing device: operational error" "$st" 8

# --- fsck(8) and fsck.fuse.posfs ---------------------------------------------------------
# one test at a time puts helpers in /sbin (the mount tests too)
if command -v fsck >/dev/null; then
	exec 9> /var/tmp/posfs-tests-sbin.lock
	flock 9
	if [ -e /sbin/fsck.fuse.posfs ]; then
		echo "# /sbin/fsck.fuse.posfs installed already: fsck(8) case not run"
	else
		ln -s "$FSCK" /sbin/fsck.fuse.posfs && F_LINKS+=(/sbin/fsck.fuse.posfs) || exit 99
		cp "$BASE" "$img"
		"$DAMAGE" "$img" blocks "$(ino medium)" || exit 99
		run_status st fsck -t fuse.posfs -n -f "$img"
		expect_eq "fsck -t fuse.posfs -n finds the problem: exit" "$st" 4
		run_status st fsck -t fuse.posfs -a -f "$img"
		expect_eq "fsck -t fuse.posfs -a repairs: exit" "$st" 1
		run_status st fsck -t fuse.posfs -a "$img"
		expect_eq "fsck -t fuse.posfs -a on the clean result: exit" "$st" 0
	fi
	flock -u 9
fi
test_done
