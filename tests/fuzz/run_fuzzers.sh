#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Builds every fuzz target with clang + libFuzzer + ASan/UBSan and runs each
# for SECONDS, starting from its kept corpus. A crash fails the test; the
# crashing input is left in BUILD/crashes/ to be added to
# tests/fuzz/corpus/<name>/ as a regression once fixed.
# Usage: run_fuzzers.sh SOURCE_DIR BUILD_DIR SECONDS
set -euo pipefail
src=$1 build=$2 secs=${3:-15}
CC=clang CXX=clang++ cmake -S "$src" -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DMETAPROBE_FUZZ=ON -DMETAPROBE_SANITIZE=ON >"$build.configure.log" 2>&1 ||
  { cat "$build.configure.log"; exit 1; }
cmake --build "$build" --target fuzz_all -j"$(nproc)" >"$build.build.log" 2>&1 ||
  { tail -n 60 "$build.build.log"; exit 1; }
mkdir -p "$build/crashes"
status=0
for bin in "$build"/bin/fuzz_* "$build"/tests/fuzz/fuzz_*; do
  [ -x "$bin" ] || continue
  name=$(basename "$bin"); short=${name#fuzz_}
  work=$build/work/$short; mkdir -p "$work"
  seeds=$src/tests/fuzz/corpus/$short
  [ -d "$seeds" ] || seeds=
  echo "== $name ($secs s)"
  if ! "$bin" -max_total_time="$secs" -rss_limit_mb=2048 -timeout=10 \
       -artifact_prefix="$build/crashes/$short-" "$work" $seeds >"$build/$short.log" 2>&1; then
    echo "FAILED: $name"; tail -n 40 "$build/$short.log"; status=1
  else
    grep -E "^#[0-9]+.*(DONE|pulse)" "$build/$short.log" | tail -n 1 || true
  fi
done
exit $status
