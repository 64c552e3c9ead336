#!/bin/bash
# fsck.posfs(8) lists every problem code fsck.posfs has and the options
# fsck.posfs -h lists (and no other), and the options and exit codes
# behave as the page says (usage 16, operational 8).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
: "${FSCK:=$top_builddir/fsck/fsck.posfs}"
test_init
page=$top_srcdir/man/fsck.posfs.8
codes=$("$FSCK" --list-problems | awk '{print $1" "$2}')
[ -n "$codes" ] && ok "--list-problems lists codes" || not_ok "--list-problems lists nothing"
while read -r code name; do
	grep -q "^\.B $code $name" "$page" && ok "man page: $code $name" ||
		not_ok "man page lacks $code $name (regenerate the table in man/fsck.posfs.8)"
done <<< "$codes"
n_page=$(grep -c '^\.B 0x0' "$page")
expect_eq "man page codes are exactly fsck's" "$n_page" "$(printf '%s\n' "$codes" | wc -l)"

# the options: -h's lines "  -x ..." and "  -x, -y ...", the page's tags
# (the line after .TP) in OPTIONS
opts_h=$("$FSCK" -h 2>&1 | sed -n 's/^  \(-[A-Za-z]\)\(, \(-[A-Za-z]\)\)\{0,1\} .*/\1 \3/p' |
	tr ' ' '\n' | grep . | sort -u | tr '\n' ' ')
opts_page=$(awk '/^\.SH OPTIONS/ { on = 1; next } /^\.SH / { on = 0 }
	on && prev == ".TP" { print } { prev = $0 }' "$page" |
	grep -oE '(^|[ "])\\-[A-Za-z]' | sed 's/.*\\//' | sort -u | tr '\n' ' ')
[ -n "$opts_h" ] && ok "-h lists options" || not_ok "-h lists no options"
expect_eq "man page options are exactly -h's" "$opts_page" "$opts_h"

run_status st "$FSCK" -q "$T_DIR/none"
expect_eq "unknown option: usage error" "$st" 16
run_status st "$FSCK" -n -y "$T_DIR/none"
expect_eq "-n with -y: usage error" "$st" 16
expect_match "-n with -y: message" "$OUT" "only one of"
run_status st "$FSCK" -fn "$T_DIR/none"
expect_eq "missing device: operational error" "$st" 8
expect_match "missing device: message" "$OUT" "cannot open"
head -c 1048576 /dev/zero > "$T_DIR/zero.img"
run_status st "$FSCK" -fn "$T_DIR/zero.img"
expect_eq "not a posfs: operational error" "$st" 8
run_status st "$FSCK" -f "$T_DIR/zero.img" < /dev/null
expect_eq "interactive without a terminal: usage error" "$st" 16
run_status st "$FSCK" -fy -E bogus=1 "$T_DIR/zero.img"
expect_eq "unknown extended option: usage error" "$st" 16
test_done
