#!/bin/bash
# posfs over a real mount: files, directories and their error codes, hard
# links, rename (across directories, over an existing name, NOREPLACE,
# EXCHANGE through renameat2), symlinks, special files, chmod/chown/utimes,
# xattrs, statfs, /proc/mounts, an unlinked file kept while open.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fuse/common.sh"
fuse_init

img=$T_DIR/img
m=$T_DIR/mnt
"$MKFS" -q -s 2 "$img" 256M || exit 99
pfs_mount "$img" "$m" || { not_ok "mount"; test_done; exit 1; }
ok "mounted"

expect_match "/proc/mounts" "$(grep " $m " /proc/mounts)" "^$img $m fuse\.posfs .*default_permissions"
expect_match "df" "$(df -P "$m" | tail -n 1)" "^$img +[0-9]+ "

# errno of a python snippet as a name ("OK" when it worked)
err() {
	py "import os, sys, errno
try:
    $1
    print('OK')
except OSError as e:
    print(errno.errorcode[e.errno])" 2>&1
}

# Files and directories.
echo hello > "$m/f"
expect_eq "read back" "$(cat "$m/f")" hello
mkdir "$m/d"
expect_eq "mkdir over file" "$(err "os.mkdir('$m/f')")" EEXIST
expect_eq "create O_EXCL over file" "$(err "os.open('$m/f', os.O_CREAT|os.O_EXCL|os.O_WRONLY)")" EEXIST
expect_eq "open missing" "$(err "os.open('$m/nope', os.O_RDONLY)")" ENOENT
expect_eq "open dir for write" "$(err "os.open('$m/d', os.O_WRONLY)")" EISDIR
expect_eq "unlink dir" "$(err "os.unlink('$m/d')")" EISDIR
expect_eq "rmdir file" "$(err "os.rmdir('$m/f')")" ENOTDIR
expect_eq "file as dir" "$(err "os.stat('$m/f/x')")" ENOTDIR
touch "$m/d/x"
expect_eq "rmdir non-empty" "$(err "os.rmdir('$m/d')")" ENOTEMPTY
n255=$(printf 'a%.0s' $(seq 255))
n256=${n255}a
expect_eq "255-byte name" "$(err "open('$m/$n255', 'w').close()")" OK
expect_eq "256-byte name" "$(err "open('$m/$n256', 'w').close()")" ENAMETOOLONG
rm "$m/$n255"
expect_eq "rmdir emptied" "$(rm "$m/d/x" && rmdir "$m/d" && echo OK)" OK
mkdir -p "$m/a/b/c"
expect_eq "nlink of a dir with one subdir" "$(stat -c %h "$m/a")" 3
expect_eq "mkdir -p" "$(stat -c %F "$m/a/b/c")" directory

# Hard links.
ln "$m/f" "$m/a/f2"
expect_eq "nlink after link" "$(stat -c %h "$m/f")" 2
expect_eq "same inode" "$(stat -c %i "$m/a/f2")" "$(stat -c %i "$m/f")"
expect_eq "link to dir" "$(err "os.link('$m/a', '$m/a2')")" EPERM
rm "$m/f"
expect_eq "nlink after unlink" "$(stat -c %h "$m/a/f2")" 1
expect_eq "content through link" "$(cat "$m/a/f2")" hello

# Rename.
echo one > "$m/r1"; echo two > "$m/r2"
mv "$m/r1" "$m/a/b/r1"
expect_eq "rename across dirs" "$(cat "$m/a/b/r1")" one
mv -f "$m/r2" "$m/a/b/r1"
expect_eq "rename over existing" "$(cat "$m/a/b/r1"):$([ -e "$m/r2" ] && echo still)" two:
echo x > "$m/e1"; echo y > "$m/e2"
rn2() {
	py "import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
r = libc.renameat2(-100, sys.argv[1].encode(), -100, sys.argv[2].encode(), int(sys.argv[3]))
print('OK' if r == 0 else __import__('errno').errorcode[ctypes.get_errno()])" "$@"
}
expect_eq "RENAME_NOREPLACE onto existing" "$(rn2 "$m/e1" "$m/e2" 1)" EEXIST
expect_eq "RENAME_EXCHANGE" "$(rn2 "$m/e1" "$m/e2" 2):$(cat "$m/e1")$(cat "$m/e2")" OK:yx
expect_eq "RENAME_NOREPLACE to new" "$(rn2 "$m/e1" "$m/e3" 1):$(cat "$m/e3")" OK:y
mkdir "$m/full"; touch "$m/full/x"; mkdir "$m/empty"
expect_eq "rename dir over non-empty dir" "$(err "os.rename('$m/empty', '$m/full')")" ENOTEMPTY
expect_eq "rename dir into itself" "$(err "os.rename('$m/a', '$m/a/b/z')")" EINVAL
expect_eq "rename file over dir" "$(err "os.rename('$m/e2', '$m/empty')")" EISDIR

