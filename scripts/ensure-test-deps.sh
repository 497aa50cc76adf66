#!/usr/bin/env bash
# What the test suites need from the machine beyond npm: Debian's setuptools and wheel wheels (the
# sdist fixtures' build requirements, served by each fixture index) and debootstrap (the offline
# image build). Installed with apt when missing; where that cannot be done (not root, not Debian)
# it says what to install and exits 3.
set -euo pipefail
missing=()
ls /usr/share/python-wheels/setuptools-*.whl >/dev/null 2>&1 || missing+=(python3-setuptools-whl)
ls /usr/share/python-wheels/wheel-*.whl >/dev/null 2>&1 || missing+=(python3-wheel-whl)
command -v debootstrap >/dev/null 2>&1 || missing+=(debootstrap)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-test-deps: missing ${missing[*]}; install them (Debian: sudo apt-get install ${missing[*]}) and run again" >&2
  exit 3
fi
echo "ensure-test-deps: apt-get install ${missing[*]}" >&2
# Package lists may be missing on a fresh machine: update once and retry.
DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2 \
  || { apt-get update -q >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >&2; }
