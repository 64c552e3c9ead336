#!/bin/bash
# POSIX ACLs over a real mount (FUSE_CAP_POSIX_ACL): the kernel lets a
# non-root uid in or keeps it out by a named-user entry (and by the mask
# after chmod); a directory's default ACL is inherited by new files and
# directories, the mode masked by it and the umask ignored; without one
# the umask applies; ACLs survive a remount. setfacl/getfacl are not
# needed: the ACL xattrs are built by hand in python3 (Linux's format,
# linux/posix_acl_xattr.h). The non-root user is a bare uid with no
# passwd entry (the kernel needs no more), so nothing on the machine
# changes. Skips (77) without root, /dev/fuse, or a kernel that does not
# offer FUSE_POSIX_ACL.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fuse/common.sh"
fuse_init

# a uid and gid nobody has
U=
for u in $(seq 54321 54400); do
	if ! getent passwd "$u" >/dev/null && ! getent group "$u" >/dev/null; then
		U=$u
		break
	fi
done
[ -n "$U" ] || skip "no free uid in 54321..54400"

img=$T_DIR/img
m=$T_DIR/mnt
"$MKFS" -q -s 2 "$img" 128M || exit 99
pfs_mount "$img" "$m" -o allow_other || { not_ok "mount"; test_done; exit 1; }
ok "mounted"

# acl.py set PATH NAME SPEC | get PATH NAME | as UID DIR CODE
# SPEC: "u::rw,u:1000:r,g::r,m::r,o::" (perms rwx, '-' or nothing).
# Prints OK, the errno name, or (get) the ACL in the same form.
cat > "$T_DIR/acl.py" <<'EOF'
import errno, os, struct, sys

TAGS = {'u': (0x01, 0x02), 'g': (0x04, 0x08), 'm': (0x10, 0x10), 'o': (0x20, 0x20)}
NAMES = {0x01: 'u', 0x02: 'u', 0x04: 'g', 0x08: 'g', 0x10: 'm', 0x20: 'o'}

def build(spec):
    b = struct.pack('<I', 2)
    for e in spec.split(','):
        t, i, p = e.split(':')
        tag = TAGS[t][1 if i else 0]
        perm = (4 if 'r' in p else 0) | (2 if 'w' in p else 0) | (1 if 'x' in p else 0)
        b += struct.pack('<HHI', tag, perm, int(i) if i else 0xffffffff)
    return b

def show(b):
    out = []
    for off in range(4, len(b), 8):
        tag, perm, i = struct.unpack_from('<HHI', b, off)
        p = ''.join(c if perm & v else '-' for c, v in (('r', 4), ('w', 2), ('x', 1)))
        out.append('%s:%s:%s' % (NAMES[tag], '' if tag in (1, 4, 16, 32) else i, p))
    return ','.join(out)

try:
    if sys.argv[1] == 'set':
        os.setxattr(sys.argv[2], sys.argv[3], build(sys.argv[4]))
    elif sys.argv[1] == 'get':
        print(show(os.getxattr(sys.argv[2], sys.argv[3])))
        sys.exit(0)
    elif sys.argv[1] == 'as':
        os.chdir(sys.argv[3])
        os.setgroups([])
        os.setgid(int(sys.argv[2]))
        os.setuid(int(sys.argv[2]))
        exec(sys.argv[4])
    print('OK')
except OSError as e:
    print(errno.errorcode[e.errno])
EOF
acl() { python3 "$T_DIR/acl.py" "$@" 2>&1; }
ACC=system.posix_acl_access
DEF=system.posix_acl_default
# as_user CODE: run python CODE as uid/gid $U in the mount's root
as_user() { acl as "$U" "$m" "$1"; }
rd() { printf 'open(%s).read()' "'$1'"; }
wr() { printf 'open(%s, "a").write("x")' "'$1'"; }

expect_match "/proc/mounts" "$(grep " $m " /proc/mounts)" "default_permissions"
echo secret > "$m/f"
chmod 0640 "$m/f"
expect_eq "no ACL: other uid kept out" "$(as_user "$(rd f)")" EACCES
r=$(acl set "$m/f" $ACC "u::rw,u:$U:r,g::r,m::r,o::")
[ "$r" = EOPNOTSUPP ] && skip "the kernel does not offer FUSE_POSIX_ACL"
expect_eq "set access ACL" "$r" OK
expect_eq "mode from the ACL" "$(stat -c %a "$m/f")" 640
expect_eq "named user may read" "$(as_user "$(rd f)")" OK
expect_eq "named user may not write" "$(as_user "$(wr f)")" EACCES
expect_eq "widen the entry" "$(acl set "$m/f" $ACC "u::rw,u:$U:rw,g::r,m::rw,o::")" OK
expect_eq "mode follows the mask" "$(stat -c %a "$m/f")" 660
expect_eq "named user may write" "$(as_user "$(wr f)")" OK
chmod 0600 "$m/f"
expect_eq "chmod updates the ACL" "$(acl get "$m/f" $ACC)" "u::rw-,u:$U:rw-,g::r--,m::---,o::---"
expect_eq "masked named user kept out" "$(as_user "$(rd f)")" EACCES
chmod 0640 "$m/f"
expect_eq "chmod widens the mask" "$(acl get "$m/f" $ACC)" "u::rw-,u:$U:rw-,g::r--,m::r--,o::---"
expect_eq "named user reads through the mask" "$(as_user "$(rd f)")" OK
expect_eq "named user write masked" "$(as_user "$(wr f)")" EACCES
expect_eq "minimal ACL" "$(acl set "$m/f" $ACC "u::rw,g::r,o::r")" OK
expect_eq "minimal ACL: mode only" "$(stat -c %a "$m/f"):$(acl get "$m/f" $ACC)" 644:ENODATA
expect_eq "other uid by mode" "$(as_user "$(rd f)")" OK
expect_eq "malformed ACL" "$(acl set "$m/f" $ACC "u::rw,o::r")" EINVAL
expect_eq "default ACL on a file" "$(acl set "$m/f" $DEF "u::rw,g::r,o::r")" EACCES

