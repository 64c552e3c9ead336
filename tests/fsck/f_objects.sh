#!/bin/bash
# fsck: onode trees, extent maps, omaps, data checksum tables (problem codes
# 0x01xx).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fuse/common.sh"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fsck/common.sh"
fsck_init
populate

# dir3's files were made one after the other: a leaf of the onode tree
# holds only files of dir3, so the damage stays inside dir3
fsck_case "onode tree leaf" 0x0101 '^dir3/' radix-node "$(ino dir3/f15)"
fsck_case "block from the future" 0x0101 '^dir3/' lsn "$(ino dir3/f15)"
fsck_case "onode" 0x0102 '^dir3/f15$' onode "$(ino dir3/f15)"
fsck_case "onode tree count" 0x0103 '' radix-count "$(ino dir3/f15)"
fsck_case "extent tree" 0x0104 '^big$' extent-tree "$(ino big)"
fsck_case "extent outside" 0x0105 '^medium$' extent "$(ino medium)"
fsck_case "extent on blocks in use" 0x0105 '^medium2$' extent-dup "$(ino medium)" "$(ino medium2)"
# dir1's entries go: its files (and small's second link) land in lost+found
fsck_case "omap" 0x0106 '^dir1/' omap "$(ino dir1)"
fsck_case "block count" 0x0107 '' blocks "$(ino medium)"
fsck_case "inline xattrs" 0x0108 '' xattrs "$(ino dir1/f06)"
fsck_case "omap count" 0x0109 '' omap-count "$(ino dir1)"
# its entries are recomputed from the data: every file reads back
fsck_case "checksum table" 0x0110 '' csum-table 0
test_done
