#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""metaprobe exporter benchmark: one metaprobe-exporter process fed at full
speed, for the figures "IPFIX records/s encoded and sent per exporter
process" and "text lines/s".

1. Records: metaprobe-capture runs once on the benchmark capture with the
   clickstream group on (http_parse_reply=1, ssl_parse_reply=1) and
   `metaprobe-bench-feed record` stores what it publishes on the
   clickstream.ipfix channel (cached as BUILD/bench/clickstream.batches):
   real clickstream, http_reply and ssl_reply records.
2. Per scenario and run: one metaprobe-exporter is started for the channel
   under test and `metaprobe-bench-feed replay` pushes the stored batches
   over and over (fresh sequence numbers, no re-encoding) until --records
   records are sent, then end of stream. The exporter exits after the last
   record; its CPU time and peak RSS come from wait4().

Figures (median of the runs):
  records/s        records / wall time from the feeder's start to the
                   exporter's exit (the feeder keeps the exporter busy:
                   ZeroMQ queues are full while it works)
  records/CPU-s    records / exporter user+system CPU: what one process on
                   one core does
  CPU s / Mrec     exporter CPU per million records
  peak RSS         exporter maximum resident set

Scenarios:
  ipfix-udp   clickstream.ipfix to a UDP collector on 127.0.0.1 (a socket
              that never reads: the kernel takes every datagram and drops
              it, as a collector that keeps up costs the exporter the same)
  ipfix-file  clickstream.ipfix to an IPFIX file
  text        clickstream.text: url and ssl text files (lines counted)
