#!/bin/bash
# fsck: the corruption sweep. For many seeds, random bytes in one random
# metadata block (a tree node or a shard header; half of the time with the
# checksum sealed again, so that only fields are wrong): fsck -y never
# crashes, needs at most two runs to converge (a third finds nothing), and
# the result mounts and can be listed and read. Run it in a build
# configured with --enable-sanitizers to have AddressSanitizer watch
# (.ci/run does). FSCK_SEED0 and FSCK_SEEDS set the range of seeds (1 to 40).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fuse/common.sh"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fsck/common.sh"
fsck_init
populate
img=$T_DIR/r.img
for seed in $(seq "${FSCK_SEED0:-1}" "${FSCK_SEEDS:-40}"); do
	cp "$BASE" "$img" || exit 99
	what=$("$DAMAGE" "$img" random "$seed") || { not_ok "seed $seed: damage"; continue; }
	run_status st1 "$FSCK" -fy "$img"
	run_status st2 "$FSCK" -fy "$img"
	out2=$OUT
	run_status st3 "$FSCK" -fn "$img"
	# 0 clean, 1 repaired; 8 only for damage that cannot be repaired (a
	# shard header's both slots: one block cannot do that)
	if [ "$st1" -le 1 ] && [ "$st2" -le 1 ] && [ "$st3" = 0 ]; then
		ok "seed $seed ($what): fsck -y converged (exits $st1 $st2 $st3)"
	else
		not_ok "seed $seed ($what): exits $st1 $st2 $st3"
		printf '%s\n' "$out2" "$OUT" | sed 's/^/# /' | head -40
		continue
	fi
	# (a size field changed and sealed is a valid, if huge, sparse file:
	# its first MiB is read)
	if pfs_mount "$img" "$M" &&
	   (cd "$M" && find . -type f -exec head -c 1048576 {} + > /dev/null) &&
	   pfs_umount "$M"; then
		ok "seed $seed: the result mounts and reads"
	else
		not_ok "seed $seed: the result does not mount or read"
		grep -qs " $M " /proc/mounts && pfs_umount "$M"
	fi
done
test_done
