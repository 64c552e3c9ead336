#!/bin/bash
# posfs over a real mount, under load: a directory of 100,000 entries listed
# (os.scandir) while another process adds and removes other entries, every
# entry present throughout seen exactly once; 4 writers of 4 files and 4
# writers of disjoint ranges of one file (pwrite), every byte checked after
# the page cache is dropped; NFS-style handles (name_to_handle_at, dentry
# and inode caches dropped, open_by_handle_at finds the same file; ESTALE
# once it is unlinked; still valid after a remount); a tree of a few hundred
# files around 32 KiB (the small-write threshold) keeps its sha256 sums over
# unmount and mount. All of it on an image file, then on a loop device.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fuse/common.sh"
fuse_init
[ -w /proc/sys/vm/drop_caches ] ||
	skip "/proc/sys/vm/drop_caches is not writable (the handle checks drop the caches)"

m=$T_DIR/mnt
NENT=${STRESS_ENTRIES:-100000}

drop() { sync; echo "$1" > /proc/sys/vm/drop_caches; }

# ---- python helpers ---------------------------------------------------------
cat > "$T_DIR/mkents.py" <<'EOF'
# mkents.py DIR N: make DIR/e000000 .. e(N-1) (empty files), two processes.
import os, sys
d, n = sys.argv[1], int(sys.argv[2])
kids = []
for k in range(2):
    pid = os.fork()
    if pid == 0:
        for i in range(k, n, 2):
            os.mknod('%s/e%06d' % (d, i), 0o644)
        os._exit(0)
    kids.append(pid)
bad = sum(os.waitpid(p, 0)[1] != 0 for p in kids)
sys.exit(bad)
EOF

cat > "$T_DIR/listchurn.py" <<'EOF'
# listchurn.py DIR N ROUNDS: list DIR (os.scandir) ROUNDS times while a child
# adds and removes c-* entries. Prints, per round: the e-* entries seen, how
# many of them were duplicates, names that are neither e-* nor c-*, and the
# churn operations done meanwhile; then the churn total.
import mmap, os, sys, signal, struct
d, n, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
r, w = os.pipe()
ctr = mmap.mmap(-1, 8)	# the churn's operation count, shared
pid = os.fork()
if pid == 0:
    os.close(r)
    ops, live, i = 0, [], 0
    os.write(w, b'x')
    # Bounded: stops when killed, or after 2 million operations.
    while ops < 2000000:
        name = '%s/c-%d' % (d, i)
        os.close(os.open(name, os.O_CREAT | os.O_WRONLY, 0o644))
        live.append(name)
        i += 1
        ops += 1
        if len(live) > 50:
            os.unlink(live.pop(i % 7))
            ops += 1
        struct.pack_into('q', ctr, 0, ops)
    os._exit(0)
os.close(w)
os.read(r, 1)
def churned():
    return struct.unpack_from('q', ctr, 0)[0]
# Let the churn get going first (bounded: 30 s).
import time
t0 = time.monotonic()
while churned() < 100 and time.monotonic() - t0 < 30:
    time.sleep(0.01)
for k in range(rounds):
    before = churned()
    seen = set()
    dup = other = 0
    with os.scandir(d) as it:
        for e in it:
            nm = e.name
            if nm.startswith('e'):
                if nm in seen:
                    dup += 1
                seen.add(nm)
            elif not nm.startswith('c-'):
                other += 1
    want = all(('e%06d' % i) in seen for i in range(n))
    print('round %d: %d %d %d %s %d' % (k, len(seen), dup, other, want, churned() - before))
os.kill(pid, signal.SIGKILL)
os.waitpid(pid, 0)
print('churn total %d' % churned())
EOF

