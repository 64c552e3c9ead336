#!/bin/bash
# posfs over a real mount: chattr +i (immutable) and +a (append-only), as
# ext4 has them. An immutable file: no write, open for writing or O_TRUNC,
# truncate, chmod, chown, touch, xattr, link, unlink or rename, by root
# too, and it reads as before; an append-only file takes appends only
# (O_APPEND, also after F_SETFL drops O_APPEND: the daemon decides), and a
# touch, nothing else of the above. An immutable directory takes no entry
# in and gives none up; an append-only one takes new entries only. Only
# root sets or clears the flags: a non-root owner is refused by the
# kernel, and with CAP_LINUX_IMMUTABLE (which the daemon does not see) by
# the daemon. lsattr shows them, and xfs_io's xflags (FS_IOC_FSSETXATTR
# sets them too, when xfs_io is there); they survive a
# remount, fsck.posfs -f finds nothing to fix and leaves them; the same
# holds with -o writeback, where the kernel caches pages: a write to an
# immutable file fails at its open, an append reaches the disk.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fuse/common.sh"
fuse_init
: "${FSCK:=$top_builddir/fsck/fsck.posfs}"
[ -x "$FSCK" ] || skip "$FSCK is not built"
command -v chattr >/dev/null && command -v lsattr >/dev/null ||
	skip "chattr and lsattr (e2fsprogs) are needed"
command -v setpriv >/dev/null || skip "setpriv (util-linux) is needed"
# The other uid's python: not a per-user shim (pyenv in root's home).
UPY=
for p in /usr/bin/python3 /usr/local/bin/python3; do
	[ -x "$p" ] && { UPY=$p; break; }
done
[ -n "$UPY" ] || skip "no system python3 another uid can run"

OTHER=4242		# a non-root owner (no account needed)
img=$T_DIR/img
m=$T_DIR/mnt
chmod 755 "$T_DIR"

# flags PATH: lsattr's flags of PATH (a directory itself)
flags() { lsattr -d "$1" 2>&1 | cut -d' ' -f1; }
# rerr CODE: run python CODE (lines) as root; OK or the errno's name
rerr() {
	py "import os, sys, errno, fcntl
try:
    exec(sys.argv[1])
    print('OK')
except OSError as e:
    print(errno.errorcode[e.errno])" "$1" 2>&1
}
# as_other CMD...: run CMD as uid OTHER, without groups
as_other() {
	(cd / && setpriv --reuid=$OTHER --regid=$OTHER --clear-groups -- "$@")
}
# oerr CODE: rerr as uid OTHER
oerr() {
	as_other "$UPY" -c "import os, sys, errno
try:
    exec(sys.argv[1])
    print('OK')
except OSError as e:
    print(errno.errorcode[e.errno])" "$1" 2>&1
}
# eperm WHAT CMD...: CMD fails with "Operation not permitted"
eperm() {
	local what=$1 st
	shift
	run_status st "$@"
	expect_match "$what: EPERM" "$st:$OUT" "^[1-9][0-9]*:.*Operation not permitted"
}

"$MKFS" -q -s 2 "$img" 256M || exit 99
pfs_mount "$img" "$m" -o allow_other || { not_ok "mount"; test_done; exit 1; }
chmod 755 "$m"

