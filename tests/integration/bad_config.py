#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""Configuration errors stop the appliance before anything starts.

Each case runs `metaprobe` (and, for the file cases, metaprobe-capture and
metaprobe-exporter, which read the same file) and checks: exit code 2, the
message names what the operator must fix (file, line, key, expected value,
the nearest valid key for a typo), nothing was started (no output file, no
child process messages). Needs no corpus: the input is a file that exists.

Usage: bad_config.py --bin-dir BUILD/bin     exit 0 pass, 1 fail
"""

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mp_integration as mpi  # noqa: E402
import robustness as gen  # noqa: E402  (pcap writers)

failures = mpi.failures
check = mpi.check


def run(bin_dir: Path, binary: str, args, cwd: Path):
    return mpi.run_process([str(mpi.find_bin(bin_dir, binary))] + args, cwd, timeout=30)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", required=True)
    ap.add_argument("--work-dir")
    args = ap.parse_args(argv)
    bin_dir = Path(args.bin_dir)
    work = mpi.make_workdir(Path(args.work_dir) if args.work_dir else None, "bad-config")
    pcap = work / "one-request.pcap"
    frames = []
    gen.tcp_flow(frames, "10.1.0.1", "10.1.0.2", 41000, 80,
                 [b"GET /bad-config-control HTTP/1.1\r\nHost: example.org\r\n\r\n"], 1_600_000_000)
    pcap.write_bytes(gen.global_header() + b"".join(frames))
    out_ipfix = work / "should-not-exist.ipfix"
    channels = mpi.channel_dir("badcfg")
    endpoint = channels.endpoint

    def conf(name, body):
        p = work / name
        p.write_text(f"# metaprobe bad-config test\ninput=pcap:{pcap}\n{body}\n"
                     f"ipfix_file={out_ipfix}\nchannel_endpoint={endpoint}\n")
        return p

    # 1. unknown key (a typo of 'workers' on line 3): file, line, key, suggestion
    p = conf("typo.conf", "workerz=2")
    for binary in ("metaprobe", "metaprobe-capture"):
        r = run(bin_dir, binary, ["--config", str(p)], work)
        msg = r.stderr
        check(r.returncode == 2, f"{binary}: unknown key -> exit 2 (got {r.returncode})", r.tail())
        check("started" not in msg, f"{binary}: nothing is started on a bad configuration", msg)
        check("typo.conf" in msg and ":3" in msg, f"{binary}: unknown key message names file and line 3", msg)
        check("workerz" in msg, f"{binary}: unknown key message names the key", msg)
        check("'workers'" in msg or "workers?" in msg or "did you mean" in msg and "workers" in msg,
              f"{binary}: unknown key message suggests 'workers'", msg)

    # 2. missing file
    missing = work / "no-such-dir" / "missing.conf"
    r = run(bin_dir, "metaprobe", ["--config", str(missing)], work)
    check(r.returncode == 2, f"metaprobe: missing config file -> exit 2 (got {r.returncode})", r.tail())
    check(str(missing) in r.stderr or "missing.conf" in r.stderr,
          "metaprobe: missing-file message names the file", r.stderr)

    # 3. bad values in the file: integer, range, boolean, endpoint, duration
    bad_values = [
        ("workers=abc", "workers"),
        ("workers=1000", "workers"),
        ("http_parse_reply=maybe", "http_parse_reply"),
        ("ipfix_udp_collectors=127.0.0.1:notaport", "ipfix_udp_collectors"),
        ("flow_inactive_timeout=soon", "flow_inactive_timeout"),
        ("ajb_save_url_format=ts:nosuchfield", "ajb_save_url_format"),
    ]
    for i, (line, key) in enumerate(bad_values):
        p = conf(f"badvalue{i}.conf", line)
        r = run(bin_dir, "metaprobe", ["--config", str(p)], work)
        check(r.returncode == 2, f"metaprobe: '{line}' -> exit 2 (got {r.returncode})", r.tail())
        check(f"badvalue{i}.conf:3" in r.stderr and key in r.stderr,
              f"metaprobe: '{line}' message names file:line and key", r.stderr)

    # 4. a bad value given with --set names the override
    p = conf("good.conf", "workers=1")
    r = run(bin_dir, "metaprobe", ["--config", str(p), "--set", "workers=abc"], work)
    check(r.returncode == 2, f"metaprobe: --set workers=abc -> exit 2 (got {r.returncode})", r.tail())
    check("--set" in r.stderr and "workers" in r.stderr, "metaprobe: --set error names --set and the key",
          r.stderr)
    r = run(bin_dir, "metaprobe", ["--config", str(p), "--set", "no_such_key=1"], work)
    check(r.returncode == 2, f"metaprobe: --set no_such_key=1 -> exit 2 (got {r.returncode})", r.tail())

    # 5. a key set twice in one file
    p = conf("twice.conf", "workers=1\nworkers=2")
    r = run(bin_dir, "metaprobe", ["--config", str(p)], work)
    check(r.returncode == 2, f"metaprobe: key set twice -> exit 2 (got {r.returncode})", r.tail())
    check((":3" in r.stderr or "line 3" in r.stderr) and ":4" in r.stderr,
          "metaprobe: key-set-twice message names both lines", r.stderr)

    # 6. no input at all
    p = work / "noinput.conf"
    p.write_text(f"ipfix_file={out_ipfix}\nchannel_endpoint={endpoint}\n")
    r = run(bin_dir, "metaprobe", ["--config", str(p)], work)
    check(r.returncode == 2, f"metaprobe: no input -> exit 2 (got {r.returncode})", r.tail())
    check("input" in r.stderr, "metaprobe: no-input message names the key 'input'", r.stderr)

    # 7. several problems are reported together
    p = conf("several.conf", "workerz=2\nsnaplen=1")
    r = run(bin_dir, "metaprobe", ["--config", str(p)], work)
    check(r.returncode == 2 and "workerz" in r.stderr and "snaplen" in r.stderr,
          "metaprobe: two problems in one file are both reported", r.stderr)

    # nothing half-started: no export file, no child started
    check(not out_ipfix.exists(), "no export file was created by a rejected configuration")
    # the control: the same good config does run (so the checks above can fail)
    p = conf("control.conf", "workers=1")
    r = mpi.run_process([str(mpi.find_bin(bin_dir, "metaprobe")), "--config", str(p),
                         "--set", f"log_dir={work / 'log'}", "--set", f"run_dir={work / 'run'}"],
                        work, timeout=60)
    check(r.returncode == 0, f"control: the good configuration runs and exits 0 (got {r.returncode})",
          r.tail())
    recs, err = mpi.decode_ipfix(bin_dir, out_ipfix)
    check(err is None and any(x.get("PATH") == "/bad-config-control" for x in recs),
          "control: the good configuration exports the request", str(err or recs[:3]))

    channels.__exit__(None, None, None)
    if not failures:
        shutil.rmtree(work, ignore_errors=True)
    else:
        print(f"files kept in {work}")
    print(f"\nbad_config: {len(failures)} failures -> {'PASS' if not failures else 'FAIL'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
