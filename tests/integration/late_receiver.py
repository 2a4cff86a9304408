#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A UDP collector that starts late.

The appliance exports DNS records over UDP to a port nobody listens on
(ipfix_udp_template_timer=1); its capture comes through a FIFO
(batch_size=1) in phases:

1. N1 DNS queries while nobody listens: the kernel reports the ICMP port
   unreachable as a failed send, the exporter counts those records dropped;
2. metaprobe-receiver starts on that port, N2 queries follow at once (they
   may come before the next template refresh: the receiver counts them as
   records without template);
3. after more than the refresh period, N3 queries; end of the capture.

Checks: the exporter accounts for every record (records_sent +
records_dropped == records_in == records produced, send errors counted);
the receiver decoded every record from the first message with templates on,
exactly the queries with those sequence numbers (no gap), all of phase 3,
and what it got before the templates adds up with the sequence numbers.

Usage: late_receiver.py --bin-dir BUILD/bin [--work-dir DIR] [--timeout S]
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

N1, N2, N3 = 60, 50, 70
N = N1 + N2 + N3
check = mpi.check


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--work-dir")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per wait")
    args = ap.parse_args(argv)
    bin_dir = Path(args.bin_dir).resolve()
    work = mpi.make_workdir(Path(args.work_dir) if args.work_dir else None, "late-receiver")
    t = args.timeout

    port = mpi.free_port("udp")
    fifo = xh.fifo_feed(work / "capture.pcap")
    dns_file = work / "dns.ipfix"
    rx = None
    with mpi.channel_dir("late") as endpoint:
        app = xh.appliance(bin_dir, work, endpoint, [
            f"input=pcap:{fifo.path}", "batch_size=1",
            f"ipfix_dns_udp_collectors=127.0.0.1:{port}", f"ipfix_dns_file={dns_file}",
            "ipfix_udp_template_timer=1", "ipfix_observation_domain=90"])
        try:
            if not fifo.open(t, lambda: app.poll() is None):
                check(False, "the appliance opens the capture FIFO",
                      (work / "appliance.log").read_text("utf-8", "replace")[-2000:])
                return 1
            fifo.write(xh.gen.global_header() + xh.dns_query_frames(0, N1))
            time.sleep(1.5)  # phase 1 and a template refresh go nowhere

            rx = xh.receiver(bin_dir, work, "rx", f"udp:127.0.0.1:{port}")
            check(bool(rx.address), "the receiver starts", rx.stderr()[-500:])
            fifo.write(xh.dns_query_frames(N1, N2))
            time.sleep(2.2)  # more than the refresh period: templates have come
            fifo.write(xh.dns_query_frames(N1 + N2, N3))
            xh.wait_stable(rx.count, N3, t, settle=1.0)
        finally:
            fifo.close()
            rc = xh.finish(app, t * 2)
            time.sleep(0.3)
            if rx is not None:
                rx.kill(signal.SIGTERM)
    log = (work / "appliance.log").read_text("utf-8", "replace")
    check(rc == 0, f"the appliance exits 0 after the end of the capture (got {rc})", log[-3000:])
    san = mpi.sanitizer_lines(log + (rx.stderr() if rx else ""))
    check(not san, "no sanitizer report", "\n".join(san[:5]))

    produced, err = mpi.decode_ipfix(bin_dir, dns_file)
    check(err is None and len(produced) == N,
          f"the IPFIX file holds every record produced: {len(produced)} of {N}", err or "")

    udp = xh.sink_counters(xh.exporter_counters(log), "dns.ipfix", 0, "ipfix:udp:")
    check(bool(udp), "the exporter logged its UDP sink counters", log[-2000:])
    records_in, sent, dropped = (udp.get(k, -1) for k in ("records_in", "records_sent",
                                                          "records_dropped"))
    print(f"     exporter: in {records_in}, sent {sent}, dropped {dropped}, "
          f"send errors {udp.get('send_errors')}, template sends {udp.get('template_sends')}")
    check(records_in == N, f"records_in == records produced ({records_in} of {N})")
    check(sent + dropped == records_in, "records_sent + records_dropped == records_in")
    check(udp.get("send_errors", 0) > 0 and dropped > 0,
          "sends refused while nobody listened are counted (send errors, dropped records)")
    check(udp.get("template_sends", 0) >= 3, "templates are refreshed every second")

    summary = rx.summary() if rx else None
    check(summary is not None, "the receiver prints a JSON summary", rx.stderr()[-1000:] if rx else "")
    if not summary:
        return 1
    ex = summary["exporters"]
    check(len(ex) == 1, f"one exporter (UDP peer and domain) ({len(ex)})", ex)
    if ex:
        e = ex[0]
        print(f"     receiver: {e}")
        first_t = e["first_template_sequence"]
        check(e["domain"] == 90 and first_t is not None, "templates arrived (domain 90)", e)
        if first_t is not None:
            check(e["sequence_gaps"] == 0 and e["records_lost"] == 0, "no sequence gap", e)
            check(e["next_sequence"] == records_in,
                  f"the last sequence number counts every record, dropped ones too ({records_in})", e)
            check(e["records"] == e["next_sequence"] - first_t,
                  f"every record from the first template on (sequence {first_t}) was decoded "
                  f"({e['records']})", e)
            check(e["records"] >= N3, f"all of phase 3 was decoded ({e['records']} >= {N3})")
            check(e["records"] + e["records_without_template"] == e["next_sequence"] - e["first_sequence"],
                  "records decoded + records without template == what the receiver's sequence "
                  "numbers span", e)
            want = {f"q{i}.collect.test" for i in range(first_t, N)}
            got = {r.get("DOMAIN") for r in rx.records() if r.get("template") == "dns"}
            check(got == want, f"the decoded records are exactly queries {first_t}..{N - 1}",
                  f"missing {sorted(want - got)[:5]}, unexpected {sorted(got - want)[:5]}")
        check(e["decode_errors"] == 0, "no decode error", e)
        check(summary["sets_without_template"] == e["sets_without_template"]
              and summary["records_without_template"] == e["records_without_template"],
              "sets and records without template are reported per exporter")

    return mpi.verdict(work)


if __name__ == "__main__":
    sys.exit(main())
