#!/bin/bash
# The crash test's bounded set again with compression on (crashtest -z):
# compressed extents, and writes into them that write them again, cut at
# every flush like the rest.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
: "${CRASHTEST:=$top_builddir/tests/crash/crashtest}"
test_init
run_status st "$CRASHTEST" -z
printf '%s\n' "$OUT" | tail -n 3 | sed 's/^/# /'
expect_eq "crashtest -z" "$st" 0
test_done
