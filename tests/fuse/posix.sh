#!/bin/bash
# posfs over a real mount: POSIX details where posfs follows ext4 on the
# same kernel. Times: futimens of one time with UTIME_OMIT for the other
# changes ctime, UTIME_OMIT for both changes nothing, a read's atime update
# leaves ctime; a buffered read after O_DIRECT writes (io_submit and
# pwrite) returns the new bytes, also when buffered reads ran while the
# writes were on their way (write-through and -o writeback). A directory
# removed or replaced by a rename while open keeps working on its
# descriptor (fstat says nlink 0; fchmod, fchown, futimens, xattrs, fsync
# work; it lists as empty, nothing can be made in it), as ext4 gives; one
# left open by a daemon killed with -9 is no damage to fsck and the next
# mount reclaims it. A loop that renames each entry of a 15,000-entry
# directory as readdir(3) returns it ends, after each entry once.
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

# deaddir.py DIR: the descriptor calls on such directories, one line
cat > "$T_DIR/deaddir.py" <<'PYEOF'
import os, sys, errno, stat
m = sys.argv[1]
r = []
def attempt(name, f):
    try:
        v = f(); r.append('%s=%s' % (name, 'OK' if v is None else v))
    except OSError as e:
        r.append('%s=%s' % (name, errno.errorcode[e.errno]))
for how in ('rename', 'rmdir'):
    a, b = m + '/a-' + how, m + '/b-' + how
    os.mkdir(a); os.mkdir(b)
    os.setxattr(b, 'user.k', b'v')
    fd = os.open(b, os.O_RDONLY | os.O_DIRECTORY)
    if how == 'rename':
        os.rename(a, b)
    else:
        os.rmdir(b); os.rmdir(a)
    attempt(how + ':fstat.nlink', lambda: os.fstat(fd).st_nlink)
    attempt('fchmod', lambda: os.chmod(fd, 0o700))
    attempt('mode', lambda: oct(stat.S_IMODE(os.fstat(fd).st_mode)))
    attempt('fchown', lambda: os.chown(fd, 123, 456))
    attempt('owner', lambda: '%d:%d' % (os.fstat(fd).st_uid, os.fstat(fd).st_gid))
    attempt('futimens', lambda: os.utime(fd, (1000, 2000)))
    attempt('mtime', lambda: int(os.fstat(fd).st_mtime))
    attempt('fgetxattr', lambda: os.getxattr(fd, 'user.k'))
    attempt('fsetxattr', lambda: os.setxattr(fd, 'user.n', b'w'))
    attempt('listdir', lambda: os.listdir(fd))
    attempt('create-in', lambda: os.open('x', os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd))
    attempt('fsync', lambda: os.fsync(fd))
    os.close(fd)
print(' '.join(r))
PYEOF
DEAD_WANT=
for how in rename rmdir; do
	DEAD_WANT="$DEAD_WANT${DEAD_WANT:+ }$how:fstat.nlink=0 fchmod=OK mode=0o700 fchown=OK owner=123:456"
	DEAD_WANT="$DEAD_WANT futimens=OK mtime=2000 fgetxattr=b'v' fsetxattr=OK listdir=[]"
	DEAD_WANT="$DEAD_WANT create-in=ENOENT fsync=OK"
done
# dead_checks TAG
dead_checks() {
	mkdir "$m/dead-$1"
	expect_eq "$1: open directories removed and replaced" \
		"$(py "$(cat "$T_DIR/deaddir.py")" "$m/dead-$1")" "$DEAD_WANT"
	expect_eq "$1: what is left of them" "$(ls "$m/dead-$1")" b-rename
}

pfs_mount "$img" "$m" || { not_ok "mount"; test_done; exit 1; }
time_checks write-through
dio_checks write-through
dead_checks write-through
pfs_umount "$m"
expect_eq "clean unmount" "$UMOUNT_STATUS" 0

pfs_mount "$img" "$m" -o writeback || { not_ok "mount -o writeback"; test_done; exit 1; }
time_checks writeback
dio_checks writeback
dead_checks writeback
pfs_umount "$m"
expect_eq "clean unmount (writeback)" "$UMOUNT_STATUS" 0

# Open directories, one removed and one replaced, when the daemon dies.
: "${FSCK:=$top_builddir/fsck/fsck.posfs}"
pfs_mount "$img" "$m" || { not_ok "mount (crash)"; test_done; exit 1; }
mkdir "$m/c" "$m/c/gone" "$m/c/over" "$m/c/new"
exec 8<"$m/c/gone" 9<"$m/c/over"
rmdir "$m/c/gone"
mv -T "$m/c/new" "$m/c/over"
py "import os; os.fsync(os.open('$m/c', os.O_RDONLY))"
kill -9 "$PFS_PID"
wait "$PFS_PID" 2>/dev/null
exec 8<&- 9<&-
umount -l "$m" 2>/dev/null || fusermount3 -u -z "$m" 2>/dev/null
run_status st "$FSCK" -fn "$img"
expect_eq "fsck -n after kill -9 with open removed directories: no damage" "$st" 0
expect_match "fsck -n names them orphans" "$OUT" "directory 0x[0-9a-f]+: an orphan, reclaimed at the next mount"
[ "$st" = 0 ] || printf '%s\n' "$OUT" | sed 's/^/# /'
pfs_mount "$img" "$m" || { not_ok "mount after kill -9"; test_done; exit 1; }
expect_eq "after the crash" "$(ls "$m/c")" over
pfs_umount "$m"
expect_eq "clean unmount (after the crash)" "$UMOUNT_STATUS" 0
run_status st "$FSCK" -fn "$img"
expect_eq "fsck after the mount reclaimed them: clean" "$st:$(printf '%s' "$OUT" | grep -c "an orphan")" 0:0

# readdir(3) while renaming what it returns, within the directory
pfs_mount "$img" "$m" || { not_ok "mount (readdir and renames)"; test_done; exit 1; }
mkdir "$m/r"
py "
import os, sys
d = sys.argv[1]
for i in range(15000):
    os.close(os.open('%s/e%d.0' % (d, i), os.O_CREAT | os.O_WRONLY, 0o644))" "$m/r"
out=$(timeout 120 python3 -c "
import os, sys
d = sys.argv[1]
seen, gen, ret = {}, 0, 0
with os.scandir(d) as it:
    for e in it:
        ret += 1
        if ret > 15000 * 2:
            break
        n, _ = e.name[1:].split('.')
        seen[n] = seen.get(n, 0) + 1
        gen += 1
        os.rename(os.path.join(d, e.name), os.path.join(d, 'e%s.%d' % (n, gen)))
print(ret, max(seen.values()), len(os.listdir(d)))" "$m/r")
expect_eq "readdir while renaming: returned, most returns of one entry, entries" "$out" \
	"15000 1 15000"
pfs_umount "$m"
run_status st "$FSCK" -fn "$img"
expect_eq "fsck after the renames: clean" "$st" 0
test_done
