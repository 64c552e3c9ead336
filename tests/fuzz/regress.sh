#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# Replay every input kept for each fuzz target (tests/fuzz/regress/<target>/,
# images gzip'ed) and the seeds mkcorpus makes, through the targets built
# without libFuzzer: an input that once crashed must run clean now.
set -u
fuzz=$top_builddir/tests/fuzz
kept=$top_srcdir/tests/fuzz/regress
tmp=`mktemp -d "${TMPDIR:-/tmp}/pfs-regress.XXXXXX"` || exit 99
trap 'rm -rf "$tmp"' EXIT

"$fuzz/mkcorpus" "$tmp/seeds" || { echo "mkcorpus failed"; exit 1; }
for t in decode image fsck walk; do
	mkdir -p "$tmp/kept/$t"
	if [ -d "$kept/$t" ]; then
		for f in "$kept/$t"/*; do
			[ -f "$f" ] || continue
			case $f in
			*.gz) gzip -dc "$f" > "$tmp/kept/$t/`basename "$f" .gz`" || exit 99 ;;
			*) cp "$f" "$tmp/kept/$t/" || exit 99 ;;
			esac
		done
	fi
	echo "$t:"
	"$fuzz/replay-$t" "$tmp/kept/$t" "$tmp/seeds/$t" || { echo "$t: FAIL"; exit 1; }
done
exit 0
