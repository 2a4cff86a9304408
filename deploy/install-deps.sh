#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs metaprobe's build and test dependencies from Debian 12 packages.
# Idempotent: packages already present are not reinstalled and apt is not
# touched at all when everything is there.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config ninja-build
  libcaf-dev dpdk-dev libpcap-dev libssl-dev
  libprotobuf-dev protobuf-compiler
  libzmq3-dev cppzmq-dev
  libspdlog-dev libfmt-dev doctest-dev libjemalloc-dev
  libfixbuf-tools tshark python3 clang
  procps iproute2 tcpreplay
)

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
  echo "install-deps: missing packages: ${missing[*]}" >&2
  echo "install-deps: run as root (or: sudo $0)" >&2
  exit 1
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# tshark asks whether non-root users may capture; answer no without a prompt
echo "wireshark-common wireshark-common/install-setuid boolean false" | debconf-set-selections
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