# Symlinks and special files.
ln -s a/b/r1 "$m/sl"
expect_eq "readlink" "$(readlink "$m/sl")" a/b/r1
expect_eq "follow" "$(cat "$m/sl")" two
long=$(printf 'x%.0s' $(seq 4095))
expect_eq "4095-byte target" "$(err "os.symlink('$long', '$m/sl2'); print(len(os.readlink('$m/sl2')), end=' ')")" "4095 OK"
mkfifo "$m/fifo"
expect_eq "fifo" "$(stat -c %F "$m/fifo")" fifo
expect_eq "socket" "$(err "os.mknod('$m/sock', 0o600 | __import__('stat').S_IFSOCK)")" OK
mknod "$m/chr" c 1 3; mknod "$m/blk" b 7 0
expect_eq "char device" "$(stat -c '%F %t,%T' "$m/chr")" "character special file 1,3"
expect_eq "block device" "$(stat -c '%F %t,%T' "$m/blk")" "block special file 7,0"
expect_eq "device node opens (root's mount: dev, mount(8)'s default)" "$(err "os.close(os.open('$m/chr', os.O_RDONLY))")" OK

# Attributes.
chmod 640 "$m/e3"
expect_eq "chmod" "$(stat -c %a "$m/e3")" 640
chown 1234:5678 "$m/e3"
expect_eq "chown" "$(stat -c %u:%g "$m/e3")" 1234:5678
touch -d '2001-02-03 04:05:06.789' "$m/e3"
expect_eq "utimens" "$(stat -c %y "$m/e3")" "2001-02-03 04:05:06.789000000 $(date -d '2001-02-03' +%z)"
touch -m "$m/e3"
expect_match "UTIME_NOW mtime" "$(stat -c %Y "$m/e3")" "^$(date +%s | cut -c1-8)"
expect_eq "UTIME_OMIT atime kept" "$(stat -c %X "$m/e3")" "$(date -d '2001-02-03 04:05:06' +%s)"
truncate -s 10000 "$m/e3"
expect_eq "truncate up" "$(stat -c %s "$m/e3")" 10000
su nobody -s /bin/sh -c "cat '$m/e3'" >/dev/null 2>&1
expect_eq "kernel checks modes (default_permissions)" "$?" 1

# xattrs.
expect_eq "setxattr" "$(err "os.setxattr('$m/e3', 'user.k', b'v1')")" OK
expect_eq "getxattr" "$(py "import os; print(os.getxattr('$m/e3', 'user.k').decode())")" v1
expect_eq "XATTR_CREATE on existing" "$(err "os.setxattr('$m/e3', 'user.k', b'v', os.XATTR_CREATE)")" EEXIST
expect_eq "XATTR_REPLACE on missing" "$(err "os.setxattr('$m/e3', 'user.n', b'v', os.XATTR_REPLACE)")" ENODATA
expect_eq "listxattr" "$(py "import os; print(os.listxattr('$m/e3'))")" "['user.k']"
expect_eq "removexattr" "$(err "os.removexattr('$m/e3', 'user.k'); os.removexattr('$m/e3', 'user.k')")" ENODATA

# An unlinked file lives while open.
expect_eq "unlinked but open" "$(py "import os
fd = os.open('$m/tmpf', os.O_CREAT|os.O_RDWR, 0o600)
os.write(fd, b'still here')
os.unlink('$m/tmpf')
print(os.pread(fd, 100, 0).decode(), os.fstat(fd).st_nlink, os.path.exists('$m/tmpf'))")" "still here 0 False"

# readdir of a big directory (several readdirplus rounds), then ls -l.
mkdir "$m/big"
(cd "$m/big" && seq 1 600 | xargs touch)
expect_eq "readdir count" "$(ls "$m/big" | wc -l)" 600
expect_eq "ls -l count" "$(ls -l "$m/big" | grep -c '^-')" 600
rm -r "$m/big"
expect_eq "rm -r" "$([ -e "$m/big" ] || echo gone)" gone

pfs_umount "$m"
expect_eq "daemon exit status" "$UMOUNT_STATUS" 0
test_done
