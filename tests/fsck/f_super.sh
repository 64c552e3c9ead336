#!/bin/bash
# fsck: superblock pair and shard header slots (problem codes 0x00xx).
. "${top_srcdir:-$(dirname "$0")/../..}/tests/lib.sh"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fuse/common.sh"
. "${top_srcdir:-$(dirname "$0")/../..}/tests/fsck/common.sh"
fsck_init
populate

fsck_case "primary superblock" 0x0001 '' sb-primary
fsck_case "backup superblock" 0x0002 '' sb-backup
fsck_case "shard header slot A" 0x0003 '' slot 0 A
fsck_case "shard header slot B" 0x0003 '' slot 0 B
test_done
