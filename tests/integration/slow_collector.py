#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""A TCP collector that stops reading: the exporter skips and counts, the
stat and alert logs get their lines, and capture is not slowed.

1. stuck collector: a local TCP server accepts the exporter's connection
   and never reads (small SO_RCVBUF). The capture is fed through a FIFO at
   a fixed pace for about PACE seconds (so the run spans several
   netflow_timeout=1 periods) with HTTP requests whose clickstream records
   are about 1.3 KB each; ipfix_tcp_buffer is small. Checks:
   - the appliance exits 0 in bounded time, and the FIFO writer was never
     held up (capture read everything as it came, not slowed by export);
   - the TCP sink's final counters: records_dropped > 0 and records_in ==
     records_sent + records_dropped + buffered_records (what the collector
     never took after the final flush timed out is still buffered there);
   - the alert log has `[NFLW] very long operation` lines, and every record
     dropped is reported in them;
   - every stat log line matches the seed's format exactly, c == 100*b/a
     (two decimals), the sums of a and b equal the exporter's send_cycles
     and send_cycle_overruns, and e is the actual elapsed period.
2. reading collector: metaprobe-receiver over TCP plus an IPFIX file, the
   same records from a plain capture file with the default buffer: no
   alert line, nothing dropped, every record arrives, stat lines present,
   and the file ends with an exporter statistics options record whose
   figures match the file's records.

Needs no corpus: the capture is generated.

Usage: slow_collector.py --bin-dir BUILD/bin [--work-dir DIR] [--timeout S]
exit 0 pass, 1 fail
"""

import argparse
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mp_integration as mpi  # noqa: E402
import robustness as gen  # noqa: E402  (pcap writers)
import export_harness as xh  # noqa: E402

CONFIG = Path(__file__).resolve().parent / "configs" / "truth.conf"

FLOWS = 6000        # HTTP requests = clickstream records
PACE = 3.0          # seconds the FIFO writer spreads the capture over
CHUNKS = 30
CHANNEL = "clickstream.ipfix"
LOG_TAG = "exporter-clickstream.ipfix-0"  # <role>-<channel>-<instance>

# The seed's stat line: [STAT    ][2022/11/20-17:55:03:213770] Statistics on NFLW_export : {7/0/0.00%/45297us/30008163us}
STAT_RE = re.compile(r"^\[STAT    \]\[(\d{4})/(\d\d)/(\d\d)-(\d\d):(\d\d):(\d\d):(\d{6})\] "
                     r"Statistics on NFLW_export : \{(\d+)/(\d+)/(\d+\.\d\d)%/(\d+)us/(\d+)us\}$")
ALERT_RE = re.compile(r"^\[ALERT   \]\[\d{4}/\d\d/\d\d-\d\d:\d\d:\d\d:\d{6}\] \[NFLW\] very long operation: "
                      r"(\S+) skipped (\d+) record\(s\) in this cycle, (\d+) since the last alert, "
                      r"(\d+) in total; cycle (\d+)us of (\d+)us period \((overran|within period)\)$")


check = mpi.check


def http_frames(n: int, prefix: str):
    """n HTTP GET flows of ~1.3 KB requests (distinct client ports)."""
    frames = []
    for i in range(n):
        path = f"/{prefix}/{i}/" + "p" * 1150
        req = (f"GET {path} HTTP/1.1\r\nHost: host{i % 97}.slow.example\r\n"
               f"User-Agent: slow-collector-test/{i}\r\n\r\n").encode()
        c = f"10.{20 + i // 60000}.{(i // 250) % 240}.{i % 250 + 1}"
        gen.tcp_flow(frames, c, "192.0.2.80", 20000 + i % 40000, 80, [req], 1_600_000_000 + i // 100)
    return frames


class stuck_collector:
    """Accepts TCP connections on 127.0.0.1 and never reads from them."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # inherited by accepted sockets
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.done = False
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while not self.done:
            try:
                c, _ = self.sock.accept()
                self.conns.append(c)
            except socket.timeout:
                continue
            except OSError:
                return

    def close(self):
        self.done = True
        self.thread.join()
        for c in self.conns:
            c.close()
        self.sock.close()


class fifo_writer:
    """Writes a pcap into a FIFO in CHUNKS pieces over PACE seconds and
    records how late it finished: a reader that stops reading holds the
    writer up (the pipe buffer is 64 KiB)."""

    def __init__(self, path: Path, frames):
        self.path = path
        self.frames = frames
        self.opened = None
        self.seconds = None
        self.error = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        try:
            with open(self.path, "wb", buffering=0) as f:  # waits for capture to open it
                self.opened = time.monotonic()
                f.write(gen.global_header())
                per = (len(self.frames) + CHUNKS - 1) // CHUNKS
                for k in range(CHUNKS):
                    target = self.opened + PACE * k / CHUNKS
                    delay = target - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                    f.write(b"".join(self.frames[k * per:(k + 1) * per]))
                self.seconds = time.monotonic() - self.opened
        except OSError as e:
            self.error = str(e)


