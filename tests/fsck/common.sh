# Helpers for the fsck tests, in the manner of e2fsprogs' f_ tests
# (sourced after tests/lib.sh and tests/fuse/common.sh; not a test). A base
# image is populated once through a real mount; each case copies it,
# damages exactly one structure (tests/pfs-damage), and runs:
#   fsck -fn   finds the problem code, exits 4, leaves the image unchanged
#   fsck -fy   exits 1
#   fsck -fn   exits 0
# then mounts the result and checks every file the damage did not touch.
: "${FSCK:=$top_builddir/fsck/fsck.posfs}"
: "${DAMAGE:=$top_builddir/tests/pfs-damage}"

fsck_init() {
	fuse_init
	[ -x "$FSCK" ] || skip "$FSCK is not built"
	BASE=$T_DIR/base.img
	M=$T_DIR/mnt
}

# ino PATH (relative to the mount of the base image, read at populate)
ino() {
	sed -n "s|^$1 ||p" "$T_DIR/inos"
}

# populate [EXTRA_FUNCTION]: make the base image and its manifest.
populate() {
	"$MKFS" -q "$BASE" 64M || exit 99
	pfs_mount "$BASE" "$M" || exit 99
	echo small > "$M/small"
	echo small2 > "$M/small2"
	head -c 65536 /dev/urandom > "$M/medium"
	head -c 40000 /dev/urandom > "$M/medium2"
	# every other block: more extents than the onode holds -> an extent tree
	py 'import os,sys
fd = os.open(sys.argv[1], os.O_WRONLY | os.O_CREAT, 0o644)
for i in range(40):
    os.pwrite(fd, os.urandom(4096), i * 8192)
os.close(fd)' "$M/big" || exit 99
	mkdir -p "$M/dir1" "$M/dir2/sub" "$M/dir3"
	for i in $(seq -w 0 19); do echo "file $i" > "$M/dir1/f$i"; done
	for i in $(seq -w 0 29); do echo "three $i" > "$M/dir3/f$i"; done
	echo deep > "$M/dir2/sub/deep"
	ln "$M/small" "$M/dir1/hardlink"
	ln -s small "$M/symlink"
	py 'import os,sys; os.setxattr(sys.argv[1], "user.big", b"x" * 2000)' "$M/small" || exit 99
	[ $# -gt 0 ] && "$@"
	(cd "$M" && find . -type f -print0 | sort -z | xargs -0 sha256sum) > "$T_DIR/manifest"
	(cd "$M" && find . -mindepth 1 -printf '%P %i\n') > "$T_DIR/inos"
	pfs_umount "$M" || exit 99
}

# verify IMG EXCLUDE_REGEX: mount IMG; every manifest file not matching
# EXCLUDE_REGEX ('' for none) has its content.
verify() {
	local img=$1 ex=$2 bad=0 sum path
	if ! pfs_mount "$img" "$M"; then
		not_ok "$CASE: the repaired image mounts"
		return
	fi
	while read -r sum path; do
		path=${path#./}
		[ -n "$ex" ] && printf '%s' "$path" | grep -Eq -- "$ex" && continue
		if [ "$(sha256sum < "$M/$path" 2>/dev/null | cut -d' ' -f1)" != "$sum" ]; then
			echo "# $CASE: $path differs or is missing"
			bad=1
		fi
	done < "$T_DIR/manifest"
	[ $bad = 0 ] && ok "$CASE: every file the damage did not touch is intact" ||
		not_ok "$CASE: files the damage did not touch were lost"
	pfs_umount "$M"
}

# fsck_case NAME CODE EXCLUDE_REGEX DAMAGE_ARGS...
fsck_case() {
	local img=$T_DIR/case.img st
	CASE=$1
	local code=$2 ex=$3
	shift 3
	cp "$BASE" "$img" || exit 99
	if ! "$DAMAGE" "$img" "$@"; then
		not_ok "$CASE: damage $*"
		return
	fi
	cp "$img" "$img.before"
	run_status st "$FSCK" -fn "$img"
	expect_eq "$CASE: fsck -n exit" "$st" 4
	expect_match "$CASE: fsck -n reports" "$OUT" "problem $code"
	[ "$st" = 4 ] || printf '%s\n' "$OUT" | sed 's/^/# /'
	cmp -s "$img" "$img.before" && ok "$CASE: fsck -n left the image as it was" ||
		not_ok "$CASE: fsck -n changed the image"
	run_status st "$FSCK" -fy "$img"
	expect_eq "$CASE: fsck -y exit" "$st" 1
	[ "$st" = 1 ] || printf '%s\n' "$OUT" | sed 's/^/# /'
	run_status st "$FSCK" -fn "$img"
	expect_eq "$CASE: fsck -n after repair exit" "$st" 0
	[ "$st" = 0 ] || printf '%s\n' "$OUT" | sed 's/^/# /'
	verify "$img" "$ex"
	rm -f "$img" "$img.before"
}
