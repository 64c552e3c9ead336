#!/bin/bash
# posfs over a real mount, as a non-root user (-o allow_other): the
# kernel's mode checks (default_permissions) for read, write, exec and
# search; ownership of new inodes (the caller's uid and gid, setgid
# directories: the directory's group, and subdirectories keep the bit); the
# sticky bit; set-user-ID and set-group-ID cleared by a non-owner's write,
# truncate or fallocate (kept for root's) and by chown, S_ISGID without
# group exec kept only for a member of the file's group (its gid or a
# supplementary group), by chmod and by an access ACL of an owner outside
# the group (ext4's rules); utimensat (UTIME_NOW with write
# access, explicit times only by the owner); chmod and chown by a non-owner;
# an open descriptor keeps working after chmod 000 (permission is checked at
# open). The set-ID writes again with -o writeback. The test user
# (posfs-test) is made with useradd if absent and removed at exit.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fuse/common.sh"
fuse_init

command -v useradd >/dev/null && command -v userdel >/dev/null ||
	skip "useradd and userdel are needed to make the test user"
command -v setpriv >/dev/null || skip "setpriv (util-linux) is needed"
# The user's python: not a per-user shim (pyenv in root's home).
UPY=
for p in /usr/bin/python3 /usr/local/bin/python3; do
	[ -x "$p" ] && { UPY=$p; break; }
done
[ -n "$UPY" ] || skip "no system python3 the test user can run"

TUSER=posfs-test
MADE_USER=
OTHER=4242		# another owner: no account needed
OGRP=4243		# a group the test user is not in

u_cleanup() {
	if [ -n "$MADE_USER" ]; then
		userdel "$TUSER" 2>/dev/null
		getent group "$TUSER" >/dev/null && groupdel "$TUSER" 2>/dev/null
	fi
}
trap 'f_cleanup; t_cleanup; u_cleanup' EXIT

if ! id -u "$TUSER" >/dev/null 2>&1; then
	useradd -M -d /nonexistent -s /bin/sh -U "$TUSER" ||
		skip "useradd $TUSER failed"
	MADE_USER=1
fi
TUID=$(id -u "$TUSER")
TGID=$(id -g "$TUSER")
[ "$TUID" != 0 ] || skip "$TUSER has uid 0"

# The user must get to the mount point through T_DIR.
chmod 755 "$T_DIR"
img=$T_DIR/img
m=$T_DIR/mnt
"$MKFS" -q -s 2 "$img" 256M || exit 99
pfs_mount "$img" "$m" -o allow_other || { not_ok "mount"; test_done; exit 1; }
expect_match "/proc/mounts" "$(grep " $m " /proc/mounts)" "default_permissions.*allow_other"
chmod 755 "$m"

