#!/usr/bin/env bash
# Offline base image: debootstrap a minimal Debian bookworm rootfs from Debian's own archive
# (it ships Python 3.11) and `docker import` it as <tag>. No container registry is used.
# usage: bootstrap-debian.sh <tag> [mirror]
set -euo pipefail
tag=${1:?usage: bootstrap-debian.sh <tag> [mirror]}
mirror=${2:-http://deb.debian.org/debian}
packages=python3,python3-pip,python3-venv,strace,ca-certificates,procps

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

work=$(mktemp -d /var/tmp/sandbox-install-rootfs.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "bootstrap: debootstrap bookworm ($packages) from $mirror" >&2
debootstrap --variant=minbase --include="$packages" bookworm "$work/rootfs" "$mirror" >&2
# Trim what a sandbox never needs: apt lists, docs, man pages, caches.
rm -rf "$work/rootfs/var/lib/apt/lists/"* "$work/rootfs/var/cache/apt/"*.bin \
  "$work/rootfs/usr/share/doc" "$work/rootfs/usr/share/man" "$work/rootfs/usr/share/locale"
echo "bootstrap: docker import as $tag" >&2
tar -C "$work/rootfs" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["/bin/bash"]' - "$tag" >&2
echo "bootstrap: done" >&2
