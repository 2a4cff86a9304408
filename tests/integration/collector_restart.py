#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A TCP collector killed and restarted during a run.

The appliance reads its capture from a FIFO (batch_size=1), so the test
decides what happens when; the DNS channel goes to a metaprobe-receiver over
TCP and to an IPFIX file (the reference of what was produced):

1. phase 1: N1 DNS queries; wait until the receiver printed N1 records;
2. SIGKILL the receiver; wait until the exporter noticed (well past its
   100 ms tick);
3. phase 2: N2 queries while nobody listens: ipfix_tcp_buffer=B of them
   wait, N2-B are dropped and counted;
4. restart the receiver on the same port: the exporter reconnects
   (ipfix_tcp_reconnect_max=200ms), sends the templates first and the B
   buffered records;
5. phase 3: N3 queries; end of the capture.

Checks: each TCP session starts with templates (the receivers' session
lines), both sessions got records, receiver total + exporter records_dropped
== exporter records_in == records produced (the file), the second session
sees the dropped records as a sequence gap of exactly that size, and the
exporter's counters hold records_in == sent + dropped.

Usage: collector_restart.py --bin-dir BUILD/bin [--work-dir DIR] [--timeout S]
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

N1, N2, N3, BUFFER = 40, 300, 50, 100
check = mpi.check


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--work-dir")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per wait")
    args = ap.parse_args(argv)
    bin_dir = Path(args.bin_dir).resolve()
    work = mpi.make_workdir(Path(args.work_dir) if args.work_dir else None, "collector-restart")
    t = args.timeout

    rx1 = xh.receiver(bin_dir, work, "rx1", "tcp:127.0.0.1:0")
    if not rx1.address:
        print("FAIL metaprobe-receiver did not start: " + rx1.stderr()[-500:])
        return 1
    port = rx1.address.rsplit(":", 1)[1]
    fifo = xh.fifo_feed(work / "capture.pcap")
    dns_file = work / "dns.ipfix"
    rx2 = None
    with mpi.channel_dir("restart") as endpoint:
        app = xh.appliance(bin_dir, work, endpoint, [
            f"input=pcap:{fifo.path}", "batch_size=1",
            f"ipfix_dns_tcp_collectors=127.0.0.1:{port}", f"ipfix_dns_file={dns_file}",
            f"ipfix_tcp_buffer={BUFFER}", "ipfix_tcp_reconnect_max=200ms",
            "ipfix_observation_domain=70"])
        try:
            if not fifo.open(t, lambda: app.poll() is None):
                check(False, "the appliance opens the capture FIFO",
                      (work / "appliance.log").read_text("utf-8", "replace")[-2000:])
                return 1
            fifo.write(xh.gen.global_header() + xh.dns_query_frames(0, N1))
            got1 = xh.wait_stable(rx1.count, N1, t)
            check(got1 == N1, f"phase 1: the receiver got all {N1} records (got {got1})")

            rx1.kill(signal.SIGKILL)
            time.sleep(0.6)  # > exporter tick: it has seen the connection close
            fifo.write(xh.dns_query_frames(N1, N2))
            time.sleep(0.6)  # phase 2 reaches the exporter while nobody listens

            rx2 = xh.receiver(bin_dir, work, "rx2", f"tcp:127.0.0.1:{port}")
            check(rx2.address.endswith(":" + port), f"the receiver restarts on port {port}",
                  rx2.stderr()[-500:])
            got2 = xh.wait_stable(rx2.count, BUFFER, t)
            check(got2 == BUFFER,
                  f"after the reconnect: the {BUFFER} buffered records arrive (got {got2})")

            fifo.write(xh.dns_query_frames(N1 + N2, N3))
            got2 = xh.wait_stable(rx2.count, BUFFER + N3, t)
            check(got2 == BUFFER + N3, f"phase 3: {N3} more records (got {got2 - BUFFER})")
        finally:
            fifo.close()
            rc = xh.finish(app, t * 2)
            if rx2 is not None:
                rx2.kill(signal.SIGTERM)
            rx1.kill(signal.SIGKILL)
    log = (work / "appliance.log").read_text("utf-8", "replace")
    check(rc == 0, f"the appliance exits 0 after the end of the capture (got {rc})", log[-3000:])
    san = mpi.sanitizer_lines(log + rx1.stderr() + (rx2.stderr() if rx2 else ""))
    check(not san, "no sanitizer report", "\n".join(san[:5]))

    produced, err = mpi.decode_ipfix(bin_dir, dns_file)
    check(err is None and len(produced) == N1 + N2 + N3,
          f"the IPFIX file holds every record produced: {len(produced)} of {N1 + N2 + N3}", err or "")

    counters = xh.exporter_counters(log)
    tcp = xh.sink_counters(counters, "dns.ipfix", 0, "ipfix:tcp:")
    check(bool(tcp), "the exporter logged its TCP sink counters", log[-2000:])
    records_in = tcp.get("records_in", -1)
    sent, dropped = tcp.get("records_sent", -1), tcp.get("records_dropped", -1)
    received = rx1.count() + (rx2.count() if rx2 else 0)
    print(f"     exporter: in {records_in}, sent {sent}, dropped {dropped}, "
          f"buffered {tcp.get('buffered_records')}, connects {tcp.get('connects')}, "
          f"disconnects {tcp.get('disconnects')}; receivers: {rx1.count()} + "
          f"{rx2.count() if rx2 else 0}")
    check(counters.get(("dns.ipfix", 0, "", "records")) == N1 + N2 + N3,
          "the exporter got every record produced")
    check(records_in == N1 + N2 + N3, f"records_in == records produced ({records_in})")
    check(records_in == sent + dropped and tcp.get("buffered_records") == 0,
          "records_in == records_sent + records_dropped, nothing left buffered")
    check(received + dropped == records_in,
          f"receivers ({received}) + counted loss ({dropped}) == records_in ({records_in})")
    check(received == sent, f"what the receivers got is what counts as sent ({sent})")
    check(dropped == N2 - BUFFER, f"the loss is phase 2 beyond the buffer ({N2 - BUFFER})")
    check(tcp.get("disconnects") == 1 and tcp.get("connects") == 2,
          "one disconnect, two connections")

    ev1 = [e for e in rx1.events() if e["event"] == "opened"]
    check(len(ev1) == 1 and ev1[0]["domain"] == 70 and ev1[0]["first_sequence"] == 0
          and ev1[0]["first_message_templates"] > 0,
          "session 1 starts with templates (sequence 0, observation domain 70)", ev1)
    summary = rx2.summary() if rx2 else None
    check(summary is not None, "the restarted receiver prints a JSON summary",
          rx2.stderr()[-1000:] if rx2 else "")
    if summary:
        ex = summary["exporters"]
        check(len(ex) == 1, f"the restarted receiver saw one session ({len(ex)})", ex)
        if ex:
            s2 = ex[0]
            check(s2["first_sequence"] == 0 and s2["first_message_templates"] > 0
                  and s2["sets_without_template"] == 0,
                  "session 2 starts with templates, no data before them", s2)
            check(s2["records"] == BUFFER + N3, f"session 2 decoded {BUFFER + N3} records", s2)
            check(s2["sequence_gaps"] == 1 and s2["records_lost"] == dropped,
                  f"session 2 sees the dropped records as one gap of {dropped}", s2)
            check(s2["decode_errors"] == 0, "no decode error", s2)
        check(summary["decode_errors"] == 0 and summary["framing_errors"] == 0,
              "receiver: no decode or framing error")
    ev2 = [e["event"] for e in rx2.events()] if rx2 else []
    check(ev2 == ["opened", "closed"], f"session 2 opened and closed cleanly ({ev2})")

    return mpi.verdict(work)


if __name__ == "__main__":
    sys.exit(main())
