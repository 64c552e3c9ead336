#!/bin/bash
# posfs over a real mount: POSIX details where posfs follows ext4 on the
# same kernel. Times: futimens of one time with UTIME_OMIT for the other
# changes ctime, UTIME_OMIT for both changes nothing, a read's atime update
# leaves ctime; a buffered read after O_DIRECT writes (io_submit and
# pwrite) returns the new bytes, also when buffered reads ran while the
# writes were on their way (write-through and -o writeback).
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

# dio.py FILE async|sync ROUNDS: per round, 16 KiB of old bytes written
# and read through the page cache, a reader thread reading them buffered,
# four 4 KiB O_DIRECT writes of new bytes (io_submit, or pwrite), then a
# buffered read: how many rounds read something else than the new bytes.
cat > "$T_DIR/dio.py" <<'PYEOF'
import ctypes, os, sys, mmap, struct, threading
libc = ctypes.CDLL(None, use_errno=True)
SYS_io_setup, SYS_io_destroy, SYS_io_submit, SYS_io_getevents = 206, 207, 209, 208
p = sys.argv[1]; mode = sys.argv[2]; rounds = int(sys.argv[3])
N = 16384; n = 4
ctx = ctypes.c_ulong(0)
assert libc.syscall(SYS_io_setup, 8, ctypes.byref(ctx)) == 0
buf = mmap.mmap(-1, N)
addr = ctypes.addressof(ctypes.c_char.from_buffer(buf))
stale = 0
for r in range(rounds):
    old = bytes([r % 127]) * N; new = bytes([128 + r % 127]) * N
    bfd = os.open(p, os.O_RDWR | os.O_CREAT, 0o644)
    os.pwrite(bfd, old, 0)
    assert os.pread(bfd, N, 0) == old
    buf.seek(0); buf.write(new)
    dfd = os.open(p, os.O_RDWR | os.O_DIRECT)
    stop = False
    def reader():
        while not stop:
            os.pread(bfd, N, 0)
    t = threading.Thread(target=reader); t.start()
    if mode == 'sync':
        for i in range(n):
            assert os.pwrite(dfd, memoryview(buf)[i * N // n:(i + 1) * N // n], i * N // n) == N // n
    else:
        cbs = [ctypes.create_string_buffer(struct.pack('<QIiHhIQQqQII', i, 0, 0, 1, 0, dfd, addr + i * (N // n), N // n, i * (N // n), 0, 0, 0), 64) for i in range(n)]
        arr = (ctypes.c_void_p * n)(*[ctypes.addressof(c) for c in cbs])
        assert libc.syscall(SYS_io_submit, ctx, n, arr) == n
        ev = ctypes.create_string_buffer(32 * n); got = 0
        while got < n:
            k = libc.syscall(SYS_io_getevents, ctx, 1, n - got, ev, None)
            assert k > 0
            for j in range(k):
                assert struct.unpack_from('<QQqq', ev, 32 * j)[2] == N // n
            got += k
    stop = True; t.join()
    d = os.pread(bfd, N, 0)
    if d != new:
        stale += 1
    os.close(dfd); os.close(bfd)
libc.syscall(SYS_io_destroy, ctx)
print('stale %d of %d' % (stale, rounds))
PYEOF

# dio_checks TAG
dio_checks() {
	local md
	for md in async sync; do
		expect_eq "$1: buffered read after $md O_DIRECT writes" \
			"$(py "$(cat "$T_DIR/dio.py")" "$m/dio-$1" $md 1)" "stale 0 of 1"
		expect_eq "$1: buffered read after $md O_DIRECT writes, reads meanwhile" \
			"$(py "$(cat "$T_DIR/dio.py")" "$m/dio-$1" $md 150)" "stale 0 of 150"
	done
}

pfs_mount "$img" "$m" || { not_ok "mount"; test_done; exit 1; }
time_checks write-through
dio_checks write-through
pfs_umount "$m"
expect_eq "clean unmount" "$UMOUNT_STATUS" 0

pfs_mount "$img" "$m" -o writeback || { not_ok "mount -o writeback"; test_done; exit 1; }
time_checks writeback
dio_checks writeback
pfs_umount "$m"
expect_eq "clean unmount (writeback)" "$UMOUNT_STATUS" 0
test_done
