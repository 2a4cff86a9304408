#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A spoofed-flow flood against a capture with a memory budget.

A generator writes, through a FIFO, a capture of FLOWS spoofed TCP flows
(one SYN, 300 bytes of data no protocol claims and one out-of-order byte
far ahead, so TCP reassembly buffers it; half of them to port 8000, where
an HTTP parser takes each, half to port 7000, where detection by content
holds their bytes) with a complete HTTP conversation (handshake, GET
with its own Host, FIN) mixed in after every LEGIT_EVERY spoofed flows.
The appliance runs with `memory_budget=256M` and a clickstream IPFIX file.
Without the budget the flood would take several GiB (docs/limits.md).

Checks:
- the capture's peak RSS stays under the budget plus the documented
  constant (docs/limits.md, "Memory budget": BUDGET + 64 MiB);
- the budget came under pressure (memory.lean_flows > 0,
  memory.evicted > 0) and its peak stayed within the budget plus the
  accounts' slack;
- every legitimate conversation's request is in the IPFIX file (by Host),
  and none of them was evicted (memory.evicted_confirmed == 0);
- the counters add up: flows created == flows ended (every reason), the
  budget's evictions == the shards' memory evictions, and the memory
  evictions are among the classifier's evicted flows.

Usage: memory_flood.py --bin-dir BUILD/bin [--work-dir DIR] [--flows N]
exit 0 pass, 1 fail.
"""

import argparse
import os
import re
import struct
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mp_integration as mpi  # noqa: E402
import export_harness as xh  # noqa: E402

gen = xh.gen
check = mpi.check
BUDGET = 256 << 20
# What the capture holds beyond its budget: code, libraries, CAF, batches in
# flight (docs/limits.md, "Memory budget").
RSS_CONSTANT = 64 << 20
LEGIT_EVERY = 500
T0 = 1_700_000_000
JUNK = b"x" * 300


def spoofed_frames():
    """Templates of the three frames of a spoofed flow, patched per flow."""
    syn = gen.record(gen.eth_ipv4(6, "10.0.0.1", "192.0.2.80", gen.tcp(1024, 8000, 1000, b"", 0x02)))
    data = gen.record(gen.eth_ipv4(6, "10.0.0.1", "192.0.2.80", gen.tcp(1024, 8000, 1001, JUNK, 0x18)))
    ooo = gen.record(gen.eth_ipv4(6, "10.0.0.1", "192.0.2.80", gen.tcp(1024, 8000, 6001, b"z", 0x18)))
    return [bytearray(f) for f in (syn, data, ooo)]


def write_flood(fifo: Path, flows: int, legit_hosts: list):
    templates = spoofed_frames()
    # offsets inside a record: 16 pcap header, 14 Ethernet, IPv4 src at 12,
    # TCP source port at 20
    ip_src = 16 + 14 + 12
    sport = 16 + 14 + 20
    dport_off = sport + 2
    with open(fifo, "wb", buffering=1 << 20) as out:
        out.write(gen.global_header())
        chunk = []
        for i in range(flows):
            # a flow every 10 us of packet time: the flood fits well inside
            # the idle timeout, so only memory ends flows early
            ts, us = T0 + i // 100_000, (i % 100_000) * 10
            src = 0x0A000000 + (i >> 6)
            port = 1024 + (i & 63) * 997 % 60000
            # even flows to 8000 (HTTP by port: a parser each), odd ones to
            # 7000 (no port: detection by content holds their bytes)
            dport = 8000 if i % 2 == 0 else 7000
            for t in templates:
                struct.pack_into("!H", t, dport_off, dport)
                struct.pack_into("<II", t, 0, ts, us)
                struct.pack_into("!I", t, ip_src, src)
                struct.pack_into("!H", t, sport, port)
                chunk.append(bytes(t))
            if i % LEGIT_EVERY == LEGIT_EVERY - 1:
                j = len(legit_hosts)
                host = f"legit{j}.flood.test"
                legit_hosts.append(host)
                req = f"GET /page/{j} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: flood-test\r\n\r\n".encode()
                frames = []
                gen.tcp_flow(frames, "198.51.100.7", "203.0.113.80", 20000 + j % 40000, 80, [req], ts)
                chunk.extend(frames)
            if len(chunk) >= 4096:
                out.write(b"".join(chunk))
                chunk.clear()
        out.write(b"".join(chunk))


def stat(log: str, name: str) -> list:
    """Values of the counter `name` in the capture's final counter lines
    ("... info: NAME = VALUE")."""
    return [int(v) for v in re.findall(r"(?m) info: " + re.escape(name) + r" = (\d+)\s*$", log)]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--work-dir")
    ap.add_argument("--flows", type=int, default=1_200_000)
    ap.add_argument("--timeout", type=float, default=400.0)
    ap.add_argument("--sanitized", action="store_true",
                    help="an ASan/UBSan build: its RSS (shadow memory, quarantine, no jemalloc) "
                         "is not the budget's, so only the counters and records are checked, "
                         "on fewer flows")
    args = ap.parse_args(argv)
    if args.sanitized:
        args.flows = min(args.flows, 150_000)
    bin_dir = Path(args.bin_dir).resolve()
    work = mpi.make_workdir(Path(args.work_dir) if args.work_dir else None, "memory-flood")
    fifo = work / "flood.fifo"
    if fifo.exists():
        fifo.unlink()
    os.mkfifo(fifo)
    out_file = work / "click.ipfix"
    legit = []
    with mpi.channel_dir("flood") as endpoint:
        app = xh.appliance(bin_dir, work, endpoint, [
            f"input=pcap:{fifo}", f"ipfix_file={out_file}", f"memory_budget={BUDGET}",
            "workers=2"])
        writer = threading.Thread(target=write_flood, args=(fifo, args.flows, legit), daemon=True)
        writer.start()
        rc = xh.finish(app, args.timeout)
        writer.join(5)
    log = (work / "appliance.log").read_text("utf-8", "replace")
    check(rc == 0, "the appliance finishes", log[-3000:])
    san = mpi.sanitizer_lines(log)
    check(not san, "no sanitizer report", "\n".join(san[:5]))

    rss = stat(log, "process.peak_rss_bytes")
    peak = stat(log, "memory.peak_bytes")
    limit = stat(log, "memory.limit_bytes")
    print(f"     {args.flows} spoofed flows, {len(legit)} conversations; capture peak RSS "
          f"{rss[0] >> 20 if rss else '?'} MiB, charged peak {peak[0] >> 20 if peak else '?'} MiB, "
          f"allocator growth peak {(stat(log, 'memory.heap_over_peak_bytes') or [0])[0] >> 20} MiB, "
          f"budget {BUDGET >> 20} MiB")
    check(limit == [BUDGET], "the budget is the configured one", str(limit))
    if not args.sanitized:
        check(bool(rss) and rss[0] <= BUDGET + RSS_CONSTANT,
              f"peak RSS within the budget + {RSS_CONSTANT >> 20} MiB", str(rss))
    # every account may hold up to its slack (64 KiB) uncharged
    check(bool(peak) and peak[0] <= BUDGET + 64 * 1024 * 40, "the charged peak stays within it",
          str(peak))
    heap = stat(log, "memory.heap_over_peak_bytes")
    if not args.sanitized:
        check(bool(heap) and heap[0] <= BUDGET + RSS_CONSTANT,
              f"the allocator's resident growth stays within the budget + {RSS_CONSTANT >> 20} MiB",
              str(heap))
    lean = stat(log, "memory.lean_flows")
    evicted = stat(log, "memory.evicted")
    evicted_confirmed = stat(log, "memory.evicted_confirmed")
    print(f"     lean flows {lean}, evicted {evicted} (confirmed {evicted_confirmed}), "
          f"chunk refused {stat(log, 'memory.chunk_refused')}")
    check(bool(lean) and lean[0] > 0, "flows were created lean under pressure", str(lean))
    check(bool(evicted) and evicted[0] > 0, "flows were evicted for memory", str(evicted))
    check(evicted_confirmed == [0], "no confirmed conversation was evicted", str(evicted_confirmed))

    created = sum(stat(log, f"classifier.{w}.flows_created")[0] for w in (0, 1))
    ended = 0
    for w in (0, 1):
        for reason in ("idle", "end", "evicted", "forced"):
            v = stat(log, f"classifier.{w}.flows_ended.{reason}")
            ended += v[0] if v else 0
    shard_mem = sum(stat(log, f"classifier.{w}.memory.evictions")[0] for w in (0, 1))
    shard_evicted = sum((stat(log, f"classifier.{w}.flows_ended.evicted") or [0])[0] for w in (0, 1))
    print(f"     flows created {created}, ended {ended}; evicted {shard_evicted}, of which "
          f"for memory {shard_mem}")
    check(created >= args.flows + len(legit), "every flow was created", str(created))
    check(created == ended, "every flow created ended (idle, end, evicted, forced)",
          f"{created} != {ended}")
    check(bool(evicted) and shard_mem == evicted[0], "the budget's evictions are the shards'",
          f"{shard_mem} vs {evicted}")
    check(shard_mem <= shard_evicted, "memory evictions are among the evicted flows")

    records, summary, code, err = xh.read_ipfix_file(bin_dir, out_file)
    hosts = {r.get("HOSTNAME") for r in records}
    missing = [h for h in legit if h not in hosts]
    print(f"     {len(records)} clickstream records; {len(legit) - len(missing)}/{len(legit)} "
          f"conversations found")
    check(code == 0, "the IPFIX file decodes", err[-500:])
    check(not missing, "every legitimate conversation's request is exported",
          ", ".join(missing[:5]))
    return mpi.verdict(work)


if __name__ == "__main__":
    sys.exit(main())
