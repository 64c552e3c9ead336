#!/bin/bash
# O_TMPFILE and statx(2) over a real mount (FUSE_TMPFILE and FUSE_STATX,
# which the daemon answers itself: libfuse 3.14 does not know them), as
# ext4 gives them on the same kernel: an O_TMPFILE named by linkat
# (AT_EMPTY_PATH, or /proc/self/fd with AT_SYMLINK_FOLLOW) is a file with
# its data; one made with O_EXCL, or an ordinary file unlinked while open,
# is not named again (ENOENT); one never named goes at its close, its space
# with it, and after kill -9 fsck finds no damage and the next mount
# reclaims it. statx: the creation time, kept by writes, chmod and a
# remount; the chattr attributes (+c +i +a +d) with stx_attributes_mask,
# checked in statx where the kernel passes them on and in the daemon's
# reply (its -d log) either way. Over /dev/fuse (-o nouring), or over the
# ring when uring.sh runs it with POSFS_TRANSPORT=uring.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fuse/common.sh"
fuse_init
[ -x "$SCRUB" ] || skip "scrub/posfs-scrub is not built"
command -v chattr >/dev/null || skip "chattr (e2fsprogs) is needed"

img=$T_DIR/img
m=$T_DIR/mnt
"$MKFS" -q -s 2 "$img" 256M || exit 99
if [ "$POSFS_TRANSPORT" = uring ]; then
	opts=(-d)
	col=2		# posfs-scrub -t: opcode, over the ring, over /dev/fuse
else
	opts=(-d -o nouring)
	col=3
fi

mount_it() {
	pfs_mount "$img" "$m" "${opts[@]}" || { not_ok "mount $1"; test_done; exit 1; }
}

# Syscalls through ctypes: linkat with its flags, statx.
PY_SYS="import ctypes, errno, os, sys
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, AT_SYMLINK_FOLLOW, AT_EMPTY_PATH = -100, 0x400, 0x1000
def linkat(ofd, old, path, flags):
    if libc.linkat(ofd, old.encode(), AT_FDCWD, path.encode(), flags):
        e = ctypes.get_errno()
        return errno.errorcode[e]
    return 'ok'
class TS(ctypes.Structure):
    _fields_ = [('sec', ctypes.c_int64), ('nsec', ctypes.c_uint32), ('r', ctypes.c_int32)]
class SX(ctypes.Structure):
    _fields_ = [('mask', ctypes.c_uint32), ('blksize', ctypes.c_uint32),
                ('attributes', ctypes.c_uint64), ('nlink', ctypes.c_uint32),
                ('uid', ctypes.c_uint32), ('gid', ctypes.c_uint32), ('mode', ctypes.c_uint16),
                ('spare', ctypes.c_uint16), ('ino', ctypes.c_uint64), ('size', ctypes.c_uint64),
                ('blocks', ctypes.c_uint64), ('attributes_mask', ctypes.c_uint64),
                ('atime', TS), ('btime', TS), ('ctime', TS), ('mtime', TS),
                ('rest', ctypes.c_uint8 * 144)]
STATX_BTIME, STATX_ALL, FORCE_SYNC = 0x800, 0xfff, 0x2000
def statx(path):
    sx = SX()
    if libc.statx(AT_FDCWD, path.encode(), FORCE_SYNC, STATX_ALL | STATX_BTIME, ctypes.byref(sx)):
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return sx
"

mount_it first

# --- O_TMPFILE named by linkat ---------------------------------------------------
expect_eq "O_TMPFILE, then linkat AT_EMPTY_PATH and AT_SYMLINK_FOLLOW" "$(py "$PY_SYS
m = sys.argv[1]
os.umask(0o022)
os.mkdir(m + '/d')
fd = os.open(m + '/d', os.O_TMPFILE | os.O_RDWR, 0o666)
os.write(fd, b'tmpfile data')
st = os.fstat(fd)
print(st.st_nlink, oct(st.st_mode), os.listdir(m + '/d'))
print(linkat(fd, '', m + '/d/named', AT_EMPTY_PATH))
os.close(fd)
st = os.stat(m + '/d/named')
print(st.st_nlink, oct(st.st_mode), open(m + '/d/named').read())
fd = os.open(m + '/d', os.O_TMPFILE | os.O_WRONLY, 0o600)
os.write(fd, b'by proc')
print(linkat(AT_FDCWD, '/proc/self/fd/%d' % fd, m + '/d/proc', AT_SYMLINK_FOLLOW))
os.close(fd)
print(open(m + '/d/proc').read(), sorted(os.listdir(m + '/d')))
" "$m" 2>&1)" "0 0o100644 []
ok
1 0o100644 tmpfile data
ok
by proc ['named', 'proc']"

