#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Process and channel lifecycle of the appliance.

1. clean run: the ipc:// channel socket files are gone after the run, and a
   stale socket file left by a crashed run (bound, nobody listening) does
   not stop start-up.
2. a channel path that a running process listens on is not taken over:
   the appliance stops before it starts any child (its channel check,
   core/run_dir.hpp) naming the endpoint, the other process keeps its file.
3. stop during start-up: after a failed capture the appliance sends SIGTERM
   to exporters that are still starting (here held back one second by a
   wrapper before they exec the real exporter). They must stop cleanly
   (exit 0), never "killed by signal 15".
4. SIGTERM to the appliance while capture is still starting (same wrapper
   trick for capture): a clean stop, exit 0, nobody killed by a signal.

Needs no corpus: the captures are generated.

Usage: lifecycle.py --bin-dir BUILD/bin [--work-dir DIR]   exit 0 pass, 1 fail
"""

import argparse
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mp_integration as mpi  # noqa: E402
import robustness as gen  # noqa: E402  (pcap writers)

failures = mpi.failures
CONFIG = Path(__file__).resolve().parent / "configs" / "truth.conf"


check = mpi.check


def is_socket(path: Path) -> bool:
    try:
        return stat.S_ISSOCK(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def unix_socket_at(path: Path, listening: bool) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(str(path))
    if listening:
        s.listen(4)
    return s


def slow_start_bin_dir(bin_dir: Path, work: Path, slow=("metaprobe-exporter",),
                       delay: float = 1.0) -> Path:
    """A bin dir whose `metaprobe` starts the real children, those named in
    `slow` only after `delay` seconds (a Python wrapper that sleeps, then
    execs; it keeps the signal mask it was started with, like a slow
    start-up of the real binary would)."""
    d = work / "slow-bin"
    d.mkdir(exist_ok=True)
    # a copy: metaprobe finds its children next to /proc/self/exe
    shutil.copy2(mpi.find_bin(bin_dir, "metaprobe"), d / "metaprobe")
    for name in ("metaprobe-capture", "metaprobe-exporter"):
        real = mpi.find_bin(bin_dir, name).resolve()
        target = d / name
        if target.exists() or target.is_symlink():
            target.unlink()
        if name in slow:
            target.write_text(
                f"#!{sys.executable}\n"
                "import os, sys, time\n"
                f"time.sleep({delay})\n"
                f"os.execv({str(real)!r}, [{str(real)!r}] + sys.argv[1:])\n")
            target.chmod(0o755)
        else:
            target.symlink_to(real)
    return d


def appliance_argv(bin_dir: Path, pcap: Path, work: Path, endpoint: str, extra=()):
    argv = [str(bin_dir / "metaprobe"), "--config", str(CONFIG)]
    sets = [f"input=pcap:{pcap}", f"channel_endpoint={endpoint}",
            f"log_dir={work / 'log'}", f"run_dir={work / 'run'}",
            f"ipfix_file={work / 'clickstream.ipfix'}", f"ipfix_dns_file={work / 'dns.ipfix'}",
            "log_level=info"] + list(extra)
    for s in sets:
        argv += ["--set", s]
    return argv


def check_children(res, what: str, expect_exporters: int):
    text = res.stderr
    check("killed by signal" not in text, f"{what}: no child killed by a signal", res.tail(25))
    finished = text.count("finished")
    check(text.count("started exporter") == expect_exporters and
          sum(1 for l in text.splitlines() if "exporter" in l and l.endswith(" finished"))
          == expect_exporters,
          f"{what}: all {expect_exporters} exporters exit 0 ({finished} 'finished' lines)",
          res.tail(25))
    san = mpi.sanitizer_lines(text)
    check(not san, f"{what}: no sanitizer report", "\n".join(san[:5]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--work-dir")
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--repeat", type=int, default=3, help="runs of the start-up race cases")
    args = ap.parse_args(argv)
    bin_dir = Path(args.bin_dir).resolve()
    for b in ("metaprobe", "metaprobe-capture", "metaprobe-exporter", "metaprobe-receiver"):
        mpi.find_bin(bin_dir, b)
    work = mpi.make_workdir(Path(args.work_dir) if args.work_dir else None, "lifecycle")

    pcap = work / "one-request.pcap"
    frames = []
    gen.tcp_flow(frames, "10.2.0.1", "10.2.0.2", 42000, 80,
                 [b"GET /lifecycle HTTP/1.1\r\nHost: example.org\r\n\r\n"], 1_600_000_000)
    pcap.write_bytes(gen.global_header() + b"".join(frames))
    garbage = work / "not-a-capture.pcap"
    garbage.write_bytes(b"this is not a capture file\n" * 40)
    exporters = 2  # clickstream.ipfix and dns.ipfix, one instance each

    # 1. stale socket file, then a clean run removes every socket file
    with mpi.channel_dir("lc-stale") as endpoint:
        chdir = Path(endpoint[len("ipc://"):]).parent
        stale = Path(endpoint[len("ipc://"):] + "-clickstream-ipfix")
        unix_socket_at(stale, listening=True).close()  # the owner "crashed"
        check(is_socket(stale), "1: stale socket file in place before the run")
        res = mpi.run_process(appliance_argv(bin_dir, pcap, work, endpoint), work, args.timeout)
        check(res.returncode == 0, f"1: run over a stale socket file exits 0 (got {res.returncode})",
              res.tail(25))
        check_children(res, "1", exporters)
        left = sorted(p.name for p in chdir.iterdir())
        check(not left, "1: no channel socket file left after a clean run", f"left: {left}")
        records, err = mpi.decode_ipfix(bin_dir, work / "clickstream.ipfix")
        check(err is None and len(records) == 1,
              f"1: the request was exported through the replaced channel ({len(records)} records)",
              err or "")

    # 2. a live listener on a channel path is not taken over
    with mpi.channel_dir("lc-live") as endpoint:
        live_path = Path(endpoint[len("ipc://"):] + "-dns-ipfix")
        live = unix_socket_at(live_path, listening=True)
        res = mpi.run_process(appliance_argv(bin_dir, pcap, work, endpoint), work, args.timeout)
        check(res.returncode == 1,
              f"2: the appliance fails on a channel path in use (got {res.returncode})",
              res.tail(25))
        check("in use by a running process" in res.stderr and str(live_path) in res.stderr,
              "2: the error names the path in use", res.tail(25))
        check(is_socket(live_path), "2: the other process keeps its socket file")
        check(not Path(endpoint[len("ipc://"):] + "-clickstream-ipfix").exists(),
              "2: the channel bound before the failure was removed again")
        check_children(res, "2", 0)  # before any exporter connects anywhere
        live.close()

    # 3. exporters still starting when a failed capture makes the appliance stop them
    slow = slow_start_bin_dir(bin_dir, work, slow=("metaprobe-exporter",))
    for i in range(args.repeat):
        with mpi.channel_dir("lc-fail") as endpoint:
            t0 = time.monotonic()
            res = mpi.run_process(appliance_argv(slow, garbage, work, endpoint), work, args.timeout)
            check(res.returncode == 1,
                  f"3.{i}: failed capture -> appliance exits 1 (got {res.returncode})", res.tail(25))
            check("capture failed" in res.stderr, f"3.{i}: the capture failure is logged", res.tail(25))
            check_children(res, f"3.{i}", exporters)
            check(time.monotonic() - t0 < 15, f"3.{i}: stops without waiting for the kill timeout")

    # 4. SIGTERM to the appliance while capture is still starting
    slow = slow_start_bin_dir(bin_dir, work, slow=("metaprobe-capture",))
    for i in range(args.repeat):
        with mpi.channel_dir("lc-term") as endpoint:
            proc = subprocess.Popen(appliance_argv(slow, pcap, work, endpoint), cwd=str(work),
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    start_new_session=True)
            time.sleep(0.4)  # exporters up, capture still in its wrapper
            proc.send_signal(signal.SIGTERM)
            try:
                out, err = proc.communicate(timeout=args.timeout)
                rc = proc.returncode
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                out, err = proc.communicate()
                rc = None
            res = mpi.run_result(rc, err.decode("utf-8", "replace") + out.decode("utf-8", "replace"),
                                 0.0, work)
            check(rc == 0, f"4.{i}: SIGTERM during start-up -> clean stop, exit 0 (got {rc})",
                  res.tail(25))
            check_children(res, f"4.{i}", exporters)
            chdir = Path(endpoint[len("ipc://"):]).parent
            left = sorted(p.name for p in chdir.iterdir())
            check(not left, f"4.{i}: no channel socket file left", f"left: {left}")

    if failures:
        print(f"{len(failures)} check(s) failed; work dir kept: {work}")
        return 1
    shutil.rmtree(work, ignore_errors=True)
    print("lifecycle: all checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
