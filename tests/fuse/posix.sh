#!/bin/bash
# posfs over a real mount: POSIX details where posfs follows ext4 on the
# same kernel. Times: futimens of one time with UTIME_OMIT for the other
# changes ctime, UTIME_OMIT for both changes nothing, a read's atime update
# leaves ctime (write-through and -o writeback).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fuse/common.sh"
fuse_init

img=$T_DIR/img
m=$T_DIR/mnt
"$MKFS" -q -s 2 "$img" 256M || exit 99

# futimens through ctypes (os.utime cannot say UTIME_OMIT).
PY_UTIMENS="import ctypes, os, time
libc = ctypes.CDLL(None, use_errno=True)
class TS(ctypes.Structure):
    _fields_ = [('s', ctypes.c_long), ('ns', ctypes.c_long)]
OMIT = (1 << 30) - 2
def futimens(fd, a, m):
    t = (TS * 2)(a, m)
    if libc.futimens(fd, t):
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
"

# time_checks TAG: ctime after futimens with UTIME_OMIT, and after a read.
time_checks() {
	expect_eq "$1: futimens atime, UTIME_OMIT mtime" "$(py "$PY_UTIMENS
fd = os.open('$m/t-$1', os.O_CREAT|os.O_RDWR, 0o644)
c0 = os.fstat(fd).st_ctime_ns
time.sleep(1.1)
futimens(fd, (1000000000, 0), (0, OMIT))
s = os.fstat(fd)
print(s.st_atime_ns == 10**18, s.st_ctime_ns > c0, s.st_ctime_ns > c0 + 10**9)")" "True True True"
	expect_eq "$1: futimens UTIME_OMIT atime, mtime" "$(py "$PY_UTIMENS
fd = os.open('$m/t-$1', os.O_RDWR)
c0 = os.fstat(fd).st_ctime_ns
time.sleep(1.1)
futimens(fd, (0, OMIT), (5, 7))
s = os.fstat(fd)
print(s.st_mtime_ns, s.st_atime_ns == 10**18, s.st_ctime_ns > c0)")" "5000000007 True True"
	expect_eq "$1: futimens UTIME_OMIT for both changes nothing" "$(py "$PY_UTIMENS
fd = os.open('$m/t-$1', os.O_RDWR)
s0 = os.fstat(fd)
time.sleep(1.1)
futimens(fd, (0, OMIT), (0, OMIT))
s = os.fstat(fd)
print(s.st_ctime_ns == s0.st_ctime_ns, s.st_mtime_ns == s0.st_mtime_ns, s.st_atime_ns == s0.st_atime_ns)")" "True True True"
	expect_eq "$1: ctime after UTIME_OMIT twice, seen by a new stat" "$(py "import os, time
time.sleep(1.2)
s = os.stat('$m/t-$1')
print(s.st_ctime < time.time() - 1)")" True
	# a read moves atime (relatime: atime is older than mtime), not ctime
	expect_eq "$1: a read moves atime, not ctime" "$(py "import os, time
p = '$m/r-$1'
open(p, 'w').write('data')
os.utime(p, (100, 200))
fd = os.open(p, os.O_RDONLY)
os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
c0 = os.stat(p).st_ctime_ns
time.sleep(1.1)
assert os.read(fd, 10) == b'data'
s = os.stat(p)
print(s.st_atime > 200, s.st_ctime_ns == c0)")" "True True"
}

pfs_mount "$img" "$m" || { not_ok "mount"; test_done; exit 1; }
time_checks write-through
pfs_umount "$m"
expect_eq "clean unmount" "$UMOUNT_STATUS" 0

pfs_mount "$img" "$m" -o writeback || { not_ok "mount -o writeback"; test_done; exit 1; }
time_checks writeback
pfs_umount "$m"
expect_eq "clean unmount (writeback)" "$UMOUNT_STATUS" 0
test_done
