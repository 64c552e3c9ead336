#!/bin/sh
# Install what posfs needs to build and test on Debian 12 (run as root).
# Safe to run again: it installs only what is missing.
set -e
PKGS="build-essential autoconf automake pkg-config python3
	libfuse3-dev fuse3 liburing-dev libnvme-dev libjson-c-dev liblmdb-dev
	check libzstd-dev libmount-dev
	util-linux e2fsprogs xfsprogs btrfs-progs"
missing=
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "setup-debian.sh: run as root to install:$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
echo "setup-debian.sh: installed$missing"
