#!/bin/bash
# posfs over a real mount: zstd compression. Compressible, incompressible
# and mixed files, a sparse one, appends, overwrites inside compressed
# extents, truncation, clones (cp --reflink) of compressed files; st_blocks
# and df report the space used; everything reads back after a remount and
# fsck finds nothing. mkfs -O compression makes it the default, the mount
# option turns it on or off, chattr +c / +m per file.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fuse/common.sh"
fuse_init
: "${FSCK:=$top_builddir/fsck/fsck.posfs}"
: "${DAMAGE:=$top_builddir/tests/pfs-damage}"

img=$T_DIR/img
m=$T_DIR/mnt
src=$T_DIR/src
mkdir -p "$src"

# text: compressible, and not trivially (the sources of this project)
{ cat "$top_srcdir"/src/*/*.c "$top_srcdir"/src/*/*.h; tac "$top_srcdir"/src/*/*.c; } |
	head -c 1048576 > "$src/text"
[ "$(stat -c %s "$src/text")" = 1048576 ] || skip "not enough source text"
head -c 1048576 /dev/urandom > "$src/rand"
# mixed: 64 KiB of each in turn
py "
t = open('$src/text', 'rb').read(); r = open('$src/rand', 'rb').read()
open('$src/mix', 'wb').write(b''.join((r if (i // 65536) % 2 else t)[i:i + 65536]
                                      for i in range(0, 1 << 20, 65536)))"

# kib FILE: the space it uses, in KiB
kib() { echo $(($(stat -c %b "$1") / 2)); }

"$MKFS" -q -s 2 "$img" 512M || exit 99
pfs_mount "$img" "$m" -o compress || { not_ok "mount -o compress"; test_done; exit 1; }
cp "$src/text" "$src/rand" "$src/mix" "$m/"
# appends of 20000 bytes (unaligned): each takes in the compressed extent
# it touches, which is written again, so the data stays compressed
py "
import os
t = open('$src/text', 'rb').read(); fd = os.open('$m/append', os.O_WRONLY | os.O_CREAT)
for i in range(10):
    os.write(fd, t[i * 20000:(i + 1) * 20000])"
head -c 200000 "$src/text" > "$src/append"
# sparse: 64 KiB of text at 100 MiB
py "
with open('$m/sparse', 'wb') as f:
    f.seek(100 << 20); f.write(open('$src/text', 'rb').read(65536))"

expect_eq "text is stored in under half its size" "$(($(kib "$m/text") < 512))" 1
expect_eq "random is stored raw" "$(kib "$m/rand")" 1024
expect_eq "mixed: partly compressed" "$(($(kib "$m/mix") > 512 && $(kib "$m/mix") < 896))" 1
expect_eq "appends stay compressed" "$(($(kib "$m/append") < 120))" 1
expect_eq "sparse: size" "$(stat -c %s "$m/sparse")" $(((100 << 20) + 65536))
expect_eq "sparse: under 64 KiB used" "$(($(kib "$m/sparse") < 64))" 1
for f in text rand mix append; do
	expect_eq "$f reads back" "$(md5sum < "$m/$f")" "$(md5sum < "$src/$f")"
done
expect_eq "sparse reads back" "$(py "
d = open('$m/sparse', 'rb').read()
print(d[:100 << 20] == bytes(100 << 20), d[100 << 20:] == open('$src/text', 'rb').read(65536))")" "True True"
expect_eq "random reads inside compressed extents" "$(py "
import os
fd = os.open('$m/text', os.O_RDONLY); t = open('$src/text', 'rb').read()
print(all(os.pread(fd, n, o) == t[o:o + n] for o, n in ((1, 10), (131071, 3), (200000, 70000), (1048000, 576))))")" True

# overwrites inside compressed extents, a punch, a truncate and a regrow
cp "$src/text" "$src/model"
py "
import os
for p in ('$m/text', '$src/model'):
    fd = os.open(p, os.O_RDWR)
    os.pwrite(fd, b'x' * 100, 5000)             # small, inside a frame
    os.pwrite(fd, b'y' * 70000, 100000)         # large, across frames
    os.truncate(p, 700001); os.truncate(p, 1 << 20)
    os.close(fd)"
expect_eq "overwrites, truncate inside a frame" "$(md5sum < "$m/text")" "$(md5sum < "$src/model")"
fallocate -p -o 300000 -l 50000 "$m/text"
fallocate -p -o 300000 -l 50000 "$src/model"
expect_eq "a punched hole inside a frame" "$(md5sum < "$m/text")" "$(md5sum < "$src/model")"

# clones (copy_file_range) share the compressed extents; a write to one
# leaves the other; df counts what is used
used=$(df -k --output=used "$m" | tail -1)
expect_eq "copy_file_range" "$(py "
import os
i = os.open('$m/mix', os.O_RDONLY); o = os.open('$m/mix2', os.O_WRONLY | os.O_CREAT, 0o644)
n = 0
while n < (1 << 20):
    n += os.copy_file_range(i, o, (1 << 20) - n)
print(n)")" 1048576
expect_eq "a clone takes no more space" "$(($(df -k --output=used "$m" | tail -1) - used < 64))" 1
printf 'zzzz' | dd of="$m/mix2" bs=1 seek=70000 conv=notrunc status=none
expect_eq "the clone changed" "$(cmp "$m/mix2" "$src/mix" 2>&1 | grep -c 'differ: byte 70001')" 1
expect_eq "the source did not" "$(md5sum < "$m/mix")" "$(md5sum < "$src/mix")"
pfs_umount "$m"
expect_eq "clean unmount" "$UMOUNT_STATUS" 0
run_status st "$FSCK" -fn "$img"
expect_eq "fsck after compressed writes" "$st" 0

# everything again after a remount, without -o compress: old data reads,
# new data is stored raw (the file system was made without the default)
pfs_mount "$img" "$m" || { not_ok "remount"; test_done; exit 1; }
for f in rand mix append; do
	expect_eq "$f after a remount" "$(md5sum < "$m/$f")" "$(md5sum < "$src/$f")"
done
expect_eq "text after a remount" "$(md5sum < "$m/text")" "$(md5sum < "$src/model")"
cp "$src/text" "$m/plain"
expect_eq "without -o compress: raw" "$(kib "$m/plain")" 1024
pfs_umount "$m"

# small appends (1000 bytes): the kernel's write-back cache gathers them
pfs_mount "$img" "$m" -o compress,writeback || { not_ok "mount -o compress,writeback"; test_done; exit 1; }
py "
import os
t = open('$src/text', 'rb').read(); fd = os.open('$m/small', os.O_WRONLY | os.O_CREAT)
for i in range(200):
    os.write(fd, t[i * 1000:(i + 1) * 1000])
os.fsync(fd)"
expect_eq "-o writeback: small appends compressed" "$(($(kib "$m/small") < 100))" 1
expect_eq "-o writeback: small appends read back" "$(md5sum < "$m/small")" "$(head -c 200000 "$src/text" | md5sum)"
pfs_umount "$m"

# chattr: +c compresses under a mount that does not (on a file system with
# the feature), inherited from a directory; +m never compresses
pfs_mount "$img" "$m" || { not_ok "mount (chattr)"; test_done; exit 1; }
mkdir "$m/cdir"
chattr +c "$m/cdir" || not_ok "chattr +c on a directory"
cp "$src/text" "$m/cdir/t"
expect_match "a new file takes +c from its directory" "$(lsattr "$m/cdir/t")" "^-*c-*"
expect_eq "chattr +c (inherited): compressed" "$(($(kib "$m/cdir/t") < 512))" 1
pfs_umount "$m"
pfs_mount "$img" "$m" -o compress || { not_ok "mount -o compress (chattr)"; test_done; exit 1; }
touch "$m/nocomp"
chattr +m "$m/nocomp" || not_ok "chattr +m"
cat "$src/text" >> "$m/nocomp"
expect_eq "chattr +m under -o compress: raw" "$(kib "$m/nocomp")" 1024
expect_eq "chattr +m: reads back" "$(md5sum < "$m/nocomp")" "$(md5sum < "$src/text")"
pfs_umount "$m"
run_status st "$FSCK" -fn "$img"
expect_eq "fsck after chattr" "$st" 0

# mkfs -O compression: the default; -o compress=none turns it off
"$MKFS" -q -f -s 2 -O compression -E compress_level=9 "$img" 512M || exit 99
expect_match "mkfs: compression by default" \
	"$("$MKFS" -n -f -s 2 -O compression -E compress_level=9 "$img" 512M 2>&1)" \
	"Compression: +zstd, level 9, by default"
pfs_mount "$img" "$m" || { not_ok "mount (compression by default)"; test_done; exit 1; }
cp "$src/text" "$m/a"
expect_eq "mkfs -O compression: compressed" "$(($(kib "$m/a") < 512))" 1
pfs_umount "$m"
pfs_mount "$img" "$m" -o compress=none || { not_ok "mount -o compress=none"; test_done; exit 1; }
cp "$src/text" "$m/b"
expect_eq "-o compress=none: raw" "$(kib "$m/b")" 1024
expect_eq "the compressed one reads" "$(md5sum < "$m/a")" "$(md5sum < "$src/text")"
a_ino=$(stat -c %i "$m/a")
pfs_umount "$m"

# a damaged frame: EIO for the blocks it holds, one line in the log, one
# bad block for fsck -D (the frame), other files fine
"$DAMAGE" "$img" data "$a_ino" 0 || not_ok "pfs-damage data (a frame)"
run_status st "$FSCK" -fn -D "$img"
expect_eq "fsck -D: a damaged frame" "$st" 4
expect_match "fsck -D names it, one bad block" "$OUT" "/a \\(inode $a_ino\\): 1 bad block: offset 0 "
: > "$T_DIR/daemon.log"
pfs_mount "$img" "$m" || { not_ok "mount (a damaged frame)"; test_done; exit 1; }
expect_eq "a damaged frame: EIO" "$(py "import os, errno
fd = os.open('$m/a', os.O_RDONLY)
try:
    os.pread(fd, 10, 5000); print('read')
except OSError as e:
    print(errno.errorcode[e.errno])")" EIO
expect_eq "logged once" "$(grep -c "data checksum mismatch: inode $a_ino, offset 0," "$T_DIR/daemon.log")" 1
expect_eq "past the frame, fine" "$(py "
fd = open('$m/a', 'rb'); fd.seek(1 << 19)
print(fd.read(4096) == open('$src/text', 'rb').read()[1 << 19:(1 << 19) + 4096])")" True
expect_eq "the other file fine" "$(md5sum < "$m/b")" "$(md5sum < "$src/text")"
pfs_umount "$m"

# bad options
run_status st "$MKFS" -q -f -E compress_level=3 "$img" 512M
expect_eq "compress_level without compression: usage error" "$st" 2
run_status st "$MKFS" -q -f -O compression -E compress_level=20 "$img" 512M
expect_eq "compress_level 20: usage error" "$st" 2
mkdir -p "$m"
run_status st "$POSFS" -f -o compress=lz4 "$img" "$m"
expect_eq "-o compress=lz4: refused" "$st" 2
test_done