expect_eq "not named again: O_EXCL, an unlinked file, a named O_TMPFILE unlinked" "$(py "$PY_SYS
m = sys.argv[1]
fd = os.open(m + '/d', os.O_TMPFILE | os.O_RDWR | os.O_EXCL, 0o600)
print(linkat(fd, '', m + '/d/excl', AT_EMPTY_PATH))
os.close(fd)
fd = os.open(m + '/d/u', os.O_CREAT | os.O_RDWR, 0o600)
os.unlink(m + '/d/u')
print(linkat(fd, '', m + '/d/u2', AT_EMPTY_PATH))
os.close(fd)
fd = os.open(m + '/d', os.O_TMPFILE | os.O_RDWR, 0o600)
print(linkat(fd, '', m + '/d/once', AT_EMPTY_PATH))
os.unlink(m + '/d/once')
print(linkat(fd, '', m + '/d/twice', AT_EMPTY_PATH))
os.close(fd)
print(sorted(os.listdir(m + '/d')))
" "$m" 2>&1)" "ENOENT
ENOENT
ok
ENOENT
['named', 'proc']"

# --- one never named goes at its close, its space with it ------------------------
expect_eq "an unnamed O_TMPFILE: its space comes back at close" "$(py "$PY_SYS
import time
m = sys.argv[1]
def free():
    s = os.statvfs(m)
    return s.f_bfree * s.f_frsize
f0 = free()
fd = os.open(m + '/d', os.O_TMPFILE | os.O_RDWR, 0o600)
os.write(fd, os.urandom(32 << 20))
os.fsync(fd)
print('used' if f0 - free() >= 30 << 20 else 'not used: %d' % (f0 - free()))
os.close(fd)
for i in range(50):
    if f0 - free() < 1 << 20:
        break
    time.sleep(0.1)
print('back' if f0 - free() < 1 << 20 else 'not back: %d' % (f0 - free()))
print(sorted(os.listdir(m + '/d')))
" "$m" 2>&1)" "used
back
['named', 'proc']"

