#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Live capture end to end: the appliance captures on one end of a veth pair
inside a network namespace this test creates, tcpreplay sends corpus
captures into the other end, the appliance is stopped with SIGTERM, and its
records are compared with those of the capture-file runs of the same
captures.

Cases (each its own appliance run):
  afpacket-2   input=afpacket:VETH, workers=2 (two AF_PACKET sockets in one
               fanout group), HTTP, DNS/TLS/HTTP browsing, 802.1Q and
               802.1ad (QinQ) VLAN captures;
  pcap-1       input=iface:VETH (libpcap), workers=1, the same captures;
  afpacket-bpf input=afpacket:VETH with bpf_filter="udp port 53": only the
               DNS records and the UDP port 53 flows of the file run.

Compared as multisets of sessions (mp_integration.sessions_multiset) over
all four IPFIX groups, leaving out the fields that are documented to
differ on live input (docs/configuration.md, "Live capture"): the times
(TIME_STAMP, FLOW_START_MILLISECONDS, FLOW_END_MILLISECONDS: capture time,
not the file's) and PACKET_DELIVER_TIME (a round-trip time measured on
those times). Also checked: capture.packets equals what tcpreplay sent
(nothing else reaches the namespace: IPv6 is off there, no addresses), no
packet dropped by the kernel or the pipeline, exit 0 after SIGTERM.

The namespace and veth pair are named from the process id and a random
suffix (tests may run side by side) and always removed. Skips (77) when
`ip` or `tcpreplay` is missing or the kernel refuses the namespace or veth
(no CAP_NET_ADMIN), printing why.

Usage: live_capture.py --bin-dir BUILD/bin [--corpus DIR] [--timeout S]
                       [--work-dir DIR] [--case NAME]...
