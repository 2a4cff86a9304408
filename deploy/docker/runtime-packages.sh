#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Prints the Debian packages that hold the shared libraries the given
# binaries load (ldd), one per line, sorted: the runtime image installs
# exactly these. A library that no package owns (built here, or missing)
# is an error, so a slim image never lacks one silently.
set -euo pipefail
[ $# -gt 0 ] || { echo "usage: $0 BINARY..." >&2; exit 2; }
owner() {
  # dpkg knows a file by the path its package installed; with merged /usr
  # ldd may report /lib/... for a file installed as /usr/lib/... (or back)
  local p=$1 cand
  for cand in "$p" "/usr$p" "${p#/usr}" "$(readlink -f "$p")" "/usr$(readlink -f "$p")"; do
    dpkg-query -S "$cand" 2>/dev/null | head -n1 | cut -d: -f1 && return 0
  done
  return 1
}
status=0
for bin in "$@"; do
  if ldd "$bin" | grep -q 'not found'; then
    echo "runtime-packages: $bin: $(ldd "$bin" | grep 'not found' | tr -s ' \t' ' ')" >&2
    status=1
  fi
  while read -r lib; do
    owner "$lib" || { echo "runtime-packages: no package owns $lib ($bin)" >&2; status=1; }
  done < <(ldd "$bin" | awk '$2 == "=>" && $3 ~ /^\// {print $3} $1 ~ /^\// {print $1}')
done | sort -u
exit $status