# as_user CMD...: run CMD as the test user (with its groups).
as_user() {
	(cd / && setpriv --reuid="$TUID" --regid="$TGID" --init-groups -- "$@")
}
# uerr CODE: run python CODE as the test user; OK or the errno's name.
uerr() {
	as_user "$UPY" -c "import os, sys, errno, subprocess
try:
    $1
    print('OK')
except OSError as e:
    print(errno.errorcode[e.errno])" 2>&1
}
# serr CODE: as uerr, the user with OGRP as a supplementary group.
serr() {
	(cd / && setpriv --reuid="$TUID" --regid="$TGID" --groups="$OGRP" -- "$UPY" -c "import os, sys, errno
try:
    $1
    print('OK')
except OSError as e:
    print(errno.errorcode[e.errno])") 2>&1
}
# nocap CMD...: run CMD as root without CAP_FSETID.
nocap() {
	(cd / && setpriv --inh-caps=-fsetid --bounding-set=-fsetid -- "$@")
}
# rerr CODE: the same as root.
rerr() {
	py "import os, sys, errno
try:
    $1
    print('OK')
except OSError as e:
    print(errno.errorcode[e.errno])" 2>&1
}
mode() { stat -c %a "$1"; }

expect_eq "user reaches the mount" "$(uerr "os.listdir('$m')")" OK

# ---- Mode checks by the kernel --------------------------------------------
p=$m/modes
mkdir "$p"
chmod 755 "$p"
echo secret > "$p/r600"; chmod 600 "$p/r600"
echo public > "$p/r644"; chmod 644 "$p/r644"
echo grp > "$p/g640"; chown "0:$TGID" "$p/g640"; chmod 640 "$p/g640"
echo own > "$p/o066"; chown "$TUID:$TGID" "$p/o066"; chmod 066 "$p/o066"
printf '#!/bin/sh\necho ran\n' > "$p/x700"; chmod 700 "$p/x700"
printf '#!/bin/sh\necho ran\n' > "$p/x755"; chmod 755 "$p/x755"
printf '#!/bin/sh\necho ran\n' > "$p/x644"; chmod 644 "$p/x644"
mkdir "$p/d700" "$p/d711" "$p/d755" "$p/d733"
touch "$p/d700/f" "$p/d711/f" "$p/d755/f"
chmod 700 "$p/d700"; chmod 711 "$p/d711"; chmod 755 "$p/d755"; chmod 733 "$p/d733"

expect_eq "read a 600 file of root" "$(uerr "open('$p/r600').read()")" EACCES
expect_eq "write a 600 file of root" "$(uerr "open('$p/r600', 'r+')")" EACCES
expect_eq "read a 644 file of root" "$(uerr "assert open('$p/r644').read() == 'public\n'")" OK
expect_eq "write a 644 file of root" "$(uerr "open('$p/r644', 'a')")" EACCES
expect_eq "truncate a 644 file of root" "$(uerr "os.truncate('$p/r644', 0)")" EACCES
expect_eq "read a 640 file through the group" "$(uerr "assert open('$p/g640').read() == 'grp\n'")" OK
expect_eq "write a 640 file through the group" "$(uerr "open('$p/g640', 'a')")" EACCES
expect_eq "owner class wins (066 file of the user)" "$(uerr "open('$p/o066').read()")" EACCES
expect_eq "exec a 700 script of root" "$(uerr "subprocess.run(['$p/x700'])")" EACCES
expect_eq "exec a 644 script" "$(uerr "subprocess.run(['$p/x644'])")" EACCES
expect_eq "exec a 755 script" "$(as_user "$p/x755" 2>&1)" ran
expect_eq "list a 700 dir of root" "$(uerr "os.listdir('$p/d700')")" EACCES
expect_eq "search a 700 dir of root" "$(uerr "os.stat('$p/d700/f')")" EACCES
expect_eq "list a 711 dir" "$(uerr "os.listdir('$p/d711')")" EACCES
expect_eq "search a 711 dir" "$(uerr "os.stat('$p/d711/f')")" OK
expect_eq "create in a 755 dir of root" "$(uerr "open('$p/d755/new', 'w')")" EACCES
expect_eq "mkdir in a 755 dir of root" "$(uerr "os.mkdir('$p/d755/new')")" EACCES
expect_eq "unlink in a 755 dir of root" "$(uerr "os.unlink('$p/d755/f')")" EACCES
expect_eq "rename in a 755 dir of root" "$(uerr "os.rename('$p/d755/f', '$p/d755/g')")" EACCES
expect_eq "create in a 733 dir (write and search)" "$(uerr "open('$p/d733/mine', 'w').write('x')")" OK
expect_eq "list a 733 dir" "$(uerr "os.listdir('$p/d733')")" EACCES
expect_eq "root reads a 600 file" "$(cat "$p/d700/f" >/dev/null && cat "$p/r600")" secret

# ---- Ownership of new inodes ----------------------------------------------
t=$m/tmp
mkdir "$t"
chmod 1777 "$t"
as_user "$UPY" -c "import os
os.umask(0o022)
open('$t/uf', 'w').write('mine')
os.mkdir('$t/ud')
os.symlink('uf', '$t/ul')
os.mkfifo('$t/up')
os.link('$t/uf', '$t/uh')"
expect_eq "owner of a new file" "$(stat -c %u:%g "$t/uf")" "$TUID:$TGID"
expect_eq "owner of a new directory" "$(stat -c %u:%g "$t/ud")" "$TUID:$TGID"
expect_eq "owner of a new symlink" "$(stat -c %u:%g "$t/ul")" "$TUID:$TGID"
expect_eq "owner of a new fifo" "$(stat -c %u:%g "$t/up")" "$TUID:$TGID"
expect_eq "mode of a new file (umask 022)" "$(mode "$t/uf")" 644
expect_eq "mode of a new directory (umask 022)" "$(mode "$t/ud")" 755
expect_eq "hard link of the user's file" "$(stat -c %h "$t/uf")" 2

sg=$m/sgid
mkdir "$sg"
chown "0:$OGRP" "$sg"
chmod 2777 "$sg"
expect_eq "setgid dir mode" "$(mode "$sg")" 2777
as_user "$UPY" -c "import os
os.umask(0o022)
open('$sg/f', 'w').write('x')
os.mkdir('$sg/sub')
os.mkdir('$sg/sub/deeper')
os.mkfifo('$sg/p')"
expect_eq "file in a setgid dir: the dir's group" "$(stat -c %u:%g "$sg/f")" "$TUID:$OGRP"
expect_eq "file in a setgid dir: no setgid bit" "$(mode "$sg/f")" 644
expect_eq "subdir of a setgid dir: group" "$(stat -c %u:%g "$sg/sub")" "$TUID:$OGRP"
expect_eq "subdir of a setgid dir: inherits setgid" "$(mode "$sg/sub")" 2755
expect_eq "subdir of a subdir: group and setgid" "$(stat -c %g:%a "$sg/sub/deeper")" "$OGRP:2755"
expect_eq "fifo in a setgid dir: group" "$(stat -c %g "$sg/p")" "$OGRP"
# The user is not in OGRP: chmod g+s on its own file of that group drops
# S_ISGID silently (as ext4).
expect_eq "chmod 2755 by an owner outside the group" \
	"$(uerr "os.chmod('$sg/f', 0o2755)"):$(mode "$sg/f")" OK:755
expect_eq "chgrp to a group the user is not in" "$(uerr "os.chown('$t/uf', -1, 0)")" EPERM
expect_eq "chgrp by the owner to its own group" \
	"$(uerr "os.chown('$sg/f', -1, $TGID)"):$(stat -c %g "$sg/f")" "OK:$TGID"

# ---- Sticky directory -----------------------------------------------------
echo theirs > "$t/other"; chown "$OTHER:$OTHER" "$t/other"; chmod 666 "$t/other"
echo theirs > "$t/other2"; chown "$OTHER:$OTHER" "$t/other2"; chmod 666 "$t/other2"
mkdir "$t/otherdir"; chown "$OTHER:$OTHER" "$t/otherdir"; chmod 777 "$t/otherdir"
expect_eq "sticky: unlink another user's file" "$(uerr "os.unlink('$t/other')")" EPERM
expect_eq "sticky: rename another user's file" "$(uerr "os.rename('$t/other', '$t/moved')")" EPERM
expect_eq "sticky: rename over another user's file" "$(uerr "os.rename('$t/uf', '$t/other')")" EPERM
expect_eq "sticky: rmdir another user's dir" "$(uerr "os.rmdir('$t/otherdir')")" EPERM
expect_eq "sticky: another user's file still there" "$(cat "$t/other"):$(ls "$t" | grep -c moved)" theirs:0
expect_eq "sticky: but writable (mode 666)" "$(uerr "open('$t/other', 'a').write('+')")" OK
expect_eq "sticky: rename of the user's own file" "$(uerr "os.rename('$t/uh', '$t/uh2')")" OK
expect_eq "sticky: unlink of the user's own file" "$(uerr "os.unlink('$t/uh2')")" OK
expect_eq "sticky: rmdir of the user's own dir" "$(uerr "os.rmdir('$t/ud')")" OK
expect_eq "sticky: root renames another user's file" "$(rerr "os.rename('$t/other2', '$t/other3')")" OK
expect_eq "sticky: root unlinks another user's file" "$(rerr "os.unlink('$t/other3')")" OK
# The owner of the sticky directory may remove anything in it.
st=$m/ust
mkdir "$st"; chown "$TUID:$TGID" "$st"; chmod 1777 "$st"
touch "$st/x"; chown "$OTHER:$OTHER" "$st/x"
expect_eq "sticky: the dir's owner unlinks another user's file" "$(uerr "os.unlink('$st/x')")" OK

# ---- Set-user-ID and set-group-ID -----------------------------------------
s=$m/suid
mkdir "$s"
chmod 777 "$s"
mk_s() { # NAME MODE: a file of OTHER with MODE, 4 bytes
	printf abcd > "$s/$1"
	chown "$OTHER:$OTHER" "$s/$1"
	chmod "$2" "$s/$1"
}
# suid_writes TAG: writes and truncates by a non-owner clear the bits,
# root's keep them.
suid_writes() {
	mk_s w 6777
	expect_eq "$1: write by a non-owner clears suid and sgid" \
		"$(uerr "fd = os.open('$s/w', os.O_WRONLY); os.write(fd, b'x'); os.close(fd)"):$(mode "$s/w")" OK:777
	mk_s t 6777
	expect_eq "$1: truncate by a non-owner clears suid and sgid" \
		"$(uerr "os.truncate('$s/t', 1)"):$(mode "$s/t"):$(stat -c %s "$s/t")" OK:777:1
	mk_s ft 6777
	expect_eq "$1: ftruncate by a non-owner clears suid and sgid" \
		"$(uerr "fd = os.open('$s/ft', os.O_WRONLY); os.ftruncate(fd, 2); os.close(fd)"):$(mode "$s/ft")" OK:777
	mk_s ot 6777
	expect_eq "$1: O_TRUNC by a non-owner clears suid and sgid" \
		"$(uerr "os.close(os.open('$s/ot', os.O_WRONLY|os.O_TRUNC))"):$(mode "$s/ot"):$(stat -c %s "$s/ot")" OK:777:0
	# S_ISGID without S_IXGRP: kept only for a caller in the file's
	# group (its gid or a supplementary group) or with CAP_FSETID, as
	# the kernel's should_remove_suid (ext4: 6666 -> 0666)
	local W="os.write(fd, b'x'); os.close(fd)"
	mk_s nx 2666
	expect_eq "$1: write by a non-owner outside the group clears sgid" \
		"$(uerr "fd = os.open('$s/nx', os.O_WRONLY); $W"):$(mode "$s/nx")" OK:666
	mk_s n6 6666
	expect_eq "$1: write by a non-owner outside the group clears suid and sgid" \
		"$(uerr "fd = os.open('$s/n6', os.O_WRONLY); $W"):$(mode "$s/n6")" OK:666
	mk_s np 2666
	chgrp "$TGID" "$s/np"; chmod 2666 "$s/np"
	expect_eq "$1: write by a non-owner of the file's group keeps sgid" \
		"$(uerr "fd = os.open('$s/np', os.O_WRONLY); $W"):$(mode "$s/np")" OK:2666
	mk_s ns 2666
	chgrp "$OGRP" "$s/ns"; chmod 2666 "$s/ns"
	expect_eq "$1: write by a member of the file's group (supplementary) keeps sgid" \
		"$(serr "fd = os.open('$s/ns', os.O_WRONLY); $W"):$(mode "$s/ns")" OK:2666
	mk_s n7 6666
	chgrp "$OGRP" "$s/n7"; chmod 6666 "$s/n7"
	expect_eq "$1: write by a member of the group clears suid, keeps sgid" \
		"$(serr "fd = os.open('$s/n7', os.O_WRONLY); $W"):$(mode "$s/n7")" OK:2666
	mk_s nq 2676
	chgrp "$OGRP" "$s/nq"; chmod 2676 "$s/nq"
	expect_eq "$1: write by a member of the group clears sgid with group exec" \
		"$(serr "fd = os.open('$s/nq', os.O_WRONLY); $W"):$(mode "$s/nq")" OK:676
	mk_s tn 2666
	expect_eq "$1: truncate by a non-owner outside the group clears sgid" \
		"$(uerr "os.truncate('$s/tn', 1)"):$(mode "$s/tn")" OK:666
	mk_s ts 2666
	chgrp "$OGRP" "$s/ts"; chmod 2666 "$s/ts"
	expect_eq "$1: truncate by a member of the group keeps sgid" \
		"$(serr "os.truncate('$s/ts', 1)"):$(mode "$s/ts")" OK:2666
	mk_s on 2666
	expect_eq "$1: O_TRUNC by a non-owner outside the group clears sgid" \
		"$(uerr "os.close(os.open('$s/on', os.O_WRONLY|os.O_TRUNC))"):$(mode "$s/on")" OK:666
	mk_s fn 2666
	expect_eq "$1: fallocate by a non-owner outside the group clears sgid" \
		"$(uerr "fd = os.open('$s/fn', os.O_WRONLY); os.posix_fallocate(fd, 0, 8192); os.close(fd)"):$(mode "$s/fn")" OK:666
	mk_s fs 2666
	chgrp "$OGRP" "$s/fs"; chmod 2666 "$s/fs"
	expect_eq "$1: fallocate by a member of the group keeps sgid" \
		"$(serr "fd = os.open('$s/fs', os.O_WRONLY); os.posix_fallocate(fd, 0, 8192); os.close(fd)"):$(mode "$s/fs")" OK:2666
	mk_s rn 2666
	nocap dd if=/dev/zero of="$s/rn" bs=1 count=1 conv=notrunc status=none
	expect_eq "$1: write by root outside the group without CAP_FSETID clears sgid" "$(mode "$s/rn")" 666
	mk_s rk 2666
	dd if=/dev/zero of="$s/rk" bs=1 count=1 conv=notrunc status=none
	expect_eq "$1: write by root (CAP_FSETID) keeps sgid" "$(mode "$s/rk")" 2666
	# fallocate and copy_file_range: the kernel's word comes as a setattr
	printf abcd > "$s/src"
	chmod 644 "$s/src"
	mk_s rf 6777
	nocap fallocate -l 8192 "$s/rf"
	expect_eq "$1: fallocate by root without CAP_FSETID clears suid and sgid" "$(mode "$s/rf")" 777
	mk_s rg 2666
	nocap fallocate -l 8192 "$s/rg"
	expect_eq "$1: fallocate by root outside the group without CAP_FSETID clears sgid" \
		"$(mode "$s/rg")" 666
	mk_s rh 6777
	fallocate -l 8192 "$s/rh"
	expect_eq "$1: fallocate by root (CAP_FSETID) keeps suid and sgid" "$(mode "$s/rh")" 6777
	mk_s rx 6777
	nocap "$UPY" -c "import os
i = os.open('$s/src', os.O_RDONLY); o = os.open('$s/rx', os.O_WRONLY)
os.copy_file_range(i, o, 4, 0, 0)"
	expect_eq "$1: copy_file_range by root without CAP_FSETID clears suid and sgid" \
		"$(mode "$s/rx"):$(cat "$s/rx")" 777:abcd
	mk_s ry 6777
	"$UPY" -c "import os
i = os.open('$s/src', os.O_RDONLY); o = os.open('$s/ry', os.O_WRONLY)
os.copy_file_range(i, o, 4, 0, 0)"
	expect_eq "$1: copy_file_range by root (CAP_FSETID) keeps suid and sgid" "$(mode "$s/ry")" 6777
	mk_s ap 4757
	expect_eq "$1: append by a non-owner clears suid" \
		"$(uerr "fd = os.open('$s/ap', os.O_WRONLY|os.O_APPEND); os.write(fd, b'x'); os.close(fd)"):$(mode "$s/ap")" OK:757
	mk_s fa 6777
	expect_eq "$1: fallocate by a non-owner clears suid and sgid" \
		"$(uerr "fd = os.open('$s/fa', os.O_WRONLY); os.posix_fallocate(fd, 0, 8192); os.close(fd)"):$(mode "$s/fa")" OK:777
	printf abcd > "$s/src"
	chmod 644 "$s/src"
	mk_s cf 6777
	expect_eq "$1: copy_file_range by a non-owner clears suid and sgid" \
		"$(uerr "i = os.open('$s/src', os.O_RDONLY); o = os.open('$s/cf', os.O_WRONLY); os.copy_file_range(i, o, 4, 0, 0)"):$(mode "$s/cf"):$(cat "$s/cf")" OK:777:abcd
	mk_s rw 6777
	printf abcd > "$s/rw"
	expect_eq "$1: write by root keeps suid and sgid" "$(mode "$s/rw")" 6777
	truncate -s 1 "$s/rw"
	expect_eq "$1: truncate by root keeps suid and sgid" "$(mode "$s/rw")" 6777
	# CAP_FSETID, not uid 0, keeps the bits: the kernel says which
	# (FUSE_HANDLE_KILLPRIV_V2), so root without it loses them too.
	mk_s nw 6777
	nocap dd if=/dev/zero of="$s/nw" bs=1 count=1 conv=notrunc status=none
	expect_eq "$1: write by root without CAP_FSETID clears suid and sgid" "$(mode "$s/nw")" 777
	mk_s nt 6777
	nocap truncate -s 1 "$s/nt"
	expect_eq "$1: truncate by root without CAP_FSETID clears suid and sgid" \
		"$(mode "$s/nt"):$(stat -c %s "$s/nt")" 777:1
	mk_s no 6777
	nocap dd if=/dev/null of="$s/no" status=none
	expect_eq "$1: O_TRUNC by root without CAP_FSETID clears suid and sgid" \
		"$(mode "$s/no"):$(stat -c %s "$s/no")" 777:0
}
suid_writes write-through
mk_s ch 6755
chown "$TUID" "$s/ch"
expect_eq "chown by root clears suid and sgid (ext4)" "$(stat -c %u:%a "$s/ch")" "$TUID:755"
mk_s cg 2755
chgrp "$OGRP" "$s/cg"
expect_eq "chgrp by root clears sgid with group exec" "$(stat -c %g:%a "$s/cg")" "$OGRP:755"
mk_s cd 6755
chmod 6755 "$s/cd"
expect_eq "chmod by root sets suid and sgid" "$(mode "$s/cd")" 6755
expect_eq "suid survives a read by a non-owner" "$(uerr "open('$s/cd').read()"):$(mode "$s/cd")" OK:6755
mkdir "$s/sd"; chmod 2777 "$s/sd"
chown "$OTHER" "$s/sd"
expect_eq "chown of a directory keeps its sgid" "$(mode "$s/sd")" 2777
touch "$s/rc"; chgrp "$OGRP" "$s/rc"
nocap chmod 2777 "$s/rc"
expect_eq "chmod 2777 by root outside the group without CAP_FSETID" "$(mode "$s/rc")" 777
chmod 2777 "$s/rc"
expect_eq "chmod 2777 by root" "$(mode "$s/rc")" 2777

# An access ACL set by the owner (posix_acl_update_mode): S_ISGID goes
# when the owner is not in the file's group (uid 0 keeps it).
# (u::rwx,u:$OTHER:r,g::rwx,m::rwx,o:: and u::rwx,g::r-x,o::, as
# linux/posix_acl_xattr.h lays them out; $OTHER is 4242 = 0x1092)
NAMED="bytes.fromhex('0200000001000700ffffffff020004009210000004000700ffffffff10000700ffffffff20000000ffffffff')"
PLAIN="bytes.fromhex('0200000001000700ffffffff04000500ffffffff20000000ffffffff')"
[ "$OTHER" = 4242 ] || { not_ok "OTHER is not 4242: the ACL bytes name it"; }
mk_acl() { # NAME: a file of the user in OGRP, mode 2770
	touch "$s/$1"
	chown "$TUID:$OGRP" "$s/$1"
	chmod 2770 "$s/$1"
}
mk_acl an
expect_eq "ACL with a named user by an owner outside the group clears sgid" \
	"$(uerr "os.setxattr('$s/an', 'system.posix_acl_access', $NAMED)"):$(mode "$s/an")" OK:770
mk_acl ap
expect_eq "ACL equal to a mode by an owner outside the group clears sgid" \
	"$(uerr "os.setxattr('$s/ap', 'system.posix_acl_access', $PLAIN)"):$(mode "$s/ap")" OK:750
mk_acl as
expect_eq "ACL by an owner in the group (supplementary) keeps sgid" \
	"$(serr "os.setxattr('$s/as', 'system.posix_acl_access', $NAMED)"):$(mode "$s/as")" OK:2770
mk_acl ar
expect_eq "ACL by root keeps sgid" \
	"$(rerr "os.setxattr('$s/ar', 'system.posix_acl_access', $PLAIN)"):$(mode "$s/ar")" OK:2750

# ---- Times ----------------------------------------------------------------
echo x > "$t/tw"; chown "$OTHER:$OTHER" "$t/tw"; chmod 666 "$t/tw"
echo x > "$t/tr"; chown "$OTHER:$OTHER" "$t/tr"; chmod 644 "$t/tr"
touch -d '2001-01-01 00:00:00 UTC' "$t/tw" "$t/tr"
expect_eq "UTIME_NOW by a non-owner with write access" \
	"$(uerr "os.utime('$t/tw')")" OK
expect_eq "UTIME_NOW moved mtime" "$([ "$(stat -c %Y "$t/tw")" -gt 1000000000 ] && echo yes)" yes
expect_eq "explicit times by a non-owner with write access" \
	"$(uerr "os.utime('$t/tw', (1000, 2000))")" EPERM
expect_eq "UTIME_NOW by a non-owner without write access" \
	"$(uerr "os.utime('$t/tr')")" EACCES
expect_eq "mtime unchanged after the refusals" "$(stat -c %Y "$t/tr")" 978307200
expect_eq "explicit times by the owner" \
	"$(uerr "os.utime('$t/uf', (1000, 2000))"):$(stat -c %X:%Y "$t/uf")" OK:1000:2000
expect_eq "explicit times by root" \
	"$(rerr "os.utime('$t/tr', (3000, 4000))"):$(stat -c %X:%Y "$t/tr")" OK:3000:4000

# ---- chmod and chown ------------------------------------------------------
expect_eq "chmod by a non-owner" "$(uerr "os.chmod('$t/tw', 0o777)"):$(mode "$t/tw")" EPERM:666
expect_eq "chown to the user by a non-owner" "$(uerr "os.chown('$t/tw', $TUID, -1)")" EPERM
expect_eq "chown of the user's file to another user" \
	"$(uerr "os.chown('$t/uf', $OTHER, -1)"):$(stat -c %u "$t/uf")" "EPERM:$TUID"
expect_eq "chmod by the owner" "$(uerr "os.chmod('$t/uf', 0o600)"):$(mode "$t/uf")" OK:600
expect_eq "chown to itself by the owner (no change)" "$(uerr "os.chown('$t/uf', $TUID, $TGID)")" OK

# ---- An open descriptor after chmod 000 -----------------------------------
expect_eq "owner's descriptor after chmod 000" "$(as_user "$UPY" -c "import os, errno
p = '$t/fd'
fd = os.open(p, os.O_CREAT|os.O_RDWR, 0o644)
os.write(fd, b'hello world')
os.chmod(p, 0)
r = []
try:
    os.open(p, os.O_RDONLY); r.append('reopen OK')
except OSError as e:
    r.append('reopen ' + errno.errorcode[e.errno])
os.ftruncate(fd, 5)
os.pwrite(fd, b'!', 5)
os.fsync(fd)
os.utime(fd, (1000, 2000))
os.fchmod(fd, 0o640)
st = os.fstat(fd)
r.append('%d %o %d %d %s' % (st.st_size, st.st_mode & 0o7777, st.st_atime, st.st_mtime, os.pread(fd, 10, 0)))
os.close(fd)
print(', '.join(r))" 2>&1)" "reopen EACCES, 6 640 1000 2000 b'hello!'"
# (the read above may move atime: relatime)
expect_eq "the file after it (root's view)" "$(stat -c %s:%a:%Y "$t/fd"):$(cat "$t/fd")" 6:640:2000:hello!

# A non-owner with write access opens the file, then its owner (root here)
# makes it 000: the open descriptor still truncates, writes and fsyncs.
echo 0123456789 > "$t/nfd2"; chown "$OTHER:$OTHER" "$t/nfd2"; chmod 666 "$t/nfd2"
coproc HOLD { as_user "$UPY" -u -c "import os, sys, errno
p = '$t/nfd2'
fd = os.open(p, os.O_RDWR)
print('open', flush=True)
sys.stdin.readline()
r = []
try:
    os.open(p, os.O_RDONLY); r.append('reopen OK')
except OSError as e:
    r.append('reopen ' + errno.errorcode[e.errno])
os.ftruncate(fd, 3)
os.pwrite(fd, b'Z', 3)
os.fsync(fd)
r.append(repr(os.pread(fd, 10, 0)))
print(' '.join(r), flush=True)" 2>&1; }
coproc_pid=$HOLD_PID
hold_out() { local l; read -r -t 10 l <&"${HOLD[0]}" && printf '%s' "$l"; }
line=$(hold_out)
if [ "$line" = open ]; then
	chmod 000 "$t/nfd2"
	echo go >&"${HOLD[1]}"
	expect_eq "non-owner's ftruncate, pwrite, fsync after chmod 000" "$(hold_out)" "reopen EACCES b'012Z'"
else
	not_ok "non-owner's descriptor: child said '$line'"
	kill "$coproc_pid" 2>/dev/null
fi
wait "$coproc_pid" 2>/dev/null
expect_eq "the file after it" "$(stat -c %s:%a "$t/nfd2"):$(cat "$t/nfd2")" 4:0:012Z

pfs_umount "$m"
expect_eq "clean unmount" "$UMOUNT_STATUS" 0

# The same writes with the kernel's write-back cache.
pfs_mount "$img" "$m" -o allow_other,writeback ||
	{ not_ok "mount -o allow_other,writeback"; test_done; exit 1; }
s=$m/suid-wb
mkdir "$s"
chmod 777 "$s"
suid_writes writeback
expect_eq "writeback: data of the non-owner's write" "$(cat "$s/w")" xbcd
pfs_umount "$m"
expect_eq "clean unmount (writeback)" "$UMOUNT_STATUS" 0
test_done
