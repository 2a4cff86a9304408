# SPDX-License-Identifier: Apache-2.0
"""Helpers of the IPFIX export tests that drive the appliance step by step
(collector_restart.py, late_receiver.py, exporter_instances.py):

- DNS query frames whose record count is known (one question: one record),
- a capture fed through a FIFO (input=pcap:FIFO, batch_size=1) so a test
  decides when which packets reach the appliance,
- metaprobe-receiver processes started, counted, killed and read back,
- the exporter's final counter lines parsed from the appliance's stderr.

Standard library only. Processes run in their own process groups; stop()
ends what a test started.
"""

import errno
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import mp_integration as mpi
import robustness as gen  # pcap writers


def dns_query_frames(first: int, count: int, t0: int = 1_700_000_000) -> bytes:
    """`count` DNS queries over UDP, one question each (q<i>.collect.test),
    from a new client port each: metaprobe makes one dns record of each."""
    out = []
    for i in range(first, first + count):
        labels = [f"q{i}".encode(), b"collect", b"test"]
        qname = b"".join(bytes([len(l)]) + l for l in labels) + b"\0"
        body = qname + b"\x00\x01\x00\x01"  # A, IN
        msg = gen.dns_msg(qd=1, an=0, body=body)
        msg = bytes([i >> 8 & 0xFF, i & 0xFF]) + msg[2:]  # DNS id
        frame = gen.eth_ipv4(17, "10.9.0.2", "10.9.0.53", gen.udp(20000 + i % 40000, 53, msg))
        out.append(gen.record(frame, t0 + i // 1000, (i % 1000) * 1000))
    return b"".join(out)


def wait_until(pred: Callable[[], bool], timeout: float, step: float = 0.05) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()


def wait_stable(value: Callable[[], int], want: int, timeout: float, settle: float = 0.4) -> int:
    """Waits until value() reaches `want` (or the timeout), then `settle`
    seconds more; returns the value then (more than `want` shows up too)."""
    wait_until(lambda: value() >= want, timeout)
    time.sleep(settle)
    return value()


class fifo_feed:
    """The write end of a FIFO the appliance reads as its capture file.
    open() waits (bounded) until the reader opened it; close() is the end of
    the capture."""

    def __init__(self, path: Path):
        self.path = path
        os.mkfifo(str(path), 0o600)
        self.fd = -1

    def open(self, timeout: float, alive: Callable[[], bool]) -> bool:
        end = time.monotonic() + timeout
        while time.monotonic() < end and alive():
            try:
                fd = os.open(str(self.path), os.O_WRONLY | os.O_NONBLOCK)
            except OSError as e:
                if e.errno != errno.ENXIO:  # ENXIO: no reader yet
                    raise
                time.sleep(0.02)
                continue
            os.set_blocking(fd, True)
            self.fd = fd
            return True
        return False

    def write(self, data: bytes):
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]

    def close(self):
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def channel_peers(endpoint: str, channel: str) -> int:
    """Connections accepted on the ipc:// channel `channel` (e.g.
    "dns-ipfix") of `endpoint`: one per exporter instance connected
    (Linux /proc/net/unix: accepted sockets carry the bound path, state 03)."""
    path = endpoint[len("ipc://"):] + "-" + channel
    n = 0
    try:
        with open("/proc/net/unix") as f:
            next(f)
            for line in f:
                cols = line.split()
                if len(cols) >= 8 and cols[7] == path and cols[5] == "03":
                    n += 1
    except OSError:
        return 0
    return n


class receiver:
    """metaprobe-receiver --format json, stdout and stderr into files of
    `work` named after `tag`."""

    def __init__(self, bin_dir: Path, work: Path, tag: str, listen: str, extra=()):
        self.out = work / f"{tag}.jsonl"
        self.err = work / f"{tag}.stderr"
        argv = [str(mpi.find_bin(bin_dir, "metaprobe-receiver")), "--listen", listen,
                "--format", "json"] + list(extra)
        with open(self.out, "wb") as o, open(self.err, "wb") as e:
            self.proc = subprocess.Popen(argv, stdout=o, stderr=e, start_new_session=True)
        self.address = ""
        if listen.startswith(("udp:", "tcp:")):
            wait_until(lambda: self._listening() or self.proc.poll() is not None, 20)

    def _listening(self) -> bool:
        m = re.search(r"listening on (?:udp|tcp):(\S+)", self.stderr())
        if m:
            self.address = m.group(1)
        return bool(m)

    def stderr(self) -> str:
        try:
            return self.err.read_text("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def records(self) -> List[dict]:
        recs, _ = mpi.parse_json_lines(self.out.read_bytes())
        return recs

    def count(self) -> int:
        return sum(1 for l in self.out.read_bytes().splitlines() if l.strip())

    def kill(self, sig=signal.SIGKILL, timeout: float = 20) -> Optional[int]:
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                pass
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
            return None

    def json_lines(self, key: str) -> List[dict]:
        out = []
        for l in self.stderr().splitlines():
            if l.startswith("{"):
                try:
                    d = json.loads(l)
                except ValueError:
                    continue
                if key in d:
                    out.append(d)
        return out

    def events(self) -> List[dict]:
        return self.json_lines("event")

    def summary(self) -> Optional[dict]:
        s = self.json_lines("summary")
        return s[-1]["summary"] if s else None


def appliance(bin_dir: Path, work: Path, endpoint: str, sets: List[str]) -> subprocess.Popen:
    """metaprobe with the test config and `sets`; stderr and stdout into
    work/appliance.log."""
    argv = [str(mpi.find_bin(bin_dir, "metaprobe")), "--config",
            str(Path(__file__).resolve().parent / "configs" / "truth.conf")]
    base = [f"channel_endpoint={endpoint}", f"log_dir={work / 'log'}", f"run_dir={work / 'run'}",
            "log_level=info"]
    for s in base + sets:
        argv += ["--set", s]
    log = open(work / "appliance.log", "wb")
    proc = subprocess.Popen(argv, cwd=str(work), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    log.close()
    return proc


def finish(proc: subprocess.Popen, timeout: float) -> Optional[int]:
    """Waits for the process; on timeout kills its group and returns None."""
    try:
        return proc.wait(timeout)
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
        return None


# exporter.<group>.<kind>.<instance>.[<sink>.]<counter>[{label}] = <value>
COUNTER_LINE = re.compile(
    r"exporter\.(\w+\.\w+)\.(\d+)\.(?:(ipfix:\S+?)\.)?(\w+)(?:\{[^}]*\})? = (\d+)\s*$")


def exporter_counters(log: str) -> Dict[tuple, int]:
    """Final counters the exporters log at exit: (channel, instance, sink or
    '', counter) -> value."""
    out = {}
    for line in log.splitlines():
        m = COUNTER_LINE.search(line)
        if m:
            ch, inst, sink, name, value = m.groups()
            out[(ch, int(inst), sink or "", name)] = int(value)
    return out


def sink_counters(counters: Dict[tuple, int], channel: str, instance: int, sink_prefix: str):
    """{counter: value} of the one sink of (channel, instance) whose name
    starts with sink_prefix (e.g. "ipfix:tcp:")."""
    out = {}
    for (ch, inst, sink, name), v in counters.items():
        if ch == channel and inst == instance and sink.startswith(sink_prefix):
            out[name] = v
    return out


def http_request_frames(count: int, t0: int = 1_700_000_000) -> bytes:
    """`count` HTTP GET requests, one TCP connection each: one clickstream
    record each."""
    frames = []
    for i in range(count):
        req = f"GET /item/{i} HTTP/1.1\r\nHost: shop{i}.collect.test\r\n\r\n".encode()
        gen.tcp_flow(frames, "10.9.1.2", "10.9.1.80", 30000 + i, 80, [req], t0 + i)
    return b"".join(frames)


def read_ipfix_file(bin_dir: Path, path: Path, timeout: float = 60):
    """metaprobe-receiver over one IPFIX file: (records, JSON summary or
    None, exit code, stderr)."""
    argv = [str(mpi.find_bin(bin_dir, "metaprobe-receiver")), "--listen", f"file:{path}",
            "--format", "json"]
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    records, _ = mpi.parse_json_lines(p.stdout)
    err = p.stderr.decode("utf-8", "replace")
    summary = None
    for l in err.splitlines():
        if l.startswith('{"summary"'):
            summary = json.loads(l)["summary"]
    return records, summary, p.returncode, err
