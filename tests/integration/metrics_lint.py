#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""`promtool check metrics` on the /metrics of every process of a running
appliance, and the naming conventions of docs/console.md ("/metrics").

The appliance reads the bundled demo capture through a FIFO that this
script keeps open, so it keeps running, with every channel active: IPFIX
files of the four sink groups, a TCP collector (clickstream) and a UDP
collector (dns) on loopback, the url, ssl, sip and dns text files, two
clickstream exporter instances. Once every process's /metrics answers
with the families it must have (the capture its capture, classifier,
parser and publisher metrics, every exporter its own and its sinks'
metrics, with traffic counted), each body is
  1. given to `promtool check metrics`, which must exit 0 and print
     nothing (its lint: base units, _total on counters only, HELP present);
  2. checked here as well: one HELP and one TYPE per family, before its
     samples; counters end in _total, nothing else does; no word of a name
     is a unit other than a base one (_ms, _us, _octets, _milliseconds...); HELP
     text says more than the name; label names valid; no series twice.
Then the FIFO is closed and the appliance must exit 0.

Usage: metrics_lint.py --bin-dir BUILD/bin [--work-dir DIR] [--timeout S] [--capture PCAP]
(--capture: another classic pcap, e.g. of the corpus, to lint the counters
it brings up; its exporters need not get records, its records are fed twice.)
exit 0 pass, 1 fail, 77 when promtool (Debian package prometheus) is missing.
"""

import argparse
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mp_integration as mpi  # noqa: E402

HERE = Path(__file__).resolve().parent
CAPTURE = HERE.parent / "data" / "demo" / "mixed-browsing-pcpp-example.pcap"
CONFIG = HERE / "configs" / "truth.conf"

# channel -> (index of core/channels.hpp, exporter instances)
CHANNELS = {
    "clickstream.ipfix": (0, 2), "clickstream.text": (1, 1),
    "meta.ipfix": (2, 1), "meta.text": (3, 1),
    "dns.ipfix": (4, 1), "dns.text": (5, 1),
    "fullflow.ipfix": (6, 1),
}
# channels whose records the demo capture (http, tls, dns) produces
CHANNELS_WITH_RECORDS = ("clickstream.ipfix", "clickstream.text", "dns.ipfix", "dns.text",
                         "fullflow.ipfix")

# process name -> port offset (control/control_endpoints.hpp)
PROCESSES = {"metaprobe": 0, "capture": 1}
for _ch, (_index, _n) in CHANNELS.items():
    for _i in range(_n):
        PROCESSES[f"exporter {_ch}#{_i}"] = 2 + 64 * _index + _i

COMMON_FAMILIES = {"metaprobe_process_uptime_seconds": "gauge",
                   "metaprobe_control_requests_total": "counter",
                   "metaprobe_control_refused_total": "counter"}
CAPTURE_FAMILIES = {
    "metaprobe_actor_messages_in_total": "counter",
    "metaprobe_actor_mailbox_depth": "gauge",
    "metaprobe_capture_packets_total": "counter",
    "metaprobe_classifier_flows_created_total": "counter",
    "metaprobe_classifier_flows_active": "gauge",
    "metaprobe_classifier_probe_bytes_total": "counter",
    "metaprobe_parser_records_total": "counter",
    "metaprobe_parser_active_flows": "gauge",
    "metaprobe_parser_scanned_bytes_total": "counter",
    "metaprobe_correlator_records_total": "counter",
    "metaprobe_publisher_records_sent_total": "counter",
    "metaprobe_publisher_exporters_connected": "gauge",
    # the memory budget (docs/limits.md, "Memory budget")
    "metaprobe_memory_limit_bytes": "gauge",
    "metaprobe_memory_used_bytes": "gauge",
    "metaprobe_memory_pressure": "gauge",
    "metaprobe_memory_evicted_total": "counter",
    "metaprobe_classifier_memory_charged_bytes": "gauge",
    "metaprobe_parser_memory_charged_bytes": "gauge",
}
EXPORTER_FAMILIES = {
    "metaprobe_actor_messages_in_total": "counter",
    "metaprobe_exporter_records_total": "counter",
    "metaprobe_exporter_send_cycle_max_seconds": "gauge",
}
IPFIX_SINK_FAMILIES = {
    "metaprobe_exporter_sink_records_sent_total": "counter",
    "metaprobe_exporter_sink_sent_bytes_total": "counter",
}
TEXT_SINK_FAMILIES = {
    "metaprobe_exporter_sink_records_written_total": "counter",
    "metaprobe_exporter_sink_written_bytes_total": "counter",
}
APPLIANCE_FAMILIES = {"metaprobe_appliance_children_alive": "gauge",
                      "metaprobe_appliance_exporter_restarts_total": "counter"}

# Units that are not base units, as a word of a name.
NON_BASE_UNIT = re.compile(
    r"_(ms|us|ns|sec|secs|msec|usec|nsec|minutes|hours|days|kb|mb|gb|kib|mib|gib|octets|bits|"
    r"(milli|micro|nano|kilo|mega|giga|kibi|mebi|gibi)(seconds|bytes))(?=_|$)")
# what control/metric_families.cpp says of a counter it does not know
FALLBACK_HELP = re.compile(r"^\w+ counter \w+")
LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$")
LABEL_PAIR = re.compile(r'([^=,]+)="((?:[^"\\]|\\.)*)"')

failures = mpi.failures


def check(cond, what, detail=""):
    return mpi.check(cond, what, str(detail)[:2000])


def expected_families(who):
    want = dict(COMMON_FAMILIES)
    if who == "metaprobe":
        want.update(APPLIANCE_FAMILIES)
    elif who == "capture":
        want.update(CAPTURE_FAMILIES)
    else:
        want.update(EXPORTER_FAMILIES)
        want.update(TEXT_SINK_FAMILIES if ".text#" in who else IPFIX_SINK_FAMILIES)
    return want


def parse_exposition(text):
    """Families of a text-format 0.0.4 body: name -> {help, type, samples},
    and the problems found on the way (a list of strings)."""
    fams, problems, series = {}, [], set()
    for n, line in enumerate(text.splitlines(), 1):
        if not line:
            continue
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            parts = line.split(" ", 3)
            if len(parts) < 4:
                problems.append(f"line {n}: incomplete {parts[1]} line: {line}")
                continue
            key = "help" if parts[1] == "HELP" else "type"
            f = fams.setdefault(parts[2], {"help": None, "type": None, "samples": []})
            if f[key] is not None:
                problems.append(f"line {n}: second {parts[1]} for {parts[2]}")
            if f["samples"]:
                problems.append(f"line {n}: {parts[1]} of {parts[2]} after its samples")
            f[key] = parts[3]
            continue
        if line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            problems.append(f"line {n}: not a sample: {line}")
            continue
        name, labels = m.group(1), m.group(3) or ""
        f = fams.get(name)
        if f is None or f["type"] is None:
            problems.append(f"line {n}: sample of {name} without # TYPE")
            f = fams.setdefault(name, {"help": None, "type": None, "samples": []})
        pairs = LABEL_PAIR.findall(labels)
        for k, _ in pairs:
            if not LABEL_NAME.match(k) or k.startswith("__"):
                problems.append(f"line {n}: bad label name {k!r}")
        key = (name, tuple(sorted(pairs)))
        if key in series:
            problems.append(f"line {n}: series twice: {line}")
        series.add(key)
        f["samples"].append((dict(pairs), float(m.group(4))))
    return fams, problems


def convention_problems(fams):
    out = []
    for name, f in sorted(fams.items()):
        t, h = f["type"], f["help"]
        if t not in ("counter", "gauge"):
            out.append(f"{name}: type {t!r} (counter or gauge expected)")
        if (t == "counter") != name.endswith("_total"):
            out.append(f"{name}: a {t} " + ("must end in _total" if t == "counter"
                                              else "must not end in _total"))
        if NON_BASE_UNIT.search(name):
            out.append(f"{name}: not in base units (_seconds, _bytes)")
        base = name[len("metaprobe_"):].removesuffix("_total")
        if not h or base in h or FALLBACK_HELP.match(h) or len(h.split()) < 3:
            out.append(f"{name}: HELP {h!r} says no more than the name")
        if not name.startswith("metaprobe_"):
            out.append(f"{name}: not prefixed metaprobe_")
    return out


def promtool_problems(promtool, text):
    p = subprocess.run([promtool, "check", "metrics"], input=text.encode("utf-8"),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=30)
    out = p.stdout.decode("utf-8", "replace").strip()
    return p.returncode, out


def value_of(fams, name, **labels):
    """Sum of the samples of `name` whose labels include `labels`."""
    f = fams.get(name)
    if not f:
        return 0.0
    return sum(v for l, v in f["samples"] if all(l.get(k) == x for k, x in labels.items()))


def ready(who, fams, records_expected=CHANNELS_WITH_RECORDS):
    """True when `who` exports what the checks below need, with traffic."""
    if any(n not in fams for n in expected_families(who)):
        return False
    if who == "capture":
        return (value_of(fams, "metaprobe_classifier_flows_created_total") > 0 and
                value_of(fams, "metaprobe_publisher_records_sent_total") > 0)
    if who.startswith("exporter") and who.split(" ")[1].split("#")[0] in records_expected:
        return value_of(fams, "metaprobe_exporter_records_total") > 0
    return True


def scrape_all(mbase):
    bodies = {}
    for who, off in PROCESSES.items():
        try:
            status, ctype, text = mpi.scrape_metrics(mbase + off, timeout=5)
        except OSError as e:
            bodies[who] = (None, "", str(e))
            continue
        bodies[who] = (status, ctype, text)
    return bodies


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--work-dir")
    ap.add_argument("--timeout", type=float, default=60)
    ap.add_argument("--capture", type=Path, default=CAPTURE)
    args = ap.parse_args()
    bin_dir = Path(args.bin_dir).resolve()
    records_expected = CHANNELS_WITH_RECORDS if args.capture == CAPTURE else ()
    promtool = shutil.which("promtool")
    if not promtool:
        print("SKIP: promtool is not installed (Debian package prometheus, deploy/install-deps.sh)")
        sys.exit(mpi.SKIP)
    for b in ("metaprobe", "metaprobe-capture", "metaprobe-exporter"):
        mpi.find_bin(bin_dir, b)

    work = mpi.make_workdir(Path(args.work_dir) if args.work_dir else None, "metrics_lint")
    short = Path(tempfile.mkdtemp(prefix="mp-lint-", dir="/tmp"))  # ipc paths: 108 bytes max
    text_dir = work / "text"
    text_dir.mkdir()
    mbase = mpi.free_port("tcp", sorted(PROCESSES.values()))
    collector = mpi.tcp_collector()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)  # receives and never reads
    udp.bind(("127.0.0.1", 0))
    sets = [
        "workers=2", "exporter_instances.clickstream=2",
        f"channel_endpoint=ipc://{short}/ch", f"control_listen=ipc://{short}/ctl",
        f"metrics_listen=127.0.0.1:{mbase}",
        f"log_dir={work / 'log'}", f"run_dir={work / 'run'}",
        f"ipfix_file={work / 'click.ipfix'}", f"ipfix_meta_file={work / 'meta.ipfix'}",
        f"ipfix_dns_file={work / 'dns.ipfix'}", f"ipfix_full_file={work / 'full.ipfix'}",
        f"ipfix_tcp_collectors=127.0.0.1:{collector.port}",
        f"ipfix_dns_udp_collectors=127.0.0.1:{udp.getsockname()[1]}",
        "ajb_save_url=1", f"ajb_url_path={text_dir}", "ajb_save_ssl=-1",
        f"ajb_ssl_path={text_dir}", "ajb_save_sip=1", f"ajb_sip_path={text_dir}",
        "ajb_save_dns=1", f"ajb_dns_path={text_dir}",
        "log_level=info",
    ]
    app = mpi.fifo_appliance(bin_dir, work, CONFIG, sets)
    deadline = time.monotonic() + args.timeout
    try:
        again = None if args.capture == CAPTURE else 0.7  # see fifo_appliance.feed
        if not check(app.feed(args.capture.resolve(), deadline, again),
                     "capture opened the FIFO input"):
            return

        # every process answers with its families and traffic counted
        pending = set(PROCESSES)
        bodies = {}
        while pending and time.monotonic() < deadline and app.proc.poll() is None:
            bodies = scrape_all(mbase)
            pending = {w for w, (st, _, text) in bodies.items()
                       if st != 200 or not ready(w, parse_exposition(text)[0], records_expected)}
            if pending:
                time.sleep(0.3)
        check(not pending, "every process's /metrics has its families, with traffic",
              sorted(pending))

        for who in PROCESSES:
            status, ctype, text = bodies.get(who, (None, "", ""))
            if not check(status == 200 and "version=0.0.4" in ctype,
                         f"{who}: /metrics answers 200, text format 0.0.4", (status, ctype, text)):
                continue
            (work / f"metrics-{PROCESSES[who]}.txt").write_text(text)  # kept on failure
            rc, out = promtool_problems(promtool, text)
            check(rc == 0 and not out, f"{who}: promtool check metrics is clean", f"rc {rc}\n{out}")
            fams, problems = parse_exposition(text)
            check(not problems, f"{who}: exposition well formed ({len(fams)} families)",
                  "\n".join(problems[:20]))
            bad = convention_problems(fams)
            check(not bad, f"{who}: naming conventions", "\n".join(bad[:40]))
            want = expected_families(who)
            wrong = {n: (t, fams.get(n, {}).get("type")) for n, t in want.items()
                     if fams.get(n, {}).get("type") != t}
            check(not wrong, f"{who}: expected families, typed", wrong)
            up = fams.get("metaprobe_process_uptime_seconds", {"samples": []})["samples"]
            check(len(up) == 1 and up[0][0].get("process") == who and 0 < up[0][1] < 3600,
                  f"{who}: uptime in seconds", up)
        # a byte counter in bytes: once the collector has what was sent,
        # the clickstream TCP sinks' sent bytes equal the bytes it received
        sent = None
        while "clickstream.ipfix" in records_expected and time.monotonic() < deadline:
            sent = sum(value_of(parse_exposition(mpi.scrape_metrics(mbase + PROCESSES[w])[2])[0],
                                "metaprobe_exporter_sink_sent_bytes_total",
                                collector=f"127.0.0.1:{collector.port}")
                       for w in PROCESSES if w.startswith("exporter clickstream.ipfix"))
            if sent > 0 and sent == collector.bytes:
                break
            time.sleep(0.3)
        if "clickstream.ipfix" in records_expected:
            check(sent and sent == collector.bytes,
                  "clickstream TCP sinks: sent bytes are the bytes the collector received",
                  (sent, collector.bytes))
    finally:
        app.finish(args.timeout)
        udp.close()
        shutil.rmtree(short, ignore_errors=True)
    if failures:
        sys.exit(mpi.verdict(work))
    shutil.rmtree(work, ignore_errors=True)
    print("metrics_lint: all checks passed")


if __name__ == "__main__":
    main()
