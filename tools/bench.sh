#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# make bench: benchmark figures for docs/benchmarks.md (not a test).
#   tools/bench.sh [BUILD_DIR]     default: build
# Environment:
#   BENCH_PACKETS  packets in the benchmark capture (default 1500000; only
#                  used when the capture is (re)built)
#   BENCH_RUNS     runs per scenario, the median is reported (default 5)
#   BENCH_SCENARIOS  space-separated scenario names (default: every enabled
#                  one; `tools/bench/run_bench.py --list` shows them)
#   BENCH_NOTE     caveat line printed under the table
#   BENCH_NO_DOC=1 print the figures without touching docs/benchmarks.md
#   BENCH_EXPORTER_RECORDS  records per exporter benchmark run (default 5000000)
#   BENCH_NO_EXPORTER=1     skip the exporter benchmark (tools/bench/exporter_bench.py)
# The capture is built once by ../shared/tools/make-bench-pcap.sh from the
# public corpus and cached as BUILD_DIR/bench/bench.pcap.
set -euo pipefail
build=${1:-build}
repo=$(cd "$(dirname "$0")/.." && pwd)
case "$build" in /*) ;; *) build="$PWD/$build" ;; esac
bin="$build/bin"
for b in metaprobe-capture metaprobe-exporter metaprobe-bench-feed; do
  [ -x "$bin/$b" ] || { echo "bench: $bin/$b is missing; build first (make build)" >&2; exit 1; }
done

pcap="$build/bench/bench.pcap"
packets=${BENCH_PACKETS:-1500000}
maker="${METAPROBE_BENCH_MAKER:-$repo/../shared/tools/make-bench-pcap.sh}"
if [ ! -s "$pcap" ]; then
  [ -f "$maker" ] || { echo "bench: $maker not found (needs ../shared/tools and ../shared/corpus)" >&2; exit 1; }
  mkdir -p "$(dirname "$pcap")"
  echo "bench: building $pcap ($packets packets) with $maker"
  bash "$maker" "$pcap.tmp" "$packets"
  mv "$pcap.tmp" "$pcap"
else
  echo "bench: reusing $pcap (delete it to rebuild)"
fi

nproc=$(nproc)
note=${BENCH_NOTE:-"Machine: development VM with $nproc vCPUs shared with other jobs (builds, tests of other work); figures are indicative, compare runs on the same machine only."}
args=(--bin-dir "$bin" --pcap "$pcap" --runs "${BENCH_RUNS:-5}" --note "$note" --work-dir "$build/bench")
[ "${BENCH_NO_DOC:-0}" = 1 ] || args+=(--doc "$repo/docs/benchmarks.md")
for s in ${BENCH_SCENARIOS:-}; do args+=(--scenario "$s"); done
python3 "$repo/tools/bench/run_bench.py" "${args[@]}"

# One exporter process fed at full speed (records/s, text lines/s).
[ "${BENCH_NO_EXPORTER:-0}" = 1 ] && exit 0
xargs=(--bin-dir "$bin" --pcap "$pcap" --runs "${BENCH_RUNS:-5}" --note "$note" --work-dir "$build/bench"
       --records "${BENCH_EXPORTER_RECORDS:-5000000}")
[ "${BENCH_NO_DOC:-0}" = 1 ] || xargs+=(--doc "$repo/docs/benchmarks.md")
exec python3 "$repo/tools/bench/exporter_bench.py" "${xargs[@]}"
