#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Capture and exporters started independently, without the appliance
(containers, systemd): `metaprobe-exporter --instance auto`.

A generated capture of NQ DNS queries (one dns record each) is exported

0. by the appliance with one instance: the reference count;
1. by two `metaprobe-exporter --channel dns.ipfix --instance auto
   --instance-file F` started at once, then `metaprobe-capture` alone with
   exporter_instances.dns=2 reading a FIFO: the instance files say 0 and 1;
   `metaprobe-console --process exporter:dns.ipfix:1 --json status` is
   answered by that exporter (its pid); once capture has its exporters,
   `--process capture --json exporters` shows exporters_connected 2 for
   dns.ipfix; at the end of the FIFO both exporters get end of stream and
   exit 0, both wrote records (dns.ipfix, dns.ipfix.1), together the
   reference count;
2. capture first on a capture file (exporter_instances.dns=2): it logs that
   it waits, reads nothing while one exporter is connected, and runs once
   the second one is there; both get records;
3. exporter_instances.dns=1 but two exporters connected (the second one
   beyond the configured count): both still end (end of stream to every
   connected exporter), records add up;
4. exporter_instances.dns=2, exporter_wait=1, one exporter: capture warns
   naming dns.ipfix 1/2 and reads anyway; the one exporter gets everything.

Usage: scale_auto.py --bin-dir BUILD/bin [--work-dir DIR] [--timeout S]
exit 0 pass, 1 fail. Needs no corpus: the capture is generated.
"""

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mp_integration as mpi  # noqa: E402
import export_harness as xh  # noqa: E402

NQ = 240
check = mpi.check


class service:
    """One metaprobe-capture or metaprobe-exporter process started on its
    own, stderr and stdout into <work>/<tag>.log."""

    def __init__(self, argv, work: Path, tag: str):
        self.log_path = work / f"{tag}.log"
        self.tag = tag
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(argv, cwd=str(work), stdout=log,
                                         stderr=subprocess.STDOUT, start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text("utf-8", "replace")

    def finish(self, timeout: float):
        return xh.finish(self.proc, timeout)

    def kill(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()


class setup:
    """The settings capture, exporters and console of one case share: one
    channel endpoint and one run_dir (instance slots, control sockets),
    both under a short /tmp folder (sun_path holds 108 bytes)."""

    def __init__(self, bin_dir: Path, work: Path, endpoint: str, instances: int, extra=()):
        self.bin_dir = bin_dir
        self.work = work
        self.run_dir = Path(endpoint[len("ipc://"):]).parent / "run"
        self.out = work / "dns.ipfix"
        self.sets = [f"channel_endpoint={endpoint}", f"run_dir={self.run_dir}",
                     f"log_dir={work / 'log'}", "log_level=info", "batch_size=1",
                     f"ipfix_dns_file={self.out}",
                     f"exporter_instances.dns={instances}"] + list(extra)
        self.started = []

    def argv(self, binary: str, more=()):
        a = [str(mpi.find_bin(self.bin_dir, binary))]
        for s in self.sets:
            a += ["--set", s]
        return a + list(more)

    def exporter(self, tag: str) -> (service, Path):
        f = self.work / f"{tag}.instance"
        s = service(self.argv("metaprobe-exporter", ["--channel", "dns.ipfix", "--instance", "auto",
                                                     "--instance-file", str(f)]),
                    self.work, tag)
        self.started.append(s)
        return s, f

    def capture(self, input_spec: str) -> service:
        s = service(self.argv("metaprobe-capture", ["--set", f"input={input_spec}"]),
                    self.work, "capture")
        self.started.append(s)
        return s

    def console(self, process: str, command: str):
        p = subprocess.run(self.argv("metaprobe-console", ["--process", process, "--json",
                                                           "--timeout", "5000", command]),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=30)
        out = p.stdout.decode("utf-8", "replace")
        try:
            doc = json.loads(out)
        except ValueError:
            doc = None
        return p.returncode, doc, p.stderr.decode("utf-8", "replace") + out

    def stop_all(self):
        for s in self.started:
            s.kill()


def instance_of(path: Path, timeout: float):
    """The number an exporter wrote to its --instance-file (None if none)."""
    if not xh.wait_until(path.exists, timeout):
        return None
    text = path.read_text()
    return int(text) if text.endswith("\n") and text.strip().isdigit() else text


def records_of(bin_dir: Path, path: Path) -> int:
    if not path.exists():
        return 0
    recs, err = mpi.decode_ipfix(bin_dir, path)
    check(err is None, f"{path.name} decodes cleanly", err or "")
    return len(recs)


def instance_files(out: Path):
    """Instance 0 writes the configured name, instance N <name>.N."""
    return {0: out, 1: Path(f"{out}.1")}


def records_per_instance(bin_dir: Path, out: Path, case: str):
    """{instance: records} of the two instances' files (printed)."""
    counts = {i: records_of(bin_dir, f) for i, f in instance_files(out).items()}
    print(f"     {case}: records per instance {counts}")
    return counts


