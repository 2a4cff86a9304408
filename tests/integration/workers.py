#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""workers=N exports the same records as workers=1: the appliance on a set of
corpus captures (HTTP, TLS/QUIC, DNS, SIP, FTP with its data connections,
mail, VLAN/IPv6, IPv4 and IPv6 fragments) with workers=1, 2 and 3, all four
IPFIX groups (clickstream, meta, dns, fullflow) decoded with
metaprobe-receiver.

Compared per capture as multisets of sessions (mp_integration.
sessions_multiset): every record with every field except SESSION_ID, whose
values depend on the run (start time, worker number); which records share
one SESSION_ID must be the same. Also checked: each worker count's run
exits 0, the capture logs per-worker classifier counters
(classifier.<w>.packets) for every worker, and with several workers more
than one worker saw packets somewhere (the sharding spreads flows).

Usage: workers.py --bin-dir BUILD/bin [--corpus DIR] [--workers 1,2,3]
                  [--timeout S] [--work-dir DIR] [--jobs N]
Exit 0 pass, 1 fail, 77 corpus missing.
"""

import argparse
import os
import re
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mp_integration as mpi  # noqa: E402

CAPTURES = [
    "http-ipfixprobe.pcap",
    "mixed-many-protocols-vlan-ipv6.pcap",
    "mixed-sites-quic-v1-tls-http.pcap",
    "dns-packets-pcpp.pcap",
    "sip-calls-udp.pcap",
    "ftp-session-ndpi.pcap",
    "smtp-session-ndpi.pcap",
    "ipv4-fragments-large-pcpp.pcap",
    "ipv6-fragments-pcpp.pcap",
]
GROUPS = ("clickstream", "meta", "dns", "fullflow")
WORKER_PACKETS = re.compile(r"\bclassifier\.(\d+)\.packets = (\d+)")


def run_one(args, corpus: Path, capture: str, workers: int):
    """(records, per-worker packet counters, problem or None)."""
    work = mpi.make_workdir(args.work_dir, f"workers-{workers}-{capture[:-5]}")
    run = mpi.run_appliance(Path(args.bin_dir), corpus / capture, work, groups=GROUPS,
                            extra_sets=[f"workers={workers}", "log_level=info",
                                        "http_parse_reply=1", "ssl_parse_reply=1"],
                            timeout=args.timeout)
    if run.timed_out or run.returncode != 0:
        return None, {}, f"{capture} workers={workers}: metaprobe exit {run.returncode}:\n{run.tail()}"
    san = mpi.sanitizer_lines(run.stderr)
    if san:
        return None, {}, f"{capture} workers={workers}: sanitizer report: {san[0]}"
    recs, err = mpi.exported_records(Path(args.bin_dir), run.files)
    if err:
        return None, {}, f"{capture} workers={workers}: {err}"
    log = run.stderr
    for f in (work / "log").glob("*.log"):
        log += f.read_text(errors="replace")
    per_worker = {}
    for m in WORKER_PACKETS.finditer(log):
        per_worker[int(m.group(1))] = int(m.group(2))
    shutil.rmtree(work, ignore_errors=True)
    return recs, per_worker, None


def check_capture(args, corpus: Path, capture: str, counts):
    problems, lines = [], []
    results = {}
    for w in counts:
        recs, per_worker, err = run_one(args, corpus, capture, w)
        if err:
            return [err], lines, {}
        results[w] = (recs, per_worker)
        if sorted(per_worker) != list(range(w)):
            problems.append(f"{capture} workers={w}: per-worker counters classifier.<w>.packets "
                            f"found for workers {sorted(per_worker)}, expected 0..{w - 1}")
    base_recs = results[counts[0]][0]
    base = mpi.sessions_multiset(base_recs)
    if not base_recs:
        problems.append(f"{capture}: no records at all with workers={counts[0]}")
    for w in counts[1:]:
        recs, per_worker = results[w]
        got = mpi.sessions_multiset(recs)
        if got != base:
            flat_a = mpi.sessions_multiset(base_recs).__class__(
                mpi.record_key(r) for r in base_recs)
            flat_b = flat_a.__class__(mpi.record_key(r) for r in recs)
            problems.append(f"{capture}: workers={w} exported other records or sessions than "
                            f"workers={counts[0]} ({len(recs)} vs {len(base_recs)} records)")
            diff = mpi.describe_difference(f"workers={counts[0]}", flat_a, f"workers={w}", flat_b)
            problems += ["  " + d for d in diff] or [
                "  the records are equal, their grouping by SESSION_ID differs"]
    spread = {w: sum(1 for v in results[w][1].values() if v > 0) for w in counts}
    lines.append(f"{capture}: {len(base_recs)} records in {sum(base.values())} sessions, equal "
                 f"for workers {', '.join(map(str, counts))}; workers with packets: "
                 + ", ".join(f"{spread[w]}/{w}" for w in counts))
    return problems, lines, spread


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", required=True, type=lambda p: str(Path(p).resolve()))
    ap.add_argument("--corpus")
    ap.add_argument("--workers", default="1,2,3")
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--work-dir")
    ap.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    args = ap.parse_args()
    corpus = mpi.corpus_or_skip(args.corpus)
    counts = [int(x) for x in args.workers.split(",")]
    missing = [c for c in CAPTURES if not (corpus / c).exists()]
    if missing:
        print("FAIL: corpus captures missing: " + ", ".join(missing))
        return 1
    problems = []
    spread_total = {w: 0 for w in counts}
    with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        for p, lines, spread in pool.map(lambda c: check_capture(args, corpus, c, counts),
                                         CAPTURES):
            problems += p
            for l in lines:
                print(l)
            for w, n in spread.items():
                spread_total[w] = max(spread_total[w], n)
    for w in counts:
        if w > 1 and spread_total[w] < 2:
            problems.append(f"workers={w}: on no capture did more than one worker see packets "
                            "(flows are not spread over the shards)")
    for p in problems:
        print("FAIL:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
