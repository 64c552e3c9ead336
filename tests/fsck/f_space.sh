#!/bin/bash
# fsck: free space, shared blobs, shard counters (problem codes 0x02xx).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fuse/common.sh"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fsck/common.sh"
fsck_init
# a clone: medium's blocks shared by two extents
clone() {
	py 'import os,sys
a = os.open(sys.argv[1], os.O_RDONLY); b = os.open(sys.argv[2], os.O_WRONLY | os.O_CREAT, 0o644)
n = os.copy_file_range(a, b, 65536, 0, 0)
assert n == 65536, n' "$M/medium" "$M/clone"
}
populate clone
shard=$(( $(ino medium) >> 48 ))

fsck_case "free-space tree" 0x0201 '' free-tree 0
fsck_case "leaked blocks" 0x0202 '' leak 0
fsck_case "free blocks in use" 0x0203 '' free-used 0
fsck_case "free block count" 0x0204 '' free-count 0
fsck_case "object count" 0x0205 '' onode-count 0
fsck_case "next object number" 0x0206 '' next-local 0
fsck_case "shared-blob count" 0x0207 '' refcount "$shard"
test_done
