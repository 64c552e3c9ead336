#!/bin/bash
# posfs over a real mount: hostile images. One extent of a file changed on
# the image and its block sealed again, as an attacker would, then mounted
# by root with allow_other and read by nobody:
#  - an extent far past the largest file (inline in the onode or in an
#    extent-tree leaf), or an inline extent of length 0: reads and
#    SEEK_DATA / SEEK_HOLE fail with EUCLEAN at once (no hang, no crash),
#    the log names the inode once, the other files read fine;
#  - an extent that points at the shard's WAL, its checksum table, another
#    shard's header or the head of the device: EUCLEAN, never those bytes;
#  - an extent that points at free space: after root writes and fsyncs a
#    0600 file there, nobody reads nothing of it through the crafted 0644
#    file and cannot overwrite it through a crafted 0666 one;
#  - fsck.posfs -f -n finds every one of these images damaged.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fuse/common.sh"
fuse_init
: "${DAMAGE:=$top_builddir/tests/pfs-damage}"
: "${FSCK:=$top_builddir/fsck/fsck.posfs}"
[ -x "$DAMAGE" ] || skip "tests/pfs-damage is not built"
[ -x "$FSCK" ] || skip "$FSCK is not built"
id nobody >/dev/null 2>&1 || skip "no user nobody"
# the system's python, which user nobody can run (not a shim under /root)
NPY=/usr/bin/python3
[ -x "$NPY" ] || NPY=$(command -v python3)

chmod 0755 "$T_DIR"	# nobody reaches the mount point
base=$T_DIR/base.img
img=$T_DIR/img
m=$T_DIR/mnt
log=$T_DIR/daemon.log

# as_nobody CMD...: run CMD as user nobody, without groups
as_nobody() {
	setpriv --reuid=nobody --regid="$(id -g nobody)" --clear-groups -- "$@"
}

# errno_of PATH OP [ARG]: what an operation on PATH says, as nobody, in at
# most 10 s: an errno name, "ok", or "hung" (then the daemon is killed, so
# that the request ends).
errno_of() {
	local out=$T_DIR/errno.out pid n
	as_nobody "$NPY" -c "
import os, sys, errno
path, op = sys.argv[1], sys.argv[2]
try:
    fd = os.open(path, os.O_RDWR if op == 'write' else os.O_RDONLY)
    if op == 'read':
        os.pread(fd, 65536, int(sys.argv[3]))
    elif op == 'data':
        os.lseek(fd, int(sys.argv[3]), os.SEEK_DATA)
    elif op == 'hole':
        os.lseek(fd, int(sys.argv[3]), os.SEEK_HOLE)
    elif op == 'write':
        os.pwrite(fd, b'x' * 4096, int(sys.argv[3])); os.fsync(fd)
    print('ok')
except OSError as e:
    print(errno.errorcode[e.errno])" "$1" "$2" "${3:-0}" > "$out" 2>/dev/null &
	pid=$!
	for n in $(seq 100); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -9 "$PFS_PID" 2>/dev/null
		wait "$pid" 2>/dev/null
		echo hung
		return
	fi
	wait "$pid"
	cat "$out"
}

# The image every case starts from (4 KiB blocks, 2 shards):
#   /a   64 KiB, 0644, inline extents
#   /t   fragmented (24 extents: an extent tree), 0644
#   /w   64 KiB, 0666, inline extents
#   /ok  64 KiB, the control
"$MKFS" -q -s 2 "$base" 256M || exit 99
pfs_mount "$base" "$m" || { not_ok "mount"; test_done; exit 1; }
head -c 65536 /dev/urandom > "$m/a"
head -c 65536 /dev/urandom > "$m/ok"
head -c 65536 /dev/urandom > "$m/w"
chmod 0666 "$m/w"
py "import os
fd = os.open('$m/t', os.O_WRONLY | os.O_CREAT, 0o644)
for i in range(24):
    os.pwrite(fd, os.urandom(4096), 2 * i * 4096)
os.fsync(fd)"
OK_MD5=$(md5sum < "$m/ok")
A_INO=$(stat -c %i "$m/a")
T_INO=$(stat -c %i "$m/t")
W_INO=$(stat -c %i "$m/w")
pfs_umount "$m"

