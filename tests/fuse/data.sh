#!/bin/bash
# posfs over a real mount: data paths. Sparse files past 4 GiB, SEEK_DATA
# and SEEK_HOLE, fallocate, mmap reads and shared writable mmap, O_DIRECT,
# copy_file_range (clone within a shard, daemon copy across shards),
# flock and fcntl locks (kernel-local), fsync, O_APPEND, O_TRUNC, and the
# same again with -o writeback.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fuse/common.sh"
fuse_init

img=$T_DIR/img
m=$T_DIR/mnt
"$MKFS" -q -s 2 "$img" 256M || exit 99

data_checks() {
	local tag=$1

	expect_eq "$tag: sparse file past 4 GiB" "$(py "import os
p = '$m/sparse'
with open(p, 'wb') as f:
    f.seek(5 << 30); f.write(b'end')
with open(p, 'rb') as f:
    f.seek((5 << 30) - 3); tail = f.read()
    f.seek(1 << 30); mid = f.read(4096)
st = os.stat(p)
fd = os.open(p, os.O_RDONLY)
d = os.lseek(fd, 0, os.SEEK_DATA); h = os.lseek(fd, 0, os.SEEK_HOLE)
os.close(fd)
print(st.st_size, tail, mid == bytes(4096), st.st_blocks * 512 < (1 << 20), d >= (5 << 30) - 4096, h)")" \
		"5368709123 b'\\x00\\x00\\x00end' True True True 0"
	expect_eq "$tag: truncate down" "$(truncate -s 4097 "$m/sparse" && stat -c %s "$m/sparse")" 4097
	rm -f "$m/sparse"

	expect_eq "$tag: fallocate" "$(py "import os
fd = os.open('$m/fa', os.O_CREAT|os.O_RDWR, 0o644)
os.posix_fallocate(fd, 0, 1 << 20)
print(os.fstat(fd).st_size, os.fstat(fd).st_blocks * 512 >= (1 << 20))")" "1048576 True"
	expect_eq "$tag: punch hole" "$(fallocate -p -o 4096 -l 8192 "$m/fa" 2>&1 && echo OK)" OK
	rm -f "$m/fa"

	head -c 3000000 /dev/urandom > "$T_DIR/rand"
	cp "$T_DIR/rand" "$m/rand"
	expect_eq "$tag: cp and read back" "$(cmp "$T_DIR/rand" "$m/rand" && echo same)" same
	expect_eq "$tag: mmap read" "$(py "import mmap
with open('$m/rand', 'rb') as f, open('$T_DIR/rand', 'rb') as g:
    mm = mmap.mmap(f.fileno(), 0, prot=mmap.PROT_READ)
    print(mm[:] == g.read())")" True
	expect_eq "$tag: shared writable mmap" "$(py "import mmap, os
with open('$m/rand', 'r+b') as f:
    mm = mmap.mmap(f.fileno(), 0)
    mm[4096:4101] = b'HELLO'
    mm.flush(); mm.close()
    os.fsync(f.fileno())
os.system('echo 1 > /proc/sys/vm/drop_caches')
with open('$m/rand', 'rb') as f:
    f.seek(4096); print(f.read(5).decode())")" HELLO

	expect_eq "$tag: O_DIRECT write and read" "$(py "import mmap, os
buf = mmap.mmap(-1, 1 << 20)
buf[:] = bytes(range(256)) * 4096
fd = os.open('$m/direct', os.O_CREAT|os.O_RDWR|os.O_DIRECT, 0o644)
n = os.write(fd, buf)
rb = mmap.mmap(-1, 1 << 20)
m = os.preadv(fd, [rb], 0)
os.close(fd)
print(n, m, rb[:] == buf[:])")" "1048576 1048576 True"

	expect_eq "$tag: copy_file_range" "$(py "import os
a = os.open('$m/rand', os.O_RDONLY)
b = os.open('$m/copy', os.O_CREAT|os.O_WRONLY|os.O_TRUNC, 0o644)
left, off = os.fstat(a).st_size, 0
while left:
    n = os.copy_file_range(a, b, left, off, off)
    if n <= 0: break
    left -= n; off += n
print(left)")" 0
	expect_eq "$tag: copy is the same" "$(cmp "$m/rand" "$m/copy" && echo same)" same
	# top-level directories go to the shards in turn (the shard is in the
	# top bits of the inode number): two in different shards
	mkdir -p "$m/s1" "$m/s2"
	[ $(($(stat -c %i "$m/s1") >> 48)) != $(($(stat -c %i "$m/s2") >> 48)) ] ||
		{ rmdir "$m/s2"; mkdir "$m/s3" "$m/s2"; }
	expect_eq "$tag: s1 and s2 in different shards" \
		"$([ $(($(stat -c %i "$m/s1") >> 48)) != $(($(stat -c %i "$m/s2") >> 48)) ] && echo yes)" yes
	cp "$T_DIR/rand" "$m/s1/src"
	expect_eq "$tag: copy_file_range across shards (daemon copy)" "$(py "import os
a = os.open('$m/s1/src', os.O_RDONLY)
b = os.open('$m/s2/dst', os.O_CREAT|os.O_WRONLY|os.O_TRUNC, 0o644)
left, off = os.fstat(a).st_size, 0
while left:
    n = os.copy_file_range(a, b, left, off, off)
    if n <= 0: break
    left -= n; off += n
print(left)")" 0
	expect_eq "$tag: cross copy is the same" "$(cmp "$T_DIR/rand" "$m/s2/dst" && echo same)" same

	expect_eq "$tag: O_APPEND" "$(printf a > "$m/app"; printf b >> "$m/app"; printf c >> "$m/app"; cat "$m/app")" abc
	expect_eq "$tag: O_TRUNC" "$(echo z > "$m/app"; cat "$m/app")" z
	expect_eq "$tag: fsync, fdatasync" "$(py "import os
fd = os.open('$m/app', os.O_WRONLY)
os.write(fd, b'q'); os.fsync(fd); os.fdatasync(fd); os.close(fd)
dfd = os.open('$m', os.O_RDONLY); os.fsync(dfd); os.close(dfd)
print('OK')")" OK

	expect_eq "$tag: flock and fcntl locks" "$(py "import fcntl, os, sys
p = '$m/lock'
f = open(p, 'w')
fcntl.flock(f, fcntl.LOCK_EX)
fcntl.lockf(f, fcntl.LOCK_EX, 10, 0)
pid = os.fork()
if pid == 0:
    g = open(p, 'w')
    try:
        fcntl.flock(g, fcntl.LOCK_EX | fcntl.LOCK_NB); os._exit(1)
    except BlockingIOError:
        pass
    try:
        fcntl.lockf(g, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 0); os._exit(2)
    except OSError:
        pass
    fcntl.lockf(g, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 20)
    os._exit(0)
print(os.waitpid(pid, 0)[1] >> 8)")" 0
	rm -rf "$m"/*
}

pfs_mount "$img" "$m" || { not_ok "mount"; test_done; exit 1; }
data_checks nowriteback
pfs_umount "$m"
expect_eq "daemon exit status" "$UMOUNT_STATUS" 0

pfs_mount "$img" "$m" -o writeback || { not_ok "mount -o writeback"; test_done; exit 1; }
data_checks writeback
pfs_umount "$m"
expect_eq "daemon exit status (writeback)" "$UMOUNT_STATUS" 0
test_done