# Default ACL inheritance; the umask is ignored under one.
mkdir -m 0755 "$m/d"
expect_eq "set default ACL" "$(acl set "$m/d" $DEF "u::rwx,u:$U:rwx,g::r-x,m::rwx,o::")" OK
expect_eq "default leaves the mode" "$(stat -c %a "$m/d")" 755
mkf() { py "import os, sys; os.umask(int(sys.argv[2], 8)); os.close(os.open(sys.argv[1], os.O_CREAT | os.O_WRONLY, int(sys.argv[3], 8)))" "$@"; }
mkd() { py "import os, sys; os.umask(int(sys.argv[2], 8)); os.mkdir(sys.argv[1], int(sys.argv[3], 8))" "$@"; }
mkf "$m/d/f" 077 0666
expect_eq "inherited file mode (umask 077 ignored)" "$(stat -c %a "$m/d/f")" 660
expect_eq "inherited file ACL" "$(acl get "$m/d/f" $ACC)" "u::rw-,u:$U:rwx,g::r-x,m::rw-,o::---"
expect_eq "file: no default ACL" "$(acl get "$m/d/f" $DEF)" ENODATA
mkd "$m/d/s" 022 0777
expect_eq "inherited dir mode (umask 022 ignored)" "$(stat -c %a "$m/d/s")" 770
expect_eq "inherited dir access ACL" "$(acl get "$m/d/s" $ACC)" "u::rwx,u:$U:rwx,g::r-x,m::rwx,o::---"
expect_eq "inherited dir default ACL" "$(acl get "$m/d/s" $DEF)" "u::rwx,u:$U:rwx,g::r-x,m::rwx,o::---"
expect_eq "named user writes an inherited file" "$(as_user "$(wr d/f)")" OK
expect_eq "named user kept out of d (no access ACL)" "$(as_user "open('d/x', 'w')")" EACCES
expect_eq "named user creates in d/s" "$(as_user "os.umask(0o022); open('d/s/u', 'w')")" OK
expect_eq "owner of the user's file" "$(stat -c %u:%a "$m/d/s/u")" "$U:660"
mkf "$m/d/s/g" 022 0600
expect_eq "0600 masks the ACL" "$(stat -c %a "$m/d/s/g"):$(acl get "$m/d/s/g" $ACC)" \
	"600:u::rw-,u:$U:rwx,g::r-x,m::---,o::---"
expect_eq "named user masked out" "$(as_user "$(rd d/s/g)")" EACCES
expect_eq "mknod fifo inherits" "$(py "import os; os.umask(0o077); os.mkfifo('$m/d/p', 0o644)" &&
	stat -c %a "$m/d/p")" 640
ln -s f "$m/d/l"
expect_eq "symlink" "$(stat -c %a "$m/d/l")" 777

# Without a default ACL the umask applies.
mkd "$m/e" 022 0777
expect_eq "umask 022 mkdir" "$(stat -c %a "$m/e")" 755
mkf "$m/e/f" 022 0666
expect_eq "umask 022 create" "$(stat -c %a "$m/e/f")" 644
mkf "$m/e/g" 077 0666
expect_eq "umask 077 create" "$(stat -c %a "$m/e/g")" 600
expect_eq "no ACL made" "$(acl get "$m/e/f" $ACC):$(acl get "$m/e" $DEF)" ENODATA:ENODATA
expect_eq "removing the default brings the umask back" \
	"$(py "import os; os.removexattr('$m/d', '$DEF')" && mkf "$m/d/h" 027 0666 && stat -c %a "$m/d/h")" 640

# ACLs survive a remount.
pfs_umount "$m" || not_ok "unmount"
pfs_mount "$img" "$m" -o allow_other || { not_ok "remount"; test_done; exit 1; }
expect_eq "ACL after remount" "$(acl get "$m/d/s" $DEF)" "u::rwx,u:$U:rwx,g::r-x,m::rwx,o::---"
expect_eq "enforced after remount" "$(as_user "$(wr d/f)")" OK
pfs_umount "$m" || not_ok "final unmount"
expect_eq "daemon exit status" "$UMOUNT_STATUS" 0
test_done