# ---- immutable file ------------------------------------------------------------
echo data > "$m/i"
setfattr_py="os.setxattr('$m/i', 'user.k', b'v')"
expect_eq "xattr before +i" "$(rerr "$setfattr_py")" OK
mkdir "$m/o"
chattr +i "$m/i"
expect_eq "chattr +i: exit" "$?" 0
expect_eq "lsattr +i" "$(flags "$m/i")" "----i-----------------"
mt=$(stat -c %Y:%Z "$m/i")
expect_eq "+i: open for writing" "$(rerr "open('$m/i', 'r+')")" EPERM
expect_eq "+i: open O_APPEND" "$(rerr "open('$m/i', 'a')")" EPERM
expect_eq "+i: open O_RDONLY|O_TRUNC" "$(rerr "os.open('$m/i', os.O_RDONLY | os.O_TRUNC)")" EPERM
eperm "+i: shell append" sh -c "echo more >> '$m/i'"
eperm "+i: truncate" truncate -s 0 "$m/i"
eperm "+i: chmod" chmod 600 "$m/i"
eperm "+i: chown" chown $OTHER "$m/i"
eperm "+i: touch" touch "$m/i"
eperm "+i: touch -d" touch -d @1000000 "$m/i"
expect_eq "+i: setxattr" "$(rerr "$setfattr_py")" EPERM
expect_eq "+i: removexattr" "$(rerr "os.removexattr('$m/i', 'user.k')")" EPERM
eperm "+i: ln" ln "$m/i" "$m/i2"
eperm "+i: rm" rm -f "$m/i"
eperm "+i: mv" mv "$m/i" "$m/o/i"
expect_eq "+i: reads as before" "$(cat "$m/i")" data
expect_eq "+i: times unchanged" "$(stat -c %Y:%Z "$m/i")" "$mt"
expect_eq "+i: xattr kept" "$(rerr "assert os.getxattr('$m/i', 'user.k') == b'v'")" OK
expect_eq "+i: xfs_io xflags" "$(rerr "
import struct
fd = os.open('$m/i', os.O_RDONLY)
x = fcntl.ioctl(fd, 0x801c581f, bytes(28))   # FS_IOC_FSGETXATTR
assert struct.unpack('I', x[:4])[0] & 0x8     # FS_XFLAG_IMMUTABLE")" OK
# the other flags of an immutable inode stay too (ext4)
eperm "+i: chattr +d with i kept" chattr +d "$m/i"

# ---- append-only file ----------------------------------------------------------
echo log > "$m/a"
chattr +a "$m/a"
expect_eq "chattr +a: exit" "$?" 0
expect_eq "lsattr +a" "$(flags "$m/a")" "-----a----------------"
echo more >> "$m/a"
expect_eq "+a: shell append" "$?" 0
expect_eq "+a: open for writing without O_APPEND" "$(rerr "open('$m/a', 'r+')")" EPERM
expect_eq "+a: open O_WRONLY" "$(rerr "os.open('$m/a', os.O_WRONLY)")" EPERM
expect_eq "+a: open O_APPEND|O_TRUNC" \
	"$(rerr "os.open('$m/a', os.O_WRONLY | os.O_APPEND | os.O_TRUNC)")" EPERM
# F_SETFL may drop O_APPEND (the kernel checks IS_APPEND, which a FUSE
# inode never has): the daemon still refuses a write before the end
expect_eq "+a: pwrite at 0 after F_SETFL" "$(rerr "
fd = os.open('$m/a', os.O_WRONLY | os.O_APPEND)
fcntl.fcntl(fd, fcntl.F_SETFL, 0)
os.pwrite(fd, b'X', 0)")" EPERM
expect_eq "+a: python append" "$(rerr "
fd = os.open('$m/a', os.O_WRONLY | os.O_APPEND)
assert os.write(fd, b'end\n') == 4")" OK
eperm "+a: truncate" truncate -s 1 "$m/a"
eperm "+a: chmod" chmod 600 "$m/a"
eperm "+a: chown" chown $OTHER "$m/a"
eperm "+a: touch -d" touch -d @1000000 "$m/a"
touch "$m/a"
expect_eq "+a: touch (now)" "$?" 0
expect_eq "+a: setxattr" "$(rerr "os.setxattr('$m/a', 'user.k', b'v')")" EPERM
eperm "+a: ln" ln "$m/a" "$m/a2"
eperm "+a: rm" rm -f "$m/a"
eperm "+a: mv" mv "$m/a" "$m/a3"
eperm "+a: fallocate punch" fallocate -p -o 0 -l 1 "$m/a"
expect_eq "+a: content" "$(cat "$m/a")" "log
more
end"

