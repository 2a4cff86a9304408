#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Supervised exporters: SIGKILL during a run, and SIGHUP reload.

The appliance reads a capture from a FIFO that this script writes phase by
phase, so what happens between phases is decided here, not by timing. One
HTTP request per generated TCP flow gives one clickstream record; the IPFIX
exporter sends them over UDP to a metaprobe-receiver (JSON lines).

restart (publisher_block_ms=0):
  w1       single flows until one arrives: the exporter is connected
  phase 1  records arrive at the receiver
  phase 2  the exporter is stopped (SIGSTOP), the phase is published into
           its pipe, then it is killed (SIGKILL): what it had queued is lost
  w3       after the supervisor restarted it, records resume
  phase 3  all arrive
  phase 4  the exporter is killed while idle and the phase written at once:
           records published before ZeroMQ notices are lost in the dead
           pipe, those published while no exporter is connected are dropped
  w5       records resume after the second restart; phase 5 all arrive
  Checks: the appliance logs each crash with its signal and the restart
  delay (doubling); capture reads every packet and the run ends cleanly
  (exit 0); the channel's counted loss (publisher drops + lost in transit
  + lost inside the dead exporters) equals the records a clean run of the
  same input exports minus what the receiver got, and the exporter's and
  publisher's own counters agree with it.

reload:
  phase 1  subscriber 10.9.0.1 is "alice", one collector A
  SIGHUP   after the subscriber file says "bob" and the config adds a
           collector B
  phase 2  records carry LOGIN bob and reach A and B; A's session goes on
           (no sequence gap, no template loss: every record decoded), B
           gets only phase 2. A bad config on a second SIGHUP keeps
           everything running.

Usage: exporter_restart.py --bin-dir BUILD/bin [--work-dir DIR]   exit 0 pass, 1 fail
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mp_integration as mpi  # noqa: E402
import robustness as gen  # noqa: E402  (pcap writers)

failures = mpi.failures
check = mpi.check


def phase_frames(phase: int, flows: int, client=None) -> bytes:
    """`flows` TCP flows with one HTTP request each; host p<phase>-<i>.example."""
    frames = []
    for i in range(flows):
        c = client or f"10.8.{phase}.{i + 1}"
        req = (f"GET /r{i} HTTP/1.1\r\nHost: p{phase}-{i}.example\r\n\r\n").encode()
        gen.tcp_flow(frames, c, "10.7.0.1", 20000 + phase * 1000 + i, 80, [req],
                     1_600_000_000 + phase * 100 + i)
    return b"".join(frames)


def one_flow(host: str, port: int) -> bytes:
    frames = []
    req = f"GET / HTTP/1.1\r\nHost: {host}.example\r\n\r\n".encode()
    gen.tcp_flow(frames, "10.8.0.1", "10.7.0.1", port, 80, [req], 1_600_000_000)
    return b"".join(frames)


def packets_in(data: bytes) -> int:
    n, off = 0, 0
    while off + 16 <= len(data):
        incl = int.from_bytes(data[off + 8:off + 12], "little")
        off += 16 + incl
        n += 1
    return n


