#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# make demo: runs the appliance on the bundled capture, exporting IPFIX to a
# local metaprobe-receiver and text files into ./out, then prints what each
# channel produced.
set -euo pipefail
build=${1:-build}
bin=$build/bin
cd "$(dirname "$0")/.."
rm -rf out
mkdir -p out/ipfix out/text out/log

"$bin/metaprobe-receiver" --listen udp:127.0.0.1:4739 --format json \
  --output out/receiver.jsonl --idle-exit 5 2> out/log/receiver.log &
receiver=$!
trap 'kill $receiver 2>/dev/null || true' EXIT
sleep 0.5

echo "== metaprobe --config config/demo.conf"
"$bin/metaprobe" --config config/demo.conf 2> out/log/metaprobe.log || {
  echo "metaprobe failed; log:"; tail -n 40 out/log/metaprobe.log; exit 1; }
wait $receiver || true
trap - EXIT

echo
echo "== IPFIX records received by metaprobe-receiver (out/receiver.jsonl), per template"
python3 - out/receiver.jsonl <<'PY'
import json, sys, collections
c = collections.Counter()
for line in open(sys.argv[1]):
    r = json.loads(line)
    c[(r.get("template"), r.get("family"))] += 1
for (t, f), n in sorted(c.items()):
    print(f"  {t:12s} {f:5s} {n:6d}")
print(f"  total {sum(c.values())}")
PY
echo
echo "== IPFIX files (RFC 5655)"
for f in out/ipfix/*.ipfix; do printf '  %-28s %8d bytes\n' "$f" "$(stat -c %s "$f")"; done
echo
echo "== text files"
for f in out/text/*; do [ -f "$f" ] && printf '  %-48s %6d lines\n' "$f" "$(wc -l < "$f")"; done
echo
echo "sample clickstream record:"
grep -m1 '"template": *"clickstream"' out/receiver.jsonl | head -c 600; echo
