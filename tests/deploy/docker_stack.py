#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""The container deployment end to end (deploy/compose.yaml), in a Docker
engine this test starts itself. ctest label `docker`, run by .ci/run after
`make test` (`make test-docker`); needs root.

1. Installs docker.io, docker-compose and debootstrap from Debian when they
   are missing, starts its own dockerd (vfs storage, --iptables=false,
   --bridge=none; private socket, data and exec roots, so a Docker engine of
   the host is left alone) and builds the Debian 12 base image without any
   registry (deploy/docker/make-base-image.sh: debootstrap + docker import).
2. Builds the capture and exporter images from deploy/docker/Dockerfile.
3. Reference: the host's own `metaprobe` (--bin-dir) runs deploy/compose's
   configuration on the same capture with one exporter per channel, into
   IPFIX and text files.
4. Brings the stack up with `--scale exporter-dns=2`: the receiver and
   the exporters first, waits until every exporter's health check (through
   its control endpoint) says healthy, asks one exporter through the
   run-once console service, then starts capture. Capture waits for both
   DNS exporters, reads the file and ends every channel; exporters exit 0.
5. Checks: capture and every exporter exited 0; the two DNS exporters
   claimed instances 0 and 1 (observation domains 1 and 2, files dns.ipfix
   and dns.ipfix.1) and both delivered records; the receiver got exactly
   the reference's records per template, with no decode error, sequence
   gap or loss; the IPFIX files in the output folder decode to the
   reference counts too; the text exporter wrote the reference's lines.
6. `docker-compose down -v`, then the engine is stopped: no container, no
   dockerd, containerd or shim of this test is left running (checked).
Traffic stays on loopback (host networking, 127.0.0.1 only).

The engine's data root (/var/lib/metaprobe-test-docker) keeps the images
between runs, so a second run builds from cache; delete it to start over.

Usage: docker_stack.py --bin-dir BUILD/bin [--source DIR] [--work-dir DIR]
exit 0 pass, 1 fail.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "integration"))
import mp_integration as mpi  # noqa: E402
import export_harness as xh  # noqa: E402

failures = mpi.failures
check = mpi.check

DOCKER = "/usr/bin/docker"          # Debian's client (another may be first in PATH)
COMPOSE = "/usr/bin/docker-compose"
DATA_ROOT = Path("/var/lib/metaprobe-test-docker")
EXEC_ROOT = Path("/run/metaprobe-test-docker")
SOCKET = EXEC_ROOT / "docker.sock"
PROJECT = "mptest"
TAG = "test"
DNS_EXPORTERS = 2  # --dns-exporters
EXPORTER_SERVICES = ("exporter-clickstream", "exporter-meta", "exporter-dns",
                     "exporter-fullflow", "exporter-text")


def stack_ports(instances: int):
    """Every TCP port of the stack on 127.0.0.1 (deploy/compose/metaprobe.conf):
    the demo collector, the channels, capture's and the exporters' control."""
    return [4739] + list(range(7400, 7408)) + [7501] + [7502 + 64 * c + i for c in range(8)
                                                        for i in range(instances)]
MIN_FREE_GB = 20


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def run(argv, timeout=600, env=None, cwd=None, out=None):
    """Runs a command; returns (rc, stdout+stderr text). `out`: a file the
    output goes to instead (then the text is its last 3000 characters)."""
    try:
        if out:
            with open(out, "wb") as f:
                p = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT, timeout=timeout,
                                   env=env, cwd=cwd)
            return p.returncode, Path(out).read_text(errors="replace")[-3000:]
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout, env=env, cwd=cwd)
        return p.returncode, p.stdout.decode("utf-8", "replace")
    except subprocess.TimeoutExpired:
        return 124, f"{' '.join(map(str, argv[:4]))}... did not finish within {timeout} s"


