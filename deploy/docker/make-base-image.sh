#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds the Debian 12 base image of deploy/docker/Dockerfile without any
# registry: debootstrap (minbase) into a temporary folder, then
# `docker import`. Root only (debootstrap). Idempotent: an image that
# already carries the tag is kept unless --force.
#
#   make-base-image.sh [--force] [--tag metaprobe/debian:bookworm]
#                      [--mirror http://deb.debian.org/debian]
# Environment: DOCKER (client command, default "docker"; e.g.
# "docker -H unix:///run/x.sock").
set -euo pipefail
tag=metaprobe/debian:bookworm
mirror=http://deb.debian.org/debian
force=0
while [ $# -gt 0 ]; do
  case "$1" in
    --force) force=1 ;;
    --tag) tag=$2; shift ;;
    --mirror) mirror=$2; shift ;;
    *) echo "usage: $0 [--force] [--tag TAG] [--mirror URL]" >&2; exit 2 ;;
  esac
  shift
done
read -r -a docker <<< "${DOCKER:-docker}"
if [ $force -eq 0 ] && "${docker[@]}" image inspect "$tag" >/dev/null 2>&1; then
  echo "make-base-image: $tag is there"
  exit 0
fi
command -v debootstrap >/dev/null || { echo "make-base-image: debootstrap is not installed" >&2; exit 1; }
root=$(mktemp -d /var/tmp/metaprobe-rootfs.XXXXXX)
chmod 755 "$root" # the image's / (mktemp makes it 0700: no other user could enter)
trap 'rm -rf "$root"' EXIT
echo "make-base-image: debootstrap bookworm from $mirror"
debootstrap --variant=minbase bookworm "$root" "$mirror" > "$root.log" 2>&1 || {
  tail -n 20 "$root.log" >&2; rm -f "$root.log"; exit 1; }
rm -f "$root.log"
# the same suites as a Debian 12 install: updates and security fixes too
rm -f "$root/etc/apt/sources.list"
cat > "$root/etc/apt/sources.list.d/debian.sources" <<SRC
Types: deb
URIs: $mirror
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${mirror%/debian}/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
# no package caches or logs in the image
rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* "$root"/var/log/*
tar -C "$root" -c . | "${docker[@]}" import \
  --change 'ENV LANG=C.UTF-8' --change 'CMD ["/bin/bash"]' - "$tag" >/dev/null
echo "make-base-image: built $tag"
