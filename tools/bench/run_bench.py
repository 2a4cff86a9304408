#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""metaprobe benchmark: runs metaprobe-capture on the benchmark capture in
each scenario N times and reports the median of

  packets/s      packets / wall time of the capture process
  Gbit/s         frame bytes on the wire (pcap orig_len, no preamble/IFG)
                 * 8 / wall time
  CPU s/Mpkt     user + system CPU of the capture process per million packets
  peak RSS       maximum resident set of the capture process (MiB)
  exporter CPU   user + system CPU of the exporter processes (where started)
  IPFIX MB       bytes the exporters wrote (a scenario that exports nothing fails)

The capture process is started directly (not through the appliance) so its
own resource usage is measured with wait4(); scenarios that export start
the exporters the appliance would start for their channels, exactly as
`metaprobe` does (`--channel <group>.<sink> --instance N`).

Scenarios are a list (SCENARIOS below); later ones (exporters over UDP/TCP,
DPDK) are added there. `--scenario NAME` runs only the named ones. A
scenario that needs DPDK is left out (and says so) when metaprobe-capture
was built without it.

Usage: run_bench.py --bin-dir BUILD/bin --pcap FILE [--runs 5] [--doc docs/benchmarks.md]
"""

import argparse
import datetime
import os
import re
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# DPDK scenarios: the benchmark capture through a net_pcap vdev, anonymous
# memory (no hugepages), main lcore 0, no shared config files.
DPDK_EAL_ARGS = "--no-huge --no-pci --no-shconf -m 512 -l 0 --vdev=net_pcap0,rx_pcap={pcap}"

# name, what it measures, appliance keys (paths relative to the run's temp
# dir via {tmp}), the channels whose exporters to start, enabled by default
SCENARIOS = [
    {
        "name": "capture-all-ipfix",
        "title": "capture, all four IPFIX channels on, exporters writing IPFIX files",
        "sets": ["ipfix_file={tmp}/clickstream.ipfix", "ipfix_meta_file={tmp}/meta.ipfix",
                 "ipfix_dns_file={tmp}/dns.ipfix", "ipfix_full_file={tmp}/fullflow.ipfix",
                 "http_parse_reply=1", "ssl_parse_reply=1"],
        "exporters": ["clickstream.ipfix", "meta.ipfix", "dns.ipfix", "fullflow.ipfix"],
        "enabled": True,
    },
    {
        "name": "capture-no-channels",
        "title": "capture alone, no export channel (records counted, not exported)",
        "sets": [],
        "exporters": [],
        "enabled": True,
    },
    {
        # the worker-scaling figure: capture-no-channels with two worker
        # shards (compare with capture-no-channels, workers=1)
        "name": "capture-no-channels-w2",
        "title": "capture alone as capture-no-channels, workers=2 (two classifier/parser shards)",
        "sets": [],
        "exporters": [],
        "workers": 2,
        "enabled": True,
    },
    {
        # the cost of decapsulation: compare with capture-all-ipfix
        "name": "capture-all-ipfix-vxlan",
        "title": "as capture-all-ipfix, every frame wrapped in VXLAN (outer IPv4/UDP 4789, tools/bench/wrap_pcap.py)",
        "wrap": "vxlan",
        "sets": ["ipfix_file={tmp}/clickstream.ipfix", "ipfix_meta_file={tmp}/meta.ipfix",
                 "ipfix_dns_file={tmp}/dns.ipfix", "ipfix_full_file={tmp}/fullflow.ipfix",
                 "http_parse_reply=1", "ssl_parse_reply=1"],
        "exporters": ["clickstream.ipfix", "meta.ipfix", "dns.ipfix", "fullflow.ipfix"],
        "enabled": True,
    },
    {
        "name": "capture-all-ipfix-erspan",
        "title": "as capture-all-ipfix, every frame wrapped in ERSPAN type II over GRE (tools/bench/wrap_pcap.py)",
        "wrap": "erspan",
        "sets": ["ipfix_file={tmp}/clickstream.ipfix", "ipfix_meta_file={tmp}/meta.ipfix",
                 "ipfix_dns_file={tmp}/dns.ipfix", "ipfix_full_file={tmp}/fullflow.ipfix",
                 "http_parse_reply=1", "ssl_parse_reply=1"],
        "exporters": ["clickstream.ipfix", "meta.ipfix", "dns.ipfix", "fullflow.ipfix"],
        "enabled": True,
    },
    {
        # needs DPDK (left out when the build has none)
        "name": "dpdk-pcap-all-ipfix",
        "title": "as capture-all-ipfix, the capture read through DPDK's net_pcap vdev (--no-huge)",
        "input": "dpdk",
        "sets": ["dpdk_eal_args=" + DPDK_EAL_ARGS,
                 "ipfix_file={tmp}/clickstream.ipfix", "ipfix_meta_file={tmp}/meta.ipfix",
                 "ipfix_dns_file={tmp}/dns.ipfix", "ipfix_full_file={tmp}/fullflow.ipfix",
                 "http_parse_reply=1", "ssl_parse_reply=1"],
        "exporters": ["clickstream.ipfix", "meta.ipfix", "dns.ipfix", "fullflow.ipfix"],
        "needs": "dpdk",
        "enabled": True,
    },
    {
        "name": "dpdk-pcap-no-channels",
        "title": "as capture-no-channels, the capture read through DPDK's net_pcap vdev (--no-huge)",
        "input": "dpdk",
        "sets": ["dpdk_eal_args=" + DPDK_EAL_ARGS],
        "exporters": [],
        "needs": "dpdk",
        "enabled": True,
    },
]

STAT_LINE = re.compile(r"\b(capture\.[a-z_.]+) = (\d+)\s*$")


def pcap_totals(path: Path):
    """(packets, wire bytes) of a classic pcap, read from its record headers."""
    packets = wire = 0
    with open(path, "rb") as f:
        hdr = f.read(24)
        if len(hdr) < 24:
            raise ValueError(f"{path}: not a pcap file")
        magic = struct.unpack("<I", hdr[:4])[0]
        endian = "<" if magic in (0xA1B2C3D4, 0xA1B23C4D) else ">"
        while True:
            rh = f.read(16)
            if len(rh) < 16:
                break
            _, _, incl, orig = struct.unpack(endian + "IIII", rh)
            f.seek(incl, 1)
            packets += 1
            wire += orig
    return packets, wire


def dpdk_built(bin_dir: Path) -> bool:
    """Whether metaprobe-capture has the DPDK input: asked to open a DPDK
    input without any port, it says which it is and exits at once."""
    with tempfile.TemporaryDirectory(prefix="mp-bench-probe-") as tmp:
        res = subprocess.run([str(bin_dir / "metaprobe-capture"), "--set", "input=dpdk",
                              "--set", "dpdk_eal_args=--no-huge --no-pci --no-shconf -m 64",
                              "--set", f"channel_endpoint=ipc://{tmp}/ch",
                              "--set", f"log_dir={tmp}/log", "--set", f"run_dir={tmp}/run"],
                             capture_output=True, text=True, timeout=60)
    return "built without DPDK" not in res.stdout + res.stderr


def machine():
    model = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return os.cpu_count() or 0, model


def git_rev(repo: Path) -> str:
    try:
        rev = subprocess.run(["git", "-C", str(repo), "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return rev + ("+dirty" if dirty else "") if rev else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def wait_rusage(proc: subprocess.Popen, timeout: float):
    """wait4() on a child: (exit status, rusage). Kills it after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        if pid == proc.pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            return proc.returncode, ru
        if time.monotonic() > deadline:
            proc.kill()
            pid, status, ru = os.wait4(proc.pid, 0)
            proc.returncode = os.waitstatus_to_exitcode(status)
            return None, ru
        time.sleep(0.02)


