#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Channel security and instance isolation (issue 13, scopes 3 and 4).

1. curve: metaprobe-keygen writes the keys; an appliance with a tcp://
   loopback channel and curve_keys exports a generated DNS capture while
   two rogue PULL peers are connected to the dns channel port, one plain,
   one a CURVE client with a key pair of its own (it knows server.pub):
   both receive nothing, the exporter's file holds every record, the
   capture counts the rogue's refused handshakes. Without keys the same
   rogue would take a round-robin share.
2. rogue push: a rogue binds the channel endpoint before any capture and
   pushes batches of a foreign producer; metaprobe-exporter --producer X
   drops and counts them (foreign_batches, foreign_records) and writes
   none; it ends on an end of stream from X. Without --producer the same
   batches are accepted (the check is what refuses them).
3. two at once: two appliances with the default configuration (run_dir,
   channels, control under ./run) in two working directories, started
   together on different captures: both exit 0, each file holds exactly
   its own capture's records.
4. same run_dir: an appliance waiting on a FIFO holds ./run; a second one
   started in the same directory exits 1 naming the first's pid and
   writes nothing; the first then gets its capture and its file is
   complete.

Usage: channel_security.py --bin-dir BUILD/bin [--work-dir DIR] [--timeout S]
exit 0 pass, 1 fail. Needs no corpus: the captures are generated.
"""

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mp_integration as mpi  # noqa: E402
import export_harness as xh  # noqa: E402

check = mpi.check
N = 200


def end_capture(fd: int, count: int):
    """Writes a capture of `count` DNS queries into the FIFO open as `fd`,
    then closes it: the end of the capture file."""
    view = memoryview(xh.gen.global_header() + xh.dns_query_frames(0, count))
    while view:
        view = view[os.write(fd, view):]
    os.close(fd)


def write_capture(path: Path, first: int, count: int):
    path.write_bytes(xh.gen.global_header() + xh.dns_query_frames(first, count))


def expected_names(first, count):
    return sorted(f"q{i}.collect.test" for i in range(first, first + count))


def name_of(rec: dict) -> str:
    for k, v in rec.items():
        if isinstance(v, str) and v.endswith(".test"):
            return v
    return ""


def names(bin_dir, path):
    recs, err = mpi.decode_ipfix(bin_dir, path)
    return sorted(name_of(r) for r in recs), err


def counter(log: str, name: str):
    m = re.findall(re.escape(name) + r" = (\d+)", log)
    return int(m[-1]) if m else None


def curve_channel(bin_dir: Path, work: Path, timeout: float):
    print("-- 1. CURVE channel with rogue PULL peers")
    keys = work / "keys"
    kg = subprocess.run([str(mpi.find_bin(bin_dir, "metaprobe-keygen")), str(keys)],
                        capture_output=True, text=True)
    check(kg.returncode == 0, "metaprobe-keygen writes the keys", kg.stderr)
    again = subprocess.run([str(mpi.find_bin(bin_dir, "metaprobe-keygen")), str(keys)],
                           capture_output=True, text=True)
    check(again.returncode != 0 and "exists" in again.stderr,
          "metaprobe-keygen refuses to overwrite them", again.stderr)
    port = mpi.free_port("tcp", offsets=range(8))
    endpoint = f"tcp://127.0.0.1:{port}"
    dns_port = port + 4  # channel index of dns.ipfix: group 2 * 2 + kind 0
    # the capture comes through a FIFO once the rogues have had time to try
    # their handshakes with the bound channel (they retry every 100 ms)
    run = work / "curve"
    run.mkdir()
    fifo = run / "in.fifo"
    os.mkfifo(fifo)
    fd = os.open(fifo, os.O_RDWR)
    rogue = str(mpi.find_bin(bin_dir, "channel_rogue"))
    dns_ep = f"tcp://127.0.0.1:{dns_port}"
    rogues = [subprocess.Popen([rogue, "pull", dns_ep, "12", str(keys / "server.pub")],
                               stdout=subprocess.PIPE, text=True),
              subprocess.Popen([rogue, "pull", dns_ep, "12"], stdout=subprocess.PIPE, text=True)]
    for r in rogues:
        r.stdout.readline()  # "connected" (ZeroMQ retries until the port is bound)
    argv, files, channels = mpi.appliance_command(
        bin_dir, f"pcap:{fifo}", run, None, ("dns",), False,
        (f"channel_endpoint={endpoint}", f"curve_keys={keys}", "batch_size=1",
         "publisher_hwm=100000"))
    log = run / "appliance.log"
    with channels:  # its private ipc folder (unused here: tcp), removed after
        app = subprocess.Popen(argv, cwd=str(run), stdout=subprocess.DEVNULL, stderr=open(log, "wb"),
                               start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "started capture" not in log.read_text():
            time.sleep(0.05)
        time.sleep(2.0)
        end_capture(fd, N)
        rc = xh.finish(app, timeout)
    res = mpi.run_result(rc, log.read_text(errors="replace"), 0.0, run, files)
    got = [r.communicate(timeout=30)[0] for r in rogues]
    check(res.returncode == 0, "appliance with CURVE channels exits 0", res.tail())
    check("(CURVE)" in res.stderr, "exporter pulls with CURVE", res.tail())
    for label, out in zip(("CURVE rogue (own key pair)", "plain rogue"), got):
        m = re.search(r"received (\d+)", out)
        check(m is not None and int(m.group(1)) == 0, f"{label} receives nothing", out)
    recs, err = names(bin_dir, res.files["dns"])
    check(err is None and recs == expected_names(0, N),
          f"the exporter's file holds every record ({len(recs)}/{N})", err)
    denied = counter(res.stderr, "publisher.handshakes_denied")
    check(denied is not None and denied >= 1,
          f"capture counts the CURVE rogue's refused handshakes ({denied})", res.tail())


def rogue_push(bin_dir: Path, work: Path, timeout: float):
    print("-- 2. rogue PUSH peer and the exporter's producer check")
    rogue = str(mpi.find_bin(bin_dir, "channel_rogue"))
    for accept_any in (False, True):
        tag = "any" if accept_any else "own"
        run = work / f"push-{tag}"
        run.mkdir()
        with mpi.channel_dir(f"push{tag}") as ep:
            out = run / "dns.ipfix"
            push = subprocess.Popen([rogue, "push", f"{ep}-dns-ipfix", "bb", "5", "4", "aa"],
                                    stdout=subprocess.PIPE, text=True)
            push.stdout.readline()  # "bound"
            argv = [str(mpi.find_bin(bin_dir, "metaprobe-exporter")), "--channel", "dns.ipfix",
                    "--instance", "0"]
            if not accept_any:
                argv += ["--producer", "aa"]
            for s in (f"channel_endpoint={ep}", f"run_dir={run / 'run'}",
                      f"log_dir={run / 'log'}", f"ipfix_dns_file={out}"):
                argv += ["--set", s]
            res = mpi.run_process(argv, run, timeout)
            push.communicate(timeout=10)
        p = "exporter.dns.ipfix.0."
        recs, err = names(bin_dir, out)
        if accept_any:
            check(res.returncode == 0 and counter(res.stderr, p + "records") == 20 and
                  len(recs) == 20,
                  "without --producer the rogue's 20 records are accepted (the check matters)",
                  res.tail())
        else:
            check(res.returncode == 0, "exporter ends on its own producer's end of stream",
                  res.tail())
            check(counter(res.stderr, p + "foreign_batches") == 5 and
                  counter(res.stderr, p + "foreign_records") == 20,
                  "the rogue's 5 batches / 20 records are refused and counted",
                  "\n".join(l for l in res.stderr.splitlines() if "foreign" in l or "records =" in l))
            check(counter(res.stderr, p + "records") == 0 and recs == [],
                  "none of them reaches the file", f"{recs[:5]} {err}")
            check(counter(res.stderr, p + "sequence_gaps") == 0,
                  "refused batches do not touch the sequence accounting", res.tail())


def default_run(bin_dir, d: Path, first: int, count: int):
    d.mkdir(parents=True, exist_ok=True)
    write_capture(d / "in.pcap", first, count)
    argv = [str(mpi.find_bin(bin_dir, "metaprobe")), "--set", f"input=pcap:{d / 'in.pcap'}",
            "--set", f"ipfix_dns_file={d / 'dns.ipfix'}"]
    return argv


def two_at_once(bin_dir: Path, work: Path, timeout: float):
    print("-- 3. two appliances at once, default configuration, own directories")
    a, b = work / "a", work / "b"
    procs = []
    for d, first, count in ((a, 0, N), (b, 5000, N // 2)):
        argv = default_run(bin_dir, d, first, count)
        procs.append(subprocess.Popen(argv, cwd=str(d), stdout=subprocess.DEVNULL,
                                      stderr=open(d / "err.log", "wb"), start_new_session=True))
    for p, d, first, count in zip(procs, (a, b), (0, 5000), (N, N // 2)):
        rc = xh.finish(p, timeout)
        log = (d / "err.log").read_text(errors="replace")
        check(rc == 0, f"appliance in {d.name}/ exits 0", log[-2000:])
        recs, err = names(bin_dir, d / "dns.ipfix")
        check(err is None and recs == expected_names(first, count),
              f"{d.name}/dns.ipfix holds exactly its own capture's {count} records "
              f"({len(recs)})", err)
        check(d.joinpath("run").exists() and (d.joinpath("run").stat().st_mode & 0o777) == 0o700,
              f"{d.name}/run is 0700", oct(d.joinpath("run").stat().st_mode))


def same_run_dir(bin_dir: Path, work: Path, timeout: float):
    print("-- 4. a second appliance on the same run_dir")
    d = work / "same"
    d.mkdir()
    fifo = d / "in.fifo"
    os.mkfifo(fifo)
    fd = os.open(fifo, os.O_RDWR)
    argv = [str(mpi.find_bin(bin_dir, "metaprobe")), "--set", f"input=pcap:{fifo}",
            "--set", f"ipfix_dns_file={d / 'first.ipfix'}"]
    first = subprocess.Popen(argv, cwd=str(d), stdout=subprocess.DEVNULL,
                             stderr=open(d / "first.log", "wb"), start_new_session=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and "started capture" not in (d / "first.log").read_text():
        time.sleep(0.05)
    write_capture(d / "second.pcap", 7000, 50)
    second = mpi.run_process([str(mpi.find_bin(bin_dir, "metaprobe")), "--set",
                              f"input=pcap:{d / 'second.pcap'}", "--set",
                              f"ipfix_dns_file={d / 'second.ipfix'}"], d, timeout)
    check(second.returncode == 1, "the second appliance exits 1", second.tail())
    check(f"in use by metaprobe pid {first.pid}" in second.stderr,
          f"its message names the first one's pid ({first.pid})", second.tail())
    check("started exporter" not in second.stderr and not (d / "second.ipfix").exists(),
          "it started no exporter and wrote nothing", second.tail())
    end_capture(fd, N)
    rc = xh.finish(first, timeout)
    check(rc == 0, "the first appliance finishes", (d / "first.log").read_text()[-2000:])
    recs, err = names(bin_dir, d / "first.ipfix")
    check(err is None and recs == expected_names(0, N),
          f"the first one's file is complete ({len(recs)}/{N})", err)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--work-dir")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per run")
    args = ap.parse_args(argv)
    bin_dir = Path(args.bin_dir).resolve()
    work = mpi.make_workdir(Path(args.work_dir) if args.work_dir else None, "channel-security")
    curve_channel(bin_dir, work, args.timeout)
    rogue_push(bin_dir, work, args.timeout)
    two_at_once(bin_dir, work, args.timeout)
    same_run_dir(bin_dir, work, args.timeout)
    return mpi.verdict(work)


if __name__ == "__main__":
    sys.exit(main())
