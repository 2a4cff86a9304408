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
  # promtool (`promtool check metrics`, integration.metrics_lint); the
  # package's prometheus server service is not wanted (SERVICE_OF)
  prometheus
  procps iproute2 tcpreplay
  docker-compose python3-yaml
  # tests/traffic: captures, re-encapsulation (Debian's /usr/bin/python3),
  # and the real servers and clients it runs inside network namespaces
  tcpdump python3-scapy curl wget openssl
  nginx-light unbound bind9-dnsutils knot-dnsutils sip-tester
  postfix swaks dovecot-pop3d dovecot-imapd fetchmail vsftpd lftp prosody sendxmpp
  ngtcp2-server ngtcp2-client
  # forward proxy scenarios: the proxy, a WebSocket server and client, and
  # ethtool (offloads off: a ClientHello split into segments on the veth)
  tinyproxy python3-websockets python3-websocket ethtool
)
# Server packages the traffic test starts itself, with generated configs,
# inside its namespaces, and prometheus, installed for its promtool: their
# system services are neither started by the installation nor enabled when
# this script installs them.
declare -A SERVICE_OF=([nginx-light]=nginx [unbound]=unbound [postfix]=postfix
                       [dovecot-pop3d]=dovecot [dovecot-imapd]=dovecot [vsftpd]=vsftpd [prosody]=prosody
                       [tinyproxy]=tinyproxy [prometheus]=prometheus)

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
# postfix asks for a mail configuration: none (smtp-sink is what the test uses)
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
new_services=()
for p in "${missing[@]}"; do
  if [ -n "${SERVICE_OF[$p]:-}" ]; then new_services+=("${SERVICE_OF[$p]}"); fi
done
policy_made=0
if [ ${#new_services[@]} -gt 0 ] && [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d   # invoke-rc.d: do not start services
  chmod 755 /usr/sbin/policy-rc.d
  policy_made=1
fi
trap 'if [ $policy_made -eq 1 ]; then rm -f /usr/sbin/policy-rc.d; fi' EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}"
if [ ${#new_services[@]} -gt 0 ] && command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
  for s in "${new_services[@]}"; do
    systemctl disable --now "$s" >/dev/null 2>&1 || true
  done
fi
