#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""metaprobe on traffic nobody wrote by hand (issue 12, scope 3).

1. builds two network namespaces joined by veth pairs and a kernel VXLAN
   (topology.py), starts real servers from Debian packages in one of them
   and real clients in the other (scenarios.py), and captures each
   scenarios with tcpdump: on the plain veth (plain.pcap), on the VXLAN's
   underlay veth (vxlan.pcap, VXLAN/UDP 4789 frames) and, for the forward
   proxy scenarios, on `any` (proxy.pcap: both legs of the proxy); the
   `crafted` scenario writes crafted-splits.pcap with crafted.py
   (python3-scapy): TCP segmentations no real client produces (a
   ClientHello or a GET in 1-byte segments, after CONNECT / STARTTLS);
2. rewraps the plain capture into every encapsulation the kernel cannot
   build (wrap.py, python3-scapy);
3. writes tshark's truth for the tcpdump captures with the corpus'
   extract_truth.sh and compares metaprobe's records with it per protocol
   (truth_compare.py: recall and precision >= --min, every miss named);
4. checks that every wrapped capture gives the same records as the
   unwrapped one (every protocol of truth_compare.py: HTTP, DNS, SIP, TLS,
   QUIC, FTP, SMTP, POP3, IMAP, XMPP; innermost addresses) and that its
   capture.decap.<kind> counters show the layers.

Every case is printed by name as PASS, FAIL or SKIP, with its reason.
Misses of the truth comparison that are understood are listed in
known_limits.tsv beside this script, in the format of
tests/integration/known_limits.tsv (file = plain.pcap or vxlan.pcap); a
listed miss that no longer happens fails the case (stale excuse). The
tunnel comparisons have no excuses: inside a tunnel the records must be
exactly those of the plain capture.

Usage:
  traffic_test.py --bin-dir BUILD/bin [--corpus DIR] [--work-dir DIR] [--keep]
                  [--scenarios NAME...] [--wraps NAME...] [--min 99.5] [--timeout S]