Exit 0 pass, 1 fail, 77 skipped.
"""

import argparse
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mp_integration as mpi  # noqa: E402

GROUPS = ("clickstream", "meta", "dns", "fullflow")
# Fields that depend on when the frames were captured (docs/configuration.md).
LIVE_FIELDS = ("TIME_STAMP", "FLOW_START_MILLISECONDS", "FLOW_END_MILLISECONDS",
               "PACKET_DELIVER_TIME")
# Short captures (every one spans less than the idle and active timeouts,
# so the file run splits no flow by time) without truncated frames.
MIXED = ["http-ipfixprobe.pcap", "mixed-browsing-pcpp-example.pcap", "vlan-ipfixprobe.pcap",
         "tls-ja3-many-ciphers-qinq.pcap"]
CASES = {
    "afpacket-2": {"input": "afpacket", "workers": 2, "captures": MIXED, "bpf": ""},
    "pcap-1": {"input": "iface", "workers": 1, "captures": MIXED, "bpf": ""},
    "afpacket-bpf": {"input": "afpacket", "workers": 1, "bpf": "udp port 53",
                     "captures": ["mixed-browsing-pcpp-example.pcap"]},
}
READER_PACKETS = re.compile(r"\bcapture\.(\d+)\.packets = (\d+)\s*$", re.M)
STAT = re.compile(r"\b((?:capture|publisher)\.[a-z_.]+) = (\d+)\s*$", re.M)


class skip(Exception):
    pass


def sh(*argv, check=True, timeout=30):
    p = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout)
    if check and p.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)}: exit {p.returncode}: {p.stderr.strip()}")
    return p


class veth_namespace:
    """A network namespace holding a veth pair (capture end, replay end),
    both up, IPv6 off, MTU 9000; removed on exit whatever happened."""

    def __init__(self):
        tag = f"{os.getpid() % 100000:05d}{secrets.token_hex(2)}"
        self.ns = f"mp-live-{tag}"
        self.cap = f"mpc{tag}"[:15]
        self.rep = f"mpr{tag}"[:15]

    def __enter__(self):
        p = sh("ip", "netns", "add", self.ns, check=False)
        if p.returncode != 0:
            raise skip(f"cannot create a network namespace: {p.stderr.strip()}")
        try:
            self.exec("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
                      "net.ipv6.conf.default.disable_ipv6=1")
            p = sh("ip", "-n", self.ns, "link", "add", self.cap, "type", "veth", "peer", "name",
                   self.rep, check=False)
            if p.returncode != 0:
                raise skip(f"cannot create a veth pair: {p.stderr.strip()}")
            for dev in (self.cap, self.rep):
                sh("ip", "-n", self.ns, "link", "set", dev, "mtu", "9000", "up")
        except BaseException:
            self.__exit__()
            raise
        return self

    def exec(self, *argv, check=True, timeout=30):
        return sh("ip", "netns", "exec", self.ns, *argv, check=check, timeout=timeout)

    def __exit__(self, *exc):
        # deleting the namespace deletes the veth pair inside it
        subprocess.run(["ip", "netns", "del", self.ns], capture_output=True, timeout=30)
        return False


def file_records(args, corpus: Path, capture: str):
    work = mpi.make_workdir(args.work_dir, f"live-file-{capture[:-5]}")
    run = mpi.run_appliance(Path(args.bin_dir), corpus / capture, work, groups=GROUPS,
                            timeout=args.timeout)
    if run.timed_out or run.returncode != 0:
        raise RuntimeError(f"file run of {capture}: metaprobe exit {run.returncode}:\n{run.tail()}")
    recs, err = mpi.exported_records(Path(args.bin_dir), run.files)
    if err:
        raise RuntimeError(f"file run of {capture}: {err}")
    shutil.rmtree(work, ignore_errors=True)
    return recs


def wait_for_exporters(net: veth_namespace, paths, timeout: float) -> bool:
    """True once every ipc channel path has a connected socket (an exporter
    connected to the capture's channel): live input never waits for a
    missing exporter, it drops and counts the records."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        table = net.exec("cat", "/proc/net/unix").stdout.splitlines()
        connected = {l.split()[-1] for l in table[1:]
                     if len(l.split()) >= 8 and l.split()[5] == "03"}
        if all(str(p) in connected for p in paths):
            return True
        time.sleep(0.05)
    return False


def live_run(args, corpus: Path, net: veth_namespace, name: str, case: dict):
    """Runs the appliance on the capture end while tcpreplay sends the
    case's captures; returns (records, capture stats, frames sent)."""
    work = mpi.make_workdir(args.work_dir, f"live-{name}")
    sets = [f"workers={case['workers']}", "log_level=info"]
    if case["bpf"]:
        sets.append(f"bpf_filter={case['bpf']}")
    argv, files, channels = mpi.appliance_command(
        Path(args.bin_dir), f"{case['input']}:{net.cap}", work, groups=GROUPS, extra_sets=sets)
    err_lines = []
    ready = threading.Event()

    def drain(stream):
        for raw in stream:
            line = raw.decode("utf-8", "replace")
            err_lines.append(line)
            if "pipeline: " in line and "reader(s)" in line:
                ready.set()

    with channels:
        proc = subprocess.Popen(["ip", "netns", "exec", net.ns] + argv, cwd=str(work),
                                stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, start_new_session=True)
        reader = threading.Thread(target=drain, args=(proc.stdout,), daemon=True)
        reader.start()
        sent = 0
        try:
            if not ready.wait(args.timeout):
                raise RuntimeError(f"{name}: the capture did not start within {args.timeout:.0f} s:\n"
                                   + "".join(err_lines[-15:]))
            if proc.poll() is not None:
                raise RuntimeError(f"{name}: metaprobe exited {proc.returncode} at start:\n"
                                   + "".join(err_lines[-15:]))
            paths = [f"{channels.dir}/ch-{g}-ipfix" for g in GROUPS]
            if not wait_for_exporters(net, paths, args.timeout):
                raise RuntimeError(f"{name}: the exporters did not connect to the capture")
            for cap in case["captures"]:
                rp = net.exec("tcpreplay", "-i", net.rep, "--pps=10000", str(corpus / cap),
                              check=False, timeout=args.timeout)
                m = re.search(r"Successful packets:\s+(\d+)", rp.stdout)
                failed = re.search(r"Failed packets:\s+(\d+)", rp.stdout)
                if rp.returncode != 0 or not m or (failed and int(failed.group(1)) != 0):
                    raise RuntimeError(f"{name}: tcpreplay of {cap} failed ({rp.returncode}): "
                                       f"{(rp.stderr or rp.stdout).strip()[-400:]}")
                sent += int(m.group(1))
            # the last ring block is handed over within 10 ms, read within 100 ms
            time.sleep(1.0)
            proc.send_signal(signal.SIGTERM)
            rc = proc.wait(args.timeout)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            reader.join(5)
    text = "".join(err_lines)
    if rc != 0:
        raise RuntimeError(f"{name}: metaprobe exit {rc} after SIGTERM:\n" + "".join(err_lines[-15:]))
    san = mpi.sanitizer_lines(text)
    if san:
        raise RuntimeError(f"{name}: sanitizer report: {san[0]}")
    stats = {}
    for m in STAT.finditer(text):
        stats[m.group(1)] = int(m.group(2)) # logged once, at the end
    recs, err = mpi.exported_records(Path(args.bin_dir), files)
    if err:
        raise RuntimeError(f"{name}: {err}")
    shutil.rmtree(work, ignore_errors=True)
    return recs, stats, sent, text


def is_udp53(r) -> bool:
    if r["group"] == "dns":
        return True
    return (r["group"] == "fullflow" and r.get("PROTOCOL_IDENTIFIER") == 17 and
            53 in (r.get("SOURCE_TRANSPORT_PORT"), r.get("DESTINATION_TRANSPORT_PORT")))


def check_case(args, corpus: Path, net: veth_namespace, name: str, case: dict, file_cache):
    problems = []
    expected = []
    for cap in case["captures"]:
        if cap not in file_cache:
            file_cache[cap] = file_records(args, corpus, cap)
        expected += file_cache[cap]
    if case["bpf"]:
        expected = [r for r in expected if is_udp53(r)]
    recs, stats, sent, text = live_run(args, corpus, net, name, case)
    packets = stats.get("capture.packets")
    if case["bpf"]:
        if not packets or packets >= sent:
            problems.append(f"{name}: the filter let {packets} of {sent} frames through")
    elif packets != sent:
        problems.append(f"{name}: capture.packets {packets}, tcpreplay sent {sent}")
    for k in ["capture.dropped_packets", "capture.kernel.dropped"] + [
            k for k in stats if k.startswith("publisher.") and k.endswith("records_dropped")]:
        if stats.get(k, 0) != 0:
            problems.append(f"{name}: {k} = {stats[k]}")
    if case["input"] == "afpacket" and "capture.kernel.received" not in stats:
        problems.append(f"{name}: no kernel counters (capture.kernel.*) logged")
    readers = {int(m.group(1)): int(m.group(2)) for m in READER_PACKETS.finditer(text)}
    if case["input"] == "afpacket" and case["workers"] > 1:
        # one socket per worker; the fanout hash spreads the many flows
        if sorted(readers) != list(range(case["workers"])) or min(readers.values()) == 0:
            problems.append(f"{name}: packets per AF_PACKET socket {readers}, expected "
                            f"{case['workers']} sockets that all read some")
    if not expected:
        problems.append(f"{name}: the file runs exported nothing to compare with")
    want = mpi.sessions_multiset(expected, LIVE_FIELDS)
    got = mpi.sessions_multiset(recs, LIVE_FIELDS)
    if got != want:
        drop = ("SESSION_ID",) + LIVE_FIELDS
        flat_w = want.__class__(mpi.record_key(r, drop) for r in expected)
        flat_g = want.__class__(mpi.record_key(r, drop) for r in recs)
        problems.append(f"{name}: live records differ from the file runs' ({len(recs)} vs "
                        f"{len(expected)} records)")
        problems += ["  " + d for d in mpi.describe_difference("file", flat_w, "live", flat_g)] or [
            "  the records are equal, their grouping by SESSION_ID differs"]
    groups = sorted({r["group"] for r in recs})
    print(f"{name}: {case['input']}:{net.cap} workers={case['workers']}"
          f"{' bpf ' + repr(case['bpf']) if case['bpf'] else ''}: {sent} frames sent, "
          f"{packets} captured{' ' + str(sorted(readers.items())) if len(readers) > 1 else ''}, "
          f"{len(recs)} records ({', '.join(groups)}), "
          f"{len(expected)} expected")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", required=True, type=lambda p: str(Path(p).resolve()))
    ap.add_argument("--corpus")
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--work-dir")
    ap.add_argument("--case", action="append", choices=sorted(CASES))
    args = ap.parse_args()
    corpus = mpi.corpus_or_skip(args.corpus)
    for tool in ("ip", "tcpreplay"):
        if not shutil.which(tool):
            print(f"SKIP: {tool} not installed (deploy/install-deps.sh installs it)")
            return mpi.SKIP
    mpi.find_bin(Path(args.bin_dir), "metaprobe")
    problems = []
    file_cache = {}
    try:
        with veth_namespace() as net:
            for name in args.case or list(CASES):
                try:
                    problems += check_case(args, corpus, net, name, CASES[name], file_cache)
                except RuntimeError as e:
                    problems.append(str(e))
    except skip as e:
        print(f"SKIP: {e}")
        return mpi.SKIP
    for p in problems:
        print("FAIL:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