# --- statx: the creation time ------------------------------------------------------
t0=$(date +%s)
py "import os; fd = os.open('$m/b', os.O_CREAT | os.O_WRONLY, 0o644); os.close(fd)"
bt=$(py "$PY_SYS
sx = statx(sys.argv[1])
print('%d.%09d' % (sx.btime.sec, sx.btime.nsec) if sx.mask & STATX_BTIME else 'no btime')
" "$m/b")
expect_match "statx: btime at the create" "$bt" "^($t0|$((t0 + 1)))\.[0-9]{9}$"
sleep 1.1
echo more >> "$m/b"
chmod 600 "$m/b"
expect_eq "statx: btime kept by a write and chmod" "$(py "$PY_SYS
sx = statx(sys.argv[1])
print('%d.%09d' % (sx.btime.sec, sx.btime.nsec), sx.mtime.sec > sx.btime.sec)
" "$m/b")" "$bt True"

# --- statx: chattr attributes --------------------------------------------------------
for f in c i a dd none; do : > "$m/attr-$f"; done
chattr +c "$m/attr-c" && chattr +i "$m/attr-i" && chattr +a "$m/attr-a" &&
	chattr +d "$m/attr-dd"
expect_eq "chattr +c +i +a +d: exit" "$?" 0
# STATX_ATTR_COMPRESSED 0x4, _IMMUTABLE 0x10, _APPEND 0x20, _NODUMP 0x40
want="c=0x4 i=0x10 a=0x20 dd=0x40 none=0x0"
got=$(py "$PY_SYS
out = []
kernel = False
for f in ['c', 'i', 'a', 'dd', 'none']:
    sx = statx(sys.argv[1] + '/attr-' + f)
    kernel = kernel or (sx.attributes_mask & 0x74) == 0x74
    out.append('%s=%#x' % (f, sx.attributes & 0x74))
print(' '.join(out) if kernel else 'the kernel passes no attributes on')
" "$m")
if [ "$got" = "the kernel passes no attributes on" ]; then
	echo "# statx: $got (FUSE's stx_attributes); the daemon's reply is checked"
else
	expect_eq "statx: stx_attributes" "$got" "$want"
fi
# The daemon's replies (-d log): attributes of attributes_mask 0x74.
for f in c i a dd none; do
	ino=$(stat -c %i "$m/attr-$f")
	py "$PY_SYS
statx(sys.argv[1])" "$m/attr-$f"
	line=$(grep "STATX inode $ino:" "$T_DIR/daemon.log" | tail -n 1)
	expect_match "STATX reply for +$f" "$line" \
		"mask 0xfff, attributes $(echo "$want" | tr ' ' '\n' | sed -n "s/^$f=//p") of 0x74, btime"
done
chattr -i "$m/attr-i" && chattr -a "$m/attr-a"

# Served by the daemon over the transport in use.
"$SCRUB" -t "$m" > "$T_DIR/transport"
for op in TMPFILE STATX; do
	n=$(awk -v op="$op" -v c="$col" '$1 == op { print $c }' "$T_DIR/transport")
	if [ "${n:-0}" -gt 0 ]; then ok "$op served (${n})"; else not_ok "$op served (got ${n:-none})"; fi
done

pfs_umount "$m"
expect_eq "clean unmount" "$UMOUNT_STATUS" 0
mount_it again
expect_eq "btime across a remount" "$(py "$PY_SYS
sx = statx(sys.argv[1])
print('%d.%09d' % (sx.btime.sec, sx.btime.nsec))
" "$m/b")" "$bt"
expect_eq "named O_TMPFILEs across a remount" "$(cat "$m/d/named") $(cat "$m/d/proc")" \
	"tmpfile data by proc"

# --- kill -9 with an O_TMPFILE open ---------------------------------------------------
free0=$(py "import os, sys; s = os.statvfs(sys.argv[1]); print(s.f_bfree)" "$m")
exec 8< <(py "
import os, sys, time
fd = os.open(sys.argv[1] + '/d', os.O_TMPFILE | os.O_RDWR, 0o600)
os.write(fd, os.urandom(16 << 20))
os.fsync(fd)
print('open', flush=True)
time.sleep(60)
" "$m")
holder=$!
trap 'kill "$holder" 2>/dev/null; f_cleanup; t_cleanup' EXIT
read -r -t 20 word <&8
expect_eq "an O_TMPFILE open, 16 MiB fsynced" "$word" open
kill -9 "$PFS_PID"
wait "$PFS_PID" 2>/dev/null
umount -l "$m" 2>/dev/null || fusermount3 -u -z "$m" 2>/dev/null
kill "$holder" 2>/dev/null
exec 8<&-
run_status st "$FSCK" -fn "$img"
expect_eq "fsck -n after kill -9 with an open O_TMPFILE: no damage" "$st" 0
[ "$st" = 0 ] || printf '%s\n' "$OUT" | sed 's/^/# /'
mount_it "after kill -9"
free1=$(py "import os, sys; s = os.statvfs(sys.argv[1]); print(s.f_bfree)" "$m")
bs=$(py "import os, sys; print(os.statvfs(sys.argv[1]).f_frsize)" "$m")
expect_eq "the next mount reclaims its space" \
	"$(( (free0 - free1) * bs < (1 << 20) ))" 1
expect_eq "after the crash: the directory" "$(ls "$m/d" | tr '\n' ' ')" "named proc "
pfs_umount "$m"
expect_eq "clean unmount (after the crash)" "$UMOUNT_STATUS" 0
run_status st "$FSCK" -fn "$img"
expect_eq "fsck after the mount reclaimed it: clean" "$st:$(printf '%s' "$OUT" | grep -c "an orphan")" 0:0
test_done
