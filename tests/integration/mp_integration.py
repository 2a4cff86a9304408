# SPDX-License-Identifier: Apache-2.0
"""Shared helpers of the integration tests: locating the corpus and the
binaries, running the appliance on one capture with a private temp dir and
ZeroMQ endpoint, decoding its IPFIX files with metaprobe-receiver.

Standard library only. Every test script exits with SKIP (77, ctest
SKIP_RETURN_CODE) when the corpus is missing, 0 on success, 1 on failure.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

SKIP = 77

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
DEFAULT_CORPUS = REPO.parent / "shared" / "corpus" / "public"

# Lines in stderr that mean a sanitizer or the runtime caught something.
SANITIZER_MARKERS = (
    "ERROR: AddressSanitizer",
    "ERROR: LeakSanitizer",
    "runtime error:",
    "SUMMARY: AddressSanitizer",
    "SUMMARY: UndefinedBehaviorSanitizer",
    "ThreadSanitizer",
)


# Checks of a test script: each prints "ok" or "FAIL" with what it checked;
# failed ones are collected in `failures` (the script's exit status).
failures: List[str] = []


def free_port(kind: str = "udp", offsets=(0,)) -> int:
    """A loopback port free now (or a base port whose base+offset ports all
    are), chosen below the kernel's ephemeral range
    (net.ipv4.ip_local_port_range).

    Ports found by binding port 0 come from the ephemeral range, and the
    kernel hands the same range out to every other socket on the machine
    (another test running in parallel, or the exporter's own connected UDP
    socket): a port that a test leaves unbound for a while (a collector
    that starts late) can be taken in between. Below the range only an
    explicit bind can take it, so the tests pick their ports there.
    """
    import random
    import socket
    low = 32768
    try:
        low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        pass
    span = max(offsets)
    lo, hi = 10000, max(10000 + span + 1, low - span - 1)
    socktype = socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM
    for _ in range(200):
        base = random.randint(lo, hi)
        socks = []
        try:
            for off in offsets:
                s = socket.socket(socket.AF_INET, socktype)
                socks.append(s)
                if socktype == socket.SOCK_STREAM:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                s.bind(("127.0.0.1", base + off))
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError(f"no free {kind} port below {low}")


def check(cond, what: str, detail="") -> bool:
    print(("ok   " if cond else "FAIL ") + what)
    if not cond:
        failures.append(what)
        if detail:
            print("     " + str(detail).replace("\n", "\n     "))
    return bool(cond)


def verdict(work) -> int:
    """A script's exit status from `failures`: 1 (naming the work dir that
    is left for a look) when a check failed, else 0."""
    if failures:
        print(f"{len(failures)} check(s) failed; work dir {work}")
        return 1
    print("all checks passed")
    return 0


def corpus_or_skip(path: Optional[str]) -> Path:
    """The corpus folder, or exit SKIP with a message when it is absent."""
    p = Path(path) if path else DEFAULT_CORPUS
    if not (p / "truth").is_dir():
        print(f"SKIP: capture corpus not found at {p} (set METAPROBE_CORPUS)")
        sys.exit(SKIP)
    return p


def find_bin(bin_dir: Path, name: str) -> Path:
    p = Path(bin_dir) / name
    if not os.access(p, os.X_OK):
        raise FileNotFoundError(f"{p} is missing: build the target '{name}' first")
    return p


class channel_dir:
    """A private folder for the ZeroMQ ipc sockets of one run
    (/tmp/mp-test-<tag>-XXXX: short, as sun_path holds 108 bytes), removed
    with whatever socket files the processes leave behind.

        with channel_dir("x") as ep: ... --set channel_endpoint=ep ...
    """

    def __init__(self, tag: str):
        self.dir = tempfile.mkdtemp(prefix=f"mp-test-{tag[:12]}-", dir="/tmp")
        self.endpoint = f"ipc://{self.dir}/ch"

    def __enter__(self) -> str:
        return self.endpoint

    def __exit__(self, *exc):
        shutil.rmtree(self.dir, ignore_errors=True)
        return False


def sanitizer_lines(text: str) -> List[str]:
    return [l for l in text.splitlines() if any(m in l for m in SANITIZER_MARKERS)]


@dataclass
class run_result:
    returncode: Optional[int]  # None: timed out (killed by us)
    stderr: str
    seconds: float
    workdir: Path
    files: Dict[str, Path] = field(default_factory=dict)

    @property
    def timed_out(self) -> bool:
        return self.returncode is None

    @property
    def signalled(self) -> bool:
        return self.returncode is not None and self.returncode < 0

    def tail(self, n: int = 15) -> str:
        """The lines worth reading: warnings, errors, sanitizer summaries
        (stack frames and shadow-memory dumps left out), at most n."""
        keep = []
        for l in self.stderr.splitlines():
            low = l.lower()
            if l.lstrip().startswith("#") or "shadow" in low or l.lstrip().startswith("0x"):
                continue
            if any(k in low for k in ("error", "warn", "summary", "fail", "signal", "cannot",
                                      "abort", "killed", "terminate")):
                keep.append(l)
        if not keep:
            keep = self.stderr.splitlines()[-n:]
        return "\n".join(keep[-n:])


def run_process(argv: List[str], cwd: Path, timeout: float, env=None) -> run_result:
    """Runs argv in its own process group; on timeout the whole group is
    killed (the appliance and its children) and returncode is None."""
    t0 = time.monotonic()
    proc = subprocess.Popen(argv, cwd=str(cwd), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True, env=env)
    try:
        out, err = proc.communicate(timeout=timeout)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = proc.communicate()
        rc = None
    text = err.decode("utf-8", "replace") + out.decode("utf-8", "replace")
    return run_result(rc, text, time.monotonic() - t0, cwd)


# The appliance's IPFIX file keys and the text keys, per channel group.
IPFIX_FILE_KEYS = {
    "clickstream": "ipfix_file",
    "meta": "ipfix_meta_file",
    "dns": "ipfix_dns_file",
    "fullflow": "ipfix_full_file",
}


def appliance_command(bin_dir: Path, input_spec: str, workdir: Path,
                      config: Optional[Path] = None, groups=("clickstream", "dns"), text=False,
                      extra_sets=()):
    """argv of `metaprobe` reading `input_spec` (an `input` value) with the
    IPFIX files of `groups` in workdir/<group>.ipfix, and with text=True
    every text export in workdir/text. Returns (argv, files, channels): the
    run must happen inside `with channels:` (its own channel endpoint; log
    and run dirs in workdir, so parallel runs never collide)."""
    workdir.mkdir(parents=True, exist_ok=True)
    argv = [str(find_bin(bin_dir, "metaprobe"))]
    if config:
        argv += ["--config", str(config)]
    channels = channel_dir(workdir.name[3:])
    sets = [
        f"input={input_spec}",
        f"channel_endpoint={channels.endpoint}",
        f"log_dir={workdir / 'log'}",
        f"run_dir={workdir / 'run'}",
    ]
    files = {}
    for g in groups:
        files[g] = workdir / f"{g}.ipfix"
        sets.append(f"{IPFIX_FILE_KEYS[g]}={files[g]}")
    if text:
        tdir = workdir / "text"
        tdir.mkdir(exist_ok=True)
        sets += [f"ajb_save_url=1", f"ajb_url_path={tdir}",
                 f"ajb_save_ssl=-1", f"ajb_ssl_path={tdir}",
                 f"ajb_save_sip=1", f"ajb_sip_path={tdir}",
                 f"ajb_save_dns=1", f"ajb_dns_path={tdir}"]
    sets += list(extra_sets)
    for s in sets:
        argv += ["--set", s]
    return argv, files, channels


def run_appliance(bin_dir: Path, capture: Path, workdir: Path, config: Optional[Path] = None,
                  groups=("clickstream", "dns"), text=False, extra_sets=(),
                  timeout: float = 120.0) -> run_result:
    """Runs `metaprobe` on one capture file (see appliance_command)."""
    argv, files, channels = appliance_command(bin_dir, f"pcap:{capture}", workdir, config,
                                              groups, text, extra_sets)
    with channels:
        res = run_process(argv, workdir, timeout)
    res.files = files
    return res


def decode_ipfix(bin_dir: Path, ipfix_file: Path, timeout: float = 60.0):
    """Decodes one IPFIX file with metaprobe-receiver. Returns (records,
    error); error is None when the receiver exited 0."""
    if not ipfix_file.exists():
        return [], f"{ipfix_file.name} was not written"
    argv = [str(find_bin(bin_dir, "metaprobe-receiver")), "--listen", f"file:{ipfix_file}",
            "--format", "json"]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return [], f"metaprobe-receiver did not finish {ipfix_file.name} within {timeout:.0f} s"
    records, bad = parse_json_lines(out)
    errors = []
    if proc.returncode != 0:
        errors.append(f"metaprobe-receiver exited {proc.returncode} on {ipfix_file.name}: "
                      + err.decode("utf-8", "replace").strip()[-500:])
    if bad:
        errors.append(f"{bad} output lines of metaprobe-receiver are not JSON objects")
    # the receiver's summary line counts what it could not decode
    for m in re.finditer(r"(\d+) (decode error|framing error|sequence gap|set\(s\) without template)",
                         err.decode("utf-8", "replace")):
        if int(m.group(1)) > 0:
            errors.append(f"metaprobe-receiver on {ipfix_file.name}: {m.group(1)} {m.group(2)}(s)")
    san = sanitizer_lines(err.decode("utf-8", "replace"))
    if san:
        errors.append("sanitizer report in metaprobe-receiver: " + san[0])
    return records, ("; ".join(errors) if errors else None)


def parse_json_lines(data: bytes):
    records, bad = [], 0
    for line in data.decode("utf-8", "surrogateescape").splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            r = json.loads(line)
        except ValueError:
            bad += 1
            continue
        if isinstance(r, dict):
            records.append(r)
        else:
            bad += 1
    return records, bad


def make_workdir(parent: Optional[Path], name: str) -> Path:
    base = Path(parent) if parent else Path(tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f"mp-{name[:40]}-", dir=str(base)))


def exported_records(bin_dir: Path, files: Dict[str, Path]):
    """Decodes the IPFIX file of every group in `files`. Returns (records,
    error): each record is tagged with its group under the key "group"."""
    out, errors = [], []
    for g, f in sorted(files.items()):
        recs, err = decode_ipfix(bin_dir, f)
        if err:
            errors.append(err)
        for r in recs:
            r["group"] = g
            out.append(r)
    return out, ("; ".join(errors) if errors else None)


def record_key(r: dict, drop=("SESSION_ID",)) -> tuple:
    """A record as a hashable value, without the fields in `drop`."""
    return tuple(sorted((k, json.dumps(v, sort_keys=True)) for k, v in r.items() if k not in drop))


def sessions_multiset(records, drop=()):
    """The records as a multiset (collections.Counter) of sessions: each
    element is the sorted tuple of the records (without SESSION_ID and the
    fields in `drop`) that share one SESSION_ID value. SESSION_ID values
    depend on the run (start time, worker number: see
    actors/classifier/session_id.hpp); which records share one does not."""
    from collections import Counter, defaultdict
    by_id = defaultdict(list)
    for i, r in enumerate(records):
        sid = r.get("SESSION_ID")
        by_id[sid if sid is not None else ("none", i)].append(
            record_key(r, ("SESSION_ID",) + tuple(drop)))
    return Counter(tuple(sorted(v)) for v in by_id.values())


def describe_difference(a_name: str, a, b_name: str, b, limit: int = 6) -> List[str]:
    """Lines naming the records one Counter of record keys has and the other
    lacks (at most `limit` each way)."""
    lines = []
    for name, x, y in ((a_name, a, b), (b_name, b, a)):
        extra = list((x - y).elements())
        for k in extra[:limit]:
            lines.append(f"only in {name}: " + ", ".join(f"{f}={v}" for f, v in k)[:400])
        if len(extra) > limit:
            lines.append(f"... and {len(extra) - limit} more only in {name}")
    return lines


class tcp_collector:
    """Accepts IPFIX over TCP on loopback and discards it."""

    def __init__(self):
        import socket
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(4)
        self.port = self.sock.getsockname()[1]
        self.bytes = 0
        threading.Thread(target=self.run, daemon=True).start()

    def run(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.drain, args=(c,), daemon=True).start()

    def drain(self, c):
        while True:
            try:
                d = c.recv(65536)
            except OSError:
                return
            if not d:
                return
            self.bytes += len(d)


class fifo_appliance:
    """The appliance reading a capture through a FIFO that the test keeps
    open, so that it keeps running until finish():

        app = fifo_appliance(bin_dir, work, config, sets)  # sets: key=value, input= added
        try:
            if not check(app.feed(capture, deadline), "capture opened the FIFO input"):
                return
            ... the appliance runs ...
        finally:
            app.finish(timeout)  # closes the FIFO; checks exit 0, no sanitizer report

    Its output goes to work/appliance.log.
    """

    def __init__(self, bin_dir: Path, work: Path, config: Path, sets: List[str]):
        self.work = work
        self.fifo = work / "in.pcap"
        os.mkfifo(self.fifo)
        argv = [str(find_bin(bin_dir, "metaprobe")), "--config", str(config)]
        for s in [f"input=pcap:{self.fifo}"] + sets:
            argv += ["--set", s]
        self.log = open(work / "appliance.log", "wb")
        self.proc = subprocess.Popen(argv, cwd=str(work), stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.fd = None

    def feed(self, capture: Path, deadline: float, repeat_after: Optional[float] = None) -> bool:
        """Opens the FIFO once the capture reads it and writes the whole
        capture from a thread (the FIFO stays open); False when the
        appliance ended or the deadline passed first. With repeat_after
        (classic pcap only) the capture's records are written again that
        many seconds later, repeated to 2 MiB at least: the stages publish
        their counters while batches (of 256 packets) arrive
        (docs/limits.md), which a small capture read at once does not give
        them."""
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                self.fd = os.open(str(self.fifo), os.O_WRONLY | os.O_NONBLOCK)
                break
            except OSError:  # ENXIO: no reader yet
                time.sleep(0.05)
        if self.fd is None:
            return False
        data = capture.read_bytes()
        fd = self.fd

        def write():
            os.set_blocking(fd, True)
            try:
                os.write(fd, data)
                if repeat_after is not None:
                    time.sleep(repeat_after)
                    records = data[24:]  # after the pcap file header
                    os.write(fd, records * max(1, (2 << 20) // max(1, len(records))))
            except OSError:
                pass
        threading.Thread(target=write, daemon=True).start()
        return True

    def finish(self, timeout: float):
        """End of input: the appliance must finish, exit 0 and print no
        sanitizer report (checked)."""
        if self.fd is not None:
            try:
                os.close(self.fd)
            except OSError:
                pass
        try:
            rc = self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            rc = None
        self.log.close()
        text = (self.work / "appliance.log").read_text("utf-8", "replace")
        check(rc == 0, "appliance exits 0 at the end of the FIFO input",
              run_result(rc, text, 0, self.work).tail())
        check(not sanitizer_lines(text), "no sanitizer report", sanitizer_lines(text)[:3])


def scrape_metrics(port: int, timeout: float = 10):
    """GET http://127.0.0.1:PORT/metrics: (status, Content-Type, body)."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=timeout) as r:
        return r.status, r.headers.get("Content-Type", ""), r.read().decode("utf-8")
