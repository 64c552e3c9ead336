#!/bin/bash
# How requests reach the daemon: FUSE over io_uring where the kernel offers
# it (its enable_uring parameter), /dev/fuse otherwise or with -o nouring,
# the parameter turned on only when asked (-o uring=enable), each said in
# one log line and by posfs-scrub -t (POSFS_IOC_TRANSPORT). Over the ring:
# every opcode posfs answers is served there at least once (counted); a
# daemon killed mid-request leaves no caller hung (ENOTCONN, unmount works,
# fsynced data intact, fsck clean); a caller blocked on a stopped daemon is
# ended by SIGINT; -o poll. Bad values are refused (exit 2).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fuse/common.sh"
fuse_init
[ -x "$SCRUB" ] || skip "scrub/posfs-scrub is not built"
uring_lock

img=$T_DIR/img
m=$T_DIR/mnt
"$MKFS" -q -s 2 "$img" 512M || exit 99
log=$T_DIR/daemon.log

# gone PID TENTHS: "yes" once PID has ended (within TENTHS of a second), else "no".
gone() {
	local n
	for n in $(seq "$2"); do
		kill -0 "$1" 2>/dev/null || { echo yes; return; }
		sleep 0.1
	done
	echo no
}

# mount_log OPTS...: mount with a fresh log; the log in LOG after.
mount_log() {
	: > "$log"
	pfs_mount "$img" "$m" "$@" || { not_ok "mount $*"; cat "$log"; test_done; exit 1; }
	LOG=$(cat "$log")
}

# --- the kernel's parameter off -----------------------------------------------
uring_set 0
mount_log
expect_eq "parameter off: transport" "$(transport_of "$m")" dev
expect_match "parameter off: the log says how to turn it on" "$LOG" \
	"serving over /dev/fuse: FUSE over io_uring is off in the kernel \(echo 1 > $URING_PARAM"
expect_eq "parameter left off" "$(cat "$URING_PARAM")" N
pfs_umount "$m"

mount_log -o nouring
expect_eq "nouring, parameter off: transport" "$(transport_of "$m")" dev
expect_eq "nouring: no word of the ring" "$(echo "$LOG" | grep -c io_uring)" 0
pfs_umount "$m"

mount_log -o uring
expect_eq "-o uring, parameter off: falls back" "$(transport_of "$m")" dev
pfs_umount "$m"

mount_log -o uring=enable
expect_eq "uring=enable: parameter turned on" "$(cat "$URING_PARAM")" Y
expect_match "uring=enable: said in the log" "$LOG" "turned FUSE over io_uring on in the kernel"
expect_eq "uring=enable: transport" "$(transport_of "$m")" uring
pfs_umount "$m"

# --- the parameter on ------------------------------------------------------------
uring_set 1
mount_log -o nouring
expect_eq "nouring, parameter on: transport" "$(transport_of "$m")" dev
pfs_umount "$m"

mount_log -o entry_timeout=0,attr_timeout=0
expect_eq "default, parameter on: transport" "$(transport_of "$m")" uring
expect_match "the log line" "$LOG" "serving over FUSE io_uring: [0-9]+ queues of 4 entries"
first=$("$SCRUB" -t "$m" | head -n 1)
expect_match "posfs-scrub -t" "$first" "^transport: io_uring, $(nproc --all) queues of 4 entries, sleeping when idle$"