def sink_counters(stderr: str, kind: str):
    """The final counters of the clickstream exporter's sinks of `kind`
    (tcp, file): {name: value}."""
    return xh.sink_counters(xh.exporter_counters(stderr), CHANNEL, 0, "ipfix:" + kind + ":")


def exporter_counters(stderr: str):
    """The clickstream exporter's own final counters: {name: value}."""
    return {name: v for (ch, inst, sink, name), v in xh.exporter_counters(stderr).items()
            if (ch, inst, sink) == (CHANNEL, 0, "")}


def read_lines(path: Path):
    return path.read_text().splitlines() if path.exists() else []


def check_stat_lines(lines, counters, what, period_us=1_000_000):
    check(len(lines) >= 1, f"{what}: stat log has lines ({len(lines)})")
    bad = [l for l in lines if not STAT_RE.match(l)]
    check(not bad, f"{what}: every stat line has the seed's format", "\n".join(bad[:3]))
    a_sum = b_sum = 0
    for i, l in enumerate(lines):
        m = STAT_RE.match(l)
        if not m:
            continue
        a, b, c, d, e = int(m.group(8)), int(m.group(9)), m.group(10), int(m.group(11)), int(m.group(12))
        a_sum += a
        b_sum += b
        want = "0.00" if a == 0 else f"{(10000 * b + a // 2) // a // 100}.{(10000 * b + a // 2) // a % 100:02d}"
        check(c == want and abs(float(c) - (100.0 * b / a if a else 0.0)) <= 0.005,
              f"{what}: line {i + 1}: c = 100*b/a ({a}/{b}/{c}%)", l)
        if i + 1 < len(lines):  # periodic lines: e is the elapsed period, netflow_timeout plus at
            # most the cycle in which it expired (d) and a tick
            check(period_us <= e <= period_us + d + 500_000,
                  f"{what}: line {i + 1}: e={e}us is the actual period", l)
        check(b <= a and d >= 0, f"{what}: line {i + 1}: b <= a", l)
    check(a_sum == counters.get("send_cycles") and b_sum == counters.get("send_cycle_overruns"),
          f"{what}: stat lines add up to the exporter's cycles ({a_sum}/{b_sum} vs "
          f"{counters.get('send_cycles')}/{counters.get('send_cycle_overruns')})")
    check(counters.get("stat_lines") == len(lines), f"{what}: stat_lines counter matches the file")


def stuck_run(bin_dir: Path, work: Path, timeout: float):
    print("-- 1. collector that never reads")
    work.mkdir(parents=True, exist_ok=True)
    frames = http_frames(FLOWS, "stuck")
    fifo = work / "input.pcap"
    if fifo.exists():
        fifo.unlink()
    os.mkfifo(fifo)
    collector = stuck_collector()
    writer = fifo_writer(fifo, frames)
    try:
        res = mpi.run_appliance(bin_dir, fifo, work, config=CONFIG, groups=(), timeout=timeout,
                                extra_sets=[f"ipfix_tcp_collectors=127.0.0.1:{collector.port}",
                                            "ipfix_tcp_buffer=50", "dbg_log_mask=0x80",
                                            "netflow_timeout=1", "log_level=info"])
    finally:
        writer.thread.join(timeout=5)
        collector.close()
    check(not res.timed_out and res.returncode == 0,
          f"1: appliance exits 0 in bounded time (rc {res.returncode}, {res.seconds:.1f} s)", res.tail(25))
    check(collector.conns, "1: the exporter connected to the collector")
    check(writer.error is None and writer.seconds is not None and writer.seconds < PACE + 2.0,
          f"1: capture read the FIFO as it came, never held up by export "
          f"({writer.seconds if writer.seconds is None else round(writer.seconds, 2)} s for {PACE} s "
          f"of pacing, error {writer.error})")
    san = mpi.sanitizer_lines(res.stderr)
    check(not san, "1: no sanitizer report", "\n".join(san[:5]))

    tcp = sink_counters(res.stderr, "tcp")
    ex = exporter_counters(res.stderr)
    check(tcp.get("records_in") == FLOWS, f"1: every record reached the TCP sink ({tcp.get('records_in')})",
          res.tail(25))
    check(tcp.get("records_dropped", 0) > 0, f"1: records dropped and counted ({tcp.get('records_dropped')})")
    check(tcp.get("records_in") == tcp.get("records_sent", 0) + tcp.get("records_dropped", 0)
          + tcp.get("buffered_records", 0),
          f"1: records_in == records_sent + records_dropped + buffered_records "
          f"({tcp.get('records_in')} == {tcp.get('records_sent')} + {tcp.get('records_dropped')} + "
          f"{tcp.get('buffered_records')})")

    log = work / "log"
    alerts = read_lines(log / f"{LOG_TAG}_alert.log")
    check(alerts, f"1: alert log {LOG_TAG}_alert.log has lines ({len(alerts)})")
    bad = [l for l in alerts if not ALERT_RE.match(l)]
    check(not bad, "1: every alert line is an `[NFLW] very long operation` line naming the skipped records",
          "\n".join(bad[:3]))
    reported = sum(int(ALERT_RE.match(l).group(3)) for l in alerts if ALERT_RE.match(l))
    check(reported == tcp.get("records_dropped"),
          f"1: the alert lines report every dropped record ({reported} vs {tcp.get('records_dropped')})")
    check(len(alerts) <= (res.seconds + 2) * 2,
          f"1: alert lines are rate-limited ({len(alerts)} in {res.seconds:.1f} s)")
    check(ex.get("alert_lines") == len(alerts), "1: alert_lines counter matches the file")

    stats = read_lines(log / f"{LOG_TAG}_stat.log")
    check_stat_lines(stats, ex, "1")
    check(len(stats) >= int(PACE), f"1: a stat line every netflow_timeout (1 s) ({len(stats)} lines)")


