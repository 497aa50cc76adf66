#!/usr/bin/env bash
# Offline base image: debootstrap a minimal Debian bookworm rootfs from Debian's own archive
# (it ships Python 3.11) into <dir>/rootfs. No container registry is used, and no engine: the tool
# imports the rootfs through its engine adapter (src/runtime/image.ts, importImage).
# usage: bootstrap-debian.sh <dir> [mirror]
set -euo pipefail
work=${1:?usage: bootstrap-debian.sh <dir> [mirror]}
mirror=${2:-http://deb.debian.org/debian}
# libfaketime: investigate --clock-skew runs the imports with the wall clock ahead (images/importer.py).
packages=python3,python3-pip,python3-venv,strace,ca-certificates,procps,libfaketime

if ! command -v debootstrap >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "bootstrap: installing debootstrap" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >&2 \
      || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >&2; }
  else
    echo "bootstrap: debootstrap is missing; install it (apt-get install debootstrap) and run as root" >&2
    exit 3
  fi
fi

echo "bootstrap: debootstrap bookworm ($packages) from $mirror" >&2
debootstrap --variant=minbase --include="$packages" bookworm "$work/rootfs" "$mirror" >&2
# Trim what a sandbox never needs: apt lists, docs, man pages, caches.
rm -rf "$work/rootfs/var/lib/apt/lists/"* "$work/rootfs/var/cache/apt/"*.bin \
  "$work/rootfs/usr/share/doc" "$work/rootfs/usr/share/man" "$work/rootfs/usr/share/locale"
echo "bootstrap: rootfs ready in $work/rootfs" >&2