def check_ends(case: str, cap: service, exporters, t: float):
    rc = cap.finish(t)
    check(rc == 0, f"{case}: capture exits 0 (got {rc})", cap.log()[-2000:])
    for e in exporters:
        erc = e.finish(t)
        check(erc == 0, f"{case}: {e.tag} gets end of stream and exits 0 (got {erc})",
              e.log()[-1500:])
    san = mpi.sanitizer_lines(cap.log() + "".join(e.log() for e in exporters))
    check(not san, f"{case}: no sanitizer report", "\n".join(san[:5]))


def case_fifo(bin_dir: Path, work: Path, capture: bytes, reference: int, t: float):
    """1: two auto exporters first, capture alone on a FIFO."""
    work.mkdir()
    with mpi.channel_dir("scale-fifo") as endpoint:
        s = setup(bin_dir, work, endpoint, instances=2)
        try:
            (a, fa), (b, fb) = s.exporter("exporter-a"), s.exporter("exporter-b")
            ia, ib = instance_of(fa, t), instance_of(fb, t)
            check(sorted([ia, ib], key=str) == [0, 1],
                  f"1: the instance files say 0 and 1 (got {ia!r}, {ib!r})",
                  a.log()[-800:] + b.log()[-800:])
            second = b if ib == 1 else a
            check(f"claimed instance 1 of dns.ipfix" in second.log(),
                  "1: the exporter logs the instance it claimed", second.log()[-800:])
            rc, doc, err = s.console("exporter:dns.ipfix:1", "status")
            procs = (doc or {}).get("processes", [])
            check(rc == 0 and len(procs) == 1 and procs[0]["process"] == "exporter dns.ipfix#1"
                  and procs[0]["pid"] == second.proc.pid and procs[0]["state"] == "running",
                  "1: console --process exporter:dns.ipfix:1 status: that exporter answers", err)
            rc, doc, err = s.console("exporter:dns.ipfix:1", "exporters")
            own = [e for e in (doc or {}).get("exporters", []) if e["channel"] == "dns.ipfix"]
            check(rc == 0 and len(own) == 1 and int(own[0]["instance"]) == 1,
                  "1: its `exporters` view shows its own channel and instance", err)
            rc, _, err = s.console("exporter:dns.ipfix:x", "status")
            check(rc == 2 and "expected appliance, capture or exporter:GROUP.KIND:N" in err,
                  f"1: a bad --process value is a usage error (rc {rc})", err)

            fifo = xh.fifo_feed(work / "capture.pcap")
            cap = s.capture(f"pcap:{fifo.path}")
            try:
                if not fifo.open(t, lambda: cap.proc.poll() is None):
                    check(False, "1: capture opens the FIFO", cap.log()[-2000:])
                    return
                header = xh.gen.global_header()
                fifo.write(header)  # capture binds the channel, waits for both

                def connected():
                    rc, doc, _ = s.console("capture", "exporters")
                    for p in (doc or {}).get("publisher", []):
                        if p["channel"] == "dns.ipfix":
                            return p.get("exporters_connected", -1)
                    return -1
                got = []
                ok = xh.wait_until(lambda: got.append(connected()) or got[-1] == 2, t, 0.2)
                check(ok, "1: console --process capture exporters: dns.ipfix has 2 exporters "
                      f"connected (last {got[-1:]})", cap.log()[-1500:])
                rc, doc, err = s.console("capture", "status")
                procs = (doc or {}).get("processes", [])
                check(rc == 0 and len(procs) == 1 and procs[0]["process"] == "capture"
                      and procs[0]["pid"] == cap.proc.pid,
                      "1: console --process capture status: capture itself answers", err)
                fifo.write(capture[len(header):])
            finally:
                fifo.close()
            check_ends("1", cap, [a, b], t)
        finally:
            s.stop_all()
    counts = records_per_instance(bin_dir, s.out, "1")
    check(all(n > 0 for n in counts.values()), f"1: both instances exported records ({counts})")
    check(sum(counts.values()) == reference,
          f"1: the two files hold the reference count together ({sum(counts.values())} == {reference})")
    check(not list(work.glob("*.tmp.*")), "1: no temporary instance file left")


