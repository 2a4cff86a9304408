#!/usr/bin/env python3
# SPDX-License-Identifier: Apache-2.0
"""FTP data connections share the control connection's SESSION_ID, end to
end: the appliance on ftp-session-ndpi.pcap (two passive-mode transfers,
announced by `227 Entering Passive Mode` on ports 25685 and 24523), its
fullflow IPFIX file decoded with metaprobe-receiver.

Checked, in each of --runs runs (the summaries of the data flows travel
through the FTP parser stage, so the result must not depend on thread
timing):
  * the control connection (port 21) has one SESSION_ID;
  * both directions of both data connections carry that SESSION_ID;
  * flows that are neither (none in this capture) keep their own ids.

Usage: ftp_data_session.py --bin-dir BUILD/bin [--corpus DIR] [--runs N]
                           [--timeout S] [--work-dir DIR]
Exit 0 pass, 1 fail, 77 corpus missing.
"""

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import mp_integration as mpi  # noqa: E402

CAPTURE = "ftp-session-ndpi.pcap"
DATA_PORTS = {25685, 24523}


def ports(r):
    return {r.get("SOURCE_TRANSPORT_PORT"), r.get("DESTINATION_TRANSPORT_PORT")}


def check_run(args, corpus: Path, n: int) -> list:
    work = mpi.make_workdir(args.work_dir, f"ftp-data-{n}")
    run = mpi.run_appliance(Path(args.bin_dir), corpus / CAPTURE, work, groups=("fullflow",),
                            timeout=args.timeout)
    if run.timed_out or run.returncode != 0:
        return [f"run {n}: metaprobe failed ({run.returncode}):\n{run.tail()}"]
    recs, err = mpi.decode_ipfix(Path(args.bin_dir), run.files["fullflow"])
    if err:
        return [f"run {n}: receiver: {err}"]
    problems = []
    control = {r["SESSION_ID"] for r in recs if 21 in ports(r)}
    data = [r for r in recs if ports(r) & DATA_PORTS]
    if len(control) != 1:
        problems.append(f"run {n}: control connection has {len(control)} SESSION_IDs: {control}")
    if len(data) != 4:
        problems.append(f"run {n}: {len(data)} fullflow records of the data connections, expected 4")
    for r in data:
        if r["SESSION_ID"] not in control:
            problems.append(f"run {n}: data flow {sorted(p for p in ports(r) if p)} has SESSION_ID "
                            f"{r['SESSION_ID']}, control has {control}")
    others = [r for r in recs if r not in data and 21 not in ports(r)]
    if any(r["SESSION_ID"] in control for r in others):
        problems.append(f"run {n}: an unrelated flow carries the control SESSION_ID")
    if not problems:
        shutil.rmtree(work, ignore_errors=True)
        print(f"run {n}: {len(recs)} fullflow records; control and both data connections share "
              f"SESSION_ID {next(iter(control))}")
    return problems


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin-dir", required=True, type=lambda p: str(Path(p).resolve()))
    ap.add_argument("--corpus")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--timeout", type=float, default=60.0)
    ap.add_argument("--work-dir")
    args = ap.parse_args()
    corpus = mpi.corpus_or_skip(args.corpus)
    problems = []
    for n in range(args.runs):
        problems += check_run(args, corpus, n)
    for p in problems:
        print("FAIL:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