def ensure_packages() -> bool:
    missing = [p for p in ("docker.io", "docker-compose", "debootstrap")
               if subprocess.run(["dpkg-query", "-W", "-f=${Status}", p],
                                 stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
               .stdout.decode().find("install ok installed") < 0]
    if not missing:
        return True
    log(f"installing {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    rc, text = run(["apt-get", "update", "-qq"], env=env, timeout=600)
    if rc == 0:
        rc, text = run(["apt-get", "install", "-y", "-qq", "--no-install-recommends"] + missing,
                       env=env, timeout=1200)
    return check(rc == 0, f"apt-get installs {' '.join(missing)}", text[-1500:])


class engine:
    """A dockerd of this test only: own socket, data root and exec root."""

    def __init__(self, work: Path):
        self.work = work
        self.proc = None
        self.env = dict(os.environ, DOCKER_HOST=f"unix://{SOCKET}")

    def docker(self, *args, timeout=600, out=None):
        return run([DOCKER] + list(args), timeout=timeout, env=self.env, out=out)

    def answers(self) -> bool:
        return self.docker("version", "--format", "{{.Server.Version}}", timeout=10)[0] == 0

    def stale_processes(self):
        """Processes (pid, command line) started for this test's engine."""
        found = []
        for d in Path("/proc").iterdir():
            if not d.name.isdigit() or int(d.name) == os.getpid():
                continue
            try:
                cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(EXEC_ROOT) in cmd or str(DATA_ROOT) in cmd:
                found.append((int(d.name), cmd.strip()))
        return found

    def start(self) -> bool:
        # an engine left by an aborted run: stop it first
        for pid, _ in self.stale_processes():
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        xh.wait_until(lambda: not self.stale_processes(), 30, step=0.5)
        for pid, _ in self.stale_processes():
            os.kill(pid, signal.SIGKILL)
        DATA_ROOT.mkdir(parents=True, exist_ok=True)
        EXEC_ROOT.mkdir(parents=True, exist_ok=True)
        SOCKET.unlink(missing_ok=True)
        self.log = open(self.work / "dockerd.log", "wb")
        self.proc = subprocess.Popen(
            ["dockerd", "--storage-driver=vfs", "--iptables=false", "--bridge=none",
             "--ip-forward=false", "--ip-masq=false",
             f"--data-root={DATA_ROOT}", f"--exec-root={EXEC_ROOT / 'exec'}",
             f"--pidfile={EXEC_ROOT / 'dockerd.pid'}", f"--host=unix://{SOCKET}"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        ok = xh.wait_until(lambda: self.proc.poll() is None and self.answers(), 90, step=0.5)
        return check(ok, "dockerd (vfs, --iptables=false, --bridge=none) starts and answers",
                     (self.work / "dockerd.log").read_text(errors="replace")[-1500:])

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        xh.wait_until(lambda: not self.stale_processes(), 30, step=0.5)
        left = self.stale_processes()
        check(not left, "nothing of the test's engine is left running (dockerd, containerd, shims)",
              "; ".join(c for _, c in left)[:1500])
        for pid, _ in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def build_images(eng: engine, source: Path, work: Path) -> bool:
    t0 = time.monotonic()
    rc, text = run(["bash", str(source / "deploy/docker/make-base-image.sh")], timeout=1200,
                   env=dict(eng.env, DOCKER=DOCKER), out=work / "base-image.log")
    if not check(rc == 0, "make-base-image.sh builds metaprobe/debian:bookworm (debootstrap + "
                 "docker import)", text):
        return False
    log(f"base image ready ({time.monotonic() - t0:.0f} s)")
    for target in ("capture", "exporter"):
        t0 = time.monotonic()
        rc, text = eng.docker("build", "--network=host", "-f", str(source / "deploy/docker/Dockerfile"),
                              "--target", target, "--build-arg", f"JOBS={os.cpu_count() or 2}",
                              "-t", f"metaprobe/{target}:{TAG}", str(source),
                              timeout=3600, out=work / f"build-{target}.log")
        if not check(rc == 0, f"image metaprobe/{target} builds", text):
            return False
        log(f"image metaprobe/{target}:{TAG} built ({time.monotonic() - t0:.0f} s)")
    # the exporter image runs as the unprivileged user
    rc, user = eng.docker("image", "inspect", "-f", "{{.Config.User}}", f"metaprobe/exporter:{TAG}")
    check(rc == 0 and user.strip() == "10001:10001", "the exporter image runs as uid 10001",
          user)
    return True


def summary_of(log_text: str):
    """The receiver's JSON summary line ({"summary": ...}) in its log."""
    for line in reversed(log_text.splitlines()):
        line = line.split("|", 1)[-1].strip()  # docker-compose logs prefix
        if line.startswith('{"summary"'):
            try:
                return json.loads(line)["summary"]
            except ValueError:
                return None
    return None


def per_template(summary) -> dict:
    out = {}
    for e in summary.get("exporters", []):
        for t, n in e.get("records_per_template", {}).items():
            out[t] = out.get(t, 0) + n
    return out


OPTIONS_TEMPLATE = "1100"  # exporter statistics (options): their number varies per run


def reference(bin_dir: Path, source: Path, capture: Path, work: Path):
    """What the host's metaprobe exports from `capture` with the compose
    configuration: ({group: {template: records}}, {group: file records},
    text lines)."""
    ref = work / "reference"
    ref.mkdir()
    conf = source / "deploy/compose/metaprobe.conf"
    files = {g: ref / f"{g}.ipfix" for g in ("clickstream", "meta", "dns", "fullflow")}
    with mpi.channel_dir("dockref") as endpoint:
        sets = [f"input=pcap:{capture}", f"channel_endpoint={endpoint}", "curve_keys=",
                "control_listen=off", "metrics_listen=", f"run_dir={ref / 'run'}",
                f"log_dir={ref / 'log'}", f"ajb_url_path={ref / 'text'}"]
        for key in ("ipfix_tcp_collectors", "ipfix_meta_tcp_collectors",
                    "ipfix_dns_tcp_collectors", "ipfix_full_tcp_collectors"):
            sets.append(f"{key}=")
        for g, f in files.items():
            sets.append(f"{mpi.IPFIX_FILE_KEYS[g]}={f}")
        argv = [str(mpi.find_bin(bin_dir, "metaprobe")), "--config", str(conf)]
        for s in sets:
            argv += ["--set", s]
        res = mpi.run_process(argv, ref, 300)
    if not check(res.returncode == 0, "reference run of the host's metaprobe exits 0", res.tail()):
        return None
    templates, counts = {}, {}
    for g, f in files.items():
        recs, err = mpi.decode_ipfix(bin_dir, f)
        check(err is None, f"reference {g} file decodes", err or "")
        counts[g] = len(recs)
        templates[g] = file_templates(bin_dir, f)
    lines = sum(len(p.read_text(errors="replace").splitlines())
                for p in (ref / "text").glob("*") if p.is_file())
    return templates, counts, lines


def file_templates(bin_dir: Path, path: Path) -> dict:
    """Data records per template of one IPFIX file (receiver summary)."""
    if not path.exists():
        return {}
    _, s, _, _ = xh.read_ipfix_file(bin_dir, path, timeout=120)
    if not s:
        return {}
    t = per_template(s)
    t.pop(OPTIONS_TEMPLATE, None)
    return t


class stack:
    def __init__(self, eng: engine, source: Path, work: Path, out: Path):
        self.eng = eng
        self.compose_file = source / "deploy/compose.yaml"
        self.env = dict(eng.env, METAPROBE_TAG=TAG, METAPROBE_OUT=str(out),
                        METAPROBE_DNS_EXPORTERS=str(DNS_EXPORTERS),
                        COMPOSE_PROJECT_NAME=PROJECT)
        self.work = work

    def compose(self, *args, timeout=300):
        return run([COMPOSE, "-f", str(self.compose_file), "--no-ansi"] + list(args),
                   timeout=timeout, env=self.env)

    def containers(self, service: str):
        rc, text = self.eng.docker("ps", "-aq", "--filter", f"label=com.docker.compose.project={PROJECT}",
                                   "--filter", f"label=com.docker.compose.service={service}")
        return text.split() if rc == 0 else []

    def state(self, cid: str) -> dict:
        rc, text = self.eng.docker("inspect", "-f", "{{json .State}}", cid)
        try:
            return json.loads(text) if rc == 0 else {}
        except ValueError:
            return {}

    def all_exporters(self):
        return [c for s in EXPORTER_SERVICES for c in self.containers(s)]


def main(argv=None) -> int:
    global DNS_EXPORTERS, PORTS
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", required=True, help="the host build's bin/ (reference run)")
    ap.add_argument("--source", default=str(HERE.parent.parent), help="repository root")
    ap.add_argument("--work-dir")
    ap.add_argument("--dns-exporters", type=int, default=DNS_EXPORTERS,
                    help="exporter-dns containers (--scale), 2..64")
    args = ap.parse_args(argv)
    DNS_EXPORTERS = max(2, min(64, args.dns_exporters))
    PORTS = stack_ports(DNS_EXPORTERS)
    if os.geteuid() != 0:
        print("FAIL docker_stack needs root (dockerd, debootstrap, apt-get)")
        return 1
    source = Path(args.source).resolve()
    bin_dir = Path(args.bin_dir).resolve()
    work = mpi.make_workdir(Path(args.work_dir) if args.work_dir else None, "docker-stack")
    capture = source / "tests/data/demo/mixed-browsing-pcpp-example.pcap"

    busy = [p for p in PORTS if not port_free(p)]
    if not check(not busy, "the stack's loopback ports are free", f"in use: {busy}"):
        return 1
    DATA_ROOT.parent.mkdir(parents=True, exist_ok=True)
    free_gb = shutil.disk_usage(DATA_ROOT.parent).free / 2**30
    if not check(free_gb >= MIN_FREE_GB or (DATA_ROOT / "vfs").exists(),
                 f"at least {MIN_FREE_GB} GiB free for the vfs image store ({free_gb:.0f} GiB)"):
        return 1
    if not ensure_packages():
        return 1

    ref = reference(bin_dir, source, capture, work)
    if ref is None:
        return 1
    ref_group_templates, ref_counts, ref_lines = ref
    ref_templates = {}
    for per_group in ref_group_templates.values():
        for t, n in per_group.items():
            ref_templates[t] = ref_templates.get(t, 0) + n
    log(f"reference: {ref_counts}, {ref_lines} text line(s)")
    check(ref_counts["dns"] > 0 and ref_counts["clickstream"] > 0 and ref_lines > 0,
          "the reference exports DNS, clickstream and text records", str(ref_counts))

    eng = engine(work)
    out = work / "out"
    out.mkdir()
    os.chown(out, 10001, 10001)  # the exporters' user (deploy/docker/Dockerfile)
    st = stack(eng, source, work, out)
    try:
        if not eng.start() or not build_images(eng, source, work):
            return 1
        t0 = time.monotonic()
        rc, text = st.compose("up", "-d", "--no-build", "--scale", f"exporter-dns={DNS_EXPORTERS}",
                              "receiver", *EXPORTER_SERVICES)
        if not check(rc == 0, "compose brings up the receiver and the exporters "
                     f"(exporter-dns scaled to {DNS_EXPORTERS})", text[-1500:]):
            return 1
        check(len(st.containers("exporter-dns")) == DNS_EXPORTERS,
              f"{DNS_EXPORTERS} exporter-dns containers run", str(st.containers("exporter-dns")))
        healthy = xh.wait_until(lambda: all(st.state(c).get("Health", {}).get("Status") == "healthy"
                                       for c in st.all_exporters()), 90, step=0.5)
        check(healthy, "every exporter's health check (control endpoint) says healthy",
              "; ".join(f"{c[:12]}: {st.state(c).get('Health', {}).get('Status')} "
                        f"{st.state(c).get('Health', {}).get('Log', [{}])[-1:]}"
                        for c in st.all_exporters())[:1500])
        log(f"exporters healthy ({time.monotonic() - t0:.0f} s)")
        for inst in range(DNS_EXPORTERS):
            rc, text = st.compose("run", "--rm", "console", "--process", f"exporter:dns.ipfix:{inst}",
                                  "--json", "status", timeout=120)
            procs = []
            for line in text.splitlines():
                if line.startswith("{"):
                    try:
                        procs = json.loads(line).get("processes", [])
                    except ValueError:
                        pass
            ok = rc == 0 and len(procs) == 1 and procs[0].get("process") == \
                f"exporter dns.ipfix#{inst}" and procs[0].get("state") == "running"
            check(ok, f"the console service asks exporter dns.ipfix#{inst} (run once, exits 0): "
                  "it answers, running", text[-800:])

        rc, text = st.compose("up", "-d", "--no-build", "--no-deps", "capture")
        if not check(rc == 0, "compose starts capture on the capture file", text[-1500:]):
            return 1
        cap = st.containers("capture")
        done = xh.wait_until(lambda: cap and st.state(cap[0]).get("Status") == "exited", 180, step=0.5)
        cap_state = st.state(cap[0]) if cap else {}
        check(done and cap_state.get("ExitCode") == 0, "capture reads the file and exits 0",
              json.dumps(cap_state)[:400] + "\n" + st.compose("logs", "--no-color", "capture")[1][-1500:])
        ended = xh.wait_until(lambda: all(st.state(c).get("Status") == "exited"
                                     for c in st.all_exporters()), 120, step=0.5)
        codes = {c[:12]: st.state(c).get("ExitCode") for c in st.all_exporters()}
        check(ended and all(v == 0 for v in codes.values()),
              "every exporter gets end of stream and exits 0 (none restarted)",
              f"{codes}\n" + st.compose("logs", "--no-color", *EXPORTER_SERVICES)[1][-2000:])
        log(f"capture and exporters finished ({time.monotonic() - t0:.0f} s)")

        rc, text = st.compose("stop", "receiver", timeout=120)
        rc, rx_log = st.compose("logs", "--no-color", "receiver")
        summary = summary_of(rx_log)
        if check(summary is not None, "the receiver logs its JSON summary when stopped",
                 rx_log[-1500:]):
            got = per_template(summary)
            got.pop(OPTIONS_TEMPLATE, None)
            check(got == ref_templates, "the receiver got the reference's records per template",
                  f"receiver {got}\nreference {ref_templates}")
            for k in ("decode_errors", "sequence_gaps", "records_lost", "records_without_template"):
                check(summary.get(k) == 0, f"receiver: no {k.replace('_', ' ')}",
                      str(summary.get(k)))
            dns_templates = set(ref_group_templates["dns"])
            dns_domains = {}
            for e in summary.get("exporters", []):
                n = sum(v for t, v in e.get("records_per_template", {}).items()
                        if t in dns_templates)
                if n:
                    dns_domains[e.get("domain")] = dns_domains.get(e.get("domain"), 0) + n
            check(sorted(dns_domains) == list(range(1, DNS_EXPORTERS + 1))
                  and all(dns_domains.values()),
                  f"every DNS exporter delivered records, as observation domains "
                  f"1..{DNS_EXPORTERS}", str(dns_domains))
            check(sum(dns_domains.values()) == ref_counts["dns"],
                  f"the {DNS_EXPORTERS} DNS exporters together delivered the reference's "
                  f"{ref_counts['dns']} DNS records", str(dns_domains))
        # the same in the output folder's files
        dns_files = {p.name: len(mpi.decode_ipfix(bin_dir, p)[0]) for p in
                     (out / "ipfix").glob("dns.ipfix*")}
        want = sorted(["dns.ipfix"] + [f"dns.ipfix.{i}" for i in range(1, DNS_EXPORTERS)])
        check(sorted(dns_files) == want and all(dns_files.values())
              and sum(dns_files.values()) == ref_counts["dns"],
              f"instances 0..{DNS_EXPORTERS - 1} wrote {', '.join(want)}, together the "
              "reference's records", str(dns_files))
        for g in ("clickstream", "fullflow"):
            n = len(mpi.decode_ipfix(bin_dir, out / "ipfix" / f"{g}.ipfix")[0])
            check(n == ref_counts[g], f"{g}.ipfix holds the reference's {ref_counts[g]} records",
                  str(n))
        lines = sum(len(p.read_text(errors="replace").splitlines())
                    for p in (out / "text").glob("*") if p.is_file())
        check(lines == ref_lines, f"the text exporter wrote the reference's {ref_lines} lines",
              str(lines))
    finally:
        rc, text = st.compose("down", "-v", "--remove-orphans", timeout=300)
        check(rc == 0, "compose down removes the stack", text[-1000:])
        left = st.eng.docker("ps", "-aq")[1].split() if eng.proc else []
        check(not left, "no container is left", str(left))
        eng.stop()
        for p in PORTS:
            if not port_free(p):
                check(False, f"port {p} is free again after the test")
    if failures:
        print(f"FAIL {len(failures)} check(s) failed; work dir {work}")
        return 1
    print(f"PASS docker compose stack (work dir {work})")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
