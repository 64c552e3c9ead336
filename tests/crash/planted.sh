#!/bin/bash
# The crash test can fail: in a build with --enable-planted-bugs, each bug
# of src/plant.h turned on (POSFS_PLANT) makes it report a failure (that
# it passes with none is tests/crash/crashtest itself). Skipped in a build
# without them; .ci/run makes one.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
: "${CRASHTEST:=$top_builddir/tests/crash/crashtest}"
"$CRASHTEST" -P > /dev/null || skip "built without --enable-planted-bugs"
for bug in skip-flush record-before-data fsyncdir-noop; do
	run_status st env POSFS_PLANT=$bug "$CRASHTEST" -1 -x
	expect_eq "planted $bug: the crash test fails" "$st" 1
	printf '%s\n' "$OUT" | tail -n 2 | sed 's/^/# /'
done
test_done