# ---- directories ---------------------------------------------------------------
mkdir "$m/di" "$m/da"
echo e > "$m/di/e"; echo e > "$m/da/e"; echo x > "$m/o/x"; echo y > "$m/o/y"
mkdir "$m/di/sub" "$m/da/sub"
chattr +i "$m/di" && chattr +a "$m/da"
expect_eq "chattr +i, +a of directories: exit" "$?" 0
expect_eq "lsattr +i directory" "$(flags "$m/di")" "----i-----------------"
expect_eq "lsattr +a directory" "$(flags "$m/da")" "-----a----------------"
eperm "+i dir: create" touch "$m/di/new"
eperm "+i dir: mkdir" mkdir "$m/di/new"
eperm "+i dir: symlink" ln -s t "$m/di/new"
eperm "+i dir: link in" ln "$m/o/x" "$m/di/new"
eperm "+i dir: move in" mv "$m/o/x" "$m/di/x"
eperm "+i dir: unlink" rm -f "$m/di/e"
eperm "+i dir: rmdir" rmdir "$m/di/sub"
eperm "+i dir: rename inside" mv "$m/di/e" "$m/di/f"
eperm "+i dir: move out" mv "$m/di/e" "$m/o/e"
eperm "+i dir: rename of it" mv "$m/di" "$m/dj"
expect_eq "+i dir: lists" "$(ls "$m/di" | tr '\n' ' ')" "e sub "
echo changed > "$m/di/e"
expect_eq "+i dir: its files stay writable" "$(cat "$m/di/e")" changed
echo n > "$m/da/new" && mkdir "$m/da/newdir" && ln "$m/o/x" "$m/da/x" && mv "$m/o/y" "$m/da/y"
expect_eq "+a dir: create, mkdir, link, move in" "$?" 0
eperm "+a dir: unlink" rm -f "$m/da/new"
eperm "+a dir: rmdir" rmdir "$m/da/newdir"
eperm "+a dir: rename inside" mv "$m/da/new" "$m/da/n2"
eperm "+a dir: move out" mv "$m/da/new" "$m/o/new"
echo z > "$m/o/z"
eperm "+a dir: replace an entry" mv "$m/o/z" "$m/da/new"
expect_eq "+a dir: lists" "$(ls "$m/da" | tr '\n' ' ')" "e new newdir sub x y "

# ---- FS_IOC_FSSETXATTR (xfs_io; -r: it opens read-write otherwise) ----------------
if command -v xfs_io >/dev/null; then
	echo x > "$m/x"
	xfs_io -r -c "chattr +a" "$m/x"
	expect_eq "xfs_io chattr +a: lsattr" "$(flags "$m/x")" "-----a----------------"
	eperm "xfs_io chattr +a: rm" rm -f "$m/x"
	xfs_io -r -c "chattr -a" -c "chattr +i" "$m/x"
	expect_eq "xfs_io chattr -a +i: lsattr" "$(flags "$m/x")" "----i-----------------"
	expect_match "xfs_io lsattr" "$(xfs_io -r -c lsattr "$m/x")" "^-*i-* "
	run_status st as_other xfs_io -r -c "chattr -i" "$m/x"
	expect_match "xfs_io chattr -i by a non-owner: EPERM" "$OUT" "Operation not permitted"
	xfs_io -r -c "chattr -i" "$m/x" && rm "$m/x"
	expect_eq "xfs_io chattr -i, then rm" "$?" 0
else
	echo "# no xfs_io: FS_IOC_FSSETXATTR not tried"
fi

# ---- who may set them ------------------------------------------------------------
echo o > "$m/own"
chown $OTHER "$m/own"
run_status st as_other chattr +i "$m/own"
expect_match "owner's chattr +i: EPERM" "$st:$OUT" "^1:.*Operation not permitted"
run_status st as_other chattr +a "$m/own"
expect_match "owner's chattr +a: EPERM" "$st:$OUT" "^1:.*Operation not permitted"
run_status st as_other chattr +d "$m/own"
expect_eq "owner's chattr +d: exit" "$st" 0
chattr +i "$m/own"
run_status st as_other chattr -i "$m/own"
expect_match "owner's chattr -i: EPERM" "$st:$OUT" "^1:.*Operation not permitted"
expect_eq "owner writes its +i file" "$(oerr "open('$m/own', 'a')")" EPERM
chattr -i "$m/own"
# with CAP_LINUX_IMMUTABLE the kernel lets the owner through: the daemon,
# which takes uid 0 alone as holding it, refuses
if setpriv --reuid=$OTHER --regid=$OTHER --clear-groups --inh-caps=+linux_immutable \
	--ambient-caps=+linux_immutable true 2>/dev/null; then
	run_status st setpriv --reuid=$OTHER --regid=$OTHER --clear-groups \
		--inh-caps=+linux_immutable --ambient-caps=+linux_immutable chattr +i "$m/own"
	expect_match "owner with CAP_LINUX_IMMUTABLE: the daemon's EPERM" "$st:$OUT" \
		"^1:.*Operation not permitted"