# Every opcode posfs answers, once at least (FORGET, BATCH_FORGET,
# INTERRUPT and INIT always come over /dev/fuse; FLUSH is answered ENOSYS
# once, and the kernel sends no more).
py "
import ctypes, os, sys
m = sys.argv[1]
libc = ctypes.CDLL(None, use_errno=True)
os.mkdir(m + '/d')
fd = os.open(m + '/d/f', os.O_CREAT | os.O_RDWR, 0o644)        # CREATE
os.write(fd, b'x' * 100000)                                      # WRITE
os.fsync(fd)                                                     # FSYNC
os.posix_fallocate(fd, 0, 1 << 20)                               # FALLOCATE
os.lseek(fd, 0, os.SEEK_DATA)                                    # LSEEK
g = os.open(m + '/d/g', os.O_CREAT | os.O_RDWR, 0o644)
os.copy_file_range(fd, g, 4096, 0, 0)                            # COPY_FILE_RANGE
os.close(g)
os.close(fd)                                                     # FLUSH, RELEASE
os.chmod(m + '/d/f', 0o600)                                      # SETATTR
os.stat(m + '/d/f')                                              # LOOKUP, GETATTR
os.setxattr(m + '/d/f', 'user.a', b'1')                          # SETXATTR
os.getxattr(m + '/d/f', 'user.a')                                # GETXATTR
os.listxattr(m + '/d/f')                                         # LISTXATTR
os.removexattr(m + '/d/f', 'user.a')                             # REMOVEXATTR
os.symlink('f', m + '/d/s')                                      # SYMLINK
os.readlink(m + '/d/s')                                          # READLINK
os.mknod(m + '/d/p', 0o644 | 0o010000)                           # MKNOD
os.link(m + '/d/f', m + '/d/h')                                  # LINK
os.rename(m + '/d/h', m + '/d/h2')                               # RENAME
if libc.renameat2(-100, (m + '/d/h2').encode(), -100, (m + '/d/h3').encode(), 1):
    sys.exit('renameat2: ' + os.strerror(ctypes.get_errno()))     # RENAME2
os.unlink(m + '/d/h3')                                           # UNLINK
os.mkdir(m + '/d/e'); os.rmdir(m + '/d/e')                       # MKDIR, RMDIR
os.listdir(m + '/d')                                             # OPENDIR, READDIR(PLUS), RELEASEDIR
dfd = os.open(m + '/d', os.O_RDONLY); os.fsync(dfd); os.close(dfd)  # FSYNCDIR
os.statvfs(m)                                                    # STATFS
os.close(os.open(m + '/d', os.O_TMPFILE | os.O_RDWR, 0o600))     # TMPFILE
if libc.statx(-100, (m + '/d/f').encode(), 0x2000, 0x800, ctypes.create_string_buffer(256)):
    sys.exit('statx: ' + os.strerror(ctypes.get_errno()))          # STATX
fd = os.open(m + '/d/f', os.O_RDONLY | os.O_DIRECT)
os.read(fd, 4096)                                                # READ
os.close(fd)
" "$m" || not_ok "the workload ran"
"$SCRUB" -t "$m" > "$T_DIR/transport"       # IOCTL
"$SCRUB" -t "$m" > "$T_DIR/transport"
served=0
for op in LOOKUP GETATTR SETATTR READLINK SYMLINK MKNOD MKDIR UNLINK RMDIR RENAME LINK \
	OPEN READ WRITE STATFS RELEASE FSYNC SETXATTR GETXATTR LISTXATTR REMOVEXATTR \
	OPENDIR RELEASEDIR FSYNCDIR CREATE IOCTL FALLOCATE READDIRPLUS RENAME2 LSEEK \
	COPY_FILE_RANGE TMPFILE STATX; do
	n=$(awk -v op="$op" '$1 == op { print $2 }' "$T_DIR/transport")
	if [ "${n:-0}" -gt 0 ]; then
		served=$((served + 1))
	else
		not_ok "$op served over io_uring (got ${n:-none})"
	fi
done
expect_eq "opcodes served over io_uring" "$served" 33
readdir=$(awk '$1 == "READDIR" { print $2 }' "$T_DIR/transport")
echo "# opcodes served over io_uring: $served (READDIR $readdir)"
dev=$(awk '$1 == "requests:" { print $5 }' "$T_DIR/transport")
ring=$(awk '$1 == "requests:" { print $2 }' "$T_DIR/transport")
[ "$ring" -gt "$dev" ] && ok "more requests over the ring ($ring) than /dev/fuse ($dev)" ||
	not_ok "requests over the ring $ring, over /dev/fuse $dev"
for op in LOOKUP GETATTR WRITE CREATE; do
	n=$(awk -v op="$op" '$1 == op { print $3 }' "$T_DIR/transport")
	expect_eq "$op never over /dev/fuse once the ring serves" "${n:-0}" 0
done