class receiver:
    """metaprobe-receiver on a UDP port, JSON lines into a file."""

    def __init__(self, bin_dir: Path, work: Path, name: str):
        self.port = mpi.free_port("udp")
        self.out = work / f"{name}.jsonl"
        self.err = work / f"{name}.err"
        self.proc = subprocess.Popen(
            [str(mpi.find_bin(bin_dir, "metaprobe-receiver")), "--listen",
             f"udp:127.0.0.1:{self.port}", "--format", "json", "--output", str(self.out)],
            stdout=subprocess.DEVNULL, stderr=open(self.err, "wb"), start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "listening" not in self.stderr():
            time.sleep(0.05)

    def stderr(self) -> str:
        try:
            return self.err.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def records(self):
        try:
            data = self.out.read_bytes()
        except FileNotFoundError:
            return []
        recs, _ = mpi.parse_json_lines(data)  # a half-written last line is skipped
        return [r for r in recs if r.get("template") == "clickstream"]

    def hosts(self):
        return [str(r.get("HOSTNAME", "")).lower() for r in self.records()]

    def wait_hosts(self, predicate, count: int, timeout: float) -> int:
        deadline = time.monotonic() + timeout
        n = 0
        while time.monotonic() < deadline:
            n = sum(1 for h in self.hosts() if predicate(h))
            if n >= count:
                break
            time.sleep(0.05)
        return n

    def stop(self) -> str:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        return self.stderr()


class appliance:
    """`metaprobe --config CONF` reading a FIFO this object writes."""

    def __init__(self, bin_dir: Path, work: Path, conf: Path, fifo: Path, sets=()):
        self.fifo = fifo
        os.mkfifo(fifo)
        # O_RDWR: never blocks and keeps a writer present, so capture's
        # opens (and closes) of the FIFO never see an early end of file
        self.fd = os.open(fifo, os.O_RDWR)
        self.err_path = work / f"{conf.stem}.log"
        argv = [str(mpi.find_bin(bin_dir, "metaprobe")), "--config", str(conf)]
        for s in sets:
            argv += ["--set", s]
        self.proc = subprocess.Popen(argv, cwd=str(work), stdout=subprocess.DEVNULL,
                                     stderr=open(self.err_path, "wb"), start_new_session=True)
        self.written = 0
        self.frames = []  # every pcap record written, for the clean run

    def log(self) -> str:
        return self.err_path.read_text(errors="replace")

    def write(self, frames: bytes, header=False):
        """Writes pcap records (after the file header when `header`)."""
        view = memoryview((gen.global_header() if header else b"") + frames)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]
        self.written += packets_in(frames)
        self.frames.append(frames)

    def write_until_received(self, rx, tag: str, timeout: float = 30) -> int:
        """Writes one flow (host <tag>-<k>.example) at a time until the
        receiver has one of them: the exporter is connected. Returns the
        flows written."""
        deadline = time.monotonic() + timeout
        k = 0
        while time.monotonic() < deadline:
            self.write(one_flow(f"{tag}-{k}", 9000 + k))
            k += 1
            if rx.wait_hosts(lambda h: h.startswith(tag + "-"), 1, 0.5):
                return k
        return 0

    def wait_log(self, pattern: str, count: int = 1, timeout: float = 20) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if len(re.findall(pattern, self.log())) >= count:
                return True
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        return len(re.findall(pattern, self.log())) >= count

    def exporter_pid(self, name="clickstream.ipfix#0"):
        pids = re.findall(r"(?:started|restarted) exporter " + re.escape(name) + r" \(pid (\d+)\)",
                          self.log())
        return int(pids[-1]) if pids else None

    def finish(self, timeout: float):
        os.close(self.fd)  # end of file: capture finishes the run
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            rc = None
        return rc, self.log()


def write_conf(path: Path, work: Path, fifo: Path, endpoint: str, collectors, extra=()):
    lines = [f"input=pcap:{fifo}", f"channel_endpoint={endpoint}",
             f"log_dir={work / 'log'}", f"run_dir={work / 'run'}",
             "ipfix_udp_collectors=" + ",".join(f"127.0.0.1:{p}" for p in collectors),
             "batch_size=1", "log_level=info", "exporter_restart_min=0.2",
             "exporter_restart_max=30"] + list(extra)
    path.write_text("\n".join(lines) + "\n")


def counter(log: str, name: str):
    m = re.findall(re.escape(name) + r" = (\d+)", log)
    return int(m[-1]) if m else None


def clean_run_records(bin_dir: Path, work: Path, data: bytes, timeout: float):
    """Clickstream records of one run of the same input with no kill."""
    pcap = work / "clean.pcap"
    pcap.write_bytes(data)
    res = mpi.run_appliance(bin_dir, pcap, work / "clean", groups=("clickstream",),
                            timeout=timeout)
    recs, err = mpi.decode_ipfix(bin_dir, res.files["clickstream"])
    return res, [r for r in recs if r.get("template") == "clickstream"], err


