#!/bin/bash
# man/posfs.5 is what man/gen-posfs5.py makes of include/posfs/format.h:
# the manual and the header have not drifted apart ('make man' refreshes it).
. "${top_srcdir:-$(dirname "$0")/..}/tests/lib.sh"
command -v python3 >/dev/null || skip "python3 is needed to generate the manual"
test_init
python3 "$top_srcdir/man/gen-posfs5.py" "$top_srcdir/include/posfs/format.h" \
	"$top_srcdir/man/posfs.5.in" > "$T_DIR/posfs.5"
expect_eq "generator status" "$?" 0
if diff -u "$top_srcdir/man/posfs.5" "$T_DIR/posfs.5"; then
	ok "man/posfs.5 matches format.h"
else
	not_ok "man/posfs.5 is stale: run 'make man'"
fi
test_done