def case_capture_first(bin_dir: Path, work: Path, pcap: Path, reference: int, t: float):
    """2: capture waits on a capture file until both exporters are there."""
    work.mkdir()
    with mpi.channel_dir("scale-wait") as endpoint:
        s = setup(bin_dir, work, endpoint, instances=2, extra=[f"exporter_wait={t}"])
        try:
            cap = s.capture(f"pcap:{pcap}")
            ok = xh.wait_until(lambda: "waiting up to" in cap.log() or cap.proc.poll() is not None,
                               t)
            check(ok and "dns.ipfix 0/2" in cap.log(),
                  "2: capture logs that it waits for dns.ipfix (0/2)", cap.log()[-1500:])
            a, fa = s.exporter("exporter-a")
            check(instance_of(fa, t) == 0, "2: the first exporter claims instance 0")
            time.sleep(1.0)
            check(cap.proc.poll() is None and "pipeline:" not in cap.log(),
                  "2: with one of two exporters connected capture still waits",
                  cap.log()[-1500:])
            b, fb = s.exporter("exporter-b")
            check(instance_of(fb, t) == 1, "2: the second exporter claims instance 1")
            check_ends("2", cap, [a, b], t)
            check("exporters missing" not in cap.log(), "2: no warning about missing exporters",
                  cap.log()[-1500:])
        finally:
            s.stop_all()
    counts = records_per_instance(bin_dir, s.out, "2")
    check(all(n > 0 for n in counts.values()) and sum(counts.values()) == reference,
          f"2: both instances exported records, {reference} together ({counts})")


def case_beyond_configured(bin_dir: Path, work: Path, capture: bytes, reference: int, t: float):
    """3: exporter_instances.dns=1, yet two exporters connected: both end."""
    work.mkdir()
    with mpi.channel_dir("scale-extra") as endpoint:
        s = setup(bin_dir, work, endpoint, instances=1)
        try:
            (a, fa), (b, fb) = s.exporter("exporter-a"), s.exporter("exporter-b")
            check(sorted([instance_of(fa, t), instance_of(fb, t)], key=str) == [0, 1],
                  "3: the instance files say 0 and 1")
            fifo = xh.fifo_feed(work / "capture.pcap")
            cap = s.capture(f"pcap:{fifo.path}")
            try:
                if not fifo.open(t, lambda: cap.proc.poll() is None):
                    check(False, "3: capture opens the FIFO", cap.log()[-2000:])
                    return
                header = xh.gen.global_header()
                fifo.write(header)
                ok = xh.wait_until(lambda: xh.channel_peers(endpoint, "dns-ipfix") >= 2, t)
                check(ok, "3: both exporters connect to dns.ipfix",
                      xh.channel_peers(endpoint, "dns-ipfix"))
                fifo.write(capture[len(header):])
            finally:
                fifo.close()
            check_ends("3", cap, [a, b], t)
        finally:
            s.stop_all()
    counts = records_per_instance(bin_dir, s.out, "3")
    check(sum(counts.values()) == reference,
          f"3: the records add up to the reference ({sum(counts.values())} == {reference})")


def case_short(bin_dir: Path, work: Path, pcap: Path, reference: int, t: float):
    """4: one exporter of two, exporter_wait=1: warning, read anyway."""
    work.mkdir()
    with mpi.channel_dir("scale-short") as endpoint:
        s = setup(bin_dir, work, endpoint, instances=2, extra=["exporter_wait=1"])
        try:
            a, fa = s.exporter("exporter-a")
            check(instance_of(fa, t) == 0, "4: the exporter claims instance 0")
            t0 = time.monotonic()
            cap = s.capture(f"pcap:{pcap}")
            check_ends("4", cap, [a], t)
            took = time.monotonic() - t0
            log = cap.log()
            check("exporters missing after 1.0 s" in log and "dns.ipfix 1/2" in log
                  and "reading the input anyway" in log,
                  "4: capture warns naming dns.ipfix 1/2 and reads anyway", log[-1500:])
            check(took < 1.0 + t / 2, f"4: the wait is bounded ({took:.1f} s)")
        finally:
            s.stop_all()
    n = records_of(bin_dir, s.out)
    check(n == reference, f"4: the one exporter exported all {reference} records (got {n})")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--work-dir")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per run")
    args = ap.parse_args(argv)
    bin_dir = Path(args.bin_dir).resolve()
    for b in ("metaprobe", "metaprobe-capture", "metaprobe-exporter", "metaprobe-console",
              "metaprobe-receiver"):
        mpi.find_bin(bin_dir, b)
    work = mpi.make_workdir(Path(args.work_dir) if args.work_dir else None, "scale-auto")
    t = args.timeout
    capture = xh.gen.global_header() + xh.dns_query_frames(0, NQ)
    pcap = work / "queries.pcap"
    pcap.write_bytes(capture)

    # 0. the appliance with one instance: the reference count
    res = mpi.run_appliance(bin_dir, pcap, work / "ref", groups=("dns",), timeout=t,
                            extra_sets=("batch_size=1",))
    check(res.returncode == 0, f"0: the appliance run exits 0 (got {res.returncode})", res.tail())
    recs, err = mpi.decode_ipfix(bin_dir, res.files["dns"])
    reference = len(recs)
    check(err is None and reference == NQ, f"0: reference: {NQ} dns records (got {reference})",
          err or "")

    case_fifo(bin_dir, work / "fifo", capture, reference, t)
    case_capture_first(bin_dir, work / "wait", pcap, reference, t)
    case_beyond_configured(bin_dir, work / "extra", capture, reference, t)
    case_short(bin_dir, work / "short", pcap, reference, t)

    return mpi.verdict(work)


if __name__ == "__main__":
    sys.exit(main())