def test_restart(bin_dir: Path, work: Path, timeout: float):
    flows = 40
    rx = receiver(bin_dir, work, "restart-rx")
    conf = work / "restart.conf"
    with mpi.channel_dir("restart") as endpoint:
        write_conf(conf, work, work / "restart.fifo", endpoint, [rx.port],
                   ["publisher_block_ms=0"])
        app = appliance(bin_dir, work, conf, work / "restart.fifo")
        try:
            check(app.wait_log(r"started capture"), "restart: appliance started", app.log()[-2000:])
            app.write(b"", header=True)
            check(app.write_until_received(rx, "w1") > 0, "restart: the exporter is connected")
            app.write(phase_frames(1, flows))
            n = rx.wait_hosts(lambda h: h.startswith("p1-"), flows, 30)
            check(n == flows, f"restart: phase 1 records arrive ({n}/{flows})", app.log()[-2000:])

            # phase 2 into a stopped exporter, then kill it
            pid = app.exporter_pid()
            check(pid is not None, "restart: exporter pid in the appliance log")
            os.kill(pid, signal.SIGSTOP)
            app.write(phase_frames(2, flows))
            time.sleep(1.5)  # capture publishes phase 2 into the stopped exporter's pipe
            os.kill(pid, signal.SIGKILL)
            check(app.wait_log(r"exporter clickstream\.ipfix#0 killed by signal 9 \(SIGKILL\): "
                               r"restart 1 in 0\.2 s"),
                  "restart: the crash is logged with its signal and the backoff", app.log()[-2000:])
            check(app.wait_log(r"restarted exporter clickstream\.ipfix#0 \(pid \d+\)"),
                  "restart: the supervisor restarts the exporter", app.log()[-2000:])
            new_pid = app.exporter_pid()
            check(new_pid is not None and new_pid != pid, "restart: a new exporter process")
            check(app.write_until_received(rx, "w3") > 0, "restart: records resume after the restart")
            app.write(phase_frames(3, flows))
            n = rx.wait_hosts(lambda h: h.startswith("p3-"), flows, 30)
            check(n == flows, f"restart: phase 3 arrives ({n}/{flows})", app.log()[-2000:])

            # phase 4: kill while idle and publish at once
            os.kill(app.exporter_pid(), signal.SIGKILL)
            app.write(phase_frames(4, flows))
            check(app.wait_log(r"restarted exporter clickstream\.ipfix#0 \(pid \d+\)", 2),
                  "restart: restarted a second time", app.log()[-2000:])
            check(app.wait_log(r"killed by signal 9 \(SIGKILL\): restart 2 in 0\.4 s"),
                  "restart: the second quick crash doubles the delay", app.log()[-2000:])
            check(app.write_until_received(rx, "w5") > 0,
                  "restart: records resume after the second restart")
            app.write(phase_frames(5, flows))
            n = rx.wait_hosts(lambda h: h.startswith("p5-"), flows, 30)
            check(n == flows, f"restart: phase 5 arrives ({n}/{flows})", app.log()[-2000:])
        finally:
            rc, log = app.finish(timeout)
    time.sleep(0.5)  # the last UDP messages
    rx_err = rx.stop()
    got = rx.records()
    check(rc == 0, f"restart: the appliance ends cleanly (exit {rc})", log[-3000:])
    check("capture failed" not in log and "capture killed" not in log,
          "restart: capture is unaffected by the exporter crashes")
    packets = counter(log, "capture.packets")
    check(packets == app.written, f"restart: capture read every packet ({packets}/{app.written})")

    # what one run of the same input without kills exports
    res, clean, err = clean_run_records(bin_dir, work, gen.global_header() + b"".join(app.frames),
                                        timeout)
    check(res.returncode == 0 and err is None, "restart: the clean run of the same input works",
          err or res.tail())
    expected = len(clean)

    m = re.search(r"channel clickstream\.ipfix: (\d+) record\(s\) offered, (\d+) dropped by the "
                  r"publisher, (\d+) received by exporters, (\d+) lost in transit to crashed "
                  r"exporters, (\d+) lost inside them \((\d+) crash\(es\)\)", log)
    if not check(m is not None, "restart: the appliance logs the channel's loss", log[-3000:]):
        return
    offered, dropped, received, transit, inside, crashes = map(int, m.groups())
    lost = dropped + transit + inside
    print(f"     clean run {expected}; offered {offered}, publisher dropped {dropped}, received "
          f"{received}, transit {transit}, inside {inside}, crashes {crashes}; receiver got "
          f"{len(got)}")
    check(offered == expected, f"restart: records offered == a clean run's ({offered}/{expected})")
    check(crashes == 2, f"restart: two crashes counted ({crashes})")
    # phase 2 sat in the stopped exporter's pipe: lost in transit for sure;
    # phase 4 is dropped by the publisher or lost in the dead pipe, depending
    # on when ZeroMQ notices the death (both counted)
    check(transit >= flows, f"restart: the stopped-then-killed exporter's queue is counted lost "
                            f"in transit ({transit} >= {flows})")
    check(lost == expected - len(got),
          f"restart: counted loss {lost} == records the receiver missed {expected - len(got)}",
          rx_err[-1500:])
    check(len(set(r.get("HOSTNAME", "").lower() for r in got)) == len(got),
          "restart: no record arrived twice")
    # the counters of the processes themselves agree
    check(counter(log, "publisher.clickstream.ipfix.records_dropped") == dropped,
          "restart: the publisher's drop counter agrees")
    check(counter(log, "exporter.clickstream.ipfix.0.lost_in_transit") == transit,
          "restart: the exporter's lost_in_transit counter agrees")
    check(counter(log, "exporter.clickstream.ipfix.0.restarts") == 2,
          "restart: the exporter counts its restarts")


