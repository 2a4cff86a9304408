#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""metaprobe-console and /metrics against a running appliance.

The appliance reads the bundled demo capture through a FIFO that this
script keeps open, so it keeps running (workers=2, IPFIX files for the
clickstream, dns and fullflow channels, one TCP collector) while the test
  1. drives `metaprobe-console --json actors|flows|exporters|status|config`
     through the appliance's control endpoint and checks that every stage's
     actors appear with non-zero counters (capture, both classifier shards,
     the parsers of the protocols in the capture, correlator, publisher,
     every exporter), the flow and exporter views, the TCP sink connected;
  2. asks the capture process directly (its own endpoint);
  3. checks that a request without the secret is refused and counted;
  4. scrapes /metrics of the appliance, capture and one exporter and parses
     it with python3-prometheus-client's text-format parser;
  5. runs the interactive shell on piped input;
  6. closes the FIFO: the appliance finishes, exits 0, removes its control
     sockets.

Usage: console.py --bin-dir BUILD/bin [--work-dir DIR] [--timeout S]
exit 0 pass, 1 fail, 77 when python3-prometheus-client is missing.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mp_integration as mpi  # noqa: E402

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    # Debian's python3-prometheus-client lives in the system interpreter's
    # dist-packages; ctest may run another python3 (e.g. a pyenv one).
    system = "/usr/bin/python3"
    if os.path.realpath(sys.executable) != os.path.realpath(system) and os.access(system, os.X_OK) \
            and subprocess.run([system, "-c", "import prometheus_client.parser"],
                               stderr=subprocess.DEVNULL).returncode == 0:
        os.execv(system, [system] + sys.argv)
    print("SKIP: python3-prometheus-client is not installed (deploy/install-deps.sh)")
    sys.exit(mpi.SKIP)

HERE = Path(__file__).resolve().parent
CAPTURE = HERE.parent / "data" / "demo" / "mixed-browsing-pcpp-example.pcap"
CONFIG = HERE / "configs" / "truth.conf"
SECRET = "console-test-secret"
CHANNELS = ["clickstream.ipfix", "dns.ipfix", "fullflow.ipfix"]
# port offsets of control/control_endpoints.hpp: exporter 2 + 64 * channel index
CHANNEL_INDEX = {"clickstream.ipfix": 0, "dns.ipfix": 4, "fullflow.ipfix": 6}
PROTOCOLS_IN_CAPTURE = ("http", "dns", "tls")

failures = mpi.failures


def check(cond, what, detail=""):
    return mpi.check(cond, what, str(detail)[:1500])


def console(bin_dir, args, timeout=20):
    argv = [str(mpi.find_bin(bin_dir, "metaprobe-console"))] + args
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")


def console_json(bin_dir, endpoint, command, secret=SECRET):
    args = ["--connect", endpoint, "--json", "--timeout", "5000", command]
    if secret is not None:
        args[0:0] = ["--secret", secret]
    rc, out, err = console(bin_dir, args)
    try:
        return rc, json.loads(out), err
    except ValueError:
        return rc, None, err + out


def actors_ready(doc):
    """True when every stage has actors with traffic (what the checks below
    require), so polling can stop."""
    if not doc or "actors" not in doc:
        return False
    by = {}
    for a in doc["actors"]:
        by.setdefault(a["kind"], []).append(a)
    if any(k not in by for k in ("capture", "classifier", "parser", "correlator", "publisher",
                                 "exporter")):
        return False
    if len(by["exporter"]) < len(CHANNELS):
        return False
    for k in ("capture", "classifier", "correlator", "publisher", "exporter"):
        if any(a["messages_in"] == 0 or a["messages_out"] == 0 for a in by[k]):
            return False
    return True