"""

import argparse
import datetime
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run_bench import git_rev, machine, wait_rusage  # noqa: E402

BEGIN, END = "<!-- bench:exporter:begin -->", "<!-- bench:exporter:end -->"


def endpoint_of(base_dir, channel):
    group, sink = channel.split(".")
    return f"ipc://{base_dir}/ch-{group}-{sink}"


def record_batches(args, out: Path):
    ipc = tempfile.mkdtemp(prefix="mp-xbench-", dir="/tmp")
    tmp = Path(tempfile.mkdtemp(prefix="mp-xbench-rec-", dir=args.work_dir))
    try:
        feed = subprocess.Popen([args.feed, "record", "--endpoint",
                                 endpoint_of(ipc, "clickstream.ipfix"), "--out", str(out) + ".tmp"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        sets = [f"input=pcap:{args.pcap}", f"channel_endpoint=ipc://{ipc}/ch",
                f"ipfix_file={tmp}/unused.ipfix", "http_parse_reply=1", "ssl_parse_reply=1",
                f"log_dir={tmp}/log", f"run_dir={tmp}/run"]
        cmd = [str(Path(args.bin_dir) / "metaprobe-capture")]
        for s in sets:
            cmd += ["--set", s]
        cap = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
        if cap.returncode != 0:
            feed.kill()
            raise RuntimeError("recording capture failed:\n" + cap.stderr[-2000:])
        msg, _ = feed.communicate(timeout=120)
        if feed.returncode != 0:
            raise RuntimeError("bench-feed record failed: " + msg)
        os.replace(str(out) + ".tmp", out)
        print("exporter bench: " + msg.strip() + f" -> {out}")
    finally:
        shutil.rmtree(ipc, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)


SCENARIOS = {
    "ipfix-udp": ("clickstream.ipfix", "IPFIX over UDP to 127.0.0.1 (clickstream, http_reply, ssl_reply templates)"),
    "ipfix-file": ("clickstream.ipfix", "IPFIX file"),
    "text": ("clickstream.text", "url + ssl text files"),
}


def run_once(args, name, batches: Path):
    channel, _ = SCENARIOS[name]
    ipc = tempfile.mkdtemp(prefix="mp-xbench-", dir="/tmp")
    tmp = Path(tempfile.mkdtemp(prefix=f"mp-xbench-{name}-", dir=args.work_dir))
    sink_sock = None
    try:
        sets = [f"channel_endpoint=ipc://{ipc}/ch", f"log_dir={tmp}/log", f"run_dir={tmp}/run",
                "http_parse_reply=1", "ssl_parse_reply=1"]
        if name == "ipfix-udp":
            sink_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sink_sock.bind(("127.0.0.1", 0))
            sets.append(f"ipfix_udp_collectors=127.0.0.1:{sink_sock.getsockname()[1]}")
        elif name == "ipfix-file":
            sets.append(f"ipfix_file={tmp}/out.ipfix")
        else:
            (tmp / "text").mkdir()
            sets += ["ajb_save_url=1", "ajb_save_ssl=-1", f"ajb_url_path={tmp}/text",
                     f"ajb_ssl_path={tmp}/text"]
        cmd = [str(Path(args.bin_dir) / "metaprobe-exporter"), "--channel", channel, "--instance", "0"]
        for s in sets:
            cmd += ["--set", s]
        log = open(tmp / "exporter.log", "wb")
        exp = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, cwd=tmp)
        t0 = time.monotonic()
        feed = subprocess.run([args.feed, "replay", "--endpoint", endpoint_of(ipc, channel),
                               "--in", str(batches), "--records", str(args.records)],
                              capture_output=True, text=True, timeout=1800)
        if feed.returncode != 0:
            exp.kill()
            exp.wait()
            log.close()
            tail = "\n".join((tmp / "exporter.log").read_text(errors="replace").splitlines()[-10:])
            raise RuntimeError(f"{name}: bench-feed replay failed: {feed.stderr}exporter log:\n{tail}")
        sent = int(feed.stdout.split()[1])
        rc, ru = wait_rusage(exp, 600)
        wall = time.monotonic() - t0
        log.close()
        text = (tmp / "exporter.log").read_text(errors="replace")
        if rc != 0:
            raise RuntimeError(f"{name}: exporter exit {rc}:\n" + "\n".join(text.splitlines()[-15:]))
        counters = {}
        for line in text.splitlines():
            parts = line.rsplit(" = ", 1)
            if len(parts) == 2 and parts[1].strip().isdigit():
                counters[parts[0].split()[-1]] = int(parts[1])
        got = counters.get(f"exporter.{channel}.0.records")
        if got != sent:
            raise RuntimeError(f"{name}: the exporter counted {got} records, the feeder sent {sent}")
        lines = None
        if name == "text":
            lines = sum(sum(1 for _ in open(f, "rb")) for f in (tmp / "text").rglob("*") if f.is_file())
        else:
            out = sum(v for k, v in counters.items() if k.endswith(".records_sent") or ".records_sent{" in k)
            if out == 0:
                raise RuntimeError(f"{name}: nothing sent:\n" + "\n".join(text.splitlines()[-20:]))
        return {"records": sent, "wall": wall, "cpu": ru.ru_utime + ru.ru_stime,
                "rss": ru.ru_maxrss / 1024, "lines": lines}
    finally:
        if sink_sock:
            sink_sock.close()
        shutil.rmtree(ipc, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--pcap", required=True)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--records", type=int, default=5_000_000)
    ap.add_argument("--scenario", action="append", choices=sorted(SCENARIOS))
    ap.add_argument("--work-dir", default=None)
    ap.add_argument("--doc")
    ap.add_argument("--note", default="")
    args = ap.parse_args(argv)
    args.bin_dir = str(Path(args.bin_dir).resolve())
    args.pcap = str(Path(args.pcap).resolve())
    args.feed = str(Path(args.bin_dir) / "metaprobe-bench-feed")
    for b in ("metaprobe-capture", "metaprobe-exporter", "metaprobe-bench-feed"):
        if not os.access(Path(args.bin_dir) / b, os.X_OK):
            print(f"{Path(args.bin_dir) / b} is missing: build it first", file=sys.stderr)
            return 1
    work = Path(args.work_dir or tempfile.gettempdir()).resolve()
    work.mkdir(parents=True, exist_ok=True)
    args.work_dir = str(work)
    batches = work / "clickstream.batches"
    if not batches.exists() or batches.stat().st_mtime < Path(args.pcap).stat().st_mtime:
        record_batches(args, batches)
    else:
        print(f"exporter bench: reusing {batches} (delete it to record again)")
    rows = []
    for name in args.scenario or list(SCENARIOS):
        runs = []
        for i in range(args.runs):
            r = run_once(args, name, batches)
            runs.append(r)
            extra = f", {r['lines']:,} lines" if r["lines"] is not None else ""
            print(f"  {name} run {i + 1}: {r['records']:,} records in {r['wall']:.2f} s wall, "
                  f"{r['cpu']:.2f} s CPU, maxrss {r['rss']:.0f} MiB{extra}", flush=True)
        rec = runs[0]["records"]
        row = {"name": name, "title": SCENARIOS[name][1], "records": rec, "runs": len(runs),
               "rps": statistics.median(rec / r["wall"] for r in runs),
               "rpcpu": statistics.median(rec / r["cpu"] for r in runs),
               "cpu_per_m": statistics.median(r["cpu"] / (rec / 1e6) for r in runs),
               "rss": statistics.median(r["rss"] for r in runs)}
        if runs[0]["lines"] is not None:
            row["lps"] = statistics.median(r["lines"] / r["wall"] for r in runs)
            row["lpcpu"] = statistics.median(r["lines"] / r["cpu"] for r in runs)
            row["lines"] = runs[0]["lines"]
        rows.append(row)
    nproc, model = machine()
    date = datetime.datetime.now().strftime("%Y-%m-%d %H:%M")
    rev = git_rev(Path(__file__).resolve().parents[2])
    md = ["| exporter scenario | records/s | records per CPU-s | CPU s / Mrec | text lines/s | text lines per CPU-s | peak RSS MiB | runs |",
          "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lps = f"{r['lps']:,.0f}" if "lps" in r else "—"
        lpcpu = f"{r['lpcpu']:,.0f}" if "lpcpu" in r else "—"
        md.append(f"| `{r['name']}` | {r['rps']:,.0f} | {r['rpcpu']:,.0f} | {r['cpu_per_m']:.2f} | "
                  f"{lps} | {lpcpu} | {r['rss']:.0f} | {r['runs']} |")
    md += ["", f"Measured {date} at commit `{rev}` on {nproc} × {model}; one metaprobe-exporter "
           f"process, {rows[0]['records']:,} records per run (clickstream records recorded from "
           f"`{Path(args.pcap).name}`), median of {args.runs} runs; load average "
           f"{os.getloadavg()[0]:.1f} at the end."]
    if args.note:
        md += ["", args.note]
    md.append("")
    for r in rows:
        md.append(f"- `{r['name']}`: {r['title']}.")
    block = "\n".join(md)
    print("\n" + block)
    if args.doc:
        doc = Path(args.doc)
        text = doc.read_text() if doc.exists() else ""
        if BEGIN in text and END in text:
            text = text[:text.index(BEGIN) + len(BEGIN)] + "\n" + block + "\n" + text[text.index(END):]
        else:
            text += f"\n## Exporter figures\n\n{BEGIN}\n{block}\n{END}\n"
        doc.write_text(text)
        print(f"\nexporter figures written to {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