# craft NAME FIELD VALUE: a fresh copy of the image with one extent of
# /NAME changed
craft() {
	local ino
	case $1 in a) ino=$A_INO ;; t) ino=$T_INO ;; w) ino=$W_INO ;; esac
	cp --sparse=always "$base" "$img" &&
		"$DAMAGE" "$img" extent-set "$ino" "$2" "$3" > /dev/null
}

# mount_crafted: mount $img with allow_other, a fresh log
mount_crafted() {
	: > "$log"
	pfs_mount "$img" "$m" -o allow_other
}

# damaged NAME INO WHAT: the checks every case makes of a crafted file
damaged() {
	local name=$1 ino=$2 what=$3
	expect_eq "$what: read at 0" "$(errno_of "$m/$name" read 0)" EUCLEAN
	expect_eq "$what: read at 32 KiB" "$(errno_of "$m/$name" read 32768)" EUCLEAN
	expect_eq "$what: SEEK_DATA" "$(errno_of "$m/$name" data 0)" EUCLEAN
	expect_eq "$what: SEEK_HOLE" "$(errno_of "$m/$name" hole 4096)" EUCLEAN
	expect_eq "$what: the control file" "$(as_nobody md5sum < "$m/ok")" "$OK_MD5"
	expect_eq "$what: one log line names inode $ino" \
		"$(grep -c "inode $ino is damaged" "$log")" 1
	kill -0 "$PFS_PID" 2>/dev/null && ok "$what: the daemon lives" ||
		not_ok "$what: the daemon died"
}

# fsck_finds WHAT: fsck -f -n of the crafted image reports damage
fsck_finds() {
	local st
	run_status st "$FSCK" -f -n "$img"
	if [ "$st" -ne 0 ] && [ "$st" -ne 8 ]; then
		ok "$1: fsck -f -n finds it (exit $st)"
	else
		not_ok "$1: fsck -f -n exits $st: $OUT"
	fi
}

# ---- item 1: extents that would loop or overflow ----------------------------
for c in "a lblk 4503599627370496 inline-far" "a len 0 inline-empty" \
	 "t lblk 4503599627370496 leaf-far"; do
	set -- $c
	ino=$A_INO; [ "$1" = t ] && ino=$T_INO
	craft "$1" "$2" "$3" || { not_ok "$4: craft"; continue; }
	fsck_finds "$4"
	mount_crafted || { not_ok "$4: mount"; continue; }
	damaged "$1" "$ino" "$4"
	pfs_umount "$m" 2>/dev/null || f_cleanup
done

# ---- item 2: extents into what is not data ----------------------------------
for target in wal csum header head; do
	craft a pblk "$target" || { not_ok "$target: craft"; continue; }
	fsck_finds "extent into the $target"
	mount_crafted || { not_ok "$target: mount"; continue; }
	damaged a "$A_INO" "extent into the $target"
	pfs_umount "$m" 2>/dev/null || f_cleanup
done

# ---- item 2: extents into free space, which root then fills ----------------
craft a pblk free || not_ok "free: craft"
fsck_finds "extent into free space"
cp --sparse=always "$img" "$T_DIR/a.img"
"$DAMAGE" "$T_DIR/a.img" extent-set "$W_INO" pblk free > /dev/null || not_ok "free: craft w"
mv "$T_DIR/a.img" "$img"
if mount_crafted; then
	secret=$(head -c 48 /dev/urandom | base64)
	py "import os
fd = os.open('$m/secret', os.O_WRONLY | os.O_CREAT, 0o600)
os.write(fd, (b'$secret' * 2000)[:65536]); os.fsync(fd)"
	sync
	expect_eq "free: root's file is 0600" "$(stat -c %a "$m/secret")" 600
	expect_eq "free: nobody cannot read root's file" \
		"$(errno_of "$m/secret" read 0)" EACCES
	expect_eq "free: the crafted 0644 file: EUCLEAN, not root's data" \
		"$(errno_of "$m/a" read 0)" EUCLEAN
	expect_eq "free: the crafted 0666 file: no write through it" \
		"$(errno_of "$m/w" write 0)" EUCLEAN
	expect_eq "free: root's file intact" \
		"$(head -c 48 "$m/secret")" "${secret:0:48}"
	expect_eq "free: the control file" "$(as_nobody md5sum < "$m/ok")" "$OK_MD5"
	pfs_umount "$m"
else
	not_ok "free: mount"
fi

test_done
