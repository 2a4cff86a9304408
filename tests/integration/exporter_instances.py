#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Several metaprobe-exporter instances per sink group.

A generated capture (NQ DNS queries, NH HTTP requests: one record each) is
exported twice:

1. one instance per group, into IPFIX files: the reference counts;
2. exporter_instances.clickstream=2 and exporter_instances.dns=3, to one
   TCP metaprobe-receiver per group and into IPFIX files. The capture comes
   through a FIFO (batch_size=1: one record batch per packet); its packets
   follow only once every instance is connected to its channel, so ZeroMQ's
   round robin hands batches (and the end of stream) to all of them.

Checks for run 2: every instance got batches and logged its own counters
(records, sink records_in/sent); each instance is its own observation
domain (ipfix_observation_domain + instance) at the receiver and in its
file; instance N > 0 writes <file>.N, so no two processes share a file; per
group the instances' records add up to run 1's count and to what was
produced; nothing dropped, no decode error, no sequence gap.

Usage: exporter_instances.py --bin-dir BUILD/bin [--work-dir DIR] [--timeout S]
exit 0 pass, 1 fail. Needs no corpus: the capture is generated.
"""

import argparse
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mp_integration as mpi  # noqa: E402
import export_harness as xh  # noqa: E402

NQ, NH = 300, 60
BASE_DOMAIN = 100
INSTANCES = {"dns": 3, "clickstream": 2}
EXPECTED = {"dns": NQ, "clickstream": NH}
check = mpi.check


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--work-dir")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per run")
    args = ap.parse_args(argv)
    bin_dir = Path(args.bin_dir).resolve()
    work = mpi.make_workdir(Path(args.work_dir) if args.work_dir else None, "exporter-instances")
    t = args.timeout
    capture = xh.gen.global_header() + xh.dns_query_frames(0, NQ) + xh.http_request_frames(NH)

    # 1. one instance per group: reference counts
    one = work / "one"
    one.mkdir()
    (one / "capture.pcap").write_bytes(capture)
    res = mpi.run_appliance(bin_dir, one / "capture.pcap", one, groups=("clickstream", "dns"),
                            timeout=t, extra_sets=("batch_size=1",))
    check(res.returncode == 0, f"run 1 (one instance each) exits 0 (got {res.returncode})", res.tail())
    reference = {}
    for g in ("dns", "clickstream"):
        recs, err = mpi.decode_ipfix(bin_dir, res.files[g])
        reference[g] = len(recs)
        check(err is None and len(recs) == EXPECTED[g],
              f"run 1: {g} file holds {EXPECTED[g]} records (got {len(recs)})", err or "")

    # 2. several instances
    many = work / "many"
    many.mkdir()
    rx = {g: xh.receiver(bin_dir, many, f"rx-{g}", "tcp:127.0.0.1:0") for g in INSTANCES}
    for g, r in rx.items():
        if not r.address:
            print(f"FAIL metaprobe-receiver for {g} did not start: " + r.stderr()[-500:])
            return 1
    files = {g: many / f"{g}.ipfix" for g in INSTANCES}
    fifo = xh.fifo_feed(many / "capture.pcap")
    with mpi.channel_dir("instances") as endpoint:
        app = xh.appliance(bin_dir, many, endpoint, [
            f"input=pcap:{fifo.path}", "batch_size=1",
            f"exporter_instances.dns={INSTANCES['dns']}",
            f"exporter_instances.clickstream={INSTANCES['clickstream']}",
            f"ipfix_observation_domain={BASE_DOMAIN}",
            f"ipfix_dns_tcp_collectors={rx['dns'].address}",
            f"ipfix_tcp_collectors={rx['clickstream'].address}",
            f"ipfix_dns_file={files['dns']}", f"ipfix_file={files['clickstream']}"])
        try:
            if not fifo.open(t, lambda: app.poll() is None):
                check(False, "the appliance opens the capture FIFO",
                      (many / "appliance.log").read_text("utf-8", "replace")[-2000:])
                return 1
            # capture binds the channels once it has read the capture's
            # header; then every instance must connect before the packets come
            header = xh.gen.global_header()
            fifo.write(header)
            peers = {f"{g}-ipfix": n for g, n in INSTANCES.items()}
            ok = xh.wait_until(lambda: all(xh.channel_peers(endpoint, ch) >= n
                                           for ch, n in peers.items()), t)
            check(ok, "every instance connects to its channel before the capture starts",
                  {ch: xh.channel_peers(endpoint, ch) for ch in peers})
            fifo.write(capture[len(header):])
        finally:
            fifo.close()
            rc = xh.finish(app, t)
            time.sleep(0.3)
            for r in rx.values():
                r.kill(signal.SIGTERM)
    log = (many / "appliance.log").read_text("utf-8", "replace")
    check(rc == 0, f"run 2 (several instances) exits 0 (got {rc})", log[-3000:])
    san = mpi.sanitizer_lines(log + "".join(r.stderr() for r in rx.values()))
    check(not san, "no sanitizer report", "\n".join(san[:5]))
    counters = xh.exporter_counters(log)

    for g, n in INSTANCES.items():
        ch = f"{g}.ipfix"
        # per-instance counters in the exporters' logs
        per = [counters.get((ch, i, "", "records"), -1) for i in range(n)]
        print(f"     {g}: records per instance {per}")
        check(all(p > 0 for p in per), f"{g}: each of the {n} instances got batches ({per})")
        check(sum(per) == reference[g] == EXPECTED[g],
              f"{g}: the instances' records add up to run 1's count ({sum(per)} == {reference[g]})")
        for i in range(n):
            tcp = xh.sink_counters(counters, ch, i, "ipfix:tcp:")
            check(tcp.get("records_in") == per[i] and tcp.get("records_sent") == per[i]
                  and tcp.get("records_dropped") == 0,
                  f"{g}#{i}: its TCP sink counts {per[i]} in, {per[i]} sent, 0 dropped", tcp)

        # the receiver: one session per instance, each its own domain
        summary = rx[g].summary()
        check(summary is not None, f"{g}: the receiver prints a summary", rx[g].stderr()[-500:])
        if summary:
            by_domain = {e["domain"]: e for e in summary["exporters"]}
            want = {BASE_DOMAIN + i for i in range(n)}
            check(set(by_domain) == want and len(summary["exporters"]) == n,
                  f"{g}: the receiver sees {n} exporters, domains {sorted(want)}",
                  summary["exporters"])
            for i in range(n):
                e = by_domain.get(BASE_DOMAIN + i)
                if e:
                    check(e["records"] == per[i] and e["sequence_gaps"] == 0
                          and e["decode_errors"] == 0 and e["first_message_templates"] > 0,
                          f"{g}#{i}: domain {BASE_DOMAIN + i} brought its {per[i]} records, "
                          "templates first, no gap", e)
            check(summary["data_records"] == EXPECTED[g],
                  f"{g}: the receiver got {EXPECTED[g]} records in all")

        # the files: instance 0 the configured name, instance N <name>.N
        names = [files[g]] + [Path(f"{files[g]}.{i}") for i in range(1, n)]
        total = 0
        for i, path in enumerate(names):
            check(path.exists(), f"{g}#{i} writes {path.name}")
            if not path.exists():
                continue
            recs, summ, frc, ferr = xh.read_ipfix_file(bin_dir, path)
            total += len(recs)
            doms = [e["domain"] for e in summ["exporters"]] if summ else []
            check(frc == 0 and doms == [BASE_DOMAIN + i] and len(recs) == per[i]
                  and summ["decode_errors"] == 0 and summ["sequence_gaps"] == 0,
                  f"{path.name}: {per[i]} records of domain {BASE_DOMAIN + i} alone, intact",
                  f"rc {frc}, domains {doms}, {len(recs)} records; {ferr[-300:]}")
        check(total == EXPECTED[g], f"{g}: the files hold {EXPECTED[g]} records together ({total})")
        extra = sorted(p.name for p in many.glob(f"{g}.ipfix*") if p not in names)
        check(not extra, f"{g}: no other file ({extra})")

    return mpi.verdict(work)


if __name__ == "__main__":
    sys.exit(main())