def samples_of(text):
    fams = {f.name: f for f in text_string_to_metric_families(text)}
    return fams


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--work-dir")
    ap.add_argument("--timeout", type=float, default=60)
    args = ap.parse_args()
    bin_dir = Path(args.bin_dir)
    for b in ("metaprobe", "metaprobe-capture", "metaprobe-exporter", "metaprobe-console"):
        mpi.find_bin(bin_dir, b)

    work = mpi.make_workdir(Path(args.work_dir) if args.work_dir else None, "console")
    short = Path(tempfile.mkdtemp(prefix="mp-con-", dir="/tmp"))  # ipc paths: 108 bytes max
    control = f"ipc://{short}/ctl"
    offsets = [0, 1] + [2 + 64 * CHANNEL_INDEX[c] for c in CHANNELS]
    mbase = mpi.free_port("tcp", offsets)
    collector = mpi.tcp_collector()
    sets = [
        "workers=2",
        f"channel_endpoint=ipc://{short}/ch",
        f"control_listen={control}", f"control_secret={SECRET}",
        f"metrics_listen=127.0.0.1:{mbase}",
        f"log_dir={work / 'log'}", f"run_dir={work / 'run'}",
        f"ipfix_file={work / 'click.ipfix'}", f"ipfix_dns_file={work / 'dns.ipfix'}",
        f"ipfix_full_file={work / 'full.ipfix'}",
        f"ipfix_tcp_collectors=127.0.0.1:{collector.port}",
        "log_level=info",
    ]
    app = mpi.fifo_appliance(bin_dir, work, CONFIG, sets)
    deadline = time.monotonic() + args.timeout
    try:
        if not check(app.feed(CAPTURE, deadline), "capture opened the FIFO input"):
            return

        # 1. actors through the appliance, polled until every stage has traffic
        doc = None
        while time.monotonic() < deadline:
            rc, doc, err = console_json(bin_dir, control, "actors")
            if rc == 0 and actors_ready(doc):
                break
            time.sleep(0.3)
        if not check(doc is not None and "actors" in doc,
                     "console --json actors answers through the appliance", err):
            return
        actors = doc["actors"]
        kinds = {}
        for a in actors:
            kinds.setdefault(a["kind"], []).append(a)
        check(len(kinds.get("capture", [])) == 1, "one capture actor", kinds.keys())
        shards = sorted(a["shard"] for a in kinds.get("classifier", []))
        check(shards == [0, 1], "classifier actors for shards 0 and 1", shards)
        for k in ("capture", "classifier", "correlator", "publisher", "exporter"):
            for a in kinds.get(k, []):
                check(a["messages_in"] > 0 and a["messages_out"] > 0,
                      f"{a['process']} {a['name']}[{a['shard']}]: messages in/out non-zero",
                      a)
        parsers = {(a["name"], a["shard"]): a for a in kinds.get("parser", [])}
        for proto in PROTOCOLS_IN_CAPTURE:
            for shard in (0, 1):
                check(("parser:" + proto, shard) in parsers,
                      f"parser:{proto} shard {shard} listed")
            total_in = sum(parsers.get(("parser:" + proto, s), {}).get("messages_in", 0)
                           for s in (0, 1))
            check(total_in > 0, f"parser:{proto} handled batches ({total_in})")
        names = {a["name"] for a in kinds.get("parser", [])}
        check(all(sum(1 for a in kinds["parser"] if a["name"] == n) == 2 for n in names),
              "every parser kind has one actor per shard", sorted(names))
        exporters = sorted(a["process"] for a in kinds.get("exporter", []))
        check(exporters == sorted(f"exporter {c}#0" for c in CHANNELS),
              "one exporter actor per channel instance", exporters)
        check(all(set(a) >= {"mailbox_depth", "rate", "drops", "last_error"} for a in actors),
              "actors carry mailbox depth, rate, drops, last error")

        # status
        rc, st, err = console_json(bin_dir, control, "status")
        procs = {p["process"]: p for p in (st or {}).get("processes", [])}
        check(rc == 0 and set(procs) == {"metaprobe", "capture"} |
              {f"exporter {c}#0" for c in CHANNELS}, "status lists every process",
              list(procs))
        check(all(p["state"] == "running" and p["pid"] > 0 for p in procs.values()),
              "every process running", procs)

        # flows
        rc, fl, err = console_json(bin_dir, control, "flows")
        fshards = {s["shard"]: s for s in (fl or {}).get("shards", [])}
        check(rc == 0 and sorted(fshards) == [0, 1], "flows: both classifier shards", fl)
        check(all(s.get("flows_created", 0) > 0 and "evictions" in s for s in fshards.values()),
              "flows: flows created per shard, evictions counted", fshards)
        protos = (fl or {}).get("protocols", {})
        for proto in PROTOCOLS_IN_CAPTURE:
            check(protos.get(proto, {}).get("flows_opened", 0) > 0,
                  f"flows: {proto} flows opened", protos.get(proto))

        # exporters
        rc, ex, err = console_json(bin_dir, control, "exporters")
        exs = {e["channel"]: e for e in (ex or {}).get("exporters", [])}
        check(rc == 0 and sorted(exs) == sorted(CHANNELS), "exporters: every channel", ex)
        for c, e in exs.items():
            check(e.get("records", 0) > 0 and e.get("batches", 0) > 0,
                  f"exporters: {c} records and batches", e)
            check(len(e.get("sinks", [])) >= 1, f"exporters: {c} lists its sinks", e)
        tcp = [s for s in exs.get("clickstream.ipfix", {}).get("sinks", [])
               if s["sink"].startswith("ipfix:tcp")]
        check(len(tcp) == 1 and tcp[0].get("connected") == 1 and tcp[0].get("template_sends", 0) > 0,
              "exporters: TCP collector connected, templates sent", tcp)
        # stage counters are published at most every 0.5 s while batches
        # arrive (docs/limits.md): every channel is listed, records counted
        pubs = {p["channel"]: p for p in (ex or {}).get("publisher", []) if p["channel"]}
        check(sorted(pubs) == sorted(CHANNELS) and
              sum(p.get("records_sent", 0) for p in pubs.values()) > 0,
              "exporters: publisher channels and records", pubs)

        # config
        rc, cf, err = console_json(bin_dir, control, "config")
        cfg = (cf or {}).get("config", {})
        check(cfg.get("workers") == "2" and cfg.get("control_secret") == "(set)",
              "config: effective values, secret redacted",
              {k: cfg.get(k) for k in ("workers", "control_secret")})

        # 2. the capture's own endpoint
        rc, cap, err = console_json(bin_dir, control + "-capture", "actors")
        check(rc == 0 and cap and {a["process"] for a in cap["actors"]} == {"capture"} and
              len(cap["processes"]) == 1, "capture answers on its own endpoint", cap)

        # 3. no secret: refused and counted
        rc, bad, err = console_json(bin_dir, control, "actors", secret=None)
        check(rc == 1 and bad == {"ok": False, "error": "unauthorized"},
              "a request without the secret is refused", (rc, bad, err))
        rc, bad, err = console_json(bin_dir, control + "-capture", "status", secret="wrong")
        check(rc == 1 and bad == {"ok": False, "error": "unauthorized"},
              "a wrong secret is refused by the capture too", (rc, bad))
        rc, st, err = console_json(bin_dir, control, "status")
        procs = {p["process"]: p for p in (st or {}).get("processes", [])}
        check(procs.get("metaprobe", {}).get("control_refused", 0) >= 1 and
              procs.get("capture", {}).get("control_refused", 0) >= 1,
              "refusals are counted", procs)

        # 4. /metrics
        for who, off in [("metaprobe", 0), ("capture", 1),
                         ("exporter clickstream.ipfix#0", 2)]:
            status, ctype, text = mpi.scrape_metrics(mbase + off)
            check(status == 200 and "version=0.0.4" in ctype, f"/metrics of {who}: 200, 0.0.4",
                  ctype)
            try:
                fams = samples_of(text)
            except Exception as e:  # noqa: BLE001 -- the parser's verdict is the test
                check(False, f"/metrics of {who} parses", e)
                continue
            check(True, f"/metrics of {who} parses ({len(fams)} families)")
            up = fams.get("metaprobe_process_uptime_seconds")
            check(up is not None and up.type == "gauge" and
                  up.samples[0].labels.get("process") == who, f"/metrics of {who}: uptime")
            if who == "capture":
                msgs = fams.get("metaprobe_actor_messages_in")
                check(msgs is not None and msgs.type == "counter", "capture: actor counters typed",
                      msgs)
                got = {(s.labels["actor"], s.labels["shard"]): s.value for s in msgs.samples
                       if s.name.endswith("_total")} if msgs else {}
                for a in cap["actors"] if cap else []:
                    key = (a["name"], str(a["shard"]))
                    check(key in got and got[key] >= a["messages_in"],
                          f"capture /metrics: {a['name']}[{a['shard']}] matches the console",
                          (got.get(key), a["messages_in"]))
                fc = fams.get("metaprobe_classifier_flows_created")
                check(fc is not None and sorted(s.labels["shard"] for s in fc.samples
                                                if s.name.endswith("_total")) == ["0", "1"] and
                      all(s.value > 0 for s in fc.samples), "capture /metrics: flows per shard")
            if who.startswith("exporter"):
                rec = fams.get("metaprobe_exporter_records")
                check(rec is not None and any(s.value > 0 for s in rec.samples),
                      "exporter /metrics: records", rec)
                conn = fams.get("metaprobe_exporter_sink_connected")
                check(conn is not None and conn.type == "gauge" and
                      any(s.labels.get("collector") == f"127.0.0.1:{collector.port}" and
                          s.value == 1 for s in conn.samples),
                      "exporter /metrics: collector connection state", conn)
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{mbase + 1}/nope", timeout=10)
            check(False, "/nope is 404")
        except urllib.error.HTTPError as e:
            check(e.code == 404, "/nope is 404", e.code)

        # 5. interactive shell on piped input
        p = subprocess.run([str(mpi.find_bin(bin_dir, "metaprobe-console")), "--connect",
                            control, "--secret", SECRET], input=b"actors\nstatus\nquit\n",
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20,
                           env=dict(os.environ, HOME=str(work)))
        out = p.stdout.decode("utf-8", "replace")
        check(p.returncode == 0 and "parser:http" in out and "PROCESS" in out,
              "interactive shell runs commands", out[-800:] + p.stderr.decode()[-400:])
    finally:
        # 6. end of input: the appliance finishes
        app.finish(args.timeout)
        left = [p.name for p in short.iterdir() if p.name.startswith("ctl")]
        check(not left, "control socket files removed", left)
        shutil.rmtree(short, ignore_errors=True)
    if failures:
        print(f"{len(failures)} check(s) failed; appliance log: {work / 'appliance.log'}")
        sys.exit(1)
    shutil.rmtree(work, ignore_errors=True)
    print("console: all checks passed")


if __name__ == "__main__":
    main()