else
	echo "# setpriv cannot give ambient capabilities here: the daemon's own check is in test_fs"
fi
expect_eq "lsattr by the owner" "$(as_other lsattr "$m/own" | cut -d' ' -f1)" "------d---------------"

# ---- a remount and fsck keep them ------------------------------------------------
pfs_umount "$m" || not_ok "umount"
run_status st "$FSCK" -f -n "$img"
expect_eq "fsck -f -n: nothing to fix" "$st" 0
run_status st "$FSCK" -f -y "$img"
expect_eq "fsck -f -y: nothing to fix" "$st" 0
pfs_mount "$img" "$m" -o allow_other || { not_ok "remount"; test_done; exit 1; }
expect_eq "remount: lsattr +i" "$(flags "$m/i")" "----i-----------------"
expect_eq "remount: lsattr +a" "$(flags "$m/a")" "-----a----------------"
expect_eq "remount: lsattr +i directory" "$(flags "$m/di")" "----i-----------------"
expect_eq "remount: lsattr +a directory" "$(flags "$m/da")" "-----a----------------"
eperm "remount: +i still refuses a write" sh -c "echo more >> '$m/i'"
eperm "remount: +a still refuses rm" rm -f "$m/a"
expect_eq "remount: +a content" "$(cat "$m/a")" "log
more
end"

# ---- with the writeback cache -----------------------------------------------------
pfs_umount "$m" || not_ok "umount"
pfs_mount "$img" "$m" -o allow_other,writeback || { not_ok "mount -o writeback"; test_done; exit 1; }
cat "$m/i" > /dev/null		# its pages in the cache
expect_eq "writeback: +i open for writing" "$(rerr "open('$m/i', 'r+')")" EPERM
eperm "writeback: +i shell append" sh -c "echo more >> '$m/i'"
eperm "writeback: +i truncate" truncate -s 0 "$m/i"
expect_eq "writeback: +i reads as before" "$(cat "$m/i")" data
echo wb >> "$m/a"
expect_eq "writeback: +a shell append" "$?" 0
expect_eq "writeback: +a pwrite at 0 after F_SETFL" "$(rerr "
fd = os.open('$m/a', os.O_WRONLY | os.O_APPEND)
fcntl.fcntl(fd, fcntl.F_SETFL, 0)
os.pwrite(fd, b'X', 0)")" EPERM
touch "$m/a"
expect_eq "writeback: +a touch (now)" "$?" 0
eperm "writeback: +a touch -d" touch -d @1000000 "$m/a"
pfs_umount "$m" || not_ok "umount"
pfs_mount "$img" "$m" -o allow_other || { not_ok "remount"; test_done; exit 1; }
expect_eq "writeback: the append reached the disk" "$(cat "$m/a")" "log
more
end
wb"

# ---- cleared, they are ordinary again ------------------------------------------
chattr -i "$m/i" "$m/di" && chattr -a "$m/a" "$m/da"
expect_eq "chattr -i, -a: exit" "$?" 0
expect_eq "lsattr after -i" "$(flags "$m/i")" "----------------------"
echo more >> "$m/i" && truncate -s 1 "$m/a" && rm "$m/i" "$m/a" "$m/da/new" && rm -r "$m/di"
expect_eq "write, truncate, rm after -i and -a" "$?" 0
pfs_umount "$m" || not_ok "umount"
run_status st "$FSCK" -f -n "$img"
expect_eq "fsck -f -n at the end" "$st" 0
test_done