# SIGINT and a caller blocked on a stopped daemon. Over /dev/fuse the
# request is still in the kernel's queue, and SIGINT ends the caller at
# once; over the ring the kernel has handed it to the stopped thread's
# entry already, so the caller waits for the daemon (the kernel's rule for
# a request user space has taken), and ends as soon as the daemon runs.
# sigint_case NAME WHILE_STOPPED: WHILE_STOPPED is yes when the caller
# must end before SIGCONT.
sigint_case() {
	local name=$1 early=$2 reader st
	head -c 65536 /dev/urandom > "$T_DIR/blk"
	cp "$T_DIR/blk" "$m/blk.$name"
	sync
	kill -STOP "$PFS_PID"
	# (a background job starts with SIGINT ignored: the default again)
	python3 -c "import os, signal; signal.signal(signal.SIGINT, signal.SIG_DFL)
fd = os.open('$m/blk.$name', os.O_RDONLY | os.O_DIRECT); os.read(fd, 4096)" &
	reader=$!
	sleep 0.5
	kill -INT "$reader"
	expect_eq "$name: the caller ended by SIGINT while the daemon is stopped" \
		"$(gone "$reader" 30)" "$early"
	kill -CONT "$PFS_PID"
	expect_eq "$name: the caller has ended once the daemon runs" "$(gone "$reader" 50)" yes
	wait "$reader" 2>/dev/null
	st=$?
	expect_eq "$name: the caller died of SIGINT" "$st" 130
	expect_eq "$name: the daemon serves on" \
		"$(timeout 10 dd if="$m/blk.$name" iflag=direct bs=64k status=none | cmp - "$T_DIR/blk" && echo same)" same
}
sigint_case ring no
pfs_umount "$m"
mount_log -o nouring
sigint_case dev yes
pfs_umount "$m"
mount_log

# kill -9 mid-request: nobody hangs, ENOTCONN, unmount works, data intact.
py "
import os
fd = os.open('$m/kept', os.O_CREAT | os.O_WRONLY, 0o644)
os.write(fd, b'k' * 50000); os.fsync(fd); os.close(fd)
d = os.open('$m', os.O_RDONLY); os.fsync(d); os.close(d)"
dd if=/dev/zero of="$m/stream" bs=64k count=1000000 oflag=direct status=none 2>/dev/null &
writer=$!
sleep 1
kill -9 "$PFS_PID"
ended=$(gone "$writer" 100)
expect_eq "the writer returned after kill -9 of the daemon" "$ended" yes
[ "$ended" = yes ] || { grep State "/proc/$writer/status"; kill -9 "$writer"; }
wait "$writer" 2>/dev/null
hung=$(ps -eo stat=,comm= | awk '$1 ~ /^D/ && ($2 == "dd" || $2 == "python3")' | wc -l)
expect_eq "no caller in D state" "$hung" 0
err=$(stat "$m" 2>&1)
expect_match "stat of the dead mount" "$err" "Transport endpoint is not connected"
umount "$m" 2>/dev/null || umount -l "$m"
expect_eq "unmounted" "$(grep -c " $m fuse" /proc/mounts)" 0
wait "$PFS_PID" 2>/dev/null
mount_log
expect_eq "after kill -9: the fsynced file" "$(head -c 50000 "$m/kept" | tr -d k | wc -c)" 0
expect_eq "after kill -9: its size" "$(stat -c %s "$m/kept")" 50000
pfs_umount "$m"
expect_eq "after kill -9: clean unmount" "$UMOUNT_STATUS" 0
run_status st "$top_builddir/fsck/fsck.posfs" -fn "$img"
expect_eq "fsck -fn after kill -9 and remount" "$st" 0

# -o poll
mount_log -o poll=200
expect_match "poll=200" "$("$SCRUB" -t "$m" | head -n 1)" "polling 200 us before each sleep"
echo polled > "$m/p"
expect_eq "polled mount serves" "$(cat "$m/p")" polled
pfs_umount "$m"
mount_log -o poll
expect_match "poll" "$("$SCRUB" -t "$m" | head -n 1)" "polling 50 us before each sleep"
pfs_umount "$m"

# bad values
for o in uring=on uring=1 poll=x poll=2000000 nouring=1; do
	run_status st "$POSFS" -f -o "$o" "$img" "$m"
	expect_eq "-o $o refused" "$st" 2
	expect_match "-o $o message" "$OUT" "bad mount option '$o'"
done

test_done