Exit: 0 when no case failed, 1 otherwise, 77 (SKIP) without CAP_NET_ADMIN,
without the Debian tools or without the corpus' extract_truth.sh.
"""

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "integration"))
import mp_integration as mpi  # noqa: E402
import truth_compare as tc  # noqa: E402
import topology  # noqa: E402
import scenarios  # noqa: E402

DEBIAN_PYTHON = "/usr/bin/python3"
# scenarios captured through the kernel VXLAN as well, and the plain captures
# the wrapped ones are made from
TUNNEL_SCENARIOS = ("http", "https", "dns", "sip", "quic")
# capture -> (the link whose addresses the clients use, the device tcpdump
# listens on in the server namespace). proxy.pcap holds the forward proxy
# scenarios alone, on `any`: the client's leg to the proxy crosses v0 and
# the proxy's leg to the origin (in the same namespace) crosses lo; tcpdump
# writes Linux cooked frames (SLL2) there.
CAPTURES = {"plain": ("plain", topology.CAPTURE_DEV["plain"]), "vxlan": ("vxlan", topology.CAPTURE_DEV["vxlan"]),
            "proxy": ("plain", "any")}


def captured_in(cap: str, name: str) -> bool:
    if name in scenarios.PROXY_SCENARIOS:
        return cap == "proxy"
    return cap == "plain" or (cap == "vxlan" and name in TUNNEL_SCENARIOS)
# protocols whose records must be the same inside and outside a tunnel:
# those of the kernel VXLAN's scenarios, and for wrap.py's captures (made
# from the whole plain capture) every protocol truth_compare.py knows
KERNEL_VXLAN_PROTOCOLS = ("http", "dns", "sip", "tls", "tls_sh", "quic")
# scenarios that need no namespace: crafted.py writes their capture
# (name -> (capture, protocols compared))
CRAFTED_SCENARIOS = {"crafted": ("crafted-splits.pcap", ("http", "tls", "tls_sh", "smtp"))}
SAME_PROTOCOLS = tuple(tc.PROTOCOLS)
GROUPS = ("clickstream", "dns", "meta")


class cases:
    """Named results: PASS / FAIL / SKIP with a reason."""

    def __init__(self):
        self.rows: List[Tuple[str, str, str]] = []

    def add(self, name: str, ok: Optional[bool], why: str = ""):
        status = "SKIP" if ok is None else ("PASS" if ok else "FAIL")
        self.rows.append((name, status, why))
        print(f"{status:5s} {name}" + (f": {why}" if why else ""), flush=True)

    def failed(self) -> List[str]:
        return [n for n, s, _ in self.rows if s == "FAIL"]


# ---------------------------------------------------------------- capture

class tcpdump:
    """tcpdump -w inside a namespace; started before the clients and
    stopped (SIGINT, the file is complete) after them. The kernel buffer
    is 64 MiB (-B): libpcap sizes ring slots by the snapshot length where
    it knows no MTU (`any`), so the default 2 MiB holds about 8 frames
    and a burst of small segments (tinyproxy writes each header line
    apart) was dropped."""

    def __init__(self, topo, ns: str, dev: str, path: Path):
        self.path = path
        self.log = open(str(path) + ".log", "w+b")
        self.proc = subprocess.Popen(topo.exec_argv(ns, ["tcpdump", "-n", "-U", "--immediate-mode", "-s", "0", "-B", "65536", "-i", dev, "-w", str(path)]),
                                     stdout=subprocess.DEVNULL, stderr=self.log, start_new_session=True)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            self.log.seek(0)
            if b"listening on" in self.log.read():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"tcpdump on {dev} did not start: {self.text()}")

    def text(self) -> str:
        self.log.seek(0)
        return self.log.read().decode("utf-8", "replace").strip()

    def stop(self) -> str:
        if self.proc.poll() is None:
            time.sleep(0.3)  # the last replies and FINs
            os.killpg(self.proc.pid, signal.SIGINT)
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        t = self.text()
        self.log.close()
        return t


def generate(args, setdir: Path, work: Path, res: cases) -> Dict[str, List[str]]:
    """Runs the scenarios and writes one capture per path into setdir:
    plain.pcap (every scenario over the plain veth), vxlan.pcap (the
    TUNNEL_SCENARIOS over the kernel VXLAN, captured on its underlay) and
    proxy.pcap (the PROXY_SCENARIOS, both legs of the proxy).
    One capture per path keeps tshark's truth extraction (14 tshark runs
    per capture) short. Returns {capture: protocols its scenarios exercise}."""
    made: Dict[str, List[str]] = {}
    for name in args.scenarios:
        if name in CRAFTED_SCENARIOS:
            generate_crafted(setdir, work, name, made, res)
    if not any(n in scenarios.SCENARIOS for n in args.scenarios):
        return made
    with topology.topology() as topo:
        kinds = topo.link_kinds()
        for k, why in sorted(kinds.items()):
            res.add(f"kernel.{k}", True if why is None else None,
                    "kernel builds it" if why is None else
                    f"ip link add type {k}: {why} (this kernel lacks the driver; wrap.py makes it instead)"
                    if k != "vxlan" else f"ip link add type vxlan: {why}")
        e = scenarios.env(topo, work, print)
        try:
            runnable = []
            started = {}
            for name in args.scenarios:
                if name not in scenarios.SCENARIOS:
                    continue
                servers, clients, protocols = scenarios.SCENARIOS[name]
                needs = [b for s in servers for b in scenarios.NEEDS[s]] + list(scenarios.CLIENT_NEEDS.get(name, ()))
                missing = [b for b in needs if scenarios.missing(b)]
                if missing:
                    res.add(f"generate.{name}", None, "missing Debian tools: " + ", ".join(missing)
                            + " (deploy/install-deps.sh)")
                    continue
                for s in servers:
                    if s not in started:
                        started[s] = scenarios.SERVERS[s](e)
                err = "; ".join(started[s] for s in servers if started[s])
                if err:
                    res.add(f"generate.{name}", False, err)
                    continue
                runnable.append(name)
            for capname, (path, dev) in CAPTURES.items():
                names = [n for n in runnable if captured_in(capname, n)]
                if not names:
                    continue
                if path == "vxlan" and topo.vxlan_error:
                    res.add(f"generate.{capname}", None, f"no kernel vxlan: {topo.vxlan_error}")
                    continue
                cap = setdir / f"{capname}.pcap"
                dump = tcpdump(topo, topo.srv, dev, cap)
                try:
                    for name in names:
                        t0 = time.monotonic()
                        e.failed = []
                        scenarios.SCENARIOS[name][1](e, path)
                        res.add(f"generate.{capname}.{name}", not e.failed,
                                f"clients ran in {time.monotonic() - t0:.1f} s" +
                                ("" if not e.failed else "; client failures: " + " | ".join(e.failed)))
                        made.setdefault(cap.name, []).extend(scenarios.SCENARIOS[name][2])
                finally:
                    log = dump.stop()
                m = re.search(r"(\d+) packets captured", log)
                n = int(m.group(1)) if m else 0
                # a dropped packet leaves a hole in both the truth and the input
                m = re.search(r"(\d+) packets dropped by kernel", log)
                dropped = int(m.group(1)) if m else 0
                res.add(f"generate.{capname}", n > 0 and dropped == 0,
                        f"{n} packets captured on {dev}" + (f", {dropped} dropped by the kernel" if dropped else ""))
        finally:
            e.stop_all()
    return made


def generate_crafted(setdir: Path, work: Path, name: str, made: Dict[str, List[str]], res: cases) -> None:
    """crafted.py (Debian's python3, scapy) writes the scenario's capture
    into setdir and its manifest (case name, client port, frames) into work."""
    cap, protocols = CRAFTED_SCENARIOS[name]
    chk = subprocess.run([DEBIAN_PYTHON, "-c", "import scapy"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if chk.returncode != 0:
        res.add(f"generate.{name}", None, f"{DEBIAN_PYTHON} has no scapy (python3-scapy, deploy/install-deps.sh)")
        return
    t0 = time.monotonic()
    p = subprocess.run([DEBIAN_PYTHON, str(HERE / "crafted.py"), "--out", str(setdir / cap),
                        "--manifest", str(work / f"{name}-manifest.json")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=60)
    if p.returncode != 0 or not (setdir / cap).exists():
        res.add(f"generate.{name}", False, f"crafted.py exited {p.returncode}: {p.stdout[-600:]}")
        return
    n = len(json.loads((work / f"{name}-manifest.json").read_text()))
    res.add(f"generate.{name}", True, f"{n} crafted connections in {cap} in {time.monotonic() - t0:.1f} s")
    made.setdefault(cap, []).extend(protocols)


# ---------------------------------------------------------------- truth

# tshark options per capture (the set's tshark_args.tsv, read by
# extract_truth.sh). proxy.pcap: tshark 4.0 dissects what follows a CONNECT
# 200 with the dissector of the CONNECT target's port, except when that port
# is one of HTTP's own (http.tcp.port: 80, 8080, ...): those tunnels go to
# the data dissector, to stop HTTP calling itself (packet-http.c,
# http_payload_subdissector), so the GET inside `CONNECT host:80` and the
# WebSocket Upgrade inside `CONNECT host:8080` would not be in the truth.
# With HTTP's port range cut to the proxy's port they are; HTTP on 80 and
# 8080 (the proxy's legs to the origin, over lo) is then found by tshark's
# HTTP-over-TCP heuristic (enabled by default), TLS in the 443 tunnels is
# dissected either way.
# crafted-splits.pcap: the same for its CONNECT :80 tunnels (its proxy is
# on 3128 too), and TLS decoded on 9443, a port tshark 4.0 does not give to
# TLS (metaprobe finds TLS there by its payload probe).
TSHARK_ARGS = {"proxy.pcap": f"-o http.tcp.port:{scenarios.PROXY_PORT}",
               "crafted-splits.pcap": f"-o http.tcp.port:{scenarios.PROXY_PORT} -d tcp.port==9443,tls"}


def extract_truth(corpus: Path, setdir: Path) -> Optional[str]:
    """tshark's truth for every capture in setdir, written by the corpus'
    extract_truth.sh (the same fields and filters as the corpus truth,
    with the TSHARK_ARGS of the capture)."""
    args = {c: a for c, a in TSHARK_ARGS.items() if (setdir / c).exists()}
    if args:
        (setdir / "tshark_args.tsv").write_text("".join(f"{c}\t{a}\n" for c, a in args.items()))
    script = corpus.parent / "extract_truth.sh"
    # physical paths: the script finds the set under its own folder as the
    # kernel resolves it (a symlinked corpus folder must not change "..")
    rel = os.path.relpath(setdir.resolve(), script.parent.resolve())
    p = subprocess.run(["bash", str(script), rel], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       text=True, env=dict(os.environ, JOBS="2"), timeout=600)
    if p.returncode != 0 or not (setdir / "truth" / "COUNTS.tsv").exists():
        return f"extract_truth.sh exited {p.returncode}: {p.stdout.strip()[-500:]}"
    return None


# ---------------------------------------------------------------- metaprobe

def run_metaprobe(args, pcap: Path, extra=()) -> Tuple[List[dict], Dict[str, int], Optional[str]]:
    """One appliance run: (records of every group, capture counters, error)."""
    work = mpi.make_workdir(Path(args.work_dir) / "runs", pcap.stem)
    run = mpi.run_appliance(Path(args.bin_dir), pcap, work, config=HERE.parent / "integration" / "configs" / "truth.conf",
                            groups=GROUPS, extra_sets=["log_level=info", *extra], timeout=args.timeout)
    if run.timed_out:
        return [], {}, f"metaprobe did not finish within {args.timeout:.0f} s (kept {work})"
    if run.returncode != 0:
        return [], {}, f"metaprobe exited {run.returncode}: {run.tail()} (kept {work})"
    text = run.stderr
    for f in (work / "log").glob("*") if (work / "log").is_dir() else ():
        text += f.read_text(errors="replace") if f.is_file() else ""
    counters = {}
    for m in re.finditer(r"\b((?:capture|classifier)\.[\w.]+) = (\d+)", text):
        counters[m.group(1)] = int(m.group(2))
    records, err = mpi.exported_records(Path(args.bin_dir), run.files)
    if "capture.packets" not in counters:
        err = (err + "; " if err else "") + "no 'capture.packets = N' line in the log: counters cannot be checked"
    san = mpi.sanitizer_lines(text)
    if san:
        err = (err + "; " if err else "") + "sanitizer report: " + san[0]
    if not args.keep and not err:
        shutil.rmtree(work, ignore_errors=True)
    return records, counters, err


def compare_truth(args, setdir: Path, made: Dict[str, List[str]], res: cases, known_truth) -> None:
    """Per capture and protocol: metaprobe against tshark, the truth
    comparison's report (every miss named) and one case per protocol."""
    plan = tc.truth_files(setdir, list(tc.PROTOCOLS), set())
    results: List[tc.file_result] = []
    for cap, wanted in sorted(made.items()):
        have = plan.get(cap, [])
        for p in wanted:
            if p not in have:
                res.add(f"truth.{cap[:-5]}.{p}", False, f"tshark shows no {p} in {cap}: the scenario did not produce it")
        protos = sorted(set(have))
        if not protos:
            continue
        records, counters, err = run_metaprobe(args, setdir / cap)
        for p in protos:
            if err:
                r = tc.file_result(cap, p, error=err)
            else:
                r = tc.compare_records(p, setdir, cap, records)
            results.append(r)
    tc.report(results, known_truth, [p for p in tc.PROTOCOLS], args.min, args.show)
    for r in results:
        name = f"truth.{r.pcap[:-5]}.{r.protocol}"
        lim = known_truth.get((r.pcap, r.protocol))
        if r.error:
            res.add(name, False, r.error.splitlines()[0])
            continue
        un_t = len(r.unmatched_truth) - (min(lim[0], len(r.unmatched_truth)) if lim else 0)
        un_o = len(r.unmatched_ours) - (min(lim[1], len(r.unmatched_ours)) if lim else 0)
        rec = 100.0 * (r.truth - un_t) / r.truth if r.truth else 100.0
        prec = 100.0 * (r.ours - un_o) / r.ours if r.ours else (100.0 if not r.truth else 0.0)
        # every row optional (SIP tunnelled in VXLAN: truth_sip.py makes rows
        # with several IP headers optional): all of them must match here
        good = rec >= args.min and prec >= args.min and (
            r.truth > 0 or (r.optional_truth > 0 and r.optional_matched == r.optional_truth))
        why = (f"truth {r.truth} (+{r.optional_truth} optional), ours {r.ours}, matched {r.matched}"
               f" (+{r.optional_matched} optional): "
               f"recall {rec:.2f}%, precision {prec:.2f}%")
        if lim:
            why += f" after known limit ({lim[2]})"
            if lim[0] > len(r.unmatched_truth) or lim[1] > len(r.unmatched_ours):
                good = False
                why += (f"; STALE known limit: allows {lim[0]}/{lim[1]}, "
                        f"{len(r.unmatched_truth)}/{len(r.unmatched_ours)} unmatched: tighten it")
        if r.unmatched_truth:
            e, w = r.unmatched_truth[0]
            why += f"; first miss: frame {e.frame} {w}"
        elif r.unmatched_ours:
            o, w = r.unmatched_ours[0]
            why += f"; first extra: {w}"
        res.add(name, good, why)


# ---------------------------------------------------------------- tunnels

def family_of(rec_fields: Dict[str, object]) -> str:
    for k in ("cip", "src", "sip"):
        v = rec_fields.get(k)
        if isinstance(v, str) and v:
            return "ipv6" if ":" in v else "ipv4"
    return "ipv4"


ADDRESS_FIELDS = ("cip", "sip", "src", "dst")


def overlay_to_plain(p: str, k: str, v):
    """A field of a record from the kernel VXLAN's overlay as it reads on
    the plain link: the overlay addresses replaced by the plain ones (the
    clients name the server's address in URLs, SIP URIs and Via headers).
    DNS answer data stay as they are: the zone holds both addresses."""
    if not isinstance(v, str):
        return v
    if p == "dns" and k not in ADDRESS_FIELDS:
        return v
    for role in ("srv4", "cli4", "srv6", "cli6"):
        a, b = topology.ADDR["vxlan"][role], topology.ADDR["plain"][role]
        v = v.replace(f"[{a}]", f"[{b}]") if ":" in a else re.sub(rf"(?<![\d.]){re.escape(a)}(?![\d])", b, v)
        if v == a:
            v = b
    return v


# fields that differ between two runs of the same clients: ephemeral ports
# and sipp's Call-IDs (counter@address)
RUN_FIELDS = ("cport", "sport", "dport", "callid")


def normalised(records: List[dict], family: str = "all", protocols=SAME_PROTOCOLS,
               mapper=None, drop=()) -> Dict[str, Counter]:
    out = {}
    for p in protocols:
        got = tc.SPECS[p].ours(records)
        out[p] = Counter(tuple(sorted((k, repr(mapper(p, k, v) if mapper else v))
                                      for k, v in o.fields.items() if k not in drop))
                         for o in got if family == "all" or family_of(o.fields) == family)
    return out


def describe(a: Counter, b: Counter, limit=3) -> str:
    miss = list((a - b).elements())
    extra = list((b - a).elements())
    s = []
    for x in miss[:limit]:
        s.append("missing " + ", ".join(f"{k}={v}" for k, v in x if v not in ("''", "None", "0"))[:240])
    for x in extra[:limit]:
        s.append("extra " + ", ".join(f"{k}={v}" for k, v in x if v not in ("''", "None", "0"))[:240])
    return f"{len(miss)} missing, {len(extra)} extra: " + " | ".join(s)


def load_decap_limits(path: Path) -> Dict[Tuple[str, str], Tuple[int, str]]:
    """known_decap_limits.tsv: capture<TAB>counter<TAB>N<TAB>reason: the
    wrapped capture's counter is known to count N packets fewer than the
    layer holds, for the reason given; N `non_ip` is the number of input
    frames that are not IP (manifest non_ip_frames: ARP, as many as the
    kernel sent)."""
    out = {}
    if path.exists():
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip() or line.startswith("#") or line.startswith("capture\t"):
                continue
            cols = line.split("\t")
            if len(cols) != 4 or not (cols[2].strip().isdigit() or cols[2].strip() == "non_ip") \
                    or not cols[3].strip():
                raise ValueError(f"{path}:{n}: expected capture<TAB>counter<TAB>N|non_ip<TAB>reason")
            out[(cols[0].strip(), cols[1].strip())] = (cols[2].strip(), cols[3].strip())
    return out


def compare_tunnels(args, setdir: Path, made: Dict[str, List[str]], res: cases, work: Path) -> None:
    decap_limits = load_decap_limits(HERE / "known_decap_limits.tsv")
    # the kernel VXLAN captures against their plain twins
    if "vxlan.pcap" in made and "plain.pcap" in made:
        ra, ca, ea = run_metaprobe(args, setdir / "plain.pcap")
        rb, cb, eb = run_metaprobe(args, setdir / "vxlan.pcap")
        name = "tunnel.kernel-vxlan"
        if ea or eb:
            res.add(name, False, ea or eb)
        # Another run of the same clients: the overlay's addresses mapped to
        # the plain link's, ephemeral ports and Call-IDs left out (the exact
        # check of vxlan.pcap is truth.vxlan.*); the plain capture holds more
        # scenarios, only those of the VXLAN capture are compared.
        na = normalised(ra, protocols=KERNEL_VXLAN_PROTOCOLS, drop=RUN_FIELDS)
        nb = normalised(rb, protocols=KERNEL_VXLAN_PROTOCOLS, mapper=overlay_to_plain, drop=RUN_FIELDS)
        diffs = [f"{p}: {describe(na[p], nb[p])}" for p in KERNEL_VXLAN_PROTOCOLS if na[p] != nb[p]]
        n = sum(sum(c.values()) for c in nb.values())
        vx = cb.get("capture.decap.vxlan", 0)
        ok = not diffs and n > 0 and vx > 0 and not (ea or eb)
        if not (ea or eb):
            res.add(name, ok, f"{n} records, capture.decap.vxlan={vx}" + ("; " + " ; ".join(diffs) if diffs else "")
                    + ("" if vx else "; decap.vxlan counter is 0"))

    # the encapsulations wrap.py makes
    inputs = [setdir / "plain.pcap"] if "plain.pcap" in made else []
    if not inputs:
        res.add("tunnel.wrap", None, "no plain capture to wrap")
        return
    chk = subprocess.run([DEBIAN_PYTHON, "-c", "import scapy"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if chk.returncode != 0:
        res.add("tunnel.wrap", None, f"{DEBIAN_PYTHON} has no scapy (python3-scapy, deploy/install-deps.sh)")
        return
    wdir = work / "wrapped"
    t0 = time.monotonic()
    p = subprocess.run([DEBIAN_PYTHON, str(HERE / "wrap.py"), "--out", str(wdir), *map(str, inputs),
                        *(["--only", *args.wraps] if args.wraps else [])],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    if p.returncode != 0:
        res.add("tunnel.wrap", False, f"wrap.py exited {p.returncode}: {p.stdout[-600:]}")
        return
    manifest = json.loads((wdir / "manifest.json").read_text())
    print(f"wrap.py: {len(manifest)} captures in {time.monotonic() - t0:.1f} s", flush=True)
    ref_records, ref_counters, err = run_metaprobe(args, wdir / "wrap-none.pcap")
    if err:
        res.add("tunnel.reference", False, err)
        return
    ref = {f: normalised(ref_records, f) for f in ("all", "ipv4", "ipv6")}
    for m in manifest:
        name = f"tunnel.{m['name']}"
        if m["packets"] == 0:
            res.add(name, None, f"{m['note']}: the plain capture has no packet it can carry ({m['family']})")
            continue
        if m["records"] and not any(ref[m["family"]].values()):
            res.add(name, False, f"{m['note']}: the plain capture gave no {m['family']} record to compare with")
            continue
        records, counters, err = run_metaprobe(args, wdir / m["file"], m["sets"])
        if err:
            res.add(name, False, err)
            continue
        got = normalised(records)
        want = ref[m["family"]] if m["records"] else {p: Counter() for p in SAME_PROTOCOLS}
        diffs = [f"{p}: {describe(want[p], got[p])}" for p in SAME_PROTOCOLS if want[p] != got[p]]
        # Every packet through a layer counts once in capture.decap.<kind>;
        # a tunnel packet sent as outer fragments opens in the classifier
        # after reassembly and counts in classifier.<w>.reassembled_tunnels
        # instead (docs/protocols.md, "IP fragments").
        bad_counters = []
        frag = m.get("fragmented", 0)
        reasm = sum(v for k, v in counters.items() if re.fullmatch(r"classifier\.\d+\.reassembled_tunnels", k))
        for kind, n in sorted(m["layers"].items()):
            have = counters.get(f"capture.decap.{kind}", 0)
            if have != n - frag:
                bad_counters.append(f"capture.decap.{kind}={have}, expected {n - frag}"
                                    + (f" ({n} packets, {frag} of them fragmented)" if frag else ""))
        if reasm != frag:
            bad_counters.append(f"classifier.*.reassembled_tunnels={reasm}, expected {frag}")
        # understood shortfalls (known_decap_limits.tsv): exactly that many
        # short, or the entry is stale
        excused = []
        for kind in sorted(m["layers"]):
            lim = decap_limits.get((m["file"], f"capture.decap.{kind}"))
            if not lim:
                continue
            short = (m["layers"][kind] - frag) - counters.get(f"capture.decap.{kind}", 0)
            line = [b for b in bad_counters if b.startswith(f"capture.decap.{kind}=")]
            allowed = m.get("non_ip_frames", 0) if lim[0] == "non_ip" else int(lim[0])
            if short == allowed and allowed > 0:
                bad_counters = [b for b in bad_counters if b not in line]
                excused.append(f"capture.decap.{kind} {short} short: known limit ({lim[1]})")
            else:
                bad_counters.append(f"STALE known_decap_limits.tsv entry: capture.decap.{kind} allowed "
                                    f"{allowed} ({lim[0]}) short, is {short} short: tighten it")
        shown = ", ".join(f"{k}={v}" for k, v in sorted(counters.items())
                          if k.startswith("capture.decap.") or k.endswith(".reassembled_tunnels") and v)
        nrec = sum(sum(c.values()) for c in got.values())
        why = f"{m['note']}; {nrec} records; counters: {shown or 'no capture.decap.* counter'}"
        if diffs:
            why += "; records differ from the plain capture: " + " ; ".join(diffs)
        if excused:
            why += "; " + ", ".join(excused)
        if bad_counters:
            why += "; " + ", ".join(bad_counters)
        res.add(name, not diffs and not bad_counters, why)
    # Negative controls: with a kind turned off (`decap`), the same capture
    # gives none of the inner records and no counter of that kind: the
    # comparisons above would see a decoder that does not open tunnels.
    for wrap_name, kind, setting in (("gre", "gre", "decap=none"), ("vxlan", "vxlan", "decap=all,-vxlan")):
        m = next((x for x in manifest if x["name"] == wrap_name), None)
        if m is None:
            continue
        name = f"tunnel.{wrap_name}.{setting.replace('=', '-').replace(',', '')}"
        records, counters, err = run_metaprobe(args, wdir / m["file"], [setting])
        if err:
            res.add(name, False, err)
            continue
        got = normalised(records)
        n = sum(sum(c.values()) for c in got.values())
        have = counters.get(f"capture.decap.{kind}", 0)
        res.add(name, n == 0 and have == 0,
                f"{setting}: {n} inner records (expected 0), capture.decap.{kind}={have} (expected 0)")


# ---------------------------------------------------------------- main

def skip(msg: str) -> int:
    print("SKIP: " + msg)
    return mpi.SKIP


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--corpus", default=os.environ.get("METAPROBE_CORPUS"))
    ap.add_argument("--work-dir", help="parent of this run's temp dir (default: system temp)")
    ap.add_argument("--keep", action="store_true", help="keep captures, truth and runs")
    ap.add_argument("--scenarios", nargs="*", default=list(scenarios.SCENARIOS) + list(CRAFTED_SCENARIOS),
                    choices=list(scenarios.SCENARIOS) + list(CRAFTED_SCENARIOS))
    ap.add_argument("--wraps", nargs="*", help="only these wrap.py outputs")
    ap.add_argument("--min", type=float, default=99.5, help="required recall and precision, percent")
    ap.add_argument("--timeout", type=float, default=60.0, help="seconds per appliance run")
    ap.add_argument("--show", type=int, default=10, help="misses shown per capture and side")
    ap.add_argument("--known-limits", default=str(HERE / "known_limits.tsv"))
    args = ap.parse_args(argv)
    args.bin_dir = str(Path(args.bin_dir).resolve())
    t_start = time.monotonic()
    # SIGTERM (ctest, a user) unwinds like an exception: the namespaces and
    # every server in them are removed by the `finally`/`with` blocks. After
    # a SIGKILL the next run removes them (topology.remove_stale).
    def terminate(signum, _frame):
        raise SystemExit(f"signal {signum}: stopping")
    signal.signal(signal.SIGTERM, terminate)

    # the crafted scenarios alone need neither namespaces nor tcpdump
    real = any(n in scenarios.SCENARIOS for n in args.scenarios)
    why = topology.has_net_admin() if real else None
    if why:
        return skip(why)
    for t in (("ip", "tcpdump", "tshark") if real else ("tshark",)):
        if not scenarios.tool(t):
            return skip(f"{t} is not installed (deploy/install-deps.sh)")
    corpus = Path(args.corpus) if args.corpus else mpi.DEFAULT_CORPUS
    if not (corpus.parent / "extract_truth.sh").exists():
        return skip(f"no extract_truth.sh beside the corpus {corpus} (set METAPROBE_CORPUS)")
    for b in ("metaprobe", "metaprobe-capture", "metaprobe-exporter", "metaprobe-receiver"):
        mpi.find_bin(Path(args.bin_dir), b)

    base = Path(args.work_dir) if args.work_dir else Path(tempfile.gettempdir())
    base.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="traffic-", dir=str(base)))
    args.work_dir = str(work)
    setdir = work / "set"
    setdir.mkdir()
    known = tc.load_known_limits(Path(args.known_limits))
    res = cases()
    made = {}
    try:
        t0 = time.monotonic()
        made = generate(args, setdir, work, res)
        print(f"generated {len(made)} captures in {time.monotonic() - t0:.1f} s", flush=True)
        t0 = time.monotonic()
        err = extract_truth(corpus, setdir)
        res.add("truth.extract", err is None, err or f"tshark truth in {time.monotonic() - t0:.1f} s")
        if err is None:
            compare_truth(args, setdir, made, res, known)
        compare_tunnels(args, setdir, made, res, work)
    except Exception as exc:  # reported as a failed case, with the traceback above the summary
        import traceback
        traceback.print_exc()
        res.add("harness", False, f"{type(exc).__name__}: {exc}")
    finally:
        failed = res.failed()
        counts = Counter(s for _, s, _ in res.rows)
        print("\ncases: " + ", ".join(f"{counts[s]} {s}" for s in ("PASS", "FAIL", "SKIP"))
              + f"; {time.monotonic() - t_start:.0f} s")
        if failed:
            print("failed: " + ", ".join(failed))
        if args.keep or failed:
            print(f"work dir kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
