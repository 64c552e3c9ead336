#!/bin/bash
# The crash test's one-operation workloads with discards (crashtest -D -1):
# the discard option on, a trim of the whole device after every operation
# while its frees are not yet durable, discarded blocks rebuilt as garbage
# in every crash state. (crashtest -D runs the whole bounded set so.)
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
: "${CRASHTEST:=$top_builddir/tests/crash/crashtest}"
test_init
run_status st "$CRASHTEST" -D -1
printf '%s\n' "$OUT" | tail -n 3 | sed 's/^/# /'
expect_eq "crashtest -D -1" "$st" 0
test_done
