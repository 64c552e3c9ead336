#!/bin/bash
# man/posfs.8 and man/mount.posfs.8 say what --help says: every option of
# `posfs -h`, `mount.posfs -h` and `umount.posfs -h` is in the manual with
# the same words.
# Needs no root and no FUSE.
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
: "${POSFS:=$top_builddir/fuse/posfs}"
[ -x "$POSFS" ] || skip "the daemon $POSFS is not built"
command -v python3 >/dev/null || skip "python3 is needed to compare the texts"
test_init

ln -s "$POSFS" "$T_DIR/mount.posfs"
ln -s "$POSFS" "$T_DIR/umount.posfs"
"$POSFS" -h > "$T_DIR/posfs.help"
expect_eq "posfs -h status" "$?" 0
"$T_DIR/mount.posfs" -h 2> "$T_DIR/helper.help"
expect_eq "mount.posfs -h status" "$?" 0
"$T_DIR/umount.posfs" -h > "$T_DIR/umount.help"
expect_eq "umount.posfs -h status" "$?" 0

check() {
	python3 - "$1" "$2" <<'EOF'
import re, sys
help_text, man = open(sys.argv[1]).read(), open(sys.argv[2]).read()

def norm(s):
    return re.sub(r'\s+', ' ', s).strip().rstrip('.').lower()

# help: "  -x   text" or "      name[=ARG]   text", continuation lines deeper
opts, cur = [], None
for line in help_text.splitlines():
    m = re.match(r'^ {2,6}(-\w(?: [A-Z]+)?|[\w, =]+?(?:=[A-Z]+)?)(?: {2,}(.*))?$', line)
    if m and not line.startswith(' ' * 10):
        cur = [m.group(1).split('=')[0].split(' ')[0].rstrip(','), m.group(2) or '']
        opts.append(cur)
    elif cur and line.startswith(' ' * 10):
        cur[1] += ' ' + line.strip()

# man: roff to text
text = re.sub(r'^\.(?:B|I|BI|BR|IR|RB)\s+', '', man, flags=re.M)
text = re.sub(r'^\.\S+.*$', '', text, flags=re.M)
text = text.replace('\\-', '-').replace('"', '')
flat = norm(text.replace('.\n', '\n'))
bad = 0
for name, desc in opts:
    if not desc:
        continue
    ok = name in text and norm(desc) in flat.replace('. ', ' ')
    print(('ok' if ok else 'MISSING'), name, '|', norm(desc))
    bad += not ok
sys.exit(1 if bad else 0)
EOF
}
run_status st check "$T_DIR/posfs.help" "$top_srcdir/man/posfs.8"
expect_eq "posfs.8 has every option of posfs -h" "$st" 0
[ "$st" = 0 ] || echo "$OUT"
expect_match "options compared" "$(echo "$OUT" | grep -c '^ok')" "^(1[5-9]|[2-9][0-9])$"
run_status st check "$T_DIR/helper.help" "$top_srcdir/man/mount.posfs.8"
expect_eq "mount.posfs.8 has every option of mount.posfs -h" "$st" 0
[ "$st" = 0 ] || echo "$OUT"
run_status st check "$T_DIR/umount.help" "$top_srcdir/man/mount.posfs.8"
expect_eq "mount.posfs.8 has every option of umount.posfs -h" "$st" 0
[ "$st" = 0 ] || echo "$OUT"
test_done