def reading_run(bin_dir: Path, work: Path, timeout: float):
    print("-- 2. collector that reads (metaprobe-receiver)")
    work.mkdir(parents=True, exist_ok=True)
    pcap = work / "input.pcap"
    flows = FLOWS // 3
    pcap.write_bytes(gen.global_header() + b"".join(http_frames(flows, "read")))
    port = mpi.free_port("tcp")
    out = work / "received.json"
    rx = subprocess.Popen([str(mpi.find_bin(bin_dir, "metaprobe-receiver")), "--listen", f"tcp:127.0.0.1:{port}",
                           "--format", "json", "--output", str(out)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        time.sleep(0.3)  # listening
        res = mpi.run_appliance(bin_dir, pcap, work, config=CONFIG, groups=("clickstream",), timeout=timeout,
                                extra_sets=[f"ipfix_tcp_collectors=127.0.0.1:{port}", "dbg_log_mask=0x80",
                                            "netflow_timeout=1", "log_level=info"])
    finally:
        time.sleep(0.3)
        rx.send_signal(signal.SIGTERM)
        try:
            _, rx_err = rx.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            rx.kill()
            _, rx_err = rx.communicate()
    check(not res.timed_out and res.returncode == 0, f"2: appliance exits 0 (rc {res.returncode})", res.tail(25))
    tcp = sink_counters(res.stderr, "tcp")
    ex = exporter_counters(res.stderr)
    check(tcp.get("records_in") == flows and tcp.get("records_sent") == flows and tcp.get("records_dropped") == 0,
          f"2: all {flows} records sent, none dropped ({tcp})")
    received, bad = mpi.parse_json_lines(out.read_bytes() if out.exists() else b"")
    got = sum(1 for r in received if r.get("template") == "clickstream")
    check(got == flows and not bad, f"2: the receiver got every record ({got}, {bad} bad lines)",
          rx_err.decode("utf-8", "replace")[-500:])
    log = work / "log"
    alerts = read_lines(log / f"{LOG_TAG}_alert.log")
    check(not alerts, "2: no alert line with a reading collector", "\n".join(alerts[:3]))
    check_stat_lines(read_lines(log / f"{LOG_TAG}_stat.log"), ex, "2")

    # the IPFIX file ends with the exporter statistics record (written at close)
    argv = [str(mpi.find_bin(bin_dir, "metaprobe-receiver")), "--listen", f"file:{res.files['clickstream']}",
            "--format", "json", "--options"]
    dec = subprocess.run(argv, capture_output=True, timeout=60)
    records, _ = mpi.parse_json_lines(dec.stdout)
    stats = [r for r in records if r.get("template") == "exporter_stats"]
    data = [r for r in records if r.get("template") == "clickstream"]
    check(dec.returncode == 0 and len(data) == flows, f"2: the IPFIX file holds every record ({len(data)})",
          dec.stderr.decode("utf-8", "replace")[-500:])
    check(stats and records[-1].get("template") == "exporter_stats",
          f"2: the IPFIX file ends with an exporter statistics record ({len(stats)} found)")
    if stats:
        last = stats[-1]
        check(last.get("exportedFlowRecordTotalCount") == flows and last.get("notSentFlowTotalCount") == 0,
              f"2: its figures match the file ({json.dumps(last)})")
    fc = sink_counters(res.stderr, "file")
    check(fc.get("records_sent") == flows, f"2: file sink counters ({fc})")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--work-dir")
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args(argv)
    bin_dir = Path(args.bin_dir).resolve()
    for b in ("metaprobe", "metaprobe-capture", "metaprobe-exporter", "metaprobe-receiver"):
        mpi.find_bin(bin_dir, b)
    work = mpi.make_workdir(Path(args.work_dir) if args.work_dir else None, "slow-collector")
    stuck_run(bin_dir, work / "stuck", args.timeout)
    reading_run(bin_dir, work / "reading", args.timeout)
    return mpi.verdict(work)


if __name__ == "__main__":
    sys.exit(main())