def wrapped_pcap(pcap: Path, kind: str, work_dir: Path) -> Path:
    """The benchmark capture wrapped in a tunnel (tools/bench/wrap_pcap.py),
    built once next to the runs and rebuilt when the capture is newer."""
    out = Path(work_dir) / f"{pcap.stem}-{kind}.pcap"
    if not out.exists() or out.stat().st_mtime < pcap.stat().st_mtime:
        print(f"bench: wrapping {pcap.name} in {kind} -> {out}", flush=True)
        tmp = out.with_suffix(".tmp")
        subprocess.run([sys.executable, str(Path(__file__).with_name("wrap_pcap.py")), kind,
                        str(pcap), str(tmp)], check=True)
        tmp.rename(out)
    return out


def run_once(args, sc, pcap: Path, run_no: int):
    if sc.get("wrap"):
        pcap = wrapped_pcap(pcap, sc["wrap"], args.work_dir or tempfile.gettempdir())
    tmp = Path(tempfile.mkdtemp(prefix=f"mp-bench-{sc['name']}-", dir=args.work_dir))
    # ipc sockets in a short private folder (sun_path holds 108 bytes),
    # removed after the run with whatever socket files are left
    ipc_dir = tempfile.mkdtemp(prefix="mp-bench-", dir="/tmp")
    endpoint = f"ipc://{ipc_dir}/ch"
    sets = [f"input={'pcap:' + str(pcap) if sc.get('input', 'pcap') == 'pcap' else sc['input']}",
            f"channel_endpoint={endpoint}", f"log_dir={tmp}/log", f"run_dir={tmp}/run",
            f"workers={sc.get('workers', args.workers)}", "log_level=info"]
    sets += [s.format(tmp=tmp, pcap=pcap) for s in sc["sets"]]
    common = []
    for s in sets:
        common += ["--set", s]
    bin_dir = Path(args.bin_dir)
    exporters = []
    try:
        for ch in sc["exporters"]:
            log = open(tmp / f"exporter-{ch}.log", "wb")
            exporters.append((ch, subprocess.Popen(
                [str(bin_dir / "metaprobe-exporter")] + common + ["--channel", ch, "--instance", "0"],
                stdout=log, stderr=subprocess.STDOUT, cwd=tmp)))
        cap_log = tmp / "capture.log"
        with open(cap_log, "wb") as log:
            t0 = time.monotonic()
            cap = subprocess.Popen([str(bin_dir / "metaprobe-capture")] + common,
                                   stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
            rc, ru = wait_rusage(cap, args.timeout)
            wall = time.monotonic() - t0
        exp_cpu = 0.0
        exp_failed = []
        for ch, p in exporters:
            erc, eru = wait_rusage(p, 120)
            exp_cpu += eru.ru_utime + eru.ru_stime
            if erc != 0:
                exp_failed.append(f"{ch} exit {erc}")
        out_bytes = sum(f.stat().st_size for f in tmp.glob("*.ipfix"))
        if sc["exporters"] and out_bytes == 0:
            raise RuntimeError(f"{sc['name']} run {run_no}: the exporters wrote no IPFIX data")
        text = cap_log.read_text(errors="replace")
        stats = {m.group(1): int(m.group(2)) for m in map(STAT_LINE.search, text.splitlines()) if m}
        if rc != 0:
            raise RuntimeError(f"{sc['name']} run {run_no}: metaprobe-capture exit {rc}:\n"
                               + "\n".join(text.splitlines()[-15:]))
        if exp_failed:
            raise RuntimeError(f"{sc['name']} run {run_no}: exporters failed: {', '.join(exp_failed)}")
        return {"wall": wall, "cpu": ru.ru_utime + ru.ru_stime, "user": ru.ru_utime,
                "sys": ru.ru_stime, "maxrss_kib": ru.ru_maxrss, "exp_cpu": exp_cpu,
                "packets": stats.get("capture.packets"), "wire": stats.get("capture.wire_bytes"),
                "out_bytes": out_bytes, "stats": stats}
    finally:
        for _, p in exporters:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(ipc_dir, ignore_errors=True)


def summarise(sc, runs, file_packets, file_wire):
    packets = runs[0]["packets"] or file_packets
    wire = runs[0]["wire"] or file_wire
    pps = [packets / r["wall"] for r in runs]
    gbps = [wire * 8 / r["wall"] / 1e9 for r in runs]
    cpu_per_m = [r["cpu"] / (packets / 1e6) for r in runs]
    rss = [r["maxrss_kib"] / 1024 for r in runs]
    exp = [r["exp_cpu"] / (packets / 1e6) for r in runs]
    return {
        "name": sc["name"], "title": sc["title"], "runs": len(runs), "packets": packets,
        "counted_packets": runs[0]["packets"], "pps": statistics.median(pps),
        "gbps": statistics.median(gbps), "cpu_per_m": statistics.median(cpu_per_m),
        "rss_mib": statistics.median(rss), "exp_cpu_per_m": statistics.median(exp) if sc["exporters"] else None,
        "wall": statistics.median(r["wall"] for r in runs),
        "pps_range": (min(pps), max(pps)),
        "out_mb": statistics.median(r["out_bytes"] for r in runs) / 1e6,
    }


def table(rows) -> str:
    out = ["| scenario | packets/s | Gbit/s | CPU s / Mpkt (capture) | peak RSS MiB | CPU s / Mpkt (exporters) | IPFIX MB | wall s | runs |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        exp = f"{r['exp_cpu_per_m']:.2f}" if r["exp_cpu_per_m"] is not None else "—"
        mb = f"{r['out_mb']:.1f}" if r["exp_cpu_per_m"] is not None else "—"
        out.append(f"| `{r['name']}` | {r['pps']:,.0f} | {r['gbps']:.3f} | {r['cpu_per_m']:.2f} | "
                   f"{r['rss_mib']:.0f} | {exp} | {mb} | {r['wall']:.2f} | {r['runs']} |")
    return "\n".join(out)


BEGIN, END = "<!-- bench:figures:begin -->", "<!-- bench:figures:end -->"
HBEGIN, HEND = "<!-- bench:history:begin -->", "<!-- bench:history:end -->"


def update_doc(doc: Path, block: str, history_rows):
    text = doc.read_text() if doc.exists() else ""
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN) + len(BEGIN)] + "\n" + block + "\n" + text[text.index(END):]
    else:
        text += f"\n## Latest figures\n\n{BEGIN}\n{block}\n{END}\n"
    if HBEGIN in text and HEND in text:
        i = text.index(HEND)
        text = text[:i] + "".join(r + "\n" for r in history_rows) + text[i:]
    else:
        text += (f"\n## History\n\n{HBEGIN}\n| date | commit | scenario | packets/s | CPU s / Mpkt |\n"
                 f"| --- | --- | --- | ---: | ---: |\n"
                 + "".join(r + "\n" for r in history_rows) + f"{HEND}\n")
    doc.write_text(text)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir")
    ap.add_argument("--pcap")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--scenario", action="append", help="run only these (default: every enabled one)")
    ap.add_argument("--doc", help="markdown file whose figures section is replaced")
    ap.add_argument("--note", default="", help="a line printed under the table (machine caveats)")
    ap.add_argument("--timeout", type=float, default=1800, help="seconds per capture run")
    ap.add_argument("--work-dir", default=None)
    ap.add_argument("--list", action="store_true", help="list the scenarios and exit")
    args = ap.parse_args(argv)
    if args.list:
        for sc in SCENARIOS:
            print(f"{sc['name']:24s} {'on ' if sc['enabled'] else 'off'} {sc['title']}")
        return 0
    if not args.bin_dir or not args.pcap:
        ap.error("--bin-dir and --pcap are required")
    pcap = Path(args.pcap).resolve()
    chosen = [s for s in SCENARIOS if (s["name"] in args.scenario if args.scenario else s["enabled"])]
    if args.scenario and len(chosen) != len(set(args.scenario)):
        known = ", ".join(s["name"] for s in SCENARIOS)
        print(f"unknown scenario in {args.scenario}; known: {known}", file=sys.stderr)
        return 2
    for b in ("metaprobe-capture", "metaprobe-exporter"):
        if not os.access(Path(args.bin_dir) / b, os.X_OK):
            print(f"{Path(args.bin_dir) / b} is missing: build it first", file=sys.stderr)
            return 1
    if any(s.get("needs") == "dpdk" for s in chosen) and not dpdk_built(Path(args.bin_dir)):
        print("metaprobe-capture was built without DPDK: leaving out "
              + ", ".join(s["name"] for s in chosen if s.get("needs") == "dpdk"))
        chosen = [s for s in chosen if s.get("needs") != "dpdk"]
    file_packets, file_wire = pcap_totals(pcap)
    # warm the page cache so the first run does not pay for the disk
    with open(pcap, "rb") as f:
        while f.read(1 << 24):
            pass
    nproc, model = machine()
    load = os.getloadavg()[0]
    print(f"benchmark capture {pcap}: {file_packets:,} packets, {file_wire / 1e6:,.1f} MB on the wire")
    rows = []
    for sc in chosen:
        runs = []
        for i in range(args.runs):
            r = run_once(args, sc, pcap, i + 1)
            runs.append(r)
            cnt = r["packets"]
            print(f"  {sc['name']} run {i + 1}: {r['wall']:.2f} s wall, {r['cpu']:.2f} s CPU "
                  f"(user {r['user']:.2f}, sys {r['sys']:.2f}), maxrss {r['maxrss_kib'] / 1024:.0f} MiB, "
                  f"capture.packets {cnt}, exporters {r['exp_cpu']:.2f} s CPU, "
                  f"{r['out_bytes'] / 1e6:.1f} MB IPFIX", flush=True)
            if cnt is not None and cnt != file_packets:
                print(f"  warning: capture counted {cnt} packets, the file has {file_packets}")
        rows.append(summarise(sc, runs, file_packets, file_wire))
    date = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    repo = Path(__file__).resolve().parents[2]
    rev = git_rev(repo)
    md = [table(rows), "",
          f"Measured {date} at commit `{rev}` on {nproc} × {model}; "
          f"capture `{pcap.name}` ({file_packets:,} packets, {file_wire / 1e6:,.1f} MB), "
          f"workers={args.workers} unless the scenario says otherwise, median of {args.runs} runs; "
          f"load average {load:.1f} at the start."]
    if args.note:
        md.append("")
        md.append(args.note)
    by_name = {r["name"]: r for r in rows}
    one, two = by_name.get("capture-no-channels"), by_name.get("capture-no-channels-w2")
    if one and two:
        md.append("")
        md.append(f"Worker scaling (capture-no-channels): workers=2 runs at "
                  f"{two['pps'] / one['pps']:.2f}× the packets/s of workers=1 "
                  f"({two['pps']:,.0f} vs {one['pps']:,.0f}) on {nproc} CPUs, using "
                  f"{two['cpu_per_m'] / one['cpu_per_m']:.2f}× the CPU per packet.")
    md.append("")
    for r in rows:
        md.append(f"- `{r['name']}`: {r['title']} (packets/s range {r['pps_range'][0]:,.0f}–{r['pps_range'][1]:,.0f}).")
    block = "\n".join(md)
    print("\n" + block)
    if args.doc:
        hist = [f"| {date} | `{rev}` | `{r['name']}` | {r['pps']:,.0f} | {r['cpu_per_m']:.2f} |" for r in rows]
        update_doc(Path(args.doc), block, hist)
        print(f"\nfigures written to {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
