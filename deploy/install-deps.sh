#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs metaprobe's build and test dependencies from Debian 12 packages.
# `install-deps.sh build` installs only what the build needs (the build
# stage of the container images); without an argument the test tools too.
# Idempotent: packages already present are not reinstalled and apt is not
# touched at all when everything is there.
set -euo pipefail

# What builds the binaries (also the build stage of deploy/docker/Dockerfile).
BUILD_PKGS=(
  build-essential cmake pkg-config ninja-build python3
  libcaf-dev dpdk-dev libpcap-dev libssl-dev
  libprotobuf-dev protobuf-compiler
  libzmq3-dev cppzmq-dev
  libspdlog-dev libfmt-dev doctest-dev libjemalloc-dev
  libedit-dev
)
# What the tests use besides (decoders, replay, manifest checks).
TEST_PKGS=(
  libfixbuf-tools tshark python3-prometheus-client clang
  procps iproute2 tcpreplay
  docker-compose python3-yaml
)

case "${1:-all}" in
  build) PKGS=("${BUILD_PKGS[@]}") ;;
  all) PKGS=("${BUILD_PKGS[@]}" "${TEST_PKGS[@]}") ;;
  *) echo "usage: $0 [build|all]" >&2; exit 2 ;;
esac

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