def test_reload(bin_dir: Path, work: Path, timeout: float):
    flows = 10
    subs = work / "subs.txt"
    subs.write_text("10.9.0.1 alice\n")
    rx_a = receiver(bin_dir, work, "reload-a")
    rx_b = receiver(bin_dir, work, "reload-b")
    conf = work / "reload.conf"
    fifo = work / "reload.fifo"
    with mpi.channel_dir("reload") as endpoint:
        write_conf(conf, work, fifo, endpoint, [rx_a.port], [f"subscribers_file={subs}"])
        app = appliance(bin_dir, work, conf, fifo)
        try:
            check(app.wait_log(r"started capture"), "reload: appliance started")
            app.write(phase_frames(1, flows, client="10.9.0.1"), header=True)
            n = rx_a.wait_hosts(lambda h: h.startswith("p1-"), flows, 30)
            check(n == flows, f"reload: phase 1 reaches A ({n}/{flows})", app.log()[-2000:])

            subs.write_text("10.9.0.1 bob\n")
            write_conf(conf, work, fifo, endpoint, [rx_a.port, rx_b.port],
                       [f"subscribers_file={subs}"])
            os.kill(app.proc.pid, signal.SIGHUP)
            check(app.wait_log(r"reloaded: subscriber map .* \(1 entries\)"),
                  "reload: capture reloads the subscriber map", app.log()[-2000:])
            check(app.wait_log(r"reloaded: 1 sink\(s\) kept, 1 added, 0 removed"),
                  "reload: the exporter keeps collector A and adds B", app.log()[-2000:])

            app.write(phase_frames(2, flows, client="10.9.0.1"))
            na = rx_a.wait_hosts(lambda h: h.startswith("p2-"), flows, 30)
            nb = rx_b.wait_hosts(lambda h: h.startswith("p2-"), flows, 30)
            check(na == flows and nb == flows,
                  f"reload: phase 2 reaches A ({na}) and the new collector B ({nb})")

            # a bad configuration keeps what runs
            conf.write_text(conf.read_text() + "no_such_key=1\n")
            os.kill(app.proc.pid, signal.SIGHUP)
            check(app.wait_log(r"reload failed, the running configuration stays", 1) and
                  app.wait_log(r"reload failed, the running subscriber map stays", 1),
                  "reload: a bad configuration is reported and the old one kept",
                  app.log()[-2000:])
            app.write(phase_frames(3, flows, client="10.9.0.1"))
            na = rx_a.wait_hosts(lambda h: h.startswith("p3-"), flows, 30)
            check(na == flows, f"reload: records still flow after the bad reload ({na})")
        finally:
            rc, log = app.finish(timeout)
    time.sleep(0.3)
    err_a, err_b = rx_a.stop(), rx_b.stop()
    check(rc == 0, f"reload: the appliance ends cleanly (exit {rc})", log[-3000:])
    recs_a, recs_b = rx_a.records(), rx_b.records()
    login = {}
    for r in recs_a + recs_b:
        login.setdefault(str(r.get("HOSTNAME", "")).lower()[:3], set()).add(r.get("LOGIN"))
    check(login.get("p1-") == {"alice"}, f"reload: phase 1 carries LOGIN alice ({login.get('p1-')})")
    check(login.get("p2-") == {"bob"}, f"reload: phase 2 carries the new LOGIN bob "
                                       f"({login.get('p2-')})")
    check(len(recs_a) == 3 * flows, f"reload: A got all {3 * flows} records ({len(recs_a)})")
    check(len(recs_b) == 2 * flows and all(not str(r.get("HOSTNAME", "")).lower()
                                           .startswith("p1-") for r in recs_b),
          f"reload: B got phases 2 and 3 only ({len(recs_b)})")
    # A's session went on: one exporter session, no gap, no set without template
    sessions_a = re.findall(r"exporter \S+ domain \d+: \d+ message\(s\), (\d+) record\(s\)[^\n]*?, "
                            r"(\d+) gap\(s\)", err_a)
    check(len(sessions_a) >= 1 and all(int(g) == 0 for _, g in sessions_a),
          f"reload: collector A saw no sequence gap ({sessions_a})", err_a[-1500:])
    m = re.search(r"(\d+) set\(s\) without template", err_a)
    check(m is not None and int(m.group(1)) == 0, "reload: collector A never lost its templates",
          err_a[-1500:])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--work-dir")
    ap.add_argument("--timeout", type=float, default=60.0)
    args = ap.parse_args(argv)
    bin_dir = Path(args.bin_dir).resolve()
    for b in ("metaprobe", "metaprobe-capture", "metaprobe-exporter", "metaprobe-receiver"):
        mpi.find_bin(bin_dir, b)
    work = mpi.make_workdir(Path(args.work_dir) if args.work_dir else None, "exporter-restart")
    t0 = time.monotonic()
    test_restart(bin_dir, work, args.timeout)
    test_reload(bin_dir, work, args.timeout)
    print(f"exporter_restart: {time.monotonic() - t0:.1f} s")
    if failures:
        print(f"{len(failures)} check(s) failed; work dir kept: {work}")
        return 1
    shutil.rmtree(work, ignore_errors=True)
    print("exporter_restart: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