cat > "$T_DIR/writers.py" <<'EOF'
# writers.py DIR: 4 processes write DIR/w0..w3 (8 MiB each, pieces of
# varying size), then 4 processes pwrite disjoint stripes (4099 bytes, so
# they share blocks) of DIR/shared (16 MiB), in shuffled order. Prints the
# sha256 each file must have, as sha256sum -c wants them.
import hashlib, os, random, sys
d = sys.argv[1]
FSZ, SSZ, STRIPE = 8 << 20, 16 << 20, 4099
def run(fn, nproc):
    kids = []
    for k in range(nproc):
        pid = os.fork()
        if pid == 0:
            try:
                fn(k)
            except BaseException as e:
                print('child %d: %r' % (k, e), file=sys.stderr)
                os._exit(1)
            os._exit(0)
        kids.append(pid)
    return sum(os.waitpid(p, 0)[1] != 0 for p in kids)
def data(seed, size):
    return random.Random(seed).randbytes(size)
def files(k):
    buf = data(k, FSZ)
    rnd = random.Random(100 + k)
    fd = os.open('%s/w%d' % (d, k), os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
    off = 0
    while off < FSZ:
        n = min(rnd.choice([1, 511, 4096, 4097, 32768, 65536, 200000]), FSZ - off)
        off += os.write(fd, buf[off:off + n])
    os.close(fd)
shared = data(999, SSZ)
fd0 = os.open(d + '/shared', os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o644)
os.close(fd0)
def stripes(k):
    fd = os.open(d + '/shared', os.O_WRONLY)
    mine = list(range(k, (SSZ + STRIPE - 1) // STRIPE, 4))
    random.Random(k).shuffle(mine)
    for s in mine:
        off = s * STRIPE
        piece = shared[off:off + STRIPE]
        if os.pwrite(fd, piece, off) != len(piece):
            raise OSError('short pwrite')
    os.close(fd)
bad = run(files, 4) + run(stripes, 4)
for k in range(4):
    print('%s  %s/w%d' % (hashlib.sha256(data(k, FSZ)).hexdigest(), d, k))
print('%s  %s/shared' % (hashlib.sha256(shared).hexdigest(), d))
sys.exit(bad)
EOF

cat > "$T_DIR/handle.py" <<'EOF'
# handle.py save FILE PATH...: name_to_handle_at of each PATH, kept in FILE.
# handle.py open FILE MOUNT: open_by_handle_at of each kept handle; prints
# per handle: OK ino first-line (files) or OK ino entries (dirs), or the
# errno's name.
import ctypes, errno, os, pickle, sys
libc = ctypes.CDLL(None, use_errno=True)
class FH(ctypes.Structure):
    _fields_ = [('handle_bytes', ctypes.c_uint), ('handle_type', ctypes.c_int),
                ('f_handle', ctypes.c_ubyte * 128)]
def fail(what):
    e = ctypes.get_errno()
    raise OSError(e, '%s: %s' % (what, os.strerror(e)))
if sys.argv[1] == 'save':
    hs = []
    for p in sys.argv[3:]:
        fh, mid = FH(), ctypes.c_int()
        fh.handle_bytes = 128
        if libc.name_to_handle_at(-100, p.encode(), ctypes.byref(fh), ctypes.byref(mid), 0):
            fail('name_to_handle_at ' + p)
        hs.append(bytes(fh))
    pickle.dump(hs, open(sys.argv[2], 'wb'))
    sys.exit(0)
hs = pickle.load(open(sys.argv[2], 'rb'))
mfd = os.open(sys.argv[3], os.O_RDONLY | os.O_DIRECTORY)
out = []
for h in hs:
    fh = FH.from_buffer_copy(h)
    fd = libc.open_by_handle_at(mfd, ctypes.byref(fh), os.O_RDONLY)
    if fd < 0:
        out.append(errno.errorcode.get(ctypes.get_errno(), '?'))
        continue
    st = os.fstat(fd)
    if os.path.stat.S_ISDIR(st.st_mode):
        what = ','.join(sorted(os.listdir(fd)))
    else:
        what = os.read(fd, 100).decode().strip()
    os.close(fd)
    out.append('OK %d %s' % (st.st_ino, what))
print(' | '.join(out))
EOF

cat > "$T_DIR/tree.py" <<'EOF'
# tree.py DIR N: N files over 10 directories, sizes around 32 KiB.
import os, random, sys
d, n = sys.argv[1], int(sys.argv[2])
rnd = random.Random(7)
special = [0, 1, 4095, 4096, 32767, 32768, 32769, 36864, 65535, 65536]
for i in range(n):
    sub = '%s/d%d' % (d, i % 10)
    os.makedirs(sub, exist_ok=True)
    size = special[i] if i < len(special) else 32768 + rnd.randint(-8192, 8192)
    with open('%s/f%04d' % (sub, i), 'wb') as f:
        f.write(rnd.randbytes(size))
    if i % 50 == 0:
        os.symlink('f%04d' % i, '%s/l%04d' % (sub, i))
EOF

meta() { (cd "$1" && find . -printf '%p %y %m %s %n %T@\n' | sort) | sha256sum; }

# run TAG DEVICE: every check on a fresh posfs on DEVICE.
run() {
	local tag=$1 dev=$2 out t0 inos before metab hfile=$T_DIR/handles.$1

	"$MKFS" -q -f -s 2 "$dev" || { not_ok "$tag: mkfs"; return; }
	pfs_mount "$dev" "$m" || { not_ok "$tag: mount"; return; }
	ok "$tag: mounted"

	# 100,000 entries, listed while others come and go.
	mkdir "$m/big"
	t0=$SECONDS
	timeout 300 python3 "$T_DIR/mkents.py" "$m/big" "$NENT"
	expect_eq "$tag: made $NENT entries" "$?" 0
	echo "# $tag: $NENT entries made in $((SECONDS - t0)) s"
	t0=$SECONDS
	out=$(timeout 300 python3 "$T_DIR/listchurn.py" "$m/big" "$NENT" 3 2>&1)
	echo "# $tag: 3 listings under churn in $((SECONDS - t0)) s"
	echo "$out" | sed 's/^/# /'
	for k in 0 1 2; do
		expect_match "$tag: listing $k under churn (seen dup other all)" \
			"$(echo "$out" | grep "^round $k:")" "^round $k: $NENT 0 0 True [0-9]+$"
	done
	expect_match "$tag: the churn ran" "$(echo "$out" | tail -n 1)" "^churn total [1-9]"
	expect_eq "$tag: ls -f after the churn" "$(ls -f "$m/big" | grep -c '^e')" "$NENT"
	expect_eq "$tag: every entry resolves" "$(py "import os
print(sum(os.path.exists('$m/big/e%06d' % i) for i in range(0, $NENT, 97)))")" \
		"$(( (NENT + 96) / 97 ))"

	# Concurrent writers.
	mkdir "$m/w"
	t0=$SECONDS
	timeout 300 python3 "$T_DIR/writers.py" "$m/w" > "$T_DIR/sums.$tag"
	expect_eq "$tag: 8 writers" "$?" 0
	echo "# $tag: writers in $((SECONDS - t0)) s"
	drop 3
	run_status st sha256sum -c --quiet "$T_DIR/sums.$tag"
	expect_eq "$tag: every byte of the writers' files" "$st:$OUT" 0:
	expect_eq "$tag: sizes" "$(stat -c %s "$m/w/w0" "$m/w/w3" "$m/w/shared" | tr '\n' ' ')" \
		"8388608 8388608 16777216 "

	# Export handles.
	mkdir -p "$m/h/dir" "$m/h/rmdir"
	echo handle-file > "$m/h/file"
	echo doomed > "$m/h/gone"
	touch "$m/h/dir/a" "$m/h/dir/b"
	inos="$(stat -c %i "$m/h/file") $(stat -c %i "$m/h/dir") $(stat -c %i "$m/h/gone") $(stat -c %i "$m/h/rmdir")"
	set -- $inos
	run_status st python3 "$T_DIR/handle.py" save "$hfile" "$m/h/file" "$m/h/dir" "$m/h/gone" "$m/h/rmdir"
	expect_eq "$tag: name_to_handle_at" "$st:$OUT" 0:
	drop 2
	expect_eq "$tag: open_by_handle_at after drop_caches" \
		"$(python3 "$T_DIR/handle.py" open "$hfile" "$m" 2>&1)" \
		"OK $1 handle-file | OK $2 a,b | OK $3 doomed | OK $4 "
	rm "$m/h/gone"
	rmdir "$m/h/rmdir"
	drop 2
	expect_eq "$tag: handles of an unlinked file and a removed directory" \
		"$(python3 "$T_DIR/handle.py" open "$hfile" "$m" 2>&1)" \
		"OK $1 handle-file | OK $2 a,b | ESTALE | ESTALE"
	# Unlinked while open through its handle: ESTALE once closed.
	echo held > "$m/h/held"
	python3 "$T_DIR/handle.py" save "$hfile.held" "$m/h/held"
	exec 8<"$m/h/held"
	rm "$m/h/held"
	expect_eq "$tag: a handle of an unlinked file held open" \
		"$(python3 "$T_DIR/handle.py" open "$hfile.held" "$m" 2>&1 | sed 's/^OK [0-9]* /OK /')" \
		"OK held"
	exec 8<&-
	drop 2
	expect_eq "$tag: the same handle once closed" \
		"$(python3 "$T_DIR/handle.py" open "$hfile.held" "$m" 2>&1)" ESTALE

	# A tree around 32 KiB.
	t0=$SECONDS
	timeout 300 python3 "$T_DIR/tree.py" "$m/t" 300
	(cd "$m/t" && find . -type f -print0 | sort -z | xargs -0 sha256sum) > "$T_DIR/tree.$tag"
	expect_eq "$tag: tree files" "$(wc -l < "$T_DIR/tree.$tag")" 300
	before=$(meta "$m/t")
	metab=$(meta "$m/w")
	pfs_umount "$m"
	expect_eq "$tag: clean unmount" "$UMOUNT_STATUS" 0
	pfs_mount "$dev" "$m" || { not_ok "$tag: remount"; return; }
	run_status st sh -c "cd '$m/t' && sha256sum -c --quiet '$T_DIR/tree.$tag'"
	expect_eq "$tag: tree sha256 after remount" "$st:$OUT" 0:
	expect_eq "$tag: tree metadata after remount" "$(meta "$m/t")" "$before"
	run_status st sha256sum -c --quiet "$T_DIR/sums.$tag"
	expect_eq "$tag: writers' files after remount" "$st:$OUT" 0:
	expect_eq "$tag: their metadata" "$(meta "$m/w")" "$metab"
	expect_eq "$tag: the big directory after remount" "$(ls -f "$m/big" | grep -c '^e')" "$NENT"
	expect_eq "$tag: handles after remount" \
		"$(python3 "$T_DIR/handle.py" open "$hfile" "$m" 2>&1)" \
		"OK $1 handle-file | OK $2 a,b | ESTALE | ESTALE"
	echo "# $tag: tree and remount in $((SECONDS - t0)) s"
	pfs_umount "$m"
	expect_eq "$tag: clean unmount after the remount" "$UMOUNT_STATUS" 0
	if [ -x "${FSCK:-}" ]; then
		run_status st "$FSCK" -fn "$dev"
		expect_eq "$tag: fsck finds nothing after the stress" "$st" 0
		[ "$st" = 0 ] || printf '%s\n' "$OUT" | sed 's/^/# /' | head -20
	fi
}

img=$T_DIR/img
truncate -s 1G "$img"
run image "$img"

img2=$T_DIR/img2
truncate -s 1G "$img2"
if loop_attach "$img2"; then
	run loop "$LOOP"
else
	not_ok "losetup of $img2"
fi
test_done
